-- Simulated Microsoft Graph v1.0 (wire-formats.md §6, real-clients.md §2.2), served on the
-- "graph" listener. It serves the directory that entra.lua keeps: applications, service
-- principals and their credentials, so a secret added here works at the token endpoint at once.
--
-- Routes:
--   GET    /v1.0/servicePrincipals            $filter (appId/id/displayName eq, startswith,
--                                             servicePrincipalNames/any(c:c eq '...'), or/and),
--                                             $select, $top (+ @odata.nextLink), $count
--   POST   /v1.0/servicePrincipals            {"appId"} → 201
--   GET    /v1.0/servicePrincipals/{id}       by object id
--   DELETE /v1.0/servicePrincipals/{id}
--   GET    /v1.0/applications                 as for servicePrincipals (identifierUris/any too)
--   POST   /v1.0/applications                 {"displayName", "keyCredentials"?, ...} → 201
--   GET    /v1.0/applications/{id}            by object id
--   PATCH  /v1.0/applications/{id}            displayName, keyCredentials, identifierUris, web,
--                                             publicClient, isFallbackPublicClient → 204
--   DELETE /v1.0/applications/{id}            removes its service principal too
--   POST   /v1.0/applications/{id}/addPassword    → the passwordCredential with secretText, once
--   POST   /v1.0/applications/{id}/removePassword {"keyId"} → 204
--   GET    /v1.0/applications(appId='...'), /v1.0/servicePrincipals(appId='...')  alternate keys
--   GET    /v1.0/me                           the signed-in user (delegated tokens only)
--   POST   /v1.0/directoryObjects/getByIds    {"ids": [...]} (az role assignment list)
--
-- Every call needs a bearer token for Graph: aud https://graph.microsoft.com or the simulator's
-- own Graph URL (with or without a trailing slash; az uses the latter). App tokens need the role
-- Application.Read.All, Application.ReadWrite.All, Directory.Read.All or Directory.ReadWrite.All
-- to read and a ReadWrite one to write (entra.lua puts the app's graph_roles in the token);
-- otherwise 403 Authorization_RequestDenied. Delegated (user) tokens may do everything.
-- Objects are scoped to the token's tenant.
local json = require "aurora.json"
local entra = require "entra"
local http = require "aurora.http"
local sim = require "sim"
local tokens = require "tokens"

local M = {}

local CONTENT_TYPE = "application/json;odata.metadata=minimal;odata.streaming=true;" ..
    "IEEE754Compatible=false;charset=utf-8"
local READ_ROLES = { "Application.Read.All", "Application.ReadWrite.All", "Directory.Read.All",
    "Directory.ReadWrite.All", "Application.ReadWrite.OwnedBy" }
local WRITE_ROLES = { "Application.ReadWrite.All", "Directory.ReadWrite.All",
    "Application.ReadWrite.OwnedBy" }
local null = json.null


local function base()
    return sim.config.urls.graph .. "/v1.0"
end


local function iso(t)
    return sim.timestamp(t, true)
end


local function array(list)
    local a = json.array()
    for i, v in ipairs(list or {}) do a[i] = v end
    return a
end


local function headers_for(req, request_id, extra)
    local h = {
        ["Content-Type"] = CONTENT_TYPE,
        ["Cache-Control"] = "no-cache",
        ["OData-Version"] = "4.0",
        ["request-id"] = request_id,
        ["client-request-id"] = req.headers["client-request-id"] or request_id,
    }
    for k, v in pairs(extra or {}) do h[k] = v end
    return h
end


local function reply(req, status, body, extra)
    return status, body, headers_for(req, sim.uuid(), extra)
end


--- Graph's error envelope: {"error": {"code", "message", "innerError": {...}}}.
local function graph_error(req, status, code, message, extra)
    local rid = sim.uuid()
    return status, { error = { code = code, message = message, innerError = {
        date = os.date("!%Y-%m-%dT%H:%M:%S"), ["request-id"] = rid,
        ["client-request-id"] = req.headers["client-request-id"] or rid } } },
        headers_for(req, rid, extra)
end


local function audiences()
    local g = sim.config.urls.graph
    return { "https://graph.microsoft.com", "https://graph.microsoft.com/", g, g .. "/" }
end


local function has_any(roles, wanted)
    for _, r in ipairs(roles or {}) do
        for _, w in ipairs(wanted) do
            if r == w then return true end
        end
    end
    return false
end


--- Checks the bearer token and the permission; returns the claims, or nil and an answer.
local function authorize(req, write)
    local claims, reason = tokens.check(req, audiences())
    if not claims then
        local www = { ["WWW-Authenticate"] = 'Bearer realm="", authorization_uri="' ..
            sim.config.urls.login .. '/common/oauth2/authorize", client_id="' ..
            "00000003-0000-0000-c000-000000000000" .. '"' }
        local message = reason == "missing" and "Access token is empty." or
            reason == "expired" and "Lifetime validation failed, the token is expired." or
            "Access token validation failure. Invalid audience."
        return nil, graph_error(req, 401, "InvalidAuthenticationToken", message, www)
    end
    if claims.idtyp ~= "user" and not has_any(claims.roles, write and WRITE_ROLES or READ_ROLES)
    then
        return nil, graph_error(req, 403, "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation.")
    end
    return claims
end


--- Wraps a handler with the token check: fn(req, claims).
local function guarded(fn, write)
    return function(req)
        local claims, status, body, headers = authorize(req, write)
        if not claims then return status, body, headers end
        return fn(req, claims)
    end
end


-- ---- object shapes ---------------------------------------------------------------------------

local function tenant_of(app)
    return entra.tenant(app.tenant) or {}
end


local function password_credentials(app)
    local list = json.array()
    for _, s in ipairs(app.secrets) do
        list[#list + 1] = {
            customKeyIdentifier = null,
            displayName = s.displayName or s.name or null,
            endDateTime = s.expires and iso(s.expires) or null,
            hint = s.value and s.value:sub(1, 3) or null,
            keyId = s.id or null,
            secretText = null,
            startDateTime = iso(s.start or app.created),
        }
    end
    return list
end


local function key_credentials(app)
    local list = json.array()
    for _, c in ipairs(app.certs) do
        list[#list + 1] = {
            customKeyIdentifier = c.thumbprint,
            displayName = c.displayName or null,
            endDateTime = iso(c.expires),
            key = null,
            keyId = c.keyId,
            startDateTime = iso(c.start),
            type = "AsymmetricX509Cert",
            usage = "Verify",
        }
    end
    return list
end


local function application(app)
    return {
        id = app.objectId,
        deletedDateTime = null,
        appId = app.appId,
        applicationTemplateId = null,
        disabledByMicrosoftStatus = null,
        createdDateTime = iso(app.created),
        displayName = app.displayName or null,
        description = null,
        groupMembershipClaims = null,
        identifierUris = array(app.identifierUris),
        isDeviceOnlyAuthSupported = null,
        isFallbackPublicClient = app.public_client and true or null,
        notes = null,
        publisherDomain = tenant_of(app).domain or null,
        serviceManagementReference = null,
        signInAudience = "AzureADMyOrg",
        tags = json.array(),
        tokenEncryptionKeyId = null,
        defaultRedirectUri = null,
        certification = null,
        optionalClaims = null,
        addIns = json.array(),
        api = { acceptMappedClaims = null, knownClientApplications = json.array(),
            requestedAccessTokenVersion = null, oauth2PermissionScopes = json.array(),
            preAuthorizedApplications = json.array() },
        appRoles = json.array(),
        info = { logoUrl = null, marketingUrl = null, privacyStatementUrl = null,
            supportUrl = null, termsOfServiceUrl = null },
        keyCredentials = key_credentials(app),
        parentalControlSettings = { countriesBlockedForMinors = json.array(),
            legalAgeGroupRule = "Allow" },
        passwordCredentials = password_credentials(app),
        publicClient = { redirectUris = array(app.public_redirect_uris) },
        requiredResourceAccess = json.array(),
        verifiedPublisher = { displayName = null, verifiedPublisherId = null,
            addedDateTime = null },
        web = { homePageUrl = null, logoutUrl = null, redirectUris = array(app.redirect_uris),
            implicitGrantSettings = { enableAccessTokenIssuance = false,
                enableIdTokenIssuance = false }, redirectUriSettings = json.array() },
        spa = { redirectUris = json.array() },
    }
end


local function service_principal(app)
    local names = array { app.appId }
    for _, u in ipairs(app.identifierUris or {}) do names[#names + 1] = u end
    return {
        id = app.spObjectId,
        deletedDateTime = null,
        accountEnabled = app.accountEnabled ~= false,
        alternativeNames = json.array(),
        appDisplayName = app.displayName or null,
        appDescription = null,
        appId = app.appId,
        applicationTemplateId = null,
        appOwnerOrganizationId = app.tenant,
        appRoleAssignmentRequired = false,
        createdDateTime = iso(app.sp_created or app.created),
        description = null,
        disabledByMicrosoftStatus = null,
        displayName = app.displayName or null,
        homepage = null,
        loginUrl = null,
        logoutUrl = null,
        notes = null,
        notificationEmailAddresses = json.array(),
        preferredSingleSignOnMode = null,
        preferredTokenSigningKeyThumbprint = null,
        replyUrls = array(app.redirect_uris),
        servicePrincipalNames = names,
        servicePrincipalType = "Application",
        signInAudience = "AzureADMyOrg",
        tags = json.array(),
        tokenEncryptionKeyId = null,
        addIns = json.array(),
        appRoles = json.array(),
        info = { logoUrl = null, marketingUrl = null, privacyStatementUrl = null,
            supportUrl = null, termsOfServiceUrl = null },
        keyCredentials = json.array(),
        oauth2PermissionScopes = json.array(),
        passwordCredentials = json.array(),
        resourceSpecificApplicationPermissions = json.array(),
        verifiedPublisher = { displayName = null, verifiedPublisherId = null,
            addedDateTime = null },
    }
end


-- ---- OData query options ---------------------------------------------------------------------

--- Splits s on a keyword (" or ", " and ") outside quotes and parentheses.
local function split_top(s, word)
    local parts, depth, quoted, last, i = {}, 0, false, 1, 1
    local pat = "^%s+" .. word .. "%s+"
    while i <= #s do
        local ch = s:sub(i, i)
        if ch == "'" then
            quoted = not quoted
        elseif not quoted and ch == "(" then
            depth = depth + 1
        elseif not quoted and ch == ")" then
            depth = depth - 1
        elseif not quoted and depth == 0 then
            local m = s:match(pat, i)
            if m then
                parts[#parts + 1] = s:sub(last, i - 1)
                i = i + #m
                last = i
                goto continue
            end
        end
        i = i + 1
        ::continue::
    end
    parts[#parts + 1] = s:sub(last)
    return parts
end


local function unquote(v)
    return (v:gsub("''", "'"))
end


--- Compiles one clause into a predicate over a Graph object, or nil and the unsupported part.
local function clause(c, type_name)
    c = c:match("^%s*(.-)%s*$")
    local inner = c:match("^%((.*)%)$")
    if inner then
        return clause(inner, type_name)
    end
    local coll, var, var2, value = c:match("^(%w+)/any%((%w+):(%w+) eq '(.*)'%)$")
    if coll and var == var2 then
        value = unquote(value):lower()
        return function(obj)
            for _, x in ipairs(type(obj[coll]) == "table" and obj[coll] or {}) do
                if type(x) == "string" and x:lower() == value then return true end
            end
            return false
        end, coll
    end
    local field, prefix = c:match("^startswith%(%s*(%w+)%s*,%s*'(.*)'%s*%)$")
    if field then
        prefix = unquote(prefix):lower()
        return function(obj)
            local v = obj[field]
            return type(v) == "string" and v:lower():sub(1, #prefix) == prefix
        end, field
    end
    local f, op, v = c:match("^(%w+)%s+(%a%a)%s+'(.*)'$")
    if f and (op == "eq" or op == "ne") then
        v = unquote(v):lower()
        return function(obj)
            local x = obj[f]
            local eq = type(x) == "string" and x:lower() == v
            if op == "eq" then return eq end
            return not eq
        end, f
    end
    local fb, bv = c:match("^(%w+)%s+eq%s+(%a+)$")
    if fb and (bv == "true" or bv == "false") then
        return function(obj) return obj[fb] == (bv == "true") end, fb
    end
    return nil, c
end


--- Compiles a $filter into a predicate; nil and a message when unsupported.
local function compile_filter(filter, sample, type_name)
    if not filter or filter:match("^%s*$") then
        return function() return true end
    end
    local ors = {}
    for _, o in ipairs(split_top(filter, "or")) do
        local ands = {}
        for _, a in ipairs(split_top(o, "and")) do
            local pred, prop = clause(a, type_name)
            if not pred or sample[prop] == nil then
                return nil, string.format("Unsupported or invalid query filter clause " ..
                    "specified for property '%s' of resource '%s'.", prop, type_name)
            end
            ands[#ands + 1] = pred
        end
        ors[#ors + 1] = ands
    end
    return function(obj)
        for _, ands in ipairs(ors) do
            local ok = true
            for _, p in ipairs(ands) do
                if not p(obj) then
                    ok = false
                    break
                end
            end
            if ok then return true end
        end
        return false
    end
end


local function select_fields(obj, sel)
    if not sel or sel == "" then return obj end
    local out = {}
    for f in sel:gmatch("[^,%s]+") do
        if obj[f] ~= nil then out[f] = obj[f] end
    end
    return out
end


--- Answers a collection GET: objects (already shaped), filtered, selected and paged.
local function collection(req, set_name, type_name, objects, sample)
    local q = req.query
    local pred, msg = compile_filter(q["$filter"], sample, type_name)
    if not pred then
        return graph_error(req, 400, "Request_UnsupportedQuery", msg)
    end
    local matched = {}
    for _, o in ipairs(objects) do
        if pred(o) then matched[#matched + 1] = o end
    end
    local skip = tonumber(q["$skiptoken"] or "") or 0
    local top = tonumber(q["$top"] or "")
    if top and (top < 1 or top > 999) then
        return graph_error(req, 400, "Request_BadRequest",
            "Invalid page size specified: '" .. q["$top"] .. "'. Must be between 1 and 999 " ..
            "inclusive.")
    end
    local value = json.array()
    local last = top and math.min(#matched, skip + top) or #matched
    for i = skip + 1, last do
        value[#value + 1] = select_fields(matched[i], q["$select"])
    end
    local context = base() .. "/$metadata#" .. set_name
    if q["$select"] and q["$select"] ~= "" then
        context = context .. "(" .. q["$select"]:gsub("%s", "") .. ")"
    end
    local body = { ["@odata.context"] = context }
    if q["$count"] == "true" then
        body["@odata.count"] = #matched
    end
    if last < #matched then
        local next_q = {}
        for k, v in pairs(q) do next_q[k] = v end
        next_q["$skiptoken"] = tostring(last)
        body["@odata.nextLink"] = base() .. "/" .. set_name .. "?" .. http.form_encode(next_q)
    end
    body.value = value
    return reply(req, 200, body)
end


-- ---- handlers --------------------------------------------------------------------------------

local function in_tenant(claims)
    local list = {}
    for _, app in ipairs(entra.apps()) do
        if app.tenant == claims.tid then list[#list + 1] = app end
    end
    return list
end


local function not_found(req, id)
    return graph_error(req, 404, "Request_ResourceNotFound", string.format(
        "Resource '%s' does not exist or one of its queried reference-property objects are " ..
        "not present.", tostring(id)))
end


local function find(claims, id, kind)
    local app = entra.app(id, kind)
    if app and app.tenant == claims.tid then return app end
    return nil
end


local function list_service_principals(req, claims)
    local objects = {}
    for _, app in ipairs(in_tenant(claims)) do
        if app.spObjectId then objects[#objects + 1] = service_principal(app) end
    end
    local sample = service_principal({ appId = "", spObjectId = "", created = 0, tenant = "" })
    return collection(req, "servicePrincipals", "servicePrincipal", objects, sample)
end


local function list_applications(req, claims)
    local objects = {}
    for _, app in ipairs(in_tenant(claims)) do
        objects[#objects + 1] = application(app)
    end
    local sample = application({ appId = "", objectId = "", created = 0, tenant = "",
        secrets = {}, certs = {} })
    return collection(req, "applications", "application", objects, sample)
end


local function entity(req, set_name, obj)
    obj["@odata.context"] = base() .. "/$metadata#" .. set_name .. "/$entity"
    return reply(req, 200, select_fields(obj, req.query["$select"] and
        ("@odata.context," .. req.query["$select"])))
end


local function get_service_principal(req, claims)
    local app = find(claims, req.params.id, "sp")
    if not app then return not_found(req, req.params.id) end
    return entity(req, "servicePrincipals", service_principal(app))
end


local function get_application(req, claims)
    local app = find(claims, req.params.id, "object")
    if not app then return not_found(req, req.params.id) end
    return entity(req, "applications", application(app))
end


local function get_by_alternate_key(req, claims)
    local set, key, value = req.params.keyed:match("^(%a+)%((%a+)='(.*)'%)$")
    if not set or key ~= "appId" or (set ~= "applications" and set ~= "servicePrincipals") then
        return graph_error(req, 400, "BadRequest", "Resource not found for the segment '" ..
            req.params.keyed .. "'.")
    end
    local app = find(claims, value)
    if not app or (set == "servicePrincipals" and not app.spObjectId) then
        return not_found(req, value)
    end
    if set == "applications" then
        return entity(req, set, application(app))
    end
    return entity(req, set, service_principal(app))
end


local function read_body(req)
    if req.body == "" then return {} end
    local ok, body = pcall(req.json, req)
    if not ok or type(body) ~= "table" then
        return nil, graph_error(req, 400, "BadRequest",
            "Unable to read JSON request payload. Please ensure Content-Type header is set " ..
            "and payload is of valid JSON format.")
    end
    return body
end


--- Registers keyCredentials (az's --cert / create-for-rbac --create-cert) on app; replaces the
-- certificates it had, as a PATCH of the collection does. Returns nil or an error answer.
local function set_key_credentials(req, app, list)
    local certs = {}
    local saved = app.certs
    app.certs = certs
    for _, k in ipairs(list) do
        local pem = type(k.key) == "string" and entra.cert_pem_from_base64(k.key)
        local entry = pem and entra.add_certificate(app, pem, { keyId = k.keyId,
            displayName = k.displayName ~= null and k.displayName or nil,
            start = entra.parse_iso(k.startDateTime), expires = entra.parse_iso(k.endDateTime) })
        if not entry then
            app.certs = saved
            return graph_error(req, 400, "KeyCredentialsInvalidValue",
                "Key credential property 'key' has an invalid value: a base64 X.509 " ..
                "certificate is expected.")
        end
    end
    return nil
end


local function apply_fields(app, body)
    if type(body.displayName) == "string" then app.displayName = body.displayName end
    if type(body.identifierUris) == "table" then app.identifierUris = body.identifierUris end
    if type(body.web) == "table" and type(body.web.redirectUris) == "table" then
        app.redirect_uris = #body.web.redirectUris > 0 and body.web.redirectUris or nil
    end
    if type(body.publicClient) == "table" and type(body.publicClient.redirectUris) == "table" then
        app.public_redirect_uris = body.publicClient.redirectUris
    end
    if body.isFallbackPublicClient ~= nil then
        app.public_client = body.isFallbackPublicClient == true
    end
end


local function create_application(req, claims)
    local body, err_status, err_body, err_headers = read_body(req)
    if not body then return err_status, err_body, err_headers end
    if type(body.displayName) ~= "string" or body.displayName == "" then
        return graph_error(req, 400, "Request_BadRequest",
            "Property 'displayName' is required and must not be empty.")
    end
    local app = entra.add_application({ displayName = body.displayName, tenant = claims.tid,
        secrets = {} })
    apply_fields(app, body)
    if type(body.keyCredentials) == "table" and #body.keyCredentials > 0 then
        local s, b, h = set_key_credentials(req, app, body.keyCredentials)
        if s then
            entra.remove_application(app)
            return s, b, h
        end
    end
    local obj = application(app)
    obj["@odata.context"] = base() .. "/$metadata#applications/$entity"
    return reply(req, 201, obj, { Location = base() .. "/directoryObjects/" .. app.objectId ..
        "/Microsoft.DirectoryServices.Application" })
end


local function update_application(req, claims)
    local app = find(claims, req.params.id, "object")
    if not app then return not_found(req, req.params.id) end
    local body, err_status, err_body, err_headers = read_body(req)
    if not body then return err_status, err_body, err_headers end
    if body.passwordCredentials ~= nil then
        return graph_error(req, 400, "Request_BadRequest", "Property 'passwordCredentials' is " ..
            "read-only and cannot be set: use addPassword.")
    end
    if type(body.keyCredentials) == "table" then
        local s, b, h = set_key_credentials(req, app, body.keyCredentials)
        if s then return s, b, h end
    end
    apply_fields(app, body)
    return reply(req, 204, nil)
end


local function delete_application(req, claims)
    local app = find(claims, req.params.id, "object")
    if not app then return not_found(req, req.params.id) end
    entra.remove_application(app)
    return reply(req, 204, nil)
end


local function create_service_principal(req, claims)
    local body, err_status, err_body, err_headers = read_body(req)
    if not body then return err_status, err_body, err_headers end
    local app = type(body.appId) == "string" and find(claims, body.appId)
    if not app then
        return graph_error(req, 400, "Request_BadRequest", string.format(
            "The appId '%s' of the service principal does not reference a valid application " ..
            "object.", tostring(body.appId)))
    end
    if app.spObjectId then
        return graph_error(req, 409, "Request_MultipleObjectsWithSameKeyValue", string.format(
            "The service principal cannot be created, updated, or restored because the " ..
            "service principal name %s is already in use.", app.appId))
    end
    entra.add_service_principal(app)
    if body.accountEnabled == false then app.accountEnabled = false end
    local obj = service_principal(app)
    obj["@odata.context"] = base() .. "/$metadata#servicePrincipals/$entity"
    return reply(req, 201, obj, { Location = base() .. "/directoryObjects/" .. app.spObjectId ..
        "/Microsoft.DirectoryServices.ServicePrincipal" })
end


local function delete_service_principal(req, claims)
    local app = find(claims, req.params.id, "sp")
    if not app then return not_found(req, req.params.id) end
    entra.remove_service_principal(app)
    return reply(req, 204, nil)
end


local function add_password(req, claims)
    local app = find(claims, req.params.id, "object")
    if not app then return not_found(req, req.params.id) end
    local body, err_status, err_body, err_headers = read_body(req)
    if not body then return err_status, err_body, err_headers end
    local pc = type(body.passwordCredential) == "table" and body.passwordCredential or {}
    local display = type(pc.displayName) == "string" and pc.displayName or nil
    local s = entra.add_password(app, { displayName = display,
        start = entra.parse_iso(pc.startDateTime), expires = entra.parse_iso(pc.endDateTime) })
    return reply(req, 200, {
        ["@odata.context"] = base() .. "/$metadata#microsoft.graph.passwordCredential",
        customKeyIdentifier = null,
        displayName = display or null,
        endDateTime = iso(s.expires),
        hint = s.value:sub(1, 3),
        keyId = s.id,
        secretText = s.value,
        startDateTime = iso(s.start),
    })
end


local function remove_password(req, claims)
    local app = find(claims, req.params.id, "object")
    if not app then return not_found(req, req.params.id) end
    local body, err_status, err_body, err_headers = read_body(req)
    if not body then return err_status, err_body, err_headers end
    if not entra.remove_password(app, body.keyId) then
        return graph_error(req, 400, "Request_BadRequest", string.format(
            "No password credential found with keyId '%s'.", tostring(body.keyId)))
    end
    return reply(req, 204, nil)
end


local function me(req, claims)
    if claims.idtyp ~= "user" then
        return graph_error(req, 400, "BadRequest",
            "/me request is only valid with delegated authentication flow.")
    end
    local user
    for _, u in ipairs(entra.users()) do
        if u.oid == claims.oid then user = u end
    end
    if not user then return not_found(req, claims.oid) end
    return entity(req, "users", {
        businessPhones = json.array(), displayName = user.name or user.upn, givenName = null,
        jobTitle = null, mail = null, mobilePhone = null, officeLocation = null,
        preferredLanguage = null, surname = null, userPrincipalName = user.upn, id = user.oid,
    })
end


local function get_by_ids(req, claims)
    local body, err_status, err_body, err_headers = read_body(req)
    if not body then return err_status, err_body, err_headers end
    local value = json.array()
    for _, id in ipairs(type(body.ids) == "table" and body.ids or {}) do
        local sp = find(claims, id, "sp")
        local app = not sp and find(claims, id, "object")
        if sp then
            local o = service_principal(sp)
            o["@odata.type"] = "#microsoft.graph.servicePrincipal"
            value[#value + 1] = o
        elseif app then
            local o = application(app)
            o["@odata.type"] = "#microsoft.graph.application"
            value[#value + 1] = o
        else
            for _, u in ipairs(entra.users()) do
                if u.oid == id and u.tenant == claims.tid then
                    value[#value + 1] = { ["@odata.type"] = "#microsoft.graph.user", id = u.oid,
                        displayName = u.name or u.upn, userPrincipalName = u.upn }
                end
            end
        end
    end
    return reply(req, 200, { ["@odata.context"] = base() .. "/$metadata#directoryObjects",
        value = value })
end


--- The graph listener's routes.
function M.routes()
    local routes = {}
    local function add(key, fn, write)
        sim.add(routes, "graph", key, guarded(fn, write))
    end
    add("GET /v1.0/servicePrincipals", list_service_principals)
    add("POST /v1.0/servicePrincipals", create_service_principal, true)
    add("GET /v1.0/servicePrincipals/{id}", get_service_principal)
    add("DELETE /v1.0/servicePrincipals/{id}", delete_service_principal, true)
    add("GET /v1.0/applications", list_applications)
    add("POST /v1.0/applications", create_application, true)
    add("GET /v1.0/applications/{id}", get_application)
    add("PATCH /v1.0/applications/{id}", update_application, true)
    add("DELETE /v1.0/applications/{id}", delete_application, true)
    add("POST /v1.0/applications/{id}/addPassword", add_password, true)
    add("POST /v1.0/applications/{id}/removePassword", remove_password, true)
    add("GET /v1.0/{keyed}", get_by_alternate_key)
    add("GET /v1.0/me", me)
    add("POST /v1.0/directoryObjects/getByIds", get_by_ids)
    return routes
end

return M

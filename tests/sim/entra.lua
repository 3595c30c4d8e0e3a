-- Simulated Microsoft Entra ID (login.microsoftonline.com), served on the "login" listener.
--
-- Routes (wire-formats.md §1, real-clients.md §2.1):
--   POST /{tenant}/oauth2/v2.0/token                  client_credentials (secret in the body or
--        HTTP Basic, or a certificate client assertion), authorization_code (+ PKCE S256/plain),
--        refresh_token (rotated on every use)
--   GET  /{tenant}/oauth2/v2.0/authorize              auth-code flow; signs a user in at once
--   GET  /{tenant}/v2.0/.well-known/openid-configuration
--   GET  /{tenant}/discovery/v2.0/keys                and the v1 /{tenant}/discovery/keys
--   GET  /common/discovery/instance                   instance discovery (api-version 1.0/1.1)
--   GET  /adfs/.well-known/openid-configuration       az's "ADFS authority" trick (real-clients
--        §2.1): points at the default tenant's endpoints
--   POST /_sim/entra/certificates                     registers a certificate, see below
--
-- The directory. The scenario's applications are copied into module state at load and on every
-- /_sim/reset, so Graph (graph.lua) can add applications, service principals, secrets and
-- certificates that this token endpoint then honours, and a reset brings the scenario back.
-- graph.lua uses the functions exported below (M.app, M.add_application, M.add_password, ...).
--
-- Certificates. An application accepts a client assertion signed by any of its registered
-- certificates. A certificate is registered in one of three ways:
--   * in the scenario: certificates = {{name =, pem = "-----BEGIN CERTIFICATE-----..."}} or
--     {name =, pem_file = path}; entries with neither (a bare name) are placeholders and ignored;
--   * at run time on the login listener (what tests use, since only the test knows its key):
--       POST /_sim/entra/certificates {"appId": "...", "pem": "-----BEGIN CERTIFICATE-----...",
--                                      "displayName": "optional", "endDateTime": "optional ISO"}
--     → 201 {"keyId", "thumbprint" (SHA-1 hex, upper case), "x5t", "x5t#S256"};
--   * through Graph, as az does: keyCredentials in POST /v1.0/applications or
--     PATCH /v1.0/applications/{id} (type AsymmetricX509Cert, key = base64 of the DER).
-- The assertion's header must carry x5t or x5t#S256 (padded or not); alg RS256 or PS256; aud
-- the token endpoint URL (tenant id or domain form); iss = sub = client_id; exp in the future
-- (5 minutes of clock skew); nbf is optional.
--
-- Users. The authorize endpoint has no browser: it signs in the scenario user named by
-- login_hint, else the first of sim.scenario.users ({upn =, oid =, tenant =, name =}) in the
-- tenant, else a default simulated user "sim-user@<tenant domain>". sim.knobs.authorize_error =
-- "access_denied" (any error word) makes it redirect with that error instead.
--
-- Applications may also carry: public_client = true (no secret needed to redeem codes),
-- redirect_uris = {...} (exact match; without it any http(s) redirect URI is accepted), and
-- graph_roles = {...} (the "roles" claim of Graph tokens; default {"Application.ReadWrite.All"}).
--
-- Knobs: expire_all_secrets (every secret counts as expired), token_lifetime (tokens.lua),
-- auth_code_lifetime (default 600 s), refresh_token_lifetime (default 90 days), authorize_error.
local crypto = require "aurora.crypto"
local http = require "aurora.http"
local json = require "aurora.json"
local jwt = require "aurora.jwt"
local scenario = require "scenario"
local sim = require "sim"
local tokens = require "tokens"

local M = {}

local AKS_SERVER_APP = "6dae42f8-4368-4678-94ff-3960e28e3630"
local GRAPH_APP = "00000003-0000-0000-c000-000000000000"
local ARM_APP = "797f4846-ba00-4fd7-ba43-dac1f8f63013"
local ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
local OIDC_SCOPES = { openid = true, offline_access = true, profile = true, email = true }
local DEFAULT_GRAPH_ROLES = { "Application.ReadWrite.All" }
local CLOCK_SKEW = 300

-- Hosts whose instance discovery succeeds, besides the simulator's own.
local KNOWN_HOSTS = {
    ["login.microsoftonline.com"] = true, ["login.windows.net"] = true,
    ["login.microsoft.com"] = true, ["sts.windows.net"] = true,
    ["login.partner.microsoftonline.cn"] = true, ["login.chinacloudapi.cn"] = true,
    ["login.microsoftonline.us"] = true, ["login.usgovcloudapi.net"] = true,
    ["login-us.microsoftonline.com"] = true,
}

-- Module state, rebuilt by reset(): the directory and the grants in flight.
local dir      -- {apps = {...}, by_app = {}, by_object = {}, by_sp = {}}
local codes    -- code -> grant
local redeemed -- code -> true once used
local refresh  -- refresh token -> grant
local default_users -- built on first use when the scenario has no users


-- ---- small helpers ---------------------------------------------------------------------------

local function login_url()
    return sim.config.urls.login
end


local function url_decode(s)
    s = s:gsub("+", " ")
    return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end


--- Parses an application/x-www-form-urlencoded body; the last value wins for a repeated name.
local function parse_form(body)
    local t = {}
    for pair in (body or ""):gmatch("[^&]+") do
        local k, v = pair:match("^([^=]*)=(.*)$")
        if not k then k, v = pair, "" end
        t[url_decode(k)] = url_decode(v)
    end
    return t
end

M.parse_form = parse_form


local function iso(t)
    return sim.timestamp(t, true)
end


--- Unix seconds of an ISO 8601 UTC time ("2026-01-02T03:04:05Z", fractions and offsets
-- tolerated as Graph clients send them); nil when it does not parse.
local function parse_iso(s)
    if type(s) ~= "string" then return nil end
    local y, mo, d, h, mi, sec = s:match("^(%d%d%d%d)-(%d%d)-(%d%d)[T ](%d%d):(%d%d):(%d%d)")
    if not y then
        y, mo, d = s:match("^(%d%d%d%d)-(%d%d)-(%d%d)$")
        if not y then return nil end
        h, mi, sec = 0, 0, 0
    end
    y, mo, d = tonumber(y), tonumber(mo), tonumber(d)
    -- Days from civil (Howard Hinnant's algorithm), so the result does not depend on TZ.
    local yy = mo <= 2 and y - 1 or y
    local era = (yy >= 0 and yy or yy - 399) // 400
    local yoe = yy - era * 400
    local doy = (153 * (mo + (mo > 2 and -3 or 9)) + 2) // 5 + d - 1
    local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    local days = era * 146097 + doe - 719468
    local t = days * 86400 + tonumber(h) * 3600 + tonumber(mi) * 60 + tonumber(sec)
    local sign, oh, om = s:match("([+-])(%d%d):?(%d%d)$")
    if sign then
        local off = tonumber(oh) * 3600 + tonumber(om) * 60
        t = sign == "+" and t - off or t + off
    end
    return t
end

M.parse_iso = parse_iso


local function random_token(n)
    return crypto.b64url_encode(crypto.random(n))
end


local function is_guid(s)
    return s:match("^%x%x%x%x%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$")
        ~= nil
end


local function copy_list(list)
    local out = {}
    for i, v in ipairs(list or {}) do
        local c = {}
        for k, x in pairs(v) do c[k] = x end
        out[i] = c
    end
    return out
end


-- ---- errors (wire-formats §1.7) --------------------------------------------------------------

local function no_store(headers)
    headers = headers or {}
    headers["Cache-Control"] = "no-store, no-cache"
    headers["Pragma"] = "no-cache"
    headers["Expires"] = "-1"
    return headers
end


-- Error answers travel through helpers as one value (an Answer table, so `return nil, err`
-- keeps it whole); serve() unpacks it into status, body, headers at the route.
local Answer = {}


local function serve(fn)
    return function(req)
        local status, body, headers = fn(req)
        if getmetatable(status) == Answer then
            return status[1], status[2], status[3]
        end
        return status, body, headers
    end
end


--- An Entra error answer: status, error word, AADSTS number and message (without the prefix).
local function aad_error(req, status, err, code, message, extra)
    local trace = sim.uuid()
    local corr = req and req.headers["client-request-id"] or sim.uuid()
    local ts = sim.timestamp()
    local body = {
        error = err,
        error_description = string.format("AADSTS%d: %s\r\nTrace ID: %s\r\nCorrelation ID: %s" ..
            "\r\nTimestamp: %s", code, message, trace, corr, ts),
        error_codes = json.array { code },
        timestamp = ts,
        trace_id = trace,
        correlation_id = corr,
        error_uri = login_url() .. "/error?code=" .. code,
    }
    for k, v in pairs(extra or {}) do body[k] = v end
    return setmetatable({ sim.json(status, body, no_store { ["x-ms-request-id"] = trace }) },
        Answer)
end


local function missing_param(req, name)
    return aad_error(req, 400, "invalid_request", 900144, string.format(
        "The request body must contain the following parameter: '%s'.", name))
end


-- ---- the directory ---------------------------------------------------------------------------

local function cert_pem_from_base64(b64)
    local der = crypto.b64decode((b64:gsub("%s", "")))
    if not der then return nil end
    if der:find("-----BEGIN", 1, true) then return der end
    local body = crypto.b64encode(der)
    local lines = {}
    for i = 1, #body, 64 do lines[#lines + 1] = body:sub(i, i + 63) end
    return "-----BEGIN CERTIFICATE-----\n" .. table.concat(lines, "\n") ..
        "\n-----END CERTIFICATE-----\n"
end

M.cert_pem_from_base64 = cert_pem_from_base64


--- Registers a certificate (PEM text) on app. opts: keyId, displayName, start, expires (Unix
-- seconds; default the certificate's own dates). Returns the credential entry, or nil, message.
function M.add_certificate(app, pem, opts)
    opts = opts or {}
    local cert, msg = crypto.load_cert(pem)
    if not cert then
        return nil, "not a certificate: " .. tostring(msg)
    end
    local entry = {
        keyId = opts.keyId or sim.uuid(),
        displayName = opts.displayName or cert:subject(),
        cert = cert,
        x5t = cert:x5t(),
        x5t_s256 = cert:x5t_s256(),
        thumbprint = crypto.hex(cert:thumbprint("sha1")):upper(),
        start = opts.start or cert:not_before(),
        expires = opts.expires or cert:not_after(),
    }
    app.certs[#app.certs + 1] = entry
    return entry
end


local function add_app(app)
    app.secrets = copy_list(app.secrets)
    app.certs = app.certs or {}
    app.created = app.created or os.time()
    dir.apps[#dir.apps + 1] = app
    dir.by_app[app.appId:lower()] = app
    if app.objectId then dir.by_object[app.objectId:lower()] = app end
    if app.spObjectId then dir.by_sp[app.spObjectId:lower()] = app end
    return app
end


local function reset()
    dir = { apps = {}, by_app = {}, by_object = {}, by_sp = {} }
    codes, redeemed, refresh = {}, {}, {}
    for _, a in ipairs(sim.scenario.applications) do
        local app = {}
        for k, v in pairs(a) do app[k] = v end
        add_app(app)
        for _, c in ipairs(a.certificates or {}) do
            local pem = c.pem or (c.pem_file and sim.read_file(c.pem_file))
            if pem then
                assert(M.add_certificate(app, pem, { displayName = c.name, keyId = c.id }))
            end
        end
    end
end


--- Every application of the directory (scenario ones first, then those Graph created).
function M.apps()
    return dir.apps
end


--- The application with this appId, object id (kind "object") or service principal object id
-- (kind "sp"); nil when there is none.
function M.app(id, kind)
    if type(id) ~= "string" then return nil end
    local t = kind == "object" and dir.by_object or kind == "sp" and dir.by_sp or dir.by_app
    return t[id:lower()]
end


--- Creates an application: fields as in the scenario (displayName, tenant, ...). appId and
-- objectId are generated unless given. It has no service principal until M.add_service_principal.
function M.add_application(fields)
    fields.appId = fields.appId or sim.uuid()
    fields.objectId = fields.objectId or sim.uuid()
    return add_app(fields)
end


--- Gives app its service principal (a new object id) and returns that id.
function M.add_service_principal(app)
    if not app.spObjectId then
        app.spObjectId = sim.uuid()
        app.sp_created = os.time()
        dir.by_sp[app.spObjectId:lower()] = app
    end
    return app.spObjectId
end


--- Removes an application and its service principal.
function M.remove_application(app)
    for i, a in ipairs(dir.apps) do
        if a == app then
            table.remove(dir.apps, i)
            break
        end
    end
    dir.by_app[app.appId:lower()] = nil
    if app.objectId then dir.by_object[app.objectId:lower()] = nil end
    if app.spObjectId then dir.by_sp[app.spObjectId:lower()] = nil end
end


--- Removes only the service principal of app.
function M.remove_service_principal(app)
    if app.spObjectId then
        dir.by_sp[app.spObjectId:lower()] = nil
        app.spObjectId = nil
    end
end


--- Adds a generated client secret to app. opts: displayName, start, expires (Unix seconds;
-- default two years). Returns the secret entry {id, value, displayName, start, expires}.
function M.add_password(app, opts)
    opts = opts or {}
    local now = os.time()
    -- Shaped like real secrets: 40 characters with "8Q~" after the 3-character hint.
    local value = random_token(3):sub(1, 3) .. "8Q~" .. random_token(32):sub(1, 34)
    local s = { id = sim.uuid(), value = value, displayName = opts.displayName,
        start = opts.start or now, expires = opts.expires or now + 2 * 365 * 86400 }
    app.secrets[#app.secrets + 1] = s
    return s
end


--- Removes the secret with keyId from app; true when there was one.
function M.remove_password(app, key_id)
    for i, s in ipairs(app.secrets) do
        if s.id and s.id:lower() == tostring(key_id):lower() then
            table.remove(app.secrets, i)
            return true
        end
    end
    return false
end


--- The tenant named by a GUID or domain, or nil.
function M.tenant(id)
    if type(id) ~= "string" then return nil end
    return sim.scenario.by_tenant[id] or sim.scenario.by_tenant[id:lower()]
end


--- The signed-in users: the scenario's, or one default user per tenant.
function M.users()
    if sim.scenario.users and #sim.scenario.users > 0 then
        return sim.scenario.users
    end
    if not default_users then
        local list = {}
        for i, t in ipairs(sim.scenario.tenants) do
            list[#list + 1] = { upn = "sim-user@" .. (t.domain or (t.id .. ".onmicrosoft.com")),
                oid = scenario.guid(i, 4242), tenant = t.id, name = "Simulated User" }
        end
        default_users = list
    end
    return default_users
end


local function pick_user(tenant, hint)
    local first
    for _, u in ipairs(M.users()) do
        if not tenant or u.tenant == tenant.id then
            if hint and u.upn and u.upn:lower() == hint:lower() then
                return u
            end
            first = first or u
        end
    end
    return first
end


-- ---- scopes and audiences --------------------------------------------------------------------

--- The access-token audience for a resource (a scope without its last "/permission"), and
-- the kind of resource ("arm", "graph", "aks"); nil for an unknown resource.
local function audience_for(resource)
    local bare = resource:lower():gsub("/+$", "")
    if bare == "https://management.core.windows.net" then
        return "https://management.core.windows.net/", "arm"
    end
    if bare == "https://management.azure.com" or bare == ARM_APP then
        return "https://management.azure.com/", "arm"
    end
    if bare == "https://graph.microsoft.com" or bare == GRAPH_APP then
        return "https://graph.microsoft.com", "graph"
    end
    local graph = sim.config.urls.graph:lower():gsub("/+$", "")
    if bare == graph then
        -- az uses its microsoftGraphResourceId ("<sim graph>/") as the audience: keep the form
        -- it asked for.
        return resource:sub(-1) == "/" and sim.config.urls.graph .. "/" or sim.config.urls.graph,
            "graph"
    end
    if bare == AKS_SERVER_APP then
        return AKS_SERVER_APP, "aks"
    end
    return nil
end

M.audience_for = audience_for


--- Splits a scope parameter into its resource scopes and the OIDC scopes asked for.
local function split_scopes(scope)
    local resource_scopes, oidc = {}, {}
    for s in (scope or ""):gmatch("%S+") do
        if OIDC_SCOPES[s] then
            oidc[s] = true
        else
            resource_scopes[#resource_scopes + 1] = s
        end
    end
    return resource_scopes, oidc
end


--- The resource and permission of one delegated scope: "https://x//user_impersonation" →
-- "https://x/", "user_impersonation"; a bare "User.Read" is a Graph permission.
local function scope_resource(s)
    local resource, perm = s:match("^(.*)/([^/]*)$")
    if not resource or resource == "" then
        return "https://graph.microsoft.com", s
    end
    return resource, perm
end


-- ---- client authentication -------------------------------------------------------------------

local function basic_credentials(req)
    local h = req.headers.authorization
    local b64 = h and h:match("^[Bb]asic%s+(%S+)$")
    if not b64 then return nil end
    local raw = crypto.b64decode(b64)
    if not raw then return nil end
    local id, secret = raw:match("^([^:]*):(.*)$")
    if not id then return nil end
    return url_decode(id), url_decode(secret)
end


local function token_endpoints(tenant_as_given, tenant)
    local base = login_url() .. "/"
    local list = { base .. tenant_as_given .. "/oauth2/v2.0/token" }
    if tenant then
        list[#list + 1] = base .. tenant.id .. "/oauth2/v2.0/token"
        if tenant.domain then list[#list + 1] = base .. tenant.domain .. "/oauth2/v2.0/token" end
    end
    return list
end


local function contains(list, v)
    if type(list) == "string" then return list == v end
    for _, x in ipairs(list or {}) do
        if x == v then return true end
    end
    return false
end


local function strip_padding(s)
    return type(s) == "string" and (s:gsub("=+$", "")) or nil
end


local function check_assertion(req, form, app, tenant_as_given, tenant)
    if form.client_assertion_type ~= ASSERTION_TYPE then
        return nil, aad_error(req, 400, "invalid_request", 50027, "JWT token is invalid or " ..
            "malformed: client_assertion_type must be '" .. ASSERTION_TYPE .. "'.")
    end
    local assertion = form.client_assertion
    local header, claims = jwt.decode(assertion)
    if not header then
        return nil, aad_error(req, 401, "invalid_client", 50027,
            "JWT token is invalid or malformed.")
    end
    local x5t, x5t256 = strip_padding(header.x5t), strip_padding(header["x5t#S256"])
    local used = x5t and crypto.hex(crypto.b64url_decode(x5t) or ""):upper() or
        (x5t256 and crypto.hex(crypto.b64url_decode(x5t256) or ""):upper()) or ""
    local entry
    for _, c in ipairs(app.certs) do
        if (x5t and c.x5t == x5t) or (x5t256 and c.x5t_s256 == x5t256) then
            entry = c
            break
        end
    end
    if not entry then
        return nil, aad_error(req, 401, "invalid_client", 700027, string.format(
            "Client assertion contains an invalid signature. [Reason - The key was not found., " ..
            "Thumbprint of key used by client: '%s', Please visit the Azure Portal, Graph " ..
            "Explorer or directly use MS Graph to see configured keys for app Id '%s'.]",
            used, app.appId))
    end
    local now = os.time()
    if entry.expires and entry.expires <= now then
        return nil, aad_error(req, 401, "invalid_client", 700027, string.format(
            "Client assertion contains an invalid signature. [Reason - The key used is " ..
            "expired., " ..
            "Thumbprint of key used by client: '%s', Found key 'Start=%s, End=%s']", used,
            iso(entry.start), iso(entry.expires)))
    end
    local verified, _, code = jwt.verify(assertion, entry.cert, { algs = { "RS256", "PS256" },
        leeway = CLOCK_SKEW })
    if not verified then
        if code == "expired" or (code == "invalid" and type(claims.nbf) == "number" and
            claims.nbf > now) then
            return nil, aad_error(req, 401, "invalid_client", 700024, string.format(
                "Client assertion is not within its valid time range. Current time: %s, " ..
                "expiry time of assertion %s.", iso(now), iso(tonumber(claims.exp) or 0)))
        end
        return nil, aad_error(req, 401, "invalid_client", 700027,
            "Client assertion contains an invalid signature. [Reason - The signature does not " ..
            "verify with the key registered for this thumbprint.]")
    end
    if type(verified.exp) ~= "number" then
        return nil, aad_error(req, 401, "invalid_client", 700024,
            "Client assertion is not within its valid time range: it has no 'exp' claim.")
    end
    local auds = token_endpoints(tenant_as_given, tenant)
    local aud_ok = false
    for _, a in ipairs(auds) do
        if contains(verified.aud, a) then aud_ok = true end
    end
    if not aud_ok then
        return nil, aad_error(req, 401, "invalid_client", 700212, string.format(
            "The client assertion audience claim does not match the token endpoint '%s'.",
            auds[1]))
    end
    if verified.iss ~= app.appId or verified.sub ~= app.appId then
        return nil, aad_error(req, 401, "invalid_client", 700021,
            "Client assertion application identifier doesn't match 'client_id' parameter. " ..
            "Review the documentation at https://docs.microsoft.com/en-us/azure/active-" ..
            "directory/develop/active-directory-certificate-credentials .")
    end
    return "2"
end


local function check_secret(req, given, app)
    local now = os.time()
    for _, s in ipairs(app.secrets) do
        if s.value and crypto.equals(s.value, given) then
            if sim.knobs.expire_all_secrets or (s.expires and s.expires <= now) then
                return nil, aad_error(req, 401, "invalid_client", 7000222, string.format(
                    "The provided client secret keys for app '%s' are expired. Visit the Azure " ..
                    "portal to create new keys for your app: https://aka.ms/NewClientSecret, or " ..
                    "consider using certificate credentials for added security: " ..
                    "https://aka.ms/certCreds.", app.appId))
            end
            return "1"
        end
    end
    return nil, aad_error(req, 401, "invalid_client", 7000215, string.format(
        "Invalid client secret provided. Ensure the secret being sent in the request is the " ..
        "client secret value, not the client secret ID, for a secret added to app '%s'.",
        app.appId))
end


--- Authenticates the client. Returns the app, its appidacr ("0" public, "1" secret,
-- "2" certificate) and the resolved tenant, or nil and an error answer.
local function authenticate(req, form, tenant_as_given, tenant, public_ok)
    local basic_id, basic_secret = basic_credentials(req)
    local client_id = form.client_id or basic_id
    if not client_id or client_id == "" then
        return nil, missing_param(req, "client_id")
    end
    local app = M.app(client_id)
    local home = tenant or (app and M.tenant(app.tenant))
    if not app or (tenant and app.tenant ~= tenant.id) then
        local t = tenant or M.tenant(sim.scenario.default.tenant)
        return nil, aad_error(req, 400, "unauthorized_client", 700016, string.format(
            "Application with identifier '%s' was not found in the directory '%s'. This can " ..
            "happen if the application has not been installed by the administrator of the " ..
            "tenant or consented to by any user in the tenant. You may have sent your " ..
            "authentication request to the wrong tenant.", client_id,
            t and (t.name or t.id) or tenant_as_given))
    end
    if not app.spObjectId then
        return nil, aad_error(req, 401, "invalid_client", 7000229, string.format(
            "The client application %s is missing service principal in the tenant %s. See " ..
            "instructions here: https://go.microsoft.com/fwlink/?linkid=2225119", app.appId,
            home.id))
    end
    local secret = form.client_secret or basic_secret
    if secret then
        local acr, err = check_secret(req, secret, app)
        if not acr then return nil, err end
        return app, acr, home
    end
    if form.client_assertion then
        local acr, err = check_assertion(req, form, app, tenant_as_given, home)
        if not acr then return nil, err end
        return app, acr, home
    end
    if public_ok and app.public_client then
        return app, "0", home
    end
    if public_ok then
        return nil, aad_error(req, 401, "invalid_client", 7000218, "The request body must " ..
            "contain the following parameter: 'client_assertion' or 'client_secret'.")
    end
    return nil, aad_error(req, 401, "invalid_client", 7000216, "'client_assertion', " ..
        "'client_secret' or 'request' is required for the 'client_credentials' grant type.")
end


-- ---- tenant resolution -----------------------------------------------------------------------

local GENERIC_TENANTS = { common = true, organizations = true, adfs = true }


--- Resolves the {tenant} path segment. Returns the tenant (nil for common/organizations) or
-- nil and an error answer.
local function resolve_tenant(req, given)
    if GENERIC_TENANTS[given:lower()] then
        if given:lower() == "adfs" then
            return M.tenant(sim.scenario.default.tenant)
        end
        return nil
    end
    local t = M.tenant(given)
    if t then return t end
    if not is_guid(given) and not given:find(".", 1, true) then
        return nil, aad_error(req, 400, "invalid_request", 900023, string.format(
            "Specified tenant identifier '%s' is neither a valid DNS name, nor a valid " ..
            "external domain.", given))
    end
    return nil, aad_error(req, 400, "invalid_tenant", 90002, string.format(
        "Tenant '%s' not found. Check to make sure you have the correct tenant ID and are " ..
        "signing into the correct cloud. Check with your subscription administrator, this may " ..
        "happen if there are no active subscriptions for the tenant.", given))
end


-- ---- tokens ----------------------------------------------------------------------------------

local function token_reply(req, body)
    local headers = no_store { ["x-ms-request-id"] = sim.uuid() }
    if req.headers["client-request-id"] then
        headers["client-request-id"] = req.headers["client-request-id"]
    end
    return sim.json(200, body, headers)
end


local function app_token(app, acr, tenant, aud, kind)
    local claims = {
        aud = aud, tid = tenant.id, oid = app.spObjectId, sub = app.spObjectId,
        appid = app.appId, azp = app.appId, appidacr = acr, azpacr = acr, idtyp = "app",
        idp = "https://sts.windows.net/" .. tenant.id .. "/",
    }
    if kind == "graph" then
        local roles = json.array()
        for i, r in ipairs(app.graph_roles or DEFAULT_GRAPH_ROLES) do roles[i] = r end
        claims.roles = roles
    end
    return tokens.mint(claims)
end


local function grant_client_credentials(req, form, tenant_as_given, tenant)
    local app, acr, home = authenticate(req, form, tenant_as_given, tenant, false)
    if not app then return acr end
    if not form.scope or form.scope == "" then
        return missing_param(req, "scope")
    end
    local resource_scopes = split_scopes(form.scope)
    if #resource_scopes ~= 1 or not resource_scopes[1]:match("/%.default$") then
        if #resource_scopes > 1 then
            return aad_error(req, 400, "invalid_scope", 70011, string.format(
                "The provided value for the input parameter 'scope' is not valid. The scope " ..
                "'%s' is not valid: client credential flows take exactly one resource.",
                form.scope))
        end
        return aad_error(req, 400, "invalid_scope", 1002012, string.format(
            "The provided value for scope %s is not valid. Client credential flows must have a " ..
            "scope value with /.default suffixed to the resource identifier (application ID URI).",
            form.scope))
    end
    local resource = resource_scopes[1]:sub(1, -#"/.default" - 1)
    local aud, kind = audience_for(resource)
    if not aud then
        return aad_error(req, 400, "invalid_resource", 500011, string.format(
            "The resource principal named %s was not found in the tenant named %s. This can " ..
            "happen if the application has not been installed by the administrator of the " ..
            "tenant or consented to by any user in the tenant. You might have sent your " ..
            "authentication request to the wrong tenant.", resource, home.name or home.id))
    end
    local access, lifetime = app_token(app, acr, home, aud, kind)
    return token_reply(req, { token_type = "Bearer", expires_in = lifetime,
        ext_expires_in = lifetime, access_token = access })
end


--- Resolves delegated scopes to one resource. Returns aud, kind, scp, or nil and an error.
local function delegated_resource(req, resource_scopes)
    if #resource_scopes == 0 then
        return "https://graph.microsoft.com", "graph", "openid profile email User.Read"
    end
    local resource, perms = nil, {}
    for _, s in ipairs(resource_scopes) do
        local r, p = scope_resource(s)
        if resource and r:gsub("/+$", ""):lower() ~= resource:gsub("/+$", ""):lower() then
            return nil, aad_error(req, 400, "invalid_scope", 28000, string.format(
                "Provided value for the input parameter scope is not valid because it contains " ..
                "more than one resource. Scope %s is not valid.", table.concat(resource_scopes,
                " ")))
        end
        resource = resource or r
        perms[#perms + 1] = p
    end
    local aud, kind = audience_for(resource)
    if not aud then
        return nil, aad_error(req, 400, "invalid_resource", 500011, string.format(
            "The resource principal named %s was not found in the tenant.", resource))
    end
    for i, p in ipairs(perms) do
        if p == ".default" then
            perms[i] = kind == "graph" and "User.Read" or "user_impersonation"
        end
    end
    return aud, kind, table.concat(perms, " ")
end


local function user_tokens(req, grant, app, acr, resource_scopes)
    local aud, kind, scp = delegated_resource(req, resource_scopes)
    if not aud then return kind end
    local user, tenant = grant.user, M.tenant(grant.user.tenant)
    local sub = crypto.b64url_encode(crypto.sha256(user.oid .. app.appId)):sub(1, 43)
    local access, lifetime = tokens.mint {
        aud = aud, tid = tenant.id, oid = user.oid, sub = sub, upn = user.upn,
        unique_name = user.upn, name = user.name or user.upn, appid = app.appId,
        azp = app.appId, appidacr = acr, azpacr = acr, scp = scp, idtyp = "user",
        amr = json.array { "pwd" }, ipaddr = req.remote_addr,
        idp = "https://sts.windows.net/" .. tenant.id .. "/",
    }
    local body = { token_type = "Bearer", scope = table.concat(resource_scopes, " "),
        expires_in = lifetime, ext_expires_in = lifetime, access_token = access }
    if body.scope == "" then body.scope = scp end
    if grant.oidc.openid then
        body.id_token = tokens.mint {
            aud = app.appId, iss = login_url() .. "/" .. tenant.id .. "/v2.0", tid = tenant.id,
            oid = user.oid, sub = sub, preferred_username = user.upn,
            name = user.name or user.upn, nonce = grant.nonce, ver = "2.0",
        }
    end
    if grant.oidc.offline_access then
        local rt = "0.A" .. random_token(48)
        refresh[rt] = { client_id = app.appId, user = user, oidc = grant.oidc,
            scopes = resource_scopes, nonce = nil,
            expires = os.time() + (sim.knobs.refresh_token_lifetime or 90 * 86400) }
        body.refresh_token = rt
    end
    if grant.client_info then
        body.client_info = crypto.b64url_encode(json.encode { uid = user.oid, utid = tenant.id })
    end
    return token_reply(req, body)
end


local function valid_verifier(v)
    return #v >= 43 and #v <= 128 and not v:find("[^%w%-%._~]")
end


local function grant_authorization_code(req, form, tenant_as_given, tenant)
    if not form.code or form.code == "" then
        return missing_param(req, "code")
    end
    local app, acr = authenticate(req, form, tenant_as_given, tenant, true)
    if not app then return acr end
    local grant = codes[form.code]
    if not grant then
        if redeemed[form.code] then
            return aad_error(req, 400, "invalid_grant", 54005, "OAuth2 Authorization code was " ..
                "already redeemed, please retry with a new valid code or use an existing " ..
                "refresh token.")
        end
        return aad_error(req, 400, "invalid_grant", 9002313,
            "Invalid request. Request is malformed or invalid.")
    end
    if grant.expires <= os.time() then
        codes[form.code] = nil
        return aad_error(req, 400, "invalid_grant", 70008, "The provided authorization code or " ..
            "refresh token has expired due to inactivity. Send a new interactive authorization " ..
            "request for this user and resource.")
    end
    if grant.client_id ~= app.appId then
        return aad_error(req, 400, "invalid_grant", 70000,
            "Provided grant is invalid or malformed: the code was issued to another client.")
    end
    if form.redirect_uri ~= grant.redirect_uri then
        return aad_error(req, 400, "invalid_grant", 70000, "Provided grant is invalid or " ..
            "malformed: redirect_uri does not match the one used in the authorization request.")
    end
    if grant.challenge then
        local v = form.code_verifier
        if not v or v == "" then
            return missing_param(req, "code_verifier")
        end
        local expected = grant.method == "S256" and
            crypto.b64url_encode(crypto.sha256(v)) or v
        if not valid_verifier(v) or not crypto.equals(expected, grant.challenge) then
            return aad_error(req, 400, "invalid_grant", 501481, "The Code_Verifier does not " ..
                "match the code_challenge supplied in the authorization request.")
        end
    end
    codes[form.code] = nil
    redeemed[form.code] = true
    grant.client_info = form.client_info == "1"
    return user_tokens(req, grant, app, acr, grant.scopes)
end


local function grant_refresh_token(req, form, tenant_as_given, tenant)
    if not form.refresh_token or form.refresh_token == "" then
        return missing_param(req, "refresh_token")
    end
    local app, acr = authenticate(req, form, tenant_as_given, tenant, true)
    if not app then return acr end
    local grant = refresh[form.refresh_token]
    if not grant then
        return aad_error(req, 400, "invalid_grant", 9002313,
            "Invalid request. Request is malformed or invalid: unknown or already used " ..
            "refresh token.")
    end
    if grant.expires <= os.time() then
        refresh[form.refresh_token] = nil
        return aad_error(req, 400, "invalid_grant", 700082, "The refresh token has expired due " ..
            "to inactivity. The token was issued and was inactive for the allowed time.")
    end
    if grant.client_id ~= app.appId then
        return aad_error(req, 400, "invalid_grant", 70000,
            "Provided grant is invalid or malformed: the refresh token belongs to another client.")
    end
    if tenant and grant.user.tenant ~= tenant.id then
        return aad_error(req, 400, "invalid_grant", 70000,
            "Provided grant is invalid or malformed: the refresh token is for another tenant.")
    end
    refresh[form.refresh_token] = nil
    local scopes, oidc = grant.scopes, grant.oidc
    if form.scope and form.scope ~= "" then
        scopes, oidc = split_scopes(form.scope)
    end
    -- A refresh always yields a new refresh token: the old one is rotated out.
    oidc.offline_access = true
    return user_tokens(req, { user = grant.user, oidc = oidc,
        client_info = form.client_info == "1" }, app, acr, scopes)
end


local function token(req)
    local tenant_as_given = req.params.tenant or "adfs"
    local tenant, err = resolve_tenant(req, tenant_as_given)
    if err then return err end
    local form = parse_form(req.body)
    local grant_type = form.grant_type
    if not grant_type or grant_type == "" then
        return missing_param(req, "grant_type")
    end
    if grant_type == "client_credentials" then
        return grant_client_credentials(req, form, tenant_as_given, tenant)
    elseif grant_type == "authorization_code" then
        return grant_authorization_code(req, form, tenant_as_given, tenant)
    elseif grant_type == "refresh_token" then
        return grant_refresh_token(req, form, tenant_as_given, tenant)
    end
    return aad_error(req, 400, "unsupported_grant_type", 70003, string.format(
        "The app requested an unsupported grant type '%s'.", grant_type))
end


-- ---- authorize -------------------------------------------------------------------------------

local function redirect_allowed(app, uri)
    if not uri or uri == "" then return false end
    if app.redirect_uris then
        for _, u in ipairs(app.redirect_uris) do
            if u == uri then return true end
        end
        return false
    end
    return uri:match("^https?://[^/]") ~= nil
end


local function redirect(uri, mode, params)
    local parts = {}
    local names = {}
    for k in pairs(params) do names[#names + 1] = k end
    table.sort(names)
    for _, k in ipairs(names) do
        parts[#parts + 1] = http.escape(k) .. "=" .. http.escape(params[k])
    end
    local q = table.concat(parts, "&")
    if mode == "form_post" then
        local inputs = {}
        for _, k in ipairs(names) do
            inputs[#inputs + 1] = string.format('<input type="hidden" name="%s" value="%s"/>', k,
                params[k]:gsub("&", "&amp;"):gsub('"', "&quot;"):gsub("<", "&lt;"))
        end
        return 200, string.format('<html><body onload="document.forms[0].submit()"><form ' ..
            'method="POST" action="%s">%s</form></body></html>', uri, table.concat(inputs)),
            { ["Content-Type"] = "text/html; charset=utf-8", ["Cache-Control"] = "no-store" }
    end
    local sep = mode == "fragment" and "#" or (uri:find("?", 1, true) and "&" or "?")
    return 302, nil, { Location = uri .. sep .. q, ["Cache-Control"] = "no-store, no-cache" }
end


local function authorize(req)
    local q = req.query
    local tenant_as_given = req.params.tenant or "adfs"
    local tenant, err = resolve_tenant(req, tenant_as_given)
    if err then return err end
    if not q.client_id or q.client_id == "" then
        return missing_param(req, "client_id")
    end
    local app = M.app(q.client_id)
    if not app or (tenant and app.tenant ~= tenant.id) then
        return aad_error(req, 400, "unauthorized_client", 700016, string.format(
            "Application with identifier '%s' was not found in the directory '%s'.",
            q.client_id, tenant and (tenant.name or tenant.id) or tenant_as_given))
    end
    if not redirect_allowed(app, q.redirect_uri) then
        return aad_error(req, 400, "invalid_request", 50011, string.format(
            "The redirect URI '%s' specified in the request does not match the redirect URIs " ..
            "configured for the application '%s'.", tostring(q.redirect_uri), app.appId))
    end
    local mode = q.response_mode or "query"
    local function fail(error_word, code, message)
        local p = { error = error_word, error_description = string.format("AADSTS%d: %s",
            code, message), error_uri = login_url() .. "/error?code=" .. code }
        if q.state then p.state = q.state end
        return redirect(q.redirect_uri, mode, p)
    end
    if q.response_type ~= "code" then
        return fail("unsupported_response_type", 700054, string.format(
            "response_type '%s' is not supported; only 'code' is.", tostring(q.response_type)))
    end
    if not q.scope or q.scope == "" then
        return fail("invalid_request", 900144,
            "The request body must contain the following parameter: 'scope'.")
    end
    local method = q.code_challenge_method
    if q.code_challenge then
        method = method or "plain"
        if method ~= "S256" and method ~= "plain" then
            return fail("invalid_request", 501491, string.format(
                "Invalid code_challenge_method '%s': use S256 or plain.", method))
        end
    elseif method then
        return fail("invalid_request", 501491, "code_challenge_method without code_challenge.")
    end
    local resource_scopes, oidc = split_scopes(q.scope)
    if not delegated_resource(req, resource_scopes) then
        return fail("invalid_scope", 28000, "The scope '" .. q.scope .. "' is not valid.")
    end
    if sim.knobs.authorize_error then
        return fail(sim.knobs.authorize_error, 50126, "The user did not complete the sign-in.")
    end
    local user = pick_user(tenant or M.tenant(app.tenant), q.login_hint)
    if not user then
        return fail("login_required", 50058, "A silent sign-in request was sent but no user " ..
            "is signed in.")
    end
    local code = "1.A" .. random_token(48)
    codes[code] = { client_id = app.appId, redirect_uri = q.redirect_uri, scopes = resource_scopes,
        oidc = oidc, challenge = q.code_challenge, method = method, nonce = q.nonce,
        user = user, expires = os.time() + (sim.knobs.auth_code_lifetime or 600) }
    local p = { code = code, session_state = sim.uuid() }
    if q.state then p.state = q.state end
    if q.client_info == "1" then
        p.client_info = crypto.b64url_encode(json.encode { uid = user.oid, utid = user.tenant })
    end
    return redirect(q.redirect_uri, mode, p)
end


-- ---- discovery -------------------------------------------------------------------------------

local function openid_configuration(req)
    local given = req.params.tenant or "adfs"
    local tenant, err = resolve_tenant(req, given)
    if err then return err end
    local base = login_url()
    local path_tenant = tenant and tenant.id or given
    local issuer_tenant = tenant and tenant.id or "{tenantid}"
    local t = base .. "/" .. path_tenant
    local graph_host = sim.config.urls.graph:match("^https?://([^/]+)")
    local body = {
        token_endpoint = t .. "/oauth2/v2.0/token",
        token_endpoint_auth_methods_supported = json.array { "client_secret_post",
            "private_key_jwt", "client_secret_basic" },
        jwks_uri = t .. "/discovery/v2.0/keys",
        response_modes_supported = json.array { "query", "fragment", "form_post" },
        subject_types_supported = json.array { "pairwise" },
        id_token_signing_alg_values_supported = json.array { "RS256" },
        response_types_supported = json.array { "code", "id_token", "code id_token",
            "id_token token" },
        scopes_supported = json.array { "openid", "profile", "email", "offline_access" },
        issuer = base .. "/" .. issuer_tenant .. "/v2.0",
        request_uri_parameter_supported = false,
        userinfo_endpoint = sim.config.urls.graph .. "/oidc/userinfo",
        authorization_endpoint = t .. "/oauth2/v2.0/authorize",
        device_authorization_endpoint = t .. "/oauth2/v2.0/devicecode",
        http_logout_supported = true,
        frontchannel_logout_supported = true,
        end_session_endpoint = t .. "/oauth2/v2.0/logout",
        claims_supported = json.array { "sub", "iss", "cloud_instance_name",
            "cloud_instance_host_name", "cloud_graph_host_name", "msgraph_host", "aud", "exp",
            "iat", "auth_time", "acr", "nonce", "preferred_username", "name", "tid", "ver",
            "at_hash", "c_hash", "email" },
        kerberos_endpoint = t .. "/kerberos",
        tenant_region_scope = tenant and "WW" or json.null,
        cloud_instance_name = "microsoftonline.com",
        cloud_graph_host_name = "graph.windows.net",
        msgraph_host = graph_host,
        rbac_url = "https://pas.windows.net",
    }
    return sim.json(200, body, { ["Cache-Control"] = "max-age=86400, private",
        ["Access-Control-Allow-Origin"] = "*" })
end


local function jwks(req)
    local _, err = resolve_tenant(req, req.params.tenant or "common")
    if err then return err end
    local set = tokens.jwks()
    for _, k in ipairs(set.keys) do
        k.x5t = k.x5t or k.kid
    end
    set.keys = json.array(set.keys)
    return sim.json(200, set, { ["Cache-Control"] = "max-age=86400, private",
        ["Access-Control-Allow-Origin"] = "*" })
end


local function instance_discovery(req)
    local endpoint = req.query.authorization_endpoint
    local sim_host = login_url():match("^https?://([^/]+)")
    local sim_host_no_port = sim_host:gsub(":%d+$", "")
    local tenant = "common"
    if endpoint and endpoint ~= "" then
        local host, path = endpoint:match("^https://([^/]+)(.*)$")
        local h = host and host:lower()
        if not h or not (h == sim_host or h == sim_host_no_port or
            h:gsub(":%d+$", "") == "localhost" or KNOWN_HOSTS[h]) then
            return aad_error(req, 400, "invalid_instance", 50049, "Unknown or invalid instance.")
        end
        tenant = path:match("^/([^/]+)") or "common"
    end
    local body = {
        tenant_discovery_endpoint = login_url() .. "/" .. tenant ..
            "/v2.0/.well-known/openid-configuration",
        ["api-version"] = "1.1",
        metadata = json.array {
            { preferred_network = sim_host, preferred_cache = sim_host,
              aliases = json.array { sim_host, sim_host_no_port } },
            { preferred_network = "login.microsoftonline.com",
              preferred_cache = "login.windows.net",
              aliases = json.array { "login.microsoftonline.com", "login.windows.net",
                  "login.microsoft.com", "sts.windows.net" } },
            { preferred_network = "login.partner.microsoftonline.cn",
              preferred_cache = "login.partner.microsoftonline.cn",
              aliases = json.array { "login.partner.microsoftonline.cn",
                  "login.chinacloudapi.cn" } },
            { preferred_network = "login.microsoftonline.us",
              preferred_cache = "login.microsoftonline.us",
              aliases = json.array { "login.microsoftonline.us", "login.usgovcloudapi.net" } },
        },
    }
    return sim.json(200, body, { ["Cache-Control"] = "max-age=86400, private" })
end


-- ---- /_sim/ control --------------------------------------------------------------------------

local function register_certificate(req)
    local ok, body = pcall(req.json, req)
    if not ok or type(body) ~= "table" then
        return 400, { error = "a JSON body {appId, pem} is expected" }
    end
    local app = M.app(body.appId)
    if not app then
        return 404, { error = "no application with appId " .. tostring(body.appId) }
    end
    if type(body.pem) ~= "string" then
        return 400, { error = "pem (a PEM certificate) is required" }
    end
    local entry, msg = M.add_certificate(app, body.pem, { displayName = body.displayName,
        keyId = body.keyId, expires = parse_iso(body.endDateTime) })
    if not entry then
        return 400, { error = msg }
    end
    return 201, { keyId = entry.keyId, thumbprint = entry.thumbprint, x5t = entry.x5t,
        ["x5t#S256"] = entry.x5t_s256 }
end


--- The login listener's routes.
function M.routes()
    local routes = {}
    local add = function(key, fn) sim.add(routes, "login", key, serve(fn)) end
    add("POST /{tenant}/oauth2/v2.0/token", token)
    add("GET /{tenant}/oauth2/v2.0/authorize", authorize)
    add("GET /{tenant}/v2.0/.well-known/openid-configuration", openid_configuration)
    add("GET /{tenant}/discovery/v2.0/keys", jwks)
    add("GET /{tenant}/discovery/keys", jwks)
    add("GET /common/discovery/instance", instance_discovery)
    add("GET /adfs/.well-known/openid-configuration", openid_configuration)
    add("POST /adfs/oauth2/token", token)
    add("GET /adfs/oauth2/authorize", authorize)
    routes["POST /_sim/entra/certificates"] = register_certificate
    return routes
end

reset()
sim.on_reset(reset)

return M

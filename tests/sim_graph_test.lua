-- The simulated Microsoft Graph (tests/sim/graph.lua): token checks, service principal and
-- application queries, and what `az ad sp create-for-rbac` does, down to the new secret
-- working at the token endpoint.
local T = require "aurora.test"
local crypto = require "aurora.crypto"
local harness = require "sim.harness"
local json = require "aurora.json"
local jwt = require "aurora.jwt"

-- From tests/sim/scenarios/default.lua.
local APP_OBJECT_ID = "6b7c8d9e-0f1a-4b2c-9d3e-4f5a6b7c8d9e"
local SP_OBJECT_ID = "7c8d9e0f-1a2b-4c3d-8e4f-5a6b7c8d9e0f"
local SECRET_ID = "8d9e0f1a-2b3c-4d4e-9f5a-6b7c8d9e0f1a"
local READER_APP = "9e0f1a2b-3c4d-4e5f-8a6b-7c8d9e0f1a2c"
local READER_SECRET = "sim-secret-reader-0002"
local GRAPH_SCOPE = "https://graph.microsoft.com/.default"
local ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


--- A Graph request with a token for the default app (or the given token).
local function graph(sim, method, path, opts)
    opts = opts or {}
    if opts.bearer == nil then
        opts.bearer = assert(sim:token(GRAPH_SCOPE))
    elseif opts.bearer == false then
        opts.bearer = nil
    end
    local res = assert(sim:request("graph", method, path, opts))
    local body = res.body ~= "" and json.decode(res.body) or nil
    return res, body
end


local function filter(f)
    return { ["$filter"] = f }
end


local function expect_graph_error(res, body, status, code)
    T.eq(res.status, status, res.body)
    T.eq(body.error.code, code)
    T.eq(type(body.error.message), "string")
    T.match(body.error.innerError.date, "^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d$")
    T.match(body.error.innerError["request-id"], "^[%x-]+$")
    T.ok(body.error.innerError["client-request-id"])
end


T.test("Graph refuses a missing, foreign or garbled token with its 401 envelope", function()
    local sim = harness.start()
    local res, body = graph(sim, "GET", "/v1.0/servicePrincipals", { bearer = false })
    expect_graph_error(res, body, 401, "InvalidAuthenticationToken")
    T.eq(body.error.message, "Access token is empty.")
    T.contains(res.headers["www-authenticate"], "Bearer")
    res, body = graph(sim, "GET", "/v1.0/servicePrincipals",
        { bearer = assert(sim:token("https://management.azure.com/.default")) })
    expect_graph_error(res, body, 401, "InvalidAuthenticationToken")
    res, body = graph(sim, "GET", "/v1.0/servicePrincipals", { bearer = "a.b.c" })
    expect_graph_error(res, body, 401, "InvalidAuthenticationToken")
    -- The simulator's own Graph URL is an audience too (az: "<graph>//.default").
    res = graph(sim, "GET", "/v1.0/servicePrincipals",
        { bearer = assert(sim:token(sim.env.SIM_GRAPH_URL .. "//.default")) })
    T.eq(res.status, 200, res.body)
end)


T.test("a service principal is found by appId, by its names, and by object id", function()
    local sim = harness.start()
    local res, body = graph(sim, "GET", "/v1.0/servicePrincipals",
        { query = filter("appId eq '" .. sim.env.SIM_CLIENT_ID .. "'") })
    T.eq(res.status, 200, res.body)
    T.match(res.headers["content-type"], "^application/json;odata%.metadata=minimal")
    T.eq(body["@odata.context"], sim.env.SIM_GRAPH_URL .. "/v1.0/$metadata#servicePrincipals")
    T.eq(#body.value, 1)
    local sp = body.value[1]
    T.eq(sp.id, SP_OBJECT_ID)
    T.eq(sp.appId, sim.env.SIM_CLIENT_ID)
    T.eq(sp.displayName, "aurora-sp")
    T.eq(sp.appOwnerOrganizationId, sim.env.SIM_TENANT)
    T.eq(sp.servicePrincipalType, "Application")
    T.eq(sp.servicePrincipalNames, { sim.env.SIM_CLIENT_ID })
    T.eq(sp.accountEnabled, true)
    -- az ad sp show --id: servicePrincipalNames/any, then the object by id.
    res, body = graph(sim, "GET", "/v1.0/servicePrincipals", { query = filter(
        "servicePrincipalNames/any(c:c eq '" .. sim.env.SIM_CLIENT_ID .. "')") })
    T.eq(body.value[1].id, SP_OBJECT_ID)
    res, body = graph(sim, "GET", "/v1.0/servicePrincipals/" .. SP_OBJECT_ID)
    T.eq(res.status, 200)
    T.eq(body.appId, sim.env.SIM_CLIENT_ID)
    T.eq(body["@odata.context"], sim.env.SIM_GRAPH_URL ..
        "/v1.0/$metadata#servicePrincipals/$entity")
    res, body = graph(sim, "GET", "/v1.0/servicePrincipals(appId='" .. sim.env.SIM_CLIENT_ID ..
        "')")
    T.eq(body.id, SP_OBJECT_ID)
    -- Not found: an empty list, or 404 for an id.
    res, body = graph(sim, "GET", "/v1.0/servicePrincipals",
        { query = filter("appId eq '00000000-0000-4000-8000-000000000000'") })
    T.eq(res.status, 200)
    T.eq(body.value, {})
    T.ok(json.is_array(body.value))
    res, body = graph(sim, "GET", "/v1.0/servicePrincipals/00000000-0000-4000-8000-000000000000")
    expect_graph_error(res, body, 404, "Request_ResourceNotFound")
    -- or, startswith, $select, $top and paging.
    res, body = graph(sim, "GET", "/v1.0/servicePrincipals", { query = {
        ["$filter"] = "startswith(displayName,'aurora-')", ["$select"] = "id,appId",
        ["$top"] = "3" } })
    T.eq(#body.value, 3)
    T.eq(body.value[1].displayName, nil)
    T.ok(body.value[1].appId)
    T.match(body["@odata.context"], "%(id,appId%)$")
    T.ok(body["@odata.nextLink"])
    local next_path = body["@odata.nextLink"]:sub(#sim.env.SIM_GRAPH_URL + 1)
    res, body = graph(sim, "GET", next_path)
    T.eq(res.status, 200, res.body)
    T.eq(#body.value, 1)
    T.eq(body["@odata.nextLink"], nil)
    res, body = graph(sim, "GET", "/v1.0/servicePrincipals", { query = filter(
        "appId eq '" .. sim.env.SIM_CLIENT_ID .. "' or displayName eq 'aurora-reader'") })
    T.eq(#body.value, 2)
    res, body = graph(sim, "GET", "/v1.0/servicePrincipals",
        { query = filter("signInAudience gt 'x'") })
    expect_graph_error(res, body, 400, "Request_UnsupportedQuery")
end)


T.test("an application lists its secrets' metadata but never their values", function()
    local sim = harness.start()
    local res, body = graph(sim, "GET", "/v1.0/applications",
        { query = filter("appId eq '" .. sim.env.SIM_CLIENT_ID .. "'") })
    T.eq(res.status, 200, res.body)
    T.eq(body["@odata.context"], sim.env.SIM_GRAPH_URL .. "/v1.0/$metadata#applications")
    local app = body.value[1]
    T.eq(app.id, APP_OBJECT_ID)
    T.eq(app.appId, sim.env.SIM_CLIENT_ID)
    T.eq(#app.passwordCredentials, 1)
    local pc = app.passwordCredentials[1]
    T.eq(pc.keyId, SECRET_ID)
    T.eq(pc.hint, sim.env.SIM_CLIENT_SECRET:sub(1, 3))
    T.eq(pc.secretText, json.null)
    T.match(pc.endDateTime, "^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ$")
    T.match(pc.startDateTime, "^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ$")
    T.eq(app.keyCredentials, {})
    T.not_contains(res.body, sim.env.SIM_CLIENT_SECRET)
    res, body = graph(sim, "GET", "/v1.0/applications/" .. APP_OBJECT_ID)
    T.eq(res.status, 200)
    T.eq(body.appId, sim.env.SIM_CLIENT_ID)
    res, body = graph(sim, "GET", "/v1.0/applications(appId='" .. sim.env.SIM_CLIENT_ID .. "')",
        { query = { ["$select"] = "id,appId,displayName,passwordCredentials,keyCredentials" } })
    T.eq(res.status, 200, res.body)
    T.eq(body.id, APP_OBJECT_ID)
    T.eq(body.web, nil)
    T.eq(body.passwordCredentials[1].keyId, SECRET_ID)
    res, body = graph(sim, "GET", "/v1.0/applications/" .. SP_OBJECT_ID)
    expect_graph_error(res, body, 404, "Request_ResourceNotFound")
end)


T.test("create-for-rbac's calls make an app whose new secret gets tokens", function()
    local sim = harness.start()
    local name = "azure-cli-2026-11-28-10-00-00"
    -- The order az 2.45 uses.
    local res, body = graph(sim, "GET", "/v1.0/servicePrincipals",
        { query = filter("displayName eq '" .. name .. "'") })
    T.eq(body.value, {})
    res, body = graph(sim, "GET", "/v1.0/applications",
        { query = filter("startswith(displayName,'" .. name .. "')") })
    T.eq(body.value, {})
    res, body = graph(sim, "POST", "/v1.0/applications",
        { json = { displayName = name, keyCredentials = json.array() } })
    T.eq(res.status, 201, res.body)
    T.eq(body.displayName, name)
    T.eq(body["@odata.context"], sim.env.SIM_GRAPH_URL .. "/v1.0/$metadata#applications/$entity")
    T.ok(res.headers.location)
    local app_object, app_id = body.id, body.appId
    res, body = graph(sim, "POST", "/v1.0/applications/" .. app_object .. "/addPassword",
        { json = { passwordCredential = { displayName = "rbac",
            startDateTime = "2026-11-28T10:00:00Z", endDateTime = "2036-11-28T10:00:00Z" } } })
    T.eq(res.status, 200, res.body)
    T.eq(body.displayName, "rbac")
    T.eq(body.endDateTime, "2036-11-28T10:00:00Z")
    T.eq(body.hint, body.secretText:sub(1, 3))
    T.ok(#body.secretText >= 32)
    local secret_text, key_id = body.secretText, body.keyId
    -- No service principal yet: Entra refuses the app.
    local _, status, err = sim:token("https://management.azure.com/.default", app_id, secret_text)
    T.eq(status, 401)
    T.eq(err.error_codes, { 7000229 })
    res, body = graph(sim, "POST", "/v1.0/servicePrincipals",
        { json = { appId = app_id, accountEnabled = true } })
    T.eq(res.status, 201, res.body)
    local sp_id = body.id
    T.eq(body.appId, app_id)
    res, body = graph(sim, "POST", "/v1.0/servicePrincipals", { json = { appId = app_id } })
    expect_graph_error(res, body, 409, "Request_MultipleObjectsWithSameKeyValue")
    local tok, st = sim:token("https://management.core.windows.net//.default", app_id,
        secret_text)
    T.eq(st, 200)
    local _, claims = jwt.decode(tok)
    T.eq(claims.oid, sp_id)
    T.eq(claims.appid, app_id)
    -- The secret shows up as metadata only, and can be removed again.
    res, body = graph(sim, "GET", "/v1.0/applications",
        { query = filter("appId eq '" .. app_id .. "'") })
    T.eq(body.value[1].passwordCredentials[1].keyId, key_id)
    T.not_contains(res.body, secret_text)
    res = graph(sim, "POST", "/v1.0/applications/" .. app_object .. "/removePassword",
        { json = { keyId = key_id } })
    T.eq(res.status, 204)
    _, st = sim:token(nil, app_id, secret_text)
    T.eq(st, 401)
    -- Deleting the application removes its service principal too.
    res = graph(sim, "DELETE", "/v1.0/applications/" .. app_object)
    T.eq(res.status, 204)
    res, body = graph(sim, "GET", "/v1.0/servicePrincipals/" .. sp_id)
    T.eq(res.status, 404)
    -- A reset brings back the scenario's directory.
    assert(sim:request("graph", "POST", "/_sim/reset"))
    res, body = graph(sim, "GET", "/v1.0/applications")
    T.eq(#body.value, 4)
end)


T.test("a certificate registered through keyCredentials signs client assertions", function()
    local sim = harness.start()
    local key = crypto.generate_key("rsa", 2048)
    local cert = crypto.issue_cert { key = key, subject = { CN = "CLI-Login" }, days = 365 }
    local b64 = crypto.b64encode(cert:der())
    -- az wraps the base64 at 64 columns.
    local wrapped = b64:gsub(("."):rep(64), "%0\n")
    local res = graph(sim, "PATCH", "/v1.0/applications/" .. APP_OBJECT_ID, { json = {
        keyCredentials = { { type = "AsymmetricX509Cert", usage = "Verify", key = wrapped,
            displayName = "CN=CLI-Login" } } } })
    T.eq(res.status, 204, res.body)
    local body
    res, body = graph(sim, "GET", "/v1.0/applications/" .. APP_OBJECT_ID)
    local kc = body.keyCredentials[1]
    T.eq(kc.type, "AsymmetricX509Cert")
    T.eq(kc.customKeyIdentifier, crypto.hex(cert:thumbprint("sha1")):upper())
    T.eq(kc.key, json.null)
    local now = os.time()
    local token_url = sim.env.SIM_LOGIN_URL .. "/" .. sim.env.SIM_TENANT .. "/oauth2/v2.0/token"
    local assertion = jwt.sign({ aud = token_url, iss = sim.env.SIM_CLIENT_ID,
        sub = sim.env.SIM_CLIENT_ID, jti = sim.env.SIM_CLIENT_ID .. now, iat = now,
        exp = now + 600 }, key, { x5t = cert:x5t() })
    res = assert(sim:request("login", "POST", "/" .. sim.env.SIM_TENANT .. "/oauth2/v2.0/token",
        { form = { grant_type = "client_credentials", client_id = sim.env.SIM_CLIENT_ID,
            scope = GRAPH_SCOPE, client_assertion_type = ASSERTION_TYPE,
            client_assertion = assertion } }))
    T.eq(res.status, 200, res.body)
    res, body = graph(sim, "PATCH", "/v1.0/applications/" .. APP_OBJECT_ID, { json = {
        keyCredentials = { { type = "AsymmetricX509Cert", usage = "Verify",
            key = "bm90IGEgY2VydA==" } } } })
    expect_graph_error(res, body, 400, "KeyCredentialsInvalidValue")
end)


T.test("an app without Graph roles gets 403 Authorization_RequestDenied", function()
    local dir = T.tmpdir()
    local path = dir .. "/scenario.lua"
    T.write_file(path, 'local s = dofile("tests/sim/scenarios/default.lua")\n' ..
        's.applications[2].graph_roles = {}\n' ..
        's.applications[4].graph_roles = {"Application.Read.All"}\n' ..
        'return s\n')
    local sim = harness.start { scenario = path }
    local res, body = graph(sim, "GET", "/v1.0/applications",
        { bearer = assert(sim:token(GRAPH_SCOPE, READER_APP, READER_SECRET)) })
    expect_graph_error(res, body, 403, "Authorization_RequestDenied")
    T.eq(body.error.message, "Insufficient privileges to complete the operation.")
    local reader = assert(sim:token(GRAPH_SCOPE, "7a8b9cad-becf-4d01-8c3d-4e5f6a7b8c94",
        "sim-secret-noaccess-0004"))
    local _, claims = jwt.decode(reader)
    T.eq(claims.roles, { "Application.Read.All" })
    res = graph(sim, "GET", "/v1.0/applications", { bearer = reader })
    T.eq(res.status, 200)
    res, body = graph(sim, "POST", "/v1.0/applications", { bearer = reader,
        json = { displayName = "nope" } })
    expect_graph_error(res, body, 403, "Authorization_RequestDenied")
end)


T.test("a signed-in user reads /me; getByIds resolves principals", function()
    local sim = harness.start()
    local redirect = "http://localhost:8400/"
    local res = assert(sim:request("login", "GET", "/" .. sim.env.SIM_TENANT ..
        "/oauth2/v2.0/authorize", { query = { client_id = sim.env.SIM_CLIENT_ID,
        response_type = "code", redirect_uri = redirect, scope = "User.Read openid" } }))
    local code = res.headers.location:match("[?&]code=([^&]+)")
    res = assert(sim:request("login", "POST", "/" .. sim.env.SIM_TENANT .. "/oauth2/v2.0/token",
        { form = { grant_type = "authorization_code", client_id = sim.env.SIM_CLIENT_ID,
            client_secret = sim.env.SIM_CLIENT_SECRET, code = code, redirect_uri = redirect } }))
    T.eq(res.status, 200, res.body)
    local user_token = json.decode(res.body).access_token
    local body
    res, body = graph(sim, "GET", "/v1.0/me", { bearer = user_token })
    T.eq(res.status, 200, res.body)
    T.match(body.userPrincipalName, "^sim%-user@")
    res, body = graph(sim, "GET", "/v1.0/me")
    expect_graph_error(res, body, 400, "BadRequest")
    res, body = graph(sim, "POST", "/v1.0/directoryObjects/getByIds",
        { json = { ids = { SP_OBJECT_ID, "00000000-0000-4000-8000-000000000000" } } })
    T.eq(res.status, 200, res.body)
    T.eq(#body.value, 1)
    T.eq(body.value[1]["@odata.type"], "#microsoft.graph.servicePrincipal")
    T.eq(sim:stats().counts["graph:GET /v1.0/me"], 2)
end)

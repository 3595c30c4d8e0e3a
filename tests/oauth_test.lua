-- The legacy OAuth (user sign-in) endpoints (lua/handlers/oauth.lua, lua/aurora/oauth.lua)
-- against the simulator: GET /azure/oauth/login, GET /azure/callback, GET /azure/oauth/status.
-- The simulated authorize endpoint signs the scenario's user in at once and redirects to our
-- callback with code and state, so the browser's part is two plain HTTP requests here.
local T = require "aurora.test"
local harness = require "sim.harness"
local http = require "aurora.http"
local identity = require "aurora.identity"
local json = require "aurora.json"
local secrets = require "aurora.secrets"
local time = require "aurora.time"
local connector = require "lib.connector"

local FRONT = "https://app.example"
local ADA_OID = "a0b1c2d3-e4f5-4a6b-8c7d-8e9fa0b1c2d3"
local ADA = "ada@contoso-sim.onmicrosoft.com"
local SUB_DISABLED = "1c2d3e4f-5061-4728-9394-a5b6c7d8e9f0"
local API_TOKEN = "test-api-token-0123"


-- The default scenario plus a user, Ada, who holds Reader on the production subscription only
-- (the service principal also sees the Disabled and Warned ones: what the status lists tells
-- whose token was used).
local function scenario()
    local dir = T.tmpdir()
    T.write_file(dir .. "/scenario.lua", string.format([[
local s = dofile("tests/sim/scenarios/default.lua")
s.users = { { upn = %q, oid = %q, tenant = s.tenants[1].id, name = "Ada (simulated)" } }
s.role_assignments[#s.role_assignments + 1] = { principal = %q, role = "Reader",
    scope = "/subscriptions/" .. s.subscriptions[1].id, principal_type = "User" }
return s
]], ADA, ADA_OID, ADA_OID))
    return dir .. "/scenario.lua"
end


local function unescape(s)
    s = s:gsub("+", " ")
    return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end


-- The query parameters of a URL.
local function query(url)
    local q = {}
    for k, v in (url:match("%?([^#]*)") or ""):gmatch("([^&=]+)=([^&]*)") do
        q[unescape(k)] = unescape(v)
    end
    return q
end


-- Checks a callback answer that sends the browser back with an error: a 302 whose Location
-- has status=error, code=oauth_failed and an error holding want. Returns that query.
local function redirected_error(res, want)
    T.eq(res.status, 302, res.body)
    local q = query(res.headers.location)
    T.eq(q.status, "error")
    T.eq(q.code, "oauth_failed")
    T.contains(q.error, want)
    return q
end


-- Starts the simulator and the app. opts: env (extra variables; false removes one), app (an
-- app directory, default "lua"), sim (a running simulator to reuse).
local function start(opts)
    opts = opts or {}
    local sim = opts.sim or harness.start { scenario = scenario() }
    local env = { AZURE_CLIENT_ID = sim.env.SIM_CLIENT_ID,
        AZURE_CLIENT_SECRET = sim.env.SIM_CLIENT_SECRET, FRONTEND_URL = FRONT,
        AURORA_LIB_DIR = "lua" }
    for k, v in pairs(opts.env or {}) do env[k] = v end
    -- Every call carries the API token when the server has one, unless it says token = false.
    local call, s = connector.serve(sim, env, { app = opts.app,
        token = env.AURORA_API_TOKEN or nil })
    T.defer(function() s:stop() end)
    local app = { sim = sim, s = s, call = call }
    -- The browser's part: GET /azure/oauth/login, follow the Location to Entra ID, and return
    -- the URL Entra ID sends the browser back to (our callback with code and state).
    -- tamper(location) may change the authorize URL on the way.
    function app.authorize(user, tamper)
        local res = app.call("GET", "/azure/oauth/login", { user = user })
        T.eq(res.status, 302, res.body)
        local loc = res.headers.location
        if tamper then loc = tamper(loc) end
        local back = assert(http.request { url = loc, ca_file = sim.env.SIM_CA_FILE })
        T.eq(back.status, 302, back.body)
        return back.headers.location, loc
    end
    -- The callback, as the browser calls it: no X-User-ID, no API token.
    function app.callback(url)
        local res = assert(http.request { url = url })
        local ok, body = pcall(json.decode, res.body)
        res.json = ok and body or nil
        return res
    end
    -- What the server stored at users/<uid>/oauth (its own embedded store, read directly).
    function app.stored(uid)
        assert(secrets.configure { backend = "store", dir = s.dir .. "/secrets" })
        local rec, msg = secrets.get("users/" .. uid .. "/oauth")
        secrets.configure(nil)
        assert(rec or not msg, msg)
        return rec
    end
    return app
end


T.test("a user signs in through Entra ID and the status lists their subscriptions with the " ..
    "delegated token", function()
    local a = start { env = { AURORA_API_TOKEN = API_TOKEN } }
    local sim = a.sim
    -- The authorize URL: the cloud's login host, Aurora's app, PKCE S256, the delegated scopes.
    local res = a.call("GET", "/azure/oauth/login")
    T.eq(res.status, 302, res.body)
    T.eq(res.headers["cache-control"], "no-store")
    local loc = res.headers.location
    local authorize = sim.env.SIM_LOGIN_URL .. "/organizations/oauth2/v2.0/authorize?"
    T.eq(loc:sub(1, #authorize), authorize)
    local q = query(loc)
    T.eq(q.client_id, sim.env.SIM_CLIENT_ID)
    T.eq(q.response_type, "code")
    T.eq(q.redirect_uri, a.s.url .. "/azure/callback")
    T.eq(q.scope, "https://management.azure.com/user_impersonation offline_access openid profile")
    T.eq(q.code_challenge_method, "S256")
    T.eq(#q.code_challenge, 43)
    T.ok(#q.state >= 43, "a long random state")
    T.not_contains(loc, sim.env.SIM_CLIENT_SECRET)
    -- ?format=json gives the URL instead, each call with a fresh state.
    res = a.call("GET", "/azure/oauth/login?format=json")
    T.eq(res.status, 200, res.body)
    T.eq(res.json.expires_in, 600)
    T.ok(query(res.json.url).state ~= q.state, "a fresh state per sign-in")
    -- The API token rules still hold for login and status.
    T.eq(a.call("GET", "/azure/oauth/login", { token = false }).status, 401)
    T.eq(a.call("GET", "/azure/oauth/status", { token = false }).status, 401)
    T.eq(a.call("GET", "/azure/oauth/login", { user = false }).status, 400)

    T.eq(a.call("GET", "/azure/oauth/status").json.connected, false)
    local back = a.authorize("u1")
    T.eq(back:sub(1, #a.s.url + 16), a.s.url .. "/azure/callback?")
    local code = query(back).code
    T.ok(code and #code > 20, back)
    -- The callback needs neither X-User-ID nor the API token: the state names the user.
    res = a.callback(back)
    T.eq(res.status, 302, res.body)
    T.eq(res.headers.location, FRONT .. "/azure/connected?status=success")
    T.eq(res.headers["cache-control"], "no-store")
    T.eq(res.headers["referrer-policy"], "no-referrer")
    local rec = a.stored("u1")
    T.ok(rec, "the sign-in is stored")
    T.match(rec.refresh_token, "^0%.A")
    T.eq(rec.user, ADA)
    T.eq(rec.tenant, sim.env.SIM_TENANT)
    T.eq(a.stored("u2"), nil)

    res = a.call("GET", "/azure/oauth/status")
    T.eq(res.status, 200, res.body)
    T.eq(res.json.connected, true)
    T.eq(res.json.method, "oauth")
    T.eq(res.json.user, ADA)
    T.eq(res.json.tenant_id, sim.env.SIM_TENANT)
    T.eq(#res.json.subscriptions, 1, res.body)
    T.eq(res.json.subscriptions[1].subscriptionId, sim.env.SIM_SUBSCRIPTION)
    T.eq(res.json.subscriptions[1].name, "Aurora Sim Production")
    T.not_contains(res.body, SUB_DISABLED, "the user's view, not the service principal's")
    T.not_contains(res.body, rec.refresh_token)
    -- One user's sign-in is theirs only.
    T.eq(a.call("GET", "/azure/oauth/status", { user = "u2" }).json.connected, false)
    -- The callback is outside the CORS preflight set.
    T.ok(a.call("OPTIONS", "/azure/callback", { user = false,
        headers = { Origin = FRONT } }).status ~= 204)

    a.s:stop()
    local log = a.s:log()
    T.ok(log:find('"msg":"request"', 1, true), "the server did log")
    T.not_contains(log, code, "the code is not logged")
    T.not_contains(log, rec.refresh_token, "the refresh token is not logged")
    T.not_contains(log, sim.env.SIM_CLIENT_SECRET, "the client secret is not logged")
    T.not_contains(log, q.state, "the state is not logged")
end)


T.test("after the sign-in, the connector endpoints work with the user's delegated tokens", function()
    local a = start()
    local sim = a.sim
    T.eq(a.call("GET", "/azure/fetch_data").status, 401, "not connected before the sign-in")
    T.eq(a.callback(a.authorize("u1")).status, 302)
    local res = a.call("GET", "/azure/fetch_data")
    T.eq(res.status, 200, res.body)
    T.eq(res.json.subscription_id, sim.env.SIM_SUBSCRIPTION)
    T.eq(res.json.connection, "oauth")
    -- The subscription the user sees is their enabled set; the service principal's others
    -- (Disabled, Warned) are not visible to Ada.
    res = a.call("GET", "/api/azure-subscriptions")
    T.eq(res.status, 200, res.body)
    T.eq(#res.json.projects, 1, res.body)
    T.eq(res.json.projects[1].enabled, true)
    -- The cluster list is read with Ada's token (Reader on the subscription).
    res = a.call("GET", "/azure/clusters")
    T.eq(res.status, 200, res.body)
    T.eq(#res.json, 2)
    -- Disconnect ends it.
    T.eq(a.call("DELETE", "/api/connected-accounts/azure").status, 200)
    T.eq(a.call("GET", "/azure/fetch_data").status, 401)
end)

T.test("the callback refuses a missing, unknown or replayed state", function()
    local a = start()
    local function refused(res, want)
        local q = redirected_error(res, want)
        local loc = res.headers.location
        T.eq(loc:sub(1, #FRONT + 16), FRONT .. "/azure/connected")
        T.ok(q.requestId, "the request id for support")
        return q
    end
    refused(a.callback(a.s.url .. "/azure/callback?code=abc"), "no state")
    refused(a.callback(a.s.url .. "/azure/callback?code=abc&state=forged-state-value"),
        "unknown")
    local back = a.authorize("u1")
    -- A HEAD (a link checker) does not spend the state.
    T.eq(assert(http.request { method = "HEAD", url = back }).status, 405)
    T.eq(a.callback(back).headers.location, FRONT .. "/azure/connected?status=success")
    local first = a.stored("u1").refresh_token
    -- The same answer again: the state was consumed.
    local q = refused(a.callback(back), "already used")
    T.not_contains(q.error, query(back).code, "the code is not echoed")
    -- A state issued to u1 cannot be used twice even with a fresh code from Entra ID.
    local other = a.authorize("u2")
    local replay = other:gsub("state=[^&]+", "state=" .. http.escape(query(back).state))
    refused(a.callback(replay), "already used")
    T.eq(a.stored("u1").refresh_token, first, "nothing changed for u1")
    T.eq(a.stored("u2"), nil, "nothing stored for u2")
    -- A state without a code.
    local b2 = a.authorize("u2")
    refused(a.callback(a.s.url .. "/azure/callback?state=" .. http.escape(query(b2).state)),
        "no code")
end)


T.test("an expired state is refused with its own message, as JSON without FRONTEND_URL",
    function()
        -- A fixture app: the real one with the state's lifetime lowered to one second.
        local dir = T.tmpdir()
        T.write_file(dir .. "/app.lua", [[
require("aurora.oauth").STATE_TTL = 1
return dofile("lua/app.lua")
]])
        local a = start { app = dir, env = { FRONTEND_URL = false } }
        local back = a.authorize("u1")
        time.sleep(1.5)
        local res = a.callback(back)
        T.eq(res.status, 400, res.body)
        T.eq(res.json.code, "oauth_failed")
        T.eq(res.json.error, "Azure sign-in failed")
        T.contains(res.json.upstream.message, "expired")
        T.ok(#res.json.solution > 0)
        T.eq(res.headers["cache-control"], "no-store")
        T.eq(a.stored("u1"), nil)
        -- In time, the same app connects and answers JSON.
        back = a.authorize("u1")
        res = a.callback(back)
        T.eq(res.status, 200, res.body)
        T.eq(res.json.status, "success")
        T.eq(res.json.user, ADA)
        T.not_contains(res.body, query(back).code)
    end)


T.test("a code obtained with another PKCE challenge is refused by Entra ID", function()
    local a = start()
    local _, other_challenge = identity.pkce()
    local back = a.authorize("u1", function(loc)
        return (loc:gsub("code_challenge=[^&]+", "code_challenge=" .. other_challenge))
    end)
    local res = a.callback(back)
    redirected_error(res, "AADSTS501481")
    T.not_contains(res.headers.location, query(back).code)
    T.eq(a.stored("u1"), nil)
    T.eq(a.call("GET", "/azure/oauth/status").json.connected, false)
end)


T.test("an error from Entra ID in the callback is reported and spends the state", function()
    local a = start()
    a.sim:knobs { authorize_error = "access_denied" }
    local back = a.authorize("u1")
    T.eq(query(back).error, "access_denied")
    redirected_error(a.callback(back), "AADSTS50126")
    T.eq(a.stored("u1"), nil)
    -- The state of that attempt cannot be used for a code afterwards.
    a.sim:knobs { authorize_error = false }
    local good = a.authorize("u1")
    local replay = good:gsub("state=[^&]+", "state=" .. http.escape(query(back).state))
    local q = query(a.callback(replay).headers.location)
    T.eq(q.status, "error")
    T.contains(q.error, "already used")
end)


T.test("refresh tokens rotate: the stored one changes and the old one is refused", function()
    local a = start()
    -- Access tokens of 30 s are inside the 60 s margin: every status call refreshes.
    a.sim:knobs { token_lifetime = 30 }
    T.eq(a.callback(a.authorize("u1")).headers.location, FRONT .. "/azure/connected?status=success")
    local r1 = a.stored("u1").refresh_token
    local res = a.call("GET", "/azure/oauth/status")
    T.eq(res.status, 200, res.body)
    T.eq(#res.json.subscriptions, 1)
    local r2 = a.stored("u1").refresh_token
    T.ok(r2 ~= r1, "a new refresh token was stored")
    T.eq(a.stored("u1").user, ADA, "who signed in is kept across refreshes")
    local old = assert(a.sim:request("login", "POST", "/" .. a.sim.env.SIM_TENANT ..
        "/oauth2/v2.0/token", { form = { grant_type = "refresh_token", refresh_token = r1,
        client_id = a.sim.env.SIM_CLIENT_ID, client_secret = a.sim.env.SIM_CLIENT_SECRET,
        scope = "https://management.azure.com/user_impersonation offline_access" } }))
    T.eq(old.status, 400, old.body)
    T.eq(json.decode(old.body).error, "invalid_grant")
    res = a.call("GET", "/azure/oauth/status")
    T.eq(res.status, 200, res.body)
    local r3 = a.stored("u1").refresh_token
    T.ok(r3 ~= r2 and r3 ~= r1, "rotated again")
    -- A refresh token Entra ID stopped accepting: the user is asked to sign in again.
    a.sim:knobs { refresh_token_lifetime = 1 }
    T.eq(a.callback(a.authorize("u1")).headers.location, FRONT .. "/azure/connected?status=success")
    time.sleep(1.5)
    res = a.call("GET", "/azure/oauth/status")
    T.eq(res.status, 400, res.body)
    T.eq(res.json.code, "oauth_failed")
    T.eq(res.json.upstream.code, "AADSTS700082")
    T.contains(table.concat(res.json.solution, " "), "sign in again")
end)


T.test("disconnect removes the OAuth sign-in and its cached tokens", function()
    local a = start()
    T.eq(a.callback(a.authorize("u1")).headers.location, FRONT .. "/azure/connected?status=success")
    T.eq(a.call("GET", "/azure/oauth/status").json.connected, true)
    local res = a.call("DELETE", "/api/connected-accounts/azure")
    T.eq(res.status, 200, res.body)
    T.eq(a.stored("u1"), nil)
    res = a.call("GET", "/azure/oauth/status")
    T.eq(res.status, 200, res.body)
    T.eq(res.json.connected, false)
end)


T.test("without AZURE_CLIENT_ID and AZURE_CLIENT_SECRET the OAuth endpoints say so, and " ..
    "service-principal login still works", function()
    local a = start { env = { AZURE_CLIENT_ID = false, AZURE_CLIENT_SECRET = false,
        FRONTEND_URL = false } }
    local res = a.call("GET", "/azure/oauth/login")
    T.eq(res.status, 501, res.body)
    T.eq(res.json.code, "oauth_not_configured")
    T.eq(res.json.error, "Azure sign-in (OAuth) is not configured")
    T.contains(res.json.upstream.message, "AZURE_CLIENT_ID")
    T.contains(res.json.upstream.message, "AZURE_CLIENT_SECRET")
    T.ok(#res.json.solution >= 2)
    T.eq(a.call("GET", "/azure/oauth/status").status, 501)
    res = a.callback(a.s.url .. "/azure/callback?code=x&state=y")
    T.eq(res.status, 501)
    T.eq(res.json.code, "oauth_not_configured")
    res = a.call("POST", "/azure/login", { user = "u1" })
    T.eq(res.status, 400, "the service-principal route is there")
    res = assert(a.s:request("POST", "/azure/login", { headers = { ["X-User-ID"] = "u1" },
        json = { tenantId = a.sim.env.SIM_TENANT, clientId = a.sim.env.SIM_CLIENT_ID,
            clientSecret = a.sim.env.SIM_CLIENT_SECRET } }))
    T.eq(res.status, 200, res.body)
    -- Only the secret missing is not configured either.
    local b = start { sim = a.sim, env = { AZURE_CLIENT_SECRET = false } }
    res = b.call("GET", "/azure/oauth/login")
    T.eq(res.status, 501)
    T.contains(res.json.upstream.message, "AZURE_CLIENT_SECRET")
    T.not_contains(res.json.upstream.message, "AZURE_CLIENT_ID")
end)


T.test("the callback URL comes from AZURE_REDIRECT_URI, else from the request", function()
    local a = start { env = { AZURE_REDIRECT_URI = "https://aurora.example/azure/callback" } }
    local res = a.call("GET", "/azure/oauth/login?format=json")
    T.eq(query(res.json.url).redirect_uri, "https://aurora.example/azure/callback")
    local b = start { sim = a.sim }
    res = b.call("GET", "/azure/oauth/login?format=json", { headers = {
        ["X-Forwarded-Proto"] = "https", ["X-Forwarded-Host"] = "aurora.example:8443" } })
    T.eq(query(res.json.url).redirect_uri, "https://aurora.example:8443/azure/callback")
    res = b.call("GET", "/azure/oauth/login?format=json&login_hint=" .. http.escape(ADA))
    T.eq(query(res.json.url).login_hint, ADA)
    T.eq(b.call("GET", "/azure/oauth/login?prompt=bogus").status, 400)
end)


T.test("Entra ID refusing Aurora's own client secret is reported as a token failure", function()
    local a = start { env = { AZURE_CLIENT_SECRET = "not-the-secret", FRONTEND_URL = false } }
    local res = a.callback(a.authorize("u1"))
    T.eq(res.status, 502, res.body)
    T.eq(res.json.code, "token_failed")
    T.eq(res.json.upstream.code, "AADSTS7000215")
    T.not_contains(res.body, "not-the-secret")
    T.eq(a.stored("u1"), nil)
    a.s:stop()
    T.not_contains(a.s:log(), "not-the-secret")
end)

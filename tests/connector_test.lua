-- The Azure connector endpoints (lua/app.lua, lua/handlers/azure.lua) against the simulator,
-- with the embedded secret store or the simulator's Vault. The troubleshooting answers have
-- their own file, tests/troubleshooting_test.lua.
local T = require "aurora.test"
local harness = require "sim.harness"
local json = require "aurora.json"
local crypto = require "aurora.crypto"
local time = require "aurora.time"
local connector = require "lib.connector"

local SUB_DISABLED = "1c2d3e4f-5061-4728-9394-a5b6c7d8e9f0"
local SUB_WARNED = "2d3e4f50-6172-4839-a4b5-c6d7e8f90a1b"
local SUB_OTHER = "3e4f5061-7283-494a-b5c6-d7e8f90a1b2c"
local READER_ID, READER_SECRET = "9e0f1a2b-3c4d-4e5f-8a6b-7c8d9e0f1a2c", "sim-secret-reader-0002"
local NOACCESS_ID, NOACCESS_SECRET = "7a8b9cad-becf-4d01-8c3d-4e5f6a7b8c94", "sim-secret-noaccess-0004"
local TOKEN_ROUTE = "login:POST /{tenant}/oauth2/v2.0/token"
local SUBS_ROUTE = "arm:GET /subscriptions"
local CLUSTERS_ROUTE = "arm:GET /subscriptions/{sub}/providers/Microsoft.ContainerService/managedClusters"
-- Vault KV v2 writes of users/<id>/<record> and users/<id>/tokens/arm (one path segment more).
local VAULT_WRITE_4 = "vault:POST /v1/{mount}/data/{p1}/{p2}/{p3}/{p4}"
local VAULT_WRITE_5 = "vault:POST /v1/{mount}/data/{p1}/{p2}/{p3}/{p4}/{p5}"


-- The server environment that keeps secrets in the simulator's Vault.
local function vault_env(sim)
    return { VAULT_ADDR = sim.env.SIM_VAULT_ADDR, VAULT_TOKEN = sim.env.SIM_VAULT_TOKEN,
        VAULT_CACERT = sim.env.SIM_CA_FILE }
end

-- A record as the app stored it in the simulator's Vault (secret/aurora/<p>), or nil.
local function vault_read(sim, p)
    local res = assert(sim:request("vault", "GET", "/v1/secret/data/aurora/" .. p,
        { headers = { ["X-Vault-Token"] = sim.env.SIM_VAULT_TOKEN } }))
    if res.status == 404 then return nil end
    T.eq(res.status, 200, res.body)
    return json.decode(res.body).data.data
end

-- The keys the app stored under secret/aurora/<p>/ in the simulator's Vault, or nil.
local function vault_keys(sim, p)
    local res = assert(sim:request("vault", "GET", "/v1/secret/metadata/aurora/" .. p ..
        "?list=true", { headers = { ["X-Vault-Token"] = sim.env.SIM_VAULT_TOKEN } }))
    if res.status == 404 then return nil end
    T.eq(res.status, 200, res.body)
    return json.decode(res.body).data.keys
end

-- The default scenario's Contributor login body, fields of extra changed.
local good = connector.credentials
-- Requests the simulator counted on exactly one route.
local count = connector.route_count


-- The projectIds of a GET /api/azure-subscriptions answer, as a set, and their count.
local function project_set(res)
    local set, n = {}, 0
    for _, p in ipairs(res.json.projects) do set[p.projectId] = p; n = n + 1 end
    return set, n
end

T.test("login with the CLI's field names, then fetch_data", function()
    local sim, call, stop = connector.start()
    local res = call("POST", "/azure/login", { json = { tenant = sim.env.SIM_TENANT,
        appId = sim.env.SIM_CLIENT_ID, password = sim.env.SIM_CLIENT_SECRET,
        subscription_id = sim.env.SIM_SUBSCRIPTION } })
    T.eq(res.status, 200, res.body)
    T.eq(res.json.subscription_id, sim.env.SIM_SUBSCRIPTION)
    T.eq(res.json.subscription_name, "Aurora Sim Production")
    T.eq(res.json.read_only, false)
    T.not_contains(res.body, sim.env.SIM_CLIENT_SECRET)
    res = call("GET", "/azure/fetch_data")
    T.eq(res.status, 200, res.body)
    T.eq(res.json.status, "success")
    T.eq(res.json.state, "Enabled")
    T.eq(res.json.tenant_id, sim.env.SIM_TENANT)
    T.eq(res.json.credentials["do"], true)
    T.eq(res.json.credentials.ask, false)
    T.not_contains(res.body, sim.env.SIM_CLIENT_SECRET)
    T.eq(call("GET", "/azure/fetch_data", { headers = { ["X-Aurora-Mode"] = "maybe" } }).status, 400)
    stop()
end)

T.test("validation errors name each bad field, and nothing is stored", function()
    local sim, call, stop = connector.start()
    local res = call("POST", "/azure/login", { body = "{not json",
        headers = { ["Content-Type"] = "application/json" } })
    T.eq(res.status, 400)
    res = call("POST", "/azure/login", { json = json.array { 1, 2 } })
    T.eq(res.status, 400)
    res = call("POST", "/azure/login", { json = { tenantId = sim.env.SIM_TENANT } })
    T.eq(res.status, 400)
    T.contains(res.json.error .. json.encode(res.json.upstream or {}), "clientId")
    T.contains(res.json.error .. json.encode(res.json.upstream or {}), "clientSecret")
    res = call("POST", "/azure/login", { json = good(sim, { tenantId = "contoso", clientSecret = 5 }) })
    T.eq(res.status, 400)
    T.contains(res.json.error .. json.encode(res.json.upstream or {}), "tenantId")
    T.contains(res.json.error .. json.encode(res.json.upstream or {}), "clientSecret")
    res = call("POST", "/azure/login", { json = good(sim, { subscriptionId = "nope",
        readOnlyCredentials = { appId = "x" } }) })
    T.eq(res.status, 400)
    T.contains(res.json.error .. json.encode(res.json.upstream or {}), "subscriptionId")
    T.contains(res.json.error .. json.encode(res.json.upstream or {}), "readOnlyCredentials.clientId")
    -- a wrong secret: 401 and still not connected
    res = call("POST", "/azure/login", { json = good(sim, { clientSecret = "wrong" }) })
    T.eq(res.status, 401)
    T.eq(res.json.error, "Invalid Azure credentials")
    T.eq(call("GET", "/azure/fetch_data").status, 401)
    stop()
end)

T.test("subscription selection: given, first Enabled, given but not Enabled, not visible, none",
    function()
        local sim, call, stop = connector.start()
        -- None given: the first Enabled one the principal sees (it also sees Disabled and Warned).
        local res = call("POST", "/azure/login", { json = good(sim) })
        T.eq(res.status, 200, res.body)
        T.eq(res.json.subscription_id, sim.env.SIM_SUBSCRIPTION)
        T.eq(res.json.subscription_name, "Aurora Sim Production")
        -- Given (in upper case): matched without regard to case, answered as ARM spells it.
        res = call("POST", "/azure/login", { user = "u3", json = good(sim,
            { subscriptionId = sim.env.SIM_SUBSCRIPTION:upper() }) })
        T.eq(res.status, 200, res.body)
        T.eq(res.json.subscription_id, sim.env.SIM_SUBSCRIPTION)
        local function refused(body, code, text)
            local r = call("POST", "/azure/login", { user = "u2", json = body })
            T.eq(r.status, 403, r.body)
            T.eq(r.json.error, "No enabled subscription found")
            T.eq(r.json.code, "no_enabled_subscription")
            T.eq(r.json.upstream.code, code)
            T.contains(r.json.upstream.message, text)
        end
        refused(good(sim, { subscriptionId = SUB_DISABLED }), "not_enabled",
            SUB_DISABLED .. " is Disabled, not Enabled")
        refused(good(sim, { subscriptionId = SUB_WARNED }), "not_enabled", "is Warned, not Enabled")
        refused(good(sim, { subscriptionId = SUB_OTHER }), "not_visible",
            SUB_OTHER .. " is not visible to these credentials")
        refused(good(sim, { clientId = NOACCESS_ID, clientSecret = NOACCESS_SECRET }), "none_visible",
            "no subscription is visible")
        T.eq(call("GET", "/azure/fetch_data", { user = "u2" }).status, 401, "nothing stored for u2")
        stop()
    end)


T.test("subscriptions are read across pages: at login and for the list", function()
    local sim, call, stop = connector.start()
    sim:knobs { page_size = 1 }
    -- The Warned subscription is the third of three the principal sees: found on page 3.
    local before = count(sim, SUBS_ROUTE)
    local res = call("POST", "/azure/login", { json = good(sim, { subscriptionId = SUB_WARNED }) })
    T.eq(res.status, 403, res.body)
    T.eq(res.json.upstream.code, "not_enabled", "found, and refused for its state")
    T.eq(count(sim, SUBS_ROUTE) - before, 3, "three pages")
    T.eq(call("POST", "/azure/login", { json = good(sim) }).status, 200)
    before = count(sim, SUBS_ROUTE)
    res = call("GET", "/api/azure-subscriptions")
    T.eq(res.status, 200, res.body)
    local set, n = project_set(res)
    T.eq(n, 3)
    T.ok(set[sim.env.SIM_SUBSCRIPTION] and set[SUB_DISABLED] and set[SUB_WARNED], res.body)
    T.eq(set[SUB_DISABLED].state, "Disabled")
    T.eq(count(sim, SUBS_ROUTE) - before, 3, "three pages")
    stop()
end)

T.test("read-only credentials (aliases inside) are validated and used for reads", function()
    local sim, call, stop = connector.start()
    local res = call("POST", "/azure/login", { json = good(sim, { read_only_credentials = {
        appId = READER_ID, password = READER_SECRET } }) })
    T.eq(res.status, 200, res.body)
    T.eq(res.json.read_only, true)
    res = call("GET", "/azure/fetch_data", { headers = { ["X-Aurora-Mode"] = "ask" } })
    T.eq(res.status, 200, res.body)
    T.eq(res.json.credentials.ask, true)
    res = call("POST", "/azure/login", { user = "u3", json = good(sim, { readOnlyCredentials = {
        clientId = READER_ID, clientSecret = "wrong" } }) })
    T.eq(res.status, 401)
    T.eq(call("GET", "/azure/fetch_data", { user = "u3" }).status, 401, "nothing stored")
    stop()
end)

T.test("users are isolated: credentials, views and disconnects (secrets in Vault)", function()
    local sim = harness.start()
    local call = connector.serve(sim, vault_env(sim))
    T.eq(call("POST", "/azure/login", { user = "alice@example.com", json = good(sim) }).status, 200)
    T.eq(call("GET", "/azure/fetch_data", { user = "alice@example.com" }).status, 200)
    T.eq(call("GET", "/azure/fetch_data", { user = "bob" }).json.code, "not_connected")
    -- Bob connects the Reader app: each user sees what their own principal sees.
    T.eq(call("POST", "/azure/login", { user = "bob", json = good(sim,
        { clientId = READER_ID, clientSecret = READER_SECRET }) }).status, 200)
    local _, n_alice = project_set(call("GET", "/api/azure-subscriptions",
        { user = "alice@example.com" }))
    local _, n_bob = project_set(call("GET", "/api/azure-subscriptions", { user = "bob" }))
    T.eq(n_alice, 3)
    T.eq(n_bob, 1)
    T.eq(vault_read(sim, "users/alice@example.com/azure").clientId, sim.env.SIM_CLIENT_ID)
    T.eq(vault_read(sim, "users/bob/azure").clientId, READER_ID)
    -- Bob's disconnect leaves Alice connected.
    T.eq(call("DELETE", "/api/connected-accounts/azure", { user = "bob" }).status, 200)
    T.eq(call("GET", "/azure/fetch_data", { user = "bob" }).status, 401)
    T.eq(call("GET", "/azure/fetch_data", { user = "alice@example.com" }).status, 200)
end)


T.test("bad user ids are refused with 400 before anything is stored or sent", function()
    local sim = harness.start()
    local call = connector.serve(sim, vault_env(sim))
    local vault0, login0 = connector.count(sim, "vault:"), connector.count(sim, "login:")
    for _, id in ipairs { "..", ".", "a/b", "../alice", "users/../x", "a\tb", "a\1b", "a\127b",
            "a b", "a%2Fb", "x.rec", string.rep("a", 129), "ü" } do
        for _, r in ipairs { { "POST", "/azure/login" }, { "GET", "/azure/fetch_data" },
                { "DELETE", "/api/connected-accounts/azure" } } do
            local res = call(r[1], r[2], { user = id, json = r[1] == "POST" and good(sim) or nil })
            T.eq(res.status, 400, r[2] .. " with user id " .. id:gsub("%c", "?"))
            T.eq(res.json.code, "bad_request")
            T.contains(res.json.error, "X-User-ID")
        end
    end
    T.eq(call("GET", "/azure/fetch_data", { user = false }).status, 400, "no X-User-ID at all")
    T.eq(connector.count(sim, "vault:"), vault0, "the store was not touched")
    T.eq(connector.count(sim, "login:"), login0, "Entra ID was not asked")
    T.eq(vault_keys(sim, "users"), nil, "nothing under users/")
    -- 128 characters of the allowed set is a valid id.
    local long = string.rep("a", 120) .. "@x.y-z_0"
    T.eq(#long, 128)
    T.eq(call("POST", "/azure/login", { user = long, json = good(sim) }).status, 200)
    T.eq(vault_read(sim, "users/" .. long .. "/azure").clientId, sim.env.SIM_CLIENT_ID)
end)


T.test("clusters: paging, the 30 s cache, ?refresh=1", function()
    local sim, call, stop = connector.start()
    T.eq(call("POST", "/azure/login", { json = good(sim) }).status, 200)
    sim:knobs { page_size = 1 }
    local before = count(sim, CLUSTERS_ROUTE)
    local res = call("GET", "/azure/clusters")
    T.eq(res.status, 200, res.body)
    T.eq(#res.json, 2)
    local names = {}
    for _, c in ipairs(res.json) do names[c.name] = c end
    T.ok(names["aks-prod"] and names["aks-aad"], res.body)
    T.eq(names["aks-prod"].resourceGroup, "rg-aks")
    T.eq(names["aks-prod"].subscriptionId, sim.env.SIM_SUBSCRIPTION)
    T.eq(names["aks-prod"].localAccountsDisabled, false)
    T.eq(names["aks-aad"].localAccountsDisabled, true)
    local after = count(sim, CLUSTERS_ROUTE)
    T.ok(after - before >= 2, "two pages fetched")
    res = call("GET", "/azure/clusters")
    T.eq(res.status, 200)
    T.eq(#res.json, 2)
    T.eq(count(sim, CLUSTERS_ROUTE), after, "cache hit: no ARM call")
    T.eq(call("GET", "/azure/clusters?refresh=1").status, 200)
    T.ok(count(sim, CLUSTERS_ROUTE) > after, "refresh bypasses the cache")
    sim:knobs { faults = { { route = "arm:", status = 500, count = 20 } } }
    res = call("GET", "/azure/clusters?refresh=1")
    T.ok(res.status >= 500, res.body)
    T.eq(res.json.error, "Failed to fetch AKS clusters")
    stop()
end)

T.test("a 429 from ARM is retried after its Retry-After, then succeeds", function()
    local sim, call, stop = connector.start()
    sim:knobs { faults = { { route = SUBS_ROUTE, status = 429, retry_after = 1, count = 1 } } }
    local t0 = time.monotonic()
    local res = call("POST", "/azure/login", { json = good(sim) })
    local took = time.monotonic() - t0
    T.eq(res.status, 200, res.body)
    T.eq(count(sim, SUBS_ROUTE), 2, "the throttled call was repeated once")
    T.ok(took >= 1, "Retry-After: 1 was honoured (took " .. took .. " s)")
    T.ok(took < 5, "and not much longer (took " .. took .. " s)")
    stop()
end)

T.test("the enabled subscription set, then disconnect", function()
    local sim, call, stop = connector.start()
    T.eq(call("GET", "/api/azure-subscriptions").status, 401, "not connected")
    T.eq(call("POST", "/azure/login", { json = good(sim) }).status, 200)
    local res = call("GET", "/api/azure-subscriptions")
    T.eq(res.status, 200, res.body)
    local by = {}
    for _, p in ipairs(res.json.projects) do by[p.projectId] = p end
    T.eq(by[sim.env.SIM_SUBSCRIPTION].enabled, true)
    T.eq(by[SUB_WARNED].enabled, false)
    T.eq(call("POST", "/api/azure-subscriptions", { json = { enabled = {
        "00000000-0000-4000-8000-000000000000" } } }).status, 400)
    res = call("POST", "/api/azure-subscriptions", { json = { projects = {
        { projectId = sim.env.SIM_SUBSCRIPTION, enabled = true },
        { projectId = SUB_WARNED, enabled = true } } } })
    T.eq(res.status, 200, res.body)
    res = call("GET", "/api/azure-subscriptions")
    for _, p in ipairs(res.json.projects) do by[p.projectId] = p end
    T.eq(by[SUB_WARNED].enabled, true)
    -- A new login keeps the user's choice where the principal still sees it.
    T.eq(call("POST", "/azure/login", { json = good(sim) }).status, 200)
    res = call("GET", "/api/azure-subscriptions")
    for _, p in ipairs(res.json.projects) do by[p.projectId] = p end
    T.eq(by[SUB_WARNED].enabled, true, "kept across re-login")
    T.eq(by[sim.env.SIM_SUBSCRIPTION].enabled, true)
    res = call("DELETE", "/api/connected-accounts/azure")
    T.eq(res.status, 200, res.body)
    T.eq(call("GET", "/azure/fetch_data").status, 401)
    T.eq(call("GET", "/azure/clusters").status, 401)
    T.eq(call("DELETE", "/api/connected-accounts/azure").status, 200, "idempotent")
    stop()
end)

T.test("API token and CORS", function()
    local sim, call, stop = connector.start { AURORA_API_TOKEN = "tok-123",
        FRONTEND_URL = "https://app.example" }
    T.eq(call("GET", "/azure/fetch_data").status, 401)
    T.eq(call("GET", "/azure/fetch_data", { headers = { Authorization = "Bearer nope" } }).status, 401)
    local res = call("GET", "/azure/fetch_data", { headers = { Authorization = "Bearer tok-123",
        Origin = "https://app.example" } })
    T.eq(res.status, 401, "authorised, but not connected")
    T.eq(res.json.error ~= "Unauthorized", true)
    T.eq(res.headers["access-control-allow-origin"], "https://app.example")
    res = call("OPTIONS", "/azure/login", { user = false, headers = { Origin = "https://app.example",
        ["Access-Control-Request-Method"] = "POST" } })
    T.eq(res.status, 204)
    T.eq(res.headers["access-control-allow-origin"], "https://app.example")
    T.contains(res.headers["access-control-allow-headers"], "X-User-ID")
    res = call("OPTIONS", "/azure/login", { user = false, headers = { Origin = "https://evil.example" } })
    T.eq(res.status, 403)
    T.eq(res.headers["access-control-allow-origin"], nil)
    stop()
end)


T.test("fetch_data reports the client secret's expiry from Graph and warns within 30 days", function()
    local sim, call, stop = connector.start()
    T.eq(call("POST", "/azure/login", { json = good(sim) }).status, 200)
    local res = call("GET", "/azure/fetch_data")
    T.eq(res.status, 200, res.body)
    T.match(res.json.credentials.secret_expires_at, "^%d%d%d%d%-%d%d%-%d%dT")
    T.ok(res.json.credentials.secret_days_left >= 363, "a year ahead in the default scenario")
    T.eq(res.json.warning, nil)
    stop()
    local dir = T.tmpdir()
    T.write_file(dir .. "/scenario.lua", [[
local s = dofile("tests/sim/scenarios/default.lua")
s.applications[1].secrets[1].expires = os.time() + 10 * 86400 + 3600
return s
]])
    sim, call, stop = connector.start(nil, dir .. "/scenario.lua")
    T.eq(call("POST", "/azure/login", { json = good(sim) }).status, 200)
    res = call("GET", "/azure/fetch_data")
    T.eq(res.status, 200, res.body)
    T.eq(res.json.credentials.secret_days_left, 10)
    T.match(res.json.warning, "expires in 10 days")
    T.not_contains(res.body, sim.env.SIM_CLIENT_SECRET)
    stop()
end)


T.test("login with a certificate credential instead of a secret", function()
    local crypto = require "aurora.crypto"
    local sim, call, stop = connector.start()
    local key = crypto.generate_key("rsa", 2048)
    local cert = crypto.issue_cert { key = key, subject = { CN = "aurora-sp-cert" }, days = 30 }
    local reg = assert(sim:request("login", "POST", "/_sim/entra/certificates",
        { json = { appId = sim.env.SIM_CLIENT_ID, pem = cert:pem() } }))
    T.ok(reg.status < 300, reg.body)
    local pem <close> = key:private_pem()
    local res = call("POST", "/azure/login", { json = { tenantId = sim.env.SIM_TENANT,
        clientId = sim.env.SIM_CLIENT_ID, certificatePem = cert:pem(),
        privateKeyPem = pem:reveal() } })
    T.eq(res.status, 200, res.body)
    T.eq(res.json.subscription_id, sim.env.SIM_SUBSCRIPTION)
    T.not_contains(res.body, "PRIVATE KEY")
    res = call("GET", "/azure/fetch_data")
    T.eq(res.status, 200, res.body)
    T.eq(res.json.credentials.secret_expires_at, nil, "no client secret to report")
    -- Both a secret and a certificate: a clear 400 naming the field.
    res = call("POST", "/azure/login", { json = { tenantId = sim.env.SIM_TENANT,
        clientId = sim.env.SIM_CLIENT_ID, clientSecret = "x", certificatePem = cert:pem(),
        privateKeyPem = pem:reveal() } })
    T.eq(res.status, 400)
    T.contains(res.json.error, "clientSecret")
    stop()
end)


T.test("every field alias is accepted, inside readOnlyCredentials too; userId is ignored",
    function()
        local sim, call, stop = connector.start()
        local res = call("POST", "/azure/login", { json = {
            tenant_id = sim.env.SIM_TENANT, client_id = sim.env.SIM_CLIENT_ID,
            client_secret = sim.env.SIM_CLIENT_SECRET,
            subscription_id = sim.env.SIM_SUBSCRIPTION, subscription_name = "What I call it",
            userId = "bob",
            read_only_credentials = { tenant = sim.env.SIM_TENANT, appId = READER_ID,
                password = READER_SECRET, subscription_id = sim.env.SIM_SUBSCRIPTION,
                subscription_name = "Mine" },
        } })
        T.eq(res.status, 200, res.body)
        T.eq(res.json.subscription_id, sim.env.SIM_SUBSCRIPTION)
        T.eq(res.json.subscription_name, "Aurora Sim Production", "the name comes from ARM")
        T.eq(res.json.read_only, true)
        res = call("GET", "/azure/fetch_data")
        T.eq(res.status, 200, res.body)
        T.eq(res.json.credentials.ask, true)
        T.eq(call("GET", "/azure/fetch_data", { user = "bob" }).status, 401,
            "the body's userId does not pick the user")
        -- A canonical name beats its alias.
        res = call("POST", "/azure/login", { user = "u2", json = good(sim,
            { tenant = "not-a-guid", appId = "not-a-guid", password = "wrong" }) })
        T.eq(res.status, 200, res.body)
        -- An alias alone is validated under the canonical name.
        res = call("POST", "/azure/login", { user = "u2", json = { tenant = "contoso",
            appId = sim.env.SIM_CLIENT_ID, password = sim.env.SIM_CLIENT_SECRET } })
        T.eq(res.status, 400)
        T.eq(res.json.fields, { "tenantId must be a GUID" })
        stop()
    end)


T.test("every validation error names its field in error and fields, before anything is sent",
    function()
        local sim, call, stop = connector.start()
        local t0 = sim:stats().total
        local function bad(body, fields, raw)
            local res = call("POST", "/azure/login", raw and { body = body,
                headers = { ["Content-Type"] = "application/json" } } or { json = body })
            T.eq(res.status, 400, res.body)
            T.eq(res.json.code, "bad_request")
            T.ok(#res.json.solution > 0)
            T.match(res.json.requestId, "%S")
            if type(fields) == "string" then
                T.contains(res.json.error, fields)
            else
                T.eq(res.json.fields, fields)
                T.eq(res.json.error, table.concat(fields, "; "))
            end
            T.not_contains(res.body, "p4ss-VALUE-9")
            return res
        end
        bad("{not json", "the request body must be a JSON object: malformed JSON", true)
        bad("", "the request body must be a JSON object", true)
        bad("[1, 2]", "the request body must be a JSON object", true)
        bad('"text"', "the request body must be a JSON object", true)
        bad({ clientSecret = "p4ss-VALUE-9" }, { "tenantId is missing", "clientId is missing" })
        bad({}, { "tenantId is missing", "clientId is missing",
            "clientSecret is missing (or give certificatePem and privateKeyPem)" })
        -- Wrong JSON types.
        bad({ tenantId = 5, clientId = true, clientSecret = 7, subscriptionId = 12,
            subscriptionName = false }, { "tenantId must be a string", "clientId must be a string",
            "clientSecret must be a non-empty string", "subscriptionId must be a string",
            "subscriptionName must be a string" })
        bad(good(sim, { clientSecret = "" }), { "clientSecret must be a non-empty string" })
        bad(good(sim, { clientSecret = json.array { "p4ss-VALUE-9" } }),
            { "clientSecret must be a non-empty string" })
        bad(good(sim, { readOnlyCredentials = "x" }), { "readOnlyCredentials must be an object" })
        bad(good(sim, { read_only_credentials = json.array { 1 } }),
            { "readOnlyCredentials must be an object" })
        -- Ids that are not GUIDs.
        bad({ tenantId = "contoso.onmicrosoft.com", clientId = "my-app",
            clientSecret = "p4ss-VALUE-9", subscription_id = "nope" },
            { "tenantId must be a GUID", "clientId must be a GUID", "subscriptionId must be a GUID" })
        bad(good(sim, { readOnlyCredentials = { appId = "x", tenant = "y",
            subscription_id = "z" } }), { "readOnlyCredentials.tenantId must be a GUID",
            "readOnlyCredentials.clientId must be a GUID",
            "readOnlyCredentials.clientSecret is missing (or give certificatePem and privateKeyPem)",
            "readOnlyCredentials.subscriptionId must be a GUID" })
        bad(good(sim, { certificatePem = "not pem" }),
            { "clientSecret cannot be given with certificatePem" })
        bad({ tenantId = sim.env.SIM_TENANT, clientId = sim.env.SIM_CLIENT_ID,
            certificatePem = "not pem" }, { "certificatePem must be PEM text",
            "privateKeyPem must be PEM text" })
        T.eq(sim:stats().total, t0, "nothing reached Entra ID or ARM")
        T.eq(call("GET", "/azure/fetch_data").status, 401, "nothing stored")
        stop()
    end)


T.test("a login body over the size limit is a 413 JSON answer", function()
    local sim, call, stop = connector.start { AURORA_BODY_MAX = "2048" }
    local res = call("POST", "/azure/login", { json = good(sim,
        { clientSecret = string.rep("s", 4000) }) })
    T.eq(res.status, 413)
    T.match(res.headers["content-type"], "^application/json")
    T.contains(res.json.error, "larger than 2048 bytes")
    T.eq(res.json.requestId, res.headers["x-request-id"])
    T.eq(sim:stats().total, 0, "nothing reached Entra ID or ARM")
    T.eq(call("GET", "/azure/fetch_data").status, 401, "nothing stored")
    stop()
end)


T.test("reads use the read-only principal when there is one, in Ask and in Do mode", function()
    local sim, call, stop = connector.start()
    -- The Reader app sees one subscription, the main app three: the list shows whose token
    -- ARM was given.
    T.eq(call("POST", "/azure/login", { json = good(sim, { readOnlyCredentials = {
        clientId = READER_ID, clientSecret = READER_SECRET } }) }).status, 200)
    T.eq(call("POST", "/azure/login", { user = "u2", json = good(sim) }).status, 200)
    for _, mode in ipairs { false, "ask", "Ask", "do" } do
        local res = call("GET", "/api/azure-subscriptions",
            { headers = { ["X-Aurora-Mode"] = mode or nil } })
        T.eq(res.status, 200, res.body)
        local set, n = project_set(res)
        T.eq(n, 1, "the Reader's view in mode " .. tostring(mode))
        T.ok(set[sim.env.SIM_SUBSCRIPTION])
    end
    local _, n = project_set(call("GET", "/api/azure-subscriptions", { user = "u2" }))
    T.eq(n, 3, "without read-only credentials, the main principal's view")
    -- Only the Reader's view can be enabled: Warned is visible to the main principal alone.
    local res = call("POST", "/api/azure-subscriptions", { json = { enabled = { SUB_WARNED } } })
    T.eq(res.status, 400, res.body)
    T.contains(res.json.error, "unknown subscription id: " .. SUB_WARNED)
    res = call("GET", "/azure/fetch_data", { headers = { ["X-Aurora-Mode"] = "ask" } })
    T.eq(res.status, 200, res.body)
    T.eq(res.json.credentials.ask, true)
    T.eq(res.json.credentials["do"], true)
    stop()
end)


T.test("an X-Aurora-Mode other than ask or do is 400 on every connector route", function()
    local sim, call, stop = connector.start()
    T.eq(call("POST", "/azure/login", { json = good(sim) }).status, 200)
    local routes = { { "POST", "/azure/login", good(sim) }, { "GET", "/azure/fetch_data" },
        { "GET", "/azure/clusters" }, { "GET", "/api/azure-subscriptions" },
        { "POST", "/api/azure-subscriptions", { enabled = { sim.env.SIM_SUBSCRIPTION } } },
        { "DELETE", "/api/connected-accounts/azure" } }
    for _, mode in ipairs { "maybe", "write", "ask,do" } do
        for _, r in ipairs(routes) do
            local res = call(r[1], r[2], { json = r[3], headers = { ["X-Aurora-Mode"] = mode } })
            T.eq(res.status, 400, r[1] .. " " .. r[2] .. " " .. mode .. ": " .. res.body)
            T.eq(res.json.code, "bad_request")
            T.contains(res.json.error, "X-Aurora-Mode")
        end
    end
    T.eq(call("GET", "/azure/fetch_data").status, 200, "the refused disconnect did nothing")
    stop()
end)


-- Runs account.write_token, the gate every Azure-changing handler goes through, in a task
-- against the simulator, for each X-Aurora-Mode; returns {mode = {status, body} or "token"}.
local WRITE_TOKEN_TASK = [[
package.path = "lua/?.lua;" .. package.path
local account = require "aurora.azure.account"
local json = require "aurora.json"
local tenant, client, secret_value = ...
local out = {}
local function try(name, mode, secret)
    local req = { id = "req-" .. name, headers = { ["x-aurora-mode"] = mode } }
    local tok, e = account.write_token(req, "u1", { tenantId = tenant, clientId = client,
        clientSecret = secret or secret_value })
    if tok then
        out[name] = "token"
        tok:close()
    else
        out[name] = { status = e[1], body = e[2] }
    end
end
try("none")
try("ask", "ask")
try("ASK", "ASK")
try("bogus", "bogus")
try("do", "do")
try("Do", "Do")
try("do-wrong-secret", "do", "wrong-secret-0000")
io.write(json.encode(out), "\n")
]]


T.test("changes need Do mode: write_token answers 403 forbidden_mode unless X-Aurora-Mode: do",
    function()
        local sim = harness.start()
        local dir = T.tmpdir()
        T.write_file(dir .. "/task.lua", WRITE_TOKEN_TASK)
        local p = T.spawn({ require("aurora.proc").self_exe(), "run", dir .. "/task.lua",
            sim.env.SIM_TENANT, sim.env.SIM_CLIENT_ID, sim.env.SIM_CLIENT_SECRET },
            { AZURE_AUTHORITY_HOST = sim.env.SIM_LOGIN_URL,
                AZURE_RESOURCE_MANAGER_ENDPOINT = sim.env.SIM_ARM_URL,
                AURORA_CA_BUNDLE = sim.env.SIM_CA_FILE, AURORA_ENV_FILE = "/nonexistent" })
        local how, code = T.wait_process(p.pid, 30)
        p.stopped = true
        T.eq({ how, code }, { "exited", 0 }, p:log())
        local out = json.decode(p:log():match("(%b{})%s*$"))
        for _, m in ipairs { "none", "ask", "ASK" } do
            T.eq(out[m].status, 403, m)
            T.eq(out[m].body.code, "forbidden_mode", m)
            T.eq(out[m].body.error, "Do-mode credentials required", m)
            T.eq(out[m].body.requestId, "req-" .. m)
            T.contains(out[m].body.solution[1], "X-Aurora-Mode: do")
        end
        T.eq(out.bogus.status, 400)
        T.eq(out.bogus.body.code, "bad_request")
        T.eq(out["do"], "token")
        T.eq(out.Do, "token")
        T.eq(out["do-wrong-secret"].status, 401)
        T.eq(out["do-wrong-secret"].body.upstream.code, "AADSTS7000215")
        T.eq(count(sim, TOKEN_ROUTE), 2, "Entra ID asked in Do mode only (once, then cached)")
        T.not_contains(p:log(), sim.env.SIM_CLIENT_SECRET)
    end)


T.test("disconnect removes records, cached tokens and cached clusters; twice is fine", function()
    local sim = harness.start()
    local call = connector.serve(sim, vault_env(sim))
    T.eq(call("POST", "/azure/login", { json = good(sim, { readOnlyCredentials = {
        clientId = READER_ID, clientSecret = READER_SECRET } }) }).status, 200)
    T.eq(count(sim, TOKEN_ROUTE), 2, "main and read-only ARM tokens")
    T.eq(call("GET", "/azure/fetch_data").status, 200)
    T.eq(count(sim, TOKEN_ROUTE), 3, "and a Graph token for the secret's expiry")
    T.eq(call("GET", "/azure/clusters").headers["x-cache"], "miss")
    T.eq(call("GET", "/azure/clusters").headers["x-cache"], "hit")
    local keys = vault_keys(sim, "users/u1")
    T.ok(#keys >= 4, "azure, azure-readonly, subscriptions, tokens/: " .. json.encode(keys))
    local res = call("DELETE", "/api/connected-accounts/azure")
    T.eq(res.status, 200, res.body)
    T.eq(res.json.message, "Azure account disconnected")
    for _, r in ipairs { "azure", "azure-readonly", "subscriptions", "tokens/arm" } do
        T.eq(vault_read(sim, "users/u1/" .. r), nil, r .. " deleted")
    end
    T.eq(call("GET", "/azure/fetch_data").json.code, "not_connected")
    T.eq(call("GET", "/azure/clusters").json.code, "not_connected")
    T.eq(call("GET", "/api/azure-subscriptions").json.code, "not_connected")
    T.eq(call("DELETE", "/api/connected-accounts/azure").status, 200, "idempotent")
    -- Connecting again asks Entra ID afresh for every token: none survived in the process.
    local before = count(sim, TOKEN_ROUTE)
    T.eq(call("POST", "/azure/login", { json = good(sim, { readOnlyCredentials = {
        clientId = READER_ID, clientSecret = READER_SECRET } }) }).status, 200)
    T.eq(count(sim, TOKEN_ROUTE) - before, 2, "new ARM tokens for both principals")
    T.eq(call("GET", "/azure/fetch_data").status, 200)
    T.eq(count(sim, TOKEN_ROUTE) - before, 3, "a new Graph token")
    local lists = count(sim, CLUSTERS_ROUTE)
    T.eq(call("GET", "/azure/clusters").headers["x-cache"], "miss", "no cached clusters")
    T.eq(count(sim, CLUSTERS_ROUTE), lists + 1)
end)


T.test("nothing is stored when a login fails, whatever failed", function()
    local sim = harness.start()
    local call = connector.serve(sim, vault_env(sim))
    local writes = count(sim, VAULT_WRITE_4) + count(sim, VAULT_WRITE_5)
    local fails = {
        good(sim, { clientSecret = "wrong" }),
        good(sim, { clientId = NOACCESS_ID, clientSecret = NOACCESS_SECRET }),
        good(sim, { subscriptionId = SUB_DISABLED }),
        good(sim, { readOnlyCredentials = { clientId = READER_ID, clientSecret = "wrong" } }),
        good(sim, { readOnlyCredentials = { clientId = NOACCESS_ID,
            clientSecret = NOACCESS_SECRET } }),
        good(sim, { readOnlyCredentials = { clientId = READER_ID, clientSecret = READER_SECRET,
            subscriptionId = SUB_WARNED } }),
        good(sim, { tenantId = "nope" }),
    }
    for i, body in ipairs(fails) do
        local res = call("POST", "/azure/login", { json = body })
        T.ok(res.status >= 400, "case " .. i .. ": " .. res.body)
    end
    sim:knobs { faults = { { route = SUBS_ROUTE, status = 500, retry_after = 0, count = 4 } } }
    T.eq(call("POST", "/azure/login", { json = good(sim) }).status, 502)
    T.eq(count(sim, VAULT_WRITE_4) + count(sim, VAULT_WRITE_5), writes, "no write to Vault")
    T.eq(vault_keys(sim, "users"), nil, "nothing under users/")
    T.eq(call("GET", "/azure/fetch_data").json.code, "not_connected")
end)


T.test("a new server process answers fetch_data with the management token login saved", function()
    local sim = harness.start()
    for _, backend in ipairs { "store", "vault" } do
        T.eq(sim:request("arm", "POST", "/_sim/reset").status, 200, "faults cleared")
        local env = backend == "vault" and vault_env(sim) or
            { AURORA_DATA_DIR = T.tmpdir(), AURORA_MASTER_KEY = crypto.hex(crypto.random(32)) }
        local user = "restart-" .. backend
        local call, s = connector.serve(sim, env)
        local res = call("POST", "/azure/login", { user = user, json = good(sim) })
        T.eq(res.status, 200, res.body)
        s:stop()
        -- From now on Entra ID refuses every token request.
        sim:knobs { faults = { { route = TOKEN_ROUTE, status = 503, count = 1000 } } }
        local tokens, gets = count(sim, TOKEN_ROUTE), count(sim, "arm:GET /subscriptions/{sub}")
        call = connector.serve(sim, env)
        res = call("GET", "/azure/fetch_data", { user = user })
        -- The saved record is used only when its credential fingerprint matches the one this
        -- process computes (lua/aurora/identity.lua, fingerprint and load_token).
        T.eq(res.status, 200, backend .. ": the new process did not use the saved management " ..
            "token and asked Entra ID for one: " .. res.body)
        T.eq(res.json.subscription_id, sim.env.SIM_SUBSCRIPTION)
        T.eq(res.json.subscription_name, "Aurora Sim Production")
        T.eq(count(sim, "arm:GET /subscriptions/{sub}") - gets, 1, "ARM was asked")
        -- Only the Graph token (for the secret's expiry) was asked for, and refused.
        T.eq(count(sim, TOKEN_ROUTE) - tokens, 1, backend .. ": no new management token")
        T.eq(res.json.credentials.secret_expires_at, nil)
    end
end)


T.test("a failed store write during a new login puts the previous records back (Vault)", function()
    local sim = harness.start()
    local call = connector.serve(sim, vault_env(sim))
    T.eq(call("POST", "/azure/login", { json = good(sim) }).status, 200)
    T.eq(call("POST", "/api/azure-subscriptions", { json = { enabled = {
        sim.env.SIM_SUBSCRIPTION, SUB_WARNED } } }).status, 200)
    local token_before = vault_read(sim, "users/u1/tokens/arm")
    T.ok(token_before and token_before.fingerprint, "login saved the management token")
    -- Login with the Reader app; the last of its writes (users/u1/tokens/arm) fails once.
    sim:knobs { faults = { { route = VAULT_WRITE_5, status = 500, count = 1,
        body = { errors = { "internal error" } } } } }
    local res = call("POST", "/azure/login", { json = good(sim,
        { clientId = READER_ID, clientSecret = READER_SECRET }) })
    T.eq(res.status, 503, res.body)
    T.eq(res.json.code, "storage_failed")
    T.eq(res.json.error, "Failed to store Azure credentials")
    T.eq(res.json.upstream.code, "unavailable")
    T.not_contains(res.body, READER_SECRET)
    -- The first login's account, unchanged.
    T.eq(vault_read(sim, "users/u1/azure").clientId, sim.env.SIM_CLIENT_ID)
    T.eq(vault_read(sim, "users/u1/subscriptions").enabled,
        { sim.env.SIM_SUBSCRIPTION, SUB_WARNED })
    T.eq(vault_read(sim, "users/u1/tokens/arm").fingerprint, token_before.fingerprint)
    res = call("GET", "/azure/fetch_data")
    T.eq(res.status, 200, res.body)
    T.eq(res.json.subscription_id, sim.env.SIM_SUBSCRIPTION)
    local set, n = project_set(call("GET", "/api/azure-subscriptions"))
    T.eq(n, 3, "the main principal's view, not the Reader's")
    T.eq(set[SUB_WARNED].enabled, true, "the enabled set survived")
end)


T.test("a new login without read-only credentials removes the old ones, or changes nothing " ..
    "when it cannot (Vault)", function()
    local sim = harness.start()
    local call = connector.serve(sim, vault_env(sim))
    local with_ro = good(sim, { readOnlyCredentials = { clientId = READER_ID,
        clientSecret = READER_SECRET } })
    T.eq(call("POST", "/azure/login", { json = with_ro }).status, 200)
    T.eq(vault_read(sim, "users/u1/azure-readonly").clientId, READER_ID)
    -- The delete of users/u1/azure-readonly fails once: the whole login is undone.
    sim:knobs { faults = { { route = "vault:DELETE /v1/{mount}/metadata/{p1}/{p2}/{p3}/{p4}",
        status = 503, count = 1, body = { errors = { "Vault is sealed" } } } } }
    local res = call("POST", "/azure/login", { json = good(sim) })
    T.eq(res.status, 503, res.body)
    T.eq(res.json.code, "storage_failed")
    T.eq(vault_read(sim, "users/u1/azure-readonly").clientId, READER_ID, "still there")
    T.eq(call("GET", "/azure/fetch_data").json.credentials.ask, true)
    local _, n = project_set(call("GET", "/api/azure-subscriptions"))
    T.eq(n, 1, "reads still on the Reader")
    -- Without the fault the same login removes them, and reads go back to the main principal.
    res = call("POST", "/azure/login", { json = good(sim) })
    T.eq(res.status, 200, res.body)
    T.eq(res.json.read_only, false)
    T.eq(vault_read(sim, "users/u1/azure-readonly"), nil)
    T.eq(call("GET", "/azure/fetch_data").json.credentials.ask, false)
    _, n = project_set(call("GET", "/api/azure-subscriptions"))
    T.eq(n, 3)
end)


T.test("when a previous record cannot be read (Vault sealed), login writes nothing", function()
    local sim = harness.start()
    local call = connector.serve(sim, vault_env(sim))
    T.eq(call("POST", "/azure/login", { json = good(sim) }).status, 200)
    sim:knobs { vault_sealed = true }
    local writes = count(sim, VAULT_WRITE_4) + count(sim, VAULT_WRITE_5)
    for _, user in ipairs { "u1", "u2" } do
        local res = call("POST", "/azure/login", { user = user, json = good(sim,
            { clientId = READER_ID, clientSecret = READER_SECRET }) })
        T.eq(res.status, 503, res.body)
        T.eq(res.json.code, "storage_failed")
        T.eq(res.json.upstream.code, "unavailable")
        T.contains(res.json.upstream.message, "sealed")
    end
    T.eq(count(sim, VAULT_WRITE_4) + count(sim, VAULT_WRITE_5), writes, "no write was tried")
    sim:knobs { vault_sealed = false }
    T.eq(vault_read(sim, "users/u1/azure").clientId, sim.env.SIM_CLIENT_ID)
    T.eq(vault_keys(sim, "users/u2"), nil)
    T.eq(call("GET", "/azure/fetch_data", { user = "u2" }).json.code, "not_connected")
end)


T.test("POST /api/azure-subscriptions takes the documented shapes and refuses others", function()
    local sim, call, stop = connector.start()
    T.eq(call("POST", "/azure/login", { json = good(sim) }).status, 200)
    for _, body in ipairs { { foo = 1 }, { projects = {} }, { projects = "x" },
            { projects = json.array { 5 } }, { enabled = { sub = 1 } } } do
        local res = call("POST", "/api/azure-subscriptions", { json = body })
        T.eq(res.status, 400, json.encode(body) .. ": " .. res.body)
        T.eq(res.json.code, "bad_request")
        T.contains(res.json.error, "projects")
    end
    local res = call("POST", "/api/azure-subscriptions", { body = "nope",
        headers = { ["Content-Type"] = "application/json" } })
    T.eq(res.status, 400)
    res = call("GET", "/api/azure-subscriptions")
    local set = project_set(res)
    T.eq(set[sim.env.SIM_SUBSCRIPTION].enabled, true, "the refused bodies changed nothing")
    T.eq(set[SUB_WARNED].enabled, false)
    for _, body in ipairs { json.array { SUB_WARNED }, { subscriptionIds = { SUB_WARNED:upper() } },
            { enabled = { SUB_WARNED } }, { projects = { { projectId = SUB_WARNED },
                { projectId = sim.env.SIM_SUBSCRIPTION, enabled = false } } } } do
        res = call("POST", "/api/azure-subscriptions", { json = body })
        T.eq(res.status, 200, json.encode(body) .. ": " .. res.body)
        T.eq(res.json.enabled, { SUB_WARNED })
    end
    stop()
end)

-- The Azure connector endpoints (lua/app.lua, lua/handlers/azure.lua) against the simulator.
local T = require "aurora.test"
local harness = require "sim.harness"
local json = require "aurora.json"

local SUB_DISABLED = "1c2d3e4f-5061-4728-9394-a5b6c7d8e9f0"
local SUB_WARNED = "2d3e4f50-6172-4839-a4b5-c6d7e8f90a1b"
local READER_ID, READER_SECRET = "9e0f1a2b-3c4d-4e5f-8a6b-7c8d9e0f1a2c", "sim-secret-reader-0002"
local NOACCESS_ID, NOACCESS_SECRET = "7a8b9cad-becf-4d01-8c3d-4e5f6a7b8c94", "sim-secret-noaccess-0004"

local function start(extra_env, scenario)
    local sim = harness.start { scenario = scenario }
    local env = { AZURE_AUTHORITY_HOST = sim.env.SIM_LOGIN_URL,
        AZURE_RESOURCE_MANAGER_ENDPOINT = sim.env.SIM_ARM_URL,
        AZURE_GRAPH_ENDPOINT = sim.env.SIM_GRAPH_URL, AURORA_CA_BUNDLE = sim.env.SIM_CA_FILE }
    for k, v in pairs(extra_env or {}) do env[k] = v end
    local s = T.server { app = "lua", env = env }
    local function call(method, p, opts)
        opts = opts or {}
        local headers = opts.headers or {}
        if opts.user ~= false then headers["X-User-ID"] = headers["X-User-ID"] or opts.user or "u1" end
        local res = assert(s:request(method, p, { json = opts.json, body = opts.body,
            headers = headers }))
        local ok, body = pcall(json.decode, res.body)
        res.json = ok and body or nil
        return res
    end
    local function stop() s:stop(); sim:stop() end
    return sim, call, stop
end

local function good(sim, extra)
    local b = { tenantId = sim.env.SIM_TENANT, clientId = sim.env.SIM_CLIENT_ID,
        clientSecret = sim.env.SIM_CLIENT_SECRET }
    for k, v in pairs(extra or {}) do b[k] = v end
    return b
end

local CLUSTERS_ROUTE = "arm:GET /subscriptions/{sub}/providers/Microsoft.ContainerService/managedClusters"

-- Requests the simulator counted on exactly one route.
local function count(sim, route)
    return sim:stats().counts[route] or 0
end

local function arm_count(sim, needle)
    local n = 0
    for k, v in pairs(sim:stats().counts) do
        if k:sub(1, 4) == "arm:" and (not needle or k:find(needle, 1, true)) then n = n + v end
    end
    return n
end

T.test("login with the CLI's field names, then fetch_data", function()
    local sim, call, stop = start()
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
    local sim, call, stop = start()
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

T.test("subscription selection: first Enabled, Disabled given, none visible", function()
    local sim, call, stop = start()
    local res = call("POST", "/azure/login", { json = good(sim) })
    T.eq(res.status, 200, res.body)
    T.eq(res.json.subscription_id, sim.env.SIM_SUBSCRIPTION)
    res = call("POST", "/azure/login", { user = "u2", json = good(sim, { subscriptionId = SUB_DISABLED }) })
    T.ok(res.status >= 400, res.body)
    T.eq(res.json.error, "No enabled subscription found")
    res = call("POST", "/azure/login", { user = "u2", json = good(sim, { clientId = NOACCESS_ID,
        clientSecret = NOACCESS_SECRET }) })
    T.ok(res.status >= 400, res.body)
    T.eq(res.json.error, "No enabled subscription found")
    T.eq(call("GET", "/azure/fetch_data", { user = "u2" }).status, 401, "nothing stored for u2")
    stop()
end)

T.test("read-only credentials (aliases inside) are validated and used for reads", function()
    local sim, call, stop = start()
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

T.test("users are isolated and bad user ids are refused", function()
    local sim, call, stop = start()
    T.eq(call("POST", "/azure/login", { user = "alice@example.com", json = good(sim) }).status, 200)
    T.eq(call("GET", "/azure/fetch_data", { user = "alice@example.com" }).status, 200)
    T.eq(call("GET", "/azure/fetch_data", { user = "bob" }).status, 401)
    for _, id in ipairs { "..", ".", "a/b", "../alice@example.com", "a\tb", "x.rec",
            string.rep("a", 129), "ü" } do
        local res = call("POST", "/azure/login", { user = id, json = good(sim) })
        T.eq(res.status, 400, "user id " .. id)
    end
    T.eq(call("GET", "/azure/fetch_data", { user = false }).status, 400)
    stop()
end)

T.test("clusters: paging, the 30 s cache, ?refresh=1", function()
    local sim, call, stop = start()
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

T.test("a 429 from ARM is retried", function()
    local sim, call, stop = start()
    sim:knobs { faults = { { route = "arm:GET /subscriptions", status = 429, retry_after = 1,
        count = 1 } } }
    local res = call("POST", "/azure/login", { json = good(sim) })
    T.eq(res.status, 200, res.body)
    T.ok(arm_count(sim, "GET /subscriptions") >= 2, "the throttled call was repeated")
    stop()
end)

T.test("the enabled subscription set, then disconnect", function()
    local sim, call, stop = start()
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
    local sim, call, stop = start { AURORA_API_TOKEN = "tok-123", FRONTEND_URL = "https://app.example" }
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
    local sim, call, stop = start()
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
    sim, call, stop = start(nil, dir .. "/scenario.lua")
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
    local sim, call, stop = start()
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

-- The simulator's frame: start-up, sim.env, one listener per service, knobs and counters.
local T = require "aurora.test"
local harness = require "sim.harness"
local json = require "aurora.json"
local http = require "aurora.http"


T.test("the simulator writes sim.env with every variable once its listeners are ready", function()
    local sim = harness.start()
    for _, k in ipairs { "SIM_LOGIN_URL", "SIM_ARM_URL", "SIM_GRAPH_URL", "SIM_VAULT_ADDR",
        "SIM_VAULT_TOKEN", "SIM_CA_FILE", "SIM_TENANT", "SIM_CLIENT_ID", "SIM_CLIENT_SECRET",
        "SIM_SUBSCRIPTION", "SIM_AKS_RESOURCE_GROUP", "SIM_AKS_CLUSTER", "SIM_KUBECONFIG" } do
        T.ok(sim.env[k] and sim.env[k] ~= "", k .. " is set")
    end
    for _, k in ipairs { "SIM_LOGIN_URL", "SIM_ARM_URL", "SIM_GRAPH_URL", "SIM_VAULT_ADDR" } do
        T.match(sim.env[k], "^https://127%.0%.0%.1:%d+$")
        local res = assert(http.request { url = sim.env[k] .. "/healthz",
            ca_file = sim.env.SIM_CA_FILE })
        T.eq(res.status, 200)
    end
    T.contains(T.read_file(sim.env.SIM_KUBECONFIG), "client-certificate-data:")
end)


T.test("every service has its own listener and TLS is verified against the simulator's CA", function()
    local sim = harness.start()
    local bad, _, code = http.request { url = sim.env.SIM_ARM_URL .. "/healthz" }
    T.eq(bad, nil)
    T.eq(code, "tls", "the system CAs do not trust the simulator")
    local cluster_ca = sim.config.clusters[sim.env.SIM_AKS_CLUSTER].ca_file
    local res, _, code2 = http.request { url = sim.config.clusters[sim.env.SIM_AKS_CLUSTER].url ..
        "/healthz", ca_file = sim.env.SIM_CA_FILE }
    T.eq(res, nil)
    T.eq(code2, "tls", "a cluster's API server has its own CA")
    res = assert(sim:request("kube:" .. sim.env.SIM_AKS_CLUSTER, "GET", "/healthz"))
    T.eq(res.status, 200)
    T.ok(cluster_ca ~= sim.env.SIM_CA_FILE)
end)


T.test("knobs inject faults with Retry-After, counters count, reset clears both", function()
    local sim = harness.start()
    sim:knobs { faults = { { route = "arm:GET /subscriptions", status = 429, count = 2,
        retry_after = 7, code = "SubscriptionRequestsThrottled" } } }
    local tok = sim:token()
    for _ = 1, 2 do
        local res = assert(sim:request("arm", "GET", "/subscriptions?api-version=2022-12-01",
            { bearer = tok }))
        T.eq(res.status, 429)
        T.eq(res.headers["retry-after"], "7")
        T.eq(json.decode(res.body).error.code, "SubscriptionRequestsThrottled")
    end
    T.eq(assert(sim:request("arm", "GET", "/subscriptions?api-version=2022-12-01",
        { bearer = tok })).status, 200, "the fault answers count requests, then the real route")
    T.eq(sim:stats().counts["arm:GET /subscriptions"], 3)
    -- count 2: libcurl retries once on a fresh connection when a reused one dies unanswered
    sim:knobs { faults = { { route = "arm:GET /subscriptions", drop = true, count = 2 } } }
    local dropped, _, code = sim:request("arm", "GET", "/subscriptions?api-version=2022-12-01",
        { bearer = tok, timeout = 5 })
    T.eq(dropped, nil)
    T.eq(code, "connect", "a dropped connection")
    sim:knobs { latency_ms = { ["arm:GET /subscriptions"] = 300 } }
    local t0 = require("aurora.time").monotonic()
    assert(sim:request("arm", "GET", "/subscriptions?api-version=2022-12-01", { bearer = tok }))
    T.ok(require("aurora.time").monotonic() - t0 >= 0.3, "latency knob")
    local res = assert(sim:request("login", "GET", "/_sim/stats"))
    T.eq(res.status, 200, "control routes are not subject to faults")
    local st = sim:stats()
    T.eq(type(st.counts), "table")
    local r2 = assert(sim:request("arm", "POST", "/_sim/reset"))
    T.eq(json.decode(r2.body), { reset = true })
    T.eq(sim:stats().total, 0)
end)


T.test("stats count requests per listener, method and literal path; reset clears them", function()
    local sim = harness.start()
    local tok = sim:token()
    for _ = 1, 2 do
        assert(sim:request("arm", "GET", "/subscriptions/" .. sim.env.SIM_SUBSCRIPTION ..
            "?api-version=2022-12-01", { bearer = tok }))
    end
    assert(sim:request("kube:aks-prod", "GET", "/version?timeout=5s"))
    assert(sim:request("kube:aks-aad", "GET", "/version"))
    local st = sim:stats()
    T.eq(st.requests["arm GET /subscriptions/" .. sim.env.SIM_SUBSCRIPTION], 2)
    T.eq(st.requests["kube:aks-prod GET /version"], 1, "no query string in the key")
    T.eq(st.requests["kube:aks-aad GET /version"], 1)
    T.eq(st.requests["login POST /" .. sim.env.SIM_TENANT .. "/oauth2/v2.0/token"], 1)
    T.eq(st.counts["kube:GET /version"], 2, "route counts stay per route")
    T.eq(st.total, 5, "the total counts routes, once per request")
    assert(sim:request("arm", "POST", "/_sim/reset"))
    T.eq(sim:stats().requests, {})
end)


T.test("injected ARM and Entra faults carry the services' request-id headers", function()
    local sim = harness.start()
    local tok = sim:token()
    sim:knobs { faults = { { route = "arm:GET /subscriptions", status = 503,
        headers = { ["x-ms-request-id"] = "fixed-by-the-fault" } },
        { route = "arm:GET /subscriptions", status = 503 } } }
    local res = assert(sim:request("arm", "GET", "/subscriptions?api-version=2022-12-01",
        { bearer = tok, headers = { ["x-ms-correlation-request-id"] = "corr-from-the-client" } }))
    T.eq(res.status, 503)
    T.eq(res.headers["x-ms-correlation-request-id"], "corr-from-the-client",
        "the client's correlation id is echoed")
    T.eq(res.headers["x-ms-request-id"], "fixed-by-the-fault", "the fault's own headers win")
    res = assert(sim:request("arm", "GET", "/subscriptions?api-version=2022-12-01",
        { bearer = tok }))
    T.eq(res.status, 503)
    local guid = "^%x+%-%x+%-4%x+%-[89ab]%x+%-%x+$"
    T.match(res.headers["x-ms-request-id"], guid)
    T.match(res.headers["x-ms-correlation-request-id"], guid, "a new one without the client's")
    T.ok(res.headers["x-ms-correlation-request-id"] ~= res.headers["x-ms-request-id"])
    T.match(res.headers["x-ms-routing-request-id"], "^EASTUS:%d+T%d+Z:" ..
        res.headers["x-ms-request-id"]:gsub("%-", "%%-") .. "$")

    sim:knobs { faults = { { route = "login:", status = 500, count = 2 } } }
    local path = "/" .. sim.env.SIM_TENANT .. "/oauth2/v2.0/token"
    res = assert(sim:request("login", "POST", path, { form = { grant_type = "client_credentials" },
        headers = { ["client-request-id"] = "cid-from-msal" } }))
    T.eq(res.status, 500)
    T.match(res.headers["x-ms-request-id"], guid)
    T.eq(res.headers["client-request-id"], "cid-from-msal")
    T.eq(res.headers["x-ms-correlation-request-id"], nil, "Entra has no ARM headers")
    res = assert(sim:request("login", "POST", path,
        { form = { grant_type = "client_credentials" } }))
    T.eq(res.status, 500)
    T.eq(res.headers["client-request-id"], nil)

    sim:knobs { faults = { { route = "vault", status = 503 } } }
    res = assert(sim:request("vault", "GET", "/v1/sys/health"))
    T.eq(res.status, 503)
    T.eq(res.headers["x-ms-request-id"], nil, "other services get no Azure headers")
end)


T.test("scenario.generate makes half of the generated sites function apps", function()
    local scenario = dofile("tests/sim/scenario.lua")
    local s = scenario.generate(dofile("tests/sim/scenarios/default.lua"),
        { resource_groups = 4, resources = 960 })
    local kinds, functions, webs = {}, 0, 0
    for _, site in ipairs(s.sites) do
        if site.name:match("^sites%-%d+$") then
            kinds[site.kind] = (kinds[site.kind] or 0) + 1
            local tokens = "," .. site.kind .. ","
            if tokens:find(",functionapp,", 1, true) then
                functions = functions + 1
            else
                T.ok(tokens:find(",app,", 1, true), site.kind)
                webs = webs + 1
            end
        end
    end
    T.eq(functions + webs, 120)
    T.eq(functions, 60)
    T.eq(kinds, { app = 40, ["app,linux"] = 20, functionapp = 20, ["functionapp,linux"] = 40 })
end)


T.test("scenarios/large.lua lets the default service principal read every subscription", function()
    local scenario = dofile("tests/sim/scenario.lua")
    package.loaded.scenario = scenario
    local ok, s = pcall(dofile, "tests/sim/scenarios/large.lua")
    package.loaded.scenario = nil
    assert(ok, s)
    T.eq(#s.subscriptions, 6)
    local sp = s.applications[1].spObjectId
    for _, sub in ipairs(s.subscriptions) do
        local roles = {}
        for _, a in ipairs(s.role_assignments) do
            if a.principal == sp and a.scope == "/subscriptions/" .. sub.id then
                roles[#roles + 1] = a.role
            end
        end
        T.eq(#roles, 1, sub.name)
        T.ok(roles[1] == "Reader" or roles[1] == "Contributor", sub.name)
    end
    local used = {}
    for _, rg in ipairs(s.resource_groups) do used[rg.subscription] = true end
    for _, sub in ipairs(s.subscriptions) do
        T.ok(used[sub.id], "generated resource groups in " .. sub.name)
    end
end)

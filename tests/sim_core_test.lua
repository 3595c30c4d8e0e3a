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

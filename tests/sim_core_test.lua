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
    sim:knobs { faults = { { route = "login:", status = 503, count = 1, retry_after = 2 } } }
    local res = assert(sim:request("login", "GET", "/_sim/stats"))
    T.eq(res.status, 200, "control routes are not subject to faults")
    local st = sim:stats()
    T.eq(type(st.counts), "table")
    local r2 = assert(sim:request("arm", "POST", "/_sim/reset"))
    T.eq(json.decode(r2.body), { reset = true })
    T.eq(sim:stats().total, 0)
end)

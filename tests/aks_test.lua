-- AKS cluster access and the metrics-server (lua/aurora/aks.lua, lua/handlers/clusters.lua)
-- against the simulator: admin kubeconfig, Entra fallback, verified TLS, background jobs.
local T = require "aurora.test"
local connector = require "lib.connector"
local http = require "aurora.http"
local json = require "aurora.json"
local time = require "aurora.time"
local yaml = require "aurora.yaml"

local DEPLOY_POST = "kube:aks-aad POST /apis/apps/v1/namespaces/kube-system/deployments"

-- GET /azure/clusters until every cluster's access (and, with `metrics`, metrics-server status)
-- is settled or pred(rows) holds; returns the rows by name.
local function settle(call, opts, pred)
    local deadline = time.monotonic() + (opts.wait or 15)
    while true do
        local res = call("GET", "/azure/clusters", opts)
        T.eq(res.status, 200, res.body)
        local by, done = {}, true
        for _, c in ipairs(res.json) do
            by[c.name] = c
            if c.access == "pending" or c.metricsServer.status == "pending" or
                c.metricsServer.status == "deploying" then
                done = false
            end
        end
        if pred then done = pred(by) end
        if done then return by, res end
        if time.monotonic() > deadline then
            T.fail("clusters did not settle: " .. res.body)
        end
        time.sleep(0.1)
    end
end

-- Whether every field of want is in got with the same value (arrays element by element).
local function subset(want, got)
    if type(want) ~= "table" then return want == got end
    if type(got) ~= "table" then return false end
    for k, v in pairs(want) do
        if not subset(v, got[k]) then return false end
    end
    return true
end

local ACCESS = "tests/sim/scenarios/access.lua"
local READER_ID, READER_SECRET = "9e0f1a2b-3c4d-4e5f-8a6b-7c8d9e0f1a2c", "sim-secret-reader-0002"
local UNREGISTERED_SUB = "5061728a-94a5-4b6c-97d8-e9f0a1b2c3d4"

T.test("the list answers at once with pending clusters, then the admin and Entra paths", function()
    local sim, call, stop = connector.start()
    T.defer(stop)
    connector.login(sim, call)
    local res = call("GET", "/azure/clusters")
    T.eq(res.status, 200, res.body)
    T.eq(#res.json, 2)
    for _, c in ipairs(res.json) do
        T.ok(c.access ~= nil and c.metricsServer ~= nil, "every row has access and metricsServer")
        T.eq(c.subscriptionId, sim.env.SIM_SUBSCRIPTION)
    end
    local by = settle(call, {})
    T.eq(by["aks-prod"].access, "admin")
    T.eq(by["aks-prod"].metricsServer.status, "installed")
    T.eq(by["aks-aad"].access, "aad")
    T.eq(by["aks-aad"].localAccountsDisabled, true)
    -- Ask mode: missing is reported, nothing is deployed.
    T.eq(by["aks-aad"].metricsServer.status, "missing")
    T.eq(connector.requests(sim, DEPLOY_POST), 0)
    T.not_contains(json.encode(by), "BEGIN")
end)

T.test("Do mode deploys the metrics-server once, even with concurrent requests", function()
    local sim, call, stop, server = connector.start()
    T.defer(stop)
    sim:knobs { metrics_delay_ms = 300 }
    connector.login(sim, call)
    -- Several callers at once, in Do mode (on both workers).
    local list = {}
    for i = 1, 6 do
        list[i] = { url = server.url .. "/azure/clusters", headers = { ["X-User-ID"] = "u1",
            ["X-Aurora-Mode"] = "do" } }
    end
    for _, r in ipairs(http.request_many(list)) do T.eq(r.status, 200, r.body) end
    local by = settle(call, { mode = "do", wait = 30 }, function(b)
        return b["aks-aad"] and b["aks-aad"].metricsServer.status == "installed"
    end)
    T.eq(by["aks-prod"].metricsServer.status, "installed")
    T.eq(connector.requests(sim, DEPLOY_POST), 1)
    -- The objects created are the manifest's: each one is in the cluster, holding every field
    -- the manifest gives it (the API server adds its own: uid, status, defaults).
    local docs = assert(yaml.decode_all(T.read_file("lua/manifests/metrics-server.yaml")))
    T.eq(#docs, 9)
    local tok = assert(sim:token("6dae42f8-4368-4678-94ff-3960e28e3630/.default"))
    local aks = require "aurora.aks"
    for _, want in ipairs(docs) do
        local r = assert(sim:request("kube:aks-aad", "GET", aks.collection(want) .. "/" ..
            want.metadata.name, { bearer = tok }))
        T.eq(r.status, 200, want.kind .. " " .. want.metadata.name .. ": " .. r.body)
        local got = json.decode(r.body)
        for _, field in ipairs { "spec", "rules", "roleRef", "subjects" } do
            if want[field] ~= nil then
                T.ok(subset(want[field], got[field]), want.kind .. "." .. field .. " as in the manifest")
            end
        end
        T.ok(subset(want.metadata.labels or {}, got.metadata.labels or {}), want.kind .. " labels")
    end
    -- Later lists do not deploy again; the cluster that had one got nothing.
    settle(call, { mode = "do" })
    T.eq(connector.requests(sim, DEPLOY_POST), 1)
    T.eq(connector.requests(sim, "kube:aks-prod POST /apis/apps/v1/namespaces/kube-system/deployments"), 0)
    T.eq(connector.requests(sim, "kube:aks-prod POST /api/v1/namespaces/kube-system/serviceaccounts"), 0)
end)

T.test("POST metrics-server: Ask mode is refused, Do mode deploys and reports, 409 counts as present", function()
    local sim, call, stop = connector.start()
    T.defer(stop)
    sim:knobs { metrics_delay_ms = 200 }
    connector.login(sim, call)
    local path = "/azure/clusters/rg-aks/aks-aad/metrics-server"
    local res = call("POST", path)
    T.eq(res.status, 403, res.body)
    T.eq(res.json.error, "Do-mode credentials required")
    -- Two of the objects are there already.
    local tok = assert(sim:token("6dae42f8-4368-4678-94ff-3960e28e3630/.default"))
    for _, o in ipairs {
        { "/api/v1/namespaces/kube-system/serviceaccounts", { apiVersion = "v1",
            kind = "ServiceAccount", metadata = { name = "metrics-server", namespace = "kube-system" } } },
        { "/apis/rbac.authorization.k8s.io/v1/clusterroles", { apiVersion = "rbac.authorization.k8s.io/v1",
            kind = "ClusterRole", metadata = { name = "system:metrics-server" },
            rules = json.array() } },
    } do
        local r = assert(sim:request("kube:aks-aad", "POST", o[1], { bearer = tok, json = o[2] }))
        T.eq(r.status, 201, r.body)
    end
    res = call("POST", path, { mode = "do", timeout = 60 })
    T.eq(res.status, 200, res.body)
    T.eq(res.json.access, "aad")
    T.eq(res.json.metricsServer.status, "installed")
    T.eq(res.json.metricsServer.present, 2)
    T.ok(res.json.metricsServer.created >= 6, "the other objects were created")
    -- The detail endpoint now has node metrics.
    res = call("GET", "/azure/clusters/rg-aks/aks-aad")
    T.eq(res.status, 200, res.body)
    T.eq(res.json.metricsServer.status, "installed")
    T.eq(#res.json.nodes, 3)
    T.ok(res.json.nodes[1].cpuCores > 0 and res.json.nodes[1].memoryBytes > 0, res.body)
    res = call("GET", "/azure/clusters/rg-aks/no-such-cluster")
    T.eq(res.status, 404, res.body)
    T.eq(res.json.error, "AKS cluster not found")
end)

T.test("the detail endpoint of a cluster with a metrics-server shows node usage", function()
    local sim, call, stop = connector.start()
    T.defer(stop)
    connector.login(sim, call)
    local res = call("GET", "/azure/clusters/RG-AKS/aks-prod")
    T.eq(res.status, 200, res.body)
    T.eq(res.json.access, "admin")
    T.eq(res.json.metricsServer.status, "installed")
    T.eq(#res.json.nodes, 3)
    for _, n in ipairs(res.json.nodes) do
        T.ok(n.cpuPercent > 0 and n.cpuPercent < 100, res.body)
        T.ok(n.memoryPercent > 0 and n.memoryPercent < 100, res.body)
    end
    T.ok(res.json.totals.cpuCores > 0)
end)

T.test("Kubernetes quantities", function()
    local aks = require "aurora.aks"
    T.eq(aks.quantity("250m"), 0.25)
    T.eq(aks.quantity("2"), 2)
    T.eq(aks.quantity("1Ki"), 1024)
    T.eq(aks.quantity("1536Mi"), 1536 * 1024 * 1024)
    T.ok(math.abs(aks.quantity("100n") - 100e-9) < 1e-15)
    T.eq(aks.quantity("1e3"), 1000)
    T.eq(aks.quantity("1k"), 1000)
    T.eq(aks.quantity("x"), nil)
    T.eq(aks.quantity("1Zi"), nil)
    T.eq(aks.collection({ apiVersion = "apps/v1", kind = "Deployment",
        metadata = { namespace = "kube-system" } }), "/apis/apps/v1/namespaces/kube-system/deployments")
    T.eq(aks.collection({ apiVersion = "v1", kind = "ServiceAccount",
        metadata = { namespace = "kube-system" } }), "/api/v1/namespaces/kube-system/serviceaccounts")
    T.eq(aks.collection({ apiVersion = "apiregistration.k8s.io/v1", kind = "APIService",
        metadata = {} }), "/apis/apiregistration.k8s.io/v1/apiservices")
end)


T.test("private, unreachable, wrong-CA and expired-certificate clusters are reported as such", function()
    local sim, call, stop = connector.start(nil, ACCESS)
    T.defer(stop)
    connector.login(sim, call)
    local by = settle(call, {})
    local p = by["aks-private"]
    T.eq(p.private, true)
    T.eq(p.access, "unreachable")
    T.contains(p.accessReason, "private cluster")
    T.eq(p.accessError.error, "Admin credentials failed")
    T.eq(p.accessError.upstream.code, "private_cluster")
    T.contains(p.accessError.solution[1], "private")
    -- Nothing tried to reach the private API server (its name was never looked up either:
    -- no credential was even asked for).
    T.eq(connector.requests(sim, "arm POST /subscriptions/" .. sim.env.SIM_SUBSCRIPTION ..
        "/resourceGroups/rg-aks/providers/Microsoft.ContainerService/managedClusters/" ..
        "aks-private/listClusterAdminCredential"), 0)

    local w = by["aks-wrong-ca"]
    T.eq(w.access, "unreachable")
    T.contains(w.accessReason, "TLS verification failed")
    T.eq(w.accessError.upstream.code, "cluster_tls")
    T.eq(w.metricsServer.status, "unknown")

    local u = by["aks-unreachable"]
    T.eq(u.access, "unreachable")
    T.contains(u.accessReason, "cannot connect")
    T.eq(u.accessError.upstream.code, "cluster_unreachable")

    -- The expired admin certificate is never presented; Entra ID access is used instead, and
    -- the reason says why.
    local e = by["aks-expired"]
    T.eq(e.access, "aad")
    T.contains(e.accessReason, "expired")

    local b = by["aks-ms-broken"]
    T.eq(b.access, "admin")
    T.eq(b.metricsServer.status, "failed")
    T.contains(b.metricsServer.reason, "not Available")
    -- A broken metrics-server is not deployed over, even in Do mode.
    settle(call, { mode = "do" })
    T.eq(connector.requests(sim, "kube:aks-ms-broken POST /apis/apps/v1/namespaces/kube-system/deployments"), 0)
    T.eq(by["aks-prod"].access, "admin")
    T.not_contains(json.encode(by), "BEGIN")
end)

T.test("a stopped cluster is reported without trying to reach it", function()
    local dir = T.tmpdir()
    T.write_file(dir .. "/scenario.lua", 'local s = dofile("tests/sim/scenarios/default.lua")\n' ..
        's.clusters[1].power = "Stopped"\nreturn s\n')
    local sim, call, stop = connector.start(nil, dir .. "/scenario.lua")
    T.defer(stop)
    connector.login(sim, call)
    local by = settle(call, {})
    local p = by["aks-prod"]
    T.eq(p.powerState, "Stopped")
    T.eq(p.access, "unreachable")
    T.contains(p.accessReason, "stopped")
    T.eq(p.accessError.upstream.code, "cluster_stopped")
    T.contains(p.accessError.solution[1], "az aks start")
    T.eq(connector.requests(sim, "kube:aks-prod GET " ..
        "/apis/apps/v1/namespaces/kube-system/deployments/metrics-server"), 0)
    T.eq(connector.requests(sim, "arm POST /subscriptions/" .. sim.env.SIM_SUBSCRIPTION ..
        "/resourceGroups/rg-aks/providers/Microsoft.ContainerService/managedClusters/" ..
        "aks-prod/listClusterAdminCredential"), 0)
    T.eq(by["aks-aad"].access, "aad")
end)

T.test("the resource provider is checked in Ask mode and registered in Do mode", function()
    local sim, call, stop = connector.start(nil, ACCESS)
    T.defer(stop)
    connector.login(sim, call)
    local res = call("POST", "/api/azure-subscriptions", { json = { projects = {
        { projectId = sim.env.SIM_SUBSCRIPTION, enabled = true },
        { projectId = UNREGISTERED_SUB, enabled = true } } } })
    T.eq(res.status, 200, res.body)
    local function state()
        local tok = assert(sim:token())
        local r = assert(sim:request("arm", "GET", "/subscriptions/" .. UNREGISTERED_SUB ..
            "/providers/Microsoft.ContainerService?api-version=2021-04-01", { bearer = tok }))
        return json.decode(r.body).registrationState
    end
    settle(call, {})
    time.sleep(0.3)
    T.eq(state(), "NotRegistered")
    settle(call, { mode = "do" })
    local deadline = time.monotonic() + 10
    while state() ~= "Registered" and state() ~= "Registering" do
        if time.monotonic() > deadline then T.fail("the provider was not registered") end
        time.sleep(0.1)
    end
end)

T.test("Ask mode reads with the Reader credentials; a Reader-only account cannot deploy", function()
    local sim, call, stop = connector.start()
    T.defer(stop)
    connector.login(sim, call, "u1", { readOnlyCredentials = {
        clientId = READER_ID, clientSecret = READER_SECRET } })
    -- Ask mode: the Reader may not list cluster credentials, so no way in.
    local by = settle(call, {})
    T.eq(by["aks-prod"].access, "forbidden")
    T.eq(by["aks-prod"].accessError.error, "Admin credentials failed")
    T.eq(by["aks-prod"].accessError.upstream.code, "AuthorizationFailed")
    -- Do mode: the Contributor gets in.
    by = settle(call, { mode = "do" })
    T.eq(by["aks-prod"].access, "admin")
    -- An account whose only credentials are a Reader's gets a clear 403 for a deployment.
    connector.login(sim, call, "u2", { clientId = READER_ID, clientSecret = READER_SECRET })
    local before = connector.requests(sim, DEPLOY_POST)
    local res = call("POST", "/azure/clusters/rg-aks/aks-aad/metrics-server",
        { user = "u2", mode = "do", timeout = 60 })
    T.eq(res.status, 403, res.body)
    T.eq(res.json.error, "Admin credentials failed")
    T.eq(res.json.cluster.access, "forbidden")
    T.eq(connector.requests(sim, DEPLOY_POST), before)
end)

T.test("a deployment slower than the request's wait answers 202 and goes on in the background", function()
    local app = T.tmpdir()
    -- The app as served in production, waiting 1 s instead of 20 on the request, and keeping
    -- one cluster client per worker (each new one pushes the last out).
    T.write_file(app .. "/app.lua", 'local aks = require("aurora.aks")\n' ..
        'aks.REQUEST_WAIT, aks.POLL_INTERVAL, aks.MAX_CLIENTS = 1, 0.2, 1\n' ..
        'return dofile("lua/app.lua")\n')
    local sim, call, stop = connector.start({ AURORA_LIB_DIR = "lua" }, nil, { app = app })
    T.defer(stop)
    sim:knobs { metrics_delay_ms = 3000 }
    connector.login(sim, call)
    local res = call("POST", "/azure/clusters/rg-aks/aks-aad/metrics-server", { mode = "do" })
    T.eq(res.status, 202, res.body)
    T.eq(res.json.metricsServer.status, "deploying")
    -- The list follows it to the end, without deploying twice.
    local by = settle(call, { mode = "do", wait = 20 })
    T.eq(by["aks-aad"].metricsServer.status, "installed")
    T.eq(by["aks-prod"].access, "admin")
    T.eq(connector.requests(sim, DEPLOY_POST), 1)
    for _, name in ipairs { "aks-prod", "aks-aad", "aks-prod" } do
        local r = call("GET", "/azure/clusters/rg-aks/" .. name)
        T.eq(r.status, 200, r.body)
        T.eq(#r.json.nodes, 3)
    end
end)

T.test("only the operator's per-cluster setting turns TLS verification off, with a warning each time", function()
    local app = T.tmpdir()
    T.write_file(app .. "/app.lua", 'package.loaded["maps.clusters"] = ' ..
        '{ ["RG-AKS/aks-wrong-ca"] = { insecure_skip_tls_verify = true } }\n' ..
        'return dofile("lua/app.lua")\n')
    local sim, call, stop, server = connector.start({ AURORA_LIB_DIR = "lua" }, ACCESS, { app = app })
    T.defer(stop)
    connector.login(sim, call)
    local by = settle(call, {})
    -- The wrong-CA cluster is reached because the operator said so; the others still verify.
    T.eq(by["aks-wrong-ca"].access, "admin")
    T.eq(by["aks-prod"].access, "admin")
    T.eq(by["aks-unreachable"].access, "unreachable")
    -- The detail call reads node metrics through the same client: two more requests.
    local res = call("GET", "/azure/clusters/rg-aks/aks-wrong-ca")
    T.eq(res.status, 200, res.body)
    T.eq(#res.json.nodes, 3)
    server:stop()
    local log = server:log()
    local warnings = 0
    for line in log:gmatch("[^\n]+") do
        if line:find("TLS verification is OFF", 1, true) then
            warnings = warnings + 1
            T.contains(line, "aks-wrong-ca")
            T.contains(line, '"level":"warn"')
        end
    end
    T.ok(warnings >= 3, "a warning for every request made without verification: " .. warnings)
    T.not_contains(log, "BEGIN")
end)

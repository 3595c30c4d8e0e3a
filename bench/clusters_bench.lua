-- Benchmark of GET /azure/clusters with 100 AKS clusters and 20 ms of latency on every
-- simulated upstream call (Entra ID, ARM, each cluster's API server). Run by bench/run as
-- `aurora test bench/clusters_bench.lua`; prints the figures docs/benchmarks.md reports:
--   cold     the first GET /azure/clusters (token, list, no cluster known yet)
--   warm     the median and worst of 20 later calls (list cached, statuses from the jobs)
--   resolved the time from the cold call until every cluster's access status is known, in
--            milliseconds and in round-trip times (20 ms each)
-- The clusters are processed by background jobs, AURORA_AKS_CONCURRENCY at once (default 100).
package.path = "tests/?.lua;tests/sim/?.lua;" .. package.path
local T = require "aurora.test"
local connector = require "lib.connector"
local http = require "aurora.http"
local json = require "aurora.json"
local time = require "aurora.time"

local CLUSTERS = tonumber(os.getenv("BENCH_CLUSTERS") or "") or 100
local LATENCY_MS = tonumber(os.getenv("BENCH_LATENCY_MS") or "") or 20

local function ms(s) return string.format("%.1f ms", s * 1000) end

-- CPU seconds (user + system) a process has used so far, from /proc.
local function cpu(pid)
    local f = io.open("/proc/" .. pid .. "/stat")
    if not f then return 0 end
    local stat = f:read("a")
    f:close()
    local rest = stat:match("%) (.*)$")
    local fields = {}
    for v in rest:gmatch("%S+") do fields[#fields + 1] = v end
    return (tonumber(fields[12]) + tonumber(fields[13])) / 100
end

T.test("GET /azure/clusters with " .. CLUSTERS .. " clusters, " .. LATENCY_MS ..
        " ms upstream latency", function()
    local dir = T.tmpdir()
    local file = dir .. "/scenario.lua"
    -- The default scenario has 2 clusters; the generated ones share its resource groups.
    T.write_file(file, string.format([[
local scenario = require "scenario"
local s = dofile("tests/sim/scenarios/default.lua")
scenario.generate(s, { clusters = %d })
return s
]], CLUSTERS - 2))
    local sim, call, stop, server = connector.start({ AURORA_LOG_LEVEL = "warn",
        AURORA_AKS_CONCURRENCY = os.getenv("AURORA_AKS_CONCURRENCY") }, file)
    T.defer(stop)
    connector.login(sim, call)
    sim:knobs { latency_ms = { ["*"] = LATENCY_MS } }

    -- The simulator builds each API server's objects and issues each cluster's admin
    -- certificate on first use (AKS has them already): do that now, so its one-time set-up is
    -- not counted as ours.
    local arm_url = sim.env.SIM_ARM_URL
    local tok = assert(sim:token())
    local list = assert(sim:request("arm", "GET", "/subscriptions/" .. sim.env.SIM_SUBSCRIPTION ..
        "/providers/Microsoft.ContainerService/managedClusters?api-version=2024-05-01",
        { bearer = tok }))
    local warm_up = {}
    for _, c in ipairs(json.decode(list.body).value) do
        local action = c.properties.disableLocalAccounts and "listClusterUserCredential" or
            "listClusterAdminCredential"
        warm_up[#warm_up + 1] = { method = "POST", url = arm_url .. c.id .. "/" .. action ..
            "?api-version=2024-05-01", bearer = tok, ca_file = sim.env.SIM_CA_FILE, json = {} }
    end
    for _, c in pairs(sim.config.clusters) do
        warm_up[#warm_up + 1] = { url = c.url .. "/version", ca_file = c.ca_file }
    end
    http.request_many(warm_up)
    local cpu0, sim_cpu0 = cpu(server.pid), cpu(sim.pid)
    local t0 = time.monotonic()
    local res = call("GET", "/azure/clusters", { timeout = 60 })
    local cold = time.monotonic() - t0
    T.eq(res.status, 200, res.body)
    T.eq(#res.json, CLUSTERS)
    local pending = 0
    for _, c in ipairs(res.json) do if c.access == "pending" then pending = pending + 1 end end

    local resolved, counts, reasons
    while true do
        local r = call("GET", "/azure/clusters")
        T.eq(r.status, 200, r.body)
        counts = {}
        local left = 0
        reasons = {}
        for _, c in ipairs(r.json) do
            counts[c.access] = (counts[c.access] or 0) + 1
            if c.accessReason then reasons[c.accessReason] = (reasons[c.accessReason] or 0) + 1 end
            if c.access == "pending" then left = left + 1 end
        end
        if left == 0 then
            resolved = time.monotonic() - t0
            cpu0, sim_cpu0 = cpu(server.pid) - cpu0, cpu(sim.pid) - sim_cpu0
            break
        end
        if time.monotonic() - t0 > 60 then T.fail("clusters still pending after 60 s: " .. left) end
        time.sleep(tonumber(os.getenv("BENCH_POLL") or "") or 0.02)
    end

    local warm = {}
    for i = 1, 20 do
        local t = time.monotonic()
        local r = call("GET", "/azure/clusters")
        warm[i] = time.monotonic() - t
        T.eq(r.status, 200)
    end
    table.sort(warm)
    local rtt = LATENCY_MS / 1000
    local parts = {}
    for k, v in pairs(counts) do parts[#parts + 1] = k .. "=" .. v end
    table.sort(parts)
    print(string.format("clusters: %d, upstream latency %d ms, concurrency %s",
        CLUSTERS, LATENCY_MS, os.getenv("AURORA_AKS_CONCURRENCY") or "100"))
    print(string.format("  cold GET /azure/clusters: %s (%d of %d clusters pending in it)",
        ms(cold), pending, CLUSTERS))
    print(string.format("  warm GET /azure/clusters: median %s, max %s (20 calls)",
        ms(warm[10]), ms(warm[20])))
    print(string.format("  every access status known after %s = %.1f round trips; %s",
        ms(resolved), resolved / rtt, table.concat(parts, ", ")))
    print(string.format("  CPU used meanwhile: aurora %.2f s, simulator %.2f s", cpu0, sim_cpu0))
    for why, n in pairs(reasons) do print(string.format("  %d x %s", n, why)) end
    T.ok(pending > 0 or cold < 10 * rtt, "the cold list did not wait for per-cluster work")
end)

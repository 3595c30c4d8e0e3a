-- Benchmark of GET /azure/resources: `./aurora run bench/resources.lua [RUNS]`.
--
-- Starts the simulator with scenarios/large.lua (200 AKS clusters and 10,000 generated
-- resources in 6 subscriptions) plus a Reader role for the default service principal on the
-- one subscription it had none on, so every generated resource is visible; starts the app
-- (`aurora serve --app lua`, 2 workers) pointed at it; logs in and enables every subscription.
-- Then measures, each RUNS times (default 3) on a fresh cache:
--   cold (Resource Graph): GET /azure/resources?refresh=1&limit=1: time and the ARM requests
--     the simulator counted (/_sim/stats), per route;
--   cold (fallback): the same with Resource Graph answering 403 AuthorizationFailed;
--   warm: GET /azure/resources (first page of 500), ?limit=5000, and a filtered query,
--     20 requests each: median and worst.
-- Prints the figures, the CPU time the app and the simulator spent per cold inventory
-- (/proc/PID/stat) and the app's peak RSS (VmHWM). Everything runs on 127.0.0.1; the processes it
-- started are stopped at the end (by pid).
local http = require "aurora.http"
local json = require "aurora.json"
local proc = require "aurora.proc"
local time = require "aurora.time"

local RUNS = tonumber((...)) or 3
local WARM = 20
local GRAPH = "arm:POST /providers/Microsoft.ResourceGraph/resources"

local function read(path)
    local f = io.open(path, "rb")
    if not f then return nil end
    local s = f:read("a")
    f:close()
    return s
end

local function write(path, s)
    local f = assert(io.open(path, "wb"))
    f:write(s)
    f:close()
end

local started = {}
local function stop_all()
    for i = #started, 1, -1 do
        local pid = started[i]
        proc.kill(pid, "TERM")
        local deadline = time.monotonic() + 10
        while time.monotonic() < deadline do
            local ok, how = pcall(proc.poll, pid)
            if not ok or how then break end
            time.sleep(0.05)
        end
    end
end

local function wait_exit(pid, secs)
    local deadline = time.monotonic() + secs
    while time.monotonic() < deadline do
        local how, code = proc.poll(pid)
        if how then return how, code end
        time.sleep(0.05)
    end
    return nil
end

local dir = assert(proc.mkdtemp("aurora-bench-resources"))

-- ---- the simulator ---------------------------------------------------------------------------
local scenario = dir .. "/scenario.lua"
write(scenario, [[
local s = dofile("tests/sim/scenarios/large.lua")
-- The default service principal sees every subscription (large.lua leaves one without a role).
for _, sub in ipairs(s.subscriptions) do
    local has = false
    for _, a in ipairs(s.role_assignments) do
        if a.principal == s.applications[1].spObjectId and
            a.scope == "/subscriptions/" .. sub.id then
            has = true
        end
    end
    if not has then
        s.role_assignments[#s.role_assignments + 1] = { principal = s.applications[1].spObjectId,
            role = "Reader", scope = "/subscriptions/" .. sub.id }
    end
end
return s
]])
local t0 = time.monotonic()
local launcher = assert(proc.spawn { argv = { proc.self_exe(), "run", "tests/sim/launch.lua",
    dir .. "/sim", scenario }, env = { AURORA_ENV_FILE = "/nonexistent", SIM_LOG_LEVEL = "warn" },
    stdout = dir .. "/launch.log", stderr = dir .. "/launch.log" })
local how, code = wait_exit(launcher, 120)
if how ~= "exited" or code ~= 0 then
    io.stderr:write("simulator did not start:\n" .. (read(dir .. "/launch.log") or "") .. "\n")
    os.exit(1)
end
local simenv = {}
for k, v in (read(dir .. "/sim/sim.env") or ""):gmatch("([%w_]+)='([^']*)'") do simenv[k] = v end
started[#started + 1] = tonumber(simenv.SIM_PID)
print(string.format("simulator: large scenario plus full visibility, started in %.1f s",
    time.monotonic() - t0))

local function sim(method, path, body)
    local res = assert(http.request { method = method, url = simenv.SIM_ARM_URL .. path,
        ca_file = simenv.SIM_CA_FILE, json = body })
    return json.decode(res.body)
end

local function arm_counts()
    local out, total = {}, 0
    for k, v in pairs(sim("GET", "/_sim/stats").counts) do
        if k:sub(1, 4) == "arm:" then
            out[k] = v
            total = total + v
        end
    end
    return out, total
end

-- ---- the app ---------------------------------------------------------------------------------
local port = assert(proc.free_port())
os.execute("mkdir -p '" .. dir .. "/data'")
local app = assert(proc.spawn { argv = { proc.self_exe(), "serve", "--app", "lua", "--listen",
    "127.0.0.1:" .. port, "--workers", "2" }, env = {
    AURORA_ENV_FILE = "/nonexistent", AURORA_DATA_DIR = dir .. "/data", AURORA_LOG_LEVEL = "warn",
    AZURE_AUTHORITY_HOST = simenv.SIM_LOGIN_URL,
    AZURE_RESOURCE_MANAGER_ENDPOINT = simenv.SIM_ARM_URL,
    AZURE_GRAPH_ENDPOINT = simenv.SIM_GRAPH_URL, AURORA_CA_BUNDLE = simenv.SIM_CA_FILE },
    stderr = dir .. "/app.log", stdout = dir .. "/app.log" })
started[#started + 1] = app
local base = "http://127.0.0.1:" .. port
local deadline = time.monotonic() + 15
while true do
    local res = http.request { url = base .. "/healthz", timeout = 1 }
    if res and res.status == 200 then break end
    if time.monotonic() > deadline then
        io.stderr:write("app did not start:\n" .. (read(dir .. "/app.log") or "") .. "\n")
        stop_all()
        os.exit(1)
    end
    time.sleep(0.05)
end

local function call(method, path, body)
    local res = assert(http.request { method = method, url = base .. path, json = body,
        timeout = 60, headers = { ["X-User-ID"] = "bench" } })
    return res, json.decode(res.body)
end

local res, body = call("POST", "/azure/login", { tenantId = simenv.SIM_TENANT,
    clientId = simenv.SIM_CLIENT_ID, clientSecret = simenv.SIM_CLIENT_SECRET })
assert(res.status == 200, res.body)
res, body = call("GET", "/api/azure-subscriptions")
local projects = {}
for _, p in ipairs(body.projects) do projects[#projects + 1] = { projectId = p.projectId } end
res = call("POST", "/api/azure-subscriptions", { projects = projects })
assert(res.status == 200, res.body)
print(string.format("app: 2 workers on 127.0.0.1:%d, %d subscriptions enabled", port, #projects))

-- ---- measurements ------------------------------------------------------------------------------
-- CPU seconds (user + system) a process has used so far.
local TICKS = 100
do
    local p = io.popen("getconf CLK_TCK")
    if p then
        TICKS = tonumber(p:read("l")) or 100
        p:close()
    end
end
local function cpu(pid)
    local stat = read("/proc/" .. pid .. "/stat") or ""
    local rest = stat:match("%) (.*)$") or ""
    local f = {}
    for w in rest:gmatch("%S+") do f[#f + 1] = w end
    return ((tonumber(f[12]) or 0) + (tonumber(f[13]) or 0)) / TICKS
end

local function median(xs)
    local s = { table.unpack(xs) }
    table.sort(s)
    return s[(#s + 1) // 2], s[#s]
end

local function cold(label, knobs)
    local times, trips, detail, total, app_cpu, sim_cpu = {}, {}, nil, nil, {}, {}
    for _ = 1, RUNS do
        sim("POST", "/_sim/reset")
        if knobs then sim("POST", "/_sim/knobs", knobs) end
        local _, before = arm_counts()
        local a0, s0 = cpu(app), cpu(started[1])
        local t = time.monotonic()
        local r, b = call("GET", "/azure/resources?refresh=1&limit=1")
        local took = time.monotonic() - t
        app_cpu[#app_cpu + 1], sim_cpu[#sim_cpu + 1] = cpu(app) - a0, cpu(started[1]) - s0
        assert(r.status == 200, r.body)
        local counts, after = arm_counts()
        times[#times + 1] = took
        trips[#trips + 1] = after - before
        detail, total = counts, b.total
        assert(next(b.errors) == nil, "category errors: " .. json.encode(b.errors))
    end
    local med, worst = median(times)
    print(string.format("%-34s %8.0f ms median (worst %6.0f ms), %5d items, %5d ARM requests",
        label, med * 1000, worst * 1000, total, trips[1]))
    print(string.format("    app CPU %.2f s, simulator CPU %.2f s (medians)", median(app_cpu),
        median(sim_cpu)))
    local names = {}
    for k in pairs(detail) do names[#names + 1] = k end
    table.sort(names)
    for _, k in ipairs(names) do print(string.format("      %5d  %s", detail[k], k)) end
    return med, total, trips[1]
end

local function warm(label, path)
    local times, bytes = {}, 0
    call("GET", path)
    local _, before = arm_counts()
    for _ = 1, WARM do
        local t = time.monotonic()
        local r = call("GET", path)
        times[#times + 1] = time.monotonic() - t
        assert(r.status == 200 and r.headers["x-cache"] == "hit", r.body)
        bytes = #r.body
    end
    local _, after = arm_counts()
    local med, worst = median(times)
    print(string.format("%-34s %8.1f ms median (worst %6.1f ms), %8d bytes, %d ARM requests",
        label, med * 1000, worst * 1000, bytes, after - before))
end

print(string.format("%d cold runs each, %d warm requests each", RUNS, WARM))
cold("cold, Resource Graph")
warm("warm, first page (limit 500)", "/azure/resources")
warm("warm, limit=5000", "/azure/resources?limit=5000")
warm("warm, category+location filter", "/azure/resources?category=vm&location=westeurope")
cold("cold, fallback (Graph 403)", { faults = { { route = GRAPH, status = 403,
    code = "AuthorizationFailed", count = 1000 } } })
local status = read("/proc/" .. app .. "/status") or ""
print("app peak RSS: " .. (status:match("VmHWM:%s*(%d+ kB)") or "?"))
stop_all()
os.execute("rm -rf '" .. dir .. "'")

-- Test helper: the simulator and the Aurora app (lua/app.lua) pointed at it, over TLS.
--
--   local connector = require "lib.connector"
--   local sim, call, stop = connector.start()            -- or start(extra_env, scenario_file)
--   local res = call("GET", "/azure/clusters", {user = "u1", headers = {...}})  -- res.json decoded
--   connector.login(sim, call)                            -- the default scenario's Contributor
local T = require "aurora.test"
local harness = require "sim.harness"
local json = require "aurora.json"

local M = {}

--- Starts the simulator and the app; returns sim, call(method, path, opts), stop().
-- opts of call: json, body, headers, user (X-User-ID, default "u1"; false: none), mode
-- (X-Aurora-Mode).
function M.start(extra_env, scenario)
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
        if opts.mode then headers["X-Aurora-Mode"] = opts.mode end
        local res = assert(s:request(method, p, { json = opts.json, body = opts.body,
            headers = headers, timeout = opts.timeout }))
        local ok, body = pcall(json.decode, res.body)
        res.json = ok and body or nil
        return res
    end
    local function stop() s:stop(); sim:stop() end
    return sim, call, stop, s
end

--- Logs user (default "u1") in with the scenario's Contributor principal; asserts success.
function M.login(sim, call, user, extra)
    local b = { tenantId = sim.env.SIM_TENANT, clientId = sim.env.SIM_CLIENT_ID,
        clientSecret = sim.env.SIM_CLIENT_SECRET }
    for k, v in pairs(extra or {}) do b[k] = v end
    local res = call("POST", "/azure/login", { json = b, user = user })
    T.eq(res.status, 200, res.body)
    return res
end

--- Sum of the simulator's request counters whose key starts with prefix and contains needle.
function M.count(sim, prefix, needle)
    local n = 0
    for k, v in pairs(sim:stats().counts) do
        if k:sub(1, #prefix) == prefix and (not needle or k:find(needle, 1, true)) then n = n + v end
    end
    return n
end

--- How often the simulator saw "LISTENER METHOD /literal/path"
--- ("kube:aks-aad POST /apis/apps/v1/namespaces/kube-system/deployments").
function M.requests(sim, key)
    return sim:stats().requests[key] or 0
end

return M

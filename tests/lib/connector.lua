-- Test helper: the simulator and the Aurora app (lua/app.lua) pointed at it, over TLS.
--
--   local connector = require "lib.connector"
--   local sim, call, stop, server = connector.start()    -- or start(extra_env, scenario, opts)
--   local call, server = connector.serve(sim, extra_env, opts)  -- on a running simulator
--   local res = call("GET", "/azure/clusters", {user = "u1", headers = {...}})  -- res.json decoded
--   connector.login(sim, call)                            -- the default scenario's Contributor
--   connector.credentials(sim, {subscriptionId = ...})    -- that login's body, fields changed
--   connector.count(sim, "arm:", "managedClusters")       -- requests on routes matching
--   connector.route_count(sim, "arm:GET /subscriptions")  -- requests on exactly one route
--   connector.requests(sim, "arm GET /subscriptions/...") -- requests on one literal path
local T = require "aurora.test"
local harness = require "sim.harness"
local json = require "aurora.json"

local M = {}


--- Serves the app against a running simulator; returns call(method, path, opts), server.
-- extra_env: variables added to the simulator's endpoints; a value of false leaves one out.
-- opts: app (an app directory, default "lua"), token (sent as "Authorization: Bearer <token>"
-- on every call whose opts.token is not false), request_ids (a prefix: each call sends
-- X-Request-ID prefix .. n, n counting calls, unless its headers carry one).
-- opts of call: json, body, headers (copied, not changed; an X-User-ID there wins over user),
-- user (X-User-ID, default "u1"; false: none), mode (X-Aurora-Mode), timeout, token (false: no
-- Authorization header). The response gets
-- res.json (the body decoded when it is a JSON object or array, else nil) and res.sent_id (the
-- X-Request-ID sent, if any).
function M.serve(sim, extra_env, opts)
    opts = opts or {}
    local env = { AZURE_AUTHORITY_HOST = sim.env.SIM_LOGIN_URL,
        AZURE_RESOURCE_MANAGER_ENDPOINT = sim.env.SIM_ARM_URL,
        AZURE_GRAPH_ENDPOINT = sim.env.SIM_GRAPH_URL, AURORA_CA_BUNDLE = sim.env.SIM_CA_FILE }
    for k, v in pairs(extra_env or {}) do env[k] = v or nil end
    local s = T.server { app = opts.app or "lua", env = env }
    local n = 0
    local function call(method, p, o)
        o = o or {}
        n = n + 1
        local headers = {}
        if o.user ~= false then headers["X-User-ID"] = o.user or "u1" end
        if opts.request_ids then headers["X-Request-ID"] = opts.request_ids .. n end
        for k, v in pairs(o.headers or {}) do headers[k] = v end
        if o.mode then headers["X-Aurora-Mode"] = o.mode end
        if opts.token and o.token ~= false then headers.Authorization = "Bearer " .. opts.token end
        local res = assert(s:request(method, p, { json = o.json, body = o.body,
            headers = headers, timeout = o.timeout }))
        local ok, body = pcall(json.decode, res.body)
        res.json = ok and type(body) == "table" and body or nil
        res.sent_id = headers["X-Request-ID"]
        return res
    end
    return call, s
end


--- Starts the simulator (scenario: a scenario file, default the default scenario) and the app;
-- returns sim, call(method, path, opts), stop(), server. extra_env, opts and call: as serve's.
function M.start(extra_env, scenario, opts)
    local sim = harness.start { scenario = scenario }
    local call, s = M.serve(sim, extra_env, opts)
    local function stop() s:stop(); sim:stop() end
    return sim, call, stop, s
end


--- The body of POST /azure/login for the scenario's Contributor principal, with the fields of
-- extra added or replaced.
function M.credentials(sim, extra)
    local b = { tenantId = sim.env.SIM_TENANT, clientId = sim.env.SIM_CLIENT_ID,
        clientSecret = sim.env.SIM_CLIENT_SECRET }
    for k, v in pairs(extra or {}) do b[k] = v end
    return b
end


--- Logs user (default "u1") in with the scenario's Contributor principal (fields of extra added
--- or replaced); asserts success and returns the response.
function M.login(sim, call, user, extra)
    local res = call("POST", "/azure/login", { json = M.credentials(sim, extra), user = user })
    T.eq(res.status, 200, res.body)
    return res
end


--- Sum of the simulator's request counters whose key starts with prefix and contains needle.
function M.count(sim, prefix, needle)
    local n = 0
    for k, v in pairs(sim:stats().counts) do
        if k:sub(1, #prefix) == prefix and (not needle or k:find(needle, 1, true)) then
            n = n + v
        end
    end
    return n
end


--- Requests the simulator counted on exactly one route ("arm:GET /subscriptions").
function M.route_count(sim, route)
    return sim:stats().counts[route] or 0
end


--- How often the simulator saw "LISTENER METHOD /literal/path"
--- ("kube:aks-aad POST /apis/apps/v1/namespaces/kube-system/deployments").
function M.requests(sim, key)
    return sim:stats().requests[key] or 0
end

return M

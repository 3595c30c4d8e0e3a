-- The simulator's core: configuration written by the launcher, the scenario, ids, JSON
-- answers, request counters and the fault/latency knobs every route goes through.
--
-- The simulator runs with one worker, so the module-level tables below are the one shared state
-- of every service it serves (Entra ID, ARM, Graph, Vault, the Kubernetes API servers).
local crypto = require "aurora.crypto"
local env = require "aurora.env"
local json = require "aurora.json"
local time = require "aurora.time"

local M = {}

M.state_dir = env.get("SIM_STATE_DIR")


local function read_file(path)
    local f = io.open(path, "rb")
    if not f then
        return nil
    end
    local s = f:read("a")
    f:close()
    return s
end

M.read_file = read_file


--- Loads config.json (written by launch.lua) and the scenario it names. Called at app load.
function M.load()
    assert(M.state_dir, "SIM_STATE_DIR is not set: start the simulator with tests/sim/launch.lua")
    M.config = assert(json.decode(assert(read_file(M.state_dir .. "/config.json"),
        "no config.json in SIM_STATE_DIR")))
    local scenario = require("scenario")
    M.scenario = scenario.load(M.config.scenario, M.config)
    M.reset()
end


--- A random GUID (version 4), lower case.
function M.uuid()
    local b = { crypto.random(16):byte(1, 16) }
    b[7] = (b[7] & 0x0f) | 0x40
    b[9] = (b[9] & 0x3f) | 0x80
    local h = {}
    for i = 1, 16 do h[i] = string.format("%02x", b[i]) end
    local s = table.concat(h)
    return string.format("%s-%s-%s-%s-%s", s:sub(1, 8), s:sub(9, 12), s:sub(13, 16),
        s:sub(17, 20), s:sub(21, 32))
end


--- "2026-11-28 13:24:02Z" (Entra's timestamp style) or ISO 8601 with iso = true.
function M.timestamp(t, iso)
    t = t or os.time()
    return os.date(iso and "!%Y-%m-%dT%H:%M:%SZ" or "!%Y-%m-%d %H:%M:%SZ", t)
end


--- A JSON answer with the headers every Azure service sends.
function M.json(status, body, headers)
    headers = headers or {}
    headers["Content-Type"] = headers["Content-Type"] or "application/json; charset=utf-8"
    return status, body, headers
end


-- ---- counters and knobs ---------------------------------------------------------------------

--- Clears counters and knobs (POST /_sim/reset), and the mutable state services registered.
function M.reset()
    M.stats = {}
    M.requests = {}
    M.knobs = { latency_ms = {}, faults = {} }
    for _, fn in ipairs(M.resetters or {}) do fn() end
end

M.resetters = {}


--- Registers fn to run on every reset (services use it to restore their scenario state).
function M.on_reset(fn)
    M.resetters[#M.resetters + 1] = fn
end


local function fault_for(name, listener)
    for i, f in ipairs(M.knobs.faults) do
        if (f.route == name or f.route == "*" or f.route == listener or
            name:find(f.route, 1, true) == 1) and (f.count or 1) > 0 then
            f.count = (f.count or 1) - 1
            if f.count <= 0 then
                table.remove(M.knobs.faults, i)
            end
            return f
        end
    end
    return nil
end


-- The request ids a service puts on every answer, which an injected fault answer carries too:
-- ARM's x-ms-request-id, x-ms-correlation-request-id (the client's when it sent one) and
-- x-ms-routing-request-id (as arm.lua's routes); Entra ID's x-ms-request-id and the client's
-- client-request-id echoed (as entra.lua's token answers).
local function fault_ids(service, req, headers)
    if service == "arm" then
        local id = M.uuid()
        headers["x-ms-request-id"] = id
        headers["x-ms-correlation-request-id"] = req.headers["x-ms-correlation-request-id"] or
            M.uuid()
        headers["x-ms-routing-request-id"] = "EASTUS:" .. os.date("!%Y%m%dT%H%M%SZ") .. ":" .. id
    elseif service == "login" then
        headers["x-ms-request-id"] = M.uuid()
        headers["client-request-id"] = req.headers["client-request-id"]
    end
end


--- Wraps a handler: counts it under name ("arm:GET /subscriptions") and under its listener,
-- method and literal path ("kube:aks-aad POST /apis/apps/v1/namespaces/kube-system/deployments"),
-- applies latency and injected faults, then runs it. Latency and faults are looked up by route
-- name, then listener ("kube:aks-aad"), then service ("kube"), then "*". A fault answer has
-- the service's request-id headers (fault_ids), then the fault's own `headers`.
function M.wrap(name, handler)
    local service = name:match("^([^:]+):")
    return function(req)
        M.stats[name] = (M.stats[name] or 0) + 1
        local listener = req.listener or service
        local seen = listener .. " " .. req.method .. " " .. req.path
        M.requests[seen] = (M.requests[seen] or 0) + 1
        local lat = M.knobs.latency_ms
        local delay = lat[name] or lat[listener] or lat[service] or lat["*"]
        if delay and delay > 0 then
            time.sleep(delay / 1000)
        end
        local f = fault_for(name, listener)
        if f then
            if f.drop then
                -- A dropped connection: no answer at all, after `drop` seconds when a number.
                if type(f.drop) == "number" then
                    time.sleep(f.drop)
                end
                error({ drop = true })
            end
            local headers = { ["Content-Type"] = "application/json" }
            fault_ids(service, req, headers)
            if f.retry_after then
                headers["Retry-After"] = tostring(f.retry_after)
                headers["x-ms-ratelimit-remaining-subscription-reads"] = "0"
            end
            for k, v in pairs(f.headers or {}) do headers[k] = tostring(v) end
            return f.status or 500, f.body or { error = { code = f.code or "InternalServerError",
                message = f.message or "Injected fault." } }, headers
        end
        return handler(req)
    end
end


--- Adds "METHOD /path" to routes, wrapped and counted as "service:METHOD /path".
function M.add(routes, service, key, handler)
    routes[key] = M.wrap(service .. ":" .. key, handler)
end


--- The control routes every listener serves under /_sim/.
function M.control_routes(routes)
    routes["GET /_sim/stats"] = function()
        local total = 0
        for _, n in pairs(M.stats) do total = total + n end
        return 200, { counts = M.stats, total = total, requests = M.requests }
    end
    routes["POST /_sim/reset"] = function()
        M.reset()
        return 200, { reset = true }
    end
    routes["POST /_sim/knobs"] = function(req)
        local k = req:json()
        if type(k.latency_ms) == "table" then
            for name, ms in pairs(k.latency_ms) do M.knobs.latency_ms[name] = ms end
        end
        for _, f in ipairs(k.faults or {}) do
            M.knobs.faults[#M.knobs.faults + 1] = f
        end
        for name, v in pairs(k) do
            if name ~= "latency_ms" and name ~= "faults" then
                M.knobs[name] = v
            end
        end
        return 200, { knobs = M.knobs }
    end
    routes["GET /_sim/config"] = function()
        return 200, { urls = M.config.urls, tenant = M.scenario.default.tenant,
            subscription = M.scenario.default.subscription }
    end
    return routes
end

return M

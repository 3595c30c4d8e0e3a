-- Test helper: starts the simulator for a test and stops it when the test ends.
--
--   local harness = require "sim.harness"
--   local sim = harness.start()          -- or harness.start{scenario = "path/to/scenario.lua"}
--   sim.env.SIM_ARM_URL, sim:request("arm", "GET", "/subscriptions?api-version=2022-12-01", opts)
local T = require "aurora.test"
local http = require "aurora.http"
local json = require "aurora.json"
local proc = require "aurora.proc"

local M = {}

local Sim = {}
Sim.__index = Sim


local function parse_env(text)
    local env = {}
    for k, v in text:gmatch("([%w_]+)='([^']*)'") do env[k] = v end
    return env
end


--- http.request against one of the simulator's services ("login", "arm", "graph", "vault") or
-- a cluster ("kube:NAME"), trusting the right CA.
function Sim:request(service, method, path, opts)
    local o = {}
    for k, v in pairs(opts or {}) do o[k] = v end
    local base, ca = self:url(service)
    o.method, o.url, o.ca_file = method, base .. path, o.ca_file or ca
    return http.request(o)
end


--- The base URL and CA file of a service.
function Sim:url(service)
    local cluster = service:match("^kube:(.+)$")
    if cluster then
        local c = self.config.clusters[cluster]
        return c.url, c.ca_file
    end
    return self.config.urls[service], self.env.SIM_CA_FILE
end


--- Request counters (GET /_sim/stats).
function Sim:stats()
    local res = assert(self:request("arm", "GET", "/_sim/stats"))
    return json.decode(res.body)
end


--- Sets knobs (POST /_sim/knobs).
function Sim:knobs(k)
    local res = assert(self:request("arm", "POST", "/_sim/knobs", { json = k }))
    assert(res.status == 200, res.body)
end


--- A token from the simulated Entra ID (client credentials with a secret).
function Sim:token(scope, client_id, client_secret, tenant)
    local res = assert(self:request("login", "POST", "/" .. (tenant or self.env.SIM_TENANT) ..
        "/oauth2/v2.0/token", { form = { grant_type = "client_credentials",
        client_id = client_id or self.env.SIM_CLIENT_ID,
        client_secret = client_secret or self.env.SIM_CLIENT_SECRET,
        scope = scope or "https://management.azure.com/.default" } }))
    local body = json.decode(res.body)
    return body.access_token, res.status, body
end


function Sim:log()
    return T.read_file(self.dir .. "/sim.log") or ""
end


function Sim:stop()
    if self.stopped then return end
    self.stopped = true
    proc.kill(self.pid, "TERM")
    local time = require "aurora.time"
    local deadline = time.monotonic() + 10
    while proc.alive(self.pid) and time.monotonic() < deadline do
        time.sleep(0.02)
    end
    if proc.alive(self.pid) then
        proc.kill(self.pid, "KILL")
    end
end


--- Starts a simulator in a fresh state directory; it is stopped when the test ends.
function M.start(opts)
    opts = opts or {}
    local dir = T.tmpdir()
    local argv = { proc.self_exe(), "run", "tests/sim/launch.lua", dir }
    if opts.scenario then argv[#argv + 1] = opts.scenario end
    local p = T.spawn(argv, { AURORA_ENV_FILE = "/nonexistent" })
    local how, code = T.wait_process(p.pid, 60)
    if how ~= "exited" or code ~= 0 then
        error("simulator did not start: " .. tostring(T.read_file(p.log_file)) ..
            "\n" .. tostring(T.read_file(dir .. "/sim.log")), 2)
    end
    p.stopped = true
    local s = setmetatable({ dir = dir, env = parse_env(T.read_file(dir .. "/sim.env")) }, Sim)
    s.pid = tonumber(s.env.SIM_PID)
    s.config = json.decode(T.read_file(dir .. "/config.json"))
    T.defer(function() s:stop() end)
    return s
end

return M

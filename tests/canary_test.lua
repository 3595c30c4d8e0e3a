-- Secret hygiene: a canary client secret goes through login, token, storage and failure paths;
-- it must never appear in a log, an HTTP response, or in plaintext in any file under the data
-- directory.
local T = require "aurora.test"
local harness = require "sim.harness"
local json = require "aurora.json"

local CANARY = "canary-secret-7f3a9c1e-do-not-leak"


local function grep_dir(dir, text)
    local p = T.spawn { "grep", "-rlF", "--", text, dir }
    local _, code = T.wait_process(p.pid, 20)
    return code == 0, T.read_file(p.log_file)
end


T.test("the canary secret reaches no log, no response and no plaintext file", function()
    local dir = T.tmpdir()
    local scenario = dir .. "/scenario.lua"
    T.write_file(scenario, string.format([[
local s = dofile(%q)
s.applications[1].secrets[1].value = %q
s.default.client_secret = %q
return s
]], "tests/sim/scenarios/default.lua", CANARY, CANARY))
    local sim = harness.start { scenario = scenario }
    local s = T.server { app = "tests/fixtures/canary", workers = 2, env = {
        AZURE_AUTHORITY_HOST = sim.env.SIM_LOGIN_URL, AURORA_CA_BUNDLE = sim.env.SIM_CA_FILE,
        AURORA_LOG_LEVEL = "debug" } }
    local responses = {}
    local function call(method, path, body)
        local res = assert(s:request(method, path, { json = body }))
        responses[#responses + 1] = res.body .. json.encode(res.headers)
        return res
    end
    local good = { tenantId = sim.env.SIM_TENANT, clientId = sim.env.SIM_CLIENT_ID,
        clientSecret = CANARY, subscriptionId = sim.env.SIM_SUBSCRIPTION }
    T.eq(call("POST", "/login/u1", good).status, 200)
    T.eq(call("POST", "/login/u1", good).status, 200, "again, from the cache")
    local bad = { tenantId = sim.env.SIM_TENANT, clientId = sim.env.SIM_CLIENT_ID,
        clientSecret = CANARY .. "-wrong", subscriptionId = sim.env.SIM_SUBSCRIPTION }
    local res = call("POST", "/login/u2", bad)
    T.eq(res.status, 401)
    T.eq(json.decode(res.body).code, "AADSTS7000215")
    T.eq(json.decode(call("GET", "/whoami/u1").body).hasSecret, true)
    s:stop()
    sim:stop()
    for _, r in ipairs(responses) do
        T.not_contains(r, CANARY, "a response")
    end
    T.not_contains(s:log(), CANARY, "the server log")
    T.not_contains(sim:log(), CANARY, "the simulator log")
    T.ok(s:log():find('"msg":"request"', 1, true), "the server did log")
    local found, which = grep_dir(s.dir, CANARY)
    T.eq(found, false, "plaintext canary in a file under the data directory: " .. which)
    T.ok(T.read_file(s.dir .. "/secrets.key"), "the store was used (its key file exists)")
end)

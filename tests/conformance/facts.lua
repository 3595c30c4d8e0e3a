-- Prints, as shell assignments, what the conformance harness needs beyond sim.env:
-- `aurora run tests/conformance/facts.lua STATE_DIR`. Reads STATE_DIR/config.json (written by
-- tests/sim/launch.lua) and the scenario it names.
--   CONF_AAD_CLUSTER, CONF_AAD_URL, CONF_AAD_CA   the first cluster without local accounts
--   CONF_VAULT_ROLE_ID, CONF_VAULT_SECRET_ID      the scenario's AppRole credentials
local json = require "aurora.json"

local dir = ...
assert(dir, "usage: aurora run tests/conformance/facts.lua STATE_DIR")


local function read(path)
    local f = assert(io.open(path, "rb"))
    local s = f:read("a")
    f:close()
    return s
end


local function quote(v)
    return "'" .. (tostring(v):gsub("'", "'\\''")) .. "'"
end


local config = assert(json.decode(read(dir .. "/config.json")))
local scenario = assert(loadfile(config.scenario, "t"))()

local out = {}
for _, c in ipairs(scenario.clusters or {}) do
    if c.local_accounts == false and config.clusters[c.name] then
        out.CONF_AAD_CLUSTER = c.name
        out.CONF_AAD_URL = config.clusters[c.name].url
        out.CONF_AAD_CA = config.clusters[c.name].ca_file
        break
    end
end
local approle = scenario.vault and scenario.vault.approle or {}
out.CONF_VAULT_ROLE_ID = approle.role_id
out.CONF_VAULT_SECRET_ID = approle.secret_id

local names = {}
for k in pairs(out) do names[#names + 1] = k end
table.sort(names)
for _, k in ipairs(names) do
    print(k .. "=" .. quote(out[k]))
end

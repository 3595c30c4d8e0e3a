-- aurora.secrets, the one secret-store interface: the same contract against both back ends (the
-- embedded store, and Vault through aurora.vault against the simulator), the choice of back end
-- from the environment (in a child `aurora run`, since a test cannot set variables), configure,
-- misuse, and that no value reaches a file in the clear.
local T = require "aurora.test"
local harness = require "sim.harness"
local proc = require "aurora.proc"
local secret = require "aurora.secret"
local secrets = require "aurora.secrets"
local time = require "aurora.time"
local vault = require "aurora.vault"

local KEY = string.rep("k", 32)
local CANARY = "canary-9c1f7a33-d2e0"


local function use_store()
    local dir = T.tmpdir() .. "/secrets"
    T.eq(secrets.configure{backend = "store", dir = dir, key = KEY}, true)
    return {dir = dir}
end


local function vault_client(sim, token)
    return assert(vault.new{addr = sim.env.SIM_VAULT_ADDR,
        token = secret.new(token or sim.env.SIM_VAULT_TOKEN), ca_file = sim.env.SIM_CA_FILE})
end


-- A Vault back end on sim with a prefix of its own, so cases sharing one simulator do not see
-- each other's secrets.
local function use_vault(sim, prefix)
    local client = assert(vault.new{addr = sim.env.SIM_VAULT_ADDR,
        token = secret.new(sim.env.SIM_VAULT_TOKEN), ca_file = sim.env.SIM_CA_FILE,
        prefix = prefix})
    T.eq(secrets.configure{backend = "vault", vault = client}, true)
end


-- ---- the contract, for each back end -------------------------------------------------------

-- The cases every back end must pass, in order: {name, fn} pairs. Each starts on an empty
-- back end of the kind named.
local CASES = {}


local function case(name, fn)
    CASES[#CASES + 1] = {name = name, fn = fn}
end


case("put then get returns the table and its version", function()
    T.eq(secrets.put("users/u1/azure", {clientId = "app", clientSecret = CANARY}), 1)
    local v, meta = secrets.get("users/u1/azure")
    T.eq(v, {clientId = "app", clientSecret = CANARY})
    T.eq(meta.version, 1)
    T.eq(math.type(meta.updated), "integer")
    T.ok(math.abs(meta.updated - time.now()) < 120, "updated is about now")
    T.eq(secrets.put("users/u1/azure", {clientId = "app2"}), 2)
    v, meta = secrets.get("users/u1/azure")
    T.eq(v, {clientId = "app2"})
    T.eq(meta.version, 2)
end)


case("a missing secret is plain nil", function()
    local v, msg, code = secrets.get("users/nobody/azure")
    T.eq(v, nil)
    T.eq(msg, nil)
    T.eq(code, nil)
end)


case("check-and-set conflicts are 'conflict'", function()
    T.eq(secrets.put("users/u2/azure", {a = 1}, {cas = 0}), 1)
    local v, msg, code = secrets.put("users/u2/azure", {a = 2}, {cas = 0})
    T.eq(v, nil)
    T.eq(code, "conflict")
    T.eq(type(msg), "string")
    T.eq(select(3, secrets.put("users/u2/azure", {a = 2}, {cas = 7})), "conflict")
    T.eq(secrets.put("users/u2/azure", {a = 2}, {cas = 1}), 2)
    T.eq(select(3, secrets.put("users/u3/azure", {a = 1}, {cas = 1})), "conflict")
    T.eq(secrets.get("users/u2/azure"), {a = 2})
end)


case("delete forgets every version", function()
    secrets.put("users/u4/azure", {a = 1})
    secrets.put("users/u4/azure", {a = 2})
    T.eq(secrets.delete("users/u4/azure"), true)
    T.eq(secrets.get("users/u4/azure"), nil)
    T.eq(secrets.delete("users/u4/azure"), true)
    T.eq(secrets.put("users/u4/azure", {a = 3}, {cas = 0}), 1)
end)


case("list shows secrets and folders", function()
    secrets.put("users/u5/azure", {a = 1})
    secrets.put("users/u5/reader", {a = 1})
    secrets.put("users/u6/azure", {a = 1})
    secrets.put("config", {a = 1})
    T.eq(secrets.list("users/u5"), {"azure", "reader"})
    T.eq(secrets.list("users/u5/"), {"azure", "reader"})
    T.eq(secrets.list("users"), {"u5/", "u6/"})
    local top = secrets.list()
    T.eq(top, {"config", "users/"})
    T.eq(secrets.list(""), top)
    T.eq(secrets.list("users/nobody"), {})
end)


case("bad paths are 'invalid' before the back end is asked", function()
    for _, p in ipairs{"", "/users/u1", "users/../admin", "users//x", "a b", "users/u1/",
            string.rep("a", 129), "1/2/3/4/5/6/7/8/9"} do
        T.eq(select(3, secrets.put(p, {a = 1})), "invalid", p)
        T.eq(select(3, secrets.get(p)), "invalid", p)
        T.eq(select(3, secrets.delete(p)), "invalid", p)
    end
    T.eq(select(3, secrets.list("../x")), "invalid")
    T.eq(select(3, secrets.list("/")), "invalid")
    T.eq(secrets.list(), {})
end)

for _, c in ipairs(CASES) do
    T.test("store: " .. c.name, function()
        use_store()
        T.eq(secrets.backend(), "store")
        c.fn()
    end)
end

-- One simulator for all the cases: stopping one waits for the test's idle connections.
T.test("vault: every case of the contract holds, and a refused token is 'denied'", function()
    local sim = harness.start()
    for i, c in ipairs(CASES) do
        use_vault(sim, "case" .. i)
        T.eq(secrets.backend(), "vault")
        local ok, err = pcall(c.fn)
        if not ok then
            T.fail(c.name .. ": " .. tostring(err))
        end
    end
    T.ok(secrets.configure{backend = "vault", vault = vault_client(sim, "not-the-token")})
    local v, msg, code = secrets.get("users/u1/azure")
    T.eq(v, nil)
    T.eq(code, "denied")
    T.not_contains(msg, "not-the-token")
    T.eq(select(3, secrets.put("users/u1/azure", {a = 1})), "denied")
end)


-- ---- the store back end --------------------------------------------------------------------

T.test("store: the files hold no value in the clear and are 0600", function()
    local ctx = use_store()
    secrets.put("users/u1/azure", {clientSecret = CANARY})
    local p = assert(io.popen("find '" .. ctx.dir .. "' -type f"))
    local n = 0
    for f in p:read("a"):gmatch("[^\n]+") do
        n = n + 1
        T.not_contains(T.read_file(f), CANARY, f)
    end
    p:close()
    T.ok(n >= 2)
    p = assert(io.popen("stat -c %a '" .. ctx.dir .. "/users/u1/azure.rec'"))
    T.eq(p:read("l"), "600")
    p:close()
end)

T.test("store: failures of the store come back as nil, msg, code", function()
    local dir = T.tmpdir() .. "/secrets"
    T.ok(secrets.configure{backend = "store", dir = dir, key = KEY})
    secrets.put("users/u1/azure", {a = 1})
    T.ok(secrets.configure{backend = "store", dir = dir, key = string.rep("x", 32)})
    local v, msg, code = secrets.get("users/u1/azure")
    T.eq(v, nil)
    T.eq(code, "crypto")
    T.contains(msg, "key is wrong")
    T.eq(select(3, secrets.put("users/u1/other", {blob = string.rep("x", 2 * 1024 * 1024)})),
        "too_large")
end)

T.test("configure keeps the old back end when the new store cannot be opened", function()
    local ctx = use_store()
    secrets.put("k", {a = 1})
    local blocker = T.tmpdir() .. "/file"
    T.write_file(blocker, "x")
    local ok, msg, code = secrets.configure{backend = "store", dir = blocker .. "/secrets",
        key = KEY}
    T.eq(ok, nil)
    T.eq(type(msg), "string")
    T.eq(type(code), "string")
    T.eq(secrets.get("k"), {a = 1})
    T.eq(secrets.configure{backend = "store", dir = ctx.dir, key = "not a key"}, nil)
    T.eq(secrets.get("k"), {a = 1})
end)

T.test("misuse raises", function()
    use_store()
    T.raises(secrets.put, "bad argument #1 to 'put' %(string expected, got nil%)")
    T.raises(secrets.put, "bad argument #2 to 'put' %(table expected, got string%)", "k", "v")
    T.raises(secrets.put, "unknown option 'cass'", "k", {}, {cass = 0})
    T.raises(secrets.put, "non%-negative integer", "k", {}, {cas = -1})
    T.raises(secrets.put, "bad argument #3 to 'put' %(table expected", "k", {}, 1)
    T.raises(secrets.get, "bad argument #1 to 'get' %(string expected, got number%)", 1)
    T.raises(secrets.delete, "bad argument #1 to 'delete'", false)
    T.raises(secrets.list, "bad argument #1 to 'list'", 5)
    T.raises(secrets.configure, "table expected", "store")
    T.raises(secrets.configure, "backend must be", {backend = "s3"})
    T.raises(secrets.configure, "unknown option 'vault' for backend \"store\"",
        {backend = "store", dir = "x", vault = {}})
    T.raises(secrets.configure, "option 'dir' must be a string", {backend = "store"})
    T.raises(secrets.configure, "must be an aurora.vault client", {backend = "vault"})
end)


-- ---- the back end the environment names ----------------------------------------------------

-- Runs a script in a child `aurora run` with env added; returns its output.
local function run_child(script, env)
    local dir = T.tmpdir()
    T.write_file(dir .. "/child.lua", script)
    local p = T.spawn({proc.self_exe(), "run", dir .. "/child.lua"}, env)
    local how, code = T.wait_process(p.pid, 60)
    local out = p:log()
    T.eq(how, "exited", out)
    T.eq(code, 0, out)
    return out
end


local CHILD = [[
local secrets = require "aurora.secrets"
local kind = assert(secrets.backend())
assert(secrets.put("users/u1/azure", {clientSecret = "]] .. CANARY .. [["}))
local v, meta = assert(secrets.get("users/u1/azure"))
assert(v.clientSecret == "]] .. CANARY .. [[")
print("backend=" .. kind .. " version=" .. meta.version)
]]

T.test("without VAULT_ADDR the store in AURORA_DATA_DIR/secrets is used", function()
    local data = T.tmpdir()
    local out = run_child(CHILD, {AURORA_DATA_DIR = data .. "/", AURORA_MASTER_KEY = "",
        VAULT_ADDR = "", AURORA_ENV_FILE = "/nonexistent"})
    T.contains(out, "backend=store version=1")
    T.not_contains(out, CANARY)
    T.ok(T.read_file(data .. "/secrets/users/u1/azure.rec"))
    T.ok(T.read_file(data .. "/secrets.key"))
    T.not_contains(T.read_file(data .. "/secrets/users/u1/azure.rec"), CANARY)
end)

T.test("a malformed AURORA_MASTER_KEY fails every call with 'invalid'", function()
    local data = T.tmpdir()
    local out = run_child([[
local secrets = require "aurora.secrets"
local v, msg, code = secrets.get("users/u1/azure")
print("v=" .. tostring(v) .. " code=" .. code .. " msg=" .. msg)
]], {AURORA_DATA_DIR = data, AURORA_MASTER_KEY = "not-a-key", VAULT_ADDR = "",
        AURORA_ENV_FILE = "/nonexistent"})
    T.contains(out, "v=nil code=invalid msg=AURORA_MASTER_KEY must be")
    T.not_contains(out, "not-a-key")
end)

T.test("with VAULT_ADDR Vault is used and nothing is written locally", function()
    local sim = harness.start()
    local data = T.tmpdir()
    local out = run_child(CHILD, {AURORA_DATA_DIR = data, VAULT_ADDR = sim.env.SIM_VAULT_ADDR,
        VAULT_TOKEN = sim.env.SIM_VAULT_TOKEN, VAULT_CACERT = sim.env.SIM_CA_FILE,
        AURORA_ENV_FILE = "/nonexistent"})
    T.contains(out, "backend=vault version=1")
    T.eq(T.read_file(data .. "/secrets.key"), nil)
    -- the secret is in Vault, under the default mount and prefix
    T.ok(secrets.configure{backend = "vault", vault = vault_client(sim)})
    T.eq(secrets.get("users/u1/azure"), {clientSecret = CANARY})
end)

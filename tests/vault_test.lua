-- aurora.vault against the simulated Vault (tests/sim/vault.lua): KV v2 reads, writes, versions,
-- patch, deletes, lists and metadata; check-and-set; AppRole logins shared and renewed;
-- namespaces; denied, sealed and unreachable Vaults; path checks; misuse; from_env.
local T = require "aurora.test"
local harness = require "sim.harness"
local json = require "aurora.json"
local proc = require "aurora.proc"
local secret = require "aurora.secret"
local time = require "aurora.time"
local timer = require "aurora.timer"
local vault = require "aurora.vault"

local ROLE_ID = "sim-role-id-0001"
local SECRET_ID = "sim-secret-id-0001"
local LOGIN = "vault:POST /v1/auth/approle/login"
local RENEW = "vault:POST /v1/auth/token/renew-self"


local function token_client(sim, extra)
    local opts = { addr = sim.env.SIM_VAULT_ADDR, token = secret.new(sim.env.SIM_VAULT_TOKEN),
        ca_file = sim.env.SIM_CA_FILE }
    for k, v in pairs(extra or {}) do opts[k] = v end
    return assert(vault.new(opts))
end


local function approle_client(sim, extra)
    local opts = { addr = sim.env.SIM_VAULT_ADDR, role_id = ROLE_ID,
        secret_id = secret.new(SECRET_ID), ca_file = sim.env.SIM_CA_FILE }
    for k, v in pairs(extra or {}) do opts[k] = v end
    return assert(vault.new(opts))
end


-- A raw request to the simulated Vault with the root token: status, decoded body.
local function raw(sim, method, path, opts)
    opts = opts or {}
    local headers = opts.headers or {}
    headers["X-Vault-Token"] = sim.env.SIM_VAULT_TOKEN
    local res = assert(sim:request("vault", method, path, { headers = headers, json = opts.json }))
    return res.status, res.body ~= "" and json.decode(res.body) or nil
end


-- Requests the simulated Vault has answered, by route, or the total of all its routes.
local function vault_count(sim, route)
    local n = 0
    for k, v in pairs(sim:stats().counts) do
        if (route and k == route) or (not route and k:sub(1, 6) == "vault:") then
            n = n + v
        end
    end
    return n
end


-- Checks that nothing secret is in a message.
local function clean(sim, msg)
    T.not_contains(msg, sim.env.SIM_VAULT_TOKEN)
    T.not_contains(msg, SECRET_ID)
    T.not_contains(msg, "hvs.")
    T.not_contains(msg, "s3cr3t")
end


T.test("a written secret reads back with its metadata under mount/data/prefix/path", function()
    local sim = harness.start()
    local c = token_client(sim)
    local meta, msg = c:write("users/u1/azure", { clientSecret = "s3cr3t", tenant = "t1" })
    T.ok(meta, msg)
    T.eq(meta.version, 1)
    T.match(meta.created_time, "^%d%d%d%d%-%d%d%-%d%dT")
    local data, m = c:read("users/u1/azure")
    T.eq(data, { clientSecret = "s3cr3t", tenant = "t1" })
    T.eq(m.version, 1)
    local status, body = raw(sim, "GET", "/v1/secret/data/aurora/users/u1/azure")
    T.eq(status, 200)
    T.eq(body.data.data.tenant, "t1")
    T.eq(c:read("users/u2/azure"), nil)
    T.eq(select("#", c:read("users/u2/azure")), 1, "a missing secret is a plain nil")
end)


T.test("each write is a new version and read(path, n) returns an older one", function()
    local sim = harness.start()
    local c = token_client(sim)
    T.eq(assert(c:write("u1", { a = "1" })).version, 1)
    T.eq(assert(c:write("u1", { a = "2" })).version, 2)
    T.eq((c:read("u1")), { a = "2" })
    local old, m = c:read("u1", 1)
    T.eq(old, { a = "1" })
    T.eq(m.version, 1)
    T.eq(c:read("u1", 9), nil, "a version that does not exist is nil")
    local v, msg, code = c:read("u1", 0)
    T.eq({ v, code }, { nil, "invalid" })
    T.match(msg, "version")
end)


T.test("patch merges fields, json.null removes one, and a missing secret is not_found", function()
    local sim = harness.start()
    local c = token_client(sim)
    assert(c:write("u1", { a = "1", b = "2", c = "3" }))
    local meta = assert(c:patch("u1", { b = "20", c = json.null, d = "4" }))
    T.eq(meta.version, 2)
    T.eq((c:read("u1")), { a = "1", b = "20", d = "4" })
    local v, msg, code = c:patch("nobody", { a = "1" })
    T.eq({ v, code }, { nil, "not_found" })
    T.eq(msg, "secret not found")
    v, msg, code = c:patch("u1", { a = "x" }, { cas = 1 })
    T.eq({ v, code }, { nil, "conflict" })
    T.eq(assert(c:patch("u1", { a = "x" }, { cas = 2 })).version, 3)
end)


T.test("delete hides the latest version and delete_metadata removes every version", function()
    local sim = harness.start()
    local c = token_client(sim)
    assert(c:write("u1", { a = "1" }))
    assert(c:write("u1", { a = "2" }))
    T.eq(c:delete("u1"), true)
    T.eq(c:read("u1"), nil, "a soft-deleted secret reads as nil")
    T.eq((c:read("u1", 1)), { a = "1" }, "older versions survive a soft delete")
    local m = assert(c:metadata("u1"))
    T.eq(m.current_version, 2)
    T.ok(m.versions["2"].deletion_time ~= "", "the latest version carries a deletion time")
    T.eq(c:delete("never"), true, "deleting nothing is fine")
    T.eq(c:delete_metadata("u1"), true)
    T.eq(c:metadata("u1"), nil)
    T.eq(c:read("u1", 1), nil)
    T.eq(c:list(), nil)
    T.eq(c:delete_metadata("u1"), true, "deleting metadata twice is fine")
end)


T.test("list gives keys with folders ending in / and nil when nothing is there", function()
    local sim = harness.start()
    local c = token_client(sim)
    for _, p in ipairs { "users/u1", "users/u2", "users/team/t1", "other" } do
        assert(c:write(p, { v = p }))
    end
    raw(sim, "POST", "/v1/secret/data/outside", { json = { data = { v = "x" } } })
    T.eq(c:list("users"), { "team/", "u1", "u2" })
    T.eq(c:list(), { "other", "users/" }, "list() lists the prefix, nothing outside it")
    T.eq(c:list(""), { "other", "users/" })
    T.eq(c:list("nothing/here"), nil)
    T.eq(select("#", c:list("nothing/here")), 1)
end)


T.test("metadata returns the versions and current_version", function()
    local sim = harness.start()
    local c = token_client(sim)
    assert(c:write("u1", { a = "1" }))
    assert(c:write("u1", { a = "2" }))
    local m = assert(c:metadata("u1"))
    T.eq(m.current_version, 2)
    T.eq(m.oldest_version, 1)
    T.ok(m.versions["1"] and m.versions["2"], "both versions are listed")
    T.eq(c:metadata("u9"), nil)
end)


T.test("a check-and-set mismatch returns conflict and leaves the stored version", function()
    local sim = harness.start()
    local c = token_client(sim)
    T.eq(assert(c:write("u1", { a = "1" }, { cas = 0 })).version, 1, "cas 0 creates")
    local v, msg, code = c:write("u1", { a = "x" }, { cas = 0 })
    T.eq({ v, code }, { nil, "conflict" })
    T.eq(msg, "check-and-set parameter did not match the current version")
    v, msg, code = c:write("u1", { a = "x" }, { cas = 5 })
    T.eq({ v, code }, { nil, "conflict" })
    T.eq((c:read("u1")), { a = "1" })
    T.eq(assert(c:write("u1", { a = "2" }, { cas = 1 })).version, 2)
end)


T.test("AppRole logs in once and every call and client with the same role shares it", function()
    local sim = harness.start()
    local c1 = approle_client(sim)
    local c2 = approle_client(sim)
    assert(c1:write("u1", { a = "1" }))
    T.eq((c2:read("u1")), { a = "1" })
    T.eq(c1:list(), { "u1" })
    T.eq(assert(c2:metadata("u1")).current_version, 1)
    T.eq(vault_count(sim, LOGIN), 1)
    T.eq(vault_count(sim, RENEW), 0)
end)


T.test("concurrent first calls wait for one AppRole login", function()
    local sim = harness.start()
    local done = 0
    for i = 1, 6 do
        timer.at(0, function()
            local c = approle_client(sim)
            assert(c:write("c" .. i, { n = tostring(i) }))
            done = done + 1
        end)
    end
    local deadline = time.monotonic() + 10
    while done < 6 and time.monotonic() < deadline do time.sleep(0.02) end
    T.eq(done, 6)
    T.eq(vault_count(sim, LOGIN), 1)
end)


T.test("an AppRole token is renewed before it expires and callers never see a 403", function()
    local sim = harness.start()
    sim:knobs { vault_token_ttl = 3 }
    local c = approle_client(sim)
    assert(c:write("u1", { n = "0" }))
    for i = 1, 12 do
        time.sleep(0.5)
        local meta, msg, code = c:write("u1", { n = tostring(i) })
        T.ok(meta, "write " .. i .. " failed: " .. tostring(msg) .. " " .. tostring(code))
        T.eq((c:read("u1")), { n = tostring(i) })
    end
    local renewals, logins = vault_count(sim, RENEW), vault_count(sim, LOGIN)
    T.ok(renewals >= 2, "renew-self was used (" .. renewals .. " times)")
    T.ok(logins + renewals >= 3, "the token was refreshed as it aged")
    time.sleep(0.3) -- the simulator writes its request log once per pass of its loop
    local log = sim:log()
    T.contains(log, '"path":"/v1/auth/token/renew-self","status":200')
    T.not_contains(log, '"status":403', "Vault never answered 403")
end)


T.test("an AppRole token refused with 403 is replaced by one fresh login", function()
    local sim = harness.start()
    local c = approle_client(sim)
    assert(c:write("u1", { a = "1" }))
    -- As if the token had been revoked: the next read is refused once.
    sim:knobs { faults = { { route = "vault:GET /v1/{mount}/data/{p1}/{p2}", status = 403,
        body = { errors = { "permission denied" } } } } }
    T.eq((c:read("u1")), { a = "1" })
    T.eq(vault_count(sim, LOGIN), 2)
    -- A second 403 soon after is a real refusal: no login storm.
    sim:knobs { faults = { { route = "vault:GET /v1/{mount}/data/{p1}/{p2}", status = 403,
        body = { errors = { "permission denied" } } } } }
    T.eq({ c:read("u1") }, { nil, "permission denied", "denied" })
    T.eq(vault_count(sim, LOGIN), 2)
    T.eq((c:read("u1")), { a = "1" }, "the token was kept")
    -- A static token is not retried: its 403 is the answer.
    local t = token_client(sim)
    sim:knobs { faults = { { route = "vault:GET /v1/{mount}/data/{p1}/{p2}", status = 403,
        body = { errors = { "permission denied" } } } } }
    T.eq({ t:read("u1") }, { nil, "permission denied", "denied" })
end)


T.test("a wrong AppRole secret_id is denied without the secret in the message", function()
    local sim = harness.start()
    local c = approle_client(sim, { secret_id = secret.new("wrong-secret-id-s3cr3t"),
        role_id = "sim-role-id-0001" })
    local v, msg, code = c:read("u1")
    T.eq({ v, code }, { nil, "denied" })
    T.match(msg, "AppRole login refused")
    T.not_contains(msg, "wrong-secret-id")
    clean(sim, msg)
end)


T.test("namespaces keep secrets apart", function()
    local sim = harness.start()
    local root = token_client(sim)
    local a = token_client(sim, { namespace = "team-a/" })
    local b = approle_client(sim, { namespace = "team-b" })
    assert(root:write("u1", { where = "root" }))
    assert(a:write("u1", { where = "team-a" }))
    T.eq(b:read("u1"), nil)
    assert(b:write("u1", { where = "team-b" }))
    T.eq((root:read("u1")), { where = "root" })
    T.eq((a:read("u1")), { where = "team-a" })
    T.eq((b:read("u1")), { where = "team-b" })
    local _, body = raw(sim, "GET", "/v1/secret/data/aurora/u1",
        { headers = { ["X-Vault-Namespace"] = "team-a" } })
    T.eq(body.data.data, { where = "team-a" })
end)


T.test("a bad token is denied with 'permission denied' and nothing secret", function()
    local sim = harness.start()
    local c = token_client(sim, { token = secret.new("hvs.not-a-real-token-s3cr3t") })
    for _, call in ipairs {
        function() return c:read("u1") end,
        function() return c:write("u1", { password = "s3cr3t" }) end,
        function() return c:patch("u1", { password = "s3cr3t" }) end,
        function() return c:delete("u1") end,
        function() return c:delete_metadata("u1") end,
        function() return c:list("u1") end,
        function() return c:metadata("u1") end,
    } do
        local v, msg, code = call()
        T.eq({ v, msg, code }, { nil, "permission denied", "denied" })
    end
    T.eq(vault_count(sim, LOGIN), 0, "a static token never logs in")
end)


T.test("a sealed Vault is unavailable and a write while sealed leaves the old version", function()
    local sim = harness.start()
    local c = token_client(sim)
    local ar = approle_client(sim)
    assert(c:write("u1", { a = "1" }))
    sim:knobs { vault_sealed = true }
    local v, msg, code = c:write("u1", { a = "2", password = "s3cr3t" })
    T.eq({ v, msg, code }, { nil, "Vault is sealed", "unavailable" })
    v, msg, code = c:read("u1")
    T.eq({ v, msg, code }, { nil, "Vault is sealed", "unavailable" })
    v, msg, code = ar:read("u1")
    T.eq({ v, msg, code }, { nil, "Vault is sealed", "unavailable" }, "AppRole login too")
    T.eq({ select(2, c:list()) }, { "Vault is sealed", "unavailable" })
    sim:knobs { vault_sealed = false }
    local data, m = c:read("u1")
    T.eq(data, { a = "1" })
    T.eq(m.version, 1)
    T.eq(assert(c:metadata("u1")).current_version, 1, "no half-written version")
    time.sleep(1.1) -- the failed login is remembered for a second
    T.eq((ar:read("u1")), { a = "1" })
end)


T.test("invalid paths are refused before any request", function()
    local sim = harness.start()
    local c = token_client(sim)
    local before = vault_count(sim)
    local bad = { "", "/u1", "u1/", "a//b", "..", "a/../b", ".", "a/./b", "u 1", "u%2F1",
        "u1?x=1", "u1#x", "ü", "a\0b", "a/b/c/d/e/f/g/h/i", string.rep("x", 2000) }
    for _, p in ipairs(bad) do
        for _, call in ipairs {
            function() return c:read(p) end,
            function() return c:write(p, { a = "1" }) end,
            function() return c:patch(p, { a = "1" }) end,
            function() return c:delete(p) end,
            function() return c:delete_metadata(p) end,
            function() return c:metadata(p) end,
        } do
            local v, msg, code = call()
            T.eq({ v, code }, { nil, "invalid" }, "path " .. string.format("%q", p))
            T.match(msg, "^invalid secret path")
        end
        if p ~= "" then
            T.eq(select(3, c:list(p)), "invalid", "list " .. string.format("%q", p))
        end
    end
    T.eq(vault_count(sim), before, "no request reached Vault")
    T.ok(c:write("Ok.user-1_x@example.com/a/b/c/d/e/f", { a = "1" }), "allowed characters")
end)


T.test("an unreachable Vault is unavailable and a wrong CA is refused", function()
    local sim = harness.start()
    local port = assert(proc.free_port())
    local c = assert(vault.new { addr = "https://127.0.0.1:" .. port,
        token = secret.new(sim.env.SIM_VAULT_TOKEN), timeout = 5 })
    local v, msg, code = c:read("u1")
    T.eq({ v, code }, { nil, "unavailable" })
    T.match(msg, "^cannot reach Vault")
    clean(sim, msg)
    -- The system CAs do not trust the simulator's certificate.
    c = assert(vault.new { addr = sim.env.SIM_VAULT_ADDR,
        token = secret.new(sim.env.SIM_VAULT_TOKEN) })
    v, msg, code = c:write("u1", { password = "s3cr3t" })
    T.eq({ v, code }, { nil, "unavailable" })
    T.contains(msg, "tls")
    clean(sim, msg)
end)


T.test("new returns invalid for a configuration that cannot work", function()
    local tok = secret.new("t")
    local cases = {
        { { token = tok }, "address" },
        { { addr = "vault:8200", token = tok }, "address" },
        { { addr = "https://v/x", token = tok }, "address" },
        { { addr = "https://v" }, "required" },
        { { addr = "https://v", token = tok, role_id = "r", secret_id = "s" }, "not both" },
        { { addr = "https://v", role_id = "r" }, "both role_id and secret_id" },
        { { addr = "https://v", secret_id = "s" }, "both role_id and secret_id" },
        { { addr = "https://v", token = tok, mount = "a/../b" }, "mount" },
        { { addr = "https://v", token = tok, prefix = "a b" }, "prefix" },
        { { addr = "https://v", token = tok, namespace = "ns 1" }, "namespace" },
        { { addr = "https://v", token = tok, timeout = 0 }, "timeout" },
        { { addr = "https://v", token = tok, ca_file = "/nonexistent/ca.pem" }, "CA file" },
    }
    for i, case in ipairs(cases) do
        local c, msg, code = vault.new(case[1])
        T.eq({ c, code }, { nil, "invalid" }, "case " .. i)
        T.contains(msg, case[2], "case " .. i)
    end
    T.ok(vault.new { addr = "http://127.0.0.1:8200/", token = "plain-string-token" })
    T.ok(vault.new { addr = "https://v", token = tok, prefix = "", mount = "kv/team" })
end)


T.test("misuse raises", function()
    local c = assert(vault.new { addr = "https://v", token = secret.new("t") })
    T.raises(vault.new, "bad argument #1 to 'new' %(table expected, got nil%)")
    T.raises(vault.new, "unknown option 'adr'", { adr = "https://v" })
    T.raises(vault.new, "option 'addr': string expected, got number", { addr = 1 })
    T.raises(vault.new, "option 'token'", { addr = "https://v", token = 5 })
    T.raises(function() c:read() end, "bad argument #1 to 'read' %(string expected, got nil%)")
    T.raises(function() c:read("u1", "2") end, "bad argument #2 to 'read'")
    T.raises(function() c:write("u1", "x") end, "bad argument #2 to 'write' %(table expected")
    T.raises(function() c:write("u1", {}, { cas = "1" }) end, "option 'cas' must be an integer")
    T.raises(function() c:write("u1", {}, { cass = 1 }) end, "unknown option 'cass'")
    T.raises(function() c:patch("u1") end, "bad argument #2 to 'patch'")
    T.raises(function() c:delete(5) end, "bad argument #1 to 'delete'")
    T.raises(function() c:metadata() end, "bad argument #1 to 'metadata'")
    T.raises(function() c:list(true) end, "bad argument #1 to 'list'")
    T.raises(function() c:write(nil, {}) end, "^[^:]*vault_test%.lua:%d+: bad argument #1 to")
    T.raises(function() c:delete() end, "^[^:]*vault_test%.lua:%d+: bad argument #1 to")
    local v, _, code = c:write("u1", { "a", "b" })
    T.eq({ v, code }, { nil, "invalid" }, "an array is not secret data")
    T.eq(tostring(c), "aurora.vault.client(https://v)")
end)


T.test("from_env reads VAULT_* and AURORA_VAULT_*, and without VAULT_ADDR is invalid", function()
    local sim = harness.start()
    local dir = T.tmpdir()
    local script = dir .. "/probe.lua"
    T.write_file(script, [[
local vault = require "aurora.vault"
local c, msg, code = vault.from_env()
if not c then print("ERR " .. tostring(code) .. " " .. tostring(msg)) return end
assert(c:write("u1", {a = "1"}))
print("OK " .. c.mount .. " " .. c.prefix .. " " .. tostring(c.namespace))
]])
    local function run(env)
        local base = { AURORA_ENV_FILE = "/nonexistent", VAULT_ADDR = "", VAULT_TOKEN = "",
            VAULT_ROLE_ID = "", VAULT_SECRET_ID = "", VAULT_NAMESPACE = "", VAULT_CACERT = "",
            AURORA_VAULT_MOUNT = "", AURORA_VAULT_PREFIX = "" }
        for k, v in pairs(env) do base[k] = v end
        local p = T.spawn({ proc.self_exe(), "run", script }, base)
        T.eq(T.wait_process(p.pid, 30), "exited")
        return p:log()
    end
    local out = run { VAULT_ADDR = sim.env.SIM_VAULT_ADDR, VAULT_TOKEN = sim.env.SIM_VAULT_TOKEN,
        VAULT_CACERT = sim.env.SIM_CA_FILE, AURORA_VAULT_MOUNT = "kv",
        AURORA_VAULT_PREFIX = "apps/aurora", VAULT_NAMESPACE = "ns1" }
    T.contains(out, "OK kv apps/aurora ns1")
    local status = raw(sim, "GET", "/v1/kv/data/apps/aurora/u1",
        { headers = { ["X-Vault-Namespace"] = "ns1" } })
    T.eq(status, 200)
    out = run { VAULT_ADDR = sim.env.SIM_VAULT_ADDR, VAULT_ROLE_ID = ROLE_ID,
        VAULT_SECRET_ID = SECRET_ID, VAULT_CACERT = sim.env.SIM_CA_FILE }
    T.contains(out, "OK secret aurora nil")
    T.eq(vault_count(sim, LOGIN), 1)
    out = run { VAULT_TOKEN = sim.env.SIM_VAULT_TOKEN }
    T.contains(out, "ERR invalid VAULT_ADDR is not set")
    out = run { VAULT_ADDR = sim.env.SIM_VAULT_ADDR }
    T.contains(out, "ERR invalid set VAULT_TOKEN")
    out = run { VAULT_ADDR = sim.env.SIM_VAULT_ADDR, VAULT_ROLE_ID = ROLE_ID }
    T.contains(out, "ERR invalid VAULT_ROLE_ID and VAULT_SECRET_ID must be set together")
    out = run { VAULT_ADDR = "not a url", VAULT_TOKEN = "x" }
    T.contains(out, "ERR invalid VAULT_ADDR must be")
    out = run { VAULT_ADDR = sim.env.SIM_VAULT_ADDR, VAULT_TOKEN = "x",
        VAULT_CACERT = "/nonexistent.pem" }
    T.contains(out, "ERR invalid cannot read VAULT_CACERT")
    T.not_contains(out, sim.env.SIM_VAULT_TOKEN)
end)

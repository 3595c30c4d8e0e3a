local T = require "aurora.test"
local json = require "aurora.json"
local proc = require "aurora.proc"
local secret = require "aurora.secret"
local store = require "aurora.store"

local KEY = string.rep("k", 32)
local OTHER_KEY = string.rep("o", 32)
local CANARY = "canary-2b7e1516-28aed2a6"


local function sh(cmd)
    local p = assert(io.popen(cmd))
    local out = p:read("a")
    p:close()
    return out
end


local function mode(path)
    return (sh("stat -c %a '" .. path .. "' 2>/dev/null"):gsub("%s+$", ""))
end


local function open(dir, key)
    return assert(store.open(dir, key or KEY))
end


T.test("a table comes back with its version and times", function()
    local dir = T.tmpdir() .. "/s"
    local h = open(dir)
    T.eq(h:put("users/42/azure", {clientId = "app", secret = CANARY, n = 3}), 1)
    local v, meta = h:get("users/42/azure")
    T.eq(v, {clientId = "app", secret = CANARY, n = 3})
    T.eq(meta.version, 1)
    T.eq(math.type(meta.created), "integer")
    T.ok(meta.created > 1600000000)
    T.eq(meta.updated, meta.created)
    T.eq(h:put("users/42/azure", {n = 4}), 2)
    v, meta = h:get("users/42/azure")
    T.eq(v, {n = 4})
    T.eq(meta.version, 2)
end)

T.test("strings, arrays and json.null survive the round trip", function()
    local h = open(T.tmpdir())
    T.eq(h:put("s", "just a string"), 1)
    T.eq(h:get("s"), "just a string")
    h:put("t", {list = json.array{1, 2}, empty = json.array(), none = json.null})
    local v = h:get("t")
    T.eq(json.encode(v, {sort_keys = true}), '{"empty":[],"list":[1,2],"none":null}')
end)

T.test("a missing record is plain nil", function()
    local h = open(T.tmpdir())
    local v, msg, code = h:get("users/nobody/azure")
    T.eq(v, nil)
    T.eq(msg, nil)
    T.eq(code, nil)
end)

T.test("check-and-set writes only over the expected version", function()
    local h = open(T.tmpdir())
    local v, msg, code = h:put("k", {a = 1}, {cas = 1})
    T.eq(v, nil)
    T.eq(code, "conflict")
    T.contains(msg, "does not exist")
    T.eq(h:put("k", {a = 1}, {cas = 0}), 1)
    v, msg, code = h:put("k", {a = 2}, {cas = 0})
    T.eq(code, "conflict")
    T.contains(msg, "version 1")
    T.eq(select(3, h:put("k", {a = 2}, {cas = 5})), "conflict")
    T.eq(h:put("k", {a = 2}, {cas = 1}), 2)
    T.eq(h:put("k", {a = 3}), 3)
    T.eq(h:get("k"), {a = 3})
end)

T.test("delete removes the record and is quiet about missing ones", function()
    local h = open(T.tmpdir())
    h:put("users/1/azure", {a = 1})
    T.eq(h:delete("users/1/azure"), true)
    T.eq(h:get("users/1/azure"), nil)
    T.eq(h:delete("users/1/azure"), true)
    T.eq(h:list(""), {})
    T.eq(h:put("users/1/azure", {a = 1}, {cas = 0}), 1) -- a fresh start after delete
end)

T.test("list gives records and folders, sorted, like Vault", function()
    local h = open(T.tmpdir())
    for _, p in ipairs{"users/b/azure", "users/a/azure", "users/a/reader", "users/c", "config"} do
        h:put(p, {})
    end
    T.eq(h:list(), {"config", "users/"})
    T.eq(h:list(""), {"config", "users/"})
    T.eq(h:list("users"), {"a/", "b/", "c"})
    T.eq(h:list("users/"), {"a/", "b/", "c"})
    T.eq(h:list("users/a"), {"azure", "reader"})
    T.eq(h:list("nothing/there"), {})
    local v, msg, code = h:list("../etc")
    T.eq(v, nil)
    T.eq(code, "invalid")
    T.contains(msg, "invalid path")
end)

T.test("paths are checked before the filesystem is touched", function()
    local dir = T.tmpdir()
    local h = open(dir)
    local bad = {"", "/abs", "a/", "a//b", ".", "..", "a/../b", "a b", "a~b", "x.rec/y",
        "caf\u{e9}", "a\0b", string.rep("a", 129), "1/2/3/4/5/6/7/8/9"}
    for _, p in ipairs(bad) do
        local v, msg, code = h:put(p, {x = 1})
        T.eq(v, nil, p)
        T.eq(code, "invalid", p)
        T.match(msg, "^invalid path", p)
        T.eq(select(3, h:get(p)), "invalid", p)
        T.eq(select(3, h:delete(p)), "invalid", p)
        T.eq(select(3, store.check_path(p)), "invalid", p)
    end
    T.eq(h:list(), {})
    for _, p in ipairs{"user@example.com/sp-1", string.rep("a", 128), "1/2/3/4/5/6/7/8", "x.rec"} do
        T.eq(h:put(p, {x = 1}), 1, p)
        T.eq(store.check_path(p), true)
    end
    T.eq(store.check_path("users/", true), true)
    T.eq(store.check_path("", true), true)
end)

T.test("misuse raises", function()
    local h = open(T.tmpdir())
    T.raises(store.open, "bad argument #1 to '[%w.]*open' %(string expected", nil)
    T.raises(store.open, "secret or string", T.tmpdir(), 42)
    T.raises(h.put, "table or string", h, "k", 42)
    T.raises(h.put, "table or string", h, "k", nil)
    T.raises(h.put, "cannot encode the value", h, "k", {f = print})
    T.raises(h.put, "unknown option 'cass'", h, "k", {}, {cass = 1})
    T.raises(h.put, "non%-negative integer", h, "k", {}, {cas = -1})
    T.raises(h.put, "non%-negative integer", h, "k", {}, {cas = 1.5})
    T.raises(function() return h:get({}) end, "bad argument #1 to 'get' %(string expected")
    T.raises(function() return h:list({}) end, "bad argument #1 to 'list' %(string expected")
    T.raises(store.check_path, "bad argument #1", nil)
end)

T.test("a closed store raises, and closing twice is harmless", function()
    local h = open(T.tmpdir())
    T.eq(tostring(h), "aurora.store")
    T.eq(h:is_open(), true)
    h:close()
    h:close()
    T.eq(h:is_open(), false)
    T.eq(tostring(h), "aurora.store(closed)")
    T.raises(h.get, "closed store", h, "k")
    T.raises(h.put, "closed store", h, "k", {})
    do
        local c <close> = open(T.tmpdir())
        c:put("k", {})
    end
end)

T.test("the key may be raw bytes, hex, base64 or a secret handle", function()
    local dir = T.tmpdir()
    local raw = "0123456789abcdef0123456789abcdef"
    open(dir, raw):put("k", {a = 1})
    local hex = ("%02x"):rep(32):format(raw:byte(1, 32))
    T.eq(open(dir, hex):get("k"), {a = 1})
    T.eq(open(dir, "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="):get("k"), {a = 1})
    local key <close> = secret.new(raw)
    T.eq(open(dir, key):get("k"), {a = 1})
    local h, msg, code = store.open(dir, "short")
    T.eq(h, nil)
    T.eq(code, "invalid")
    T.contains(msg, "32 bytes")
    T.not_contains(msg, "short")
end)

T.test("without a key a 0600 key file is made once and reused", function()
    local data = T.tmpdir()
    local h = assert(store.open(data .. "/secrets"))
    h:put("k", {a = 1})
    h:close()
    T.eq(mode(data .. "/secrets.key"), "600")
    T.eq(#T.read_file(data .. "/secrets.key"), 65)
    local again = assert(store.open(data .. "/secrets/"))
    T.eq(again:get("k"), {a = 1})
    sh("chmod 644 '" .. data .. "/secrets.key'")
    local x, msg, code = store.open(data .. "/secrets")
    T.eq(x, nil)
    T.eq(code, "denied")
    T.contains(msg, "chmod 600")
end)

T.test("records and folders are private and never hold the plaintext", function()
    local dir = T.tmpdir() .. "/s"
    local h = assert(store.open(dir))
    h:put("users/7/azure", {clientSecret = CANARY})
    h:put("users/7/azure", {clientSecret = CANARY, more = CANARY})
    T.eq(mode(dir), "700")
    T.eq(mode(dir .. "/users"), "700")
    T.eq(mode(dir .. "/users/7"), "700")
    T.eq(mode(dir .. "/users/7/azure.rec"), "600")
    local files = sh("find '" .. dir .. "' '" .. dir .. ".key' -type f")
    local n = 0
    for f in files:gmatch("[^\n]+") do
        n = n + 1
        T.not_contains(T.read_file(f), CANARY, f)
        T.not_contains(T.read_file(f), "clientSecret", f)
    end
    T.ok(n >= 2)
    T.eq(sh("find '" .. dir .. "' -name '*~*' ! -name '~lock'"), "") -- no temporary files left
end)

T.test("a crash between write and rename leaves the old record readable", function()
    local dir = T.tmpdir()
    local h = open(dir)
    local file = dir .. "/users/1/azure.rec"
    h:put("users/1/azure", {v = "old"})
    local old = T.read_file(file)
    h:put("users/1/azure", {v = "new"})
    local new = T.read_file(file)
    -- what a crash leaves: the old record in place, the new one in a temporary file beside it
    T.write_file(file, old)
    T.write_file(file .. "~Qx81Za", new)
    local v, meta = h:get("users/1/azure")
    T.eq(v, {v = "old"})
    T.eq(meta.version, 1)
    T.eq(h:list("users/1"), {"azure"})
    T.eq(h:put("users/1/azure", {v = "newer"}, {cas = 1}), 2)
    T.eq(h:get("users/1/azure"), {v = "newer"})
end)

T.test("a truncated record is a clear error, never an empty result", function()
    local dir = T.tmpdir()
    local h = open(dir)
    h:put("k", {secret = CANARY})
    local rec = T.read_file(dir .. "/k.rec")
    T.write_file(dir .. "/k.rec", rec:sub(1, 10))
    local v, msg, code = h:get("k")
    T.eq(v, nil)
    T.eq(code, "invalid")
    T.contains(msg, "truncated")
    T.write_file(dir .. "/k.rec", rec:sub(1, -2))
    v, msg, code = h:get("k")
    T.eq(v, nil)
    T.eq(code, "crypto")
    T.contains(msg, "'k'")
    T.not_contains(msg, CANARY)
    -- a write does not paper over the damage either
    T.eq(select(3, h:put("k", {secret = "x"})), "crypto")
    T.eq(h:delete("k"), true)
    T.eq(h:put("k", {secret = "x"}), 1)
end)

T.test("a flipped byte, a moved record and a wrong key are crypto errors", function()
    local dir = T.tmpdir()
    local h = open(dir)
    h:put("a", {secret = CANARY})
    local rec = T.read_file(dir .. "/a.rec")
    local i = #rec - 20
    T.write_file(dir .. "/a.rec", rec:sub(1, i - 1) .. string.char(rec:byte(i) ~ 1) .. rec:sub(i + 1))
    local v, msg, code = h:get("a")
    T.eq(v, nil)
    T.eq(code, "crypto")
    T.contains(msg, "altered")
    T.write_file(dir .. "/a.rec", rec)
    T.write_file(dir .. "/b.rec", rec)
    T.eq(select(3, h:get("b")), "crypto")
    T.eq(h:get("a"), {secret = CANARY})
    local other = open(dir, OTHER_KEY)
    v, msg, code = other:get("a")
    T.eq(v, nil)
    T.eq(code, "crypto")
    T.contains(msg, "key is wrong")
    T.write_file(dir .. "/c.rec", "XXXX" .. rec:sub(5))
    T.eq(select(3, h:get("c")), "invalid")
end)

T.test("values over 1 MiB are refused with too_large", function()
    local h = open(T.tmpdir())
    local v, msg, code = h:put("big", {blob = string.rep("x", 1024 * 1024)})
    T.eq(v, nil)
    T.eq(code, "too_large")
    T.contains(msg, "larger than")
    T.eq(h:put("fits", {blob = string.rep("x", 1000 * 1000)}), 1)
    T.eq(#h:get("fits").blob, 1000 * 1000)
end)

T.test("two handles on one directory see each other's writes and conflicts", function()
    local dir = T.tmpdir()
    local a, b = open(dir), open(dir)
    T.eq(a:put("k", {n = 1}, {cas = 0}), 1)
    T.eq(select(3, b:put("k", {n = 1}, {cas = 0})), "conflict")
    T.eq(b:put("k", {n = 2}, {cas = 1}), 2)
    T.eq(a:get("k"), {n = 2})
end)

T.test("check-and-set holds across processes sharing the directory", function()
    local dir = T.tmpdir()
    local script = T.tmpdir() .. "/incr.lua"
    T.write_file(script, [[
local store = require "aurora.store"
local h = assert(store.open(..., string.rep("k", 32)))
for _ = 1, 20 do
    while true do
        local v, meta = h:get("counter")
        local n = v and v.n or 0
        local ok, msg, code = h:put("counter", {n = n + 1}, {cas = meta and meta.version or 0})
        if ok then break end
        assert(code == "conflict", msg)
    end
end
]])
    local ps = {}
    for i = 1, 3 do
        ps[i] = T.spawn{proc.self_exe(), "run", script, dir}
    end
    for i = 1, 3 do
        local how, code = T.wait_process(ps[i].pid, 60)
        T.eq(how, "exited", ps[i]:log())
        T.eq(code, 0, ps[i]:log())
    end
    local v, meta = open(dir):get("counter")
    T.eq(v, {n = 60})
    T.eq(meta.version, 60)
end)

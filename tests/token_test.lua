-- aurora.token: the process-wide cache with single flight. Keys are unique per test because the
-- cache outlives a test (it is process-wide, and every test runs in the same process).
local T = require "aurora.test"
local http = require "aurora.http"
local json = require "aurora.json"
local secret = require "aurora.secret"
local time = require "aurora.time"
local timer = require "aurora.timer"
local token = require "aurora.token"

local seq = 0


local function key(name)
    seq = seq + 1
    return string.format("token_test:%s:%d:%d", name, seq, math.floor(time.now() * 1000))
end


local function delta(before)
    local now = token.stats()
    local d = {}
    for k, v in pairs(now) do
        if k ~= "entries" then d[k] = v - before[k] end
    end
    return d
end


T.test("a miss runs fetch once and the next call is a hit with the same value", function()
    local k, calls = key("hit"), 0
    local before = token.stats()
    local fetch = function()
        calls = calls + 1
        return "tok-value", time.now() + 3600, { kind = "test" }
    end
    local tok, exp, meta = token.get(k, fetch)
    T.ok(secret.is_secret(tok))
    T.eq(tok:reveal(), "tok-value")
    T.ok(exp > time.now() + 3000)
    T.eq(meta, { kind = "test" })
    local tok2, exp2, meta2 = token.get(k, fetch)
    T.eq(tok2:reveal(), "tok-value")
    T.eq(exp2, exp)
    T.eq(meta2, { kind = "test" })
    T.eq(calls, 1)
    T.eq(delta(before), { fetches = 1, waits = 0, hits = 1, negative_hits = 0 })
end)


T.test("fetch may return a secret handle and the cache keeps its own copy", function()
    local k = key("handle")
    local h = secret.new("from-a-handle")
    local tok = token.get(k, function() return h, time.now() + 600 end)
    h:close()
    T.eq(tok:reveal(), "from-a-handle")
    T.eq(token.peek(k):reveal(), "from-a-handle")
    T.eq(select(3, token.peek(k)), {})
end)


T.test("a value within the margin is fetched again but peek still returns it", function()
    local k, n = key("margin"), 0
    local fetch = function()
        n = n + 1
        return "v" .. n, time.now() + 100
    end
    T.eq(token.get(k, fetch):reveal(), "v1")
    T.eq(token.get(k, fetch):reveal(), "v2") -- default margin 300 > 100 s left
    T.eq(token.get(k, fetch, { margin = 10 }):reveal(), "v2")
    T.eq(n, 2)
    T.eq(token.peek(k):reveal(), "v2")
end)


T.test("an expired value is neither returned by get nor by peek", function()
    local k = key("expired")
    token.put(k, "short", time.now() + 0.2)
    T.eq(token.peek(k):reveal(), "short")
    time.sleep(0.3)
    T.eq(token.peek(k), nil)
    local tok = token.get(k, function() return "fresh", time.now() + 3600 end, { margin = 0 })
    T.eq(tok:reveal(), "fresh")
end)


T.test("a failure with a negative ttl is cached and returned without fetching", function()
    local k, calls = key("neg"), 0
    local before = token.stats()
    local fetch = function()
        calls = calls + 1
        return nil, { status = 401, code = "AADSTS7000215", error = "invalid_client",
            message = "bad secret" }, 60
    end
    local tok, err = token.get(k, fetch)
    T.eq(tok, nil)
    T.eq(err.code, "AADSTS7000215")
    local tok2, err2 = token.get(k, fetch)
    T.eq(tok2, nil)
    T.eq(err2, { status = 401, code = "AADSTS7000215", error = "invalid_client",
        message = "bad secret" })
    T.eq(calls, 1)
    T.eq(delta(before).negative_hits, 1)
    token.invalidate(k)
    token.get(k, fetch)
    T.eq(calls, 2)
end)


T.test("a failure without a negative ttl is not cached", function()
    local k, calls = key("nocache"), 0
    local fetch = function()
        calls = calls + 1
        return nil, { code = "unavailable", status = 503 }
    end
    T.eq(select(2, token.get(k, fetch)).code, "unavailable")
    T.eq(select(2, token.get(k, fetch)).code, "unavailable")
    T.eq(calls, 2)
end)


T.test("a failed refresh keeps the old value visible to peek", function()
    local k = key("keep")
    token.put(k, "old", time.now() + 100, { n = "1" })
    local tok, err = token.get(k, function() return nil, { code = "unavailable" } end)
    T.eq(tok, nil)
    T.eq(err.code, "unavailable")
    local old, _, meta = token.peek(k)
    T.eq(old:reveal(), "old")
    T.eq(meta, { n = "1" })
end)


T.test("put, peek and invalidate", function()
    local k = key("put")
    T.eq(token.peek(k), nil)
    token.put(k, secret.new("s3cr3t"), time.now() + 3600, { issued = "now" })
    local h, exp, meta = token.peek(k)
    T.eq(h:reveal(), "s3cr3t")
    T.ok(exp > time.now())
    T.eq(meta, { issued = "now" })
    token.invalidate(k)
    T.eq(token.peek(k), nil)
    token.invalidate(k) -- harmless twice
end)


T.test("fifty tasks asking for the same missing key cause one fetch", function()
    local k, calls, results = key("flight"), 0, {}
    local before = token.stats()
    local fetch = function()
        calls = calls + 1
        time.sleep(0.2)
        return "shared-" .. calls, time.now() + 3600
    end
    for i = 1, 50 do
        timer.at(0, function()
            local tok = token.get(k, fetch)
            results[i] = tok and tok:reveal() or "none"
        end)
    end
    local deadline = time.monotonic() + 5
    while #results < 50 and time.monotonic() < deadline do time.sleep(0.02) end
    T.eq(calls, 1)
    for i = 1, 50 do T.eq(results[i], "shared-1") end
    local d = delta(before)
    T.eq(d.fetches, 1)
    T.eq(d.waits, 49)
end)


T.test("waiters of a failed fetch get its error table", function()
    local k, got = key("flightfail"), {}
    local fetch = function()
        time.sleep(0.1)
        return nil, { code = "AADSTS90002", status = 400, trace_id = "t-1" }, 30
    end
    for i = 1, 5 do
        timer.at(0, function()
            local tok, err = token.get(k, fetch)
            got[i] = tok and "token" or err.code .. "/" .. err.trace_id
        end)
    end
    local deadline = time.monotonic() + 5
    while #got < 5 and time.monotonic() < deadline do time.sleep(0.02) end
    for i = 1, 5 do T.eq(got[i], "AADSTS90002/t-1") end
end)


T.test("a fetch that raises fails its caller and a waiter fetches instead", function()
    local k, n, got = key("raise"), 0, {}
    local fetch = function()
        n = n + 1
        time.sleep(0.1)
        if n == 1 then error("boom in fetch") end
        return "second-try", time.now() + 3600
    end
    for i = 1, 3 do
        timer.at(0, function()
            local ok, tok = pcall(token.get, k, fetch)
            got[i] = ok and tok:reveal() or "raised"
        end)
    end
    local deadline = time.monotonic() + 5
    while #got < 3 and time.monotonic() < deadline do time.sleep(0.02) end
    table.sort(got)
    T.eq(got, { "raised", "second-try", "second-try" })
    T.eq(n, 2)
end)


T.test("misuse raises", function()
    T.raises(token.get, "bad argument #1 to '.-get'", nil, function() end)
    T.raises(token.get, "bad argument #1 to '.-get'", "", function() end)
    T.raises(token.get, "bad argument #2 to '.-get'", key("x"), "not a function")
    T.raises(token.get, "unknown option 'marign'", key("x"), function() end, { marign = 1 })
    T.raises(token.get, "margin", key("x"), function() end, { margin = -1 })
    T.raises(token.get, "fetch must return", key("x"), function() return 42 end)
    T.raises(token.get, "expires_at", key("x"), function() return "v" end)
    T.raises(token.get, "fetch must return", key("x"), function() return nil, "a string" end)
    T.raises(token.get, "negative_ttl", key("x"), function() return nil, {}, -5 end)
    T.raises(token.put, "bad argument #3 to '.-put'", key("x"), "v")
    T.raises(token.peek, "bad argument #1 to '.-peek'", {})
    -- a bad fetch leaves no flight behind: the next call fetches normally
    local k = key("after-misuse")
    pcall(token.get, k, function() return 42 end)
    T.eq(token.get(k, function() return "ok", time.now() + 60 end, { margin = 0 }):reveal(), "ok")
end)


T.test("get cannot wait outside a task", function()
    local k = key("nowait")
    local ok, msg = pcall(table.sort, { 2, 1 }, function(a, b)
        token.get(k, function() return "v", time.now() + 60 end)
        return a < b
    end)
    T.eq(ok, false)
    T.contains(msg, "get: cannot wait here")
end)


-- A small app in a temporary directory: the handlers share keys across two workers.
local APP = [[
local token = require "aurora.token"
local time = require "aurora.time"
local timer = require "aurora.timer"
local calls = 0
local function fetch_slow()
    calls = calls + 1
    time.sleep(5)
    return "slow", time.now() + 3600
end
local function fast(pause)
    return function()
        calls = calls + 1
        time.sleep(pause)
        return "fast-" .. timer.worker_id(), time.now() + 3600
    end
end
return {
    ["GET /get/{key}"] = function(req)
        local fetch = req.query.slow and fetch_slow or fast(tonumber(req.query.pause) or 0.5)
        local tok, exp = token.get(req.params.key, fetch)
        return 200, {value = tok:reveal(), worker = timer.worker_id()}
    end,
    ["POST /background/{key}"] = function(req)
        timer.at(0, function() token.get(req.params.key, fetch_slow) end)
        return 202, {}
    end,
    ["GET /stats"] = function() return 200, token.stats() end,
}
]]


local function start_app(env)
    local dir = T.tmpdir()
    T.write_file(dir .. "/app.lua", APP)
    return T.server { app = dir, workers = 2, env = env }
end


T.test("100 requests over two workers for one missing key cause one fetch", function()
    local s = start_app()
    -- Which worker accepts a connection is up to the kernel: repeat with a fresh key until a
    -- batch was served by both workers (almost always the first).
    local both = false
    for batch = 1, 5 do
        local before = json.decode(s:request("GET", "/stats").body)
        local reqs = {}
        for i = 1, 100 do
            reqs[i] = { url = s.url .. "/get/cross-worker-" .. batch,
                headers = { Connection = "close" } }
        end
        local values, workers = {}, {}
        for _, r in ipairs(http.request_many(reqs)) do
            T.eq(r.status, 200, r.body)
            local b = json.decode(r.body)
            values[b.value] = true
            workers[b.worker] = true
        end
        local st = json.decode(s:request("GET", "/stats").body)
        T.eq(st.fetches - before.fetches, 1)
        T.eq(st.waits + st.hits - before.waits - before.hits, 99)
        local n = 0
        for _ in pairs(values) do n = n + 1 end
        T.eq(n, 1)
        if workers[1] and workers[2] then
            both = true
            break
        end
    end
    T.ok(both, "a batch was served by both workers")
end)


T.test("a fetcher killed by its deadline hands the flight to a waiter", function()
    local s = start_app { AURORA_REQUEST_TIMEOUT = "1" }
    local slow
    timer.at(0, function() slow = s:request("GET", "/get/killed?slow=1") end)
    time.sleep(0.5)
    -- This one waits on the slow fetch, which is killed at 1 s; it then fetches itself.
    local fast = s:request("GET", "/get/killed?pause=0.05")
    T.eq(fast.status, 200, fast.body)
    T.eq(json.decode(fast.body).value:match("^fast"), "fast")
    local deadline = time.monotonic() + 3
    while not slow and time.monotonic() < deadline do time.sleep(0.05) end
    T.eq(slow.status, 504)
    local rs = { slow, fast }
    local st = json.decode(s:request("GET", "/stats").body)
    T.eq(st.entries, 1)
    T.eq(st.fetches, 2)
    T.eq(st.waits, 1)
    local r = s:request("GET", "/get/killed")
    T.eq(json.decode(r.body).value, json.decode(rs[2].body).value)
end)


T.test("a waiter cancelled by its deadline leaves the fetch running", function()
    local s = start_app { AURORA_REQUEST_TIMEOUT = "1" }
    T.eq(s:request("POST", "/background/bg").status, 202)
    time.sleep(0.1)
    local t0 = time.monotonic()
    local r = s:request("GET", "/get/bg")
    T.eq(r.status, 504)
    T.ok(time.monotonic() - t0 < 3)
    local st = json.decode(s:request("GET", "/stats").body)
    T.eq(st.waits, 1)
    -- the background fetch ends after 5 s and serves everyone afterwards
    local deadline = time.monotonic() + 8
    local body
    repeat
        time.sleep(0.25)
        local res = s:request("GET", "/get/bg")
        body = res.status == 200 and json.decode(res.body)
    until (body and body.value == "slow") or time.monotonic() > deadline
    T.eq(body and body.value, "slow")
    T.ok(not s:log():find("ERROR", 1, true) and not s:log():find("panic", 1, true))
end)

-- Reload, graceful shutdown, and the non-blocking model under load.
local T = require "aurora.test"
local json = require "aurora.json"
local http = require "aurora.http"
local time = require "aurora.time"
local timer = require "aurora.timer"


local function app_with(version)
    return string.format([[
local time = require "aurora.time"
return {
    ["GET /version"] = function() return 200, { version = %q } end,
    ["GET /slow"] = function() time.sleep(0.05) return 200, { version = %q } end,
}
]], version, version)
end


local function versions(s, n, path)
    local reqs = {}
    for i = 1, n do
        reqs[i] = { url = s.url .. (path or "/version"), timeout = 10 }
    end
    local seen, failures = {}, 0
    for _, res in ipairs(http.request_many(reqs)) do
        if res.status == 200 then
            local v = json.decode(res.body).version
            seen[v] = (seen[v] or 0) + 1
        else
            failures = failures + 1
        end
    end
    return seen, failures
end


T.test("a reload during a steady stream of requests fails none of them", function()
    local dir = T.tmpdir()
    T.write_file(dir .. "/app.lua", app_with("one"))
    local s = T.server { app = dir }
    timer.at(0.3, function()
        T.write_file(dir .. "/app.lua", app_with("two"))
        s:signal("HUP")
    end)
    local total, failures, seen = 0, 0, {}
    local deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline do
        local v, f = versions(s, 20, "/slow")
        for k, c in pairs(v) do seen[k] = (seen[k] or 0) + c end
        total = total + 20
        failures = failures + f
    end
    T.eq(failures, 0, "requests failed during the reload")
    T.ok(total >= 200, "a steady stream: " .. total .. " requests")
    T.ok((seen.one or 0) > 0, "served by the old scripts first")
    T.ok((seen.two or 0) > 0, "served by the new scripts after the reload")
    local after = versions(s, 10)
    T.eq(after, { two = 10 })
    T.contains(s:log(), "reloading scripts")
end)


T.test("a broken script on reload is rejected with file and line, the old one keeps serving", function()
    local dir = T.tmpdir()
    T.write_file(dir .. "/app.lua", app_with("good"))
    local s = T.server { app = dir }
    T.write_file(dir .. "/app.lua", "return {\n  [\"GET /version\"] = function() return 200 end\n  oops\n}\n")
    s:signal("HUP")
    time.sleep(0.5)
    T.eq(versions(s, 10), { good = 10 })
    T.match(s:log(), "reload rejected")
    T.match(s:log(), "app%.lua:3:")
end)


T.test("aurora reload signals the running server through its pid file", function()
    local dir = T.tmpdir()
    T.write_file(dir .. "/app.lua", app_with("first"))
    local s = T.server { app = dir }
    T.write_file(dir .. "/app.lua", app_with("second"))
    local p = T.spawn({ require("aurora.proc").self_exe(), "reload" },
        { AURORA_DATA_DIR = s.dir, AURORA_ENV_FILE = "/nonexistent" })
    T.eq({ T.wait_process(p.pid, 10) }, { "exited", 0 })
    local deadline = time.monotonic() + 5
    local seen
    repeat
        time.sleep(0.05)
        seen = versions(s, 1)
    until seen.second or time.monotonic() > deadline
    T.eq(seen, { second = 1 })
end)


T.test("SIGTERM lets in-flight requests finish, refuses new ones, and exits 0", function()
    local s = T.server { app = "tests/fixtures/engine" }
    timer.at(0.2, function() s:signal("TERM") end)
    local res = assert(s:request("GET", "/sleep?s=1"))
    T.eq(res.status, 200)
    T.eq(json.decode(res.body), { slept = true })
    local how, code = T.wait_process(s.pid, 10)
    s.stopped = true
    T.eq({ how, code }, { "exited", 0 })
    local again, _, errcode = s:request("GET", "/healthz", { timeout = 2 })
    T.eq(again, nil)
    T.eq(errcode, "connect")
end)


T.test("500 concurrent requests awaiting a 200 ms upstream all succeed in under 2 s on 2 workers", function()
    local up = T.server { app = "tests/fixtures/upstream", workers = 2 }
    local s = T.server { app = "tests/fixtures/engine", workers = 2 }
    local reqs = {}
    local target = http.escape(up.url .. "/slow?ms=200")
    for i = 1, 500 do
        reqs[i] = { url = s.url .. "/proxy?url=" .. target, timeout = 20 }
    end
    local t0 = time.monotonic()
    local results = http.request_many(reqs)
    local elapsed = time.monotonic() - t0
    local ok = 0
    for _, res in ipairs(results) do
        if res.status == 200 and json.decode(res.body).status == 200 then
            ok = ok + 1
        end
    end
    T.eq(ok, 500)
    T.ok(elapsed < 2, string.format("took %.2f s (blocking workers would need 50 s)", elapsed))
    T.ok(elapsed >= 0.2, "the upstream delay was real")
end)

-- The HTTP server: routing, limits, errors, request ids, logging, deadlines.
local T = require "aurora.test"
local json = require "aurora.json"
local http = require "aurora.http"

local APP = "tests/fixtures/engine"


local function get(s, path, opts)
    local res = assert(s:request("GET", path, opts))
    return res, res.headers["content-type"] == "application/json" and json.decode(res.body)
end


T.test("routes with captures decode each segment, keeping an encoded slash inside it", function()
    local s = T.server { app = APP }
    local res, body = get(s, "/hello/wo%2Frld?x=1&y=a+b&z=%26")
    T.eq(res.status, 200)
    T.eq(body, { hello = "wo/rld", query = { x = "1", y = "a b", z = "&" } })
end)


T.test("a literal segment wins over a capture", function()
    local s = T.server { app = APP }
    local _, a = get(s, "/items/special")
    local _, b = get(s, "/items/42")
    T.eq(a, { route = "literal" })
    T.eq(b, { route = "capture", id = "42" })
end)


T.test("unknown paths answer 404 and known paths with another method 405 with Allow", function()
    local s = T.server { app = APP }
    local res, body = get(s, "/nowhere")
    T.eq(res.status, 404)
    T.eq(body.error, "not found")
    T.match(body.requestId, "^%x+$")
    res = assert(s:request("PUT", "/items/7"))
    T.eq(res.status, 405)
    T.eq(res.headers.allow, "DELETE, GET")
    T.eq(json.decode(res.body).error, "method not allowed")
end)


T.test("a 2 MiB body gets 413, with Content-Length and chunked", function()
    local s = T.server { app = APP }
    local big = string.rep("x", 2 * 1024 * 1024)
    local res = assert(s:request("POST", "/size", { body = big }))
    T.eq(res.status, 413)
    T.match(json.decode(res.body).error, "larger than 1048576 bytes")
    res = assert(s:request("POST", "/size", { body = big,
        headers = { ["Transfer-Encoding"] = "chunked" } }))
    T.eq(res.status, 413)
    res = assert(s:request("POST", "/size", { body = string.rep("y", 1000) }))
    T.eq(json.decode(res.body), { size = 1000 })
end)


T.test("malformed JSON gets a 400 naming the problem", function()
    local s = T.server { app = APP }
    local res = assert(s:request("POST", "/echo", { body = '{"a": [1, 2,' }))
    T.eq(res.status, 400)
    local body = json.decode(res.body)
    T.match(body.error, "^malformed JSON in request body: .* at byte %d+")
    T.eq(body.requestId, res.headers["x-request-id"])
    res = assert(s:request("POST", "/echo", { body = "" }))
    T.eq(res.status, 400)
    T.match(json.decode(res.body).error, "empty")
    res = assert(s:request("POST", "/echo", { body = '{"a":[],"b":{},"c":null}' }))
    T.eq(json.decode(res.body), json.decode('{"a":[],"b":{},"c":null}'))
    T.eq(res.body:find('"a":[]', 1, true) ~= nil, true, "an empty array stays an array")
end)


T.test("a handler error is a 500 whose body has only the request id; the log has the rest", function()
    local s = T.server { app = APP }
    local res = assert(s:request("GET", "/boom"))
    T.eq(res.status, 500)
    local body = json.decode(res.body)
    T.eq(body, { error = "internal error", requestId = res.headers["x-request-id"] })
    T.not_contains(res.body, "kaboom")
    T.not_contains(res.body, "app.lua")
    s:stop()
    T.contains(s:log(), "kaboom: internal detail")
    T.contains(s:log(), "stack traceback")
end)


T.test("an invalid status from a handler is a 500, an error table answers its status", function()
    local s = T.server { app = APP }
    T.eq(get(s, "/bad-status").status, 500)
    local res, body = get(s, "/teapot")
    T.eq(res.status, 418)
    T.eq(body.error, "I am a teapot")
end)


T.test("error{drop = true} closes the connection without an answer", function()
    local s = T.server { app = APP }
    local res, _, code = s:request("GET", "/drop", { timeout = 5 })
    T.eq(res, nil)
    T.eq(code, "connect")
    T.eq(assert(s:request("GET", "/hello/still")).status, 200)
end)


T.test("reading an undeclared global is an error, not a silent nil", function()
    local s = T.server { app = APP }
    T.eq(get(s, "/global").status, 500)
    s:stop()
    T.contains(s:log(), "undeclared global 'undefined_global_name'")
end)


T.test("request ids are generated, or taken from a well-formed X-Request-ID, and echoed", function()
    local s = T.server { app = APP }
    local res, body = get(s, "/whoami")
    T.match(res.headers["x-request-id"], "^%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x$")
    T.eq(body.id, res.headers["x-request-id"])
    res, body = get(s, "/whoami", { headers = { ["X-Request-ID"] = "caller-id.42" } })
    T.eq(res.headers["x-request-id"], "caller-id.42")
    T.eq(body.id, "caller-id.42")
    res = get(s, "/whoami", { headers = { ["X-Request-ID"] = "bad id\"<>" } })
    T.ne(res.headers["x-request-id"], "bad id\"<>")
    T.eq(body.remote, "127.0.0.1")
    T.eq(body.route, "/whoami")
end)


T.test("handlers set status, headers and content type; a table body is JSON", function()
    local s = T.server { app = APP }
    local res = assert(s:request("GET", "/headers"))
    T.eq(res.status, 201)
    T.eq(res.body, "<p>hi</p>")
    T.eq(res.headers["content-type"], "text/html")
    T.eq(res.headers["x-custom"], "yes")
    res = assert(s:request("DELETE", "/items/3"))
    T.eq(res.status, 204)
end)


T.test("the access log has one JSON line per request and never bodies or credentials", function()
    local s = T.server { app = APP }
    assert(s:request("POST", "/echo?code=oauth-code-value", { body = '{"password":"hunter2"}',
        headers = { Authorization = "Bearer very-secret-token" } }))
    s:stop()
    local found
    for line in s:log():gmatch("[^\n]+") do
        local entry = json.decode(line)
        T.ok(entry, "every log line is JSON: " .. line)
        if entry.msg == "request" and entry.path == "/echo" then
            found = entry
        end
    end
    T.ok(found, "an access log line for the request")
    T.eq(found.method, "POST")
    T.eq(found.status, 200)
    T.match(found.requestId, "^%x+$")
    T.ok(type(found.ms) == "number")
    T.not_contains(s:log(), "hunter2")
    T.not_contains(s:log(), "very-secret-token")
    T.not_contains(s:log(), "oauth-code-value")
end)


T.test("healthz and readyz answer without the app", function()
    local s = T.server { app = APP }
    local res, body = get(s, "/healthz")
    T.eq(res.status, 200)
    T.eq(body.status, "ok")
    res, body = get(s, "/readyz")
    T.eq(res.status, 200)
    T.eq(body.status, "ready")
end)


T.test("metrics count requests by status class in Prometheus text format", function()
    local s = T.server { app = APP, workers = 2 }
    local function scrape()
        local res = assert(s:request("GET", "/metrics"))
        T.eq(res.status, 200)
        T.match(res.headers["content-type"], "^text/plain; version=0.0.4")
        local v = {}
        for name, n in res.body:gmatch("\n([%w_]+[^ \n]*) ([%d.]+)") do v[name] = tonumber(n) end
        return v
    end
    local before = scrape()
    for _ = 1, 3 do assert(s:request("GET", "/hello/m")) end
    assert(s:request("GET", "/nowhere"))
    local after = scrape()
    local function delta(k) return (after[k] or 0) - (before[k] or 0) end
    T.eq(delta('aurora_requests_total{code="2xx"}'), 4, "three hellos and the first scrape")
    T.eq(delta('aurora_requests_total{code="4xx"}'), 1)
    T.eq(delta("aurora_request_duration_seconds_count"), 5)
    T.eq(after["aurora_requests_in_flight"], 1, "the scrape itself")
end)


T.test("a handler past its deadline gets 504, and a busy loop is stopped too", function()
    local s = T.server { app = APP, env = { AURORA_REQUEST_TIMEOUT = "1" } }
    local t0 = require("aurora.time").monotonic()
    local res = assert(s:request("GET", "/sleep?s=5"))
    T.eq(res.status, 504)
    T.eq(json.decode(res.body).error, "the request took too long")
    res = assert(s:request("GET", "/spin"))
    T.eq(res.status, 504)
    T.ok(require("aurora.time").monotonic() - t0 < 4, "both answered near the 1 s deadline")
    T.eq(get(s, "/healthz").status, 200)
end)


T.test("a handler that exceeds the VM memory cap fails alone; the server keeps serving", function()
    local s = T.server { app = APP, env = { AURORA_VM_MEMORY_MB = "64" }, workers = 1 }
    local res = assert(s:request("GET", "/hog"))
    T.eq(res.status, 500)
    T.eq(json.decode(res.body).error, "internal error")
    res = assert(s:request("GET", "/hello/after"))
    T.eq(res.status, 200)
    s:stop()
    T.contains(s:log(), "not enough memory")
end)


T.test("without AURORA_API_TOKEN the server refuses to listen beyond loopback", function()
    local proc = require "aurora.proc"
    local p = T.spawn({ proc.self_exe(), "serve", "--app", APP, "--listen", "0.0.0.0:0" },
        { AURORA_ENV_FILE = "/nonexistent", AURORA_API_TOKEN = "", AURORA_DATA_DIR = T.tmpdir() })
    T.eq({ T.wait_process(p.pid, 10) }, { "exited", 1 })
    T.contains(T.read_file(p.log_file), "refusing to listen beyond loopback without AURORA_API_TOKEN")
end)


T.test("a bad configuration value stops the server with a clear message", function()
    local p = T.spawn({ require("aurora.proc").self_exe(), "serve", "--app", APP, "--listen",
        "127.0.0.1:1" }, { AURORA_WORKERS = "many", AURORA_ENV_FILE = "/nonexistent" })
    local how, code = T.wait_process(p.pid, 10)
    T.eq(how, "exited")
    T.eq(code, 2)
    T.contains(T.read_file(p.log_file), "AURORA_WORKERS must be an integer")
end)


T.test("aurora check accepts a good app and names file and line of a broken one", function()
    local proc = require "aurora.proc"
    local p = T.spawn { proc.self_exe(), "check", "--app", APP }
    local how, code = T.wait_process(p.pid, 10)
    T.eq({ how, code }, { "exited", 0 })
    local dir = T.tmpdir()
    T.write_file(dir .. "/app.lua", "return {\n  [\"GET /x\"] = function() return 200 end\n  oops\n}\n")
    p = T.spawn { proc.self_exe(), "check", "--app", dir }
    how, code = T.wait_process(p.pid, 10)
    T.eq({ how, code }, { "exited", 1 })
    T.match(T.read_file(p.log_file), "app%.lua:3:")
end)


T.test("http.request reports a refused connection as connect", function()
    local port = require("aurora.proc").free_port()
    local res, msg, code = http.request { url = "http://127.0.0.1:" .. port .. "/", timeout = 5 }
    T.eq(res, nil)
    T.eq(code, "connect")
    T.ok(#msg > 0)
end)

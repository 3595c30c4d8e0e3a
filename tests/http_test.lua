-- aurora.http: options, secrets, errors, concurrency.
local T = require "aurora.test"
local http = require "aurora.http"
local json = require "aurora.json"
local secret = require "aurora.secret"
local time = require "aurora.time"

local UP = "tests/fixtures/upstream"


T.test("a bearer secret and a form with a secret reach the server and never the log", function()
    local s = T.server { app = UP }
    local tok <close> = secret.new("tok-abc-123")
    local pw <close> = secret.new("p@ss word&=")
    local res = assert(http.request { method = "POST", url = s.url .. "/auth", bearer = tok,
        form = { client_secret = pw, grant_type = "client_credentials", n = 3 } })
    local body = json.decode(res.body)
    T.eq(body.authorization, "Bearer tok-abc-123")
    T.eq(body.form, "client_secret=p%40ss%20word%26%3D&grant_type=client_credentials&n=3")
    T.eq(body.ctype, "application/x-www-form-urlencoded")
    s:stop()
    T.not_contains(s:log(), "tok-abc-123")
    T.not_contains(s:log(), "p@ss")
end)


T.test("a secret works as a header value and a json option sets the body", function()
    local s = T.server { app = UP }
    local h <close> = secret.new("Basic abc")
    local res = assert(http.request { method = "POST", url = s.url .. "/auth",
        headers = { Authorization = h }, json = { a = json.array({}) } })
    local body = json.decode(res.body)
    T.eq(body.authorization, "Basic abc")
    T.eq(body.form, '{"a":[]}')
    T.eq(body.ctype, "application/json")
end)


T.test("request_many runs requests at once and reports failures per entry", function()
    local s = T.server { app = UP }
    local port = require("aurora.proc").free_port()
    local t0 = time.monotonic()
    local results = http.request_many {
        { url = s.url .. "/slow?ms=300" },
        { url = s.url .. "/slow?ms=300" },
        { url = "http://127.0.0.1:" .. port .. "/" },
    }
    T.ok(time.monotonic() - t0 < 0.55, "concurrent, not one after the other")
    T.eq(results[1].status, 200)
    T.eq(results[2].status, 200)
    T.eq(results[3].status, nil)
    T.eq(results[3].code, "connect")
    T.eq(http.request_many {}, {})
end)


T.test("a slow answer past the timeout fails with timeout", function()
    local s = T.server { app = UP }
    local res, msg, code = http.request { url = s.url .. "/slow?ms=2000", timeout = 0.3 }
    T.eq(res, nil)
    T.eq(code, "timeout")
    T.ok(#msg > 0)
end)


T.test("a reply larger than max_body fails with too_large", function()
    local s = T.server { app = UP }
    local res, _, code = http.request { url = s.url .. "/slow?ms=1", max_body = 4 }
    T.eq(res, nil)
    T.eq(code, "too_large")
end)


T.test("response headers come back with lower-case names", function()
    local s = T.server { app = UP }
    local res = assert(http.request { url = s.url .. "/slow?ms=1",
        headers = { ["X-Request-ID"] = "abc" } })
    T.eq(res.headers["content-type"], "application/json")
    T.eq(res.headers["x-request-id"], "abc")
end)


T.test("misuse raises: no url, unknown option, bad header, two bodies", function()
    T.raises(function() http.request {} end, "'url' is required")
    T.raises(function() http.request { url = "http://127.0.0.1:1/", tiemout = 1 } end,
        "unknown option 'tiemout'")
    T.raises(function() http.request { url = "http://127.0.0.1:1/",
        headers = { ["X-A"] = "a\r\nInjected: yes" } } end, "line break")
    T.raises(function() http.request { url = "http://127.0.0.1:1/", body = "a", json = {} } end,
        "only one of")
    T.raises(function() http.request("http://x") end, "table expected")
end)


T.test("a URL the client cannot use fails with invalid", function()
    local res, _, code = http.request { url = "ftp://127.0.0.1/x" }
    T.eq(res, nil)
    T.eq(code, "invalid")
end)


T.test("escape and form_encode percent-encode everything but unreserved characters", function()
    T.eq(http.escape("a b/c?d=é~"), "a%20b%2Fc%3Fd%3D%C3%A9~")
    T.eq(http.form_encode { b = "2", a = "x y" }, "a=x%20y&b=2")
end)


T.test("query tables are appended to the URL and empty header values are sent", function()
    local s = T.server { app = "tests/fixtures/engine" }
    local res = assert(http.request { url = s.url .. "/hello/q?a=1", query = { b = "x y", c = 2 },
        headers = { ["X-Empty"] = "" } })
    T.eq(json.decode(res.body).query, { a = "1", b = "x y", c = "2" })
    T.raises(function() http.request { url = s.url .. "/x", body = "a" } end,
        "GET request cannot carry a body")
    T.raises(function() http.request { url = s.url .. "/x", max_body = -1 } end, "max_body")
end)


T.test("secret_fields move reply fields into secret handles and out of the body", function()
    local s = T.server { app = UP }
    local tok <close> = secret.new("s3cr3t-\"quoted\"")
    local res = assert(http.request { method = "POST", url = s.url .. "/auth",
        json = { nested = { value = tok }, plain = "x" },
        secret_fields = { "form", "authorization", "missing" } })
    T.ok(res.secrets.form, "a handle for the field")
    T.eq(json.decode(res.secrets.form:reveal()),
        { nested = { value = 's3cr3t-"quoted"' }, plain = "x" })
    T.eq(res.secrets.missing, nil)
    T.not_contains(res.body, "s3cr3t")
    local body = json.decode(res.body)
    T.match(body.form, "^%*+$")
    T.eq(body.ctype, "application/json")
    T.raises(function() http.request { url = s.url .. "/x", secret_fields = "form" } end,
        "secret_fields")
end)


T.test("secret_fields paths go through arrays by index", function()
    local app = T.tmpdir()
    T.write_file(app .. "/app.lua", [[
local json = require "aurora.json"
return { ["POST /creds"] = function()
    return 200, { kubeconfigs = json.array({ { name = "a", value = "first-secret" },
        { name = "b", value = "second-secret" } }), list = json.array({ "x" }) }
end }
]])
    local s = T.server { app = app }
    local res = assert(http.request { method = "POST", url = s.url .. "/creds",
        secret_fields = { "kubeconfigs.1.value", "kubeconfigs.0.value", "kubeconfigs.2.value",
            "kubeconfigs.x.value", "list.0", "list.-1" } })
    T.eq(res.status, 200)
    T.eq(res.secrets["kubeconfigs.0.value"]:reveal(), "first-secret")
    T.eq(res.secrets["kubeconfigs.1.value"]:reveal(), "second-secret")
    T.eq(res.secrets["list.0"]:reveal(), "x")
    T.eq(res.secrets["kubeconfigs.2.value"], nil)
    T.eq(res.secrets["kubeconfigs.x.value"], nil)
    T.eq(res.secrets["list.-1"], nil)
    T.not_contains(res.body, "secret")
    local body = json.decode(res.body)
    T.eq(body.kubeconfigs[2].name, "b")
    T.match(body.kubeconfigs[2].value, "^%*+$")
end)


T.test("json bodies take secret handles only inside aurora.http", function()
    local h <close> = secret.new("v")
    T.eq(json.encode { a = 1 }, '{"a":1}')
    local ok, _, code = json.encode { a = h }
    T.eq(ok, nil)
    T.eq(code, "invalid")
end)

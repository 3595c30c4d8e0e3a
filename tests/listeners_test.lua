-- Several listeners in one server: each serves its own route table, with its own TLS.
local T = require "aurora.test"
local crypto = require "aurora.crypto"
local http = require "aurora.http"
local json = require "aurora.json"
local proc = require "aurora.proc"


T.test("each listener serves its own route table and the handler knows which one it is", function()
    local dir = T.tmpdir()
    local ca_key = crypto.generate_key("ec")
    local ca = crypto.issue_cert { key = ca_key, subject = { CN = "L CA" }, is_ca = true }
    local key = crypto.generate_key("ec")
    local cert = crypto.issue_cert { key = key, subject = { CN = "127.0.0.1" }, ca_cert = ca,
        ca_key = ca_key, sans = { "127.0.0.1" } }
    T.write_file(dir .. "/ca.pem", ca:pem())
    T.write_file(dir .. "/s.pem", cert:pem())
    assert(key:private_pem():write_file(dir .. "/s.key"))
    local p1, p2, p3 = proc.free_port(), proc.free_port(), proc.free_port()
    T.write_file(dir .. "/listeners.json", json.encode {
        { name = "pub-1", routes = "public", listen = "127.0.0.1:" .. p1 },
        { name = "pub-2", routes = "public", listen = "127.0.0.1:" .. p2 },
        { name = "admin", routes = "admin", listen = "127.0.0.1:" .. p3,
          tls_cert = dir .. "/s.pem", tls_key = dir .. "/s.key" },
    })
    local s = T.spawn({ proc.self_exe(), "serve", "--app", "tests/fixtures/multi", "--workers", "2",
        "--listeners", dir .. "/listeners.json" }, { AURORA_ENV_FILE = "/nonexistent",
        AURORA_DATA_DIR = dir })
    local function get(url, opts)
        for _ = 1, 200 do
            local res = http.request { url = url, ca_file = opts and opts.ca_file, timeout = 2 }
            if res then return res end
            require("aurora.time").sleep(0.02)
        end
        error("no answer from " .. url .. ": " .. T.read_file(s.log_file))
    end
    local a = get("http://127.0.0.1:" .. p1 .. "/who")
    T.eq(json.decode(a.body), { listener = "pub-1", route = "/who" })
    T.eq(json.decode(get("http://127.0.0.1:" .. p2 .. "/only-public").body).listener, "pub-2")
    local b = get("https://127.0.0.1:" .. p3 .. "/who", { ca_file = dir .. "/ca.pem" })
    T.eq(json.decode(b.body).listener, "admin")
    T.eq(get("https://127.0.0.1:" .. p3 .. "/only-public", { ca_file = dir .. "/ca.pem" }).status,
        404, "a route of another table is not served here")
    local plain = http.request { url = "http://127.0.0.1:" .. p3 .. "/healthz", timeout = 2 }
    T.ok(not plain or plain.status ~= 200, "the TLS listener does not speak plain HTTP")
    local c = T.spawn { proc.self_exe(), "check", "--app", "tests/fixtures/multi" }
    T.eq({ T.wait_process(c.pid, 10) }, { "exited", 0 })
end)


T.test("a listeners file that names a missing route table stops the server with a message", function()
    local dir = T.tmpdir()
    T.write_file(dir .. "/listeners.json", json.encode {
        { name = "x", routes = "nope", listen = "127.0.0.1:" .. proc.free_port() } })
    local s = T.spawn({ proc.self_exe(), "serve", "--app", "tests/fixtures/multi",
        "--listeners", dir .. "/listeners.json" }, { AURORA_ENV_FILE = "/nonexistent",
        AURORA_DATA_DIR = dir })
    local how, code = T.wait_process(s.pid, 10)
    T.eq({ how, code }, { "exited", 1 })
    T.contains(T.read_file(s.log_file), "route table named 'nope'")
end)

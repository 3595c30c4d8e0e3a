-- TLS: serving HTTPS (with and without client certificates) and aurora.http's verification.
local T = require "aurora.test"
local crypto = require "aurora.crypto"
local json = require "aurora.json"
local http = require "aurora.http"

local APP = "tests/fixtures/engine"


-- A private CA, a server certificate for 127.0.0.1, and client certificates, written to dir.
local function pki(dir)
    local ca_key = crypto.generate_key("ec")
    local ca = crypto.issue_cert { key = ca_key, subject = { CN = "Test CA" }, is_ca = true }
    local key = crypto.generate_key("ec")
    local cert = crypto.issue_cert { key = key, subject = { CN = "127.0.0.1" }, ca_cert = ca,
        ca_key = ca_key, sans = { "127.0.0.1", "localhost" } }
    local ckey = crypto.generate_key("rsa")
    local ccert = crypto.issue_cert { key = ckey, subject = { CN = "kube-admin",
        O = "system:masters" }, ca_cert = ca, ca_key = ca_key, usage = "client" }
    local other_key = crypto.generate_key("ec")
    local other_ca = crypto.issue_cert { key = other_key, subject = { CN = "Other CA" },
        is_ca = true }
    local rogue_key = crypto.generate_key("ec")
    local rogue = crypto.issue_cert { key = rogue_key, subject = { CN = "rogue" },
        ca_cert = other_ca, ca_key = other_key, usage = "client" }
    T.write_file(dir .. "/ca.pem", ca:pem())
    assert(ca_key:private_pem():write_file(dir .. "/ca.key"))
    T.write_file(dir .. "/server.pem", cert:pem())
    assert(key:private_pem():write_file(dir .. "/server.key"))
    return {
        ca = dir .. "/ca.pem", cert = dir .. "/server.pem", key = dir .. "/server.key",
        client_cert = ccert:pem(), client_key = ckey:private_pem(),
        rogue_cert = rogue:pem(), rogue_key = rogue_key:private_pem(),
    }
end


T.test("HTTPS serving works with the CA trusted and is refused without it", function()
    local p = pki(T.tmpdir())
    local s = T.server { app = APP, tls = { cert = p.cert, key = p.key, ca = p.ca } }
    T.match(s.url, "^https://")
    local res = assert(s:request("GET", "/hello/tls"))
    T.eq(json.decode(res.body).hello, "tls")
    local bad, msg, code = http.request { url = s.url .. "/hello/x", timeout = 5 }
    T.eq(bad, nil)
    T.eq(code, "tls")
    T.ok(#msg > 0)
    -- an explicit per-call choice only: no verification at all
    res = assert(http.request { url = s.url .. "/hello/insecure", insecure = true })
    T.eq(res.status, 200)
end)


T.test("client certificates are verified against the client CA and their subject reaches the handler", function()
    local p = pki(T.tmpdir())
    local s = T.server { app = APP, tls = { cert = p.cert, key = p.key, ca = p.ca,
        client_ca = p.ca } }
    local res = assert(s:request("GET", "/whoami", { client_cert = p.client_cert,
        client_key = p.client_key }))
    local body = json.decode(res.body)
    T.ok(body.client_cert, "a verified client certificate")
    T.contains(body.client_cert.subject, "CN=kube-admin")
    T.contains(body.client_cert.subject, "O=system:masters")
    res = assert(s:request("GET", "/whoami"))
    T.eq(json.decode(res.body).client_cert, nil, "no certificate, no subject")
    res = assert(s:request("GET", "/whoami", { client_cert = p.rogue_cert,
        client_key = p.rogue_key }))
    T.eq(json.decode(res.body).client_cert, nil, "a certificate from another CA is not trusted")
    T.eq(json.decode(res.body).client_cert_error, "untrusted")
    res = assert(s:request("GET", "/whoami"))
    T.eq(json.decode(res.body).client_cert_error, nil, "no certificate, no error")
end)


T.test("an expired or not yet valid client certificate is refused and the handler is told why",
    function()
        local dir = T.tmpdir()
        local p = pki(dir)
        local ca = assert(crypto.load_cert(T.read_file(p.ca)))
        local ca_key = assert(crypto.load_key(T.read_file(dir .. "/ca.key")))
        local s = T.server { app = APP, tls = { cert = p.cert, key = p.key, ca = p.ca,
            client_ca = p.ca } }
        local now = os.time()
        for _, case in ipairs { { now - 400 * 86400, now - 35 * 86400, "expired" },
            { now + 86400, now + 2 * 86400, "not_yet_valid" } } do
            local key = crypto.generate_key("ec")
            local cert = assert(crypto.issue_cert { key = key, subject = { CN = "kube-admin",
                O = "system:masters" }, ca_cert = ca, ca_key = ca_key, usage = "client",
                not_before = case[1], not_after = case[2] })
            local res = assert(s:request("GET", "/whoami", { client_cert = cert:pem(),
                client_key = key:private_pem() }))
            local body = json.decode(res.body)
            T.eq(body.client_cert, nil, case[3])
            T.eq(body.client_cert_error, case[3])
        end
    end)


T.test("aurora.http trusts a private CA given as PEM text", function()
    local p = pki(T.tmpdir())
    local s = T.server { app = APP, tls = { cert = p.cert, key = p.key, ca = p.ca } }
    local res = assert(http.request { url = s.url .. "/hello/pem", ca_pem = T.read_file(p.ca) })
    T.eq(res.status, 200)
    T.eq(res.http_version, "1.1")
end)


T.test("AURORA_CA_BUNDLE adds a CA for every outbound call of a server", function()
    local p = pki(T.tmpdir())
    local tls_server = T.server { app = APP, tls = { cert = p.cert, key = p.key, ca = p.ca } }
    local target = http.escape(tls_server.url .. "/hello/bundle")
    local plain = T.server { app = APP }
    local res = assert(plain:request("GET", "/proxy?url=" .. target))
    T.eq(json.decode(res.body).code, "tls", "not trusted without the bundle")
    local with = T.server { app = APP, env = { AURORA_CA_BUNDLE = p.ca } }
    res = assert(with:request("GET", "/proxy?url=" .. target))
    local body = json.decode(res.body)
    T.eq(body.status, 200)
    T.eq(json.decode(body.body).hello, "bundle")
end)


T.test("serve refuses to start with a key but no certificate", function()
    local p = T.spawn({ require("aurora.proc").self_exe(), "serve", "--app", APP, "--tls-key",
        "/nonexistent" }, { AURORA_ENV_FILE = "/nonexistent" })
    local how, code = T.wait_process(p.pid, 10)
    T.eq({ how, code }, { "exited", 2 })
    T.contains(T.read_file(p.log_file), "TLS needs both")
end)

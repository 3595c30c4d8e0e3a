local T = require "aurora.test"
local crypto = require "aurora.crypto"
local secret = require "aurora.secret"


local function hex(s)
    return crypto.hex(s)
end


-- One CA and server/client leaves, issued once: key generation is the slow part.
local PKI = {}


local function pki()
    if PKI.ca then
        return PKI
    end
    PKI.ca_key = crypto.generate_key("ec")
    PKI.ca = crypto.issue_cert {
        key = PKI.ca_key,
        subject = {CN = "Aurora Test CA", O = "Aurora"},
        is_ca = true,
        days = 30,
    }
    PKI.server_key = crypto.generate_key("rsa")
    PKI.server = crypto.issue_cert {
        key = PKI.server_key,
        subject = {CN = "localhost"},
        ca_cert = PKI.ca,
        ca_key = PKI.ca_key,
        sans = {"127.0.0.1", "localhost", "::1"},
        usage = "server",
        days = 10,
    }
    PKI.client_key = crypto.generate_key("ec")
    PKI.client = crypto.issue_cert {
        key = PKI.client_key,
        subject = {CN = "kube-admin", O = {"system:masters", "aurora"}},
        ca_cert = PKI.ca,
        ca_key = PKI.ca_key,
        usage = "client",
    }
    return PKI
end


T.test("sha256 and sha1 match the FIPS 180 vectors for abc", function()
    T.eq(hex(crypto.sha256("abc")),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    T.eq(hex(crypto.sha1("abc")), "a9993e364706816aba3e25717850c26c9cd0d89d")
end)

T.test("hmac_sha256 matches RFC 4231 case 2 with a string or a secret key", function()
    local want = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    T.eq(hex(crypto.hmac_sha256("Jefe", "what do ya want for nothing?")), want)
    local key <close> = secret.new("Jefe")
    T.eq(hex(crypto.hmac_sha256(key, "what do ya want for nothing?")), want)
end)

T.test("hex encodes bytes as lowercase pairs", function()
    T.eq(crypto.hex("\0\255\16"), "00ff10")
    T.eq(crypto.hex(""), "")
end)

T.test("base64 matches the RFC 4648 vectors both ways", function()
    local vectors = {
        {"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"},
        {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"},
    }
    for _, v in ipairs(vectors) do
        T.eq(crypto.b64encode(v[1]), v[2])
        T.eq(crypto.b64decode(v[2]), v[1])
    end
end)

T.test("base64url has no padding and decodes with or without it", function()
    T.eq(crypto.b64url_encode("\251\255"), "-_8")
    T.eq(crypto.b64encode("\251\255"), "+/8=")
    T.eq(crypto.b64url_decode("-_8"), "\251\255")
    T.eq(crypto.b64url_decode("-_8="), "\251\255")
end)

T.test("base64 decoding is strict and returns invalid", function()
    for _, s in ipairs {"Zg=", "Zh==", "Zm9v\n", "Zg", "-_8=", "a"} do
        local v, msg, code = crypto.b64decode(s)
        T.eq(v, nil, s)
        T.eq(code, "invalid")
        T.match(msg, "base64")
    end
    local v, _, code = crypto.b64url_decode("+/8")
    T.eq(v, nil)
    T.eq(code, "invalid")
end)

T.test("b64decode can return a secret handle", function()
    local h <close> = crypto.b64decode("c2VjcmV0", {secret = true})
    T.ok(secret.is_secret(h))
    T.eq(h:reveal(), "secret")
    -- and decode one: base64 of a secret never becomes a Lua string on the way.
    local enc <close> = secret.new("c2VjcmV0")
    local h2 <close> = crypto.b64decode(enc, {secret = true})
    T.eq(h2:reveal(), "secret")
    T.eq(crypto.b64decode(secret.new("!!")), nil)
end)

T.test("equals compares strings and secrets, false for different lengths", function()
    T.eq(crypto.equals("abc", "abc"), true)
    T.eq(crypto.equals("abc", "abd"), false)
    T.eq(crypto.equals("abc", "abcd"), false)
    local s <close> = secret.new("abc")
    T.eq(crypto.equals(s, "abc"), true)
end)

T.test("random returns the requested number of distinct bytes", function()
    T.eq(#crypto.random(32), 32)
    T.eq(#crypto.random(0), 0)
    T.ne(crypto.random(16), crypto.random(16))
    local h <close> = crypto.random(32, {secret = true})
    T.eq(h:len(), 32)
end)

T.test("random raises for a negative or huge count", function()
    T.raises(function() crypto.random(-1) end, "bad argument #1 to 'random'")
    T.raises(function() crypto.random(1 << 40) end, "bad argument #1 to 'random'")
    T.raises(function() crypto.random("x") end, "bad argument #1 to 'random'")
end)

T.test("seal and open round-trip with associated data", function()
    local key = crypto.random(32)
    local box = crypto.seal(key, "hello", "aad")
    T.eq(#box, 5 + 28)
    T.eq(crypto.open(key, box, "aad"), "hello")
    local v, msg, code = crypto.open(key, box, "other")
    T.eq(v, nil)
    T.eq(code, "crypto")
    T.match(msg, "verify")
end)

T.test("seal uses a fresh nonce each time", function()
    local key = crypto.random(32)
    T.ne(crypto.seal(key, "same"), crypto.seal(key, "same"))
end)

T.test("open detects a flipped bit and a wrong key", function()
    local key = crypto.random(32)
    local box = crypto.seal(key, "attack at dawn")
    local bad = box:sub(1, 20) .. string.char(box:byte(21) ~ 1) .. box:sub(22)
    local v, _, code = crypto.open(key, bad)
    T.eq(v, nil)
    T.eq(code, "crypto")
    v, _, code = crypto.open(crypto.random(32), box)
    T.eq(v, nil)
    T.eq(code, "crypto")
end)

T.test("open returns invalid for a box shorter than nonce and tag", function()
    local v, _, code = crypto.open(crypto.random(32), "short")
    T.eq(v, nil)
    T.eq(code, "invalid")
end)

T.test("seal and open accept a secret key and open can return a secret", function()
    local key <close> = crypto.random(32, {secret = true})
    local box = crypto.seal(key, "pa55word")
    local pt <close> = crypto.open(key, box, nil, {secret = true})
    T.ok(secret.is_secret(pt))
    T.eq(pt:reveal(), "pa55word")
end)

T.test("seal raises on misuse", function()
    T.raises(function() crypto.seal(nil, "x") end, "bad argument #1 to 'seal'")
    T.raises(function() crypto.seal("short", "x") end,
        "bad argument #1 to 'seal' %(key must be 32 bytes%)")
    T.raises(function() crypto.seal(crypto.random(32), {}) end, "bad argument #2 to 'seal'")
    T.raises(function() crypto.open(crypto.random(32), nil) end, "bad argument #2 to 'open'")
end)

T.test("generated RSA keys sign and verify RS256 and PS256", function()
    local k = crypto.generate_key("rsa")
    T.eq(k:type(), "rsa")
    T.eq(k:is_private(), true)
    local sig = k:sign("RS256", "data")
    T.eq(#sig, 256)
    T.eq(k:verify("RS256", "data", sig), true)
    T.eq(k:verify("RS256", "datA", sig), false)
    T.eq(k:verify("PS256", "data", k:sign("PS256", "data")), true)
end)

T.test("generated EC keys give 64-byte ES256 signatures", function()
    local k = crypto.generate_key("ec")
    T.eq(k:type(), "ec")
    local sig = k:sign("ES256", "data")
    T.eq(#sig, 64)
    T.eq(k:verify("ES256", "data", sig), true)
    T.eq(k:verify("ES256", "data", sig:sub(1, 63)), false)
end)

T.test("sign raises for an alg that does not fit the key", function()
    local k = crypto.generate_key("ec")
    T.raises(function() k:sign("RS256", "x") end, "does not fit")
    T.raises(function() k:sign("none", "x") end, "invalid option 'none'")
    T.raises(function() k:sign("ES256") end, "bad argument")
end)

T.test("keys round-trip through PEM and the private PEM is a secret", function()
    local k = crypto.generate_key("ec")
    local pem <close> = k:private_pem()
    T.ok(secret.is_secret(pem))
    T.match(pem:reveal(), "^%-%-%-%-%-BEGIN PRIVATE KEY")
    local again = crypto.load_key(pem)
    T.eq(again:public_pem(), k:public_pem())
    local pub = crypto.load_key(k:public_pem())
    T.eq(pub:is_private(), false)
    T.eq(pub:verify("ES256", "m", k:sign("ES256", "m")), true)
    T.raises(function() pub:sign("ES256", "m") end, "no private part")
    T.raises(function() pub:private_pem() end, "no private part")
end)

T.test("load_key returns invalid for garbage", function()
    local k, msg, code = crypto.load_key("not a pem")
    T.eq(k, nil)
    T.eq(code, "invalid")
    T.match(msg, "PEM")
    T.raises(function() crypto.load_key(42) end, "bad argument #1 to 'load_key'")
end)

T.test("public_jwk gives base64url members", function()
    local ec = crypto.generate_key("ec"):public_jwk()
    T.eq(ec.kty, "EC")
    T.eq(ec.crv, "P-256")
    T.eq(#ec.x, 43)
    T.eq(#ec.y, 43)
    local rsa = crypto.generate_key("rsa"):public_jwk()
    T.eq(rsa.kty, "RSA")
    T.eq(rsa.e, "AQAB")
    T.eq(#crypto.b64url_decode(rsa.n), 256)
end)

T.test("closing a key twice is harmless and tostring shows only the type", function()
    local k = crypto.generate_key("ec")
    T.eq(tostring(k), "aurora.crypto.key(ec)")
    k:close()
    k:close()
    T.eq(tostring(k), "aurora.crypto.key(closed)")
    T.raises(function() k:type() end, "closed key")
end)

T.test("generate_key raises for an unknown type or too few bits", function()
    T.raises(function() crypto.generate_key("dsa") end, "bad argument #1 to 'generate_key'")
    T.raises(function() crypto.generate_key("rsa", 1024) end, "bad argument #2 to 'generate_key'")
end)

T.test("issue_cert builds a CA and a server cert with an IP SAN", function()
    local p = pki()
    T.eq(p.server:verify_signed_by(p.ca), true)
    T.eq(p.ca:verify_signed_by(p.ca), true)
    T.eq(p.ca:verify_signed_by(p.server), false)
    T.eq(p.server:sans(), {"IP:127.0.0.1", "DNS:localhost", "IP:::1"})
    T.eq(#p.server:x5t(), 27)
    T.eq(#p.server:x5t_s256(), 43)
    T.eq(p.server:x5t(), crypto.b64url_encode(crypto.sha1(p.server:der())))
    T.eq(p.server:thumbprint("sha256"), crypto.sha256(p.server:der()))
    T.eq(p.server:subject(), "CN=localhost")
    T.eq(p.server:issuer(), "CN=Aurora Test CA,O=Aurora")
    T.eq(p.server:common_name(), "localhost")
    T.match(p.server:serial(), "^[0-9a-f]+$")
end)

T.test("issued certs carry their validity period in unix seconds", function()
    local p = pki()
    local now = os.time()
    T.eq(math.type(p.server:not_before()), "integer")
    T.ok(p.server:not_before() <= now)
    T.ok(math.abs(p.server:not_after() - (now + 10 * 86400)) < 120)
end)

T.test("not_before and not_after set exact dates, an expired certificate included", function()
    local p = pki()
    local now = os.time()
    local nb, na = now - 400 * 86400, now - 35 * 86400
    local c = assert(crypto.issue_cert { key = p.client_key, subject = { CN = "old-admin" },
        ca_cert = p.ca, ca_key = p.ca_key, usage = "client", not_before = nb, not_after = na })
    T.eq(c:not_before(), nb)
    T.eq(c:not_after(), na)
    T.ok(c:not_after() < now, "already expired")
    T.eq(c:verify_signed_by(p.ca), true, "still signed by its CA")
    -- Beyond 2049 an X.509 time is a GeneralizedTime; it reads back the same.
    local far = assert(crypto.issue_cert { key = p.client_key, not_before = now,
        not_after = 4102444800 + 86400 })
    T.eq(far:not_after(), 4102444800 + 86400)
end)

T.test("issue_cert raises when not_before/not_after are misused", function()
    local p = pki()
    local now = os.time()
    T.raises(function() crypto.issue_cert { key = p.ca_key, not_before = now } end, "both")
    T.raises(function() crypto.issue_cert { key = p.ca_key, not_after = now } end, "both")
    T.raises(function() crypto.issue_cert { key = p.ca_key, not_before = now, not_after = now }
    end, "not_before must be before not_after")
    T.raises(function() crypto.issue_cert { key = p.ca_key, not_before = now + 10,
        not_after = now } end, "not_before must be before not_after")
    T.raises(function() crypto.issue_cert { key = p.ca_key, not_before = "yesterday",
        not_after = now } end, "integers")
    T.raises(function() crypto.issue_cert { key = p.ca_key, not_before = now - 1.5,
        not_after = now } end, "integers")
    T.raises(function() crypto.issue_cert { key = p.ca_key, days = 3, not_before = now - 10,
        not_after = now } end, "exclude each other")
end)

T.test("a client cert keeps several O values and its public key verifies", function()
    local p = pki()
    T.eq(p.client:subject(), "CN=kube-admin,O=aurora,O=system:masters")
    T.eq(p.client:sans(), {})
    local pub = p.client:public_key()
    T.eq(pub:is_private(), false)
    T.eq(pub:verify("ES256", "x", p.client_key:sign("ES256", "x")), true)
end)

T.test("certificates round-trip through PEM", function()
    local p = pki()
    local c = crypto.load_cert(p.server:pem())
    T.eq(c:der(), p.server:der())
    T.eq(c:verify_signed_by(p.ca), true)
    local junk = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    local v, _, code = crypto.load_cert(junk)
    T.eq(v, nil)
    T.eq(code, "invalid")
end)

T.test("issue_cert raises on misuse", function()
    local p = pki()
    T.raises(function() crypto.issue_cert() end, "bad argument #1 to 'issue_cert'")
    T.raises(function() crypto.issue_cert {subject = {CN = "x"}} end, "key")
    T.raises(function() crypto.issue_cert {key = p.ca_key, subject = {cn = "x"}} end,
        "unknown attribute")
    T.raises(function() crypto.issue_cert {key = p.ca_key, colour = "red"} end, "unknown field")
    T.raises(function() crypto.issue_cert {key = p.ca_key, ca_cert = p.ca} end, "go together")
    T.raises(function() crypto.issue_cert {key = p.ca_key, days = 0} end, "days")
    T.raises(function() crypto.issue_cert {key = p.ca_key, usage = "web"} end,
        "invalid option 'web'")
end)

T.test("issue_cert returns invalid for a bad SAN or a ca_key that does not match", function()
    local p = pki()
    local c, _, code = crypto.issue_cert {key = p.client_key, sans = {"bad name"}}
    T.eq(c, nil)
    T.eq(code, "invalid")
    c, _, code = crypto.issue_cert {key = p.client_key, ca_cert = p.ca, ca_key = p.client_key}
    T.eq(c, nil)
    T.eq(code, "invalid")
end)

T.test("a private key written with write_file loads back", function()
    local k = crypto.generate_key("ec")
    local pem <close> = k:private_pem()
    local path = os.tmpname()
    T.eq(pem:write_file(path), true)
    local back <close> = secret.from_file(path)
    os.remove(path)
    T.eq(crypto.load_key(back):public_pem(), k:public_pem())
    local ok, _, code = pem:write_file("/nonexistent-dir/key.pem")
    T.eq(ok, nil)
    T.eq(code, "not_found")
end)

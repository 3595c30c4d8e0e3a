local T = require "aurora.test"
local crypto = require "aurora.crypto"
local json = require "aurora.json"
local jwt = require "aurora.jwt"
local secret = require "aurora.secret"


local NOW = 1700000000

-- Keys are generated once: RSA generation is the slow part.
local KEYS = {}


local function keys()
    if not KEYS.rsa then
        KEYS.rsa = crypto.generate_key("rsa")
        KEYS.ec = crypto.generate_key("ec")
        KEYS.other = crypto.generate_key("ec")
    end
    return KEYS
end


local function claims(extra)
    local c = {
        sub = "client-id",
        iss = "https://issuer.test/",
        aud = "api://aurora",
        exp = NOW + 600,
        nbf = NOW - 10,
        iat = NOW,
    }
    for k, v in pairs(extra or {}) do
        c[k] = v
    end
    return c
end


-- A token with the given header and claims tables and a junk signature.
local function forge(header, body)
    return crypto.b64url_encode(json.encode(header)) .. "."
        .. crypto.b64url_encode(json.encode(body)) .. "." .. crypto.b64url_encode("sig")
end


T.test("sign and verify round-trip with an RSA key and RS256 by default", function()
    local k = keys().rsa
    local tok = jwt.sign(claims(), k, {kid = "key-1"})
    T.match(tok, "^[%w_-]+%.[%w_-]+%.[%w_-]+$")
    local c, h = jwt.verify(tok, k, {now = NOW})
    T.eq(c.sub, "client-id")
    T.eq(h.alg, "RS256")
    T.eq(h.typ, "JWT")
    T.eq(h.kid, "key-1")
end)

T.test("sign and verify round-trip with an EC key and ES256 by default", function()
    local k = keys().ec
    local tok = jwt.sign(claims(), k)
    local c, h = jwt.verify(tok, k, {now = NOW})
    T.eq(h.alg, "ES256")
    T.eq(c.aud, "api://aurora")
end)

T.test("PS256 works when allowed and is refused by default", function()
    local k = keys().rsa
    local tok = jwt.sign(claims(), k, {alg = "PS256"})
    local c = jwt.verify(tok, k, {now = NOW, algs = {"PS256"}})
    T.eq(c.sub, "client-id")
    local v, _, code = jwt.verify(tok, k, {now = NOW})
    T.eq(v, nil)
    T.eq(code, "invalid")
end)

T.test("verify accepts a certificate instead of a key", function()
    local k = keys().ec
    local cert = crypto.issue_cert {key = k, subject = {CN = "client"}, usage = "client"}
    local tok = jwt.sign(claims(), k, {x5t = cert:x5t(), ["x5t#S256"] = cert:x5t_s256()})
    local c, h = jwt.verify(tok, cert, {now = NOW})
    T.eq(c.sub, "client-id")
    T.eq(h.x5t, cert:x5t())
    T.eq(h["x5t#S256"], cert:x5t_s256())
end)

T.test("decode returns header and claims without verifying", function()
    local tok = jwt.sign(claims(), keys().ec, {typ = "at+jwt", header = {cty = "x"}})
    local h, c = jwt.decode(tok)
    T.eq(h.typ, "at+jwt")
    T.eq(h.cty, "x")
    T.eq(c.iss, "https://issuer.test/")
    T.eq(c.exp, NOW + 600)
end)

T.test("decode and verify accept a secret handle and sign can return one", function()
    local k = keys().ec
    local tok <close> = jwt.sign(claims(), k, {secret = true})
    T.ok(secret.is_secret(tok))
    local _, c = jwt.decode(tok)
    T.eq(c.sub, "client-id")
    T.eq(jwt.verify(tok, k, {now = NOW}).sub, "client-id")
end)

T.test("decode returns invalid for malformed tokens", function()
    local malformed = {"", "abc", "a.b", "a.b.c.d", "!!.e30.", "e30.bm90IGpzb24.", "WzFd.e30."}
    for _, bad in ipairs(malformed) do
        local v, msg, code = jwt.decode(bad)
        T.eq(v, nil, bad)
        T.eq(code, "invalid", bad)
        T.match(msg, "token")
    end
end)

T.test("decode returns too_large for a token over 16 KiB", function()
    local v, _, code = jwt.decode(string.rep("a", 16 * 1024) .. ".e30.")
    T.eq(v, nil)
    T.eq(code, "too_large")
end)

T.test("verify returns crypto for a token signed by another key", function()
    local tok = jwt.sign(claims(), keys().other)
    local v, msg, code = jwt.verify(tok, keys().ec, {now = NOW})
    T.eq(v, nil)
    T.eq(code, "crypto")
    T.match(msg, "signature")
end)

T.test("verify returns crypto for a token whose claims were changed", function()
    local tok = jwt.sign(claims(), keys().ec)
    local h, p, s = tok:match("^([^.]+)%.([^.]+)%.([^.]+)$")
    local forged = crypto.b64url_encode(crypto.b64url_decode(p):gsub("client%-id", "admin-id"))
    local v, _, code = jwt.verify(h .. "." .. forged .. "." .. s, keys().ec, {now = NOW})
    T.eq(v, nil)
    T.eq(code, "crypto")
end)

T.test("verify never accepts alg none, even when listed", function()
    local tok = forge({alg = "none"}, claims()):gsub("[^.]+$", "")
    local v, _, code = jwt.verify(tok, keys().ec, {now = NOW, algs = {"none", "ES256"}})
    T.eq(v, nil)
    T.eq(code, "invalid")
end)

T.test("verify returns invalid for an alg outside the allow-list or unfit for the key", function()
    local tok = jwt.sign(claims(), keys().ec)
    local v, _, code = jwt.verify(tok, keys().ec, {now = NOW, algs = {"RS256"}})
    T.eq(v, nil)
    T.eq(code, "invalid")
    local hs = forge({alg = "HS256"}, claims())
    v, _, code = jwt.verify(hs, keys().ec, {now = NOW, algs = {"HS256"}})
    T.eq(v, nil)
    T.eq(code, "invalid")
    v, _, code = jwt.verify(forge({alg = "RS256"}, claims()), keys().ec, {now = NOW})
    T.eq(v, nil)
    T.eq(code, "invalid")
end)

T.test("verify returns expired once exp plus leeway has passed", function()
    local k = keys().ec
    local tok = jwt.sign(claims {exp = NOW - 30}, k)
    T.eq(jwt.verify(tok, k, {now = NOW}).sub, "client-id")
    local v, msg, code = jwt.verify(tok, k, {now = NOW, leeway = 0})
    T.eq(v, nil)
    T.eq(code, "expired")
    T.match(msg, "expired")
    v, msg, code = jwt.verify(jwt.sign(claims {exp = NOW - 61}, k), k, {now = NOW})
    T.eq(code, "expired")
end)

T.test("verify uses the real clock without opts.now", function()
    local k = keys().ec
    local v, _, code = jwt.verify(jwt.sign(claims(), k), k)
    T.eq(v, nil)
    T.eq(code, "expired")
    T.ok(jwt.verify(jwt.sign(claims {exp = os.time() + 600, nbf = os.time()}, k), k))
end)

T.test("verify returns invalid for a token not valid yet", function()
    local k = keys().ec
    local v, _, code = jwt.verify(jwt.sign(claims {nbf = NOW + 120}, k), k, {now = NOW})
    T.eq(v, nil)
    T.eq(code, "invalid")
end)

T.test("verify returns denied for a wrong audience or issuer", function()
    local k = keys().ec
    local tok = jwt.sign(claims {aud = {"api://one", "api://two"}}, k)
    T.eq(jwt.verify(tok, k, {now = NOW, aud = "api://two"}).sub, "client-id")
    T.eq(jwt.verify(tok, k, {now = NOW, aud = {"api://x", "api://one"}}).sub, "client-id")
    local v, _, code = jwt.verify(tok, k, {now = NOW, aud = "api://three"})
    T.eq(v, nil)
    T.eq(code, "denied")
    v, _, code = jwt.verify(tok, k, {now = NOW, iss = "https://evil.test/"})
    T.eq(v, nil)
    T.eq(code, "denied")
    T.eq(jwt.verify(tok, k, {now = NOW, iss = {"https://issuer.test/"}}).sub, "client-id")
    local no_aud = jwt.sign({sub = "x", exp = NOW + 60}, k)
    v, _, code = jwt.verify(no_aud, k, {now = NOW, aud = "api://one"})
    T.eq(code, "denied")
end)

T.test("verify returns invalid when exp is not a number", function()
    local k = keys().ec
    local v, _, code = jwt.verify(jwt.sign(claims {exp = "tomorrow"}, k), k, {now = NOW})
    T.eq(v, nil)
    T.eq(code, "invalid")
end)

T.test("sign and verify raise on misuse", function()
    local k = keys().ec
    T.raises(function() jwt.sign("claims", k) end, "bad argument #1 to 'sign'")
    T.raises(function() jwt.sign({}, "key") end, "bad argument #2 to 'sign'")
    T.raises(function() jwt.sign({}, k, {alg = "RS256"}) end, "does not fit")
    T.raises(function() jwt.sign({}, k, {alg = "none"}) end, "bad argument #3 to 'sign'")
    T.raises(function() jwt.sign({}, k, {colour = 1}) end, "unknown option 'colour'")
    T.raises(function() jwt.sign({}, k, {header = {alg = "none"}}) end, "cannot set alg")
    T.raises(function() jwt.sign({}, crypto.load_key(k:public_pem())) end, "no private part")
    T.raises(function() jwt.sign({f = print}, k) end, "bad argument #1 to 'sign'")
    T.raises(function() jwt.verify("a.b.c", "key") end, "bad argument #2 to 'verify'")
    T.raises(function() jwt.verify(nil, k) end, "bad argument #1 to 'verify'")
    T.raises(function() jwt.verify("a.b.c", k, {leeway = "x"}) end, "leeway")
    T.raises(function() jwt.decode(42) end, "bad argument #1 to 'decode'")
end)

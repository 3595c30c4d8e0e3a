-- Access tokens: RS256 JWTs signed with the simulator's key (created by launch.lua), and the
-- check every resource server (ARM, Graph, Kubernetes) makes of a bearer token.
local crypto = require "aurora.crypto"
local jwt = require "aurora.jwt"
local secret = require "aurora.secret"
local sim = require "sim"

local M = {}

local key, kid


local function signing_key()
    if not key then
        local pem <close> = assert(secret.from_file(sim.config.signing_key))
        key = assert(crypto.load_key(pem))
        kid = crypto.b64url_encode(crypto.sha256(key:public_pem())):sub(1, 27)
    end
    return key, kid
end


--- The public key set served at /{tenant}/discovery/v2.0/keys.
function M.jwks()
    local k, id = signing_key()
    local jwk = k:public_jwk()
    jwk.kid, jwk.use, jwk.alg = id, "sig", "RS256"
    return { keys = { jwk } }
end


--- Mints an access token. claims: aud, tid, oid, appid (and any other claim); lifetime in
-- seconds (default: the scenario's token_lifetime). Returns the token and its lifetime.
function M.mint(claims, lifetime)
    local k, id = signing_key()
    local now = os.time()
    lifetime = lifetime or sim.knobs.token_lifetime or sim.scenario.token_lifetime or 3600
    claims.iat, claims.nbf, claims.exp = now, now - 300, now + lifetime
    claims.ver = claims.ver or "1.0"
    claims.iss = claims.iss or ("https://sts.windows.net/" .. claims.tid .. "/")
    claims.uti = claims.uti or sim.uuid()
    return jwt.sign(claims, k, { alg = "RS256", kid = id, x5t = id }), lifetime
end


--- Checks the request's bearer token for one of the audiences. Returns the claims, or nil and
-- a reason: "missing", "expired" or "invalid".
function M.check(req, audiences)
    local h = req.headers.authorization
    local token = h and h:match("^[Bb]earer%s+(%S+)$")
    if not token then
        return nil, "missing"
    end
    local claims, msg, code = jwt.verify(token, signing_key(), { aud = audiences,
        algs = { "RS256" }, leeway = 0 })
    if not claims then
        return nil, code == "expired" and "expired" or "invalid", msg
    end
    return claims
end

return M

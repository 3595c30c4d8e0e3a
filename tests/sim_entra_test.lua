-- The simulated Entra ID (tests/sim/entra.lua): tokens by secret, certificate and auth code,
-- the AADSTS errors real clients see, discovery documents and the signing keys.
local T = require "aurora.test"
local crypto = require "aurora.crypto"
local harness = require "sim.harness"
local http = require "aurora.http"
local json = require "aurora.json"
local jwt = require "aurora.jwt"
local secret = require "aurora.secret"

-- From tests/sim/scenarios/default.lua.
local SP_OBJECT_ID = "7c8d9e0f-1a2b-4c3d-8e4f-5a6b7c8d9e0f"
local EXPIRED_APP = "3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e60"
local EXPIRED_SECRET = "sim-secret-expired-0003"
local DOMAIN = "contoso-sim.onmicrosoft.com"
local AKS = "6dae42f8-4368-4678-94ff-3960e28e3630"
local ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


local function token_path(sim, tenant)
    return "/" .. (tenant or sim.env.SIM_TENANT) .. "/oauth2/v2.0/token"
end


local function post_token(sim, form, opts)
    opts = opts or {}
    local tenant = form._tenant
    form._tenant = nil
    opts.form = form
    local res = assert(sim:request("login", "POST", token_path(sim, tenant), opts))
    return res, json.decode(res.body)
end


local function creds(sim, extra)
    local f = { grant_type = "client_credentials", client_id = sim.env.SIM_CLIENT_ID,
        client_secret = sim.env.SIM_CLIENT_SECRET, scope = "https://management.azure.com/.default" }
    for k, v in pairs(extra or {}) do
        if v == false then f[k] = nil else f[k] = v end
    end
    return f
end


--- Checks the §1.7 error shape and returns the body.
local function expect_error(res, status, err, code)
    T.eq(res.status, status, res.body)
    local b = json.decode(res.body)
    T.eq(b.error, err)
    T.match(b.error_description, "^AADSTS" .. code .. ": ")
    T.match(b.error_description, "\r\nTrace ID: %x+%-[%x-]+\r\nCorrelation ID: [%x-]+\r\n" ..
        "Timestamp: %d%d%d%d%-%d%d%-%d%d %d%d:%d%d:%d%dZ$")
    T.eq(b.error_codes, { code })
    T.match(b.timestamp, "^%d%d%d%d%-%d%d%-%d%d %d%d:%d%d:%d%dZ$")
    T.match(b.trace_id, "^[%x-]+$")
    T.match(b.correlation_id, "^[%x-]+$")
    T.match(b.error_uri, "/error%?code=" .. code .. "$")
    return b
end


T.test("a client secret gets an app token with the claims ARM reads", function()
    local sim = harness.start()
    local res, body = post_token(sim, creds(sim))
    T.eq(res.status, 200, res.body)
    T.match(res.headers["content-type"], "^application/json")
    T.contains(res.headers["cache-control"], "no-store")
    T.eq(res.headers["pragma"], "no-cache")
    T.eq(body.token_type, "Bearer")
    T.eq(math.type(body.expires_in), "integer")
    T.eq(math.type(body.ext_expires_in), "integer")
    T.eq(body.refresh_token, nil)
    T.eq(body.id_token, nil)
    local header, claims = jwt.decode(body.access_token)
    T.eq(header.alg, "RS256")
    T.eq(claims.aud, "https://management.azure.com/")
    T.eq(claims.tid, sim.env.SIM_TENANT)
    T.eq(claims.iss, "https://sts.windows.net/" .. sim.env.SIM_TENANT .. "/")
    T.eq(claims.oid, SP_OBJECT_ID)
    T.eq(claims.sub, SP_OBJECT_ID)
    T.eq(claims.appid, sim.env.SIM_CLIENT_ID)
    T.eq(claims.azp, sim.env.SIM_CLIENT_ID)
    T.eq(claims.appidacr, "1")
    T.eq(claims.idtyp, "app")
    T.ok(claims.exp > os.time() + 60)
    T.ok(math.abs(claims.exp - os.time() - body.expires_in) <= 2)
end)


T.test("every scope form real clients send maps to its audience", function()
    local sim = harness.start()
    local cases = {
        ["https://management.core.windows.net//.default"] = "https://management.core.windows.net/",
        ["https://management.azure.com/.default"] = "https://management.azure.com/",
        ["https://graph.microsoft.com/.default"] = "https://graph.microsoft.com",
        [sim.env.SIM_GRAPH_URL .. "/.default"] = sim.env.SIM_GRAPH_URL,
        [sim.env.SIM_GRAPH_URL .. "//.default"] = sim.env.SIM_GRAPH_URL .. "/",
        [AKS .. "/.default"] = AKS,
        ["https://management.azure.com/.default openid offline_access profile"] =
            "https://management.azure.com/",
    }
    for scope, aud in pairs(cases) do
        local tok, status = sim:token(scope)
        T.eq(status, 200, scope)
        local _, claims = jwt.decode(tok)
        T.eq(claims.aud, aud, scope)
    end
    -- The secret may also come as HTTP Basic (client_secret_basic).
    local res, body = post_token(sim, { grant_type = "client_credentials",
        scope = AKS .. "/.default" }, { headers = { Authorization = "Basic " ..
        crypto.b64encode(sim.env.SIM_CLIENT_ID .. ":" .. sim.env.SIM_CLIENT_SECRET) } })
    T.eq(res.status, 200, res.body)
    T.ok(body.access_token)
    -- The tenant may be named by its domain.
    res = post_token(sim, creds(sim, { _tenant = DOMAIN }))
    T.eq(res.status, 200, res.body)
end)


T.test("a wrong secret is 401 invalid_client AADSTS7000215 in Entra's error shape", function()
    local sim = harness.start()
    local res = post_token(sim, creds(sim, { client_secret = "not-the-secret" }),
        { headers = { ["client-request-id"] = "0e5a1b7c-0000-4000-8000-000000000001" } })
    local b = expect_error(res, 401, "invalid_client", 7000215)
    T.contains(b.error_description, sim.env.SIM_CLIENT_ID)
    T.eq(b.correlation_id, "0e5a1b7c-0000-4000-8000-000000000001")
    T.contains(res.headers["cache-control"], "no-store")
    -- The secret's id is not the secret.
    res = post_token(sim, creds(sim, { client_secret = "8d9e0f1a-2b3c-4d4e-9f5a-6b7c8d9e0f1a" }))
    expect_error(res, 401, "invalid_client", 7000215)
end)


T.test("an expired secret is 401 AADSTS7000222, and the knob expires every secret", function()
    local sim = harness.start()
    local res = post_token(sim, creds(sim, { client_id = EXPIRED_APP,
        client_secret = EXPIRED_SECRET }))
    expect_error(res, 401, "invalid_client", 7000222)
    sim:knobs { expire_all_secrets = true }
    res = post_token(sim, creds(sim))
    local b = expect_error(res, 401, "invalid_client", 7000222)
    T.contains(b.error_description, "are expired")
    assert(sim:request("login", "POST", "/_sim/reset"))
    res = post_token(sim, creds(sim))
    T.eq(res.status, 200, "a reset clears the knob")
end)


T.test("unknown apps, tenants, scopes and grants get their AADSTS codes", function()
    local sim = harness.start()
    local res = post_token(sim, creds(sim, { client_id = "11111111-2222-4333-8444-555555555555" }))
    local b = expect_error(res, 400, "unauthorized_client", 700016)
    T.contains(b.error_description, "11111111-2222-4333-8444-555555555555")
    res = post_token(sim, creds(sim, { _tenant = "99999999-8888-4777-8666-555555555555" }))
    expect_error(res, 400, "invalid_tenant", 90002)
    res = post_token(sim, creds(sim, { _tenant = "not_a_tenant" }))
    expect_error(res, 400, "invalid_request", 900023)
    res = post_token(sim, creds(sim, { scope = "https://management.azure.com/user_impersonation" }))
    expect_error(res, 400, "invalid_scope", 1002012)
    res = post_token(sim, creds(sim, { scope = "openid profile" }))
    expect_error(res, 400, "invalid_scope", 1002012)
    res = post_token(sim, creds(sim, {
        scope = "https://management.azure.com/.default https://graph.microsoft.com/.default" }))
    expect_error(res, 400, "invalid_scope", 70011)
    res = post_token(sim, creds(sim, { scope = "https://unknown.example.com/.default" }))
    expect_error(res, 400, "invalid_resource", 500011)
    res = post_token(sim, creds(sim, { scope = false }))
    expect_error(res, 400, "invalid_request", 900144)
    res = post_token(sim, creds(sim, { grant_type = "password" }))
    expect_error(res, 400, "unsupported_grant_type", 70003)
    res = post_token(sim, creds(sim, { grant_type = false }))
    expect_error(res, 400, "invalid_request", 900144)
    res = post_token(sim, creds(sim, { client_secret = false }))
    expect_error(res, 401, "invalid_client", 7000216)
end)


--- A self-signed certificate and key for a client assertion, registered on the default app.
local function register_cert(sim, app_id)
    local key = crypto.generate_key("rsa", 2048)
    local cert = crypto.issue_cert { key = key, subject = { CN = "aurora-test-sp" },
        usage = "client", days = 2 }
    local res = assert(sim:request("login", "POST", "/_sim/entra/certificates",
        { json = { appId = app_id or sim.env.SIM_CLIENT_ID, pem = cert:pem() } }))
    T.eq(res.status, 201, res.body)
    local b = json.decode(res.body)
    T.eq(b.x5t, cert:x5t())
    T.eq(b.thumbprint, crypto.hex(cert:thumbprint("sha1")):upper())
    return key, cert
end


local function assertion(sim, key, claims, opts)
    local now = os.time()
    local c = { aud = sim.env.SIM_LOGIN_URL .. token_path(sim), iss = sim.env.SIM_CLIENT_ID,
        sub = sim.env.SIM_CLIENT_ID, jti = crypto.hex(crypto.random(16)), iat = now,
        exp = now + 600 }
    for k, v in pairs(claims or {}) do c[k] = v end
    for k, v in pairs(c) do
        if v == false then c[k] = nil end
    end
    return jwt.sign(c, key, opts)
end


local function cert_form(sim, token)
    return { grant_type = "client_credentials", client_id = sim.env.SIM_CLIENT_ID,
        scope = "https://management.azure.com/.default", client_assertion_type = ASSERTION_TYPE,
        client_assertion = token }
end


T.test("a certificate assertion (RS256 x5t, or PS256 padded x5t#S256) gets a token", function()
    local sim = harness.start()
    local key, cert = register_cert(sim)
    local res, body = post_token(sim, cert_form(sim, assertion(sim, key, nil,
        { alg = "RS256", x5t = cert:x5t() })))
    T.eq(res.status, 200, res.body)
    local _, claims = jwt.decode(body.access_token)
    T.eq(claims.appidacr, "2")
    T.eq(claims.oid, SP_OBJECT_ID)
    -- MSAL Python: PS256, x5t#S256 with its "=" padding kept, aud with the tenant's domain.
    local padded = crypto.b64encode(cert:thumbprint("sha256")):gsub("+", "-"):gsub("/", "_")
    T.match(padded, "=$")
    res = post_token(sim, cert_form(sim, assertion(sim, key,
        { aud = sim.env.SIM_LOGIN_URL .. "/" .. DOMAIN .. "/oauth2/v2.0/token" },
        { alg = "PS256", ["x5t#S256"] = padded })))
    T.eq(res.status, 200, res.body)
end)


T.test("bad certificate assertions are 401 invalid_client with their AADSTS codes", function()
    local sim = harness.start()
    local key, cert = register_cert(sim)
    local x5t = { x5t = cert:x5t() }
    -- An unregistered certificate.
    local other = crypto.generate_key("rsa", 2048)
    local other_cert = crypto.issue_cert { key = other, subject = { CN = "stranger" }, days = 1 }
    local res = post_token(sim, cert_form(sim, assertion(sim, other, nil,
        { x5t = other_cert:x5t() })))
    local b = expect_error(res, 401, "invalid_client", 700027)
    T.contains(b.error_description, "The key was not found")
    -- The registered thumbprint, signed by another key.
    res = post_token(sim, cert_form(sim, assertion(sim, other, nil, x5t)))
    expect_error(res, 401, "invalid_client", 700027)
    -- Expired, and without exp.
    res = post_token(sim, cert_form(sim, assertion(sim, key, { exp = os.time() - 3600,
        iat = os.time() - 4000 }, x5t)))
    expect_error(res, 401, "invalid_client", 700024)
    res = post_token(sim, cert_form(sim, assertion(sim, key, { exp = false }, x5t)))
    expect_error(res, 401, "invalid_client", 700024)
    -- Another audience, another issuer.
    res = post_token(sim, cert_form(sim, assertion(sim, key,
        { aud = "https://login.microsoftonline.com/" .. sim.env.SIM_TENANT ..
            "/oauth2/v2.0/token" }, x5t)))
    expect_error(res, 401, "invalid_client", 700212)
    res = post_token(sim, cert_form(sim, assertion(sim, key,
        { iss = "someone-else", sub = "someone-else" }, x5t)))
    expect_error(res, 401, "invalid_client", 700021)
    -- Not a JWT at all.
    res = post_token(sim, cert_form(sim, "not.a-jwt"))
    expect_error(res, 401, "invalid_client", 50027)
end)


T.test("the OpenID configuration points every endpoint at the simulator", function()
    local sim = harness.start()
    local login = sim.env.SIM_LOGIN_URL
    local res = assert(sim:request("login", "GET", "/" .. sim.env.SIM_TENANT ..
        "/v2.0/.well-known/openid-configuration"))
    T.eq(res.status, 200)
    T.contains(res.headers["cache-control"], "max-age=86400")
    local c = json.decode(res.body)
    local t = login .. "/" .. sim.env.SIM_TENANT
    T.eq(c.issuer, t .. "/v2.0")
    T.eq(c.token_endpoint, t .. "/oauth2/v2.0/token")
    T.eq(c.authorization_endpoint, t .. "/oauth2/v2.0/authorize")
    T.eq(c.device_authorization_endpoint, t .. "/oauth2/v2.0/devicecode")
    T.eq(c.jwks_uri, t .. "/discovery/v2.0/keys")
    T.eq(c.token_endpoint_auth_methods_supported, { "client_secret_post", "private_key_jwt",
        "client_secret_basic" })
    T.eq(c.response_modes_supported, { "query", "fragment", "form_post" })
    T.eq(c.cloud_instance_name, "microsoftonline.com")
    T.ok(c.end_session_endpoint and c.scopes_supported and c.msgraph_host)
    -- By domain: the endpoints use the tenant id; for common the issuer is a template.
    c = json.decode(assert(sim:request("login", "GET", "/" .. DOMAIN ..
        "/v2.0/.well-known/openid-configuration")).body)
    T.eq(c.token_endpoint, t .. "/oauth2/v2.0/token")
    c = json.decode(assert(sim:request("login", "GET",
        "/common/v2.0/.well-known/openid-configuration")).body)
    T.eq(c.issuer, login .. "/{tenantid}/v2.0")
    T.eq(c.token_endpoint, login .. "/common/oauth2/v2.0/token")
    -- The ADFS-style authority az can be pointed at (real-clients §2.1).
    c = json.decode(assert(sim:request("login", "GET", "/adfs/.well-known/openid-configuration"))
        .body)
    T.eq(c.token_endpoint, t .. "/oauth2/v2.0/token")
    res = assert(sim:request("login", "GET",
        "/00000000-1111-4222-8333-444444444444/v2.0/.well-known/openid-configuration"))
    expect_error(res, 400, "invalid_tenant", 90002)
end)


T.test("instance discovery answers for the simulator's host and refuses unknown ones", function()
    local sim = harness.start()
    local host = sim.env.SIM_LOGIN_URL:match("^https://([^/]+)")
    local function discover(endpoint, version)
        return assert(sim:request("login", "GET", "/common/discovery/instance",
            { query = { ["api-version"] = version or "1.1", authorization_endpoint = endpoint } }))
    end
    -- MSAL Python drops the port from the authority (real-clients §2.1).
    local res = discover("https://127.0.0.1/" .. sim.env.SIM_TENANT .. "/oauth2/v2.0/authorize",
        "1.0")
    T.eq(res.status, 200, res.body)
    local b = json.decode(res.body)
    T.eq(b.tenant_discovery_endpoint, sim.env.SIM_LOGIN_URL .. "/" .. sim.env.SIM_TENANT ..
        "/v2.0/.well-known/openid-configuration")
    T.eq(b["api-version"], "1.1")
    T.eq(b.metadata[1].preferred_network, host)
    T.ok(#b.metadata >= 2)
    res = discover("https://" .. host .. "/" .. sim.env.SIM_TENANT .. "/oauth2/v2.0/authorize")
    T.eq(res.status, 200)
    res = discover("https://login.microsoftonline.com/common/oauth2/authorize")
    T.eq(res.status, 200)
    res = discover("https://login.evil.example/common/oauth2/authorize")
    expect_error(res, 400, "invalid_instance", 50049)
end)


T.test("tokens verify with the published signing key and their kid names it", function()
    local sim = harness.start()
    local tok = assert(sim:token())
    local res = assert(sim:request("login", "GET", "/" .. sim.env.SIM_TENANT ..
        "/discovery/v2.0/keys"))
    T.eq(res.status, 200)
    local set = json.decode(res.body)
    T.eq(#set.keys, 1)
    local jwk = set.keys[1]
    T.eq(jwk.kty, "RSA")
    T.eq(jwk.use, "sig")
    local header = jwt.decode(tok)
    T.eq(header.kid, jwk.kid)
    T.eq(header.x5t, jwk.x5t)
    -- The JWK is the public half of the simulator's signing key, and that key verifies.
    local pem <close> = assert(secret.from_file(sim.dir .. "/signing.key"))
    local key = assert(crypto.load_key(pem))
    local pub = key:public_jwk()
    T.eq({ pub.n, pub.e }, { jwk.n, jwk.e })
    local claims = assert(jwt.verify(tok, key, { aud = "https://management.azure.com/" }))
    T.eq(claims.tid, sim.env.SIM_TENANT)
    -- The v1 path serves the same keys.
    res = assert(sim:request("login", "GET", "/common/discovery/keys"))
    T.eq(json.decode(res.body).keys[1].kid, jwk.kid)
end)


--- Runs the authorize step; returns the Location's query parameters.
local function authorize(sim, params)
    local res = assert(sim:request("login", "GET", "/" .. sim.env.SIM_TENANT ..
        "/oauth2/v2.0/authorize", { query = params }))
    T.eq(res.status, 302, res.body)
    local loc = res.headers.location
    local base, q = loc:match("^([^?#]*)[?#](.*)$")
    local p = {}
    for k, v in q:gmatch("([^&=]+)=([^&]*)") do
        p[k] = v:gsub("+", " "):gsub("%%(%x%x)", function(h)
            return string.char(tonumber(h, 16)) end)
    end
    return p, base
end


T.test("auth code with PKCE S256 gives tokens, codes are single use, refreshes rotate", function()
    local sim = harness.start()
    local redirect = "http://localhost:8400/callback"
    local verifier = crypto.b64url_encode(crypto.random(48))
    local challenge = crypto.b64url_encode(crypto.sha256(verifier))
    local p, base = authorize(sim, { client_id = sim.env.SIM_CLIENT_ID, response_type = "code",
        redirect_uri = redirect, state = "st-123", nonce = "n-456",
        scope = "https://management.core.windows.net//.default openid profile offline_access",
        code_challenge = challenge, code_challenge_method = "S256" })
    T.eq(base, redirect)
    T.eq(p.state, "st-123")
    T.ok(p.code)
    local form = { grant_type = "authorization_code", client_id = sim.env.SIM_CLIENT_ID,
        client_secret = sim.env.SIM_CLIENT_SECRET, code = p.code, redirect_uri = redirect,
        code_verifier = "wrong-verifier-wrong-verifier-wrong-verifier-0" }
    local res = post_token(sim, form)
    expect_error(res, 400, "invalid_grant", 501481)
    form.code_verifier = verifier
    local body
    res, body = post_token(sim, form)
    T.eq(res.status, 200, res.body)
    local _, claims = jwt.decode(body.access_token)
    T.eq(claims.aud, "https://management.core.windows.net/")
    T.eq(claims.idtyp, "user")
    T.eq(claims.scp, "user_impersonation")
    T.eq(claims.upn, "sim-user@" .. DOMAIN)
    local _, id = jwt.decode(body.id_token)
    T.eq(id.aud, sim.env.SIM_CLIENT_ID)
    T.eq(id.nonce, "n-456")
    T.eq(id.iss, sim.env.SIM_LOGIN_URL .. "/" .. sim.env.SIM_TENANT .. "/v2.0")
    T.ok(body.refresh_token)
    res = post_token(sim, form)
    expect_error(res, 400, "invalid_grant", 54005)
    -- Refresh: a new refresh token each time; the old one no longer works.
    local rt1 = body.refresh_token
    res, body = post_token(sim, { grant_type = "refresh_token", client_id = sim.env.SIM_CLIENT_ID,
        client_secret = sim.env.SIM_CLIENT_SECRET, refresh_token = rt1,
        scope = "https://graph.microsoft.com/.default offline_access" })
    T.eq(res.status, 200, res.body)
    T.ok(body.refresh_token and body.refresh_token ~= rt1)
    local _, c2 = jwt.decode(body.access_token)
    T.eq(c2.aud, "https://graph.microsoft.com")
    T.eq(c2.oid, claims.oid)
    res = post_token(sim, { grant_type = "refresh_token", client_id = sim.env.SIM_CLIENT_ID,
        client_secret = sim.env.SIM_CLIENT_SECRET, refresh_token = rt1 })
    expect_error(res, 400, "invalid_grant", 9002313)
    res = post_token(sim, { grant_type = "refresh_token", client_id = sim.env.SIM_CLIENT_ID,
        client_secret = sim.env.SIM_CLIENT_SECRET, refresh_token = body.refresh_token })
    T.eq(res.status, 200, res.body)
end)


T.test("plain PKCE works, a confidential client needs its secret, errors redirect", function()
    local sim = harness.start()
    local redirect = "https://app.example.test/cb"
    local verifier = string.rep("v", 50)
    local p = authorize(sim, { client_id = sim.env.SIM_CLIENT_ID, response_type = "code",
        redirect_uri = redirect, scope = "openid", code_challenge = verifier })
    local form = { grant_type = "authorization_code", client_id = sim.env.SIM_CLIENT_ID,
        code = p.code, redirect_uri = redirect, code_verifier = verifier }
    local res = post_token(sim, form)
    expect_error(res, 401, "invalid_client", 7000218)
    form.client_secret = sim.env.SIM_CLIENT_SECRET
    form.redirect_uri = "https://app.example.test/other"
    res = post_token(sim, form)
    expect_error(res, 400, "invalid_grant", 70000)
    form.redirect_uri = redirect
    local body
    res, body = post_token(sim, form)
    T.eq(res.status, 200, res.body)
    T.ok(body.id_token)
    T.eq(body.refresh_token, nil, "no offline_access, no refresh token")
    -- Errors go back to the redirect URI with the state.
    p = authorize(sim, { client_id = sim.env.SIM_CLIENT_ID, response_type = "token",
        redirect_uri = redirect, scope = "openid", state = "s1" })
    T.eq(p.error, "unsupported_response_type")
    T.eq(p.state, "s1")
    sim:knobs { authorize_error = "access_denied" }
    p = authorize(sim, { client_id = sim.env.SIM_CLIENT_ID, response_type = "code",
        redirect_uri = redirect, scope = "openid", state = "s2" })
    T.eq(p.error, "access_denied")
    T.match(p.error_description, "^AADSTS")
    -- An unknown client cannot be redirected to: an error page.
    res = assert(sim:request("login", "GET", "/" .. sim.env.SIM_TENANT ..
        "/oauth2/v2.0/authorize", { query = { client_id = "11111111-2222-4333-8444-555555555555",
        response_type = "code", redirect_uri = redirect, scope = "openid" } }))
    expect_error(res, 400, "unauthorized_client", 700016)
    -- Unknown codes.
    res = post_token(sim, { grant_type = "authorization_code", client_id = sim.env.SIM_CLIENT_ID,
        client_secret = sim.env.SIM_CLIENT_SECRET, code = "nope", redirect_uri = redirect })
    expect_error(res, 400, "invalid_grant", 9002313)
end)


T.test("token requests are counted per route", function()
    local sim = harness.start()
    assert(sim:token())
    assert(sim:token())
    local st = sim:stats()
    T.eq(st.counts["login:POST /{tenant}/oauth2/v2.0/token"], 2)
    T.eq(http.escape("a b"), "a%20b")
end)

-- aurora.identity against the simulated Entra ID: secret and certificate credentials, AADSTS
-- failures as structured errors, negative caching, expiry and background refresh, single flight
-- within a worker and across workers, and the authorization-code flow with PKCE.
local T = require "aurora.test"
local crypto = require "aurora.crypto"
local harness = require "sim.harness"
local http = require "aurora.http"
local identity = require "aurora.identity"
local json = require "aurora.json"
local jwt = require "aurora.jwt"
local secret = require "aurora.secret"
local time = require "aurora.time"
local timer = require "aurora.timer"

local TOKEN_ROUTE = "login:POST /{tenant}/oauth2/v2.0/token"
local EXPIRED_APP = "3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e60"
local EXPIRED_SECRET = "sim-secret-expired-0003"


local function posts(sim)
    return sim:stats().counts[TOKEN_ROUTE] or 0
end


-- The default service principal; fields override.
local function cred(sim, fields)
    local c = { tenant = sim.env.SIM_TENANT, client_id = sim.env.SIM_CLIENT_ID,
        secret = secret.new(sim.env.SIM_CLIENT_SECRET), authority_host = sim.env.SIM_LOGIN_URL,
        ca_file = sim.env.SIM_CA_FILE }
    for k, v in pairs(fields or {}) do c[k] = v end
    return c
end


local function claims(tok)
    local _, c = jwt.decode(tok)
    return c
end


T.test("a client secret gets an ARM token and the second call is served from the cache", function()
    local sim = harness.start()
    local c = cred(sim)
    local tok, exp = identity.token(c, "arm")
    T.ok(secret.is_secret(tok), "a secret handle")
    T.ok(exp > time.now() + 3000, "an hour-long token")
    T.eq(claims(tok:reveal()).aud, "https://management.azure.com/")
    T.eq(claims(tok:reveal()).appid, sim.env.SIM_CLIENT_ID)
    local tok2, exp2 = identity.token(c, "arm")
    T.ok(tok2:equals(tok))
    T.eq(exp2, exp)
    T.eq(posts(sim), 1)
end)


T.test("graph, aks and explicit scopes are separate tokens", function()
    local sim = harness.start()
    local c = cred(sim)
    T.eq(claims(identity.token(c, "graph"):reveal()).aud, "https://graph.microsoft.com")
    T.eq(claims(identity.token(c, "aks"):reveal()).aud, "6dae42f8-4368-4678-94ff-3960e28e3630")
    T.eq(claims(identity.token(c, "https://management.core.windows.net//.default"):reveal()).aud,
        "https://management.core.windows.net/")
    T.eq(posts(sim), 3)
end)


T.test("a certificate credential signs an RS256 assertion with x5t#S256", function()
    local sim = harness.start()
    local key = crypto.generate_key("rsa", 2048)
    local cert = assert(crypto.issue_cert { key = key, subject = { CN = "aurora-test-sp" },
        usage = "client" })
    local reg = assert(sim:request("login", "POST", "/_sim/entra/certificates",
        { json = { appId = sim.env.SIM_CLIENT_ID, pem = cert:pem() } }))
    T.eq(reg.status, 201, reg.body)
    local c = cred(sim, { cert_pem = cert:pem(), key = key:private_pem() })
    c.secret = nil
    local tok, exp = identity.token(c, "arm")
    T.ok(tok, exp and "" or json.encode(exp))
    T.eq(claims(tok:reveal()).appidacr, "2")
    -- the secret credential of the same app is a different cache entry
    identity.token(cred(sim), "arm")
    T.eq(posts(sim), 2)
end)


T.test("a certificate the app does not know is refused with AADSTS700027", function()
    local sim = harness.start()
    local key = crypto.generate_key("rsa", 2048)
    local cert = assert(crypto.issue_cert { key = key, subject = { CN = "unknown" } })
    local c = cred(sim, { cert_pem = cert:pem(), key = key:private_pem() })
    c.secret = nil
    local tok, err, code = identity.token(c, "arm")
    T.eq(tok, nil)
    T.eq(code, "AADSTS700027")
    T.eq(err.status, 401)
    T.eq(err.error, "invalid_client")
end)


local FAILURES = {
    { name = "a wrong secret", status = 401, code = "AADSTS7000215", error = "invalid_client",
      fields = function(sim) return { secret = secret.new("not-the-secret") } end },
    { name = "an expired secret", status = 401, code = "AADSTS7000222", error = "invalid_client",
      fields = function(sim)
          return { client_id = EXPIRED_APP, secret = secret.new(EXPIRED_SECRET) }
      end },
    { name = "an unknown application", status = 400, code = "AADSTS700016",
      error = "unauthorized_client",
      fields = function(sim) return { client_id = "0badc0de-0000-4000-8000-000000000001" } end },
    { name = "an unknown tenant", status = 400, code = "AADSTS90002", error = "invalid_tenant",
      fields = function(sim) return { tenant = "0badc0de-0000-4000-8000-000000000002" } end },
}

for _, f in ipairs(FAILURES) do
    T.test(f.name .. " gives a structured " .. f.code .. " error that is cached", function()
        local sim = harness.start()
        local c = cred(sim, f.fields(sim))
        local tok, err, code = identity.token(c, "arm")
        T.eq(tok, nil)
        T.eq(code, f.code)
        T.eq(err.code, f.code)
        T.eq(err.status, f.status)
        T.eq(err.error, f.error)
        T.match(err.trace_id, "^%x+%-%x+%-%x+%-%x+%-%x+$")
        T.match(err.correlation_id, "^%x+%-%x+%-%x+%-%x+%-%x+$")
        T.match(err.description, "^" .. f.code .. ": ")
        T.not_contains(err.description, "\n")
        T.contains(err.message, f.code)
        local text = json.encode(err)
        T.not_contains(text, sim.env.SIM_CLIENT_SECRET)
        T.not_contains(text, "not-the-secret")
        T.not_contains(text, EXPIRED_SECRET)
        -- the second call does not reach Entra ID
        local tok2, err2 = identity.token(c, "arm")
        T.eq(tok2, nil)
        T.eq(err2, err)
        T.eq(posts(sim), 1)
        -- forget drops the cached failure
        identity.forget(c, "arm")
        identity.token(c, "arm")
        T.eq(posts(sim), 2)
    end)
end


T.test("a 503 from Entra ID is not cached", function()
    local sim = harness.start()
    sim:knobs { faults = { { route = TOKEN_ROUTE, status = 503, count = 1 } } }
    local c = cred(sim)
    local tok, err, code = identity.token(c, "arm")
    T.eq(tok, nil)
    T.eq(code, "unavailable")
    T.eq(err.status, 503)
    local tok2 = identity.token(c, "arm")
    T.ok(tok2, "the next call asks again and succeeds")
    T.eq(posts(sim), 2)
end)


T.test("a dropped connection is a transport error and is not cached", function()
    local sim = harness.start()
    sim:knobs { faults = { { route = TOKEN_ROUTE, drop = true, count = 1 } } }
    local c = cred(sim)
    local tok, err, code = identity.token(c, "arm")
    T.eq(tok, nil)
    T.ok(code == "connect" or code == "bad_reply", "code " .. tostring(code))
    T.eq(err.status, 0)
    T.ok(identity.token(c, "arm"), "the next call succeeds")
end)


T.test("a caller near expiry gets the old token at once and it is refreshed in the background",
    function()
    local sim = harness.start()
    sim:knobs { token_lifetime = 3 }
    local c = cred(sim)
    local a, exp_a = identity.token(c, "arm")
    T.ok(a)
    T.ok(exp_a - time.now() <= 3.1)
    -- Inside the refresh window (the last half of the lifetime) but before the hard margin.
    time.sleep(math.max(exp_a - time.now() - 0.8, 0))
    local t0 = time.monotonic()
    local b, exp_b = identity.token(c, "arm")
    T.ok(time.monotonic() - t0 < 0.05, "answered from the cache without waiting")
    T.ok(b:equals(a), "the old token")
    T.eq(exp_b, exp_a)
    local deadline = time.monotonic() + 3
    while posts(sim) < 2 and time.monotonic() < deadline do time.sleep(0.05) end
    T.eq(posts(sim), 2)
    local n, e = identity.token(c, "arm")
    T.ok(not n:equals(a), "the refreshed token")
    T.ok(e > exp_a)
    -- From now on, never an expired token.
    local stop = time.monotonic() + 4
    while time.monotonic() < stop do
        local tok, exp = identity.token(c, "arm")
        local now = time.now()
        T.ok(tok, "a token")
        T.ok(exp > now, "unexpired by its expiry")
        T.ok(claims(tok:reveal()).exp > now - 1, "unexpired by its exp claim")
        tok:close()
        time.sleep(0.1)
    end
end)


T.test("100 tasks asking for the same missing token cause one token POST", function()
    local sim = harness.start()
    local c = cred(sim)
    sim:knobs { latency_ms = { [TOKEN_ROUTE] = 200 } }
    local got = {}
    for i = 1, 100 do
        timer.at(0, function()
            local tok = identity.token(c, "graph")
            got[i] = tok and tok:reveal() or "failed"
        end)
    end
    local deadline = time.monotonic() + 10
    while #got < 100 and time.monotonic() < deadline do time.sleep(0.02) end
    T.eq(#got, 100)
    for i = 2, 100 do T.eq(got[i], got[1]) end
    T.eq(posts(sim), 1)
end)


-- An app served with two workers whose handler asks for a token: proves single flight across
-- workers. It gets the Entra ID address and CA through the environment (AZURE_AUTHORITY_HOST,
-- AURORA_CA_BUNDLE), as the real app does.
local APP = [[
local identity = require "aurora.identity"
local env = require "aurora.env"
local secret = require "aurora.secret"
local timer = require "aurora.timer"
return {
    ["GET /cloud"] = function() return 200, require("aurora.cloud").current() end,
    ["GET /token"] = function(req)
        local s <close> = secret.from_env("SIM_CLIENT_SECRET")
        local tok, exp = identity.token({tenant = env.get("SIM_TENANT"),
            client_id = env.get("SIM_CLIENT_ID"), secret = s}, req.query.scope or "arm")
        if not tok then return 502, exp end
        local crypto = require "aurora.crypto"
        return 200, {fp = crypto.hex(crypto.sha256(tok)), worker = timer.worker_id()}
    end,
}
]]


local function start_app(sim)
    local dir = T.tmpdir()
    T.write_file(dir .. "/app.lua", APP)
    os.execute("mkdir -p " .. dir .. "/aurora")
    for _, m in ipairs { "identity", "cloud" } do
        T.write_file(dir .. "/aurora/" .. m .. ".lua", T.read_file("lua/aurora/" .. m .. ".lua"))
    end
    return T.server { app = dir, workers = 2, env = {
        AZURE_AUTHORITY_HOST = sim.env.SIM_LOGIN_URL,
        AZURE_RESOURCE_MANAGER_ENDPOINT = sim.env.SIM_ARM_URL .. "/",
        AZURE_GRAPH_ENDPOINT = sim.env.SIM_GRAPH_URL, AURORA_CA_BUNDLE = sim.env.SIM_CA_FILE,
        SIM_TENANT = sim.env.SIM_TENANT, SIM_CLIENT_ID = sim.env.SIM_CLIENT_ID,
        SIM_CLIENT_SECRET = sim.env.SIM_CLIENT_SECRET,
    } }
end


T.test("100 concurrent requests over two workers cause exactly one token POST", function()
    local sim = harness.start()
    sim:knobs { latency_ms = { [TOKEN_ROUTE] = 300 } }
    local s = start_app(sim)
    -- Which worker accepts a connection is up to the kernel: repeat with another scope (a new
    -- key) until a batch was served by both workers (almost always the first).
    local both = false
    for batch, scope in ipairs { "arm", "graph", "aks" } do
        local reqs = {}
        for i = 1, 100 do
            reqs[i] = { url = s.url .. "/token?scope=" .. scope,
                headers = { Connection = "close" } }
        end
        local fps, workers = {}, {}
        for _, r in ipairs(http.request_many(reqs)) do
            T.eq(r.status, 200, r.body)
            local b = json.decode(r.body)
            fps[b.fp] = true
            workers[b.worker] = true
        end
        T.eq(posts(sim), batch)
        local n = 0
        for _ in pairs(fps) do n = n + 1 end
        T.eq(n, 1)
        if workers[1] and workers[2] then
            both = true
            break
        end
    end
    T.ok(both, "a batch was served by both workers")
    T.not_contains(s:log(), sim.env.SIM_CLIENT_SECRET)
    T.not_contains(s:log(), "access_token")
    -- the environment moved every endpoint and no scope
    local c = json.decode(s:request("GET", "/cloud").body)
    T.eq(c.authority_host, sim.env.SIM_LOGIN_URL)
    T.eq(c.arm, sim.env.SIM_ARM_URL)
    T.eq(c.graph, sim.env.SIM_GRAPH_URL)
    T.eq(c.arm_scope, "https://management.azure.com/.default")
    T.eq(c.graph_scope, "https://graph.microsoft.com/.default")
end)


T.test("the authorization-code flow with PKCE redeems a code and refreshes", function()
    local sim = harness.start()
    local verifier, challenge = identity.pkce()
    T.eq(#verifier, 43)
    T.eq(identity.pkce_challenge(verifier), challenge)
    local redirect = "https://app.example/callback"
    local url = identity.authorize_url { tenant = sim.env.SIM_TENANT,
        client_id = sim.env.SIM_CLIENT_ID, redirect_uri = redirect, state = "st-1",
        code_challenge = challenge, authority_host = sim.env.SIM_LOGIN_URL,
        scope = "openid offline_access https://management.azure.com/user_impersonation" }
    T.match(url, "^" .. sim.env.SIM_LOGIN_URL:gsub("%p", "%%%0") .. "/")
    T.contains(url, "code_challenge_method=S256")
    local res = assert(http.request { url = url, ca_file = sim.env.SIM_CA_FILE })
    T.eq(res.status, 302)
    local loc = res.headers.location
    T.eq(loc:match("[?&]state=([^&]+)"), "st-1")
    local code = loc:match("[?&]code=([^&]+)")
    code = code:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end)
    local c = cred(sim)
    c.ca_file = sim.env.SIM_CA_FILE
    -- a wrong verifier is refused
    local bad, err = identity.redeem_code { code = code, verifier = identity.pkce(),
        redirect_uri = redirect, cred = c }
    T.eq(bad, nil)
    T.eq(err.code, "AADSTS501481")
    -- a fresh code for the real redemption
    res = assert(http.request { url = url, ca_file = sim.env.SIM_CA_FILE })
    code = res.headers.location:match("[?&]code=([^&]+)"):gsub("%%(%x%x)",
        function(h) return string.char(tonumber(h, 16)) end)
    local t = assert(identity.redeem_code { code = code, verifier = verifier,
        redirect_uri = redirect, cred = c })
    T.ok(secret.is_secret(t.access_token))
    T.ok(secret.is_secret(t.refresh_token))
    T.ok(t.expires_at > time.now())
    T.eq(claims(t.access_token:reveal()).aud, "https://management.azure.com/")
    local r2 = assert(identity.refresh { refresh_token = t.refresh_token, cred = c })
    T.ok(not r2.refresh_token:equals(t.refresh_token), "a rotated refresh token")
    local again, err2 = identity.refresh { refresh_token = t.refresh_token, cred = c }
    T.eq(again, nil)
    T.eq(err2.error, "invalid_grant")
    -- the rotated refresh token survives in the secret store and still works
    local secrets = require "aurora.secrets"
    assert(secrets.configure { backend = "store", dir = T.tmpdir(), key = string.rep("k", 32) })
    T.defer(function() secrets.configure(nil) end)
    T.eq(identity.restore("users/u-1/oauth"), nil)
    T.ok(identity.persist("users/u-1/oauth", r2))
    local saved = assert(identity.restore("users/u-1/oauth"))
    T.ok(saved.refresh_token:equals(r2.refresh_token))
    T.ok(assert(identity.refresh { refresh_token = saved.refresh_token, cred = c }).access_token)
    T.raises(identity.persist, "open refresh_token", "users/u-1/oauth", {})
end)


T.test("misuse raises with the argument named", function()
    T.raises(identity.token, "credential table expected", nil, "arm")
    T.raises(identity.token, "'tenant' must be a non%-empty string", { client_id = "x",
        secret = "s" }, "arm")
    T.raises(identity.token, "either 'secret' or 'cert_pem'", { tenant = "t", client_id = "x",
        secret = "s", cert_pem = "p", key = "k" }, "arm")
    T.raises(identity.token, "needs 'secret'", { tenant = "t", client_id = "x" }, "arm")
    T.raises(identity.token, "unknown credential field 'secert'", { tenant = "t",
        client_id = "x", secert = "s" }, "arm")
    T.raises(identity.token, "scope name expected", { tenant = "t", client_id = "x",
        secret = "s" }, nil)
    T.raises(identity.authorize_url, "'redirect_uri' is required", { tenant = "t",
        client_id = "x" })
    T.raises(identity.redeem_code, "'code' and 'redirect_uri'", { cred = {} })
end)


T.test("a tenant that could escape the URL path is refused before any request", function()
    local tok, err, code = identity.token({ tenant = "../evil", client_id = "x", secret = "s",
        authority_host = "https://127.0.0.1:1" }, "arm")
    T.eq(tok, nil)
    T.eq(code, "invalid")
    T.eq(err.code, "invalid")
end)


T.test("a token saved in the secret store is reused after a restart, with its subscription", function()
    local sim = harness.start()
    local secrets = require "aurora.secrets"
    local dir = T.tmpdir()
    secrets.configure { backend = "store", dir = dir .. "/secrets" }
    local c = cred(sim)
    local opts = { store = "users/u1/tokens/arm", meta = { subscription_id = sim.env.SIM_SUBSCRIPTION,
        subscription_name = "Aurora Sim Production" } }
    local tok = assert(identity.token(c, "arm", opts))
    local value = tok:reveal()
    T.eq(posts(sim), 1)
    local rec = assert(secrets.get("users/u1/tokens/arm"))
    T.eq(rec.subscription_id, sim.env.SIM_SUBSCRIPTION)
    T.eq(rec.subscription_name, "Aurora Sim Production")
    -- A restart: the process cache is empty, the store is not.
    identity.forget(c, "arm")
    local again = assert(identity.token(c, "arm", opts))
    T.eq(again:reveal(), value, "the stored token")
    T.eq(posts(sim), 1, "no second request to Entra ID")
    -- The token is encrypted at rest: its text is in no file under the store.
    local p = T.spawn { "grep", "-rl", "--", value:sub(-24), dir }
    T.eq({ T.wait_process(p.pid, 10) }, { "exited", 1 }, "grep found the token in a file")
    T.raises(function() identity.token(c, "arm", { store = 42 }) end, "bad argument #3")
end)

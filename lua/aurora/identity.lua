-- aurora.identity: Microsoft Entra ID tokens for service principals (client credentials with a
-- secret or a certificate), cached process-wide in aurora.token with single flight, refreshed
-- ahead of expiry in the background, and failures that mean "these credentials are wrong"
-- cached for a minute so a bad secret does not hammer Entra ID. Also the authorization-code
-- flow with PKCE for the legacy user sign-in.
--
-- Secrets stay in aurora.secret handles: the client secret and the signed assertion go into the
-- form as handles, and cached tokens live in the C cache. The access token crosses Lua once, as
-- the reply body of the token request (aurora.http returns bodies as strings). Nothing here logs
-- a token, a secret or a reply body; errors carry Entra's codes and ids, never a credential.
-- Full reference: docs/identity.md.
local cloud = require "aurora.cloud"
local crypto = require "aurora.crypto"
local http = require "aurora.http"
local json = require "aurora.json"
local jwt = require "aurora.jwt"
local log = require "aurora.log"
local secret = require "aurora.secret"
local shared = require "aurora.shared"
local time = require "aurora.time"
local timer = require "aurora.timer"
local token = require "aurora.token"

local M = {}

--- Seconds a "these credentials are wrong" failure is cached.
M.NEGATIVE_TTL = 60
--- A token is refreshed in the background during the last REFRESH_WINDOW seconds of its life
-- (at most REFRESH_FRACTION of the lifetime)...
M.REFRESH_WINDOW = 300
M.REFRESH_FRACTION = 0.5
--- ...and no longer handed out in its last HARD_MARGIN seconds (at most HARD_FRACTION of it).
M.HARD_MARGIN = 60
M.HARD_FRACTION = 0.1
--- Seconds a background refresh is not retried after it failed.
M.REFRESH_BACKOFF = 5
--- Timeout of a token request, seconds.
M.TIMEOUT = 20
-- A token saved in the secret store is reused only with at least this many seconds left.
M.STORE_MIN_LEFT = 300

local ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
local ASSERTION_LIFETIME = 600

-- AADSTS numbers that mean the credentials, the app, the tenant or the scope are wrong: asking
-- again within a minute gives the same answer, so the failure is cached.
local NEGATIVE_CODES = {
    [7000215] = true, -- invalid client secret
    [7000222] = true, -- client secret expired
    [700016] = true,  -- application not found in the directory
    [90002] = true,   -- tenant not found
    [900023] = true,  -- tenant identifier malformed
    [7000229] = true, -- no service principal in the tenant
    [700027] = true,  -- client assertion signature / key not registered
    [70011] = true,   -- invalid scope
    [1002012] = true, -- client credentials scope without /.default
    [500011] = true,  -- resource principal not found
}
local NEGATIVE_ERRORS = { invalid_scope = true, invalid_tenant = true, invalid_resource = true }

local CRED_FIELDS = { tenant = true, client_id = true, secret = true, cert_pem = true, key = true,
    authority_host = true, ca_file = true }

-- Background refreshes of this VM: key -> true while one runs, or the time before which none
-- is tried again after a failure.
local refreshing = {}
local fingerprint_key


-- ---- helpers -----------------------------------------------------------------------------------

local function uuid()
    local b = { crypto.random(16):byte(1, 16) }
    b[7] = (b[7] & 0x0f) | 0x40
    b[9] = (b[9] & 0x3f) | 0x80
    local h = crypto.hex(string.char(table.unpack(b)))
    return string.format("%s-%s-%s-%s-%s", h:sub(1, 8), h:sub(9, 12), h:sub(13, 16),
        h:sub(17, 20), h:sub(21, 32))
end


local function is_bytes(v)
    return type(v) == "string" or secret.is_secret(v)
end


-- Raises unless cred is a well-formed credential table (checked before anything is sent).
local function check_cred(cred, fname, argn, need_auth)
    if type(cred) ~= "table" then
        error(string.format("bad argument #%d to '%s' (credential table expected, got %s)", argn,
            fname, type(cred)), 3)
    end
    for k in pairs(cred) do
        if not CRED_FIELDS[k] then
            error(string.format("bad argument #%d to '%s' (unknown credential field '%s')", argn,
                fname, tostring(k)), 3)
        end
    end
    for _, f in ipairs { "tenant", "client_id" } do
        if type(cred[f]) ~= "string" or cred[f] == "" then
            error(string.format("bad argument #%d to '%s' (credential field '%s' must be a " ..
                "non-empty string)", argn, fname, f), 3)
        end
    end
    local has_secret = cred.secret ~= nil
    local has_cert = cred.cert_pem ~= nil or cred.key ~= nil
    if has_secret and has_cert then
        error(string.format("bad argument #%d to '%s' (give either 'secret' or 'cert_pem' and " ..
            "'key', not both)", argn, fname), 3)
    end
    if need_auth and not has_secret and not has_cert then
        error(string.format("bad argument #%d to '%s' (credential needs 'secret', or " ..
            "'cert_pem' and 'key')", argn, fname), 3)
    end
    if has_secret and not is_bytes(cred.secret) then
        error(string.format("bad argument #%d to '%s' ('secret' must be a string or secret)",
            argn, fname), 3)
    end
    if has_cert and (type(cred.cert_pem) ~= "string" or not is_bytes(cred.key)) then
        error(string.format("bad argument #%d to '%s' ('cert_pem' must be a string and 'key' a " ..
            "string or secret)", argn, fname), 3)
    end
end


-- A failure that is not Entra's: {code =, message =} plus status when there was an answer.
local function failure(code, message, status)
    return { status = status or 0, code = code, error = code, message = message }
end


-- nil when the tenant or client id could break out of the URL path, else a failure table.
local function check_ids(cred)
    if not cred.tenant:match("^[%w%.%-_]+$") then
        return failure("invalid", "the tenant must be a GUID or a domain name")
    end
    if not cred.client_id:match("^[%w%.%-_]+$") then
        return failure("invalid", "the client id must be a GUID")
    end
    return nil
end


local current_cloud

-- The cloud of the environment, read once per VM.
local function env_cloud()
    if not current_cloud then
        local c, msg, code = cloud.current()
        if not c then return nil, msg, code end
        current_cloud = c
    end
    return current_cloud
end


local function authority(cred)
    if cred.authority_host then
        return (cred.authority_host:gsub("/+$", ""))
    end
    local c, msg = env_cloud()
    if not c then return nil, msg end
    return c.authority_host
end


local function token_url(cred)
    local a, msg = authority(cred)
    if not a then return nil, msg end
    return a .. "/" .. cred.tenant .. "/oauth2/v2.0/token"
end


-- A process-wide random key for credential fingerprints (aurora.shared, so every worker uses
-- the same one and their cache keys agree). An HMAC rather than a bare SHA-256 keeps a weak
-- secret from being guessed offline from a cache key.
local function fp_key()
    if not fingerprint_key then
        local d = assert(shared.dict("aurora.identity"))
        d:add("fingerprint_key", crypto.hex(crypto.random(32)))
        fingerprint_key = assert(d:get("fingerprint_key"))
    end
    return fingerprint_key
end


--- The credential's fingerprint: an HMAC-SHA-256 of the secret (never the secret itself), or
-- the certificate's SHA-256 thumbprint. Returns hex text, or nil, msg.
local function fingerprint(cred)
    if cred.secret then
        return "s:" .. crypto.hex(crypto.hmac_sha256(fp_key(), cred.secret))
    end
    local cert, msg = crypto.load_cert(cred.cert_pem)
    if not cert then return nil, msg end
    local fp = "c:" .. crypto.hex(cert:thumbprint("sha256"))
    cert:close()
    return fp
end


-- ---- the token request -------------------------------------------------------------------------

local function first_line(s)
    return (s:match("^([^\r\n]*)") or s)
end


-- The structured error of a non-200 token reply, and how long to cache it (nil: not cached).
local function entra_error(res)
    local body = json.decode(res.body)
    if type(body) ~= "table" or type(body.error) ~= "string" then
        local code = (res.status == 429 or res.status >= 500) and "unavailable" or "bad_reply"
        local err = failure(code, string.format("Entra ID answered HTTP %d without an OAuth " ..
            "error", res.status), res.status)
        err.retry_after = tonumber(res.headers["retry-after"])
        return err
    end
    local desc = type(body.error_description) == "string" and body.error_description or ""
    local n = type(body.error_codes) == "table" and math.tointeger(body.error_codes[1]) or
        math.tointeger(tonumber(desc:match("^AADSTS(%d+)")))
    local err = {
        status = res.status,
        code = n and ("AADSTS" .. n) or body.error,
        error = body.error,
        description = first_line(desc),
        trace_id = type(body.trace_id) == "string" and body.trace_id or nil,
        correlation_id = type(body.correlation_id) == "string" and body.correlation_id or nil,
        timestamp = type(body.timestamp) == "string" and body.timestamp or nil,
    }
    err.message = "Entra ID refused the token request: " ..
        (err.description ~= "" and err.description or err.error)
    if res.status >= 400 and res.status < 500 and res.status ~= 429 and
        ((n and NEGATIVE_CODES[n]) or NEGATIVE_ERRORS[body.error]) then
        return err, M.NEGATIVE_TTL
    end
    return err
end


-- POSTs form to the token endpoint. Returns the decoded success body and the time the request
-- started, or nil, err, negative_ttl.
local function post_token(url, form, ca_file)
    local t0 = time.now()
    -- The tokens of the reply go straight into secret handles (never Lua strings).
    local res, msg, code = http.request {
        method = "POST", url = url, form = form, timeout = M.TIMEOUT, ca_file = ca_file,
        headers = { ["client-request-id"] = uuid(), ["return-client-request-id"] = "true",
            Accept = "application/json" },
        secret_fields = { "access_token", "refresh_token" },
    }
    if not res then
        return nil, failure(code, "the token request failed: " .. msg)
    end
    if res.status ~= 200 then
        local err, ttl = entra_error(res)
        return nil, err, ttl
    end
    local body = json.decode(res.body)
    local secrets = res.secrets or {}
    if type(body) ~= "table" or not secrets.access_token or not tonumber(body.expires_in) then
        return nil, failure("bad_reply", "Entra ID answered 200 without access_token and " ..
            "expires_in", 200)
    end
    body.access_token, body.refresh_token = secrets.access_token, secrets.refresh_token
    return body, t0
end


-- When a token from body expires: expires_in from the request's start, or the JWT's exp when
-- that is earlier (a clock or cache somewhere may disagree; the earlier one is safe).
local function expiry(body, t0)
    local exp = t0 + tonumber(body.expires_in)
    local _, claims = jwt.decode(body.access_token)
    if type(claims) == "table" and type(claims.exp) == "number" and claims.exp < exp then
        exp = claims.exp
    end
    return exp
end


-- The signed client assertion for a certificate credential (a secret handle), or nil, err.
local function assertion(cred, url)
    local cert, msg = crypto.load_cert(cred.cert_pem)
    if not cert then
        return nil, failure("invalid", "the certificate does not load: " .. msg)
    end
    local key, kmsg = crypto.load_key(cred.key)
    if not key then
        cert:close()
        return nil, failure("invalid", "the private key does not load: " .. kmsg)
    end
    local now = os.time()
    local ok, a = pcall(jwt.sign, { aud = url, iss = cred.client_id, sub = cred.client_id,
        jti = uuid(), nbf = now, iat = now, exp = now + ASSERTION_LIFETIME }, key,
        { alg = "RS256", x5t = cert:x5t(), ["x5t#S256"] = cert:x5t_s256(), secret = true })
    cert:close()
    key:close()
    if not ok then
        return nil, failure("invalid", "cannot sign the client assertion (an RSA key is needed)")
    end
    return a
end


-- Adds the client's authentication (secret or assertion) to form. Returns the assertion handle
-- to close after the request (nil for a secret or a public client), or nil, err.
local function authenticate(form, cred, url)
    if cred.secret then
        form.client_secret = cred.secret
        return nil
    end
    if cred.cert_pem then
        local a, err = assertion(cred, url)
        if not a then return nil, err end
        form.client_assertion_type = ASSERTION_TYPE
        form.client_assertion = a
        return a
    end
    return nil -- a public client
end


-- aurora.secrets is required on first use, not at load: it picks and opens a back end (the
-- embedded store or Vault) that apps using only service-principal tokens never need.
local function secrets()
    return require "aurora.secrets"
end


-- A token saved by save_token for the same credential and scope, still good for at least
-- STORE_MIN_LEFT seconds: handle, expires_at, meta; else nil.
local function load_token(persist, fp, scope)
    local rec = secrets().get(persist.store)
    if type(rec) ~= "table" or rec.fingerprint ~= fp or rec.scope ~= scope or
        type(rec.access_token) ~= "string" or type(rec.expires_at) ~= "number" or
        rec.expires_at - time.now() < M.STORE_MIN_LEFT then
        return nil
    end
    return secret.new(rec.access_token), rec.expires_at,
        { issued_at = tostring(rec.issued_at or ""), stored = "1" }
end


-- Saves a fresh token with its subscription metadata, so another replica or a restart reuses it
-- instead of asking Entra ID again. A failed save is logged (no secret) and otherwise ignored.
local function token_fields(tok, expires_at, t0, scope, fp, meta)
    meta = meta or {}
    return { access_token = tok:reveal(), expires_at = expires_at, issued_at = t0, scope = scope,
        fingerprint = fp, subscription_id = meta.subscription_id,
        subscription_name = meta.subscription_name }
end


local function save_token(persist, fp, scope, tok, expires_at, t0)
    local ok, msg, code = secrets().put(persist.store,
        token_fields(tok, expires_at, t0, scope, fp, persist.meta))
    if not ok then
        log.warn("cannot save the token in the secret store", { path = persist.store,
            error = msg, code = code })
    end
end


-- The fetch function for token.get: client credentials for scope (or the token saved in the
-- secret store at persist.store, when there is one and it is still good).
local function fetcher(cred, url, scope, persist, fp)
    return function()
        if persist and not persist.fresh then
            local h, exp, meta = load_token(persist, fp, scope)
            if h then return h, exp, meta end
        end
        local form = { grant_type = "client_credentials", client_id = cred.client_id,
            scope = scope }
        local _ <close>, err = authenticate(form, cred, url)
        if err then return nil, err end
        local body, t0, ttl = post_token(url, form, cred.ca_file)
        if not body then return nil, t0, ttl end
        local exp = expiry(body, t0)
        if persist then
            save_token(persist, fp, scope, body.access_token, exp, t0)
        end
        return body.access_token, exp, { issued_at = string.format("%.3f", t0) }
    end
end


-- ---- windows -----------------------------------------------------------------------------------

local function lifetime(meta, expires_at)
    local issued = meta and tonumber(meta.issued_at)
    if not issued then return 3600 end
    return math.max(expires_at - issued, 0)
end


local function hard_margin(life)
    return math.min(M.HARD_MARGIN, life * M.HARD_FRACTION)
end


local function refresh_window(life)
    return math.min(M.REFRESH_WINDOW, life * M.REFRESH_FRACTION)
end


-- Starts a background refresh of key unless one runs in this VM or one failed just now. The
-- refresh is token.get with a margin of the refresh window: single flight across workers, and a
-- hit once any worker has refreshed.
local function schedule_refresh(key, cred, url, scope, window, persist, fp)
    local state = refreshing[key]
    if state == true or (state and state > time.now()) then return end
    refreshing[key] = true
    local id = timer.at(0, function()
        -- The caller may have closed its secret handles by now: then the next foreground call
        -- fetches (with live handles) once the token reaches the hard margin.
        if (cred.secret and not is_bytes(cred.secret)) or (cred.key and not is_bytes(cred.key)) then
            refreshing[key] = nil
            return
        end
        local ok, tok, err = pcall(token.get, key, fetcher(cred, url, scope, persist and {
            store = persist.store, meta = persist.meta, fresh = true } or nil, fp),
            { margin = window })
        if ok and tok then
            tok:close()
            refreshing[key] = nil
            return
        end
        refreshing[key] = time.now() + M.REFRESH_BACKOFF
        log.warn("token refresh failed", { tenant = cred.tenant, client_id = cred.client_id,
            scope = scope, code = ok and type(err) == "table" and err.code or "error" })
    end)
    if id == 0 then refreshing[key] = nil end
end


-- The fingerprint kept in a saved token record: the same in every process and replica (the
-- in-memory one is keyed with a per-process random key), so a restart finds its token again.
-- The record is encrypted in the secret store beside the credential itself, so a hash keyed
-- with the credential's ids gives nothing away.
local function record_fingerprint(cred, fp)
    if not cred.secret then return fp end
    return "r:" .. crypto.hex(crypto.hmac_sha256("aurora token record\n" .. cred.tenant .. "\n" ..
        cred.client_id, cred.secret))
end


-- The token-cache key of cred and a scope name, with the token URL, scope and the credential
-- fingerprint for saved records; or nil, err.
local function cache_key(cred, c, scope_name)
    local scope = cloud.scope(c, scope_name)
    local url, umsg = token_url(cred)
    if not url then return nil, failure("invalid", umsg) end
    local fp, fmsg = fingerprint(cred)
    if not fp then return nil, failure("invalid", "the certificate does not load: " .. fmsg) end
    return table.concat({ "identity", url, cred.client_id, fp, scope }, "\n"), url, scope,
        record_fingerprint(cred, fp)
end


-- ---- the API -----------------------------------------------------------------------------------

--- A token for the service principal cred and a scope.
-- cred: {tenant, client_id, secret = handle or string | cert_pem = PEM, key = handle or
--   string, authority_host = URL (default: the cloud's), ca_file = PEM file to trust}.
-- scope_name: "arm", "graph", "aks" (the cloud's scopes, see aurora.cloud) or an explicit scope.
-- Returns handle, expires_at (Unix seconds), or nil, err, code with err = {status, code
-- ("AADSTS7000215", or a word: "connect", "timeout", "unavailable", "bad_reply", "invalid"),
-- error, description, trace_id, correlation_id, message}.
-- opts (optional): store = a secret-store path ("users/<id>/tokens/arm"): a token fetched from
-- Entra ID is saved there with meta = {subscription_id, subscription_name}, and a process
-- without the token in its cache first looks there, so another replica or a restart reuses a
-- valid token instead of asking Entra ID again.
-- Raises for a malformed credential or scope name, and where a task cannot wait.
-- Example: local tok <close>, exp = identity.token({tenant = t, client_id = id, secret = s}, "arm")
function M.token(cred, scope_name, opts)
    check_cred(cred, "token", 1, true)
    if type(scope_name) ~= "string" or scope_name == "" then
        error("bad argument #2 to 'token' (scope name expected, got " .. type(scope_name) .. ")",
            2)
    end
    local bad = check_ids(cred)
    if bad then return nil, bad, bad.code end
    local c, cmsg, ccode = env_cloud()
    if not c then
        local err = failure(ccode, cmsg)
        return nil, err, err.code
    end
    local key, url, scope, fp = cache_key(cred, c, scope_name)
    if not key then return nil, url, url.code end
    local persist = nil
    if opts ~= nil then
        if type(opts) ~= "table" or (opts.store ~= nil and type(opts.store) ~= "string") then
            error("bad argument #3 to 'token' (table with a 'store' path expected)", 2)
        end
        persist = opts.store and { store = opts.store, meta = opts.meta } or nil
    end

    local margin = 0
    local tok, exp, meta = token.peek(key)
    if tok then
        local life = lifetime(meta, exp)
        local left = exp - time.now()
        if left > hard_margin(life) then
            if left <= refresh_window(life) then
                schedule_refresh(key, cred, url, scope, refresh_window(life), persist, fp)
            end
            return tok, exp
        end
        tok:close()
        margin = hard_margin(life)
    end
    local t, e = token.get(key, fetcher(cred, url, scope, persist, fp), { margin = margin })
    if not t then return nil, e, e.code end
    return t, e
end


--- Drops the cached token (and cached failure) of cred and scope_name, so the next call asks
-- Entra ID again (after rotating a secret, or when a token was refused).
-- Example: identity.forget(cred, "arm")
function M.forget(cred, scope_name)
    check_cred(cred, "forget", 1, true)
    local c = env_cloud()
    local key = c and cache_key(cred, c, scope_name)
    if key then token.invalidate(key) end
end


--- The record `token(cred, scope_name, {store = ...})` keeps in the secret store, for the token
-- of cred and scope_name now in the cache, with meta = {subscription_id, subscription_name}:
-- a table to write with aurora.secrets.put, or nil when no token is cached. Lets a caller save
-- the token together with other records (login stores it beside the credentials).
-- Example: local rec = identity.token_record(cred, "arm", {subscription_id = id})
function M.token_record(cred, scope_name, meta)
    check_cred(cred, "token_record", 1, true)
    local c = env_cloud()
    local key, _, scope, fp = nil, nil, nil, nil
    if c then key, _, scope, fp = cache_key(cred, c, scope_name) end
    if not key then return nil end
    local tok, exp, tmeta = token.peek(key)
    if not tok then return nil end
    local rec = token_fields(tok, exp, tonumber(tmeta and tmeta.issued_at) or time.now(), scope,
        fp, meta)
    tok:close()
    return rec
end


-- ---- the authorization-code flow (user sign-in) ----------------------------------------------

--- A PKCE pair: a 43-character verifier from 32 random bytes and its S256 challenge
-- (base64url of its SHA-256, no padding).
-- Example: local verifier, challenge = identity.pkce()
function M.pkce()
    local verifier = crypto.b64url_encode(crypto.random(32))
    return verifier, M.pkce_challenge(verifier)
end


--- The S256 challenge of a verifier.
function M.pkce_challenge(verifier)
    if type(verifier) ~= "string" then
        error("bad argument #1 to 'pkce_challenge' (string expected, got " .. type(verifier) ..
            ")", 2)
    end
    return crypto.b64url_encode(crypto.sha256(verifier))
end


local AUTHORIZE_FIELDS = { tenant = true, client_id = true, authority_host = true,
    redirect_uri = true, scope = true, state = true, code_challenge = true, prompt = true,
    login_hint = true, domain_hint = true, response_mode = true, nonce = true }

--- The URL to send a browser to for sign-in.
-- opts: tenant, client_id, redirect_uri, scope (space-separated; default "openid profile
--   offline_access" plus the cloud's ARM user_impersonation scope), state, code_challenge (S256),
--   prompt, login_hint, domain_hint, response_mode, nonce, authority_host.
-- Returns the URL. Raises when a required field is missing or unknown fields are given.
-- Example: local url = identity.authorize_url{tenant = "organizations", client_id = id,
--     redirect_uri = cb, state = st, code_challenge = ch}
function M.authorize_url(opts)
    if type(opts) ~= "table" then
        error("bad argument #1 to 'authorize_url' (table expected, got " .. type(opts) .. ")", 2)
    end
    for k in pairs(opts) do
        if not AUTHORIZE_FIELDS[k] then
            error("bad argument #1 to 'authorize_url' (unknown field '" .. tostring(k) .. "')", 2)
        end
    end
    for _, f in ipairs { "tenant", "client_id", "redirect_uri" } do
        if type(opts[f]) ~= "string" or opts[f] == "" then
            error("bad argument #1 to 'authorize_url' (field '" .. f .. "' is required)", 2)
        end
    end
    local a = opts.authority_host and opts.authority_host:gsub("/+$", "") or
        assert(env_cloud()).authority_host
    local scope = opts.scope or ("openid profile offline_access " ..
        assert(env_cloud()).arm_scope:gsub("/%.default$", "/user_impersonation"))
    local q = { client_id = opts.client_id, response_type = "code",
        redirect_uri = opts.redirect_uri, scope = scope, response_mode = opts.response_mode,
        state = opts.state, prompt = opts.prompt, login_hint = opts.login_hint,
        domain_hint = opts.domain_hint, nonce = opts.nonce }
    if opts.code_challenge then
        q.code_challenge = opts.code_challenge
        q.code_challenge_method = "S256"
    end
    return a .. "/" .. http.escape(opts.tenant) .. "/oauth2/v2.0/authorize?" .. http.form_encode(q)
end


-- Turns a user-token reply into {access_token = handle, refresh_token = handle | nil,
-- id_token = string | nil, expires_at, scope, token_type}.
local function user_tokens(body, t0)
    local out = {
        access_token = body.access_token,
        expires_at = expiry(body, t0),
        scope = body.scope,
        token_type = body.token_type,
        id_token = type(body.id_token) == "string" and body.id_token or nil,
    }
    out.refresh_token = body.refresh_token
    return out
end


local function user_grant(fname, opts, form)
    local cred = opts.cred
    check_cred(cred, fname, 1, false)
    local bad = check_ids(cred)
    if bad then return nil, bad, bad.code end
    local url, msg = token_url(cred)
    if not url then
        local err = failure("invalid", msg)
        return nil, err, err.code
    end
    form.client_id = cred.client_id
    if opts.scope then form.scope = opts.scope end
    local _ <close>, aerr = authenticate(form, cred, url)
    if aerr then return nil, aerr, aerr.code end
    local body, t0 = post_token(url, form, cred.ca_file)
    if not body then return nil, t0, t0.code end
    return user_tokens(body, t0)
end


--- Redeems an authorization code.
-- opts: code, redirect_uri (the one given to authorize_url), verifier (the PKCE verifier),
--   cred ({tenant, client_id [, secret | cert_pem + key] [, authority_host] [, ca_file]}),
--   scope (optional).
-- Returns {access_token = handle, refresh_token = handle | nil, id_token, expires_at, scope,
-- token_type}, or nil, err, code as identity.token (invalid_grant: AADSTS54005 already
-- redeemed, AADSTS70008 expired, AADSTS501481 verifier mismatch). Nothing is cached.
-- Example: local t = identity.redeem_code{code = q.code, verifier = v, redirect_uri = cb, cred = c}
function M.redeem_code(opts)
    if type(opts) ~= "table" then
        error("bad argument #1 to 'redeem_code' (table expected, got " .. type(opts) .. ")", 2)
    end
    if type(opts.code) ~= "string" or type(opts.redirect_uri) ~= "string" then
        error("bad argument #1 to 'redeem_code' (fields 'code' and 'redirect_uri' are required)",
            2)
    end
    return user_grant("redeem_code", opts, { grant_type = "authorization_code", code = opts.code,
        redirect_uri = opts.redirect_uri, code_verifier = opts.verifier })
end


--- Exchanges a refresh token for new tokens (the reply's refresh token replaces the old one).
-- opts: refresh_token (handle or string), cred, scope (optional).
-- Returns what redeem_code returns.
-- Example: local t = identity.refresh{refresh_token = saved.refresh_token, cred = c}
function M.refresh(opts)
    if type(opts) ~= "table" or not is_bytes(opts.refresh_token) then
        error("bad argument #1 to 'refresh' (table with 'refresh_token' expected)", 2)
    end
    return user_grant("refresh", opts, { grant_type = "refresh_token",
        refresh_token = opts.refresh_token })
end



-- ---- persistence (aurora.secrets) --------------------------------------------------------------

--- Saves the refresh token of a user sign-in (the table redeem_code or refresh returned) in the
-- secret store at store_path ("users/<id>/oauth"), with its scope. Access tokens are not saved:
-- they live an hour and are fetched again with the refresh token.
-- extra (optional): more fields to keep in the record, names to strings, numbers or booleans
-- (the user's tenant, their name); never a secret. refresh_token, scope and saved_at are ours.
-- Returns the stored version, or nil, msg, code as aurora.secrets.put.
-- Raises when store_path is not a string, tokens has no open refresh_token handle, or extra is
-- not such a table.
-- Example: assert(identity.persist("users/" .. uid .. "/oauth", tokens, {tenant = tid}))
function M.persist(store_path, tokens, extra)
    if type(store_path) ~= "string" then
        error("bad argument #1 to 'persist' (string expected, got " .. type(store_path) .. ")", 2)
    end
    if type(tokens) ~= "table" or not secret.is_secret(tokens.refresh_token) then
        error("bad argument #2 to 'persist' (tokens with an open refresh_token expected)", 2)
    end
    if extra ~= nil and type(extra) ~= "table" then
        error("bad argument #3 to 'persist' (table expected, got " .. type(extra) .. ")", 2)
    end
    local rec = {}
    for k, v in pairs(extra or {}) do
        local tv = type(v)
        if type(k) ~= "string" or (tv ~= "string" and tv ~= "number" and tv ~= "boolean") then
            error("bad argument #3 to 'persist' (fields must be names to strings, numbers or " ..
                "booleans)", 2)
        end
        rec[k] = v
    end
    rec.scope, rec.saved_at = tokens.scope, os.time()
    -- The store encrypts the record; the revealed string exists only for the call.
    rec.refresh_token = tokens.refresh_token:reveal()
    return secrets().put(store_path, rec)
end


--- Reads what persist saved: {refresh_token = handle, scope, saved_at} and the extra fields
-- persist was given, plain nil when nothing is stored there, or nil, msg, code as
-- aurora.secrets.get.
-- Example: local saved = identity.restore(path); if saved then t = identity.refresh{...} end
function M.restore(store_path)
    if type(store_path) ~= "string" then
        error("bad argument #1 to 'restore' (string expected, got " .. type(store_path) .. ")", 2)
    end
    local rec, msg, code = secrets().get(store_path)
    if not rec then return nil, msg, code end
    if type(rec.refresh_token) ~= "string" then
        return nil, "the stored record has no refresh token", "invalid"
    end
    local out = {}
    for k, v in pairs(rec) do out[k] = v end
    out.refresh_token = secret.new(rec.refresh_token)
    return out
end

return M

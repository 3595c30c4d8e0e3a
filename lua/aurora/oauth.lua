-- aurora.oauth: the legacy user sign-in (OAuth 2.0 authorization code with PKCE, Entra ID v2.0)
-- for the connector. A user signs in with their own Azure account through Aurora's app
-- registration (AZURE_CLIENT_ID / AZURE_CLIENT_SECRET); the refresh token is kept in the secret
-- store at users/<id>/oauth and later calls get delegated access tokens from it.
--
-- Uses aurora.identity for the protocol (authorize URL, PKCE, code redemption, refresh,
-- persistence), aurora.shared for the pending sign-ins (the `state` records) and aurora.token
-- for the access-token cache. The client secret goes from the environment into a secret handle
-- and never becomes a Lua string; codes and tokens never reach a log, an error or a response.
-- The HTTP side (status codes, redirects, wording) is lua/handlers/oauth.lua.
local cloud = require "aurora.cloud"
local crypto = require "aurora.crypto"
local env = require "aurora.env"
local identity = require "aurora.identity"
local json = require "aurora.json"
local jwt = require "aurora.jwt"
local secret = require "aurora.secret"
local shared = require "aurora.shared"
local time = require "aurora.time"
local token = require "aurora.token"
local account = require "aurora.azure.account"

local M = {}

--- Seconds a sign-in may take between GET /azure/oauth/login and the callback.
M.STATE_TTL = 600
--- How long an expired or used state is still recognised (to say "expired"/"already used"
-- rather than "unknown"), seconds.
M.STATE_MEMORY = 3600
--- The tenant of the authorize URL: "organizations" lets any work or school account sign in
-- (Aurora's app registration is multi-tenant); a tenant id or domain pins one directory.
M.TENANT = "organizations"
--- The OpenID Connect scopes asked for besides the resource's.
M.OIDC_SCOPES = "offline_access openid profile"
--- A cached access token is not handed out in its last MARGIN seconds (it is refreshed).
M.MARGIN = 60
--- Where the callback lives on this server (the redirect URI's path when it is derived).
M.CALLBACK_PATH = "/azure/callback"

local pending = shared.dict("aurora.oauth.state", { max_items = 100000 })
local spent = shared.dict("aurora.oauth.spent", { max_items = 100000 })


--- The store path of the user's sign-in record.
function M.path(uid) return account.path(uid, "oauth") end


--- true when Aurora's app registration is configured, else nil and the names of the missing
-- variables (the secret is looked at through a handle, never read into Lua).
function M.configured()
    local missing = {}
    if not env.get("AZURE_CLIENT_ID") then missing[#missing + 1] = "AZURE_CLIENT_ID" end
    local s <close> = secret.from_env("AZURE_CLIENT_SECRET")
    if not s then missing[#missing + 1] = "AZURE_CLIENT_SECRET" end
    if #missing > 0 then return nil, missing end
    return true
end


-- Aurora's app registration as an identity credential for tenant; close(cred) wipes it.
local function app_cred(tenant)
    return { tenant = tenant or M.TENANT, client_id = env.get("AZURE_CLIENT_ID"),
        secret = secret.from_env("AZURE_CLIENT_SECRET") }
end


local function close(cred)
    if cred and cred.secret then cred.secret:close() end
end


--- The delegated scopes for a scope name of aurora.cloud ("arm" by default): the cloud's ARM
-- user_impersonation (or the resource's .default for another name) and M.OIDC_SCOPES.
-- Returns the space-separated scope, or nil, msg, code when the cloud is misconfigured.
-- Example: oauth.scope()
--     --> "https://management.azure.com/user_impersonation offline_access openid profile"
function M.scope(scope_name)
    local c, msg, code = cloud.current()
    if not c then return nil, msg, code end
    local s = cloud.scope(c, scope_name or "arm")
    if (scope_name or "arm") == "arm" then s = s:gsub("/%.default$", "/user_impersonation") end
    return s .. " " .. M.OIDC_SCOPES
end


--- The callback URL: AZURE_REDIRECT_URI, else derived from the request (X-Forwarded-Proto, or
-- https when the server has a certificate, else http; X-Forwarded-Host or Host) and
-- CALLBACK_PATH. Returns the URL, or nil and why.
function M.redirect_uri(req)
    local configured = env.get("AZURE_REDIRECT_URI")
    if configured then return configured end
    local h = req.headers
    local proto = (h["x-forwarded-proto"] or ""):match("^%s*([%a]+)")
    proto = proto and proto:lower()
    if proto ~= "http" and proto ~= "https" then
        proto = env.get("AURORA_TLS_CERT") and "https" or "http"
    end
    local host = (h["x-forwarded-host"] or ""):match("^%s*([^,%s]+)") or h["host"]
    if type(host) ~= "string" or not host:match("^[%w%.%-%[%]:]+$") then
        return nil, "no usable Host header to build the callback URL from; set AZURE_REDIRECT_URI"
    end
    return proto .. "://" .. host .. M.CALLBACK_PATH
end


-- The dictionary key of a state value: its SHA-256, so the live values are not kept as keys.
local function state_key(state)
    return crypto.hex(crypto.sha256(state))
end


--- Starts a sign-in for uid: a fresh state (bound to uid, valid STATE_TTL seconds, single use)
-- and PKCE verifier kept server-side, and the Entra ID authorize URL to send the browser to.
-- opts (optional): login_hint, domain_hint, prompt.
-- Returns url, state, or nil, msg, code ("invalid" for a bad cloud configuration, "nomem").
-- Example: local url = assert(oauth.begin(uid, oauth.redirect_uri(req)))
function M.begin(uid, redirect_uri, opts)
    opts = opts or {}
    local scope, smsg, scode = M.scope("arm")
    if not scope then return nil, smsg, scode end
    local c = assert(cloud.current())
    local verifier, challenge = identity.pkce()
    local state = crypto.b64url_encode(crypto.random(32))
    local now = time.now()
    local rec = json.encode { uid = uid, verifier = verifier, redirect_uri = redirect_uri,
        expires_at = now + M.STATE_TTL }
    local ok, msg, code = pending:add(state_key(state), rec, M.STATE_TTL + M.STATE_MEMORY)
    if not ok then return nil, msg or "state collision", code or "conflict" end
    local url = identity.authorize_url { tenant = M.TENANT, client_id = env.get("AZURE_CLIENT_ID"),
        redirect_uri = redirect_uri, scope = scope, state = state, code_challenge = challenge,
        authority_host = c.authority_host, login_hint = opts.login_hint,
        domain_hint = opts.domain_hint, prompt = opts.prompt }
    return url, state
end


--- Takes the pending sign-in of a state, once: {uid, verifier, redirect_uri}, or nil and why
-- ("unknown", "expired", "used"). Two callbacks racing with one state: exactly one gets it.
function M.consume(state)
    if type(state) ~= "string" or state == "" or #state > 512 then return nil, "unknown" end
    local key = state_key(state)
    local text = pending:get(key)
    if not text then
        return nil, spent:get(key) and "used" or "unknown"
    end
    -- add is atomic across workers: the first caller marks the state spent, any other loses.
    if not spent:add(key, true, M.STATE_TTL + M.STATE_MEMORY) then return nil, "used" end
    pending:delete(key)
    local rec = json.decode(text)
    if type(rec) ~= "table" then return nil, "unknown" end
    if rec.expires_at <= time.now() then return nil, "expired" end
    return rec
end


-- The access-token cache key of a user and scope; the user's generation (bumped by a new
-- sign-in and by disconnect) is part of it, so no token outlives the connection it came from.
local function cache_key(uid, scope)
    return table.concat({ "oauth", uid, tostring(account.generation(uid)), scope }, "\n")
end


-- Who signed in, from the id token (or the access token): {tenant, user, oid}. Not verified
-- here because it came straight from the token endpoint over verified TLS; only used to route
-- later refreshes to the user's tenant and to show who is connected.
local function who(t)
    local _, claims = jwt.decode(t.id_token or t.access_token)
    if type(claims) ~= "table" then _, claims = jwt.decode(t.access_token) end
    if type(claims) ~= "table" then return {} end
    local function str(v) return type(v) == "string" and v or nil end
    return { tenant = str(claims.tid), oid = str(claims.oid),
        user = str(claims.preferred_username) or str(claims.upn) or str(claims.unique_name) }
end


--- Finishes a sign-in: redeems code (with the verifier of rec, from consume) for tokens,
-- stores the refresh token at users/<uid>/oauth and caches the access token.
-- Returns {tenant, user, oid} (who signed in), or nil, err, what with what = "redeem" (err is
-- identity's error table) or "store" (err = {code, message}).
function M.finish(rec, code)
    local scope = assert(M.scope("arm"))
    local cred = app_cred()
    local t, err = identity.redeem_code { code = code, redirect_uri = rec.redirect_uri,
        verifier = rec.verifier, cred = cred, scope = scope }
    close(cred)
    if not t then return nil, err, "redeem" end
    if not t.refresh_token then
        t.access_token:close()
        return nil, { status = 0, code = "bad_reply", message = "Entra ID answered without a " ..
            "refresh token (was offline_access granted?)" }, "redeem"
    end
    local info = who(t)
    info.connected_at = os.time()
    local ok, msg, scode = identity.persist(M.path(rec.uid), t, info)
    t.refresh_token:close()
    if not ok then
        t.access_token:close()
        return nil, { status = 0, code = scode, message = msg }, "store"
    end
    -- A new connection: caches of the old one go (the generation is in every per-user key).
    account.bump(rec.uid)
    token.put(cache_key(rec.uid, cloud.scope(assert(cloud.current()), "arm")), t.access_token,
        t.expires_at)
    t.access_token:close()
    return info
end


-- The fetch function of token.get: refreshes the stored refresh token for scope, stores the
-- rotated one, and returns the new access token.
local function fetcher(uid, scope_name, gen)
    return function()
        local saved, msg, code = identity.restore(M.path(uid))
        if not saved then
            if msg then return nil, { status = 0, code = code, message = msg, what = "store" } end
            return nil, { status = 0, code = "not_connected", what = "not_connected",
                message = "no OAuth sign-in is stored for this user" }
        end
        local scope, smsg, scode = M.scope(scope_name)
        if not scope then
            saved.refresh_token:close()
            return nil, { status = 0, code = scode, message = smsg }
        end
        local cred = app_cred(saved.tenant)
        local t, err = identity.refresh { refresh_token = saved.refresh_token, cred = cred,
            scope = scope }
        close(cred)
        saved.refresh_token:close()
        if not t then
            err.what = "refresh"
            return nil, err
        end
        local keep = {}
        for k, v in pairs(saved) do
            if k ~= "refresh_token" and k ~= "scope" and k ~= "saved_at" then keep[k] = v end
        end
        -- Entra ID rotates refresh tokens: the new one must be stored, the old one is dead. A
        -- disconnect that happened meanwhile wins: nothing is written back then.
        if t.refresh_token then
            if account.generation(uid) == gen then
                local ok, pmsg, pcode = identity.persist(M.path(uid), t, keep)
                if not ok then
                    t.refresh_token:close()
                    t.access_token:close()
                    return nil, { status = 0, code = pcode, message = pmsg, what = "store" }
                end
            end
            t.refresh_token:close()
        end
        return t.access_token, t.expires_at
    end
end


--- A delegated access token of the user signed in through OAuth, for a scope name of
-- aurora.cloud ("arm" by default, "graph", ...), from the cache or by refreshing the stored
-- refresh token (single flight across workers; the rotated refresh token is stored again).
-- Returns a secret handle and expires_at, or nil, err, code; err.what tells what failed:
-- "not_connected" (no sign-in stored), "refresh" (Entra ID refused or failed: err is identity's
-- error, invalid_grant meaning the user must sign in again), "store" (the secret store).
-- Example: local tok <close> = oauth.token(uid); local subs = arm.list(tok, "/subscriptions", q)
function M.token(uid, scope_name)
    scope_name = scope_name or "arm"
    local c, msg, code = cloud.current()
    if not c then return nil, { status = 0, code = code, message = msg }, code end
    local gen = account.generation(uid)
    local key = cache_key(uid, cloud.scope(c, scope_name))
    local tok, exp = token.get(key, fetcher(uid, scope_name, gen), { margin = M.MARGIN })
    if not tok then return nil, exp, exp.code end
    return tok, exp
end


--- What is stored for the user: {tenant, user, oid, connected_at, saved_at} (no secret), plain
-- nil when the user has not signed in through OAuth, or nil, msg, code from the store.
function M.info(uid)
    local saved, msg, code = identity.restore(M.path(uid))
    if not saved then return nil, msg, code end
    saved.refresh_token:close()
    saved.refresh_token = nil
    return saved
end

return M

-- The legacy OAuth (user sign-in) endpoints: GET /azure/oauth/login, GET /azure/callback and
-- GET /azure/oauth/status. The flow itself (state, PKCE, code redemption, refresh tokens) is
-- lua/aurora/oauth.lua; this file decides statuses, redirects and wording.
--
-- The callback is not behind X-User-ID or AURORA_API_TOKEN: the browser arrives there from
-- Entra ID and can carry neither. Its credential is the `state`: 256 random bits, issued by
-- /azure/oauth/login to a caller that passed both checks, bound to that user, single use and
-- valid for oauth.STATE_TTL seconds. Without a valid state the callback does nothing.
local env = require "aurora.env"
local http = require "aurora.http"
local json = require "aurora.json"
local oauth = require "aurora.oauth"
local errors = require "aurora.errors"
local account = require "aurora.azure.account"
local users = require "aurora.users"

local M = {}

local fail = users.fail

-- What the front end is sent to after the callback: FRONTEND_URL .. RESULT_PATH ?status=...
M.RESULT_PATH = "/azure/connected"

-- Headers of every callback answer: the URL it was reached by holds a code.
local NO_STORE = { ["Cache-Control"] = "no-store", ["Referrer-Policy"] = "no-referrer" }

-- Why a state is refused, for people.
local STATE_REASONS = {
    missing = "the sign-in response has no state parameter",
    unknown = "the sign-in state is unknown: start the sign-in again",
    used = "the sign-in state was already used: start the sign-in again",
    expired = "the sign-in took too long and its state expired: start the sign-in again",
}


local function not_configured(req)
    local _, missing = oauth.configured()
    return fail(req, "oauth_not_configured", { status = 0, code = "not_configured",
        message = "missing " .. table.concat(missing or {}, ", ") })
end


--- GET /azure/oauth/login (X-User-ID): 302 to Entra ID's authorize endpoint, or with
-- ?format=json, 200 {"url": ..., "expires_in": seconds}. Optional ?login_hint=, ?domain_hint=,
-- ?prompt= are passed on.
function M.login(req, uid)
    if not oauth.configured() then return not_configured(req) end
    local redirect_uri, why = oauth.redirect_uri(req)
    if not redirect_uri then return fail(req, "bad_request", { message = why }) end
    local q = req.query
    local prompt = q.prompt
    if prompt and prompt ~= "login" and prompt ~= "consent" and prompt ~= "select_account" and
        prompt ~= "none" then
        return fail(req, "bad_request", { message = "prompt must be login, consent, " ..
            "select_account or none" })
    end
    local url, msg, code = oauth.begin(uid, redirect_uri, { login_hint = q.login_hint,
        domain_hint = q.domain_hint, prompt = prompt })
    if not url then
        return fail(req, code == "invalid" and "oauth_not_configured" or "storage_failed",
            { status = 0, code = code, message = msg })
    end
    if q.format == "json" then
        return 200, { url = url, expires_in = oauth.STATE_TTL }, { ["Cache-Control"] = "no-store" }
    end
    return 302, nil, { Location = url, ["Cache-Control"] = "no-store" }
end


-- The callback's answer: a redirect to the front end with the outcome when FRONTEND_URL is set,
-- else JSON (the error body, or ok_body).
local function outcome(req, status, body)
    local front = env.get("FRONTEND_URL")
    local headers = {}
    for k, v in pairs(NO_STORE) do headers[k] = v end
    if not front then
        return status, body, headers
    end
    local q
    if status < 400 then
        q = { status = "success" }
    else
        local msg = body.error
        local detail = type(body.upstream) == "table" and body.upstream.message
        if detail then msg = msg .. ": " .. detail end
        q = { status = "error", error = msg, code = body.code, requestId = body.requestId }
    end
    headers.Location = front:gsub("/+$", "") .. M.RESULT_PATH .. "?" .. http.form_encode(q)
    return 302, nil, headers
end


local function failed(req, kind, upstream)
    local status, body = fail(req, kind, upstream)
    return outcome(req, status, body)
end


-- The kind for a failed code redemption or refresh (identity's error table): Entra ID refusing
-- Aurora's own app registration is the operator's to fix (token_failed, with the AADSTS steps);
-- refusing the user's grant means signing in again (oauth_failed); no answer is token_failed.
local function grant_failure_kind(err)
    if err.error == "invalid_client" or err.error == "unauthorized_client" then
        return "token_failed"
    end
    if err.status == 400 or err.status == 401 then return "oauth_failed" end
    return "token_failed"
end


--- GET /azure/callback: where Entra ID sends the browser back with ?code=&state= (or
-- ?error=&error_description=&state=). No X-User-ID: the user is the one the state was issued to.
function M.callback(req)
    -- HEAD (a link checker, a prefetch) would spend the state without a sign-in.
    if req.method ~= "GET" then return 405, nil, { Allow = "GET" } end
    if not oauth.configured() then
        local status, body = not_configured(req)
        return outcome(req, status, body)
    end
    local q = req.query
    local state = q.state
    if not state or state == "" then
        return failed(req, "oauth_failed", { status = 400, code = "state_missing",
            message = STATE_REASONS.missing })
    end
    local rec, why = oauth.consume(state)
    if q.error and q.error ~= "" then
        -- Entra ID's own refusal (the user cancelled, consent missing, ...). The state is spent
        -- above either way, so this response cannot be replayed into a sign-in.
        local word = q.error:gsub("[^%w_]", ""):sub(1, 64)
        local desc = errors.clean_message(q.error_description)
        return failed(req, "oauth_failed", { status = 400, code = word,
            message = "Entra ID: " .. (desc or word) })
    end
    if not rec then
        return failed(req, "oauth_failed", { status = 400, code = "state_" .. why,
            message = STATE_REASONS[why] })
    end
    if not q.code or q.code == "" then
        return failed(req, "oauth_failed", { status = 400, code = "code_missing",
            message = "the sign-in response has no code" })
    end
    local info, err, what = oauth.finish(rec, q.code)
    if not info then
        if what == "store" then return failed(req, "storage_failed", err) end
        -- Entra ID refused the code (expired, already used, PKCE mismatch): the sign-in failed.
        return failed(req, grant_failure_kind(err), err)
    end
    return outcome(req, 200, { status = "success", message = "Azure account connected",
        user = info.user, tenant_id = info.tenant })
end


--- GET /azure/oauth/status (X-User-ID): whether the user is connected through OAuth and, with
-- the delegated token, the subscriptions they can see.
function M.status(req, uid)
    if not oauth.configured() then return not_configured(req) end
    local info, msg, code = oauth.info(uid)
    if not info then
        if msg then
            return fail(req, "storage_failed", { status = 0, code = code, message = msg })
        end
        return 200, { connected = false, method = json.null }
    end
    local tok, err = oauth.token(uid, "arm")
    if not tok then
        if err.what == "store" then return fail(req, "storage_failed", err) end
        if err.what == "not_connected" then
            return 200, { connected = false, method = json.null }
        end
        -- invalid_grant: the refresh token expired or was revoked; the user signs in again.
        return fail(req, grant_failure_kind(err), err)
    end
    local subs, aerr = account.list_subscriptions(tok)
    tok:close()
    if not subs then return fail(req, "upstream", aerr) end
    local list = json.array()
    for _, s in ipairs(subs) do
        list[#list + 1] = { subscriptionId = s.subscriptionId, name = s.displayName,
            state = s.state, tenantId = s.tenantId }
    end
    return 200, { connected = true, method = "oauth", user = info.user,
        tenant_id = info.tenant, connected_at = info.connected_at, subscriptions = list }
end

return M

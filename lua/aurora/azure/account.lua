-- A user's connected Azure account: the stored credentials, the tokens made from them, the
-- enabled subscriptions and the per-user cache generation. Every handler that works on the
-- connected account goes through here.
--
-- Storage per user (aurora.secrets): users/<id>/azure (Do-mode credentials),
-- users/<id>/azure-readonly (Ask-mode credentials, optional), users/<id>/tokens/arm (the saved
-- management token), users/<id>/subscriptions ({enabled = [ids]}).
local secret = require "aurora.secret"
local secrets = require "aurora.secrets"
local shared = require "aurora.shared"
local identity = require "aurora.identity"
local arm = require "aurora.azure.arm"
local users = require "aurora.users"

local M = {}

local fail = users.fail
local gens = shared.dict("azure_account", { max_items = 100000 })

--- The store path of one of a user's records ("azure", "tokens/arm", ...).
function M.path(uid, what) return "users/" .. uid .. "/" .. what end


--- An identity credential from stored or submitted fields; close(cred) wipes its handles.
function M.to_cred(c)
    local cred = { tenant = c.tenantId, client_id = c.clientId }
    if c.clientSecret then
        cred.secret = secret.new(c.clientSecret)
    else
        cred.cert_pem = c.certificatePem
        cred.key = secret.new(c.privateKeyPem)
    end
    return cred
end


function M.close(cred)
    if cred and cred.secret then cred.secret:close() end
    if cred and cred.key then cred.key:close() end
end


--- The error answer for a failed token request.
function M.token_failure(req, err)
    if type(err) ~= "table" then err = { status = 0, code = tostring(err), message = tostring(err) } end
    if err.code == "AADSTS700016" then return fail(req, "sp_not_found", err) end
    if err.status == 400 or err.status == 401 or err.code == "invalid" then
        return fail(req, "invalid_credentials", err)
    end
    return fail(req, "token_failed", err)
end


function M.list_subscriptions(tok)
    return arm.list(tok, "/subscriptions", { ["api-version"] = arm.API_VERSIONS.subscriptions })
end


--- The user's cache generation: part of every per-user cache key, bumped by login, disconnect
-- and a change of the enabled subscriptions, so no stale entry survives them.
function M.generation(uid) return gens:get("gen:" .. uid) or 0 end


function M.bump(uid) gens:incr("gen:" .. uid, 1, 0) end


--- The caller's mode from X-Aurora-Mode ("ask" by default), or nil and an error answer.
function M.mode(req)
    local mode = req.headers["x-aurora-mode"]
    if mode == nil or mode == "" then return "ask" end
    mode = mode:lower()
    if mode ~= "ask" and mode ~= "do" then
        return nil, { fail(req, "bad_request", { message = "X-Aurora-Mode must be 'ask' or 'do'" }) }
    end
    return mode
end


local function oauth() return require "aurora.oauth" end

-- The account of a user connected only through the OAuth sign-in (lua/aurora/oauth.lua):
-- {oauth = true, uid, tenantId, subscriptionId}, its subscription the first enabled one (the
-- first Enabled subscription the user sees, saved as the enabled set, the first time).
local function oauth_account(req, uid, rec)
    local main = { oauth = true, uid = uid, tenantId = rec.tenant }
    main.subscriptionId = M.enabled_set(uid, main)[1]
    if main.subscriptionId then return main end
    local tok, err = oauth().token(uid, "arm")
    if not tok then return nil, { M.token_failure(req, err) } end
    local subs, aerr = M.list_subscriptions(tok)
    tok:close()
    if not subs then return nil, { fail(req, "upstream", aerr) } end
    for _, s in ipairs(subs) do
        if s.state == "Enabled" then
            main.subscriptionId, main.subscriptionName = s.subscriptionId, s.displayName
            secrets.put(M.path(uid, "subscriptions"), { enabled = { s.subscriptionId } })
            return main
        end
    end
    return nil, { fail(req, "no_enabled_subscription", { status = 200, code = "none_enabled",
        message = "no Enabled subscription is visible to the signed-in user" }) }
end


--- The stored credentials: main, readonly (or nil), or nil, nil, {error answer}. A user with
-- no service principal but an OAuth sign-in gets main = {oauth = true, ...}: its tokens are the
-- user's delegated ones.
function M.load(req, uid)
    local _, e = M.mode(req)
    if e then return nil, nil, e end
    local main, msg, code = secrets.get(M.path(uid, "azure"))
    if not main then
        if msg then return nil, nil, { fail(req, "storage_failed", { code = code, message = msg }) } end
        local rec = secrets.get(M.path(uid, "oauth"))
        if type(rec) == "table" and rec.refresh_token then
            local acct, oerr = oauth_account(req, uid, rec)
            if not acct then return nil, nil, oerr end
            return acct, nil
        end
        return nil, nil, { fail(req, "not_connected") }
    end
    local ro = secrets.get(M.path(uid, "azure-readonly"))
    return main, ro
end


--- A management token for reads: the read-only credentials when present, else the main ones
-- (whose token is saved in the store). Returns handle, nil, "ro"|"rw" or nil, err.
function M.read_token(uid, main, ro, scope)
    if main.oauth then
        local tok, err = oauth().token(uid, scope or "arm")
        return tok, err, "rw"
    end
    local c = ro or main
    local cred = M.to_cred(c)
    local opts = not ro and (scope or "arm") == "arm" and { store = M.path(uid, "tokens/arm"),
        meta = { subscription_id = main.subscriptionId,
            subscription_name = main.subscriptionName } } or nil
    local tok, err = identity.token(cred, scope or "arm", opts)
    M.close(cred)
    return tok, err, ro and "ro" or "rw"
end


--- A token of the Do-mode credentials for a change: only in Do mode (else nil, {403 answer}).
-- scope: "arm" (default) or another scope name of aurora.cloud ("aks").
function M.write_token(req, uid, main, scope)
    local mode, e = M.mode(req)
    if not mode then return nil, e end
    if mode ~= "do" then return nil, { fail(req, "forbidden_mode") } end
    local tok, err = M.token(main, scope or "arm")
    if not tok then return nil, { M.token_failure(req, err) } end
    return tok
end


--- A token of one set of credentials (main or read-only) for a scope name (arm, graph, aks):
-- handle, or nil, err.
function M.token(main, scope)
    if main.oauth then return oauth().token(main.uid, scope) end
    local cred = M.to_cred(main)
    local tok, err = identity.token(cred, scope)
    M.close(cred)
    return tok, err
end


--- The subscriptions the user enabled (the connected one when none are saved).
function M.enabled_set(uid, main)
    local rec = secrets.get(M.path(uid, "subscriptions"))
    local ids = {}
    if rec and type(rec.enabled) == "table" then
        for _, id in ipairs(rec.enabled) do ids[#ids + 1] = id end
    end
    if #ids == 0 then ids[1] = main.subscriptionId end
    table.sort(ids)
    return ids
end

return M

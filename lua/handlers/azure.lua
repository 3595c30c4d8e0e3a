-- The Azure connector endpoints: login, fetch_data, clusters, the enabled-subscription set and
-- disconnect. What is stored per user: lua/aurora/azure/account.lua.
local json = require "aurora.json"
local secret = require "aurora.secret"
local secrets = require "aurora.secrets"
local identity = require "aurora.identity"
local arm = require "aurora.azure.arm"
local account = require "aurora.azure.account"
local cloud = require "aurora.cloud"
local http = require "aurora.http"
local users = require "aurora.users"
local errors = require "aurora.errors"
local aliases = require "maps.aliases"

local M = {}

-- fetch_data warns when the client secret expires within this many days.
M.SECRET_WARNING_DAYS = 30

local path, to_cred, close = account.path, account.to_cred, account.close
local token_failure, list_subscriptions = account.token_failure, account.list_subscriptions
local load, read_token, enabled_set = account.load, account.read_token, account.enabled_set
local generation, bump = account.generation, account.bump

local fail = users.fail
local GUID = "^%x%x%x%x%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$"

local function is_guid(v) return type(v) == "string" and v:match(GUID) ~= nil end

-- The answer for a failed token request, with the kind lua/maps/errors.lua gives its code
-- (AADSTS500011 is sp_not_found, AADSTS70011 token_failed, ...); codes the map does not
-- name are judged by their status.
local function token_error(req, err)
    local kind = type(err) == "table" and errors.classify(err) or "upstream"
    if kind == "upstream" then return token_failure(req, err) end
    return fail(req, kind, err)
end

-- X-Aurora-Mode must be "ask" or "do" (or absent) on every route: nil, or the 400 answer.
local function bad_mode(req)
    local _, e = account.mode(req)
    return e
end

-- Canonical names for the fields of t (aliases applied; a canonical name given too wins).
local function canonical(t)
    local out = {}
    for k, v in pairs(t) do
        local c = aliases[k]
        if c and t[c] == nil then out[c] = v elseif not c then out[k] = v end
    end
    return out
end

local function is_object(v)
    return type(v) == "table" and getmetatable(v) ~= json.array_mt and v[1] == nil
end

-- Checks one set of credentials; appends problems (naming each field) to errs.
local function check_creds(c, prefix, errs, optional_tenant)
    local function bad(f, why) errs[#errs + 1] = prefix .. f .. " " .. why end
    if c.tenantId == nil then
        if not optional_tenant then bad("tenantId", "is missing") end
    elseif type(c.tenantId) ~= "string" then bad("tenantId", "must be a string")
    elseif not is_guid(c.tenantId) then bad("tenantId", "must be a GUID") end
    if c.clientId == nil then bad("clientId", "is missing")
    elseif type(c.clientId) ~= "string" then bad("clientId", "must be a string")
    elseif not is_guid(c.clientId) then bad("clientId", "must be a GUID") end
    local has_cert = c.certificatePem ~= nil or c.privateKeyPem ~= nil
    if c.clientSecret ~= nil then
        if type(c.clientSecret) ~= "string" or c.clientSecret == "" then
            bad("clientSecret", "must be a non-empty string")
        end
        if has_cert then bad("clientSecret", "cannot be given with certificatePem") end
    elseif has_cert then
        for _, f in ipairs { "certificatePem", "privateKeyPem" } do
            if type(c[f]) ~= "string" or not c[f]:find("-----BEGIN", 1, true) then
                bad(f, "must be PEM text")
            end
        end
    else
        bad("clientSecret", "is missing (or give certificatePem and privateKeyPem)")
    end
    if c.subscriptionId ~= nil then
        if type(c.subscriptionId) ~= "string" then bad("subscriptionId", "must be a string")
        elseif not is_guid(c.subscriptionId) then bad("subscriptionId", "must be a GUID") end
    end
    if c.subscriptionName ~= nil and type(c.subscriptionName) ~= "string" then
        bad("subscriptionName", "must be a string")
    end
end

-- The subscription to use: `want` when it is visible and Enabled, else the first Enabled one.
-- Otherwise nil and the `upstream` of the no_enabled_subscription answer: ARM answered (200),
-- code says why (not_enabled, not_visible, none_visible, none_enabled; lua/maps/errors.lua has
-- steps for each) and message says which subscription and state.
local function pick(subs, want, prefix)
    local function none(code, why)
        return nil, { status = 200, code = code, message = (prefix or "") .. why }
    end
    for _, s in ipairs(subs) do
        if want == nil and s.state == "Enabled" then return s end
        if want and type(s.subscriptionId) == "string" and
                s.subscriptionId:lower() == want:lower() then
            if s.state == "Enabled" then return s end
            return none("not_enabled", "subscription " .. want .. " is " .. tostring(s.state) ..
                ", not Enabled")
        end
    end
    if want then
        return none("not_visible", "subscription " .. want .. " is not visible to these credentials")
    end
    if #subs == 0 then
        return none("none_visible", "no subscription is visible to these credentials")
    end
    return none("none_enabled", "no Enabled subscription is visible to these credentials")
end

local function stored_fields(c)
    return { tenantId = c.tenantId, clientId = c.clientId, clientSecret = c.clientSecret,
        certificatePem = c.certificatePem, privateKeyPem = c.privateKeyPem,
        subscriptionId = c.subscriptionId, subscriptionName = c.subscriptionName,
        savedAt = os.time() }
end

function M.login(req, uid)
    local merr = bad_mode(req)
    if merr then return table.unpack(merr) end
    local ok, body = pcall(req.json, req)
    if not ok then
        return fail(req, "bad_request", { message = "the request body must be a JSON object" ..
            (type(body) == "table" and body.error and (": " .. body.error) or "") })
    end
    if not is_object(body) then
        return fail(req, "bad_request", { message = "the request body must be a JSON object" })
    end
    local c = canonical(body)
    local errs = {}
    check_creds(c, "", errs)
    local ro
    if c.readOnlyCredentials ~= nil and c.readOnlyCredentials ~= json.null then
        if not is_object(c.readOnlyCredentials) then
            errs[#errs + 1] = "readOnlyCredentials must be an object"
        else
            ro = canonical(c.readOnlyCredentials)
            check_creds(ro, "readOnlyCredentials.", errs, true)
        end
    end
    if #errs > 0 then
        return fail(req, "bad_request", { message = table.concat(errs, "; "), fields = errs })
    end

    local cred = to_cred(c)
    local tok, err = identity.token(cred, "arm")
    if not tok then close(cred); return token_error(req, err) end
    local subs, aerr = list_subscriptions(tok)
    tok:close()
    if not subs then close(cred); return fail(req, "upstream", aerr) end
    local sub, why = pick(subs, c.subscriptionId)
    if not sub then close(cred); return fail(req, "no_enabled_subscription", why) end
    -- The management token is stored beside the credentials, with the subscription chosen.
    local token_rec = identity.token_record(cred, "arm", { subscription_id = sub.subscriptionId,
        subscription_name = sub.displayName })
    close(cred)

    if ro then
        ro.tenantId = ro.tenantId or c.tenantId
        ro.subscriptionId = ro.subscriptionId or sub.subscriptionId
        local rcred = to_cred(ro)
        local rtok, rerr = identity.token(rcred, "arm")
        close(rcred)
        if not rtok then
            -- Say whose token failed; the answer shows Entra's description when there is one.
            if type(rerr) == "table" then
                local f = rerr.description and "description" or "message"
                rerr[f] = "readOnlyCredentials: " .. tostring(rerr[f])
            end
            return token_error(req, rerr)
        end
        local rsubs, raerr = list_subscriptions(rtok)
        rtok:close()
        if not rsubs then return fail(req, "upstream", raerr) end
        local rsub, rwhy = pick(rsubs, ro.subscriptionId, "readOnlyCredentials: ")
        if not rsub then return fail(req, "no_enabled_subscription", rwhy) end
        ro.subscriptionName = rsub.displayName
    end

    -- Everything checked: store. A user's earlier choice of enabled subscriptions survives a
    -- new login where this principal still sees them; the chosen one is always enabled.
    c.subscriptionId, c.subscriptionName = sub.subscriptionId, sub.displayName
    local enabled = setmetatable({ sub.subscriptionId }, json.array_mt)
    local prev = secrets.get(path(uid, "subscriptions"))
    if type(prev) == "table" and type(prev.enabled) == "table" then
        local seen = { [sub.subscriptionId:lower()] = true }
        for _, s in ipairs(subs) do
            if type(s.subscriptionId) == "string" then seen[s.subscriptionId:lower()] = false end
        end
        seen[sub.subscriptionId:lower()] = true
        for _, id in ipairs(prev.enabled) do
            if type(id) == "string" and seen[id:lower()] == false then
                enabled[#enabled + 1] = id
                seen[id:lower()] = true
            end
        end
    end
    -- A record this login does not have (false) is deleted in the same sequence, so a failed
    -- delete is undone like a failed write and never leaves an earlier login's read-only
    -- credentials or token beside these.
    local writes = {
        { path(uid, "azure"), stored_fields(c) },
        { path(uid, "subscriptions"), { enabled = enabled } },
        { path(uid, "azure-readonly"), ro and stored_fields(ro) or false },
        { path(uid, "tokens/arm"), token_rec or false },
    }
    -- If a write fails, put back what was there: a failed re-login keeps the old connection.
    local before = {}
    for i, w in ipairs(writes) do
        local v, msg, code = secrets.get(w[1])
        if v == nil and msg then
            return fail(req, "storage_failed", { status = 0, code = code, message = msg })
        end
        before[i] = v or false
    end
    for i, w in ipairs(writes) do
        local v, msg, code = true, nil, nil
        if w[2] then v, msg, code = secrets.put(w[1], w[2])
        elseif before[i] then v, msg, code = secrets.delete(w[1]) end
        if not v then
            for j = 1, i do
                if before[j] then secrets.put(writes[j][1], before[j])
                elseif writes[j][2] then secrets.delete(writes[j][1]) end
            end
            return fail(req, "storage_failed", { status = 0, code = code, message = msg })
        end
    end
    bump(uid)
    return 200, { message = "Azure credentials validated and stored",
        subscription_id = sub.subscriptionId, subscription_name = sub.displayName,
        read_only = ro ~= nil }
end

-- Unix seconds of an ISO 8601 UTC time ("2027-01-31T12:00:00Z", fractions ignored), or nil.
local function utc_seconds(iso)
    local y, mo, d, h, mi, se = tostring(iso):match("^(%d+)-(%d+)-(%d+)T(%d+):(%d+):(%d+)")
    if not y then return nil end
    y, mo = tonumber(y), tonumber(mo)
    -- Days from civil (proleptic Gregorian), independent of the local time zone.
    local a = mo <= 2 and 1 or 0
    local yy, mm = y - a, mo + (a == 1 and 9 or -3)
    local era = yy // 400
    local yoe = yy - era * 400
    local doy = (153 * mm + 2) // 5 + tonumber(d) - 1
    local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    local days = era * 146097 + doe - 719468
    return days * 86400 + tonumber(h) * 3600 + tonumber(mi) * 60 + tonumber(se)
end


-- The soonest expiry of the main app's client secrets, read from Microsoft Graph:
-- {expires_at = ISO, days_left = n} or nil when Graph does not let us read it (the app may
-- lack Application.Read.All) or the app has no client secret (a certificate credential).
local function secret_expiry(main)
    if not main.clientSecret then return nil end
    local tok = account.token(main, "graph")
    if not tok then return nil end
    local c = cloud.current()
    local body = c and arm.get(tok, c.graph .. "/v1.0/applications?$filter=" ..
        http.escape("appId eq '" .. main.clientId .. "'") .. "&$select=passwordCredentials")
    tok:close()
    local app = type(body) == "table" and type(body.value) == "table" and body.value[1]
    local soonest
    for _, p in ipairs(type(app) == "table" and type(app.passwordCredentials) == "table" and
        app.passwordCredentials or {}) do
        local t = utc_seconds(p.endDateTime)
        if t and (not soonest or t < soonest.t) then
            soonest = { t = t, iso = p.endDateTime }
        end
    end
    if not soonest then return nil end
    return { expires_at = soonest.iso, days_left = math.floor((soonest.t - os.time()) / 86400) }
end


function M.fetch_data(req, uid)
    local main, ro, e = load(req, uid)
    if not main then return table.unpack(e) end
    local tok, err = read_token(uid, main, ro)
    if not tok then return token_error(req, err) end
    local sub, aerr = arm.get(tok, "/subscriptions/" .. main.subscriptionId,
        { ["api-version"] = arm.API_VERSIONS.subscriptions })
    tok:close()
    if not sub then return fail(req, "upstream", aerr) end
    local out = { status = "success", subscription_id = sub.subscriptionId,
        subscription_name = sub.displayName, state = sub.state,
        tenant_id = sub.tenantId or main.tenantId,
        connection = main.oauth and "oauth" or "service_principal",
        credentials = { ["do"] = true, ask = ro ~= nil } }
    local exp = secret_expiry(main)
    if exp then
        out.credentials.secret_expires_at = exp.expires_at
        out.credentials.secret_days_left = exp.days_left
        if exp.days_left < M.SECRET_WARNING_DAYS then
            out.warning = string.format("The client secret expires in %d days (%s); create a " ..
                "new one with `az ad app credential reset --id %s` and log in again.",
                math.max(exp.days_left, 0), exp.expires_at, main.clientId)
        end
    end
    return 200, out
end

local function visible(req, uid)
    local main, ro, e = load(req, uid)
    if not main then return nil, e end
    local tok, err = read_token(uid, main, ro)
    if not tok then return nil, { token_error(req, err) } end
    local subs, aerr = list_subscriptions(tok)
    tok:close()
    if not subs then return nil, { fail(req, "upstream", aerr) } end
    return subs, main
end

function M.subscriptions_get(req, uid)
    local subs, main = visible(req, uid)
    if not subs then return table.unpack(main) end
    local on = {}
    for _, id in ipairs(enabled_set(uid, main)) do on[id:lower()] = true end
    local projects = json.array()
    for _, s in ipairs(subs) do
        projects[#projects + 1] = { projectId = s.subscriptionId, name = s.displayName,
            enabled = on[s.subscriptionId:lower()] == true, state = s.state }
    end
    return 200, { projects = projects }
end

function M.subscriptions_post(req, uid)
    local ok, body = pcall(req.json, req)
    if not ok or type(body) ~= "table" then
        return fail(req, "bad_request", { message = "the request body must be JSON" })
    end
    -- Accepted shapes: {"projects": [{"projectId", "enabled"}]}, {"enabled": [ids]},
    -- {"subscriptionIds": [ids]}, or a bare array of ids.
    local want = {}
    local list = body.projects or body.enabled or body.subscriptionIds
    if list == nil and json.is_array(body) then list = body end
    if not json.is_array(list) then
        return fail(req, "bad_request", { message = "projects must be an array", field = "projects" })
    end
    for i, p in ipairs(list) do
        if type(p) == "string" then want[#want + 1] = p
        elseif type(p) == "table" and type(p.projectId) == "string" then
            if p.enabled ~= false then want[#want + 1] = p.projectId end
        else
            return fail(req, "bad_request", { message = "projects[" .. i .. "] is not a subscription id" })
        end
    end
    local subs, main = visible(req, uid)
    if not subs then return table.unpack(main) end
    local known = {}
    for _, s in ipairs(subs) do known[s.subscriptionId:lower()] = s.subscriptionId end
    local ids, seen = json.array(), {}
    for _, id in ipairs(want) do
        local k = known[id:lower()]
        if not k then
            return fail(req, "bad_request", { message = "unknown subscription id: " .. id })
        end
        if not seen[k] then seen[k] = true; ids[#ids + 1] = k end
    end
    local v, msg, code = secrets.put(path(uid, "subscriptions"), { enabled = ids })
    if not v then return fail(req, "storage_failed", { code = code, message = msg }) end
    bump(uid)
    return 200, { message = "Subscriptions saved", enabled = ids }
end

function M.disconnect(req, uid)
    local merr = bad_mode(req)
    if merr then return table.unpack(merr) end
    for _, what in ipairs { "azure", "azure-readonly" } do
        local c = secrets.get(path(uid, what))
        if type(c) == "table" and c.tenantId and c.clientId then
            local okc, cred = pcall(to_cred, c)
            if okc then
                -- Every scope a handler asks tokens for: none survives the disconnect.
                for _, scope in ipairs { "arm", "graph", "aks" } do
                    pcall(identity.forget, cred, scope)
                end
                close(cred)
            end
        end
    end
    for _, what in ipairs { "azure", "azure-readonly", "tokens/arm", "subscriptions", "oauth" } do
        local ok, msg, code = secrets.delete(path(uid, what))
        if not ok then return fail(req, "storage_failed", { code = code, message = msg }) end
    end
    bump(uid)
    return 200, { message = "Azure account disconnected" }
end

return M

-- aurora.errors and lua/maps/errors.lua: every kind and every mapped code gives a status, the
-- seed's message, a code, solution steps and the request id, and nothing secret leaks.
local T = require "aurora.test"
local errors = require "aurora.errors"
local map = require "maps.errors"
local json = require "aurora.json"

local REQ = {id = "req-1234"}

local KINDS = {
    invalid_credentials = {401, "Invalid Azure credentials"},
    no_enabled_subscription = {403, "No enabled subscription found"},
    clusters_failed = {502, "Failed to fetch AKS clusters"},
    admin_credentials_failed = {502, "Admin credentials failed"},
    token_failed = {502, "Failed to get Azure token"},
    sp_not_found = {404, "Service principal not found"},
    not_connected = {401, "Azure account not connected"},
    forbidden_mode = {403, "Do-mode credentials required"},
    bad_request = {400, "Invalid request"},
    storage_failed = {500, "Failed to store Azure credentials"},
    upstream = {502, "Azure request failed"},
    -- Kinds of the endpoints beside the connector's (clusters, OAuth sign-in, discovery, costs).
    cluster_not_found = {404, "AKS cluster not found"},
    metrics_server_failed = {502, "Metrics server deployment failed"},
    oauth_failed = {400, "Azure sign-in failed"},
    oauth_not_configured = {501, "Azure sign-in (OAuth) is not configured"},
    resources_failed = {502, "Failed to discover Azure resources"},
    costs_failed = {502, "Failed to fetch Azure costs"},
}

-- An Entra ID answer as aurora.identity reports it.
local function aad(code, status, err)
    return {
        status = status or 401,
        code = code,
        error = err or "invalid_client",
        description = code .. ": Something about app 'x'. Trace ID: 11111111-aaaa " ..
            "Correlation ID: 22222222-bbbb Timestamp: 2026-01-01 00:00:00Z\r\nsecret-tail",
        trace_id = "11111111-aaaa",
        correlation_id = "22222222-bbbb",
    }
end


local function check_shape(status, body, want_status, want_error, kind)
    T.eq(status, want_status, kind)
    T.eq(body.error, want_error, kind)
    T.eq(body.code, kind)
    T.ok(#body.solution > 0, kind .. ": solution steps")
    for _, s in ipairs(body.solution) do T.match(s, "%S", kind) end
    T.eq(body.requestId, REQ.id)
    json.encode(body)
end


T.test("every kind answers its status, message, code, solution and request id", function()
    for kind, want in pairs(KINDS) do
        local status, body, headers = errors.respond(REQ, kind)
        check_shape(status, body, want[1], want[2], kind)
        T.eq(body.upstream, nil)
        T.eq(type(headers), "table")
    end
    for kind in pairs(map.kinds) do T.ok(KINDS[kind], "kind " .. kind .. " is tested") end
end)


T.test("an unknown kind raises", function()
    T.raises(errors.respond, "unknown error kind 'nope'", REQ, "nope")
end)


T.test("AADSTS700016 reported as invalid credentials keeps its own step", function()
    local status, body = errors.respond(REQ, "invalid_credentials", aad("AADSTS700016", 400))
    T.eq(status, 401)
    T.contains(body.solution[1], "client id")
end)


T.test("each AADSTS code is classified and gets its own first solution step", function()
    local want = {
        AADSTS7000215 = {"invalid_credentials", 401, "Value"},
        AADSTS7000222 = {"invalid_credentials", 401, "expired"},
        AADSTS700016 = {"sp_not_found", 404, "client id"},
        AADSTS90002 = {"invalid_credentials", 401, "tenant was not found"},
        AADSTS900023 = {"invalid_credentials", 401, "tenant id is not valid"},
        AADSTS7000229 = {"invalid_credentials", 401, "az ad sp create"},
        AADSTS500011 = {"sp_not_found", 404, "service principal"},
        AADSTS70011 = {"token_failed", 502, "token scope"},
        AADSTS1002012 = {"token_failed", 502, "token scope"},
    }
    for code, w in pairs(want) do
        local up = aad(code, 400)
        local kind = errors.classify(up)
        T.eq(kind, w[1], code)
        local status, body = errors.respond(REQ, kind, up)
        check_shape(status, body, w[2], KINDS[w[1]][2], kind)
        T.contains(body.solution[1], w[3], code)
        T.eq(body.upstream.code, code)
        T.eq(body.upstream.status, 400)
        T.eq(body.upstream.correlationId, "22222222-bbbb")
    end
    for code in pairs(map.aadsts) do
        local status, body = errors.respond(REQ, errors.classify(aad(code)), aad(code))
        T.ok(status >= 400 and #body.solution > 1, code)
    end
end)


T.test("an unknown AADSTS code is invalid credentials for a 4xx, a token failure otherwise",
    function()
        T.eq(errors.classify(aad("AADSTS123456", 400)), "invalid_credentials")
        T.eq(errors.classify(aad("AADSTS123456", 500)), "token_failed")
        T.eq(errors.classify({status = 500, code = "InternalServerError"}), "upstream")
        T.eq(errors.classify(nil), "upstream")
    end)


T.test("the upstream message keeps the AADSTS code and loses the trace and anything after",
    function()
        local _, body = errors.respond(REQ, "invalid_credentials", aad("AADSTS7000215"))
        T.eq(body.upstream.message, "AADSTS7000215: Something about app 'x'.")
        local text = json.encode(body)
        T.not_contains(text, "secret-tail")
        T.not_contains(text, "Trace ID")
        T.not_contains(text, "11111111-aaaa")
    end)


T.test("tokens, secrets and passwords in an upstream message are scrubbed", function()
    local up = {status = 401, code = "InvalidAuthenticationToken",
        message = "bad token eyJhbGciOi.eyJzdWIiOi.c2lnbmF0dXJl with Bearer abc.def " ..
            "client_secret=hunter2 password: pa55"}
    local _, body = errors.respond(REQ, "upstream", up)
    local text = json.encode(body)
    for _, s in ipairs{"eyJhbGciOi", "abc.def", "hunter2", "pa55"} do T.not_contains(text, s) end
    T.contains(body.upstream.message, "[redacted]")
    local long = {status = 500, message = string.rep("x", 1000)}
    _, body = errors.respond(REQ, "upstream", long)
    T.eq(#body.upstream.message, errors.MESSAGE_MAX)
end)


T.test("transport failures towards the login endpoint are token failures: 502, timeout 504",
    function()
        for _, code in ipairs{"connect", "dns", "tls", "unavailable", "bad_reply"} do
            local up = {status = 0, code = code, error = code, message = "it failed"}
            T.eq(errors.classify(up), "token_failed", code)
            local status, body = errors.respond(REQ, "token_failed", up)
            check_shape(status, body, 502, "Failed to get Azure token", "token_failed")
            T.ok(#body.solution > #map.kinds.token_failed.solution, code)
        end
        local status = errors.respond(REQ, "token_failed", {status = 0, code = "timeout"})
        T.eq(status, 504)
    end)


T.test("AuthorizationFailed on clusters is 403, other ARM failures 502, timeout 504", function()
    local up = {status = 403, error = {code = "AuthorizationFailed",
        message = "The client 'a' does not have authorization"},
        headers = {["x-ms-correlation-request-id"] = "corr-1"}}
    local status, body = errors.respond(REQ, "clusters_failed", up)
    check_shape(status, body, 403, "Failed to fetch AKS clusters", "clusters_failed")
    T.eq(body.upstream.code, "AuthorizationFailed")
    T.eq(body.upstream.correlationId, "corr-1")
    T.contains(body.solution[1], "az role assignment create")
    status = errors.respond(REQ, "clusters_failed", {status = 500, code = "InternalServerError"})
    T.eq(status, 502)
    status = errors.respond(REQ, "clusters_failed", {status = 0, code = "timeout"})
    T.eq(status, 504)
end)


T.test("admin credentials refused for local accounts is 403, AuthorizationFailed 403", function()
    local up = {status = 400, code = "BadRequest", message = "Getting static credential is " ..
        "not allowed because this cluster is set to disable local accounts."}
    local status, body = errors.respond(REQ, "admin_credentials_failed", up)
    check_shape(status, body, 403, "Admin credentials failed", "admin_credentials_failed")
    status = errors.respond(REQ, "admin_credentials_failed",
        {status = 403, code = "AuthorizationFailed"})
    T.eq(status, 403)
    status = errors.respond(REQ, "upstream", up)
    T.eq(status, 502, "BadRequest is only 403 for admin credentials")
end)


T.test("a 429 is passed through with Retry-After when the upstream said so", function()
    local status, body, headers = errors.respond(REQ, "upstream",
        {status = 429, code = "SubscriptionRequestsThrottled", retry_after = 17})
    T.eq(status, 429)
    T.eq(headers["Retry-After"], "17")
    T.eq(body.upstream.status, 429)
    local _
    status, _, headers = errors.respond(REQ, "upstream",
        {status = 429, code = "TooManyRequests", headers = {["retry-after"] = "3"}})
    T.eq(status, 429)
    T.eq(headers["Retry-After"], "3")
    status, _, headers = errors.respond(REQ, "upstream", {status = 429})
    T.eq(status, 429)
    T.eq(headers["Retry-After"], nil)
    status = errors.respond(REQ, "invalid_credentials", {status = 429, code = "unavailable"})
    T.eq(status, 401, "no passthrough for kinds without throttle")
end)


T.test("bad_request answers the upstream message as the error and names the field", function()
    local status, body = errors.respond(REQ, "bad_request",
        {message = "tenantId must be a GUID", field = "tenantId"})
    T.eq(status, 400)
    T.eq(body.error, "tenantId must be a GUID")
    T.eq(body.field, "tenantId")
    T.eq(body.code, "bad_request")
    T.eq(body.upstream, nil)
    T.ok(#body.solution > 0)
    local _
    _, body = errors.respond(REQ, "bad_request", {message = "clientSecret: must be a string; " ..
        "tenantId: not a GUID", fields = {"clientSecret: must be a string", "tenantId: not a GUID"}})
    T.eq(body.error, "clientSecret: must be a string; tenantId: not a GUID")
    T.eq(#body.fields, 2)
end)


T.test("storage failures are 500, 503 when the store is unavailable", function()
    T.eq((errors.respond(REQ, "storage_failed", {code = "io", message = "disk full"})), 500)
    T.eq((errors.respond(REQ, "storage_failed", {code = "unavailable"})), 503)
    T.eq((errors.respond(REQ, "storage_failed", {code = "connect"})), 503)
    local status, _, headers = errors.respond(REQ, "storage_failed",
        {status = 503, code = "sealed", retry_after = 5})
    T.eq(status, 503)
    T.eq(headers["Retry-After"], "5")
end)


T.test("SubscriptionNotFound classifies as no enabled subscription with 404", function()
    local up = {status = 404, code = "SubscriptionNotFound",
        message = "The subscription 'x' could not be found."}
    T.eq(errors.classify(up), "no_enabled_subscription")
    local status, body = errors.respond(REQ, "no_enabled_subscription", up)
    check_shape(status, body, 404, "No enabled subscription found", "no_enabled_subscription")
end)


T.test("every mapped ARM code and transport word gives a full answer", function()
    for code in pairs(map.arm) do
        local up = {status = 400, code = code, message = "m"}
        for kind in pairs(map.kinds) do
            local status, body = errors.respond(REQ, kind, up)
            T.ok(status >= 400 and status <= 599, code .. "/" .. kind)
            T.ok(#body.solution > 0)
            T.eq(body.requestId, REQ.id)
        end
    end
end)


T.test("login's reasons for no enabled subscription keep the 403 and put their own step first",
    function()
        local want = {not_enabled = "not Enabled", not_visible = "not visible",
            none_visible = "az role assignment create", none_enabled = "Disabled, Warned"}
        for code, step in pairs(want) do
            local up = {status = 200, code = code, message = "subscription x is Disabled, not Enabled"}
            local status, body = errors.respond(REQ, "no_enabled_subscription", up)
            check_shape(status, body, 403, "No enabled subscription found", "no_enabled_subscription")
            T.contains(body.solution[1], step, code)
            T.eq(#body.solution, 1 + #map.kinds.no_enabled_subscription.solution, code)
            T.eq(body.upstream.code, code)
            T.eq(body.upstream.status, 200)
            T.eq(body.upstream.message, up.message)
        end
    end)


T.test("an ARM InternalServerError keeps the kind's status and gets its own step", function()
    local up = {status = 500, error = {code = "InternalServerError", message = "Oops."}}
    local status, body = errors.respond(REQ, "clusters_failed", up)
    check_shape(status, body, 502, "Failed to fetch AKS clusters", "clusters_failed")
    T.contains(body.solution[1], "internal error")
    T.eq(body.upstream.code, "InternalServerError")
    T.eq(errors.classify(up), "upstream")
    T.eq((errors.respond(REQ, "upstream", up)), 502)
end)

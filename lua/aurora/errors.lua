-- aurora.errors: turns a failure into the connector's error answer, using the operator's map
-- (lua/maps/errors.lua). Handlers call errors.respond(req, kind, upstream) and return what it
-- returns; errors.classify(upstream) picks the kind for an identity (Entra ID) failure.
-- Nothing from the upstream reaches the client but its status, its code, the first sentence of
-- its message (cut before "Trace ID", tokens scrubbed) and its correlation id. Full reference:
-- docs/api.md, "Errors".
local map = require "maps.errors"

local M = {}

-- Longest upstream message passed on, in bytes.
M.MESSAGE_MAX = 300
-- Longest bad_request message (the handler's own validation text), in bytes.
M.BAD_REQUEST_MAX = 2000


local function lookup(code)
    if type(code) ~= "string" then return nil end
    return map.aadsts[code] or map.arm[code]
end


-- Accepts an identity error ({status, code, error, description, ...}), an ARM error body
-- ({error = {code, message}}) merged with a status, or a plain {status, code, message}.
local function normalize(up)
    if type(up) ~= "table" then return nil end
    local n = {}
    local inner = type(up.error) == "table" and up.error or nil
    n.status = tonumber(up.status) or 0
    n.code = up.code or (inner and inner.code) or
        (type(up.error) == "string" and up.error) or nil
    n.message = up.description or up.message or (inner and inner.message) or nil
    n.correlation_id = up.correlation_id or up.correlationId
    n.field = up.field
    n.fields = up.fields
    local h = type(up.headers) == "table" and up.headers or {}
    n.correlation_id = n.correlation_id or h["x-ms-correlation-request-id"] or
        h["x-ms-request-id"] or h["client-request-id"]
    n.retry_after = tonumber(up.retry_after or up.retryAfter or h["retry-after"])
    if type(n.code) ~= "string" then n.code = n.code and tostring(n.code) or nil end
    return n
end


--- The part of an upstream message that is safe to show: its first line, cut before
-- "Trace ID", without anything that looks like a token, at most MESSAGE_MAX bytes.
function M.clean_message(s)
    if type(s) ~= "string" then return nil end
    s = s:gsub("[\r\n].*$", "")
    s = s:gsub("%s*Trace ID.*$", "")
    s = s:gsub("eyJ[%w%-_]+%.[%w%-_]+%.?[%w%-_]*", "[redacted]")
    s = s:gsub("([Bb]earer%s+)%S+", "%1[redacted]")
    s = s:gsub("([%w_]*[Ss]ecret[%w_]*%s*[=:]%s*)%S+", "%1[redacted]")
    s = s:gsub("([%w_]*[Pp]assword[%w_]*%s*[=:]%s*)%S+", "%1[redacted]")
    s = s:gsub("[%c]", " ")
    if #s > M.MESSAGE_MAX then s = s:sub(1, M.MESSAGE_MAX) end
    if s == "" then return nil end
    return s
end


--- The kind for an upstream failure: an Entra ID code ("AADSTS7000215") or a transport word
-- ("timeout") the map names, an Entra ID rejection (4xx) -> "invalid_credentials", anything
-- else -> "token_failed" when it came from Entra ID (has an OAuth `error` or AADSTS code), else
-- "upstream".
function M.classify(upstream)
    local n = normalize(upstream)
    if not n then return "upstream" end
    local e = lookup(n.code)
    if e and e.kind then return e.kind end
    if n.code and n.code:match("^AADSTS%d+$") then
        if n.status == 400 or n.status == 401 then return "invalid_credentials" end
        return "token_failed"
    end
    return "upstream"
end


local function append(list, steps)
    for _, s in ipairs(steps or {}) do list[#list + 1] = s end
end


--- status, body, headers for an error answer.
-- req: the request (its id goes into the body); kind: a key of the map's kinds; upstream
-- (optional): what failed upstream (see normalize). Raises for an unknown kind.
-- Example: `return errors.respond(req, errors.classify(err), err)`
function M.respond(req, kind, upstream)
    local k = map.kinds[kind]
    if not k then error("unknown error kind '" .. tostring(kind) .. "'", 2) end
    local n = normalize(upstream)
    local status = k.status
    local headers = {}
    local solution = {}
    local body = {error = k.error, code = kind}
    if n then
        local e = lookup(n.code)
        if e then
            append(solution, e.solution)
            if e.statuses and e.statuses[kind] then
                status = e.statuses[kind]
            elseif e.status and kind ~= "bad_request" then
                status = e.status
            end
        end
        if n.code == "timeout" and k.timeout_status then
            status = k.timeout_status
        elseif k.unavailable_status and (n.code == "unavailable" or n.code == "connect" or
            n.status == 503) then
            status = k.unavailable_status
        end
        if k.throttle and n.status == 429 then
            status = 429
        end
        if (status == 429 or status == 503) and n.retry_after then
            headers["Retry-After"] = tostring(math.floor(n.retry_after))
        end
        if kind == "bad_request" then
            -- Our own validation message (names the field, never holds its value): first line only.
            local msg = type(n.message) == "string" and n.message:match("^[^\r\n]*") or ""
            if msg ~= "" then body.error = msg:sub(1, M.BAD_REQUEST_MAX) end
            if type(n.field) == "string" then body.field = n.field end
            if type(n.fields) == "table" then body.fields = n.fields end
        else
            local msg = M.clean_message(n.message)
            body.upstream = {
                status = n.status,
                code = n.code,
                message = msg,
                correlationId = type(n.correlation_id) == "string" and n.correlation_id or nil,
            }
        end
    end
    append(solution, k.solution)
    body.solution = solution
    body.requestId = type(req) == "table" and req.id or nil
    return status, body, headers
end

return M

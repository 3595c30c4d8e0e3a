-- Azure Resource Manager helper: GET one resource or a whole list (every nextLink followed),
-- with bounded retries for throttling (429, Retry-After honoured), 5xx and connection failures.
-- Only idempotent reads go through here, so a retry never repeats a write.
--
-- Failures return nil, err, code where err = {status, code, message, correlation_id,
-- request_id}: status is ARM's HTTP status (0 when no answer came), code is ARM's error.code or
-- a transport word (connect, timeout, tls, dns, bad_reply, ...).
local http = require "aurora.http"
local json = require "aurora.json"
local time = require "aurora.time"
local cloud = require "aurora.cloud"
local crypto = require "aurora.crypto"

local M = {}

-- Every api-version the connector uses, in one place.
M.API_VERSIONS = {
    subscriptions = "2022-12-01",
    managed_clusters = "2024-05-01",
}

M.MAX_ATTEMPTS = 4        -- tries per page, first one included
M.BASE_DELAY = 0.5        -- seconds before the first retry; doubles each time
M.MAX_DELAY = 8           -- cap of one wait (a longer Retry-After ends the retries)
M.MAX_TOTAL = 20          -- seconds one call may spend, retries and waits included
M.MAX_PAGES = 200         -- nextLinks followed per list
M.TIMEOUT = 15            -- seconds per HTTP request

local RETRY_CODES = { connect = true, timeout = true, bad_reply = true, dns = false }

local function uuid()
    local b = { crypto.random(16):byte(1, 16) }
    b[7] = (b[7] & 0x0f) | 0x40
    b[9] = (b[9] & 0x3f) | 0x80
    local h = string.format(string.rep("%02x", 16), table.unpack(b))
    return h:sub(1, 8) .. "-" .. h:sub(9, 12) .. "-" .. h:sub(13, 16) .. "-" .. h:sub(17, 20) ..
        "-" .. h:sub(21, 32)
end

--- The ARM base URL of the current cloud (AZURE_RESOURCE_MANAGER_ENDPOINT overrides).
function M.base()
    local c, msg, code = cloud.current()
    if not c then return nil, msg, code end
    return c.arm
end

local function arm_error(res, correlation_id)
    local body = json.decode(res.body or "")
    local e = type(body) == "table" and type(body.error) == "table" and body.error or {}
    local code = type(e.code) == "string" and e.code or ("http_" .. res.status)
    return {
        status = res.status,
        code = code,
        message = type(e.message) == "string" and e.message or ("ARM answered " .. res.status),
        correlation_id = res.headers["x-ms-correlation-request-id"] or correlation_id,
        request_id = res.headers["x-ms-request-id"],
    }
end

local function backoff(attempt)
    local d = math.min(M.MAX_DELAY, M.BASE_DELAY * 2 ^ (attempt - 1))
    return d / 2 + math.random() * d / 2          -- "equal jitter"
end

-- One call with retries (a POST only when it changes nothing: a query, a credential listing);
-- returns the decoded body and the response, or nil, err, code.
local function call_url(tok, url, deadline, method, body)
    local correlation_id = uuid()
    local attempt = 0
    while true do
        attempt = attempt + 1
        local left = deadline - time.monotonic()
        local res, msg, tcode = http.request { url = url, bearer = tok, method = method,
            json = body, timeout = math.max(0.1, math.min(M.TIMEOUT, left)),
            headers = { ["x-ms-correlation-request-id"] = correlation_id,
                Accept = "application/json" } }
        local err, wait
        if not res then
            err = { status = 0, code = tcode or "bad_reply", message = msg,
                correlation_id = correlation_id }
            if RETRY_CODES[tcode] then wait = backoff(attempt) end
        elseif res.status >= 200 and res.status < 300 then
            local body = json.decode(res.body)
            if type(body) ~= "table" then
                return nil, { status = res.status, code = "bad_reply",
                    message = "ARM answered something that is not a JSON object",
                    correlation_id = res.headers["x-ms-correlation-request-id"] or correlation_id,
                    request_id = res.headers["x-ms-request-id"] }, "bad_reply"
            end
            return body, res
        else
            err = arm_error(res, correlation_id)
            if res.status == 429 or res.status >= 500 then
                local ra = tonumber(res.headers["retry-after"])
                if ra and ra >= 0 then
                    err.retry_after = ra
                    wait = ra <= M.MAX_DELAY and ra or nil
                else
                    wait = backoff(attempt)
                end
            end
        end
        if not wait or attempt >= M.MAX_ATTEMPTS or
                time.monotonic() + wait >= deadline then
            err.attempts = attempt
            return nil, err, err.code
        end
        time.sleep(wait)
    end
end

local function url_of(path, query)
    if path:match("^https?://") then return path end
    local base, msg, code = M.base()
    if not base then return nil, msg, code end
    local url = base .. path
    if query then url = url .. (url:find("?", 1, true) and "&" or "?") .. http.form_encode(query) end
    return url
end

--- GET one ARM resource: body, res or nil, err, code. query: extra query parameters (the
--- api-version included).
function M.get(tok, path, query)
    local url, msg, code = url_of(path, query)
    if not url then
        return nil, { status = 0, code = code, message = msg }, code
    end
    return call_url(tok, url, time.monotonic() + M.MAX_TOTAL)
end

--- POST to an ARM action that reads or changes nothing twice (Resource Graph and Cost
-- Management queries, listClusterAdminCredential, a provider registration), retried like a
-- GET: body, res or nil, err, code. json_body: a table sent as JSON (nil: an empty body).
function M.post(tok, path, query, json_body)
    local url, msg, code = url_of(path, query)
    if not url then
        return nil, { status = 0, code = code, message = msg }, code
    end
    return call_url(tok, url, time.monotonic() + M.MAX_TOTAL, "POST", json_body or {})
end

--- GET a list, following every nextLink: the concatenated `value` arrays, or nil, err, code.
function M.list(tok, path, query)
    local url, msg, code = url_of(path, query)
    if not url then
        return nil, { status = 0, code = code, message = msg }, code
    end
    local deadline = time.monotonic() + M.MAX_TOTAL
    local items, pages = {}, 0
    while url do
        pages = pages + 1
        if pages > M.MAX_PAGES then
            return nil, { status = 0, code = "too_large",
                message = "more than " .. M.MAX_PAGES .. " pages" }, "too_large"
        end
        local body, res_or_err, ecode = call_url(tok, url, deadline)
        if not body then return nil, res_or_err, ecode end
        for _, v in ipairs(type(body.value) == "table" and body.value or {}) do
            items[#items + 1] = v
        end
        url = type(body.nextLink) == "string" and body.nextLink ~= "" and body.nextLink or nil
    end
    return items
end

return M

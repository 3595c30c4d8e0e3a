-- Azure Resource Manager helper: GET one resource or a whole list (every nextLink followed),
-- POST a query, or run several paged reads at once (pages_many), with bounded retries for
-- throttling (429, Retry-After honoured), 5xx and connection failures.
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
    -- Discovery (lua/aurora/azure/discovery.lua) and costs (lua/aurora/azure/costs.lua).
    virtual_machines = "2024-07-01",
    vm_scale_sets = "2024-07-01",
    sql_servers = "2023-08-01",
    storage_accounts = "2023-05-01",
    web_sites = "2023-12-01",
    virtual_networks = "2024-05-01",
    network_security_groups = "2024-05-01",
    container_groups = "2023-05-01",
    resource_groups = "2021-04-01",
    resource_graph = "2022-10-01",
    cost_management = "2023-11-01",
    providers = "2021-04-01",
}

M.MAX_ATTEMPTS = 4        -- tries per page, first one included
M.BASE_DELAY = 0.5        -- seconds before the first retry; doubles each time
M.MAX_DELAY = 8           -- cap of one wait (a longer Retry-After ends the retries)
M.MAX_TOTAL = 20          -- seconds one call may spend, retries and waits included
M.MAX_PAGES = 200         -- nextLinks followed per list
M.TIMEOUT = 15            -- seconds per HTTP request
M.MAX_PARALLEL = 16       -- requests in flight at once in M.pages_many

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

-- Seconds a throttled or failing reply asks us to wait: the largest of Retry-After, the
-- x-ms-ratelimit-*-retry-after headers (Cost Management sends several of its own) and Resource
-- Graph's x-ms-user-quota-resets-after ("hh:mm:ss"), or nil.
local function retry_after(headers)
    local best = tonumber(headers["retry-after"])
    local h, m, sec = (headers["x-ms-user-quota-resets-after"] or ""):match("^(%d+):(%d+):(%d+)")
    if h then
        local n = tonumber(h) * 3600 + tonumber(m) * 60 + tonumber(sec)
        if not best or n > best then best = n end
    end
    for name, v in pairs(headers) do
        if name:find("^x%-ms%-ratelimit%-.*retry%-after$") then
            local n = tonumber(v)
            if n and (not best or n > best) then best = n end
        end
    end
    return best
end

-- Judges one try (http.request's res, or nil, msg, tcode): the decoded body and res, or nil,
-- err, wait where wait is the seconds before a retry may help, nil when a retry cannot, and
-- false for a 2xx reply that is not JSON (returned at once). A POST answered 204 or with an
-- empty body gives {} (Cost Management answers 204 when there is no data).
local function judge(res, msg, tcode, attempt, correlation_id, method)
    if not res then
        return nil, { status = 0, code = tcode or "bad_reply", message = msg,
            correlation_id = correlation_id }, RETRY_CODES[tcode] and backoff(attempt) or nil
    end
    if res.status >= 200 and res.status < 300 then
        if method == "POST" and (res.status == 204 or res.body == "") then return {}, res end
        local body = json.decode(res.body)
        if type(body) ~= "table" then
            return nil, { status = res.status, code = "bad_reply",
                message = "ARM answered something that is not a JSON object",
                correlation_id = res.headers["x-ms-correlation-request-id"] or correlation_id,
                request_id = res.headers["x-ms-request-id"] }, false
        end
        return body, res
    end
    local err, wait = arm_error(res, correlation_id), nil
    if res.status == 429 or res.status >= 500 then
        local ra = retry_after(res.headers)
        if ra and ra >= 0 then
            err.retry_after = ra
            wait = ra <= M.MAX_DELAY and ra or nil
        else
            wait = backoff(attempt)
        end
    end
    return nil, err, wait
end

-- One call with retries (a POST only when it changes nothing: a query, a credential listing);
-- returns the decoded body and the response, or nil, err, code.
local function call_url(tok, url, deadline, method, body, secret_fields)
    local correlation_id = uuid()
    local attempt = 0
    while true do
        attempt = attempt + 1
        local left = deadline - time.monotonic()
        local res, msg, tcode = http.request { url = url, bearer = tok, method = method,
            json = body, secret_fields = secret_fields,
            timeout = math.max(0.1, math.min(M.TIMEOUT, left)),
            headers = { ["x-ms-correlation-request-id"] = correlation_id,
                Accept = "application/json" } }
        local reply, err, wait = judge(res, msg, tcode, attempt, correlation_id, method)
        if reply then return reply, err end
        if wait == false then return nil, err, err.code end
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
-- secret_fields (optional): reply fields moved into secret handles, res.secrets[path] (see
-- aurora.http), such as a credential listing's "kubeconfigs.0.value".
function M.post(tok, path, query, json_body, secret_fields)
    local url, msg, code = url_of(path, query)
    if not url then
        return nil, { status = 0, code = code, message = msg }, code
    end
    return call_url(tok, url, time.monotonic() + M.MAX_TOTAL, "POST", json_body or {},
        secret_fields)
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

--- Several paged reads at once: each job is a chain of pages, and every page is tried with the
-- retry rules of M.get (429/5xx/connection failures, Retry-After and the x-ms-ratelimit-*
-- retry-after headers honoured). Up to MAX_PARALLEL requests run together through
-- http.request_many; a job waiting out a Retry-After does not hold the others.
-- jobs: array of {path = ARM path or absolute URL, query = {...} (with a path), method = "GET"
-- (default) or "POST" (a read-only query: Resource Graph, Cost Management), json = body,
-- page = function(body) -> nil when this was the last page, else {url = ..., json = ...} for
-- the next one (a missing field keeps the current value)}. opts: {total = seconds for the
-- whole call (default MAX_TOTAL)}.
-- Returns an array with one entry per job: true when every page was read, else the err of the
-- page that failed (as M.get's). Only callers' page functions see the bodies.
-- Example: `local r = arm.pages_many(tok, {{path = p, query = q, page = collect}})`
function M.pages_many(tok, jobs, opts)
    local deadline = time.monotonic() + (opts and opts.total or M.MAX_TOTAL)
    local state, out = {}, {}
    for i, job in ipairs(jobs) do
        local url, msg, code = url_of(job.path, job.query)
        if url then
            state[i] = { url = url, json = job.json, attempt = 0, pages = 0, at = 0,
                cid = uuid() }
        else
            out[i] = { status = 0, code = code, message = msg }
        end
    end
    while true do
        local now = time.monotonic()
        local batch, which, soonest = {}, {}, nil
        for i, st in pairs(state) do
            if now >= deadline then
                out[i], state[i] = { status = 0, code = "timeout", message = "gave up after " ..
                    st.pages .. " pages: the call's time ran out", attempts = st.attempt }, nil
            elseif st.at <= now then
                if #batch < M.MAX_PARALLEL then
                    local method = jobs[i].method
                    batch[#batch + 1] = { url = st.url, bearer = tok, method = method,
                        json = method == "POST" and (st.json or {}) or nil,
                        timeout = math.max(0.1, math.min(M.TIMEOUT, deadline - now)),
                        headers = { ["x-ms-correlation-request-id"] = st.cid,
                            Accept = "application/json" } }
                    which[#batch] = i
                end
            elseif not soonest or st.at < soonest then
                soonest = st.at
            end
        end
        if #batch == 0 then
            if not soonest then break end
            time.sleep(math.max(0, soonest - now))
        else
            local replies = http.request_many(batch)
            for k, r in ipairs(replies) do
                local i = which[k]
                local st, job = state[i], jobs[i]
                st.attempt = st.attempt + 1
                local res, msg, tcode = r, nil, nil
                if r.error then res, msg, tcode = nil, r.error, r.code end
                local body, err, wait = judge(res, msg, tcode, st.attempt, st.cid, job.method)
                if body then
                    st.pages = st.pages + 1
                    local nxt = job.page(body)
                    if not nxt then
                        out[i], state[i] = true, nil
                    elseif st.pages >= M.MAX_PAGES then
                        out[i], state[i] = { status = 0, code = "too_large",
                            message = "more than " .. M.MAX_PAGES .. " pages" }, nil
                    else
                        st.url, st.json = nxt.url or st.url, nxt.json or st.json
                        st.attempt, st.at, st.cid = 0, 0, uuid()
                    end
                elseif not wait or st.attempt >= M.MAX_ATTEMPTS or
                        time.monotonic() + wait >= deadline then
                    err.attempts = st.attempt
                    out[i], state[i] = err, nil
                else
                    st.at = time.monotonic() + wait
                end
            end
        end
    end
    return out
end

return M

-- Who is calling: X-User-ID validation, the optional API token (AURORA_API_TOKEN) and CORS for
-- the front end (FRONTEND_URL). Handlers are wrapped with users.route(fn); fn(req, uid) runs
-- only for a valid user id and an accepted token, and its response gets the CORS headers.
local env = require "aurora.env"
local crypto = require "aurora.crypto"

local M = {}

M.ID_MAX = 128
M.CORS_HEADERS = "Authorization, Content-Type, X-User-ID, X-Aurora-Mode, X-Request-ID"
M.CORS_METHODS = "GET, POST, DELETE, OPTIONS"

-- The error module (aurora.errors) is loaded when present; until then a minimal stand-in
-- answers with the same shape.
local FALLBACK = {
    invalid_credentials = { 401, "Invalid Azure credentials" },
    no_enabled_subscription = { 400, "No enabled subscription found" },
    clusters_failed = { 502, "Failed to fetch AKS clusters" },
    admin_credentials_failed = { 502, "Admin credentials failed" },
    token_failed = { 502, "Failed to get Azure token" },
    sp_not_found = { 401, "Service principal not found" },
    not_connected = { 401, "Azure account not connected" },
    forbidden_mode = { 403, "This action needs Do-mode credentials" },
    bad_request = { 400, "Invalid request" },
    storage_failed = { 500, "Failed to store credentials" },
    upstream = { 502, "Azure request failed" },
}

--- status, body, headers for an error of `kind` (see aurora.errors), upstream optional.
function M.fail(req, kind, upstream)
    local ok, errors = pcall(require, "aurora.errors")
    if ok and type(errors) == "table" and errors.respond then
        return errors.respond(req, kind, upstream)
    end
    local f = FALLBACK[kind] or FALLBACK.upstream
    local msg = f[2]
    if kind == "bad_request" and upstream and upstream.message then msg = upstream.message end
    local up
    if upstream then
        up = { status = upstream.status, code = upstream.code,
            message = upstream.message or upstream.description or upstream.error,
            correlation_id = upstream.correlation_id }
    end
    return f[1], { error = msg, code = kind, solution = {}, upstream = up, requestId = req.id }
end

--- uid, or nil and the reason: 1 to 128 of letters, digits and . _ @ -, usable as a path
--- segment of the secret store (not "." or "..", not ending in ".rec").
function M.check_id(id)
    if type(id) ~= "string" or id == "" then return nil, "X-User-ID header is missing" end
    if #id > M.ID_MAX then return nil, "X-User-ID is longer than 128 characters" end
    if not id:match("^[A-Za-z0-9._@-]+$") then
        return nil, "X-User-ID may hold only letters, digits and . _ @ -"
    end
    if id == "." or id == ".." or id:sub(-4) == ".rec" then
        return nil, "X-User-ID is not a valid user id"
    end
    return id
end

local function allowed_origin(req)
    local origin = req.headers["origin"]
    local front = env.get("FRONTEND_URL")
    if not origin or not front or front == "" then return nil end
    front = front:gsub("/+$", "")
    if origin == front then return origin end
    return nil
end

local function cors_headers(req, headers)
    local origin = allowed_origin(req)
    if origin then
        headers = headers or {}
        headers["Access-Control-Allow-Origin"] = origin
        headers["Access-Control-Allow-Credentials"] = "true"
        headers["Vary"] = "Origin"
    end
    return headers
end

local function token_ok(req)
    local want = env.get("AURORA_API_TOKEN")
    if not want or want == "" then return true end
    local auth = req.headers["authorization"] or ""
    local got = auth:match("^[Bb]earer%s+(.+)$") or ""
    return crypto.equals(got, want)
end

--- Answers an OPTIONS preflight: 204 with the CORS headers for FRONTEND_URL, 403 otherwise.
function M.preflight(req)
    local origin = allowed_origin(req)
    if not origin then
        return 403, { error = "origin not allowed", requestId = req.id }
    end
    return 204, nil, { ["Access-Control-Allow-Origin"] = origin,
        ["Access-Control-Allow-Credentials"] = "true",
        ["Access-Control-Allow-Methods"] = M.CORS_METHODS,
        ["Access-Control-Allow-Headers"] = M.CORS_HEADERS,
        ["Access-Control-Max-Age"] = "600", ["Vary"] = "Origin" }
end

--- Wraps fn(req, uid) with the token check, the user id check and CORS.
function M.route(fn)
    return function(req)
        if not token_ok(req) then
            return 401, { error = "Unauthorized", code = "unauthorized",
                requestId = req.id }, cors_headers(req, { ["WWW-Authenticate"] = "Bearer" })
        end
        local uid, why = M.check_id(req.headers["x-user-id"])
        local status, body, headers
        if not uid then
            status, body, headers = M.fail(req, "bad_request", { message = why })
        else
            status, body, headers = fn(req, uid)
        end
        return status, body, cors_headers(req, headers)
    end
end

return M

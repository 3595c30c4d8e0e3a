-- aurora.vault: a HashiCorp Vault client for KV version 2, on aurora.http.
--
-- It reads and writes secrets under one mount and path prefix (mount/data/prefix/path), with
-- token auth (a static token) or AppRole auth (role_id + secret_id). AppRole tokens live in the
-- process-wide cache aurora.token under one key per Vault address, namespace and role, so every
-- worker shares one login; a token is renewed (renew-self) before it expires, or replaced by a
-- fresh login when it cannot be renewed.
--
-- Vault tokens stay in aurora.secret handles and go out only as the X-Vault-Token header. No
-- message this module returns holds a token, a secret_id, a reply body or secret data, and the
-- module logs none of them. Paths are checked before any request, because they are built from
-- user ids. The full reference is docs/vault.md.
local env = require "aurora.env"
local http = require "aurora.http"
local json = require "aurora.json"
local log = require "aurora.log"
local secret = require "aurora.secret"
local time = require "aurora.time"
local token = require "aurora.token"

local M = {}

local MAX_SEGMENTS = 8
local MAX_VERSION = 2 ^ 53
local DEFAULT_TIMEOUT = 10
local SEGMENT = "^[A-Za-z0-9._@-]+$"
local CAS_MISMATCH = "check-and-set parameter did not match the current version"
local LOGIN_PATH = "/v1/auth/approle/login"
local RENEW_PATH = "/v1/auth/token/renew-self"
-- How long a failed login is remembered before the next caller tries again, by code.
local NEGATIVE_TTL = { unavailable = 1, denied = 10, invalid = 10 }
local MIN_MARGIN = 60
local MAX_MESSAGE = 200
-- After a 403 with an AppRole token, one fresh login is tried, at most this often per role and
-- worker, so a policy that really denies does not turn every call into a login.
local RELOGIN_INTERVAL = 30

-- Per worker: when a 403 last made us log in again, by token key.
local relogin_at = {}

local OPTIONS = {
    addr = "string", token = "secret", role_id = "string", secret_id = "secret",
    namespace = "string", ca_file = "string", mount = "string", prefix = "string",
    timeout = "number",
}


-- ---- checks --------------------------------------------------------------------------------

local function is_secret(v)
    return secret.is_secret(v)
end


-- true when s is a "/"-separated path of 1..max segments of [A-Za-z0-9._@-], none "." or "..".
local function valid_path(s, max)
    if s == "" or #s > 1024 then
        return false
    end
    local n = 0
    for seg in (s .. "/"):gmatch("([^/]*)/") do
        n = n + 1
        if n > max or not seg:match(SEGMENT) or seg == "." or seg == ".." then
            return false
        end
    end
    return true
end


-- The mount-relative path of a secret ("prefix/path"), or nil, msg, "invalid". Raises at
-- `level` (default 3: the caller of the method) when path is not a string.
local function full_path(self, path, fname, allow_empty, level)
    if type(path) ~= "string" then
        if path == nil and allow_empty then
            path = ""
        else
            error(string.format("bad argument #1 to '%s' (string expected, got %s)", fname,
                type(path)), level or 3)
        end
    end
    if path == "" and allow_empty then
        return self.prefix
    end
    if not valid_path(path, MAX_SEGMENTS) then
        return nil, "invalid secret path: use 1 to " .. MAX_SEGMENTS ..
            " segments of A-Z a-z 0-9 . _ @ - separated by /", "invalid"
    end
    if self.prefix == "" then
        return path
    end
    return self.prefix .. "/" .. path
end


-- ---- answers -------------------------------------------------------------------------------

-- Vault's first error message from a reply body, cut short; "" when there is none.
local function vault_message(res)
    local body = json.decode(res.body or "")
    local errs = type(body) == "table" and body.errors
    local first = type(errs) == "table" and errs[1]
    if type(first) ~= "string" then
        return ""
    end
    first = first:gsub("%s+", " "):gsub("^ ", ""):gsub(" $", "")
    if #first > MAX_MESSAGE then
        first = first:sub(1, MAX_MESSAGE) .. "..."
    end
    return first
end


-- nil, msg, code for an answer that is not a success (404 is the caller's to decide).
local function failure(res)
    local status = res.status
    if status == 401 or status == 403 then
        return nil, "permission denied", "denied"
    end
    local msg = vault_message(res)
    if status == 503 and msg:lower():find("sealed", 1, true) then
        return nil, "Vault is sealed", "unavailable"
    end
    if status == 400 and msg == CAS_MISMATCH then
        return nil, CAS_MISMATCH, "conflict"
    end
    if status == 404 then
        return nil, "secret not found", "not_found"
    end
    local what = msg ~= "" and (": " .. msg) or ""
    if status >= 500 or status == 412 or status == 429 then
        return nil, "Vault is unavailable (HTTP " .. status .. ")" .. what, "unavailable"
    end
    if status >= 400 then
        return nil, "Vault rejected the request (HTTP " .. status .. ")" .. what, "invalid"
    end
    return nil, "unexpected answer from Vault (HTTP " .. status .. ")", "bad_reply"
end


-- The decoded JSON of a 2xx reply's body, or nil, msg, "bad_reply".
local function decode(res)
    local v = json.decode(res.body)
    if type(v) ~= "table" then
        return nil, "Vault sent a reply that is not a JSON object", "bad_reply"
    end
    return v
end


-- ---- transport -----------------------------------------------------------------------------

-- One HTTP request to Vault. opts: method, path (from "/v1/"), token (a handle or nil),
-- json, query. Returns the response (any status), or nil, msg, "unavailable" when none came.
local function send(self, opts)
    local headers = { ["X-Vault-Request"] = "true" }
    if opts.token then
        headers["X-Vault-Token"] = opts.token
    end
    if self.namespace then
        headers["X-Vault-Namespace"] = self.namespace
    end
    local req = { method = opts.method, url = self.addr .. opts.path, headers = headers,
        timeout = self.timeout, ca_file = self.ca_file, query = opts.query,
        secret_fields = opts.secret_fields }
    if opts.json ~= nil then
        req.json = opts.json
        headers["Content-Type"] = opts.content_type or "application/json"
    elseif opts.body then
        req.body = opts.body
        headers["Content-Type"] = "application/json"
    end
    local res, msg, code = http.request(req)
    if not res then
        return nil, "cannot reach Vault: " .. tostring(msg) .. " (" .. tostring(code) .. ")",
            "unavailable"
    end
    return res
end


-- ---- AppRole tokens ------------------------------------------------------------------------

-- Seconds before expiry at which a token of this lease is refreshed: 10% of the lease, at least
-- a minute, but never more than half the lease (so short leases are still used).
local function margin_for(lease)
    if type(lease) ~= "number" or lease <= 0 then
        return MIN_MARGIN
    end
    return math.min(math.max(MIN_MARGIN, lease * 0.1), lease / 2)
end


-- handle, expires_at, meta from an auth block whose client_token aurora.http already moved
-- into a secret handle (res.secrets["auth.client_token"]), or nil, msg, "bad_reply".
local function from_auth(auth, h, now)
    if type(auth) ~= "table" or not h or h:len() == 0 then
        return nil, "Vault's reply has no auth.client_token", "bad_reply"
    end
    local lease = math.tointeger(auth.lease_duration) or 0
    -- A lease of 0 is a token without expiry (a root token); check again in a day.
    local expires_at = now + (lease > 0 and lease or 86400)
    return h, expires_at, { lease = lease, renewable = auth.renewable == true }
end


-- POST auth/approle/login: handle, expires_at, meta or nil, msg, code.
local function login(self)
    -- The secret_id handle goes into the JSON body inside aurora.http (a wiped C buffer), and
    -- the token comes back as a handle: neither is ever a Lua string.
    local now = time.now()
    local res, msg, code = send(self, { method = "POST", path = LOGIN_PATH,
        json = { role_id = self.role_id, secret_id = self.secret_id },
        secret_fields = { "auth.client_token" } })
    if not res then
        return nil, msg, code
    end
    if res.status ~= 200 then
        if res.status == 400 then
            return nil, "AppRole login refused: check VAULT_ROLE_ID and VAULT_SECRET_ID",
                "denied"
        end
        return failure(res)
    end
    local reply
    reply, msg, code = decode(res)
    if not reply then
        return nil, msg, code
    end
    return from_auth(reply.auth, res.secrets and res.secrets["auth.client_token"], now)
end


-- POST auth/token/renew-self with the current token: handle, expires_at, meta or nil.
local function renew(self, current, meta)
    local now = time.now()
    local res = send(self, { method = "POST", path = RENEW_PATH, token = current, json = {} })
    if not res or res.status ~= 200 then
        return nil
    end
    local reply = json.decode(res.body)
    local auth = type(reply) == "table" and reply.auth
    local lease = type(auth) == "table" and math.tointeger(auth.lease_duration) or 0
    -- Near its max TTL Vault renews for less than asked; then a fresh login is better.
    if lease <= margin_for(meta and meta.lease) then
        return nil
    end
    return current, now + lease, { lease = lease, renewable = auth.renewable == true }
end


-- The fetch function given to token.get: renews the cached token when it is renewable and
-- still valid, else logs in. Returns value, expires_at, meta or nil, err, negative_ttl.
local function fetcher(self)
    return function()
        local current, expires_at, meta = token.peek(self.token_key)
        local now = time.now()
        if current and expires_at > now + 1 and type(meta) == "table" and meta.renewable then
            local h, exp, m = renew(self, current, meta)
            if h then
                return h, exp, m
            end
            log.info("vault token renewal failed; logging in again", { addr = self.addr })
        end
        local h, exp, m = login(self)
        if h then
            if current then
                current:close()
            end
            return h, exp, m
        end
        local msg, code = exp, m
        -- A token that still works beats an error: keep it until it really expires.
        if current and expires_at > now + 1 then
            log.warn("vault login failed; keeping the current token", { code = code })
            return current, expires_at, meta
        end
        if current then
            current:close()
        end
        return nil, { message = msg, code = code }, NEGATIVE_TTL[code] or 1
    end
end


-- The token to send: a handle, or nil, msg, code.
local function acquire(self)
    if self.static_token then
        return self.static_token
    end
    if not self.lease then
        local h <close>, _, meta = token.peek(self.token_key)
        self.lease = type(meta) == "table" and meta.lease or nil
    end
    local h, expires_at, meta = token.get(self.token_key, self.fetch,
        { margin = margin_for(self.lease) })
    if not h then
        local err = expires_at
        if type(err) == "table" then
            return nil, err.message or "Vault login failed", err.code or "unavailable"
        end
        return nil, "Vault login failed", "unavailable"
    end
    if type(meta) == "table" then
        self.lease = meta.lease
    end
    return h
end


-- Forgets the cached AppRole token when it is still the one that was refused.
local function drop_token(self, used)
    local current <close> = token.peek(self.token_key)
    if current and current:equals(used) then
        token.invalidate(self.token_key)
    end
end


-- An authenticated request; with AppRole, a 403 makes one more try with a fresh token (the
-- token may have been revoked or expired early). Returns the response or nil, msg, code.
local function call(self, opts)
    for attempt = 1, 2 do
        local tok, msg, code = acquire(self)
        if not tok then
            return nil, msg, code
        end
        opts.token = tok
        local res
        res, msg, code = send(self, opts)
        opts.token = nil
        if tok ~= self.static_token then
            -- aurora.token hands out a fresh copy on every get; wipe it once it is used.
            if res and res.status == 403 and attempt == 1 then
                local last = relogin_at[self.token_key]
                if not last or time.monotonic() - last >= RELOGIN_INTERVAL then
                    drop_token(self, tok)
                end
            end
            tok:close()
        end
        if not res then
            return nil, msg, code
        end
        if res.status ~= 403 or self.static_token or attempt == 2 then
            return res
        end
        local now = time.monotonic()
        local last = relogin_at[self.token_key]
        if last and now - last < RELOGIN_INTERVAL then
            return res
        end
        relogin_at[self.token_key] = now
    end
end


-- ---- the client ----------------------------------------------------------------------------

local Client = {}
Client.__index = Client
Client.__name = "aurora.vault.client"
Client.__metatable = false

function Client.__tostring(self)
    return "aurora.vault.client(" .. self.addr .. ")"
end


local function check_version(version)
    if version == nil then
        return true
    end
    if math.type(version) ~= "integer" then
        error("bad argument #2 to 'read' (integer expected, got " .. type(version) .. ")", 3)
    end
    return version >= 1 and version <= MAX_VERSION
end


-- The decoded body of a 200 answer to a reading call; plain nil for a 404 (nothing there);
-- nil, msg, code on any other answer or failure. Shared by read, list and metadata.
local function get_body(self, opts)
    local res, msg, code = call(self, opts)
    if not res then
        return nil, msg, code
    end
    if res.status == 404 then
        return nil
    end
    if res.status ~= 200 then
        return failure(res)
    end
    return decode(res)
end


--- Reads the latest version of a secret, or `version`.
-- Returns data, metadata; nil when there is no such secret or version or it was deleted;
-- nil, msg, code ("invalid", "denied", "unavailable", "bad_reply") on failure.
-- Example: local creds, meta = client:read("users/u1/azure")
function Client:read(path, version)
    local p, msg, code = full_path(self, path, "read")
    if not check_version(version) then
        return nil, "invalid version: an integer from 1 is expected", "invalid"
    end
    if not p then
        return nil, msg, code
    end
    local body
    body, msg, code = get_body(self, { method = "GET", path = self.data_url .. p,
        query = version and { version = version } or nil })
    if not body then
        if msg == nil then return nil end -- nothing there: one plain nil
        return nil, msg, code
    end
    local d = body.data
    if type(d) ~= "table" or type(d.data) ~= "table" then
        return nil
    end
    return d.data, d.metadata
end


-- Shared by write and patch: the metadata of the new version, or nil, msg, code. The methods
-- tail-call it, so for error() level 2 is the method's caller.
local function put(self, fname, path, data, opts, method, content_type)
    if type(data) ~= "table" then
        error(string.format("bad argument #2 to '%s' (table expected, got %s)", fname,
            type(data)), 2)
    end
    if opts ~= nil and type(opts) ~= "table" then
        error(string.format("bad argument #3 to '%s' (table expected, got %s)", fname,
            type(opts)), 2)
    end
    local cas = opts and opts.cas
    if cas ~= nil and math.type(cas) ~= "integer" then
        error(string.format("bad argument #3 to '%s' (option 'cas' must be an integer)", fname),
            2)
    end
    for k in pairs(opts or {}) do
        if k ~= "cas" then
            error(string.format("bad argument #3 to '%s' (unknown option '%s')", fname,
                tostring(k)), 2)
        end
    end
    if json.is_array(data) or (next(data) ~= nil and #data > 0) then
        return nil, "secret data must be an object of fields", "invalid"
    end
    if cas and (cas < 0 or (method == "PATCH" and cas == 0)) then
        return nil, "cas must be 0 or more (more than 0 for a patch)", "invalid"
    end
    local p, msg, code = full_path(self, path, fname, false, 3)
    if not p then
        return nil, msg, code
    end
    local body = { data = data }
    if cas then
        body.options = { cas = cas }
    end
    local res
    res, msg, code = call(self, { method = method, path = self.data_url .. p, json = body,
        content_type = content_type })
    if not res then
        return nil, msg, code
    end
    if res.status ~= 200 then
        return failure(res)
    end
    local reply
    reply, msg, code = decode(res)
    if not reply then
        return nil, msg, code
    end
    if type(reply.data) ~= "table" then
        return nil, "Vault's reply has no version metadata", "bad_reply"
    end
    return reply.data
end


--- Writes a new version of a secret (all of its fields). opts.cas = N writes only when the
-- current version is N (0: only when the secret does not exist).
-- Returns the new version's metadata (version, created_time, ...), or nil, msg, code:
-- "conflict" (cas mismatch), "invalid", "denied", "not_found", "unavailable", "bad_reply".
-- Example: local meta, msg, code = client:write("users/u1/azure", creds, {cas = 0})
function Client:write(path, data, opts)
    return put(self, "write", path, data, opts, "POST")
end


--- Merges fields into the latest version (JSON merge patch: json.null removes a field) and
-- writes the result as a new version. Returns its metadata, or nil, msg, code: "not_found"
-- when there is no live version, "conflict", "invalid", "denied", "unavailable", "bad_reply".
-- Example: client:patch("users/u1/azure", {subscription = sub})
function Client:patch(path, data, opts)
    return put(self, "patch", path, data, opts, "PATCH", "application/merge-patch+json")
end


-- Shared by the deletes (tail-called, like put): true, or nil, msg, code.
local function remove(self, fname, path, url)
    local p, msg, code = full_path(self, path, fname, false, 3)
    if not p then
        return nil, msg, code
    end
    local res
    res, msg, code = call(self, { method = "DELETE", path = url .. p })
    if not res then
        return nil, msg, code
    end
    if res.status ~= 200 and res.status ~= 204 then
        return failure(res)
    end
    return true
end


--- Soft-deletes the latest version (undeletable in Vault; reads then return nil).
-- Returns true (also when there was nothing), or nil, msg, code.
-- Example: assert(client:delete("users/u1/azure"))
function Client:delete(path)
    return remove(self, "delete", path, self.data_url)
end


--- Deletes every version of a secret and its metadata, for good.
-- Returns true (also when there was nothing), or nil, msg, code.
-- Example: assert(client:delete_metadata("users/u1/azure"))
function Client:delete_metadata(path)
    return remove(self, "delete_metadata", path, self.metadata_url)
end


--- The keys under a folder (folders end in "/"), sorted as Vault sends them; nil when there is
-- nothing there; nil, msg, code on failure. `path` may be nil or "" for the prefix itself.
-- Example: for _, k in ipairs(client:list("users") or {}) do ... end
-- A metadata-endpoint read (LIST or GET): what pick(body) returns, one plain nil when there is
-- nothing there, or nil, msg, code.
local function metadata_read(self, method, path, fname, allow_empty, pick)
    local p, msg, code = full_path(self, path, fname, allow_empty)
    if not p then
        return nil, msg, code
    end
    local body
    body, msg, code = get_body(self, { method = method, path = self.metadata_url .. p })
    if not body then
        if msg == nil then return nil end -- nothing there: one plain nil
        return nil, msg, code
    end
    return pick(body)
end


function Client:list(path)
    return metadata_read(self, "LIST", path, "list", true, function(body)
        local keys = type(body.data) == "table" and body.data.keys
        if type(keys) ~= "table" then
            return nil, "Vault's reply has no keys", "bad_reply"
        end
        return keys
    end)
end


--- The metadata of a secret (current_version, versions, created_time, ...), nil when there is
-- no such secret, or nil, msg, code.
-- Example: local m = client:metadata("users/u1/azure"); if m then print(m.current_version) end
function Client:metadata(path)
    return metadata_read(self, "GET", path, "metadata", false, function(body)
        if type(body.data) ~= "table" then
            return nil, "Vault's reply has no metadata", "bad_reply"
        end
        return body.data
    end)
end


-- ---- constructors --------------------------------------------------------------------------

local function check_options(opts)
    if type(opts) ~= "table" then
        error("bad argument #1 to 'new' (table expected, got " .. type(opts) .. ")", 3)
    end
    for k, v in pairs(opts) do
        local want = OPTIONS[k]
        if not want then
            error("bad argument #1 to 'new' (unknown option '" .. tostring(k) .. "')", 3)
        end
        local ok
        if want == "secret" then
            ok = type(v) == "string" or is_secret(v)
        else
            ok = type(v) == want
        end
        if not ok then
            error(string.format("bad argument #1 to 'new' (option '%s': %s expected, got %s)", k,
                want == "secret" and "string or secret" or want, type(v)), 3)
        end
    end
end


local function invalid(msg)
    return nil, msg, "invalid"
end


--- Creates a client. opts: addr (required), token (handle or string) or role_id + secret_id
-- (handle or string), namespace, ca_file, mount ("secret"), prefix ("aurora"), timeout (10 s).
-- The client keeps the handles it is given: do not close them while it is in use.
-- Returns the client, or nil, msg, "invalid" when the configuration cannot work.
-- Example: local client = assert(vault.new{addr = url, token = tok, ca_file = ca})
function M.new(opts)
    check_options(opts)
    local addr = opts.addr
    if not addr or not addr:match("^https?://[^/?#%s]+/*$") then
        return invalid("Vault address must be an http:// or https:// URL without a path")
    end
    addr = addr:gsub("/+$", "")
    local has_role = opts.role_id ~= nil or opts.secret_id ~= nil
    if opts.token and has_role then
        return invalid("give a Vault token or an AppRole role_id and secret_id, not both")
    end
    if not opts.token and not has_role then
        return invalid("a Vault token or an AppRole role_id and secret_id is required")
    end
    if has_role and (not opts.role_id or not opts.secret_id or opts.role_id == "") then
        return invalid("AppRole login needs both role_id and secret_id")
    end
    local mount = opts.mount or "secret"
    if not valid_path(mount, MAX_SEGMENTS) then
        return invalid("invalid Vault mount: segments of A-Z a-z 0-9 . _ @ - separated by /")
    end
    local prefix = opts.prefix or "aurora"
    if prefix ~= "" and not valid_path(prefix, MAX_SEGMENTS) then
        return invalid("invalid Vault path prefix: segments of A-Z a-z 0-9 . _ @ - separated by /")
    end
    local namespace = opts.namespace
    if namespace == "" then
        namespace = nil
    end
    if namespace and not namespace:match("^[A-Za-z0-9._/-]+$") then
        return invalid("invalid Vault namespace")
    end
    local timeout = opts.timeout or DEFAULT_TIMEOUT
    if timeout <= 0 or timeout > 86400 then
        return invalid("Vault timeout must be more than 0 and at most 86400 seconds")
    end
    if opts.ca_file then
        local f = io.open(opts.ca_file, "r")
        if not f then
            return invalid("cannot read the Vault CA file " .. opts.ca_file)
        end
        f:close()
    end
    local self = setmetatable({
        addr = addr,
        namespace = namespace,
        ca_file = opts.ca_file,
        mount = mount,
        prefix = prefix,
        timeout = timeout,
        data_url = "/v1/" .. mount .. "/data/",
        metadata_url = "/v1/" .. mount .. "/metadata/",
    }, Client)
    if opts.token then
        local t = opts.token
        self.static_token = is_secret(t) and t or secret.new(t)
    else
        local s = opts.secret_id
        self.role_id = opts.role_id
        self.secret_id = is_secret(s) and s or secret.new(s)
        self.token_key = "vault:approle:" .. addr .. ":" .. (namespace or "") .. ":" ..
            opts.role_id
        self.fetch = fetcher(self)
    end
    return self
end


--- Creates a client from the environment: VAULT_ADDR (required), VAULT_TOKEN, or
-- VAULT_ROLE_ID + VAULT_SECRET_ID (AppRole wins when both are set), VAULT_NAMESPACE,
-- VAULT_CACERT, AURORA_VAULT_MOUNT, AURORA_VAULT_PREFIX.
-- Returns the client, or nil, msg, "invalid" when the variables cannot make one.
-- Example: local client, msg = vault.from_env(); if not client then log.error(msg) end
function M.from_env()
    local addr = env.get("VAULT_ADDR")
    if not addr then
        return invalid("VAULT_ADDR is not set")
    end
    local opts = {
        addr = addr,
        namespace = env.get("VAULT_NAMESPACE"),
        ca_file = env.get("VAULT_CACERT"),
        mount = env.get("AURORA_VAULT_MOUNT", "secret"),
        prefix = env.get("AURORA_VAULT_PREFIX", "aurora"),
    }
    local role_id = env.get("VAULT_ROLE_ID")
    local secret_id = secret.from_env("VAULT_SECRET_ID")
    if role_id or secret_id then
        if not role_id or not secret_id then
            if secret_id then
                secret_id:close()
            end
            return invalid("VAULT_ROLE_ID and VAULT_SECRET_ID must be set together")
        end
        opts.role_id, opts.secret_id = role_id, secret_id
    else
        opts.token = secret.from_env("VAULT_TOKEN")
        if not opts.token then
            return invalid("set VAULT_TOKEN, or VAULT_ROLE_ID and VAULT_SECRET_ID")
        end
    end
    local client, msg, code = M.new(opts)
    if not client then
        if opts.token then
            opts.token:close()
        end
        if opts.secret_id then
            opts.secret_id:close()
        end
        msg = msg:gsub("^Vault address", "VAULT_ADDR"):gsub("^cannot read the Vault CA file",
            "cannot read VAULT_CACERT")
        return nil, msg, code
    end
    return client
end


M.MAX_SEGMENTS = MAX_SEGMENTS

return M

-- aurora.secrets: the one secret-store interface of the app. Handlers call put, get, delete and
-- list with a path such as "users/<id>/azure" and a table of fields; where the secrets live is
-- decided here, once per VM:
--
--   * VAULT_ADDR set: HashiCorp Vault KV v2 through aurora.vault (vault.from_env()).
--   * otherwise: the encrypted embedded store aurora.store in $AURORA_DATA_DIR/secrets
--     (default ./data/secrets), keyed by AURORA_MASTER_KEY or the key file beside it.
--
-- secrets.configure picks a back end explicitly (the app's configuration step, and tests).
-- Both back ends get the same path rules (store.check_path) before anything is touched, the
-- same check-and-set meaning (cas = 0: create only; cas = N: only over version N; mismatch:
-- "conflict") and the same answers. Nothing here logs a value or puts one in a message.
-- The full reference is docs/store.md.
local env = require "aurora.env"
local store = require "aurora.store"
local vault = require "aurora.vault"

local M = {}

local DEFAULT_DATA_DIR = "./data"

-- The back end of this VM, opened on first use: {kind = "store", handle = h} or
-- {kind = "vault", client = c}. nil until then, and after configure().
local backend


-- ---- back ends -----------------------------------------------------------------------------

-- Unix seconds of an RFC 3339 UTC time ("2026-11-28T13:24:02.123456Z"), or nil.
local function rfc3339_seconds(s)
    if type(s) ~= "string" then
        return nil
    end
    local y, mo, d, h, mi, sec = s:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)T(%d%d):(%d%d):(%d%d)")
    if not y then
        return nil
    end
    y, mo, d = tonumber(y), tonumber(mo), tonumber(d)
    -- days from civil (Howard Hinnant's algorithm), independent of the local time zone
    if mo <= 2 then
        y = y - 1
    end
    local era = y // 400
    local yoe = y - era * 400
    local doy = (153 * (mo + (mo > 2 and -3 or 9)) + 2) // 5 + d - 1
    local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    local days = era * 146097 + doe - 719468
    return days * 86400 + tonumber(h) * 3600 + tonumber(mi) * 60 + tonumber(sec)
end


local STORE = {}


function STORE.put(b, path, value, cas)
    return b.handle:put(path, value, cas and {cas = cas} or nil)
end


function STORE.get(b, path)
    return b.handle:get(path)
end


function STORE.delete(b, path)
    return b.handle:delete(path)
end


function STORE.list(b, prefix)
    return b.handle:list(prefix)
end


local VAULT = {}


function VAULT.put(b, path, value, cas)
    local meta, msg, code = b.client:write(path, value, cas and {cas = cas} or nil)
    if not meta then
        return nil, msg, code
    end
    return meta.version
end


function VAULT.get(b, path)
    local data, meta, code = b.client:read(path)
    if not data then
        if meta then
            return nil, meta, code
        end
        return nil
    end
    meta = type(meta) == "table" and meta or {}
    return data, {version = meta.version, updated = rfc3339_seconds(meta.created_time)}
end


function VAULT.delete(b, path)
    return b.client:delete_metadata(path)
end


function VAULT.list(b, prefix)
    local keys, msg, code = b.client:list(prefix)
    if keys then
        return keys
    end
    if msg then
        return nil, msg, code
    end
    return {}
end


local OPS = {store = STORE, vault = VAULT}


-- Opens the back end the environment names: {kind=, ...}, or nil, msg, code.
local function open_default()
    if env.get("VAULT_ADDR") then
        local client, msg, code = vault.from_env()
        if not client then
            return nil, "cannot use Vault: " .. msg, code
        end
        return {kind = "vault", client = client}
    end
    local dir = env.get("AURORA_DATA_DIR", DEFAULT_DATA_DIR):gsub("/+$", "") .. "/secrets"
    local h, msg, code = store.open(dir)
    if not h then
        return nil, msg, code
    end
    return {kind = "store", handle = h}
end


-- The back end of this VM, opened on first use: b, ops, or nil, msg, code. A failed open is
-- not remembered, so the next call tries again.
local function current()
    if not backend then
        local b, msg, code = open_default()
        if not b then
            return nil, msg, code
        end
        backend = b
    end
    return backend, OPS[backend.kind]
end


local function forget()
    if backend and backend.kind == "store" then
        backend.handle:close()
    end
    backend = nil
end


-- ---- checks --------------------------------------------------------------------------------

local function check_string(v, n, fname)
    if type(v) ~= "string" then
        error(string.format("bad argument #%d to '%s' (string expected, got %s)", n, fname,
            type(v)), 3)
    end
end


-- cas from put's options table, or nil; raises on misuse.
local function check_cas(opts)
    if opts == nil then
        return nil
    end
    if type(opts) ~= "table" then
        error("bad argument #3 to 'put' (table expected, got " .. type(opts) .. ")", 3)
    end
    for k in pairs(opts) do
        if k ~= "cas" then
            error("bad argument #3 to 'put' (unknown option '" .. tostring(k) .. "')", 3)
        end
    end
    local cas = opts.cas
    if cas ~= nil and (math.type(cas) ~= "integer" or cas < 0) then
        error("bad argument #3 to 'put' (option 'cas' must be a non-negative integer)", 3)
    end
    return cas
end


-- Checks path (the same rules for both back ends), then calls the back end's op on it: the
-- common part of put, get and delete.
local function on_path(op, path, ...)
    local ok, msg, code = store.check_path(path)
    if not ok then
        return nil, msg, code
    end
    local b, ops
    b, ops, code = current()
    if not b then
        return nil, ops, code
    end
    return ops[op](b, path, ...)
end


-- ---- the interface -------------------------------------------------------------------------

--- Writes the secret at path (all of its fields). opts.cas = N writes only when the current
-- version is N; cas = 0 only when there is no secret yet.
-- Returns the new version (1 for the first write), or nil, msg, code: "invalid" (bad path),
-- "conflict" (cas mismatch), "too_large", "denied", "unavailable", "crypto", "io", ...
-- Raises for a path that is not a string, a value that is not a table, or bad options.
-- Example: local v, msg, code = secrets.put("users/" .. uid .. "/azure", creds, {cas = 0})
function M.put(path, value, opts)
    check_string(path, 1, "put")
    if type(value) ~= "table" then
        error("bad argument #2 to 'put' (table expected, got " .. type(value) .. ")", 2)
    end
    return on_path("put", path, value, check_cas(opts))
end


--- Reads the secret at path.
-- Returns the table and its meta {version =, updated =, created =} (times in Unix seconds;
-- Vault gives no created); plain nil when there is no secret; nil, msg, code on failure:
-- "invalid", "crypto" (the store's key is wrong or the record was altered), "denied",
-- "unavailable", ...
-- Example: local creds, meta = secrets.get("users/" .. uid .. "/azure")
function M.get(path)
    check_string(path, 1, "get")
    return on_path("get", path)
end


--- Deletes the secret at path, every version of it.
-- Returns true (also when there was nothing), or nil, msg, code.
-- Example: assert(secrets.delete("users/" .. uid .. "/azure"))
function M.delete(path)
    check_string(path, 1, "delete")
    return on_path("delete", path)
end


--- Lists the folder prefix ("" or nil: the top): an array of names, secrets as they are and
-- folders ending in "/" ({"azure", "users/"}); {} when there is nothing. nil, msg, code on
-- failure.
-- Example: for _, k in ipairs(assert(secrets.list("users"))) do ... end
function M.list(prefix)
    if prefix == nil then
        prefix = ""
    end
    check_string(prefix, 1, "list")
    local ok, msg, code = store.check_path(prefix, true)
    if not ok then
        return nil, msg, code
    end
    local b, ops
    b, ops, code = current()
    if not b then
        return nil, ops, code
    end
    return ops.list(b, (prefix:gsub("/$", "")))
end


--- Picks the back end of this VM, replacing the one in use (a store it opened is closed):
--   {backend = "store", dir = DIR [, key = secret_or_string]}: aurora.store in DIR;
--   {backend = "vault", vault = client}: a client made by aurora.vault.new or from_env;
--   nil: forget the choice; the next call opens the back end the environment names.
-- Returns true, or nil, msg, code when the store cannot be opened (the old back end is kept).
-- Raises for a bad option.
-- Example: secrets.configure{backend = "vault", vault = assert(vault.new{addr = a, token = t})}
function M.configure(opts)
    if opts == nil then
        forget()
        return true
    end
    if type(opts) ~= "table" then
        error("bad argument #1 to 'configure' (table expected, got " .. type(opts) .. ")", 2)
    end
    local allowed = {
        store = {backend = true, dir = true, key = true},
        vault = {backend = true, vault = true},
    }
    local kind = opts.backend
    if not allowed[kind] then
        error("bad argument #1 to 'configure' (backend must be \"store\" or \"vault\")", 2)
    end
    for k in pairs(opts) do
        if not allowed[kind][k] then
            error("bad argument #1 to 'configure' (unknown option '" .. tostring(k) ..
                "' for backend \"" .. kind .. "\")", 2)
        end
    end
    if kind == "vault" then
        local c = opts.vault
        if type(c) ~= "table" or type(c.read) ~= "function" then
            error("bad argument #1 to 'configure' (option 'vault' must be an aurora.vault client)",
                2)
        end
        forget()
        backend = {kind = "vault", client = c}
        return true
    end
    if type(opts.dir) ~= "string" then
        error("bad argument #1 to 'configure' (option 'dir' must be a string)", 2)
    end
    local h, msg, code = store.open(opts.dir, opts.key)
    if not h then
        return nil, msg, code
    end
    forget()
    backend = {kind = "store", handle = h}
    return true
end


--- The kind of back end in use, "store" or "vault" (opening it if needed), or nil, msg, code.
-- Example: log.info("secrets", {backend = secrets.backend()})
function M.backend()
    local b, msg, code = current()
    if not b then
        return nil, msg, code
    end
    return b.kind
end


return M

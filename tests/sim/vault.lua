-- The simulated HashiCorp Vault: token auth (the scenario's root token and AppRole logins),
-- namespaces (X-Vault-Namespace partitions the data), and KV version 2 on any mount name
-- (data, metadata, delete/undelete/destroy, config, LIST), with Vault's status codes and bodies.
--
-- Every answer has `Content-Type: application/json` exactly (hvac reads `errors` only then), a
-- 200 carries the full envelope (request_id, lease_id, ... auth), 204 has no body. Knob:
-- sim.knobs.vault_sealed = true makes everything but sys/health and sys/seal-status answer 503.
local crypto = require "aurora.crypto"
local json = require "aurora.json"
local time = require "aurora.time"
local sim = require "sim"

local M = {}

local SERVICE = "vault"
local VERSION = "1.15.6"
local MAX_DEPTH = 8
local DEFAULT_MAX_VERSIONS = 10

-- Module state, rebuilt on /_sim/reset: tokens by id, KV stores by namespace and mount, engine
-- config by namespace and mount.
local tokens, stores, configs
local cluster_id = sim.uuid()


local function reset()
    tokens, stores, configs = {}, {}, {}
end


-- ---- answers ------------------------------------------------------------------------------

local function vault_error(status, ...)
    return status, { errors = json.array({ ... }) }
end


local function envelope(data, auth)
    return {
        request_id = sim.uuid(),
        lease_id = "",
        renewable = false,
        lease_duration = 0,
        data = data == nil and json.null or data,
        wrap_info = json.null,
        warnings = json.null,
        auth = auth or json.null,
    }
end


local function ok(data, auth)
    return 200, envelope(data, auth)
end


-- RFC 3339 with nanoseconds, as Vault prints times.
local function rfc3339(t)
    local sec = math.floor(t)
    return os.date("!%Y-%m-%dT%H:%M:%S", sec) .. string.format(".%09dZ",
        math.floor((t - sec) * 1e9))
end


-- The request body as a table: {} when empty; nil and a 400 answer when malformed.
local function body_of(req)
    if req.body == "" then
        return {}
    end
    local v, msg = json.decode(req.body)
    if type(v) ~= "table" then
        return nil, msg or "JSON object expected"
    end
    return v
end


-- ---- tokens -------------------------------------------------------------------------------

local function token_of(req)
    local t = req.headers["x-vault-token"]
    if not t or t == "" then
        local h = req.headers.authorization
        t = h and h:match("^[Bb]earer%s+(%S+)$")
    end
    return t
end


-- The token record for the request, or nil when missing, unknown or expired.
local function authenticate(req)
    local t = token_of(req)
    if not t then
        return nil
    end
    local v = sim.scenario.vault or {}
    if v.root_token and crypto.equals(t, v.root_token) then
        return { id = t, policies = { "root" }, root = true, path = "auth/token/root",
            display_name = "root", created = 0, ttl = 0, accessor = "root-accessor" }
    end
    local rec = tokens[t]
    if rec and rec.expires and time.now() >= rec.expires then
        tokens[t] = nil
        return nil
    end
    return rec
end


-- Seconds from "1h", "30m", "45s", "3600" or a number; nil when absent or malformed.
local function duration(v)
    if type(v) == "number" then
        return math.floor(v)
    end
    if type(v) ~= "string" then
        return nil
    end
    local n, unit = v:match("^(%d+)([smhd]?)$")
    if not n then
        return nil
    end
    return math.floor(tonumber(n) * ({ [""] = 1, s = 1, m = 60, h = 3600, d = 86400 })[unit])
end


local function auth_block(rec)
    local remaining = rec.expires and
        math.max(0, math.floor(rec.expires - time.now() + 0.5)) or 0
    return {
        client_token = rec.id,
        accessor = rec.accessor,
        policies = json.array(rec.policies),
        token_policies = json.array(rec.policies),
        identity_policies = json.null,
        metadata = rec.metadata or json.null,
        lease_duration = remaining,
        renewable = not rec.root,
        entity_id = "",
        token_type = "service",
        orphan = true,
        mfa_requirement = json.null,
        num_uses = 0,
    }
end


local function approle_login(req)
    local body, msg = body_of(req)
    if not body then
        return vault_error(400, "failed to parse JSON input: " .. msg)
    end
    local role = (sim.scenario.vault or {}).approle
    if type(body.role_id) ~= "string" or body.role_id == "" then
        return vault_error(400, "missing role_id")
    end
    if not role or not crypto.equals(body.role_id, role.role_id) or
        type(body.secret_id) ~= "string" or not crypto.equals(body.secret_id, role.secret_id) then
        return vault_error(400, "invalid role or secret ID")
    end
    local ttl = sim.knobs.vault_token_ttl or role.token_ttl or 3600
    local id = "hvs." .. crypto.b64url_encode(crypto.random(24))
    local rec = { id = id, policies = { "default", table.unpack(role.policies or {}) },
        path = "auth/approle/login", display_name = "approle", created = time.now(),
        ttl = ttl, expires = time.now() + ttl, accessor = crypto.hex(crypto.random(12)),
        metadata = { role_name = role.name or "aurora" } }
    tokens[id] = rec
    return ok(nil, auth_block(rec))
end


local function lookup_self(req, rec)
    local now = time.now()
    local remaining = rec.expires and math.max(0, math.floor(rec.expires - now + 0.5)) or 0
    return ok({
        accessor = rec.accessor,
        creation_time = math.floor(rec.created),
        creation_ttl = rec.ttl,
        display_name = rec.display_name,
        entity_id = "",
        expire_time = rec.expires and rfc3339(rec.expires) or json.null,
        explicit_max_ttl = 0,
        id = rec.id,
        identity_policies = json.null,
        issue_time = rfc3339(rec.created),
        meta = rec.metadata or json.null,
        num_uses = 0,
        orphan = true,
        path = rec.path,
        policies = json.array(rec.policies),
        renewable = not rec.root,
        ttl = remaining,
        type = "service",
    })
end


local function renew_self(req, rec)
    local body = body_of(req) or {}
    if rec.root then
        -- Root tokens have no TTL; Vault answers with an unchanged, non-renewable lease.
        return ok(nil, auth_block(rec))
    end
    local ttl = duration(body.increment) or rec.ttl
    rec.expires = time.now() + ttl
    return ok(nil, auth_block(rec))
end


local function revoke_self(req, rec)
    if not rec.root then
        tokens[rec.id] = nil
    end
    return 204
end


-- ---- KV version 2 --------------------------------------------------------------------------

local function namespace_of(req)
    local ns = req.headers["x-vault-namespace"] or ""
    return (ns:gsub("^/+", ""):gsub("/+$", ""))
end


local function store_of(req)
    local ns = namespace_of(req)
    local mount = req.params.mount
    stores[ns] = stores[ns] or {}
    stores[ns][mount] = stores[ns][mount] or {}
    configs[ns] = configs[ns] or {}
    configs[ns][mount] = configs[ns][mount] or { max_versions = 0, cas_required = false,
        delete_version_after = "0s" }
    return stores[ns][mount], configs[ns][mount]
end


-- The secret path from the captures p1..pN.
local function path_of(req)
    local parts = {}
    for i = 1, MAX_DEPTH do
        local p = req.params["p" .. i]
        if not p then break end
        parts[#parts + 1] = p
    end
    return table.concat(parts, "/")
end


local function version_meta(v)
    return {
        created_time = v.created_time,
        custom_metadata = json.null,
        deletion_time = v.deletion_time,
        destroyed = v.destroyed,
        version = v.version,
    }
end


local function is_deleted(v)
    return v.destroyed or v.deletion_time ~= ""
end


local function max_versions(entry, config)
    local m = entry.max_versions ~= 0 and entry.max_versions or config.max_versions
    return m ~= 0 and m or DEFAULT_MAX_VERSIONS
end


local function prune(entry, config)
    local keep = max_versions(entry, config)
    while entry.current_version - entry.oldest_version + 1 > keep do
        entry.versions[entry.oldest_version] = nil
        entry.oldest_version = entry.oldest_version + 1
    end
end


local function new_entry(now)
    return { versions = {}, current_version = 0, oldest_version = 0, max_versions = 0,
        cas_required = false, delete_version_after = "0s", custom_metadata = json.null,
        created_time = now, updated_time = now }
end


-- Checks options.cas against the entry; returns nil or the 400 message.
local function check_cas(body, entry, config)
    local cas = type(body.options) == "table" and body.options.cas or nil
    if cas == nil then
        if (entry and entry.cas_required) or config.cas_required then
            return "check-and-set parameter required for this call"
        end
        return nil
    end
    if math.type(cas) ~= "integer" then
        return "error parsing check-and-set parameter"
    end
    if cas ~= (entry and entry.current_version or 0) then
        return "check-and-set parameter did not match the current version"
    end
    return nil
end


local function add_version(store, config, path, data)
    local now = rfc3339(time.now())
    local entry = store[path]
    if not entry then
        entry = new_entry(now)
        store[path] = entry
    end
    local n = entry.current_version + 1
    entry.versions[n] = { version = n, data = data, created_time = now, deletion_time = "",
        destroyed = false }
    entry.current_version = n
    if entry.oldest_version == 0 then
        entry.oldest_version = n
    end
    entry.updated_time = now
    prune(entry, config)
    return entry.versions[n]
end


local function data_read(req)
    local store = store_of(req)
    local entry = store[path_of(req)]
    if not entry then
        return vault_error(404)
    end
    local n = tonumber(req.query.version or "0")
    if not n or math.type(n) ~= "integer" then
        return vault_error(400, "invalid version")
    end
    if n == 0 then
        n = entry.current_version
    end
    local v = entry.versions[n]
    if not v then
        return vault_error(404)
    end
    local meta = version_meta(v)
    if entry.custom_metadata ~= json.null then
        meta.custom_metadata = entry.custom_metadata
    end
    if is_deleted(v) then
        return 404, envelope({ data = json.null, metadata = meta })
    end
    return ok({ data = v.data, metadata = meta })
end


local function data_write(req)
    local body, msg = body_of(req)
    if not body then
        return vault_error(400, "failed to parse JSON input: " .. msg)
    end
    if type(body.data) ~= "table" or json.is_array(body.data) then
        return vault_error(400, "no data provided")
    end
    local store, config = store_of(req)
    local path = path_of(req)
    local bad = check_cas(body, store[path], config)
    if bad then
        return vault_error(400, bad)
    end
    return ok(version_meta(add_version(store, config, path, body.data)))
end


-- RFC 7396 JSON merge patch of target by patch (a new table).
local function merge_patch(target, patch)
    if type(patch) ~= "table" or json.is_array(patch) then
        return patch
    end
    local out = {}
    if type(target) == "table" and not json.is_array(target) then
        for k, v in pairs(target) do out[k] = v end
    end
    for k, v in pairs(patch) do
        if v == json.null then
            out[k] = nil
        else
            out[k] = merge_patch(out[k], v)
        end
    end
    return out
end


local function data_patch(req)
    local ct = (req.headers["content-type"] or ""):lower()
    if not ct:find("application/merge-patch+json", 1, true) then
        return vault_error(415, "PATCH requires Content-Type of application/merge-patch+json")
    end
    local body, msg = body_of(req)
    if not body then
        return vault_error(400, "failed to parse JSON input: " .. msg)
    end
    if type(body.data) ~= "table" then
        return vault_error(400, "no data provided")
    end
    local store, config = store_of(req)
    local path = path_of(req)
    local entry = store[path]
    local current = entry and entry.versions[entry.current_version]
    if not current or is_deleted(current) then
        return vault_error(404)
    end
    local cas = type(body.options) == "table" and body.options.cas or nil
    if cas ~= nil and (math.type(cas) ~= "integer" or cas <= 0) then
        return vault_error(400, "check-and-set parameter must be greater than 0 for a patch")
    end
    local bad = check_cas(body, entry, config)
    if bad then
        return vault_error(400, bad)
    end
    local data = merge_patch(current.data, body.data)
    return ok(version_meta(add_version(store, config, path, data)))
end


local function data_delete(req)
    local store = store_of(req)
    local entry = store[path_of(req)]
    local v = entry and entry.versions[entry.current_version]
    if v and v.deletion_time == "" then
        v.deletion_time = rfc3339(time.now())
    end
    return 204
end


-- POST delete/undelete/destroy {"versions": [...]}.
local function versions_op(op)
    return function(req)
        local body, msg = body_of(req)
        if not body then
            return vault_error(400, "failed to parse JSON input: " .. msg)
        end
        if type(body.versions) ~= "table" or #body.versions == 0 then
            return vault_error(400, "no version number provided")
        end
        local entry = store_of(req)[path_of(req)]
        if not entry then
            return 204
        end
        local now = rfc3339(time.now())
        for _, n in ipairs(body.versions) do
            local v = entry.versions[tonumber(n)]
            if v then
                if op == "delete" and v.deletion_time == "" then
                    v.deletion_time = now
                elseif op == "undelete" and not v.destroyed then
                    v.deletion_time = ""
                elseif op == "destroy" then
                    v.destroyed, v.data = true, json.null
                end
            end
        end
        return 204
    end
end


local function list_keys(req)
    local store = store_of(req)
    local prefix = path_of(req)
    if prefix ~= "" then
        prefix = prefix .. "/"
    end
    local seen, keys = {}, {}
    for path in pairs(store) do
        if path:sub(1, #prefix) == prefix then
            local rest = path:sub(#prefix + 1)
            local key = rest:match("^[^/]+/") or rest
            if key ~= "" and not seen[key] then
                seen[key] = true
                keys[#keys + 1] = key
            end
        end
    end
    if #keys == 0 then
        return vault_error(404)
    end
    table.sort(keys)
    return ok({ keys = json.array(keys) })
end


local function metadata_read(req)
    if req.query.list == "true" then
        return list_keys(req)
    end
    local entry = store_of(req)[path_of(req)]
    if not entry then
        return vault_error(404)
    end
    local versions = {}
    for n, v in pairs(entry.versions) do
        versions[tostring(n)] = { created_time = v.created_time, deletion_time = v.deletion_time,
            destroyed = v.destroyed }
    end
    return ok({
        cas_required = entry.cas_required,
        created_time = entry.created_time,
        current_version = entry.current_version,
        custom_metadata = entry.custom_metadata,
        delete_version_after = entry.delete_version_after,
        max_versions = entry.max_versions,
        oldest_version = entry.oldest_version,
        updated_time = entry.updated_time,
        versions = versions,
    })
end


local function metadata_write(req)
    local body, msg = body_of(req)
    if not body then
        return vault_error(400, "failed to parse JSON input: " .. msg)
    end
    local store, config = store_of(req)
    local path = path_of(req)
    local now = rfc3339(time.now())
    local entry = store[path] or new_entry(now)
    store[path] = entry
    if math.type(body.max_versions) == "integer" then
        entry.max_versions = body.max_versions
    end
    if type(body.cas_required) == "boolean" then
        entry.cas_required = body.cas_required
    end
    if type(body.delete_version_after) == "string" then
        entry.delete_version_after = body.delete_version_after
    end
    if type(body.custom_metadata) == "table" then
        entry.custom_metadata = body.custom_metadata
    end
    entry.updated_time = now
    prune(entry, config)
    return 204
end


local function metadata_delete(req)
    store_of(req)[path_of(req)] = nil
    return 204
end


local function config_read(req)
    local _, config = store_of(req)
    return ok({ max_versions = config.max_versions, cas_required = config.cas_required,
        delete_version_after = config.delete_version_after })
end


local function config_write(req)
    local body, msg = body_of(req)
    if not body then
        return vault_error(400, "failed to parse JSON input: " .. msg)
    end
    local _, config = store_of(req)
    if math.type(body.max_versions) == "integer" then
        config.max_versions = body.max_versions
    end
    if type(body.cas_required) == "boolean" then
        config.cas_required = body.cas_required
    end
    if type(body.delete_version_after) == "string" then
        config.delete_version_after = body.delete_version_after
    end
    return 204
end


local function method_not_allowed()
    return vault_error(405, "unsupported operation")
end


-- ---- sys ---------------------------------------------------------------------------------

local function health(req)
    local sealed = sim.knobs.vault_sealed == true
    local body = {
        initialized = true,
        sealed = sealed,
        standby = false,
        performance_standby = false,
        replication_performance_mode = "disabled",
        replication_dr_mode = "disabled",
        server_time_utc = os.time(),
        version = VERSION,
        cluster_name = "vault-cluster-sim",
        cluster_id = cluster_id,
    }
    return sealed and 503 or 200, body
end


local function seal_status(req)
    return 200, {
        type = "shamir",
        initialized = true,
        sealed = sim.knobs.vault_sealed == true,
        t = 1,
        n = 1,
        progress = 0,
        nonce = "",
        version = VERSION,
        build_date = "2024-02-28T17:07:34Z",
        migration = false,
        cluster_name = "vault-cluster-sim",
        cluster_id = cluster_id,
        recovery_seal = false,
        storage_type = "inmem",
    }
end


-- ---- routing -----------------------------------------------------------------------------

-- Wraps a handler with the seal check and, unless open, the token check.
local function guarded(handler, open)
    return function(req)
        if sim.knobs.vault_sealed == true then
            return vault_error(503, "Vault is sealed")
        end
        if open then
            return handler(req)
        end
        local rec = authenticate(req)
        if not rec then
            return vault_error(403, "permission denied")
        end
        return handler(req, rec)
    end
end


local function add(routes, key, handler, open)
    sim.add(routes, SERVICE, key, guarded(handler, open))
end


-- "/{p1}/{p2}/.../{pN}"
local function segments(n)
    local s = {}
    for i = 1, n do s[i] = "/{p" .. i .. "}" end
    return table.concat(s)
end


--- The Vault route table.
function M.routes()
    local routes = {}
    sim.add(routes, SERVICE, "GET /v1/sys/health", health)
    sim.add(routes, SERVICE, "GET /v1/sys/seal-status", seal_status)
    add(routes, "POST /v1/auth/approle/login", approle_login, true)
    add(routes, "PUT /v1/auth/approle/login", approle_login, true)
    add(routes, "GET /v1/auth/token/lookup-self", lookup_self)
    add(routes, "POST /v1/auth/token/lookup-self", lookup_self)
    add(routes, "POST /v1/auth/token/renew-self", renew_self)
    add(routes, "PUT /v1/auth/token/renew-self", renew_self)
    add(routes, "POST /v1/auth/token/revoke-self", revoke_self)
    add(routes, "PUT /v1/auth/token/revoke-self", revoke_self)

    add(routes, "GET /v1/{mount}/config", config_read)
    add(routes, "POST /v1/{mount}/config", config_write)
    add(routes, "PUT /v1/{mount}/config", config_write)
    -- Listing the mount's root: LIST /v1/{mount}/metadata (or .../metadata/).
    add(routes, "LIST /v1/{mount}/metadata", list_keys)
    add(routes, "GET /v1/{mount}/metadata", function(req)
        if req.query.list == "true" then
            return list_keys(req)
        end
        return method_not_allowed()
    end)

    for depth = 1, MAX_DEPTH do
        local tail = segments(depth)
        local data = "/v1/{mount}/data" .. tail
        add(routes, "GET " .. data, data_read)
        add(routes, "POST " .. data, data_write)
        add(routes, "PUT " .. data, data_write)
        add(routes, "PATCH " .. data, data_patch)
        add(routes, "DELETE " .. data, data_delete)
        add(routes, "LIST " .. data, method_not_allowed)

        local meta = "/v1/{mount}/metadata" .. tail
        add(routes, "GET " .. meta, metadata_read)
        add(routes, "LIST " .. meta, list_keys)
        add(routes, "POST " .. meta, metadata_write)
        add(routes, "PUT " .. meta, metadata_write)
        add(routes, "DELETE " .. meta, metadata_delete)

        for _, op in ipairs { "delete", "undelete", "destroy" } do
            add(routes, "POST /v1/{mount}/" .. op .. tail, versions_op(op))
            add(routes, "PUT /v1/{mount}/" .. op .. tail, versions_op(op))
        end
    end
    return routes
end

reset()
sim.on_reset(reset)

return M

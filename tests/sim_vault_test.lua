-- The simulated Vault: KV v2 (versions, CAS, patch, soft delete, list, metadata), AppRole and
-- token self-management, namespaces, and the 403 / 503 answers clients rely on.
local T = require "aurora.test"
local harness = require "sim.harness"
local json = require "aurora.json"

local AURORA = "/v1/secret/data/aurora/u1"


-- A request to the simulated Vault with the root token (or opts.token / no token).
local function vault(sim, method, path, opts)
    opts = opts or {}
    local headers = opts.headers or {}
    local token = opts.token
    if token == nil then
        token = sim.env.SIM_VAULT_TOKEN
    end
    if token then
        headers["X-Vault-Token"] = token
    end
    local res = assert(sim:request("vault", method, path, { headers = headers,
        json = opts.json, body = opts.body }))
    local body = res.body ~= "" and json.decode(res.body) or nil
    return res.status, body, res
end


T.test("a secret written to KV v2 reads back with its metadata in Vault's envelope", function()
    local sim = harness.start()
    local status, body, res = vault(sim, "POST", AURORA, { json = { data = { a = "1" } } })
    T.eq(status, 200)
    T.eq(res.headers["content-type"], "application/json")
    T.eq(body.data.version, 1)
    T.eq(body.data.deletion_time, "")
    T.eq(body.data.destroyed, false)
    T.match(body.data.created_time, "^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d+Z$")
    for _, k in ipairs { "request_id", "lease_id", "renewable", "lease_duration", "wrap_info",
        "warnings", "auth" } do
        T.ok(body[k] ~= nil, "envelope has " .. k)
    end
    status, body = vault(sim, "GET", AURORA)
    T.eq(status, 200)
    T.eq(body.data.data, { a = "1" })
    T.eq(body.data.metadata.version, 1)
    T.eq(body.lease_id, "")
    T.eq(body.auth, json.null)
end)


T.test("every write makes a new version and ?version=N reads an older one", function()
    local sim = harness.start()
    vault(sim, "POST", AURORA, { json = { data = { a = "1" } } })
    local status, body = vault(sim, "PUT", AURORA, { json = { data = { a = "2" } } })
    T.eq(status, 200)
    T.eq(body.data.version, 2)
    local _, latest = vault(sim, "GET", AURORA)
    T.eq(latest.data.data, { a = "2" })
    local _, v1 = vault(sim, "GET", AURORA .. "?version=1")
    T.eq(v1.data.data, { a = "1" })
    T.eq(v1.data.metadata.version, 1)
    T.eq((vault(sim, "GET", AURORA .. "?version=7")), 404)
end)


T.test("a check-and-set mismatch is 400 with Vault's exact message", function()
    local sim = harness.start()
    vault(sim, "POST", AURORA, { json = { data = { a = "1" } } })
    local status, body = vault(sim, "POST", AURORA, { json = { options = { cas = 0 },
        data = { a = "x" } } })
    T.eq(status, 400)
    T.eq(body, { errors = { "check-and-set parameter did not match the current version" } })
    status, body = vault(sim, "POST", AURORA, { json = { options = { cas = 1 },
        data = { a = "3" } } })
    T.eq(status, 200)
    T.eq(body.data.version, 2)
    status = vault(sim, "POST", "/v1/secret/data/fresh", { json = { options = { cas = 0 },
        data = { b = "1" } } })
    T.eq(status, 200, "cas 0 creates a path that does not exist")
    status, body = vault(sim, "POST", AURORA, { json = { options = {} } })
    T.eq(status, 400)
    T.eq(body.errors, { "no data provided" })
end)


T.test("PATCH merges into the latest version and needs the merge-patch content type", function()
    local sim = harness.start()
    vault(sim, "POST", AURORA, { json = { data = { a = "1", b = "2", c = "3" } } })
    local status, body = vault(sim, "PATCH", AURORA, {
        headers = { ["Content-Type"] = "application/merge-patch+json" },
        body = json.encode({ data = { b = "20", c = json.null, d = "4" } }) })
    T.eq(status, 200)
    T.eq(body.data.version, 2)
    local _, read = vault(sim, "GET", AURORA)
    T.eq(read.data.data, { a = "1", b = "20", d = "4" })
    status = vault(sim, "PATCH", AURORA, { json = { data = { a = "x" } } })
    T.eq(status, 415, "application/json is refused for PATCH")
    status = vault(sim, "PATCH", "/v1/secret/data/none", {
        headers = { ["Content-Type"] = "application/merge-patch+json" },
        body = json.encode({ data = { a = "1" } }) })
    T.eq(status, 404)
end)


T.test("a soft-deleted secret reads as 404 with data null and its metadata", function()
    local sim = harness.start()
    vault(sim, "POST", AURORA, { json = { data = { a = "1" } } })
    local status, body, res = vault(sim, "DELETE", AURORA)
    T.eq(status, 204)
    T.eq(res.body, "")
    status, body = vault(sim, "GET", AURORA)
    T.eq(status, 404)
    T.eq(body.data.data, json.null)
    T.eq(body.data.metadata.version, 1)
    T.ok(body.data.metadata.deletion_time ~= "", "deletion_time is set")
    T.eq(body.errors, nil)
    status, body = vault(sim, "GET", "/v1/secret/data/never/written")
    T.eq(status, 404)
    T.eq(body, { errors = {} })
    -- undelete brings it back; destroy makes it unrecoverable.
    T.eq((vault(sim, "POST", "/v1/secret/undelete/aurora/u1", { json = { versions = { 1 } } })),
        204)
    T.eq((vault(sim, "GET", AURORA)), 200)
    T.eq((vault(sim, "POST", "/v1/secret/destroy/aurora/u1", { json = { versions = { 1 } } })),
        204)
    status, body = vault(sim, "GET", AURORA)
    T.eq(status, 404)
    T.eq(body.data.metadata.destroyed, true)
end)


T.test("LIST and GET ?list=true give keys with folders ending in / and 404 when empty", function()
    local sim = harness.start()
    for _, p in ipairs { "aurora/u1", "aurora/u2", "aurora/team/t1", "other" } do
        vault(sim, "POST", "/v1/secret/data/" .. p, { json = { data = { v = p } } })
    end
    local status, body = vault(sim, "LIST", "/v1/secret/metadata/aurora")
    T.eq(status, 200)
    T.eq(body.data.keys, { "team/", "u1", "u2" })
    status, body = vault(sim, "GET", "/v1/secret/metadata/aurora?list=true")
    T.eq(status, 200)
    T.eq(body.data.keys, { "team/", "u1", "u2" })
    status, body = vault(sim, "LIST", "/v1/secret/metadata/")
    T.eq(body.data.keys, { "aurora/", "other" })
    status, body = vault(sim, "LIST", "/v1/secret/metadata/nothing/here")
    T.eq(status, 404)
    T.eq(body, { errors = {} })
    status = vault(sim, "LIST", "/v1/secret/metadata/a/b/c/d/e/f/g")
    T.eq(status, 404, "seven segments below the mount are routed")
    T.eq((vault(sim, "POST", "/v1/secret/data/a/b/c/d/e/f/g/h", { json = { data = {
        deep = "yes" } } })), 200, "eight segments below data/ are routed")
end)


T.test("metadata shows every version and DELETE metadata removes all of them", function()
    local sim = harness.start()
    vault(sim, "POST", AURORA, { json = { data = { a = "1" } } })
    vault(sim, "POST", AURORA, { json = { data = { a = "2" } } })
    local status, body = vault(sim, "GET", "/v1/secret/metadata/aurora/u1")
    T.eq(status, 200)
    T.eq(body.data.current_version, 2)
    T.eq(body.data.oldest_version, 1)
    T.ok(body.data.versions["1"] and body.data.versions["2"], "both versions are listed")
    T.eq((vault(sim, "DELETE", "/v1/secret/metadata/aurora/u1")), 204)
    T.eq((vault(sim, "GET", AURORA)), 404)
    T.eq((vault(sim, "GET", "/v1/secret/metadata/aurora/u1")), 404)
    T.eq((vault(sim, "LIST", "/v1/secret/metadata/aurora")), 404)
end)


T.test("AppRole login returns a renewable token that works, renews and looks itself up", function()
    local sim = harness.start()
    local status, body = vault(sim, "POST", "/v1/auth/approle/login", { token = false,
        json = { role_id = "sim-role-id-0001", secret_id = "sim-secret-id-0001" } })
    T.eq(status, 200)
    local auth = body.auth
    T.match(auth.client_token, "^hvs%.")
    T.eq(auth.renewable, true)
    T.ok(auth.lease_duration > 3500 and auth.lease_duration <= 3600)
    T.eq(auth.token_policies, { "default", "aurora" })
    local tok = auth.client_token
    T.eq((vault(sim, "POST", AURORA, { token = tok, json = { data = { a = "1" } } })), 200)
    status, body = vault(sim, "GET", "/v1/auth/token/lookup-self", { token = tok })
    T.eq(status, 200)
    T.eq(body.data.id, tok)
    T.eq(body.data.renewable, true)
    T.eq(body.data.path, "auth/approle/login")
    status, body = vault(sim, "POST", "/v1/auth/token/renew-self", { token = tok,
        json = { increment = "2h" } })
    T.eq(status, 200)
    T.eq(body.auth.client_token, tok)
    T.ok(body.auth.lease_duration > 7000, "the increment is granted")
    status, body = vault(sim, "POST", "/v1/auth/approle/login", { token = false,
        json = { role_id = "sim-role-id-0001", secret_id = "wrong" } })
    T.eq(status, 400)
    T.eq(body, { errors = { "invalid role or secret ID" } })
end)


T.test("an AppRole token expires after its TTL", function()
    local sim = harness.start()
    sim:knobs { vault_token_ttl = 1 }
    local _, body = vault(sim, "POST", "/v1/auth/approle/login", { token = false,
        json = { role_id = "sim-role-id-0001", secret_id = "sim-secret-id-0001" } })
    local tok = body.auth.client_token
    T.eq(body.auth.lease_duration, 1)
    T.eq((vault(sim, "GET", "/v1/auth/token/lookup-self", { token = tok })), 200)
    require("aurora.time").sleep(1.2)
    T.eq((vault(sim, "GET", "/v1/auth/token/lookup-self", { token = tok })), 403)
end)


T.test("X-Vault-Namespace keeps each namespace's secrets apart", function()
    local sim = harness.start()
    vault(sim, "POST", AURORA, { json = { data = { where = "root" } } })
    vault(sim, "POST", AURORA, { headers = { ["X-Vault-Namespace"] = "team-a/" },
        json = { data = { where = "team-a" } } })
    local _, body = vault(sim, "GET", AURORA, { headers = { ["X-Vault-Namespace"] = "team-a" } })
    T.eq(body.data.data, { where = "team-a" })
    _, body = vault(sim, "GET", AURORA)
    T.eq(body.data.data, { where = "root" })
    local status = vault(sim, "GET", AURORA, { headers = { ["X-Vault-Namespace"] = "team-b" } })
    T.eq(status, 404)
end)


T.test("a missing or wrong token is 403 permission denied; a bearer token also works", function()
    local sim = harness.start()
    local status, body = vault(sim, "GET", AURORA, { token = false })
    T.eq(status, 403)
    T.eq(body, { errors = { "permission denied" } })
    status, body = vault(sim, "GET", "/v1/auth/token/lookup-self", { token = "not-a-token" })
    T.eq(status, 403)
    T.eq(body, { errors = { "permission denied" } })
    local res = assert(sim:request("vault", "POST", AURORA, { bearer = sim.env.SIM_VAULT_TOKEN,
        json = { data = { a = "1" } } }))
    T.eq(res.status, 200)
end)


T.test("a sealed Vault answers 503 and reports it in sys/health and sys/seal-status", function()
    local sim = harness.start()
    local status, body = vault(sim, "GET", "/v1/sys/health", { token = false })
    T.eq(status, 200)
    T.eq(body.sealed, false)
    T.eq(body.initialized, true)
    sim:knobs { vault_sealed = true }
    status, body = vault(sim, "GET", AURORA)
    T.eq(status, 503)
    T.eq(body, { errors = { "Vault is sealed" } })
    T.eq((vault(sim, "POST", "/v1/auth/approle/login", { token = false,
        json = { role_id = "sim-role-id-0001", secret_id = "sim-secret-id-0001" } })), 503)
    status, body = vault(sim, "GET", "/v1/sys/health", { token = false })
    T.eq(status, 503)
    T.eq(body.sealed, true)
    status, body = vault(sim, "GET", "/v1/sys/seal-status", { token = false })
    T.eq(status, 200)
    T.eq(body.sealed, true)
end)


T.test("an unsupported method is 405 and reset forgets every secret", function()
    local sim = harness.start()
    T.eq((vault(sim, "LIST", AURORA)), 405)
    vault(sim, "POST", AURORA, { json = { data = { a = "1" } } })
    assert(sim:request("vault", "POST", "/_sim/reset"))
    T.eq((vault(sim, "GET", AURORA)), 404)
    local st = sim:stats()
    T.eq(st.counts["vault:GET /v1/{mount}/data/{p1}/{p2}"], 1)
end)

-- The troubleshooting answers of the connector (docs/api.md, "Errors"; lua/maps/errors.lua),
-- each produced by the simulator over TLS through the app's own handlers: the seed's message,
-- the kind's code, the HTTP status, the solution steps (the upstream code's own first, then the
-- kind's), what failed upstream, the request id, and no secret in the body.
local T = require "aurora.test"
local harness = require "sim.harness"
local proc = require "aurora.proc"
local map = require "maps.errors"
local connector = require "lib.connector"

local GUID = "^%x%x%x%x%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$"
local TOKEN_ROUTE = "login:POST /{tenant}/oauth2/v2.0/token"
local CLUSTERS_ROUTE = "arm:GET /subscriptions/{sub}/providers/Microsoft.ContainerService/managedClusters"
local SUB_DISABLED = "1c2d3e4f-5061-4728-9394-a5b6c7d8e9f0"
local EXPIRED_ID, EXPIRED_SECRET = "3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e60", "sim-secret-expired-0003"
local NOACCESS_ID, NOACCESS_SECRET = "7a8b9cad-becf-4d01-8c3d-4e5f6a7b8c94", "sim-secret-noaccess-0004"
local UNKNOWN_APP = "0a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d"
local UNKNOWN_TENANT = "f0e1d2c3-b4a5-4968-8776-655443322110"


-- The app served against sim with env added to the simulator's endpoints (a value of false
-- leaves the variable out), each call sending X-Request-ID "trbl-<n>" (res.sent_id). Returns
-- call(method, path, opts) -> response with .json, and the server.
local function serve(sim, env_over, app)
    return connector.serve(sim, env_over, { app = app, request_ids = "trbl-" })
end


local creds = connector.credentials
local count = connector.route_count


-- POST /azure/login for u1 on a fresh simulator, with the fields of over changed in the
-- Contributor's credentials. Returns the answer, sim, call and the server.
local function login_with(over)
    local sim = harness.start()
    local call, s = serve(sim)
    return call("POST", "/azure/login", { json = creds(sim, over) }), sim, call, s
end


-- Checks one troubleshooting answer. want: status, error, code, step (text the first solution
-- step holds), upstream = {status, code, correlation (true: a GUID, a string: exactly that,
-- false: absent), message (text it holds)}, secrets (strings that must not appear).
local function check(res, want)
    T.eq(res.status, want.status, res.body)
    local b = res.json
    T.ok(b, "a JSON body: " .. tostring(res.body))
    T.match(res.headers["content-type"] or "", "^application/json")
    T.eq(b.error, want.error)
    T.eq(b.code, want.code)
    T.eq(type(b.solution), "table", "solution steps")
    T.contains(b.solution[1], want.step, "the upstream code's own step comes first")
    -- The kind's own steps follow the code's.
    local kind_steps = map.kinds[want.code].solution
    T.ok(#b.solution > #kind_steps, "steps of the code and of the kind")
    T.eq(b.solution[#b.solution], kind_steps[#kind_steps])
    for _, s in ipairs(b.solution) do T.eq(type(s), "string") end
    local up = want.upstream
    T.ok(type(b.upstream) == "table", "upstream is described")
    T.eq(b.upstream.status, up.status, "upstream.status")
    T.eq(b.upstream.code, up.code, "upstream.code")
    if up.correlation == true then
        T.match(b.upstream.correlationId, GUID, "upstream.correlationId")
    elseif up.correlation then
        T.eq(b.upstream.correlationId, up.correlation, "upstream.correlationId")
    else
        T.eq(b.upstream.correlationId, nil, "no correlation id when the upstream gave none")
    end
    if up.message then T.contains(b.upstream.message, up.message) end
    T.eq(b.requestId, res.sent_id, "requestId is the caller's X-Request-ID")
    T.eq(res.headers["x-request-id"], res.sent_id)
    for _, s in ipairs(want.secrets or {}) do T.not_contains(res.body, s) end
    T.not_contains(res.body, "eyJ", "no token")
    T.not_contains(res.body, "Trace ID")
end


-- ---- Invalid Azure credentials / Service principal not found (Entra ID) ---------------------

T.test("a wrong client secret (AADSTS7000215) is 401 Invalid Azure credentials", function()
    local res, _, call, s = login_with { clientSecret = "not-the-secret-4711" }
    check(res, { status = 401, error = "Invalid Azure credentials", code = "invalid_credentials",
        step = "secret's Value", secrets = { "not-the-secret-4711" },
        upstream = { status = 401, code = "AADSTS7000215", correlation = true,
            message = "AADSTS7000215: Invalid client secret provided." } })
    T.not_contains(s:log(), "not-the-secret-4711")
    T.eq(call("GET", "/azure/fetch_data").json.code, "not_connected")
end)


T.test("an expired client secret (AADSTS7000222) is 401 Invalid Azure credentials", function()
    local res = login_with { clientId = EXPIRED_ID, clientSecret = EXPIRED_SECRET }
    check(res, { status = 401, error = "Invalid Azure credentials", code = "invalid_credentials",
        step = "has expired", secrets = { EXPIRED_SECRET },
        upstream = { status = 401, code = "AADSTS7000222", correlation = true,
            message = "AADSTS7000222" } })
end)


T.test("an unknown application (AADSTS700016) is 404 Service principal not found", function()
    local res, sim = login_with { clientId = UNKNOWN_APP }
    check(res, { status = 404, error = "Service principal not found", code = "sp_not_found",
        step = "No application with this client id", secrets = { sim.env.SIM_CLIENT_SECRET },
        upstream = { status = 400, code = "AADSTS700016", correlation = true,
            message = UNKNOWN_APP } })
end)


T.test("an unknown tenant (AADSTS90002) is 401 Invalid Azure credentials", function()
    local res, sim = login_with { tenantId = UNKNOWN_TENANT }
    check(res, { status = 401, error = "Invalid Azure credentials", code = "invalid_credentials",
        step = "tenant was not found", secrets = { sim.env.SIM_CLIENT_SECRET },
        upstream = { status = 400, code = "AADSTS90002", correlation = true,
            message = UNKNOWN_TENANT } })
end)


T.test("Entra ID codes the map sends elsewhere keep the map's kind: AADSTS500011 is 404, " ..
    "AADSTS70011 a 502 token failure", function()
    local sim = harness.start()
    local call = serve(sim)
    local function entra_fault(status, err, n, text)
        sim:knobs { faults = { { route = TOKEN_ROUTE, status = status, body = {
            error = err, error_description = "AADSTS" .. n .. ": " .. text ..
                "\r\nTrace ID: 0f0f0f0f-0000-4000-8000-000000000001",
            error_codes = { n }, correlation_id = "5d5d5d5d-0000-4000-8000-000000000002" } } } }
    end
    entra_fault(400, "invalid_resource", 500011, "The resource principal named " ..
        "https://management.azure.com was not found in the tenant.")
    check(call("POST", "/azure/login", { json = creds(sim) }), { status = 404,
        error = "Service principal not found", code = "sp_not_found",
        step = "Azure Resource Manager", secrets = { sim.env.SIM_CLIENT_SECRET },
        upstream = { status = 400, code = "AADSTS500011",
            correlation = "5d5d5d5d-0000-4000-8000-000000000002" } })
    entra_fault(400, "invalid_scope", 70011, "The provided value for the input parameter " ..
        "'scope' is not valid.")
    check(call("POST", "/azure/login", { json = creds(sim, { clientId = EXPIRED_ID,
        clientSecret = EXPIRED_SECRET }) }), { status = 502, error = "Failed to get Azure token",
        code = "token_failed", step = "refused the token scope", secrets = { EXPIRED_SECRET },
        upstream = { status = 400, code = "AADSTS70011",
            correlation = "5d5d5d5d-0000-4000-8000-000000000002" } })
end)


T.test("a wrong secret of the read-only credentials says so, and nothing is stored", function()
    local res, sim, call = login_with { readOnlyCredentials = {
        clientId = "9e0f1a2b-3c4d-4e5f-8a6b-7c8d9e0f1a2c", clientSecret = "not-the-reader-0815" } }
    check(res, { status = 401, error = "Invalid Azure credentials", code = "invalid_credentials",
        step = "secret's Value", secrets = { "not-the-reader-0815", sim.env.SIM_CLIENT_SECRET },
        upstream = { status = 401, code = "AADSTS7000215", correlation = true,
            message = "readOnlyCredentials: AADSTS7000215: Invalid client secret provided." } })
    T.eq(call("GET", "/azure/fetch_data").status, 401, "nothing stored")
end)


T.test("a throttled login endpoint is a 502 token failure: the map does not pass 429 through",
    function()
        local sim = harness.start()
        local call = serve(sim)
        sim:knobs { faults = { { route = TOKEN_ROUTE, status = 429, retry_after = 30,
            body = { message = "Too many requests" } } } }
        local res = call("POST", "/azure/login", { json = creds(sim) })
        check(res, { status = 502, error = "Failed to get Azure token", code = "token_failed",
            step = "throttling or unavailable", secrets = { sim.env.SIM_CLIENT_SECRET },
            upstream = { status = 429, code = "unavailable", correlation = false } })
        T.eq(res.headers["retry-after"], nil)
        T.eq(map.kinds.token_failed.throttle, nil, "as the map says")
    end)


-- ---- No enabled subscription found ------------------------------------------------------

T.test("a given subscription that is Disabled is 403 No enabled subscription found", function()
    local res, sim, call = login_with { subscriptionId = SUB_DISABLED }
    check(res, { status = 403, error = "No enabled subscription found",
        code = "no_enabled_subscription", step = "you gave is not Enabled",
        secrets = { sim.env.SIM_CLIENT_SECRET },
        upstream = { status = 200, code = "not_enabled", correlation = false,
            message = SUB_DISABLED .. " is Disabled, not Enabled" } })
    T.eq(call("GET", "/azure/fetch_data").status, 401, "nothing stored")
end)


T.test("a principal with no role anywhere is 403 No enabled subscription found", function()
    local res = login_with { clientId = NOACCESS_ID, clientSecret = NOACCESS_SECRET }
    check(res, { status = 403, error = "No enabled subscription found",
        code = "no_enabled_subscription", step = "az role assignment create",
        secrets = { NOACCESS_SECRET },
        upstream = { status = 200, code = "none_visible", correlation = false,
            message = "no subscription is visible" } })
end)


-- ---- Failed to fetch AKS clusters (ARM) -------------------------------------------------

T.test("AuthorizationFailed on the cluster list is 403 Failed to fetch AKS clusters, " ..
    "not retried", function()
    local sim = harness.start()
    local call = serve(sim)
    T.eq(call("POST", "/azure/login", { json = creds(sim) }).status, 200)
    sim:knobs { faults = { { route = CLUSTERS_ROUTE, status = 403, code = "AuthorizationFailed",
        message = "The client '" .. sim.env.SIM_CLIENT_ID .. "' does not have authorization " ..
            "to perform action 'Microsoft.ContainerService/managedClusters/read'.",
        headers = { ["x-ms-correlation-request-id"] = "c0c0c0c0-1111-4222-8333-444455556666" },
        count = 5 } } }
    local before = count(sim, CLUSTERS_ROUTE)
    local res = call("GET", "/azure/clusters")
    check(res, { status = 403, error = "Failed to fetch AKS clusters", code = "clusters_failed",
        step = "az role assignment create", secrets = { sim.env.SIM_CLIENT_SECRET },
        upstream = { status = 403, code = "AuthorizationFailed",
            correlation = "c0c0c0c0-1111-4222-8333-444455556666",
            message = "does not have authorization" } })
    T.eq(count(sim, CLUSTERS_ROUTE) - before, 1, "a refusal is not retried")
end)


T.test("a 500 from ARM is retried, then 502 Failed to fetch AKS clusters", function()
    local sim = harness.start()
    local call = serve(sim)
    T.eq(call("POST", "/azure/login", { json = creds(sim) }).status, 200)
    -- Retry-After: 0 keeps the retries quick; the helper tries four times in all.
    sim:knobs { faults = { { route = CLUSTERS_ROUTE, status = 500, retry_after = 0, count = 10,
        code = "InternalServerError", message = "Something went wrong." } } }
    local before = count(sim, CLUSTERS_ROUTE)
    local res = call("GET", "/azure/clusters")
    -- The simulator's fault answers carry no correlation header: the id is the one aurora sent.
    check(res, { status = 502, error = "Failed to fetch AKS clusters", code = "clusters_failed",
        step = "internal error", secrets = { sim.env.SIM_CLIENT_SECRET },
        upstream = { status = 500, code = "InternalServerError", correlation = true,
            message = "Something went wrong." } })
    T.eq(count(sim, CLUSTERS_ROUTE) - before, 4, "four attempts")
end)


T.test("a 429 with a long Retry-After is passed through with its Retry-After", function()
    local sim = harness.start()
    local call = serve(sim)
    T.eq(call("POST", "/azure/login", { json = creds(sim) }).status, 200)
    sim:knobs { faults = { { route = CLUSTERS_ROUTE, status = 429, retry_after = 30,
        code = "SubscriptionRequestsThrottled", message = "Number of read requests for " ..
            "subscription exceeded the limit.", count = 5 } } }
    local before = count(sim, CLUSTERS_ROUTE)
    local res = call("GET", "/azure/clusters")
    check(res, { status = 429, error = "Failed to fetch AKS clusters", code = "clusters_failed",
        step = "Azure throttled", secrets = { sim.env.SIM_CLIENT_SECRET },
        upstream = { status = 429, code = "SubscriptionRequestsThrottled", correlation = true } })
    T.eq(res.headers["retry-after"], "30")
    T.eq(count(sim, CLUSTERS_ROUTE) - before, 1, "a wait longer than the helper's cap is the caller's")
    -- fetch_data (kind upstream) passes a 429 through the same way.
    sim:knobs { faults = { { route = "arm:GET /subscriptions/{sub}", status = 429,
        retry_after = 45, code = "SubscriptionRequestsThrottled", count = 5 } } }
    res = call("GET", "/azure/fetch_data")
    check(res, { status = 429, error = "Azure request failed", code = "upstream",
        step = "Azure throttled", secrets = { sim.env.SIM_CLIENT_SECRET },
        upstream = { status = 429, code = "SubscriptionRequestsThrottled", correlation = true } })
    T.eq(res.headers["retry-after"], "45")
end)


-- ---- Failed to get Azure token (no usable answer from the login endpoint) ----------------

T.test("a refused connection to the login endpoint is 502 Failed to get Azure token", function()
    local sim = harness.start()
    local port = assert(proc.free_port())
    local call = serve(sim, { AZURE_AUTHORITY_HOST = "https://127.0.0.1:" .. port })
    local res = call("POST", "/azure/login", { json = creds(sim) })
    check(res, { status = 502, error = "Failed to get Azure token", code = "token_failed",
        step = "connection to the upstream failed", secrets = { sim.env.SIM_CLIENT_SECRET },
        upstream = { status = 0, code = "connect", correlation = false } })
    T.eq(call("GET", "/azure/fetch_data").status, 401, "nothing stored")
end)


T.test("a login endpoint slower than the token timeout is 504 Failed to get Azure token",
    function()
        local sim = harness.start()
        -- The app as served in production, with the token request's timeout lowered from 20 s.
        local app = T.tmpdir()
        T.write_file(app .. "/app.lua", 'require("aurora.identity").TIMEOUT = 1\n' ..
            'return dofile("lua/app.lua")\n')
        local call = serve(sim, nil, app)
        sim:knobs { latency_ms = { [TOKEN_ROUTE] = 3000 } }
        local res = call("POST", "/azure/login", { json = creds(sim) })
        check(res, { status = 504, error = "Failed to get Azure token", code = "token_failed",
            step = "did not answer in time", secrets = { sim.env.SIM_CLIENT_SECRET },
            upstream = { status = 0, code = "timeout", correlation = false } })
        T.eq(count(sim, TOKEN_ROUTE), 1)
    end)


T.test("a login endpoint whose certificate is not trusted is 502 Failed to get Azure token",
    function()
        local sim = harness.start()
        -- Only the system CAs: AURORA_CA_BUNDLE unset, and the variables OpenSSL and curl read
        -- pointed at the system bundle, whatever this machine sets them to.
        local system = "/etc/ssl/certs/ca-certificates.crt"
        local ca = T.read_file(sim.env.SIM_CA_FILE)
        local ca_body = ca:match("%-%-%-%-%-BEGIN CERTIFICATE%-%-%-%-%-\n(.-)\n")
        T.ok(ca_body, "the simulator's CA is PEM")
        T.not_contains(T.read_file(system) or "", ca_body, "the system bundle trusts the simulator")
        local call = serve(sim, { AURORA_CA_BUNDLE = "", SSL_CERT_FILE = system,
            SSL_CERT_DIR = "/etc/ssl/certs", CURL_CA_BUNDLE = system })
        local res = call("POST", "/azure/login", { json = creds(sim) })
        check(res, { status = 502, error = "Failed to get Azure token", code = "token_failed",
            step = "TLS handshake failed", secrets = { sim.env.SIM_CLIENT_SECRET },
            upstream = { status = 0, code = "tls", correlation = false } })
        T.eq(count(sim, TOKEN_ROUTE), 0, "no request got through the handshake")
    end)


T.test("a dropped connection to the login endpoint is 502 Failed to get Azure token", function()
    local sim = harness.start()
    local call = serve(sim)
    sim:knobs { faults = { { route = TOKEN_ROUTE, drop = true, count = 1 } } }
    local res = call("POST", "/azure/login", { json = creds(sim) })
    check(res, { status = 502, error = "Failed to get Azure token", code = "token_failed",
        step = "connection to the upstream failed", secrets = { sim.env.SIM_CLIENT_SECRET },
        upstream = { status = 0, code = "connect", correlation = false } })
    T.eq(count(sim, TOKEN_ROUTE), 1, "the request reached the simulator, which hung up")
    -- Nothing was cached from the failure: the next login works.
    T.eq(call("POST", "/azure/login", { json = creds(sim) }).status, 200)
end)

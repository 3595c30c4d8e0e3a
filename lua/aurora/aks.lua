-- AKS cluster access and the metrics-server, as background jobs.
--
-- For each cluster a job finds out how Aurora reaches its Kubernetes API and whether the
-- metrics-server runs there, and deploys it (Do mode) when it is missing:
--   1. admin: listClusterAdminCredential -> kubeconfig -> client certificate and key, the API
--      server verified against the cluster CA of that kubeconfig;
--   2. aad: when local accounts are disabled or the admin credential is refused, an Entra ID
--      token for the AKS server app, the CA and server from listClusterUserCredential;
--   3. private clusters (only a private FQDN) and unreachable or unverifiable API servers are
--      reported as "unreachable", refused ones as "forbidden".
-- TLS is always verified, except for a cluster the operator lists in lua/maps/clusters.lua with
-- insecure_skip_tls_verify, and that is logged as a warning on every request.
--
-- Jobs run as timer tasks (never on a request), at most M.CONCURRENCY at once per batch, and at
-- most one per cluster and caller at a time (a lock in a shared dictionary, across workers);
-- a deployment is single-flight per cluster for the whole process. Results live in the shared
-- dictionary "aks_status" as JSON (no secret in them); credentials stay in the memory of the
-- worker that fetched them, as secret handles, until the certificate nears expiry.
local arm = require "aurora.azure.arm"
local account = require "aurora.azure.account"
local crypto = require "aurora.crypto"
local env = require "aurora.env"
local errors = require "aurora.errors"
local http = require "aurora.http"
local json = require "aurora.json"
local log = require "aurora.log"
local shared = require "aurora.shared"
local time = require "aurora.time"
local timer = require "aurora.timer"

local M = {}

M.CONCURRENCY = env.int("AURORA_AKS_CONCURRENCY", 100) or 100  -- cluster jobs at once per batch
M.STATUS_TTL = 300        -- seconds a known status is trusted before a job checks again
M.JOB_TTL = 600           -- seconds a job's lock lives at most (a crashed job frees it then)
M.REQUEST_WAIT = 20       -- seconds the detail and deploy endpoints wait for a job
M.DEPLOY_TIMEOUT = 300    -- seconds a deployment waits for the metrics-server to be Available
M.POLL_INTERVAL = 2       -- seconds between two looks at a deployment in progress
M.KUBE_TIMEOUT = 15       -- seconds per Kubernetes API request
M.CONNECT_TIMEOUT = 5     -- seconds to connect to an API server
M.CRED_MAX_AGE = 3600     -- seconds a fetched kubeconfig is reused at most
M.CERT_MARGIN = 600       -- a client certificate this close to expiry is fetched again
M.MAX_CLIENTS = 2000      -- cluster clients kept per worker (expired ones go first)
M.PROVIDER = "Microsoft.ContainerService"
M.METRICS_API = "v1beta1.metrics.k8s.io"
M.MANIFEST = "manifests/metrics-server.yaml"

local status = shared.dict("aks_status", { max_items = 200000 })

-- Per worker: kubeconfig-derived clients by caller and cluster (secret handles inside), at most
-- M.MAX_CLIENTS of them.
local clients, nclients = {}, 0
local manifest_cache

local function lower(s) return type(s) == "string" and s:lower() or "" end

-- The operator's per-cluster settings (lua/maps/clusters.lua), by "resourcegroup/name".
local function settings(c)
    local ok, map = pcall(require, "maps.clusters")
    if not ok or type(map) ~= "table" then return {} end
    local want = lower(c.resourceGroup) .. "/" .. lower(c.name)
    for k, v in pairs(map) do
        if lower(k) == want and type(v) == "table" then return v end
    end
    return {}
end

-- ---- the caller ------------------------------------------------------------------------------


--- The context of a caller for jobs: {uid, mode, main, ro, gen}. mode "do" uses the Do-mode
-- (main) credentials and may deploy; "ask" uses the read-only ones when present, never writes.
function M.context(uid, mode, main, ro)
    return { uid = uid, mode = mode, main = main, ro = ro, gen = account.generation(uid) }
end


local function creds(ctx)
    if ctx.mode == "do" then return ctx.main end
    return ctx.ro or ctx.main
end


local function arm_token(ctx)
    return account.token(creds(ctx), "arm")
end


local function caller_key(ctx)
    return ctx.uid .. "|" .. ctx.gen .. "|" .. ctx.mode
end


local function client_key(ctx, c, kind)
    return caller_key(ctx) .. "|" .. lower(c.id) .. "|" .. kind
end


-- The lock of a deployment: one per cluster for the whole process, whoever asks.
local function deploy_key(id)
    return "deploy|" .. lower(id)
end


local function status_key(ctx, c)
    return "st|" .. caller_key(ctx) .. "|" .. lower(c.id)
end

-- ---- status records ------------------------------------------------------------------------


--- The last known status of cluster c for ctx: a table, or nil when no job has reported yet.
function M.status(ctx, c)
    local text = status:get(status_key(ctx, c))
    return text and json.decode(text) or nil
end


local function save(ctx, c, rec)
    rec.checkedAt = time.iso8601()
    rec.checked = time.now()
    status:set(status_key(ctx, c), json.encode(rec), 86400)
end


-- The error body of the map (lua/maps/errors.lua) for a cluster-access failure.
local function describe(kind, upstream)
    local _, body = errors.respond(nil, kind, upstream)
    return body
end

-- ---- the Kubernetes client -------------------------------------------------------------------


local function decode(body)
    if type(body) ~= "string" or body == "" then return nil end
    local ok, v = pcall(json.decode, body)
    return ok and type(v) == "table" and v or nil
end


-- One Kubernetes API request: status, decoded body, or nil, {status=0, code, message}.
local function kube(ctx, client, method, path, body)
    local opts = { method = method, url = client.server .. path, json = body,
        timeout = M.KUBE_TIMEOUT, connect_timeout = M.CONNECT_TIMEOUT,
        headers = { Accept = "application/json" } }
    if client.insecure then
        log.warn("TLS verification is OFF for this cluster (operator setting " ..
            "insecure_skip_tls_verify in maps/clusters.lua)", { cluster = client.name,
                resource_group = client.resourceGroup })
        opts.insecure = true
    else
        opts.ca_pem = client.ca_pem
    end
    local tok
    if client.kind == "admin" then
        if client.cert then
            opts.client_cert, opts.client_key = client.cert, client.key
        else
            opts.bearer = client.token
        end
    else
        local err
        tok, err = account.token(creds(ctx), "aks")
        if not tok then
            return nil, { status = 0, code = type(err) == "table" and err.code or "token",
                message = "no Entra ID token for the AKS server app: " ..
                    tostring(type(err) == "table" and (err.description or err.message) or err) }
        end
        opts.bearer = tok
    end
    local res, msg, code = http.request(opts)
    if tok then tok:close() end
    if not res then return nil, { status = 0, code = code or "connect", message = msg } end
    return res.status, decode(res.body)
end


local function kube_message(st, body)
    local m = type(body) == "table" and type(body.message) == "string" and body.message or nil
    return "the API server answered " .. tostring(st) .. (m and (": " .. m) or "")
end

local KUBECONFIG_FIELD = "kubeconfigs.0.value"

-- The server, CA and user of a listCluster*Credential answer (its kubeconfig moved into a
-- secret handle by aurora.http, never a Lua string): cfg.current, or nil, err.
local function parse_credential(res)
    local value = type(res) == "table" and res.secrets and res.secrets[KUBECONFIG_FIELD]
    if not value then
        return nil, { status = 0, code = "bad_reply", message = "the credential answer holds no kubeconfig" }
    end
    local text = crypto.b64decode(value, { secret = true })
    value:close()
    if not text then
        return nil, { status = 0, code = "bad_reply", message = "the kubeconfig is not valid base64" }
    end
    local cfg, perr = require("aurora.kubeconfig").parse(text)
    text:close()
    if not cfg then
        return nil, { status = 0, code = "bad_kubeconfig", message = "the kubeconfig does not parse: " ..
            tostring(perr) }
    end
    if not cfg.current or not cfg.current.cluster or type(cfg.current.cluster.server) ~= "string" then
        return nil, { status = 0, code = "bad_kubeconfig", message = "the kubeconfig has no current context" }
    end
    return cfg.current
end


local function forget_client(ckey)
    local cl = clients[ckey]
    if cl then
        if cl.key then cl.key:close() end
        if cl.token then cl.token:close() end
        clients[ckey] = nil
        nclients = nclients - 1
    end
end


-- Keeps a client, making room first: expired clients go, then the ones expiring soonest.
local function keep_client(ckey, cl)
    if nclients >= M.MAX_CLIENTS then
        local now, list = time.now(), {}
        for k, v in pairs(clients) do
            if v.good_until <= now then forget_client(k) else list[#list + 1] = k end
        end
        table.sort(list, function(a, b) return clients[a].good_until < clients[b].good_until end)
        for i = 1, nclients - M.MAX_CLIENTS + 1 do forget_client(list[i]) end
    end
    clients[ckey] = cl
    nclients = nclients + 1
end


-- A client for cluster c of kind "admin" or "aad", reused while its credentials are good.
-- Returns client, or nil, err (an ARM or kubeconfig failure).
local function client_for(ctx, c, kind)
    local ckey = client_key(ctx, c, kind)
    local cl = clients[ckey]
    if cl and cl.good_until > time.now() then return cl end
    forget_client(ckey)
    local tok, terr = arm_token(ctx)
    if not tok then return nil, terr end
    local action = kind == "admin" and "/listClusterAdminCredential" or "/listClusterUserCredential"
    local body, res = arm.post(tok, c.id .. action, { ["api-version"] = arm.API_VERSIONS.managed_clusters,
        format = kind == "aad" and "exec" or nil }, nil, { KUBECONFIG_FIELD })
    tok:close()
    if not body then return nil, res end
    local cur, perr = parse_credential(res)
    if not cur then return nil, perr end
    local u = cur.user or {}
    local set = settings(c)
    cl = { kind = kind, id = c.id, name = c.name, resourceGroup = c.resourceGroup,
        server = cur.cluster.server:gsub("/+$", ""), ca_pem = cur.cluster.ca_pem,
        insecure = set.insecure_skip_tls_verify == true,
        good_until = time.now() + M.CRED_MAX_AGE }
    if kind == "admin" then
        cl.cert, cl.key, cl.token = u.client_cert_pem, u.client_key, u.token
        if cl.cert then
            local cert = crypto.load_cert(cl.cert)
            local not_after = cert and cert:not_after()
            if cert then cert:close() end
            if not_after then
                cl.not_after = not_after
                cl.good_until = math.min(cl.good_until, not_after - M.CERT_MARGIN)
            end
        elseif not cl.token then
            return nil, { status = 0, code = "bad_kubeconfig",
                message = "the admin kubeconfig has neither a client certificate nor a token" }
        end
    else
        if u.client_key then u.client_key:close() end
        if u.token then u.token:close() end
    end
    if not cl.ca_pem and not cl.insecure then
        return nil, { status = 0, code = "bad_kubeconfig",
            message = "the kubeconfig has no certificate-authority-data to verify the API server with" }
    end
    keep_client(ckey, cl)
    return cl
end

-- ---- access ----------------------------------------------------------------------------------

local DEPLOYMENT = "/apis/apps/v1/namespaces/kube-system/deployments/metrics-server"

-- Words for a transport failure towards an API server.
local function unreachable_reason(err, client)
    if err.code == "tls" then
        return "TLS verification failed: the API server's certificate does not verify against " ..
            "the cluster CA from the kubeconfig (" .. tostring(err.message) .. ")"
    end
    if err.code == "timeout" then return "the API server " .. client.server .. " did not answer in time" end
    if err.code == "dns" then return "the API server's host name does not resolve" end
    return "cannot connect to the API server " .. client.server .. " (" .. tostring(err.message) .. ")"
end


-- Tries one kind of access: the client and the probe's answer (status, body), or nil, outcome
-- where outcome = {access = "unreachable"|"forbidden"|"refused", reason, upstream}.
local function try(ctx, c, kind)
    local client, err = client_for(ctx, c, kind)
    if not client then
        local refused = err.status and err.status >= 400 and err.status < 500
        return nil, { access = refused and "refused" or "unreachable", upstream = err,
            reason = (kind == "admin" and "listClusterAdminCredential" or "listClusterUserCredential") ..
                " failed: " .. tostring(err.message) }
    end
    if client.not_after and client.not_after <= time.now() then
        forget_client(client_key(ctx, c, kind))
        return nil, { access = "refused", reason = "the admin client certificate expired on " ..
            time.iso8601(math.floor(client.not_after)) .. "; rotate the cluster certificates (az aks rotate-certs)",
            upstream = { status = 0, code = "certificate_expired", message = "client certificate expired" } }
    end
    local st, body = kube(ctx, client, "GET", DEPLOYMENT)
    if not st then
        local reason = unreachable_reason(body, client)
        return nil, { access = "unreachable", reason = reason, upstream = { status = 0,
            code = body.code == "tls" and "cluster_tls" or "cluster_unreachable", message = reason } }
    end
    if st == 401 then
        forget_client(client_key(ctx, c, kind))
        return nil, { access = "refused", reason = (kind == "admin" and "the client certificate" or
            "the Entra ID token") .. " was refused: " .. kube_message(st, body),
            upstream = { status = st, code = "Unauthorized", message = kube_message(st, body) } }
    end
    if st == 403 then
        return nil, { access = "forbidden", reason = kube_message(st, body),
            upstream = { status = st, code = "Forbidden", message = kube_message(st, body) } }
    end
    if st ~= 200 and st ~= 404 then
        return nil, { access = "unreachable", reason = kube_message(st, body),
            upstream = { status = st, code = "http_" .. st, message = kube_message(st, body) } }
    end
    return client, { status = st, body = body }
end


--- Connects to cluster c: client, probe, access ("admin" or "aad"), or nil, outcome with
-- outcome.access "unreachable" or "forbidden" and a reason.
function M.connect(ctx, c)
    if c.powerState == "Stopped" then
        return nil, { access = "unreachable", reason = "the cluster is stopped: its API server " ..
            "does not run", upstream = { status = 0, code = "cluster_stopped",
                message = "cluster stopped" } }
    end
    if c.private then
        return nil, { access = "unreachable", reason = "private cluster: the API server has only " ..
            "the private FQDN " .. tostring(c.privateFqdn) .. ", reachable from the cluster's " ..
            "virtual network only", upstream = { status = 0, code = "private_cluster",
                message = "private cluster" } }
    end
    local first
    if not c.localAccountsDisabled then
        local client, probe = try(ctx, c, "admin")
        if client then return client, probe, "admin" end
        if probe.access == "unreachable" then return nil, probe end
        first = probe
    end
    local client, probe = try(ctx, c, "aad")
    if client then
        if first then probe.note = "admin credential refused (" .. first.reason .. "); using Entra ID" end
        return client, probe, "aad"
    end
    if probe.access == "refused" then probe.access = "forbidden" end
    if first then probe.reason = first.reason .. "; then Entra ID access: " .. probe.reason end
    return nil, probe
end

-- ---- the metrics-server ---------------------------------------------------------------------


local function condition(obj, ctype)
    local conds = type(obj) == "table" and type(obj.status) == "table" and obj.status.conditions
    for _, cond in ipairs(type(conds) == "table" and conds or {}) do
        if type(cond) == "table" and cond.type == ctype then return cond end
    end
end


--- What the cluster runs: {status = "installed"|"missing"|"deploying"|"failed", reason, source}.
-- probe: the answer to GET of the metrics-server Deployment, when the caller has it.
function M.detect(ctx, client, probe)
    local st, dep = probe and probe.status, probe and probe.body
    if not st then
        st, dep = kube(ctx, client, "GET", DEPLOYMENT)
        if not st then return { status = "failed", reason = unreachable_reason(dep, client) } end
    end
    local avail = st == 200 and condition(dep, "Available")
    if avail and avail.status == "True" then
        return { status = "installed", source = "deployment" }
    end
    local ast, api = kube(ctx, client, "GET", "/apis/apiregistration.k8s.io/v1/apiservices/" ..
        M.METRICS_API)
    local aavail = ast == 200 and condition(api, "Available")
    if aavail and aavail.status == "True" then
        return { status = "installed", source = "apiservice" }
    end
    if st == 200 then
        local why = avail and (avail.message or avail.reason) or "no Available condition yet"
        -- Ours while a deployment runs; someone else's (or a broken one) otherwise.
        return { status = status:get(deploy_key(client.id)) and "deploying" or "failed",
            reason = "the metrics-server Deployment is not Available: " .. tostring(why) }
    end
    if st ~= 404 then return { status = "failed", reason = kube_message(st, dep) } end
    return { status = "missing" }
end


-- The manifest's objects (lua/manifests/metrics-server.yaml), read once per VM.
function M.manifest()
    if manifest_cache then return manifest_cache end
    local name = M.MANIFEST:gsub("%.yaml$", "")
    local file = package.searchpath(name, (package.path:gsub("%.lua", ".yaml")))
    if not file then return nil, M.MANIFEST .. " not found next to the app" end
    local f, ferr = io.open(file, "rb")
    if not f then return nil, ferr end
    local text = f:read("a")
    f:close()
    local docs, err = require("aurora.yaml").decode_all(text)
    if not docs then return nil, M.MANIFEST .. ": " .. tostring(err) end
    local objs = {}
    for _, d in ipairs(docs) do
        if type(d) == "table" and d.kind then objs[#objs + 1] = d end
    end
    manifest_cache = objs
    return objs
end

local PLURAL = { ServiceAccount = "serviceaccounts", ClusterRole = "clusterroles",
    ClusterRoleBinding = "clusterrolebindings", Role = "roles", RoleBinding = "rolebindings",
    Service = "services", Deployment = "deployments", APIService = "apiservices",
    ConfigMap = "configmaps", Secret = "secrets", Namespace = "namespaces" }


--- The collection URL path of a manifest object ("/apis/apps/v1/namespaces/kube-system/deployments").
function M.collection(obj)
    local plural = PLURAL[obj.kind]
    if not plural or type(obj.apiVersion) ~= "string" then return nil end
    local base = obj.apiVersion:find("/", 1, true) and ("/apis/" .. obj.apiVersion) or
        ("/api/" .. obj.apiVersion)
    local ns = type(obj.metadata) == "table" and obj.metadata.namespace
    return base .. (ns and ("/namespaces/" .. ns) or "") .. "/" .. plural
end


-- Creates every object of the manifest (409 AlreadyExists counts as present) and waits for the
-- Deployment to be Available. Returns {status = "installed"|"failed", reason, created, present}.
local function deploy(ctx, c, client, on_progress)
    local objs, merr = M.manifest()
    if not objs then return { status = "failed", reason = merr } end
    local created, present = 0, 0
    for _, obj in ipairs(objs) do
        local path = M.collection(obj)
        local what = tostring(obj.kind) .. " " .. tostring(obj.metadata and obj.metadata.name)
        if not path then return { status = "failed", reason = "the manifest holds an unknown kind: " .. what } end
        local st, body = kube(ctx, client, "POST", path, obj)
        if not st then
            return { status = "failed", reason = "creating " .. what .. ": " .. unreachable_reason(body, client) }
        elseif st == 409 then
            present = present + 1
        elseif st == 200 or st == 201 or st == 202 then
            created = created + 1
        else
            return { status = "failed", reason = "creating " .. what .. ": " .. kube_message(st, body) }
        end
    end
    log.info("metrics-server objects created", { cluster = c.name, resource_group = c.resourceGroup,
        created = created, present = present })
    on_progress({ status = "deploying", reason = "waiting for the Deployment to be Available",
        created = created, present = present })
    local deadline = time.monotonic() + M.DEPLOY_TIMEOUT
    while true do
        local now = M.detect(ctx, client)
        if now.status == "installed" then
            now.created, now.present = created, present
            return now
        end
        if time.monotonic() + M.POLL_INTERVAL > deadline then
            return { status = "failed", reason = "the metrics-server was not Available within " ..
                M.DEPLOY_TIMEOUT .. " s (" .. tostring(now.reason or now.status) .. ")",
                created = created, present = present }
        end
        time.sleep(M.POLL_INTERVAL)
    end
end

-- ---- jobs ------------------------------------------------------------------------------------


-- The whole check of one cluster; saves each step's status. deploy_now: deploy when missing
-- (the caller is in Do mode).
local function job(ctx, c, deploy_now)
    local rec = M.status(ctx, c) or {}
    local client, probe, access = M.connect(ctx, c)
    if not client then
        rec = { access = probe.access, accessReason = probe.reason,
            metricsServer = { status = "unknown", reason = "the API server is not reachable" },
            error = describe("admin_credentials_failed", probe.upstream) }
        save(ctx, c, rec)
        return rec
    end
    rec = { access = access, server = client.server, accessReason = probe.note }
    rec.metricsServer = M.detect(ctx, client, probe)
    save(ctx, c, rec)
    if rec.metricsServer.status == "missing" and deploy_now then
        local lock = deploy_key(c.id)
        if status:add(lock, timer.worker_id(), M.JOB_TTL) then
            local ok, res = pcall(deploy, ctx, c, client, function(progress)
                rec.metricsServer = progress
                save(ctx, c, rec)
            end)
            status:delete(lock)
            rec.metricsServer = ok and res or { status = "failed", reason = tostring(res) }
        else
            rec.metricsServer = { status = "deploying", reason = "another job is deploying it" }
        end
        save(ctx, c, rec)
    end
    return rec
end


local function lock_key(ctx, c)
    return "lock|" .. status_key(ctx, c)
end


-- The job of cluster c, whose lock the caller holds: releases the lock whatever happens.
local function locked_job(ctx, c, deploy_now)
    local ok, err = pcall(job, ctx, c, deploy_now)
    status:delete(lock_key(ctx, c))
    if not ok then log.error("cluster job failed", { error = tostring(err) }) end
end


-- Runs fn(item) for every item of list with at most n running at once, as timer tasks.
local function pool(list, n, fn)
    local next_i = 0
    local function worker()
        while true do
            next_i = next_i + 1
            local item = list[next_i]
            if item == nil then return end
            fn(item)
        end
    end
    for _ = 1, math.min(n, #list) do timer.at(0, worker) end
end


local function fresh(rec)
    return rec and rec.checked and rec.checked + M.STATUS_TTL > time.now() and
        rec.access ~= "pending"
end


--- Starts background jobs for the clusters whose status is unknown or stale (or all with
-- force), unless one already runs for that cluster and caller. Never waits.
function M.refresh(ctx, list, force, subscriptions)
    local todo = {}
    for _, c in ipairs(list) do
        local rec = M.status(ctx, c)
        local stale = force or not fresh(rec) or
            (ctx.mode == "do" and rec.metricsServer and rec.metricsServer.status == "missing")
        if stale and status:add(lock_key(ctx, c), timer.worker_id(), M.JOB_TTL) then
            todo[#todo + 1] = c
        end
    end
    M.check_provider(ctx, subscriptions or {})
    if #todo == 0 then return 0 end
    pool(todo, M.CONCURRENCY, function(c) locked_job(ctx, c, ctx.mode == "do") end)
    return #todo
end


--- Runs the job of one cluster now (the detail and deploy endpoints) and waits for it at most
-- `wait` seconds: a job already running for the cluster and caller is waited for instead of
-- started twice. The job itself runs as a background task, so a deployment that takes longer
-- than the wait goes on after the request has its answer. Returns the status and whether the
-- job finished within the wait.
function M.run(ctx, c, deploy_now, wait)
    local key = lock_key(ctx, c)
    if status:add(key, timer.worker_id(), M.JOB_TTL) then
        timer.at(0, function() locked_job(ctx, c, deploy_now) end)
    end
    local deadline = time.monotonic() + wait
    while status:get(key) do
        if time.monotonic() >= deadline then return M.status(ctx, c), false end
        time.sleep(0.05)
    end
    return M.status(ctx, c), true
end


--- The client of cluster c for ctx (connecting when this worker has none): client, access or
-- nil, outcome.
function M.client(ctx, c)
    for _, kind in ipairs { "admin", "aad" } do
        local cl = clients[client_key(ctx, c, kind)]
        if cl and cl.good_until > time.now() then return cl, kind end
    end
    local client, probe, access = M.connect(ctx, c)
    if not client then return nil, probe end
    return client, access
end

-- ---- node metrics ----------------------------------------------------------------------------

local SUFFIX = { n = 1e-9, u = 1e-6, m = 1e-3, k = 1e3, M = 1e6, G = 1e9, T = 1e12, P = 1e15,
    E = 1e18, Ki = 1024, Mi = 1024 ^ 2, Gi = 1024 ^ 3, Ti = 1024 ^ 4, Pi = 1024 ^ 5, Ei = 1024 ^ 6 }


--- A Kubernetes quantity ("250m", "1536Mi", "2", "1e3") as a number, or nil.
function M.quantity(q)
    if type(q) == "number" then return q end
    if type(q) ~= "string" then return nil end
    local num, suf = q:match("^([%d%.eE%+%-]+)(%a*)$")
    if num and suf ~= "" and num:match("[eE]$") then return nil end
    local n = tonumber(num)
    if not n then return nil end
    if suf == "" then return n end
    local f = SUFFIX[suf]
    return f and n * f or nil
end


--- CPU and memory use per node from metrics.k8s.io, with the nodes' allocatable capacity:
-- {nodes = [{name, cpuCores, memoryBytes, cpuPercent, memoryPercent}], totals} or nil, reason.
function M.node_metrics(ctx, client)
    local st, m = kube(ctx, client, "GET", "/apis/metrics.k8s.io/v1beta1/nodes")
    if not st then return nil, unreachable_reason(m, client) end
    if st ~= 200 or type(m) ~= "table" then return nil, kube_message(st, m) end
    local alloc = {}
    local nst, nodes = kube(ctx, client, "GET", "/api/v1/nodes")
    if nst == 200 and type(nodes) == "table" then
        for _, n in ipairs(type(nodes.items) == "table" and nodes.items or {}) do
            local a = type(n.status) == "table" and n.status.allocatable or {}
            alloc[n.metadata and n.metadata.name or ""] = { cpu = M.quantity(a.cpu),
                memory = M.quantity(a.memory) }
        end
    end
    local out, tc, tm = json.array(), 0, 0
    for _, item in ipairs(type(m.items) == "table" and m.items or {}) do
        local name = type(item.metadata) == "table" and item.metadata.name or "?"
        local u = type(item.usage) == "table" and item.usage or {}
        local cpu, mem = M.quantity(u.cpu) or 0, M.quantity(u.memory) or 0
        local a = alloc[name] or {}
        tc, tm = tc + cpu, tm + mem
        out[#out + 1] = { name = name, cpuCores = math.floor(cpu * 1000 + 0.5) / 1000,
            memoryBytes = math.floor(mem),
            cpuPercent = a.cpu and a.cpu > 0 and math.floor(cpu / a.cpu * 1000 + 0.5) / 10 or nil,
            memoryPercent = a.memory and a.memory > 0 and
                math.floor(mem / a.memory * 1000 + 0.5) / 10 or nil,
            timestamp = item.timestamp }
    end
    return { nodes = out, totals = { cpuCores = math.floor(tc * 1000 + 0.5) / 1000,
        memoryBytes = math.floor(tm) } }
end

-- ---- the resource provider -------------------------------------------------------------------


--- Checks, in the background, that Microsoft.ContainerService is registered on each of the
-- subscriptions (ids), and registers it in Do mode. The state is kept per caller and
-- subscription for M.STATUS_TTL; see M.provider.
function M.check_provider(ctx, subs)
    for _, sub in ipairs(subs) do
        local key = "prov|" .. caller_key(ctx) .. "|" .. lower(sub)
        if status:add(key, json.encode({ state = "checking" }), M.STATUS_TTL) then
            timer.at(0, function()
                local tok = arm_token(ctx)
                if not tok then status:delete(key); return end
                local path = "/subscriptions/" .. sub .. "/providers/" .. M.PROVIDER
                local q = { ["api-version"] = arm.API_VERSIONS.providers }
                local body, err = arm.get(tok, path, q)
                local rec = { state = body and body.registrationState or "unknown",
                    error = not body and err and err.code or nil }
                if body and rec.state ~= "Registered" and rec.state ~= "Registering" then
                    if ctx.mode == "do" then
                        local r, rerr = arm.post(tok, path .. "/register", q)
                        rec.registered = r ~= nil
                        rec.state = r and r.registrationState or rec.state
                        rec.error = not r and rerr and rerr.code or nil
                        log.info("resource provider registration requested", { subscription = sub,
                            provider = M.PROVIDER, state = rec.state })
                    else
                        rec.action = "register it in Do mode or with `az provider register " ..
                            "--namespace " .. M.PROVIDER .. "`"
                    end
                end
                tok:close()
                status:set(key, json.encode(rec), M.STATUS_TTL)
            end)
        end
    end
end


--- The provider state recorded for a subscription: {state, ...} or nil.
function M.provider(ctx, sub)
    local text = status:get("prov|" .. caller_key(ctx) .. "|" .. lower(sub))
    return text and json.decode(text) or nil
end

return M

-- The AKS endpoints: GET /azure/clusters (every cluster of the enabled subscriptions, with its
-- access method and metrics-server status), GET /azure/clusters/{resourceGroup}/{name} (one
-- cluster, with node metrics) and POST /azure/clusters/{resourceGroup}/{name}/metrics-server
-- (Do mode: deploy now). Cluster access and the metrics-server live in lua/aurora/aks.lua; the
-- list never waits on them: it shows what the background jobs know and starts the ones due.
local json = require "aurora.json"
local shared = require "aurora.shared"
local arm = require "aurora.azure.arm"
local account = require "aurora.azure.account"
local aks = require "aurora.aks"
local users = require "aurora.users"

local M = {}

M.CLUSTER_TTL = 30        -- seconds the cluster list is cached per user and subscriptions
local cache = shared.dict("azure_clusters", { max_items = 10000 })
local fail = users.fail

local function row(c, sub)
    local p = type(c.properties) == "table" and c.properties or {}
    local id = type(c.id) == "string" and c.id or ""
    local power = type(p.powerState) == "table" and p.powerState.code or nil
    local access = type(p.apiServerAccessProfile) == "table" and p.apiServerAccessProfile or {}
    local private = access.enablePrivateCluster == true and p.fqdn == nil
    return { id = id, name = c.name, resourceGroup = id:match("/[Rr]esource[Gg]roups/([^/]+)/"),
        subscriptionId = sub, location = c.location,
        kubernetesVersion = p.currentKubernetesVersion or p.kubernetesVersion,
        fqdn = p.fqdn or p.privateFQDN, privateFqdn = p.privateFQDN, private = private,
        provisioningState = p.provisioningState, powerState = power,
        localAccountsDisabled = p.disableLocalAccounts == true }
end


-- The caller: ctx for aurora.aks, or nil, {error answer}.
local function context(req, uid)
    local main, ro, e = account.load(req, uid)
    if not main then return nil, e end
    local ctx = aks.context(uid, account.mode(req), main, ro)
    ctx.subs = account.enabled_set(uid, main)
    return ctx
end


-- The clusters of the enabled subscriptions (cached): rows, hit, or nil, {error answer}.
local function clusters(req, ctx, refresh)
    local ids = ctx.subs
    local key = "clusters:" .. ctx.uid .. ":" .. ctx.gen .. ":" .. (ctx.ro and "ro" or "rw") ..
        ":" .. table.concat(ids, ",")
    if not refresh then
        local hit = cache:get(key)
        if hit then return json.decode(hit), true end
    end
    local tok, err = account.read_token(ctx.uid, ctx.main, ctx.ro)
    if not tok then return nil, { account.token_failure(req, err) } end
    local out = json.array()
    for _, sub in ipairs(ids) do
        local items, aerr = arm.list(tok, "/subscriptions/" .. sub ..
            "/providers/Microsoft.ContainerService/managedClusters",
            { ["api-version"] = arm.API_VERSIONS.managed_clusters })
        -- A subscription where Microsoft.ContainerService is not registered has no clusters;
        -- the provider check (aurora.aks) registers it in Do mode.
        if not items and type(aerr) == "table" and aerr.code == "MissingSubscriptionRegistration" then
            items = {}
        end
        if not items then
            tok:close()
            return nil, { fail(req, "clusters_failed", aerr) }
        end
        for _, c in ipairs(items) do out[#out + 1] = row(c, sub) end
    end
    tok:close()
    cache:set(key, json.encode(out), M.CLUSTER_TTL)
    return out, false
end


-- Adds what the jobs know about c (or "pending") to the row.
local function with_status(ctx, c)
    local rec = aks.status(ctx, c)
    c.access = rec and rec.access or "pending"
    c.accessReason = rec and rec.accessReason or nil
    c.metricsServer = rec and rec.metricsServer or { status = "pending" }
    c.accessError = rec and rec.error or nil
    c.checkedAt = rec and rec.checkedAt or nil
    return c
end


local function is_refresh(req)
    local r = req.query.refresh
    return r == "1" or r == "true"
end


function M.list(req, uid)
    local ctx, e = context(req, uid)
    if not ctx then return table.unpack(e) end
    local refresh = is_refresh(req)
    local rows, hit = clusters(req, ctx, refresh)
    if not rows then return table.unpack(hit) end
    aks.refresh(ctx, rows, refresh, ctx.subs)
    for _, c in ipairs(rows) do with_status(ctx, c) end
    return 200, rows, { ["X-Cache"] = hit and "hit" or "miss" }
end


-- The cluster named by the path, or nil, {error answer}.
local function find(req, ctx)
    local rows, e = clusters(req, ctx, false)
    if not rows then return nil, e end
    local rg, name = req.params.resourceGroup:lower(), req.params.name:lower()
    for _, c in ipairs(rows) do
        if (c.resourceGroup or ""):lower() == rg and (c.name or ""):lower() == name then return c end
    end
    return nil, { fail(req, "cluster_not_found", { status = 404, code = "ResourceNotFound",
        message = "no AKS cluster '" .. req.params.name .. "' in resource group '" ..
            req.params.resourceGroup .. "' of the enabled subscriptions" }) }
end


function M.get(req, uid)
    local ctx, e = context(req, uid)
    if not ctx then return table.unpack(e) end
    local c, ferr = find(req, ctx)
    if not c then return table.unpack(ferr) end
    local rec = aks.status(ctx, c)
    if not rec or not rec.checked or rec.checked + aks.STATUS_TTL < os.time() or is_refresh(req) then
        aks.run(ctx, c, false, aks.REQUEST_WAIT)
    end
    with_status(ctx, c)
    c.provider = aks.provider(ctx, c.subscriptionId)
    if c.metricsServer.status == "installed" then
        local client = aks.client(ctx, c)
        if client then
            local nodes, why = aks.node_metrics(ctx, client)
            c.nodes = nodes and nodes.nodes or nil
            c.totals = nodes and nodes.totals or nil
            c.nodesError = why
        end
    end
    return 200, c
end


function M.deploy_metrics_server(req, uid)
    local ctx, e = context(req, uid)
    if not ctx then return table.unpack(e) end
    if ctx.mode ~= "do" then return fail(req, "forbidden_mode") end
    local c, ferr = find(req, ctx)
    if not c then return table.unpack(ferr) end
    local rec, done = aks.run(ctx, c, true, aks.REQUEST_WAIT)
    if done and rec and rec.metricsServer and rec.metricsServer.status == "missing" then
        -- We waited for a job that only looked (a detail call): now deploy.
        rec, done = aks.run(ctx, c, true, aks.REQUEST_WAIT)
    end
    with_status(ctx, c)
    -- Still deploying after the wait: 202, the job goes on; GET the cluster to follow it.
    if not done or c.metricsServer.status == "deploying" then return 202, c end
    if c.access ~= "admin" and c.access ~= "aad" then
        -- No way in: 403 when the credentials were refused (a Reader-only account), else 502.
        local up = type(c.accessError) == "table" and c.accessError.upstream or {}
        local st, body, h = fail(req, "admin_credentials_failed", { status = up.status or 0,
            code = up.code or c.access, message = c.accessReason })
        if c.access == "forbidden" then st = 403 end
        body.cluster = c
        return st, body, h
    end
    if c.metricsServer.status ~= "installed" then
        local st, body, h = fail(req, "metrics_server_failed", { status = 0,
            code = c.metricsServer.status, message = c.metricsServer.reason })
        body.cluster = c
        return st, body, h
    end
    return 200, c
end

return M

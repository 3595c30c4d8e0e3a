-- Discovery: every resource of a user's enabled subscriptions as one flat, normalised list:
-- AKS clusters, virtual machines and scale sets, SQL servers and databases, storage accounts,
-- function apps and web apps, virtual networks (with their subnets), network security groups,
-- container groups and resource groups.
--
-- The primary path is Azure Resource Graph: one query for the resources and one for the
-- resource groups over the enabled subscriptions, run together and each followed through
-- $skipToken. When a Resource Graph query fails (403 without Microsoft.ResourceGraph/
-- resources/read, throttling that outlasts the retries, an outage), the categories it covered
-- come from the resource providers' list calls instead, run concurrently (arm.pages_many) and
-- followed through nextLink, then one databases list per SQL server. A type the principal may
-- not list becomes an error of its categories; the others still answer.
--
-- Inventories are cached per user, credential set and subscription set (the key holds the
-- user's cache generation, so login, disconnect and a new subscription choice start afresh) in
-- the aurora.shared dict "azure_inventory" as JSON text, and refreshed by a background task once
-- older than half their TTL. Reference: docs/api.md, "GET /azure/resources".
local arm = require "aurora.azure.arm"
local account = require "aurora.azure.account"
local env = require "aurora.env"
local flight = require "aurora.flight"
local json = require "aurora.json"
local log = require "aurora.log"
local shared = require "aurora.shared"
local time = require "aurora.time"
local timer = require "aurora.timer"

local M = {}

-- Seconds a complete inventory is served from the cache (AURORA_RESOURCES_TTL, default 300),
-- and one where some category failed (at most a minute).
M.TTL = env.int("AURORA_RESOURCES_TTL", 300) or 300
if M.TTL < 1 then M.TTL = 300 end
M.PARTIAL_TTL = math.min(60, M.TTL)
M.GRAPH_PAGE = 1000      -- Resource Graph $top (its maximum)
-- Resource Graph queries for resources run in parallel, each over a batch of the
-- subscriptions (Microsoft's throttling guidance: batch by subscription, query in parallel;
-- the quota is about 15 queries per 5 seconds per user). One subscription: one query.
M.GRAPH_PARALLEL = 3
M.GRAPH_SHARE = 0.6      -- part of a fetch's time Resource Graph may use before the fallback
M.FETCH_TOTAL = 25       -- seconds a fetch on a request may take (the request deadline is 30)
M.BACKGROUND_TOTAL = 120 -- seconds a background refresh may take
M.LOCK_TTL = 150         -- seconds a "fetch running" mark lives (a crashed fetch frees it)
M.MEMO_MAX = 4           -- decoded inventories each worker keeps (see `memo` below)

local cache = shared.dict("azure_inventory", { max_items = 2000, max_bytes = 256 * 1024 * 1024 })
local locks = shared.dict("azure_inventory_locks", { max_items = 10000 })

local NULL = json.null

--- The categories, in the order items are listed and counted.
M.CATEGORIES = { "aks_cluster", "virtual_machine", "vm_scale_set", "sql_server", "sql_database",
    "storage_account", "function_app", "web_app", "virtual_network", "network_security_group",
    "container_group", "resource_group" }

local ORDER = {}
for i, c in ipairs(M.CATEGORIES) do ORDER[c] = i end


-- ---- small readers of decoded JSON (json.null and wrong types read as nil) ------------------

local function tbl(v) return type(v) == "table" and v or nil end

local function str(v) return type(v) == "string" and v ~= "" and v or nil end

local function dig(t, ...)
    for _, k in ipairs { ... } do
        if type(t) ~= "table" then return nil end
        t = t[k]
    end
    if t == NULL then return nil end
    return t
end

local function count(v) return type(v) == "table" and #v or 0 end

local function int(v) return type(v) == "number" and math.tointeger(v) or nil end

local function last_segment(id) return str(id) and id:match("([^/]+)$") or nil end


-- ---- per-category properties ----------------------------------------------------------------

-- "PowerState/running" -> "running": ARM's instance view (statusOnly=true) or Resource Graph's
-- properties.extended.instanceView.
local function vm_power(p)
    local code = dig(p, "extended", "instanceView", "powerState", "code")
    if not str(code) then
        for _, s in ipairs(tbl(dig(p, "instanceView", "statuses")) or {}) do
            if type(s) == "table" and str(s.code) and s.code:find("^PowerState/") then
                code = s.code
                break
            end
        end
    end
    return str(code) and (code:match("^PowerState/(.+)$") or code) or nil
end


local function aks(item, p)
    local nodes = 0
    for _, pool in ipairs(tbl(p.agentPoolProfiles) or {}) do
        nodes = nodes + (int(dig(pool, "count")) or 0)
    end
    return { kubernetesVersion = str(p.currentKubernetesVersion) or str(p.kubernetesVersion),
        provisioningState = str(p.provisioningState),
        powerState = str(dig(p, "powerState", "code")),
        fqdn = str(p.fqdn) or str(p.privateFQDN), nodeCount = nodes,
        nodePoolCount = count(tbl(p.agentPoolProfiles)),
        nodeResourceGroup = str(p.nodeResourceGroup),
        localAccountsDisabled = p.disableLocalAccounts == true }
end


local function vm(item, p)
    return { vmSize = str(dig(p, "hardwareProfile", "vmSize")),
        osType = str(dig(p, "storageProfile", "osDisk", "osType")), powerState = vm_power(p),
        provisioningState = str(p.provisioningState), vmId = str(p.vmId) }
end


local function vmss(item, p)
    return { vmSize = str(dig(item, "sku", "name")), capacity = int(dig(item, "sku", "capacity")),
        orchestrationMode = str(p.orchestrationMode),
        upgradeMode = str(dig(p, "upgradePolicy", "mode")),
        provisioningState = str(p.provisioningState) }
end


local function sql_server(item, p)
    return { fqdn = str(p.fullyQualifiedDomainName), version = str(p.version), state = str(p.state),
        publicNetworkAccess = str(p.publicNetworkAccess),
        minimalTlsVersion = str(p.minimalTlsVersion) }
end


local function sql_database(item, p)
    return { server = str(item.id) and item.id:match("/[Ss]ervers/([^/]+)/[Dd]atabases/") or nil,
        edition = str(dig(item, "sku", "tier")) or str(dig(p, "currentSku", "tier")),
        serviceObjective = str(p.currentServiceObjectiveName) or str(dig(item, "sku", "name")),
        status = str(p.status), maxSizeBytes = int(p.maxSizeBytes),
        zoneRedundant = p.zoneRedundant == true }
end


local function storage(item, p)
    return { accessTier = str(p.accessTier), skuName = str(dig(item, "sku", "name")),
        httpsOnly = p.supportsHttpsTrafficOnly == true,
        minimumTlsVersion = str(p.minimumTlsVersion),
        primaryBlobEndpoint = str(dig(p, "primaryEndpoints", "blob")),
        provisioningState = str(p.provisioningState) }
end


local function site(item, p)
    local kind = (str(item.kind) or ""):lower()
    return { state = str(p.state), defaultHostName = str(p.defaultHostName),
        httpsOnly = p.httpsOnly == true,
        linux = p.reserved == true or kind:find("linux", 1, true) ~= nil,
        appServicePlan = last_segment(p.serverFarmId),
        runtime = str(dig(p, "siteConfig", "linuxFxVersion")) }
end


local function vnet(item, p)
    local subnets = json.array()
    for _, s in ipairs(tbl(p.subnets) or {}) do
        local sp = tbl(s.properties) or {}
        local prefixes = json.array()
        if str(sp.addressPrefix) then prefixes[1] = sp.addressPrefix end
        for _, x in ipairs(tbl(sp.addressPrefixes) or {}) do
            if str(x) and x ~= sp.addressPrefix then prefixes[#prefixes + 1] = x end
        end
        subnets[#subnets + 1] = { name = str(s.name), addressPrefixes = prefixes,
            networkSecurityGroup = last_segment(dig(sp, "networkSecurityGroup", "id")) }
    end
    local space = json.array()
    for _, x in ipairs(tbl(dig(p, "addressSpace", "addressPrefixes")) or {}) do
        if str(x) then space[#space + 1] = x end
    end
    return { addressPrefixes = space, subnets = subnets, subnetCount = #subnets,
        provisioningState = str(p.provisioningState) }
end


local function nsg(item, p)
    local rules, inbound = json.array(), 0
    for _, r in ipairs(tbl(p.securityRules) or {}) do
        local rp = tbl(r.properties) or {}
        if rp.direction == "Inbound" then inbound = inbound + 1 end
        rules[#rules + 1] = { name = str(r.name), direction = str(rp.direction),
            access = str(rp.access), priority = int(rp.priority),
            protocol = str(rp.protocol), destinationPortRange = str(rp.destinationPortRange) }
    end
    return { ruleCount = #rules, inboundRuleCount = inbound, outboundRuleCount = #rules - inbound,
        rules = rules, provisioningState = str(p.provisioningState) }
end


local function container_group(item, p)
    local images = json.array()
    for _, c in ipairs(tbl(p.containers) or {}) do
        local img = str(dig(c, "properties", "image"))
        if img then images[#images + 1] = img end
    end
    return { state = str(dig(p, "instanceView", "state")), osType = str(p.osType),
        containerCount = count(tbl(p.containers)), images = images,
        ipAddress = str(dig(p, "ipAddress", "ip")),
        ipAddressType = str(dig(p, "ipAddress", "type")),
        restartPolicy = str(p.restartPolicy), provisioningState = str(p.provisioningState) }
end


local function resource_group(item, p)
    return { provisioningState = str(p.provisioningState), managedBy = str(item.managedBy) }
end


-- Web apps and function apps share Microsoft.Web/sites; `kind` is a comma-separated token list
-- and a function app has the token "functionapp" (wire-formats §4.4; the portal leaves bot apps
-- out).
local function site_category(item)
    local tokens = {}
    for t in (str(item.kind) or ""):lower():gmatch("[^,%s]+") do tokens[t] = true end
    if tokens.functionapp and not tokens.botapp then return "function_app" end
    return "web_app"
end


--- The resource types discovered: type (ARM's spelling), categories (what the type can become),
-- category (name, or function(item) -> name), list (subscription-scope list path after
-- /subscriptions/{id}), api (key of arm.API_VERSIONS), query (extra list parameters), props.
M.TYPES = {
    { type = "Microsoft.ContainerService/managedClusters", category = "aks_cluster",
      list = "/providers/Microsoft.ContainerService/managedClusters", api = "managed_clusters",
      props = aks },
    { type = "Microsoft.Compute/virtualMachines", category = "virtual_machine",
      list = "/providers/Microsoft.Compute/virtualMachines", api = "virtual_machines",
      query = { statusOnly = "true" }, props = vm },
    { type = "Microsoft.Compute/virtualMachineScaleSets", category = "vm_scale_set",
      list = "/providers/Microsoft.Compute/virtualMachineScaleSets", api = "vm_scale_sets",
      props = vmss },
    { type = "Microsoft.Sql/servers", category = "sql_server",
      list = "/providers/Microsoft.Sql/servers", api = "sql_servers", props = sql_server,
      also = { "sql_database" } },
    -- Listed per server (after the servers) on the fallback path.
    { type = "Microsoft.Sql/servers/databases", category = "sql_database", api = "sql_servers",
      props = sql_database },
    { type = "Microsoft.Storage/storageAccounts", category = "storage_account",
      list = "/providers/Microsoft.Storage/storageAccounts", api = "storage_accounts",
      props = storage },
    { type = "Microsoft.Web/sites", category = site_category,
      categories = { "function_app", "web_app" },
      list = "/providers/Microsoft.Web/sites", api = "web_sites", props = site },
    { type = "Microsoft.Network/virtualNetworks", category = "virtual_network",
      list = "/providers/Microsoft.Network/virtualNetworks", api = "virtual_networks",
      props = vnet },
    { type = "Microsoft.Network/networkSecurityGroups", category = "network_security_group",
      list = "/providers/Microsoft.Network/networkSecurityGroups", api = "network_security_groups",
      props = nsg },
    { type = "Microsoft.ContainerInstance/containerGroups", category = "container_group",
      list = "/providers/Microsoft.ContainerInstance/containerGroups", api = "container_groups",
      props = container_group },
    { type = "Microsoft.Resources/resourceGroups", category = "resource_group",
      list = "/resourcegroups", api = "resource_groups", props = resource_group,
      container = true },
}

local BY_TYPE = {}
for _, t in ipairs(M.TYPES) do BY_TYPE[t.type:lower()] = t end
-- Resource Graph names resource groups by their place under the subscription.
BY_TYPE["microsoft.resources/subscriptions/resourcegroups"] =
    BY_TYPE["microsoft.resources/resourcegroups"]


-- A SQL database is left out when it is a system one (`master`: kind "...,system").
local function skip(t, item)
    if t.category ~= "sql_database" then return false end
    return (str(item.kind) or ""):lower():find("system", 1, true) ~= nil or
        (str(item.name) or ""):lower() == "master"
end


--- The normalised item of an ARM resource or a Resource Graph row of type entry t, or nil for
-- one that is left out.
function M.normalise(t, item)
    if skip(t, item) then return nil end
    local id = str(item.id) or ""
    local category = type(t.category) == "function" and t.category(item) or t.category
    local rg = t.container and str(item.name) or id:match("/[Rr]esource[Gg]roups/([^/]+)") or
        str(item.resourceGroup)
    local props = t.props(item, tbl(item.properties) or {})
    local tags = {}
    for k, v in pairs(tbl(item.tags) or {}) do
        if type(k) == "string" and type(v) == "string" then tags[k] = v end
    end
    return { id = id, name = str(item.name) or last_segment(id), category = category, type = t.type,
        kind = str(item.kind) or NULL, location = str(item.location) or NULL,
        resourceGroup = rg or NULL,
        subscriptionId = id:match("^/[Ss]ubscriptions/([^/]+)") or str(item.subscriptionId) or NULL,
        tags = tags, sku = tbl(item.sku) or NULL, properties = props }
end


-- ---- fetching ---------------------------------------------------------------------------------

local function api(t) return { ["api-version"] = arm.API_VERSIONS[t.api] } end


local function quote(s) return "'" .. s:lower() .. "'" end


-- The Resource Graph queries: the resource types, and the resource groups.
local function graph_queries()
    local types = {}
    for _, t in ipairs(M.TYPES) do
        if not t.container then types[#types + 1] = quote(t.type) end
    end
    local cols = "id, name, type, kind, location, resourceGroup, subscriptionId, tags, sku, " ..
        "properties"
    return "Resources | where type in~ (" .. table.concat(types, ", ") .. ") | project " .. cols,
        "ResourceContainers | where type =~ 'microsoft.resources/subscriptions/resourcegroups'" ..
            " | project id, name, type, location, resourceGroup, subscriptionId, tags," ..
            " managedBy, properties"
end


-- A Resource Graph job for arm.pages_many, collecting rows into `into`.
local function graph_job(subs, query, into)
    local function body(token)
        return { subscriptions = subs, query = query,
            options = { ["$top"] = M.GRAPH_PAGE, ["$skipToken"] = token,
                resultFormat = "objectArray" } }
    end
    return { path = "/providers/Microsoft.ResourceGraph/resources",
        query = { ["api-version"] = arm.API_VERSIONS.resource_graph }, method = "POST",
        json = body(),
        page = function(b)
            for _, row in ipairs(tbl(b.data) or {}) do into[#into + 1] = row end
            local token = str(b["$skipToken"])
            return token and { json = body(token) } or nil
        end }
end


-- A list job for arm.pages_many (GET, nextLink), collecting `value` items into `into`.
local function list_job(path, query, into)
    return { path = path, query = query,
        page = function(b)
            for _, v in ipairs(tbl(b.value) or {}) do into[#into + 1] = v end
            local link = str(b.nextLink)
            return link and { url = link } or nil
        end }
end


local function short_error(e, sub)
    return { status = e.status, code = e.code, message = e.message, subscriptionId = sub }
end


-- Records err for every category type t covers (the first error per category wins).
local function category_error(errors, t, err, sub)
    local cats = { table.unpack(t.categories or { t.category }) }
    for _, c in ipairs(t.also or {}) do cats[#cats + 1] = c end
    for _, c in ipairs(cats) do
        if not errors[c] then errors[c] = short_error(err, sub) end
    end
end


-- The fallback: list calls for each {sub, t} of plan (t: an entry of M.TYPES), then the
-- databases of each SQL server found when the plan has the databases type. Appends normalised
-- items to items and errors per category.
local function fetch_lists(tok, plan, items, errors, total)
    local jobs, meta = {}, {}
    local dbt = BY_TYPE["microsoft.sql/servers/databases"]
    local want_db = false
    for _, p in ipairs(plan) do
        if p.t == dbt then want_db = true end
        if p.t.list then
            local rows = {}
            local q = api(p.t)
            for k, v in pairs(p.t.query or {}) do q[k] = v end
            jobs[#jobs + 1] = list_job("/subscriptions/" .. p.sub .. p.t.list, q, rows)
            meta[#jobs] = { t = p.t, sub = p.sub, rows = rows }
        end
    end
    local deadline = time.monotonic() + total
    local results = arm.pages_many(tok, jobs, { total = total })
    local servers = {}
    for i, r in ipairs(results) do
        local m = meta[i]
        if r == true then
            for _, row in ipairs(m.rows) do
                local n = M.normalise(m.t, row)
                if n then
                    items[#items + 1] = n
                    if n.category == "sql_server" then servers[#servers + 1] = n end
                end
            end
        else
            category_error(errors, m.t, r, m.sub)
        end
    end
    if not want_db or #servers == 0 then return end
    jobs, meta = {}, {}
    for _, s in ipairs(servers) do
        local rows = {}
        jobs[#jobs + 1] = list_job(s.id .. "/databases", api(dbt), rows)
        meta[#jobs] = { sub = s.subscriptionId, rows = rows }
    end
    results = arm.pages_many(tok, jobs, { total = math.max(1, deadline - time.monotonic()) })
    for i, r in ipairs(results) do
        if r == true then
            for _, row in ipairs(meta[i].rows) do
                local n = M.normalise(dbt, row)
                if n then items[#items + 1] = n end
            end
        else
            category_error(errors, dbt, r, meta[i].sub)
        end
    end
end


-- Resource Graph rows -> normalised items (rows of types we do not know are skipped).
local function add_rows(rows, items)
    for _, row in ipairs(rows) do
        local t = BY_TYPE[(str(row.type) or ""):lower()]
        if t then
            local n = M.normalise(t, row)
            if n then items[#items + 1] = n end
        end
    end
end


--- Reads the inventory of subs (a sorted list of subscription ids) with the token tok.
-- Returns {items, errors, source, graphError, subscriptions, fetchedAt, fetchedAtEpoch, ttl}, or
-- nil, err when every category failed (err: the first category's ARM error).
-- total: seconds it may take.
function M.fetch(tok, subs, total)
    total = total or M.FETCH_TOTAL
    local t0 = time.monotonic()
    local items, errors = {}, {}
    local resources_q, groups_q = graph_queries()
    -- Jobs 1..n: the resources of a batch of subscriptions each; job n + 1: resource groups.
    -- (Resource Graph reads every visible subscription when given none: never send none.)
    assert(#subs > 0, "discovery.fetch: no subscription")
    local batches, jobs, rows = {}, {}, {}
    local n = math.min(M.GRAPH_PARALLEL, #subs)
    for i, sub in ipairs(subs) do
        local b = (i - 1) % n + 1
        batches[b] = batches[b] or {}
        table.insert(batches[b], sub)
    end
    for i, batch in ipairs(batches) do
        rows[i] = {}
        jobs[i] = graph_job(batch, resources_q, rows[i])
    end
    rows[n + 1] = {}
    jobs[n + 1] = graph_job(subs, groups_q, rows[n + 1])
    local graph = arm.pages_many(tok, jobs, { total = total * M.GRAPH_SHARE })
    -- What Resource Graph could not answer comes from the list calls.
    local plan, graph_error, answered = {}, nil, 0
    for i, r in ipairs(graph) do
        if r == true then
            add_rows(rows[i], items)
            answered = answered + 1
        else
            graph_error = graph_error or r
            for _, sub in ipairs(i <= n and batches[i] or subs) do
                for _, t in ipairs(M.TYPES) do
                    if (i <= n) ~= (t.container == true) then
                        plan[#plan + 1] = { sub = sub, t = t }
                    end
                end
            end
        end
    end
    local source = "resource_graph"
    if #plan > 0 then
        log.info("resource graph failed; listing through the resource providers",
            { status = graph_error.status, code = graph_error.code })
        fetch_lists(tok, plan, items, errors, math.max(1, total - (time.monotonic() - t0)))
        source = answered == 0 and "arm" or "mixed"
    end

    local failed = 0
    for _, c in ipairs(M.CATEGORIES) do
        if errors[c] then failed = failed + 1 end
    end
    if #items == 0 and failed == #M.CATEGORIES then
        local first = errors[M.CATEGORIES[1]]
        return nil, { status = first.status, code = first.code, message = first.message }
    end

    -- The resource group as Azure spells it (ids of some providers upper-case it; Resource
    -- Graph lower-cases it), when the group itself was discovered.
    local rg_names = {}
    for _, it in ipairs(items) do
        if it.category == "resource_group" and it.subscriptionId ~= NULL then
            rg_names[it.subscriptionId:lower() .. "/" .. it.name:lower()] = it.name
        end
    end
    local keys = {}
    for _, it in ipairs(items) do
        if it.resourceGroup ~= NULL and it.subscriptionId ~= NULL then
            local k = it.subscriptionId:lower() .. "/" .. it.resourceGroup:lower()
            it.resourceGroup = rg_names[k] or it.resourceGroup
        end
        keys[it] = it.id:lower()
    end
    table.sort(items, function(a, b)
        local oa, ob = ORDER[a.category], ORDER[b.category]
        if oa ~= ob then return oa < ob end
        return keys[a] < keys[b]
    end)
    local now = time.now()
    return { items = setmetatable(items, json.array_mt), errors = errors, source = source,
        graphError = graph_error and short_error(graph_error) or nil,
        subscriptions = setmetatable({ table.unpack(subs) }, json.array_mt),
        fetchedAt = time.iso8601(math.floor(now)), fetchedAtEpoch = now,
        ttl = failed > 0 and M.PARTIAL_TTL or M.TTL }
end


-- ---- the cache ----------------------------------------------------------------------------------

--- The cache key of a user's inventory: user, cache generation, credential set, subscriptions.
function M.key(uid, ro, subs)
    return "inv:" .. uid .. ":" .. account.generation(uid) .. ":" .. (ro and "ro" or "rw") .. ":" ..
        table.concat(subs, ",")
end


-- This VM's decoded copies of recent inventories: key -> {stamp, inv, used}. Decoding a
-- 10,000-item inventory takes tens of milliseconds, so a request checks the small "stamp:" entry
-- written with each inventory and reuses its copy while the stamp matches. Losing it (a reload)
-- costs one decode.
local memo, memo_clock = {}, 0

local function remember(key, inv)
    memo_clock = memo_clock + 1
    memo[key] = { stamp = inv.fetchedAtEpoch, inv = inv, used = memo_clock }
    local n, oldest = 0, nil
    for k, m in pairs(memo) do
        n = n + 1
        if not oldest or m.used < memo[oldest].used then oldest = k end
    end
    if n > M.MEMO_MAX then memo[oldest] = nil end
end


local function cached(key)
    local stamp = cache:get("stamp:" .. key)
    if not stamp then return nil end
    local m = memo[key]
    if m and m.stamp == stamp then
        memo_clock = memo_clock + 1
        m.used = memo_clock
        return m.inv
    end
    local text = cache:get(key)
    local inv = text and json.decode(text)
    if type(inv) ~= "table" then return nil end
    remember(key, inv)
    return inv
end


-- Fetches with a fresh token and stores the result: inv, or nil, "token"|"upstream", err.
local function fetch_and_store(key, uid, main, ro, subs, total)
    local tok, terr = account.read_token(uid, main, ro)
    if not tok then return nil, "token", terr end
    local inv, err = M.fetch(tok, subs, total)
    tok:close()
    if not inv then return nil, "upstream", err end
    local text, msg = json.encode(inv)
    if text then
        local ok, serr = cache:set(key, text, inv.ttl)
        if ok then
            cache:set("stamp:" .. key, inv.fetchedAtEpoch, inv.ttl)
            remember(key, inv)
        else
            log.warn("inventory not cached", { reason = serr, bytes = #text })
        end
    else
        log.warn("inventory not cached", { reason = msg })
    end
    return inv
end


-- Starts a background refresh when inv is older than half its TTL and none is running.
local function refresh_later(key, uid, main, ro, subs, inv)
    if time.now() - (inv.fetchedAtEpoch or 0) < (inv.ttl or M.TTL) / 2 then return end
    if not locks:add(key, true, M.LOCK_TTL) then return end
    timer.at(0, function()
        local ok, res, kind, err = pcall(fetch_and_store, key, uid, main, ro, subs,
            M.BACKGROUND_TOTAL)
        locks:delete(key)
        if not ok or not res then
            log.warn("background inventory refresh failed", { kind = ok and kind or "error",
                code = type(err) == "table" and err.code or nil,
                error = not ok and tostring(res) or nil })
        end
    end)
end


--- The user's inventory over subs (sorted subscription ids), from the cache when it is there
-- (refreshed in the background once older than half its TTL) unless refresh is true.
-- A request that finds another one fetching the same inventory waits for its answer.
-- Returns inv, "hit"|"miss", or nil, "token"|"upstream", err (err as account.read_token's or
-- arm's).
function M.inventory(uid, main, ro, subs, refresh)
    local key = M.key(uid, ro, subs)
    if not refresh then
        local inv = cached(key)
        if inv then
            refresh_later(key, uid, main, ro, subs, inv)
            return inv, "hit"
        end
    end
    local inv, kind, err = flight.run(locks, key, { lock_ttl = M.LOCK_TTL, wait = M.FETCH_TOTAL,
        force = refresh }, function() return cached(key) end, function()
            return fetch_and_store(key, uid, main, ro, subs, M.FETCH_TOTAL)
        end)
    if kind == "hit" then return inv, "hit" end
    if not inv then return nil, kind, err end
    return inv, "miss"
end

return M

-- GET /azure/resources (lua/handlers/resources.lua, lua/aurora/azure/discovery.lua) against the
-- simulator: Resource Graph, the per-type ARM fallback, partial and total failures, filters,
-- paging, the cache, Ask-mode credentials and a 5,000-resource generated scenario.
local T = require "aurora.test"
local json = require "aurora.json"
local time = require "aurora.time"
local connector = require "lib.connector"

local SUB = "0b1c2d3e-4f50-4617-8283-949596979899"
local SUB_DISABLED = "1c2d3e4f-5061-4728-9394-a5b6c7d8e9f0"
local READER_ID, READER_SECRET = "9e0f1a2b-3c4d-4e5f-8a6b-7c8d9e0f1a2c", "sim-secret-reader-0002"
local GRAPH = "arm:POST /providers/Microsoft.ResourceGraph/resources"
local LIST = "arm:GET /subscriptions/{sub}/providers/"
local STORAGE = LIST .. "Microsoft.Storage/storageAccounts"

local CATEGORIES = { "aks_cluster", "virtual_machine", "vm_scale_set", "sql_server", "sql_database",
    "storage_account", "function_app", "web_app", "virtual_network", "network_security_group",
    "container_group", "resource_group" }


-- Starts the simulator (scenario file optional) and the app, logs user u1 in. Returns sim,
-- call(method, path, opts) -> res with res.json, and login(user, extra fields).
local function start(scenario, extra_env)
    local sim, call = connector.start(extra_env, scenario)
    local function login(user, extra)
        connector.login(sim, call, user, extra)
    end
    login("u1")
    return sim, call, login
end


-- Requests to the simulator's ARM per route name prefix (all of ARM without one).
local function arm_calls(sim, prefix)
    return connector.count(sim, prefix or "arm:")
end


local function by_name(items)
    local out = {}
    for _, it in ipairs(items) do out[it.name] = it end
    return out
end


local function names(items, category)
    local out = {}
    for _, it in ipairs(items) do
        if not category or it.category == category then out[#out + 1] = it.name end
    end
    table.sort(out)
    return out
end


-- Every page of GET /azure/resources?<query>, following `next`: items, first page's body.
local function all_pages(call, query, opts)
    local items, first, cursor, pages = {}, nil, nil, 0
    repeat
        local q = query .. (cursor and ("&cursor=" .. cursor) or "")
        local res = call("GET", "/azure/resources?" .. q, opts)
        T.eq(res.status, 200, res.body)
        first = first or res.json
        pages = pages + 1
        for _, it in ipairs(res.json.items) do items[#items + 1] = it end
        cursor = res.json.next ~= json.null and res.json.next or nil
    until not cursor
    return items, first, pages
end


-- A scenario file: the default one with extra Lua appended (it sees `s` and `scenario`).
local function scenario_file(extra)
    local path = T.tmpdir() .. "/scenario.lua"
    T.write_file(path, "local scenario = dofile('tests/sim/scenario.lua')\n" ..
        "local s = dofile('tests/sim/scenarios/default.lua')\n" .. extra .. "\nreturn s\n")
    return path
end


-- start() on the default scenario plus a VM in the Disabled subscription (rg-legacy/vm-legacy),
-- where only the Contributor principal has a role, with both subscriptions enabled for u1.
-- Returns sim, call, login and the POST /api/azure-subscriptions body that enabled them.
local function start_with_legacy_vm()
    local path = scenario_file([[
s.resource_groups[#s.resource_groups + 1] = { subscription = "]] .. SUB_DISABLED .. [[",
    name = "rg-legacy", location = "northeurope" }
s.vms[#s.vms + 1] = { subscription = "]] .. SUB_DISABLED .. [[", resource_group = "rg-legacy",
    name = "vm-legacy", location = "northeurope", size = "Standard_B2s", os = "Linux" }
]])
    local sim, call, login = start(path)
    local both = { projects = { { projectId = SUB, enabled = true },
        { projectId = SUB_DISABLED, enabled = true } } }
    T.eq(call("POST", "/api/azure-subscriptions", { json = both }).status, 200)
    return sim, call, login, both
end


T.test("every category of the default scenario comes from Resource Graph, normalised", function()
    local sim, call = start()
    local res = call("GET", "/azure/resources")
    T.eq(res.status, 200, res.body)
    T.eq(res.headers["x-cache"], "miss")
    local b = res.json
    T.eq(b.source, "resource_graph")
    T.eq(b.errors, {})
    T.eq(b.subscriptions, { SUB })
    T.eq(b.summary, { aks_cluster = 2, virtual_machine = 2, vm_scale_set = 1, sql_server = 1,
        sql_database = 1, storage_account = 1, function_app = 1, web_app = 1, virtual_network = 1,
        network_security_group = 1, container_group = 1, resource_group = 5 })
    T.eq(b.total, 18)
    T.eq(b.count, 18)
    T.eq(b.next, json.null)
    -- Listed by category, in the documented order.
    local last = 0
    local order = {}
    for i, c in ipairs(CATEGORIES) do order[c] = i end
    for _, it in ipairs(b.items) do
        T.ok(order[it.category] >= last, "items are grouped by category")
        last = order[it.category]
        T.eq(it.subscriptionId, SUB)
    end
    T.eq(names(b.items, "aks_cluster"), { "aks-aad", "aks-prod" })
    T.eq(names(b.items, "resource_group"), { "MC_rg-aks_aks-aad_eastus",
        "MC_rg-aks_aks-prod_eastus", "rg-aks", "rg-apps", "rg-data" })
    local n = by_name(b.items)

    local aks = n["aks-prod"]
    T.eq(aks.type, "Microsoft.ContainerService/managedClusters")
    T.eq(aks.resourceGroup, "rg-aks")
    T.eq(aks.location, "eastus")
    T.eq(aks.sku, { name = "Base", tier = "Free" })
    T.eq(aks.properties.kubernetesVersion, "1.29.4")
    T.eq(aks.properties.powerState, "Running")
    T.eq(aks.properties.nodeCount, 3)
    T.eq(aks.properties.localAccountsDisabled, false)
    T.eq(aks.properties.nodeResourceGroup, "MC_rg-aks_aks-prod_eastus")
    T.match(aks.properties.fqdn, "%.hcp%.eastus%.azmk8s%.io$")
    T.eq(n["aks-aad"].properties.kubernetesVersion, "1.30.1")
    T.eq(n["aks-aad"].properties.localAccountsDisabled, true)

    -- Compute ids upper-case the group; the item names it as Azure does.
    local vm = n["vm-web-1"]
    T.eq(vm.category, "virtual_machine")
    T.eq(vm.id, "/subscriptions/" .. SUB ..
        "/resourceGroups/RG-APPS/providers/Microsoft.Compute/virtualMachines/vm-web-1")
    T.eq(vm.resourceGroup, "rg-apps")
    T.eq(vm.location, "westeurope")
    T.eq(vm.properties.vmSize, "Standard_D2s_v5")
    T.eq(vm.properties.osType, "Linux")
    T.eq(vm.properties.provisioningState, "Succeeded")
    local vmss = n["aks-nodepool1-vmss"]
    T.eq(vmss.category, "vm_scale_set")
    T.eq(vmss.properties.vmSize, "Standard_D4s_v5")
    T.eq(vmss.properties.capacity, 3)

    local sql = n["sql-aurora-sim"]
    T.eq(sql.category, "sql_server")
    T.eq(sql.properties.fqdn, "sql-aurora-sim.database.windows.net")
    T.eq(sql.properties.state, "Ready")
    local db = n["orders"]
    T.eq(db.category, "sql_database")
    T.eq(db.properties.server, "sql-aurora-sim")
    T.eq(db.properties.edition, "Standard")
    T.eq(db.properties.status, "Online")
    T.eq(n["master"], nil, "the system database is left out")

    local st = n["staurorasim01"]
    T.eq(st.kind, "StorageV2")
    T.eq(st.properties.accessTier, "Hot")
    T.eq(st.properties.skuName, "Standard_LRS")
    T.eq(st.properties.httpsOnly, true)

    T.eq(n["func-jobs"].category, "function_app")
    T.eq(n["func-jobs"].kind, "functionapp,linux")
    T.eq(n["app-frontend"].category, "web_app")
    T.eq(n["app-frontend"].properties.defaultHostName, "app-frontend.azurewebsites.net")
    T.eq(n["app-frontend"].properties.linux, true)

    local vnet = n["vnet-aks"]
    T.eq(vnet.properties.addressPrefixes, { "10.224.0.0/12" })
    T.eq(vnet.properties.subnetCount, 1)
    T.eq(vnet.properties.subnets[1].name, "aks-subnet")
    T.eq(vnet.properties.subnets[1].addressPrefixes, { "10.224.0.0/16" })
    local nsg = n["nsg-aks"]
    T.eq(nsg.properties.ruleCount, 1)
    T.eq(nsg.properties.rules[1], { name = "allow-https", direction = "Inbound", access = "Allow",
        priority = 100, protocol = "Tcp", destinationPortRange = "443" })
    local aci = n["aci-batch"]
    T.eq(aci.category, "container_group")
    T.eq(aci.properties.state, "Running")
    T.eq(aci.properties.osType, "Linux")
    T.eq(aci.properties.containerCount, 1)
    local mc = n["MC_rg-aks_aks-prod_eastus"]
    T.eq(mc.properties.managedBy, "/subscriptions/" .. SUB .. "/resourcegroups/rg-aks/providers/" ..
        "Microsoft.ContainerService/managedClusters/aks-prod")
    T.eq(mc.tags["aks-managed-cluster-name"], "aks-prod")

    -- Two Resource Graph queries (resources, resource groups) and no per-type list.
    T.eq(arm_calls(sim, GRAPH), 2)
    T.eq(arm_calls(sim, LIST), 0)
    T.eq(arm_calls(sim, "arm:GET /subscriptions/{sub}/resourcegroups"), 0)
end)


T.test("Resource Graph forbidden (403): the per-type lists give the same items, nextLinks followed",
    function()
        local sim, call = start()
        local graph = call("GET", "/azure/resources").json
        sim:knobs { page_size = 1, faults = { { route = GRAPH, status = 403,
            code = "AuthorizationFailed", count = 2, message = "The client does not have " ..
                "authorization to perform action 'Microsoft.ResourceGraph/resources/read'." } } }
        local res = call("GET", "/azure/resources?refresh=1")
        T.eq(res.status, 200, res.body)
        T.eq(res.headers["x-cache"], "miss")
        local b = res.json
        T.eq(b.source, "arm")
        T.eq(b.graphError.code, "AuthorizationFailed")
        T.eq(b.graphError.status, 403)
        T.eq(b.errors, {})
        T.eq(b.summary, graph.summary)
        -- The same items, a VM's power state included (Resource Graph's
        -- properties.extended.instanceView, ARM's instance view with statusOnly=true).
        local n = by_name(b.items)
        T.eq(n["vm-web-1"].properties.powerState, "running")
        T.eq(n["vm-web-2"].properties.powerState, "deallocated")
        T.eq(b.items, graph.items)
        -- One list per type, one page per item (page_size 1), and one databases list per SQL
        -- server (orders and master: two pages).
        T.eq(arm_calls(sim, LIST .. "Microsoft.Compute/virtualMachines"), 2)
        T.eq(arm_calls(sim, LIST .. "Microsoft.Web/sites"), 2)
        T.eq(arm_calls(sim, LIST .. "Microsoft.ContainerService/managedClusters"), 2)
        T.eq(arm_calls(sim, "arm:GET /subscriptions/{sub}/resourcegroups"), 5)
        T.eq(arm_calls(sim, "arm:GET /subscriptions/{sub}/resourceGroups/{rg}/providers/" ..
            "Microsoft.Sql/servers/{name}/databases"), 2)
    end)


T.test("one failed Resource Graph query is made up by list calls for what it covered", function()
    local sim, call = start_with_legacy_vm()
    local graph = call("GET", "/azure/resources").json
    T.eq(graph.source, "resource_graph")
    T.eq(graph.total, 20)
    T.eq(arm_calls(sim, GRAPH), 3)
    -- Three queries run (one per subscription, one for the groups); the first to arrive fails.
    sim:knobs { faults = { { route = GRAPH, status = 503, code = "ServiceUnavailable", count = 1,
        retry_after = 30 } } }
    local b = call("GET", "/azure/resources?refresh=1").json
    T.eq(b.source, "mixed")
    T.eq(b.graphError.code, "ServiceUnavailable")
    T.eq(b.errors, {})
    T.eq(b.summary, graph.summary)
    T.eq(names(b.items), names(graph.items))
    T.ok(arm_calls(sim, "arm:GET /subscriptions/{sub}/") > 0, "list calls made up for it")
end)


T.test("Resource Graph throttling (429, x-ms-user-quota-*) is waited out, not fallen back from",
    function()
        local sim, call = start()
        -- One query per 5-second window: the second of the two parallel queries is throttled.
        sim:knobs { arg_quota = 1 }
        local t0 = time.monotonic()
        local res = call("GET", "/azure/resources")
        T.eq(res.status, 200, res.body)
        T.eq(res.json.source, "resource_graph")
        T.eq(res.json.total, 18)
        T.eq(arm_calls(sim, GRAPH), 3)
        T.eq(arm_calls(sim, LIST), 0)
        T.ok(time.monotonic() - t0 >= 1, "waited for the quota window")
    end)


T.test("one category forbidden on the fallback is reported in errors; the others answer",
    function()
        local sim, call = start()
        sim:knobs { faults = {
            { route = GRAPH, status = 403, code = "AuthorizationFailed", count = 2 },
            { route = STORAGE, status = 403, code = "AuthorizationFailed", count = 1,
              message = "The client 'x' does not have authorization to perform action " ..
                  "'Microsoft.Storage/storageAccounts/read' over scope '/subscriptions/" .. SUB ..
                  "'." },
            { route = LIST .. "Microsoft.Sql/servers", status = 403, code = "AuthorizationFailed",
              count = 1 } } }
        local res = call("GET", "/azure/resources")
        T.eq(res.status, 200, res.body)
        local b = res.json
        T.eq(b.source, "arm")
        T.eq(b.errors.storage_account.code, "AuthorizationFailed")
        T.eq(b.errors.storage_account.status, 403)
        T.eq(b.errors.storage_account.subscriptionId, SUB)
        T.contains(b.errors.storage_account.message, "Microsoft.Storage/storageAccounts/read")
        -- Databases are listed per server, so no servers means no databases either.
        T.eq(b.errors.sql_server.code, "AuthorizationFailed")
        T.eq(b.errors.sql_database.code, "AuthorizationFailed")
        T.eq(b.summary.storage_account, 0)
        T.eq(b.summary.sql_server, 0)
        T.eq(b.summary.sql_database, 0)
        T.eq(b.summary.virtual_machine, 2)
        T.eq(b.summary.aks_cluster, 2)
        T.eq(b.summary.resource_group, 5)
        T.eq(b.total, 15)
        -- A category filter keeps only its own errors.
        res = call("GET", "/azure/resources?category=virtual_machine")
        T.eq(res.headers["x-cache"], "hit")
        T.eq(res.json.errors, {})
        res = call("GET", "/azure/resources?category=storage_account")
        T.eq(res.json.items, {})
        T.eq(res.json.errors.storage_account.code, "AuthorizationFailed")
    end)


T.test("nothing readable: 403 resources_failed with solution steps", function()
    local sim, call = start()
    sim:knobs { faults = {
        { route = GRAPH, status = 403, code = "AuthorizationFailed", count = 2 },
        { route = "arm:GET /subscriptions/{sub}/", status = 403, code = "AuthorizationFailed",
          count = 100, message = "The client does not have authorization to perform action " ..
              "'read' over scope '/subscriptions/" .. SUB .. "'." } } }
    local res = call("GET", "/azure/resources")
    T.eq(res.status, 403, res.body)
    T.eq(res.json.code, "resources_failed")
    T.eq(res.json.error, "Failed to discover Azure resources")
    T.eq(res.json.upstream.code, "AuthorizationFailed")
    T.eq(res.json.upstream.status, 403)
    T.contains(table.concat(res.json.solution, " "), "--role Reader")
    T.eq(res.json.requestId, res.headers["x-request-id"])
    -- Not cached: the next request reads again, and works.
    res = call("GET", "/azure/resources")
    T.eq(res.status, 200, res.body)
    T.eq(res.json.total, 18)
end)


T.test("filters by category, resource group and location, case-insensitively", function()
    local _, call = start()
    local res = call("GET", "/azure/resources?category=virtual_machine")
    T.eq(res.status, 200, res.body)
    T.eq(names(res.json.items), { "vm-web-1", "vm-web-2" })
    T.eq(res.json.summary, { virtual_machine = 2 })
    res = call("GET", "/azure/resources?category=VMs,Storage-Accounts,nsg")
    T.eq(names(res.json.items), { "nsg-aks", "staurorasim01", "vm-web-1", "vm-web-2" })
    T.eq(res.json.summary, { virtual_machine = 2, storage_account = 1, network_security_group = 1 })
    res = call("GET", "/azure/resources?resourceGroup=RG-APPS")
    T.eq(names(res.json.items), { "aci-batch", "app-frontend", "func-jobs", "rg-apps", "vm-web-1",
        "vm-web-2" })
    res = call("GET", "/azure/resources?location=West%20Europe&category=web_app,function_app")
    T.eq(names(res.json.items), { "app-frontend", "func-jobs" })
    T.eq(res.json.total, 2)
    res = call("GET", "/azure/resources?resourceGroup=rg-data&location=EASTUS")
    T.eq(names(res.json.items), { "orders", "rg-data", "sql-aurora-sim", "staurorasim01" })
    res = call("GET", "/azure/resources?resourceGroup=nope")
    T.eq(res.json.items, {})
    T.eq(res.json.total, 0)
    T.eq(res.json.summary.virtual_machine, 0)

    -- Bad parameters name the field.
    for q, field in pairs { ["category=vms,bogus"] = "category", ["limit=0"] = "limit",
        ["limit=5001"] = "limit", ["limit=ten"] = "limit", ["offset=-1"] = "offset",
        ["cursor=%21%21"] = "cursor", ["cursor=abc&offset=2"] = "cursor" } do
        res = call("GET", "/azure/resources?" .. q)
        T.eq(res.status, 400, q)
        T.eq(res.json.code, "bad_request", q)
        T.eq(res.json.field, field, q)
        T.contains(res.json.error, field, q)
    end
end)


T.test("pages of ?limit= follow `next` cursors; ?offset= jumps", function()
    local _, call = start()
    local full = call("GET", "/azure/resources").json
    local items, first, pages = all_pages(call, "limit=5")
    T.eq(pages, 4)
    T.eq(first.count, 5)
    T.eq(first.total, 18)
    T.eq(first.limit, 5)
    T.eq(items, full.items)
    local res = call("GET", "/azure/resources?limit=4&offset=16")
    T.eq(res.json.count, 2)
    T.eq(res.json.offset, 16)
    T.eq(res.json.next, json.null)
    T.eq(res.json.items, { full.items[17], full.items[18] })
    -- Paging applies after filtering.
    items = all_pages(call, "limit=1&category=resource_group")
    T.eq(#items, 5)
end)


T.test("a cache hit makes no ARM call; refresh=1 and a new subscription set read again", function()
    local sim, call = start()
    T.eq(call("GET", "/azure/resources").headers["x-cache"], "miss")
    local before = arm_calls(sim)
    local res = call("GET", "/azure/resources?category=aks_cluster")
    T.eq(res.headers["x-cache"], "hit")
    T.eq(#res.json.items, 2)
    T.eq(arm_calls(sim), before, "no ARM request for a cached inventory")
    -- Another user has their own entry.
    T.eq(call("GET", "/azure/resources", { user = "u2" }).status, 401)
    res = call("GET", "/azure/resources?refresh=1")
    T.eq(res.headers["x-cache"], "miss")
    T.eq(arm_calls(sim, GRAPH), 4)
    -- Enabling a second subscription is a new inventory over both.
    res = call("POST", "/api/azure-subscriptions", { json = { projects = {
        { projectId = SUB, enabled = true }, { projectId = SUB_DISABLED, enabled = true } } } })
    T.eq(res.status, 200, res.body)
    res = call("GET", "/azure/resources")
    T.eq(res.headers["x-cache"], "miss")
    local want = { SUB, SUB_DISABLED }
    table.sort(want)
    T.eq(res.json.subscriptions, want)
    -- One resources query per subscription (batches of at most three run in parallel), and
    -- the resource groups query.
    T.eq(arm_calls(sim, GRAPH), 4 + 3)
end)


T.test("an inventory older than half its TTL is refreshed in the background", function()
    local sim, call = start(nil, { AURORA_RESOURCES_TTL = "4" })
    local first = call("GET", "/azure/resources")
    T.eq(first.headers["x-cache"], "miss")
    T.eq(arm_calls(sim, GRAPH), 2)
    time.sleep(2.2)
    local res = call("GET", "/azure/resources")
    T.eq(res.headers["x-cache"], "hit", "the stale answer is served at once")
    T.eq(res.json.fetchedAt, first.json.fetchedAt)
    local deadline = time.monotonic() + 5
    while arm_calls(sim, GRAPH) < 4 and time.monotonic() < deadline do time.sleep(0.05) end
    T.eq(arm_calls(sim, GRAPH), 4, "the refresh ran")
    time.sleep(0.3)
    res = call("GET", "/azure/resources")
    T.eq(res.headers["x-cache"], "hit")
    T.ne(res.json.fetchedAt, first.json.fetchedAt)
    T.eq(res.json.total, 18)
end)


T.test("Ask mode reads with the read-only credentials", function()
    local _, call, login, both = start_with_legacy_vm()
    local res = call("GET", "/azure/resources?category=virtual_machine")
    T.eq(names(res.json.items), { "vm-legacy", "vm-web-1", "vm-web-2" })
    T.eq(by_name(res.json.items)["vm-legacy"].properties.vmSize, "Standard_B2s")
    -- u2: the same principal plus Reader credentials (Reader on the Enabled subscription only).
    login("u2")
    T.eq(call("POST", "/api/azure-subscriptions", { user = "u2", json = both }).status, 200)
    login("u2", { readOnlyCredentials = { clientId = READER_ID, clientSecret = READER_SECRET } })
    res = call("GET", "/azure/resources?category=virtual_machine", { user = "u2",
        headers = { ["X-Aurora-Mode"] = "ask" } })
    T.eq(res.status, 200, res.body)
    T.eq(names(res.json.items), { "vm-web-1", "vm-web-2" })
end)


T.test("a generated scenario of 5,000 resources is discovered completely and correctly", function()
    local extra = "scenario.generate(s, { subscriptions = 6, resource_groups = 12, " ..
        "resources = 5000 })"
    local path = scenario_file(extra)
    local sim, call = start(path)
    -- Enable every subscription the principal sees.
    local projects = call("GET", "/api/azure-subscriptions").json.projects
    local enable, enabled = {}, {}
    for _, p in ipairs(projects) do
        enable[#enable + 1] = { projectId = p.projectId, enabled = true }
        enabled[p.projectId] = true
    end
    T.eq(call("POST", "/api/azure-subscriptions", { json = { projects = enable } }).status, 200)

    -- What the scenario holds in those subscriptions.
    local s = dofile(path)
    local want = {}
    for _, c in ipairs(CATEGORIES) do want[c] = {} end
    local function add(c, item)
        if enabled[item.subscription] then want[c][#want[c] + 1] = item.name end
    end
    for _, x in ipairs(s.clusters) do
        add("aks_cluster", x)
        add("resource_group", { subscription = x.subscription,
            name = "MC_" .. x.resource_group .. "_" .. x.name .. "_" .. x.location })
    end
    for _, x in ipairs(s.vms) do add("virtual_machine", x) end
    for _, x in ipairs(s.vm_scale_sets) do add("vm_scale_set", x) end
    for _, x in ipairs(s.storage_accounts) do add("storage_account", x) end
    for _, x in ipairs(s.vnets) do add("virtual_network", x) end
    for _, x in ipairs(s.nsgs) do add("network_security_group", x) end
    for _, x in ipairs(s.container_groups) do add("container_group", x) end
    for _, x in ipairs(s.resource_groups) do add("resource_group", x) end
    for _, x in ipairs(s.sites) do
        add((x.kind or ""):find("functionapp", 1, true) and "function_app" or "web_app", x)
    end
    for _, x in ipairs(s.sql_servers) do
        add("sql_server", x)
        for _, d in ipairs(x.databases or {}) do
            if d.name ~= "master" then
                add("sql_database", { subscription = x.subscription, name = d.name })
            end
        end
    end
    local total, per_sub = 0, {}
    for _, c in ipairs(CATEGORIES) do
        table.sort(want[c])
        total = total + #want[c]
    end
    -- Resource Graph rows per subscription (resource groups are queried apart).
    local function count_sub(list, extra)
        for _, x in ipairs(list) do
            if enabled[x.subscription] then
                per_sub[x.subscription] = (per_sub[x.subscription] or 0) + 1 +
                    (extra and extra(x) or 0)
            end
        end
    end
    for _, k in ipairs { "clusters", "vms", "vm_scale_sets", "storage_accounts", "vnets", "nsgs",
        "container_groups", "sites" } do
        count_sub(s[k])
    end
    count_sub(s.sql_servers, function(x) return #(x.databases or {}) end)
    T.ok(total > 4000, "most of the 5,000 resources are in subscriptions the principal sees")

    local t0 = time.monotonic()
    local items, first, pages = all_pages(call, "limit=5000")
    local took = time.monotonic() - t0
    T.eq(first.source, "resource_graph")
    T.eq(first.errors, {})
    T.eq(first.total, total)
    T.eq(#items, total)
    T.eq(pages, math.ceil(total / 5000))
    for _, c in ipairs(CATEGORIES) do
        T.eq(first.summary[c], #want[c], c)
        T.eq(names(items, c), want[c], c)
    end
    -- Resource Graph pages of 1,000 rows, followed through $skipToken: the subscriptions (in
    -- sorted order) dealt round-robin into three parallel queries, plus one resource groups
    -- query (one page).
    local subs = {}
    for id in pairs(enabled) do subs[#subs + 1] = id end
    table.sort(subs)
    T.eq(#subs, 5)
    local batch_rows = { 0, 0, 0 }
    for i, id in ipairs(subs) do
        batch_rows[(i - 1) % 3 + 1] = batch_rows[(i - 1) % 3 + 1] + (per_sub[id] or 0)
    end
    local pages_want = 1
    for _, rows in ipairs(batch_rows) do
        pages_want = pages_want + math.max(1, math.ceil(rows / 1000))
    end
    T.ok(pages_want >= 7, "several pages per query")
    T.eq(arm_calls(sim, GRAPH), pages_want)
    T.eq(arm_calls(sim, LIST), 0)
    -- Each item normalised: a category's own fields are there.
    local n = by_name(items)
    T.eq(n["vms-1"].properties.vmSize, "Standard_D2s_v5")
    T.eq(n["sites-3"].category, "web_app")
    T.eq(n["sites-11"].category, "web_app")
    T.eq(n["sites-19"].category, "web_app")
    T.eq(n["vnets-4"].properties.subnets[1].addressPrefixes, { "10.4.0.0/24" })
    T.ok(took < 25, "the cold inventory took " .. took .. " s")
end)

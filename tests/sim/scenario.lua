-- Scenario data: the declarative description of the simulated Azure (tenants, applications and
-- their credentials, role assignments, subscriptions, resource groups, clusters, resources,
-- costs). A scenario file is Lua returning a table; large ones are generated from a few numbers
-- with generate{...}. See scenarios/default.lua for every field.
local M = {}


--- Loads the scenario file at path and fills in derived fields. config is the launcher's
-- config (cluster endpoints); may be nil when only the data is wanted (tests).
function M.load(path, config)
    local chunk = assert(loadfile(path, "t"))
    local s = chunk()
    s.token_lifetime = s.token_lifetime or 3600
    for _, list in ipairs { "tenants", "applications", "role_assignments", "subscriptions",
        "resource_groups", "clusters", "vms", "vm_scale_sets", "sql_servers", "storage_accounts",
        "sites", "vnets", "nsgs", "container_groups", "costs" } do
        s[list] = s[list] or {}
    end
    s.by_app = {}
    for _, a in ipairs(s.applications) do s.by_app[a.appId] = a end
    s.by_tenant = {}
    for _, t in ipairs(s.tenants) do
        s.by_tenant[t.id] = t
        if t.domain then s.by_tenant[t.domain] = t end
    end
    s.by_sub = {}
    for _, sub in ipairs(s.subscriptions) do s.by_sub[sub.id] = sub end
    if config and config.clusters then
        for _, c in ipairs(s.clusters) do
            c.endpoint = config.clusters[c.name]
        end
    end
    return s
end


local function guid(n, salt)
    return string.format("%08x-%04x-4%03x-8%03x-%012x", (salt * 2654435761 + n) % 0x100000000,
        n % 0x10000, salt % 0x1000, n % 0x1000, n * 7919 + salt)
end

M.guid = guid


--- Generates a scenario: {subscriptions = 2, clusters = 10, resources = 1000, ...} on top of
-- base (a scenario table). Deterministic: the same numbers give the same ids.
function M.generate(base, n)
    local s = base
    local locations = { "eastus", "westeurope", "westus2", "northeurope", "southeastasia" }
    for i = #s.subscriptions + 1, n.subscriptions or #s.subscriptions do
        s.subscriptions[i] = { id = guid(i, 11), name = "Generated subscription " .. i,
            state = "Enabled", tenant = s.tenants[1].id }
        s.role_assignments[#s.role_assignments + 1] = { principal = s.applications[1].spObjectId,
            role = "Contributor", scope = "/subscriptions/" .. s.subscriptions[i].id }
    end
    local subs = s.subscriptions
    for i = 1, n.resource_groups or 0 do
        local sub = subs[(i - 1) % #subs + 1]
        s.resource_groups[#s.resource_groups + 1] = { subscription = sub.id, name = "rg-gen-" .. i,
            location = locations[(i - 1) % #locations + 1] }
    end
    local rgs = s.resource_groups
    for i = 1, n.clusters or 0 do
        local rg = rgs[(i - 1) % #rgs + 1]
        s.clusters[#s.clusters + 1] = { subscription = rg.subscription, resource_group = rg.name,
            name = "aks-gen-" .. i, location = rg.location, version = "1.29.4",
            local_accounts = i % 5 ~= 0, metrics_server = i % 3 ~= 0, power = "Running" }
    end
    local kinds = { "vms", "storage_accounts", "sites", "vnets", "nsgs", "container_groups",
        "vm_scale_sets", "sql_servers" }
    -- Sites by their own count (they come every 8th resource, always at an odd i): in every
    -- six, three web apps then three function apps, Windows and Linux mixed.
    local site_kinds = { "app", "app,linux", "app", "functionapp,linux", "functionapp",
        "functionapp,linux" }
    local sites = 0
    for i = 1, n.resources or 0 do
        local rg = rgs[(i - 1) % #rgs + 1]
        local kind = kinds[(i - 1) % #kinds + 1]
        local r = { subscription = rg.subscription, resource_group = rg.name,
            name = kind:gsub("_", "-") .. "-" .. i, location = rg.location }
        if kind == "sites" then
            r.kind = site_kinds[sites % #site_kinds + 1]
            sites = sites + 1
        elseif kind == "vnets" then
            r.subnets = { { name = "default", prefix = "10." .. (i % 250) .. ".0.0/24" } }
            r.address_space = { "10." .. (i % 250) .. ".0.0/16" }
        elseif kind == "sql_servers" then
            r.databases = { { name = "db" .. i, edition = "Standard" } }
        end
        s[kind][#s[kind] + 1] = r
    end
    return s
end

return M

-- ARM resource shapes of the simulated Azure: one entry per resource type the scenario holds
-- (AKS clusters, VMs, scale sets, SQL servers and databases, storage accounts, web and function
-- apps, virtual networks, NSGs, container groups), each turned into the JSON a resource provider
-- returns, with the id casing that provider really uses. Also the subset of the Resource Graph
-- query language (KQL) that arm.lua's Resource Graph route runs over these resources.
--
-- Shapes only: no authorization, paging or routing here (arm.lua does those).
local crypto = require "aurora.crypto"
local json = require "aurora.json"

local M = {}

local NULL = json.null
local array = json.array


--- A GUID derived from text: the same input gives the same id on every start.
local function stable_guid(text)
    local h = crypto.hex(crypto.sha256(text))
    return string.format("%s-%s-4%s-8%s-%s", h:sub(1, 8), h:sub(9, 12), h:sub(14, 16),
        h:sub(18, 20), h:sub(21, 32))
end

M.stable_guid = stable_guid


local function short_hash(text, n)
    return crypto.hex(crypto.sha256(text)):sub(1, n or 8)
end


local function iso(t)
    return os.date("!%Y-%m-%dT%H:%M:%S.0000000Z", t)
end

-- Creation times are fixed relative to the first load so repeated GETs agree.
local CREATED = os.time() - 90 * 86400


local function rg_id(sub, rg, segment)
    return "/subscriptions/" .. sub .. "/" .. (segment or "resourceGroups") .. "/" .. rg
end


local function tags_of(r)
    local t = {}
    for k, v in pairs(r.tags or {}) do t[k] = v end
    return t
end


-- ---- per-type shapes ---------------------------------------------------------------------
-- Each shape function gets the scenario item and a context {tenant, sub} and returns the
-- properties plus any extra top-level fields (kind, sku, identity, zones, etag).

local function dns_prefix_of(c)
    return (c.name .. "-" .. c.resource_group .. "-" .. c.subscription:sub(1, 6))
        :gsub("[^%w%-]", ""):sub(1, 54)
end


--- A cluster's API server names as ARM reports them: fqdn (nil when it has none: a private
-- cluster without public_fqdn = true, or public_fqdn = false) and privateFQDN (private clusters
-- only), "<dnsPrefix>-<8 hex>.<guid>.privatelink.<location>.azmk8s.io" as AKS makes them.
function M.cluster_fqdns(c)
    local dns_prefix = dns_prefix_of(c)
    local hash = short_hash(c.subscription .. c.resource_group .. c.name)
    local fqdn, private_fqdn
    if c.private then
        if c.public_fqdn == true then
            fqdn = c.fqdn or (dns_prefix .. "-" .. hash .. ".hcp." .. c.location .. ".azmk8s.io")
        end
        private_fqdn = dns_prefix .. "-" .. hash .. "." .. stable_guid("private-dns:" .. c.name) ..
            ".privatelink." .. c.location .. ".azmk8s.io"
    elseif c.public_fqdn ~= false then
        fqdn = c.fqdn or (dns_prefix .. "-" .. hash .. ".hcp." .. c.location .. ".azmk8s.io")
    end
    return fqdn, private_fqdn
end


local function cluster_shape(c, ctx)
    local dns_prefix = dns_prefix_of(c)
    local hash = short_hash(c.subscription .. c.resource_group .. c.name)
    local power = c.power or "Running"
    local version = c.version or "1.29.4"
    local aad = c.aad
    if aad == nil then aad = c.local_accounts == false end
    local p = {
        provisioningState = c.provisioning_state or "Succeeded",
        powerState = { code = power },
        kubernetesVersion = version,
        currentKubernetesVersion = version,
        dnsPrefix = dns_prefix,
        azurePortalFQDN = dns_prefix .. "-" .. hash .. ".portal.hcp." .. c.location .. ".azmk8s.io",
        enableRBAC = true,
        supportPlan = "KubernetesOfficial",
        disableLocalAccounts = c.local_accounts == false,
        maxAgentPools = 100,
        nodeResourceGroup = "MC_" .. c.resource_group .. "_" .. c.name .. "_" .. c.location,
        agentPoolProfiles = array {
            {
                name = "nodepool1", count = c.nodes or 3, vmSize = c.node_size or "Standard_D4s_v5",
                osDiskSizeGB = 128, osDiskType = "Managed", kubeletDiskType = "OS", maxPods = 110,
                type = "VirtualMachineScaleSets", enableAutoScaling = false,
                provisioningState = "Succeeded", powerState = { code = power },
                orchestratorVersion = version, currentOrchestratorVersion = version,
                enableNodePublicIP = false, mode = "System", osType = "Linux", osSKU = "Ubuntu",
                nodeImageVersion = "AKSUbuntu-2204gen2containerd-202411.12.0", enableFIPS = false,
            },
        },
        servicePrincipalProfile = { clientId = "msi" },
        addonProfiles = {},
        networkProfile = {
            networkPlugin = "azure", networkPolicy = "none", loadBalancerSku = "standard",
            serviceCidr = "10.0.0.0/16", dnsServiceIP = "10.0.0.10", outboundType = "loadBalancer",
            serviceCidrs = array { "10.0.0.0/16" }, ipFamilies = array { "IPv4" },
        },
        autoUpgradeProfile = { upgradeChannel = "none", nodeOSUpgradeChannel = "NodeImage" },
        oidcIssuerProfile = { enabled = false },
        securityProfile = {},
        storageProfile = { diskCSIDriver = { enabled = true }, fileCSIDriver = { enabled = true },
            snapshotController = { enabled = true } },
    }
    p.fqdn, p.privateFQDN = M.cluster_fqdns(c)
    if c.private then
        p.apiServerAccessProfile = { enablePrivateCluster = true, privateDNSZone = "system",
            enablePrivateClusterPublicFQDN = c.public_fqdn == true }
    end
    if aad then
        p.aadProfile = { managed = true, enableAzureRBAC = true, adminGroupObjectIDs = NULL,
            tenantID = ctx.tenant }
    end
    return p, {
        sku = { name = "Base", tier = "Free" },
        identity = { type = "SystemAssigned", principalId = stable_guid("mi:" .. c.name),
            tenantId = ctx.tenant },
        eTag = short_hash("etag:" .. c.name, 32),
    }
end


local POWER_DISPLAY = { running = "VM running", deallocated = "VM deallocated",
    stopped = "VM stopped", starting = "VM starting", deallocating = "VM deallocating" }


--- The instance view of a VM (statusOnly=true, $expand=instanceView, GET .../instanceView).
function M.vm_instance_view(v)
    local power = (v.power or "running"):lower()
    return {
        computerName = v.name, osName = (v.os or "Linux") == "Linux" and "ubuntu" or "Windows",
        statuses = array {
            { code = "ProvisioningState/succeeded", level = "Info",
              displayStatus = "Provisioning succeeded", time = iso(CREATED) },
            { code = "PowerState/" .. power, level = "Info",
              displayStatus = POWER_DISPLAY[power] or ("VM " .. power) },
        },
    }
end


local function vm_shape(v, ctx)
    local linux = (v.os or "Linux") == "Linux"
    local rg_upper = v.resource_group:upper()
    local base = "/subscriptions/" .. v.subscription .. "/resourceGroups/" .. rg_upper ..
        "/providers/"
    local p = {
        vmId = stable_guid("vm:" .. v.subscription .. v.name),
        hardwareProfile = { vmSize = v.size or "Standard_D2s_v5" },
        storageProfile = {
            imageReference = linux and { publisher = "Canonical",
                offer = "0001-com-ubuntu-server-jammy", sku = "22_04-lts-gen2", version = "latest",
                exactVersion = "22.04.202411010" } or { publisher = "MicrosoftWindowsServer",
                offer = "WindowsServer", sku = "2022-datacenter-azure-edition", version = "latest" },
            osDisk = { osType = linux and "Linux" or "Windows", name = v.name .. "_OsDisk_1",
                createOption = "FromImage", caching = "ReadWrite", diskSizeGB = 30,
                managedDisk = { storageAccountType = "Premium_LRS",
                    id = base .. "Microsoft.Compute/disks/" .. v.name .. "_OsDisk_1" },
                deleteOption = "Delete" },
            dataDisks = array {},
        },
        osProfile = { computerName = v.name, adminUsername = "azureuser",
            linuxConfiguration = linux and { disablePasswordAuthentication = true,
                provisionVMAgent = true } or nil,
            windowsConfiguration = (not linux) and { provisionVMAgent = true,
                enableAutomaticUpdates = true } or nil,
            secrets = array {}, allowExtensionOperations = true },
        networkProfile = { networkInterfaces = array {
            { id = base .. "Microsoft.Network/networkInterfaces/" .. v.name .. "-nic" } } },
        provisioningState = "Succeeded",
        timeCreated = iso(CREATED),
    }
    return p, { zones = v.zones and array(v.zones) or nil }
end


local function vmss_shape(v, ctx)
    return {
        singlePlacementGroup = false, orchestrationMode = "Uniform",
        upgradePolicy = { mode = "Manual" },
        virtualMachineProfile = {
            osProfile = { computerNamePrefix = v.name:sub(1, 9), adminUsername = "azureuser",
                linuxConfiguration = { disablePasswordAuthentication = true } },
            storageProfile = { osDisk = { osType = "Linux", createOption = "FromImage",
                caching = "ReadOnly", managedDisk = { storageAccountType = "Premium_LRS" },
                diskSizeGB = 128 } },
        },
        overprovision = false, doNotRunExtensionsOnOverprovisionedVMs = false,
        provisioningState = "Succeeded",
        uniqueId = stable_guid("vmss:" .. v.name),
        timeCreated = iso(CREATED),
    }, { sku = { name = v.sku or "Standard_D4s_v5", tier = "Standard", capacity = v.capacity or 1 } }
end


local function sql_server_shape(s, ctx)
    return {
        administratorLogin = "sqladmin", version = "12.0", state = "Ready",
        fullyQualifiedDomainName = s.name .. ".database.windows.net",
        privateEndpointConnections = array {}, minimalTlsVersion = "1.2",
        publicNetworkAccess = "Enabled", restrictOutboundNetworkAccess = "Disabled",
    }, { kind = "v12.0" }
end


local EDITION_SKU = {
    Basic = { name = "Basic", tier = "Basic", capacity = 5 },
    Standard = { name = "Standard", tier = "Standard", capacity = 10 },
    Premium = { name = "Premium", tier = "Premium", capacity = 125 },
    GeneralPurpose = { name = "GP_Gen5", tier = "GeneralPurpose", family = "Gen5", capacity = 2 },
    System = { name = "System", tier = "System", capacity = 0 },
}


local function database_shape(d, ctx)
    local system = d.edition == "System" or d.name == "master"
    local sku = EDITION_SKU[d.edition or "Standard"] or EDITION_SKU.Standard
    if system then sku = EDITION_SKU.System end
    local copy = {}
    for k, v in pairs(sku) do copy[k] = v end
    return {
        collation = "SQL_Latin1_General_CP1_CI_AS", maxSizeBytes = system and 32212254720 or
            268435456000, status = "Online", databaseId = stable_guid("db:" .. ctx.server_id ..
            d.name), creationDate = iso(CREATED), currentServiceObjectiveName = copy.name,
        requestedServiceObjectiveName = copy.name, defaultSecondaryLocation = "westus",
        catalogCollation = "SQL_Latin1_General_CP1_CI_AS", zoneRedundant = false,
        readScale = "Disabled", currentSku = copy, currentBackupStorageRedundancy = "Geo",
        requestedBackupStorageRedundancy = "Geo", isLedgerOn = false,
    }, {
        kind = system and "v12.0,system" or "v12.0,user",
        sku = copy,
        managedBy = system and ctx.server_id or nil,
    }
end


local function storage_shape(s, ctx)
    local web = "https://" .. s.name
    local sku = s.sku or "Standard_LRS"
    return {
        keyCreationTime = { key1 = iso(CREATED), key2 = iso(CREATED) },
        allowCrossTenantReplication = false, minimumTlsVersion = "TLS1_2",
        allowBlobPublicAccess = false, allowSharedKeyAccess = true,
        networkAcls = { bypass = "AzureServices", virtualNetworkRules = array {},
            ipRules = array {}, defaultAction = "Allow" },
        supportsHttpsTrafficOnly = true,
        encryption = { requireInfrastructureEncryption = false, keySource = "Microsoft.Storage",
            services = { file = { keyType = "Account", enabled = true },
                blob = { keyType = "Account", enabled = true } } },
        accessTier = s.tier or "Hot",
        provisioningState = "Succeeded", creationTime = iso(CREATED),
        primaryEndpoints = { dfs = web .. ".dfs.core.windows.net/",
            web = web .. ".z13.web.core.windows.net/", blob = web .. ".blob.core.windows.net/",
            queue = web .. ".queue.core.windows.net/", table = web .. ".table.core.windows.net/",
            file = web .. ".file.core.windows.net/" },
        primaryLocation = s.location, statusOfPrimary = "available",
    }, {
        kind = s.kind or "StorageV2",
        sku = { name = sku, tier = sku:match("^Premium") and "Premium" or "Standard" },
    }
end


local function site_shape(s, ctx)
    local kind = s.kind or "app"
    local linux = kind:lower():find("linux", 1, true) ~= nil
    local host = s.name .. ".azurewebsites.net"
    return {
        name = s.name, state = s.state or "Running",
        hostNames = array { host }, enabledHostNames = array { host, s.name ..
            ".scm.azurewebsites.net" },
        defaultHostName = host, enabled = true, usageState = "Normal",
        availabilityState = "Normal", reserved = linux, isXenon = false, hyperV = false,
        serverFarmId = "/subscriptions/" .. s.subscription .. "/resourceGroups/" ..
            s.resource_group .. "/providers/Microsoft.Web/serverfarms/" .. (s.plan or
            ("asp-" .. s.resource_group)),
        siteConfig = { numberOfWorkers = 1, linuxFxVersion = linux and
            (kind:find("functionapp", 1, true) and "Python|3.11" or "NODE|20-lts") or "",
            alwaysOn = false, http20Enabled = false, functionAppScaleLimit = 0,
            minimumElasticInstanceCount = 0 },
        resourceGroup = s.resource_group, httpsOnly = true, clientCertEnabled = false,
        outboundIpAddresses = "20.50.2.1,20.50.2.2", possibleOutboundIpAddresses =
            "20.50.2.1,20.50.2.2,20.50.2.3", publicNetworkAccess = "Enabled",
        lastModifiedTimeUtc = iso(CREATED):sub(1, 19) .. ".3566667",
    }, { kind = kind }
end


local function vnet_shape(v, ctx)
    local subnets = array {}
    for _, sn in ipairs(v.subnets or {}) do
        local p = { provisioningState = "Succeeded", addressPrefix = sn.prefix,
            delegations = array {}, privateEndpointNetworkPolicies = "Disabled",
            privateLinkServiceNetworkPolicies = "Enabled" }
        if sn.nsg then
            p.networkSecurityGroup = { id = "/subscriptions/" .. v.subscription ..
                "/resourceGroups/" .. v.resource_group ..
                "/providers/Microsoft.Network/networkSecurityGroups/" .. sn.nsg }
        end
        subnets[#subnets + 1] = { name = sn.name, id = ctx.id .. "/subnets/" .. sn.name,
            etag = 'W/"' .. stable_guid("etag:" .. ctx.id) .. '"', properties = p,
            type = "Microsoft.Network/virtualNetworks/subnets" }
    end
    return {
        provisioningState = "Succeeded", resourceGuid = stable_guid("vnet:" .. ctx.id),
        addressSpace = { addressPrefixes = array(v.address_space or { "10.0.0.0/16" }) },
        dhcpOptions = { dnsServers = array {} },
        subnets = subnets, virtualNetworkPeerings = array {}, enableDdosProtection = false,
    }, { etag = 'W/"' .. stable_guid("etag:" .. ctx.id) .. '"' }
end


local DEFAULT_RULES = {
    { "AllowVnetInBound", "Allow virtual network inbound traffic", "VirtualNetwork",
      "VirtualNetwork", "Allow", 65000, "Inbound" },
    { "AllowAzureLoadBalancerInBound", "Allow inbound traffic from azure load balancer",
      "AzureLoadBalancer", "*", "Allow", 65001, "Inbound" },
    { "DenyAllInBound", "Deny all inbound traffic", "*", "*", "Deny", 65500, "Inbound" },
    { "AllowVnetOutBound", "Allow outbound traffic from all VMs to all VMs in VNET",
      "VirtualNetwork", "VirtualNetwork", "Allow", 65000, "Outbound" },
    { "AllowInternetOutBound", "Allow outbound traffic from all VMs to Internet", "*",
      "Internet", "Allow", 65001, "Outbound" },
    { "DenyAllOutBound", "Deny all outbound traffic", "*", "*", "Deny", 65500, "Outbound" },
}


local function rule(id, etag, name, description, src, dst, access, priority, direction, port,
                    protocol, kind)
    return {
        name = name, id = id .. "/" .. kind .. "/" .. name, etag = etag,
        type = "Microsoft.Network/networkSecurityGroups/" .. kind,
        properties = {
            provisioningState = "Succeeded", description = description, protocol = protocol or "*",
            sourcePortRange = "*", destinationPortRange = port or "*",
            sourceAddressPrefix = src, destinationAddressPrefix = dst, access = access,
            priority = priority, direction = direction, sourcePortRanges = array {},
            destinationPortRanges = array {}, sourceAddressPrefixes = array {},
            destinationAddressPrefixes = array {},
        },
    }
end


local function nsg_shape(n, ctx)
    local etag = 'W/"' .. stable_guid("etag:" .. ctx.id) .. '"'
    local rules, defaults = array {}, array {}
    for _, r in ipairs(n.rules or {}) do
        local p = rule(ctx.id, etag, r.name, r.description, r.source or "*",
            r.destination or "*", r.access or "Allow", r.priority or 100,
            r.direction or "Inbound", r.port, r.protocol or "Tcp", "securityRules")
        if r.description == nil then p.properties.description = nil end
        rules[#rules + 1] = p
    end
    for _, d in ipairs(DEFAULT_RULES) do
        defaults[#defaults + 1] = rule(ctx.id, etag, d[1], d[2], d[3], d[4], d[5], d[6], d[7], "*",
            "*", "defaultSecurityRules")
    end
    return { provisioningState = "Succeeded", resourceGuid = stable_guid("nsg:" .. ctx.id),
        securityRules = rules, defaultSecurityRules = defaults }, { etag = etag }
end


local function aci_shape(g, ctx)
    local state = g.state or "Running"
    local containers = array {}
    for i, c in ipairs(g.containers or { { name = g.name, image = "mcr.microsoft.com/azuredocs/aci-helloworld" } }) do
        containers[i] = { name = c.name, properties = {
            image = c.image, command = array(c.command or {}),
            ports = array { { port = c.port or 80 } }, environmentVariables = array {},
            resources = { requests = { cpu = c.cpu or 1, memoryInGB = c.memory or 1.5 } },
        } }
    end
    return {
        sku = "Standard", provisioningState = "Succeeded", containers = containers,
        restartPolicy = g.restart_policy or "OnFailure", osType = g.os or "Linux",
        ipAddress = { ports = array { { protocol = "TCP", port = 80 } }, type = "Public",
            ip = "20.61.0." .. (tonumber(short_hash(ctx.id, 2), 16) % 250 + 1) },
        instanceView = { state = state, events = array {} },
    }, {}
end


-- ---- the type table -----------------------------------------------------------------------

--- Every resource type, in listing order. key: the scenario list; ns/type: the canonical path
-- segments; out: the `type` value the provider returns; rg_segment: how the provider spells
-- resourceGroups in ids; upper_rg: the provider upper-cases the group name in ids (Compute).
M.TYPES = {
    { key = "clusters", ns = "Microsoft.ContainerService", type = "managedClusters",
      out = "Microsoft.ContainerService/ManagedClusters", rg_segment = "resourcegroups",
      shape = cluster_shape },
    { key = "vms", ns = "Microsoft.Compute", type = "virtualMachines",
      out = "Microsoft.Compute/virtualMachines", upper_rg = true, shape = vm_shape },
    { key = "vm_scale_sets", ns = "Microsoft.Compute", type = "virtualMachineScaleSets",
      out = "Microsoft.Compute/virtualMachineScaleSets", upper_rg = true, shape = vmss_shape },
    { key = "sql_servers", ns = "Microsoft.Sql", type = "servers", out = "Microsoft.Sql/servers",
      shape = sql_server_shape },
    { key = "storage_accounts", ns = "Microsoft.Storage", type = "storageAccounts",
      out = "Microsoft.Storage/storageAccounts", shape = storage_shape },
    { key = "sites", ns = "Microsoft.Web", type = "sites", out = "Microsoft.Web/sites",
      shape = site_shape },
    { key = "vnets", ns = "Microsoft.Network", type = "virtualNetworks",
      out = "Microsoft.Network/virtualNetworks", shape = vnet_shape },
    { key = "nsgs", ns = "Microsoft.Network", type = "networkSecurityGroups",
      out = "Microsoft.Network/networkSecurityGroups", shape = nsg_shape },
    { key = "container_groups", ns = "Microsoft.ContainerInstance", type = "containerGroups",
      out = "Microsoft.ContainerInstance/containerGroups", shape = aci_shape },
}

M.DATABASES = { ns = "Microsoft.Sql", type = "servers/databases",
    out = "Microsoft.Sql/servers/databases" }

M.by_path = {}
for _, t in ipairs(M.TYPES) do
    M.by_path[(t.ns .. "/" .. t.type):lower()] = t
end


local function finish(t, item, ctx, id)
    local props, extra = t.shape(item, ctx)
    local r = { id = id, name = item.name, type = t.out, location = item.location,
        tags = tags_of(item) }
    for k, v in pairs(extra or {}) do r[k] = v end
    r.properties = props
    return r
end


--- Builds every resource of the scenario. Returns a list of records
-- {sub, rg, name, t (type entry), item (scenario entry), body (the ARM JSON), databases (SQL
-- servers only: records of their databases)}.
function M.build(scenario)
    local out = {}
    local tenants = {}
    for _, s in ipairs(scenario.subscriptions) do tenants[s.id] = s.tenant end
    for _, t in ipairs(M.TYPES) do
        for _, item in ipairs(scenario[t.key] or {}) do
            local rg = t.upper_rg and item.resource_group:upper() or item.resource_group
            local id = rg_id(item.subscription, rg, t.rg_segment) .. "/providers/" .. t.ns ..
                "/" .. t.type .. "/" .. item.name
            local ctx = { tenant = tenants[item.subscription], id = id }
            local rec = { sub = item.subscription, rg = item.resource_group, name = item.name,
                t = t, item = item, id = id, body = finish(t, item, ctx, id) }
            if t.key == "sql_servers" then
                rec.databases = {}
                for _, d in ipairs(item.databases or {}) do
                    local did = id .. "/databases/" .. d.name
                    local props, extra = database_shape(d, { server_id = id })
                    local body = { id = did, name = d.name, type = M.DATABASES.out,
                        location = item.location, tags = tags_of(d) }
                    for k, v in pairs(extra) do body[k] = v end
                    body.properties = props
                    rec.databases[#rec.databases + 1] = { sub = item.subscription,
                        rg = item.resource_group, name = d.name, t = M.DATABASES, item = d,
                        id = did, body = body, server = item.name }
                end
            end
            out[#out + 1] = rec
        end
    end
    return out
end


-- ---- Resource Graph: a KQL subset -----------------------------------------------------------

local function lower(s)
    return type(s) == "string" and s:lower() or s
end


--- A VM's power state as Resource Graph reports it in properties.extended.instanceView:
-- {code = "PowerState/running", displayStatus = "VM running"}.
function M.vm_power_state(v)
    local power = (v.power or "running"):lower()
    return { code = "PowerState/" .. power,
        displayStatus = POWER_DISPLAY[power] or ("VM " .. power) }
end


--- The Resource Graph row of a resource record (type and resourceGroup lower-cased, as ARG).
-- Virtual machines also carry properties.extended.instanceView.powerState, which Resource
-- Graph adds to the provider's properties (a plain list call needs statusOnly=true for it).
function M.arg_row(rec, tenant)
    local b = rec.body
    local props = b.properties
    if rec.t.key == "vms" then
        props = {}
        for k, v in pairs(b.properties) do props[k] = v end
        props.extended = { instanceView = { powerState = M.vm_power_state(rec.item) } }
    end
    return {
        id = b.id, name = b.name, type = b.type:lower(), tenantId = tenant or NULL,
        kind = b.kind or "", location = b.location, resourceGroup = rec.rg:lower(),
        subscriptionId = rec.sub, managedBy = b.managedBy or "", sku = b.sku or NULL,
        plan = NULL, properties = props, tags = b.tags or {},
        identity = b.identity or NULL, zones = b.zones or NULL, extendedLocation = NULL,
    }
end


local OPS3 = { "!in~", "!in", "!~", "!=", "=~", "==", "<=", ">=" }
local OPS1 = { ["|"] = true, ["("] = true, [")"] = true, [","] = true, ["="] = true,
    ["<"] = true, [">"] = true }


local function tokenize(q)
    local toks, i, n = {}, 1, #q
    while i <= n do
        local c = q:sub(i, i)
        if c:match("%s") then
            i = i + 1
        elseif c == "'" or c == '"' then
            local j, buf = i + 1, {}
            while j <= n and q:sub(j, j) ~= c do
                if q:sub(j, j) == "\\" then j = j + 1 end
                buf[#buf + 1] = q:sub(j, j)
                j = j + 1
            end
            if j > n then return nil, "unterminated string literal", i end
            toks[#toks + 1] = { k = "str", v = table.concat(buf), pos = i }
            i = j + 1
        elseif c:match("[%a_]") then
            local s, e = q:find("^[%w_%.]+", i)
            local word = q:sub(s, e)
            if (word == "in" or word == "has" or word == "contains" or word == "startswith" or
                word == "endswith") and q:sub(e + 1, e + 1) == "~" then
                word, e = word .. "~", e + 1
            end
            toks[#toks + 1] = { k = "id", v = word, pos = i }
            i = e + 1
        elseif c:match("%d") then
            local s, e = q:find("^%d+%.?%d*", i)
            toks[#toks + 1] = { k = "num", v = tonumber(q:sub(s, e)), pos = i }
            i = e + 1
        else
            local op
            for _, o in ipairs(OPS3) do
                if q:sub(i, i + #o - 1) == o then op = o break end
            end
            if op == "!in" or op == "!in~" then
                -- "!in" must not run into an identifier ("!inner" is not an operator).
                if q:sub(i + #op, i + #op):match("[%w_]") then op = nil end
            end
            if not op and OPS1[c] then op = c end
            if not op and c == "!" then
                local s, e = q:find("^![%a]+~?", i)
                if s then op = q:sub(s, e) end
            end
            if not op then return nil, "unexpected character '" .. c .. "'", i end
            toks[#toks + 1] = { k = "op", v = op, pos = i }
            i = i + #op
        end
    end
    return toks
end


local Parser = {}
Parser.__index = Parser


local function parse_error(p, msg)
    local t = p.toks[p.i]
    error({ kql = true, message = msg, pos = t and t.pos or (#p.q + 1),
        token = t and tostring(t.v) or "<EOF>" }, 0)
end


function Parser:peek(k, v)
    local t = self.toks[self.i]
    if not t then return nil end
    if k and t.k ~= k then return nil end
    if v and (type(t.v) ~= "string" or t.v:lower() ~= v) then return nil end
    return t
end


function Parser:take(k, v)
    local t = self:peek(k, v)
    if t then self.i = self.i + 1 end
    return t
end


function Parser:need(k, v, what)
    return self:take(k, v) or parse_error(self, "expected " .. (what or v or k))
end


local CMP = { ["=="] = true, ["!="] = true, ["=~"] = true, ["!~"] = true, ["<"] = true,
    [">"] = true, ["<="] = true, [">="] = true, ["in"] = true, ["in~"] = true, ["!in"] = true,
    ["!in~"] = true, contains = true, ["contains~"] = true, ["!contains"] = true,
    has = true, ["!has"] = true, startswith = true, ["!startswith"] = true, endswith = true,
    ["!endswith"] = true }


function Parser:value()
    local t = self:take("str") or self:take("num")
    if t then return { lit = t.v } end
    local id = self:take("id")
    if id then
        if id.v == "true" or id.v == "false" then return { lit = id.v == "true" } end
        return { field = id.v }
    end
    parse_error(self, "expected a value")
end


function Parser:factor()
    if self:take("op", "(") then
        local e = self:expr()
        self:need("op", ")", "')'")
        return e
    end
    local id = self:peek("id")
    if id and (id.v == "not" or id.v == "isempty" or id.v == "isnotempty" or
        id.v == "isnull" or id.v == "isnotnull") and self.toks[self.i + 1] and
        self.toks[self.i + 1].v == "(" then
        self.i = self.i + 2
        local e = id.v == "not" and self:expr() or self:value()
        self:need("op", ")", "')'")
        return { fn = id.v, arg = e }
    end
    local left = self:value()
    local opt = self.toks[self.i]
    if not opt or not CMP[opt.v] then parse_error(self, "expected a comparison operator") end
    self.i = self.i + 1
    local op = opt.v
    if op == "in" or op == "in~" or op == "!in" or op == "!in~" then
        self:need("op", "(", "'('")
        local list = {}
        repeat
            list[#list + 1] = self:value()
        until not self:take("op", ",")
        self:need("op", ")", "')'")
        return { op = op, left = left, list = list }
    end
    return { op = op, left = left, right = self:value() }
end


function Parser:term()
    local e = self:factor()
    while self:take("id", "and") do
        e = { op = "and", a = e, b = self:factor() }
    end
    return e
end


function Parser:expr()
    local e = self:term()
    while self:take("id", "or") do
        e = { op = "or", a = e, b = self:term() }
    end
    return e
end


function Parser:column_list()
    local cols = {}
    repeat
        local a = self:need("id", nil, "a column name")
        if self:take("op", "=") then
            local f = self:need("id", nil, "a column name")
            cols[#cols + 1] = { name = a.v, field = f.v }
        else
            cols[#cols + 1] = { name = a.v:match("([^%.]+)$"), field = a.v }
        end
    until not self:take("op", ",")
    return cols
end


function Parser:stage()
    local kw = self:need("id", nil, "an operator after '|'")
    local w = kw.v:lower()
    if w == "where" then
        return { op = "where", expr = self:expr() }
    elseif w == "project" then
        return { op = "project", cols = self:column_list() }
    elseif w == "order" or w == "sort" then
        self:need("id", "by", "'by'")
        local keys = {}
        repeat
            local f = self:need("id", nil, "a column name")
            local dir = "desc"
            if self:take("id", "asc") then dir = "asc" elseif self:take("id", "desc") then dir = "desc" end
            keys[#keys + 1] = { field = f.v, dir = dir }
        until not self:take("op", ",")
        return { op = "order", keys = keys }
    elseif w == "limit" or w == "take" then
        return { op = "limit", n = self:need("num", nil, "a number").v }
    elseif w == "top" then
        local n = self:need("num", nil, "a number").v
        self:need("id", "by", "'by'")
        local f = self:need("id", nil, "a column name")
        local dir = "desc"
        if self:take("id", "asc") then dir = "asc" elseif self:take("id", "desc") then dir = "desc" end
        return { op = "top", n = n, keys = { { field = f.v, dir = dir } } }
    elseif w == "count" then
        return { op = "count" }
    elseif w == "distinct" then
        return { op = "distinct", cols = self:column_list() }
    elseif w == "summarize" then
        local alias = "count_"
        local a = self:peek("id")
        if a and self.toks[self.i + 1] and self.toks[self.i + 1].v == "=" then
            alias = a.v
            self.i = self.i + 2
        end
        local f = self:need("id", nil, "count()")
        if f.v ~= "count" then parse_error(self, "only count() is supported in summarize") end
        self:need("op", "(", "'('")
        self:need("op", ")", "')'")
        local by = {}
        if self:take("id", "by") then by = self:column_list() end
        return { op = "summarize", alias = alias, by = by }
    end
    self.i = self.i - 1
    parse_error(self, "unsupported operator '" .. kw.v .. "'")
end


--- Parses a query. Returns {table = "resources" | "resourcecontainers", stages = {...}} or
-- nil and an error {message, pos, token}.
function M.parse(q)
    local toks, msg, pos = tokenize(q)
    if not toks then
        return nil, { message = msg, pos = pos, token = q:sub(pos, pos) }
    end
    local p = setmetatable({ toks = toks, i = 1, q = q }, Parser)
    local ok, res = pcall(function()
        local tbl = p:need("id", nil, "a table name")
        local name = tbl.v:lower()
        if name ~= "resources" and name ~= "resourcecontainers" then
            p.i = p.i - 1
            parse_error(p, "unknown table '" .. tbl.v .. "'")
        end
        local stages = {}
        while p:take("op", "|") do
            stages[#stages + 1] = p:stage()
        end
        if p.toks[p.i] then parse_error(p, "unexpected token") end
        return { table = name, stages = stages }
    end)
    if ok then return res end
    if type(res) == "table" and res.kql then return nil, res end
    error(res, 0)
end


local function get_field(row, path)
    local v = row
    for part in path:gmatch("[^%.]+") do
        if type(v) ~= "table" then return nil end
        local nv = v[part]
        if nv == nil then
            -- Column names are case-insensitive in ARG for the top-level columns.
            for k, x in pairs(v) do
                if type(k) == "string" and k:lower() == part:lower() then nv = x break end
            end
        end
        v = nv
    end
    if v == NULL then return nil end
    return v
end


local function operand(row, v)
    if v.field then return get_field(row, v.field) end
    return v.lit
end


local function eval(e, row)
    local op = e.op
    if op == "and" then return eval(e.a, row) and eval(e.b, row) end
    if op == "or" then return eval(e.a, row) or eval(e.b, row) end
    if e.fn then
        if e.fn == "not" then return not eval(e.arg, row) end
        local v = operand(row, e.arg)
        local empty = v == nil or v == ""
        if e.fn == "isempty" or e.fn == "isnull" then return empty end
        return not empty
    end
    local a = operand(row, e.left)
    if e.list then
        local ci = op:sub(-1) == "~"
        local found = false
        for _, item in ipairs(e.list) do
            local b = operand(row, item)
            if a == b or (ci and lower(a) == lower(b)) then found = true break end
        end
        if op:sub(1, 1) == "!" then return not found end
        return found
    end
    local b = operand(row, e.right)
    if op == "==" then return a == b end
    if op == "!=" then return a ~= b end
    if op == "=~" then return lower(a) == lower(b) end
    if op == "!~" then return lower(a) ~= lower(b) end
    if type(a) == "number" and type(b) == "number" then
        if op == "<" then return a < b end
        if op == ">" then return a > b end
        if op == "<=" then return a <= b end
        if op == ">=" then return a >= b end
    end
    local sa, sb = tostring(lower(a) or ""), tostring(lower(b) or "")
    local neg = op:sub(1, 1) == "!"
    local base = neg and op:sub(2) or op
    local r
    if base == "contains" or base == "contains~" or base == "has" then
        r = sa:find(sb, 1, true) ~= nil
    elseif base == "startswith" then
        r = sa:sub(1, #sb) == sb
    elseif base == "endswith" then
        r = #sb == 0 or sa:sub(-#sb) == sb
    else
        r = false
    end
    if neg then return not r end
    return r
end


local function compare_values(a, b)
    if a == nil then return b ~= nil end
    if b == nil then return false end
    if type(a) == "number" and type(b) == "number" then return a < b end
    return tostring(a) < tostring(b)
end


local function sort_rows(rows, keys)
    -- A stable sort: remember the input position for ties.
    for i, r in ipairs(rows) do r.row.__pos = i end
    table.sort(rows, function(x, y)
        for _, k in ipairs(keys) do
            local a, b = get_field(x.row, k.field), get_field(y.row, k.field)
            if a ~= b then
                if k.dir == "asc" then return compare_values(a, b) end
                return compare_values(b, a)
            end
        end
        return x.row.__pos < y.row.__pos
    end)
    for _, r in ipairs(rows) do r.row.__pos = nil end
end


--- Runs a parsed query over rows (ARG row tables). Returns the result rows and their column
-- names, in order.
function M.run(query, rows)
    local cur = {}
    for i, r in ipairs(rows) do cur[i] = { row = r } end
    local cols = { "id", "name", "type", "tenantId", "kind", "location", "resourceGroup",
        "subscriptionId", "managedBy", "sku", "plan", "properties", "tags", "identity", "zones",
        "extendedLocation" }
    for _, st in ipairs(query.stages) do
        if st.op == "where" then
            local keep = {}
            for _, r in ipairs(cur) do
                if eval(st.expr, r.row) then keep[#keep + 1] = r end
            end
            cur = keep
        elseif st.op == "project" or st.op == "distinct" then
            local out, seen = {}, {}
            cols = {}
            for _, c in ipairs(st.cols) do cols[#cols + 1] = c.name end
            for _, r in ipairs(cur) do
                local nr = {}
                for _, c in ipairs(st.cols) do
                    local v = get_field(r.row, c.field)
                    if v == nil then v = NULL end
                    nr[c.name] = v
                end
                if st.op == "distinct" then
                    local key = json.encode(nr, { sort_keys = true })
                    if not seen[key] then
                        seen[key] = true
                        out[#out + 1] = { row = nr }
                    end
                else
                    out[#out + 1] = { row = nr }
                end
            end
            cur = out
        elseif st.op == "order" then
            sort_rows(cur, st.keys)
        elseif st.op == "limit" then
            for i = #cur, st.n + 1, -1 do cur[i] = nil end
        elseif st.op == "top" then
            sort_rows(cur, st.keys)
            for i = #cur, st.n + 1, -1 do cur[i] = nil end
        elseif st.op == "count" then
            cur = { { row = { Count = #cur } } }
            cols = { "Count" }
        elseif st.op == "summarize" then
            local groups, order = {}, {}
            for _, r in ipairs(cur) do
                local key, vals = {}, {}
                for i, c in ipairs(st.by) do
                    local v = get_field(r.row, c.field)
                    vals[i] = v == nil and NULL or v
                    key[i] = json.encode(vals[i])
                end
                local k = table.concat(key, "\0")
                if not groups[k] then
                    groups[k] = { vals = vals, n = 0 }
                    order[#order + 1] = k
                end
                groups[k].n = groups[k].n + 1
            end
            cur, cols = {}, {}
            for _, c in ipairs(st.by) do cols[#cols + 1] = c.name end
            cols[#cols + 1] = st.alias
            for _, k in ipairs(order) do
                local nr = {}
                for i, c in ipairs(st.by) do nr[c.name] = groups[k].vals[i] end
                nr[st.alias] = groups[k].n
                cur[#cur + 1] = { row = nr }
            end
        end
    end
    local out = {}
    for i, r in ipairs(cur) do out[i] = r.row end
    return out, cols
end

return M

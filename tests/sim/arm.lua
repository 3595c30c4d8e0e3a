-- The simulated Azure Resource Manager: subscriptions, tenants, resource providers, resource
-- groups, AKS managed clusters and their credentials, role assignments and definitions, the
-- listing calls of every resource type the scenario holds, Resource Graph and Cost Management.
--
-- Every route checks the bearer token (ARM audiences), the api-version, and the caller's role
-- assignments the way ARM does, and answers with ARM's envelopes and headers. Role assignments
-- and provider registrations are module state: copied from the scenario and restored by
-- POST /_sim/reset. Resource shapes live in arm_resources.lua.
local crypto = require "aurora.crypto"
local json = require "aurora.json"
local jwt = require "aurora.jwt"
local secret = require "aurora.secret"
local time = require "aurora.time"
local resources = require "arm_resources"
local sim = require "sim"
local tokens = require "tokens"

local M = {}

local array = json.array
local NULL = json.null

local AUDIENCES = {
    "https://management.azure.com/", "https://management.azure.com",
    "https://management.core.windows.net/", "https://management.core.windows.net",
}

-- The AKS AAD server and client applications, the same in every cloud.
local AKS_SERVER_APP = "6dae42f8-4368-4678-94ff-3960e28e3630"
local AKS_CLIENT_APP = "80faf920-1908-4b52-b5ef-a8e7bedfc67a"

-- Built-in role definitions: the permissions ARM evaluates (a subset of the real lists, enough
-- for the actions the simulator knows).
local ROLES = {
    { name = "Owner", id = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635",
      description = "Grants full access to manage all resources, including the ability to " ..
          "assign roles in Azure RBAC.",
      actions = { "*" } },
    { name = "Contributor", id = "b24988ac-6180-42a0-ab88-20f7382dd24c",
      description = "Grants full access to manage all resources, but does not allow you to " ..
          "assign roles in Azure RBAC, manage assignments in Azure Blueprints, or share image " ..
          "galleries.",
      actions = { "*" },
      not_actions = { "Microsoft.Authorization/*/Delete", "Microsoft.Authorization/*/Write",
          "Microsoft.Authorization/elevateAccess/Action",
          "Microsoft.Blueprint/blueprintAssignments/write",
          "Microsoft.Blueprint/blueprintAssignments/delete",
          "Microsoft.Compute/galleries/share/action" } },
    { name = "Reader", id = "acdd72a7-3385-48ef-bd42-f606fba81ae7",
      description = "View all resources, but does not allow you to make any changes.",
      actions = { "*/read" } },
    { name = "User Access Administrator", id = "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9",
      description = "Lets you manage user access to Azure resources.",
      actions = { "*/read", "Microsoft.Authorization/*", "Microsoft.Support/*" } },
    { name = "Azure Kubernetes Service Cluster Admin Role",
      id = "0ab0b1a8-8aac-4efd-b8c2-3ee1fb270be8",
      description = "List cluster admin credential action.",
      actions = { "Microsoft.ContainerService/managedClusters/listClusterAdminCredential/action",
          "Microsoft.ContainerService/managedClusters/accessProfiles/listCredential/action",
          "Microsoft.ContainerService/managedClusters/read",
          "Microsoft.ContainerService/managedClusters/runcommand/action" } },
    { name = "Azure Kubernetes Service Cluster User Role",
      id = "4abbcc35-e782-43d8-92c5-2d3f1bd2253f",
      description = "List cluster user credential action.",
      actions = { "Microsoft.ContainerService/managedClusters/listClusterUserCredential/action",
          "Microsoft.ContainerService/managedClusters/read" } },
    { name = "Azure Kubernetes Service RBAC Cluster Admin",
      id = "b1ff04bb-8a4e-4dc4-8eb5-8693973ce19b",
      description = "Lets you manage all resources in the cluster.",
      actions = { "Microsoft.Authorization/*/read",
          "Microsoft.Resources/subscriptions/operationresults/read",
          "Microsoft.Resources/subscriptions/read",
          "Microsoft.Resources/subscriptions/resourceGroups/read",
          "Microsoft.ContainerService/managedClusters/listClusterUserCredential/action" },
      data_actions = { "Microsoft.ContainerService/managedClusters/*" } },
    { name = "Cost Management Reader", id = "72fafb9e-0641-4937-9268-a91bfd8191a3",
      description = "Can view cost data and configuration (e.g. budgets, exports)",
      actions = { "Microsoft.Consumption/*/read", "Microsoft.CostManagement/*/read",
          "Microsoft.Billing/billingPeriods/read", "Microsoft.Resources/subscriptions/read",
          "Microsoft.Resources/subscriptions/resourceGroups/read", "Microsoft.Support/*",
          "Microsoft.Management/managementGroups/read" } },
}

local ROLE_BY_NAME, ROLE_BY_ID = {}, {}
for _, r in ipairs(ROLES) do
    ROLE_BY_NAME[r.name:lower()] = r
    ROLE_BY_ID[r.id] = r
end

-- Resource providers every subscription knows. state: the initial registration state;
-- free: RegistrationFree providers, always Registered.
local LOCATIONS = { "East US", "East US 2", "West US 2", "West Europe", "North Europe",
    "Southeast Asia" }
local PROVIDERS = {
    { ns = "Microsoft.ContainerService", types = { "managedClusters", "locations",
        "operations", "managedClusters/agentPools" } },
    { ns = "Microsoft.Compute", types = { "virtualMachines", "virtualMachineScaleSets", "disks",
        "locations", "operations" } },
    { ns = "Microsoft.Network", types = { "virtualNetworks", "networkSecurityGroups",
        "networkInterfaces", "publicIPAddresses", "loadBalancers" } },
    { ns = "Microsoft.Storage", types = { "storageAccounts", "operations" } },
    { ns = "Microsoft.Sql", types = { "servers", "servers/databases", "operations" } },
    { ns = "Microsoft.Web", types = { "sites", "serverFarms", "operations" } },
    { ns = "Microsoft.ContainerInstance", types = { "containerGroups", "operations" } },
    { ns = "Microsoft.ResourceGraph", types = { "resources", "operations" } },
    { ns = "Microsoft.CostManagement", types = { "query", "exports", "operations" } },
    { ns = "Microsoft.KeyVault", types = { "vaults", "operations" }, state = "NotRegistered" },
    { ns = "Microsoft.ManagedIdentity", types = { "userAssignedIdentities" },
      state = "NotRegistered" },
    { ns = "Microsoft.OperationalInsights", types = { "workspaces" }, state = "NotRegistered" },
    { ns = "Microsoft.Insights", types = { "components", "metrics", "diagnosticSettings" },
      state = "NotRegistered" },
    { ns = "Microsoft.Authorization", types = { "roleAssignments", "roleDefinitions",
        "permissions" }, free = true },
    { ns = "Microsoft.Resources", types = { "resourceGroups", "subscriptions", "tenants",
        "deployments" }, free = true },
}
local PROVIDER_BY_NS = {}
for _, p in ipairs(PROVIDERS) do PROVIDER_BY_NS[p.ns:lower()] = p end

-- ---- module state (restored on reset) --------------------------------------------------------

local state = {}


local function lower(s)
    return type(s) == "string" and s:lower() or s
end


local function reset_state()
    local s = sim.scenario
    state.assignments = {}
    for i, a in ipairs(s.role_assignments) do
        local role = ROLE_BY_NAME[lower(a.role)] or ROLE_BY_ID[a.role]
        assert(role, "scenario role assignment with unknown role " .. tostring(a.role))
        state.assignments[i] = {
            name = a.id or resources.stable_guid("ra:" .. a.principal .. a.role .. a.scope),
            principal = a.principal, role = role.id, scope = a.scope,
            principal_type = a.principal_type or "ServicePrincipal", created = os.time() - 86400,
        }
    end
    state.providers = {}
    state.rate = {}
    state.arg_quota = {}
    state.cost_calls = {}
    state.records = nil
    state.subs = {}
    for _, sub in ipairs(s.subscriptions) do state.subs[sub.id:lower()] = sub end
    state.rgs = {}
    for _, rg in ipairs(s.resource_groups) do
        state.rgs[#state.rgs + 1] = { sub = rg.subscription, name = rg.name,
            location = rg.location, tags = rg.tags, managed_by = rg.managed_by }
    end
    if s.node_resource_groups ~= false then
        for _, c in ipairs(s.clusters) do
            state.rgs[#state.rgs + 1] = { sub = c.subscription,
                name = "MC_" .. c.resource_group .. "_" .. c.name .. "_" .. c.location,
                location = c.location, tags = { ["aks-managed-cluster-name"] = c.name,
                    ["aks-managed-cluster-rg"] = c.resource_group },
                managed_by = "/subscriptions/" .. c.subscription .. "/resourcegroups/" ..
                    c.resource_group .. "/providers/Microsoft.ContainerService/managedClusters/" ..
                    c.name }
        end
    end
end

sim.on_reset(reset_state)
if sim.scenario then reset_state() end


-- All resource records (built once: the scenario's resources do not change).
local function records()
    if not state.records then
        state.records = resources.build(sim.scenario)
    end
    return state.records
end


-- ---- errors, headers, the request wrapper ----------------------------------------------------

--- Raises an ARM error answered by the route wrapper: {"error":{"code","message",...}}.
local function fail(status, code, message, extra)
    error({ arm = true, status = status, code = code, message = message, extra = extra }, 0)
end


local function error_body(e)
    local err = { code = e.code, message = e.message }
    for k, v in pairs(e.extra or {}) do
        if k ~= "headers" then err[k] = v end
    end
    return { error = err }
end


local function scope_covers(outer, inner)
    outer = lower(outer):gsub("/+$", "")
    inner = lower(inner):gsub("/+$", "")
    return outer == "" or inner == outer or inner:sub(1, #outer + 1) == outer .. "/"
end


local function action_matches(pattern, action)
    local p = "^" .. lower(pattern):gsub("[%^%$%(%)%%%.%[%]%+%-%?]", "%%%0"):gsub("%*", ".*") ..
        "$"
    return lower(action):match(p) ~= nil
end


local function role_allows(role, action)
    local ok = false
    for _, a in ipairs(role.actions or {}) do
        if action_matches(a, action) then ok = true break end
    end
    if not ok then return false end
    for _, a in ipairs(role.not_actions or {}) do
        if action_matches(a, action) then return false end
    end
    return true
end


local function fmt_time(t)
    local d = os.date("!*t", t)
    local h = d.hour % 12
    if h == 0 then h = 12 end
    return string.format("%d/%d/%d %d:%02d:%02d %s", d.month, d.day, d.year, h, d.min, d.sec,
        d.hour < 12 and "AM" or "PM")
end


local function www_authenticate(ctx_tenant, error_code, description)
    return string.format('Bearer authorization_uri="https://login.windows.net/%s", ' ..
        'error="%s", error_description="%s"', ctx_tenant or "common", error_code, description)
end


-- Checks the bearer token; fills ctx.claims, ctx.oid, ctx.appid, ctx.tid or raises a 401.
local function authenticate(req, ctx)
    local claims, why = tokens.check(req, AUDIENCES)
    if claims then
        ctx.claims, ctx.oid, ctx.tid = claims, claims.oid, claims.tid
        ctx.appid = claims.appid or claims.azp or claims.oid
        return
    end
    local tenant = sim.scenario.default and sim.scenario.default.tenant
    local h = req.headers.authorization
    if not h or h == "" then
        fail(401, "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is missing.",
            { headers = { ["WWW-Authenticate"] = www_authenticate(tenant, "invalid_token",
                "The authentication failed because of missing 'Authorization' header.") } })
    end
    local token = h:match("^[Bb]earer%s+(%S+)$")
    if not token then
        fail(401, "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is provided in an invalid format.",
            { headers = { ["WWW-Authenticate"] = www_authenticate(tenant, "invalid_token",
                "The authentication failed because of invalid 'Authorization' header.") } })
    end
    local _, c = jwt.decode(token)
    if why == "expired" and type(c) == "table" and math.type(c.exp) then
        local msg = string.format("The access token expiry UTC time '%s' is earlier than " ..
            "current UTC time '%s'.", fmt_time(c.exp), fmt_time(os.time()))
        fail(401, "ExpiredAuthenticationToken", msg, { headers = { ["WWW-Authenticate"] =
            www_authenticate(c.tid or tenant, "invalid_token", msg) } })
    end
    if type(c) == "table" and type(c.aud) == "string" and tokens.check(req, { c.aud }) then
        -- A genuine token, obtained for another resource.
        local msg = "The access token has been obtained for wrong audience or resource '" ..
            c.aud .. "'. It should exactly match with one of the allowed audiences '" ..
            table.concat(AUDIENCES, "','") .. "'."
        fail(401, "InvalidAuthenticationTokenAudience", msg, { headers = { ["WWW-Authenticate"] =
            www_authenticate(c.tid or tenant, "invalid_token", msg) } })
    end
    fail(401, "InvalidAuthenticationToken", "The access token is invalid.",
        { headers = { ["WWW-Authenticate"] = www_authenticate(tenant, "invalid_token",
            "The access token is invalid.") } })
end


local function check_api_version(req)
    local v = req.query["api-version"]
    if not v or v == "" then
        fail(400, "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.")
    end
    if not (v:match("^%d%d%d%d%-%d%d%-%d%d$") or v:match("^%d%d%d%d%-%d%d%-%d%d%-%a+$") or
            v:match("^%d+%.%d+$")) then
        fail(400, "InvalidApiVersionParameter", "The api-version '" .. v .. "' is invalid. " ..
            "The supported versions are '2024-11-01,2024-07-01,2024-03-01,2023-07-01," ..
            "2022-12-01,2022-09-01,2021-04-01,2021-01-01,2020-01-01,2019-11-01,2019-06-01," ..
            "2016-06-01,2015-11-01,2015-01-01'.")
    end
end


-- The remaining-requests headers: a budget per principal and kind that refills every hour.
local BUDGET = { ["subscription-reads"] = 12000, ["subscription-writes"] = 1200,
    ["tenant-reads"] = 12000, ["tenant-writes"] = 1200 }


local function remaining(ctx, kind)
    local key = (ctx.oid or "-") .. "|" .. kind
    local now = os.time()
    local r = state.rate[key]
    if not r or now - r.start >= 3600 then
        r = { start = now, used = 0 }
        state.rate[key] = r
    end
    r.used = r.used + 1
    return math.max(BUDGET[kind] - r.used, 0)
end


local function traceback(e)
    if type(e) == "table" then return e end
    return debug.traceback(tostring(e), 2)
end


--- Adds an ARM route: counted by sim.add, authenticated (unless opts.anonymous), api-version
-- checked, errors turned into ARM envelopes and the common headers added. The handler is
-- called as handler(req, ctx) and returns status, body, headers.
local function route(routes, key, handler, opts)
    opts = opts or {}
    local method = key:match("^(%u+) ")
    local write = method ~= "GET" and method ~= "HEAD" and not opts.read
    sim.add(routes, "arm", key, function(req)
        local ctx = { request_id = sim.uuid(),
            correlation_id = req.headers["x-ms-correlation-request-id"] or sim.uuid() }
        local ok, status, body, headers = xpcall(function()
            if not opts.anonymous then authenticate(req, ctx) end
            check_api_version(req)
            return handler(req, ctx)
        end, traceback)
        if not ok then
            local e = status
            if type(e) ~= "table" or not e.arm then
                error(e, 0)
            end
            status, body = e.status, error_body(e)
            headers = (e.extra and e.extra.headers) or {}
        end
        headers = headers or {}
        headers["x-ms-request-id"] = ctx.request_id
        headers["x-ms-correlation-request-id"] = ctx.correlation_id
        headers["x-ms-routing-request-id"] = "EASTUS:" .. os.date("!%Y%m%dT%H%M%SZ") .. ":" ..
            ctx.request_id
        headers["Cache-Control"] = headers["Cache-Control"] or "no-cache"
        headers["Pragma"] = "no-cache"
        headers["Expires"] = "-1"
        headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
        headers["X-Content-Type-Options"] = "nosniff"
        if ctx.oid then
            local kind = (opts.tenant and "tenant-" or "subscription-") ..
                (write and "writes" or "reads")
            headers["x-ms-ratelimit-remaining-" .. kind] = tostring(remaining(ctx, kind))
        end
        if status == 204 then
            return 204, nil, headers
        end
        return sim.json(status, body, headers)
    end)
end


-- ---- authorization -------------------------------------------------------------------------

local function subscription_of(id)
    local s = state.subs[lower(id)]
    if not s or s.state == "Deleted" then
        fail(404, "SubscriptionNotFound", "The subscription '" .. id .. "' could not be found.")
    end
    return s
end


-- Role assignments of the caller that cover scope (at or above it).
local function roles_at(ctx, scope)
    local out = {}
    for _, a in ipairs(state.assignments) do
        if a.principal == ctx.oid and scope_covers(a.scope, scope) then
            out[#out + 1] = ROLE_BY_ID[a.role]
        end
    end
    return out
end


-- True when the caller has any assignment at, above or below scope (ARM then shows the
-- subscription and filters lists by what is readable).
local function has_any_below(ctx, scope)
    for _, a in ipairs(state.assignments) do
        if a.principal == ctx.oid and (scope_covers(a.scope, scope) or
            scope_covers(scope, a.scope)) then
            return true
        end
    end
    return false
end


local function allowed(ctx, scope, action)
    for _, role in ipairs(roles_at(ctx, scope)) do
        if role and role_allows(role, action) then return true end
    end
    return false
end


local function deny(ctx, scope, action)
    fail(403, "AuthorizationFailed", string.format("The client '%s' with object id '%s' does " ..
        "not have authorization to perform action '%s' over scope '%s' or the scope is " ..
        "invalid. If access was recently granted, please refresh your credentials.",
        ctx.appid or ctx.oid, ctx.oid, action, scope))
end


--- The subscription of a subscription-scoped request, after checking that it exists, that the
-- token's tenant owns it, that the caller may perform action at scope, and that a disabled
-- subscription is not written to. kind: "read" (default) or "write".
local function authorize(ctx, sub_id, scope, action, kind)
    local sub = subscription_of(sub_id)
    if ctx.tid and sub.tenant and ctx.tid ~= sub.tenant then
        fail(401, "InvalidAuthenticationTokenTenant", "The access token is from the wrong " ..
            "issuer 'https://sts.windows.net/" .. ctx.tid .. "/'. It must match the tenant " ..
            "'https://sts.windows.net/" .. sub.tenant .. "/' associated with this " ..
            "subscription. Please use the authority (URL) 'https://login.windows.net/" ..
            sub.tenant .. "' to get the token. Note, if the subscription is transferred to " ..
            "another tenant there is no impact to the services, but information about new " ..
            "tenant could take time to propagate (up to an hour). If you just transferred " ..
            "your subscription and see this error message, please try back later.")
    end
    if not allowed(ctx, scope, action) then
        deny(ctx, scope, action)
    end
    if kind == "write" and sub.state == "Disabled" then
        fail(409, "ReadOnlyDisabledSubscription", "The subscription '" .. sub.id .. "' is " ..
            "disabled and therefore marked as read only. You cannot perform any write actions " ..
            "on this subscription until it is re-enabled.")
    end
    return sub
end


-- For list calls at subscription scope: the caller needs an assignment somewhere in the
-- subscription; items are then filtered by readability.
local function authorize_list(ctx, sub_id, scope, action)
    local sub = subscription_of(sub_id)
    if ctx.tid and sub.tenant and ctx.tid ~= sub.tenant then
        authorize(ctx, sub_id, scope, action)
    end
    if not has_any_below(ctx, scope) then
        deny(ctx, scope, action)
    end
    return sub
end


--- What the caller may read with action (default "*/read"), worked out once from its role
-- assignments: a function (sub, rg, id) -> boolean that answers as allowed(ctx, id, action)
-- does for a resource id under /subscriptions/sub/resourceGroups/rg (id nil for the group
-- itself, rg nil for the subscription). Assignments at the root, a subscription or a resource
-- group become table lookups; any other scope (a single resource) is checked with scope_covers.
-- Lists and Resource Graph call it once per request instead of walking every assignment per
-- item (which took about a second per Resource Graph page at 10,000 resources).
local function read_filter(ctx, action)
    action = action or "*/read"
    local all, subs, rgs, others = false, {}, {}, {}
    for _, a in ipairs(state.assignments) do
        local role = ROLE_BY_ID[a.role]
        if a.principal == ctx.oid and role and role_allows(role, action) then
            local scope = lower(a.scope):gsub("/+$", "")
            local s, g = scope:match("^/subscriptions/([^/]+)/resourcegroups/([^/]+)$")
            if scope == "" then
                all = true
            elseif s then
                rgs[s .. "/" .. g] = true
            elseif scope:match("^/subscriptions/[^/]+$") then
                subs[scope:sub(16)] = true
            else
                others[#others + 1] = scope
            end
        end
    end
    return function(sub, rg, id)
        if all then return true end
        sub = lower(sub)
        if subs[sub] then return true end
        if rg and rgs[sub .. "/" .. lower(rg)] then return true end
        if id then
            for _, scope in ipairs(others) do
                if scope_covers(scope, id) then return true end
            end
        end
        return false
    end
end


-- ---- paging --------------------------------------------------------------------------------

local function urlencode(s)
    return (tostring(s):gsub("[^%w%-%._~%$]", function(c)
        return string.format("%%%02X", c:byte())
    end))
end


local function page_size()
    local n = tonumber(sim.knobs.page_size)
    if n and n >= 1 then return math.floor(n) end
    return 100
end


local function skip_offset(req)
    local tok = req.query["$skiptoken"] or req.query["$skipToken"]
    if not tok or tok == "" then return 0 end
    local raw = crypto.b64url_decode(tok)
    local n = raw and raw:match("^offset=(%d+)$")
    if not n then
        fail(400, "InvalidSkipToken", "The provided skip token '" .. tok .. "' is not valid.")
    end
    return tonumber(n)
end


local function skip_token(offset)
    return crypto.b64url_encode("offset=" .. offset)
end


-- The absolute URL of the same request at offset (query kept, skip token replaced).
local function next_link(req, offset)
    local path = (req.raw_path or req.path):gsub("//+", "/")
    local names = {}
    for k in pairs(req.query) do
        if k ~= "$skiptoken" and k ~= "$skipToken" then names[#names + 1] = k end
    end
    table.sort(names, function(a, b)
        if a == "api-version" then return b ~= "api-version" end
        if b == "api-version" then return false end
        return a < b
    end)
    local q = {}
    for _, k in ipairs(names) do q[#q + 1] = urlencode(k) .. "=" .. urlencode(req.query[k]) end
    q[#q + 1] = "$skiptoken=" .. skip_token(offset)
    return sim.config.urls.arm .. path .. "?" .. table.concat(q, "&")
end


--- A list answer {"value":[...], "nextLink": ...} for the page the request asks for.
local function page(req, items, extra)
    local size, offset = page_size(), skip_offset(req)
    local out = array {}
    for i = offset + 1, math.min(#items, offset + size) do out[#out + 1] = items[i] end
    local body = { value = out }
    for k, v in pairs(extra or {}) do body[k] = v end
    if offset + size < #items then
        body.nextLink = next_link(req, offset + size)
    end
    return 200, body
end


-- ---- subscriptions, tenants, locations -------------------------------------------------------

local function subscription_json(s)
    return {
        id = "/subscriptions/" .. s.id, authorizationSource = "RoleBased",
        managedByTenants = array {}, subscriptionId = s.id, tenantId = s.tenant,
        displayName = s.name, state = s.state or "Enabled",
        subscriptionPolicies = { locationPlacementId = "Public_2014-09-01",
            quotaId = s.quota_id or "PayAsYouGo_2014-09-01", spendingLimit = "Off" },
        tags = s.tags,
    }
end


local function visible_subscriptions(ctx)
    local out = {}
    for _, s in ipairs(sim.scenario.subscriptions) do
        if s.state ~= "Deleted" and (not ctx.tid or not s.tenant or s.tenant == ctx.tid) and
            has_any_below(ctx, "/subscriptions/" .. s.id) then
            out[#out + 1] = s
        end
    end
    return out
end


local function list_subscriptions(req, ctx)
    local items = {}
    for _, s in ipairs(visible_subscriptions(ctx)) do items[#items + 1] = subscription_json(s) end
    return page(req, items, { count = { type = "Total", value = #items } })
end


local function get_subscription(req, ctx)
    local s = subscription_of(req.params.sub)
    if (ctx.tid and s.tenant and s.tenant ~= ctx.tid) or
        not has_any_below(ctx, "/subscriptions/" .. s.id) then
        fail(404, "SubscriptionNotFound", "The subscription '" .. req.params.sub ..
            "' could not be found.")
    end
    return 200, subscription_json(s)
end


local function list_tenants(req, ctx)
    local items = {}
    local t = sim.scenario.by_tenant[ctx.tid]
    if t then
        items[1] = { id = "/tenants/" .. t.id, tenantId = t.id, countryCode = "US",
            displayName = t.name, domains = array { t.domain }, tenantCategory = "Home",
            defaultDomain = t.domain, tenantType = "AAD" }
    end
    return page(req, items)
end


local REGIONS = {
    { "eastus", "East US", "US", "-79.8164", "37.3719" },
    { "eastus2", "East US 2", "US", "-78.3889", "36.6681" },
    { "westus2", "West US 2", "US", "-119.852", "47.233" },
    { "westeurope", "West Europe", "Europe", "4.9", "52.3667" },
    { "northeurope", "North Europe", "Europe", "-6.2597", "53.3478" },
    { "southeastasia", "Southeast Asia", "Asia Pacific", "103.833", "1.283" },
}


local function list_locations(req, ctx)
    local sub = req.params.sub
    authorize_list(ctx, sub, "/subscriptions/" .. sub, "Microsoft.Resources/subscriptions/read")
    local items = {}
    for _, r in ipairs(REGIONS) do
        items[#items + 1] = { id = "/subscriptions/" .. sub .. "/locations/" .. r[1], name = r[1],
            type = "Region", displayName = r[2], regionalDisplayName = "(" .. r[3] .. ") " .. r[2],
            metadata = { regionType = "Physical", regionCategory = "Recommended",
                geographyGroup = r[3], longitude = r[4], latitude = r[5] } }
    end
    return 200, { value = array(items) }
end


-- ---- resource providers -----------------------------------------------------------------------

local function provider_state(sub_id, p)
    local subs = state.providers[lower(sub_id)]
    if not subs then
        subs = {}
        state.providers[lower(sub_id)] = subs
    end
    local st = subs[p.ns:lower()]
    if not st then
        local initial = p.free and "Registered" or p.state or "Registered"
        local over = sim.scenario.providers and sim.scenario.providers[p.ns]
        if type(over) == "table" then over = over[sub_id] end
        st = { state = over or initial }
        subs[p.ns:lower()] = st
    end
    if st.state == "Registering" and time.now() >= (st.ready_at or 0) then
        st.state = "Registered"
    end
    return st
end


local function provider_json(sub_id, p)
    local st = provider_state(sub_id, p)
    local types = array {}
    for _, t in ipairs(p.types) do
        types[#types + 1] = { resourceType = t, locations = array(LOCATIONS),
            apiVersions = array { "2024-11-01", "2024-07-01", "2023-05-01", "2022-11-01",
                "2021-04-01" }, capabilities = "None" }
    end
    return { id = "/subscriptions/" .. sub_id .. "/providers/" .. p.ns, namespace = p.ns,
        registrationState = st.state,
        registrationPolicy = p.free and "RegistrationFree" or "RegistrationRequired",
        resourceTypes = types }
end


local function provider_of(ns)
    local p = PROVIDER_BY_NS[lower(ns)]
    if not p then
        fail(404, "InvalidResourceNamespace", "The resource namespace '" .. ns ..
            "' is invalid.")
    end
    return p
end


local function list_providers(req, ctx)
    local sub = req.params.sub
    authorize_list(ctx, sub, "/subscriptions/" .. sub, "Microsoft.Resources/subscriptions/read")
    local items = {}
    for _, p in ipairs(PROVIDERS) do items[#items + 1] = provider_json(sub, p) end
    return page(req, items)
end


local function get_provider(req, ctx)
    local sub = req.params.sub
    authorize_list(ctx, sub, "/subscriptions/" .. sub, "Microsoft.Resources/subscriptions/read")
    return 200, provider_json(sub, provider_of(req.params.ns))
end


local function register_provider(req, ctx)
    local sub, ns = req.params.sub, req.params.ns
    local p = provider_of(ns)
    authorize(ctx, sub, "/subscriptions/" .. sub, p.ns .. "/register/action", "write")
    local st = provider_state(sub, p)
    local answer = provider_json(sub, p)
    if st.state ~= "Registered" then
        -- Registering now; a GET after register_delay_ms (default: the next one) sees Registered.
        st.state = "Registering"
        st.ready_at = time.now() + (tonumber(sim.knobs.register_delay_ms) or 0) / 1000
        answer.registrationState = "Registering"
    end
    return 200, answer
end


-- A namespace must be registered before its resources are listed.
local function require_registered(sub, ns)
    local p = PROVIDER_BY_NS[lower(ns)]
    if p and provider_state(sub, p).state ~= "Registered" then
        local msg = "The subscription is not registered to use namespace '" .. p.ns ..
            "'. See https://aka.ms/rps-not-found for how to register subscriptions."
        fail(409, "MissingSubscriptionRegistration", msg, { details = array { {
            code = "MissingSubscriptionRegistration", target = p.ns, message = msg } } })
    end
end


-- ---- resource groups ---------------------------------------------------------------------------

local function find_rg(sub, name)
    for _, rg in ipairs(state.rgs) do
        if lower(rg.sub) == lower(sub) and lower(rg.name) == lower(name) then return rg end
    end
    return nil
end


local function rg_json(rg)
    return { id = "/subscriptions/" .. rg.sub .. "/resourceGroups/" .. rg.name, name = rg.name,
        type = "Microsoft.Resources/resourceGroups", location = rg.location,
        managedBy = rg.managed_by, tags = rg.tags,
        properties = { provisioningState = "Succeeded" } }
end


local function require_rg(sub, name)
    local rg = find_rg(sub, name)
    if not rg then
        fail(404, "ResourceGroupNotFound", "Resource group '" .. name .. "' could not be found.")
    end
    return rg
end


local function list_rgs(req, ctx)
    local sub = req.params.sub
    local scope = "/subscriptions/" .. sub
    authorize_list(ctx, sub, scope, "Microsoft.Resources/subscriptions/resourceGroups/read")
    local can_read = read_filter(ctx)
    local items = {}
    for _, rg in ipairs(state.rgs) do
        if lower(rg.sub) == lower(sub) and can_read(rg.sub, rg.name) then
            items[#items + 1] = rg_json(rg)
        end
    end
    return page(req, items)
end


-- GET, and HEAD (az group exists: 204 or 404, which azure-mgmt's check_existence requires).
-- HEAD is answered here because the engine serves HEAD through the GET route.
local function get_rg(req, ctx)
    local sub, name = req.params.sub, req.params.rg
    authorize(ctx, sub, "/subscriptions/" .. sub .. "/resourceGroups/" .. name,
        "Microsoft.Resources/subscriptions/resourceGroups/read")
    if req.method == "HEAD" then
        return find_rg(sub, name) and 204 or 404
    end
    return 200, rg_json(require_rg(sub, name))
end


-- ---- resources: listing and reading ----------------------------------------------------------

local function body_for(rec, req)
    if rec.t.key ~= "vms" then return rec.body end
    local expand = lower(req.query["$expand"] or "")
    if expand:find("instanceview", 1, true) or lower(req.query.statusOnly) == "true" then
        local b = {}
        for k, v in pairs(rec.body) do b[k] = v end
        local p = {}
        for k, v in pairs(rec.body.properties) do p[k] = v end
        p.instanceView = resources.vm_instance_view(rec.item)
        b.properties = p
        return b
    end
    return rec.body
end


-- Lists resources of type t (an arm_resources.TYPES entry) at subscription or group scope.
local function list_of_type(req, ctx, t, sub, rg)
    local scope = "/subscriptions/" .. sub
    if rg then scope = scope .. "/resourceGroups/" .. rg end
    local action = t.ns .. "/" .. t.type .. "/read"
    if rg then
        authorize(ctx, sub, scope, action)
        require_rg(sub, rg)
    else
        authorize_list(ctx, sub, scope, action)
    end
    require_registered(sub, t.ns)
    local can_read = read_filter(ctx, action)
    local items = {}
    for _, rec in ipairs(records()) do
        if rec.t == t and lower(rec.sub) == lower(sub) and (not rg or lower(rec.rg) == lower(rg))
            and can_read(rec.sub, rec.rg, rec.id) then
            items[#items + 1] = body_for(rec, req)
        end
    end
    return page(req, items)
end


local function not_found(ns_type, name, rg)
    fail(404, "ResourceNotFound", "The Resource '" .. ns_type .. "/" .. name ..
        "' under resource group '" .. rg .. "' was not found. For more details please go to " ..
        "https://aka.ms/ARMResourceNotFoundFix")
end


local function find_record(t, sub, rg, name)
    for _, rec in ipairs(records()) do
        if rec.t == t and lower(rec.sub) == lower(sub) and lower(rec.rg) == lower(rg) and
            lower(rec.name) == lower(name) then
            return rec
        end
    end
    return nil
end


-- The record behind a resource-scoped request, after the checks ARM makes in its order.
local function resource_for(req, ctx, t, action, kind)
    local sub, rg, name = req.params.sub, req.params.rg, req.params.name
    local scope = "/subscriptions/" .. sub .. "/resourceGroups/" .. rg .. "/providers/" ..
        t.ns .. "/" .. t.type .. "/" .. name
    authorize(ctx, sub, scope, action or (t.ns .. "/" .. t.type .. "/read"), kind)
    require_rg(sub, rg)
    require_registered(sub, t.ns)
    local rec = find_record(t, sub, rg, name)
    if not rec then not_found(t.ns .. "/" .. t.type, name, rg) end
    return rec, scope
end


local function get_of_type(req, ctx, t)
    local rec = resource_for(req, ctx, t)
    return 200, body_for(rec, req)
end


local function type_from_params(req)
    local t = resources.by_path[(req.params.ns .. "/" .. req.params.type):lower()]
    if not t then
        local p = PROVIDER_BY_NS[lower(req.params.ns)]
        if not p then
            fail(404, "InvalidResourceNamespace", "The resource namespace '" .. req.params.ns ..
                "' is invalid.")
        end
        fail(400, "InvalidResourceType", "The resource type '" .. req.params.type ..
            "' could not be found in the namespace '" .. p.ns .. "' for api version '" ..
            tostring(req.query["api-version"]) .. "'.")
    end
    return t
end


local function list_databases(req, ctx)
    local t = resources.by_path["microsoft.sql/servers"]
    local rec = resource_for(req, ctx, t, "Microsoft.Sql/servers/databases/read")
    local items = {}
    for _, d in ipairs(rec.databases or {}) do items[#items + 1] = d.body end
    return page(req, items)
end


local function get_database(req, ctx)
    local t = resources.by_path["microsoft.sql/servers"]
    local rec = resource_for(req, ctx, t, "Microsoft.Sql/servers/databases/read")
    for _, d in ipairs(rec.databases or {}) do
        if lower(d.name) == lower(req.params.db) then return 200, d.body end
    end
    not_found("Microsoft.Sql/servers/databases", req.params.name .. "/" .. req.params.db,
        req.params.rg)
end


local function vm_instance_view(req, ctx)
    local rec = resource_for(req, ctx, resources.by_path["microsoft.compute/virtualmachines"])
    return 200, resources.vm_instance_view(rec.item)
end


-- Generic resources (az resource list): every type, without properties.
local function generic(rec)
    local b = rec.body
    return { id = b.id, name = b.name, type = b.type, sku = b.sku, kind = b.kind,
        location = b.location, managedBy = b.managedBy, identity = b.identity,
        tags = b.tags, zones = b.zones }
end


local function parse_resource_filter(f)
    local conds = {}
    if not f or f:match("^%s*$") then return conds end
    for clause in (f .. " and "):gmatch("(.-)%s+and%s+") do
        local field, value = clause:match("^%s*(%w+)%s+eq%s+'(.-)'%s*$")
        if not field then
            fail(400, "InvalidFilterInQueryString", "Invalid $filter '" .. f ..
                "' specified in the query string.")
        end
        conds[#conds + 1] = { field = field:lower(), value = value:lower() }
    end
    return conds
end


local function list_resources(req, ctx)
    local sub, rg = req.params.sub, req.params.rg
    local scope = "/subscriptions/" .. sub .. (rg and ("/resourceGroups/" .. rg) or "")
    if rg then
        authorize(ctx, sub, scope, "Microsoft.Resources/subscriptions/resourceGroups/resources/read")
        require_rg(sub, rg)
    else
        authorize_list(ctx, sub, scope, "Microsoft.Resources/subscriptions/resources/read")
    end
    local conds = parse_resource_filter(req.query["$filter"])
    local can_read = read_filter(ctx)
    local items = {}
    local function consider(rec)
        if lower(rec.sub) ~= lower(sub) or (rg and lower(rec.rg) ~= lower(rg)) or
            not can_read(rec.sub, rec.rg, rec.id) then
            return
        end
        for _, c in ipairs(conds) do
            local v = c.field == "resourcetype" and rec.body.type or c.field == "name" and
                rec.name or c.field == "location" and rec.body.location or
                c.field == "resourcegroup" and rec.rg or nil
            if lower(v) ~= c.value then return end
        end
        items[#items + 1] = generic(rec)
    end
    for _, rec in ipairs(records()) do
        consider(rec)
        for _, d in ipairs(rec.databases or {}) do consider(d) end
    end
    return page(req, items)
end


-- ---- AKS credentials --------------------------------------------------------------------------

local ca_cache = {}


local function cluster_ca(name)
    local c = ca_cache[name]
    if c then return c end
    local cfg = sim.config.clusters and sim.config.clusters[name]
    if not cfg then return nil end
    local pem <close> = assert(secret.from_file(cfg.ca_key_file))
    local cert_pem = assert(sim.read_file(cfg.ca_file))
    -- What kubeconfigs carry: the server and CA they name (launch.lua decides, per scenario).
    c = { key = assert(crypto.load_key(pem)), cert = assert(crypto.load_cert(cert_pem)),
        pem = assert(sim.read_file(cfg.kubeconfig_ca_file or cfg.ca_file)),
        url = cfg.server or cfg.url }
    ca_cache[name] = c
    return c
end


--- The static token AKS puts into a cluster's kubeconfigs for a user ("clusterAdmin",
-- "clusterUser", "clusterMonitoringUser"). Admin and user tokens of local-account clusters are
-- the one the simulated API server accepts (kube.admin_token); the monitoring token is derived
-- from the cluster CA key and only looks real.
function M.cluster_token(cluster, user)
    if user ~= "clusterMonitoringUser" then
        local ok, kube = pcall(require, "kube")
        if ok and type(kube) == "table" and kube.admin_token then
            return kube.admin_token(cluster)
        end
    end
    local ca = cluster_ca(cluster)
    if not ca then return nil end
    local pem <close> = ca.key:private_pem()
    return crypto.hex(crypto.hmac_sha256(pem, user .. "/" .. cluster)):sub(1, 32)
end


local function b64(s)
    return crypto.b64encode(s)
end


local function kubeconfig(c, ca, user_name, user_lines)
    local lines = {
        "apiVersion: v1",
        "clusters:",
        "- cluster:",
        "    certificate-authority-data: " .. b64(ca.pem),
        "    server: " .. ca.url,
        "  name: " .. c.name,
        "contexts:",
        "- context:",
        "    cluster: " .. c.name,
        "    user: " .. user_name,
        "  name: " .. c.name,
        "current-context: " .. c.name,
        "kind: Config",
        "preferences: {}",
        "users:",
        "- name: " .. user_name,
        "  user:",
    }
    for _, l in ipairs(user_lines) do lines[#lines + 1] = "    " .. l end
    return table.concat(lines, "\n") .. "\n"
end


-- Issued client certificates by cluster and user: like AKS, a cluster's credentials stay the
-- same until its certificates are rotated (and RSA key generation would stall the simulator).
local issued = {}
local client_key


-- The client certificate lines of a local-account kubeconfig, plus the static token of user
-- (clusterAdmin, clusterUser). With admin_cert = "expired" the certificate ran out 35 days ago
-- and there is no token, so the expired certificate is the only credential.
local function client_cert_lines(c, ca, user)
    local memo = c.name .. "\n" .. user
    if issued[memo] then return table.move(issued[memo], 1, #issued[memo], 1, {}) end
    -- One RSA key for every client certificate of this simulator process: generating a 2048-bit
    -- key takes tens of milliseconds, which would stall a worker that serves 100 clusters.
    client_key = client_key or crypto.generate_key("rsa", 2048)
    local key = client_key
    local spec = { key = key, subject = { CN = "masterclient", O = "system:masters" },
        ca_cert = ca.cert, ca_key = ca.key, usage = "client", days = 730 }
    local expired = c.admin_cert == "expired"
    if expired then
        local now = os.time()
        spec.days, spec.not_before, spec.not_after = nil, now - 400 * 86400, now - 35 * 86400
    end
    local cert = assert(crypto.issue_cert(spec))
    local pem <close> = key:private_pem()
    local lines = { "client-certificate-data: " .. b64(cert:pem()),
        "client-key-data: " .. b64(pem:reveal()) }
    if not expired then
        lines[#lines + 1] = "token: " .. M.cluster_token(c.name, user)
    end
    cert:close()
    issued[memo] = table.move(lines, 1, #lines, 1, {})
    return lines
end


local function cluster_is_aad(c)
    if c.aad ~= nil then return c.aad end
    return c.local_accounts == false
end


local function version_at_least(v, major, minor)
    local a, b = tostring(v or ""):match("^(%d+)%.(%d+)")
    a, b = tonumber(a), tonumber(b)
    if not a then return true end
    return a > major or (a == major and b >= minor)
end


local function aad_user_lines(c, format, tenant)
    if format == "azure" then
        return {
            "auth-provider:",
            "  config:",
            "    apiserver-id: " .. AKS_SERVER_APP,
            "    client-id: " .. AKS_CLIENT_APP,
            "    config-mode: \"1\"",
            "    environment: AzurePublicCloud",
            "    tenant-id: " .. tenant,
            "  name: azure",
        }
    end
    return {
        "exec:",
        "  apiVersion: client.authentication.k8s.io/v1beta1",
        "  args:",
        "  - get-token",
        "  - --environment",
        "  - AzurePublicCloud",
        "  - --server-id",
        "  - " .. AKS_SERVER_APP,
        "  - --client-id",
        "  - " .. AKS_CLIENT_APP,
        "  - --tenant-id",
        "  - " .. tenant,
        "  - --login",
        "  - devicecode",
        "  command: kubelogin",
        "  env: null",
        "  installHint: |2",
        "",
        "    kubelogin is not installed which is required to connect to AAD enabled cluster.",
        "",
        "    To learn more, please go to https://aka.ms/aks/kubelogin",
        "  interactiveMode: IfAvailable",
        "  provideClusterInfo: false",
    }
end


local ADMIN_ACTION = "Microsoft.ContainerService/managedClusters/listClusterAdminCredential/action"
local USER_ACTION = "Microsoft.ContainerService/managedClusters/listClusterUserCredential/action"
local MONITOR_ACTION =
    "Microsoft.ContainerService/managedClusters/listClusterMonitoringUserCredential/action"
local CLUSTERS = resources.by_path["microsoft.containerservice/managedclusters"]


local function credential_answer(name, yaml)
    return 200, { kubeconfigs = array { { name = name, value = b64(yaml) } } }
end


local function cluster_ca_or_fail(c)
    local ca = cluster_ca(c.name)
    if not ca then
        fail(500, "InternalOperationError", "The simulator has no API server for cluster '" ..
            c.name .. "'.")
    end
    return ca
end


local function list_admin_credential(req, ctx)
    local rec = resource_for(req, ctx, CLUSTERS, ADMIN_ACTION, "write")
    local c = rec.item
    if c.local_accounts == false then
        fail(400, "BadRequest", "Getting static credential is not allowed because this " ..
            "cluster is set to disable local accounts.")
    end
    local ca = cluster_ca_or_fail(c)
    local user = "clusterAdmin_" .. c.resource_group .. "_" .. c.name
    return credential_answer("clusterAdmin", kubeconfig(c, ca, user,
        client_cert_lines(c, ca, "clusterAdmin")))
end


local function list_user_credential(req, ctx)
    local rec = resource_for(req, ctx, CLUSTERS, USER_ACTION, "write")
    local c = rec.item
    local ca = cluster_ca_or_fail(c)
    local user = "clusterUser_" .. c.resource_group .. "_" .. c.name
    local format = req.query.format
    if format and format ~= "" then
        format = format:lower()
        if format ~= "azure" and format ~= "exec" then
            fail(400, "InvalidParameter", "The value '" .. req.query.format .. "' of parameter " ..
                "'format' is invalid. Supported values are 'azure' and 'exec'.",
                { target = "format" })
        end
    else
        format = version_at_least(c.version, 1, 24) and "exec" or "azure"
    end
    local lines
    if cluster_is_aad(c) then
        lines = aad_user_lines(c, format, subscription_of(c.subscription).tenant or ctx.tid)
    else
        lines = client_cert_lines(c, ca, "clusterUser")
    end
    return credential_answer("clusterUser", kubeconfig(c, ca, user, lines))
end


local function list_monitoring_credential(req, ctx)
    local rec = resource_for(req, ctx, CLUSTERS, MONITOR_ACTION, "write")
    local c = rec.item
    local ca = cluster_ca_or_fail(c)
    local user = "clusterMonitoringUser_" .. c.resource_group .. "_" .. c.name
    local lines = { "token: " .. M.cluster_token(c.name, "clusterMonitoringUser") }
    return credential_answer("clusterMonitoringUser", kubeconfig(c, ca, user, lines))
end


-- ---- role assignments and definitions ------------------------------------------------------------

local function role_definition_json(role, sub)
    local prefix = sub and ("/subscriptions/" .. sub) or ""
    return {
        id = prefix .. "/providers/Microsoft.Authorization/roleDefinitions/" .. role.id,
        name = role.id, type = "Microsoft.Authorization/roleDefinitions",
        properties = {
            roleName = role.name, type = "BuiltInRole", description = role.description,
            assignableScopes = array { "/" },
            permissions = array { { actions = array(role.actions or {}),
                notActions = array(role.not_actions or {}),
                dataActions = array(role.data_actions or {}), notDataActions = array {} } },
            createdOn = "2015-02-02T21:55:09.8806423Z", updatedOn = "2024-01-01T00:00:00.0000000Z",
            createdBy = NULL, updatedBy = NULL,
        },
    }
end


local function assignment_json(a)
    local sub = a.scope:match("^/subscriptions/([^/]+)")
    local def_prefix = sub and ("/subscriptions/" .. sub) or ""
    return {
        id = a.scope:gsub("/+$", "") .. "/providers/Microsoft.Authorization/roleAssignments/" ..
            a.name,
        type = "Microsoft.Authorization/roleAssignments", name = a.name,
        properties = {
            roleDefinitionId = def_prefix .. "/providers/Microsoft.Authorization/roleDefinitions/" ..
                a.role,
            principalId = a.principal, principalType = a.principal_type, scope = a.scope,
            condition = NULL, conditionVersion = NULL,
            createdOn = os.date("!%Y-%m-%dT%H:%M:%S.0000000Z", a.created),
            updatedOn = os.date("!%Y-%m-%dT%H:%M:%S.0000000Z", a.created),
            createdBy = a.created_by or NULL, updatedBy = a.created_by or NULL,
            delegatedManagedIdentityResourceId = NULL, description = NULL,
        },
    }
end


local function list_role_assignments(req, ctx)
    local sub, rg = req.params.sub, req.params.rg
    local scope = "/subscriptions/" .. sub .. (rg and ("/resourceGroups/" .. rg) or "")
    authorize(ctx, sub, scope, "Microsoft.Authorization/roleAssignments/read")
    if rg then require_rg(sub, rg) end
    local f = req.query["$filter"] or ""
    local at_scope = f:find("atScope()", 1, true) ~= nil
    local principal = f:match("principalId%s+eq%s+'([^']*)'") or
        f:match("assignedTo%('([^']*)'%)")
    if f ~= "" and not at_scope and not principal then
        fail(400, "InvalidFilter", "The filter '" .. f .. "' is not supported. Supported " ..
            "filters are 'atScope()', 'principalId eq {id}' and 'assignedTo({id})'.")
    end
    local items = {}
    for _, a in ipairs(state.assignments) do
        local above = scope_covers(a.scope, scope)
        local below = scope_covers(scope, a.scope)
        local ok = above or (below and not at_scope)
        if principal and lower(a.principal) ~= lower(principal) then ok = false end
        if ok then items[#items + 1] = assignment_json(a) end
    end
    return page(req, items)
end


local function find_assignment(name)
    for i, a in ipairs(state.assignments) do
        if lower(a.name) == lower(name) then return a, i end
    end
    return nil
end


local function get_role_assignment(req, ctx)
    local sub, name = req.params.sub, req.params.name
    authorize(ctx, sub, "/subscriptions/" .. sub, "Microsoft.Authorization/roleAssignments/read")
    local a = find_assignment(name)
    if not a or not scope_covers("/subscriptions/" .. sub, a.scope) then
        fail(404, "RoleAssignmentNotFound", "The role assignment '" .. name ..
            "' is not found.")
    end
    return 200, assignment_json(a)
end


local function put_role_assignment(req, ctx)
    local sub, name = req.params.sub, req.params.name
    local scope = "/subscriptions/" .. sub
    authorize(ctx, sub, scope, "Microsoft.Authorization/roleAssignments/write", "write")
    if not name:match("^%x+%-%x+%-%x+%-%x+%-%x+$") or #name ~= 36 then
        fail(400, "InvalidRoleAssignmentId", "The role assignment ID '" .. name ..
            "' is not valid. The role assignment ID must be a GUID.")
    end
    local ok, body = pcall(req.json, req)
    local p = ok and type(body) == "table" and body.properties
    if type(p) ~= "table" or type(p.roleDefinitionId) ~= "string" or
        type(p.principalId) ~= "string" then
        fail(400, "InvalidRequestContent", "The request content was invalid and could not " ..
            "be deserialized: 'properties.roleDefinitionId and properties.principalId are " ..
            "required'.")
    end
    local role_id = p.roleDefinitionId:match("(%x+%-%x+%-%x+%-%x+%-%x+)$")
    local role = role_id and ROLE_BY_ID[role_id:lower()]
    if not role then
        fail(400, "RoleDefinitionDoesNotExist", "The specified role definition with ID '" ..
            tostring(role_id or p.roleDefinitionId) .. "' does not exist.")
    end
    local existing = find_assignment(name)
    if existing then
        if existing.principal ~= p.principalId or existing.role ~= role.id or
            lower(existing.scope) ~= lower(scope) then
            fail(409, "RoleAssignmentUpdateNotPermitted", "Tenant ID, application ID, " ..
                "principal ID, and scope are not allowed to be updated.")
        end
        return 201, assignment_json(existing)
    end
    for _, a in ipairs(state.assignments) do
        if lower(a.principal) == lower(p.principalId) and a.role == role.id and
            lower(a.scope) == lower(scope) then
            fail(409, "RoleAssignmentExists", "The role assignment already exists.",
                { details = array { { code = "RoleAssignmentExists",
                    message = "The role assignment already exists. The ID of the existing " ..
                        "role assignment is " .. a.name .. "." } } })
        end
    end
    local a = { name = name:lower(), principal = p.principalId, role = role.id, scope = scope,
        principal_type = p.principalType or "ServicePrincipal", created = os.time(),
        created_by = ctx.oid }
    state.assignments[#state.assignments + 1] = a
    return 201, assignment_json(a)
end


local function delete_role_assignment(req, ctx)
    local sub, name = req.params.sub, req.params.name
    authorize(ctx, sub, "/subscriptions/" .. sub,
        "Microsoft.Authorization/roleAssignments/delete", "write")
    local a, i = find_assignment(name)
    if not a then return 204 end
    table.remove(state.assignments, i)
    return 200, assignment_json(a)
end


local function filter_roles(req)
    local f = req.query["$filter"] or ""
    local want = f:match("roleName%s+eq%s+'([^']*)'")
    local kind = f:match("type%s+eq%s+'([^']*)'")
    local out = {}
    for _, r in ipairs(ROLES) do
        if (not want or lower(r.name) == lower(want)) and
            (not kind or lower(kind) == "builtinrole") then
            out[#out + 1] = r
        end
    end
    return out
end


local function list_role_definitions(req, ctx)
    local sub = req.params.sub
    if sub then
        authorize_list(ctx, sub, "/subscriptions/" .. sub,
            "Microsoft.Authorization/roleDefinitions/read")
    end
    local items = {}
    for _, r in ipairs(filter_roles(req)) do items[#items + 1] = role_definition_json(r, sub) end
    return page(req, items)
end


local function get_role_definition(req, ctx)
    local sub = req.params.sub
    if sub then
        authorize_list(ctx, sub, "/subscriptions/" .. sub,
            "Microsoft.Authorization/roleDefinitions/read")
    end
    local r = ROLE_BY_ID[lower(req.params.id)]
    if not r then
        fail(404, "RoleDefinitionDoesNotExist", "The specified role definition with ID '" ..
            req.params.id .. "' does not exist.")
    end
    return 200, role_definition_json(r, sub)
end


-- ---- Resource Graph ------------------------------------------------------------------------------

local function arg_error(ctx, e)
    fail(400, "BadRequest", "Please provide below info when asking for support: timestamp = " ..
        os.date("!%Y-%m-%dT%H:%M:%S.0000000Z") .. ", correlationId = " .. ctx.correlation_id ..
        ".", { details = array {
            { code = "InvalidQuery", message = "Query is invalid. Please refer to the " ..
                "documentation for the Azure Resource Graph service and fix the error before " ..
                "retrying." },
            { code = "ParserFailure", message = e.message, line = 1,
              characterPositionInLine = (e.pos or 1) - 1, token = e.token },
        } })
end


local function arg_quota_headers(ctx)
    local now = os.time()
    local limit = tonumber(sim.knobs.arg_quota)
    local q = state.arg_quota[ctx.oid]
    if not q or now - q.start >= 5 then
        q = { start = now, used = 0 }
        state.arg_quota[ctx.oid] = q
    end
    q.used = q.used + 1
    local left = (limit or 15) - q.used
    local resets = string.format("00:00:%02d", math.max(5 - (now - q.start), 1))
    if limit and left < 0 then
        fail(429, "RateLimiting", "Please provide below info when asking for support: " ..
            "timestamp = " .. os.date("!%Y-%m-%dT%H:%M:%SZ") .. ", correlationId = " ..
            ctx.correlation_id .. ".", { details = array { { code = "RateLimiting",
                message = "Client application has been throttled and should not attempt to " ..
                    "repeat the request until an amount of time has elapsed. Please see " ..
                    "https://aka.ms/resourcegraph-throttling for help." } },
            headers = { ["x-ms-user-quota-remaining"] = "0",
                ["x-ms-user-quota-resets-after"] = resets, ["Retry-After"] =
                    tostring(math.max(5 - (now - q.start), 1)) } })
    end
    if not limit then left = math.max(left, 1) end
    return { ["x-ms-user-quota-remaining"] = tostring(math.max(left, 0)),
        ["x-ms-user-quota-resets-after"] = resets }
end


local function column_type(v)
    if v == nil or v == NULL then return nil end
    if math.type(v) == "integer" then return "integer" end
    if type(v) == "number" then return "number" end
    if type(v) == "boolean" then return "boolean" end
    if type(v) == "table" then return "object" end
    if type(v) == "string" and v:match("^%d%d%d%d%-%d%d%-%d%dT") then return "datetime" end
    return "string"
end


-- The Resource Graph row of a record, built once (the scenario's resources do not change).
local function arg_row(rec, sub)
    local row = rec.arg_row
    if not row then
        row = resources.arg_row(rec, sub.tenant)
        rec.arg_row = row
    end
    return row
end


local function resource_graph(req, ctx)
    local ok, body = pcall(req.json, req)
    if not ok or type(body) ~= "table" or type(body.query) ~= "string" or body.query == "" then
        fail(400, "BadRequest", "The request content was invalid: 'query' is required.",
            { details = array { { code = "InvalidRequestContent",
                message = "The 'query' property is required." } } })
    end
    local headers = arg_quota_headers(ctx)
    local opts = type(body.options) == "table" and body.options or {}
    local subs = {}
    local visible = {}
    for _, s in ipairs(visible_subscriptions(ctx)) do visible[s.id:lower()] = s end
    if type(body.subscriptions) == "table" and #body.subscriptions > 0 then
        for _, id in ipairs(body.subscriptions) do
            if visible[lower(id)] then subs[lower(id)] = visible[lower(id)] end
        end
    else
        subs = visible
    end
    local q, perr = resources.parse(body.query)
    if not q then arg_error(ctx, perr) end
    local can_read = read_filter(ctx)
    local rows = {}
    if q.table == "resources" then
        for _, rec in ipairs(records()) do
            local s = subs[lower(rec.sub)]
            if s then
                if can_read(rec.sub, rec.rg, rec.id) then rows[#rows + 1] = arg_row(rec, s) end
                for _, d in ipairs(rec.databases or {}) do
                    if can_read(d.sub, d.rg, d.id) then rows[#rows + 1] = arg_row(d, s) end
                end
            end
        end
    else
        for _, s in ipairs(sim.scenario.subscriptions) do
            if subs[s.id:lower()] then
                rows[#rows + 1] = { id = "/subscriptions/" .. s.id, name = s.name,
                    type = "microsoft.resources/subscriptions", tenantId = s.tenant, kind = "",
                    location = "", resourceGroup = "", subscriptionId = s.id, managedBy = "",
                    sku = NULL, plan = NULL, tags = s.tags or {}, identity = NULL,
                    zones = NULL, extendedLocation = NULL,
                    properties = { state = s.state, subscriptionPolicies =
                        subscription_json(s).subscriptionPolicies } }
            end
        end
        for _, rg in ipairs(state.rgs) do
            local s = subs[lower(rg.sub)]
            if s and can_read(rg.sub, rg.name) then
                rows[#rows + 1] = { id = "/subscriptions/" .. rg.sub .. "/resourceGroups/" ..
                    rg.name, name = rg.name,
                    type = "microsoft.resources/subscriptions/resourcegroups",
                    tenantId = s.tenant, kind = "", location = rg.location,
                    resourceGroup = rg.name:lower(), subscriptionId = rg.sub,
                    managedBy = rg.managed_by or "", sku = NULL, plan = NULL,
                    tags = rg.tags or {}, identity = NULL, zones = NULL, extendedLocation = NULL,
                    properties = { provisioningState = "Succeeded" } }
            end
        end
    end
    local result, cols = resources.run(q, rows)
    local top = math.tointeger(tonumber(opts["$top"])) or 100
    if top < 1 or top > 1000 then
        fail(400, "BadRequest", "The value of '$top' must be between 1 and 1000.")
    end
    local offset = math.tointeger(tonumber(opts["$skip"])) or 0
    if opts["$skipToken"] and opts["$skipToken"] ~= "" then
        local raw = crypto.b64url_decode(opts["$skipToken"])
        local n = raw and raw:match("^offset=(%d+)$")
        if not n then
            fail(400, "BadRequest", "The $skipToken is invalid.", { details = array { {
                code = "InvalidSkipToken", message = "The provided skip token is invalid." } } })
        end
        offset = tonumber(n)
    end
    -- The page: $top rows, or fewer when the page_size knob is set (as the ARM lists page).
    local size = top
    local knob = tonumber(sim.knobs.page_size)
    if knob and knob >= 1 then size = math.min(top, math.floor(knob)) end
    local page_rows = array {}
    for i = offset + 1, math.min(#result, offset + size) do
        page_rows[#page_rows + 1] = result[i]
    end
    local more = offset + size < #result
    local has_id = false
    for _, c in ipairs(cols) do if c == "id" then has_id = true end end
    local answer = { totalRecords = #result, count = #page_rows, facets = array {},
        resultTruncated = (more and not has_id) and "true" or "false" }
    if more and has_id then answer["$skipToken"] = skip_token(offset + size) end
    if lower(opts.resultFormat) == "table" then
        local columns = array {}
        for i, c in ipairs(cols) do
            local t
            for _, r in ipairs(result) do
                t = column_type(r[c])
                if t then break end
            end
            columns[i] = { name = c, type = t or "string" }
        end
        local trows = array {}
        for i, r in ipairs(page_rows) do
            local tr = array {}
            for j, c in ipairs(cols) do
                local v = r[c]
                if v == nil then v = NULL end
                tr[j] = v
            end
            trows[i] = tr
        end
        answer.data = { columns = columns, rows = trows }
    else
        answer.data = page_rows
    end
    return 200, answer, headers
end


-- ---- Cost Management ---------------------------------------------------------------------------

local COST_DIMENSIONS = {
    servicename = "service", metercategory = "service", resourcegroup = "resource_group",
    resourcegroupname = "resource_group", subscriptionid = "subscription",
    resourcelocation = "location", chargetype = "charge_type", resourcetype = "resource_type",
    resourceid = "resource_id", servicefamily = "service_family",
}
local TIMEFRAMES = { monthtodate = true, billingmonthtodate = true, thelastmonth = true,
    thelastbillingmonth = true, weektodate = true, custom = true, thelastweek = true,
    thelast7days = true }


local function ymd(t)
    return os.date("!%Y-%m-%d", t)
end


local function parse_ymd(s)
    local y, m, d = tostring(s):match("^(%d%d%d%d)%-(%d%d)%-(%d%d)")
    if not y then return nil end
    return os.time { year = tonumber(y), month = tonumber(m), day = tonumber(d), hour = 12 }
end


local function cost_window(q)
    local tf = lower(q.timeframe)
    local now = parse_ymd(sim.knobs.cost_now or "") or os.time()
    local d = os.date("!*t", now)
    if tf == "custom" then
        local tp = type(q.timePeriod) == "table" and q.timePeriod or {}
        local from, to = tostring(tp.from or ""):sub(1, 10), tostring(tp.to or ""):sub(1, 10)
        if not parse_ymd(from) or not parse_ymd(to) then
            fail(400, "BadRequest", "Invalid query definition: timePeriod with 'from' and 'to' " ..
                "is required when timeframe is Custom.")
        end
        return from, to
    elseif tf == "thelastmonth" or tf == "thelastbillingmonth" then
        local y, m = d.year, d.month - 1
        if m == 0 then y, m = y - 1, 12 end
        local last = os.time { year = d.year, month = d.month, day = 1, hour = 12 } - 86400
        return string.format("%04d-%02d-01", y, m), ymd(last)
    elseif tf == "weektodate" then
        return ymd(now - (d.wday - 1) * 86400), ymd(now)
    elseif tf == "thelastweek" or tf == "thelast7days" then
        return ymd(now - 7 * 86400), ymd(now - 86400)
    end
    return string.format("%04d-%02d-01", d.year, d.month), ymd(now)
end


local function cost_filter_ok(f, row, dims)
    if type(f) ~= "table" then return true end
    if type(f["and"]) == "table" then
        for _, sub in ipairs(f["and"]) do
            if not cost_filter_ok(sub, row, dims) then return false end
        end
        return true
    end
    if type(f["or"]) == "table" then
        for _, sub in ipairs(f["or"]) do
            if cost_filter_ok(sub, row, dims) then return true end
        end
        return false
    end
    if type(f["not"]) == "table" then return not cost_filter_ok(f["not"], row, dims) end
    local d = f.dimensions or f.dimension
    if type(d) == "table" then
        local field = COST_DIMENSIONS[lower(d.name)]
        local v = field and dims(row, field)
        for _, want in ipairs(d.values or {}) do
            if lower(v) == lower(want) then return true end
        end
        return false
    end
    return true
end


local function cost_throttle(ctx, scope)
    local k = sim.knobs.cost_throttle
    local throttled = false
    local retry = 60
    if type(k) == "table" and (k.count or 1) > 0 then
        k.count = (k.count or 1) - 1
        throttled, retry = true, k.retry_after or 60
    end
    local per_min = tonumber(sim.knobs.cost_calls_per_minute)
    if per_min then
        local now = os.time()
        local c = state.cost_calls[lower(scope)]
        if not c or now - c.start >= 60 then
            c = { start = now, n = 0 }
            state.cost_calls[lower(scope)] = c
        end
        c.n = c.n + 1
        if c.n > per_min then throttled, retry = true, 60 - (now - c.start) end
    end
    if throttled then
        local h = {
            ["x-ms-ratelimit-microsoft.costmanagement-qpu-retry-after"] = tostring(retry),
            ["x-ms-ratelimit-microsoft.costmanagement-entity-retry-after"] = tostring(retry),
            ["x-ms-ratelimit-microsoft.costmanagement-tenant-retry-after"] = tostring(retry),
            ["x-ms-ratelimit-microsoft.costmanagement-client-retry-after"] = tostring(retry),
            ["x-ms-ratelimit-microsoft.costmanagement-qpu-remaining"] = "0",
        }
        if type(k) == "table" and k.retry_after_header then h["Retry-After"] = tostring(retry) end
        fail(429, "429", "Too many requests. Please retry.", { headers = h })
    end
end


local function cost_query(req, ctx)
    local sub, rg = req.params.sub, req.params.rg
    local scope = "/subscriptions/" .. sub .. (rg and ("/resourceGroups/" .. rg) or "")
    authorize(ctx, sub, scope, "Microsoft.CostManagement/query/read")
    if rg then require_rg(sub, rg) end
    cost_throttle(ctx, scope)
    local ok, q = pcall(req.json, req)
    if not ok or type(q) ~= "table" then
        fail(400, "BadRequest", "Invalid query definition: the request body is not valid JSON.")
    end
    local qtype = lower(q.type)
    if qtype ~= "usage" and qtype ~= "actualcost" and qtype ~= "amortizedcost" then
        fail(400, "BadRequest", "Invalid query definition: type '" .. tostring(q.type) ..
            "' is not valid. Valid values are 'Usage', 'ActualCost' and 'AmortizedCost'.")
    end
    if not TIMEFRAMES[lower(q.timeframe)] then
        fail(400, "BadRequest", "Invalid query definition: timeframe '" ..
            tostring(q.timeframe) .. "' is not valid.")
    end
    local ds = type(q.dataset) == "table" and q.dataset or {}
    local gran = lower(ds.granularity or "None")
    if gran ~= "none" and gran ~= "daily" and gran ~= "monthly" then
        fail(400, "BadRequest", "Invalid query definition: granularity '" ..
            tostring(ds.granularity) .. "' is not valid.")
    end
    local aggs = {}
    if type(ds.aggregation) == "table" then
        local names = {}
        for alias in pairs(ds.aggregation) do names[#names + 1] = alias end
        table.sort(names)
        for _, alias in ipairs(names) do
            local a = ds.aggregation[alias]
            if type(a) ~= "table" or lower(a["function"]) ~= "sum" then
                fail(400, "BadRequest", "Invalid query definition: aggregation '" .. alias ..
                    "' must use function 'Sum'.")
            end
            aggs[#aggs + 1] = { column = a.name or alias, quantity = lower(a.name) ==
                "usagequantity" }
        end
    end
    local groups = {}
    for _, g in ipairs(type(ds.grouping) == "table" and ds.grouping or {}) do
        local field = COST_DIMENSIONS[lower(g.name)]
        if not field then
            fail(400, "BadRequest", "Invalid query definition: Invalid dataset grouping: '" ..
                tostring(g.name) .. "'; valid values: 'ServiceName', 'ResourceGroup', " ..
                "'ResourceGroupName', 'SubscriptionId', 'ResourceLocation', 'MeterCategory', " ..
                "'ChargeType', 'ResourceType', 'ResourceId', 'ServiceFamily'.")
        end
        groups[#groups + 1] = { name = g.name, field = field }
    end
    local from, to = cost_window(q)
    local default_sub = sim.scenario.default and sim.scenario.default.subscription
    local function dims(row, field)
        if field == "subscription" then return row.subscription or default_sub end
        if field == "location" then
            local g = find_rg(row.subscription or default_sub, row.resource_group or "")
            return row.location or (g and g.location) or ""
        end
        if field == "charge_type" then return row.charge_type or "Usage" end
        if field == "service_family" then return row.service_family or "Compute" end
        return row[field] or ""
    end
    local buckets, order = {}, {}
    for _, row in ipairs(sim.scenario.costs) do
        local rsub = row.subscription or default_sub
        if lower(rsub) == lower(sub) and (not rg or lower(row.resource_group) == lower(rg)) and
            row.date >= from and row.date <= to and cost_filter_ok(ds.filter, row, dims) then
            local key, vals = {}, {}
            if gran == "daily" then
                vals[#vals + 1] = tonumber((row.date:gsub("-", "")))
            elseif gran == "monthly" then
                vals[#vals + 1] = row.date:sub(1, 7) .. "-01T00:00:00"
            end
            for _, g in ipairs(groups) do vals[#vals + 1] = dims(row, g.field) end
            vals[#vals + 1] = row.currency or "USD"
            for i, v in ipairs(vals) do key[i] = tostring(v) end
            local k = table.concat(key, "\0")
            if not buckets[k] then
                buckets[k] = { vals = vals, sums = {} }
                order[#order + 1] = k
            end
            for i, a in ipairs(aggs) do
                buckets[k].sums[i] = (buckets[k].sums[i] or 0) + (a.quantity and
                    (row.quantity or 1) or row.cost)
            end
        end
    end
    table.sort(order)
    local columns = array {}
    for _, a in ipairs(aggs) do columns[#columns + 1] = { name = a.column, type = "Number" } end
    if gran == "daily" then columns[#columns + 1] = { name = "UsageDate", type = "Number" } end
    if gran == "monthly" then
        columns[#columns + 1] = { name = "BillingMonth", type = "Datetime" }
    end
    for _, g in ipairs(groups) do columns[#columns + 1] = { name = g.name, type = "String" } end
    columns[#columns + 1] = { name = "Currency", type = "String" }
    local rows = {}
    for _, k in ipairs(order) do
        local b = buckets[k]
        local r = array {}
        for i = 1, #aggs do r[#r + 1] = b.sums[i] or 0 end
        for _, v in ipairs(b.vals) do r[#r + 1] = v end
        rows[#rows + 1] = r
    end
    if #rows == 0 then return 204 end
    local size, offset = page_size(), skip_offset(req)
    local page_rows = array {}
    for i = offset + 1, math.min(#rows, offset + size) do page_rows[#page_rows + 1] = rows[i] end
    local id = sim.uuid()
    local headers = {
        ["x-ms-ratelimit-microsoft.costmanagement-qpu-consumed"] = "1",
        ["x-ms-ratelimit-microsoft.costmanagement-qpu-remaining"] = "QueriesPerHour:11,QpuPerHour:399",
        ["x-ms-ratelimit-microsoft.costmanagement-entity-requests"] = "3",
        ["x-ms-ratelimit-microsoft.costmanagement-tenant-requests"] = "199",
        ["x-ms-ratelimit-microsoft.costmanagement-client-requests"] = "99",
        ["session-id"] = sim.uuid(),
    }
    return 200, {
        id = scope:sub(2) .. "/providers/Microsoft.CostManagement/query/" .. id, name = id,
        type = "Microsoft.CostManagement/query", location = NULL, sku = NULL, eTag = NULL,
        properties = { nextLink = (offset + size < #rows) and next_link(req, offset + size) or
            NULL, columns = columns, rows = page_rows },
    }, headers
end


-- ---- cloud metadata (az cloud register --endpoint-resource-manager) -----------------------------

local function metadata_endpoints(req)
    local urls = sim.config.urls
    local auth = { loginEndpoint = urls.login .. "/", audiences = array {
        "https://management.core.windows.net/", "https://management.azure.com/" },
        tenant = "common", identityProvider = "AAD" }
    local v = req.query["api-version"] or ""
    if v >= "2019-05-01" then
        return 200, array { {
            portal = "https://portal.azure.com", authentication = auth,
            media = "https://rest.media.azure.net", graphAudience = urls.graph .. "/",
            graph = urls.graph .. "/", name = "AzureCloud",
            suffixes = { azureDataLakeStoreFileSystem = "azuredatalakestore.net",
                acrLoginServer = "azurecr.io", sqlServerHostname = "database.windows.net",
                azureDataLakeAnalyticsCatalogAndJob = "azuredatalakeanalytics.net",
                keyVaultDns = "vault.azure.net", storage = "core.windows.net",
                azureFrontDoorEndpointSuffix = "azurefd.net" },
            batch = "https://batch.core.windows.net/", resourceManager = urls.arm .. "/",
            vmImageAliasDoc = "https://raw.githubusercontent.com/Azure/azure-rest-api-specs/" ..
                "master/arm-compute/quickstart-templates/aliases.json",
            activeDirectoryDataLake = "https://datalake.azure.net/",
            sqlManagement = "https://management.core.windows.net:8443/",
            microsoftGraphResourceId = urls.graph .. "/",
            appInsightsResourceId = "https://api.applicationinsights.io",
            appInsightsTelemetryChannelResourceId = "https://dc.applicationinsights.azure.com/v2/track",
            attestationResourceId = "https://attest.azure.net",
            synapseAnalyticsResourceId = "https://dev.azuresynapse.net",
            logAnalyticsResourceId = "https://api.loganalytics.io",
            ossrDbmsResourceId = "https://ossrdbms-aad.database.windows.net",
        } }
    end
    return 200, { galleryEndpoint = "https://gallery.azure.com/", graphEndpoint = urls.graph .. "/",
        portalEndpoint = "https://portal.azure.com/", authentication = auth }
end


-- ---- the route table ---------------------------------------------------------------------------

--- The ARM route table (wrapped by sim.add, so counted as "arm:METHOD /path"). Literal
-- segments match in any case, as in ARM (az sends resourceGroups, ids say resourcegroups).
function M.routes()
    local r = { _options = { case_insensitive = true } }
    route(r, "GET /metadata/endpoints", metadata_endpoints, { anonymous = true })
    route(r, "GET /subscriptions", list_subscriptions, { tenant = true })
    route(r, "GET /subscriptions/{sub}", get_subscription)
    route(r, "GET /tenants", list_tenants, { tenant = true })
    route(r, "GET /subscriptions/{sub}/locations", list_locations)

    route(r, "GET /subscriptions/{sub}/providers", list_providers)
    route(r, "GET /subscriptions/{sub}/providers/{ns}", get_provider)
    route(r, "POST /subscriptions/{sub}/providers/{ns}/register", register_provider)

    local authz = "/subscriptions/{sub}/providers/Microsoft.Authorization"
    route(r, "GET " .. authz .. "/roleAssignments", list_role_assignments)
    route(r, "GET " .. authz .. "/roleAssignments/{name}", get_role_assignment)
    route(r, "PUT " .. authz .. "/roleAssignments/{name}", put_role_assignment)
    route(r, "DELETE " .. authz .. "/roleAssignments/{name}", delete_role_assignment)
    route(r, "GET " .. authz .. "/roleDefinitions", list_role_definitions)
    route(r, "GET " .. authz .. "/roleDefinitions/{id}", get_role_definition)
    route(r, "GET /providers/Microsoft.Authorization/roleDefinitions", list_role_definitions,
        { tenant = true })
    route(r, "GET /providers/Microsoft.Authorization/roleDefinitions/{id}", get_role_definition,
        { tenant = true })

    route(r, "POST /providers/Microsoft.ResourceGraph/resources", resource_graph,
        { tenant = true, read = true })
    route(r, "POST /subscriptions/{sub}/providers/Microsoft.CostManagement/query", cost_query,
        { read = true })

    route(r, "GET /subscriptions/{sub}/resources", list_resources)
    route(r, "GET /subscriptions/{sub}/resourcegroups", list_rgs)
    local rg = "/subscriptions/{sub}/resourceGroups/{rg}"
    route(r, "GET " .. rg, get_rg)
    route(r, "GET " .. rg .. "/resources", list_resources)
    route(r, "GET " .. rg .. "/providers/Microsoft.Authorization/roleAssignments",
        list_role_assignments)
    route(r, "POST " .. rg .. "/providers/Microsoft.CostManagement/query", cost_query,
        { read = true })

    -- One literal route per type and scope, plus ARM-shaped errors for unknown types.
    for _, t in ipairs(resources.TYPES) do
        route(r, "GET /subscriptions/{sub}/providers/" .. t.ns .. "/" .. t.type, function(req, ctx)
            return list_of_type(req, ctx, t, req.params.sub)
        end)
        local p = rg .. "/providers/" .. t.ns .. "/" .. t.type
        route(r, "GET " .. p, function(req, ctx)
            return list_of_type(req, ctx, t, req.params.sub, req.params.rg)
        end)
        route(r, "GET " .. p .. "/{name}", function(req, ctx)
            return get_of_type(req, ctx, t)
        end)
    end
    route(r, "GET /subscriptions/{sub}/providers/{ns}/{type}", function(req, ctx)
        return list_of_type(req, ctx, type_from_params(req), req.params.sub)
    end)
    route(r, "GET " .. rg .. "/providers/{ns}/{type}", function(req, ctx)
        return list_of_type(req, ctx, type_from_params(req), req.params.sub, req.params.rg)
    end)
    route(r, "GET " .. rg .. "/providers/{ns}/{type}/{name}", function(req, ctx)
        return get_of_type(req, ctx, type_from_params(req))
    end)

    local aks = rg .. "/providers/Microsoft.ContainerService/managedClusters/{name}"
    route(r, "POST " .. aks .. "/listClusterAdminCredential", list_admin_credential)
    route(r, "POST " .. aks .. "/listClusterUserCredential", list_user_credential)
    route(r, "POST " .. aks .. "/listClusterMonitoringUserCredential", list_monitoring_credential)
    local sql = rg .. "/providers/Microsoft.Sql/servers/{name}/databases"
    route(r, "GET " .. sql, list_databases)
    route(r, "GET " .. sql .. "/{db}", get_database)
    route(r, "GET " .. rg .. "/providers/Microsoft.Compute/virtualMachines/{name}/instanceView",
        vm_instance_view)
    return r
end

return M

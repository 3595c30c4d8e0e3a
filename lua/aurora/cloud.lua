-- aurora.cloud: the Azure clouds (wire-formats §2): where Entra ID, ARM and Microsoft Graph
-- live, and the token scopes for each. AZURE_CLOUD picks the cloud (default AzureCloud);
-- AZURE_AUTHORITY_HOST, AZURE_RESOURCE_MANAGER_ENDPOINT and AZURE_GRAPH_ENDPOINT move the
-- endpoints (a simulator, a private link) WITHOUT changing the scopes: an ARM token is for the
-- cloud's ARM audience wherever the requests go. Full reference: docs/identity.md.
local env = require "aurora.env"

local M = {}

-- The AKS AAD server application is the same in every cloud (wire-formats §2).
M.AKS_SERVER_APP = "6dae42f8-4368-4678-94ff-3960e28e3630"

local AKS_SCOPE = M.AKS_SERVER_APP .. "/.default"

--- The clouds by name. Scopes follow the sheet's ARM audiences; in the public cloud ARM also
-- accepts (and az uses) https://management.core.windows.net/, management.azure.com is what the
-- Azure SDKs ask for.
M.CLOUDS = {
    AzureCloud = {
        name = "AzureCloud",
        authority_host = "https://login.microsoftonline.com",
        arm = "https://management.azure.com",
        graph = "https://graph.microsoft.com",
        arm_scope = "https://management.azure.com/.default",
        graph_scope = "https://graph.microsoft.com/.default",
        aks_scope = AKS_SCOPE,
    },
    AzureUSGovernment = {
        name = "AzureUSGovernment",
        authority_host = "https://login.microsoftonline.us",
        arm = "https://management.usgovcloudapi.net",
        graph = "https://graph.microsoft.us",
        arm_scope = "https://management.core.usgovcloudapi.net/.default",
        graph_scope = "https://graph.microsoft.us/.default",
        aks_scope = AKS_SCOPE,
    },
    AzureChinaCloud = {
        name = "AzureChinaCloud",
        authority_host = "https://login.chinacloudapi.cn",
        arm = "https://management.chinacloudapi.cn",
        graph = "https://microsoftgraph.chinacloudapi.cn",
        arm_scope = "https://management.core.chinacloudapi.cn/.default",
        graph_scope = "https://microsoftgraph.chinacloudapi.cn/.default",
        aks_scope = AKS_SCOPE,
    },
}

-- Other spellings seen in the wild (kubelogin, the SDKs), compared in lower case.
local ALIASES = {
    azurecloud = "AzureCloud", azurepubliccloud = "AzureCloud", public = "AzureCloud",
    azureusgovernment = "AzureUSGovernment", azureusgovernmentcloud = "AzureUSGovernment",
    usgovernment = "AzureUSGovernment",
    azurechinacloud = "AzureChinaCloud", china = "AzureChinaCloud",
}

local OVERRIDES = { authority_host = true, arm = true, graph = true }


local function endpoint(v, what)
    if type(v) ~= "string" or not v:match("^https?://[^/%s]+") or v:find("%s") then
        return nil, string.format("%s must be an http(s) URL (got %q)", what, tostring(v)),
            "invalid"
    end
    return (v:gsub("/+$", ""))
end


--- The cloud called name (default "AzureCloud"; case-insensitive; aliases such as
-- "AzurePublicCloud" accepted), with endpoints replaced by overrides = {authority_host =,
-- arm =, graph =} (trailing slashes dropped). Scopes never change.
-- Returns a new table {name, authority_host, arm, graph, arm_scope, graph_scope, aks_scope},
-- or nil, msg, "invalid" for an unknown cloud or a malformed endpoint.
-- Raises when name is not a string or nil, or overrides has an unknown field.
-- Example: local c = cloud.get("AzureCloud", {arm = sim.env.SIM_ARM_URL})
function M.get(name, overrides)
    if name ~= nil and type(name) ~= "string" then
        error("bad argument #1 to 'get' (string expected, got " .. type(name) .. ")", 2)
    end
    if overrides ~= nil and type(overrides) ~= "table" then
        error("bad argument #2 to 'get' (table expected, got " .. type(overrides) .. ")", 2)
    end
    for k in pairs(overrides or {}) do
        if not OVERRIDES[k] then
            error("bad argument #2 to 'get' (unknown override '" .. tostring(k) .. "')", 2)
        end
    end
    local canonical = ALIASES[(name or "AzureCloud"):lower()]
    if not canonical then
        return nil, string.format("unknown Azure cloud %q (AzureCloud, AzureUSGovernment or " ..
            "AzureChinaCloud)", name), "invalid"
    end
    local c = {}
    for k, v in pairs(M.CLOUDS[canonical]) do c[k] = v end
    for k, v in pairs(overrides or {}) do
        local url, msg, code = endpoint(v, k)
        if not url then return nil, msg, code end
        c[k] = url
    end
    return c
end


--- The cloud the environment configures: AZURE_CLOUD with the AZURE_AUTHORITY_HOST,
-- AZURE_RESOURCE_MANAGER_ENDPOINT and AZURE_GRAPH_ENDPOINT overrides.
-- Returns the table of cloud.get, or nil, msg, "invalid" naming the variable at fault.
-- Example: local c = assert(cloud.current()); local url = c.arm .. "/subscriptions"
function M.current()
    local overrides = {
        authority_host = env.get("AZURE_AUTHORITY_HOST"),
        arm = env.get("AZURE_RESOURCE_MANAGER_ENDPOINT"),
        graph = env.get("AZURE_GRAPH_ENDPOINT"),
    }
    local c, msg, code = M.get(env.get("AZURE_CLOUD", "AzureCloud"), overrides)
    if not c then
        return nil, "AZURE_CLOUD or an endpoint variable is wrong: " .. msg, code
    end
    return c
end


--- The scope for name in cloud c: "arm", "graph" or "aks" give the cloud's scope; anything
-- else is taken as an explicit scope ("api://x/.default").
-- Raises when name is not a non-empty string.
-- Example: cloud.scope(c, "graph") --> "https://graph.microsoft.com/.default"
function M.scope(c, name)
    if type(name) ~= "string" or name == "" then
        error("bad argument #2 to 'scope' (scope name expected, got " .. type(name) .. ")", 2)
    end
    local s = c[name .. "_scope"]
    if s and (name == "arm" or name == "graph" or name == "aks") then
        return s
    end
    return name
end

return M

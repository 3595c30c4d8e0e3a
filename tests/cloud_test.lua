-- aurora.cloud: the three clouds, endpoint overrides that leave scopes alone, and bad input.
local T = require "aurora.test"
local cloud = require "aurora.cloud"

local AKS = "6dae42f8-4368-4678-94ff-3960e28e3630/.default"


T.test("the public cloud is the default and has the documented endpoints and scopes", function()
    T.eq(cloud.get(), {
        name = "AzureCloud",
        authority_host = "https://login.microsoftonline.com",
        arm = "https://management.azure.com",
        graph = "https://graph.microsoft.com",
        arm_scope = "https://management.azure.com/.default",
        graph_scope = "https://graph.microsoft.com/.default",
        aks_scope = AKS,
    })
    T.eq(cloud.get("AzureCloud"), cloud.get())
    T.eq(cloud.get("azurepubliccloud").name, "AzureCloud")
end)


T.test("US Government and China have their own hosts and the same AKS scope", function()
    local gov = cloud.get("AzureUSGovernment")
    T.eq(gov.authority_host, "https://login.microsoftonline.us")
    T.eq(gov.arm, "https://management.usgovcloudapi.net")
    T.eq(gov.graph, "https://graph.microsoft.us")
    T.eq(gov.arm_scope, "https://management.core.usgovcloudapi.net/.default")
    T.eq(gov.aks_scope, AKS)
    local cn = cloud.get("AzureChinaCloud")
    T.eq(cn.authority_host, "https://login.chinacloudapi.cn")
    T.eq(cn.arm, "https://management.chinacloudapi.cn")
    T.eq(cn.graph, "https://microsoftgraph.chinacloudapi.cn")
    T.eq(cn.graph_scope, "https://microsoftgraph.chinacloudapi.cn/.default")
    T.eq(cn.aks_scope, AKS)
end)


T.test("overrides move endpoints but never scopes", function()
    local c = cloud.get("AzureCloud", { authority_host = "https://127.0.0.1:8443/",
        arm = "https://127.0.0.1:8444//", graph = "https://127.0.0.1:8445" })
    T.eq(c.authority_host, "https://127.0.0.1:8443")
    T.eq(c.arm, "https://127.0.0.1:8444")
    T.eq(c.graph, "https://127.0.0.1:8445")
    T.eq(c.arm_scope, "https://management.azure.com/.default")
    T.eq(c.graph_scope, "https://graph.microsoft.com/.default")
    -- the table is a copy: changing it changes nothing else
    c.arm = "x"
    T.eq(cloud.get().arm, "https://management.azure.com")
end)


T.test("scope names map to the cloud's scopes and anything else passes through", function()
    local c = cloud.get("AzureUSGovernment")
    T.eq(cloud.scope(c, "arm"), c.arm_scope)
    T.eq(cloud.scope(c, "graph"), c.graph_scope)
    T.eq(cloud.scope(c, "aks"), AKS)
    T.eq(cloud.scope(c, "api://my-app/.default"), "api://my-app/.default")
    T.raises(cloud.scope, "scope name expected", c, "")
end)


T.test("an unknown cloud or a malformed endpoint fails with invalid", function()
    local c, msg, code = cloud.get("AzureGermanCloud")
    T.eq(c, nil)
    T.eq(code, "invalid")
    T.contains(msg, "AzureGermanCloud")
    c, msg, code = cloud.get("AzureCloud", { arm = "management.azure.com" })
    T.eq(c, nil)
    T.eq(code, "invalid")
    T.contains(msg, "arm")
    T.raises(cloud.get, "unknown override 'login'", "AzureCloud", { login = "https://x" })
    T.raises(cloud.get, "bad argument #1", 42)
end)


T.test("the environment's cloud is the public one when nothing is set", function()
    -- The test runner's environment has no AZURE_* variables; the served-app test in
    -- identity_test.lua covers AZURE_AUTHORITY_HOST.
    local c = assert(cloud.current())
    T.eq(c.arm_scope, cloud.get(os.getenv("AZURE_CLOUD")).arm_scope)
end)

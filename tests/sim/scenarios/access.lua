-- The cluster-access scenario: the default one plus one AKS cluster for each way reaching a
-- cluster can go wrong (the fields are described in default.lua), and a subscription where
-- Microsoft.ContainerService is not registered yet.
--
--   aks-private      private = true: privateFQDN only; kubeconfig server https://<privateFQDN>:443
--   aks-expired      admin_cert = "expired": the admin client certificate expired 35 days ago
--   aks-wrong-ca     ca = "wrong": the kubeconfig's CA did not sign the API server's certificate
--   aks-unreachable  unreachable = true: nothing listens where the kubeconfig points
--   aks-ms-broken    metrics_server = "unavailable": metrics-server deployed, never Available
--   "Aurora Sim Unregistered" (UNREGISTERED_SUB): Enabled, Contributor for the default service
--                    principal, Microsoft.ContainerService NotRegistered, no clusters
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
local s = dofile(here .. "/default.lua")

local SUB = s.default.subscription
local UNREGISTERED_SUB = "5061728a-94a5-4b6c-97d8-e9f0a1b2c3d4"

local function cluster(name, fields)
    local c = { subscription = SUB, resource_group = "rg-aks", name = name, location = "eastus",
        version = "1.29.4", local_accounts = true, metrics_server = true, power = "Running" }
    for k, v in pairs(fields) do c[k] = v end
    s.clusters[#s.clusters + 1] = c
end

cluster("aks-private", { private = true, location = "westeurope" })
cluster("aks-expired", { admin_cert = "expired" })
cluster("aks-wrong-ca", { ca = "wrong" })
cluster("aks-unreachable", { unreachable = true })
cluster("aks-ms-broken", { metrics_server = "unavailable" })

s.subscriptions[#s.subscriptions + 1] = { id = UNREGISTERED_SUB, name = "Aurora Sim Unregistered",
    state = "Enabled", tenant = s.tenants[1].id }
s.role_assignments[#s.role_assignments + 1] = { principal = s.applications[1].spObjectId,
    role = "Contributor", scope = "/subscriptions/" .. UNREGISTERED_SUB }
s.providers["Microsoft.ContainerService"] = { [UNREGISTERED_SUB] = "NotRegistered" }
return s

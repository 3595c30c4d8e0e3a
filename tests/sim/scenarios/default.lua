-- The default scenario for tests: one tenant, a few service principals with different rights,
-- subscriptions in every state, two AKS clusters (local accounts on and off) and a handful of
-- resources of each kind. Secrets here are obviously fake and exist only in the simulator.
local DAY = 86400
local now = os.time()

local TENANT = "8f0c1a2b-3c4d-4e5f-8a6b-7c8d9e0f1a2b"
local SUB = "0b1c2d3e-4f50-4617-8283-949596979899"
local SUB_DISABLED = "1c2d3e4f-5061-4728-9394-a5b6c7d8e9f0"
local SUB_WARNED = "2d3e4f50-6172-4839-a4b5-c6d7e8f90a1b"
local SUB_OTHER = "3e4f5061-7283-494a-b5c6-d7e8f90a1b2c"

return {
    token_lifetime = 3600,
    tenants = {
        { id = TENANT, domain = "contoso-sim.onmicrosoft.com", name = "Contoso (simulated)" },
    },
    applications = {
        { appId = "5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d", displayName = "aurora-sp",
          tenant = TENANT, objectId = "6b7c8d9e-0f1a-4b2c-9d3e-4f5a6b7c8d9e",
          spObjectId = "7c8d9e0f-1a2b-4c3d-8e4f-5a6b7c8d9e0f",
          secrets = {
              { id = "8d9e0f1a-2b3c-4d4e-9f5a-6b7c8d9e0f1a", value = "sim-secret-contributor-0001",
                expires = now + 365 * DAY },
          },
          certificates = { { name = "aurora-sp-cert" } } },
        { appId = "9e0f1a2b-3c4d-4e5f-8a6b-7c8d9e0f1a2c", displayName = "aurora-reader",
          tenant = TENANT, objectId = "0f1a2b3c-4d5e-4f6a-9b7c-8d9e0f1a2b3d",
          spObjectId = "1a2b3c4d-5e6f-4a7b-8c8d-9e0f1a2b3c4e",
          secrets = {
              { id = "2b3c4d5e-6f7a-4b8c-9d9e-0f1a2b3c4d5f", value = "sim-secret-reader-0002",
                expires = now + 365 * DAY },
          } },
        { appId = "3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e60", displayName = "aurora-expired",
          tenant = TENANT, objectId = "4d5e6f7a-8b9c-4dae-9f0a-1b2c3d4e5f61",
          spObjectId = "5e6f7a8b-9cad-4ebf-8a1b-2c3d4e5f6a72",
          secrets = {
              { id = "6f7a8b9c-adbe-4fc0-9b2c-3d4e5f6a7b83", value = "sim-secret-expired-0003",
                expires = now - 10 * DAY },
          } },
        { appId = "7a8b9cad-becf-4d01-8c3d-4e5f6a7b8c94", displayName = "aurora-no-access",
          tenant = TENANT, objectId = "8b9cadbe-cfd0-4e12-9d4e-5f6a7b8c9da5",
          spObjectId = "9cadbecf-d0e1-4f23-8e5f-6a7b8c9daeb6",
          secrets = {
              { id = "adbecfd0-e1f2-4034-9f6a-7b8c9daebfc7", value = "sim-secret-noaccess-0004",
                expires = now + 365 * DAY },
          } },
    },
    role_assignments = {
        { principal = "7c8d9e0f-1a2b-4c3d-8e4f-5a6b7c8d9e0f", role = "Contributor",
          scope = "/subscriptions/" .. SUB },
        { principal = "7c8d9e0f-1a2b-4c3d-8e4f-5a6b7c8d9e0f", role = "Contributor",
          scope = "/subscriptions/" .. SUB_DISABLED },
        { principal = "7c8d9e0f-1a2b-4c3d-8e4f-5a6b7c8d9e0f", role = "Reader",
          scope = "/subscriptions/" .. SUB_WARNED },
        { principal = "1a2b3c4d-5e6f-4a7b-8c8d-9e0f1a2b3c4e", role = "Reader",
          scope = "/subscriptions/" .. SUB },
        { principal = "5e6f7a8b-9cad-4ebf-8a1b-2c3d4e5f6a72", role = "Reader",
          scope = "/subscriptions/" .. SUB },
    },
    subscriptions = {
        { id = SUB, name = "Aurora Sim Production", state = "Enabled", tenant = TENANT },
        { id = SUB_DISABLED, name = "Aurora Sim Disabled", state = "Disabled", tenant = TENANT },
        { id = SUB_WARNED, name = "Aurora Sim Warned", state = "Warned", tenant = TENANT },
        { id = SUB_OTHER, name = "Aurora Sim Unassigned", state = "Enabled", tenant = TENANT },
    },
    resource_groups = {
        { subscription = SUB, name = "rg-aks", location = "eastus" },
        { subscription = SUB, name = "rg-apps", location = "westeurope" },
        { subscription = SUB, name = "rg-data", location = "eastus" },
    },
    -- Resource provider registrations that differ from the defaults (arm.lua's PROVIDERS:
    -- Microsoft.ContainerService and most others Registered; KeyVault, ManagedIdentity,
    -- OperationalInsights, Insights NotRegistered): namespace -> state for every subscription,
    -- or namespace -> {subscription id -> state}. States: "NotRegistered", "Registered",
    -- "Registering", "Unregistered". GET /subscriptions/{id}/providers/{ns} reads it; POST
    -- .../providers/{ns}/register moves it to Registering, then Registered after the
    -- register_delay_ms knob (default 0: the next GET). While a namespace is not Registered,
    -- listing or reading its resources (and listClusterAdminCredential) is 409
    -- MissingSubscriptionRegistration. Example:
    --   providers = { ["Microsoft.ContainerService"] = { [SUB_OTHER] = "NotRegistered" } },
    providers = {},
    -- AKS clusters. Each has its own Kubernetes API server (kube.lua) on a loopback port.
    --   subscription, resource_group, name, location, version ("1.29.4"), power ("Running")
    --   local_accounts  false: disableLocalAccounts; listClusterAdminCredential is 400 and the
    --                   API server refuses client certificates and the static token (Entra
    --                   tokens only); also turns on aadProfile unless aad says otherwise
    --   aad             AAD (Entra) integration shown in aadProfile; default: not local_accounts
    --   metrics_server  true: AKS's managed metrics-server is deployed and Available; false: none
    --                   (metrics.k8s.io absent until a client creates it); "unavailable": deployed
    --                   but its Deployment never becomes Available (pods Pending, Progressing
    --                   False ProgressDeadlineExceeded), APIService v1beta1.metrics.k8s.io False
    --                   (MissingEndpoints), metrics.k8s.io answers 503
    --   private         true: a private cluster. ARM shows apiServerAccessProfile
    --                   .enablePrivateCluster = true, a privateFQDN
    --                   "<dnsPrefix>-<8 hex>.<guid>.privatelink.<location>.azmk8s.io" and no fqdn;
    --                   its kubeconfigs' server is https://<privateFQDN>:443, a name that never
    --                   resolves (the simulated API server still listens on its loopback port)
    --   public_fqdn     with private: true also keeps the public fqdn
    --                   (enablePrivateClusterPublicFQDN); on a public cluster false drops fqdn
    --   fqdn            overrides the public FQDN ("<dnsPrefix>-<8 hex>.hcp.<location>.azmk8s.io")
    --   admin_cert      "expired": the client certificate of listClusterAdminCredential (and of
    --                   listClusterUserCredential on local-account clusters) expired 35 days ago
    --                   (valid from 400 days ago), and those kubeconfigs carry no static token; the
    --                   API server answers 401 Unauthorized to that certificate
    --   ca              "wrong": the kubeconfigs' certificate-authority-data is another CA (same
    --                   name, other key) than the one that signed the API server's certificate,
    --                   so a client that verifies TLS with it fails
    --   unreachable     true: the kubeconfigs' server is https://127.0.0.1:<port> where nothing
    --                   listens (connection refused at once)
    -- sim.config.clusters[name] (config.json) has url and ca_file (where the API server really
    -- listens and its CA) and server and kubeconfig_ca_file (what its kubeconfigs say).
    -- scenarios/access.lua adds one cluster for each of these cases.
    clusters = {
        { subscription = SUB, resource_group = "rg-aks", name = "aks-prod", location = "eastus",
          version = "1.29.4", local_accounts = true, metrics_server = true, power = "Running" },
        { subscription = SUB, resource_group = "rg-aks", name = "aks-aad", location = "eastus",
          version = "1.30.1", local_accounts = false, metrics_server = false, power = "Running" },
    },
    vms = {
        { subscription = SUB, resource_group = "rg-apps", name = "vm-web-1", location = "westeurope",
          size = "Standard_D2s_v5", power = "running", os = "Linux" },
        { subscription = SUB, resource_group = "rg-apps", name = "vm-web-2", location = "westeurope",
          size = "Standard_D2s_v5", power = "deallocated", os = "Linux" },
    },
    vm_scale_sets = {
        { subscription = SUB, resource_group = "rg-aks", name = "aks-nodepool1-vmss",
          location = "eastus", sku = "Standard_D4s_v5", capacity = 3 },
    },
    sql_servers = {
        { subscription = SUB, resource_group = "rg-data", name = "sql-aurora-sim",
          location = "eastus", databases = { { name = "orders", edition = "Standard" },
              { name = "master", edition = "System" } } },
    },
    storage_accounts = {
        { subscription = SUB, resource_group = "rg-data", name = "staurorasim01",
          location = "eastus", kind = "StorageV2", sku = "Standard_LRS", tier = "Hot" },
    },
    sites = {
        { subscription = SUB, resource_group = "rg-apps", name = "app-frontend",
          location = "westeurope", kind = "app,linux" },
        { subscription = SUB, resource_group = "rg-apps", name = "func-jobs",
          location = "westeurope", kind = "functionapp,linux" },
    },
    vnets = {
        { subscription = SUB, resource_group = "rg-aks", name = "vnet-aks", location = "eastus",
          address_space = { "10.224.0.0/12" },
          subnets = { { name = "aks-subnet", prefix = "10.224.0.0/16" } } },
    },
    nsgs = {
        { subscription = SUB, resource_group = "rg-aks", name = "nsg-aks", location = "eastus",
          rules = { { name = "allow-https", port = "443", access = "Allow", priority = 100 } } },
    },
    container_groups = {
        { subscription = SUB, resource_group = "rg-apps", name = "aci-batch",
          location = "westeurope", os = "Linux", state = "Running" },
    },
    costs = {
        { date = "2026-11-01", service = "Azure Kubernetes Service", resource_group = "rg-aks",
          cost = 41.25, currency = "USD" },
        { date = "2026-11-01", service = "Virtual Machines", resource_group = "rg-apps",
          cost = 12.5, currency = "USD" },
        { date = "2026-11-02", service = "Azure Kubernetes Service", resource_group = "rg-aks",
          cost = 40.75, currency = "USD" },
        { date = "2026-11-02", service = "Storage", resource_group = "rg-data",
          cost = 1.05, currency = "USD" },
    },
    vault = {
        root_token = "sim-vault-root-token",
        approle = { role_id = "sim-role-id-0001", secret_id = "sim-secret-id-0001",
            policies = { "aurora" }, token_ttl = 3600 },
    },
    -- What sim.env exports: the credentials a test or a person uses by default.
    default = {
        tenant = TENANT,
        client_id = "5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d",
        client_secret = "sim-secret-contributor-0001",
        subscription = SUB,
        aks_resource_group = "rg-aks",
        aks_cluster = "aks-prod",
    },
}

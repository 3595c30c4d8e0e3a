-- The simulated Azure Resource Manager: authentication and RBAC as ARM answers them,
-- subscriptions, providers, AKS clusters and their kubeconfigs, role assignments, the listing
-- calls of every resource type, Resource Graph, Cost Management, paging and throttling.
local T = require "aurora.test"
local harness = require "sim.harness"
local crypto = require "aurora.crypto"
local http = require "aurora.http"
local json = require "aurora.json"
local jwt = require "aurora.jwt"
local secret = require "aurora.secret"
local time = require "aurora.time"

local SUB = "0b1c2d3e-4f50-4617-8283-949596979899"
local SUB_DISABLED = "1c2d3e4f-5061-4728-9394-a5b6c7d8e9f0"
local SUB_WARNED = "2d3e4f50-6172-4839-a4b5-c6d7e8f90a1b"
local SUB_OTHER = "3e4f5061-7283-494a-b5c6-d7e8f90a1b2c"
local TENANT = "8f0c1a2b-3c4d-4e5f-8a6b-7c8d9e0f1a2b"
local CONTRIBUTOR_OID = "7c8d9e0f-1a2b-4c3d-8e4f-5a6b7c8d9e0f"
local READER = { id = "9e0f1a2b-3c4d-4e5f-8a6b-7c8d9e0f1a2c", secret = "sim-secret-reader-0002",
    oid = "1a2b3c4d-5e6f-4a7b-8c8d-9e0f1a2b3c4e" }
local NO_ACCESS = { id = "7a8b9cad-becf-4d01-8c3d-4e5f6a7b8c94",
    secret = "sim-secret-noaccess-0004", oid = "9cadbecf-d0e1-4f23-8e5f-6a7b8c9daeb6" }
local V = "?api-version=2022-11-01"
local AKS = "/subscriptions/" .. SUB ..
    "/resourceGroups/rg-aks/providers/Microsoft.ContainerService/managedClusters/"
local UNREGISTERED_SUB = "5061728a-94a5-4b6c-97d8-e9f0a1b2c3d4"
local ACCESS = "tests/sim/scenarios/access.lua"
local CONTRIBUTOR_ROLE = "b24988ac-6180-42a0-ab88-20f7382dd24c"
local READER_ROLE = "acdd72a7-3385-48ef-bd42-f606fba81ae7"


-- A request to ARM. Returns status, decoded body (or nil) and the response.
local function arm(sim, method, path, token, opts)
    opts = opts or {}
    local res = assert(sim:request("arm", method, path, { bearer = token, json = opts.json,
        headers = opts.headers }))
    local body = res.body ~= "" and json.decode(res.body) or nil
    return res.status, body, res
end


-- Follows nextLink to the end; returns every item and the number of pages.
local function all_pages(sim, path, token)
    local status, body = arm(sim, "GET", path, token)
    T.eq(status, 200, path)
    local items, pages = {}, 1
    while true do
        for _, v in ipairs(body.value) do items[#items + 1] = v end
        if not body.nextLink then break end
        T.match(body.nextLink, "^https://127%.0%.0%.1:%d+/")
        T.contains(body.nextLink, "api-version=")
        local res = assert(http.request { url = body.nextLink, bearer = token,
            ca_file = sim.env.SIM_CA_FILE })
        T.eq(res.status, 200, body.nextLink)
        body = json.decode(res.body)
        pages = pages + 1
    end
    return items, pages
end


local function names(items)
    local out = {}
    for i, v in ipairs(items) do out[i] = v.name or v.displayName end
    table.sort(out)
    return out
end


-- A token minted with the simulator's own signing key (for expired or foreign tokens).
local function mint(sim, claims)
    local key = assert(crypto.load_key(assert(secret.from_file(sim.dir .. "/signing.key"))))
    local now = os.time()
    claims.iat = claims.iat or now - 7200
    claims.nbf = claims.nbf or now - 7200
    claims.exp = claims.exp or now + 3600
    claims.tid = claims.tid or TENANT
    claims.oid = claims.oid or CONTRIBUTOR_OID
    claims.iss = "https://sts.windows.net/" .. claims.tid .. "/"
    return jwt.sign(claims, key, { alg = "RS256" })
end


local function decode_kubeconfig(body)
    T.eq(#body.kubeconfigs, 1)
    return assert(crypto.b64decode(body.kubeconfigs[1].value)), body.kubeconfigs[1].name
end


T.test("returns 401 in ARM's envelope when the token is missing, malformed, expired or foreign",
    function()
        local sim = harness.start()
        local status, body, res = arm(sim, "GET", "/subscriptions?api-version=2022-12-01")
        T.eq(status, 401)
        T.eq(body.error.code, "AuthenticationFailed")
        T.contains(body.error.message, "'Authorization' header is missing")
        T.contains(res.headers["www-authenticate"], 'Bearer authorization_uri="https://login.')
        T.ok(res.headers["x-ms-request-id"])
        T.ok(res.headers["x-ms-correlation-request-id"])

        status, body = arm(sim, "GET", "/subscriptions?api-version=2022-12-01", "not-a-jwt")
        T.eq(status, 401)
        T.eq(body.error.code, "InvalidAuthenticationToken")

        local expired = mint(sim, { aud = "https://management.azure.com/",
            exp = os.time() - 60 })
        status, body, res = arm(sim, "GET", "/subscriptions?api-version=2022-12-01", expired)
        T.eq(status, 401)
        T.eq(body.error.code, "ExpiredAuthenticationToken")
        T.match(body.error.message, "^The access token expiry UTC time '%d+/%d+/%d+ %d+:%d%d:%d%d " ..
            "[AP]M' is earlier than current UTC time '.+'%.$")
        T.contains(res.headers["www-authenticate"], 'error="invalid_token"')

        local graph = mint(sim, { aud = "https://graph.microsoft.com" })
        status, body = arm(sim, "GET", "/subscriptions?api-version=2022-12-01", graph)
        T.eq(status, 401)
        T.eq(body.error.code, "InvalidAuthenticationTokenAudience")

        -- Both ARM audiences, with and without the trailing slash, are accepted.
        for _, aud in ipairs { "https://management.core.windows.net/",
            "https://management.azure.com" } do
            status = arm(sim, "GET", "/subscriptions?api-version=2022-12-01",
                mint(sim, { aud = aud }))
            T.eq(status, 200, aud)
        end
    end)


T.test("a principal sees only the subscriptions it has a role on", function()
    local sim = harness.start()
    local tok = sim:token()
    local status, body, res = arm(sim, "GET", "/subscriptions?api-version=2022-12-01", tok)
    T.eq(status, 200)
    T.ok(res.headers["x-ms-ratelimit-remaining-tenant-reads"])
    T.eq(body.count, { type = "Total", value = 3 })
    local by_id = {}
    for _, s in ipairs(body.value) do by_id[s.subscriptionId] = s end
    T.eq(by_id[SUB].id, "/subscriptions/" .. SUB)
    T.eq(by_id[SUB].displayName, "Aurora Sim Production")
    T.eq(by_id[SUB].tenantId, TENANT)
    T.eq(by_id[SUB].state, "Enabled")
    T.eq(by_id[SUB].authorizationSource, "RoleBased")
    T.eq(by_id[SUB].subscriptionPolicies.spendingLimit, "Off")
    T.eq(by_id[SUB_DISABLED].state, "Disabled")
    T.eq(by_id[SUB_WARNED].state, "Warned")
    T.eq(by_id[SUB_OTHER], nil)

    status, body = arm(sim, "GET", "/subscriptions/" .. SUB .. "?api-version=2022-12-01", tok)
    T.eq(status, 200)
    T.eq(body.subscriptionId, SUB)
    status, body = arm(sim, "GET", "/subscriptions/" .. SUB_OTHER .. "?api-version=2022-12-01",
        tok)
    T.eq(status, 404)
    T.eq(body.error, { code = "SubscriptionNotFound",
        message = "The subscription '" .. SUB_OTHER .. "' could not be found." })

    -- az asks for https://management.core.windows.net//.default.
    local az = sim:token("https://management.core.windows.net//.default")
    status, body = arm(sim, "GET", "/subscriptions?api-version=2019-11-01", az)
    T.eq(status, 200)
    T.eq(#body.value, 3)

    local reader = sim:token(nil, READER.id, READER.secret)
    status, body = arm(sim, "GET", "/subscriptions?api-version=2022-12-01", reader)
    T.eq(status, 200)
    T.eq(names(body.value), { "Aurora Sim Production" })

    local none = sim:token(nil, NO_ACCESS.id, NO_ACCESS.secret)
    status, body = arm(sim, "GET", "/subscriptions?api-version=2022-12-01", none)
    T.eq(status, 200)
    T.eq(#body.value, 0)
    T.eq(body.count.value, 0)
    status, body = arm(sim, "GET", "/subscriptions/" .. SUB ..
        "/providers/Microsoft.ContainerService/managedClusters" .. V, none)
    T.eq(status, 403)
    T.eq(body.error.code, "AuthorizationFailed")

    status, body = arm(sim, "GET", "/tenants?api-version=2022-12-01", tok)
    T.eq(status, 200)
    T.eq(body.value[1].tenantId, TENANT)
end)


T.test("requires a well-formed api-version on every route", function()
    local sim = harness.start()
    local tok = sim:token()
    local status, body = arm(sim, "GET", "/subscriptions", tok)
    T.eq(status, 400)
    T.eq(body.error.code, "MissingApiVersionParameter")
    status, body = arm(sim, "GET", "/subscriptions?api-version=latest", tok)
    T.eq(status, 400)
    T.eq(body.error.code, "InvalidApiVersionParameter")
    for _, v in ipairs { "2016-06-01", "2024-11-01", "2025-07-01-preview" } do
        T.eq((arm(sim, "GET", "/subscriptions?api-version=" .. v, tok)), 200, v)
    end
end)


T.test("lists page with absolute nextLinks when the page_size knob is small", function()
    local sim = harness.start()
    local tok = sim:token()
    sim:knobs { page_size = 1 }
    local subs, pages = all_pages(sim, "/subscriptions?api-version=2022-12-01", tok)
    T.eq(pages, 3)
    T.eq(#subs, 3)
    local rgs
    rgs, pages = all_pages(sim, "/subscriptions/" .. SUB .. "/resourcegroups?api-version=2021-04-01",
        tok)
    T.eq(pages, #rgs)
    T.ok(#rgs >= 3)
    local clusters
    clusters, pages = all_pages(sim, "/subscriptions/" .. SUB ..
        "/providers/Microsoft.ContainerService/managedClusters" .. V, tok)
    T.eq(names(clusters), { "aks-aad", "aks-prod" })
    T.eq(pages, 2)
    local status, body = arm(sim, "GET", "/subscriptions?api-version=2022-12-01&$skiptoken=bogus",
        tok)
    T.eq(status, 400)
    T.ok(body.error.code)
end)


T.test("resource groups are listed and read in any casing; HEAD answers 204 or 404", function()
    local sim = harness.start()
    local tok = sim:token()
    local status, body = arm(sim, "GET", "/subscriptions/" .. SUB ..
        "/resourceGroups?api-version=2021-04-01", tok)
    T.eq(status, 200)
    local want = { "rg-aks", "rg-apps", "rg-data" }
    local got = {}
    for _, rg in ipairs(body.value) do
        T.eq(rg.type, "Microsoft.Resources/resourceGroups")
        T.eq(rg.properties.provisioningState, "Succeeded")
        if not rg.name:match("^MC_") then got[#got + 1] = rg.name end
        if rg.name:match("^MC_") then T.contains(rg.managedBy, "/managedClusters/") end
    end
    table.sort(got)
    T.eq(got, want)
    status, body = arm(sim, "GET", "/subscriptions/" .. SUB ..
        "/resourcegroups/RG-APPS?api-version=2021-04-01", tok)
    T.eq(status, 200)
    T.eq(body.id, "/subscriptions/" .. SUB .. "/resourceGroups/rg-apps")
    T.eq(body.location, "westeurope")
    status, body = arm(sim, "GET", "/subscriptions/" .. SUB ..
        "/resourceGroups/nope?api-version=2021-04-01", tok)
    T.eq(status, 404)
    T.eq(body.error, { code = "ResourceGroupNotFound",
        message = "Resource group 'nope' could not be found." })
    status = arm(sim, "HEAD", "/subscriptions/" .. SUB .. "/resourcegroups/rg-aks" ..
        "?api-version=2021-04-01", tok)
    T.eq(status, 204)
    status = arm(sim, "HEAD", "/subscriptions/" .. SUB .. "/resourcegroups/nope" ..
        "?api-version=2021-04-01", tok)
    T.eq(status, 404)
end)


T.test("providers register: NotRegistered, Registering, then Registered; Readers may not",
    function()
        local sim = harness.start()
        local tok = sim:token()
        local path = "/subscriptions/" .. SUB .. "/providers/Microsoft.KeyVault"
        local status, body = arm(sim, "GET", path .. "?api-version=2021-04-01", tok)
        T.eq(status, 200)
        T.eq(body.namespace, "Microsoft.KeyVault")
        T.eq(body.registrationState, "NotRegistered")
        T.eq(body.registrationPolicy, "RegistrationRequired")
        T.eq(body.id, path)

        local reader = sim:token(nil, READER.id, READER.secret)
        status, body = arm(sim, "POST", path .. "/register?api-version=2021-04-01", reader)
        T.eq(status, 403)
        T.eq(body.error.code, "AuthorizationFailed")
        T.contains(body.error.message, "'Microsoft.KeyVault/register/action'")

        local _, _, res
        status, body, res = arm(sim, "POST", path .. "/register?api-version=2021-04-01", tok)
        T.eq(status, 200)
        T.eq(body.registrationState, "Registering")
        T.ok(res.headers["x-ms-ratelimit-remaining-subscription-writes"])
        status, body = arm(sim, "GET", path .. "?api-version=2021-04-01", tok)
        T.eq(body.registrationState, "Registered")

        status, body = arm(sim, "GET", "/subscriptions/" .. SUB .. "/providers?api-version=2021-04-01",
            tok)
        T.eq(status, 200)
        local states = {}
        for _, p in ipairs(body.value) do states[p.namespace] = p.registrationState end
        T.eq(states["Microsoft.ContainerService"], "Registered")
        T.eq(states["Microsoft.KeyVault"], "Registered")

        status, body = arm(sim, "GET", "/subscriptions/" .. SUB ..
            "/providers/Microsoft.Nope?api-version=2021-04-01", tok)
        T.eq(status, 404)
        T.eq(body.error.code, "InvalidResourceNamespace")

        -- A disabled subscription is read-only.
        status, body = arm(sim, "POST", "/subscriptions/" .. SUB_DISABLED ..
            "/providers/Microsoft.KeyVault/register?api-version=2021-04-01", tok)
        T.eq(status, 409)
        T.eq(body.error.code, "ReadOnlyDisabledSubscription")

        -- Reset restores the scenario's registrations.
        T.eq(assert(sim:request("arm", "POST", "/_sim/reset")).status, 200)
        status, body = arm(sim, "GET", path .. "?api-version=2021-04-01", tok)
        T.eq(body.registrationState, "NotRegistered")
    end)


T.test("AKS clusters list at subscription and group scope and read with the fields az uses",
    function()
        local sim = harness.start()
        local tok = sim:token()
        local status, body = arm(sim, "GET", "/subscriptions/" .. SUB ..
            "/providers/Microsoft.ContainerService/managedClusters" .. V, tok)
        T.eq(status, 200)
        T.eq(names(body.value), { "aks-aad", "aks-prod" })
        status, body = arm(sim, "GET", "/subscriptions/" .. SUB ..
            "/resourcegroups/rg-aks/providers/microsoft.containerservice/managedclusters" .. V,
            tok)
        T.eq(status, 200)
        T.eq(#body.value, 2)

        status, body = arm(sim, "GET", AKS .. "aks-prod" .. V, tok)
        T.eq(status, 200)
        T.eq(body.id, "/subscriptions/" .. SUB ..
            "/resourcegroups/rg-aks/providers/Microsoft.ContainerService/managedClusters/aks-prod")
        T.eq(body.type, "Microsoft.ContainerService/ManagedClusters")
        T.eq(body.location, "eastus")
        local p = body.properties
        T.eq(p.kubernetesVersion, "1.29.4")
        T.eq(p.provisioningState, "Succeeded")
        T.eq(p.powerState, { code = "Running" })
        T.eq(p.disableLocalAccounts, false)
        T.match(p.fqdn, "%.hcp%.eastus%.azmk8s%.io$")
        T.eq(p.agentPoolProfiles[1].mode, "System")
        T.eq(p.aadProfile, nil)

        status, body = arm(sim, "GET", AKS .. "aks-aad" .. V, tok)
        T.eq(body.properties.disableLocalAccounts, true)
        T.eq(body.properties.aadProfile.managed, true)
        T.eq(body.properties.aadProfile.tenantID, TENANT)
        T.eq(body.properties.kubernetesVersion, "1.30.1")

        status, body = arm(sim, "GET", AKS .. "aks-missing" .. V, tok)
        T.eq(status, 404)
        T.eq(body.error.code, "ResourceNotFound")
        T.contains(body.error.message,
            "'Microsoft.ContainerService/managedClusters/aks-missing' under resource group 'rg-aks'")
    end)


T.test("the admin kubeconfig holds the cluster's URL, CA and a client certificate it accepts",
    function()
        local sim = harness.start()
        local tok = sim:token()
        local status, body, res = arm(sim, "POST", AKS .. "aks-prod/listClusterAdminCredential" .. V,
            tok)
        T.eq(status, 200)
        T.ok(res.headers["x-ms-ratelimit-remaining-subscription-writes"])
        local yaml, name = decode_kubeconfig(body)
        T.eq(name, "clusterAdmin")
        local cluster = sim.config.clusters["aks-prod"]
        T.contains(yaml, "    server: " .. cluster.url .. "\n")
        T.contains(yaml, "current-context: aks-prod\n")
        T.contains(yaml, "    user: clusterAdmin_rg-aks_aks-prod\n")
        local ca_pem = T.read_file(cluster.ca_file)
        T.eq(crypto.b64decode(yaml:match("certificate%-authority%-data: (%S+)")), ca_pem)
        local cert_pem = assert(crypto.b64decode(yaml:match("client%-certificate%-data: (%S+)")))
        local key_pem = assert(crypto.b64decode(yaml:match("client%-key%-data: (%S+)")))
        local token = yaml:match("\n    token: (%x+)\n")
        T.ok(token, "a static token")
        local cert = assert(crypto.load_cert(cert_pem))
        T.eq(cert:subject(), "CN=masterclient,O=system:masters")
        T.ok(cert:verify_signed_by(assert(crypto.load_cert(ca_pem))))
        T.ok(crypto.load_key(key_pem))

        -- The simulated API server accepts the certificate (when it serves /version).
        local kres = http.request { url = cluster.url .. "/version", ca_file = cluster.ca_file,
            client_cert = cert_pem, client_key = key_pem }
        if kres and kres.status ~= 404 then
            T.eq(kres.status, 200, kres.body)
            T.ok(json.decode(kres.body).gitVersion)
            kres = assert(http.request { url = cluster.url .. "/version",
                ca_file = cluster.ca_file, bearer = token })
            T.eq(kres.status, 200, "the static token works too")
        end

        -- Like AKS, the credential stays the same until the cluster's certificates are rotated.
        local _, again = arm(sim, "POST", AKS .. "aks-prod/listClusterAdminCredential" .. V, tok)
        T.eq(decode_kubeconfig(again), yaml)
    end)


T.test("a Reader gets 403 AuthorizationFailed on the cluster credential actions", function()
    local sim = harness.start()
    local reader = sim:token(nil, READER.id, READER.secret)
    local status, body = arm(sim, "GET", AKS .. "aks-prod" .. V, reader)
    T.eq(status, 200, "Readers may read the cluster")
    status, body = arm(sim, "POST", AKS .. "aks-prod/listClusterAdminCredential" .. V, reader)
    T.eq(status, 403)
    T.eq(body.error.code, "AuthorizationFailed")
    T.eq(body.error.message, "The client '" .. READER.id .. "' with object id '" .. READER.oid ..
        "' does not have authorization to perform action " ..
        "'Microsoft.ContainerService/managedClusters/listClusterAdminCredential/action' over " ..
        "scope '" .. AKS .. "aks-prod' or the scope is invalid. If access was recently " ..
        "granted, please refresh your credentials.")
    status, body = arm(sim, "POST", AKS .. "aks-prod/listClusterUserCredential" .. V, reader)
    T.eq(status, 403)
    T.contains(body.error.message, "listClusterUserCredential/action")
end)


T.test("listClusterAdminCredential is 400 with AKS's message when local accounts are disabled",
    function()
        local sim = harness.start()
        local tok = sim:token()
        local status, body = arm(sim, "POST", AKS .. "aks-aad/listClusterAdminCredential" .. V,
            tok)
        T.eq(status, 400)
        T.eq(body, { error = { code = "BadRequest", message = "Getting static credential is " ..
            "not allowed because this cluster is set to disable local accounts." } })
    end)


T.test("user credentials: exec (kubelogin) or azure auth-provider for AAD clusters", function()
    local sim = harness.start()
    local tok = sim:token()
    local status, body = arm(sim, "POST", AKS .. "aks-aad/listClusterUserCredential" .. V, tok)
    T.eq(status, 200)
    local yaml, name = decode_kubeconfig(body)
    T.eq(name, "clusterUser")
    T.contains(yaml, "    server: " .. sim.config.clusters["aks-aad"].url .. "\n")
    T.contains(yaml, "      command: kubelogin\n")
    T.contains(yaml, "      apiVersion: client.authentication.k8s.io/v1beta1\n")
    T.contains(yaml, "      - --server-id\n      - 6dae42f8-4368-4678-94ff-3960e28e3630\n")
    T.contains(yaml, "      - --tenant-id\n      - " .. TENANT .. "\n")
    T.not_contains(yaml, "client-key-data")

    status, body = arm(sim, "POST", AKS .. "aks-aad/listClusterUserCredential" .. V ..
        "&format=exec", tok)
    T.eq(status, 200)
    T.contains(decode_kubeconfig(body), "command: kubelogin")

    status, body = arm(sim, "POST", AKS .. "aks-aad/listClusterUserCredential" .. V ..
        "&format=azure", tok)
    T.eq(status, 200)
    yaml = decode_kubeconfig(body)
    T.contains(yaml, "      name: azure\n")
    T.contains(yaml, "        apiserver-id: 6dae42f8-4368-4678-94ff-3960e28e3630\n")

    status, body = arm(sim, "POST", AKS .. "aks-aad/listClusterUserCredential" .. V ..
        "&format=yaml", tok)
    T.eq(status, 400)

    -- A local-account cluster's user kubeconfig carries a certificate and a token.
    status, body = arm(sim, "POST", AKS .. "aks-prod/listClusterUserCredential" .. V, tok)
    T.eq(status, 200)
    yaml = decode_kubeconfig(body)
    T.contains(yaml, "client-certificate-data: ")
    T.match(yaml, "\n    token: %x+\n")
    T.contains(yaml, "user: clusterUser_rg-aks_aks-prod")
end)


T.test("a private cluster has a privateFQDN and no fqdn; its kubeconfigs point there", function()
    local sim = harness.start { scenario = ACCESS }
    local tok = sim:token()
    local status, body = arm(sim, "GET", AKS .. "aks-private" .. V, tok)
    T.eq(status, 200)
    local p = body.properties
    T.eq(p.fqdn, nil)
    T.eq(p.apiServerAccessProfile.enablePrivateCluster, true)
    T.eq(p.apiServerAccessProfile.enablePrivateClusterPublicFQDN, false)
    T.match(p.privateFQDN, "^" .. p.dnsPrefix:gsub("%-", "%%-") ..
        "%-%x%x%x%x%x%x%x%x%.%x+%-%x+%-%x+%-%x+%-%x+%.privatelink%.westeurope%.azmk8s%.io$")
    T.eq(select(2, arm(sim, "GET", AKS .. "aks-private" .. V, tok)).properties.privateFQDN,
        p.privateFQDN, "stable")
    for _, action in ipairs { "listClusterAdminCredential", "listClusterUserCredential" } do
        local _, cred = arm(sim, "POST", AKS .. "aks-private/" .. action .. V, tok)
        T.contains(decode_kubeconfig(cred), "    server: https://" .. p.privateFQDN .. ":443\n",
            action)
    end
    -- The same cluster in the list, and a public cluster beside it.
    local _, list = arm(sim, "GET", "/subscriptions/" .. SUB ..
        "/providers/Microsoft.ContainerService/managedClusters" .. V, tok)
    local by = {}
    for _, c in ipairs(list.value) do by[c.name] = c.properties end
    T.eq(by["aks-private"].privateFQDN, p.privateFQDN)
    T.match(by["aks-prod"].fqdn, "^aks%-prod%-rg%-aks%-%x+%-%x%x%x%x%x%x%x%x%.hcp%.eastus%.azmk8s%.io$")
    T.eq(by["aks-prod"].privateFQDN, nil)
    T.eq(by["aks-prod"].apiServerAccessProfile, nil)
    T.eq(by["aks-expired"].apiServerAccessProfile, nil, "the other access cases are public")
end)


T.test("admin_cert = expired: both credentials carry a certificate that has expired, no token",
    function()
        local sim = harness.start { scenario = ACCESS }
        local tok = sim:token()
        local ca = assert(crypto.load_cert(T.read_file(sim.config.clusters["aks-expired"].ca_file)))
        for _, action in ipairs { "listClusterAdminCredential", "listClusterUserCredential" } do
            local status, body = arm(sim, "POST", AKS .. "aks-expired/" .. action .. V, tok)
            T.eq(status, 200, action)
            local yaml = decode_kubeconfig(body)
            local cert = assert(crypto.load_cert(crypto.b64decode(
                yaml:match("client%-certificate%-data: (%S+)"))))
            local now = os.time()
            T.ok(math.abs(cert:not_after() - (now - 35 * 86400)) < 120, action)
            T.ok(math.abs(cert:not_before() - (now - 400 * 86400)) < 120, action)
            T.ok(cert:verify_signed_by(ca), action)
            T.not_contains(yaml, "token:")
        end
    end)


T.test("a subscription where Microsoft.ContainerService is NotRegistered: 409 until registered",
    function()
        local sim = harness.start { scenario = ACCESS }
        local tok = sim:token()
        local sub = "/subscriptions/" .. UNREGISTERED_SUB
        local provider = sub .. "/providers/Microsoft.ContainerService"
        local list = provider .. "/managedClusters" .. V
        local status, body = arm(sim, "GET", provider .. "?api-version=2021-04-01", tok)
        T.eq(status, 200)
        T.eq(body.registrationState, "NotRegistered")
        T.eq(body.registrationPolicy, "RegistrationRequired")
        status, body = arm(sim, "GET", list, tok)
        T.eq(status, 409)
        T.eq(body.error.code, "MissingSubscriptionRegistration")
        T.contains(body.error.message, "'Microsoft.ContainerService'")
        T.eq(body.error.details[1].target, "Microsoft.ContainerService")
        -- The other subscriptions keep theirs.
        status, body = arm(sim, "GET", "/subscriptions/" .. SUB ..
            "/providers/Microsoft.ContainerService?api-version=2021-04-01", tok)
        T.eq(body.registrationState, "Registered")

        sim:knobs { register_delay_ms = 400 }
        status, body = arm(sim, "POST", provider .. "/register?api-version=2021-04-01", tok)
        T.eq(status, 200)
        T.eq(body.registrationState, "Registering")
        T.eq(body.namespace, "Microsoft.ContainerService")
        status, body = arm(sim, "GET", provider .. "?api-version=2021-04-01", tok)
        T.eq(body.registrationState, "Registering")
        T.eq((arm(sim, "GET", list, tok)), 409, "not yet")
        require("aurora.time").sleep(0.5)
        status, body = arm(sim, "GET", provider .. "?api-version=2021-04-01", tok)
        T.eq(body.registrationState, "Registered")
        status, body = arm(sim, "GET", list, tok)
        T.eq(status, 200)
        T.eq(body.value, {})
        -- Registering again is harmless.
        status, body = arm(sim, "POST", provider .. "/register?api-version=2021-04-01", tok)
        T.eq(body.registrationState, "Registered")
    end)


T.test("role assignments list by principal; writing them needs Owner; reset restores them",
    function()
        local dir = T.tmpdir()
        local scenario = dir .. "/owner.lua"
        T.write_file(scenario, 'local s = dofile("tests/sim/scenarios/default.lua")\n' ..
            's.role_assignments[#s.role_assignments + 1] = { principal = "' .. NO_ACCESS.oid ..
            '", role = "Owner", scope = "/subscriptions/' .. SUB_WARNED .. '" }\n' ..
            'return s\n')
        local sim = harness.start { scenario = scenario }
        local tok = sim:token()
        local base = "/subscriptions/" .. SUB .. "/providers/Microsoft.Authorization/roleAssignments"
        local status, body = arm(sim, "GET", base .. "?api-version=2022-04-01&$filter=" ..
            "principalId%20eq%20%27" .. CONTRIBUTOR_OID .. "%27", tok)
        T.eq(status, 200)
        T.eq(#body.value, 1)
        local a = body.value[1]
        T.eq(a.type, "Microsoft.Authorization/roleAssignments")
        T.eq(a.id, base .. "/" .. a.name)
        T.eq(a.properties.principalId, CONTRIBUTOR_OID)
        T.eq(a.properties.principalType, "ServicePrincipal")
        T.eq(a.properties.scope, "/subscriptions/" .. SUB)
        T.contains(a.properties.roleDefinitionId, "/providers/Microsoft.Authorization/" ..
            "roleDefinitions/" .. CONTRIBUTOR_ROLE)
        T.eq(a.properties.roleDefinitionId:sub(-36), CONTRIBUTOR_ROLE)
        status, body = arm(sim, "GET", base .. "?api-version=2022-04-01&$filter=" ..
            "assignedTo('" .. READER.oid .. "')", tok)
        T.eq(#body.value, 1)
        T.eq(body.value[1].properties.roleDefinitionId:sub(-36), READER_ROLE)
        status, body = arm(sim, "GET", base .. "?api-version=2022-04-01", tok)
        T.eq(#body.value, 3)

        -- az create-for-rbac: find the role by name, then PUT an assignment.
        status, body = arm(sim, "GET", "/subscriptions/" .. SUB_WARNED ..
            "/providers/Microsoft.Authorization/roleDefinitions?api-version=2022-04-01&" ..
            "$filter=roleName%20eq%20%27Reader%27", tok)
        T.eq(status, 200)
        T.eq(#body.value, 1)
        T.eq(body.value[1].name, READER_ROLE)
        T.eq(body.value[1].properties.roleName, "Reader")
        local role_id = body.value[1].id
        local name = "5f6a7b8c-0d1e-4f2a-8b3c-4d5e6f708192"
        local put = "/subscriptions/" .. SUB_WARNED ..
            "/providers/Microsoft.Authorization/roleAssignments/" .. name ..
            "?api-version=2022-04-01"
        local request = { json = { properties = { roleDefinitionId = role_id,
            principalId = READER.oid, principalType = "ServicePrincipal" } } }
        status, body = arm(sim, "PUT", put, tok, request)
        T.eq(status, 403, "Contributor cannot assign roles")
        T.contains(body.error.message, "Microsoft.Authorization/roleAssignments/write")
        local owner = sim:token(nil, NO_ACCESS.id, NO_ACCESS.secret)
        status, body = arm(sim, "PUT", put, owner, request)
        T.eq(status, 201)
        T.eq(body.name, name)
        T.eq(body.properties.scope, "/subscriptions/" .. SUB_WARNED)
        status, body = arm(sim, "PUT", "/subscriptions/" .. SUB_WARNED ..
            "/providers/Microsoft.Authorization/roleAssignments/" ..
            "6f7a8b9c-0d1e-4f2a-8b3c-4d5e6f708193?api-version=2022-04-01", owner, request)
        T.eq(status, 409)
        T.eq(body.error.code, "RoleAssignmentExists")

        -- The reader now sees the warned subscription too.
        local reader = sim:token(nil, READER.id, READER.secret)
        status, body = arm(sim, "GET", "/subscriptions?api-version=2022-12-01", reader)
        T.eq(#body.value, 2)

        T.eq(assert(sim:request("arm", "POST", "/_sim/reset")).status, 200)
        status, body = arm(sim, "GET", "/subscriptions?api-version=2022-12-01", reader)
        T.eq(#body.value, 1)
    end)


-- The list path of each type at subscription scope, and a check of its shape.
local TYPES = {
    { "Microsoft.Compute/virtualMachines", { "vm-web-1", "vm-web-2" }, function(v)
        T.match(v.id, "/resourceGroups/RG%-APPS/providers/Microsoft%.Compute/virtualMachines/")
        T.eq(v.properties.hardwareProfile.vmSize, "Standard_D2s_v5")
        T.eq(v.properties.storageProfile.osDisk.osType, "Linux")
        T.ok(v.properties.vmId)
    end },
    { "Microsoft.Compute/virtualMachineScaleSets", { "aks-nodepool1-vmss" }, function(v)
        T.eq(v.sku.capacity, 3)
        T.eq(v.sku.name, "Standard_D4s_v5")
    end },
    { "Microsoft.Sql/servers", { "sql-aurora-sim" }, function(v)
        T.eq(v.properties.fullyQualifiedDomainName, "sql-aurora-sim.database.windows.net")
        T.eq(v.kind, "v12.0")
    end },
    { "Microsoft.Storage/storageAccounts", { "staurorasim01" }, function(v)
        T.eq(v.kind, "StorageV2")
        T.eq(v.sku.name, "Standard_LRS")
        T.eq(v.properties.primaryEndpoints.blob, "https://staurorasim01.blob.core.windows.net/")
    end },
    { "Microsoft.Web/sites", { "app-frontend", "func-jobs" }, function(v)
        if v.name == "func-jobs" then T.eq(v.kind, "functionapp,linux") end
        if v.name == "app-frontend" then T.eq(v.kind, "app,linux") end
        T.eq(v.properties.defaultHostName, v.name .. ".azurewebsites.net")
    end },
    { "Microsoft.Network/virtualNetworks", { "vnet-aks" }, function(v)
        T.eq(v.properties.addressSpace.addressPrefixes, { "10.224.0.0/12" })
        T.eq(v.properties.subnets[1].name, "aks-subnet")
        T.eq(v.properties.subnets[1].properties.addressPrefix, "10.224.0.0/16")
        T.eq(v.properties.subnets[1].id, v.id .. "/subnets/aks-subnet")
    end },
    { "Microsoft.Network/networkSecurityGroups", { "nsg-aks" }, function(v)
        local r = v.properties.securityRules[1]
        T.eq(r.name, "allow-https")
        T.eq(r.properties.destinationPortRange, "443")
        T.eq(r.properties.access, "Allow")
        T.eq(r.properties.priority, 100)
        T.eq(#v.properties.defaultSecurityRules, 6)
    end },
    { "Microsoft.ContainerInstance/containerGroups", { "aci-batch" }, function(v)
        T.eq(v.properties.osType, "Linux")
        T.eq(v.properties.instanceView.state, "Running")
        T.ok(v.properties.containers[1].properties.image)
    end },
    { "Microsoft.ContainerService/managedClusters", { "aks-aad", "aks-prod" }, function(v)
        T.ok(v.properties.kubernetesVersion)
    end },
}


T.test("every resource type lists at subscription scope with the fields discovery reads",
    function()
        local sim = harness.start()
        local tok = sim:token()
        for _, t in ipairs(TYPES) do
            local path = "/subscriptions/" .. SUB .. "/providers/" .. t[1] ..
                "?api-version=2024-07-01"
            local status, body = arm(sim, "GET", path, tok)
            T.eq(status, 200, t[1])
            T.eq(names(body.value), t[2], t[1])
            for _, v in ipairs(body.value) do
                T.eq(v.type:lower(), t[1]:lower())
                T.ok(v.location and v.tags, t[1])
                t[3](v)
            end
            local stats = sim:stats()
            T.ok(stats.counts["arm:GET /subscriptions/{sub}/providers/" .. t[1]], t[1])
        end

        -- Power state through statusOnly=true and $expand=instanceView.
        local status, body = arm(sim, "GET", "/subscriptions/" .. SUB ..
            "/providers/Microsoft.Compute/virtualMachines?api-version=2024-07-01&statusOnly=true",
            tok)
        local power = {}
        for _, v in ipairs(body.value) do
            for _, s in ipairs(v.properties.instanceView.statuses) do
                if s.code:match("^PowerState/") then power[v.name] = s.code end
            end
        end
        T.eq(power, { ["vm-web-1"] = "PowerState/running", ["vm-web-2"] = "PowerState/deallocated" })
        status, body = arm(sim, "GET", "/subscriptions/" .. SUB .. "/resourceGroups/rg-apps" ..
            "/providers/Microsoft.Compute/virtualMachines/vm-web-2?api-version=2024-07-01&" ..
            "$expand=instanceView", tok)
        T.eq(status, 200)
        T.eq(body.properties.instanceView.statuses[2].code, "PowerState/deallocated")

        -- SQL databases include master.
        status, body = arm(sim, "GET", "/subscriptions/" .. SUB .. "/resourceGroups/rg-data" ..
            "/providers/Microsoft.Sql/servers/sql-aurora-sim/databases?api-version=2023-08-01", tok)
        T.eq(status, 200)
        T.eq(names(body.value), { "master", "orders" })
        for _, d in ipairs(body.value) do
            T.eq(d.type, "Microsoft.Sql/servers/databases")
            if d.name == "master" then T.eq(d.kind, "v12.0,system") end
        end

        -- Group scope, and the generic list az resource list uses (with its empty $filter).
        status, body = arm(sim, "GET", "/subscriptions/" .. SUB .. "/resourceGroups/rg-apps" ..
            "/providers/Microsoft.Web/sites?api-version=2022-03-01", tok)
        T.eq(names(body.value), { "app-frontend", "func-jobs" })
        status, body = arm(sim, "GET", "/subscriptions/" .. SUB .. "/resources?$filter=&" ..
            "$expand=createdTime%2CchangedTime%2CprovisioningState&api-version=2021-04-01", tok)
        T.eq(status, 200)
        T.eq(#body.value, 14)
        status, body = arm(sim, "GET", "/subscriptions/" .. SUB .. "/resources?$filter=" ..
            "resourceType%20eq%20%27Microsoft.Web%2Fsites%27&api-version=2021-04-01", tok)
        T.eq(names(body.value), { "app-frontend", "func-jobs" })

        -- An unknown type of a known namespace, and an unknown namespace.
        status, body = arm(sim, "GET", "/subscriptions/" .. SUB ..
            "/providers/Microsoft.Compute/nothings?api-version=2024-07-01", tok)
        T.eq(status, 400)
        T.eq(body.error.code, "InvalidResourceType")
    end)


local function graph(sim, tok, body)
    return arm(sim, "POST", "/providers/Microsoft.ResourceGraph/resources?api-version=2024-04-01",
        tok, { json = body })
end


T.test("Resource Graph filters by type, projects, orders and pages with $skipToken", function()
    local sim = harness.start()
    local tok = sim:token()
    local status, body, res = graph(sim, tok, { subscriptions = { SUB },
        query = "Resources | where type =~ 'Microsoft.ContainerService/managedClusters' " ..
            "| project id, name, type, location | order by name asc" })
    T.eq(status, 200)
    T.eq(body.totalRecords, 2)
    T.eq(body.count, 2)
    T.eq(body.resultTruncated, "false")
    T.eq(body["$skipToken"], nil)
    T.eq(body.data[1].name, "aks-aad")
    T.eq(body.data[2].name, "aks-prod")
    T.eq(body.data[1].type, "microsoft.containerservice/managedclusters")
    T.ok(res.headers["x-ms-user-quota-remaining"])

    status, body = graph(sim, tok, { query = "Resources | where type in~ " ..
        "('microsoft.web/sites', 'Microsoft.Compute/virtualMachines') and resourceGroup =~ " ..
        "'RG-APPS' | project id, name, kind | order by name desc" })
    T.eq(status, 200)
    T.eq(body.totalRecords, 4)
    T.eq(body.data[1].name, "vm-web-2")

    -- Paging: $top 5 over every resource, following $skipToken.
    local seen, pages, token = {}, 0, nil
    repeat
        status, body = graph(sim, tok, { subscriptions = { SUB },
            query = "Resources | project id, name | order by name asc",
            options = { ["$top"] = 5, ["$skipToken"] = token } })
        T.eq(status, 200)
        pages = pages + 1
        for _, r in ipairs(body.data) do seen[#seen + 1] = r.name end
        token = body["$skipToken"]
    until not token
    T.eq(#seen, body.totalRecords)
    T.eq(pages, math.ceil(body.totalRecords / 5))
    local sorted = { table.unpack(seen) }
    table.sort(sorted)
    T.eq(seen, sorted)

    -- Without id in the result, paging is impossible and the result is truncated.
    status, body = graph(sim, tok, { query = "Resources | project name",
        options = { ["$top"] = 2 } })
    T.eq(body.resultTruncated, "true")
    T.eq(body["$skipToken"], nil)

    -- The table format, and counts by type.
    status, body = graph(sim, tok, { query = "Resources | summarize count() by type",
        options = { resultFormat = "table" } })
    T.eq(status, 200)
    T.eq(body.data.columns[1], { name = "type", type = "string" })
    T.eq(body.data.columns[2], { name = "count_", type = "integer" })

    -- A principal without access sees nothing; a parse error is ARG's 400.
    status, body = graph(sim, sim:token(nil, NO_ACCESS.id, NO_ACCESS.secret),
        { query = "Resources" })
    T.eq(body.totalRecords, 0)
    status, body = graph(sim, tok, { query = "Resources | where type =~" })
    T.eq(status, 400)
    T.eq(body.error.code, "BadRequest")
    T.eq(body.error.details[1].code, "InvalidQuery")
    status, body = graph(sim, tok, { query = "ResourceContainers | where type =~ " ..
        "'microsoft.resources/subscriptions' | project id, name" })
    T.eq(status, 200)
    T.eq(body.totalRecords, 3)
end)


T.test("Resource Graph rows of virtual machines carry properties.extended.instanceView.powerState",
    function()
        local sim = harness.start()
        local tok = sim:token()
        local status, body = graph(sim, tok, { query = "Resources | where type =~ " ..
            "'microsoft.compute/virtualmachines' | order by name asc" })
        T.eq(status, 200)
        T.eq(body.totalRecords, 2)
        T.eq(body.data[1].name, "vm-web-1")
        T.eq(body.data[1].properties.extended, { instanceView = { powerState = {
            code = "PowerState/running", displayStatus = "VM running" } } })
        T.eq(body.data[2].properties.extended.instanceView.powerState, {
            code = "PowerState/deallocated", displayStatus = "VM deallocated" })
        T.ok(body.data[1].properties.vmId, "the provider's properties are all there")
        T.eq(body.data[1].properties.hardwareProfile.vmSize, "Standard_D2s_v5")

        -- Queries can filter and project on it.
        status, body = graph(sim, tok, { query = "Resources | where " ..
            "properties.extended.instanceView.powerState.code =~ 'PowerState/deallocated' " ..
            "| project id, name, power = properties.extended.instanceView.powerState.code" })
        T.eq(status, 200)
        T.eq(body.totalRecords, 1)
        T.eq(body.data[1].name, "vm-web-2")
        T.eq(body.data[1].power, "PowerState/deallocated")

        -- A plain ARM list has no extended block (Resource Graph adds it); other types neither.
        local _, list = arm(sim, "GET", "/subscriptions/" .. SUB ..
            "/providers/Microsoft.Compute/virtualMachines?api-version=2024-07-01", tok)
        T.eq(#list.value, 2)
        T.eq(list.value[1].properties.extended, nil)
        _, body = graph(sim, tok, { query = "Resources | where type =~ 'microsoft.web/sites'" })
        T.eq(body.data[1].properties.extended, nil)
    end)


T.test("Resource Graph pages by the page_size knob when it is below $top", function()
    local sim = harness.start()
    local tok = sim:token()
    local query = "Resources | project id, name | order by name asc"
    local _, whole = graph(sim, tok, { subscriptions = { SUB }, query = query })
    local total = whole.totalRecords
    T.ok(total > 5)
    T.eq(whole.count, total, "one page by default ($top 100)")

    sim:knobs { page_size = 2 }
    local function pages(top)
        local seen, n, token = {}, 0, nil
        repeat
            local status, body = graph(sim, tok, { subscriptions = { SUB }, query = query,
                options = { ["$top"] = top, ["$skipToken"] = token } })
            T.eq(status, 200)
            T.eq(body.totalRecords, total)
            T.ok(body.count <= math.min(top or 100, 2))
            n = n + 1
            for _, r in ipairs(body.data) do seen[#seen + 1] = r.name end
            token = body["$skipToken"]
        until not token
        return seen, n
    end
    local seen, n = pages(nil)
    T.eq(n, math.ceil(total / 2), "pages of page_size rows without $top")
    local want = {}
    for i, r in ipairs(whole.data) do want[i] = r.name end
    T.eq(seen, want, "every row once, in order")
    seen, n = pages(5)
    T.eq(n, math.ceil(total / 2), "page_size below $top wins")
    T.eq(seen, want)
    seen, n = pages(1)
    T.eq(n, total, "$top below page_size wins")
    T.eq(seen, want)

    -- Without id the result is truncated at the page, as with $top.
    local status, body = graph(sim, tok, { query = "Resources | project name" })
    T.eq(status, 200)
    T.eq(body.count, 2)
    T.eq(body.resultTruncated, "true")
end)


T.test("Resource Graph and the lists show what group- and resource-scoped roles make readable",
    function()
        local dir = T.tmpdir()
        local scenario = dir .. "/scenario.lua"
        local sql = "/subscriptions/" .. SUB .. "/resourceGroups/rg-data/providers/" ..
            "Microsoft.Sql/servers/sql-aurora-sim"
        T.write_file(scenario, 'local s = dofile("tests/sim/scenarios/default.lua")\n' ..
            "local ra = s.role_assignments\n" ..
            "ra[#ra + 1] = { principal = '" .. NO_ACCESS.oid .. "', role = 'Reader', " ..
            "scope = '/subscriptions/" .. SUB .. "/resourcegroups/RG-APPS' }\n" ..
            "ra[#ra + 1] = { principal = '" .. NO_ACCESS.oid .. "', role = 'Reader', " ..
            "scope = '" .. sql .. "/' }\n" ..
            "return s\n")
        local sim = harness.start { scenario = scenario }
        local tok = sim:token(nil, NO_ACCESS.id, NO_ACCESS.secret)
        local status, body = graph(sim, tok, { query = "Resources | project id, name" })
        T.eq(status, 200)
        T.eq(names(body.data), { "aci-batch", "app-frontend", "func-jobs", "master", "orders",
            "sql-aurora-sim", "vm-web-1", "vm-web-2" },
            "rg-apps (its scope in another case), the SQL server and its databases")
        status, body = graph(sim, tok, { query = "ResourceContainers | project id, name, type" })
        T.eq(status, 200)
        local rgs = {}
        for _, r in ipairs(body.data) do
            if r.type == "microsoft.resources/subscriptions/resourcegroups" then
                rgs[#rgs + 1] = r.name
            end
        end
        T.eq(rgs, { "rg-apps" })

        local items = all_pages(sim, "/subscriptions/" .. SUB ..
            "/providers/Microsoft.Web/sites?api-version=2022-03-01", tok)
        T.eq(names(items), { "app-frontend", "func-jobs" })
        items = all_pages(sim, "/subscriptions/" .. SUB ..
            "/providers/Microsoft.Sql/servers?api-version=2023-08-01", tok)
        T.eq(names(items), { "sql-aurora-sim" })
        items = all_pages(sim, "/subscriptions/" .. SUB ..
            "/providers/Microsoft.ContainerService/managedClusters" .. V, tok)
        T.eq(items, {})
        items = all_pages(sim, "/subscriptions/" .. SUB .. "/resourcegroups?api-version=2021-04-01",
            tok)
        T.eq(names(items), { "rg-apps" })
        items = all_pages(sim, "/subscriptions/" .. SUB .. "/resources?api-version=2021-04-01",
            tok)
        T.eq(#items, 8)
    end)


T.test("a Resource Graph page over 10,000 resources takes under 0.12 s", function()
    local dir = T.tmpdir()
    local scenario = dir .. "/scenario.lua"
    T.write_file(scenario, 'local scenario = require "scenario"\n' ..
        'local s = dofile("tests/sim/scenarios/default.lua")\n' ..
        "scenario.generate(s, { resource_groups = 12, resources = 10000 })\n" ..
        "return s\n")
    local sim = harness.start { scenario = scenario }
    local tok = sim:token()
    -- Every row's visibility is checked, then one in eight is kept (the vnets).
    local query = "Resources | where type =~ 'microsoft.network/virtualnetworks' | project id"
    local _, body = graph(sim, tok, { query = "Resources | project id" })
    T.ok(body.totalRecords > 8000, "most rows are readable: " .. body.totalRecords)
    local t0 = time.monotonic()
    local status
    status, body = graph(sim, tok, { query = query, options = { ["$top"] = 1000 } })
    local took = time.monotonic() - t0
    T.eq(status, 200)
    T.ok(body.totalRecords > 900, "about 1,000 virtual networks")
    -- About 0.025 s; 0.25 s when every row walked the caller's role assignments.
    T.ok(took < 0.12, string.format("the page took %.3f s", took))
end)


local function cost(sim, tok, body, path)
    return arm(sim, "POST", (path or ("/subscriptions/" .. SUB)) ..
        "/providers/Microsoft.CostManagement/query?api-version=2023-11-01", tok, { json = body })
end


local CUSTOM = { from = "2026-11-01T00:00:00Z", to = "2026-11-30T23:59:59Z" }


T.test("Cost Management groups by service, resource group and day, pages, and 204s on no data",
    function()
        local sim = harness.start()
        local tok = sim:token()
        local status, body = cost(sim, tok, { type = "ActualCost", timeframe = "Custom",
            timePeriod = CUSTOM, dataset = { granularity = "None",
                aggregation = { totalCost = { name = "Cost", ["function"] = "Sum" } },
                grouping = { { type = "Dimension", name = "ServiceName" } } } })
        T.eq(status, 200)
        T.eq(body.type, "Microsoft.CostManagement/query")
        T.eq(body.properties.columns, { { name = "Cost", type = "Number" },
            { name = "ServiceName", type = "String" }, { name = "Currency", type = "String" } })
        local by = {}
        for _, r in ipairs(body.properties.rows) do by[r[2]] = r[1] end
        T.near(by["Azure Kubernetes Service"], 82.0)
        T.near(by["Virtual Machines"], 12.5)
        T.near(by["Storage"], 1.05)
        T.eq(body.properties.nextLink, json.null)

        status, body = cost(sim, tok, { type = "Usage", timeframe = "Custom", timePeriod = CUSTOM,
            dataset = { granularity = "Daily",
                aggregation = { totalCost = { name = "PreTaxCost", ["function"] = "Sum" } },
                grouping = { { type = "Dimension", name = "ResourceGroupName" } } } })
        T.eq(status, 200)
        T.eq(body.properties.columns[2], { name = "UsageDate", type = "Number" })
        T.eq(body.properties.rows[1][2], 20261101)
        T.eq(#body.properties.rows, 4)

        -- Totals: no grouping; and the resource group scope.
        status, body = cost(sim, tok, { type = "ActualCost", timeframe = "Custom",
            timePeriod = CUSTOM, dataset = { granularity = "None",
                aggregation = { totalCost = { name = "Cost", ["function"] = "Sum" } } } })
        T.near(body.properties.rows[1][1], 95.55)
        status, body = cost(sim, tok, { type = "ActualCost", timeframe = "Custom",
            timePeriod = CUSTOM, dataset = { granularity = "None",
                aggregation = { totalCost = { name = "Cost", ["function"] = "Sum" } } } },
            "/subscriptions/" .. SUB .. "/resourceGroups/rg-aks")
        T.near(body.properties.rows[1][1], 82.0)

        -- MonthToDate relative to the cost_now knob; nextLink paging with page_size.
        sim:knobs { cost_now = "2026-11-15", page_size = 1 }
        local q = { type = "ActualCost", timeframe = "MonthToDate", dataset = {
            granularity = "None", aggregation = { totalCost = { name = "Cost",
                ["function"] = "Sum" } }, grouping = { { type = "Dimension",
                name = "ResourceGroup" } } } }
        status, body = cost(sim, tok, q)
        T.eq(status, 200)
        local rows = { body.properties.rows[1] }
        while body.properties.nextLink ~= json.null do
            local res = assert(http.request { url = body.properties.nextLink, method = "POST",
                json = q, bearer = tok, ca_file = sim.env.SIM_CA_FILE })
            T.eq(res.status, 200)
            body = json.decode(res.body)
            rows[#rows + 1] = body.properties.rows[1]
        end
        T.eq(#rows, 3)

        -- No data in the window: 204 without a body.
        local none
        status, none = cost(sim, tok, { type = "ActualCost", timeframe = "Custom",
            timePeriod = { from = "2020-01-01", to = "2020-01-31" }, dataset = {
                granularity = "None", aggregation = { totalCost = { name = "Cost",
                    ["function"] = "Sum" } } } })
        T.eq(status, 204)
        T.eq(none, nil)

        status, body = cost(sim, tok, { type = "ActualCost", timeframe = "Custom",
            timePeriod = CUSTOM, dataset = { grouping = { { type = "Dimension",
                name = "Colour" } } } })
        T.eq(status, 400)
    end)


T.test("throttling knobs answer 429 with Retry-After, then the route recovers", function()
    local sim = harness.start()
    local tok = sim:token()
    sim:knobs { faults = { { route = "arm:GET /subscriptions", status = 429, retry_after = 1,
        count = 2, code = "SubscriptionRequestsThrottled" } } }
    for _ = 1, 2 do
        local status, body, res = arm(sim, "GET", "/subscriptions?api-version=2022-12-01", tok)
        T.eq(status, 429)
        T.eq(res.headers["retry-after"], "1")
        T.eq(body.error.code, "SubscriptionRequestsThrottled")
    end
    T.eq((arm(sim, "GET", "/subscriptions?api-version=2022-12-01", tok)), 200)

    -- Cost Management's own throttling headers.
    sim:knobs { cost_throttle = { count = 1, retry_after = 7 } }
    local q = { type = "ActualCost", timeframe = "Custom", timePeriod = CUSTOM,
        dataset = { aggregation = { totalCost = { name = "Cost", ["function"] = "Sum" } } } }
    local status, body, res = cost(sim, tok, q)
    T.eq(status, 429)
    T.eq(body.error.code, "429")
    T.eq(res.headers["x-ms-ratelimit-microsoft.costmanagement-qpu-retry-after"], "7")
    status = cost(sim, tok, q)
    T.eq(status, 200)

    -- The generic fault knob reaches the cost route too.
    sim:knobs { faults = { { route = "arm:POST /subscriptions/{sub}/providers/" ..
        "Microsoft.CostManagement/query", status = 429, retry_after = 3, count = 1 } } }
    status, body, res = cost(sim, tok, q)
    T.eq(status, 429)
    T.eq(res.headers["retry-after"], "3")
end)


T.test("GET //metadata/endpoints answers az cloud register without a token", function()
    local sim = harness.start()
    local res = assert(sim:request("arm", "GET", "//metadata/endpoints?api-version=2015-01-01"))
    T.eq(res.status, 200)
    local body = json.decode(res.body)
    T.eq(body.authentication.loginEndpoint, sim.env.SIM_LOGIN_URL .. "/")
    T.eq(body.authentication.audiences[1], "https://management.core.windows.net/")
    T.eq(body.graphEndpoint, sim.env.SIM_GRAPH_URL .. "/")
end)

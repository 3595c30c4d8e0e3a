-- The simulated AKS API servers: authentication (client certificates, Entra tokens, local
-- accounts disabled), discovery as kubectl reads it, object CRUD with Kubernetes Status errors,
-- and metrics-server: present, missing, and deployed until metrics.k8s.io answers.
local T = require "aurora.test"
local harness = require "sim.harness"
local crypto = require "aurora.crypto"
local http = require "aurora.http"
local json = require "aurora.json"
local secret = require "aurora.secret"
local time = require "aurora.time"
local yaml = require "aurora.yaml"

local AKS_AAD_SCOPE = "6dae42f8-4368-4678-94ff-3960e28e3630/.default"
local AAD_CLUSTER = "aks-aad"
local MS_IMAGE = "registry.k8s.io/metrics-server/metrics-server:v0.9.0"
local ACCESS = "tests/sim/scenarios/access.lua"
local MANIFEST = "lua/manifests/metrics-server.yaml"


-- The admin client certificate and key of the kubeconfig launch.lua wrote.
local function admin_credentials(sim)
    local yaml = T.read_file(sim.env.SIM_KUBECONFIG)
    local cert = crypto.b64decode(yaml:match("client%-certificate%-data:%s*(%S+)"))
    local key = crypto.b64decode(yaml:match("client%-key%-data:%s*(%S+)"))
    return { client_cert = cert, client_key = key }
end


-- A client certificate signed by a cluster's CA, with the given subject.
local function cluster_credentials(sim, cluster, subject)
    local c = sim.config.clusters[cluster]
    local ca_key = assert(crypto.load_key(assert(secret.from_file(c.ca_key_file))))
    local ca = assert(crypto.load_cert(T.read_file(c.ca_file)))
    local key = crypto.generate_key("ec")
    local cert = assert(crypto.issue_cert { key = key, subject = subject, ca_cert = ca,
        ca_key = ca_key, usage = "client", days = 1 })
    local pem <close> = key:private_pem()
    return { client_cert = cert:pem(), client_key = pem:reveal() }
end


-- A request to a cluster's API server; creds: a table from the functions above, a bearer
-- token (string), or nil. Returns status, decoded body (or nil), response.
local function kube(sim, cluster, method, path, creds, opts)
    local o = {}
    for k, v in pairs(opts or {}) do o[k] = v end
    if type(creds) == "string" then
        o.bearer = creds
    elseif creds then
        o.client_cert, o.client_key = creds.client_cert, creds.client_key
    end
    local res = assert(sim:request("kube:" .. cluster, method, path, o))
    local ok, body = pcall(json.decode, res.body)
    return res.status, ok and body or nil, res
end


local function aad_token(sim)
    local tok, status, body = sim:token(AKS_AAD_SCOPE)
    if not tok then
        T.fail("no Entra token for the AKS server app: " .. tostring(status) .. " " ..
            json.encode(body))
    end
    return tok
end


local UNAUTHORIZED = { kind = "Status", apiVersion = "v1", metadata = {}, status = "Failure",
    message = "Unauthorized", reason = "Unauthorized", code = 401 }


-- The admin kubeconfig ARM hands out for a cluster (listClusterAdminCredential), as
-- {server, ca_pem, client_cert, client_key, token (or nil), yaml}.
local function arm_kubeconfig(sim, cluster)
    local res = assert(sim:request("arm", "POST", "/subscriptions/" .. sim.env.SIM_SUBSCRIPTION ..
        "/resourceGroups/rg-aks/providers/Microsoft.ContainerService/managedClusters/" ..
        cluster .. "/listClusterAdminCredential?api-version=2024-05-01", { bearer = sim:token() }))
    T.eq(res.status, 200, res.body)
    local text = crypto.b64decode(json.decode(res.body).kubeconfigs[1].value)
    local function field(name)
        local v = text:match("\n%s*" .. name:gsub("%-", "%%-") .. ": (%S+)")
        return v
    end
    return { server = field("server"), ca_pem = crypto.b64decode(field("certificate-authority-data")),
        client_cert = crypto.b64decode(field("client-certificate-data")),
        client_key = crypto.b64decode(field("client-key-data")), token = field("token"),
        yaml = text }
end


-- The Deployment's condition of the given type.
local function condition(obj, ctype)
    for _, c in ipairs((obj.status or {}).conditions or {}) do
        if c.type == ctype then return c end
    end
    return nil
end


T.test("the API server answers 401 Unauthorized without credentials or with a bad token", function()
    local sim = harness.start()
    local cluster = sim.env.SIM_AKS_CLUSTER
    local status, body = kube(sim, cluster, "GET", "/api/v1/namespaces")
    T.eq(status, 401)
    T.eq(body, UNAUTHORIZED)
    status, body = kube(sim, cluster, "GET", "/api/v1/namespaces", "not-a-token")
    T.eq(status, 401)
    T.eq(body, UNAUTHORIZED)
    -- A certificate from another CA does not count as a credential.
    local key = crypto.generate_key("ec")
    local self_signed = crypto.issue_cert { key = key, subject = { CN = "intruder",
        O = "system:masters" }, days = 1 }
    local pem <close> = key:private_pem()
    local res = sim:request("kube:" .. cluster, "GET", "/api/v1/namespaces",
        { client_cert = self_signed:pem(), client_key = pem:reveal() })
    T.ok(res, "the handshake succeeds: the certificate is requested, not required")
    T.eq(res.status, 401, "an untrusted certificate is not an identity")
end)


T.test("the admin kubeconfig's client certificate (O=system:masters) is cluster admin", function()
    local sim = harness.start()
    local status, body = kube(sim, sim.env.SIM_AKS_CLUSTER, "GET", "/api/v1/namespaces",
        admin_credentials(sim))
    T.eq(status, 200)
    T.eq(body.kind, "NamespaceList")
    T.eq(body.apiVersion, "v1")
    T.match(body.metadata.resourceVersion, "^%d+$")
    local names = {}
    for _, ns in ipairs(body.items) do names[#names + 1] = ns.metadata.name end
    T.eq(names, { "default", "kube-public", "kube-system" })
    status, body = kube(sim, sim.env.SIM_AKS_CLUSTER, "GET", "/api/v1/nodes",
        admin_credentials(sim))
    T.eq(status, 200)
    T.eq(#body.items, 3)
    T.eq(body.items[1].status.conditions[1].type, "Ready")
end)


T.test("a certificate without system:masters is authenticated but forbidden", function()
    local sim = harness.start()
    local creds = cluster_credentials(sim, sim.env.SIM_AKS_CLUSTER, { CN = "dev", O = "devs" })
    local status, body = kube(sim, sim.env.SIM_AKS_CLUSTER, "GET",
        "/apis/apps/v1/namespaces/kube-system/deployments", creds)
    T.eq(status, 403)
    T.eq(body.reason, "Forbidden")
    T.contains(body.message, 'User "dev" cannot list resource "deployments"')
    T.eq((kube(sim, sim.env.SIM_AKS_CLUSTER, "GET", "/apis", creds)), 200,
        "discovery is open to every authenticated user")
end)


T.test("an Entra token for the AKS server app is accepted on both clusters", function()
    local sim = harness.start()
    local tok = aad_token(sim)
    for _, cluster in ipairs { sim.env.SIM_AKS_CLUSTER, AAD_CLUSTER } do
        local status, body = kube(sim, cluster, "GET", "/api/v1/namespaces", tok)
        T.eq(status, 200, cluster)
        T.eq(body.kind, "NamespaceList")
    end
    local arm = sim:token("https://management.azure.com/.default")
    T.eq((kube(sim, AAD_CLUSTER, "GET", "/api/v1/namespaces", arm)), 401,
        "a token for another audience is refused")
end)


T.test("a cluster with local accounts disabled refuses client certificates", function()
    local sim = harness.start()
    local creds = cluster_credentials(sim, AAD_CLUSTER, { CN = "masterclient",
        O = "system:masters" })
    local status, body = kube(sim, AAD_CLUSTER, "GET", "/api/v1/namespaces", creds)
    T.eq(status, 401)
    T.eq(body, UNAUTHORIZED)
    local prod = cluster_credentials(sim, sim.env.SIM_AKS_CLUSTER, { CN = "masterclient",
        O = "system:masters" })
    T.eq((kube(sim, sim.env.SIM_AKS_CLUSTER, "GET", "/api/v1/namespaces", prod)), 200,
        "the same kind of certificate works where local accounts are on")
end)


T.test("discovery documents are what kubectl needs", function()
    local sim = harness.start()
    local c, creds = sim.env.SIM_AKS_CLUSTER, admin_credentials(sim)
    local status, body, res = kube(sim, c, "GET", "/version", creds)
    T.eq(status, 200)
    T.eq(body.major, "1")
    T.eq(body.minor, "29")
    T.eq(body.gitVersion, "v1.29.4")
    T.eq(select(2, kube(sim, AAD_CLUSTER, "GET", "/version")).gitVersion, "v1.30.1",
        "each cluster reports its own version; /version is public")
    status, body, res = kube(sim, c, "GET", "/api", creds, { headers = { Accept =
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json" } })
    T.eq(status, 200)
    T.eq(res.headers["content-type"], "application/json", "the legacy form, plainly typed")
    T.eq(body.kind, "APIVersions")
    T.eq(body.versions, { "v1" })
    status, body = kube(sim, c, "GET", "/apis", creds)
    T.eq(body.kind, "APIGroupList")
    local groups = {}
    for _, g in ipairs(body.groups) do
        groups[g.name] = g.preferredVersion.groupVersion
        T.eq(g.versions[1].groupVersion, g.preferredVersion.groupVersion)
    end
    T.eq(groups, { apps = "apps/v1", ["rbac.authorization.k8s.io"] = "rbac.authorization.k8s.io/v1",
        ["apiregistration.k8s.io"] = "apiregistration.k8s.io/v1",
        ["metrics.k8s.io"] = "metrics.k8s.io/v1beta1" })
    local want = {
        ["/api/v1"] = { "namespaces", "services", "serviceaccounts", "configmaps", "nodes" },
        ["/apis/apps/v1"] = { "deployments" },
        ["/apis/rbac.authorization.k8s.io/v1"] = { "clusterroles", "clusterrolebindings",
            "rolebindings" },
        ["/apis/apiregistration.k8s.io/v1"] = { "apiservices" },
        ["/apis/metrics.k8s.io/v1beta1"] = { "nodes", "pods" },
    }
    for path, names in pairs(want) do
        status, body = kube(sim, c, "GET", path, creds)
        T.eq(status, 200, path)
        T.eq(body.kind, "APIResourceList")
        T.eq(body.groupVersion, path:match("^/apis?/(.+)$"))
        local have = {}
        for _, r in ipairs(body.resources) do
            have[r.name] = r
            T.ok(r.kind and r.verbs and r.namespaced ~= nil, path .. " " .. r.name)
        end
        for _, n in ipairs(names) do T.ok(have[n], path .. " lists " .. n) end
    end
    T.eq((kube(sim, c, "GET", "/openapi/v2", creds)), 200)
end)


T.test("kubectl's Table request gets the columns kubectl get prints", function()
    local sim = harness.start()
    local status, body = kube(sim, sim.env.SIM_AKS_CLUSTER, "GET",
        "/apis/apps/v1/namespaces/kube-system/deployments", admin_credentials(sim),
        { headers = { Accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json" } })
    T.eq(status, 200)
    T.eq(body.kind, "Table")
    local names = {}
    for _, col in ipairs(body.columnDefinitions) do names[#names + 1] = col.name end
    T.eq(names, { "Name", "Ready", "Up-to-date", "Available", "Age" })
    T.eq(body.rows[1].cells[1], "coredns")
    T.eq(body.rows[1].cells[2], "2/2")
    T.eq(body.rows[1].cells[5], "24h", "scenario objects are a day old")
    T.eq(body.rows[1].object.metadata.namespace, "kube-system")
end)


T.test("objects are created, read, listed and deleted with Kubernetes' Status errors", function()
    local sim = harness.start()
    local c, creds = sim.env.SIM_AKS_CLUSTER, admin_credentials(sim)
    local cm = { apiVersion = "v1", kind = "ConfigMap", metadata = { name = "aurora-cfg",
        labels = { app = "aurora" } }, data = { mode = "test" } }
    local status, body = kube(sim, c, "POST", "/api/v1/namespaces/default/configmaps", creds,
        { json = cm })
    T.eq(status, 201)
    T.eq(body.metadata.namespace, "default")
    T.match(body.metadata.uid, "^%x+%-")
    T.ok(body.metadata.creationTimestamp and body.metadata.resourceVersion)
    status, body = kube(sim, c, "GET", "/api/v1/namespaces/default/configmaps/aurora-cfg", creds)
    T.eq(status, 200)
    T.eq(body.data, { mode = "test" })
    status, body = kube(sim, c, "GET", "/api/v1/namespaces/default/configmaps?labelSelector=" ..
        "app%3Daurora", creds)
    T.eq(body.kind, "ConfigMapList")
    T.eq(#body.items, 1)
    T.eq(body.items[1].metadata.name, "aurora-cfg")
    status, body = kube(sim, c, "POST", "/api/v1/namespaces/default/configmaps", creds,
        { json = cm })
    T.eq(status, 409)
    T.eq(body, { kind = "Status", apiVersion = "v1", metadata = {}, status = "Failure",
        message = 'configmaps "aurora-cfg" already exists', reason = "AlreadyExists",
        details = { name = "aurora-cfg", kind = "configmaps" }, code = 409 })
    status, body = kube(sim, c, "DELETE", "/api/v1/namespaces/default/configmaps/aurora-cfg",
        creds, { json = { propagationPolicy = "Background" } })
    T.eq(status, 200)
    T.eq(body.status, "Success")
    status, body = kube(sim, c, "GET", "/api/v1/namespaces/default/configmaps/aurora-cfg", creds)
    T.eq(status, 404)
    T.eq(body, { kind = "Status", apiVersion = "v1", metadata = {}, status = "Failure",
        message = 'configmaps "aurora-cfg" not found', reason = "NotFound",
        details = { name = "aurora-cfg", kind = "configmaps" }, code = 404 })
    -- Cluster-scoped RBAC objects and a namespace.
    status = kube(sim, c, "POST", "/apis/rbac.authorization.k8s.io/v1/clusterroles", creds,
        { json = { apiVersion = "rbac.authorization.k8s.io/v1", kind = "ClusterRole",
            metadata = { name = "aurora-reader" }, rules = {} } })
    T.eq(status, 201)
    status, body = kube(sim, c, "GET", "/apis/rbac.authorization.k8s.io/v1/clusterroles/" ..
        "aurora-reader", creds)
    T.eq(body.kind, "ClusterRole")
    T.eq(body.metadata.namespace, nil)
    T.eq((kube(sim, c, "POST", "/api/v1/namespaces", creds, { json = { apiVersion = "v1",
        kind = "Namespace", metadata = { name = "aurora" } } })), 201)
    status, body = kube(sim, c, "GET", "/api/v1/namespaces/aurora/serviceaccounts", creds)
    T.eq(body.items[1].metadata.name, "default", "a new namespace gets its default account")
    status, body = kube(sim, c, "POST", "/api/v1/namespaces/nowhere/serviceaccounts", creds,
        { json = { metadata = { name = "x" } } })
    T.eq(status, 404)
    T.eq(body.message, 'namespaces "nowhere" not found')
end)


T.test("creating the upstream metrics-server where AKS manages one hits 409s", function()
    local sim = harness.start()
    local c, creds = sim.env.SIM_AKS_CLUSTER, admin_credentials(sim)
    local status, body = kube(sim, c, "GET",
        "/apis/apps/v1/namespaces/kube-system/deployments/metrics-server", creds)
    T.eq(status, 200)
    local available
    for _, cond in ipairs(body.status.conditions) do
        if cond.type == "Available" then available = cond.status end
    end
    T.eq(available, "True")
    status, body = kube(sim, c, "POST", "/apis/apps/v1/namespaces/kube-system/deployments",
        creds, { json = { apiVersion = "apps/v1", kind = "Deployment",
            metadata = { name = "metrics-server", namespace = "kube-system" },
            spec = { replicas = 1 } } })
    T.eq(status, 409)
    T.eq(body, { kind = "Status", apiVersion = "v1", metadata = {}, status = "Failure",
        message = 'deployments.apps "metrics-server" already exists', reason = "AlreadyExists",
        details = { name = "metrics-server", group = "apps", kind = "deployments" }, code = 409 })
    status, body = kube(sim, c, "GET",
        "/apis/apiregistration.k8s.io/v1/apiservices/v1beta1.metrics.k8s.io", creds)
    T.eq(status, 200)
    T.eq(body.status.conditions[1].status, "True")
    status, body = kube(sim, c, "GET", "/apis/metrics.k8s.io/v1beta1/nodes", creds)
    T.eq(status, 200)
    T.eq(body.kind, "NodeMetricsList")
    T.eq(#body.items, 3)
    T.match(body.items[1].usage.cpu, "^%d+m$")
    T.match(body.items[1].usage.memory, "^%d+Ki$")
end)


T.test("a cluster without metrics-server has no metrics API", function()
    local sim = harness.start()
    local tok = aad_token(sim)
    local status, body = kube(sim, AAD_CLUSTER, "GET",
        "/apis/apps/v1/namespaces/kube-system/deployments/metrics-server", tok)
    T.eq(status, 404)
    T.eq(body.message, 'deployments.apps "metrics-server" not found')
    T.eq(body.details, { name = "metrics-server", group = "apps", kind = "deployments" })
    T.eq((kube(sim, AAD_CLUSTER, "GET",
        "/apis/apiregistration.k8s.io/v1/apiservices/v1beta1.metrics.k8s.io", tok)), 404)
    T.eq((kube(sim, AAD_CLUSTER, "GET", "/apis/metrics.k8s.io/v1beta1/nodes", tok)), 404)
    status, body = kube(sim, AAD_CLUSTER, "GET", "/apis", tok)
    for _, g in ipairs(body.groups) do
        T.ok(g.name ~= "metrics.k8s.io", "metrics.k8s.io is not served")
    end
end)


T.test("a deployed metrics-server becomes Available after a delay, then metrics answer", function()
    local sim = harness.start()
    sim:knobs { metrics_delay_ms = 600 }
    local tok = aad_token(sim)
    local objects = {
        { "/api/v1/namespaces/kube-system/serviceaccounts", { apiVersion = "v1",
            kind = "ServiceAccount", metadata = { name = "metrics-server" } } },
        { "/apis/rbac.authorization.k8s.io/v1/clusterroles", { kind = "ClusterRole",
            apiVersion = "rbac.authorization.k8s.io/v1",
            metadata = { name = "system:metrics-server" }, rules = {} } },
        { "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", { kind = "ClusterRoleBinding",
            apiVersion = "rbac.authorization.k8s.io/v1",
            metadata = { name = "system:metrics-server" }, roleRef = { kind = "ClusterRole",
                name = "system:metrics-server", apiGroup = "rbac.authorization.k8s.io" } } },
        { "/apis/rbac.authorization.k8s.io/v1/namespaces/kube-system/rolebindings", {
            kind = "RoleBinding", apiVersion = "rbac.authorization.k8s.io/v1",
            metadata = { name = "metrics-server-auth-reader", namespace = "kube-system" } } },
        { "/api/v1/namespaces/kube-system/services", { apiVersion = "v1", kind = "Service",
            metadata = { name = "metrics-server" }, spec = { ports = { { name = "https",
                port = 443, targetPort = "https" } } } } },
        { "/apis/apps/v1/namespaces/kube-system/deployments", { apiVersion = "apps/v1",
            kind = "Deployment", metadata = { name = "metrics-server",
                labels = { ["k8s-app"] = "metrics-server" } },
            spec = { selector = { matchLabels = { ["k8s-app"] = "metrics-server" } },
                template = { metadata = { labels = { ["k8s-app"] = "metrics-server" } },
                    spec = { containers = { { name = "metrics-server",
                        image = MS_IMAGE } } } } } } },
        { "/apis/apiregistration.k8s.io/v1/apiservices", { kind = "APIService",
            apiVersion = "apiregistration.k8s.io/v1",
            metadata = { name = "v1beta1.metrics.k8s.io" },
            spec = { service = { name = "metrics-server", namespace = "kube-system" },
                group = "metrics.k8s.io", version = "v1beta1", insecureSkipTLSVerify = true,
                groupPriorityMinimum = 100, versionPriority = 100 } } },
    }
    for _, o in ipairs(objects) do
        local status, body = kube(sim, AAD_CLUSTER, "POST", o[1], tok, { json = o[2] })
        T.eq(status, 201, o[1] .. ": " .. tostring(body and body.message))
    end
    local status, body = kube(sim, AAD_CLUSTER, "GET",
        "/apis/apps/v1/namespaces/kube-system/deployments/metrics-server", tok)
    T.eq(body.spec.replicas, 1, "replicas default to 1")
    T.eq(body.status.conditions[1].type, "Available")
    T.eq(body.status.conditions[1].status, "False")
    T.eq(body.status.availableReplicas, nil)
    status, body = kube(sim, AAD_CLUSTER, "GET", "/apis/metrics.k8s.io/v1beta1/nodes", tok)
    T.eq(status, 503)
    T.eq(body.reason, "ServiceUnavailable")
    status, body = kube(sim, AAD_CLUSTER, "GET",
        "/apis/apiregistration.k8s.io/v1/apiservices/v1beta1.metrics.k8s.io", tok)
    T.eq(body.status.conditions[1].status, "False")
    T.eq((kube(sim, AAD_CLUSTER, "GET", "/apis/metrics.k8s.io/v1beta1", tok)), 503)

    time.sleep(0.8)
    status, body = kube(sim, AAD_CLUSTER, "GET",
        "/apis/apps/v1/namespaces/kube-system/deployments/metrics-server", tok)
    T.eq(body.status.conditions[1].status, "True")
    T.eq(body.status.availableReplicas, 1)
    status, body = kube(sim, AAD_CLUSTER, "GET", "/apis/metrics.k8s.io/v1beta1/nodes", tok)
    T.eq(status, 200)
    T.eq(body.kind, "NodeMetricsList")
    T.eq(body.apiVersion, "metrics.k8s.io/v1beta1")
    T.eq(#body.items, 3)
    status, body = kube(sim, AAD_CLUSTER, "GET",
        "/apis/metrics.k8s.io/v1beta1/namespaces/kube-system/pods", tok)
    T.eq(status, 200)
    T.eq(body.kind, "PodMetricsList")
    local found
    for _, p in ipairs(body.items) do
        if p.metadata.name:find("^metrics%-server%-") then
            found = p
        end
    end
    T.ok(found, "the metrics-server pod reports its own usage")
    T.eq(found.containers[1].name, "metrics-server")
    T.eq((kube(sim, AAD_CLUSTER, "GET", "/apis/metrics.k8s.io/v1beta1", tok)), 200)
    local st = sim:stats()
    T.eq(st.counts["kube:GET /apis/metrics.k8s.io/v1beta1/nodes"], 2)
end)


T.test("every cluster keeps its own objects", function()
    local sim = harness.start()
    local tok = aad_token(sim)
    T.eq((kube(sim, sim.env.SIM_AKS_CLUSTER, "POST", "/api/v1/namespaces/default/configmaps",
        tok, { json = { metadata = { name = "only-here" } } })), 201)
    T.eq((kube(sim, sim.env.SIM_AKS_CLUSTER, "GET",
        "/api/v1/namespaces/default/configmaps/only-here", tok)), 200)
    T.eq((kube(sim, AAD_CLUSTER, "GET", "/api/v1/namespaces/default/configmaps/only-here", tok)),
        404)
end)


-- ---- cluster access cases (scenarios/access.lua) --------------------------------------------

T.test("an expired admin client certificate is refused with 401, even on /version", function()
    local sim = harness.start { scenario = ACCESS }
    local kc = arm_kubeconfig(sim, "aks-expired")
    T.eq(kc.token, nil, "no static token: the certificate is the only credential")
    local cert = assert(crypto.load_cert(kc.client_cert))
    T.ok(cert:not_after() < os.time() - 30 * 86400, "expired a month ago")
    T.ok(cert:verify_signed_by(assert(crypto.load_cert(kc.ca_pem))), "by the right CA")
    T.eq(kc.server, sim.config.clusters["aks-expired"].url)
    local creds = { client_cert = kc.client_cert, client_key = kc.client_key }
    for _, path in ipairs { "/api/v1/namespaces", "/version", "/apis" } do
        local status, body, res = kube(sim, "aks-expired", "GET", path, creds)
        T.eq(status, 401, path)
        T.eq(body, UNAUTHORIZED, path)
        T.match(res.headers["content-type"], "^application/json")
    end
    -- As in kube-apiserver, another credential that works still does.
    local status = kube(sim, "aks-expired", "GET", "/api/v1/namespaces", creds,
        { bearer = aad_token(sim) })
    T.eq(status, 200, "an Entra token alongside the expired certificate")
    -- A certificate from the same CA that has not expired is fine on the same cluster.
    T.eq((kube(sim, "aks-expired", "GET", "/api/v1/namespaces", cluster_credentials(sim,
        "aks-expired", { CN = "masterclient", O = "system:masters" }))), 200)
end)


T.test("a kubeconfig with the wrong CA fails TLS verification; the right CA works", function()
    local sim = harness.start { scenario = ACCESS }
    local kc = arm_kubeconfig(sim, "aks-wrong-ca")
    local cfg = sim.config.clusters["aks-wrong-ca"]
    T.eq(kc.server, cfg.url, "the server is right, only the CA is not")
    T.ne(kc.ca_pem, T.read_file(cfg.ca_file))
    local wrong = assert(crypto.load_cert(kc.ca_pem))
    local right = assert(crypto.load_cert(T.read_file(cfg.ca_file)))
    T.eq(wrong:subject(), right:subject(), "same name, another key")
    local res, msg, code = http.request { url = kc.server .. "/version", ca_pem = kc.ca_pem,
        client_cert = kc.client_cert, client_key = kc.client_key, timeout = 10 }
    T.eq(res, nil)
    T.eq(code, "tls", msg)
    res = assert(http.request { url = kc.server .. "/api/v1/namespaces", ca_file = cfg.ca_file,
        client_cert = kc.client_cert, client_key = kc.client_key })
    T.eq(res.status, 200, "the kubeconfig's client certificate is valid")
end)


T.test("an unreachable cluster's kubeconfig points where nothing listens: connect error at once",
    function()
        local sim = harness.start { scenario = ACCESS }
        local kc = arm_kubeconfig(sim, "aks-unreachable")
        local cfg = sim.config.clusters["aks-unreachable"]
        T.match(kc.server, "^https://127%.0%.0%.1:%d+$")
        T.ne(kc.server, cfg.url)
        T.eq(cfg.server, kc.server)
        local t0 = time.monotonic()
        local res, msg, code = http.request { url = kc.server .. "/version", ca_pem = kc.ca_pem,
            connect_timeout = 5, timeout = 5 }
        T.eq(res, nil)
        T.eq(code, "connect", msg)
        T.ok(time.monotonic() - t0 < 1, "refused, not timed out")
        T.eq((kube(sim, "aks-unreachable", "GET", "/version")), 200,
            "the simulated API server itself still answers on its own port")
    end)


T.test("a private cluster's kubeconfig names its private FQDN on port 443", function()
    local sim = harness.start { scenario = ACCESS }
    local kc = arm_kubeconfig(sim, "aks-private")
    T.match(kc.server, "^https://aks%-private%-[%w%-]+%-%x%x%x%x%x%x%x%x%.%x+%-%x+%-%x+%-%x+%-%x+" ..
        "%.privatelink%.westeurope%.azmk8s%.io:443$")
    T.eq(sim.config.clusters["aks-private"].server, kc.server)
    T.eq((kube(sim, "aks-private", "GET", "/api/v1/namespaces", { client_cert = kc.client_cert,
        client_key = kc.client_key })), 200, "reached on its loopback port, it is a cluster")
end)


T.test("metrics_server = unavailable: deployed, never Available, metrics.k8s.io answers 503",
    function()
        local sim = harness.start { scenario = ACCESS }
        local c, creds = "aks-ms-broken", cluster_credentials(sim, "aks-ms-broken",
            { CN = "masterclient", O = "system:masters" })
        local status, body = kube(sim, c, "GET",
            "/apis/apps/v1/namespaces/kube-system/deployments/metrics-server", creds)
        T.eq(status, 200)
        T.eq(condition(body, "Available").status, "False")
        T.eq(condition(body, "Progressing").status, "False")
        T.eq(condition(body, "Progressing").reason, "ProgressDeadlineExceeded")
        T.eq(body.status.availableReplicas, nil)
        T.eq(body.status.unavailableReplicas, 2)
        status, body = kube(sim, c, "GET",
            "/apis/apiregistration.k8s.io/v1/apiservices/v1beta1.metrics.k8s.io", creds)
        T.eq(status, 200)
        T.eq(body.status.conditions[1].status, "False")
        T.eq(body.status.conditions[1].reason, "MissingEndpoints")
        status, body = kube(sim, c, "GET", "/apis/metrics.k8s.io/v1beta1/nodes", creds)
        T.eq(status, 503)
        T.eq(body.reason, "ServiceUnavailable")
        status, body = kube(sim, c, "GET",
            "/api/v1/namespaces/kube-system/pods?labelSelector=k8s-app%3Dmetrics-server", creds)
        T.eq(#body.items, 2)
        T.eq(body.items[1].status.phase, "Pending")
        T.eq((kube(sim, c, "POST", "/apis/apps/v1/namespaces/kube-system/deployments", creds,
            { json = { apiVersion = "apps/v1", kind = "Deployment",
                metadata = { name = "metrics-server" } } })), 409, "it is there already")
        T.eq((kube(sim, "aks-prod", "GET", "/apis/metrics.k8s.io/v1beta1/nodes",
            admin_credentials(sim))), 200, "metrics_server = true is still Available")
    end)


-- ---- the metrics-server manifest Aurora ships -----------------------------------------------

local COLLECTIONS = {
    ServiceAccount = "/api/v1/namespaces/%s/serviceaccounts",
    ClusterRole = "/apis/rbac.authorization.k8s.io/v1/clusterroles",
    RoleBinding = "/apis/rbac.authorization.k8s.io/v1/namespaces/%s/rolebindings",
    ClusterRoleBinding = "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
    Service = "/api/v1/namespaces/%s/services",
    Deployment = "/apis/apps/v1/namespaces/%s/deployments",
    APIService = "/apis/apiregistration.k8s.io/v1/apiservices",
}


T.test("the metrics-server manifest is release v0.7.2's objects, in creation order", function()
    local docs = assert(yaml.decode_all(T.read_file(MANIFEST)))
    local got = {}
    for i, d in ipairs(docs) do
        got[i] = d.kind .. " " .. (d.metadata.namespace and d.metadata.namespace .. "/" or "") ..
            d.metadata.name
        T.eq(d.metadata.labels["k8s-app"], "metrics-server", got[i])
    end
    T.eq(got, { "ServiceAccount kube-system/metrics-server",
        "ClusterRole system:aggregated-metrics-reader", "ClusterRole system:metrics-server",
        "RoleBinding kube-system/metrics-server-auth-reader",
        "ClusterRoleBinding metrics-server:system:auth-delegator",
        "ClusterRoleBinding system:metrics-server", "Service kube-system/metrics-server",
        "Deployment kube-system/metrics-server", "APIService v1beta1.metrics.k8s.io" })
    local reader = docs[2]
    for _, verb in ipairs { "view", "edit", "admin" } do
        T.eq(reader.metadata.labels["rbac.authorization.k8s.io/aggregate-to-" .. verb], "true")
    end
    T.eq(reader.rules, { { apiGroups = { "metrics.k8s.io" }, resources = { "pods", "nodes" },
        verbs = { "get", "list", "watch" } } })
    T.eq(docs[3].rules, { { apiGroups = { "" }, resources = { "nodes/metrics" },
        verbs = { "get" } }, { apiGroups = { "" }, resources = { "pods", "nodes" },
        verbs = { "get", "list", "watch" } } })
    T.eq(docs[4].roleRef, { apiGroup = "rbac.authorization.k8s.io", kind = "Role",
        name = "extension-apiserver-authentication-reader" })
    T.eq(docs[5].roleRef.name, "system:auth-delegator")
    T.eq(docs[7].spec.ports, { { name = "https", port = 443, protocol = "TCP",
        targetPort = "https" } })
    local pod = docs[8].spec.template.spec
    local c = pod.containers[1]
    T.eq(c.image, "registry.k8s.io/metrics-server/metrics-server:v0.7.2")
    T.eq(c.args, { "--cert-dir=/tmp", "--secure-port=10250",
        "--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname",
        "--kubelet-use-node-status-port", "--metric-resolution=15s" })
    T.eq(c.ports, { { containerPort = 10250, name = "https", protocol = "TCP" } })
    T.eq(c.resources, { requests = { cpu = "100m", memory = "200Mi" } })
    T.eq(c.livenessProbe.httpGet.path, "/livez")
    T.eq(c.readinessProbe.httpGet.path, "/readyz")
    T.eq(c.securityContext.readOnlyRootFilesystem, true)
    T.eq(c.securityContext.runAsNonRoot, true)
    T.eq(pod.priorityClassName, "system-cluster-critical")
    T.eq(pod.serviceAccountName, "metrics-server")
    T.eq(pod.nodeSelector, { ["kubernetes.io/os"] = "linux" })
    T.eq(pod.volumes[1].name, "tmp-dir")
    T.eq(docs[9].spec, { group = "metrics.k8s.io", version = "v1beta1",
        groupPriorityMinimum = 100, versionPriority = 100, insecureSkipTLSVerify = true,
        service = { name = "metrics-server", namespace = "kube-system" } })
end)


T.test("the manifest's objects POSTed in order bring metrics.k8s.io up on a cluster without it",
    function()
        local sim = harness.start()
        sim:knobs { metrics_delay_ms = 400 }
        local tok = aad_token(sim)
        T.eq((kube(sim, AAD_CLUSTER, "GET", "/apis/metrics.k8s.io/v1beta1/nodes", tok)), 404)
        for _, d in ipairs(assert(yaml.decode_all(T.read_file(MANIFEST)))) do
            local path = string.format(COLLECTIONS[d.kind], d.metadata.namespace)
            local status, body = kube(sim, AAD_CLUSTER, "POST", path, tok, { json = d })
            T.eq(status, 201, d.kind .. ": " .. tostring(body and body.message))
            T.eq(body.kind, d.kind)
            T.eq(body.metadata.name, d.metadata.name)
        end
        local status, body = kube(sim, AAD_CLUSTER, "GET",
            "/apis/apps/v1/namespaces/kube-system/deployments/metrics-server", tok)
        T.eq(body.spec.template.spec.containers[1].image,
            "registry.k8s.io/metrics-server/metrics-server:v0.7.2")
        T.eq(condition(body, "Available").status, "False")
        T.eq((kube(sim, AAD_CLUSTER, "GET", "/apis/metrics.k8s.io/v1beta1/nodes", tok)), 503)
        time.sleep(0.6)
        status, body = kube(sim, AAD_CLUSTER, "GET",
            "/apis/apps/v1/namespaces/kube-system/deployments/metrics-server", tok)
        T.eq(condition(body, "Available").status, "True")
        status, body = kube(sim, AAD_CLUSTER, "GET",
            "/apis/apiregistration.k8s.io/v1/apiservices/v1beta1.metrics.k8s.io", tok)
        T.eq(body.status.conditions[1].status, "True")
        status, body = kube(sim, AAD_CLUSTER, "GET", "/apis/metrics.k8s.io/v1beta1/nodes", tok)
        T.eq(status, 200)
        T.eq(#body.items, 3)
        -- Counted per cluster, method and path: each object was POSTed once, on aks-aad only.
        local req = sim:stats().requests
        T.eq(req["kube:aks-aad POST /apis/apps/v1/namespaces/kube-system/deployments"], 1)
        T.eq(req["kube:aks-aad POST /apis/rbac.authorization.k8s.io/v1/clusterroles"], 2)
        T.eq(req["kube:aks-aad POST /apis/apiregistration.k8s.io/v1/apiservices"], 1)
        T.eq(req["kube:aks-prod POST /apis/apps/v1/namespaces/kube-system/deployments"], nil)
        T.eq(req["kube:aks-aad GET /apis/metrics.k8s.io/v1beta1/nodes"], 3)
        -- A second run finds everything there.
        local again = assert(yaml.decode_all(T.read_file(MANIFEST)))[8]
        T.eq((kube(sim, AAD_CLUSTER, "POST", "/apis/apps/v1/namespaces/kube-system/deployments",
            tok, { json = again })), 409)
    end)


T.test("latency_ms applies to the API servers: for all of them, or one cluster's listener",
    function()
        local sim = harness.start()
        local creds = admin_credentials(sim)
        local tok = aad_token(sim)
        local function timed(cluster, c)
            local t0 = time.monotonic()
            T.eq((kube(sim, cluster, "GET", "/api/v1/namespaces", c)), 200)
            return time.monotonic() - t0
        end
        sim:knobs { latency_ms = { kube = 200 } }
        T.ok(timed("aks-prod", creds) >= 0.2, "kube: every cluster")
        T.ok(timed(AAD_CLUSTER, tok) >= 0.2, "kube: every cluster")
        T.eq(assert(sim:request("arm", "POST", "/_sim/reset")).status, 200)
        sim:knobs { latency_ms = { ["kube:aks-aad"] = 300 } }
        T.ok(timed(AAD_CLUSTER, tok) >= 0.3, "the listener's own latency")
        T.ok(timed("aks-prod", creds) < 0.25, "the other cluster is not slowed")
        -- A fault for one listener.
        sim:knobs { faults = { { route = "kube:aks-aad", status = 503, count = 1 } } }
        T.eq((kube(sim, AAD_CLUSTER, "GET", "/api/v1/namespaces", tok)), 503)
        T.eq((kube(sim, AAD_CLUSTER, "GET", "/api/v1/namespaces", tok)), 200)
    end)

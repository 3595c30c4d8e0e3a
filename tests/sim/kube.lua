-- The simulated Kubernetes API servers of the scenario's AKS clusters. One route table serves
-- every cluster listener ("kube:<cluster name>", req.listener); each cluster has its own objects,
-- built from the scenario on first use and rebuilt on /_sim/reset.
--
-- Authentication: a verified client certificate with O=system:masters (refused when the cluster
-- has local accounts disabled), the cluster's static admin token (M.admin_token), or an Entra
-- token for the AKS AAD server application. Anything else is 401, as kubectl expects. As in
-- kube-apiserver, a client certificate that does not verify (expired, another CA) is a failed
-- credential, 401 even on /version, unless a valid bearer token comes with it.
--
-- Served: /version, legacy discovery (/api, /apis, /api/v1, /apis/{g}, /apis/{g}/{v}), an empty
-- /openapi/v2 (enough for kubectl apply), create/get/list/replace/patch/delete of namespaces,
-- services, serviceaccounts, configmaps, secrets, deployments, RBAC objects and apiservices;
-- read-only nodes (3) and pods (derived from the deployments); metrics.k8s.io once the
-- metrics-server Deployment is Available (sim.knobs.metrics_delay_ms after it was created,
-- default 2000) and its APIService exists. A cluster with metrics_server = "unavailable" has
-- AKS's metrics-server objects, but its Deployment never becomes Available.
local crypto = require "aurora.crypto"
local json = require "aurora.json"
local time = require "aurora.time"
local sim = require "sim"
local tokens = require "tokens"

local M = {}

local SERVICE = "kube"
local AKS_AAD_SERVER = "6dae42f8-4368-4678-94ff-3960e28e3630"
local METRICS_API = "v1beta1.metrics.k8s.io"
local DEFAULT_METRICS_DELAY_MS = 2000
local PROTECTED_NAMESPACES = { default = true, ["kube-system"] = true, ["kube-public"] = true }

local RW = { "create", "delete", "get", "list", "patch", "update" }
local RO = { "get", "list" }

-- The API groups served, in discovery order. metrics.k8s.io is added to discovery while its
-- APIService exists.
local GROUPS = {
    { group = "", version = "v1", resources = {
        { name = "namespaces", kind = "Namespace", namespaced = false, short = { "ns" } },
        { name = "nodes", kind = "Node", namespaced = false, short = { "no" }, readonly = true },
        { name = "pods", kind = "Pod", namespaced = true, short = { "po" }, readonly = true,
          derived = true },
        { name = "services", kind = "Service", namespaced = true, short = { "svc" } },
        { name = "serviceaccounts", kind = "ServiceAccount", namespaced = true, short = { "sa" } },
        { name = "configmaps", kind = "ConfigMap", namespaced = true, short = { "cm" } },
        { name = "secrets", kind = "Secret", namespaced = true },
    } },
    { group = "apps", version = "v1", resources = {
        { name = "deployments", kind = "Deployment", namespaced = true, short = { "deploy" } },
    } },
    { group = "rbac.authorization.k8s.io", version = "v1", resources = {
        { name = "clusterroles", kind = "ClusterRole", namespaced = false },
        { name = "clusterrolebindings", kind = "ClusterRoleBinding", namespaced = false },
        { name = "roles", kind = "Role", namespaced = true },
        { name = "rolebindings", kind = "RoleBinding", namespaced = true },
    } },
    { group = "apiregistration.k8s.io", version = "v1", resources = {
        { name = "apiservices", kind = "APIService", namespaced = false },
    } },
}

local METRICS_GROUP = { group = "metrics.k8s.io", version = "v1beta1", resources = {
    { name = "nodes", kind = "NodeMetrics", namespaced = false },
    { name = "pods", kind = "PodMetrics", namespaced = true },
} }

-- "apps/v1" (or "v1") -> resource name -> definition.
local RESOURCES = {}
for _, g in ipairs(GROUPS) do
    g.gv = g.group == "" and g.version or (g.group .. "/" .. g.version)
    RESOURCES[g.gv] = {}
    for _, r in ipairs(g.resources) do
        r.group, r.version, r.gv = g.group, g.version, g.gv
        r.label = g.group == "" and r.name or (r.name .. "." .. g.group)
        RESOURCES[g.gv][r.name] = r
    end
end
METRICS_GROUP.gv = "metrics.k8s.io/v1beta1"

-- Cluster states by cluster name, built on first use.
local clusters = {}


local function reset()
    clusters = {}
end


-- ---- helpers ------------------------------------------------------------------------------

local function copy(v)
    if type(v) ~= "table" then
        return v
    end
    local out = {}
    for k, x in pairs(v) do out[k] = copy(x) end
    return setmetatable(out, getmetatable(v))
end


local function iso(t)
    return sim.timestamp(math.floor(t), true)
end


local function short_hash(s, n)
    return crypto.hex(crypto.sha256(s)):sub(1, n)
end


-- A stable GUID-shaped id derived from s.
local function fake_uid(s)
    local h = short_hash(s, 32)
    return string.format("%s-%s-4%s-8%s-%s", h:sub(1, 8), h:sub(9, 12), h:sub(14, 16),
        h:sub(18, 20), h:sub(21, 32))
end


local function status_error(code, reason, message, details)
    return code, { kind = "Status", apiVersion = "v1", metadata = {}, status = "Failure",
        message = message, reason = reason, details = details, code = code }
end


local function unauthorized()
    return status_error(401, "Unauthorized", "Unauthorized")
end


local function details(def, name)
    return { name = name, group = def.group ~= "" and def.group or nil, kind = def.name }
end


local function not_found(def, name)
    return status_error(404, "NotFound", def.label .. ' "' .. name .. '" not found',
        details(def, name))
end


local function no_such_resource()
    return status_error(404, "NotFound", "the server could not find the requested resource",
        {})
end


local function bad_request(message)
    return status_error(400, "BadRequest", message)
end


local function method_not_allowed()
    return status_error(405, "MethodNotAllowed",
        "the server does not allow this method on the requested resource", {})
end


-- ---- cluster state ------------------------------------------------------------------------

local function bucket(cl, def)
    local k = def.gv .. "/" .. def.name
    cl.objects[k] = cl.objects[k] or {}
    return cl.objects[k]
end


local function key(ns, name)
    return (ns or "") .. "/" .. name
end


local function lookup(cl, def, ns, name)
    return bucket(cl, def)[key(ns, name)]
end


local function res(gv, name)
    return RESOURCES[gv] and RESOURCES[gv][name]
end


local function next_rv(cl)
    cl.rv = cl.rv + 1
    return tostring(cl.rv)
end


-- Kind-specific defaults applied on create and update.
local function apply_defaults(cl, def, obj)
    local spec = obj.spec
    if def.kind == "Deployment" then
        obj.spec = spec or {}
        if obj.spec.replicas == nil then obj.spec.replicas = 1 end
    elseif def.kind == "Namespace" then
        obj.spec = spec or { finalizers = json.array({ "kubernetes" }) }
        obj.status = { phase = "Active" }
    elseif def.kind == "Service" then
        obj.spec = spec or {}
        obj.spec.type = obj.spec.type or "ClusterIP"
        if not obj.spec.clusterIP or obj.spec.clusterIP == "" then
            cl.next_ip = cl.next_ip + 1
            obj.spec.clusterIP = string.format("10.0.%d.%d", cl.next_ip // 250, cl.next_ip % 250)
        end
        obj.spec.clusterIPs = obj.spec.clusterIPs or json.array({ obj.spec.clusterIP })
    end
end


-- Stores obj (an object as a client posts it) and returns its entry. available_at: when a
-- Deployment becomes Available (default: now).
local function put(cl, def, obj, available_at)
    local md = obj.metadata
    obj.apiVersion, obj.kind = def.gv, def.kind
    md.uid = md.uid or sim.uuid()
    md.resourceVersion = next_rv(cl)
    md.creationTimestamp = md.creationTimestamp or iso(time.now())
    if def.kind == "Deployment" then
        md.generation = md.generation or 1
    end
    apply_defaults(cl, def, obj)
    local entry = { obj = obj, available_at = available_at or 0 }
    bucket(cl, def)[key(md.namespace, md.name)] = entry
    return entry
end


local function seed(cl, gv, name, ns, objname, fields, extra_md, available_at)
    local obj = copy(fields or {})
    obj.metadata = { name = objname, namespace = ns, creationTimestamp = iso(cl.born) }
    for k, v in pairs(extra_md or {}) do obj.metadata[k] = v end
    return put(cl, res(gv, name), obj, available_at)
end


local function add_namespace_defaults(cl, ns)
    seed(cl, "v1", "serviceaccounts", ns, "default")
    seed(cl, "v1", "configmaps", ns, "kube-root-ca.crt", { data = { ["ca.crt"] = cl.ca_pem } })
end


local function pod_template(labels, image, args)
    return {
        metadata = { labels = labels },
        spec = { containers = json.array({ { name = labels["k8s-app"] == "kube-dns" and "coredns"
            or "metrics-server", image = image, args = args and json.array(args) or nil,
            resources = { requests = { cpu = "100m", memory = "70Mi" } } } }) },
    }
end


-- The managed metrics-server of an AKS cluster (addon manager labels, two replicas). broken:
-- its Deployment never becomes Available (its pods stay Pending, the APIService False).
local function seed_metrics_server(cl, broken)
    local labels = { ["k8s-app"] = "metrics-server",
        ["addonmanager.kubernetes.io/mode"] = "Reconcile" }
    local md = { labels = labels }
    seed(cl, "v1", "serviceaccounts", "kube-system", "metrics-server", nil, md)
    seed(cl, "rbac.authorization.k8s.io/v1", "clusterroles", nil, "system:metrics-server",
        { rules = json.array({ { apiGroups = json.array({ "" }),
            resources = json.array({ "nodes/metrics", "pods", "nodes" }),
            verbs = json.array({ "get", "list", "watch" }) } }) }, md)
    seed(cl, "rbac.authorization.k8s.io/v1", "clusterroles", nil,
        "system:aggregated-metrics-reader",
        { rules = json.array({ { apiGroups = json.array({ "metrics.k8s.io" }),
            resources = json.array({ "pods", "nodes" }),
            verbs = json.array({ "get", "list", "watch" }) } }) }, md)
    local subject = json.array({ { kind = "ServiceAccount", name = "metrics-server",
        namespace = "kube-system" } })
    seed(cl, "rbac.authorization.k8s.io/v1", "clusterrolebindings", nil, "system:metrics-server",
        { roleRef = { apiGroup = "rbac.authorization.k8s.io", kind = "ClusterRole",
            name = "system:metrics-server" }, subjects = subject }, md)
    seed(cl, "rbac.authorization.k8s.io/v1", "clusterrolebindings", nil,
        "metrics-server:system:auth-delegator",
        { roleRef = { apiGroup = "rbac.authorization.k8s.io", kind = "ClusterRole",
            name = "system:auth-delegator" }, subjects = subject }, md)
    seed(cl, "rbac.authorization.k8s.io/v1", "rolebindings", "kube-system",
        "metrics-server-auth-reader",
        { roleRef = { apiGroup = "rbac.authorization.k8s.io", kind = "Role",
            name = "extension-apiserver-authentication-reader" }, subjects = subject }, md)
    seed(cl, "v1", "services", "kube-system", "metrics-server",
        { spec = { selector = { ["k8s-app"] = "metrics-server" },
            ports = json.array({ { name = "https", port = 443, protocol = "TCP",
                targetPort = "https" } }) } }, md)
    seed(cl, "apps/v1", "deployments", "kube-system", "metrics-server",
        { spec = { replicas = 2, selector = { matchLabels = { ["k8s-app"] = "metrics-server" } },
            template = pod_template({ ["k8s-app"] = "metrics-server" },
                "mcr.microsoft.com/oss/kubernetes/metrics-server:v0.6.3",
                { "--kubelet-insecure-tls", "--metric-resolution=15s" }) } }, md,
        broken and math.huge or nil)
    seed(cl, "apiregistration.k8s.io/v1", "apiservices", nil, METRICS_API,
        { spec = { service = { name = "metrics-server", namespace = "kube-system", port = 443 },
            group = "metrics.k8s.io", version = "v1beta1", insecureSkipTLSVerify = true,
            groupPriorityMinimum = 100, versionPriority = 100 } }, md)
end


local function build(c)
    local endpoint = sim.config.clusters and sim.config.clusters[c.name] or {}
    -- What the scenario holds was there before the simulator started: a day old.
    local cl = { c = c, objects = {}, rv = 1000, next_ip = 10, born = time.now() - 86400,
        ca_pem = endpoint.ca_file and sim.read_file(endpoint.ca_file) or "" }
    for _, ns in ipairs { "default", "kube-system", "kube-public" } do
        seed(cl, "v1", "namespaces", nil, ns)
        add_namespace_defaults(cl, ns)
    end
    local pool = string.format("%08d", tonumber(short_hash(c.name, 7), 16) % 100000000)
    for i = 0, 2 do
        local name = "aks-nodepool1-" .. pool .. "-vmss00000" .. i
        seed(cl, "v1", "nodes", nil, name, {
            spec = { podCIDR = "10.244." .. i .. ".0/24",
                providerID = "azure:///subscriptions/" .. (c.subscription or "") ..
                    "/resourceGroups/mc_" .. (c.resource_group or "rg") .. "_" .. c.name ..
                    "/providers/Microsoft.Compute/virtualMachineScaleSets/aks-nodepool1-" ..
                    pool .. "-vmss/virtualMachines/" .. i },
            status = {
                addresses = json.array({ { type = "InternalIP", address = "10.224.0." .. (4 + i) },
                    { type = "Hostname", address = name } }),
                capacity = { cpu = "4", memory = "16364596Ki", pods = "110" },
                allocatable = { cpu = "3860m", memory = "12880948Ki", pods = "110" },
                conditions = json.array({ { type = "Ready", status = "True",
                    reason = "KubeletReady", message = "kubelet is posting ready status" } }),
                nodeInfo = { kubeletVersion = "v" .. (c.version or "1.29.4"),
                    osImage = "Ubuntu 22.04.4 LTS", containerRuntimeVersion = "containerd://1.7.15",
                    operatingSystem = "linux", architecture = "amd64" },
            },
        }, { labels = { ["kubernetes.io/os"] = "linux", ["kubernetes.io/role"] = "agent",
            ["kubernetes.azure.com/agentpool"] = "nodepool1", agentpool = "nodepool1",
            ["kubernetes.io/hostname"] = name,
            ["topology.kubernetes.io/region"] = c.location or "eastus" } })
    end
    seed(cl, "v1", "services", "default", "kubernetes",
        { spec = { clusterIP = "10.0.0.1", ports = json.array({ { name = "https", port = 443,
            protocol = "TCP", targetPort = 443 } }) } },
        { labels = { component = "apiserver", provider = "kubernetes" } })
    seed(cl, "v1", "services", "kube-system", "kube-dns",
        { spec = { clusterIP = "10.0.0.10", selector = { ["k8s-app"] = "kube-dns" },
            ports = json.array({ { name = "dns", port = 53, protocol = "UDP", targetPort = 53 },
                { name = "dns-tcp", port = 53, protocol = "TCP", targetPort = 53 } }) } },
        { labels = { ["k8s-app"] = "kube-dns" } })
    seed(cl, "apps/v1", "deployments", "kube-system", "coredns",
        { spec = { replicas = 2, selector = { matchLabels = { ["k8s-app"] = "kube-dns" } },
            template = pod_template({ ["k8s-app"] = "kube-dns" },
                "mcr.microsoft.com/oss/kubernetes/coredns:v1.9.4") } },
        { labels = { ["k8s-app"] = "kube-dns",
            ["addonmanager.kubernetes.io/mode"] = "Reconcile" } })
    for _, name in ipairs { "cluster-admin", "admin", "edit", "view", "system:auth-delegator" } do
        seed(cl, "rbac.authorization.k8s.io/v1", "clusterroles", nil, name,
            { rules = json.array({ { apiGroups = json.array({ "*" }),
                resources = json.array({ "*" }), verbs = json.array({ "*" }) } }) })
    end
    seed(cl, "rbac.authorization.k8s.io/v1", "clusterrolebindings", nil, "cluster-admin",
        { roleRef = { apiGroup = "rbac.authorization.k8s.io", kind = "ClusterRole",
            name = "cluster-admin" }, subjects = json.array({ { apiGroup =
            "rbac.authorization.k8s.io", kind = "Group", name = "system:masters" } }) })
    seed(cl, "rbac.authorization.k8s.io/v1", "roles", "kube-system",
        "extension-apiserver-authentication-reader",
        { rules = json.array({ { apiGroups = json.array({ "" }),
            resources = json.array({ "configmaps" }),
            resourceNames = json.array({ "extension-apiserver-authentication" }),
            verbs = json.array({ "get", "list", "watch" }) } }) })
    for _, g in ipairs(GROUPS) do
        local name = g.version .. "." .. g.group
        seed(cl, "apiregistration.k8s.io/v1", "apiservices", nil, name,
            { spec = { group = g.group ~= "" and g.group or nil, version = g.version,
                groupPriorityMinimum = 18000, versionPriority = 15 } },
            { labels = { ["kube-aggregator.kubernetes.io/automanaged"] = "onstart" } })
    end
    if c.metrics_server then
        seed_metrics_server(cl, c.metrics_server == "unavailable")
    end
    return cl
end


local function cluster_of(req)
    local name = req.listener and req.listener:match("^kube:(.+)$")
    local c
    for _, sc in ipairs(sim.scenario.clusters) do
        if sc.name == name or (name == nil and c == nil) then
            c = sc
        end
    end
    if not c then
        return nil
    end
    clusters[c.name] = clusters[c.name] or build(c)
    return clusters[c.name]
end


-- ---- authentication -------------------------------------------------------------------------

--- The cluster's static admin token (the `token` of an admin kubeconfig, accepted while the
-- cluster has local accounts). Derived from the state directory, so it differs per simulator.
function M.admin_token(cluster_name)
    return crypto.hex(crypto.sha256("aks-admin-token:" .. (sim.state_dir or "") .. ":" ..
        cluster_name)):sub(1, 64)
end


-- Who is calling: {user, groups, admin}, or nil and "anonymous" / "invalid".
local function authenticate(req, cl)
    local local_accounts = cl.c.local_accounts ~= false
    local cert = req.client_cert
    local bad_cert = req.client_cert_error ~= nil
    if cert and local_accounts then
        local user = cert.subject:match("CN=([^,]+)") or cert.subject
        local groups, admin = {}, false
        for o in ("," .. cert.subject):gmatch(",O=([^,]+)") do
            groups[#groups + 1] = o
            admin = admin or o == "system:masters"
        end
        return { user = user, groups = groups, admin = admin }
    end
    local h = req.headers.authorization
    if h then
        local t = h:match("^[Bb]earer%s+(%S+)$")
        if t and local_accounts and crypto.equals(t, M.admin_token(cl.c.name)) then
            return { user = "clusterAdmin", groups = { "system:masters" }, admin = true }
        end
        local claims = tokens.check(req, { AKS_AAD_SERVER })
        if claims then
            return { user = claims.upn or claims.oid or claims.appid or "aad-user",
                groups = claims.groups or {}, admin = true }
        end
        return nil, "invalid"
    end
    if cert or bad_cert then
        return nil, "invalid"
    end
    return nil, "anonymous"
end


local function forbidden(who, verb, def, ns)
    local where = ns and (' in the namespace "' .. ns .. '"') or " at the cluster scope"
    return status_error(403, "Forbidden", string.format(
        '%s is forbidden: User "%s" cannot %s resource "%s" in API group "%s"%s',
        def.label, who.user, verb, def.name, def.group, where),
        { group = def.group ~= "" and def.group or nil, kind = def.name })
end


-- ---- computed state: deployments, pods, metrics ---------------------------------------------

local function deployment_status(entry, now)
    local obj = entry.obj
    local r = obj.spec.replicas or 1
    local gen = obj.metadata.generation or 1
    local rs = obj.metadata.name .. "-" .. short_hash(obj.metadata.uid, 10)
    if now >= entry.available_at then
        local since = entry.available_at > 0 and iso(entry.available_at) or
            obj.metadata.creationTimestamp
        return {
            observedGeneration = gen, replicas = r, updatedReplicas = r, readyReplicas = r,
            availableReplicas = r,
            conditions = json.array({
                { type = "Available", status = "True", reason = "MinimumReplicasAvailable",
                  message = "Deployment has minimum availability.", lastUpdateTime = since,
                  lastTransitionTime = since },
                { type = "Progressing", status = "True", reason = "NewReplicaSetAvailable",
                  message = 'ReplicaSet "' .. rs .. '" has successfully progressed.',
                  lastUpdateTime = since, lastTransitionTime = obj.metadata.creationTimestamp },
            }),
        }
    end
    local created = obj.metadata.creationTimestamp
    local progressing = { type = "Progressing", status = "True", reason = "ReplicaSetUpdated",
        message = 'ReplicaSet "' .. rs .. '" is progressing.', lastUpdateTime = created,
        lastTransitionTime = created }
    if entry.available_at == math.huge then
        -- Never Available: past its progress deadline (600 s), as a real one would be.
        progressing.status, progressing.reason = "False", "ProgressDeadlineExceeded"
        progressing.message = 'ReplicaSet "' .. rs .. '" has timed out progressing.'
    end
    return {
        observedGeneration = gen, replicas = r, updatedReplicas = r, unavailableReplicas = r,
        conditions = json.array({
            { type = "Available", status = "False", reason = "MinimumReplicasUnavailable",
              message = "Deployment does not have minimum availability.",
              lastUpdateTime = created, lastTransitionTime = created },
            progressing,
        }),
    }
end


local function node_names(cl)
    local names = {}
    for _, e in pairs(bucket(cl, res("v1", "nodes"))) do names[#names + 1] = e.obj.metadata.name end
    table.sort(names)
    return names
end


-- Pods of the deployments (in ns, or everywhere), as entries like stored ones.
local function derived_pods(cl, ns)
    local now = time.now()
    local nodes = node_names(cl)
    local out = {}
    for _, e in pairs(bucket(cl, res("apps/v1", "deployments"))) do
        local d = e.obj
        if not ns or d.metadata.namespace == ns then
            local running = now >= e.available_at
            local template = d.spec.template or {}
            local hash = short_hash(d.metadata.uid, 10)
            for i = 1, d.spec.replicas or 1 do
                local name = d.metadata.name .. "-" .. hash .. "-" ..
                    short_hash(d.metadata.uid .. i, 5)
                local node = nodes[(i - 1) % #nodes + 1]
                out[#out + 1] = { available_at = e.available_at, obj = {
                    apiVersion = "v1", kind = "Pod",
                    metadata = { name = name, namespace = d.metadata.namespace,
                        uid = fake_uid(name), resourceVersion = d.metadata.resourceVersion,
                        creationTimestamp = d.metadata.creationTimestamp,
                        labels = copy((template.metadata or {}).labels),
                        ownerReferences = json.array({ { apiVersion = "apps/v1",
                            kind = "ReplicaSet", name = d.metadata.name .. "-" .. hash,
                            uid = d.metadata.uid, controller = true } }) },
                    spec = (function()
                        local s = copy(template.spec or {})
                        s.nodeName = node
                        return s
                    end)(),
                    status = { phase = running and "Running" or "Pending",
                        podIP = "10.244." .. ((i - 1) % 3) .. "." .. (10 + i),
                        conditions = json.array({ { type = "Ready",
                            status = running and "True" or "False" } }) },
                } }
            end
        end
    end
    return out
end


-- "missing" (no APIService), "unavailable" (its Deployment is not Available or its Service is
-- missing) or "available".
local function metrics_state(cl)
    local api = lookup(cl, res("apiregistration.k8s.io/v1", "apiservices"), nil, METRICS_API)
    if not api then
        return "missing"
    end
    local svc = (api.obj.spec or {}).service or {}
    local ns, name = svc.namespace or "kube-system", svc.name or "metrics-server"
    if not lookup(cl, res("v1", "services"), ns, name) then
        return "unavailable", "ServiceNotFound", 'service/' .. name .. ' in "' .. ns ..
            '" is not present'
    end
    local dep = lookup(cl, res("apps/v1", "deployments"), ns, name)
    if not dep or time.now() < dep.available_at then
        return "unavailable", "MissingEndpoints", "endpoints for service/" .. name .. ' in "' ..
            ns .. '" have no addresses with port name "https"'
    end
    return "available"
end


local function apiservice_status(cl, obj)
    local available, reason, message = true, "Local", "Local APIServices are always available"
    if obj.metadata.name == METRICS_API or (obj.spec and obj.spec.service) then
        local state, why, msg = metrics_state(cl)
        available = state == "available"
        reason = available and "Passed" or why
        message = available and "all checks passed" or msg
    end
    return { conditions = json.array({ { type = "Available",
        status = available and "True" or "False", reason = reason, message = message,
        lastTransitionTime = obj.metadata.creationTimestamp } }) }
end


-- The object as the API returns it: a copy with its computed status.
local function present(cl, def, entry)
    local obj = copy(entry.obj)
    if def.kind == "Deployment" then
        obj.status = deployment_status(entry, time.now())
    elseif def.kind == "APIService" then
        obj.status = apiservice_status(cl, obj)
    end
    return obj
end


-- ---- Table output (kubectl get without -o) --------------------------------------------------

local function wants_table(req)
    return (req.headers.accept or ""):find("as=Table", 1, true) ~= nil
end


local function age(ts)
    local y, mo, d, h, mi, se = (ts or ""):match("^(%d+)-(%d+)-(%d+)T(%d+):(%d+):(%d+)")
    if not y then
        return "<unknown>"
    end
    local t = os.time { year = y, month = mo, day = d, hour = h, min = mi, sec = se }
    local s = math.max(0, os.time(os.date("!*t")) - t)
    if s < 120 then return s .. "s" end
    if s < 600 then return (s // 60) .. "m" .. (s % 60) .. "s" end
    if s < 3 * 3600 then return (s // 60) .. "m" end
    if s < 48 * 3600 then return (s // 3600) .. "h" end
    return (s // 86400) .. "d"
end


-- Column names and a row function per kind, like the API server's table convertors.
local COLUMNS = {
    Deployment = { { "Ready", "Up-to-date", "Available" }, function(o)
        local st = o.status or {}
        return { (st.readyReplicas or 0) .. "/" .. (o.spec.replicas or 1),
            st.updatedReplicas or 0, st.availableReplicas or 0 }
    end },
    Pod = { { "Ready", "Status", "Restarts" }, function(o)
        local n = #((o.spec or {}).containers or {})
        local running = o.status.phase == "Running"
        return { (running and n or 0) .. "/" .. n, o.status.phase, 0 }
    end },
    Node = { { "Status", "Roles", "Version" }, function(o)
        return { "Ready", "agent", o.status.nodeInfo.kubeletVersion }
    end, true },
    Service = { { "Type", "Cluster-IP", "External-IP", "Port(s)" }, function(o)
        local ports = {}
        for _, p in ipairs(o.spec.ports or {}) do
            ports[#ports + 1] = p.port .. "/" .. (p.protocol or "TCP")
        end
        return { o.spec.type or "ClusterIP", o.spec.clusterIP or "<none>", "<none>",
            #ports > 0 and table.concat(ports, ",") or "<none>" }
    end },
    Namespace = { { "Status" }, function(o) return { (o.status or {}).phase or "Active" } end },
}


local function as_table(cl, objects)
    local kind = objects.kind
    local spec = COLUMNS[kind]
    local cols = json.array({ { name = "Name", type = "string", format = "name",
        description = "Name must be unique within a namespace.", priority = 0 } })
    for _, n in ipairs(spec and spec[1] or {}) do
        cols[#cols + 1] = { name = n, type = "string", format = "", description = "",
            priority = 0 }
    end
    -- Age comes last, except for nodes (NAME STATUS ROLES AGE VERSION).
    local age_last = not (spec and spec[3])
    local age_col = { name = "Age", type = "string", format = "", priority = 0,
        description = "CreationTimestamp is a timestamp representing the server time when " ..
            "this object was created." }
    table.insert(cols, age_last and #cols + 1 or #cols, age_col)
    local rows = json.array()
    for _, o in ipairs(objects.items) do
        local cells = json.array({ o.metadata.name })
        for _, v in ipairs(spec and spec[2](o) or {}) do cells[#cells + 1] = v end
        if age_last then
            cells[#cells + 1] = age(o.metadata.creationTimestamp)
        else
            table.insert(cells, #cells, age(o.metadata.creationTimestamp))
        end
        rows[#rows + 1] = { cells = cells, object = { kind = "PartialObjectMetadata",
            apiVersion = "meta.k8s.io/v1", metadata = o.metadata } }
    end
    return { kind = "Table", apiVersion = "meta.k8s.io/v1",
        metadata = { resourceVersion = tostring(cl.rv) }, columnDefinitions = cols, rows = rows }
end


-- ---- selectors, lists -----------------------------------------------------------------------

local function parse_selector(s)
    local reqs = {}
    for part in (s or ""):gmatch("[^,]+") do
        part = part:match("^%s*(.-)%s*$")
        local k, v = part:match("^([^!=]+)!=(.*)$")
        if k then
            reqs[#reqs + 1] = { k = k, v = v, op = "ne" }
        else
            k, v = part:match("^([^=]+)==?(.*)$")
            if k then
                reqs[#reqs + 1] = { k = k, v = v, op = "eq" }
            elseif part:sub(1, 1) == "!" then
                reqs[#reqs + 1] = { k = part:sub(2), op = "absent" }
            elseif part ~= "" then
                reqs[#reqs + 1] = { k = part, op = "present" }
            end
        end
    end
    return reqs
end


local function selected(reqs, get)
    for _, r in ipairs(reqs) do
        local v = get(r.k)
        if (r.op == "eq" and v ~= r.v) or (r.op == "ne" and v == r.v) or
            (r.op == "present" and v == nil) or (r.op == "absent" and v ~= nil) then
            return false
        end
    end
    return true
end


local function list_objects(req, cl, def, ns)
    local entries = {}
    if def.derived then
        entries = derived_pods(cl, ns)
    else
        for _, e in pairs(bucket(cl, def)) do
            if not ns or e.obj.metadata.namespace == ns then entries[#entries + 1] = e end
        end
    end
    local labels = parse_selector(req.query.labelSelector)
    local fields = parse_selector(req.query.fieldSelector)
    local items = {}
    for _, e in ipairs(entries) do
        local md = e.obj.metadata
        if selected(labels, function(k) return (md.labels or {})[k] end) and
            selected(fields, function(k)
                if k == "metadata.name" then return md.name end
                if k == "metadata.namespace" then return md.namespace or "" end
                return nil
            end) then
            items[#items + 1] = e
        end
    end
    table.sort(items, function(a, b)
        local x, y = a.obj.metadata, b.obj.metadata
        if (x.namespace or "") ~= (y.namespace or "") then
            return (x.namespace or "") < (y.namespace or "")
        end
        return x.name < y.name
    end)
    local first = tonumber(req.query.continue or "") or 1
    local limit = tonumber(req.query.limit or "") or 0
    local last = #items
    if limit > 0 and first + limit - 1 < #items then
        last = first + limit - 1
    end
    local out = json.array()
    for i = first, last do
        out[#out + 1] = present(cl, def, items[i])
    end
    local md = { resourceVersion = tostring(cl.rv) }
    if last < #items then
        md.continue = tostring(last + 1)
        md.remainingItemCount = #items - last
    end
    if wants_table(req) then
        local t = as_table(cl, { kind = def.kind, items = out })
        t.metadata = md
        return 200, t
    end
    return 200, { kind = def.kind .. "List", apiVersion = def.gv, metadata = md, items = out }
end


-- ---- object handlers -------------------------------------------------------------------------

local function decode_body(req)
    local ok_, v = pcall(json.decode, req.body)
    if not ok_ or type(v) ~= "table" or json.is_array(v) then
        return nil
    end
    return v
end


local function namespace_exists(cl, ns)
    return lookup(cl, res("v1", "namespaces"), nil, ns) ~= nil
end


local function create(req, cl, def, ns)
    if def.readonly then
        return method_not_allowed()
    end
    local obj = decode_body(req)
    if not obj then
        return bad_request("the body of the request was in an unknown format - accepted " ..
            "media types include: application/json, application/yaml")
    end
    if obj.kind and obj.kind ~= def.kind then
        return bad_request(string.format("the API version in the data (%s) does not match " ..
            "the expected API version (%s)", tostring(obj.apiVersion), def.gv))
    end
    obj.metadata = type(obj.metadata) == "table" and obj.metadata or {}
    local md = obj.metadata
    if (not md.name or md.name == "") and type(md.generateName) == "string" then
        md.name = md.generateName .. short_hash(sim.uuid(), 5)
    end
    if type(md.name) ~= "string" or md.name == "" then
        return status_error(422, "Invalid", def.kind .. ' "" is invalid: metadata.name: ' ..
            "Required value: name or generateName is required",
            { kind = def.name, group = def.group ~= "" and def.group or nil })
    end
    if def.namespaced then
        if md.namespace and md.namespace ~= "" and md.namespace ~= ns then
            return bad_request("the namespace of the provided object does not match the " ..
                "namespace sent on the request")
        end
        md.namespace = ns
        if not namespace_exists(cl, ns) then
            return not_found(res("v1", "namespaces"), ns)
        end
    else
        md.namespace = nil
    end
    if lookup(cl, def, md.namespace, md.name) then
        return status_error(409, "AlreadyExists", def.label .. ' "' .. md.name ..
            '" already exists', details(def, md.name))
    end
    md.uid, md.resourceVersion, md.creationTimestamp, md.generation = nil, nil, nil, nil
    md.deletionTimestamp = nil
    obj.status = def.kind ~= "Deployment" and def.kind ~= "APIService" and obj.status or nil
    local available_at = 0
    if def.kind == "Deployment" then
        available_at = time.now() + (sim.knobs.metrics_delay_ms or DEFAULT_METRICS_DELAY_MS) /
            1000
    end
    if req.query.dryRun == "All" then
        local scratch = { objects = {}, rv = cl.rv, next_ip = cl.next_ip }
        return 201, present(cl, def, put(scratch, def, obj, available_at))
    end
    local entry = put(cl, def, obj, available_at)
    if def.kind == "Namespace" then
        add_namespace_defaults(cl, md.name)
    end
    return 201, present(cl, def, entry)
end


local function get_one(req, cl, def, ns, name)
    local obj
    if def.derived then
        for _, e in ipairs(derived_pods(cl, ns)) do
            if e.obj.metadata.name == name then obj = e.obj end
        end
    else
        local entry = lookup(cl, def, ns, name)
        obj = entry and present(cl, def, entry)
    end
    if not obj then
        return not_found(def, name)
    end
    if wants_table(req) then
        return 200, as_table(cl, { kind = def.kind, items = { obj } })
    end
    return 200, obj
end


-- Strategic-merge-patch directives are dropped; lists of objects with a "name" merge by name
-- (what kubectl apply sends for containers, ports, env), other lists are replaced.
local function merge(target, patch, strategic)
    if type(patch) ~= "table" then
        return patch
    end
    if json.is_array(patch) then
        if not strategic or type(target) ~= "table" then
            return copy(patch)
        end
        local by_name, out = {}, json.array()
        for _, t in ipairs(target) do
            if type(t) ~= "table" or t.name == nil then return copy(patch) end
            out[#out + 1] = copy(t)
            by_name[t.name] = #out
        end
        for _, p in ipairs(patch) do
            if type(p) ~= "table" or p.name == nil then return copy(patch) end
            local i = by_name[p.name]
            if p["$patch"] == "delete" then
                if i then out[i] = false end
            elseif i then
                out[i] = merge(out[i], p, true)
            else
                out[#out + 1] = merge(nil, p, true)
            end
        end
        local compact = json.array()
        for _, v in ipairs(out) do if v then compact[#compact + 1] = v end end
        return compact
    end
    local out = type(target) == "table" and not json.is_array(target) and copy(target) or {}
    for k, v in pairs(patch) do
        if type(k) == "string" and k:sub(1, 1) == "$" then
            -- $patch, $retainKeys, $setElementOrder/..., $deleteFromPrimitiveList/...: skipped.
        elseif v == json.null then
            out[k] = nil
        else
            out[k] = merge(out[k], v, strategic)
        end
    end
    return out
end


local function update(req, cl, def, ns, name)
    if def.readonly then
        return method_not_allowed()
    end
    local entry = lookup(cl, def, ns, name)
    if not entry then
        return not_found(def, name)
    end
    local obj = decode_body(req)
    if not obj then
        return bad_request("the body of the request was in an unknown format - accepted " ..
            "media types include: application/json")
    end
    if req.method == "PATCH" then
        local ct = (req.headers["content-type"] or ""):lower()
        local strategic = ct:find("strategic-merge-patch", 1, true) ~= nil
        if not strategic and not ct:find("merge-patch+json", 1, true) then
            return status_error(415, "UnsupportedMediaType", "the body of the request was in " ..
                "an unknown format - accepted media types include: " ..
                "application/merge-patch+json, application/strategic-merge-patch+json")
        end
        obj = merge(entry.obj, obj, strategic)
    else
        obj.metadata = type(obj.metadata) == "table" and obj.metadata or {}
        local rv = obj.metadata.resourceVersion
        if rv and rv ~= "" and rv ~= entry.obj.metadata.resourceVersion then
            return status_error(409, "Conflict", string.format('Operation cannot be fulfilled ' ..
                'on %s "%s": the object has been modified; please apply your changes to the ' ..
                'latest version and try again', def.label, name), details(def, name))
        end
    end
    local md = type(obj.metadata) == "table" and obj.metadata or {}
    obj.metadata = md
    if (md.name and md.name ~= name) then
        return bad_request("the name of the object (" .. tostring(md.name) ..
            ") does not match the name on the URL (" .. name .. ")")
    end
    local old = entry.obj.metadata
    md.name, md.namespace, md.uid = name, old.namespace, old.uid
    md.creationTimestamp = old.creationTimestamp
    if def.kind == "Deployment" then
        md.generation = (old.generation or 1) + 1
        obj.status = nil
    end
    if req.query.dryRun == "All" then
        local scratch = { objects = {}, rv = cl.rv, next_ip = cl.next_ip }
        return 200, present(cl, def, put(scratch, def, obj, entry.available_at))
    end
    return 200, present(cl, def, put(cl, def, obj, entry.available_at))
end


local function delete(req, cl, def, ns, name)
    if def.readonly then
        return method_not_allowed()
    end
    local entry = lookup(cl, def, ns, name)
    if not entry then
        return not_found(def, name)
    end
    if def.kind == "Namespace" and PROTECTED_NAMESPACES[name] then
        return status_error(403, "Forbidden", 'namespaces "' .. name .. '" is forbidden: ' ..
            "this namespace may not be deleted", details(def, name))
    end
    if req.query.dryRun ~= "All" then
        bucket(cl, def)[key(ns, name)] = nil
        next_rv(cl)
        if def.kind == "Namespace" then
            for _, objects in pairs(cl.objects) do
                for k, e in pairs(objects) do
                    if e.obj.metadata.namespace == name then objects[k] = nil end
                end
            end
        end
    end
    return 200, { kind = "Status", apiVersion = "v1", metadata = {}, status = "Success",
        details = { name = name, group = def.group ~= "" and def.group or nil, kind = def.name,
            uid = entry.obj.metadata.uid } }
end


local VERBS = { GET = "get", POST = "create", PUT = "update", PATCH = "patch",
    DELETE = "delete" }

-- One handler for every resource path: finds the definition, checks scope and rights, and
-- dispatches on the method.
local function resource_handler(req, cl, who)
    local p = req.params
    local gv = p.group and (p.group .. "/" .. p.version) or p.version
    local def = res(gv, p.resource)
    if not def then
        return no_such_resource()
    end
    local ns, name = p.ns, p.name
    if ns and not def.namespaced then
        return no_such_resource()
    end
    if not ns and def.namespaced and (name or req.method ~= "GET") then
        return no_such_resource()
    end
    local verb = VERBS[req.method]
    if req.method == "GET" and not name then
        verb = "list"
    end
    if not who.admin then
        return forbidden(who, verb, def, ns)
    end
    if req.query.watch == "true" or req.query.watch == "1" then
        return status_error(405, "MethodNotAllowed", "watch is not supported by the simulator",
            {})
    end
    if verb == "list" then
        return list_objects(req, cl, def, ns)
    elseif verb == "create" then
        return create(req, cl, def, ns)
    elseif verb == "get" then
        return get_one(req, cl, def, ns, name)
    elseif verb == "update" or verb == "patch" then
        return update(req, cl, def, ns, name)
    end
    return delete(req, cl, def, ns, name)
end


-- ---- metrics.k8s.io -------------------------------------------------------------------------

local function metrics_gate(cl)
    local state = metrics_state(cl)
    if state == "missing" then
        return no_such_resource()
    elseif state == "unavailable" then
        return status_error(503, "ServiceUnavailable",
            "the server is currently unable to handle the request", {})
    end
    return nil
end


local function node_metrics(cl, name)
    local items = json.array()
    local now = iso(time.now())
    for i, n in ipairs(node_names(cl)) do
        if not name or n == name then
            items[#items + 1] = { metadata = { name = n, creationTimestamp = now,
                labels = { ["kubernetes.io/os"] = "linux", agentpool = "nodepool1" } },
                timestamp = now, window = "20.04s",
                usage = { cpu = (150 + 37 * i) .. "m", memory = (1843200 + 10240 * i) .. "Ki" } }
        end
    end
    return items
end


local function pod_metrics(cl, ns, name)
    local items = json.array()
    local now = iso(time.now())
    for i, e in ipairs(derived_pods(cl, ns)) do
        local pod = e.obj
        if (not name or pod.metadata.name == name) and pod.status.phase == "Running" then
            local containers = json.array()
            for _, c in ipairs(pod.spec.containers or {}) do
                containers[#containers + 1] = { name = c.name,
                    usage = { cpu = (2 + i % 5) .. "m", memory = (19712 + 512 * i) .. "Ki" } }
            end
            items[#items + 1] = { metadata = { name = pod.metadata.name,
                namespace = pod.metadata.namespace, creationTimestamp = now,
                labels = pod.metadata.labels }, timestamp = now, window = "15.022s",
                containers = containers }
        end
    end
    return items
end


local function metrics_list(kind, items)
    return 200, { kind = kind, apiVersion = "metrics.k8s.io/v1beta1", metadata = {},
        items = items }
end


local function metrics_nodes(req, cl)
    local closed_status, closed_body = metrics_gate(cl)
    if closed_status then return closed_status, closed_body end
    if req.params.name then
        local items = node_metrics(cl, req.params.name)
        if not items[1] then
            return not_found({ label = "nodes.metrics.k8s.io", name = "nodes",
                group = "metrics.k8s.io" }, req.params.name)
        end
        local m = items[1]
        m.kind, m.apiVersion = "NodeMetrics", "metrics.k8s.io/v1beta1"
        return 200, m
    end
    return metrics_list("NodeMetricsList", node_metrics(cl))
end


local function metrics_pods(req, cl)
    local closed_status, closed_body = metrics_gate(cl)
    if closed_status then return closed_status, closed_body end
    if req.params.name then
        local items = pod_metrics(cl, req.params.ns, req.params.name)
        if not items[1] then
            return not_found({ label = "pods.metrics.k8s.io", name = "pods",
                group = "metrics.k8s.io" }, req.params.name)
        end
        local m = items[1]
        m.kind, m.apiVersion = "PodMetrics", "metrics.k8s.io/v1beta1"
        return 200, m
    end
    return metrics_list("PodMetricsList", pod_metrics(cl, req.params.ns))
end


-- ---- discovery ----------------------------------------------------------------------------

local function served_groups(cl)
    local groups = {}
    for _, g in ipairs(GROUPS) do
        if g.group ~= "" then groups[#groups + 1] = g end
    end
    if metrics_state(cl) ~= "missing" then
        groups[#groups + 1] = METRICS_GROUP
    end
    return groups
end


local function api_group(g)
    local v = { groupVersion = g.gv, version = g.version }
    return { name = g.group, versions = json.array({ v }), preferredVersion = v }
end


local function resource_list(g)
    local list = json.array()
    for _, r in ipairs(g.resources) do
        list[#list + 1] = { name = r.name, singularName = r.kind:lower(),
            namespaced = r.namespaced, kind = r.kind,
            verbs = json.array((r.readonly or g == METRICS_GROUP) and RO or RW),
            shortNames = r.short and json.array(r.short) or nil }
    end
    return 200, { kind = "APIResourceList", apiVersion = "v1", groupVersion = g.gv,
        resources = list }
end


local function find_group(cl, name)
    for _, g in ipairs(served_groups(cl)) do
        if g.group == name then return g end
    end
    return nil
end


local function discovery_api()
    return 200, { kind = "APIVersions", versions = json.array({ "v1" }),
        serverAddressByClientCIDRs = json.array({ { clientCIDR = "0.0.0.0/0",
            serverAddress = "127.0.0.1:443" } }) }
end


local function discovery_apis(req, cl)
    local groups = json.array()
    for _, g in ipairs(served_groups(cl)) do groups[#groups + 1] = api_group(g) end
    return 200, { kind = "APIGroupList", apiVersion = "v1", groups = groups }
end


local function discovery_group(req, cl)
    local g = find_group(cl, req.params.group)
    if not g then
        return no_such_resource()
    end
    local body = api_group(g)
    body.kind, body.apiVersion = "APIGroup", "v1"
    return 200, body
end


local function discovery_group_version(req, cl)
    local g = find_group(cl, req.params.group)
    if not g or g.version ~= req.params.version then
        return no_such_resource()
    end
    if g == METRICS_GROUP and metrics_state(cl) ~= "available" then
        return status_error(503, "ServiceUnavailable",
            "the server is currently unable to handle the request", {})
    end
    return resource_list(g)
end


local function version(req, cl)
    local v = cl.c.version or "1.29.4"
    local major, minor = v:match("^(%d+)%.(%d+)")
    return 200, {
        major = major or "1",
        minor = minor or "29",
        gitVersion = "v" .. v,
        gitCommit = short_hash(v, 40),
        gitTreeState = "clean",
        buildDate = "2024-05-01T12:00:00Z",
        goVersion = "go1.22.2",
        compiler = "gc",
        platform = "linux/amd64",
    }
end


-- ---- routing ------------------------------------------------------------------------------

-- Wraps fn(req, cl, who) with the cluster lookup and authentication. anonymous: the route
-- also answers callers without credentials (as /version does on a real API server).
local function guarded(fn, anonymous)
    return function(req)
        local cl = cluster_of(req)
        if not cl then
            return no_such_resource()
        end
        local who, why = authenticate(req, cl)
        if not who and not (anonymous and why == "anonymous") then
            return unauthorized()
        end
        return fn(req, cl, who or { user = "system:anonymous", groups = {}, admin = false })
    end
end


local function add(routes, key, fn, anonymous)
    sim.add(routes, SERVICE, key, guarded(fn, anonymous))
end


--- The Kubernetes API route table (shared by every cluster listener).
function M.routes()
    local routes = {}
    add(routes, "GET /version", version, true)
    add(routes, "GET /api", discovery_api)
    add(routes, "GET /apis", discovery_apis)
    add(routes, "GET /api/v1", function(_, cl) return resource_list(GROUPS[1]) end)
    add(routes, "GET /apis/{group}", discovery_group)
    add(routes, "GET /apis/{group}/{version}", discovery_group_version)
    -- An empty protobuf document is a valid, empty OpenAPI v2 spec: kubectl apply then skips
    -- client-side validation. v3 is absent, so kubectl 1.29+ falls back to v2.
    add(routes, "GET /openapi/v2", function()
        return 200, "", {
            ["Content-Type"] = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf" }
    end)
    add(routes, "GET /openapi/v3", function() return no_such_resource() end)

    local bases = { "/api/{version}", "/apis/{group}/{version}" }
    for _, base in ipairs(bases) do
        for _, m in ipairs { "GET", "POST" } do
            add(routes, m .. " " .. base .. "/{resource}", resource_handler)
            add(routes, m .. " " .. base .. "/namespaces/{ns}/{resource}", resource_handler)
        end
        for _, m in ipairs { "GET", "PUT", "PATCH", "DELETE" } do
            add(routes, m .. " " .. base .. "/{resource}/{name}", resource_handler)
            add(routes, m .. " " .. base .. "/namespaces/{ns}/{resource}/{name}",
                resource_handler)
        end
    end

    local mb = "/apis/metrics.k8s.io/v1beta1"
    add(routes, "GET " .. mb .. "/nodes", metrics_nodes)
    add(routes, "GET " .. mb .. "/nodes/{name}", metrics_nodes)
    add(routes, "GET " .. mb .. "/pods", metrics_pods)
    add(routes, "GET " .. mb .. "/namespaces/{ns}/pods", metrics_pods)
    add(routes, "GET " .. mb .. "/namespaces/{ns}/pods/{name}", metrics_pods)
    return routes
end

reset()
sim.on_reset(reset)

return M

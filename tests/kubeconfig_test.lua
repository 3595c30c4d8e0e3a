-- aurora.kubeconfig: real AKS kubeconfigs from the simulated ARM (admin certificate + key +
-- token, AAD exec with kubelogin, the legacy azure auth-provider), checked against the API
-- server and against kubectl's own reading of the same file; then hostile and malformed input.
local T = require "aurora.test"
local harness = require "sim.harness"
local crypto = require "aurora.crypto"
local http = require "aurora.http"
local json = require "aurora.json"
local kubeconfig = require "aurora.kubeconfig"
local proc = require "aurora.proc"
local secret = require "aurora.secret"

local V = "?api-version=2024-05-01"


-- POSTs a list*Credential action of a simulated AKS cluster; returns the kubeconfig text.
local function credential(sim, cluster, action, query)
    local path = "/subscriptions/" .. sim.env.SIM_SUBSCRIPTION ..
        "/resourceGroups/rg-aks/providers/Microsoft.ContainerService/managedClusters/" ..
        cluster .. "/" .. action .. V .. (query or "")
    local res = assert(sim:request("arm", "POST", path, { bearer = sim:token() }))
    T.eq(res.status, 200, res.body)
    local body = json.decode(res.body)
    return assert(crypto.b64decode(body.kubeconfigs[1].value))
end


-- Runs kubectl with args against the kubeconfig file kc (30 s at most). Returns exit status,
-- stdout and stderr.
local function kubectl(kc, args)
    local dir = T.tmpdir()
    local out, err = dir .. "/out", dir .. "/err"
    local argv = { "kubectl", "--kubeconfig", kc, "--cache-dir", dir .. "/cache",
        "--request-timeout", "20s" }
    for _, a in ipairs(args) do argv[#argv + 1] = a end
    local pid = assert(proc.spawn { argv = argv, stdout = out, stderr = err,
        env = { HOME = dir, KUBECONFIG = "" } })
    local how, code = T.wait_process(pid, 30)
    if not how then
        proc.kill(pid, "KILL")
        T.wait_process(pid, 5)
        T.fail("kubectl " .. table.concat(args, " ") .. " did not finish in 30 s")
    end
    return how == "exited" and code or -1, T.read_file(out) or "", T.read_file(err) or ""
end


-- kubectl's own reading of a kubeconfig (config view --raw, as JSON).
local function kubectl_view(kc)
    local code, out, err = kubectl(kc, { "config", "view", "--raw", "-o", "json" })
    T.eq(code, 0, err)
    return json.decode(out)
end


-- Fails when any string anywhere in v contains one of the needles (secrets must be handles).
local function no_plain(v, needles, path, seen)
    path, seen = path or "cfg", seen or {}
    if type(v) == "string" then
        for _, n in ipairs(needles) do
            if v:find(n, 1, true) then T.fail(path .. " holds a secret as a plain string") end
        end
    elseif type(v) == "table" and not seen[v] then
        seen[v] = true
        for k, x in pairs(v) do no_plain(x, needles, path .. "." .. tostring(k), seen) end
    end
end


-- A local PKI and the text of an AKS-style admin kubeconfig using it.
local function fixture()
    local ca_key = crypto.generate_key("ec")
    local ca = crypto.issue_cert { key = ca_key, subject = { CN = "ca" }, usage = "ca", days = 1 }
    local key = crypto.generate_key("ec")
    local cert = crypto.issue_cert { key = key, subject = { CN = "masterclient",
        O = "system:masters" }, ca_cert = ca, ca_key = ca_key, usage = "client", days = 1 }
    local key_pem <close> = key:private_pem()
    local f = { ca_pem = ca:pem(), cert_pem = cert:pem(), key_pem = key_pem:reveal(),
        token = "fake-token-" .. crypto.hex(crypto.random(8)) }
    f.text = table.concat({
        "apiVersion: v1",
        "kind: Config",
        "clusters:",
        "- cluster:",
        "    certificate-authority-data: " .. crypto.b64encode(f.ca_pem),
        "    server: https://aks-prod.example:443",
        "  name: aks-prod",
        "contexts:",
        "- context:",
        "    cluster: aks-prod",
        "    user: clusterAdmin_rg-aks_aks-prod",
        "    namespace: shop",
        "  name: aks-prod",
        "current-context: aks-prod",
        "preferences: {}",
        "users:",
        "- name: clusterAdmin_rg-aks_aks-prod",
        "  user:",
        "    client-certificate-data: " .. crypto.b64encode(f.cert_pem),
        "    client-key-data: " .. crypto.b64encode(f.key_pem),
        "    token: " .. f.token,
    }, "\n") .. "\n"
    return f
end


T.test("an AKS admin kubeconfig from ARM parses and its credentials reach the API server",
    function()
        local sim = harness.start()
        local text = credential(sim, "aks-prod", "listClusterAdminCredential")
        local cfg = assert(kubeconfig.parse(text))
        local c = sim.config.clusters["aks-prod"]
        T.eq(cfg.current_context, "aks-prod")
        T.eq(#cfg.clusters, 1)
        T.ok(json.is_array(cfg.clusters))
        local cluster, user = cfg.current.cluster, cfg.current.user
        T.ok(cluster == cfg.clusters[1], "current.cluster is the same table")
        T.ok(user == cfg.users[1])
        T.ok(cfg.current.context == cfg.contexts[1])
        T.eq(cluster.name, "aks-prod")
        T.eq(cluster.server, c.url)
        T.eq(cluster.ca_pem, T.read_file(c.ca_file))
        T.eq(cluster.insecure, false)
        T.eq(user.name, "clusterAdmin_rg-aks_aks-prod")
        T.eq(assert(crypto.load_cert(user.client_cert_pem)):subject(),
            "CN=masterclient,O=system:masters")
        T.ok(secret.is_secret(user.client_key))
        T.ok(secret.is_secret(user.token))
        T.ok(crypto.load_key(user.client_key), "the key handle loads as a key")
        no_plain(cfg, { "PRIVATE KEY", user.token:reveal() })

        -- /version answers anyone; the namespace list needs the credentials to work.
        local res = assert(http.request { url = cluster.server .. "/version",
            ca_pem = cluster.ca_pem, client_cert = user.client_cert_pem,
            client_key = user.client_key })
        T.eq(res.status, 200, res.body)
        T.match(json.decode(res.body).gitVersion, "^v%d+%.%d+")
        res = assert(http.request { url = cluster.server .. "/api/v1/namespaces",
            ca_pem = cluster.ca_pem, client_cert = user.client_cert_pem,
            client_key = user.client_key })
        T.eq(res.status, 200, "the client certificate is accepted")
        res = assert(http.request { url = cluster.server .. "/api/v1/namespaces",
            ca_pem = cluster.ca_pem, bearer = user.token })
        T.eq(res.status, 200, "the static token is accepted")
        res = assert(http.request { url = cluster.server .. "/api/v1/namespaces",
            ca_pem = cluster.ca_pem })
        T.eq(res.status, 401, "and without credentials it is refused")
    end)


T.test("kubectl reads the same kubeconfig the same way and reaches the same server", function()
    local sim = harness.start()
    local text = credential(sim, "aks-prod", "listClusterAdminCredential")
    local kc = T.tmpdir() .. "/kubeconfig"
    T.write_file(kc, text)
    local cfg = assert(kubeconfig.parse(secret.new(text)))
    local cluster, user = cfg.current.cluster, cfg.current.user

    local view = kubectl_view(kc)
    T.eq(view["current-context"], cfg.current_context)
    local kcluster = view.clusters[1].cluster
    T.eq(view.clusters[1].name, cluster.name)
    T.eq(kcluster.server, cluster.server)
    T.eq(crypto.b64decode(kcluster["certificate-authority-data"]), cluster.ca_pem)
    local kuser = view.users[1].user
    T.eq(view.users[1].name, user.name)
    T.eq(crypto.b64decode(kuser["client-certificate-data"]), user.client_cert_pem)
    T.ok(user.client_key:equals(crypto.b64decode(kuser["client-key-data"])))
    T.ok(user.token:equals(kuser.token))
    T.eq(view.contexts[1].context.user, cfg.current.context.user)

    for _, path in ipairs { "/version", "/api/v1/namespaces" } do
        local code, out, err = kubectl(kc, { "get", "--raw", path })
        T.eq(code, 0, "kubectl get --raw " .. path .. ": " .. err)
        local res = assert(http.request { url = cluster.server .. path, ca_pem = cluster.ca_pem,
            client_cert = user.client_cert_pem, client_key = user.client_key })
        T.eq(res.status, 200)
        T.eq(json.decode(out), json.decode(res.body), path .. " answers both alike")
    end
end)


T.test("an AAD user kubeconfig keeps kubelogin's exec section as kubectl reads it", function()
    local sim = harness.start()
    local text = credential(sim, "aks-aad", "listClusterUserCredential")
    local cfg = assert(kubeconfig.parse(text))
    local user = cfg.current.user
    T.eq(cfg.current.cluster.server, sim.config.clusters["aks-aad"].url)
    T.eq(user.name, "clusterUser_rg-aks_aks-aad")
    T.eq(user.token, nil)
    T.eq(user.client_key, nil)
    local x = user.exec
    T.eq(x.command, "kubelogin")
    T.eq(x.api_version, "client.authentication.k8s.io/v1beta1")
    T.eq(x.args, { "get-token", "--environment", "AzurePublicCloud", "--server-id",
        "6dae42f8-4368-4678-94ff-3960e28e3630", "--client-id",
        "80faf920-1908-4b52-b5ef-a8e7bedfc67a", "--tenant-id", sim.env.SIM_TENANT,
        "--login", "devicecode" })
    T.ok(json.is_array(x.args))
    T.eq(#x.env, 0)
    T.ok(json.is_array(x.env))
    T.eq(x.interactive_mode, "IfAvailable")
    T.eq(x.provide_cluster_info, false)
    T.contains(x.install_hint, "kubelogin is not installed")

    local kc = T.tmpdir() .. "/kubeconfig"
    T.write_file(kc, text)
    local kx = kubectl_view(kc).users[1].user.exec
    T.eq(kx.command, x.command)
    T.eq(kx.args, x.args)
    T.eq(kx.apiVersion, x.api_version)
    T.eq(kx.installHint, x.install_hint)
    T.eq(kx.interactiveMode, x.interactive_mode)
end)


T.test("the legacy azure auth-provider form keeps its config", function()
    local sim = harness.start()
    local text = credential(sim, "aks-aad", "listClusterUserCredential", "&format=azure")
    local cfg = assert(kubeconfig.parse(text))
    local ap = cfg.current.user.auth_provider
    T.eq(ap.name, "azure")
    T.eq(ap.config["apiserver-id"], "6dae42f8-4368-4678-94ff-3960e28e3630")
    T.eq(ap.config["config-mode"], "1")
    T.eq(ap.config["tenant-id"], sim.env.SIM_TENANT)
    T.eq(ap.config.environment, "AzurePublicCloud")
    T.eq(cfg.current.user.exec, nil)
    local kc = T.tmpdir() .. "/kubeconfig"
    T.write_file(kc, text)
    T.eq(kubectl_view(kc).users[1].user["auth-provider"].config, ap.config)
end)


T.test("secrets come back as handles and never as plain strings", function()
    local f = fixture()
    local text = f.text:gsub("preferences: {}\n", "") .. table.concat({
        "- name: basic",
        "  user:",
        "    username: admin",
        "    password: fake-password-1",
        "- name: azure-legacy",
        "  user:",
        "    auth-provider:",
        "      name: azure",
        "      config:",
        "        access-token: fake-access-1",
        "        refresh-token: fake-refresh-1",
        "        tenant-id: t",
        "- name: spn",
        "  user:",
        "    exec:",
        "      command: kubelogin",
        "      env:",
        "      - {name: AAD_SERVICE_PRINCIPAL_CLIENT_SECRET, value: fake-spn-secret}",
        "      - {name: AAD_LOGIN_METHOD, value: spn}",
    }, "\n") .. "\n"
    local cfg = assert(kubeconfig.parse(text))
    local admin, basic, azure, spn = table.unpack(cfg.users)
    T.ok(secret.is_secret(admin.client_key))
    T.ok(admin.client_key:equals(f.key_pem))
    T.ok(secret.is_secret(admin.token))
    T.ok(admin.token:equals(f.token))
    T.eq(basic.username, "admin")
    T.ok(secret.is_secret(basic.password))
    T.ok(basic.password:equals("fake-password-1"))
    T.ok(secret.is_secret(azure.auth_provider.config["access-token"]))
    T.ok(secret.is_secret(azure.auth_provider.config["refresh-token"]))
    T.eq(azure.auth_provider.config["tenant-id"], "t")
    T.ok(secret.is_secret(spn.exec.env[1].value))
    T.eq(spn.exec.env[2], { name = "AAD_LOGIN_METHOD", value = "spn" })
    T.eq(tostring(admin.token), "aurora.secret(redacted)")
    no_plain(cfg, { "PRIVATE KEY", f.token, "fake-password-1", "fake-access-1",
        "fake-refresh-1", "fake-spn-secret" })
    T.eq(admin.client_cert_pem, f.cert_pem, "certificates are not secret")
    T.eq(cfg.current.context.namespace, "shop")
end)


T.test("opts.context picks another context, which must exist with its cluster and user", function()
    local text = [[
clusters:
- {name: a, cluster: {server: "https://a"}}
- {name: b, cluster: {server: "https://b"}}
users:
- {name: ua, user: {token: t}}
contexts:
- {name: ca, context: {cluster: a, user: ua}}
- {name: cb, context: {cluster: b}}
- {name: cx, context: {cluster: x}}
- {name: cu, context: {cluster: a, user: nobody}}
current-context: ca
]]
    T.eq(kubeconfig.parse(text).current.cluster.server, "https://a")
    local cfg = kubeconfig.parse(text, { context = "cb" })
    T.eq(cfg.current.cluster.server, "https://b")
    T.eq(cfg.current.user, nil)
    T.eq(cfg.current_context, "ca", "current_context stays what the file says")
    local v, msg, code = kubeconfig.parse(text, { context = "zz" })
    T.eq(v, nil)
    T.eq(code, "not_found")
    T.eq(msg, "the context asked for names a context that is not in contexts")
    v, msg, code = kubeconfig.parse(text, { context = "cx" })
    T.eq(code, "not_found")
    T.eq(msg, "contexts[2].context.cluster names a cluster that is not in clusters")
    v, msg, code = kubeconfig.parse(text, { context = "cu" })
    T.eq(msg, "contexts[3].context.user names a user that is not in users")
end)


T.test("a missing current context is not_found; none at all gives no current", function()
    local v, msg, code = kubeconfig.parse("current-context: gone\ncontexts: []\n")
    T.eq(v, nil)
    T.eq(code, "not_found")
    T.eq(msg, "current-context names a context that is not in contexts")
    local cfg = kubeconfig.parse("apiVersion: v1\nkind: Config\nclusters: []\n")
    T.eq(cfg.current, nil)
    T.eq(cfg.current_context, nil)
    T.eq(#cfg.clusters, 0)
    T.eq(json.encode(cfg.users), "[]")
    T.eq(kubeconfig.parse("current-context: ''\n").current, nil)
end)


T.test("wrong types, names and base64 are invalid with the field named", function()
    local cases = {
        { "", "kubeconfig is not a mapping" },
        { "- a\n", "kubeconfig is not a mapping" },
        { "kind: Config\n---\nkind: Config\n", "kubeconfig holds more than one YAML document" },
        { "kind: Deployment\n", "kind is not Config" },
        { "clusters: {a: 1}\n", "clusters must be a list" },
        { "clusters: [x]\n", "clusters[0] must be a mapping" },
        { "clusters:\n- cluster: {server: x}\n", "clusters[0] has no name" },
        { "clusters:\n- {name: a}\n- {name: a}\n", "clusters[1].name repeats the name of clusters[0]" },
        { "users:\n- {name: a}\n- {name: b, user: {token: [x]}}\n",
            "users[1].user.token must be a string" },
        { "users:\n- {name: a, user: {exec: {command: [k]}}}\n",
            "users[0].user.exec.command must be a string" },
        { "clusters:\n- {name: a, cluster: {insecure-skip-tls-verify: yes}}\n",
            "clusters[0].cluster.insecure-skip-tls-verify must be a boolean" },
        { "clusters:\n- name: a\n  cluster:\n    certificate-authority-data: not*base64\n",
            "clusters[0].cluster.certificate-authority-data is not valid base64" },
        { "users:\n- name: a\n  user:\n    client-key-data: QUJDRA\n",
            "users[0].user.client-key-data is not valid base64" },
        { "clusters:\n- name: a\n  cluster:\n    certificate-authority: /etc/ca.crt\n",
            "file references are not supported: clusters[0].cluster.certificate-authority" },
        { "users:\n- name: a\n  user:\n    client-key: key.pem\n",
            "file references are not supported: users[0].user.client-key" },
    }
    for _, c in ipairs(cases) do
        local v, msg, code = kubeconfig.parse(c[1])
        T.eq(v, nil, c[1])
        T.eq(code, "invalid", c[1])
        T.eq(msg, c[2], c[1])
    end
end)


T.test("tabs, garbage and truncated input fail with a position", function()
    local v, msg, code = kubeconfig.parse("clusters:\n\t- name: a\n")
    T.eq(code, "invalid")
    T.match(msg, "^kubeconfig: line 2, column 1: found character that cannot start any token")
    v, msg, code = kubeconfig.parse("\0\1\2garbage")
    T.eq(code, "invalid")
    T.match(msg, "control characters are not allowed")
    local text = fixture().text
    local token = text:match("token: (%S+)")
    local parsed = 0
    for n = 0, #text - 1, 5 do
        v, msg, code = kubeconfig.parse(text:sub(1, n))
        if v then
            parsed = parsed + 1
        else
            T.ok(code == "invalid" or code == "not_found", tostring(msg))
            T.not_contains(msg, token)
            T.not_contains(msg, "PRIVATE")
        end
    end
    T.ok(parsed > 0)
end)


T.test("a billion-laughs bomb, deep nesting and a huge scalar are too_large", function()
    local lines = { "a0: &a0 [x, x, x, x, x, x, x, x, x]" }
    for i = 1, 9 do
        lines[#lines + 1] = string.format("a%d: &a%d [%s]", i, i,
            string.rep("*a" .. (i - 1), 9, ", "))
    end
    local v, msg, code = kubeconfig.parse(table.concat(lines, "\n"))
    T.eq(v, nil)
    T.eq(code, "too_large")
    T.contains(msg, "too many nodes (alias expansion)")
    v, msg, code = kubeconfig.parse("clusters: " .. string.rep("[", 100) .. string.rep("]", 100))
    T.eq(code, "too_large")
    T.contains(msg, "nesting deeper than 64")
    v, msg, code = kubeconfig.parse("users:\n- name: a\n  user:\n    token: " ..
        string.rep("t", 2 * 1024 * 1024) .. "\n")
    T.eq(code, "too_large")
    T.contains(msg, "a scalar is longer than 1048576 bytes")
    v, msg, code = kubeconfig.parse(fixture().text, { max_bytes = 100 })
    T.eq(code, "too_large")
    T.eq(msg, "kubeconfig: input is larger than 100 bytes")
end)


T.test("anchors that are fine are resolved", function()
    local cfg = assert(kubeconfig.parse([[
clusters:
- name: a
  cluster: &shared {server: "https://shared", insecure-skip-tls-verify: true}
- name: b
  cluster: *shared
]]))
    T.eq(cfg.clusters[2].server, "https://shared")
    T.eq(cfg.clusters[2].insecure, true)
end)


T.test("misuse raises", function()
    T.raises(function() kubeconfig.parse() end, "bad argument #1")
    T.raises(function() kubeconfig.parse(42) end, "bad argument #1")
    T.raises(function() kubeconfig.parse("kind: Config", { contxt = "a" }) end,
        "unknown option 'contxt'")
    T.raises(function() kubeconfig.parse("kind: Config", { context = 1 }) end,
        "option 'context' must be a string")
    T.raises(function() kubeconfig.parse("kind: Config", { max_nodes = -1 }) end,
        "positive integer")
    T.raises(function() kubeconfig.parse("kind: Config", "opts") end, "table expected")
end)

-- Starts the Azure simulator: `aurora run tests/sim/launch.lua STATE_DIR [SCENARIO_FILE]`.
--
-- Creates the simulator's CA and certificates, the token signing key and one CA per AKS cluster
-- in STATE_DIR, picks free loopback ports, starts
-- `aurora serve --app tests/sim --workers 1 --listeners STATE_DIR/listeners.json` in the
-- background (its pid in STATE_DIR/sim.pid, its log in STATE_DIR/sim.log), waits until every
-- listener answers, then writes STATE_DIR/sim.env (shell-sourceable) and exits 0.
local crypto = require "aurora.crypto"
local http = require "aurora.http"
local json = require "aurora.json"
local proc = require "aurora.proc"
local time = require "aurora.time"

local dir, scenario_file = ...
dir = dir or os.getenv("SIM_STATE_DIR")
assert(dir, "usage: aurora run tests/sim/launch.lua STATE_DIR [SCENARIO_FILE] (or SIM_STATE_DIR)")
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
scenario_file = scenario_file or (here .. "/scenarios/default.lua")
os.execute("mkdir -p '" .. dir .. "' && chmod 700 '" .. dir .. "'")

local function write(path, content)
    local f = assert(io.open(path, "wb"))
    f:write(content)
    f:close()
end


local function read(path)
    local f = assert(io.open(path, "rb"))
    local s = f:read("a")
    f:close()
    return s
end


local function issue_ca(cn)
    local key = crypto.generate_key("ec")
    return key, crypto.issue_cert { key = key, subject = { CN = cn, O = "Aurora simulator" },
        is_ca = true, days = 30 }
end


local function issue_server(ca_key, ca, cn, prefix)
    local key = crypto.generate_key("ec")
    local cert = crypto.issue_cert { key = key, subject = { CN = cn }, ca_cert = ca,
        ca_key = ca_key, sans = { "127.0.0.1", "localhost" }, days = 30 }
    write(prefix .. ".pem", cert:pem())
    assert(key:private_pem():write_file(prefix .. ".key"))
end

-- The simulator's own CA and the certificate all Azure-side listeners share.
local ca_key, ca = issue_ca("Aurora simulator CA")
write(dir .. "/ca.pem", ca:pem())
assert(ca_key:private_pem():write_file(dir .. "/ca.key"))
issue_server(ca_key, ca, "127.0.0.1", dir .. "/server")
assert(crypto.generate_key("rsa", 2048):private_pem():write_file(dir .. "/signing.key"))

local scenario = require("scenario").load(scenario_file)

-- Free loopback ports, never the same one twice (the kernel may offer a port again once the
-- probe socket is closed, and nothing is bound until the server starts).
local taken = {}
local function port()
    for _ = 1, 100 do
        local p = assert(proc.free_port())
        if not taken[p] then
            taken[p] = true
            return p
        end
    end
    error("no free port")
end
local listeners, urls, clusters = {}, {}, {}
for _, name in ipairs { "login", "arm", "graph", "vault" } do
    local p = port()
    urls[name] = "https://127.0.0.1:" .. p
    listeners[#listeners + 1] = { name = name, routes = name, listen = "127.0.0.1:" .. p,
        tls_cert = dir .. "/server.pem", tls_key = dir .. "/server.key" }
end
-- One Kubernetes API server per cluster, each with its own CA; client certificates are
-- requested (not required) and verified against that CA. What the cluster's kubeconfigs say
-- may differ from where it listens: `server` (a private cluster's private FQDN, or a port where
-- nothing listens for an unreachable one) and `kubeconfig_ca_file` (another CA with ca = "wrong").
local fqdns = require("arm_resources").cluster_fqdns
for _, c in ipairs(scenario.clusters) do
    local cdir = dir .. "/clusters/" .. c.name
    os.execute("mkdir -p '" .. cdir .. "'")
    local ckey, cca = issue_ca("aks-" .. c.name .. "-ca")
    write(cdir .. "/ca.pem", cca:pem())
    assert(ckey:private_pem():write_file(cdir .. "/ca.key"))
    issue_server(ckey, cca, "apiserver", cdir .. "/server")
    local p = port()
    local entry = { url = "https://127.0.0.1:" .. p, ca_file = cdir .. "/ca.pem",
        ca_key_file = cdir .. "/ca.key", kubeconfig_ca_file = cdir .. "/ca.pem" }
    entry.server = entry.url
    if c.private then
        entry.server = "https://" .. select(2, fqdns(c)) .. ":443"
    elseif c.unreachable then
        -- Taken from the pool and never bound: nothing will listen there.
        entry.server = "https://127.0.0.1:" .. port()
    end
    if c.ca == "wrong" then
        -- Same name as the real CA, another key: only verification tells them apart.
        local _, wrong = issue_ca("aks-" .. c.name .. "-ca")
        entry.kubeconfig_ca_file = cdir .. "/wrong-ca.pem"
        write(entry.kubeconfig_ca_file, wrong:pem())
    end
    clusters[c.name] = entry
    listeners[#listeners + 1] = { name = "kube:" .. c.name, routes = "kube",
        listen = "127.0.0.1:" .. p, tls_cert = cdir .. "/server.pem",
        tls_key = cdir .. "/server.key", tls_client_ca = cdir .. "/ca.pem" }
end
write(dir .. "/listeners.json", json.encode(listeners))
write(dir .. "/config.json", json.encode({ urls = urls, clusters = clusters,
    ca_file = dir .. "/ca.pem", signing_key = dir .. "/signing.key",
    scenario = scenario_file, state_dir = dir }))

local pid = assert(proc.spawn {
    argv = { proc.self_exe(), "serve", "--app", here, "--workers", "1",
        "--listeners", dir .. "/listeners.json" },
    env = { SIM_STATE_DIR = dir, AURORA_DATA_DIR = dir, AURORA_ENV_FILE = dir .. "/none.env",
        AURORA_PID_FILE = dir .. "/sim.pid", AURORA_LOG_LEVEL = os.getenv("SIM_LOG_LEVEL") or "info" },
    stdout = dir .. "/sim.log", stderr = dir .. "/sim.log",
})

-- Ready when every listener answers /healthz over verified TLS.
local deadline = time.monotonic() + 20
for _, l in ipairs(listeners) do
    local url = "https://" .. l.listen .. "/healthz"
    local ca_file = l.tls_client_ca or (dir .. "/ca.pem")
    while true do
        local how, code = proc.poll(pid)
        if how then
            io.stderr:write("simulator exited (" .. how .. " " .. code .. "); see " .. dir ..
                "/sim.log\n")
            return false
        end
        local res = http.request { url = url, ca_file = ca_file, timeout = 1 }
        if res and res.status == 200 then break end
        if time.monotonic() > deadline then
            proc.kill(pid, "TERM")
            io.stderr:write("simulator not ready in time; see " .. dir .. "/sim.log\n")
            return false
        end
        time.sleep(0.02)
    end
end

-- An admin kubeconfig for the default cluster, as listClusterAdminCredential would return it.
local d = scenario.default
local kube = clusters[d.aks_cluster]
local kubeconfig_path = ""
if kube then
    local cdir = dir .. "/clusters/" .. d.aks_cluster
    local ckey = assert(crypto.load_key(require("aurora.secret").from_file(cdir .. "/ca.key")))
    local cca = assert(crypto.load_cert(read(cdir .. "/ca.pem")))
    local key = crypto.generate_key("rsa", 2048)
    local spec = { key = key, subject = { CN = "masterclient", O = "system:masters" },
        ca_cert = cca, ca_key = ckey, usage = "client", days = 30 }
    for _, c in ipairs(scenario.clusters) do
        if c.name == d.aks_cluster and c.admin_cert == "expired" then
            local now = os.time()
            spec.days, spec.not_before, spec.not_after = nil, now - 400 * 86400, now - 35 * 86400
        end
    end
    local cert = assert(crypto.issue_cert(spec))
    local b64 = crypto.b64encode
    local ca_pem = read(kube.kubeconfig_ca_file)
    local pem <close> = key:private_pem()
    kubeconfig_path = dir .. "/kubeconfig"
    local yaml = table.concat({
        "apiVersion: v1",
        "kind: Config",
        "clusters:",
        "- name: " .. d.aks_cluster,
        "  cluster:",
        "    certificate-authority-data: " .. b64(ca_pem),
        "    server: " .. kube.server,
        "contexts:",
        "- name: " .. d.aks_cluster .. "-admin",
        "  context:",
        "    cluster: " .. d.aks_cluster,
        "    user: clusterAdmin_" .. d.aks_resource_group .. "_" .. d.aks_cluster,
        "current-context: " .. d.aks_cluster .. "-admin",
        "preferences: {}",
        "users:",
        "- name: clusterAdmin_" .. d.aks_resource_group .. "_" .. d.aks_cluster,
        "  user:",
        "    client-certificate-data: " .. b64(cert:pem()),
        "    client-key-data: " .. b64(pem:reveal()),
        "",
    }, "\n")
    local f = assert(io.open(kubeconfig_path, "wb"))
    f:write(yaml)
    f:close()
    os.execute("chmod 600 '" .. kubeconfig_path .. "'")
end

local vars = {
    SIM_LOGIN_URL = urls.login, SIM_ARM_URL = urls.arm, SIM_GRAPH_URL = urls.graph,
    SIM_VAULT_ADDR = urls.vault, SIM_VAULT_TOKEN = scenario.vault and scenario.vault.root_token or "",
    SIM_CA_FILE = dir .. "/ca.pem", SIM_TENANT = d.tenant, SIM_CLIENT_ID = d.client_id,
    SIM_CLIENT_SECRET = d.client_secret, SIM_SUBSCRIPTION = d.subscription,
    SIM_AKS_RESOURCE_GROUP = d.aks_resource_group, SIM_AKS_CLUSTER = d.aks_cluster,
    SIM_KUBECONFIG = kubeconfig_path, SIM_PID = tostring(pid), SIM_STATE_DIR = dir,
}
local names = {}
for k in pairs(vars) do names[#names + 1] = k end
table.sort(names)
local lines = {}
for _, k in ipairs(names) do
    lines[#lines + 1] = string.format("%s='%s'", k, (vars[k]:gsub("'", "'\\''")))
end
write(dir .. "/sim.env.tmp", table.concat(lines, "\n") .. "\n")
os.rename(dir .. "/sim.env.tmp", dir .. "/sim.env")
os.execute("chmod 600 '" .. dir .. "/sim.env'")
print("simulator ready: " .. dir .. "/sim.env")
return true

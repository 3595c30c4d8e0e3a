-- The setup scripts (lua/scripts/azure-setup.sh, .ps1) and their handlers (lua/handlers/setup.lua):
-- shellcheck-clean, served as downloads, and the bash script run with the real Azure CLI against
-- the simulator (offline the way tests/conformance/run keeps it: seeded MSAL cache, refusing proxy,
-- registered cloud).
local T = require "aurora.test"
local harness = require "sim.harness"
local json = require "aurora.json"
local time = require "aurora.time"

local SCRIPT = "lua/scripts/azure-setup.sh"
local PS1 = "lua/scripts/azure-setup.ps1"
local SUB = "0b1c2d3e-4f50-4617-8283-949596979899"
local CONTRIBUTOR_OID = "7c8d9e0f-1a2b-4c3d-8e4f-5a6b7c8d9e0f"


local function have(cmd)
    local ok = os.execute("command -v " .. cmd .. " >/dev/null 2>&1")
    return ok == true
end


-- Runs argv, waits up to `timeout` seconds; returns the exit status and the output.
local function run(argv, env, timeout)
    local t0 = time.monotonic()
    local p = T.spawn(argv, env)
    local how, code = T.wait_process(p.pid, timeout or 30)
    if not how then
        p:stop(1)
        T.fail("timed out: " .. table.concat(argv, " ") .. "\n" .. p:log())
    end
    -- Already reaped: nothing for the end-of-test cleanup to stop (as sim/harness.lua does).
    p.stopped = true
    if os.getenv("SETUP_TEST_VERBOSE") then print(argv[#argv], time.monotonic() - t0) end
    return how == "exited" and code or -1, p:log()
end


-- An app that serves only the setup routes, loading the handler from lua/ by a relative path
-- as `aurora serve --app lua` does.
local function setup_app()
    local dir = T.tmpdir()
    T.write_file(dir .. "/app.lua",
        'package.path = "lua/?.lua;" .. package.path\n' ..
        'return require("handlers.setup").routes\n')
    return T.server{app = dir}
end


T.test("the bash setup script passes shellcheck", function()
    if not have("shellcheck") then
        print("SKIP shellcheck is not installed (apt-get install shellcheck): not checked")
        return
    end
    local code, out = run({"shellcheck", "--shell=bash", SCRIPT})
    T.eq(code, 0, out)
end)


T.test("the bash setup script has valid syntax and --help exits 0", function()
    local code, out = run({"bash", "-n", SCRIPT})
    T.eq(code, 0, out)
    code, out = run({"bash", SCRIPT, "--help"})
    T.eq(code, 0, out)
    T.contains(out, "--with-reader")
    code, out = run({"bash", SCRIPT, "--bogus"})
    T.eq(code, 1)
    T.contains(out, "unknown argument: --bogus")
end)


T.test("GET /azure/setup-script serves the bash script as a no-cache download", function()
    local s = setup_app()
    local res = assert(s:request("GET", "/azure/setup-script"))
    T.eq(res.status, 200)
    T.eq(res.body, T.read_file(SCRIPT))
    T.eq(res.headers["content-type"], "text/plain; charset=utf-8")
    T.contains(res.headers["cache-control"], "no-cache")
    T.contains(res.headers["cache-control"], "no-store")
    T.eq(res.headers["content-disposition"], 'attachment; filename="aurora-azure-setup.sh"')
    res = assert(s:request("HEAD", "/azure/setup-script"))
    T.eq(res.status, 200)
end)


T.test("GET /azure/setup-script-ps1 serves the PowerShell script as a no-cache download",
    function()
        local s = setup_app()
        local res = assert(s:request("GET", "/azure/setup-script-ps1"))
        T.eq(res.status, 200)
        T.eq(res.body, T.read_file(PS1))
        T.contains(res.body, "create-for-rbac")
        T.eq(res.headers["content-type"], "text/plain; charset=utf-8")
        T.contains(res.headers["cache-control"], "no-store")
        T.eq(res.headers["content-disposition"], 'attachment; filename="aurora-azure-setup.ps1"')
    end)


-- Prepares an offline az (as tests/conformance/run does), logs in as the simulator's default
-- service principal, then runs the setup script with its arguments; its stdout goes to
-- $WORK/out.json. Usage: bash prep.sh WORK SIM_STATE_DIR SCRIPT [ARGS...]
local PREP = [=[
set -eu
WORK=$1
. "$2/sim.env"
shift 2
export HOME=$WORK/home AZURE_CONFIG_DIR=$WORK/az
mkdir -p "$HOME" "$AZURE_CONFIG_DIR"
# A proxy that refuses everything: nothing may leave the machine; the simulator is on loopback.
export HTTPS_PROXY=http://127.0.0.1:9 HTTP_PROXY=http://127.0.0.1:9
export https_proxy=http://127.0.0.1:9 http_proxy=http://127.0.0.1:9
export NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost
export REQUESTS_CA_BUNDLE=$SIM_CA_FILE SSL_CERT_FILE=$SIM_CA_FILE CURL_CA_BUNDLE=$SIM_CA_FILE
export AZURE_CORE_COLLECT_TELEMETRY=no AZURE_CORE_SURVEY_MESSAGE=no
export AZURE_CORE_ERROR_RECOMMENDATION=off AZURE_CORE_NO_COLOR=yes
unset ALL_PROXY all_proxy ARM_CLOUD_METADATA_URL KUBECONFIG
/usr/bin/python3 tests/conformance/seed_az.py "$AZURE_CONFIG_DIR" "$SIM_LOGIN_URL" "$SIM_TENANT"
cat >"$WORK/cloud.json" <<EOF
{"endpoints": {"activeDirectory": "$SIM_LOGIN_URL", "resourceManager": "$SIM_ARM_URL/",
 "activeDirectoryResourceId": "https://management.core.windows.net/",
 "management": "https://management.core.windows.net/",
 "activeDirectoryGraphResourceId": "$SIM_GRAPH_URL/",
 "microsoftGraphResourceId": "$SIM_GRAPH_URL/"}}
EOF
az cloud register --name AuroraSim --cloud-config "@$WORK/cloud.json"
az cloud set --name AuroraSim
az login --service-principal --username "$SIM_CLIENT_ID" --password "$SIM_CLIENT_SECRET" \
    --tenant "$SIM_TENANT" --output none
bash "$@" >"$WORK/out.json"
]=]


-- Subscriptions a token can see in the simulator's ARM.
local function subscriptions(sim, token)
    local res = assert(sim:request("arm", "GET", "/subscriptions?api-version=2022-12-01",
        {headers = {Authorization = "Bearer " .. token}}))
    T.eq(res.status, 200, res.body)
    local ids = {}
    for _, s in ipairs(json.decode(res.body).value) do ids[s.subscriptionId] = true end
    return ids
end


T.test("the bash setup script run by the real Azure CLI against the simulator prints " ..
    "credentials that work", function()
    if not (have("az") and have("/usr/bin/python3")) then
        print("SKIP az or python3 missing (make conformance installs them): not run")
        return
    end
    local work = T.tmpdir()
    -- The default app is Contributor; creating role assignments needs Owner.
    local scenario = work .. "/owner.lua"
    T.write_file(scenario, 'local s = dofile("tests/sim/scenarios/default.lua")\n' ..
        's.role_assignments[#s.role_assignments + 1] = { principal = "' .. CONTRIBUTOR_OID ..
        '", role = "Owner", scope = "/subscriptions/' .. SUB .. '" }\n' .. 'return s\n')
    local sim = harness.start{scenario = scenario}
    T.write_file(work .. "/prep.sh", PREP)
    local code, out = run({"bash", work .. "/prep.sh", work, sim.dir, SCRIPT, "--with-reader"},
        nil, 100)
    T.eq(code, 0, out)
    T.contains(out, "Assigning Contributor")
    T.contains(out, "Assigning Reader")
    local body = json.decode(T.read_file(work .. "/out.json"))
    T.eq(body.tenantId, sim.env.SIM_TENANT)
    T.eq(body.subscriptionId, SUB)
    T.eq(body.subscriptionName, "Aurora Sim Production")
    T.match(body.clientId, "^%x+%-%x+%-%x+%-%x+%-%x+$")
    T.ne(body.clientId, sim.env.SIM_CLIENT_ID)
    T.match(body.clientSecret, "..........")
    -- The printed secret gets a token, and the new principal sees the subscription.
    local tok, status = sim:token(nil, body.clientId, body.clientSecret)
    T.eq(status, 200)
    T.ok(subscriptions(sim, tok)[SUB], "the Contributor principal sees the subscription")
    local ro = body.readOnlyCredentials
    T.ok(ro, "readOnlyCredentials printed with --with-reader")
    T.ne(ro.clientId, body.clientId)
    T.eq(ro.subscriptionId, SUB)
    tok, status = sim:token(nil, ro.clientId, ro.clientSecret)
    T.eq(status, 200)
    T.ok(subscriptions(sim, tok)[SUB], "the Reader principal sees the subscription")
    -- Each principal holds exactly the role asked for.
    local admin = sim:token()
    local res = assert(sim:request("arm", "GET", "/subscriptions/" .. SUB ..
        "/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01",
        {headers = {Authorization = "Bearer " .. admin}}))
    local roles = {}
    for _, a in ipairs(json.decode(res.body).value) do
        local r = a.properties.roleDefinitionId:sub(-36)
        roles[r] = (roles[r] or 0) + 1
    end
    T.ok(roles["b24988ac-6180-42a0-ab88-20f7382dd24c"] >= 2, "a new Contributor assignment")
    T.ok(roles["acdd72a7-3385-48ef-bd42-f606fba81ae7"] >= 3, "a new Reader assignment")
    -- Nothing reached the network: the stray requests would have hit the refusing proxy and
    -- failed the script; the secret is only in out.json, never in the progress output.
    T.not_contains(out, body.clientSecret)
end)


T.test("the Aurora app serves the setup scripts without a user id, byte for byte", function()
    local s = T.server { app = "lua", env = { AURORA_API_TOKEN = "tok-setup" } }
    local files = { ["/azure/setup-script"] = SCRIPT, ["/azure/setup-script-ps1"] = PS1 }
    for path, file in pairs(files) do
        local res = assert(s:request("GET", path))
        T.eq(res.status, 200, path)
        T.eq(res.body, T.read_file(file), path)
        T.match(res.headers["content-disposition"], "attachment")
        T.match(res.headers["cache-control"], "no%-store")
        T.ok(res.headers["x-request-id"], "an X-Request-ID")
    end
    -- The connector's own routes still need the token and a user.
    T.eq(assert(s:request("GET", "/azure/fetch_data")).status, 401)
    if have("shellcheck") then
        local dir = T.tmpdir()
        T.write_file(dir .. "/served.sh", assert(s:request("GET", "/azure/setup-script")).body)
        local code, out = run({ "shellcheck", "--shell=bash", dir .. "/served.sh" })
        T.eq(code, 0, out)
    end
end)

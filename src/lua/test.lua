-- aurora.test: the assertion library and helpers of `aurora test`.
--
--   local T = require "aurora.test"
--   T.test("returns 401 when the token is missing", function() ... end)
--
-- Each test runs in a fresh VM as a task, so it may call aurora.http, sleep and start servers.
-- Servers and processes a test starts are stopped when it ends, pass or fail.
local http = require "aurora.http"
local proc = require "aurora.proc"
local time = require "aurora.time"

local M = {}

local tests = {}
local children = {}
local tmpdirs = {}
local deferred = {}


local function fail(msg, level)
    error(msg, (level or 1) + 1)
end


--- Registers a test. name: a sentence saying what must hold; fn: the test body.
function M.test(name, fn)
    if type(name) ~= "string" or type(fn) ~= "function" then
        error("usage: test(name, function)", 2)
    end
    tests[#tests + 1] = { name = name, fn = fn }
end


local function show(v)
    if type(v) == "string" then
        return string.format("%q", v)
    end
    return tostring(v)
end


-- Returns nil when a and b are deeply equal, else a description of the first difference.
local function diff(a, b, path, seen)
    if a == b then
        return nil
    end
    if type(a) ~= "table" or type(b) ~= "table" then
        return string.format("at %s: got %s, expected %s", path == "" and "value" or path,
            show(a), show(b))
    end
    seen = seen or {}
    if seen[a] == b then
        return nil
    end
    seen[a] = b
    local keys = {}
    for k in pairs(a) do keys[k] = true end
    for k in pairs(b) do keys[k] = true end
    local sorted = {}
    for k in pairs(keys) do sorted[#sorted + 1] = k end
    table.sort(sorted, function(x, y) return tostring(x) < tostring(y) end)
    for _, k in ipairs(sorted) do
        local sub = path .. (type(k) == "string" and ("." .. k) or ("[" .. tostring(k) .. "]"))
        local d = diff(a[k], b[k], sub, seen)
        if d then
            return d
        end
    end
    return nil
end

M.diff = diff


--- Deep equality: fails with the path of the first difference.
function M.eq(actual, expected, msg)
    local d = diff(actual, expected, "")
    if d then
        fail((msg and (msg .. ": ") or "") .. d, 2)
    end
end


--- Fails when actual and other are deeply equal.
function M.ne(actual, other, msg)
    if not diff(actual, other, "") then
        fail((msg and (msg .. ": ") or "") .. "expected a value different from " .. show(other), 2)
    end
end


--- Fails unless v is truthy.
function M.ok(v, msg)
    if not v then
        fail(msg or ("expected a true value, got " .. show(v)), 2)
    end
    return v
end


--- Fails unless the string s matches the Lua pattern.
function M.match(s, pattern, msg)
    if type(s) ~= "string" or not s:find(pattern) then
        fail((msg and (msg .. ": ") or "") .. show(s) .. " does not match " .. show(pattern), 2)
    end
end


--- Fails unless the string s contains plain text sub.
function M.contains(s, sub, msg)
    if type(s) ~= "string" or not s:find(sub, 1, true) then
        fail((msg and (msg .. ": ") or "") .. "expected " .. show(sub) .. " in " .. show(s), 2)
    end
end


--- Fails if the string s contains plain text sub (for "no secret in the log").
function M.not_contains(s, sub, msg)
    if type(s) == "string" and s:find(sub, 1, true) then
        fail((msg and (msg .. ": ") or "") .. "did not expect " .. show(sub) .. " in the text", 2)
    end
end


--- Expects fn(...) to raise an error whose message matches pattern. Returns the message.
function M.raises(fn, pattern, ...)
    local ok, err = pcall(fn, ...)
    if ok then
        fail("expected an error" .. (pattern and (" matching " .. show(pattern)) or ""), 2)
    end
    local msg = type(err) == "table" and tostring(err.error or err) or tostring(err)
    if pattern and not msg:find(pattern) then
        fail("error " .. show(msg) .. " does not match " .. show(pattern), 2)
    end
    return msg
end


--- Fails unless |a - b| <= eps.
function M.near(a, b, eps, msg)
    if type(a) ~= "number" or math.abs(a - b) > (eps or 1e-9) then
        fail((msg and (msg .. ": ") or "") .. string.format("%s is not within %s of %s",
            show(a), tostring(eps), show(b)), 2)
    end
end


--- Fails the test now.
function M.fail(msg)
    fail(msg, 2)
end


--- A fresh private directory, removed when the test ends.
function M.tmpdir()
    local d = assert(proc.mkdtemp("aurora-test"))
    tmpdirs[#tmpdirs + 1] = d
    return d
end


--- Writes content to path.
function M.write_file(path, content)
    local f = assert(io.open(path, "wb"))
    f:write(content)
    f:close()
end


--- The content of the file at path, or nil.
function M.read_file(path)
    local f = io.open(path, "rb")
    if not f then
        return nil
    end
    local s = f:read("a")
    f:close()
    return s
end


--- Waits until pid ends or timeout seconds pass. Returns how ("exited"/"signaled"), code; or nil.
function M.wait_process(pid, timeout)
    local deadline = time.monotonic() + (timeout or 10)
    repeat
        local how, code = proc.poll(pid)
        if how then
            return how, code
        end
        time.sleep(0.02)
    until time.monotonic() > deadline
    return nil
end


local Server = {}
Server.__index = Server


--- The server's log (stderr) so far.
function Server:log()
    return M.read_file(self.log_file) or ""
end


--- Sends a signal ("TERM", "HUP", "INT", "KILL").
function Server:signal(sig)
    return proc.kill(self.pid, sig)
end


--- Stops the server (SIGTERM, then SIGKILL after timeout). Returns how, code.
function Server:stop(timeout)
    if self.stopped then
        return self.how, self.code
    end
    proc.kill(self.pid, "TERM")
    local how, code = M.wait_process(self.pid, timeout or 15)
    if not how then
        proc.kill(self.pid, "KILL")
        how, code = M.wait_process(self.pid, 5)
    end
    self.stopped, self.how, self.code = true, how, code
    return how, code
end


--- http.request against the server: path is appended to its URL; opts as for http.request.
function Server:request(method, path, opts)
    local o = {}
    for k, v in pairs(opts or {}) do o[k] = v end
    o.method = method
    o.url = self.url .. path
    if self.ca_file and not o.ca_file and not o.ca_pem then
        o.ca_file = self.ca_file
    end
    return http.request(o)
end


--- The Aurora app's module directory tests and their servers search after their own:
-- AURORA_APP, or ./lua when it holds app.lua (nil otherwise).
function M.lib_dir()
    local a = os.getenv("AURORA_APP")
    if a and a ~= "" then return a end
    local f = io.open("lua/app.lua", "r")
    if f then
        f:close()
        return "lua"
    end
    return nil
end


--- Starts `aurora serve` on a free loopback port and waits until it answers /healthz.
-- opts: app (directory, required), workers (default 2), env (table), args (extra flags),
-- tls = {cert = file, key = file, ca = file (CA to trust as a client), client_ca = file},
-- bin (the aurora binary; default this one), ready_timeout (seconds, default 15).
function M.server(opts)
    assert(type(opts) == "table" and opts.app, "server{app = DIR, ...}")
    local port = assert(proc.free_port())
    local dir = M.tmpdir()
    local log_file = dir .. "/server.log"
    local scheme = opts.tls and "https" or "http"
    local argv = { opts.bin or proc.self_exe(), "serve", "--app", opts.app,
        "--listen", "127.0.0.1:" .. port, "--workers", tostring(opts.workers or 2) }
    if opts.tls then
        argv[#argv + 1] = "--tls-cert"; argv[#argv + 1] = opts.tls.cert
        argv[#argv + 1] = "--tls-key"; argv[#argv + 1] = opts.tls.key
        if opts.tls.client_ca then
            argv[#argv + 1] = "--tls-client-ca"; argv[#argv + 1] = opts.tls.client_ca
        end
    end
    for _, a in ipairs(opts.args or {}) do argv[#argv + 1] = a end
    local env = { AURORA_DATA_DIR = dir, AURORA_ENV_FILE = dir .. "/none.env",
        AURORA_LOG_LEVEL = "info", AURORA_LIB_DIR = M.lib_dir() }
    for k, v in pairs(opts.env or {}) do env[k] = v end
    local pid = assert(proc.spawn { argv = argv, env = env, stdout = log_file, stderr = log_file })
    local s = setmetatable({ pid = pid, port = port, url = scheme .. "://127.0.0.1:" .. port,
        log_file = log_file, dir = dir, ca_file = opts.tls and opts.tls.ca }, Server)
    children[#children + 1] = s
    local deadline = time.monotonic() + (opts.ready_timeout or 15)
    while true do
        local how, code = proc.poll(pid)
        if how then
            s.stopped = true
            error(string.format("server exited (%s %d) before it was ready; its log:\n%s", how,
                code, s:log()), 2)
        end
        local res = http.request { url = s.url .. "/healthz", timeout = 1, ca_file = s.ca_file }
        if res and res.status == 200 then
            return s
        end
        if time.monotonic() > deadline then
            error("server not ready in time; its log:\n" .. s:log(), 2)
        end
        time.sleep(0.02)
    end
end


--- Starts a process (argv list) whose output goes to a file; it is killed when the test ends.
function M.spawn(argv, env)
    local dir = M.tmpdir()
    local out = dir .. "/output.log"
    local pid = assert(proc.spawn { argv = argv, env = env, stdout = out, stderr = out })
    local p = setmetatable({ pid = pid, log_file = out }, Server)
    children[#children + 1] = p
    return p
end


--- Runs fn when the test ends, pass or fail (before servers are stopped), latest first.
function M.defer(fn)
    deferred[#deferred + 1] = fn
end


function M._names()
    local names = {}
    for i, t in ipairs(tests) do names[i] = t.name end
    return names
end


function M._run(i)
    local t = tests[i]
    local ok, err = xpcall(t.fn, function(e)
        if type(e) == "table" then
            e = tostring(e.error or e)
        end
        return tostring(e)
    end)
    if ok then
        return true
    end
    return false, err
end


function M._cleanup()
    for i = #deferred, 1, -1 do
        pcall(deferred[i])
    end
    deferred = {}
    for _, c in ipairs(children) do
        if not c.stopped then
            pcall(Server.stop, c, 5)
        end
    end
    children = {}
    for _, d in ipairs(tmpdirs) do
        local pid = proc.spawn { argv = { "rm", "-rf", d } }
        if pid then M.wait_process(pid, 10) end
    end
    tmpdirs = {}
    return true
end

return M

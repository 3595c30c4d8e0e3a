-- The app under test for `make bench` (bench/run).
-- GET /hello answers a small JSON body without yielding: scenario (a).
-- GET /proxy awaits the 200 ms upstream (bench/upstream/app.lua) through aurora.http: scenario (b).
-- BENCH_UPSTREAM_URL names the upstream; bench/run sets it.
local env = require "aurora.env"
local http = require "aurora.http"

local UPSTREAM_URL = env.get("BENCH_UPSTREAM_URL", "http://127.0.0.1:18092/slow")


local function hello(req)
    return 200, { hello = "world" }
end


local function proxy(req)
    local res, msg, code = http.request { url = UPSTREAM_URL, timeout = 10 }
    if not res then
        return 502, { error = "upstream failed", code = code, detail = msg }
    end
    if res.status ~= 200 then
        return 502, { error = "upstream answered " .. res.status }
    end
    return 200, res.body, { ["content-type"] = "application/json" }
end


return {
    ["GET /hello"] = hello,
    ["GET /proxy"] = proxy,
}

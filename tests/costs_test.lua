-- GET /azure/costs (lua/handlers/costs.lua, lua/aurora/azure/costs.lua) against the simulator's
-- Cost Management query API: groupings, ranges, nextLink pages, throttling (Retry-After and
-- Cost Management's own headers), permission errors, validation and the one-hour cache.
-- The default scenario's costs (subscription "Aurora Sim Production", November 2026):
--   2026-11-01  Azure Kubernetes Service  rg-aks   41.25
--   2026-11-01  Virtual Machines          rg-apps  12.50
--   2026-11-02  Azure Kubernetes Service  rg-aks   40.75
--   2026-11-02  Storage                   rg-data   1.05
local T = require "aurora.test"
local http = require "aurora.http"
local json = require "aurora.json"
local time = require "aurora.time"
local timer = require "aurora.timer"
local connector = require "lib.connector"

local SUB = "0b1c2d3e-4f50-4617-8283-949596979899"
local SUB_DISABLED = "1c2d3e4f-5061-4728-9394-a5b6c7d8e9f0"
local COST = "arm:POST /subscriptions/{sub}/providers/Microsoft.CostManagement/query"
local NOVEMBER = "from=2026-11-01&to=2026-11-30"


-- The simulator and the app, with user u1 logged in. Returns sim, call, server.
local function start()
    local sim, call, _, s = connector.start()
    connector.login(sim, call)
    return sim, call, s
end


local function cost_calls(sim)
    return connector.route_count(sim, COST)
end


-- {key = cost} of an answer's groups (all in USD).
local function groups(body)
    local out = {}
    for _, g in ipairs(body.groups) do
        T.eq(g.currency, "USD")
        out[g.key] = g.cost
    end
    return out
end


T.test("month to date by service (the default), with currency and totals", function()
    local sim, call = start()
    sim:knobs { cost_now = "2026-11-15" }
    local res = call("GET", "/azure/costs")
    T.eq(res.status, 200, res.body)
    T.eq(res.headers["x-cache"], "miss")
    local b = res.json
    T.eq(b.groupBy, "service")
    T.eq(b.timeframe, "MonthToDate")
    T.eq(b.from, os.date("!%Y-%m-01"))
    T.eq(b.to, os.date("!%Y-%m-%d"))
    T.eq(b.currency, "USD")
    T.near(b.total, 95.55, 1e-9)
    T.near(b.totals.USD, 95.55, 1e-9)
    -- Largest first.
    T.eq(b.groups[1].key, "Azure Kubernetes Service")
    T.near(b.groups[1].cost, 82.0, 1e-9)
    T.eq(b.groups[2].key, "Virtual Machines")
    T.near(b.groups[2].cost, 12.5, 1e-9)
    T.eq(b.groups[3].key, "Storage")
    T.near(b.groups[3].cost, 1.05, 1e-9)
    T.eq(#b.groups, 3)
    T.eq(#b.subscriptions, 1)
    T.eq(b.subscriptions[1].subscriptionId, SUB)
    T.near(b.subscriptions[1].total, 95.55, 1e-9)
    T.eq(b.errors, {})
    T.eq(cost_calls(sim), 1)
end)


T.test("a custom range by resource group and by day", function()
    local _, call = start()
    local res = call("GET", "/azure/costs?" .. NOVEMBER .. "&groupBy=resourceGroup")
    T.eq(res.status, 200, res.body)
    T.eq(res.json.timeframe, "Custom")
    T.eq(res.json.from, "2026-11-01")
    T.eq(res.json.to, "2026-11-30")
    T.eq(res.json.groupBy, "resourceGroup")
    local g = groups(res.json)
    T.near(g["rg-aks"], 82.0, 1e-9)
    T.near(g["rg-apps"], 12.5, 1e-9)
    T.near(g["rg-data"], 1.05, 1e-9)
    T.near(res.json.total, 95.55, 1e-9)

    res = call("GET", "/azure/costs?" .. NOVEMBER .. "&groupBy=day")
    T.eq(res.status, 200, res.body)
    T.eq(#res.json.groups, 2)
    T.eq(res.json.groups[1].key, "2026-11-01")
    T.near(res.json.groups[1].cost, 53.75, 1e-9)
    T.eq(res.json.groups[2].key, "2026-11-02")
    T.near(res.json.groups[2].cost, 41.8, 1e-9)

    -- One day only; `to` defaults to today.
    res = call("GET", "/azure/costs?from=2026-11-02&to=2026-11-02&groupBy=service")
    g = groups(res.json)
    T.near(g["Azure Kubernetes Service"], 40.75, 1e-9)
    T.near(g["Storage"], 1.05, 1e-9)
    T.eq(g["Virtual Machines"], nil)
    res = call("GET", "/azure/costs?from=2026-11-02")
    T.eq(res.json.to, os.date("!%Y-%m-%d"))

    -- A range without costs (Cost Management answers 204): no groups, a zero total.
    res = call("GET", "/azure/costs?from=2020-01-01&to=2020-01-31")
    T.eq(res.status, 200, res.body)
    T.eq(res.json.groups, {})
    T.eq(res.json.total, 0)
end)


T.test("every nextLink page is read, and a 429 in the middle is waited out", function()
    local sim, call = start()
    -- One row per page; the second page's request is held 600 ms by the simulator, and the
    -- fault is armed while it waits, so it answers exactly that request.
    sim:knobs { page_size = 1, latency_ms = { [COST] = 600 } }
    timer.at(0, function()
        local deadline = time.monotonic() + 20
        while cost_calls(sim) < 2 and time.monotonic() < deadline do time.sleep(0.02) end
        sim:knobs { faults = { { route = COST, status = 429, retry_after = 1, count = 1,
            code = "429", message = "Too many requests. Please retry." } } }
    end)
    local t0 = time.monotonic()
    local res = call("GET", "/azure/costs?" .. NOVEMBER)
    local took = time.monotonic() - t0
    T.eq(res.status, 200, res.body)
    local g = groups(res.json)
    T.near(g["Azure Kubernetes Service"], 82.0, 1e-9)
    T.near(g["Virtual Machines"], 12.5, 1e-9)
    T.near(g["Storage"], 1.05, 1e-9)
    T.near(res.json.total, 95.55, 1e-9)
    T.eq(cost_calls(sim), 4, "three pages and one retry")
    T.ok(took >= 1 + 4 * 0.6, "waited the Retry-After second: " .. took)

    -- Cost Management's own retry-after headers, without Retry-After.
    sim:knobs { latency_ms = { [COST] = 0 }, cost_throttle = { count = 1, retry_after = 2 } }
    t0 = time.monotonic()
    res = call("GET", "/azure/costs?" .. NOVEMBER .. "&groupBy=day&refresh=1")
    T.eq(res.status, 200, res.body)
    T.eq(#res.json.groups, 2)
    T.ok(time.monotonic() - t0 >= 2, "waited x-ms-ratelimit-microsoft.costmanagement-*-retry-after")
    T.eq(cost_calls(sim), 4 + 3)
end)


T.test("a throttle longer than the retries allow is answered 429 with Retry-After", function()
    local sim, call = start()
    sim:knobs { cost_throttle = { count = 10, retry_after = 45 } }
    local res = call("GET", "/azure/costs?" .. NOVEMBER)
    T.eq(res.status, 429, res.body)
    T.eq(res.headers["retry-after"], "45")
    T.eq(res.json.code, "costs_failed")
    T.eq(res.json.upstream.status, 429)
    T.contains(table.concat(res.json.solution, " "), "Retry-After")
    T.eq(cost_calls(sim), 1, "no retry when the wait is longer than arm.MAX_DELAY")
end)


T.test("permission errors map to costs_failed with the Cost Management Reader steps", function()
    local sim, call = start()
    -- Cost Management has been seen answering 401 RBACAccessDenied for a missing role.
    sim:knobs { faults = { { route = COST, status = 401, code = "RBACAccessDenied", count = 1,
        message = "The client does not have authorization to perform action " ..
            "'Microsoft.CostManagement/query/read' over scope '/subscriptions/" .. SUB .. "'." } } }
    local res = call("GET", "/azure/costs")
    T.eq(res.status, 403, res.body)
    T.eq(res.json.code, "costs_failed")
    T.eq(res.json.error, "Failed to fetch Azure costs")
    T.eq(res.json.upstream.code, "RBACAccessDenied")
    T.eq(res.json.upstream.status, 401)
    T.contains(res.json.upstream.message, "Microsoft.CostManagement/query/read")
    local steps = table.concat(res.json.solution, "\n")
    T.contains(steps, "--role \"Cost Management Reader\" --scope /subscriptions/<SUBSCRIPTION_ID>")

    sim:knobs { faults = { { route = COST, status = 403, code = "AuthorizationFailed",
        count = 1 } } }
    res = call("GET", "/azure/costs?refresh=1")
    T.eq(res.status, 403, res.body)
    T.eq(res.json.code, "costs_failed")
    T.eq(res.json.upstream.code, "AuthorizationFailed")
    T.contains(table.concat(res.json.solution, "\n"), "Cost Management Reader")
    -- A failure is not cached.
    res = call("GET", "/azure/costs")
    T.eq(res.status, 200, res.body)
end)


T.test("one subscription failing is reported per subscription beside the others' costs",
    function()
        local sim, call = start()
        local both = { projects = { { projectId = SUB, enabled = true },
            { projectId = SUB_DISABLED, enabled = true } } }
        T.eq(call("POST", "/api/azure-subscriptions", { json = both }).status, 200)
        -- The subscriptions are queried in sorted order: the fault takes the first one.
        local first, second = SUB, SUB_DISABLED
        if second < first then first, second = second, first end
        sim:knobs { faults = { { route = COST, status = 403, code = "AuthorizationFailed",
            count = 1 } } }
        local res = call("GET", "/azure/costs?" .. NOVEMBER)
        T.eq(res.status, 200, res.body)
        T.eq(cost_calls(sim), 2)
        local failed = res.json.errors[first] and first or second
        T.eq(res.json.errors[failed].code, "AuthorizationFailed")
        T.eq(#res.json.subscriptions, 1)
        T.ne(res.json.subscriptions[1].subscriptionId, failed)
    end)


T.test("bad parameters are refused with 400 naming the field", function()
    local sim, call = start()
    for q, field in pairs { ["from=2026-13-01&to=2026-12-31"] = "from",
        ["from=2026-02-30&to=2026-03-01"] = "from", ["from=yesterday"] = "from",
        ["to=2026-11-30"] = "from", ["from=2026-11-01&to=2026-11"] = "to",
        ["from=2026-11-10&to=2026-11-01"] = "to", ["from=2024-01-01&to=2025-06-01"] = "to",
        ["groupBy=colour"] = "groupBy" } do
        local res = call("GET", "/azure/costs?" .. q)
        T.eq(res.status, 400, q)
        T.eq(res.json.code, "bad_request", q)
        T.eq(res.json.field, field, q)
        T.contains(res.json.error, field, q)
    end
    T.eq(cost_calls(sim), 0)
    -- A leap day is a date.
    T.eq(call("GET", "/azure/costs?from=2028-02-29&to=2028-03-01").status, 200)
end)


T.test("answers are cached for an hour: a second request makes no Cost Management call",
    function()
        local sim, call, s = start()
        T.eq(call("GET", "/azure/costs?" .. NOVEMBER).headers["x-cache"], "miss")
        local res = call("GET", "/azure/costs?" .. NOVEMBER)
        T.eq(res.headers["x-cache"], "hit")
        T.near(res.json.total, 95.55, 1e-9)
        T.eq(cost_calls(sim), 1)
        -- Another grouping or range is another answer; refresh=1 asks again.
        T.eq(call("GET", "/azure/costs?" .. NOVEMBER .. "&groupBy=day").headers["x-cache"], "miss")
        T.eq(call("GET", "/azure/costs?" .. NOVEMBER .. "&refresh=1").headers["x-cache"], "miss")
        T.eq(cost_calls(sim), 3)
        -- Concurrent requests for the same answer share one query.
        sim:knobs { latency_ms = { [COST] = 300 } }
        local one = { url = s.url .. "/azure/costs?from=2026-11-01&to=2026-11-02",
            headers = { ["X-User-ID"] = "u1" } }
        local rs = http.request_many { one, one, one }
        local misses = 0
        for _, r in ipairs(rs) do
            T.eq(r.status, 200, r.body)
            T.near(json.decode(r.body).total, 95.55, 1e-9)
            if r.headers["x-cache"] == "miss" then misses = misses + 1 end
        end
        T.eq(misses, 1)
        T.eq(cost_calls(sim), 4)
    end)

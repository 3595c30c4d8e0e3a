-- Costs: actual cost of a user's enabled subscriptions for a date range (month to date by
-- default), grouped by service, resource group or day, from the Cost Management query API
-- (POST /subscriptions/{id}/providers/Microsoft.CostManagement/query), one query per
-- subscription run concurrently and each followed through properties.nextLink.
--
-- Cost Management throttles hard (a few queries per minute per scope) and says how long to wait
-- in its own x-ms-ratelimit-microsoft.costmanagement-*-retry-after headers besides
-- Retry-After; arm.pages_many waits the longest of them when that is short, and gives up with
-- the wait in err.retry_after when it is not. Answers are cached for an hour per user,
-- credential set, subscription set, range and grouping in the aurora.shared dict "azure_costs"
-- as JSON text, and concurrent requests for the same answer wait for one query.
-- Reference: docs/api.md, "GET /azure/costs".
local arm = require "aurora.azure.arm"
local account = require "aurora.azure.account"
local flight = require "aurora.flight"
local json = require "aurora.json"
local log = require "aurora.log"
local shared = require "aurora.shared"
local time = require "aurora.time"

local M = {}

M.TTL = 3600             -- seconds a complete answer is cached
M.PARTIAL_TTL = 300      -- ... and one where a subscription failed
M.FETCH_TOTAL = 25       -- seconds a fetch may take (the request deadline is 30)
M.LOCK_TTL = 60          -- seconds a "query running" mark lives

local cache = shared.dict("azure_costs", { max_items = 10000, max_bytes = 64 * 1024 * 1024 })
local locks = shared.dict("azure_costs_locks", { max_items = 10000 })

local NULL = json.null

--- The groupings: the query's dimension (or Daily granularity) and the column that holds the
-- group in the answer.
M.GROUPINGS = {
    service = { dimension = "ServiceName" },
    resourceGroup = { dimension = "ResourceGroupName" },
    day = { granularity = "Daily", column = "UsageDate" },
}


local function round(x) return math.floor(x * 1e6 + 0.5) / 1e6 end


--- The query body for a grouping ("service", "resourceGroup", "day") and a range
-- ({from = "YYYY-MM-DD", to = "YYYY-MM-DD"}, or nil for month to date).
function M.query(group_by, range)
    local g = M.GROUPINGS[group_by]
    local dataset = { granularity = g.granularity or "None",
        aggregation = { totalCost = { name = "Cost", ["function"] = "Sum" } } }
    if g.dimension then
        dataset.grouping = json.array { { type = "Dimension", name = g.dimension } }
    end
    local q = { type = "ActualCost", timeframe = range and "Custom" or "MonthToDate",
        dataset = dataset }
    if range then
        q.timePeriod = { from = range.from .. "T00:00:00Z", to = range.to .. "T23:59:59Z" }
    end
    return q
end


-- The index of the column named name (any case) in columns, or nil.
local function column(columns, name)
    for i, c in ipairs(columns) do
        if type(c) == "table" and type(c.name) == "string" and c.name:lower() == name:lower() then
            return i
        end
    end
    return nil
end


-- A group's key as shown: UsageDate 20261101 (or "2026-11-01T00:00:00") -> "2026-11-01".
local function group_key(group_by, v)
    if v == nil or v == NULL then return "" end
    if group_by == "day" then
        local s = tostring(math.tointeger(v) or v)
        local y, m, d = s:match("^(%d%d%d%d)%-?(%d%d)%-?(%d%d)")
        if y then return y .. "-" .. m .. "-" .. d end
    end
    return tostring(v)
end


--- Queries subs (subscription ids) with tok. Returns {groups, total, totals, currency,
-- subscriptions, errors, ...}, or nil, err when every subscription failed (err: the first
-- subscription's, as arm's).
function M.fetch(tok, subs, group_by, range, total)
    local body = M.query(group_by, range)
    local g = M.GROUPINGS[group_by]
    local jobs, pages = {}, {}
    for i, sub in ipairs(subs) do
        local mine = {}
        pages[i] = mine
        jobs[i] = { path = "/subscriptions/" .. sub .. "/providers/Microsoft.CostManagement/query",
            query = { ["api-version"] = arm.API_VERSIONS.cost_management }, method = "POST",
            json = body, page = function(b)
                local p = type(b.properties) == "table" and b.properties or {}
                mine[#mine + 1] = p
                local link = p.nextLink
                return type(link) == "string" and link ~= "" and { url = link } or nil
            end }
    end
    local results = arm.pages_many(tok, jobs, { total = total or M.FETCH_TOTAL })

    local groups, order, totals, per_sub, errors = {}, {}, {}, json.array(), {}
    local first_err
    for i, r in ipairs(results) do
        local sub = subs[i]
        if r ~= true then
            errors[sub] = { status = r.status, code = r.code, message = r.message }
            first_err = first_err or r
        else
            local sub_totals = {}
            for _, p in ipairs(pages[i]) do
                local cols = type(p.columns) == "table" and p.columns or {}
                local ci = column(cols, "Cost") or 1
                local gi = column(cols, g.column or g.dimension)
                local ki = column(cols, "Currency")
                for _, row in ipairs(type(p.rows) == "table" and p.rows or {}) do
                    local cost = type(row) == "table" and tonumber(row[ci])
                    if cost then
                        local cur = ki and type(row[ki]) == "string" and row[ki] or "USD"
                        local key = gi and group_key(group_by, row[gi]) or ""
                        local k = key:lower() .. "\0" .. cur
                        local e = groups[k]
                        if not e then
                            e = { key = key, cost = 0, currency = cur }
                            groups[k] = e
                            order[#order + 1] = e
                        end
                        e.cost = e.cost + cost
                        totals[cur] = (totals[cur] or 0) + cost
                        sub_totals[cur] = (sub_totals[cur] or 0) + cost
                    end
                end
            end
            local only, n = nil, 0
            for cur, v in pairs(sub_totals) do only, n = cur, n + 1; sub_totals[cur] = round(v) end
            per_sub[#per_sub + 1] = { subscriptionId = sub, totals = sub_totals,
                total = n == 1 and sub_totals[only] or (n == 0 and 0 or NULL),
                currency = n == 1 and only or NULL }
        end
    end
    if #per_sub == 0 and first_err then return nil, first_err end

    for _, e in ipairs(order) do e.cost = round(e.cost) end
    table.sort(order, function(a, b)
        if group_by == "day" then
            if a.key ~= b.key then return a.key < b.key end
        elseif a.cost ~= b.cost then
            return a.cost > b.cost
        elseif a.key ~= b.key then
            return a.key < b.key
        end
        return a.currency < b.currency
    end)
    local only, n = nil, 0
    for cur, v in pairs(totals) do only, n = cur, n + 1; totals[cur] = round(v) end
    return { groups = setmetatable(order, json.array_mt), totals = totals,
        total = n == 1 and totals[only] or (n == 0 and 0 or NULL),
        currency = n == 1 and only or NULL, subscriptions = per_sub, errors = errors,
        fetchedAt = time.iso8601(math.floor(time.now())),
        ttl = next(errors) and M.PARTIAL_TTL or M.TTL }
end


local function cached(key)
    local text = cache:get(key)
    return text and json.decode(text) or nil
end


--- The cost answer for the user, from the cache unless refresh is true. range: nil (month to
-- date) or {from, to}; key_range: the range text that names the answer in the cache.
-- Returns result, "hit"|"miss", or nil, "token"|"upstream", err.
function M.report(uid, main, ro, subs, group_by, range, key_range, refresh)
    local key = "costs:" .. uid .. ":" .. account.generation(uid) .. ":" .. (ro and "ro" or "rw") ..
        ":" .. table.concat(subs, ",") .. ":" .. key_range .. ":" .. group_by
    if not refresh then
        local hit = cached(key)
        if hit then return hit, "hit" end
    end
    local function run()
        local tok, terr = account.read_token(uid, main, ro)
        if not tok then return nil, "token", terr end
        local res, err = M.fetch(tok, subs, group_by, range)
        tok:close()
        if not res then return nil, "upstream", err end
        local text, msg = json.encode(res)
        local ok, serr = text and cache:set(key, text, res.ttl)
        if not ok then log.warn("cost answer not cached", { reason = serr or msg }) end
        return res, "miss"
    end
    -- One query per answer: Cost Management's quota is a few calls a minute.
    return flight.run(locks, key, { lock_ttl = M.LOCK_TTL, wait = M.FETCH_TOTAL, force = refresh },
        function() return cached(key) end, run)
end

return M

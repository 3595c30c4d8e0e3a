-- GET /azure/costs: actual cost of the enabled subscriptions, month to date or
-- ?from=YYYY-MM-DD&to=YYYY-MM-DD, grouped by service, resource group or day
-- (lua/aurora/azure/costs.lua queries Cost Management and caches the answer for an hour).
-- Reference: docs/api.md, "GET /azure/costs".
local account = require "aurora.azure.account"
local costs = require "aurora.azure.costs"
local users = require "aurora.users"

local M = {}

-- The longest range Cost Management answers in one query.
M.MAX_DAYS = 366

-- ?groupBy= values (compared in lower case) and the grouping each names.
M.GROUP_BY = {
    service = "service", servicename = "service",
    resourcegroup = "resourceGroup", resource_group = "resourceGroup", rg = "resourceGroup",
    day = "day", daily = "day", date = "day",
}

local fail = users.fail


local function bad(req, field, why)
    return nil, { fail(req, "bad_request", { message = field .. " " .. why, field = field }) }
end


-- Days since 1970-01-01 of a "YYYY-MM-DD" that names a real calendar day, else nil.
local function day_number(s)
    local y, m, d = s:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)$")
    if not y then return nil end
    y, m, d = tonumber(y), tonumber(m), tonumber(d)
    if m < 1 or m > 12 or d < 1 then return nil end
    local leap = (y % 4 == 0 and y % 100 ~= 0) or y % 400 == 0
    local mdays = { 31, leap and 29 or 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 }
    if d > mdays[m] then return nil end
    -- Days from civil (proleptic Gregorian).
    local a = m <= 2 and 1 or 0
    local yy, mm = y - a, m + (a == 1 and 9 or -3)
    local era = yy // 400
    local yoe = yy - era * 400
    local doe = yoe * 365 + yoe // 4 - yoe // 100 + (153 * mm + 2) // 5 + d - 1
    return era * 146097 + doe - 719468
end


-- group_by, range (nil: month to date), the range's cache text, or nil, {error answer}.
local function options(req)
    local q = req.query
    local group_by = "service"
    if q.groupBy and q.groupBy ~= "" then
        group_by = M.GROUP_BY[q.groupBy:lower()]
        if not group_by then
            return bad(req, "groupBy", "must be service, resourceGroup or day")
        end
    end
    local from, to = q.from ~= "" and q.from or nil, q.to ~= "" and q.to or nil
    if not from and not to then
        local today = os.date("!%Y-%m-%d")
        return group_by, nil, "mtd:" .. today, { from = today:sub(1, 8) .. "01", to = today }
    end
    if not from then return bad(req, "from", "is required when to is given (YYYY-MM-DD)") end
    local f = day_number(from)
    if not f then return bad(req, "from", "must be a date written YYYY-MM-DD") end
    to = to or os.date("!%Y-%m-%d")
    local t = day_number(to)
    if not t then return bad(req, "to", "must be a date written YYYY-MM-DD") end
    if t < f then return bad(req, "to", "must not be before from") end
    if t - f + 1 > M.MAX_DAYS then
        return bad(req, "to", "must be at most " .. M.MAX_DAYS .. " days after from")
    end
    local range = { from = from, to = to }
    return group_by, range, from .. ".." .. to, range
end


function M.get(req, uid)
    local group_by, range, key_range, shown = options(req)
    if not group_by then return table.unpack(range) end
    local main, ro, e = account.load(req, uid)
    if not main then return table.unpack(e) end
    local subs = account.enabled_set(uid, main)
    local refresh = req.query.refresh == "1" or req.query.refresh == "true"
    local res, how, err = costs.report(uid, main, ro, subs, group_by, range, key_range, refresh)
    if not res then
        if how == "token" then return account.token_failure(req, err) end
        return fail(req, "costs_failed", err)
    end
    return 200, { groupBy = group_by, timeframe = range and "Custom" or "MonthToDate",
        from = shown.from, to = shown.to, currency = res.currency, total = res.total,
        totals = res.totals, groups = res.groups, subscriptions = res.subscriptions,
        errors = res.errors, fetchedAt = res.fetchedAt }, { ["X-Cache"] = how }
end

return M

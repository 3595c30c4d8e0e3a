-- GET /azure/resources: the inventory of the enabled subscriptions (lua/aurora/azure/discovery.lua
-- reads and caches it), filtered by category, resource group and location, counted per
-- category, and paged. Reference: docs/api.md, "GET /azure/resources".
local account = require "aurora.azure.account"
local crypto = require "aurora.crypto"
local discovery = require "aurora.azure.discovery"
local json = require "aurora.json"
local users = require "aurora.users"

local M = {}

M.DEFAULT_LIMIT = 500
M.MAX_LIMIT = 5000

-- Other names accepted in ?category= (compared in lower case, "-" read as "_").
M.CATEGORY_ALIASES = {
    aks = "aks_cluster", cluster = "aks_cluster", vm = "virtual_machine",
    vmss = "vm_scale_set", scale_set = "vm_scale_set", sql = "sql_server",
    database = "sql_database", storage = "storage_account", function_app = "function_app",
    functionapp = "function_app", webapp = "web_app", app_service = "web_app",
    vnet = "virtual_network", nsg = "network_security_group", aci = "container_group",
    container_instance = "container_group", rg = "resource_group",
}

local fail = users.fail
local KNOWN = {}
for _, c in ipairs(discovery.CATEGORIES) do KNOWN[c] = c end


local function bad(req, field, why)
    return nil, { fail(req, "bad_request", { message = field .. " " .. why, field = field }) }
end


-- A set of categories from "vm,storage_account", or nil, {error answer}.
local function categories(req, text)
    local set, n = {}, 0
    for word in text:gmatch("[^,]+") do
        local w = word:gsub("^%s+", ""):gsub("%s+$", ""):lower():gsub("-", "_")
        local one = w:gsub("s$", "")
        local c = KNOWN[w] or M.CATEGORY_ALIASES[w] or KNOWN[one] or M.CATEGORY_ALIASES[one]
        if not c then
            return bad(req, "category", "'" .. word .. "' is not a category; use one of: " ..
                table.concat(discovery.CATEGORIES, ", "))
        end
        set[c] = true
        n = n + 1
    end
    if n == 0 then return bad(req, "category", "is empty") end
    return set
end


local function location_key(s) return (s:lower():gsub("[%s_-]", "")) end


local function integer(req, field, text, min, max)
    local n = text:match("^%d+$") and math.tointeger(tonumber(text))
    if not n or n < min or n > max then
        return bad(req, field, "must be an integer from " .. min .. " to " .. max)
    end
    return n
end


-- The request's filters and page: {categories, rg, location, subscription, limit, offset},
-- or nil, {error answer}.
local function options(req)
    local q, o = req.query, {}
    local e
    if q.category and q.category ~= "" then
        o.categories, e = categories(req, q.category)
        if not o.categories then return nil, e end
    end
    if q.resourceGroup and q.resourceGroup ~= "" then o.rg = q.resourceGroup:lower() end
    if q.location and q.location ~= "" then o.location = location_key(q.location) end
    if q.subscriptionId and q.subscriptionId ~= "" then
        o.subscription = q.subscriptionId:lower()
    end
    o.limit = M.DEFAULT_LIMIT
    if q.limit and q.limit ~= "" then
        o.limit, e = integer(req, "limit", q.limit, 1, M.MAX_LIMIT)
        if not o.limit then return nil, e end
    end
    o.offset = 0
    if q.cursor and q.cursor ~= "" then
        if q.offset and q.offset ~= "" then
            return bad(req, "cursor", "cannot be given with offset")
        end
        local raw = crypto.b64url_decode(q.cursor)
        local n = raw and raw:match("^o:(%d+)$")
        if not n then return bad(req, "cursor", "is not a cursor this endpoint returned") end
        o.offset = math.tointeger(tonumber(n))
    elseif q.offset and q.offset ~= "" then
        o.offset, e = integer(req, "offset", q.offset, 0, 100000000)
        if not o.offset then return nil, e end
    end
    return o
end


local function keep(it, o)
    if o.categories and not o.categories[it.category] then return false end
    if o.rg and (it.resourceGroup == json.null or it.resourceGroup:lower() ~= o.rg) then
        return false
    end
    if o.location and (it.location == json.null or location_key(it.location) ~= o.location) then
        return false
    end
    if o.subscription and (it.subscriptionId == json.null or
            it.subscriptionId:lower() ~= o.subscription) then
        return false
    end
    return true
end


function M.list(req, uid)
    local o, e = options(req)
    if not o then return table.unpack(e) end
    local main, ro, le = account.load(req, uid)
    if not main then return table.unpack(le) end
    local subs = account.enabled_set(uid, main)
    local refresh = req.query.refresh == "1" or req.query.refresh == "true"
    local inv, how, err = discovery.inventory(uid, main, ro, subs, refresh)
    if not inv then
        if how == "token" then return account.token_failure(req, err) end
        return fail(req, "resources_failed", err)
    end

    local summary, matched = {}, {}
    for _, c in ipairs(discovery.CATEGORIES) do
        if not o.categories or o.categories[c] then summary[c] = 0 end
    end
    for _, it in ipairs(inv.items) do
        if keep(it, o) then
            matched[#matched + 1] = it
            summary[it.category] = (summary[it.category] or 0) + 1
        end
    end
    local page = json.array()
    for i = o.offset + 1, math.min(#matched, o.offset + o.limit) do page[#page + 1] = matched[i] end
    local next_cursor = json.null
    if o.offset + o.limit < #matched then
        next_cursor = crypto.b64url_encode("o:" .. (o.offset + o.limit))
    end
    local errors = {}
    for c, ce in pairs(type(inv.errors) == "table" and inv.errors or {}) do
        if not o.categories or o.categories[c] then errors[c] = ce end
    end
    return 200, { items = page, count = #page, total = #matched, offset = o.offset,
        limit = o.limit, next = next_cursor, summary = summary, errors = errors,
        source = inv.source, graphError = inv.graphError, fetchedAt = inv.fetchedAt,
        subscriptions = inv.subscriptions }, { ["X-Cache"] = how }
end

return M

-- A large scenario for benchmarks: 6 subscriptions (the default scenario's 4 and 2 generated),
-- 20 resource groups, 200 AKS clusters (each with its own API server listener) and 10,000 other
-- resources, generated deterministically. The default service principal can read all of it.
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
local scenario = require "scenario"
local s = dofile(here .. "/default.lua")

scenario.generate(s, { subscriptions = 6, resource_groups = 20, clusters = 200,
    resources = 10000 })

-- The generated resource groups are dealt over every subscription, the default scenario's
-- "Aurora Sim Unassigned" too: give the default service principal Reader wherever it has no
-- role, so it sees all 6 subscriptions and every generated resource.
local sp = s.applications[1].spObjectId
local has = {}
for _, a in ipairs(s.role_assignments) do
    if a.principal == sp then has[a.scope:lower()] = true end
end
for _, sub in ipairs(s.subscriptions) do
    local scope = "/subscriptions/" .. sub.id
    if not has[scope:lower()] then
        s.role_assignments[#s.role_assignments + 1] = { principal = sp, role = "Reader",
            scope = scope }
    end
end
return s

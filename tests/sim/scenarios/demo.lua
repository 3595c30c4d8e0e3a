-- The demo scenario: the default one plus a past-due subscription, a signed-in user for the
-- OAuth flow, more clusters and a few dozen generated resources of every kind.
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
local scenario = require "scenario"
local s = dofile(here .. "/default.lua")

s.subscriptions[#s.subscriptions + 1] = { id = "4f506172-8394-4a5b-86c7-d8e9f0a1b2c3",
    name = "Aurora Sim Past Due", state = "PastDue", tenant = s.tenants[1].id }
s.role_assignments[#s.role_assignments + 1] = { principal = s.applications[1].spObjectId,
    role = "Reader", scope = "/subscriptions/4f506172-8394-4a5b-86c7-d8e9f0a1b2c3" }
s.users = { { upn = "ada@contoso-sim.onmicrosoft.com", oid = "a0b1c2d3-e4f5-4a6b-8c7d-8e9fa0b1c2d3",
    tenant = s.tenants[1].id, name = "Ada (simulated)" } }

scenario.generate(s, { resource_groups = 4, clusters = 3, resources = 64 })
return s

-- A large scenario for benchmarks: 3 subscriptions, 20 resource groups, 200 AKS clusters (each
-- with its own API server listener) and 10,000 other resources, generated deterministically.
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
local scenario = require "scenario"
local s = dofile(here .. "/default.lua")

scenario.generate(s, { subscriptions = 6, resource_groups = 20, clusters = 200,
    resources = 10000 })
return s

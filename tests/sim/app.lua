-- The Azure simulator: one route table per listener kind. launch.lua starts
-- `aurora serve --app tests/sim --workers 1 --listeners STATE/listeners.json`, where each
-- listener names the table it serves (login, arm, graph, vault, kube); every listener also
-- answers the /_sim/ control routes.
local sim = require "sim"

sim.load()

local function service(name)
    return sim.control_routes(require(name).routes())
end

return {
    login = service("entra"),
    arm = service("arm"),
    graph = service("graph"),
    vault = service("vault"),
    kube = service("kube"),
}

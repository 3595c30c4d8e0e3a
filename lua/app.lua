-- The Aurora app: the route table served by `aurora serve --app lua`.
--
-- Keys are "METHOD /path/{capture}", values are handlers: function(req) -> status, body, headers.
-- Handlers live in lua/handlers/ (one file per endpoint family), field aliases in
-- lua/maps/aliases.lua and the error mapping in lua/maps/errors.lua. Edit, then reload with
-- `aurora reload` (or SIGHUP): the scripts are checked first, and a broken edit is refused while
-- the running version keeps serving. GET /healthz and GET /readyz are built into the engine.
local users = require "aurora.users"
local azure = require "handlers.azure"
local resources = require "handlers.resources"
local costs = require "handlers.costs"
local oauth = require "handlers.oauth"
local clusters = require "handlers.clusters"

local route = users.route
local routes = {
    ["POST /azure/login"] = route(azure.login),
    ["GET /azure/fetch_data"] = route(azure.fetch_data),
    ["GET /azure/resources"] = route(resources.list),
    ["GET /azure/costs"] = route(costs.get),
    ["GET /azure/clusters"] = route(clusters.list),
    ["GET /azure/clusters/{resourceGroup}/{name}"] = route(clusters.get),
    ["POST /azure/clusters/{resourceGroup}/{name}/metrics-server"] = route(clusters.deploy_metrics_server),
    ["GET /api/azure-subscriptions"] = route(azure.subscriptions_get),
    ["POST /api/azure-subscriptions"] = route(azure.subscriptions_post),
    ["DELETE /api/connected-accounts/azure"] = route(azure.disconnect),
    ["GET /azure/oauth/login"] = route(oauth.login),
    ["GET /azure/oauth/status"] = route(oauth.status),
}

-- CORS preflight for every route above.
local paths = {}
for key in pairs(routes) do paths[key:match("^%u+ (.+)$")] = true end
for p in pairs(paths) do routes["OPTIONS " .. p] = users.preflight end

-- The setup scripts need no user: they are what a user runs before connecting.
for key, handler in pairs(require("handlers.setup").routes) do routes[key] = handler end

-- The OAuth callback: the browser comes back from Entra ID without X-User-ID or the API token;
-- the single-use state it carries is its credential (lua/handlers/oauth.lua). No preflight.
routes["GET /azure/callback"] = oauth.callback

return routes

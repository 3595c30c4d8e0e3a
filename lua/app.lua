-- The Aurora app: the route table served by `aurora serve --app lua`.
--
-- Keys are "METHOD /path/{capture}", values are handlers: function(req) -> status, body, headers.
-- Handlers live in lua/handlers/ (one file per endpoint family), field aliases in
-- lua/maps/aliases.lua and the error mapping in lua/maps/errors.lua. Edit, then reload with
-- `aurora reload` (or SIGHUP): the scripts are checked first, and a broken edit is refused while
-- the running version keeps serving. GET /healthz and GET /readyz are built into the engine.
local routes = {}

return routes

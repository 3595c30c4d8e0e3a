-- GET /azure/setup-script and GET /azure/setup-script-ps1: the service-principal setup scripts
-- (lua/scripts/azure-setup.sh and .ps1), served as downloads. The file is read at request
-- time from the scripts directory beside this one, so an edited script is served without a
-- reload, from `aurora serve --app lua` as from the installed share/aurora/lua.
--
-- lua/app.lua adds `routes` to its table:
--   for k, v in pairs(require("handlers.setup").routes) do routes[k] = v end
local M = {}

-- The directory of the app's scripts: ../scripts from this file.
local function scripts_dir()
    local src = debug.getinfo(1, "S").source
    local dir = src:match("^@(.*)/handlers/[^/]*$")
    if not dir then
        local path = package.searchpath("handlers.setup", package.path)
        dir = path and path:match("^(.*)/handlers/[^/]*$")
    end
    return (dir or ".") .. "/scripts"
end

M.SCRIPTS_DIR = scripts_dir()


local function read(name)
    local f = io.open(M.SCRIPTS_DIR .. "/" .. name, "rb")
    if not f then return nil end
    local text = f:read("a")
    f:close()
    return text
end


local function serve(file, download_name, content_type)
    return function(req)
        local text = read(file)
        if not text then
            return 500, {error = "setup script not available", code = "not_found",
                requestId = req.id}
        end
        return 200, text, {
            ["Content-Type"] = content_type,
            ["Cache-Control"] = "no-cache, no-store, must-revalidate",
            ["Pragma"] = "no-cache",
            ["Expires"] = "0",
            ["Content-Disposition"] = 'attachment; filename="' .. download_name .. '"',
            ["X-Content-Type-Options"] = "nosniff",
        }
    end
end


M.bash = serve("azure-setup.sh", "aurora-azure-setup.sh", "text/plain; charset=utf-8")
M.powershell = serve("azure-setup.ps1", "aurora-azure-setup.ps1", "text/plain; charset=utf-8")

M.routes = {
    ["GET /azure/setup-script"] = M.bash,
    ["GET /azure/setup-script-ps1"] = M.powershell,
}

return M

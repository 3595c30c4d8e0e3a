-- kube: being written.
local M = {}
function M.routes() return {} end
return M

-- Single flight across workers for an expensive read whose result lands in a cache (the
-- resource inventory, cost queries): the first caller for a key fetches, the others wait for
-- its result to show up in the cache instead of asking Azure again.
local time = require "aurora.time"

local M = {}

M.WAIT_STEP = 0.05        -- seconds between looks at the cache while another task fetches

--- Runs fetch() unless another task, in any worker, is fetching key: then waits (at most
-- opts.wait seconds) until cached() returns the result, and fetches itself when it does not
-- come. opts: lock_ttl (seconds a "fetching" mark lives, so a crashed fetch frees it), wait,
-- force (fetch even while another task does, as for ?refresh=1).
-- locks: an aurora.shared dictionary for the marks. Returns cached(), "hit" or what fetch()
-- returns; an error in fetch is raised again after the mark is removed.
-- Example: return flight.run(locks, key, {lock_ttl = 60, wait = 25}, cached, fetch)
function M.run(locks, key, opts, cached, fetch)
    local mine = locks:add(key, true, opts.lock_ttl)
    if not mine and not opts.force then
        local deadline = time.monotonic() + opts.wait
        while time.monotonic() < deadline and locks:get(key) do
            time.sleep(M.WAIT_STEP)
            local hit = cached()
            if hit then return hit, "hit" end
        end
        mine = locks:add(key, true, opts.lock_ttl)
    end
    local res = table.pack(pcall(fetch))
    if mine then locks:delete(key) end
    if not res[1] then error(res[2], 0) end
    return table.unpack(res, 2, res.n)
end

return M

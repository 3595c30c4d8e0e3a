-- The slow upstream for `make bench` (bench/run): every request sleeps 200 ms without
-- blocking its worker, so one instance holds 1000 requests in flight.
local time = require "aurora.time"

local DELAY_S = 0.2


local function slow(req)
    time.sleep(DELAY_S)
    return 200, { ok = true, delay_ms = 200 }
end


return {
    ["GET /slow"] = slow,
}

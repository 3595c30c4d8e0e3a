-- Tasks: sleep, timers, and where waiting is (not) allowed.
local T = require "aurora.test"
local time = require "aurora.time"
local timer = require "aurora.timer"
local secret = require "aurora.secret"
local log = require "aurora.log"


T.test("sleep yields for about the time asked", function()
    local t0 = time.monotonic()
    time.sleep(0.1)
    local dt = time.monotonic() - t0
    T.ok(dt >= 0.095 and dt < 0.5, "slept " .. dt)
end)


T.test("timer.at runs once and timer.every repeats until cancelled", function()
    local once, many = 0, 0
    timer.at(0.05, function() once = once + 1 end)
    local id = timer.every(0.02, function() many = many + 1 end)
    time.sleep(0.3)
    T.eq(once, 1)
    T.ok(many >= 5, "ran " .. many .. " times")
    T.eq(timer.cancel(id), true)
    local frozen = many
    time.sleep(0.1)
    T.eq(many, frozen)
    T.eq(timer.cancel(id), false)
end)


T.test("timer functions may wait, and several run side by side", function()
    local done = {}
    for i = 1, 3 do
        timer.at(0, function()
            time.sleep(0.1)
            done[#done + 1] = i
        end)
    end
    local t0 = time.monotonic()
    while #done < 3 and time.monotonic() - t0 < 2 do time.sleep(0.01) end
    T.eq(#done, 3)
    T.ok(time.monotonic() - t0 < 0.3, "concurrently")
    T.eq(timer.worker_id(), 1)
end)


T.test("waiting where a coroutine cannot yield raises a clear error", function()
    T.raises(function()
        table.sort({ 3, 2, 1 }, function(a, b) time.sleep(0) return a < b end)
    end, "cannot wait here")
    local co = coroutine.wrap(function() time.sleep(0) end)
    T.raises(co, "cannot wait here")
end)


T.test("a plain coroutine.yield gives way and carries on", function()
    local t0 = time.monotonic()
    coroutine.yield()
    T.ok(time.monotonic() - t0 < 0.5)
end)


T.test("sleep and timers refuse bad arguments", function()
    T.raises(function() time.sleep(-1) end, "bad argument #1 to 'sleep'")
    T.raises(function() timer.at("soon", print) end, "bad argument #1 to 'at'")
    T.raises(function() timer.every(0.001, print) end, "at least 0.01")
end)


T.test("a secret handle never shows its value and is wiped on close", function()
    local s = secret.new("hunter2")
    T.eq(tostring(s), "aurora.secret(redacted)")
    T.eq(s:len(), 7)
    T.eq(s:equals("hunter2"), true)
    T.eq(s:equals("hunter3"), false)
    s:close()
    T.eq(tostring(s), "aurora.secret(closed)")
    T.eq(secret.is_secret(s), false)
    T.raises(function() s:len() end, "closed secret")
    s:close()
end)


T.test("secret.from_env reads a variable without a Lua string, nil when unset", function()
    T.ok(secret.from_env("PATH"):len() > 0)
    T.eq(secret.from_env("AURORA_SURELY_UNSET_VARIABLE"), nil)
end)


T.test("log redacts sensitive fields and secret handles", function()
    T.eq(log.is_redacted("Authorization"), true)
    T.eq(log.is_redacted("client_secret"), true)
    T.eq(log.is_redacted("path"), false)
    T.raises(function() log.info({}) end, "bad argument #1")
    T.raises(function() log.info("m", "not a table") end, "bad argument #2")
end)


T.test("aurora run executes a script as a task with its arguments", function()
    local proc = require "aurora.proc"
    local dir = T.tmpdir()
    T.write_file(dir .. "/s.lua", [[
local time = require "aurora.time"
local a, b = ...
time.sleep(0.01)
io.stdout:write(a .. "+" .. b .. "\n")
return a == "x"
]])
    local p = T.spawn { proc.self_exe(), "run", dir .. "/s.lua", "x", "y" }
    T.eq({ T.wait_process(p.pid, 10) }, { "exited", 0 })
    T.eq(T.read_file(p.log_file), "x+y\n")
    p = T.spawn { proc.self_exe(), "run", dir .. "/s.lua", "z", "y" }
    T.eq({ T.wait_process(p.pid, 10) }, { "exited", 1 }, "returned false")
    T.write_file(dir .. "/quiet.lua", "local x = 1\n")
    p = T.spawn { proc.self_exe(), "run", dir .. "/quiet.lua" }
    T.eq({ T.wait_process(p.pid, 10) }, { "exited", 0 }, "returned nothing")
    T.write_file(dir .. "/bad.lua", "error('broken on purpose')\n")
    p = T.spawn { proc.self_exe(), "run", dir .. "/bad.lua" }
    T.eq({ T.wait_process(p.pid, 10) }, { "exited", 1 }, "raised")
    T.contains(T.read_file(p.log_file), "broken on purpose")
end)

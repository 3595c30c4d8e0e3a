local T = require "aurora.test"
local env = require "aurora.env"

-- Lua cannot set variables, so these tests lean on PATH (always set, never a number) and on a
-- name nobody sets. tests/c/test_env.c covers parsing of set values.
local UNSET = "AURORA_TEST_SURELY_UNSET_VARIABLE"


T.test("get returns the value of a set variable", function()
    T.eq(env.get("PATH"), os.getenv("PATH"))
end)

T.test("get returns the default, or nil, for an unset variable", function()
    T.eq(env.get(UNSET), nil)
    T.eq(env.get(UNSET, "fallback"), "fallback")
end)

T.test("int and bool return the default for an unset variable", function()
    T.eq(env.int(UNSET, 4), 4)
    T.eq(env.int(UNSET), nil)
    T.eq(env.bool(UNSET, true), true)
    T.eq(env.bool(UNSET, false), false)
end)

T.test("a malformed integer returns nil, a message naming the variable, and invalid", function()
    local v, msg, code = env.int("PATH", 1)
    T.eq(v, nil)
    T.eq(msg, "PATH must be an integer")
    T.eq(code, "invalid")
end)

T.test("a malformed boolean returns invalid", function()
    local v, msg, code = env.bool("PATH", false)
    T.eq(v, nil)
    T.match(msg, "^PATH must be a boolean")
    T.eq(code, "invalid")
end)

T.test("require returns the value of a set variable", function()
    T.eq(env.require("PATH"), os.getenv("PATH"))
end)

T.test("require raises for a missing variable", function()
    T.raises(function() env.require(UNSET) end,
        "missing required environment variable " .. UNSET)
end)

T.test("misuse raises", function()
    T.raises(function() env.get() end, "bad argument #1 to 'get'")
    T.raises(function() env.int(UNSET, "4") end, "bad argument #2 to 'int'")
    T.raises(function() env.int(UNSET, 1.5) end, "bad argument #2 to 'int'")
    T.raises(function() env.bool(UNSET, "yes") end, "bad argument #2 to 'bool'")
end)

T.test("there is no way to set a variable from Lua", function()
    T.eq(env.set, nil)
    T.eq(env.setenv, nil)
end)

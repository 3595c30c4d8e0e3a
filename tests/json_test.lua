local T = require "aurora.test"
local json = require "aurora.json"


local function fails(s)
    local v, msg, code = json.decode(s)
    T.eq(v, nil, "decoding " .. string.format("%q", s) .. " should fail")
    T.eq(code, "invalid")
    T.match(msg, " at byte %d+$")
    return msg
end


local function nested(depth)
    return string.rep("[", depth) .. string.rep("]", depth)
end


T.test("an empty array survives a round trip", function()
    T.eq(json.encode(json.decode("[]")), "[]")
end)

T.test("an empty object survives a round trip", function()
    T.eq(json.encode(json.decode("{}")), "{}")
end)

T.test("decoded arrays carry array_mt and objects do not", function()
    local v = json.decode('{"a":[1,2],"b":{}}')
    T.ok(json.is_array(v.a))
    T.eq(getmetatable(v.a), json.array_mt)
    T.ok(not json.is_array(v.b))
    T.ok(not json.is_array(v))
end)

T.test("null decodes to json.null and encodes back to null", function()
    local v = json.decode('[null,{"k":null}]')
    T.eq(v[1], json.null)
    T.eq(v[2].k, json.null)
    T.eq(json.encode(v), '[null,{"k":null}]')
    T.eq(json.encode(json.null), "null")
    T.eq(json.encode(nil), "null")
end)

T.test("scalars encode", function()
    T.eq(json.encode(true), "true")
    T.eq(json.encode(false), "false")
    T.eq(json.encode(42), "42")
    T.eq(json.encode(-9223372036854775807 - 1), "-9223372036854775808")
    T.eq(json.encode("hi"), '"hi"')
end)

T.test("floats use the shortest form that round-trips", function()
    T.eq(json.encode(0.1), "0.1")
    T.eq(json.encode(1.5), "1.5")
    T.eq(json.encode(1 / 3), "0.3333333333333333")
    T.eq(json.encode(0.1 + 0.2), "0.30000000000000004")
    T.eq(json.encode(3.0), "3")
    T.eq(json.encode(1e20), "1e+20")
    T.eq(json.decode(json.encode(2 ^ 0.5)), 2 ^ 0.5)
end)

T.test("integers stay integers and big numbers become floats", function()
    T.eq(math.type(json.decode("9223372036854775807")), "integer")
    T.eq(json.decode("-9223372036854775808"), math.mininteger)
    T.eq(math.type(json.decode("9223372036854775808")), "float")
    T.eq(math.type(json.decode("1.0")), "float")
    T.eq(math.type(json.decode("1e2")), "float")
    T.eq(json.decode("-0"), 0)
    T.eq(json.decode("1E-2"), 0.01)
    T.eq(json.decode("123456789012345678901234567890"), 1.2345678901234568e29)
end)

T.test("strings are escaped as JSON requires and slash is not", function()
    T.eq(json.encode('a"b\\c/d'), '"a\\"b\\\\c/d"')
    T.eq(json.encode("\n\t\r\b\f"), '"\\n\\t\\r\\b\\f"')
    T.eq(json.encode("\0\1\31\127"), '"\\u0000\\u0001\\u001f\127"')
    T.eq(json.encode("héllo €𝄞"), '"héllo €𝄞"')
end)

T.test("escapes and surrogate pairs decode to UTF-8", function()
    T.eq(json.decode('"\\u00e9\\u20AC\\ud834\\udd1e"'), "é€𝄞")
    T.eq(json.decode('"\\"\\\\\\/\\b\\f\\n\\r\\t"'), '"\\/\b\f\n\r\t')
    T.eq(json.decode('"a\\u0000b"'), "a\0b")
    T.eq(json.decode('"plain"'), "plain")
end)

T.test("strings round-trip byte for byte", function()
    local s = "x\0y\"z\\\n é 𝄞 \127"
    T.eq(json.decode(json.encode(s)), s)
end)

T.test("sequences encode as arrays and string-keyed tables as objects", function()
    T.eq(json.encode({1, 2, 3}), "[1,2,3]")
    T.eq(json.encode({a = 1}), '{"a":1}')
    T.eq(json.encode({{}, {x = {true}}}), '[{},{"x":[true]}]')
end)

T.test("json.array marks tables so empty ones encode as arrays", function()
    T.eq(json.encode(json.array({})), "[]")
    T.eq(json.encode(json.array()), "[]")
    T.eq(json.encode({list = json.array({})}), '{"list":[]}')
    local t = {}
    T.eq(json.array(t), t)
    T.ok(json.is_array(t))
    T.ok(not json.is_array({}))
    T.ok(not json.is_array("x"))
end)

T.test("holes in a marked array encode as null", function()
    local t = json.array({1, nil, 3})
    T.eq(json.encode(t), "[1,null,3]")
end)

T.test("sort_keys gives deterministic output", function()
    T.eq(json.encode({b = 1, a = {d = 2, c = 3}, aa = 0}, {sort_keys = true}),
        '{"a":{"c":3,"d":2},"aa":0,"b":1}')
end)

T.test("pretty output is indented by two spaces", function()
    local s = json.encode({a = {1, 2}, b = {}, c = json.array()}, {pretty = true, sort_keys = true})
    T.eq(s, '{\n  "a": [\n    1,\n    2\n  ],\n  "b": {},\n  "c": []\n}')
    T.eq(json.decode(s).a[2], 2)
end)

T.test("encoding what JSON cannot hold returns invalid", function()
    local cases = {
        {print, "cannot encode a function"},
        {{f = print}, "cannot encode a function"},
        {0 / 0, "NaN"},
        {math.huge, "NaN or infinity"},
        {{1, 2, x = 3}, "mixes array and hash keys"},
        {{x = 3, [1] = 1}, "mixes array and hash keys"},
        {{[1] = 1, [3] = 3}, "sparse array"},
        {{[0] = 1}, "sparse array"},
        {{[1.5] = 1}, "key must be a string"},
        {{[true] = 1}, "key must be a string"},
        {"\xff", "invalid UTF%-8"},
        {"\xed\xa0\x80", "invalid UTF%-8"},
        {"\xc0\xaf", "invalid UTF%-8"},
        {io.stdout, "cannot encode a userdata"},
    }
    for i, c in ipairs(cases) do
        local s, msg, code = json.encode(c[1])
        T.eq(s, nil, "case " .. i)
        T.eq(code, "invalid", "case " .. i)
        T.match(msg, c[2])
    end
end)

T.test("cycles and deep nesting are refused", function()
    local t = {}
    t.self = t
    local s, msg, code = json.encode(t)
    T.eq(s, nil)
    T.eq(code, "invalid")
    T.match(msg, "deeper than 128")
    local deep = {}
    local cur = deep
    for _ = 1, 127 do
        cur[1] = {}
        cur = cur[1]
    end
    T.ok(json.encode(deep))
    cur[1] = {}
    T.eq(select(3, json.encode(deep)), "invalid")
end)

T.test("decoding accepts 128 levels and refuses 129", function()
    T.ok(json.decode(nested(128)))
    T.match(fails(nested(129)), "deeper than 128")
    T.match(fails(string.rep('{"a":', 200) .. "1" .. string.rep("}", 200)), "deeper than 128")
end)

T.test("malformed documents are refused with the byte offset", function()
    T.eq(fails(""), "unexpected end of input at byte 0")
    T.eq(fails("  "), "unexpected end of input at byte 2")
    T.eq(fails("[1,]"), "unexpected character at byte 3")
    T.eq(fails("[1] x"), "unexpected data after the value at byte 4")
    local bad = {
        "{", "[", "[1", '{"a"', '{"a":', '{"a":1', '{"a":1,}', "{1:2}", "{'a':1}", "[1 2]",
        "01", "-01", "1.", ".5", "+1", "1e", "1e+", "-", "0x10", "NaN", "Infinity", "-Infinity",
        "nul", "tru", "True", "//c\n1", "/*c*/1", "[1,,2]", '"abc', '"\\x"', '"\\u12"',
        '"\\ud800"', '"\\udc00"', '"\\ud800\\u0041"', '"a\nb"', '"tab\there"', "\"\xff\"",
        "\"\xc0\x80\"", "\xef\xbb\xbf{}", "1e400", "[1]]", "{}}", "\0",
    }
    for _, s in ipairs(bad) do
        fails(s)
    end
end)

T.test("duplicate keys keep the last value", function()
    T.eq(json.decode('{"a":1,"a":2}').a, 2)
end)

T.test("whitespace around values is allowed", function()
    T.eq(json.decode(' \t\r\n{ "a" : [ 1 , 2 ] }\n ').a[2], 2)
end)

T.test("a larger document round-trips", function()
    local doc = '{"id":"/subscriptions/x","n":-12,"f":0.5,"ok":true,"tags":{},'
        .. '"list":[{"a":null},[],[[]],"\\u00e9"]}'
    local v = json.decode(doc)
    T.eq(json.decode(json.encode(v)), v)
    T.eq(json.encode(v.list), '[{"a":null},[],[[]],"é"]')
end)

T.test("output over the size limit returns too_large", function()
    local big = string.rep("x", 1024 * 1024)
    local list = {}
    for i = 1, 65 do
        list[i] = big
    end
    local s, msg, code = json.encode(list)
    T.eq(s, nil)
    T.eq(code, "too_large")
    T.match(msg, "too large")
    T.ok(json.encode({big}))
end)

T.test("misuse raises", function()
    T.raises(function() json.decode() end, "bad argument #1 to 'decode'")
    T.raises(function() json.decode({}) end, "bad argument #1 to 'decode'")
    T.raises(function() json.encode() end, "bad argument #1 to 'encode'")
    T.raises(function() json.encode({}, {indent = 2}) end, "unknown option 'indent'")
    T.raises(function() json.encode({}, {pretty = 1}) end, "must be a boolean")
    T.raises(function() json.array(1) end, "bad argument #1 to 'array'")
end)

T.test("encode runs no metamethods", function()
    local t = setmetatable({}, {__index = function() error("called") end, __pairs = error})
    T.eq(json.encode(t), "{}")
end)

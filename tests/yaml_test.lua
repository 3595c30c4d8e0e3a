local T = require "aurora.test"
local json = require "aurora.json"
local yaml = require "aurora.yaml"


-- The classic bomb: each level is a list of nine aliases of the level before.
local function bomb(levels)
    local lines = { "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]" }
    for i = 1, levels do
        local refs = {}
        for j = 1, 9 do refs[j] = "*a" .. (i - 1) end
        lines[#lines + 1] = string.format("a%d: &a%d [%s]", i, i, table.concat(refs, ", "))
    end
    return table.concat(lines, "\n") .. "\n"
end


T.test("decode turns mappings into tables and sequences into json arrays", function()
    local v = yaml.decode("name: web\nports:\n- 80\n- 443\nlabels: {app: web}\nempty: []\n")
    T.eq(v.name, "web")
    T.eq(v.ports, { 80, 443 })
    T.ok(json.is_array(v.ports))
    T.eq(getmetatable(v.ports), json.array_mt)
    T.eq(v.labels, { app = "web" })
    T.ok(not json.is_array(v.labels))
    T.ok(json.is_array(v.empty))
    T.eq(json.encode(v.empty), "[]", "an empty sequence encodes back as an array")
    T.eq(json.encode({ x = v.ports }), '{"x":[80,443]}')
end)

T.test("plain scalars follow the YAML 1.2 core schema and quoted scalars stay strings", function()
    local v = yaml.decode([[
i: 42
neg: -7
hex: 0x1F
oct: 0o17
f: 1.5
exp: 1e3
inf: -.inf
t: true
F: FALSE
yes: yes
on: on
ip: 10.0.0.1
version: "1.30"
qt: 'true'
qn: "null"
lit: |
  two
  lines
folded: >
  one
  line
]])
    T.eq(math.type(v.i), "integer")
    T.eq(v.i, 42)
    T.eq(v.neg, -7)
    T.eq(v.hex, 31)
    T.eq(v.oct, 15)
    T.eq(math.type(v.f), "float")
    T.eq(v.f, 1.5)
    T.eq(v.exp, 1000.0)
    T.eq(v.inf, -math.huge)
    T.eq(v.t, true)
    T.eq(v.F, false)
    T.eq(v.yes, "yes", "YAML 1.1 booleans are strings in 1.2")
    T.eq(v.on, "on")
    T.eq(v.ip, "10.0.0.1")
    T.eq(v.version, "1.30")
    T.eq(v.qt, "true")
    T.eq(v.qn, "null")
    T.eq(v.lit, "two\nlines\n")
    T.eq(v.folded, "one line\n")
    local nan = yaml.decode("x: .nan").x
    T.ok(nan ~= nan)
end)

T.test("null is absent in mappings, json.null in sequences and for a whole document", function()
    local v = yaml.decode("a: ~\nb: null\nc:\nlist: [1, ~, 3]\nd: 1\n")
    T.eq(v.a, nil)
    T.eq(v.b, nil)
    T.eq(v.c, nil)
    T.eq(v.d, 1)
    T.eq(#v.list, 3)
    T.eq(v.list[2], json.null)
    T.eq(yaml.null, json.null)
    T.eq(json.encode(v.list), "[1,null,3]")
    T.eq(yaml.decode("~"), json.null)
    T.eq(yaml.decode(""), json.null, "an empty stream")
    local kept = yaml.decode("a: ~\nb: 2\n", { keep_nulls = true })
    T.eq(kept.a, json.null)
    T.eq(json.encode(kept, { sort_keys = true }), '{"a":null,"b":2}')
end)

T.test("keys are strings as written, whatever they look like", function()
    local v = yaml.decode("1: one\ntrue: yes\n~: n\n'2': two\n")
    T.eq(v["1"], "one")
    T.eq(v["true"], "yes")
    T.eq(v["~"], "n")
    T.eq(v["2"], "two")
    T.eq(v[1], nil)
end)

T.test("decode_all returns every document of a Kubernetes manifest stream", function()
    local docs = yaml.decode_all([[
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
spec:
  replicas: 2
  template:
    spec:
      containers:
      - name: web
        image: nginx:1.27
        args: []
---
# a comment-only document is still a (null) document
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
...
]])
    T.eq(#docs, 4)
    T.ok(json.is_array(docs))
    T.eq(docs[1].kind, "Namespace")
    T.eq(docs[2].spec.replicas, 2)
    T.eq(docs[2].spec.template.spec.containers[1].image, "nginx:1.27")
    T.eq(docs[3], json.null)
    T.eq(docs[4].kind, "Service")
    T.eq(yaml.decode("kind: A\n---\nkind: B\n").kind, "A", "decode takes the first document")
    T.eq(#yaml.decode_all(""), 0)
    T.ok(json.is_array(yaml.decode_all("")))
end)

T.test("decode_all reads the metrics-server manifest the app ships", function()
    local text = assert(T.read_file("lua/manifests/metrics-server.yaml"))
    local docs = assert(yaml.decode_all(text))
    local kinds = 0
    for _ in text:gmatch("\nkind: ") do kinds = kinds + 1 end
    if text:sub(1, 6) == "kind: " then kinds = kinds + 1 end
    local seen = 0
    for _, d in ipairs(docs) do
        if d ~= json.null then
            seen = seen + 1
            T.match(d.kind, "^%u%a+$")
            T.ok(d.apiVersion)
            T.ok(d.metadata.name)
        end
    end
    T.eq(seen, kinds)
end)

T.test("anchors and aliases expand into independent copies; merge keys stay keys", function()
    local v = yaml.decode([[
defaults: &d
  cpu: 100m
  tags: [a, b]
web:
  res: *d
  name: &n web
  alias: *n
merged:
  <<: *d
  cpu: 200m
]])
    T.eq(v.web.res, { cpu = "100m", tags = { "a", "b" } })
    T.ok(v.web.res ~= v.defaults, "a copy, not the same table")
    v.web.res.tags[1] = "changed"
    T.eq(v.defaults.tags[1], "a")
    T.eq(v.web.alias, "web")
    T.eq(v.merged["<<"].cpu, "100m")
    T.eq(v.merged.cpu, "200m")
end)

T.test("a billion-laughs bomb fails fast with too many nodes", function()
    local t0 = os.clock()
    local v, msg, code = yaml.decode(bomb(9))
    T.eq(v, nil)
    T.eq(code, "too_large")
    T.contains(msg, "too many nodes (alias expansion)")
    T.ok(os.clock() - t0 < 1, "fails before expanding")
    -- A small expansion is fine, and a lower limit catches it.
    T.eq(#yaml.decode(bomb(2)).a2, 9)
    v, msg, code = yaml.decode(bomb(3), { max_nodes = 500 })
    T.eq(code, "too_large")
    T.contains(msg, "alias expansion")
end)

T.test("nesting deeper than the limit fails, and the limit can be raised", function()
    local deep = string.rep("[", 100) .. string.rep("]", 100)
    local v, msg, code = yaml.decode(deep)
    T.eq(v, nil)
    T.eq(code, "too_large")
    T.eq(msg, "line 1, column 65: nesting deeper than 64")
    v = yaml.decode(deep, { max_depth = 128 })
    T.ok(json.is_array(v))
    local block = {}
    for i = 1, 70 do block[i] = string.rep("  ", i - 1) .. "k" .. i .. ":" end
    v, msg, code = yaml.decode(table.concat(block, "\n") .. " x\n")
    T.eq(code, "too_large")
    T.contains(msg, "nesting deeper than 64")
end)

T.test("huge input and huge scalars are refused", function()
    local v, msg, code = yaml.decode("k: " .. string.rep("x", 1024 * 1024 + 1))
    T.eq(v, nil)
    T.eq(code, "too_large")
    T.eq(msg, "line 1, column 4: a scalar is longer than 1048576 bytes")
    v, msg, code = yaml.decode(string.rep("a", 4 * 1024 * 1024 + 1))
    T.eq(code, "too_large")
    T.eq(msg, "input is larger than 4194304 bytes")
    v, msg, code = yaml.decode("k: abcdef", { max_scalar = 4 })
    T.eq(code, "too_large")
    v, msg, code = yaml.decode("k: abcdef", { max_bytes = 4 })
    T.eq(msg, "input is larger than 4 bytes")
    v, msg, code = yaml.decode("- &x " .. string.rep("y", 1000) .. "\n" ..
        string.rep("- *x\n", 20), { max_expanded = 5000 })
    T.eq(code, "too_large")
    T.contains(msg, "bytes of scalars (alias expansion)")
end)

T.test("syntax errors return nil, a message with line and column, and invalid", function()
    local cases = {
        { "a: 1\nb:\n  c: 2\n d: 3\n", "^line 4, column 2: did not find expected key" },
        { "a:\n\t- 1\n", "^line 2, column 1: found character that cannot start any token" },
        { "a: [1, 2\n", "^line 2, column 1: did not find expected ',' or ']'" },
        { "a: \"open\n", "found unexpected end of stream" },
        { "a: 1\nb: x\1y\n", "^line 2, column 5: control characters are not allowed" },
        { "a: \255\n", "^line 1, column 4: invalid leading UTF%-8 octet" },
        { "a: *nope\n", "^line 1, column 4: alias to an unknown anchor" },
        { "? [a]\n: 1\n", "^line 1, column 3: a mapping key must be a scalar" },
        { "a: 1\na: 2\n", "^line 2, column 1: duplicate key in a mapping" },
        { "a: !!int abc\n", "value does not match its tag !!int" },
        { "@@@ %%% {{{", "cannot start any token" },
    }
    for _, c in ipairs(cases) do
        local v, msg, code = yaml.decode(c[1])
        T.eq(v, nil, c[1])
        T.eq(code, "invalid", c[1])
        T.match(msg, c[2], c[1])
    end
end)

T.test("every truncation of a document either decodes or fails cleanly", function()
    local full = "apiVersion: v1\nitems:\n- {name: a, value: \"x\"}\n- name: b\n  list: [1, 2]\n"
    local failed = 0
    for n = 0, #full - 1 do
        local v, msg, code = yaml.decode(full:sub(1, n))
        if v == nil then
            failed = failed + 1
            T.eq(code, "invalid", full:sub(1, n))
            T.match(msg, "^line %d+, column %d+: ")
        end
    end
    T.ok(failed > 0)
end)

T.test("error messages never quote the input", function()
    local _, msg = yaml.decode("token: s3cr3t-value\n  bad: [")
    T.not_contains(msg, "s3cr3t")
    _, msg = yaml.decode("password: hunter2\npassword: hunter3\n")
    T.not_contains(msg, "hunter")
end)

T.test("misuse raises", function()
    T.raises(function() yaml.decode() end, "bad argument #1 to 'decode' %(string expected")
    T.raises(function() yaml.decode({}) end, "string expected")
    T.raises(function() yaml.decode("a: 1", 5) end, "table expected")
    T.raises(function() yaml.decode("a: 1", { max_nodez = 1 }) end, "unknown option 'max_nodez'")
    T.raises(function() yaml.decode("a: 1", { max_nodes = 0 }) end,
        "option 'max_nodes' must be a positive integer")
    T.raises(function() yaml.decode("a: 1", { max_depth = 1.5 }) end, "positive integer")
    T.raises(function() yaml.decode("a: 1", { max_depth = 5000 }) end, "at most 1000")
    T.raises(function() yaml.decode_all("a: 1", { keep_nulls = "yes" }) end, "boolean")
end)

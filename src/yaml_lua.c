/*
 * yaml_lua.c: the Lua module aurora.yaml over yaml.c. It loads a stream into the C tree with the
 * loader's limits, then builds Lua values from it: mappings become tables with string keys,
 * sequences become arrays carrying aurora.json's array_mt (so an empty sequence encodes back
 * as []), null is json.null where a value must hold a place (sequence items, whole documents)
 * and an absent key in a mapping unless opts.keep_nulls asks for json.null there too.
 * The tree lives in a userdata until the values are built, so a raise (out of memory) leaks
 * nothing. Strings decoded here are Lua strings: credentials belong in aurora.kubeconfig, which
 * turns them into aurora.secret handles. It also defines the Lua helpers of yaml.h, which
 * aurora.kubeconfig shares: the limit options and json.array_mt.
 */
#include <limits.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "aurora/aurora.h"
#include "aurora/json.h"
#include "aurora/vm.h"
#include "aurora/yaml.h"

#define TREE_MT "aurora.yaml.tree"
/* Same registry key as json.c and json_lua.c; whichever runs first creates the table. */
#define ARRAY_MT_KEY "aurora.json.array_mt"

typedef struct tree {
    aurora_yaml_doc *doc;
} tree;

static int tree_gc(lua_State *L)
{
    tree *t = luaL_checkudata(L, 1, TREE_MT);

    aurora_yaml_free(&t->doc);
    return 0;
}

/* Pushes an empty tree userdata that frees its document when collected. Stack: pushes 1. */
static tree *new_tree(lua_State *L)
{
    tree *t = lua_newuserdatauv(L, sizeof(*t), 0);

    t->doc = NULL;
    if (luaL_newmetatable(L, TREE_MT)) {
        lua_pushcfunction(L, tree_gc);
        lua_setfield(L, -2, "__gc");
        lua_pushcfunction(L, tree_gc);
        lua_setfield(L, -2, "__close");
    }
    lua_setmetatable(L, -2);
    return t;
}

static void push_node(lua_State *L, const aurora_yaml_node *node, int mt, int keep_nulls);

/* Pushes the n nodes at items as an array carrying the metatable at index mt. Stack: pushes 1;
 * may raise (out of memory). */
static void push_array(lua_State *L, aurora_yaml_node *const *items, size_t n, int mt,
                       int keep_nulls)
{
    size_t i;

    lua_createtable(L, n > (size_t)INT_MAX ? 0 : (int)n, 0);
    for (i = 0; i < n; i++) {
        push_node(L, items[i], mt, keep_nulls);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_pushvalue(L, mt);
    lua_setmetatable(L, -2);
}

/* Pushes the Lua value of node; the array metatable is at index mt. Recursion is bounded by the
 * loader's depth limit. Stack: pushes 1; may raise (out of memory). */
static void push_node(lua_State *L, const aurora_yaml_node *node, int mt, int keep_nulls)
{
    size_t i;

    luaL_checkstack(L, 4, "YAML nested too deeply");
    switch (node->type) {
    case AURORA_YAML_NULL:
        lua_pushlightuserdata(L, NULL);
        return;
    case AURORA_YAML_BOOL:
        lua_pushboolean(L, node->v.b);
        return;
    case AURORA_YAML_INT:
        lua_pushinteger(L, (lua_Integer)node->v.i);
        return;
    case AURORA_YAML_FLOAT:
        lua_pushnumber(L, (lua_Number)node->v.f);
        return;
    case AURORA_YAML_STR:
        lua_pushlstring(L, node->text, node->len);
        return;
    case AURORA_YAML_SEQ:
        push_array(L, node->items, node->n, mt, keep_nulls);
        return;
    case AURORA_YAML_MAP:
        lua_createtable(L, 0, node->n > (size_t)INT_MAX ? 0 : (int)node->n);
        for (i = 0; i < node->n; i++) {
            const aurora_yaml_node *k = node->items[2 * i], *v = node->items[2 * i + 1];

            if (v->type == AURORA_YAML_NULL && !keep_nulls)
                continue;
            lua_pushlstring(L, k->text, k->len);
            push_node(L, v, mt, keep_nulls);
            lua_rawset(L, -3);
        }
        return;
    }
    lua_pushnil(L);
}

/* See yaml.h. */
void aurora_yaml_read_limits(lua_State *L, int idx, const char *extra, aurora_yaml_limits *lim)
{
    /* The limits first, in the order of fields; extra (or NULL) ends the list. */
    const char *const names[] = {"max_bytes",    "max_depth", "max_nodes", "max_scalar",
                                 "max_expanded", extra,       NULL};
    size_t *fields[] = {&lim->max_bytes, &lim->max_depth, &lim->max_nodes, &lim->max_scalar,
                        &lim->max_expanded};
    size_t i;

    memset(lim, 0, sizeof(*lim));
    if (lua_isnoneornil(L, idx))
        return;
    luaL_checktype(L, idx, LUA_TTABLE);
    aurora_vm_check_options(L, idx, names);
    for (i = 0; i < AURORA_COUNT(fields); i++) {
        int isint = 0;
        lua_Integer v;

        if (lua_getfield(L, idx, names[i]) != LUA_TNIL) {
            v = lua_tointegerx(L, -1, &isint);
            if (!isint || v < 1)
                luaL_argerror(
                    L, idx, lua_pushfstring(L, "option '%s' must be a positive integer", names[i]));
            if (fields[i] == &lim->max_depth && v > AURORA_YAML_DEPTH_CEILING)
                luaL_argerror(L, idx,
                              lua_pushfstring(L, "option 'max_depth' must be at most %d",
                                              AURORA_YAML_DEPTH_CEILING));
            *fields[i] = (size_t)v;
        }
        lua_pop(L, 1);
    }
}

/* Reads opts at idx (absent, or a table) into lim and *keep_nulls. Raises on an unknown option
 * or a value out of range. Stack: unchanged. */
static void read_opts(lua_State *L, int idx, aurora_yaml_limits *lim, int *keep_nulls)
{
    aurora_yaml_read_limits(L, idx, "keep_nulls", lim);
    *keep_nulls = 0;
    if (lua_isnoneornil(L, idx))
        return;
    if (lua_getfield(L, idx, "keep_nulls") != LUA_TNIL) {
        if (!lua_isboolean(L, -1))
            luaL_argerror(L, idx, "option 'keep_nulls' must be a boolean");
        *keep_nulls = lua_toboolean(L, -1);
    }
    lua_pop(L, 1);
}

/* The shared body of decode and decode_all. Stack: pushes the result (1) or nil, msg, code
 * (3); may raise for misuse. */
static int decode(lua_State *L, int all)
{
    aurora_yaml_limits lim;
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    char err[256];
    int keep_nulls, mt, rc;
    tree *t;

    read_opts(L, 2, &lim, &keep_nulls);
    lua_settop(L, 2);
    aurora_json_push_array_mt(L);
    mt = lua_gettop(L);
    t = new_tree(L);
    rc = aurora_yaml_load(s, n, &lim, &t->doc, err, sizeof(err));
    if (rc)
        return aurora_vm_fail(L, rc, "%s", err);
    if (all)
        push_array(L, t->doc->docs, t->doc->ndocs, mt, keep_nulls);
    else if (t->doc->ndocs) {
        push_node(L, t->doc->docs[0], mt, keep_nulls);
    } else {
        lua_pushlightuserdata(L, NULL);
    }
    aurora_yaml_free(&t->doc);
    return 1;
}

/* yaml.decode(text [, opts]) -> value | nil, msg, code: the first document (json.null for an
 * empty stream). */
static int l_decode(lua_State *L)
{
    return decode(L, 0);
}

/* yaml.decode_all(text [, opts]) -> array of documents | nil, msg, code */
static int l_decode_all(lua_State *L)
{
    return decode(L, 1);
}

int luaopen_aurora_yaml(lua_State *L)
{
    static const luaL_Reg funcs[] = {
        {"decode", l_decode},
        {"decode_all", l_decode_all},
        {NULL, NULL},
    };

    luaL_newlib(L, funcs);
    lua_pushlightuserdata(L, NULL);
    lua_setfield(L, -2, "null");
    return 1;
}

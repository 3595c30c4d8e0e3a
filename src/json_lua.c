/*
 * json_lua.c: the Lua module aurora.json, a thin binding over json.c. encode keeps one output
 * buffer per VM (an upvalue userdata) so the common request does not allocate, and so a Lua error
 * while pushing the result cannot leak it. A finalizer that runs during an encode and encodes
 * too finds the buffer busy and uses a buffer of its own.
 */
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "aurora/aurora.h"
#include "aurora/buf.h"
#include "aurora/json.h"
#include "aurora/vm.h"

/* Same registry key as json.c, which creates the table if the binding has not yet. */
#define ARRAY_MT_KEY "aurora.json.array_mt"
#define SCRATCH_MT "aurora.json.scratch"
#define ENCODE_MAX (64 * 1024 * 1024)
/* Output buffers bigger than this are released after the call instead of kept for reuse. */
#define SCRATCH_KEEP (256 * 1024)

#define JSON_PRETTY AURORA_JSON_PRETTY
#define JSON_SORT_KEYS AURORA_JSON_SORT_KEYS

typedef struct scratch {
    aurora_buf b;
    int busy;
} scratch;

static int l_scratch_gc(lua_State *L)
{
    scratch *s = luaL_checkudata(L, 1, SCRATCH_MT);

    aurora_buf_free(&s->b);
    return 0;
}

/* Reads the options table at idx into encoder flags; raises on unknown options. */
static int check_opts(lua_State *L, int idx)
{
    int flags = 0;

    if (lua_isnoneornil(L, idx))
        return 0;
    luaL_checktype(L, idx, LUA_TTABLE);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "?";
        int bit = strcmp(k, "pretty") == 0      ? JSON_PRETTY
                  : strcmp(k, "sort_keys") == 0 ? JSON_SORT_KEYS
                                                : 0;

        if (!bit)
            luaL_argerror(L, idx, lua_pushfstring(L, "unknown option '%s'", k));
        if (!lua_isboolean(L, -1))
            luaL_argerror(L, idx, lua_pushfstring(L, "option '%s' must be a boolean", k));
        if (lua_toboolean(L, -1))
            flags |= bit;
        lua_pop(L, 1);
    }
    return flags;
}

/* json.encode(value [, {pretty=, sort_keys=}]) -> string | nil, msg, code */
static int l_encode(lua_State *L)
{
    scratch *s = lua_touserdata(L, lua_upvalueindex(1));
    aurora_buf own, *b = &s->b;
    char err[128];
    int flags, rc;

    luaL_checkany(L, 1);
    flags = check_opts(L, 2);
    lua_settop(L, 1);
    if (s->busy) {
        aurora_buf_init(&own, ENCODE_MAX);
        b = &own;
    }
    s->busy = 1;
    aurora_buf_reset(b);
    rc = aurora_json_encode_opts(L, 1, flags, b, err, sizeof(err));
    if (b == &s->b)
        s->busy = 0;
    if (rc == 0)
        lua_pushlstring(L, b->data ? b->data : "", b->len);
    if (b != &s->b || b->cap > SCRATCH_KEEP)
        aurora_buf_free(b);
    if (rc)
        return aurora_vm_fail(L, rc, "%s", err);
    return 1;
}

/* json.decode(string) -> value | nil, msg, code */
static int l_decode(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    char err[128];
    int rc = aurora_json_decode(L, s, n, err, sizeof(err));

    if (rc)
        return aurora_vm_fail(L, rc, "%s", err);
    return 1;
}

/* json.array([t]) -> t, marked as an array (a new empty one without t). */
static int l_array(lua_State *L)
{
    if (lua_isnoneornil(L, 1)) {
        lua_settop(L, 0);
        lua_createtable(L, 0, 0);
    } else {
        luaL_checktype(L, 1, LUA_TTABLE);
        lua_settop(L, 1);
    }
    lua_getfield(L, LUA_REGISTRYINDEX, ARRAY_MT_KEY);
    lua_setmetatable(L, 1);
    return 1;
}

/* json.is_array(v) -> boolean: whether v is a table carrying json.array_mt. */
static int l_is_array(lua_State *L)
{
    int yes = 0;

    luaL_checkany(L, 1);
    if (lua_type(L, 1) == LUA_TTABLE && lua_getmetatable(L, 1)) {
        lua_getfield(L, LUA_REGISTRYINDEX, ARRAY_MT_KEY);
        yes = lua_rawequal(L, -1, -2);
    }
    lua_pushboolean(L, yes);
    return 1;
}

int luaopen_aurora_json(lua_State *L)
{
    static const luaL_Reg funcs[] = {
        {"decode", l_decode},
        {"array", l_array},
        {"is_array", l_is_array},
        {NULL, NULL},
    };
    scratch *s;

    luaL_newlib(L, funcs);
    if (lua_getfield(L, LUA_REGISTRYINDEX, ARRAY_MT_KEY) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_createtable(L, 0, 0);
        lua_pushvalue(L, -1);
        lua_setfield(L, LUA_REGISTRYINDEX, ARRAY_MT_KEY);
    }
    lua_setfield(L, -2, "array_mt");
    lua_pushlightuserdata(L, NULL);
    lua_setfield(L, -2, "null");

    s = lua_newuserdatauv(L, sizeof(*s), 0);
    aurora_buf_init(&s->b, ENCODE_MAX);
    s->busy = 0;
    if (luaL_newmetatable(L, SCRATCH_MT)) {
        lua_pushcfunction(L, l_scratch_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    lua_pushcclosure(L, l_encode, 1);
    lua_setfield(L, -2, "encode");
    return 1;
}

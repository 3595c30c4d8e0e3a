/*
 * shared_lua.c: the Lua module aurora.shared, a thin binding over shared.c. A handle is a
 * userdata holding a pointer to a process-wide dictionary, which lives until process exit, so a
 * handle owns nothing. Values are copied out of the dictionary under its lock and pushed after
 * the lock is released (inside shared.c), never the other way round.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "aurora/aurora.h"
#include "aurora/shared.h"
#include "aurora/vm.h"

#define DICT_MT "aurora.shared.dict"

typedef struct handle {
    aurora_shared_dict *d; /* NULL until shared.dict has found the dictionary */
} handle;

static aurora_shared_dict *check_dict(lua_State *L)
{
    handle *h = luaL_checkudata(L, 1, DICT_MT);

    if (!h->d)
        luaL_argerror(L, 1, "dictionary handle not initialised");
    return h->d;
}

/* Reads the Lua value at idx into *v (borrowing string bytes); raises on other types. */
static void check_value(lua_State *L, int idx, aurora_shared_value *v, int allow_nil)
{
    memset(v, 0, sizeof(*v));
    switch (lua_type(L, idx)) {
    case LUA_TSTRING:
        v->type = AURORA_SHARED_STRING;
        v->str = (char *)lua_tolstring(L, idx, &v->len);
        return;
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx)) {
            v->type = AURORA_SHARED_INTEGER;
            v->u.i = (int64_t)lua_tointeger(L, idx);
        } else {
            v->type = AURORA_SHARED_FLOAT;
            v->u.f = (double)lua_tonumber(L, idx);
        }
        return;
    case LUA_TBOOLEAN:
        v->type = AURORA_SHARED_BOOLEAN;
        v->u.b = lua_toboolean(L, idx);
        return;
    case LUA_TNIL:
    case LUA_TNONE:
        if (allow_nil)
            return;
        break;
    default:
        break;
    }
    luaL_typeerror(L, idx, "string, number or boolean");
}

/* Like check_value, for a number only (no string coercion). */
static void check_number(lua_State *L, int idx, aurora_shared_value *v)
{
    if (lua_type(L, idx) != LUA_TNUMBER)
        luaL_typeerror(L, idx, "number");
    check_value(L, idx, v, 0);
}

static double opt_ttl(lua_State *L, int idx)
{
    double ttl = (double)luaL_optnumber(L, idx, 0);

    luaL_argcheck(L, ttl >= 0 && ttl <= AURORA_SHARED_TTL_MAX, idx,
                  "ttl must be between 0 and 1e9 seconds");
    return ttl;
}

/* Pushes v and frees its copy. */
static void push_value(lua_State *L, aurora_shared_value *v)
{
    switch (v->type) {
    case AURORA_SHARED_STRING: lua_pushlstring(L, v->str, v->len); break;
    case AURORA_SHARED_INTEGER: lua_pushinteger(L, (lua_Integer)v->u.i); break;
    case AURORA_SHARED_FLOAT: lua_pushnumber(L, (lua_Number)v->u.f); break;
    case AURORA_SHARED_BOOLEAN: lua_pushboolean(L, v->u.b); break;
    default: lua_pushnil(L); break;
    }
    aurora_shared_value_free(v);
}

static int fail(lua_State *L, aurora_shared_dict *d, int rc)
{
    const char *what = rc == AURORA_E_TOO_LARGE ? "key or value too large"
                       : rc == AURORA_E_NOMEM   ? "out of memory"
                                                : "operation failed";

    return aurora_vm_fail(L, rc, "shared dictionary '%s': %s", aurora_shared_name(d), what);
}

/* shared.dict(name [, {max_items=, max_bytes=}]) -> handle | nil, msg, code */
static int l_dict(lua_State *L)
{
    size_t n, max_items = 0, max_bytes = 0;
    const char *name = luaL_checklstring(L, 1, &n);
    handle *h;
    int rc;

    luaL_argcheck(L, n > 0 && n <= AURORA_SHARED_NAME_MAX && strlen(name) == n, 1,
                  "name must be 1 to 128 bytes without NUL");
    if (!lua_isnoneornil(L, 2)) {
        luaL_checktype(L, 2, LUA_TTABLE);
        lua_pushnil(L);
        while (lua_next(L, 2)) {
            const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "?";
            lua_Integer v;

            if (strcmp(k, "max_items") != 0 && strcmp(k, "max_bytes") != 0)
                luaL_argerror(L, 2, lua_pushfstring(L, "unknown option '%s'", k));
            v = lua_isinteger(L, -1) ? lua_tointeger(L, -1) : 0;
            if (v < 1)
                luaL_argerror(L, 2, lua_pushfstring(L, "%s must be a positive integer", k));
            if (strcmp(k, "max_items") == 0)
                max_items = (size_t)v;
            else
                max_bytes = (size_t)v;
            lua_pop(L, 1);
        }
    }
    h = lua_newuserdatauv(L, sizeof(*h), 0);
    h->d = NULL;
    luaL_setmetatable(L, DICT_MT);
    rc = aurora_shared_open(name, max_items, max_bytes, &h->d);
    if (rc)
        return aurora_vm_fail(L, rc, "cannot open shared dictionary '%s'", name);
    return 1;
}

/* d:get(key) -> value | nil */
static int l_get(lua_State *L)
{
    aurora_shared_dict *d = check_dict(L);
    size_t klen;
    const char *key = luaL_checklstring(L, 2, &klen);
    aurora_shared_value v;
    int rc = aurora_shared_get(d, key, klen, &v);

    if (rc == AURORA_E_NOT_FOUND)
        return 0;
    if (rc)
        return fail(L, d, rc);
    push_value(L, &v);
    return 1;
}

/* set, add and replace: d:X(key, value [, ttl]) */
static int store(lua_State *L, aurora_shared_mode mode)
{
    aurora_shared_dict *d = check_dict(L);
    size_t klen;
    const char *key = luaL_checklstring(L, 2, &klen);
    aurora_shared_value v;
    double ttl;
    int rc;

    check_value(L, 3, &v, mode == AURORA_SHARED_SET);
    ttl = opt_ttl(L, 4);
    rc = aurora_shared_set(d, key, klen, &v, ttl, mode);
    if (rc == AURORA_E_CONFLICT || (rc == AURORA_E_NOT_FOUND && mode == AURORA_SHARED_REPLACE)) {
        lua_pushboolean(L, 0);
        return 1;
    }
    if (rc)
        return fail(L, d, rc);
    lua_pushboolean(L, 1);
    return 1;
}

/* d:set(key, value [, ttl]) -> true | nil, msg, code; a nil value deletes */
static int l_set(lua_State *L)
{
    return store(L, AURORA_SHARED_SET);
}

/* d:add(key, value [, ttl]) -> true | false (a live key exists) | nil, msg, code */
static int l_add(lua_State *L)
{
    return store(L, AURORA_SHARED_ADD);
}

/* d:replace(key, value [, ttl]) -> true | false (no live key) | nil, msg, code */
static int l_replace(lua_State *L)
{
    return store(L, AURORA_SHARED_REPLACE);
}

/* d:incr(key, by [, init [, ttl]]) -> number | nil, msg, code */
static int l_incr(lua_State *L)
{
    aurora_shared_dict *d = check_dict(L);
    size_t klen;
    const char *key = luaL_checklstring(L, 2, &klen);
    aurora_shared_value by, init, out;
    int has_init = !lua_isnoneornil(L, 4), rc;
    double ttl;

    check_number(L, 3, &by);
    if (has_init)
        check_number(L, 4, &init);
    ttl = opt_ttl(L, 5);
    rc = aurora_shared_incr(d, key, klen, &by, has_init ? &init : NULL, ttl, &out);
    if (rc == AURORA_E_NOT_FOUND)
        return aurora_vm_fail(L, rc, "not found");
    if (rc == AURORA_E_INVALID)
        return aurora_vm_fail(L, rc, "not a number");
    if (rc == AURORA_E_TOO_LARGE)
        return aurora_vm_fail(L, rc, "integer overflow or key too large");
    if (rc)
        return fail(L, d, rc);
    push_value(L, &out);
    return 1;
}

/* d:delete(key) -> true | nil, msg, code */
static int l_delete(lua_State *L)
{
    aurora_shared_dict *d = check_dict(L);
    size_t klen;
    const char *key = luaL_checklstring(L, 2, &klen);
    int rc = aurora_shared_delete(d, key, klen);

    if (rc)
        return fail(L, d, rc);
    lua_pushboolean(L, 1);
    return 1;
}

/* d:ttl(key) -> seconds left (0 = never expires) | nil */
static int l_ttl(lua_State *L)
{
    aurora_shared_dict *d = check_dict(L);
    size_t klen;
    const char *key = luaL_checklstring(L, 2, &klen);
    double left;
    int rc = aurora_shared_ttl(d, key, klen, &left);

    if (rc == AURORA_E_NOT_FOUND)
        return 0;
    if (rc)
        return fail(L, d, rc);
    lua_pushnumber(L, (lua_Number)left);
    return 1;
}

/* d:keys([max]) -> list of keys, most recently used first */
static int l_keys(lua_State *L)
{
    aurora_shared_dict *d = check_dict(L);
    lua_Integer max = luaL_optinteger(L, 2, 0);
    aurora_shared_key *keys;
    size_t n, i;
    int rc;

    luaL_argcheck(L, max >= 0, 2, "max must not be negative");
    rc = aurora_shared_keys(d, (size_t)max, &keys, &n);
    if (rc)
        return fail(L, d, rc);
    lua_createtable(L, n > 0x7fffffff ? 0 : (int)n, 0);
    for (i = 0; i < n; i++) {
        lua_pushlstring(L, keys[i].s, keys[i].len);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    free(keys);
    return 1;
}

/* d:flush() removes every entry. */
static int l_flush(lua_State *L)
{
    aurora_shared_flush(check_dict(L));
    return 0;
}

/* d:count() -> number of live entries */
static int l_count(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)aurora_shared_count(check_dict(L)));
    return 1;
}

/* d:name() -> the dictionary's name */
static int l_name(lua_State *L)
{
    lua_pushstring(L, aurora_shared_name(check_dict(L)));
    return 1;
}

static int l_tostring(lua_State *L)
{
    handle *h = luaL_checkudata(L, 1, DICT_MT);

    lua_pushfstring(L, "aurora.shared.dict(%s)", h->d ? aurora_shared_name(h->d) : "?");
    return 1;
}

int luaopen_aurora_shared(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"get", l_get},       {"set", l_set},     {"add", l_add},     {"replace", l_replace},
        {"incr", l_incr},     {"delete", l_delete}, {"ttl", l_ttl},   {"keys", l_keys},
        {"flush", l_flush},   {"count", l_count}, {"name", l_name},   {NULL, NULL},
    };
    static const luaL_Reg funcs[] = {
        {"dict", l_dict},
        {NULL, NULL},
    };

    if (luaL_newmetatable(L, DICT_MT)) {
        lua_pushcfunction(L, l_tostring);
        lua_setfield(L, -2, "__tostring");
        luaL_newlib(L, methods);
        lua_setfield(L, -2, "__index");
        lua_pushliteral(L, "locked");
        lua_setfield(L, -2, "__metatable");
    }
    lua_pop(L, 1);
    luaL_newlib(L, funcs);
    return 1;
}

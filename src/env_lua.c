/*
 * env_lua.c: the Lua module aurora.env, a thin binding over env.c. It only reads the environment:
 * workers run on many threads and setenv is not thread-safe, so Lua gets no way to write it. An
 * empty variable counts as unset everywhere. For secrets, use aurora.secret.from_env instead of
 * env.get, so the value never becomes a Lua string.
 */
#include <lauxlib.h>
#include <lua.h>

#include "aurora/aurora.h"
#include "aurora/env.h"
#include "aurora/vm.h"

/* env.get(name [, default]) -> string | default */
static int l_get(lua_State *L)
{
    const char *v = aurora_env_get(luaL_checkstring(L, 1));

    if (!v) {
        lua_settop(L, 2);
        return 1;
    }
    lua_pushstring(L, v);
    return 1;
}

/* env.int(name [, default]) -> integer | default | nil, msg, "invalid" */
static int l_int(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    long long n;
    int rc;

    if (!lua_isnoneornil(L, 2) && !lua_isinteger(L, 2))
        luaL_typeerror(L, 2, "integer or nil");
    rc = aurora_env_int(name, &n);
    if (rc == AURORA_E_NOT_FOUND) {
        lua_settop(L, 2);
        return 1;
    }
    if (rc)
        return aurora_vm_fail(L, rc, "%s must be an integer", name);
    lua_pushinteger(L, (lua_Integer)n);
    return 1;
}

/* env.bool(name [, default]) -> boolean | default | nil, msg, "invalid" */
static int l_bool(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    int b, rc;

    if (!lua_isnoneornil(L, 2))
        luaL_checktype(L, 2, LUA_TBOOLEAN);
    rc = aurora_env_bool(name, &b);
    if (rc == AURORA_E_NOT_FOUND) {
        lua_settop(L, 2);
        return 1;
    }
    if (rc)
        return aurora_vm_fail(L, rc, "%s must be a boolean (1/0, true/false, yes/no, on/off)",
                              name);
    lua_pushboolean(L, b);
    return 1;
}

/* env.require(name) -> string; raises (at the caller's line) when it is unset or empty. */
static int l_require(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    const char *v = aurora_env_get(name);

    if (!v)
        return luaL_error(L, "missing required environment variable %s", name);
    lua_pushstring(L, v);
    return 1;
}

int luaopen_aurora_env(lua_State *L)
{
    static const luaL_Reg funcs[] = {
        {"get", l_get},
        {"int", l_int},
        {"bool", l_bool},
        {"require", l_require},
        {NULL, NULL},
    };

    luaL_newlib(L, funcs);
    return 1;
}

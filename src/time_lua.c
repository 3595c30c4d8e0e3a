/*
 * time_lua.c: the Lua module aurora.time: wall clock, monotonic clock, and sleep, which yields
 * the calling task to the worker's loop instead of blocking the thread. Its core is the worker's
 * timer heap (worker.c).
 */
#include <time.h>

#include <lauxlib.h>
#include <lua.h>

#include "aurora/worker.h"

/* time.now() -> seconds since the epoch, with fractions */
static int l_now(lua_State *L)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec / 1e9);
    return 1;
}

/* time.monotonic() -> seconds of a clock that never goes back (for durations) */
static int l_monotonic(lua_State *L)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec / 1e9);
    return 1;
}

/* time.sleep(seconds): yields the task; other requests run meanwhile */
static int l_sleep(lua_State *L)
{
    lua_Number s = luaL_checknumber(L, 1);

    luaL_argcheck(L, s >= 0 && s <= 86400, 1, "seconds must be between 0 and 86400");
    return aurora_task_sleep(L, (uint64_t)(s * 1000 + 0.5));
}

/* time.iso8601(t) -> "2026-11-28T13:24:02Z" (UTC; t defaults to now) */
static int l_iso8601(lua_State *L)
{
    time_t t = (time_t)luaL_optinteger(L, 1, (lua_Integer)time(NULL));
    struct tm tm;
    char buf[32];

    gmtime_r(&t, &tm);
    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
    lua_pushstring(L, buf);
    return 1;
}

int luaopen_aurora_time(lua_State *L)
{
    static const luaL_Reg funcs[] = {
        {"now", l_now},     {"monotonic", l_monotonic}, {"sleep", l_sleep},
        {"iso8601", l_iso8601}, {NULL, NULL},
    };

    luaL_newlib(L, funcs);
    return 1;
}

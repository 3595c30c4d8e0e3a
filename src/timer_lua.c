/*
 * timer_lua.c: the Lua module aurora.timer: run a function in a background task of this worker
 * after a delay or at an interval (token refresh, deployments, inventory refresh), off every
 * request's path. Timers belong to the VM that started them: a reload stops them, and the new
 * scripts start their own. Its core is the worker's scheduler (worker.c).
 */
#include <lauxlib.h>
#include <lua.h>

#include "aurora/vm.h"
#include "aurora/worker.h"

static uint64_t check_ms(lua_State *L, int idx)
{
    lua_Number s = luaL_checknumber(L, idx);

    luaL_argcheck(L, s >= 0 && s <= 31536000, idx, "seconds must be between 0 and one year");
    return (uint64_t)(s * 1000 + 0.5);
}

/* timer.at(delay, fn) -> id: runs fn once after delay seconds */
static int l_at(lua_State *L)
{
    uint64_t ms = check_ms(L, 1);

    luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_pushinteger(L, aurora_worker_schedule(L, 2, ms, 0));
    return 1;
}

/* timer.every(interval, fn [, first_delay]) -> id: runs fn every interval seconds (the first run
 * after first_delay, default interval); runs never overlap. */
static int l_every(lua_State *L)
{
    uint64_t ms = check_ms(L, 1), first;

    luaL_argcheck(L, ms >= 10, 1, "interval must be at least 0.01 seconds");
    luaL_checktype(L, 2, LUA_TFUNCTION);
    first = lua_isnoneornil(L, 3) ? ms : check_ms(L, 3);
    lua_pushinteger(L, aurora_worker_schedule(L, 2, first, ms));
    return 1;
}

/* timer.cancel(id) -> true if it was scheduled */
static int l_cancel(lua_State *L)
{
    lua_pushboolean(L, aurora_worker_unschedule(L, (int)luaL_checkinteger(L, 1)));
    return 1;
}

/* timer.worker_id() -> this worker's number (1-based), or 0 outside a worker */
static int l_worker_id(lua_State *L)
{
    aurora_worker *w = aurora_vm_worker(L);

    lua_pushinteger(L, w ? aurora_worker_id(w) : 0);
    return 1;
}

int luaopen_aurora_timer(lua_State *L)
{
    static const luaL_Reg funcs[] = {
        {"at", l_at}, {"every", l_every}, {"cancel", l_cancel}, {"worker_id", l_worker_id},
        {NULL, NULL},
    };

    luaL_newlib(L, funcs);
    return 1;
}

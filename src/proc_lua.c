/*
 * proc_lua.c: the Lua module aurora.proc: start and watch child processes, free loopback
 * ports, temporary directories. The test harness starts servers under test with it.
 */
#include <errno.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>

#include "aurora/aurora.h"
#include "aurora/proc.h"
#include "aurora/vm.h"

#define ARGS_MAX 256

/* Collects the strings of the array (argv) or map (env: "K=V") at idx into out[] (Lua-owned
 * strings pushed onto a holder table at hold so they stay alive). Raises on bad entries. */
static int collect(lua_State *L, int idx, int hold, const char **out, int max, int map)
{
    int n = 0;

    if (lua_isnil(L, idx))
        return 0;
    luaL_checktype(L, idx, LUA_TTABLE);
    if (!map) {
        lua_Integer len = (lua_Integer)lua_rawlen(L, idx);
        for (lua_Integer i = 1; i <= len && n < max; i++) {
            lua_rawgeti(L, idx, i);
            if (!lua_isstring(L, -1))
                luaL_error(L, "argv[%d] must be a string", (int)i);
            out[n++] = lua_tostring(L, -1);
            lua_rawseti(L, hold, (lua_Integer)lua_rawlen(L, hold) + 1);
        }
        return n;
    }
    lua_pushnil(L);
    while (lua_next(L, idx) && n < max) {
        if (lua_type(L, -2) != LUA_TSTRING || !lua_isstring(L, -1))
            luaL_error(L, "env entries must be string = string");
        lua_pushfstring(L, "%s=%s", lua_tostring(L, -2), lua_tostring(L, -1));
        out[n++] = lua_tostring(L, -1);
        lua_rawseti(L, hold, (lua_Integer)lua_rawlen(L, hold) + 1);
        lua_pop(L, 1);
    }
    return n;
}

/* proc.spawn{argv = {...}, env = {K = V}, stdout = path, stderr = path} -> pid | nil, msg, code */
static int l_spawn(lua_State *L)
{
    const char *argv[ARGS_MAX + 1], *envs[ARGS_MAX + 1], *out, *errp;
    int na, ne, err = 0, hold;
    pid_t pid;

    luaL_checktype(L, 1, LUA_TTABLE);
    lua_newtable(L);
    hold = lua_gettop(L);
    lua_getfield(L, 1, "argv");
    na = collect(L, lua_gettop(L), hold, argv, ARGS_MAX, 0);
    if (na == 0)
        return luaL_error(L, "spawn: argv must name a program");
    lua_getfield(L, 1, "env");
    ne = collect(L, lua_gettop(L), hold, envs, ARGS_MAX, 1);
    argv[na] = NULL;
    envs[ne] = NULL;
    lua_getfield(L, 1, "stdout");
    out = lua_tostring(L, -1);
    lua_getfield(L, 1, "stderr");
    errp = lua_tostring(L, -1);
    pid = aurora_proc_spawn((char *const *)argv, (char *const *)envs, out, errp, &err);
    if (pid < 0)
        return aurora_vm_fail(L, err, "cannot start %s", argv[0]);
    lua_pushinteger(L, pid);
    return 1;
}

/* proc.kill(pid, "TERM"|"INT"|"HUP"|"KILL") -> true | nil, msg, code */
static int l_kill(lua_State *L)
{
    static const char *const names[] = {"TERM", "INT", "HUP", "KILL", "STOP", "CONT", NULL};
    static const int sigs[] = {SIGTERM, SIGINT, SIGHUP, SIGKILL, SIGSTOP, SIGCONT};
    pid_t pid = (pid_t)luaL_checkinteger(L, 1);
    int which = luaL_checkoption(L, 2, "TERM", names);

    luaL_argcheck(L, pid > 0, 1, "pid must be positive");
    if (kill(pid, sigs[which]) != 0)
        return aurora_vm_fail(L, errno == ESRCH ? AURORA_E_NOT_FOUND : AURORA_E_DENIED,
                              "kill %d: %s", (int)pid, strerror(errno));
    lua_pushboolean(L, 1);
    return 1;
}

/* proc.poll(pid) -> nil while it runs; "exited", status | "signaled", signal when it ended */
static int l_poll(lua_State *L)
{
    const char *how;
    int code, rc = aurora_proc_poll((pid_t)luaL_checkinteger(L, 1), &how, &code);

    if (rc == 0)
        return 0;
    if (rc < 0)
        return aurora_vm_fail(L, AURORA_E_NOT_FOUND, "not a child process");
    lua_pushstring(L, how);
    lua_pushinteger(L, code);
    return 2;
}

/* proc.alive(pid) -> whether a process with that id is running (any process, not only
 * children). A zombie — ended, but not yet reaped by a parent that is not us — counts as gone. */
static int l_alive(lua_State *L)
{
    pid_t pid = (pid_t)luaL_checkinteger(L, 1);
    char path[64], buf[256];
    const char *state;
    FILE *f;
    size_t n;

    luaL_argcheck(L, pid > 0, 1, "pid must be positive");
    if (kill(pid, 0) != 0 && errno != EPERM) {
        lua_pushboolean(L, 0);
        return 1;
    }
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    f = fopen(path, "r");
    n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = '\0';
    /* "pid (comm) S ...": the state follows the last ')' (comm may hold spaces or parens). */
    state = strrchr(buf, ')');
    lua_pushboolean(L, !(state && (state[2] == 'Z' || state[2] == 'X')));
    return 1;
}

/* proc.free_port() -> a free TCP port on 127.0.0.1 */
static int l_free_port(lua_State *L)
{
    int p = aurora_proc_free_port();

    if (p < 0)
        return aurora_vm_fail(L, AURORA_E_IO, "no free port");
    lua_pushinteger(L, p);
    return 1;
}

/* proc.self_exe() -> the path of the running aurora binary */
static int l_self_exe(lua_State *L)
{
    char buf[4096];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);

    if (n < 0)
        return aurora_vm_fail(L, AURORA_E_IO, "readlink: %s", strerror(errno));
    lua_pushlstring(L, buf, (size_t)n);
    return 1;
}

/* proc.mkdtemp([prefix]) -> a new private directory under $TMPDIR or /tmp */
static int l_mkdtemp(lua_State *L)
{
    const char *prefix = luaL_optstring(L, 1, "aurora");
    const char *tmp = getenv("TMPDIR");
    char path[4096];

    snprintf(path, sizeof(path), "%s/%s-XXXXXX", tmp && *tmp ? tmp : "/tmp", prefix);
    if (!mkdtemp(path))
        return aurora_vm_fail(L, AURORA_E_IO, "mkdtemp: %s", strerror(errno));
    lua_pushstring(L, path);
    return 1;
}

/* proc.pid() -> this process's id */
static int l_pid(lua_State *L)
{
    lua_pushinteger(L, getpid());
    return 1;
}

int luaopen_aurora_proc(lua_State *L)
{
    static const luaL_Reg funcs[] = {
        {"spawn", l_spawn},         {"kill", l_kill},       {"poll", l_poll},
        {"free_port", l_free_port}, {"self_exe", l_self_exe}, {"mkdtemp", l_mkdtemp},
        {"pid", l_pid},             {"alive", l_alive},     {NULL, NULL},
    };

    luaL_newlib(L, funcs);
    return 1;
}

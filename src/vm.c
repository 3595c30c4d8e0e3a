/*
 * vm.c: Lua VM creation for workers, the test runner and `aurora check` (see vm.h). Each VM has
 * a counting allocator with a cap, every aurora.* module in package.preload (the C ones listed
 * in build/modules.inc, the embedded Lua ones from embed.c), strict globals, a package.path that
 * only reaches the app directory and Debian's Lua directories, and warnings routed to the log.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "aurora/aurora.h"
#include "aurora/log.h"
#include "aurora/vm.h"
#include "aurora/worker.h"

#define AURORA_MODULE(x) int luaopen_aurora_##x(lua_State *L);
#include "modules.inc"
#undef AURORA_MODULE

/* Lua sources compiled into the binary (embed.c). */
extern const char aurora_embed_test_lua[];

typedef struct vmstate {
    size_t used;
    size_t limit;
    aurora_worker *worker;
    char warnbuf[512];
    size_t warnlen;
} vmstate;

static void *vm_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    vmstate *st = ud;
    size_t old = ptr ? osize : 0;
    void *p;

    if (nsize == 0) {
        free(ptr);
        st->used -= old;
        return NULL;
    }
    if (st->limit && nsize > old && st->used + (nsize - old) > st->limit)
        return NULL;
    p = realloc(ptr, nsize);
    if (!p)
        return NULL;
    st->used = st->used - old + nsize;
    return p;
}

static int vm_panic(lua_State *L)
{
    const char *msg = lua_tostring(L, -1);

    aurora_log(AURORA_LOG_ERROR, "Lua panic", "error", msg ? msg : "?", NULL);
    aurora_log_flush();
    abort();
}

/* Warnings (warn() and errors in __gc) go to the log as one line per message. */
static void vm_warn(void *ud, const char *msg, int tocont)
{
    vmstate *st = ud;
    size_t n = strlen(msg);

    if (n > sizeof(st->warnbuf) - 1 - st->warnlen)
        n = sizeof(st->warnbuf) - 1 - st->warnlen;
    memcpy(st->warnbuf + st->warnlen, msg, n);
    st->warnlen += n;
    if (tocont)
        return;
    st->warnbuf[st->warnlen] = '\0';
    st->warnlen = 0;
    if (st->warnbuf[0] != '@')
        aurora_log(AURORA_LOG_WARN, "Lua warning", "warning", st->warnbuf, NULL);
}

int aurora_vm_fail(lua_State *L, int err, const char *fmt, ...)
{
    va_list ap;

    lua_pushnil(L);
    va_start(ap, fmt);
    lua_pushvfstring(L, fmt, ap);
    va_end(ap);
    lua_pushstring(L, aurora_err_word((aurora_err)err));
    return 3;
}

void aurora_vm_check_options(lua_State *L, int idx, const char *const *names)
{
    size_t i;

    idx = lua_absindex(L, idx);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        for (i = 0; names[i]; i++)
            if (lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), names[i]) == 0)
                break;
        if (!names[i])
            luaL_argerror(L, idx, lua_pushfstring(L, "unknown option '%s'",
                                                  luaL_tolstring(L, -1, NULL)));
    }
}

static int strict_index(lua_State *L)
{
    return luaL_error(L, "undeclared global '%s'", lua_tostring(L, 2));
}

static int strict_newindex(lua_State *L)
{
    return luaL_error(L, "assignment to undeclared global '%s' (use local, or rawset(_G, ...))",
                      lua_tostring(L, 2));
}

static void preload(lua_State *L, const char *name, lua_CFunction open)
{
    lua_getfield(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    lua_pushcfunction(L, open);
    lua_setfield(L, -2, name);
    lua_pop(L, 1);
}

static int open_embedded(lua_State *L)
{
    const char *src = lua_touserdata(L, lua_upvalueindex(1));
    const char *name = lua_tostring(L, 1);

    if (luaL_loadbuffer(L, src, strlen(src), name) != LUA_OK)
        return lua_error(L);
    lua_pushvalue(L, 1);
    lua_call(L, 1, 1);
    return 1;
}

static void preload_lua(lua_State *L, const char *name, const char *src)
{
    lua_getfield(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    lua_pushlightuserdata(L, (void *)src);
    lua_pushcclosure(L, open_embedded, 1);
    lua_setfield(L, -2, name);
    lua_pop(L, 1);
}

static int setup(lua_State *L)
{
    const aurora_vm_opts *o = lua_touserdata(L, 1);

    luaL_openlibs(L);
#define AURORA_MODULE(x) preload(L, "aurora." #x, luaopen_aurora_##x);
#include "modules.inc"
#undef AURORA_MODULE
    preload_lua(L, "aurora.test", aurora_embed_test_lua);

    lua_getglobal(L, "package");
    if (o->app_dir && o->lib_dir)
        lua_pushfstring(L, "%s/?.lua;%s/?/init.lua;%s/?.lua;%s/?/init.lua;/usr/share/lua/5.4/?.lua",
                        o->app_dir, o->app_dir, o->lib_dir, o->lib_dir);
    else if (o->app_dir)
        lua_pushfstring(L, "%s/?.lua;%s/?/init.lua;/usr/share/lua/5.4/?.lua", o->app_dir,
                        o->app_dir);
    else
        lua_pushliteral(L, "/usr/share/lua/5.4/?.lua");
    lua_setfield(L, -2, "path");
    lua_pushliteral(L, "");
    lua_setfield(L, -2, "cpath");
    lua_pop(L, 1);

    /* Strict globals: reading or assigning an undeclared global raises. */
    lua_pushglobaltable(L);
    lua_newtable(L);
    lua_pushcfunction(L, strict_index);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, strict_newindex);
    lua_setfield(L, -2, "__newindex");
    lua_setmetatable(L, -2);
    lua_pop(L, 1);
    return 0;
}

lua_State *aurora_vm_new(const aurora_vm_opts *opts)
{
    vmstate *st = calloc(1, sizeof(*st));
    lua_State *L;

    if (!st)
        return NULL;
    st->limit = opts->mem_limit;
    st->worker = opts->worker;
    L = lua_newstate(vm_alloc, st);
    if (!L) {
        free(st);
        return NULL;
    }
    lua_atpanic(L, vm_panic);
    lua_setwarnf(L, vm_warn, st);
    *(void **)lua_getextraspace(L) = NULL;
    lua_pushcfunction(L, setup);
    lua_pushlightuserdata(L, (void *)opts);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
        aurora_log(AURORA_LOG_ERROR, "cannot set up a Lua VM", "error", lua_tostring(L, -1),
                   NULL);
        aurora_vm_close(&L);
        return NULL;
    }
    return L;
}

void aurora_vm_close(lua_State **pL)
{
    void *ud;

    if (!pL || !*pL)
        return;
    lua_getallocf(*pL, &ud);
    lua_close(*pL);
    free(ud);
    *pL = NULL;
}

aurora_worker *aurora_vm_worker(lua_State *L)
{
    void *ud;

    lua_getallocf(L, &ud);
    return ((vmstate *)ud)->worker;
}

size_t aurora_vm_mem_used(lua_State *L)
{
    void *ud;

    lua_getallocf(L, &ud);
    return ((vmstate *)ud)->used;
}

static int traceback(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);

    if (!msg) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
            msg = lua_tostring(L, -1);
        else
            msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    luaL_traceback(L, L, msg, 1);
    return 1;
}

int aurora_vm_pcall(lua_State *L, int nargs, int nresults)
{
    int base = lua_gettop(L) - nargs;
    int rc;

    lua_pushcfunction(L, traceback);
    lua_insert(L, base);
    rc = lua_pcall(L, nargs, nresults, base);
    lua_remove(L, base);
    return rc;
}

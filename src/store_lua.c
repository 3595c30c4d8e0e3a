/*
 * store_lua.c: the Lua module aurora.store, a thin binding over store.c. A handle is a userdata
 * holding the store (and with it the key, wiped on close) and a secret scratch buffer for the
 * JSON text of values. The scratch buffer lives in the handle rather than on the C stack so that
 * a raise in the middle of a call (out of memory while encoding or decoding) cannot leak a value
 * unwiped: the next call or the handle's finalizer wipes it. Values cross into Lua only as the
 * decoded table; the JSON text never becomes a Lua string.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "aurora/aurora.h"
#include "aurora/buf.h"
#include "aurora/json.h"
#include "aurora/secret.h"
#include "aurora/store.h"
#include "aurora/vm.h"

#define STORE_MT "aurora.store"
#define ERR_MAX 320
#define LIST_MAX (16 * 1024 * 1024)

typedef struct handle {
    aurora_store *s;  /* NULL until opened, and once closed */
    aurora_buf value; /* secret scratch: the JSON text of the value in flight */
} handle;

static handle *check_open(lua_State *L)
{
    handle *h = luaL_checkudata(L, 1, STORE_MT);

    if (!h->s)
        luaL_error(L, "attempt to use a closed store");
    return h;
}

/* The path argument at idx. A string with a NUL byte is returned as NULL: the caller fails with
 * "invalid" like for any other malformed path. */
static const char *check_path_arg(lua_State *L, int idx)
{
    size_t n;
    const char *p = luaL_checklstring(L, idx, &n);

    return strlen(p) == n ? p : NULL;
}

/* Empties (wipes) the scratch buffer and lets it grow to max bytes. */
static aurora_buf *scratch(handle *h, size_t max)
{
    aurora_buf_free(&h->value);
    aurora_buf_init(&h->value, max);
    h->value.secret = 1;
    return &h->value;
}

static int fail_nul(lua_State *L)
{
    return aurora_vm_fail(L, AURORA_E_INVALID, "invalid path: it holds a NUL byte");
}

/* store.open(dir [, key]) -> handle | nil, msg, code */
static int l_open(lua_State *L)
{
    const char *dir = luaL_checkstring(L, 1);
    unsigned char key[AURORA_STORE_KEY_LEN];
    const unsigned char *kp = NULL;
    size_t kn = 0;
    char err[ERR_MAX];
    handle *h;
    int rc;

    if (!lua_isnoneornil(L, 2))
        aurora_secret_bytes(L, 2, &kp, &kn);
    h = lua_newuserdatauv(L, sizeof(*h), 0);
    h->s = NULL;
    aurora_buf_init(&h->value, AURORA_STORE_VALUE_MAX);
    h->value.secret = 1;
    luaL_setmetatable(L, STORE_MT);
    if (kp && kn == AURORA_STORE_KEY_LEN)
        memcpy(key, kp, AURORA_STORE_KEY_LEN);
    else if (kp && aurora_store_key_parse((const char *)kp, kn, key) != 0)
        return aurora_vm_fail(L, AURORA_E_INVALID,
                              "the key must be 32 bytes, 64 hex digits or base64 of 32 bytes");
    rc = aurora_store_open(dir, kp ? key : NULL, &h->s, err, sizeof(err));
    aurora_wipe(key, sizeof(key));
    if (rc)
        return aurora_vm_fail(L, rc, "%s", err);
    return 1;
}

/* Reads the options table of put at idx; raises on unknown options. Returns cas or -1. */
static lua_Integer check_put_opts(lua_State *L, int idx)
{
    lua_Integer cas = -1;

    if (lua_isnoneornil(L, idx))
        return -1;
    luaL_checktype(L, idx, LUA_TTABLE);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "?";

        if (strcmp(k, "cas") != 0)
            luaL_argerror(L, idx, lua_pushfstring(L, "unknown option '%s'", k));
        if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 0)
            luaL_argerror(L, idx, "option 'cas' must be a non-negative integer");
        cas = lua_tointeger(L, -1);
        lua_pop(L, 1);
    }
    return cas;
}

/* h:put(path, value [, {cas = n}]) -> version | nil, msg, code */
static int l_put(lua_State *L)
{
    handle *h = check_open(L);
    const char *path = check_path_arg(L, 2);
    aurora_store_meta meta;
    lua_Integer cas;
    char err[ERR_MAX];
    int rc;

    if (!lua_istable(L, 3) && lua_type(L, 3) != LUA_TSTRING)
        luaL_typeerror(L, 3, "table or string");
    cas = check_put_opts(L, 4);
    if (!path)
        return fail_nul(L);
    rc = aurora_json_encode(L, 3, scratch(h, AURORA_STORE_VALUE_MAX), err, sizeof(err));
    if (rc == AURORA_E_INVALID) {
        aurora_buf_free(&h->value);
        return luaL_argerror(L, 3, lua_pushfstring(L, "cannot encode the value: %s", err));
    }
    if (rc == 0)
        rc = aurora_store_put(h->s, path, h->value.data, h->value.len, (int64_t)cas, &meta, err,
                              sizeof(err));
    else
        snprintf(err, sizeof(err), "the value is larger than %d bytes", AURORA_STORE_VALUE_MAX);
    aurora_buf_free(&h->value);
    if (rc)
        return aurora_vm_fail(L, rc, "%s", err);
    lua_pushinteger(L, (lua_Integer)meta.version);
    return 1;
}

/* h:get(path) -> value, {version=, created=, updated=} | nil | nil, msg, code */
static int l_get(lua_State *L)
{
    handle *h = check_open(L);
    const char *path = check_path_arg(L, 2);
    aurora_store_meta meta;
    char err[ERR_MAX];
    int rc;

    if (!path)
        return fail_nul(L);
    rc = aurora_store_get(h->s, path, scratch(h, AURORA_STORE_VALUE_MAX), &meta, err, sizeof(err));
    if (rc == AURORA_E_NOT_FOUND) {
        lua_pushnil(L);
        return 1;
    }
    if (rc)
        return aurora_vm_fail(L, rc, "%s", err);
    rc = aurora_json_decode(L, h->value.data ? h->value.data : "", h->value.len, err, sizeof(err));
    aurora_buf_free(&h->value);
    if (rc)
        return aurora_vm_fail(L, AURORA_E_INVALID, "record '%s' does not hold a JSON value", path);
    lua_createtable(L, 0, 3);
    lua_pushinteger(L, (lua_Integer)meta.version);
    lua_setfield(L, -2, "version");
    lua_pushinteger(L, (lua_Integer)meta.created);
    lua_setfield(L, -2, "created");
    lua_pushinteger(L, (lua_Integer)meta.updated);
    lua_setfield(L, -2, "updated");
    return 2;
}

/* h:delete(path) -> true | nil, msg, code. Deleting a missing record is not a failure. */
static int l_delete(lua_State *L)
{
    handle *h = check_open(L);
    const char *path = check_path_arg(L, 2);
    char err[ERR_MAX];
    int rc;

    if (!path)
        return fail_nul(L);
    rc = aurora_store_delete(h->s, path, err, sizeof(err));
    if (rc && rc != AURORA_E_NOT_FOUND)
        return aurora_vm_fail(L, rc, "%s", err);
    lua_pushboolean(L, 1);
    return 1;
}

/* h:list([prefix]) -> {names} | nil, msg, code */
static int l_list(lua_State *L)
{
    handle *h = check_open(L);
    const char *prefix = lua_isnoneornil(L, 2) ? "" : check_path_arg(L, 2);
    char err[ERR_MAX];
    size_t count = 0, i, off = 0;
    aurora_buf *b;
    int rc;

    if (!prefix)
        return fail_nul(L);
    b = scratch(h, LIST_MAX);
    rc = aurora_store_list(h->s, prefix, b, &count, err, sizeof(err));
    if (rc) {
        aurora_buf_free(b);
        return aurora_vm_fail(L, rc, "%s", err);
    }
    lua_createtable(L, count < INT_MAX ? (int)count : 0, 0);
    for (i = 0; i < count; i++) {
        size_t n = strlen(b->data + off);

        lua_pushlstring(L, b->data + off, n);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
        off += n + 1;
    }
    aurora_buf_free(b);
    return 1;
}

/* h:close(); also __gc and __close. Wipes the key; closing twice is harmless. */
static int l_close(lua_State *L)
{
    handle *h = luaL_checkudata(L, 1, STORE_MT);

    aurora_store_close(&h->s);
    aurora_buf_free(&h->value);
    return 0;
}

static int l_is_open(lua_State *L)
{
    handle *h = luaL_checkudata(L, 1, STORE_MT);

    lua_pushboolean(L, h->s != NULL);
    return 1;
}

static int l_tostring(lua_State *L)
{
    handle *h = luaL_checkudata(L, 1, STORE_MT);

    lua_pushstring(L, h->s ? "aurora.store" : "aurora.store(closed)");
    return 1;
}

/* store.check_path(path [, folder]) -> true | nil, msg, "invalid" */
static int l_check_path(lua_State *L)
{
    const char *path = check_path_arg(L, 1);
    char err[ERR_MAX];
    int rc;

    if (!path)
        return fail_nul(L);
    rc = aurora_store_check_path(path, lua_toboolean(L, 2), err, sizeof(err));
    if (rc)
        return aurora_vm_fail(L, rc, "%s", err);
    lua_pushboolean(L, 1);
    return 1;
}

int luaopen_aurora_store(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"put", l_put},     {"get", l_get},         {"delete", l_delete}, {"list", l_list},
        {"close", l_close}, {"is_open", l_is_open}, {NULL, NULL},
    };
    static const luaL_Reg meta[] = {
        {"__gc", l_close},
        {"__close", l_close},
        {"__tostring", l_tostring},
        {NULL, NULL},
    };
    static const luaL_Reg funcs[] = {
        {"open", l_open},
        {"check_path", l_check_path},
        {NULL, NULL},
    };

    if (luaL_newmetatable(L, STORE_MT)) {
        luaL_setfuncs(L, meta, 0);
        luaL_newlib(L, methods);
        lua_setfield(L, -2, "__index");
        lua_pushliteral(L, "locked");
        lua_setfield(L, -2, "__metatable");
    }
    lua_pop(L, 1);
    luaL_newlib(L, funcs);
    return 1;
}

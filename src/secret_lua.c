/*
 * secret_lua.c: the Lua module aurora.secret. A handle is a userdata holding an aurora_secret in
 * place; its bytes never become a Lua string unless a script explicitly calls reveal(), which
 * exists for the few places that must hand a secret to a library taking Lua strings.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>

#include "aurora/aurora.h"
#include "aurora/buf.h"
#include "aurora/secret.h"
#include "aurora/vm.h"

#define SECRET_MT "aurora.secret"
#define SECRET_MAX (1024 * 1024)

/* The userdata: a secret in place, empty ("closed") until filled. */
typedef struct handle {
    aurora_secret s;
} handle;

static void fill(lua_State *L, handle *h, const void *p, size_t n)
{
    h->s.data = malloc(n + 1);
    if (!h->s.data)
        luaL_error(L, "not enough memory");
    if (n)
        memcpy(h->s.data, p, n);
    h->s.data[n] = '\0';
    h->s.len = n;
}

static void ensure_mt(lua_State *L);

static handle *new_handle(lua_State *L)
{
    handle *h = lua_newuserdatauv(L, sizeof(*h), 0);

    h->s.data = NULL;
    h->s.len = 0;
    ensure_mt(L);
    luaL_setmetatable(L, SECRET_MT);
    return h;
}

void aurora_secret_push(lua_State *L, const void *p, size_t n)
{
    handle *h = new_handle(L);

    fill(L, h, p, n);
}

const aurora_secret *aurora_secret_test(lua_State *L, int idx)
{
    handle *h = luaL_testudata(L, idx, SECRET_MT);

    if (!h)
        return NULL;
    if (!h->s.data)
        luaL_error(L, "attempt to use a closed secret");
    return &h->s;
}

void aurora_secret_bytes(lua_State *L, int idx, const unsigned char **p, size_t *n)
{
    const aurora_secret *s;

    if (lua_type(L, idx) == LUA_TSTRING) {
        *p = (const unsigned char *)lua_tolstring(L, idx, n);
        return;
    }
    s = aurora_secret_test(L, idx);
    if (!s)
        luaL_typeerror(L, idx, "secret or string");
    *p = s->data;
    *n = s->len;
}

/* secret.new(string) -> handle */
static int l_new(lua_State *L)
{
    size_t n;
    const char *p = luaL_checklstring(L, 1, &n);

    aurora_secret_push(L, p, n);
    return 1;
}

/* secret.from_env(name) -> handle | nil: reads an environment variable without making a Lua
 * string of its value. */
static int l_from_env(lua_State *L)
{
    const char *v = getenv(luaL_checkstring(L, 1));

    if (!v || !*v)
        return 0;
    aurora_secret_push(L, v, strlen(v));
    return 1;
}

/* secret.from_file(path) -> handle | nil, msg, code */
static int l_from_file(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    handle *h = new_handle(L);
    aurora_buf b;
    int rc;

    aurora_buf_init(&b, SECRET_MAX);
    b.secret = 1;
    rc = aurora_read_file(path, &b);
    if (rc) {
        aurora_buf_free(&b);
        return aurora_vm_fail(L, rc, "cannot read secret file %s", path);
    }
    h->s.len = b.len;
    h->s.data = (unsigned char *)aurora_buf_take(&b, NULL);
    if (!h->s.data)
        fill(L, h, "", 0);
    return 1;
}

static int l_close(lua_State *L)
{
    handle *h = luaL_checkudata(L, 1, SECRET_MT);

    if (h->s.data) {
        aurora_wipe(h->s.data, h->s.len + 1);
        free(h->s.data);
        h->s.data = NULL;
        h->s.len = 0;
    }
    return 0;
}

/* The open secret behind the handle at idx; raises for anything else. */
static const aurora_secret *check_open(lua_State *L, int idx)
{
    const aurora_secret *s = aurora_secret_test(L, idx);

    if (!s)
        luaL_typeerror(L, idx, SECRET_MT);
    return s;
}

static int l_len(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)check_open(L, 1)->len);
    return 1;
}

/* h:reveal() -> string. Makes a Lua string of the secret; use only where a library needs it. */
static int l_reveal(lua_State *L)
{
    const aurora_secret *s = check_open(L, 1);

    lua_pushlstring(L, (const char *)s->data, s->len);
    return 1;
}

/* h:equals(other) -> boolean, in constant time for equal lengths. */
static int l_equals(lua_State *L)
{
    const unsigned char *a, *b;
    size_t na, nb;

    aurora_secret_bytes(L, 1, &a, &na);
    aurora_secret_bytes(L, 2, &b, &nb);
    lua_pushboolean(L, na == nb && aurora_ct_equal(a, b, na));
    return 1;
}

/* h:write_file(path) -> true | nil, msg, code. Writes the secret atomically: a 0600 temporary
 * file in the same directory, written and fsynced, then renamed over path, so readers see the
 * old content or the whole new one and never a partial key. */
static int l_write_file(lua_State *L)
{
    const aurora_secret *s = aurora_secret_test(L, 1);
    const char *path;
    char *tmp = NULL;
    size_t off = 0;
    int fd = -1, err = 0;

    if (!s)
        luaL_typeerror(L, 1, SECRET_MT);
    path = luaL_checkstring(L, 2);
    tmp = malloc(strlen(path) + sizeof(".XXXXXX"));
    if (!tmp)
        return luaL_error(L, "not enough memory");
    sprintf(tmp, "%s.XXXXXX", path);
    fd = mkstemp(tmp);
    if (fd < 0) {
        err = errno;
        goto out;
    }
    if (fchmod(fd, 0600) != 0)
        err = errno;
    while (!err && off < s->len) {
        ssize_t w = write(fd, s->data + off, s->len - off);

        if (w < 0 && errno != EINTR)
            err = errno;
        else if (w > 0)
            off += (size_t)w;
    }
    if (!err && fsync(fd) != 0)
        err = errno;
    if (close(fd) != 0 && !err)
        err = errno;
    fd = -1;
    if (!err && rename(tmp, path) != 0)
        err = errno;
    if (err)
        unlink(tmp);
out:
    free(tmp);
    if (err) {
        int code = err == ENOENT ? AURORA_E_NOT_FOUND : AURORA_E_IO;

        if (err == EACCES || err == EPERM || err == EROFS)
            code = AURORA_E_DENIED;
        return aurora_vm_fail(L, code, "cannot write secret file %s: %s", path, strerror(err));
    }
    lua_pushboolean(L, 1);
    return 1;
}

static int l_is_open(lua_State *L)
{
    handle *h = luaL_testudata(L, 1, SECRET_MT);

    lua_pushboolean(L, h && h->s.data);
    return 1;
}

static int l_tostring(lua_State *L)
{
    handle *h = luaL_checkudata(L, 1, SECRET_MT);

    lua_pushstring(L, h->s.data ? "aurora.secret(redacted)" : "aurora.secret(closed)");
    return 1;
}

/* Creates the handle metatable once per VM; handles are made by C code (http, crypto, vault)
 * even where no script required aurora.secret. */
static void ensure_mt(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"close", l_close},   {"len", l_len},         {"reveal", l_reveal},
        {"equals", l_equals}, {"is_open", l_is_open}, {"write_file", l_write_file},
        {NULL, NULL},
    };
    static const luaL_Reg meta[] = {
        {"__gc", l_close},
        {"__close", l_close},
        {"__tostring", l_tostring},
        {NULL, NULL},
    };

    if (luaL_newmetatable(L, SECRET_MT)) {
        luaL_setfuncs(L, meta, 0);
        luaL_newlib(L, methods);
        lua_setfield(L, -2, "__index");
        lua_pushliteral(L, "locked");
        lua_setfield(L, -2, "__metatable");
    }
    lua_pop(L, 1);
}

int luaopen_aurora_secret(lua_State *L)
{
    static const luaL_Reg funcs[] = {
        {"new", l_new},
        {"from_env", l_from_env},
        {"from_file", l_from_file},
        {"is_secret", l_is_open},
        {NULL, NULL},
    };


    ensure_mt(L);
    luaL_newlib(L, funcs);
    return 1;
}

/*
 * token_lua.c: the Lua module aurora.token on top of the process-wide cache in token.c.
 * token.get(key, fetch, opts) answers from the cache, or runs fetch() in the calling task as the
 * key's single fetcher, or makes the task wait (yield) until the fetcher on any worker ends.
 *
 * How a wait ends: the fetcher's thread gets the core's notify callback outside the lock and
 * posts to the waiter's worker (aurora_worker_post, even for its own worker, so no task is
 * resumed from inside another task's stack); there the task is woken and its continuation copies
 * the shared outcome into its own VM. A fetcher that ends without an outcome (it raised, or its
 * task was killed) is caught by a to-be-closed guard on its stack, which abandons the flight: the
 * waiters then look up again and one of them fetches. Values cross only as C copies; no Lua API
 * is called under the cache's lock, and cached values stay in wiped C memory.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lauxlib.h>
#include <lua.h>

#include "aurora/aurora.h"
#include "aurora/buf.h"
#include "aurora/json.h"
#include "aurora/secret.h"
#include "aurora/token.h"
#include "aurora/worker.h"

#define GUARD_MT "aurora.token.flight"
#define DEFAULT_MARGIN 300.0
#define NEGATIVE_TTL_MAX 86400.0

/* A fetch in progress, owned by the fetcher's stack as a to-be-closed value. */
typedef struct guard {
    char *key;
    size_t klen;
    uint64_t flight;
    int active; /* the flight is still ours to end */
} guard;

/* A task waiting on another task's fetch. */
typedef struct waiter {
    aurora_token_waiter tw; /* first: the core hands back &tw */
    aurora_task *task;
    aurora_worker *w;
    aurora_token_done *done; /* set by notify */
    int dead;                /* the task was cancelled after the flight ended */
} waiter;

static int attempt(lua_State *L);

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *check_key(lua_State *L, int idx, size_t *klen)
{
    const char *key = luaL_checklstring(L, idx, klen);

    luaL_argcheck(L, *klen > 0 && *klen <= AURORA_TOKEN_KEY_MAX, idx,
                  "key must be 1 to 4096 bytes");
    return key;
}

/* Pushes the decoded JSON object text s, or an empty table when there is none. Stack: +1. */
static void push_json(lua_State *L, const char *s, size_t n)
{
    char err[64];

    if (!s || aurora_json_decode(L, s, n, err, sizeof(err)) != 0)
        lua_newtable(L);
}

/* Pushes a value result: handle, expires_at, meta. Stack: +3; raises only out of memory. */
static int push_value(lua_State *L, const aurora_token_result *r)
{
    aurora_secret_push(L, r->value->data, r->value->len);
    lua_pushnumber(L, r->expires_at);
    push_json(L, r->meta, r->meta_len);
    return 3;
}

/* Pushes a failure result: nil, err table. Stack: +2. */
static int push_failure(lua_State *L, const aurora_token_result *r)
{
    lua_pushnil(L);
    push_json(L, r->err, r->err_len);
    return 2;
}

/* Encodes the table at idx (nil: nothing) as JSON into b. Raises on misuse, after freeing b. */
static void encode_table(lua_State *L, int idx, aurora_buf *b, const char *what)
{
    char err[128];
    int rc;

    aurora_buf_init(b, AURORA_TOKEN_JSON_MAX);
    if (lua_isnoneornil(L, idx))
        return;
    if (!lua_istable(L, idx))
        luaL_error(L, "%s must be a table", what);
    rc = aurora_json_encode(L, idx, b, err, sizeof(err));
    if (rc) {
        aurora_buf_free(b);
        luaL_error(L, "%s cannot be stored: %s", what, err);
    }
}

/* ---- the flight guard ------------------------------------------------------------------------ */

/* __close and __gc: a flight still active here ended without an outcome. */
static int guard_close(lua_State *L)
{
    guard *g = luaL_checkudata(L, 1, GUARD_MT);

    if (g->active) {
        g->active = 0;
        aurora_token_abandon(g->key, g->klen, g->flight);
    }
    free(g->key);
    g->key = NULL;
    return 0;
}

/* Pushes an inactive guard holding a copy of the key. Stack: +1; raises out of memory. */
static guard *push_guard(lua_State *L, const char *key, size_t klen)
{
    guard *g = lua_newuserdatauv(L, sizeof(*g), 0);

    memset(g, 0, sizeof(*g));
    if (luaL_newmetatable(L, GUARD_MT)) {
        lua_pushcfunction(L, guard_close);
        lua_setfield(L, -2, "__close");
        lua_pushcfunction(L, guard_close);
        lua_setfield(L, -2, "__gc");
        lua_pushliteral(L, "locked");
        lua_setfield(L, -2, "__metatable");
    }
    lua_setmetatable(L, -2);
    g->key = malloc(klen);
    if (!g->key)
        luaL_error(L, "not enough memory");
    memcpy(g->key, key, klen);
    g->klen = klen;
    return g;
}

/* ---- waiting --------------------------------------------------------------------------------- */

/* On the waiter's worker: wake its task, or free the waiter when the task is gone. */
static void wake_waiter(aurora_worker *w, void *arg)
{
    waiter *x = arg;

    (void)w;
    if (x->dead) {
        aurora_token_done_release(&x->done);
        free(x);
        return;
    }
    aurora_task_wake(x->task, 0);
}

/* The core's notify, on the fetcher's thread, outside the lock. */
static void on_notify(aurora_token_waiter *tw, aurora_token_done *d)
{
    waiter *x = (waiter *)tw;

    x->done = d;
    /* Out of memory here leaves the task waiting until its deadline cancels it. */
    if (aurora_worker_post(x->w, wake_waiter, x) != 0)
        aurora_token_done_release(&x->done);
}

/* The waiting task was cancelled (deadline, shutdown). */
static void on_cancel(aurora_task *t, void *wait)
{
    waiter *x = wait;

    (void)t;
    if (aurora_token_cancel_wait(&x->tw))
        free(x);
    else
        x->dead = 1; /* the posted wake_waiter frees it */
}

/* Continuation of a wait: the flight ended; x->done is its outcome. */
static int k_waited(lua_State *L, int status, lua_KContext ctx)
{
    waiter *x = (waiter *)ctx;
    aurora_token_done *d = x->done;
    const aurora_token_result *r;
    int n;

    (void)status;
    free(x);
    lua_settop(L, 3);
    if (!d)
        return luaL_error(L, "get: woken without an outcome (out of memory)");
    r = aurora_token_done_result(d);
    if (r->kind == AURORA_TOKEN_RETRY) {
        aurora_token_done_release(&d);
        return attempt(L);
    }
    n = r->kind == AURORA_TOKEN_VALUE ? push_value(L, r) : push_failure(L, r);
    aurora_token_done_release(&d);
    return n;
}

/* ---- fetching -------------------------------------------------------------------------------- */

/* Continuation of the fetch call. Stack: key, fetch, opts, guard, then fetch's results (or the
 * error it raised). Any raise here closes the guard, which abandons the flight. */
static int k_fetched(lua_State *L, int status, lua_KContext ctx)
{
    guard *g = luaL_checkudata(L, 4, GUARD_MT);
    aurora_token_result r;
    aurora_secret value;
    aurora_buf b;
    int n = lua_gettop(L) - 4, rc;

    (void)ctx;
    if (status != LUA_OK && status != LUA_YIELD)
        return lua_error(L); /* waiters retry: the guard abandons the flight */
    memset(&r, 0, sizeof(r));
    if (n == 0 || !lua_toboolean(L, 5)) {
        double ttl = 0;
        if (n < 2 || !lua_istable(L, 6))
            return luaL_error(L, "get: fetch must return value, expires_at [, meta] or nil, "
                                 "err (a table) [, negative_ttl]");
        if (n >= 3 && !lua_isnil(L, 7)) {
            if (!lua_isnumber(L, 7))
                return luaL_error(L, "get: negative_ttl must be a number of seconds");
            ttl = lua_tonumber(L, 7);
            if (!(ttl >= 0 && ttl <= NEGATIVE_TTL_MAX))
                return luaL_error(L, "get: negative_ttl must be between 0 and 86400 seconds");
        }
        encode_table(L, 6, &b, "the fetch error");
        r.kind = AURORA_TOKEN_FAILURE;
        r.err = b.data;
        r.err_len = b.len;
        g->active = 0;
        rc = aurora_token_finish(g->key, g->klen, g->flight, &r, now_s(), ttl);
        aurora_buf_free(&b);
        if (rc)
            return luaL_error(L, "get: the fetch error cannot be stored (%s)", aurora_err_word(rc));
        lua_pushnil(L);
        lua_pushvalue(L, 6);
        return 2;
    }
    if (lua_type(L, 5) != LUA_TSTRING && !aurora_secret_test(L, 5))
        return luaL_error(L, "get: fetch must return a string or secret as the value");
    if (n < 2 || lua_type(L, 6) != LUA_TNUMBER)
        return luaL_error(L, "get: fetch must return expires_at (Unix seconds) after the value");
    {
        const unsigned char *p;
        size_t len;
        aurora_secret_bytes(L, 5, &p, &len);
        value.data = (unsigned char *)p;
        value.len = len;
    }
    encode_table(L, 7, &b, "meta");
    r.kind = AURORA_TOKEN_VALUE;
    r.value = &value;
    r.expires_at = lua_tonumber(L, 6);
    r.meta = b.data;
    r.meta_len = b.len;
    g->active = 0;
    rc = aurora_token_finish(g->key, g->klen, g->flight, &r, now_s(), 0);
    aurora_buf_free(&b);
    if (rc)
        return luaL_error(L, "get: the value cannot be stored (%s)", aurora_err_word(rc));
    aurora_secret_push(L, value.data, value.len);
    lua_pushvalue(L, 6);
    if (n >= 3 && lua_istable(L, 7))
        lua_pushvalue(L, 7);
    else
        lua_newtable(L);
    return 3;
}

/* Looks the key up once more and acts on the outcome. Stack: key, fetch, opts (exactly). */
static int attempt(lua_State *L)
{
    size_t klen;
    const char *key = lua_tolstring(L, 1, &klen);
    double margin = DEFAULT_MARGIN;
    aurora_token_outcome oc = AURORA_TOKEN_FETCH;
    aurora_token_result res;
    uint64_t flight = 0;
    aurora_task *t = aurora_task_of(L);
    waiter *x;
    guard *g;
    int rc, n;

    if (lua_istable(L, 3)) {
        lua_getfield(L, 3, "margin");
        if (!lua_isnil(L, -1))
            margin = lua_tonumber(L, -1);
        lua_pop(L, 1);
    }
    g = push_guard(L, key, klen);
    x = calloc(1, sizeof(*x));
    if (!x)
        return luaL_error(L, "not enough memory");
    x->tw.notify = on_notify;
    x->task = t;
    x->w = t->w;
    rc = aurora_token_lookup(key, klen, now_s(), margin, &x->tw, &oc, &res, &flight);
    if (rc) {
        free(x);
        return luaL_error(L, "get: %s", aurora_err_word(rc));
    }
    switch (oc) {
    case AURORA_TOKEN_HIT:
    case AURORA_TOKEN_NEGATIVE:
        free(x);
        lua_settop(L, 3);
        n = oc == AURORA_TOKEN_HIT ? push_value(L, &res) : push_failure(L, &res);
        aurora_token_result_clear(&res);
        return n;
    case AURORA_TOKEN_WAIT:
        lua_settop(L, 3);
        t->cancel = on_cancel;
        t->wait = x;
        return lua_yieldk(L, 0, (lua_KContext)x, k_waited);
    case AURORA_TOKEN_FETCH:
    default:
        free(x);
        g->flight = flight;
        g->active = 1;
        lua_toclose(L, 4);
        lua_pushvalue(L, 2);
        return k_fetched(L, lua_pcallk(L, 0, LUA_MULTRET, 0, 0, k_fetched), 0);
    }
}

/* token.get(key, fetch [, {margin = 300}]) -> handle, expires_at, meta | nil, err */
static int l_get(lua_State *L)
{
    size_t klen;

    check_key(L, 1, &klen);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    if (!lua_isnoneornil(L, 3)) {
        luaL_checktype(L, 3, LUA_TTABLE);
        lua_pushnil(L);
        while (lua_next(L, 3)) {
            lua_pop(L, 1);
            if (lua_type(L, -1) != LUA_TSTRING || strcmp(lua_tostring(L, -1), "margin") != 0)
                return luaL_error(L, "get: unknown option '%s'",
                                  lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "?");
        }
        lua_getfield(L, 3, "margin");
        if (!lua_isnil(L, -1)) {
            lua_Number m;
            if (!lua_isnumber(L, -1))
                return luaL_error(L, "get: option 'margin' must be a number of seconds");
            m = lua_tonumber(L, -1);
            if (!(m >= 0 && m <= 31536000))
                return luaL_error(L, "get: option 'margin' must be between 0 and one year");
        }
        lua_pop(L, 1);
    }
    lua_settop(L, 3);
    aurora_task_check_wait(L, "get");
    return attempt(L);
}

/* token.peek(key) -> handle, expires_at, meta | nil */
static int l_peek(lua_State *L)
{
    size_t klen;
    const char *key = check_key(L, 1, &klen);
    aurora_token_result r;
    int rc = aurora_token_peek(key, klen, now_s(), &r);

    if (rc == AURORA_E_NOT_FOUND)
        return 0;
    if (rc)
        return luaL_error(L, "peek: %s", aurora_err_word(rc));
    rc = push_value(L, &r);
    aurora_token_result_clear(&r);
    return rc;
}

/* token.put(key, value, expires_at [, meta]) */
static int l_put(lua_State *L)
{
    size_t klen, vlen;
    const char *key = check_key(L, 1, &klen);
    const unsigned char *v;
    lua_Number exp;
    aurora_buf b;
    int rc;

    aurora_secret_bytes(L, 2, &v, &vlen);
    exp = luaL_checknumber(L, 3);
    if (!lua_isnoneornil(L, 4))
        luaL_checktype(L, 4, LUA_TTABLE);
    luaL_argcheck(L, vlen <= AURORA_TOKEN_VALUE_MAX, 2, "value larger than 64 KiB");
    encode_table(L, 4, &b, "meta");
    rc = aurora_token_put(key, klen, v, vlen, exp, b.data, b.len);
    aurora_buf_free(&b);
    if (rc)
        return luaL_error(L, "put: %s", aurora_err_word(rc));
    return 0;
}

/* token.invalidate(key) */
static int l_invalidate(lua_State *L)
{
    size_t klen;
    const char *key = check_key(L, 1, &klen);

    aurora_token_invalidate(key, klen);
    return 0;
}

/* token.stats() -> {entries =, fetches =, waits =, hits =, negative_hits =} */
static int l_stats(lua_State *L)
{
    aurora_token_stats s;

    aurora_token_get_stats(&s);
    lua_createtable(L, 0, 5);
    lua_pushinteger(L, (lua_Integer)s.entries);
    lua_setfield(L, -2, "entries");
    lua_pushinteger(L, (lua_Integer)s.fetches);
    lua_setfield(L, -2, "fetches");
    lua_pushinteger(L, (lua_Integer)s.waits);
    lua_setfield(L, -2, "waits");
    lua_pushinteger(L, (lua_Integer)s.hits);
    lua_setfield(L, -2, "hits");
    lua_pushinteger(L, (lua_Integer)s.negative_hits);
    lua_setfield(L, -2, "negative_hits");
    return 1;
}

int luaopen_aurora_token(lua_State *L)
{
    static const luaL_Reg funcs[] = {
        {"get", l_get},
        {"peek", l_peek},
        {"put", l_put},
        {"invalidate", l_invalidate},
        {"stats", l_stats},
        {NULL, NULL},
    };

    luaL_newlib(L, funcs);
    return 1;
}

/*
 * server.c: the HTTP(S) server (see server.h). libmicrohttpd runs one daemon per worker in
 * external-epoll mode on a dup of one shared listening socket; the worker's loop runs it. A
 * request's final access-handler call starts the route's handler as a task: if the handler
 * finishes without waiting, the response is queued in the same call; if it waits, the connection
 * is suspended and resumed (same thread) when the task ends. It must never call
 * MHD_stop_daemon with a suspended connection, nor touch a connection after resuming it except
 * from the re-entered access handler.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <lauxlib.h>
#include <lua.h>
#include <microhttpd.h>

#include "aurora/aurora.h"
#include "aurora/buf.h"
#include "aurora/http.h"
#include "aurora/json.h"
#include "aurora/log.h"
#include "aurora/metrics.h"
#include "aurora/router.h"
#include "aurora/server.h"
#include "aurora/vm.h"
#include "aurora/worker.h"

#define ROUTER_KEY "aurora.router"
#define ROUTER_MT "aurora.router.mt"
#define REQUEST_MT "aurora.request"
#define RESP_BODY_MAX (256u * 1024 * 1024)

typedef struct srv srv;
typedef struct wsrv wsrv;
typedef struct dmn dmn;

/* One address the server listens on, with its TLS material and the route table it serves. */
typedef struct listener {
    char name[128];
    char routes[128];         /* "" = the app's single route table */
    char host[256];
    int port;
    int fd;
    aurora_buf cert, key, ca;
    char bound[300];
} listener;

/* A worker's libmicrohttpd daemon for one listener. */
struct dmn {
    wsrv *ws;
    listener *l;
    struct MHD_Daemon *d;
    int epfd;
    int need_run;
    aurora_timer timer;
};

enum { REQ_NEW, REQ_RUNNING, REQ_READY };

typedef struct req {
    wsrv *ws;
    dmn *dm;
    struct MHD_Connection *conn;
    int state;
    int suspended;
    int too_large;
    int drop;                 /* close the connection without an answer */
    unsigned status;
    struct MHD_Response *resp;
    aurora_task *task;
    aurora_buf body;
    char *method;
    char *path;               /* raw (still percent-encoded), without the query */
    char id[132];
    char *client_dn;
    const char *client_cert_error; /* static text: why a presented certificate was refused */
    uint64_t start;
    struct req *prev, *next;  /* the worker's live requests */
} req;

struct wsrv {
    srv *s;
    aurora_worker *w;
    dmn *dms;                 /* one per listener */
    int ndms;
    int inflight;
    int draining;
    int killed;
    uint64_t drain_deadline;
    uint64_t rng;
    req *live;
    pthread_t thread;
};

struct srv {
    const aurora_server_opts *o;
    listener *ls;
    int nls;
    const char **route_sets;  /* distinct routes names of the listeners (none: one table) */
    int nsets;
    wsrv *ws;
    int n;
};

/* ---- app loading (shared with reload and `aurora check`) ------------------------------------ */

static int router_gc(lua_State *L)
{
    aurora_router **r = luaL_checkudata(L, 1, ROUTER_MT);

    aurora_router_free(r);
    return 0;
}

static int add_route(lua_State *L, aurora_router *r, const char *method, const char *pattern,
                     int fn_idx, char *err, size_t errlen)
{
    int ref, rc;

    if (lua_type(L, fn_idx) != LUA_TFUNCTION) {
        snprintf(err, errlen, "route %s %s: handler is a %s, not a function", method, pattern,
                 luaL_typename(L, fn_idx));
        return AURORA_E_INVALID;
    }
    lua_pushvalue(L, fn_idx);
    ref = luaL_ref(L, LUA_REGISTRYINDEX);
    rc = aurora_router_add(r, method, pattern, ref, err, errlen);
    if (rc)
        luaL_unref(L, LUA_REGISTRYINDEX, ref);
    return rc;
}

/* Compiles the route table on top of the stack into the router userdata below it. */
static int compile_routes(lua_State *L, aurora_router *r, char *err, size_t errlen)
{
    int t = lua_gettop(L), rc = 0;

    lua_getfield(L, t, "_options");
    if (lua_istable(L, -1)) {
        lua_getfield(L, -1, "case_insensitive");
        aurora_router_set_nocase(r, lua_toboolean(L, -1));
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    lua_pushnil(L);
    while (!rc && lua_next(L, t)) {
        if (lua_type(L, -2) == LUA_TSTRING && strcmp(lua_tostring(L, -2), "_options") == 0) {
            /* options, read above */
        } else if (lua_type(L, -2) == LUA_TSTRING) {
            char method[32], pattern[1024];
            const char *k = lua_tostring(L, -2), *sp = strchr(k, ' ');
            if (!sp || (size_t)(sp - k) >= sizeof(method) || strlen(sp + 1) >= sizeof(pattern)) {
                snprintf(err, errlen, "route key '%s' must be \"METHOD /path\"", k);
                rc = AURORA_E_INVALID;
            } else {
                snprintf(method, sizeof(method), "%.*s", (int)(sp - k), k);
                snprintf(pattern, sizeof(pattern), "%s", sp + 1);
                rc = add_route(L, r, method, pattern, lua_gettop(L), err, errlen);
            }
        } else if (lua_type(L, -1) == LUA_TTABLE) {
            int e = lua_gettop(L);
            lua_rawgeti(L, e, 1);
            lua_rawgeti(L, e, 2);
            lua_rawgeti(L, e, 3);
            if (lua_type(L, -3) != LUA_TSTRING || lua_type(L, -2) != LUA_TSTRING) {
                snprintf(err, errlen, "route entries must be {\"METHOD\", \"/path\", handler}");
                rc = AURORA_E_INVALID;
            } else {
                rc = add_route(L, r, lua_tostring(L, -3), lua_tostring(L, -2), lua_gettop(L), err,
                               errlen);
            }
            lua_settop(L, e);
        } else {
            snprintf(err, errlen, "unexpected entry in the route table");
            rc = AURORA_E_INVALID;
        }
        lua_pop(L, 1);
    }
    if (rc)
        lua_settop(L, t);
    return rc;
}

/* Compiles the route table on top of the stack into a new router, stored in the registry's
 * routers table under name. Pops nothing. */
static int build_router(lua_State *L, const char *name, char *err, size_t errlen)
{
    aurora_router **r;
    int t = lua_gettop(L), rc;

    lua_getfield(L, LUA_REGISTRYINDEX, ROUTER_KEY);
    r = lua_newuserdatauv(L, sizeof(*r), 0);
    *r = NULL;
    if (luaL_newmetatable(L, ROUTER_MT)) {
        lua_pushcfunction(L, router_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    *r = aurora_router_new();
    if (!*r) {
        snprintf(err, errlen, "out of memory");
        lua_settop(L, t);
        return AURORA_E_NOMEM;
    }
    lua_pushvalue(L, t);
    rc = compile_routes(L, *r, err, errlen);
    lua_settop(L, t + 2);
    if (rc == 0)
        lua_setfield(L, -2, name);
    lua_settop(L, t);
    return rc;
}

int aurora_app_load(lua_State *L, const char *dir, const char *const *sets, int nsets, char *err,
                    size_t errlen)
{
    int top = lua_gettop(L), rc = 0;

    lua_pushfstring(L, "%s/app.lua", dir);
    if (luaL_loadfile(L, lua_tostring(L, -1)) != LUA_OK ||
        aurora_vm_pcall(L, 0, 1) != LUA_OK) {
        snprintf(err, errlen, "%s", lua_tostring(L, -1));
        lua_settop(L, top);
        return AURORA_E_INVALID;
    }
    if (!lua_istable(L, -1)) {
        snprintf(err, errlen, "%s/app.lua must return the route table (got a %s)", dir,
                 luaL_typename(L, -1));
        lua_settop(L, top);
        return AURORA_E_INVALID;
    }
    lua_newtable(L);
    lua_setfield(L, LUA_REGISTRYINDEX, ROUTER_KEY);
    if (nsets < 0) {
        /* `aurora check` without the listeners: compile every named route table, or the one
         * table when its keys are routes. */
        int named = 1;
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            named &= lua_type(L, -2) == LUA_TSTRING && !strchr(lua_tostring(L, -2), ' ') &&
                     lua_istable(L, -1);
            lua_pop(L, 1);
        }
        if (!named) {
            rc = build_router(L, "", err, errlen);
        } else {
            lua_pushnil(L);
            while (!rc && lua_next(L, -2)) {
                rc = build_router(L, lua_tostring(L, -2), err, errlen);
                lua_pop(L, 1);
            }
        }
    } else if (nsets == 0) {
        rc = build_router(L, "", err, errlen);
    } else {
        /* Several listeners: the app returns one route table per name they use. */
        for (int i = 0; !rc && i < nsets; i++) {
            lua_getfield(L, -1, sets[i]);
            if (!lua_istable(L, -1)) {
                snprintf(err, errlen, "%s/app.lua must return a route table named '%s' for "
                                      "the listeners that use it", dir, sets[i]);
                rc = AURORA_E_INVALID;
            } else {
                rc = build_router(L, sets[i], err, errlen);
            }
            lua_pop(L, 1);
        }
    }
    lua_settop(L, top);
    return rc;
}

static aurora_router *router_of(lua_State *L, const char *name)
{
    aurora_router **r = NULL;

    if (lua_getfield(L, LUA_REGISTRYINDEX, ROUTER_KEY) == LUA_TTABLE) {
        lua_getfield(L, -1, name);
        r = lua_touserdata(L, -1);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    return r ? *r : NULL;
}

/* ---- responses ------------------------------------------------------------------------------ */

static void set_response(req *r, unsigned status, char *body, size_t len, const char *ctype)
{
    if (r->resp)
        MHD_destroy_response(r->resp);
    r->resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!r->resp) {
        free(body);
        return;
    }
    r->status = status;
    MHD_add_response_header(r->resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    MHD_add_response_header(r->resp, "X-Request-ID", r->id);
    if (r->ws->draining)
        MHD_add_response_header(r->resp, MHD_HTTP_HEADER_CONNECTION, "close");
}

/* An engine-made error: {"error": msg, "requestId": id}. */
static void set_error(req *r, unsigned status, const char *msg)
{
    aurora_buf b;
    char *body;
    size_t len;

    aurora_buf_init(&b, 4096);
    aurora_buf_puts(&b, "{\"error\":");
    aurora_log_json_string(&b, msg, strlen(msg));
    aurora_buf_puts(&b, ",\"requestId\":");
    aurora_log_json_string(&b, r->id, strlen(r->id));
    aurora_buf_puts(&b, "}");
    body = aurora_buf_take(&b, &len);
    set_response(r, status, body, len, "application/json");
}

static enum MHD_Result send_response(req *r)
{
    enum MHD_Result ret;
    aurora_buf f;

    if (r->drop) {
        aurora_log(AURORA_LOG_INFO, "connection dropped by the handler", "path", r->path,
                   "requestId", r->id, NULL);
        return MHD_NO;
    }
    if (!r->resp)
        set_error(r, 500, "internal error");
    if (!r->resp)
        return MHD_NO;
    ret = MHD_queue_response(r->conn, r->status, r->resp);
    MHD_destroy_response(r->resp);
    r->resp = NULL;
    aurora_metrics_request(r->status, aurora_now_ms() - r->start);
    if (aurora_log_enabled(AURORA_LOG_INFO)) {
        aurora_buf_init(&f, 8192);
        aurora_log_field_str(&f, "method", r->method, strlen(r->method));
        aurora_log_field_str(&f, "path", r->path, strlen(r->path));
        aurora_log_field_num(&f, "status", r->status);
        aurora_log_field_num(&f, "ms", (double)(aurora_now_ms() - r->start));
        aurora_log_field_str(&f, "requestId", r->id, strlen(r->id));
        aurora_log_raw(AURORA_LOG_INFO, "request", f.data, f.len);
        aurora_buf_free(&f);
    }
    return ret;
}

/* Builds the response from what the handler returned: status, body (string or table), headers. */
static void response_from_lua(req *r, lua_State *co, int nres)
{
    int base = lua_gettop(co) - nres + 1;
    lua_Integer status = 200;
    const char *ctype = NULL;
    char err[160], *body;
    aurora_buf b;
    size_t len;

    if (nres >= 1 && !lua_isnil(co, base)) {
        int ok;
        status = lua_tointegerx(co, base, &ok);
        if (!ok || status < 100 || status > 599) {
            aurora_log(AURORA_LOG_ERROR, "handler returned an invalid status", "requestId", r->id,
                       NULL);
            set_error(r, 500, "internal error");
            return;
        }
    }
    aurora_buf_init(&b, RESP_BODY_MAX);
    if (nres >= 2 && lua_istable(co, base + 1)) {
        if (aurora_json_encode(co, base + 1, &b, err, sizeof(err)) != 0) {
            aurora_log(AURORA_LOG_ERROR, "handler returned a body that is not JSON", "error", err,
                       "requestId", r->id, NULL);
            aurora_buf_free(&b);
            set_error(r, 500, "internal error");
            return;
        }
        ctype = "application/json";
    } else if (nres >= 2 && lua_type(co, base + 1) == LUA_TSTRING) {
        size_t n;
        const char *s = lua_tolstring(co, base + 1, &n);
        if (aurora_buf_append(&b, s, n) != 0) {
            aurora_buf_free(&b);
            set_error(r, 500, "internal error");
            return;
        }
        ctype = "text/plain; charset=utf-8";
    } else if (nres >= 2 && !lua_isnil(co, base + 1)) {
        aurora_log(AURORA_LOG_ERROR, "handler returned a body that is neither string nor table",
                   "requestId", r->id, NULL);
        set_error(r, 500, "internal error");
        return;
    }
    if (!b.data)
        aurora_buf_append(&b, "", 0);
    body = aurora_buf_take(&b, &len);
    set_response(r, (unsigned)status, body, len, ctype ? ctype : "text/plain");
    if (!r->resp)
        return;
    if (nres >= 3 && lua_istable(co, base + 2)) {
        lua_pushnil(co);
        while (lua_next(co, base + 2)) {
            if (lua_type(co, -2) == LUA_TSTRING &&
                (lua_type(co, -1) == LUA_TSTRING || lua_type(co, -1) == LUA_TNUMBER)) {
                const char *k = lua_tostring(co, -2), *v = lua_tostring(co, -1);
                if (strcasecmp(k, "Content-Type") == 0)
                    MHD_del_response_header(r->resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype ? ctype
                                                                                   : "text/plain");
                if (!strpbrk(v, "\r\n") && !strpbrk(k, "\r\n: "))
                    MHD_add_response_header(r->resp, k, v);
            }
            lua_pop(co, 1);
        }
    }
}

/* ---- requests ------------------------------------------------------------------------------- */

static void req_unlink(req *r)
{
    wsrv *ws = r->ws;

    if (r->prev)
        r->prev->next = r->next;
    else if (ws->live == r)
        ws->live = r->next;
    if (r->next)
        r->next->prev = r->prev;
}

static void req_free(req *r)
{
    req_unlink(r);
    r->ws->inflight--;
    aurora_metrics_in_flight(-1);
    if (r->resp)
        MHD_destroy_response(r->resp);
    aurora_buf_free(&r->body);
    free(r->method);
    free(r->path);
    free(r->client_dn);
    free(r);
}

static void on_task_done(aurora_task *t, int status, int nres, const char *msg)
{
    req *r = t->owner;

    r->task = NULL;
    if (status == LUA_OK) {
        response_from_lua(r, t->co, nres);
    } else if (t->err_drop) {
        r->drop = 1;
    } else if (t->expired) {
        set_error(r, 504, "the request took too long");
    } else if (t->err_status) {
        set_error(r, (unsigned)t->err_status, msg);
    } else if (msg && strcmp(msg, "server shutting down") == 0) {
        set_error(r, 503, "the server is shutting down");
    } else {
        aurora_log(AURORA_LOG_ERROR, "handler failed", "requestId", r->id, "path", r->path,
                   "error", msg ? msg : "?", NULL);
        set_error(r, 500, "internal error");
    }
    r->state = REQ_READY;
    if (r->suspended) {
        r->suspended = 0;
        r->dm->need_run = 1;
        MHD_resume_connection(r->conn);
    }
}

static void new_request_id(req *r)
{
    const char *h = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "X-Request-ID");
    size_t n = h ? strlen(h) : 0;
    uint64_t x;

    if (n > 0 && n <= 128 && strspn(h, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                       "0123456789._:-") == n) {
        memcpy(r->id, h, n + 1);
        return;
    }
    /* xorshift64*: request ids need to be unique, not secret. */
    x = r->ws->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    r->ws->rng = x;
    snprintf(r->id, sizeof(r->id), "%016llx", (unsigned long long)(x * 0x2545F4914F6CDD1DULL));
}

typedef struct kv_ctx {
    lua_State *L;
    int t;
    int decode;
} kv_ctx;

static void push_decoded(lua_State *L, const char *s, size_t n, int plus)
{
    char stackbuf[256], *buf = n < sizeof(stackbuf) ? stackbuf : malloc(n + 1);
    long len;

    if (!buf) {
        lua_pushlstring(L, s, n);
        return;
    }
    len = aurora_url_decode(s, n, buf, plus);
    if (len < 0)
        lua_pushlstring(L, s, n); /* malformed escape: keep the text as sent */
    else
        lua_pushlstring(L, buf, (size_t)len);
    if (buf != stackbuf)
        free(buf);
}

static enum MHD_Result header_iter(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    kv_ctx *c = cls;
    lua_State *L = c->L;
    luaL_Buffer b;

    (void)kind;
    luaL_buffinit(L, &b);
    for (const char *p = key; *p; p++)
        luaL_addchar(&b, (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p));
    luaL_pushresult(&b);
    lua_pushvalue(L, -1);
    lua_rawget(L, c->t);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_pushstring(L, value ? value : "");
    } else {
        lua_pushliteral(L, ", ");
        lua_pushstring(L, value ? value : "");
        lua_concat(L, 3);
    }
    lua_rawset(L, c->t);
    return MHD_YES;
}

static enum MHD_Result query_iter(void *cls, enum MHD_ValueKind kind, const char *key,
                                  const char *value)
{
    kv_ctx *c = cls;

    (void)kind;
    push_decoded(c->L, key, strlen(key), 1);
    if (value)
        push_decoded(c->L, value, strlen(value), 1);
    else
        lua_pushliteral(c->L, "");
    lua_rawset(c->L, c->t);
    return MHD_YES;
}

/* req:json() -> the body decoded; raises a 400 error object when it is not JSON. */
static int l_req_json(lua_State *L)
{
    char err[160];
    size_t n;
    const char *body;

    luaL_checktype(L, 1, LUA_TTABLE);
    lua_getfield(L, 1, "body");
    body = lua_tolstring(L, -1, &n);
    if (!body || n == 0) {
        lua_createtable(L, 0, 2);
        lua_pushinteger(L, 400);
        lua_setfield(L, -2, "status");
        lua_pushliteral(L, "request body is empty; a JSON document is expected");
        lua_setfield(L, -2, "error");
        return lua_error(L);
    }
    if (aurora_json_decode(L, body, n, err, sizeof(err)) != 0) {
        lua_createtable(L, 0, 2);
        lua_pushinteger(L, 400);
        lua_setfield(L, -2, "status");
        lua_pushfstring(L, "malformed JSON in request body: %s", err);
        lua_setfield(L, -2, "error");
        return lua_error(L);
    }
    return 1;
}

static void push_request_mt(lua_State *L)
{
    if (luaL_newmetatable(L, REQUEST_MT)) {
        lua_createtable(L, 0, 1);
        lua_pushcfunction(L, l_req_json);
        lua_setfield(L, -2, "json");
        lua_setfield(L, -2, "__index");
    }
}

/* Pushes the request table for the handler. */
static void push_request(lua_State *L, req *r, const aurora_route_match *m)
{
    const union MHD_ConnectionInfo *ci;
    char addr[INET6_ADDRSTRLEN] = "";
    kv_ctx c = {.L = L};
    const char *q;

    lua_createtable(L, 0, 12);
    lua_pushstring(L, r->method);
    lua_setfield(L, -2, "method");
    push_decoded(L, r->path, strlen(r->path), 0);
    lua_setfield(L, -2, "path");
    lua_pushstring(L, r->path);
    lua_setfield(L, -2, "raw_path");
    lua_pushstring(L, m->pattern);
    lua_setfield(L, -2, "route");
    lua_pushstring(L, r->id);
    lua_setfield(L, -2, "id");
    lua_pushstring(L, r->dm->l->name);
    lua_setfield(L, -2, "listener");
    lua_pushlstring(L, r->body.data ? r->body.data : "", r->body.len);
    lua_setfield(L, -2, "body");

    lua_createtable(L, 0, m->ncaps);
    for (int i = 0; i < m->ncaps; i++) {
        push_decoded(L, m->cap_val[i], m->cap_len[i], 0);
        lua_setfield(L, -2, m->cap_name[i]);
    }
    lua_setfield(L, -2, "params");

    lua_newtable(L);
    c.t = lua_gettop(L);
    MHD_get_connection_values(r->conn, MHD_HEADER_KIND, header_iter, &c);
    lua_setfield(L, -2, "headers");
    lua_newtable(L);
    c.t = lua_gettop(L);
    MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, query_iter, &c);
    lua_setfield(L, -2, "query");
    q = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Host");
    (void)q;

    ci = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci && ci->client_addr) {
        const struct sockaddr *sa = ci->client_addr;
        if (sa->sa_family == AF_INET)
            inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, addr,
                      sizeof(addr));
        else if (sa->sa_family == AF_INET6)
            inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, addr,
                      sizeof(addr));
    }
    lua_pushstring(L, addr);
    lua_setfield(L, -2, "remote_addr");
    if (r->client_dn) {
        lua_createtable(L, 0, 1);
        lua_pushstring(L, r->client_dn);
        lua_setfield(L, -2, "subject");
        lua_setfield(L, -2, "client_cert");
    }
    if (r->client_cert_error) {
        lua_pushstring(L, r->client_cert_error);
        lua_setfield(L, -2, "client_cert_error");
    }
    push_request_mt(L);
    lua_setmetatable(L, -2);
}

static void builtin(req *r, unsigned status, const char *json)
{
    set_response(r, status, strdup(json), strlen(json), "application/json");
    r->state = REQ_READY;
}

/* Routes the request and starts its handler; on return r is READY or RUNNING. */
static void dispatch(req *r)
{
    wsrv *ws = r->ws;
    lua_State *L = aurora_worker_vm(ws->w);
    aurora_router *router = router_of(L, r->dm->l->routes);
    aurora_route_match m;
    aurora_task *t;
    uint64_t deadline;
    int rc;

    int get = strcmp(r->method, "GET") == 0 || strcmp(r->method, "HEAD") == 0;

    if (strcmp(r->path, "/healthz") == 0 && get) {
        builtin(r, 200, "{\"status\":\"ok\"}");
        return;
    }
    if (strcmp(r->path, "/readyz") == 0 && get) {
        if (ws->draining)
            builtin(r, 503, "{\"status\":\"draining\"}");
        else
            builtin(r, 200, "{\"status\":\"ready\"}");
        return;
    }
    if (strcmp(r->path, "/metrics") == 0 && get) {
        aurora_buf b;
        char *text;
        size_t len;
        aurora_buf_init(&b, 1024 * 1024);
        aurora_metrics_render(&b);
        text = aurora_buf_take(&b, &len);
        set_response(r, 200, text ? text : strdup(""), len, "text/plain; version=0.0.4");
        r->state = REQ_READY;
        return;
    }
    rc = router ? aurora_router_match(router, r->method, r->path, strlen(r->path), &m) : 404;
    if (rc == 404) {
        set_error(r, 404, "not found");
        r->state = REQ_READY;
        return;
    }
    if (rc == 405) {
        set_error(r, 405, "method not allowed");
        if (r->resp)
            MHD_add_response_header(r->resp, MHD_HTTP_HEADER_ALLOW, m.allow);
        r->state = REQ_READY;
        return;
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, m.handler);
    push_request(L, r, &m);
    r->state = REQ_RUNNING;
    deadline = ws->s->o->request_timeout_ms > 0
                   ? aurora_now_ms() + (uint64_t)ws->s->o->request_timeout_ms : 0;
    t = aurora_task_start(ws->w, 1, deadline, on_task_done, r);
    /* The handler may already have finished (and its task been recycled). */
    if (r->state == REQ_RUNNING) {
        r->task = t;
        if (!t) {
            set_error(r, 503, "server overloaded");
            r->state = REQ_READY;
        }
    }
}

/* Why a client certificate that was presented did not verify, as a short word. */
static const char *cert_problem(unsigned int status)
{
    if (status & GNUTLS_CERT_SIGNER_NOT_FOUND)
        return "untrusted";
    if (status & GNUTLS_CERT_EXPIRED)
        return "expired";
    if (status & GNUTLS_CERT_NOT_ACTIVATED)
        return "not_yet_valid";
    return "untrusted";
}

/* Verifies the TLS client certificate (on this, the connection's thread) and keeps its DN, or
 * the reason a presented certificate was refused. */
static void read_client_cert(req *r)
{
    const union MHD_ConnectionInfo *ci;
    gnutls_session_t sess;
    const gnutls_datum_t *certs;
    unsigned int status = 1, n = 0;
    gnutls_x509_crt_t crt;
    gnutls_datum_t dn = {NULL, 0};

    ci = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    if (!ci || !ci->tls_session)
        return;
    sess = (gnutls_session_t)ci->tls_session;
    /* Not 0 when the client sent no certificate: then there is nothing to report. */
    if (gnutls_certificate_verify_peers2(sess, &status) != 0)
        return;
    if (status != 0) {
        r->client_cert_error = cert_problem(status);
        return;
    }
    certs = gnutls_certificate_get_peers(sess, &n);
    if (!certs || n == 0 || gnutls_x509_crt_init(&crt) != 0)
        return;
    if (gnutls_x509_crt_import(crt, &certs[0], GNUTLS_X509_FMT_DER) == 0 &&
        gnutls_x509_crt_get_dn3(crt, &dn, 0) == 0) {
        r->client_dn = strndup((const char *)dn.data, dn.size);
        gnutls_free(dn.data);
    }
    gnutls_x509_crt_deinit(crt);
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version,
                                 const char *upload_data, size_t *upload_size, void **con_cls)
{
    dmn *dm = cls;
    wsrv *ws = dm->ws;
    req *r = *con_cls;

    (void)version;
    if (!r) {
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
        r = calloc(1, sizeof(*r));
        if (!r)
            return MHD_NO;
        r->ws = ws;
        r->dm = dm;
        r->conn = conn;
        r->start = aurora_now_ms();
        r->method = strdup(method);
        r->path = strdup(url);
        aurora_buf_init(&r->body, ws->s->o->body_max);
        r->next = ws->live;
        if (ws->live)
            ws->live->prev = r;
        ws->live = r;
        ws->inflight++;
        aurora_metrics_in_flight(1);
        *con_cls = r;
        if (!r->method || !r->path)
            return MHD_NO;
        new_request_id(r);
        if (dm->l->ca.len)
            read_client_cert(r);
        if (cl && strtoull(cl, NULL, 10) > ws->s->o->body_max) {
            /* Answering now closes the connection, which is what an oversized body deserves. */
            char msg[96];
            snprintf(msg, sizeof(msg), "request body larger than %zu bytes", ws->s->o->body_max);
            set_error(r, 413, msg);
            return send_response(r);
        }
        return MHD_YES;
    }
    if (*upload_size) {
        if (!r->too_large && aurora_buf_append(&r->body, upload_data, *upload_size) != 0)
            r->too_large = 1;
        *upload_size = 0;
        return MHD_YES;
    }
    if (r->state == REQ_READY)
        return send_response(r);
    if (r->state == REQ_RUNNING)
        return MHD_YES;
    if (r->too_large) {
        char msg[96];
        snprintf(msg, sizeof(msg), "request body larger than %zu bytes", ws->s->o->body_max);
        set_error(r, 413, msg);
        return send_response(r);
    }
    dispatch(r);
    if (r->state == REQ_READY)
        return send_response(r);
    r->suspended = 1;
    MHD_suspend_connection(conn);
    return MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    req *r = *con_cls;

    (void)cls, (void)conn, (void)toe;
    if (!r)
        return;
    if (r->task) {
        /* Only reachable if MHD ends a request whose handler still runs: stop the handler. */
        r->task->owner = NULL;
        r->task->done = NULL;
        aurora_task_kill(r->task, "connection closed");
    }
    req_free(r);
    *con_cls = NULL;
}

/* Path and query arrive percent-encoded: the router splits on real slashes first and decodes
 * each segment after, so an encoded %2F stays inside its segment. */
static size_t no_unescape(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls, (void)c;
    return strlen(s);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    size_t n;

    (void)cls;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
        msg[--n] = '\0';
    aurora_log(AURORA_LOG_WARN, "libmicrohttpd", "detail", msg, NULL);
}

/* ---- the worker side ------------------------------------------------------------------------ */

/* Runs the daemon, then schedules the next run when it has work pending (its connection
 * sockets are edge-triggered: data left unread after a pass raises no new event) or a timeout
 * to enforce. */
static void run_mhd(dmn *dm)
{
    MHD_UNSIGNED_LONG_LONG ms;

    if (!dm->d)
        return;
    dm->need_run = 0;
    MHD_run(dm->d);
    if (dm->d && MHD_get_timeout(dm->d, &ms) == MHD_YES)
        aurora_timer_start(dm->ws->w, &dm->timer, aurora_now_ms() + (uint64_t)ms);
    else
        aurora_timer_stop(dm->ws->w, &dm->timer);
}

static void on_mhd_timer(aurora_worker *w, void *arg)
{
    (void)w;
    run_mhd(arg);
}

static void on_mhd_fd(aurora_worker *w, int fd, uint32_t events, void *arg)
{
    (void)w, (void)fd, (void)events;
    run_mhd(arg);
}

static void stop_daemons(wsrv *ws)
{
    for (int i = 0; i < ws->ndms; i++) {
        dmn *dm = &ws->dms[i];
        if (!dm->d)
            continue;
        aurora_worker_unwatch(ws->w, dm->epfd);
        aurora_timer_stop(ws->w, &dm->timer);
        MHD_stop_daemon(dm->d);
        dm->d = NULL;
    }
}

static void server_pass(aurora_worker *w, void *arg)
{
    wsrv *ws = arg;
    uint64_t now = aurora_now_ms();

    for (int i = 0; i < ws->ndms; i++)
        if (ws->dms[i].need_run)
            run_mhd(&ws->dms[i]);
    if (!ws->draining)
        return;
    if (ws->inflight > 0 && now >= ws->drain_deadline && !ws->killed) {
        ws->killed = 1;
        for (req *r = ws->live; r; r = r->next)
            if (r->task)
                aurora_task_kill(r->task, "server shutting down");
        for (int i = 0; i < ws->ndms; i++)
            run_mhd(&ws->dms[i]);
    }
    if (ws->inflight == 0) {
        stop_daemons(ws);
        aurora_worker_stop(w);
    }
}

static void start_drain(aurora_worker *w, void *arg)
{
    wsrv *ws = arg;

    (void)w;
    if (ws->draining)
        return;
    ws->draining = 1;
    ws->drain_deadline = aurora_now_ms() + (uint64_t)ws->s->o->drain_timeout_ms;
    for (int i = 0; i < ws->ndms; i++) {
        MHD_socket fd = ws->dms[i].d ? MHD_quiesce_daemon(ws->dms[i].d) : MHD_INVALID_SOCKET;
        if (fd != MHD_INVALID_SOCKET)
            close(fd);
        ws->dms[i].need_run = 1;
    }
}

static int load_app(aurora_worker *w, lua_State *L, void *arg, char *err, size_t errlen)
{
    srv *s = arg;

    (void)w;
    return aurora_app_load(L, s->o->app_dir, s->route_sets, s->nsets, err, errlen);
}

static int start_daemon(srv *s, dmn *dm)
{
    struct MHD_OptionItem tls[4];
    listener *l = dm->l;
    int ntls = 0, fd = dup(l->fd);
    unsigned int flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    const union MHD_DaemonInfo *info;
    unsigned int per = (unsigned)((s->o->max_connections + s->n - 1) / s->n);

    if (fd < 0)
        return AURORA_E_IO;
    if (l->cert.len) {
        flags |= MHD_USE_TLS;
        tls[ntls++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, l->cert.data};
        tls[ntls++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, l->key.data};
        if (l->ca.len)
            tls[ntls++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_TRUST, 0, l->ca.data};
    }
    tls[ntls] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    dm->d = MHD_start_daemon(
        flags, 0, NULL, NULL, on_access, dm, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
        MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd, MHD_OPTION_NOTIFY_COMPLETED, on_completed, dm,
        MHD_OPTION_CONNECTION_LIMIT, per, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned int)s->o->idle_timeout_s, MHD_OPTION_CONNECTION_MEMORY_LIMIT, s->o->header_max,
        MHD_OPTION_UNESCAPE_CALLBACK, no_unescape, NULL, MHD_OPTION_ARRAY, tls, MHD_OPTION_END);
    if (!dm->d) {
        close(fd);
        return AURORA_E_IO;
    }
    dm->timer.fn = on_mhd_timer;
    dm->timer.arg = dm;
    info = MHD_get_daemon_info(dm->d, MHD_DAEMON_INFO_EPOLL_FD);
    dm->epfd = info ? info->epoll_fd : -1;
    if (dm->epfd < 0 || aurora_worker_watch(dm->ws->w, dm->epfd, EPOLLIN, on_mhd_fd, dm) != 0)
        return AURORA_E_IO;
    return 0;
}

static void *worker_main(void *arg)
{
    wsrv *ws = arg;
    char name[16];

    snprintf(name, sizeof(name), "aurora-w%d", aurora_worker_id(ws->w));
    pthread_setname_np(pthread_self(), name);
    aurora_log_set_buffered(1);
    aurora_worker_run(ws->w, NULL);
    stop_daemons(ws);
    aurora_http_detach(ws->w);
    aurora_log_set_buffered(0);
    return NULL;
}

/* ---- the process ---------------------------------------------------------------------------- */

int aurora_server_parse_listen(const char *s, char *host, size_t hlen, int *port)
{
    const char *colon;
    char *end;
    long p;

    if (s[0] == '[') {
        const char *rb = strchr(s, ']');
        if (!rb || rb[1] != ':')
            return -1;
        snprintf(host, hlen, "%.*s", (int)(rb - s - 1), s + 1);
        colon = rb + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon)
            return -1;
        snprintf(host, hlen, "%.*s", (int)(colon - s), s);
    }
    p = strtol(colon + 1, &end, 10);
    if (*end || p < 0 || p > 65535 || !*host || end == colon + 1)
        return -1;
    if (strcmp(host, "localhost") == 0)
        snprintf(host, hlen, "127.0.0.1");
    *port = (int)p;
    return 0;
}

static int open_listener(listener *l)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    int fd, one = 1;
    char port[16];

    memset(&ss, 0, sizeof(ss));
    snprintf(port, sizeof(port), "%d", l->port);
    if (inet_pton(AF_INET, l->host, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
        ss.ss_family = AF_INET;
        ((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)l->port);
        sl = sizeof(struct sockaddr_in);
    } else if (inet_pton(AF_INET6, l->host, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
        ss.ss_family = AF_INET6;
        ((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)l->port);
        sl = sizeof(struct sockaddr_in6);
    } else {
        aurora_log(AURORA_LOG_ERROR, "listen address must be a numeric IP address", "host",
                   l->host, NULL);
        return -1;
    }
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&ss, sl) != 0 || listen(fd, 4096) != 0) {
        aurora_log(AURORA_LOG_ERROR, "cannot listen", "listener", l->name, "host", l->host,
                   "port", port, "error", strerror(errno), NULL);
        close(fd);
        return -1;
    }
    sl = sizeof(ss);
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    if (ss.ss_family == AF_INET)
        snprintf(l->bound, sizeof(l->bound), "%s:%d", l->host,
                 ntohs(((struct sockaddr_in *)&ss)->sin_port));
    else
        snprintf(l->bound, sizeof(l->bound), "[%s]:%d", l->host,
                 ntohs(((struct sockaddr_in6 *)&ss)->sin6_port));
    l->fd = fd;
    return 0;
}

static int read_pem(const char *file, aurora_buf *b, int secret, const char *what)
{
    int rc;

    aurora_buf_init(b, 1024 * 1024);
    b->secret = secret;
    if (!file || !*file)
        return 0;
    rc = aurora_read_file(file, b);
    if (rc || !b->len)
        aurora_log(AURORA_LOG_ERROR, "cannot read a TLS file", "what", what, "file", file,
                   "error", rc ? aurora_err_word(rc) : "empty file", NULL);
    return rc ? rc : (b->len ? 0 : AURORA_E_INVALID);
}

static int listener_tls(listener *l, const char *cert, const char *key, const char *ca)
{
    if (read_pem(cert, &l->cert, 0, "certificate") || read_pem(key, &l->key, 1, "key") ||
        read_pem(ca, &l->ca, 0, "client CA"))
        return -1;
    if (!l->cert.len != !l->key.len || (l->ca.len && !l->cert.len)) {
        aurora_log(AURORA_LOG_ERROR, "a TLS listener needs both a certificate and a key",
                   "listener", l->name, NULL);
        return -1;
    }
    return 0;
}

/* Reads the listeners file: a JSON array of {name, routes, listen, tls_cert, tls_key,
 * tls_client_ca}. Uses a scratch VM for the JSON. Returns 0 or -1 (logged). */
static int load_listeners(srv *s, const char *file)
{
    aurora_vm_opts vo = {0};
    lua_State *L = aurora_vm_new(&vo);
    aurora_buf text;
    char err[160];
    int rc = -1, n;

    aurora_buf_init(&text, 1024 * 1024);
    if (!L || aurora_read_file(file, &text) != 0 ||
        aurora_json_decode(L, text.data ? text.data : "", text.len, err, sizeof(err)) != 0 ||
        !lua_istable(L, -1)) {
        aurora_log(AURORA_LOG_ERROR, "cannot read the listeners file", "file", file, NULL);
        goto out;
    }
    n = (int)lua_rawlen(L, -1);
    s->ls = calloc((size_t)n + 1, sizeof(*s->ls));
    s->route_sets = calloc((size_t)n + 1, sizeof(*s->route_sets));
    if (!s->ls || !s->route_sets || n == 0)
        goto out;
    for (int i = 0; i < n; i++) {
        listener *l = &s->ls[i];
        const char *v;
        int known = 0;

        l->fd = -1;
        s->nls = i + 1;
        lua_rawgeti(L, -1, i + 1);
#define FIELD(k) (lua_getfield(L, -1, k), v = lua_tostring(L, -1), lua_pop(L, 1), v)
        snprintf(l->name, sizeof(l->name), "%s", FIELD("name") ? v : "listener");
        snprintf(l->routes, sizeof(l->routes), "%s", FIELD("routes") ? v : l->name);
        if (!FIELD("listen") ||
            aurora_server_parse_listen(v, l->host, sizeof(l->host), &l->port) != 0) {
            aurora_log(AURORA_LOG_ERROR, "listener needs \"listen\": \"HOST:PORT\"", "listener",
                       l->name, NULL);
            goto out;
        }
        {
            char cert[1024] = "", key[1024] = "", ca[1024] = "";
            snprintf(cert, sizeof(cert), "%s", FIELD("tls_cert") ? v : "");
            snprintf(key, sizeof(key), "%s", FIELD("tls_key") ? v : "");
            snprintf(ca, sizeof(ca), "%s", FIELD("tls_client_ca") ? v : "");
            if (listener_tls(l, cert, key, ca) != 0)
                goto out;
        }
#undef FIELD
        lua_pop(L, 1);
        for (int j = 0; j < s->nsets; j++)
            known |= strcmp(s->route_sets[j], l->routes) == 0;
        if (!known)
            s->route_sets[s->nsets++] = l->routes;
    }
    rc = 0;
out:
    aurora_buf_free(&text);
    aurora_vm_close(&L);
    (void)err;
    return rc;
}

/* SIGHUP: compile the app in a scratch VM first; only if that works do workers reload. */
static void reload(srv *s)
{
    aurora_vm_opts vo = {.app_dir = s->o->app_dir, .lib_dir = s->o->lib_dir,
                          .mem_limit = s->o->vm_mem_limit};
    lua_State *L = aurora_vm_new(&vo);
    char err[512];

    if (!L) {
        aurora_log(AURORA_LOG_ERROR, "reload failed: no memory for a VM", NULL);
        return;
    }
    if (aurora_app_load(L, s->o->app_dir, s->route_sets, s->nsets, err, sizeof(err)) != 0) {
        aurora_log(AURORA_LOG_ERROR, "reload rejected; the old scripts keep serving", "error", err,
                   NULL);
        aurora_metrics_reload(0);
    } else {
        aurora_metrics_reload(1);
        for (int i = 0; i < s->n; i++)
            aurora_worker_reload(s->ws[i].w);
        aurora_log(AURORA_LOG_INFO, "reloading scripts", "app", s->o->app_dir, NULL);
    }
    aurora_vm_close(&L);
}

static void raise_nofile(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static int setup_listeners(srv *s)
{
    const aurora_server_opts *o = s->o;

    if (o->listeners_file)
        return load_listeners(s, o->listeners_file);
    s->ls = calloc(1, sizeof(*s->ls));
    if (!s->ls)
        return -1;
    s->nls = 1;
    s->ls[0].fd = -1;
    snprintf(s->ls[0].name, sizeof(s->ls[0].name), "default");
    snprintf(s->ls[0].host, sizeof(s->ls[0].host), "%s", o->host);
    s->ls[0].port = o->port;
    return listener_tls(&s->ls[0], o->tls_cert_file, o->tls_key_file, o->tls_client_ca_file);
}

int aurora_server_run(const aurora_server_opts *o)
{
    srv s;
    sigset_t set;
    char err[512], nworkers[16];
    int rc = 1, started = 0, sig;
    aurora_vm_opts vo = {.app_dir = o->app_dir, .lib_dir = o->lib_dir,
                          .mem_limit = o->vm_mem_limit};
    FILE *pf;

    memset(&s, 0, sizeof(s));
    s.o = o;
    s.n = o->workers;
    raise_nofile();
    if (setup_listeners(&s) != 0)
        goto out;
    for (int i = 0; i < s.nls && !o->allow_remote; i++) {
        /* Without AURORA_API_TOKEN nobody is authenticated: loopback only. */
        const char *h = s.ls[i].host;
        if (strncmp(h, "127.", 4) != 0 && strcmp(h, "::1") != 0) {
            aurora_log(AURORA_LOG_ERROR, "refusing to listen beyond loopback without "
                       "AURORA_API_TOKEN; set it (callers then send Authorization: Bearer) or "
                       "listen on 127.0.0.1", "listener", s.ls[i].name, "host", h, NULL);
            goto out;
        }
    }
    for (int i = 0; i < s.nls; i++)
        if (open_listener(&s.ls[i]) != 0)
            goto out;
    s.ws = calloc((size_t)s.n, sizeof(*s.ws));
    if (!s.ws)
        goto out;

    /* Workers get no signals: the main thread takes them all with sigwaitinfo. */
    sigemptyset(&set);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    for (int i = 0; i < s.n; i++) {
        wsrv *ws = &s.ws[i];
        ws->s = &s;
        if (getrandom(&ws->rng, sizeof(ws->rng), 0) != sizeof(ws->rng) || !ws->rng)
            ws->rng = 0x9E3779B97F4A7C15ULL + (uint64_t)i;
        ws->w = aurora_worker_new(i + 1, &vo, load_app, &s, err, sizeof(err));
        if (!ws->w) {
            aurora_log(AURORA_LOG_ERROR, "cannot load the app", "error", err, NULL);
            goto out;
        }
        ws->dms = calloc((size_t)s.nls, sizeof(*ws->dms));
        if (!ws->dms || aurora_http_attach(ws->w) != 0)
            goto out;
        ws->ndms = s.nls;
        for (int j = 0; j < s.nls; j++) {
            ws->dms[j].ws = ws;
            ws->dms[j].l = &s.ls[j];
            if (start_daemon(&s, &ws->dms[j]) != 0) {
                aurora_log(AURORA_LOG_ERROR, "cannot start the HTTP server", "listener",
                           s.ls[j].name, NULL);
                goto out;
            }
        }
        if (aurora_worker_on_pass(ws->w, server_pass, ws) != 0)
            goto out;
    }
    for (; started < s.n; started++)
        if (pthread_create(&s.ws[started].thread, NULL, worker_main, &s.ws[started]) != 0)
            goto out;
    if (o->pid_file) {
        pf = fopen(o->pid_file, "w");
        if (pf) {
            fprintf(pf, "%d\n", (int)getpid());
            fclose(pf);
        }
    }
    snprintf(nworkers, sizeof(nworkers), "%d", s.n);
    for (int i = 0; i < s.nls; i++)
        aurora_log(AURORA_LOG_INFO, "listening", "listener", s.ls[i].name, "address",
                   s.ls[i].bound, "workers", nworkers, "tls", s.ls[i].cert.len ? "on" : "off",
                   "app", o->app_dir, NULL);
    for (;;) {
        sig = sigwaitinfo(&set, NULL);
        if (sig == SIGHUP) {
            reload(&s);
            continue;
        }
        if (sig == SIGTERM || sig == SIGINT)
            break;
    }
    aurora_log(AURORA_LOG_INFO, "shutting down: draining in-flight requests", NULL);
    rc = 0;
out:
    for (int i = 0; i < started; i++)
        aurora_worker_post(s.ws[i].w, start_drain, &s.ws[i]);
    for (int i = 0; i < started; i++)
        pthread_join(s.ws[i].thread, NULL);
    for (int i = 0; s.ws && i < s.n; i++) {
        if (s.ws[i].w && i >= started) {
            stop_daemons(&s.ws[i]);
            aurora_http_detach(s.ws[i].w);
        }
        aurora_worker_free(&s.ws[i].w);
        free(s.ws[i].dms);
    }
    for (int i = 0; s.ls && i < s.nls; i++) {
        if (s.ls[i].fd >= 0)
            close(s.ls[i].fd);
        aurora_buf_free(&s.ls[i].cert);
        aurora_buf_free(&s.ls[i].key);
        aurora_buf_free(&s.ls[i].ca);
    }
    if (o->pid_file && started)
        unlink(o->pid_file);
    free(s.ws);
    free(s.ls);
    free(s.route_sets);
    if (rc == 0)
        aurora_log(AURORA_LOG_INFO, "stopped", NULL);
    return rc;
}

/*
 * http_lua.c: the Lua module aurora.http on top of http.c. request{...} starts one transfer and
 * yields the calling task until it ends; request_many{...} starts several and yields once.
 * Secrets (aurora.secret handles) are accepted as header values, as `bearer`, in `form` bodies
 * and as `body`, and are copied only into C buffers that are wiped.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <lauxlib.h>
#include <lua.h>

#include "aurora/aurora.h"
#include "aurora/http.h"
#include "aurora/json.h"
#include "aurora/secret.h"
#include "aurora/vm.h"
#include "aurora/worker.h"

#define MANY_MAX 10000
#define BODY_MAX (64u * 1024 * 1024)

/* One yield of a task: n transfers, resumed when the last one ends. */
typedef struct call {
    aurora_task *task;
    int many;
    int n, pending;
    char ***fields;           /* per transfer: reply fields to move into secret handles */
    int nfields;
    aurora_http_xfer *x[];
} call;

static const char *const known_opts[] = {
    "method", "url", "headers", "body", "form", "json", "bearer", "timeout", "connect_timeout",
    "ca_file", "ca_pem", "client_cert", "client_key", "insecure", "max_body", "query",
    "secret_fields", NULL,
};

static int is_unreserved(unsigned char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
           ch == '-' || ch == '.' || ch == '_' || ch == '~';
}

/* Appends s percent-encoded (application/x-www-form-urlencoded style, spaces as %20). */
static int escape_into(aurora_buf *b, const unsigned char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";

    for (size_t i = 0; i < n; i++) {
        char enc[3] = {'%', hex[s[i] >> 4], hex[s[i] & 15]};
        int rc = is_unreserved(s[i]) ? aurora_buf_append(b, s + i, 1)
                                     : aurora_buf_append(b, enc, 3);
        if (rc)
            return rc;
    }
    return 0;
}

/* Appends the form encoding of the table at idx (values: strings, numbers, booleans, secrets),
 * keys sorted so the body is deterministic. Raises on bad values. */
static void form_into(lua_State *L, int idx, aurora_buf *b)
{
    int n = 0, keys;

    idx = lua_absindex(L, idx);
    lua_newtable(L);
    keys = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, "form keys must be strings");
        lua_pushvalue(L, -1);
        lua_rawseti(L, keys, ++n);
    }
    lua_getglobal(L, "table");
    lua_getfield(L, -1, "sort");
    lua_pushvalue(L, keys);
    lua_call(L, 1, 0);
    lua_pop(L, 1);
    for (int i = 1; i <= n; i++) {
        const unsigned char *v;
        size_t klen, vlen;
        const char *k;

        lua_rawgeti(L, keys, i);
        lua_gettable(L, idx);
        if (lua_type(L, -1) == LUA_TNUMBER || lua_type(L, -1) == LUA_TBOOLEAN) {
            lua_getglobal(L, "tostring");
            lua_insert(L, -2);
            lua_call(L, 1, 1);
        }
        lua_rawgeti(L, keys, i);
        k = lua_tolstring(L, -1, &klen);
        if (lua_type(L, -2) != LUA_TSTRING && !aurora_secret_test(L, -2))
            luaL_error(L, "form value of '%s' must be a string, number, boolean or secret", k);
        aurora_secret_bytes(L, -2, &v, &vlen);
        if ((i > 1 && aurora_buf_append(b, "&", 1)) ||
            escape_into(b, (const unsigned char *)k, klen) || aurora_buf_append(b, "=", 1) ||
            escape_into(b, v, vlen))
            luaL_error(L, "form body too large");
        lua_pop(L, 2);
    }
    lua_pop(L, 1);
}

static void add_header(lua_State *L, aurora_http_opts *o, const char *name, size_t nlen,
                       const unsigned char *v, size_t vlen)
{
    aurora_buf line;
    struct curl_slist *l;

    for (size_t i = 0; i < nlen; i++)
        if (name[i] == ':' || name[i] == '\r' || name[i] == '\n' || name[i] == ' ')
            luaL_error(L, "invalid header name '%s'", name);
    for (size_t i = 0; i < vlen; i++)
        if (v[i] == '\r' || v[i] == '\n')
            luaL_error(L, "invalid value for header '%s' (line break)", name);
    aurora_buf_init(&line, 64 * 1024);
    line.secret = 1;
    if (aurora_buf_append(&line, name, nlen) || aurora_buf_append(&line, ": ", 2) ||
        aurora_buf_append(&line, v, vlen)) {
        aurora_buf_free(&line);
        luaL_error(L, "header '%s' too large", name);
    }
    if (vlen == 0)
        line.data[nlen] = ';'; /* curl sends "Name;" as an empty header ("Name:" removes it) */
    if (vlen == 0)
        line.data[nlen + 1] = '\0';
    l = curl_slist_append(o->headers, line.data);
    aurora_buf_free(&line);
    if (!l)
        luaL_error(L, "not enough memory");
    o->headers = l;
}

static long opt_ms(lua_State *L, int idx, const char *name)
{
    double s;

    lua_getfield(L, idx, name);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return 0;
    }
    if (!lua_isnumber(L, -1))
        luaL_error(L, "option '%s' must be a number of seconds", name);
    s = lua_tonumber(L, -1);
    lua_pop(L, 1);
    if (s <= 0 || s > 86400)
        luaL_error(L, "option '%s' must be between 0 and 86400 seconds", name);
    return (long)(s * 1000 + 0.5) ? (long)(s * 1000 + 0.5) : 1;
}

static const char *opt_str(lua_State *L, int idx, const char *name, size_t *len)
{
    const char *s;

    lua_getfield(L, idx, name);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return NULL;
    }
    if (lua_type(L, -1) != LUA_TSTRING)
        luaL_error(L, "option '%s' must be a string", name);
    s = lua_tolstring(L, -1, len);
    lua_pop(L, 1); /* the string stays alive: it is referenced by the options table */
    return s;
}

/*
 * Fills o from the options table at idx. Raises on misuse; anything it allocated is released by
 * the caller through aurora_http_opts_clear (the options are built under a protected call).
 */
static void build_opts(lua_State *L, int idx, aurora_http_opts *o, aurora_task *t)
{
    size_t n;
    int nbody = 0, has_ctype = 0;
    char err[128];

    luaL_checktype(L, idx, LUA_TTABLE);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
        int i;
        for (i = 0; k && known_opts[i]; i++)
            if (strcmp(k, known_opts[i]) == 0)
                break;
        if (!k || !known_opts[i])
            luaL_error(L, "unknown option '%s'", k ? k : "?");
        lua_pop(L, 1);
    }
    o->url = opt_str(L, idx, "url", &n);
    if (!o->url)
        luaL_error(L, "option 'url' is required");
    o->method = opt_str(L, idx, "method", &n);
    o->timeout_ms = opt_ms(L, idx, "timeout");
    o->connect_timeout_ms = opt_ms(L, idx, "connect_timeout");
    if (t && t->deadline) {
        uint64_t now = aurora_now_ms();
        long left = t->deadline > now ? (long)(t->deadline - now) : 1;
        if (!o->timeout_ms || o->timeout_ms > left)
            o->timeout_ms = left;
    }
    o->ca_file = opt_str(L, idx, "ca_file", &n);
    o->ca_pem = opt_str(L, idx, "ca_pem", &o->ca_pem_len);
    o->client_cert_pem = opt_str(L, idx, "client_cert", &o->client_cert_len);
    lua_getfield(L, idx, "client_key");
    if (!lua_isnil(L, -1))
        aurora_secret_bytes(L, -1, &o->client_key_pem, &o->client_key_len);
    lua_pop(L, 1);
    lua_getfield(L, idx, "insecure");
    o->insecure = lua_toboolean(L, -1);
    lua_pop(L, 1);
    lua_getfield(L, idx, "max_body");
    if (!lua_isnil(L, -1)) {
        lua_Integer mb = luaL_checkinteger(L, -1);
        if (mb <= 0 || mb > (lua_Integer)BODY_MAX * 16)
            luaL_error(L, "option 'max_body' must be between 1 and %d bytes", (int)BODY_MAX * 16);
        o->max_body = (size_t)mb;
    }
    lua_pop(L, 1);

    lua_getfield(L, idx, "headers");
    if (!lua_isnil(L, -1)) {
        luaL_checktype(L, -1, LUA_TTABLE);
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            const unsigned char *v;
            size_t nl, vl;
            const char *name;
            if (lua_type(L, -2) != LUA_TSTRING)
                luaL_error(L, "header names must be strings");
            name = lua_tolstring(L, -2, &nl);
            if (lua_type(L, -1) == LUA_TNUMBER)
                lua_tostring(L, -1); /* converts in place: the value, not the key */
            aurora_secret_bytes(L, -1, &v, &vl);
            add_header(L, o, name, nl, v, vl);
            if (nl == 12 && strncasecmp(name, "Content-Type", 12) == 0)
                has_ctype = 1;
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 1);
    lua_getfield(L, idx, "bearer");
    if (!lua_isnil(L, -1)) {
        const unsigned char *v;
        size_t vl;
        aurora_buf b;
        aurora_secret_bytes(L, -1, &v, &vl);
        aurora_buf_init(&b, 64 * 1024);
        b.secret = 1;
        if (aurora_buf_append(&b, "Bearer ", 7) || aurora_buf_append(&b, v, vl)) {
            aurora_buf_free(&b);
            luaL_error(L, "bearer token too large");
        }
        add_header(L, o, "Authorization", 13, (const unsigned char *)b.data, b.len);
        aurora_buf_free(&b);
    }
    lua_pop(L, 1);

    aurora_buf_init(&o->body, BODY_MAX);
    o->body.secret = 1;
    lua_getfield(L, idx, "body");
    if (!lua_isnil(L, -1)) {
        const unsigned char *v;
        size_t vl;
        nbody++;
        aurora_secret_bytes(L, -1, &v, &vl);
        if (aurora_buf_append(&o->body, v, vl))
            luaL_error(L, "request body too large");
    }
    lua_pop(L, 1);
    lua_getfield(L, idx, "form");
    if (!lua_isnil(L, -1)) {
        luaL_checktype(L, -1, LUA_TTABLE);
        nbody++;
        form_into(L, -1, &o->body);
        if (!has_ctype)
            add_header(L, o, "Content-Type", 12,
                       (const unsigned char *)"application/x-www-form-urlencoded", 33);
    }
    lua_pop(L, 1);
    lua_getfield(L, idx, "json");
    if (!lua_isnil(L, -1)) {
        nbody++;
        if (aurora_json_encode_opts(L, -1, AURORA_JSON_SECRETS, &o->body, err, sizeof(err)) != 0)
            luaL_error(L, "option 'json': %s", err);
        if (!has_ctype)
            add_header(L, o, "Content-Type", 12, (const unsigned char *)"application/json", 16);
    }
    lua_pop(L, 1);
    if (nbody > 1)
        luaL_error(L, "give only one of 'body', 'form' and 'json'");
    if (nbody && (!o->method || strcmp(o->method, "GET") == 0 || strcmp(o->method, "HEAD") == 0))
        luaL_error(L, "a %s request cannot carry a body", o->method ? o->method : "GET");

    lua_getfield(L, idx, "secret_fields");
    if (!lua_isnil(L, -1)) {
        if (!lua_istable(L, -1))
            luaL_error(L, "option 'secret_fields' must be a list of field names");
        for (lua_Integer k = 1; k <= (lua_Integer)lua_rawlen(L, -1); k++) {
            if (lua_rawgeti(L, -1, k) != LUA_TSTRING)
                luaL_error(L, "option 'secret_fields' must be a list of field names");
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 1);

    /* query = {k = v}: appended to the URL, form-encoded. The URL is returned to the caller,
     * which keeps it on its stack until the transfer has copied it. */
    lua_getfield(L, idx, "query");
    if (!lua_isnil(L, -1)) {
        aurora_buf q;
        luaL_checktype(L, -1, LUA_TTABLE);
        aurora_buf_init(&q, BODY_MAX);
        form_into(L, -1, &q); /* a raise here leaks q: form_into only raises on misuse */
        lua_pushfstring(L, "%s%s%s", o->url, strchr(o->url, '?') ? "&" : "?",
                        q.data ? q.data : "");
        aurora_buf_free(&q);
    } else {
        lua_pushstring(L, o->url);
    }
    lua_remove(L, -2);
}

/* Moves the named string fields of a JSON reply body into secret handles in a `secrets` table
 * of the response at the top of the stack, overwriting them in the body with '*' so the body
 * Lua sees holds no copy. */
static void extract_secrets(lua_State *L, aurora_buf *body, char **fields)
{
    if (!fields || !body->data)
        return;
    lua_newtable(L);
    for (char **f = fields; *f; f++) {
        size_t st, en;
        char *tmp;
        long len;
        if (aurora_json_find_string(body->data, body->len, *f, &st, &en) != 0)
            continue;
        tmp = malloc(en - st + 1);
        if (!tmp)
            continue;
        len = aurora_json_unescape(body->data + st, en - st, tmp);
        if (len >= 0) {
            aurora_secret_push(L, tmp, (size_t)len);
            lua_setfield(L, -2, *f);
        }
        aurora_wipe(tmp, en - st + 1);
        free(tmp);
        memset(body->data + st, '*', en - st);
    }
    lua_setfield(L, -2, "secrets");
}

/* Pushes the result of a finished transfer: a response table, or nil, message, code. */
static int push_result(lua_State *L, aurora_http_result *r, char **fields)
{
    const char *p, *end;

    if (r->err)
        return aurora_vm_fail(L, r->err, "%s", r->errmsg);
    lua_createtable(L, 0, 4);
    extract_secrets(L, &r->body, fields);
    lua_pushinteger(L, r->status);
    lua_setfield(L, -2, "status");
    lua_pushlstring(L, r->body.data ? r->body.data : "", r->body.len);
    lua_setfield(L, -2, "body");
    lua_pushstring(L, r->http_version);
    lua_setfield(L, -2, "http_version");
    lua_newtable(L);
    p = r->headers.data;
    end = p ? p + r->headers.len : NULL;
    while (p && p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *colon, *v, *ve;
        eol = eol ? eol : end;
        colon = memchr(p, ':', (size_t)(eol - p));
        if (colon && colon > p) {
            luaL_Buffer name;
            v = colon + 1;
            ve = eol;
            while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            luaL_buffinit(L, &name);
            for (const char *c = p; c < colon; c++)
                luaL_addchar(&name, (char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c));
            luaL_pushresult(&name);
            lua_pushvalue(L, -1);
            lua_rawget(L, -3);
            if (lua_isnil(L, -1)) {
                lua_pop(L, 1);
                lua_pushlstring(L, v, (size_t)(ve - v));
            } else {
                /* Repeated header: join the values as RFC 9110 allows. */
                lua_pushliteral(L, ", ");
                lua_pushlstring(L, v, (size_t)(ve - v));
                lua_concat(L, 3);
            }
            lua_rawset(L, -3);
        }
        p = eol + 1;
    }
    lua_setfield(L, -2, "headers");
    return 1;
}

static void call_free(call *c)
{
    for (int i = 0; i < c->n; i++)
        aurora_http_free(&c->x[i]);
    for (int i = 0; c->fields && i < c->nfields; i++) {
        for (char **f = c->fields[i]; f && *f; f++)
            free(*f);
        free(c->fields[i]);
    }
    free(c->fields);
    free(c);
}

/* Copies the secret_fields option (a list of strings) of the request at idx for transfer i. */
static void copy_fields(lua_State *L, int idx, call *c, int i, int total)
{
    lua_Integer n;

    lua_getfield(L, idx, "secret_fields");
    if (!lua_istable(L, -1)) {
        lua_pop(L, 1);
        return; /* absent (build_opts checked the type) */
    }
    n = (lua_Integer)lua_rawlen(L, -1);
    if (!c->fields) {
        c->fields = calloc((size_t)total, sizeof(*c->fields));
        c->nfields = c->fields ? total : 0;
    }
    if (c->fields)
        c->fields[i] = calloc((size_t)n + 1, sizeof(char *));
    for (lua_Integer k = 1; c->fields && c->fields[i] && k <= n; k++) {
        lua_rawgeti(L, -1, k);
        if (lua_type(L, -1) == LUA_TSTRING)
            c->fields[i][k - 1] = strdup(lua_tostring(L, -1));
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

static void on_cancel(aurora_task *t, void *wait)
{
    (void)t;
    call_free(wait);
}

static void on_done(aurora_http_xfer *x, void *arg)
{
    call *c = arg;
    lua_State *co = c->task->co;
    int nres;

    (void)x;
    if (--c->pending > 0)
        return;
    if (!c->many) {
        nres = push_result(co, aurora_http_result_of(c->x[0]), c->fields ? c->fields[0] : NULL);
    } else {
        lua_createtable(co, c->n, 0);
        for (int i = 0; i < c->n; i++) {
            aurora_http_result *r = aurora_http_result_of(c->x[i]);
            if (r->err) {
                lua_createtable(co, 0, 2);
                lua_pushstring(co, r->errmsg);
                lua_setfield(co, -2, "error");
                lua_pushstring(co, aurora_err_word(r->err));
                lua_setfield(co, -2, "code");
            } else {
                push_result(co, r, c->fields ? c->fields[i] : NULL);
            }
            lua_rawseti(co, -2, i + 1);
        }
        nres = 1;
    }
    {
        aurora_task *t = c->task;
        call_free(c);
        aurora_task_wake(t, nres);
    }
}

/* Builds the options at idx under a protected call, so a raise frees what was built. */
static int build_protected(lua_State *L)
{
    aurora_http_opts *o = lua_touserdata(L, 1);
    aurora_task *t = lua_touserdata(L, 3);

    build_opts(L, 2, o, t);
    return 1; /* the URL */
}

static void start_one(lua_State *L, int idx, call *c, int i)
{
    aurora_http_opts o;
    int err = 0;

    memset(&o, 0, sizeof(o));
    lua_pushcfunction(L, build_protected);
    lua_pushlightuserdata(L, &o);
    lua_pushvalue(L, idx);
    lua_pushlightuserdata(L, c->task);
    if (lua_pcall(L, 3, 1, 0) != LUA_OK) {
        aurora_http_opts_clear(&o);
        call_free(c);
        lua_error(L);
    }
    o.url = lua_tostring(L, -1);
    copy_fields(L, idx, c, i, c->many ? (int)lua_rawlen(L, 1) : 1);
    c->x[i] = aurora_http_start(aurora_vm_worker(L), &o, on_done, c, &err);
    lua_pop(L, 1);
    if (!c->x[i]) {
        call_free(c);
        luaL_error(L, "cannot start an HTTP transfer: %s", aurora_err_word(err));
    }
    c->n = i + 1;
    c->pending++;
}

/* http.request(opts) -> response | nil, message, code */
static int l_request(lua_State *L)
{
    call *c;

    luaL_checktype(L, 1, LUA_TTABLE);
    aurora_task_check_wait(L, "request");
    c = calloc(1, sizeof(*c) + sizeof(aurora_http_xfer *));
    if (!c)
        return luaL_error(L, "not enough memory");
    c->task = aurora_task_of(L);
    start_one(L, 1, c, 0);
    return aurora_task_wait(L, on_cancel, c);
}

/* http.request_many{opts, opts, ...} -> {response | {error=, code=}, ...} */
static int l_request_many(lua_State *L)
{
    lua_Integer n;
    call *c;

    luaL_checktype(L, 1, LUA_TTABLE);
    n = (lua_Integer)lua_rawlen(L, 1);
    if (n > MANY_MAX)
        return luaL_error(L, "request_many: at most %d requests at once", MANY_MAX);
    if (n == 0) {
        lua_newtable(L);
        return 1;
    }
    aurora_task_check_wait(L, "request_many");
    c = calloc(1, sizeof(*c) + (size_t)n * sizeof(aurora_http_xfer *));
    if (!c)
        return luaL_error(L, "not enough memory");
    c->task = aurora_task_of(L);
    c->many = 1;
    for (lua_Integer i = 0; i < n; i++) {
        lua_rawgeti(L, 1, i + 1);
        if (!lua_istable(L, -1)) {
            call_free(c);
            return luaL_error(L, "request_many: entry %d is not a table", (int)(i + 1));
        }
        start_one(L, lua_gettop(L), c, (int)i);
        lua_pop(L, 1);
    }
    return aurora_task_wait(L, on_cancel, c);
}

/* http.escape(s) -> percent-encoded s (RFC 3986 unreserved characters kept) */
static int l_escape(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    aurora_buf b;

    aurora_buf_init(&b, 3 * n + 1);
    escape_into(&b, (const unsigned char *)s, n);
    lua_pushlstring(L, b.data ? b.data : "", b.len);
    aurora_buf_free(&b);
    return 1;
}

static int form_protected(lua_State *L)
{
    form_into(L, 2, lua_touserdata(L, 1));
    return 0;
}

/* http.form_encode(t) -> "a=1&b=2" (keys sorted) */
static int l_form_encode(lua_State *L)
{
    aurora_buf b;
    int rc;

    luaL_checktype(L, 1, LUA_TTABLE);
    aurora_buf_init(&b, BODY_MAX);
    lua_pushcfunction(L, form_protected);
    lua_pushlightuserdata(L, &b);
    lua_pushvalue(L, 1);
    rc = lua_pcall(L, 2, 0, 0);
    if (rc == LUA_OK)
        lua_pushlstring(L, b.data ? b.data : "", b.len);
    aurora_buf_free(&b);
    if (rc != LUA_OK)
        return lua_error(L);
    return 1;
}

int luaopen_aurora_http(lua_State *L)
{
    static const luaL_Reg funcs[] = {
        {"request", l_request},
        {"request_many", l_request_many},
        {"escape", l_escape},
        {"form_encode", l_form_encode},
        {NULL, NULL},
    };

    luaL_newlib(L, funcs);
    return 1;
}

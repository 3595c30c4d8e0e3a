/*
 * kubeconfig_lua.c: the Lua module aurora.kubeconfig over kubeconfig.c. parse() reads a
 * kubeconfig with the C core and builds plain tables from the result; the client key, token,
 * password and the secret-looking exec env and auth-provider config values become aurora.secret
 * handles, so no Lua string ever holds them. The C result lives in a userdata until the tables
 * are built, so a raise (out of memory) still wipes and frees it.
 */
#include <limits.h>
#include <stddef.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "aurora/aurora.h"
#include "aurora/json.h"
#include "aurora/kubeconfig.h"
#include "aurora/secret.h"
#include "aurora/vm.h"
#include "aurora/yaml.h"

#define HOLDER_MT "aurora.kubeconfig.holder"

typedef struct holder {
    aurora_kubeconfig *cfg;
} holder;

static int holder_gc(lua_State *L)
{
    holder *h = luaL_checkudata(L, 1, HOLDER_MT);

    aurora_kubeconfig_free(&h->cfg);
    return 0;
}

/* Pushes an empty holder that frees its kubeconfig when collected. Stack: pushes 1. */
static holder *new_holder(lua_State *L)
{
    holder *h = lua_newuserdatauv(L, sizeof(*h), 0);

    h->cfg = NULL;
    if (luaL_newmetatable(L, HOLDER_MT)) {
        lua_pushcfunction(L, holder_gc);
        lua_setfield(L, -2, "__gc");
        lua_pushcfunction(L, holder_gc);
        lua_setfield(L, -2, "__close");
    }
    lua_setmetatable(L, -2);
    return h;
}

/* Pushes a new table of n array slots marked with json.array_mt. Stack: pushes 1. */
static void new_array(lua_State *L, size_t n)
{
    lua_createtable(L, n > INT_MAX ? 0 : (int)n, 0);
    aurora_json_push_array_mt(L);
    lua_setmetatable(L, -2);
}

/* t[k] = s for the table on top, when s is set. Stack: unchanged. */
static void set_str(lua_State *L, const char *k, const char *s)
{
    if (!s)
        return;
    lua_pushstring(L, s);
    lua_setfield(L, -2, k);
}

/* t[k] = the n bytes at s, when s is set. Stack: unchanged. */
static void set_lstr(lua_State *L, const char *k, const char *s, size_t n)
{
    if (!s)
        return;
    lua_pushlstring(L, s, n);
    lua_setfield(L, -2, k);
}

/* t[k] = a new secret handle holding a copy of s, when s is set. Stack: unchanged. */
static void set_secret(lua_State *L, const char *k, const aurora_secret *s)
{
    if (!s)
        return;
    aurora_secret_push(L, s->data, s->len);
    lua_setfield(L, -2, k);
}

static void set_bool(lua_State *L, const char *k, int b)
{
    lua_pushboolean(L, b);
    lua_setfield(L, -2, k);
}

/* Pushes the value of a pair: its string or a secret handle. Stack: pushes 1. */
static void push_pair_value(lua_State *L, const aurora_kube_pair *p)
{
    if (p->secret)
        aurora_secret_push(L, p->secret->data, p->secret->len);
    else
        lua_pushstring(L, p->value);
}

/* The push_X functions below push one element of a list of push_config. Stack: pushes 1. */
static void push_cluster(lua_State *L, const void *elem)
{
    const aurora_kube_cluster *c = elem;

    lua_createtable(L, 0, 6);
    set_str(L, "name", c->name);
    set_str(L, "server", c->server);
    set_lstr(L, "ca_pem", c->ca_pem, c->ca_pem_len);
    set_str(L, "tls_server_name", c->tls_server_name);
    set_bool(L, "insecure", c->insecure);
    set_str(L, "proxy_url", c->proxy_url);
}

static void push_exec(lua_State *L, const aurora_kube_exec *x)
{
    size_t i;

    lua_createtable(L, 0, 7);
    set_str(L, "command", x->command);
    new_array(L, x->nargs);
    for (i = 0; i < x->nargs; i++) {
        lua_pushstring(L, x->args[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_setfield(L, -2, "args");
    new_array(L, x->nenv);
    for (i = 0; i < x->nenv; i++) {
        lua_createtable(L, 0, 2);
        set_str(L, "name", x->env[i].name);
        push_pair_value(L, &x->env[i]);
        lua_setfield(L, -2, "value");
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_setfield(L, -2, "env");
    set_str(L, "api_version", x->api_version);
    set_str(L, "install_hint", x->install_hint);
    set_str(L, "interactive_mode", x->interactive_mode);
    set_bool(L, "provide_cluster_info", x->provide_cluster_info);
}

static void push_user(lua_State *L, const void *elem)
{
    const aurora_kube_user *u = elem;
    size_t i;

    lua_createtable(L, 0, 8);
    set_str(L, "name", u->name);
    set_lstr(L, "client_cert_pem", u->client_cert_pem, u->client_cert_pem_len);
    set_secret(L, "client_key", u->client_key);
    set_secret(L, "token", u->token);
    set_str(L, "username", u->username);
    set_secret(L, "password", u->password);
    if (u->exec) {
        push_exec(L, u->exec);
        lua_setfield(L, -2, "exec");
    }
    if (u->auth_provider) {
        lua_createtable(L, 0, 2);
        set_str(L, "name", u->auth_provider->name);
        lua_createtable(L, 0, (int)(u->auth_provider->nconfig & INT_MAX));
        for (i = 0; i < u->auth_provider->nconfig; i++) {
            push_pair_value(L, &u->auth_provider->config[i]);
            lua_setfield(L, -2, u->auth_provider->config[i].name);
        }
        lua_setfield(L, -2, "config");
        lua_setfield(L, -2, "auth_provider");
    }
}

static void push_context(lua_State *L, const void *elem)
{
    const aurora_kube_context *c = elem;

    lua_createtable(L, 0, 4);
    set_str(L, "name", c->name);
    set_str(L, "cluster", c->cluster);
    set_str(L, "user", c->user);
    set_str(L, "namespace", c->namespace);
}

/* t[key] = an array of the n elements at arr, size bytes apart, each pushed by push. Stack:
 * unchanged; may raise (out of memory). */
static void set_list(lua_State *L, int t, const char *key, const void *arr, size_t n, size_t size,
                     void (*push)(lua_State *, const void *))
{
    size_t i;

    new_array(L, n);
    for (i = 0; i < n; i++) {
        push(L, (const char *)arr + i * size);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_setfield(L, t, key);
}

/* Sets field key of the table on top to element i (0-based) of the array t[list]. Stack:
 * unchanged. */
static void set_item(lua_State *L, int t, const char *list, ptrdiff_t i, const char *key)
{
    lua_getfield(L, t, list);
    lua_rawgeti(L, -1, (lua_Integer)i + 1);
    lua_setfield(L, -3, key);
    lua_pop(L, 1);
}

/* Pushes the result table of parse. Stack: pushes 1; may raise (out of memory). */
static void push_config(lua_State *L, const aurora_kubeconfig *cfg)
{
    int t;

    luaL_checkstack(L, 10, "kubeconfig");
    lua_createtable(L, 0, 5);
    t = lua_gettop(L);
    set_str(L, "current_context", cfg->current_context);
    set_list(L, t, "clusters", cfg->clusters, cfg->nclusters, sizeof(*cfg->clusters), push_cluster);
    set_list(L, t, "users", cfg->users, cfg->nusers, sizeof(*cfg->users), push_user);
    set_list(L, t, "contexts", cfg->contexts, cfg->ncontexts, sizeof(*cfg->contexts), push_context);
    if (!cfg->current)
        return;
    /* current holds the very tables of the lists above. */
    lua_createtable(L, 0, 3);
    set_item(L, t, "contexts", cfg->current - cfg->contexts, "context");
    set_item(L, t, "clusters", cfg->current_cluster - cfg->clusters, "cluster");
    if (cfg->current_user)
        set_item(L, t, "users", cfg->current_user - cfg->users, "user");
    lua_setfield(L, t, "current");
}

/* Reads opts at idx into o; o->context points into a string on the stack at idx. Raises on an
 * unknown option or a bad value. Stack: unchanged. */
static void read_opts(lua_State *L, int idx, aurora_kube_opts *o)
{
    memset(o, 0, sizeof(*o));
    aurora_yaml_read_limits(L, idx, "context", &o->limits);
    if (lua_isnoneornil(L, idx))
        return;
    if (lua_getfield(L, idx, "context") != LUA_TNIL) {
        if (lua_type(L, -1) != LUA_TSTRING)
            luaL_argerror(L, idx, "option 'context' must be a string");
        /* The options table keeps the string alive for the call. */
        o->context = lua_tostring(L, -1);
    }
    lua_pop(L, 1);
}

/* kubeconfig.parse(text [, opts]) -> cfg | nil, msg, code. text: a string or a secret. */
static int l_parse(lua_State *L)
{
    const unsigned char *text;
    aurora_kube_opts opts;
    char err[256];
    size_t n;
    holder *h;
    int rc;

    aurora_secret_bytes(L, 1, &text, &n);
    read_opts(L, 2, &opts);
    lua_settop(L, 2);
    h = new_holder(L);
    rc = aurora_kubeconfig_parse((const char *)text, n, &opts, &h->cfg, err, sizeof(err));
    if (rc)
        return aurora_vm_fail(L, rc, "%s", err);
    push_config(L, h->cfg);
    aurora_kubeconfig_free(&h->cfg);
    return 1;
}

int luaopen_aurora_kubeconfig(lua_State *L)
{
    static const luaL_Reg funcs[] = {
        {"parse", l_parse},
        {NULL, NULL},
    };

    luaL_newlib(L, funcs);
    return 1;
}

/*
 * kubeconfig.c: the kubeconfig reader (see kubeconfig.h). It loads the text with yaml.c (the one
 * YAML parser of the code base), walks the tree and copies out the fields a client needs,
 * checking types as it goes and naming the offending field in every error, never its value.
 * Credentials go straight from the tree into aurora_secret buffers; the base64 scratch buffers
 * and the tree (whose scalars yaml.c wipes) are wiped before they are freed. Unknown fields are
 * ignored, as kubectl does. No Lua, no global state.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aurora/aurora.h"
#include "aurora/crypto.h"
#include "aurora/kubeconfig.h"
#include "aurora/secret.h"
#include "aurora/yaml.h"

#define PATH_MAX_LEN 192
/* The separator between a path and a key: none at the top level. */
#define DOT(path) (*(path) ? "." : "")

typedef struct parser {
    char *errmsg;
    size_t errlen;
} parser;

static int fail(parser *p, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(parser *p, int rc, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(p->errmsg, p->errlen, fmt, ap);
    va_end(ap);
    return rc;
}

static void path_fmt(char *dst, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Formats a field path for messages; a path too long for dst is cut short. */
static void path_fmt(char *dst, size_t cap, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(dst, cap, fmt, ap);
    va_end(ap);
}

/* ---- freeing ---------------------------------------------------------------------------- */

static void pairs_free(aurora_kube_pair *v, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        free(v[i].name);
        free(v[i].value);
        aurora_secret_free(&v[i].secret);
    }
    free(v);
}

static void cluster_free(aurora_kube_cluster *c)
{
    free(c->name);
    free(c->server);
    free(c->tls_server_name);
    free(c->proxy_url);
    free(c->ca_pem);
}

static void user_free(aurora_kube_user *u)
{
    size_t i;

    free(u->name);
    free(u->client_cert_pem);
    aurora_secret_free(&u->client_key);
    aurora_secret_free(&u->token);
    free(u->username);
    aurora_secret_free(&u->password);
    if (u->exec) {
        free(u->exec->command);
        free(u->exec->api_version);
        free(u->exec->install_hint);
        free(u->exec->interactive_mode);
        for (i = 0; i < u->exec->nargs; i++)
            free(u->exec->args[i]);
        free(u->exec->args);
        pairs_free(u->exec->env, u->exec->nenv);
        free(u->exec);
    }
    if (u->auth_provider) {
        free(u->auth_provider->name);
        pairs_free(u->auth_provider->config, u->auth_provider->nconfig);
        free(u->auth_provider);
    }
}

static void context_free(aurora_kube_context *c)
{
    free(c->name);
    free(c->cluster);
    free(c->user);
    free(c->namespace);
}

void aurora_kubeconfig_free(aurora_kubeconfig **cfg)
{
    aurora_kubeconfig *k;
    size_t i;

    if (!cfg || !*cfg)
        return;
    k = *cfg;
    for (i = 0; i < k->nclusters; i++)
        cluster_free(&k->clusters[i]);
    for (i = 0; i < k->nusers; i++)
        user_free(&k->users[i]);
    for (i = 0; i < k->ncontexts; i++)
        context_free(&k->contexts[i]);
    free(k->clusters);
    free(k->users);
    free(k->contexts);
    free(k->current_context);
    free(k);
    *cfg = NULL;
}

/* ---- typed fields ----------------------------------------------------------------------- */

/* 1 when a node is absent for our purposes: missing, or null. */
static int absent(const aurora_yaml_node *v)
{
    return !v || v->type == AURORA_YAML_NULL;
}

static int is_scalar(const aurora_yaml_node *v)
{
    return v->type != AURORA_YAML_SEQ && v->type != AURORA_YAML_MAP;
}

/*
 * Sets *out to the value at key of m, or NULL when it is absent or null. Fails unless the value is
 * of type want: any scalar for AURORA_YAML_STR (a plain `namespace: 2024` is the string "2024"),
 * else exactly want (AURORA_YAML_BOOL, AURORA_YAML_MAP or AURORA_YAML_SEQ). Returns 0 or
 * AURORA_E_INVALID.
 */
static int get_node(parser *p, const aurora_yaml_node *m, const char *key, const char *path,
                    aurora_yaml_type want, const aurora_yaml_node **out)
{
    const aurora_yaml_node *v = aurora_yaml_get(m, key);
    const char *what = want == AURORA_YAML_STR    ? "a string"
                       : want == AURORA_YAML_BOOL ? "a boolean"
                       : want == AURORA_YAML_MAP  ? "a mapping"
                                                  : "a list";

    *out = NULL;
    if (absent(v))
        return 0;
    if (want == AURORA_YAML_STR ? !is_scalar(v) : v->type != want)
        return fail(p, AURORA_E_INVALID, "%s%s%s must be %s", path, DOT(path), key, what);
    *out = v;
    return 0;
}

/* Copies the string at key of m (any scalar, as get_node) into *out, NULL when absent or null.
 * Embedded NUL bytes are refused. Returns 0 or AURORA_E_INVALID / AURORA_E_NOMEM. */
static int get_str(parser *p, const aurora_yaml_node *m, const char *key, const char *path,
                   char **out)
{
    const aurora_yaml_node *v;
    int rc = get_node(p, m, key, path, AURORA_YAML_STR, &v);

    *out = NULL;
    if (rc || !v)
        return rc;
    if (strlen(v->text) != v->len)
        return fail(p, AURORA_E_INVALID, "%s%s%s must not contain a NUL byte", path, DOT(path),
                    key);
    *out = strdup(v->text);
    if (!*out)
        return fail(p, AURORA_E_NOMEM, "out of memory");
    return 0;
}

/* Copies the string at key of m into a new secret (NULL when absent). Returns 0 or an
 * aurora_err. */
static int get_secret(parser *p, const aurora_yaml_node *m, const char *key, const char *path,
                      aurora_secret **out)
{
    const aurora_yaml_node *v;
    int rc = get_node(p, m, key, path, AURORA_YAML_STR, &v);

    *out = NULL;
    if (rc || !v)
        return rc;
    *out = aurora_secret_new(v->text, v->len);
    if (!*out)
        return fail(p, AURORA_E_NOMEM, "out of memory");
    return 0;
}

/* Reads a boolean (absent or null is false). Returns 0 or AURORA_E_INVALID. */
static int get_bool(parser *p, const aurora_yaml_node *m, const char *key, const char *path,
                    int *out)
{
    const aurora_yaml_node *v;
    int rc = get_node(p, m, key, path, AURORA_YAML_BOOL, &v);

    *out = v ? v->v.b : 0;
    return rc;
}

/* Fails when m has a (non-null) file reference at key. */
static int no_file(parser *p, const aurora_yaml_node *m, const char *key, const char *path)
{
    if (absent(aurora_yaml_get(m, key)))
        return 0;
    return fail(p, AURORA_E_INVALID, "file references are not supported: %s%s%s", path, DOT(path),
                key);
}

/*
 * Decodes the base64 string at key of m (standard alphabet, padded; line breaks are skipped, as
 * Go's decoder does). Exactly one of plain and secret receives the bytes: *plain a malloc'd,
 * NUL-terminated copy with its length in *len, or *secret a new secret. An empty value counts as
 * absent. Every scratch copy is wiped. Returns 0 or an aurora_err.
 */
static int get_b64(parser *p, const aurora_yaml_node *m, const char *key, const char *path,
                   char **plain, size_t *len, aurora_secret **secret)
{
    const aurora_yaml_node *v;
    char *clean = NULL;
    unsigned char *raw = NULL;
    size_t i, n = 0, max = 0, outlen = 0;
    int rc = get_node(p, m, key, path, AURORA_YAML_STR, &v);

    if (rc || !v || v->len == 0)
        return rc;
    clean = malloc(v->len + 1);
    if (!clean) {
        rc = fail(p, AURORA_E_NOMEM, "out of memory");
        goto out;
    }
    for (i = 0; i < v->len; i++)
        if (v->text[i] != '\n' && v->text[i] != '\r')
            clean[n++] = v->text[i];
    max = aurora_crypto_b64_decoded_max(n) + 1;
    raw = malloc(max);
    if (!raw) {
        rc = fail(p, AURORA_E_NOMEM, "out of memory");
        goto out;
    }
    if (aurora_crypto_b64_decode(clean, n, AURORA_B64_STD, raw, &outlen)) {
        rc = fail(p, AURORA_E_INVALID, "%s%s%s is not valid base64", path, DOT(path), key);
        goto out;
    }
    if (secret) {
        *secret = aurora_secret_new(raw, outlen);
        if (!*secret)
            rc = fail(p, AURORA_E_NOMEM, "out of memory");
        goto out;
    }
    raw[outlen] = '\0';
    *plain = (char *)raw;
    *len = outlen;
    raw = NULL;
out:
    aurora_wipe(clean, v->len + 1);
    free(clean);
    aurora_wipe(raw, max);
    free(raw);
    return rc;
}

/* 1 when a config or env name looks like it holds a credential. */
static int secret_name(const char *name)
{
    static const char *const words[] = {"token", "secret", "password", "passwd", "key"};
    char low[64];
    size_t i;

    for (i = 0; name[i] && i < sizeof(low) - 1; i++)
        low[i] = (char)tolower((unsigned char)name[i]);
    low[i] = '\0';
    /* A name longer than the buffer is treated as secret rather than checked in part. */
    if (name[i])
        return 1;
    for (i = 0; i < AURORA_COUNT(words); i++)
        if (strstr(low, words[i]))
            return 1;
    return 0;
}

/* Fills one pair from a name and a scalar value node. Returns 0 or an aurora_err. */
static int fill_pair(parser *p, aurora_kube_pair *pair, const char *name, const aurora_yaml_node *v,
                     const char *path)
{
    pair->name = strdup(name);
    if (!pair->name)
        return fail(p, AURORA_E_NOMEM, "out of memory");
    if (secret_name(name)) {
        pair->secret = aurora_secret_new(absent(v) ? "" : v->text, absent(v) ? 0 : v->len);
        if (!pair->secret)
            return fail(p, AURORA_E_NOMEM, "out of memory");
        return 0;
    }
    if (!absent(v) && strlen(v->text) != v->len)
        return fail(p, AURORA_E_INVALID, "%s must not contain a NUL byte", path);
    pair->value = strdup(absent(v) ? "" : v->text);
    if (!pair->value)
        return fail(p, AURORA_E_NOMEM, "out of memory");
    return 0;
}

/* ---- sections --------------------------------------------------------------------------- */

/* Reads the name of an entry of a list: required, a non-empty string without NUL. */
static int entry_name(parser *p, const aurora_yaml_node *e, const char *path, char **out)
{
    int rc = get_str(p, e, "name", path, out);

    if (rc)
        return rc;
    if (!*out || !**out)
        return fail(p, AURORA_E_INVALID, "%s has no name", path);
    return 0;
}

/* The read_X functions fill the element at out from the mapping m inside an entry of a list
 * (clusters[0].cluster), whose path is path; read_list has set the element's name. */
static int read_cluster(parser *p, const aurora_yaml_node *m, const char *path, void *out)
{
    aurora_kube_cluster *c = out;
    int rc;

    rc = no_file(p, m, "certificate-authority", path);
    if (!rc)
        rc = get_str(p, m, "server", path, &c->server);
    if (!rc)
        rc = get_str(p, m, "tls-server-name", path, &c->tls_server_name);
    if (!rc)
        rc = get_str(p, m, "proxy-url", path, &c->proxy_url);
    if (!rc)
        rc = get_bool(p, m, "insecure-skip-tls-verify", path, &c->insecure);
    if (!rc)
        rc = get_b64(p, m, "certificate-authority-data", path, &c->ca_pem, &c->ca_pem_len, NULL);
    return rc;
}

static int read_exec(parser *p, const aurora_yaml_node *m, const char *path, aurora_kube_exec *x)
{
    const aurora_yaml_node *args, *env;
    char sub[PATH_MAX_LEN];
    size_t i;
    int rc;

    rc = get_str(p, m, "command", path, &x->command);
    if (!rc && !x->command)
        rc = fail(p, AURORA_E_INVALID, "%s.command is missing", path);
    if (!rc)
        rc = get_str(p, m, "apiVersion", path, &x->api_version);
    if (!rc)
        rc = get_str(p, m, "installHint", path, &x->install_hint);
    if (!rc)
        rc = get_str(p, m, "interactiveMode", path, &x->interactive_mode);
    if (!rc)
        rc = get_bool(p, m, "provideClusterInfo", path, &x->provide_cluster_info);
    if (!rc)
        rc = get_node(p, m, "args", path, AURORA_YAML_SEQ, &args);
    if (!rc && args && args->n) {
        x->args = calloc(args->n, sizeof(*x->args));
        if (!x->args)
            return fail(p, AURORA_E_NOMEM, "out of memory");
        for (i = 0; i < args->n && !rc; i++) {
            const aurora_yaml_node *a = args->items[i];

            if (!is_scalar(a) || absent(a) || strlen(a->text) != a->len)
                return fail(p, AURORA_E_INVALID, "%s.args[%zu] must be a string", path, i);
            x->args[i] = strdup(a->text);
            if (!x->args[i])
                return fail(p, AURORA_E_NOMEM, "out of memory");
            x->nargs++;
        }
    }
    if (!rc)
        rc = get_node(p, m, "env", path, AURORA_YAML_SEQ, &env);
    if (rc || !env || !env->n)
        return rc;
    x->env = calloc(env->n, sizeof(*x->env));
    if (!x->env)
        return fail(p, AURORA_E_NOMEM, "out of memory");
    for (i = 0; i < env->n; i++) {
        const aurora_yaml_node *e = env->items[i], *v;
        char *name = NULL;

        path_fmt(sub, sizeof(sub), "%s.env[%zu]", path, i);
        if (e->type != AURORA_YAML_MAP)
            return fail(p, AURORA_E_INVALID, "%s must be a mapping", sub);
        rc = entry_name(p, e, sub, &name);
        if (rc)
            return rc;
        rc = get_node(p, e, "value", sub, AURORA_YAML_STR, &v);
        if (rc) {
            free(name);
            return rc;
        }
        path_fmt(sub, sizeof(sub), "%s.env[%zu].value", path, i);
        rc = fill_pair(p, &x->env[i], name, v, sub);
        free(name);
        x->nenv++;
        if (rc)
            return rc;
    }
    return 0;
}

static int read_auth_provider(parser *p, const aurora_yaml_node *m, const char *path,
                              aurora_kube_auth_provider *a)
{
    const aurora_yaml_node *conf;
    char sub[PATH_MAX_LEN];
    size_t i;
    int rc;

    rc = get_str(p, m, "name", path, &a->name);
    if (!rc && (!a->name || !*a->name))
        rc = fail(p, AURORA_E_INVALID, "%s.name is missing", path);
    if (!rc)
        rc = get_node(p, m, "config", path, AURORA_YAML_MAP, &conf);
    if (rc || !conf || !conf->n)
        return rc;
    a->config = calloc(conf->n, sizeof(*a->config));
    if (!a->config)
        return fail(p, AURORA_E_NOMEM, "out of memory");
    for (i = 0; i < conf->n; i++) {
        const aurora_yaml_node *k = conf->items[2 * i], *v = conf->items[2 * i + 1];

        /* Keys name fields, not values, so they may appear in messages (shortened). */
        path_fmt(sub, sizeof(sub), "%s.config.%.48s", path, k->text);
        if (strlen(k->text) != k->len)
            return fail(p, AURORA_E_INVALID, "%s.config has a key with a NUL byte", path);
        if (!absent(v) && !is_scalar(v))
            return fail(p, AURORA_E_INVALID, "%s must be a string", sub);
        rc = fill_pair(p, &a->config[i], k->text, v, sub);
        a->nconfig++;
        if (rc)
            return rc;
    }
    return 0;
}

static int read_user(parser *p, const aurora_yaml_node *m, const char *path, void *out)
{
    aurora_kube_user *u = out;
    const aurora_yaml_node *x;
    char sub[PATH_MAX_LEN];
    int rc;

    rc = no_file(p, m, "client-certificate", path);
    if (!rc)
        rc = no_file(p, m, "client-key", path);
    if (!rc)
        rc = no_file(p, m, "tokenFile", path);
    if (!rc)
        rc = get_b64(p, m, "client-certificate-data", path, &u->client_cert_pem,
                     &u->client_cert_pem_len, NULL);
    if (!rc)
        rc = get_b64(p, m, "client-key-data", path, NULL, NULL, &u->client_key);
    if (!rc)
        rc = get_secret(p, m, "token", path, &u->token);
    if (!rc)
        rc = get_str(p, m, "username", path, &u->username);
    if (!rc)
        rc = get_secret(p, m, "password", path, &u->password);
    if (!rc)
        rc = get_node(p, m, "exec", path, AURORA_YAML_MAP, &x);
    if (!rc && x) {
        u->exec = calloc(1, sizeof(*u->exec));
        if (!u->exec)
            return fail(p, AURORA_E_NOMEM, "out of memory");
        path_fmt(sub, sizeof(sub), "%s.exec", path);
        rc = read_exec(p, x, sub, u->exec);
    }
    if (!rc)
        rc = get_node(p, m, "auth-provider", path, AURORA_YAML_MAP, &x);
    if (!rc && x) {
        u->auth_provider = calloc(1, sizeof(*u->auth_provider));
        if (!u->auth_provider)
            return fail(p, AURORA_E_NOMEM, "out of memory");
        path_fmt(sub, sizeof(sub), "%s.auth-provider", path);
        rc = read_auth_provider(p, x, sub, u->auth_provider);
    }
    return rc;
}

static int read_context(parser *p, const aurora_yaml_node *m, const char *path, void *out)
{
    aurora_kube_context *c = out;
    int rc;

    rc = get_str(p, m, "cluster", path, &c->cluster);
    if (!rc)
        rc = get_str(p, m, "user", path, &c->user);
    if (!rc)
        rc = get_str(p, m, "namespace", path, &c->namespace);
    return rc;
}

/* ---- lists ------------------------------------------------------------------------------ */

/* A top-level list (clusters, users, contexts): each entry is a mapping with a name and, at
 * entry, the mapping read fills the element from. The list's array and count are the fields at
 * offsets arr and count of aurora_kubeconfig; each element is size bytes and starts with its
 * char *name. */
typedef struct section {
    const char *list;
    const char *entry;
    size_t size;
    size_t arr, count;
    int (*read)(parser *p, const aurora_yaml_node *m, const char *path, void *out);
} section;

_Static_assert(offsetof(aurora_kube_cluster, name) == 0, "a cluster starts with its name");
_Static_assert(offsetof(aurora_kube_user, name) == 0, "a user starts with its name");
_Static_assert(offsetof(aurora_kube_context, name) == 0, "a context starts with its name");

static const section sections[] = {
    {"clusters", "cluster", sizeof(aurora_kube_cluster), offsetof(aurora_kubeconfig, clusters),
     offsetof(aurora_kubeconfig, nclusters), read_cluster},
    {"users", "user", sizeof(aurora_kube_user), offsetof(aurora_kubeconfig, users),
     offsetof(aurora_kubeconfig, nusers), read_user},
    {"contexts", "context", sizeof(aurora_kube_context), offsetof(aurora_kubeconfig, contexts),
     offsetof(aurora_kubeconfig, ncontexts), read_context},
};

static void **section_arr(const section *s, aurora_kubeconfig *cfg)
{
    return (void **)((char *)cfg + s->arr);
}

static size_t *section_count(const section *s, aurora_kubeconfig *cfg)
{
    return (size_t *)((char *)cfg + s->count);
}

/* ---- names ------------------------------------------------------------------------------ */

typedef struct named {
    const char *name;
    size_t index;
} named;

static int named_cmp(const void *a, const void *b)
{
    const named *x = a, *y = b;
    int c = strcmp(x->name, y->name);

    if (c)
        return c;
    return x->index < y->index ? -1 : x->index > y->index;
}

/* Fails when two entries of the list of s have the same name, naming the first repeated entry
 * and the entry it repeats. */
static int check_unique(parser *p, const section *s, aurora_kubeconfig *cfg)
{
    const char *first = *section_arr(s, cfg);
    size_t n = *section_count(s, cfg);
    const char *list = s->list;
    named *v;
    size_t i, run = 0, dup = 0, orig = 0;
    int found = 0;

    if (n < 2)
        return 0;
    v = malloc(n * sizeof(*v));
    if (!v)
        return fail(p, AURORA_E_NOMEM, "out of memory");
    for (i = 0; i < n; i++) {
        v[i].name = *(char *const *)(first + i * s->size);
        v[i].index = i;
    }
    qsort(v, n, sizeof(*v), named_cmp);
    for (i = 1; i < n; i++) {
        if (strcmp(v[i].name, v[i - 1].name) != 0) {
            run = i;
            continue;
        }
        if (!found || v[i].index < dup) {
            found = 1;
            dup = v[i].index;
            orig = v[run].index;
        }
    }
    free(v);
    if (found)
        return fail(p, AURORA_E_INVALID, "%s[%zu].name repeats the name of %s[%zu]", list, dup,
                    list, orig);
    return 0;
}

/* Reads every entry of the list of s into a calloc'd array. The count counts the entries read so
 * far, so a failure frees exactly what was filled. */
static int read_list(parser *p, const aurora_yaml_node *root, const section *s,
                     aurora_kubeconfig *cfg)
{
    void **arr = section_arr(s, cfg);
    size_t *count = section_count(s, cfg);
    const aurora_yaml_node *list, *m;
    char path[PATH_MAX_LEN], sub[PATH_MAX_LEN];
    size_t i;
    int rc = get_node(p, root, s->list, "", AURORA_YAML_SEQ, &list);

    if (rc || !list || !list->n)
        return rc;
    *arr = calloc(list->n, s->size);
    if (!*arr)
        return fail(p, AURORA_E_NOMEM, "out of memory");
    for (i = 0; i < list->n; i++) {
        const aurora_yaml_node *e = list->items[i];
        char *elem = (char *)*arr + i * s->size;

        path_fmt(path, sizeof(path), "%s[%zu]", s->list, i);
        if (e->type != AURORA_YAML_MAP)
            return fail(p, AURORA_E_INVALID, "%s must be a mapping", path);
        (*count)++;
        rc = entry_name(p, e, path, (char **)elem);
        if (!rc)
            rc = get_node(p, e, s->entry, path, AURORA_YAML_MAP, &m);
        if (!rc && m) {
            path_fmt(sub, sizeof(sub), "%s.%s", path, s->entry);
            rc = s->read(p, m, sub, elem);
        }
        if (rc)
            return rc;
    }
    return 0;
}

/* Points cfg->current* at the context named by want (or current-context) and its cluster and
 * user. Returns 0 (nothing to resolve counts) or AURORA_E_INVALID / AURORA_E_NOT_FOUND. */
static int resolve_current(parser *p, aurora_kubeconfig *cfg, const char *want)
{
    const char *name = want ? want : cfg->current_context;
    const aurora_kube_context *ctx = NULL;
    size_t i, ci = 0;

    if (!name || !*name)
        return 0;
    for (i = 0; i < cfg->ncontexts && !ctx; i++)
        if (strcmp(cfg->contexts[i].name, name) == 0) {
            ctx = &cfg->contexts[i];
            ci = i;
        }
    if (!ctx)
        return fail(p, AURORA_E_NOT_FOUND, "%s names a context that is not in contexts",
                    want ? "the context asked for" : "current-context");
    if (!ctx->cluster || !*ctx->cluster)
        return fail(p, AURORA_E_INVALID, "contexts[%zu].context.cluster is missing", ci);
    for (i = 0; i < cfg->nclusters && !cfg->current_cluster; i++)
        if (strcmp(cfg->clusters[i].name, ctx->cluster) == 0)
            cfg->current_cluster = &cfg->clusters[i];
    if (!cfg->current_cluster)
        return fail(p, AURORA_E_NOT_FOUND,
                    "contexts[%zu].context.cluster names a cluster that is not in clusters", ci);
    if (ctx->user && *ctx->user) {
        for (i = 0; i < cfg->nusers && !cfg->current_user; i++)
            if (strcmp(cfg->users[i].name, ctx->user) == 0)
                cfg->current_user = &cfg->users[i];
        if (!cfg->current_user)
            return fail(p, AURORA_E_NOT_FOUND,
                        "contexts[%zu].context.user names a user that is not in users", ci);
    }
    cfg->current = ctx;
    return 0;
}

/* Checks kind and apiVersion when they are there. */
static int check_header(parser *p, const aurora_yaml_node *root)
{
    const aurora_yaml_node *kind = aurora_yaml_get(root, "kind");
    const aurora_yaml_node *ver = aurora_yaml_get(root, "apiVersion");

    if (!absent(kind) && (kind->type != AURORA_YAML_STR || strcmp(kind->text, "Config") != 0))
        return fail(p, AURORA_E_INVALID, "kind is not Config");
    if (!absent(ver) && (ver->type != AURORA_YAML_STR || strcmp(ver->text, "v1") != 0))
        return fail(p, AURORA_E_INVALID, "apiVersion is not v1");
    return 0;
}

int aurora_kubeconfig_parse(const char *text, size_t n, const aurora_kube_opts *opts,
                            aurora_kubeconfig **out, char *errmsg, size_t errlen)
{
    parser p = {errmsg, errlen};
    aurora_yaml_doc *doc = NULL;
    aurora_kubeconfig *cfg = NULL;
    const aurora_yaml_node *root;
    char inner[256];
    size_t i;
    int rc;

    rc = aurora_yaml_load(text, n, opts ? &opts->limits : NULL, &doc, inner, sizeof(inner));
    if (rc) {
        fail(&p, rc, "kubeconfig: %s", inner);
        goto out;
    }
    if (doc->ndocs > 1) {
        rc = fail(&p, AURORA_E_INVALID, "kubeconfig holds more than one YAML document");
        goto out;
    }
    root = doc->ndocs ? doc->docs[0] : NULL;
    if (!root || root->type != AURORA_YAML_MAP) {
        rc = fail(&p, AURORA_E_INVALID, "kubeconfig is not a mapping");
        goto out;
    }
    cfg = calloc(1, sizeof(*cfg));
    if (!cfg) {
        rc = fail(&p, AURORA_E_NOMEM, "out of memory");
        goto out;
    }
    rc = check_header(&p, root);
    if (!rc)
        rc = get_str(&p, root, "current-context", "", &cfg->current_context);
    /* Every list is read before any is checked for repeated names. */
    for (i = 0; !rc && i < AURORA_COUNT(sections); i++)
        rc = read_list(&p, root, &sections[i], cfg);
    for (i = 0; !rc && i < AURORA_COUNT(sections); i++)
        rc = check_unique(&p, &sections[i], cfg);
    if (!rc)
        rc = resolve_current(&p, cfg, opts ? opts->context : NULL);
    if (!rc && cfg->current_context && !*cfg->current_context) {
        free(cfg->current_context);
        cfg->current_context = NULL;
    }
out:
    aurora_yaml_free(&doc);
    if (rc)
        aurora_kubeconfig_free(&cfg);
    else
        *out = cfg;
    return rc;
}

/*
 * fuzz_kubeconfig.c: the libFuzzer target of the YAML loader and the kubeconfig reader (`make
 * fuzz`). Each input is loaded as a YAML stream and parsed as a kubeconfig, and everything is
 * freed, so ASan and LSan see every path. Bits of the input's size pick the options and leave
 * its bytes alone: tight limits (so short inputs reach every limit) or the defaults, and the
 * context named by the option or by current-context. It also checks what the callers rely on:
 * a failure always leaves a message and no result, the tree's counters add up, every node
 * respects the limits, and the current context points into the lists. A broken invariant traps,
 * which libFuzzer reports as a crash. Links only the C core (no Lua).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "aurora/aurora.h"
#include "aurora/kubeconfig.h"
#include "aurora/yaml.h"

#define REQUIRE(c)                                                                                 \
    do {                                                                                           \
        if (!(c))                                                                                  \
            __builtin_trap();                                                                      \
    } while (0)

/* Tight limits for inputs whose size has bit 1 set. */
static const aurora_yaml_limits tight = {
    .max_bytes = 32768,
    .max_depth = 8,
    .max_nodes = 1000,
    .max_scalar = 256,
    .max_expanded = 4096,
};
static const aurora_yaml_limits defaults = {
    .max_bytes = AURORA_YAML_MAX_BYTES,
    .max_depth = AURORA_YAML_MAX_DEPTH,
    .max_nodes = AURORA_YAML_MAX_NODES,
    .max_scalar = AURORA_YAML_MAX_SCALAR,
    .max_expanded = AURORA_YAML_MAX_EXPANDED,
};

/* Checks a subtree against lim and returns its node count; depth is the nesting of its
 * parent. */
static size_t walk(const aurora_yaml_node *n, size_t depth, const aurora_yaml_limits *lim)
{
    size_t i, k, count = 1, height = 0, bytes = 0;

    REQUIRE(n);
    if (n->type != AURORA_YAML_SEQ && n->type != AURORA_YAML_MAP) {
        REQUIRE(n->text && n->text[n->len] == '\0' && n->len <= lim->max_scalar);
        REQUIRE(n->count == 1 && n->height == 0 && n->bytes == n->len && n->n == 0);
        return 1;
    }
    REQUIRE(!n->text);
    REQUIRE(depth + 1 <= lim->max_depth);
    k = n->type == AURORA_YAML_MAP ? 2 * n->n : n->n;
    for (i = 0; i < k; i++) {
        const aurora_yaml_node *c = n->items[i];

        if (n->type == AURORA_YAML_MAP && !(i & 1))
            REQUIRE(c->text); /* keys are scalars */
        count += walk(c, depth + 1, lim);
        bytes += c->bytes;
        if (c->height + 1 > height)
            height = c->height + 1;
    }
    REQUIRE(n->count == count && n->bytes == bytes && n->height == (height ? height : 1));
    return count;
}

static void touch(const char *s)
{
    if (s)
        REQUIRE(strlen(s) < ((size_t)1 << 30));
}

static void check_config(const aurora_kubeconfig *cfg)
{
    size_t i, j;

    touch(cfg->current_context);
    for (i = 0; i < cfg->nclusters; i++) {
        const aurora_kube_cluster *c = &cfg->clusters[i];

        REQUIRE(c->name && *c->name);
        touch(c->server);
        touch(c->tls_server_name);
        touch(c->proxy_url);
        if (c->ca_pem)
            REQUIRE(c->ca_pem[c->ca_pem_len] == '\0');
    }
    for (i = 0; i < cfg->nusers; i++) {
        const aurora_kube_user *u = &cfg->users[i];

        REQUIRE(u->name && *u->name);
        touch(u->username);
        if (u->token)
            REQUIRE(u->token->data[u->token->len] == '\0');
        if (u->exec) {
            touch(u->exec->command);
            for (j = 0; j < u->exec->nargs; j++)
                touch(u->exec->args[j]);
            for (j = 0; j < u->exec->nenv; j++)
                REQUIRE(!u->exec->env[j].value != !u->exec->env[j].secret);
        }
        if (u->auth_provider)
            for (j = 0; j < u->auth_provider->nconfig; j++)
                REQUIRE(!u->auth_provider->config[j].value != !u->auth_provider->config[j].secret);
    }
    for (i = 0; i < cfg->ncontexts; i++)
        REQUIRE(cfg->contexts[i].name && *cfg->contexts[i].name);
    if (cfg->current) {
        REQUIRE(cfg->current >= cfg->contexts && cfg->current < cfg->contexts + cfg->ncontexts);
        REQUIRE(cfg->current_cluster >= cfg->clusters &&
                cfg->current_cluster < cfg->clusters + cfg->nclusters);
        REQUIRE(!cfg->current_user ||
                (cfg->current_user >= cfg->users && cfg->current_user < cfg->users + cfg->nusers));
    } else {
        REQUIRE(!cfg->current_cluster && !cfg->current_user);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    aurora_yaml_doc *doc = NULL;
    aurora_kubeconfig *cfg = NULL;
    aurora_kube_opts opts = {0};
    const aurora_yaml_limits *lim = (size & 2) ? &tight : &defaults;
    char err[256];
    size_t i, nodes = 0, bytes = 0;

    err[0] = '\0';
    if (aurora_yaml_load((const char *)data, size, lim, &doc, err, sizeof(err)) == 0) {
        for (i = 0; i < doc->ndocs; i++) {
            nodes += walk(doc->docs[i], 0, lim);
            bytes += doc->docs[i]->bytes;
        }
        REQUIRE(nodes <= lim->max_nodes && bytes <= lim->max_expanded);
        aurora_yaml_free(&doc);
    } else {
        REQUIRE(err[0] && !doc);
    }
    /* Odd sizes resolve a context named by the option rather than current-context. */
    opts.context = (size & 1) ? "aks-prod" : NULL;
    opts.limits = *lim;
    err[0] = '\0';
    if (aurora_kubeconfig_parse((const char *)data, size, &opts, &cfg, err, sizeof(err)) == 0) {
        check_config(cfg);
        aurora_kubeconfig_free(&cfg);
        REQUIRE(!cfg);
    } else {
        REQUIRE(err[0] && !cfg);
    }
    return 0;
}

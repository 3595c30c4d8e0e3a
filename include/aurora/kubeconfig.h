/*
 * kubeconfig.h: reading a Kubernetes client configuration (kubeconfig, kind Config, v1) with the
 * YAML loader of yaml.h into C structs: clusters, users, contexts, and the context in use with its
 * cluster and user resolved. Embedded data (*-data fields) is base64-decoded; credentials (client
 * key, token, password, and auth-provider config or exec env values whose names look secret) are
 * aurora_secret buffers, wiped when freed, and every intermediate copy is wiped too. File
 * references (certificate-authority, client-certificate, client-key, tokenFile) are refused:
 * kubeconfigs here come from ARM and always embed their data. No Lua here: aurora.kubeconfig
 * (kubeconfig_lua.c) turns the result into tables and secret handles.
 */
#ifndef AURORA_KUBECONFIG_H
#define AURORA_KUBECONFIG_H

#include <stddef.h>

#include "aurora/secret.h"
#include "aurora/yaml.h"

/* A name and value of exec env or auth-provider config. Exactly one of value and secret is set:
 * secret when the name holds "token", "secret", "password", "passwd" or "key" (any case). */
typedef struct aurora_kube_pair {
    char *name;
    char *value;
    aurora_secret *secret;
} aurora_kube_pair;

typedef struct aurora_kube_cluster {
    char *name;
    char *server; /* the fields below are NULL when absent */
    char *tls_server_name;
    char *proxy_url;
    char *ca_pem; /* decoded certificate-authority-data, NUL-terminated */
    size_t ca_pem_len;
    int insecure; /* insecure-skip-tls-verify */
} aurora_kube_cluster;

typedef struct aurora_kube_exec {
    char *command;     /* required */
    char *api_version; /* the fields below are NULL when absent */
    char *install_hint;
    char *interactive_mode;
    char **args;
    size_t nargs;
    aurora_kube_pair *env;
    size_t nenv;
    int provide_cluster_info;
} aurora_kube_exec;

typedef struct aurora_kube_auth_provider {
    char *name; /* required */
    aurora_kube_pair *config;
    size_t nconfig;
} aurora_kube_auth_provider;

typedef struct aurora_kube_user {
    char *name;
    char *client_cert_pem; /* decoded client-certificate-data, NUL-terminated */
    size_t client_cert_pem_len;
    aurora_secret *client_key; /* decoded client-key-data */
    aurora_secret *token;
    char *username;
    aurora_secret *password;
    aurora_kube_exec *exec;
    aurora_kube_auth_provider *auth_provider;
} aurora_kube_user;

typedef struct aurora_kube_context {
    char *name;
    char *cluster; /* the fields below are NULL when absent */
    char *user;
    char *namespace;
} aurora_kube_context;

typedef struct aurora_kubeconfig {
    char *current_context;         /* NULL when absent or empty */
    aurora_kube_cluster *clusters; /* in the order of the file */
    size_t nclusters;
    aurora_kube_user *users;
    size_t nusers;
    aurora_kube_context *contexts;
    size_t ncontexts;
    /* The context in use (opts->context, else current-context) and what it names; all NULL when
     * neither is set. user is NULL when the context names no user. They point into the arrays. */
    const aurora_kube_context *current;
    const aurora_kube_cluster *current_cluster;
    const aurora_kube_user *current_user;
} aurora_kubeconfig;

typedef struct aurora_kube_opts {
    const char *context;       /* the context to resolve instead of current-context, or NULL */
    aurora_yaml_limits limits; /* for the YAML loader; zero fields take the defaults */
} aurora_kube_opts;

/*
 * Parses the n bytes of a kubeconfig. opts may be NULL. Sets *out, which the caller frees with
 * aurora_kubeconfig_free. Returns 0, or an aurora_err with a message in errmsg that names the
 * field ("users[1].user.token must be a string") and never a value:
 * - AURORA_E_INVALID: malformed YAML, not one mapping, a kind other than Config or apiVersion
 *   other than v1, a list that is not a list, an entry without a name, a duplicate name, a
 *   field of the wrong type, invalid base64 in a *-data field, an exec without a command, an
 *   auth-provider without a name, or a file reference ("file references are not supported:
 *   clusters[0].cluster.certificate-authority");
 * - AURORA_E_NOT_FOUND: the context in use, or the cluster or user it names, does not exist;
 * - AURORA_E_TOO_LARGE: a limit of the YAML loader;
 * - AURORA_E_NOMEM.
 */
int aurora_kubeconfig_parse(const char *text, size_t n, const aurora_kube_opts *opts,
                            aurora_kubeconfig **out, char *errmsg, size_t errlen);

/* Wipes and frees *cfg and everything in it, sets *cfg to NULL. Harmless on NULL. */
void aurora_kubeconfig_free(aurora_kubeconfig **cfg);

#endif

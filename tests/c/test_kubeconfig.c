/*
 * test_kubeconfig.c: unit tests of the kubeconfig reader (src/kubeconfig.c) without Lua: AKS
 * admin (client certificate, key and token), AAD user (exec with kubelogin) and legacy azure
 * auth-provider kubeconfigs, the resolution of the current context, and every validation error
 * (types, names, base64, file references, limits, truncation). Certificates and keys are
 * generated at run time.
 */
#include <stdlib.h>
#include <string.h>

#include "aurora/aurora.h"
#include "aurora/buf.h"
#include "aurora/crypto.h"
#include "aurora/kubeconfig.h"
#include "check.h"

static char err[256];

/* A CA certificate, a client certificate and its private key, as PEM and base64 of the PEM. */
static struct {
    aurora_buf ca_pem, cert_pem, ca_b64, cert_b64, key_b64;
    aurora_secret *key_pem;
    int ready;
} pki;

static int make_pki(void)
{
    static const char *const ca_subject[] = {"CN", "ca"};
    static const char *const subject[] = {"CN", "masterclient", "O", "system:masters"};
    aurora_cert_spec ca = {0}, leaf = {0};
    EVP_PKEY *ca_key = NULL, *key = NULL;
    X509 *ca_cert = NULL, *cert = NULL;
    int ok = 0;

    if (pki.ready)
        return 1;
    aurora_buf_init(&pki.ca_pem, 1 << 16);
    aurora_buf_init(&pki.cert_pem, 1 << 16);
    aurora_buf_init(&pki.ca_b64, 1 << 16);
    aurora_buf_init(&pki.cert_b64, 1 << 16);
    aurora_buf_init(&pki.key_b64, 1 << 16);
    pki.key_b64.secret = 1;
    if (aurora_crypto_key_generate("ec", 0, &ca_key) || aurora_crypto_key_generate("ec", 0, &key))
        goto out;
    ca.key = ca_key;
    ca.subject = ca_subject;
    ca.subject_n = 1;
    ca.days = 1;
    ca.usage = AURORA_CERT_CA;
    leaf.key = key;
    leaf.subject = subject;
    leaf.subject_n = 2;
    leaf.days = 1;
    leaf.usage = AURORA_CERT_CLIENT;
    if (aurora_crypto_cert_issue(&ca, &ca_cert))
        goto out;
    leaf.ca_cert = ca_cert;
    leaf.ca_key = ca_key;
    if (aurora_crypto_cert_issue(&leaf, &cert) || aurora_crypto_cert_pem(ca_cert, &pki.ca_pem) ||
        aurora_crypto_cert_pem(cert, &pki.cert_pem) ||
        aurora_crypto_key_private_pem(key, &pki.key_pem))
        goto out;
    if (aurora_crypto_b64_encode_buf(pki.ca_pem.data, pki.ca_pem.len, AURORA_B64_STD,
                                     &pki.ca_b64) ||
        aurora_crypto_b64_encode_buf(pki.cert_pem.data, pki.cert_pem.len, AURORA_B64_STD,
                                     &pki.cert_b64) ||
        aurora_crypto_b64_encode_buf(pki.key_pem->data, pki.key_pem->len, AURORA_B64_STD,
                                     &pki.key_b64))
        goto out;
    ok = pki.ready = 1;
out:
    aurora_crypto_cert_free(&ca_cert);
    aurora_crypto_cert_free(&cert);
    aurora_crypto_key_free(&ca_key);
    aurora_crypto_key_free(&key);
    return ok;
}

static void free_pki(void)
{
    aurora_buf_free(&pki.ca_pem);
    aurora_buf_free(&pki.cert_pem);
    aurora_buf_free(&pki.ca_b64);
    aurora_buf_free(&pki.cert_b64);
    aurora_buf_free(&pki.key_b64);
    aurora_secret_free(&pki.key_pem);
}

/* The admin kubeconfig listClusterAdminCredential returns, in the layout AKS writes. */
static void admin_yaml(aurora_buf *b)
{
    aurora_buf_printf(b,
                      "apiVersion: v1\n"
                      "clusters:\n"
                      "- cluster:\n"
                      "    certificate-authority-data: %s\n"
                      "    server: https://aks-prod-dns-4f1c.hcp.westeurope.azmk8s.io:443\n"
                      "  name: aks-prod\n"
                      "contexts:\n"
                      "- context:\n"
                      "    cluster: aks-prod\n"
                      "    user: clusterAdmin_rg-aks_aks-prod\n"
                      "  name: aks-prod\n"
                      "current-context: aks-prod\n"
                      "kind: Config\n"
                      "preferences: {}\n"
                      "users:\n"
                      "- name: clusterAdmin_rg-aks_aks-prod\n"
                      "  user:\n"
                      "    client-certificate-data: %s\n"
                      "    client-key-data: %s\n"
                      "    token: 0123456789abcdef0123456789abcdef\n",
                      pki.ca_b64.data, pki.cert_b64.data, pki.key_b64.data);
}

static int parse(const char *s, aurora_kubeconfig **cfg)
{
    err[0] = '\0';
    return aurora_kubeconfig_parse(s, strlen(s), NULL, cfg, err, sizeof(err));
}

/* Parses s and expects failure rc with exactly the message msg. */
static int fails(const char *s, int rc, const char *msg)
{
    aurora_kubeconfig *cfg = NULL;
    int got = parse(s, &cfg);

    if (got != rc || cfg || strcmp(err, msg) != 0) {
        printf("  input: %s\n  got %d \"%s\"\n", s, got, err);
        aurora_kubeconfig_free(&cfg);
        return 0;
    }
    return 1;
}

TEST(an_aks_admin_kubeconfig_yields_server_ca_certificate_key_and_token)
{
    aurora_kubeconfig *cfg = NULL;
    const aurora_kube_user *u;
    aurora_buf b;

    CHECK(make_pki());
    aurora_buf_init(&b, 1 << 20);
    b.secret = 1;
    admin_yaml(&b);
    CHECK_EQ_INT(aurora_kubeconfig_parse(b.data, b.len, NULL, &cfg, err, sizeof(err)), 0);
    aurora_buf_free(&b);
    CHECK_EQ_STR(cfg->current_context, "aks-prod");
    CHECK_EQ_INT(cfg->nclusters, 1);
    CHECK_EQ_STR(cfg->clusters[0].name, "aks-prod");
    CHECK_EQ_STR(cfg->clusters[0].server, "https://aks-prod-dns-4f1c.hcp.westeurope.azmk8s.io:443");
    CHECK_EQ_INT(cfg->clusters[0].ca_pem_len, pki.ca_pem.len);
    CHECK(memcmp(cfg->clusters[0].ca_pem, pki.ca_pem.data, pki.ca_pem.len) == 0);
    CHECK_EQ_INT(cfg->clusters[0].insecure, 0);
    CHECK(cfg->clusters[0].tls_server_name == NULL);
    CHECK_EQ_INT(cfg->nusers, 1);
    u = &cfg->users[0];
    CHECK_EQ_STR(u->client_cert_pem, pki.cert_pem.data);
    CHECK_EQ_INT(u->client_key->len, pki.key_pem->len);
    CHECK(memcmp(u->client_key->data, pki.key_pem->data, pki.key_pem->len) == 0);
    CHECK_EQ_STR((const char *)u->token->data, "0123456789abcdef0123456789abcdef");
    CHECK(u->password == NULL && u->exec == NULL && u->auth_provider == NULL);
    CHECK_EQ_INT(cfg->ncontexts, 1);
    CHECK(cfg->current == &cfg->contexts[0]);
    CHECK(cfg->current_cluster == &cfg->clusters[0]);
    CHECK(cfg->current_user == &cfg->users[0]);
    aurora_kubeconfig_free(&cfg);
    CHECK(cfg == NULL);
}

static const char aad_exec[] =
    "apiVersion: v1\n"
    "clusters:\n"
    "- cluster:\n"
    "    certificate-authority-data: \"\"\n"
    "    server: https://aks-aad.hcp.eastus.azmk8s.io:443\n"
    "    tls-server-name: aks-aad.hcp.eastus.azmk8s.io\n"
    "    proxy-url: http://proxy.local:3128\n"
    "  name: aks-aad\n"
    "contexts:\n"
    "- context:\n"
    "    cluster: aks-aad\n"
    "    namespace: shop\n"
    "    user: clusterUser_rg-aks_aks-aad\n"
    "  name: aks-aad\n"
    "current-context: aks-aad\n"
    "kind: Config\n"
    "preferences: {}\n"
    "users:\n"
    "- name: clusterUser_rg-aks_aks-aad\n"
    "  user:\n"
    "    exec:\n"
    "      apiVersion: client.authentication.k8s.io/v1beta1\n"
    "      args:\n"
    "      - get-token\n"
    "      - --environment\n"
    "      - AzurePublicCloud\n"
    "      - --server-id\n"
    "      - 6dae42f8-4368-4678-94ff-3960e28e3630\n"
    "      - --login\n"
    "      - devicecode\n"
    "      command: kubelogin\n"
    "      env: null\n"
    "      installHint: |2\n"
    "\n"
    "        kubelogin is not installed which is required to connect to AAD enabled cluster.\n"
    "\n"
    "        To learn more, please go to https://aka.ms/aks/kubelogin\n"
    "      interactiveMode: IfAvailable\n"
    "      provideClusterInfo: false\n";

TEST(an_aad_user_kubeconfig_keeps_the_kubelogin_exec_section)
{
    aurora_kubeconfig *cfg = NULL;
    const aurora_kube_exec *x;

    CHECK_EQ_INT(parse(aad_exec, &cfg), 0);
    CHECK(cfg->clusters[0].ca_pem == NULL);
    CHECK_EQ_STR(cfg->clusters[0].tls_server_name, "aks-aad.hcp.eastus.azmk8s.io");
    CHECK_EQ_STR(cfg->clusters[0].proxy_url, "http://proxy.local:3128");
    CHECK_EQ_STR(cfg->contexts[0].namespace, "shop");
    x = cfg->users[0].exec;
    CHECK(x);
    CHECK_EQ_STR(x->command, "kubelogin");
    CHECK_EQ_STR(x->api_version, "client.authentication.k8s.io/v1beta1");
    CHECK_EQ_INT(x->nargs, 7);
    CHECK_EQ_STR(x->args[0], "get-token");
    CHECK_EQ_STR(x->args[4], "6dae42f8-4368-4678-94ff-3960e28e3630");
    CHECK_EQ_INT(x->nenv, 0);
    CHECK_EQ_STR(x->install_hint, "\nkubelogin is not installed which is required to connect to "
                                  "AAD enabled cluster.\n\nTo learn more, please go to "
                                  "https://aka.ms/aks/kubelogin\n");
    CHECK_EQ_STR(x->interactive_mode, "IfAvailable");
    CHECK_EQ_INT(x->provide_cluster_info, 0);
    CHECK(cfg->users[0].token == NULL && cfg->users[0].client_key == NULL);
    CHECK(cfg->current_user == &cfg->users[0]);
    aurora_kubeconfig_free(&cfg);
}

TEST(exec_env_values_with_secret_names_become_secrets)
{
    static const char text[] = "users:\n"
                               "- name: spn\n"
                               "  user:\n"
                               "    exec:\n"
                               "      command: kubelogin\n"
                               "      args: [get-token, --login, spn]\n"
                               "      provideClusterInfo: true\n"
                               "      env:\n"
                               "      - name: AAD_SERVICE_PRINCIPAL_CLIENT_ID\n"
                               "        value: 1a2b\n"
                               "      - name: AAD_SERVICE_PRINCIPAL_CLIENT_SECRET\n"
                               "        value: not-a-real-secret\n"
                               "      - name: EMPTY\n";
    aurora_kubeconfig *cfg = NULL;
    const aurora_kube_exec *x;

    CHECK_EQ_INT(parse(text, &cfg), 0);
    CHECK(cfg->current == NULL && cfg->current_cluster == NULL && cfg->current_user == NULL);
    x = cfg->users[0].exec;
    CHECK_EQ_INT(x->provide_cluster_info, 1);
    CHECK_EQ_INT(x->nenv, 3);
    CHECK_EQ_STR(x->env[0].value, "1a2b");
    CHECK(x->env[0].secret == NULL);
    CHECK(x->env[1].value == NULL);
    CHECK_EQ_STR((const char *)x->env[1].secret->data, "not-a-real-secret");
    CHECK_EQ_STR(x->env[2].value, "");
    aurora_kubeconfig_free(&cfg);
}

TEST(the_legacy_azure_auth_provider_keeps_its_config)
{
    static const char text[] = "apiVersion: v1\n"
                               "kind: Config\n"
                               "clusters:\n"
                               "- name: aks-aad\n"
                               "  cluster:\n"
                               "    server: https://aks-aad.example:443\n"
                               "    insecure-skip-tls-verify: true\n"
                               "contexts:\n"
                               "- name: aks-aad\n"
                               "  context: {cluster: aks-aad, user: u}\n"
                               "current-context: aks-aad\n"
                               "users:\n"
                               "- name: u\n"
                               "  user:\n"
                               "    auth-provider:\n"
                               "      name: azure\n"
                               "      config:\n"
                               "        apiserver-id: 6dae42f8-4368-4678-94ff-3960e28e3630\n"
                               "        client-id: 80faf920-1908-4b52-b5ef-a8e7bedfc67a\n"
                               "        config-mode: \"1\"\n"
                               "        environment: AzurePublicCloud\n"
                               "        tenant-id: 8f0c1a2b-3c4d-4e5f-8a6b-7c8d9e0f1a2b\n"
                               "        access-token: fake-access\n"
                               "        refresh-token: fake-refresh\n"
                               "        expires-on: 1700000000\n";
    aurora_kubeconfig *cfg = NULL;
    const aurora_kube_auth_provider *a;
    size_t i;
    int secrets = 0;

    CHECK_EQ_INT(parse(text, &cfg), 0);
    CHECK_EQ_INT(cfg->clusters[0].insecure, 1);
    a = cfg->users[0].auth_provider;
    CHECK(a);
    CHECK_EQ_STR(a->name, "azure");
    CHECK_EQ_INT(a->nconfig, 8);
    CHECK_EQ_STR(a->config[0].name, "apiserver-id");
    CHECK_EQ_STR(a->config[2].value, "1");
    CHECK_EQ_STR(a->config[7].value, "1700000000");
    for (i = 0; i < a->nconfig; i++)
        secrets += a->config[i].secret != NULL;
    CHECK_EQ_INT(secrets, 2);
    CHECK_EQ_STR((const char *)a->config[5].secret->data, "fake-access");
    aurora_kubeconfig_free(&cfg);
}

TEST(the_context_can_be_chosen_and_must_exist)
{
    static const char text[] = "clusters:\n"
                               "- {name: a, cluster: {server: https://a}}\n"
                               "- {name: b, cluster: {server: https://b}}\n"
                               "users:\n"
                               "- {name: ua, user: {token: t}}\n"
                               "contexts:\n"
                               "- {name: ca, context: {cluster: a, user: ua}}\n"
                               "- {name: cb, context: {cluster: b}}\n"
                               "- {name: cx, context: {cluster: x}}\n"
                               "- {name: cu, context: {cluster: a, user: nobody}}\n"
                               "- {name: cn, context: {user: ua}}\n"
                               "current-context: ca\n";
    aurora_kube_opts opts = {0};
    aurora_kubeconfig *cfg = NULL;

    CHECK_EQ_INT(aurora_kubeconfig_parse(text, strlen(text), &opts, &cfg, err, sizeof(err)), 0);
    CHECK_EQ_STR(cfg->current->name, "ca");
    CHECK_EQ_STR(cfg->current_cluster->server, "https://a");
    CHECK_EQ_STR(cfg->current_user->name, "ua");
    aurora_kubeconfig_free(&cfg);
    opts.context = "cb";
    CHECK_EQ_INT(aurora_kubeconfig_parse(text, strlen(text), &opts, &cfg, err, sizeof(err)), 0);
    CHECK_EQ_STR(cfg->current_cluster->server, "https://b");
    CHECK(cfg->current_user == NULL);
    aurora_kubeconfig_free(&cfg);
    opts.context = "nope";
    CHECK_EQ_INT(aurora_kubeconfig_parse(text, strlen(text), &opts, &cfg, err, sizeof(err)),
                 AURORA_E_NOT_FOUND);
    CHECK_EQ_STR(err, "the context asked for names a context that is not in contexts");
    opts.context = "cx";
    CHECK_EQ_INT(aurora_kubeconfig_parse(text, strlen(text), &opts, &cfg, err, sizeof(err)),
                 AURORA_E_NOT_FOUND);
    CHECK_EQ_STR(err, "contexts[2].context.cluster names a cluster that is not in clusters");
    opts.context = "cu";
    CHECK_EQ_INT(aurora_kubeconfig_parse(text, strlen(text), &opts, &cfg, err, sizeof(err)),
                 AURORA_E_NOT_FOUND);
    CHECK_EQ_STR(err, "contexts[3].context.user names a user that is not in users");
    opts.context = "cn";
    CHECK_EQ_INT(aurora_kubeconfig_parse(text, strlen(text), &opts, &cfg, err, sizeof(err)),
                 AURORA_E_INVALID);
    CHECK_EQ_STR(err, "contexts[4].context.cluster is missing");
    CHECK(cfg == NULL);
}

TEST(a_missing_current_context_is_not_found_and_an_empty_one_is_none)
{
    aurora_kubeconfig *cfg = NULL;

    CHECK(fails("current-context: gone\ncontexts: []\n", AURORA_E_NOT_FOUND,
                "current-context names a context that is not in contexts"));
    CHECK_EQ_INT(parse("current-context: \"\"\nclusters: []\n", &cfg), 0);
    CHECK(cfg->current_context == NULL && cfg->current == NULL);
    CHECK_EQ_INT(cfg->nclusters, 0);
    aurora_kubeconfig_free(&cfg);
    CHECK_EQ_INT(parse("kind: Config\n", &cfg), 0);
    CHECK(cfg->nusers == 0 && cfg->ncontexts == 0);
    aurora_kubeconfig_free(&cfg);
}

TEST(the_shape_is_checked_with_the_field_named)
{
    CHECK(fails("", AURORA_E_INVALID, "kubeconfig is not a mapping"));
    CHECK(fails("- a\n- b\n", AURORA_E_INVALID, "kubeconfig is not a mapping"));
    CHECK(fails("just text", AURORA_E_INVALID, "kubeconfig is not a mapping"));
    CHECK(fails("kind: Config\n---\nkind: Config\n", AURORA_E_INVALID,
                "kubeconfig holds more than one YAML document"));
    CHECK(fails("kind: Pod\n", AURORA_E_INVALID, "kind is not Config"));
    CHECK(fails("apiVersion: v2\n", AURORA_E_INVALID, "apiVersion is not v1"));
    CHECK(fails("clusters: {a: 1}\n", AURORA_E_INVALID, "clusters must be a list"));
    CHECK(fails("users: x\n", AURORA_E_INVALID, "users must be a list"));
    CHECK(fails("clusters: [a]\n", AURORA_E_INVALID, "clusters[0] must be a mapping"));
    CHECK(
        fails("clusters:\n- cluster: {server: x}\n", AURORA_E_INVALID, "clusters[0] has no name"));
    CHECK(fails("users:\n- {name: a}\n- {name: ''}\n", AURORA_E_INVALID, "users[1] has no name"));
    CHECK(
        fails("contexts:\n- {name: [x]}\n", AURORA_E_INVALID, "contexts[0].name must be a string"));
    CHECK(fails("clusters:\n- {name: a, cluster: [x]}\n", AURORA_E_INVALID,
                "clusters[0].cluster must be a mapping"));
    CHECK(fails("clusters:\n- {name: a, cluster: {server: {x: 1}}}\n", AURORA_E_INVALID,
                "clusters[0].cluster.server must be a string"));
    CHECK(fails("clusters:\n- {name: a, cluster: {insecure-skip-tls-verify: 'true'}}\n",
                AURORA_E_INVALID,
                "clusters[0].cluster.insecure-skip-tls-verify must be a boolean"));
    CHECK(fails("users:\n- {name: a, user: {}}\n- {name: b, user: {token: [1]}}\n",
                AURORA_E_INVALID, "users[1].user.token must be a string"));
    CHECK(fails("users:\n- {name: a, user: {password: {}}}\n", AURORA_E_INVALID,
                "users[0].user.password must be a string"));
    CHECK(fails("users:\n- {name: a, user: {exec: {args: [x]}}}\n", AURORA_E_INVALID,
                "users[0].user.exec.command is missing"));
    CHECK(fails("users:\n- {name: a, user: {exec: {command: k, args: [[x]]}}}\n", AURORA_E_INVALID,
                "users[0].user.exec.args[0] must be a string"));
    CHECK(fails("users:\n- {name: a, user: {exec: {command: k, args: x}}}\n", AURORA_E_INVALID,
                "users[0].user.exec.args must be a list"));
    CHECK(fails("users:\n- {name: a, user: {exec: {command: k, env: [{value: v}]}}}\n",
                AURORA_E_INVALID, "users[0].user.exec.env[0] has no name"));
    CHECK(fails("users:\n- {name: a, user: {exec: {command: k, env: [{name: n, value: [v]}]}}}\n",
                AURORA_E_INVALID, "users[0].user.exec.env[0].value must be a string"));
    CHECK(fails("users:\n- {name: a, user: {exec: {command: k, provideClusterInfo: 1}}}\n",
                AURORA_E_INVALID, "users[0].user.exec.provideClusterInfo must be a boolean"));
    CHECK(fails("users:\n- {name: a, user: {auth-provider: {config: {}}}}\n", AURORA_E_INVALID,
                "users[0].user.auth-provider.name is missing"));
    CHECK(fails("users:\n- {name: a, user: {auth-provider: {name: azure, config: {x: [1]}}}}\n",
                AURORA_E_INVALID, "users[0].user.auth-provider.config.x must be a string"));
    CHECK(fails("current-context: [a]\n", AURORA_E_INVALID, "current-context must be a string"));
    CHECK(fails("clusters:\n- {name: \"a\\0b\"}\n", AURORA_E_INVALID,
                "clusters[0].name must not contain a NUL byte"));
}

TEST(duplicate_names_are_refused)
{
    CHECK(fails("clusters:\n- {name: a}\n- {name: b}\n- {name: a}\n", AURORA_E_INVALID,
                "clusters[2].name repeats the name of clusters[0]"));
    CHECK(fails("users:\n- {name: x}\n- {name: y}\n- {name: y}\n- {name: x}\n", AURORA_E_INVALID,
                "users[2].name repeats the name of users[1]"));
    CHECK(fails("contexts:\n- {name: c}\n- {name: c}\n", AURORA_E_INVALID,
                "contexts[1].name repeats the name of contexts[0]"));
}

TEST(invalid_base64_names_the_field)
{
    aurora_kubeconfig *cfg = NULL;

    CHECK(fails("clusters:\n- name: a\n  cluster:\n    certificate-authority-data: \"%%%\"\n",
                AURORA_E_INVALID,
                "clusters[0].cluster.certificate-authority-data is not valid "
                "base64"));
    CHECK(fails("users:\n- name: a\n  user:\n    client-key-data: QUJD=\n", AURORA_E_INVALID,
                "users[0].user.client-key-data is not valid base64"));
    CHECK(fails("users:\n- name: a\n  user:\n    client-certificate-data: QUJ\n", AURORA_E_INVALID,
                "users[0].user.client-certificate-data is not valid base64"));
    CHECK(fails("users:\n- name: a\n  user:\n    client-certificate-data: [QUJD]\n",
                AURORA_E_INVALID, "users[0].user.client-certificate-data must be a string"));
    /* Line breaks inside the value are skipped, as Go's decoder does. */
    CHECK_EQ_INT(
        parse("users:\n- name: a\n  user:\n    client-certificate-data: \"QUJD\\nREVG\"\n", &cfg),
        0);
    CHECK_EQ_STR(cfg->users[0].client_cert_pem, "ABCDEF");
    aurora_kubeconfig_free(&cfg);
}

TEST(file_references_are_not_supported)
{
    CHECK(fails("clusters:\n- name: a\n  cluster:\n    certificate-authority: /etc/ca.pem\n",
                AURORA_E_INVALID,
                "file references are not supported: clusters[0].cluster.certificate-authority"));
    CHECK(fails("users:\n- name: a\n  user:\n    client-certificate: c.pem\n", AURORA_E_INVALID,
                "file references are not supported: users[0].user.client-certificate"));
    CHECK(fails("users:\n- name: a\n  user:\n    client-key: k.pem\n", AURORA_E_INVALID,
                "file references are not supported: users[0].user.client-key"));
    CHECK(fails("users:\n- name: a\n  user:\n    tokenFile: /t\n", AURORA_E_INVALID,
                "file references are not supported: users[0].user.tokenFile"));
}

TEST(yaml_errors_and_limits_come_through)
{
    aurora_kube_opts opts = {0};
    aurora_kubeconfig *cfg = NULL;
    aurora_buf b;
    int i, j;

    CHECK(fails("clusters:\n\t- name: a\n", AURORA_E_INVALID,
                "kubeconfig: line 2, column 1: found character that cannot start any token "
                "(while scanning for the next token at line 2, column 1)"));
    aurora_buf_init(&b, 1 << 16);
    aurora_buf_puts(&b, "x0: &x0 [a, a, a, a, a, a, a, a, a]\n");
    for (i = 1; i < 9; i++) {
        aurora_buf_printf(&b, "x%d: &x%d [", i, i);
        for (j = 0; j < 9; j++)
            aurora_buf_printf(&b, "%s*x%d", j ? ", " : "", i - 1);
        aurora_buf_puts(&b, "]\n");
    }
    CHECK_EQ_INT(aurora_kubeconfig_parse(b.data, b.len, NULL, &cfg, err, sizeof(err)),
                 AURORA_E_TOO_LARGE);
    CHECK(strstr(err, "too many nodes (alias expansion)"));
    aurora_buf_free(&b);
    opts.limits.max_bytes = 10;
    CHECK_EQ_INT(aurora_kubeconfig_parse("kind: Config\n", 13, &opts, &cfg, err, sizeof(err)),
                 AURORA_E_TOO_LARGE);
    CHECK_EQ_STR(err, "kubeconfig: input is larger than 10 bytes");
}

TEST(anchors_and_aliases_work_inside_a_kubeconfig)
{
    static const char text[] = "clusters:\n"
                               "- name: a\n"
                               "  cluster: &c {server: https://shared}\n"
                               "- name: b\n"
                               "  cluster: *c\n";
    aurora_kubeconfig *cfg = NULL;

    CHECK_EQ_INT(parse(text, &cfg), 0);
    CHECK_EQ_STR(cfg->clusters[1].server, "https://shared");
    aurora_kubeconfig_free(&cfg);
}

TEST(every_truncation_of_an_admin_kubeconfig_fails_or_parses_cleanly)
{
    aurora_kubeconfig *cfg = NULL;
    aurora_buf b;
    size_t n;
    int ok = 0;

    CHECK(make_pki());
    aurora_buf_init(&b, 1 << 20);
    admin_yaml(&b);
    /* Every 7th prefix keeps the run short; ASan checks that nothing leaks or overflows. */
    for (n = 0; n < b.len; n += 7) {
        int rc = aurora_kubeconfig_parse(b.data, n, NULL, &cfg, err, sizeof(err));

        if (rc == 0) {
            ok++;
            aurora_kubeconfig_free(&cfg);
        } else {
            CHECK(rc == AURORA_E_INVALID || rc == AURORA_E_NOT_FOUND);
            CHECK(err[0]);
            CHECK(!strstr(err, "0123456789abcdef"));
        }
    }
    CHECK(ok > 0);
    aurora_buf_free(&b);
}

TEST(messages_never_hold_the_values)
{
    aurora_kubeconfig *cfg = NULL;

    CHECK_EQ_INT(parse("users:\n- name: u\n  user:\n    token: {sekrit: 1}\n", &cfg),
                 AURORA_E_INVALID);
    CHECK(!strstr(err, "sekrit"));
    CHECK_EQ_INT(parse("users:\n- name: u\n  user:\n    client-key-data: sekrit!!\n", &cfg),
                 AURORA_E_INVALID);
    CHECK(!strstr(err, "sekrit"));
}

int main(void)
{
    RUN(an_aks_admin_kubeconfig_yields_server_ca_certificate_key_and_token);
    RUN(an_aad_user_kubeconfig_keeps_the_kubelogin_exec_section);
    RUN(exec_env_values_with_secret_names_become_secrets);
    RUN(the_legacy_azure_auth_provider_keeps_its_config);
    RUN(the_context_can_be_chosen_and_must_exist);
    RUN(a_missing_current_context_is_not_found_and_an_empty_one_is_none);
    RUN(the_shape_is_checked_with_the_field_named);
    RUN(duplicate_names_are_refused);
    RUN(invalid_base64_names_the_field);
    RUN(file_references_are_not_supported);
    RUN(yaml_errors_and_limits_come_through);
    RUN(anchors_and_aliases_work_inside_a_kubeconfig);
    RUN(every_truncation_of_an_admin_kubeconfig_fails_or_parses_cleanly);
    RUN(messages_never_hold_the_values);
    free_pki();
    return check_summary();
}

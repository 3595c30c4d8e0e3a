/*
 * http.c: outbound HTTP on libcurl multi, one multi handle per worker, its sockets and timer
 * plugged into the worker's epoll set and timer heap (see http.h). Completions are collected in a
 * pass hook, after libcurl has returned, so done callbacks may start new transfers. It never calls
 * into Lua. Request headers and bodies may hold secrets: they are wiped before they are freed.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include <curl/curl.h>

#include "aurora/aurora.h"
#include "aurora/http.h"
#include "aurora/log.h"
#include "aurora/metrics.h"
#include "aurora/worker.h"

#define HEADERS_MAX (256 * 1024)
#define EXTRA_CA_MAX (4 * 1024 * 1024)
#define MAXCONNECTS 1024
#define EASY_POOL_MAX 64

typedef struct client {
    aurora_worker *w;
    CURLM *multi;
    aurora_timer timer;
    CURL *pool[EASY_POOL_MAX];
    int npool;
    aurora_http_xfer *active;   /* doubly linked list of running transfers */
} client;

struct aurora_http_xfer {
    client *c;
    CURL *easy;
    aurora_http_done_fn done;
    void *arg;
    struct curl_slist *headers;
    aurora_buf body;
    aurora_buf key;             /* client key PEM, wiped */
    char *ca_pem;
    char *cert_pem;
    size_t max_body;
    int too_large;
    int running;
    aurora_http_result res;
    aurora_http_xfer *prev, *next;
};

static CURLSH *share;
static pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];
static aurora_buf extra_ca;

static void share_lock(CURL *h, curl_lock_data d, curl_lock_access a, void *u)
{
    (void)h, (void)a, (void)u;
    pthread_mutex_lock(&share_locks[d]);
}

static void share_unlock(CURL *h, curl_lock_data d, void *u)
{
    (void)h, (void)u;
    pthread_mutex_unlock(&share_locks[d]);
}

int aurora_http_global_init(const char *extra_ca_file, char *err, size_t errlen)
{
    int rc;

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        snprintf(err, errlen, "curl_global_init failed");
        return AURORA_E_INTERNAL;
    }
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_init(&share_locks[i], NULL);
    share = curl_share_init();
    if (!share) {
        snprintf(err, errlen, "curl_share_init failed");
        return AURORA_E_NOMEM;
    }
    curl_share_setopt(share, CURLSHOPT_LOCKFUNC, share_lock);
    curl_share_setopt(share, CURLSHOPT_UNLOCKFUNC, share_unlock);
    curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    aurora_buf_init(&extra_ca, EXTRA_CA_MAX);
    if (extra_ca_file && *extra_ca_file) {
        rc = aurora_read_file(extra_ca_file, &extra_ca);
        if (rc) {
            snprintf(err, errlen, "cannot read the CA bundle %s: %s", extra_ca_file,
                     aurora_err_word(rc));
            return rc;
        }
    }
    return 0;
}

void aurora_http_global_cleanup(void)
{
    if (share)
        curl_share_cleanup(share);
    share = NULL;
    aurora_buf_free(&extra_ca);
    curl_global_cleanup();
}

/* ---- multi handle plumbing ---------------------------------------------------------------- */

static void on_fd(aurora_worker *w, int fd, uint32_t events, void *arg)
{
    client *c = arg;
    int flags = 0, running;

    (void)w;
    if (events & EPOLLIN)
        flags |= CURL_CSELECT_IN;
    if (events & EPOLLOUT)
        flags |= CURL_CSELECT_OUT;
    if (events & (EPOLLERR | EPOLLHUP))
        flags |= CURL_CSELECT_ERR;
    curl_multi_socket_action(c->multi, fd, flags, &running);
}

static int socket_cb(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
    client *c = userp;

    (void)e, (void)socketp;
    if (what == CURL_POLL_REMOVE) {
        aurora_worker_unwatch(c->w, s);
        return 0;
    }
    aurora_worker_watch(c->w, s,
                        (what & CURL_POLL_IN ? EPOLLIN : 0) | (what & CURL_POLL_OUT ? EPOLLOUT : 0),
                        on_fd, c);
    return 0;
}

static void on_timer(aurora_worker *w, void *arg)
{
    client *c = arg;
    int running;

    (void)w;
    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
}

static int timer_cb(CURLM *m, long timeout_ms, void *userp)
{
    client *c = userp;

    (void)m;
    if (timeout_ms < 0)
        aurora_timer_stop(c->w, &c->timer);
    else
        aurora_timer_start(c->w, &c->timer, aurora_now_ms() + (uint64_t)timeout_ms);
    return 0;
}

static int map_error(CURLcode cc)
{
    switch (cc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        return AURORA_E_DNS;
    case CURLE_COULDNT_CONNECT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
        return AURORA_E_CONNECT;
    case CURLE_OPERATION_TIMEDOUT:
        return AURORA_E_TIMEOUT;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_SSL_CLIENTCERT:
        return AURORA_E_TLS;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
        return AURORA_E_INVALID;
    case CURLE_OUT_OF_MEMORY:
        return AURORA_E_NOMEM;
    default:
        return AURORA_E_BAD_REPLY;
    }
}

static void unlink_xfer(aurora_http_xfer *x)
{
    client *c = x->c;

    if (x->prev)
        x->prev->next = x->next;
    else if (c->active == x)
        c->active = x->next;
    if (x->next)
        x->next->prev = x->prev;
    x->prev = x->next = NULL;
}

static void release_easy(client *c, CURL *e)
{
    if (c->npool < EASY_POOL_MAX) {
        curl_easy_reset(e);
        c->pool[c->npool++] = e;
    } else {
        curl_easy_cleanup(e);
    }
}

/* Collects finished transfers and calls their done callbacks (outside libcurl). */
static void on_pass(aurora_worker *w, void *arg)
{
    client *c = arg;
    CURLMsg *m;
    int left;

    (void)w;
    while ((m = curl_multi_info_read(c->multi, &left)) != NULL) {
        aurora_http_xfer *x = NULL;
        char *ver = NULL;
        long hv = 0;

        if (m->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &ver);
        x = (aurora_http_xfer *)ver;
        curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &x->res.status);
        curl_easy_getinfo(x->easy, CURLINFO_HTTP_VERSION, &hv);
        snprintf(x->res.http_version, sizeof(x->res.http_version), "%s",
                 hv == CURL_HTTP_VERSION_2_0 ? "2" : hv == CURL_HTTP_VERSION_1_0 ? "1.0" : "1.1");
        if (m->data.result != CURLE_OK) {
            x->res.err = x->too_large ? AURORA_E_TOO_LARGE : map_error(m->data.result);
            if (x->too_large)
                snprintf(x->res.errmsg, sizeof(x->res.errmsg),
                         "reply body larger than %zu bytes", x->max_body);
            else if (!x->res.errmsg[0])
                snprintf(x->res.errmsg, sizeof(x->res.errmsg), "%s",
                         curl_easy_strerror(m->data.result));
        }
        curl_multi_remove_handle(c->multi, x->easy);
        release_easy(c, x->easy);
        x->easy = NULL;
        x->running = 0;
        unlink_xfer(x);
        aurora_metrics_upstream(x->res.err != 0);
        x->done(x, x->arg);
    }
}

int aurora_http_attach(aurora_worker *w)
{
    client *c = calloc(1, sizeof(*c));

    if (!c)
        return AURORA_E_NOMEM;
    c->w = w;
    c->multi = curl_multi_init();
    if (!c->multi) {
        free(c);
        return AURORA_E_NOMEM;
    }
    c->timer.fn = on_timer;
    c->timer.arg = c;
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, (long)MAXCONNECTS);
    aurora_worker_set_slot(w, AURORA_SLOT_HTTP, c);
    return aurora_worker_on_pass(w, on_pass, c);
}

static void xfer_destroy(aurora_http_xfer *x)
{
    for (struct curl_slist *h = x->headers; h; h = h->next)
        aurora_wipe(h->data, strlen(h->data));
    curl_slist_free_all(x->headers);
    aurora_buf_free(&x->body);
    aurora_buf_free(&x->key);
    free(x->ca_pem);
    free(x->cert_pem);
    aurora_buf_free(&x->res.headers);
    aurora_buf_free(&x->res.body);
    free(x);
}

void aurora_http_detach(aurora_worker *w)
{
    client *c = aurora_worker_slot(w, AURORA_SLOT_HTTP);

    if (!c)
        return;
    while (c->active) {
        aurora_http_xfer *x = c->active;
        aurora_http_free(&x);
    }
    for (int i = 0; i < c->npool; i++)
        curl_easy_cleanup(c->pool[i]);
    aurora_timer_stop(w, &c->timer);
    curl_multi_cleanup(c->multi);
    aurora_worker_set_slot(w, AURORA_SLOT_HTTP, NULL);
    free(c);
}

/* ---- one transfer --------------------------------------------------------------------------- */

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    aurora_http_xfer *x = arg;
    size_t len = size * n;

    if (x->res.body.len + len > x->max_body) {
        x->too_large = 1;
        return 0;
    }
    if (aurora_buf_append(&x->res.body, p, len) != 0)
        return 0;
    return len;
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
    aurora_http_xfer *x = arg;
    size_t len = size * n;

    /* A new status line starts a new header block (100 Continue, redirects): keep the last. */
    if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) {
        aurora_buf_reset(&x->res.headers);
        return len;
    }
    if (aurora_buf_append(&x->res.headers, p, len) != 0)
        return 0;
    return len;
}

void aurora_http_opts_clear(aurora_http_opts *o)
{
    for (struct curl_slist *h = o->headers; h; h = h->next)
        aurora_wipe(h->data, strlen(h->data));
    curl_slist_free_all(o->headers);
    o->headers = NULL;
    aurora_buf_free(&o->body);
}

static char *dup_mem(const char *p, size_t n)
{
    char *d = malloc(n + 1);

    if (d) {
        memcpy(d, p, n);
        d[n] = '\0';
    }
    return d;
}

static void set_blob(CURL *e, CURLoption opt, void *p, size_t n)
{
    struct curl_blob b = {.data = p, .len = n, .flags = CURL_BLOB_NOCOPY};

    curl_easy_setopt(e, opt, &b);
}

aurora_http_xfer *aurora_http_start(aurora_worker *w, aurora_http_opts *o,
                                    aurora_http_done_fn done, void *arg, int *err)
{
    client *c = aurora_worker_slot(w, AURORA_SLOT_HTTP);
    aurora_http_xfer *x = NULL;
    const char *method = o->method ? o->method : "GET";
    CURL *e;

    if (!c) {
        *err = AURORA_E_INTERNAL;
        aurora_http_opts_clear(o);
        return NULL;
    }
    x = calloc(1, sizeof(*x));
    e = c->npool ? c->pool[--c->npool] : curl_easy_init();
    if (!x || !e) {
        if (e)
            release_easy(c, e);
        free(x);
        aurora_http_opts_clear(o);
        *err = AURORA_E_NOMEM;
        return NULL;
    }
    x->c = c;
    x->easy = e;
    x->done = done;
    x->arg = arg;
    x->headers = o->headers;
    x->body = o->body;
    o->headers = NULL;
    memset(&o->body, 0, sizeof(o->body));
    x->max_body = o->max_body ? o->max_body : AURORA_HTTP_MAX_BODY_DEFAULT;
    aurora_buf_init(&x->res.headers, HEADERS_MAX);
    aurora_buf_init(&x->res.body, x->max_body);
    aurora_buf_init(&x->key, 1024 * 1024);
    x->key.secret = 1;

    curl_easy_setopt(e, CURLOPT_URL, o->url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)x);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_SHARE, share);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, o->timeout_ms > 0 ? o->timeout_ms : 30000L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                     o->connect_timeout_ms > 0 ? o->connect_timeout_ms : 10000L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->headers);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "aurora/" AURORA_VERSION);
    if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    } else if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
        if (x->body.len || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
            strcmp(method, "PATCH") == 0) {
            curl_easy_setopt(e, CURLOPT_POSTFIELDS, x->body.data ? x->body.data : "");
            curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)x->body.len);
        }
    }
    /* TLS: verified always, unless the caller explicitly chose not to for this call. */
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, o->insecure ? 0L : 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, o->insecure ? 0L : 2L);
    if (o->ca_file) {
        curl_easy_setopt(e, CURLOPT_CAINFO, o->ca_file);
        curl_easy_setopt(e, CURLOPT_CAPATH, NULL);
    } else if (o->ca_pem) {
        x->ca_pem = dup_mem(o->ca_pem, o->ca_pem_len);
        curl_easy_setopt(e, CURLOPT_CAINFO, NULL);
        curl_easy_setopt(e, CURLOPT_CAPATH, NULL);
        if (x->ca_pem)
            set_blob(e, CURLOPT_CAINFO_BLOB, x->ca_pem, o->ca_pem_len);
    } else if (extra_ca.len) {
        /* The system bundle stays in use; the extra bundle is added to it. */
        set_blob(e, CURLOPT_CAINFO_BLOB, extra_ca.data, extra_ca.len);
    }
    if (o->client_cert_pem) {
        x->cert_pem = dup_mem(o->client_cert_pem, o->client_cert_len);
        if (x->cert_pem)
            set_blob(e, CURLOPT_SSLCERT_BLOB, x->cert_pem, o->client_cert_len);
        curl_easy_setopt(e, CURLOPT_SSLCERTTYPE, "PEM");
    }
    if (o->client_key_pem && aurora_buf_append(&x->key, o->client_key_pem,
                                               o->client_key_len) == 0) {
        set_blob(e, CURLOPT_SSLKEY_BLOB, x->key.data, x->key.len);
        curl_easy_setopt(e, CURLOPT_SSLKEYTYPE, "PEM");
    }
    if (curl_multi_add_handle(c->multi, e) != CURLM_OK) {
        x->easy = NULL;
        release_easy(c, e);
        xfer_destroy(x);
        *err = AURORA_E_INTERNAL;
        return NULL;
    }
    x->running = 1;
    x->next = c->active;
    if (c->active)
        c->active->prev = x;
    c->active = x;
    return x;
}

aurora_http_result *aurora_http_result_of(aurora_http_xfer *x)
{
    return &x->res;
}

void aurora_http_free(aurora_http_xfer **px)
{
    aurora_http_xfer *x = px ? *px : NULL;

    if (!x)
        return;
    if (x->running) {
        curl_multi_remove_handle(x->c->multi, x->easy);
        release_easy(x->c, x->easy);
        x->easy = NULL;
        x->running = 0;
        unlink_xfer(x);
    }
    xfer_destroy(x);
    *px = NULL;
}

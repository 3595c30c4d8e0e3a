/*
 * http.h: outbound HTTP(S) on libcurl's multi interface, driven by a worker's event loop (see
 * worker.h). A transfer never blocks the worker: it is started, the caller is told through a
 * callback when it ends. TLS peers are verified always, against the system CAs plus the extra
 * bundle from aurora_http_global_init, or against the CAs a transfer names itself.
 */
#ifndef AURORA_HTTP_H
#define AURORA_HTTP_H

#include <stddef.h>

#include <curl/curl.h>

#include "aurora/buf.h"
#include "aurora/worker.h"

#define AURORA_HTTP_MAX_BODY_DEFAULT (16u * 1024 * 1024)

typedef struct aurora_http_opts {
    const char *method;           /* "GET" when NULL */
    const char *url;
    struct curl_slist *headers;   /* "Name: value" lines; ownership passes to the transfer,
                                     which wipes them before freeing (they may hold tokens) */
    aurora_buf body;              /* request body; ownership passes to the transfer (set
                                     body.secret to have it wiped) */
    long timeout_ms;              /* whole transfer; 0 = 30 s */
    long connect_timeout_ms;      /* 0 = 10 s */
    const char *ca_file;          /* trust only the CAs in this PEM file */
    const char *ca_pem;           /* trust only these PEM CAs (copied) */
    size_t ca_pem_len;
    const char *client_cert_pem;  /* client certificate chain, PEM (copied) */
    size_t client_cert_len;
    const unsigned char *client_key_pem; /* its private key, PEM (copied into wiped memory) */
    size_t client_key_len;
    int insecure;                 /* skip peer verification: only an explicit per-call choice */
    size_t max_body;              /* reply body cap; 0 = AURORA_HTTP_MAX_BODY_DEFAULT */
} aurora_http_opts;

typedef struct aurora_http_xfer aurora_http_xfer;
typedef void (*aurora_http_done_fn)(aurora_http_xfer *x, void *arg);

/* Results, valid in the done callback and until aurora_http_free. */
typedef struct aurora_http_result {
    int err;                 /* 0, or an aurora_err when the transfer failed */
    char errmsg[256];        /* for people; never contains request data */
    long status;
    aurora_buf headers;      /* the final response's header lines, "Name: value\r\n" each */
    aurora_buf body;
    char http_version[8];    /* "1.1", "2" */
} aurora_http_result;

/* Process-wide set-up, before any worker starts: the share handle for DNS and TLS sessions and
 * the extra CA bundle (PEM file, may be NULL). Returns 0 or an aurora_err. */
int aurora_http_global_init(const char *extra_ca_file, char *err, size_t errlen);
void aurora_http_global_cleanup(void);

/* Attaches an HTTP client (a curl multi handle) to the worker. Returns 0 or an aurora_err. */
int aurora_http_attach(aurora_worker *w);
/* Detaches it, cancelling transfers still running. */
void aurora_http_detach(aurora_worker *w);

/*
 * Starts a transfer on the worker. Takes ownership of opts->headers and opts->body (also on
 * failure). done(x, arg) is called from the worker loop, never from inside libcurl, exactly once
 * unless the transfer is cancelled first. Returns NULL with *err set when it could not start.
 */
aurora_http_xfer *aurora_http_start(aurora_worker *w, aurora_http_opts *opts,
                                    aurora_http_done_fn done, void *arg, int *err);

/* The results of a finished transfer. */
aurora_http_result *aurora_http_result_of(aurora_http_xfer *x);

/* Cancels a running transfer (done is not called) or releases a finished one; *x = NULL. */
void aurora_http_free(aurora_http_xfer **x);

/* Frees an opts' owned parts (headers, body) when it will not be passed to aurora_http_start. */
void aurora_http_opts_clear(aurora_http_opts *opts);

#endif

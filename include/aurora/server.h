/*
 * server.h: `aurora serve`: the HTTP(S) server on libmicrohttpd. Each worker owns one MHD daemon
 * in external-epoll mode on a shared listening socket, so a request is read, handled and
 * answered on one thread: its handler runs in a coroutine of the worker's VM, and the connection
 * is suspended only while the handler waits on I/O.
 */
#ifndef AURORA_SERVER_H
#define AURORA_SERVER_H

#include <stddef.h>

#include <lua.h>

typedef struct aurora_server_opts {
    const char *app_dir;
    const char *lib_dir;         /* modules searched after app_dir (AURORA_LIB_DIR); may be NULL */
    const char *host;            /* numeric IPv4 or IPv6 address */
    int port;                    /* 0 = any free port (logged) */
    int workers;
    size_t body_max;             /* bytes; larger bodies get 413 */
    size_t header_max;           /* bytes of request line + headers per connection */
    int max_connections;         /* over all workers */
    int request_timeout_ms;      /* handler deadline; past it the answer is 504 */
    int idle_timeout_s;          /* keep-alive idle connections are closed after it */
    int drain_timeout_ms;        /* graceful shutdown waits this long for in-flight requests */
    size_t vm_mem_limit;         /* bytes per Lua VM; 0 = none */
    const char *tls_cert_file;
    const char *tls_key_file;
    const char *tls_client_ca_file; /* request client certificates and verify them against it */
    const char *pid_file;        /* written at start, removed at exit; may be NULL */
    const char *listeners_file;  /* several listeners (JSON); then host/port/tls_* are unused */
    int allow_remote;            /* listen beyond loopback (the app decides; see main.c) */
} aurora_server_opts;

/* Serves until SIGTERM/SIGINT (graceful drain) and reloads scripts on SIGHUP. Returns the exit
 * status (0 after a clean shutdown). Logs every failure. */
int aurora_server_run(const aurora_server_opts *opts);

/*
 * Loads the app in dir into L: runs dir/app.lua, which returns the route table, and compiles the
 * routes. With nsets > 0 (several listeners), app.lua returns a table of route tables and each
 * name in sets is compiled; with nsets < 0 every named route table is (for `aurora check`).
 * Returns 0, or non-zero with a message naming file and line in err.
 * Used by workers, by reload and by `aurora check`.
 */
int aurora_app_load(lua_State *L, const char *dir, const char *const *sets, int nsets, char *err,
                    size_t errlen);

/* Parses "127.0.0.1:5000", "[::1]:5000" or "localhost:5000". Returns 0, or -1 when malformed. */
int aurora_server_parse_listen(const char *s, char *host, size_t hlen, int *port);

#endif

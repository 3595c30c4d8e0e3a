/*
 * router.h: matching request paths against the app's route patterns ("/azure/clusters/{rg}/
 * {name}"). Pure C: a route's handler is an opaque integer (a Lua registry reference).
 * Literal segments win over captures; empty segments ("//") are ignored.
 */
#ifndef AURORA_ROUTER_H
#define AURORA_ROUTER_H

#include <stddef.h>

#define AURORA_ROUTER_MAX_SEGS 32
#define AURORA_ROUTER_MAX_CAPS 16

typedef struct aurora_router aurora_router;

typedef struct aurora_route_match {
    int handler;                          /* the route's handler */
    const char *pattern;                  /* the route's pattern (owned by the router) */
    int ncaps;
    const char *cap_name[AURORA_ROUTER_MAX_CAPS];  /* owned by the router */
    const char *cap_val[AURORA_ROUTER_MAX_CAPS];   /* raw (still percent-encoded) segment */
    size_t cap_len[AURORA_ROUTER_MAX_CAPS];
    char allow[128];                      /* for a 405: the methods the path allows, "GET, POST" */
} aurora_route_match;

/* Creates an empty router; NULL when out of memory. Caller frees with aurora_router_free. */
aurora_router *aurora_router_new(void);
void aurora_router_free(aurora_router **r);

/* Makes literal segments match case-insensitively (as ARM does); set before adding routes. */
void aurora_router_set_nocase(aurora_router *r, int on);

/* Adds METHOD pattern -> handler. Returns 0, or AURORA_E_INVALID with a message in err (bad
 * method, pattern not starting with '/', bad capture name, duplicate route), or NOMEM. */
int aurora_router_add(aurora_router *r, const char *method, const char *pattern, int handler,
                      char *err, size_t errlen);

/* Matches method and raw path (no query). Returns 200 (m filled), 404, or 405 (m->allow set). */
int aurora_router_match(const aurora_router *r, const char *method, const char *path, size_t len,
                        aurora_route_match *m);

/* Decodes %XX escapes of s[0..n) into out (n+1 bytes). Returns the decoded length, or -1 for a
 * malformed escape. plus_space turns '+' into ' ' (query strings). */
long aurora_url_decode(const char *s, size_t n, char *out, int plus_space);

#endif

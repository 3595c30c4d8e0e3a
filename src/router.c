/*
 * router.c: route patterns and matching (see router.h). Patterns are split into segments once,
 * when the app loads; matching a request walks its path once per route without allocating.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "aurora/aurora.h"
#include "aurora/router.h"

typedef struct seg {
    char *text;     /* literal text, or the capture name */
    size_t len;
    int capture;
} seg;

typedef struct route {
    char method[16];
    char *pattern;
    seg segs[AURORA_ROUTER_MAX_SEGS];
    int nsegs;
    int handler;
} route;

struct aurora_router {
    route *routes;
    int n, cap;
    int nocase;     /* literal segments compare case-insensitively (ARM paths) */
};

aurora_router *aurora_router_new(void)
{
    return calloc(1, sizeof(aurora_router));
}

void aurora_router_free(aurora_router **pr)
{
    aurora_router *r = pr ? *pr : NULL;

    if (!r)
        return;
    for (int i = 0; i < r->n; i++) {
        for (int j = 0; j < r->routes[i].nsegs; j++)
            free(r->routes[i].segs[j].text);
        free(r->routes[i].pattern);
    }
    free(r->routes);
    free(r);
    *pr = NULL;
}

/* Splits path into segments, skipping empty ones. Returns the count, or -1 if too many. */
static int split(const char *p, size_t len, const char **starts, size_t *lens)
{
    int n = 0;
    size_t i = 0;

    while (i < len) {
        size_t j;
        while (i < len && p[i] == '/')
            i++;
        if (i >= len)
            break;
        for (j = i; j < len && p[j] != '/'; j++)
            ;
        if (n == AURORA_ROUTER_MAX_SEGS)
            return -1;
        starts[n] = p + i;
        lens[n++] = j - i;
        i = j;
    }
    return n;
}

/* Whether two routes match exactly the same paths (captures in the same places, equal
 * literals). */
static int same_shape(const route *a, const route *b, int nocase)
{
    if (a->nsegs != b->nsegs)
        return 0;
    for (int i = 0; i < a->nsegs; i++) {
        if (a->segs[i].capture != b->segs[i].capture)
            return 0;
        if (!a->segs[i].capture && (nocase ? strcasecmp(a->segs[i].text, b->segs[i].text)
                                           : strcmp(a->segs[i].text, b->segs[i].text)) != 0)
            return 0;
    }
    return 1;
}

void aurora_router_set_nocase(aurora_router *r, int on)
{
    r->nocase = on;
}

int aurora_router_add(aurora_router *r, const char *method, const char *pattern, int handler,
                      char *err, size_t errlen)
{
    const char *starts[AURORA_ROUTER_MAX_SEGS];
    size_t lens[AURORA_ROUTER_MAX_SEGS];
    route *rt;
    int n, ncaps = 0;

    if (!*method || strlen(method) >= sizeof(rt->method)) {
        snprintf(err, errlen, "bad method '%s'", method);
        return AURORA_E_INVALID;
    }
    for (const char *c = method; *c; c++)
        if (*c < 'A' || *c > 'Z') {
            snprintf(err, errlen, "bad method '%s' (upper-case letters only)", method);
            return AURORA_E_INVALID;
        }
    if (pattern[0] != '/') {
        snprintf(err, errlen, "route pattern '%s' must start with '/'", pattern);
        return AURORA_E_INVALID;
    }
    n = split(pattern, strlen(pattern), starts, lens);
    if (n < 0) {
        snprintf(err, errlen, "route pattern '%s' has too many segments", pattern);
        return AURORA_E_INVALID;
    }
    if (r->n == r->cap) {
        int cap = r->cap ? r->cap * 2 : 16;
        route *p = realloc(r->routes, (size_t)cap * sizeof(*p));
        if (!p)
            return AURORA_E_NOMEM;
        r->routes = p;
        r->cap = cap;
    }
    rt = &r->routes[r->n];
    memset(rt, 0, sizeof(*rt));
    snprintf(rt->method, sizeof(rt->method), "%s", method);
    rt->handler = handler;
    for (int i = 0; i < n; i++) {
        const char *s = starts[i];
        size_t l = lens[i];
        int cap = l >= 3 && s[0] == '{' && s[l - 1] == '}';
        if (cap) {
            s++;
            l -= 2;
            for (size_t k = 0; k < l; k++)
                if (!(s[k] == '_' || (s[k] >= 'a' && s[k] <= 'z') || (s[k] >= 'A' && s[k] <= 'Z') ||
                      (k > 0 && s[k] >= '0' && s[k] <= '9')))
                    l = 0;
            if (l == 0 || ++ncaps > AURORA_ROUTER_MAX_CAPS) {
                snprintf(err, errlen, "bad capture in route pattern '%s'", pattern);
                goto fail;
            }
        } else if (memchr(s, '{', l) || memchr(s, '}', l)) {
            snprintf(err, errlen, "bad capture in route pattern '%s' (a capture is a whole "
                                  "segment: /{name}/)", pattern);
            goto fail;
        }
        rt->segs[i].text = strndup(s, l);
        rt->segs[i].len = l;
        rt->segs[i].capture = cap;
        rt->nsegs = i + 1;
        if (!rt->segs[i].text)
            goto nomem;
    }
    for (int i = 0; i < rt->nsegs; i++)
        for (int j = 0; j < i; j++)
            if (rt->segs[i].capture && rt->segs[j].capture &&
                strcmp(rt->segs[i].text, rt->segs[j].text) == 0) {
                snprintf(err, errlen, "route pattern '%s' names the capture '%s' twice", pattern,
                         rt->segs[i].text);
                goto fail;
            }
    for (int i = 0; i < r->n; i++)
        if (strcmp(r->routes[i].method, method) == 0 && same_shape(&r->routes[i], rt, r->nocase)) {
            /* Same paths, another spelling: which one ran would depend on table order. */
            snprintf(err, errlen, "duplicate route %s %s (it matches the same paths as %s)",
                     method, pattern, r->routes[i].pattern);
            goto fail;
        }
    rt->pattern = strdup(pattern);
    if (!rt->pattern)
        goto nomem;
    r->n++;
    return 0;
nomem:
    snprintf(err, errlen, "out of memory");
fail:
    for (int i = 0; i < rt->nsegs; i++)
        free(rt->segs[i].text);
    return err[0] == 'o' ? AURORA_E_NOMEM : AURORA_E_INVALID;
}

/* How well route rt matches the split path: -1 for no match, else a score where literal
 * segments earlier in the path weigh more (so /a/b beats /a/{x}, and /a/{x} beats /{y}/b). */
static long score(const route *rt, int n, const char **starts, const size_t *lens, int nocase)
{
    long s = 0;

    if (rt->nsegs != n)
        return -1;
    for (int i = 0; i < n; i++) {
        if (rt->segs[i].capture)
            continue;
        if (rt->segs[i].len != lens[i] ||
            (nocase ? strncasecmp(rt->segs[i].text, starts[i], lens[i])
                    : memcmp(rt->segs[i].text, starts[i], lens[i])) != 0)
            return -1;
        s |= 1L << (AURORA_ROUTER_MAX_SEGS - 1 - i);
    }
    return s;
}

static int cmp_method(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int aurora_router_match(const aurora_router *r, const char *method, const char *path, size_t len,
                        aurora_route_match *m)
{
    const char *starts[AURORA_ROUTER_MAX_SEGS];
    size_t lens[AURORA_ROUTER_MAX_SEGS];
    const route *best = NULL, *get_best = NULL;
    long best_score = -1, path_score = -1, get_score = -1;
    int head = strcmp(method, "HEAD") == 0;
    int n = split(path, len, starts, lens);
    size_t alen = 0;

    m->allow[0] = '\0';
    m->ncaps = 0;
    if (n < 0)
        return 404;
    for (int i = 0; i < r->n; i++) {
        long s = score(&r->routes[i], n, starts, lens, r->nocase);
        if (s < 0)
            continue;
        if (strcmp(r->routes[i].method, method) == 0) {
            if (s > best_score) {
                best_score = s;
                best = &r->routes[i];
            }
        } else if (head && strcmp(r->routes[i].method, "GET") == 0 && s > get_score) {
            get_score = s;
            get_best = &r->routes[i];
        }
        if (s > path_score)
            path_score = s;
    }
    if (get_best && get_score > best_score) {
        /* HEAD is served by the GET route unless a HEAD route matches at least as well. */
        best = get_best;
        best_score = get_score;
    }
    if (!best || best_score < path_score) {
        /* The best-matching pattern exists, but not for this method: list what it allows. */
        if (path_score < 0)
            return 404;
        const char *methods[16];
        int nm = 0;
        for (int i = 0; i < r->n && nm < 16; i++)
            if (score(&r->routes[i], n, starts, lens, r->nocase) == path_score)
                methods[nm++] = r->routes[i].method;
        qsort(methods, (size_t)nm, sizeof(*methods), cmp_method);
        for (int i = 0; i < nm && alen < sizeof(m->allow); i++)
            alen += (size_t)snprintf(m->allow + alen, sizeof(m->allow) - alen, "%s%s",
                                     alen ? ", " : "", methods[i]);
        return 405;
    }
    m->handler = best->handler;
    m->pattern = best->pattern;
    for (int i = 0; i < n; i++) {
        if (!best->segs[i].capture)
            continue;
        m->cap_name[m->ncaps] = best->segs[i].text;
        m->cap_val[m->ncaps] = starts[i];
        m->cap_len[m->ncaps] = lens[i];
        m->ncaps++;
    }
    return 200;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

long aurora_url_decode(const char *s, size_t n, char *out, int plus_space)
{
    size_t o = 0;

    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%') {
            int h, l;
            if (i + 2 >= n)
                return -1;
            h = hexval(s[i + 1]);
            l = hexval(s[i + 2]);
            if (h < 0 || l < 0)
                return -1;
            out[o++] = (char)(h * 16 + l);
            i += 2;
        } else if (plus_space && s[i] == '+') {
            out[o++] = ' ';
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
    return (long)o;
}

/*
 * token.c: the process-wide token cache (see token.h). One mutex guards a chained hash table
 * (seeded FNV-1a, so keys built from request input cannot be aimed at one chain) and an LRU
 * list. Each entry holds an optional value (an aurora_secret, wiped when freed), its expiry and
 * metadata JSON, an optional cached failure, and an optional flight: an id and the list of
 * waiters registered while a fetcher works.
 *
 * Plain libc and pthreads; no Lua, no worker. Everything handed out is a copy. Waiters are
 * notified outside the lock, after their list was detached under it, so a notify callback may
 * take the lock again. The outcome a flight ends with is allocated once and shared by reference
 * between its waiters.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "aurora/aurora.h"
#include "aurora/secret.h"
#include "aurora/token.h"

#define MIN_BUCKETS 64

enum { W_WAITING = 1, W_DETACHED, W_CANCELLED };

typedef struct entry {
    struct entry *hnext;       /* hash chain */
    struct entry *prev, *next; /* LRU list: head is the most recently used */
    uint64_t hash;
    size_t klen;
    char *key;
    aurora_secret *value; /* NULL: none */
    double expires_at;
    char *meta;
    size_t meta_len;
    char *err; /* cached failure, NULL: none */
    size_t err_len;
    double err_until;
    uint64_t flight; /* 0: no fetch in flight */
    aurora_token_waiter *waiters;
} entry;

struct aurora_token_done {
    atomic_int refs;
    int is_static;
    aurora_token_result r;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static entry **buckets;
static size_t nbuckets, count;
static entry *lru_head, *lru_tail;
static size_t max_entries = AURORA_TOKEN_DEFAULT_ENTRIES;
static uint64_t next_flight = 1, seed;
static int seeded;
static aurora_token_stats stats;

/* Handed to waiters when no outcome could be allocated, and on abandon. Never freed. */
static aurora_token_done retry_done = {.is_static = 1, .r = {.kind = AURORA_TOKEN_RETRY}};

/* ---- small helpers --------------------------------------------------------------------------- */

static uint64_t hash_key(const char *k, size_t n)
{
    uint64_t h = 1469598103934665603ULL ^ seed;

    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)k[i];
        h *= 1099511628211ULL;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}

static void seed_once(void)
{
    if (seeded)
        return;
    if (getrandom(&seed, sizeof(seed), 0) != (ssize_t)sizeof(seed))
        seed = (uint64_t)(uintptr_t)&seed ^ 0x9e3779b97f4a7c15ULL;
    seeded = 1;
}

static char *dup_bytes(const char *p, size_t n)
{
    char *c = malloc(n + 1);

    if (!c)
        return NULL;
    if (n)
        memcpy(c, p, n);
    c[n] = '\0';
    return c;
}

static int check_key(size_t klen)
{
    if (klen == 0)
        return AURORA_E_INVALID;
    if (klen > AURORA_TOKEN_KEY_MAX)
        return AURORA_E_TOO_LARGE;
    return 0;
}

void aurora_token_result_clear(aurora_token_result *r)
{
    aurora_secret_free(&r->value);
    free(r->meta);
    free(r->err);
    memset(r, 0, sizeof(*r));
}

/* Fills *out with copies of r's parts (kind, value, expiry, meta, err). Returns 0 or NOMEM (then
 * *out is cleared). */
static int copy_result(aurora_token_result *out, aurora_token_kind kind, const aurora_secret *v,
                       double expires_at, const char *meta, size_t meta_len, const char *err,
                       size_t err_len)
{
    memset(out, 0, sizeof(*out));
    out->kind = kind;
    out->expires_at = expires_at;
    if (v) {
        out->value = aurora_secret_new(v->data, v->len);
        if (!out->value)
            goto fail;
    }
    if (meta) {
        out->meta = dup_bytes(meta, meta_len);
        if (!out->meta)
            goto fail;
        out->meta_len = meta_len;
    }
    if (err) {
        out->err = dup_bytes(err, err_len);
        if (!out->err)
            goto fail;
        out->err_len = err_len;
    }
    return 0;
fail:
    aurora_token_result_clear(out);
    return AURORA_E_NOMEM;
}

const aurora_token_result *aurora_token_done_result(const aurora_token_done *d)
{
    return &d->r;
}

void aurora_token_done_release(aurora_token_done **d)
{
    aurora_token_done *x = *d;

    *d = NULL;
    if (!x || x->is_static)
        return;
    if (atomic_fetch_sub(&x->refs, 1) == 1) {
        aurora_token_result_clear(&x->r);
        free(x);
    }
}

/* ---- the table (all under mu) ---------------------------------------------------------------- */

static void lru_unlink(entry *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        lru_head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        lru_tail = e->prev;
    e->prev = e->next = NULL;
}

static void lru_front(entry *e)
{
    if (lru_head == e)
        return;
    if (e->prev || e->next || lru_tail == e)
        lru_unlink(e);
    e->next = lru_head;
    if (lru_head)
        lru_head->prev = e;
    lru_head = e;
    if (!lru_tail)
        lru_tail = e;
}

static entry *find(const char *key, size_t klen, uint64_t h)
{
    if (!nbuckets)
        return NULL;
    for (entry *e = buckets[h & (nbuckets - 1)]; e; e = e->hnext)
        if (e->hash == h && e->klen == klen && memcmp(e->key, key, klen) == 0)
            return e;
    return NULL;
}

static void drop_value(entry *e)
{
    aurora_secret_free(&e->value);
    free(e->meta);
    e->meta = NULL;
    e->meta_len = 0;
    e->expires_at = 0;
}

static void drop_err(entry *e)
{
    free(e->err);
    e->err = NULL;
    e->err_len = 0;
    e->err_until = 0;
}

/* Unlinks e from the table and the LRU list and frees it. It must have no flight or waiters. */
static void remove_entry(entry *e)
{
    entry **p = &buckets[e->hash & (nbuckets - 1)];

    while (*p != e)
        p = &(*p)->hnext;
    *p = e->hnext;
    lru_unlink(e);
    drop_value(e);
    drop_err(e);
    free(e->key);
    free(e);
    count--;
}

static int grow(void)
{
    size_t n = nbuckets ? nbuckets * 2 : MIN_BUCKETS;
    entry **nb = calloc(n, sizeof(*nb));

    if (!nb)
        return AURORA_E_NOMEM;
    for (size_t i = 0; i < nbuckets; i++) {
        entry *e = buckets[i];
        while (e) {
            entry *next = e->hnext;
            e->hnext = nb[e->hash & (n - 1)];
            nb[e->hash & (n - 1)] = e;
            e = next;
        }
    }
    free(buckets);
    buckets = nb;
    nbuckets = n;
    return 0;
}

/* Evicts least recently used entries without a flight until there is room for one more. */
static void make_room(void)
{
    entry *e = lru_tail;

    while (count >= max_entries && e) {
        entry *prev = e->prev;
        if (!e->flight && !e->waiters)
            remove_entry(e);
        e = prev;
    }
}

/* Finds key or creates an empty entry for it. Returns NULL when out of memory. */
static entry *find_or_add(const char *key, size_t klen, uint64_t h)
{
    entry *e = find(key, klen, h);

    if (e)
        return e;
    make_room();
    if ((count + 1 > nbuckets * 2 || !nbuckets) && grow() != 0 && !nbuckets)
        return NULL;
    e = calloc(1, sizeof(*e));
    if (!e)
        return NULL;
    e->key = dup_bytes(key, klen);
    if (!e->key) {
        free(e);
        return NULL;
    }
    e->klen = klen;
    e->hash = h;
    e->hnext = buckets[h & (nbuckets - 1)];
    buckets[h & (nbuckets - 1)] = e;
    count++;
    lru_front(e);
    return e;
}

/* Removes e when it holds nothing any more. */
static void maybe_remove(entry *e)
{
    if (!e->value && !e->err && !e->flight && !e->waiters)
        remove_entry(e);
}

/* Detaches the waiters of e's flight and ends the flight. Returns the list. */
static aurora_token_waiter *end_flight(entry *e)
{
    aurora_token_waiter *list = e->waiters;

    for (aurora_token_waiter *w = list; w; w = w->next)
        w->state = W_DETACHED;
    e->waiters = NULL;
    e->flight = 0;
    return list;
}

/* Notifies every waiter of list with a reference to d (outside the lock). Consumes the caller's
 * reference to d. */
static void notify_all(aurora_token_waiter *list, aurora_token_done *d)
{
    while (list) {
        aurora_token_waiter *next = list->next;
        if (!d->is_static)
            atomic_fetch_add(&d->refs, 1);
        list->notify(list, d);
        list = next;
    }
    aurora_token_done_release(&d);
}

/* ---- the API --------------------------------------------------------------------------------- */

int aurora_token_lookup(const char *key, size_t klen, double now, double margin,
                        aurora_token_waiter *w, aurora_token_outcome *outcome,
                        aurora_token_result *out, uint64_t *flight)
{
    int rc = check_key(klen);
    uint64_t h;
    entry *e;

    if (rc)
        return rc;
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&mu);
    seed_once();
    h = hash_key(key, klen);
    e = find(key, klen, h);
    if (e && e->value && now + margin < e->expires_at) {
        rc = copy_result(out, AURORA_TOKEN_VALUE, e->value, e->expires_at, e->meta, e->meta_len,
                         NULL, 0);
        if (rc == 0) {
            stats.hits++;
            lru_front(e);
            *outcome = AURORA_TOKEN_HIT;
        }
        goto out;
    }
    if (e && e->err && now >= e->err_until)
        drop_err(e);
    if (e && e->err) {
        rc =
            copy_result(out, AURORA_TOKEN_FAILURE, NULL, e->err_until, NULL, 0, e->err, e->err_len);
        if (rc == 0) {
            stats.negative_hits++;
            lru_front(e);
            *outcome = AURORA_TOKEN_NEGATIVE;
        }
        goto out;
    }
    if (e && e->flight) {
        w->state = W_WAITING;
        w->entry = e;
        w->next = e->waiters;
        e->waiters = w;
        stats.waits++;
        *outcome = AURORA_TOKEN_WAIT;
        goto out;
    }
    e = find_or_add(key, klen, h);
    if (!e) {
        rc = AURORA_E_NOMEM;
        goto out;
    }
    e->flight = next_flight++;
    stats.fetches++;
    *flight = e->flight;
    *outcome = AURORA_TOKEN_FETCH;
out:
    pthread_mutex_unlock(&mu);
    return rc;
}

/* Checks and sizes a result going in. */
static int check_result(const aurora_token_result *r)
{
    if (r->kind == AURORA_TOKEN_VALUE) {
        if (!r->value || !r->value->data)
            return AURORA_E_INVALID;
        if (r->value->len > AURORA_TOKEN_VALUE_MAX || r->meta_len > AURORA_TOKEN_JSON_MAX)
            return AURORA_E_TOO_LARGE;
        return 0;
    }
    if (r->kind == AURORA_TOKEN_FAILURE) {
        if (!r->err)
            return AURORA_E_INVALID;
        return r->err_len > AURORA_TOKEN_JSON_MAX ? AURORA_E_TOO_LARGE : 0;
    }
    return AURORA_E_INVALID;
}

int aurora_token_finish(const char *key, size_t klen, uint64_t flight, const aurora_token_result *r,
                        double now, double negative_ttl)
{
    int rc = check_key(klen);
    aurora_token_done *d = NULL;
    aurora_token_waiter *list = NULL;
    aurora_secret *v = NULL;
    char *meta = NULL, *err = NULL;
    entry *e;

    if (rc)
        return rc;
    rc = check_result(r);
    if (rc)
        goto fail;
    /* Everything is copied before the lock is taken; the lock only swaps pointers. */
    d = calloc(1, sizeof(*d));
    if (!d)
        goto nomem;
    atomic_init(&d->refs, 1);
    if (copy_result(&d->r, r->kind, r->value, r->expires_at, r->meta, r->meta_len, r->err,
                    r->err_len) != 0)
        goto nomem;
    if (r->kind == AURORA_TOKEN_FAILURE)
        d->r.expires_at = negative_ttl > 0 ? now + negative_ttl : 0;
    if (r->kind == AURORA_TOKEN_VALUE) {
        v = aurora_secret_new(r->value->data, r->value->len);
        meta = r->meta ? dup_bytes(r->meta, r->meta_len) : NULL;
        if (!v || (r->meta && !meta))
            goto nomem;
    } else if (negative_ttl > 0) {
        err = dup_bytes(r->err, r->err_len);
        if (!err)
            goto nomem;
    }

    pthread_mutex_lock(&mu);
    seed_once();
    e = find(key, klen, hash_key(key, klen));
    if (!e && (v || err))
        e = find_or_add(key, klen, hash_key(key, klen));
    if (e) {
        if (e->flight && e->flight == flight)
            list = end_flight(e);
        if (v) {
            drop_value(e);
            drop_err(e);
            e->value = v;
            e->expires_at = r->expires_at;
            e->meta = meta;
            e->meta_len = meta ? r->meta_len : 0;
            v = NULL;
            meta = NULL;
        } else if (err) {
            drop_err(e);
            e->err = err;
            e->err_len = r->err_len;
            e->err_until = now + negative_ttl;
            err = NULL;
        }
        lru_front(e);
        maybe_remove(e);
    }
    pthread_mutex_unlock(&mu);
    aurora_secret_free(&v);
    free(meta);
    free(err);
    notify_all(list, d);
    return 0;

nomem:
    rc = AURORA_E_NOMEM;
fail:
    aurora_secret_free(&v);
    free(meta);
    free(err);
    aurora_token_done_release(&d);
    aurora_token_abandon(key, klen, flight);
    return rc;
}

void aurora_token_abandon(const char *key, size_t klen, uint64_t flight)
{
    aurora_token_waiter *list = NULL;
    entry *e;

    if (check_key(klen))
        return;
    pthread_mutex_lock(&mu);
    seed_once();
    e = find(key, klen, hash_key(key, klen));
    if (e && e->flight && e->flight == flight) {
        list = end_flight(e);
        maybe_remove(e);
    }
    pthread_mutex_unlock(&mu);
    notify_all(list, &retry_done);
}

int aurora_token_cancel_wait(aurora_token_waiter *w)
{
    int removed = 0;

    pthread_mutex_lock(&mu);
    if (w->state == W_WAITING) {
        entry *e = w->entry;
        aurora_token_waiter **p = &e->waiters;
        while (*p && *p != w)
            p = &(*p)->next;
        if (*p)
            *p = w->next;
        w->state = W_CANCELLED;
        w->next = NULL;
        removed = 1;
    }
    pthread_mutex_unlock(&mu);
    return removed;
}

int aurora_token_peek(const char *key, size_t klen, double now, aurora_token_result *out)
{
    int rc = check_key(klen);
    entry *e;

    if (rc)
        return rc;
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&mu);
    seed_once();
    e = find(key, klen, hash_key(key, klen));
    if (e && e->value && now < e->expires_at)
        rc = copy_result(out, AURORA_TOKEN_VALUE, e->value, e->expires_at, e->meta, e->meta_len,
                         NULL, 0);
    else
        rc = AURORA_E_NOT_FOUND;
    pthread_mutex_unlock(&mu);
    return rc;
}

int aurora_token_put(const char *key, size_t klen, const void *value, size_t vlen,
                     double expires_at, const char *meta, size_t meta_len)
{
    int rc = check_key(klen);
    aurora_secret *v = NULL;
    char *m = NULL;
    entry *e;

    if (rc)
        return rc;
    if (vlen > AURORA_TOKEN_VALUE_MAX || meta_len > AURORA_TOKEN_JSON_MAX)
        return AURORA_E_TOO_LARGE;
    v = aurora_secret_new(value, vlen);
    m = meta ? dup_bytes(meta, meta_len) : NULL;
    if (!v || (meta && !m)) {
        rc = AURORA_E_NOMEM;
        goto out;
    }
    pthread_mutex_lock(&mu);
    seed_once();
    e = find_or_add(key, klen, hash_key(key, klen));
    if (e) {
        drop_value(e);
        drop_err(e);
        e->value = v;
        e->expires_at = expires_at;
        e->meta = m;
        e->meta_len = m ? meta_len : 0;
        v = NULL;
        m = NULL;
    } else {
        rc = AURORA_E_NOMEM;
    }
    pthread_mutex_unlock(&mu);
out:
    aurora_secret_free(&v);
    free(m);
    return rc;
}

void aurora_token_invalidate(const char *key, size_t klen)
{
    entry *e;

    if (check_key(klen))
        return;
    pthread_mutex_lock(&mu);
    seed_once();
    e = find(key, klen, hash_key(key, klen));
    if (e) {
        drop_value(e);
        drop_err(e);
        maybe_remove(e);
    }
    pthread_mutex_unlock(&mu);
}

void aurora_token_get_stats(aurora_token_stats *s)
{
    pthread_mutex_lock(&mu);
    *s = stats;
    s->entries = count;
    pthread_mutex_unlock(&mu);
}

void aurora_token_configure(size_t n)
{
    pthread_mutex_lock(&mu);
    max_entries = n ? n : AURORA_TOKEN_DEFAULT_ENTRIES;
    pthread_mutex_unlock(&mu);
}

void aurora_token_shutdown(void)
{
    pthread_mutex_lock(&mu);
    while (lru_head) {
        entry *e = lru_head;
        e->waiters = NULL;
        e->flight = 0;
        remove_entry(e);
    }
    free(buckets);
    buckets = NULL;
    nbuckets = 0;
    count = 0;
    memset(&stats, 0, sizeof(stats));
    max_entries = AURORA_TOKEN_DEFAULT_ENTRIES;
    pthread_mutex_unlock(&mu);
}

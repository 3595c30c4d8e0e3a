/*
 * shared.c: the dictionaries behind aurora.shared (see shared.h). A process-wide registry (one
 * mutex, a short list) maps names to dictionaries; each dictionary has its own mutex, a chained
 * hash table keyed with SipHash-1-3 under a random per-process key (so request-controlled keys
 * cannot force long chains), and an LRU list. Expiry uses CLOCK_MONOTONIC milliseconds.
 *
 * Plain libc and pthreads; no Lua. Everything handed out is a copy made under the lock, so a
 * caller never holds a pointer into a dictionary. Entries are allocated before the lock is taken
 * where that is cheap to do, to keep critical sections short.
 */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "aurora/aurora.h"
#include "aurora/shared.h"

#define MIN_BUCKETS 64
/* When a dictionary is full, expired entries are swept at most this often before live ones are
 * evicted, so a full dictionary does not pay a full scan on every insert. */
#define SWEEP_INTERVAL_MS 1000

/* A link of the LRU list. The dictionary holds the sentinel; every entry starts with its link. */
typedef struct lru_link {
    struct lru_link *prev, *next;
} lru_link;

typedef struct entry {
    lru_link lru;        /* first member: a link pointer converts to its entry */
    struct entry *hnext; /* hash chain */
    uint64_t hash;
    int64_t expires; /* monotonic ms; 0 = never */
    size_t klen, vlen, size;
    aurora_shared_type type;
    union {
        int64_t i;
        double f;
        int b;
    } u;
    char data[]; /* key, NUL, then for strings the value, NUL */
} entry;

struct aurora_shared_dict {
    struct aurora_shared_dict *next; /* registry list */
    pthread_mutex_t mu;
    char name[AURORA_SHARED_NAME_MAX + 1];
    size_t max_items, max_bytes;
    entry **buckets;
    size_t nbuckets; /* a power of two, or 0 before the first insert */
    size_t count, bytes;
    lru_link lru; /* sentinel: lru.next is the most recently used entry, lru.prev the least */
    int64_t last_sweep;
};

static pthread_mutex_t registry_mu = PTHREAD_MUTEX_INITIALIZER;
static aurora_shared_dict *registry;
static uint64_t sip_k0, sip_k1;
static int seeded;

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                                 \
    do {                                                                                         \
        v0 += v1;                                                                                \
        v1 = ROTL(v1, 13);                                                                       \
        v1 ^= v0;                                                                                \
        v0 = ROTL(v0, 32);                                                                       \
        v2 += v3;                                                                                \
        v3 = ROTL(v3, 16);                                                                       \
        v3 ^= v2;                                                                                \
        v0 += v3;                                                                                \
        v3 = ROTL(v3, 21);                                                                       \
        v3 ^= v0;                                                                                \
        v2 += v1;                                                                                \
        v1 = ROTL(v1, 17);                                                                       \
        v1 ^= v2;                                                                                \
        v2 = ROTL(v2, 32);                                                                       \
    } while (0)

/* SipHash-1-3 of key under the process key. */
static uint64_t hash_key(const char *key, size_t klen)
{
    const unsigned char *p = (const unsigned char *)key;
    uint64_t v0 = 0x736f6d6570736575ULL ^ sip_k0, v1 = 0x646f72616e646f6dULL ^ sip_k1;
    uint64_t v2 = 0x6c7967656e657261ULL ^ sip_k0, v3 = 0x7465646279746573ULL ^ sip_k1;
    uint64_t b = (uint64_t)klen << 56, m;
    size_t i, whole = klen - klen % 8;

    for (i = 0; i < whole; i += 8) {
        memcpy(&m, p + i, 8);
        v3 ^= m;
        SIPROUND;
        v0 ^= m;
    }
    for (; i < klen; i++)
        b |= (uint64_t)p[i] << (8 * (i - whole));
    v3 ^= b;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

static size_t value_size(const aurora_shared_value *v)
{
    switch (v->type) {
    case AURORA_SHARED_STRING: return v->len;
    case AURORA_SHARED_BOOLEAN: return 1;
    default: return 8;
    }
}

/* A new unlinked entry holding copies of key and v, or NULL when out of memory. */
static entry *entry_new(const char *key, size_t klen, uint64_t hash, const aurora_shared_value *v)
{
    size_t vlen = v->type == AURORA_SHARED_STRING ? v->len : 0;
    entry *e = malloc(sizeof(*e) + klen + 1 + (v->type == AURORA_SHARED_STRING ? vlen + 1 : 0));

    if (!e)
        return NULL;
    e->hnext = NULL;
    e->lru.prev = e->lru.next = NULL;
    e->hash = hash;
    e->expires = 0;
    e->klen = klen;
    e->vlen = vlen;
    e->size = klen + value_size(v);
    e->type = v->type;
    e->u.i = 0;
    if (v->type == AURORA_SHARED_INTEGER)
        e->u.i = v->u.i;
    else if (v->type == AURORA_SHARED_FLOAT)
        e->u.f = v->u.f;
    else if (v->type == AURORA_SHARED_BOOLEAN)
        e->u.b = v->u.b;
    if (klen)
        memcpy(e->data, key, klen);
    e->data[klen] = '\0';
    if (v->type == AURORA_SHARED_STRING) {
        if (vlen)
            memcpy(e->data + klen + 1, v->str, vlen);
        e->data[klen + 1 + vlen] = '\0';
    }
    return e;
}

/* The link that points at key's entry (or at NULL, where a new one would go). Needs the lock and
 * at least one bucket. */
static entry **find_link(aurora_shared_dict *d, const char *key, size_t klen, uint64_t hash)
{
    entry **link = &d->buckets[hash & (d->nbuckets - 1)];

    while (*link) {
        entry *e = *link;

        if (e->hash == hash && e->klen == klen && memcmp(e->data, key, klen) == 0)
            break;
        link = &e->hnext;
    }
    return link;
}

static entry *find(aurora_shared_dict *d, const char *key, size_t klen, uint64_t hash)
{
    return d->nbuckets ? *find_link(d, key, klen, hash) : NULL;
}

static void lru_unlink(entry *e)
{
    e->lru.prev->next = e->lru.next;
    e->lru.next->prev = e->lru.prev;
}

static void lru_push_front(aurora_shared_dict *d, entry *e)
{
    e->lru.prev = &d->lru;
    e->lru.next = d->lru.next;
    d->lru.next->prev = &e->lru;
    d->lru.next = &e->lru;
}

/* Unlinks e from the table and the list and frees it. Needs the lock. */
static void remove_entry(aurora_shared_dict *d, entry *e)
{
    entry **link = find_link(d, e->data, e->klen, e->hash);

    *link = e->hnext;
    lru_unlink(e);
    d->count--;
    d->bytes -= e->size;
    free(e);
}

static int is_expired(const entry *e, int64_t now)
{
    return e->expires && e->expires <= now;
}

/* key's live entry, removing it first if it has expired. Needs the lock. */
static entry *find_live(aurora_shared_dict *d, const char *key, size_t klen, uint64_t hash,
                        int64_t now)
{
    entry *e = find(d, key, klen, hash);

    if (e && is_expired(e, now)) {
        remove_entry(d, e);
        e = NULL;
    }
    return e;
}

static void sweep_expired(aurora_shared_dict *d, int64_t now)
{
    lru_link *l = d->lru.next, *next;

    while (l != &d->lru) {
        next = l->next;
        if (is_expired((entry *)l, now))
            remove_entry(d, (entry *)l);
        l = next;
    }
    d->last_sweep = now;
}

/* Evicts until one more entry of size bytes fits: expired entries first, then the least recently
 * used. size <= max_bytes is checked by the caller. Needs the lock. */
static void make_room(aurora_shared_dict *d, size_t size, int64_t now)
{
    if (d->count < d->max_items && d->bytes + size <= d->max_bytes)
        return;
    if (!d->last_sweep || now - d->last_sweep >= SWEEP_INTERVAL_MS)
        sweep_expired(d, now);
    while (d->count > 0 && (d->count >= d->max_items || d->bytes + size > d->max_bytes))
        remove_entry(d, (entry *)d->lru.prev);
}

/* Doubles the bucket array when the load passes 1. A failed allocation only costs speed. */
static void maybe_grow(aurora_shared_dict *d)
{
    size_t n = d->nbuckets ? d->nbuckets * 2 : MIN_BUCKETS, i;
    entry **nb;

    if (d->nbuckets && d->count <= d->nbuckets)
        return;
    nb = calloc(n, sizeof(*nb));
    if (!nb)
        return;
    for (i = 0; i < d->nbuckets; i++) {
        entry *e = d->buckets[i], *next;

        for (; e; e = next) {
            next = e->hnext;
            e->hnext = nb[e->hash & (n - 1)];
            nb[e->hash & (n - 1)] = e;
        }
    }
    free(d->buckets);
    d->buckets = nb;
    d->nbuckets = n;
}

/* Makes sure the table has buckets, so that insert cannot fail. Needs the lock. Returns 0 or
 * AURORA_E_NOMEM. */
static int ensure_buckets(aurora_shared_dict *d)
{
    maybe_grow(d);
    return d->nbuckets ? 0 : AURORA_E_NOMEM;
}

/* Links a new entry in, most recently used. Needs the lock, buckets (ensure_buckets) and room
 * (make_room). */
static void insert(aurora_shared_dict *d, entry *e)
{
    entry **head;

    maybe_grow(d);
    head = &d->buckets[e->hash & (d->nbuckets - 1)];
    e->hnext = *head;
    *head = e;
    lru_push_front(d, e);
    d->count++;
    d->bytes += e->size;
}

static int64_t expiry(double ttl, int64_t now)
{
    int64_t ms;

    if (ttl <= 0)
        return 0;
    ms = (int64_t)ceil(ttl * 1000.0);
    return now + (ms < 1 ? 1 : ms);
}

static int ttl_ok(double ttl)
{
    return ttl >= 0 && ttl <= AURORA_SHARED_TTL_MAX;
}

static void copy_out(const entry *e, aurora_shared_value *out, char *str)
{
    out->type = e->type;
    out->u.i = e->u.i;
    if (e->type == AURORA_SHARED_FLOAT)
        out->u.f = e->u.f;
    else if (e->type == AURORA_SHARED_BOOLEAN)
        out->u.b = e->u.b;
    out->str = str;
    out->len = 0;
    if (str) {
        memcpy(str, e->data + e->klen + 1, e->vlen + 1);
        out->len = e->vlen;
    }
}

int aurora_shared_open(const char *name, size_t max_items, size_t max_bytes,
                       aurora_shared_dict **out)
{
    size_t n = strlen(name);
    aurora_shared_dict *d;
    uint64_t k[2];
    int rc = 0;

    if (n == 0 || n > AURORA_SHARED_NAME_MAX)
        return AURORA_E_INVALID;
    pthread_mutex_lock(&registry_mu);
    if (!seeded) {
        if (getrandom(k, sizeof(k), 0) != (ssize_t)sizeof(k)) {
            /* No entropy: a weaker but still per-process key. */
            k[0] = (uint64_t)now_ms() ^ (uint64_t)(uintptr_t)&k;
            k[1] = (uint64_t)(uintptr_t)&registry * 0x9e3779b97f4a7c15ULL;
        }
        sip_k0 = k[0];
        sip_k1 = k[1];
        seeded = 1;
    }
    for (d = registry; d; d = d->next)
        if (strcmp(d->name, name) == 0)
            goto out;
    d = calloc(1, sizeof(*d));
    if (!d) {
        rc = AURORA_E_NOMEM;
        goto out;
    }
    if (pthread_mutex_init(&d->mu, NULL) != 0) {
        free(d);
        d = NULL;
        rc = AURORA_E_NOMEM;
        goto out;
    }
    memcpy(d->name, name, n + 1);
    d->max_items = max_items ? max_items : AURORA_SHARED_DEFAULT_ITEMS;
    d->max_bytes = max_bytes ? max_bytes : AURORA_SHARED_DEFAULT_BYTES;
    d->lru.next = d->lru.prev = &d->lru;
    d->next = registry;
    registry = d;
out:
    pthread_mutex_unlock(&registry_mu);
    if (!rc)
        *out = d;
    return rc;
}

const char *aurora_shared_name(const aurora_shared_dict *d)
{
    return d->name;
}

int aurora_shared_get(aurora_shared_dict *d, const char *key, size_t klen,
                      aurora_shared_value *out)
{
    uint64_t hash;
    entry *e;
    char *str = NULL;
    int rc = 0;

    if (klen > AURORA_SHARED_KEY_MAX)
        return AURORA_E_TOO_LARGE;
    hash = hash_key(key, klen);
    pthread_mutex_lock(&d->mu);
    e = find_live(d, key, klen, hash, now_ms());
    if (!e) {
        rc = AURORA_E_NOT_FOUND;
        goto out;
    }
    if (e->type == AURORA_SHARED_STRING) {
        str = malloc(e->vlen + 1);
        if (!str) {
            rc = AURORA_E_NOMEM;
            goto out;
        }
    }
    lru_unlink(e);
    lru_push_front(d, e);
    copy_out(e, out, str);
out:
    pthread_mutex_unlock(&d->mu);
    return rc;
}

int aurora_shared_set(aurora_shared_dict *d, const char *key, size_t klen,
                      const aurora_shared_value *v, double ttl, aurora_shared_mode mode)
{
    entry *e = NULL, *old;
    int64_t now;
    int rc = 0;

    if (klen > AURORA_SHARED_KEY_MAX)
        return AURORA_E_TOO_LARGE;
    if (!ttl_ok(ttl))
        return AURORA_E_INVALID;
    if (v->type == AURORA_SHARED_NIL) {
        if (mode != AURORA_SHARED_SET)
            return AURORA_E_INVALID;
        return aurora_shared_delete(d, key, klen);
    }
    if (klen + value_size(v) > d->max_bytes)
        return AURORA_E_TOO_LARGE;
    e = entry_new(key, klen, hash_key(key, klen), v);
    if (!e)
        return AURORA_E_NOMEM;
    pthread_mutex_lock(&d->mu);
    rc = ensure_buckets(d);
    if (rc)
        goto out;
    now = now_ms();
    old = find_live(d, key, klen, e->hash, now);
    if (mode == AURORA_SHARED_ADD && old) {
        rc = AURORA_E_CONFLICT;
        goto out;
    }
    if (mode == AURORA_SHARED_REPLACE && !old) {
        rc = AURORA_E_NOT_FOUND;
        goto out;
    }
    if (old)
        remove_entry(d, old);
    make_room(d, e->size, now);
    e->expires = expiry(ttl, now);
    insert(d, e);
    e = NULL;
out:
    pthread_mutex_unlock(&d->mu);
    free(e);
    return rc;
}

static int is_number(const aurora_shared_value *v)
{
    return v->type == AURORA_SHARED_INTEGER || v->type == AURORA_SHARED_FLOAT;
}

static double as_float(aurora_shared_type type, int64_t i, double f)
{
    return type == AURORA_SHARED_INTEGER ? (double)i : f;
}

/* *sum = a + b under the integer/float rules of aurora_shared_incr. Returns 0 or
 * AURORA_E_TOO_LARGE on integer overflow. */
static int add_numbers(const aurora_shared_value *a, const aurora_shared_value *b,
                       aurora_shared_value *sum)
{
    memset(sum, 0, sizeof(*sum));
    if (a->type == AURORA_SHARED_INTEGER && b->type == AURORA_SHARED_INTEGER) {
        sum->type = AURORA_SHARED_INTEGER;
        return __builtin_add_overflow(a->u.i, b->u.i, &sum->u.i) ? AURORA_E_TOO_LARGE : 0;
    }
    sum->type = AURORA_SHARED_FLOAT;
    sum->u.f = as_float(a->type, a->u.i, a->u.f) + as_float(b->type, b->u.i, b->u.f);
    return 0;
}

int aurora_shared_incr(aurora_shared_dict *d, const char *key, size_t klen,
                       const aurora_shared_value *by, const aurora_shared_value *init, double ttl,
                       aurora_shared_value *out)
{
    aurora_shared_value cur, sum;
    uint64_t hash;
    int64_t now;
    entry *e;
    int rc = 0;

    if (klen > AURORA_SHARED_KEY_MAX)
        return AURORA_E_TOO_LARGE;
    if (!is_number(by) || (init && !is_number(init)) || !ttl_ok(ttl))
        return AURORA_E_INVALID;
    if (klen + 8 > d->max_bytes)
        return AURORA_E_TOO_LARGE;
    hash = hash_key(key, klen);
    pthread_mutex_lock(&d->mu);
    now = now_ms();
    e = find_live(d, key, klen, hash, now);
    if (e) {
        if (e->type != AURORA_SHARED_INTEGER && e->type != AURORA_SHARED_FLOAT) {
            rc = AURORA_E_INVALID;
            goto out;
        }
        cur.type = e->type;
        cur.u.i = e->u.i;
        if (e->type == AURORA_SHARED_FLOAT)
            cur.u.f = e->u.f;
        rc = add_numbers(&cur, by, &sum);
        if (rc)
            goto out;
        e->type = sum.type;
        if (sum.type == AURORA_SHARED_INTEGER)
            e->u.i = sum.u.i;
        else
            e->u.f = sum.u.f;
        lru_unlink(e);
        lru_push_front(d, e);
        goto out;
    }
    if (!init) {
        rc = AURORA_E_NOT_FOUND;
        goto out;
    }
    rc = add_numbers(init, by, &sum);
    if (!rc)
        rc = ensure_buckets(d);
    if (rc)
        goto out;
    e = entry_new(key, klen, hash, &sum);
    if (!e) {
        rc = AURORA_E_NOMEM;
        goto out;
    }
    make_room(d, e->size, now);
    e->expires = expiry(ttl, now);
    insert(d, e);
out:
    pthread_mutex_unlock(&d->mu);
    if (!rc)
        *out = sum;
    return rc;
}

int aurora_shared_delete(aurora_shared_dict *d, const char *key, size_t klen)
{
    uint64_t hash;
    entry *e;

    if (klen > AURORA_SHARED_KEY_MAX)
        return AURORA_E_TOO_LARGE;
    hash = hash_key(key, klen);
    pthread_mutex_lock(&d->mu);
    e = find(d, key, klen, hash);
    if (e)
        remove_entry(d, e);
    pthread_mutex_unlock(&d->mu);
    return 0;
}

int aurora_shared_ttl(aurora_shared_dict *d, const char *key, size_t klen, double *remaining)
{
    uint64_t hash;
    int64_t now;
    entry *e;
    double left = 0;
    int rc = 0;

    if (klen > AURORA_SHARED_KEY_MAX)
        return AURORA_E_TOO_LARGE;
    hash = hash_key(key, klen);
    pthread_mutex_lock(&d->mu);
    now = now_ms();
    e = find_live(d, key, klen, hash, now);
    if (!e)
        rc = AURORA_E_NOT_FOUND;
    else if (e->expires)
        left = (double)(e->expires - now) / 1000.0;
    pthread_mutex_unlock(&d->mu);
    if (!rc)
        *remaining = left;
    return rc;
}

int aurora_shared_keys(aurora_shared_dict *d, size_t max, aurora_shared_key **out, size_t *n)
{
    aurora_shared_key *keys = NULL;
    size_t count = 0, bytes = 0, i;
    lru_link *l;
    char *p;
    int rc = 0;

    pthread_mutex_lock(&d->mu);
    sweep_expired(d, now_ms());
    for (l = d->lru.next; l != &d->lru && (!max || count < max); l = l->next) {
        count++;
        bytes += ((entry *)l)->klen + 1;
    }
    if (count) {
        keys = malloc(count * sizeof(*keys) + bytes);
        if (!keys) {
            rc = AURORA_E_NOMEM;
            goto out;
        }
        p = (char *)(keys + count);
        for (i = 0, l = d->lru.next; i < count; i++, l = l->next) {
            const entry *e = (const entry *)l;

            memcpy(p, e->data, e->klen + 1);
            keys[i].s = p;
            keys[i].len = e->klen;
            p += e->klen + 1;
        }
    }
out:
    pthread_mutex_unlock(&d->mu);
    if (!rc) {
        *out = keys;
        *n = count;
    }
    return rc;
}

/* Frees every entry and the buckets. Needs the lock (or exclusive access). */
static void clear(aurora_shared_dict *d)
{
    lru_link *l = d->lru.next, *next;

    for (; l != &d->lru; l = next) {
        next = l->next;
        free(l);
    }
    d->lru.next = d->lru.prev = &d->lru;
    free(d->buckets);
    d->buckets = NULL;
    d->nbuckets = 0;
    d->count = d->bytes = 0;
}

void aurora_shared_flush(aurora_shared_dict *d)
{
    pthread_mutex_lock(&d->mu);
    clear(d);
    pthread_mutex_unlock(&d->mu);
}

size_t aurora_shared_count(aurora_shared_dict *d)
{
    size_t n;

    pthread_mutex_lock(&d->mu);
    sweep_expired(d, now_ms());
    n = d->count;
    pthread_mutex_unlock(&d->mu);
    return n;
}

void aurora_shared_value_free(aurora_shared_value *v)
{
    if (!v)
        return;
    free(v->str);
    memset(v, 0, sizeof(*v));
}

void aurora_shared_shutdown(void)
{
    aurora_shared_dict *d, *next;

    pthread_mutex_lock(&registry_mu);
    for (d = registry; d; d = next) {
        next = d->next;
        clear(d);
        pthread_mutex_destroy(&d->mu);
        free(d);
    }
    registry = NULL;
    pthread_mutex_unlock(&registry_mu);
}

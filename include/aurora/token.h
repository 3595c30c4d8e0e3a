/*
 * token.h: the process-wide token cache behind aurora.token. Entries are keyed by an opaque
 * string and hold a secret value (an access token, a Vault token) with its expiry and a small
 * JSON metadata object, and/or a cached failure (the JSON text of an error table) with its own
 * expiry. A miss makes the caller the single fetcher of that key ("single flight"): every other
 * caller, on any thread, registers a waiter and is notified with a copy of the fetcher's outcome.
 *
 * Nothing here depends on Lua or on the worker: notification is a callback the caller supplies,
 * run on the finishing thread outside the lock. All functions are thread-safe. Times are Unix
 * seconds (double) given by the caller, so tests control the clock.
 */
#ifndef AURORA_TOKEN_H
#define AURORA_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#include "aurora/secret.h"

#define AURORA_TOKEN_KEY_MAX 4096          /* longest key, in bytes */
#define AURORA_TOKEN_VALUE_MAX (64 * 1024) /* longest value */
#define AURORA_TOKEN_JSON_MAX (16 * 1024)  /* longest metadata or error JSON text */
#define AURORA_TOKEN_DEFAULT_ENTRIES 10000 /* entry bound before LRU eviction */

/* What a lookup found. */
typedef enum {
    AURORA_TOKEN_HIT = 1,  /* a value beyond the margin: copied to *out */
    AURORA_TOKEN_NEGATIVE, /* a cached failure: copied to *out */
    AURORA_TOKEN_WAIT,     /* another caller is fetching: the waiter was registered */
    AURORA_TOKEN_FETCH,    /* nothing usable: the caller is now the fetcher of the key */
} aurora_token_outcome;

/* The kind of a result. */
typedef enum {
    AURORA_TOKEN_VALUE = 1, /* value, expires_at, meta */
    AURORA_TOKEN_FAILURE,   /* err (+ expires_at: when the cached failure ends, 0 if not cached) */
    AURORA_TOKEN_RETRY,     /* the fetcher gave up without an outcome (it was killed): look up
                             * again, and perhaps become the fetcher */
} aurora_token_kind;

/*
 * A value or failure going in or coming out. Coming out, every pointer is a private copy that
 * aurora_token_result_clear frees (the value is wiped). Going in, the pointers are borrowed.
 */
typedef struct aurora_token_result {
    aurora_token_kind kind;
    aurora_secret *value; /* VALUE: the secret (going in: only data/len are read) */
    double expires_at;    /* Unix seconds */
    char *meta;           /* VALUE: JSON object text, or NULL */
    size_t meta_len;
    char *err; /* FAILURE: JSON text of the error */
    size_t err_len;
} aurora_token_result;

/* Frees the copies held by *r (wiping the value) and zeroes it. Harmless on a zeroed result. */
void aurora_token_result_clear(aurora_token_result *r);

/* A fetcher's outcome shared by its waiters (reference counted, read-only). */
typedef struct aurora_token_done aurora_token_done;

/* The result inside d (valid while the reference is held). */
const aurora_token_result *aurora_token_done_result(const aurora_token_done *d);

/* Drops one reference to *d and sets *d to NULL; the last one frees it. Any thread. */
void aurora_token_done_release(aurora_token_done **d);

typedef struct aurora_token_waiter aurora_token_waiter;

/*
 * Called once for a registered waiter when the flight it waits on ends (finish or abandon), on
 * the finishing thread, outside the lock. It receives one reference to the outcome, which it
 * must release (after using it, on any thread). It must not call back into this unit's lookup
 * on that thread's stack if it could recurse; the Lua binding posts to the waiter's worker.
 */
typedef void (*aurora_token_notify_fn)(aurora_token_waiter *w, aurora_token_done *d);

/* A waiter is allocated and owned by the caller; the fields below the line are private. */
struct aurora_token_waiter {
    aurora_token_notify_fn notify;
    void *arg; /* the caller's */
    /* ---- private to token.c */
    struct aurora_token_waiter *next;
    void *entry;
    int state;
};

/*
 * Looks key up at time now. A value counts only when now + margin < its expiry. Otherwise a
 * cached failure (not yet expired) is returned; otherwise, when a fetch of the key is in flight,
 * w is registered (its notify and arg must be set; the caller must not free it until notify ran
 * or aurora_token_cancel_wait returned 1); otherwise the caller becomes the fetcher and gets a
 * flight id in *flight, and must end the flight with aurora_token_finish or aurora_token_abandon.
 * Returns 0 and sets *outcome (for HIT and NEGATIVE, *out holds copies the caller clears), or
 * AURORA_E_TOO_LARGE (key longer than AURORA_TOKEN_KEY_MAX, or empty: AURORA_E_INVALID),
 * AURORA_E_NOMEM. On failure nothing was registered.
 */
int aurora_token_lookup(const char *key, size_t klen, double now, double margin,
                        aurora_token_waiter *w, aurora_token_outcome *outcome,
                        aurora_token_result *out, uint64_t *flight);

/*
 * Ends the flight of key with r (kind VALUE or FAILURE; copied). A value replaces the cached one
 * and clears a cached failure; a failure is cached until now + negative_ttl when negative_ttl > 0
 * (a cached value, if any, is kept: peek still sees it until it expires). Every waiter is
 * notified with a copy of r (a FAILURE's expires_at is set to the end of its caching, or 0).
 * A flight id that is not the current one (it was abandoned) still stores r but wakes nobody.
 * Returns 0, or AURORA_E_TOO_LARGE / AURORA_E_INVALID (r too large or malformed: the flight then
 * ends as if abandoned), AURORA_E_NOMEM (likewise).
 */
int aurora_token_finish(const char *key, size_t klen, uint64_t flight, const aurora_token_result *r,
                        double now, double negative_ttl);

/* Ends the flight of key without an outcome: every waiter is notified with AURORA_TOKEN_RETRY.
 * Harmless when flight is not the current flight. */
void aurora_token_abandon(const char *key, size_t klen, uint64_t flight);

/*
 * Withdraws a registered waiter (its task was cancelled). Returns 1 when it was removed (notify
 * will not be called; the caller owns w again), 0 when its flight already ended (notify has run
 * or is about to run on another thread; the caller must let the notify path free it).
 */
int aurora_token_cancel_wait(aurora_token_waiter *w);

/*
 * Copies the cached value of key when it has not expired at now (whatever the margin). Returns 0
 * (*out holds copies, kind VALUE), or AURORA_E_NOT_FOUND, AURORA_E_INVALID / AURORA_E_TOO_LARGE
 * (bad key), AURORA_E_NOMEM. Does not count as a hit.
 */
int aurora_token_peek(const char *key, size_t klen, double now, aurora_token_result *out);

/*
 * Stores a value for key (copies value[0..vlen) and meta, which may be NULL) and clears a cached
 * failure. An in-flight fetch is left alone. Returns 0, or AURORA_E_INVALID (empty key),
 * AURORA_E_TOO_LARGE, AURORA_E_NOMEM.
 */
int aurora_token_put(const char *key, size_t klen, const void *value, size_t vlen,
                     double expires_at, const char *meta, size_t meta_len);

/* Drops the value and the cached failure of key (a fetch in flight carries on). */
void aurora_token_invalidate(const char *key, size_t klen);

typedef struct aurora_token_stats {
    size_t entries;         /* keys in the cache (with a value, a failure or a flight) */
    uint64_t fetches;       /* flights started */
    uint64_t waits;         /* waiters registered */
    uint64_t hits;          /* lookups answered with a value */
    uint64_t negative_hits; /* lookups answered with a cached failure */
} aurora_token_stats;

/* Copies the counters (process-wide, since start or the last shutdown). */
void aurora_token_get_stats(aurora_token_stats *s);

/* Sets the entry bound (0: the default). Entries beyond it are evicted, least recently used
 * first, except those with a fetch in flight. */
void aurora_token_configure(size_t max_entries);

/* Frees every entry and resets the counters. Only for tests and exit: no flight may be in
 * progress and no thread may use the cache during the call. */
void aurora_token_shutdown(void);

#endif

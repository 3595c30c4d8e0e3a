/*
 * shared.h: named dictionaries shared by every worker thread (module aurora.shared). Each
 * dictionary has its own mutex, string keys, values that are strings, integers, floats or
 * booleans, an optional expiry per entry, and bounds on its item count and bytes beyond which the
 * least recently used entries are evicted. Functions copy values in and out; no pointer into a
 * dictionary ever leaves its lock. Nothing here depends on Lua.
 */
#ifndef AURORA_SHARED_H
#define AURORA_SHARED_H

#include <stddef.h>
#include <stdint.h>

#define AURORA_SHARED_KEY_MAX (64 * 1024)            /* longest key, in bytes */
#define AURORA_SHARED_NAME_MAX 128                   /* longest dictionary name */
#define AURORA_SHARED_DEFAULT_ITEMS 10000
#define AURORA_SHARED_DEFAULT_BYTES (64 * 1024 * 1024)
#define AURORA_SHARED_TTL_MAX 1e9                    /* longest ttl, in seconds (~31 years) */

typedef struct aurora_shared_dict aurora_shared_dict;

typedef enum {
    AURORA_SHARED_NIL = 0, /* no value: a miss, or "delete" when given to set */
    AURORA_SHARED_STRING,
    AURORA_SHARED_INTEGER,
    AURORA_SHARED_FLOAT,
    AURORA_SHARED_BOOLEAN,
} aurora_shared_type;

/*
 * A value going in or coming out. For AURORA_SHARED_STRING, str/len hold the bytes: borrowed when
 * passed in, a malloc'ed copy (NUL-terminated, not counted in len) when returned, which the
 * caller frees with aurora_shared_value_free.
 */
typedef struct aurora_shared_value {
    aurora_shared_type type;
    union {
        int64_t i;
        double f;
        int b;
    } u;
    char *str;
    size_t len;
} aurora_shared_value;

/* How aurora_shared_set treats an existing entry. */
typedef enum {
    AURORA_SHARED_SET = 0, /* store whatever is there */
    AURORA_SHARED_ADD,     /* store only when no live entry exists, else AURORA_E_CONFLICT */
    AURORA_SHARED_REPLACE, /* store only when a live entry exists, else AURORA_E_NOT_FOUND */
} aurora_shared_mode;

/*
 * Finds the dictionary called name, creating it with the given bounds on first use (0 picks the
 * default). Bounds of an existing dictionary are left alone. The dictionary lives until
 * aurora_shared_shutdown; the caller never frees it. Returns 0 and sets *out, or
 * AURORA_E_INVALID (empty or over-long name), AURORA_E_NOMEM. Thread-safe.
 */
int aurora_shared_open(const char *name, size_t max_items, size_t max_bytes,
                       aurora_shared_dict **out);

/* The dictionary's name (valid as long as the dictionary). */
const char *aurora_shared_name(const aurora_shared_dict *d);

/*
 * Copies the live value of key into *out and marks it most recently used. Returns 0, or
 * AURORA_E_NOT_FOUND (absent or expired; an expired entry is removed), AURORA_E_TOO_LARGE (key
 * longer than AURORA_SHARED_KEY_MAX), AURORA_E_NOMEM. On success the caller frees *out with
 * aurora_shared_value_free.
 */
int aurora_shared_get(aurora_shared_dict *d, const char *key, size_t klen,
                      aurora_shared_value *out);

/*
 * Stores a copy of *v under key, expiring after ttl seconds (0 = never; at most
 * AURORA_SHARED_TTL_MAX). A value of type AURORA_SHARED_NIL deletes the key (mode SET only). Makes
 * room by evicting expired entries (swept at most once a second), then least recently used ones.
 * Returns 0, or AURORA_E_CONFLICT (ADD and a live entry exists), AURORA_E_NOT_FOUND (REPLACE and
 * none does), AURORA_E_TOO_LARGE (key too long, or the entry alone exceeds the dictionary's byte
 * bound), AURORA_E_INVALID (bad ttl, NIL with ADD or REPLACE), AURORA_E_NOMEM. On failure the
 * dictionary is unchanged.
 */
int aurora_shared_set(aurora_shared_dict *d, const char *key, size_t klen,
                      const aurora_shared_value *v, double ttl, aurora_shared_mode mode);

/*
 * Adds by (an integer or float) to the number under key and copies the result to *out. A missing
 * key starts from *init (NULL: AURORA_E_NOT_FOUND) and gets ttl; an existing key keeps its
 * expiry. Integer + integer stays an integer; anything else is a float. Returns 0, or
 * AURORA_E_INVALID (the stored value, by or init is not a number, or a bad ttl),
 * AURORA_E_NOT_FOUND (no live key and no init), AURORA_E_TOO_LARGE (integer overflow, key too
 * long), AURORA_E_NOMEM. On failure the stored value is unchanged.
 */
int aurora_shared_incr(aurora_shared_dict *d, const char *key, size_t klen,
                       const aurora_shared_value *by, const aurora_shared_value *init, double ttl,
                       aurora_shared_value *out);

/* Removes key if present. Returns 0, or AURORA_E_TOO_LARGE for an over-long key. */
int aurora_shared_delete(aurora_shared_dict *d, const char *key, size_t klen);

/*
 * Sets *remaining to the seconds key has left to live, or 0 when it never expires. Returns 0, or
 * AURORA_E_NOT_FOUND (absent or expired), AURORA_E_TOO_LARGE (key too long).
 */
int aurora_shared_ttl(aurora_shared_dict *d, const char *key, size_t klen, double *remaining);

/* A key returned by aurora_shared_keys. */
typedef struct aurora_shared_key {
    const char *s; /* NUL-terminated, not counted in len */
    size_t len;
} aurora_shared_key;

/*
 * Copies up to max live keys (0 = all), most recently used first. On success sets *out to one
 * allocation holding the array and the bytes, which the caller frees with free(), and *n to the
 * count (*out is NULL when *n is 0). Returns 0 or AURORA_E_NOMEM.
 */
int aurora_shared_keys(aurora_shared_dict *d, size_t max, aurora_shared_key **out, size_t *n);

/* Removes every entry. */
void aurora_shared_flush(aurora_shared_dict *d);

/* Number of live entries (expired ones are removed first). */
size_t aurora_shared_count(aurora_shared_dict *d);

/* Frees a value returned by get or incr and resets it to NIL. Harmless on NIL values. */
void aurora_shared_value_free(aurora_shared_value *v);

/*
 * Frees every dictionary. Only for process exit and leak checks: no thread may use a dictionary
 * during or after the call (aurora_shared_open creates fresh ones afterwards).
 */
void aurora_shared_shutdown(void);

#endif

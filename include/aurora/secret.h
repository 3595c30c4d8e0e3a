/*
 * secret.h: secrets held in C-owned memory (client secrets, private keys, tokens). The bytes are
 * wiped before the memory is freed. Lua only ever sees an opaque handle (module aurora.secret);
 * aurora.http and the crypto functions accept handles wherever a secret is needed.
 */
#ifndef AURORA_SECRET_H
#define AURORA_SECRET_H

#include <stddef.h>

typedef struct lua_State lua_State;

typedef struct aurora_secret {
    unsigned char *data; /* NUL-terminated, not counted in len; NULL once closed */
    size_t len;
} aurora_secret;

/* Copies n bytes into a new secret. Returns NULL when out of memory. Caller frees with
 * aurora_secret_free. */
aurora_secret *aurora_secret_new(const void *p, size_t n);

/* Wipes and frees *s, sets *s to NULL. Harmless on NULL. */
void aurora_secret_free(aurora_secret **s);

/* Pushes a new aurora.secret handle holding a copy of p[0..n). Stack: pushes 1; raises on
 * out-of-memory. */
void aurora_secret_push(lua_State *L, const void *p, size_t n);

/* Returns the live secret behind the handle at idx, or NULL when idx is not a handle. Raises
 * when it is a handle that was closed. Stack: unchanged. */
const aurora_secret *aurora_secret_test(lua_State *L, int idx);

/* Like aurora_secret_test but also accepts a Lua string (for callers that already hold the value
 * as a string, such as tests). Sets *p and *n. Raises "bad argument" naming fname otherwise. */
void aurora_secret_bytes(lua_State *L, int idx, const unsigned char **p, size_t *n);

#endif

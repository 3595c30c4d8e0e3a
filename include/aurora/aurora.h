/*
 * aurora.h: names shared by every C unit of the aurora engine: the version, the table of stable
 * error codes that cross into Lua as the third return value of a failed call, and a few small
 * helpers. Nothing here depends on Lua.
 */
#ifndef AURORA_AURORA_H
#define AURORA_AURORA_H

#include <stddef.h>

#define AURORA_VERSION "0.1.0"

/*
 * The one table of error codes. The word (second column) is what Lua code and docs/errors.md see;
 * it never changes once released. Add codes at the end.
 */
#define AURORA_ERROR_TABLE(X)                                                                    \
    X(AURORA_OK, "ok")                                                                           \
    X(AURORA_E_INVALID, "invalid")         /* malformed input (a bad PEM, bad JSON, bad URL) */  \
    X(AURORA_E_TIMEOUT, "timeout")         /* a deadline passed */                               \
    X(AURORA_E_TLS, "tls")                 /* TLS handshake or peer verification failed */       \
    X(AURORA_E_CONNECT, "connect")         /* could not connect, connection reset */             \
    X(AURORA_E_DNS, "dns")                 /* name resolution failed */                          \
    X(AURORA_E_NOT_FOUND, "not_found")     /* a file, key or record does not exist */            \
    X(AURORA_E_DENIED, "denied")           /* permission refused */                              \
    X(AURORA_E_BAD_REPLY, "bad_reply")     /* the peer answered something we cannot use */       \
    X(AURORA_E_TOO_LARGE, "too_large")     /* a size limit was exceeded */                       \
    X(AURORA_E_IO, "io")                   /* local I/O failed */                                \
    X(AURORA_E_NOMEM, "nomem")             /* out of memory */                                   \
    X(AURORA_E_CRYPTO, "crypto")           /* a signature, MAC or decryption did not verify */   \
    X(AURORA_E_EXPIRED, "expired")         /* a token or certificate is past its lifetime */     \
    X(AURORA_E_CANCELLED, "cancelled")     /* the work was abandoned (shutdown, deadline) */     \
    X(AURORA_E_UNAVAILABLE, "unavailable") /* a service is not there or refuses work now */      \
    X(AURORA_E_CONFLICT, "conflict")       /* a check-and-set or create found another value */   \
    X(AURORA_E_INTERNAL, "internal")       /* a bug or an unexpected library failure */

#define AURORA_ENUM_ITEM(name, word) name,
typedef enum { AURORA_ERROR_TABLE(AURORA_ENUM_ITEM) AURORA_ERROR_COUNT } aurora_err;
#undef AURORA_ENUM_ITEM

/* The stable word for an error code ("timeout"); never NULL. */
const char *aurora_err_word(aurora_err err);

/* Wipes n bytes at p in a way the compiler cannot elide. p may be NULL when n is 0. */
void aurora_wipe(void *p, size_t n);

/* Compares n bytes in constant time. Returns 1 when equal, else 0. */
int aurora_ct_equal(const void *a, const void *b, size_t n);

/* Number of elements of a true array. */
#define AURORA_COUNT(a) (sizeof(a) / sizeof((a)[0]))

#endif

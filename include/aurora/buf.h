/*
 * buf.h: a growable byte buffer with a hard maximum. Every buffer that grows from input the
 * engine does not control (request bodies, upstream replies, JSON output) is one of these, so a
 * hostile peer cannot make the process allocate without bound.
 */
#ifndef AURORA_BUF_H
#define AURORA_BUF_H

#include <stddef.h>

typedef struct aurora_buf {
    char *data;   /* NUL-terminated after every successful append (not counted in len) */
    size_t len;
    size_t cap;
    size_t max;   /* appends that would make len exceed max fail with AURORA_E_TOO_LARGE */
    int secret;   /* when set, old storage is wiped before it is freed or reallocated */
} aurora_buf;

/* Initialises an empty buffer that may grow to max bytes. Allocates nothing. */
void aurora_buf_init(aurora_buf *b, size_t max);

/* Appends n bytes. Returns 0, or an aurora_err (AURORA_E_TOO_LARGE, AURORA_E_NOMEM); on failure
 * the buffer is unchanged. */
int aurora_buf_append(aurora_buf *b, const void *p, size_t n);

/* Appends a NUL-terminated string; same contract as aurora_buf_append. */
int aurora_buf_puts(aurora_buf *b, const char *s);

/* Appends printf-formatted text; same contract as aurora_buf_append. */
int aurora_buf_printf(aurora_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Empties the buffer but keeps its storage (wiped first for a secret buffer). */
void aurora_buf_reset(aurora_buf *b);

/* Frees the storage (wiped first for a secret buffer) and leaves an empty buffer. */
void aurora_buf_free(aurora_buf *b);

/* Hands the storage to the caller, who frees it with free(); leaves an empty buffer. Returns
 * NULL for a buffer that never allocated. */
char *aurora_buf_take(aurora_buf *b, size_t *len);

/* Appends the whole content of the file at path (bounded by b->max). Returns 0 or an aurora_err:
 * AURORA_E_NOT_FOUND, AURORA_E_DENIED, AURORA_E_IO, AURORA_E_TOO_LARGE. */
int aurora_read_file(const char *path, aurora_buf *b);

#endif

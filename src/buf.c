/*
 * buf.c: growable, bounded byte buffers (see buf.h). Plain libc; no Lua, no locks.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aurora/aurora.h"
#include "aurora/buf.h"

void aurora_buf_init(aurora_buf *b, size_t max)
{
    memset(b, 0, sizeof(*b));
    b->max = max;
}

static int grow(aurora_buf *b, size_t need)
{
    size_t cap;
    char *p;

    if (need > b->max || need == SIZE_MAX)
        return AURORA_E_TOO_LARGE;
    if (need + 1 <= b->cap)
        return 0;
    cap = b->cap ? b->cap : 256;
    while (cap < need + 1 && cap <= SIZE_MAX / 2)
        cap *= 2;
    if (cap < need + 1)
        cap = need + 1;
    if (b->max < SIZE_MAX && cap > b->max + 1)
        cap = b->max + 1;
    if (b->secret) {
        /* realloc could leave a copy of the secret behind: move it by hand. */
        p = malloc(cap);
        if (!p)
            return AURORA_E_NOMEM;
        if (b->data) {
            memcpy(p, b->data, b->len + 1);
            aurora_wipe(b->data, b->cap);
            free(b->data);
        }
    } else {
        p = realloc(b->data, cap);
        if (!p)
            return AURORA_E_NOMEM;
    }
    b->data = p;
    b->cap = cap;
    return 0;
}

int aurora_buf_append(aurora_buf *b, const void *p, size_t n)
{
    int rc;

    if (n > b->max - b->len)
        return AURORA_E_TOO_LARGE;
    rc = grow(b, b->len + n);
    if (rc)
        return rc;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int aurora_buf_puts(aurora_buf *b, const char *s)
{
    return aurora_buf_append(b, s, strlen(s));
}

int aurora_buf_printf(aurora_buf *b, const char *fmt, ...)
{
    va_list ap;
    int n, rc;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return AURORA_E_INVALID;
    if ((size_t)n > b->max - b->len)
        return AURORA_E_TOO_LARGE;
    rc = grow(b, b->len + (size_t)n);
    if (rc)
        return rc;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

void aurora_buf_reset(aurora_buf *b)
{
    if (b->data && b->secret)
        aurora_wipe(b->data, b->cap);
    if (b->data)
        b->data[0] = '\0';
    b->len = 0;
}

void aurora_buf_free(aurora_buf *b)
{
    if (b->data && b->secret)
        aurora_wipe(b->data, b->cap);
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

char *aurora_buf_take(aurora_buf *b, size_t *len)
{
    char *p = b->data;

    if (len)
        *len = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}

int aurora_read_file(const char *path, aurora_buf *b)
{
    char chunk[8192];
    size_t n;
    int rc = 0;
    FILE *f = fopen(path, "rb");

    if (!f)
        return errno == ENOENT ? AURORA_E_NOT_FOUND
               : errno == EACCES ? AURORA_E_DENIED
                                 : AURORA_E_IO;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        rc = aurora_buf_append(b, chunk, n);
        if (rc)
            break;
    }
    if (!rc && ferror(f))
        rc = AURORA_E_IO;
    aurora_wipe(chunk, sizeof(chunk));
    fclose(f);
    return rc;
}

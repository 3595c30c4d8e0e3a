/*
 * secret.c: the C side of secrets: allocation and wiping (see secret.h). No Lua here.
 */
#include <stdlib.h>
#include <string.h>

#include "aurora/aurora.h"
#include "aurora/secret.h"

aurora_secret *aurora_secret_new(const void *p, size_t n)
{
    aurora_secret *s = malloc(sizeof(*s));

    if (!s)
        return NULL;
    s->data = malloc(n + 1);
    if (!s->data) {
        free(s);
        return NULL;
    }
    if (n)
        memcpy(s->data, p, n);
    s->data[n] = '\0';
    s->len = n;
    return s;
}

void aurora_secret_free(aurora_secret **s)
{
    if (!s || !*s)
        return;
    if ((*s)->data) {
        aurora_wipe((*s)->data, (*s)->len + 1);
        free((*s)->data);
    }
    free(*s);
    *s = NULL;
}

/*
 * aurora.c: the error-code table and the small helpers declared in aurora.h.
 */
#include <openssl/crypto.h>

#include "aurora/aurora.h"

static const char *const words[] = {
#define AURORA_WORD_ITEM(name, word) word,
    AURORA_ERROR_TABLE(AURORA_WORD_ITEM)
#undef AURORA_WORD_ITEM
};

const char *aurora_err_word(aurora_err err)
{
    if ((unsigned)err >= AURORA_COUNT(words))
        return "internal";
    return words[err];
}

void aurora_wipe(void *p, size_t n)
{
    if (p && n)
        OPENSSL_cleanse(p, n);
}

int aurora_ct_equal(const void *a, const void *b, size_t n)
{
    return CRYPTO_memcmp(a, b, n) == 0;
}

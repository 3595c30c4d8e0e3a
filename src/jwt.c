/*
 * jwt.c: the JWT core (see jwt.h): splitting compact JWS tokens, base64url segments, signature
 * checks and signing through crypto.c, and the exp/nbf rules. It never parses JSON (the binding
 * does, with aurora.json) and never accepts the "none" algorithm. No Lua, no global state.
 */
#include <string.h>

#include "aurora/aurora.h"
#include "aurora/buf.h"
#include "aurora/crypto.h"
#include "aurora/jwt.h"

/* 1 when the n bytes at s are all base64url characters (no padding). */
static int b64url_chars(const char *s, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return 0;
    }
    return 1;
}

int aurora_jwt_split(const char *token, size_t n, aurora_jwt_parts *out)
{
    const char *end = token + n, *dot1, *dot2;
    aurora_jwt_parts p;

    if (n > AURORA_JWT_MAX)
        return AURORA_E_TOO_LARGE;
    dot1 = memchr(token, '.', n);
    if (!dot1)
        return AURORA_E_INVALID;
    dot2 = memchr(dot1 + 1, '.', (size_t)(end - dot1 - 1));
    if (!dot2 || memchr(dot2 + 1, '.', (size_t)(end - dot2 - 1)))
        return AURORA_E_INVALID;
    p.header = token;
    p.header_len = (size_t)(dot1 - token);
    p.payload = dot1 + 1;
    p.payload_len = (size_t)(dot2 - dot1 - 1);
    p.sig = dot2 + 1;
    p.sig_len = (size_t)(end - dot2 - 1);
    p.signed_len = (size_t)(dot2 - token);
    if (!p.header_len || !p.payload_len || !b64url_chars(p.header, p.header_len) ||
        !b64url_chars(p.payload, p.payload_len) || !b64url_chars(p.sig, p.sig_len))
        return AURORA_E_INVALID;
    *out = p;
    return 0;
}

int aurora_jwt_decode_segment(const char *seg, size_t n, aurora_buf *out)
{
    return aurora_crypto_b64_decode_buf(seg, n, AURORA_B64_URL, out);
}

int aurora_jwt_verify_sig(const char *token, size_t n, EVP_PKEY *key, const char *alg)
{
    aurora_crypto_alg a = aurora_crypto_alg_parse(alg);
    aurora_jwt_parts p;
    aurora_buf sig;
    int rc;

    aurora_buf_init(&sig, AURORA_JWT_MAX);
    rc = aurora_jwt_split(token, n, &p);
    if (rc)
        goto out;
    /* "none", HS256 (a public key used as an HMAC secret) and anything else unknown end here. */
    rc = AURORA_E_INVALID;
    if (a == AURORA_ALG_UNKNOWN || !aurora_crypto_key_fits(key, a))
        goto out;
    rc = aurora_jwt_decode_segment(p.sig, p.sig_len, &sig);
    if (rc)
        goto out;
    rc = aurora_crypto_verify(key, a, token, p.signed_len, (const unsigned char *)sig.data,
                              sig.len);
out:
    aurora_buf_free(&sig);
    return rc;
}

int aurora_jwt_sign(const char *header, size_t hn, const char *claims, size_t cn, EVP_PKEY *key,
                    aurora_crypto_alg alg, aurora_buf *out)
{
    aurora_buf tok, sig;
    int rc;

    aurora_buf_init(&tok, out->max - out->len < AURORA_JWT_MAX ? out->max - out->len
                                                                : AURORA_JWT_MAX);
    tok.secret = 1;
    aurora_buf_init(&sig, AURORA_JWT_MAX);
    if (!aurora_crypto_key_fits(key, alg) || !aurora_crypto_key_is_private(key)) {
        rc = AURORA_E_INVALID;
        goto out;
    }
    rc = aurora_crypto_b64_encode_buf(header, hn, AURORA_B64_URL, &tok);
    if (!rc)
        rc = aurora_buf_append(&tok, ".", 1);
    if (!rc)
        rc = aurora_crypto_b64_encode_buf(claims, cn, AURORA_B64_URL, &tok);
    if (!rc)
        rc = aurora_crypto_sign(key, alg, tok.data, tok.len, &sig);
    if (!rc)
        rc = aurora_buf_append(&tok, ".", 1);
    if (!rc)
        rc = aurora_crypto_b64_encode_buf(sig.data, sig.len, AURORA_B64_URL, &tok);
    if (!rc)
        rc = aurora_buf_append(out, tok.data, tok.len);
out:
    aurora_buf_free(&sig);
    aurora_buf_free(&tok);
    return rc;
}

int aurora_jwt_check_times(double now, double leeway, int has_exp, double exp, int has_nbf,
                           double nbf)
{
    if (has_exp && !(now < exp + leeway))
        return AURORA_E_EXPIRED;
    if (has_nbf && !(now + leeway >= nbf))
        return AURORA_E_INVALID;
    return 0;
}

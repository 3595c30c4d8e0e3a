/*
 * jwt.h: JSON Web Tokens in compact JWS form (RFC 7515/7519): splitting a token, decoding its
 * segments, checking its signature with an aurora crypto key, signing, and the time checks.
 * No Lua and no JSON here: aurora.jwt (jwt_lua.c) parses the header and claims with aurora.json
 * and applies the claim rules (audience, issuer) on top of these functions.
 */
#ifndef AURORA_JWT_H
#define AURORA_JWT_H

#include <stddef.h>

#include <openssl/evp.h>

#include "aurora/buf.h"
#include "aurora/crypto.h"

#define AURORA_JWT_MAX (16 * 1024) /* longest token accepted or produced */

/* The three segments of a token, pointing into it (not NUL-terminated). */
typedef struct aurora_jwt_parts {
    const char *header;
    size_t header_len;
    const char *payload;
    size_t payload_len;
    const char *sig;
    size_t sig_len;
    size_t signed_len; /* length of "header.payload", the signing input at the token's start */
} aurora_jwt_parts;

/*
 * Splits a compact token of n bytes: exactly three segments separated by dots, the first two
 * non-empty, all made of base64url characters without padding. Fills *out (pointers into token).
 * Returns 0, AURORA_E_TOO_LARGE (n > AURORA_JWT_MAX) or AURORA_E_INVALID.
 */
int aurora_jwt_split(const char *token, size_t n, aurora_jwt_parts *out);

/* Appends the base64url decoding of a segment of n bytes to out. Returns 0, AURORA_E_INVALID or
 * the error of aurora_buf_append. */
int aurora_jwt_decode_segment(const char *seg, size_t n, aurora_buf *out);

/*
 * Checks the signature of a token of n bytes with key, for the algorithm alg taken from its
 * header. Returns 0 when it verifies; AURORA_E_INVALID for a malformed token, an alg that is
 * "none", unknown or does not fit the key; AURORA_E_TOO_LARGE; AURORA_E_CRYPTO when the
 * signature does not verify; AURORA_E_INTERNAL.
 */
int aurora_jwt_verify_sig(const char *token, size_t n, EVP_PKEY *key, const char *alg);

/*
 * Appends base64url(header) "." base64url(claims) "." base64url(signature) to out, signing with
 * the private key for alg. header and claims are the JSON texts (hn and cn bytes). Returns 0,
 * AURORA_E_INVALID (alg does not fit key, or key is public only), AURORA_E_TOO_LARGE (the token
 * would exceed AURORA_JWT_MAX or out->max), AURORA_E_NOMEM or AURORA_E_INTERNAL; out is unchanged
 * on failure. Tokens are credentials: pass a buffer with the secret flag set.
 */
int aurora_jwt_sign(const char *header, size_t hn, const char *claims, size_t cn, EVP_PKEY *key,
                    aurora_crypto_alg alg, aurora_buf *out);

/*
 * The time rules of RFC 7519 with leeway seconds of tolerance, at now (Unix seconds). exp and
 * nbf count only when has_exp / has_nbf are set. Returns 0, AURORA_E_EXPIRED (now >= exp +
 * leeway) or AURORA_E_INVALID (now + leeway < nbf, not valid yet).
 */
int aurora_jwt_check_times(double now, double leeway, int has_exp, double exp, int has_nbf,
                           double nbf);

#endif

/*
 * test_jwt.c: unit tests of the JWT core (src/jwt.c) without Lua: splitting, signing and
 * verifying RS256/ES256 tokens, a wrong signature, alg none, size limits and the exp/nbf rules.
 * Keys are generated at run time.
 */
#include <string.h>

#include "aurora/aurora.h"
#include "aurora/buf.h"
#include "aurora/crypto.h"
#include "aurora/jwt.h"
#include "check.h"

static const char header_rs[] = "{\"alg\":\"RS256\",\"typ\":\"JWT\"}";
static const char header_es[] = "{\"alg\":\"ES256\",\"typ\":\"JWT\"}";
static const char claims[] = "{\"sub\":\"aurora\",\"exp\":2000000000}";

/* Signs claims with a fresh key of type; returns 1 on success. The caller frees *k and *tok. */
static int make_token(const char *type, const char *header, EVP_PKEY **k, aurora_buf *tok)
{
    aurora_buf_init(tok, AURORA_JWT_MAX);
    tok->secret = 1;
    if (aurora_crypto_key_generate(type, 2048, k))
        return 0;
    return aurora_jwt_sign(header, strlen(header), claims, strlen(claims), *k,
                           aurora_crypto_key_default_alg(*k), tok) == 0;
}

TEST(split_finds_three_segments)
{
    aurora_jwt_parts p;
    const char *t = "aGVhZA.Ym9keQ.c2ln";

    CHECK_EQ_INT(aurora_jwt_split(t, strlen(t), &p), 0);
    CHECK_EQ_INT(p.header_len, 6);
    CHECK_EQ_INT(p.payload_len, 6);
    CHECK_EQ_INT(p.sig_len, 4);
    CHECK_EQ_INT(p.signed_len, 13);
    CHECK(strncmp(p.sig, "c2ln", 4) == 0);
}

TEST(split_rejects_malformed_tokens)
{
    static const char *const bad[] = {
        "", "a", "a.b", "a.b.c.d", ".b.c", "a..c", "a.b=.c", "a.b.c=", "a b.c.d", "a.b.c\n",
    };
    aurora_jwt_parts p;
    size_t i;

    for (i = 0; i < AURORA_COUNT(bad); i++)
        CHECK_EQ_INT(aurora_jwt_split(bad[i], strlen(bad[i]), &p), AURORA_E_INVALID);
}

TEST(split_refuses_tokens_over_16_kib)
{
    static char big[AURORA_JWT_MAX + 2];
    aurora_jwt_parts p;

    memset(big, 'a', sizeof(big) - 1);
    big[10] = '.';
    big[20] = '.';
    CHECK_EQ_INT(aurora_jwt_split(big, AURORA_JWT_MAX + 1, &p), AURORA_E_TOO_LARGE);
    CHECK_EQ_INT(aurora_jwt_split(big, AURORA_JWT_MAX, &p), 0);
}

TEST(decode_segment_reads_base64url)
{
    aurora_buf b;

    aurora_buf_init(&b, 1024);
    CHECK_EQ_INT(aurora_jwt_decode_segment("eyJhIjoxfQ", 10, &b), 0);
    CHECK_EQ_STR(b.data, "{\"a\":1}");
    CHECK_EQ_INT(aurora_jwt_decode_segment("eyJhIjoxfQ+", 11, &b), AURORA_E_INVALID);
    aurora_buf_free(&b);
}

TEST(rs256_tokens_sign_and_verify)
{
    EVP_PKEY *k = NULL;
    aurora_buf tok;
    int ok = make_token("rsa", header_rs, &k, &tok);

    if (ok)
        ok = aurora_jwt_verify_sig(tok.data, tok.len, k, "RS256") == 0;
    aurora_crypto_key_free(&k);
    aurora_buf_free(&tok);
    CHECK(ok);
}

TEST(es256_tokens_sign_and_verify)
{
    EVP_PKEY *k = NULL;
    aurora_buf tok;
    int ok = make_token("ec", header_es, &k, &tok);

    if (ok)
        ok = aurora_jwt_verify_sig(tok.data, tok.len, k, "ES256") == 0;
    /* The signature segment of ES256 is 64 bytes: 86 base64url characters. */
    if (ok)
        ok = strlen(strrchr(tok.data, '.') + 1) == 86;
    aurora_crypto_key_free(&k);
    aurora_buf_free(&tok);
    CHECK(ok);
}

TEST(a_wrong_signature_fails_with_crypto)
{
    EVP_PKEY *k = NULL, *other = NULL;
    aurora_buf tok;
    int ok = make_token("ec", header_es, &k, &tok);
    char *last;

    if (ok)
        ok = aurora_crypto_key_generate("ec", 0, &other) == 0;
    /* Signed by another key. */
    if (ok)
        ok = aurora_jwt_verify_sig(tok.data, tok.len, other, "ES256") == AURORA_E_CRYPTO;
    /* A changed claim. */
    if (ok) {
        tok.data[strchr(tok.data, '.') - tok.data + 3] ^= 1;
        ok = aurora_jwt_verify_sig(tok.data, tok.len, k, "ES256") == AURORA_E_CRYPTO;
        tok.data[strchr(tok.data, '.') - tok.data + 3] ^= 1;
    }
    /* A truncated signature (four characters, which always decode). */
    if (ok) {
        last = strrchr(tok.data, '.');
        ok = aurora_jwt_verify_sig(tok.data, (size_t)(last - tok.data) + 5, k, "ES256") ==
             AURORA_E_CRYPTO;
    }
    if (ok)
        ok = aurora_jwt_verify_sig(tok.data, tok.len, k, "ES256") == 0;
    aurora_crypto_key_free(&k);
    aurora_crypto_key_free(&other);
    aurora_buf_free(&tok);
    CHECK(ok);
}

TEST(alg_none_and_unknown_algs_are_never_accepted)
{
    /* {"alg":"none"}.{"sub":"x"}. */
    const char *none = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.";
    EVP_PKEY *k = NULL;
    int ok = aurora_crypto_key_generate("ec", 0, &k) == 0;

    if (ok)
        ok = aurora_jwt_verify_sig(none, strlen(none), k, "none") == AURORA_E_INVALID &&
             aurora_jwt_verify_sig(none, strlen(none), k, "HS256") == AURORA_E_INVALID &&
             aurora_jwt_verify_sig(none, strlen(none), k, NULL) == AURORA_E_INVALID &&
             aurora_jwt_verify_sig(none, strlen(none), k, "ES256") == AURORA_E_CRYPTO;
    aurora_crypto_key_free(&k);
    CHECK(ok);
}

TEST(an_alg_that_does_not_fit_the_key_is_invalid)
{
    EVP_PKEY *k = NULL;
    aurora_buf tok;
    int ok = make_token("rsa", header_rs, &k, &tok);

    if (ok)
        ok = aurora_jwt_verify_sig(tok.data, tok.len, k, "ES256") == AURORA_E_INVALID;
    aurora_crypto_key_free(&k);
    aurora_buf_free(&tok);
    CHECK(ok);
}

TEST(sign_refuses_public_keys_and_tokens_over_the_limit)
{
    static char huge[AURORA_JWT_MAX];
    EVP_PKEY *k = NULL, *pub = NULL;
    aurora_buf pem, tok;
    int ok;

    memset(huge, 'x', sizeof(huge));
    aurora_buf_init(&pem, 65536);
    aurora_buf_init(&tok, AURORA_JWT_MAX);
    ok = aurora_crypto_key_generate("ec", 0, &k) == 0 &&
         aurora_crypto_key_public_pem(k, &pem) == 0 &&
         aurora_crypto_key_load(pem.data, pem.len, NULL, 0, &pub) == 0;
    if (ok)
        ok = aurora_jwt_sign(header_es, strlen(header_es), claims, strlen(claims), pub,
                             AURORA_ALG_ES256, &tok) == AURORA_E_INVALID;
    if (ok)
        ok = aurora_jwt_sign(header_es, strlen(header_es), huge, sizeof(huge), k,
                             AURORA_ALG_ES256, &tok) == AURORA_E_TOO_LARGE;
    if (ok)
        ok = tok.len == 0;
    aurora_crypto_key_free(&k);
    aurora_crypto_key_free(&pub);
    aurora_buf_free(&pem);
    aurora_buf_free(&tok);
    CHECK(ok);
}

TEST(exp_and_nbf_follow_rfc_7519_with_leeway)
{
    CHECK_EQ_INT(aurora_jwt_check_times(1000, 0, 1, 1001, 0, 0), 0);
    CHECK_EQ_INT(aurora_jwt_check_times(1000, 0, 1, 1000, 0, 0), AURORA_E_EXPIRED);
    CHECK_EQ_INT(aurora_jwt_check_times(1000, 60, 1, 950, 0, 0), 0);
    CHECK_EQ_INT(aurora_jwt_check_times(1000, 60, 1, 940, 0, 0), AURORA_E_EXPIRED);
    CHECK_EQ_INT(aurora_jwt_check_times(1000, 0, 0, 0, 1, 1000), 0);
    CHECK_EQ_INT(aurora_jwt_check_times(1000, 0, 0, 0, 1, 1001), AURORA_E_INVALID);
    CHECK_EQ_INT(aurora_jwt_check_times(1000, 60, 0, 0, 1, 1060), 0);
    CHECK_EQ_INT(aurora_jwt_check_times(1000, 0, 0, 0, 0, 0), 0);
}

int main(void)
{
    RUN(split_finds_three_segments);
    RUN(split_rejects_malformed_tokens);
    RUN(split_refuses_tokens_over_16_kib);
    RUN(decode_segment_reads_base64url);
    RUN(rs256_tokens_sign_and_verify);
    RUN(es256_tokens_sign_and_verify);
    RUN(a_wrong_signature_fails_with_crypto);
    RUN(alg_none_and_unknown_algs_are_never_accepted);
    RUN(an_alg_that_does_not_fit_the_key_is_invalid);
    RUN(sign_refuses_public_keys_and_tokens_over_the_limit);
    RUN(exp_and_nbf_follow_rfc_7519_with_leeway);
    return check_summary();
}

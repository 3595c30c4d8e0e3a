/*
 * test_crypto.c: unit tests of the crypto core (src/crypto.c) without Lua: known-answer vectors
 * for digests, HMAC and base64, AES-GCM round trips and tampering, RSA/EC signatures, and issuing
 * a small CA hierarchy. Keys are generated at run time.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/pem.h>

#include "aurora/aurora.h"
#include "aurora/buf.h"
#include "aurora/crypto.h"
#include "aurora/secret.h"
#include "check.h"

/* Hex of n bytes, in a static buffer (tests only). */
static const char *hex(const void *p, size_t n)
{
    static char out[1024];

    aurora_crypto_hex(p, n, out);
    return out;
}

TEST(sha256_of_abc_matches_fips_180_2)
{
    unsigned char md[AURORA_CRYPTO_SHA256_LEN];

    CHECK_EQ_INT(aurora_crypto_sha256("abc", 3, md), 0);
    CHECK_EQ_STR(hex(md, sizeof(md)),
                 "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(sha1_of_abc_matches_fips_180_2)
{
    unsigned char md[AURORA_CRYPTO_SHA1_LEN];

    CHECK_EQ_INT(aurora_crypto_sha1("abc", 3, md), 0);
    CHECK_EQ_STR(hex(md, sizeof(md)), "a9993e364706816aba3e25717850c26c9cd0d89d");
}

TEST(hmac_sha256_matches_rfc_4231_case_2)
{
    const char *data = "what do ya want for nothing?";
    unsigned char mac[AURORA_CRYPTO_SHA256_LEN];

    CHECK_EQ_INT(aurora_crypto_hmac_sha256("Jefe", 4, data, strlen(data), mac), 0);
    CHECK_EQ_STR(hex(mac, sizeof(mac)),
                 "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(hmac_sha256_accepts_an_empty_key)
{
    unsigned char mac[AURORA_CRYPTO_SHA256_LEN];

    CHECK_EQ_INT(aurora_crypto_hmac_sha256("", 0, "", 0, mac), 0);
    CHECK_EQ_STR(hex(mac, sizeof(mac)),
                 "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
}

TEST(base64_matches_rfc_4648_vectors)
{
    static const char *const v[][2] = {
        {"", ""},         {"f", "Zg=="},         {"fo", "Zm8="},        {"foo", "Zm9v"},
        {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"},
    };
    char enc[64];
    unsigned char dec[64];
    size_t i, n;

    for (i = 0; i < AURORA_COUNT(v); i++) {
        size_t len = strlen(v[i][0]);

        CHECK_EQ_INT(aurora_crypto_b64_encoded_len(len, AURORA_B64_STD), strlen(v[i][1]));
        aurora_crypto_b64_encode(v[i][0], len, AURORA_B64_STD, enc);
        CHECK_EQ_STR(enc, v[i][1]);
        CHECK_EQ_INT(aurora_crypto_b64_decode(enc, strlen(enc), AURORA_B64_STD, dec, &n), 0);
        CHECK_EQ_INT(n, len);
        CHECK(memcmp(dec, v[i][0], n) == 0);
    }
}

TEST(base64url_uses_its_alphabet_and_no_padding)
{
    const unsigned char bytes[] = {0xfb, 0xff};
    unsigned char dec[8];
    char enc[8];
    size_t n;

    aurora_crypto_b64_encode(bytes, 2, AURORA_B64_STD, enc);
    CHECK_EQ_STR(enc, "+/8=");
    aurora_crypto_b64_encode(bytes, 2, AURORA_B64_URL, enc);
    CHECK_EQ_STR(enc, "-_8");
    CHECK_EQ_INT(aurora_crypto_b64_decode("-_8", 3, AURORA_B64_URL, dec, &n), 0);
    CHECK_EQ_INT(n, 2);
    CHECK(memcmp(dec, bytes, 2) == 0);
    CHECK_EQ_INT(aurora_crypto_b64_decode("-_8=", 4, AURORA_B64_URL, dec, &n), 0);
    CHECK_EQ_INT(n, 2);
    aurora_crypto_b64_encode("f", 1, AURORA_B64_URL, enc);
    CHECK_EQ_STR(enc, "Zg");
}

TEST(base64_decode_is_strict)
{
    static const char *const bad_std[] = {
        "Zg=", "Zg", "Zh==", "Zm9", "Zm9v\n", " Zm9v", "Z===", "Zg==Zg==", "-_8=", "Zm9v*",
        "=Zm9", "Zm8==",
    };
    static const char *const bad_url[] = {"+/8", "Zh", "Z", "Zg=", "Zm9vY", "Zg===", "Zg.="};
    unsigned char dec[64];
    size_t i, n;

    for (i = 0; i < AURORA_COUNT(bad_std); i++)
        CHECK_EQ_INT(aurora_crypto_b64_decode(bad_std[i], strlen(bad_std[i]), AURORA_B64_STD,
                                              dec, &n),
                     AURORA_E_INVALID);
    for (i = 0; i < AURORA_COUNT(bad_url); i++)
        CHECK_EQ_INT(aurora_crypto_b64_decode(bad_url[i], strlen(bad_url[i]), AURORA_B64_URL,
                                              dec, &n),
                     AURORA_E_INVALID);
}

TEST(base64_round_trips_every_length_and_byte)
{
    unsigned char raw[300], dec[420];
    char enc[420];
    size_t len, n;
    int url;

    for (len = 0; len < sizeof(raw); len++)
        raw[len] = (unsigned char)(len * 7 + 3);
    for (url = 0; url <= 1; url++) {
        for (len = 0; len < sizeof(raw); len++) {
            aurora_crypto_b64_encode(raw, len, url, enc);
            CHECK_EQ_INT(strlen(enc), aurora_crypto_b64_encoded_len(len, url));
            CHECK_EQ_INT(aurora_crypto_b64_decode(enc, strlen(enc), url, dec, &n), 0);
            CHECK_EQ_INT(n, len);
            CHECK(memcmp(dec, raw, len) == 0);
        }
    }
}

TEST(base64_buffer_variants_respect_the_maximum)
{
    aurora_buf b;

    aurora_buf_init(&b, 4);
    CHECK_EQ_INT(aurora_crypto_b64_encode_buf("foo", 3, AURORA_B64_STD, &b), 0);
    CHECK_EQ_STR(b.data, "Zm9v");
    CHECK_EQ_INT(aurora_crypto_b64_encode_buf("f", 1, AURORA_B64_STD, &b), AURORA_E_TOO_LARGE);
    CHECK_EQ_INT(b.len, 4);
    aurora_buf_reset(&b);
    CHECK_EQ_INT(aurora_crypto_b64_decode_buf("Zm9vYg", 6, AURORA_B64_URL, &b), 0);
    CHECK_EQ_STR(b.data, "foob");
    CHECK_EQ_INT(aurora_crypto_b64_decode_buf("Zh", 2, AURORA_B64_URL, &b), AURORA_E_INVALID);
    aurora_buf_free(&b);
}

TEST(equals_compares_length_and_bytes)
{
    CHECK(aurora_crypto_equals("abc", 3, "abc", 3));
    CHECK(!aurora_crypto_equals("abc", 3, "abd", 3));
    CHECK(!aurora_crypto_equals("abc", 3, "abcd", 4));
    CHECK(aurora_crypto_equals("", 0, "", 0));
}

TEST(random_fills_distinct_buffers)
{
    unsigned char a[32], b[32];

    CHECK_EQ_INT(aurora_crypto_random(a, sizeof(a)), 0);
    CHECK_EQ_INT(aurora_crypto_random(b, sizeof(b)), 0);
    CHECK(memcmp(a, b, sizeof(a)) != 0);
}

TEST(seal_and_open_round_trip_with_associated_data)
{
    unsigned char key[32], box[64 + AURORA_CRYPTO_SEAL_OVERHEAD], pt[64];
    const char *msg = "attack at dawn";
    size_t n = strlen(msg), len = 0;

    CHECK_EQ_INT(aurora_crypto_random(key, sizeof(key)), 0);
    CHECK_EQ_INT(aurora_crypto_seal(key, msg, n, "aad", 3, box), 0);
    CHECK_EQ_INT(aurora_crypto_open(key, box, n + AURORA_CRYPTO_SEAL_OVERHEAD, "aad", 3, pt, &len),
                 0);
    CHECK_EQ_INT(len, n);
    CHECK(memcmp(pt, msg, n) == 0);
    CHECK_EQ_INT(aurora_crypto_seal(key, "", 0, NULL, 0, box), 0);
    CHECK_EQ_INT(aurora_crypto_open(key, box, AURORA_CRYPTO_SEAL_OVERHEAD, NULL, 0, pt, &len), 0);
    CHECK_EQ_INT(len, 0);
}

TEST(open_detects_tampering_wrong_aad_and_wrong_key)
{
    unsigned char key[32], other[32], box[16 + AURORA_CRYPTO_SEAL_OVERHEAD], pt[16];
    size_t n = 16 + AURORA_CRYPTO_SEAL_OVERHEAD, i, len;

    CHECK_EQ_INT(aurora_crypto_random(key, sizeof(key)), 0);
    memcpy(other, key, sizeof(key));
    other[0] ^= 1;
    CHECK_EQ_INT(aurora_crypto_seal(key, "0123456789abcdef", 16, "aad", 3, box), 0);
    for (i = 0; i < n; i++) {
        box[i] ^= 0x80;
        CHECK_EQ_INT(aurora_crypto_open(key, box, n, "aad", 3, pt, &len), AURORA_E_CRYPTO);
        box[i] ^= 0x80;
    }
    CHECK_EQ_INT(aurora_crypto_open(key, box, n, "aae", 3, pt, &len), AURORA_E_CRYPTO);
    CHECK_EQ_INT(aurora_crypto_open(key, box, n, NULL, 0, pt, &len), AURORA_E_CRYPTO);
    CHECK_EQ_INT(aurora_crypto_open(other, box, n, "aad", 3, pt, &len), AURORA_E_CRYPTO);
    CHECK_EQ_INT(aurora_crypto_open(key, box, AURORA_CRYPTO_SEAL_OVERHEAD - 1, "aad", 3, pt, &len),
                 AURORA_E_INVALID);
    CHECK_EQ_INT(aurora_crypto_open(key, box, n, "aad", 3, pt, &len), 0);
}

/* Signs, verifies, and checks that a flipped bit or the wrong algorithm fails. */
static int sign_verify(EVP_PKEY *k, aurora_crypto_alg alg, size_t want_len)
{
    aurora_buf sig;
    int ok = 0;

    aurora_buf_init(&sig, 4096);
    if (aurora_crypto_sign(k, alg, "payload", 7, &sig))
        goto out;
    if (want_len && sig.len != want_len)
        goto out;
    if (aurora_crypto_verify(k, alg, "payload", 7, (unsigned char *)sig.data, sig.len))
        goto out;
    if (aurora_crypto_verify(k, alg, "payloaD", 7, (unsigned char *)sig.data, sig.len) !=
        AURORA_E_CRYPTO)
        goto out;
    sig.data[sig.len - 1] ^= 1;
    if (aurora_crypto_verify(k, alg, "payload", 7, (unsigned char *)sig.data, sig.len) !=
        AURORA_E_CRYPTO)
        goto out;
    if (aurora_crypto_verify(k, alg, "payload", 7, (unsigned char *)sig.data, sig.len - 1) !=
        AURORA_E_CRYPTO)
        goto out;
    ok = 1;
out:
    aurora_buf_free(&sig);
    return ok;
}

TEST(rsa_keys_sign_and_verify_rs256_and_ps256)
{
    EVP_PKEY *k = NULL;
    aurora_buf sig;
    int rc1, rc2;

    CHECK_EQ_INT(aurora_crypto_key_generate("rsa", 2048, &k), 0);
    CHECK_EQ_STR(aurora_crypto_key_type(k), "rsa");
    CHECK(aurora_crypto_key_is_private(k));
    CHECK_EQ_INT(aurora_crypto_key_default_alg(k), AURORA_ALG_RS256);
    if (!sign_verify(k, AURORA_ALG_RS256, 256) || !sign_verify(k, AURORA_ALG_PS256, 256)) {
        aurora_crypto_key_free(&k);
        CHECK(!"rsa sign/verify");
    }
    aurora_buf_init(&sig, 4096);
    rc1 = aurora_crypto_sign(k, AURORA_ALG_ES256, "x", 1, &sig);
    rc2 = aurora_crypto_verify(k, AURORA_ALG_ES256, "x", 1, (const unsigned char *)"", 0);
    aurora_buf_free(&sig);
    aurora_crypto_key_free(&k);
    CHECK_EQ_INT(rc1, AURORA_E_INVALID);
    CHECK_EQ_INT(rc2, AURORA_E_INVALID);
    aurora_crypto_key_free(&k);
    CHECK(k == NULL);
}

TEST(ec_keys_sign_and_verify_es256_as_64_raw_bytes)
{
    EVP_PKEY *k = NULL;
    int i, ok = 1;

    CHECK_EQ_INT(aurora_crypto_key_generate("ec", 0, &k), 0);
    CHECK_EQ_STR(aurora_crypto_key_type(k), "ec");
    CHECK_EQ_INT(aurora_crypto_key_default_alg(k), AURORA_ALG_ES256);
    /* Several signatures: r or s with a leading zero byte must still give 64 bytes. */
    for (i = 0; i < 20 && ok; i++)
        ok = sign_verify(k, AURORA_ALG_ES256, 64);
    aurora_crypto_key_free(&k);
    CHECK(ok);
}

TEST(generate_refuses_small_rsa_and_unknown_types)
{
    EVP_PKEY *k = NULL;

    CHECK_EQ_INT(aurora_crypto_key_generate("rsa", 1024, &k), AURORA_E_INVALID);
    CHECK_EQ_INT(aurora_crypto_key_generate("dsa", 2048, &k), AURORA_E_INVALID);
    CHECK(k == NULL);
}

TEST(keys_round_trip_through_pem_and_public_keys_verify_only)
{
    EVP_PKEY *k = NULL, *priv = NULL, *pub = NULL;
    aurora_secret *pem = NULL;
    aurora_buf pub_pem, sig;
    int ok = 0;

    aurora_buf_init(&pub_pem, 65536);
    aurora_buf_init(&sig, 4096);
    if (aurora_crypto_key_generate("ec", 0, &k) || aurora_crypto_key_private_pem(k, &pem) ||
        aurora_crypto_key_public_pem(k, &pub_pem))
        goto out;
    if (!strstr((char *)pem->data, "BEGIN PRIVATE KEY") ||
        !strstr(pub_pem.data, "BEGIN PUBLIC KEY"))
        goto out;
    if (aurora_crypto_key_load(pem->data, pem->len, NULL, 0, &priv) ||
        aurora_crypto_key_load(pub_pem.data, pub_pem.len, NULL, 0, &pub))
        goto out;
    if (!aurora_crypto_key_is_private(priv) || aurora_crypto_key_is_private(pub))
        goto out;
    if (aurora_crypto_sign(pub, AURORA_ALG_ES256, "x", 1, &sig) != AURORA_E_INVALID)
        goto out;
    if (aurora_crypto_sign(priv, AURORA_ALG_ES256, "x", 1, &sig) ||
        aurora_crypto_verify(pub, AURORA_ALG_ES256, "x", 1, (unsigned char *)sig.data, sig.len))
        goto out;
    ok = 1;
out:
    aurora_crypto_key_free(&k);
    aurora_crypto_key_free(&priv);
    aurora_crypto_key_free(&pub);
    aurora_secret_free(&pem);
    aurora_buf_free(&pub_pem);
    aurora_buf_free(&sig);
    CHECK(ok);
}

TEST(load_key_reads_encrypted_keys_only_with_the_password)
{
    EVP_PKEY *k = NULL, *back = NULL;
    BIO *bio = BIO_new(BIO_s_mem());
    char *pem = NULL;
    long n = 0;
    int ok = bio && aurora_crypto_key_generate("ec", 0, &k) == 0 &&
             PEM_write_bio_PKCS8PrivateKey(bio, k, EVP_aes_256_cbc(), "pw", 2, NULL, NULL) == 1;

    if (ok)
        n = BIO_get_mem_data(bio, &pem);
    ok = ok && n > 0 && strstr(pem, "ENCRYPTED") != NULL;
    ok = ok && aurora_crypto_key_load(pem, (size_t)n, NULL, 0, &back) == AURORA_E_INVALID;
    ok = ok && aurora_crypto_key_load(pem, (size_t)n, "wrong", 5, &back) == AURORA_E_INVALID;
    ok = ok && aurora_crypto_key_load(pem, (size_t)n, "pw", 2, &back) == 0;
    ok = ok && aurora_crypto_key_is_private(back);
    aurora_crypto_key_free(&k);
    aurora_crypto_key_free(&back);
    BIO_free(bio);
    CHECK(ok);
}

TEST(load_key_rejects_garbage)
{
    static const char garbage[] = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
    EVP_PKEY *k = NULL;

    CHECK_EQ_INT(aurora_crypto_key_load("hello", 5, NULL, 0, &k), AURORA_E_INVALID);
    CHECK_EQ_INT(aurora_crypto_key_load(garbage, strlen(garbage), NULL, 0, &k), AURORA_E_INVALID);
    CHECK_EQ_INT(aurora_crypto_key_load("", 0, NULL, 0, &k), AURORA_E_INVALID);
    CHECK(k == NULL);
}

TEST(jwk_of_an_ec_key_has_32_byte_coordinates)
{
    EVP_PKEY *k = NULL;
    aurora_buf x, y;
    int rc;

    aurora_buf_init(&x, 1024);
    aurora_buf_init(&y, 1024);
    CHECK_EQ_INT(aurora_crypto_key_generate("ec", 0, &k), 0);
    rc = aurora_crypto_key_jwk(k, &x, &y);
    aurora_crypto_key_free(&k);
    CHECK_EQ_INT(rc, 0);
    CHECK_EQ_INT(x.len, 43);
    CHECK_EQ_INT(y.len, 43);
    aurora_buf_free(&x);
    aurora_buf_free(&y);
}

TEST(jwk_of_an_rsa_key_has_the_modulus_and_exponent)
{
    EVP_PKEY *k = NULL;
    aurora_buf n, e;
    int rc;

    aurora_buf_init(&n, 4096);
    aurora_buf_init(&e, 64);
    CHECK_EQ_INT(aurora_crypto_key_generate("rsa", 2048, &k), 0);
    rc = aurora_crypto_key_jwk(k, &n, &e);
    aurora_crypto_key_free(&k);
    CHECK_EQ_INT(rc, 0);
    CHECK_EQ_INT(n.len, 342);
    CHECK_EQ_STR(e.data, "AQAB");
    aurora_buf_free(&n);
    aurora_buf_free(&e);
}

/* Issues a CA and a server leaf; the heavy fixture of the certificate tests. */
typedef struct pki {
    EVP_PKEY *ca_key, *leaf_key;
    X509 *ca, *leaf;
} pki;

static void pki_free(pki *p)
{
    aurora_crypto_key_free(&p->ca_key);
    aurora_crypto_key_free(&p->leaf_key);
    aurora_crypto_cert_free(&p->ca);
    aurora_crypto_cert_free(&p->leaf);
}

static int pki_make(pki *p)
{
    static const char *const ca_subject[] = {"O", "Aurora Test", "CN", "Aurora Test CA"};
    static const char *const leaf_subject[] = {"O", "Aurora", "O", "system:masters", "CN",
                                               "localhost"};
    static const char *const sans[] = {"127.0.0.1", "localhost", "::1"};
    aurora_cert_spec ca = {0}, leaf = {0};

    memset(p, 0, sizeof(*p));
    if (aurora_crypto_key_generate("ec", 0, &p->ca_key) ||
        aurora_crypto_key_generate("rsa", 2048, &p->leaf_key))
        return 0;
    ca.key = p->ca_key;
    ca.subject = ca_subject;
    ca.subject_n = 2;
    ca.days = 30;
    ca.usage = AURORA_CERT_CA;
    if (aurora_crypto_cert_issue(&ca, &p->ca))
        return 0;
    leaf.key = p->leaf_key;
    leaf.subject = leaf_subject;
    leaf.subject_n = 3;
    leaf.ca_cert = p->ca;
    leaf.ca_key = p->ca_key;
    leaf.days = 10;
    leaf.usage = AURORA_CERT_SERVER;
    leaf.sans = sans;
    leaf.san_n = 3;
    return aurora_crypto_cert_issue(&leaf, &p->leaf) == 0;
}

TEST(issued_certificates_chain_and_carry_their_names)
{
    pki p;
    aurora_buf b;
    size_t count = 0;
    int64_t nb = 0, na = 0;
    int ok = pki_make(&p);
    time_t now = time(NULL);

    aurora_buf_init(&b, 65536);
    if (!ok)
        goto out;
    ok = 0;
    if (!aurora_crypto_cert_signed_by(p.leaf, p.ca) || !aurora_crypto_cert_signed_by(p.ca, p.ca) ||
        aurora_crypto_cert_signed_by(p.ca, p.leaf))
        goto out;
    if (aurora_crypto_cert_sans(p.leaf, &b, &count) || count != 3 ||
        memcmp(b.data, "IP:127.0.0.1\0DNS:localhost\0IP:::1\0", b.len) != 0)
        goto out;
    aurora_buf_reset(&b);
    if (aurora_crypto_cert_name(p.leaf, 0, &b) ||
        strcmp(b.data, "CN=localhost,O=system:masters,O=Aurora") != 0)
        goto out;
    aurora_buf_reset(&b);
    if (aurora_crypto_cert_name(p.leaf, 1, &b) || strcmp(b.data, "CN=Aurora Test CA,O=Aurora Test"))
        goto out;
    aurora_buf_reset(&b);
    if (aurora_crypto_cert_common_name(p.leaf, &b) || strcmp(b.data, "localhost") != 0)
        goto out;
    aurora_buf_reset(&b);
    if (aurora_crypto_cert_serial(p.leaf, &b) || b.len != 32)
        goto out;
    if (aurora_crypto_cert_times(p.leaf, &nb, &na) || nb > now || nb < now - 120 ||
        na < now + 10 * 86400 - 120 || na > now + 10 * 86400)
        goto out;
    ok = 1;
out:
    aurora_buf_free(&b);
    pki_free(&p);
    CHECK(ok);
}

TEST(certificates_round_trip_through_pem_and_give_thumbprints)
{
    pki p;
    aurora_buf pem, der;
    unsigned char t1[32], t2[32], md[32];
    size_t n1 = 0, n2 = 0;
    X509 *back = NULL;
    EVP_PKEY *pub = NULL;
    int ok = pki_make(&p);

    aurora_buf_init(&pem, 65536);
    aurora_buf_init(&der, 65536);
    if (!ok)
        goto out;
    ok = 0;
    if (aurora_crypto_cert_pem(p.leaf, &pem) || aurora_crypto_cert_der(p.leaf, &der) ||
        aurora_crypto_cert_load(pem.data, pem.len, &back))
        goto out;
    if (aurora_crypto_cert_thumbprint(back, "sha1", t1, &n1) || n1 != 20 ||
        aurora_crypto_cert_thumbprint(back, "sha256", t2, &n2) || n2 != 32 ||
        aurora_crypto_cert_thumbprint(back, "md5", t2, &n2) != AURORA_E_INVALID)
        goto out;
    if (aurora_crypto_sha256(der.data, der.len, md) || memcmp(md, t2, 32) != 0)
        goto out;
    if (aurora_crypto_cert_public_key(back, &pub) || strcmp(aurora_crypto_key_type(pub), "rsa"))
        goto out;
    if (aurora_crypto_key_is_private(pub))
        goto out;
    /* A certificate issued in this process must not hand back the subject's private key. */
    aurora_crypto_key_free(&pub);
    if (aurora_crypto_cert_public_key(p.leaf, &pub) || aurora_crypto_key_is_private(pub))
        goto out;
    ok = 1;
out:
    aurora_crypto_cert_free(&back);
    aurora_crypto_key_free(&pub);
    aurora_buf_free(&pem);
    aurora_buf_free(&der);
    pki_free(&p);
    CHECK(ok);
}

TEST(issue_refuses_bad_names_and_a_mismatched_ca_key)
{
    static const char *const bad_subject[] = {"C", "Germany"};
    static const char *const subject[] = {"CN", "x"};
    static const char *const bad_san[] = {"local host"};
    aurora_cert_spec s = {0};
    EVP_PKEY *other = NULL;
    X509 *c = NULL;
    pki p;
    int ok = pki_make(&p);

    if (!ok || aurora_crypto_key_generate("ec", 0, &other))
        goto out;
    ok = 0;
    s.key = other;
    s.subject = bad_subject;
    s.subject_n = 1;
    s.days = 1;
    if (aurora_crypto_cert_issue(&s, &c) != AURORA_E_INVALID)
        goto out;
    s.subject = subject;
    s.sans = bad_san;
    s.san_n = 1;
    if (aurora_crypto_cert_issue(&s, &c) != AURORA_E_INVALID)
        goto out;
    s.san_n = 0;
    s.ca_cert = p.ca;
    s.ca_key = other;
    if (aurora_crypto_cert_issue(&s, &c) != AURORA_E_INVALID)
        goto out;
    s.ca_cert = p.leaf; /* not a CA */
    s.ca_key = p.leaf_key;
    if (aurora_crypto_cert_issue(&s, &c) != AURORA_E_INVALID)
        goto out;
    s.ca_cert = NULL;
    s.ca_key = NULL;
    s.days = 0;
    if (aurora_crypto_cert_issue(&s, &c) != AURORA_E_INVALID)
        goto out;
    ok = c == NULL;
out:
    aurora_crypto_key_free(&other);
    aurora_crypto_cert_free(&c);
    pki_free(&p);
    CHECK(ok);
}

TEST(issue_takes_explicit_dates_in_the_past_and_refuses_reversed_ones)
{
    static const char *const subject[] = {"CN", "expired"};
    aurora_cert_spec s = {0};
    X509 *c = NULL;
    int64_t now = (int64_t)time(NULL), nb = 0, na = 0;
    pki p;
    int ok = pki_make(&p);

    if (!ok)
        goto out;
    ok = 0;
    s.key = p.leaf_key;
    s.subject = subject;
    s.subject_n = 1;
    s.ca_cert = p.ca;
    s.ca_key = p.ca_key;
    s.usage = AURORA_CERT_CLIENT;
    s.not_before = now - 400 * 86400;
    s.not_after = now - 35 * 86400;
    /* days is ignored (0 here) when the dates are given. */
    if (aurora_crypto_cert_issue(&s, &c) || aurora_crypto_cert_times(c, &nb, &na))
        goto out;
    if (nb != s.not_before || na != s.not_after)
        goto out;
    aurora_crypto_cert_free(&c);
    s.not_before = s.not_after;
    if (aurora_crypto_cert_issue(&s, &c) != AURORA_E_INVALID)
        goto out;
    ok = c == NULL;
out:
    aurora_crypto_cert_free(&c);
    pki_free(&p);
    CHECK(ok);
}

int main(void)
{
    RUN(sha256_of_abc_matches_fips_180_2);
    RUN(sha1_of_abc_matches_fips_180_2);
    RUN(hmac_sha256_matches_rfc_4231_case_2);
    RUN(hmac_sha256_accepts_an_empty_key);
    RUN(base64_matches_rfc_4648_vectors);
    RUN(base64url_uses_its_alphabet_and_no_padding);
    RUN(base64_decode_is_strict);
    RUN(base64_round_trips_every_length_and_byte);
    RUN(base64_buffer_variants_respect_the_maximum);
    RUN(equals_compares_length_and_bytes);
    RUN(random_fills_distinct_buffers);
    RUN(seal_and_open_round_trip_with_associated_data);
    RUN(open_detects_tampering_wrong_aad_and_wrong_key);
    RUN(rsa_keys_sign_and_verify_rs256_and_ps256);
    RUN(ec_keys_sign_and_verify_es256_as_64_raw_bytes);
    RUN(generate_refuses_small_rsa_and_unknown_types);
    RUN(keys_round_trip_through_pem_and_public_keys_verify_only);
    RUN(load_key_reads_encrypted_keys_only_with_the_password);
    RUN(load_key_rejects_garbage);
    RUN(jwk_of_an_ec_key_has_32_byte_coordinates);
    RUN(jwk_of_an_rsa_key_has_the_modulus_and_exponent);
    RUN(issued_certificates_chain_and_carry_their_names);
    RUN(certificates_round_trip_through_pem_and_give_thumbprints);
    RUN(issue_refuses_bad_names_and_a_mismatched_ca_key);
    RUN(issue_takes_explicit_dates_in_the_past_and_refuses_reversed_ones);
    return check_summary();
}

/*
 * crypto.c: the cryptographic core (see crypto.h) on OpenSSL 3 non-deprecated APIs: EVP for
 * digests, MACs, ciphers and signatures, PEM/X509 for keys and certificates. Base64 is written
 * here because it must be strict on decode, which EVP_DecodeBlock is not. No Lua, no locks, no
 * global state: every function is safe to call from any thread. Nothing here logs, and no error
 * message built here contains key material.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "aurora/aurora.h"
#include "aurora/buf.h"
#include "aurora/crypto.h"
#include "aurora/secret.h"

#define EC_COORD_LEN 32 /* P-256 field element */

/* ---- bytes ------------------------------------------------------------------------------ */

int aurora_crypto_random(void *out, size_t n)
{
    unsigned char *p = out;

    /* RAND_bytes takes an int; large requests go in slices. */
    while (n > 0) {
        int chunk = n > INT_MAX ? INT_MAX : (int)n;

        if (RAND_bytes(p, chunk) != 1) {
            ERR_clear_error();
            return AURORA_E_INTERNAL;
        }
        p += chunk;
        n -= (size_t)chunk;
    }
    return 0;
}

static int digest(const char *md, const void *p, size_t n, unsigned char *out)
{
    unsigned char tmp[EVP_MAX_MD_SIZE];
    size_t len = 0;

    if (EVP_Q_digest(NULL, md, NULL, p, n, tmp, &len) != 1) {
        ERR_clear_error();
        return AURORA_E_INTERNAL;
    }
    memcpy(out, tmp, len);
    return 0;
}

int aurora_crypto_sha256(const void *p, size_t n, unsigned char out[AURORA_CRYPTO_SHA256_LEN])
{
    return digest("SHA256", p, n, out);
}

int aurora_crypto_sha1(const void *p, size_t n, unsigned char out[AURORA_CRYPTO_SHA1_LEN])
{
    return digest("SHA1", p, n, out);
}

int aurora_crypto_hmac_sha256(const void *key, size_t klen, const void *p, size_t n,
                              unsigned char out[AURORA_CRYPTO_SHA256_LEN])
{
    static const unsigned char empty[1];
    size_t len = 0;

    /* EVP_Q_mac refuses a NULL key, but an empty key is a valid HMAC key. */
    if (!EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, klen ? key : empty, klen, p, n, out,
                   AURORA_CRYPTO_SHA256_LEN, &len)) {
        ERR_clear_error();
        return AURORA_E_INTERNAL;
    }
    return 0;
}

void aurora_crypto_hex(const void *p, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    const unsigned char *s = p;
    size_t i;

    for (i = 0; i < n; i++) {
        out[2 * i] = digits[s[i] >> 4];
        out[2 * i + 1] = digits[s[i] & 15];
    }
    out[2 * n] = '\0';
}

int aurora_crypto_equals(const void *a, size_t an, const void *b, size_t bn)
{
    if (an != bn)
        return 0;
    return an == 0 || CRYPTO_memcmp(a, b, an) == 0;
}

/* ---- base64 ----------------------------------------------------------------------------- */

static const char b64_std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64_url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t aurora_crypto_b64_encoded_len(size_t n, int url)
{
    if (url)
        return n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0);
    return (n + 2) / 3 * 4;
}

void aurora_crypto_b64_encode(const void *p, size_t n, int url, char *out)
{
    const char *abc = url ? b64_url : b64_std;
    const unsigned char *s = p;
    size_t i, o = 0;

    for (i = 0; i + 2 < n; i += 3) {
        unsigned long v = (unsigned long)s[i] << 16 | (unsigned long)s[i + 1] << 8 | s[i + 2];

        out[o++] = abc[v >> 18 & 63];
        out[o++] = abc[v >> 12 & 63];
        out[o++] = abc[v >> 6 & 63];
        out[o++] = abc[v & 63];
    }
    if (n - i == 1) {
        out[o++] = abc[s[i] >> 2];
        out[o++] = abc[(s[i] & 3) << 4];
        if (!url) {
            out[o++] = '=';
            out[o++] = '=';
        }
    } else if (n - i == 2) {
        out[o++] = abc[s[i] >> 2];
        out[o++] = abc[(s[i] & 3) << 4 | s[i + 1] >> 4];
        out[o++] = abc[(s[i + 1] & 15) << 2];
        if (!url)
            out[o++] = '=';
    }
    out[o] = '\0';
}

int aurora_crypto_b64_encode_buf(const void *p, size_t n, int url, aurora_buf *out)
{
    size_t len = aurora_crypto_b64_encoded_len(n, url);
    char *tmp;
    int rc;

    if (len > out->max - out->len)
        return AURORA_E_TOO_LARGE;
    tmp = malloc(len + 1);
    if (!tmp)
        return AURORA_E_NOMEM;
    aurora_crypto_b64_encode(p, n, url, tmp);
    rc = aurora_buf_append(out, tmp, len);
    /* The encoding of a secret is as secret as the secret. */
    aurora_wipe(tmp, len);
    free(tmp);
    return rc;
}

size_t aurora_crypto_b64_decoded_max(size_t n)
{
    return n / 4 * 3 + 3;
}

static int b64_value(unsigned char c, int url)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == (url ? '-' : '+'))
        return 62;
    if (c == (url ? '_' : '/'))
        return 63;
    return -1;
}

int aurora_crypto_b64_decode(const char *s, size_t n, int url, unsigned char *out, size_t *outlen)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t pad = 0, rem, i, o = 0;
    int v[4];

    if (n >= 1 && s[n - 1] == '=')
        pad++;
    if (n >= 2 && s[n - 2] == '=')
        pad++;
    if (pad && n % 4 != 0)
        return AURORA_E_INVALID;
    if (!pad && !url && n % 4 != 0)
        return AURORA_E_INVALID;
    n -= pad;
    rem = n % 4;
    if (rem == 1)
        return AURORA_E_INVALID;
    for (i = 0; i < n; i += 4) {
        size_t k, m = n - i < 4 ? n - i : 4;

        for (k = 0; k < m; k++) {
            v[k] = b64_value(u[i + k], url);
            if (v[k] < 0)
                return AURORA_E_INVALID;
        }
        out[o++] = (unsigned char)(v[0] << 2 | v[1] >> 4);
        if (m == 2) {
            /* Unused low bits must be zero, so each byte string has one encoding. */
            if (v[1] & 15)
                return AURORA_E_INVALID;
            break;
        }
        out[o++] = (unsigned char)((v[1] & 15) << 4 | v[2] >> 2);
        if (m == 3) {
            if (v[2] & 3)
                return AURORA_E_INVALID;
            break;
        }
        out[o++] = (unsigned char)((v[2] & 3) << 6 | v[3]);
    }
    *outlen = o;
    return 0;
}

int aurora_crypto_b64_decode_buf(const char *s, size_t n, int url, aurora_buf *out)
{
    size_t max = aurora_crypto_b64_decoded_max(n), len = 0;
    unsigned char *tmp = malloc(max);
    int rc;

    if (!tmp)
        return AURORA_E_NOMEM;
    rc = aurora_crypto_b64_decode(s, n, url, tmp, &len);
    if (rc)
        goto out;
    rc = aurora_buf_append(out, tmp, len);
out:
    /* The decoded bytes may be a secret (a key, a token): wipe the scratch copy. */
    aurora_wipe(tmp, max);
    free(tmp);
    return rc;
}

/* ---- AES-256-GCM ------------------------------------------------------------------------ */

int aurora_crypto_seal(const unsigned char key[AURORA_CRYPTO_KEY_LEN], const void *pt, size_t n,
                       const void *aad, size_t alen, unsigned char *out)
{
    EVP_CIPHER_CTX *ctx = NULL;
    unsigned char *nonce = out, *ct = out + AURORA_CRYPTO_NONCE_LEN;
    int len = 0, fin = 0, rc = AURORA_E_INTERNAL;

    if (n > AURORA_CRYPTO_SEAL_MAX || alen > AURORA_CRYPTO_SEAL_MAX)
        return AURORA_E_TOO_LARGE;
    if (aurora_crypto_random(nonce, AURORA_CRYPTO_NONCE_LEN))
        goto out;
    ctx = EVP_CIPHER_CTX_new();
    if (!ctx || EVP_EncryptInit_ex2(ctx, EVP_aes_256_gcm(), key, nonce, NULL) != 1)
        goto out;
    if (alen && EVP_EncryptUpdate(ctx, NULL, &len, aad, (int)alen) != 1)
        goto out;
    if (EVP_EncryptUpdate(ctx, ct, &len, pt, (int)n) != 1)
        goto out;
    if (EVP_EncryptFinal_ex(ctx, ct + len, &fin) != 1)
        goto out;
    if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, AURORA_CRYPTO_TAG_LEN, ct + n) != 1)
        goto out;
    rc = 0;
out:
    EVP_CIPHER_CTX_free(ctx);
    if (rc)
        ERR_clear_error();
    return rc;
}

int aurora_crypto_open(const unsigned char key[AURORA_CRYPTO_KEY_LEN], const void *box, size_t n,
                       const void *aad, size_t alen, unsigned char *out, size_t *outlen)
{
    const unsigned char *nonce = box, *ct = nonce + AURORA_CRYPTO_NONCE_LEN;
    EVP_CIPHER_CTX *ctx = NULL;
    unsigned char tag[AURORA_CRYPTO_TAG_LEN];
    size_t ctlen;
    int len = 0, fin = 0, rc = AURORA_E_INTERNAL;

    if (n < AURORA_CRYPTO_SEAL_OVERHEAD)
        return AURORA_E_INVALID;
    ctlen = n - AURORA_CRYPTO_SEAL_OVERHEAD;
    if (ctlen > AURORA_CRYPTO_SEAL_MAX || alen > AURORA_CRYPTO_SEAL_MAX)
        return AURORA_E_TOO_LARGE;
    /* The ctrl below takes a non-const pointer; give it a copy. */
    memcpy(tag, ct + ctlen, sizeof(tag));
    ctx = EVP_CIPHER_CTX_new();
    if (!ctx || EVP_DecryptInit_ex2(ctx, EVP_aes_256_gcm(), key, nonce, NULL) != 1)
        goto out;
    if (alen && EVP_DecryptUpdate(ctx, NULL, &len, aad, (int)alen) != 1)
        goto out;
    if (EVP_DecryptUpdate(ctx, out, &len, ct, (int)ctlen) != 1)
        goto out;
    if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, AURORA_CRYPTO_TAG_LEN, tag) != 1)
        goto out;
    if (EVP_DecryptFinal_ex(ctx, out + len, &fin) != 1) {
        /* Unauthenticated plaintext must not leave this function. */
        aurora_wipe(out, ctlen);
        rc = AURORA_E_CRYPTO;
        goto out;
    }
    *outlen = ctlen;
    rc = 0;
out:
    EVP_CIPHER_CTX_free(ctx);
    if (rc)
        ERR_clear_error();
    return rc;
}

/* ---- keys ------------------------------------------------------------------------------- */

aurora_crypto_alg aurora_crypto_alg_parse(const char *name)
{
    if (!name)
        return AURORA_ALG_UNKNOWN;
    if (strcmp(name, "RS256") == 0)
        return AURORA_ALG_RS256;
    if (strcmp(name, "PS256") == 0)
        return AURORA_ALG_PS256;
    if (strcmp(name, "ES256") == 0)
        return AURORA_ALG_ES256;
    return AURORA_ALG_UNKNOWN;
}

const char *aurora_crypto_alg_name(aurora_crypto_alg alg)
{
    switch (alg) {
    case AURORA_ALG_RS256:
        return "RS256";
    case AURORA_ALG_PS256:
        return "PS256";
    case AURORA_ALG_ES256:
        return "ES256";
    default:
        return "unknown";
    }
}

const char *aurora_crypto_key_type(const EVP_PKEY *k)
{
    char group[64];
    size_t len = 0;

    if (!k)
        return NULL;
    if (EVP_PKEY_is_a(k, "RSA"))
        return "rsa";
    if (!EVP_PKEY_is_a(k, "EC"))
        return NULL;
    if (EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                       &len) != 1) {
        ERR_clear_error();
        return NULL;
    }
    return strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0 ? "ec" : NULL;
}

/* 1 when k is a key this unit works with: RSA of a sane size, or EC P-256. */
static int supported(const EVP_PKEY *k)
{
    const char *type = aurora_crypto_key_type(k);
    int bits;

    if (!type)
        return 0;
    if (strcmp(type, "ec") == 0)
        return 1;
    bits = EVP_PKEY_get_bits(k);
    return bits >= AURORA_CRYPTO_RSA_MIN_BITS && bits <= AURORA_CRYPTO_RSA_MAX_BITS;
}

int aurora_crypto_key_is_private(const EVP_PKEY *k)
{
    const char *type = aurora_crypto_key_type(k);
    BIGNUM *bn = NULL;
    int r;

    if (!type)
        return 0;
    r = EVP_PKEY_get_bn_param(k, strcmp(type, "rsa") == 0 ? OSSL_PKEY_PARAM_RSA_D
                                                          : OSSL_PKEY_PARAM_PRIV_KEY,
                              &bn);
    BN_clear_free(bn);
    ERR_clear_error();
    return r == 1;
}

int aurora_crypto_key_fits(const EVP_PKEY *k, aurora_crypto_alg alg)
{
    const char *type = aurora_crypto_key_type(k);

    if (!type)
        return 0;
    if (alg == AURORA_ALG_RS256 || alg == AURORA_ALG_PS256)
        return strcmp(type, "rsa") == 0;
    if (alg == AURORA_ALG_ES256)
        return strcmp(type, "ec") == 0;
    return 0;
}

aurora_crypto_alg aurora_crypto_key_default_alg(const EVP_PKEY *k)
{
    const char *type = aurora_crypto_key_type(k);

    if (!type)
        return AURORA_ALG_UNKNOWN;
    return strcmp(type, "rsa") == 0 ? AURORA_ALG_RS256 : AURORA_ALG_ES256;
}

typedef struct password {
    const void *p;
    size_t n;
} password;

/* pem_password_cb: hands over the password we were given, and never prompts. */
static int password_cb(char *buf, int size, int rwflag, void *u)
{
    const password *pw = u;

    if (!pw || !pw->p || pw->n > (size_t)size)
        return -1;
    memcpy(buf, pw->p, pw->n);
    return (int)pw->n;
}

int aurora_crypto_key_load(const void *pem, size_t n, const void *pass, size_t pwlen,
                           EVP_PKEY **out)
{
    password pw = {pass, pwlen};
    EVP_PKEY *k = NULL;
    BIO *bio = NULL;
    int rc = AURORA_E_INVALID;

    if (n > INT_MAX)
        goto out;
    bio = BIO_new_mem_buf(pem, (int)n);
    if (!bio)
        goto out;
    k = PEM_read_bio_PrivateKey(bio, NULL, password_cb, &pw);
    if (!k) {
        /* No private key: read the same bytes again for a public key. */
        BIO_free(bio);
        bio = BIO_new_mem_buf(pem, (int)n);
        if (!bio)
            goto out;
        k = PEM_read_bio_PUBKEY(bio, NULL, password_cb, &pw);
    }
    if (!k || !supported(k))
        goto out;
    *out = k;
    k = NULL;
    rc = 0;
out:
    EVP_PKEY_free(k);
    BIO_free(bio);
    ERR_clear_error();
    return rc;
}

int aurora_crypto_key_generate(const char *type, int bits, EVP_PKEY **out)
{
    EVP_PKEY *k = NULL;

    if (strcmp(type, "rsa") == 0) {
        if (bits < AURORA_CRYPTO_RSA_MIN_BITS || bits > AURORA_CRYPTO_RSA_MAX_BITS)
            return AURORA_E_INVALID;
        k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits);
    } else if (strcmp(type, "ec") == 0) {
        k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    } else {
        return AURORA_E_INVALID;
    }
    if (!k) {
        ERR_clear_error();
        return AURORA_E_INTERNAL;
    }
    *out = k;
    return 0;
}

void aurora_crypto_key_free(EVP_PKEY **k)
{
    if (!k || !*k)
        return;
    EVP_PKEY_free(*k);
    *k = NULL;
}

/* Appends the whole content of a memory BIO. */
static int append_bio(BIO *bio, aurora_buf *out)
{
    char *p = NULL;
    long n = BIO_get_mem_data(bio, &p);

    if (n < 0 || (n > 0 && !p))
        return AURORA_E_INTERNAL;
    return aurora_buf_append(out, p, (size_t)n);
}

int aurora_crypto_key_public_pem(EVP_PKEY *k, aurora_buf *out)
{
    BIO *bio = BIO_new(BIO_s_mem());
    int rc = AURORA_E_INTERNAL;

    if (!bio || PEM_write_bio_PUBKEY(bio, k) != 1)
        goto out;
    rc = append_bio(bio, out);
out:
    BIO_free(bio);
    if (rc)
        ERR_clear_error();
    return rc;
}

int aurora_crypto_key_private_pem(EVP_PKEY *k, aurora_secret **out)
{
    /* A secure-memory BIO is wiped when freed, unlike BIO_s_mem. */
    BIO *bio = NULL;
    aurora_secret *s;
    char *p = NULL;
    long n;
    int rc = AURORA_E_INTERNAL;

    if (!aurora_crypto_key_is_private(k))
        return AURORA_E_INVALID;
    bio = BIO_new(BIO_s_secmem());
    if (!bio || PEM_write_bio_PrivateKey(bio, k, NULL, NULL, 0, NULL, NULL) != 1)
        goto out;
    n = BIO_get_mem_data(bio, &p);
    if (n <= 0 || !p)
        goto out;
    s = aurora_secret_new(p, (size_t)n);
    if (!s) {
        rc = AURORA_E_NOMEM;
        goto out;
    }
    *out = s;
    rc = 0;
out:
    BIO_free(bio);
    if (rc)
        ERR_clear_error();
    return rc;
}

/* Appends the big-endian bytes of bn, left-padded with zeros to pad bytes when pad > 0, as
 * base64url. */
static int append_bn_b64url(const BIGNUM *bn, int pad, aurora_buf *out)
{
    unsigned char tmp[AURORA_CRYPTO_RSA_MAX_BITS / 8];
    int n = pad > 0 ? pad : BN_num_bytes(bn);

    if (n <= 0 || n > (int)sizeof(tmp) || BN_bn2binpad(bn, tmp, n) != n)
        return AURORA_E_INTERNAL;
    return aurora_crypto_b64_encode_buf(tmp, (size_t)n, AURORA_B64_URL, out);
}

int aurora_crypto_key_jwk(EVP_PKEY *k, aurora_buf *first, aurora_buf *second)
{
    const char *type = aurora_crypto_key_type(k);
    BIGNUM *a = NULL, *b = NULL;
    size_t first_len = first->len;
    int rsa, rc = AURORA_E_INTERNAL;

    if (!type)
        return AURORA_E_INVALID;
    rsa = strcmp(type, "rsa") == 0;
    if (EVP_PKEY_get_bn_param(k, rsa ? OSSL_PKEY_PARAM_RSA_N : OSSL_PKEY_PARAM_EC_PUB_X, &a) != 1)
        goto out;
    if (EVP_PKEY_get_bn_param(k, rsa ? OSSL_PKEY_PARAM_RSA_E : OSSL_PKEY_PARAM_EC_PUB_Y, &b) != 1)
        goto out;
    rc = append_bn_b64url(a, rsa ? 0 : EC_COORD_LEN, first);
    if (rc)
        goto out;
    rc = append_bn_b64url(b, rsa ? 0 : EC_COORD_LEN, second);
    if (rc) {
        first->len = first_len;
        first->data[first_len] = '\0';
    }
out:
    BN_free(a);
    BN_free(b);
    if (rc)
        ERR_clear_error();
    return rc;
}

/* Sets up a DigestSign/DigestVerify context for alg on k. */
static int digest_init(EVP_MD_CTX *md, EVP_PKEY *k, aurora_crypto_alg alg, int sign)
{
    EVP_PKEY_CTX *pctx = NULL;
    int r;

    if (sign)
        r = EVP_DigestSignInit_ex(md, &pctx, "SHA256", NULL, NULL, k, NULL);
    else
        r = EVP_DigestVerifyInit_ex(md, &pctx, "SHA256", NULL, NULL, k, NULL);
    if (r != 1)
        return AURORA_E_INTERNAL;
    if (alg == AURORA_ALG_PS256) {
        /* RFC 7518 3.5: MGF1 with the same hash, salt as long as the hash. Verification
         * accepts any salt length, as other JOSE libraries do. */
        if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
            EVP_PKEY_CTX_set_rsa_mgf1_md_name(pctx, "SHA256", NULL) != 1 ||
            EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, sign ? RSA_PSS_SALTLEN_DIGEST
                                                        : RSA_PSS_SALTLEN_AUTO) != 1)
            return AURORA_E_INTERNAL;
    }
    return 0;
}

int aurora_crypto_sign(EVP_PKEY *k, aurora_crypto_alg alg, const void *p, size_t n,
                       aurora_buf *sig)
{
    EVP_MD_CTX *md = NULL;
    ECDSA_SIG *es = NULL;
    unsigned char *der = NULL, raw[2 * EC_COORD_LEN];
    const unsigned char *q;
    size_t len = 0;
    int rc = AURORA_E_INVALID;

    if (!aurora_crypto_key_fits(k, alg) || !aurora_crypto_key_is_private(k))
        goto out;
    rc = AURORA_E_INTERNAL;
    md = EVP_MD_CTX_new();
    if (!md || digest_init(md, k, alg, 1))
        goto out;
    if (EVP_DigestSign(md, NULL, &len, p, n) != 1)
        goto out;
    der = OPENSSL_malloc(len);
    if (!der || EVP_DigestSign(md, der, &len, p, n) != 1)
        goto out;
    if (alg != AURORA_ALG_ES256) {
        rc = aurora_buf_append(sig, der, len);
        goto out;
    }
    /* JOSE wants r || s, each padded to the size of the field, not the DER of ECDSA-Sig. */
    q = der;
    es = d2i_ECDSA_SIG(NULL, &q, (long)len);
    if (!es)
        goto out;
    if (BN_bn2binpad(ECDSA_SIG_get0_r(es), raw, EC_COORD_LEN) != EC_COORD_LEN ||
        BN_bn2binpad(ECDSA_SIG_get0_s(es), raw + EC_COORD_LEN, EC_COORD_LEN) != EC_COORD_LEN)
        goto out;
    rc = aurora_buf_append(sig, raw, sizeof(raw));
out:
    ECDSA_SIG_free(es);
    OPENSSL_free(der);
    EVP_MD_CTX_free(md);
    if (rc)
        ERR_clear_error();
    return rc;
}

int aurora_crypto_verify(EVP_PKEY *k, aurora_crypto_alg alg, const void *p, size_t n,
                         const unsigned char *sig, size_t siglen)
{
    EVP_MD_CTX *md = NULL;
    ECDSA_SIG *es = NULL;
    BIGNUM *r = NULL, *s = NULL;
    unsigned char *der = NULL;
    int derlen, rc = AURORA_E_INVALID;

    if (!aurora_crypto_key_fits(k, alg))
        goto out;
    rc = AURORA_E_INTERNAL;
    if (alg == AURORA_ALG_ES256) {
        if (siglen != 2 * EC_COORD_LEN) {
            rc = AURORA_E_CRYPTO;
            goto out;
        }
        es = ECDSA_SIG_new();
        r = BN_bin2bn(sig, EC_COORD_LEN, NULL);
        s = BN_bin2bn(sig + EC_COORD_LEN, EC_COORD_LEN, NULL);
        if (!es || !r || !s || ECDSA_SIG_set0(es, r, s) != 1)
            goto out;
        r = s = NULL; /* now owned by es */
        derlen = i2d_ECDSA_SIG(es, &der);
        if (derlen <= 0)
            goto out;
        sig = der;
        siglen = (size_t)derlen;
    }
    md = EVP_MD_CTX_new();
    if (!md || digest_init(md, k, alg, 0))
        goto out;
    rc = EVP_DigestVerify(md, sig, siglen, p, n) == 1 ? 0 : AURORA_E_CRYPTO;
out:
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(es);
    OPENSSL_free(der);
    EVP_MD_CTX_free(md);
    ERR_clear_error();
    return rc;
}

/* ---- certificates ----------------------------------------------------------------------- */

int aurora_crypto_cert_load(const void *pem, size_t n, X509 **out)
{
    BIO *bio = NULL;
    X509 *c = NULL;

    if (n > INT_MAX)
        return AURORA_E_INVALID;
    bio = BIO_new_mem_buf(pem, (int)n);
    if (bio)
        c = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    BIO_free(bio);
    ERR_clear_error();
    if (!c)
        return AURORA_E_INVALID;
    *out = c;
    return 0;
}

void aurora_crypto_cert_free(X509 **c)
{
    if (!c || !*c)
        return;
    X509_free(*c);
    *c = NULL;
}

int aurora_crypto_cert_thumbprint(X509 *c, const char *md, unsigned char *out, size_t *outlen)
{
    unsigned char tmp[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    const EVP_MD *type;

    if (strcmp(md, "sha1") == 0)
        type = EVP_sha1();
    else if (strcmp(md, "sha256") == 0)
        type = EVP_sha256();
    else
        return AURORA_E_INVALID;
    if (X509_digest(c, type, tmp, &len) != 1) {
        ERR_clear_error();
        return AURORA_E_INTERNAL;
    }
    memcpy(out, tmp, len);
    *outlen = len;
    return 0;
}

int aurora_crypto_cert_name(X509 *c, int issuer, aurora_buf *out)
{
    X509_NAME *name = issuer ? X509_get_issuer_name(c) : X509_get_subject_name(c);
    BIO *bio = BIO_new(BIO_s_mem());
    int rc = AURORA_E_INTERNAL;

    /* RFC 2253 order and escaping, but UTF-8 left as is rather than escaped as \XX bytes. */
    if (!bio || X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) < 0)
        goto out;
    rc = append_bio(bio, out);
out:
    BIO_free(bio);
    if (rc)
        ERR_clear_error();
    return rc;
}

int aurora_crypto_cert_common_name(X509 *c, aurora_buf *out)
{
    X509_NAME *name = X509_get_subject_name(c);
    unsigned char *utf8 = NULL;
    int i, last = -1, len, rc;

    for (i = X509_NAME_get_index_by_NID(name, NID_commonName, -1); i >= 0;
         i = X509_NAME_get_index_by_NID(name, NID_commonName, i))
        last = i;
    if (last < 0)
        return AURORA_E_NOT_FOUND;
    len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, last)));
    if (len < 0) {
        ERR_clear_error();
        return AURORA_E_INVALID;
    }
    rc = aurora_buf_append(out, utf8, (size_t)len);
    OPENSSL_free(utf8);
    return rc;
}

static int time_of(const ASN1_TIME *t, int64_t *out)
{
    struct tm tm;

    memset(&tm, 0, sizeof(tm));
    if (!t || ASN1_TIME_to_tm(t, &tm) != 1) {
        ERR_clear_error();
        return AURORA_E_INVALID;
    }
    *out = (int64_t)timegm(&tm);
    return 0;
}

int aurora_crypto_cert_times(X509 *c, int64_t *not_before, int64_t *not_after)
{
    int64_t a, b;

    if (time_of(X509_get0_notBefore(c), &a) || time_of(X509_get0_notAfter(c), &b))
        return AURORA_E_INVALID;
    *not_before = a;
    *not_after = b;
    return 0;
}

int aurora_crypto_cert_serial(X509 *c, aurora_buf *out)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(c), NULL);
    char *hex = bn ? BN_bn2hex(bn) : NULL;
    int rc = AURORA_E_INTERNAL;
    char *p;

    if (!hex)
        goto out;
    for (p = hex; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    rc = aurora_buf_puts(out, hex);
out:
    OPENSSL_free(hex);
    BN_free(bn);
    if (rc)
        ERR_clear_error();
    return rc;
}

int aurora_crypto_cert_pem(X509 *c, aurora_buf *out)
{
    BIO *bio = BIO_new(BIO_s_mem());
    int rc = AURORA_E_INTERNAL;

    if (!bio || PEM_write_bio_X509(bio, c) != 1)
        goto out;
    rc = append_bio(bio, out);
out:
    BIO_free(bio);
    if (rc)
        ERR_clear_error();
    return rc;
}

int aurora_crypto_cert_der(X509 *c, aurora_buf *out)
{
    unsigned char *der = NULL;
    int len = i2d_X509(c, &der), rc;

    if (len <= 0) {
        ERR_clear_error();
        return AURORA_E_INTERNAL;
    }
    rc = aurora_buf_append(out, der, (size_t)len);
    OPENSSL_free(der);
    return rc;
}

int aurora_crypto_cert_public_key(X509 *c, EVP_PKEY **out)
{
    unsigned char *der = NULL;
    const unsigned char *q;
    EVP_PKEY *k = NULL;
    int len;

    /* Not X509_get_pubkey: a certificate built in this process (X509_set_pubkey) hands back
     * the very key it was given, private part included. A DER round trip gives the public
     * key alone. */
    len = i2d_PUBKEY(X509_get0_pubkey(c), &der);
    q = der;
    if (len > 0)
        k = d2i_PUBKEY(NULL, &q, len);
    OPENSSL_free(der);
    if (!k || !supported(k)) {
        EVP_PKEY_free(k);
        ERR_clear_error();
        return AURORA_E_INVALID;
    }
    *out = k;
    return 0;
}

int aurora_crypto_cert_signed_by(X509 *c, X509 *ca)
{
    EVP_PKEY *k = X509_get0_pubkey(ca);
    int ok = k && X509_check_issued(ca, c) == X509_V_OK && X509_verify(c, k) == 1;

    ERR_clear_error();
    return ok;
}

/* Appends s (n bytes, no NUL inside) with a prefix and a terminating NUL. */
static int append_san(aurora_buf *out, const char *prefix, const void *s, size_t n, size_t *count)
{
    size_t old = out->len;
    int rc;

    if (memchr(s, '\0', n))
        return 0;
    rc = aurora_buf_puts(out, prefix);
    if (!rc)
        rc = aurora_buf_append(out, s, n);
    if (!rc)
        rc = aurora_buf_append(out, "", 1);
    if (rc) {
        out->len = old;
        if (out->data)
            out->data[old] = '\0';
        return rc;
    }
    (*count)++;
    return 0;
}

int aurora_crypto_cert_sans(X509 *c, aurora_buf *out, size_t *count)
{
    GENERAL_NAMES *gens = X509_get_ext_d2i(c, NID_subject_alt_name, NULL, NULL);
    size_t old = out->len, found = 0;
    char ip[INET6_ADDRSTRLEN];
    int i, rc = 0;

    for (i = 0; gens && i < sk_GENERAL_NAME_num(gens) && !rc; i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        const ASN1_STRING *s;

        switch (g->type) {
        case GEN_DNS:
            s = g->d.dNSName;
            rc = append_san(out, "DNS:", ASN1_STRING_get0_data(s), ASN1_STRING_length(s), &found);
            break;
        case GEN_URI:
            s = g->d.uniformResourceIdentifier;
            rc = append_san(out, "URI:", ASN1_STRING_get0_data(s), ASN1_STRING_length(s), &found);
            break;
        case GEN_EMAIL:
            s = g->d.rfc822Name;
            rc = append_san(out, "email:", ASN1_STRING_get0_data(s), ASN1_STRING_length(s),
                            &found);
            break;
        case GEN_IPADD:
            s = g->d.iPAddress;
            if (ASN1_STRING_length(s) != 4 && ASN1_STRING_length(s) != 16)
                break;
            if (!inet_ntop(ASN1_STRING_length(s) == 4 ? AF_INET : AF_INET6,
                           ASN1_STRING_get0_data(s), ip, sizeof(ip)))
                break;
            rc = append_san(out, "IP:", ip, strlen(ip), &found);
            break;
        default:
            break;
        }
    }
    GENERAL_NAMES_free(gens);
    ERR_clear_error();
    if (rc) {
        out->len = old;
        if (out->data)
            out->data[old] = '\0';
        return rc;
    }
    *count = found;
    return 0;
}

/* Adds an extension written in OpenSSL's configuration syntax (our constants only). */
static int add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
    int ok = e && X509_add_ext(x, e, -1) == 1;

    X509_EXTENSION_free(e);
    return ok ? 0 : AURORA_E_INTERNAL;
}

/* A DNS name we are willing to certify: letters, digits, '-', '.', '_' and a leading "*.". */
static int dns_name_ok(const char *s)
{
    size_t i, n = strlen(s);

    if (n == 0 || n > 253)
        return 0;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        if (isalnum(c) || c == '-' || c == '.' || c == '_')
            continue;
        if (c == '*' && i == 0 && s[1] == '.')
            continue;
        return 0;
    }
    return 1;
}

static int add_sans(X509 *x, const aurora_cert_spec *spec, int critical)
{
    GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
    GENERAL_NAME *g = NULL;
    size_t i;
    int rc = AURORA_E_INTERNAL;

    if (!gens)
        goto out;
    for (i = 0; i < spec->san_n; i++) {
        const char *name = spec->sans[i];
        ASN1_OCTET_STRING *ip = a2i_IPADDRESS(name);

        ERR_clear_error();
        g = GENERAL_NAME_new();
        if (!g) {
            ASN1_OCTET_STRING_free(ip);
            goto out;
        }
        if (ip) {
            GENERAL_NAME_set0_value(g, GEN_IPADD, ip);
        } else {
            ASN1_IA5STRING *dns;

            if (!dns_name_ok(name)) {
                rc = AURORA_E_INVALID;
                goto out;
            }
            dns = ASN1_IA5STRING_new();
            if (!dns || ASN1_STRING_set(dns, name, (int)strlen(name)) != 1) {
                ASN1_IA5STRING_free(dns);
                goto out;
            }
            GENERAL_NAME_set0_value(g, GEN_DNS, dns);
        }
        if (!sk_GENERAL_NAME_push(gens, g))
            goto out;
        g = NULL;
    }
    if (X509_add1_ext_i2d(x, NID_subject_alt_name, gens, critical, X509V3_ADD_DEFAULT) != 1)
        goto out;
    rc = 0;
out:
    GENERAL_NAME_free(g);
    GENERAL_NAMES_free(gens);
    return rc;
}

static int set_serial(X509 *x)
{
    unsigned char raw[16];
    BIGNUM *bn = NULL;
    int rc = AURORA_E_INTERNAL;

    if (aurora_crypto_random(raw, sizeof(raw)))
        return rc;
    /* Positive, non-zero and always 16 bytes long. */
    raw[0] = (unsigned char)((raw[0] & 0x7f) | 0x40);
    bn = BN_bin2bn(raw, sizeof(raw), NULL);
    if (bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)))
        rc = 0;
    BN_free(bn);
    return rc;
}

/* The extensions of spec->usage. ctx names the issuer and subject for the key identifiers. */
static int add_usage_exts(X509 *x, X509V3_CTX *ctx, const aurora_cert_spec *spec)
{
    int rsa = strcmp(aurora_crypto_key_type(spec->key), "rsa") == 0, rc;

    if (spec->usage == AURORA_CERT_CA) {
        rc = add_ext(x, ctx, NID_basic_constraints, "critical,CA:TRUE");
        if (!rc)
            rc = add_ext(x, ctx, NID_key_usage, "critical,keyCertSign,cRLSign");
    } else {
        rc = add_ext(x, ctx, NID_basic_constraints, "critical,CA:FALSE");
        /* keyEncipherment only means something for RSA (key transport); GnuTLS and Go check
         * that an EC leaf asks for digitalSignature. */
        if (!rc)
            rc = add_ext(x, ctx, NID_key_usage,
                         rsa ? "critical,digitalSignature,keyEncipherment"
                             : "critical,digitalSignature");
        if (!rc)
            rc = add_ext(x, ctx, NID_ext_key_usage,
                         spec->usage == AURORA_CERT_CLIENT ? "clientAuth" : "serverAuth");
    }
    /* The subject key identifier first: the authority one of a self-signed cert copies it. */
    if (!rc)
        rc = add_ext(x, ctx, NID_subject_key_identifier, "hash");
    if (!rc)
        rc = add_ext(x, ctx, NID_authority_key_identifier, "keyid:always");
    return rc;
}

int aurora_crypto_cert_issue(const aurora_cert_spec *spec, X509 **out)
{
    EVP_PKEY *signer = spec->ca_cert ? spec->ca_key : spec->key;
    X509 *x = NULL, *back = NULL;
    unsigned char *der = NULL;
    const unsigned char *q;
    X509_NAME *name;
    X509V3_CTX ctx;
    size_t i;
    int len, explicit_times, rc = AURORA_E_INVALID;

    if (!spec->key || !supported(spec->key) || !signer || !aurora_crypto_key_is_private(signer))
        goto out;
    explicit_times = spec->not_before != 0 || spec->not_after != 0;
    if (explicit_times && spec->not_before >= spec->not_after)
        goto out;
    if (!explicit_times && (spec->days < 1 || spec->days > 36500))
        goto out;
    if (spec->ca_cert && (X509_check_ca(spec->ca_cert) == 0 ||
                          X509_check_private_key(spec->ca_cert, spec->ca_key) != 1))
        goto out;
    rc = AURORA_E_INTERNAL;
    x = X509_new();
    if (!x || X509_set_version(x, X509_VERSION_3) != 1 || set_serial(x))
        goto out;
    if (explicit_times) {
        /* Exact dates, past ones included: tests need certificates that have expired. */
        if (!ASN1_TIME_set(X509_getm_notBefore(x), (time_t)spec->not_before) ||
            !ASN1_TIME_set(X509_getm_notAfter(x), (time_t)spec->not_after))
            goto out;
    } else {
        /* Backdated a minute so a client whose clock runs slightly behind accepts it. */
        if (!X509_gmtime_adj(X509_getm_notBefore(x), -60) ||
            !X509_time_adj_ex(X509_getm_notAfter(x), spec->days, 0, NULL))
            goto out;
    }
    name = X509_get_subject_name(x);
    for (i = 0; i < spec->subject_n; i++) {
        const char *attr = spec->subject[2 * i], *value = spec->subject[2 * i + 1];

        if (X509_NAME_add_entry_by_txt(name, attr, MBSTRING_UTF8, (const unsigned char *)value,
                                       -1, -1, 0) != 1) {
            rc = AURORA_E_INVALID;
            goto out;
        }
    }
    if (X509_set_issuer_name(x, spec->ca_cert ? X509_get_subject_name(spec->ca_cert) : name) !=
            1 ||
        X509_set_pubkey(x, spec->key) != 1)
        goto out;
    X509V3_set_ctx(&ctx, spec->ca_cert ? spec->ca_cert : x, x, NULL, NULL, 0);
    rc = add_usage_exts(x, &ctx, spec);
    if (!rc && spec->san_n)
        rc = add_sans(x, spec, X509_NAME_entry_count(name) == 0);
    if (rc)
        goto out;
    rc = AURORA_E_INTERNAL;
    if (X509_sign(x, signer, EVP_sha256()) <= 0)
        goto out;
    /* Re-read the certificate so it no longer holds a reference to the subject's private key
     * (X509_set_pubkey keeps the EVP_PKEY it was given). */
    len = i2d_X509(x, &der);
    q = der;
    if (len > 0)
        back = d2i_X509(NULL, &q, len);
    if (!back)
        goto out;
    *out = back;
    rc = 0;
out:
    OPENSSL_free(der);
    X509_free(x);
    ERR_clear_error();
    return rc;
}

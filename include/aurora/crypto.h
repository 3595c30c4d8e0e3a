/*
 * crypto.h: the cryptography of the engine on top of OpenSSL 3: random bytes, digests, HMAC,
 * base64, AES-256-GCM sealing, RSA and EC P-256 keys (JOSE signatures), and X.509 certificates
 * (reading them, and issuing a private CA and its leaves at run time). No Lua here; the module
 * aurora.crypto (crypto_lua.c) and aurora.jwt use these functions.
 *
 * Conventions: functions that can fail return 0 or an aurora_err and write their out-parameters
 * only on success; they leave the OpenSSL error queue of the thread empty either way. Keys are
 * EVP_PKEY and certificates X509, owned by whoever the comment names.
 */
#ifndef AURORA_CRYPTO_H
#define AURORA_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "aurora/buf.h"
#include "aurora/secret.h"

#define AURORA_CRYPTO_SHA1_LEN 20
#define AURORA_CRYPTO_SHA256_LEN 32
#define AURORA_CRYPTO_KEY_LEN 32   /* AES-256-GCM key */
#define AURORA_CRYPTO_NONCE_LEN 12 /* GCM nonce, first bytes of a sealed box */
#define AURORA_CRYPTO_TAG_LEN 16   /* GCM tag, last bytes of a sealed box */
#define AURORA_CRYPTO_SEAL_OVERHEAD (AURORA_CRYPTO_NONCE_LEN + AURORA_CRYPTO_TAG_LEN)
#define AURORA_CRYPTO_SEAL_MAX ((size_t)1 << 30) /* largest plaintext seal/open accepts */
#define AURORA_CRYPTO_RSA_MIN_BITS 2048
#define AURORA_CRYPTO_RSA_MAX_BITS 8192

/*
 * The userdata behind the Lua handles aurora.crypto.key and aurora.crypto.cert: one pointer,
 * NULL once closed. Declared here so aurora.jwt can accept the handles of aurora.crypto.
 */
#define AURORA_CRYPTO_KEY_MT "aurora.crypto.key"
#define AURORA_CRYPTO_CERT_MT "aurora.crypto.cert"
typedef struct aurora_crypto_key_ud {
    EVP_PKEY *pkey;
} aurora_crypto_key_ud;
typedef struct aurora_crypto_cert_ud {
    X509 *x509;
} aurora_crypto_cert_ud;

/* ---- bytes ------------------------------------------------------------------------------ */

/* Fills out with n bytes from the OpenSSL CSPRNG. Returns 0 or AURORA_E_INTERNAL. */
int aurora_crypto_random(void *out, size_t n);

/* SHA-256 / SHA-1 of n bytes at p into out. Returns 0 or AURORA_E_INTERNAL. */
int aurora_crypto_sha256(const void *p, size_t n, unsigned char out[AURORA_CRYPTO_SHA256_LEN]);
int aurora_crypto_sha1(const void *p, size_t n, unsigned char out[AURORA_CRYPTO_SHA1_LEN]);

/* HMAC-SHA-256 of n bytes at p under a key of klen bytes into out. Returns 0 or
 * AURORA_E_INTERNAL. */
int aurora_crypto_hmac_sha256(const void *key, size_t klen, const void *p, size_t n,
                              unsigned char out[AURORA_CRYPTO_SHA256_LEN]);

/* Writes 2n lowercase hex digits and a NUL to out (2n + 1 bytes). */
void aurora_crypto_hex(const void *p, size_t n, char *out);

/* 1 when a and b have the same length and bytes, else 0; constant time for equal lengths. */
int aurora_crypto_equals(const void *a, size_t an, const void *b, size_t bn);

/* ---- base64 (RFC 4648) ------------------------------------------------------------------ */

#define AURORA_B64_STD 0 /* section 4: + and /, padded with = */
#define AURORA_B64_URL 1 /* section 5: - and _, no padding on encode, optional on decode */

/* Length of the encoding of n bytes, without a NUL. */
size_t aurora_crypto_b64_encoded_len(size_t n, int url);

/* Writes the encoding of n bytes at p to out (aurora_crypto_b64_encoded_len + 1 bytes, NUL
 * terminated). */
void aurora_crypto_b64_encode(const void *p, size_t n, int url, char *out);

/* Appends the encoding to out. Returns 0 or the error of aurora_buf_append. */
int aurora_crypto_b64_encode_buf(const void *p, size_t n, int url, aurora_buf *out);

/* An upper bound of the decoded length of n characters. */
size_t aurora_crypto_b64_decoded_max(size_t n);

/*
 * Decodes n characters at s into out (aurora_crypto_b64_decoded_max(n) bytes) and sets *outlen.
 * Strict: no whitespace, no characters of the other alphabet, padding only where it belongs
 * (required for AURORA_B64_STD), and unused bits of the last character must be zero. Returns 0
 * or AURORA_E_INVALID (out may hold garbage then).
 */
int aurora_crypto_b64_decode(const char *s, size_t n, int url, unsigned char *out, size_t *outlen);

/* Appends the decoding to out; same rules. Returns 0, AURORA_E_INVALID, or the error of
 * aurora_buf_append (out unchanged on failure). */
int aurora_crypto_b64_decode_buf(const char *s, size_t n, int url, aurora_buf *out);

/* ---- AES-256-GCM ------------------------------------------------------------------------ */

/*
 * Seals n bytes (n <= AURORA_CRYPTO_SEAL_MAX) under a 32-byte key with a fresh random nonce and
 * optional associated data (aad may be NULL when alen is 0). Writes nonce || ciphertext || tag,
 * n + AURORA_CRYPTO_SEAL_OVERHEAD bytes, to out. Returns 0, AURORA_E_TOO_LARGE or
 * AURORA_E_INTERNAL.
 */
int aurora_crypto_seal(const unsigned char key[AURORA_CRYPTO_KEY_LEN], const void *pt, size_t n,
                       const void *aad, size_t alen, unsigned char *out);

/*
 * Opens a sealed box of n bytes into out (n - AURORA_CRYPTO_SEAL_OVERHEAD bytes) and sets
 * *outlen. Returns 0, AURORA_E_INVALID (shorter than the overhead), AURORA_E_TOO_LARGE,
 * AURORA_E_CRYPTO (wrong key, aad or tampered box; out is wiped) or AURORA_E_INTERNAL.
 */
int aurora_crypto_open(const unsigned char key[AURORA_CRYPTO_KEY_LEN], const void *box, size_t n,
                       const void *aad, size_t alen, unsigned char *out, size_t *outlen);

/* ---- keys and JOSE signatures ----------------------------------------------------------- */

typedef enum {
    AURORA_ALG_UNKNOWN = 0,
    AURORA_ALG_RS256, /* RSASSA-PKCS1-v1_5 with SHA-256 */
    AURORA_ALG_PS256, /* RSASSA-PSS with SHA-256, MGF1 SHA-256, 32-byte salt */
    AURORA_ALG_ES256, /* ECDSA P-256 with SHA-256, signature r || s (64 bytes) */
} aurora_crypto_alg;

/* The algorithm named by a JOSE "alg" value, or AURORA_ALG_UNKNOWN (also for "none"). */
aurora_crypto_alg aurora_crypto_alg_parse(const char *name);

/* The JOSE name of alg ("RS256"), or "unknown". */
const char *aurora_crypto_alg_name(aurora_crypto_alg alg);

/*
 * Reads the first private key, or failing that the first public key (SubjectPublicKeyInfo), from
 * n bytes of PEM. password (pwlen bytes, may be NULL) decrypts an encrypted private key; without
 * it an encrypted key fails rather than prompting. Only RSA (2048 to 8192 bits) and EC P-256
 * keys are accepted. Sets *out, which the caller frees with aurora_crypto_key_free. Returns 0 or
 * AURORA_E_INVALID.
 */
int aurora_crypto_key_load(const void *pem, size_t n, const void *password, size_t pwlen,
                           EVP_PKEY **out);

/*
 * Generates a key: type "rsa" with bits in [AURORA_CRYPTO_RSA_MIN_BITS,
 * AURORA_CRYPTO_RSA_MAX_BITS], or "ec" (P-256; bits ignored). Sets *out, which the caller frees
 * with aurora_crypto_key_free. Returns 0, AURORA_E_INVALID (bad type or bits) or
 * AURORA_E_INTERNAL.
 */
int aurora_crypto_key_generate(const char *type, int bits, EVP_PKEY **out);

/* Frees *k and sets it to NULL. Harmless on NULL. */
void aurora_crypto_key_free(EVP_PKEY **k);

/* "rsa" or "ec", or NULL for any other (unsupported) kind of key. */
const char *aurora_crypto_key_type(const EVP_PKEY *k);

/* 1 when k holds a private key, else 0. */
int aurora_crypto_key_is_private(const EVP_PKEY *k);

/* 1 when alg can be used with k (RS256/PS256 for RSA, ES256 for EC), else 0. */
int aurora_crypto_key_fits(const EVP_PKEY *k, aurora_crypto_alg alg);

/* The default JOSE algorithm of k: RS256 for RSA, ES256 for EC, else AURORA_ALG_UNKNOWN. */
aurora_crypto_alg aurora_crypto_key_default_alg(const EVP_PKEY *k);

/* Appends the public key as SubjectPublicKeyInfo PEM to out. Returns 0, AURORA_E_INTERNAL or the
 * error of aurora_buf_append. */
int aurora_crypto_key_public_pem(EVP_PKEY *k, aurora_buf *out);

/*
 * Writes the private key as unencrypted PKCS#8 PEM into a new secret (no copy of it is left in
 * freed memory). Sets *out, which the caller frees with aurora_secret_free. Returns 0,
 * AURORA_E_INVALID (k is public only), AURORA_E_NOMEM or AURORA_E_INTERNAL.
 */
int aurora_crypto_key_private_pem(EVP_PKEY *k, aurora_secret **out);

/*
 * Appends the base64url JWK members of the public key: n to first and e to second for RSA, x to
 * first and y to second (32 bytes each) for EC P-256. Returns 0, AURORA_E_INVALID (unsupported
 * key), AURORA_E_INTERNAL or the error of aurora_buf_append.
 */
int aurora_crypto_key_jwk(EVP_PKEY *k, aurora_buf *first, aurora_buf *second);

/*
 * Signs n bytes with the private key k, appending the JOSE signature to sig (ES256: r || s, 64
 * bytes). Returns 0, AURORA_E_INVALID (alg does not fit k, or k is public only) or
 * AURORA_E_INTERNAL, or the error of aurora_buf_append.
 */
int aurora_crypto_sign(EVP_PKEY *k, aurora_crypto_alg alg, const void *p, size_t n,
                       aurora_buf *sig);

/*
 * Verifies a JOSE signature of n bytes with k. Returns 0 when it verifies, AURORA_E_CRYPTO when
 * it does not (including a signature of the wrong length), AURORA_E_INVALID when alg does not fit
 * k, or AURORA_E_INTERNAL.
 */
int aurora_crypto_verify(EVP_PKEY *k, aurora_crypto_alg alg, const void *p, size_t n,
                         const unsigned char *sig, size_t siglen);

/* ---- certificates ----------------------------------------------------------------------- */

/* Reads the first certificate from n bytes of PEM. Sets *out, which the caller frees with
 * aurora_crypto_cert_free. Returns 0 or AURORA_E_INVALID. */
int aurora_crypto_cert_load(const void *pem, size_t n, X509 **out);

/* Frees *c and sets it to NULL. Harmless on NULL. */
void aurora_crypto_cert_free(X509 **c);

/* Digest of the DER encoding with md "sha1" or "sha256" into out (32 bytes room), length in
 * *outlen. Returns 0, AURORA_E_INVALID (other md) or AURORA_E_INTERNAL. */
int aurora_crypto_cert_thumbprint(X509 *c, const char *md, unsigned char *out, size_t *outlen);

/* Appends the subject (issuer when issuer is set) as an RFC 4514 string, most specific RDN first
 * ("CN=a,O=b"). Returns 0, AURORA_E_INTERNAL or the error of aurora_buf_append. */
int aurora_crypto_cert_name(X509 *c, int issuer, aurora_buf *out);

/* Appends the UTF-8 value of the last commonName of the subject. Returns 0, AURORA_E_NOT_FOUND
 * (none), AURORA_E_INVALID (not convertible) or the error of aurora_buf_append. */
int aurora_crypto_cert_common_name(X509 *c, aurora_buf *out);

/* Sets the validity period in Unix seconds. Returns 0 or AURORA_E_INVALID. */
int aurora_crypto_cert_times(X509 *c, int64_t *not_before, int64_t *not_after);

/* Appends the serial number as lowercase hex. Returns 0, AURORA_E_INTERNAL or the error of
 * aurora_buf_append. */
int aurora_crypto_cert_serial(X509 *c, aurora_buf *out);

/* Appends the certificate as PEM / DER. Return 0, AURORA_E_INTERNAL or the error of
 * aurora_buf_append. */
int aurora_crypto_cert_pem(X509 *c, aurora_buf *out);
int aurora_crypto_cert_der(X509 *c, aurora_buf *out);

/* Sets *out to a new reference to the public key, freed with aurora_crypto_key_free. Returns 0
 * or AURORA_E_INVALID (a kind of key aurora_crypto_key_load would refuse). */
int aurora_crypto_cert_public_key(X509 *c, EVP_PKEY **out);

/* 1 when ca issued c: the issuer name matches the subject of ca (and key identifiers, when
 * present, agree) and ca's public key verifies the signature of c; else 0. */
int aurora_crypto_cert_signed_by(X509 *c, X509 *ca);

/*
 * Appends the subject alternative names as NUL-terminated strings "DNS:name", "IP:1.2.3.4",
 * "IP:::1", "URI:...", "email:..." (other kinds and names with embedded NULs are skipped) and
 * sets *count. Returns 0 (count 0 when there are none), AURORA_E_INTERNAL or the error of
 * aurora_buf_append.
 */
int aurora_crypto_cert_sans(X509 *c, aurora_buf *out, size_t *count);

typedef enum {
    AURORA_CERT_SERVER = 0, /* leaf, extendedKeyUsage serverAuth */
    AURORA_CERT_CLIENT,     /* leaf, extendedKeyUsage clientAuth */
    AURORA_CERT_CA,         /* CA:TRUE, keyCertSign and cRLSign */
} aurora_cert_usage;

/* What aurora_crypto_cert_issue builds. Pointers are borrowed. */
typedef struct aurora_cert_spec {
    EVP_PKEY *key;              /* the subject's key (public part is certified) */
    const char *const *subject; /* 2 * subject_n strings: attribute ("CN", "O"...), value */
    size_t subject_n;
    X509 *ca_cert;              /* issuer; NULL for a self-signed certificate */
    EVP_PKEY *ca_key;           /* issuer's private key; NULL when self-signed (key signs) */
    int days;                   /* validity from a minute ago, 1 to 36500 */
    int64_t not_before;         /* with not_after: explicit validity in Unix seconds, instead */
    int64_t not_after;          /* of days (0 and 0: use days); not_before < not_after */
    aurora_cert_usage usage;
    const char *const *sans;    /* san_n names: IPv4/IPv6 literals become IP SANs, others DNS */
    size_t san_n;
} aurora_cert_spec;

/*
 * Issues an X.509 v3 certificate signed with SHA-256, with a random positive 128-bit serial,
 * subject and authority key identifiers, and the extensions of spec->usage. Sets *out, which the
 * caller frees with aurora_crypto_cert_free. Returns 0, AURORA_E_INVALID (bad attribute, SAN,
 * days or not_before/not_after, a signing key that is public only, or a ca_key that does not
 * match ca_cert) or AURORA_E_INTERNAL.
 */
int aurora_crypto_cert_issue(const aurora_cert_spec *spec, X509 **out);

#endif

/*
 * crypto_lua.c: the Lua module aurora.crypto, a thin binding over crypto.c. Keys and
 * certificates are userdata (aurora.crypto.key, aurora.crypto.cert) holding one OpenSSL pointer;
 * private key material never becomes a Lua string (private_pem returns an aurora.secret handle).
 * Misuse raises; failures of the world (a bad PEM, a tag that does not verify) return
 * nil, message, code. Memory the C core fills is owned by a scratch userdata, so a raise (out of
 * memory while pushing a result) cannot leak it.
 */
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "aurora/aurora.h"
#include "aurora/buf.h"
#include "aurora/crypto.h"
#include "aurora/secret.h"
#include "aurora/vm.h"

#define SCRATCH_MT "aurora.crypto.scratch"
#define OUT_MAX (1024 * 1024)  /* PEM, names, SAN lists */
#define RANDOM_MAX (1024 * 1024)
#define SUBJECT_MAX 16         /* values in a subject */
#define SANS_MAX 64

/* ---- helpers ---------------------------------------------------------------------------- */

static int scratch_gc(lua_State *L)
{
    aurora_buf_free(luaL_checkudata(L, 1, SCRATCH_MT));
    return 0;
}

/* Pushes a userdata owning an empty buffer, freed (and wiped when secret) by the GC or by an
 * explicit aurora_buf_free. Stack: pushes 1; may raise (out of memory). */
static aurora_buf *scratch(lua_State *L, size_t max, int secret)
{
    aurora_buf *b = lua_newuserdatauv(L, sizeof(*b), 0);

    aurora_buf_init(b, max);
    b->secret = secret;
    if (luaL_newmetatable(L, SCRATCH_MT)) {
        lua_pushcfunction(L, scratch_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    return b;
}

/* Like scratch but with n bytes of raw room at b->data (b->len = n), wiped when freed. Stack:
 * pushes 1; may raise (out of memory). */
static unsigned char *scratch_room(lua_State *L, size_t n)
{
    aurora_buf *b = scratch(L, n, 1);

    b->data = malloc(n + 1);
    if (!b->data)
        luaL_error(L, "not enough memory");
    b->cap = n + 1;
    b->len = n;
    return (unsigned char *)b->data;
}

/* opts.secret of an optional options table at idx. Raises on a non-table. */
static int want_secret(lua_State *L, int idx)
{
    int v;

    if (lua_isnoneornil(L, idx))
        return 0;
    luaL_checktype(L, idx, LUA_TTABLE);
    lua_getfield(L, idx, "secret");
    v = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return v;
}

/* Pushes p[0..n) as a string, or as an aurora.secret handle when secret. Stack: pushes 1. */
static void push_bytes(lua_State *L, const void *p, size_t n, int secret)
{
    if (secret)
        aurora_secret_push(L, p, n);
    else
        lua_pushlstring(L, p, n);
}

static EVP_PKEY *check_key(lua_State *L, int idx)
{
    aurora_crypto_key_ud *u = luaL_checkudata(L, idx, AURORA_CRYPTO_KEY_MT);

    if (!u->pkey)
        luaL_argerror(L, idx, "attempt to use a closed key");
    return u->pkey;
}

static X509 *check_cert(lua_State *L, int idx)
{
    aurora_crypto_cert_ud *u = luaL_checkudata(L, idx, AURORA_CRYPTO_CERT_MT);

    if (!u->x509)
        luaL_argerror(L, idx, "attempt to use a closed certificate");
    return u->x509;
}

/* Pushes a new, empty key handle. Stack: pushes 1. */
static aurora_crypto_key_ud *new_key(lua_State *L)
{
    aurora_crypto_key_ud *u = lua_newuserdatauv(L, sizeof(*u), 0);

    u->pkey = NULL;
    luaL_setmetatable(L, AURORA_CRYPTO_KEY_MT);
    return u;
}

static aurora_crypto_cert_ud *new_cert(lua_State *L)
{
    aurora_crypto_cert_ud *u = lua_newuserdatauv(L, sizeof(*u), 0);

    u->x509 = NULL;
    luaL_setmetatable(L, AURORA_CRYPTO_CERT_MT);
    return u;
}

/* ---- bytes ------------------------------------------------------------------------------ */

/* crypto.random(n [, {secret=true}]) -> string | handle */
static int l_random(lua_State *L)
{
    lua_Integer n = luaL_checkinteger(L, 1);
    int secret = want_secret(L, 2), rc;
    unsigned char *p;

    luaL_argcheck(L, n >= 0 && n <= RANDOM_MAX, 1, "out of range (0 to 1048576)");
    p = scratch_room(L, (size_t)n);
    rc = aurora_crypto_random(p, (size_t)n);
    if (rc)
        return aurora_vm_fail(L, rc, "random generator failed");
    push_bytes(L, p, (size_t)n, secret);
    aurora_buf_free(lua_touserdata(L, -2));
    return 1;
}

/* Shared body of sha256 and sha1: the data may be a string or a secret handle. */
static int digest(lua_State *L, int sha256)
{
    unsigned char md[AURORA_CRYPTO_SHA256_LEN];
    const unsigned char *p;
    size_t n;
    int rc;

    aurora_secret_bytes(L, 1, &p, &n);
    rc = sha256 ? aurora_crypto_sha256(p, n, md) : aurora_crypto_sha1(p, n, md);
    if (rc)
        return aurora_vm_fail(L, rc, "digest failed");
    lua_pushlstring(L, (const char *)md,
                    sha256 ? AURORA_CRYPTO_SHA256_LEN : AURORA_CRYPTO_SHA1_LEN);
    return 1;
}

/* crypto.sha256(data) -> 32 raw bytes */
static int l_sha256(lua_State *L)
{
    return digest(L, 1);
}

/* crypto.sha1(data) -> 20 raw bytes */
static int l_sha1(lua_State *L)
{
    return digest(L, 0);
}

/* crypto.hmac_sha256(key, data) -> 32 raw bytes; key and data are strings or secret handles */
static int l_hmac_sha256(lua_State *L)
{
    unsigned char mac[AURORA_CRYPTO_SHA256_LEN];
    const unsigned char *k, *p;
    size_t kn, n;
    int rc;

    aurora_secret_bytes(L, 1, &k, &kn);
    aurora_secret_bytes(L, 2, &p, &n);
    rc = aurora_crypto_hmac_sha256(k, kn, p, n, mac);
    if (rc)
        return aurora_vm_fail(L, rc, "hmac failed");
    lua_pushlstring(L, (const char *)mac, sizeof(mac));
    return 1;
}

/* crypto.hex(s) -> lowercase hex */
static int l_hex(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    luaL_Buffer b;
    char *out;

    luaL_argcheck(L, n <= OUT_MAX * 16, 1, "too long");
    out = luaL_buffinitsize(L, &b, 2 * n + 1);
    aurora_crypto_hex(s, n, out);
    luaL_pushresultsize(&b, 2 * n);
    return 1;
}

static int b64encode(lua_State *L, int url)
{
    size_t n, len;
    const char *s = luaL_checklstring(L, 1, &n);
    luaL_Buffer b;
    char *out;

    luaL_argcheck(L, n <= OUT_MAX * 64, 1, "too long");
    len = aurora_crypto_b64_encoded_len(n, url);
    out = luaL_buffinitsize(L, &b, len + 1);
    aurora_crypto_b64_encode(s, n, url, out);
    luaL_pushresultsize(&b, len);
    return 1;
}

static int b64decode(lua_State *L, int url)
{
    size_t n, len = 0;
    const unsigned char *s;
    int secret, rc;
    unsigned char *out;

    aurora_secret_bytes(L, 1, &s, &n);
    secret = want_secret(L, 2);
    out = scratch_room(L, aurora_crypto_b64_decoded_max(n));
    rc = aurora_crypto_b64_decode((const char *)s, n, url, out, &len);
    if (rc)
        return aurora_vm_fail(L, rc, "not valid %s", url ? "base64url" : "base64");
    push_bytes(L, out, len, secret);
    aurora_buf_free(lua_touserdata(L, -2));
    return 1;
}

/* crypto.b64encode(s) -> base64 (RFC 4648, padded) */
static int l_b64encode(lua_State *L)
{
    return b64encode(L, AURORA_B64_STD);
}

/* crypto.b64decode(s or handle [, {secret=true}]) -> bytes | nil, msg, "invalid" */
static int l_b64decode(lua_State *L)
{
    return b64decode(L, AURORA_B64_STD);
}

/* crypto.b64url_encode(s) -> base64url without padding */
static int l_b64url_encode(lua_State *L)
{
    return b64encode(L, AURORA_B64_URL);
}

/* crypto.b64url_decode(s [, {secret=true}]) -> bytes | nil, msg, "invalid"; padding optional */
static int l_b64url_decode(lua_State *L)
{
    return b64decode(L, AURORA_B64_URL);
}

/* crypto.equals(a, b) -> boolean, constant time for equal lengths; strings or secret handles */
static int l_equals(lua_State *L)
{
    const unsigned char *a, *b;
    size_t an, bn;

    aurora_secret_bytes(L, 1, &a, &an);
    aurora_secret_bytes(L, 2, &b, &bn);
    lua_pushboolean(L, aurora_crypto_equals(a, an, b, bn));
    return 1;
}

/* ---- AES-256-GCM ------------------------------------------------------------------------ */

static const unsigned char *check_aead_key(lua_State *L, int idx)
{
    const unsigned char *k;
    size_t n;

    aurora_secret_bytes(L, idx, &k, &n);
    luaL_argcheck(L, n == AURORA_CRYPTO_KEY_LEN, idx, "key must be 32 bytes");
    return k;
}

/* crypto.seal(key, plaintext [, aad]) -> nonce || ciphertext || tag */
static int l_seal(lua_State *L)
{
    const unsigned char *key = check_aead_key(L, 1), *pt;
    size_t n, alen = 0;
    const char *aad;
    unsigned char *out;
    luaL_Buffer b;
    int rc;

    aurora_secret_bytes(L, 2, &pt, &n);
    aad = luaL_optlstring(L, 3, NULL, &alen);
    luaL_argcheck(L, n <= AURORA_CRYPTO_SEAL_MAX, 2, "too long");
    out = (unsigned char *)luaL_buffinitsize(L, &b, n + AURORA_CRYPTO_SEAL_OVERHEAD);
    rc = aurora_crypto_seal(key, pt, n, aad, alen, out);
    if (rc)
        return aurora_vm_fail(L, rc, "cannot seal");
    luaL_pushresultsize(&b, n + AURORA_CRYPTO_SEAL_OVERHEAD);
    return 1;
}

/* crypto.open(key, sealed [, aad [, {secret=true}]]) -> plaintext | nil, msg, code */
static int l_open(lua_State *L)
{
    const unsigned char *key = check_aead_key(L, 1);
    size_t n, alen = 0, len = 0;
    const char *box = luaL_checklstring(L, 2, &n);
    const char *aad = luaL_optlstring(L, 3, NULL, &alen);
    int secret = want_secret(L, 4), rc;
    unsigned char *out;

    if (n < AURORA_CRYPTO_SEAL_OVERHEAD)
        return aurora_vm_fail(L, AURORA_E_INVALID, "sealed box is too short");
    out = scratch_room(L, n - AURORA_CRYPTO_SEAL_OVERHEAD);
    rc = aurora_crypto_open(key, box, n, aad, alen, out, &len);
    if (rc == AURORA_E_CRYPTO)
        return aurora_vm_fail(L, rc, "sealed box does not verify (wrong key, aad or data)");
    if (rc)
        return aurora_vm_fail(L, rc, "cannot open sealed box");
    push_bytes(L, out, len, secret);
    aurora_buf_free(lua_touserdata(L, -2));
    return 1;
}

/* ---- keys ------------------------------------------------------------------------------- */

/* crypto.load_key(pem [, password]) -> key | nil, msg, "invalid" */
static int l_load_key(lua_State *L)
{
    const unsigned char *pem, *pw = NULL;
    size_t n, pwlen = 0;
    aurora_crypto_key_ud *u;
    int rc;

    aurora_secret_bytes(L, 1, &pem, &n);
    if (!lua_isnoneornil(L, 2))
        aurora_secret_bytes(L, 2, &pw, &pwlen);
    u = new_key(L);
    rc = aurora_crypto_key_load(pem, n, pw, pwlen, &u->pkey);
    if (rc)
        return aurora_vm_fail(L, rc,
                              "no usable key in PEM (RSA 2048+ or EC P-256, right password)");
    return 1;
}

/* crypto.generate_key("rsa" [, bits] | "ec") -> key */
static int l_generate_key(lua_State *L)
{
    static const char *const types[] = {"rsa", "ec", NULL};
    int t = luaL_checkoption(L, 1, NULL, types), rc;
    lua_Integer bits = luaL_optinteger(L, 2, 2048);
    aurora_crypto_key_ud *u;

    luaL_argcheck(L, t != 0 || (bits >= AURORA_CRYPTO_RSA_MIN_BITS &&
                                bits <= AURORA_CRYPTO_RSA_MAX_BITS),
                  2, "RSA bits must be 2048 to 8192");
    u = new_key(L);
    rc = aurora_crypto_key_generate(types[t], (int)bits, &u->pkey);
    if (rc)
        return aurora_vm_fail(L, rc, "key generation failed");
    return 1;
}

/* k:type() -> "rsa" | "ec" */
static int l_key_type(lua_State *L)
{
    lua_pushstring(L, aurora_crypto_key_type(check_key(L, 1)));
    return 1;
}

/* k:is_private() -> boolean */
static int l_key_is_private(lua_State *L)
{
    lua_pushboolean(L, aurora_crypto_key_is_private(check_key(L, 1)));
    return 1;
}

/* k:public_pem() -> string */
static int l_key_public_pem(lua_State *L)
{
    EVP_PKEY *k = check_key(L, 1);
    aurora_buf *b = scratch(L, OUT_MAX, 0);
    int rc = aurora_crypto_key_public_pem(k, b);

    if (rc)
        return aurora_vm_fail(L, rc, "cannot write public key");
    lua_pushlstring(L, b->data, b->len);
    return 1;
}

/* k:private_pem() -> aurora.secret handle (PKCS#8 PEM); raises for a public key */
static int l_key_private_pem(lua_State *L)
{
    EVP_PKEY *k = check_key(L, 1);
    aurora_secret *s = NULL;
    aurora_buf *b;
    int rc;

    luaL_argcheck(L, aurora_crypto_key_is_private(k), 1, "key has no private part");
    b = scratch(L, OUT_MAX, 1);
    rc = aurora_crypto_key_private_pem(k, &s);
    if (rc)
        return aurora_vm_fail(L, rc, "cannot write private key");
    /* Move the bytes into the scratch buffer, so a raise while pushing still wipes them. */
    rc = aurora_buf_append(b, s->data, s->len);
    aurora_secret_free(&s);
    if (rc)
        return aurora_vm_fail(L, rc, "cannot write private key");
    aurora_secret_push(L, b->data, b->len);
    aurora_buf_free(b);
    return 1;
}

static aurora_crypto_alg check_alg(lua_State *L, int idx, EVP_PKEY *k)
{
    static const char *const names[] = {"RS256", "PS256", "ES256", NULL};
    aurora_crypto_alg alg = aurora_crypto_alg_parse(names[luaL_checkoption(L, idx, NULL, names)]);

    if (!aurora_crypto_key_fits(k, alg))
        luaL_argerror(L, idx, lua_pushfstring(L, "%s does not fit a %s key",
                                              aurora_crypto_alg_name(alg),
                                              aurora_crypto_key_type(k)));
    return alg;
}

/* k:sign(alg, data) -> signature; raises for a public key or an alg that does not fit */
static int l_key_sign(lua_State *L)
{
    EVP_PKEY *k = check_key(L, 1);
    aurora_crypto_alg alg = check_alg(L, 2, k);
    const unsigned char *p;
    aurora_buf *b;
    size_t n;
    int rc;

    aurora_secret_bytes(L, 3, &p, &n);
    luaL_argcheck(L, aurora_crypto_key_is_private(k), 1, "key has no private part");
    b = scratch(L, OUT_MAX, 0);
    rc = aurora_crypto_sign(k, alg, p, n, b);
    if (rc)
        return aurora_vm_fail(L, rc, "signing failed");
    lua_pushlstring(L, b->data, b->len);
    return 1;
}

/* k:verify(alg, data, sig) -> boolean */
static int l_key_verify(lua_State *L)
{
    EVP_PKEY *k = check_key(L, 1);
    aurora_crypto_alg alg = check_alg(L, 2, k);
    const unsigned char *p;
    size_t n, sn;
    const char *sig;
    int rc;

    aurora_secret_bytes(L, 3, &p, &n);
    sig = luaL_checklstring(L, 4, &sn);
    rc = aurora_crypto_verify(k, alg, p, n, (const unsigned char *)sig, sn);
    if (rc && rc != AURORA_E_CRYPTO)
        return aurora_vm_fail(L, rc, "verification failed to run");
    lua_pushboolean(L, rc == 0);
    return 1;
}

/* k:public_jwk() -> {kty="RSA", n=, e=} | {kty="EC", crv="P-256", x=, y=} */
static int l_key_public_jwk(lua_State *L)
{
    EVP_PKEY *k = check_key(L, 1);
    int rsa = strcmp(aurora_crypto_key_type(k), "rsa") == 0, rc;
    aurora_buf *a = scratch(L, OUT_MAX, 0), *b = scratch(L, OUT_MAX, 0);

    rc = aurora_crypto_key_jwk(k, a, b);
    if (rc)
        return aurora_vm_fail(L, rc, "cannot export public key");
    lua_createtable(L, 0, 4);
    lua_pushstring(L, rsa ? "RSA" : "EC");
    lua_setfield(L, -2, "kty");
    if (!rsa) {
        lua_pushliteral(L, "P-256");
        lua_setfield(L, -2, "crv");
    }
    lua_pushlstring(L, a->data, a->len);
    lua_setfield(L, -2, rsa ? "n" : "x");
    lua_pushlstring(L, b->data, b->len);
    lua_setfield(L, -2, rsa ? "e" : "y");
    return 1;
}

static int l_key_close(lua_State *L)
{
    aurora_crypto_key_ud *u = luaL_checkudata(L, 1, AURORA_CRYPTO_KEY_MT);

    aurora_crypto_key_free(&u->pkey);
    return 0;
}

static int l_key_tostring(lua_State *L)
{
    aurora_crypto_key_ud *u = luaL_checkudata(L, 1, AURORA_CRYPTO_KEY_MT);

    if (!u->pkey)
        lua_pushliteral(L, "aurora.crypto.key(closed)");
    else
        lua_pushfstring(L, "aurora.crypto.key(%s)", aurora_crypto_key_type(u->pkey));
    return 1;
}

/* ---- certificates ----------------------------------------------------------------------- */

/* crypto.load_cert(pem) -> cert | nil, msg, "invalid" */
static int l_load_cert(lua_State *L)
{
    size_t n;
    const char *pem = luaL_checklstring(L, 1, &n);
    aurora_crypto_cert_ud *u = new_cert(L);
    int rc = aurora_crypto_cert_load(pem, n, &u->x509);

    if (rc)
        return aurora_vm_fail(L, rc, "no certificate in PEM");
    return 1;
}

/* c:thumbprint("sha1" | "sha256") -> raw digest of the DER */
static int l_cert_thumbprint(lua_State *L)
{
    static const char *const mds[] = {"sha1", "sha256", NULL};
    X509 *c = check_cert(L, 1);
    const char *md = mds[luaL_checkoption(L, 2, NULL, mds)];
    unsigned char out[AURORA_CRYPTO_SHA256_LEN];
    size_t n = 0;
    int rc = aurora_crypto_cert_thumbprint(c, md, out, &n);

    if (rc)
        return aurora_vm_fail(L, rc, "digest failed");
    lua_pushlstring(L, (const char *)out, n);
    return 1;
}

/* Shared body of x5t and x5t_s256: base64url of a thumbprint. */
static int x5t(lua_State *L, const char *md)
{
    X509 *c = check_cert(L, 1);
    unsigned char out[AURORA_CRYPTO_SHA256_LEN];
    char enc[64];
    size_t n = 0;
    int rc = aurora_crypto_cert_thumbprint(c, md, out, &n);

    if (rc)
        return aurora_vm_fail(L, rc, "digest failed");
    aurora_crypto_b64_encode(out, n, AURORA_B64_URL, enc);
    lua_pushstring(L, enc);
    return 1;
}

/* c:x5t() -> base64url(SHA-1(DER)) */
static int l_cert_x5t(lua_State *L)
{
    return x5t(L, "sha1");
}

/* c:x5t_s256() -> base64url(SHA-256(DER)) */
static int l_cert_x5t_s256(lua_State *L)
{
    return x5t(L, "sha256");
}

static int cert_name(lua_State *L, int issuer)
{
    X509 *c = check_cert(L, 1);
    aurora_buf *b = scratch(L, OUT_MAX, 0);
    int rc = aurora_crypto_cert_name(c, issuer, b);

    if (rc)
        return aurora_vm_fail(L, rc, "cannot print name");
    lua_pushlstring(L, b->data ? b->data : "", b->len);
    return 1;
}

/* c:subject() -> "CN=...,O=..." */
static int l_cert_subject(lua_State *L)
{
    return cert_name(L, 0);
}

/* c:issuer() -> "CN=...,O=..." */
static int l_cert_issuer(lua_State *L)
{
    return cert_name(L, 1);
}

/* c:common_name() -> string | nil (no CN) */
static int l_cert_common_name(lua_State *L)
{
    X509 *c = check_cert(L, 1);
    aurora_buf *b = scratch(L, OUT_MAX, 0);
    int rc = aurora_crypto_cert_common_name(c, b);

    if (rc == AURORA_E_NOT_FOUND)
        return 0;
    if (rc)
        return aurora_vm_fail(L, rc, "cannot read common name");
    lua_pushlstring(L, b->data ? b->data : "", b->len);
    return 1;
}

static int cert_time(lua_State *L, int after)
{
    X509 *c = check_cert(L, 1);
    int64_t nb = 0, na = 0;
    int rc = aurora_crypto_cert_times(c, &nb, &na);

    if (rc)
        return aurora_vm_fail(L, rc, "certificate has a malformed validity period");
    lua_pushinteger(L, (lua_Integer)(after ? na : nb));
    return 1;
}

/* c:not_before() -> unix seconds */
static int l_cert_not_before(lua_State *L)
{
    return cert_time(L, 0);
}

/* c:not_after() -> unix seconds */
static int l_cert_not_after(lua_State *L)
{
    return cert_time(L, 1);
}

/* c:serial() -> lowercase hex */
static int l_cert_serial(lua_State *L)
{
    X509 *c = check_cert(L, 1);
    aurora_buf *b = scratch(L, OUT_MAX, 0);
    int rc = aurora_crypto_cert_serial(c, b);

    if (rc)
        return aurora_vm_fail(L, rc, "cannot read serial");
    lua_pushlstring(L, b->data, b->len);
    return 1;
}

static int encoded(lua_State *L, int der)
{
    X509 *c = check_cert(L, 1);
    aurora_buf *b = scratch(L, OUT_MAX, 0);
    int rc = der ? aurora_crypto_cert_der(c, b) : aurora_crypto_cert_pem(c, b);

    if (rc)
        return aurora_vm_fail(L, rc, "cannot encode certificate");
    lua_pushlstring(L, b->data, b->len);
    return 1;
}

/* c:pem() -> PEM text */
static int l_cert_pem(lua_State *L)
{
    return encoded(L, 0);
}

/* c:der() -> DER bytes */
static int l_cert_der(lua_State *L)
{
    return encoded(L, 1);
}

/* c:public_key() -> key | nil, msg, "invalid" */
static int l_cert_public_key(lua_State *L)
{
    X509 *c = check_cert(L, 1);
    aurora_crypto_key_ud *u = new_key(L);
    int rc = aurora_crypto_cert_public_key(c, &u->pkey);

    if (rc)
        return aurora_vm_fail(L, rc, "certificate key is not RSA 2048+ or EC P-256");
    return 1;
}

/* c:verify_signed_by(ca) -> boolean */
static int l_cert_verify_signed_by(lua_State *L)
{
    X509 *c = check_cert(L, 1), *ca = check_cert(L, 2);

    lua_pushboolean(L, aurora_crypto_cert_signed_by(c, ca));
    return 1;
}

/* c:sans() -> {"DNS:x", "IP:1.2.3.4", ...} */
static int l_cert_sans(lua_State *L)
{
    X509 *c = check_cert(L, 1);
    aurora_buf *b = scratch(L, OUT_MAX, 0);
    size_t count = 0, i, off = 0;
    int rc = aurora_crypto_cert_sans(c, b, &count);

    if (rc)
        return aurora_vm_fail(L, rc, "cannot read subject alternative names");
    lua_createtable(L, (int)count, 0);
    for (i = 0; i < count; i++) {
        size_t len = strlen(b->data + off);

        lua_pushlstring(L, b->data + off, len);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
        off += len + 1;
    }
    return 1;
}

static int l_cert_close(lua_State *L)
{
    aurora_crypto_cert_ud *u = luaL_checkudata(L, 1, AURORA_CRYPTO_CERT_MT);

    aurora_crypto_cert_free(&u->x509);
    return 0;
}

static int l_cert_tostring(lua_State *L)
{
    aurora_crypto_cert_ud *u = luaL_checkudata(L, 1, AURORA_CRYPTO_CERT_MT);

    lua_pushstring(L, u->x509 ? "aurora.crypto.cert" : "aurora.crypto.cert(closed)");
    return 1;
}

/* ---- issuing ---------------------------------------------------------------------------- */

/* Reads spec.subject (table at idx) into attr/value pairs, in the conventional DN order. Values
 * are strings or lists of strings. Returns the number of pairs; raises on misuse. The strings
 * stay anchored by the spec table. */
static size_t read_subject(lua_State *L, int idx, const char **pairs)
{
    static const char *const attrs[] = {"C", "ST", "L", "O", "OU", "CN", "emailAddress", NULL};
    size_t n = 0, i, known = 0;
    lua_Integer j;

    for (i = 0; attrs[i]; i++) {
        int t = lua_getfield(L, idx, attrs[i]);

        if (t == LUA_TSTRING) {
            luaL_argcheck(L, n < SUBJECT_MAX, 1, "subject: too many values");
            pairs[2 * n] = attrs[i];
            pairs[2 * n++ + 1] = lua_tostring(L, -1);
            known++;
        } else if (t == LUA_TTABLE) {
            for (j = 1; lua_rawgeti(L, -1, j) == LUA_TSTRING; j++) {
                luaL_argcheck(L, n < SUBJECT_MAX, 1, "subject: too many values");
                pairs[2 * n] = attrs[i];
                pairs[2 * n++ + 1] = lua_tostring(L, -1);
                lua_pop(L, 1);
            }
            luaL_argcheck(L, lua_isnil(L, -1), 1, "subject: values must be strings");
            lua_pop(L, 1);
            known++;
        } else if (t != LUA_TNIL) {
            luaL_argerror(L, 1, "subject: values must be strings or lists of strings");
        }
        lua_pop(L, 1);
    }
    /* Every key must be one we know, so a typo ("cn") is not silently dropped. */
    lua_pushnil(L);
    for (i = 0; lua_next(L, idx); i++)
        lua_pop(L, 1);
    luaL_argcheck(L, i == known, 1, "subject: unknown attribute (use C ST L O OU CN emailAddress)");
    return n;
}

/* Reads spec.sans (table at idx). Returns the count; raises on misuse. */
static size_t read_sans(lua_State *L, int idx, const char **sans)
{
    size_t n = 0;
    lua_Integer j;

    for (j = 1; lua_rawgeti(L, idx, j) == LUA_TSTRING; j++) {
        luaL_argcheck(L, n < SANS_MAX, 1, "sans: too many names");
        sans[n++] = lua_tostring(L, -1);
        lua_pop(L, 1);
    }
    luaL_argcheck(L, lua_isnil(L, -1), 1, "sans: names must be strings");
    lua_pop(L, 1);
    return n;
}

/* Fails unless spec (table at 1) has only the fields we know. */
static void check_spec_fields(lua_State *L)
{
    static const char *const fields[] = {"key",   "subject", "ca_cert", "ca_key",
                                         "days",  "is_ca",   "sans",    "usage",
                                         "not_before", "not_after", NULL};
    size_t i;

    lua_pushnil(L);
    while (lua_next(L, 1)) {
        lua_pop(L, 1);
        for (i = 0; fields[i]; i++)
            if (lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), fields[i]) == 0)
                break;
        if (!fields[i])
            luaL_argerror(L, 1, lua_pushfstring(L, "unknown field '%s'", luaL_tolstring(L, -1,
                                                                                       NULL)));
    }
}

/* crypto.issue_cert{key=, subject=, ca_cert=, ca_key=, days=, is_ca=, sans=, usage=,
 * not_before=, not_after=} -> cert */
static int l_issue_cert(lua_State *L)
{
    static const char *const usages[] = {"server", "client", "ca", NULL};
    const char *subject[2 * SUBJECT_MAX], *sans[SANS_MAX];
    aurora_cert_spec spec;
    aurora_crypto_cert_ud *u;
    lua_Integer days;
    int is_ca, rc;

    luaL_checktype(L, 1, LUA_TTABLE);
    check_spec_fields(L);
    memset(&spec, 0, sizeof(spec));
    lua_settop(L, 1);
    lua_getfield(L, 1, "key");         /* 2 */
    lua_getfield(L, 1, "subject");     /* 3 */
    lua_getfield(L, 1, "ca_cert");     /* 4 */
    lua_getfield(L, 1, "ca_key");      /* 5 */
    lua_getfield(L, 1, "days");        /* 6 */
    lua_getfield(L, 1, "is_ca");       /* 7 */
    lua_getfield(L, 1, "sans");        /* 8 */
    lua_getfield(L, 1, "usage");       /* 9 */
    lua_getfield(L, 1, "not_before");  /* 10 */
    lua_getfield(L, 1, "not_after");   /* 11 */
    luaL_argcheck(L, luaL_testudata(L, 2, AURORA_CRYPTO_KEY_MT), 1, "key: key expected");
    spec.key = check_key(L, 2);
    if (!lua_isnil(L, 3)) {
        luaL_argcheck(L, lua_istable(L, 3), 1, "subject: table expected");
        spec.subject = subject;
        spec.subject_n = read_subject(L, 3, subject);
    }
    luaL_argcheck(L, lua_isnil(L, 4) == lua_isnil(L, 5), 1, "ca_cert and ca_key go together");
    if (!lua_isnil(L, 4)) {
        luaL_argcheck(L, luaL_testudata(L, 4, AURORA_CRYPTO_CERT_MT), 1, "ca_cert: cert expected");
        luaL_argcheck(L, luaL_testudata(L, 5, AURORA_CRYPTO_KEY_MT), 1, "ca_key: key expected");
        spec.ca_cert = check_cert(L, 4);
        spec.ca_key = check_key(L, 5);
    }
    days = lua_isnil(L, 6) ? 365 : lua_tointeger(L, 6);
    luaL_argcheck(L, days >= 1 && days <= 36500, 1, "days: integer 1 to 36500 expected");
    spec.days = (int)days;
    if (!lua_isnil(L, 10) || !lua_isnil(L, 11)) {
        luaL_argcheck(L, lua_isnil(L, 6), 1, "days and not_before/not_after exclude each other");
        luaL_argcheck(L, lua_isinteger(L, 10) && lua_isinteger(L, 11), 1,
                      "not_before and not_after: integers (Unix seconds) expected, both");
        spec.not_before = (int64_t)lua_tointeger(L, 10);
        spec.not_after = (int64_t)lua_tointeger(L, 11);
        /* Years 1 to 9999 are what an X.509 time can hold. */
        luaL_argcheck(L, spec.not_before > -62135596800LL && spec.not_after < 253402300800LL &&
                             spec.not_before < spec.not_after,
                      1, "not_before must be before not_after (years 1 to 9999)");
    }
    is_ca = lua_toboolean(L, 7);
    if (!lua_isnil(L, 8)) {
        luaL_argcheck(L, lua_istable(L, 8), 1, "sans: list expected");
        spec.sans = sans;
        spec.san_n = read_sans(L, 8, sans);
    }
    spec.usage = lua_isnil(L, 9) ? (is_ca ? AURORA_CERT_CA : AURORA_CERT_SERVER)
                                 : (aurora_cert_usage)luaL_checkoption(L, 9, NULL, usages);
    luaL_argcheck(L, !is_ca || spec.usage == AURORA_CERT_CA, 1, "is_ca contradicts usage");
    u = new_cert(L);
    rc = aurora_crypto_cert_issue(&spec, &u->x509);
    if (rc)
        return aurora_vm_fail(L, rc,
                              "cannot issue certificate (check subject values, sans, that the "
                              "signing key is private and ca_key matches a CA ca_cert)");
    return 1;
}

int luaopen_aurora_crypto(lua_State *L)
{
    static const luaL_Reg key_methods[] = {
        {"type", l_key_type},
        {"is_private", l_key_is_private},
        {"public_pem", l_key_public_pem},
        {"private_pem", l_key_private_pem},
        {"sign", l_key_sign},
        {"verify", l_key_verify},
        {"public_jwk", l_key_public_jwk},
        {"close", l_key_close},
        {NULL, NULL},
    };
    static const luaL_Reg key_meta[] = {
        {"__gc", l_key_close},
        {"__close", l_key_close},
        {"__tostring", l_key_tostring},
        {NULL, NULL},
    };
    static const luaL_Reg cert_methods[] = {
        {"thumbprint", l_cert_thumbprint},
        {"x5t", l_cert_x5t},
        {"x5t_s256", l_cert_x5t_s256},
        {"subject", l_cert_subject},
        {"issuer", l_cert_issuer},
        {"common_name", l_cert_common_name},
        {"not_before", l_cert_not_before},
        {"not_after", l_cert_not_after},
        {"serial", l_cert_serial},
        {"pem", l_cert_pem},
        {"der", l_cert_der},
        {"public_key", l_cert_public_key},
        {"verify_signed_by", l_cert_verify_signed_by},
        {"sans", l_cert_sans},
        {"close", l_cert_close},
        {NULL, NULL},
    };
    static const luaL_Reg cert_meta[] = {
        {"__gc", l_cert_close},
        {"__close", l_cert_close},
        {"__tostring", l_cert_tostring},
        {NULL, NULL},
    };
    static const luaL_Reg funcs[] = {
        {"random", l_random},
        {"sha256", l_sha256},
        {"sha1", l_sha1},
        {"hmac_sha256", l_hmac_sha256},
        {"hex", l_hex},
        {"b64encode", l_b64encode},
        {"b64decode", l_b64decode},
        {"b64url_encode", l_b64url_encode},
        {"b64url_decode", l_b64url_decode},
        {"equals", l_equals},
        {"seal", l_seal},
        {"open", l_open},
        {"load_key", l_load_key},
        {"generate_key", l_generate_key},
        {"load_cert", l_load_cert},
        {"issue_cert", l_issue_cert},
        {NULL, NULL},
    };

    if (luaL_newmetatable(L, AURORA_CRYPTO_KEY_MT)) {
        luaL_setfuncs(L, key_meta, 0);
        luaL_newlib(L, key_methods);
        lua_setfield(L, -2, "__index");
        lua_pushliteral(L, "locked");
        lua_setfield(L, -2, "__metatable");
    }
    lua_pop(L, 1);
    if (luaL_newmetatable(L, AURORA_CRYPTO_CERT_MT)) {
        luaL_setfuncs(L, cert_meta, 0);
        luaL_newlib(L, cert_methods);
        lua_setfield(L, -2, "__index");
        lua_pushliteral(L, "locked");
        lua_setfield(L, -2, "__metatable");
    }
    lua_pop(L, 1);
    /* The secret handles this module returns get their metatable from aurora.secret, which
     * registers it only when loaded. */
    lua_getglobal(L, "require");
    lua_pushliteral(L, "aurora.secret");
    lua_call(L, 1, 0);
    luaL_newlib(L, funcs);
    return 1;
}

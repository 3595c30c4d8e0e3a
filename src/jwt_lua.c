/*
 * jwt_lua.c: the Lua module aurora.jwt over jwt.c. It parses and writes header and claims with
 * the C JSON API (json.h), checks signatures with keys and certificates of aurora.crypto, and
 * applies the claim rules (alg allow-list, exp, nbf, aud, iss). The "none" algorithm is never
 * accepted, whatever the allow-list says. Tokens may arrive as strings or aurora.secret handles,
 * and sign can return a handle. Decoded segments live in Lua strings and C buffers in scratch
 * userdata, so a raise leaks nothing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lauxlib.h>
#include <lua.h>

#include "aurora/aurora.h"
#include "aurora/buf.h"
#include "aurora/crypto.h"
#include "aurora/json.h"
#include "aurora/jwt.h"
#include "aurora/secret.h"
#include "aurora/vm.h"

#define SCRATCH_MT "aurora.jwt.scratch"
#define DEFAULT_LEEWAY 60.0

static int scratch_gc(lua_State *L)
{
    aurora_buf_free(luaL_checkudata(L, 1, SCRATCH_MT));
    return 0;
}

/* Pushes a userdata owning an empty buffer of at most max bytes, freed (wiped when secret) by the
 * GC or an explicit aurora_buf_free. Stack: pushes 1; may raise (out of memory). */
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

/* Pushes opts[name] (nil when opts at idx is absent) and checks its type is t or nil. Stack:
 * pushes 1. */
static int opt_field(lua_State *L, int idx, const char *name, int t)
{
    int got = lua_isnoneornil(L, idx) ? (lua_pushnil(L), LUA_TNIL) : lua_getfield(L, idx, name);

    if (got != LUA_TNIL && got != t)
        luaL_argerror(L, idx, lua_pushfstring(L, "option '%s' must be a %s", name,
                                              lua_typename(L, t)));
    return got;
}

/*
 * Decodes a base64url segment holding a JSON object and pushes it as a table. Returns 0 (pushes
 * 1) or AURORA_E_INVALID with a message in errmsg (pushes nothing).
 */
static int push_segment(lua_State *L, const char *seg, size_t n, char *errmsg, size_t errlen)
{
    luaL_Buffer b;
    char *p = luaL_buffinitsize(L, &b, aurora_crypto_b64_decoded_max(n));
    const char *s;
    size_t len = 0, i = 0;
    int rc = aurora_crypto_b64_decode(seg, n, AURORA_B64_URL, (unsigned char *)p, &len);

    luaL_pushresultsize(&b, rc ? 0 : len);
    if (rc) {
        lua_pop(L, 1);
        snprintf(errmsg, errlen, "segment is not valid base64url");
        return AURORA_E_INVALID;
    }
    s = lua_tolstring(L, -1, &len);
    while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n'))
        i++;
    if (i == len || s[i] != '{') {
        lua_pop(L, 1);
        snprintf(errmsg, errlen, "segment is not a JSON object");
        return AURORA_E_INVALID;
    }
    rc = aurora_json_decode(L, s, len, errmsg, errlen);
    if (rc) {
        lua_pop(L, 1);
        return AURORA_E_INVALID;
    }
    lua_remove(L, -2);
    return 0;
}

/* Pushes header and claims of the token. Returns 0 or an aurora_err with errmsg. Stack: pushes
 * 2 on success, nothing on failure. */
static int push_parts(lua_State *L, const aurora_jwt_parts *p, char *errmsg, size_t errlen)
{
    char inner[160];
    int rc = push_segment(L, p->header, p->header_len, inner, sizeof(inner));

    if (rc) {
        snprintf(errmsg, errlen, "token header: %s", inner);
        return rc;
    }
    rc = push_segment(L, p->payload, p->payload_len, inner, sizeof(inner));
    if (rc) {
        lua_pop(L, 1);
        snprintf(errmsg, errlen, "token claims: %s", inner);
    }
    return rc;
}

static const char *split_message(int rc)
{
    return rc == AURORA_E_TOO_LARGE ? "token is longer than 16 KiB"
                                    : "token is not three base64url segments";
}

/* jwt.decode(token) -> header, claims | nil, msg, code. Does not verify anything. */
static int l_decode(lua_State *L)
{
    const unsigned char *tok;
    aurora_jwt_parts p;
    char msg[200];
    size_t n;
    int rc;

    aurora_secret_bytes(L, 1, &tok, &n);
    rc = aurora_jwt_split((const char *)tok, n, &p);
    if (rc)
        return aurora_vm_fail(L, rc, "%s", split_message(rc));
    rc = push_parts(L, &p, msg, sizeof(msg));
    if (rc)
        return aurora_vm_fail(L, rc, "%s", msg);
    return 2;
}

/* The key of a key handle at idx, or of a certificate's public key (pushed as a new key handle,
 * which keeps it alive). Returns NULL after pushing nil, msg, code (3 values). */
static EVP_PKEY *verify_key(lua_State *L, int idx)
{
    aurora_crypto_key_ud *k = luaL_testudata(L, idx, AURORA_CRYPTO_KEY_MT);
    aurora_crypto_cert_ud *c;

    if (k)
        return k->pkey;
    c = luaL_testudata(L, idx, AURORA_CRYPTO_CERT_MT);
    k = lua_newuserdatauv(L, sizeof(*k), 0);
    k->pkey = NULL;
    luaL_setmetatable(L, AURORA_CRYPTO_KEY_MT);
    if (aurora_crypto_cert_public_key(c->x509, &k->pkey)) {
        aurora_vm_fail(L, AURORA_E_INVALID, "certificate key is not RSA 2048+ or EC P-256");
        return NULL;
    }
    return k->pkey;
}

/* 1 when the string at got equals want (a string or a list of strings, at index want). */
static int one_of(lua_State *L, int got, int want)
{
    lua_Integer i;
    int eq = 0;

    if (lua_type(L, got) != LUA_TSTRING)
        return 0;
    if (lua_type(L, want) == LUA_TSTRING)
        return lua_rawequal(L, got, want);
    for (i = 1; !eq && lua_rawgeti(L, want, i) != LUA_TNIL; i++) {
        eq = lua_type(L, -1) == LUA_TSTRING && lua_rawequal(L, got, -1);
        lua_pop(L, 1);
    }
    lua_pop(L, eq ? 0 : 1);
    return eq;
}

/* 1 when the claim at got (a string or a list of strings) shares a value with want. */
static int any_of(lua_State *L, int got, int want)
{
    lua_Integer i;
    int hit = 0;

    if (lua_type(L, got) != LUA_TTABLE)
        return one_of(L, got, want);
    for (i = 1; !hit && lua_rawgeti(L, got, i) != LUA_TNIL; i++) {
        hit = one_of(L, lua_gettop(L), want);
        lua_pop(L, 1);
    }
    if (!hit)
        lua_pop(L, 1);
    return hit;
}

/* Reads a NumericDate claim of the table at idx. Returns 0 (absent, *has = 0), 0 with *has = 1,
 * or AURORA_E_INVALID when it is not a number. */
static int numeric_claim(lua_State *L, int idx, const char *name, int *has, double *v)
{
    int t = lua_getfield(L, idx, name);

    *has = t != LUA_TNIL;
    *v = lua_tonumber(L, -1);
    lua_pop(L, 1);
    return *has && t != LUA_TNUMBER ? AURORA_E_INVALID : 0;
}

/* The verify options, read before anything is allocated. Values stay on the stack at the
 * recorded indices. */
typedef struct vopts {
    unsigned algs; /* bit (1 << aurora_crypto_alg) per allowed algorithm */
    double now, leeway;
    int aud, iss;  /* stack indices, 0 when not given */
} vopts;

/* Pushes opts[name] when it is a string or a list of strings and returns its stack index, or
 * returns 0 (pushing nothing) when it is absent. Raises on another type. */
static int opt_list(lua_State *L, int idx, const char *name)
{
    int t = lua_isnoneornil(L, idx) ? LUA_TNIL : lua_getfield(L, idx, name);

    if (t == LUA_TNIL) {
        if (!lua_isnoneornil(L, idx))
            lua_pop(L, 1);
        return 0;
    }
    if (t != LUA_TSTRING && t != LUA_TTABLE)
        luaL_argerror(L, idx, lua_pushfstring(L, "option '%s' must be a string or a list", name));
    return lua_gettop(L);
}

static void read_vopts(lua_State *L, int idx, vopts *o)
{
    static const char *const names[] = {"algs", "leeway", "now", "aud", "iss", NULL};
    lua_Integer i;
    int t;

    if (!lua_isnoneornil(L, idx)) {
        luaL_checktype(L, idx, LUA_TTABLE);
        aurora_vm_check_options(L, idx, names);
    }
    o->algs = 1u << AURORA_ALG_RS256 | 1u << AURORA_ALG_ES256;
    if (opt_field(L, idx, "algs", LUA_TTABLE) == LUA_TTABLE) {
        o->algs = 0;
        for (i = 1; (t = lua_rawgeti(L, -1, i)) != LUA_TNIL; i++) {
            if (t != LUA_TSTRING)
                luaL_argerror(L, idx, "option 'algs' must be a list of strings");
            /* Unknown names, "none" included, select nothing. */
            o->algs |= (1u << aurora_crypto_alg_parse(lua_tostring(L, -1))) &
                       ~(1u << AURORA_ALG_UNKNOWN);
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    opt_field(L, idx, "leeway", LUA_TNUMBER);
    o->leeway = lua_isnil(L, -1) ? DEFAULT_LEEWAY : lua_tonumber(L, -1);
    luaL_argcheck(L, o->leeway >= 0, idx, "option 'leeway' must not be negative");
    opt_field(L, idx, "now", LUA_TNUMBER);
    o->now = lua_isnil(L, -1) ? (double)time(NULL) : lua_tonumber(L, -1);
    lua_pop(L, 2);
    o->aud = opt_list(L, idx, "aud");
    o->iss = opt_list(L, idx, "iss");
}

/* Checks alg of the header table at h against the allow-list. Returns 0 or pushes nothing and
 * returns AURORA_E_INVALID with errmsg; sets *alg. */
static int check_alg(lua_State *L, int h, const vopts *o, EVP_PKEY *k, aurora_crypto_alg *alg,
                     char *errmsg, size_t errlen)
{
    const char *name;
    int t = lua_getfield(L, h, "alg");

    name = t == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    *alg = aurora_crypto_alg_parse(name);
    lua_pop(L, 1);
    if (lua_getfield(L, h, "crit") != LUA_TNIL) {
        lua_pop(L, 1);
        snprintf(errmsg, errlen, "token header has critical extensions we do not know");
        return AURORA_E_INVALID;
    }
    lua_pop(L, 1);
    if (*alg == AURORA_ALG_UNKNOWN || !(o->algs & 1u << *alg)) {
        snprintf(errmsg, errlen, "token algorithm is not allowed");
        return AURORA_E_INVALID;
    }
    if (!aurora_crypto_key_fits(k, *alg)) {
        snprintf(errmsg, errlen, "token algorithm %s does not fit a %s key",
                 aurora_crypto_alg_name(*alg), aurora_crypto_key_type(k));
        return AURORA_E_INVALID;
    }
    return 0;
}

/* Applies exp, nbf, iss and aud to the claims table at c. Returns 0 or an aurora_err with
 * errmsg. Stack: unchanged. */
static int check_claims(lua_State *L, int c, const vopts *o, char *errmsg, size_t errlen)
{
    int has_exp, has_nbf, rc;
    double exp, nbf;

    if (numeric_claim(L, c, "exp", &has_exp, &exp) || numeric_claim(L, c, "nbf", &has_nbf, &nbf)) {
        snprintf(errmsg, errlen, "token exp or nbf is not a number");
        return AURORA_E_INVALID;
    }
    rc = aurora_jwt_check_times(o->now, o->leeway, has_exp, exp, has_nbf, nbf);
    if (rc) {
        snprintf(errmsg, errlen, rc == AURORA_E_EXPIRED ? "token has expired"
                                                        : "token is not valid yet (nbf)");
        return rc;
    }
    if (o->iss) {
        lua_getfield(L, c, "iss");
        rc = one_of(L, lua_gettop(L), o->iss) ? 0 : AURORA_E_DENIED;
        lua_pop(L, 1);
        if (rc) {
            snprintf(errmsg, errlen, "token issuer is not accepted");
            return rc;
        }
    }
    if (o->aud) {
        lua_getfield(L, c, "aud");
        rc = any_of(L, lua_gettop(L), o->aud) ? 0 : AURORA_E_DENIED;
        lua_pop(L, 1);
        if (rc) {
            snprintf(errmsg, errlen, "token audience is not accepted");
            return rc;
        }
    }
    return 0;
}

/* jwt.verify(token, key_or_cert [, opts]) -> claims, header | nil, msg, code */
static int l_verify(lua_State *L)
{
    const unsigned char *tok;
    aurora_crypto_alg alg;
    aurora_jwt_parts p;
    EVP_PKEY *k;
    char msg[200];
    vopts o;
    size_t n;
    int rc, top;

    aurora_secret_bytes(L, 1, &tok, &n);
    if (!luaL_testudata(L, 2, AURORA_CRYPTO_CERT_MT)) {
        aurora_crypto_key_ud *u = luaL_testudata(L, 2, AURORA_CRYPTO_KEY_MT);

        if (!u)
            luaL_typeerror(L, 2, "aurora.crypto.key or aurora.crypto.cert");
        luaL_argcheck(L, u->pkey, 2, "attempt to use a closed key");
    } else {
        luaL_argcheck(L, ((aurora_crypto_cert_ud *)lua_touserdata(L, 2))->x509, 2,
                      "attempt to use a closed certificate");
    }
    read_vopts(L, 3, &o);
    k = verify_key(L, 2);
    if (!k)
        return 3;
    rc = aurora_jwt_split((const char *)tok, n, &p);
    if (rc)
        return aurora_vm_fail(L, rc, "%s", split_message(rc));
    rc = push_segment(L, p.header, p.header_len, msg, sizeof(msg));
    if (rc)
        return aurora_vm_fail(L, rc, "token header: %s", msg);
    top = lua_gettop(L);
    rc = check_alg(L, top, &o, k, &alg, msg, sizeof(msg));
    if (rc)
        return aurora_vm_fail(L, rc, "%s", msg);
    /* The claims are parsed only once the signature has been checked. */
    rc = aurora_jwt_verify_sig((const char *)tok, n, k, aurora_crypto_alg_name(alg));
    if (rc == AURORA_E_CRYPTO)
        return aurora_vm_fail(L, rc, "token signature does not verify");
    if (rc)
        return aurora_vm_fail(L, rc, "token signature cannot be checked");
    rc = push_segment(L, p.payload, p.payload_len, msg, sizeof(msg));
    if (rc)
        return aurora_vm_fail(L, rc, "token claims: %s", msg);
    rc = check_claims(L, top + 1, &o, msg, sizeof(msg));
    if (rc)
        return aurora_vm_fail(L, rc, "%s", msg);
    lua_pushvalue(L, top);
    return 2;
}

/* Builds the header table from opts (at idx, may be absent) and pushes it. Stack: pushes 1. */
static void push_header(lua_State *L, int idx, aurora_crypto_alg alg)
{
    static const char *const copied[] = {"kid", "x5t", "x5t#S256", NULL};
    size_t i;

    lua_createtable(L, 0, 4);
    lua_pushstring(L, aurora_crypto_alg_name(alg));
    lua_setfield(L, -2, "alg");
    if (opt_field(L, idx, "typ", LUA_TSTRING) == LUA_TNIL) {
        lua_pop(L, 1);
        lua_pushliteral(L, "JWT");
    }
    lua_setfield(L, -2, "typ");
    for (i = 0; copied[i]; i++) {
        opt_field(L, idx, copied[i], LUA_TSTRING);
        lua_setfield(L, -2, copied[i]);
    }
    if (opt_field(L, idx, "header", LUA_TTABLE) == LUA_TTABLE) {
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            luaL_argcheck(L, lua_type(L, -2) == LUA_TSTRING, idx,
                          "option 'header' must have string keys");
            luaL_argcheck(L, strcmp(lua_tostring(L, -2), "alg") != 0, idx,
                          "option 'header' cannot set alg (use option 'alg')");
            lua_pushvalue(L, -2);
            lua_insert(L, -2);
            lua_settable(L, -5);
        }
    }
    lua_pop(L, 1);
}

/* jwt.sign(claims, key [, opts]) -> token (string, or a secret handle with opts.secret) */
static int l_sign(lua_State *L)
{
    static const char *const names[] = {"alg", "kid", "x5t", "x5t#S256", "typ", "header",
                                        "secret", NULL};
    aurora_crypto_key_ud *u;
    aurora_buf *hj, *cj, *tok;
    aurora_crypto_alg alg;
    char msg[200];
    int secret, rc;

    luaL_checktype(L, 1, LUA_TTABLE);
    u = luaL_checkudata(L, 2, AURORA_CRYPTO_KEY_MT);
    luaL_argcheck(L, u->pkey, 2, "attempt to use a closed key");
    luaL_argcheck(L, aurora_crypto_key_is_private(u->pkey), 2, "key has no private part");
    if (!lua_isnoneornil(L, 3)) {
        luaL_checktype(L, 3, LUA_TTABLE);
        aurora_vm_check_options(L, 3, names);
    }
    lua_settop(L, 3);
    alg = aurora_crypto_key_default_alg(u->pkey);
    if (opt_field(L, 3, "alg", LUA_TSTRING) == LUA_TSTRING) {
        alg = aurora_crypto_alg_parse(lua_tostring(L, -1));
        luaL_argcheck(L, alg != AURORA_ALG_UNKNOWN, 3,
                      "option 'alg' must be RS256, PS256 or ES256");
    }
    luaL_argcheck(L, aurora_crypto_key_fits(u->pkey, alg), 3, "option 'alg' does not fit the key");
    opt_field(L, 3, "secret", LUA_TBOOLEAN);
    secret = lua_toboolean(L, -1);
    lua_settop(L, 3);
    push_header(L, 3, alg); /* 4 */
    hj = scratch(L, AURORA_JWT_MAX, 0);
    cj = scratch(L, AURORA_JWT_MAX, 0);
    tok = scratch(L, AURORA_JWT_MAX, 1);
    if (aurora_json_encode(L, 4, hj, msg, sizeof(msg)))
        luaL_argerror(L, 3, lua_pushfstring(L, "header cannot be encoded: %s", msg));
    rc = aurora_json_encode(L, 1, cj, msg, sizeof(msg));
    if (rc == AURORA_E_TOO_LARGE)
        return aurora_vm_fail(L, rc, "claims are too large for a token");
    if (rc)
        luaL_argerror(L, 1, lua_pushfstring(L, "claims cannot be encoded: %s", msg));
    rc = aurora_jwt_sign(hj->data, hj->len, cj->data, cj->len, u->pkey, alg, tok);
    if (rc == AURORA_E_TOO_LARGE)
        return aurora_vm_fail(L, rc, "token would be longer than 16 KiB");
    if (rc)
        return aurora_vm_fail(L, rc, "signing failed");
    if (secret)
        aurora_secret_push(L, tok->data, tok->len);
    else
        lua_pushlstring(L, tok->data, tok->len);
    aurora_buf_free(tok);
    return 1;
}

int luaopen_aurora_jwt(lua_State *L)
{
    static const luaL_Reg funcs[] = {
        {"decode", l_decode},
        {"sign", l_sign},
        {"verify", l_verify},
        {NULL, NULL},
    };

    /* The secret handles this module returns get their metatable from aurora.secret, which
     * registers it only when loaded. */
    lua_getglobal(L, "require");
    lua_pushliteral(L, "aurora.secret");
    lua_call(L, 1, 0);
    luaL_newlib(L, funcs);
    lua_pushinteger(L, AURORA_JWT_MAX);
    lua_setfield(L, -2, "MAX_LENGTH");
    return 1;
}

/*
 * json.c: the JSON codec behind aurora.json (see json.h). It reads and builds Lua values directly
 * on the caller's stack and writes into a bounded aurora_buf. We carry our own codec because
 * Debian's lua-cjson 2.1.0 cannot round-trip an empty array, and because the engine wants strict
 * RFC 8259 input, exact integers and deterministic errors.
 *
 * It only touches tables with raw accesses, so encoding never runs a metamethod or any other Lua
 * code; the only Lua errors it can meet are out-of-memory errors. Every error path restores the
 * stack to what it was on entry. Floats are printed and parsed with the C locale, which the
 * engine never changes.
 */
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "aurora/aurora.h"
#include "aurora/buf.h"
#include "aurora/json.h"
#include "aurora/secret.h"

/* Registry key of json.array_mt. json_lua.c uses the same name; whichever runs first creates it. */
#define ARRAY_MT_KEY "aurora.json.array_mt"
#define MAX_DEPTH 128

#define JSON_PRETTY AURORA_JSON_PRETTY
#define JSON_SORT_KEYS AURORA_JSON_SORT_KEYS

/* See json.h. */
void aurora_json_push_array_mt(lua_State *L)
{
    if (lua_getfield(L, LUA_REGISTRYINDEX, ARRAY_MT_KEY) == LUA_TTABLE)
        return;
    lua_pop(L, 1);
    lua_createtable(L, 0, 0);
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, ARRAY_MT_KEY);
}

/*
 * Length of the well-formed UTF-8 sequence at s (at most n bytes available), or 0 when it is not
 * well formed (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF). s[0] >= 0x80.
 */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0], lo = 0x80, hi = 0xBF;
    size_t len, i;

    if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else
        return 0;
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (i = 2; i < len; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    return len;
}

/* ---------------------------------------------------------------------------------------------
 * Encoder
 */

typedef struct enc {
    lua_State *L;
    aurora_buf *out;
    int flags;
    int mt; /* absolute stack index of json.array_mt */
    char *errmsg;
    size_t errlen;
} enc;

/*
 * Byte classes for string escaping: 0 copies as is, 1 needs an escape, 2 starts a multi-byte
 * UTF-8 sequence that must be checked.
 */
static const unsigned char enc_class[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
};

static int enc_fail(enc *e, int rc, const char *msg)
{
    if (e->errlen)
        snprintf(e->errmsg, e->errlen, "%s", msg);
    return rc;
}

static int put(enc *e, const void *p, size_t n)
{
    int rc = aurora_buf_append(e->out, p, n);

    return rc ? enc_fail(e, rc, rc == AURORA_E_TOO_LARGE ? "JSON output too large"
                                                         : "out of memory")
              : 0;
}

/* Appends one byte; the common case writes in place without a call into buf.c. */
static inline int put_char(enc *e, char c)
{
    aurora_buf *b = e->out;

    if (b->len + 2 <= b->cap && b->len < b->max) {
        b->data[b->len++] = c;
        b->data[b->len] = '\0';
        return 0;
    }
    return put(e, &c, 1);
}

static int put_indent(enc *e, int depth)
{
    static const char spaces[] = "\n                                                          "
                                 "                                                              ";
    size_t n = 2 * (size_t)depth;
    int rc;

    if (!(e->flags & JSON_PRETTY))
        return 0;
    rc = put(e, spaces, 1);
    while (!rc && n > 0) {
        size_t k = n < sizeof(spaces) - 2 ? n : sizeof(spaces) - 2;

        rc = put(e, spaces + 1, k);
        n -= k;
    }
    return rc;
}

static int enc_string(enc *e, const char *str, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0, run = 0;
    int rc;

    rc = put_char(e, '"');
    while (!rc && i < n) {
        unsigned char c = s[i];
        char esc[6];
        size_t k;

        if (enc_class[c] == 0) {
            i++;
            continue;
        }
        if (enc_class[c] == 2) {
            k = utf8_seq(s + i, n - i);
            if (!k)
                return enc_fail(e, AURORA_E_INVALID, "invalid UTF-8 in string");
            i += k;
            continue;
        }
        rc = put(e, s + run, i - run);
        if (rc)
            break;
        esc[0] = '\\';
        k = 2;
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\n': esc[1] = 'n'; break;
        case '\t': esc[1] = 't'; break;
        case '\r': esc[1] = 'r'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        default:
            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            k = 6;
        }
        rc = put(e, esc, k);
        run = ++i;
    }
    if (!rc)
        rc = put(e, s + run, i - run);
    if (!rc)
        rc = put_char(e, '"');
    return rc;
}

static int enc_integer(enc *e, lua_Integer v)
{
    char tmp[24], *p = tmp + sizeof(tmp);
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;

    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--p = '-';
    return put(e, p, (size_t)(tmp + sizeof(tmp) - p));
}

/* The shortest of %.15g, %.16g and %.17g that reads back as the same double. */
static int enc_float(enc *e, double v)
{
    char tmp[40];
    int prec, n = 0;

    if (!isfinite(v))
        return enc_fail(e, AURORA_E_INVALID, "cannot encode NaN or infinity");
    for (prec = 15; prec <= 17; prec++) {
        n = snprintf(tmp, sizeof(tmp), "%.*g", prec, v);
        if (strtod(tmp, NULL) == v)
            break;
    }
    return put(e, tmp, (size_t)n);
}

static int enc_value(enc *e, int idx, int depth);

/* Encodes t[1..n] as an array; nil holes (possible only with array_mt) become null. */
static int enc_array(enc *e, int t, lua_Integer n, int depth)
{
    lua_State *L = e->L;
    lua_Integer i;
    int rc;

    if (n == 0)
        return put(e, "[]", 2);
    rc = put_char(e, '[');
    for (i = 1; !rc && i <= n; i++) {
        if (i > 1)
            rc = put_char(e, ',');
        if (!rc)
            rc = put_indent(e, depth);
        if (rc)
            break;
        lua_rawgeti(L, t, i);
        rc = enc_value(e, lua_gettop(L), depth);
        lua_pop(L, 1);
    }
    if (!rc)
        rc = put_indent(e, depth - 1);
    if (!rc)
        rc = put_char(e, ']');
    return rc;
}

static int enc_key_value(enc *e, int k, int v, int first, int depth)
{
    size_t n;
    const char *s = lua_tolstring(e->L, k, &n);
    int rc = first ? 0 : put_char(e, ',');

    if (!rc)
        rc = put_indent(e, depth);
    if (!rc)
        rc = enc_string(e, s, n);
    if (!rc)
        rc = (e->flags & JSON_PRETTY) ? put(e, ": ", 2) : put_char(e, ':');
    if (!rc)
        rc = enc_value(e, v, depth);
    return rc;
}

static int key_error(enc *e, int k)
{
    if (lua_isinteger(e->L, k))
        return enc_fail(e, AURORA_E_INVALID, "table mixes array and hash keys");
    return enc_fail(e, AURORA_E_INVALID, "table key must be a string");
}

/* Object in table order. Stack on entry: the first key and its value above t. */
static int enc_object(enc *e, int t, int depth)
{
    lua_State *L = e->L;
    int first = 1, rc = put_char(e, '{');

    while (!rc) {
        if (lua_type(L, -2) != LUA_TSTRING)
            return key_error(e, lua_gettop(L) - 1);
        rc = enc_key_value(e, lua_gettop(L) - 1, lua_gettop(L), first, depth);
        first = 0;
        lua_pop(L, 1);
        if (!rc && !lua_next(L, t))
            break;
    }
    if (!rc)
        rc = put_indent(e, depth - 1);
    if (!rc)
        rc = put_char(e, '}');
    return rc;
}

typedef struct skey {
    const char *s;
    size_t n;
} skey;

static int skey_cmp(const void *a, const void *b)
{
    const skey *x = a, *y = b;
    int c = memcmp(x->s, y->s, x->n < y->n ? x->n : y->n);

    return c ? c : (x->n > y->n) - (x->n < y->n);
}

/*
 * Object with keys in byte order. The key strings stay anchored by t while we hold pointers to
 * them, since nothing modifies t. Stack on entry: the first key and its value above t.
 */
static int enc_object_sorted(enc *e, int t, int depth)
{
    lua_State *L = e->L;
    skey *keys = NULL, *grown;
    size_t n = 0, cap = 0, i;
    int rc = 0;

    do {
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TSTRING) {
            rc = key_error(e, lua_gettop(L));
            goto out;
        }
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            grown = realloc(keys, cap * sizeof(*keys));
            if (!grown) {
                rc = enc_fail(e, AURORA_E_NOMEM, "out of memory");
                goto out;
            }
            keys = grown;
        }
        keys[n].s = lua_tolstring(L, -1, &keys[n].n);
        n++;
    } while (lua_next(L, t));
    qsort(keys, n, sizeof(*keys), skey_cmp);
    rc = put_char(e, '{');
    for (i = 0; !rc && i < n; i++) {
        lua_pushlstring(L, keys[i].s, keys[i].n);
        lua_pushvalue(L, -1);
        lua_rawget(L, t);
        rc = enc_key_value(e, lua_gettop(L) - 1, lua_gettop(L), i == 0, depth);
        lua_pop(L, 2);
    }
    if (!rc)
        rc = put_indent(e, depth - 1);
    if (!rc)
        rc = put_char(e, '}');
out:
    free(keys);
    return rc;
}

/*
 * A table whose first key (on the stack with its value) is an integer: an array if its keys are
 * exactly 1..n.
 */
static int enc_sequence(enc *e, int t, int depth)
{
    lua_State *L = e->L;
    lua_Integer count = 0, max = 0, k;

    do {
        lua_pop(L, 1);
        if (!lua_isinteger(L, -1)) {
            if (lua_type(L, -1) == LUA_TSTRING)
                return enc_fail(e, AURORA_E_INVALID, "table mixes array and hash keys");
            return enc_fail(e, AURORA_E_INVALID, "table key must be a string");
        }
        k = lua_tointeger(L, -1);
        if (k < 1)
            return enc_fail(e, AURORA_E_INVALID, "sparse array (index below 1)");
        if (k > max)
            max = k;
        count++;
    } while (lua_next(L, t));
    if (max != count)
        return enc_fail(e, AURORA_E_INVALID, "sparse array");
    return enc_array(e, t, count, depth);
}

static int enc_table(enc *e, int t, int depth)
{
    lua_State *L = e->L;
    int is_array = 0;

    if (depth > MAX_DEPTH)
        return enc_fail(e, AURORA_E_INVALID, "tables nested deeper than 128 levels (or a cycle)");
    if (!lua_checkstack(L, 4))
        return enc_fail(e, AURORA_E_NOMEM, "Lua stack exhausted");
    if (lua_getmetatable(L, t)) {
        is_array = lua_rawequal(L, -1, e->mt);
        lua_pop(L, 1);
    }
    if (is_array)
        return enc_array(e, t, (lua_Integer)lua_rawlen(L, t), depth);
    lua_pushnil(L);
    if (!lua_next(L, t))
        return put(e, "{}", 2);
    if (lua_type(L, -2) == LUA_TSTRING)
        return (e->flags & JSON_SORT_KEYS) ? enc_object_sorted(e, t, depth)
                                           : enc_object(e, t, depth);
    return enc_sequence(e, t, depth);
}

static int enc_value(enc *e, int idx, int depth)
{
    lua_State *L = e->L;
    size_t n;
    const char *s;

    switch (lua_type(L, idx)) {
    case LUA_TSTRING:
        s = lua_tolstring(L, idx, &n);
        return enc_string(e, s, n);
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx))
            return enc_integer(e, lua_tointeger(L, idx));
        return enc_float(e, (double)lua_tonumber(L, idx));
    case LUA_TBOOLEAN:
        return lua_toboolean(L, idx) ? put(e, "true", 4) : put(e, "false", 5);
    case LUA_TNIL:
        return put(e, "null", 4);
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, idx) == NULL)
            return put(e, "null", 4);
        break;
    case LUA_TTABLE:
        return enc_table(e, idx, depth + 1);
    case LUA_TUSERDATA:
        if (e->flags & AURORA_JSON_SECRETS) {
            const aurora_secret *sec = aurora_secret_test(L, idx);
            if (sec)
                return enc_string(e, (const char *)sec->data, sec->len);
        }
        break;
    default:
        break;
    }
    if (e->errlen)
        snprintf(e->errmsg, e->errlen, "cannot encode a %s", luaL_typename(L, idx));
    return AURORA_E_INVALID;
}

/*
 * Like aurora_json_encode, with flags: JSON_PRETTY (newlines and a 2-space indent) and
 * JSON_SORT_KEYS (object keys in byte order). Used by the binding; see json_lua.c. On failure
 * out keeps its previous length.
 */
int aurora_json_encode_opts(lua_State *L, int idx, int flags, aurora_buf *out, char *errmsg,
                            size_t errlen)
{
    int top = lua_gettop(L);
    size_t len0 = out->len;
    enc e;
    int rc;

    idx = lua_absindex(L, idx);
    if (!lua_checkstack(L, 8)) {
        if (errlen)
            snprintf(errmsg, errlen, "Lua stack exhausted");
        return AURORA_E_NOMEM;
    }
    aurora_json_push_array_mt(L);
    e.L = L;
    e.out = out;
    e.flags = flags;
    e.mt = lua_gettop(L);
    e.errmsg = errmsg;
    e.errlen = errlen;
    rc = enc_value(&e, idx, 0);
    lua_settop(L, top);
    if (rc) {
        out->len = len0;
        if (out->data)
            out->data[len0] = '\0';
    }
    return rc;
}

int aurora_json_encode(lua_State *L, int idx, aurora_buf *out, char *errmsg, size_t errlen)
{
    return aurora_json_encode_opts(L, idx, 0, out, errmsg, errlen);
}

/* ---------------------------------------------------------------------------------------------
 * Decoder
 */

typedef struct dec {
    lua_State *L;
    const unsigned char *s, *p, *end;
    int mt; /* absolute stack index of json.array_mt */
    aurora_buf scratch;
    char *errmsg;
    size_t errlen;
} dec;

/* Byte classes inside a string: 0 plain, 1 quote, 2 backslash, 3 control, 4 non-ASCII. */
static const unsigned char dec_class[256] = {
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
    4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
    4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
    4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
};

static int dec_fail(dec *d, const unsigned char *at, const char *what)
{
    if (d->errlen)
        snprintf(d->errmsg, d->errlen, "%s at byte %zu", what, (size_t)(at - d->s));
    return AURORA_E_INVALID;
}

static int dec_nomem(dec *d)
{
    if (d->errlen)
        snprintf(d->errmsg, d->errlen, "out of memory");
    return AURORA_E_NOMEM;
}

static inline void skip_ws(dec *d)
{
    while (d->p < d->end && (*d->p == ' ' || *d->p == '\n' || *d->p == '\r' || *d->p == '\t'))
        d->p++;
}

static int hex4(const unsigned char *p, unsigned *out)
{
    unsigned v = 0;
    int i;

    for (i = 0; i < 4; i++) {
        unsigned c = p[i];

        if (c >= '0' && c <= '9')
            c -= '0';
        else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
            c = (c | 0x20) - 'a' + 10;
        else
            return -1;
        v = v << 4 | c;
    }
    *out = v;
    return 0;
}

/* Decodes \uXXXX (and its low-surrogate partner) at d->p, which points at the 'u'. */
static int dec_unicode(dec *d)
{
    const unsigned char *at = d->p - 1;
    unsigned cp, lo;
    char u[4];
    size_t n;

    if (d->end - d->p < 5 || hex4(d->p + 1, &cp))
        return dec_fail(d, at, "invalid \\u escape");
    d->p += 5;
    if (cp >= 0xDC00 && cp <= 0xDFFF)
        return dec_fail(d, at, "lone surrogate in \\u escape");
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        if (d->end - d->p < 6 || d->p[0] != '\\' || d->p[1] != 'u' || hex4(d->p + 2, &lo) ||
            lo < 0xDC00 || lo > 0xDFFF)
            return dec_fail(d, at, "lone surrogate in \\u escape");
        d->p += 6;
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
    }
    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xC0 | cp >> 6);
        u[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xE0 | cp >> 12);
        u[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        u[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        u[0] = (char)(0xF0 | cp >> 18);
        u[1] = (char)(0x80 | (cp >> 12 & 0x3F));
        u[2] = (char)(0x80 | (cp >> 6 & 0x3F));
        u[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    return aurora_buf_append(&d->scratch, u, n) ? dec_nomem(d) : 0;
}

/*
 * Scans a run of plain characters and well-formed UTF-8 from d->p; stops at a quote, a
 * backslash, a control character or the end. Returns 0 or an error.
 */
static int scan_plain(dec *d)
{
    const unsigned char *p = d->p, *end = d->end;
    size_t k;

    for (;;) {
        while (p < end && dec_class[*p] == 0)
            p++;
        if (p == end || dec_class[*p] != 4)
            break;
        k = utf8_seq(p, (size_t)(end - p));
        if (!k) {
            d->p = p;
            return dec_fail(d, p, "invalid UTF-8 in string");
        }
        p += k;
    }
    d->p = p;
    return 0;
}

/* Parses the string at d->p (a quote) and pushes it. */
static int dec_string(dec *d)
{
    const unsigned char *start = ++d->p, *run;
    int rc;

    rc = scan_plain(d);
    if (rc)
        return rc;
    if (d->p < d->end && *d->p == '"') {
        lua_pushlstring(d->L, (const char *)start, (size_t)(d->p - start));
        d->p++;
        return 0;
    }
    aurora_buf_reset(&d->scratch);
    run = start;
    for (;;) {
        if (d->p == d->end)
            return dec_fail(d, d->p, "unterminated string");
        if (aurora_buf_append(&d->scratch, run, (size_t)(d->p - run)))
            return dec_nomem(d);
        if (*d->p == '"')
            break;
        if (*d->p < 0x20)
            return dec_fail(d, d->p, "control character in string");
        /* A backslash. */
        if (d->end - d->p < 2)
            return dec_fail(d, d->p, "unterminated string");
        d->p++;
        if (*d->p == 'u') {
            rc = dec_unicode(d);
            if (rc)
                return rc;
        } else {
            char c;

            switch (*d->p) {
            case '"': c = '"'; break;
            case '\\': c = '\\'; break;
            case '/': c = '/'; break;
            case 'b': c = '\b'; break;
            case 'f': c = '\f'; break;
            case 'n': c = '\n'; break;
            case 'r': c = '\r'; break;
            case 't': c = '\t'; break;
            default: return dec_fail(d, d->p - 1, "invalid escape");
            }
            if (aurora_buf_append(&d->scratch, &c, 1))
                return dec_nomem(d);
            d->p++;
        }
        run = d->p;
        rc = scan_plain(d);
        if (rc)
            return rc;
    }
    d->p++;
    lua_pushlstring(d->L, d->scratch.data ? d->scratch.data : "", d->scratch.len);
    return 0;
}

static int is_digit(const unsigned char *p, const unsigned char *end)
{
    return p < end && *p >= '0' && *p <= '9';
}

/* Parses the number at d->p and pushes it: an integer when it has no fraction or exponent and
 * fits in 64 bits, else a float. */
static int dec_number(dec *d)
{
    const unsigned char *start = d->p, *p = d->p, *end = d->end;
    unsigned long long u = 0;
    int neg = 0, is_float = 0, overflow = 0;
    char tmp[64], *copy = tmp;
    size_t len;
    double v;

    if (*p == '-') {
        neg = 1;
        p++;
    }
    if (!is_digit(p, end))
        return dec_fail(d, p, "invalid number");
    if (*p == '0') {
        p++;
        if (is_digit(p, end))
            return dec_fail(d, start, "leading zero in number");
    } else {
        while (is_digit(p, end)) {
            unsigned digit = (unsigned)(*p - '0');

            if (u > (ULLONG_MAX - digit) / 10)
                overflow = 1;
            else
                u = u * 10 + digit;
            p++;
        }
    }
    if (p < end && *p == '.') {
        is_float = 1;
        p++;
        if (!is_digit(p, end))
            return dec_fail(d, p, "invalid number");
        while (is_digit(p, end))
            p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        is_float = 1;
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        if (!is_digit(p, end))
            return dec_fail(d, p, "invalid number");
        while (is_digit(p, end))
            p++;
    }
    d->p = p;
    if (!is_float && !overflow && u <= (neg ? (unsigned long long)INT64_MAX + 1 : INT64_MAX)) {
        lua_pushinteger(d->L, neg ? (lua_Integer)(0ULL - u) : (lua_Integer)u);
        return 0;
    }
    len = (size_t)(p - start);
    if (len >= sizeof(tmp)) {
        aurora_buf_reset(&d->scratch);
        if (aurora_buf_append(&d->scratch, start, len))
            return dec_nomem(d);
        copy = d->scratch.data;
    } else {
        memcpy(tmp, start, len);
        tmp[len] = '\0';
    }
    v = strtod(copy, NULL);
    if (isinf(v))
        return dec_fail(d, start, "number out of range");
    lua_pushnumber(d->L, (lua_Number)v);
    return 0;
}

static int dec_value(dec *d, int depth);

static int dec_array(dec *d, int depth)
{
    lua_State *L = d->L;
    lua_Integer i = 0;
    int rc;

    if (depth > MAX_DEPTH)
        return dec_fail(d, d->p, "nesting deeper than 128 levels");
    if (!lua_checkstack(L, 3))
        return dec_fail(d, d->p, "Lua stack exhausted");
    d->p++;
    lua_createtable(L, 0, 0);
    lua_pushvalue(L, d->mt);
    lua_setmetatable(L, -2);
    skip_ws(d);
    if (d->p < d->end && *d->p == ']') {
        d->p++;
        return 0;
    }
    for (;;) {
        rc = dec_value(d, depth);
        if (rc)
            return rc;
        lua_rawseti(L, -2, ++i);
        skip_ws(d);
        if (d->p == d->end)
            return dec_fail(d, d->p, "unexpected end of input");
        if (*d->p == ']')
            break;
        if (*d->p != ',')
            return dec_fail(d, d->p, "expected ',' or ']'");
        d->p++;
    }
    d->p++;
    return 0;
}

static int dec_object(dec *d, int depth)
{
    lua_State *L = d->L;
    int rc;

    if (depth > MAX_DEPTH)
        return dec_fail(d, d->p, "nesting deeper than 128 levels");
    if (!lua_checkstack(L, 4))
        return dec_fail(d, d->p, "Lua stack exhausted");
    d->p++;
    lua_createtable(L, 0, 0);
    skip_ws(d);
    if (d->p < d->end && *d->p == '}') {
        d->p++;
        return 0;
    }
    for (;;) {
        skip_ws(d);
        if (d->p == d->end)
            return dec_fail(d, d->p, "unexpected end of input");
        if (*d->p != '"')
            return dec_fail(d, d->p, "expected a string key");
        rc = dec_string(d);
        if (rc)
            return rc;
        skip_ws(d);
        if (d->p == d->end)
            return dec_fail(d, d->p, "unexpected end of input");
        if (*d->p != ':')
            return dec_fail(d, d->p, "expected ':'");
        d->p++;
        rc = dec_value(d, depth);
        if (rc)
            return rc;
        lua_rawset(L, -3);
        skip_ws(d);
        if (d->p == d->end)
            return dec_fail(d, d->p, "unexpected end of input");
        if (*d->p == '}')
            break;
        if (*d->p != ',')
            return dec_fail(d, d->p, "expected ',' or '}'");
        d->p++;
    }
    d->p++;
    return 0;
}

static int dec_literal(dec *d, const char *word, size_t n)
{
    if ((size_t)(d->end - d->p) < n || memcmp(d->p, word, n) != 0)
        return dec_fail(d, d->p, "unexpected character");
    d->p += n;
    return 0;
}

/* Parses one value (after optional whitespace) and pushes it. depth counts enclosing
 * containers. */
static int dec_value(dec *d, int depth)
{
    int rc;

    skip_ws(d);
    if (d->p == d->end)
        return dec_fail(d, d->p, "unexpected end of input");
    switch (*d->p) {
    case '{':
        return dec_object(d, depth + 1);
    case '[':
        return dec_array(d, depth + 1);
    case '"':
        return dec_string(d);
    case 't':
        rc = dec_literal(d, "true", 4);
        if (!rc)
            lua_pushboolean(d->L, 1);
        return rc;
    case 'f':
        rc = dec_literal(d, "false", 5);
        if (!rc)
            lua_pushboolean(d->L, 0);
        return rc;
    case 'n':
        rc = dec_literal(d, "null", 4);
        if (!rc)
            lua_pushlightuserdata(d->L, NULL);
        return rc;
    default:
        if (*d->p == '-' || (*d->p >= '0' && *d->p <= '9'))
            return dec_number(d);
        return dec_fail(d, d->p, "unexpected character");
    }
}

int aurora_json_decode(lua_State *L, const char *s, size_t n, char *errmsg, size_t errlen)
{
    int top = lua_gettop(L);
    dec d;
    int rc;

    if (!lua_checkstack(L, 8)) {
        if (errlen)
            snprintf(errmsg, errlen, "Lua stack exhausted");
        return AURORA_E_NOMEM;
    }
    aurora_json_push_array_mt(L);
    d.L = L;
    d.s = d.p = (const unsigned char *)s;
    d.end = d.s + n;
    d.mt = lua_gettop(L);
    d.errmsg = errmsg;
    d.errlen = errlen;
    /* Decoded strings and numbers are never longer than the input. */
    aurora_buf_init(&d.scratch, n + 1);
    rc = dec_value(&d, 0);
    if (!rc) {
        skip_ws(&d);
        if (d.p != d.end)
            rc = dec_fail(&d, d.p, "unexpected data after the value");
    }
    aurora_buf_free(&d.scratch);
    if (rc) {
        lua_settop(L, top);
        return rc;
    }
    lua_replace(L, top + 1);
    return 0;
}

/* ---- scanning raw JSON without building values (secret extraction) ----------------------- */

static size_t scan_ws(const char *s, size_t n, size_t i)
{
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
        i++;
    return i;
}

/* i is at an opening quote; returns the index just past the closing quote, or 0. */
static size_t scan_string(const char *s, size_t n, size_t i)
{
    for (i++; i < n; i++) {
        if (s[i] == '\\')
            i++;
        else if (s[i] == '"')
            return i + 1;
    }
    return 0;
}

/* Skips one value starting at i (after whitespace); returns the index past it, or 0. */
static size_t scan_value(const char *s, size_t n, size_t i, int depth)
{
    i = scan_ws(s, n, i);
    if (i >= n || depth > MAX_DEPTH)
        return 0;
    if (s[i] == '"')
        return scan_string(s, n, i);
    if (s[i] == '{' || s[i] == '[') {
        char close = s[i] == '{' ? '}' : ']';
        i = scan_ws(s, n, i + 1);
        if (i < n && s[i] == close)
            return i + 1;
        for (;;) {
            if (close == '}') {
                if (i >= n || s[i] != '"')
                    return 0;
                i = scan_string(s, n, i);
                if (!i)
                    return 0;
                i = scan_ws(s, n, i);
                if (i >= n || s[i] != ':')
                    return 0;
                i++;
            }
            i = scan_value(s, n, i, depth + 1);
            if (!i)
                return 0;
            i = scan_ws(s, n, i);
            if (i < n && s[i] == ',') {
                i = scan_ws(s, n, i + 1);
                continue;
            }
            return i < n && s[i] == close ? i + 1 : 0;
        }
    }
    while (i < n && s[i] != ',' && s[i] != '}' && s[i] != ']' && s[i] != ' ' && s[i] != '\n' &&
           s[i] != '\r' && s[i] != '\t')
        i++;
    return i;
}

/* The element `index` of the JSON array at s[i] (s[i] == '['): sets *vs to where its value
 * starts. Returns 0, AURORA_E_NOT_FOUND (no such element) or AURORA_E_INVALID. */
static int array_element(const char *s, size_t n, size_t i, unsigned long index, size_t *vs)
{
    i = scan_ws(s, n, i + 1);
    if (i < n && s[i] == ']')
        return AURORA_E_NOT_FOUND;
    for (unsigned long k = 0;; k++) {
        if (k == index) {
            *vs = i;
            return 0;
        }
        i = scan_value(s, n, i, 0);
        if (!i)
            return AURORA_E_INVALID;
        i = scan_ws(s, n, i);
        if (i >= n || s[i] != ',')
            return AURORA_E_NOT_FOUND;
        i = scan_ws(s, n, i + 1);
    }
}

/* The value for the path segment seg[0..len) in the object or array at s[i]: sets *vs.
 * A segment of digits indexes an array; anything else names an object key. */
static int find_member(const char *s, size_t n, size_t i, const char *seg, size_t len, size_t *vs)
{
    if (i < n && s[i] == '[') {
        unsigned long index = 0;

        if (len == 0 || len > 9)
            return AURORA_E_NOT_FOUND;
        for (size_t k = 0; k < len; k++) {
            if (seg[k] < '0' || seg[k] > '9')
                return AURORA_E_NOT_FOUND;
            index = index * 10 + (unsigned long)(seg[k] - '0');
        }
        return array_element(s, n, i, index, vs);
    }
    if (i >= n || s[i] != '{')
        return AURORA_E_NOT_FOUND;
    i = scan_ws(s, n, i + 1);
    while (i < n && s[i] == '"') {
        size_t ks = i + 1, ke = scan_string(s, n, i);
        if (!ke)
            return AURORA_E_INVALID;
        i = scan_ws(s, n, ke);
        if (i >= n || s[i] != ':')
            return AURORA_E_INVALID;
        i = scan_ws(s, n, i + 1);
        if (ke - 1 - ks == len && memcmp(s + ks, seg, len) == 0) {
            *vs = i;
            return 0;
        }
        i = scan_value(s, n, i, 0);
        if (!i)
            return AURORA_E_INVALID;
        i = scan_ws(s, n, i);
        if (i < n && s[i] == ',')
            i = scan_ws(s, n, i + 1);
        else
            break;
    }
    return AURORA_E_NOT_FOUND;
}

int aurora_json_find_string(const char *s, size_t n, const char *path, size_t *start,
                            size_t *end)
{
    size_t i = scan_ws(s, n, 0);

    for (;;) {
        const char *dot = strchr(path, '.');
        size_t len = dot ? (size_t)(dot - path) : strlen(path), vs;
        int rc = find_member(s, n, i, path, len, &vs);

        if (rc)
            return rc;
        if (!dot) {
            if (vs >= n || s[vs] != '"')
                return AURORA_E_NOT_FOUND;
            i = scan_string(s, n, vs);
            if (!i)
                return AURORA_E_INVALID;
            *start = vs + 1;
            *end = i - 1;
            return 0;
        }
        i = vs;
        path = dot + 1;
    }
}

static int scan_hex4(const char *s, unsigned *v)
{
    *v = 0;
    for (int k = 0; k < 4; k++) {
        char c = s[k];
        *v <<= 4;
        if (c >= '0' && c <= '9')
            *v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            *v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            *v |= (unsigned)(c - 'A' + 10);
        else
            return -1;
    }
    return 0;
}

long aurora_json_unescape(const char *s, size_t n, char *out)
{
    size_t o = 0;

    for (size_t i = 0; i < n; i++) {
        unsigned cp, lo;
        if (s[i] != '\\') {
            out[o++] = s[i];
            continue;
        }
        if (++i >= n)
            return -1;
        switch (s[i]) {
        case '"': case '\\': case '/': out[o++] = s[i]; continue;
        case 'b': out[o++] = '\b'; continue;
        case 'f': out[o++] = '\f'; continue;
        case 'n': out[o++] = '\n'; continue;
        case 'r': out[o++] = '\r'; continue;
        case 't': out[o++] = '\t'; continue;
        case 'u': break;
        default: return -1;
        }
        if (i + 4 >= n || scan_hex4(s + i + 1, &cp) != 0)
            return -1;
        i += 4;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (i + 6 >= n || s[i + 1] != '\\' || s[i + 2] != 'u' || scan_hex4(s + i + 3, &lo) != 0 ||
                lo < 0xDC00 || lo > 0xDFFF)
                return -1;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            i += 6;
        } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            return -1;
        }
        /* UTF-8 of cp is never longer than its \\u escape (6 or 12 bytes). */
        if (cp < 0x80) {
            out[o++] = (char)cp;
        } else if (cp < 0x800) {
            out[o++] = (char)(0xC0 | cp >> 6);
            out[o++] = (char)(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            out[o++] = (char)(0xE0 | cp >> 12);
            out[o++] = (char)(0x80 | ((cp >> 6) & 0x3F));
            out[o++] = (char)(0x80 | (cp & 0x3F));
        } else {
            out[o++] = (char)(0xF0 | cp >> 18);
            out[o++] = (char)(0x80 | ((cp >> 12) & 0x3F));
            out[o++] = (char)(0x80 | ((cp >> 6) & 0x3F));
            out[o++] = (char)(0x80 | (cp & 0x3F));
        }
    }
    return (long)o;
}

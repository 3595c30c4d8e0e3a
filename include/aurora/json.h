/*
 * json.h: JSON <-> Lua values, in C (module aurora.json). Faithful round trips: JSON null is the
 * light userdata json.null, decoded arrays carry the metatable json.array_mt so an empty array
 * encodes back as [], and integers stay integers.
 */
#ifndef AURORA_JSON_H
#define AURORA_JSON_H

#include <stddef.h>

#include <lua.h>

#include "aurora/buf.h"

/*
 * Encodes the value at idx as compact JSON, appending to out. Returns 0, or an aurora_err with a
 * message in errmsg (a static or errbuf-sized string, never containing the data):
 * AURORA_E_INVALID (a function, a NaN, a table too deep, a mixed table), AURORA_E_TOO_LARGE.
 * Never raises (except out of memory). Stack: unchanged.
 */
int aurora_json_encode(lua_State *L, int idx, aurora_buf *out, char *errmsg, size_t errlen);

/* Encoder flags of aurora_json_encode_opts. */
#define AURORA_JSON_PRETTY 1    /* newlines and a 2-space indent */
#define AURORA_JSON_SORT_KEYS 2 /* object keys in byte order */
#define AURORA_JSON_SECRETS 4   /* aurora.secret handles encode as strings (only into a buffer
                                   that is wiped: aurora.http request bodies) */

/* aurora_json_encode with flags. On failure out keeps its previous length. */
int aurora_json_encode_opts(lua_State *L, int idx, int flags, aurora_buf *out, char *errmsg,
                            size_t errlen);

/*
 * Finds the string value at a dotted path ("access_token", "auth.client_token",
 * "kubeconfigs.0.value": a segment of digits indexes an array) in the JSON text s[0..n). On success returns 0 and sets [*start, *end) to
 * the raw characters between its quotes; AURORA_E_NOT_FOUND when there is no such string;
 * AURORA_E_INVALID when the text is malformed before the value is found. No Lua, no allocation.
 */
int aurora_json_find_string(const char *s, size_t n, const char *path, size_t *start,
                            size_t *end);

/*
 * Unescapes the JSON string contents s[0..n) into out (at most n bytes). Returns the length, or
 * -1 for a malformed escape. \uXXXX escapes are decoded to UTF-8 (surrogate pairs included).
 */
long aurora_json_unescape(const char *s, size_t n, char *out);

/* Pushes json.array_mt (the metatable that marks a table as a JSON array), creating it in the
 * registry on first use. Stack: pushes 1. */
void aurora_json_push_array_mt(lua_State *L);

/*
 * Decodes n bytes of JSON and pushes the value. Returns 0 (pushes 1), or AURORA_E_INVALID with a
 * message naming the byte offset in errmsg (pushes nothing). Never raises (except out of memory).
 */
int aurora_json_decode(lua_State *L, const char *s, size_t n, char *errmsg, size_t errlen);

#endif

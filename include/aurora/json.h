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

/*
 * Decodes n bytes of JSON and pushes the value. Returns 0 (pushes 1), or AURORA_E_INVALID with a
 * message naming the byte offset in errmsg (pushes nothing). Never raises (except out of memory).
 */
int aurora_json_decode(lua_State *L, const char *s, size_t n, char *errmsg, size_t errlen);

#endif

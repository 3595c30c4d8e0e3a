/*
 * log_lua.c: the Lua module aurora.log: log.info("msg", {field = value, ...}) and friends write
 * one JSON line through log.c. Values of redacted field names never reach the log, and an
 * aurora.secret handle is always written as "[redacted]". Nested tables are written one level
 * deep with the same redaction.
 */
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "aurora/buf.h"
#include "aurora/log.h"
#include "aurora/secret.h"

#define LINE_MAX_BYTES (64 * 1024)

static void add_value(lua_State *L, aurora_buf *b, const char *name, int idx, int depth);

static void add_table(lua_State *L, aurora_buf *b, int idx, int depth)
{
    int first = 1;

    aurora_buf_append(b, "{", 1);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if (lua_type(L, -2) == LUA_TSTRING) {
            aurora_buf tmp;
            aurora_buf_init(&tmp, LINE_MAX_BYTES);
            add_value(L, &tmp, lua_tostring(L, -2), lua_gettop(L), depth + 1);
            /* add_value writes ",\"k\":v"; drop the comma for the first member */
            aurora_buf_append(b, tmp.data + (first ? 1 : 0), tmp.len - (first ? 1 : 0));
            aurora_buf_free(&tmp);
            first = 0;
        }
        lua_pop(L, 1);
    }
    aurora_buf_append(b, "}", 1);
}

static void add_value(lua_State *L, aurora_buf *b, const char *name, int idx, int depth)
{
    size_t n;
    const char *s;

    if (aurora_log_is_redacted(name, strlen(name)) || luaL_testudata(L, idx, "aurora.secret")) {
        aurora_log_field_str(b, name, "[redacted]", 10);
        return;
    }
    switch (lua_type(L, idx)) {
    case LUA_TNUMBER:
        aurora_log_field_num(b, name, lua_tonumber(L, idx));
        break;
    case LUA_TBOOLEAN:
        aurora_buf_append(b, ",", 1);
        aurora_log_json_string(b, name, strlen(name));
        aurora_buf_puts(b, lua_toboolean(L, idx) ? ":true" : ":false");
        break;
    case LUA_TTABLE:
        aurora_buf_append(b, ",", 1);
        aurora_log_json_string(b, name, strlen(name));
        aurora_buf_append(b, ":", 1);
        if (depth >= 2)
            aurora_buf_puts(b, "\"[table]\"");
        else
            add_table(L, b, idx, depth);
        break;
    case LUA_TSTRING:
        s = lua_tolstring(L, idx, &n);
        aurora_log_field_str(b, name, s, n);
        break;
    default:
        s = luaL_typename(L, idx);
        aurora_log_field_str(b, name, s, strlen(s));
    }
}

static int emit(lua_State *L, int level)
{
    const char *msg = luaL_checkstring(L, 1);
    aurora_buf b;

    if (!lua_isnoneornil(L, 2))
        luaL_checktype(L, 2, LUA_TTABLE);
    if (!aurora_log_enabled(level))
        return 0;
    aurora_buf_init(&b, LINE_MAX_BYTES);
    if (lua_istable(L, 2)) {
        lua_pushnil(L);
        while (lua_next(L, 2)) {
            if (lua_type(L, -2) == LUA_TSTRING)
                add_value(L, &b, lua_tostring(L, -2), lua_gettop(L), 0);
            lua_pop(L, 1);
        }
    }
    aurora_log_raw(level, msg, b.data, b.len);
    aurora_buf_free(&b);
    return 0;
}

static int l_debug(lua_State *L) { return emit(L, AURORA_LOG_DEBUG); }
static int l_info(lua_State *L) { return emit(L, AURORA_LOG_INFO); }
static int l_warn(lua_State *L) { return emit(L, AURORA_LOG_WARN); }
static int l_error(lua_State *L) { return emit(L, AURORA_LOG_ERROR); }

/* log.is_redacted(name) -> boolean */
static int l_is_redacted(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);

    lua_pushboolean(L, aurora_log_is_redacted(s, n));
    return 1;
}

int luaopen_aurora_log(lua_State *L)
{
    static const luaL_Reg funcs[] = {
        {"debug", l_debug}, {"info", l_info},   {"warn", l_warn},
        {"error", l_error}, {"is_redacted", l_is_redacted}, {NULL, NULL},
    };

    luaL_newlib(L, funcs);
    return 1;
}

/*
 * env.h: configuration from the environment (module aurora.env), and the .env file loader run
 * once at start-up. A .env file never overrides a variable that is already set. Nothing here
 * depends on Lua.
 *
 * Thread safety: aurora_env_load_file calls setenv, which is not thread-safe; call it before any
 * thread starts. Everything else only reads the environment and is safe from any thread as long
 * as nobody writes it (the engine never does after start-up, and Lua cannot).
 */
#ifndef AURORA_ENV_H
#define AURORA_ENV_H

#include <stddef.h>

#define AURORA_ENV_FILE_MAX (1024 * 1024) /* largest .env file we read */

/* One NAME=value pair parsed from a .env file. */
typedef struct aurora_env_var {
    char *name;
    char *value; /* may hold a secret: wiped when freed */
    int line;    /* 1-based line number in the file */
} aurora_env_var;

/*
 * Parses the .env text s[0..n): KEY=VALUE lines, an optional `export ` prefix, blank lines and
 * `#` comments. Values may be 'single-quoted' (literal), "double-quoted" (escapes \n \t \r \" \\;
 * any other backslash is kept) or unquoted (trimmed; ` #` or a tab before `#` starts a comment).
 * Quoted values end on the same line. On success sets *vars (caller frees with
 * aurora_env_vars_free) and *count, and returns 0. Returns AURORA_E_INVALID with "line N: what"
 * in errmsg (never the value) for a malformed line or a NUL byte, or AURORA_E_NOMEM.
 */
int aurora_env_parse(const char *s, size_t n, aurora_env_var **vars, size_t *count, char *errmsg,
                     size_t errlen);

/* Wipes and frees what aurora_env_parse returned, and sets *vars to NULL. Harmless on NULL. */
void aurora_env_vars_free(aurora_env_var **vars, size_t count);

/*
 * Loads the .env file at path: parses the whole file first and sets nothing if any line is
 * malformed; then sets each variable with setenv(name, value, 0), so a variable already in the
 * environment always wins. Within the file, the last assignment of a name wins. Not thread-safe
 * (see above). Returns 0, or AURORA_E_NOT_FOUND (no such file: callers usually treat this as
 * fine), AURORA_E_INVALID ("PATH:N: what" in errmsg), AURORA_E_DENIED, AURORA_E_IO,
 * AURORA_E_TOO_LARGE (over AURORA_ENV_FILE_MAX), AURORA_E_NOMEM.
 */
int aurora_env_load_file(const char *path, char *errmsg, size_t errlen);

/* The value of name, or NULL when it is unset or empty. Points into the environment. */
const char *aurora_env_get(const char *name);

/*
 * Reads name as a decimal integer (optional sign, digits only). Returns 0 and sets *out, or
 * AURORA_E_NOT_FOUND (unset or empty), AURORA_E_INVALID (malformed or out of range).
 */
int aurora_env_int(const char *name, long long *out);

/*
 * Reads name as a boolean: 1/true/yes/on or 0/false/no/off, in any case. Returns 0 and sets *out
 * to 1 or 0, or AURORA_E_NOT_FOUND (unset or empty), AURORA_E_INVALID (anything else).
 */
int aurora_env_bool(const char *name, int *out);

#endif

/*
 * env.c: reading configuration from the environment, and the .env loader (see env.h). Plain
 * libc; no Lua. The loader runs once at start-up before threads exist, because setenv is not
 * thread-safe. Values may be secrets (AZURE_CLIENT_SECRET, VAULT_TOKEN), so the file text and the
 * parsed values are wiped before they are freed, and no error message ever contains a value.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "aurora/aurora.h"
#include "aurora/buf.h"
#include "aurora/env.h"

static int is_blank(char c)
{
    return c == ' ' || c == '\t';
}

static int is_name_start(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

static int is_name_char(char c)
{
    return is_name_start(c) || (c >= '0' && c <= '9');
}

static const char *skip_blanks(const char *p, const char *end)
{
    while (p < end && is_blank(*p))
        p++;
    return p;
}

/* Appends the parsed pair to the list. Returns 0 or AURORA_E_NOMEM. */
static int push_var(aurora_env_var **vars, size_t *count, size_t *cap, const char *name,
                    size_t nlen, aurora_buf *value, int line)
{
    aurora_env_var *v;

    if (*count == *cap) {
        size_t ncap = *cap ? *cap * 2 : 16;

        v = realloc(*vars, ncap * sizeof(*v));
        if (!v)
            return AURORA_E_NOMEM;
        *vars = v;
        *cap = ncap;
    }
    v = &(*vars)[*count];
    v->name = strndup(name, nlen);
    v->value = malloc(value->len + 1);
    if (!v->name || !v->value) {
        free(v->name);
        free(v->value);
        return AURORA_E_NOMEM;
    }
    memcpy(v->value, value->data ? value->data : "", value->len + 1);
    v->line = line;
    (*count)++;
    return 0;
}

/*
 * Parses the value part of a line, from just after '=' to end, into val. Returns NULL or a
 * description of what is wrong.
 */
static const char *parse_value(const char *p, const char *end, aurora_buf *val, int *nomem)
{
    const char *raw = p, *q;
    int rc = 0;

    p = skip_blanks(p, end);
    if (p < end && *p == '\'') {
        q = memchr(p + 1, '\'', (size_t)(end - p - 1));
        if (!q)
            return "unterminated single quote";
        rc = aurora_buf_append(val, p + 1, (size_t)(q - p - 1));
        p = q + 1;
    } else if (p < end && *p == '"') {
        for (p++; !rc && p < end && *p != '"'; p++) {
            char c = *p;

            if (c == '\\' && p + 1 < end) {
                switch (p[1]) {
                case 'n': c = '\n'; break;
                case 't': c = '\t'; break;
                case 'r': c = '\r'; break;
                case '"': c = '"'; break;
                case '\\': c = '\\'; break;
                default: c = 0; break;
                }
                if (c)
                    p++;
                else
                    c = '\\';
            }
            rc = aurora_buf_append(val, &c, 1);
        }
        if (!rc && p == end)
            return "unterminated double quote";
        p++;
    } else {
        /* Unquoted: a '#' after a blank starts a comment; trailing blanks go. */
        for (q = p; q < end; q++)
            if (*q == '#' && q > raw && is_blank(q[-1]))
                break;
        while (q > p && is_blank(q[-1]))
            q--;
        rc = aurora_buf_append(val, p, (size_t)(q - p));
        p = end;
    }
    if (rc) {
        *nomem = 1;
        return "out of memory";
    }
    p = skip_blanks(p, end);
    if (p < end && *p != '#')
        return "unexpected text after the closing quote";
    return NULL;
}

int aurora_env_parse(const char *s, size_t n, aurora_env_var **vars, size_t *count, char *errmsg,
                     size_t errlen)
{
    const char *p = s, *end = s + n, *eol, *name, *what = NULL;
    aurora_env_var *list = NULL;
    size_t nvars = 0, cap = 0, nlen;
    aurora_buf val;
    int line = 0, nomem = 0, rc = 0;

    aurora_buf_init(&val, n + 1);
    val.secret = 1;
    while (p < end && !what) {
        line++;
        eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            eol = end;
        if (memchr(p, '\0', (size_t)(eol - p))) {
            what = "NUL byte";
            break;
        }
        name = p;
        p = eol + 1;
        if (eol > name && eol[-1] == '\r')
            eol--;
        name = skip_blanks(name, eol);
        if (name == eol || *name == '#')
            continue;
        if (eol - name > 7 && memcmp(name, "export", 6) == 0 && is_blank(name[6]))
            name = skip_blanks(name + 7, eol);
        if (name == eol || !is_name_start(*name)) {
            what = "invalid variable name";
            break;
        }
        for (nlen = 1; name + nlen < eol && is_name_char(name[nlen]); nlen++)
            ;
        {
            const char *q = skip_blanks(name + nlen, eol);

            if (q == eol || *q != '=') {
                what = q < eol && !is_blank(name[nlen]) && name + nlen == q
                           ? "invalid variable name"
                           : "expected '=' after the name";
                break;
            }
            aurora_buf_reset(&val);
            what = parse_value(q + 1, eol, &val, &nomem);
        }
        if (!what && push_var(&list, &nvars, &cap, name, nlen, &val, line)) {
            nomem = 1;
            what = "out of memory";
        }
    }
    aurora_buf_free(&val);
    if (what) {
        rc = nomem ? AURORA_E_NOMEM : AURORA_E_INVALID;
        if (errlen)
            snprintf(errmsg, errlen, "line %d: %s", line, what);
        aurora_env_vars_free(&list, nvars);
        return rc;
    }
    *vars = list;
    *count = nvars;
    return 0;
}

void aurora_env_vars_free(aurora_env_var **vars, size_t count)
{
    size_t i;

    if (!vars || !*vars)
        return;
    for (i = 0; i < count; i++) {
        free((*vars)[i].name);
        aurora_wipe((*vars)[i].value, strlen((*vars)[i].value));
        free((*vars)[i].value);
    }
    free(*vars);
    *vars = NULL;
}

int aurora_env_load_file(const char *path, char *errmsg, size_t errlen)
{
    aurora_env_var *vars = NULL;
    size_t count = 0, i, j;
    char why[96];
    aurora_buf text;
    int rc;

    aurora_buf_init(&text, AURORA_ENV_FILE_MAX);
    text.secret = 1;
    rc = aurora_read_file(path, &text);
    if (rc) {
        if (errlen)
            snprintf(errmsg, errlen, "%s: cannot read (%s)", path, aurora_err_word(rc));
        goto out;
    }
    rc = aurora_env_parse(text.data ? text.data : "", text.len, &vars, &count, why, sizeof(why));
    if (rc) {
        if (errlen)
            snprintf(errmsg, errlen, "%s:%s", path, why + (strncmp(why, "line ", 5) ? 0 : 5));
        goto out;
    }
    for (i = 0; i < count; i++) {
        for (j = i + 1; j < count; j++)
            if (strcmp(vars[i].name, vars[j].name) == 0)
                break;
        if (j < count)
            continue; /* a later line sets it */
        if (setenv(vars[i].name, vars[i].value, 0) != 0) {
            rc = errno == ENOMEM ? AURORA_E_NOMEM : AURORA_E_INVALID;
            if (errlen)
                snprintf(errmsg, errlen, "%s:%d: cannot set %s", path, vars[i].line,
                         vars[i].name);
            goto out;
        }
    }
out:
    aurora_env_vars_free(&vars, count);
    aurora_buf_free(&text);
    return rc;
}

const char *aurora_env_get(const char *name)
{
    const char *v = getenv(name);

    return v && *v ? v : NULL;
}

int aurora_env_int(const char *name, long long *out)
{
    const char *v = aurora_env_get(name), *p;
    char *end;
    long long n;

    if (!v)
        return AURORA_E_NOT_FOUND;
    p = v + (*v == '+' || *v == '-');
    if (*p < '0' || *p > '9')
        return AURORA_E_INVALID;
    errno = 0;
    n = strtoll(v, &end, 10);
    if (errno == ERANGE || *end != '\0')
        return AURORA_E_INVALID;
    *out = n;
    return 0;
}

int aurora_env_bool(const char *name, int *out)
{
    static const char *const yes[] = {"1", "true", "yes", "on"};
    static const char *const no[] = {"0", "false", "no", "off"};
    const char *v = aurora_env_get(name);
    size_t i;

    if (!v)
        return AURORA_E_NOT_FOUND;
    for (i = 0; i < AURORA_COUNT(yes); i++) {
        if (strcasecmp(v, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcasecmp(v, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return AURORA_E_INVALID;
}

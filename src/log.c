/*
 * log.c: JSON-lines logging (see log.h). Lines go to stderr with one write(2) each, or, on a
 * worker thread, to a thread-local buffer flushed once per event-loop pass, so the access log
 * costs no system call per request. It never writes the value of a redacted field.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "aurora/aurora.h"
#include "aurora/buf.h"
#include "aurora/log.h"

#define LOG_LINE_MAX (64 * 1024)
#define LOG_BUF_FLUSH (32 * 1024)
#define REDACT_MAX 64

static int min_level = AURORA_LOG_INFO;
static char redact_store[2048];
/* Names are compared ignoring case, '_' and '-': "access_token", "accessToken" and
 * "Access-Token" are one name. */
static const char *redact[REDACT_MAX] = {
    "authorization", "proxyauthorization", "cookie", "setcookie", "xvaulttoken", "password",
    "passwd", "secret", "clientsecret", "token", "accesstoken", "refreshtoken", "idtoken",
    "clientassertion", "assertion", "privatekey", "apikey", "xapikey", "codeverifier",
    "secretid", "clientkey", "clientkeydata", "kubeconfig", "certificatekey", "vaulttoken",
};
static size_t redact_count = 25;

static __thread int buffered;
static __thread aurora_buf tbuf;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void aurora_log_init(int level, const char *extra_redact)
{
    char *save = NULL, *tok;

    if (level >= AURORA_LOG_DEBUG && level <= AURORA_LOG_ERROR)
        min_level = level;
    if (!extra_redact || !*extra_redact)
        return;
    snprintf(redact_store, sizeof(redact_store), "%s", extra_redact);
    for (char *c = redact_store, *o = redact_store;; c++) {
        /* Normalise in place: lower case, no '_' or '-'. */
        if (*c != '_' && *c != '-')
            *o++ = (char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c);
        if (!*c)
            break;
    }
    for (tok = strtok_r(redact_store, ", ", &save); tok && redact_count < REDACT_MAX;
         tok = strtok_r(NULL, ", ", &save))
        redact[redact_count++] = tok;
}

int aurora_log_parse_level(const char *s)
{
    for (size_t i = 0; i < AURORA_COUNT(level_names); i++)
        if (s && strcasecmp(s, level_names[i]) == 0)
            return (int)i;
    return -1;
}

int aurora_log_enabled(int level)
{
    return level >= min_level;
}

int aurora_log_is_redacted(const char *name, size_t len)
{
    char norm[64];
    size_t n = 0;

    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (c == '_' || c == '-')
            continue;
        if (n == sizeof(norm) - 1)
            return 0; /* longer than any listed name */
        norm[n++] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
    norm[n] = '\0';
    for (size_t i = 0; i < redact_count; i++)
        if (strcmp(redact[i], norm) == 0)
            return 1;
    return 0;
}

void aurora_log_json_string(aurora_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t start = 0;

    aurora_buf_append(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[6];
        size_t elen = 2;

        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        aurora_buf_append(b, s + start, i - start);
        start = i + 1;
        esc[0] = '\\';
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        default:
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            elen = 6;
        }
        aurora_buf_append(b, esc, elen);
    }
    aurora_buf_append(b, s + start, n - start);
    aurora_buf_append(b, "\"", 1);
}

void aurora_log_field_str(aurora_buf *b, const char *name, const char *v, size_t n)
{
    size_t nlen = strlen(name);

    aurora_buf_append(b, ",", 1);
    aurora_log_json_string(b, name, nlen);
    aurora_buf_append(b, ":", 1);
    if (aurora_log_is_redacted(name, nlen))
        aurora_buf_puts(b, "\"[redacted]\"");
    else
        aurora_log_json_string(b, v, n);
}

void aurora_log_field_num(aurora_buf *b, const char *name, double v)
{
    aurora_buf_append(b, ",", 1);
    aurora_log_json_string(b, name, strlen(name));
    if (!isfinite(v))
        aurora_buf_puts(b, ":null"); /* JSON has no NaN or infinity */
    else if (v > 9e15 || v < -9e15)
        aurora_buf_printf(b, ":%.17g", v);
    else if (v == (double)(long long)v)
        aurora_buf_printf(b, ":%lld", (long long)v);
    else
        aurora_buf_printf(b, ":%.15g", v);
}

static void emit(aurora_buf *line)
{
    if (buffered) {
        if (!tbuf.max)
            aurora_buf_init(&tbuf, 4 * LOG_BUF_FLUSH);
        if (aurora_buf_append(&tbuf, line->data, line->len) == 0) {
            if (tbuf.len >= LOG_BUF_FLUSH)
                aurora_log_flush();
            return;
        }
        aurora_log_flush();
    }
    for (size_t off = 0; off < line->len;) {
        ssize_t w = write(2, line->data + off, line->len - off);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
}

static void begin(aurora_buf *b, int level, const char *msg)
{
    struct timespec ts;
    struct tm tm;
    char when[40];

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    aurora_buf_printf(b, "{\"ts\":\"%s.%03ldZ\",\"level\":\"%s\",\"msg\":", when,
                      ts.tv_nsec / 1000000, level_names[level]);
    aurora_log_json_string(b, msg, strlen(msg));
}

void aurora_log_raw(int level, const char *msg, const char *fields, size_t len)
{
    aurora_buf b;

    if (level < min_level)
        return;
    aurora_buf_init(&b, LOG_LINE_MAX);
    begin(&b, level, msg);
    if (len)
        aurora_buf_append(&b, fields, len);
    aurora_buf_append(&b, "}\n", 2);
    if (b.len && b.data[b.len - 1] != '\n') {
        /* The line hit the size limit: keep it a valid JSON line. */
        b.len = 0;
        begin(&b, level, "log line too long");
        aurora_buf_append(&b, "}\n", 2);
    }
    emit(&b);
    aurora_buf_free(&b);
}

void aurora_log(int level, const char *msg, ...)
{
    aurora_buf f;
    va_list ap;
    const char *name;

    if (level < min_level)
        return;
    aurora_buf_init(&f, LOG_LINE_MAX);
    va_start(ap, msg);
    while ((name = va_arg(ap, const char *)) != NULL) {
        const char *v = va_arg(ap, const char *);
        aurora_log_field_str(&f, name, v ? v : "", v ? strlen(v) : 0);
    }
    va_end(ap);
    aurora_log_raw(level, msg, f.data, f.len);
    aurora_buf_free(&f);
}

void aurora_log_set_buffered(int on)
{
    if (!on) {
        aurora_log_flush();
        aurora_buf_free(&tbuf);
    }
    buffered = on;
}

void aurora_log_flush(void)
{
    int was = buffered;

    if (!tbuf.len)
        return;
    buffered = 0;
    emit(&tbuf);
    buffered = was;
    aurora_buf_reset(&tbuf);
}

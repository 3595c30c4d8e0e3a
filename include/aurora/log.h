/*
 * log.h: JSON-lines logging to stderr. Each line is one object: ts, level, msg, then fields.
 * Fields whose names are on the redaction list (authorization, cookie, x-vault-token, secrets,
 * tokens, passwords, keys, ...) are written as "[redacted]" whatever their value. Worker threads
 * buffer their lines and flush once per event-loop pass; other threads write at once.
 */
#ifndef AURORA_LOG_H
#define AURORA_LOG_H

#include <stddef.h>

enum { AURORA_LOG_DEBUG, AURORA_LOG_INFO, AURORA_LOG_WARN, AURORA_LOG_ERROR };

/* Sets the minimum level and adds the comma-separated names in extra_redact (may be NULL) to
 * the redaction list. Call once at start-up, before threads start. */
void aurora_log_init(int level, const char *extra_redact);

/* The level named by s ("debug", "info", "warn", "error"), or -1. */
int aurora_log_parse_level(const char *s);

/* Whether a line at this level would be written. */
int aurora_log_enabled(int level);

/* Whether a field or header name is on the redaction list (case-insensitive). */
int aurora_log_is_redacted(const char *name, size_t len);

/*
 * Writes one line. The variadic part is pairs of (const char *name, const char *value) ended by
 * NULL; a value is written as a JSON string, or "[redacted]" when the name is redacted.
 */
void aurora_log(int level, const char *msg, ...);

/* Writes one line whose fields are already a JSON object body (`"a":1,"b":"x"`), built by the
 * caller with aurora_log_field_* on a buffer. */
void aurora_log_raw(int level, const char *msg, const char *fields, size_t len);

struct aurora_buf;
/* Appends `,"name":"value"` (escaped; "[redacted]" when name is redacted) to b. */
void aurora_log_field_str(struct aurora_buf *b, const char *name, const char *v, size_t n);
/* Appends `,"name":number` to b. */
void aurora_log_field_num(struct aurora_buf *b, const char *name, double v);
/* Appends the JSON string form of s[0..n) to b (quotes included). */
void aurora_log_json_string(struct aurora_buf *b, const char *s, size_t n);

/* Makes the calling thread buffer its lines until aurora_log_flush (workers do this). */
void aurora_log_set_buffered(int on);

/* Writes out the calling thread's buffered lines. */
void aurora_log_flush(void);

#endif

/*
 * test_log.c: JSON-lines logging without Lua: the redaction list, the field writers and JSON
 * escaping, and real lines written to fd 2 (captured in a temporary file) that must be one valid
 * JSON object each and never contain a redacted value.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aurora/aurora.h"
#include "aurora/buf.h"
#include "aurora/log.h"
#include "check.h"

#define RED(s) aurora_log_is_redacted(s, strlen(s))

/* ---- a strict little JSON checker (RFC 8259 grammar, no UTF-8 validation) ------------------ */

static const char *json_value(const char *p, const char *end, int depth);

static const char *json_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

static const char *json_string(const char *p, const char *end)
{
    if (p >= end || *p != '"')
        return NULL;
    for (p++; p < end; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"')
            return p + 1;
        if (c < 0x20)
            return NULL;
        if (c == '\\') {
            p++;
            if (p >= end)
                return NULL;
            if (*p == 'u') {
                for (int i = 0; i < 4; i++) {
                    p++;
                    if (p >= end || !strchr("0123456789abcdefABCDEF", *p) || !*p)
                        return NULL;
                }
            } else if (!strchr("\"\\/bfnrt", *p) || !*p) {
                return NULL;
            }
        }
    }
    return NULL;
}

static const char *json_digits(const char *p, const char *end)
{
    const char *s = p;

    while (p < end && *p >= '0' && *p <= '9')
        p++;
    return p > s ? p : NULL;
}

static const char *json_number(const char *p, const char *end)
{
    if (p < end && *p == '-')
        p++;
    if (p < end && *p == '0')
        p++;
    else if (!(p = json_digits(p, end)))
        return NULL;
    if (p < end && *p == '.' && !(p = json_digits(p + 1, end)))
        return NULL;
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        if (!(p = json_digits(p, end)))
            return NULL;
    }
    return p;
}

static const char *json_container(const char *p, const char *end, int depth, char close)
{
    p = json_ws(p + 1, end);
    if (p < end && *p == close)
        return p + 1;
    for (;;) {
        if (close == '}') {
            p = json_string(p, end);
            if (!p)
                return NULL;
            p = json_ws(p, end);
            if (p >= end || *p != ':')
                return NULL;
            p++;
        }
        p = json_value(p, end, depth + 1);
        if (!p)
            return NULL;
        p = json_ws(p, end);
        if (p < end && *p == ',') {
            p = json_ws(p + 1, end);
            continue;
        }
        return p < end && *p == close ? p + 1 : NULL;
    }
}

static const char *json_value(const char *p, const char *end, int depth)
{
    p = json_ws(p, end);
    if (p >= end || depth > 64)
        return NULL;
    if (*p == '{')
        return json_container(p, end, depth, '}');
    if (*p == '[')
        return json_container(p, end, depth, ']');
    if (*p == '"')
        return json_string(p, end);
    if ((size_t)(end - p) >= 4 && memcmp(p, "null", 4) == 0)
        return p + 4;
    if ((size_t)(end - p) >= 4 && memcmp(p, "true", 4) == 0)
        return p + 4;
    if ((size_t)(end - p) >= 5 && memcmp(p, "false", 5) == 0)
        return p + 5;
    return json_number(p, end);
}

/* Whether s[0..n) is exactly one JSON value (surrounding blanks allowed). */
static int is_json(const char *s, size_t n)
{
    const char *p = json_value(s, s + n, 0);

    return p && json_ws(p, s + n) == s + n;
}

/* Whether s is one log line: a JSON object followed by exactly one newline. */
static int is_log_line(const char *s, size_t n)
{
    return n >= 2 && s[0] == '{' && s[n - 1] == '\n' && memchr(s, '\n', n) == s + n - 1 &&
           is_json(s, n - 1);
}

/* ---- capturing fd 2 ------------------------------------------------------------------------- */

static char captured[256 * 1024];
static size_t captured_len;
static FILE *capture_file;
static int saved_fd = -1;

static int capture_begin(void)
{
    fflush(stderr);
    capture_file = tmpfile();
    if (!capture_file)
        return -1;
    saved_fd = dup(2);
    if (saved_fd < 0 || dup2(fileno(capture_file), 2) < 0) {
        fclose(capture_file);
        return -1;
    }
    return 0;
}

/* Restores fd 2 and reads what was written into captured (NUL-terminated). */
static void capture_end(void)
{
    dup2(saved_fd, 2);
    close(saved_fd);
    saved_fd = -1;
    rewind(capture_file);
    captured_len = fread(captured, 1, sizeof(captured) - 1, capture_file);
    captured[captured_len] = '\0';
    fclose(capture_file);
    capture_file = NULL;
}

/* ---- tests ---------------------------------------------------------------------------------- */

TEST(redaction_matches_listed_names_in_any_case)
{
    CHECK(RED("authorization"));
    CHECK(RED("Authorization"));
    CHECK(RED("AUTHORIZATION"));
    CHECK(RED("X-Vault-Token"));
    CHECK(RED("x-vault-token"));
    CHECK(RED("client_secret"));
    CHECK(RED("Client_Secret"));
    CHECK(RED("CLIENT_SECRET"));
    CHECK(RED("Cookie"));
    CHECK(RED("Set-Cookie"));
    CHECK(RED("Proxy-Authorization"));
    CHECK(RED("password"));
    CHECK(RED("clientSecret"));
    CHECK(RED("access_token"));
}

TEST(redaction_leaves_ordinary_names_alone)
{
    CHECK(!RED("path"));
    CHECK(!RED("method"));
    CHECK(!RED("requestId"));
    CHECK(!RED("status"));
    CHECK(!RED(""));
}

TEST(redaction_compares_whole_names_of_the_given_length)
{
    CHECK(!RED("authorization2"));
    CHECK(!RED("my_token"));
    CHECK(!RED("tokens"));
    /* Only len bytes count: a prefix that is itself a listed name is redacted. */
    CHECK(aurora_log_is_redacted("tokenizer", 5));
    CHECK(!aurora_log_is_redacted("token", 4));
}

/*
 * The list already holds camelCase forms of some names ("clientsecret", "apikey") but not of the
 * token names: log.info("got token", {accessToken = tok}) writes the token. Azure tooling uses
 * these spellings (az account get-access-token prints "accessToken").
 */
TEST(camel_case_spellings_of_token_and_key_names_are_redacted_too)
{
    CHECK(RED("accessToken"));
    CHECK(RED("refreshToken"));
    CHECK(RED("idToken"));
    CHECK(RED("privateKey"));
    CHECK(RED("clientAssertion"));
    CHECK(RED("secretId"));
    CHECK(RED("codeVerifier"));
}

TEST(extra_names_given_at_init_are_redacted)
{
    aurora_log_init(AURORA_LOG_INFO, "X-Custom-Auth, tenant_key,other");
    CHECK(RED("x-custom-auth"));
    CHECK(RED("TENANT_KEY"));
    CHECK(RED("other"));
    CHECK(RED("authorization"));
    CHECK(!RED("path"));
}

TEST(a_field_with_a_redacted_name_is_written_as_redacted)
{
    aurora_buf b;
    char got[256] = "";

    aurora_buf_init(&b, 4096);
    aurora_log_field_str(&b, "Authorization", "Bearer fake-token-123", 21);
    aurora_log_field_str(&b, "path", "/a", 2);
    if (b.data)
        snprintf(got, sizeof(got), "%s", b.data);
    aurora_buf_free(&b);
    CHECK_EQ_STR(got, ",\"Authorization\":\"[redacted]\",\"path\":\"/a\"");
}

TEST(field_values_are_escaped)
{
    aurora_buf b;
    char got[256] = "";

    aurora_buf_init(&b, 4096);
    aurora_log_field_str(&b, "na\"me", "v\"\\\n", 4);
    if (b.data)
        snprintf(got, sizeof(got), "%s", b.data);
    aurora_buf_free(&b);
    CHECK_EQ_STR(got, ",\"na\\\"me\":\"v\\\"\\\\\\n\"");
}

TEST(json_string_escapes_quotes_backslashes_and_control_characters)
{
    static const char in[] = "q\"b\\s\n\r\t\x01\x1f\x7f/x";
    aurora_buf b;
    char got[256] = "";
    int valid = 0;
    size_t first;

    aurora_buf_init(&b, 4096);
    aurora_log_json_string(&b, in, sizeof(in) - 1);
    first = b.len;
    aurora_log_json_string(&b, "a\0b", 3);
    if (b.data) {
        snprintf(got, sizeof(got), "%s", b.data);
        valid = is_json(b.data, first) && is_json(b.data + first, b.len - first);
    }
    aurora_buf_free(&b);
    CHECK_EQ_STR(got, "\"q\\\"b\\\\s\\n\\r\\t\\u0001\\u001f\x7f/x\"\"a\\u0000b\"");
    CHECK(valid);
}

TEST(integral_and_fractional_numbers_are_written_as_json_numbers)
{
    aurora_buf b;
    char got[256] = "";

    aurora_buf_init(&b, 4096);
    aurora_log_field_num(&b, "a", 3);
    aurora_log_field_num(&b, "b", -2);
    aurora_log_field_num(&b, "c", 1.5);
    aurora_log_field_num(&b, "d", 0);
    if (b.data)
        snprintf(got, sizeof(got), "%s", b.data);
    aurora_buf_free(&b);
    CHECK_EQ_STR(got, ",\"a\":3,\"b\":-2,\"c\":1.5,\"d\":0");
}

TEST(levels_parse_by_name_and_filter_lines)
{
    CHECK_EQ_INT(aurora_log_parse_level("debug"), AURORA_LOG_DEBUG);
    CHECK_EQ_INT(aurora_log_parse_level("INFO"), AURORA_LOG_INFO);
    CHECK_EQ_INT(aurora_log_parse_level("warn"), AURORA_LOG_WARN);
    CHECK_EQ_INT(aurora_log_parse_level("error"), AURORA_LOG_ERROR);
    CHECK_EQ_INT(aurora_log_parse_level("verbose"), -1);
    CHECK_EQ_INT(aurora_log_parse_level(NULL), -1);
    /* The default minimum is info. */
    CHECK(!aurora_log_enabled(AURORA_LOG_DEBUG));
    CHECK(aurora_log_enabled(AURORA_LOG_INFO));
    CHECK(aurora_log_enabled(AURORA_LOG_ERROR));
    CHECK_EQ_INT(capture_begin(), 0);
    aurora_log(AURORA_LOG_DEBUG, "not written", "a", "b", NULL);
    capture_end();
    CHECK_EQ_INT(captured_len, 0);
}

TEST(a_line_is_one_json_object_without_the_secret_values)
{
    char head[64];

    CHECK_EQ_INT(capture_begin(), 0);
    aurora_log(AURORA_LOG_WARN, "login \"failed\"\n", "user", "alice", "client_secret",
               "fake-secret-value-1", "Authorization", "Bearer fake-token-2", "X-Vault-Token",
               "fake-vault-token-3", "note", NULL, NULL);
    capture_end();
    CHECK(is_log_line(captured, captured_len));
    snprintf(head, sizeof(head), "%.7s", captured);
    CHECK_EQ_STR(head, "{\"ts\":\"");
    /* ts is UTC with milliseconds: 2026-11-28T13:24:02.123Z */
    CHECK(captured_len > 32 && captured[17] == 'T' && captured[26] == '.' &&
          captured[30] == 'Z');
    CHECK(strstr(captured, "\"level\":\"warn\",\"msg\":\"login \\\"failed\\\"\\n\"") != NULL);
    CHECK(strstr(captured, "\"user\":\"alice\"") != NULL);
    CHECK(strstr(captured, "\"client_secret\":\"[redacted]\"") != NULL);
    CHECK(strstr(captured, "\"Authorization\":\"[redacted]\"") != NULL);
    CHECK(strstr(captured, "\"X-Vault-Token\":\"[redacted]\"") != NULL);
    CHECK(strstr(captured, "\"note\":\"\"") != NULL);
    CHECK(strstr(captured, "fake-secret-value-1") == NULL);
    CHECK(strstr(captured, "fake-token-2") == NULL);
    CHECK(strstr(captured, "fake-vault-token-3") == NULL);
}

TEST(a_raw_line_carries_the_given_fields)
{
    static const char fields[] = ",\"a\":1,\"b\":\"x\"";

    CHECK_EQ_INT(capture_begin(), 0);
    aurora_log_raw(AURORA_LOG_ERROR, "raw", fields, sizeof(fields) - 1);
    capture_end();
    CHECK(is_log_line(captured, captured_len));
    CHECK(strstr(captured, "\"level\":\"error\",\"msg\":\"raw\",\"a\":1,\"b\":\"x\"}\n") != NULL);
}

TEST(an_oversized_line_still_comes_out_as_one_valid_line)
{
    size_t n = 70 * 1024;
    char *fields = malloc(n + 16);

    CHECK(fields != NULL);
    memcpy(fields, ",\"big\":\"", 8);
    memset(fields + 8, 'y', n - 9);
    fields[n - 1] = '"';
    CHECK_EQ_INT(capture_begin(), 0);
    aurora_log_raw(AURORA_LOG_INFO, "huge", fields, n);
    capture_end();
    free(fields);
    CHECK(is_log_line(captured, captured_len));
    CHECK(captured_len <= 64 * 1024);
}

TEST(a_buffered_thread_writes_nothing_until_it_flushes)
{
    size_t before;
    int one_line;

    CHECK_EQ_INT(capture_begin(), 0);
    aurora_log_set_buffered(1);
    aurora_log(AURORA_LOG_INFO, "first", "k", "v", NULL);
    aurora_log(AURORA_LOG_INFO, "second", "password", "fake-password-4", NULL);
    fflush(NULL);
    before = (size_t)lseek(2, 0, SEEK_CUR);
    aurora_log_flush();
    aurora_log_set_buffered(0);
    capture_end();
    CHECK_EQ_INT(before, 0);
    one_line = captured_len > 0 && is_log_line(captured, (size_t)(strchr(captured, '\n') -
                                                                  captured + 1));
    CHECK(one_line);
    CHECK(strstr(captured, "\"msg\":\"first\"") != NULL);
    CHECK(strstr(captured, "\"msg\":\"second\",\"password\":\"[redacted]\"") != NULL);
    CHECK(strstr(captured, "fake-password-4") == NULL);
}

/*
 * NaN and infinities have no JSON form: printf writes "nan"/"inf", which makes the whole line
 * unparseable (log.info("x", {ratio = 0/0}) does this). Large values such as 1e19 also pass
 * through a double -> long long conversion that is undefined behaviour when out of range.
 * Runs last: under UBSan the conversion aborts the program.
 */
TEST(numbers_without_a_json_form_still_give_valid_json)
{
    static const double vals[] = {NAN, INFINITY, -INFINITY, 1e19, -1e300};
    aurora_buf b;
    int all_valid = 1;

    for (size_t i = 0; i < AURORA_COUNT(vals); i++) {
        aurora_buf_init(&b, 4096);
        aurora_buf_puts(&b, "{\"x\":1");
        aurora_log_field_num(&b, "n", vals[i]);
        aurora_buf_puts(&b, "}");
        if (!b.data || !is_json(b.data, b.len)) {
            printf("     not JSON: %s\n", b.data ? b.data : "(null)");
            all_valid = 0;
        }
        aurora_buf_free(&b);
    }
    CHECK(all_valid);
}

int main(void)
{
    RUN(redaction_matches_listed_names_in_any_case);
    RUN(redaction_leaves_ordinary_names_alone);
    RUN(redaction_compares_whole_names_of_the_given_length);
    RUN(camel_case_spellings_of_token_and_key_names_are_redacted_too);
    RUN(a_field_with_a_redacted_name_is_written_as_redacted);
    RUN(field_values_are_escaped);
    RUN(json_string_escapes_quotes_backslashes_and_control_characters);
    RUN(integral_and_fractional_numbers_are_written_as_json_numbers);
    RUN(levels_parse_by_name_and_filter_lines);
    RUN(a_line_is_one_json_object_without_the_secret_values);
    RUN(a_raw_line_carries_the_given_fields);
    RUN(an_oversized_line_still_comes_out_as_one_valid_line);
    RUN(a_buffered_thread_writes_nothing_until_it_flushes);
    RUN(extra_names_given_at_init_are_redacted);
    RUN(numbers_without_a_json_form_still_give_valid_json);
    return check_summary();
}

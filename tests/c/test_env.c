/*
 * test_env.c: the .env parser and loader, and the typed readers, without Lua.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aurora/aurora.h"
#include "aurora/env.h"
#include "check.h"

static aurora_env_var *vars;
static size_t count;
static char err[128];

static int parse(const char *s)
{
    aurora_env_vars_free(&vars, count);
    count = 0;
    err[0] = '\0';
    return aurora_env_parse(s, strlen(s), &vars, &count, err, sizeof(err));
}

/* Writes s to a fresh temporary file and returns its path (static storage). */
static const char *write_file(const char *s)
{
    static char path[64];
    FILE *f;
    int fd;

    snprintf(path, sizeof(path), "/tmp/aurora-env-test-XXXXXX");
    fd = mkstemp(path);
    if (fd < 0)
        return NULL;
    f = fdopen(fd, "w");
    if (!f)
        return NULL;
    fputs(s, f);
    fclose(f);
    return path;
}

TEST(plain_lines_comments_and_export_parse)
{
    CHECK_EQ_INT(parse("# comment\n\nA=1\nexport B=two\n  C = three  \r\n\tD=\n"), 0);
    CHECK_EQ_INT(count, 4);
    CHECK_EQ_STR(vars[0].name, "A");
    CHECK_EQ_STR(vars[0].value, "1");
    CHECK_EQ_INT(vars[0].line, 3);
    CHECK_EQ_STR(vars[1].name, "B");
    CHECK_EQ_STR(vars[1].value, "two");
    CHECK_EQ_STR(vars[2].name, "C");
    CHECK_EQ_STR(vars[2].value, "three");
    CHECK_EQ_STR(vars[3].name, "D");
    CHECK_EQ_STR(vars[3].value, "");
}

TEST(quoted_values_keep_their_content)
{
    CHECK_EQ_INT(parse("S='a \\n #b \"c\"'\n"
                       "D=\"x\\ny\\t\\\"z\\\\ \\q #\"  # trailing\n"
                       "E=''\n"
                       "export F=\"\"\n"),
                 0);
    CHECK_EQ_INT(count, 4);
    CHECK_EQ_STR(vars[0].value, "a \\n #b \"c\"");
    CHECK_EQ_STR(vars[1].value, "x\ny\t\"z\\ \\q #");
    CHECK_EQ_STR(vars[2].value, "");
    CHECK_EQ_STR(vars[3].value, "");
}

TEST(an_inline_comment_needs_a_blank_before_the_hash)
{
    CHECK_EQ_INT(parse("A=value # note\nB=a#b\nC=#x\nD= #x\nE=x\t#tab\n"), 0);
    CHECK_EQ_STR(vars[0].value, "value");
    CHECK_EQ_STR(vars[1].value, "a#b");
    CHECK_EQ_STR(vars[2].value, "#x");
    CHECK_EQ_STR(vars[3].value, "");
    CHECK_EQ_STR(vars[4].value, "x");
}

TEST(malformed_lines_are_refused_with_their_line_number)
{
    CHECK_EQ_INT(parse("A=1\n1BAD=2\n"), AURORA_E_INVALID);
    CHECK_EQ_STR(err, "line 2: invalid variable name");
    CHECK(vars == NULL);
    CHECK_EQ_INT(parse("A-B=1"), AURORA_E_INVALID);
    CHECK_EQ_STR(err, "line 1: invalid variable name");
    CHECK_EQ_INT(parse("JUSTANAME\n"), AURORA_E_INVALID);
    CHECK_EQ_STR(err, "line 1: expected '=' after the name");
    CHECK_EQ_INT(parse("A B=1\n"), AURORA_E_INVALID);
    CHECK_EQ_INT(parse("\n\nS='open\n"), AURORA_E_INVALID);
    CHECK_EQ_STR(err, "line 3: unterminated single quote");
    CHECK_EQ_INT(parse("D=\"open\\\"\n"), AURORA_E_INVALID);
    CHECK_EQ_STR(err, "line 1: unterminated double quote");
    CHECK_EQ_INT(parse("Q='a' b\n"), AURORA_E_INVALID);
    CHECK_EQ_STR(err, "line 1: unexpected text after the closing quote");
    CHECK_EQ_INT(aurora_env_parse("A=1\nB=x\0y\n", 10, &vars, &count, err, sizeof(err)),
                 AURORA_E_INVALID);
    CHECK_EQ_STR(err, "line 2: NUL byte");
}

TEST(error_messages_never_contain_values)
{
    CHECK_EQ_INT(parse("SECRET='hunter2\n"), AURORA_E_INVALID);
    CHECK(strstr(err, "hunter2") == NULL);
}

TEST(loading_never_overrides_the_environment_and_the_last_line_wins)
{
    const char *path;
    int rc;

    setenv("AURORA_TEST_KEEP", "from-env", 1);
    unsetenv("AURORA_TEST_NEW");
    unsetenv("AURORA_TEST_DUP");
    path = write_file("AURORA_TEST_KEEP=from-file\nAURORA_TEST_NEW='new value'\n"
                      "AURORA_TEST_DUP=first\nAURORA_TEST_DUP=second\n");
    CHECK(path);
    rc = aurora_env_load_file(path, err, sizeof(err));
    unlink(path);
    CHECK_EQ_INT(rc, 0);
    CHECK_EQ_STR(getenv("AURORA_TEST_KEEP"), "from-env");
    CHECK_EQ_STR(getenv("AURORA_TEST_NEW"), "new value");
    CHECK_EQ_STR(getenv("AURORA_TEST_DUP"), "second");
}

TEST(a_malformed_file_sets_nothing)
{
    const char *path;
    char expect[128];
    int rc;

    unsetenv("AURORA_TEST_FIRST");
    path = write_file("AURORA_TEST_FIRST=1\nnot a line\n");
    CHECK(path);
    snprintf(expect, sizeof(expect), "%s:2: expected '=' after the name", path);
    rc = aurora_env_load_file(path, err, sizeof(err));
    unlink(path);
    CHECK_EQ_INT(rc, AURORA_E_INVALID);
    CHECK_EQ_STR(err, expect);
    CHECK(getenv("AURORA_TEST_FIRST") == NULL);
}

TEST(a_missing_file_is_not_found)
{
    CHECK_EQ_INT(aurora_env_load_file("/nonexistent/aurora/.env", err, sizeof(err)),
                 AURORA_E_NOT_FOUND);
}

TEST(integers_are_read_strictly)
{
    long long n = 0;

    setenv("AURORA_TEST_INT", "-42", 1);
    CHECK_EQ_INT(aurora_env_int("AURORA_TEST_INT", &n), 0);
    CHECK_EQ_INT(n, -42);
    setenv("AURORA_TEST_INT", "+7", 1);
    CHECK_EQ_INT(aurora_env_int("AURORA_TEST_INT", &n), 0);
    CHECK_EQ_INT(n, 7);
    setenv("AURORA_TEST_INT", "4x", 1);
    CHECK_EQ_INT(aurora_env_int("AURORA_TEST_INT", &n), AURORA_E_INVALID);
    setenv("AURORA_TEST_INT", " 4", 1);
    CHECK_EQ_INT(aurora_env_int("AURORA_TEST_INT", &n), AURORA_E_INVALID);
    setenv("AURORA_TEST_INT", "99999999999999999999", 1);
    CHECK_EQ_INT(aurora_env_int("AURORA_TEST_INT", &n), AURORA_E_INVALID);
    setenv("AURORA_TEST_INT", "", 1);
    CHECK_EQ_INT(aurora_env_int("AURORA_TEST_INT", &n), AURORA_E_NOT_FOUND);
    unsetenv("AURORA_TEST_INT");
    CHECK_EQ_INT(aurora_env_int("AURORA_TEST_INT", &n), AURORA_E_NOT_FOUND);
}

TEST(booleans_accept_the_usual_words)
{
    static const char *const yes[] = {"1", "true", "TRUE", "Yes", "on"};
    static const char *const no[] = {"0", "false", "No", "OFF"};
    size_t i;
    int b;

    for (i = 0; i < AURORA_COUNT(yes); i++) {
        setenv("AURORA_TEST_BOOL", yes[i], 1);
        b = 0;
        CHECK_EQ_INT(aurora_env_bool("AURORA_TEST_BOOL", &b), 0);
        CHECK_EQ_INT(b, 1);
    }
    for (i = 0; i < AURORA_COUNT(no); i++) {
        setenv("AURORA_TEST_BOOL", no[i], 1);
        b = 1;
        CHECK_EQ_INT(aurora_env_bool("AURORA_TEST_BOOL", &b), 0);
        CHECK_EQ_INT(b, 0);
    }
    setenv("AURORA_TEST_BOOL", "maybe", 1);
    CHECK_EQ_INT(aurora_env_bool("AURORA_TEST_BOOL", &b), AURORA_E_INVALID);
    unsetenv("AURORA_TEST_BOOL");
    CHECK_EQ_INT(aurora_env_bool("AURORA_TEST_BOOL", &b), AURORA_E_NOT_FOUND);
}

int main(void)
{
    RUN(plain_lines_comments_and_export_parse);
    RUN(quoted_values_keep_their_content);
    RUN(an_inline_comment_needs_a_blank_before_the_hash);
    RUN(malformed_lines_are_refused_with_their_line_number);
    RUN(error_messages_never_contain_values);
    RUN(loading_never_overrides_the_environment_and_the_last_line_wins);
    RUN(a_malformed_file_sets_nothing);
    RUN(a_missing_file_is_not_found);
    RUN(integers_are_read_strictly);
    RUN(booleans_accept_the_usual_words);
    aurora_env_vars_free(&vars, count);
    return check_summary();
}

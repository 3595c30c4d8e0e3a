/*
 * test_buf.c: bounded growable buffers without Lua: growth, the hard maximum (a refused append
 * leaves the buffer as it was), printf, take, secret buffers, and aurora_read_file.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aurora/aurora.h"
#include "aurora/buf.h"
#include "check.h"

/* Writes n bytes of c to a fresh temporary file; returns its path (static storage) or NULL. */
static const char *temp_file(char c, size_t n)
{
    static char path[64];
    char chunk[4096];
    FILE *f;
    int fd;

    snprintf(path, sizeof(path), "/tmp/aurora-buf-test-XXXXXX");
    fd = mkstemp(path);
    if (fd < 0)
        return NULL;
    f = fdopen(fd, "wb");
    if (!f) {
        close(fd);
        return NULL;
    }
    memset(chunk, c, sizeof(chunk));
    while (n > 0) {
        size_t k = n < sizeof(chunk) ? n : sizeof(chunk);
        fwrite(chunk, 1, k, f);
        n -= k;
    }
    fclose(f);
    return path;
}

static int all_bytes_are(const char *p, size_t n, char c)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != c)
            return 0;
    return 1;
}

TEST(a_new_buffer_allocates_nothing)
{
    aurora_buf b;

    aurora_buf_init(&b, 100);
    CHECK(b.data == NULL);
    CHECK_EQ_INT(b.len, 0);
    CHECK_EQ_INT(b.cap, 0);
    CHECK_EQ_INT(b.max, 100);
    CHECK_EQ_INT(b.secret, 0);
}

TEST(appends_grow_the_buffer_and_keep_it_nul_terminated)
{
    aurora_buf b;
    char chunk[1000];
    int rc = 0, ok;

    aurora_buf_init(&b, 1 << 20);
    memset(chunk, 'x', sizeof(chunk));
    for (int i = 0; i < 100 && rc == 0; i++)
        rc = aurora_buf_append(&b, chunk, sizeof(chunk));
    ok = rc == 0 && b.len == 100000 && b.cap >= b.len + 1 && b.data[b.len] == '\0' &&
         all_bytes_are(b.data, b.len, 'x');
    aurora_buf_free(&b);
    CHECK(ok);
    CHECK(b.data == NULL);
    CHECK_EQ_INT(b.len, 0);
}

TEST(an_empty_append_still_gives_a_nul_terminated_string)
{
    aurora_buf b;
    int rc, ok;

    aurora_buf_init(&b, 10);
    rc = aurora_buf_append(&b, "", 0);
    ok = b.data != NULL && b.data[0] == '\0' && b.len == 0;
    aurora_buf_free(&b);
    CHECK_EQ_INT(rc, 0);
    CHECK(ok);
}

TEST(the_maximum_is_enforced_and_a_refused_append_changes_nothing)
{
    aurora_buf b;
    int a, c, d, e, f, ok;
    size_t cap;

    aurora_buf_init(&b, 10);
    a = aurora_buf_append(&b, "12345678", 8);
    cap = b.cap;
    c = aurora_buf_append(&b, "abc", 3);
    ok = b.data && b.len == 8 && b.cap == cap && strcmp(b.data, "12345678") == 0;
    d = aurora_buf_puts(&b, "xyz");
    ok = ok && b.len == 8 && strcmp(b.data, "12345678") == 0;
    e = aurora_buf_append(&b, "90", 2);
    ok = ok && b.len == 10 && strcmp(b.data, "1234567890") == 0 && b.cap <= b.max + 1;
    f = aurora_buf_append(&b, "!", 1);
    ok = ok && b.len == 10 && strcmp(b.data, "1234567890") == 0;
    aurora_buf_free(&b);
    CHECK_EQ_INT(a, 0);
    CHECK_EQ_INT(c, AURORA_E_TOO_LARGE);
    CHECK_EQ_INT(d, AURORA_E_TOO_LARGE);
    CHECK_EQ_INT(e, 0);
    CHECK_EQ_INT(f, AURORA_E_TOO_LARGE);
    CHECK(ok);
}

TEST(a_zero_maximum_takes_only_empty_appends)
{
    aurora_buf b;
    int a, c;

    aurora_buf_init(&b, 0);
    a = aurora_buf_append(&b, "", 0);
    c = aurora_buf_append(&b, "x", 1);
    aurora_buf_free(&b);
    CHECK_EQ_INT(a, 0);
    CHECK_EQ_INT(c, AURORA_E_TOO_LARGE);
}

/*
 * A maximum of SIZE_MAX means "no practical limit" (aurora.http's max_body = -1 becomes
 * exactly this). grow() clamps the capacity to max + 1, which wraps to 0 there, so the buffer
 * must still end up with room for what was appended.
 */
TEST(a_buffer_whose_maximum_is_size_max_still_grows_to_fit)
{
    aurora_buf b;
    int rc;
    size_t cap, len;

    aurora_buf_init(&b, SIZE_MAX);
    rc = aurora_buf_append(&b, "x", 1);
    cap = b.cap;
    len = b.len;
    aurora_buf_free(&b);
    CHECK_EQ_INT(rc, 0);
    CHECK_EQ_INT(len, 1);
    CHECK(cap >= len + 1);
}

TEST(printf_appends_formatted_text)
{
    aurora_buf b;
    int a, c;
    char got[64] = "";

    aurora_buf_init(&b, 64);
    a = aurora_buf_puts(&b, "n=");
    c = aurora_buf_printf(&b, "%d,%s,%.2f", 42, "x", 1.5);
    if (b.data)
        snprintf(got, sizeof(got), "%s", b.data);
    aurora_buf_free(&b);
    CHECK_EQ_INT(a, 0);
    CHECK_EQ_INT(c, 0);
    CHECK_EQ_STR(got, "n=42,x,1.50");
}

TEST(printf_beyond_the_maximum_fails_and_changes_nothing)
{
    aurora_buf b;
    int a, c, ok;

    aurora_buf_init(&b, 8);
    a = aurora_buf_printf(&b, "%s", "abcd");
    c = aurora_buf_printf(&b, "%d", 123456);
    ok = b.data && b.len == 4 && strcmp(b.data, "abcd") == 0;
    aurora_buf_free(&b);
    CHECK_EQ_INT(a, 0);
    CHECK_EQ_INT(c, AURORA_E_TOO_LARGE);
    CHECK(ok);
}

TEST(take_hands_over_the_storage_and_leaves_an_empty_buffer)
{
    aurora_buf b;
    size_t len = 0;
    char *p;
    int ok;

    aurora_buf_init(&b, 64);
    aurora_buf_puts(&b, "hello");
    p = aurora_buf_take(&b, &len);
    ok = p && len == 5 && strcmp(p, "hello") == 0 && b.data == NULL && b.len == 0 && b.cap == 0;
    free(p);
    CHECK(ok);
    /* The buffer is usable again, with the same maximum. */
    CHECK_EQ_INT(aurora_buf_puts(&b, "again"), 0);
    ok = strcmp(b.data, "again") == 0 && b.max == 64;
    aurora_buf_free(&b);
    CHECK(ok);
}

TEST(take_of_a_buffer_that_never_allocated_is_null)
{
    aurora_buf b;
    size_t len = 99;

    aurora_buf_init(&b, 64);
    CHECK(aurora_buf_take(&b, &len) == NULL);
    CHECK_EQ_INT(len, 0);
    CHECK(aurora_buf_take(&b, NULL) == NULL);
}

TEST(reset_empties_but_keeps_the_storage)
{
    aurora_buf b;
    char *before;
    int ok;

    aurora_buf_init(&b, 64);
    aurora_buf_puts(&b, "abc");
    before = b.data;
    aurora_buf_reset(&b);
    ok = before && b.data == before && b.len == 0 && b.data[0] == '\0' && b.cap > 0;
    ok = ok && aurora_buf_puts(&b, "de") == 0 && strcmp(b.data, "de") == 0;
    aurora_buf_free(&b);
    CHECK(ok);
}

TEST(a_secret_buffer_keeps_its_content_across_growth)
{
    aurora_buf b;
    char chunk[300];
    int rc = 0, ok;

    aurora_buf_init(&b, 1 << 16);
    b.secret = 1;
    memset(chunk, 's', sizeof(chunk));
    for (int i = 0; i < 20 && rc == 0; i++)
        rc = aurora_buf_append(&b, chunk, sizeof(chunk));
    ok = rc == 0 && b.data && b.len == 6000 && all_bytes_are(b.data, b.len, 's') && b.data[b.len] == '\0';
    aurora_buf_free(&b);
    CHECK(ok);
    CHECK(b.data == NULL);
}

TEST(resetting_a_secret_buffer_wipes_every_byte_of_its_storage)
{
    aurora_buf b;
    size_t cap;
    int ok;

    aurora_buf_init(&b, 1024);
    b.secret = 1;
    aurora_buf_puts(&b, "client-secret-value-for-tests");
    cap = b.cap;
    aurora_buf_reset(&b);
    ok = b.data != NULL && b.len == 0 && b.cap == cap && all_bytes_are(b.data, cap, '\0');
    aurora_buf_free(&b);
    CHECK(ok);
}

TEST(freeing_twice_is_harmless)
{
    aurora_buf b;

    aurora_buf_init(&b, 16);
    aurora_buf_puts(&b, "x");
    aurora_buf_free(&b);
    aurora_buf_free(&b);
    CHECK(b.data == NULL);
    CHECK_EQ_INT(b.len, 0);
    CHECK_EQ_INT(b.cap, 0);
}

TEST(read_file_appends_the_whole_file)
{
    aurora_buf b;
    const char *path = temp_file('q', 20000);
    int rc, ok;

    CHECK(path != NULL);
    aurora_buf_init(&b, 1 << 20);
    aurora_buf_puts(&b, ">");
    rc = aurora_read_file(path, &b);
    unlink(path);
    ok = b.data && b.len == 20001 && b.data[0] == '>' && all_bytes_are(b.data + 1, 20000, 'q') &&
         b.data[b.len] == '\0';
    aurora_buf_free(&b);
    CHECK_EQ_INT(rc, 0);
    CHECK(ok);
}

TEST(read_file_of_an_empty_file_succeeds_with_nothing_appended)
{
    aurora_buf b;
    const char *path = temp_file('q', 0);
    int rc;
    size_t len;

    CHECK(path != NULL);
    aurora_buf_init(&b, 16);
    rc = aurora_read_file(path, &b);
    unlink(path);
    len = b.len;
    aurora_buf_free(&b);
    CHECK_EQ_INT(rc, 0);
    CHECK_EQ_INT(len, 0);
}

TEST(read_file_of_a_missing_file_is_not_found)
{
    aurora_buf b;
    int rc;

    aurora_buf_init(&b, 1024);
    rc = aurora_read_file("/nonexistent/aurora-test/none.pem", &b);
    CHECK_EQ_INT(rc, AURORA_E_NOT_FOUND);
    CHECK(b.data == NULL);
    CHECK_EQ_INT(b.len, 0);
}

TEST(read_file_of_a_file_larger_than_the_maximum_is_too_large)
{
    aurora_buf b;
    const char *path = temp_file('z', 10000);
    int rc, small_rc;

    CHECK(path != NULL);
    aurora_buf_init(&b, 9999);
    rc = aurora_read_file(path, &b);
    aurora_buf_free(&b);
    /* Exactly the maximum fits. */
    aurora_buf_init(&b, 10000);
    small_rc = aurora_read_file(path, &b);
    aurora_buf_free(&b);
    unlink(path);
    CHECK_EQ_INT(rc, AURORA_E_TOO_LARGE);
    CHECK_EQ_INT(small_rc, 0);
}

TEST(read_file_of_a_directory_is_an_io_error)
{
    aurora_buf b;
    int rc;

    aurora_buf_init(&b, 1024);
    rc = aurora_read_file("/tmp", &b);
    aurora_buf_free(&b);
    CHECK_EQ_INT(rc, AURORA_E_IO);
}

int main(void)
{
    RUN(a_new_buffer_allocates_nothing);
    RUN(appends_grow_the_buffer_and_keep_it_nul_terminated);
    RUN(an_empty_append_still_gives_a_nul_terminated_string);
    RUN(the_maximum_is_enforced_and_a_refused_append_changes_nothing);
    RUN(a_zero_maximum_takes_only_empty_appends);
    RUN(printf_appends_formatted_text);
    RUN(printf_beyond_the_maximum_fails_and_changes_nothing);
    RUN(take_hands_over_the_storage_and_leaves_an_empty_buffer);
    RUN(take_of_a_buffer_that_never_allocated_is_null);
    RUN(reset_empties_but_keeps_the_storage);
    RUN(a_secret_buffer_keeps_its_content_across_growth);
    RUN(resetting_a_secret_buffer_wipes_every_byte_of_its_storage);
    RUN(freeing_twice_is_harmless);
    RUN(read_file_appends_the_whole_file);
    RUN(read_file_of_an_empty_file_succeeds_with_nothing_appended);
    RUN(read_file_of_a_missing_file_is_not_found);
    RUN(read_file_of_a_file_larger_than_the_maximum_is_too_large);
    RUN(read_file_of_a_directory_is_an_io_error);
    /* Last: should it regress, AddressSanitizer stops the program at the heap overflow. */
    RUN(a_buffer_whose_maximum_is_size_max_still_grows_to_fit);
    return check_summary();
}

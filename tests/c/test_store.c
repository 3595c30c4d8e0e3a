/*
 * test_store.c: the encrypted store without Lua: path rules, keys (given, AURORA_MASTER_KEY, the
 * key file), versions and check-and-set, file modes, what a crash or an attacker leaves behind
 * (a stray temporary file, a truncated, flipped, moved or re-headed record, a wrong key), the
 * canary that must never appear in clear, listing, and four threads racing on one record.
 */
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aurora/aurora.h"
#include "aurora/buf.h"
#include "aurora/store.h"
#include "check.h"

#define CANARY "canary-5f0c1d9e-plaintext"

static char root[256];
static char errmsg[512];

static int remove_entry(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    return remove(p);
}

static void cleanup(void)
{
    if (root[0])
        nftw(root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* A fresh directory name under the test root (not created). */
static const char *fresh_dir(const char *name)
{
    static char path[512];

    snprintf(path, sizeof(path), "%s/%s", root, name);
    return path;
}

static aurora_store *open_with(const char *dir, const unsigned char *key)
{
    aurora_store *s = NULL;

    if (aurora_store_open(dir, key, &s, errmsg, sizeof(errmsg)) != 0) {
        printf("  open: %s\n", errmsg);
        return NULL;
    }
    return s;
}

static const unsigned char KEY_A[33] = "0123456789abcdef0123456789abcdef";
static const unsigned char KEY_B[33] = "fedcba9876543210fedcba9876543210";

static int put(aurora_store *s, const char *path, const char *json, int64_t cas, int64_t *version)
{
    aurora_store_meta m;
    int rc = aurora_store_put(s, path, json, strlen(json), cas, &m, errmsg, sizeof(errmsg));

    if (rc == 0 && version)
        *version = m.version;
    return rc;
}

/* Gets path into a fresh secret buffer; returns the rc and copies the value to out. */
static int get(aurora_store *s, const char *path, char *out, size_t outlen, aurora_store_meta *m)
{
    aurora_buf b;
    int rc;

    aurora_buf_init(&b, AURORA_STORE_VALUE_MAX);
    b.secret = 1;
    rc = aurora_store_get(s, path, &b, m, errmsg, sizeof(errmsg));
    if (rc == 0 && out)
        snprintf(out, outlen, "%.*s", (int)b.len, b.data ? b.data : "");
    aurora_buf_free(&b);
    return rc;
}

static long file_size(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

static int file_mode(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 ? (int)(st.st_mode & 0777) : -1;
}

static int read_bytes(const char *path, unsigned char *buf, size_t max, size_t *n)
{
    FILE *f = fopen(path, "rb");

    if (!f)
        return -1;
    *n = fread(buf, 1, max, f);
    fclose(f);
    return 0;
}

static int write_bytes(const char *path, const unsigned char *buf, size_t n)
{
    FILE *f = fopen(path, "wb");

    if (!f)
        return -1;
    fwrite(buf, 1, n, f);
    fclose(f);
    return 0;
}

static int canary_found;

static int scan_for_canary(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    unsigned char buf[65536];
    size_t n = 0, i;

    if (flag != FTW_F || read_bytes(p, buf, sizeof(buf), &n) != 0)
        return 0;
    for (i = 0; i + strlen(CANARY) <= n; i++)
        if (memcmp(buf + i, CANARY, strlen(CANARY)) == 0)
            canary_found = 1;
    return 0;
}

/* Names of a listing, joined with ",". */
static int list(aurora_store *s, const char *prefix, char *out, size_t outlen)
{
    aurora_buf b;
    size_t count = 0, i, off = 0;
    int rc;

    aurora_buf_init(&b, 1 << 20);
    out[0] = '\0';
    rc = aurora_store_list(s, prefix, &b, &count, errmsg, sizeof(errmsg));
    for (i = 0; rc == 0 && i < count; i++) {
        if (i)
            strncat(out, ",", outlen - strlen(out) - 1);
        strncat(out, b.data + off, outlen - strlen(out) - 1);
        off += strlen(b.data + off) + 1;
    }
    aurora_buf_free(&b);
    return rc;
}

TEST(paths_are_checked_before_the_filesystem)
{
    static const char *good[] = {
        "a", "users/42/azure", "user@example.com/sp-1", "a.b_c-d/E.F", "x.rec", "a/b/c/d/e/f/g/h",
    };
    static const char *bad[] = {
        "",        "/a",          "a/",  "a//b", ".",   "..",
        "a/../b",  "a/./b",       "a b", "a\\b", "a~b", "a/b/c/d/e/f/g/h/i",
        "x.rec/y", "caf\xc3\xa9",
    };
    char long_seg[200];
    size_t i;

    for (i = 0; i < AURORA_COUNT(good); i++)
        CHECK_EQ_INT(aurora_store_check_path(good[i], 0, errmsg, sizeof(errmsg)), 0);
    for (i = 0; i < AURORA_COUNT(bad); i++)
        CHECK_EQ_INT(aurora_store_check_path(bad[i], 0, errmsg, sizeof(errmsg)), AURORA_E_INVALID);
    CHECK(strncmp(errmsg, "invalid path: ", 14) == 0);
    memset(long_seg, 'a', 128);
    long_seg[128] = '\0';
    CHECK_EQ_INT(aurora_store_check_path(long_seg, 0, errmsg, sizeof(errmsg)), 0);
    long_seg[128] = 'a';
    long_seg[129] = '\0';
    CHECK_EQ_INT(aurora_store_check_path(long_seg, 0, errmsg, sizeof(errmsg)), AURORA_E_INVALID);
    CHECK_EQ_STR(errmsg, "invalid path: a segment is longer than 128 bytes");
    /* folders: the root, and one trailing slash */
    CHECK_EQ_INT(aurora_store_check_path("", 1, errmsg, sizeof(errmsg)), 0);
    CHECK_EQ_INT(aurora_store_check_path("users/", 1, errmsg, sizeof(errmsg)), 0);
    CHECK_EQ_INT(aurora_store_check_path("/", 1, errmsg, sizeof(errmsg)), AURORA_E_INVALID);
    CHECK_EQ_INT(aurora_store_check_path("users//", 1, errmsg, sizeof(errmsg)), AURORA_E_INVALID);
    CHECK_EQ_INT(aurora_store_check_path("a.rec", 1, errmsg, sizeof(errmsg)), AURORA_E_INVALID);
}

TEST(keys_parse_from_hex_and_base64_only)
{
    unsigned char key[32];
    const char *hex = "000102030405060708090a0b0c0d0e0f101112131415161718191A1B1C1D1E1F";
    const char *b64 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    size_t i;

    CHECK_EQ_INT(aurora_store_key_parse(hex, strlen(hex), key), 0);
    for (i = 0; i < 32; i++)
        CHECK_EQ_INT(key[i], i);
    memset(key, 0, sizeof(key));
    CHECK_EQ_INT(aurora_store_key_parse(b64, strlen(b64), key), 0);
    CHECK_EQ_INT(key[31], 31);
    CHECK_EQ_INT(aurora_store_key_parse("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n", 45, key),
                 0);
    CHECK_EQ_INT(aurora_store_key_parse(hex, 63, key), AURORA_E_INVALID);
    CHECK_EQ_INT(key[31], 0); /* wiped on failure */
    CHECK_EQ_INT(aurora_store_key_parse("AAEC", 4, key), AURORA_E_INVALID);
    CHECK_EQ_INT(
        aurora_store_key_parse("zz0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1"
                               "d1e1f",
                               64, key),
        AURORA_E_INVALID);
    CHECK_EQ_INT(aurora_store_key_parse("", 0, key), AURORA_E_INVALID);
}

TEST(values_round_trip_with_versions_and_times)
{
    aurora_store *s = open_with(fresh_dir("roundtrip"), KEY_A);
    aurora_store_meta m;
    int64_t v = 0;
    char out[256];

    CHECK(s);
    CHECK_EQ_INT(put(s, "users/42/azure", "{\"secret\":\"" CANARY "\"}", -1, &v), 0);
    CHECK_EQ_INT(v, 1);
    CHECK_EQ_INT(get(s, "users/42/azure", out, sizeof(out), &m), 0);
    CHECK_EQ_STR(out, "{\"secret\":\"" CANARY "\"}");
    CHECK_EQ_INT(m.version, 1);
    CHECK(m.created > 1600000000 && m.updated == m.created);
    CHECK_EQ_INT(put(s, "users/42/azure", "{\"n\":2}", -1, &v), 0);
    CHECK_EQ_INT(v, 2);
    CHECK_EQ_INT(get(s, "users/42/azure", out, sizeof(out), &m), 0);
    CHECK_EQ_STR(out, "{\"n\":2}");
    CHECK_EQ_INT(m.version, 2);
    CHECK_EQ_INT(get(s, "users/42/nothing", out, sizeof(out), &m), AURORA_E_NOT_FOUND);
    CHECK_EQ_INT(get(s, "users/42/azure/deeper", out, sizeof(out), &m), AURORA_E_NOT_FOUND);
    CHECK_EQ_INT(get(s, "../etc/passwd", out, sizeof(out), &m), AURORA_E_INVALID);
    aurora_store_close(&s);
    CHECK(s == NULL);
    aurora_store_close(&s);
}

TEST(check_and_set_follows_kv_v2)
{
    aurora_store *s = open_with(fresh_dir("cas"), KEY_A);
    int64_t v = 0;

    CHECK(s);
    CHECK_EQ_INT(put(s, "k", "1", 1, &v), AURORA_E_CONFLICT); /* absent, cas 1 */
    CHECK_EQ_INT(put(s, "k", "1", 0, &v), 0);
    CHECK_EQ_INT(v, 1);
    CHECK_EQ_INT(put(s, "k", "2", 0, &v), AURORA_E_CONFLICT); /* exists, cas 0 */
    CHECK(strstr(errmsg, "version 1") != NULL);
    CHECK_EQ_INT(put(s, "k", "2", 2, &v), AURORA_E_CONFLICT);
    CHECK_EQ_INT(put(s, "k", "2", 1, &v), 0);
    CHECK_EQ_INT(v, 2);
    CHECK_EQ_INT(put(s, "k", "3", -1, &v), 0);
    CHECK_EQ_INT(v, 3);
    aurora_store_close(&s);
}

TEST(files_are_private_and_hold_no_plaintext)
{
    const char *dir = fresh_dir("modes");
    char file[600], keyfile[600];
    aurora_store *s = open_with(dir, NULL);

    CHECK(s);
    CHECK_EQ_INT(put(s, "users/7/sp", "{\"password\":\"" CANARY "\"}", -1, NULL), 0);
    snprintf(file, sizeof(file), "%s/users/7/sp.rec", dir);
    snprintf(keyfile, sizeof(keyfile), "%s.key", dir);
    CHECK_EQ_INT(file_mode(file), 0600);
    CHECK_EQ_INT(file_mode(keyfile), 0600);
    CHECK_EQ_INT(file_mode(dir), 0700);
    snprintf(file, sizeof(file), "%s/users/7", dir);
    CHECK_EQ_INT(file_mode(file), 0700);
    CHECK_EQ_INT(file_size(keyfile), 65);
    canary_found = 0;
    nftw(dir, scan_for_canary, 16, FTW_PHYS);
    CHECK(!canary_found);
    aurora_store_close(&s);
}

TEST(the_key_file_is_made_once_and_reused)
{
    const char *dir = fresh_dir("keyfile");
    char keyfile[600], out[64];
    aurora_store *s = open_with(dir, NULL), *again;

    CHECK(s);
    CHECK_EQ_INT(put(s, "k", "\"v\"", -1, NULL), 0);
    aurora_store_close(&s);
    again = open_with(dir, NULL);
    CHECK(again);
    CHECK_EQ_INT(get(again, "k", out, sizeof(out), NULL), 0);
    CHECK_EQ_STR(out, "\"v\"");
    aurora_store_close(&again);
    /* A key file others may read is refused. */
    snprintf(keyfile, sizeof(keyfile), "%s.key", dir);
    CHECK_EQ_INT(chmod(keyfile, 0644), 0);
    CHECK_EQ_INT(aurora_store_open(dir, NULL, &s, errmsg, sizeof(errmsg)), AURORA_E_DENIED);
    CHECK(strstr(errmsg, "chmod 600") != NULL);
    CHECK(s == NULL);
    /* A key file with garbage is refused, not replaced. */
    CHECK_EQ_INT(write_bytes(keyfile, (const unsigned char *)"not a key\n", 10), 0);
    CHECK_EQ_INT(chmod(keyfile, 0600), 0);
    CHECK_EQ_INT(aurora_store_open(dir, NULL, &s, errmsg, sizeof(errmsg)), AURORA_E_INVALID);
    CHECK_EQ_INT(file_size(keyfile), 10);
}

TEST(aurora_master_key_wins_over_the_key_file_and_is_validated)
{
    const char *dir = fresh_dir("envkey");
    char keyfile[600], out[64];
    aurora_store *s;

    /* KEY_A in hex */
    setenv("AURORA_MASTER_KEY", "3031323334353637383961626364656630313233343536373839616263646566",
           1);
    s = open_with(dir, NULL);
    CHECK(s);
    CHECK_EQ_INT(put(s, "k", "\"v\"", -1, NULL), 0);
    aurora_store_close(&s);
    snprintf(keyfile, sizeof(keyfile), "%s.key", dir);
    CHECK_EQ_INT(file_size(keyfile), -1); /* no key file was made */
    unsetenv("AURORA_MASTER_KEY");
    s = open_with(dir, KEY_A);
    CHECK(s);
    CHECK_EQ_INT(get(s, "k", out, sizeof(out), NULL), 0);
    aurora_store_close(&s);
    setenv("AURORA_MASTER_KEY", "too-short", 1);
    CHECK_EQ_INT(aurora_store_open(fresh_dir("envkey-bad"), NULL, &s, errmsg, sizeof(errmsg)),
                 AURORA_E_INVALID);
    unsetenv("AURORA_MASTER_KEY");
    CHECK(strstr(errmsg, "AURORA_MASTER_KEY") != NULL);
    CHECK(strstr(errmsg, "too-short") == NULL);
    CHECK_EQ_INT(file_mode(fresh_dir("envkey-bad")), -1); /* nothing created */
}

TEST(a_wrong_key_is_a_crypto_error_not_an_empty_result)
{
    const char *dir = fresh_dir("wrongkey");
    aurora_store *s = open_with(dir, KEY_A), *other;
    char out[64];

    CHECK(s);
    CHECK_EQ_INT(put(s, "k", "{\"a\":1}", -1, NULL), 0);
    other = open_with(dir, KEY_B);
    CHECK(other);
    CHECK_EQ_INT(get(other, "k", out, sizeof(out), NULL), AURORA_E_CRYPTO);
    CHECK(strstr(errmsg, "the key is wrong") != NULL);
    /* and a write over a record that does not decrypt is refused */
    CHECK_EQ_INT(put(other, "k", "{}", -1, NULL), AURORA_E_CRYPTO);
    CHECK_EQ_INT(get(s, "k", out, sizeof(out), NULL), 0);
    aurora_store_close(&s);
    aurora_store_close(&other);
}

TEST(a_crash_before_the_rename_leaves_the_old_record)
{
    const char *dir = fresh_dir("crash");
    aurora_store *s = open_with(dir, KEY_A);
    unsigned char v1[4096], v2[4096];
    size_t n1 = 0, n2 = 0;
    char file[600], tmp[640], out[64], names[256];
    aurora_store_meta m;
    int64_t v = 0;

    CHECK(s);
    snprintf(file, sizeof(file), "%s/a/rec.rec", dir);
    CHECK_EQ_INT(put(s, "a/rec", "\"old\"", -1, NULL), 0);
    CHECK_EQ_INT(read_bytes(file, v1, sizeof(v1), &n1), 0);
    CHECK_EQ_INT(put(s, "a/rec", "\"new\"", -1, NULL), 0);
    CHECK_EQ_INT(read_bytes(file, v2, sizeof(v2), &n2), 0);
    /* The state a crash between write and rename leaves: the old record, the new one in a
     * temporary file beside it. */
    CHECK_EQ_INT(write_bytes(file, v1, n1), 0);
    snprintf(tmp, sizeof(tmp), "%s~Zq81xA", file);
    CHECK_EQ_INT(write_bytes(tmp, v2, n2), 0);
    CHECK_EQ_INT(get(s, "a/rec", out, sizeof(out), &m), 0);
    CHECK_EQ_STR(out, "\"old\"");
    CHECK_EQ_INT(m.version, 1);
    CHECK_EQ_INT(list(s, "a", names, sizeof(names)), 0);
    CHECK_EQ_STR(names, "rec");
    CHECK_EQ_INT(put(s, "a/rec", "\"newer\"", 1, &v), 0);
    CHECK_EQ_INT(v, 2);
    CHECK_EQ_INT(get(s, "a/rec", out, sizeof(out), &m), 0);
    CHECK_EQ_STR(out, "\"newer\"");
    aurora_store_close(&s);
}

TEST(damaged_records_fail_loudly)
{
    const char *dir = fresh_dir("damage");
    aurora_store *s = open_with(dir, KEY_A);
    unsigned char rec[4096], bad[4096];
    size_t n = 0;
    char file[600], other[600], out[64];

    CHECK(s);
    snprintf(file, sizeof(file), "%s/k.rec", dir);
    CHECK_EQ_INT(put(s, "k", "{\"secret\":\"" CANARY "\"}", -1, NULL), 0);
    CHECK_EQ_INT(read_bytes(file, rec, sizeof(rec), &n), 0);
    CHECK(n > 56);
    /* truncated below any record */
    CHECK_EQ_INT(write_bytes(file, rec, 20), 0);
    CHECK_EQ_INT(get(s, "k", out, sizeof(out), NULL), AURORA_E_INVALID);
    CHECK(strstr(errmsg, "truncated") != NULL);
    CHECK_EQ_INT(write_bytes(file, rec, 0), 0);
    CHECK_EQ_INT(get(s, "k", out, sizeof(out), NULL), AURORA_E_INVALID);
    /* truncated by one byte: the tag no longer verifies */
    CHECK_EQ_INT(write_bytes(file, rec, n - 1), 0);
    CHECK_EQ_INT(get(s, "k", out, sizeof(out), NULL), AURORA_E_CRYPTO);
    CHECK(strstr(errmsg, CANARY) == NULL);
    /* a flipped byte in the ciphertext */
    memcpy(bad, rec, n);
    bad[n / 2 + 20] ^= 0x01;
    CHECK_EQ_INT(write_bytes(file, bad, n), 0);
    CHECK_EQ_INT(get(s, "k", out, sizeof(out), NULL), AURORA_E_CRYPTO);
    /* a faked version in the header */
    memcpy(bad, rec, n);
    bad[11] ^= 0x07;
    CHECK_EQ_INT(write_bytes(file, bad, n), 0);
    CHECK_EQ_INT(get(s, "k", out, sizeof(out), NULL), AURORA_E_CRYPTO);
    /* bad magic */
    memcpy(bad, rec, n);
    bad[0] = 'X';
    CHECK_EQ_INT(write_bytes(file, bad, n), 0);
    CHECK_EQ_INT(get(s, "k", out, sizeof(out), NULL), AURORA_E_INVALID);
    CHECK(strstr(errmsg, "magic") != NULL);
    /* the intact record, moved to another path */
    snprintf(other, sizeof(other), "%s/j.rec", dir);
    CHECK_EQ_INT(write_bytes(other, rec, n), 0);
    CHECK_EQ_INT(get(s, "j", out, sizeof(out), NULL), AURORA_E_CRYPTO);
    /* restored, it reads again */
    CHECK_EQ_INT(write_bytes(file, rec, n), 0);
    CHECK_EQ_INT(get(s, "k", out, sizeof(out), NULL), 0);
    aurora_store_close(&s);
}

TEST(delete_removes_the_record_and_empty_folders)
{
    const char *dir = fresh_dir("delete");
    aurora_store *s = open_with(dir, KEY_A);
    char names[256], folder[600];

    CHECK(s);
    CHECK_EQ_INT(put(s, "users/1/azure", "{}", -1, NULL), 0);
    CHECK_EQ_INT(put(s, "users/2/azure", "{}", -1, NULL), 0);
    CHECK_EQ_INT(aurora_store_delete(s, "users/1/azure", errmsg, sizeof(errmsg)), 0);
    CHECK_EQ_INT(get(s, "users/1/azure", NULL, 0, NULL), AURORA_E_NOT_FOUND);
    CHECK_EQ_INT(aurora_store_delete(s, "users/1/azure", errmsg, sizeof(errmsg)),
                 AURORA_E_NOT_FOUND);
    snprintf(folder, sizeof(folder), "%s/users/1", dir);
    CHECK_EQ_INT(file_mode(folder), -1);
    CHECK_EQ_INT(list(s, "users", names, sizeof(names)), 0);
    CHECK_EQ_STR(names, "2/");
    CHECK_EQ_INT(aurora_store_delete(s, "users/2/azure", errmsg, sizeof(errmsg)), 0);
    CHECK_EQ_INT(list(s, "", names, sizeof(names)), 0);
    CHECK_EQ_STR(names, "");
    CHECK_EQ_INT(file_mode(dir), 0700); /* the store directory itself stays */
    CHECK_EQ_INT(aurora_store_delete(s, "a/../b", errmsg, sizeof(errmsg)), AURORA_E_INVALID);
    aurora_store_close(&s);
}

TEST(list_shows_records_and_folders_in_order)
{
    const char *dir = fresh_dir("list");
    aurora_store *s = open_with(dir, KEY_A);
    char names[256], stray[600];

    CHECK(s);
    CHECK_EQ_INT(put(s, "users/b/azure", "{}", -1, NULL), 0);
    CHECK_EQ_INT(put(s, "users/a/azure", "{}", -1, NULL), 0);
    CHECK_EQ_INT(put(s, "users/a/readonly", "{}", -1, NULL), 0);
    CHECK_EQ_INT(put(s, "users/c", "{}", -1, NULL), 0);
    CHECK_EQ_INT(put(s, "config", "{}", -1, NULL), 0);
    snprintf(stray, sizeof(stray), "%s/users/notes.txt", dir);
    CHECK_EQ_INT(write_bytes(stray, (const unsigned char *)"x", 1), 0);
    CHECK_EQ_INT(list(s, "", names, sizeof(names)), 0);
    CHECK_EQ_STR(names, "config,users/");
    CHECK_EQ_INT(list(s, "users", names, sizeof(names)), 0);
    CHECK_EQ_STR(names, "a/,b/,c");
    CHECK_EQ_INT(list(s, "users/", names, sizeof(names)), 0);
    CHECK_EQ_STR(names, "a/,b/,c");
    CHECK_EQ_INT(list(s, "users/a", names, sizeof(names)), 0);
    CHECK_EQ_STR(names, "azure,readonly");
    CHECK_EQ_INT(list(s, "nothing/here", names, sizeof(names)), 0);
    CHECK_EQ_STR(names, "");
    CHECK_EQ_INT(list(s, "users/c", names, sizeof(names)), 0); /* a record, not a folder */
    CHECK_EQ_STR(names, "");
    CHECK_EQ_INT(list(s, "../x", names, sizeof(names)), AURORA_E_INVALID);
    aurora_store_close(&s);
}

TEST(values_over_the_limit_are_refused)
{
    aurora_store *s = open_with(fresh_dir("large"), KEY_A);
    char *big = malloc(AURORA_STORE_VALUE_MAX + 1);

    CHECK(s && big);
    memset(big, 'a', AURORA_STORE_VALUE_MAX + 1);
    CHECK_EQ_INT(
        aurora_store_put(s, "k", big, AURORA_STORE_VALUE_MAX + 1, -1, NULL, errmsg, sizeof(errmsg)),
        AURORA_E_TOO_LARGE);
    CHECK_EQ_INT(
        aurora_store_put(s, "k", big, AURORA_STORE_VALUE_MAX, -1, NULL, errmsg, sizeof(errmsg)), 0);
    CHECK_EQ_INT(get(s, "k", NULL, 0, NULL), 0);
    free(big);
    aurora_store_close(&s);
}

TEST(the_store_directory_is_validated)
{
    aurora_store *s = NULL;

    CHECK_EQ_INT(aurora_store_open("", KEY_A, &s, errmsg, sizeof(errmsg)), AURORA_E_INVALID);
    CHECK_EQ_INT(aurora_store_open("/", KEY_A, &s, errmsg, sizeof(errmsg)), AURORA_E_INVALID);
    CHECK_EQ_INT(write_bytes(fresh_dir("plainfile"), (const unsigned char *)"x", 1), 0);
    CHECK(aurora_store_open(fresh_dir("plainfile"), KEY_A, &s, errmsg, sizeof(errmsg)) != 0);
    CHECK(s == NULL);
}

#define THREADS 4
#define ROUNDS 25

static const char *race_dir;
static int race_errors;

/* Each thread has its own handle, as each worker VM does, and increments a counter with
 * check-and-set, retrying on conflict. */
static void *racer(void *arg)
{
    aurora_store *s = NULL;
    char err[512], text[64];
    int i;

    if (aurora_store_open(race_dir, KEY_A, &s, err, sizeof(err)) != 0) {
        __atomic_add_fetch(&race_errors, 1, __ATOMIC_SEQ_CST);
        return NULL;
    }
    for (i = 0; i < ROUNDS; i++) {
        for (;;) {
            aurora_store_meta m = {0, 0, 0};
            aurora_buf b;
            int rc;

            aurora_buf_init(&b, 1024);
            rc = aurora_store_get(s, "counter", &b, &m, err, sizeof(err));
            aurora_buf_free(&b);
            if (rc && rc != AURORA_E_NOT_FOUND) {
                __atomic_add_fetch(&race_errors, 1, __ATOMIC_SEQ_CST);
                break;
            }
            snprintf(text, sizeof(text), "%lld", (long long)m.version + 1);
            rc = aurora_store_put(s, "counter", text, strlen(text), m.version, NULL, err,
                                  sizeof(err));
            if (rc == 0)
                break;
            if (rc != AURORA_E_CONFLICT) {
                __atomic_add_fetch(&race_errors, 1, __ATOMIC_SEQ_CST);
                break;
            }
        }
    }
    aurora_store_close(&s);
    return arg;
}

TEST(check_and_set_holds_across_threads)
{
    pthread_t t[THREADS];
    aurora_store *s;
    aurora_store_meta m;
    char out[64];
    int i;

    race_dir = strdup(fresh_dir("race"));
    for (i = 0; i < THREADS; i++)
        CHECK_EQ_INT(pthread_create(&t[i], NULL, racer, NULL), 0);
    for (i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    CHECK_EQ_INT(race_errors, 0);
    s = open_with(race_dir, KEY_A);
    CHECK(s);
    CHECK_EQ_INT(get(s, "counter", out, sizeof(out), &m), 0);
    CHECK_EQ_INT(m.version, THREADS * ROUNDS);
    CHECK_EQ_INT(atoi(out), THREADS * ROUNDS);
    aurora_store_close(&s);
    free((void *)race_dir);
}

int main(void)
{
    snprintf(root, sizeof(root), "%s/aurora-store-XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        return 1;
    }
    unsetenv("AURORA_MASTER_KEY");
    RUN(paths_are_checked_before_the_filesystem);
    RUN(keys_parse_from_hex_and_base64_only);
    RUN(values_round_trip_with_versions_and_times);
    RUN(check_and_set_follows_kv_v2);
    RUN(files_are_private_and_hold_no_plaintext);
    RUN(the_key_file_is_made_once_and_reused);
    RUN(aurora_master_key_wins_over_the_key_file_and_is_validated);
    RUN(a_wrong_key_is_a_crypto_error_not_an_empty_result);
    RUN(a_crash_before_the_rename_leaves_the_old_record);
    RUN(damaged_records_fail_loudly);
    RUN(delete_removes_the_record_and_empty_folders);
    RUN(list_shows_records_and_folders_in_order);
    RUN(values_over_the_limit_are_refused);
    RUN(the_store_directory_is_validated);
    RUN(check_and_set_holds_across_threads);
    cleanup();
    return check_summary();
}

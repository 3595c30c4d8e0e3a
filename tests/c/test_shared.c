/*
 * test_shared.c: the shared dictionaries without Lua: values, modes, expiry, LRU bounds, size
 * limits, and four threads hammering one dictionary.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aurora/aurora.h"
#include "aurora/shared.h"
#include "check.h"

static aurora_shared_value str_value(const char *s)
{
    aurora_shared_value v = {.type = AURORA_SHARED_STRING, .str = (char *)s, .len = strlen(s)};

    return v;
}

static aurora_shared_value int_value(int64_t i)
{
    aurora_shared_value v = {.type = AURORA_SHARED_INTEGER, .u.i = i};

    return v;
}

static aurora_shared_dict *fresh(const char *name, size_t items, size_t bytes)
{
    aurora_shared_dict *d = NULL;

    if (aurora_shared_open(name, items, bytes, &d) != 0)
        return NULL;
    aurora_shared_flush(d);
    return d;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

#define SET(d, k, v) aurora_shared_set(d, k, strlen(k), v, 0, AURORA_SHARED_SET)

TEST(the_same_name_opens_the_same_dictionary)
{
    aurora_shared_dict *a = NULL, *b = NULL;

    CHECK_EQ_INT(aurora_shared_open("same", 0, 0, &a), 0);
    CHECK_EQ_INT(aurora_shared_open("same", 5, 5, &b), 0);
    CHECK(a == b);
    CHECK_EQ_STR(aurora_shared_name(a), "same");
    CHECK_EQ_INT(aurora_shared_open("", 0, 0, &a), AURORA_E_INVALID);
}

TEST(values_of_every_type_come_back_as_copies)
{
    aurora_shared_dict *d = fresh("types", 0, 0);
    aurora_shared_value v = str_value("hello\0world"), out;
    aurora_shared_value f = {.type = AURORA_SHARED_FLOAT, .u.f = 2.5};
    aurora_shared_value b = {.type = AURORA_SHARED_BOOLEAN, .u.b = 1};
    aurora_shared_value i = int_value(-7);

    CHECK(d);
    v.len = 11;
    CHECK_EQ_INT(SET(d, "s", &v), 0);
    CHECK_EQ_INT(SET(d, "f", &f), 0);
    CHECK_EQ_INT(SET(d, "b", &b), 0);
    CHECK_EQ_INT(SET(d, "i", &i), 0);
    CHECK_EQ_INT(aurora_shared_get(d, "s", 1, &out), 0);
    CHECK_EQ_INT(out.type, AURORA_SHARED_STRING);
    CHECK_EQ_INT(out.len, 11);
    CHECK(memcmp(out.str, "hello\0world", 12) == 0);
    CHECK(out.str != v.str);
    aurora_shared_value_free(&out);
    CHECK(out.str == NULL);
    CHECK_EQ_INT(aurora_shared_get(d, "f", 1, &out), 0);
    CHECK(out.type == AURORA_SHARED_FLOAT && out.u.f == 2.5);
    CHECK_EQ_INT(aurora_shared_get(d, "b", 1, &out), 0);
    CHECK(out.type == AURORA_SHARED_BOOLEAN && out.u.b == 1);
    CHECK_EQ_INT(aurora_shared_get(d, "i", 1, &out), 0);
    CHECK(out.type == AURORA_SHARED_INTEGER && out.u.i == -7);
    CHECK_EQ_INT(aurora_shared_get(d, "nope", 4, &out), AURORA_E_NOT_FOUND);
    CHECK_EQ_INT(aurora_shared_count(d), 4);
}

TEST(a_nil_value_deletes_and_delete_is_idempotent)
{
    aurora_shared_dict *d = fresh("nil", 0, 0);
    aurora_shared_value v = str_value("x"), nil = {.type = AURORA_SHARED_NIL}, out;

    CHECK_EQ_INT(SET(d, "k", &v), 0);
    CHECK_EQ_INT(SET(d, "k", &nil), 0);
    CHECK_EQ_INT(aurora_shared_get(d, "k", 1, &out), AURORA_E_NOT_FOUND);
    CHECK_EQ_INT(aurora_shared_delete(d, "k", 1), 0);
    CHECK_EQ_INT(aurora_shared_set(d, "k", 1, &nil, 0, AURORA_SHARED_ADD), AURORA_E_INVALID);
}

TEST(add_and_replace_respect_existing_entries)
{
    aurora_shared_dict *d = fresh("modes", 0, 0);
    aurora_shared_value a = str_value("a"), b = str_value("b"), out;

    CHECK_EQ_INT(aurora_shared_set(d, "k", 1, &a, 0, AURORA_SHARED_REPLACE), AURORA_E_NOT_FOUND);
    CHECK_EQ_INT(aurora_shared_set(d, "k", 1, &a, 0, AURORA_SHARED_ADD), 0);
    CHECK_EQ_INT(aurora_shared_set(d, "k", 1, &b, 0, AURORA_SHARED_ADD), AURORA_E_CONFLICT);
    CHECK_EQ_INT(aurora_shared_set(d, "k", 1, &b, 0, AURORA_SHARED_REPLACE), 0);
    CHECK_EQ_INT(aurora_shared_get(d, "k", 1, &out), 0);
    CHECK_EQ_STR(out.str, "b");
    aurora_shared_value_free(&out);
}

TEST(entries_expire_after_their_ttl)
{
    aurora_shared_dict *d = fresh("ttl", 0, 0);
    aurora_shared_value v = str_value("x"), out;
    double left = -1;

    CHECK_EQ_INT(aurora_shared_set(d, "short", 5, &v, 0.03, AURORA_SHARED_SET), 0);
    CHECK_EQ_INT(aurora_shared_set(d, "long", 4, &v, 100, AURORA_SHARED_SET), 0);
    CHECK_EQ_INT(SET(d, "never", &v), 0);
    CHECK_EQ_INT(aurora_shared_ttl(d, "long", 4, &left), 0);
    CHECK(left > 99 && left <= 100);
    CHECK_EQ_INT(aurora_shared_ttl(d, "never", 5, &left), 0);
    CHECK(left == 0);
    CHECK_EQ_INT(aurora_shared_get(d, "short", 5, &out), 0);
    aurora_shared_value_free(&out);
    sleep_ms(50);
    CHECK_EQ_INT(aurora_shared_get(d, "short", 5, &out), AURORA_E_NOT_FOUND);
    CHECK_EQ_INT(aurora_shared_ttl(d, "short", 5, &left), AURORA_E_NOT_FOUND);
    CHECK_EQ_INT(aurora_shared_count(d), 2);
    /* an expired entry does not block add */
    CHECK_EQ_INT(aurora_shared_set(d, "gone", 4, &v, 0.001, AURORA_SHARED_SET), 0);
    sleep_ms(5);
    CHECK_EQ_INT(aurora_shared_set(d, "gone", 4, &v, 0, AURORA_SHARED_ADD), 0);
    CHECK_EQ_INT(aurora_shared_set(d, "k", 1, &v, -1, AURORA_SHARED_SET), AURORA_E_INVALID);
    CHECK_EQ_INT(aurora_shared_set(d, "k", 1, &v, 2e9, AURORA_SHARED_SET), AURORA_E_INVALID);
}

TEST(the_item_bound_evicts_the_least_recently_used)
{
    aurora_shared_dict *d = fresh("lru-items", 3, 0);
    aurora_shared_value v = str_value("v"), out;

    CHECK_EQ_INT(SET(d, "a", &v), 0);
    CHECK_EQ_INT(SET(d, "b", &v), 0);
    CHECK_EQ_INT(SET(d, "c", &v), 0);
    CHECK_EQ_INT(aurora_shared_get(d, "a", 1, &out), 0); /* a is now the most recent */
    aurora_shared_value_free(&out);
    CHECK_EQ_INT(SET(d, "d", &v), 0);
    CHECK_EQ_INT(aurora_shared_count(d), 3);
    CHECK_EQ_INT(aurora_shared_get(d, "b", 1, &out), AURORA_E_NOT_FOUND);
    CHECK_EQ_INT(aurora_shared_get(d, "a", 1, &out), 0);
    aurora_shared_value_free(&out);
}

TEST(expired_entries_are_evicted_before_live_ones)
{
    aurora_shared_dict *d = fresh("lru-expired", 3, 0);
    aurora_shared_value v = str_value("v"), out;

    CHECK_EQ_INT(SET(d, "a", &v), 0);
    CHECK_EQ_INT(aurora_shared_set(d, "b", 1, &v, 0.001, AURORA_SHARED_SET), 0);
    CHECK_EQ_INT(SET(d, "c", &v), 0);
    sleep_ms(5);
    CHECK_EQ_INT(SET(d, "d", &v), 0);
    CHECK_EQ_INT(aurora_shared_get(d, "a", 1, &out), 0);
    aurora_shared_value_free(&out);
}

TEST(the_byte_bound_evicts_and_refuses_oversized_values)
{
    aurora_shared_dict *d = fresh("lru-bytes", 100, 20);
    aurora_shared_value v = str_value("123456789"), big = str_value("0123456789012345678901"),
                        out;
    aurora_shared_key *keys;
    size_t n;

    CHECK_EQ_INT(SET(d, "a", &v), 0); /* 10 bytes */
    CHECK_EQ_INT(SET(d, "b", &v), 0); /* 20 bytes */
    CHECK_EQ_INT(SET(d, "c", &v), 0); /* evicts a */
    CHECK_EQ_INT(aurora_shared_get(d, "a", 1, &out), AURORA_E_NOT_FOUND);
    CHECK_EQ_INT(SET(d, "z", &big), AURORA_E_TOO_LARGE);
    CHECK_EQ_INT(aurora_shared_count(d), 2);
    CHECK_EQ_INT(aurora_shared_keys(d, 0, &keys, &n), 0);
    CHECK_EQ_INT(n, 2);
    CHECK_EQ_STR(keys[0].s, "c");
    CHECK_EQ_STR(keys[1].s, "b");
    free(keys);
    CHECK_EQ_INT(aurora_shared_keys(d, 1, &keys, &n), 0);
    CHECK_EQ_INT(n, 1);
    free(keys);
}

TEST(over_long_keys_are_refused)
{
    aurora_shared_dict *d = fresh("longkeys", 0, 0);
    size_t n = AURORA_SHARED_KEY_MAX + 1;
    char *key = calloc(1, n);
    aurora_shared_value v = str_value("x"), out;
    int rc1, rc2, rc3;

    CHECK(key);
    rc1 = aurora_shared_set(d, key, n, &v, 0, AURORA_SHARED_SET);
    rc2 = aurora_shared_get(d, key, n, &out);
    rc3 = aurora_shared_set(d, key, n - 1, &v, 0, AURORA_SHARED_SET);
    free(key);
    CHECK_EQ_INT(rc1, AURORA_E_TOO_LARGE);
    CHECK_EQ_INT(rc2, AURORA_E_TOO_LARGE);
    CHECK_EQ_INT(rc3, 0);
}

TEST(incr_adds_initialises_and_refuses_non_numbers)
{
    aurora_shared_dict *d = fresh("incr", 0, 0);
    aurora_shared_value one = int_value(1), init = int_value(10), s = str_value("x"), out;
    aurora_shared_value half = {.type = AURORA_SHARED_FLOAT, .u.f = 0.5};
    aurora_shared_value max = int_value(INT64_MAX);
    double left;

    CHECK_EQ_INT(aurora_shared_incr(d, "n", 1, &one, NULL, 0, &out), AURORA_E_NOT_FOUND);
    CHECK_EQ_INT(aurora_shared_incr(d, "n", 1, &one, &init, 100, &out), 0);
    CHECK(out.type == AURORA_SHARED_INTEGER && out.u.i == 11);
    CHECK_EQ_INT(aurora_shared_incr(d, "n", 1, &one, &init, 0, &out), 0);
    CHECK(out.u.i == 12);
    CHECK_EQ_INT(aurora_shared_ttl(d, "n", 1, &left), 0);
    CHECK(left > 99); /* the first ttl is kept */
    CHECK_EQ_INT(aurora_shared_incr(d, "n", 1, &half, NULL, 0, &out), 0);
    CHECK(out.type == AURORA_SHARED_FLOAT && out.u.f == 12.5);
    CHECK_EQ_INT(SET(d, "s", &s), 0);
    CHECK_EQ_INT(aurora_shared_incr(d, "s", 1, &one, NULL, 0, &out), AURORA_E_INVALID);
    CHECK_EQ_INT(aurora_shared_incr(d, "n", 1, &s, NULL, 0, &out), AURORA_E_INVALID);
    CHECK_EQ_INT(SET(d, "m", &max), 0);
    CHECK_EQ_INT(aurora_shared_incr(d, "m", 1, &one, NULL, 0, &out), AURORA_E_TOO_LARGE);
    CHECK_EQ_INT(aurora_shared_get(d, "m", 1, &out), 0);
    CHECK(out.u.i == INT64_MAX);
}

TEST(flush_empties_the_dictionary)
{
    aurora_shared_dict *d = fresh("flush", 0, 0);
    aurora_shared_value v = str_value("x");
    aurora_shared_key *keys = (aurora_shared_key *)&v;
    size_t n = 99;

    CHECK_EQ_INT(SET(d, "a", &v), 0);
    aurora_shared_flush(d);
    CHECK_EQ_INT(aurora_shared_count(d), 0);
    CHECK_EQ_INT(aurora_shared_keys(d, 0, &keys, &n), 0);
    CHECK_EQ_INT(n, 0);
    CHECK(keys == NULL);
    CHECK_EQ_INT(SET(d, "a", &v), 0);
}

TEST(many_keys_grow_the_table)
{
    aurora_shared_dict *d = fresh("many", 100000, 0);
    aurora_shared_value out;
    char key[32];
    int i;

    for (i = 0; i < 20000; i++) {
        aurora_shared_value v = int_value(i);

        snprintf(key, sizeof(key), "key-%d", i);
        CHECK_EQ_INT(SET(d, key, &v), 0);
    }
    CHECK_EQ_INT(aurora_shared_count(d), 20000);
    for (i = 0; i < 20000; i += 997) {
        snprintf(key, sizeof(key), "key-%d", i);
        CHECK_EQ_INT(aurora_shared_get(d, key, strlen(key), &out), 0);
        CHECK_EQ_INT(out.u.i, i);
    }
}

#define THREADS 4
#define ROUNDS 20000

static aurora_shared_dict *hammered;

static void *hammer(void *arg)
{
    long id = (long)arg;
    aurora_shared_value one = int_value(1), zero = int_value(0), out;
    char key[32], val[32];
    int i;

    for (i = 0; i < ROUNDS; i++) {
        aurora_shared_value v;

        snprintf(key, sizeof(key), "k%ld-%d", id, i % 50);
        snprintf(val, sizeof(val), "value-%d", i);
        v = str_value(val);
        if (aurora_shared_incr(hammered, "total", 5, &one, &zero, 0, &out) != 0)
            return (void *)1;
        if (aurora_shared_set(hammered, key, strlen(key), &v, i % 3 ? 0 : 0.001,
                              AURORA_SHARED_SET) != 0)
            return (void *)1;
        if (aurora_shared_get(hammered, key, strlen(key), &out) == 0)
            aurora_shared_value_free(&out);
        if (i % 7 == 0)
            aurora_shared_delete(hammered, key, strlen(key));
        if (i % 1000 == 0)
            aurora_shared_count(hammered);
    }
    return NULL;
}

TEST(four_threads_hammering_one_dictionary_keep_exact_counts)
{
    pthread_t t[THREADS];
    aurora_shared_value out;
    void *res;
    long i;

    hammered = fresh("hammer", 64, 0); /* small, so eviction races too; "total" stays hot */
    CHECK(hammered);
    for (i = 0; i < THREADS; i++)
        CHECK_EQ_INT(pthread_create(&t[i], NULL, hammer, (void *)i), 0);
    for (i = 0; i < THREADS; i++) {
        CHECK_EQ_INT(pthread_join(t[i], &res), 0);
        CHECK(res == NULL);
    }
    CHECK_EQ_INT(aurora_shared_get(hammered, "total", 5, &out), 0);
    CHECK_EQ_INT(out.u.i, THREADS * ROUNDS);
    CHECK(aurora_shared_count(hammered) <= 64);
}

int main(void)
{
    RUN(the_same_name_opens_the_same_dictionary);
    RUN(values_of_every_type_come_back_as_copies);
    RUN(a_nil_value_deletes_and_delete_is_idempotent);
    RUN(add_and_replace_respect_existing_entries);
    RUN(entries_expire_after_their_ttl);
    RUN(the_item_bound_evicts_the_least_recently_used);
    RUN(expired_entries_are_evicted_before_live_ones);
    RUN(the_byte_bound_evicts_and_refuses_oversized_values);
    RUN(over_long_keys_are_refused);
    RUN(incr_adds_initialises_and_refuses_non_numbers);
    RUN(flush_empties_the_dictionary);
    RUN(many_keys_grow_the_table);
    RUN(four_threads_hammering_one_dictionary_keep_exact_counts);
    aurora_shared_shutdown();
    return check_summary();
}

/*
 * test_token.c: the token cache core without Lua: hits, misses, the margin, expiry, cached
 * failures, single flight with waiters (finish, abandon, cancel), the LRU bound, and eight
 * threads hammering a few keys while checking that every waiter is told exactly once.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aurora/aurora.h"
#include "aurora/token.h"
#include "check.h"

#define K(s) s, strlen(s)

/* A waiter that records what it was told. */
typedef struct test_waiter {
    aurora_token_waiter tw;
    int notified;
    aurora_token_kind kind;
    char value[64];
    double expires_at;
} test_waiter;

static void record(aurora_token_waiter *tw, aurora_token_done *d)
{
    test_waiter *w = (test_waiter *)tw;
    const aurora_token_result *r = aurora_token_done_result(d);

    w->notified++;
    w->kind = r->kind;
    w->expires_at = r->expires_at;
    if (r->kind == AURORA_TOKEN_VALUE)
        snprintf(w->value, sizeof(w->value), "%s", (const char *)r->value->data);
    aurora_token_done_release(&d);
}

static aurora_token_result value_result(aurora_secret *s, const char *v, double exp,
                                        const char *meta)
{
    aurora_token_result r = {.kind = AURORA_TOKEN_VALUE, .value = s, .expires_at = exp};

    s->data = (unsigned char *)v;
    s->len = strlen(v);
    if (meta) {
        r.meta = (char *)meta;
        r.meta_len = strlen(meta);
    }
    return r;
}

static aurora_token_result failure_result(const char *err)
{
    aurora_token_result r = {
        .kind = AURORA_TOKEN_FAILURE, .err = (char *)err, .err_len = strlen(err)};

    return r;
}

/* Looks key up with a waiter that must not be needed. */
static aurora_token_outcome look(const char *key, double now, double margin,
                                 aurora_token_result *out, uint64_t *flight)
{
    static test_waiter unused;
    aurora_token_outcome oc = 0;

    unused.tw.notify = record;
    if (aurora_token_lookup(key, strlen(key), now, margin, &unused.tw, &oc, out, flight) != 0)
        return 0;
    return oc;
}

TEST(a_miss_makes_the_caller_the_fetcher_and_a_value_then_hits)
{
    aurora_token_result out, r;
    aurora_secret s;
    uint64_t flight = 0;

    aurora_token_shutdown();
    CHECK_EQ_INT(look("k1", 1000, 0, &out, &flight), AURORA_TOKEN_FETCH);
    CHECK(flight != 0);
    r = value_result(&s, "tok-1", 2000, "{\"kind\":\"test\"}");
    CHECK_EQ_INT(aurora_token_finish(K("k1"), flight, &r, 1000, 0), 0);
    CHECK_EQ_INT(look("k1", 1001, 300, &out, &flight), AURORA_TOKEN_HIT);
    CHECK_EQ_STR((const char *)out.value->data, "tok-1");
    CHECK_EQ_INT(out.value->len, 5);
    CHECK_EQ_INT((long long)out.expires_at, 2000);
    CHECK_EQ_STR(out.meta, "{\"kind\":\"test\"}");
    aurora_token_result_clear(&out);
    {
        aurora_token_stats st;
        aurora_token_get_stats(&st);
        CHECK_EQ_INT(st.entries, 1);
        CHECK_EQ_INT(st.fetches, 1);
        CHECK_EQ_INT(st.hits, 1);
    }
}

TEST(a_value_within_the_margin_is_a_miss_but_peek_still_sees_it_until_expiry)
{
    aurora_token_result out, r;
    aurora_secret s;
    uint64_t flight = 0;

    aurora_token_shutdown();
    CHECK_EQ_INT(look("k", 1000, 0, &out, &flight), AURORA_TOKEN_FETCH);
    r = value_result(&s, "old", 1100, NULL);
    CHECK_EQ_INT(aurora_token_finish(K("k"), flight, &r, 1000, 0), 0);
    CHECK_EQ_INT(look("k", 1050, 60, &out, &flight), AURORA_TOKEN_FETCH);
    CHECK_EQ_INT(aurora_token_peek(K("k"), 1050, &out), 0);
    CHECK_EQ_STR((const char *)out.value->data, "old");
    CHECK(out.meta == NULL);
    aurora_token_result_clear(&out);
    CHECK_EQ_INT(aurora_token_peek(K("k"), 1100, &out), AURORA_E_NOT_FOUND);
    aurora_token_abandon(K("k"), flight);
    CHECK_EQ_INT(look("k", 1100, 0, &out, &flight), AURORA_TOKEN_FETCH);
    aurora_token_abandon(K("k"), flight);
}

TEST(a_failure_with_a_negative_ttl_is_cached_until_it_ends)
{
    aurora_token_result out, r = failure_result("{\"code\":\"AADSTS7000215\"}");
    uint64_t flight = 0;
    aurora_token_stats st;

    aurora_token_shutdown();
    CHECK_EQ_INT(look("bad", 1000, 0, &out, &flight), AURORA_TOKEN_FETCH);
    CHECK_EQ_INT(aurora_token_finish(K("bad"), flight, &r, 1000, 60), 0);
    CHECK_EQ_INT(look("bad", 1030, 0, &out, &flight), AURORA_TOKEN_NEGATIVE);
    CHECK_EQ_STR(out.err, "{\"code\":\"AADSTS7000215\"}");
    CHECK_EQ_INT((long long)out.expires_at, 1060);
    aurora_token_result_clear(&out);
    CHECK_EQ_INT(look("bad", 1061, 0, &out, &flight), AURORA_TOKEN_FETCH);
    aurora_token_abandon(K("bad"), flight);
    aurora_token_get_stats(&st);
    CHECK_EQ_INT(st.negative_hits, 1);
    CHECK_EQ_INT(st.entries, 0);
}

TEST(a_failure_without_a_negative_ttl_is_not_cached_and_keeps_the_old_value)
{
    aurora_token_result out, r;
    aurora_secret s;
    uint64_t flight = 0;

    aurora_token_shutdown();
    CHECK_EQ_INT(look("k", 1000, 0, &out, &flight), AURORA_TOKEN_FETCH);
    r = value_result(&s, "v1", 1200, NULL);
    CHECK_EQ_INT(aurora_token_finish(K("k"), flight, &r, 1000, 0), 0);
    CHECK_EQ_INT(look("k", 1150, 100, &out, &flight), AURORA_TOKEN_FETCH);
    r = failure_result("{\"code\":\"unavailable\"}");
    CHECK_EQ_INT(aurora_token_finish(K("k"), flight, &r, 1150, 0), 0);
    CHECK_EQ_INT(look("k", 1150, 0, &out, &flight), AURORA_TOKEN_HIT);
    aurora_token_result_clear(&out);
    CHECK_EQ_INT(look("k", 1150, 100, &out, &flight), AURORA_TOKEN_FETCH);
    aurora_token_abandon(K("k"), flight);
}

TEST(waiters_are_told_the_outcome_once_and_a_cancelled_one_is_not)
{
    test_waiter w[3];
    aurora_token_result out, r;
    aurora_secret s;
    aurora_token_outcome oc;
    uint64_t flight = 0, f2 = 0;

    aurora_token_shutdown();
    memset(w, 0, sizeof(w));
    CHECK_EQ_INT(look("shared", 1000, 0, &out, &flight), AURORA_TOKEN_FETCH);
    for (int i = 0; i < 3; i++) {
        w[i].tw.notify = record;
        CHECK_EQ_INT(aurora_token_lookup(K("shared"), 1000, 0, &w[i].tw, &oc, &out, &f2), 0);
        CHECK_EQ_INT(oc, AURORA_TOKEN_WAIT);
    }
    CHECK_EQ_INT(aurora_token_cancel_wait(&w[1].tw), 1);
    r = value_result(&s, "shared-tok", 5000, NULL);
    CHECK_EQ_INT(aurora_token_finish(K("shared"), flight, &r, 1000, 0), 0);
    CHECK_EQ_INT(w[0].notified, 1);
    CHECK_EQ_INT(w[1].notified, 0);
    CHECK_EQ_INT(w[2].notified, 1);
    CHECK_EQ_INT(w[0].kind, AURORA_TOKEN_VALUE);
    CHECK_EQ_STR(w[2].value, "shared-tok");
    CHECK_EQ_INT(aurora_token_cancel_wait(&w[0].tw), 0);
}

TEST(waiters_of_a_failed_fetch_get_the_failure_with_its_cache_end)
{
    test_waiter w;
    aurora_token_result out, r = failure_result("{\"code\":\"x\"}");
    aurora_token_outcome oc;
    uint64_t flight = 0, f2 = 0;

    aurora_token_shutdown();
    memset(&w, 0, sizeof(w));
    w.tw.notify = record;
    CHECK_EQ_INT(look("f", 1000, 0, &out, &flight), AURORA_TOKEN_FETCH);
    CHECK_EQ_INT(aurora_token_lookup(K("f"), 1000, 0, &w.tw, &oc, &out, &f2), 0);
    CHECK_EQ_INT(aurora_token_finish(K("f"), flight, &r, 1000, 30), 0);
    CHECK_EQ_INT(w.notified, 1);
    CHECK_EQ_INT(w.kind, AURORA_TOKEN_FAILURE);
    CHECK_EQ_INT((long long)w.expires_at, 1030);
}

TEST(an_abandoned_flight_tells_waiters_to_retry_and_one_becomes_the_fetcher)
{
    test_waiter w;
    aurora_token_result out;
    aurora_token_outcome oc;
    uint64_t flight = 0, f2 = 0;

    aurora_token_shutdown();
    memset(&w, 0, sizeof(w));
    w.tw.notify = record;
    CHECK_EQ_INT(look("a", 1000, 0, &out, &flight), AURORA_TOKEN_FETCH);
    CHECK_EQ_INT(aurora_token_lookup(K("a"), 1000, 0, &w.tw, &oc, &out, &f2), 0);
    CHECK_EQ_INT(oc, AURORA_TOKEN_WAIT);
    aurora_token_abandon(K("a"), flight);
    CHECK_EQ_INT(w.notified, 1);
    CHECK_EQ_INT(w.kind, AURORA_TOKEN_RETRY);
    CHECK_EQ_INT(look("a", 1000, 0, &out, &f2), AURORA_TOKEN_FETCH);
    CHECK(f2 != flight);
    aurora_token_abandon(K("a"), flight); /* a stale id does nothing */
    CHECK_EQ_INT(look("a", 1000, 0, &out, &flight), 0 + AURORA_TOKEN_WAIT);
    aurora_token_abandon(K("a"), f2);
}

TEST(put_and_invalidate_store_and_drop_values_and_failures)
{
    aurora_token_result out, r = failure_result("{}");
    uint64_t flight = 0;

    aurora_token_shutdown();
    CHECK_EQ_INT(aurora_token_put(K("p"), "v", 1, 2000, "{\"a\":\"b\"}", 9), 0);
    CHECK_EQ_INT(look("p", 1000, 300, &out, &flight), AURORA_TOKEN_HIT);
    CHECK_EQ_STR(out.meta, "{\"a\":\"b\"}");
    aurora_token_result_clear(&out);
    aurora_token_invalidate(K("p"));
    CHECK_EQ_INT(aurora_token_peek(K("p"), 1000, &out), AURORA_E_NOT_FOUND);
    CHECK_EQ_INT(look("p", 1000, 0, &out, &flight), AURORA_TOKEN_FETCH);
    CHECK_EQ_INT(aurora_token_finish(K("p"), flight, &r, 1000, 60), 0);
    CHECK_EQ_INT(look("p", 1000, 0, &out, &flight), AURORA_TOKEN_NEGATIVE);
    aurora_token_result_clear(&out);
    aurora_token_invalidate(K("p"));
    CHECK_EQ_INT(look("p", 1000, 0, &out, &flight), AURORA_TOKEN_FETCH);
    aurora_token_abandon(K("p"), flight);
}

TEST(bad_keys_and_oversized_values_are_refused)
{
    char big[AURORA_TOKEN_KEY_MAX + 2];
    aurora_token_result out, r;
    aurora_token_outcome oc;
    aurora_secret s;
    test_waiter w;
    uint64_t flight = 0;
    static char huge[AURORA_TOKEN_VALUE_MAX + 2];

    aurora_token_shutdown();
    memset(big, 'k', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    w.tw.notify = record;
    CHECK_EQ_INT(aurora_token_lookup(big, strlen(big), 0, 0, &w.tw, &oc, &out, &flight),
                 AURORA_E_TOO_LARGE);
    CHECK_EQ_INT(aurora_token_lookup("", 0, 0, 0, &w.tw, &oc, &out, &flight), AURORA_E_INVALID);
    CHECK_EQ_INT(aurora_token_put(K("x"), huge, sizeof(huge), 10, NULL, 0), AURORA_E_TOO_LARGE);
    memset(huge, 'v', sizeof(huge) - 1);
    CHECK_EQ_INT(look("x", 0, 0, &out, &flight), AURORA_TOKEN_FETCH);
    r = value_result(&s, huge, 10, NULL);
    CHECK_EQ_INT(aurora_token_finish(K("x"), flight, &r, 0, 0), AURORA_E_TOO_LARGE);
    /* the flight ended as abandoned */
    CHECK_EQ_INT(look("x", 0, 0, &out, &flight), AURORA_TOKEN_FETCH);
    aurora_token_abandon(K("x"), flight);
}

TEST(the_entry_bound_evicts_the_least_recently_used_but_never_a_flight)
{
    aurora_token_result out;
    aurora_token_stats st;
    uint64_t flight = 0;

    aurora_token_shutdown();
    aurora_token_configure(3);
    CHECK_EQ_INT(look("inflight", 0, 0, &out, &flight), AURORA_TOKEN_FETCH);
    CHECK_EQ_INT(aurora_token_put(K("a"), "1", 1, 100, NULL, 0), 0);
    CHECK_EQ_INT(aurora_token_put(K("b"), "2", 1, 100, NULL, 0), 0);
    CHECK_EQ_INT(look("a", 0, 0, &out, NULL), AURORA_TOKEN_HIT); /* a is now fresher than b */
    aurora_token_result_clear(&out);
    CHECK_EQ_INT(aurora_token_put(K("c"), "3", 1, 100, NULL, 0), 0);
    aurora_token_get_stats(&st);
    CHECK_EQ_INT(st.entries, 3);
    CHECK_EQ_INT(aurora_token_peek(K("b"), 0, &out), AURORA_E_NOT_FOUND);
    CHECK_EQ_INT(aurora_token_peek(K("a"), 0, &out), 0);
    aurora_token_result_clear(&out);
    CHECK_EQ_INT(aurora_token_put(K("d"), "4", 1, 100, NULL, 0), 0);
    CHECK_EQ_INT(aurora_token_put(K("e"), "5", 1, 100, NULL, 0), 0);
    aurora_token_get_stats(&st);
    CHECK_EQ_INT(st.entries, 3);
    CHECK_EQ_INT(look("inflight", 0, 0, &out, &flight), AURORA_TOKEN_WAIT);
    aurora_token_abandon(K("inflight"), flight);
    aurora_token_configure(0);
}

/* ---- threads --------------------------------------------------------------------------------- */

#define THREADS 8
#define ROUNDS 20000
#define KEYS 4

static atomic_int notified_total, registered_total, fetched_total, wrong_values;

typedef struct thread_waiter {
    aurora_token_waiter tw;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
    aurora_token_kind kind;
} thread_waiter;

static void thread_notify(aurora_token_waiter *tw, aurora_token_done *d)
{
    thread_waiter *w = (thread_waiter *)tw;
    const aurora_token_result *r = aurora_token_done_result(d);

    if (r->kind == AURORA_TOKEN_VALUE && strncmp((const char *)r->value->data, "tok-", 4) != 0)
        atomic_fetch_add(&wrong_values, 1);
    atomic_fetch_add(&notified_total, 1);
    pthread_mutex_lock(&w->mu);
    w->kind = r->kind;
    w->done = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    aurora_token_done_release(&d);
}

static void *hammer(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg * 7919u + 1;
    thread_waiter w;

    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cv, NULL);
    w.tw.notify = thread_notify;
    for (int i = 0; i < ROUNDS; i++) {
        char key[16];
        aurora_token_result out;
        aurora_token_outcome oc = 0;
        uint64_t flight = 0;
        double now = (double)(i / 50);

        seed = seed * 1103515245u + 12345u;
        snprintf(key, sizeof(key), "key-%u", (seed >> 16) % KEYS);
        w.done = 0;
        if (aurora_token_lookup(key, strlen(key), now, (seed >> 8) % 3, &w.tw, &oc, &out,
                                &flight) != 0)
            return (void *)1;
        if (oc == AURORA_TOKEN_HIT || oc == AURORA_TOKEN_NEGATIVE) {
            if (oc == AURORA_TOKEN_HIT && strncmp((const char *)out.value->data, "tok-", 4) != 0)
                atomic_fetch_add(&wrong_values, 1);
            aurora_token_result_clear(&out);
        } else if (oc == AURORA_TOKEN_FETCH) {
            aurora_secret s;
            aurora_token_result r;
            char v[32];

            atomic_fetch_add(&fetched_total, 1);
            snprintf(v, sizeof(v), "tok-%d", i);
            /* A fetch takes a while: let the others pile up behind it. */
            for (int j = 0; j < 20; j++)
                sched_yield();
            if (seed % 17 == 0) {
                aurora_token_abandon(key, strlen(key), flight);
            } else if (seed % 13 == 0) {
                r = failure_result("{\"code\":\"x\"}");
                aurora_token_finish(key, strlen(key), flight, &r, now, 1);
            } else {
                r = value_result(&s, v, now + 2, NULL);
                aurora_token_finish(key, strlen(key), flight, &r, now, 0);
            }
        } else {
            atomic_fetch_add(&registered_total, 1);
            /* Sometimes give up waiting, as a cancelled task does. */
            if (seed % 5 == 0 && aurora_token_cancel_wait(&w.tw)) {
                atomic_fetch_add(&notified_total, 1); /* counted as settled */
                continue;
            }
            pthread_mutex_lock(&w.mu);
            while (!w.done)
                pthread_cond_wait(&w.cv, &w.mu);
            pthread_mutex_unlock(&w.mu);
        }
    }
    pthread_mutex_destroy(&w.mu);
    pthread_cond_destroy(&w.cv);
    return NULL;
}

TEST(eight_threads_hammering_four_keys_settle_every_waiter_exactly_once)
{
    pthread_t t[THREADS];
    aurora_token_stats st;

    aurora_token_shutdown();
    for (intptr_t i = 0; i < THREADS; i++)
        CHECK_EQ_INT(pthread_create(&t[i], NULL, hammer, (void *)i), 0);
    for (int i = 0; i < THREADS; i++) {
        void *res = NULL;
        CHECK_EQ_INT(pthread_join(t[i], &res), 0);
        CHECK(res == NULL);
    }
    aurora_token_get_stats(&st);
    CHECK_EQ_INT(atomic_load(&wrong_values), 0);
    CHECK_EQ_INT(atomic_load(&notified_total), atomic_load(&registered_total));
    CHECK_EQ_INT(st.fetches, (uint64_t)atomic_load(&fetched_total));
    CHECK_EQ_INT(st.waits, (uint64_t)atomic_load(&registered_total));
    CHECK(st.entries <= KEYS);
    printf("     (%d fetches, %d waits, %llu hits)\n", atomic_load(&fetched_total),
           atomic_load(&registered_total), (unsigned long long)st.hits);
}

int main(void)
{
    RUN(a_miss_makes_the_caller_the_fetcher_and_a_value_then_hits);
    RUN(a_value_within_the_margin_is_a_miss_but_peek_still_sees_it_until_expiry);
    RUN(a_failure_with_a_negative_ttl_is_cached_until_it_ends);
    RUN(a_failure_without_a_negative_ttl_is_not_cached_and_keeps_the_old_value);
    RUN(waiters_are_told_the_outcome_once_and_a_cancelled_one_is_not);
    RUN(waiters_of_a_failed_fetch_get_the_failure_with_its_cache_end);
    RUN(an_abandoned_flight_tells_waiters_to_retry_and_one_becomes_the_fetcher);
    RUN(put_and_invalidate_store_and_drop_values_and_failures);
    RUN(bad_keys_and_oversized_values_are_refused);
    RUN(the_entry_bound_evicts_the_least_recently_used_but_never_a_flight);
    RUN(eight_threads_hammering_four_keys_settle_every_waiter_exactly_once);
    aurora_token_shutdown();
    return check_summary();
}

/*
 * metrics.c: the counters behind GET /metrics (see metrics.h). Relaxed atomics only: a scrape
 * may see a request counted in one series a moment before another, which Prometheus tolerates.
 */
#include <stdatomic.h>

#include "aurora/aurora.h"
#include "aurora/metrics.h"

static const double bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
#define NB (sizeof(bounds) / sizeof(bounds[0]))

static atomic_ullong by_class[6];
static atomic_ullong buckets[NB];
static atomic_ullong count, sum_ms;
static atomic_llong in_flight;
static atomic_ullong upstream_ok, upstream_failed;
static atomic_ullong reloads_ok, reloads_failed;

void aurora_metrics_request(unsigned status, uint64_t ms)
{
    unsigned c = status / 100;

    atomic_fetch_add_explicit(&by_class[c < 6 ? c : 0], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&sum_ms, ms, memory_order_relaxed);
    for (size_t i = 0; i < NB; i++) {
        if ((double)ms / 1000.0 <= bounds[i]) {
            /* Stored per bucket, summed into cumulative counts when rendered. */
            atomic_fetch_add_explicit(&buckets[i], 1, memory_order_relaxed);
            break;
        }
    }
}

void aurora_metrics_in_flight(int delta)
{
    atomic_fetch_add_explicit(&in_flight, delta, memory_order_relaxed);
}

void aurora_metrics_upstream(int failed)
{
    atomic_fetch_add_explicit(failed ? &upstream_failed : &upstream_ok, 1, memory_order_relaxed);
}

void aurora_metrics_reload(int ok)
{
    atomic_fetch_add_explicit(ok ? &reloads_ok : &reloads_failed, 1, memory_order_relaxed);
}

#define LOAD(x) atomic_load_explicit(&(x), memory_order_relaxed)

int aurora_metrics_render(aurora_buf *b)
{
    unsigned long long cum = 0;
    int rc = 0;

    rc |= aurora_buf_puts(b, "# HELP aurora_requests_total HTTP requests answered, by status "
                             "class.\n# TYPE aurora_requests_total counter\n");
    for (int c = 1; c <= 5; c++)
        rc |= aurora_buf_printf(b, "aurora_requests_total{code=\"%dxx\"} %llu\n", c,
                                LOAD(by_class[c]));
    rc |= aurora_buf_puts(b, "# HELP aurora_request_duration_seconds Time from request to "
                             "response.\n# TYPE aurora_request_duration_seconds histogram\n");
    for (size_t i = 0; i < NB; i++) {
        cum += LOAD(buckets[i]);
        rc |= aurora_buf_printf(b, "aurora_request_duration_seconds_bucket{le=\"%g\"} %llu\n",
                                bounds[i], cum);
    }
    rc |= aurora_buf_printf(b,
                            "aurora_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n"
                            "aurora_request_duration_seconds_sum %.3f\n"
                            "aurora_request_duration_seconds_count %llu\n",
                            LOAD(count), (double)LOAD(sum_ms) / 1000.0, LOAD(count));
    rc |= aurora_buf_printf(b,
                            "# HELP aurora_requests_in_flight Requests being handled now.\n"
                            "# TYPE aurora_requests_in_flight gauge\n"
                            "aurora_requests_in_flight %lld\n",
                            LOAD(in_flight));
    rc |= aurora_buf_printf(b,
                            "# HELP aurora_upstream_requests_total Outbound HTTP transfers, by "
                            "result (error: no HTTP answer).\n"
                            "# TYPE aurora_upstream_requests_total counter\n"
                            "aurora_upstream_requests_total{result=\"ok\"} %llu\n"
                            "aurora_upstream_requests_total{result=\"error\"} %llu\n",
                            LOAD(upstream_ok), LOAD(upstream_failed));
    rc |= aurora_buf_printf(b,
                            "# HELP aurora_reloads_total Script reloads, by result.\n"
                            "# TYPE aurora_reloads_total counter\n"
                            "aurora_reloads_total{result=\"ok\"} %llu\n"
                            "aurora_reloads_total{result=\"rejected\"} %llu\n",
                            LOAD(reloads_ok), LOAD(reloads_failed));
    return rc ? AURORA_E_TOO_LARGE : 0;
}

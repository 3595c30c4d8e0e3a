/*
 * metrics.h: process-wide counters for GET /metrics (Prometheus text format 0.0.4). Lock-free:
 * relaxed atomics updated by every worker.
 */
#ifndef AURORA_METRICS_H
#define AURORA_METRICS_H

#include <stdint.h>

#include "aurora/buf.h"

/* One answered request: its status and how long it took. */
void aurora_metrics_request(unsigned status, uint64_t ms);

/* A request started (+1) or ended (-1). */
void aurora_metrics_in_flight(int delta);

/* One outbound HTTP transfer ended; failed is non-zero for a transport failure. */
void aurora_metrics_upstream(int failed);

/* A reload was applied (ok) or rejected. */
void aurora_metrics_reload(int ok);

/* Appends the exposition text to out. Returns 0 or an aurora_err. */
int aurora_metrics_render(aurora_buf *out);

#endif

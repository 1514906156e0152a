/*
 * hist.h — the latency histogram, once: counts per bucket over a fixed
 * scale of upper bounds, and the sum of every sample, in atomics so that
 * recording can sit on every task's path. Internal to libordo.
 *
 * Why one: the runtime's executor (wait and run time per class) and
 * `ordo serve` (enqueue to durable, for /metrics) each kept one, with
 * their own bucket search, sum and quantile; the scales differ, the
 * histogram does not.
 *
 * Recording is relaxed atomic adds; a read sums the buckets without
 * stopping writers, so it may be off by the samples recorded while it is
 * taken (hold a lock around both where that matters). A zeroed ordo__hist
 * is an empty one. Any thread.
 */
#ifndef ORDO_BASE_HIST_H
#define ORDO_BASE_HIST_H

#include <stdatomic.h>
#include <stddef.h>

/* The most buckets a scale has. */
#define ORDO__HIST_BUCKETS 32

/* A scale: n buckets, bucket i holding the samples up to le_ns[i]
 * (inclusive) that are over le_ns[i - 1]; the last bucket (n - 1) has no
 * bound, +Inf. */
typedef struct ordo__hist_scale {
  unsigned n;
  unsigned long long le_ns[ORDO__HIST_BUCKETS - 1];
} ordo__hist_scale;

/* 32 buckets of powers of two microseconds: bucket 0 is < 1 µs, bucket i
 * is [2^(i-1), 2^i) µs, the last takes everything from 2^30 µs. */
extern const ordo__hist_scale ordo__hist_log2_us;

/* 17 buckets up to 100 µs, 250 µs, 500 µs, 1 ms, 2.5 ms, ... 5 s, 10 s,
 * then +Inf: Prometheus' usual latency buckets, in nanoseconds. */
extern const ordo__hist_scale ordo__hist_seconds;

typedef struct ordo__hist {
  atomic_ullong bucket[ORDO__HIST_BUCKETS]; /* not cumulative */
  atomic_ullong sum_ns;                     /* of every sample */
} ordo__hist;

/* Record n samples of ns nanoseconds each on scale s. */
void ordo__hist_record(ordo__hist *h, const ordo__hist_scale *s,
                       unsigned long long ns, unsigned long long n);

/* One sample on the log2 scale (the runtime's executor). */
static inline void ordo__hist_add(ordo__hist *h, unsigned long long ns) {
  ordo__hist_record(h, &ordo__hist_log2_us, ns, 1);
}

/* Copy the n buckets into counts; returns their total. */
unsigned long long ordo__hist_read(const ordo__hist *h, unsigned n,
                                   unsigned long long *counts);

/* The bucket (0..n-1) that holds quantile q (0..1) of the n counts: the
 * first whose running total reaches q of the whole, rounded up (p99 of 100
 * samples is the 99th smallest). -1 when there are none. */
int ordo__hist_rank(const unsigned long long *counts, unsigned n, double q);

#endif /* ORDO_BASE_HIST_H */

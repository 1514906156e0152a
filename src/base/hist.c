/*
 * hist.c — the histogram of hist.h: the two scales, recording (a binary
 * search of the scale's bounds), reading and the quantile's bucket.
 */
#include "base/hist.h"

#define US(x) ((x)*1000ULL - 1) /* below x µs: up to x µs - 1 ns */

const ordo__hist_scale ordo__hist_log2_us = {
    32,
    {US(1ULL << 0),  US(1ULL << 1),  US(1ULL << 2),  US(1ULL << 3),
     US(1ULL << 4),  US(1ULL << 5),  US(1ULL << 6),  US(1ULL << 7),
     US(1ULL << 8),  US(1ULL << 9),  US(1ULL << 10), US(1ULL << 11),
     US(1ULL << 12), US(1ULL << 13), US(1ULL << 14), US(1ULL << 15),
     US(1ULL << 16), US(1ULL << 17), US(1ULL << 18), US(1ULL << 19),
     US(1ULL << 20), US(1ULL << 21), US(1ULL << 22), US(1ULL << 23),
     US(1ULL << 24), US(1ULL << 25), US(1ULL << 26), US(1ULL << 27),
     US(1ULL << 28), US(1ULL << 29), US(1ULL << 30)}};

const ordo__hist_scale ordo__hist_seconds = {
    17,
    {100000ULL, 250000ULL, 500000ULL, 1000000ULL, 2500000ULL, 5000000ULL,
     10000000ULL, 25000000ULL, 50000000ULL, 100000000ULL, 250000000ULL,
     500000000ULL, 1000000000ULL, 2500000000ULL, 5000000000ULL,
     10000000000ULL}};

void ordo__hist_record(ordo__hist *h, const ordo__hist_scale *s,
                       unsigned long long ns, unsigned long long n) {
  unsigned lo = 0, hi = s->n - 1; /* hi: the +Inf bucket */
  while (lo < hi) {
    unsigned mid = (lo + hi) / 2;
    if (ns <= s->le_ns[mid])
      hi = mid;
    else
      lo = mid + 1;
  }
  atomic_fetch_add_explicit(&h->bucket[lo], n, memory_order_relaxed);
  atomic_fetch_add_explicit(&h->sum_ns, ns * n, memory_order_relaxed);
}

unsigned long long ordo__hist_read(const ordo__hist *h, unsigned n,
                                   unsigned long long *counts) {
  unsigned long long total = 0;
  for (unsigned i = 0; i < n; i++) {
    counts[i] = atomic_load_explicit(&h->bucket[i], memory_order_relaxed);
    total += counts[i];
  }
  return total;
}

int ordo__hist_rank(const unsigned long long *counts, unsigned n, double q) {
  unsigned long long total = 0, rank, seen = 0;
  for (unsigned i = 0; i < n; i++)
    total += counts[i];
  if (total == 0)
    return -1;
  rank = (unsigned long long)(q * (double)total);
  if ((double)rank < q * (double)total)
    rank++;
  if (rank == 0)
    rank = 1;
  for (unsigned i = 0; i < n; i++) {
    seen += counts[i];
    if (seen >= rank)
      return (int)i;
  }
  return (int)n - 1;
}

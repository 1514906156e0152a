/*
 * metrics.c — per-class counters and log2 latency histograms.
 *
 * Recording is a few relaxed atomic adds so that it can sit on every task's
 * path; reading sums the buckets without stopping writers, so a snapshot may
 * be off by the samples recorded while it is taken.
 */
#include "runtime/internal.h"

#include <jansson.h>
#include <stdlib.h>

void ordo__hist_add(ordo__hist *h, unsigned long long ns) {
  unsigned long long us = ns / 1000;
  unsigned i = 0;
  while (us > 0 && i < ORDO__HIST_BUCKETS - 1) {
    us >>= 1;
    i++;
  }
  atomic_fetch_add_explicit(&h->bucket[i], 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&h->sum_ns, ns, memory_order_relaxed);
}

static unsigned long long bucket_upper_us(unsigned i) {
  return i == 0 ? 1ull : (1ull << i);
}

unsigned long long ordo__hist_quantile_us(const ordo__hist *h, double q) {
  unsigned long long counts[ORDO__HIST_BUCKETS], total = 0;
  for (unsigned i = 0; i < ORDO__HIST_BUCKETS; i++) {
    counts[i] = atomic_load_explicit(&h->bucket[i], memory_order_relaxed);
    total += counts[i];
  }
  if (total == 0)
    return 0;
  /* Rank of the quantile, 1-based, rounded up so p99 of 100 samples is the
   * 99th smallest. */
  unsigned long long rank = (unsigned long long)(q * (double)total);
  if ((double)rank < q * (double)total)
    rank++;
  if (rank == 0)
    rank = 1;
  unsigned long long seen = 0;
  for (unsigned i = 0; i < ORDO__HIST_BUCKETS; i++) {
    seen += counts[i];
    if (seen >= rank)
      return bucket_upper_us(i);
  }
  return bucket_upper_us(ORDO__HIST_BUCKETS - 1);
}

static json_t *hist_json(const ordo__hist *h) {
  json_t *o = json_object();
  json_t *b = json_array();
  unsigned long long total = 0;
  if (o == NULL || b == NULL)
    goto fail;
  for (unsigned i = 0; i < ORDO__HIST_BUCKETS; i++) {
    unsigned long long c =
        atomic_load_explicit(&h->bucket[i], memory_order_relaxed);
    total += c;
    if (json_array_append_new(b, json_integer((json_int_t)c)) != 0)
      goto fail;
  }
  if (json_object_set_new(o, "p50", json_integer((json_int_t)ordo__hist_quantile_us(h, 0.50))) ||
      json_object_set_new(o, "p99", json_integer((json_int_t)ordo__hist_quantile_us(h, 0.99))) ||
      json_object_set_new(o, "count", json_integer((json_int_t)total)) ||
      json_object_set_new(
          o, "sum_us",
          json_integer((json_int_t)(atomic_load_explicit(
                                        &h->sum_ns, memory_order_relaxed) /
                                    1000))))
    goto fail;
  if (json_object_set_new(o, "buckets", b)) /* steals b even on failure */
    goto fail_o;
  return o;
fail:
  json_decref(b);
fail_o:
  json_decref(o);
  return NULL;
}

static json_t *class_json(ordo__class_metrics *m) {
  json_t *o = json_object();
  if (o == NULL)
    return NULL;
#define U(x) json_integer((json_int_t)atomic_load_explicit(&m->x, memory_order_relaxed))
  if (json_object_set_new(o, "threads", U(threads)) ||
      json_object_set_new(o, "queue_depth", U(queue_depth)) ||
      json_object_set_new(o, "busy", U(busy)) ||
      json_object_set_new(o, "submitted", U(submitted)) ||
      json_object_set_new(o, "completed", U(completed)) ||
      json_object_set_new(o, "rejected", U(rejected)) ||
      json_object_set_new(o, "wait_us", hist_json(&m->wait)) ||
      json_object_set_new(o, "run_us", hist_json(&m->run))) {
    json_decref(o);
    return NULL;
  }
#undef U
  return o;
}

char *ordo__metrics_json(ordo__class_metrics *m, size_t n) {
  json_t *root = json_object();
  json_t *classes = json_object();
  char *out = NULL;
  if (root == NULL || classes == NULL) {
    json_decref(root);
    json_decref(classes);
    return NULL;
  }
  if (json_object_set_new(root, "classes", classes) != 0) {
    json_decref(root); /* classes went with the failed set: it steals */
    return NULL;
  }
  for (size_t i = 0; i < n; i++) {
    json_t *c = class_json(&m[i]);
    if (c == NULL || json_object_set_new(classes, ordo_class_name((ordo_class)i), c))
      goto done;
  }
  out = json_dumps(root, JSON_COMPACT);
done:
  json_decref(root);
  return out;
}

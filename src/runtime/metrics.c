/*
 * metrics.c — per-class counters and log2 latency histograms (base/hist.h,
 * on its log2 µs scale) as JSON.
 *
 * Recording is a few relaxed atomic adds so that it can sit on every task's
 * path; reading sums the buckets without stopping writers, so a snapshot may
 * be off by the samples recorded while it is taken.
 */
#include "runtime/internal.h"

#include <jansson.h>
#include <stdlib.h>

unsigned long long ordo__hist_quantile_us(const ordo__hist *h, double q) {
  unsigned long long counts[ORDO__HIST_BUCKETS];
  int i;
  (void)ordo__hist_read(h, ORDO__HIST_BUCKETS, counts);
  i = ordo__hist_rank(counts, ORDO__HIST_BUCKETS, q);
  return i < 0 ? 0 : 1ULL << i; /* bucket i is below 2^i µs */
}

static json_t *hist_json(const ordo__hist *h) {
  json_t *o = json_object();
  json_t *b = json_array();
  unsigned long long counts[ORDO__HIST_BUCKETS], total;
  if (o == NULL || b == NULL)
    goto fail;
  total = ordo__hist_read(h, ORDO__HIST_BUCKETS, counts);
  for (unsigned i = 0; i < ORDO__HIST_BUCKETS; i++)
    if (json_array_append_new(b, json_integer((json_int_t)counts[i])) != 0)
      goto fail;
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

/*
 * metrics.c — GET /metrics in Prometheus' text format 0.0.4: the runtime's
 * executor metrics (ordo_ctx_metrics_json), the queue's totals, the
 * submitter's counters, the enqueue latency the server measures, in flight
 * per service, and HTTP answers by status.
 *
 * Services: each scrape takes the journal's list of services (restored
 * ones included), asks it about each and exports the SRV_METRIC_SERVICES
 * deepest.
 *
 * The executor histograms come from the runtime's log2 buckets, with the
 * sum of every sample; rates come from the _total counters.
 */
#include "server/internal.h"
#include "server/reply.h"
#include "server/routes.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- counters ------------------------------------------------------------ */

/* The statuses of ordo_http_requests_total; the last (0) is "other". */
static const int codes[SRV_NCODES] = {200, 202, 400, 401, 403, 404,
                                      405, 409, 413, 415, 429, 500,
                                      503, 504, 507, 0};

void ordo__srv_count_status(ordo_server *srv, int status) {
  size_t i;
  for (i = 0; i + 1 < SRV_NCODES && codes[i] != status; i++)
    ;
  atomic_fetch_add(&srv->http_count[i], 1);
}

void ordo__srv_count_enqueued(ordo_server *srv, unsigned long long ns,
                              size_t n) {
  /* Under stat_mu with enqueued, so that a scrape sees them agree. */
  pthread_mutex_lock(&srv->stat_mu);
  ordo__hist_record(&srv->enqueue_hist, &ordo__hist_seconds, ns, n);
  srv->enqueued += n;
  pthread_mutex_unlock(&srv->stat_mu);
}

/* ---- text building ------------------------------------------------------- */

typedef struct sbuf {
  char *p;
  size_t n, cap;
  int oom;
} sbuf;

static void put(sbuf *b, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static void put(sbuf *b, const char *fmt, ...) {
  va_list ap;
  int k;
  if (b->oom)
    return;
  for (;;) {
    size_t room = b->cap - b->n;
    va_start(ap, fmt);
    k = vsnprintf(b->p != NULL ? b->p + b->n : NULL, room, fmt, ap);
    va_end(ap);
    if (k < 0) {
      b->oom = 1;
      return;
    }
    if ((size_t)k < room) {
      b->n += (size_t)k;
      return;
    }
    {
      size_t cap = b->cap > 0 ? b->cap * 2 : 16384;
      char *p;
      while (cap - b->n <= (size_t)k)
        cap *= 2;
      if ((p = realloc(b->p, cap)) == NULL) {
        b->oom = 1;
        return;
      }
      b->p = p;
      b->cap = cap;
    }
  }
}

/* A label value with \, " and newline escaped (into out, cut to size). */
static void label_escape(const char *s, char *out, size_t size) {
  size_t o = 0;
  for (; *s != '\0' && o + 3 < size; s++) {
    if (*s == '\\' || *s == '"') {
      out[o++] = '\\';
      out[o++] = *s;
    } else if (*s == '\n') {
      out[o++] = '\\';
      out[o++] = 'n';
    } else {
      out[o++] = *s;
    }
  }
  out[o] = '\0';
}

/* One histogram's series: the n cumulative buckets (le[i] seconds, the
 * last +Inf), _sum (seconds, with digits decimals) and _count; label is
 * "" or one label pair (class="io") that each series carries. */
static void put_hist(sbuf *b, const char *name, const char *label,
                     const unsigned long long *counts, const double *le,
                     unsigned n, double sum, int digits) {
  const char *comma = label[0] != '\0' ? "," : "";
  unsigned long long cum = 0;
  unsigned i;
  for (i = 0; i < n; i++) {
    cum += counts[i];
    if (i + 1 < n)
      put(b, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, label, comma, le[i],
          cum);
    else
      put(b, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, label, comma, cum);
  }
  if (label[0] != '\0')
    put(b, "%s_sum{%s} %.*f\n%s_count{%s} %llu\n", name, label, digits, sum,
        name, label, cum);
  else
    put(b, "%s_sum %.*f\n%s_count %llu\n", name, digits, sum, name, cum);
}

static long long jint(json_t *o, const char *key) {
  return (long long)json_integer_value(json_object_get(o, key));
}

/* ---- sections ------------------------------------------------------------ */

static void executor_metrics(ordo_server *srv, sbuf *b) {
  static const struct {
    const char *key, *name, *type, *help;
  } gauges[] = {
      {"threads", "ordo_executor_threads", "gauge", "threads of the class"},
      {"queue_depth", "ordo_executor_queue_depth", "gauge",
       "ops admitted and not yet started"},
      {"busy", "ordo_executor_busy_threads", "gauge",
       "threads running a stage now"},
      {"submitted", "ordo_executor_submitted_total", "counter",
       "stages queued"},
      {"completed", "ordo_executor_completed_total", "counter",
       "stages finished"},
      {"rejected", "ordo_executor_rejected_total", "counter",
       "ops refused (queue full)"}};
  static const char *const hists[2][3] = {
      {"wait_us", "ordo_executor_wait_seconds", "time from queued to started"},
      {"run_us", "ordo_executor_run_seconds", "time a stage ran"}};
  char *text = ordo_ctx_metrics_json(srv->ctx);
  json_t *m = text != NULL ? json_loads(text, 0, NULL) : NULL;
  json_t *classes = json_object_get(m, "classes"), *c;
  const char *cls;
  size_t g, h;

  free(text);
  if (classes == NULL) {
    json_decref(m);
    return;
  }
  for (g = 0; g < sizeof gauges / sizeof gauges[0]; g++) {
    put(b, "# HELP %s %s\n# TYPE %s %s\n", gauges[g].name, gauges[g].help,
        gauges[g].name, gauges[g].type);
    json_object_foreach(classes, cls, c)
      put(b, "%s{class=\"%s\"} %lld\n", gauges[g].name, cls,
          jint(c, gauges[g].key));
  }
  for (h = 0; h < 2; h++) {
    put(b, "# HELP %s %s\n# TYPE %s histogram\n", hists[h][1], hists[h][2],
        hists[h][1]);
    json_object_foreach(classes, cls, c) {
      json_t *hj = json_object_get(c, hists[h][0]);
      json_t *bk = json_object_get(hj, "buckets");
      unsigned long long counts[ORDO__HIST_BUCKETS];
      double le[ORDO__HIST_BUCKETS];
      char label[96];
      unsigned i, n = (unsigned)json_array_size(bk);
      if (n > ORDO__HIST_BUCKETS)
        n = ORDO__HIST_BUCKETS;
      /* The runtime's log2 scale: bucket i holds [2^(i-1), 2^i) µs. */
      for (i = 0; i < n; i++) {
        counts[i] =
            (unsigned long long)json_integer_value(json_array_get(bk, i));
        le[i] = (double)(1ULL << i) / 1e6;
      }
      snprintf(label, sizeof label, "class=\"%s\"", cls);
      put_hist(b, hists[h][1], label, counts, le, n,
               (double)jint(hj, "sum_us") / 1e6, 6);
    }
  }
  json_decref(m);
}

static void queue_metrics(ordo_server *srv, sbuf *b) {
  ordo_journal_totals t;
  static const char *const states[] = {"queued",    "waiting",  "in_flight",
                                       "unknown",   "committed", "invalid"};
  size_t i;
  if (srv->cl != NULL)
    ordo__srv_cluster_totals(srv, &t); /* the services run here */
  else
    (void)ordo_journal_get_totals(srv->j, &t); /* zeroed if it cannot */
  const size_t by_state[] = {t.queued,  t.waiting,   t.in_flight,
                             t.unknown, t.committed, t.invalid};
  put(b, "# HELP ordo_batches batches in the journal by state\n"
         "# TYPE ordo_batches gauge\n");
  for (i = 0; i < sizeof states / sizeof states[0]; i++)
    put(b, "ordo_batches{state=\"%s\"} %zu\n", states[i], by_state[i]);
  put(b, "# HELP ordo_services services the journal knows\n"
         "# TYPE ordo_services gauge\nordo_services %zu\n",
      t.services);
  put(b, "# HELP ordo_journal_records records written to the journal\n"
         "# TYPE ordo_journal_records gauge\nordo_journal_records %llu\n",
      t.records);
  put(b, "# HELP ordo_journal_failed 1 when a journal write failed\n"
         "# TYPE ordo_journal_failed gauge\nordo_journal_failed %d\n",
      t.failed);
}

/* --cluster: this instance's leases. */
static void cluster_metrics(ordo_server *srv, sbuf *b) {
  ordo_cluster_stats st;
  if (srv->cl == NULL)
    return;
  ordo_cluster_get_stats(srv->cl, &st);
  put(b, "# HELP ordo_cluster_leases_held services whose lease this "
         "instance holds\n# TYPE ordo_cluster_leases_held gauge\n"
         "ordo_cluster_leases_held %llu\n", st.held);
  put(b, "# HELP ordo_cluster_leases_taken_total leases taken, free or "
         "expired\n# TYPE ordo_cluster_leases_taken_total counter\n"
         "ordo_cluster_leases_taken_total %llu\n", st.taken);
  put(b, "# HELP ordo_cluster_leases_taken_over_total leases taken from "
         "an owner that stopped renewing them\n"
         "# TYPE ordo_cluster_leases_taken_over_total counter\n"
         "ordo_cluster_leases_taken_over_total %llu\n", st.taken_over);
  put(b, "# HELP ordo_cluster_leases_lost_total leases found held by "
         "another instance (or not renewed for a TTL)\n"
         "# TYPE ordo_cluster_leases_lost_total counter\n"
         "ordo_cluster_leases_lost_total %llu\n", st.lost);
  put(b, "# HELP ordo_cluster_leases_released_total leases handed over\n"
         "# TYPE ordo_cluster_leases_released_total counter\n"
         "ordo_cluster_leases_released_total %llu\n", st.released);
  put(b, "# HELP ordo_cluster_instances instances alive on the queue\n"
         "# TYPE ordo_cluster_instances gauge\nordo_cluster_instances %u\n",
      st.instances);
  put(b, "# HELP ordo_cluster_round_errors_total lease rounds the database "
         "failed\n# TYPE ordo_cluster_round_errors_total counter\n"
         "ordo_cluster_round_errors_total %llu\n", st.round_errors);
}

static void submitter_metrics(ordo_server *srv, sbuf *b) {
  ordo_submitter_progress p;
  const ordo__hist_scale *sc = &ordo__hist_seconds;
  unsigned long long hist[ORDO__HIST_BUCKETS], enq, sum_ns;
  double le[ORDO__HIST_BUCKETS];
  size_t i;

  (void)ordo__srv_progress(srv, &p);
  pthread_mutex_lock(&srv->stat_mu);
  (void)ordo__hist_read(&srv->enqueue_hist, sc->n, hist);
  sum_ns = atomic_load(&srv->enqueue_hist.sum_ns);
  enq = srv->enqueued;
  pthread_mutex_unlock(&srv->stat_mu);
  for (i = 0; i + 1 < sc->n; i++)
    le[i] = (double)sc->le_ns[i] / 1e9;
  put(b, "# HELP ordo_batches_enqueued_total batches journaled through this "
         "server\n# TYPE ordo_batches_enqueued_total counter\n"
         "ordo_batches_enqueued_total %llu\n", enq);
  put(b, "# HELP ordo_batches_submitted_total batches sent to the ledger "
         "(resends included)\n# TYPE ordo_batches_submitted_total counter\n"
         "ordo_batches_submitted_total %llu\n", p.submitted);
  put(b, "# HELP ordo_batches_resubmitted_total batches sent again (the "
         "ledger lost them)\n# TYPE ordo_batches_resubmitted_total counter\n"
         "ordo_batches_resubmitted_total %llu\n", p.resubmitted);
  put(b, "# HELP ordo_batches_committed_total committed verdicts recorded\n"
         "# TYPE ordo_batches_committed_total counter\n"
         "ordo_batches_committed_total %llu\n", p.committed);
  put(b, "# HELP ordo_batches_invalid_total invalid verdicts recorded\n"
         "# TYPE ordo_batches_invalid_total counter\n"
         "ordo_batches_invalid_total %llu\n", p.invalid);
  put(b, "# HELP ordo_ledger_call_errors_total failed ledger calls\n"
         "# TYPE ordo_ledger_call_errors_total counter\n"
         "ordo_ledger_call_errors_total{call=\"submit\"} %llu\n"
         "ordo_ledger_call_errors_total{call=\"statuses\"} %llu\n",
      p.submit_errors, p.status_errors);
  put(b, "# HELP ordo_ledger_requests_total ledger calls started\n"
         "# TYPE ordo_ledger_requests_total counter\n"
         "ordo_ledger_requests_total{call=\"submit\"} %llu\n"
         "ordo_ledger_requests_total{call=\"statuses\"} %llu\n",
      p.submit_calls, p.status_calls);
  put(b, "# HELP ordo_ledger_errors_total failed ledger calls by cause\n"
         "# TYPE ordo_ledger_errors_total counter\n");
  for (i = 0; i < ORDO_SUBMITTER_CAUSES; i++)
    put(b, "ordo_ledger_errors_total{cause=\"%s\"} %llu\n",
        ordo_submitter_cause_name((int)i), p.errors_by_cause[i]);
  put(b, "# HELP ordo_ledger_up 1 while the ledger answers, 0 while it "
         "cannot be reached\n# TYPE ordo_ledger_up gauge\nordo_ledger_up %d\n",
      !p.ledger_down);
  put(b, "# HELP ordo_batches_refused_total batches the ledger refused at "
         "submit (INVALID, never sent again)\n"
         "# TYPE ordo_batches_refused_total counter\n"
         "ordo_batches_refused_total %llu\n", p.refused);
  put(b, "# HELP ordo_journal_enqueue_seconds time from enqueue to durable, "
         "per batch\n# TYPE ordo_journal_enqueue_seconds histogram\n");
  put_hist(b, "ordo_journal_enqueue_seconds", "", hist, le, sc->n,
           (double)sum_ns / 1e9, 9);
}

typedef struct svc_row {
  const char *name; /* the journal's */
  long long depth, in_flight;
} svc_row;

static int by_depth(const void *a, const void *b) {
  const svc_row *x = a, *y = b;
  if (x->depth != y->depth)
    return x->depth < y->depth ? 1 : -1;
  if (x->in_flight != y->in_flight)
    return x->in_flight < y->in_flight ? 1 : -1;
  return strcmp(x->name, y->name);
}

static void service_metrics(ordo_server *srv, sbuf *b) {
  svc_row *rows;
  const char **names;
  size_t i, n = 0, cap;
  char esc[3 * 128 + 8];

  /* The names (journal-owned: valid while it is open), then each one's
   * counters. Services are only ever added, so the first cap names are
   * there however many came since the count. */
  cap = srv->j != NULL ? ordo_journal_service_names(srv->j, NULL, 0) : 0;
  rows = cap > 0 ? calloc(cap, sizeof *rows) : NULL;
  names = cap > 0 ? calloc(cap, sizeof *names) : NULL;
  if (rows != NULL && names != NULL) {
    (void)ordo_journal_service_names(srv->j, names, cap);
    for (i = 0; i < cap; i++)
      rows[n++].name = names[i];
  }
  free(names);
  for (i = 0; i < n; i++) {
    ordo_journal_service_info in;
    if (ordo_journal_get_service(srv->j, rows[i].name, &in) != ORDO_OK)
      continue; /* dropped meanwhile: zeros */
    rows[i].depth = (long long)in.depth;
    rows[i].in_flight = (long long)(in.in_flight + in.unknown);
    ordo_journal_service_info_clear(&in);
  }
  if (n > 0)
    qsort(rows, n, sizeof *rows, by_depth);
  put(b, "# HELP ordo_service_in_flight batches of the service at the "
         "ledger (the %d deepest services)\n"
         "# TYPE ordo_service_in_flight gauge\n", SRV_METRIC_SERVICES);
  for (i = 0; i < n && i < SRV_METRIC_SERVICES; i++) {
    label_escape(rows[i].name, esc, sizeof esc);
    put(b, "ordo_service_in_flight{service=\"%s\"} %lld\n", esc,
        rows[i].in_flight);
  }
  put(b, "# HELP ordo_service_depth batches of the service not yet sent "
         "(queued + waiting)\n# TYPE ordo_service_depth gauge\n");
  for (i = 0; i < n && i < SRV_METRIC_SERVICES; i++) {
    label_escape(rows[i].name, esc, sizeof esc);
    put(b, "ordo_service_depth{service=\"%s\"} %lld\n", esc, rows[i].depth);
  }
  free(rows);
}

static void http_metrics(ordo_server *srv, sbuf *b) {
  size_t i;
  put(b, "# HELP ordo_http_requests_total answers by HTTP status\n"
         "# TYPE ordo_http_requests_total counter\n");
  for (i = 0; i < SRV_NCODES; i++) {
    unsigned long long v = atomic_load(&srv->http_count[i]);
    if (codes[i] != 0)
      put(b, "ordo_http_requests_total{code=\"%d\"} %llu\n", codes[i], v);
    else
      put(b, "ordo_http_requests_total{code=\"other\"} %llu\n", v);
  }
}

int ordo__srv_metrics(ordo_server *srv, ordo_server_response *resp) {
  sbuf b = {NULL, 0, 0, 0};
  executor_metrics(srv, &b);
  queue_metrics(srv, &b);
  submitter_metrics(srv, &b);
  service_metrics(srv, &b);
  cluster_metrics(srv, &b);
  http_metrics(srv, &b);
  if (b.oom || b.p == NULL) {
    free(b.p);
    return ordo__srv_reply(resp, 500, NULL);
  }
  resp->status = 200;
  resp->body = b.p;
  resp->body_len = b.n;
  resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
  return ORDO_OK;
}

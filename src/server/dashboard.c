/*
 * dashboard.c — what the dashboard (/ui) asks for besides the batch and
 * service endpoints: GET /v1/dashboard, the counters and the last ten
 * minutes of one-second samples in one answer, and GET /v1/services, every
 * service's counters filtered, sorted and paged on the server, so that a
 * page over 10,000 services renders fifty rows.
 *
 * The samples are taken by a thread of their own once a second whether a
 * page watches or not: a page opened during an incident shows the minutes
 * before it. Taking one costs a journal totals call (one lock, no I/O).
 */
#include "server/internal.h"
#include "server/reply.h"
#include "server/routes.h"
#include "runtime/runtime.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SRV_SAMPLE_MS 1000
#define SRV_SERVICES_PAGE_MAX 500

/* The queue's totals in either mode (zeroed when there is no journal). */
static void srv_totals(ordo_server *srv, ordo_journal_totals *t) {
  memset(t, 0, sizeof(*t));
  if (srv->cl != NULL)
    ordo__srv_cluster_totals(srv, t);
  else if (srv->j != NULL)
    (void)ordo_journal_get_totals(srv->j, t);
}

/* ------------------------------------------------------------------------ */
/* The sampler                                                               */
/* ------------------------------------------------------------------------ */

static void sample_take(ordo_server *srv) {
  ordo_journal_totals t;
  ordo_submitter_progress p;
  srv_sample s;

  srv_totals(srv, &t);
  (void)ordo__srv_progress(srv, &p);
  memset(&s, 0, sizeof(s));
  s.t_ms = ordo__wall_ms();
  pthread_mutex_lock(&srv->stat_mu);
  s.enqueued = srv->enqueued;
  pthread_mutex_unlock(&srv->stat_mu);
  s.committed = p.committed;
  s.invalid = p.invalid;
  s.requests = p.submit_calls + p.status_calls;
  s.errors = p.submit_errors + p.status_errors;
  s.queued = t.queued;
  s.waiting = t.waiting;
  s.in_flight = t.in_flight + t.unknown;
  s.p50_ms = t.latency_p50_ms;
  s.p99_ms = t.latency_p99_ms;
  pthread_mutex_lock(&srv->sample_mu);
  srv->samples[srv->sample_next] = s;
  srv->sample_next = (srv->sample_next + 1) % SRV_SAMPLES;
  if (srv->nsamples < SRV_SAMPLES)
    srv->nsamples++;
  pthread_mutex_unlock(&srv->sample_mu);
}

static void *sampler_main(void *arg) {
  ordo_server *srv = arg;
  struct timespec next;
  clock_gettime(CLOCK_MONOTONIC, &next);
  for (;;) {
    sample_take(srv);
    next.tv_sec += SRV_SAMPLE_MS / 1000;
    pthread_mutex_lock(&srv->sample_mu);
    while (!srv->sample_stop &&
           pthread_cond_timedwait(&srv->sample_cv, &srv->sample_mu, &next) !=
               ETIMEDOUT)
      ;
    if (srv->sample_stop) {
      pthread_mutex_unlock(&srv->sample_mu);
      return NULL;
    }
    pthread_mutex_unlock(&srv->sample_mu);
  }
}

int ordo__srv_sampler_start(ordo_server *srv) {
  if (pthread_create(&srv->sampler, NULL, sampler_main, srv) != 0)
    return ordo__set_last_error(ORDO_E_SYSTEM, "server: cannot start the "
                                "sampler thread");
  srv->has_sampler = 1;
  return ORDO_OK;
}

void ordo__srv_sampler_stop(ordo_server *srv) {
  if (!srv->has_sampler)
    return;
  pthread_mutex_lock(&srv->sample_mu);
  srv->sample_stop = 1;
  pthread_cond_broadcast(&srv->sample_cv);
  pthread_mutex_unlock(&srv->sample_mu);
  pthread_join(srv->sampler, NULL);
  srv->has_sampler = 0;
}

/* ------------------------------------------------------------------------ */
/* GET /v1/dashboard                                                         */
/* ------------------------------------------------------------------------ */

static json_t *sample_json(const srv_sample *s) {
  return json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "t",
                   (json_int_t)s->t_ms, "enqueued", (json_int_t)s->enqueued,
                   "committed", (json_int_t)s->committed, "invalid",
                   (json_int_t)s->invalid, "requests",
                   (json_int_t)s->requests, "errors", (json_int_t)s->errors,
                   "queued", (json_int_t)s->queued, "waiting",
                   (json_int_t)s->waiting, "in_flight",
                   (json_int_t)s->in_flight, "p50_ms", (json_int_t)s->p50_ms,
                   "p99_ms", (json_int_t)s->p99_ms);
}

/* The samples newer than since_ms, oldest first. */
static json_t *series_json(ordo_server *srv, unsigned long long since_ms) {
  json_t *a = json_array();
  size_t i, first;
  pthread_mutex_lock(&srv->sample_mu);
  first = (srv->sample_next + SRV_SAMPLES - srv->nsamples) % SRV_SAMPLES;
  for (i = 0; i < srv->nsamples && a != NULL; i++) {
    const srv_sample *s = &srv->samples[(first + i) % SRV_SAMPLES];
    if (s->t_ms > since_ms && json_array_append_new(a, sample_json(s)) != 0) {
      json_decref(a);
      a = NULL;
    }
  }
  pthread_mutex_unlock(&srv->sample_mu);
  return a;
}

/* An unsigned decimal query value (absent: *v untouched); 0 when it is
 * not one, with the 400 answered. */
static int query_ull(const ordo_server_request *req, const char *key,
                     unsigned long long max, unsigned long long *v,
                     ordo_server_response *resp) {
  int nomem;
  char *s = ordo__srv_query_get(req->query, key, &nomem), *end;
  unsigned long long x;
  if (s == NULL) {
    if (nomem)
      ordo__srv_reply(resp, 500, NULL);
    return !nomem;
  }
  errno = 0;
  x = strtoull(s, &end, 10);
  if (s[0] < '0' || s[0] > '9' || *end != '\0' || errno != 0 || x > max) {
    ordo__srv_error(resp, 400, ORDO_E_INVAL,
                    "'%s' must be a whole number from 0 to %llu", key, max);
    free(s);
    return 0;
  }
  free(s);
  *v = x;
  return 1;
}

/* Milliseconds since t0_ns, to the microsecond. */
static double ms_since(unsigned long long t0_ns) {
  return (double)((ordo__now_ns() - t0_ns + 500) / 1000) / 1e3;
}

int ordo__srv_dashboard(ordo_server *srv, const ordo_server_request *req,
                        ordo_server_response *resp) {
  unsigned long long t0 = ordo__now_ns(), since = 0, enq;
  ordo_journal_totals t;
  ordo_submitter_progress p;
  json_t *o, *ledger = json_null(), *series;
  int has_ledger;

  if (!query_ull(req, "since", 1ull << 53, &since, resp))
    return ORDO_OK; /* answered */
  srv_totals(srv, &t);
  has_ledger = ordo__srv_progress(srv, &p);
  pthread_mutex_lock(&srv->stat_mu);
  enq = srv->enqueued;
  pthread_mutex_unlock(&srv->stat_mu);
  if (has_ledger) {
    json_decref(ledger);
    ledger = ordo__srv_ledger_health_json(&p);
    if (ledger != NULL) {
      json_object_set_new(
          ledger, "requests",
          json_integer((json_int_t)(p.submit_calls + p.status_calls)));
      json_object_set_new(
          ledger, "errors",
          json_integer((json_int_t)(p.submit_errors + p.status_errors)));
    }
  }
  series = series_json(srv, since);
  o = json_pack(
      "{s:I,s:o,s:s,s:{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I},s:{s:I,s:I,s:I},"
      "s:o,s:o}",
      "time_ms", (json_int_t)ordo__wall_ms(), "instance",
      srv->cl != NULL ? json_string(ordo_cluster_instance_id(srv->cl))
                      : json_null(),
      "version", ORDO_VERSION_STRING, "totals", "enqueued", (json_int_t)enq,
      "queued", (json_int_t)t.queued, "waiting", (json_int_t)t.waiting,
      "in_flight", (json_int_t)t.in_flight, "unknown", (json_int_t)t.unknown,
      "committed", (json_int_t)t.committed, "invalid", (json_int_t)t.invalid,
      "services", (json_int_t)t.services, "latency", "count",
      (json_int_t)t.latency_count, "p50_ms", (json_int_t)t.latency_p50_ms,
      "p99_ms", (json_int_t)t.latency_p99_ms, "ledger",
      ledger != NULL ? ledger : json_null(), "series",
      series != NULL ? series : json_array());
  if (o != NULL)
    json_object_set_new(o, "server_ms", json_real(ms_since(t0)));
  return ordo__srv_reply(resp, 200, o);
}

/* ------------------------------------------------------------------------ */
/* GET /v1/services                                                          */
/* ------------------------------------------------------------------------ */

/* Every service's row, as the journal lists them (ordo_journal_service_row)
 * and, in a cluster, each one's lease (owner, epoch) and whether its
 * counters are known here (it runs here). The rows are sorted through
 * pointers: nothing is copied per request but the journal's list. */
typedef struct svc_rows {
  ordo_journal_service_row *r;
  size_t n;
  ordo_cluster_lease *lease; /* cluster: lease[i] is r[i]'s; else NULL */
  unsigned char *known;      /* cluster: r[i]'s counters are here; else NULL */
} svc_rows;

typedef enum svc_key {
  KEY_NAME, KEY_DEPTH, KEY_QUEUED, KEY_WAITING, KEY_IN_FLIGHT, KEY_COMMITTED,
  KEY_INVALID, KEY_HALTED
} svc_key;

static const char *const key_names[] = {"name",      "depth",     "queued",
                                        "waiting",   "in_flight", "committed",
                                        "invalid",   "halted"};

typedef enum svc_filter {
  FILTER_ALL, FILTER_HALTED, FILTER_WAITING, FILTER_IN_FLIGHT, FILTER_IDLE
} svc_filter;

static const char *const filter_names[] = {"all", "halted", "waiting",
                                           "in_flight", "idle"};

typedef struct svc_query {
  svc_key key;
  int desc;
  svc_filter filter;
  char *q; /* substring of the name, or NULL */
  unsigned long long offset, limit;
} svc_query;

typedef struct svc_sort {
  const svc_query *q;
  const svc_rows *rows;
} svc_sort;

static int row_known(const svc_rows *rows, const ordo_journal_service_row *r) {
  return rows->known == NULL || rows->known[r - rows->r];
}

/* The value a row sorts by (a row without counters sorts lowest). */
static long long row_value(const svc_rows *rows,
                           const ordo_journal_service_row *r, svc_key key) {
  if (!row_known(rows, r))
    return -1;
  switch (key) {
  case KEY_DEPTH: return (long long)r->depth;
  case KEY_QUEUED: return (long long)r->queued;
  case KEY_WAITING: return (long long)r->waiting;
  case KEY_IN_FLIGHT: return (long long)(r->in_flight + r->unknown);
  case KEY_COMMITTED: return (long long)r->committed;
  case KEY_INVALID: return (long long)r->invalid;
  case KEY_HALTED: return r->halted;
  case KEY_NAME: break;
  }
  return 0;
}

static int row_cmp(const void *a, const void *b, void *arg) {
  const ordo_journal_service_row *x = *(const ordo_journal_service_row *const *)a,
                                 *y = *(const ordo_journal_service_row *const *)b;
  const svc_sort *st = arg;
  svc_key key = st->q->key;
  int c = 0;
  if (key != KEY_NAME) {
    long long vx = row_value(st->rows, x, key), vy = row_value(st->rows, y, key);
    c = vx < vy ? -1 : vx > vy;
  }
  if (c == 0)
    c = strcmp(x->name, y->name);
  else if (st->q->desc)
    c = -c;
  /* Ties are by name ascending in either order; only a sort by name
   * itself flips. */
  return key == KEY_NAME && st->q->desc ? -c : c;
}

static int row_matches(const svc_rows *rows, const ordo_journal_service_row *r,
                       const svc_query *q) {
  int known = row_known(rows, r);
  if (q->q != NULL && q->q[0] != '\0' && strcasestr(r->name, q->q) == NULL)
    return 0;
  switch (q->filter) {
  case FILTER_ALL: return 1;
  case FILTER_HALTED: return known && r->halted;
  case FILTER_WAITING: return known && r->waiting > 0;
  case FILTER_IN_FLIGHT: return known && r->in_flight + r->unknown > 0;
  case FILTER_IDLE:
    return known && r->depth == 0 && r->in_flight + r->unknown == 0;
  }
  return 1;
}

/* The index of value in names[0..n), or -1. */
static int name_index(const char *const *names, int n, const char *value) {
  int i;
  for (i = 0; i < n; i++)
    if (strcmp(names[i], value) == 0)
      return i;
  return -1;
}

/* One of names from the query's key into *out (absent: untouched); 0 with
 * the 400 answered when it is none of them. */
static int query_enum(const ordo_server_request *req, const char *key,
                      const char *const *names, int n, int *out,
                      ordo_server_response *resp) {
  int nomem, i;
  char *v = ordo__srv_query_get(req->query, key, &nomem);
  if (v == NULL) {
    if (nomem)
      ordo__srv_reply(resp, 500, NULL);
    return !nomem;
  }
  if ((i = name_index(names, n, v)) < 0) {
    char list[200] = "";
    size_t len = 0;
    for (int k = 0; k < n; k++)
      len += (size_t)snprintf(list + len, sizeof list - len, "%s%s",
                              k ? ", " : "", names[k]);
    ordo__srv_error(resp, 400, ORDO_E_INVAL, "'%s' must be one of %s", key,
                    list);
    free(v);
    return 0;
  }
  free(v);
  *out = i;
  return 1;
}

static int services_query(const ordo_server_request *req, svc_query *q,
                          ordo_server_response *resp) {
  static const char *const orders[] = {"asc", "desc"};
  int key = KEY_DEPTH, desc = 1, filter = FILTER_ALL, nomem;
  memset(q, 0, sizeof(*q));
  q->limit = 50;
  if (!query_enum(req, "sort", key_names, 8, &key, resp) ||
      !query_enum(req, "order", orders, 2, &desc, resp) ||
      !query_enum(req, "filter", filter_names, 5, &filter, resp) ||
      !query_ull(req, "offset", 1ull << 40, &q->offset, resp) ||
      !query_ull(req, "limit", SRV_SERVICES_PAGE_MAX, &q->limit, resp))
    return 0;
  if (q->limit == 0) {
    ordo__srv_error(resp, 400, ORDO_E_INVAL,
                    "'limit' must be a whole number from 1 to %d",
                    SRV_SERVICES_PAGE_MAX);
    return 0;
  }
  q->key = (svc_key)key;
  q->desc = desc;
  q->filter = (svc_filter)filter;
  q->q = ordo__srv_query_get(req->query, "q", &nomem);
  if (nomem) {
    ordo__srv_reply(resp, 500, NULL);
    return 0;
  }
  if (q->q != NULL && strlen(q->q) > 200) {
    ordo__srv_error(resp, 400, ORDO_E_INVAL, "'q' is over 200 bytes");
    free(q->q);
    q->q = NULL;
    return 0;
  }
  return 1;
}

static void rows_clear(svc_rows *rows) {
  ordo_journal_service_rows_free(rows->r, rows->n);
  free(rows->lease);
  free(rows->known);
  memset(rows, 0, sizeof(*rows));
}

/* A cluster's rows: every service of the shared queue with its lease, and
 * the counters of those run here. */
static int rows_of_cluster(ordo_server *srv, svc_rows *rows) {
  size_t nl = 0, i;
  int rc;
  if ((rc = ordo_cluster_leases(srv->cl, NULL, &rows->lease, &nl)) != ORDO_OK)
    return rc;
  if (nl == 0)
    return ORDO_OK;
  rows->r = calloc(nl, sizeof(*rows->r));
  rows->known = calloc(nl, 1);
  if (rows->r == NULL || rows->known == NULL)
    return ordo__set_last_error(ORDO_E_NOMEM, NULL);
  for (i = 0; i < nl; i++) {
    ordo_journal_service_row *r = &rows->r[i];
    const char *svc = rows->lease[i].service;
    ordo_cluster_shard *sh = ordo_cluster_shard_get(srv->cl, svc);
    rows->n = i + 1;
    /* Run here and in memory: its counters; else only its name. */
    rows->known[i] =
        sh != NULL && ordo_journal_get_service_row(
                          ordo_cluster_shard_journal(sh), svc, r) == ORDO_OK;
    if (sh != NULL)
      ordo_cluster_shard_put(sh);
    if (!rows->known[i] && (r->name = strdup(svc)) == NULL)
      return ordo__set_last_error(ORDO_E_NOMEM, NULL);
  }
  return ORDO_OK;
}

static json_t *row_json(const svc_rows *rows,
                        const ordo_journal_service_row *r) {
  size_t i = (size_t)(r - rows->r);
  json_t *o;
  if (row_known(rows, r)) {
    o = json_pack("{s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:b}", "name", r->name,
                  "depth", (json_int_t)r->depth, "queued",
                  (json_int_t)r->queued, "waiting", (json_int_t)r->waiting,
                  "in_flight", (json_int_t)r->in_flight, "unknown",
                  (json_int_t)r->unknown, "committed",
                  (json_int_t)r->committed, "invalid",
                  (json_int_t)r->invalid, "halted", r->halted);
    if (o != NULL && r->halt_batch != NULL)
      json_object_set_new(o, "halt_batch", json_string(r->halt_batch));
    if (o != NULL && r->halt_reason != NULL)
      json_object_set_new(o, "halt_reason", json_string(r->halt_reason));
  } else {
    /* Run by another instance: its counters are there. */
    o = json_pack("{s:s,s:n,s:n,s:n,s:n,s:n,s:n,s:n,s:n}", "name", r->name,
                  "depth", "queued", "waiting", "in_flight", "unknown",
                  "committed", "invalid", "halted");
  }
  if (o != NULL && rows->lease != NULL) {
    const ordo_cluster_lease *l = &rows->lease[i];
    json_object_set_new(o, "owner",
                        l->owner[0] ? json_string(l->owner) : json_null());
    json_object_set_new(o, "epoch", json_integer((json_int_t)l->epoch));
    if (l->owner_url[0] != '\0')
      json_object_set_new(o, "owner_url", json_string(l->owner_url));
  }
  return o;
}

int ordo__srv_services(ordo_server *srv, const ordo_server_request *req,
                       ordo_server_response *resp) {
  unsigned long long t0 = ordo__now_ns();
  svc_query q;
  svc_rows rows;
  const ordo_journal_service_row **match = NULL;
  size_t nm = 0, i;
  json_t *o, *a;
  int rc = ORDO_OK;

  memset(&rows, 0, sizeof rows);
  if (!services_query(req, &q, resp))
    return ORDO_OK; /* answered */
  if (srv->cl != NULL)
    rc = rows_of_cluster(srv, &rows);
  else if (srv->j != NULL)
    rc = ordo_journal_list_services(srv->j, &rows.r, &rows.n);
  if (rc != ORDO_OK) {
    rows_clear(&rows);
    free(q.q);
    return ordo__srv_error(resp, ordo__srv_http_status(rc), rc, "%s",
                           ordo_last_error_message());
  }
  if (rows.n > 0 && (match = malloc(rows.n * sizeof(*match))) == NULL) {
    rows_clear(&rows);
    free(q.q);
    return ordo__srv_reply(resp, 500, NULL);
  }
  for (i = 0; i < rows.n; i++)
    if (row_matches(&rows, &rows.r[i], &q))
      match[nm++] = &rows.r[i];
  if (nm > 1) {
    svc_sort st = {&q, &rows};
    qsort_r(match, nm, sizeof(*match), row_cmp, &st);
  }
  a = json_array();
  for (i = (size_t)q.offset; a != NULL && i < nm && i < q.offset + q.limit;
       i++)
    if (json_array_append_new(a, row_json(&rows, match[i])) != 0) {
      json_decref(a);
      a = NULL;
    }
  o = json_pack("{s:I,s:I,s:I,s:I,s:s,s:s,s:o}", "total", (json_int_t)rows.n,
                "matched", (json_int_t)nm, "offset", (json_int_t)q.offset,
                "limit", (json_int_t)q.limit, "sort", key_names[q.key],
                "order", q.desc ? "desc" : "asc", "services",
                a != NULL ? a : json_null());
  if (o != NULL && a == NULL) {
    json_decref(o);
    o = NULL;
  }
  free(match);
  rows_clear(&rows);
  free(q.q);
  if (o != NULL)
    json_object_set_new(o, "server_ms", json_real(ms_since(t0)));
  return ordo__srv_reply(resp, 200, o);
}

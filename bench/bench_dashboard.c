/*
 * bench_dashboard.c — `ordo bench dashboard`: what one refresh of the
 * dashboard costs the server, with few services and with many.
 *
 * Two `ordo serve`s run in this process without a ledger (so every batch
 * stays queued, the worst case for the tables: nothing leaves memory) and
 * are driven through ordo_server_handle, as the HTTP threads drive them:
 * a small one (100 services, 10 batches each) and a large one (--count
 * services, default 10,000, and --batches, default 100,000). In each
 * service a tenth of the batches write one shared key, so the others of
 * those wait. For each request the page makes (the refresh, and the
 * services page sorted by each column, filtered, searched and at its last
 * page), the table gives the median of 20 answers on both servers, the
 * ratio, and the answer's size: a page of 50 rows costs what sorting all
 * services costs, and no more than that.
 */
#include "bench.h"
#include "server/server.h"

#include <stdlib.h>
#include <string.h>

#define DASH_SMALL_SERVICES 100
#define DASH_DEFAULT_SERVICES 10000
#define DASH_DEFAULT_BATCHES 100000
#define DASH_REPEAT 20
#define DASH_CHUNK 1000

typedef struct dash_req {
  const char *label;
  const char *path;
  const char *query;
} dash_req;

static const dash_req dash_reqs[] = {
    {"dashboard (totals + 10 min of samples)", "/v1/dashboard", NULL},
    {"dashboard, since the last sample", "/v1/dashboard",
     "since=9007199254740000"},
    {"services by depth (page 1 of 50)", "/v1/services", NULL},
    {"services by name", "/v1/services", "sort=name&order=asc"},
    {"services by committed", "/v1/services", "sort=committed"},
    {"services, waiting only", "/v1/services", "filter=waiting"},
    {"services, name search", "/v1/services", "q=svc-0099"},
    {"services, last page", "/v1/services", "offset=9950"},
    {"one batch with waits_on", "/v1/batches/b0-1", NULL},
};
#define DASH_NREQS (sizeof dash_reqs / sizeof dash_reqs[0])

/* An answer through the handler: status, or -1; *ns and *bytes of it. */
static int dash_call(ordo_server *s, const char *method, const char *path,
                     const char *query, const char *body, uint64_t *ns,
                     size_t *bytes) {
  ordo_server_request r;
  ordo_server_response resp;
  uint64_t t0;
  int status;
  memset(&r, 0, sizeof r);
  r.method = method;
  r.path = path;
  r.query = query;
  r.authorization = "Bearer bench-dashboard-token";
  r.body = body;
  r.body_len = body != NULL ? strlen(body) : 0;
  t0 = bench_now_ns();
  if (ordo_server_handle(s, &r, &resp) != ORDO_OK)
    return -1;
  if (ns != NULL)
    *ns = bench_now_ns() - t0;
  if (bytes != NULL)
    *bytes = resp.body_len;
  status = resp.status;
  ordo_server_response_clear(&resp);
  return status;
}

/* `services` services with `batches` batches in all, posted DASH_CHUNK a
 * request; batch k of service i is "b<i>-<k>". */
static int dash_fill(ordo_server *s, size_t services, size_t batches) {
  size_t per = batches / services, i, k;
  json_t *a = json_array();
  int rc = ORDO_OK;
  if (per == 0)
    per = 1;
  for (i = 0; i < services && rc == ORDO_OK; i++)
    for (k = 0; k < per && rc == ORDO_OK; k++) {
      char id[48], svc[32], key[48];
      snprintf(id, sizeof id, "b%zu-%zu", i, k);
      snprintf(svc, sizeof svc, "svc-%05zu", i);
      /* A tenth write the service's shared key: the later ones wait. */
      if (k % 10 < 2)
        snprintf(key, sizeof key, "shared");
      else
        snprintf(key, sizeof key, "k%zu", k);
      json_array_append_new(a, json_pack("{s:s,s:s,s:[s]}", "id", id,
                                         "service", svc, "writes", key));
      if (json_array_size(a) == DASH_CHUNK ||
          (i + 1 == services && k + 1 == per)) {
        char *body = json_dumps(a, JSON_COMPACT);
        int st = body != NULL ? dash_call(s, "POST", "/v1/batches", NULL,
                                          body, NULL, NULL)
                              : -1;
        free(body);
        json_array_clear(a);
        if (st != 202) {
          bench_error("dashboard: POST /v1/batches answered %d", st);
          rc = ORDO_E_STATE;
        }
      }
    }
  json_decref(a);
  return rc;
}

static int dash_server(const char *dir, ordo_server **out) {
  ordo_server_options o;
  ordo_server_options_init(&o);
  o.port = -1;
  o.data_dir = dir;
  o.token = "bench-dashboard-token";
  o.max_body_bytes = 64u << 20;
  o.max_items = DASH_CHUNK;
  if (ordo_server_start(&o, out) != ORDO_OK) {
    bench_error("dashboard: server: %s", ordo_last_error_message());
    return ORDO_E_STATE;
  }
  return ORDO_OK;
}

static int u64_cmp(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* The median of DASH_REPEAT answers to each request, in ms. */
static int dash_measure(ordo_server *s, double *ms, size_t *bytes) {
  uint64_t t[DASH_REPEAT];
  for (size_t r = 0; r < DASH_NREQS; r++) {
    for (int k = 0; k < DASH_REPEAT; k++) {
      int st = dash_call(s, "GET", dash_reqs[r].path, dash_reqs[r].query,
                         NULL, &t[k], &bytes[r]);
      if (st != 200) {
        bench_error("dashboard: %s?%s answered %d", dash_reqs[r].path,
                    dash_reqs[r].query != NULL ? dash_reqs[r].query : "", st);
        return ORDO_E_STATE;
      }
    }
    qsort(t, DASH_REPEAT, sizeof t[0], u64_cmp);
    ms[r] = (double)bench_percentile(t, DASH_REPEAT, 50) / 1e6;
  }
  return ORDO_OK;
}

static int dashboard_run(const bench_opts *opts, json_t **out) {
  size_t big = opts->count > 0 ? opts->count : DASH_DEFAULT_SERVICES;
  size_t batches = opts->batches > 0 ? (size_t)opts->batches
                                     : DASH_DEFAULT_BATCHES;
  double small_ms[DASH_NREQS], big_ms[DASH_NREQS], fill_s;
  size_t small_b[DASH_NREQS], big_b[DASH_NREQS];
  char dir_s[] = "/tmp/ordo-bench-dash-XXXXXX",
       dir_b[] = "/tmp/ordo-bench-dash-XXXXXX";
  ordo_server *s = NULL, *b = NULL;
  uint64_t t0;
  int rc = ORDO_CLI_FAIL;
  json_t *rows;

  if (mkdtemp(dir_s) == NULL || mkdtemp(dir_b) == NULL) {
    bench_error("dashboard: mkdtemp failed");
    return ORDO_CLI_FAIL;
  }
  if (dash_server(dir_s, &s) != ORDO_OK || dash_server(dir_b, &b) != ORDO_OK)
    goto out;
  if (dash_fill(s, DASH_SMALL_SERVICES, DASH_SMALL_SERVICES * 10) != ORDO_OK)
    goto out;
  t0 = bench_now_ns();
  if (dash_fill(b, big, batches) != ORDO_OK)
    goto out;
  fill_s = (double)(bench_now_ns() - t0) / 1e9;
  if (dash_measure(s, small_ms, small_b) != ORDO_OK ||
      dash_measure(b, big_ms, big_b) != ORDO_OK)
    goto out;

  if (!opts->json) {
    static const char *const titles[] = {"request", "100 svc ms", "big ms",
                                         "big/100", "big bytes"};
    static const int widths[] = {40, 11, 9, 8, 10};
    bench_table t = {titles, widths, 5, 1};
    printf("dashboard refresh cost: 100 services x 10 batches beside %zu "
           "services, %zu batches (queued %.1f s); median of %d\n",
           big, batches, fill_s, DASH_REPEAT);
    bench_table_header(stdout, &t);
    for (size_t r = 0; r < DASH_NREQS; r++) {
      char c1[32], c2[32], c3[32], c4[32];
      const char *cells[] = {dash_reqs[r].label, c1, c2, c3, c4};
      snprintf(c1, sizeof c1, "%.3f", small_ms[r]);
      snprintf(c2, sizeof c2, "%.3f", big_ms[r]);
      snprintf(c3, sizeof c3, "%.1f",
               small_ms[r] > 0 ? big_ms[r] / small_ms[r] : 0.0);
      snprintf(c4, sizeof c4, "%zu", big_b[r]);
      bench_table_row(stdout, &t, cells);
    }
  }
  *out = json_pack("{s:I,s:I}", "services", (json_int_t)big, "batches",
                   (json_int_t)batches);
  rows = json_array();
  for (size_t r = 0; r < DASH_NREQS && rows != NULL; r++) {
    json_t *o = json_pack("{s:s}", "request", dash_reqs[r].label);
    bench_json_num(o, "small_ms", small_ms[r], 3);
    bench_json_num(o, "big_ms", big_ms[r], 3);
    bench_json_num(o, "ratio", small_ms[r] > 0 ? big_ms[r] / small_ms[r] : 0,
                   1);
    bench_json_num(o, "big_bytes", (double)big_b[r], 0);
    json_array_append_new(rows, o);
  }
  if (*out != NULL) {
    json_object_set_new(*out, "requests", rows != NULL ? rows : json_array());
    bench_json_num(*out, "queue_seconds", fill_s, 2);
  }
  rc = ORDO_CLI_OK;
out:
  if (s != NULL)
    (void)ordo_server_stop(s);
  if (b != NULL)
    (void)ordo_server_stop(b);
  bench_rmdir_all(dir_s);
  bench_rmdir_all(dir_b);
  return rc;
}

const bench_def bench_dashboard_def = {
    "dashboard",
    "the dashboard's refresh: server cost with 100 and with 10,000 services",
    "  --count N      dashboard: services of the large server (default "
    "10000)\n"
    "  --batches N    dashboard: its batches, all queued (default 100000)\n",
    BENCH_FLAG_COUNT | BENCH_FLAG_BATCHES,
    dashboard_run,
};

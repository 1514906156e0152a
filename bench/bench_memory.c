/*
 * bench_memory.c — `ordo bench memory`: does `ordo serve`'s memory come
 * back after large requests, and does the ledger node's stay bounded?
 *
 * The embedded ledger and `ordo serve` run as child processes (drive.h), as
 * deployed. The bench POSTs --count requests (default 8) of --rate items
 * each (default 6,000 signed batches: ~7.4 MB of JSON, the size in the
 * report that motivated it), one after the other, waits until every batch
 * is committed and the server has been idle a second, and reads both
 * children's resident set (VmRSS, /proc/PID/status) along the way: before
 * the first request, after each answer, and at the end. What stays is
 * compared with the level before the requests; the queue itself keeps a
 * few hundred bytes per finished batch (its status, for GET and the
 * duplicate checks), which the queue reports (queue_memory_bytes in
 * /v1/queue), so the rest can be read as memory that did not come back.
 */
#include "bench.h"
#include "cli/drive.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MEM_DEFAULT_REQUESTS 8
#define MEM_DEFAULT_ITEMS 6000
#define MEM_WARM_ITEMS 100 /* the small request before the large ones */
#define MEM_TOKEN "bench-memory-token-0123456789"


/* Committed + invalid from GET /v1/queue, or -1; *queue_mib what the
 * queue says it holds. */
static long long finished(CURL *h, const char *base, double *queue_mib) {
  char url[256], *body = NULL;
  long long n = -1;
  snprintf(url, sizeof url, "%s/v1/queue", base);
  if (ordo__http(h, url, MEM_TOKEN, NULL, &body) == 200) {
    json_t *o = json_loads(body, 0, NULL);
    n = json_integer_value(json_object_get(o, "committed")) +
        json_integer_value(json_object_get(o, "invalid"));
    *queue_mib = (double)json_integer_value(
                     json_object_get(o, "queue_memory_bytes")) /
                 (1024.0 * 1024.0);
    json_decref(o);
  }
  free(body);
  return n;
}

typedef struct mem_row {
  const char *phase;
  double serve, ledger;
} mem_row;

static int memory_run(const bench_opts *opts, json_t **out) {
  unsigned nreq = opts->count > 0 ? opts->count : MEM_DEFAULT_REQUESTS;
  size_t nitems = opts->rate > 0 ? (size_t)opts->rate : MEM_DEFAULT_ITEMS;
  char dir[] = "/tmp/ordo-bench-memory-XXXXXX", path[512], tok[512];
  char lpath[512], spath[512], url_arg[160];
  ordo__child node = {0}, srv = {0};
  ordo_workload_gen gen;
  ordo_workload *w = NULL;
  json_t *items = NULL, *rows = json_array();
  mem_row *r = calloc(nreq + 4, sizeof *r);
  char **bodies = calloc(nreq + 1, sizeof *bodies); /* [nreq]: the warm one */
  size_t nrows = 0, body_bytes = 0;
  double base_s, base_l, cold_s, peak_s = 0, peak_l = 0, queue_before = 0,
         queue_end = 0;
  CURL *h = curl_easy_init();
  int rc = ORDO_CLI_FAIL;
  FILE *f;

  if (r == NULL || bodies == NULL || rows == NULL || h == NULL ||
      mkdtemp(dir) == NULL) {
    bench_error("memory: cannot set up");
    goto out;
  }
  /* The batches: one service a request, disjoint keys, so the lock table
   * lets each request's batches go at once. */
  ordo_workload_gen_init(&gen);
  gen.services = nreq;
  gen.batches = nreq * nitems + MEM_WARM_ITEMS;
  gen.conflict = 0;
  gen.seed = 5;
  {
    char *text = NULL;
    size_t len = 0;
    FILE *mf = open_memstream(&text, &len);
    int wrc = mf != NULL ? ordo_workload_generate(&gen, mf) : ORDO_E_NOMEM;
    if (mf != NULL)
      fclose(mf);
    if (wrc == ORDO_OK)
      wrc = ordo_workload_parse(text, len, &w);
    free(text);
    if (wrc != ORDO_OK)
      w = NULL;
  }
  if (w == NULL || ordo__serve_items(w, &items) != ORDO_OK) {
    bench_error("memory: cannot make the workload: %s",
                ordo_last_error_message());
    goto out;
  }
  for (unsigned q = 0; q <= nreq; q++) {
    json_t *part = json_array();
    size_t k = q < nreq ? nitems : MEM_WARM_ITEMS;
    for (size_t i = 0; i < k; i++)
      json_array_append(part, json_array_get(items, q * nitems + i));
    bodies[q] = json_dumps(part, JSON_COMPACT);
    json_decref(part);
    if (bodies[q] == NULL) {
      bench_error("memory: no memory for the requests");
      goto out;
    }
    if (q < nreq)
      body_bytes += strlen(bodies[q]);
  }
  json_decref(items);
  items = NULL;

  snprintf(tok, sizeof tok, "%s/token", dir);
  {
    /* Not world-readable, or serve refuses it. */
    int fd = open(tok, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || (f = fdopen(fd, "w")) == NULL) {
      if (fd >= 0)
        close(fd);
      bench_error("memory: cannot write the token file");
      goto out;
    }
    fputs(MEM_TOKEN "\n", f);
    fclose(f);
  }
  snprintf(path, sizeof path, "%s/node", dir);
  snprintf(lpath, sizeof lpath, "%s/node.log", dir);
  {
    char *argv[] = {"ordo", "ledger", "--port", "0", "--block-ms", "100",
                    "--data", path, "--max-pending", "100000", NULL};
    if (ordo__child_start(argv, lpath, &node) != ORDO_OK) {
      bench_error("memory: the ledger did not start (see %s)", lpath);
      goto out;
    }
  }
  snprintf(path, sizeof path, "%s/srv", dir);
  snprintf(spath, sizeof spath, "%s/serve.log", dir);
  snprintf(url_arg, sizeof url_arg, "%s", node.url);
  {
    char *argv[] = {"ordo", "serve", "--port", "0", "--data", path,
                    "--ledger", url_arg, "--token-file", tok, NULL};
    if (ordo__child_start(argv, spath, &srv) != ORDO_OK) {
      bench_error("memory: ordo serve did not start (see %s)", spath);
      goto out;
    }
  }
  usleep(300000); /* let both settle after start */
  r[nrows++] = (mem_row){"before, cold", bench_rss_mib(srv.pid),
                         bench_rss_mib(node.pid)};
  cold_s = r[0].serve;
  /* A server that has served: one small request, committed, idle. What
   * any first request costs for good (library pages, SQLite's structures,
   * the first pool chunks) is in this level, not in what the large
   * requests leave. */
  {
    char url[256], *answer = NULL;
    long code;
    long long got = 0;
    snprintf(url, sizeof url, "%s/v1/batches", srv.url);
    code = ordo__http(h, url, MEM_TOKEN, bodies[nreq], &answer);
    free(answer);
    for (int i = 0; i < 600 && code == 202 && got < MEM_WARM_ITEMS; i++)
      if ((got = finished(h, srv.url, &queue_before)) < MEM_WARM_ITEMS)
        usleep(100000);
    if (code != 202 || got < MEM_WARM_ITEMS) {
      bench_error("memory: the warm-up request (%ld) did not finish", code);
      goto out;
    }
    sleep(1);
  }
  (void)finished(h, srv.url, &queue_before);
  r[nrows++] = (mem_row){"before, warm (100 served)", bench_rss_mib(srv.pid),
                         bench_rss_mib(node.pid)};
  base_s = r[1].serve;
  base_l = r[1].ledger;
  for (unsigned q = 0; q < nreq; q++) {
    char url[256], *answer = NULL;
    long code;
    snprintf(url, sizeof url, "%s/v1/batches", srv.url);
    code = ordo__http(h, url, MEM_TOKEN, bodies[q], &answer);
    free(answer);
    if (code != 202) {
      bench_error("memory: request %u answered %ld", q + 1, code);
      goto out;
    }
    r[nrows] = (mem_row){"after a request", bench_rss_mib(srv.pid),
                         bench_rss_mib(node.pid)};
    if (r[nrows].serve > peak_s)
      peak_s = r[nrows].serve;
    if (r[nrows].ledger > peak_l)
      peak_l = r[nrows].ledger;
    nrows++;
  }
  {
    long long want = (long long)nreq * (long long)nitems + MEM_WARM_ITEMS,
              got = 0;
    for (int i = 0; i < 6000 && got < want; i++) { /* 10 min at most */
      double s = bench_rss_mib(srv.pid), l = bench_rss_mib(node.pid);
      peak_s = s > peak_s ? s : peak_s;
      peak_l = l > peak_l ? l : peak_l;
      if ((got = finished(h, srv.url, &queue_end)) < want)
        usleep(100000);
    }
    if (got < want) {
      bench_error("memory: only %lld of %lld batches finished", got, want);
      goto out;
    }
  }
  sleep(1);
  (void)finished(h, srv.url, &queue_end);
  r[nrows++] = (mem_row){"all committed, idle 1 s", bench_rss_mib(srv.pid),
                         bench_rss_mib(node.pid)};
  {
    const mem_row *end = &r[nrows - 1];
    /* The queue keeps each finished batch's record (its status, for GET
     * and the duplicate checks) until retention comes: what it says it
     * holds is state, not memory that failed to come back. */
    double kept = queue_end - queue_before;
    double back = end->serve - base_s - kept;
    if (!opts->json) {
      printf("%u requests of %zu signed batches (%.1f MB of JSON each)\n",
             nreq, nitems, (double)body_bytes / nreq / 1e6);
      printf("%-26s %12s %12s\n", "phase", "serve MiB", "ledger MiB");
      for (size_t i = 0; i < nrows; i++)
        printf("%-26s %12.1f %12.1f\n", r[i].phase, r[i].serve, r[i].ledger);
      printf("%-26s %12.1f %12.1f\n", "peak", peak_s, peak_l);
      printf("serve at the end: %.2fx its level before the large requests "
             "(warm; %.2fx the cold start); kept by the queue ~%.1f MiB; not "
             "come back beyond that: %.1f MiB (%.0f%% of before)\n",
             end->serve / base_s, end->serve / cold_s, kept, back,
             100.0 * back / base_s);
      printf("ledger at the end: %.2fx its level before\n",
             end->ledger / base_l);
    }
    for (size_t i = 0; i < nrows; i++)
      json_array_append_new(rows, json_pack("{s:s,s:f,s:f}", "phase",
                                            r[i].phase, "serve_mib",
                                            r[i].serve, "ledger_mib",
                                            r[i].ledger));
    *out = json_pack("{s:i,s:I,s:f,s:O,s:f,s:f,s:f,s:f,s:f,s:f,s:f}",
                     "requests", (int)nreq, "items", (json_int_t)nitems,
                     "mb_per_request", (double)body_bytes / nreq / 1e6,
                     "rows", rows, "serve_cold_mib", cold_s,
                     "serve_before_mib", base_s, "serve_peak_mib", peak_s,
                     "serve_end_mib", end->serve, "queue_kept_mib", kept,
                     "serve_not_back_mib", back, "ledger_end_ratio",
                     end->ledger / base_l);
  }
  rc = *out != NULL ? ORDO_CLI_OK : ORDO_CLI_FAIL;
out:
  ordo__child_stop(&srv);
  ordo__child_stop(&node);
  if (bodies != NULL)
    for (unsigned q = 0; q <= nreq; q++)
      free(bodies[q]);
  free(bodies);
  free(r);
  json_decref(rows);
  json_decref(items);
  ordo_workload_free(w);
  if (h != NULL)
    curl_easy_cleanup(h);
  if (dir[sizeof dir - 7] != 'X') /* made */
    bench_rmdir_all(dir);
  return rc;
}

const bench_def bench_memory_def = {
    "memory",
    "ordo serve's and the ledger's memory across large requests",
    "  --count N      memory: requests (default 8)\n"
    "  --rate N       memory: signed batches per request (default 6000, "
    "~7.4 MB)\n",
    BENCH_FLAG_COUNT | BENCH_FLAG_RATE,
    memory_run,
};

/*
 * bench_e2e.c — `ordo bench e2e`: the whole path measured. The embedded
 * node (in process, on a loopback port, a block every 100 ms applied in a
 * seeded random order), the journal, the Sawtooth REST client and the
 * submitter, for the serial and the parallel strategy side by side on the
 * same synthetic ordo-rw workload: 20 and 200 services, 0, 10 and 50 %
 * conflicting batches. Batches/s is the workload over the time from the
 * first enqueue to the last verdict; latency is enqueue -> verdict recorded,
 * per batch.
 */
#include "bench.h"
#include "ledger/ledger.h"
#include "node/node.h"
#include "queue/queue.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define E2E_DEFAULT_BATCHES 2000
#define E2E_BLOCK_MS 100

typedef struct e2e_run {
  uint64_t *enq_ns, *fin_ns;
  size_t n, finished;
} e2e_run;

static void on_verdict(void *ud, const char *id, ordo_queue_state st) {
  e2e_run *r = ud;
  size_t i = (size_t)strtoull(id + 1, NULL, 10); /* ids are "b<i>" */
  (void)st;
  if (i < r->n && r->fin_ns[i] == 0) {
    r->fin_ns[i] = bench_now_ns();
    r->finished++;
  }
}

typedef struct e2e_result {
  double per_s, p50_ms, p99_ms, seconds;
} e2e_result;

/* The workload as parsed lines, made by the generator in memory. */
static int e2e_workload(size_t services, double conflict, size_t n,
                        ordo_workload **w) {
  ordo_workload_gen g;
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  int rc;
  if (f == NULL)
    return ORDO_E_NOMEM;
  ordo_workload_gen_init(&g);
  g.services = services;
  g.batches = n;
  g.conflict = conflict;
  g.seed = 42;
  rc = ordo_workload_generate(&g, f);
  fclose(f);
  if (rc == ORDO_OK)
    rc = ordo_workload_parse(text, len, w);
  free(text);
  return rc;
}

static int e2e_point(const ordo_workload *w, ordo_queue_strategy strategy,
                     e2e_result *res) {
  char dir[64], sub[128], url[64];
  ordo_node_options no;
  ordo_node *node = NULL;
  ordo_ctx *ctx = NULL;
  ordo_journal *j = NULL;
  ordo_ledger_client *client = NULL;
  ordo_ledger_sawtooth_port *port = NULL;
  ordo_submitter *s = NULL;
  ordo_ledger_signer *signer = NULL;
  ordo_ledger_conv *conv = NULL;
  ordo_journal_options jo;
  ordo_ledger_client_options co;
  ordo_submitter_options so;
  e2e_run r;
  uint64_t t0, t1 = 0, *lat = NULL;
  size_t i, nlat = 0;
  int rc, idle = 0;

  memset(&r, 0, sizeof r);
  memset(res, 0, sizeof(*res));
  r.n = w->nbatches;
  r.enq_ns = calloc(r.n, sizeof(*r.enq_ns));
  r.fin_ns = calloc(r.n, sizeof(*r.fin_ns));
  snprintf(dir, sizeof dir, "/tmp/ordo-bench-e2e-XXXXXX");
  if (r.enq_ns == NULL || r.fin_ns == NULL || mkdtemp(dir) == NULL) {
    rc = ORDO_E_NOMEM;
    goto out;
  }
  snprintf(sub, sizeof sub, "%s/node", dir);
  ordo_node_options_init(&no);
  no.data_dir = sub;
  no.port = 0;
  no.block_ms = E2E_BLOCK_MS;
  no.seed = 7;
  no.max_pending = 1000000;
  if ((rc = ordo_node_start(&no, &node)) != ORDO_OK)
    goto out;
  snprintf(url, sizeof url, "http://127.0.0.1:%d", ordo_node_port(node));
  snprintf(sub, sizeof sub, "%s/queue.db", dir);
  ordo_journal_options_init(&jo);
  jo.create = 1;
  jo.queue.strategy = strategy;
  ordo_ledger_client_options_init(&co);
  co.url = url;
  ordo_submitter_options_init(&so);
  so.on_verdict = on_verdict;
  so.on_verdict_ud = &r;
  if ((ctx = bench_ctx_new(NULL)) == NULL ||
      (rc = ordo_journal_open(ctx, sub, &jo, &j)) != ORDO_OK ||
      (rc = ordo_ledger_client_new(ctx, &co, &client)) != ORDO_OK ||
      (rc = ordo_ledger_sawtooth_port_new(ctx, client, &port)) != ORDO_OK ||
      (rc = ordo_submitter_new(j, ordo_ledger_sawtooth_port_get(port), &so,
                               &s)) != ORDO_OK ||
      (rc = ordo_ledger_signer_new(NULL, &signer)) != ORDO_OK ||
      (rc = ordo_ledger_conv_new(ORDO_LEDGER_FAMILY_RW, signer, &conv)))
    goto out;
  t0 = bench_now_ns();
  /* Enqueue as clients do, many at once (256 in flight): group commit
   * makes that one durable write per group, not one per batch. */
  {
    ordo_op *ring[256] = {0};
    for (i = 0; i <= w->nbatches; i++) {
      size_t slot = i % 256;
      if (ring[slot] != NULL) {
        int wrc = ordo_op_wait(ring[slot], -1);
        if (wrc != ORDO_OK && rc == ORDO_OK)
          rc = wrc;
        ordo_op_release(ring[slot]);
        ring[slot] = NULL;
      }
      if (i == w->nbatches || rc != ORDO_OK)
        break;
      ordo_ledger_built b;
      ordo_queue_batch_spec sp;
      if ((rc = ordo_ledger_conv_batch(conv, &w->batches[i], &b)) != ORDO_OK)
        break;
      ordo_ledger_built_spec(&w->batches[i], &b, &sp);
      r.enq_ns[i] = bench_now_ns();
      ring[slot] = ordo_journal_enqueue(j, &sp);
      ordo_ledger_built_clear(&b);
      if (ring[slot] == NULL)
        rc = ORDO_E_NOMEM;
    }
    for (i = 0; i < 256; i++)
      if (ring[i] != NULL) {
        (void)ordo_op_wait(ring[i], -1);
        ordo_op_release(ring[i]);
      }
  }
  /* The clients of a ledger enqueue as they go: the submitter steps while
   * the ledger works, polling every 5 ms. */
  while (rc == ORDO_OK && !idle) {
    if ((rc = ordo_submitter_step(s, &idle)) != ORDO_OK)
      break;
    if (!idle)
      usleep(5000);
  }
  if (rc != ORDO_OK)
    goto out;
  if ((lat = calloc(r.n, sizeof(*lat))) == NULL) {
    rc = ORDO_E_NOMEM;
    goto out;
  }
  for (i = 0; i < r.n; i++)
    if (r.fin_ns[i] != 0) {
      lat[nlat++] = r.fin_ns[i] - r.enq_ns[i];
      if (r.fin_ns[i] > t1)
        t1 = r.fin_ns[i];
    }
  {
    bench_stats st;
    bench_stats_of(lat, nlat, &st);
    res->seconds = (double)(t1 - t0) / 1e9;
    res->per_s = res->seconds > 0 ? (double)nlat / res->seconds : 0;
    res->p50_ms = st.p50_us / 1000.0;
    res->p99_ms = st.p99_us / 1000.0;
  }
  if (nlat != r.n)
    rc = ORDO_E_STATE; /* a batch with no verdict: not a measurement */
out:
  if (rc != ORDO_OK)
    bench_error("e2e point: %s: %s", ordo_errname(rc), ordo_last_error_message());
  ordo_ledger_conv_free(conv);
  ordo_ledger_signer_free(signer);
  ordo_submitter_free(s);
  ordo_ledger_sawtooth_port_free(port);
  ordo_ledger_client_free(client);
  if (j != NULL)
    (void)ordo_journal_close(j);
  ordo_ctx_free(ctx);
  if (node != NULL)
    (void)ordo_node_stop(node);
  free(lat);
  free(r.enq_ns);
  free(r.fin_ns);
  bench_rmdir_all(dir);
  return rc;
}

static int e2e_run_all(const bench_opts *opts, json_t **out) {
  static const size_t svcs[] = {20, 200};
  static const double conflicts[] = {0.0, 0.1, 0.5};
  size_t n = opts->count > 0 ? opts->count : E2E_DEFAULT_BATCHES;
  json_t *o = json_object(), *pts = json_array();
  double ratio10_20 = 0;
  int err = o == NULL || pts == NULL;

  if (!opts->json)
    printf("ordo bench e2e: %zu ordo-rw batches through the journal, the REST "
           "client and the embedded node (block every %d ms, seeded random "
           "order), serial vs parallel\ncores: %ld\n\n"
           "services  conflict   serial b/s  p50 ms  p99 ms   parallel b/s  "
           "p50 ms  p99 ms   parallel/serial\n",
           n, E2E_BLOCK_MS, bench_cores());
  for (size_t a = 0; a < 2 && !err; a++)
    for (size_t c = 0; c < 3 && !err; c++) {
      ordo_workload *w = NULL;
      e2e_result ser, par;
      if (e2e_workload(svcs[a], conflicts[c], n, &w) != ORDO_OK ||
          e2e_point(w, ORDO_QUEUE_SERIAL, &ser) != ORDO_OK ||
          e2e_point(w, ORDO_QUEUE_PARALLEL, &par) != ORDO_OK) {
        ordo_workload_free(w);
        err = 1;
        break;
      }
      ordo_workload_free(w);
      double ratio = ser.per_s > 0 ? par.per_s / ser.per_s : 0;
      if (svcs[a] == 20 && c == 1)
        ratio10_20 = ratio;
      if (!opts->json)
        printf("%8zu  %7.0f%%   %10.0f  %6.0f  %6.0f   %12.0f  %6.0f  %6.0f   "
               "%15.2f\n",
               svcs[a], conflicts[c] * 100, ser.per_s, ser.p50_ms, ser.p99_ms,
               par.per_s, par.p50_ms, par.p99_ms, ratio);
      json_t *p = json_object();
      err |= p == NULL;
      err |= bench_json_num(p, "services", (double)svcs[a], 0);
      err |= bench_json_num(p, "conflict", conflicts[c], 2);
      err |= bench_json_num(p, "serial_per_s", ser.per_s, 1);
      err |= bench_json_num(p, "serial_p50_ms", ser.p50_ms, 1);
      err |= bench_json_num(p, "serial_p99_ms", ser.p99_ms, 1);
      err |= bench_json_num(p, "parallel_per_s", par.per_s, 1);
      err |= bench_json_num(p, "parallel_p50_ms", par.p50_ms, 1);
      err |= bench_json_num(p, "parallel_p99_ms", par.p99_ms, 1);
      err |= bench_json_num(p, "parallel_vs_serial", ratio, 2);
      err |= json_array_append_new(pts, p);
    }
  if (err) {
    json_decref(o);
    json_decref(pts);
    return ORDO_CLI_FAIL;
  }
  if (!opts->json)
    printf("\nb/s = batches / (last verdict - first enqueue); latency = "
           "enqueue -> verdict recorded\nparallel_vs_serial at 20 services, "
           "10%% conflict: %.2f (goal >= 10)\n",
           ratio10_20);
  err |= json_object_set_new(o, "points", pts);
  err |= bench_json_num(o, "parallel_vs_serial_10pct_20svc", ratio10_20, 2);
  err |= bench_json_num(o, "batches", (double)n, 0);
  err |= bench_json_num(o, "cores", (double)bench_cores(), 0);
  if (err) {
    json_decref(o);
    return ORDO_CLI_FAIL;
  }
  *out = o;
  return ORDO_CLI_OK;
}

const bench_def bench_e2e_def = {
    "e2e",
    "batches/s and enqueue->commit latency, serial vs parallel, through the "
    "embedded node",
    "  --count N      batches per point (default 2000)\n",
    BENCH_FLAG_COUNT,
    e2e_run_all,
};

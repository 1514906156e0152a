/*
 * bench_journal.c — `ordo bench journal`: durable enqueues per second into
 * the queue journal, with group commit (the default) and with one
 * transaction per batch, at 1, 8 and 64 concurrent callers.
 *
 * Each caller keeps one enqueue in flight: its callback (on a runtime
 * thread; ordo_journal_enqueue never blocks) issues the next, so a caller
 * count is exactly the number of batches waiting to become durable. Each
 * batch is Sawtooth-sized: a 70-hex-char read and write and a 256-byte
 * payload. Nothing is taken: this measures the journal, not the scheduler.
 */
#include "bench.h"
#include "queue/queue.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define JOURNAL_DEFAULT_SECONDS 2.0
static const unsigned journal_default_callers[] = {1, 8, 64};

/* Enqueue number k: a Sawtooth-sized batch of its own. */
static ordo_op *jbench_issue(void *ud, unsigned long long k) {
  static const unsigned char payload[256] = {1};
  char id[32], rd[71], wr[71];
  const char *reads[1] = {rd}, *writes[1] = {wr};
  ordo_queue_batch_spec sp = {0};

  snprintf(id, sizeof id, "b%llu", k);
  /* Distinct 70-char addresses in one namespace, as Sawtooth's. */
  snprintf(rd, sizeof rd, "1cf126%064llx", k * 2654435761ull);
  snprintf(wr, sizeof wr, "1cf126%064llx", k * 40503ull + 7);
  sp.id = id;
  sp.service = k % 2 ? "svc-a" : "svc-b";
  sp.reads = reads;
  sp.nreads = 1;
  sp.writes = writes;
  sp.nwrites = 1;
  sp.payload = payload;
  sp.payload_len = sizeof payload;
  return ordo_journal_enqueue(ud, &sp);
}

/* Enqueues per second with `callers` in flight, on a fresh journal. */
static int journal_point(int group, unsigned callers, double seconds,
                         double *per_s, double *per_commit) {
  char dir[64], path[96];
  ordo_config cfg;
  ordo_journal_options opt;
  ordo_journal *j = NULL;
  int rc;

  ordo_config_init(&cfg);
  ordo_ctx *ctx = bench_ctx_new(&cfg);
  if (ctx == NULL)
    return ORDO_E_SYSTEM;
  snprintf(dir, sizeof dir, "/tmp/ordo-bench-journal-XXXXXX");
  if (mkdtemp(dir) == NULL) {
    ordo_ctx_free(ctx);
    bench_error("mkdtemp: cannot make a scratch directory");
    return ORDO_E_IO;
  }
  snprintf(path, sizeof path, "%s/queue.db", dir);
  ordo_journal_options_init(&opt);
  opt.create = 1;
  opt.no_group_commit = !group;
  rc = ordo_journal_open(ctx, path, &opt, &j);
  if (rc != ORDO_OK)
    bench_error("journal open: %s", ordo_last_error_message());
  if (rc == ORDO_OK) {
    unsigned long long done = 0, records = 0, commits = 0;
    double elapsed = 0;
    rc = bench_closed_loop(callers, seconds, jbench_issue, j, &done, &elapsed);
    ordo_journal_write_stats(j, &records, &commits);
    *per_s = elapsed > 0 ? (double)done / elapsed : 0;
    *per_commit = commits > 0 ? (double)records / (double)commits : 0;
    if (rc != ORDO_OK)
      bench_error("enqueue: %s", ordo_errname(rc));
  }
  if (j != NULL && ordo_journal_close(j) != ORDO_OK && rc == ORDO_OK)
    rc = ORDO_E_STORAGE;
  ordo_ctx_free(ctx);
  bench_rmdir_all(dir);
  return rc;
}

static int journal_run(const bench_opts *opts, json_t **out) {
  double seconds = opts->seconds > 0 ? opts->seconds : JOURNAL_DEFAULT_SECONDS;
  const unsigned *callers =
      opts->nthreads > 0 ? opts->threads : journal_default_callers;
  size_t n = opts->nthreads > 0 ? opts->nthreads : 3;
  double group[BENCH_MAX_POINTS], single[BENCH_MAX_POINTS],
      per_commit[BENCH_MAX_POINTS], unused;
  int rc = ORDO_OK;

  if (!opts->json)
    printf("ordo bench journal: durable enqueues/s into the queue journal "
           "(SQLite, WAL, synchronous=FULL), callers each keeping one enqueue "
           "in flight, %g s per point\ncores: %ld\n\n"
           "callers   group commit   batches/commit   one txn per batch   "
           "group/single\n",
           seconds, bench_cores());
  for (size_t i = 0; i < n && rc == ORDO_OK; i++) {
    rc = journal_point(1, callers[i], seconds, &group[i], &per_commit[i]);
    if (rc == ORDO_OK)
      rc = journal_point(0, callers[i], seconds, &single[i], &unused);
    if (rc == ORDO_OK && !opts->json)
      printf("%7u   %12.0f   %14.1f   %17.0f   %12.2f\n", callers[i], group[i],
             per_commit[i], single[i], single[i] > 0 ? group[i] / single[i] : 0);
  }
  if (rc != ORDO_OK) {
    bench_error("journal benchmark failed: %s", ordo_errname(rc));
    return ORDO_CLI_FAIL;
  }
  double ratio = single[n - 1] > 0 ? group[n - 1] / single[n - 1] : 0;
  if (!opts->json)
    printf("\ngroup_vs_single_%u: %.2f\n", callers[n - 1], ratio);
  json_t *o = json_object();
  int err = o == NULL;
  err |= bench_group_points(o, n, callers, group, "batches_per_commit",
                            per_commit, "single_per_s", single) != ORDO_OK;
  char key[48];
  snprintf(key, sizeof key, "group_vs_single_%u", callers[n - 1]);
  err |= bench_json_num(o, key, ratio, 3);
  err |= bench_json_num(o, "cores", (double)bench_cores(), 0);
  if (err) {
    json_decref(o);
    return ORDO_CLI_FAIL;
  }
  *out = o;
  return ORDO_CLI_OK;
}

const bench_def bench_journal_def = {
    "journal",
    "durable enqueues/s into the queue journal: group commit vs one "
    "transaction per batch",
    "  --seconds S    seconds per point (default 2)\n"
    "  --threads L    caller counts, comma-separated (default 1,8,64)\n",
    BENCH_FLAG_THREADS,
    journal_run,
};

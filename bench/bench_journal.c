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
#include "storage/storage.h"

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

/* Enqueues per second with `callers` in flight, on a fresh journal (in a
 * scratch directory, or a store of url's database). */
static int journal_point(int group, unsigned callers, double seconds,
                         const char *url, double *per_s, double *per_commit) {
  char dir[64], path[1100];
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
  if (url != NULL) {
    snprintf(path, sizeof path, "%s#bench/journal/%ld", url, (long)getpid());
    (void)ordo_storage_postgres.destroy(&ordo_storage_postgres, path, NULL);
  }
  ordo_journal_options_init(&opt);
  opt.create = 1;
  opt.no_group_commit = !group;
  rc = ordo_journal_open(ctx, path, &opt, &j);
  if (rc != ORDO_OK)
    bench_error("journal open: %s", ordo_last_error_message());
  if (rc == ORDO_OK) {
    unsigned long long done = 0, records = 0, commits = 0, records0 = 0,
                       commits0 = 0;
    double elapsed = 0;
    /* What the open wrote (its format marker) is not the run's. */
    ordo_journal_write_stats(j, &records0, &commits0);
    rc = bench_closed_loop(callers, seconds, jbench_issue, j, &done, &elapsed);
    ordo_journal_write_stats(j, &records, &commits);
    records -= records0;
    commits -= commits0;
    *per_s = elapsed > 0 ? (double)done / elapsed : 0;
    *per_commit = commits > 0 ? (double)records / (double)commits : 0;
    if (rc != ORDO_OK)
      bench_error("enqueue: %s", ordo_errname(rc));
  }
  if (j != NULL && ordo_journal_close(j) != ORDO_OK && rc == ORDO_OK)
    rc = ORDO_E_STORAGE;
  ordo_ctx_free(ctx);
  bench_rmdir_all(dir);
  if (url != NULL)
    (void)ordo_storage_postgres.destroy(&ordo_storage_postgres, path, NULL);
  return rc;
}

typedef struct journal_series {
  double group[BENCH_MAX_POINTS], single[BENCH_MAX_POINTS],
      per_commit[BENCH_MAX_POINTS], raw;
} journal_series;

static int journal_json(json_t *o, const journal_series *js, size_t n,
                        const unsigned *callers) {
  char key[48];
  double ratio = js->single[n - 1] > 0 ? js->group[n - 1] / js->single[n - 1] : 0;
  int err = bench_group_points(o, n, callers, js->group, "batches_per_commit",
                               js->per_commit, "single_per_s", js->single) != ORDO_OK;
  snprintf(key, sizeof key, "group_vs_single_%u", callers[n - 1]);
  err |= bench_json_num(o, key, ratio, 3);
  if (js->raw > 0) {
    err |= bench_json_num(o, "raw_per_s", js->raw, 1);
    snprintf(key, sizeof key, "group_vs_raw_%u", callers[n - 1]);
    err |= bench_json_num(o, key, js->group[n - 1] / js->raw, 3);
    /* The most group_vs_single could be here: group commit cannot beat
     * the raw bound. */
    snprintf(key, sizeof key, "raw_vs_single_%u", callers[n - 1]);
    err |= bench_json_num(o, key, js->single[n - 1] > 0
                                      ? js->raw / js->single[n - 1] : 0, 3);
  }
  return err;
}

static int journal_run(const bench_opts *opts, json_t **out) {
  double seconds = opts->seconds > 0 ? opts->seconds : JOURNAL_DEFAULT_SECONDS;
  const unsigned *callers =
      opts->nthreads > 0 ? opts->threads : journal_default_callers;
  size_t n = opts->nthreads > 0 ? opts->nthreads : 3;
  const char *url = opts->postgres ? opts->postgres_url : NULL;
  journal_series sq, pg;
  double unused;
  int rc = ORDO_OK;

  memset(&sq, 0, sizeof sq);
  memset(&pg, 0, sizeof pg);
  if (!opts->json)
    printf("ordo bench journal: durable enqueues/s into the queue journal "
           "(SQLite: WAL, synchronous=FULL%s), callers each keeping one "
           "enqueue in flight, %g s per point\ncores: %ld\n\n"
           "backend    callers   group commit   batches/commit   one txn per batch   "
           "group/single\n",
           url != NULL ? "; PostgreSQL beside it" : "", seconds, bench_cores());
  for (size_t i = 0; i < n && rc == ORDO_OK; i++) {
    for (int b = 0; b < (url != NULL ? 2 : 1) && rc == ORDO_OK; b++) {
      journal_series *js = b ? &pg : &sq;
      const char *u = b ? url : NULL;
      rc = journal_point(1, callers[i], seconds, u, &js->group[i],
                         &js->per_commit[i]);
      if (rc == ORDO_OK)
        rc = journal_point(0, callers[i], seconds, u, &js->single[i], &unused);
      if (rc == ORDO_OK && !opts->json)
        printf("%-9s %8u   %12.0f   %14.1f   %17.0f   %12.2f\n",
               b ? "postgres" : "sqlite", callers[i], js->group[i],
               js->per_commit[i], js->single[i],
               js->single[i] > 0 ? js->group[i] / js->single[i] : 0);
    }
  }
  /* PostgreSQL's raw bound: the rows the journal wrote at the last caller
   * count (an 8-byte event number, a ~450-byte batch record, its "id"
   * tag), as multi-row INSERTs in one transaction. */
  if (rc == ORDO_OK && url != NULL)
    rc = bench_pg_raw(url, (unsigned long long)(pg.group[n - 1] * seconds) + 1000,
                      8, 450, BENCH_PG_TAGS_JOURNAL, &pg.raw);
  if (rc != ORDO_OK) {
    bench_error("journal benchmark failed: %s", ordo_errname(rc));
    return ORDO_CLI_FAIL;
  }
  if (!opts->json) {
    printf("\nSQLite group_vs_single_%u: %.2f\n", callers[n - 1],
           sq.single[n - 1] > 0 ? sq.group[n - 1] / sq.single[n - 1] : 0);
    if (url != NULL)
      printf("PostgreSQL group_vs_single_%u: %.2f (goal >= 10 at 64; at most "
             "raw_vs_single %.2f here); raw bound %.0f rows/s, "
             "group_vs_raw_%u: %.3f (goal >= 0.5 at 64)\n",
             callers[n - 1],
             pg.single[n - 1] > 0 ? pg.group[n - 1] / pg.single[n - 1] : 0,
             pg.single[n - 1] > 0 ? pg.raw / pg.single[n - 1] : 0, pg.raw,
             callers[n - 1], pg.raw > 0 ? pg.group[n - 1] / pg.raw : 0);
  }
  json_t *o = json_object();
  int err = o == NULL;
  if (url == NULL) {
    err |= journal_json(o, &sq, n, callers);
  } else {
    json_t *side = json_object();
    err |= side == NULL || journal_json(o, &pg, n, callers) ||
           journal_json(side, &sq, n, callers) ||
           json_object_set_new(o, "sqlite", side) != 0;
    err |= json_object_set_new(o, "backend", json_string("postgres")) != 0;
  }
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
    "  --threads L    caller counts, comma-separated (default 1,8,64)\n"
    "  --backend B    sqlite (default) or postgres: PostgreSQL beside SQLite\n"
    "                 (its figures under the same JSON keys, SQLite's in\n"
    "                 \"sqlite\"), with PostgreSQL's raw bound\n"
    "  --postgres URL the server (default $ORDO_POSTGRES_URL)\n",
    BENCH_FLAG_THREADS | BENCH_FLAG_BACKEND,
    journal_run,
};

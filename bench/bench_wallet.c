/*
 * bench_wallet.c — `ordo bench hipe` and `ordo bench wallet`: the wallet
 * commands measured.
 *
 * hipe: did_create latency idle vs during 1025-bit credential-definition
 *   keygens (HIPE 0012's tutorial with the real commands: the DID creation
 *   includes its durable wallet write). DIDs are issued open loop at a steady
 *   rate; idle and loaded alternate in segments so machine noise falls on
 *   both alike; the keygens are kept running back to back on the heavy class
 *   and cancelled at the end of each loaded segment.
 *
 * wallet: record adds per second with 1, 8 and 64 concurrent callers, for
 *   group commit (the default), for one transaction per record (the naive
 *   way, "group_commit":false), and raw SQLite inserts of the same number of
 *   rows in one transaction (the upper bound: no crypto, no durability per
 *   caller). Each caller keeps one add in flight: its callback issues the next.
 */
#include "bench.h"
#include "storage/storage.h"
#include "wallet/wallet.h"

#include <math.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RAW_KEY_CREDS                                                          \
  "{\"key\":\"0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20\","\
  "\"key_derivation_method\":\"raw\"}"

/* A scratch wallet: in a directory, or (url set) a store of a PostgreSQL
 * database; removed at the end. */
typedef struct bench_wallet {
  char dir[128];
  char config[1024];
  char store[1024]; /* PostgreSQL: the wallet's store URL */
} bench_wallet;

static int op_run(ordo_op *op, const char *what) {
  int rc = ordo_op_wait(op, -1);
  if (rc != ORDO_OK)
    bench_error("%s: %s: %s", what, ordo_errname(rc), ordo_op_message(op));
  ordo_op_release(op);
  return rc;
}

/* The wallet `id` (on PostgreSQL: a name of this run's own, opened as
 * `id` all the same: the registry knows it by its config's id). */
static int wallet_make_at(ordo_ctx *ctx, bench_wallet *w, const char *id,
                          int group, const char *url) {
  memset(w, 0, sizeof(*w));
  if (url != NULL) {
    snprintf(w->config, sizeof(w->config),
             "{\"id\":\"%s\",\"path\":\"%s\",\"group_commit\":%s}", id, url,
             group ? "true" : "false");
    snprintf(w->store, sizeof(w->store), "%s#wallet/%s", url, id);
    /* A run killed before its cleanup leaves the store: start afresh. */
    (void)ordo_storage_postgres.destroy(&ordo_storage_postgres, w->store, NULL);
  } else {
    snprintf(w->dir, sizeof(w->dir), "/tmp/ordo-bench-XXXXXX");
    if (mkdtemp(w->dir) == NULL) {
      bench_error("mkdtemp: cannot make a scratch directory");
      return ORDO_E_IO;
    }
    snprintf(w->config, sizeof(w->config),
             "{\"id\":\"%s\",\"path\":\"%s\",\"group_commit\":%s}", id, w->dir,
             group ? "true" : "false");
  }
  int rc = op_run(ordo_wallet_create(ctx, w->config, RAW_KEY_CREDS), "wallet create");
  if (rc == ORDO_OK)
    rc = op_run(ordo_wallet_open(ctx, w->config, RAW_KEY_CREDS), "wallet open");
  return rc;
}

static int wallet_make(ordo_ctx *ctx, bench_wallet *w, const char *id, int group) {
  return wallet_make_at(ctx, w, id, group, NULL);
}

static void wallet_remove(const bench_wallet *w) {
  if (w->store[0] != 0)
    (void)ordo_storage_postgres.destroy(&ordo_storage_postgres, w->store, NULL);
  else if (w->dir[0] != 0)
    bench_rmdir_all(w->dir);
}

/* ------------------------------------------------------------------------ */
/* hipe                                                                      */
/* ------------------------------------------------------------------------ */

#define HIPE_DEFAULT_SECONDS 3.0
#define HIPE_DEFAULT_RATE 200.0
#define HIPE_ROUNDS 3
#define HIPE_BITS 1025

typedef struct hipe_slot {
  uint64_t sched_ns, done_ns;
  int status;
  bench_counter *done;
} hipe_slot;

typedef struct hipe_phase {
  ordo_ctx *ctx;
  hipe_slot *slots;
  size_t issued;
  bench_counter done;
} hipe_phase;

static void hipe_did_done(ordo_op *op, void *ud) {
  hipe_slot *s = ud;
  s->done_ns = bench_now_ns();
  s->status = ordo_op_status(op);
  bench_counter_add(s->done, 1);
}

static int hipe_issue(size_t i, uint64_t sched_ns, void *ud) {
  hipe_phase *ph = ud;
  hipe_slot *s = &ph->slots[i];
  s->sched_ns = sched_ns;
  s->done = &ph->done;
  ordo_op *op = ordo_did_create(ph->ctx, "bench", NULL);
  int rc = ordo_op_then(op, hipe_did_done, s);
  ordo_op_release(op);
  ph->issued = i + 1;
  return rc;
}

/* Keygens kept running: each one's callback starts the next until stop. */
typedef struct hipe_load {
  ordo_ctx *ctx;
  atomic_int stop;
  atomic_int done_keygens;
  bench_counter ended;
  pthread_mutex_t mu;
  ordo_op *running[64];
  unsigned n;
} hipe_load;

static void hipe_keygen_done(ordo_op *op, void *ud);

static void hipe_keygen_start(hipe_load *l, unsigned slot) {
  ordo_op *op = ordo_cred_def_create(l->ctx, "bench",
                                     "{\"attributes\":[\"name\",\"age\"],\"bits\":1025}");
  pthread_mutex_lock(&l->mu);
  l->running[slot] = op;
  pthread_mutex_unlock(&l->mu);
  if (ordo_op_then(op, hipe_keygen_done, l) != ORDO_OK)
    bench_counter_add(&l->ended, 1);
}

static void hipe_keygen_done(ordo_op *op, void *ud) {
  hipe_load *l = ud;
  unsigned slot = 0;
  pthread_mutex_lock(&l->mu);
  for (unsigned i = 0; i < l->n; i++)
    if (l->running[i] == op)
      slot = i;
  l->running[slot] = NULL;
  pthread_mutex_unlock(&l->mu);
  if (ordo_op_status(op) == ORDO_OK)
    atomic_fetch_add(&l->done_keygens, 1);
  ordo_op_release(op);
  if (!atomic_load(&l->stop))
    hipe_keygen_start(l, slot);
  else
    bench_counter_add(&l->ended, 1);
}

static void hipe_load_stop(hipe_load *l) {
  atomic_store(&l->stop, 1);
  pthread_mutex_lock(&l->mu);
  for (unsigned i = 0; i < l->n; i++)
    if (l->running[i] != NULL)
      (void)ordo_op_cancel(l->running[i]);
  pthread_mutex_unlock(&l->mu);
  (void)bench_counter_wait(&l->ended, l->n, bench_now_ns() + 120ull * 1000000000ull);
}

/* One segment: DIDs at rate for seconds, optionally with the keygen load;
 * latencies appended to lat. */
static int hipe_segment(ordo_ctx *ctx, unsigned heavy, double seconds, double rate,
                        uint64_t *lat, size_t *nlat, int *keygens) {
  size_t n = (size_t)ceil(seconds * rate);
  hipe_phase ph = {.ctx = ctx};
  hipe_load load;
  int rc;
  memset(&load, 0, sizeof(load));
  if ((ph.slots = calloc(n, sizeof(*ph.slots))) == NULL)
    return ORDO_E_NOMEM;
  if ((rc = bench_counter_init(&ph.done)) != ORDO_OK) {
    free(ph.slots);
    return rc;
  }
  if (heavy > 0) {
    load.ctx = ctx;
    load.n = heavy;
    pthread_mutex_init(&load.mu, NULL);
    bench_counter_init(&load.ended);
    for (unsigned i = 0; i < heavy; i++)
      hipe_keygen_start(&load, i);
    bench_sleep_until(bench_now_ns() + 100000000ull); /* under way first */
  }
  rc = bench_issue_steady(bench_now_ns() + 1000000, rate, n, hipe_issue, &ph);
  if (rc == ORDO_OK)
    rc = bench_counter_wait(&ph.done, ph.issued, bench_now_ns() + 120ull * 1000000000ull);
  if (heavy > 0) {
    hipe_load_stop(&load);
    *keygens += atomic_load(&load.done_keygens);
    bench_counter_destroy(&load.ended);
    pthread_mutex_destroy(&load.mu);
  }
  for (size_t i = 0; rc == ORDO_OK && i < ph.issued; i++) {
    if (ph.slots[i].status != ORDO_OK) {
      bench_error("did_create: %s", ordo_errname(ph.slots[i].status));
      rc = ph.slots[i].status;
    }
    lat[(*nlat)++] = ph.slots[i].done_ns - ph.slots[i].sched_ns;
  }
  bench_counter_destroy(&ph.done);
  free(ph.slots);
  return rc;
}

static int hipe_run(const bench_opts *opts, json_t **out) {
  double seconds = opts->seconds > 0 ? opts->seconds : HIPE_DEFAULT_SECONDS;
  double rate = opts->rate > 0 ? opts->rate : HIPE_DEFAULT_RATE;
  double seg = seconds / HIPE_ROUNDS;
  size_t cap = ((size_t)ceil(seg * rate) + 1) * HIPE_ROUNDS;
  uint64_t *idle = calloc(cap, sizeof(*idle)), *loaded = calloc(cap, sizeof(*loaded));
  size_t nidle = 0, nloaded = 0;
  int keygens = 0, rc = ORDO_E_NOMEM, ret = ORDO_CLI_FAIL;
  ordo_config cfg;
  ordo_config_init(&cfg);
  ordo_ctx *ctx = bench_ctx_new(&cfg);
  bench_wallet w;
  if (ctx == NULL || idle == NULL || loaded == NULL)
    goto done;
  if ((rc = wallet_make(ctx, &w, "bench", 1)) != ORDO_OK)
    goto done_wallet;
  if (!opts->json)
    printf("ordo bench hipe: did_create (with its durable wallet write) at %g/s open "
           "loop, idle vs during %u back-to-back %d-bit cred-def keygen(s); %d "
           "alternating segments, %g s per phase\ncores: %ld\n\n",
           rate, cfg.heavy_threads, HIPE_BITS, HIPE_ROUNDS, seconds, bench_cores());
  for (int r = 0; r < HIPE_ROUNDS && rc == ORDO_OK; r++) {
    rc = hipe_segment(ctx, 0, seg, rate, idle, &nidle, &keygens);
    if (rc == ORDO_OK)
      rc = hipe_segment(ctx, cfg.heavy_threads, seg, rate, loaded, &nloaded, &keygens);
  }
  if (rc != ORDO_OK)
    goto done_wallet;
  bench_stats si, sl;
  bench_stats_of(idle, nidle, &si);
  bench_stats_of(loaded, nloaded, &sl);
  double ratio = si.p99_us > 0 ? sl.p99_us / si.p99_us : 0;
  if (!opts->json) {
    printf("phase                    ops      p50_us      p99_us      max_us  keygens\n");
    printf("idle                   %5zu  %10.1f  %10.1f  %10.1f        -\n", si.count,
           si.p50_us, si.p99_us, si.max_us);
    printf("during keygen          %5zu  %10.1f  %10.1f  %10.1f  %7d\n", sl.count,
           sl.p50_us, sl.p99_us, sl.max_us, keygens);
    printf("\np99 ratio loaded/idle: %.2f (goal <= 1.5)\n", ratio);
  }
  json_t *o = json_object();
  int err = o == NULL;
  err |= bench_json_num(o, "idle_p99_us", si.p99_us, 1);
  err |= bench_json_num(o, "loaded_p99_us", sl.p99_us, 1);
  err |= bench_json_num(o, "ratio", ratio, 3);
  err |= bench_json_num(o, "idle_p50_us", si.p50_us, 1);
  err |= bench_json_num(o, "loaded_p50_us", sl.p50_us, 1);
  err |= bench_json_num(o, "idle_count", (double)si.count, 0);
  err |= bench_json_num(o, "loaded_count", (double)sl.count, 0);
  err |= bench_json_num(o, "keygens_completed", keygens, 0);
  err |= bench_json_num(o, "cores", (double)bench_cores(), 0);
  if (err) {
    json_decref(o);
    goto done_wallet;
  }
  *out = o;
  ret = ORDO_CLI_OK;
done_wallet:
  wallet_remove(&w);
done:
  ordo_ctx_free(ctx);
  free(idle);
  free(loaded);
  return ret;
}

const bench_def bench_hipe_def = {
    "hipe",
    "did_create latency idle vs during a 1025-bit cred-def keygen (HIPE 0012)",
    "  --seconds S    seconds per phase (default 3)\n"
    "  --rate R       did_create per second (default 200)\n",
    BENCH_FLAG_RATE,
    hipe_run,
};

/* ------------------------------------------------------------------------ */
/* wallet                                                                    */
/* ------------------------------------------------------------------------ */

#define WALLET_DEFAULT_SECONDS 2.0
static const unsigned wallet_default_callers[] = {1, 8, 64};

/* Record add number k into the "bench" wallet of context ud. */
static ordo_op *adds_issue(void *ud, unsigned long long k) {
  char name[32];
  snprintf(name, sizeof(name), "r%llu", k);
  return ordo_record_add(ud, "bench", "cred", name,
                         "a value of some sixty bytes, as a small credential is",
                         "{\"schema\":\"s1\",\"~issued\":\"2026\"}");
}

/* Write transactions committed by a wallet's database, either backend. */
static unsigned long long wallet_commits(ordo__wallet *wal) {
  ordo_storage *st = ordo__wallet_storage(wal);
  return ordo__storage_sqlite_commits(st) + ordo__storage_postgres_commits(st);
}

/* Adds per second with `callers` in flight, on a fresh wallet (in a
 * directory, or in url's database). */
static int adds_point(int group, unsigned callers, double seconds,
                      const char *url, double *per_s, double *per_commit) {
  ordo_config cfg;
  ordo_config_init(&cfg);
  ordo_ctx *ctx = bench_ctx_new(&cfg);
  bench_wallet w;
  if (ctx == NULL)
    return ORDO_E_SYSTEM;
  int rc = wallet_make_at(ctx, &w, "bench", group, url);
  if (rc == ORDO_OK) {
    /* Writes per committed transaction: what group commit gathers. */
    ordo__wallet *wal = NULL;
    unsigned long long commits0 = 0, added = 0;
    double elapsed = 0;
    if (ordo__wallet_get(ctx, "bench", &wal) == ORDO_OK)
      commits0 = wallet_commits(wal);
    rc = bench_closed_loop(callers, seconds, adds_issue, ctx, &added, &elapsed);
    *per_s = elapsed > 0 ? (double)added / elapsed : 0;
    if (wal != NULL) {
      unsigned long long commits = wallet_commits(wal) - commits0;
      *per_commit = commits > 0 ? (double)added / (double)commits : 0;
      ordo__wallet_release(wal);
    }
    if (rc != ORDO_OK)
      bench_error("record add: %s", ordo_errname(rc));
  }
  ordo_ctx_free(ctx);
  wallet_remove(&w);
  return rc;
}

/* Copy the schema of the wallet database at src into a new database. */
static int copy_schema(const char *src, sqlite3 *dst) {
  sqlite3 *db = NULL;
  sqlite3_stmt *st = NULL;
  int rc = ORDO_E_STORAGE;
  if (sqlite3_open_v2(src, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
      sqlite3_prepare_v2(db, "SELECT sql FROM sqlite_master WHERE sql NOT NULL "
                             "AND name NOT LIKE 'sqlite_%' ORDER BY rowid",
                         -1, &st, NULL) != SQLITE_OK)
    goto done;
  int step;
  while ((step = sqlite3_step(st)) == SQLITE_ROW)
    if (sqlite3_exec(dst, (const char *)sqlite3_column_text(st, 0), NULL, NULL, NULL) !=
        SQLITE_OK)
      goto done;
  rc = step == SQLITE_DONE ? ORDO_OK : ORDO_E_STORAGE;
done:
  sqlite3_finalize(st);
  sqlite3_close(db);
  return rc;
}

/* Raw SQLite, the upper bound: n records in one transaction, into the very
 * schema a wallet uses (copied from one), rows of the sizes the wallet
 * writes for the benchmark's record (an item, an encrypted and a plaintext
 * tag), WAL + synchronous=FULL, but no crypto, no runtime, and one commit
 * for everything instead of one per group of callers. */
static int raw_point(unsigned long long n, double *per_s) {
  ordo_config cfg;
  ordo_config_init(&cfg);
  ordo_ctx *ctx = bench_ctx_new(&cfg);
  bench_wallet w;
  if (ctx == NULL)
    return ORDO_E_SYSTEM;
  int rc = wallet_make(ctx, &w, "schema", 1);
  ordo_ctx_free(ctx); /* closes it */
  char src[300], path[300];
  snprintf(src, sizeof(src), "%s/schema/wallet.db", w.dir);
  snprintf(path, sizeof(path), "%s/raw.db", w.dir);
  sqlite3 *db = NULL;
  sqlite3_stmt *item = NULL, *tenc = NULL, *tplain = NULL;
  unsigned char cat[44], name[46], value[100], tname[46], tvalue[42];
  randombytes_buf(cat, sizeof(cat));
  randombytes_buf(tname, sizeof(tname));
  randombytes_buf(tvalue, sizeof(tvalue));
  uint64_t start = 0;
  if (rc != ORDO_OK)
    goto done;
  rc = ORDO_E_STORAGE;
  if (sqlite3_open(path, &db) != SQLITE_OK ||
      sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;", NULL, NULL,
                   NULL) != SQLITE_OK ||
      copy_schema(src, db) != ORDO_OK ||
      sqlite3_prepare_v2(db, "INSERT INTO items(category,name,value) VALUES(?,?,?)", -1,
                         &item, NULL) != SQLITE_OK ||
      sqlite3_prepare_v2(db, "INSERT INTO tags_encrypted(item_id,name,value) VALUES(?,?,?)",
                         -1, &tenc, NULL) != SQLITE_OK ||
      sqlite3_prepare_v2(db, "INSERT INTO tags_plaintext(item_id,name,value) VALUES(?,?,?)",
                         -1, &tplain, NULL) != SQLITE_OK)
    goto done;
  start = bench_now_ns();
  if (sqlite3_exec(db, "BEGIN;", NULL, NULL, NULL) != SQLITE_OK)
    goto done;
  for (unsigned long long i = 0; i < n; i++) {
    randombytes_buf(name, sizeof(name));
    randombytes_buf(value, sizeof(value));
    sqlite3_bind_blob(item, 1, cat, sizeof(cat), SQLITE_STATIC);
    sqlite3_bind_blob(item, 2, name, sizeof(name), SQLITE_STATIC);
    sqlite3_bind_blob(item, 3, value, sizeof(value), SQLITE_STATIC);
    if (sqlite3_step(item) != SQLITE_DONE)
      goto done;
    sqlite3_reset(item);
    sqlite3_int64 id = sqlite3_last_insert_rowid(db);
    sqlite3_bind_int64(tenc, 1, id);
    sqlite3_bind_blob(tenc, 2, tname, sizeof(tname), SQLITE_STATIC);
    sqlite3_bind_blob(tenc, 3, tvalue, sizeof(tvalue), SQLITE_STATIC);
    sqlite3_bind_int64(tplain, 1, id);
    sqlite3_bind_blob(tplain, 2, "~issued", 7, SQLITE_STATIC);
    sqlite3_bind_blob(tplain, 3, "2026", 4, SQLITE_STATIC);
    if (sqlite3_step(tenc) != SQLITE_DONE || sqlite3_step(tplain) != SQLITE_DONE)
      goto done;
    sqlite3_reset(tenc);
    sqlite3_reset(tplain);
  }
  if (sqlite3_exec(db, "COMMIT;", NULL, NULL, NULL) != SQLITE_OK)
    goto done;
  *per_s = (double)n / ((double)(bench_now_ns() - start) / 1e9);
  rc = ORDO_OK;
done:
  if (rc != ORDO_OK && db != NULL)
    bench_error("raw SQLite: %s", sqlite3_errmsg(db));
  sqlite3_finalize(item);
  sqlite3_finalize(tenc);
  sqlite3_finalize(tplain);
  sqlite3_close(db);
  wallet_remove(&w);
  return rc;
}

/* One backend's series: group commit and one transaction per add at each
 * caller count, then its raw bound; into o under the SQLite keys' names. */
typedef struct wallet_series {
  double group[BENCH_MAX_POINTS], naive[BENCH_MAX_POINTS],
      per_commit[BENCH_MAX_POINTS], raw;
} wallet_series;

static int wallet_json(json_t *o, const wallet_series *ws, size_t n,
                       const unsigned *callers) {
  double gvn = ws->naive[n - 1] > 0 ? ws->group[n - 1] / ws->naive[n - 1] : 0;
  double gvr = ws->raw > 0 ? ws->group[n - 1] / ws->raw : 0;
  char key[48];
  int err = bench_group_points(o, n, callers, ws->group, "adds_per_commit",
                               ws->per_commit, "naive_per_s", ws->naive) != ORDO_OK;
  err |= bench_json_num(o, "raw_per_s", ws->raw, 1);
  snprintf(key, sizeof(key), "group_vs_naive_%u", callers[n - 1]);
  err |= bench_json_num(o, key, gvn, 3);
  snprintf(key, sizeof(key), "group_vs_raw_%u", callers[n - 1]);
  err |= bench_json_num(o, key, gvr, 3);
  /* The most group_vs_naive could be on this machine: group commit cannot
   * beat the raw bound. */
  snprintf(key, sizeof(key), "raw_vs_naive_%u", callers[n - 1]);
  err |= bench_json_num(o, key, ws->naive[n - 1] > 0 ? ws->raw / ws->naive[n - 1] : 0, 3);
  return err;
}

static void wallet_summary(const char *what, const wallet_series *ws, size_t n,
                           const unsigned *callers) {
  double gvn = ws->naive[n - 1] > 0 ? ws->group[n - 1] / ws->naive[n - 1] : 0;
  double gvr = ws->raw > 0 ? ws->group[n - 1] / ws->raw : 0;
  printf("\n%s, raw bound (one transaction): %.0f inserts/s\n"
         "  group_vs_naive_%u: %.2f (goal >= 10 at 64; at most raw_vs_naive "
         "%.2f here)\n"
         "  group_vs_raw_%u:   %.3f (goal >= 0.5 at 64)\n",
         what, ws->raw, callers[n - 1], gvn,
         ws->naive[n - 1] > 0 ? ws->raw / ws->naive[n - 1] : 0, callers[n - 1],
         gvr);
}

static int wallet_run(const bench_opts *opts, json_t **out) {
  double seconds = opts->seconds > 0 ? opts->seconds : WALLET_DEFAULT_SECONDS;
  /* --threads gives the caller counts; the goals are read at the last. */
  const unsigned *callers = opts->nthreads > 0 ? opts->threads : wallet_default_callers;
  size_t n = opts->nthreads > 0 ? opts->nthreads : 3;
  const char *url = opts->postgres ? opts->postgres_url : NULL;
  wallet_series sq, pg;
  double unused;
  int rc = ORDO_OK, opened = 0, peak = 0, max_conn = 0;
  memset(&sq, 0, sizeof(sq));
  memset(&pg, 0, sizeof(pg));
  /* Many wallets from many processes first: the children are forked
   * before this process has a context (and threads) of its own. */
  if (url != NULL && (rc = bench_pg_many_wallets(url, 20, 10, &opened, &peak,
                                                 &max_conn)) != ORDO_OK)
    bench_error("200 wallets from 20 processes: a process failed (%d opened)",
                opened);
  if (!opts->json)
    printf("ordo bench wallet: record adds/s (encrypt + durable write), callers each "
           "keeping one add in flight, %g s per point%s\ncores: %ld\n\n"
           "backend    callers   group commit   adds/commit    naive (1 txn/add)   group/naive\n",
           seconds, url != NULL ? "; SQLite and PostgreSQL side by side" : "",
           bench_cores());
  for (size_t i = 0; i < n && rc == ORDO_OK; i++) {
    for (int b = 0; b < (url != NULL ? 2 : 1) && rc == ORDO_OK; b++) {
      wallet_series *ws = b ? &pg : &sq;
      const char *u = b ? url : NULL;
      rc = adds_point(1, callers[i], seconds, u, &ws->group[i], &ws->per_commit[i]);
      if (rc == ORDO_OK)
        rc = adds_point(0, callers[i], seconds, u, &ws->naive[i], &unused);
      if (rc == ORDO_OK && !opts->json)
        printf("%-9s %8u   %12.0f   %11.1f    %17.0f   %11.2f\n",
               b ? "postgres" : "sqlite", callers[i], ws->group[i],
               ws->per_commit[i], ws->naive[i],
               ws->naive[i] > 0 ? ws->group[i] / ws->naive[i] : 0);
    }
  }
  /* The upper bound: as many rows as group commit managed at the last
   * caller count in the same time, but in one transaction with no crypto. */
  if (rc == ORDO_OK)
    rc = raw_point((unsigned long long)(sq.group[n - 1] * seconds) + 1000, &sq.raw);
  if (rc == ORDO_OK && url != NULL)
    rc = bench_pg_raw(url, (unsigned long long)(pg.group[n - 1] * seconds) + 1000,
                      46, 100, BENCH_PG_TAGS_WALLET, &pg.raw);
  if (rc != ORDO_OK) {
    bench_error("wallet benchmark failed: %s", ordo_errname(rc));
    return ORDO_CLI_FAIL;
  }
  if (!opts->json) {
    wallet_summary("SQLite", &sq, n, callers);
    if (url != NULL) {
      wallet_summary("PostgreSQL", &pg, n, callers);
      printf("\n200 wallets opened by 20 processes: %d opened, %d server "
             "connections at once (max_connections %d)\n", opened, peak,
             max_conn);
    }
  }
  json_t *o = json_object();
  int err = o == NULL;
  if (url == NULL) {
    err |= wallet_json(o, &sq, n, callers);
  } else {
    /* PostgreSQL's figures under the SQLite keys' names; SQLite's beside. */
    json_t *side = json_object();
    err |= side == NULL || wallet_json(o, &pg, n, callers) ||
           wallet_json(side, &sq, n, callers) ||
           json_object_set_new(o, "sqlite", side) != 0;
    err |= json_object_set_new(o, "backend", json_string("postgres")) != 0;
    err |= bench_json_num(o, "many_wallets_opened", opened, 0);
    err |= bench_json_num(o, "many_wallets_processes", 20, 0);
    err |= bench_json_num(o, "many_wallets_peak_connections", peak, 0);
    err |= bench_json_num(o, "server_max_connections", max_conn, 0);
  }
  err |= bench_json_num(o, "cores", (double)bench_cores(), 0);
  if (err) {
    json_decref(o);
    return ORDO_CLI_FAIL;
  }
  *out = o;
  return ORDO_CLI_OK;
}

const bench_def bench_wallet_def = {
    "wallet",
    "record adds/s: group commit vs one transaction per add vs raw SQLite",
    "  --seconds S    seconds per point (default 2)\n"
    "  --threads L    caller counts, comma-separated (default 1,8,64)\n"
    "  --backend B    sqlite (default) or postgres: PostgreSQL measured beside\n"
    "                 SQLite (its figures under the same JSON keys, SQLite's\n"
    "                 in \"sqlite\"), and 200 wallets opened by 20 processes\n"
    "  --postgres URL the server (default $ORDO_POSTGRES_URL)\n",
    BENCH_FLAG_THREADS | BENCH_FLAG_BACKEND,
    wallet_run,
};

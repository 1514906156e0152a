/*
 * bench.h — `ordo bench`: the benchmarks compiled into the CLI, and the parts
 * they share (clock, latency statistics, tables, argument parsing, a
 * steady-rate issuer, a completion counter, the signing op).
 *
 * A benchmark is a bench_def: it runs with parsed options, prints its table to
 * stdout as it goes (unless --json), and hands back its numbers as a JSON
 * object, which bench_main prints for --json. Waiting for many ops is done
 * with a bench_counter bumped from ordo_op_then callbacks: a callback runs on
 * a runtime thread and must never block in ordo_op_wait.
 */
#ifndef ORDO_BENCH_H
#define ORDO_BENCH_H

#include "cli/cli.h"
#include "crypto/crypto.h"
#include "ordo.h"

#include <jansson.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ------------------------------------------------------------------------ */
/* Options and the benchmark table                                           */
/* ------------------------------------------------------------------------ */

#define BENCH_MAX_POINTS 16

/* Flags a benchmark accepts beyond --seconds, --json and --help. */
enum {
  BENCH_FLAG_RATE = 1u << 0,    /* --rate R */
  BENCH_FLAG_THREADS = 1u << 1, /* --threads N,N,... */
  BENCH_FLAG_COUNT = 1u << 2,   /* --count N */
  BENCH_FLAG_BITS = 1u << 3,    /* --bits B */
  BENCH_FLAG_BATCHES = 1u << 4, /* --batches N */
  BENCH_FLAG_PLOT = 1u << 5,    /* --plot FILE */
  BENCH_FLAG_BACKEND = 1u << 6  /* --backend sqlite|postgres, --postgres URL */
};

typedef struct bench_opts {
  double seconds; /* per phase / per point; 0: the benchmark's default */
  int json;       /* print one JSON object instead of tables */
  double rate;    /* ops per second; 0: default */
  unsigned threads[BENCH_MAX_POINTS];
  size_t nthreads; /* 0: default list */
  unsigned count;  /* repetitions; 0: default */
  int bits;        /* key size; 0: default */
  unsigned long long batches; /* batches in all; 0: default */
  const char *plot; /* a PNG to draw the results into (argv's); NULL: none */
  int postgres;     /* --backend postgres: measured beside SQLite */
  const char *postgres_url; /* --postgres URL, else $ORDO_POSTGRES_URL */
} bench_opts;

/* The tag rows each row of bench_pg_raw has, as ordo writes them. */
typedef enum bench_pg_tags {
  BENCH_PG_TAGS_WALLET,  /* one encrypted, one plaintext: the same pair on
                            every record, as the wallet benchmark's */
  BENCH_PG_TAGS_JOURNAL, /* one plaintext "id" tag, a batch id of its own
                            on every record, as a journal enqueue's */
} bench_pg_tags;

/* bench_pg.c. The raw bound of a PostgreSQL server: n rows (names of
 * name_len bytes, values of value_len, their tags as `tags` says) into
 * ordo's tables as multi-row INSERTs in one transaction; *per_s rows per
 * second. */
int bench_pg_raw(const char *url, unsigned long long n, size_t name_len,
                 size_t value_len, bench_pg_tags tags, double *per_s);
/* procs processes (forked: call it while this process has no context)
 * each open `per` wallets in url's database, add a record to each and
 * hold them open; *peak: the server's client connections then. */
int bench_pg_many_wallets(const char *url, int procs, int per, int *opened,
                          int *peak, int *max_conn);

typedef struct bench_def {
  const char *name;
  const char *summary;
  const char *help; /* the options block of its --help */
  unsigned flags;   /* BENCH_FLAG_* it accepts */
  /* Run; on success *out is a new JSON object of the results. Returns an
   * ORDO_CLI_* exit code. */
  int (*run)(const bench_opts *opts, json_t **out);
} bench_def;

extern const bench_def bench_isolation_def;
extern const bench_def bench_scaling_def;
extern const bench_def bench_sign_def;
extern const bench_def bench_keygen_def;
extern const bench_def bench_hipe_def;
extern const bench_def bench_wallet_def;
extern const bench_def bench_journal_def;
extern const bench_def bench_e2e_def;
extern const bench_def bench_scheduler_def;
extern const bench_def bench_makespan_def;
extern const bench_def bench_hostile_def;
extern const bench_def bench_memory_def;
extern const bench_def bench_latency_def;
extern const bench_def bench_ingest_def;
extern const bench_def bench_dashboard_def;
extern const bench_def bench_soak_def; /* by name only: not in `all` */
extern const bench_def bench_cluster_def; /* by name only: needs PostgreSQL */

/* The `ordo bench` subcommand: argv[0] is "bench". */
int bench_main(int argc, char **argv);

/* `batches` generated batches over `services` services, none conflicting
 * (seed), as POST /v1/batches items with signed payloads, in *items (the
 * caller's). ORDO_OK or why not. */
int bench_signed_items(size_t services, size_t batches, uint64_t seed,
                       json_t **items);

/* ------------------------------------------------------------------------ */
/* Shared helpers                                                            */
/* ------------------------------------------------------------------------ */

/* Remove dir and everything under it (no shell); complains on stderr when
 * something stays. */
void bench_rmdir_all(const char *dir);

/* "ordo bench: ..." on stderr. */
void bench_error(const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

/* Online cores (sysconf), at least 1. */
long bench_cores(void);

/* VmRSS of process pid (0: this one) in MiB, from /proc; -1 if unknown. */
double bench_rss_mib(int pid);

/* CLOCK_MONOTONIC in nanoseconds, and sleeping until such a time. */
uint64_t bench_now_ns(void);
void bench_sleep_until(uint64_t t_ns);

/* A context from cfg, or NULL with the reason printed. */
ordo_ctx *bench_ctx_new(const ordo_config *cfg);

/*
 * Call issue(i, t0 + i/rate, ud) for i = 0..n-1, each no earlier than its
 * time. Issue times are fixed up front (open loop): if issuing falls behind,
 * the late ops go out at once and the delay shows in their latency rather
 * than in a lower rate. Stops at the first non-zero return and returns it.
 */
typedef int (*bench_issue_fn)(size_t i, uint64_t sched_ns, void *ud);
int bench_issue_steady(uint64_t t0_ns, double rate, size_t n,
                       bench_issue_fn issue, void *ud);

/* A count that ops' callbacks raise and the main thread waits on. */
typedef struct bench_counter {
  pthread_mutex_t mu;
  pthread_cond_t cv; /* on CLOCK_MONOTONIC; broadcast on every change */
  uint64_t n;
} bench_counter;

int bench_counter_init(bench_counter *c); /* ORDO_E_SYSTEM on failure */
void bench_counter_destroy(bench_counter *c);
void bench_counter_add(bench_counter *c, uint64_t k);
uint64_t bench_counter_get(bench_counter *c);
/* Wait until the count is >= target: ORDO_OK, or ORDO_E_TIMEOUT once the
 * monotonic clock passes deadline_ns. */
int bench_counter_wait(bench_counter *c, uint64_t target, uint64_t deadline_ns);

/*
 * A closed loop: `callers` ops in flight for `seconds`, each completion
 * issuing the next (from its callback, on a runtime thread), until the
 * deadline. issue(ud, k) starts op number k (NULL: out of memory).
 * *completed gets the ops that succeeded, *elapsed_s the time until the
 * last one ended; returns ORDO_OK or the first failed op's status.
 */
typedef ordo_op *(*bench_loop_issue_fn)(void *ud, unsigned long long k);
int bench_closed_loop(unsigned callers, double seconds, bench_loop_issue_fn issue,
                      void *ud, unsigned long long *completed,
                      double *elapsed_s);

/* Wait on cv (a CLOCK_MONOTONIC condvar made by bench_cond_init) until
 * deadline_ns: 0, or ETIMEDOUT. mu is held on entry and on return. */
int bench_cond_init(pthread_cond_t *cv);
int bench_cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu,
                          uint64_t deadline_ns);

/* Latency summary of n samples in nanoseconds (sorted in place). */
typedef struct bench_stats {
  size_t count;
  double p50_us, p99_us, max_us;
} bench_stats;

void bench_stats_of(uint64_t *samples_ns, size_t n, bench_stats *out);

/* The nearest-rank p-th percentile (0 < p <= 100) of n sorted samples. */
uint64_t bench_percentile(const uint64_t *sorted, size_t n, double p);

/* The cheap op of every benchmark: ed25519 signature of a 256-byte message,
 * with a key made once. The stage's arg is a const bench_signer *. */
#define BENCH_SIGN_MSG_BYTES 256
typedef struct bench_signer {
  unsigned char pk[ORDO__ED25519_PUBLIC_BYTES];
  unsigned char sk[ORDO__ED25519_SECRET_BYTES];
  unsigned char msg[BENCH_SIGN_MSG_BYTES];
} bench_signer;

int bench_signer_init(bench_signer *s);
void bench_signer_wipe(bench_signer *s);
int bench_sign_stage(ordo_op *op, void *arg);

/* Plain-text tables: a column is a title and a width; cells are right-aligned
 * except the first column when left_first is set. */
typedef struct bench_table {
  const char *const *titles;
  const int *widths;
  size_t ncols;
  int left_first;
} bench_table;

void bench_table_header(FILE *out, const bench_table *t);
void bench_table_row(FILE *out, const bench_table *t, const char *const *cells);

/* Set obj[key] to a number rounded to `decimals` places (an integer when
 * decimals is 0). ORDO_E_NOMEM on failure. */
int bench_json_num(json_t *obj, const char *key, double v, int decimals);

/* Scaling tables (scaling, sign): a point's JSON {"op"? ,"threads",
 * "ops_per_s","speedup","linear_ratio"} appended to points (op may be NULL),
 * and the legend printed under such a table. */
int bench_scaling_point(json_t *points, const char *op, unsigned threads,
                        double ops_s, double speedup, double linear);
void bench_scaling_legend(const char *first_point, int beyond, long cores);

/* Group-commit sweeps (journal, wallet): o["points"], one {"callers",
 * "group_per_s", per_key, single_key} per caller count: the rate with group
 * commit, the ops per commit and the rate with one transaction per op.
 * ORDO_E_NOMEM on failure. */
int bench_group_points(json_t *o, size_t n, const unsigned *callers,
                       const double *group, const char *per_key,
                       const double *per_commit, const char *single_key,
                       const double *single);

/* Print obj on one line to stdout. ORDO_E_IO / ORDO_E_NOMEM on failure. */
int bench_json_print(const json_t *obj);

#endif /* ORDO_BENCH_H */

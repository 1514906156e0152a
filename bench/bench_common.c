/*
 * bench_common.c — `ordo bench` dispatch and option parsing, and the helpers
 * every benchmark shares: clock, steady-rate issuer, completion counter,
 * percentiles, tables, JSON output and the signing op.
 */
#include "bench.h"
#include "cli/drive.h"

#include <stdatomic.h>

#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#if defined(__linux__)
#include <sys/prctl.h>
#endif
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------------ */
/* Small helpers                                                             */
/* ------------------------------------------------------------------------ */

void bench_rmdir_all(const char *dir) {
  if (dir != NULL && dir[0] != '\0' && ordo__rmdir_all(dir) != 0)
    bench_error("could not remove %s", dir);
}

void bench_error(const char *fmt, ...) {
  va_list ap;

  fputs("ordo bench: ", stderr);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
}

double bench_rss_mib(int pid) {
  char path[64], line[256];
  double kib = -1;
  FILE *f;
  if (pid > 0)
    snprintf(path, sizeof path, "/proc/%d/status", pid);
  else
    snprintf(path, sizeof path, "/proc/self/status");
  if ((f = fopen(path, "r")) == NULL)
    return -1;
  while (fgets(line, sizeof line, f) != NULL)
    if (sscanf(line, "VmRSS: %lf kB", &kib) == 1)
      break;
  fclose(f);
  return kib < 0 ? -1 : kib / 1024.0;
}

long bench_cores(void) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? n : 1;
}

uint64_t bench_now_ns(void) {
  struct timespec ts;

  /* CLOCK_MONOTONIC cannot fail with a valid pointer and clock id. */
  (void)clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void bench_sleep_until(uint64_t t_ns) {
  struct timespec ts;

  ts.tv_sec = (time_t)(t_ns / 1000000000u);
  ts.tv_nsec = (long)(t_ns % 1000000000u);
  /* An absolute deadline survives signal interruptions unchanged: retry. */
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
    ;
}

ordo_ctx *bench_ctx_new(const ordo_config *cfg) {
  ordo_ctx *ctx = ordo_ctx_new(cfg);

  if (ctx == NULL)
    bench_error("cannot create a context: %s (%s)", ordo_last_error_message(),
                ordo_errname(ordo_last_error()));
  return ctx;
}

int bench_issue_steady(uint64_t t0_ns, double rate, size_t n,
                       bench_issue_fn issue, void *ud) {
  double period_ns = 1e9 / rate;
  size_t i;
  int rc;

#if defined(__linux__)
  /* The default 50 us timer slack would make every issue late by up to that
   * much, and lateness counts as latency. Failing only costs precision. */
  (void)prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
#endif
  for (i = 0; i < n; i++) {
    /* From t0 and i, never from the previous issue: errors cannot add up and
     * a late op does not push back the ones after it. */
    uint64_t at = t0_ns + (uint64_t)((double)i * period_ns);
    if (bench_now_ns() < at)
      bench_sleep_until(at);
    if ((rc = issue(i, at, ud)) != 0)
      return rc;
  }
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Waiting                                                                   */
/* ------------------------------------------------------------------------ */

int bench_cond_init(pthread_cond_t *cv) {
  pthread_condattr_t attr;
  int rc;

  if (pthread_condattr_init(&attr) != 0)
    return ORDO_E_SYSTEM;
  /* Deadlines come from bench_now_ns; a wall-clock step must not move them. */
  rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  if (rc == 0)
    rc = pthread_cond_init(cv, &attr);
  pthread_condattr_destroy(&attr);
  return rc == 0 ? ORDO_OK : ORDO_E_SYSTEM;
}

int bench_cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu,
                          uint64_t deadline_ns) {
  struct timespec ts;

  ts.tv_sec = (time_t)(deadline_ns / 1000000000u);
  ts.tv_nsec = (long)(deadline_ns % 1000000000u);
  return pthread_cond_timedwait(cv, mu, &ts);
}

int bench_counter_init(bench_counter *c) {
  c->n = 0;
  if (pthread_mutex_init(&c->mu, NULL) != 0)
    return ORDO_E_SYSTEM;
  if (bench_cond_init(&c->cv) != ORDO_OK) {
    pthread_mutex_destroy(&c->mu);
    return ORDO_E_SYSTEM;
  }
  return ORDO_OK;
}

void bench_counter_destroy(bench_counter *c) {
  pthread_cond_destroy(&c->cv);
  pthread_mutex_destroy(&c->mu);
}

void bench_counter_add(bench_counter *c, uint64_t k) {
  pthread_mutex_lock(&c->mu);
  c->n += k;
  pthread_cond_broadcast(&c->cv);
  pthread_mutex_unlock(&c->mu);
}

uint64_t bench_counter_get(bench_counter *c) {
  uint64_t n;

  pthread_mutex_lock(&c->mu);
  n = c->n;
  pthread_mutex_unlock(&c->mu);
  return n;
}

int bench_counter_wait(bench_counter *c, uint64_t target,
                       uint64_t deadline_ns) {
  int rc = ORDO_OK;

  pthread_mutex_lock(&c->mu);
  while (c->n < target) {
    if (bench_cond_wait_until(&c->cv, &c->mu, deadline_ns) == ETIMEDOUT &&
        c->n < target) {
      rc = ORDO_E_TIMEOUT;
      break;
    }
  }
  pthread_mutex_unlock(&c->mu);
  return rc;
}

/* ------------------------------------------------------------------------ */
/* Statistics                                                                */
/* ------------------------------------------------------------------------ */

typedef struct closed_loop {
  bench_loop_issue_fn issue;
  void *ud;
  uint64_t deadline_ns;
  atomic_ullong next, completed;
  atomic_int failed;
  bench_counter ended;
} closed_loop;

static void closed_loop_done(ordo_op *op, void *ud);

static int closed_loop_launch(closed_loop *l) {
  ordo_op *op = l->issue(l->ud, atomic_fetch_add(&l->next, 1));
  int rc;
  if (op == NULL)
    return ORDO_E_NOMEM;
  rc = ordo_op_then(op, closed_loop_done, l);
  ordo_op_release(op);
  return rc;
}

static void closed_loop_done(ordo_op *op, void *ud) {
  closed_loop *l = ud;
  if (ordo_op_status(op) != ORDO_OK) {
    atomic_store(&l->failed, ordo_op_status(op));
  } else {
    atomic_fetch_add(&l->completed, 1);
    if (bench_now_ns() < l->deadline_ns && closed_loop_launch(l) == ORDO_OK)
      return;
  }
  bench_counter_add(&l->ended, 1);
}

int bench_closed_loop(unsigned callers, double seconds,
                      bench_loop_issue_fn issue,
                      void *ud, unsigned long long *completed,
                      double *elapsed_s) {
  closed_loop l;
  uint64_t start;
  int rc;
  memset(&l, 0, sizeof l);
  l.issue = issue;
  l.ud = ud;
  if ((rc = bench_counter_init(&l.ended)) != ORDO_OK)
    return rc;
  start = bench_now_ns();
  l.deadline_ns = start + (uint64_t)(seconds * 1e9);
  for (unsigned i = 0; i < callers; i++)
    if (closed_loop_launch(&l) != ORDO_OK)
      bench_counter_add(&l.ended, 1);
  rc = bench_counter_wait(&l.ended, callers,
                          l.deadline_ns + 120ull * 1000000000ull);
  *elapsed_s = (double)(bench_now_ns() - start) / 1e9;
  *completed = atomic_load(&l.completed);
  if (atomic_load(&l.failed) != 0)
    rc = atomic_load(&l.failed);
  bench_counter_destroy(&l.ended);
  return rc;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return (x > y) - (x < y);
}

uint64_t bench_percentile(const uint64_t *sorted, size_t n, double p) {
  size_t rank;

  if (n == 0)
    return 0;
  /* Nearest rank: the smallest sample with at least p% of samples <= it. */
  rank = (size_t)ceil(p / 100.0 * (double)n);
  if (rank < 1)
    rank = 1;
  if (rank > n)
    rank = n;
  return sorted[rank - 1];
}

void bench_stats_of(uint64_t *samples_ns, size_t n, bench_stats *out) {
  qsort(samples_ns, n, sizeof *samples_ns, cmp_u64);
  out->count = n;
  out->p50_us = (double)bench_percentile(samples_ns, n, 50) / 1e3;
  out->p99_us = (double)bench_percentile(samples_ns, n, 99) / 1e3;
  out->max_us = n > 0 ? (double)samples_ns[n - 1] / 1e3 : 0;
}

/* ------------------------------------------------------------------------ */
/* The signing op                                                            */
/* ------------------------------------------------------------------------ */

int bench_signer_init(bench_signer *s) {
  size_t i;

  /* A fixed message: the cost of ed25519 does not depend on its bytes. */
  for (i = 0; i < sizeof s->msg; i++)
    s->msg[i] = (unsigned char)i;
  return ordo__crypto_ed25519_keypair(NULL, s->pk, s->sk);
}

void bench_signer_wipe(bench_signer *s) {
  ordo__crypto_memzero(s->sk, sizeof s->sk);
}

int bench_sign_stage(ordo_op *op, void *arg) {
  const bench_signer *s = arg;
  unsigned char sig[ORDO__ED25519_SIG_BYTES];

  (void)op;
  return ordo__crypto_ed25519_sign(s->sk, s->msg, sizeof s->msg, sig);
}

/* ------------------------------------------------------------------------ */
/* Output                                                                    */
/* ------------------------------------------------------------------------ */

void bench_table_header(FILE *out, const bench_table *t) {
  bench_table_row(out, t, t->titles);
}

void bench_table_row(FILE *out, const bench_table *t,
                     const char *const *cells) {
  size_t i;

  for (i = 0; i < t->ncols; i++) {
    int left = i == 0 && t->left_first;
    fprintf(out, i == 0 ? "%*s" : "  %*s", left ? -t->widths[i] : t->widths[i],
            cells[i]);
  }
  fputc('\n', out);
  /* Rows come out as phases finish; show each at once, even into a pipe. */
  fflush(out);
}

int bench_json_num(json_t *obj, const char *key, double v, int decimals) {
  json_t *val;

  if (decimals == 0) {
    val = json_integer((json_int_t)llround(v));
  } else {
    double scale = pow(10, decimals);
    val = json_real(isfinite(v) ? round(v * scale) / scale : 0);
  }
  /* json_object_set_new takes val even when it fails. */
  return json_object_set_new(obj, key, val) == 0 ? ORDO_OK : ORDO_E_NOMEM;
}

int bench_json_print(const json_t *obj) {
  char *text = json_dumps(obj, JSON_COMPACT | JSON_REAL_PRECISION(12));
  int rc = ORDO_OK;

  if (text == NULL)
    return ORDO_E_NOMEM;
  if (puts(text) == EOF || fflush(stdout) == EOF)
    rc = ORDO_E_IO;
  free(text);
  return rc;
}

/* ------------------------------------------------------------------------ */
/* `ordo bench`                                                              */
/* ------------------------------------------------------------------------ */

static const bench_def *const bench_defs[] = {
    &bench_isolation_def,
    &bench_scaling_def,
    &bench_sign_def,
    &bench_keygen_def,
    &bench_hipe_def,
    &bench_wallet_def,
    &bench_journal_def,
    &bench_e2e_def,
    &bench_scheduler_def,
    &bench_makespan_def,
    &bench_hostile_def,
    &bench_memory_def,
    &bench_latency_def,
    &bench_ingest_def,
    &bench_dashboard_def,
};
#define BENCH_NDEFS (sizeof bench_defs / sizeof bench_defs[0])

/* Run only when named: too long for `all` (soak takes minutes to an hour). */
static const bench_def *const bench_solo_defs[] = {
    &bench_soak_def,
    &bench_cluster_def,
};
#define BENCH_NSOLO (sizeof bench_solo_defs / sizeof bench_solo_defs[0])

static const char bench_common_help[] =
    "  --seconds S    seconds per phase (isolation, default 3) or per point\n"
    "                 (scaling, default 2)\n"
    "  --json         print one JSON object instead of tables\n"
    "  -h, --help     show this help and exit\n";

static void bench_usage(FILE *out) {
  size_t i;

  fputs("usage: ordo bench [NAME] [options]\n"
        "\n"
        "benchmarks:\n",
        out);
  for (i = 0; i < BENCH_NDEFS; i++)
    fprintf(out, "  %-10s %s\n", bench_defs[i]->name, bench_defs[i]->summary);
  fprintf(out, "  %-10s %s\n", "all", "every benchmark above (the default)");
  for (i = 0; i < BENCH_NSOLO; i++)
    fprintf(out, "  %-10s %s\n", bench_solo_defs[i]->name,
            bench_solo_defs[i]->summary);
  fputs("\noptions:\n", out);
  fputs(bench_common_help, out);
  for (i = 0; i < BENCH_NDEFS; i++)
    fputs(bench_defs[i]->help, out);
  for (i = 0; i < BENCH_NSOLO; i++)
    fputs(bench_solo_defs[i]->help, out);
  fputs("\nRun 'ordo bench NAME --help' for one benchmark.\n", out);
}

static void bench_def_usage(FILE *out, const bench_def *def) {
  fprintf(out, "usage: ordo bench %s [options]\n\n%s\n\noptions:\n%s%s",
          def->name, def->summary, bench_common_help, def->help);
}

/* The value of a flag given as "--flag V" or "--flag=V"; advances *i. */
static const char *flag_value(int argc, char **argv, int *i, const char *flag) {
  size_t len = strlen(flag);
  const char *arg = argv[*i];

  if (strncmp(arg, flag, len) == 0 && arg[len] == '=')
    return arg + len + 1;
  if (*i + 1 >= argc) {
    bench_error("option '%s' needs a value", flag);
    return NULL;
  }
  return argv[++*i];
}

/* 1 when arg is flag or flag=... */
static int is_flag(const char *arg, const char *flag) {
  size_t len = strlen(flag);
  return strncmp(arg, flag, len) == 0 && (arg[len] == '\0' || arg[len] == '=');
}

static int parse_positive(const char *flag, const char *text, double max,
                          double *out) {
  char *end;
  double v;

  errno = 0;
  v = strtod(text, &end);
  if (errno != 0 || end == text || *end != '\0' || !isfinite(v) || v <= 0 ||
      v > max) {
    bench_error("option '%s': '%s' is not a number in (0, %g]", flag, text,
                max);
    return ORDO_CLI_USAGE;
  }
  *out = v;
  return ORDO_CLI_OK;
}

/* A whole number in [min, max]. */
static int parse_int(const char *flag, const char *text, long min, long max,
                     long *out) {
  char *end;
  long v;

  errno = 0;
  v = strtol(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || v < min || v > max) {
    bench_error("option '%s': '%s' is not a whole number in [%ld, %ld]", flag,
                text, min, max);
    return ORDO_CLI_USAGE;
  }
  *out = v;
  return ORDO_CLI_OK;
}

static int parse_threads(const char *text, bench_opts *o) {
  const char *p = text;

  o->nthreads = 0;
  for (;;) {
    char *end;
    unsigned long v;

    errno = 0;
    v = strtoul(p, &end, 10);
    if (errno != 0 || end == p || *p == '-' || v < 1 || v > 1024 ||
        (*end != ',' && *end != '\0')) {
      bench_error("option '--threads': '%s' is not a list of counts 1..1024 "
                  "(e.g. 1,2,4)",
                  text);
      return ORDO_CLI_USAGE;
    }
    if (o->nthreads == BENCH_MAX_POINTS) {
      bench_error("option '--threads': at most %d points", BENCH_MAX_POINTS);
      return ORDO_CLI_USAGE;
    }
    o->threads[o->nthreads++] = (unsigned)v;
    if (*end == '\0')
      return ORDO_CLI_OK;
    p = end + 1;
  }
}

/* Parse argv[start..] into o, accepting the flags in `flags`. Returns an
 * ORDO_CLI_* code; *help is set when --help was asked for. */
static int parse_opts(int argc, char **argv, int start, unsigned flags,
                      bench_opts *o, int *help) {
  const char *v;
  long n;
  int i, rc;

  memset(o, 0, sizeof *o);
  *help = 0;
  for (i = start; i < argc; i++) {
    const char *arg = argv[i];

    if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
      *help = 1;
      return ORDO_CLI_OK;
    } else if (strcmp(arg, "--json") == 0) {
      o->json = 1;
    } else if (is_flag(arg, "--seconds")) {
      if ((v = flag_value(argc, argv, &i, "--seconds")) == NULL)
        return ORDO_CLI_USAGE;
      if ((rc = parse_positive("--seconds", v, 3600, &o->seconds)) != 0)
        return rc;
    } else if ((flags & BENCH_FLAG_RATE) && is_flag(arg, "--rate")) {
      if ((v = flag_value(argc, argv, &i, "--rate")) == NULL)
        return ORDO_CLI_USAGE;
      if ((rc = parse_positive("--rate", v, 1e6, &o->rate)) != 0)
        return rc;
    } else if ((flags & BENCH_FLAG_THREADS) && is_flag(arg, "--threads")) {
      if ((v = flag_value(argc, argv, &i, "--threads")) == NULL)
        return ORDO_CLI_USAGE;
      if ((rc = parse_threads(v, o)) != 0)
        return rc;
    } else if ((flags & BENCH_FLAG_COUNT) && is_flag(arg, "--count")) {
      if ((v = flag_value(argc, argv, &i, "--count")) == NULL)
        return ORDO_CLI_USAGE;
      if ((rc = parse_int("--count", v, 1, 1000000, &n)) != 0)
        return rc;
      o->count = (unsigned)n;
    } else if ((flags & BENCH_FLAG_BITS) && is_flag(arg, "--bits")) {
      if ((v = flag_value(argc, argv, &i, "--bits")) == NULL)
        return ORDO_CLI_USAGE;
      if ((rc = parse_int("--bits", v, ORDO__CL_MIN_BITS, ORDO__CL_MAX_BITS,
                          &n)) != 0)
        return rc;
      o->bits = (int)n;
    } else if ((flags & BENCH_FLAG_BATCHES) && is_flag(arg, "--batches")) {
      if ((v = flag_value(argc, argv, &i, "--batches")) == NULL)
        return ORDO_CLI_USAGE;
      if ((rc = parse_int("--batches", v, 1000, 100000000, &n)) != 0)
        return rc;
      o->batches = (unsigned long long)n;
    } else if ((flags & BENCH_FLAG_PLOT) && is_flag(arg, "--plot")) {
      if ((v = flag_value(argc, argv, &i, "--plot")) == NULL)
        return ORDO_CLI_USAGE;
      if (v[0] == '\0') {
        bench_error("option '--plot' needs a file name");
        return ORDO_CLI_USAGE;
      }
      o->plot = v;
    } else if ((flags & BENCH_FLAG_BACKEND) && is_flag(arg, "--backend")) {
      if ((v = flag_value(argc, argv, &i, "--backend")) == NULL)
        return ORDO_CLI_USAGE;
      if (strcmp(v, "postgres") != 0 && strcmp(v, "sqlite") != 0) {
        bench_error("--backend: 'sqlite' or 'postgres', not '%s'", v);
        return ORDO_CLI_USAGE;
      }
      o->postgres = strcmp(v, "postgres") == 0;
    } else if ((flags & BENCH_FLAG_BACKEND) && is_flag(arg, "--postgres")) {
      if ((v = flag_value(argc, argv, &i, "--postgres")) == NULL)
        return ORDO_CLI_USAGE;
      o->postgres_url = v;
    } else if (arg[0] == '-') {
      bench_error("unknown option '%s'", arg);
      return ORDO_CLI_USAGE;
    } else {
      bench_error("unexpected argument '%s'", arg);
      return ORDO_CLI_USAGE;
    }
  }
  if (o->postgres && o->postgres_url == NULL)
    o->postgres_url = getenv("ORDO_POSTGRES_URL");
  if (o->postgres && (o->postgres_url == NULL || o->postgres_url[0] == 0)) {
    bench_error("--backend postgres needs the server: --postgres URL or "
                "$ORDO_POSTGRES_URL (postgres://user@host:port/db)");
    return ORDO_CLI_USAGE;
  }
  return ORDO_CLI_OK;
}

static const bench_def *bench_find(const char *name) {
  size_t i;

  for (i = 0; i < BENCH_NDEFS; i++)
    if (strcmp(bench_defs[i]->name, name) == 0)
      return bench_defs[i];
  for (i = 0; i < BENCH_NSOLO; i++)
    if (strcmp(bench_solo_defs[i]->name, name) == 0)
      return bench_solo_defs[i];
  return NULL;
}

/* Run defs[0..n-1]; with --json print one object: the benchmark's own for a
 * single one, {"cores":C,"<name>":{...},...} for several. */
static int bench_run(const bench_def *const *defs, size_t n,
                     const bench_opts *o) {
  json_t *all = NULL, *one = NULL;
  size_t i;
  int rc = ORDO_CLI_OK;

  if (n > 1 && (all = json_object()) == NULL) {
    bench_error("out of memory");
    return ORDO_CLI_FAIL;
  }
  if (all != NULL && bench_json_num(all, "cores", (double)bench_cores(), 0)) {
    bench_error("out of memory");
    rc = ORDO_CLI_FAIL;
    goto done;
  }
  for (i = 0; i < n; i++) {
    if (i > 0 && !o->json)
      putchar('\n');
    one = NULL;
    if ((rc = defs[i]->run(o, &one)) != ORDO_CLI_OK)
      goto done;
    if (all != NULL && json_object_set_new(all, defs[i]->name, one) != 0) {
      one = NULL; /* taken by json_object_set_new even on failure */
      bench_error("out of memory");
      rc = ORDO_CLI_FAIL;
      goto done;
    }
    if (all != NULL)
      one = NULL;
  }
  if (o->json && bench_json_print(all != NULL ? all : one) != ORDO_OK) {
    bench_error("cannot write the JSON result");
    rc = ORDO_CLI_FAIL;
  }
done:
  json_decref(one);
  json_decref(all);
  return rc;
}

int bench_main(int argc, char **argv) {
  const bench_def *def = NULL;
  unsigned flags = 0;
  bench_opts o;
  int start = 1, help, rc;
  size_t i;

  /* The name is optional: "ordo bench --json" runs them all. */
  if (argc > 1 && argv[1][0] != '-') {
    start = 2;
    if (strcmp(argv[1], "all") != 0 && (def = bench_find(argv[1])) == NULL) {
      bench_error("unknown benchmark '%s'", argv[1]);
      bench_usage(stderr);
      return ORDO_CLI_USAGE;
    }
  }
  if (def != NULL) {
    flags = def->flags;
  } else {
    for (i = 0; i < BENCH_NDEFS; i++)
      flags |= bench_defs[i]->flags;
  }
  if ((rc = parse_opts(argc, argv, start, flags, &o, &help)) != ORDO_CLI_OK) {
    if (def != NULL)
      bench_def_usage(stderr, def);
    else
      bench_usage(stderr);
    return rc;
  }
  if (help) {
    if (def != NULL)
      bench_def_usage(stdout, def);
    else
      bench_usage(stdout);
    return ORDO_CLI_OK;
  }
  if (def != NULL)
    return bench_run(&def, 1, &o);
  return bench_run(bench_defs, BENCH_NDEFS, &o);
}

int bench_scaling_point(json_t *points, const char *op, unsigned threads,
                        double ops_s, double speedup, double linear) {
  json_t *pt = json_object();
  if (pt == NULL || json_array_append_new(points, pt) != 0)
    return ORDO_E_NOMEM;
  if ((op != NULL && json_object_set_new(pt, "op", json_string(op)) != 0) ||
      bench_json_num(pt, "threads", threads, 0) != ORDO_OK ||
      bench_json_num(pt, "ops_per_s", ops_s, 1) != ORDO_OK ||
      bench_json_num(pt, "speedup", speedup, 3) != ORDO_OK ||
      bench_json_num(pt, "linear_ratio", linear, 3) != ORDO_OK)
    return ORDO_E_NOMEM;
  return ORDO_OK;
}

int bench_group_points(json_t *o, size_t n, const unsigned *callers,
                       const double *group, const char *per_key,
                       const double *per_commit, const char *single_key,
                       const double *single) {
  json_t *pts = json_array();
  int err = pts == NULL;
  for (size_t i = 0; !err && i < n; i++) {
    json_t *p = json_object();
    err |= p == NULL;
    err |= bench_json_num(p, "callers", callers[i], 0);
    err |= bench_json_num(p, "group_per_s", group[i], 1);
    err |= bench_json_num(p, per_key, per_commit[i], 1);
    err |= bench_json_num(p, single_key, single[i], 1);
    err |= json_array_append_new(pts, p);
  }
  err |= json_object_set_new(o, "points", pts);
  return err ? ORDO_E_NOMEM : ORDO_OK;
}

void bench_scaling_legend(const char *first_point, int beyond, long cores) {
  printf("\nspeedup = ops/s over %s; linear = ops/s / "
         "(threads x per-thread ops/s of the first point)\n",
         first_point);
  if (beyond)
    printf("note: %ld core(s) online; above %ld thread(s) the threads share "
           "the cores, so the ratio to linear must fall\n",
           cores, cores);
}

int bench_signed_items(size_t services, size_t batches, uint64_t seed,
                       json_t **items) {
  ordo_workload_gen gen;
  ordo_workload *w = NULL;
  char *text = NULL;
  size_t len = 0;
  FILE *f;
  int rc;

  *items = NULL;
  ordo_workload_gen_init(&gen);
  gen.services = services;
  gen.batches = batches;
  gen.conflict = 0;
  gen.seed = seed;
  if ((f = open_memstream(&text, &len)) == NULL)
    return ORDO_E_NOMEM;
  rc = ordo_workload_generate(&gen, f);
  fclose(f);
  if (rc == ORDO_OK)
    rc = ordo_workload_parse(text, len, &w);
  free(text);
  if (rc == ORDO_OK)
    rc = ordo__serve_items(w, items);
  ordo_workload_free(w);
  return rc;
}

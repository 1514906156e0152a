/*
 * bench_scaling.c — `ordo bench scaling`: cheap-op throughput as the cheap
 * class grows.
 *
 * For each thread count N a fresh context with cheap_threads = N runs
 * ed25519 signatures of 256 bytes in a closed loop with no submitter threads:
 * W = 4N ops are kept in flight, and each op's callback (on the runtime
 * thread that finished it) submits the next one until the deadline. Four per
 * thread keeps every thread's queue non-empty while a callback resubmits.
 * Throughput counts completions inside the measuring window (the first tenth
 * of each point is warm-up). Ratio to linear is ops_s(N) / (N * ops_s(1))
 * (against the first point's per-thread rate when 1 is not in the list); past
 * the core count it must fall, as the threads share the cores.
 */
#include "bench.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define SCALE_DEFAULT_SECONDS 2.0
#define SCALE_INFLIGHT_PER_THREAD 4
#define SCALE_WARMUP_FRACTION 0.1
#define SCALE_DRAIN_TIMEOUT_NS (30 * 1000000000ull)

static const unsigned scale_default_threads[] = {1, 2, 4, 8, 16};

typedef struct scale_run {
  ordo_ctx *ctx;
  const bench_signer *signer;
  uint64_t window_start_ns; /* completions from here ... */
  uint64_t deadline_ns;     /* ... to here are counted; none issued after */
  atomic_ullong counted;
  atomic_ullong failed;
  atomic_int first_error;
  bench_counter ended; /* chains that have stopped resubmitting */
} scale_run;

static void scale_done(ordo_op *op, void *ud);

/* Submit one sign op whose callback continues the chain. */
static int scale_launch(scale_run *r) {
  ordo_op *op = ordo_submit(r->ctx, ORDO_CLASS_CHEAP, bench_sign_stage,
                            (void *)r->signer);
  int rc = ordo_op_then(op, scale_done, r);

  ordo_op_release(op); /* the op lives on until its callback has run */
  return rc;
}

static void scale_record_error(scale_run *r, int code) {
  int none = 0;

  atomic_fetch_add(&r->failed, 1);
  atomic_compare_exchange_strong(&r->first_error, &none, code);
}

static void scale_done(ordo_op *op, void *ud) {
  scale_run *r = ud;
  uint64_t now = bench_now_ns();
  int status = ordo_op_status(op), rc;

  if (status != ORDO_OK) {
    scale_record_error(r, status);
  } else {
    if (now >= r->window_start_ns && now <= r->deadline_ns)
      atomic_fetch_add_explicit(&r->counted, 1, memory_order_relaxed);
    if (now < r->deadline_ns) {
      if ((rc = scale_launch(r)) == ORDO_OK)
        return;
      scale_record_error(r, rc);
    }
  }
  bench_counter_add(&r->ended, 1);
}

/* One point: ops per second with n cheap threads. */
static int scale_point(unsigned n, double seconds, const bench_signer *signer,
                       double *ops_s) {
  unsigned w = SCALE_INFLIGHT_PER_THREAD * n, i, launched = 0;
  ordo_config cfg;
  scale_run r;
  uint64_t start;
  int rc = ORDO_OK;

  memset(&r, 0, sizeof r);
  atomic_init(&r.counted, 0);
  atomic_init(&r.failed, 0);
  atomic_init(&r.first_error, 0);
  r.signer = signer;
  if (bench_counter_init(&r.ended) != ORDO_OK) {
    bench_error("cannot create a counter");
    return ORDO_E_SYSTEM;
  }
  ordo_config_init(&cfg);
  cfg.cheap_threads = n;
  if ((r.ctx = bench_ctx_new(&cfg)) == NULL) {
    bench_counter_destroy(&r.ended);
    return ORDO_E_SYSTEM;
  }

  start = bench_now_ns();
  r.window_start_ns = start + (uint64_t)(seconds * SCALE_WARMUP_FRACTION * 1e9);
  r.deadline_ns = start + (uint64_t)(seconds * 1e9);
  for (i = 0; i < w; i++) {
    if ((rc = scale_launch(&r)) != ORDO_OK) {
      bench_error("ordo_op_then: %s", ordo_errname(rc));
      break;
    }
    launched++;
  }
  if (bench_counter_wait(&r.ended, launched,
                         r.deadline_ns + SCALE_DRAIN_TIMEOUT_NS) != ORDO_OK) {
    bench_error("%llu of %u op chains still running %.0f s after the "
                "deadline",
                (unsigned long long)(launched - bench_counter_get(&r.ended)),
                launched, (double)SCALE_DRAIN_TIMEOUT_NS / 1e9);
    if (rc == ORDO_OK)
      rc = ORDO_E_TIMEOUT;
  }
  /* Callbacks still pending are delivered before this returns, so r may be
   * dropped after it. */
  ordo_ctx_free(r.ctx);
  bench_counter_destroy(&r.ended);

  if (rc == ORDO_OK && atomic_load(&r.failed) > 0) {
    bench_error("%llu sign op(s) failed (first: %s)",
                (unsigned long long)atomic_load(&r.failed),
                ordo_errname(atomic_load(&r.first_error)));
    rc = atomic_load(&r.first_error);
  }
  *ops_s = (double)atomic_load(&r.counted) /
           ((double)(r.deadline_ns - r.window_start_ns) / 1e9);
  return rc;
}

static const char *const scale_titles[] = {"threads", "ops/s", "speedup",
                                           "linear"};
static const int scale_widths[] = {7, 10, 8, 7};
static const bench_table scale_table = {scale_titles, scale_widths, 4, 0};

static int scale_run_all(const bench_opts *opts, json_t **out) {
  double seconds = opts->seconds > 0 ? opts->seconds : SCALE_DEFAULT_SECONDS;
  const unsigned *threads =
      opts->nthreads ? opts->threads : scale_default_threads;
  size_t npoints = opts->nthreads ? opts->nthreads
                                  : sizeof scale_default_threads /
                                        sizeof scale_default_threads[0];
  long cores = bench_cores();
  double base_ops = 0, base_per_thread = 0;
  bench_signer signer;
  json_t *o = NULL, *points = NULL;
  int rc, beyond = 0;
  size_t i;

  if ((rc = bench_signer_init(&signer)) != ORDO_OK) {
    bench_error("cannot make a signing key: %s", ordo_errname(rc));
    return ORDO_CLI_FAIL;
  }
  if ((o = json_object()) == NULL || (points = json_array()) == NULL ||
      bench_json_num(o, "cores", (double)cores, 0) != ORDO_OK ||
      bench_json_num(o, "seconds", seconds, 3) != ORDO_OK)
    goto nomem;

  if (!opts->json) {
    printf("ordo bench scaling: ed25519 sign of %d B, closed loop, %d ops in "
           "flight per cheap thread, %g s per point\n",
           BENCH_SIGN_MSG_BYTES, SCALE_INFLIGHT_PER_THREAD, seconds);
    printf("cores: %ld\n\n", cores);
    bench_table_header(stdout, &scale_table);
  }
  for (i = 0; i < npoints; i++) {
    double ops_s, speedup, linear;

    if ((rc = scale_point(threads[i], seconds, &signer, &ops_s)) != ORDO_OK) {
      bench_error("scaling failed at %u threads: %s", threads[i],
                  ordo_errname(rc));
      json_decref(points);
      json_decref(o);
      bench_signer_wipe(&signer);
      return ORDO_CLI_FAIL;
    }
    if (i == 0) {
      base_ops = ops_s;
      base_per_thread = ops_s / threads[0];
    }
    speedup = base_ops > 0 ? ops_s / base_ops : 0;
    linear = base_per_thread > 0 ? ops_s / (threads[i] * base_per_thread) : 0;
    if ((long)threads[i] > cores)
      beyond = 1;

    if (!opts->json) {
      char c0[16], c1[32], c2[16], c3[16];
      const char *cells[4] = {c0, c1, c2, c3};
      snprintf(c0, sizeof c0, "%u", threads[i]);
      snprintf(c1, sizeof c1, "%.0f", ops_s);
      snprintf(c2, sizeof c2, "%.2f", speedup);
      snprintf(c3, sizeof c3, "%.2f", linear);
      bench_table_row(stdout, &scale_table, cells);
    }
    if (bench_scaling_point(points, NULL, threads[i], ops_s, speedup, linear) != ORDO_OK)
      goto nomem;
  }
  bench_signer_wipe(&signer);
  if (!opts->json)
    bench_scaling_legend("the first point", beyond, cores);
  if (json_object_set_new(o, "points", points) != 0) {
    points = NULL; /* taken even on failure */
    goto nomem;
  }
  *out = o;
  return ORDO_CLI_OK;

nomem:
  bench_signer_wipe(&signer);
  json_decref(points);
  json_decref(o);
  bench_error("out of memory");
  return ORDO_CLI_FAIL;
}

const bench_def bench_scaling_def = {
    "scaling",
    "cheap-op throughput at 1, 2, 4, 8, 16 cheap threads",
    "  --threads L    scaling: thread counts, comma-separated (default "
    "1,2,4,8,16)\n",
    BENCH_FLAG_THREADS,
    scale_run_all,
};

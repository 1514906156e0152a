/*
 * bench_isolation.c — `ordo bench isolation`: the HIPE 0012 acceptance test,
 * measured. Does a millisecond command stay as fast as on an idle library
 * while seconds-long key generation runs?
 *
 * A cheap op (ed25519 signature of 256 bytes, ORDO_CLASS_CHEAP) is issued at
 * a steady rate, open loop: issue times are fixed in advance, and an op's
 * latency is its completion time (taken in its ordo_op_then callback) minus
 * its scheduled issue time, so a stalled executor shows up as latency instead
 * of slowing the issuer. Three phases of S seconds each (idle and loaded run
 * as ISO_ROUNDS alternating segments, so machine noise falls on both alike):
 *
 *   idle      default configuration, nothing else running;
 *   loaded    the same, while heavy_threads safe-prime searches (1025 bits,
 *             ORDO_CLASS_HEAVY) run back to back, one per heavy thread;
 *   baseline  ordo configured as libindy (single_executor, one thread), with
 *             the same heavy load: every signature queued behind a search
 *             waits for it — the stall HIPE 0012 set out to remove.
 *
 * Ops still queued when a phase's issuing ends are waited for and counted:
 * they are the stall. In the baseline the wait is bounded: after a grace
 * period the heavy searches are cancelled so the queue drains.
 */
#include "bench.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define ISO_DEFAULT_SECONDS 3.0
#define ISO_DEFAULT_RATE 500.0
#define ISO_ROUNDS 5 /* idle and loaded segments alternate this many times */
#define ISO_HEAVY_BITS 1025 /* the prime size of CL key generation */
#define ISO_WARMUP_OPS 64   /* wake every cheap thread before measuring */
#define ISO_MAX_OPS 10000000u
#define NS_PER_S 1000000000ull
#define ISO_SETTLE_NS (200 * 1000000ull) /* heavy work under way first */
#define ISO_STOP_TIMEOUT_NS (60 * NS_PER_S)
#define ISO_DRAIN_TIMEOUT_NS (60 * NS_PER_S)

/* ------------------------------------------------------------------------ */
/* Heavy load: n safe-prime searches in flight, each resubmitted as it ends  */
/* ------------------------------------------------------------------------ */

typedef struct heavy_load heavy_load;

typedef struct heavy_slot {
  heavy_load *load;
  ordo_op *op; /* our reference to the op in flight; NULL between ops */
} heavy_slot;

/* Lock order: h->mu is a leaf; no ordo call is made while holding it except
 * ordo_op_retain, which takes no lock of ours. */
struct heavy_load {
  ordo_ctx *ctx;
  pthread_mutex_t mu;
  pthread_cond_t cv;   /* signalled when inflight drops */
  int stopping;        /* no more resubmissions; new ops are cancelled */
  unsigned inflight;   /* slots whose chain has not ended */
  unsigned long found; /* searches that completed */
  unsigned long cancelled;
  unsigned long failed;
  int first_error;
  heavy_slot *slots;
  unsigned nslots;
};

static int heavy_stage(ordo_op *op, void *arg) {
  char *prime = NULL;
  int rc;

  (void)op;
  (void)arg;
  rc = ordo__crypto_safe_prime(ISO_HEAVY_BITS, &prime);
  ordo__free_secret(prime);
  return rc;
}

static void heavy_done(ordo_op *op, void *ud);

/* End slot s's chain: called with h->mu held. */
static void heavy_slot_end(heavy_load *h) {
  h->inflight--;
  pthread_cond_broadcast(&h->cv);
}

/* Put a new search in slot s. */
static void heavy_launch(heavy_load *h, heavy_slot *s) {
  ordo_op *op = ordo_submit(h->ctx, ORDO_CLASS_HEAVY, heavy_stage, NULL);
  int stopping, rc;

  pthread_mutex_lock(&h->mu);
  s->op = op;
  stopping = h->stopping;
  pthread_mutex_unlock(&h->mu);
  /* A stop that came while we were submitting missed this op: cancel it
   * here, before the callback is set and may release it. */
  if (stopping) {
    rc = ordo_op_cancel(op);
    if (rc != ORDO_OK && rc != ORDO_E_BUSY && rc != ORDO_E_STATE)
      bench_error("cancel of a heavy op: %s", ordo_errname(rc));
  }
  if ((rc = ordo_op_then(op, heavy_done, s)) != ORDO_OK) {
    pthread_mutex_lock(&h->mu);
    s->op = NULL;
    h->failed++;
    if (h->first_error == 0)
      h->first_error = rc;
    heavy_slot_end(h);
    pthread_mutex_unlock(&h->mu);
    ordo_op_release(op);
  }
}

static void heavy_done(ordo_op *op, void *ud) {
  heavy_slot *s = ud;
  heavy_load *h = s->load;
  int status = ordo_op_status(op);
  int again;

  pthread_mutex_lock(&h->mu);
  if (status == ORDO_OK) {
    h->found++;
  } else if (status == ORDO_E_CANCELED) {
    h->cancelled++;
  } else {
    h->failed++;
    if (h->first_error == 0)
      h->first_error = status;
  }
  /* Only a search that succeeded is followed by another: a refused or failed
   * one would otherwise loop at full speed. */
  again = status == ORDO_OK && !h->stopping;
  s->op = NULL; /* the stopper must not see an op we are about to release */
  if (!again)
    heavy_slot_end(h);
  pthread_mutex_unlock(&h->mu);
  ordo_op_release(op); /* the runtime holds the op for the callback */
  if (again)
    heavy_launch(h, s);
}

static int heavy_init(heavy_load *h, ordo_ctx *ctx, unsigned n) {
  memset(h, 0, sizeof *h);
  h->ctx = ctx;
  if ((h->slots = calloc(n, sizeof *h->slots)) == NULL)
    return ORDO_E_NOMEM;
  if (pthread_mutex_init(&h->mu, NULL) != 0) {
    free(h->slots);
    return ORDO_E_SYSTEM;
  }
  if (bench_cond_init(&h->cv) != ORDO_OK) {
    pthread_mutex_destroy(&h->mu);
    free(h->slots);
    return ORDO_E_SYSTEM;
  }
  h->nslots = n;
  return ORDO_OK;
}

static void heavy_start(heavy_load *h) {
  unsigned i;

  pthread_mutex_lock(&h->mu);
  h->inflight = h->nslots;
  pthread_mutex_unlock(&h->mu);
  for (i = 0; i < h->nslots; i++) {
    h->slots[i].load = h;
    heavy_launch(h, &h->slots[i]);
  }
}

/* Stop resubmitting, cancel what is in flight, and wait for every chain to
 * end. ORDO_E_TIMEOUT if cancelled searches did not stop in time. */
static int heavy_stop(heavy_load *h, uint64_t timeout_ns) {
  uint64_t deadline = bench_now_ns() + timeout_ns;
  ordo_op **ops;
  unsigned i, n = 0;
  int rc = ORDO_OK;

  if ((ops = calloc(h->nslots ? h->nslots : 1, sizeof *ops)) == NULL)
    return ORDO_E_NOMEM;
  /* Retain under the lock: a callback may release its op right after. */
  pthread_mutex_lock(&h->mu);
  h->stopping = 1;
  for (i = 0; i < h->nslots; i++)
    if (h->slots[i].op != NULL)
      ops[n++] = ordo_op_retain(h->slots[i].op);
  pthread_mutex_unlock(&h->mu);

  for (i = 0; i < n; i++) {
    int crc = ordo_op_cancel(ops[i]);
    /* OK: removed from its queue; BUSY: stops at its next checkpoint;
     * STATE: finished meanwhile. Anything else is a runtime bug. */
    if (crc != ORDO_OK && crc != ORDO_E_BUSY && crc != ORDO_E_STATE) {
      bench_error("ordo_op_cancel of a heavy op returned %s",
                  ordo_errname(crc));
      rc = crc;
    }
    ordo_op_release(ops[i]);
  }
  free(ops);

  pthread_mutex_lock(&h->mu);
  while (h->inflight > 0)
    if (bench_cond_wait_until(&h->cv, &h->mu, deadline) != 0 &&
        h->inflight > 0) {
      bench_error("%u heavy op(s) still running %.0f s after ordo_op_cancel",
                  h->inflight, (double)timeout_ns / 1e9);
      rc = ORDO_E_TIMEOUT;
      break;
    }
  pthread_mutex_unlock(&h->mu);
  return rc;
}

static void heavy_destroy(heavy_load *h) {
  pthread_cond_destroy(&h->cv);
  pthread_mutex_destroy(&h->mu);
  free(h->slots);
}

/* ------------------------------------------------------------------------ */
/* One phase                                                                 */
/* ------------------------------------------------------------------------ */

typedef struct sign_slot {
  uint64_t sched_ns;  /* when the op was due to be issued */
  uint64_t issued_ns; /* when the issuer actually submitted it */
  uint64_t done_ns;   /* when its callback ran */
  int status;
  bench_counter *done;
} sign_slot;

typedef struct iso_phase {
  ordo_ctx *ctx;
  const bench_signer *signer;
  sign_slot *slots;
  size_t issued;
  bench_counter done;
} iso_phase;

typedef struct iso_result {
  /* Raw samples of every segment of the phase, in ns; stats are taken once
   * all segments have run. */
  uint64_t *lat_ns, *svc_ns, *lag_ns;
  size_t n, cap;
  bench_stats st;  /* latency: completion - scheduled issue time */
  bench_stats svc; /* service: completion - actual issue time */
  bench_stats lag; /* issuer lateness: actual - scheduled issue time */
  size_t failed;   /* sign ops that did not return ORDO_OK */
  int first_error;
  size_t queued_at_end;  /* issued but unfinished when issuing ended */
  int drained_by_cancel; /* the heavy load had to be cancelled to drain */
  unsigned long primes;  /* heavy searches completed during the phase */
  unsigned long heavy_failed;
  int heavy_error;
} iso_result;

static void sign_done(ordo_op *op, void *ud) {
  sign_slot *s = ud;

  s->done_ns = bench_now_ns();
  s->status = ordo_op_status(op);
  /* The counter's mutex also publishes done_ns/status to the main thread. */
  bench_counter_add(s->done, 1);
}

static int issue_sign(size_t i, uint64_t sched_ns, void *ud) {
  iso_phase *ph = ud;
  sign_slot *s = &ph->slots[i];
  ordo_op *op;
  int rc;

  s->sched_ns = sched_ns;
  s->done = &ph->done;
  s->issued_ns = bench_now_ns();
  op = ordo_submit(ph->ctx, ORDO_CLASS_CHEAP, bench_sign_stage,
                   (void *)ph->signer);
  rc = ordo_op_then(op, sign_done, s);
  ordo_op_release(op); /* the op lives on until its callback has run */
  if (rc != ORDO_OK) {
    bench_error("ordo_op_then: %s", ordo_errname(rc));
    return rc;
  }
  ph->issued = i + 1;
  return ORDO_OK;
}

/* Run a few ops and wait for them, so thread start-up and cold caches are
 * not charged to the first measured ops. */
static int iso_warmup(ordo_ctx *ctx, const bench_signer *signer) {
  ordo_op *ops[ISO_WARMUP_OPS];
  int rc = ORDO_OK;
  size_t i;

  for (i = 0; i < ISO_WARMUP_OPS; i++)
    ops[i] =
        ordo_submit(ctx, ORDO_CLASS_CHEAP, bench_sign_stage, (void *)signer);
  for (i = 0; i < ISO_WARMUP_OPS; i++) {
    int st = ordo_op_wait(ops[i], 30000);
    if (st != ORDO_OK && rc == ORDO_OK) {
      bench_error("warm-up sign op: %s", ordo_errname(st));
      rc = st;
    }
    ordo_op_release(ops[i]);
  }
  return rc;
}

static int iso_phase_run(const ordo_config *cfg, unsigned heavy_ops,
                         double seconds, double rate,
                         const bench_signer *signer, iso_result *res) {
  size_t n = (size_t)ceil(seconds * rate);
  uint64_t grace_ns = (uint64_t)(fmax(1.0, seconds) * 1e9);
  heavy_load heavy;
  int have_heavy = 0, heavy_stopped = 0, rc;
  iso_phase ph;
  size_t i;

  if (res->n + n > res->cap) {
    bench_error("internal: %zu samples do not fit in %zu", res->n + n, res->cap);
    return ORDO_E_INVAL;
  }
  memset(&ph, 0, sizeof ph);
  ph.signer = signer;
  if ((rc = bench_counter_init(&ph.done)) != ORDO_OK) {
    bench_error("cannot create a counter");
    return rc;
  }
  if ((ph.slots = calloc(n, sizeof *ph.slots)) == NULL) {
    bench_error("out of memory for %zu samples", n);
    rc = ORDO_E_NOMEM;
    goto done;
  }
  if ((ph.ctx = bench_ctx_new(cfg)) == NULL) {
    rc = ORDO_E_SYSTEM;
    goto done;
  }
  if ((rc = iso_warmup(ph.ctx, signer)) != ORDO_OK)
    goto done;

  if (heavy_ops > 0) {
    if ((rc = heavy_init(&heavy, ph.ctx, heavy_ops)) != ORDO_OK) {
      bench_error("cannot set up the heavy load: %s", ordo_errname(rc));
      goto done;
    }
    have_heavy = 1;
    heavy_start(&heavy);
    /* Let the searches get going, so the phase starts under load. */
    bench_sleep_until(bench_now_ns() + ISO_SETTLE_NS);
  }

  rc = bench_issue_steady(bench_now_ns() + 1000000, rate, n, issue_sign, &ph);
  if (rc != ORDO_OK)
    goto done;
  res->queued_at_end += ph.issued - (size_t)bench_counter_get(&ph.done);

  if (have_heavy) {
    /* Give queued signatures a fair chance to finish behind the search that
     * blocks them; past the grace period cancel it so the queue drains.
     * Either way every issued op is waited for and counted below. */
    if (bench_counter_wait(&ph.done, ph.issued, bench_now_ns() + grace_ns) !=
        ORDO_OK)
      res->drained_by_cancel = 1;
    heavy_stopped = 1;
    if ((rc = heavy_stop(&heavy, ISO_STOP_TIMEOUT_NS)) != ORDO_OK)
      goto done;
  }
  if (bench_counter_wait(&ph.done, ph.issued,
                         bench_now_ns() + ISO_DRAIN_TIMEOUT_NS) != ORDO_OK) {
    bench_error("%zu of %zu sign ops still unfinished %.0f s after the phase "
                "ended",
                ph.issued - (size_t)bench_counter_get(&ph.done), ph.issued,
                (double)ISO_DRAIN_TIMEOUT_NS / 1e9);
    rc = ORDO_E_TIMEOUT;
    goto done;
  }

  /* The issuer's own lateness is part of every latency; shown apart (and
   * taken out, in the service time) it tells a noisy machine (late timer
   * wake-ups, a paused VM) from a stalled executor. */
  for (i = 0; i < ph.issued; i++) {
    const sign_slot *s = &ph.slots[i];
    size_t k = res->n++;
    res->lat_ns[k] = s->done_ns > s->sched_ns ? s->done_ns - s->sched_ns : 0;
    res->svc_ns[k] = s->done_ns > s->issued_ns ? s->done_ns - s->issued_ns : 0;
    res->lag_ns[k] = s->issued_ns > s->sched_ns ? s->issued_ns - s->sched_ns : 0;
    if (s->status != ORDO_OK) {
      if (res->failed++ == 0)
        res->first_error = s->status;
    }
  }

done:
  if (have_heavy && !heavy_stopped) {
    int src = heavy_stop(&heavy, ISO_STOP_TIMEOUT_NS);
    if (rc == ORDO_OK)
      rc = src;
  }
  /* Frees only after every callback has been delivered (ordo_ctx_free
   * guarantees that), since callbacks write into slots and heavy. */
  ordo_ctx_free(ph.ctx);
  if (have_heavy) {
    res->primes += heavy.found;
    if (heavy.failed > 0 && res->heavy_failed == 0)
      res->heavy_error = heavy.first_error;
    res->heavy_failed += heavy.failed;
    heavy_destroy(&heavy);
  }
  bench_counter_destroy(&ph.done);
  free(ph.slots);
  return rc;
}

static int iso_result_init(iso_result *r, size_t cap) {
  memset(r, 0, sizeof *r);
  r->cap = cap;
  r->lat_ns = calloc(cap ? cap : 1, sizeof *r->lat_ns);
  r->svc_ns = calloc(cap ? cap : 1, sizeof *r->svc_ns);
  r->lag_ns = calloc(cap ? cap : 1, sizeof *r->lag_ns);
  if (r->lat_ns == NULL || r->svc_ns == NULL || r->lag_ns == NULL) {
    bench_error("out of memory for %zu samples", cap);
    return ORDO_E_NOMEM;
  }
  return ORDO_OK;
}

/* Stats of every segment's samples together. */
static void iso_result_finish(iso_result *r) {
  bench_stats_of(r->lat_ns, r->n, &r->st);
  bench_stats_of(r->svc_ns, r->n, &r->svc);
  bench_stats_of(r->lag_ns, r->n, &r->lag);
}

static void iso_result_free(iso_result *r) {
  free(r->lat_ns);
  free(r->svc_ns);
  free(r->lag_ns);
  r->lat_ns = r->svc_ns = r->lag_ns = NULL;
}

/* ------------------------------------------------------------------------ */
/* Report                                                                    */
/* ------------------------------------------------------------------------ */

static const char *const iso_titles[] = {"phase",      "ops",    "p50_us",
                                         "p99_us",     "max_us", "svc_p99_us",
                                         "lag_p99_us", "primes"};
static const int iso_widths[] = {26, 5, 10, 10, 10, 10, 10, 6};
static const bench_table iso_table = {iso_titles, iso_widths, 8, 1};

static void iso_print_row(const char *name, const iso_result *r, int heavy) {
  char ops[32], p50[32], p99[32], max[32], svc[32], lag[32], primes[32];
  const char *cells[8] = {name, ops, p50, p99, max, svc, lag, primes};

  snprintf(ops, sizeof ops, "%zu", r->st.count);
  snprintf(p50, sizeof p50, "%.1f", r->st.p50_us);
  snprintf(p99, sizeof p99, "%.1f", r->st.p99_us);
  snprintf(max, sizeof max, "%.1f", r->st.max_us);
  snprintf(svc, sizeof svc, "%.1f", r->svc.p99_us);
  snprintf(lag, sizeof lag, "%.1f", r->lag.p99_us);
  if (heavy)
    snprintf(primes, sizeof primes, "%lu", r->primes);
  else
    snprintf(primes, sizeof primes, "-");
  bench_table_row(stdout, &iso_table, cells);
}

static int iso_json_phase(json_t *o, const char *prefix, const iso_result *r) {
  char key[64];
  int rc = 0;

#define ISO_KEY(suffix)                                                        \
  (snprintf(key, sizeof key, "%s_%s", prefix, suffix), key)
  rc |= bench_json_num(o, ISO_KEY("p50_us"), r->st.p50_us, 1);
  rc |= bench_json_num(o, ISO_KEY("p99_us"), r->st.p99_us, 1);
  rc |= bench_json_num(o, ISO_KEY("max_us"), r->st.max_us, 1);
  rc |= bench_json_num(o, ISO_KEY("count"), (double)r->st.count, 0);
  rc |= bench_json_num(o, ISO_KEY("service_p99_us"), r->svc.p99_us, 1);
  rc |= bench_json_num(o, ISO_KEY("issue_lag_p99_us"), r->lag.p99_us, 1);
  rc |=
      bench_json_num(o, ISO_KEY("queued_at_end"), (double)r->queued_at_end, 0);
#undef ISO_KEY
  return rc;
}

static double ratio_of(double a, double b) { return b > 0 ? a / b : 0; }

static int iso_run(const bench_opts *opts, json_t **out) {
  double seconds = opts->seconds > 0 ? opts->seconds : ISO_DEFAULT_SECONDS;
  double rate = opts->rate > 0 ? opts->rate : ISO_DEFAULT_RATE;
  ordo_config cfg, base;
  iso_result idle, loaded, baseline;
  bench_signer signer;
  unsigned heavy_ops;
  double ratio, base_ratio, seg;
  size_t per_phase;
  unsigned r;
  json_t *o;
  int rc, err = 0, ret = ORDO_CLI_FAIL;

  if (seconds * rate > ISO_MAX_OPS) {
    bench_error("--seconds x --rate is over %u ops per phase", ISO_MAX_OPS);
    return ORDO_CLI_USAGE;
  }
  memset(&idle, 0, sizeof idle);
  memset(&loaded, 0, sizeof loaded);
  memset(&baseline, 0, sizeof baseline);
  if ((rc = bench_signer_init(&signer)) != ORDO_OK) {
    bench_error("cannot make a signing key: %s", ordo_errname(rc));
    return ORDO_CLI_FAIL;
  }
  ordo_config_init(&cfg);
  /* The libindy model: one executor thread runs everything. */
  base = cfg;
  base.single_executor = 1;
  base.cheap_threads = 1;
  /* Keep every heavy thread of the real configuration busy, and put the same
   * load on the baseline. */
  heavy_ops = cfg.heavy_threads;

  if (!opts->json) {
    printf("ordo bench isolation: ed25519 sign of %d B on the cheap class, "
           "%g ops/s open loop, %g s per phase\n",
           BENCH_SIGN_MSG_BYTES, rate, seconds);
    printf("cores: %ld; cheap threads: %u; heavy threads: %u; heavy load: "
           "%u safe-prime search(es) of %d bits in flight\n\n",
           bench_cores(), cfg.cheap_threads, cfg.heavy_threads, heavy_ops,
           ISO_HEAVY_BITS);
    bench_table_header(stdout, &iso_table);
  }
  /* Idle and loaded alternate in short segments, so that the machine's
   * noise (a busy neighbour, a paused VM) falls on both alike instead of
   * deciding the ratio by which phase it happened to hit. */
  seg = seconds / ISO_ROUNDS;
  per_phase = (size_t)ceil(seg * rate) * ISO_ROUNDS;
  if ((rc = iso_result_init(&idle, per_phase)) != ORDO_OK ||
      (rc = iso_result_init(&loaded, per_phase)) != ORDO_OK ||
      (rc = iso_result_init(&baseline, (size_t)ceil(seconds * rate))) != ORDO_OK)
    goto fail;
  for (r = 0; r < ISO_ROUNDS; r++) {
    if ((rc = iso_phase_run(&cfg, 0, seg, rate, &signer, &idle)) != ORDO_OK ||
        (rc = iso_phase_run(&cfg, heavy_ops, seg, rate, &signer, &loaded)) !=
            ORDO_OK)
      goto fail;
  }
  iso_result_finish(&idle);
  iso_result_finish(&loaded);
  if (!opts->json) {
    iso_print_row("idle (ordo)", &idle, 0);
    iso_print_row("loaded (ordo)", &loaded, 1);
  }
  if ((rc = iso_phase_run(&base, heavy_ops, seconds, rate, &signer,
                          &baseline)) != ORDO_OK)
    goto fail;
  iso_result_finish(&baseline);
  if (!opts->json)
    iso_print_row("loaded (baseline: libindy)", &baseline, 1);
  bench_signer_wipe(&signer);

  ratio = ratio_of(loaded.st.p99_us, idle.st.p99_us);
  base_ratio = ratio_of(baseline.st.p99_us, idle.st.p99_us);
  if (!opts->json) {
    printf("\nlatency (p50/p99/max) = completion - scheduled issue time\n"
           "svc = completion - actual issue time; lag = how late the issuer "
           "woke (machine noise, part of the latency)\n");
    printf("p99 ratio loaded/idle:          %.2f (goal <= 1.5)\n", ratio);
    printf("baseline p99 ratio loaded/idle: %.2f (one shared executor: "
           "signatures wait behind the search)\n",
           base_ratio);
    if (baseline.drained_by_cancel)
      printf("note: baseline signatures were still queued %g s after the "
             "phase; the searches were cancelled to drain them\n",
             fmax(1.0, seconds));
  }

  if ((o = json_object()) == NULL) {
    bench_error("out of memory");
    goto out;
  }
  err |= bench_json_num(o, "idle_p99_us", idle.st.p99_us, 1);
  err |= bench_json_num(o, "loaded_p99_us", loaded.st.p99_us, 1);
  err |= bench_json_num(o, "ratio", ratio, 3);
  err |= bench_json_num(o, "baseline_loaded_p99_us", baseline.st.p99_us, 1);
  err |= bench_json_num(o, "baseline_ratio", base_ratio, 3);
  err |= iso_json_phase(o, "idle", &idle);
  err |= iso_json_phase(o, "loaded", &loaded);
  err |= iso_json_phase(o, "baseline_loaded", &baseline);
  err |= bench_json_num(o, "loaded_primes", (double)loaded.primes, 0);
  err |= bench_json_num(o, "baseline_primes", (double)baseline.primes, 0);
  err |= json_object_set_new(o, "baseline_drained_by_cancel",
                             json_boolean(baseline.drained_by_cancel));
  err |= bench_json_num(o, "cores", (double)bench_cores(), 0);
  err |= bench_json_num(o, "cheap_threads", cfg.cheap_threads, 0);
  err |= bench_json_num(o, "heavy_threads", cfg.heavy_threads, 0);
  err |= bench_json_num(o, "heavy_bits", ISO_HEAVY_BITS, 0);
  err |= bench_json_num(o, "rate", rate, 3);
  err |= bench_json_num(o, "seconds", seconds, 3);
  if (err) {
    json_decref(o);
    bench_error("out of memory");
    goto out;
  }

  /* Numbers are only meaningful if every op did its work. */
  if (idle.failed + loaded.failed + baseline.failed > 0) {
    int first = idle.failed     ? idle.first_error
                : loaded.failed ? loaded.first_error
                                : baseline.first_error;
    bench_error("%zu sign op(s) failed (first: %s)",
                idle.failed + loaded.failed + baseline.failed,
                ordo_errname(first));
    json_decref(o);
    goto out;
  }
  if (loaded.heavy_failed + baseline.heavy_failed > 0) {
    bench_error("%lu heavy op(s) failed (first: %s)",
                loaded.heavy_failed + baseline.heavy_failed,
                ordo_errname(loaded.heavy_failed ? loaded.heavy_error
                                                 : baseline.heavy_error));
    json_decref(o);
    goto out;
  }
  *out = o;
  ret = ORDO_CLI_OK;
  goto out;

fail:
  bench_signer_wipe(&signer);
  bench_error("isolation failed: %s", ordo_errname(rc));
out:
  iso_result_free(&idle);
  iso_result_free(&loaded);
  iso_result_free(&baseline);
  return ret;
}

const bench_def bench_isolation_def = {
    "isolation",
    "cheap-op latency idle, next to heavy work, and on a libindy-style "
    "single executor (HIPE 0012)",
    "  --rate R       isolation: sign ops issued per second (default 500)\n",
    BENCH_FLAG_RATE,
    iso_run,
};

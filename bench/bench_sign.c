/*
 * bench_sign.c — `ordo bench sign`: how the signature primitives scale with
 * threads. ed25519 sign and verify (libsodium) and secp256k1 sign and verify
 * (libsecp256k1, SHA-256 of the message first, as Sawtooth signs), each over
 * a 256-byte message, at each thread count.
 *
 * Plain pthreads, not ordo executors: each thread calls the primitive in a
 * loop until its own deadline, so the numbers are the primitives' own
 * scaling (shared state, memory bandwidth, cores) with no queueing in them;
 * `ordo bench scaling` measures the cheap executor on top. The threads start
 * together (a start gate); each measures its own elapsed time, and a point's
 * rate is the sum of the threads' rates. Ratio to linear is
 * ops_s(N) / (N * ops_s(first point) / first point's threads); past the core
 * count it must fall.
 */
#include "bench.h"

#include <stdlib.h>
#include <string.h>

#define SIGN_DEFAULT_SECONDS 1.0

static const unsigned sign_default_threads[] = {1, 2, 4, 8, 16};

typedef enum sign_op {
  SIGN_ED25519_SIGN,
  SIGN_ED25519_VERIFY,
  SIGN_SECP256K1_SIGN,
  SIGN_SECP256K1_VERIFY,
  SIGN_NOPS
} sign_op;

static const char *const sign_op_names[SIGN_NOPS] = {
    "ed25519_sign", "ed25519_verify", "secp256k1_sign", "secp256k1_verify"};

/* Keys, message and one valid signature of each kind, made once. */
typedef struct sign_material {
  unsigned char msg[BENCH_SIGN_MSG_BYTES];
  unsigned char ed_pk[ORDO__ED25519_PUBLIC_BYTES];
  unsigned char ed_sk[ORDO__ED25519_SECRET_BYTES];
  unsigned char ed_sig[ORDO__ED25519_SIG_BYTES];
  unsigned char secp_sk[ORDO__SECP256K1_SECRET_BYTES];
  unsigned char secp_pub[ORDO__SECP256K1_PUBLIC_BYTES];
  unsigned char secp_sig[ORDO__SECP256K1_SIG_BYTES];
} sign_material;

/* Holds the threads of a point until all exist: go is 0 while they are
 * being created, 1 to run, -1 to leave without running (a creation failed). */
typedef struct sign_start {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int go;
} sign_start;

typedef struct sign_worker {
  const sign_material *m;
  sign_op op;
  double seconds;
  sign_start *start;
  uint64_t ops;        /* out */
  uint64_t elapsed_ns; /* out */
  int rc;              /* out: first failure, ORDO_OK if none */
} sign_worker;

/* One call of the primitive; a signature that fails to verify is an error
 * here (the material is valid), reported as ORDO_E_CRYPTO. */
static int sign_once(const sign_material *m, sign_op op) {
  unsigned char sig[ORDO__ED25519_SIG_BYTES];
  int valid = 0, rc;

  switch (op) {
  case SIGN_ED25519_SIGN:
    return ordo__crypto_ed25519_sign(m->ed_sk, m->msg, sizeof m->msg, sig);
  case SIGN_ED25519_VERIFY:
    rc = ordo__crypto_ed25519_verify(m->ed_pk, m->msg, sizeof m->msg, m->ed_sig,
                                     &valid);
    break;
  case SIGN_SECP256K1_SIGN:
    return ordo__crypto_secp256k1_sign_sha256(m->secp_sk, m->msg, sizeof m->msg,
                                              sig);
  case SIGN_SECP256K1_VERIFY:
    rc = ordo__crypto_secp256k1_verify_sha256(
        m->secp_pub, m->msg, sizeof m->msg, m->secp_sig, &valid);
    break;
  default:
    return ORDO_E_INVAL;
  }
  if (rc == ORDO_OK && !valid)
    rc = ORDO_E_CRYPTO;
  return rc;
}

static void *sign_thread(void *arg) {
  sign_worker *w = arg;
  uint64_t t0, now = 0, deadline;
  int go;

  /* Every thread is created before any starts: creation is not measured. */
  pthread_mutex_lock(&w->start->mu);
  while ((go = w->start->go) == 0)
    pthread_cond_wait(&w->start->cv, &w->start->mu);
  pthread_mutex_unlock(&w->start->mu);
  if (go < 0)
    return NULL;

  t0 = bench_now_ns();
  deadline = t0 + (uint64_t)(w->seconds * 1e9);
  do {
    if ((w->rc = sign_once(w->m, w->op)) != ORDO_OK)
      break;
    w->ops++;
    now = bench_now_ns();
  } while (now < deadline);
  w->elapsed_ns = bench_now_ns() - t0;
  return NULL;
}

/* One point: n threads running op for `seconds`; *ops_s is their sum. */
static int sign_point(const sign_material *m, sign_op op, unsigned n,
                      double seconds, double *ops_s) {
  sign_worker *w = calloc(n, sizeof *w);
  pthread_t *tids = calloc(n, sizeof *tids);
  sign_start start = {.go = 0};
  unsigned i, started = 0;
  int rc = ORDO_E_NOMEM;

  *ops_s = 0;
  if (w == NULL || tids == NULL)
    goto done;
  rc = ORDO_E_SYSTEM;
  if (pthread_mutex_init(&start.mu, NULL) != 0)
    goto done;
  if (pthread_cond_init(&start.cv, NULL) != 0) {
    pthread_mutex_destroy(&start.mu);
    goto done;
  }
  rc = ORDO_OK;
  for (i = 0; i < n; i++) {
    w[i] = (sign_worker){.m = m, .op = op, .seconds = seconds, .start = &start};
    if (pthread_create(&tids[i], NULL, sign_thread, &w[i]) != 0) {
      rc = ORDO_E_SYSTEM;
      break;
    }
    started++;
  }
  pthread_mutex_lock(&start.mu);
  start.go = rc == ORDO_OK ? 1 : -1;
  pthread_cond_broadcast(&start.cv);
  pthread_mutex_unlock(&start.mu);
  for (i = 0; i < started; i++)
    pthread_join(tids[i], NULL);
  pthread_cond_destroy(&start.cv);
  pthread_mutex_destroy(&start.mu);

  for (i = 0; i < started && rc == ORDO_OK; i++) {
    if (w[i].rc != ORDO_OK)
      rc = w[i].rc;
    else if (w[i].elapsed_ns > 0)
      *ops_s += (double)w[i].ops / ((double)w[i].elapsed_ns / 1e9);
  }

done:
  free(w);
  free(tids);
  return rc;
}

static int sign_material_init(sign_material *m) {
  size_t i;
  int rc;

  for (i = 0; i < sizeof m->msg; i++)
    m->msg[i] = (unsigned char)i;
  if ((rc = ordo__crypto_ed25519_keypair(NULL, m->ed_pk, m->ed_sk)) !=
          ORDO_OK ||
      (rc = ordo__crypto_ed25519_sign(m->ed_sk, m->msg, sizeof m->msg,
                                      m->ed_sig)) != ORDO_OK ||
      (rc = ordo__crypto_secp256k1_keypair(m->secp_sk, m->secp_pub)) !=
          ORDO_OK ||
      (rc = ordo__crypto_secp256k1_sign_sha256(
           m->secp_sk, m->msg, sizeof m->msg, m->secp_sig)) != ORDO_OK)
    return rc;
  return ORDO_OK;
}

static void sign_material_wipe(sign_material *m) {
  ordo__crypto_memzero(m->ed_sk, sizeof m->ed_sk);
  ordo__crypto_memzero(m->secp_sk, sizeof m->secp_sk);
}

static const char *const sign_titles[] = {"op", "threads", "ops/s", "speedup",
                                          "linear"};
static const int sign_widths[] = {16, 7, 10, 8, 7};
static const bench_table sign_table = {sign_titles, sign_widths, 5, 1};

static int sign_run(const bench_opts *opts, json_t **out) {
  double seconds = opts->seconds > 0 ? opts->seconds : SIGN_DEFAULT_SECONDS;
  const unsigned *threads =
      opts->nthreads ? opts->threads : sign_default_threads;
  size_t npoints = opts->nthreads ? opts->nthreads
                                  : sizeof sign_default_threads /
                                        sizeof sign_default_threads[0];
  long cores = bench_cores();
  sign_material m;
  json_t *o = NULL, *points = NULL;
  int rc, beyond = 0;
  size_t i;
  sign_op op;

  if ((rc = sign_material_init(&m)) != ORDO_OK) {
    sign_material_wipe(&m);
    bench_error("cannot make signing keys: %s", ordo_errname(rc));
    return ORDO_CLI_FAIL;
  }
  if ((o = json_object()) == NULL || (points = json_array()) == NULL ||
      bench_json_num(o, "cores", (double)cores, 0) != ORDO_OK ||
      bench_json_num(o, "seconds", seconds, 3) != ORDO_OK)
    goto nomem;

  if (!opts->json) {
    printf("ordo bench sign: signature primitives over %d B messages, plain "
           "pthreads in a closed loop, %g s per point\n",
           BENCH_SIGN_MSG_BYTES, seconds);
    printf("cores: %ld\n\n", cores);
    bench_table_header(stdout, &sign_table);
  }
  for (op = 0; op < SIGN_NOPS; op++) {
    double base_ops = 0, base_per_thread = 0;

    for (i = 0; i < npoints; i++) {
      double ops_s, speedup, linear;

      if ((rc = sign_point(&m, op, threads[i], seconds, &ops_s)) != ORDO_OK) {
        bench_error("%s failed at %u threads: %s", sign_op_names[op],
                    threads[i], ordo_errname(rc));
        sign_material_wipe(&m);
        json_decref(points);
        json_decref(o);
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
        char c1[16], c2[32], c3[16], c4[16];
        const char *cells[5] = {sign_op_names[op], c1, c2, c3, c4};
        snprintf(c1, sizeof c1, "%u", threads[i]);
        snprintf(c2, sizeof c2, "%.0f", ops_s);
        snprintf(c3, sizeof c3, "%.2f", speedup);
        snprintf(c4, sizeof c4, "%.2f", linear);
        bench_table_row(stdout, &sign_table, cells);
      }
      if (bench_scaling_point(points, sign_op_names[op], threads[i], ops_s,
                              speedup, linear) != ORDO_OK)
        goto nomem;
    }
  }
  sign_material_wipe(&m);
  if (!opts->json)
    bench_scaling_legend("the op's first point", beyond, cores);
  if (json_object_set_new(o, "points", points) != 0) {
    points = NULL; /* taken even on failure */
    goto nomem;
  }
  *out = o;
  return ORDO_CLI_OK;

nomem:
  sign_material_wipe(&m);
  json_decref(points);
  json_decref(o);
  bench_error("out of memory");
  return ORDO_CLI_FAIL;
}

const bench_def bench_sign_def = {
    "sign",
    "ed25519 and secp256k1 sign/verify ops/s at 1, 2, 4, 8, 16 threads",
    "  --threads L    sign: thread counts, comma-separated (default "
    "1,2,4,8,16);\n"
    "                 --seconds is per op and thread count (default 1)\n",
    BENCH_FLAG_THREADS,
    sign_run,
};

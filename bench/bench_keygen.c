/*
 * bench_keygen.c — `ordo bench keygen`: what one credential-definition key
 * costs. N CL key generations (two safe primes of B bits, S, Z, one R per
 * attribute plus master_secret, and the key-correctness proof) run one after
 * another on the calling thread, outside any context, so the figure is the
 * computation alone; on the heavy class it takes as long again per op, plus
 * whatever the lowered priority cedes to other work. The prime search is a
 * random walk, so single runs vary by several times: min, median and max are
 * reported.
 */
#include "bench.h"

#include <stdlib.h>
#include <string.h>

#define KEYGEN_DEFAULT_COUNT 10
#define KEYGEN_DEFAULT_BITS 1025 /* the prime size of Indy's CL keys */

/* A small schema, as a credential definition would have. */
static const char *const keygen_attrs[] = {"name", "age", "sex", "height"};
#define KEYGEN_NATTRS (sizeof keygen_attrs / sizeof keygen_attrs[0])

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* One keygen, timed; the keys are verified (a benchmark of wrong keys would
 * be worthless) and dropped. */
static int keygen_once(int bits, double *seconds) {
  char *pub = NULL, *priv = NULL, *proof = NULL;
  uint64_t t0 = bench_now_ns();
  int rc = ordo__crypto_cl_keygen(bits, keygen_attrs, KEYGEN_NATTRS, &pub,
                                  &priv, &proof);

  *seconds = (double)(bench_now_ns() - t0) / 1e9;
  if (rc == ORDO_OK)
    rc = ordo__crypto_cl_verify_proof(pub, proof);
  free(pub);
  free(proof);
  ordo__free_secret(priv);
  return rc;
}

static const char *const keygen_titles[] = {"run", "seconds"};
static const int keygen_widths[] = {5, 9};
static const bench_table keygen_table = {keygen_titles, keygen_widths, 2, 0};

static int keygen_run(const bench_opts *opts, json_t **out) {
  unsigned count = opts->count > 0 ? opts->count : KEYGEN_DEFAULT_COUNT, i;
  int bits = opts->bits > 0 ? opts->bits : KEYGEN_DEFAULT_BITS, rc;
  double *t = calloc(count, sizeof *t), median;
  json_t *o = NULL;

  if (t == NULL) {
    bench_error("out of memory");
    return ORDO_CLI_FAIL;
  }
  if (!opts->json) {
    printf("ordo bench keygen: %u CL credential-definition key(s) with proof, "
           "%d-bit safe primes, %zu attributes + master_secret, one at a "
           "time on one thread\n\n",
           count, bits, KEYGEN_NATTRS);
    bench_table_header(stdout, &keygen_table);
  }
  for (i = 0; i < count; i++) {
    if ((rc = keygen_once(bits, &t[i])) != ORDO_OK) {
      bench_error("keygen %u failed: %s", i + 1, ordo_errname(rc));
      free(t);
      return ORDO_CLI_FAIL;
    }
    if (!opts->json) {
      char c0[16], c1[32];
      const char *cells[2] = {c0, c1};
      snprintf(c0, sizeof c0, "%u", i + 1);
      snprintf(c1, sizeof c1, "%.3f", t[i]);
      bench_table_row(stdout, &keygen_table, cells);
    }
  }
  qsort(t, count, sizeof *t, cmp_double);
  median = count % 2 ? t[count / 2] : (t[count / 2 - 1] + t[count / 2]) / 2;
  if (!opts->json)
    printf("\nmin %.3f s, median %.3f s, max %.3f s\n", t[0], median,
           t[count - 1]);

  if ((o = json_object()) == NULL ||
      bench_json_num(o, "count", count, 0) != ORDO_OK ||
      bench_json_num(o, "bits", bits, 0) != ORDO_OK ||
      bench_json_num(o, "min_s", t[0], 4) != ORDO_OK ||
      bench_json_num(o, "median_s", median, 4) != ORDO_OK ||
      bench_json_num(o, "max_s", t[count - 1], 4) != ORDO_OK) {
    json_decref(o);
    free(t);
    bench_error("out of memory");
    return ORDO_CLI_FAIL;
  }
  free(t);
  *out = o;
  return ORDO_CLI_OK;
}

const bench_def bench_keygen_def = {
    "keygen",
    "time of CL credential-definition key generations (min/median/max)",
    "  --count N      keygen: how many keys (default 10)\n"
    "  --bits B       keygen: safe-prime size, 256..4096 (default 1025)\n",
    BENCH_FLAG_COUNT | BENCH_FLAG_BITS,
    keygen_run,
};

/*
 * generate.c — synthetic workload files (what `ordo workload` writes), for
 * the end-to-end tests, `ordo bench e2e` and `ordo run`: seeded, so a run
 * can be repeated.
 *
 * Each service has its own keys (each ending in '/', so that no key is a
 * prefix of another: the queuer reads an address as standing for every
 * address it is a prefix of). A batch writes a key of its own; with
 * probability `conflict` it also reads and writes one of the service's few
 * shared keys (so such batches conflict with each other, as a balance
 * updated by many transfers does); with probability `hot_read` it reads one
 * identity key every service reads (Grid's Pike: read by all, written by
 * none, so it must never serialise anything); with probability `deps` it
 * names an earlier batch of its service as a dep; with probability
 * `invalid` the ledger is to reject it.
 */
#include "queue/queue.h"
#include "runtime/runtime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SHARED_KEYS 8
#define RECENT 8 /* a dep names one of the service's last RECENT batches */

void ordo_workload_gen_init(ordo_workload_gen *g) {
  memset(g, 0, sizeof(*g));
  g->services = 20;
  g->batches = 2000;
  g->conflict = 0.3;
  g->seed = 1;
}

/* splitmix64: small, seeded, the same on every machine. */
static uint64_t gen_next(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static double gen_unit(uint64_t *s) {
  return (double)(gen_next(s) >> 11) / 9007199254740992.0;
}

int ordo_workload_generate(const ordo_workload_gen *g, FILE *out) {
  uint64_t s = g->seed * 0x2545f4914f6cdd1dull + 1;
  size_t *count, *recent, i;

  if (out == NULL || g->services == 0 || g->services > 100000 ||
      g->batches > 100000000 || g->conflict < 0 || g->conflict > 1 ||
      g->hot_read < 0 || g->hot_read > 1 || g->invalid < 0 ||
      g->invalid > 1 || g->deps < 0 || g->deps > 1)
    return ordo__set_last_error(ORDO_E_INVAL, "workload generator: services "
                                "1..100000, batches up to 10^8, probabilities "
                                "in 0..1");
  count = calloc(g->services, sizeof(*count));
  recent = calloc(g->services * RECENT, sizeof(*recent));
  if (count == NULL || recent == NULL) {
    free(count);
    free(recent);
    return ordo__set_last_error(ORDO_E_NOMEM, NULL);
  }
  for (i = 0; i < g->batches; i++) {
    size_t svc = (size_t)(gen_next(&s) % g->services);
    int shared = gen_unit(&s) < g->conflict;
    int hot = gen_unit(&s) < g->hot_read;
    int dep = count[svc] > 0 && gen_unit(&s) < g->deps;
    int bad = gen_unit(&s) < g->invalid;
    unsigned key = (unsigned)(gen_next(&s) % SHARED_KEYS);
    size_t *mine = &recent[svc * RECENT];

    fprintf(out, "{\"id\":\"b%zu\",\"service\":\"s%zu\",\"reads\":[", i, svc);
    if (shared)
      fprintf(out, "\"s%zu/shared/%u/\"", svc, key);
    if (hot)
      fprintf(out, "%s\"identity\"", shared ? "," : "");
    fprintf(out, "],\"writes\":[\"s%zu/own/%zu/\"", svc, i);
    if (shared)
      fprintf(out, ",\"s%zu/shared/%u/\"", svc, key);
    fputc(']', out);
    if (dep) {
      size_t have = count[svc] < RECENT ? count[svc] : RECENT;
      size_t pick = (size_t)(gen_next(&s) % have);
      fprintf(out, ",\"deps\":[\"b%zu\"]", mine[pick]);
    }
    if (bad)
      fputs(",\"outcome\":\"invalid\"", out);
    fputs("}\n", out);
    mine[count[svc] % RECENT] = i;
    count[svc]++;
  }
  free(count);
  free(recent);
  return ferror(out) ? ordo__set_last_error(ORDO_E_IO, "write error")
                     : ORDO_OK;
}

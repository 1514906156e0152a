/*
 * workload.c — `ordo workload`: the command line of the synthetic workload
 * generator (queue.h, ordo_workload_generate), the file on stdout.
 */
#include "cli/cli.h"
#include "queue/queue.h"
#include "ordo.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* `ordo workload [--services N] [--batches N] [--conflict P] [--hot-read P]
 * [--invalid P] [--deps P] [--seed S]`: the file on stdout. */
static void gen_usage(FILE *f) {
  fputs("usage: ordo workload [--services N] [--batches N] [--conflict P]\n"
        "                     [--hot-read P] [--invalid P] [--deps P] [--seed S]\n"
        "\n"
        "Write a synthetic workload file (JSON Lines) to stdout. Each batch\n"
        "writes a key of its own; with probability --conflict (0.3) it also\n"
        "reads and writes one of its service's 8 shared keys; --hot-read (0)\n"
        "reads one identity key every service reads; --deps (0) names one of\n"
        "the service's last 8 batches as a dep; --invalid (0) marks it for\n"
        "the ledger to reject. Defaults: 20 services, 2000 batches, seed 1.\n"
        "\n"
        "Exit status: 0 ok, 2 bad usage.\n",
        f);
}

int ordo__cli_workload_flag(ordo_workload_gen *g, const char *k,
                            const char *v) {
  char *end = NULL;
  if (strcmp(k, "--services") == 0)
    g->services = (size_t)strtoull(v, &end, 10);
  else if (strcmp(k, "--batches") == 0)
    g->batches = (size_t)strtoull(v, &end, 10);
  else if (strcmp(k, "--seed") == 0)
    g->seed = strtoull(v, &end, 10);
  else if (strcmp(k, "--conflict") == 0)
    g->conflict = strtod(v, &end);
  else if (strcmp(k, "--hot-read") == 0)
    g->hot_read = strtod(v, &end);
  else if (strcmp(k, "--invalid") == 0)
    g->invalid = strtod(v, &end);
  else if (strcmp(k, "--deps") == 0)
    g->deps = strtod(v, &end);
  else
    return 0;
  /* strtoull reads "-1" as a huge count: a sign is refused too. */
  return end == v || *end != '\0' || v[0] == '-' ? -1 : 1;
}

int ordo__workload_main(int argc, char **argv) {
  ordo_workload_gen g;
  ordo_workload_gen_init(&g);
  /* Every flag takes a value: they come in pairs. */
  for (int i = 1; i < argc; i += 2) {
    const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    int got;
    if (ordo__cli_help(k, gen_usage))
      return ORDO_CLI_OK;
    if (v == NULL || (got = ordo__cli_workload_flag(&g, k, v)) == 0)
      return ordo__cli_unknown(stderr, "ordo workload", k, gen_usage);
    if (got < 0)
      return ordo__cli_bad_value(stderr, "ordo workload", v, k);
  }
  if (ordo_workload_generate(&g, stdout) != ORDO_OK) {
    fprintf(stderr, "ordo workload: %s\n", ordo_last_error_message());
    return ordo_last_error() == ORDO_E_INVAL ? ORDO_CLI_USAGE : ORDO_CLI_FAIL;
  }
  return fflush(stdout) == 0 ? ORDO_CLI_OK : ORDO_CLI_FAIL;
}

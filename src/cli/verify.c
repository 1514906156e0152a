/*
 * verify.c — `ordo verify`: the command line of ledger/submit.h's
 * ordo__verify_run, which does the work.
 */
#include "cli/cli.h"
#include "ledger/submit.h"

#include <stdio.h>
#include <string.h>

static void verify_usage(FILE *f) {
  fputs("usage: ordo verify --workload FILE --ledger URL --data DIR\n"
        "                   [--family ordo-rw|intkey|mixed] [--json]\n"
        "\n"
        "Replay the workload serially in submission order on a fresh state,\n"
        "skipping the batches the ledger reports invalid (and those it never\n"
        "saw: the cascade of an invalid dep), and compare with the ledger's\n"
        "state in the family's namespace. DIR is the `ordo submit` data\n"
        "directory: its journal holds the exact signed batches.\n"
        "\n"
        "  --workload FILE  the workload that was submitted\n"
        "  --ledger URL     the ledger's REST API\n"
        "  --data DIR       the data directory of `ordo submit`\n"
        "  --family F       ordo-rw (default), intkey or mixed (as submitted)\n"
        "  --json           {\"equal\":…,\"differences\":[…],…}\n"
        "  -h, --help       show this help\n"
        "\n"
        "Exit status: 0 the states are equal, 1 they differ (an order\n"
        "violation) or the check failed, 2 bad usage or input.\n",
        f);
}

int ordo__verify_main(int argc, char **argv) {
  ordo__verify_opts o = {.family = ORDO_LEDGER_RW_FAMILY};

  for (int i = 1; i < argc; i++) {
    const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (ordo__cli_help(k, verify_usage))
      return ORDO_CLI_OK;
    if (strcmp(k, "--json") == 0) {
      o.json = 1;
      continue;
    } else if (v != NULL && strcmp(k, "--workload") == 0) {
      o.file = v;
    } else if (v != NULL && strcmp(k, "--ledger") == 0) {
      o.url = v;
    } else if (v != NULL && strcmp(k, "--data") == 0) {
      o.dir = v;
    } else if (v != NULL && strcmp(k, "--family") == 0) {
      o.family = v;
    } else {
      return ordo__cli_unknown(stderr, "ordo verify", k, verify_usage);
    }
    i++;
  }
  if (o.file == NULL || o.url == NULL || o.dir == NULL) {
    fputs("ordo verify: --workload, --ledger and --data are required\n",
          stderr);
    return ORDO_CLI_USAGE;
  }
  /* ordo__verify_run's outcomes are exit statuses (see submit.c). */
  return ordo__verify_run(&o);
}

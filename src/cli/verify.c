/*
 * verify.c — `ordo verify`: the command line of ledger/submit.h's
 * ordo__verify_run, which does the work.
 */
#include "cli/cli.h"
#include "cluster/cluster.h"
#include "ledger/submit.h"

#include <stdio.h>
#include <string.h>

static void verify_usage(FILE *f) {
  fputs("usage: ordo verify --workload FILE --ledger URL --data DIR\n"
        "                   [--family ordo-rw|intkey|mixed] [--cluster]\n"
        "                   [--json]\n"
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
        "  --cluster        DIR is the PostgreSQL database of `ordo serve\n"
        "                   --cluster` instances: the signed batches are\n"
        "                   read from their shared queue\n"
        "  --queue NAME     that queue's name (default queue; implies\n"
        "                   --cluster)\n"
        "  --json           {\"equal\":…,\"differences\":[…],…}\n"
        "  -h, --help       show this help\n"
        "\n"
        "Exit status: 0 the states are equal, 1 they differ (an order\n"
        "violation) or the check failed, 2 bad usage or input.\n",
        f);
}

static int reader_payload(void *ud, const char *id, unsigned char **pl,
                          size_t *len) {
  return ordo_cluster_reader_payload(ud, id, pl, len);
}

int ordo__verify_main(int argc, char **argv) {
  ordo__verify_opts o = {.family = ORDO_LEDGER_RW_FAMILY};
  ordo_cluster_reader *reader = NULL;
  int cluster = 0, rc;
  const char *queue = NULL;

  for (int i = 1; i < argc; i++) {
    const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (ordo__cli_help(k, verify_usage))
      return ORDO_CLI_OK;
    if (strcmp(k, "--json") == 0) {
      o.json = 1;
      continue;
    } else if (strcmp(k, "--cluster") == 0) {
      cluster = 1;
      continue;
    } else if (v != NULL && strcmp(k, "--workload") == 0) {
      o.file = v;
    } else if (v != NULL && strcmp(k, "--ledger") == 0) {
      o.url = v;
    } else if (v != NULL && strcmp(k, "--data") == 0) {
      o.dir = v;
    } else if (v != NULL && strcmp(k, "--queue") == 0) {
      queue = v;
      cluster = 1;
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
  if (cluster) {
    /* The shared queue of `ordo serve --cluster` instances: each signed
     * batch as it was enqueued. */
    if (ordo_cluster_reader_open(o.dir, queue, &reader) != ORDO_OK) {
      fprintf(stderr, "ordo verify: %s\n", ordo_last_error_message());
      return ORDO_CLI_USAGE;
    }
    o.payload = reader_payload;
    o.payload_ud = reader;
  }
  /* ordo__verify_run's outcomes are exit statuses (see submit.c). */
  rc = ordo__verify_run(&o);
  ordo_cluster_reader_close(reader);
  return rc;
}

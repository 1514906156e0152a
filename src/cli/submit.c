/*
 * submit.c — `ordo submit`: the command line of ledger/submit.h's
 * ordo__submit_run, which does the work.
 */
#include "cli/cli.h"
#include "ledger/submit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Static_assert((int)ORDO__RUN_DONE == (int)ORDO_CLI_OK &&
                   (int)ORDO__RUN_FAILED == (int)ORDO_CLI_FAIL &&
                   (int)ORDO__RUN_BAD_INPUT == (int)ORDO_CLI_USAGE,
               "a run's outcome is the command's exit status");

static void submit_usage(FILE *f) {
  fputs("usage: ordo submit FILE --ledger URL --data DIR\n"
        "                   [--family ordo-rw|intkey|mixed] [--strategy S]\n"
        "                   [--mode continuous|rounds] [--poll-ms N] [--json]\n"
        "                   [--key-file F]\n"
        "\n"
        "Journal the workload FILE (JSON Lines, one batch a line) in DIR,\n"
        "then submit it to the Sawtooth REST API at URL through the queuer\n"
        "until every batch is committed or invalid. Run it again on the same\n"
        "DIR after a crash or a kill: it finishes the job without\n"
        "duplicates.\n"
        "\n"
        "  --ledger URL     the ledger's REST API (http or https)\n"
        "  --data DIR       where the journal lives (made if missing), or\n"
        "                   a PostgreSQL database URL (postgres://…)\n"
        "  --family F       ordo-rw (default), intkey, or mixed (one batch\n"
        "                   in four intkey, chosen by its id)\n"
        "  --strategy S     parallel (default), serial, unconstrained\n"
        "  --mode M         continuous (default) or rounds\n"
        "  --key-file F     sign every batch with this secp256k1 key (64 hex\n"
        "                   digits, as sawtooth keygen writes it; the file\n"
        "                   must not be world-readable). Default: a new\n"
        "                   random key for this run, printed on stderr\n"
        "  --poll-ms N      shortest pause between two status requests for\n"
        "                   the same batches (default 20; the ledger's\n"
        "                   long-poll `wait` normally paces them)\n"
        "  --timeout S      give up (exit 1) once the ledger has been\n"
        "                   unreachable for S seconds (default: never)\n"
        "  --max-submit-bytes N  bytes per POST /batches (default 10 MiB,\n"
        "                   the REST API's limit); a larger batch is INVALID\n"
        "  --json           print the summary as JSON\n"
        "  -h, --help       show this help\n"
        "\n"
        "Exit status: 0 every batch final, 1 failure, 2 bad usage or input.\n",
        f);
}

/* The command line into *a: ORDO_CLI_OK, ORDO_CLI_USAGE (said on stderr), or
 * -1 when --help was printed. */
static int parse_args(int argc, char **argv, ordo__submit_opts *a) {
  memset(a, 0, sizeof(*a));
  ordo_queue_options_init(&a->qopt);
  a->family = ORDO_LEDGER_RW_FAMILY;
  a->poll_ms = 20;
  for (int i = 1; i < argc; i++) {
    const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (ordo__cli_help(k, submit_usage))
      return -1;
    if (strcmp(k, "--json") == 0) {
      a->json = 1;
      continue;
    } else if (k[0] != '-') {
      if (a->file != NULL) {
        fprintf(stderr, "ordo submit: one FILE only ('%s')\n", k);
        return ORDO_CLI_USAGE;
      }
      a->file = k;
      continue;
    }
    if (v == NULL)
      goto bad;
    if (strcmp(k, "--ledger") == 0)
      a->url = v;
    else if (strcmp(k, "--data") == 0)
      a->dir = v;
    else if (strcmp(k, "--family") == 0)
      a->family = v;
    else if (strcmp(k, "--key-file") == 0)
      a->key_file = v;
    else if (strcmp(k, "--strategy") == 0) {
      if (ordo_queue_strategy_parse(v, &a->qopt.strategy) != ORDO_OK)
        goto bad_value;
    } else if (strcmp(k, "--mode") == 0) {
      if (ordo_queue_mode_parse(v, &a->qopt.mode) != ORDO_OK)
        goto bad_value;
    } else if (strcmp(k, "--timeout") == 0) {
      char *end;
      a->timeout_s = strtod(v, &end);
      if (*end != '\0' || !(a->timeout_s > 0 && a->timeout_s <= 86400))
        goto bad_value;
    } else if (strcmp(k, "--max-submit-bytes") == 0) {
      char *end;
      a->max_submit_bytes = strtoll(v, &end, 10);
      if (*end != '\0' || a->max_submit_bytes < 1024 ||
          a->max_submit_bytes > (1LL << 30))
        goto bad_value;
    } else if (strcmp(k, "--poll-ms") == 0) {
      char *end;
      a->poll_ms = strtol(v, &end, 10);
      if (*end != '\0' || a->poll_ms < 0 || a->poll_ms > 60000)
        goto bad_value;
    } else {
      goto bad;
    }
    i++;
    continue;
  bad_value:
    return ordo__cli_bad_value(stderr, "ordo submit", v, k);
  bad:
    return ordo__cli_unknown(stderr, "ordo submit", k, submit_usage);
  }
  if (a->file == NULL || a->url == NULL || a->dir == NULL) {
    fputs("ordo submit: FILE, --ledger and --data are required\n", stderr);
    submit_usage(stderr);
    return ORDO_CLI_USAGE;
  }
  return ORDO_CLI_OK;
}

int ordo__submit_main(int argc, char **argv) {
  ordo__submit_opts a;
  int rc = parse_args(argc, argv, &a);
  if (rc != ORDO_CLI_OK)
    return rc < 0 ? ORDO_CLI_OK : rc;
  return ordo__submit_run(&a);
}

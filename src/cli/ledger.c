/*
 * ledger.c — `ordo ledger`: run the embedded ledger node until SIGINT or
 * SIGTERM.
 *
 * The signals are blocked before the node starts, so every thread it makes
 * inherits the mask and only sigwait() here sees them; the node is then
 * stopped in order (see ordo_node_stop) and the process exits 0.
 *
 * Every connection is a descriptor: before the node starts, the soft
 * RLIMIT_NOFILE is raised to the hard one, and a limit still below the
 * connection limit is said on stderr.
 */
#include "cli/cli.h"
#include "http/http.h"
#include "node/node.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

static void ledger_usage(FILE *out) {
  fputs("usage: ordo ledger --data DIR [--port P] [--bind ADDR] [--block-ms T]\n"
        "                   [--seed S] [--fail-rate F] [--delay-ms D]\n"
        "                   [--keep-pending] [--max-pending N]\n"
        "                   [--allow-signers FILE] [--refuse-rate F]\n"
        "                   [--max-body-bytes N] [--header-timeout-ms T]\n"
        "                   [--idle-timeout-ms T] [--connection-limit N]\n"
        "                   [--connection-limit-per-ip N]\n"
        "\n"
        "Run an embedded ledger node speaking Sawtooth's REST API subset\n"
        "(POST /batches, GET|POST /batch_statuses, GET /state, GET /blocks).\n"
        "Every T ms it cuts a block from all pending batches, applied in an\n"
        "order drawn from the seed and the block number. Stops on SIGINT or\n"
        "SIGTERM after finishing the block in progress.\n"
        "\n"
        "options:\n"
        "  --data DIR        database directory (created if missing); required\n"
        "  --port P          TCP port, 0 for an ephemeral one (default 8008)\n"
        "  --bind ADDR       address to listen on (default 127.0.0.1)\n"
        "  --block-ms T      milliseconds between blocks, >= 1 (default 1000)\n"
        "  --seed S          seed of the block order and faults (default 0)\n"
        "  --fail-rate F     answer this share (0..1) of requests with 503\n"
        "  --delay-ms D      wait D ms before sending each answer\n"
        "  --keep-pending    pending batches survive a restart (default: lost)\n"
        "  --max-pending N   refuse batches (429) past N pending (default 10000)\n"
        "  --allow-signers FILE\n"
        "                    only batches signed by a key in FILE (one 66-hex\n"
        "                    public key a line, '#' comments) are taken; a\n"
        "                    BatchList with any other is refused whole, 400/30\n"
        "  --refuse-rate F   refuse (400/30, the whole BatchList) this share\n"
        "                    (0..1) of batches, chosen by a hash of the batch\n"
        "                    id and the seed: the same batch every time\n"
        "  --max-body-bytes N\n"
        "                    answer 413 to bodies over N bytes (default\n"
        "                    10485760, the REST API's 10 MiB)\n"
        "  --header-timeout-ms T\n"
        "                    close a connection whose request headers are\n"
        "                    not complete T ms after it was accepted, even\n"
        "                    one that trickles bytes (default 10000)\n"
        "  --idle-timeout-ms T\n"
        "                    close a connection with no bytes for T ms\n"
        "                    (whole seconds, rounded up; default 30000)\n"
        "  --connection-limit N\n"
        "                    connections at once, all clients (default 4096)\n"
        "  --connection-limit-per-ip N\n"
        "                    connections at once from one client address;\n"
        "                    more are closed when accepted (default 64)\n"
        "  -h, --help        show this help and exit\n"
        "\n"
        "Batch and block ids are 128 lower-case hex digits (else 400/60); limit\n"
        "is 1..1000 (else 400/53); paging links pin head=. A batch waits\n"
        "(PENDING) until its transactions' dependencies are committed, and is\n"
        "INVALID for a transaction id already committed or a dependency that\n"
        "is INVALID. wait= is capped at 300 s.\n"
        "\n"
        "The first line on stdout is 'listening on http://ADDR:PORT'.\n",
        out);
}

/* The options that take a number, and their ranges. */
#define NODE_FIELD(f) ORDO__CLI_FIELD(ordo_node_options, f)
static const ordo__cli_num ledger_nums[] = {
    {"--port", 0, 65535, NODE_FIELD(port)},
    {"--block-ms", 1, 86400000, NODE_FIELD(block_ms)},
    {"--seed", 0, UINT64_MAX, NODE_FIELD(seed)},
    {"--delay-ms", 0, 600000, NODE_FIELD(delay_ms)},
    {"--max-pending", 1, 100000000, NODE_FIELD(max_pending)},
    {"--max-body-bytes", 1, SIZE_MAX, NODE_FIELD(max_body_bytes)},
    {"--header-timeout-ms", 1, 3600000, NODE_FIELD(header_timeout_ms)},
    {"--idle-timeout-ms", 1, 3600000, NODE_FIELD(idle_timeout_ms)},
    {"--connection-limit", 1, 100000, NODE_FIELD(connection_limit)},
    {"--connection-limit-per-ip", 1, 100000,
     NODE_FIELD(connection_limit_per_ip)},
};
#undef NODE_FIELD

int ordo__ledger_main(int argc, char **argv) {
  ordo_node_options opts;
  ordo_node *node = NULL;
  sigset_t sigs;
  int i, sig, rc;

  ordo_node_options_init(&opts);
  opts.port = 8008;
  for (i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    const ordo__cli_num *num;
    if (ordo__cli_help(a, ledger_usage))
      return ORDO_CLI_OK;
    if (strcmp(a, "--keep-pending") == 0) {
      opts.keep_pending = 1;
      continue;
    } else if (v == NULL || a[0] != '-') {
      return ordo__cli_unknown(stderr, "ordo ledger", a, ledger_usage);
    } else if (strcmp(a, "--data") == 0) {
      opts.data_dir = v;
    } else if (strcmp(a, "--bind") == 0) {
      opts.bind = v;
    } else if (strcmp(a, "--fail-rate") == 0) {
      if (ordo__cli_parse_rate(v, &opts.fail_rate))
        goto bad_value;
    } else if (strcmp(a, "--refuse-rate") == 0) {
      if (ordo__cli_parse_rate(v, &opts.refuse_rate))
        goto bad_value;
    } else if (strcmp(a, "--allow-signers") == 0) {
      opts.allow_signers_file = v; /* read (and checked) by the start */
    } else if ((num = ordo__cli_num_find(
                    ledger_nums, sizeof ledger_nums / sizeof ledger_nums[0],
                    a)) != NULL) {
      if (ordo__cli_num_set(num, v, &opts))
        goto bad_value;
    } else {
      fprintf(stderr, "ordo ledger: unknown option '%s'\n", a);
      ledger_usage(stderr);
      return ORDO_CLI_USAGE;
    }
    i++;
    continue;
  bad_value:
    return ordo__cli_bad_value(stderr, "ordo ledger", v, a);
  }
  if (opts.data_dir == NULL) {
    fputs("ordo ledger: missing --data DIR\n", stderr);
    ledger_usage(stderr);
    return ORDO_CLI_USAGE;
  }
  if (opts.bind == NULL)
    opts.bind = "127.0.0.1";
  {
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, opts.bind, &a4) != 1 &&
        inet_pton(AF_INET6, opts.bind, &a6) != 1) {
      fprintf(stderr, "ordo ledger: bad value '%s' for --bind (an IP "
              "address)\n", opts.bind);
      return ORDO_CLI_USAGE;
    }
  }
  if (!ordo__http_is_loopback(opts.bind))
    fprintf(stderr, "ordo ledger: warning: listening on %s, which is not a "
            "loopback address; the node has no authentication\n", opts.bind);

  ordo__http_server_process_setup("ordo ledger",
                                  opts.connection_limit > 0
                                      ? opts.connection_limit
                                      : ORDO_NODE_DEFAULT_CONNECTION_LIMIT);
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &sigs, NULL);
  if ((rc = ordo_node_start(&opts, &node)) != ORDO_OK) {
    fprintf(stderr, "ordo ledger: %s\n", ordo_last_error_message());
    return ORDO_CLI_FAIL;
  }
  printf(strchr(opts.bind, ':') != NULL ? "listening on http://[%s]:%d\n"
                                        : "listening on http://%s:%d\n",
         opts.bind, ordo_node_port(node));
  fflush(stdout);
  do {
    rc = sigwait(&sigs, &sig);
  } while (rc == EINTR);
  rc = ordo_node_stop(node);
  if (rc != ORDO_OK) {
    fprintf(stderr, "ordo ledger: %s\n", ordo_last_error_message());
    return ORDO_CLI_FAIL;
  }
  return ORDO_CLI_OK;
}

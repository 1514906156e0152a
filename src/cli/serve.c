/*
 * serve.c — `ordo serve`: run the HTTP API until SIGINT or SIGTERM.
 *
 * The config file is applied first and the flags on top. SIGINT and SIGTERM
 * are blocked before the server starts, so every thread it makes inherits
 * the mask and only sigwait() here sees them; the server is then stopped
 * in order (ordo_server_stop) and the process exits 0.
 *
 * Every connection is a descriptor: before the server starts, the soft
 * RLIMIT_NOFILE is raised to the hard one, and a limit still below
 * connection_limit is said on stderr (connections past it wait in the
 * kernel's accept queue until others close).
 */
#include "cli/cli.h"
#include "http/http.h"
#include "ledger/ledger.h"
#include "server/server.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

static void serve_usage(FILE *out) {
  fputs("usage: ordo serve [--config FILE] [--port P] [--bind ADDR]\n"
        "                  [--token-file F] [--data DIR] [--ledger URL]\n"
        "                  [--signing-key-file F]\n"
        "                  [--cluster [--instance-id ID] [--lease-ttl-ms MS]\n"
        "                   [--queue NAME]]\n"
        "\n"
        "Serve ordo's HTTP JSON API: enqueue signed batches into the durable\n"
        "queue in DIR/queue.db, or in the PostgreSQL database DIR names\n"
        "(postgres://user@host:port/db; wallets too), submitted to the\n"
        "Sawtooth REST API at URL\n"
        "when --ledger is given), batch, service and queue status, wallet,\n"
        "DID and signing commands, /healthz and Prometheus /metrics, and\n"
        "a live dashboard in the browser at /ui (README, The dashboard).\n"
        "Stops on SIGINT or SIGTERM after answering requests in flight.\n"
        "\n"
        "options (flags override the config file):\n"
        "  --config FILE     JSON config; every key is in the README (the\n"
        "                    connection limits and timeouts included:\n"
        "                    connection_limit 4096, connection_limit_per_ip\n"
        "                    64, header_timeout_ms 10000, idle_timeout_ms\n"
        "                    30000)\n"
        "  --port P          TCP port, 0 for an ephemeral one (default 8080)\n"
        "  --bind ADDR       address to listen on (default 127.0.0.1); one\n"
        "                    that is not loopback needs --token-file\n"
        "  --token-file F    bearer token (one line; the file must not be\n"
        "                    world-readable); required by every path but\n"
        "                    /healthz, /readyz and the dashboard's files\n"
        "  --data DIR        data directory (made if missing), or a\n"
        "                    PostgreSQL database URL; required\n"
        "  --ledger URL      Sawtooth REST API to submit to (default: none,\n"
        "                    batches are only journaled)\n"
        "  --signing-key-file F\n"
        "                    the operator's Sawtooth key (64 hex digits, as\n"
        "                    sawtooth keygen writes it; not world-readable):\n"
        "                    items that carry \"transactions\" instead of a\n"
        "                    signed payload are signed with it\n"
        "  --cluster         one instance of several on the shared queue in\n"
        "                    the PostgreSQL database of --data: any instance\n"
        "                    accepts batches; each service is run by the\n"
        "                    instance holding its lease (README, Cluster)\n"
        "  --instance-id ID  this instance's name in the cluster (default\n"
        "                    HOST:PID)\n"
        "  --lease-ttl-ms MS a service whose owner has not renewed its\n"
        "                    lease for MS is taken over (default 5000;\n"
        "                    renewed every MS/3)\n"
        "  --queue NAME      the shared queue's name in the database (default\n"
        "                    queue): several clusters may share a database\n"
        "  -h, --help        show this help and exit\n"
        "\n"
        "The first line on stdout is 'listening on http://ADDR:PORT'; with a\n"
        "signing key, stderr says 'signing as PUBKEY'.\n",
        out);
}

int ordo__serve_main(int argc, char **argv) {
  ordo_server_options o;
  ordo_server *srv = NULL;
  const char *config = NULL, *port = NULL, *bind = NULL, *token = NULL,
             *data = NULL, *ledger = NULL, *key_file = NULL,
             *instance = NULL, *ttl = NULL, *queue = NULL;
  int cluster = 0;
  /* Every option takes a string, checked once the config file is read. */
  const struct {
    const char *name;
    const char **value;
  } strs[] = {{"--config", &config},     {"--port", &port},
              {"--bind", &bind},         {"--token-file", &token},
              {"--data", &data},         {"--ledger", &ledger},
              {"--signing-key-file", &key_file},
              {"--instance-id", &instance}, {"--lease-ttl-ms", &ttl},
              {"--queue", &queue}};
  const size_t nstrs = sizeof strs / sizeof strs[0];
  sigset_t sigs;
  size_t k;
  int i, sig, rc;

  for (i = 1; i < argc; i += 2) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (ordo__cli_help(a, serve_usage))
      return ORDO_CLI_OK;
    if (strcmp(a, "--cluster") == 0) { /* a flag: no value */
      cluster = 1;
      i--;
      continue;
    }
    if (v == NULL || a[0] != '-') {
      return ordo__cli_unknown(stderr, "ordo serve", a, serve_usage);
    }
    for (k = 0; k < nstrs && strcmp(a, strs[k].name) != 0; k++)
      ;
    if (k == nstrs) {
      fprintf(stderr, "ordo serve: unknown option '%s'\n", a);
      serve_usage(stderr);
      return ORDO_CLI_USAGE;
    }
    *strs[k].value = v;
  }
  ordo_server_options_init(&o);
  if (config != NULL && ordo_server_options_from_file(&o, config) != 0) {
    fprintf(stderr, "ordo serve: %s\n", ordo_last_error_message());
    ordo_server_options_clear(&o);
    return ORDO_CLI_USAGE;
  }
  if (port != NULL) {
    unsigned long long p;
    if (ordo__cli_parse_u64(port, 65535, &p) != 0) {
      fprintf(stderr, "ordo serve: bad value '%s' for --port\n", port);
      ordo_server_options_clear(&o);
      return ORDO_CLI_USAGE;
    }
    o.port = (int)p;
  }
  if (bind != NULL)
    o.bind = bind;
  if (token != NULL)
    o.token_file = token;
  if (data != NULL)
    o.data_dir = data;
  if (ledger != NULL)
    o.ledger_url = ledger;
  if (key_file != NULL &&
      ordo_server_options_signing_key_file(&o, key_file) != ORDO_OK) {
    fprintf(stderr, "ordo serve: %s\n", ordo_last_error_message());
    ordo_server_options_clear(&o);
    return ORDO_CLI_USAGE;
  }
  if (cluster || instance != NULL || ttl != NULL || queue != NULL)
    o.cluster = 1;
  o.instance_id = instance;
  o.cluster_queue = queue;
  if (ttl != NULL) {
    unsigned long long t;
    if (ordo__cli_parse_u64(ttl, 3600000, &t) != 0 || t < 300) {
      fprintf(stderr, "ordo serve: bad value '%s' for --lease-ttl-ms "
              "(300..3600000)\n", ttl);
      ordo_server_options_clear(&o);
      return ORDO_CLI_USAGE;
    }
    o.lease_ttl_ms = (unsigned)t;
  }
  if (o.data_dir == NULL) {
    fputs("ordo serve: missing --data DIR (or data_dir in the config)\n",
          stderr);
    ordo_server_options_clear(&o);
    return ORDO_CLI_USAGE;
  }
  if (o.bind == NULL)
    o.bind = "127.0.0.1";

  if (o.port >= 0)
    ordo__http_server_process_setup("ordo serve", o.connection_limit);
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &sigs, NULL);
  rc = ordo_server_start(&o, &srv);
  if (rc != 0) {
    fprintf(stderr, "ordo serve: %s\n", ordo_last_error_message());
    ordo_server_options_clear(&o);
    return rc == ORDO_E_INVAL || rc == ORDO_E_CONFIG ? ORDO_CLI_USAGE
                                                     : ORDO_CLI_FAIL;
  }
  printf(strchr(o.bind, ':') != NULL ? "listening on http://[%s]:%d\n"
                                     : "listening on http://%s:%d\n",
         o.bind, ordo_server_port(srv));
  fflush(stdout);
  if (o.signer != NULL)
    fprintf(stderr, "ordo serve: signing as %s\n",
            ordo_ledger_signer_public_key(o.signer));
  do {
    rc = sigwait(&sigs, &sig);
  } while (rc == EINTR);
  fprintf(stderr, "ordo serve: stopping\n");
  rc = ordo_server_stop(srv);
  ordo_server_options_clear(&o);
  if (rc != 0) {
    fprintf(stderr, "ordo serve: %s\n", ordo_last_error_message());
    return ORDO_CLI_FAIL;
  }
  return ORDO_CLI_OK;
}

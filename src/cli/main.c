/*
 * main.c — the `ordo` command: global flags and dispatch to subcommands.
 *
 * Each subcommand's command line is read in a file of its own here (the
 * benchmarks' in bench/), over a typed entry point of its module, and is
 * reached through the table below; main only picks the entry and maps what is left
 * of the command line to it. Exit codes are in cli.h: 0 ok, 1 failure, 2 bad
 * usage.
 */
#include "bench.h"
#include "cli/cli.h"
#include "ordo.h"

#include <stdio.h>
#include <string.h>

typedef struct cli_command {
  const char *name;
  const char *summary; /* one line for `ordo --help` */
  ordo_cli_fn run;
} cli_command;

/* Later subcommands (plan, submit, status, ledger, serve, run, wallet, did)
 * are appended here, in the order `ordo --help` should list them. */
static const cli_command cli_commands[] = {
    {"bench", "measure latency isolation and cheap-op scaling", bench_main},
    {"plan", "show how the queuer would schedule a workload file", ordo__plan_main},
    {"ledger", "run the embedded ledger node (Sawtooth REST subset)", ordo__ledger_main},
    {"run", "the main job: ledger + server, serial vs parallel, verified", ordo__run_main},
    {"workload", "write a synthetic workload file (JSON Lines)", ordo__workload_main},
    {"submit", "submit a workload file to a ledger through the durable queuer", ordo__submit_main},
    {"verify", "check a ledger's state against a serial replay of the workload", ordo__verify_main},
    {"serve", "serve the HTTP JSON API: batches, queue status, wallets, metrics", ordo__serve_main},
    {"wallet", "wallets and records: create, export, import, add, search, ...", ordo__wallet_main},
    {"did", "DIDs and keys in a wallet: create, rotate, sign, verify, pack", ordo__did_main},
};

#define CLI_NCOMMANDS (sizeof cli_commands / sizeof cli_commands[0])

static void cli_usage(FILE *out) {
  size_t i;

  fputs("usage: ordo <command> [options]\n"
        "       ordo --help | --version\n"
        "\n"
        "commands:\n",
        out);
  for (i = 0; i < CLI_NCOMMANDS; i++)
    fprintf(out, "  %-10s %s\n", cli_commands[i].name, cli_commands[i].summary);
  fputs("\n"
        "options:\n"
        "  -h, --help     show this help and exit\n"
        "  -V, --version  show the version and exit\n"
        "\n"
        "Run 'ordo <command> --help' for the options of a command.\n",
        out);
}

static const cli_command *cli_find(const char *name) {
  size_t i;

  for (i = 0; i < CLI_NCOMMANDS; i++)
    if (strcmp(cli_commands[i].name, name) == 0)
      return &cli_commands[i];
  return NULL;
}

int main(int argc, char **argv) {
  const cli_command *cmd;
  const char *word;

  if (argc < 2) {
    fputs("ordo: missing command\n", stderr);
    cli_usage(stderr);
    return ORDO_CLI_USAGE;
  }
  word = argv[1];
  if (ordo__cli_is_help(word)) {
    cli_usage(stdout);
    return ORDO_CLI_OK;
  }
  if (strcmp(word, "-V") == 0 || strcmp(word, "--version") == 0) {
    printf("ordo %s\n", ORDO_VERSION_STRING);
    return ORDO_CLI_OK;
  }
  if (word[0] == '-') {
    fprintf(stderr, "ordo: unknown option '%s'\n", word);
    cli_usage(stderr);
    return ORDO_CLI_USAGE;
  }
  if ((cmd = cli_find(word)) == NULL) {
    fprintf(stderr, "ordo: unknown command '%s'\n", word);
    cli_usage(stderr);
    return ORDO_CLI_USAGE;
  }
  /* The subcommand sees itself as argv[0], like a program of its own. */
  return cmd->run(argc - 1, argv + 1);
}

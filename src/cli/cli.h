/*
 * cli.h — what every `ordo` subcommand shares with the dispatcher in main.c.
 *
 * A subcommand is a function run(argc, argv) with argv[0] its own name and
 * the remaining words after it; it prints its own --help and returns one of
 * the exit codes below. Adding one is a line in main.c's command table.
 */
#ifndef ORDO_CLI_H
#define ORDO_CLI_H

/* Process exit codes, the same for every subcommand. */
enum {
  ORDO_CLI_OK = 0,   /* did what was asked */
  ORDO_CLI_FAIL = 1, /* ran, but the work failed */
  ORDO_CLI_USAGE = 2 /* bad command line; nothing was run */
};

typedef int (*ordo_cli_fn)(int argc, char **argv);

/* `ordo run` (run.c), the main job: the embedded ledger and `ordo serve`,
 * the same workload under the serial and the parallel strategy. */
int ordo__run_main(int argc, char **argv);

/* `ordo wallet …` and `ordo did …` (wallet.c): the wallet, record and key
 * commands of the C API, one op each; the wallet key never on the command
 * line. */
int ordo__wallet_main(int argc, char **argv);
int ordo__did_main(int argc, char **argv);

#endif /* ORDO_CLI_H */

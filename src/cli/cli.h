/*
 * cli.h — what every `ordo` subcommand shares with the dispatcher in main.c.
 *
 * A subcommand is a function run(argc, argv) with argv[0] its own name and
 * the remaining words after it; it prints its own --help and returns one of
 * the exit codes below. Adding one is a line in main.c's command table.
 *
 * Every subcommand's command line is read here, in src/cli, and nowhere
 * else: the library (libordo) takes typed options (ordo_node_options,
 * ordo_server_options, ledger/submit.h's ordo__submit_opts, ...) and never
 * sees an argv.
 */
#ifndef ORDO_CLI_H
#define ORDO_CLI_H

#include <stddef.h>
#include <stdio.h>

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

/* `ordo ledger` (ledger.c): the embedded ledger node until SIGINT/SIGTERM. */
int ordo__ledger_main(int argc, char **argv);
/* `ordo serve` (serve.c): the HTTP JSON API until SIGINT/SIGTERM. */
int ordo__serve_main(int argc, char **argv);
/* `ordo submit` and `ordo verify` (submit.c, verify.c): the command lines
 * of ledger/submit.h's runs. */
int ordo__submit_main(int argc, char **argv);
int ordo__verify_main(int argc, char **argv);
/* `ordo workload` (workload.c): a synthetic workload file on stdout. */
int ordo__workload_main(int argc, char **argv);

/* `ordo plan FILE [--strategy S] [--mode M] [--granularity N] [--explain]
 * [--json]` (plan.c), printing to out and err: an exit code above. The
 * tests call it with files for out and err. */
int ordo__plan_cli(int argc, char **argv, FILE *out, FILE *err);
/* The subcommand table's entry: ordo__plan_cli on stdout and stderr. */
int ordo__plan_main(int argc, char **argv);

/* ---- reading option values (opt.c) ------------------------------------- */

/* The workload generator's options, which `ordo workload` and `ordo run`
 * both take (workload.c): when k is --services, --batches, --seed,
 * --conflict, --hot-read, --invalid or --deps, its value v is read into g
 * (strtoull or strtod) and the result is 1, or -1 when v is not a whole
 * number (empty, signed, or with text after it); else 0, nothing read. */
struct ordo_workload_gen;
int ordo__cli_workload_flag(struct ordo_workload_gen *g, const char *k,
                            const char *v);

/* 1 for "-h" or "--help". */
int ordo__cli_is_help(const char *arg);

/* A subcommand's --help: when arg is "-h" or "--help", usage printed on
 * stdout and 1; else 0. */
int ordo__cli_help(const char *arg, void (*usage)(FILE *));

/* What every subcommand says of a bad command line, on err, prefixed by
 * cmd ("ordo ledger"); each returns ORDO_CLI_USAGE. unknown says "unknown
 * option or missing value 'ARG'" and then prints usage on err. */
int ordo__cli_unknown(FILE *err, const char *cmd, const char *arg,
                      void (*usage)(FILE *));
int ordo__cli_bad_value(FILE *err, const char *cmd, const char *value,
                        const char *opt);

/* A decimal integer 0..max, digits only (no sign, no space): 0, or -1. */
int ordo__cli_parse_u64(const char *v, unsigned long long max,
                        unsigned long long *out);

/* A share in 0..1 (strtod's forms): 0, or -1. */
int ordo__cli_parse_rate(const char *v, double *out);

/*
 * A numeric option of a subcommand's table: `name N` with N in min..max,
 * stored into the field at off (of size bytes: an int or unsigned, or a
 * size_t or uint64_t) of the subcommand's options struct. ORDO__CLI_FIELD
 * fills off and size from the struct type and the field's name.
 */
typedef struct ordo__cli_num {
  const char *name;
  unsigned long long min, max;
  size_t off, size;
} ordo__cli_num;

#define ORDO__CLI_FIELD(type, field)                                           \
  offsetof(type, field), sizeof(((type *)0)->field)

/* The entry of table (n entries) named name, or NULL. */
const ordo__cli_num *ordo__cli_num_find(const ordo__cli_num *table, size_t n,
                                        const char *name);

/* Parse v for opt and store it into the options struct at base: 0, or -1
 * (a value not a number or out of range; nothing stored). */
int ordo__cli_num_set(const ordo__cli_num *opt, const char *v, void *base);

#endif /* ORDO_CLI_H */

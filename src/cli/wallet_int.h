/*
 * wallet_int.h — what the files of `ordo wallet` and `ordo did` share:
 *
 *   group.c   a command group: the flags, --help, the common path of every
 *             command (parse, read the key, make a context, open the
 *             wallet, run, close), and the helpers that run an op and print
 *             or report what it gave;
 *   secret.c  secrets: from the environment, a file nobody else may read,
 *             or the terminal with echo off, into sodium_malloc'd buffers;
 *             the JSON that carries them, built in wiped memory too;
 *   wallet.c  `ordo wallet`: wallets and their records;
 *   did.c     `ordo did`: DIDs and ed25519 keys.
 *
 * A command is one row of a cli_cmd table (wallet.c, did.c): its flags,
 * the ones it requires, what it needs (the key, an open wallet), and the
 * function that runs its ops. Exit codes are cli.h's.
 */
#ifndef ORDO_CLI_WALLET_INT_H
#define ORDO_CLI_WALLET_INT_H

#include "base/base.h"
#include "cli/cli.h"
#include "ordo.h"

#include <jansson.h>
#include <stddef.h>

/* Every flag's value; NULL when not given. */
typedef struct cli_args {
  const char *id, *path, *key_file, *kdf, *to, *from, *export_key_file,
      *export_kdf, *type, *name, *value, *value_file, *tags, *add_tags,
      *delete_tags, *query, *offset, *limit, *did, *verkey, *seed_file,
      *metadata, *message, *in, *signature, *recipients, *sender;
  int json;
} cli_args;

enum {
  F_ID = 1 << 0,
  F_PATH = 1 << 1,
  F_KEY_FILE = 1 << 2,
  F_KDF = 1 << 3,
  F_TO = 1 << 4,
  F_FROM = 1 << 5,
  F_EXPORT_KEY_FILE = 1 << 6,
  F_EXPORT_KDF = 1 << 7,
  F_TYPE = 1 << 8,
  F_NAME = 1 << 9,
  F_VALUE = 1 << 10,
  F_VALUE_FILE = 1 << 11,
  F_TAGS = 1 << 12,
  F_ADD_TAGS = 1 << 13,
  F_DELETE_TAGS = 1 << 14,
  F_QUERY = 1 << 15,
  F_OFFSET = 1 << 16,
  F_LIMIT = 1 << 17,
  F_DID = 1 << 18,
  F_VERKEY = 1 << 19,
  F_SEED_FILE = 1 << 20,
  F_METADATA = 1 << 21,
  F_MESSAGE = 1 << 22,
  F_IN = 1 << 23,
  F_SIGNATURE = 1 << 24,
  F_RECIPIENTS = 1 << 25,
  F_SENDER = 1 << 26,
  F_JSON = 1 << 27,
};

/* Flags of every command that opens a wallet. */
#define F_WALLET (F_ID | F_PATH | F_KEY_FILE | F_JSON)

typedef struct cli_env cli_env;
typedef int (*cli_run_fn)(cli_env *e, const cli_args *a);

enum {
  NEED_KEY = 1,     /* reads the wallet key */
  NEED_OPEN = 2,    /* and runs with the wallet open */
  NEED_CONFIRM = 4, /* a key from the terminal is asked twice */
};

typedef struct cli_cmd {
  const char *name;     /* "create", "record add" */
  const char *summary;  /* one line for the group's --help */
  const char *synopsis; /* the flags, after "ordo GROUP NAME " */
  const char *about;    /* a paragraph for the command's --help */
  unsigned flags, required;
  int needs;
  cli_run_fn run;
} cli_cmd;

/* What a running command holds. */
struct cli_env {
  const char *prog; /* "ordo wallet", "ordo did": the prefix of messages */
  ordo_ctx *ctx;
  char *key;    /* the wallet key (sodium_malloc), or NULL */
  char *config; /* {"id":…,"path":…} (sodium_malloc), or NULL */
  char *creds;  /* {"key":…,…} (sodium_malloc), or NULL */
  int open;     /* the wallet is open: close it at the end */
};

/* ---- group.c --------------------------------------------------------------
 */

/* Run the command of cmds (n of them) that argv names; about is the
 * group's --help paragraph. The exit code. */
int cli_group_main(const char *prog, const cli_cmd *cmds, size_t n,
                   const char *about, int argc, char **argv);

/* "PROG: ORDO_E_NAME: message" on stderr (msg NULL or empty: the code's
 * text; withheld if it contains the key); the exit code for rc. */
int cli_report(const cli_env *e, int rc, const char *msg);
/* "PROG: message" on stderr; ORDO_CLI_USAGE. */
int cli_usage_error(const cli_env *e, const char *fmt, ...) ORDO__PRINTF(2, 3);

/* Wait for op. On success *out holds it (the caller releases it); on failure
 * it is reported and released. Returns the exit code. */
int cli_run_op(const cli_env *e, ordo_op *op, ordo_op **out);
/* Run op and drop it: for commands whose result nobody prints. */
int cli_run_op_only(const cli_env *e, ordo_op *op);

void cli_print_json(ordo_op *op);
/* The op's result parsed (never NULL: an empty object if it has none). */
json_t *cli_result_of(ordo_op *op);
/* o's string member k, else dflt. */
const char *cli_str_or(json_t *o, const char *k, const char *dflt);

/* Prints a command's result, parsed (r may be NULL when out of memory). */
typedef void (*cli_print_fn)(json_t *r, const cli_args *a);

/* Run op (reported and released on failure); then with --json print its
 * result as it is, else the line fmt makes (cli_say) or what print makes
 * of the result (cli_show). Releases op; the exit code. */
int cli_say(const cli_env *e, const cli_args *a, ordo_op *op, const char *fmt,
            ...) ORDO__PRINTF(4, 5);
int cli_show(const cli_env *e, const cli_args *a, ordo_op *op,
             cli_print_fn print);

/* Read all of path ('-': stdin) into a malloc'd, NUL-terminated buffer. */
int cli_read_input(const cli_env *e, const char *path, char **out, size_t *len);
/* --message TEXT or --in FILE, exactly one. *buf is malloc'd (--in) or NULL. */
int cli_message_of(const cli_env *e, const cli_args *a, const char **msg,
                   size_t *len, char **buf);

/* ---- secret.c -------------------------------------------------------------
 */

/* A JSON object of string members from (name, value) pairs ending with a
 * NULL name; a NULL value leaves its member out. *out is sodium_malloc'd
 * (sodium_free it), so a secret among the values has no copy that is not
 * wiped. ORDO_OK, ORDO_E_NOMEM, or ORDO_E_INVAL for a value that is not
 * UTF-8. */
int cli_kv_json(char **out, ...);

/* A secret from the environment variable env, else file (when given), else
 * the terminal (when ask is a prompt and stdin is one; asked twice with
 * confirm), else none: *out NULL and, for required ones, a usage error.
 * *out is sodium_malloc'd. Returns the exit code. */
int cli_read_secret(const cli_env *e, const char *what, const char *env,
                    const char *file, const char *ask, int confirm,
                    int required, char **out);

#endif /* ORDO_CLI_WALLET_INT_H */

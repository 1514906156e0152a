/*
 * group.c — a command group of `ordo wallet` and `ordo did`: the flags
 * every command picks from, --help, and the common path (cli_exec) that
 * parses the flags, reads the key, makes a small context, opens the
 * wallet, runs the row's function, then closes the wallet and frees
 * everything. With --json a command prints its op's JSON result as it is;
 * without, a readable form (the helpers below).
 *
 * Secrets (the wallet key, an export key, a DID seed) are never taken on
 * the command line, where ps and shell history would show them (secret.c
 * reads them), and are never printed: an op message that contains the key
 * is withheld.
 */
#include "cli/wallet_int.h"

#include <errno.h>
#include <jansson.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define INPUT_MAX (64u << 20) /* longest --in or --value-file */

/* ------------------------------------------------------------------------ */
/* Flags                                                                     */
/* ------------------------------------------------------------------------ */

typedef struct cli_flag {
  const char *name;
  const char *metavar; /* NULL: a switch without a value */
  unsigned bit;
  size_t off; /* of its const char * in cli_args */
  const char *help;
} cli_flag;

#define ARG(field) offsetof(cli_args, field)

/* In the order --help lists them. */
static const cli_flag cli_flags[] = {
    {"--id", "ID", F_ID, ARG(id), "the wallet's id (1..64 of A-Za-z0-9._-)"},
    {"--path", "DIR", F_PATH, ARG(path),
     "directory holding wallets, or a PostgreSQL database\n"
     "(postgres://user@host:port/db; default $ORDO_WALLET_PATH,\n"
     "else ~/.ordo/wallets)"},
    {"--key-file", "FILE", F_KEY_FILE, ARG(key_file),
     "read the wallet key from FILE (one line; the file must\n"
     "not be world-readable); default $ORDO_WALLET_KEY, else\n"
     "asked on the terminal"},
    {"--kdf", "M", F_KDF, ARG(kdf),
     "argon2id_moderate (default), argon2id_interactive,\n"
     "or raw (the key: 64 hex characters or base58 of 32\n"
     "bytes)"},
    {"--to", "FILE", F_TO, ARG(to),
     "the export file to write (must not exist)"},
    {"--from", "FILE", F_FROM, ARG(from), "the export file to read"},
    {"--export-key-file", "FILE", F_EXPORT_KEY_FILE, ARG(export_key_file),
     "the export file's key from FILE; default\n"
     "$ORDO_EXPORT_KEY, else the wallet key"},
    {"--export-kdf", "M", F_EXPORT_KDF, ARG(export_kdf),
     "the export file's KDF, as --kdf (default\n"
     "argon2id_moderate)"},
    {"--type", "T", F_TYPE, ARG(type), "the record type"},
    {"--name", "N", F_NAME, ARG(name), "the record name (unique per type)"},
    {"--value", "V", F_VALUE, ARG(value), "the record value"},
    {"--value-file", "FILE", F_VALUE_FILE, ARG(value_file),
     "the record value: FILE's bytes as they are\n"
     "('-': stdin)"},
    {"--tags", "JSON", F_TAGS, ARG(tags),
     "tags, a JSON object of strings; names starting\n"
     "with '~' are stored in plaintext (update: replaces\n"
     "all tags)"},
    {"--add-tags", "JSON", F_ADD_TAGS, ARG(add_tags),
     "add tags, overwriting those of the same name"},
    {"--delete-tags", "JSON", F_DELETE_TAGS, ARG(delete_tags),
     "delete tags by name: [\"a\",\"~b\"]"},
    {"--query", "WQL", F_QUERY, ARG(query),
     "a WQL query (default {}: every record)"},
    {"--offset", "N", F_OFFSET, ARG(offset),
     "skip the first N matches (default 0)"},
    {"--limit", "N", F_LIMIT, ARG(limit),
     "return at most N records (default 0: all)"},
    {"--did", "DID", F_DID, ARG(did), "a DID in the wallet"},
    {"--verkey", "K", F_VERKEY, ARG(verkey), "an ed25519 verkey (base58)"},
    {"--seed-file", "FILE", F_SEED_FILE, ARG(seed_file),
     "the key's seed from FILE (32 characters, 64 hex or\n"
     "base64; not world-readable); default $ORDO_DID_SEED,\n"
     "else a random key"},
    {"--metadata", "M", F_METADATA, ARG(metadata),
     "the DID's metadata (a string)"},
    {"--message", "TEXT", F_MESSAGE, ARG(message), "the message"},
    {"--in", "FILE", F_IN, ARG(in), "the message: FILE's bytes ('-': stdin)"},
    {"--signature", "B64", F_SIGNATURE, ARG(signature),
     "the signature, base64 (url-safe or standard)"},
    {"--recipients", "K,K", F_RECIPIENTS, ARG(recipients),
     "the recipients' verkeys, comma-separated"},
    {"--sender", "K", F_SENDER, ARG(sender),
     "authcrypt from this verkey of the wallet (default:\n"
     "anoncrypt)"},
    {"--json", NULL, F_JSON, 0, "print the op's JSON result"},
};

#define CLI_NFLAGS (sizeof cli_flags / sizeof cli_flags[0])

/* ------------------------------------------------------------------------ */
/* Running ops, printing, input                                              */
/* ------------------------------------------------------------------------ */

/* Bad input the user can fix maps to 2, everything else to 1. */
static int exit_code(int rc) {
  switch (rc) {
  case ORDO_OK:
    return ORDO_CLI_OK;
  case ORDO_E_INVAL:
  case ORDO_E_JSON:
  case ORDO_E_WQL:
  case ORDO_E_BAD_KEY:
    return ORDO_CLI_USAGE;
  default:
    return ORDO_CLI_FAIL;
  }
}

/* "ordo wallet: ORDO_E_NAME: message" on stderr; returns the exit code. */
int cli_report(const cli_env *e, int rc, const char *msg) {
  if (msg == NULL || msg[0] == '\0')
    msg = ordo_strerror(rc);
  /* Belt and braces: ordo never puts a key in a message, and neither do we. */
  if (e->key != NULL && e->key[0] != '\0' && strstr(msg, e->key) != NULL)
    msg = "(message withheld: it contains the key)";
  fprintf(stderr, "%s: %s: %s\n", e->prog, ordo_errname(rc), msg);
  return exit_code(rc);
}

/* Wait for op. On success *out holds it (the caller releases it); on failure
 * it is reported and released. Returns the exit code. */
int cli_run_op(const cli_env *e, ordo_op *op, ordo_op **out) {
  int rc;
  *out = NULL;
  if (op == NULL)
    return cli_report(e, ORDO_E_NOMEM, NULL);
  if ((rc = ordo_op_wait(op, -1)) != ORDO_OK) {
    rc = cli_report(e, rc, ordo_op_message(op));
    ordo_op_release(op);
    return rc;
  }
  *out = op;
  return ORDO_CLI_OK;
}

/* Run op and drop it: for commands whose result nobody prints. */
int cli_run_op_only(const cli_env *e, ordo_op *op) {
  ordo_op *done;
  int rc = cli_run_op(e, op, &done);
  ordo_op_release(done);
  return rc;
}

void cli_print_json(ordo_op *op) {
  const char *r = ordo_op_result(op);
  printf("%s\n", r != NULL ? r : "{}");
}

/* The op's result parsed (never NULL: an empty object if it has none). */
json_t *cli_result_of(ordo_op *op) {
  const char *r = ordo_op_result(op);
  json_t *o = r != NULL ? json_loads(r, 0, NULL) : NULL;
  return o != NULL ? o : json_object();
}

const char *cli_str_or(json_t *o, const char *k, const char *dflt) {
  const char *s = json_string_value(json_object_get(o, k));
  return s != NULL ? s : dflt;
}

int cli_usage_error(const cli_env *e, const char *fmt, ...) {
  va_list ap;
  fprintf(stderr, "%s: ", e->prog);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  return ORDO_CLI_USAGE;
}

/* The two ways a command ends, below: run op; with --json print its result
 * as it is; else a line of text (cli_say) or what print makes of the result
 * (cli_show). run_or_json does the first two: *out is the finished op for
 * the text form (the caller releases it), or NULL when there is nothing
 * left to print. */
static int run_or_json(const cli_env *e, const cli_args *a, ordo_op *op,
                       ordo_op **out) {
  int rc = cli_run_op(e, op, out);
  if (rc == ORDO_CLI_OK && a->json) {
    cli_print_json(*out);
    ordo_op_release(*out);
    *out = NULL;
  }
  return rc;
}

int cli_say(const cli_env *e, const cli_args *a, ordo_op *op, const char *fmt,
            ...) {
  ordo_op *done;
  int rc = run_or_json(e, a, op, &done);
  if (done != NULL) {
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    ordo_op_release(done);
  }
  return rc;
}

int cli_show(const cli_env *e, const cli_args *a, ordo_op *op,
             cli_print_fn print) {
  ordo_op *done;
  int rc = run_or_json(e, a, op, &done);
  if (done != NULL) {
    json_t *r = cli_result_of(done);
    print(r, a);
    json_decref(r);
    ordo_op_release(done);
  }
  return rc;
}

/* Read all of path ('-': stdin) into a malloc'd, NUL-terminated buffer. */
int cli_read_input(const cli_env *e, const char *path, char **out,
                   size_t *len) {
  FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
  int rc;

  *out = NULL;
  *len = 0;
  if (f == NULL)
    return cli_usage_error(e, "cannot read %s: %s", path, strerror(errno));
  rc = ordo__read_stream(f, INPUT_MAX, out, len);
  if (f != stdin)
    fclose(f);
  if (rc == ORDO_E_NOMEM)
    return cli_report(e, ORDO_E_NOMEM, NULL);
  if (rc == ORDO_E_INVAL)
    return cli_usage_error(e, "%s: more than %u bytes", path, INPUT_MAX);
  if (rc != ORDO_OK)
    return cli_usage_error(e, "cannot read %s", path);
  return ORDO_CLI_OK;
}

/* --message TEXT or --in FILE, exactly one. *buf is malloc'd (--in) or NULL. */
int cli_message_of(const cli_env *e, const cli_args *a, const char **msg,
                   size_t *len, char **buf) {
  *buf = NULL;
  *msg = NULL;
  *len = 0;
  if ((a->message != NULL) == (a->in != NULL))
    return cli_usage_error(e, "give one of --message TEXT and --in FILE");
  if (a->message != NULL) {
    *msg = a->message;
    *len = strlen(a->message);
    return ORDO_CLI_OK;
  }
  int rc = cli_read_input(e, a->in, buf, len);
  *msg = *buf;
  return rc;
}

static int kdf_known(const char *m) {
  static const char *const names[] = {
      "argon2id_moderate", "ARGON2I_MOD", "argon2id_interactive",
      "ARGON2I_INT",       "raw",         "RAW"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (strcmp(m, names[i]) == 0)
      return 1;
  return 0;
}

/* "usage: PROG NAME SYNOPSIS", wrapped before column 80 between the
 * synopsis's top-level words (a bracketed group stays whole). */
static void print_synopsis(FILE *f, const char *prog, const cli_cmd *c) {
  int indent = fprintf(f, "usage: %s %s", prog, c->name), col = indent;
  const char *p = c->synopsis;
  while (*p != '\0') {
    const char *w = p;
    int depth = 0, n;
    for (; *p != '\0' && (depth > 0 || *p != ' '); p++)
      depth += (*p == '[' || *p == '(') - (*p == ']' || *p == ')');
    n = (int)(p - w);
    if (col + 1 + n > 79) {
      fprintf(f, "\n%*s", indent, "");
      col = indent;
    }
    col += fprintf(f, " %.*s", n, w);
    while (*p == ' ')
      p++;
  }
  fputc('\n', f);
}

static void cmd_usage(FILE *f, const char *prog, const cli_cmd *c) {
  print_synopsis(f, prog, c);
  fprintf(f, "\n%s\n\n", c->about);
  for (size_t i = 0; i < CLI_NFLAGS; i++) {
    const cli_flag *fl = &cli_flags[i];
    char head[40];
    const char *h = fl->help, *nl;
    if (!(c->flags & fl->bit))
      continue;
    snprintf(head, sizeof head, "%s%s%s", fl->name, fl->metavar ? " " : "",
             fl->metavar ? fl->metavar : "");
    fprintf(f, "  %-22s ", head);
    while ((nl = strchr(h, '\n')) != NULL) {
      fprintf(f, "%.*s\n%25s", (int)(nl - h), h, "");
      h = nl + 1;
    }
    fprintf(f, "%s\n", h);
  }
  fprintf(f, "  %-22s show this help\n", "-h, --help");
  if (c->needs & NEED_KEY)
    fputs("\nThe wallet key is never taken on the command line: it comes from\n"
          "$ORDO_WALLET_KEY, else --key-file FILE, else the terminal (echo\n"
          "off).\n",
          f);
  fputs("\nExit status: 0 ok, 1 failure, 2 bad usage or input.\n", f);
}

static void group_usage(FILE *f, const char *prog, const cli_cmd *cmds,
                        size_t n, const char *about) {
  fprintf(f, "usage: %s <command> [options]\n\n%s\n\ncommands:\n", prog, about);
  for (size_t i = 0; i < n; i++)
    fprintf(f, "  %-15s %s\n", cmds[i].name, cmds[i].summary);
  fprintf(f,
          "\nRun '%s <command> --help' for a command's options.\n"
          "Exit status: 0 ok, 1 failure, 2 bad usage or input.\n",
          prog);
}

/* Secrets on the command line get a word of their own. */
static int refuse_secret_flag(const cli_env *e, const char *k) {
  static const char *const keys[] = {"--key", "--passphrase", "--password",
                                     "--wallet-key", "--export-key"};
  if (strcmp(k, "--seed") == 0)
    return cli_usage_error(e,
                           "a seed is never taken on the command line (ps and "
                           "shell history would show it): set ORDO_DID_SEED or "
                           "give --seed-file FILE");
  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
    if (strcmp(k, keys[i]) == 0)
      return cli_usage_error(
          e, "a key is never taken on the command line (ps and "
             "shell history would show it): set ORDO_WALLET_KEY "
             "(ORDO_EXPORT_KEY) or give --key-file FILE "
             "(--export-key-file FILE)");
  return 0;
}

/* -1: --help was printed; else an exit code. */
static int parse_flags(const cli_env *e, const cli_cmd *c, int argc,
                       char **argv, cli_args *a) {
  unsigned seen = 0;
  memset(a, 0, sizeof(*a));
  for (int i = 0; i < argc; i++) {
    const char *k = argv[i];
    const cli_flag *fl = NULL;
    int rc;
    if (strcmp(k, "-h") == 0 || strcmp(k, "--help") == 0) {
      cmd_usage(stdout, e->prog, c);
      return -1;
    }
    if ((rc = refuse_secret_flag(e, k)) != 0)
      return rc;
    for (size_t j = 0; j < CLI_NFLAGS; j++)
      if (strcmp(k, cli_flags[j].name) == 0 && (c->flags & cli_flags[j].bit))
        fl = &cli_flags[j];
    if (fl == NULL || (fl->metavar != NULL && i + 1 >= argc)) {
      fprintf(stderr, "%s %s: unknown option or missing value '%s'\n", e->prog,
              c->name, k);
      cmd_usage(stderr, e->prog, c);
      return ORDO_CLI_USAGE;
    }
    if (seen & fl->bit)
      return cli_usage_error(e, "%s given twice", k);
    seen |= fl->bit;
    if (fl->metavar == NULL)
      a->json = 1;
    else
      *(const char **)(void *)((char *)a + fl->off) = argv[++i];
  }
  for (size_t j = 0; j < CLI_NFLAGS; j++)
    if ((c->required & cli_flags[j].bit) && !(seen & cli_flags[j].bit)) {
      fprintf(stderr, "%s %s: missing %s %s\n", e->prog, c->name,
              cli_flags[j].name, cli_flags[j].metavar);
      cmd_usage(stderr, e->prog, c);
      return ORDO_CLI_USAGE;
    }
  if (a->kdf != NULL && !kdf_known(a->kdf))
    return cli_usage_error(e, "unknown --kdf '%s'", a->kdf);
  if (a->export_kdf != NULL && !kdf_known(a->export_kdf))
    return cli_usage_error(e, "unknown --export-kdf '%s'", a->export_kdf);
  return ORDO_CLI_OK;
}

/* Parse, read the key, make the context, open, run, close, free. */
static int cli_exec(cli_env *e, const cli_cmd *c, int argc, char **argv) {
  ordo_config cfg;
  cli_args a;
  char prompt[128];
  int rc = parse_flags(e, c, argc, argv, &a);

  if (rc != ORDO_CLI_OK)
    return rc < 0 ? ORDO_CLI_OK : rc;
  if (c->needs & NEED_KEY) {
    snprintf(prompt, sizeof prompt, "Wallet key for '%s': ", a.id);
    if ((rc = cli_read_secret(e, "wallet key", "ORDO_WALLET_KEY", a.key_file,
                              prompt, c->needs & NEED_CONFIRM, 1, &e->key)) !=
        ORDO_CLI_OK)
      return rc;
    if ((rc = cli_kv_json(&e->creds, "key", e->key, "key_derivation_method",
                          a.kdf, (const char *)NULL)) != ORDO_OK)
      goto fail;
  }
  if ((rc = cli_kv_json(&e->config, "id", a.id, "path", a.path,
                        (const char *)NULL)) != ORDO_OK) {
    rc = rc == ORDO_E_INVAL
             ? cli_usage_error(e, "--id and --path must be UTF-8")
             : cli_report(e, rc, NULL);
    goto done;
  }
  /* A small context: one command at a time needs few threads; Argon2id
   * runs at the caller's priority, since the caller waits for it. */
  ordo_config_init(&cfg);
  cfg.cheap_threads = 2;
  cfg.heavy_threads = 1;
  cfg.heavy_nice = 0;
  cfg.net_threads = 1;
  cfg.queue_limit = 1024;
  if ((e->ctx = ordo_ctx_new(&cfg)) == NULL) {
    rc = cli_report(e, ordo_last_error(), ordo_last_error_message());
    goto done;
  }
  if (c->needs & NEED_OPEN) {
    if ((rc = cli_run_op_only(
             e, ordo_wallet_open(e->ctx, e->config, e->creds))) != ORDO_CLI_OK)
      goto done;
    e->open = 1;
  }
  rc = c->run(e, &a);
  if (e->open) {
    int crc = cli_run_op_only(e, ordo_wallet_close(e->ctx, a.id));
    if (rc == ORDO_CLI_OK)
      rc = crc;
  }
  goto done;
fail:
  rc = cli_report(e, rc, NULL);
done:
  ordo_ctx_free(e->ctx);
  sodium_free(e->creds);
  sodium_free(e->config);
  sodium_free(e->key); /* sodium_free wipes before it frees */
  e->ctx = NULL;
  e->creds = e->config = e->key = NULL;
  return rc;
}

int cli_group_main(const char *prog, const cli_cmd *cmds, size_t n,
                   const char *about, int argc, char **argv) {
  cli_env e = {.prog = prog};
  char name[64];
  size_t l1;
  int skip = 2;

  if (argc < 2 || strcmp(argv[1], "-h") == 0 ||
      strcmp(argv[1], "--help") == 0) {
    if (argc < 2)
      fprintf(stderr, "%s: missing command\n", prog);
    group_usage(argc < 2 ? stderr : stdout, prog, cmds, n, about);
    return argc < 2 ? ORDO_CLI_USAGE : ORDO_CLI_OK;
  }
  /* A first word that starts two-word names ("record add") needs a second. */
  l1 = strlen(argv[1]);
  for (size_t i = 0; i < n; i++)
    if (strncmp(cmds[i].name, argv[1], l1) == 0 && cmds[i].name[l1] == ' ')
      skip = 3;
  if (skip == 3 && (argc < 3 || strcmp(argv[2], "-h") == 0 ||
                    strcmp(argv[2], "--help") == 0)) {
    if (argc < 3)
      fprintf(stderr, "%s %s: missing command\n", prog, argv[1]);
    group_usage(argc < 3 ? stderr : stdout, prog, cmds, n, about);
    return argc < 3 ? ORDO_CLI_USAGE : ORDO_CLI_OK;
  }
  if (skip == 3)
    snprintf(name, sizeof name, "%s %s", argv[1], argv[2]);
  else
    snprintf(name, sizeof name, "%s", argv[1]);
  for (size_t i = 0; i < n; i++)
    if (strcmp(cmds[i].name, name) == 0)
      return cli_exec(&e, &cmds[i], argc - skip, argv + skip);
  fprintf(stderr, "%s: unknown command '%s'\n", prog, name);
  group_usage(stderr, prog, cmds, n, about);
  return ORDO_CLI_USAGE;
}

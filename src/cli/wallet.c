/*
 * wallet.c — `ordo wallet …` and `ordo did …`: the wallet, record and key
 * commands of the C API (include/ordo.h) on the command line.
 *
 * Every command is one row of a table below: its flags, the ones it
 * requires, whether it needs the wallet key and an open wallet, and a
 * function that runs the ops and prints the result. The common path
 * (cli_exec) parses the flags, reads the key, makes a small context, opens
 * the wallet, runs the row's function, then closes the wallet and frees
 * everything. With --json a command prints its op's JSON result as it is;
 * without, a readable form.
 *
 * Secrets (the wallet key, an export key, a DID seed) are never taken on
 * the command line, where ps and shell history would show them: they come
 * from the environment, from a file nobody else may read, or from the
 * terminal with echo off. They live in sodium_malloc'd buffers (guarded,
 * wiped by sodium_free), travel only inside the JSON handed to ordo, and
 * are never printed: an op message that contains the key is withheld.
 */
#include "cli/cli.h"
#include "ordo.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <sodium.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#define SECRET_MAX 4096           /* longest key, passphrase or seed */
#define INPUT_MAX (64u << 20)     /* longest --in or --value-file */

/* ------------------------------------------------------------------------ */
/* Flags                                                                     */
/* ------------------------------------------------------------------------ */

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
     "directory holding wallets (default $ORDO_WALLET_PATH,\n"
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
/* Commands                                                                  */
/* ------------------------------------------------------------------------ */

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

/* ------------------------------------------------------------------------ */
/* Helpers: JSON building, errors, input                                     */
/* ------------------------------------------------------------------------ */

static int utf8_valid(const unsigned char *s) {
  while (*s) {
    size_t n, i;
    unsigned c = *s;
    if (c < 0x80) {
      s++;
      continue;
    }
    if (c >= 0xc2 && c <= 0xdf)
      n = 1;
    else if (c >= 0xe0 && c <= 0xef)
      n = 2;
    else if (c >= 0xf0 && c <= 0xf4)
      n = 3;
    else
      return 0;
    for (i = 1; i <= n; i++)
      if ((s[i] & 0xc0) != 0x80)
        return 0;
    /* overlong 3- and 4-byte forms, surrogates, above U+10FFFF */
    if ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] > 0x9f) ||
        (c == 0xf0 && s[1] < 0x90) || (c == 0xf4 && s[1] > 0x8f))
      return 0;
    s += n + 1;
  }
  return 1;
}

static size_t json_put_string(char *out, const char *s) {
  static const char hex[] = "0123456789abcdef";
  size_t n = 0;
  out[n++] = '"';
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') {
      out[n++] = '\\';
      out[n++] = (char)c;
    } else if (c < 0x20) {
      memcpy(out + n, "\\u00", 4);
      out[n + 4] = hex[c >> 4];
      out[n + 5] = hex[c & 15];
      n += 6;
    } else {
      out[n++] = (char)c;
    }
  }
  out[n++] = '"';
  return n;
}

/*
 * A JSON object of string members from (name, value) pairs ending with a
 * NULL name; a NULL value leaves its member out. Built by hand into a
 * sodium_malloc'd buffer, so a secret among the values has no copy that
 * sodium_free does not wipe. ORDO_E_INVAL for a value that is not UTF-8.
 */
static int kv_json(char **out, ...) {
  va_list ap, ap2;
  const char *k, *v;
  size_t cap = 3, n = 0;
  char *buf;

  *out = NULL;
  va_start(ap, out);
  va_copy(ap2, ap);
  while ((k = va_arg(ap, const char *)) != NULL) {
    v = va_arg(ap, const char *);
    if (v == NULL)
      continue;
    if (!utf8_valid((const unsigned char *)v)) {
      va_end(ap);
      va_end(ap2);
      return ORDO_E_INVAL;
    }
    cap += 6 * strlen(k) + 6 * strlen(v) + 8;
  }
  va_end(ap);
  if ((buf = sodium_malloc(cap)) == NULL) {
    va_end(ap2);
    return ORDO_E_NOMEM;
  }
  buf[n++] = '{';
  while ((k = va_arg(ap2, const char *)) != NULL) {
    v = va_arg(ap2, const char *);
    if (v == NULL)
      continue;
    if (n > 1)
      buf[n++] = ',';
    n += json_put_string(buf + n, k);
    buf[n++] = ':';
    n += json_put_string(buf + n, v);
  }
  va_end(ap2);
  buf[n++] = '}';
  buf[n] = '\0';
  *out = buf;
  return ORDO_OK;
}

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
static int report(const cli_env *e, int rc, const char *msg) {
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
static int run_op(const cli_env *e, ordo_op *op, ordo_op **out) {
  int rc;
  *out = NULL;
  if (op == NULL)
    return report(e, ORDO_E_NOMEM, NULL);
  if ((rc = ordo_op_wait(op, -1)) != ORDO_OK) {
    rc = report(e, rc, ordo_op_message(op));
    ordo_op_release(op);
    return rc;
  }
  *out = op;
  return ORDO_CLI_OK;
}

/* Run op and drop it: for commands whose result nobody prints. */
static int run_op_only(const cli_env *e, ordo_op *op) {
  ordo_op *done;
  int rc = run_op(e, op, &done);
  ordo_op_release(done);
  return rc;
}

static void print_json(ordo_op *op) {
  const char *r = ordo_op_result(op);
  printf("%s\n", r != NULL ? r : "{}");
}

/* The op's result parsed (never NULL: an empty object if it has none). */
static json_t *result_of(ordo_op *op) {
  const char *r = ordo_op_result(op);
  json_t *o = r != NULL ? json_loads(r, 0, NULL) : NULL;
  return o != NULL ? o : json_object();
}

static const char *str_or(json_t *o, const char *k, const char *dflt) {
  const char *s = json_string_value(json_object_get(o, k));
  return s != NULL ? s : dflt;
}

static int usage_error(const cli_env *e, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static int usage_error(const cli_env *e, const char *fmt, ...) {
  va_list ap;
  fprintf(stderr, "%s: ", e->prog);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  return ORDO_CLI_USAGE;
}

static int done_say(const cli_args *a, ordo_op *op, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* The end of a command whose text answer is one line: with --json, op's
 * result as it is, else the line fmt makes. Releases op; ORDO_CLI_OK. */
static int done_say(const cli_args *a, ordo_op *op, const char *fmt, ...) {
  va_list ap;
  if (a->json) {
    print_json(op);
  } else {
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
  }
  ordo_op_release(op);
  return ORDO_CLI_OK;
}

/* The end of a command that prints from its result: with --json, op's
 * result as it is and 0; else 1 with the result parsed in *r (never NULL
 * but for lack of memory), for the caller to print and json_decref.
 * Releases op either way. */
static int done_result(const cli_args *a, ordo_op *op, json_t **r) {
  int text = !a->json;
  *r = NULL;
  if (text)
    *r = result_of(op);
  else
    print_json(op);
  ordo_op_release(op);
  return text;
}

/* Read all of path ('-': stdin) into a malloc'd, NUL-terminated buffer. */
static int read_input(const cli_env *e, const char *path, char **out,
                      size_t *len) {
  FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
  size_t cap = 4096, n = 0;
  char *buf;

  *out = NULL;
  *len = 0;
  if (f == NULL)
    return usage_error(e, "cannot read %s: %s", path, strerror(errno));
  if ((buf = malloc(cap + 1)) == NULL)
    goto nomem;
  for (;;) {
    size_t got = fread(buf + n, 1, cap - n, f);
    n += got;
    if (got == 0)
      break;
    if (n == cap) {
      char *p;
      if (cap >= INPUT_MAX) {
        free(buf);
        if (f != stdin)
          fclose(f);
        return usage_error(e, "%s: more than %u bytes", path, INPUT_MAX);
      }
      if ((p = realloc(buf, 2 * cap + 1)) == NULL)
        goto nomem;
      buf = p;
      cap *= 2;
    }
  }
  if (ferror(f)) {
    free(buf);
    if (f != stdin)
      fclose(f);
    return usage_error(e, "cannot read %s", path);
  }
  if (f != stdin)
    fclose(f);
  buf[n] = '\0';
  *out = buf;
  *len = n;
  return ORDO_CLI_OK;
nomem:
  free(buf);
  if (f != stdin)
    fclose(f);
  return report(e, ORDO_E_NOMEM, NULL);
}

/* --message TEXT or --in FILE, exactly one. *buf is malloc'd (--in) or NULL. */
static int message_of(const cli_env *e, const cli_args *a, const char **msg,
                      size_t *len, char **buf) {
  *buf = NULL;
  *msg = NULL;
  *len = 0;
  if ((a->message != NULL) == (a->in != NULL))
    return usage_error(e, "give one of --message TEXT and --in FILE");
  if (a->message != NULL) {
    *msg = a->message;
    *len = strlen(a->message);
    return ORDO_CLI_OK;
  }
  int rc = read_input(e, a->in, buf, len);
  *msg = *buf;
  return rc;
}

/* A strict unsigned decimal. */
static int parse_count(const char *s, unsigned long long *out) {
  char *end;
  if (s == NULL) {
    *out = 0;
    return 0;
  }
  if (*s < '0' || *s > '9')
    return -1;
  errno = 0;
  *out = strtoull(s, &end, 10);
  return errno != 0 || *end != '\0' ? -1 : 0;
}

static int kdf_known(const char *m) {
  static const char *const names[] = {"argon2id_moderate", "ARGON2I_MOD",
                                      "argon2id_interactive", "ARGON2I_INT",
                                      "raw", "RAW"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (strcmp(m, names[i]) == 0)
      return 1;
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Secrets: environment, file, terminal                                      */
/* ------------------------------------------------------------------------ */

/* Trailing CR/LF go; what is left must be one non-empty UTF-8 line. */
static int secret_check(const cli_env *e, const char *what, char *s,
                        size_t n) {
  while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r'))
    s[--n] = '\0';
  if (n == 0)
    return usage_error(e, "the %s is empty", what);
  if (memchr(s, '\n', n) != NULL || memchr(s, '\r', n) != NULL ||
      strlen(s) != n)
    return usage_error(e, "the %s must be one line of text", what);
  if (!utf8_valid((const unsigned char *)s))
    return usage_error(e, "the %s is not UTF-8", what);
  return ORDO_CLI_OK;
}

/* Read a secret file that nobody else may read into buf (SECRET_MAX + 1). */
static int secret_from_file(const cli_env *e, const char *what,
                            const char *path, char *buf) {
  struct stat st;
  size_t n = 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC);

  if (fd < 0)
    return usage_error(e, "%s file %s: %s", what, path, strerror(errno));
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return usage_error(e, "%s file %s: not a regular file", what, path);
  }
  if (st.st_mode & S_IROTH) {
    close(fd);
    return usage_error(e, "%s file %s is world-readable (mode %03o): chmod "
                       "o-r it (0600 is usual)", what, path,
                       (unsigned)(st.st_mode & 0777));
  }
  for (;;) {
    ssize_t got = read(fd, buf + n, SECRET_MAX + 1 - n);
    if (got < 0 && errno == EINTR)
      continue;
    if (got < 0) {
      close(fd);
      return usage_error(e, "%s file %s: %s", what, path, strerror(errno));
    }
    if (got == 0)
      break;
    n += (size_t)got;
    if (n > SECRET_MAX) {
      close(fd);
      return usage_error(e, "%s file %s: longer than %d bytes", what, path,
                         SECRET_MAX);
    }
  }
  close(fd);
  buf[n] = '\0';
  return secret_check(e, what, buf, n);
}

/* The terminal's settings while echo is off, for the signal handler. */
static int tty_fd = -1;
static struct termios tty_saved;

static void tty_restore_and_die(int sig) {
  if (tty_fd >= 0)
    tcsetattr(tty_fd, TCSAFLUSH, &tty_saved);
  signal(sig, SIG_DFL);
  raise(sig);
}

/* Ask on the controlling terminal with echo off. */
static int secret_from_tty(const cli_env *e, const char *prompt, char *buf) {
  static const int sigs[] = {SIGINT, SIGTERM, SIGQUIT, SIGHUP};
  struct sigaction sa, old[4];
  struct termios quiet;
  size_t n = 0;
  int fd, rc = ORDO_CLI_OK;
  char c;

  if ((fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC)) < 0)
    return usage_error(e, "no wallet key: set ORDO_WALLET_KEY or give "
                       "--key-file FILE");
  if (tcgetattr(fd, &tty_saved) != 0) {
    close(fd);
    return usage_error(e, "cannot read the terminal's settings");
  }
  quiet = tty_saved;
  quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHOE | ECHOK);
  quiet.c_lflag |= ECHONL;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = tty_restore_and_die;
  sigemptyset(&sa.sa_mask);
  tty_fd = fd;
  for (size_t i = 0; i < 4; i++)
    sigaction(sigs[i], &sa, &old[i]);
  if (write(fd, prompt, strlen(prompt)) < 0 ||
      tcsetattr(fd, TCSAFLUSH, &quiet) != 0) {
    rc = usage_error(e, "cannot turn the terminal's echo off");
    goto done;
  }
  for (;;) {
    ssize_t got = read(fd, &c, 1);
    if (got < 0 && errno == EINTR)
      continue;
    if (got <= 0 || c == '\n')
      break;
    if (n == SECRET_MAX) {
      rc = usage_error(e, "the key is longer than %d bytes", SECRET_MAX);
      break;
    }
    buf[n++] = c;
  }
  c = 0;
  buf[n] = '\0';
done:
  tcsetattr(fd, TCSAFLUSH, &tty_saved);
  tty_fd = -1;
  for (size_t i = 0; i < 4; i++)
    sigaction(sigs[i], &old[i], NULL);
  close(fd);
  return rc != ORDO_CLI_OK ? rc : secret_check(e, "key", buf, n);
}

/*
 * A secret from the environment variable env, else file (when given), else
 * the terminal (when ask is a prompt and stdin is one), else none: *out
 * NULL and, for required ones, a usage error. *out is sodium_malloc'd.
 */
static int read_secret(const cli_env *e, const char *what, const char *env,
                       const char *file, const char *ask, int confirm,
                       int required, char **out) {
  const char *v = getenv(env);
  char *buf;
  int rc;

  *out = NULL;
  if (file == NULL && (v == NULL || v[0] == '\0') &&
      (ask == NULL || !isatty(STDIN_FILENO))) {
    if (!required)
      return ORDO_CLI_OK;
    return usage_error(e, "no %s: set %s, or give --key-file FILE", what, env);
  }
  if ((buf = sodium_malloc(SECRET_MAX + 1)) == NULL)
    return report(e, ORDO_E_NOMEM, NULL);
  if (file != NULL) {
    rc = secret_from_file(e, what, file, buf);
  } else if (v != NULL && v[0] != '\0') {
    size_t n = strlen(v);
    if (n > SECRET_MAX) {
      rc = usage_error(e, "$%s is longer than %d bytes", env, SECRET_MAX);
    } else {
      memcpy(buf, v, n + 1);
      rc = secret_check(e, what, buf, n);
    }
  } else {
    rc = secret_from_tty(e, ask, buf);
    if (rc == ORDO_CLI_OK && confirm) {
      char *again = sodium_malloc(SECRET_MAX + 1);
      if (again == NULL)
        rc = report(e, ORDO_E_NOMEM, NULL);
      else if ((rc = secret_from_tty(e, "Again: ", again)) == ORDO_CLI_OK &&
               strcmp(buf, again) != 0)
        rc = usage_error(e, "the keys do not match");
      sodium_free(again);
    }
  }
  if (rc != ORDO_CLI_OK) {
    sodium_free(buf);
    return rc;
  }
  *out = buf;
  return ORDO_CLI_OK;
}

/* ------------------------------------------------------------------------ */
/* ordo wallet                                                               */
/* ------------------------------------------------------------------------ */

/* The export file's config: {"path", "key", "key_derivation_method"}. */
static int export_file_json(cli_env *e, const cli_args *a, const char *path,
                            char **out) {
  char *fkey = NULL;
  int rc = read_secret(e, "export key", "ORDO_EXPORT_KEY", a->export_key_file,
                       NULL, 0, 0, &fkey);
  if (rc != ORDO_CLI_OK)
    return rc;
  rc = kv_json(out, "path", path, "key", fkey != NULL ? fkey : e->key,
               "key_derivation_method", a->export_kdf, (const char *)NULL);
  sodium_free(fkey);
  if (rc == ORDO_E_INVAL)
    return usage_error(e, "%s is not UTF-8", path);
  return rc != ORDO_OK ? report(e, rc, NULL) : ORDO_CLI_OK;
}

static int w_create(cli_env *e, const cli_args *a) {
  ordo_op *op = NULL;
  int rc = run_op(e, ordo_wallet_create(e->ctx, e->config, e->creds), &op);
  if (rc != ORDO_CLI_OK)
    return rc;
  return done_say(a, op, "created wallet '%s'\n", a->id);
}

/* The wallet was opened by cli_exec: nothing left but to say so. */
static int w_open_check(cli_env *e, const cli_args *a) {
  (void)e;
  if (a->json)
    printf("{\"id\":\"%s\",\"open\":true}\n", a->id);
  else
    printf("wallet '%s' opens with this key\n", a->id);
  return ORDO_CLI_OK;
}

static int w_delete(cli_env *e, const cli_args *a) {
  ordo_op *op = NULL;
  int rc = run_op(e, ordo_wallet_delete(e->ctx, e->config, e->creds), &op);
  if (rc != ORDO_CLI_OK)
    return rc;
  return done_say(a, op, "deleted wallet '%s'\n", a->id);
}

static int w_list(cli_env *e, const cli_args *a) {
  ordo_op *op = NULL;
  json_t *r;
  int rc = run_op(e, ordo_wallet_list(e->ctx, e->config), &op);
  if (rc != ORDO_CLI_OK)
    return rc;
  if (done_result(a, op, &r)) {
    json_t *w;
    size_t i;
    json_array_foreach(json_object_get(r, "wallets"), i, w)
        printf("%s\n", str_or(w, "id", "?"));
    json_decref(r);
  }
  return ORDO_CLI_OK;
}

static int w_export(cli_env *e, const cli_args *a) {
  char *xcfg;
  ordo_op *op = NULL;
  json_t *r;
  int rc = export_file_json(e, a, a->to, &xcfg);
  if (rc != ORDO_CLI_OK)
    return rc;
  rc = run_op(e, ordo_wallet_export(e->ctx, a->id, xcfg), &op);
  sodium_free(xcfg);
  if (rc != ORDO_CLI_OK)
    return rc;
  if (done_result(a, op, &r)) {
    printf("exported %lld records to %s\n",
           (long long)json_integer_value(json_object_get(r, "records")), a->to);
    json_decref(r);
  }
  return ORDO_CLI_OK;
}

static int w_import(cli_env *e, const cli_args *a) {
  char *icfg;
  ordo_op *op = NULL;
  json_t *r;
  int rc = export_file_json(e, a, a->from, &icfg);
  if (rc != ORDO_CLI_OK)
    return rc;
  rc = run_op(e, ordo_wallet_import(e->ctx, e->config, e->creds, icfg), &op);
  sodium_free(icfg);
  if (rc != ORDO_CLI_OK)
    return rc;
  if (done_result(a, op, &r)) {
    printf("imported %lld records into wallet '%s'\n",
           (long long)json_integer_value(json_object_get(r, "records")), a->id);
    json_decref(r);
  }
  return ORDO_CLI_OK;
}

/* --value V or --value-file FILE, at most one; *buf malloc'd or NULL. */
static int value_of(const cli_env *e, const cli_args *a, const char **value,
                    char **buf) {
  size_t len;
  int rc;
  *buf = NULL;
  *value = a->value;
  if (a->value_file == NULL)
    return ORDO_CLI_OK;
  if (a->value != NULL)
    return usage_error(e, "give --value or --value-file, not both");
  if ((rc = read_input(e, a->value_file, buf, &len)) != ORDO_CLI_OK)
    return rc;
  if (strlen(*buf) != len) {
    free(*buf);
    *buf = NULL;
    return usage_error(e, "%s: a value cannot hold NUL bytes", a->value_file);
  }
  *value = *buf;
  return ORDO_CLI_OK;
}

static void print_record(json_t *rec) {
  const char *k;
  json_t *v;
  printf("type:  %s\n", str_or(rec, "type", "?"));
  printf("name:  %s\n", str_or(rec, "name", "?"));
  printf("value: %s\n", str_or(rec, "value", ""));
  printf("tags: ");
  json_object_foreach(json_object_get(rec, "tags"), k, v)
      printf(" %s=%s", k, json_string_value(v) ? json_string_value(v) : "");
  putchar('\n');
}

static const char record_opts[] =
    "{\"retrieve_value\":true,\"retrieve_tags\":true,\"retrieve_type\":true}";

/* Print a record with --json as get returns it, or readably. */
static int show_record(cli_env *e, const cli_args *a) {
  ordo_op *op = NULL;
  json_t *r;
  int rc = run_op(e, ordo_record_get(e->ctx, a->id, a->type, a->name,
                                     record_opts), &op);
  if (rc != ORDO_CLI_OK)
    return rc;
  if (done_result(a, op, &r)) {
    print_record(r);
    json_decref(r);
  }
  return ORDO_CLI_OK;
}

static int r_add(cli_env *e, const cli_args *a) {
  const char *value;
  char *buf;
  ordo_op *op = NULL;
  int rc = value_of(e, a, &value, &buf);
  if (rc != ORDO_CLI_OK)
    return rc;
  rc = run_op(e, ordo_record_add(e->ctx, a->id, a->type, a->name,
                                 value != NULL ? value : "", a->tags), &op);
  free(buf);
  if (rc != ORDO_CLI_OK)
    return rc;
  return done_say(a, op, "added %s/%s\n", a->type, a->name);
}

static int r_get(cli_env *e, const cli_args *a) { return show_record(e, a); }

/* Value, then tags (replaced, added, deleted): one op each, in that order;
 * then the record as it is now. */
static int r_update(cli_env *e, const cli_args *a) {
  const char *value;
  char *buf;
  int rc;

  if (a->value == NULL && a->value_file == NULL && a->tags == NULL &&
      a->add_tags == NULL && a->delete_tags == NULL)
    return usage_error(e, "record update: give --value, --value-file, --tags, "
                       "--add-tags or --delete-tags");
  if ((rc = value_of(e, a, &value, &buf)) != ORDO_CLI_OK)
    return rc;
  if (value != NULL)
    rc = run_op_only(e, ordo_record_update_value(e->ctx, a->id, a->type,
                                                 a->name, value));
  free(buf);
  if (rc == ORDO_CLI_OK && a->tags != NULL)
    rc = run_op_only(e, ordo_record_update_tags(e->ctx, a->id, a->type,
                                                a->name, a->tags));
  if (rc == ORDO_CLI_OK && a->add_tags != NULL)
    rc = run_op_only(e, ordo_record_add_tags(e->ctx, a->id, a->type, a->name,
                                             a->add_tags));
  if (rc == ORDO_CLI_OK && a->delete_tags != NULL)
    rc = run_op_only(e, ordo_record_delete_tags(e->ctx, a->id, a->type,
                                                a->name, a->delete_tags));
  return rc != ORDO_CLI_OK ? rc : show_record(e, a);
}

static int r_delete(cli_env *e, const cli_args *a) {
  ordo_op *op = NULL;
  int rc = run_op(e, ordo_record_delete(e->ctx, a->id, a->type, a->name), &op);
  if (rc != ORDO_CLI_OK)
    return rc;
  return done_say(a, op, "deleted %s/%s\n", a->type, a->name);
}

static int r_search(cli_env *e, const cli_args *a) {
  unsigned long long offset, limit;
  ordo_op *op = NULL;
  json_t *r;
  int rc;

  if (parse_count(a->offset, &offset) != 0)
    return usage_error(e, "bad value '%s' for --offset", a->offset);
  if (parse_count(a->limit, &limit) != 0)
    return usage_error(e, "bad value '%s' for --limit", a->limit);
  rc = run_op(e, ordo_record_search(e->ctx, a->id, a->type,
                                    a->query != NULL ? a->query : "{}",
                                    "{\"retrieve_value\":true,"
                                    "\"retrieve_tags\":true,"
                                    "\"retrieve_type\":true,"
                                    "\"retrieve_total_count\":true}",
                                    offset, limit), &op);
  if (rc != ORDO_CLI_OK)
    return rc;
  if (done_result(a, op, &r)) {
    json_t *rec, *recs = json_object_get(r, "records");
    size_t i;
    json_array_foreach(recs, i, rec) {
      char *tags = json_dumps(json_object_get(rec, "tags"),
                              JSON_COMPACT | JSON_SORT_KEYS);
      printf("%s\t%s\t%s\n", str_or(rec, "name", "?"), str_or(rec, "value", ""),
             tags != NULL ? tags : "{}");
      free(tags);
    }
    printf("%zu of %lld records\n", json_array_size(recs),
           (long long)json_integer_value(json_object_get(r, "total")));
    json_decref(r);
  }
  return ORDO_CLI_OK;
}

static int r_count(cli_env *e, const cli_args *a) {
  ordo_op *op = NULL;
  json_t *r;
  int rc = run_op(e, ordo_record_count(e->ctx, a->id, a->type,
                                       a->query != NULL ? a->query : "{}"),
                  &op);
  if (rc != ORDO_CLI_OK)
    return rc;
  if (done_result(a, op, &r)) {
    printf("%lld\n",
           (long long)json_integer_value(json_object_get(r, "count")));
    json_decref(r);
  }
  return ORDO_CLI_OK;
}

static const cli_cmd wallet_cmds[] = {
    {"create", "create a wallet",
     "--id ID [--path DIR] [--kdf M] [--key-file FILE] [--json]",
     "Create a wallet whose key is the wallet key, through the KDF M.\n"
     "JSON: {\"id\":ID}.",
     F_WALLET | F_KDF, F_ID, NEED_KEY | NEED_CONFIRM, w_create},
    {"open-check", "check that a wallet opens with the key",
     "--id ID [--path DIR] [--key-file FILE] [--json]",
     "Open the wallet and close it again: exit 0 if the key is right,\n"
     "1 with ORDO_E_WALLET_ACCESS if not. JSON: {\"id\":ID,\"open\":true}.",
     F_WALLET, F_ID, NEED_KEY | NEED_OPEN, w_open_check},
    {"delete", "delete a wallet (checks the key first)",
     "--id ID [--path DIR] [--key-file FILE] [--json]",
     "Check the key, then remove the wallet and its files. JSON: {}.",
     F_WALLET, F_ID, NEED_KEY, w_delete},
    {"list", "list the wallets in a directory", "[--path DIR] [--json]",
     "One wallet id a line.\n"
     "JSON: {\"wallets\":[{\"id\":ID,\"open\":false},...]}.",
     F_PATH | F_JSON, 0, 0, w_list},
    {"export", "export a wallet to an encrypted file",
     "--id ID --to FILE [--path DIR] [--key-file FILE] [--export-key-file "
     "FILE] [--export-kdf M] [--json]",
     "Write every record to FILE, encrypted with the export key (the\n"
     "wallet key unless $ORDO_EXPORT_KEY or --export-key-file says\n"
     "otherwise). FILE appears only when complete.\n"
     "JSON: {\"path\":FILE,\"records\":N}.",
     F_WALLET | F_TO | F_EXPORT_KEY_FILE | F_EXPORT_KDF, F_ID | F_TO,
     NEED_KEY | NEED_OPEN, w_export},
    {"import", "create a wallet from an export file",
     "--id ID --from FILE [--path DIR] [--kdf M] [--key-file FILE] "
     "[--export-key-file FILE] [--json]",
     "Create the wallet ID (key: the wallet key, through --kdf) from the\n"
     "export FILE (key: $ORDO_EXPORT_KEY, --export-key-file, else the\n"
     "wallet key). A truncated or altered file fails with\n"
     "ORDO_E_WALLET_FILE and leaves no wallet.\n"
     "JSON: {\"id\":ID,\"records\":N}.",
     F_WALLET | F_KDF | F_FROM | F_EXPORT_KEY_FILE, F_ID | F_FROM,
     NEED_KEY | NEED_CONFIRM, w_import},
    {"record add", "add a record",
     "--id ID --type T --name N [--value V | --value-file FILE] [--tags "
     "JSON] [--path DIR] [--key-file FILE] [--json]",
     "Add a record (the value defaults to empty). ORDO_E_RECORD_DUPLICATE\n"
     "if TYPE/NAME exists. JSON: {}.",
     F_WALLET | F_TYPE | F_NAME | F_VALUE | F_VALUE_FILE | F_TAGS,
     F_ID | F_TYPE | F_NAME, NEED_KEY | NEED_OPEN, r_add},
    {"record get", "show a record",
     "--id ID --type T --name N [--path DIR] [--key-file FILE] [--json]",
     "JSON: {\"type\":T,\"name\":N,\"value\":V,\"tags\":{...}}.",
     F_WALLET | F_TYPE | F_NAME, F_ID | F_TYPE | F_NAME, NEED_KEY | NEED_OPEN,
     r_get},
    {"record update", "change a record's value or tags",
     "--id ID --type T --name N [--value V | --value-file FILE] [--tags "
     "JSON] [--add-tags JSON] [--delete-tags JSON] [--path DIR] [--key-file "
     "FILE] [--json]",
     "Set the value, replace the tags, add tags, delete tags: each given\n"
     "one in that order, one op each. Then print the record as get does.",
     F_WALLET | F_TYPE | F_NAME | F_VALUE | F_VALUE_FILE | F_TAGS |
         F_ADD_TAGS | F_DELETE_TAGS,
     F_ID | F_TYPE | F_NAME, NEED_KEY | NEED_OPEN, r_update},
    {"record delete", "delete a record",
     "--id ID --type T --name N [--path DIR] [--key-file FILE] [--json]",
     "ORDO_E_RECORD_NOT_FOUND if absent. JSON: {}.",
     F_WALLET | F_TYPE | F_NAME, F_ID | F_TYPE | F_NAME, NEED_KEY | NEED_OPEN,
     r_delete},
    {"record search", "search records of a type with WQL",
     "--id ID --type T [--query WQL] [--offset N] [--limit N] [--path DIR] "
     "[--key-file FILE] [--json]",
     "One record a line: name, value and tags, tab-separated; then a\n"
     "count. Bad WQL: ORDO_E_WQL, exit 2.\n"
     "JSON: {\"records\":[{\"type\",\"name\",\"value\",\"tags\"},...],\n"
     "       \"total\":N}.",
     F_WALLET | F_TYPE | F_QUERY | F_OFFSET | F_LIMIT, F_ID | F_TYPE,
     NEED_KEY | NEED_OPEN, r_search},
    {"record count", "count records of a type matching WQL",
     "--id ID --type T [--query WQL] [--path DIR] [--key-file FILE] [--json]",
     "JSON: {\"count\":N}.", F_WALLET | F_TYPE | F_QUERY, F_ID | F_TYPE,
     NEED_KEY | NEED_OPEN, r_count},
};

/* ------------------------------------------------------------------------ */
/* ordo did                                                                  */
/* ------------------------------------------------------------------------ */

/* {"seed":…,"metadata":…} for create and rotate; *out sodium_malloc'd. */
static int did_options(cli_env *e, const cli_args *a, char **out) {
  char *seed = NULL;
  int rc = read_secret(e, "seed", "ORDO_DID_SEED", a->seed_file, NULL, 0, 0,
                       &seed);
  if (rc != ORDO_CLI_OK)
    return rc;
  rc = kv_json(out, "seed", seed, "metadata", a->metadata, (const char *)NULL);
  sodium_free(seed);
  if (rc == ORDO_E_INVAL)
    return usage_error(e, "--metadata is not UTF-8");
  return rc != ORDO_OK ? report(e, rc, NULL) : ORDO_CLI_OK;
}

static void print_did(json_t *d) {
  json_t *next = json_object_get(d, "next_verkey");
  printf("did:      %s\n", str_or(d, "did", "?"));
  printf("verkey:   %s\n", str_or(d, "verkey", "?"));
  if (json_is_string(next))
    printf("next:     %s\n", json_string_value(next));
  printf("metadata: %s\n", str_or(d, "metadata", ""));
}

static int d_create(cli_env *e, const cli_args *a) {
  char *opts;
  ordo_op *op = NULL;
  json_t *r;
  int rc = did_options(e, a, &opts);
  if (rc != ORDO_CLI_OK)
    return rc;
  rc = run_op(e, ordo_did_create(e->ctx, a->id, opts), &op);
  sodium_free(opts);
  if (rc != ORDO_CLI_OK)
    return rc;
  if (done_result(a, op, &r)) {
    printf("did:      %s\nverkey:   %s\n", str_or(r, "did", "?"),
           str_or(r, "verkey", "?"));
    json_decref(r);
  }
  return ORDO_CLI_OK;
}

static int d_list(cli_env *e, const cli_args *a) {
  ordo_op *op = NULL;
  json_t *r;
  int rc = run_op(e, ordo_did_list(e->ctx, a->id), &op);
  if (rc != ORDO_CLI_OK)
    return rc;
  if (done_result(a, op, &r)) {
    json_t *d;
    size_t i;
    json_array_foreach(json_object_get(r, "dids"), i, d)
        printf("%s\t%s\t%s\n", str_or(d, "did", "?"), str_or(d, "verkey", "?"),
               str_or(d, "metadata", ""));
    json_decref(r);
  }
  return ORDO_CLI_OK;
}

static int d_get(cli_env *e, const cli_args *a) {
  ordo_op *op = NULL;
  json_t *r;
  int rc = run_op(e, ordo_did_get(e->ctx, a->id, a->did), &op);
  if (rc != ORDO_CLI_OK)
    return rc;
  if (done_result(a, op, &r)) {
    print_did(r);
    json_decref(r);
  }
  return ORDO_CLI_OK;
}

static int d_set_metadata(cli_env *e, const cli_args *a) {
  ordo_op *op = NULL;
  int rc = run_op(e, ordo_did_set_metadata(e->ctx, a->id, a->did, a->metadata),
                  &op);
  if (rc != ORDO_CLI_OK)
    return rc;
  return done_say(a, op, "metadata of %s set\n", a->did);
}

static int d_rotate(cli_env *e, const cli_args *a) {
  char *opts;
  ordo_op *op = NULL;
  json_t *r;
  int rc;
  if (a->metadata != NULL)
    return usage_error(e, "did rotate takes no --metadata");
  if ((rc = did_options(e, a, &opts)) != ORDO_CLI_OK)
    return rc;
  rc = run_op(e, ordo_did_rotate_start(e->ctx, a->id, a->did, opts), &op);
  sodium_free(opts);
  if (rc != ORDO_CLI_OK)
    return rc;
  if (done_result(a, op, &r)) {
    printf("next verkey: %s\n(ordo did apply --did %s makes it current)\n",
           str_or(r, "verkey", "?"), a->did);
    json_decref(r);
  }
  return ORDO_CLI_OK;
}

static int d_apply(cli_env *e, const cli_args *a) {
  ordo_op *op = NULL;
  json_t *r;
  int rc = run_op(e, ordo_did_rotate_apply(e->ctx, a->id, a->did), &op);
  if (rc != ORDO_CLI_OK)
    return rc;
  if (done_result(a, op, &r)) {
    printf("verkey: %s\n", str_or(r, "verkey", "?"));
    json_decref(r);
  }
  return ORDO_CLI_OK;
}

/* --verkey K, or --did DID's current verkey; *out malloc'd. */
static int verkey_of(cli_env *e, const cli_args *a, char **out) {
  ordo_op *op = NULL;
  json_t *r;
  int rc;
  *out = NULL;
  if ((a->verkey != NULL) == (a->did != NULL))
    return usage_error(e, "give one of --verkey K and --did DID");
  if (a->verkey != NULL) {
    *out = strdup(a->verkey);
    return *out != NULL ? ORDO_CLI_OK : report(e, ORDO_E_NOMEM, NULL);
  }
  if ((rc = run_op(e, ordo_did_get(e->ctx, a->id, a->did), &op)) != ORDO_CLI_OK)
    return rc;
  r = result_of(op);
  *out = strdup(str_or(r, "verkey", ""));
  json_decref(r);
  ordo_op_release(op);
  return *out != NULL ? ORDO_CLI_OK : report(e, ORDO_E_NOMEM, NULL);
}

static int d_sign(cli_env *e, const cli_args *a) {
  const char *msg;
  char *buf, *vk;
  size_t len;
  ordo_op *op = NULL;
  json_t *r;
  int rc = message_of(e, a, &msg, &len, &buf);
  if (rc != ORDO_CLI_OK)
    return rc;
  if ((rc = verkey_of(e, a, &vk)) == ORDO_CLI_OK)
    rc = run_op(e, ordo_sign(e->ctx, a->id, vk, msg, len), &op);
  free(buf);
  free(vk);
  if (rc != ORDO_CLI_OK)
    return rc;
  if (done_result(a, op, &r)) {
    printf("%s\n", str_or(r, "signature", "?"));
    json_decref(r);
  }
  return ORDO_CLI_OK;
}

/* A signature as base64, url-safe or standard, padded or not. */
static int decode_signature(const char *b64, unsigned char *sig, size_t cap,
                            size_t *len) {
  static const int variants[] = {
      sodium_base64_VARIANT_URLSAFE_NO_PADDING, sodium_base64_VARIANT_URLSAFE,
      sodium_base64_VARIANT_ORIGINAL_NO_PADDING,
      sodium_base64_VARIANT_ORIGINAL};
  for (size_t i = 0; i < sizeof variants / sizeof variants[0]; i++) {
    const char *end;
    if (sodium_base642bin(sig, cap, b64, strlen(b64), NULL, len, &end,
                          variants[i]) == 0 &&
        *end == '\0')
      return 0;
  }
  return -1;
}

static int d_verify(cli_env *e, const cli_args *a) {
  unsigned char sig[128];
  const char *msg;
  char *buf;
  size_t len, slen;
  ordo_op *op = NULL;
  json_t *r;
  int rc, valid;

  if (decode_signature(a->signature, sig, sizeof sig, &slen) != 0)
    return usage_error(e, "--signature is not base64");
  if ((rc = message_of(e, a, &msg, &len, &buf)) != ORDO_CLI_OK)
    return rc;
  rc = run_op(e, ordo_verify(e->ctx, a->verkey, msg, len, sig, slen), &op);
  free(buf);
  if (rc != ORDO_CLI_OK)
    return rc;
  r = result_of(op);
  valid = json_is_true(json_object_get(r, "valid"));
  json_decref(r);
  if (a->json)
    print_json(op);
  else
    printf("%s\n", valid ? "valid" : "invalid");
  ordo_op_release(op);
  if (!valid)
    fprintf(stderr, "%s: the signature does not verify\n", e->prog);
  return valid ? ORDO_CLI_OK : ORDO_CLI_FAIL;
}

static int d_pack(cli_env *e, const cli_args *a) {
  json_t *rcpt = json_array();
  const char *msg, *p = a->recipients;
  char *buf = NULL, *rjson = NULL;
  size_t len;
  ordo_op *op = NULL;
  int rc;

  while (rcpt != NULL && *p != '\0') {
    const char *comma = strchr(p, ',');
    size_t n = comma != NULL ? (size_t)(comma - p) : strlen(p);
    if (n > 0 && json_array_append_new(rcpt, json_stringn(p, n)) != 0)
      break;
    p += n + (comma != NULL);
  }
  if (rcpt == NULL || *p != '\0' ||
      (rjson = json_dumps(rcpt, JSON_COMPACT)) == NULL) {
    json_decref(rcpt);
    return report(e, ORDO_E_NOMEM, NULL);
  }
  if (json_array_size(rcpt) == 0) {
    json_decref(rcpt);
    free(rjson);
    return usage_error(e, "--recipients names no verkey");
  }
  json_decref(rcpt);
  if ((rc = message_of(e, a, &msg, &len, &buf)) == ORDO_CLI_OK)
    rc = run_op(e, ordo_pack(e->ctx, a->id, msg, len, rjson, a->sender), &op);
  free(buf);
  free(rjson);
  if (rc != ORDO_CLI_OK)
    return rc;
  print_json(op); /* the envelope is the output either way */
  ordo_op_release(op);
  return ORDO_CLI_OK;
}

static int d_unpack(cli_env *e, const cli_args *a) {
  const unsigned char *data;
  char *env;
  size_t len;
  ordo_op *op = NULL;
  int rc = read_input(e, a->in, &env, &len);
  if (rc != ORDO_CLI_OK)
    return rc;
  rc = run_op(e, ordo_unpack(e->ctx, a->id, env), &op);
  free(env);
  if (rc != ORDO_CLI_OK)
    return rc;
  if (a->json)
    print_json(op);
  else if (ordo_op_result_bytes(op, &data, &len) == ORDO_OK)
    fwrite(data, 1, len, stdout);
  ordo_op_release(op);
  return ORDO_CLI_OK;
}

static const cli_cmd did_cmds[] = {
    {"create", "create a DID and its ed25519 key in a wallet",
     "--id ID [--seed-file FILE] [--metadata M] [--path DIR] [--key-file "
     "FILE] [--json]",
     "A random key unless a seed is given ($ORDO_DID_SEED or --seed-file;\n"
     "never on the command line). JSON: {\"did\":DID,\"verkey\":K}.",
     F_WALLET | F_SEED_FILE | F_METADATA, F_ID, NEED_KEY | NEED_OPEN,
     d_create},
    {"list", "list a wallet's DIDs",
     "--id ID [--path DIR] [--key-file FILE] [--json]",
     "One DID a line: did, verkey, metadata, tab-separated.\n"
     "JSON: {\"dids\":[{\"did\",\"verkey\",\"metadata\"},...]}.",
     F_WALLET, F_ID, NEED_KEY | NEED_OPEN, d_list},
    {"get", "show a DID",
     "--id ID --did DID [--path DIR] [--key-file FILE] [--json]",
     "JSON: {\"did\",\"verkey\",\"metadata\"} (metadata null when unset;\n"
     "\"next_verkey\" during a rotation). ORDO_E_KEY_NOT_FOUND if unknown.",
     F_WALLET | F_DID, F_ID | F_DID, NEED_KEY | NEED_OPEN, d_get},
    {"set-metadata", "set a DID's metadata",
     "--id ID --did DID --metadata M [--path DIR] [--key-file FILE] [--json]",
     "JSON: {}.", F_WALLET | F_DID | F_METADATA, F_ID | F_DID | F_METADATA,
     NEED_KEY | NEED_OPEN, d_set_metadata},
    {"rotate", "start a key rotation: make the DID's next key",
     "--id ID --did DID [--seed-file FILE] [--path DIR] [--key-file FILE] "
     "[--json]",
     "Make a new key (seeded as for create) and record it as the DID's\n"
     "next verkey; 'ordo did apply' makes it current.\n"
     "JSON: {\"verkey\":NEXT}.",
     F_WALLET | F_DID | F_SEED_FILE, F_ID | F_DID, NEED_KEY | NEED_OPEN,
     d_rotate},
    {"apply", "finish a key rotation: the next key becomes current",
     "--id ID --did DID [--path DIR] [--key-file FILE] [--json]",
     "ORDO_E_STATE without a started rotation. The old key stays in the\n"
     "wallet. JSON: {\"verkey\":K}.",
     F_WALLET | F_DID, F_ID | F_DID, NEED_KEY | NEED_OPEN, d_apply},
    {"sign", "sign a message with a key of the wallet",
     "--id ID (--verkey K | --did DID) (--message TEXT | --in FILE) [--path "
     "DIR] [--key-file FILE] [--json]",
     "Print the ed25519 signature, base64url.\n"
     "JSON: {\"signature\":B64}.",
     F_WALLET | F_VERKEY | F_DID | F_MESSAGE | F_IN, F_ID,
     NEED_KEY | NEED_OPEN, d_sign},
    {"verify", "verify a signature (no wallet)",
     "--verkey K --signature B64 (--message TEXT | --in FILE) [--json]",
     "Print valid or invalid; exit 0 if valid, 1 if not. A malformed\n"
     "verkey is ORDO_E_BAD_KEY, exit 2. JSON: {\"valid\":true|false}.",
     F_VERKEY | F_SIGNATURE | F_MESSAGE | F_IN | F_JSON,
     F_VERKEY | F_SIGNATURE, 0, d_verify},
    {"pack", "pack a message for recipients (Aries RFC 0019)",
     "--id ID --recipients K,K [--sender K] (--message TEXT | --in FILE) "
     "[--path DIR] [--key-file FILE] [--json]",
     "Print the envelope JSON (the same with or without --json):\n"
     "authcrypt from --sender, a verkey of the wallet, else anoncrypt.",
     F_WALLET | F_RECIPIENTS | F_SENDER | F_MESSAGE | F_IN,
     F_ID | F_RECIPIENTS, NEED_KEY | NEED_OPEN, d_pack},
    {"unpack", "unpack an envelope with a key of the wallet",
     "--id ID --in FILE [--path DIR] [--key-file FILE] [--json]",
     "Print the message's bytes. ORDO_E_UNPACK if tampered or for no key\n"
     "of the wallet. JSON: {\"message\",\"recipient_verkey\","
     "\"sender_verkey\"}.",
     F_WALLET | F_IN, F_ID | F_IN, NEED_KEY | NEED_OPEN, d_unpack},
};

/* ------------------------------------------------------------------------ */
/* Parsing, help, the common path                                            */
/* ------------------------------------------------------------------------ */

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
  fprintf(f, "\nRun '%s <command> --help' for a command's options.\n"
             "Exit status: 0 ok, 1 failure, 2 bad usage or input.\n",
          prog);
}

/* Secrets on the command line get a word of their own. */
static int refuse_secret_flag(const cli_env *e, const char *k) {
  static const char *const keys[] = {"--key", "--passphrase", "--password",
                                     "--wallet-key", "--export-key"};
  if (strcmp(k, "--seed") == 0)
    return usage_error(e, "a seed is never taken on the command line (ps and "
                       "shell history would show it): set ORDO_DID_SEED or "
                       "give --seed-file FILE");
  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
    if (strcmp(k, keys[i]) == 0)
      return usage_error(e, "a key is never taken on the command line (ps and "
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
      return usage_error(e, "%s given twice", k);
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
    return usage_error(e, "unknown --kdf '%s'", a->kdf);
  if (a->export_kdf != NULL && !kdf_known(a->export_kdf))
    return usage_error(e, "unknown --export-kdf '%s'", a->export_kdf);
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
    if ((rc = read_secret(e, "wallet key", "ORDO_WALLET_KEY", a.key_file,
                          prompt, c->needs & NEED_CONFIRM, 1, &e->key)) !=
        ORDO_CLI_OK)
      return rc;
    if ((rc = kv_json(&e->creds, "key", e->key, "key_derivation_method",
                      a.kdf, (const char *)NULL)) != ORDO_OK)
      goto fail;
  }
  if ((rc = kv_json(&e->config, "id", a.id, "path", a.path,
                    (const char *)NULL)) != ORDO_OK) {
    rc = rc == ORDO_E_INVAL ? usage_error(e, "--id and --path must be UTF-8")
                            : report(e, rc, NULL);
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
    rc = report(e, ordo_last_error(), ordo_last_error_message());
    goto done;
  }
  if (c->needs & NEED_OPEN) {
    if ((rc = run_op_only(e, ordo_wallet_open(e->ctx, e->config, e->creds))) !=
        ORDO_CLI_OK)
      goto done;
    e->open = 1;
  }
  rc = c->run(e, &a);
  if (e->open) {
    int crc = run_op_only(e, ordo_wallet_close(e->ctx, a.id));
    if (rc == ORDO_CLI_OK)
      rc = crc;
  }
  goto done;
fail:
  rc = report(e, rc, NULL);
done:
  ordo_ctx_free(e->ctx);
  sodium_free(e->creds);
  sodium_free(e->config);
  sodium_free(e->key); /* sodium_free wipes before it frees */
  e->ctx = NULL;
  e->creds = e->config = e->key = NULL;
  return rc;
}

static int group_main(const char *prog, const cli_cmd *cmds, size_t n,
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

int ordo__wallet_main(int argc, char **argv) {
  if (sodium_init() < 0) {
    fputs("ordo wallet: libsodium failed to start\n", stderr);
    return ORDO_CLI_FAIL;
  }
  return group_main("ordo wallet", wallet_cmds,
                    sizeof wallet_cmds / sizeof wallet_cmds[0],
                    "Wallets and their records. Each command opens the\n"
                    "wallet, does one thing and closes it. The wallet key is\n"
                    "never taken on the command line: $ORDO_WALLET_KEY, else\n"
                    "--key-file FILE (not world-readable), else the terminal\n"
                    "with echo off.",
                    argc, argv);
}

int ordo__did_main(int argc, char **argv) {
  if (sodium_init() < 0) {
    fputs("ordo did: libsodium failed to start\n", stderr);
    return ORDO_CLI_FAIL;
  }
  return group_main("ordo did", did_cmds, sizeof did_cmds / sizeof did_cmds[0],
                    "DIDs and ed25519 keys in a wallet: create, rotate,\n"
                    "sign, verify, pack and unpack. The wallet key as for\n"
                    "'ordo wallet'; a seed from $ORDO_DID_SEED or\n"
                    "--seed-file, never from the command line.",
                    argc, argv);
}

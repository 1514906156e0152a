/*
 * secret.c — secrets for `ordo wallet` and `ordo did`: the wallet key, an
 * export key, a DID seed. Never from the command line: from the
 * environment, from a file nobody else may read, or from the terminal with
 * echo off. They live in sodium_malloc'd buffers (guarded, wiped by
 * sodium_free) and travel only inside the JSON handed to ordo, which
 * cli_kv_json builds in such a buffer too.
 */
#include "cli/wallet_int.h"
#include "base/utf8.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#define SECRET_MAX 4096 /* longest key, passphrase or seed */

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
int cli_kv_json(char **out, ...) {
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
    if (!ordo__utf8_valid(v)) {
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

/* ------------------------------------------------------------------------ */
/* Secrets: environment, file, terminal                                      */
/* ------------------------------------------------------------------------ */

/* Trailing CR/LF go; what is left must be one non-empty UTF-8 line. */
static int secret_check(const cli_env *e, const char *what, char *s, size_t n) {
  while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r'))
    s[--n] = '\0';
  if (n == 0)
    return cli_usage_error(e, "the %s is empty", what);
  if (memchr(s, '\n', n) != NULL || memchr(s, '\r', n) != NULL ||
      strlen(s) != n)
    return cli_usage_error(e, "the %s must be one line of text", what);
  if (!ordo__utf8_valid(s))
    return cli_usage_error(e, "the %s is not UTF-8", what);
  return ORDO_CLI_OK;
}

/* Read a secret file that nobody else may read into buf (SECRET_MAX + 1). */
static int secret_from_file(const cli_env *e, const char *what,
                            const char *path, char *buf) {
  struct stat st;
  size_t n = 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC);

  if (fd < 0)
    return cli_usage_error(e, "%s file %s: %s", what, path, strerror(errno));
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return cli_usage_error(e, "%s file %s: not a regular file", what, path);
  }
  if (st.st_mode & S_IROTH) {
    close(fd);
    return cli_usage_error(e,
                           "%s file %s is world-readable (mode %03o): chmod "
                           "o-r it (0600 is usual)",
                           what, path, (unsigned)(st.st_mode & 0777));
  }
  for (;;) {
    ssize_t got = read(fd, buf + n, SECRET_MAX + 1 - n);
    if (got < 0 && errno == EINTR)
      continue;
    if (got < 0) {
      close(fd);
      return cli_usage_error(e, "%s file %s: %s", what, path, strerror(errno));
    }
    if (got == 0)
      break;
    n += (size_t)got;
    if (n > SECRET_MAX) {
      close(fd);
      return cli_usage_error(e, "%s file %s: longer than %d bytes", what, path,
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
    return cli_usage_error(e, "no wallet key: set ORDO_WALLET_KEY or give "
                              "--key-file FILE");
  if (tcgetattr(fd, &tty_saved) != 0) {
    close(fd);
    return cli_usage_error(e, "cannot read the terminal's settings");
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
    rc = cli_usage_error(e, "cannot turn the terminal's echo off");
    goto done;
  }
  for (;;) {
    ssize_t got = read(fd, &c, 1);
    if (got < 0 && errno == EINTR)
      continue;
    if (got <= 0 || c == '\n')
      break;
    if (n == SECRET_MAX) {
      rc = cli_usage_error(e, "the key is longer than %d bytes", SECRET_MAX);
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
int cli_read_secret(const cli_env *e, const char *what, const char *env,
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
    return cli_usage_error(e, "no %s: set %s, or give --key-file FILE", what,
                           env);
  }
  if ((buf = sodium_malloc(SECRET_MAX + 1)) == NULL)
    return cli_report(e, ORDO_E_NOMEM, NULL);
  if (file != NULL) {
    rc = secret_from_file(e, what, file, buf);
  } else if (v != NULL && v[0] != '\0') {
    size_t n = strlen(v);
    if (n > SECRET_MAX) {
      rc = cli_usage_error(e, "$%s is longer than %d bytes", env, SECRET_MAX);
    } else {
      memcpy(buf, v, n + 1);
      rc = secret_check(e, what, buf, n);
    }
  } else {
    rc = secret_from_tty(e, ask, buf);
    if (rc == ORDO_CLI_OK && confirm) {
      char *again = sodium_malloc(SECRET_MAX + 1);
      if (again == NULL)
        rc = cli_report(e, ORDO_E_NOMEM, NULL);
      else if ((rc = secret_from_tty(e, "Again: ", again)) == ORDO_CLI_OK &&
               strcmp(buf, again) != 0)
        rc = cli_usage_error(e, "the keys do not match");
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

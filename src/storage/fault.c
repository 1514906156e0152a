/*
 * fault.c — storage fault injection: make the SQLite VFS (sqlite_wal.c)
 * fail writes, syncs and truncates on purpose, so that the failure paths
 * of the group commit, the wallet and the journal can be tested.
 *
 * One rule per operation kind (write, sync, truncate). A rule fails the
 * next N matching calls, or each matching call with probability p (a
 * seeded generator, so a run repeats), with EIO or ENOSPC, on every file
 * or only on files whose path contains a substring. Set from the C API
 * (storage.h) or, once at first use, from the environment variable
 * ORDO_STORAGE_FAULT (syntax in storage.h); a malformed variable is
 * reported on stderr and ignored.
 *
 * Threads: the storage threads ask on every write, sync and truncate of
 * every file; an atomic flag answers "no rule" without a lock, and the
 * rules themselves are under fault_mu, taken around nothing else.
 */
#include "storage/storage.h"
#include "storage/sqlite_wal.h"

#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NKINDS 3 /* write, sync, truncate: bit i of ops is kind i */

typedef struct rule {
  int active;
  int error;                /* EIO or ENOSPC */
  unsigned long long left;  /* next mode: calls still to fail */
  int by_count;             /* 1: next mode, 0: probability */
  double p;
  unsigned long long rng;   /* splitmix64 state */
  char *path;               /* NULL: every file */
} rule;

static pthread_mutex_t fault_mu = PTHREAD_MUTEX_INITIALIZER;
static rule rules[NKINDS];
static atomic_int armed;            /* some rule is active */
static atomic_ullong injected;      /* faults returned so far */
static pthread_once_t env_once = PTHREAD_ONCE_INIT;

static unsigned long long splitmix64(unsigned long long *s) {
  unsigned long long z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/* Under fault_mu. */
static void rearm(void) {
  int any = 0;
  for (int i = 0; i < NKINDS; i++)
    any |= rules[i].active;
  atomic_store(&armed, any);
}

/* Under fault_mu: f's rule into every slot it names. ORDO_E_NOMEM leaves
 * the slots as they were. */
static int install(const ordo_storage_fault *f) {
  char *paths[NKINDS] = {0};
  for (int i = 0; i < NKINDS; i++)
    if ((f->ops & (1u << i)) && f->path != NULL && f->path[0] != '\0' &&
        (paths[i] = strdup(f->path)) == NULL) {
      for (int k = 0; k < NKINDS; k++)
        free(paths[k]);
      return ORDO_E_NOMEM;
    }
  for (int i = 0; i < NKINDS; i++) {
    if (!(f->ops & (1u << i)))
      continue;
    rule *r = &rules[i];
    free(r->path);
    r->path = paths[i];
    r->active = 1;
    r->error = f->error;
    r->by_count = f->next > 0;
    r->left = f->next;
    r->p = f->p;
    r->rng = f->seed ^ (0x5EEDull * (unsigned long long)(i + 1));
  }
  rearm();
  return ORDO_OK;
}

static void clear_locked(void) {
  for (int i = 0; i < NKINDS; i++) {
    free(rules[i].path);
    memset(&rules[i], 0, sizeof(rules[i]));
  }
  rearm();
}

static int check_fault(const ordo_storage_fault *f, char *err, size_t errlen) {
  if (f->ops == 0 || (f->ops & ~(unsigned)ORDO_STORAGE_FAULT_ALL) != 0) {
    snprintf(err, errlen, "ops must name write, sync and/or truncate");
    return 0;
  }
  if (f->error != EIO && f->error != ENOSPC) {
    snprintf(err, errlen, "error must be EIO or ENOSPC");
    return 0;
  }
  if (f->next == 0 && !(f->p > 0.0 && f->p <= 1.0)) {
    snprintf(err, errlen, "p must be in (0, 1] when next is 0");
    return 0;
  }
  return 1;
}

/* Parse one rule "ops:error[:next=N|:p=P][:seed=S][:path=SUB]" of
 * text[0..len). The returned path points into a malloc'd copy in *path. */
static int parse_rule(const char *text, size_t len, ordo_storage_fault *f,
                      char **path, char *err, size_t errlen) {
  char *s = strndup(text, len), *save = NULL, *tok;
  int field = 0, ok = 1;
  memset(f, 0, sizeof(*f));
  *path = NULL;
  if (s == NULL) {
    snprintf(err, errlen, "out of memory");
    return 0;
  }
  f->p = 1.0; /* neither next nor p: every call */
  for (tok = s; ok && tok != NULL; field++) {
    char *colon = field >= 2 && strncmp(tok, "path=", 5) == 0
                      ? NULL /* the path is the rest, colons included */
                      : strchr(tok, ':');
    if (colon != NULL)
      *colon = '\0';
    save = colon != NULL ? colon + 1 : NULL;
    if (field == 0) {
      for (char *op = tok, *plus; ok && op != NULL; op = plus) {
        if ((plus = strchr(op, '+')) != NULL)
          *plus++ = '\0';
        if (strcmp(op, "write") == 0)
          f->ops |= ORDO_STORAGE_FAULT_WRITE;
        else if (strcmp(op, "sync") == 0)
          f->ops |= ORDO_STORAGE_FAULT_SYNC;
        else if (strcmp(op, "truncate") == 0)
          f->ops |= ORDO_STORAGE_FAULT_TRUNCATE;
        else if (strcmp(op, "all") == 0)
          f->ops |= ORDO_STORAGE_FAULT_ALL;
        else {
          snprintf(err, errlen, "unknown operation '%s' (write, sync, "
                   "truncate, all)", op);
          ok = 0;
        }
      }
    } else if (field == 1) {
      if (strcmp(tok, "eio") == 0)
        f->error = EIO;
      else if (strcmp(tok, "enospc") == 0)
        f->error = ENOSPC;
      else {
        snprintf(err, errlen, "unknown error '%s' (eio, enospc)", tok);
        ok = 0;
      }
    } else {
      char *end = NULL;
      errno = 0;
      if (strncmp(tok, "next=", 5) == 0) {
        f->next = strtoull(tok + 5, &end, 10);
        ok = errno == 0 && end != tok + 5 && *end == '\0' && f->next > 0 &&
             tok[5] != '-';
      } else if (strncmp(tok, "p=", 2) == 0) {
        f->p = strtod(tok + 2, &end);
        ok = errno == 0 && end != tok + 2 && *end == '\0';
      } else if (strncmp(tok, "seed=", 5) == 0) {
        f->seed = strtoull(tok + 5, &end, 10);
        ok = errno == 0 && end != tok + 5 && *end == '\0' && tok[5] != '-';
      } else if (strncmp(tok, "path=", 5) == 0 && tok[5] != '\0') {
        if ((*path = strdup(tok + 5)) == NULL)
          ok = 0;
        f->path = *path;
      } else {
        ok = 0;
      }
      if (!ok)
        snprintf(err, errlen, "bad field '%s' (next=N, p=P, seed=S, path=SUB)",
                 tok);
    }
    tok = save;
  }
  if (ok && field < 2) {
    snprintf(err, errlen, "a rule is OPS:ERROR[:next=N|:p=P][:seed=S]"
             "[:path=SUB]");
    ok = 0;
  }
  if (ok)
    ok = check_fault(f, err, errlen);
  free(s);
  if (!ok) {
    free(*path);
    *path = NULL;
  }
  return ok;
}

/* Under fault_mu: the rules of spec (comma-separated), all or none. */
static int install_spec(const char *spec, char *err, size_t errlen) {
  ordo_storage_fault f[8];
  char *paths[8] = {0};
  size_t n = 0;
  int ok = 1;
  for (const char *p = spec; ok && *p != '\0';) {
    const char *comma = strchr(p, ',');
    size_t len = comma != NULL ? (size_t)(comma - p) : strlen(p);
    if (n == 8) {
      snprintf(err, errlen, "at most 8 rules");
      ok = 0;
    } else {
      ok = parse_rule(p, len, &f[n], &paths[n], err, errlen);
      n += ok;
    }
    p += len + (comma != NULL);
  }
  if (ok && (n == 0 || spec[strlen(spec) - 1] == ',')) {
    snprintf(err, errlen, "an empty rule");
    ok = 0;
  }
  for (size_t i = 0; ok && i < n; i++)
    if (install(&f[i]) != ORDO_OK) {
      snprintf(err, errlen, "out of memory");
      ok = 0;
    }
  for (size_t i = 0; i < n; i++)
    free(paths[i]);
  return ok;
}

static void env_load(void) {
  const char *spec = getenv("ORDO_STORAGE_FAULT");
  char err[200];
  if (spec == NULL || spec[0] == '\0')
    return;
  pthread_mutex_lock(&fault_mu);
  if (!install_spec(spec, err, sizeof err)) {
    clear_locked();
    fprintf(stderr, "ordo: ORDO_STORAGE_FAULT='%s' ignored: %s\n", spec, err);
  }
  pthread_mutex_unlock(&fault_mu);
}

int ordo_storage_fault_set(const ordo_storage_fault *f) {
  char err[200];
  int rc;
  (void)pthread_once(&env_once, env_load);
  if (f == NULL || !check_fault(f, err, sizeof err))
    return ordo__set_last_error(ORDO_E_INVAL, "storage fault: %s",
                                f == NULL ? "NULL" : err);
  pthread_mutex_lock(&fault_mu);
  rc = install(f);
  pthread_mutex_unlock(&fault_mu);
  return rc == ORDO_OK ? ORDO_OK : ordo__set_last_error(rc, NULL);
}

int ordo_storage_fault_set_spec(const char *spec) {
  char err[200];
  int ok;
  (void)pthread_once(&env_once, env_load);
  if (spec == NULL)
    return ordo__set_last_error(ORDO_E_INVAL, "storage fault: NULL");
  pthread_mutex_lock(&fault_mu);
  ok = install_spec(spec, err, sizeof err);
  pthread_mutex_unlock(&fault_mu);
  return ok ? ORDO_OK
            : ordo__set_last_error(ORDO_E_INVAL, "storage fault '%s': %s",
                                   spec, err);
}

void ordo_storage_fault_clear(void) {
  (void)pthread_once(&env_once, env_load);
  pthread_mutex_lock(&fault_mu);
  clear_locked();
  pthread_mutex_unlock(&fault_mu);
}

unsigned long long ordo_storage_fault_injected(void) {
  return atomic_load(&injected);
}

/* 0, or the errno the call of kind `kind` (0 write, 1 sync, 2 truncate)
 * on path fails with. */
static int fault_hit(int kind, const char *path) {
  int e = 0;
  (void)pthread_once(&env_once, env_load);
  if (!atomic_load_explicit(&armed, memory_order_relaxed))
    return 0;
  pthread_mutex_lock(&fault_mu);
  rule *r = &rules[kind];
  if (r->active &&
      (r->path == NULL || (path != NULL && strstr(path, r->path) != NULL))) {
    if (r->by_count) {
      e = r->error;
      if (--r->left == 0) {
        r->active = 0; /* spent */
        rearm();
      }
    } else if ((double)(splitmix64(&r->rng) >> 11) * 0x1.0p-53 < r->p) {
      e = r->error;
    }
  }
  pthread_mutex_unlock(&fault_mu);
  if (e != 0)
    atomic_fetch_add(&injected, 1);
  return e;
}

int ordo__storage_fault_sqlite(int kind, const char *path) {
  static const int eio[NKINDS] = {SQLITE_IOERR_WRITE, SQLITE_IOERR_FSYNC,
                                  SQLITE_IOERR_TRUNCATE};
  int e = fault_hit(kind, path);
  if (e == 0)
    return SQLITE_OK;
  return e == ENOSPC ? SQLITE_FULL : eio[kind];
}

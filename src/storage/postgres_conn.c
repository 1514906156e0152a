/*
 * postgres_conn.c — the PostgreSQL backend's connections: store URLs, the
 * non-blocking connect, the pools a context keeps per server (postgres.c's
 * header comment says how they are used), and the blocking one-off calls
 * that open, destroy and list stores make.
 */
#include "storage/postgres_int.h"

#include <errno.h>
#include <poll.h>
#include <time.h>
#include <unistd.h>

#define PG_POOL_DEFAULT 4
#define PG_WAIT_DEFAULT_MS 30000u
#define PG_CONNECT_TIMEOUT_MS 10000

static pthread_mutex_t registry_mu = PTHREAD_MUTEX_INITIALIZER;
static pg_pool *registry;

/* libpq's messages run over several lines ("server closed the connection
 * unexpectedly\n\tThis probably means..."): keep the first. */
void ordo__pg_one_line(char *s) {
  s[strcspn(s, "\n")] = 0;
}


/* ---- URLs ------------------------------------------------------------------------ */


void ordo__pg_url_clear(pg_url *u) {
  ordo__free_secret(u->conninfo); /* it may hold a password */
  free(u->name);
  free(u->where);
  memset(u, 0, sizeof(*u));
}

/* Split uri into what libpq reads and what is ordo's; *err says what is
 * wrong with it, without repeating it (a password may be in it). */
int ordo__pg_url_parse(const char *uri, int need_name, pg_url *u, char *err,
                     size_t errlen) {
  memset(u, 0, sizeof(*u));
  const char *env = getenv("ORDO_PG_POOL");
  u->pool = env != NULL && atoi(env) > 0 && atoi(env) <= 1000 ? atoi(env)
                                                                : PG_POOL_DEFAULT;
  u->wait_ms = PG_WAIT_DEFAULT_MS;
  const char *hash = strchr(uri, '#');
  if (!ordo_storage_is_postgres_uri(uri) ||
      (need_name && (hash == NULL || hash[1] == 0))) {
    snprintf(err, errlen, "a PostgreSQL store is named "
             "postgres://…#NAME (no store name after '#')");
    return ORDO_E_INVAL;
  }
  if (hash == NULL)
    hash = uri + strlen(uri);
  size_t n = (size_t)(hash - uri);
  u->name = strdup(*hash == '#' ? hash + 1 : "");
  u->conninfo = calloc(1, n + 1);
  if (u->name == NULL || u->conninfo == NULL)
    goto nomem;
  /* Copy, leaving out ordo_* query parameters. */
  size_t o = 0;
  const char *q = memchr(uri, '?', n);
  size_t head = q != NULL ? (size_t)(q - uri) : n;
  memcpy(u->conninfo, uri, head);
  o = head;
  int first = 1;
  for (const char *p = q != NULL ? q + 1 : NULL; p != NULL && p < hash;) {
    const char *amp = memchr(p, '&', (size_t)(hash - p));
    const char *end = amp != NULL ? amp : hash;
    size_t len = (size_t)(end - p);
    if (len >= 5 && strncmp(p, "ordo_", 5) == 0) {
      char val[32] = "";
      const char *eq = memchr(p, '=', len);
      if (eq != NULL && (size_t)(end - eq - 1) < sizeof val)
        memcpy(val, eq + 1, (size_t)(end - eq - 1));
      int v = atoi(val);
      if (strncmp(p, "ordo_pool=", 10) == 0 && v > 0 && v <= 1000) {
        u->pool = v;
      } else if (strncmp(p, "ordo_wait=", 10) == 0 && v >= 0 && v <= 86400) {
        u->wait_ms = (unsigned)v * 1000u;
      } else {
        snprintf(err, errlen, "unknown or bad ordo parameter in the "
                 "PostgreSQL URL (ordo_pool=1..1000, ordo_wait=0..86400)");
        ordo__pg_url_clear(u);
        return ORDO_E_INVAL;
      }
    } else if (len > 0) {
      u->conninfo[o++] = first ? '?' : '&';
      memcpy(u->conninfo + o, p, len);
      o += len;
      first = 0;
    }
    p = amp != NULL ? amp + 1 : NULL;
  }
  u->conninfo[o] = 0;
  char *perr = NULL;
  PQconninfoOption *opts = PQconninfoParse(u->conninfo, &perr);
  if (opts == NULL) {
    /* libpq quotes the part it could not parse, which may be the whole
     * URL and its password: keep its words, not its quotes. */
    char why[160];
    snprintf(why, sizeof why, "%s", perr != NULL ? perr : "out of memory");
    why[strcspn(why, "\"\n")] = 0;
    snprintf(err, errlen, "bad PostgreSQL URL: %s", why);
    PQfreemem(perr);
    ordo__pg_url_clear(u);
    return ORDO_E_INVAL;
  }
  const char *user = "", *host = "localhost", *port = "5432", *db = "";
  for (PQconninfoOption *opt = opts; opt->keyword != NULL; opt++) {
    if (opt->val == NULL || opt->val[0] == 0)
      continue;
    if (strcmp(opt->keyword, "user") == 0)
      user = opt->val;
    else if (strcmp(opt->keyword, "host") == 0)
      host = opt->val;
    else if (strcmp(opt->keyword, "port") == 0)
      port = opt->val;
    else if (strcmp(opt->keyword, "dbname") == 0)
      db = opt->val;
  }
  int rc = asprintf(&u->where, "%s%s%s:%s/%s", user, user[0] ? "@" : "", host,
                    port, db);
  PQconninfoFree(opts);
  if (rc < 0) {
    u->where = NULL;
    goto nomem;
  }
  return ORDO_OK;
nomem:
  ordo__pg_url_clear(u);
  snprintf(err, errlen, "out of memory");
  return ORDO_E_NOMEM;
}

/* ---- connections ------------------------------------------------------------- */

/* Wait until c's socket is ready for what `events` asks, or ms pass. */
int ordo__pg_wait_socket(PGconn *c, short events, int ms) {
  struct pollfd pfd = {.fd = PQsocket(c), .events = events};
  if (pfd.fd < 0)
    return -1;
  int r;
  do
    r = poll(&pfd, 1, ms);
  while (r < 0 && errno == EINTR);
  return r;
}

/* Notices reach here instead of libpq's default (stderr). A FATAL one
 * while idle is the server saying goodbye (shutdown, restart, an
 * administrator's pg_terminate_backend): the connection is doomed even if
 * the socket has not closed yet. */
static void notice_rx(void *arg, const PGresult *res) {
  pg_conn *pc = arg;
  const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
  if (sev != NULL && (strcmp(sev, "FATAL") == 0 || strcmp(sev, "PANIC") == 0))
    pc->doomed = 1;
}

/* Open a connection (non-blocking connect, at most PG_CONNECT_TIMEOUT_MS),
 * set the schema up the first time on this pool, prepare the statements. */
int ordo__pg_conn_open(pg_pool *pool, pg_conn **out, char *err, size_t errlen) {
  char app[64];
  snprintf(app, sizeof app, "ordo pid %ld", (long)getpid());
  const char *keys[] = {"dbname", "fallback_application_name", NULL};
  const char *vals[] = {pool->conninfo, app, NULL};
  PGconn *c = PQconnectStartParams(keys, vals, 1);
  if (c == NULL) {
    snprintf(err, errlen, "out of memory");
    return ORDO_E_NOMEM;
  }
  unsigned long long deadline = ordo__now_ns() / 1000000u + PG_CONNECT_TIMEOUT_MS;
  PostgresPollingStatusType ps = PGRES_POLLING_WRITING;
  while (PQstatus(c) != CONNECTION_BAD && ps != PGRES_POLLING_OK &&
         ps != PGRES_POLLING_FAILED) {
    long long left = (long long)(deadline - ordo__now_ns() / 1000000u);
    if (left <= 0 || ordo__pg_wait_socket(c, ps == PGRES_POLLING_READING ? POLLIN
                                                                  : POLLOUT,
                                 (int)left) == 0) {
      snprintf(err, errlen, "no connection within %d s",
               PG_CONNECT_TIMEOUT_MS / 1000);
      PQfinish(c);
      return ORDO_E_STORAGE;
    }
    ps = PQconnectPoll(c);
  }
  if (PQstatus(c) != CONNECTION_OK) {
    snprintf(err, errlen, "%s", PQerrorMessage(c));
    ordo__pg_one_line(err);
    PQfinish(c);
    return ORDO_E_STORAGE;
  }
  pg_conn *pc = calloc(1, sizeof(*pc));
  if (pc == NULL) {
    snprintf(err, errlen, "out of memory");
    PQfinish(c);
    return ORDO_E_NOMEM;
  }
  pc->c = c;
  PQsetNoticeReceiver(c, notice_rx, pc);
  int st = ORDO_OK;
  if (!__atomic_load_n(&pool->schema_ok, __ATOMIC_ACQUIRE)) {
    st = ordo__pg_schema_ensure(c, err, errlen);
    if (st == ORDO_OK)
      __atomic_store_n(&pool->schema_ok, 1, __ATOMIC_RELEASE);
  }
  if (st == ORDO_OK)
    st = ordo__pg_prepare_all(c, err, errlen);
  if (st == ORDO_OK && PQsetnonblocking(c, 1) != 0) {
    snprintf(err, errlen, "cannot make the connection non-blocking: %s",
             PQerrorMessage(c));
    st = ORDO_E_STORAGE;
  }
  if (st != ORDO_OK) {
    ordo__pg_conn_close(pc);
    return st;
  }
  *out = pc;
  return ORDO_OK;
}

void ordo__pg_conn_close(pg_conn *pc) {
  if (pc == NULL)
    return;
  PQfinish(pc->c);
  free(pc);
}

/* Whether an idle connection is still there: a server that shut down or
 * restarted has closed it (and said so first, which this reads). */
static int conn_alive(pg_conn *pc) {
  if (PQstatus(pc->c) != CONNECTION_OK || PQconsumeInput(pc->c) == 0)
    return 0;
  (void)PQisBusy(pc->c); /* parses what came: a goodbye reaches notice_rx */
  return PQstatus(pc->c) == CONNECTION_OK && !pc->doomed;
}

/* ---- pools ------------------------------------------------------------------------ */

pg_pool *ordo__pg_pool_get(ordo_ctx *ctx, pg_url *u) {
  pthread_mutex_lock(&registry_mu);
  pg_pool *p;
  for (p = registry; p != NULL; p = p->next)
    if (p->ctx == ctx && strcmp(p->conninfo, u->conninfo) == 0)
      break;
  if (p == NULL && (p = calloc(1, sizeof(*p))) != NULL) {
    if (pthread_mutex_init(&p->mu, NULL) != 0 ||
        pthread_cond_init(&p->cv, NULL) != 0)
      abort();
    p->ctx = ctx;
    p->conninfo = u->conninfo;
    p->where = u->where;
    u->conninfo = u->where = NULL; /* the pool's now */
    p->max = u->pool;
    p->wait_ms = u->wait_ms;
    p->next = registry;
    registry = p;
  }
  if (p != NULL)
    p->refs++;
  pthread_mutex_unlock(&registry_mu);
  return p;
}

void ordo__pg_pool_put(pg_pool *p) {
  pthread_mutex_lock(&registry_mu);
  int last = --p->refs == 0;
  if (last)
    for (pg_pool **pp = &registry; *pp != NULL; pp = &(*pp)->next)
      if (*pp == p) {
        *pp = p->next;
        break;
      }
  pthread_mutex_unlock(&registry_mu);
  if (!last)
    return;
  /* No store is open: no connection is in use. */
  while (p->idle != NULL) {
    pg_conn *pc = p->idle;
    p->idle = pc->next;
    ordo__pg_conn_close(pc);
  }
  pthread_cond_destroy(&p->cv);
  pthread_mutex_destroy(&p->mu);
  ordo__free_secret(p->conninfo);
  free(p->where);
  free(p);
}

/* Note that opening a connection failed (err) or succeeded (NULL). */
void ordo__pg_pool_health(pg_pool *p, const char *err) {
  pthread_mutex_lock(&p->mu);
  if (err == NULL) {
    p->down_since_ms = 0;
  } else {
    if (p->down_since_ms == 0)
      p->down_since_ms = ordo__wall_ms();
    snprintf(p->last_error, sizeof p->last_error, "%s", err);
  }
  pthread_mutex_unlock(&p->mu);
}

/* A connection: an idle one that is still alive, else a new one while
 * fewer than max are open, else wait for one to come back. Connecting is
 * retried with a backoff until wait_ms have passed. */
int ordo__pg_pool_acquire(pg_pool *p, pg_conn **out, char *err, size_t errlen) {
  unsigned long long start = ordo__now_ns() / 1000000u;
  unsigned backoff = 50;
  pthread_mutex_lock(&p->mu);
  for (;;) {
    while (p->idle != NULL) {
      pg_conn *pc = p->idle;
      p->idle = pc->next;
      pc->next = NULL;
      if (conn_alive(pc)) {
        pthread_mutex_unlock(&p->mu);
        *out = pc;
        return ORDO_OK;
      }
      p->nopen--; /* closed by the server: replaced below */
      ordo__pg_conn_close(pc);
    }
    if (p->nopen >= p->max) {
      pthread_cond_wait(&p->cv, &p->mu);
      continue;
    }
    p->nopen++;
    pthread_mutex_unlock(&p->mu);
    char why[256];
    int st = ordo__pg_conn_open(p, out, why, sizeof why);
    ordo__pg_pool_health(p, st == ORDO_OK ? NULL : why);
    if (st == ORDO_OK)
      return ORDO_OK;
    pthread_mutex_lock(&p->mu);
    p->nopen--;
    pthread_cond_signal(&p->cv); /* a waiter may try in our place */
    unsigned long long now = ordo__now_ns() / 1000000u;
    if (st == ORDO_E_NOMEM || now - start >= p->wait_ms) {
      time_t since = (time_t)(p->down_since_ms / 1000u);
      struct tm tm;
      char when[32] = "?";
      if (gmtime_r(&since, &tm) != NULL)
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
      snprintf(err, errlen, "PostgreSQL at %s unreachable since %s "
               "(tried for %llu ms): %s", p->where, when, now - start,
               p->last_error);
      pthread_mutex_unlock(&p->mu);
      return st == ORDO_E_NOMEM ? st : ORDO_E_STORAGE;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += (long)backoff * 1000000L;
    ts.tv_sec += ts.tv_nsec / 1000000000L;
    ts.tv_nsec %= 1000000000L;
    (void)pthread_cond_timedwait(&p->cv, &p->mu, &ts);
    backoff = backoff * 2 > 2000 ? 2000 : backoff * 2;
  }
}

void ordo__pg_pool_release(pg_pool *p, pg_conn *pc, int broken) {
  pthread_mutex_lock(&p->mu);
  if (broken) {
    p->nopen--;
    ordo__pg_conn_close(pc);
  } else {
    pc->next = p->idle;
    p->idle = pc;
  }
  pthread_cond_signal(&p->cv);
  pthread_mutex_unlock(&p->mu);
}

/* One statement with text parameters, blocking (open, destroy); its rows,
 * or NULL with *err set. */
PGresult *ordo__pg_exec_text(PGconn *c, const char *sql, int n,
                           const char *const *vals, char *err, size_t errlen) {
  PGresult *r = PQexecParams(c, sql, n, NULL, vals, NULL, NULL, 0);
  ExecStatusType s = PQresultStatus(r);
  if (s == PGRES_TUPLES_OK || s == PGRES_COMMAND_OK)
    return r;
  const char *m = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
  snprintf(err, errlen, "%s", m != NULL ? m : PQerrorMessage(c));
  PQclear(r);
  return NULL;
}

char *ordo__storage_postgres_where(const char *url) {
  pg_url u;
  char err[256];
  if (ordo__pg_url_parse(url, 0, &u, err, sizeof err) != ORDO_OK)
    return strdup("(a bad PostgreSQL URL)");
  char *w = u.where;
  u.where = NULL;
  ordo__pg_url_clear(&u);
  return w;
}

int ordo__storage_postgres_stores(const char *url, const char *prefix,
                                  char ***names, size_t *n, char **errmsg) {
  char err[512] = "";
  pg_url u;
  *names = NULL;
  *n = 0;
  if (errmsg != NULL)
    *errmsg = NULL;
  int st = ordo__pg_url_parse(url, 0, &u, err, sizeof err);
  if (st != ORDO_OK)
    return ordo__storage_set_err(errmsg, st, "%s", err);
  pg_pool tmp = {.conninfo = u.conninfo, .where = u.where};
  pg_conn *pc = NULL;
  st = ordo__pg_conn_open(&tmp, &pc, err, sizeof err);
  PGresult *r = NULL;
  if (st == ORDO_OK) {
    const char *vals[] = {prefix};
    r = ordo__pg_exec_text(pc->c, "SELECT name FROM ordo_store WHERE"
                  " starts_with(name, $1) ORDER BY name", 1, vals, err,
                  sizeof err);
    if (r == NULL)
      st = ORDO_E_STORAGE;
  }
  size_t rows = r != NULL ? (size_t)PQntuples(r) : 0;
  if (st == ORDO_OK && rows > 0 &&
      (*names = calloc(rows, sizeof(**names))) == NULL)
    st = ORDO_E_NOMEM;
  for (size_t i = 0; st == ORDO_OK && i < rows; i++) {
    if (((*names)[i] = strdup(PQgetvalue(r, (int)i, 0))) == NULL)
      st = ORDO_E_NOMEM;
    else
      (*n)++;
  }
  PQclear(r);
  ordo__pg_conn_close(pc);
  if (st != ORDO_OK) {
    for (size_t i = 0; i < *n; i++)
      free((*names)[i]);
    free(*names);
    *names = NULL;
    *n = 0;
    ordo__storage_set_err(errmsg, st, "%s: %s", u.where, err[0] ? err : ordo_strerror(st));
  }
  ordo__pg_url_clear(&u);
  return st;
}

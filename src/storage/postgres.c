/*
 * postgres.c — the PostgreSQL storage backend: wallets and journals in a
 * database that several processes and machines share.
 *
 * A database URL with a store name after '#' names one store (storage.h);
 * the stores of a context on one server share a pool of connections, at
 * most `max` of them ("?ordo_pool=N", $ORDO_PG_POOL, default 4), opened as
 * needed and kept. An EXCLUSIVE store (a journal) has a connection of its
 * own besides, which holds a session advisory lock on the store's name: a
 * second process that opens it is refused while the first lives, and the
 * server drops the lock when the first dies (its connection closes), as the
 * kernel drops SQLite's flock.
 *
 * Group commit, as in the SQLite backend: submit appends to the store's
 * pending list and posts the drain task to the store's serial executor
 * unless it is already queued; the drain takes every pending request at
 * once and runs them as one transaction. The transaction is one pipeline
 * (libpq pipeline mode): BEGIN, every request's statements, COMMIT and a
 * sync point are sent without waiting, and the answers read back as they
 * come, on a non-blocking connection the drain polls. A group costs one
 * round trip and one commit however many requests it holds. The dones are
 * called only after the server acknowledged COMMIT, so a write is as
 * durable as the server's synchronous_commit makes a commit (README).
 *
 * A failure inside the pipeline aborts the transaction and every statement
 * after it. A write that only finds its record missing (or, for ADD,
 * present) answers with a count instead of failing (postgres_sql.c), so it
 * fails alone; a strict write (a BATCH's, a chained one) raises, the
 * transaction is lost, and every other request of the group goes again in
 * a new one: each pass makes at least one request final, so a group ends.
 *
 * When the connection dies in the middle (the server restarts or crashes,
 * the network drops): a write whose COMMIT was sent but not acknowledged
 * may or may not be in the database. It fails with ORDO_E_STORAGE and a
 * message that says exactly that — never answered as durable, never left
 * unanswered; a chained write so failed fails its chain (the journal
 * re-reads what is there before it writes again). Reads go again on
 * another connection. Opening a connection is retried with a backoff
 * (50 ms doubling to 2 s) for up to `wait` ("?ordo_wait=S", default 30 s)
 * per group; past it the group fails with when the server became
 * unreachable and libpq's last word. A connection that holds an exclusive
 * store's lock is not replaced: the lock may be another process's by then,
 * so every later request of that store fails until it is reopened.
 *
 * Lock order: the registry lock, then a pool's mu; a store's mu, then the
 * executor's lock (as in sqlite.c). No lock is held while the network is
 * used or a done runs.
 */
#include "storage/postgres_int.h"

#include <errno.h>
#include <poll.h>
#include <time.h>
#include <unistd.h>

#define PG_POOL_DEFAULT 4
#define PG_WAIT_DEFAULT_MS 30000u
#define PG_CONNECT_TIMEOUT_MS 10000
/* No byte from the server for this long: the connection is treated as
 * lost (keepalives would take minutes to say so). */
#define PG_IO_TIMEOUT_MS 120000

static pthread_mutex_t registry_mu = PTHREAD_MUTEX_INITIALIZER;
static pg_pool *registry;

static unsigned long long wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (unsigned long long)ts.tv_sec * 1000u +
         (unsigned long long)ts.tv_nsec / 1000000u;
}

/* libpq's messages run over several lines ("server closed the connection
 * unexpectedly\n\tThis probably means..."): keep the first. */
static void one_line(char *s) {
  s[strcspn(s, "\n")] = 0;
}

static int ORDO__PRINTF(3, 4) set_err(char **errmsg, int code, const char *fmt, ...) {
  if (errmsg == NULL)
    return code;
  free(*errmsg);
  *errmsg = NULL;
  va_list ap;
  va_start(ap, fmt);
  char *m;
  if (vasprintf(&m, fmt, ap) >= 0)
    *errmsg = m;
  va_end(ap);
  return code;
}

/* ---- URLs ------------------------------------------------------------------------ */

typedef struct pg_url {
  char *conninfo; /* for libpq: no '#' part, no ordo_ parameters */
  char *name;     /* the store */
  char *where;    /* user@host:port/db, for messages */
  int pool;
  unsigned wait_ms;
} pg_url;

static void url_clear(pg_url *u) {
  ordo__free_secret(u->conninfo); /* it may hold a password */
  free(u->name);
  free(u->where);
  memset(u, 0, sizeof(*u));
}

/* Split uri into what libpq reads and what is ordo's; *err says what is
 * wrong with it, without repeating it (a password may be in it). */
static int url_parse(const char *uri, int need_name, pg_url *u, char *err,
                     size_t errlen) {
  memset(u, 0, sizeof(*u));
  const char *env = getenv("ORDO_PG_POOL");
  u->pool = env != NULL && atoi(env) > 0 ? atoi(env) : PG_POOL_DEFAULT;
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
    if (len > 5 && strncmp(p, "ordo_", 5) == 0) {
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
        url_clear(u);
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
    snprintf(err, errlen, "bad PostgreSQL URL: %s",
             perr != NULL ? perr : "out of memory");
    PQfreemem(perr);
    url_clear(u);
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
  url_clear(u);
  snprintf(err, errlen, "out of memory");
  return ORDO_E_NOMEM;
}

/* ---- connections ------------------------------------------------------------- */

/* Wait until c's socket is ready for what `events` asks, or ms pass. */
static int wait_socket(PGconn *c, short events, int ms) {
  struct pollfd pfd = {.fd = PQsocket(c), .events = events};
  if (pfd.fd < 0)
    return -1;
  int r;
  do
    r = poll(&pfd, 1, ms);
  while (r < 0 && errno == EINTR);
  return r;
}

static void conn_close(pg_conn *pc);

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
static int conn_open(pg_pool *pool, pg_conn **out, char *err, size_t errlen) {
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
    if (left <= 0 || wait_socket(c, ps == PGRES_POLLING_READING ? POLLIN
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
    one_line(err);
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
    conn_close(pc);
    return st;
  }
  *out = pc;
  return ORDO_OK;
}

static void conn_close(pg_conn *pc) {
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

static pg_pool *pool_get(ordo_ctx *ctx, pg_url *u) {
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

static void pool_put(pg_pool *p) {
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
    conn_close(pc);
  }
  pthread_cond_destroy(&p->cv);
  pthread_mutex_destroy(&p->mu);
  ordo__free_secret(p->conninfo);
  free(p->where);
  free(p);
}

/* Note that opening a connection failed (err) or succeeded (NULL). */
static void pool_health(pg_pool *p, const char *err) {
  pthread_mutex_lock(&p->mu);
  if (err == NULL) {
    p->down_since_ms = 0;
  } else {
    if (p->down_since_ms == 0)
      p->down_since_ms = wall_ms();
    snprintf(p->last_error, sizeof p->last_error, "%s", err);
  }
  pthread_mutex_unlock(&p->mu);
}

/* A connection: an idle one that is still alive, else a new one while
 * fewer than max are open, else wait for one to come back. Connecting is
 * retried with a backoff until wait_ms have passed. */
static int pool_acquire(pg_pool *p, pg_conn **out, char *err, size_t errlen) {
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
      conn_close(pc);
    }
    if (p->nopen >= p->max) {
      pthread_cond_wait(&p->cv, &p->mu);
      continue;
    }
    p->nopen++;
    pthread_mutex_unlock(&p->mu);
    char why[256];
    int st = conn_open(p, out, why, sizeof why);
    pool_health(p, st == ORDO_OK ? NULL : why);
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

static void pool_release(pg_pool *p, pg_conn *pc, int broken) {
  pthread_mutex_lock(&p->mu);
  if (broken) {
    p->nopen--;
    conn_close(pc);
  } else {
    pc->next = p->idle;
    p->idle = pc;
  }
  pthread_cond_signal(&p->cv);
  pthread_mutex_unlock(&p->mu);
}

/* ---- a group as one pipelined transaction ----------------------------------------- */

/* Where a result goes: BEGIN/COMMIT (idx SIZE_MAX), or part `part` of
 * request reqs[idx] (sub: itself, or one of a BATCH's). */
typedef struct pg_slot {
  size_t idx;
  ordo_storage_req *sub;
  int part;
} pg_slot;

/* How one pass of a group ended. */
enum { PASS_COMMITTED, PASS_ABORTED, PASS_COMMIT_FAILED, PASS_LOST };

typedef struct pg_pass {
  ordo_storage_req **reqs;
  unsigned char *final; /* 1: answered, not sent again */
  size_t n;
  pg_slot *slots;
  size_t nslots, capslots;
  size_t failed;        /* PASS_ABORTED: which request failed */
  ordo_storage_req *failed_sub;
  char err[512];
} pg_pass;

static int slot_push(pg_pass *ps, size_t idx, ordo_storage_req *sub, int part) {
  if ((ps->nslots + 1) * sizeof(pg_slot) > ps->capslots) {
    pg_slot *t = ordo__grow(ps->slots, &ps->capslots,
                            (ps->nslots + 1) * sizeof(pg_slot),
                            64 * sizeof(pg_slot));
    if (t == NULL)
      return ORDO_E_NOMEM;
    ps->slots = t;
  }
  ps->slots[ps->nslots++] = (pg_slot){idx, sub, part};
  return ORDO_OK;
}

/* Queue request i's statements and their slots. */
static int pass_send_req(pg_db *db, pg_conn *pc, pg_pass *ps, size_t i) {
  ordo_storage_req *r = ps->reqs[i];
  size_t nsub = r->opcode == ORDO_STORAGE_BATCH ? r->nbatch : 1;
  for (size_t k = 0; k < nsub; k++) {
    ordo_storage_req *sub = r->opcode == ORDO_STORAGE_BATCH ? &r->batch[k] : r;
    int strict = r->opcode == ORDO_STORAGE_BATCH ||
                 (r->flags & ORDO_STORAGE_REQ_CHAINED);
    int nsent = 0;
    int st = ordo__pg_send(db, pc, sub, strict, &nsent);
    for (int part = 0; part < nsent && st == ORDO_OK; part++)
      st = slot_push(ps, i, sub, part);
    if (st != ORDO_OK) {
      if (sub != r)
        pg_req_msg(r, "%s", sub->message != NULL ? sub->message
                                                 : ordo_strerror(st));
      return st;
    }
  }
  return ORDO_OK;
}

/* A BATCH whose sub-request `bad` failed: the others are undone. */
static void batch_failed(ordo_storage_req *r, ordo_storage_req *bad, int st) {
  size_t at = (size_t)(bad - r->batch);
  pg_req_msg(r, "batch request %zu of %zu: %s", at + 1, r->nbatch,
             bad->message != NULL ? bad->message : ordo_strerror(st));
  for (size_t j = 0; j < r->nbatch; j++) {
    if (&r->batch[j] == bad)
      continue;
    pg_req_drop_output(&r->batch[j]);
    r->batch[j].status = ORDO_E_CANCELED; /* rolled back or never run */
  }
  r->status = st;
}

/* Read every answer of the pipeline up to its sync point, handing each to
 * its slot. PASS_LOST when the connection went away or went silent. */
static int pass_read(pg_db *db, pg_conn *pc, pg_pass *ps, int *outcome) {
  PGconn *c = pc->c;
  size_t at = 0;  /* the slot the next result belongs to */
  int got = 0;    /* a result for slot `at` was seen */
  unsigned long long last = ordo__now_ns();
  for (;;) {
    int fl = PQflush(c);
    if (fl < 0)
      break;
    while (!PQisBusy(c)) {
      PGresult *res = PQgetResult(c);
      if (res == NULL) {
        if (!got)
          break; /* nothing more yet */
        at++;
        got = 0;
        continue;
      }
      ExecStatusType s = PQresultStatus(res);
      if (s == PGRES_PIPELINE_SYNC) {
        PQclear(res);
        return ORDO_OK;
      }
      got = 1;
      if (s == PGRES_FATAL_ERROR && ordo__pg_is_conn_error(c, res)) {
        const char *m = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
        snprintf(ps->err, sizeof ps->err, "%s",
                 m != NULL ? m : PQerrorMessage(c));
        PQclear(res);
        *outcome = PASS_LOST;
        return ORDO_E_STORAGE;
      }
      if (at >= ps->nslots) {
        PQclear(res);
        continue; /* cannot happen: one result per slot */
      }
      pg_slot *sl = &ps->slots[at];
      if (sl->idx == SIZE_MAX) { /* BEGIN or COMMIT */
        if (s == PGRES_FATAL_ERROR && *outcome == PASS_COMMITTED) {
          const char *m = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
          snprintf(ps->err, sizeof ps->err, "%s: %s",
                   at == 0 ? "BEGIN" : "COMMIT",
                   m != NULL ? m : PQresultErrorMessage(res));
          *outcome = PASS_COMMIT_FAILED;
        }
      } else if (s != PGRES_PIPELINE_ABORTED && *outcome == PASS_COMMITTED) {
        int st = ordo__pg_take(db, sl->sub, sl->part, res);
        if (st != ORDO_OK && sl->sub->status == ORDO_OK)
          sl->sub->status = st;
        if (s == PGRES_FATAL_ERROR) {
          *outcome = PASS_ABORTED;
          ps->failed = sl->idx;
          ps->failed_sub = sl->sub;
        }
      }
      PQclear(res);
    }
    if (PQstatus(c) == CONNECTION_BAD)
      break;
    int r = wait_socket(c, (short)(POLLIN | (fl == 1 ? POLLOUT : 0)), 1000);
    if (r > 0) {
      if (PQconsumeInput(c) == 0)
        break;
      last = ordo__now_ns();
    } else if (r < 0 ||
               ordo__now_ns() - last > PG_IO_TIMEOUT_MS * 1000000ull) {
      snprintf(ps->err, sizeof ps->err, "no answer for %d s",
               PG_IO_TIMEOUT_MS / 1000);
      *outcome = PASS_LOST;
      return ORDO_E_STORAGE;
    }
  }
  if (ps->err[0] == 0)
    snprintf(ps->err, sizeof ps->err, "%s", PQerrorMessage(c));
  *outcome = PASS_LOST;
  return ORDO_E_STORAGE;
}

/* One pass: every request not yet final, in one transaction. */
static int pass_run(pg_db *db, pg_conn *pc, pg_pass *ps) {
  PGconn *c = pc->c;
  int outcome = PASS_COMMITTED;
  size_t nomem_at = SIZE_MAX;
  ps->nslots = 0;
  ps->err[0] = 0;
  if (PQenterPipelineMode(c) != 1 ||
      slot_push(ps, SIZE_MAX, NULL, 0) != ORDO_OK ||
      !PQsendQueryParams(c, "BEGIN", 0, NULL, NULL, NULL, NULL, 1)) {
    snprintf(ps->err, sizeof ps->err, "%s", PQerrorMessage(c));
    return PASS_LOST;
  }
  for (size_t i = 0; i < ps->n; i++) {
    if (ps->final[i])
      continue;
    int st = pass_send_req(db, pc, ps, i);
    if (st == ORDO_E_NOMEM) {
      nomem_at = i; /* roll back what was queued; answer it as failed */
      break;
    }
    if (st != ORDO_OK)
      return PASS_LOST; /* libpq could not queue: the connection is gone */
  }
  if (slot_push(ps, SIZE_MAX, NULL, 0) != ORDO_OK && nomem_at == SIZE_MAX)
    nomem_at = ps->n; /* no slot for COMMIT: ROLLBACK has its answer read */
  int sent = PQsendQueryParams(c, nomem_at != SIZE_MAX ? "ROLLBACK" : "COMMIT",
                               0, NULL, NULL, NULL, NULL, 1) &&
             PQpipelineSync(c) == 1;
  if (!sent) {
    snprintf(ps->err, sizeof ps->err, "%s", PQerrorMessage(c));
    return PASS_LOST;
  }
  (void)pass_read(db, pc, ps, &outcome);
  if (outcome != PASS_LOST && PQexitPipelineMode(c) != 1) {
    snprintf(ps->err, sizeof ps->err, "%s", PQerrorMessage(c));
    outcome = PASS_LOST;
  }
  /* A failure skipped COMMIT, and the sync point does not end an explicit
   * transaction: it is still open, aborted. End it (one more round trip,
   * on failures only) so the connection goes back clean. */
  if (outcome != PASS_LOST && PQtransactionStatus(c) != PQTRANS_IDLE) {
    PGresult *r = PQexec(c, "ROLLBACK");
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
      snprintf(ps->err, sizeof ps->err, "ROLLBACK: %s", PQerrorMessage(c));
      outcome = PASS_LOST;
    }
    PQclear(r);
  }
  if (outcome == PASS_COMMITTED && nomem_at != SIZE_MAX) {
    /* Rolled back on purpose. */
    if (nomem_at < ps->n) {
      ps->failed = nomem_at;
      ps->failed_sub = NULL;
      ps->reqs[nomem_at]->status = ORDO_E_NOMEM;
      return PASS_ABORTED;
    }
    snprintf(ps->err, sizeof ps->err, "out of memory");
    return PASS_COMMIT_FAILED;
  }
  return outcome;
}

/* Walk the group in order applying the chain rule (storage.h): a pending
 * chained write after a failed one fails unsent. Returns how many are
 * still to send. */
static size_t chain_walk(pg_db *db, pg_pass *ps) {
  int cf = db->chain_failed;
  size_t pending = 0;
  for (size_t i = 0; i < ps->n; i++) {
    ordo_storage_req *r = ps->reqs[i];
    if (r->flags & ORDO_STORAGE_REQ_CHAIN_RESET)
      cf = 0;
    if (!(r->flags & ORDO_STORAGE_REQ_CHAINED)) {
      pending += !ps->final[i];
      continue;
    }
    if (ps->final[i]) {
      if (r->status != ORDO_OK)
        cf = 1;
    } else if (cf) {
      ps->final[i] = 1;
      r->status = ORDO_E_STORAGE;
      pg_req_msg(r, "not written: an earlier write of its chain failed");
    } else {
      pending++;
    }
  }
  return pending;
}

/* Every pending request gets st and why (writes only, with writes_only). */
static void fail_pending(pg_pass *ps, int st, const char *why, int writes_only) {
  for (size_t i = 0; i < ps->n; i++) {
    ordo_storage_req *r = ps->reqs[i];
    if (ps->final[i] || (writes_only && !ordo__storage_is_write(r->opcode)))
      continue;
    pg_req_drop_output(r);
    r->status = st;
    pg_req_msg(r, "%s", why);
    if (r->opcode == ORDO_STORAGE_BATCH)
      for (size_t j = 0; j < r->nbatch; j++) {
        pg_req_drop_output(&r->batch[j]);
        r->batch[j].status = st;
      }
    ps->final[i] = 1;
  }
}

/* Forget what a lost pass produced: the request goes again. */
static void reset_pending(pg_pass *ps) {
  for (size_t i = 0; i < ps->n; i++) {
    if (ps->final[i])
      continue;
    ordo_storage_req *r = ps->reqs[i];
    ordo_storage_req_clear_output(r);
    r->status = ORDO_OK;
    for (size_t j = 0; r->opcode == ORDO_STORAGE_BATCH && j < r->nbatch; j++) {
      ordo_storage_req_clear_output(&r->batch[j]);
      r->batch[j].status = ORDO_OK;
    }
  }
}

static void run_group(pg_db *db, ordo_storage_req *list) {
  pg_pass ps = {0};
  for (ordo_storage_req *r = list; r != NULL; r = r->backend_next)
    ps.n++;
  ps.reqs = malloc(ps.n * sizeof(*ps.reqs));
  ps.final = calloc(ps.n, 1);
  if (ps.reqs == NULL || ps.final == NULL) {
    for (ordo_storage_req *r = list, *next; r != NULL; r = next) {
      next = r->backend_next;
      r->backend_next = NULL;
      r->status = ORDO_E_NOMEM;
      pg_req_msg(r, "out of memory");
      r->done(r);
    }
    free(ps.reqs);
    free(ps.final);
    return;
  }
  size_t k = 0;
  for (ordo_storage_req *r = list; r != NULL; r = r->backend_next)
    ps.reqs[k++] = r;

  int writes = 0, lost = 0;
  while (chain_walk(db, &ps) > 0) {
    pg_conn *pc = db->own;
    char err[1024];
    if (db->lock_lost[0] != 0) {
      fail_pending(&ps, ORDO_E_STORAGE, db->lock_lost, 0);
      break;
    }
    if (pc == NULL) {
      int st = pool_acquire(db->pool, &pc, err, sizeof err);
      if (st != ORDO_OK) {
        fail_pending(&ps, st, err, 0);
        break;
      }
    }
    int outcome = pass_run(db, pc, &ps);
    if (outcome == PASS_LOST) {
      int any_write = 0;
      for (size_t i = 0; i < ps.n; i++)
        any_write |= !ps.final[i] && ordo__storage_is_write(ps.reqs[i]->opcode);
      one_line(ps.err);
      snprintf(err, sizeof err, "connection to PostgreSQL at %s lost before "
               "COMMIT was acknowledged: the write may or may not have been "
               "applied (%s)", db->pool->where, ps.err);
      /* Reads go again on another connection, a few times: a read that
       * itself takes the server down must not loop. */
      fail_pending(&ps, ORDO_E_STORAGE, err, any_write || ++lost < 3);
      reset_pending(&ps);
      if (pc == db->own) {
        snprintf(db->lock_lost, sizeof db->lock_lost, "the connection "
                 "holding this store's lock on %.80s was lost (%.100s): reopen it",
                 db->pool->where, ps.err);
        conn_close(db->own);
        db->own = NULL;
      } else {
        pool_release(db->pool, pc, 1);
      }
      continue;
    }
    if (pc != db->own)
      pool_release(db->pool, pc, 0);
    if (outcome == PASS_COMMITTED) {
      for (size_t i = 0; i < ps.n; i++) {
        if (!ps.final[i])
          writes |= ordo__storage_is_write(ps.reqs[i]->opcode);
        ps.final[i] = 1;
      }
    } else if (outcome == PASS_ABORTED) {
      ordo_storage_req *r = ps.reqs[ps.failed];
      if (r->opcode == ORDO_STORAGE_BATCH && ps.failed_sub != NULL)
        batch_failed(r, ps.failed_sub, ps.failed_sub->status);
      ps.final[ps.failed] = 1;
      reset_pending(&ps);
    } else { /* PASS_COMMIT_FAILED: the writes are lost, reads go again
                (a group of reads only is not: BEGIN itself failed) */
      int any_write = 0;
      for (size_t i = 0; i < ps.n; i++)
        any_write |= !ps.final[i] && ordo__storage_is_write(ps.reqs[i]->opcode);
      fail_pending(&ps, ORDO_E_STORAGE, ps.err, any_write);
      reset_pending(&ps);
    }
  }
  if (writes)
    atomic_fetch_add_explicit(&db->commits, 1, memory_order_relaxed);
  /* The chain's state after the group: as chain_walk sees it, all final. */
  for (size_t i = 0; i < ps.n; i++) {
    ordo_storage_req *r = ps.reqs[i];
    if (r->flags & ORDO_STORAGE_REQ_CHAIN_RESET)
      db->chain_failed = 0;
    if ((r->flags & ORDO_STORAGE_REQ_CHAINED) && r->status != ORDO_OK)
      db->chain_failed = 1;
  }
  free(ps.slots);
  free(ps.final);
  /* done may free or resubmit r: touch r no more after it. */
  for (size_t i = 0; i < ps.n; i++) {
    ps.reqs[i]->backend_next = NULL;
    ps.reqs[i]->done(ps.reqs[i]);
  }
  free(ps.reqs);
}

/* ---- the drain, submit, close ------------------------------------------------------ */

static void store_free(pg_db *db) {
  if (db->own != NULL && PQstatus(db->own->c) == CONNECTION_OK) {
    /* The server would drop the lock with the connection, but only once
     * it has seen the connection close: an open right after this close
     * must not find it still held. */
    PGresult *r = PQexec(db->own->c, "SELECT pg_advisory_unlock_all()");
    PQclear(r); /* a failure here leaves it to the server's cleanup */
  }
  conn_close(db->own);
  if (db->pool != NULL)
    pool_put(db->pool);
  pthread_mutex_destroy(&db->mu);
  free(db->name);
  free(db);
}

/* CLOSE: everything before it has completed. The store is freed, and an
 * EXCLUSIVE one's lock released, before done: the caller may open it again
 * as soon as done tells it the close is over. */
static void run_close(pg_db *db, ordo_storage_req *req) {
  ordo__executor_close(db->ex);
  store_free(db);
  req->backend_next = NULL;
  req->done(req);
}

static void drain(ordo__task *task) {
  pg_db *db = ORDO__CONTAINER_OF(task, pg_db, drain);
  for (;;) {
    pthread_mutex_lock(&db->mu);
    ordo_storage_req *list = db->head;
    db->head = db->tail = NULL;
    pthread_mutex_unlock(&db->mu);

    /* submit refuses everything after a CLOSE, so one is always last. */
    ordo_storage_req *close = NULL, **pp = &list;
    while (*pp != NULL) {
      if ((*pp)->opcode == ORDO_STORAGE_CLOSE) {
        close = *pp;
        *pp = NULL;
        break;
      }
      pp = &(*pp)->backend_next;
    }
    if (db->group_commit) {
      if (list != NULL)
        run_group(db, list);
    } else {
      for (ordo_storage_req *r = list, *next; r != NULL; r = next) {
        next = r->backend_next;
        r->backend_next = NULL;
        run_group(db, r);
      }
    }
    if (close != NULL) {
      run_close(db, close);
      return; /* db is gone */
    }
    pthread_mutex_lock(&db->mu);
    int again = 0;
    if (db->head == NULL)
      db->scheduled = 0;
    else if (ordo__executor_post(db->ex, &db->drain) != ORDO_OK)
      again = 1;
    pthread_mutex_unlock(&db->mu);
    if (!again)
      return; /* a reposted drain may already run elsewhere: touch nothing */
  }
}

static int pg_submit(ordo_storage *st, ordo_storage_req *req) {
  if (st == NULL || req == NULL || st->backend != &ordo_storage_postgres ||
      req->done == NULL)
    return ORDO_E_INVAL;
  pg_db *db = (pg_db *)st;
  if (!ordo__storage_req_valid(req, PG_QUERY_MAX_DEPTH, PG_MAX_PARAMS))
    return ORDO_E_INVAL;
  ordo__storage_req_reset_output(req);
  pthread_mutex_lock(&db->mu);
  if (db->closing) {
    pthread_mutex_unlock(&db->mu);
    return ORDO_E_STATE;
  }
  if (db->tail != NULL)
    db->tail->backend_next = req;
  else
    db->head = req;
  db->tail = req;
  if (!db->scheduled) {
    int rc = ordo__executor_post(db->ex, &db->drain);
    if (rc != ORDO_OK) {
      db->head = db->tail = NULL;
      pthread_mutex_unlock(&db->mu);
      return rc;
    }
    db->scheduled = 1;
  }
  if (req->opcode == ORDO_STORAGE_CLOSE)
    db->closing = 1;
  pthread_mutex_unlock(&db->mu);
  return ORDO_OK;
}

/* ---- open and destroy --------------------------------------------------------------- */

/* One statement with text parameters, blocking (open, destroy); its rows,
 * or NULL with *err set. */
static PGresult *exec_text(PGconn *c, const char *sql, int n,
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

/* Take the store's advisory lock on c; ORDO_E_STORAGE_BUSY (and who holds
 * it, when the server says) if another session has it. */
static int store_lock(PGconn *c, const char *name, char *err, size_t errlen) {
  char key[600];
  snprintf(key, sizeof key, "ordo store %s", name);
  const char *vals[] = {key};
  PGresult *r = exec_text(c, "SELECT pg_try_advisory_lock("
                          "hashtextextended($1, 0))", 1, vals, err, errlen);
  if (r == NULL)
    return ORDO_E_STORAGE;
  int got = PQntuples(r) == 1 && PQgetvalue(r, 0, 0)[0] == 't';
  PQclear(r);
  if (got)
    return ORDO_OK;
  char ignored[8];
  r = exec_text(c, "SELECT a.pid, coalesce(a.application_name, ''),"
                " coalesce(a.client_addr::text, 'local socket'),"
                " to_char(a.backend_start AT TIME ZONE 'UTC',"
                " 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
                " FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid,"
                " (SELECT hashtextextended($1, 0) AS k) h"
                " WHERE l.locktype = 'advisory' AND l.granted"
                " AND l.objsubid = 1"
                " AND l.classid = ((h.k >> 32) & 4294967295)::bigint::oid"
                " AND l.objid = (h.k & 4294967295)::bigint::oid",
                1, vals, ignored, sizeof ignored);
  if (r != NULL && PQntuples(r) > 0)
    snprintf(err, errlen, "open in another process (PostgreSQL session pid "
             "%s, \"%s\" from %s, since %s)", PQgetvalue(r, 0, 0),
             PQgetvalue(r, 0, 1), PQgetvalue(r, 0, 2), PQgetvalue(r, 0, 3));
  else
    snprintf(err, errlen, "open in another process (its PostgreSQL advisory "
             "lock is held)");
  PQclear(r);
  return ORDO_E_STORAGE_BUSY;
}

/* The store's id: made with CREATE (ORDO_E_WALLET_EXISTS if there), else
 * looked up (ORDO_E_WALLET_NOT_FOUND if not). */
static int store_find(PGconn *c, const char *name, int create, long long *id,
                      char *err, size_t errlen) {
  const char *vals[] = {name};
  PGresult *r = exec_text(c, create ? "INSERT INTO ordo_store(name) VALUES ($1)"
                                      " ON CONFLICT DO NOTHING RETURNING id"
                                    : "SELECT id FROM ordo_store WHERE name = $1",
                          1, vals, err, errlen);
  if (r == NULL)
    return ORDO_E_STORAGE;
  int found = PQntuples(r) == 1;
  if (found)
    *id = atoll(PQgetvalue(r, 0, 0));
  PQclear(r);
  if (found)
    return ORDO_OK;
  snprintf(err, errlen, create ? "already exists" : "no such store");
  return create ? ORDO_E_WALLET_EXISTS : ORDO_E_WALLET_NOT_FOUND;
}

static int pg_open(const ordo_storage_backend *be, ordo_ctx *ctx,
                   const char *uri, int flags, ordo_storage **out,
                   char **errmsg) {
  char err[512] = "";
  pg_url u;
  pg_conn *pc = NULL;
  if (errmsg != NULL)
    *errmsg = NULL;
  if (out != NULL)
    *out = NULL;
  if (be != &ordo_storage_postgres || ctx == NULL || uri == NULL ||
      out == NULL ||
      (flags & ~(ORDO_STORAGE_CREATE | ORDO_STORAGE_NO_GROUP_COMMIT |
                 ORDO_STORAGE_KEEP_WAL | ORDO_STORAGE_EXCLUSIVE)) != 0)
    return set_err(errmsg, ORDO_E_INVAL, "invalid arguments to open");
  int st = url_parse(uri, 1, &u, err, sizeof err);
  if (st != ORDO_OK)
    return set_err(errmsg, st, "%s", err);
  pg_db *db = calloc(1, sizeof(*db));
  if (db == NULL) {
    url_clear(&u);
    return set_err(errmsg, ORDO_E_NOMEM, "out of memory");
  }
  if (pthread_mutex_init(&db->mu, NULL) != 0)
    abort();
  db->base.backend = be;
  atomic_init(&db->commits, 0);
  db->group_commit = !(flags & ORDO_STORAGE_NO_GROUP_COMMIT);
  db->name = u.name;
  u.name = NULL;
  db->pool = pool_get(ctx, &u);
  url_clear(&u);
  if (db->pool == NULL) {
    store_free(db);
    return set_err(errmsg, ORDO_E_NOMEM, "out of memory");
  }
  const char *where = db->pool->where;
  if (flags & ORDO_STORAGE_EXCLUSIVE) {
    st = conn_open(db->pool, &db->own, err, sizeof err);
    pool_health(db->pool, st == ORDO_OK ? NULL : err);
    pc = db->own;
  } else {
    st = pool_acquire(db->pool, &pc, err, sizeof err);
  }
  if (st == ORDO_OK)
    st = store_find(pc->c, db->name, flags & ORDO_STORAGE_CREATE, &db->store,
                    err, sizeof err);
  if (st == ORDO_OK && db->own != NULL)
    st = store_lock(db->own->c, db->name, err, sizeof err);
  if (pc != NULL && pc != db->own)
    pool_release(db->pool, pc, PQstatus(pc->c) != CONNECTION_OK);
  if (st == ORDO_OK)
    st = ordo__executor_open(ctx, "postgres", &db->ex);
  if (st != ORDO_OK) {
    set_err(errmsg, st, "%s#%s: %s", where, db->name,
            err[0] ? err : ordo_strerror(st));
    store_free(db);
    return st;
  }
  db->drain.fn = drain;
  *out = &db->base;
  return ORDO_OK;
}

static int pg_destroy(const ordo_storage_backend *be, const char *uri,
                      char **errmsg) {
  char err[512] = "";
  pg_url u;
  if (errmsg != NULL)
    *errmsg = NULL;
  if (be != &ordo_storage_postgres || uri == NULL)
    return set_err(errmsg, ORDO_E_INVAL, "invalid arguments to destroy");
  int st = url_parse(uri, 1, &u, err, sizeof err);
  if (st != ORDO_OK)
    return set_err(errmsg, st, "%s", err);
  /* No context here, so no pool: a connection of its own. */
  pg_pool tmp = {.conninfo = u.conninfo, .where = u.where};
  pg_conn *pc = NULL;
  st = conn_open(&tmp, &pc, err, sizeof err);
  if (st == ORDO_OK) {
    const char *vals[] = {u.name};
    PGresult *r = exec_text(pc->c, "DELETE FROM ordo_store WHERE name = $1"
                            " RETURNING id", 1, vals, err, sizeof err);
    if (r == NULL) {
      st = ORDO_E_STORAGE;
    } else if (PQntuples(r) == 0) {
      st = ORDO_E_WALLET_NOT_FOUND;
      snprintf(err, sizeof err, "no such store");
    }
    PQclear(r);
    conn_close(pc);
  }
  if (st != ORDO_OK)
    set_err(errmsg, st, "%s#%s: %s", u.where, u.name, err);
  url_clear(&u);
  return st;
}

unsigned long long ordo__storage_postgres_commits(ordo_storage *st) {
  if (st == NULL || st->backend != &ordo_storage_postgres)
    return 0;
  return atomic_load_explicit(&((pg_db *)st)->commits, memory_order_relaxed);
}

const ordo_storage_backend ordo_storage_postgres = {
    .version = 1,
    .name = "postgres",
    .open = pg_open,
    .submit = pg_submit,
    .destroy = pg_destroy,
};

char *ordo__storage_postgres_where(const char *url) {
  pg_url u;
  char err[256];
  if (url_parse(url, 0, &u, err, sizeof err) != ORDO_OK)
    return strdup("(a bad PostgreSQL URL)");
  char *w = u.where;
  u.where = NULL;
  url_clear(&u);
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
  int st = url_parse(url, 0, &u, err, sizeof err);
  if (st != ORDO_OK)
    return set_err(errmsg, st, "%s", err);
  pg_pool tmp = {.conninfo = u.conninfo, .where = u.where};
  pg_conn *pc = NULL;
  st = conn_open(&tmp, &pc, err, sizeof err);
  PGresult *r = NULL;
  if (st == ORDO_OK) {
    const char *vals[] = {prefix};
    r = exec_text(pc->c, "SELECT name FROM ordo_store WHERE"
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
  conn_close(pc);
  if (st != ORDO_OK) {
    for (size_t i = 0; i < *n; i++)
      free((*names)[i]);
    free(*names);
    *names = NULL;
    *n = 0;
    set_err(errmsg, st, "%s: %s", u.where, err[0] ? err : ordo_strerror(st));
  }
  url_clear(&u);
  return st;
}

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
 * Group commit, as in the SQLite backend: requests queue on the store's
 * drain (drain.h), which hands every pending one at once to
 * ordo__pg_run_group (postgres_group.c) to run as one pipelined
 * transaction; what a failure or a lost connection means for a request is
 * said there.
 *
 * Lock order: the registry lock, then a pool's mu (postgres_conn.c);
 * drain.h's. No lock is held while the network is used or a done runs.
 */
#include "storage/postgres_int.h"

#include <sys/eventfd.h>
#include <unistd.h>

/* ---- the drain, submit, close ------------------------------------------------------ */

static void store_free(pg_db *db) {
  if (db->own != NULL && PQstatus(db->own->c) == CONNECTION_OK) {
    /* The server would drop the lock with the connection, but only once
     * it has seen the connection close: an open right after this close
     * must not find it still held. */
    PGresult *r = PQexec(db->own->c, "SELECT pg_advisory_unlock_all()");
    PQclear(r); /* a failure here leaves it to the server's cleanup */
  }
  ordo__pg_conn_close(db->own);
  if (db->pool != NULL)
    ordo__pg_pool_put(db->pool);
  if (db->q.wake_fd >= 0)
    close(db->q.wake_fd);
  ordo__storage_drain_destroy(&db->q);
  free(db->name);
  free(db);
}

/* CLOSE: everything before it has completed. The store is freed, and an
 * EXCLUSIVE one's lock released, before done: the caller may open it again
 * as soon as done tells it the close is over. */
static void run_close(ordo__storage_drain *q, ordo_storage_req *req) {
  pg_db *db = ORDO__CONTAINER_OF(q, pg_db, q);
  ordo__executor_close(db->q.ex);
  store_free(db);
  req->done(req);
}

/* The drain's hook: a group of db's requests. */
static void drain_group(ordo__storage_drain *q, ordo_storage_req *list) {
  ordo__pg_run_group(ORDO__CONTAINER_OF(q, pg_db, q), list);
}

static int pg_submit(ordo_storage *st, ordo_storage_req *req) {
  if (st == NULL || req == NULL || st->backend != &ordo_storage_postgres ||
      req->done == NULL)
    return ORDO_E_INVAL;
  pg_db *db = (pg_db *)st;
  if (!ordo__storage_req_valid(req, PG_QUERY_MAX_DEPTH, PG_MAX_PARAMS))
    return ORDO_E_INVAL;
  ordo__storage_req_reset_output(req);
  return ordo__storage_drain_submit(&db->q, req);
}

/* ---- open and destroy --------------------------------------------------------------- */

/* Take the store's advisory lock on c; ORDO_E_STORAGE_BUSY (and who holds
 * it, when the server says) if another session has it. */
static int store_lock(PGconn *c, const char *name, char *err, size_t errlen) {
  char key[600];
  snprintf(key, sizeof key, "ordo store %s", name);
  const char *vals[] = {key};
  PGresult *r = ordo__pg_exec_text(c, "SELECT pg_try_advisory_lock("
                          "hashtextextended($1, 0))", 1, vals, err, errlen);
  if (r == NULL)
    return ORDO_E_STORAGE;
  int got = PQntuples(r) == 1 && PQgetvalue(r, 0, 0)[0] == 't';
  PQclear(r);
  if (got)
    return ORDO_OK;
  char ignored[8];
  r = ordo__pg_exec_text(c, "SELECT a.pid, coalesce(a.application_name, ''),"
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
  PGresult *r = ordo__pg_exec_text(c, create ? "INSERT INTO ordo_store(name) VALUES ($1)"
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
    return ordo__storage_set_err(errmsg, ORDO_E_INVAL, "invalid arguments to open");
  int st = ordo__pg_url_parse(uri, 1, &u, err, sizeof err);
  if (st != ORDO_OK)
    return ordo__storage_set_err(errmsg, st, "%s", err);
  pg_db *db = calloc(1, sizeof(*db));
  if (db == NULL) {
    ordo__pg_url_clear(&u);
    return ordo__storage_set_err(errmsg, ORDO_E_NOMEM, "out of memory");
  }
  ordo__storage_drain_init(&db->q, !(flags & ORDO_STORAGE_NO_GROUP_COMMIT),
                           drain_group, run_close);
  /* Without it groups still commit, one after the other: a pipeline is
   * only faster. */
  if (db->q.group_commit)
    db->q.wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  db->base.backend = be;
  atomic_init(&db->commits, 0);
  atomic_init(&db->pipelined, 0);
  db->name = u.name;
  u.name = NULL;
  db->pool = ordo__pg_pool_get(ctx, &u);
  ordo__pg_url_clear(&u);
  if (db->pool == NULL) {
    store_free(db);
    return ordo__storage_set_err(errmsg, ORDO_E_NOMEM, "out of memory");
  }
  const char *where = db->pool->where;
  if (flags & ORDO_STORAGE_EXCLUSIVE) {
    st = ordo__pg_conn_open(db->pool, &db->own, err, sizeof err);
    ordo__pg_pool_health(db->pool, st == ORDO_OK ? NULL : err);
    pc = db->own;
  } else {
    st = ordo__pg_pool_acquire(db->pool, &pc, err, sizeof err);
  }
  if (st == ORDO_OK)
    st = store_find(pc->c, db->name, flags & ORDO_STORAGE_CREATE, &db->store,
                    err, sizeof err);
  if (st == ORDO_OK && db->own != NULL)
    st = store_lock(db->own->c, db->name, err, sizeof err);
  if (pc != NULL && pc != db->own)
    ordo__pg_pool_release(db->pool, pc, PQstatus(pc->c) != CONNECTION_OK);
  if (st == ORDO_OK)
    st = ordo__executor_open(ctx, "postgres", &db->q.ex);
  if (st != ORDO_OK) {
    ordo__storage_set_err(errmsg, st, "%s#%s: %s", where, db->name,
            err[0] ? err : ordo_strerror(st));
    store_free(db);
    return st;
  }
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
    return ordo__storage_set_err(errmsg, ORDO_E_INVAL, "invalid arguments to destroy");
  int st = ordo__pg_url_parse(uri, 1, &u, err, sizeof err);
  if (st != ORDO_OK)
    return ordo__storage_set_err(errmsg, st, "%s", err);
  /* No context here, so no pool: a connection of its own. */
  pg_pool tmp = {.conninfo = u.conninfo, .where = u.where};
  pg_conn *pc = NULL;
  st = ordo__pg_conn_open(&tmp, &pc, err, sizeof err);
  if (st == ORDO_OK) {
    const char *vals[] = {u.name};
    PGresult *r = ordo__pg_exec_text(pc->c, "DELETE FROM ordo_store WHERE name = $1"
                            " RETURNING id", 1, vals, err, sizeof err);
    if (r == NULL) {
      st = ORDO_E_STORAGE;
    } else if (PQntuples(r) == 0) {
      st = ORDO_E_WALLET_NOT_FOUND;
      snprintf(err, sizeof err, "no such store");
    }
    PQclear(r);
    ordo__pg_conn_close(pc);
  }
  if (st != ORDO_OK)
    ordo__storage_set_err(errmsg, st, "%s#%s: %s", u.where, u.name, err);
  ordo__pg_url_clear(&u);
  return st;
}

unsigned long long ordo__storage_postgres_commits(ordo_storage *st) {
  if (st == NULL || st->backend != &ordo_storage_postgres)
    return 0;
  return atomic_load_explicit(&((pg_db *)st)->commits, memory_order_relaxed);
}

unsigned long long ordo__storage_postgres_pipelined(ordo_storage *st) {
  if (st == NULL || st->backend != &ordo_storage_postgres)
    return 0;
  return atomic_load_explicit(&((pg_db *)st)->pipelined, memory_order_relaxed);
}

int ordo__storage_postgres_fence(ordo_storage *st, unsigned long long epoch) {
  /* ordo_lease.epoch is a bigint: a larger epoch could never match. */
  if (st == NULL || st->backend != &ordo_storage_postgres ||
      epoch > (unsigned long long)INT64_MAX)
    return ORDO_E_INVAL;
  pg_db *db = (pg_db *)st;
  db->fence_epoch = epoch;
  db->fenced = 1;
  return ORDO_OK;
}

const ordo_storage_backend ordo_storage_postgres = {
    .version = 1,
    .name = "postgres",
    .open = pg_open,
    .submit = pg_submit,
    .destroy = pg_destroy,
};


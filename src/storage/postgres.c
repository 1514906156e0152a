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
 * drain (drain.h), which hands every pending one at once to run_group, to
 * run as one transaction. The transaction is one pipeline
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
 * Lock order: the registry lock, then a pool's mu (postgres_conn.c);
 * drain.h's. No lock is held while the network is used or a done runs.
 */
#include "storage/postgres_int.h"

#include <errno.h>
#include <poll.h>
#include <time.h>
#include <unistd.h>

/* No byte from the server for this long: the connection is treated as
 * lost (keepalives would take minutes to say so). */
#define PG_IO_TIMEOUT_MS 120000

/* ---- a group as one pipelined transaction ----------------------------------------- */

/* Where a result goes: BEGIN/COMMIT (idx SIZE_MAX), part `part` of
 * request reqs[idx] (sub: itself, or one of a BATCH's), or with count > 0
 * the one statement of the ADDs reqs[idx .. idx + count). */
typedef struct pg_slot {
  size_t idx;
  ordo_storage_req *sub;
  int part;
  size_t count;
} pg_slot;

/* How one pass of a group ended. */
enum { PASS_COMMITTED, PASS_ABORTED, PASS_COMMIT_FAILED, PASS_LOST };

typedef struct pg_pass {
  ordo_storage_req **reqs;
  unsigned char *final; /* 1: answered, not sent again */
  size_t n;
  pg_slot *slots;
  size_t nslots, capslots;
  size_t failed;        /* PASS_ABORTED: which request failed; SIZE_MAX:
                           a run of ADDs, and not which of them */
  int one_by_one;       /* no runs of ADDs: after one failed as a whole */
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
  ps->slots[ps->nslots++] = (pg_slot){idx, sub, part, 0};
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
        ordo__storage_req_msg(r, "%s", sub->message != NULL ? sub->message
                                                 : ordo_strerror(st));
      return st;
    }
  }
  return ORDO_OK;
}

/* A BATCH whose sub-request `bad` failed: the others are undone. */
static void batch_failed(ordo_storage_req *r, ordo_storage_req *bad, int st) {
  size_t at = (size_t)(bad - r->batch);
  ordo__storage_req_msg(r, "batch request %zu of %zu: %s", at + 1, r->nbatch,
             bad->message != NULL ? bad->message : ordo_strerror(st));
  for (size_t j = 0; j < r->nbatch; j++) {
    if (&r->batch[j] == bad)
      continue;
    ordo__storage_req_drop_output(&r->batch[j]);
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
      } else if (sl->count > 0 && s != PGRES_PIPELINE_ABORTED &&
                 *outcome == PASS_COMMITTED) {
        if (s == PGRES_TUPLES_OK) {
          ordo__pg_take_adds(ps->reqs + sl->idx, sl->count, res);
        } else {
          *outcome = PASS_ABORTED;
          ps->failed = SIZE_MAX;
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
    int r = ordo__pg_wait_socket(c, (short)(POLLIN | (fl == 1 ? POLLOUT : 0)), 1000);
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
    size_t run = 0;
    while (!ps->one_by_one && i + run < ps->n && !ps->final[i + run] &&
           ps->reqs[i + run]->opcode == ORDO_STORAGE_ADD)
      run++;
    int st;
    if (run >= 2) {
      st = ordo__pg_send_adds(db, pc, ps->reqs + i, run);
      if (st == ORDO_OK && (st = slot_push(ps, i, NULL, 0)) == ORDO_OK)
        ps->slots[ps->nslots - 1].count = run;
      if (st == ORDO_E_NOMEM) {
        ordo__storage_req_msg(ps->reqs[i], "out of memory");
        nomem_at = i;
        break;
      }
      if (st != ORDO_OK)
        return PASS_LOST;
      i += run - 1;
      continue;
    }
    st = pass_send_req(db, pc, ps, i);
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
      ordo__storage_req_msg(r, "not written: an earlier write of its chain failed");
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
    ordo__storage_req_drop_output(r);
    r->status = st;
    ordo__storage_req_msg(r, "%s", why);
    if (r->opcode == ORDO_STORAGE_BATCH)
      for (size_t j = 0; j < r->nbatch; j++) {
        ordo__storage_req_drop_output(&r->batch[j]);
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
      ordo__storage_req_msg(r, "out of memory");
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
      int st = ordo__pg_pool_acquire(db->pool, &pc, err, sizeof err);
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
      ordo__pg_one_line(ps.err);
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
        ordo__pg_conn_close(db->own);
        db->own = NULL;
      } else {
        ordo__pg_pool_release(db->pool, pc, 1);
      }
      continue;
    }
    if (pc != db->own)
      ordo__pg_pool_release(db->pool, pc, 0);
    if (outcome == PASS_COMMITTED) {
      for (size_t i = 0; i < ps.n; i++) {
        if (!ps.final[i])
          writes |= ordo__storage_is_write(ps.reqs[i]->opcode);
        ps.final[i] = 1;
      }
    } else if (outcome == PASS_ABORTED && ps.failed == SIZE_MAX) {
      ps.one_by_one = 1; /* to learn which add of the run failed */
      reset_pending(&ps);
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
  ordo__pg_conn_close(db->own);
  if (db->pool != NULL)
    ordo__pg_pool_put(db->pool);
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
  run_group(ORDO__CONTAINER_OF(q, pg_db, q), list);
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
  db->base.backend = be;
  atomic_init(&db->commits, 0);
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

const ordo_storage_backend ordo_storage_postgres = {
    .version = 1,
    .name = "postgres",
    .open = pg_open,
    .submit = pg_submit,
    .destroy = pg_destroy,
};


/*
 * postgres_group.c — a group of a PostgreSQL store's requests as one
 * pipelined transaction, and the groups behind it (postgres_int.h).
 *
 * Group commit, as in the SQLite backend: requests queue on the store's
 * drain (drain.h), which hands every pending one at once to
 * ordo__pg_run_group, to run as one transaction. The transaction is one pipeline
 * (libpq pipeline mode): BEGIN, every request's statements, COMMIT and a
 * sync point are sent without waiting, and the answers read back as they
 * come, on a non-blocking connection the drain polls. A group costs one
 * round trip and one commit however many requests it holds, and the next
 * group goes out before its answers are back ("pipelined groups" below).
 * The dones are called only after the server acknowledged COMMIT, so a
 * write is as durable as the server's synchronous_commit makes a commit
 * (README).
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
 * A fenced store (ordo__storage_postgres_fence, for clusters) sends one
 * statement more in every pass, after the guard: ordo_fence(store, epoch),
 * which refuses a lease at another epoch (OR004) and otherwise holds a
 * share lock on the lease row until the pass's transaction ends, so that a
 * takeover waits for it. A refusal fails every request of the group with
 * ORDO_E_STORAGE_FENCED and the server's message. It is a failed
 * transaction, not a lost connection: nothing of it was applied and
 * nothing goes again; the chain rule fails the chained writes behind it.
 *
 * Lock order: drain.h's; no lock is held while the network is used or a
 * done runs.
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

/* Where a result goes: one of the pass's own statements (idx SIZE_MAX,
 * part OWN_*), part `part` of request reqs[idx] (sub: itself, or one of a
 * BATCH's), or with count > 0 the one statement of the ADDs
 * reqs[idx .. idx + count). */
typedef struct pg_slot {
  size_t idx;
  ordo_storage_req *sub;
  int part;
  size_t count;
} pg_slot;

/* The pass's own statements, as their slots' part. */
enum { OWN_BEGIN, OWN_GUARD, OWN_COMMIT, OWN_FENCE };

/* How one pass of a group ended. PASS_FENCED: the fence refused it (a
 * newer owner holds the store's lease). */
enum { PASS_COMMITTED, PASS_ABORTED, PASS_COMMIT_FAILED, PASS_LOST,
       PASS_FENCED };

/* A group: its requests, and the pass of them now sent or being read. */
typedef struct pg_group {
  ordo_storage_req **reqs;
  unsigned char *final; /* 1: answered, not sent again */
  size_t n;
  pg_slot *slots;       /* the pass's */
  size_t nslots, capslots;
  size_t failed;        /* PASS_ABORTED: which request failed; SIZE_MAX:
                           a run of ADDs, and not which of them */
  int one_by_one;       /* no runs of ADDs: after one failed as a whole */
  ordo_storage_req *failed_sub;
  size_t nomem_at;      /* the pass ends in ROLLBACK: out of memory at
                           request nomem_at (n: at COMMIT); else SIZE_MAX */
  int inflight;         /* a pass is sent and its answers not read */
  int empty;            /* taken behind another with nothing to send */
  int chain_end;        /* the chain's state after the group if the pass
                           commits (chain_walk) */
  int writes;           /* a pass committed writes */
  int lost;             /* passes lost: reads go again only a few times */
  unsigned long long token; /* what the pass's guard sets */
  char err[512];
} pg_group;

static int slot_push(pg_group *g, size_t idx, ordo_storage_req *sub, int part) {
  if ((g->nslots + 1) * sizeof(pg_slot) > g->capslots) {
    pg_slot *t = ordo__grow(g->slots, &g->capslots,
                            (g->nslots + 1) * sizeof(pg_slot),
                            64 * sizeof(pg_slot));
    if (t == NULL)
      return ORDO_E_NOMEM;
    g->slots = t;
  }
  g->slots[g->nslots++] = (pg_slot){idx, sub, part, 0};
  return ORDO_OK;
}

/* Queue request i's statements and their slots. */
static int pass_send_req(pg_db *db, pg_conn *pc, pg_group *g, size_t i) {
  ordo_storage_req *r = g->reqs[i];
  size_t nsub = r->opcode == ORDO_STORAGE_BATCH ? r->nbatch : 1;
  for (size_t k = 0; k < nsub; k++) {
    ordo_storage_req *sub = r->opcode == ORDO_STORAGE_BATCH ? &r->batch[k] : r;
    int strict = r->opcode == ORDO_STORAGE_BATCH ||
                 (r->flags & ORDO_STORAGE_REQ_CHAINED);
    int nsent = 0;
    int st = ordo__pg_send(db, pc, sub, strict, &nsent);
    for (int part = 0; part < nsent && st == ORDO_OK; part++)
      st = slot_push(g, i, sub, part);
    if (st != ORDO_OK) {
      if (sub != r)
        ordo__storage_req_msg(r, "%s", sub->message != NULL ? sub->message
                                                 : ordo_strerror(st));
      return st;
    }
  }
  return ORDO_OK;
}

/* One of the pass's own statements (part: OWN_*) failed with res: g->err
 * says why; returns how the pass ends. The fence's refusal is final for
 * the whole group, in the server's own words (they name the lease, its
 * epoch and owner); any other failure is a transaction that did not
 * commit. */
static int own_failed(pg_group *g, int part, const PGresult *res) {
  static const char *const what[] = {"BEGIN", "the pass's guard", "COMMIT",
                                     "the lease's fence"};
  const char *m = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
  const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
  if (m == NULL)
    m = PQresultErrorMessage(res);
  if (part == OWN_FENCE && state != NULL &&
      strcmp(state, PG_STATE_FENCED) == 0) {
    snprintf(g->err, sizeof g->err, "%s", m);
    return PASS_FENCED;
  }
  snprintf(g->err, sizeof g->err, "%s: %s", what[part], m);
  return PASS_COMMIT_FAILED;
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

/*
 * Pipelined groups. A pass is sent as a whole and its answers come back
 * about a millisecond later (more when the server is across a network);
 * the requests that arrive meanwhile need not wait for them. While a pass
 * is read, what has arrived is taken from the drain as a new group and its
 * first pass sent on the same connection behind it, up to
 * PG_PIPELINE_DEPTH groups in flight: the server runs them one after the
 * other, and is busy while this side reads answers and calls dones, and
 * while the answers travel.
 *
 * A pass must not commit unless the one before it did: its writes may
 * follow from those (a chain), and an answer must never say a write is in
 * when the one before it is not. A pass behind one whose statement failed
 * cannot: its BEGIN finds the transaction aborted and is refused, and so
 * is everything of it up to its sync point. A pass behind one whose COMMIT
 * failed, or that ended in ROLLBACK, would run in a new transaction of its
 * own, so every pass's first statement is a guard (PS_GUARD): it checks
 * the session setting ordo.pass for the token of the pass before it on the
 * connection and sets its own; a setting made in a transaction that does
 * not commit reverts, so the check fails, and so on down the line. The
 * passes sent behind one that did not commit are read to their sync
 * points, their answers thrown away, and they go again, in order, once the
 * group before them is over; none is sent behind a group that waits so.
 *
 * Only group commit pipelines (not the one-by-one requests of
 * NO_GROUP_COMMIT), nothing goes behind a pass that ends in ROLLBACK, and
 * at most PG_PIPELINE_GROUPS groups are taken in a row before the drain
 * task yields its thread to the other stores on it.
 */
#define PG_PIPELINE_DEPTH 8
#define PG_PIPELINE_GROUPS 64

/* The groups of one drain run, oldest first: g[0] is being run, those
 * behind it are in flight (their first pass sent), or wait their turn. */
typedef struct pg_pipe {
  pg_db *db;
  pg_conn *pc;     /* the connection they go on; NULL: none held */
  pg_group *g[PG_PIPELINE_DEPTH];
  size_t n;
  int fill;        /* may take more groups (group commit, a wake fd) */
  int taken;       /* groups taken by this run */
  int send_failed; /* libpq could not queue a pass: the connection is not
                      to be used again */
} pg_pipe;

static pg_group *group_new(ordo_storage_req *list);
static size_t chain_walk(pg_group *g, int cf);
static int pass_send(pg_db *db, pg_conn *pc, pg_group *g);

/* Whether a group may be sent behind g[0] now: room, and no group behind
 * it waits unsent (it would be overtaken). */
static int pipe_open(const pg_pipe *pp) {
  const pg_group *g = pp->g[0];
  if (!pp->fill || pp->send_failed || pp->n >= PG_PIPELINE_DEPTH ||
      pp->taken >= PG_PIPELINE_GROUPS || g->nomem_at != SIZE_MAX ||
      g->token == 0)
    return 0;
  for (size_t k = 1; k < pp->n; k++)
    if ((!pp->g[k]->inflight && !pp->g[k]->empty) ||
        pp->g[k]->nomem_at != SIZE_MAX) /* ends in ROLLBACK */
      return 0;
  return 1;
}

/* Take what the drain holds as a group behind the others and send its
 * first pass. Behind one group in flight, any number; behind more, only as
 * many as the last one sent holds: more groups in flight only help while
 * the answers are on the way (a server across a network), and smaller ones
 * would only cost the server more commits when it is the one that is busy
 * (on the same machine). */
static void pipe_fill(pg_pipe *pp) {
  size_t min = 1;
  if (pp->n > 1 && pp->g[pp->n - 1]->n > 1)
    min = pp->g[pp->n - 1]->n;
  ordo_storage_req *list = ordo__storage_drain_take(&pp->db->q, min);
  if (list == NULL)
    return;
  pg_group *t = group_new(list);
  if (t == NULL)
    return; /* group_new answered them all */
  int chain = pp->g[pp->n - 1]->chain_end;
  pp->g[pp->n++] = t;
  pp->taken++;
  if (chain_walk(t, chain) == 0) {
    t->empty = 1; /* nothing to send: all failed by the chain rule */
    return;
  }
  t->inflight = 1;
  if (pass_send(pp->db, pp->pc, t) != PASS_COMMITTED)
    pp->send_failed = 1;
  atomic_fetch_add_explicit(&pp->db->pipelined, 1, memory_order_relaxed);
}

/* Read every answer of g's pass up to its sync point, handing each to its
 * slot. PASS_LOST when the connection went away or went silent. With pp
 * (g is its g[0]), groups are taken and sent behind while the server
 * works (pipe_fill). */
static void pass_read(pg_db *db, pg_conn *pc, pg_group *g, int *outcome,
                      pg_pipe *pp) {
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
        return;
      }
      got = 1;
      if (s == PGRES_FATAL_ERROR && ordo__pg_is_conn_error(c, res)) {
        const char *m = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
        snprintf(g->err, sizeof g->err, "%s",
                 m != NULL ? m : PQerrorMessage(c));
        PQclear(res);
        *outcome = PASS_LOST;
        return;
      }
      if (at >= g->nslots) {
        PQclear(res);
        continue; /* cannot happen: one result per slot */
      }
      pg_slot *sl = &g->slots[at];
      if (sl->idx == SIZE_MAX) { /* the pass's own */
        if (s == PGRES_FATAL_ERROR && *outcome == PASS_COMMITTED)
          *outcome = own_failed(g, sl->part, res);
      } else if (sl->count > 0 && s != PGRES_PIPELINE_ABORTED &&
                 *outcome == PASS_COMMITTED) {
        if (s == PGRES_TUPLES_OK) {
          ordo__pg_take_adds(g->reqs + sl->idx, sl->count, res);
        } else {
          *outcome = PASS_ABORTED;
          g->failed = SIZE_MAX;
        }
      } else if (s != PGRES_PIPELINE_ABORTED && *outcome == PASS_COMMITTED) {
        int st = ordo__pg_take(db, sl->sub, sl->part, res);
        if (st != ORDO_OK && sl->sub->status == ORDO_OK)
          sl->sub->status = st;
        if (s == PGRES_FATAL_ERROR) {
          *outcome = PASS_ABORTED;
          g->failed = sl->idx;
          g->failed_sub = sl->sub;
        }
      }
      PQclear(res);
    }
    if (PQstatus(c) == CONNECTION_BAD)
      break;
    /* Nothing more to read for now: the time to send what waits. */
    int open = pp != NULL && pipe_open(pp);
    if (open) {
      size_t had = pp->n;
      pipe_fill(pp);
      if (pp->n > had)
        continue; /* flush it, and take more if there is room */
    }
    struct pollfd pfd[2] = {
        {.fd = PQsocket(c), .events = (short)(POLLIN | (fl == 1 ? POLLOUT : 0))},
        {.fd = open ? db->q.wake_fd : -1, .events = POLLIN}};
    int r = poll(pfd, 2, 1000);
    if (r < 0 && errno == EINTR)
      continue;
    if (r > 0 && (pfd[1].revents & POLLIN)) {
      uint64_t v;
      ssize_t nr = read(db->q.wake_fd, &v, sizeof v);
      (void)nr; /* the count does not matter, only that it is reset */
    }
    if (r > 0 && pfd[0].revents != 0) {
      if (PQconsumeInput(c) == 0)
        break;
      last = ordo__now_ns();
    } else if (r < 0 ||
               ordo__now_ns() - last > PG_IO_TIMEOUT_MS * 1000000ull) {
      snprintf(g->err, sizeof g->err, "no answer for %d s",
               PG_IO_TIMEOUT_MS / 1000);
      *outcome = PASS_LOST;
      return;
    }
  }
  if (g->err[0] == 0)
    snprintf(g->err, sizeof g->err, "%s", PQerrorMessage(c));
  *outcome = PASS_LOST;
}

/* A fenced store's check of its lease (PS_FENCE), queued after the guard:
 * from it on, the pass's transaction holds the lease row's share lock, or
 * fails as a whole (own_failed). Whether libpq queued it. */
static int fence_send(pg_db *db, pg_conn *pc, pg_group *g) {
  char epoch[24], name[16];
  snprintf(epoch, sizeof epoch, "%llu", db->fence_epoch);
  snprintf(name, sizeof name, "ordo_%d", PS_FENCE);
  const char *v[2] = {db->name, epoch};
  return slot_push(g, SIZE_MAX, NULL, OWN_FENCE) == ORDO_OK &&
         PQsendQueryPrepared(pc->c, name, 2, v, NULL, NULL, 1);
}

/* Send one pass of g on pc: BEGIN, the guard, the fence (a fenced store),
 * every request not yet final, COMMIT (ROLLBACK when out of memory midway)
 * and a sync point. PASS_COMMITTED when libpq queued it all, else
 * PASS_LOST. */
static int pass_send(pg_db *db, pg_conn *pc, pg_group *g) {
  PGconn *c = pc->c;
  char expect[24] = "", token[24], name[16];
  g->nslots = 0;
  g->err[0] = 0;
  g->nomem_at = SIZE_MAX;
  /* The guard goes where groups may be pipelined, only: one request per
   * transaction (NO_GROUP_COMMIT) stays what its name says. */
  g->token = db->q.group_commit && db->q.wake_fd >= 0 ? ++pc->tok_next : 0;
  if (pc->tok_sent != 0)
    snprintf(expect, sizeof expect, "%llu", pc->tok_sent);
  snprintf(token, sizeof token, "%llu", g->token);
  snprintf(name, sizeof name, "ordo_%d", PS_GUARD);
  if (g->token != 0)
    pc->tok_sent = g->token;
  const char *gv[2] = {expect, token};
  if ((PQpipelineStatus(c) == PQ_PIPELINE_OFF && PQenterPipelineMode(c) != 1) ||
      slot_push(g, SIZE_MAX, NULL, OWN_BEGIN) != ORDO_OK ||
      !PQsendQueryParams(c, "BEGIN", 0, NULL, NULL, NULL, NULL, 1) ||
      (g->token != 0 &&
       (slot_push(g, SIZE_MAX, NULL, OWN_GUARD) != ORDO_OK ||
        !PQsendQueryPrepared(c, name, 2, gv, NULL, NULL, 1))) ||
      (db->fenced && !fence_send(db, pc, g))) {
    snprintf(g->err, sizeof g->err, "%s", PQerrorMessage(c));
    return PASS_LOST;
  }
  for (size_t i = 0; i < g->n; i++) {
    if (g->final[i])
      continue;
    size_t run = 0;
    while (!g->one_by_one && i + run < g->n && !g->final[i + run] &&
           g->reqs[i + run]->opcode == ORDO_STORAGE_ADD)
      run++;
    int st;
    if (run >= 2) {
      st = ordo__pg_send_adds(db, pc, g->reqs + i, run);
      if (st == ORDO_OK && (st = slot_push(g, i, NULL, 0)) == ORDO_OK)
        g->slots[g->nslots - 1].count = run;
      if (st == ORDO_E_NOMEM) {
        ordo__storage_req_msg(g->reqs[i], "out of memory");
        g->nomem_at = i;
        break;
      }
      if (st != ORDO_OK)
        return PASS_LOST;
      i += run - 1;
      continue;
    }
    st = pass_send_req(db, pc, g, i);
    if (st == ORDO_E_NOMEM) {
      g->nomem_at = i; /* roll back what was queued; answer it as failed */
      break;
    }
    if (st != ORDO_OK)
      return PASS_LOST; /* libpq could not queue: the connection is gone */
  }
  if (slot_push(g, SIZE_MAX, NULL, OWN_COMMIT) != ORDO_OK &&
      g->nomem_at == SIZE_MAX)
    g->nomem_at = g->n; /* no slot for COMMIT: ROLLBACK has its answer read */
  int sent = PQsendQueryParams(c, g->nomem_at != SIZE_MAX ? "ROLLBACK" : "COMMIT",
                               0, NULL, NULL, NULL, NULL, 1) &&
             PQpipelineSync(c) == 1;
  if (!sent) {
    snprintf(g->err, sizeof g->err, "%s", PQerrorMessage(c));
    return PASS_LOST;
  }
  return PASS_COMMITTED;
}

/* After the last pass in flight on pc was read (outcome): leave pipeline
 * mode and end the transaction a failure left open, so the connection goes
 * back clean; the guard's token as the server now holds it; and what a
 * pass rolled back on purpose (out of memory) comes to. */
static int pass_settle(pg_conn *pc, pg_group *g, int outcome) {
  PGconn *c = pc->c;
  if (outcome != PASS_LOST && PQexitPipelineMode(c) != 1) {
    snprintf(g->err, sizeof g->err, "%s", PQerrorMessage(c));
    outcome = PASS_LOST;
  }
  /* A failure skipped COMMIT, and the sync point does not end an explicit
   * transaction: it is still open, aborted. End it (one more round trip,
   * on failures only). */
  if (outcome != PASS_LOST && PQtransactionStatus(c) != PQTRANS_IDLE) {
    PGresult *r = PQexec(c, "ROLLBACK");
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
      snprintf(g->err, sizeof g->err, "ROLLBACK: %s", PQerrorMessage(c));
      outcome = PASS_LOST;
    }
    PQclear(r);
  }
  if (outcome == PASS_COMMITTED && g->nomem_at == SIZE_MAX && g->token != 0)
    pc->tok_committed = g->token;
  pc->tok_sent = pc->tok_committed;
  if (outcome == PASS_COMMITTED && g->nomem_at != SIZE_MAX) {
    /* Rolled back on purpose. */
    if (g->nomem_at < g->n) {
      g->failed = g->nomem_at;
      g->failed_sub = NULL;
      g->reqs[g->nomem_at]->status = ORDO_E_NOMEM;
      return PASS_ABORTED;
    }
    snprintf(g->err, sizeof g->err, "out of memory");
    return PASS_COMMIT_FAILED;
  }
  return outcome;
}

/* Walk the group in order from the chain state cf, applying the chain
 * rule (storage.h): a pending chained write after a failed one fails
 * unsent. Sets g->chain_end; returns how many are still to send. */
static size_t chain_walk(pg_group *g, int cf) {
  size_t pending = 0;
  for (size_t i = 0; i < g->n; i++) {
    ordo_storage_req *r = g->reqs[i];
    if (r->flags & ORDO_STORAGE_REQ_CHAIN_RESET)
      cf = 0;
    if (!(r->flags & ORDO_STORAGE_REQ_CHAINED)) {
      pending += !g->final[i];
      continue;
    }
    if (g->final[i]) {
      if (r->status != ORDO_OK)
        cf = 1;
    } else if (cf) {
      g->final[i] = 1;
      r->status = ORDO_E_STORAGE;
      ordo__storage_req_msg(r, "not written: an earlier write of its chain failed");
    } else {
      pending++;
    }
  }
  g->chain_end = cf;
  return pending;
}

/* Every pending request gets st and why (writes only, with writes_only). */
static void fail_pending(pg_group *g, int st, const char *why, int writes_only) {
  for (size_t i = 0; i < g->n; i++) {
    ordo_storage_req *r = g->reqs[i];
    if (g->final[i] || (writes_only && !ordo__storage_is_write(r->opcode)))
      continue;
    ordo__storage_req_drop_output(r);
    r->status = st;
    ordo__storage_req_msg(r, "%s", why);
    if (r->opcode == ORDO_STORAGE_BATCH)
      for (size_t j = 0; j < r->nbatch; j++) {
        ordo__storage_req_drop_output(&r->batch[j]);
        r->batch[j].status = st;
      }
    g->final[i] = 1;
  }
}

/* Forget what a pass that did not commit produced: the request goes again. */
static void reset_pending(pg_group *g) {
  for (size_t i = 0; i < g->n; i++) {
    if (g->final[i])
      continue;
    ordo_storage_req *r = g->reqs[i];
    ordo_storage_req_clear_output(r);
    r->status = ORDO_OK;
    for (size_t j = 0; r->opcode == ORDO_STORAGE_BATCH && j < r->nbatch; j++) {
      ordo_storage_req_clear_output(&r->batch[j]);
      r->batch[j].status = ORDO_OK;
    }
  }
}

/* A pass of g lost with its connection (err: why): its writes may or may
 * not be in, and fail saying so; its reads go again, a few times (a read
 * that itself takes the server down must not loop). */
static void pass_lost(pg_db *db, pg_group *g) {
  char err[1024];
  int any_write = 0;
  for (size_t i = 0; i < g->n; i++)
    any_write |= !g->final[i] && ordo__storage_is_write(g->reqs[i]->opcode);
  ordo__pg_one_line(g->err);
  snprintf(err, sizeof err, "connection to PostgreSQL at %s lost before "
           "COMMIT was acknowledged: the write may or may not have been "
           "applied (%s)", db->pool->where, g->err);
  fail_pending(g, ORDO_E_STORAGE, err, any_write || ++g->lost < 3);
  reset_pending(g);
}

/* The connection pc is lost (why: g's err): closed, and the exclusive
 * store's lock with it. */
static void conn_lost(pg_db *db, pg_conn *pc, const pg_group *g) {
  if (pc == db->own) {
    snprintf(db->lock_lost, sizeof db->lock_lost, "the connection "
             "holding this store's lock on %.80s was lost (%.100s): reopen it",
             db->pool->where, g->err);
    ordo__pg_conn_close(db->own);
    db->own = NULL;
  } else {
    ordo__pg_pool_release(db->pool, pc, 1);
  }
}

/* The requests of list (linked by backend_next) as a group; NULL when
 * there is no memory for it, and then every one of them is answered. */
static pg_group *group_new(ordo_storage_req *list) {
  pg_group *g = calloc(1, sizeof *g);
  size_t n = 0;
  for (ordo_storage_req *r = list; r != NULL; r = r->backend_next)
    n++;
  if (g != NULL) {
    g->n = n;
    g->reqs = malloc(n * sizeof(*g->reqs));
    g->final = calloc(n, 1);
  }
  if (g == NULL || g->reqs == NULL || g->final == NULL) {
    for (ordo_storage_req *r = list, *next; r != NULL; r = next) {
      next = r->backend_next;
      r->backend_next = NULL;
      r->status = ORDO_E_NOMEM;
      ordo__storage_req_msg(r, "out of memory");
      r->done(r);
    }
    if (g != NULL) {
      free(g->reqs);
      free(g->final);
      free(g);
    }
    return NULL;
  }
  size_t k = 0;
  for (ordo_storage_req *r = list; r != NULL; r = r->backend_next)
    g->reqs[k++] = r;
  g->nomem_at = SIZE_MAX;
  return g;
}

/* Whether a group behind g[0] is in flight. */
static int pipe_inflight(const pg_pipe *pp) {
  for (size_t k = 1; k < pp->n; k++)
    if (pp->g[k]->inflight)
      return 1;
  return 0;
}

/* g[0]'s pass was read (outcome) and did not commit, or the connection
 * went (lost) or cannot be used again (pp->send_failed): what is in flight
 * behind it. Returns whether the connection is to be closed. */
static int pipe_behind(pg_db *db, pg_pipe *pp, int outcome) {
  int broken = pp->send_failed;
  for (size_t k = 1; k < pp->n; k++) {
    pg_group *b = pp->g[k];
    if (!b->inflight)
      continue;
    b->inflight = 0;
    if (outcome == PASS_LOST || (outcome == PASS_COMMITTED && broken)) {
      /* Gone with the connection, or behind one queued in part: it may
       * have committed. */
      if (outcome == PASS_LOST)
        snprintf(b->err, sizeof b->err, "%s", pp->g[0]->err);
      else if (b->err[0] == 0)
        snprintf(b->err, sizeof b->err, "libpq could not queue a pass");
      pass_lost(db, b);
      broken = 1;
      continue;
    }
    /* g[0] did not commit, so b cannot have (the guard): its answers are
     * thrown away, and it goes again in its turn. */
    int o2 = PASS_COMMITTED;
    if (!broken)
      pass_read(db, pp->pc, b, &o2, NULL);
    broken |= o2 == PASS_LOST;
    reset_pending(b);
  }
  return broken;
}

/*
 * Run pp->g[0]'s passes until each of its requests is final, on pp->pc
 * (acquired when NULL; left NULL when it was lost). Its first pass may be
 * in flight already; more groups may be taken and sent behind it (see
 * "pipelined groups").
 */
static void group_run(pg_db *db, pg_pipe *pp) {
  pg_group *g = pp->g[0];
  for (;;) {
    if (!g->inflight && chain_walk(g, db->chain_failed) == 0)
      break;
    if (db->lock_lost[0] != 0) {
      fail_pending(g, ORDO_E_STORAGE, db->lock_lost, 0);
      break;
    }
    pg_conn *pc = pp->pc != NULL ? pp->pc : db->own;
    if (pc == NULL) {
      char err[1024];
      int st = ordo__pg_pool_acquire(db->pool, &pc, err, sizeof err);
      if (st != ORDO_OK) {
        fail_pending(g, st, err, 0);
        break;
      }
    }
    pp->pc = pc;
    int outcome = g->inflight ? PASS_COMMITTED : pass_send(db, pc, g);
    g->inflight = 0;
    if (outcome == PASS_COMMITTED)
      pass_read(db, pc, g, &outcome, pp->fill ? pp : NULL);
    /* g's answers stand as read; broken: pc is not to be used again. A
     * pass that ended in ROLLBACK on purpose did not commit either. */
    int committed = outcome == PASS_COMMITTED && g->nomem_at == SIZE_MAX;
    int broken = 0;
    if (!committed || pp->send_failed)
      broken = pipe_behind(db, pp, committed || outcome == PASS_LOST
                                       ? outcome
                                       : PASS_ABORTED);
    if (broken && g->err[0] == 0)
      snprintf(g->err, sizeof g->err, "libpq could not queue a pass");
    if (outcome == PASS_LOST) {
      pass_lost(db, g);
      conn_lost(db, pc, g);
      pp->pc = NULL;
      pp->send_failed = 0;
      continue;
    }
    if (broken) {
      conn_lost(db, pc, g);
      pp->pc = NULL;
      pp->send_failed = 0;
    } else if (!pipe_inflight(pp)) {
      outcome = pass_settle(pc, g, outcome);
    } else {
      pc->tok_committed = g->token; /* committed, others sent behind it */
    }
    if (outcome == PASS_LOST) {
      pass_lost(db, g);
      conn_lost(db, pc, g);
      pp->pc = NULL;
    } else if (outcome == PASS_COMMITTED) {
      for (size_t i = 0; i < g->n; i++) {
        if (!g->final[i])
          g->writes |= ordo__storage_is_write(g->reqs[i]->opcode);
        g->final[i] = 1;
      }
    } else if (outcome == PASS_ABORTED && g->failed == SIZE_MAX) {
      g->one_by_one = 1; /* to learn which add of the run failed */
      reset_pending(g);
    } else if (outcome == PASS_ABORTED) {
      ordo_storage_req *r = g->reqs[g->failed];
      if (r->opcode == ORDO_STORAGE_BATCH && g->failed_sub != NULL)
        batch_failed(r, g->failed_sub, g->failed_sub->status);
      g->final[g->failed] = 1;
      reset_pending(g);
    } else if (outcome == PASS_FENCED) {
      /* Refused for good: another instance owns the store now. Neither
       * its writes nor its reads may go again. */
      fail_pending(g, ORDO_E_STORAGE_FENCED, g->err, 0);
    } else { /* PASS_COMMIT_FAILED: the writes are lost, reads go again
                (a group of reads only is not: BEGIN itself failed) */
      int any_write = 0;
      for (size_t i = 0; i < g->n; i++)
        any_write |= !g->final[i] && ordo__storage_is_write(g->reqs[i]->opcode);
      fail_pending(g, ORDO_E_STORAGE, g->err, any_write);
      reset_pending(g);
    }
  }
}

/* g is over: the chain's state after it, its dones, its memory. */
static void group_end(pg_db *db, pg_group *g) {
  if (g->writes)
    atomic_fetch_add_explicit(&db->commits, 1, memory_order_relaxed);
  for (size_t i = 0; i < g->n; i++) {
    ordo_storage_req *r = g->reqs[i];
    if (r->flags & ORDO_STORAGE_REQ_CHAIN_RESET)
      db->chain_failed = 0;
    if ((r->flags & ORDO_STORAGE_REQ_CHAINED) && r->status != ORDO_OK)
      db->chain_failed = 1;
  }
  free(g->slots);
  free(g->final);
  /* done may free or resubmit r: touch r no more after it. */
  for (size_t i = 0; i < g->n; i++) {
    g->reqs[i]->backend_next = NULL;
    g->reqs[i]->done(g->reqs[i]);
  }
  free(g->reqs);
  free(g);
}

/* The drain's group (list), and with group commit the groups that arrive
 * while it runs, pipelined behind it. */
void ordo__pg_run_group(pg_db *db, ordo_storage_req *list) {
  pg_pipe pp = {.db = db};
  if ((pp.g[0] = group_new(list)) == NULL)
    return;
  pp.n = 1;
  pp.taken = 1;
  pp.fill = db->q.group_commit && db->q.wake_fd >= 0;
  while (pp.n > 0) {
    group_run(db, &pp);
    /* Nothing in flight on it: back to the pool before the dones, which
     * may open or use another store of the pool. */
    if (!pipe_inflight(&pp) && pp.pc != NULL) {
      if (pp.pc != db->own)
        ordo__pg_pool_release(db->pool, pp.pc, 0);
      pp.pc = NULL;
    }
    pg_group *g = pp.g[0];
    memmove(pp.g, pp.g + 1, (pp.n - 1) * sizeof pp.g[0]);
    pp.n--;
    group_end(db, g);
  }
}

/*
 * queue.h — the submission queuer: which batches may go to the ledger now.
 *
 * Why: a ledger that applies the batches of one commit window in any order
 * keeps data integrity only if the client never has two conflicting batches
 * of a service in flight at once. This module decides, batch by batch, when
 * that is safe (docs/design.md, "The data path of a batch"). Here: the
 * in-memory scheduler, the workload-file parser and the `ordo plan` model,
 * the durable journal over them (ordo_journal_*), and the submitter that
 * drives a ledger port (ordo_submitter_*); the ledger client (src/ledger)
 * and the HTTP API (src/server) drive the same calls.
 *
 * Threads: none. An ordo_queue is a plain synchronous data structure; the
 * caller serialises every call on one queue (one thread, or its own lock).
 * Different queues are independent.
 *
 * Terms
 *   batch      id (unique in the queue), service, reads and writes (state
 *              addresses, any string; an address also stands for every
 *              address it is a prefix of), deps (ids of batches that must be
 *              COMMITTED first), an opaque payload, and a sequence number
 *              given at enqueue: submission order is the truth.
 *   conflict   two addresses at granularity g: cut both to g characters;
 *              they conflict if one is a prefix of the other. g < 0 is
 *              unlimited (lock by contents, the default); g = 0 makes every
 *              pair of batches conflict (same as the serial strategy).
 *   ready      every dep is COMMITTED, and no EARLIER unfinished batch of the
 *              same service (in flight, or itself still waiting) writes an
 *              address the batch reads or writes, or reads an address it
 *              writes. Read after read and disjoint addresses never conflict;
 *              batches of different services never block each other.
 *   cascade    a dep that ends INVALID makes its dependants INVALID without
 *              submitting them, transitively.
 *   missing    a dep id never enqueued: the batch WAITS until a batch with
 *              that id is enqueued and commits (a dep may therefore name a
 *              later batch; a cycle of such deps waits for ever, which
 *              ordo_queue_explain shows). The workload parser refuses deps
 *              that do not name an earlier line, so files cannot do this.
 *              A service's dep_timeout_ms (ordo_queue_set_policy) bounds
 *              the wait: ordo_queue_expire ends such a batch INVALID once
 *              its dep has not been enqueued that long after it was.
 *   cancel     a QUEUED or WAITING batch may be ended INVALID ("cancelled")
 *              by ordo_queue_cancel; its locks go and its dependants
 *              cascade, as for any INVALID. A SUBMITTED one may not.
 *
 * Batch states: QUEUED (ready, not yet taken), WAITING (on deps or on
 * earlier conflicting batches), SUBMITTED (taken, not finished), COMMITTED
 * and INVALID (finished; final).
 *
 * Errors are returned; those a caller can cause also set
 * ordo_last_error_message() with the detail (the id, the line, ...).
 */
#ifndef ORDO_QUEUE_H
#define ORDO_QUEUE_H

#include "ordo.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct ordo_queue ordo_queue;

typedef enum ordo_queue_strategy {
  ORDO_QUEUE_PARALLEL = 0,  /* the lock table (default) */
  ORDO_QUEUE_SERIAL,        /* one batch in flight per service: the Grid
                               baseline; every pair of a service conflicts */
  ORDO_QUEUE_UNCONSTRAINED  /* no locks at all, deps still honoured; only to
                               show what goes wrong */
} ordo_queue_strategy;

typedef enum ordo_queue_mode {
  ORDO_QUEUE_CONTINUOUS = 0, /* take whatever is ready whenever (default) */
  ORDO_QUEUE_ROUNDS          /* take nothing while any batch is in flight:
                                the Grid design literally */
} ordo_queue_mode;

typedef enum ordo_queue_on_invalid {
  ORDO_QUEUE_SKIP = 0, /* release its locks and go on (default) */
  ORDO_QUEUE_HALT      /* stop taking the service's batches until
                          ordo_queue_resume */
} ordo_queue_on_invalid;

typedef enum ordo_queue_state {
  ORDO_QUEUE_QUEUED = 0,
  ORDO_QUEUE_WAITING,
  ORDO_QUEUE_SUBMITTED,
  ORDO_QUEUE_COMMITTED,
  ORDO_QUEUE_INVALID,
  ORDO_QUEUE_UNKNOWN /* never set by the scheduler: the journal reports it for
                        a batch that was SUBMITTED before a restart and whose
                        fate the ledger has not told yet */
} ordo_queue_state;

/* Start from ordo_queue_options_init(). */
typedef struct ordo_queue_options {
  ordo_queue_strategy strategy;
  ordo_queue_mode mode;
  int granularity;              /* < 0 unlimited (default), 0 all conflict */
  unsigned max_in_flight;       /* global cap; 0 = unlimited (default) */
  unsigned service_max_in_flight; /* per-service cap; 0 = unlimited (default) */
  int keep_payloads; /* 1: a finished batch keeps its payload (ordo verify
                        replays them); 0 (default): released when it
                        finishes, since a long-running queue would else
                        hold every payload it ever took */
  /* Hooks for an owner that drops finished batches from memory
   * (ordo_queue_forget) and keeps their record elsewhere: the journal.
   * Each is called inside the queue call that needs it, with the queue's
   * caller's lock held; none may call into the queue. All NULL by
   * default. */
  /* The state of a forgotten batch: ORDO_QUEUE_COMMITTED or
   * ORDO_QUEUE_INVALID, or ORDO_QUEUE_QUEUED (0) for an id it does not
   * know. Asked for an id the queue does not have: a dep (committed: met;
   * invalid: the batch is INVALID at once) and a new batch's id (known:
   * ORDO_E_EXISTS). */
  ordo_queue_state (*forgotten_state)(void *ud, const char *id);
  /* 1 when a forgotten batch had this ledger id (a new batch with it is
   * refused), else 0. */
  int (*forgotten_ledger_id)(void *ud, const char *ledger_id);
  /* Every batch that finishes, as it does: by a verdict, a cancel, an
   * expiry, or a cascade (which no caller names). id and reason are
   * queue-owned, valid while the batch is in memory. */
  void (*on_finish)(void *ud, const char *id, ordo_queue_state outcome,
                    const char *reason);
  void *hook_ud;
} ordo_queue_options;

/* The longest address a batch may name (a Sawtooth address is 70). */
#define ORDO_QUEUE_MAX_ADDRESS (1u << 20)

/* What to enqueue. Everything is copied; the caller keeps ownership. reads
 * and writes may repeat and overlap (a batch of several transactions passes
 * the union); payload may be NULL when payload_len is 0. */
typedef struct ordo_queue_batch_spec {
  const char *id;
  const char *service;
  const char *const *reads;
  size_t nreads;
  const char *const *writes;
  size_t nwrites;
  const char *const *deps;
  size_t ndeps;
  const void *payload;
  size_t payload_len;
  uint64_t seq; /* 0: the next number; else a number after every earlier
                   one (the journal's replay passes the journaled seq) */
  int held;     /* 1: never taken until ordo_queue_release(id), though it
                   holds its locks from now on (the journal holds a batch
                   until its record is durable) */
  uint64_t time_ms; /* when it was enqueued (Unix ms), kept for status; 0:
                       unknown. The scheduler itself has no clock. */
  const char *ledger_id; /* NULL, or the batch's id on the ledger (Sawtooth:
                            its header_signature). Unique: a second batch
                            with a ledger id the queue has (queued or
                            finished) is refused, so one signed batch is
                            never queued twice under two ids. */
  const unsigned char *digest; /* NULL, or ORDO_QUEUE_DIGEST_BYTES bytes
                            naming the batch's content (the journal's hash
                            of service, addresses, deps, ledger id and
                            payload), kept for ordo_queue_batch_digest so
                            that a batch enqueued again can be told to be
                            the same one (the payload itself is not kept
                            once a batch finishes). Costs nothing when
                            NULL. */
} ordo_queue_batch_spec;

#define ORDO_QUEUE_DIGEST_BYTES 32

/* A batch handed out by ordo_queue_take. The pointers are owned by the queue
 * and stay valid until ordo_queue_free or until ordo_queue_forget drops the
 * batch (finished batches are otherwise kept for their status), except
 * payload: until the batch finishes, unless the queue was made with
 * keep_payloads (then a finished batch's payload stays too; else it reads
 * as NULL, 0). */
typedef struct ordo_queue_item {
  const char *id;
  const char *service;
  uint64_t seq;
  const void *payload;
  size_t payload_len;
  const char *ledger_id; /* the spec's, or NULL; owned like id */
} ordo_queue_item;

typedef struct ordo_queue_service_info {
  size_t queued;      /* ready, not taken (held back by caps or a halt) */
  size_t waiting;     /* on deps or earlier conflicting batches */
  size_t depth;       /* queued + waiting */
  size_t in_flight;   /* SUBMITTED */
  size_t committed;
  size_t invalid;
  int halted;
  const char *halt_batch;  /* the batch that halted it, or NULL; queue-owned, */
  const char *halt_reason; /* valid until the next call on the queue */
  const char *halt_note;   /* halted by the operator (ordo_queue_halt): the
                              reason as given ("" for none); else NULL.
                              Owned like halt_reason */
} ordo_queue_service_info;

typedef struct ordo_queue_totals {
  size_t queued, waiting, in_flight, committed, invalid, services;
  size_t memory_bytes; /* the pool's chunks and the id tables: what the
                          queue holds, finished batches' records included
                          (payloads apart, which are malloc'd) */
} ordo_queue_totals;

void ordo_queue_options_init(ordo_queue_options *opt);

/* Strategy and mode by name ("parallel", "serial", "unconstrained";
 * "continuous", "rounds"), as the CLI, the JSON API and the server's
 * config spell them. ORDO_OK, or ORDO_E_INVAL (*out untouched). */
int ordo_queue_strategy_parse(const char *name, ordo_queue_strategy *out);
int ordo_queue_mode_parse(const char *name, ordo_queue_mode *out);

/* A new, empty queue (opt NULL: the defaults). *out is the caller's; free it
 * with ordo_queue_free. ORDO_E_INVAL on a bad option, ORDO_E_NOMEM. */
int ordo_queue_new(const ordo_queue_options *opt, ordo_queue **out);

/* Free q and every batch in it (NULL is accepted). Item pointers from
 * ordo_queue_take die with it. */
void ordo_queue_free(ordo_queue *q);

/*
 * Add a batch at the end of the submission order; *seq (if not NULL) gets
 * its sequence number (1, 2, ... for the queue's life). The batch is QUEUED
 * if ready at once, WAITING otherwise, or INVALID at once if a dep is
 * already INVALID. ORDO_E_EXISTS for an id already enqueued, or a ledger id
 * the queue has (queued or finished: "ledger batch 3f2a…(16 hex) is already
 * queued as T1"); ORDO_E_INVAL for a NULL or empty id or service, an empty
 * ledger id, a NULL address, or a dep on itself; ORDO_E_NOMEM (the queue is
 * then unchanged). A batch without a ledger id costs nothing more.
 * Cost: O(addresses x address length + conflicting unfinished batches).
 */
int ordo_queue_enqueue(ordo_queue *q, const ordo_queue_batch_spec *spec,
                       uint64_t *seq);

/*
 * The batches to submit now: up to max of them, round-robin across services
 * that have ready batches (so a deep service never starves a light one),
 * within the global and per-service in-flight caps, skipping halted
 * services. They become SUBMITTED; out[0..*n) is in submission order. In
 * rounds mode nothing is taken while any batch is in flight, so one call
 * with a max at least the queue's size takes the whole round.
 */
int ordo_queue_take(ordo_queue *q, ordo_queue_item *out, size_t max,
                    size_t *n);

/*
 * The ledger's verdict on a SUBMITTED batch: ORDO_QUEUE_COMMITTED or
 * ORDO_QUEUE_INVALID (reason copied; may be NULL). Releases its locks, wakes
 * the batches that waited on it, and on INVALID invalidates its dependants
 * (cascade) and applies the service's on_invalid policy.
 * ORDO_E_NOT_FOUND for an unknown id, ORDO_E_STATE if it is not SUBMITTED,
 * ORDO_E_INVAL for another outcome.
 */
int ordo_queue_finish(ordo_queue *q, const char *id, ordo_queue_state outcome,
                      const char *reason);

/* One verdict for ordo_queue_finish_many. */
typedef struct ordo_queue_verdict {
  const char *id;
  ordo_queue_state outcome; /* ORDO_QUEUE_COMMITTED or ORDO_QUEUE_INVALID */
  const char *reason;       /* INVALID: why (copied; NULL: "invalid") */
} ordo_queue_verdict;

/*
 * v[0..n) applied in order, exactly as n calls of ordo_queue_finish, but
 * faster when n is large: while it finishes one batch it loads the ones a
 * few verdicts ahead (at 100k queued, a single finish is a chain of cache
 * misses: the id's slot, the batch, its holders, their nodes). Stops at the
 * first verdict that fails, with that call's error; *done (may be NULL) is
 * the number applied before it.
 */
int ordo_queue_finish_many(ordo_queue *q, const ordo_queue_verdict *v,
                           size_t n, size_t *done);

/*
 * Enqueue specs[0..n) in order, all or nothing: every spec is checked
 * first (each as ordo_queue_enqueue checks it, and no two with one id or
 * one ledger id), so a refusal leaves the queue as it was and *bad (may be
 * NULL) is the index of the spec refused, with its error (ORDO_E_INVAL,
 * ORDO_E_EXISTS: "batch id 'X' repeats item 2", "ledger batch … is already
 * queued as T1"). seqs (may be NULL) gets each one's seq. Only
 * ORDO_E_NOMEM can stop it part-way: then specs[0..*bad) were enqueued
 * (the journal, which enqueues them held, then fails itself so that none
 * of them is ever taken or journaled).
 */
int ordo_queue_enqueue_many(ordo_queue *q, const ordo_queue_batch_spec *specs,
                            size_t n, uint64_t *seqs, size_t *bad);

/*
 * End a QUEUED or WAITING batch INVALID with reason (copied; NULL:
 * "cancelled") without submitting it: its locks are released and its
 * dependants cascade, as for any INVALID; the service's on_invalid halt
 * does not apply (a cancel is the operator's choice, not a ledger's
 * verdict). ORDO_E_NOT_FOUND for an id never enqueued; ORDO_E_STATE for a
 * SUBMITTED batch ("the ledger has it and its verdict will come") or a
 * finished one ("already COMMITTED").
 */
int ordo_queue_cancel(ordo_queue *q, const char *id, const char *reason);

/*
 * Dep timeouts. A batch enqueued with a time_ms while one of its deps was
 * not enqueued waits on its service's timeout heap (ordered by enqueue
 * time, so by deadline). ordo_queue_expire ends INVALID every such batch
 * whose service has a dep_timeout_ms, that is still WAITING, still has a
 * dep never enqueued, and was enqueued at least dep_timeout_ms before
 * now_ms (Unix ms; the caller's clock: the scheduler has none), with the
 * reason "dep T9 was not enqueued within 30 s"; dependants cascade and
 * on_invalid applies as for any INVALID. out[0..*n) (at most max) get the
 * batches it ended (queue-owned id and reason; cascaded dependants are not
 * listed). Cost: O(expired + entries that turned out dead + services with
 * a timeout), never a scan of the queue. ORDO_E_NOMEM (then *n were
 * ended, the rest stay due).
 */
int ordo_queue_expire(ordo_queue *q, uint64_t now_ms, ordo_queue_verdict *out,
                      size_t max, size_t *n);

/* 1 and *when_ms (may be NULL) the earliest deadline on the timeout heaps
 * of services with a timeout (it may turn out to be a dead entry), or 0
 * when there is none. */
int ordo_queue_next_expiry(const ordo_queue *q, uint64_t *when_ms);

/* The expiry of one batch as ordo_queue_expire ended it (reason copied),
 * for the journal's replay: the same errors as ordo_queue_cancel, but
 * on_invalid applies. */
int ordo_queue_expire_id(ordo_queue *q, const char *id, const char *reason);

/*
 * Drop finished batches from memory: their id, status and ledger id are
 * gone from the queue (the owner keeps them: see the forgotten_* hooks,
 * which the queue asks from then on), and so are item pointers to them.
 * Counters (committed, invalid, per service) stay. A batch is kept, and
 * kept[i] (kept may be NULL) set to 1, while it cannot go yet: not
 * finished, named in an unfinished batch's waiters or dependants (a batch
 * cancelled, expired or cascaded while earlier ones still run), or the
 * batch that halted its service. Unknown ids are skipped (kept[i] 0).
 * *forgotten (may be NULL) gets how many went. Cost: O(n + the ready and
 * timeout heaps of services whose forgotten batches had entries there).
 * Then the id tables shrink when they are mostly empty, and pool chunks
 * that hold no batch any more go back to malloc.
 */
void ordo_queue_forget(ordo_queue *q, const char *const *ids, size_t n,
                       unsigned char *kept, size_t *forgotten);

/* ---- checkpoints: what a queue is, as replay can rebuild it ------------ */

/* A batch as ordo_queue_snapshot shows it (every pointer queue-owned or
 * the snapshot's, valid during the callback only). Its addresses are its
 * footprint: each distinct address once (cut to the queue's granularity),
 * written or only read; enqueued again as reads and writes they hold the
 * same locks. */
typedef struct ordo_queue_saved {
  const char *id, *service, *ledger_id; /* ledger_id may be NULL */
  uint64_t seq, time_ms;
  uint64_t finish_ms;     /* a finished one's (ordo_queue_set_finish_time) */
  ordo_queue_state state; /* QUEUED, WAITING, SUBMITTED; or COMMITTED /
                             INVALID for a finished batch asked for */
  const char *reason;     /* INVALID, else NULL */
  int halts;              /* it is the batch that halted its service */
  int held;
  const char *const *deps;
  size_t ndeps;
  const char *const *addrs; /* not NUL-terminated: lens */
  const uint32_t *lens;
  const unsigned char *writes; /* 1: written, 0: only read */
  size_t naddrs;
  const void *payload; /* NULL once finished, unless keep_payloads */
  size_t payload_len;
  const unsigned char *digest; /* ORDO_QUEUE_DIGEST_BYTES, or NULL */
} ordo_queue_saved;

/*
 * fn(batch, ud) for every batch in memory (unfinished ones, and finished
 * ones not forgotten yet), in seq order. Stops at fn's first non-zero
 * result and returns it; ORDO_E_NOMEM. Changes nothing.
 */
int ordo_queue_snapshot(const ordo_queue *q,
                        int (*fn)(const ordo_queue_saved *b, void *ud),
                        void *ud);

/* Put a finished batch back as a snapshot showed it: in memory, holding
 * no lock, with its state and reason (copied), halting its service when
 * halts; counters untouched (ordo_queue_add_counts). ORDO_E_EXISTS,
 * ORDO_E_INVAL (a state that is not COMMITTED or INVALID), ORDO_E_NOMEM. */
int ordo_queue_enqueue_finished(ordo_queue *q, const ordo_queue_batch_spec *sp,
                                ordo_queue_state state, const char *reason,
                                int halts);

/* Halt the service of a finished INVALID batch, by it (as its finish
 * did under a halt policy): a checkpoint's replay sets halts last, after
 * the batches taken before them. ORDO_E_NOT_FOUND, ORDO_E_STATE. */
int ordo_queue_halt_by(ordo_queue *q, const char *id);

/*
 * Drop the services that have nothing in memory (no batch, unfinished or
 * finished and not yet forgotten), the default policy, no halt, and whose
 * last enqueue (time_ms, or ordo_queue_service_touch) is before before_ms:
 * a queue that has seen a million services over months keeps the active
 * ones. Their counters go with them (the queue's totals stay); the next
 * batch of one makes it anew. Returns how many went. O(services).
 */
size_t ordo_queue_drop_idle_services(ordo_queue *q, uint64_t before_ms);

/* Set a service's last activity to ms if later (a checkpoint's replay);
 * and read it (0: none, or no such service). */
void ordo_queue_service_touch(ordo_queue *q, const char *service,
                              uint64_t ms);
uint64_t ordo_queue_service_last(const ordo_queue *q, const char *service);

/* Add to a service's committed and invalid counters (and the queue's):
 * what a checkpoint kept of batches no longer in it. The service is made
 * if it is new. */
int ordo_queue_add_counts(ordo_queue *q, const char *service,
                          size_t committed, size_t invalid);

/* Let the next seq be at least seq (a checkpoint's: its last batches may
 * have finished and gone). */
void ordo_queue_set_next_seq(ordo_queue *q, uint64_t seq);

/* The seq the next batch enqueued with seq 0 gets (the journal writes a
 * request's records, seqs in them, before the queue takes the batches). */
uint64_t ordo_queue_next_seq(const ordo_queue *q);

/* *digest gets the batch's content digest (queue-owned,
 * ORDO_QUEUE_DIGEST_BYTES bytes, valid until ordo_queue_free or until
 * ordo_queue_forget drops the batch), or NULL if it was enqueued without
 * one. ORDO_E_NOT_FOUND. */
int ordo_queue_batch_digest(const ordo_queue *q, const char *id,
                            const unsigned char **digest);

/* Let a batch enqueued with held = 1 be taken. ORDO_E_NOT_FOUND,
 * ORDO_E_STATE if it is not held. */
int ordo_queue_release(ordo_queue *q, const char *id);

/*
 * Take one particular batch: it must be QUEUED (ready) and not held, and
 * its service not halted (else ORDO_E_STATE); caps and rounds are not
 * applied. For the journal's replay, which repeats the takes it recorded.
 * out (may be NULL) is filled as by ordo_queue_take.
 */
int ordo_queue_take_id(ordo_queue *q, const char *id, ordo_queue_item *out);

/* The state of a batch and, for INVALID, why (queue-owned, valid until
 * ordo_queue_free; NULL otherwise). reason may be NULL.
 * ORDO_E_NOT_FOUND if id was never enqueued. */
int ordo_queue_batch_status(const ordo_queue *q, const char *id,
                            ordo_queue_state *state, const char **reason);

/* When a batch was enqueued and finished (Unix ms; 0 unknown or not yet).
 * The finish time is the caller's to record (ordo_queue_set_finish_time). */
int ordo_queue_batch_times(const ordo_queue *q, const char *id,
                           uint64_t *enqueued_ms, uint64_t *finished_ms);
int ordo_queue_set_finish_time(ordo_queue *q, const char *id, uint64_t ms);

/* A batch as ordo_queue_take hands it out. ORDO_E_NOT_FOUND. */
int ordo_queue_item_get(const ordo_queue *q, const char *id,
                        ordo_queue_item *out);

/* The id of the batch enqueued with ledger_id (queue-owned, valid until
 * ordo_queue_free), queued or finished. ORDO_E_NOT_FOUND (no message set:
 * a miss is the usual answer), ORDO_E_INVAL for NULL arguments. */
int ordo_queue_ledger_find(const ordo_queue *q, const char *ledger_id,
                           const char **id);

/* A batch's sequence number and service (queue-owned). ORDO_E_NOT_FOUND. */
int ordo_queue_batch_seq(const ordo_queue *q, const char *id, uint64_t *seq);
int ordo_queue_batch_service(const ordo_queue *q, const char *id,
                             const char **service);

/* Counters of one service. ORDO_E_NOT_FOUND if the queue never saw it. */
int ordo_queue_service_status(const ordo_queue *q, const char *service,
                              ordo_queue_service_info *info);

/* The names of the first max services in the order the queue first saw
 * them (queue-owned, valid until ordo_queue_free or until
 * ordo_queue_drop_idle_services drops the service); returns how many it
 * has in all. */
size_t ordo_queue_service_names(const ordo_queue *q, const char **out,
                                size_t max);

void ordo_queue_get_totals(const ordo_queue *q, ordo_queue_totals *t);

/*
 * Why a batch is where it is, as malloc'd text (the caller frees it), e.g.
 * "T4 waits on A (T3 writes), B (T1, T3 read)". NULL with ordo_last_error
 * set on ORDO_E_NOT_FOUND / ORDO_E_NOMEM.
 */
char *ordo_queue_explain(const ordo_queue *q, const char *id);

/* One batch holding an address (or, serial, the service) that a waiting
 * batch needs: id is malloc'd and owned by the blocker that lists it. */
typedef struct ordo_queue_holder {
  char *id;
  int write; /* it writes the address (1) or reads it (0) */
} ordo_queue_holder;

/* One thing a WAITING batch waits on, in the order explain names them:
 * deps first, then the serial strategy's first batch, then addresses. */
typedef struct ordo_queue_blocker {
  const char *kind;  /* "dep", "serial" or "address" (static strings) */
  char *what;        /* the dep's id, the serial strategy's first
                        unfinished batch, or the address/prefix */
  const char *state; /* dep: its state name or "never enqueued" (static);
                        else NULL */
  int write;         /* address: this batch writes it (1) or reads it (0) */
  /* address: the earlier conflicting holders, writers first (at most 64
   * writers, then at most 64 readers: what explain lists); serial: the
   * first batch. NULL, 0 for a dep. */
  ordo_queue_holder *holders;
  size_t nholders;
  size_t more;    /* address: holders past the ones listed */
  size_t earlier; /* serial: unfinished batches before this one in the
                     service (the first included) */
} ordo_queue_blocker;

/*
 * What a WAITING batch waits on, as ordo_queue_explain says it (explain
 * formats its text from this). *out and every string in it are malloc'd
 * and the caller's (ordo_queue_blockers_free). A batch not WAITING:
 * ORDO_OK with *out NULL and *n 0. ORDO_E_NOT_FOUND, ORDO_E_NOMEM (then
 * *out NULL, *n 0); ORDO_E_INVAL for NULL arguments.
 */
int ordo_queue_blockers(const ordo_queue *q, const char *id,
                        ordo_queue_blocker **out, size_t *n);
/* Free v[0..n) and what it owns; NULL is fine. */
void ordo_queue_blockers_free(ordo_queue_blocker *v, size_t n);

/* Per-service policy. A service not seen yet is created. max_in_flight 0
 * means the queue's service_max_in_flight; dep_timeout_ms 0 means no dep
 * timeout (see ordo_queue_expire; it applies to batches already waiting
 * too). */
int ordo_queue_set_policy(ordo_queue *q, const char *service,
                          ordo_queue_on_invalid on_invalid,
                          unsigned max_in_flight, uint64_t dep_timeout_ms);

typedef struct ordo_queue_service_policy {
  ordo_queue_on_invalid on_invalid;
  unsigned max_in_flight;
  uint64_t dep_timeout_ms;
} ordo_queue_service_policy;

/* A service's policy. ORDO_E_NOT_FOUND if the queue never saw it. */
int ordo_queue_get_policy(const ordo_queue *q, const char *service,
                          ordo_queue_service_policy *out);

/* Let a halted service be taken from again. ORDO_E_NOT_FOUND for an unknown
 * service, ORDO_E_STATE if it is not halted. */
int ordo_queue_resume(ordo_queue *q, const char *service);

/* Halt a service by hand: take gives it nothing until ordo_queue_resume.
 * reason (copied; NULL or "" for none) is shown as the halt's cause:
 * ordo_queue_service_status's halt_reason is "halted by the operator:
 * <reason>" (or "halted by the operator") and halt_batch NULL.
 * ORDO_E_NOT_FOUND unknown service, ORDO_E_STATE already halted (by the
 * operator or by a batch), ORDO_E_INVAL, ORDO_E_NOMEM. */
int ordo_queue_halt(ordo_queue *q, const char *service, const char *reason);

const char *ordo_queue_state_name(ordo_queue_state s);

/* ------------------------------------------------------------------------ */
/* The durable journal (journal.c)                                           */
/* ------------------------------------------------------------------------ */

/*
 * A queue whose every change is journaled through the storage interface
 * (SQLite by default: WAL, synchronous=FULL, group commit on the database's
 * own storage thread), so that a restart loses nothing that was
 * acknowledged.
 *
 * The journal is an event log, one record per event in the order the events
 * happened: "enq" (the whole batch, its ledger id if any, and its seq;
 * records without "ledger_id", as older journals have them, replay as
 * batches without one; the batches of one ordo_journal_enqueue_many are
 * consecutive records written in one transaction), "sub" (the ids one
 * take handed out), "fin" (a verdict; with "expired":true a dep timeout
 * of a WAITING batch), "cancel" (ordo_journal_cancel), "cascade" (a batch
 * the queue ended because a dep of it failed, which no other record names),
 * "resume" (a halted service resumed), "halt" (a service halted by the
 * operator, with its "reason"), "policy" (a service's policy
 * changed). Finishing records (fin, cancel, cascade) and enq records carry
 * the batch id as a tag, and finishing ones name the ledger id; checkpoints
 * (records "ck") and the forgotten-id segments ("ckid") are described in
 * journal.c.
 * Reopening replays it through the same scheduler calls, so the restored
 * queue is exactly the one that was journaled: order, deps, locks, states,
 * halts. Why a log and not a table of states: replaying the calls cannot
 * restore a state the scheduler could not have reached.
 *
 * Order of effects (what makes it crash-safe):
 *   - enqueue: the batch enters the scheduler at once (it takes its place
 *     in the order and holds its locks, so later batches wait for it) but
 *     is held: never taken before its record is durable. The op completes
 *     after that, so an acknowledged batch is on disk.
 *   - take: the batches are SUBMITTED in memory at once and a "sub" record
 *     is written; the caller must send them to the ledger only after the
 *     take's op completes (the record is durable). A crash before that
 *     leaves them QUEUED on disk, never sent: no batch is sent that the
 *     journal could forget.
 *   - finish, resume: applied at once, journaled behind. A crash before the
 *     record is durable leaves the batch SUBMITTED on disk, so it is asked
 *     about again: safe.
 *   - after a reopen, batches journaled SUBMITTED without a verdict are
 *     UNKNOWN: ordo_journal_take hands out nothing new until each of them is
 *     settled with ordo_journal_finish (the ledger knows it) or
 *     ordo_journal_confirm_submitted (it was resubmitted).
 *
 * A write that fails (disk full, IO error) fails the journal: the ops that
 * wrote it end with ORDO_E_STORAGE, and every later call that would change
 * the queue returns ORDO_E_STORAGE with the first failure's message.
 * Reopening resumes from what is on disk.
 *
 * Threads: every call may come from any thread; one mutex serialises them
 * (never held while user code or a callback runs). open and close block
 * (file IO, replay) and refuse runtime threads with ORDO_E_WOULD_DEADLOCK.
 * Processes: one at a time. open takes an exclusive flock on PATH.lock and
 * a second open (in this process or another) fails with
 * ORDO_E_STORAGE_BUSY; the kernel drops the lock when its holder exits or
 * is killed, so a crash never leaves it behind.
 *
 * Bounded by what is unfinished and retained, not by history: finished
 * batches leave memory once their records are durable (read back by id
 * from then on), a checkpoint lets a reopen skip the log before it and
 * prunes what nothing reads any more, and retention deletes the records of
 * batches finished long (or many batches) ago. See "Forgetting",
 * "Checkpoints" and "retention" in journal.c.
 */
/* ordo_journal is declared in ordo.h (the public JSON API over it). */

typedef struct ordo_journal_options {
  ordo_queue_options queue; /* the scheduler's options; strategy and
                               granularity are the journal's own, fixed at
                               create (a replay must lock as the run did):
                               on a later open they are read from the file
                               and these two are ignored */
  const char *backend;      /* storage backend name; NULL: "sqlite" */
  int create;               /* 1: create the file when it does not exist */
  int no_group_commit;      /* 1: one transaction per record (benchmarks) */
  /* Checkpoints (see "Checkpoints" in journal.c): one is written once
   * this many records were journaled since the last (0: 100,000), or once
   * this many ms passed with any record since (0: 300,000, five minutes),
   * and at a clean close; a reopen reads the last checkpoint and the
   * records after it. Negative: never (tests of the log itself). */
  long long checkpoint_records;
  long long checkpoint_ms;
  /* Retention of finished batches (see "retention" in journal.c): their
   * records, status and ids are kept until more than retention_count have
   * finished since (0: 5,000,000) or they finished retention_ms ago (0: 7
   * days); then they are deleted and their ids free again. */
  long long retention_count;
  long long retention_ms;
  /* A service with nothing in memory, the default policy and no enqueue
   * for this long leaves memory, its counters with it (0: one hour). */
  long long service_idle_ms;
  /* (added for clusters, src/cluster) PostgreSQL only. 0: the journal is
   * its process's alone (an advisory lock held while open). Else it is
   * shared by the instances of a cluster, one at a time under a lease
   * named after its store, and every transaction it runs is fenced at
   * this epoch of the lease (ordo__storage_postgres_fence): once another
   * instance holds the lease, its writes fail and the journal fails. */
  unsigned long long fence_epoch;
} ordo_journal_options;

void ordo_journal_options_init(ordo_journal_options *opt);

/*
 * Open (or, with create, make) the journal at path and replay it. On
 * success *out is the caller's (ordo_journal_close). ORDO_E_NOT_FOUND
 * without create for a missing file, ORDO_E_STORAGE for a file that is not
 * a journal or cannot be read, ORDO_E_QUEUE for a record the replay cannot
 * apply (the message names the event number), ORDO_E_WOULD_DEADLOCK on a
 * runtime thread. ordo_last_error_message() says why.
 */
int ordo_journal_open(ordo_ctx *ctx, const char *path,
                      const ordo_journal_options *opt, ordo_journal **out);

/* Wait until every record written is durable, close the file and free j
 * (NULL accepted). Ops that are still pending complete first. Returns the
 * journal's failure, if any, else ORDO_OK. Not on a runtime thread. */
int ordo_journal_close(ordo_journal *j);

/*
 * Enqueue a batch (copied). The op completes when its record is durable,
 * with result {"id":…,"seq":N}; or at once with ORDO_E_EXISTS (an id
 * already enqueued with other content, or a ledger id the queue has: the
 * message names the batch that has it), ORDO_E_INVAL (bad spec),
 * ORDO_E_STORAGE (the journal failed), or ORDO_E_BUSY (the runtime refused
 * the op; nothing was enqueued). The same batch again (same id, and the
 * same service, reads, writes, deps, ledger id and payload: a client's
 * retry) is no error: the op completes once that batch is durable, with
 * {"id","seq","already_enqueued":true,"state":…} and nothing new journaled.
 * Content is compared by a digest (BLAKE2b-256) kept per batch, computed
 * again from the record on replay. spec->seq, held, time_ms and digest are
 * the journal's. The caller releases the op.
 */
ordo_op *ordo_journal_enqueue(ordo_journal *j, const ordo_queue_batch_spec *spec);

/*
 * Enqueue specs[0..n) atomically: their records go to storage as one
 * request (one transaction), so after a crash either all of the new ones
 * are on disk or none is; in memory, every spec is checked before any is
 * added. Each spec as ordo_journal_enqueue: a batch there already with the
 * same content is reported, not added again; one with other content fails
 * the whole call (ORDO_E_EXISTS) and nothing is enqueued. The op completes
 * when every new record (and every batch found there already) is durable,
 * with {"batches":[{"id","seq"} | {"id","seq","already_enqueued":true,
 * "state"},…]} in request order, or fails as a whole. *bad (may be NULL)
 * is set at once: the index of the spec that was refused (the op's message
 * says why: "batch id 'X' repeats item 0", "batch 'X' is already enqueued
 * with other content …", "ledger batch … is already queued as T1"), or
 * (size_t)-1 when none was (a write failure fails the whole request).
 */
ordo_op *ordo_journal_enqueue_many(ordo_journal *j,
                                   const ordo_queue_batch_spec *specs,
                                   size_t n, size_t *bad);

/* The digest by which the journal tells "the same batch again" from
 * "another batch under that id" (BLAKE2b-256 over service, reads, writes,
 * deps, ledger id and payload): for a front end that must answer so before
 * the journal sees the batch (src/cluster). */
void ordo_journal_content_digest(const ordo_queue_batch_spec *spec,
                                 unsigned char out[ORDO_QUEUE_DIGEST_BYTES]);

/* What an enqueue made of one spec, known when the call returns. */
typedef struct ordo_journal_enqueued {
  uint64_t seq;           /* its place in submission order */
  int already;            /* 1: there already with the same content */
  ordo_queue_state state; /* already: its state then; else QUEUED */
} ordo_journal_enqueued;

/*
 * ordo_journal_enqueue_many for a caller that wants no JSON: out[i] is
 * spec i's answer, set before the call returns (its seq is known at
 * enqueue), and the op's result is "{}": it only says when the batches are
 * durable, or that they failed (then out means nothing). out is set only
 * when the op did not fail at once (admission, a refused spec).
 */
ordo_op *ordo_journal_enqueue_typed(ordo_journal *j,
                                    const ordo_queue_batch_spec *specs,
                                    size_t n, ordo_journal_enqueued *out,
                                    size_t *bad);

/*
 * Dep timeouts, by the caller's clock: end INVALID every batch whose
 * service has a dep_timeout_ms and whose dep was not enqueued within it
 * (ordo_queue_expire), each journaled as a "fin" INVALID record (with
 * "expired":true) and replayed as such. now_ms 0: the wall clock.
 * *expired (may be NULL) gets how many were ended (their cascaded
 * dependants not counted). ordo_journal_take does this itself by the wall
 * clock, so a submitter's loop needs no call; a journal with no submitter
 * (or one that has not yet reached the ledger) needs one now and then.
 * ORDO_E_STORAGE when the journal failed.
 */
int ordo_journal_expire(ordo_journal *j, uint64_t now_ms, size_t *expired);

/*
 * The batches to submit now, as ordo_queue_take (round-robin, caps, rounds
 * mode), but nothing while any batch is UNKNOWN. *durable (when *n > 0) is
 * an op that completes when the take is journaled: send the batches only
 * after it completed with ORDO_OK; the caller releases it. The item
 * pointers stay valid until the next ordo_journal_take: a finished batch
 * leaves memory at a take once its records are durable (copy what you keep,
 * or read an item safely from another thread with ordo_journal_item_with).
 */
int ordo_journal_take(ordo_journal *j, ordo_queue_item *out, size_t max,
                      size_t *n, ordo_op **durable);

/*
 * Take ahead, for the one caller of ordo_journal_take (a submitter): once a
 * take has found nothing, the next enqueue that makes batches ready takes
 * them itself, with its "sub" record in the enqueue's own transaction, and
 * the next ordo_journal_take hands them out (their durable op completes
 * with the enqueue's write). An idle submitter's batch then waits for one
 * fsync on its way to the ledger instead of two in a row (the enqueue's,
 * then the take's), and nothing is sent before its take is durable, as
 * before. max: the most one enqueue takes; a take asking for fewer than
 * were taken ahead is ORDO_E_INVAL. 0 turns it off (the default).
 * ready (may be NULL) is called with ud when batches taken ahead are
 * durable, on the storage thread with the journal's lock held: it may only
 * wake the taker (ordo_submitter_wake), which then need not wait for the
 * enqueuer to do it.
 */
int ordo_journal_set_take_ahead(ordo_journal *j, size_t max,
                                void (*ready)(void *ud), void *ud);

/* The ledger's verdict (as ordo_queue_finish), journaled. Also settles an
 * UNKNOWN batch. */
int ordo_journal_finish(ordo_journal *j, const char *id,
                        ordo_queue_state outcome, const char *reason);

/* v[0..n) as n calls of ordo_journal_finish, under one lock and through
 * ordo_queue_finish_many (which loads a few batches ahead): the verdicts
 * of one statuses answer. Stops at the first that fails, with its error;
 * *done (may be NULL) gets the number applied before it. */
int ordo_journal_finish_many(ordo_journal *j, const ordo_queue_verdict *v,
                             size_t n, size_t *done);

/* An UNKNOWN batch was sent to the ledger again: it is SUBMITTED from now
 * on. ORDO_E_STATE if it is not UNKNOWN. */
int ordo_journal_confirm_submitted(ordo_journal *j, const char *id);

/* The batch as ordo_journal_take handed it out, for sending it again:
 * queue-owned pointers, valid while the batch is unfinished, and after it
 * finishes until the next ordo_journal_take (which may drop finished
 * batches from memory: see "Forgetting" in journal.c) or
 * ordo_journal_close; the payload only until it finishes, unless
 * opt.queue.keep_payloads (then nothing is ever dropped). For the
 * submitter, which is the one caller of take; another thread uses
 * ordo_journal_item_with. ORDO_E_NOT_FOUND (also for a batch dropped). */
int ordo_journal_item(ordo_journal *j, const char *id, ordo_queue_item *out);

/* Give back the memory the journal's database keeps between requests
 * (its page cache and write buffer): for a caller that has gone idle
 * (ordo serve, before malloc_trim). Blocks until the storage has done it;
 * ORDO_E_WOULD_DEADLOCK on a runtime thread. */
int ordo_journal_shrink(ordo_journal *j);

/* A copy of a batch's payload (malloc'd, *payload the caller's to free;
 * NULL and 0 for an empty one), from memory or, for a batch that
 * finished, from its enq record: what ordo verify replays.
 * ORDO_E_NOT_FOUND for an id the journal has no record of;
 * ORDO_E_WOULD_DEADLOCK on a runtime thread (it may read the disk). */
int ordo_journal_payload(ordo_journal *j, const char *id,
                         unsigned char **payload, size_t *len);

/* fn(item, ud) with the batch's item, under the journal's lock (fn must
 * not call the journal), so that the pointers stay valid while fn reads
 * them; returns fn's result, or ORDO_E_NOT_FOUND. */
int ordo_journal_item_with(ordo_journal *j, const char *id,
                           int (*fn)(const ordo_queue_item *it, void *ud),
                           void *ud);

/* The UNKNOWN batches, in submission order: up to max ids copied into
 * out (malloc'd; the caller frees each). *n gets how many were copied and
 * *total (may be NULL) how many there are. */
int ordo_journal_unknown(ordo_journal *j, char **out, size_t max, size_t *n,
                         size_t *total);

/* Per-service policy (configuration, set after each open; journaled when
 * it changes, so a replay decides as the run did) and resume of a halted
 * service (journaled). As the ordo_queue calls; dep_timeout_ms 0: none. */
int ordo_journal_set_policy(ordo_journal *j, const char *service,
                            ordo_queue_on_invalid on_invalid,
                            unsigned max_in_flight, uint64_t dep_timeout_ms);
int ordo_journal_resume(ordo_journal *j, const char *service);
/* ordo_queue_halt, journaled (a "halt" record, like "resume"): replayed on
 * open and kept across checkpoints; ordo_journal_resume ends it. Same
 * errors, and ORDO_E_STORAGE as every change. */
int ordo_journal_halt(ordo_journal *j, const char *service,
                      const char *reason);

/* ordo_queue_ledger_find on the journal's queue: *id gets a malloc'd copy
 * of the queue id of the batch with that ledger id (the caller frees it).
 * ORDO_E_NOT_FOUND, ORDO_E_INVAL, ORDO_E_NOMEM. */
int ordo_journal_ledger_find(ordo_journal *j, const char *ledger_id,
                             char **id);

/* The state of one batch (UNKNOWN included); *reason (may be NULL) gets a
 * malloc'd copy of an INVALID batch's reason, else NULL. *seq may be NULL.
 * ORDO_E_NOT_FOUND. */
int ordo_journal_batch_status(ordo_journal *j, const char *id,
                              ordo_queue_state *state, uint64_t *seq,
                              char **reason);

/* A batch as the journal knows it (in memory, or read back from the log
 * once it has left memory). Strings are the caller's
 * (ordo_journal_batch_info_clear). */
typedef struct ordo_journal_batch_info {
  char *service;
  uint64_t seq;
  ordo_queue_state state;
  char *reason;                      /* INVALID (or a halt's cause), or NULL */
  uint64_t enqueued_ms, finished_ms; /* Unix ms, journaled; 0: none */
  char *ledger_id;                   /* as enqueued, or NULL */
  char *explain; /* WAITING: what it waits on (ordo_queue_explain), or NULL */
  ordo_queue_blocker *blockers; /* WAITING: the same as data
                                   (ordo_queue_blockers), or NULL */
  size_t nblockers;
} ordo_journal_batch_info;

/* A service's counters (in_flight without the UNKNOWN ones). */
typedef struct ordo_journal_service_info {
  size_t depth, queued, waiting, in_flight, unknown, committed, invalid;
  int halted;
  char *halt_batch, *halt_reason; /* the caller's, or NULL */
} ordo_journal_service_info;

/* The journal's totals (in_flight without the UNKNOWN ones). */
typedef struct ordo_journal_totals {
  size_t queued, waiting, in_flight, unknown, committed, invalid, services;
  unsigned long long records;    /* events written (journal_records) */
  size_t queue_memory_bytes;     /* the queue's and the forgotten ids' */
  unsigned long long forgotten, retained, expired, checkpoints, taken_ahead,
      services_dropped;
  size_t id_segments;
  unsigned long long latency_count; /* enqueue -> verdict of the finished */
  uint64_t latency_p50_ms, latency_p99_ms; /* log histogram, 25 % */
  int failed;                    /* a write failed: failed_message says why */
  char failed_message[480];
} ordo_journal_totals;

/* ORDO_OK, ORDO_E_NOT_FOUND (no such batch or service), ORDO_E_INVAL,
 * ORDO_E_NOMEM. */
int ordo_journal_get_batch(ordo_journal *j, const char *id,
                           ordo_journal_batch_info *out);
void ordo_journal_batch_info_clear(ordo_journal_batch_info *b);
int ordo_journal_get_service(ordo_journal *j, const char *service,
                             ordo_journal_service_info *out);
void ordo_journal_service_info_clear(ordo_journal_service_info *s);
int ordo_journal_get_totals(ordo_journal *j, ordo_journal_totals *out);

/* One service's counters in ordo_journal_list_services: the numbers of
 * ordo_journal_get_service (in_flight without the UNKNOWN ones). */
typedef struct ordo_journal_service_row {
  char *name;
  size_t depth, queued, waiting, in_flight, unknown, committed, invalid;
  int halted;
  char *halt_batch, *halt_reason; /* or NULL */
} ordo_journal_service_row;

/* One service as a row of ordo_journal_list_services (the strings the
 * caller's: free them as ordo_journal_service_rows_free does, or pass it
 * there). ORDO_E_NOT_FOUND, ORDO_E_NOMEM. */
int ordo_journal_get_service_row(ordo_journal *j, const char *service,
                                 ordo_journal_service_row *row);
/* Every service's counters under one lock, in one pass, in the order the
 * queue first saw them (for a dashboard of thousands: one call, not one
 * per service). *rows and its strings are malloc'd and the caller's
 * (ordo_journal_service_rows_free); no services: *rows NULL, *n 0.
 * ORDO_E_NOMEM (then nothing to free), ORDO_E_INVAL. */
int ordo_journal_list_services(ordo_journal *j, ordo_journal_service_row **rows,
                               size_t *n);
/* Free rows[0..n) and their strings; NULL is fine. */
void ordo_journal_service_rows_free(ordo_journal_service_row *rows, size_t n);

/*
 * The same as JSON text (api.c, over the calls above; malloc'd, the caller
 * frees it), or NULL with ordo_last_error:
 *   batch:   {"id","service","seq","state","reason"?,"explain"?,
 *            "waits_on"?,"enqueued_ms"?,"finished_ms"?,"ledger_id"?}
 *            waits_on (WAITING, when it waits on anything): blockers as
 *            {"kind":"dep","what","state"},
 *            {"kind":"address","what","mode":"read"|"write",
 *             "holders":[{"id","mode"}],"more"} or
 *            {"kind":"serial","what","holders":[…],"earlier"}
 *   service: {"service","depth","queued","waiting","in_flight","committed",
 *             "invalid","unknown","halted","halt_batch"?,"halt_reason"?}
 *   totals:  {"queued","waiting","in_flight","unknown","committed",
 *             "invalid","services","journal_records","latency_ms":{"count",
 *             "p50","p99"},"failed"?, …}
 */
char *ordo_journal_batch_json(ordo_journal *j, const char *id);
char *ordo_journal_service_json(ordo_journal *j, const char *service);
char *ordo_journal_totals_json(ordo_journal *j);

/* ordo_queue_service_names of the journal's queue: every service it has,
 * restored ones included (names valid until ordo_journal_close). */
size_t ordo_journal_service_names(ordo_journal *j, const char **out,
                                  size_t max);

/* The context the journal was opened in. */
ordo_ctx *ordo_journal_ctx(ordo_journal *j);

/* For tests and benchmarks: records written since open, and the storage
 * transactions that carried them (group commit shows as far fewer). */
void ordo_journal_write_stats(ordo_journal *j, unsigned long long *records,
                              unsigned long long *commits);

/* For the fuzz target: replay newline-separated record values (each JSON,
 * optionally NUL and a payload) into a fresh in-memory queue, as a reopen
 * would. ORDO_OK, or the error a reopen would fail with (ORDO_E_QUEUE with
 * "journal event N: ...", ORDO_E_NOMEM). */
int ordo__journal_replay_lines(const unsigned char *data, size_t len);

/* For the fuzz target: read a checkpoint as a reopen would, its records
 * given as chunks of data (each a 2-byte big-endian length, then that many
 * bytes; the chunks are parts 0, 1, ... of one checkpoint), into a fresh
 * in-memory queue. ORDO_OK, ORDO_E_QUEUE with "checkpoint…", or
 * ORDO_E_NOMEM. */
int ordo__journal_checkpoint_parts(const unsigned char *data, size_t len);

/* ------------------------------------------------------------------------ */
/* The ledger port and the submitter (submitter.c)                           */
/* ------------------------------------------------------------------------ */

/*
 * The ledger side of the queuer, as a port: the Sawtooth REST client and a
 * model ledger plug in alike. Every call starts an op and returns it at once
 * (NULL only when out of memory); the submitter waits for it.
 *
 *   submit    send items[0..n) (in submission order) to the ledger: their
 *             payloads are what the ledger receives (for Sawtooth, each a
 *             one-batch BatchList, so that concatenated they are one
 *             BatchList). The op's status says what became of the list:
 *               ORDO_OK                        received (not yet judged);
 *               ORDO_E_LEDGER_BATCH_REFUSED    refused whole because some
 *                   batch in it is invalid (Sawtooth 400 code 30 or 35:
 *                   a signature or permission check failed); nothing of
 *                   it was taken, and the ledger did not say which batch;
 *               ORDO_E_LEDGER_TOO_LARGE        refused whole: the body is
 *                   over the ledger's limit (413); nothing was taken;
 *               any other error                the batches may or may not
 *                   have been received: the submitter asks about them.
 *   statuses  what the ledger says of items[0..n) (their ids, ledger ids
 *             and payloads are read during the call, not kept): when the
 *             op completes with ORDO_OK, out[i] is items[i]'s status —
 *             COMMITTED, INVALID (with the ledger's reason), SUBMITTED (the
 *             ledger has it pending) or UNKNOWN (it does not know it). out
 *             is the caller's and must live until the op completes; the
 *             caller frees the reasons (ordo_ledger_status_clear). With
 *             wait_s > 0 and can_wait set, the ledger may hold the answer
 *             until no listed batch is pending or wait_s seconds pass
 *             (Sawtooth's `wait`): one request per group of batches in
 *             flight instead of one per poll interval. Without can_wait,
 *             the submitter polls every repoll_ms.
 *   probe     any cheap request that says whether the ledger answers
 *             (Sawtooth: GET /blocks?limit=1): the submitter sends one when
 *             it has had nothing to ask for probe_ms, so that an idle
 *             client still knows, and says, when the ledger is down. NULL:
 *             no probes.
 *
 * The port speaks the ledger's protocol (Sawtooth's batch_statuses JSON,
 * its ids); the queue sees only these types.
 */
typedef struct ordo_ledger_status {
  ordo_queue_state state; /* COMMITTED, INVALID, SUBMITTED or UNKNOWN */
  char *reason;           /* INVALID: the ledger's message (malloc'd), or
                             NULL */
} ordo_ledger_status;

/* Free out[0..n)'s reasons and set each to UNKNOWN. */
void ordo_ledger_status_clear(ordo_ledger_status *out, size_t n);

typedef struct ordo_ledger_port {
  void *self;
  ordo_op *(*submit)(void *self, const ordo_queue_item *items, size_t n);
  ordo_op *(*statuses)(void *self, const ordo_queue_item *items, size_t n,
                       int wait_s, ordo_ledger_status *out);
  ordo_op *(*probe)(void *self); /* NULL: no probes */
  int can_wait;                  /* statuses honours wait_s */
} ordo_ledger_port;

/*
 * The loop between a journal and a ledger port: it takes what the queue
 * lets go, sends it, asks the ledger about everything in flight, and
 * records each verdict, so that every conflicting pair is committed in
 * submission order. What it guarantees:
 *   - after a restart, the batches the journal has as UNKNOWN are looked up
 *     before anything new is sent: COMMITTED and INVALID are recorded,
 *     PENDING stays in flight, UNKNOWN (the ledger never saw it, or lost it)
 *     is sent again, in submission order;
 *   - a batch the ledger reports UNKNOWN while in flight (its pending queue
 *     was lost) is sent again before any new batch, in submission order;
 *   - an INVALID batch is never sent again;
 *   - a refusal never loops: a list refused whole (BATCH_REFUSED, TOO_LARGE)
 *     is split in halves and each half sent, until a refused batch stands
 *     alone; that batch is INVALID with the ledger's message (its dependants
 *     cascade) and is never sent again. k bad batches among n cost
 *     O(k log n) submit calls. A batch whose payload alone is over
 *     max_submit_bytes is INVALID without being sent;
 *   - every failed call is visible: ordo_submitter_get_progress says whether
 *     the ledger is down, since when, and the last error with its cause.
 *
 * Statuses are asked asynchronously: after sending, a statuses_wait call
 * covers the batches just sent (at most max_polls such calls at a time),
 * and ordo_submitter_wait returns when one of them answers, so a verdict is
 * seen when the ledger gives it and new batches go out at once (a wake-up,
 * not the next poll).
 *
 * Threads: one thread drives a submitter (ordo_submitter_step and
 * ordo_submitter_wait block, so not a runtime thread:
 * ORDO_E_WOULD_DEADLOCK). ordo_submitter_wake and
 * ordo_submitter_get_progress may be called from any thread. The journal
 * may be used by others meanwhile (enqueue from any thread).
 */
typedef struct ordo_submitter ordo_submitter;

/* Why a ledger call failed, for metrics (ordo_submitter_cause_name). */
typedef enum ordo_submitter_cause {
  ORDO_SUBMITTER_CAUSE_CONNECT,     /* refused, reset, no answer, DNS */
  ORDO_SUBMITTER_CAUSE_TIMEOUT,     /* timed out, or no answer yet (stall) */
  ORDO_SUBMITTER_CAUSE_UNAVAILABLE, /* 503 after retries */
  ORDO_SUBMITTER_CAUSE_BUSY,        /* 429 after retries */
  ORDO_SUBMITTER_CAUSE_REFUSED,     /* 400 code 30/35: a batch refused */
  ORDO_SUBMITTER_CAUSE_TOO_LARGE,   /* 413 */
  ORDO_SUBMITTER_CAUSE_REJECTED,    /* any other 400 */
  ORDO_SUBMITTER_CAUSE_AUTH,        /* 401, 403 */
  ORDO_SUBMITTER_CAUSE_TLS,
  ORDO_SUBMITTER_CAUSE_RESPONSE,    /* an answer that is not the JSON due */
  ORDO_SUBMITTER_CAUSE_OTHER,
  ORDO_SUBMITTER_CAUSES
} ordo_submitter_cause;

/* "connect", "timeout", "unavailable", "busy", "refused", "too_large",
 * "rejected", "auth", "tls", "response", "other"; NULL out of range. */
const char *ordo_submitter_cause_name(int cause);

typedef struct ordo_submitter_progress ordo_submitter_progress;

typedef enum ordo_submitter_event {
  ORDO_SUBMITTER_EVENT_DOWN,    /* a call got no usable answer */
  ORDO_SUBMITTER_EVENT_REFUSED, /* the ledger refused a request */
  ORDO_SUBMITTER_EVENT_UP       /* it answers again after an outage */
} ordo_submitter_event;

typedef struct ordo_submitter_options {
  size_t max_per_submit;  /* batches per submit call (default 100) */
  size_t max_per_status;  /* ids per statuses call (default 1000) */
  size_t max_submit_bytes; /* payload bytes per submit call (default
                              10 MiB, the Sawtooth REST API's body limit);
                              a batch over it alone is INVALID */
  int status_wait_s;      /* statuses_wait's wait (default 10; 0: none) */
  unsigned max_polls;     /* statuses calls outstanding at once (default 4:
                             under the REST client's connections, so a
                             submit never queues behind long polls) */
  unsigned repoll_ms;     /* shortest time between two statuses calls for
                             one batch (default 20); after a failed call
                             the pause grows to 5 s */
  unsigned stall_ms;      /* a call with no answer after this long is
                             reported as a failure (default 2000) */
  unsigned give_up_ms;    /* the ledger down this long: step fails with
                             the last error (0: never) */
  unsigned probe_ms;      /* nothing asked of the ledger this long: probe
                             it (default 5000; 0: never) */
  int no_take_ahead;      /* 1: no ordo_journal_set_take_ahead (default 0:
                             an enqueue into an idle submitter's journal
                             takes its batch, one fsync instead of two;
                             the environment's ORDO_TAKE_AHEAD=0 also
                             turns it off) */
  /* Called on the stepping thread for each verdict the ledger gives, after
   * it is recorded in the journal (NULL: none). For latency measurements
   * and metrics; it must not call back into the submitter. */
  void (*on_verdict)(void *ud, const char *id, ordo_queue_state outcome);
  void *on_verdict_ud;
  /* Called on the stepping thread when a ledger call fails or stalls
   * (event DOWN: it cannot be reached; REFUSED: it answered with a
   * refusal, a 413 or a 429), and once when it answers again after an
   * outage (UP), so a user is told at once (NULL: none). p has the cause.
   * Must not call into the submitter. */
  void (*on_ledger_error)(void *ud, ordo_submitter_event event,
                          const ordo_submitter_progress *p);
  void *on_ledger_error_ud;
} ordo_submitter_options;

struct ordo_submitter_progress {
  unsigned long long submitted;   /* batches sent, resends included */
  unsigned long long resubmitted; /* of which sent again (UNKNOWN) */
  unsigned long long committed, invalid; /* verdicts recorded */
  unsigned long long refused;     /* of the invalid: refused by the ledger at
                                     submit (alone after a split, or over
                                     max_submit_bytes) */
  unsigned long long submit_errors, status_errors; /* failed port ops */
  unsigned long long submit_calls, status_calls;   /* port ops started */
  unsigned long long errors_by_cause[ORDO_SUBMITTER_CAUSES];
  size_t in_flight;               /* sent, no verdict yet */
  /* The ledger's health. down: the last call got no usable answer
   * (connect, timeout or stall, 503, auth, TLS, malformed); a refusal,
   * 413 or 429 is an answer. */
  int ledger_down;
  unsigned long long down_since_ms; /* first failure of this outage (Unix
                                       ms); 0 when up */
  int last_error_code;              /* ORDO_E_* of the last failure, or 0 */
  int last_error_cause;             /* ordo_submitter_cause */
  unsigned long long last_error_ms; /* when (Unix ms); 0: never */
  char last_error[480];             /* what the port said, e.g. "POST
                                       /batches: Connection refused (4
                                       attempts)" */
};

void ordo_submitter_options_init(ordo_submitter_options *opt);

/* A submitter over j and port (both borrowed: they must outlive it). It
 * turns on j's take ahead (ordo_journal_set_take_ahead, unless
 * no_take_ahead) and off again when it is freed; it is j's only taker.
 * ORDO_E_INVAL, ORDO_E_NOMEM, ORDO_E_SYSTEM (no eventfd). */
int ordo_submitter_new(ordo_journal *j, const ordo_ledger_port *port,
                       const ordo_submitter_options *opt, ordo_submitter **out);
/* Cancels the statuses calls still out and waits for them. */
void ordo_submitter_free(ordo_submitter *s);

/*
 * One round: settle the journal's UNKNOWN batches (first round after a
 * restart), record the verdicts of the statuses calls that have answered,
 * send again what the ledger does not know, take and send what is ready,
 * and start statuses calls for what is in flight and not yet asked about.
 * Returns ORDO_OK (port errors are counted, reported and retried), the
 * journal's error (ORDO_E_STORAGE), ORDO_E_WOULD_DEADLOCK, or — with
 * give_up_ms — the last ledger error once the ledger has been down that
 * long. *idle (may be NULL) is set when nothing is in flight and nothing
 * could be taken: the queue is drained, or blocked on a halt or a dep.
 */
int ordo_submitter_step(ordo_submitter *s, int *idle);

/*
 * Block until there is something for the next step: a statuses call
 * answered, ordo_submitter_wake was called, a paused poll is due, or
 * timeout_ms passed (negative: no limit). ORDO_OK, or
 * ORDO_E_WOULD_DEADLOCK on a runtime thread.
 */
int ordo_submitter_wait(ordo_submitter *s, int timeout_ms);

/* Make the current or next ordo_submitter_wait return: call it after
 * enqueueing, resuming a service, or to stop the driving loop. Any thread. */
void ordo_submitter_wake(ordo_submitter *s);

/* A consistent copy of the counters and the ledger's health. Any thread. */
void ordo_submitter_get_progress(ordo_submitter *s,
                                 ordo_submitter_progress *p);

/* ------------------------------------------------------------------------ */
/* Workload files (workload.c)                                               */
/* ------------------------------------------------------------------------ */

/*
 * JSON Lines, one batch per line, in submission order (DESIGN.md, "Workload
 * file"):
 *   {"id":"T1","service":"s1","reads":["B"],"writes":["F"],"deps":["T0"]}
 * or "txns":[{"reads":[...],"writes":[...]},...] instead of (or as well as)
 * the top-level reads/writes: the footprint is the union. Optional
 * "outcome":"invalid" (or "committed") tells the model ledger what to do.
 * Blank lines are allowed; unknown keys are refused (a typo would silently
 * change the plan). A dep must name a batch on an earlier line.
 */
typedef struct ordo_workload_batch {
  char *id;
  char *service;
  char **reads;
  size_t nreads;
  char **writes;
  size_t nwrites;
  char **deps;
  size_t ndeps;
  int invalid; /* "outcome":"invalid" */
  size_t line; /* 1-based */
} ordo_workload_batch;

typedef struct ordo_workload {
  ordo_workload_batch *batches;
  size_t nbatches;
} ordo_workload;

/*
 * Parse len bytes of text (need not be NUL-terminated). *out is the
 * caller's (ordo_workload_free). ORDO_E_JSON for a line that is not JSON,
 * ORDO_E_INVAL for one that is but breaks the format (wrong type, missing
 * id, duplicate id, unknown dep, ...), ORDO_E_NOMEM; the message
 * (ordo_last_error_message) starts "line N: ".
 */
int ordo_workload_parse(const char *text, size_t len, ordo_workload **out);

void ordo_workload_free(ordo_workload *w);

/* Read the file at path and parse it. ORDO_E_IO (the message names the
 * file and the system's reason), or as ordo_workload_parse, the message
 * then "PATH: line N: ...". */
int ordo_workload_load(const char *path, ordo_workload **out);

/* Synthetic workloads (generate.c), as `ordo workload` writes them. */
typedef struct ordo_workload_gen {
  size_t services, batches;
  double conflict; /* P(a batch reads and writes a shared key of its service) */
  double hot_read; /* P(it reads the one identity key every service reads) */
  double invalid;  /* P(the ledger is to reject it) */
  double deps;     /* P(it names one of its service's last batches as a dep) */
  uint64_t seed;
} ordo_workload_gen;

/* 20 services, 2000 batches, conflict 0.3, the rest 0, seed 1. */
void ordo_workload_gen_init(ordo_workload_gen *g);
/* Write the file to out. ORDO_E_INVAL for out-of-range fields, ORDO_E_IO. */
int ordo_workload_generate(const ordo_workload_gen *g, FILE *out);

/* ------------------------------------------------------------------------ */
/* The model ledger behind `ordo plan` (plan.c)                              */
/* ------------------------------------------------------------------------ */

/*
 * Run the scheduler on a model ledger: each round takes every ready batch,
 * and every taken batch finishes at the end of its round, COMMITTED or
 * INVALID as its line says. Ends when nothing is in flight and nothing more
 * can be taken. Batches are referred to by index into w->batches.
 */
typedef struct ordo_plan {
  size_t nrounds;
  size_t *round_start;  /* nrounds + 1 offsets into order[] */
  size_t *order;        /* batch indices, round after round */
  size_t *invalid;      /* INVALID batches, in submission order */
  size_t ninvalid;
  size_t *stuck;        /* never finished (a dep cycle the API allows) */
  size_t nstuck;
  char **explain;       /* with explain: per round, the waiting batches'
                           explanations, one per line (NULL if none) */
} ordo_plan;

int ordo_plan_run(const ordo_workload *w, const ordo_queue_options *opt,
                  int explain, ordo_plan **out);
void ordo_plan_free(ordo_plan *p);

#endif /* ORDO_QUEUE_H */

/*
 * queue.h — the submission queuer: which batches may go to the ledger now.
 *
 * Why: a ledger that applies the batches of one commit window in any order
 * keeps data integrity only if the client never has two conflicting batches
 * of a service in flight at once. This module decides, batch by batch, when
 * that is safe (DESIGN.md, "queue"). This increment is the in-memory
 * scheduler, the workload-file parser and the `ordo plan` model; the journal,
 * the ledger client and the HTTP API come later and drive the same calls.
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
  ORDO_QUEUE_INVALID
} ordo_queue_state;

/* Start from ordo_queue_options_init(). */
typedef struct ordo_queue_options {
  ordo_queue_strategy strategy;
  ordo_queue_mode mode;
  int granularity;              /* < 0 unlimited (default), 0 all conflict */
  unsigned max_in_flight;       /* global cap; 0 = unlimited (default) */
  unsigned service_max_in_flight; /* per-service cap; 0 = unlimited (default) */
} ordo_queue_options;

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
} ordo_queue_batch_spec;

/* A batch handed out by ordo_queue_take. The pointers are owned by the queue
 * and stay valid until ordo_queue_free (finished batches are kept for their
 * status). */
typedef struct ordo_queue_item {
  const char *id;
  const char *service;
  uint64_t seq;
  const void *payload;
  size_t payload_len;
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
} ordo_queue_service_info;

typedef struct ordo_queue_totals {
  size_t queued, waiting, in_flight, committed, invalid, services;
} ordo_queue_totals;

void ordo_queue_options_init(ordo_queue_options *opt);

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
 * already INVALID. ORDO_E_EXISTS for an id already enqueued; ORDO_E_INVAL
 * for a NULL or empty id or service, a NULL address, or a dep on itself;
 * ORDO_E_NOMEM (the queue is then unchanged).
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

/* The state of a batch and, for INVALID, why (queue-owned, valid until
 * ordo_queue_free; NULL otherwise). reason may be NULL.
 * ORDO_E_NOT_FOUND if id was never enqueued. */
int ordo_queue_batch_status(const ordo_queue *q, const char *id,
                            ordo_queue_state *state, const char **reason);

/* Counters of one service. ORDO_E_NOT_FOUND if the queue never saw it. */
int ordo_queue_service_status(const ordo_queue *q, const char *service,
                              ordo_queue_service_info *info);

void ordo_queue_get_totals(const ordo_queue *q, ordo_queue_totals *t);

/*
 * Why a batch is where it is, as malloc'd text (the caller frees it), e.g.
 * "T4 waits on A (T3 writes), B (T1, T3 read)". NULL with ordo_last_error
 * set on ORDO_E_NOT_FOUND / ORDO_E_NOMEM.
 */
char *ordo_queue_explain(const ordo_queue *q, const char *id);

/* Per-service policy. A service not seen yet is created. max_in_flight 0
 * means the queue's service_max_in_flight. */
int ordo_queue_set_policy(ordo_queue *q, const char *service,
                          ordo_queue_on_invalid on_invalid,
                          unsigned max_in_flight);

/* Let a halted service be taken from again. ORDO_E_NOT_FOUND for an unknown
 * service, ORDO_E_STATE if it is not halted. */
int ordo_queue_resume(ordo_queue *q, const char *service);

const char *ordo_queue_state_name(ordo_queue_state s);

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

/* ------------------------------------------------------------------------ */
/* The model ledger and `ordo plan` (plan.c)                                 */
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

/* `ordo plan FILE [--strategy S] [--mode M] [--granularity N] [--explain]
 * [--json]`, printing to out and err: an exit code from cli/cli.h. */
int ordo__plan_cli(int argc, char **argv, FILE *out, FILE *err);

/* The subcommand table's entry: ordo__plan_cli on stdout and stderr. */
int ordo__plan_main(int argc, char **argv);

#endif /* ORDO_QUEUE_H */

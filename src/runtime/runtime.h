/*
 * runtime.h — the internal API every ordo module uses to define commands as
 * chains of stages on classed executors. Not installed; the public surface is
 * include/ordo.h.
 *
 * A command is an op with a list of stages. Each stage names where it runs:
 * a class (its shared executor) or one particular serial executor (a
 * database's storage thread). When a stage returns ORDO_OK the next one is
 * queued on its executor; when it returns an error the op finishes with it.
 * No thread ever waits for another class: a stage that needs work elsewhere
 * ends, and the next stage runs there.
 *
 *   ordo_op *op = ordo__op_new(ctx, st, st_free);
 *   ordo__op_add_stage(op, ORDO_CLASS_CHEAP, derive_key);
 *   ordo__op_add_stage_on(op, wallet->storage, store_record);
 *   ordo__op_add_stage(op, ORDO_CLASS_CHEAP, format_result);
 *   return ordo__op_start(op);
 *
 * A stage may also append stages while it runs (the chain is decided as it
 * goes), or hand the op to an asynchronous completer by returning
 * ORDO__STAGE_ASYNC; that completer later calls ordo__op_resume().
 */
#ifndef ORDO_RUNTIME_H
#define ORDO_RUNTIME_H

#include "base/base.h"
#include "ordo.h"

#include <jansson.h>
#include <stdarg.h>

/* A stage returns this when it has passed the op on to something that will
 * call ordo__op_resume() later (from any thread). */
#define ORDO__STAGE_ASYNC (-1)

typedef struct ordo__executor ordo__executor;

/*
 * A new op in ctx, not yet started. state is owned by the op from here on:
 * state_free(state) is called once when the op finishes (NULL: nothing to
 * free). Returns NULL on allocation failure (state is then freed).
 * The caller holds the one reference that ordo__op_start hands on.
 */
ordo_op *ordo__op_new(ordo_ctx *ctx, void *state, void (*state_free)(void *));

/* Append a stage that runs on class cls (its shared executor). The stage is
 * called as fn(op, state) with the state given to ordo__op_new. ORDO_E_NOMEM,
 * ORDO_E_INVAL for a bad class. May be called from the op's running stage. */
int ordo__op_add_stage(ordo_op *op, ordo_class cls, ordo_stage_fn fn);

/* Append a stage that runs on one serial executor (ordo__executor_open). */
int ordo__op_add_stage_on(ordo_op *op, ordo__executor *ex, ordo_stage_fn fn);

/*
 * Admit the op: queue its first stage, subject to that executor's
 * queue_limit. Always returns op, with the reference ordo__op_new gave. If
 * admission is refused (ORDO_E_BUSY, ORDO_E_SHUTDOWN) or there are no stages
 * (ORDO_E_INVAL), the op has already finished with that status.
 */
ordo_op *ordo__op_start(ordo_op *op);

/* Finish an op that will not be started (bad arguments found while building
 * it) with status, keeping any message set with ordo_op_set_message. Returns
 * op, with the reference ordo__op_new gave, like ordo__op_start. */
ordo_op *ordo__op_reject(ordo_op *op, int status);

/* Finish the op now with status and message (the printf-style message may be
 * NULL). For a stage that knows the op is done without further stages, and
 * for ASYNC completers. */
void ordo__op_fail(ordo_op *op, int status, const char *fmt, ...)
    ORDO__PRINTF(3, 4);

/* Set op's result to the JSON of o (sorted keys, compact) and drop o (NULL
 * is taken as out of memory). The serialized copy is wiped: results may
 * carry secrets (record values). */
int ordo__op_set_result_json(ordo_op *op, json_t *o);

/* Continue an op whose stage returned ORDO__STAGE_ASYNC, as if that stage had
 * returned status. Any thread, exactly once per ASYNC return. */
void ordo__op_resume(ordo_op *op, int status);

/* Non-zero when op has been asked to stop (ordo_op_cancel, or its context
 * shutting down). For an ASYNC completer holding a parked op: no stage is
 * running to see ordo_op_cancelled(), so it polls this and finishes the op
 * with ORDO_E_CANCELED itself (ordo__op_fail). Any thread. */
int ordo__op_cancel_requested(ordo_op *op);

/* The state given to ordo__op_new, and the op's context. */
void *ordo__op_state(ordo_op *op);
ordo_ctx *ordo__op_ctx(ordo_op *op);

/* The op whose stage is running on this thread, or NULL. */
ordo_op *ordo__op_current(void);

/* Non-zero on a thread that belongs to any ordo context. */
int ordo__on_runtime_thread(void);

/*
 * A serial executor of class storage: one thread, FIFO. Each opened database
 * gets one. Closed executors are parked and reused by later opens, so their
 * memory lives as long as the context (ops may still refer to them).
 * Returns ORDO_OK and *out, or ORDO_E_SHUTDOWN/ORDO_E_NOMEM/ORDO_E_SYSTEM.
 * In single_executor mode this returns the one shared executor.
 */
int ordo__executor_open(ordo_ctx *ctx, const char *name, ordo__executor **out);

/* Give a serial executor back. Work already queued on it still runs; posting
 * after close fails with ORDO_E_STATE. May be called from its own thread. */
void ordo__executor_close(ordo__executor *ex);

/*
 * A plain task, not tied to an op: for a backend that drains its own request
 * queue on an executor (group commit). The caller owns the struct and must
 * keep it alive until fn has been called; fn is called exactly once, on the
 * executor's thread, unless the post fails.
 */
typedef struct ordo__task ordo__task;
struct ordo__task {
  ordo__task *next, *prev; /* owned by the executor while queued */
  void (*fn)(ordo__task *task);
  int kind;                /* runtime use */
  ordo__executor *queued_on; /* runtime use */
  unsigned long long enqueued_ns; /* runtime use */
};

/* Post a task to a serial executor (or a class executor via
 * ordo__executor_of_class). Not subject to queue_limit. ORDO_E_STATE after
 * close. Still accepted while ordo_ctx_free waits for live ops (a backend
 * must keep draining to finish the ops it holds); ORDO_E_SHUTDOWN once the
 * threads are being joined. */
int ordo__executor_post(ordo__executor *ex, ordo__task *task);

/* The shared executor of a class in ctx. */
ordo__executor *ordo__executor_of_class(ordo_ctx *ctx, ordo_class cls);

/*
 * Per-context state of a module (the wallet registry, the queue), made on
 * first use: returns the module's data, calling create(ctx) the first time
 * (under a lock, so two threads racing get the same data). shutdown(data) is
 * called once by ordo_ctx_free after every op has finished and before the
 * threads stop, so it may still submit work to executors and wait for it;
 * it frees data. Returns NULL if create returned NULL.
 */
typedef enum ordo__module {
  ORDO__MODULE_WALLET = 0, /* the wallet registry (wallet.c) */
  ORDO__MODULE_COUNT
} ordo__module;

void *ordo__ctx_module(ordo_ctx *ctx, ordo__module m,
                       void *(*create)(ordo_ctx *ctx),
                       void (*shutdown)(void *data));

/*
 * An object that holds the context's executors past its own calls (a
 * journal: its database's serial executor) and must be closed before they
 * stop. The owner embeds the struct and attaches it when the object is open;
 * ordo_ctx_free calls close(c) for every one still attached, after every op
 * has finished and while the executors still run (before the modules shut
 * down), with no lock held. close must leave the object in a state its own
 * close call accepts: that call then only frees it.
 *
 * attach takes a reference on the context (the struct stays valid for
 * detach even after ordo_ctx_free returned): ORDO_OK, or ORDO_E_SHUTDOWN
 * once ordo_ctx_free has begun. detach drops that reference and returns 1
 * if c was still attached (the owner closes the object itself), 0 if
 * ordo_ctx_free has closed it already. Not concurrently with ordo_ctx_free.
 */
typedef struct ordo__ctx_closer ordo__ctx_closer;
struct ordo__ctx_closer {
  ordo__ctx_closer *next, *prev;      /* the ctx's list; runtime use */
  void (*close)(ordo__ctx_closer *c); /* set by the owner */
};

int ordo__ctx_closer_attach(ordo_ctx *ctx, ordo__ctx_closer *c);
int ordo__ctx_closer_detach(ordo_ctx *ctx, ordo__ctx_closer *c);

/* Monotonic clock in nanoseconds. */
unsigned long long ordo__now_ns(void);
/* Wall clock (Unix time) in milliseconds: for what is journaled, shown
 * or compared with another process's times. */
unsigned long long ordo__wall_ms(void);

/* Record the thread's last error (ordo_last_error*); returns code. */
int ordo__set_last_error(int code, const char *fmt, ...) ORDO__PRINTF(2, 3);

#endif /* ORDO_RUNTIME_H */

/*
 * internal.h — structures shared by the files of the runtime module only.
 * Other modules use runtime.h.
 *
 * Lock order (outer first): ctx->mu, executor->mu, op->mu; in practice no
 * path nests more than two of them. ctx->mu guards the serial-executor list,
 * the closer list and the shutdown wait. No lock is held while user code (a stage, a
 * callback, a state destructor) runs.
 */
#ifndef ORDO_RUNTIME_INTERNAL_H
#define ORDO_RUNTIME_INTERNAL_H

#include "base/hist.h" /* ordo__hist: the log2 scale, ordo__hist_add */
#include "base/base.h"
#include "runtime/runtime.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>


/* ---- metrics.c ---------------------------------------------------------- */

typedef struct ordo__class_metrics {
  atomic_ullong submitted; /* tasks queued */
  atomic_ullong completed; /* tasks run to their end */
  atomic_ullong rejected;  /* admissions refused with ORDO_E_BUSY */
  atomic_long queue_depth;
  atomic_long busy;
  atomic_uint threads;
  ordo__hist wait; /* queued -> started */
  ordo__hist run;  /* started -> returned */
} ordo__class_metrics;

/* Upper bound, in µs, of the bucket holding quantile q (0..1); 0 if empty. */
unsigned long long ordo__hist_quantile_us(const ordo__hist *h, double q);
/* JSON of all classes; malloc'd. */
char *ordo__metrics_json(ordo__class_metrics *m, size_t n);

/* ---- executor.c --------------------------------------------------------- */

enum {
  ORDO__TASK_PLAIN = 0, /* a module's task (ordo__task posted directly) */
  ORDO__TASK_STAGE,     /* an op's next stage */
  ORDO__TASK_CALLBACK   /* an op's completion callback */
};

struct ordo__executor {
  ordo_ctx *ctx;
  ordo_class cls;
  char name[16];
  pthread_mutex_t mu;
  pthread_cond_t cv;
  ordo__task head;       /* circular list sentinel; protected by mu */
  long depth;            /* tasks queued; protected by mu */
  unsigned limit;        /* admission bound on depth */
  int stopping;          /* exit once the queue is empty; protected by mu */
  int closed;            /* serial executor given back, parked for reuse */
  int serial;            /* opened with ordo__executor_open */
  int nice;              /* priority to lower threads to (heavy class) */
  unsigned nthreads;
  unsigned started;      /* threads actually created */
  pthread_t *threads;
  ordo__class_metrics *metrics;
  ordo__executor *next;  /* ctx's list of serial executors */
};

int ordo__executor_init(ordo__executor *ex, ordo_ctx *ctx, ordo_class cls,
                        const char *name, unsigned nthreads, unsigned limit,
                        int nice, ordo__class_metrics *metrics);
/* Stop accepting waits: threads exit once the queue is empty; join them. */
void ordo__executor_join(ordo__executor *ex);
void ordo__executor_destroy(ordo__executor *ex);

/* Queue task; admit != 0 applies the queue limit. */
int ordo__executor_push(ordo__executor *ex, ordo__task *task, int admit);

/* Remove task if it is an op's STAGE still queued on ex. Returns 1 if
 * removed. task->kind is read under ex->mu, where it cannot change: it is
 * written only while the task is on no queue. */
int ordo__executor_remove_stage(ordo__executor *ex, ordo__task *task);

/* Take every queued STAGE task off ex and hand each to fn (shutdown). */
void ordo__executor_drain_stages(ordo__executor *ex,
                                 void (*fn)(ordo__task *task));

/* The context this thread works for, or NULL on a non-runtime thread. */
ordo_ctx *ordo__thread_ctx(void);

/* ---- op.c --------------------------------------------------------------- */

/* The task function of a queued STAGE and of a queued CALLBACK. */
void ordo__op_run_task(ordo__task *task);
/* Finish a stage task that was taken off its queue without running. */
void ordo__op_cancel_task(ordo__task *task);

/* ---- ctx.c -------------------------------------------------------------- */

struct ordo_ctx {
  ordo_config cfg;
  ordo__class_metrics metrics[ORDO_CLASS_COUNT];
  ordo__executor *cls_ex[ORDO_CLASS_COUNT]; /* single mode: all the same */
  ordo__executor *owned[ORDO_CLASS_COUNT];  /* executors this ctx created */
  atomic_int shutting_down;
  atomic_int joined;           /* threads are gone; no task may be posted */
  atomic_long live_ops;        /* ops started and not yet fully delivered */
  atomic_long refs;            /* 1 for the ctx itself + 1 per existing op */
  /* serial list, module data, closers, shutdown wait. Not a leaf:
   * ordo__executor_open takes an executor's lock under it, and
   * ordo__ctx_module runs a module's create under it (which must not take
   * mu again); nothing takes mu while holding an executor's lock. */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  ordo__executor *serials;     /* every serial executor, open or parked */
  void *module_data[ORDO__MODULE_COUNT];          /* under mu */
  void (*module_shutdown[ORDO__MODULE_COUNT])(void *);
  ordo__ctx_closer *closers;   /* attached objects (journals); under mu */
};

void ordo__ctx_retain(ordo_ctx *ctx);
void ordo__ctx_release(ordo_ctx *ctx);
/* An op has been started / has been fully delivered. */
void ordo__ctx_op_begin(ordo_ctx *ctx);
void ordo__ctx_op_end(ordo_ctx *ctx);

#endif /* ORDO_RUNTIME_INTERNAL_H */

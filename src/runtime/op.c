/*
 * op.c — ops: futures made of stages that run on classed executors.
 *
 * Life of an op
 *   ordo__op_new     refs = 1 (the caller's)
 *   ordo__op_start   +1 ref held by the runtime while the op is in flight;
 *                    the first stage is queued (subject to queue_limit)
 *   stage runs       on its executor; ORDO_OK queues the next stage, an error
 *                    finishes the op, ORDO__STAGE_ASYNC parks it until
 *                    ordo__op_resume
 *   finish           once: state freed, status published, waiters woken,
 *                    eventfd written, callback delivered (inline on a runtime
 *                    thread of the ctx, else as a task on the cheap executor),
 *                    then the runtime's ref is dropped
 *
 * Invariants
 *   - op->finishing flips 0 -> 1 exactly once; whoever flips it finishes.
 *   - op->done is published under op->mu (with status, cb and efd read under
 *     the same lock), so ordo_op_then / ordo_op_fd racing with the finish see
 *     either "not done" (and the finisher delivers) or "done" (and deliver
 *     themselves): exactly once either way.
 *   - op->task is on at most one queue: the next stage's, or the callback's.
 *     Its kind and fn are written only while it is on none, by the thread
 *     about to queue it (a resumer, a finisher); the worker that pops it
 *     reads them after the queue handoff, and ordo_op_cancel, which may look
 *     at any time, reads kind only under the queue's lock.
 *   - Stage bookkeeping (stages, next, results) is touched only by the thread
 *     running the op's current stage; queue handoffs order those accesses.
 */
#include "runtime/internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define INLINE_STAGES 4

typedef struct {
  ordo__executor *ex;
  ordo_stage_fn fn;
} op_stage;

struct ordo_op {
  ordo__task task; /* the op's queued stage or callback; first for speed */
  ordo_ctx *ctx;
  atomic_int refs;
  atomic_int cancel;    /* cancellation requested */
  atomic_int finishing; /* someone has begun to finish the op */
  atomic_int done;      /* status is final; written under mu */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int status;           /* final once done */
  int cb_set;           /* under mu */
  ordo_op_cb cb;
  void *cb_ud;
  int efd;              /* under mu; -1 until ordo_op_fd asks */
  char *message;
  char *result;
  unsigned char *bytes;
  size_t nbytes;
  int has_bytes;
  void *state;
  void (*state_free)(void *);
  int state_free_deferred; /* finished inside its own stage: free on return */
  op_stage *stages;
  op_stage inline_stages[INLINE_STAGES];
  size_t nstages, cap, next;
};

/* The op whose stage runs on this thread. */
static _Thread_local ordo_op *current_op;

static pthread_condattr_t cond_attr;
static pthread_once_t cond_attr_once = PTHREAD_ONCE_INIT;

/* Waits time out on the monotonic clock, immune to wall-clock jumps. */
static void cond_attr_init(void) {
  if (pthread_condattr_init(&cond_attr) != 0 ||
      pthread_condattr_setclock(&cond_attr, CLOCK_MONOTONIC) != 0)
    abort();
}

static void op_free_state(ordo_op *op) {
  if (op->state_free != NULL && op->state != NULL)
    op->state_free(op->state);
  op->state = NULL;
  op->state_free = NULL;
}

static void op_free(ordo_op *op) {
  ordo_ctx *ctx = op->ctx;
  op_free_state(op); /* an op that never started still owns its state */
  if (op->efd >= 0)
    close(op->efd);
  free(op->message);
  free(op->result);
  free(op->bytes);
  if (op->stages != op->inline_stages)
    free(op->stages);
  pthread_cond_destroy(&op->cv);
  pthread_mutex_destroy(&op->mu);
  free(op);
  ordo__ctx_release(ctx);
}

ordo_op *ordo_op_retain(ordo_op *op) {
  if (op != NULL)
    atomic_fetch_add_explicit(&op->refs, 1, memory_order_relaxed);
  return op;
}

void ordo_op_release(ordo_op *op) {
  if (op != NULL &&
      atomic_fetch_sub_explicit(&op->refs, 1, memory_order_acq_rel) == 1)
    op_free(op);
}

ordo_op *ordo__op_new(ordo_ctx *ctx, void *state, void (*state_free)(void *)) {
  ordo_op *op = calloc(1, sizeof(*op));
  if (op == NULL) {
    if (state_free != NULL && state != NULL)
      state_free(state);
    ordo__set_last_error(ORDO_E_NOMEM, "no memory for an op");
    return NULL;
  }
  pthread_once(&cond_attr_once, cond_attr_init);
  if (pthread_mutex_init(&op->mu, NULL) != 0 ||
      pthread_cond_init(&op->cv, &cond_attr) != 0)
    abort(); /* cannot fail on Linux */
  atomic_init(&op->refs, 1);
  op->ctx = ctx;
  ordo__ctx_retain(ctx);
  op->efd = -1;
  op->state = state;
  op->state_free = state_free;
  op->stages = op->inline_stages;
  op->cap = INLINE_STAGES;
  op->task.fn = ordo__op_run_task;
  op->task.kind = ORDO__TASK_STAGE;
  return op;
}

void *ordo__op_state(ordo_op *op) { return op->state; }

ordo_ctx *ordo__op_ctx(ordo_op *op) { return op->ctx; }

ordo_op *ordo__op_current(void) { return current_op; }

int ordo__op_add_stage_on(ordo_op *op, ordo__executor *ex, ordo_stage_fn fn) {
  if (op == NULL || ex == NULL || fn == NULL)
    return ORDO_E_INVAL;
  if (op->nstages == op->cap) {
    size_t cap = op->cap * 2;
    op_stage *s = malloc(cap * sizeof(*s));
    if (s == NULL)
      return ORDO_E_NOMEM;
    memcpy(s, op->stages, op->nstages * sizeof(*s));
    if (op->stages != op->inline_stages)
      free(op->stages);
    op->stages = s;
    op->cap = cap;
  }
  op->stages[op->nstages].ex = ex;
  op->stages[op->nstages].fn = fn;
  op->nstages++;
  return ORDO_OK;
}

int ordo__op_add_stage(ordo_op *op, ordo_class cls, ordo_stage_fn fn) {
  if (op == NULL || (unsigned)cls >= ORDO_CLASS_COUNT)
    return ORDO_E_INVAL;
  return ordo__op_add_stage_on(op, op->ctx->cls_ex[cls], fn);
}

/* ---- results ------------------------------------------------------------ */

static void set_message_v(ordo_op *op, const char *fmt, va_list ap) {
  char *m = NULL;
  if (fmt != NULL && vasprintf(&m, fmt, ap) < 0)
    m = NULL; /* out of memory: the status still says what happened */
  free(op->message);
  op->message = m;
}

int ordo_op_set_message(ordo_op *op, const char *fmt, ...) {
  if (op == NULL)
    return ORDO_E_INVAL;
  if (atomic_load(&op->done))
    return ORDO_E_STATE;
  va_list ap;
  va_start(ap, fmt);
  set_message_v(op, fmt, ap);
  va_end(ap);
  return fmt != NULL && op->message == NULL ? ORDO_E_NOMEM : ORDO_OK;
}

int ordo_op_set_result(ordo_op *op, const char *json) {
  if (op == NULL)
    return ORDO_E_INVAL;
  if (atomic_load(&op->done))
    return ORDO_E_STATE;
  char *copy = NULL;
  if (json != NULL && (copy = strdup(json)) == NULL)
    return ORDO_E_NOMEM;
  free(op->result);
  op->result = copy;
  return ORDO_OK;
}

int ordo__op_set_result_json(ordo_op *op, json_t *o) {
  char *s = o != NULL ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
  json_decref(o);
  if (s == NULL)
    return ORDO_E_NOMEM;
  int rc = ordo_op_set_result(op, s);
  /* A plain loop through a volatile pointer: the runtime does not link
   * libsodium, and the compiler must not drop the wipe. */
  for (volatile char *p = s; *p != '\0'; p++)
    *p = 0;
  free(s);
  return rc;
}

int ordo_op_set_result_bytes(ordo_op *op, const void *data, size_t len) {
  if (op == NULL || (data == NULL && len > 0))
    return ORDO_E_INVAL;
  if (atomic_load(&op->done))
    return ORDO_E_STATE;
  unsigned char *copy = malloc(len ? len : 1);
  if (copy == NULL)
    return ORDO_E_NOMEM;
  if (len > 0)
    memcpy(copy, data, len);
  free(op->bytes);
  op->bytes = copy;
  op->nbytes = len;
  op->has_bytes = 1;
  return ORDO_OK;
}

/* ---- finishing ---------------------------------------------------------- */

/* Drop what the runtime held for an op in flight: its live count in the ctx
 * (ordo_ctx_free waits for it) and its reference. */
static void op_runtime_done(ordo_op *op) {
  ordo_ctx *ctx = op->ctx;
  ordo__ctx_op_end(ctx);
  ordo_op_release(op);
}

static void op_post_callback(ordo_op *op) {
  op->task.kind = ORDO__TASK_CALLBACK;
  op->task.fn = ordo__op_run_task;
  /* The cheap executor outlives every live op (ordo_ctx_free joins it only
   * after live_ops reaches 0), so this cannot fail while the op is live. If
   * it ever did, running the callback here beats losing it. */
  if (ordo__executor_push(op->ctx->cls_ex[ORDO_CLASS_CHEAP], &op->task, 0) !=
      ORDO_OK) {
    op->cb(op, op->cb_ud);
    op_runtime_done(op);
  }
}

static void op_finish(ordo_op *op, int status) {
  if (atomic_exchange(&op->finishing, 1))
    return;
  /* Free the state before waking anyone, so resources it holds (a wallet
   * handle, a buffer) are released by the time the caller sees the result;
   * but not under the feet of the stage that is finishing its own op. */
  if (current_op == op)
    op->state_free_deferred = 1;
  else
    op_free_state(op);

  pthread_mutex_lock(&op->mu);
  op->status = status;
  atomic_store_explicit(&op->done, 1, memory_order_release);
  ordo_op_cb cb = op->cb_set ? op->cb : NULL;
  int efd = op->efd;
  pthread_cond_broadcast(&op->cv);
  pthread_mutex_unlock(&op->mu);

  if (efd >= 0)
    (void)eventfd_write(efd, 1); /* cannot overflow: written once */
  if (cb == NULL) {
    op_runtime_done(op);
  } else if (ordo__thread_ctx() == op->ctx) {
    cb(op, op->cb_ud);
    op_runtime_done(op);
  } else {
    op_post_callback(op); /* the callback task drops the runtime's hold */
  }
}

static void op_fail_v(ordo_op *op, int status, const char *fmt, va_list ap) {
  if (atomic_load(&op->finishing))
    return;
  if (fmt != NULL)
    set_message_v(op, fmt, ap);
  op_finish(op, status);
}

static void op_fail(ordo_op *op, int status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  op_fail_v(op, status, fmt, ap);
  va_end(ap);
}

void ordo__op_fail(ordo_op *op, int status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  op_fail_v(op, status, fmt, ap);
  va_end(ap);
}

/* Where no stage is running: if op was asked to stop (ordo_op_cancel, or
 * the context shutting down), finish it as canceled and return 1. */
static int op_stop_if_asked(ordo_op *op, const char *when) {
  if (atomic_load(&op->cancel)) {
    op_fail(op, ORDO_E_CANCELED, "canceled %s", when);
    return 1;
  }
  if (atomic_load(&op->ctx->shutting_down)) {
    op_fail(op, ORDO_E_CANCELED, "canceled %s: context shutting down", when);
    return 1;
  }
  return 0;
}

/* After a stage returned rc: finish, or queue the next stage. */
static void op_advance(ordo_op *op, int rc) {
  if (atomic_load(&op->finishing))
    return;
  if (rc != ORDO_OK) {
    op_finish(op, rc);
    return;
  }
  if (op->next >= op->nstages) {
    op_finish(op, ORDO_OK);
    return;
  }
  if (op_stop_if_asked(op, "between stages"))
    return;
  op_stage *st = &op->stages[op->next];
  op->task.kind = ORDO__TASK_STAGE;
  op->task.fn = ordo__op_run_task;
  /* Not subject to queue_limit: the op was admitted at its first stage. */
  int prc = ordo__executor_push(st->ex, &op->task, 0);
  if (prc != ORDO_OK)
    op_fail(op, prc == ORDO_E_SHUTDOWN ? ORDO_E_CANCELED : prc,
            "next stage refused by the %s executor: %s", st->ex->name,
            ordo_strerror(prc));
}

static void op_run_stage(ordo_op *op) {
  /* Also catches an op popped just before ordo_ctx_free drained this queue:
   * it was still queued when shutdown began, so it ends as those did. */
  if (op_stop_if_asked(op, "before its stage started"))
    return;
  /* Hold the op across the stage: the stage may finish it (ordo__op_fail),
   * which drops the runtime's reference while we still use it. */
  ordo_op_retain(op);
  op_stage st = op->stages[op->next++];
  ordo_op *outer = current_op;
  current_op = op;
  int rc = st.fn(op, op->state);
  current_op = outer;
  if (rc == ORDO__STAGE_ASYNC) {
    /* The op may already be running its next stage on another thread:
     * touch nothing of it but our reference. */
    ordo_op_release(op);
    return;
  }
  if (op->state_free_deferred) {
    op->state_free_deferred = 0;
    op_free_state(op);
  } else {
    op_advance(op, rc);
  }
  ordo_op_release(op);
}

void ordo__op_run_task(ordo__task *task) {
  ordo_op *op = ORDO__CONTAINER_OF(task, ordo_op, task);
  if (task->kind == ORDO__TASK_CALLBACK) {
    op->cb(op, op->cb_ud);
    op_runtime_done(op);
    return;
  }
  op_run_stage(op);
}

void ordo__op_cancel_task(ordo__task *task) {
  ordo_op *op = ORDO__CONTAINER_OF(task, ordo_op, task);
  op_fail(op, ORDO_E_CANCELED, "canceled: context shutting down");
}

void ordo__op_resume(ordo_op *op, int status) {
  ordo_op_retain(op);
  op_advance(op, status);
  ordo_op_release(op);
}

/* Take the runtime's hold on an op that is about to be queued or refused:
 * from here on it is finished and delivered exactly like any other. */
static void op_take_hold(ordo_op *op) {
  ordo_op_retain(op); /* dropped when the op has been delivered */
  ordo__ctx_op_begin(op->ctx);
}

ordo_op *ordo__op_start(ordo_op *op) {
  if (op == NULL)
    return NULL;
  op_take_hold(op);
  if (op->nstages == 0) {
    op_fail(op, ORDO_E_INVAL, "op has no stages");
    return op;
  }
  if (atomic_load(&op->ctx->shutting_down)) {
    op_fail(op, ORDO_E_SHUTDOWN, "context is shutting down");
    return op;
  }
  ordo__executor *ex = op->stages[0].ex;
  int rc = ordo__executor_push(ex, &op->task, 1);
  if (rc == ORDO_E_BUSY)
    op_fail(op, rc, "%s queue is full (queue_limit %u)", ex->name, ex->limit);
  else if (rc != ORDO_OK)
    op_fail(op, rc, "%s executor refused the op: %s", ex->name,
            ordo_strerror(rc));
  return op;
}

ordo_op *ordo__op_reject(ordo_op *op, int status) {
  if (op == NULL)
    return NULL;
  op_take_hold(op);
  op_fail(op, status, NULL);
  return op;
}

ordo_op *ordo_submit(ordo_ctx *ctx, ordo_class cls, ordo_stage_fn fn, void *arg) {
  if (ctx == NULL) {
    ordo__set_last_error(ORDO_E_INVAL, "ordo_submit: ctx is NULL");
    return NULL;
  }
  ordo_op *op = ordo__op_new(ctx, arg, NULL);
  if (op == NULL)
    return NULL;
  int rc = ordo__op_add_stage(op, cls, fn);
  if (rc != ORDO_OK) {
    op_take_hold(op);
    op_fail(op, rc, rc == ORDO_E_INVAL ? "ordo_submit: bad class %d or NULL stage"
                                       : "ordo_submit: cannot add stage (class %d)",
            (int)cls);
    return op;
  }
  return ordo__op_start(op);
}

/* ---- the caller's side -------------------------------------------------- */

int ordo_op_cancelled(void) {
  ordo_op *op = current_op;
  return op != NULL && (atomic_load_explicit(&op->cancel, memory_order_relaxed) ||
                        atomic_load_explicit(&op->ctx->shutting_down,
                                             memory_order_relaxed));
}

int ordo__op_cancel_requested(ordo_op *op) {
  return atomic_load_explicit(&op->cancel, memory_order_relaxed) ||
         atomic_load_explicit(&op->ctx->shutting_down, memory_order_relaxed);
}

int ordo_op_cancel(ordo_op *op) {
  if (op == NULL)
    return ORDO_E_INVAL;
  if (atomic_load(&op->finishing))
    return ORDO_E_STATE;
  atomic_store(&op->cancel, 1);
  for (;;) {
    ordo__executor *ex = __atomic_load_n(&op->task.queued_on, __ATOMIC_ACQUIRE);
    if (ex == NULL)
      break; /* running, parked ASYNC, or finishing: the flag will be seen */
    /* It may have moved on since we looked: remove re-checks under ex->mu,
     * where the task's kind is stable while it is queued (a resumer or a
     * finisher writes it before queueing it). A queued CALLBACK means the
     * op already finished: remove leaves it alone. */
    if (ordo__executor_remove_stage(ex, &op->task)) {
      op_fail(op, ORDO_E_CANCELED, "canceled while queued");
      return ORDO_OK;
    }
    if (atomic_load(&op->finishing))
      break;
  }
  /* It was not finished when we set the flag, so the request counted even if
   * a worker has since seen it and finished the op. */
  return ORDO_E_BUSY;
}

int ordo_op_wait(ordo_op *op, int timeout_ms) {
  if (op == NULL)
    return ORDO_E_INVAL;
  if (atomic_load_explicit(&op->done, memory_order_acquire))
    return op->status;
  if (timeout_ms == 0)
    return ORDO_E_TIMEOUT;
  if (ordo__on_runtime_thread())
    return ORDO_E_WOULD_DEADLOCK;
  struct timespec deadline;
  if (timeout_ms > 0) {
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
      deadline.tv_sec++;
      deadline.tv_nsec -= 1000000000L;
    }
  }
  int rc;
  pthread_mutex_lock(&op->mu);
  while (!atomic_load_explicit(&op->done, memory_order_relaxed)) {
    if (timeout_ms < 0) {
      pthread_cond_wait(&op->cv, &op->mu);
    } else if (pthread_cond_timedwait(&op->cv, &op->mu, &deadline) == ETIMEDOUT &&
               !atomic_load_explicit(&op->done, memory_order_relaxed)) {
      pthread_mutex_unlock(&op->mu);
      return ORDO_E_TIMEOUT;
    }
  }
  rc = op->status;
  pthread_mutex_unlock(&op->mu);
  return rc;
}

int ordo_op_then(ordo_op *op, ordo_op_cb cb, void *userdata) {
  if (op == NULL || cb == NULL)
    return ORDO_E_INVAL;
  pthread_mutex_lock(&op->mu);
  if (op->cb_set) {
    pthread_mutex_unlock(&op->mu);
    return ORDO_E_STATE;
  }
  op->cb_set = 1;
  op->cb = cb;
  op->cb_ud = userdata;
  int done = atomic_load_explicit(&op->done, memory_order_relaxed);
  pthread_mutex_unlock(&op->mu);
  if (!done)
    return ORDO_OK; /* the finisher will deliver it */

  /* Finished before the callback was set: deliver it on a runtime thread,
   * holding the op and the context's live count as a finish would. */
  ordo_ctx *ctx = op->ctx;
  if (atomic_load(&ctx->joined))
    return ORDO_E_SHUTDOWN;
  ordo_op_retain(op);
  ordo__ctx_op_begin(ctx);
  op_post_callback(op);
  return ORDO_OK;
}

int ordo_op_fd(ordo_op *op) {
  if (op == NULL)
    return -ORDO_E_INVAL;
  pthread_mutex_lock(&op->mu);
  if (op->efd < 0) {
    int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fd < 0) {
      pthread_mutex_unlock(&op->mu);
      return -ORDO_E_SYSTEM;
    }
    op->efd = fd;
    if (atomic_load_explicit(&op->done, memory_order_relaxed))
      (void)eventfd_write(fd, 1);
  }
  int fd = op->efd;
  pthread_mutex_unlock(&op->mu);
  return fd;
}

int ordo_op_status(ordo_op *op) {
  if (op == NULL)
    return ORDO_E_INVAL;
  if (!atomic_load_explicit(&op->done, memory_order_acquire))
    return ORDO_E_PENDING;
  return op->status;
}

const char *ordo_op_message(ordo_op *op) {
  if (op == NULL || !atomic_load_explicit(&op->done, memory_order_acquire) ||
      op->message == NULL)
    return "";
  return op->message;
}

const char *ordo_op_result(ordo_op *op) {
  if (op == NULL || !atomic_load_explicit(&op->done, memory_order_acquire))
    return NULL;
  return op->result;
}

int ordo_op_result_bytes(ordo_op *op, const unsigned char **data, size_t *len) {
  if (op == NULL || data == NULL || len == NULL)
    return ORDO_E_INVAL;
  if (!atomic_load_explicit(&op->done, memory_order_acquire))
    return ORDO_E_PENDING;
  if (!op->has_bytes)
    return ORDO_E_NOT_FOUND;
  *data = op->bytes;
  *len = op->nbytes;
  return ORDO_OK;
}

/*
 * executor.c — a pool of threads draining one FIFO of tasks.
 *
 * Each class of a context has one executor (cheap, heavy, net, and a default
 * storage one); every opened database gets a serial executor of its own.
 * Tasks are intrusive (ordo__task lives inside the op or the module's
 * request), so queueing never allocates and a queued task can be unlinked in
 * O(1) when its op is cancelled.
 *
 * Which queue a task is on is recorded in task->queued_on, written only under
 * that executor's mu and read without it by the cancel path, which then
 * re-checks under the lock (see ordo__executor_remove_stage).
 */
#include "runtime/internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#if defined(__linux__)
#include <sys/syscall.h>
#endif

/* The context of the worker running on this thread; NULL elsewhere. */
static _Thread_local ordo_ctx *thread_ctx;

ordo_ctx *ordo__thread_ctx(void) { return thread_ctx; }

int ordo__on_runtime_thread(void) { return thread_ctx != NULL; }

typedef struct {
  ordo__executor *ex;
  unsigned index;
} worker_arg; /* heap-allocated per thread; the thread frees it */

static void list_init(ordo__task *head) { head->next = head->prev = head; }

static int list_empty(const ordo__task *head) { return head->next == head; }

static void list_unlink(ordo__task *t) {
  t->prev->next = t->next;
  t->next->prev = t->prev;
  t->next = t->prev = NULL;
}

static void list_push_tail(ordo__task *head, ordo__task *t) {
  t->prev = head->prev;
  t->next = head;
  head->prev->next = t;
  head->prev = t;
}

static void set_queued_on(ordo__task *t, ordo__executor *ex) {
  __atomic_store_n(&t->queued_on, ex, __ATOMIC_RELEASE);
}

/* Lower this thread's priority by nice steps below the one it inherited
 * (capped at 19). On Linux nice is per thread (per tid), which is what lets
 * heavy work yield the CPU to cheap work on a busy machine. Failure (a
 * sandbox forbidding it) only loses that preference. */
static void lower_priority(int nice) {
#if defined(__linux__)
  if (nice > 0) {
    id_t tid = (id_t)syscall(SYS_gettid);
    errno = 0;
    int base = getpriority(PRIO_PROCESS, tid);
    if (base == -1 && errno != 0)
      base = 0;
    int target = base + nice > 19 ? 19 : base + nice;
    (void)setpriority(PRIO_PROCESS, tid, target);
  }
#else
  (void)nice;
#endif
}

static void *worker_main(void *arg) {
  worker_arg wa = *(worker_arg *)arg;
  free(arg);
  ordo__executor *ex = wa.ex;
  thread_ctx = ex->ctx;
  lower_priority(ex->nice);

  pthread_mutex_lock(&ex->mu);
  for (;;) {
    while (list_empty(&ex->head) && !ex->stopping)
      pthread_cond_wait(&ex->cv, &ex->mu);
    if (list_empty(&ex->head))
      break; /* stopping and drained */
    ordo__task *t = ex->head.next;
    list_unlink(t);
    set_queued_on(t, NULL);
    ex->depth--;
    pthread_mutex_unlock(&ex->mu);

    ordo__class_metrics *m = ex->metrics;
    unsigned long long start = ordo__now_ns();
    atomic_fetch_sub_explicit(&m->queue_depth, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->busy, 1, memory_order_relaxed);
    ordo__hist_add(&m->wait, start - t->enqueued_ns);

    /* After fn returns t may be freed (its op released): read nothing of it. */
    t->fn(t);

    ordo__hist_add(&m->run, ordo__now_ns() - start);
    atomic_fetch_sub_explicit(&m->busy, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->completed, 1, memory_order_relaxed);

    pthread_mutex_lock(&ex->mu);
  }
  pthread_mutex_unlock(&ex->mu);
  thread_ctx = NULL;
  return NULL;
}

int ordo__executor_init(ordo__executor *ex, ordo_ctx *ctx, ordo_class cls,
                        const char *name, unsigned nthreads, unsigned limit,
                        int nice, ordo__class_metrics *metrics) {
  memset(ex, 0, sizeof(*ex));
  ex->ctx = ctx;
  ex->cls = cls;
  snprintf(ex->name, sizeof(ex->name), "%s", name);
  ex->limit = limit;
  ex->nice = nice;
  ex->nthreads = nthreads;
  ex->metrics = metrics;
  list_init(&ex->head);
  if (pthread_mutex_init(&ex->mu, NULL) != 0)
    abort(); /* cannot fail on Linux with default attributes */
  if (pthread_cond_init(&ex->cv, NULL) != 0)
    abort();
  ex->threads = calloc(nthreads, sizeof(*ex->threads));
  if (ex->threads == NULL)
    return ordo__set_last_error(ORDO_E_NOMEM, "no memory for %u %s threads",
                                nthreads, name);
  for (unsigned i = 0; i < nthreads; i++) {
    worker_arg *wa = malloc(sizeof(*wa));
    if (wa == NULL)
      return ordo__set_last_error(ORDO_E_NOMEM, "no memory for %s threads", name);
    wa->ex = ex;
    wa->index = i;
    int err = pthread_create(&ex->threads[i], NULL, worker_main, wa);
    if (err != 0) {
      free(wa);
      return ordo__set_last_error(ORDO_E_SYSTEM,
                                  "cannot start %s thread %u of %u: %s", name,
                                  i + 1, nthreads, strerror(err));
    }
    char tname[32]; /* the kernel keeps 15 chars; truncation is fine */
    snprintf(tname, sizeof(tname), "ordo-%.6s-%u", name, i % 1000);
    tname[15] = 0;
    (void)pthread_setname_np(ex->threads[i], tname); /* cosmetic only */
    ex->started++;
    atomic_fetch_add_explicit(&metrics->threads, 1, memory_order_relaxed);
  }
  return ORDO_OK;
}

void ordo__executor_join(ordo__executor *ex) {
  pthread_mutex_lock(&ex->mu);
  ex->stopping = 1;
  pthread_cond_broadcast(&ex->cv);
  pthread_mutex_unlock(&ex->mu);
  for (unsigned i = 0; i < ex->started; i++)
    pthread_join(ex->threads[i], NULL);
  atomic_fetch_sub_explicit(&ex->metrics->threads, ex->started,
                            memory_order_relaxed);
  ex->started = 0;
}

/* Frees what init allocated. The executor must have been joined (or never
 * started threads). */
void ordo__executor_destroy(ordo__executor *ex) {
  free(ex->threads);
  pthread_cond_destroy(&ex->cv);
  pthread_mutex_destroy(&ex->mu);
}

int ordo__executor_push(ordo__executor *ex, ordo__task *task, int admit) {
  pthread_mutex_lock(&ex->mu);
  if (ex->stopping) {
    pthread_mutex_unlock(&ex->mu);
    return ORDO_E_SHUTDOWN;
  }
  if (ex->closed && task->kind != ORDO__TASK_CALLBACK) {
    pthread_mutex_unlock(&ex->mu);
    return ORDO_E_STATE;
  }
  if (admit && ex->depth >= (long)ex->limit) {
    pthread_mutex_unlock(&ex->mu);
    atomic_fetch_add_explicit(&ex->metrics->rejected, 1, memory_order_relaxed);
    return ORDO_E_BUSY;
  }
  task->enqueued_ns = ordo__now_ns();
  list_push_tail(&ex->head, task);
  set_queued_on(task, ex);
  ex->depth++;
  atomic_fetch_add_explicit(&ex->metrics->queue_depth, 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&ex->metrics->submitted, 1, memory_order_relaxed);
  pthread_cond_signal(&ex->cv);
  pthread_mutex_unlock(&ex->mu);
  return ORDO_OK;
}

int ordo__executor_remove_stage(ordo__executor *ex, ordo__task *task) {
  int removed = 0;
  pthread_mutex_lock(&ex->mu);
  if (__atomic_load_n(&task->queued_on, __ATOMIC_ACQUIRE) == ex &&
      task->kind == ORDO__TASK_STAGE) {
    list_unlink(task);
    set_queued_on(task, NULL);
    ex->depth--;
    atomic_fetch_sub_explicit(&ex->metrics->queue_depth, 1, memory_order_relaxed);
    removed = 1;
  }
  pthread_mutex_unlock(&ex->mu);
  return removed;
}

void ordo__executor_drain_stages(ordo__executor *ex,
                                 void (*fn)(ordo__task *task)) {
  ordo__task taken;
  list_init(&taken);
  pthread_mutex_lock(&ex->mu);
  ordo__task *t = ex->head.next;
  while (t != &ex->head) {
    ordo__task *next = t->next;
    if (t->kind == ORDO__TASK_STAGE) {
      list_unlink(t);
      set_queued_on(t, NULL);
      ex->depth--;
      atomic_fetch_sub_explicit(&ex->metrics->queue_depth, 1,
                                memory_order_relaxed);
      list_push_tail(&taken, t);
    }
    t = next;
  }
  pthread_mutex_unlock(&ex->mu);
  /* Completing runs callbacks or posts them: never under ex->mu. */
  while (!list_empty(&taken)) {
    t = taken.next;
    list_unlink(t);
    fn(t);
  }
}

int ordo__executor_post(ordo__executor *ex, ordo__task *task) {
  if (ex == NULL || task == NULL || task->fn == NULL)
    return ORDO_E_INVAL;
  if (atomic_load(&ex->ctx->joined))
    return ORDO_E_SHUTDOWN;
  task->kind = ORDO__TASK_PLAIN;
  return ordo__executor_push(ex, task, 0);
}

ordo__executor *ordo__executor_of_class(ordo_ctx *ctx, ordo_class cls) {
  if (ctx == NULL || (unsigned)cls >= ORDO_CLASS_COUNT)
    return NULL;
  return ctx->cls_ex[cls];
}

int ordo__executor_open(ordo_ctx *ctx, const char *name, ordo__executor **out) {
  *out = NULL;
  if (atomic_load(&ctx->shutting_down))
    return ORDO_E_SHUTDOWN;
  if (ctx->cfg.single_executor) {
    *out = ctx->cls_ex[ORDO_CLASS_STORAGE];
    return ORDO_OK;
  }
  /* Reuse a parked executor: its thread is idle and its memory must outlive
   * any op that still points at it, so executors are never freed early. */
  pthread_mutex_lock(&ctx->mu);
  for (ordo__executor *ex = ctx->serials; ex != NULL; ex = ex->next) {
    pthread_mutex_lock(&ex->mu);
    int parked = ex->closed && list_empty(&ex->head);
    if (parked) {
      ex->closed = 0;
      snprintf(ex->name, sizeof(ex->name), "%s", name ? name : "storage");
    }
    pthread_mutex_unlock(&ex->mu);
    if (parked) {
      pthread_mutex_unlock(&ctx->mu);
      *out = ex;
      return ORDO_OK;
    }
  }
  ordo__executor *ex = malloc(sizeof(*ex));
  if (ex == NULL) {
    pthread_mutex_unlock(&ctx->mu);
    return ORDO_E_NOMEM;
  }
  int rc = ordo__executor_init(ex, ctx, ORDO_CLASS_STORAGE,
                               name ? name : "storage", 1, ctx->cfg.queue_limit,
                               0, &ctx->metrics[ORDO_CLASS_STORAGE]);
  if (rc != ORDO_OK) {
    ordo__executor_join(ex);
    ordo__executor_destroy(ex);
    free(ex);
    pthread_mutex_unlock(&ctx->mu);
    return rc;
  }
  ex->serial = 1;
  ex->next = ctx->serials;
  ctx->serials = ex;
  pthread_mutex_unlock(&ctx->mu);
  *out = ex;
  return ORDO_OK;
}

void ordo__executor_close(ordo__executor *ex) {
  if (ex == NULL || !ex->serial)
    return; /* shared executors (single mode) belong to the context */
  pthread_mutex_lock(&ex->mu);
  ex->closed = 1;
  pthread_mutex_unlock(&ex->mu);
}

/*
 * ctx.c — a context: its executors, its metrics, start-up and shutdown.
 *
 * The context struct is refcounted by the ops that point at it, so an op the
 * caller still holds after ordo_ctx_free can be read and released safely;
 * the executors and their threads, the expensive part, go in ordo_ctx_free.
 */
#include "runtime/internal.h"
#include "base/list.h"

#include <stdlib.h>
#include <string.h>

static const char *const class_names[ORDO_CLASS_COUNT] = {"cheap", "heavy",
                                                          "storage", "net"};

const char *ordo_class_name(ordo_class cls) {
  return (unsigned)cls < ORDO_CLASS_COUNT ? class_names[cls] : NULL;
}

void ordo__ctx_retain(ordo_ctx *ctx) {
  atomic_fetch_add_explicit(&ctx->refs, 1, memory_order_relaxed);
}

void ordo__ctx_release(ordo_ctx *ctx) {
  if (atomic_fetch_sub_explicit(&ctx->refs, 1, memory_order_acq_rel) != 1)
    return;
  pthread_cond_destroy(&ctx->cv);
  pthread_mutex_destroy(&ctx->mu);
  free(ctx);
}

void ordo__ctx_op_begin(ordo_ctx *ctx) { atomic_fetch_add(&ctx->live_ops, 1); }

void ordo__ctx_op_end(ordo_ctx *ctx) {
  /* seq_cst with the store of shutting_down in ordo_ctx_free: either we see
   * the flag and wake it, or it sees our decrement before it waits. */
  if (atomic_fetch_sub(&ctx->live_ops, 1) == 1 &&
      atomic_load(&ctx->shutting_down)) {
    pthread_mutex_lock(&ctx->mu);
    pthread_cond_broadcast(&ctx->cv);
    pthread_mutex_unlock(&ctx->mu);
  }
}

/* Join and free the executors this ctx created, and every serial one. */
static void executors_stop(ordo_ctx *ctx) {
  ordo__executor *ex = ctx->serials;
  while (ex != NULL) {
    ordo__executor *next = ex->next;
    ordo__executor_join(ex);
    ordo__executor_destroy(ex);
    free(ex);
    ex = next;
  }
  ctx->serials = NULL;
  /* Cheap last: it delivers the callbacks of ops the others finish. */
  static const ordo_class order[] = {ORDO_CLASS_HEAVY, ORDO_CLASS_NET,
                                     ORDO_CLASS_STORAGE, ORDO_CLASS_CHEAP};
  for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++)
    if (ctx->owned[order[i]] != NULL)
      ordo__executor_join(ctx->owned[order[i]]);
  for (size_t i = 0; i < ORDO_CLASS_COUNT; i++) {
    if (ctx->owned[i] != NULL) {
      ordo__executor_destroy(ctx->owned[i]);
      free(ctx->owned[i]);
      ctx->owned[i] = NULL;
    }
    ctx->cls_ex[i] = NULL;
  }
}

static int executor_add(ordo_ctx *ctx, ordo_class cls, unsigned threads,
                        int nice) {
  ordo__executor *ex = malloc(sizeof(*ex));
  if (ex == NULL)
    return ordo__set_last_error(ORDO_E_NOMEM, "no memory for the %s executor",
                                class_names[cls]);
  int rc = ordo__executor_init(ex, ctx, cls, class_names[cls], threads,
                               ctx->cfg.queue_limit, nice, &ctx->metrics[cls]);
  ctx->owned[cls] = ex; /* even half-made: executors_stop joins what started */
  ctx->cls_ex[cls] = ex;
  return rc;
}

ordo_ctx *ordo_ctx_new(const ordo_config *cfg) {
  ordo_config c;
  if (cfg != NULL) {
    c = *cfg;
  } else {
    ordo_config_init(&c);
    if (ordo_config_from_env(&c) != ORDO_OK)
      return NULL;
  }
  if (ordo_config_validate(&c) != ORDO_OK)
    return NULL;

  ordo_ctx *ctx = calloc(1, sizeof(*ctx));
  if (ctx == NULL) {
    ordo__set_last_error(ORDO_E_NOMEM, "no memory for a context");
    return NULL;
  }
  ctx->cfg = c;
  atomic_init(&ctx->refs, 1);
  if (pthread_mutex_init(&ctx->mu, NULL) != 0 ||
      pthread_cond_init(&ctx->cv, NULL) != 0)
    abort();

  int rc;
  if (c.single_executor) {
    /* The libindy model: one executor runs every class. */
    rc = executor_add(ctx, ORDO_CLASS_CHEAP, c.cheap_threads, 0);
    for (size_t i = 1; i < ORDO_CLASS_COUNT; i++)
      ctx->cls_ex[i] = ctx->cls_ex[ORDO_CLASS_CHEAP];
  } else {
    rc = executor_add(ctx, ORDO_CLASS_CHEAP, c.cheap_threads, 0);
    if (rc == ORDO_OK)
      rc = executor_add(ctx, ORDO_CLASS_HEAVY, c.heavy_threads, c.heavy_nice);
    /* The default storage executor, for work not tied to one database. */
    if (rc == ORDO_OK)
      rc = executor_add(ctx, ORDO_CLASS_STORAGE, 1, 0);
    if (rc == ORDO_OK)
      rc = executor_add(ctx, ORDO_CLASS_NET, c.net_threads, 0);
  }
  if (rc != ORDO_OK) {
    executors_stop(ctx);
    ordo__ctx_release(ctx);
    return NULL; /* the last error says which executor failed */
  }
  return ctx;
}

void ordo_ctx_free(ordo_ctx *ctx) {
  if (ctx == NULL)
    return;
  /* 1. Refuse new ops; running stages now see ordo_op_cancelled(). */
  atomic_store(&ctx->shutting_down, 1);

  /* 2. Queued stages will never run: finish them as canceled. Their
   * callbacks go to the cheap executor, which is still running. Serial
   * executors are only ever added at the head of the list, so walking from
   * the head read under the lock is safe. */
  for (size_t i = 0; i < ORDO_CLASS_COUNT; i++)
    if (ctx->owned[i] != NULL)
      ordo__executor_drain_stages(ctx->owned[i], ordo__op_cancel_task);
  pthread_mutex_lock(&ctx->mu);
  ordo__executor *serial = ctx->serials;
  pthread_mutex_unlock(&ctx->mu);
  for (; serial != NULL; serial = serial->next)
    ordo__executor_drain_stages(serial, ordo__op_cancel_task);

  /* 3. Wait until every op has finished and its callback has run. */
  pthread_mutex_lock(&ctx->mu);
  while (atomic_load(&ctx->live_ops) > 0)
    pthread_cond_wait(&ctx->cv, &ctx->mu);
  pthread_mutex_unlock(&ctx->mu);

  /* 4. Close the objects still open on the executors (journals the caller
   * did not close): their later close only frees them. Then let modules
   * close what they hold (databases), while the executors still run; in
   * reverse order of their numbering. */
  for (;;) {
    pthread_mutex_lock(&ctx->mu);
    ordo__ctx_closer *c = ctx->closers;
    if (c != NULL) {
      ORDO__LIST_UNLINK(ctx->closers, c);
      c->next = c->prev = c; /* taken: detach reports it closed */
    }
    pthread_mutex_unlock(&ctx->mu);
    if (c == NULL)
      break;
    c->close(c);
  }
  for (int m = ORDO__MODULE_COUNT - 1; m >= 0; m--) {
    if (ctx->module_data[m] != NULL && ctx->module_shutdown[m] != NULL)
      ctx->module_shutdown[m](ctx->module_data[m]);
    ctx->module_data[m] = NULL;
  }

  /* 5. Stop the threads (plain tasks still queued run first). */
  executors_stop(ctx);
  atomic_store(&ctx->joined, 1);
  ordo__ctx_release(ctx);
}

void *ordo__ctx_module(ordo_ctx *ctx, ordo__module m,
                       void *(*create)(ordo_ctx *ctx),
                       void (*shutdown)(void *data)) {
  if (ctx == NULL || (unsigned)m >= ORDO__MODULE_COUNT)
    return NULL;
  pthread_mutex_lock(&ctx->mu);
  void *data = ctx->module_data[m];
  if (data == NULL && create != NULL && !atomic_load(&ctx->shutting_down)) {
    data = create(ctx);
    ctx->module_data[m] = data;
    ctx->module_shutdown[m] = shutdown;
  }
  pthread_mutex_unlock(&ctx->mu);
  return data;
}

int ordo__ctx_closer_attach(ordo_ctx *ctx, ordo__ctx_closer *c) {
  int rc = ORDO_OK;
  pthread_mutex_lock(&ctx->mu);
  if (atomic_load(&ctx->shutting_down)) {
    rc = ORDO_E_SHUTDOWN;
  } else {
    ORDO__LIST_PUSH(ctx->closers, c);
    ordo__ctx_retain(ctx);
  }
  pthread_mutex_unlock(&ctx->mu);
  return rc;
}

int ordo__ctx_closer_detach(ordo_ctx *ctx, ordo__ctx_closer *c) {
  int attached;
  pthread_mutex_lock(&ctx->mu);
  attached = c->next != c; /* ordo_ctx_free marks what it took */
  if (attached)
    ORDO__LIST_UNLINK(ctx->closers, c);
  c->next = c->prev = NULL;
  pthread_mutex_unlock(&ctx->mu);
  ordo__ctx_release(ctx);
  return attached;
}

const ordo_config *ordo_ctx_config(const ordo_ctx *ctx) {
  return ctx != NULL ? &ctx->cfg : NULL;
}

char *ordo_ctx_metrics_json(ordo_ctx *ctx) {
  if (ctx == NULL)
    return NULL;
  return ordo__metrics_json(ctx->metrics, ORDO_CLASS_COUNT);
}

/*
 * finish.c — batches leaving the scheduler: a verdict (finish, finish_many
 * with its prefetch pipeline), the cascade of an INVALID to its
 * dependants, a cancel, and the expiry of batches whose dep was never
 * enqueued in time (queue_int.h for the design).
 */
#include "base/base.h"
#include "queue/queue_int.h"
#include "runtime/runtime.h"

/* Start loading what finishing b visits: each address's node, its
 * neighbours there and its index slot, and the batches it blocks. They are
 * independent cache misses; one after another they were most of a
 * finish's time at 100k queued.
 *
 * Always inlined: a function that only prefetches has no side effects, so
 * a call to it that GCC chose not to inline is a call it may delete, and
 * at -O3 it did (a drain ~10% slower at 100k queued, seen only by timing). */
#if defined(__GNUC__) || defined(__clang__)
__attribute__((always_inline))
#endif
static inline void finish_prefetch(const qbatch *b) {
  size_t i;
  for (i = 0; i < b->nfp; i++) {
    const qholder *h = &b->fp[i];
    ORDO__PREFETCH(h->node);
    if (h->next != NULL)
      ORDO__PREFETCH(h->next);
    if (h->prev != NULL)
      ORDO__PREFETCH(h->prev);
    if (h->node != NULL)
      ordo__q_flat_prefetch(b->svc, h->hash);
  }
  for (i = 0; i < b->nwaiters; i++)
    ORDO__PREFETCH(b->waiters[i]);
}

/* Why b goes INVALID in the cascade: "dep T1 is invalid", naming its first
 * invalid dep, for status and explain (owned by b, or ordo__q_dep_invalid_text
 * when there is no memory for it). */
char *ordo__q_dep_invalid_reason(const ordo_queue *q, const qbatch *b) {
  size_t k;
  for (k = 0; k < b->more->ndeps; k++) {
    const char *id = b->more->deps[k];
    const qbatch *dep = ordo__map_get(&q->batches, id);
    if (dep != NULL ? dep->state == ORDO_QUEUE_INVALID
                    : ordo__q_forgotten(q, id) == ORDO_QUEUE_INVALID) {
      size_t n = strlen(id) + 20;
      char *why = malloc(n);
      if (why == NULL)
        break;
      snprintf(why, n, "dep %s is invalid", id);
      return why;
    }
  }
  return (char *)ordo__q_dep_invalid_text;
}

/*
 * Finish b (SUBMITTED, or WAITING when the cascade reaches it, a cancel or
 * an expiry) and every dependant the cascade reaches, with a worklist
 * instead of recursion (dep chains may be long). reason is owned by the
 * batch from here. may_halt 0 (a cancel): no INVALID of it halts its
 * service.
 */
void ordo__q_finish_batches(ordo_queue *q, qbatch *b, ordo_queue_state outcome,
                           char *reason, int may_halt) {
  qbatch *work = NULL;
  size_t i;

  for (;;) {
    qservice *s = b->svc;

    if (b->state == ORDO_QUEUE_SUBMITTED) {
      s->in_flight--;
      q->in_flight--;
    } else {
      s->waiting--;
    }
    b->state = outcome;
    b->reason = reason;
    s->unfinished--;
    if (q->opt.on_finish != NULL)
      q->opt.on_finish(q->opt.hook_ud, b->id, outcome, reason);
    if (outcome == ORDO_QUEUE_COMMITTED) {
      s->committed++;
      q->committed++;
    } else {
      s->invalid++;
      q->invalid++;
      if (may_halt && s->on_invalid == ORDO_QUEUE_HALT && !s->halted) {
        s->halted = 1;
        s->halt_by = b;
      }
    }
    for (i = 0; i < b->nfp; i++)
      ordo__q_holder_unlink(q, &b->fp[i]);
    if (!q->opt.keep_payloads && b->payload != NULL) {
      free(b->payload);
      b->payload = NULL;
      b->payload_len = 0;
    }
    if (ordo__q_locks_serial(q)) {
      /* Leave the service's unfinished list; its head may go next. */
      if (b->more->sprev != NULL)
        b->more->sprev->more->snext = b->more->snext;
      else
        s->first = b->more->snext;
      if (b->more->snext != NULL)
        b->more->snext->more->sprev = b->more->sprev;
      else
        s->last = b->more->sprev;
      b->more->sprev = b->more->snext = NULL;
      if (s->first != NULL)
        ordo__q_try_ready(q, s->first);
    }
    for (i = 0; i < b->nwaiters; i++) {
      qbatch *w = b->waiters[i];
      w->refs--;
      if (w->state == ORDO_QUEUE_WAITING) {
        w->nblockers--;
        ordo__q_try_ready(q, w);
      }
    }
    for (i = 0; i < b->ndependants; i++) {
      qbatch *d = b->dependants[i];
      d->refs--;
      if (d->state != ORDO_QUEUE_WAITING || d->more->in_work)
        continue;
      if (outcome == ORDO_QUEUE_COMMITTED) {
        d->deps_pending--;
        ordo__q_try_ready(q, d);
      } else {
        d->more->in_work = 1;
        d->more->work = work;
        work = d;
      }
    }
    if (work == NULL)
      return;
    b = work;
    work = b->more->work;
    b->more->work = NULL;
    outcome = ORDO_QUEUE_INVALID;
    reason = ordo__q_dep_invalid_reason(q, b);
  }
}

/* ordo_queue_finish, the id's hash h given (any value when id is NULL). */
static int finish_one(ordo_queue *q, const char *id, size_t h,
                      ordo_queue_state outcome, const char *reason) {
  qbatch *b;
  char *why = NULL;

  if (q == NULL || (outcome != ORDO_QUEUE_COMMITTED &&
                    outcome != ORDO_QUEUE_INVALID))
    return ordo__set_last_error(ORDO_E_INVAL,
                                "finish: outcome must be COMMITTED or INVALID");
  if ((b = ordo__q_batch_find_h(q, id, h)) == NULL)
    return ordo__set_last_error(ORDO_E_NOT_FOUND, "finish: no batch '%s'",
                                id != NULL ? id : "(null)");
  if (b->state != ORDO_QUEUE_SUBMITTED)
    return ordo__set_last_error(ORDO_E_STATE,
                                "finish %s: batch is %s, not SUBMITTED", id,
                                ordo_queue_state_name(b->state));
  if (outcome == ORDO_QUEUE_INVALID &&
      (why = ordo__strdup(reason != NULL ? reason : "invalid")) == NULL)
    return ordo__set_last_error(ORDO_E_NOMEM, NULL);
  finish_prefetch(b);
  ordo__q_finish_batches(q, b, outcome, why, 1);
  return ORDO_OK;
}

int ordo_queue_finish(ordo_queue *q, const char *id, ordo_queue_state outcome,
                      const char *reason) {
  return finish_one(q, id, id != NULL ? ordo__hash_str(id) : 0, outcome,
                    reason);
}

/*
 * The pipeline of ordo_queue_finish_many: verdict i + 3k has its id's slot
 * loading, i + 2k its batch's first lines, i + k its holders, and i + 1 the
 * nodes, slots and waiters its finish visits, while verdict i finishes.
 * Every stage looks the id up again (cheap once the slot is in cache)
 * rather than keep a pointer: a hint must stay right whatever the earlier
 * verdicts do. FINISH_AHEAD (k) iterations of ~100 ns cover a miss.
 */
#define FINISH_AHEAD 3
#define FINISH_RING 16 /* > 3 * FINISH_AHEAD, a power of two */

/* The first stage: verdict j's id hashed, its slot loading. */
static void finish_hash(const ordo_queue *q, const ordo_queue_verdict *v,
                        size_t j, size_t *hashes) {
  if (v[j].id != NULL) {
    hashes[j % FINISH_RING] = ordo__hash_str(v[j].id);
    ordo__map_prefetch(&q->batches, hashes[j % FINISH_RING]);
  }
}

static inline const qbatch *finish_peek(const ordo_queue *q,
                                 const ordo_queue_verdict *v, size_t j,
                                 const size_t *hashes) {
  return v[j].id != NULL
             ? ordo__map_get_h(&q->batches, v[j].id, hashes[j % FINISH_RING])
             : NULL;
}

static void finish_stage(const ordo_queue *q, const ordo_queue_verdict *v,
                         size_t n, size_t i, size_t *hashes) {
  const qbatch *b;
  size_t j;

  if (q->batches.cap == 0)
    return;
  if ((j = i + 3 * FINISH_AHEAD) < n)
    finish_hash(q, v, j, hashes);
  if ((j = i + 2 * FINISH_AHEAD) < n &&
      (b = finish_peek(q, v, j, hashes)) != NULL) {
    ORDO__PREFETCH(b);
    ORDO__PREFETCH((const char *)b + 64);
    ORDO__PREFETCH((const char *)b + 128);
    ORDO__PREFETCH((const char *)b + 192);
  }
  if ((j = i + FINISH_AHEAD) < n &&
      (b = finish_peek(q, v, j, hashes)) != NULL && b->nfp > 0) {
    const char *p = (const char *)b->fp,
               *end = (const char *)(b->fp + b->nfp);
    for (; p < end; p += 64)
      ORDO__PREFETCH(p);
  }
  if ((j = i + 1) < n && (b = finish_peek(q, v, j, hashes)) != NULL &&
      b->state == ORDO_QUEUE_SUBMITTED)
    finish_prefetch(b);
}

int ordo_queue_finish_many(ordo_queue *q, const ordo_queue_verdict *v,
                           size_t n, size_t *done) {
  size_t hashes[FINISH_RING], i;
  int rc = ORDO_OK;

  if (done != NULL)
    *done = 0;
  if (q == NULL || (v == NULL && n > 0))
    return ordo__set_last_error(ORDO_E_INVAL, "finish: NULL argument");
  /* The stages for the first verdicts, as if i had run from -3k. */
  for (i = 0; i < 3 * FINISH_AHEAD && i < n; i++)
    finish_hash(q, v, i, hashes);
  for (i = 0; i < n; i++) {
    finish_stage(q, v, n, i, hashes);
    if ((rc = finish_one(q, v[i].id, v[i].id != NULL ? hashes[i % FINISH_RING]
                                                     : 0,
                         v[i].outcome, v[i].reason)) != ORDO_OK)
      break;
    if (done != NULL)
      *done = i + 1;
  }
  return rc;
}

/* ---- cancel and expiry ------------------------------------------------ */

/* End b (QUEUED or WAITING: never sent) INVALID with reason (copied), its
 * dependants cascading. */
static int end_unsent(ordo_queue *q, const char *id, const char *reason,
                      int may_halt, const char *what) {
  qbatch *b;
  qservice *s;
  char *why;
  if (q == NULL || id == NULL || reason == NULL)
    return ordo__set_last_error(ORDO_E_INVAL, "%s: NULL argument", what);
  if ((b = ordo__q_batch_find(q, id)) == NULL)
    return ordo__set_last_error(ORDO_E_NOT_FOUND, "%s: no batch '%s'", what,
                                id);
  if (b->state == ORDO_QUEUE_SUBMITTED)
    return ordo__set_last_error(ORDO_E_STATE, "%s %s: the batch is SUBMITTED: "
                                "the ledger has it and its verdict will come",
                                what, id);
  if (b->state != ORDO_QUEUE_QUEUED && b->state != ORDO_QUEUE_WAITING)
    return ordo__set_last_error(ORDO_E_STATE, "%s %s: the batch is already %s",
                                what, id, ordo_queue_state_name(b->state));
  if ((why = ordo__strdup(reason)) == NULL)
    return ordo__set_last_error(ORDO_E_NOMEM, NULL);
  s = b->svc;
  if (b->state == ORDO_QUEUE_QUEUED) {
    /* Out of the ready set; finish_batches then ends a WAITING batch. */
    if (b->held) {
      s->held_ready--;
    } else {
      s->nstale++; /* its heap entry surfaces later and is dropped */
      if (ordo__q_heap_ready(s) == 0 && s->in_ring)
        ordo__q_ring_leave(q, s);
    }
    b->state = ORDO_QUEUE_WAITING;
    s->waiting++;
  }
  finish_prefetch(b);
  ordo__q_finish_batches(q, b, ORDO_QUEUE_INVALID, why, may_halt);
  return ORDO_OK;
}

int ordo_queue_cancel(ordo_queue *q, const char *id, const char *reason) {
  return end_unsent(q, id, reason != NULL ? reason : "cancelled", 0,
                    "cancel");
}

int ordo_queue_expire_id(ordo_queue *q, const char *id, const char *reason) {
  return end_unsent(q, id, reason != NULL ? reason : "dep timeout", 1,
                    "expire");
}

/* Drop the top of s's dep-timeout heap. */
static void dt_pop(qservice *s) {
  qheap_ent last = s->dt[--s->ndt];
  s->dt[0].b->indt = 0;
  if (s->ndt > 0)
    ordo__q_heap_down(s->dt, s->ndt, 0, last);
}

/* The first dep of b that was never enqueued, or NULL. */
static const char *dep_missing_id(const ordo_queue *q, const qbatch *b) {
  size_t k;
  for (k = 0; k < b->more->ndeps; k++) {
    const qbatch *d = ordo__map_get(&q->batches, b->more->deps[k]);
    if (d != NULL && !d->enqueued)
      return b->more->deps[k];
  }
  return NULL;
}

int ordo_queue_expire(ordo_queue *q, uint64_t now_ms, ordo_queue_verdict *out,
                      size_t max, size_t *n) {
  size_t i, k = 0;
  if (n != NULL)
    *n = 0;
  if (q == NULL || n == NULL || (out == NULL && max > 0))
    return ordo__set_last_error(ORDO_E_INVAL, "expire: NULL argument");
  for (i = 0; i < q->ntimed && k < max; i++) {
    qservice *s = q->timed[i];
    uint64_t t = s->dep_timeout_ms;
    while (t > 0 && s->ndt > 0 && k < max &&
           s->dt[0].seq <= now_ms && now_ms - s->dt[0].seq >= t) {
      qbatch *b = s->dt[0].b;
      const char *dep;
      char *why;
      size_t len;
      dt_pop(s);
      if (b->state != ORDO_QUEUE_WAITING ||
          (dep = dep_missing_id(q, b)) == NULL)
        continue; /* no longer waiting on a missing dep: a dead entry */
      len = strlen(dep) + 64;
      if ((why = malloc(len)) == NULL) {
        qheap_ent e; /* back where it was: room is there */
        e.seq = b->more->t_enq_ms;
        e.b = b;
        b->indt = 1;
        ordo__q_heap_up(s->dt, s->ndt++, e);
        *n = k;
        return ordo__set_last_error(ORDO_E_NOMEM, NULL);
      }
      snprintf(why, len, "dep %s was not enqueued within %g s", dep,
               (double)t / 1000.0);
      finish_prefetch(b);
      ordo__q_finish_batches(q, b, ORDO_QUEUE_INVALID, why, 1);
      out[k].id = b->id;
      out[k].outcome = ORDO_QUEUE_INVALID;
      out[k].reason = b->reason;
      k++;
    }
  }
  *n = k;
  return ORDO_OK;
}

int ordo_queue_next_expiry(const ordo_queue *q, uint64_t *when_ms) {
  size_t i;
  int any = 0;
  uint64_t best = 0;
  if (q == NULL)
    return 0;
  for (i = 0; i < q->ntimed; i++) {
    const qservice *s = q->timed[i];
    if (s->dep_timeout_ms > 0 && s->ndt > 0 &&
        (!any || s->dt[0].seq + s->dep_timeout_ms < best)) {
      best = s->dt[0].seq + s->dep_timeout_ms;
      any = 1;
    }
  }
  if (any && when_ms != NULL)
    *when_ms = best;
  return any;
}


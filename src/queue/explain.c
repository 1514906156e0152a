/*
 * explain.c — ordo_queue_explain: why a batch waits, in words, from the
 * same lock table and deps that decide it (queue_int.h for the design).
 */
#include "base/base.h"
#include "queue/queue_int.h"
#include "runtime/runtime.h"

#include <stdarg.h>
#include <stdio.h>

/* A growable string for explanations. */
typedef struct sbuf {
  char *p;
  size_t len, cap;
  int failed;
} sbuf;

static void sb_printf(sbuf *s, const char *fmt, ...) ORDO__PRINTF(2, 3);

static void sb_printf(sbuf *s, const char *fmt, ...) {
  va_list ap;
  int n;

  if (s->failed)
    return;
  va_start(ap, fmt);
  n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0 ||
      ordo__q_reserve((void **)&s->p, &s->cap, s->len + (size_t)n + 1, 1)) {
    s->failed = 1;
    return;
  }
  va_start(ap, fmt);
  vsnprintf(s->p + s->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  s->len += (size_t)n;
}

/* The earlier holders that conflict with one address of the batch. */
typedef struct explain_acc {
  const qbatch *b;
  int write;
  const qbatch *w[64], *r[64];
  size_t nw, nr, more;
} explain_acc;

/* Add b to v[0..*n) unless it is there; past 64, count it in *more. */
static void explain_add(const qbatch **v, size_t *n, size_t *more,
                        const qbatch *b) {
  size_t i;
  for (i = 0; i < *n && v[i] != b; i++)
    ;
  if (i < *n)
    return;
  if (*n < 64)
    v[(*n)++] = b;
  else
    (*more)++;
}

static void explain_holder(const qholder *h, void *arg) {
  explain_acc *a = arg;
  if (h->b->seq >= a->b->seq || !(h->write || a->write))
    return;
  if (h->write)
    explain_add(a->w, &a->nw, &a->more, h->b);
  else
    explain_add(a->r, &a->nr, &a->more, h->b);
}

static void explain_list(sbuf *sb, const qbatch *const *v, size_t n,
                         const char *one, const char *many) {
  size_t i;
  for (i = 0; i < n; i++)
    sb_printf(sb, "%s%s", i ? ", " : "", v[i]->id);
  sb_printf(sb, " %s", n == 1 ? one : many);
}

char *ordo_queue_explain(const ordo_queue *q, const char *id) {
  sbuf sb = {0};
  const qbatch *b;
  size_t i, parts = 0;

  if (q == NULL || (b = ordo__q_batch_find(q, id)) == NULL) {
    ordo__set_last_error(ORDO_E_NOT_FOUND, "no batch '%s'",
                         id != NULL ? id : "(null)");
    return NULL;
  }
  switch (b->state) {
  case ORDO_QUEUE_QUEUED:
    sb_printf(&sb, "%s is ready", b->id);
    if (b->held)
      sb_printf(&sb, "; held until its journal record is durable");
    if (b->svc->halted)
      sb_printf(&sb, "; service %s is halted (%s invalid: %s)", b->svc->name,
                b->svc->halt_by->id, b->svc->halt_by->reason);
    break;
  case ORDO_QUEUE_SUBMITTED:
  case ORDO_QUEUE_COMMITTED:
  case ORDO_QUEUE_UNKNOWN: /* not a scheduler state */
    sb_printf(&sb, "%s is %s", b->id,
              b->state == ORDO_QUEUE_SUBMITTED ? "submitted" : "committed");
    break;
  case ORDO_QUEUE_INVALID:
    sb_printf(&sb, "%s is invalid: %s", b->id, b->reason);
    break;
  case ORDO_QUEUE_WAITING:
    sb_printf(&sb, "%s waits on ", b->id);
    for (i = 0; i < b->more->ndeps; i++) {
      const qbatch *d = ordo__map_get(&q->batches, b->more->deps[i]);
      if (d != NULL
              ? d->state == ORDO_QUEUE_COMMITTED
              : ordo__q_forgotten(q, b->more->deps[i]) == ORDO_QUEUE_COMMITTED)
        continue;
      sb_printf(&sb, "%sdep %s (%s)", parts++ ? ", " : "", b->more->deps[i],
                d == NULL || !d->enqueued
                    ? "never enqueued"
                    : ordo_queue_state_name(d->state));
    }
    if (ordo__q_locks_serial(q) && b->svc->first != b) {
      size_t n = 0;
      const qbatch *e;
      for (e = b->svc->first; e != b; e = e->more->snext)
        n++;
      sb_printf(&sb, "%s%s (serial: %zu earlier unfinished in %s)",
                parts++ ? ", " : "", b->svc->first->id, n, b->svc->name);
    }
    if (ordo__q_locks_trie(q)) {
      for (i = 0; i < b->nfp; i++) {
        explain_acc acc;
        memset(&acc, 0, sizeof(acc));
        acc.b = b;
        acc.write = b->fp[i].write;
        ordo__q_locks_overlapping(b->svc, &b->fp[i], !acc.write,
                         explain_holder, &acc);
        if (acc.nw + acc.nr == 0)
          continue;
        sb_printf(&sb, "%s%.*s (", parts++ ? ", " : "", (int)b->fp[i].len,
                  b->fp[i].node->key);
        if (acc.nw)
          explain_list(&sb, acc.w, acc.nw, "writes", "write");
        if (acc.nr) {
          if (acc.nw)
            sb_printf(&sb, "; ");
          explain_list(&sb, acc.r, acc.nr, "reads", "read");
        }
        if (acc.more)
          sb_printf(&sb, "; %zu more", acc.more);
        sb_printf(&sb, ")");
      }
    }
    if (parts == 0)
      sb_printf(&sb, "nothing (ready at the next take)");
    break;
  }
  if (sb.failed) {
    free(sb.p);
    ordo__set_last_error(ORDO_E_NOMEM, NULL);
    return NULL;
  }
  return sb.p;
}


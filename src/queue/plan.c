/*
 * plan.c — the model ledger behind `ordo plan` (whose command line and
 * printing are in src/cli/plan.c).
 *
 * The model: every batch submitted in a round finishes at the end of that
 * round, COMMITTED, or INVALID where its line says "outcome":"invalid". It
 * runs the real scheduler (queue.c), so what `ordo plan` prints is what the
 * queuer would do against a ledger with one commit window per round.
 */
#include "base/base.h"
#include "queue/queue.h"
#include "runtime/runtime.h"

#include <stdlib.h>
#include <string.h>

void ordo_plan_free(ordo_plan *p) {
  if (p == NULL)
    return;
  /* explain, when made, has nrounds entries (NULL where none waited). */
  if (p->explain != NULL)
    ordo__free_strv(p->explain, p->nrounds);
  ORDO__FREE_ALL(p->round_start, p->order, p->invalid, p->stuck, p);
}

/* The explanations of every WAITING batch, one per line, or NULL if none. */
static int explain_round(const ordo_queue *q, const ordo_workload *w,
                         char **out) {
  char *text = NULL;
  size_t len = 0, i;

  *out = NULL;
  for (i = 0; i < w->nbatches; i++) {
    ordo_queue_state st;
    char *e, *p;
    size_t n;
    if (ordo_queue_batch_status(q, w->batches[i].id, &st, NULL) ||
        st != ORDO_QUEUE_WAITING)
      continue;
    if ((e = ordo_queue_explain(q, w->batches[i].id)) == NULL) {
      free(text);
      return ORDO_E_NOMEM;
    }
    n = strlen(e);
    if ((p = realloc(text, len + n + 2)) == NULL) {
      free(e);
      free(text);
      return ordo__set_last_error(ORDO_E_NOMEM, NULL);
    }
    text = p;
    memcpy(text + len, e, n);
    len += n;
    text[len++] = '\n';
    text[len] = '\0';
    free(e);
  }
  *out = text;
  return ORDO_OK;
}

int ordo_plan_run(const ordo_workload *w, const ordo_queue_options *opt,
                  int explain, ordo_plan **out) {
  ordo_queue *q = NULL;
  ordo_queue_item *items = NULL;
  ordo_plan *p;
  size_t i, taken = 0, n;
  int rc;

  if (w == NULL || out == NULL)
    return ordo__set_last_error(ORDO_E_INVAL, "plan: NULL argument");
  *out = NULL;
  if ((p = calloc(1, sizeof(*p))) == NULL)
    return ordo__set_last_error(ORDO_E_NOMEM, NULL);
  /* Each batch is taken at most once, so nbatches rounds at most. */
  n = w->nbatches;
  if ((p->round_start = calloc(n + 2, sizeof(size_t))) == NULL ||
      (p->order = calloc(n + 1, sizeof(size_t))) == NULL ||
      (p->invalid = calloc(n + 1, sizeof(size_t))) == NULL ||
      (p->stuck = calloc(n + 1, sizeof(size_t))) == NULL ||
      (explain && (p->explain = calloc(n + 1, sizeof(char *))) == NULL) ||
      (items = calloc(n + 1, sizeof(*items))) == NULL) {
    rc = ordo__set_last_error(ORDO_E_NOMEM, NULL);
    goto done;
  }
  if ((rc = ordo_queue_new(opt, &q)))
    goto done;
  for (i = 0; i < n; i++) {
    const ordo_workload_batch *b = &w->batches[i];
    ordo_queue_batch_spec sp = {
        .id = b->id,
        .service = b->service,
        .reads = (const char *const *)b->reads,
        .nreads = b->nreads,
        .writes = (const char *const *)b->writes,
        .nwrites = b->nwrites,
        .deps = (const char *const *)b->deps,
        .ndeps = b->ndeps,
        .payload = &i, /* the payload is the batch's index */
        .payload_len = sizeof(i),
    };
    if ((rc = ordo_queue_enqueue(q, &sp, NULL)))
      goto done;
  }
  for (;;) {
    size_t k, got;
    if ((rc = ordo_queue_take(q, items, n, &got)))
      goto done;
    if (got == 0)
      break; /* nothing in flight (all finished below) and nothing ready */
    for (k = 0; k < got; k++) {
      size_t idx;
      memcpy(&idx, items[k].payload, sizeof(idx));
      p->order[taken++] = idx;
    }
    p->nrounds++;
    p->round_start[p->nrounds] = taken;
    if (explain && (rc = explain_round(q, w, &p->explain[p->nrounds - 1])))
      goto done;
    for (k = 0; k < got; k++) {
      size_t idx;
      memcpy(&idx, items[k].payload, sizeof(idx));
      rc = w->batches[idx].invalid
               ? ordo_queue_finish(q, items[k].id, ORDO_QUEUE_INVALID,
                                   "outcome: invalid")
               : ordo_queue_finish(q, items[k].id, ORDO_QUEUE_COMMITTED, NULL);
      if (rc)
        goto done;
    }
  }
  for (i = 0; i < n; i++) {
    ordo_queue_state st;
    if ((rc = ordo_queue_batch_status(q, w->batches[i].id, &st, NULL)))
      goto done;
    if (st == ORDO_QUEUE_INVALID)
      p->invalid[p->ninvalid++] = i;
    else if (st != ORDO_QUEUE_COMMITTED)
      p->stuck[p->nstuck++] = i;
  }
  rc = ORDO_OK;
done:
  free(items);
  ordo_queue_free(q);
  if (rc) {
    ordo_plan_free(p);
    return rc;
  }
  *out = p;
  return ORDO_OK;
}

/*
 * forget.c — what leaves memory, and what a checkpoint saves of the rest:
 * finished batches forgotten by their owner (the journal, once they are
 * in a checkpoint), and the snapshot of every batch for the checkpoint
 * (queue_int.h for the design).
 */
#include "base/base.h"
#include "queue/queue_int.h"
#include "runtime/runtime.h"

/* ---- forgetting finished batches -------------------------------------- */

/* Drop the entries of dying batches from s's ready heap (where they are
 * stale: counted in nstale) and from its timeout heap, then restore both
 * heaps. */
static void heaps_purge(qservice *s) {
  size_t i, k = 0;
  for (i = 0; i < s->nheap; i++)
    if (s->heap[i].b->dying) {
      s->heap[i].b->inheap = 0;
      s->nstale--;
    } else {
      s->heap[k++] = s->heap[i];
    }
  s->nheap = k;
  ordo__q_heapify(s->heap, k);
  for (i = 0, k = 0; i < s->ndt; i++)
    if (s->dt[i].b->dying)
      s->dt[i].b->indt = 0;
    else
      s->dt[k++] = s->dt[i];
  s->ndt = k;
  ordo__q_heapify(s->dt, k);
}

void ordo_queue_forget(ordo_queue *q, const char *const *ids, size_t n,
                       unsigned char *kept, size_t *forgotten_n) {
  qbatch **dying = NULL;
  qservice **purge = NULL;
  size_t i, nd = 0, np = 0;

  if (forgotten_n != NULL)
    *forgotten_n = 0;
  if (kept != NULL)
    memset(kept, 0, n);
  if (q == NULL || ids == NULL || n == 0)
    return;
  if ((dying = malloc(n * sizeof(*dying))) == NULL ||
      (purge = malloc(n * sizeof(*purge))) == NULL) {
    free(dying);
    if (kept != NULL)
      memset(kept, 1, n); /* nothing went: ask again later */
    return;
  }
  for (i = 0; i < n; i++) {
    qbatch *b = ids[i] != NULL ? ordo__q_batch_find(q, ids[i]) : NULL;
    if (b == NULL || b->dying)
      continue;
    if ((b->state != ORDO_QUEUE_COMMITTED &&
         b->state != ORDO_QUEUE_INVALID) ||
        b->refs > 0 || b->svc->halt_by == b) {
      if (kept != NULL)
        kept[i] = 1;
      continue;
    }
    b->dying = 1;
    dying[nd++] = b;
    /* Entries in its service's heaps would point at freed memory. */
    if ((b->inheap || b->indt) && !b->svc->in_purge) {
      b->svc->in_purge = 1;
      purge[np++] = b->svc;
    }
  }
  for (i = 0; i < np; i++) {
    heaps_purge(purge[i]);
    purge[i]->in_purge = 0;
  }
  for (i = 0; i < nd; i++) {
    qbatch *b = dying[i];
    ordo__map_entry *e =
        ordo__map_slot(&q->batches, b->id, ordo__hash_str(b->id));
    ordo__map_del(&q->batches, e);
    if (b->ledger) {
      const char *lid = ordo__q_batch_ledger(b)->lid;
      ordo__map_del(&q->ledgers,
                    ordo__map_slot(&q->ledgers, lid, ordo__hash_str(lid)));
    }
    ordo__q_batch_free(q, b);
  }
  if (nd > 0) {
    ordo__map_shrink(&q->batches);
    ordo__map_shrink(&q->ledgers);
    ordo__qpool_trim(&q->pool);
  }
  if (forgotten_n != NULL)
    *forgotten_n = nd;
  free(dying);
  free(purge);
}

/* ---- checkpoints ------------------------------------------------------ */

static int saved_cmp(const void *a, const void *b) {
  const qbatch *x = *(const qbatch *const *)a, *y = *(const qbatch *const *)b;
  return x->seq < y->seq ? -1 : x->seq > y->seq;
}

int ordo_queue_snapshot(const ordo_queue *q,
                        int (*fn)(const ordo_queue_saved *b, void *ud),
                        void *ud) {
  qbatch **v = NULL;
  size_t n = 0, i, k, cap = 0;
  const char **addrs = NULL;
  uint32_t *lens = NULL;
  unsigned char *writes = NULL;
  size_t capa = 0;
  int rc = ORDO_OK;

  if (q == NULL || fn == NULL)
    return ordo__set_last_error(ORDO_E_INVAL, "snapshot: NULL argument");
  for (i = 0; i < q->batches.cap; i++) {
    qbatch *b = q->batches.e[i].val;
    if (b == NULL || !b->enqueued)
      continue;
    if (n == cap && ordo__q_reserve((void **)&v, &cap, n + 1, sizeof(*v))) {
      free(v);
      return ordo__set_last_error(ORDO_E_NOMEM, NULL);
    }
    v[n++] = b;
  }
  if (n > 0)
    qsort(v, n, sizeof(*v), saved_cmp);
  for (i = 0; i < n && rc == ORDO_OK; i++) {
    const qbatch *b = v[i];
    ordo_queue_saved sv;
    memset(&sv, 0, sizeof sv);
    if (b->nfp > capa) {
      size_t nc = b->nfp;
      const char **na = realloc(addrs, nc * sizeof(*na));
      uint32_t *nl = na != NULL ? realloc(lens, nc * sizeof(*nl)) : NULL;
      unsigned char *nw = nl != NULL ? realloc(writes, nc) : NULL;
      if (na != NULL)
        addrs = na;
      if (nl != NULL)
        lens = nl;
      if (nw == NULL) {
        rc = ordo__set_last_error(ORDO_E_NOMEM, NULL);
        break;
      }
      writes = nw;
      capa = nc;
    }
    sv.id = b->id;
    sv.service = b->svc->name;
    sv.ledger_id = b->ledger ? ordo__q_batch_ledger(b)->lid : NULL;
    sv.seq = b->seq;
    sv.time_ms = b->more->t_enq_ms;
    sv.finish_ms = b->more->t_fin_ms;
    sv.state = (ordo_queue_state)b->state;
    sv.reason = b->state == ORDO_QUEUE_INVALID ? b->reason : NULL;
    sv.halts = b->svc->halt_by == b;
    sv.held = b->held;
    sv.deps = (const char *const *)b->more->deps;
    sv.ndeps = b->more->ndeps;
    /* A finished batch's holders are unlinked: its addresses are gone,
     * and it holds no lock. */
    for (k = 0; k < b->nfp; k++)
      if (b->fp[k].node != NULL) {
        addrs[sv.naddrs] = b->fp[k].node->key;
        lens[sv.naddrs] = b->fp[k].len;
        writes[sv.naddrs] = b->fp[k].write;
        sv.naddrs++;
      }
    sv.addrs = addrs;
    sv.lens = lens;
    sv.writes = writes;
    sv.payload = b->payload;
    sv.payload_len = b->payload_len;
    sv.digest = b->digest ? ordo__q_batch_digest(b) : NULL;
    rc = fn(&sv, ud);
  }
  free(v);
  free(addrs);
  free(lens);
  free(writes);
  return rc;
}


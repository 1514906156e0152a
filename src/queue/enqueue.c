/*
 * enqueue.c — batches entering the scheduler: one (ordo_queue_enqueue:
 * reserve everything, then commit with no failure path), many at once
 * (all checked first), and a finished one restored from a checkpoint
 * (queue_int.h for the design).
 */
#include "base/base.h"
#include "queue/queue_int.h"
#include "runtime/runtime.h"

/* Footprint entries, sorted by address then write first, for dedup. */
typedef struct fp_in {
  const char *addr;
  size_t len;
  size_t hash; /* set once deduplicated */
  int write;
} fp_in;

static int fp_cmp(const void *a, const void *b) {
  const fp_in *x = a, *y = b;
  size_t n = x->len < y->len ? x->len : y->len;
  int c = memcmp(x->addr, y->addr, n);
  if (c != 0)
    return c;
  if (x->len != y->len)
    return x->len < y->len ? -1 : 1;
  return y->write - x->write;
}

/* The batch's footprint, cut to the granularity, sorted and deduplicated
 * (a write wins over a read of the same address) into in[0..return). */
static size_t footprint_sort(const ordo_queue *q,
                             const ordo_queue_batch_spec *sp, fp_in *in) {
  size_t n = sp->nreads + sp->nwrites, i, k = 0;
  for (i = 0; i < n; i++) {
    int w = i >= sp->nreads;
    in[i].addr = w ? sp->writes[i - sp->nreads] : sp->reads[i];
    in[i].len = strlen(in[i].addr);
    in[i].write = w;
    if (q->opt.granularity > 0 && in[i].len > (size_t)q->opt.granularity)
      in[i].len = (size_t)q->opt.granularity;
  }
  if (n <= 8) {
    /* Insertion sort: footprints are small, and qsort's setup costs more. */
    for (i = 1; i < n; i++) {
      fp_in x = in[i];
      size_t j = i;
      while (j > 0 && fp_cmp(&in[j - 1], &x) > 0) {
        in[j] = in[j - 1];
        j--;
      }
      in[j] = x;
    }
  } else {
    qsort(in, n, sizeof(*in), fp_cmp);
  }
  for (i = 0; i < n; i++) {
    if (k > 0 && in[k - 1].len == in[i].len &&
        memcmp(in[k - 1].addr, in[i].addr, in[i].len) == 0)
      continue; /* the write, if any, sorted first */
    in[k] = in[i];
    in[k].hash = ordo__hash_bytes(in[k].addr, in[k].len);
    k++;
  }
  return k;
}

/*
 * A new batch in one allocation: the struct, its footprint holders, their
 * addresses, its id and its payload. Why one block: an enqueue used to make
 * a dozen small allocations, and malloc was a third of the scheduler's
 * time at 100k queued batches.
 */
static qbatch *batch_alloc(ordo_queue *q, const ordo_queue_batch_spec *sp,
                           const fp_in *in, size_t nfp) {
  size_t idlen = strlen(sp->id) + 1, size, i, lidlen = 0;
  /* The id right after the struct, where a finish's id compare finds it
   * beside the fields it reads next; the holders after it, aligned. */
  size_t idpad = (idlen + _Alignof(qholder) - 1) & ~(_Alignof(qholder) - 1);
  qbatch *b;
  char *p;
  void *payload = NULL;

  /* The payload apart, from malloc: a finish gives it back, and the
   * process can return it to the system (the pool keeps freed blocks for
   * itself, which suits the few bytes every batch keeps, not payloads). A
   * ledger id's map entry and text after qbatch_more (its alignment serves
   * qledger). */
  size = sizeof(qbatch) + idpad + nfp * sizeof(qholder) + sizeof(qbatch_more);
  if (sp->ledger_id != NULL) {
    lidlen = strlen(sp->ledger_id) + 1;
    size += sizeof(qledger) + lidlen;
  }
  if (sp->digest != NULL)
    size += ORDO_QUEUE_DIGEST_BYTES; /* last in the block (batch_digest) */
  if ((b = ordo__qpool_alloc(&q->pool, size)) == NULL)
    return NULL;
  if (sp->payload_len > 0 && (payload = malloc(sp->payload_len)) == NULL) {
    ordo__qpool_free(&q->pool, b, size);
    return NULL;
  }
  /* Zero the struct and the holders; the bytes after are copied over. */
  memset(b, 0, sizeof(qbatch));
  b->block = 1;
  b->id = (char *)(b + 1);
  memcpy(b->id, sp->id, idlen);
  b->fp = nfp > 0 ? (qholder *)(b->id + idpad) : NULL;
  b->nfp = (uint32_t)nfp;
  if (nfp > 0)
    memset(b->fp, 0, nfp * sizeof(qholder));
  p = (char *)(b->id + idpad) + nfp * sizeof(qholder);
  b->more = (qbatch_more *)p; /* qholder's alignment serves it too */
  memset(b->more, 0, sizeof(*b->more));
  b->more->size = size;
  if (lidlen > 0) {
    qledger *ql = (qledger *)(b->more + 1);
    ql->lid = (char *)(ql + 1);
    memcpy(ql->lid, sp->ledger_id, lidlen);
    ql->b = b;
    b->ledger = 1;
  }
  if (sp->digest != NULL) {
    memcpy((char *)b + size - ORDO_QUEUE_DIGEST_BYTES, sp->digest,
           ORDO_QUEUE_DIGEST_BYTES);
    b->digest = 1;
  }
  for (i = 0; i < nfp; i++) {
    qholder *h = &b->fp[i];
    h->len = (uint32_t)in[i].len;
    h->hash = in[i].hash;
    h->write = in[i].write;
    h->b = b;
  }
  if (sp->payload_len > 0) {
    b->payload = payload;
    memcpy(payload, sp->payload, sp->payload_len);
    b->payload_len = sp->payload_len;
  }
  return b;
}

/* ---- dep timeouts: the per-service heap by enqueue time ---------------- */

/* Drop the entries of batches no longer waiting on a dep, once they are
 * over half of the heap (each live entry is a WAITING batch of s): the
 * heap stays within twice the waiting batches at amortized O(1). Changes
 * nothing a caller sees. */
static void dt_compact(qservice *s) {
  size_t i, k = 0;
  if (s->ndt < 64 || s->ndt <= 2 * s->waiting)
    return;
  for (i = 0; i < s->ndt; i++)
    if (s->dt[i].b->state == ORDO_QUEUE_WAITING &&
        s->dt[i].b->deps_pending > 0)
      s->dt[k++] = s->dt[i];
    else
      s->dt[i].b->indt = 0;
  s->ndt = k;
  ordo__q_heapify(s->dt, k);
}

/* Collecting the blockers of a new batch. */
typedef struct blockers {
  qbatch **v; /* small at first; on the heap beyond it */
  qbatch *small[16];
  size_t n, cap;
  uint64_t stamp;
  size_t len; /* the new address's length */
  int write;  /* the new address is written */
  int failed;
} blockers;

static void collect_blocker(const qholder *h, void *arg) {
  blockers *bl = arg;
  /* A holder of the same address (overlapping and as long) is ordered by
   * its node's grants, not by an edge. */
  if (!(h->write || bl->write) || h->len == bl->len ||
      h->b->mark == bl->stamp || bl->failed)
    return;
  if (bl->n == bl->cap) {
    size_t ncap = bl->cap * 2;
    qbatch **nv = malloc(ncap * sizeof(*nv));
    if (nv == NULL) {
      bl->failed = 1;
      return;
    }
    memcpy(nv, bl->v, bl->n * sizeof(*nv));
    if (bl->v != bl->small)
      free(bl->v);
    bl->v = nv;
    bl->cap = ncap;
  }
  h->b->mark = bl->stamp;
  bl->v[bl->n++] = h->b;
}

/* A placeholder for a dep id not enqueued yet. */
static qbatch *placeholder_get(ordo_queue *q, const char *id) {
  qbatch *p = ordo__map_get(&q->batches, id);
  if (p != NULL)
    return p;
  if (ordo__map_reserve(&q->batches, 1) ||
      (p = calloc(1, sizeof(*p) + sizeof(qbatch_more))) == NULL)
    return NULL;
  p->more = (qbatch_more *)(p + 1);
  if ((p->id = ordo__strdup(id)) == NULL) {
    free(p);
    return NULL;
  }
  p->state = ORDO_QUEUE_WAITING;
  ordo__map_put(&q->batches, ordo__hash_str(p->id), p);
  return p;
}

/* The checks of a spec that need nothing looked up, in two parts:
 * ordo_queue_enqueue hashes the id between them, so that its slot loads
 * while the second part runs. Each sets the message on failure. */
static int spec_check_shape(const ordo_queue_batch_spec *sp) {
  if (sp->id == NULL || sp->id[0] == '\0' || sp->service == NULL ||
      sp->service[0] == '\0')
    return ordo__set_last_error(ORDO_E_INVAL,
                                "enqueue: a batch needs an id and a service");
  if ((sp->nreads && sp->reads == NULL) ||
      (sp->nwrites && sp->writes == NULL) || (sp->ndeps && sp->deps == NULL) ||
      (sp->payload_len && !sp->payload))
    return ordo__set_last_error(ORDO_E_INVAL, "enqueue %s: NULL array",
                                sp->id);
  if (sp->nreads > UINT32_MAX - sp->nwrites || sp->ndeps > UINT32_MAX)
    return ordo__set_last_error(ORDO_E_INVAL, "enqueue %s: too many "
                                "addresses or deps", sp->id);
  return ORDO_OK;
}

static int spec_check_fields(const ordo_queue *q,
                             const ordo_queue_batch_spec *sp) {
  size_t i;
  for (i = 0; i < sp->nreads + sp->nwrites; i++)
    if ((i < sp->nreads ? sp->reads[i] : sp->writes[i - sp->nreads]) == NULL)
      return ordo__set_last_error(ORDO_E_INVAL, "enqueue %s: NULL address",
                                  sp->id);
  for (i = 0; i < sp->ndeps; i++)
    if (sp->deps[i] == NULL || strcmp(sp->deps[i], sp->id) == 0)
      return ordo__set_last_error(
          ORDO_E_INVAL, "enqueue %s: a dep is NULL or the batch itself",
          sp->id);
  if (sp->seq != 0 && sp->seq < q->next_seq)
    return ordo__set_last_error(
        ORDO_E_INVAL, "enqueue %s: seq %llu is not after %llu", sp->id,
        (unsigned long long)sp->seq, (unsigned long long)(q->next_seq - 1));
  if (sp->ledger_id != NULL && sp->ledger_id[0] == '\0')
    return ordo__set_last_error(ORDO_E_INVAL, "enqueue %s: an empty ledger id",
                                sp->id);
  return ORDO_OK;
}

/* ORDO_E_EXISTS (naming the first) when the queue has a batch with sp's
 * ledger id (hash lidh), queued or finished; else ORDO_OK. */
static int ledger_taken(const ordo_queue *q, const ordo_queue_batch_spec *sp,
                        size_t lidh) {
  const qledger *ql = ordo__map_get_h(&q->ledgers, sp->ledger_id, lidh);
  if (ql != NULL)
    return ordo__set_last_error(ORDO_E_EXISTS, "ledger batch %.16s… is "
                                "already queued as %s", sp->ledger_id,
                                ql->b->id);
  if (q->opt.forgotten_ledger_id != NULL &&
      q->opt.forgotten_ledger_id(q->opt.hook_ud, sp->ledger_id))
    return ordo__set_last_error(ORDO_E_EXISTS, "ledger batch %.16s… was "
                                "queued before (a finished batch has it)",
                                sp->ledger_id);
  return ORDO_OK;
}

int ordo_queue_enqueue(ordo_queue *q, const ordo_queue_batch_spec *sp,
                       uint64_t *seq) {
  qbatch *b = NULL, *old;
  qservice *s;
  qbatch **dep_of = NULL;
  qnode *nodes_small[16], **nodes = NULL;
  fp_in in_small[16], *in = in_small;
  blockers bl;
  size_t i, j, ndep = 0, nin, nfp, idh, lidh = 0;
  int rc = ORDO_E_NOMEM, dep_invalid = 0, dep_missing = 0;

  memset(&bl, 0, sizeof(bl));
  bl.v = bl.small;
  bl.cap = sizeof(bl.small) / sizeof(bl.small[0]);

  if (q == NULL || sp == NULL)
    return ordo__set_last_error(ORDO_E_INVAL,
                                "enqueue: a batch needs an id and a service");
  if ((rc = spec_check_shape(sp)) != ORDO_OK)
    return rc;
  /* The id's slot is a cache miss at 100k queued: start it loading now and
   * check it after the checks below have run. */
  idh = ordo__hash_str(sp->id);
  ordo__map_prefetch(&q->batches, idh);
  if ((rc = spec_check_fields(q, sp)) != ORDO_OK)
    return rc;
  /* One signed batch, one queue batch: a ledger id the queue has (queued
   * or finished) is refused before anything is made. Only batches that
   * have one pay for the lookup. */
  if (sp->ledger_id != NULL &&
      (rc = ledger_taken(q, sp, lidh = ordo__hash_str(sp->ledger_id))) !=
          ORDO_OK)
    return rc;
  rc = ORDO_E_NOMEM;

  nin = sp->nreads + sp->nwrites;
  if (nin > sizeof(in_small) / sizeof(in_small[0]) &&
      (in = malloc(nin * sizeof(*in))) == NULL)
    return ordo__set_last_error(ORDO_E_NOMEM, "enqueue %s: out of memory",
                                sp->id);
  nfp = footprint_sort(q, sp, in);
  for (i = 0; i < nfp; i++)
    if (in[i].len > ORDO_QUEUE_MAX_ADDRESS) {
      if (in != in_small)
        free(in);
      return ordo__set_last_error(ORDO_E_INVAL, "enqueue %s: an address of "
                                  "%zu bytes (at most %u)", sp->id, in[i].len,
                                  (unsigned)ORDO_QUEUE_MAX_ADDRESS);
    }
  /* Reserve: nothing below changes what the queue reports until commit.
   * A new service would, so a duplicate that names one is refused first. */
  if ((s = ordo__map_get(&q->services, sp->service)) == NULL) {
    if ((old = ordo__map_get_h(&q->batches, sp->id, idh)) != NULL &&
        old->enqueued) {
      if (in != in_small)
        free(in);
      return ordo__set_last_error(ORDO_E_EXISTS,
                                  "enqueue: batch id '%s' exists", sp->id);
    }
    if ((s = ordo__q_service_get(q, sp->service)) == NULL)
      goto fail;
  }
  /* Each address's index slot is a cache miss at 100k queued: start them
   * all now, to overlap with each other and with the block's making. */
  if (ordo__q_locks_trie(q))
    for (i = 0; i < nfp; i++)
      ordo__q_flat_prefetch(s, in[i].hash);
  b = batch_alloc(q, sp, in, nfp); /* in lives on: it has the addresses */
  if (b == NULL)
    goto fail;
  b->svc = s;
  if (sp->ndeps > 0) {
    if ((b->more->deps = calloc(sp->ndeps, sizeof(*b->more->deps))) == NULL ||
        (dep_of = calloc(sp->ndeps, sizeof(*dep_of))) == NULL)
      goto fail;
    for (i = 0; i < sp->ndeps; i++) {
      qbatch *d;
      for (j = 0;
           j < b->more->ndeps && strcmp(b->more->deps[j], sp->deps[i]) != 0;
           j++)
        ;
      if (j < b->more->ndeps)
        continue; /* a repeated dep counts once */
      if ((b->more->deps[b->more->ndeps] = ordo__strdup(sp->deps[i])) == NULL)
        goto fail;
      b->more->ndeps++;
      if (ordo__map_get(&q->batches, sp->deps[i]) == NULL) {
        /* Finished and forgotten: met, or invalid. */
        ordo_queue_state fs = ordo__q_forgotten(q, sp->deps[i]);
        if (fs == ORDO_QUEUE_COMMITTED)
          continue;
        if (fs == ORDO_QUEUE_INVALID) {
          dep_invalid = 1;
          continue;
        }
      }
      if ((d = placeholder_get(q, sp->deps[i])) == NULL)
        goto fail;
      if (!d->enqueued)
        dep_missing = 1;
      if (d->state == ORDO_QUEUE_COMMITTED)
        continue;
      if (d->state == ORDO_QUEUE_INVALID) {
        dep_invalid = 1;
        continue;
      }
      if (ordo__q_reserve_u32((void **)&d->dependants, &d->capdependants,
                  d->ndependants + 1, sizeof(*d->dependants)))
        goto fail;
      dep_of[ndep++] = d;
    }
  }
  if (ordo__q_locks_trie(q) && b->nfp > 0) {
    if (ordo__q_locks_prepare(s, b->fp, b->nfp))
      goto fail;
    /* Flat, only equal addresses overlap, and the grants order them; a
     * trie needs edges to the holders of prefixes and extensions. */
    if (s->trie) {
      bl.stamp = ++q->stamp;
      for (i = 0; i < b->nfp; i++) {
        bl.write = b->fp[i].write;
        bl.len = b->fp[i].len;
        ordo__q_trie_overlapping(s->root, in[i].addr, in[i].len, !bl.write,
                         collect_blocker, &bl);
      }
      if (bl.failed)
        goto fail;
    }
    for (i = 0; i < bl.n; i++)
      if (ordo__q_reserve_u32((void **)&bl.v[i]->waiters, &bl.v[i]->capwaiters,
                  bl.v[i]->nwaiters + 1, sizeof(*bl.v[i]->waiters)))
        goto fail;
    nodes = b->nfp <= sizeof(nodes_small) / sizeof(nodes_small[0])
                ? nodes_small
                : malloc(b->nfp * sizeof(*nodes));
    if (nodes == NULL)
      goto fail;
    memset(nodes, 0, b->nfp * sizeof(*nodes));
    for (i = 0; i < b->nfp; i++)
      if ((nodes[i] = ordo__q_locks_node(s, in[i].addr, in[i].len,
                                         in[i].hash)) == NULL)
        goto fail;
  }
  /* A duplicate id is refused only now, when the slot prefetched at the
   * start has had the work above to arrive in; what was made for it goes. */
  old = ordo__map_get_h(&q->batches, sp->id, idh);
  if ((old != NULL && old->enqueued) ||
      (old == NULL && ordo__q_forgotten(q, sp->id) != ORDO_QUEUE_QUEUED)) {
    rc = ORDO_E_EXISTS;
    goto fail;
  }
  if (ordo__map_reserve(&q->batches, 1) ||
      (b->ledger && ordo__map_reserve(&q->ledgers, 1)) ||
      /* Every unfinished batch may be pushed once; stale entries stay. */
      ordo__q_reserve((void **)&s->heap, &s->capheap,
                      s->unfinished + 1 + s->nstale, sizeof(*s->heap)))
    goto fail;
  /* A dep not enqueued yet: the batch goes on its service's timeout heap
   * (only batches with a time can time out). */
  dep_missing = dep_missing && sp->time_ms != 0;
  if (dep_missing) {
    dt_compact(s);
    if (ordo__q_reserve((void **)&s->dt, &s->capdt, s->ndt + 1, sizeof(*s->dt)))
      goto fail;
  }

  /* Commit: no failure from here on. */
  old = ordo__map_get_h(&q->batches, sp->id, idh); /* a placeholder may have
                                                appeared */
  if (old != NULL) {
    /* Dependants that waited for this id become ours. */
    b->dependants = old->dependants;
    b->ndependants = old->ndependants;
    b->capdependants = old->capdependants;
    old->dependants = NULL;
  }
  ordo__map_put(&q->batches, idh, b); /* replaces the placeholder's entry */
  if (b->ledger)
    ordo__map_put(&q->ledgers, lidh, ordo__q_batch_ledger(b));
  ordo__q_batch_free(q, old);
  b->enqueued = 1;
  s->nbatches++;
  if (sp->time_ms > s->last_ms)
    s->last_ms = sp->time_ms;
  b->seq = sp->seq != 0 ? sp->seq : q->next_seq;
  q->next_seq = b->seq + 1;
  b->held = sp->held != 0;
  b->more->t_enq_ms = sp->time_ms;
  b->state = ORDO_QUEUE_WAITING;
  if (dep_missing) {
    qheap_ent e;
    e.seq = sp->time_ms;
    e.b = b;
    b->indt = 1;
    ordo__q_heap_up(s->dt, s->ndt++, e);
  }
  s->waiting++;
  s->unfinished++;
  /* Only the serial strategy orders by the list: elsewhere keeping it
   * would cost two visits to other batches per finish. */
  if (ordo__q_locks_serial(q)) {
    b->more->sprev = s->last;
    if (s->last != NULL)
      s->last->more->snext = b;
    else
      s->first = b;
    s->last = b;
  }
  b->nblockers = bl.n;
  if (nodes != NULL)
    for (i = 0; i < b->nfp; i++) {
      b->fp[i].seq = b->seq;
      if (!ordo__q_holder_link(&b->fp[i], nodes[i]))
        b->nblockers++;
    }
  for (i = 0; i < bl.n; i++)
    bl.v[i]->waiters[bl.v[i]->nwaiters++] = b;
  for (i = 0; i < ndep; i++)
    dep_of[i]->dependants[dep_of[i]->ndependants++] = b;
  b->refs = (uint32_t)(bl.n + ndep);
  b->deps_pending = ndep;
  if (seq != NULL)
    *seq = b->seq;
  if (bl.v != bl.small)
    free(bl.v);
  if (nodes != nodes_small)
    free(nodes);
  if (in != in_small)
    free(in);
  free(dep_of);
  if (dep_invalid) {
    ordo__q_finish_batches(q, b, ORDO_QUEUE_INVALID,
                           ordo__q_dep_invalid_reason(q, b), 1);
  } else {
    ordo__q_try_ready(q, b);
  }
  return ORDO_OK;

fail:
  /* Empty trie nodes and placeholders may remain; neither is visible.
   * Pruning in footprint order is safe: the footprint is sorted, so a node
   * of a later address is never an ancestor of an earlier one, and pruning
   * only frees the pruned node and its ancestors. */
  if (nodes != NULL)
    for (i = 0; i < b->nfp; i++)
      if (nodes[i] != NULL)
        ordo__q_locks_tidy(s, nodes[i], b->fp[i].hash);
  if (nodes != nodes_small)
    free(nodes);
  if (in != in_small)
    free(in);
  if (bl.v != bl.small)
    free(bl.v);
  free(dep_of);
  ordo__q_batch_free(q, b);
  if (rc == ORDO_E_EXISTS)
    return ordo__set_last_error(rc, "enqueue: batch id '%s' exists", sp->id);
  return ordo__set_last_error(rc, "enqueue %s: out of memory", sp->id);
}

int ordo_queue_enqueue_finished(ordo_queue *q, const ordo_queue_batch_spec *sp,
                                ordo_queue_state state, const char *reason,
                                int halts) {
  qbatch *b;
  qservice *s;
  size_t idh, lidh = 0, i;
  char *why = NULL;
  int rc;

  if (q == NULL || sp == NULL ||
      (state != ORDO_QUEUE_COMMITTED && state != ORDO_QUEUE_INVALID))
    return ordo__set_last_error(ORDO_E_INVAL, "enqueue_finished: bad argument");
  if ((rc = spec_check_shape(sp)) != ORDO_OK ||
      (rc = spec_check_fields(q, sp)) != ORDO_OK)
    return rc;
  idh = ordo__hash_str(sp->id);
  if (ordo__map_get_h(&q->batches, sp->id, idh) != NULL)
    return ordo__set_last_error(ORDO_E_EXISTS, "enqueue: batch id '%s' exists",
                                sp->id);
  if (sp->ledger_id != NULL &&
      (rc = ledger_taken(q, sp, lidh = ordo__hash_str(sp->ledger_id))) !=
          ORDO_OK)
    return rc;
  if ((s = ordo__q_service_get(q, sp->service)) == NULL ||
      ordo__map_reserve(&q->batches, 1) ||
      (sp->ledger_id != NULL && ordo__map_reserve(&q->ledgers, 1)) ||
      (b = batch_alloc(q, sp, NULL, 0)) == NULL)
    return ordo__set_last_error(ORDO_E_NOMEM, NULL);
  if ((state == ORDO_QUEUE_INVALID &&
       (why = ordo__strdup(reason != NULL ? reason : "invalid")) == NULL) ||
      (sp->ndeps > 0 &&
       (b->more->deps = calloc(sp->ndeps, sizeof(*b->more->deps))) == NULL)) {
    free(why);
    ordo__q_batch_free(q, b);
    return ordo__set_last_error(ORDO_E_NOMEM, NULL);
  }
  for (i = 0; i < sp->ndeps; i++) {
    if ((b->more->deps[i] = ordo__strdup(sp->deps[i])) == NULL) {
      free(why);
      ordo__q_batch_free(q, b);
      return ordo__set_last_error(ORDO_E_NOMEM, NULL);
    }
    b->more->ndeps++;
  }
  if (!q->opt.keep_payloads && b->payload != NULL) {
    free(b->payload);
    b->payload = NULL;
    b->payload_len = 0;
  }
  b->svc = s;
  b->enqueued = 1;
  s->nbatches++;
  b->seq = sp->seq != 0 ? sp->seq : q->next_seq;
  if (b->seq >= q->next_seq)
    q->next_seq = b->seq + 1;
  b->more->t_enq_ms = sp->time_ms;
  b->state = (unsigned char)state;
  b->reason = why;
  ordo__map_put(&q->batches, idh, b);
  if (b->ledger)
    ordo__map_put(&q->ledgers, lidh, ordo__q_batch_ledger(b));
  if (halts && state == ORDO_QUEUE_INVALID) {
    s->halted = 1;
    s->halt_by = b;
  }
  return ORDO_OK;
}

/* Whether ordo_queue_enqueue would refuse sp, with its error and message;
 * changes nothing. The same checks (the address lengths, which the
 * enqueue checks on its sorted footprint, here on the spec). */
static int enqueue_check(const ordo_queue *q, const ordo_queue_batch_spec *sp) {
  size_t i;
  const qbatch *old;
  int rc;
  if ((rc = spec_check_shape(sp)) != ORDO_OK ||
      (rc = spec_check_fields(q, sp)) != ORDO_OK)
    return rc;
  for (i = 0; i < sp->nreads + sp->nwrites; i++) {
    const char *a = i < sp->nreads ? sp->reads[i] : sp->writes[i - sp->nreads];
    size_t len = strlen(a);
    if (q->opt.granularity > 0 && len > (size_t)q->opt.granularity)
      len = (size_t)q->opt.granularity;
    if (len > ORDO_QUEUE_MAX_ADDRESS)
      return ordo__set_last_error(ORDO_E_INVAL, "enqueue %s: an address of "
                                  "%zu bytes (at most %u)", sp->id, len,
                                  (unsigned)ORDO_QUEUE_MAX_ADDRESS);
  }
  if (sp->ledger_id != NULL &&
      (rc = ledger_taken(q, sp, ordo__hash_str(sp->ledger_id))) != ORDO_OK)
    return rc;
  if (((old = ordo__map_get(&q->batches, sp->id)) != NULL && old->enqueued) ||
      (old == NULL && ordo__q_forgotten(q, sp->id) != ORDO_QUEUE_QUEUED))
    return ordo__set_last_error(ORDO_E_EXISTS, "enqueue: batch id '%s' exists",
                                sp->id);
  return ORDO_OK;
}

int ordo_queue_enqueue_many(ordo_queue *q, const ordo_queue_batch_spec *specs,
                            size_t n, uint64_t *seqs, size_t *bad) {
  /* Huge pages for big tables, as the queue's own maps. */
  ordo__map ids = {.table = &ordo__q_table}, lids = {.table = &ordo__q_table};
  size_t i;
  uint64_t seq = 0;
  int rc = ORDO_OK;

  if (bad != NULL)
    *bad = 0;
  if (q == NULL || (specs == NULL && n > 0))
    return ordo__set_last_error(ORDO_E_INVAL, "enqueue: NULL argument");
  if (n > 1 && (ordo__map_reserve(&ids, n) || ordo__map_reserve(&lids, n))) {
    rc = ordo__set_last_error(ORDO_E_NOMEM, NULL);
    goto out;
  }
  /* Every check first: a refusal leaves the queue as it was. Ids (and
   * ledger ids) repeated in specs are found by maps whose values are the
   * specs' own fields (a spec's first member is its id: the map's rule). */
  for (i = 0; i < n; i++) {
    const ordo_queue_batch_spec *sp = &specs[i];
    if ((rc = enqueue_check(q, sp)) != ORDO_OK)
      break;
    if (sp->seq != 0) {
      if (sp->seq <= seq) {
        rc = ordo__set_last_error(ORDO_E_INVAL, "enqueue %s: seq %llu is "
                                  "not after the one before", sp->id,
                                  (unsigned long long)sp->seq);
        break;
      }
      seq = sp->seq;
    }
    if (n > 1) {
      const ordo_queue_batch_spec *o = ordo__map_get(&ids, sp->id);
      if (o != NULL) {
        rc = ordo__set_last_error(ORDO_E_EXISTS, "enqueue: batch id '%s' "
                                  "repeats item %zu", sp->id,
                                  (size_t)(o - specs));
        break;
      }
      ordo__map_put(&ids, ordo__hash_str(sp->id), (void *)sp);
      if (sp->ledger_id != NULL) {
        const char *const *lp = ordo__map_get(&lids, sp->ledger_id);
        if (lp != NULL) {
          const ordo_queue_batch_spec *lo =
              (const ordo_queue_batch_spec *)((const char *)lp -
                                              offsetof(ordo_queue_batch_spec,
                                                       ledger_id));
          rc = ordo__set_last_error(ORDO_E_EXISTS, "ledger batch %.16s… is "
                                    "item %zu's ('%s') too", sp->ledger_id,
                                    (size_t)(lo - specs), lo->id);
          break;
        }
        ordo__map_put(&lids, ordo__hash_str(sp->ledger_id),
                      (void *)&sp->ledger_id);
      }
    }
  }
  if (rc != ORDO_OK) {
    if (bad != NULL)
      *bad = i;
    goto out;
  }
  for (i = 0; i < n; i++)
    if ((rc = ordo_queue_enqueue(q, &specs[i], seqs != NULL ? &seqs[i]
                                                            : NULL)) !=
        ORDO_OK) {
      if (bad != NULL)
        *bad = i; /* out of memory: the first i are in */
      break;
    }
out:
  ordo__map_free(&ids);
  ordo__map_free(&lids);
  return rc;
}


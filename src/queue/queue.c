/*
 * queue.c — the in-memory scheduler's life and its hot read side: create
 * and free, take (round-robin over the services with ready batches),
 * release and take_id, and what a caller may ask of a batch or the whole
 * queue. The design is in queue_int.h; the other parts of ordo_queue are
 * enqueue.c, locks.c, finish.c, services.c, forget.c and explain.c.
 */
#include "base/base.h"
#include "queue/queue_int.h"
#include "runtime/runtime.h"

const char ordo__q_dep_invalid_text[] = "a dep is invalid";

const ordo__map_table ordo__q_table = {ordo__qtable_calloc, ordo__qtable_free};

/* The ready batch with the lowest seq, or NULL; stale entries are dropped
 * on the way. */
static qbatch *heap_pop(qservice *s) {
  while (s->nheap > 0) {
    qbatch *top = s->heap[0].b;
    qheap_ent last = s->heap[--s->nheap];
    if (s->nheap > 0)
      ordo__q_heap_down(s->heap, s->nheap, 0, last);
    top->inheap = 0;
    if (top->state == ORDO_QUEUE_QUEUED)
      return top;
    s->nstale--;
  }
  return NULL;
}

/* ------------------------------------------------------------------------ */
/* Public API                                                                */
/* ------------------------------------------------------------------------ */

void ordo_queue_options_init(ordo_queue_options *opt) {
  memset(opt, 0, sizeof(*opt));
  opt->strategy = ORDO_QUEUE_PARALLEL;
  opt->mode = ORDO_QUEUE_CONTINUOUS;
  opt->granularity = -1;
}

int ordo_queue_strategy_parse(const char *name, ordo_queue_strategy *out) {
  if (name != NULL && strcmp(name, "parallel") == 0)
    *out = ORDO_QUEUE_PARALLEL;
  else if (name != NULL && strcmp(name, "serial") == 0)
    *out = ORDO_QUEUE_SERIAL;
  else if (name != NULL && strcmp(name, "unconstrained") == 0)
    *out = ORDO_QUEUE_UNCONSTRAINED;
  else
    return ORDO_E_INVAL;
  return ORDO_OK;
}

int ordo_queue_mode_parse(const char *name, ordo_queue_mode *out) {
  if (name != NULL && strcmp(name, "continuous") == 0)
    *out = ORDO_QUEUE_CONTINUOUS;
  else if (name != NULL && strcmp(name, "rounds") == 0)
    *out = ORDO_QUEUE_ROUNDS;
  else
    return ORDO_E_INVAL;
  return ORDO_OK;
}

int ordo_queue_new(const ordo_queue_options *opt, ordo_queue **out) {
  ordo_queue *q;

  if (out == NULL)
    return ordo__set_last_error(ORDO_E_INVAL, "queue: out is NULL");
  *out = NULL;
  if (opt != NULL &&
      ((unsigned)opt->strategy > ORDO_QUEUE_UNCONSTRAINED ||
       (unsigned)opt->mode > ORDO_QUEUE_ROUNDS))
    return ordo__set_last_error(ORDO_E_INVAL,
                                "queue: unknown strategy or mode");
  if ((q = calloc(1, sizeof(*q))) == NULL)
    return ordo__set_last_error(ORDO_E_NOMEM, NULL);
  if (opt != NULL)
    q->opt = *opt;
  else
    ordo_queue_options_init(&q->opt);
  if (q->opt.granularity < 0)
    q->opt.granularity = -1;
  q->next_seq = 1;
  /* batch_alloc (enqueue.c) puts a batch's id right after its struct, and
   * a ledger id right after its entry: where the maps prefetch a key. */
  q->batches.key_at = sizeof(qbatch);
  q->ledgers.key_at = sizeof(qledger);
  /* The id map alone is 4 MiB at 100k batches and probed at random: big
   * tables go on huge pages (pool.h). */
  q->batches.table = q->services.table = q->ledgers.table = &ordo__q_table;
  ordo__qpool_init(&q->pool);
  *out = q;
  return ORDO_OK;
}

void ordo__q_batch_free(ordo_queue *q, qbatch *b) {
  size_t i;
  if (b == NULL)
    return;
  if (b->enqueued && b->svc != NULL)
    b->svc->nbatches--;
  if (!b->block)
    free(b->id);
  free(b->payload);
  for (i = 0; i < b->more->ndeps; i++)
    free(b->more->deps[i]);
  free(b->more->deps);
  if (b->reason != ordo__q_dep_invalid_text)
    free(b->reason);
  free(b->dependants);
  free(b->waiters);
  if (b->block)
    ordo__qpool_free(&q->pool, b, b->more->size);
  else
    free(b);
}

void ordo_queue_free(ordo_queue *q) {
  size_t i;
  if (q == NULL)
    return;
  for (i = 0; i < q->batches.cap; i++)
    ordo__q_batch_free(q, q->batches.e[i].val);
  ordo__map_free(&q->batches);
  ordo__map_free(&q->ledgers); /* its entries lived in the batches' blocks */
  for (i = 0; i < q->nsvcs; i++)
    ordo__q_service_free(q->svcs[i]);
  free(q->svcs);
  free(q->timed);
  ordo__map_free(&q->services);
  ordo__qpool_destroy(&q->pool);
  free(q);
}

static void item_fill(ordo_queue_item *it, const qbatch *b) {
  it->id = b->id;
  it->service = b->svc->name;
  it->seq = b->seq;
  it->payload = b->payload;
  it->payload_len = b->payload_len;
  it->ledger_id = b->ledger ? ordo__q_batch_ledger(b)->lid : NULL;
}

static int item_cmp(const void *a, const void *b) {
  const ordo_queue_item *x = a, *y = b;
  return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/*
 * Put a take's items in submission order. Round-robin hands them out
 * service by service, each service's already in order; a big take (a
 * round of 100k ready batches) is sorted by an LSD radix sort on the seqs,
 * 11 bits a pass and only as many passes as the largest seq needs, where
 * qsort's compares cost ~100 ns a batch. Small takes, or no memory for the
 * second buffer: qsort.
 */
static void items_sort(ordo_queue_item *v, size_t n) {
  enum { BITS = 11, BUCKETS = 1 << BITS };
  ordo_queue_item *tmp, *src = v, *dst;
  uint64_t max = 0;
  size_t *count, i;
  unsigned shift;

  if (n < 256 || (tmp = malloc(n * sizeof(*tmp))) == NULL) {
    qsort(v, n, sizeof(*v), item_cmp);
    return;
  }
  if ((count = malloc(BUCKETS * sizeof(*count))) == NULL) {
    free(tmp);
    qsort(v, n, sizeof(*v), item_cmp);
    return;
  }
  for (i = 0; i < n; i++)
    if (v[i].seq > max)
      max = v[i].seq;
  dst = tmp;
  for (shift = 0; shift < 64 && (max >> shift) != 0; shift += BITS) {
    size_t sum = 0;
    memset(count, 0, BUCKETS * sizeof(*count));
    for (i = 0; i < n; i++)
      count[(src[i].seq >> shift) & (BUCKETS - 1)]++;
    for (i = 0; i < BUCKETS; i++) {
      size_t c = count[i];
      count[i] = sum;
      sum += c;
    }
    for (i = 0; i < n; i++)
      dst[count[(src[i].seq >> shift) & (BUCKETS - 1)]++] = src[i];
    ordo_queue_item *t = src;
    src = dst;
    dst = t;
  }
  if (src != v)
    memcpy(v, src, n * sizeof(*v));
  free(count);
  free(tmp);
}

int ordo_queue_take(ordo_queue *q, ordo_queue_item *out, size_t max,
                    size_t *n) {
  size_t k = 0;

  if (q == NULL || n == NULL || (out == NULL && max > 0))
    return ordo__set_last_error(ORDO_E_INVAL, "take: NULL argument");
  *n = 0;
  if (q->opt.mode == ORDO_QUEUE_ROUNDS && q->in_flight > 0)
    return ORDO_OK;
  while (k < max &&
         (q->opt.max_in_flight == 0 || q->in_flight < q->opt.max_in_flight)) {
    qservice *s = NULL, *c = q->ring;
    qbatch *b;
    size_t tries;

    /* The next service in the ring with room (every one there has a ready
     * batch). */
    for (tries = 0; tries < q->nring; tries++, c = c->rnext) {
      unsigned cap = c->max_in_flight ? c->max_in_flight
                                      : q->opt.service_max_in_flight;
      if (!c->halted && (cap == 0 || c->in_flight < cap)) {
        s = c;
        break;
      }
    }
    if (s == NULL)
      break;
    q->ring = s->rnext; /* after s, the next one's turn */
    b = heap_pop(s);
    if (ordo__q_heap_ready(s) == 0)
      ordo__q_ring_leave(q, s);
    b->state = ORDO_QUEUE_SUBMITTED;
    s->in_flight++;
    q->in_flight++;
    item_fill(&out[k], b);
    k++;
  }
  items_sort(out, k);
  *n = k;
  return ORDO_OK;
}

int ordo_queue_release(ordo_queue *q, const char *id) {
  qbatch *b;
  if (q == NULL || (b = ordo__q_batch_find(q, id)) == NULL)
    return ordo__set_last_error(ORDO_E_NOT_FOUND, "release: no batch '%s'",
                                id != NULL ? id : "(null)");
  if (!b->held)
    return ordo__set_last_error(ORDO_E_STATE, "release %s: not held", id);
  b->held = 0;
  if (b->state == ORDO_QUEUE_QUEUED) {
    b->svc->held_ready--;
    ordo__q_heap_push(q, b->svc, b);
  }
  return ORDO_OK;
}

int ordo_queue_take_id(ordo_queue *q, const char *id, ordo_queue_item *out) {
  qbatch *b;
  if (q == NULL || (b = ordo__q_batch_find(q, id)) == NULL)
    return ordo__set_last_error(ORDO_E_NOT_FOUND, "take: no batch '%s'",
                                id != NULL ? id : "(null)");
  if (b->state != ORDO_QUEUE_QUEUED || b->held)
    return ordo__set_last_error(ORDO_E_STATE, "take %s: batch is %s%s, not "
                                "ready", id, b->held ? "held and " : "",
                                ordo_queue_state_name(b->state));
  if (b->svc->halted)
    return ordo__set_last_error(ORDO_E_STATE, "take %s: service %s is halted",
                                id, b->svc->name);
  b->svc->nstale++; /* its heap entry surfaces later and is dropped */
  if (ordo__q_heap_ready(b->svc) == 0)
    ordo__q_ring_leave(q, b->svc);
  b->state = ORDO_QUEUE_SUBMITTED;
  b->svc->in_flight++;
  q->in_flight++;
  if (out != NULL)
    item_fill(out, b);
  return ORDO_OK;
}

int ordo_queue_batch_status(const ordo_queue *q, const char *id,
                            ordo_queue_state *state, const char **reason) {
  qbatch *b;
  if (q == NULL)
    return ordo__set_last_error(ORDO_E_INVAL, "status: NULL queue");
  if ((b = ordo__q_batch_find(q, id)) == NULL)
    return ordo__set_last_error(ORDO_E_NOT_FOUND, "no batch '%s'",
                                id != NULL ? id : "(null)");
  if (state != NULL)
    *state = b->state;
  if (reason != NULL)
    *reason = b->state == ORDO_QUEUE_INVALID ? b->reason : NULL;
  return ORDO_OK;
}

int ordo_queue_batch_times(const ordo_queue *q, const char *id,
                           uint64_t *enqueued_ms, uint64_t *finished_ms) {
  const qbatch *b = q != NULL ? ordo__q_batch_find(q, id) : NULL;
  if (b == NULL)
    return ordo__set_last_error(ORDO_E_NOT_FOUND, "no batch '%s'",
                                id != NULL ? id : "(null)");
  if (enqueued_ms != NULL)
    *enqueued_ms = b->more->t_enq_ms;
  if (finished_ms != NULL)
    *finished_ms = b->more->t_fin_ms;
  return ORDO_OK;
}

int ordo_queue_set_finish_time(ordo_queue *q, const char *id, uint64_t ms) {
  qbatch *b = q != NULL ? ordo__q_batch_find(q, id) : NULL;
  if (b == NULL)
    return ordo__set_last_error(ORDO_E_NOT_FOUND, "no batch '%s'",
                                id != NULL ? id : "(null)");
  b->more->t_fin_ms = ms;
  return ORDO_OK;
}

int ordo_queue_item_get(const ordo_queue *q, const char *id,
                        ordo_queue_item *out) {
  const qbatch *b = q != NULL ? ordo__q_batch_find(q, id) : NULL;
  if (b == NULL)
    return ordo__set_last_error(ORDO_E_NOT_FOUND, "no batch '%s'",
                                id != NULL ? id : "(null)");
  item_fill(out, b);
  return ORDO_OK;
}

int ordo_queue_ledger_find(const ordo_queue *q, const char *ledger_id,
                           const char **id) {
  const qledger *ql;
  if (q == NULL || ledger_id == NULL || id == NULL)
    return ordo__set_last_error(ORDO_E_INVAL, "ledger find: NULL argument");
  *id = NULL;
  if ((ql = ordo__map_get(&q->ledgers, ledger_id)) == NULL)
    return ORDO_E_NOT_FOUND;
  *id = ql->b->id;
  return ORDO_OK;
}

int ordo_queue_batch_seq(const ordo_queue *q, const char *id, uint64_t *seq) {
  const qbatch *b = q != NULL ? ordo__q_batch_find(q, id) : NULL;
  if (b == NULL)
    return ordo__set_last_error(ORDO_E_NOT_FOUND, "no batch '%s'",
                                id != NULL ? id : "(null)");
  *seq = b->seq;
  return ORDO_OK;
}

int ordo_queue_batch_service(const ordo_queue *q, const char *id,
                             const char **service) {
  const qbatch *b = q != NULL ? ordo__q_batch_find(q, id) : NULL;
  if (b == NULL)
    return ordo__set_last_error(ORDO_E_NOT_FOUND, "no batch '%s'",
                                id != NULL ? id : "(null)");
  *service = b->svc->name;
  return ORDO_OK;
}

void ordo_queue_get_totals(const ordo_queue *q, ordo_queue_totals *t) {
  size_t i;
  memset(t, 0, sizeof(*t));
  for (i = 0; i < q->nsvcs; i++) {
    t->queued += ordo__q_heap_ready(q->svcs[i]) + q->svcs[i]->held_ready;
    t->waiting += q->svcs[i]->waiting;
  }
  t->in_flight = q->in_flight;
  t->committed = q->committed;
  t->invalid = q->invalid;
  t->services = q->nsvcs;
  t->memory_bytes = ordo__qpool_bytes(&q->pool) + ordo__map_bytes(&q->batches) +
                    ordo__map_bytes(&q->services) +
                    ordo__map_bytes(&q->ledgers);
}

uint64_t ordo_queue_next_seq(const ordo_queue *q) {
  return q != NULL ? q->next_seq : 0;
}

int ordo_queue_batch_digest(const ordo_queue *q, const char *id,
                            const unsigned char **digest) {
  const qbatch *b;
  if (digest != NULL)
    *digest = NULL;
  if (q == NULL || digest == NULL)
    return ordo__set_last_error(ORDO_E_INVAL, "digest: NULL argument");
  if ((b = ordo__q_batch_find(q, id)) == NULL)
    return ordo__set_last_error(ORDO_E_NOT_FOUND, "no batch '%s'",
                                id != NULL ? id : "(null)");
  if (b->digest)
    *digest = ordo__q_batch_digest(b);
  return ORDO_OK;
}

void ordo_queue_set_next_seq(ordo_queue *q, uint64_t seq) {
  if (q != NULL && seq > q->next_seq)
    q->next_seq = seq;
}

const char *ordo_queue_state_name(ordo_queue_state st) {
  switch (st) {
  case ORDO_QUEUE_QUEUED:
    return "QUEUED";
  case ORDO_QUEUE_WAITING:
    return "WAITING";
  case ORDO_QUEUE_SUBMITTED:
    return "SUBMITTED";
  case ORDO_QUEUE_COMMITTED:
    return "COMMITTED";
  case ORDO_QUEUE_INVALID:
    return "INVALID";
  case ORDO_QUEUE_UNKNOWN:
    return "UNKNOWN";
  }
  return "?";
}


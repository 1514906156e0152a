/*
 * queue_int.h — the in-memory scheduler's shared types and hot helpers,
 * internal to src/queue (not installed). The public API is queue.h.
 *
 * The scheduler is split by concern; every file includes this header:
 *   queue.c     create/free, take, release, status and counters
 *   enqueue.c   enqueue (one, many, a finished one from a checkpoint)
 *   locks.c     the lock table: flat index or radix trie, and grants
 *   finish.c    readiness's other half: finish, the cascade, cancel, expiry
 *   services.c  services: policies, halt/resume, idle ones dropped
 *   forget.c    finished batches forgotten; the checkpoint snapshot
 *   explain.c   why a batch waits
 * Functions shared between them are named ordo__q_*; the ones on the hot
 * path (a take, a finish, a grant) are static inline here, so that the
 * split costs no calls where one file used to inline them.
 *
 * Data, per service:
 *   - a lock table: one node per (truncated) address held, listing its
 *     readers and its writers in submission order. A batch holds its
 *     addresses from enqueue until it finishes, so "earlier unfinished
 *     batches, waiting ones included" is exactly "holders before it". While
 *     every address held has one length (whole Sawtooth addresses), the
 *     nodes sit in a hash index (flat form) and only equal addresses
 *     overlap; else in a radix (path-compressed) trie, where a node's
 *     ancestors and descendants overlap it too.
 *   - a min-heap by seq of the ready batches, and (serial strategies only)
 *     the unfinished ones in order.
 * Per batch: nblockers, what it still waits for: its holders not yet
 * granted by their node's queue (see "Grants" in locks.c), plus, in a
 * trie, one edge per earlier unfinished batch holding a prefix or an
 * extension of one of its addresses (counted once, at enqueue: later
 * batches never block earlier ones). Finishing a batch unlinks its
 * holders, which grants the holders behind them, and releases its edges; a
 * batch whose count reaches zero is ready. No scan of the queue anywhere.
 *
 * Memory: a batch is one block from the queue's pool (pool.h): its struct
 * (two cache lines, hot fields first), its id, its holders, its rarer
 * fields (qbatch_more), its ledger id if it has one (an entry of the
 * ledger-id map and the text) and its payload. It keeps no copy of its
 * addresses: a linked holder's node has the address as key. A batch
 * without a ledger id never touches the ledger-id map. At 100k queued the
 * scheduler is bound by cache misses, so the layout and the prefetches are
 * about the lines each call visits.
 *
 * Enqueue reserves every allocation first and then commits with no failure
 * path, so ORDO_E_NOMEM leaves the queue as it was.
 *
 * FUTURE OPTIMIZATIONS: in a trie, a hot *prefix* written by n batches
 * still gives the n+1st n edges (grants order only equal addresses). take
 * passes over halted and capped services in its ring one by one. Finished
 * batches stay in memory (their status, and their ids for duplicate
 * checks; not their payloads) until the queue is freed or its owner
 * forgets them (ordo_queue_forget).
 */
#ifndef ORDO_QUEUE_INT_H
#define ORDO_QUEUE_INT_H

#include "base/hash.h"
#include "base/map.h"
#include "queue/pool.h"
#include "queue/queue.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct qbatch qbatch;
typedef struct qheap_ent {
  uint64_t seq;
  qbatch *b;
} qheap_ent;
typedef struct qnode qnode;
typedef struct qservice qservice;

/* One address of a batch; linked into its node while the batch is
 * unfinished (node == NULL once released). */
typedef struct qholder {
  qbatch *b;
  qnode *node;
  struct qholder *prev, *next;
  size_t hash;  /* of the address, computed once at enqueue */
  uint64_t seq; /* the batch's: granting compares seqs without visiting
                   the batches */
  uint32_t len; /* of the address, which is node->key while linked: a
                   batch keeps no copy of its addresses (a third of its
                   block, when it did) */
  unsigned char write;
  unsigned char granted; /* no earlier holder of this node conflicts */
} qholder;

/* A node's links in the radix trie (a node of a flat service has none). */
typedef struct qnode_trie {
  qnode *parent;
  qnode **kids;       /* children, in no order; one block with kch */
  unsigned char *kch; /* kch[i]: the first byte of kids[i]'s edge, so that
                         finding a child reads one cache line, not a list */
  unsigned nkids, capkids;
} qnode_trie;

/* The holders of one address, key[0..depth): a node of a flat service's
 * index, or of the radix (path-compressed) trie, where the edge from its
 * parent is key[parent->depth..depth). Readers and writers are on separate
 * lists, so a read looks only at writers: a hot address read by thousands
 * costs a new reader nothing. The trie's links are apart (t) so that a
 * flat node with a 70-byte Sawtooth address is two cache lines. */
struct qnode {
  qholder *readers[2]; /* head, tail */
  qholder *writers[2];
  qholder *rgate; /* the first reader not granted (it comes after the first
                     writer; so do all readers after it), or NULL */
  qnode_trie *t;  /* NULL in a flat service */
  uint32_t depth;
  char key[]; /* depth bytes, not terminated */
};

/* What only a few paths read: dependencies, the cascade, the serial list,
 * times for status. Kept out of qbatch so that it fits two cache lines. */
typedef struct qbatch_more {
  char **deps;
  size_t ndeps;
  qbatch *work;          /* cascade worklist link */
  qbatch *sprev, *snext; /* the service's unfinished list (serial only) */
  uint64_t t_enq_ms, t_fin_ms; /* for status (queue.h); 0 unknown */
  size_t size; /* block: the bytes asked of the pool */
  int in_work; /* on the cascade worklist (or already taken off) */
} qbatch_more;

/* Hot fields first, by who reads them: at 100k queued every visit to a
 * batch is a cache miss, so a take (line 0) and a finish (lines 0-1)
 * should each touch as few lines as can be. Counts are 32 bits (enqueue
 * refuses more addresses or deps than that). */
struct qbatch {
  /* line 0: the id map's key, take, readiness */
  char *id; /* first: the id map reads it as the key (ordo__map_key) */
  qservice *svc;
  uint64_t seq;
  void *payload;
  size_t payload_len;
  qholder *fp; /* footprint: distinct addresses, read or write */
  uint32_t nfp;
  uint32_t nblockers; /* holders not granted, plus edges (trie) */
  uint32_t deps_pending;
  unsigned char state; /* an ordo_queue_state */
  unsigned char held;  /* not to be taken until ordo_queue_release (the
                          journal has not made it durable yet) */
  unsigned char enqueued; /* 0: a placeholder for a dep id nobody enqueued */
  unsigned block : 1;  /* id, payload, fp and more live in the batch's
                          own pool block (enqueued batches; a placeholder
                          is calloc'd, its id apart) */
  unsigned ledger : 1; /* it has a ledger id (batch_ledger): only then
                          does a take look past line 0 */
  unsigned digest : 1; /* it has a content digest (batch_digest) */
  unsigned inheap : 1; /* an entry in its service's ready heap, live or
                          stale (cleared when popped or purged) */
  unsigned indt : 1;   /* an entry in its service's dep-timeout heap */
  unsigned dying : 1;  /* ordo_queue_forget is dropping it */
  /* line 1: finish */
  uint32_t refs; /* entries naming it in other batches' waiters and
                    dependants arrays that their finish has yet to visit:
                    while > 0 the batch may not be forgotten */
  qbatch **waiters; /* later batches this one blocks (trie edges) */
  uint32_t nwaiters, capwaiters;
  qbatch **dependants; /* batches that list this one as a dep */
  uint32_t ndependants, capdependants;
  char *reason;  /* INVALID: why (owned unless it is dep_invalid_text) */
  uint64_t mark; /* dedup stamp while collecting blockers (trie) */
  qbatch_more *more;
};
_Static_assert(offsetof(qbatch, id) == 0, "ordo__map_key reads a batch's id");
_Static_assert(sizeof(qbatch) <= 128, "a batch's struct fits two lines");

struct qservice {
  char *name; /* first: the service map reads it as the key (ordo__map_key) */
  /* The lock table in one of two forms. Flat (trie == 0): every address
   * held has the same length flat_len, so two addresses overlap only when
   * equal, and a hash index of nodes (no trie links) answers every query
   * in one probe; this is the common case of full Sawtooth addresses. The
   * first batch with an address of another length turns the service into
   * the trie for good (ordo__q_locks_prepare). */
  int trie;
  qpool *pool; /* the queue's: nodes come from it */
  /* flat: a map (base/map.h) whose values are nodes, probed by locks.c
   * with its own key rule (a node's key is not terminated). An entry is
   * the node's hash beside it, 16 bytes, so that a probe reads one cache
   * line and touches no node but the one sought (the hashes once had an
   * array of their own: a second miss per probe). root and flat_len are
   * at the end, so that the fields after this one keep the offsets (and
   * so the cache lines) they had before it was a map. */
  ordo__map flat;
  qbatch *first, *last; /* unfinished, in order (serial strategies only) */
  qheap_ent *heap;
  size_t nheap, capheap, nstale;
  ordo_queue_on_invalid on_invalid;
  unsigned max_in_flight;
  int halted;
  qbatch *halt_by;
  size_t waiting, in_flight, committed, invalid, unfinished;
  size_t held_ready; /* QUEUED but held: ready, not in the heap */
  qservice *rnext, *rprev; /* the ring of services with ready batches */
  int in_ring;
  /* Dep timeouts: every batch enqueued (with a time) while one of its deps
   * was not enqueued, in a min-heap by enqueue time; with one timeout per
   * service that is deadline order. Entries are dropped lazily: when they
   * come due (ordo_queue_expire), or all at once when over half are dead
   * (dt_compact). Kept whether or not a timeout is set, so that setting
   * one later (a restart with a new config) covers the batches waiting. */
  qheap_ent *dt;
  size_t ndt, capdt;
  uint64_t dep_timeout_ms; /* 0: none */
  int in_timed;            /* listed in q->timed */
  int in_purge;      /* listed by ordo_queue_forget for heaps_purge */
  size_t nbatches;   /* batches in memory that point at it (b->svc) */
  uint64_t last_ms;  /* its last enqueue's time_ms (or touch) */
  size_t flat_len;   /* flat: the length of every address held */
  qnode *root;       /* trie: the root (the empty address) */
  /* Halted by the operator (ordo_queue_halt; halt_by is NULL then): the
   * reason as given ("" for none) and the cause status shows ("halted by
   * the operator: reason"), both owned; NULL when not so halted. */
  char *halt_note, *halt_text;
};
_Static_assert(offsetof(qservice, first) == 8 * sizeof(void *),
               "a service's hot fields keep their cache lines");
_Static_assert(offsetof(qservice, name) == 0,
               "ordo__map_key reads a service's name");

/* An entry of the ledger-id map, in its batch's block (after qbatch_more)
 * and only for a batch that has a ledger id; the id's text follows it. */
typedef struct qledger {
  char *lid; /* first: the ledger map reads it as the key (ordo__map_key) */
  qbatch *b;
} qledger;

/* The id, service and ledger-id maps (base/map.h): a value's first member
 * is its key. */
struct ordo_queue {
  ordo_queue_options opt;
  ordo__map batches;  /* id -> qbatch (placeholders included) */
  ordo__map services; /* name -> qservice */
  ordo__map ledgers;  /* ledger id -> qledger, for the batches that have one
                         (finished ones included): empty, never probed,
                         while no batch has a ledger id */
  qservice **svcs;
  size_t nsvcs, capsvcs;
  qservice **timed; /* services that have (or had) a dep timeout */
  size_t ntimed, captimed;
  /* Round-robin: a ring of the services with ready batches in their heap
   * (halted or at their cap ones included: take skips those), ring the
   * next to serve. A service joins at the round's end when its first batch
   * becomes ready and leaves when its last is taken, so a take costs
   * O(batches taken + services skipped), not O(services) per batch. */
  qservice *ring;
  size_t nring;
  uint64_t next_seq;
  uint64_t stamp;
  size_t in_flight, committed, invalid;
  qpool pool; /* batch blocks and lock-table nodes */
};

/* The reason of a batch ended INVALID by the cascade when there is no
 * memory for one naming its dep: static, never freed (ordo__q_batch_free
 * compares against it). */
extern const char ordo__q_dep_invalid_text[];

/* The tables of the queue's maps: from pool.h's ordo__qtable_calloc, so that
 * big ones go on huge pages (queue.c). */
extern const ordo__map_table ordo__q_table;

/* ------------------------------------------------------------------------ */
/* Small helpers                                                             */
/* ------------------------------------------------------------------------ */

/* Grow *arr (element size sz) so that it holds at least need elements. */
static inline int ordo__q_reserve(void **arr, size_t *cap, size_t need,
                                  size_t sz) {
  size_t ncap;
  void *p;

  if (need <= *cap)
    return ORDO_OK;
  ncap = *cap ? *cap : 4;
  while (ncap < need)
    ncap *= 2;
  p = realloc(*arr, ncap * sz);
  if (p == NULL)
    return ORDO_E_NOMEM;
  *arr = p;
  *cap = ncap;
  return ORDO_OK;
}

/* ordo__q_reserve for a 32-bit capacity: ORDO_E_NOMEM past UINT32_MAX. */
static inline int ordo__q_reserve_u32(void **arr, uint32_t *cap, size_t need,
                                      size_t sz) {
  size_t c = *cap;
  if (need > UINT32_MAX || ordo__q_reserve(arr, &c, need, sz) != ORDO_OK)
    return ORDO_E_NOMEM;
  *cap = c > UINT32_MAX ? UINT32_MAX : (uint32_t)c;
  return ORDO_OK;
}

/* The state the owner keeps for a forgotten batch (opt.forgotten_state),
 * or ORDO_QUEUE_QUEUED (0) when there is none: ask only for an id the
 * queue does not have. */
static inline ordo_queue_state ordo__q_forgotten(const ordo_queue *q,
                                                 const char *id) {
  return q->opt.forgotten_state != NULL
             ? q->opt.forgotten_state(q->opt.hook_ud, id)
             : ORDO_QUEUE_QUEUED;
}

/* Whether the strategy orders a service's batches by its unfinished list
 * (serial), or by the lock table in trie-or-flat form (parallel with a
 * granularity). */
static inline int ordo__q_locks_serial(const ordo_queue *q) {
  return q->opt.strategy == ORDO_QUEUE_SERIAL ||
         (q->opt.strategy == ORDO_QUEUE_PARALLEL && q->opt.granularity == 0);
}

static inline int ordo__q_locks_trie(const ordo_queue *q) {
  return q->opt.strategy == ORDO_QUEUE_PARALLEL && q->opt.granularity != 0;
}

/* The ledger-id map entry of a batch that has one (b->ledger): after its
 * qbatch_more, in its block (batch_alloc, enqueue.c). Not a field of qbatch:
 * that would cost every batch 8 bytes, and with them a 64-byte size class. */
static inline qledger *ordo__q_batch_ledger(const qbatch *b) {
  return (qledger *)(b->more + 1);
}

/* The content digest of a batch that has one (b->digest): the last bytes
 * of its block. */
static inline const unsigned char *ordo__q_batch_digest(const qbatch *b) {
  return (const unsigned char *)b + b->more->size - ORDO_QUEUE_DIGEST_BYTES;
}

/* An enqueued batch (not a placeholder) by id, its hash h given. */
static inline qbatch *ordo__q_batch_find_h(const ordo_queue *q,
                                           const char *id, size_t h) {
  qbatch *b = id != NULL ? ordo__map_get_h(&q->batches, id, h) : NULL;
  return b != NULL && b->enqueued ? b : NULL;
}

static inline qbatch *ordo__q_batch_find(const ordo_queue *q,
                                         const char *id) {
  return id != NULL ? ordo__q_batch_find_h(q, id, ordo__hash_str(id)) : NULL;
}

/* ------------------------------------------------------------------------ */
/* Heaps and the ring of ready services                                      */
/* ------------------------------------------------------------------------ */

/* A min-heap by seq of qheap_ent h[0..): a service's ready heap (by batch
 * seq) and its dep-timeout heap (by enqueue time) alike. The entries carry
 * the key, so that sifting never touches the batches themselves (at 100k
 * queued, each such touch is a cache miss). Put e at i, moving up. */
static inline void ordo__q_heap_up(qheap_ent *h, size_t i, qheap_ent e) {
  while (i > 0 && h[(i - 1) / 2].seq > e.seq) {
    h[i] = h[(i - 1) / 2];
    i = (i - 1) / 2;
  }
  h[i] = e;
}

/* Put e at i of the heap h[0..n), moving down. */
static inline void ordo__q_heap_down(qheap_ent *h, size_t n, size_t i,
                                     qheap_ent e) {
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= n)
      break;
    if (c + 1 < n && h[c + 1].seq < h[c].seq)
      c++;
    if (h[c].seq >= e.seq)
      break;
    h[i] = h[c];
    i = c;
  }
  h[i] = e;
}

/* Rebuild the heap h[0..n) after entries were dropped from it. */
static inline void ordo__q_heapify(qheap_ent *h, size_t n) {
  for (size_t i = n / 2; i-- > 0;)
    ordo__q_heap_down(h, n, i, h[i]);
}

/* s into the ring, just before the next to serve: last of this round. */
static inline void ordo__q_ring_join(ordo_queue *q, qservice *s) {
  if (q->ring == NULL) {
    s->rnext = s->rprev = s;
    q->ring = s;
  } else {
    s->rnext = q->ring;
    s->rprev = q->ring->rprev;
    s->rprev->rnext = s;
    q->ring->rprev = s;
  }
  s->in_ring = 1;
  q->nring++;
}

static inline void ordo__q_ring_leave(ordo_queue *q, qservice *s) {
  if (s->rnext == s) {
    q->ring = NULL;
  } else {
    s->rprev->rnext = s->rnext;
    s->rnext->rprev = s->rprev;
    if (q->ring == s)
      q->ring = s->rnext;
  }
  s->rnext = s->rprev = NULL;
  s->in_ring = 0;
  q->nring--;
}

/* The ready heap holds stale entries too: ordo_queue_take_id (replay) and a
 * cancel leave their batch there, counted in nstale and dropped when it
 * surfaces (a batch is stale once its state is no longer QUEUED). */
static inline size_t ordo__q_heap_ready(const qservice *s) {
  return s->nheap - s->nstale;
}

static inline void ordo__q_heap_push(ordo_queue *q, qservice *s, qbatch *b) {
  qheap_ent e;
  e.seq = b->seq;
  e.b = b;
  b->inheap = 1;
  ordo__q_heap_up(s->heap, s->nheap++, e); /* capacity reserved at enqueue */
  if (!s->in_ring)
    ordo__q_ring_join(q, s);
}

/* ------------------------------------------------------------------------ */
/* Readiness                                                                 */
/* ------------------------------------------------------------------------ */

/* b becomes QUEUED once it waits for nothing: no dep pending, and no
 * holder not granted or edge (or, serial, it is first of its service). */
static inline void ordo__q_try_ready(ordo_queue *q, qbatch *b) {
  if (b->state != ORDO_QUEUE_WAITING || b->deps_pending > 0)
    return;
  if (ordo__q_locks_serial(q) ? b->svc->first != b : b->nblockers > 0)
    return;
  b->state = ORDO_QUEUE_QUEUED;
  b->svc->waiting--;
  if (b->held)
    b->svc->held_ready++;
  else
    ordo__q_heap_push(q, b->svc, b);
}

/* ------------------------------------------------------------------------ */
/* The lock table (locks.c)                                                  */
/* ------------------------------------------------------------------------ */

typedef void (*qholder_fn)(const qholder *h, void *arg);

/* Start loading the flat index slot where a probe for hash h begins. */
static inline void ordo__q_flat_prefetch(const qservice *s, size_t h) {
  if (!s->trie)
    ordo__map_prefetch(&s->flat, h);
}

/* A node for key[0..depth), with trie links when trie; NULL when out of
 * memory. */
qnode *ordo__q_node_alloc(qpool *pool, const char *key, size_t depth,
                          int trie);

/* Before a batch's addresses are looked up and added: keep the service
 * flat, with room for them, or move it to the trie. ORDO_E_NOMEM changes
 * nothing. */
int ordo__q_locks_prepare(qservice *s, const qholder *fp, size_t nfp);

/* The node to link a holder of addr[0..len) (hash h) to, made if need be
 * (ordo__q_locks_prepare reserved the room). NULL on ORDO_E_NOMEM. */
qnode *ordo__q_locks_node(qservice *s, const char *addr, size_t len,
                          size_t h);

/* Append h to n; returns whether it is granted at once. */
static inline int ordo__q_holder_link(qholder *h, qnode *n) {
  qholder **list = h->write ? n->writers : n->readers;
  int granted = n->writers[0] == NULL && (!h->write || n->readers[0] == NULL);
  h->node = n;
  h->next = NULL;
  h->prev = list[1];
  if (list[1] != NULL)
    list[1]->next = h;
  else
    list[0] = h;
  list[1] = h;
  h->granted = (unsigned char)granted;
  if (!granted && !h->write && n->rgate == NULL)
    n->rgate = h;
  return granted;
}

/* Take h off its node (if linked), granting the holders behind it. */
void ordo__q_holder_unlink(ordo_queue *q, qholder *h);

/* A node that may hold nothing now: dropped (flat) or pruned (trie). */
void ordo__q_locks_tidy(qservice *s, qnode *n, size_t h);

/* Free s's lock table (its nodes and index; not s). */
void ordo__q_locks_free(qservice *s);

/* Call fn on every holder of the trie under root whose address is a prefix
 * of addr[0..len), or has it as a prefix. writers_only: skip the readers. */
void ordo__q_trie_overlapping(const qnode *root, const char *addr, size_t len,
                              int writers_only, qholder_fn fn, void *arg);

/* The same for the address of a, a linked holder of s (either form). */
void ordo__q_locks_overlapping(const qservice *s, const qholder *a,
                               int writers_only, qholder_fn fn, void *arg);

/* ------------------------------------------------------------------------ */
/* Across the other files                                                    */
/* ------------------------------------------------------------------------ */

/* queue.c: free b (a placeholder, an enqueued batch or a failed one). */
void ordo__q_batch_free(ordo_queue *q, qbatch *b);

/* services.c: the service called name, made if need be; NULL when out of
 * memory. */
qservice *ordo__q_service_get(ordo_queue *q, const char *name);

/* services.c: free s and what it owns (its lock table, heaps and name). */
void ordo__q_service_free(qservice *s);

/* finish.c: finish b (SUBMITTED, or WAITING) with outcome, and every
 * dependant the cascade reaches; reason is owned by the batch from here.
 * may_halt 0: no INVALID of it halts its service. */
void ordo__q_finish_batches(ordo_queue *q, qbatch *b, ordo_queue_state outcome,
                            char *reason, int may_halt);

/* finish.c: why b goes INVALID in the cascade ("dep T1 is invalid"), owned
 * by b, or ordo__q_dep_invalid_text. */
char *ordo__q_dep_invalid_reason(const ordo_queue *q, const qbatch *b);

#endif

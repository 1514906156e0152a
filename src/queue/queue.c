/*
 * queue.c — the in-memory scheduler: lock table, readiness, take, finish.
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
 * granted by their node's queue (see "Grants"), plus, in a trie, one edge
 * per earlier unfinished batch holding a prefix or an extension of one of
 * its addresses (counted once, at enqueue: later batches never block
 * earlier ones). Finishing a batch unlinks its holders, which grants the
 * holders behind them, and releases its edges; a batch whose count reaches
 * zero is ready. No scan of the queue anywhere.
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
#include "base/base.h"
#include "queue/queue.h"
#include "queue/pool.h"
#include "runtime/runtime.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* A hint to start loading p's cache line: the scheduler's time at 100k
 * queued batches is cache misses, and a batch's few independent ones
 * (its id's slot, one index slot per address) can overlap. */
#if defined(__GNUC__) || defined(__clang__)
#define ORDO_PREFETCH(p) __builtin_prefetch(p)
#else
#define ORDO_PREFETCH(p) ((void)(p))
#endif

typedef struct qbatch qbatch;
typedef struct qheap_ent {
  uint64_t seq;
  qbatch *b;
} qheap_ent;
typedef struct qnode qnode;
typedef struct qservice qservice;

/* A slot of a service's flat index: the node's hash beside it, in one
 * 16-byte entry, so that a probe reads one cache line and touches no node
 * but the one sought (the hashes once had an array of their own: a second
 * miss per probe). node NULL: empty. */
typedef struct qflat_ent {
  size_t hash;
  qnode *node;
} qflat_ent;

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
  char *id; /* first: the id map reads it as the key (map_key) */
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
_Static_assert(offsetof(qbatch, id) == 0, "map_key reads a batch's id");
_Static_assert(sizeof(qbatch) <= 128, "a batch's struct fits two lines");


struct qservice {
  char *name; /* first: the service map reads it as the key (map_key) */
  /* The lock table in one of two forms. Flat (trie == 0): every address
   * held has the same length flat_len, so two addresses overlap only when
   * equal, and a hash index of nodes (no trie links) answers every query
   * in one probe; this is the common case of full Sawtooth addresses. The
   * first batch with an address of another length turns the service into
   * the trie for good (locks_prepare). */
  int trie;
  qnode *root;     /* trie: the root (the empty address) */
  qflat_ent *flat; /* flat: open addressing, linear probing */
  qpool *pool;     /* the queue's: nodes come from it */
  size_t flatcap, nflat, flat_len;
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
};
_Static_assert(offsetof(qservice, name) == 0,
               "map_key reads a service's name");

/* An entry of the ledger-id map, in its batch's block (after qbatch_more)
 * and only for a batch that has a ledger id; the id's text follows it. */
typedef struct qledger {
  char *lid; /* first: the ledger map reads it as the key (map_key) */
  qbatch *b;
} qledger;

/* The id and service maps. A value's first member is its key (a char *):
 * entries hold the hash and the value, 16 bytes, and a probe compares keys
 * only where the hashes match. */
typedef struct qmap_entry {
  size_t hash;
  void *val; /* NULL: an empty slot */
} qmap_entry;

typedef struct qmap {
  qmap_entry *e;
  size_t cap, n;
  size_t key_at; /* the key's usual offset in a value, or 0: a hint */
} qmap;

struct ordo_queue {
  ordo_queue_options opt;
  qmap batches;  /* id -> qbatch (placeholders included) */
  qmap services; /* name -> qservice */
  qmap ledgers;  /* ledger id -> qledger, for the batches that have one
                    (finished ones included): empty, never probed, while
                    no batch has a ledger id */
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

static const char dep_invalid_text[] = "a dep is invalid";

/* ------------------------------------------------------------------------ */
/* Small helpers                                                             */
/* ------------------------------------------------------------------------ */

/* Grow *arr (element size sz) so that it holds at least need elements. */
static int reserve(void **arr, size_t *cap, size_t need, size_t sz) {
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

/*
 * A word-at-a-time hash in two independent lanes (addresses are 70 bytes:
 * a byte-wise FNV was a tenth of the scheduler's time, and one lane's
 * multiply chain still a sixteenth). The tail is the last 8 bytes read
 * again, overlapping, so that every load has a fixed size and no memcpy
 * call is made. Not a cryptographic hash: the tables it indexes only probe
 * longer when keys collide.
 */
static uint64_t hash_load8(const char *p) {
  uint64_t w;
  memcpy(&w, p, 8);
  return w;
}

static size_t hash_bytes(const char *p, size_t n) {
  uint64_t a = 0x9e3779b97f4a7c15ull ^ n, b = 0xc2b2ae3d27d4eb4full, w = 0;
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    a = (a ^ hash_load8(p + i)) * 0xff51afd7ed558ccdull;
    b = (b ^ hash_load8(p + i + 8)) * 0xc4ceb9fe1a85ec53ull;
    a ^= a >> 32;
    b ^= b >> 29;
  }
  if (n >= 8) {
    if (i + 8 < n) {
      a = (a ^ hash_load8(p + i)) * 0xff51afd7ed558ccdull;
      a ^= a >> 32;
    }
    if (i < n)
      b = (b ^ hash_load8(p + n - 8)) * 0xc4ceb9fe1a85ec53ull;
  } else {
    for (; i < n; i++)
      w = (w << 8) | (unsigned char)p[i];
    b = (b ^ w) * 0xc4ceb9fe1a85ec53ull;
  }
  a ^= b * 0x9e3779b97f4a7c15ull;
  a ^= a >> 29;
  a *= 0xbf58476d1ce4e5b9ull;
  a ^= a >> 32;
  return (size_t)a;
}

/* reserve() for a 32-bit capacity: ORDO_E_NOMEM past UINT32_MAX. */
static int reserve_u32(void **arr, uint32_t *cap, size_t need, size_t sz) {
  size_t c = *cap;
  if (need > UINT32_MAX || reserve(arr, &c, need, sz) != ORDO_OK)
    return ORDO_E_NOMEM;
  *cap = c > UINT32_MAX ? UINT32_MAX : (uint32_t)c;
  return ORDO_OK;
}

static size_t hash_str(const char *s) { return hash_bytes(s, strlen(s)); }

/* The key of a value: the string its first member points to. */
static const char *map_key(const void *val) {
  return *(const char *const *)val;
}

/* The slot of key (hash h): its entry, or the empty one where it would go.
 * Only an entry whose hash matches is compared, so a miss costs no visit to
 * another batch's memory. cap > 0. */
static qmap_entry *map_slot(const qmap *m, const char *key, size_t h) {
  size_t i = h & (m->cap - 1);
  for (;; i = (i + 1) & (m->cap - 1)) {
    const void *v = m->e[i].val;
    if (v == NULL)
      break;
    if (m->e[i].hash != h)
      continue;
    /* Where the key usually is, loading beside the value's first line
     * (which holds the pointer to it) instead of after it. */
    if (m->key_at != 0)
      ORDO_PREFETCH((const char *)v + m->key_at);
    if (strcmp(map_key(v), key) == 0)
      break;
  }
  return &m->e[i];
}

/* Start loading the slot where a probe for hash h begins. */
static void map_prefetch(const qmap *m, size_t h) {
  if (m->cap > 0)
    ORDO_PREFETCH(&m->e[h & (m->cap - 1)]);
}

static void *map_get_h(const qmap *m, const char *key, size_t h) {
  return m->cap > 0 ? map_slot(m, key, h)->val : NULL;
}

static void *map_get(const qmap *m, const char *key) {
  return map_get_h(m, key, hash_str(key));
}

/* Room for `extra` more keys at load <= 1/2, so a later insert cannot fail. */
static int map_reserve(qmap *m, size_t extra) {
  size_t ncap, i;
  qmap old;

  if ((m->n + extra) * 2 <= m->cap)
    return ORDO_OK;
  ncap = m->cap ? m->cap : 16;
  while ((m->n + extra) * 2 > ncap)
    ncap *= 2;
  old = *m;
  m->e = qtable_calloc(ncap * sizeof(*m->e));
  if (m->e == NULL) {
    *m = old;
    return ORDO_E_NOMEM;
  }
  m->cap = ncap;
  for (i = 0; i < old.cap; i++) {
    if (old.e[i].val != NULL) {
      size_t j = old.e[i].hash & (ncap - 1);
      while (m->e[j].val != NULL)
        j = (j + 1) & (ncap - 1);
      m->e[j] = old.e[i];
    }
  }
  qtable_free(old.e, old.cap * sizeof(*old.e));
  return ORDO_OK;
}

/* Put val (whose key hashes to h) in; room reserved. */
static void map_put(qmap *m, size_t h, void *val) {
  qmap_entry *e = map_slot(m, map_key(val), h);
  if (e->val == NULL)
    m->n++;
  e->hash = h;
  e->val = val;
}

/* The state the owner keeps for a forgotten batch (opt.forgotten_state),
 * or ORDO_QUEUE_QUEUED (0) when there is none: ask only for an id the
 * queue does not have. */
static ordo_queue_state forgotten(const ordo_queue *q, const char *id) {
  return q->opt.forgotten_state != NULL
             ? q->opt.forgotten_state(q->opt.hook_ud, id)
             : ORDO_QUEUE_QUEUED;
}

/* Remove the entry e of m (open addressing, linear probing: the entries
 * after it in its run move back where a probe would stop short of them). */
static void map_del(qmap *m, qmap_entry *e) {
  size_t mask = m->cap - 1, i = (size_t)(e - m->e), j = i;
  for (;;) {
    size_t home;
    j = (j + 1) & mask;
    if (m->e[j].val == NULL)
      break;
    home = m->e[j].hash & mask;
    /* The entry at j may fill the hole at i unless its home lies
     * cyclically in (i, j]. */
    if (i <= j ? (home <= i || home > j) : (home <= i && home > j)) {
      m->e[i] = m->e[j];
      i = j;
    }
  }
  m->e[i].val = NULL;
  m->e[i].hash = 0;
  m->n--;
}

/* Halve a mostly empty table (under 1/8 full) down to load <= 1/4, so that
 * a queue that held a million batches once does not keep their slots.
 * Out of memory keeps the table as it is. */
static void map_shrink(qmap *m) {
  size_t ncap = m->cap, i;
  qmap_entry *ne;
  if (m->cap <= 64 || m->n * 8 >= m->cap)
    return;
  while (ncap > 64 && m->n * 4 <= ncap / 2)
    ncap /= 2;
  if ((ne = qtable_calloc(ncap * sizeof(*ne))) == NULL)
    return;
  for (i = 0; i < m->cap; i++)
    if (m->e[i].val != NULL) {
      size_t k = m->e[i].hash & (ncap - 1);
      while (ne[k].val != NULL)
        k = (k + 1) & (ncap - 1);
      ne[k] = m->e[i];
    }
  qtable_free(m->e, m->cap * sizeof(*m->e));
  m->e = ne;
  m->cap = ncap;
}

/* A growable string for explanations. */
typedef struct sbuf {
  char *p;
  size_t len, cap;
  int failed;
} sbuf;

static void sb_printf(sbuf *s, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static void sb_printf(sbuf *s, const char *fmt, ...) {
  va_list ap;
  int n;

  if (s->failed)
    return;
  va_start(ap, fmt);
  n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0 || reserve((void **)&s->p, &s->cap, s->len + (size_t)n + 1, 1)) {
    s->failed = 1;
    return;
  }
  va_start(ap, fmt);
  vsnprintf(s->p + s->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  s->len += (size_t)n;
}

/* ------------------------------------------------------------------------ */
/* The lock table                                                            */
/* ------------------------------------------------------------------------ */

static int node_empty(const qnode *n) {
  return n->readers[0] == NULL && n->writers[0] == NULL;
}

/* The slot of the child of n whose edge starts with ch, or -1 (edges of
 * siblings differ in their first byte). */
static long kid_slot(const qnode *n, unsigned char ch) {
  /* A plain loop: nodes have few children (16 for hex addresses), and a
   * memchr call costs more than the scan. */
  for (unsigned i = 0; i < n->t->nkids; i++)
    if (n->t->kch[i] == ch)
      return (long)i;
  return -1;
}

static qnode *node_child(const qnode *n, unsigned char ch) {
  long i = kid_slot(n, ch);
  return i >= 0 ? n->t->kids[i] : NULL;
}

/* Room for one more child. */
static int kids_reserve(qnode *n) {
  unsigned ncap;
  qnode **k;
  if (n->t->nkids < n->t->capkids)
    return ORDO_OK;
  ncap = n->t->capkids ? n->t->capkids * 2 : 2;
  if ((k = malloc(ncap * (sizeof(*k) + 1))) == NULL)
    return ORDO_E_NOMEM;
  if (n->t->nkids > 0) {
    memcpy(k, n->t->kids, n->t->nkids * sizeof(*k));
    memcpy((unsigned char *)(k + ncap), n->t->kch, n->t->nkids);
  }
  free(n->t->kids);
  n->t->kids = k;
  n->t->kch = (unsigned char *)(k + ncap);
  n->t->capkids = ncap;
  return ORDO_OK;
}

/* Add c under n; room reserved. */
static void kid_add(qnode *n, qnode *c) {
  n->t->kch[n->t->nkids] = (unsigned char)c->key[n->depth];
  n->t->kids[n->t->nkids++] = c;
  c->t->parent = n;
}

static void kid_remove(qnode *n, const qnode *c) {
  long i = kid_slot(n, (unsigned char)c->key[n->depth]);
  n->t->nkids--;
  n->t->kids[i] = n->t->kids[n->t->nkids];
  n->t->kch[i] = n->t->kch[n->t->nkids];
}

/* Give a node its trie links (none yet). */
static int node_trie_init(qpool *pool, qnode *n) {
  if ((n->t = qpool_alloc(pool, sizeof(*n->t))) == NULL)
    return ORDO_E_NOMEM;
  memset(n->t, 0, sizeof(*n->t));
  return ORDO_OK;
}

static void node_trie_drop(qpool *pool, qnode *n) {
  if (n->t != NULL) {
    free(n->t->kids);
    qpool_free(pool, n->t, sizeof(*n->t));
    n->t = NULL;
  }
}

/* A node for key[0..depth), with trie links when trie. */
static qnode *node_alloc(qpool *pool, const char *key, size_t depth,
                         int trie) {
  qnode *n = qpool_alloc(pool, sizeof(*n) + depth);
  if (n == NULL)
    return NULL;
  memset(n, 0, sizeof(*n));
  memcpy(n->key, key, depth);
  n->depth = (uint32_t)depth;
  if (trie && node_trie_init(pool, n) != ORDO_OK) {
    qpool_free(pool, n, sizeof(*n) + depth);
    return NULL;
  }
  return n;
}

static void node_free(qpool *pool, qnode *n) {
  node_trie_drop(pool, n);
  qpool_free(pool, n, sizeof(*n) + n->depth);
}

/* Put repl where old is under old's parent. Their edges start alike: repl's
 * key is a prefix of old's, or old's of repl's. */
static void node_replace(qnode *old, qnode *repl) {
  qnode *p = old->t->parent;
  p->t->kids[kid_slot(p, (unsigned char)old->key[p->depth])] = repl;
  repl->t->parent = p;
}

/* Tidy up from n towards the root: a node that holds nothing is freed when
 * it has no children and spliced out when it has one. Every node left then
 * has a holder at or below it and branches or holds, which bounds subtree
 * walks by the holders found and the trie's size by twice the holders. */
static void node_prune(qpool *pool, qnode *n) {
  while (n->t->parent != NULL && node_empty(n)) {
    qnode *p = n->t->parent;
    if (n->t->nkids == 0)
      kid_remove(p, n);
    else if (n->t->nkids == 1)
      node_replace(n, n->t->kids[0]);
    else
      return; /* a branch point stays */
    node_free(pool, n);
    n = p;
  }
}

/*
 * The node for addr[0..len), created on the way (splitting an edge where
 * addr leaves it). leaf, when not NULL, is an existing node for exactly
 * addr that becomes the new node (a flat index moving into the trie; no
 * node of the trie may be for addr or have it as a prefix). NULL on
 * ORDO_E_NOMEM, the trie still well formed.
 */
static qnode *trie_place(qpool *pool, qnode *root, const char *addr,
                         size_t len, qnode *leaf) {
  qnode *n = root, *c, *mid;
  size_t m, end;

  for (;;) {
    if (n->depth == len)
      return n;
    if ((c = node_child(n, (unsigned char)addr[n->depth])) == NULL) {
      if (kids_reserve(n) ||
          (leaf == NULL && (leaf = node_alloc(pool, addr, len, 1)) == NULL))
        return NULL;
      kid_add(n, leaf);
      return leaf;
    }
    /* How far addr follows c's edge. */
    end = c->depth < len ? c->depth : len;
    for (m = n->depth + 1; m < end && c->key[m] == addr[m]; m++)
      ;
    if (m == c->depth) {
      n = c;
      continue;
    }
    /* Split c's edge at m: a new node for addr[0..m) takes c's place. */
    if ((mid = node_alloc(pool, addr, m, 1)) == NULL)
      return NULL;
    if (kids_reserve(mid)) {
      node_free(pool, mid);
      return NULL;
    }
    node_replace(c, mid);
    kid_add(mid, c);
    n = mid;
  }
}

static qnode *node_get(qpool *pool, qnode *root, const char *addr,
                       size_t len) {
  return trie_place(pool, root, addr, len, NULL);
}

static void nodes_free(qpool *pool, qnode *root) {
  qnode *cur = root;
  while (cur != NULL) {
    qnode *p;
    if (cur->t->nkids > 0) {
      cur = cur->t->kids[--cur->t->nkids]; /* detached: never visited again */
      continue;
    }
    p = cur->t->parent;
    node_free(pool, cur);
    cur = p;
  }
}

/* The next node after cur in a pre-order walk of the subtree of top, or
 * NULL. Siblings are found through the parent's slots. */
static const qnode *walk_next(const qnode *top, const qnode *cur) {
  if (cur->t->nkids > 0)
    return cur->t->kids[0];
  while (cur != top) {
    const qnode *p = cur->t->parent;
    long i = kid_slot(p, (unsigned char)cur->key[p->depth]);
    if ((unsigned)i + 1 < p->t->nkids)
      return p->t->kids[i + 1];
    cur = p;
  }
  return NULL;
}

typedef void (*holder_fn)(const qholder *h, void *arg);

static void node_visit(const qnode *n, int writers_only, holder_fn fn,
                       void *arg) {
  const qholder *h;
  for (h = n->writers[0]; h != NULL; h = h->next)
    fn(h, arg);
  if (!writers_only)
    for (h = n->readers[0]; h != NULL; h = h->next)
      fn(h, arg);
}

/* Call fn on every holder whose address is a prefix of addr, or has addr
 * as a prefix: the candidates for a conflict with addr. writers_only: skip
 * the readers (a read conflicts with writers alone). */
static void trie_overlapping(const qnode *root, const char *addr, size_t len,
                             int writers_only, holder_fn fn, void *arg) {
  const qnode *n = root, *c, *cur;
  size_t m;

  for (;;) {
    node_visit(n, writers_only, fn, arg);
    if (n->depth == len)
      break;
    if ((c = node_child(n, (unsigned char)addr[n->depth])) == NULL)
      return;
    for (m = n->depth + 1; m < c->depth && m < len && c->key[m] == addr[m];
         m++)
      ;
    if (m < c->depth && m < len)
      return; /* addr leaves c's edge: nothing below overlaps */
    if (m < c->depth) {
      /* addr ends inside c's edge: c and everything below have it as a
       * prefix. */
      node_visit(c, writers_only, fn, arg);
      n = c;
      break;
    }
    n = c;
  }
  /* Descendants of n: pre-order without a stack (addresses may be long). */
  for (cur = walk_next(n, n); cur != NULL; cur = walk_next(n, cur))
    node_visit(cur, writers_only, fn, arg);
}

static void locks_tidy(qservice *s, qnode *n, size_t h);
static void try_ready(ordo_queue *q, qbatch *b);

/*
 * Grants. The holders of one node are in submission order, as in a lock
 * manager's queue: a reader is granted while no writer comes before it, a
 * writer once it is first of all. A batch's nblockers counts its holders
 * not granted (plus, in a trie, its edges to earlier batches holding a
 * prefix of an address or an address it is a prefix of). Granting follows
 * the list, so a hot address with n writers costs n grants, not n^2 edges,
 * and a batch that leaves from the middle (the cascade) needs no hand-over.
 */
static void holder_grant(ordo_queue *q, qholder *h) {
  h->granted = 1;
  h->b->nblockers--;
  try_ready(q, h->b);
}

/* The first writer of n may go once no reader comes before it. */
static void node_grant_writer(ordo_queue *q, qnode *n) {
  qholder *w = n->writers[0], *r = n->readers[0];
  if (w != NULL && !w->granted && (r == NULL || r->seq > w->seq))
    holder_grant(q, w);
}

/* The first writer changed: the readers before the new one go, then it may. */
static void node_grant_readers(ordo_queue *q, qnode *n) {
  qholder *w = n->writers[0], *r;
  for (r = n->rgate; r != NULL && (w == NULL || r->seq < w->seq); r = r->next)
    holder_grant(q, r);
  n->rgate = r;
  node_grant_writer(q, n);
}

static void holder_unlink(ordo_queue *q, qholder *h) {
  qnode *n = h->node;
  qholder **list;
  int was_first;
  if (n == NULL)
    return;
  list = h->write ? n->writers : n->readers;
  was_first = list[0] == h;
  if (!h->write && n->rgate == h)
    n->rgate = h->next;
  if (h->prev != NULL)
    h->prev->next = h->next;
  else
    list[0] = h->next;
  if (h->next != NULL)
    h->next->prev = h->prev;
  else
    list[1] = h->prev;
  h->node = NULL;
  h->prev = h->next = NULL;
  if (was_first) {
    if (h->write)
      node_grant_readers(q, n);
    else
      node_grant_writer(q, n);
  }
  locks_tidy(h->b->svc, n, h->hash);
}

/* Append h to n; returns whether it is granted at once. */
static int holder_link(qholder *h, qnode *n) {
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

/* ------------------------------------------------------------------------ */
/* The flat index and the choice of form                                     */
/* ------------------------------------------------------------------------ */

/* The slot of addr in the flat index: its node's, or the empty one where it
 * would go. flatcap > 0. */
static size_t flat_slot(const qservice *s, const char *addr, size_t len,
                        size_t h) {
  size_t i = h & (s->flatcap - 1);
  for (;;) {
    const qflat_ent *e = &s->flat[i];
    /* Every node here is flat_len long, as addr is (locks_prepare). */
    if (e->node == NULL ||
        (e->hash == h && memcmp(e->node->key, addr, len) == 0))
      return i;
    i = (i + 1) & (s->flatcap - 1);
  }
}

/* Start loading the slot where a probe for hash h begins. */
static void flat_prefetch(const qservice *s, size_t h) {
  if (!s->trie && s->flatcap > 0)
    ORDO_PREFETCH(&s->flat[h & (s->flatcap - 1)]);
}

/* Room for `extra` more nodes at load <= 1/2. */
static int flat_reserve(qservice *s, size_t extra) {
  size_t ncap, i;
  qflat_ent *nf;
  if ((s->nflat + extra) * 2 <= s->flatcap)
    return ORDO_OK;
  ncap = s->flatcap ? s->flatcap : 16;
  while ((s->nflat + extra) * 2 > ncap)
    ncap *= 2;
  if ((nf = qtable_calloc(ncap * sizeof(*nf))) == NULL)
    return ORDO_E_NOMEM;
  for (i = 0; i < s->flatcap; i++) {
    if (s->flat[i].node != NULL) {
      size_t j = s->flat[i].hash & (ncap - 1);
      while (nf[j].node != NULL)
        j = (j + 1) & (ncap - 1);
      nf[j] = s->flat[i];
    }
  }
  qtable_free(s->flat, s->flatcap * sizeof(*s->flat));
  s->flat = nf;
  s->flatcap = ncap;
  return ORDO_OK;
}

/* Remove n (hash h) by backward shift, so no tombstones build up. */
static void flat_remove(qservice *s, const qnode *n, size_t h) {
  size_t i = flat_slot(s, n->key, n->depth, h), j = i;
  for (;;) {
    size_t home;
    j = (j + 1) & (s->flatcap - 1);
    if (s->flat[j].node == NULL)
      break;
    home = s->flat[j].hash & (s->flatcap - 1);
    /* Move j back to i unless its home lies cyclically in (i, j]. */
    if ((j > i && (home <= i || home > j)) ||
        (j < i && home <= i && home > j)) {
      s->flat[i] = s->flat[j];
      i = j;
    }
  }
  s->flat[i].node = NULL;
  s->nflat--;
}

/* Take a half-built trie apart after a failed change to the trie form:
 * the index's nodes (they all hold something) lose their links, the nodes
 * made by splits (they hold nothing) are freed. */
static void trie_dismantle(qpool *pool, qnode *root) {
  qnode *cur = root;
  while (cur != NULL) {
    qnode *p;
    if (cur->t->nkids > 0) {
      cur = cur->t->kids[--cur->t->nkids];
      continue;
    }
    p = cur->t->parent;
    if (cur == root) {
      free(cur->t->kids);
      memset(cur->t, 0, sizeof(*cur->t));
    } else if (node_empty(cur)) {
      node_free(pool, cur);
    } else {
      node_trie_drop(pool, cur); /* an index node again */
    }
    cur = p;
  }
}

/*
 * Before a batch's addresses are looked up and added: keep the service flat
 * if they all have its length (or it holds nothing yet), with room in the
 * index for them; else move every node into a trie. Either way the answers
 * are the same; ORDO_E_NOMEM changes nothing.
 */
static int locks_prepare(qservice *s, const qholder *fp, size_t nfp) {
  size_t i, len;
  if (s->trie || nfp == 0)
    return ORDO_OK;
  len = s->nflat > 0 ? s->flat_len : fp[0].len;
  for (i = 0; i < nfp && fp[i].len == len; i++)
    ;
  if (i == nfp && len > 0) { /* "" (lock everything) needs the trie's root */
    if (flat_reserve(s, nfp))
      return ORDO_E_NOMEM;
    s->flat_len = len;
    return ORDO_OK;
  }
  /* Every index node gets trie links first, then its place. */
  for (i = 0; i < s->flatcap; i++) {
    qnode *n = s->flat[i].node;
    if (n != NULL && node_trie_init(s->pool, n) != ORDO_OK) {
      while (i-- > 0)
        if (s->flat[i].node != NULL)
          node_trie_drop(s->pool, s->flat[i].node);
      return ORDO_E_NOMEM;
    }
  }
  for (i = 0; i < s->flatcap; i++)
    if (s->flat[i].node != NULL &&
        trie_place(s->pool, s->root, s->flat[i].node->key,
                   s->flat[i].node->depth, s->flat[i].node) != s->flat[i].node) {
      size_t k;
      trie_dismantle(s->pool, s->root);
      /* Nodes not placed yet still have their (empty) links. */
      for (k = 0; k < s->flatcap; k++)
        if (s->flat[k].node != NULL)
          node_trie_drop(s->pool, s->flat[k].node);
      return ORDO_E_NOMEM;
    }
  qtable_free(s->flat, s->flatcap * sizeof(*s->flat));
  s->flat = NULL;
  s->flatcap = s->nflat = 0;
  s->trie = 1;
  return ORDO_OK;
}

/* The holders that overlap a's address (a linked holder's: its node has
 * the address as key). */
static void locks_overlapping(const qservice *s, const qholder *a,
                              int writers_only, holder_fn fn, void *arg) {
  if (s->trie) {
    trie_overlapping(s->root, a->node->key, a->len, writers_only, fn, arg);
  } else {
    /* All held addresses have this length: only an equal one overlaps,
     * and that is a's own node. */
    node_visit(a->node, writers_only, fn, arg);
  }
}

/* The node to link a holder of addr[0..len) (hash h) to, made if need be
 * (locks_prepare reserved the room). NULL on ORDO_E_NOMEM. */
static qnode *locks_node(qservice *s, const char *addr, size_t len,
                         size_t h) {
  size_t i;
  qnode *n;
  if (s->trie)
    return node_get(s->pool, s->root, addr, len);
  i = flat_slot(s, addr, len, h);
  if (s->flat[i].node != NULL)
    return s->flat[i].node;
  if ((n = node_alloc(s->pool, addr, len, 0)) == NULL)
    return NULL;
  s->flat[i].hash = h;
  s->flat[i].node = n;
  s->nflat++;
  return n;
}

/* A node that may hold nothing now: drop it (flat) or prune (trie). */
static void locks_tidy(qservice *s, qnode *n, size_t h) {
  if (s->trie) {
    node_prune(s->pool, n);
  } else if (node_empty(n)) {
    flat_remove(s, n, h);
    node_free(s->pool, n);
  }
}

static void locks_free(qservice *s) {
  for (size_t i = 0; i < s->flatcap; i++)
    if (s->flat[i].node != NULL)
      node_free(s->pool, s->flat[i].node);
  qtable_free(s->flat, s->flatcap * sizeof(*s->flat));
  nodes_free(s->pool, s->root);
}

/* ------------------------------------------------------------------------ */
/* Services and the ready heap                                               */
/* ------------------------------------------------------------------------ */

static int locks_serial(const ordo_queue *q) {
  return q->opt.strategy == ORDO_QUEUE_SERIAL ||
         (q->opt.strategy == ORDO_QUEUE_PARALLEL && q->opt.granularity == 0);
}

static int locks_trie(const ordo_queue *q) {
  return q->opt.strategy == ORDO_QUEUE_PARALLEL && q->opt.granularity != 0;
}

static qservice *service_get(ordo_queue *q, const char *name) {
  qservice *s = map_get(&q->services, name);
  if (s != NULL)
    return s;
  if (map_reserve(&q->services, 1) ||
      reserve((void **)&q->svcs, &q->capsvcs, q->nsvcs + 1, sizeof(*q->svcs)))
    return NULL;
  if ((s = calloc(1, sizeof(*s))) == NULL)
    return NULL;
  if ((s->name = ordo__strdup(name)) == NULL ||
      (s->root = node_alloc(&q->pool, "", 0, 1)) == NULL) {
    free(s->name);
    free(s);
    return NULL;
  }
  s->pool = &q->pool;
  map_put(&q->services, hash_str(s->name), s);
  q->svcs[q->nsvcs++] = s;
  return s;
}

/* The ready heap: a min-heap by seq whose entries carry the seq, so that
 * sifting never touches the batches themselves (at 100k queued, each such
 * touch is a cache miss). take_id (replay) leaves its batch in the heap as
 * a stale entry, counted in nstale and dropped when it surfaces: a batch
 * is stale once its state is no longer QUEUED. */
static void heap_sift_up(qservice *s, size_t i, qheap_ent e) {
  while (i > 0 && s->heap[(i - 1) / 2].seq > e.seq) {
    s->heap[i] = s->heap[(i - 1) / 2];
    i = (i - 1) / 2;
  }
  s->heap[i] = e;
}

static void heap_sift_down(qservice *s, size_t i, qheap_ent e) {
  size_t n = s->nheap;
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= n)
      break;
    if (c + 1 < n && s->heap[c + 1].seq < s->heap[c].seq)
      c++;
    if (s->heap[c].seq >= e.seq)
      break;
    s->heap[i] = s->heap[c];
    i = c;
  }
  s->heap[i] = e;
}

/* s into the ring, just before the next to serve: last of this round. */
static void ring_join(ordo_queue *q, qservice *s) {
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

static void ring_leave(ordo_queue *q, qservice *s) {
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

static size_t heap_ready(const qservice *s) { return s->nheap - s->nstale; }

static void heap_push(ordo_queue *q, qservice *s, qbatch *b) {
  qheap_ent e;
  e.seq = b->seq;
  e.b = b;
  b->inheap = 1;
  heap_sift_up(s, s->nheap++, e); /* capacity reserved at enqueue */
  if (!s->in_ring)
    ring_join(q, s);
}

/* The ready batch with the lowest seq, or NULL; stale entries are dropped
 * on the way. */
static qbatch *heap_pop(qservice *s) {
  while (s->nheap > 0) {
    qbatch *top = s->heap[0].b;
    qheap_ent last = s->heap[--s->nheap];
    if (s->nheap > 0)
      heap_sift_down(s, 0, last);
    top->inheap = 0;
    if (top->state == ORDO_QUEUE_QUEUED)
      return top;
    s->nstale--;
  }
  return NULL;
}

/* ------------------------------------------------------------------------ */
/* Readiness and finishing                                                   */
/* ------------------------------------------------------------------------ */

static void try_ready(ordo_queue *q, qbatch *b) {
  if (b->state != ORDO_QUEUE_WAITING || b->deps_pending > 0)
    return;
  if (locks_serial(q) ? b->svc->first != b : b->nblockers > 0)
    return;
  b->state = ORDO_QUEUE_QUEUED;
  b->svc->waiting--;
  if (b->held)
    b->svc->held_ready++;
  else
    heap_push(q, b->svc, b);
}

/* Start loading what finishing b visits: each address's node, its
 * neighbours there and its index slot, and the batches it blocks. They are
 * independent cache misses; one after another they were most of a
 * finish's time at 100k queued. */
static void finish_prefetch(const qbatch *b) {
  size_t i;
  for (i = 0; i < b->nfp; i++) {
    const qholder *h = &b->fp[i];
    ORDO_PREFETCH(h->node);
    if (h->next != NULL)
      ORDO_PREFETCH(h->next);
    if (h->prev != NULL)
      ORDO_PREFETCH(h->prev);
    if (h->node != NULL)
      flat_prefetch(b->svc, h->hash);
  }
  for (i = 0; i < b->nwaiters; i++)
    ORDO_PREFETCH(b->waiters[i]);
}

/* Why b goes INVALID in the cascade: "dep T1 is invalid", naming its first
 * invalid dep, for status and explain (owned by b, or dep_invalid_text
 * when there is no memory for it). */
static char *dep_invalid_reason(const ordo_queue *q, const qbatch *b) {
  size_t k;
  for (k = 0; k < b->more->ndeps; k++) {
    const char *id = b->more->deps[k];
    const qbatch *dep = map_get(&q->batches, id);
    if (dep != NULL ? dep->state == ORDO_QUEUE_INVALID
                    : forgotten(q, id) == ORDO_QUEUE_INVALID) {
      size_t n = strlen(id) + 20;
      char *why = malloc(n);
      if (why == NULL)
        break;
      snprintf(why, n, "dep %s is invalid", id);
      return why;
    }
  }
  return (char *)dep_invalid_text;
}

/*
 * Finish b (SUBMITTED, or WAITING when the cascade reaches it, a cancel or
 * an expiry) and every dependant the cascade reaches, with a worklist
 * instead of recursion (dep chains may be long). reason is owned by the
 * batch from here. may_halt 0 (a cancel): no INVALID of it halts its
 * service.
 */
static void finish_batches(ordo_queue *q, qbatch *b, ordo_queue_state outcome,
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
      holder_unlink(q, &b->fp[i]);
    if (!q->opt.keep_payloads && b->payload != NULL) {
      free(b->payload);
      b->payload = NULL;
      b->payload_len = 0;
    }
    if (locks_serial(q)) {
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
        try_ready(q, s->first);
    }
    for (i = 0; i < b->nwaiters; i++) {
      qbatch *w = b->waiters[i];
      w->refs--;
      if (w->state == ORDO_QUEUE_WAITING) {
        w->nblockers--;
        try_ready(q, w);
      }
    }
    for (i = 0; i < b->ndependants; i++) {
      qbatch *d = b->dependants[i];
      d->refs--;
      if (d->state != ORDO_QUEUE_WAITING || d->more->in_work)
        continue;
      if (outcome == ORDO_QUEUE_COMMITTED) {
        d->deps_pending--;
        try_ready(q, d);
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
    reason = dep_invalid_reason(q, b);
  }
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
    return ordo__set_last_error(ORDO_E_INVAL, "queue: unknown strategy or mode");
  if ((q = calloc(1, sizeof(*q))) == NULL)
    return ordo__set_last_error(ORDO_E_NOMEM, NULL);
  if (opt != NULL)
    q->opt = *opt;
  else
    ordo_queue_options_init(&q->opt);
  if (q->opt.granularity < 0)
    q->opt.granularity = -1;
  q->next_seq = 1;
  q->batches.key_at = sizeof(qbatch); /* batch_alloc puts the id there */
  q->ledgers.key_at = sizeof(qledger); /* and a ledger id after its entry */
  qpool_init(&q->pool);
  *out = q;
  return ORDO_OK;
}

static void batch_free(ordo_queue *q, qbatch *b) {
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
  if (b->reason != dep_invalid_text)
    free(b->reason);
  free(b->dependants);
  free(b->waiters);
  if (b->block)
    qpool_free(&q->pool, b, b->more->size);
  else
    free(b);
}

void ordo_queue_free(ordo_queue *q) {
  size_t i;
  if (q == NULL)
    return;
  for (i = 0; i < q->batches.cap; i++)
    batch_free(q, q->batches.e[i].val);
  qtable_free(q->batches.e, q->batches.cap * sizeof(*q->batches.e));
  /* its entries lived in the batches' blocks */
  qtable_free(q->ledgers.e, q->ledgers.cap * sizeof(*q->ledgers.e));
  for (i = 0; i < q->nsvcs; i++) {
    locks_free(q->svcs[i]);
    free(q->svcs[i]->dt);
    free(q->svcs[i]->heap);
    free(q->svcs[i]->name);
    free(q->svcs[i]);
  }
  free(q->svcs);
  free(q->timed);
  qtable_free(q->services.e, q->services.cap * sizeof(*q->services.e));
  qpool_destroy(&q->pool);
  free(q);
}

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

/* Build b->fp: the distinct truncated addresses, write if any write. */
/* The batch's footprint, cut to the granularity, sorted and deduplicated
 * (a write wins over a read of the same address) into in[0..return). */
static size_t footprint_sort(const ordo_queue *q, const ordo_queue_batch_spec *sp,
                             fp_in *in) {
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
    in[k].hash = hash_bytes(in[k].addr, in[k].len);
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
  if ((b = qpool_alloc(&q->pool, size)) == NULL)
    return NULL;
  if (sp->payload_len > 0 && (payload = malloc(sp->payload_len)) == NULL) {
    qpool_free(&q->pool, b, size);
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

/* The ledger-id map entry of a batch that has one (b->ledger): after its
 * qbatch_more, in its block (batch_alloc). Not a field of qbatch: that
 * would cost every batch 8 bytes, and with them a 64-byte size class. */
static qledger *batch_ledger(const qbatch *b) {
  return (qledger *)(b->more + 1);
}

/* The content digest of a batch that has one (b->digest): the last bytes
 * of its block. */
static const unsigned char *batch_digest(const qbatch *b) {
  return (const unsigned char *)b + b->more->size - ORDO_QUEUE_DIGEST_BYTES;
}

/* ---- dep timeouts: the per-service heap by enqueue time ---------------- */

static void dt_sift_up(qservice *s, size_t i, qheap_ent e) {
  while (i > 0 && s->dt[(i - 1) / 2].seq > e.seq) {
    s->dt[i] = s->dt[(i - 1) / 2];
    i = (i - 1) / 2;
  }
  s->dt[i] = e;
}

static void dt_sift_down(qservice *s, size_t i, qheap_ent e) {
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= s->ndt)
      break;
    if (c + 1 < s->ndt && s->dt[c + 1].seq < s->dt[c].seq)
      c++;
    if (s->dt[c].seq >= e.seq)
      break;
    s->dt[i] = s->dt[c];
    i = c;
  }
  s->dt[i] = e;
}

static void dt_pop(qservice *s) {
  qheap_ent last = s->dt[--s->ndt];
  s->dt[0].b->indt = 0;
  if (s->ndt > 0)
    dt_sift_down(s, 0, last);
}

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
  for (i = k / 2; i-- > 0;)
    dt_sift_down(s, i, s->dt[i]);
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
  qbatch *p = map_get(&q->batches, id);
  if (p != NULL)
    return p;
  if (map_reserve(&q->batches, 1) ||
      (p = calloc(1, sizeof(*p) + sizeof(qbatch_more))) == NULL)
    return NULL;
  p->more = (qbatch_more *)(p + 1);
  if ((p->id = ordo__strdup(id)) == NULL) {
    free(p);
    return NULL;
  }
  p->state = ORDO_QUEUE_WAITING;
  map_put(&q->batches, hash_str(p->id), p);
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
  if ((sp->nreads && sp->reads == NULL) || (sp->nwrites && sp->writes == NULL) ||
      (sp->ndeps && sp->deps == NULL) || (sp->payload_len && !sp->payload))
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
      return ordo__set_last_error(ORDO_E_INVAL,
                                  "enqueue %s: a dep is NULL or the batch itself",
                                  sp->id);
  if (sp->seq != 0 && sp->seq < q->next_seq)
    return ordo__set_last_error(ORDO_E_INVAL,
                                "enqueue %s: seq %llu is not after %llu", sp->id,
                                (unsigned long long)sp->seq,
                                (unsigned long long)(q->next_seq - 1));
  if (sp->ledger_id != NULL && sp->ledger_id[0] == '\0')
    return ordo__set_last_error(ORDO_E_INVAL, "enqueue %s: an empty ledger id",
                                sp->id);
  return ORDO_OK;
}

/* ORDO_E_EXISTS (naming the first) when the queue has a batch with sp's
 * ledger id (hash lidh), queued or finished; else ORDO_OK. */
static int ledger_taken(const ordo_queue *q, const ordo_queue_batch_spec *sp,
                        size_t lidh) {
  const qledger *ql = map_get_h(&q->ledgers, sp->ledger_id, lidh);
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
  idh = hash_str(sp->id);
  map_prefetch(&q->batches, idh);
  if ((rc = spec_check_fields(q, sp)) != ORDO_OK)
    return rc;
  /* One signed batch, one queue batch: a ledger id the queue has (queued
   * or finished) is refused before anything is made. Only batches that
   * have one pay for the lookup. */
  if (sp->ledger_id != NULL &&
      (rc = ledger_taken(q, sp, lidh = hash_str(sp->ledger_id))) != ORDO_OK)
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
  if ((s = map_get(&q->services, sp->service)) == NULL) {
    if ((old = map_get_h(&q->batches, sp->id, idh)) != NULL && old->enqueued) {
      if (in != in_small)
        free(in);
      return ordo__set_last_error(ORDO_E_EXISTS,
                                  "enqueue: batch id '%s' exists", sp->id);
    }
    if ((s = service_get(q, sp->service)) == NULL)
      goto fail;
  }
  /* Each address's index slot is a cache miss at 100k queued: start them
   * all now, to overlap with each other and with the block's making. */
  if (locks_trie(q))
    for (i = 0; i < nfp; i++)
      flat_prefetch(s, in[i].hash);
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
      for (j = 0; j < b->more->ndeps && strcmp(b->more->deps[j], sp->deps[i]) != 0; j++)
        ;
      if (j < b->more->ndeps)
        continue; /* a repeated dep counts once */
      if ((b->more->deps[b->more->ndeps] = ordo__strdup(sp->deps[i])) == NULL)
        goto fail;
      b->more->ndeps++;
      if (map_get(&q->batches, sp->deps[i]) == NULL) {
        /* Finished and forgotten: met, or invalid. */
        ordo_queue_state fs = forgotten(q, sp->deps[i]);
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
      if (reserve_u32((void **)&d->dependants, &d->capdependants,
                  d->ndependants + 1, sizeof(*d->dependants)))
        goto fail;
      dep_of[ndep++] = d;
    }
  }
  if (locks_trie(q) && b->nfp > 0) {
    if (locks_prepare(s, b->fp, b->nfp))
      goto fail;
    /* Flat, only equal addresses overlap, and the grants order them; a
     * trie needs edges to the holders of prefixes and extensions. */
    if (s->trie) {
      bl.stamp = ++q->stamp;
      for (i = 0; i < b->nfp; i++) {
        bl.write = b->fp[i].write;
        bl.len = b->fp[i].len;
        trie_overlapping(s->root, in[i].addr, in[i].len, !bl.write,
                         collect_blocker, &bl);
      }
      if (bl.failed)
        goto fail;
    }
    for (i = 0; i < bl.n; i++)
      if (reserve_u32((void **)&bl.v[i]->waiters, &bl.v[i]->capwaiters,
                  bl.v[i]->nwaiters + 1, sizeof(*bl.v[i]->waiters)))
        goto fail;
    nodes = b->nfp <= sizeof(nodes_small) / sizeof(nodes_small[0])
                ? nodes_small
                : malloc(b->nfp * sizeof(*nodes));
    if (nodes == NULL)
      goto fail;
    memset(nodes, 0, b->nfp * sizeof(*nodes));
    for (i = 0; i < b->nfp; i++)
      if ((nodes[i] = locks_node(s, in[i].addr, in[i].len, in[i].hash)) ==
          NULL)
        goto fail;
  }
  /* A duplicate id is refused only now, when the slot prefetched at the
   * start has had the work above to arrive in; what was made for it goes. */
  old = map_get_h(&q->batches, sp->id, idh);
  if ((old != NULL && old->enqueued) ||
      (old == NULL && forgotten(q, sp->id) != ORDO_QUEUE_QUEUED)) {
    rc = ORDO_E_EXISTS;
    goto fail;
  }
  if (map_reserve(&q->batches, 1) ||
      (b->ledger && map_reserve(&q->ledgers, 1)) ||
      /* Every unfinished batch may be pushed once; stale entries stay. */
      reserve((void **)&s->heap, &s->capheap, s->unfinished + 1 + s->nstale,
              sizeof(*s->heap)))
    goto fail;
  /* A dep not enqueued yet: the batch goes on its service's timeout heap
   * (only batches with a time can time out). */
  dep_missing = dep_missing && sp->time_ms != 0;
  if (dep_missing) {
    dt_compact(s);
    if (reserve((void **)&s->dt, &s->capdt, s->ndt + 1, sizeof(*s->dt)))
      goto fail;
  }

  /* Commit: no failure from here on. */
  old = map_get_h(&q->batches, sp->id, idh); /* a placeholder may have
                                                appeared */
  if (old != NULL) {
    /* Dependants that waited for this id become ours. */
    b->dependants = old->dependants;
    b->ndependants = old->ndependants;
    b->capdependants = old->capdependants;
    old->dependants = NULL;
  }
  map_put(&q->batches, idh, b); /* replaces the placeholder's entry */
  if (b->ledger)
    map_put(&q->ledgers, lidh, batch_ledger(b));
  batch_free(q, old);
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
    dt_sift_up(s, s->ndt++, e);
  }
  s->waiting++;
  s->unfinished++;
  /* Only the serial strategy orders by the list: elsewhere keeping it
   * would cost two visits to other batches per finish. */
  if (locks_serial(q)) {
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
      if (!holder_link(&b->fp[i], nodes[i]))
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
    finish_batches(q, b, ORDO_QUEUE_INVALID, dep_invalid_reason(q, b), 1);
  } else {
    try_ready(q, b);
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
        locks_tidy(s, nodes[i], b->fp[i].hash);
  if (nodes != nodes_small)
    free(nodes);
  if (in != in_small)
    free(in);
  if (bl.v != bl.small)
    free(bl.v);
  free(dep_of);
  batch_free(q, b);
  if (rc == ORDO_E_EXISTS)
    return ordo__set_last_error(rc, "enqueue: batch id '%s' exists", sp->id);
  return ordo__set_last_error(rc, "enqueue %s: out of memory", sp->id);
}

static void item_fill(ordo_queue_item *it, const qbatch *b) {
  it->id = b->id;
  it->service = b->svc->name;
  it->seq = b->seq;
  it->payload = b->payload;
  it->payload_len = b->payload_len;
  it->ledger_id = b->ledger ? batch_ledger(b)->lid : NULL;
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
    if (heap_ready(s) == 0)
      ring_leave(q, s);
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

/* An enqueued batch (not a placeholder) by id, its hash h given. */
static qbatch *batch_find_h(const ordo_queue *q, const char *id, size_t h) {
  qbatch *b = id != NULL ? map_get_h(&q->batches, id, h) : NULL;
  return b != NULL && b->enqueued ? b : NULL;
}

static qbatch *batch_find(const ordo_queue *q, const char *id) {
  return id != NULL ? batch_find_h(q, id, hash_str(id)) : NULL;
}

int ordo_queue_release(ordo_queue *q, const char *id) {
  qbatch *b;
  if (q == NULL || (b = batch_find(q, id)) == NULL)
    return ordo__set_last_error(ORDO_E_NOT_FOUND, "release: no batch '%s'",
                                id != NULL ? id : "(null)");
  if (!b->held)
    return ordo__set_last_error(ORDO_E_STATE, "release %s: not held", id);
  b->held = 0;
  if (b->state == ORDO_QUEUE_QUEUED) {
    b->svc->held_ready--;
    heap_push(q, b->svc, b);
  }
  return ORDO_OK;
}

int ordo_queue_take_id(ordo_queue *q, const char *id, ordo_queue_item *out) {
  qbatch *b;
  if (q == NULL || (b = batch_find(q, id)) == NULL)
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
  if (heap_ready(b->svc) == 0)
    ring_leave(q, b->svc);
  b->state = ORDO_QUEUE_SUBMITTED;
  b->svc->in_flight++;
  q->in_flight++;
  if (out != NULL)
    item_fill(out, b);
  return ORDO_OK;
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
  if ((b = batch_find_h(q, id, h)) == NULL)
    return ordo__set_last_error(ORDO_E_NOT_FOUND, "finish: no batch '%s'",
                                id != NULL ? id : "(null)");
  if (b->state != ORDO_QUEUE_SUBMITTED)
    return ordo__set_last_error(ORDO_E_STATE, "finish %s: batch is %s, not "
                                "SUBMITTED", id, ordo_queue_state_name(b->state));
  if (outcome == ORDO_QUEUE_INVALID &&
      (why = ordo__strdup(reason != NULL ? reason : "invalid")) == NULL)
    return ordo__set_last_error(ORDO_E_NOMEM, NULL);
  finish_prefetch(b);
  finish_batches(q, b, outcome, why, 1);
  return ORDO_OK;
}

int ordo_queue_finish(ordo_queue *q, const char *id, ordo_queue_state outcome,
                      const char *reason) {
  return finish_one(q, id, id != NULL ? hash_str(id) : 0, outcome, reason);
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
    hashes[j % FINISH_RING] = hash_str(v[j].id);
    map_prefetch(&q->batches, hashes[j % FINISH_RING]);
  }
}

static const qbatch *finish_peek(const ordo_queue *q,
                                 const ordo_queue_verdict *v, size_t j,
                                 const size_t *hashes) {
  return v[j].id != NULL
             ? map_get_h(&q->batches, v[j].id, hashes[j % FINISH_RING])
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
    ORDO_PREFETCH(b);
    ORDO_PREFETCH((const char *)b + 64);
    ORDO_PREFETCH((const char *)b + 128);
    ORDO_PREFETCH((const char *)b + 192);
  }
  if ((j = i + FINISH_AHEAD) < n && (b = finish_peek(q, v, j, hashes)) != NULL &&
      b->nfp > 0) {
    const char *p = (const char *)b->fp,
               *end = (const char *)(b->fp + b->nfp);
    for (; p < end; p += 64)
      ORDO_PREFETCH(p);
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

int ordo_queue_batch_status(const ordo_queue *q, const char *id,
                            ordo_queue_state *state, const char **reason) {
  qbatch *b;
  if (q == NULL)
    return ordo__set_last_error(ORDO_E_INVAL, "status: NULL queue");
  if ((b = batch_find(q, id)) == NULL)
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
  const qbatch *b = q != NULL ? batch_find(q, id) : NULL;
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
  qbatch *b = q != NULL ? batch_find(q, id) : NULL;
  if (b == NULL)
    return ordo__set_last_error(ORDO_E_NOT_FOUND, "no batch '%s'",
                                id != NULL ? id : "(null)");
  b->more->t_fin_ms = ms;
  return ORDO_OK;
}

int ordo_queue_item_get(const ordo_queue *q, const char *id,
                        ordo_queue_item *out) {
  const qbatch *b = q != NULL ? batch_find(q, id) : NULL;
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
  if ((ql = map_get(&q->ledgers, ledger_id)) == NULL)
    return ORDO_E_NOT_FOUND;
  *id = ql->b->id;
  return ORDO_OK;
}

int ordo_queue_batch_seq(const ordo_queue *q, const char *id, uint64_t *seq) {
  const qbatch *b = q != NULL ? batch_find(q, id) : NULL;
  if (b == NULL)
    return ordo__set_last_error(ORDO_E_NOT_FOUND, "no batch '%s'",
                                id != NULL ? id : "(null)");
  *seq = b->seq;
  return ORDO_OK;
}

int ordo_queue_batch_service(const ordo_queue *q, const char *id,
                             const char **service) {
  const qbatch *b = q != NULL ? batch_find(q, id) : NULL;
  if (b == NULL)
    return ordo__set_last_error(ORDO_E_NOT_FOUND, "no batch '%s'",
                                id != NULL ? id : "(null)");
  *service = b->svc->name;
  return ORDO_OK;
}

int ordo_queue_get_policy(const ordo_queue *q, const char *service,
                          ordo_queue_service_policy *out) {
  const qservice *s;
  if (q == NULL || service == NULL || out == NULL)
    return ordo__set_last_error(ORDO_E_INVAL, "get_policy: NULL argument");
  if ((s = map_get(&q->services, service)) == NULL)
    return ordo__set_last_error(ORDO_E_NOT_FOUND, "no service '%s'", service);
  out->on_invalid = s->on_invalid;
  out->max_in_flight = s->max_in_flight;
  out->dep_timeout_ms = s->dep_timeout_ms;
  return ORDO_OK;
}

size_t ordo_queue_service_names(const ordo_queue *q, const char **out,
                                size_t max) {
  size_t i;
  if (q == NULL)
    return 0;
  for (i = 0; i < max && i < q->nsvcs; i++)
    out[i] = q->svcs[i]->name;
  return q->nsvcs;
}

int ordo_queue_service_status(const ordo_queue *q, const char *service,
                              ordo_queue_service_info *info) {
  qservice *s;
  if (q == NULL || service == NULL || info == NULL)
    return ordo__set_last_error(ORDO_E_INVAL, "service status: NULL argument");
  if ((s = map_get(&q->services, service)) == NULL)
    return ordo__set_last_error(ORDO_E_NOT_FOUND, "no service '%s'", service);
  memset(info, 0, sizeof(*info));
  info->queued = heap_ready(s) + s->held_ready;
  info->waiting = s->waiting;
  info->depth = info->queued + s->waiting;
  info->in_flight = s->in_flight;
  info->committed = s->committed;
  info->invalid = s->invalid;
  info->halted = s->halted;
  if (s->halted) {
    info->halt_batch = s->halt_by->id;
    info->halt_reason = s->halt_by->reason;
  }
  return ORDO_OK;
}

void ordo_queue_get_totals(const ordo_queue *q, ordo_queue_totals *t) {
  size_t i;
  memset(t, 0, sizeof(*t));
  for (i = 0; i < q->nsvcs; i++) {
    t->queued += heap_ready(q->svcs[i]) + q->svcs[i]->held_ready;
    t->waiting += q->svcs[i]->waiting;
  }
  t->in_flight = q->in_flight;
  t->committed = q->committed;
  t->invalid = q->invalid;
  t->services = q->nsvcs;
  t->memory_bytes = qpool_bytes(&q->pool) +
                    (q->batches.cap + q->services.cap + q->ledgers.cap) *
                        sizeof(qmap_entry);
}

int ordo_queue_set_policy(ordo_queue *q, const char *service,
                          ordo_queue_on_invalid on_invalid,
                          unsigned max_in_flight, uint64_t dep_timeout_ms) {
  qservice *s;
  if (q == NULL || service == NULL || service[0] == '\0' ||
      (on_invalid != ORDO_QUEUE_SKIP && on_invalid != ORDO_QUEUE_HALT))
    return ordo__set_last_error(ORDO_E_INVAL, "set_policy: bad argument");
  if ((s = service_get(q, service)) == NULL)
    return ordo__set_last_error(ORDO_E_NOMEM, NULL);
  if (dep_timeout_ms > 0 && !s->in_timed) {
    if (reserve((void **)&q->timed, &q->captimed, q->ntimed + 1,
                sizeof(*q->timed)))
      return ordo__set_last_error(ORDO_E_NOMEM, NULL);
    q->timed[q->ntimed++] = s;
    s->in_timed = 1;
  }
  s->on_invalid = on_invalid;
  s->max_in_flight = max_in_flight;
  s->dep_timeout_ms = dep_timeout_ms;
  return ORDO_OK;
}

int ordo_queue_resume(ordo_queue *q, const char *service) {
  qservice *s;
  if (q == NULL || service == NULL)
    return ordo__set_last_error(ORDO_E_INVAL, "resume: NULL argument");
  if ((s = map_get(&q->services, service)) == NULL)
    return ordo__set_last_error(ORDO_E_NOT_FOUND, "no service '%s'", service);
  if (!s->halted)
    return ordo__set_last_error(ORDO_E_STATE, "service '%s' is not halted",
                                service);
  s->halted = 0;
  s->halt_by = NULL;
  return ORDO_OK;
}

/* ---- cancel, expiry, enqueue of many, digests -------------------------- */

/* End b (QUEUED or WAITING: never sent) INVALID with reason (copied), its
 * dependants cascading. */
static int end_unsent(ordo_queue *q, const char *id, const char *reason,
                      int may_halt, const char *what) {
  qbatch *b;
  qservice *s;
  char *why;
  if (q == NULL || id == NULL || reason == NULL)
    return ordo__set_last_error(ORDO_E_INVAL, "%s: NULL argument", what);
  if ((b = batch_find(q, id)) == NULL)
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
      if (heap_ready(s) == 0 && s->in_ring)
        ring_leave(q, s);
    }
    b->state = ORDO_QUEUE_WAITING;
    s->waiting++;
  }
  finish_prefetch(b);
  finish_batches(q, b, ORDO_QUEUE_INVALID, why, may_halt);
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

/* The first dep of b that was never enqueued, or NULL. */
static const char *dep_missing_id(const ordo_queue *q, const qbatch *b) {
  size_t k;
  for (k = 0; k < b->more->ndeps; k++) {
    const qbatch *d = map_get(&q->batches, b->more->deps[k]);
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
        dt_sift_up(s, s->ndt++, e);
        *n = k;
        return ordo__set_last_error(ORDO_E_NOMEM, NULL);
      }
      snprintf(why, len, "dep %s was not enqueued within %g s", dep,
               (double)t / 1000.0);
      finish_prefetch(b);
      finish_batches(q, b, ORDO_QUEUE_INVALID, why, 1);
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
  if ((b = batch_find(q, id)) == NULL)
    return ordo__set_last_error(ORDO_E_NOT_FOUND, "no batch '%s'",
                                id != NULL ? id : "(null)");
  if (b->digest)
    *digest = batch_digest(b);
  return ORDO_OK;
}

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
  for (i = k / 2; i-- > 0;)
    heap_sift_down(s, i, s->heap[i]);
  for (i = 0, k = 0; i < s->ndt; i++)
    if (s->dt[i].b->dying)
      s->dt[i].b->indt = 0;
    else
      s->dt[k++] = s->dt[i];
  s->ndt = k;
  for (i = k / 2; i-- > 0;)
    dt_sift_down(s, i, s->dt[i]);
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
    qbatch *b = ids[i] != NULL ? batch_find(q, ids[i]) : NULL;
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
    qmap_entry *e = map_slot(&q->batches, b->id, hash_str(b->id));
    map_del(&q->batches, e);
    if (b->ledger) {
      const char *lid = batch_ledger(b)->lid;
      map_del(&q->ledgers, map_slot(&q->ledgers, lid, hash_str(lid)));
    }
    batch_free(q, b);
  }
  if (nd > 0) {
    map_shrink(&q->batches);
    map_shrink(&q->ledgers);
    qpool_trim(&q->pool);
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
    if (n == cap && reserve((void **)&v, &cap, n + 1, sizeof(*v))) {
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
    sv.ledger_id = b->ledger ? batch_ledger(b)->lid : NULL;
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
    sv.digest = b->digest ? batch_digest(b) : NULL;
    rc = fn(&sv, ud);
  }
  free(v);
  free(addrs);
  free(lens);
  free(writes);
  return rc;
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
  idh = hash_str(sp->id);
  if (map_get_h(&q->batches, sp->id, idh) != NULL)
    return ordo__set_last_error(ORDO_E_EXISTS, "enqueue: batch id '%s' exists",
                                sp->id);
  if (sp->ledger_id != NULL &&
      (rc = ledger_taken(q, sp, lidh = hash_str(sp->ledger_id))) != ORDO_OK)
    return rc;
  if ((s = service_get(q, sp->service)) == NULL ||
      map_reserve(&q->batches, 1) ||
      (sp->ledger_id != NULL && map_reserve(&q->ledgers, 1)) ||
      (b = batch_alloc(q, sp, NULL, 0)) == NULL)
    return ordo__set_last_error(ORDO_E_NOMEM, NULL);
  if ((state == ORDO_QUEUE_INVALID &&
       (why = ordo__strdup(reason != NULL ? reason : "invalid")) == NULL) ||
      (sp->ndeps > 0 &&
       (b->more->deps = calloc(sp->ndeps, sizeof(*b->more->deps))) == NULL)) {
    free(why);
    batch_free(q, b);
    return ordo__set_last_error(ORDO_E_NOMEM, NULL);
  }
  for (i = 0; i < sp->ndeps; i++) {
    if ((b->more->deps[i] = ordo__strdup(sp->deps[i])) == NULL) {
      free(why);
      batch_free(q, b);
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
  map_put(&q->batches, idh, b);
  if (b->ledger)
    map_put(&q->ledgers, lidh, batch_ledger(b));
  if (halts && state == ORDO_QUEUE_INVALID) {
    s->halted = 1;
    s->halt_by = b;
  }
  return ORDO_OK;
}

int ordo_queue_halt_by(ordo_queue *q, const char *id) {
  qbatch *b = q != NULL && id != NULL ? batch_find(q, id) : NULL;
  if (b == NULL)
    return ordo__set_last_error(ORDO_E_NOT_FOUND, "halt: no batch '%s'",
                                id != NULL ? id : "(null)");
  if (b->state != ORDO_QUEUE_INVALID)
    return ordo__set_last_error(ORDO_E_STATE, "halt: %s is not INVALID", id);
  b->svc->halted = 1;
  b->svc->halt_by = b;
  return ORDO_OK;
}

void ordo_queue_service_touch(ordo_queue *q, const char *service,
                              uint64_t ms) {
  qservice *s = q != NULL && service != NULL ? map_get(&q->services, service)
                                             : NULL;
  if (s != NULL && ms > s->last_ms)
    s->last_ms = ms;
}

uint64_t ordo_queue_service_last(const ordo_queue *q, const char *service) {
  const qservice *s =
      q != NULL && service != NULL ? map_get(&q->services, service) : NULL;
  return s != NULL ? s->last_ms : 0;
}

size_t ordo_queue_drop_idle_services(ordo_queue *q, uint64_t before_ms) {
  size_t i, k = 0, dropped = 0;
  if (q == NULL)
    return 0;
  for (i = 0; i < q->nsvcs; i++) {
    qservice *s = q->svcs[i];
    /* Nothing of it in memory, default policy, no state but counters. */
    if (s->nbatches == 0 && s->unfinished == 0 && s->held_ready == 0 &&
        !s->halted && !s->in_ring && s->ndt == 0 && !s->in_timed &&
        s->on_invalid == ORDO_QUEUE_SKIP && s->max_in_flight == 0 &&
        s->dep_timeout_ms == 0 && s->last_ms < before_ms) {
      map_del(&q->services, map_slot(&q->services, s->name,
                                     hash_str(s->name)));
      locks_free(s);
      free(s->heap);
      free(s->dt);
      free(s->name);
      free(s);
      dropped++;
      continue;
    }
    q->svcs[k++] = s;
  }
  q->nsvcs = k;
  if (dropped > 0)
    map_shrink(&q->services);
  return dropped;
}

int ordo_queue_add_counts(ordo_queue *q, const char *service,
                          size_t committed, size_t invalid) {
  qservice *s;
  if (q == NULL || service == NULL || service[0] == '\0')
    return ordo__set_last_error(ORDO_E_INVAL, "add_counts: bad argument");
  if ((s = service_get(q, service)) == NULL)
    return ordo__set_last_error(ORDO_E_NOMEM, NULL);
  s->committed += committed;
  s->invalid += invalid;
  q->committed += committed;
  q->invalid += invalid;
  return ORDO_OK;
}

void ordo_queue_set_next_seq(ordo_queue *q, uint64_t seq) {
  if (q != NULL && seq > q->next_seq)
    q->next_seq = seq;
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
      (rc = ledger_taken(q, sp, hash_str(sp->ledger_id))) != ORDO_OK)
    return rc;
  if (((old = map_get(&q->batches, sp->id)) != NULL && old->enqueued) ||
      (old == NULL && forgotten(q, sp->id) != ORDO_QUEUE_QUEUED))
    return ordo__set_last_error(ORDO_E_EXISTS, "enqueue: batch id '%s' exists",
                                sp->id);
  return ORDO_OK;
}

int ordo_queue_enqueue_many(ordo_queue *q, const ordo_queue_batch_spec *specs,
                            size_t n, uint64_t *seqs, size_t *bad) {
  qmap ids = {0}, lids = {0};
  size_t i;
  uint64_t seq = 0;
  int rc = ORDO_OK;

  if (bad != NULL)
    *bad = 0;
  if (q == NULL || (specs == NULL && n > 0))
    return ordo__set_last_error(ORDO_E_INVAL, "enqueue: NULL argument");
  if (n > 1 && (map_reserve(&ids, n) || map_reserve(&lids, n))) {
    rc = ordo__set_last_error(ORDO_E_NOMEM, NULL);
    goto out;
  }
  /* Every check first: a refusal leaves the queue as it was. Ids (and
   * ledger ids) repeated in specs are found by maps whose values are the
   * specs' own fields (a spec's first member is its id, map_key's rule). */
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
      const ordo_queue_batch_spec *o = map_get(&ids, sp->id);
      if (o != NULL) {
        rc = ordo__set_last_error(ORDO_E_EXISTS, "enqueue: batch id '%s' "
                                  "repeats item %zu", sp->id,
                                  (size_t)(o - specs));
        break;
      }
      map_put(&ids, hash_str(sp->id), (void *)sp);
      if (sp->ledger_id != NULL) {
        const char *const *lp = map_get(&lids, sp->ledger_id);
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
        map_put(&lids, hash_str(sp->ledger_id), (void *)&sp->ledger_id);
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
  qtable_free(ids.e, ids.cap * sizeof(*ids.e));
  qtable_free(lids.e, lids.cap * sizeof(*lids.e));
  return rc;
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

/* ------------------------------------------------------------------------ */
/* Explain                                                                   */
/* ------------------------------------------------------------------------ */

/* The earlier holders that conflict with one address of the batch. */
typedef struct explain_acc {
  const qbatch *b;
  int write;
  const qbatch *w[64], *r[64];
  size_t nw, nr, more;
} explain_acc;

static void explain_holder(const qholder *h, void *arg) {
  explain_acc *a = arg;
  size_t i;
  if (h->b->seq >= a->b->seq || !(h->write || a->write))
    return;
  if (h->write) {
    for (i = 0; i < a->nw && a->w[i] != h->b; i++)
      ;
    if (i == a->nw) {
      if (a->nw < 64)
        a->w[a->nw++] = h->b;
      else
        a->more++;
    }
  } else {
    for (i = 0; i < a->nr && a->r[i] != h->b; i++)
      ;
    if (i == a->nr) {
      if (a->nr < 64)
        a->r[a->nr++] = h->b;
      else
        a->more++;
    }
  }
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

  if (q == NULL || (b = batch_find(q, id)) == NULL) {
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
      const qbatch *d = map_get(&q->batches, b->more->deps[i]);
      if (d != NULL ? d->state == ORDO_QUEUE_COMMITTED
                    : forgotten(q, b->more->deps[i]) == ORDO_QUEUE_COMMITTED)
        continue;
      sb_printf(&sb, "%sdep %s (%s)", parts++ ? ", " : "", b->more->deps[i],
                d == NULL || !d->enqueued
                    ? "never enqueued"
                    : ordo_queue_state_name(d->state));
    }
    if (locks_serial(q) && b->svc->first != b) {
      size_t n = 0;
      const qbatch *e;
      for (e = b->svc->first; e != b; e = e->more->snext)
        n++;
      sb_printf(&sb, "%s%s (serial: %zu earlier unfinished in %s)",
                parts++ ? ", " : "", b->svc->first->id, n, b->svc->name);
    }
    if (locks_trie(q)) {
      for (i = 0; i < b->nfp; i++) {
        explain_acc acc;
        memset(&acc, 0, sizeof(acc));
        acc.b = b;
        acc.write = b->fp[i].write;
        locks_overlapping(b->svc, &b->fp[i], !acc.write,
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

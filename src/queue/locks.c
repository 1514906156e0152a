/*
 * locks.c — the lock table of a service: which earlier unfinished batches
 * hold an address that a batch's footprint overlaps, and the grants that
 * order the holders of one address (queue_int.h for the design).
 *
 * Two forms answer the same questions: a flat hash index of nodes while
 * every address held has one length (only equal addresses overlap), and a
 * radix trie once one does not (prefixes overlap). Nodes come from the
 * queue's pool.
 */
#include "base/base.h"
#include "queue/queue_int.h"
#include "runtime/runtime.h"

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
  if ((n->t = ordo__qpool_alloc(pool, sizeof(*n->t))) == NULL)
    return ORDO_E_NOMEM;
  memset(n->t, 0, sizeof(*n->t));
  return ORDO_OK;
}

static void node_trie_drop(qpool *pool, qnode *n) {
  if (n->t != NULL) {
    free(n->t->kids);
    ordo__qpool_free(pool, n->t, sizeof(*n->t));
    n->t = NULL;
  }
}

/* A node for key[0..depth), with trie links when trie. */
qnode *ordo__q_node_alloc(qpool *pool, const char *key, size_t depth,
                         int trie) {
  qnode *n = ordo__qpool_alloc(pool, sizeof(*n) + depth);
  if (n == NULL)
    return NULL;
  memset(n, 0, sizeof(*n));
  memcpy(n->key, key, depth);
  n->depth = (uint32_t)depth;
  if (trie && node_trie_init(pool, n) != ORDO_OK) {
    ordo__qpool_free(pool, n, sizeof(*n) + depth);
    return NULL;
  }
  return n;
}

static void node_free(qpool *pool, qnode *n) {
  node_trie_drop(pool, n);
  ordo__qpool_free(pool, n, sizeof(*n) + n->depth);
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
          (leaf == NULL &&
           (leaf = ordo__q_node_alloc(pool, addr, len, 1)) == NULL))
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
    if ((mid = ordo__q_node_alloc(pool, addr, m, 1)) == NULL)
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

static void node_visit(const qnode *n, int writers_only, qholder_fn fn,
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
void ordo__q_trie_overlapping(const qnode *root, const char *addr, size_t len,
                             int writers_only, qholder_fn fn, void *arg) {
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
  ordo__q_try_ready(q, h->b);
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

void ordo__q_holder_unlink(ordo_queue *q, qholder *h) {
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

/* ------------------------------------------------------------------------ */
/* The flat index and the choice of form                                     */
/* ------------------------------------------------------------------------ */

/* The slot of addr in the flat index: its node's, or the empty one where it
 * would go. The index is an ordo__map of nodes with a key rule of its own
 * (a node's key is not terminated), so it finds slots itself; the map's
 * reserve and delete read only hashes. flat.cap > 0. */
static ordo__map_entry *flat_slot(const qservice *s, const char *addr,
                                  size_t len, size_t h) {
  const ordo__map *m = &s->flat;
  size_t i = h & (m->cap - 1);
  for (;;) {
    const ordo__map_entry *e = &m->e[i];
    const qnode *n = e->val;
    /* Every node here is flat_len long, as addr is (locks_prepare). */
    if (n == NULL || (e->hash == h && memcmp(n->key, addr, len) == 0))
      return &m->e[i];
    i = (i + 1) & (m->cap - 1);
  }
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
int ordo__q_locks_prepare(qservice *s, const qholder *fp, size_t nfp) {
  size_t i, len;
  if (s->trie || nfp == 0)
    return ORDO_OK;
  len = s->flat.n > 0 ? s->flat_len : fp[0].len;
  for (i = 0; i < nfp && fp[i].len == len; i++)
    ;
  if (i == nfp && len > 0) { /* "" (lock everything) needs the trie's root */
    if (ordo__map_reserve(&s->flat, nfp))
      return ORDO_E_NOMEM;
    s->flat_len = len;
    return ORDO_OK;
  }
  /* Every index node gets trie links first, then its place. */
  for (i = 0; i < s->flat.cap; i++) {
    qnode *n = s->flat.e[i].val;
    if (n != NULL && node_trie_init(s->pool, n) != ORDO_OK) {
      while (i-- > 0)
        if (s->flat.e[i].val != NULL)
          node_trie_drop(s->pool, s->flat.e[i].val);
      return ORDO_E_NOMEM;
    }
  }
  for (i = 0; i < s->flat.cap; i++) {
    qnode *n = s->flat.e[i].val;
    if (n != NULL && trie_place(s->pool, s->root, n->key, n->depth, n) != n) {
      size_t k;
      trie_dismantle(s->pool, s->root);
      /* Nodes not placed yet still have their (empty) links. */
      for (k = 0; k < s->flat.cap; k++)
        if (s->flat.e[k].val != NULL)
          node_trie_drop(s->pool, s->flat.e[k].val);
      return ORDO_E_NOMEM;
    }
  }
  ordo__map_free(&s->flat);
  s->trie = 1;
  return ORDO_OK;
}

/* The holders that overlap a's address (a linked holder's: its node has
 * the address as key). */
void ordo__q_locks_overlapping(const qservice *s, const qholder *a,
                              int writers_only, qholder_fn fn, void *arg) {
  if (s->trie) {
    ordo__q_trie_overlapping(s->root, a->node->key, a->len, writers_only, fn,
                             arg);
  } else {
    /* All held addresses have this length: only an equal one overlaps,
     * and that is a's own node. */
    node_visit(a->node, writers_only, fn, arg);
  }
}

/* The node to link a holder of addr[0..len) (hash h) to, made if need be
 * (ordo__q_locks_prepare reserved the room). NULL on ORDO_E_NOMEM. */
qnode *ordo__q_locks_node(qservice *s, const char *addr, size_t len,
                         size_t h) {
  ordo__map_entry *e;
  qnode *n;
  if (s->trie)
    return node_get(s->pool, s->root, addr, len);
  e = flat_slot(s, addr, len, h);
  if (e->val != NULL)
    return e->val;
  if ((n = ordo__q_node_alloc(s->pool, addr, len, 0)) == NULL)
    return NULL;
  ordo__map_set(&s->flat, e, h, n);
  return n;
}

/* A node that may hold nothing now: drop it (flat) or prune (trie). */
static void locks_tidy(qservice *s, qnode *n, size_t h) {
  if (s->trie) {
    node_prune(s->pool, n);
  } else if (node_empty(n)) {
    /* By backward shift, so no tombstones build up. */
    ordo__map_del(&s->flat, flat_slot(s, n->key, n->depth, h));
    node_free(s->pool, n);
  }
}

/* locks_tidy for enqueue's failure path; static above, so that a finish's
 * holder_unlink keeps its inlined fast path. */
void ordo__q_locks_tidy(qservice *s, qnode *n, size_t h) {
  locks_tidy(s, n, h);
}

void ordo__q_locks_free(qservice *s) {
  for (size_t i = 0; i < s->flat.cap; i++)
    if (s->flat.e[i].val != NULL)
      node_free(s->pool, s->flat.e[i].val);
  ordo__map_free(&s->flat);
  nodes_free(s->pool, s->root);
}


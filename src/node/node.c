/*
 * node.c — the embedded ledger node: pending queue, block cutting in a
 * seeded random order, start and stop. The store is store.c; the REST
 * handlers and the HTTP server are http.c.
 *
 * Life of a batch: POST /batches validates a BatchList and ordo__node_submit
 * puts each new batch into the pending map (by id) and the queue (submission
 * order). A block cut takes the whole queue, leaving the batches in the map
 * (still PENDING to readers), shuffles them, checks and applies them in one
 * SQLite transaction on the block thread's connection, commits, and only
 * then removes the finished ones from the map under mu; a batch held back
 * by an unmet dependency goes back to the front of the queue, in
 * submission order. A reader that looks in the map first and in the
 * database second therefore never sees a known batch as UNKNOWN.
 *
 * Locks: mu, then rd_mu (see node.h). The block thread applies and commits
 * with neither held. With keep_pending, ordo__node_submit writes pending rows
 * on rdb while holding mu: that write may wait (busy_timeout) for the block
 * thread's transaction, which never needs mu before it commits.
 */
#include "node/internal.h"
#include "base/strhash.h"
#include "crypto/crypto.h"
#include "runtime/runtime.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ------------------------------------------------------------------------ */
/* Random numbers                                                            */
/* ------------------------------------------------------------------------ */

static uint64_t splitmix64(uint64_t *x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

void ordo_node_block_order(uint64_t seed, uint64_t block_num, size_t n,
                           size_t *perm) {
  uint64_t x = seed ^ 0x6f72646f2d626c6bULL; /* "ordo-blk" */
  size_t i;

  x = splitmix64(&x) ^ block_num;
  for (i = 0; i < n; i++)
    perm[i] = i;
  /* Fisher-Yates; the modulo's bias is far below what a test could see. */
  for (i = n; i > 1; i--) {
    size_t j = (size_t)(splitmix64(&x) % i), t = perm[i - 1];
    perm[i - 1] = perm[j];
    perm[j] = t;
  }
}

uint64_t ordo__node_fault_draw(ordo_node *node) {
  uint64_t k = atomic_fetch_add(&node->fault_draws, 1);
  uint64_t x = (node->opts.seed ^ 0x6f72646f2d666c74ULL) + k * 0x9e3779b97f4a7c15ULL;
  return splitmix64(&x);
}

static unsigned long long now_ns(void) { return ordo__now_ns(); }

static struct timespec abs_time(unsigned long long ns) {
  struct timespec ts;
  ts.tv_sec = (time_t)(ns / 1000000000ULL);
  ts.tv_nsec = (long)(ns % 1000000000ULL);
  return ts;
}

/* ------------------------------------------------------------------------ */
/* Pending map and queue (mu held)                                           */
/* ------------------------------------------------------------------------ */

node_pending *ordo__node_pending_find(ordo_node *node, const char *id) {
  node_pending *p = node->map[ordo__strhash(id) & (node->nmap - 1)];
  while (p != NULL && strcmp(p->id, id) != 0)
    p = p->hnext;
  return p;
}

static int map_grow(ordo_node *node) {
  size_t n = node->nmap * 2, i;
  node_pending **m = calloc(n, sizeof *m);
  if (m == NULL)
    return ORDO_E_NOMEM;
  for (i = 0; i < node->nmap; i++) {
    node_pending *p = node->map[i], *next;
    for (; p != NULL; p = next) {
      size_t b = ordo__strhash(p->id) & (n - 1);
      next = p->hnext;
      p->hnext = m[b];
      m[b] = p;
    }
  }
  free(node->map);
  node->map = m;
  node->nmap = n;
  return ORDO_OK;
}

static int map_add(ordo_node *node, node_pending *p) {
  size_t b;
  if (node->npending + 1 > node->nmap && map_grow(node) != ORDO_OK &&
      node->npending + 1 > 4 * node->nmap)
    return ORDO_E_NOMEM; /* a fuller table still works; refuse past 4x */
  b = ordo__strhash(p->id) & (node->nmap - 1);
  p->hnext = node->map[b];
  node->map[b] = p;
  node->npending++;
  return ORDO_OK;
}

static void map_remove(ordo_node *node, node_pending *p) {
  node_pending **pp = &node->map[ordo__strhash(p->id) & (node->nmap - 1)];
  while (*pp != NULL && *pp != p)
    pp = &(*pp)->hnext;
  if (*pp == p) {
    *pp = p->hnext;
    node->npending--;
  }
}

/* Drop one reference to a POST's BatchList. */
static void list_unref(node_list *l) {
  if (l != NULL && --l->refs == 0) {
    ordo_ledger_batchlist_free(l->bl);
    free(l);
  }
}

static void pending_free(node_pending *p) {
  list_unref(p->list);
  free(p);
}

static void queue_push(ordo_node *node, node_pending *p) {
  p->next = NULL;
  *node->qtail = p;
  node->qtail = &p->next;
}

/* ------------------------------------------------------------------------ */
/* Submitting and reading statuses                                           */
/* ------------------------------------------------------------------------ */

/* 1 when id has a final status in the database (rd_mu taken here). */
static int known_final(ordo_node *node, const char *id, int *rc) {
  int st;
  char *txn, *msg;
  pthread_mutex_lock(&node->rd_mu);
  *rc = ordo__node_store_status_get(node->st.rdb, id, &st, &txn, &msg);
  pthread_mutex_unlock(&node->rd_mu);
  free(txn);
  free(msg);
  if (*rc == ORDO_E_NOT_FOUND) {
    *rc = ORDO_OK;
    return 0;
  }
  return *rc == ORDO_OK;
}

/* With keep_pending: write the added batches' rows in one transaction. */
static int persist_pending(ordo_node *node, node_pending *const *added,
                           size_t n) {
  sqlite3 *db = node->st.rdb;
  size_t i;
  int rc;

  pthread_mutex_lock(&node->rd_mu);
  rc = ordo__node_store_begin(db);
  for (i = 0; rc == ORDO_OK && i < n; i++) {
    unsigned char *buf = NULL;
    size_t len = 0;
    const ordo_ledger_batch *b = added[i]->batch;
    rc = ordo_ledger_batchlist_encode(&b, 1, &buf, &len);
    if (rc == ORDO_OK)
      rc = ordo__node_store_pending_put(db, added[i]->id, buf, len);
    free(buf);
  }
  if (rc == ORDO_OK)
    rc = ordo__node_store_commit(db);
  if (rc != ORDO_OK)
    ordo__node_store_rollback(db);
  pthread_mutex_unlock(&node->rd_mu);
  return rc;
}

/* A list holding bl (taken) with refs references, and *extra (size
 * bytes, zeroed) that the caller needs with it: NULL for both, bl freed
 * and the last error set, when out of memory. */
static node_list *list_new(ordo_ledger_batchlist *bl, size_t refs, void **extra,
                           size_t size) {
  node_list *list = malloc(sizeof *list);
  *extra = calloc(1, size);
  if (list == NULL || *extra == NULL) {
    free(list);
    free(*extra);
    *extra = NULL;
    ordo_ledger_batchlist_free(bl);
    ordo__set_last_error(ORDO_E_NOMEM, "node: out of memory");
    return NULL;
  }
  list->bl = bl;
  list->refs = refs;
  return list;
}

int ordo__node_submit(ordo_node *node, ordo_ledger_batchlist *bl) {
  size_t n = ordo_ledger_batchlist_count(bl), i, nadded = 0;
  void *mem;
  node_list *list =
      list_new(bl, 0, &mem, (n > 0 ? n : 1) * sizeof(node_pending *));
  node_pending **added = mem;
  int rc = ORDO_OK;

  if (list == NULL)
    return ORDO_E_NOMEM;
  pthread_mutex_lock(&node->mu);
  if (node->stopping) {
    rc = ordo__set_last_error(ORDO_E_SHUTDOWN, "node is stopping");
    goto undo;
  }
  /* Into the map as we go, so a batch twice in one list is added once. */
  for (i = 0; i < n; i++) {
    const ordo_ledger_batch *b = ordo_ledger_batchlist_batch(bl, i);
    const char *id = ordo_ledger_batch_id(b);
    node_pending *p;
    if (ordo__node_pending_find(node, id) != NULL || known_final(node, id, &rc))
      continue;
    if (rc != ORDO_OK)
      goto undo;
    if ((p = calloc(1, sizeof *p)) == NULL) {
      rc = ordo__set_last_error(ORDO_E_NOMEM, "node: out of memory");
      goto undo;
    }
    p->batch = b;
    p->id = id;
    if (map_add(node, p) != ORDO_OK) {
      free(p);
      rc = ordo__set_last_error(ORDO_E_NOMEM, "node: out of memory");
      goto undo;
    }
    added[nadded++] = p;
  }
  if (node->npending > node->opts.max_pending) {
    rc = ordo__set_last_error(ORDO_E_BUSY,
                              "pending queue full (%zu batches at most)",
                              node->opts.max_pending);
    goto undo;
  }
  if (nadded > 0 && node->opts.keep_pending &&
      (rc = persist_pending(node, added, nadded)) != ORDO_OK)
    goto undo;
  for (i = 0; i < nadded; i++) {
    added[i]->list = list;
    list->refs++;
    queue_push(node, added[i]);
  }
  pthread_mutex_unlock(&node->mu);
  if (nadded == 0) {
    ordo_ledger_batchlist_free(bl);
    free(list);
  }
  free(added);
  return ORDO_OK;
undo:
  for (i = 0; i < nadded; i++) {
    map_remove(node, added[i]);
    free(added[i]);
  }
  pthread_mutex_unlock(&node->mu);
  ordo_ledger_batchlist_free(bl);
  free(list);
  free(added);
  return rc;
}

int ordo__node_status(ordo_node *node, const char *id, const char **status,
                      char **txn_id, char **message) {
  int found, st = 0, rc;

  *txn_id = *message = NULL;
  pthread_mutex_lock(&node->mu);
  found = ordo__node_pending_find(node, id) != NULL;
  pthread_mutex_unlock(&node->mu);
  if (found) {
    *status = "PENDING";
    return ORDO_OK;
  }
  pthread_mutex_lock(&node->rd_mu);
  rc = ordo__node_store_status_get(node->st.rdb, id, &st, txn_id, message);
  pthread_mutex_unlock(&node->rd_mu);
  if (rc == ORDO_E_NOT_FOUND) {
    *status = "UNKNOWN";
    return ORDO_OK;
  }
  if (rc != ORDO_OK)
    return rc;
  *status = st == NODE_INVALID ? "INVALID" : "COMMITTED";
  return ORDO_OK;
}

/* 1 when none of ids is pending (mu held): UNKNOWN counts as final, as
 * in the validator's batch tracker. */
static int none_pending(ordo_node *node, char *const *ids, size_t n) {
  size_t i;
  for (i = 0; i < n && ordo__node_pending_find(node, ids[i]) == NULL; i++)
    ;
  return i == n;
}

void ordo__node_wait_final(ordo_node *node, char *const *ids, size_t n,
                           unsigned long long deadline_ns) {
  struct timespec ts = abs_time(deadline_ns);

  pthread_mutex_lock(&node->mu);
  if (!node->stopping && !none_pending(node, ids, n)) {
    /* Counted while it waits, so ordo_node_await_waiters can see it. */
    node->waiting++;
    pthread_cond_broadcast(&node->changed);
    while (!node->stopping && !none_pending(node, ids, n) &&
           pthread_cond_timedwait(&node->changed, &node->mu, &ts) !=
               ETIMEDOUT)
      ;
    node->waiting--;
  }
  pthread_mutex_unlock(&node->mu);
}

int ordo_node_await_waiters(ordo_node *node, unsigned n, unsigned timeout_ms) {
  struct timespec ts;
  int rc = ORDO_OK;

  if (node == NULL)
    return ordo__set_last_error(ORDO_E_INVAL, "node: NULL argument");
  ts = abs_time(now_ns() + (unsigned long long)timeout_ms * 1000000ULL);
  pthread_mutex_lock(&node->mu);
  while (node->waiting < n && !node->stopping && rc == ORDO_OK)
    if (pthread_cond_timedwait(&node->changed, &node->mu, &ts) == ETIMEDOUT &&
        node->waiting < n)
      rc = ordo__set_last_error(ORDO_E_TIMEOUT,
                                "node: %u status requests did not wait within "
                                "%u ms",
                                n, timeout_ms);
  if (rc == ORDO_OK && node->waiting < n)
    rc = ordo__set_last_error(ORDO_E_SHUTDOWN, "node is stopping");
  pthread_mutex_unlock(&node->mu);
  return rc;
}

/* ------------------------------------------------------------------------ */
/* Applying a block                                                          */
/* ------------------------------------------------------------------------ */

/* The state a transaction sees: the block thread's connection, inside the
 * block's transaction, limited to the header's inputs and outputs. */
typedef struct apply_ctx {
  sqlite3 *db;
  uint64_t num; /* the block being made: what its writes are versioned by */
  ordo_ledger_txn_header h;
  unsigned char *buf;
  size_t cap;
  char denied[160]; /* set when the txn went outside its inputs/outputs */
} apply_ctx;

/* Sawtooth: an address is reachable if one of the listed addresses (or
 * namespace prefixes) is a prefix of it. */
static int addr_allowed(const char *const *list, size_t n, const char *addr) {
  size_t i;
  for (i = 0; i < n; i++) {
    size_t len = strlen(list[i]);
    if (len > 0 && strncmp(addr, list[i], len) == 0)
      return 1;
  }
  return 0;
}

static int apply_get(void *ud, const char *address, const unsigned char **value,
                     size_t *len) {
  apply_ctx *c = ud;
  int rc;
  if (!addr_allowed(c->h.inputs, c->h.ninputs, address)) {
    snprintf(c->denied, sizeof c->denied,
             "read of address %.16s... outside the transaction's inputs",
             address);
    return ORDO_E_LEDGER_INVALID_TXN;
  }
  rc = ordo__node_store_state_get(c->db, address, UINT64_MAX, &c->buf, &c->cap,
                                  len);
  if (rc == ORDO_OK)
    *value = c->buf;
  return rc;
}

static int apply_set(void *ud, const char *address, const unsigned char *value,
                     size_t len) {
  apply_ctx *c = ud;
  if (!addr_allowed(c->h.outputs, c->h.noutputs, address)) {
    snprintf(c->denied, sizeof c->denied,
             "write of address %.16s... outside the transaction's outputs",
             address);
    return ORDO_E_LEDGER_INVALID_TXN;
  }
  return ordo__node_store_state_set(c->db, address, c->num, value, len);
}

/*
 * Apply one batch's transactions in order. ORDO_OK: all applied.
 * ORDO_E_LEDGER_INVALID_TXN: transaction *bad is invalid, msg says why (the
 * caller rolls the batch back). ORDO_E_STORAGE or ORDO_E_NOMEM: the block
 * cannot go on.
 */
static int apply_batch(apply_ctx *c, const ordo_ledger_batch *b, size_t *bad,
                       char *msg, size_t msgsize) {
  size_t i, n = ordo_ledger_batch_txn_count(b);
  ordo_ledger_state state = {apply_get, apply_set, c};

  for (i = 0; i < n; i++) {
    const ordo_ledger_txn *t = ordo_ledger_batch_txn(b, i);
    int rc;

    /* The header's inputs and outputs are what apply_get/apply_set allow. */
    ordo_ledger_txn_header_get(t, &c->h);
    c->denied[0] = '\0';
    rc = ordo_ledger_txn_apply(t, &state);
    if (rc == ORDO_OK)
      continue;
    if (rc == ORDO_E_STORAGE || rc == ORDO_E_NOMEM)
      return rc;
    *bad = i;
    snprintf(msg, msgsize, "%s",
             c->denied[0] != '\0' ? c->denied : ordo_last_error_message());
    return ORDO_E_LEDGER_INVALID_TXN;
  }
  return ORDO_OK;
}

/* batch_check's answer for a batch whose dependency is not committed yet
 * (not an ordo error code: those are positive). */
#define CHECK_DEFER (-1)

/* What a validator's scheduler checks before applying a batch. */
typedef struct check_ctx {
  sqlite3 *db;
  const ordo_ledger_batch *b;
  size_t *bad;
  char *msg;
  size_t msgsize;
} check_ctx;

/* Transaction i of the batch as committed-or-not: 1 when id is one of the
 * batch's transactions before i, or committed in the chain or earlier in
 * this block (both are in txns, on the block's connection). *st gets the
 * stored status (0 when never seen). */
static int seen_before(check_ctx *c, size_t i, const char *id, int *st,
                       int *rc) {
  size_t j;
  *st = 0;
  for (j = 0; j < i; j++)
    if (strcmp(ordo_ledger_txn_id(ordo_ledger_batch_txn(c->b, j)), id) == 0)
      return 1;
  *rc = ordo__node_store_txn_status(c->db, id, st);
  if (*rc == ORDO_E_NOT_FOUND)
    *rc = ORDO_OK;
  return *st == NODE_COMMITTED;
}

/* Transaction i invalid: the batch's answer. */
static int check_invalid(check_ctx *c, size_t i, const char *fmt,
                         const char *id) {
  *c->bad = i;
  snprintf(c->msg, c->msgsize, fmt, id);
  return ORDO_E_LEDGER_INVALID_TXN;
}

/*
 * The batch's transactions in order, each: not already committed (else
 * the batch is INVALID, "duplicate transaction"), and every dependency
 * committed (else the batch waits: CHECK_DEFER) or, when it is known
 * INVALID, the batch is INVALID. The first failure decides, as in
 * Sawtooth's candidate block. ORDO_OK: apply the batch. ORDO_E_STORAGE.
 */
static int batch_check(sqlite3 *db, const ordo_ledger_batch *b, size_t *bad,
                       char *msg, size_t msgsize) {
  check_ctx c = {db, b, bad, msg, msgsize};
  size_t i, k, n = ordo_ledger_batch_txn_count(b);
  int rc = ORDO_OK, st;

  for (i = 0; i < n; i++) {
    const ordo_ledger_txn *t = ordo_ledger_batch_txn(b, i);
    const char *id = ordo_ledger_txn_id(t);
    ordo_ledger_txn_header h;
    if (seen_before(&c, i, id, &st, &rc))
      return check_invalid(&c, i,
                           "duplicate transaction %.128s: already committed "
                           "(or earlier in this batch)",
                           id);
    if (rc != ORDO_OK)
      return rc;
    ordo_ledger_txn_header_get(t, &h);
    for (k = 0; k < h.ndependencies; k++) {
      const char *dep = h.dependencies[k];
      if (seen_before(&c, i, dep, &st, &rc))
        continue;
      if (rc != ORDO_OK)
        return rc;
      if (st == NODE_INVALID)
        return check_invalid(&c, i,
                             "dependency %.128s is INVALID (its batch was "
                             "invalid and it was never committed)",
                             dep);
      return CHECK_DEFER;
    }
  }
  return ORDO_OK;
}

/* The outcome of one batch in a block being cut. */
typedef struct cut_item {
  node_pending *p;
  int status;      /* NODE_COMMITTED, NODE_INVALID, or 0: held back */
  size_t bad_txn;  /* INVALID: index of the invalid transaction */
  char msg[256];
} cut_item;

/* Record every transaction id of b with status (committed, or seen in an
 * INVALID batch: see ordo__node_store_txn_put). */
static int put_txns(sqlite3 *db, const ordo_ledger_batch *b, int status) {
  size_t i, n = ordo_ledger_batch_txn_count(b);
  int rc = ORDO_OK;
  for (i = 0; rc == ORDO_OK && i < n; i++)
    rc = ordo__node_store_txn_put(
        db, ordo_ledger_txn_id(ordo_ledger_batch_txn(b, i)), status);
  return rc;
}

/* Check and apply one batch of the block (its own savepoint): it->status
 * says what became of it. ORDO_OK, or a storage error (block abandoned). */
static int cut_one(ordo_node *node, apply_ctx *c, cut_item *it) {
  sqlite3 *db = c->db;
  const ordo_ledger_batch *b = it->p->batch;
  int rc = batch_check(db, b, &it->bad_txn, it->msg, sizeof it->msg);

  if (rc == CHECK_DEFER)
    return ORDO_OK; /* stays pending; nothing written */
  if (rc == ORDO_OK) {
    if ((rc = ordo__node_store_savepoint(db)) != ORDO_OK)
      return rc;
    rc = apply_batch(c, b, &it->bad_txn, it->msg, sizeof it->msg);
    if (rc == ORDO_OK)
      rc = ordo__node_store_release(db);
    else
      ordo__node_store_rollback_to(db);
  }
  if (rc == ORDO_OK) {
    it->status = NODE_COMMITTED;
    rc = ordo__node_store_status_put(db, it->p->id, NODE_COMMITTED, NULL, NULL);
    if (rc == ORDO_OK)
      rc = put_txns(db, b, NODE_COMMITTED);
  } else if (rc == ORDO_E_LEDGER_INVALID_TXN) {
    it->status = NODE_INVALID;
    rc = ordo__node_store_status_put(
        db, it->p->id, NODE_INVALID,
        ordo_ledger_txn_id(ordo_ledger_batch_txn(b, it->bad_txn)), it->msg);
    if (rc == ORDO_OK)
      rc = put_txns(db, b, NODE_INVALID);
  }
  if (rc == ORDO_OK && node->opts.keep_pending)
    rc = ordo__node_store_pending_del(db, it->p->id);
  return rc;
}

/* The block's id: hex SHA-512 of the previous id followed by the committed
 * batch ids in block order (128 hex digits, as Sawtooth's ids). */
static int block_id(const char *prev, const cut_item *items, size_t n,
                    char out[ORDO_LEDGER_ID_SIZE]) {
  size_t plen = strlen(prev), len = plen, i;
  unsigned char h[ORDO__SHA512_BYTES];
  char *msg = malloc(plen + n * ORDO_LEDGER_ID_LEN + 1);
  int rc;

  if (msg == NULL)
    return ordo__set_last_error(ORDO_E_NOMEM, "node: out of memory");
  memcpy(msg, prev, plen);
  for (i = 0; i < n; i++) {
    size_t l = strlen(items[i].p->id);
    if (items[i].status != NODE_COMMITTED || l > ORDO_LEDGER_ID_LEN)
      continue;
    memcpy(msg + len, items[i].p->id, l);
    len += l;
  }
  rc = ordo__crypto_sha512(msg, len, h);
  free(msg);
  if (rc == ORDO_OK)
    rc = ordo__crypto_hex_encode(h, sizeof h, out, ORDO_LEDGER_ID_SIZE);
  return rc;
}

/* Apply items (in order) and write the block; the transaction is left for
 * the caller to commit or roll back. */
static int cut_write(ordo_node *node, cut_item *items, size_t n) {
  sqlite3 *db = node->st.wdb;
  apply_ctx c;
  uint64_t head;
  char prev[ORDO_LEDGER_ID_SIZE], idhex[ORDO_LEDGER_ID_SIZE];
  char *ids = NULL;
  size_t i, ncommitted = 0, idlen = 0;
  int rc;

  memset(&c, 0, sizeof c);
  c.db = db;
  if ((rc = ordo__node_store_head(db, &head, prev)) != ORDO_OK)
    return rc == ORDO_E_NOT_FOUND ? ORDO_E_STORAGE : rc;
  c.num = head + 1;
  /* batch ids joined by ',': at most n * (ID_LEN + 1). */
  if ((ids = malloc(n * (ORDO_LEDGER_ID_LEN + 1) + 1)) == NULL)
    return ordo__set_last_error(ORDO_E_NOMEM, "node: out of memory");
  ids[0] = '\0';
  for (i = 0; i < n; i++) {
    if ((rc = cut_one(node, &c, &items[i])) != ORDO_OK)
      goto out;
    if (items[i].status != NODE_COMMITTED)
      continue;
    if (ncommitted++ > 0)
      ids[idlen++] = ',';
    idlen += (size_t)sprintf(ids + idlen, "%.*s", ORDO_LEDGER_ID_LEN,
                             items[i].p->id);
  }
  if (ncommitted > 0 && (rc = block_id(prev, items, n, idhex)) == ORDO_OK)
    rc = ordo__node_store_block_put(db, c.num, idhex, prev, ids);
out:
  free(ids);
  free(c.buf);
  return rc;
}

/* Put the list q (submission order, linked by next) back at the queue's
 * front (mu held). */
static void queue_prepend(ordo_node *node, node_pending *q) {
  node_pending *p;
  if (q == NULL)
    return;
  for (p = q; p->next != NULL; p = p->next)
    ;
  p->next = node->qhead;
  if (node->qhead == NULL)
    node->qtail = &p->next;
  node->qhead = q;
}

/* After the block is committed (mu held): finished batches leave the map
 * and are freed; those held back return to the queue's front, still in
 * submission order. */
static void cut_settle(ordo_node *node, node_pending *q, cut_item *items,
                       size_t n) {
  node_pending *p, *held = NULL, **tail = &held;
  size_t i;
  for (i = 0; i < n; i++)
    if (items[i].status != 0)
      map_remove(node, items[i].p); /* freed below, by the walk */
  for (p = q; p != NULL; p = q) {
    q = p->next;
    if (ordo__node_pending_find(node, p->id) == p) {
      p->next = NULL;
      *tail = p;
      tail = &p->next;
    } else {
      pending_free(p);
    }
  }
  queue_prepend(node, held);
}

/* Cut one block from the whole queue; the block thread's (or, with
 * block_ms == 0, the caller's) work. Serialised by the caller. */
static int block_cut(ordo_node *node) {
  sqlite3 *db = node->st.wdb;
  node_pending *q, *p;
  cut_item *items = NULL;
  node_pending **arr = NULL;
  size_t *perm = NULL, n = 0, i;
  uint64_t head;
  char headid[ORDO_LEDGER_ID_SIZE];
  int rc;

  pthread_mutex_lock(&node->mu);
  q = node->qhead;
  node->qhead = NULL;
  node->qtail = &node->qhead;
  pthread_mutex_unlock(&node->mu);
  for (p = q; p != NULL; p = p->next)
    n++;
  if (n == 0)
    return ORDO_OK;
  items = calloc(n, sizeof *items);
  perm = malloc(n * sizeof *perm);
  arr = malloc(n * sizeof *arr);
  if (items == NULL || perm == NULL || arr == NULL) {
    rc = ordo__set_last_error(ORDO_E_NOMEM, "node: out of memory");
    goto requeue;
  }
  if ((rc = ordo__node_store_head(db, &head, headid)) != ORDO_OK)
    goto requeue;
  ordo_node_block_order(node->opts.seed, head + 1, n, perm);
  for (p = q, i = 0; p != NULL; p = p->next)
    arr[i++] = p;
  for (i = 0; i < n; i++)
    items[i].p = arr[perm[i]];
  if ((rc = ordo__node_store_begin(db)) != ORDO_OK)
    goto requeue;
  if ((rc = cut_write(node, items, n)) != ORDO_OK ||
      (rc = ordo__node_store_commit(db)) != ORDO_OK) {
    ordo__node_store_rollback(db);
    goto requeue;
  }
  /* Committed: now the finished batches may leave the map. */
  pthread_mutex_lock(&node->mu);
  cut_settle(node, q, items, n);
  pthread_cond_broadcast(&node->changed);
  pthread_mutex_unlock(&node->mu);
  free(items);
  free(perm);
  free(arr);
  return ORDO_OK;
requeue:
  /* Nothing was written: the batches go back to the queue's front. */
  pthread_mutex_lock(&node->mu);
  queue_prepend(node, q);
  pthread_mutex_unlock(&node->mu);
  free(items);
  free(perm);
  free(arr);
  return rc;
}

static void *block_main(void *arg) {
  ordo_node *node = arg;
  unsigned long long period = (unsigned long long)node->opts.block_ms * 1000000ULL;
  unsigned long long next = now_ns() + period;

  pthread_mutex_lock(&node->mu);
  while (!node->stopping) {
    struct timespec ts = abs_time(next);
    unsigned long long now;
    pthread_cond_timedwait(&node->tick, &node->mu, &ts);
    if (node->stopping)
      break;
    if ((now = now_ns()) < next)
      continue;
    next += period;
    if (next <= now)
      next = now + period; /* do not make up for lost ticks */
    pthread_mutex_unlock(&node->mu);
    if (block_cut(node) != ORDO_OK)
      fprintf(stderr, "ordo ledger: block not written: %s\n",
              ordo_last_error_message());
    pthread_mutex_lock(&node->mu);
  }
  pthread_mutex_unlock(&node->mu);
  return NULL;
}

int ordo_node_cut_block(ordo_node *node, uint64_t *height) {
  char id[ORDO_LEDGER_ID_SIZE];
  uint64_t num;
  int rc;

  if (node == NULL)
    return ordo__set_last_error(ORDO_E_INVAL, "node: NULL argument");
  if (node->has_block_thread)
    return ordo__set_last_error(ORDO_E_STATE,
                                "node: blocks are cut by its block thread");
  pthread_mutex_lock(&node->cut_mu);
  rc = block_cut(node);
  if (rc == ORDO_OK && height != NULL) {
    rc = ordo__node_store_head(node->st.wdb, &num, id);
    *height = num;
  }
  pthread_mutex_unlock(&node->cut_mu);
  return rc;
}

/* ------------------------------------------------------------------------ */
/* Start and stop                                                            */
/* ------------------------------------------------------------------------ */

void ordo_node_options_init(ordo_node_options *opts) {
  memset(opts, 0, sizeof *opts);
  opts->port = 0;
  opts->block_ms = 1000;
  opts->max_pending = 10000;
  opts->max_wait_s = 300;
  opts->max_body_bytes = ORDO_NODE_DEFAULT_MAX_BODY;
}

/* keep_pending: one restored row, a BatchList of one batch. */
static int restore_one(void *ud, const unsigned char *data, size_t len) {
  ordo_node *node = ud;
  ordo_ledger_batchlist *bl = NULL;
  node_list *list;
  node_pending *p;
  void *mem;
  int rc;

  if ((rc = ordo_ledger_batchlist_decode(data, len, &bl)) != ORDO_OK ||
      ordo_ledger_batchlist_count(bl) != 1) {
    ordo_ledger_batchlist_free(bl);
    return ordo__set_last_error(ORDO_E_STORAGE,
                                "node db: a pending row does not decode");
  }
  if ((list = list_new(bl, 1, &mem, sizeof *p)) == NULL)
    return ORDO_E_NOMEM;
  p = mem;
  p->batch = ordo_ledger_batchlist_batch(bl, 0);
  p->id = ordo_ledger_batch_id(p->batch);
  p->list = list;
  if (ordo__node_pending_find(node, p->id) != NULL ||
      map_add(node, p) != ORDO_OK) {
    pending_free(p);
    return ORDO_OK;
  }
  queue_push(node, p);
  return ORDO_OK;
}

static void node_free(ordo_node *node) {
  size_t i;
  if (node->map != NULL) {
    for (i = 0; i < node->nmap; i++) {
      node_pending *p = node->map[i], *next;
      for (; p != NULL; p = next) {
        next = p->hnext;
        pending_free(p);
      }
    }
  }
  free(node->map);
  ordo__node_allow_free(node);
  ordo__node_store_close(&node->st);
  pthread_cond_destroy(&node->tick);
  pthread_cond_destroy(&node->changed);
  pthread_mutex_destroy(&node->cut_mu);
  pthread_mutex_destroy(&node->rd_mu);
  pthread_mutex_destroy(&node->mu);
  free(node);
}

static void init_cond(pthread_cond_t *cv) {
  pthread_condattr_t a;
  if (pthread_condattr_init(&a) != 0 ||
      pthread_condattr_setclock(&a, CLOCK_MONOTONIC) != 0 ||
      pthread_cond_init(cv, &a) != 0)
    abort(); /* only fails without memory for a condition variable */
  pthread_condattr_destroy(&a);
}

int ordo_node_start(const ordo_node_options *opts, ordo_node **out) {
  ordo_node *node;
  int rc;

  if (out != NULL)
    *out = NULL;
  if (opts == NULL || out == NULL || opts->data_dir == NULL)
    return ordo__set_last_error(ORDO_E_INVAL, "node: %s",
                                opts == NULL || out == NULL
                                    ? "NULL argument"
                                    : "no data directory");
  if (opts->port < -1 || opts->port > 65535)
    return ordo__set_last_error(ORDO_E_INVAL, "node: port %d out of range",
                                opts->port);
  if (!(opts->fail_rate >= 0.0 && opts->fail_rate <= 1.0))
    return ordo__set_last_error(ORDO_E_INVAL,
                                "node: fail rate must be within 0..1");
  if (!(opts->refuse_rate >= 0.0 && opts->refuse_rate <= 1.0))
    return ordo__set_last_error(ORDO_E_INVAL,
                                "node: refuse rate must be within 0..1");
  if ((rc = ordo__crypto_init()) != ORDO_OK)
    return ordo__set_last_error(rc, "node: libsodium did not start");
  if ((node = calloc(1, sizeof *node)) == NULL)
    return ordo__set_last_error(ORDO_E_NOMEM, "node: out of memory");
  node->opts = *opts;
  node->opts.data_dir = NULL;
  node->opts.bind = NULL;
  node->opts.allow_signers = NULL;
  node->opts.nallow_signers = 0;
  node->opts.allow_signers_file = NULL;
  if (node->opts.max_pending == 0)
    node->opts.max_pending = 10000;
  if (node->opts.max_body_bytes == 0)
    node->opts.max_body_bytes = ORDO_NODE_DEFAULT_MAX_BODY;
  atomic_init(&node->port, -1);
  node->st.lock_fd = -1;
  node->qtail = &node->qhead;
  atomic_init(&node->fault_draws, 0);
  if (pthread_mutex_init(&node->mu, NULL) != 0 ||
      pthread_mutex_init(&node->rd_mu, NULL) != 0 ||
      pthread_mutex_init(&node->cut_mu, NULL) != 0)
    abort();
  init_cond(&node->changed);
  init_cond(&node->tick);
  node->nmap = 1024;
  if ((node->map = calloc(node->nmap, sizeof *node->map)) == NULL) {
    rc = ordo__set_last_error(ORDO_E_NOMEM, "node: out of memory");
    goto fail;
  }
  if ((rc = ordo__node_allow_load(node, opts)) != ORDO_OK ||
      (rc = ordo__node_store_open(opts->data_dir, &node->st)) != ORDO_OK)
    goto fail;
  /* No thread runs yet: mu is not needed for the restore. */
  if (opts->keep_pending)
    rc = ordo__node_store_pending_each(node->st.wdb, restore_one, node);
  else
    rc =
        ordo__node_store_pending_clear(node->st.wdb); /* lost, as on Sawtooth */
  if (rc != ORDO_OK)
    goto fail;
  if (opts->block_ms > 0) {
    if (pthread_create(&node->block_thread, NULL, block_main, node) != 0) {
      rc = ordo__set_last_error(ORDO_E_SYSTEM,
                                "node: cannot start the block thread");
      goto fail;
    }
    node->has_block_thread = 1;
  }
  if (opts->port >= 0 &&
      (rc = ordo__node_http_start(node,
                                  opts->bind != NULL ? opts->bind : "127.0.0.1",
                                  opts->port)) != ORDO_OK) {
    char msg[512];
    snprintf(msg, sizeof msg, "%s", ordo_last_error_message());
    ordo_node_stop(node);
    return ordo__set_last_error(rc, "%s", msg);
  }
  *out = node;
  return ORDO_OK;
fail:
  node_free(node);
  return rc;
}

int ordo_node_port(const ordo_node *node) {
  return node != NULL ? atomic_load(&node->port) : -1;
}

int ordo_node_stop(ordo_node *node) {
  if (node == NULL)
    return ORDO_OK;
  pthread_mutex_lock(&node->mu);
  node->stopping = 1;
  pthread_cond_broadcast(&node->changed);
  pthread_cond_broadcast(&node->tick);
  pthread_mutex_unlock(&node->mu);
  /* No new connections; requests in flight finish (waits return now). */
  ordo__node_http_stop(node);
  /* The block in progress, if any, is finished and committed. */
  if (node->has_block_thread)
    pthread_join(node->block_thread, NULL);
  node->has_block_thread = 0;
  /* Pending batches: their rows are in the database with keep_pending
   * (written before each 202), and cleared by the next start without. */
  node_free(node);
  return ORDO_OK;
}

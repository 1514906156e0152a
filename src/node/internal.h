/*
 * internal.h — what the files of the node module share: the node itself
 * (node.c), its SQLite store (store.c) and the request handlers and HTTP
 * server (http.c). Other modules use node.h.
 */
#ifndef ORDO_NODE_INTERNAL_H
#define ORDO_NODE_INTERNAL_H

#include "ledger/ledger.h"
#include "node/node.h"

#include <jansson.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>

/* ------------------------------------------------------------------------ */
/* Store (store.c)                                                           */
/* ------------------------------------------------------------------------ */

/* A batch's final status, as stored. */
enum { NODE_COMMITTED = 1, NODE_INVALID = 2 };

/*
 * Two connections to DIR/node.db. wdb belongs to the block thread (and to
 * start and stop, when no block thread runs); rdb is shared by the request
 * handlers under node->rd_mu, and is also how POST /batches writes pending
 * rows with keep_pending (WAL: its reads never wait for the block thread's
 * writes; its rare writes wait at most for one block, busy_timeout).
 */
typedef struct node_store {
  sqlite3 *wdb;
  sqlite3 *rdb;
  int lock_fd; /* DIR/node.lock, flock()ed; -1 when closed */
} node_store;

/* Every function returns ORDO_OK or ORDO_E_STORAGE (with a message set by
 * ordo__set_last_error), unless said otherwise. */
int ordo__node_store_open(const char *dir, node_store *st);
void ordo__node_store_close(node_store *st);

/* wdb: BEGIN IMMEDIATE / COMMIT / ROLLBACK, and a savepoint per batch. */
int ordo__node_store_begin(sqlite3 *db);
int ordo__node_store_commit(sqlite3 *db);
void ordo__node_store_rollback(sqlite3 *db);
int ordo__node_store_savepoint(sqlite3 *db);
int ordo__node_store_release(sqlite3 *db);
void ordo__node_store_rollback_to(sqlite3 *db);

/* State of db at address as of block asof (UINT64_MAX: the newest,
 * writes of the block being made included): ORDO_OK with a copy in *buf
 * (grown as needed, caller frees), ORDO_E_NOT_FOUND, ORDO_E_STORAGE,
 * ORDO_E_NOMEM. */
int ordo__node_store_state_get(sqlite3 *db, const char *address, uint64_t asof,
                               unsigned char **buf, size_t *cap, size_t *len);
/* Write address's version of block num (the one being made). */
int ordo__node_store_state_set(sqlite3 *db, const char *address, uint64_t num,
                               const unsigned char *value, size_t len);

/* A transaction id seen in a block: NODE_COMMITTED, or NODE_INVALID when
 * the batch holding it ended INVALID (and it was never committed).
 * ordo__node_store_txn_status: ORDO_E_NOT_FOUND for an id never seen. */
int ordo__node_store_txn_status(sqlite3 *db, const char *txn_id, int *status);
int ordo__node_store_txn_put(sqlite3 *db, const char *txn_id, int status);

/* Record a final status (txn_id and message NULL for COMMITTED). */
int ordo__node_store_status_put(sqlite3 *db, const char *batch_id, int status,
                                const char *txn_id, const char *message);
/* A final status: ORDO_OK with *status and, for INVALID, new strings in
 * *txn_id and *message (caller frees); ORDO_E_NOT_FOUND. */
int ordo__node_store_status_get(sqlite3 *db, const char *batch_id, int *status,
                                char **txn_id, char **message);

/* Head of the chain: block_num and id (ORDO_E_NOT_FOUND before genesis). */
int ordo__node_store_head(sqlite3 *db, uint64_t *num,
                          char id[ORDO_LEDGER_ID_SIZE]);
/* The block_num of the block with this id; ORDO_E_NOT_FOUND. */
int ordo__node_store_block_find(sqlite3 *db, const char *id, uint64_t *num);
/* The block with this id as JSON (see ordo__node_store_block_list); *out new.
 */
int ordo__node_store_block_get(sqlite3 *db, const char *id, json_t **out);
/* Append a block; batch_ids joined by ','. */
int ordo__node_store_block_put(sqlite3 *db, uint64_t num, const char *id,
                               const char *prev, const char *batch_ids);

/* Pending batches (keep_pending): one single-batch BatchList per row. */
int ordo__node_store_pending_put(sqlite3 *db, const char *batch_id,
                                 const unsigned char *data, size_t len);
int ordo__node_store_pending_del(sqlite3 *db, const char *batch_id);
int ordo__node_store_pending_clear(sqlite3 *db);
/* Call fn for each row in submission order; stops at fn's first non-OK. */
int ordo__node_store_pending_each(sqlite3 *db,
                                  int (*fn)(void *ud, const unsigned char *data,
                                            size_t len),
                                  void *ud);

/* The entries of GET /state?address= appended to data: the state as of
 * block asof under prefix, addresses >= start (when not NULL) in address
 * order, at most limit of them; *next gets the next address or NULL. */
int ordo__node_store_state_list(sqlite3 *db, const char *prefix,
                                const char *start, uint64_t asof, size_t limit,
                                json_t *data, char **next);
/* JSON for GET /blocks: blocks with num <= start (UINT64_MAX: from the head)
 * newest first, at most limit; *next gets the next num or -1. */
int ordo__node_store_block_list(sqlite3 *db, uint64_t start, size_t limit,
                                json_t *data, int64_t *next);

/* ------------------------------------------------------------------------ */
/* The node (node.c)                                                         */
/* ------------------------------------------------------------------------ */

/* The counters of ordo_node_stats, bumped by any thread. */
typedef struct node_counters {
  atomic_uint_fast64_t requests, batches_posts, batch_statuses,
      batch_status_ids, batch_status_waits, state, blocks, other, faults,
      too_large, lists_refused;
} node_counters;

/* A BatchList a POST brought, shared by its pending batches (refs under
 * node->mu; freed when the last of them leaves the queue). */
typedef struct node_list {
  ordo_ledger_batchlist *bl;
  size_t refs;
} node_list;

/* A pending batch: in the map from POST until its block is committed, and
 * in the queue (next) until a block takes it. */
typedef struct node_pending {
  struct node_pending *hnext; /* hash chain */
  struct node_pending *next;  /* queue, submission order */
  const ordo_ledger_batch *batch;
  const char *id; /* the batch's, owned by it */
  node_list *list;
} node_pending;

struct ordo_node {
  ordo_node_options opts; /* data_dir and bind not kept */
  node_store st;
  /* libmicrohttpd, its connection guard and the requests in flight
   * (src/http/mhd.h): made by ordo__node_http_start, stopped and freed by
   * ordo__node_http_stop; NULL without HTTP. */
  struct ordo__mhd *http;
  atomic_int port;        /* -1 without HTTP; set once the socket is bound,
                             read by handlers on connection threads */

  pthread_mutex_t mu; /* guards everything down to rd_mu */
  pthread_cond_t changed; /* a block was committed, or stop: CLOCK_MONOTONIC */
  pthread_cond_t tick;    /* wakes the block thread on stop */
  node_pending **map;     /* pending by id: nmap buckets, npending entries */
  size_t nmap, npending;
  node_pending *qhead, **qtail; /* not yet in a block */
  int stopping;

  pthread_mutex_t rd_mu;  /* guards st.rdb */
  pthread_mutex_t cut_mu; /* serialises ordo_node_cut_block callers; taken
                             before mu */

  pthread_t block_thread;
  int has_block_thread;
  atomic_uint_fast64_t fault_draws; /* fault draws so far */

  /* Allow-list of batch signers (policy.c): sorted lower-case keys; none
   * when nallow is 0. Read-only after start. */
  char (*allow)[ORDO_LEDGER_PUBKEY_SIZE];
  size_t nallow;

  node_counters stats;
  uint64_t waiting; /* status requests inside wait= (under mu) */
};

/* Look up a pending batch by id (mu held). */
node_pending *ordo__node_pending_find(ordo_node *node, const char *id);

/*
 * Add the batches of a validated BatchList to the pending queue, in order,
 * skipping ids already known (pending or final) — mu not held. Takes bl:
 * it is freed here when none of its batches is added. ORDO_E_BUSY when the
 * queue would pass max_pending (nothing added), ORDO_E_STORAGE, ORDO_E_NOMEM.
 */
int ordo__node_submit(ordo_node *node, ordo_ledger_batchlist *bl);

/*
 * The status of a batch for an answer: "PENDING", "COMMITTED", "INVALID" or
 * "UNKNOWN" (static), and for INVALID the txn id and message (new strings).
 * Takes mu then rd_mu (neither held on entry).
 */
int ordo__node_status(ordo_node *node, const char *id, const char **status,
                      char **txn_id, char **message);

/* Wait until none of ids is pending, the deadline (CLOCK_MONOTONIC ns)
 * passes, or the node stops. */
void ordo__node_wait_final(ordo_node *node, char *const *ids, size_t n,
                           unsigned long long deadline_ns);

/* A 64-bit draw from the node's fault stream (any thread). */
uint64_t ordo__node_fault_draw(ordo_node *node);

/* ------------------------------------------------------------------------ */
/* Policy (policy.c)                                                         */
/* ------------------------------------------------------------------------ */

/* Build node->allow from the options' keys and file (ORDO_E_INVAL naming
 * the bad key or "FILE:LINE", ORDO_E_IO, ORDO_E_NOMEM). */
int ordo__node_allow_load(ordo_node *node, const ordo_node_options *opts);
void ordo__node_allow_free(ordo_node *node);

/* 1 when the list may be taken: every batch's signer is allowed and none
 * is refused by refuse_rate. */
int ordo__node_list_permitted(const ordo_node *node,
                              const ordo_ledger_batchlist *bl);

/* Count one request to path (requests and its path's counter). */
void ordo__node_count_request(ordo_node *node, const char *path);
/* One counter up by n. */
void ordo__node_count(atomic_uint_fast64_t *c, uint64_t n);

/* ------------------------------------------------------------------------ */
/* HTTP (http.c)                                                             */
/* ------------------------------------------------------------------------ */

/* Start libmicrohttpd on bind:port (node->port gets the real port). */
int ordo__node_http_start(ordo_node *node, const char *bind, int port);
/* Stop accepting and join every connection thread. */
void ordo__node_http_stop(ordo_node *node);

#endif /* ORDO_NODE_INTERNAL_H */

/*
 * node.h — ordo's embedded ledger node: the Sawtooth REST subset that ordo's
 * queuer submits to, backed by SQLite, cutting a block every few
 * milliseconds from everything pending, in a seeded random order.
 *
 * Why: ordo's job is to keep conflicting batches in submission order on a
 * ledger that does not promise any order. This node is that ledger at its
 * worst: every batch received in one block window is applied in an order
 * drawn from a seed (a permutation, not submission order), the pending
 * queue is lost on restart unless asked otherwise, and requests can be
 * delayed or answered 503. `ordo ledger` runs it as a process (and `ordo
 * run` starts `ordo ledger` as a child); tests and benchmarks start it
 * in-process on an ephemeral port.
 *
 * REST (JSON shapes as Sawtooth's; see DESIGN.md's appendices):
 *   POST /batches               BatchList protobuf -> 202 {"link": ...}
 *   GET  /batch_statuses?id=A,B[&wait=S]   (at most 15 ids)
 *   POST /batch_statuses[?wait=S]          JSON array of ids
 *   GET  /state/{address}[?head=ID]        {"data": base64, "head", "link"}
 *   GET  /state[?address=PREFIX][&head=ID][&limit=N][&start=ADDRESS]
 *   GET  /blocks[?head=ID][&limit=N][&start=BLOCK]   newest first
 *   GET  /blocks/{id}
 * Errors are {"error": {"code", "title", "message"}} with Sawtooth's codes:
 * a batch or block id that is not 128 lower-case hex digits fails the
 * whole request with 400/60; limit outside 1..1000 is 400/53; an unknown
 * head= is 404/50. Paged answers pin head: their link and paging.next carry
 * head=<the block read>, and state is kept per block, so every page of one
 * listing reads the same state. A POST body over max_body_bytes gets 413
 * with a plain-text body, as aiohttp answers (the HTTP server only).
 *
 * Submission policy (POST /batches, after the signatures are checked):
 * with an allow-list, a BatchList holding any batch whose signer is not on
 * it is refused whole with 400/30 (a permissioned validator's answer, which
 * does not say which batch); with refuse_rate, so is one holding any batch
 * that ordo_node_would_refuse names. Nothing of a refused list is taken.
 *
 * Blocks: each block thread tick takes every pending batch, shuffles them
 * with ordo_node_block_order(seed, block_num, n), and for each batch in
 * that order checks its transactions as a validator's scheduler does, then
 * applies them in order (families intkey 1.0 and ordo-rw 1.0, by
 * family_name):
 *   - a transaction id already committed (in the chain, earlier in this
 *     block, or earlier in the batch) makes the batch INVALID ("duplicate
 *     transaction");
 *   - every dependency must be committed: in the chain, earlier in this
 *     block, or an earlier transaction of the same batch. A batch with an
 *     unmet dependency is not applied and stays PENDING, to be tried again
 *     in later blocks, as Sawtooth holds it back; once the dependency is
 *     known INVALID (a batch holding it ended INVALID and it was never
 *     committed) the batch is INVALID with a message naming it, where
 *     Sawtooth would keep it pending forever. A dependency never seen keeps
 *     the batch pending.
 * A batch is atomic: if any of its transactions is invalid, the batch is
 * INVALID (the first invalid transaction and its message are recorded) and
 * none of its writes remain. A transaction may read only addresses under
 * one of its header's inputs and write only under its outputs, as in
 * Sawtooth. Committed batches form the block (block_num = previous + 1,
 * id = hex SHA-512 of the previous id followed by the batch ids: 128 hex
 * digits, as Sawtooth's); a tick that commits nothing makes no block.
 * Block 0 is a genesis block without batches, made when DIR is new.
 *
 * Persistence: SQLite in DIR/node.db (WAL, synchronous=FULL): state (every
 * version, by block), the final status of every batch (with the invalid
 * transaction and message), the ids of transactions seen in blocks, and the
 * chain, each block in one transaction. Pending batches live in memory and
 * are lost on restart (they become UNKNOWN) unless keep_pending is set;
 * then each accepted batch is written to the database before the 202
 * answer and restored, in submission order, by the next start.
 *
 * Threads: ordo_node_start creates the block thread (when block_ms > 0) and
 * libmicrohttpd's threads (a polling thread and one thread per connection,
 * when port >= 0) with the header reaper (http.c: closes connections whose
 * request headers are late). The node runs threads of its own outside the
 * runtime, as `ordo serve` does (server.h): it is a stand-in for a remote
 * ledger, not a library call. Every
 * function below may be called from any thread, except that ordo_node_stop
 * must not run concurrently with another call on the same node.
 *
 * Locks (node.c, lock order first to last): node->cut_mu (one
 * ordo_node_cut_block at a time), node->mu (pending queue, statuses of
 * pending batches, stop flag, the count of waiting status requests), then
 * node->rd_mu (the reading database connection). The HTTP server's mutex
 * (requests in flight, src/http/mhd.c) and the connection guard's (open
 * connections and their header deadlines, src/http/guard.c) are leaves:
 * nothing is taken while one is held. The block thread holds none of them while applying a
 * block; it takes mu only after the block is committed.
 */
#ifndef ORDO_NODE_H
#define ORDO_NODE_H

#include "ordo.h"

#include <stddef.h>
#include <stdint.h>

typedef struct ordo_node ordo_node;

/* Sawtooth's limit on ids in one GET /batch_statuses. */
#define ORDO_NODE_MAX_GET_IDS 15

typedef struct ordo_node_options {
  /* Directory of the node's database (created if missing, mode 0700).
   * Required. Borrowed for the duration of ordo_node_start only. */
  const char *data_dir;
  /* Address to listen on, IPv4 or IPv6 literal; NULL: "127.0.0.1".
   * Borrowed for the duration of ordo_node_start only. */
  const char *bind;
  /* TCP port; 0: an ephemeral one (see ordo_node_port); -1: no HTTP server
   * at all (requests only through ordo_node_handle). */
  int port;
  /* Milliseconds between block cuts; 0: no block thread, blocks are cut
   * only by ordo_node_cut_block. */
  unsigned block_ms;
  /* Seeds the block order and the fault draws. */
  uint64_t seed;
  /* Share of requests (0..1) answered 503 before anything is done. */
  double fail_rate;
  /* Milliseconds the HTTP server waits before sending each answer (the
   * request has already been handled: a client that times out first does
   * not know whether its batches were accepted). */
  unsigned delay_ms;
  /* 1: pending batches survive a restart (see above). */
  int keep_pending;
  /* POST /batches is refused (429, code 31) when the pending queue would
   * grow past this many batches. Default 10000. */
  size_t max_pending;
  /* The longest wait= a status request may ask for, in seconds; longer
   * ones (and wait=true) are cut to it. Default 300, as ordo documents
   * (Sawtooth's REST API has its own cap). */
  unsigned max_wait_s;
  /* POST bodies over this many bytes are answered 413 (plain text) without
   * being read when Content-Length says so, else once they pass it.
   * 0: the default, 10 MiB (10485760), the REST API's. */
  size_t max_body_bytes;
  /* Allow-list of batch signers: nallow_signers compressed public keys,
   * 66 hex digits each (either case), and/or allow_signers_file, a file of
   * one key per line ('#' starts a comment; blank lines are skipped), read
   * once by ordo_node_start. With neither, any signer may submit. Borrowed
   * for the duration of ordo_node_start only. A malformed key, or a file
   * without any key, fails the start with ORDO_E_INVAL naming the line. */
  const char *const *allow_signers;
  size_t nallow_signers;
  const char *allow_signers_file;
  /* Share (0..1) of batch ids refused as a permission failure would be:
   * decided by a hash of the id and seed (ordo_node_would_refuse), so the
   * same batch is refused every time it is sent. A POST /batches holding
   * any refused batch is answered 400/30 as a whole. */
  double refuse_rate;
  /* Hostile clients (the HTTP server only; 0 takes the default). A
   * connection must send complete request headers within
   * header_timeout_ms of being accepted (default 10000; on a kept-alive
   * connection within max(idle, header timeout) of its previous answer),
   * else it is closed, even when it trickles a byte now and then; one with
   * no bytes for idle_timeout_ms (default 30000, whole seconds rounded up)
   * is closed. One client address may hold connection_limit_per_ip
   * connections (default 64; more are closed as soon as accepted), all
   * together connection_limit (default 4096). */
  unsigned header_timeout_ms;
  unsigned idle_timeout_ms;
  unsigned connection_limit;
  unsigned connection_limit_per_ip;
} ordo_node_options;

/* The defaults of the fields above. */
#define ORDO_NODE_DEFAULT_HEADER_TIMEOUT_MS 10000u
#define ORDO_NODE_DEFAULT_IDLE_TIMEOUT_MS 30000u
#define ORDO_NODE_DEFAULT_CONNECTION_LIMIT 4096u
#define ORDO_NODE_DEFAULT_CONNECTION_LIMIT_PER_IP 64u

/* The REST API's default body limit, 10 MiB. */
#define ORDO_NODE_DEFAULT_MAX_BODY 10485760u

/* Defaults: port 0, block_ms 1000, seed 0, no faults, bind 127.0.0.1,
 * max_pending 10000, max_wait_s 300, max_body_bytes 10 MiB, no
 * allow-list, data_dir NULL (must be set). */
void ordo_node_options_init(ordo_node_options *opts);

/*
 * Open DIR's database (creating it and the genesis block when new), restore
 * pending batches when keep_pending, start the block thread and the HTTP
 * server. *out is the new node, stopped and freed with ordo_node_stop. On
 * failure *out is NULL, nothing is left running, and the calling thread's
 * ordo_last_error_message() says what failed. ORDO_E_INVAL for bad options
 * (no data_dir, port > 65535, fail_rate or refuse_rate outside 0..1, an
 * unparsable bind address, a bad allow-list key or line: "FILE:LINE: ..."),
 * ORDO_E_IO when allow_signers_file cannot be read, ORDO_E_STORAGE for the database, ORDO_E_STORAGE_BUSY when
 * another process holds DIR's database, ORDO_E_IO when the port cannot be
 * bound, ORDO_E_NOMEM, ORDO_E_SYSTEM when a thread cannot start.
 */
int ordo_node_start(const ordo_node_options *opts, ordo_node **out);

/* The TCP port the node listens on (the ephemeral one when port was 0), or
 * -1 when it has no HTTP server. */
int ordo_node_port(const ordo_node *node);

/*
 * Stop the node: no new connections, wake every wait=, let requests in
 * flight and the block in progress finish (no new block is cut), join the
 * threads, close the database and free the node. Pending batches are then
 * gone, unless keep_pending wrote them to the database as they arrived.
 * NULL accepted. Returns ORDO_OK.
 */
int ordo_node_stop(ordo_node *node);

/*
 * Cut one block now from every pending batch and return once it is
 * committed (or found to have nothing to commit). Batches held back by an
 * unmet dependency stay pending for the next cut. Only for a node started
 * with block_ms == 0 (ORDO_E_STATE otherwise). *height, when not NULL, gets
 * the chain's head block_num afterwards. ORDO_E_STORAGE when the block
 * cannot be written (the batches then stay pending).
 */
int ordo_node_cut_block(ordo_node *node, uint64_t *height);

/*
 * The order in which a block applies n pending batches: perm[k] is the
 * index, in submission order, of the k-th batch applied. A permutation of
 * 0..n-1 that depends only on (seed, block_num, n); exposed so tests and
 * `ordo verify` can predict it.
 */
void ordo_node_block_order(uint64_t seed, uint64_t block_num, size_t n,
                           size_t *perm);

/*
 * 1 when a node started with this seed and refuse_rate refuses the batch
 * with this id (any string), else 0: a hash of (seed, id) mapped to [0, 1)
 * falls below refuse_rate. Pure, so tests know beforehand which batches a
 * node will refuse. ordo_node_would_refuse asks with node's own options
 * (0 for NULL arguments).
 */
int ordo_node_refuses(uint64_t seed, double refuse_rate, const char *batch_id);
int ordo_node_would_refuse(const ordo_node *node, const char *batch_id);

/*
 * What the node has answered since it started, for measuring clients (for
 * example, status requests per second). Counters only grow. Requests are
 * counted by path, whatever the answer (503 faults and 413s included).
 */
typedef struct ordo_node_stats {
  uint64_t requests;           /* every request */
  uint64_t batches_posts;      /* POST (or other methods) to /batches */
  uint64_t batch_statuses;     /* GET and POST /batch_statuses */
  uint64_t batch_status_ids;   /* ids asked for by the answered ones */
  uint64_t batch_status_waits; /* of them, with wait= > 0 */
  uint64_t state;              /* /state and /state/{address} */
  uint64_t blocks;             /* /blocks and /blocks/{id} */
  uint64_t other;              /* any other path */
  uint64_t faults;             /* answered 503 by fail_rate */
  uint64_t too_large;          /* answered 413 */
  uint64_t lists_refused;      /* POST /batches refused 400/30 by the
                                  allow-list or refuse_rate */
  uint64_t waiting;            /* status requests inside wait= now */
} ordo_node_stats;

/* A snapshot of the counters. ORDO_E_INVAL for NULL arguments. */
int ordo_node_get_stats(ordo_node *node, ordo_node_stats *out);

/*
 * Wait until at least n status requests are inside their wait= (blocked
 * until their batches are final), so a test can cut a block knowing a
 * long-poll is waiting for it, without sleeping. ORDO_OK, ORDO_E_TIMEOUT
 * after timeout_ms, ORDO_E_SHUTDOWN when the node stops, ORDO_E_INVAL.
 */
int ordo_node_await_waiters(ordo_node *node, unsigned n, unsigned timeout_ms);

/* ------------------------------------------------------------------------ */
/* Requests without sockets                                                  */
/* ------------------------------------------------------------------------ */

/*
 * One HTTP request, as the server hands it over. Every pointer is borrowed
 * for the duration of ordo_node_handle only. method, path: required
 * ("POST", "/batches"); query: the raw text after '?', percent-encoded, or
 * NULL; content_type: the header's value or NULL; host: the Host header
 * (used in "link" URLs) or NULL for "127.0.0.1:port"; body: body_len bytes,
 * any bytes at all (NULL when body_len is 0).
 */
typedef struct ordo_node_request {
  const char *method;
  const char *path;
  const char *query;
  const char *content_type;
  const char *host;
  const void *body;
  size_t body_len;
} ordo_node_request;

/*
 * Handle one request as the HTTP server does (fault injection included,
 * the delay and the body limit excepted): *status gets the HTTP status and *json a new
 * NUL-terminated JSON text the caller frees with free(). May block up to the
 * request's wait= (bounded by max_wait_s, and cut short by ordo_node_stop).
 * Returns ORDO_OK whenever an answer was made, error answers included;
 * ORDO_E_INVAL for NULL arguments, ORDO_E_NOMEM (then *json is NULL).
 */
int ordo_node_handle(ordo_node *node, const ordo_node_request *req,
                     int *status, char **json);

#endif /* ORDO_NODE_H */

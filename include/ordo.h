/*
 * ordo.h — the public interface of ordo, an order-preserving concurrent engine
 * for ledger clients.
 *
 * This header is the specification. Each block says what a function does, who
 * owns each pointer and for how long, which threads may call it, and what it
 * returns.
 *
 * Conventions
 *   - Functions that can fail return an int: 0 (ORDO_OK) on success, otherwise
 *     a code from ordo_err. Codes are grouped by module and only ever appended.
 *   - A call that fails without an op to carry the detail (ordo_ctx_new,
 *     ordo_config_from_json, ...) also records a message on the calling thread:
 *     ordo_last_error() / ordo_last_error_message().
 *   - Every command returns an ordo_op at once: a future. The caller picks the
 *     threading model: block (ordo_op_wait), get a callback (ordo_op_then), or
 *     poll a file descriptor (ordo_op_fd) from its own event loop.
 *   - Nothing but the runtime creates threads.
 */
#ifndef ORDO_H
#define ORDO_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) || defined(__clang__)
#define ORDO_EXTERN __attribute__((visibility("default")))
#else
#define ORDO_EXTERN
#endif

#define ORDO_VERSION_MAJOR 0
#define ORDO_VERSION_MINOR 1
#define ORDO_VERSION_PATCH 0
#define ORDO_VERSION_STRING "0.1.0"

/* ------------------------------------------------------------------------ */
/* Errors                                                                    */
/* ------------------------------------------------------------------------ */

/*
 * X(name, value, description). 1xx common and parameters, 2xx wallet and
 * storage, 3xx ledger, 4xx crypto, 5xx queue. Values are never reused or
 * renumbered; new codes are appended inside their group.
 */
#define ORDO_ERR_MAP(X)                                                        \
  X(OK, 0, "success")                                                          \
  /* 1xx: common and parameters */                                             \
  X(E_INVAL, 100, "invalid argument")                                          \
  X(E_NOMEM, 101, "out of memory")                                             \
  X(E_BUSY, 102, "busy: queue full, or the operation is already running")      \
  X(E_CANCELED, 103, "operation canceled")                                     \
  X(E_TIMEOUT, 104, "timed out")                                               \
  X(E_PENDING, 105, "operation has not finished")                              \
  X(E_CONFIG, 106, "invalid configuration")                                    \
  X(E_JSON, 107, "malformed JSON")                                             \
  X(E_SHUTDOWN, 108, "context is shutting down")                               \
  X(E_WOULD_DEADLOCK, 109, "blocking wait called on a runtime thread")         \
  X(E_STATE, 110, "call not valid in the object's current state")              \
  X(E_SYSTEM, 111, "system call failed")                                       \
  X(E_NOT_FOUND, 112, "not found")                                             \
  X(E_IO, 113, "input/output error")                                           \
  X(E_UNSUPPORTED, 114, "not supported")                                       \
  X(E_EXISTS, 115, "already exists")                                           \
  /* 2xx: wallet and storage */                                                \
  X(E_STORAGE, 200, "storage backend error")                                   \
  X(E_WALLET_ACCESS, 201, "wallet access denied: wrong key or passphrase")     \
  X(E_WALLET_NOT_FOUND, 202, "wallet not found")                               \
  X(E_WALLET_EXISTS, 203, "wallet already exists")                             \
  X(E_WALLET_NOT_OPEN, 204, "wallet is not open")                              \
  X(E_RECORD_DUPLICATE, 205, "record already exists")                          \
  X(E_RECORD_NOT_FOUND, 206, "record not found")                               \
  X(E_WQL, 207, "invalid WQL query")                                           \
  X(E_WALLET_FILE, 208, "wallet export file is corrupt, truncated or tampered")\
  X(E_STORAGE_BUSY, 209, "storage is locked by another process")               \
  /* 210: a fenced store's lease (PostgreSQL) is at a newer epoch:        */ \
  /* another instance owns it now; the transaction was refused            */ \
  X(E_STORAGE_FENCED, 210, "lease lost: another instance owns it now")         \
  /* 3xx: ledger */                                                            \
  X(E_LEDGER, 300, "ledger error")                                             \
  /* 301: bytes that are not the protobuf message expected (BatchList,    */ \
  /* a batch or transaction header), or a field of the wrong shape       */ \
  X(E_LEDGER_DECODE, 301, "ledger message cannot be decoded")                 \
  /* 302: a batch or transaction signature (or its key) that does not    */ \
  /* verify                                                              */ \
  X(E_LEDGER_SIGNATURE, 302, "batch or transaction signature does not verify")\
  /* 303: payload_sha512 in a transaction header is not the payload's    */ \
  X(E_LEDGER_PAYLOAD_HASH, 303, "transaction payload does not match its hash")\
  /* 304: a batch header's transaction_ids are not its transactions' ids */ \
  /* in order                                                            */ \
  X(E_LEDGER_TXN_IDS, 304, "batch transaction_ids do not match its transactions")\
  /* 305: a transaction's batcher_public_key is not the batch signer     */ \
  X(E_LEDGER_BATCHER, 305, "transaction batcher key is not the batch signer") \
  /* 306: an empty batch list, or a batch without transactions           */ \
  X(E_LEDGER_EMPTY, 306, "batch list or batch is empty")                      \
  /* 307: a family payload that does not decode (CBOR, JSON)             */ \
  X(E_LEDGER_PAYLOAD, 307, "transaction payload is malformed")                \
  /* 308: a transaction its family's rules refuse (intkey: set of an     */ \
  /* existing name, overflow, ...)                                       */ \
  X(E_LEDGER_INVALID_TXN, 308, "transaction is invalid under its family's rules")\
  /* 309: the ledger cannot be reached, or the connection broke:         */ \
  /* refused, reset, closed early, name not resolved (REST client,       */ \
  /* after its retries)                                                  */ \
  X(E_LEDGER_CONNECT, 309, "cannot connect to the ledger")                     \
  /* 310: HTTP 503 (validator not ready, timed out, disconnected)        */ \
  /* after the REST client's retries                                     */ \
  X(E_LEDGER_UNAVAILABLE, 310, "ledger is unavailable")                        \
  /* 311: HTTP 429 (the validator's queue is full) after the retries     */ \
  X(E_LEDGER_BUSY, 311, "ledger is busy: its queue is full")                   \
  /* 312: HTTP 400: the ledger refused the request; the op message       */ \
  /* carries Sawtooth's code (30 invalid, 34 empty, 35 undecodable)      */ \
  X(E_LEDGER_REJECTED, 312, "ledger rejected the request")                     \
  /* 313: HTTP 401 or 403: the ledger (or a proxy) refused the auth      */ \
  X(E_LEDGER_AUTH, 313, "ledger refused the credentials")                      \
  /* 314: the TLS handshake or certificate verification failed           */ \
  X(E_LEDGER_TLS, 314, "TLS connection to the ledger failed")                  \
  /* 315: a ledger response that is not the JSON the call expects        */ \
  X(E_LEDGER_RESPONSE, 315, "ledger response is malformed")                    \
  /* 316: HTTP 400 code 30 or 35 on POST /batches: the ledger refused   */ \
  /* the whole BatchList because a batch in it failed the signature or   */ \
  /* permission check (or did not decode); it does not say which one     */ \
  X(E_LEDGER_BATCH_REFUSED, 316, "ledger refused a batch in the list")         \
  /* 317: HTTP 413: the request body is over the ledger's limit          */ \
  X(E_LEDGER_TOO_LARGE, 317, "request is larger than the ledger accepts")      \
  /* 4xx: crypto */                                                            \
  X(E_CRYPTO, 400, "cryptographic operation failed")                           \
  X(E_KEY_NOT_FOUND, 401, "key or DID not found in the wallet")                \
  X(E_BAD_KEY, 402, "malformed key, seed or DID")                              \
  X(E_UNPACK, 403, "message cannot be unpacked: tampered, or not for us")      \
  X(E_PROOF, 404, "proof does not verify")                                     \
  /* 5xx: queue */                                                             \
  X(E_QUEUE, 500, "submission queue error")

typedef enum ordo_err {
#define ORDO__ERR_ENUM(name, value, text) ORDO_##name = value,
  ORDO_ERR_MAP(ORDO__ERR_ENUM)
#undef ORDO__ERR_ENUM
} ordo_err;

/* The description of an error code; never NULL ("unknown error" for codes
 * outside the table). The string is static. Any thread. */
ORDO_EXTERN const char *ordo_strerror(int code);

/* The symbolic name of an error code ("ORDO_E_BUSY"), or "ORDO_E_UNKNOWN". */
ORDO_EXTERN const char *ordo_errname(int code);

/*
 * The code and message of the last failed call on this thread that has no op
 * to carry them (constructors, config parsing). The message is owned by the
 * thread and valid until the next ordo call on the same thread. A successful
 * call does not clear it.
 */
ORDO_EXTERN int ordo_last_error(void);
ORDO_EXTERN const char *ordo_last_error_message(void);

/* ------------------------------------------------------------------------ */
/* Configuration                                                             */
/* ------------------------------------------------------------------------ */

/*
 * Executor sizes of a context. Start from ordo_config_init(), then apply JSON
 * (ordo_config_from_json) and/or the environment (ordo_config_from_env).
 *
 *   key               env var                default
 *   cheap_threads     ORDO_CHEAP_THREADS     online cores            1..1024
 *   heavy_threads     ORDO_HEAVY_THREADS     max(1, cores / 2)       1..1024
 *   heavy_nice        ORDO_HEAVY_NICE        10                      0..19
 *   net_threads       ORDO_NET_THREADS       1                       1..1024
 *   queue_limit       ORDO_QUEUE_LIMIT       65536                   1..16777216
 *   single_executor   ORDO_SINGLE_EXECUTOR   false                   bool
 *
 * queue_limit bounds the ops admitted to one executor and not yet started;
 * a command whose first stage finds the queue full fails with ORDO_E_BUSY.
 * Later stages of an admitted op are never refused (the op was admitted once;
 * refusing it half-way would strand work already done).
 *
 * heavy_nice lowers heavy threads that many nice steps below the priority
 * they inherit (capped at 19).
 *
 * single_executor runs every class on one shared executor of cheap_threads
 * threads: the libindy model (set cheap_threads = 1 for libindy exactly). It
 * exists as the baseline that benchmarks compare against.
 */
typedef struct ordo_config {
  unsigned cheap_threads;
  unsigned heavy_threads;
  int heavy_nice;
  unsigned net_threads;
  unsigned queue_limit;
  int single_executor;
} ordo_config;

/* Fill cfg with the defaults above (core count read from the system). */
ORDO_EXTERN void ordo_config_init(ordo_config *cfg);

/*
 * Apply a JSON object of the keys above on top of cfg. Unknown keys, wrong
 * types and out-of-range values fail with ORDO_E_CONFIG (ORDO_E_JSON for text
 * that is not JSON) and a message naming the key; cfg is then unchanged.
 */
ORDO_EXTERN int ordo_config_from_json(ordo_config *cfg, const char *json);

/* Apply the ORDO_* environment variables that are set. Errors as above, the
 * message naming the variable. */
ORDO_EXTERN int ordo_config_from_env(ordo_config *cfg);

/* Check every field; ORDO_E_CONFIG with a message naming the first bad one. */
ORDO_EXTERN int ordo_config_validate(const ordo_config *cfg);

/* ------------------------------------------------------------------------ */
/* Context                                                                   */
/* ------------------------------------------------------------------------ */

typedef struct ordo_ctx ordo_ctx;
typedef struct ordo_op ordo_op;

typedef enum ordo_class {
  ORDO_CLASS_CHEAP = 0, /* milliseconds or less: signing, record crypto */
  ORDO_CLASS_HEAVY,     /* seconds: key generation, KDFs, export; low priority */
  ORDO_CLASS_STORAGE,   /* database work; one thread per opened database */
  ORDO_CLASS_NET,       /* network IO */
  ORDO_CLASS_COUNT
} ordo_class;

/* "cheap", "heavy", "storage", "net"; NULL for an invalid class. */
ORDO_EXTERN const char *ordo_class_name(ordo_class cls);

/*
 * Create a context with its own executors. cfg is copied; NULL means
 * ordo_config_init() then ordo_config_from_env(). Several contexts may live in
 * one process. Returns NULL on failure (ORDO_E_CONFIG, ORDO_E_NOMEM,
 * ORDO_E_SYSTEM), with ordo_last_error_message() saying why. Any thread.
 */
ORDO_EXTERN ordo_ctx *ordo_ctx_new(const ordo_config *cfg);

/*
 * Shut a context down and free it: new commands are refused with
 * ORDO_E_SHUTDOWN; queued ops complete with ORDO_E_CANCELED; running ops are
 * asked to cancel at their next checkpoint and waited for; every pending
 * callback is delivered; journals still open on ctx are closed (every
 * write waited for, the file unlocked); then the threads are joined. Ops the
 * caller still holds stay valid for ordo_op_status/result/release after this
 * returns; a journal it closed takes only ordo_journal_close, which then
 * frees it. Must not be called from a runtime thread, nor concurrently with
 * other calls on the same context or its journals. NULL is accepted.
 */
ORDO_EXTERN void ordo_ctx_free(ordo_ctx *ctx);

/* The configuration in force (resolved defaults). Valid while ctx lives. */
ORDO_EXTERN const ordo_config *ordo_ctx_config(const ordo_ctx *ctx);

/*
 * Metrics as a JSON object, one entry per class:
 *   {"classes":{"cheap":{"threads":N,"queue_depth":N,"busy":N,"submitted":N,
 *     "completed":N,"rejected":N,"wait_us":{"p50":N,"p99":N,"count":N,
 *     "sum_us":N,"buckets":[…]},"run_us":{…}},…}}
 * Histogram bucket i counts samples in [2^(i-1), 2^i) microseconds (bucket 0:
 * under 1 µs). Returns a malloc'd string the caller frees with free(), or NULL
 * on allocation failure. Any thread.
 */
ORDO_EXTERN char *ordo_ctx_metrics_json(ordo_ctx *ctx);

/* ------------------------------------------------------------------------ */
/* Ops (futures)                                                             */
/* ------------------------------------------------------------------------ */

/*
 * An op is refcounted. The call that returns it gives the caller one
 * reference, which the caller drops with ordo_op_release(). Releasing before
 * completion is safe: the op finishes (callback included) and is freed then.
 * All ordo_op_* functions may be called from any thread on an op the caller
 * holds a reference to.
 */

typedef void (*ordo_op_cb)(ordo_op *op, void *userdata);

/*
 * Block until op finishes or timeout_ms passes (negative: no limit; 0: poll).
 * Returns the op's status (ORDO_OK or its error), or ORDO_E_TIMEOUT.
 * On a runtime thread (inside a stage or callback) waiting for an op that has
 * not finished would risk a deadlock, so it returns ORDO_E_WOULD_DEADLOCK
 * without waiting (a 0 timeout is allowed there).
 */
ORDO_EXTERN int ordo_op_wait(ordo_op *op, int timeout_ms);

/*
 * Call cb(op, userdata) exactly once when op finishes, on a runtime thread of
 * op's context: the thread that finished it, of any class — cheap, heavy, or
 * the storage or net thread whose work completed it (a database's own
 * thread); a cheap thread when op finished off the runtime (cancelled from
 * the caller's thread, resumed by a thread of the caller's) or had finished
 * before this call. Never inside ordo_op_then itself, never on a thread that
 * is not the context's. At most one callback per op: a second call returns
 * ORDO_E_STATE. The op is valid during cb. cb must not block: it holds up
 * its thread's queue (on a storage thread, that database's later work), and
 * ordo_op_wait there returns ORDO_E_WOULD_DEADLOCK.
 * After ordo_ctx_free has returned there is no runtime thread left: setting a
 * callback on a finished op then returns ORDO_E_SHUTDOWN and cb never runs.
 */
ORDO_EXTERN int ordo_op_then(ordo_op *op, ordo_op_cb cb, void *userdata);

/*
 * An eventfd (non-blocking, close-on-exec) that becomes readable when op
 * finishes, for epoll/poll/libuv/asyncio. Owned by the op: do not close it;
 * it is closed by the release that frees the op. Returns the fd (>= 0) or a
 * negated error code (-ORDO_E_SYSTEM).
 */
ORDO_EXTERN int ordo_op_fd(ordo_op *op);

/*
 * Ask op to stop. If its next stage is still queued it is removed and the op
 * completes with ORDO_E_CANCELED before this returns: ORDO_OK. If a stage is
 * running, the request is recorded and the op stops at its next checkpoint
 * (a stage polling ordo_op_cancelled(), or the next stage boundary):
 * ORDO_E_BUSY. An op that already finished: ORDO_E_STATE.
 */
ORDO_EXTERN int ordo_op_cancel(ordo_op *op);

/* ORDO_E_PENDING until the op finishes, then its final status. */
ORDO_EXTERN int ordo_op_status(ordo_op *op);

/* The op's error message ("" on success or while pending). Owned by the op. */
ORDO_EXTERN const char *ordo_op_message(ordo_op *op);

/* The op's JSON result, or NULL if it has none or has not finished. Owned by
 * the op, valid until the op is freed. */
ORDO_EXTERN const char *ordo_op_result(ordo_op *op);

/* The op's binary result. ORDO_E_PENDING while running, ORDO_E_NOT_FOUND if
 * it has none. *data is owned by the op. */
ORDO_EXTERN int ordo_op_result_bytes(ordo_op *op, const unsigned char **data,
                                     size_t *len);

/* Take another reference (for bindings that hand the op around). */
ORDO_EXTERN ordo_op *ordo_op_retain(ordo_op *op);

/* Drop a reference. NULL is accepted. */
ORDO_EXTERN void ordo_op_release(ordo_op *op);

/* ------------------------------------------------------------------------ */
/* Running work                                                              */
/* ------------------------------------------------------------------------ */

/*
 * The body of a stage. It runs on a thread of its class and returns ORDO_OK or
 * an error code, which becomes the op's status. It may set the op's result and
 * message with the ordo_op_set_* calls below.
 */
typedef int (*ordo_stage_fn)(ordo_op *op, void *arg);

/*
 * Run fn(op, arg) as a one-stage op on class cls. arg is borrowed: it must
 * stay valid until the op finishes. If the op is refused (queue full:
 * ORDO_E_BUSY; shutting down: ORDO_E_SHUTDOWN; bad class or NULL fn:
 * ORDO_E_INVAL) the returned op has already finished with that status. NULL
 * only when ctx is NULL or memory runs out (ordo_last_error says which).
 */
ORDO_EXTERN ordo_op *ordo_submit(ordo_ctx *ctx, ordo_class cls, ordo_stage_fn fn,
                                 void *arg);

/*
 * Inside a running stage: non-zero when the current op was asked to cancel
 * (ordo_op_cancel or context shutdown). Long stages poll it at checkpoints and
 * return ORDO_E_CANCELED. Outside a stage: 0.
 */
ORDO_EXTERN int ordo_op_cancelled(void);

/*
 * Inside a running stage of op: set its JSON result (copied), its binary
 * result (copied), or its message (printf-style, copied). A later call
 * replaces an earlier one. ORDO_E_NOMEM on allocation failure; ORDO_E_STATE
 * if op has finished.
 */
ORDO_EXTERN int ordo_op_set_result(ordo_op *op, const char *json);
ORDO_EXTERN int ordo_op_set_result_bytes(ordo_op *op, const void *data,
                                         size_t len);
ORDO_EXTERN int ordo_op_set_message(ordo_op *op, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* ------------------------------------------------------------------------ */
/* Wallets                                                                   */
/* ------------------------------------------------------------------------ */

/*
 * A wallet is an encrypted record store. Every call below returns an op at
 * once (never NULL unless ctx is NULL or memory runs out); its JSON result is
 * given with each call. String arguments are copied before the call returns.
 *
 * config_json:      {"id":"alice", "path":"/var/lib/ordo/wallets",
 *                    "storage":"sqlite"}
 *   ("group_commit":false turns group commit off: one transaction per write,
 *   for comparison only)
 *   id: 1..64 of [A-Za-z0-9._-], not starting with '.'; path: the directory
 *   holding wallets (default $ORDO_WALLET_PATH, else $HOME/.ordo/wallets);
 *   the wallet lives in <path>/<id>/wallet.db.
 * credentials_json: {"key":"<passphrase>",
 *                    "key_derivation_method":"argon2id_moderate"}
 *   methods: "argon2id_moderate" (default; Indy's ARGON2I_MOD also accepted),
 *   "argon2id_interactive" (ARGON2I_INT), "raw" (RAW: key is 32 bytes as
 *   base58 or 64 hex characters). Argon2id runs on the heavy class.
 *
 * Wrong key: ORDO_E_WALLET_ACCESS. Opening a wallet that this context already
 * has open (with the right key) shares it; each open needs one close.
 * Commands name an open wallet by its id.
 */
ORDO_EXTERN ordo_op *ordo_wallet_create(ordo_ctx *ctx, const char *config_json,
                                        const char *credentials_json);
/* Result: {"id":"alice"} */
ORDO_EXTERN ordo_op *ordo_wallet_open(ordo_ctx *ctx, const char *config_json,
                                      const char *credentials_json);
ORDO_EXTERN ordo_op *ordo_wallet_close(ordo_ctx *ctx, const char *wallet_id);
/* Checks the credentials, then removes the wallet (it must not be open). */
ORDO_EXTERN ordo_op *ordo_wallet_delete(ordo_ctx *ctx, const char *config_json,
                                        const char *credentials_json);
/* Result: {"wallets":[{"id":"alice","open":true},…]}; config_json may give
 * "path" (NULL: the default). */
ORDO_EXTERN ordo_op *ordo_wallet_list(ordo_ctx *ctx, const char *config_json);

/*
 * Export an open wallet to an encrypted file, streamed, on the heavy class;
 * cancellable. export_config_json: {"path":"/backup/alice.ordo",
 * "key":"<passphrase>", "key_derivation_method":"argon2id_moderate"}. The file
 * must not exist; it appears only when complete (written to a temporary
 * file, fsync'd, then linked into place). Result: {"path":…,"records":N}.
 */
ORDO_EXTERN ordo_op *ordo_wallet_export(ordo_ctx *ctx, const char *wallet_id,
                                        const char *export_config_json);
/*
 * Create a new wallet (config_json, credentials_json as for create) from an
 * export file. import_config_json: {"path":…, "key":…}. A truncated, altered
 * or malformed file fails with ORDO_E_WALLET_FILE (a wrong file key with
 * ORDO_E_WALLET_ACCESS) and leaves no wallet behind. Result: {"id":…,
 * "records":N}. The new wallet is not opened.
 */
ORDO_EXTERN ordo_op *ordo_wallet_import(ordo_ctx *ctx, const char *config_json,
                                        const char *credentials_json,
                                        const char *import_config_json);

/* ------------------------------------------------------------------------ */
/* Records                                                                   */
/* ------------------------------------------------------------------------ */

/*
 * A record has a type, a name (unique per type), a value and tags (a JSON
 * object of string values). Type, name, value, tag names and tag values are
 * encrypted at rest; tags whose name starts with '~' are stored in plaintext
 * and can be compared by range and $like in searches.
 *
 * options_json (get/search, NULL for defaults):
 *   {"retrieve_value":true, "retrieve_tags":true, "retrieve_type":false,
 *    "retrieve_total_count":false}
 * A record in results: {"type":…,"name":…,"value":…,"tags":{…}}.
 */
ORDO_EXTERN ordo_op *ordo_record_add(ordo_ctx *ctx, const char *wallet_id,
                                     const char *type, const char *name,
                                     const char *value, const char *tags_json);
/* Result: the record. ORDO_E_RECORD_NOT_FOUND if absent. */
ORDO_EXTERN ordo_op *ordo_record_get(ordo_ctx *ctx, const char *wallet_id,
                                     const char *type, const char *name,
                                     const char *options_json);
ORDO_EXTERN ordo_op *ordo_record_update_value(ordo_ctx *ctx,
                                              const char *wallet_id,
                                              const char *type,
                                              const char *name,
                                              const char *value);
/* Replace all tags. */
ORDO_EXTERN ordo_op *ordo_record_update_tags(ordo_ctx *ctx, const char *wallet_id,
                                             const char *type, const char *name,
                                             const char *tags_json);
/* Add tags, overwriting those of the same name. */
ORDO_EXTERN ordo_op *ordo_record_add_tags(ordo_ctx *ctx, const char *wallet_id,
                                          const char *type, const char *name,
                                          const char *tags_json);
/* tag_names_json: ["a","~b"]. */
ORDO_EXTERN ordo_op *ordo_record_delete_tags(ordo_ctx *ctx, const char *wallet_id,
                                             const char *type, const char *name,
                                             const char *tag_names_json);
ORDO_EXTERN ordo_op *ordo_record_delete(ordo_ctx *ctx, const char *wallet_id,
                                        const char *type, const char *name);
/*
 * Search records of a type with a WQL query ($and $or $not $eq $neq $gt $gte
 * $lt $lte $like $in; range and $like only on '~' tags). Paged: skip offset,
 * return at most limit (0: all). Result: {"records":[…],"total":N} (total
 * only with retrieve_total_count). Bad WQL: ORDO_E_WQL, naming the problem.
 */
ORDO_EXTERN ordo_op *ordo_record_search(ordo_ctx *ctx, const char *wallet_id,
                                        const char *type, const char *wql,
                                        const char *options_json,
                                        unsigned long long offset,
                                        unsigned long long limit);
/* Result: {"count":N} */
ORDO_EXTERN ordo_op *ordo_record_count(ordo_ctx *ctx, const char *wallet_id,
                                       const char *type, const char *wql);

/* ------------------------------------------------------------------------ */
/* DIDs, keys and messages (ed25519)                                         */
/* ------------------------------------------------------------------------ */

/*
 * Keys live in the wallet, encrypted; secrets never leave it. A DID is the
 * base58 of the first 16 bytes of its ed25519 verkey (Indy's rule); a verkey
 * is base58 of 32 bytes. Signing and packing run on the cheap class.
 *
 * options_json (NULL for none): {"seed":"<32 chars | 64 hex | base64>",
 *   "metadata":"<string>"}. Result: {"did":…,"verkey":…}. A DID that exists
 * already: ORDO_E_RECORD_DUPLICATE.
 */
ORDO_EXTERN ordo_op *ordo_did_create(ordo_ctx *ctx, const char *wallet_id,
                                     const char *options_json);
/* Result: {"did":…,"verkey":…,"metadata":…} (metadata null when unset;
 * "next_verkey" during a rotation). ORDO_E_KEY_NOT_FOUND if unknown. */
ORDO_EXTERN ordo_op *ordo_did_get(ordo_ctx *ctx, const char *wallet_id,
                                  const char *did);
/* Result: {"dids":[{"did","verkey","metadata"},…]} */
ORDO_EXTERN ordo_op *ordo_did_list(ordo_ctx *ctx, const char *wallet_id);
ORDO_EXTERN ordo_op *ordo_did_set_metadata(ordo_ctx *ctx, const char *wallet_id,
                                           const char *did, const char *metadata);
/* Key rotation: start makes a new key (options_json as for create: seed) and
 * records it as the DID's next verkey; apply makes it the current one
 * (ORDO_E_STATE without a started rotation). Result: {"verkey":…}. The old
 * key stays in the wallet (old signatures still verify through it). */
ORDO_EXTERN ordo_op *ordo_did_rotate_start(ordo_ctx *ctx, const char *wallet_id,
                                           const char *did,
                                           const char *options_json);
ORDO_EXTERN ordo_op *ordo_did_rotate_apply(ordo_ctx *ctx, const char *wallet_id,
                                           const char *did);

/* Sign len bytes with the wallet's key for verkey. Result: the 64-byte
 * signature as bytes (ordo_op_result_bytes) and {"signature":"<base64url>"}. */
ORDO_EXTERN ordo_op *ordo_sign(ordo_ctx *ctx, const char *wallet_id,
                               const char *verkey, const void *msg, size_t len);
/* Result: {"valid":true|false}; a malformed verkey: ORDO_E_BAD_KEY. */
ORDO_EXTERN ordo_op *ordo_verify(ordo_ctx *ctx, const char *verkey,
                                 const void *msg, size_t len, const void *sig,
                                 size_t sig_len);

/*
 * Pack a message for recipients (JSON array of verkeys), Aries RFC 0019
 * envelopes: authcrypt from sender_verkey (a key in the wallet), or anoncrypt
 * when sender_verkey is NULL. Result: the envelope JSON.
 */
ORDO_EXTERN ordo_op *ordo_pack(ordo_ctx *ctx, const char *wallet_id,
                               const void *msg, size_t len,
                               const char *recipients_json,
                               const char *sender_verkey);
/* Unpack with whichever recipient key the wallet holds. Result:
 * {"message":…,"recipient_verkey":…,"sender_verkey":…|null} and the message
 * as bytes. Tampered, or for no key of ours: ORDO_E_UNPACK. */
ORDO_EXTERN ordo_op *ordo_unpack(ordo_ctx *ctx, const char *wallet_id,
                                 const char *envelope_json);

/* ------------------------------------------------------------------------ */
/* secp256k1 (Sawtooth signing keys)                                         */
/* ------------------------------------------------------------------------ */

/* A new key in the wallet. Result: {"public_key":"<66 hex>"}. */
ORDO_EXTERN ordo_op *ordo_secp256k1_create(ordo_ctx *ctx, const char *wallet_id);
/* Sign a 32-byte digest (SHA-256 of the signed bytes) with the wallet's key
 * for public_key_hex. Result: {"signature":"<128 hex>"} (compact r‖s, low S). */
ORDO_EXTERN ordo_op *ordo_secp256k1_sign(ordo_ctx *ctx, const char *wallet_id,
                                         const char *public_key_hex,
                                         const unsigned char digest[32]);
/* Result: {"valid":true|false}. */
ORDO_EXTERN ordo_op *ordo_secp256k1_verify(ordo_ctx *ctx,
                                           const char *public_key_hex,
                                           const unsigned char digest[32],
                                           const char *signature_hex);

/* ------------------------------------------------------------------------ */
/* Credential definitions (CL keys)                                          */
/* ------------------------------------------------------------------------ */

/*
 * Generate CL credential-definition keys on the heavy class (seconds at the
 * default 1025 bits); cancellable — a cancelled keygen stores nothing.
 * options_json: {"attributes":["name","age",…], "tag":"default",
 *   "issuer_did":"…" (optional), "schema_seq_no":N (optional), "bits":1025}.
 * The private key is stored encrypted in the wallet. Result:
 * {"id":…,"public_key":{"n","s","z","r":{…}},"proof":{…}}.
 */
ORDO_EXTERN ordo_op *ordo_cred_def_create(ordo_ctx *ctx, const char *wallet_id,
                                          const char *options_json);

/* ------------------------------------------------------------------------ */
/* The submission queue                                                      */
/* ------------------------------------------------------------------------ */

/*
 * A durable queue of batches for a ledger that applies a block's batches in
 * any order: it hands out as many at once as is safe, keeping every pair
 * that conflicts (one writes a state address the other reads or writes, an
 * address also standing for every address it is a prefix of) in submission
 * order within a service, and keeps explicit deps. Every change is
 * journaled (SQLite, WAL, synchronous=FULL, group commit) before it is
 * acknowledged; reopening restores the queue exactly. The README's "The
 * submission queuer" section has the whole story; the internal C API with
 * the scheduler and the ledger port is src/queue/queue.h.
 *
 * Strings returned by these calls are malloc'd: free them with ordo_free
 * (or free()). Threads: any thread, concurrently; open and close block and
 * refuse runtime threads (ORDO_E_WOULD_DEADLOCK).
 */
typedef struct ordo_journal ordo_journal;

/* Free a string (or other buffer) ordo returned. NULL accepted. */
ORDO_EXTERN void ordo_free(void *p);

/*
 * Open the queue stored at path, made if missing (options_json NULL: the
 * defaults): {"create":true, "strategy":"parallel"|"serial"|"unconstrained",
 * "mode":"continuous"|"rounds", "granularity":-1 (unlimited; 0: all
 * conflict; 6: by Sawtooth namespace), "max_in_flight":0 (no cap),
 * "service_max_in_flight":0}. Strategy and granularity are fixed when the
 * file is made. ORDO_E_JSON / ORDO_E_CONFIG naming the key,
 * ORDO_E_NOT_FOUND without create for a missing file, ORDO_E_STORAGE for a
 * file that is not a queue, ORDO_E_QUEUE for a journal that cannot be
 * replayed.
 */
ORDO_EXTERN int ordo_journal_open_json(ordo_ctx *ctx, const char *path,
                                       const char *options_json,
                                       ordo_journal **out);

/* Wait for every journal write, close and free (NULL accepted). Returns
 * ORDO_OK, or the first write failure. After ordo_ctx_free of its context
 * (which closed the journal) it only frees j, returning what that close
 * found; it is the one call such a journal takes. */
ORDO_EXTERN int ordo_journal_close(ordo_journal *j);

/*
 * Enqueue a batch: {"id":…, "service":…, "reads":[addresses],
 * "writes":[addresses], "deps":[ids], "payload":"<base64>"} (only id and
 * service required). A payload that is a Sawtooth BatchList of one batch is
 * locked by its transactions' inputs (reads) and outputs (writes) as well as
 * what the item declares, and its batch id is its ledger id (unique in the
 * queue); any other payload is opaque. The op completes once the batch is
 * durable, with {"id":…,"seq":N}. The same batch again (same id, service,
 * reads, writes, deps and payload: a retry) is safe: it completes once that
 * batch is durable, with {"id","seq","already_enqueued":true,"state"}.
 * ORDO_E_EXISTS for an id already enqueued with other content or a signed
 * batch already queued under another id, ORDO_E_JSON / ORDO_E_INVAL naming
 * the problem. NULL only when out of memory.
 */
ORDO_EXTERN ordo_op *ordo_journal_enqueue_json(ordo_journal *j,
                                               const char *batch_json);

/* {"id","service","seq","state":"QUEUED|WAITING|SUBMITTED|COMMITTED|
 * INVALID|UNKNOWN","reason"?,"explain"?,"enqueued_ms"?,"finished_ms"?}
 * (Unix ms); NULL with ORDO_E_NOT_FOUND. */
ORDO_EXTERN char *ordo_journal_batch_json(ordo_journal *j, const char *id);
/* {"service","depth","queued","waiting","in_flight","unknown","committed",
 * "invalid","halted","halt_batch"?,"halt_reason"?}; NULL if never seen. */
ORDO_EXTERN char *ordo_journal_service_json(ordo_journal *j,
                                            const char *service);
/* {"queued","waiting","in_flight","unknown","committed","invalid",
 * "services","journal_records","latency_ms":{"count","p50","p99"},
 * "failed"?} (enqueue -> verdict, 25 % resolution). */
ORDO_EXTERN char *ordo_journal_totals_json(ordo_journal *j);

/* A service's policy: {"on_invalid":"skip"|"halt","max_in_flight":N,
 * "dep_timeout_s":S}: a batch whose dep was not enqueued within S seconds
 * (a number, 0: no limit) of the batch ends INVALID naming the dep. */
ORDO_EXTERN int ordo_journal_set_policy_json(ordo_journal *j,
                                             const char *service,
                                             const char *policy_json);
/* Let a halted service go on. ORDO_E_STATE if it is not halted. */
ORDO_EXTERN int ordo_journal_resume(ordo_journal *j, const char *service);

/*
 * Cancel a batch that has not been sent: a QUEUED or WAITING batch ends
 * INVALID with reason "cancelled", its locks released and its dependants
 * INVALID in turn (the service's halt policy does not apply). The op
 * completes once the cancel is durable, with {"id","state":"INVALID",
 * "reason":"cancelled"}; at once with ORDO_E_NOT_FOUND, or ORDO_E_STATE for
 * a SUBMITTED or UNKNOWN batch (the ledger has it: its verdict will come)
 * or a finished one (the message says which). NULL only when out of
 * memory.
 */
ORDO_EXTERN ordo_op *ordo_journal_cancel(ordo_journal *j, const char *id);

#ifdef __cplusplus
}
#endif

#endif /* ORDO_H */

/*
 * ledger.h — Sawtooth's wire format, done the Sawtooth way: transactions and
 * batches built and signed (secp256k1, protobuf), BatchLists encoded and
 * decoded, every signature and hash of a received BatchList checked, and the
 * two transaction families ordo's embedded node runs (intkey, ordo-rw) as
 * pure functions over a small state interface.
 *
 * Why: the queuer submits signed batches to a Sawtooth REST API, and the
 * embedded node (src/node) must accept exactly what a validator accepts.
 * Both sides share this module so they cannot drift apart. This header
 * also declares the REST client and the Sawtooth ledger port (rest.c,
 * port.c), which use these calls, as do `ordo submit` and `ordo verify`
 * (submit.h); the wire-format functions below do no networking and no storage.
 *
 * Threads: none created. Every function is synchronous. Objects are not
 * locked: a caller may use different objects on different threads at once,
 * and one object from several threads only for reading (the const calls).
 * A signer is read-only after ordo_ledger_signer_new, so one signer may sign
 * on many threads at once.
 *
 * Errors: ORDO_OK or a code from ordo_err. Every failure also records a
 * message on the calling thread (ordo_last_error_message()) naming the batch
 * and transaction (by index and the first 16 hex digits of the id) and the
 * problem. Codes: ORDO_E_INVAL for arguments the caller got wrong,
 * ORDO_E_NOMEM, ORDO_E_BAD_KEY for a bad secret key, and the ledger codes
 * ORDO_E_LEDGER_* (include/ordo.h) for what comes off the wire. A failed call
 * sets its output pointers to NULL and leaves nothing allocated.
 *
 * Secrets: only an ordo_ledger_signer holds one (its secp256k1 secret key),
 * wiped when it is freed. Nothing here prints or returns a secret key.
 */
#ifndef ORDO_LEDGER_H
#define ORDO_LEDGER_H

#include "ordo.h"

#include <stddef.h>
#include <stdint.h>

/* A state address: 70 lower-case hex characters (6 of namespace, 64 more). */
#define ORDO_LEDGER_ADDRESS_LEN 70
#define ORDO_LEDGER_ADDRESS_SIZE (ORDO_LEDGER_ADDRESS_LEN + 1)
#define ORDO_LEDGER_NAMESPACE_LEN 6
#define ORDO_LEDGER_NAMESPACE_SIZE (ORDO_LEDGER_NAMESPACE_LEN + 1)
/* A header signature (a transaction's or batch's id): 128 hex characters. */
#define ORDO_LEDGER_ID_LEN 128
#define ORDO_LEDGER_ID_SIZE (ORDO_LEDGER_ID_LEN + 1)
/* A compressed secp256k1 public key in hex: 66 characters. */
#define ORDO_LEDGER_PUBKEY_SIZE 67

typedef struct ordo_ledger_signer ordo_ledger_signer;
typedef struct ordo_ledger_txn ordo_ledger_txn;
typedef struct ordo_ledger_batch ordo_ledger_batch;
typedef struct ordo_ledger_batchlist ordo_ledger_batchlist;

/* ------------------------------------------------------------------------ */
/* Signers                                                                   */
/* ------------------------------------------------------------------------ */

/*
 * A signer from a secret key in hex (64 characters, Sawtooth's key files), or
 * a random one when secret_hex is NULL. The caller keeps secret_hex (and
 * should wipe it); the signer holds its own copy of the key, in memory it
 * wipes on free. ORDO_E_BAD_KEY for a malformed or invalid key, ORDO_E_INVAL
 * for out == NULL, ORDO_E_NOMEM, ORDO_E_CRYPTO.
 */
int ordo_ledger_signer_new(const char *secret_hex, ordo_ledger_signer **out);

/* Wipe and free. NULL accepted. */
void ordo_ledger_signer_free(ordo_ledger_signer *s);

/* The signer's public key, 66 hex characters; owned by the signer. */
const char *ordo_ledger_signer_public_key(const ordo_ledger_signer *s);

/*
 * A signer from the key file `sawtooth keygen` writes: the secp256k1 secret
 * key as 64 hex digits on one line (a trailing newline and blanks allowed,
 * nothing else). The file is read as ordo_ledger_secret_file_read reads it
 * (a regular file, not world-readable). Messages name the file and the
 * problem, never the file's content; every buffer that held the key is
 * wiped. ORDO_E_INVAL (cannot be read, not a regular file, world-readable),
 * ORDO_E_BAD_KEY (not 64 hex digits on one line, or not a valid key),
 * ORDO_E_NOMEM, ORDO_E_CRYPTO.
 */
int ordo_ledger_signer_from_file(const char *path, ordo_ledger_signer **out);

/*
 * Read a small secret file (a key, a token) that only its owner may read:
 * refused unless it is a regular file without the world-read bit (mode &
 * 0004, checked on the opened file). At most max bytes go into buf; *len
 * gets how many (max: the file may be longer). `what` names the file in
 * messages ("token file", "signing key file"): "WHAT PATH is
 * world-readable (mode 644): chmod o-r it (0600 is usual)"; the content is
 * never quoted. The caller wipes buf (sodium_memzero) after use; on failure
 * it is wiped already. ORDO_E_INVAL.
 */
int ordo_ledger_secret_file_read(const char *what, const char *path,
                                 char *buf, size_t max, size_t *len);

/* ------------------------------------------------------------------------ */
/* Transactions                                                              */
/* ------------------------------------------------------------------------ */

/*
 * What goes into a transaction header besides the keys. All pointers are
 * borrowed for the duration of the build call only. Arrays may be NULL when
 * their count is 0; payload may be NULL when payload_len is 0.
 */
typedef struct ordo_ledger_txn_spec {
  const char *family_name;
  const char *family_version;
  const char *const *inputs;       /* addresses the txn may read */
  size_t ninputs;
  const char *const *outputs;      /* addresses the txn may write */
  size_t noutputs;
  const char *const *dependencies; /* ids of txns to apply first */
  size_t ndependencies;
  const void *payload;
  size_t payload_len;
  /* NULL: 16 random bytes in hex. Set it only to make a header
   * reproducible (tests); two txns with equal headers have equal ids. */
  const char *nonce;
} ordo_ledger_txn_spec;

/*
 * Build and sign a transaction: the header gets the spec's fields,
 * payload_sha512 = hex SHA-512 of the payload, signer_public_key = signer's
 * key and batcher_public_key = batcher_public_key (the key of whoever will
 * sign the batch; NULL: the signer itself, the usual case). header_signature
 * = secp256k1 over SHA-256 of the serialized header, compact, low S, hex.
 * *out is new; free it with ordo_ledger_txn_free. ORDO_E_INVAL for NULL
 * arguments or strings (family name and version are required).
 */
int ordo_ledger_txn_build(const ordo_ledger_signer *signer,
                          const char *batcher_public_key,
                          const ordo_ledger_txn_spec *spec,
                          ordo_ledger_txn **out);

/* NULL accepted. Not for transactions owned by a batch (see below). */
void ordo_ledger_txn_free(ordo_ledger_txn *t);

/*
 * The fields of a transaction's header, as decoded from its header bytes.
 * Every pointer is owned by the transaction and valid as long as it is.
 * Strings are never NULL (an absent field is "").
 */
typedef struct ordo_ledger_txn_header {
  const char *batcher_public_key;
  const char *const *dependencies;
  size_t ndependencies;
  const char *family_name;
  const char *family_version;
  const char *const *inputs;
  size_t ninputs;
  const char *nonce;
  const char *const *outputs;
  size_t noutputs;
  const char *payload_sha512;
  const char *signer_public_key;
} ordo_ledger_txn_header;

/* The transaction's id (its header_signature). Owned by the transaction. */
const char *ordo_ledger_txn_id(const ordo_ledger_txn *t);
/* Its decoded header (see the struct). */
void ordo_ledger_txn_header_get(const ordo_ledger_txn *t,
                                ordo_ledger_txn_header *out);
/* Its serialized header, the signed bytes. Owned by the transaction. */
const unsigned char *ordo_ledger_txn_header_bytes(const ordo_ledger_txn *t,
                                                  size_t *len);
/* Its payload. Owned by the transaction; may be NULL when *len is 0. */
const unsigned char *ordo_ledger_txn_payload(const ordo_ledger_txn *t,
                                             size_t *len);

/* ------------------------------------------------------------------------ */
/* Batches and batch lists                                                   */
/* ------------------------------------------------------------------------ */

/*
 * Build and sign a batch of n >= 1 transactions, in order: BatchHeader
 * signer_public_key = signer's key, transaction_ids = the txns'
 * header_signatures in order; the batch's id is its header_signature. The
 * transactions are copied: the caller keeps (and frees) txns. *out is new;
 * free it with ordo_ledger_batch_free.
 *
 * ORDO_E_INVAL for NULL arguments or n == 0; ORDO_E_LEDGER_BATCHER when a
 * txn's batcher_public_key is not signer's key (a validator would refuse the
 * batch, so it is never built).
 */
int ordo_ledger_batch_build(const ordo_ledger_signer *signer,
                            ordo_ledger_txn *const *txns, size_t n,
                            ordo_ledger_batch **out);

/* Frees the batch and the transactions it owns. NULL accepted. */
void ordo_ledger_batch_free(ordo_ledger_batch *b);

/* The batch's id (its header_signature). Owned by the batch. */
const char *ordo_ledger_batch_id(const ordo_ledger_batch *b);
/* The batch header's signer_public_key. Owned by the batch. */
const char *ordo_ledger_batch_signer(const ordo_ledger_batch *b);
size_t ordo_ledger_batch_txn_count(const ordo_ledger_batch *b);
/* Transaction i (< count), owned by the batch: do not free it. */
const ordo_ledger_txn *ordo_ledger_batch_txn(const ordo_ledger_batch *b,
                                             size_t i);

/*
 * A batch's footprint for the queuer's locks, as the validator enforces
 * it: reads = the declared reads and every transaction's inputs, writes =
 * the declared writes and every transaction's outputs, each sorted and
 * without repeats. Declared addresses (arrays may be NULL when their count
 * is 0) can only add to what the signed batch says, never narrow it: a
 * scheduler that took a client's word for a footprint would run
 * conflicting batches at once. The strings are borrowed (from the batch
 * and the declared arrays: valid while both are); the two arrays are new,
 * freed by ordo_ledger_footprint_clear. Every path that enqueues a
 * Sawtooth batch (the server, ordo submit, the JSON C API) uses it.
 * ORDO_E_INVAL for NULL arguments, ORDO_E_NOMEM (then *out is empty).
 */
typedef struct ordo_ledger_footprint {
  const char **reads;
  size_t nreads;
  const char **writes;
  size_t nwrites;
} ordo_ledger_footprint;

int ordo_ledger_batch_footprint(const ordo_ledger_batch *b,
                                const char *const *reads, size_t nreads,
                                const char *const *writes, size_t nwrites,
                                ordo_ledger_footprint *out);
/* Free the arrays and zero fp. NULL accepted. */
void ordo_ledger_footprint_clear(ordo_ledger_footprint *fp);

/*
 * Serialize a BatchList of n batches (n may be 0: Sawtooth's REST API then
 * answers "empty", code 34), the body of POST /batches. *out is a new buffer
 * of *out_len bytes the caller frees with free(). ORDO_E_INVAL for NULL
 * arguments, ORDO_E_NOMEM.
 */
int ordo_ledger_batchlist_encode(const ordo_ledger_batch *const *batches,
                                 size_t n, unsigned char **out,
                                 size_t *out_len);

/*
 * Decode a BatchList from len bytes at data (untrusted: any bytes are safe),
 * including every batch header and transaction header inside it. Nothing is
 * verified yet; call ordo_ledger_batchlist_validate. *out is new; free it
 * with ordo_ledger_batchlist_free. ORDO_E_LEDGER_DECODE for bytes that are
 * not a BatchList, or a batch or transaction header that is not a
 * BatchHeader or TransactionHeader; ORDO_E_INVAL for NULL arguments (data
 * may be NULL when len is 0), ORDO_E_NOMEM.
 */
int ordo_ledger_batchlist_decode(const void *data, size_t len,
                                 ordo_ledger_batchlist **out);

/*
 * Check a decoded BatchList the way a validator does, batch by batch and in
 * each batch transaction by transaction, and report the first failure:
 *
 *   ORDO_E_LEDGER_EMPTY        no batches, or a batch without transactions
 *   ORDO_E_LEDGER_SIGNATURE    a signer key that is not a compressed
 *                              secp256k1 key, a header_signature that is not
 *                              128 hex digits, or one that does not verify
 *                              over SHA-256 of the header bytes (high S too)
 *   ORDO_E_LEDGER_TXN_IDS      the batch header's transaction_ids are not the
 *                              transactions' header_signatures, in order
 *   ORDO_E_LEDGER_BATCHER      a txn's batcher_public_key is not the batch
 *                              header's signer_public_key
 *   ORDO_E_LEDGER_PAYLOAD_HASH a txn's payload_sha512 is not the hex SHA-512
 *                              of its payload
 *
 * For one batch: its signature, then its ids, then for each txn its
 * signature, batcher key and payload hash. ORDO_OK when everything holds.
 * Not checked here (the node's job): duplicate ids, dependencies, families.
 */
int ordo_ledger_batchlist_validate(const ordo_ledger_batchlist *bl);

/* NULL accepted. */
void ordo_ledger_batchlist_free(ordo_ledger_batchlist *bl);

size_t ordo_ledger_batchlist_count(const ordo_ledger_batchlist *bl);
/* Batch i (< count), owned by the list. */
const ordo_ledger_batch *
ordo_ledger_batchlist_batch(const ordo_ledger_batchlist *bl, size_t i);

/* ------------------------------------------------------------------------ */
/* Addresses                                                                 */
/* ------------------------------------------------------------------------ */

/* A family's namespace: the first 6 hex digits of SHA-512(family_name). */
int ordo_ledger_namespace(const char *family_name,
                          char out[ORDO_LEDGER_NAMESPACE_SIZE]);

/* namespace (6 hex digits) followed by the last 64 hex digits of
 * SHA-512(key): how intkey and ordo-rw map a name to an address. */
int ordo_ledger_address(const char *ns, const char *key,
                        char out[ORDO_LEDGER_ADDRESS_SIZE]);

/* ------------------------------------------------------------------------ */
/* State, as the families see it                                             */
/* ------------------------------------------------------------------------ */

/*
 * What a family's apply function may do to state: get and set whole values
 * by address. The node supplies it (a per-transaction overlay over its
 * store, so a transaction that fails half-way leaves nothing behind); tests
 * supply a map. Both callbacks run on the caller's thread, inside apply.
 *
 *   get  ORDO_OK with *value / *len borrowed from the state, valid until the
 *        next call on it, or ORDO_E_NOT_FOUND when the address has no value;
 *        any other code is passed on by apply.
 *   set  copies len bytes at value; any code other than ORDO_OK is passed on.
 */
typedef struct ordo_ledger_state {
  int (*get)(void *ud, const char *address, const unsigned char **value,
             size_t *len);
  int (*set)(void *ud, const char *address, const unsigned char *value,
             size_t len);
  void *ud;
} ordo_ledger_state;

/* ------------------------------------------------------------------------ */
/* intkey (intkey.c)                                                         */
/* ------------------------------------------------------------------------ */

/*
 * Sawtooth's integer-key family, version "1.0". Payload: a CBOR map
 * {"Verb": "set"|"inc"|"dec", "Name": text, "Value": unsigned int}. State at
 * ordo_ledger_address("1cf126", name): a CBOR map {name: unsigned int} (a map,
 * as Sawtooth's, so names whose addresses collide can share it).
 */
#define ORDO_LEDGER_INTKEY_FAMILY "intkey"
#define ORDO_LEDGER_INTKEY_VERSION "1.0"
#define ORDO_LEDGER_INTKEY_NAMESPACE "1cf126"
#define ORDO_LEDGER_INTKEY_MAX_NAME 20
#define ORDO_LEDGER_INTKEY_MAX_VALUE UINT32_MAX
/* Payloads longer than this are refused before CBOR decoding: a valid one
 * is under 64 bytes, and the bound keeps libcbor's nesting shallow. */
#define ORDO_LEDGER_INTKEY_MAX_PAYLOAD 1024

typedef enum ordo_ledger_intkey_verb {
  ORDO_LEDGER_INTKEY_SET = 0,
  ORDO_LEDGER_INTKEY_INC,
  ORDO_LEDGER_INTKEY_DEC
} ordo_ledger_intkey_verb;

/* A decoded payload. name is owned by the struct (free with _clear). */
typedef struct ordo_ledger_intkey_payload {
  ordo_ledger_intkey_verb verb;
  char *name;
  uint64_t value;
} ordo_ledger_intkey_payload;

/* The address of a name. ORDO_E_INVAL for NULL arguments. */
int ordo_ledger_intkey_address(const char *name,
                               char out[ORDO_LEDGER_ADDRESS_SIZE]);

/*
 * Encode {"Verb", "Name", "Value"}. *out is new (free()). The value is not
 * range-checked, so tests can make payloads apply must refuse.
 * ORDO_E_INVAL for NULL arguments or an unknown verb, ORDO_E_NOMEM.
 */
int ordo_ledger_intkey_encode(ordo_ledger_intkey_verb verb, const char *name,
                              uint64_t value, unsigned char **out,
                              size_t *out_len);

/*
 * Decode a payload (untrusted bytes). ORDO_E_LEDGER_PAYLOAD for anything
 * that is not one CBOR map holding the three keys once each (other keys are
 * ignored, as sawtooth-sdk-python's handler ignores them), "Verb" one of
 * the three text strings, "Name" a text string without NUL bytes, "Value"
 * an unsigned integer, and nothing after it; or more than MAX_PAYLOAD
 * bytes. The name's length and the value's range are rules (apply), not
 * format.
 * On error *out is zeroed. Free with ordo_ledger_intkey_payload_clear.
 */
int ordo_ledger_intkey_decode(const void *data, size_t len,
                              ordo_ledger_intkey_payload *out);

/* Free what decode put in p and zero it. NULL accepted. */
void ordo_ledger_intkey_payload_clear(ordo_ledger_intkey_payload *p);

/*
 * Apply a payload to state, with the rules of sawtooth-sdk-python's intkey
 * handler: a name of 0..20 characters (code points of valid UTF-8; the
 * empty name is legal), value 0..2^32-1; "set" needs the name absent,
 * "inc"/"dec" need it present and a result in 0..2^32-1. On success the
 * state at the name's address is written once. ORDO_E_LEDGER_PAYLOAD as
 * decode; ORDO_E_LEDGER_INVALID_TXN for a rule broken (state untouched);
 * ORDO_E_LEDGER when the value at the address is not an intkey map; a
 * state callback's own code.
 */
int ordo_ledger_intkey_apply(const void *payload, size_t len,
                             const ordo_ledger_state *state);

/* ------------------------------------------------------------------------ */
/* ordo-rw (rw.c): an order-sensitive test family                           */
/* ------------------------------------------------------------------------ */

/*
 * Payload: JSON {"reads": [keys], "writes": [keys]}, keys non-empty strings,
 * each mapped to ordo_ledger_address(namespace of "ordo-rw", key). Applying
 * a transaction with id S reads every read address, in order, then writes
 * to every write address
 *
 *     SHA-256(S || for each read: u32 big-endian length || value)
 *
 * (an absent value has length 0). Every write depends on the transaction's
 * id and on what it read, so committing two conflicting transactions in the
 * other order leaves a different state; non-conflicting ones commute. That
 * is what `ordo verify` uses to catch order violations.
 */
#define ORDO_LEDGER_RW_FAMILY "ordo-rw"
#define ORDO_LEDGER_RW_VERSION "1.0"
/* Bounds on a payload, so a hostile one cannot make apply do much work. */
#define ORDO_LEDGER_RW_MAX_KEYS 256
#define ORDO_LEDGER_RW_MAX_PAYLOAD 65536

/* A decoded payload; the arrays and strings are owned by it. */
typedef struct ordo_ledger_rw_payload {
  char **reads;
  size_t nreads;
  char **writes;
  size_t nwrites;
} ordo_ledger_rw_payload;

/* The address of a key. ORDO_E_INVAL for NULL arguments. */
int ordo_ledger_rw_address(const char *key, char out[ORDO_LEDGER_ADDRESS_SIZE]);

/* Encode the JSON payload; *out is a new string (free()). ORDO_E_INVAL for
 * NULL or empty keys, or more than MAX_KEYS of either; ORDO_E_NOMEM. */
int ordo_ledger_rw_encode(const char *const *reads, size_t nreads,
                          const char *const *writes, size_t nwrites,
                          char **out);

/*
 * Decode a payload (untrusted). ORDO_E_LEDGER_PAYLOAD for anything but an
 * object with exactly "reads" and "writes", each an array of at most
 * MAX_KEYS non-empty strings, within MAX_PAYLOAD bytes. On error *out is
 * zeroed. Free with ordo_ledger_rw_payload_clear.
 */
int ordo_ledger_rw_decode(const void *data, size_t len,
                          ordo_ledger_rw_payload *out);

/* Free what decode put in p and zero it. NULL accepted. */
void ordo_ledger_rw_payload_clear(ordo_ledger_rw_payload *p);

/*
 * Apply a payload of the transaction with id txn_id (its header_signature)
 * to state, as described above. ORDO_E_LEDGER_PAYLOAD as decode,
 * ORDO_E_INVAL for NULL arguments, ORDO_E_NOMEM, a state callback's code.
 */
int ordo_ledger_rw_apply(const char *txn_id, const void *payload, size_t len,
                         const ordo_ledger_state *state);

/* ------------------------------------------------------------------------ */
/* Either family, by the transaction's header (families.c)                   */
/* ------------------------------------------------------------------------ */

/*
 * Apply one transaction with the family its header names (intkey 1.0 or
 * ordo-rw 1.0), as a validator would: what the node applies and what
 * `ordo verify` replays. ORDO_E_LEDGER_INVALID_TXN for any other family or
 * version ("unknown transaction family 'F' version 'V'"), else what the
 * family's apply returns.
 */
int ordo_ledger_txn_apply(const ordo_ledger_txn *t,
                          const ordo_ledger_state *state);

/* ------------------------------------------------------------------------ */
/* REST client (rest.h; rest_client.c, rest.c)                              */
/* ------------------------------------------------------------------------ */

/* The Sawtooth REST client (ordo_ledger_client, ordo_ledger_submit, …):
 * declared and documented in its own header, part of this module's. */
#include "ledger/rest.h"

/* ------------------------------------------------------------------------ */
/* Workloads as Sawtooth batches (workload.c)                                */
/* ------------------------------------------------------------------------ */

/*
 * `ordo submit --family` turns each line of a workload file (queue.h,
 * ordo_workload_batch) into one signed Sawtooth batch, its keys mapped to
 * addresses in the family's namespace:
 *   ordo-rw  one transaction {"reads":[keys],"writes":[keys]};
 *   intkey   one transaction per written key: "set" 1 the first time this
 *            converter sees the key, "inc" 1 after; a batch that only reads
 *            sets a name of its own ("~read:<id>"). Keys longer than 20
 *            characters become the first 20 hex digits of their SHA-512.
 * Inputs are the read and written addresses, outputs the written ones. A
 * line with "outcome":"invalid" gets a payload its family refuses (ordo-rw:
 * not a list; intkey: a value out of range), so the ledger rejects it.
 */
#include "queue/queue.h"
/* Lock sp as every Sawtooth batch is queued: its reads and writes become
 * b's footprint over what sp declares (the strings in *fp, which the caller
 * clears once the enqueue has copied them) and its ledger id b's id (owned
 * by b). ORDO_E_NOMEM. */
int ordo_ledger_spec_lock(const ordo_ledger_batch *b, ordo_queue_batch_spec *sp,
                          ordo_ledger_footprint *fp);

/*
 * Lock sp by the Sawtooth batch in its payload, the one way every door of
 * the queue does it (the server's items, ordo_journal_enqueue_json,
 * `ordo submit`): sp->payload must be a BatchList of exactly one batch; it
 * is decoded into *bl (the caller frees it, and *fp, once the enqueue has
 * copied sp), checked as a validator would check it with
 * ORDO_LEDGER_PAYLOAD_VALIDATE (signatures, header digests), its inputs and
 * outputs must be addresses the journal keeps (1..4096 printable ASCII),
 * and then ordo_ledger_spec_lock. With ORDO_LEDGER_PAYLOAD_OPAQUE_OK a
 * payload that is no BatchList (or an empty one) is left opaque: ORDO_OK,
 * *bl NULL, sp unchanged (the plain durable queue of the C API). Errors
 * with the message set: ORDO_E_INVAL ("a BatchList of exactly one batch is
 * expected, not 3"; addresses), the decoder's and validator's
 * ORDO_E_LEDGER_* codes, ORDO_E_NOMEM.
 */
/* The same for a batch already decoded (or built here): its addresses
 * checked, then ordo_ledger_spec_lock. */
int ordo_ledger_spec_from_batch(const ordo_ledger_batch *b,
                                ordo_queue_batch_spec *sp,
                                ordo_ledger_footprint *fp);
#define ORDO_LEDGER_PAYLOAD_VALIDATE 1
#define ORDO_LEDGER_PAYLOAD_OPAQUE_OK 2
int ordo_ledger_spec_from_payload(ordo_queue_batch_spec *sp, int flags,
                                  ordo_ledger_batchlist **bl,
                                  ordo_ledger_footprint *fp);


typedef enum ordo_ledger_family {
  ORDO_LEDGER_FAMILY_RW = 0,
  ORDO_LEDGER_FAMILY_INTKEY,
  ORDO_LEDGER_FAMILY_MIXED /* one line in four intkey (by its id), the rest
                              ordo-rw: both families on one ledger */
} ordo_ledger_family;

/* "ordo-rw", "intkey" or "mixed". ORDO_E_INVAL otherwise. */
int ordo_ledger_family_parse(const char *name, ordo_ledger_family *out);

/* A converter: the family, the signer (borrowed: it must outlive the
 * converter), and for intkey the names set so far. One thread at a time. */
typedef struct ordo_ledger_conv ordo_ledger_conv;

int ordo_ledger_conv_new(ordo_ledger_family family,
                         const ordo_ledger_signer *signer,
                         ordo_ledger_conv **out);
void ordo_ledger_conv_free(ordo_ledger_conv *c);

/* One converted line: everything owned by the struct (free with _clear). */
typedef struct ordo_ledger_built {
  unsigned char *batchlist; /* a BatchList of the one batch: POST /batches */
  size_t batchlist_len;
  char batch_id[ORDO_LEDGER_ID_SIZE];
  char **reads, **writes; /* the addresses, for the queuer's locks */
  size_t nreads, nwrites;
} ordo_ledger_built;

/* Convert one line. ORDO_E_INVAL, ORDO_E_NOMEM, or a build error; the
 * message starts "line N (id): ". */
int ordo_ledger_conv_batch(ordo_ledger_conv *c, const ordo_workload_batch *wb,
                           ordo_ledger_built *out);
void ordo_ledger_built_clear(ordo_ledger_built *b);

/* The queue batch of a converted line: id, service and deps from wb, the
 * addresses, payload and ledger id (the batch id) from b (pointers into b,
 * valid while b is). */
void ordo_ledger_built_spec(const ordo_workload_batch *wb,
                            const ordo_ledger_built *b,
                            ordo_queue_batch_spec *sp);

/* ------------------------------------------------------------------------ */
/* The Sawtooth port (port.c)                                                */
/* ------------------------------------------------------------------------ */

/*
 * The queuer's ledger port (queue.h, ordo_ledger_port) over a Sawtooth REST
 * client: submit POSTs the items' payloads (one-batch BatchLists, as
 * ordo_ledger_conv_batch makes them) as one BatchList; statuses asks
 * Sawtooth's batch_statuses about the items and answers with typed
 * statuses (PENDING is SUBMITTED, the first invalid transaction's message
 * the reason); probe asks for the newest block. The Sawtooth id of an item
 * is its ledger id (or, for a batch journaled without one, the id in its
 * payload), read during the call: the port keeps no journal and no map,
 * so it holds nothing per batch however long it runs. An item the ledger
 * cannot know is UNKNOWN without being asked about. client is borrowed and
 * must outlive the port; ops it returned must have finished before it is
 * freed. Any thread.
 */
typedef struct ordo_ledger_client ordo_ledger_client;
typedef struct ordo_ledger_sawtooth_port ordo_ledger_sawtooth_port;

int ordo_ledger_sawtooth_port_new(ordo_ctx *ctx, ordo_ledger_client *client,
                                  ordo_ledger_sawtooth_port **out);
const ordo_ledger_port *
ordo_ledger_sawtooth_port_get(ordo_ledger_sawtooth_port *p);
/* The Sawtooth batch id of queue id (a batch of j) into out: ORDO_OK, or
 * ORDO_E_NOT_FOUND (no such batch, or none the ledger could know: a
 * finished batch journaled without a ledger id has no payload left to read
 * it from). Any thread. */
int ordo_ledger_sawtooth_id(ordo_journal *j, const char *id,
                            char out[ORDO_LEDGER_ID_SIZE]);
void ordo_ledger_sawtooth_port_free(ordo_ledger_sawtooth_port *p);

#endif /* ORDO_LEDGER_H */

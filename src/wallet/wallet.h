/*
 * wallet.h — the wallet module's internal API: key material, field
 * encryption, and the registry of open wallets that commands (records, DIDs,
 * keys) look wallets up in.
 *
 * Key hierarchy. A master key (32 bytes) comes from the passphrase through
 * Argon2id, or is given raw. It never touches disk: it only wraps the
 * wallet's own keys, generated at create, which encrypt the fields:
 *
 *   type, name          deterministic (keyed nonce), so lookups by equality work
 *   tag names, values   deterministic, so WQL equality works
 *   record value        random nonce, bound to the record's encrypted type and
 *                       name (AAD), so a value cannot be moved to another record
 *   '~' tags            plaintext (range and $like work on them)
 *
 * Deterministic encryption: nonce = HMAC-SHA-256(hmac_key, field ‖ plaintext)
 * truncated to 24 bytes, then XChaCha20-Poly1305 — equal plaintexts give equal
 * ciphertexts, nothing else leaks (a synthetic-IV construction).
 * Key material lives in sodium_malloc'd memory (guard pages, wiped on free).
 */
#ifndef ORDO_WALLET_H
#define ORDO_WALLET_H

#include "ordo.h"
#include "runtime/runtime.h"
#include "storage/storage.h"

#include <jansson.h>

#include <stddef.h>

#define ORDO__WALLET_KEY_BYTES 32
#define ORDO__WALLET_SALT_BYTES 16

/* Fields: domain separation for deterministic nonces and AAD. */
typedef enum ordo__wallet_field {
  ORDO__FIELD_TYPE = 1,
  ORDO__FIELD_NAME,
  ORDO__FIELD_TAG_NAME,
  ORDO__FIELD_TAG_VALUE,
  ORDO__FIELD_VALUE
} ordo__wallet_field;

typedef struct ordo__wallet_keys {
  unsigned char type_key[ORDO__WALLET_KEY_BYTES];
  unsigned char name_key[ORDO__WALLET_KEY_BYTES];
  unsigned char value_key[ORDO__WALLET_KEY_BYTES];
  unsigned char tag_name_key[ORDO__WALLET_KEY_BYTES];
  unsigned char tag_value_key[ORDO__WALLET_KEY_BYTES];
  unsigned char hmac_key[ORDO__WALLET_KEY_BYTES];
} ordo__wallet_keys;

typedef enum ordo__kdf_method {
  ORDO__KDF_ARGON2ID_MODERATE = 1,
  ORDO__KDF_ARGON2ID_INTERACTIVE,
  ORDO__KDF_RAW
} ordo__kdf_method;

typedef struct ordo__wallet_kdf {
  ordo__kdf_method method;
  unsigned char salt[ORDO__WALLET_SALT_BYTES];
  unsigned long long opslimit;
  size_t memlimit;
} ordo__wallet_kdf;

/* ---- keys.c --------------------------------------------------------------- */

/* Parse a key_derivation_method name; ORDO_E_INVAL for unknown names. Fills
 * method and its Argon2id limits; a fresh random salt. */
int ordo__wallet_kdf_new(const char *method_name, ordo__wallet_kdf *kdf);

/* Derive the master key. Argon2id takes seconds: call it on the heavy class.
 * RAW: key is 32 bytes as base58 or hex (ORDO_E_INVAL otherwise). mk must be
 * sodium_malloc'd or wiped by the caller. */
int ordo__wallet_kdf_derive(const ordo__wallet_kdf *kdf, const char *key,
                            unsigned char mk[ORDO__WALLET_KEY_BYTES]);

/* KDF parameters to and from JSON (salt base64). */
char *ordo__wallet_kdf_to_json(const ordo__wallet_kdf *kdf);
int ordo__wallet_kdf_from_json(const char *json, ordo__wallet_kdf *kdf);

/* Fresh random wallet keys, in sodium_malloc'd memory (free with
 * ordo__wallet_keys_free). NULL if out of memory. */
ordo__wallet_keys *ordo__wallet_keys_new(void);
void ordo__wallet_keys_free(ordo__wallet_keys *k);

/* Wrap keys under mk: nonce ‖ XChaCha20-Poly1305 (malloc'd *blob).
 * Unwrap: ORDO_E_WALLET_ACCESS when mk is wrong (or the blob altered). */
int ordo__wallet_keys_wrap(const ordo__wallet_keys *k, const unsigned char *mk,
                           unsigned char **blob, size_t *len);
int ordo__wallet_keys_unwrap(const unsigned char *blob, size_t len,
                             const unsigned char *mk, ordo__wallet_keys **out);

/* Deterministic encryption of a searchable field (type, name, tag name, tag
 * value) into out (malloc'd). */
int ordo__wallet_seal_det(const ordo__wallet_keys *k, ordo__wallet_field f,
                          const void *pt, size_t len, ordo_storage_buf *out);
/* Random-nonce encryption of a record value, bound to aad. */
int ordo__wallet_seal_value(const ordo__wallet_keys *k, const void *pt,
                            size_t len, const ordo_storage_buf *aad,
                            ordo_storage_buf *out);
/* Decrypt either kind; the result is NUL-terminated (len excludes it).
 * ORDO_E_STORAGE if the ciphertext does not open (corrupt database). */
int ordo__wallet_open_det(const ordo__wallet_keys *k, ordo__wallet_field f,
                          const ordo_storage_buf *ct, ordo_storage_buf *out);
int ordo__wallet_open_value(const ordo__wallet_keys *k,
                            const ordo_storage_buf *ct,
                            const ordo_storage_buf *aad, ordo_storage_buf *out);

/* ---- sealrec.c: whole records ---------------------------------------------- */

/* Encrypt a record given in plaintext into r (malloc'd buffers; clear with
 * ordo_storage_record_clear). type, name, value and tags may each be NULL
 * (left unset). tags: a JSON object of strings, or with names_only a JSON
 * array of tag names (values left unset). ORDO_E_INVAL with err filled for a
 * tag that is not a string. */
int ordo__wallet_seal_record(const ordo__wallet_keys *k, const char *type,
                             const char *name, const char *value, json_t *tags,
                             int names_only, ordo_storage_record *r, char *err,
                             size_t errlen);

/* A stored record decrypted to {"type"?,"name","value"?,"tags"?} by flags;
 * NULL if a field does not open (corrupt database) or out of memory. */
#define ORDO__OPEN_TYPE 1
#define ORDO__OPEN_VALUE 2
#define ORDO__OPEN_TAGS 4
json_t *ordo__wallet_open_record(const ordo__wallet_keys *k,
                                 const ordo_storage_record *r, int flags);

/* Encrypt the leaves of a parsed WQL query that name encrypted tags, in
 * place, so the storage compares ciphertexts. Parse and seal in one go:
 * ORDO_E_WQL with *err (malloc'd) naming the problem. */
int ordo__wallet_seal_query(const ordo__wallet_keys *k, ordo_storage_query *q);
int ordo__wallet_parse_query(const ordo__wallet_keys *k, const char *wql,
                             ordo_storage_query **out, char **err);

/* ---- wallet.c: creating wallets -------------------------------------------- */

/* What config_json and credentials_json say (see ordo_wallet_create). */
typedef struct ordo__wallet_spec {
  char id[65];
  char *root;    /* the wallets directory; for PostgreSQL what messages
                    show of the database (user@host:port/db) */
  char *dir;     /* <root>/<id>; NULL on PostgreSQL */
  char *db_path; /* <root>/<id>/wallet.db, or <url>#wallet/<id> */
  char *url;     /* the PostgreSQL database's URL, or NULL */
  char *key;     /* passphrase or raw key; wiped by spec_clear */
  char *method;  /* key_derivation_method, or NULL for the default */
  const ordo_storage_backend *backend;
  int open_flags; /* ORDO_STORAGE_NO_GROUP_COMMIT when "group_commit":false */
} ordo__wallet_spec;

/* Parse (creds may be NULL: no credentials). Errors carry a message on op. */
int ordo__wallet_spec_parse(ordo_op *op, ordo__wallet_spec *spec,
                            const char *config, const char *creds, int need_id);
void ordo__wallet_spec_clear(ordo__wallet_spec *spec);

/* A new wallet's keys under master key mk, and the metadata JSON (KDF
 * parameters and wrapped keys) to store with META_SET. */
int ordo__wallet_new_keys(const ordo__wallet_kdf *kdf, const unsigned char *mk,
                          ordo__wallet_keys **keys, char **meta);
/* Create the database file (ORDO_E_WALLET_EXISTS if there is one). Blocking:
 * a storage-class stage. */
int ordo__wallet_create_db(ordo_op *op, ordo_ctx *ctx,
                           const ordo__wallet_spec *spec, ordo_storage **st);
/* Submit req for the running stage of op: it returns what this returns
 * (ORDO__STAGE_ASYNC, or an error with a message on op); the stage added
 * next runs when req completes and reads its status with
 * ordo__wallet_req_status (which copies the request's message to op). */
int ordo__wallet_req_submit(ordo_op *op, ordo_storage *st, ordo_storage_req *req);
int ordo__wallet_req_status(ordo_op *op, ordo_storage_req *req);

/* A command's state of size bytes, zeroed but for its first member, which
 * must be an ordo_ctx * and is set to ctx; and its op (*op; the state is
 * freed with state_free when the op ends). NULL (with *op NULL) when ctx is
 * NULL or out of memory. */
void *ordo__wallet_cmd_new(ordo_ctx *ctx, size_t size, void (*state_free)(void *),
                           ordo_op **op);

/* Close a database in the background (a failed command's); context
 * shutdown waits for it. */
void ordo__wallet_close_db_async(ordo_ctx *ctx, ordo_storage *st);
/* Fill req as the META_SET of meta (borrowed). */
void ordo__wallet_meta_req(ordo_storage_req *req, const char *meta);

/* ---- wallet.c: the registry ------------------------------------------------ */

typedef struct ordo__wallet ordo__wallet;

/* The open wallet with this id, retained for the caller (release with
 * ordo__wallet_release); ORDO_E_WALLET_NOT_OPEN if none. */
int ordo__wallet_get(ordo_ctx *ctx, const char *id, ordo__wallet **out);
void ordo__wallet_release(ordo__wallet *w);

/* What a command needs of an open wallet. Valid while retained. */
ordo_storage *ordo__wallet_storage(ordo__wallet *w);
const ordo__wallet_keys *ordo__wallet_keys_of(ordo__wallet *w);
const char *ordo__wallet_id(ordo__wallet *w);

/* ---- record.c: records for other modules ------------------------------------ */

/*
 * Modules that keep their data as wallet records (keys.c: keys, DIDs,
 * credential definitions) build their storage requests with these, so the
 * type, name, value and tags are encrypted exactly as ordo_record_* does.
 * Run them on the cheap class, from a stage of op, with w retained.
 *
 * Each fill function first clears req (which must be zeroed or have been
 * filled before), then fills it for the record of `type` named `name`;
 * value (NULL: none) is stored as its compact JSON text, tags (NULL: none)
 * is a JSON object as in ordo_record_add. They submit nothing: pass req to
 * ordo__wallet_rec_submit, or several to ordo__wallet_rec_submit_batch.
 * They return ORDO_OK, ORDO_E_NOMEM, or an error with a message on op.
 */
int ordo__wallet_rec_add(ordo_op *op, ordo__wallet *w, ordo_storage_req *req,
                         const char *type, const char *name, json_t *value,
                         json_t *tags);
int ordo__wallet_rec_get(ordo_op *op, ordo__wallet *w, ordo_storage_req *req,
                         const char *type, const char *name);
int ordo__wallet_rec_update(ordo_op *op, ordo__wallet *w, ordo_storage_req *req,
                            const char *type, const char *name, json_t *value);
int ordo__wallet_rec_delete(ordo_op *op, ordo__wallet *w, ordo_storage_req *req,
                            const char *type, const char *name);
/* A SCAN of the records of type that match wql (NULL: all of them), at most
 * limit (0: no limit). The parsed query goes to *query: the caller frees it
 * (ordo_storage_query_free) once req has completed; req borrows it. */
int ordo__wallet_rec_search(ordo_op *op, ordo__wallet *w, ordo_storage_req *req,
                            const char *type, const char *wql,
                            unsigned long long limit, ordo_storage_query **query);

/* Submit req to w's database; the stage next (cheap class) runs when it
 * completes and reads its status with ordo__wallet_req_status. Returns what
 * the running stage returns. The batch form makes req a BATCH of the n
 * filled requests sub (borrowed until then) and submits it. */
int ordo__wallet_rec_submit(ordo_op *op, ordo__wallet *w, ordo_storage_req *req,
                            ordo_stage_fn next);
int ordo__wallet_rec_submit_batch(ordo_op *op, ordo__wallet *w,
                                  ordo_storage_req *req, ordo_storage_req *sub,
                                  size_t n, ordo_stage_fn next);

/* The value of a record read back (GET's result, a SCAN's results[i]) as
 * parsed JSON (a new reference), its plaintext wiped; with name != NULL,
 * *name is a malloc'd copy of the record's name (NULL when out of memory).
 * NULL (and *name NULL) when it does not decrypt or is not JSON. */
json_t *ordo__wallet_rec_value(ordo__wallet *w, const ordo_storage_record *r,
                               char **name);

/* Wipe and free what req holds (its sealed record and its output; not a
 * search's query, nor a BATCH's sub-requests) and zero it for reuse. */
void ordo__wallet_rec_clear(ordo_storage_req *req);

#endif /* ORDO_WALLET_H */

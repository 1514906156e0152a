/*
 * keys.c — the key commands' state and plumbing (keys_int.h), and the
 * commands on DIDs and ed25519 keys: DIDs (create, get, list, metadata,
 * rotation), sign, verify, message pack/unpack. secp256k1 keys and CL
 * credential definitions have files of their own.
 *
 * Secrets are decoded into stack buffers that are wiped before the stage
 * returns.
 */
#include "keys/keys_int.h"
#include "base/base.h"

#include <jansson.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

static void key_cmd_free(void *p) {
  key_cmd *c = p;
  ordo__wallet_rec_clear(&c->req);
  for (size_t i = 0; i < sizeof(c->batch) / sizeof(c->batch[0]); i++)
    ordo__wallet_rec_clear(&c->batch[i]); /* zeroed if never filled */
  ordo__wallet_release(c->w);
  free(c->wallet_id);
  free(c->name);
  ordo__free_secret(c->seed);
  free(c->metadata);
  json_decref(c->args);
  json_decref(c->record);
  ordo__free_wiped(c->msg, c->msg_len);
  ordo__free_secret(c->private_json);
  ORDO__FREE_ALL(c->sig, c->envelope, c->public_json, c->proof_json,
                 c->cred_def_id);
  ordo_storage_query_free(c->query);
  free(c);
}

/* ---- plumbing ------------------------------------------------------------- */

int ordo__keys_wallet(ordo_op *op, key_cmd *c) {
  if (c->w != NULL)
    return ORDO_OK;
  int rc = ordo__wallet_get(c->ctx, c->wallet_id, &c->w);
  if (rc != ORDO_OK)
    ordo_op_set_message(op, "wallet '%s' is not open", c->wallet_id);
  return rc;
}

/* Wipe the string member key of o (a secret in text), if there is one. */
static void wipe_member(json_t *o, const char *key) {
  json_t *v = json_object_get(o, key);
  if (json_is_string(v))
    sodium_memzero((void *)json_string_value(v), json_string_length(v));
}

/* Fill req as the ADD of (type, name) with value and tags, whose references
 * it takes; value's member secret is wiped once sealed. built: whether
 * value and the tags wanted were made (ORDO_E_NOMEM if not). */
int ordo__keys_add_secret(ordo_op *op, key_cmd *c, ordo_storage_req *req, const char *type,
                          const char *name, json_t *value, const char *secret,
                          json_t *tags, int built) {
  int rc = built ? ordo__wallet_rec_add(op, c->w, req, type, name, value, tags)
                 : ORDO_E_NOMEM;
  wipe_member(value, secret);
  json_decref(value);
  json_decref(tags);
  return rc;
}

/* Submit c->req; next runs when it completes. */
int ordo__keys_submit(ordo_op *op, key_cmd *c, ordo_stage_fn next) {
  return ordo__wallet_rec_submit(op, c->w, &c->req, next);
}

/* In the stage after ordo__keys_get: the record's value as JSON in
 * c->record, then what the command does with it. */
static int stage_got(ordo_op *op, void *st) {
  key_cmd *c = st;
  if (c->req.status == ORDO_E_RECORD_NOT_FOUND) {
    ordo_op_set_message(op, "%s '%s' not found in wallet '%s'", c->get_what, c->name,
                        c->wallet_id);
    return ORDO_E_KEY_NOT_FOUND;
  }
  int rc = ordo__wallet_req_status(op, &c->req);
  if (rc != ORDO_OK)
    return rc;
  json_decref(c->record);
  c->record = ordo__wallet_rec_value(c->w, &c->req.result, NULL);
  if (!json_is_object(c->record)) {
    ordo_op_set_message(op, "%s '%s': stored record is corrupt", c->get_what, c->name);
    return ORDO_E_STORAGE;
  }
  return c->got(op, c);
}

int ordo__keys_get(ordo_op *op, key_cmd *c, const char *type, const char *what,
                   ordo__keys_got_fn got) {
  c->get_what = what;
  c->got = got;
  int rc = ordo__keys_wallet(op, c);
  if (rc == ORDO_OK)
    rc = ordo__wallet_rec_get(op, c->w, &c->req, type, c->name);
  return rc != ORDO_OK ? rc : ordo__keys_submit(op, c, stage_got);
}

/* The first stage of the commands that start by reading a record. */
static int stage_get(ordo_op *op, void *st) {
  key_cmd *c = st;
  return ordo__keys_get(op, c, c->get_type, c->get_what, c->got);
}

/* The ed25519 secret of the "ordo:key" record in c->record. */
static int record_ed25519_sk(ordo_op *op, key_cmd *c,
                             unsigned char sk[ORDO__ED25519_SECRET_BYTES]) {
  const char *s = json_string_value(json_object_get(c->record, "sk"));
  size_t n = ORDO__ED25519_SECRET_BYTES;
  if (s == NULL || ordo__crypto_base58_decode(s, sk, &n) != ORDO_OK ||
      n != ORDO__ED25519_SECRET_BYTES) {
    sodium_memzero(sk, ORDO__ED25519_SECRET_BYTES);
    ordo_op_set_message(op, "key '%s': stored secret is corrupt", c->name);
    return ORDO_E_STORAGE;
  }
  return ORDO_OK;
}

/* A key record for a new ed25519 key pair, as sub-request i of the batch. */
static int add_key_record(ordo_op *op, key_cmd *c, size_t i,
                          const unsigned char sk[ORDO__ED25519_SECRET_BYTES],
                          const char *verkey) {
  char sk58[ORDO__BASE58_ENCODED_SIZE(ORDO__ED25519_SECRET_BYTES)];
  int rc = ordo__crypto_base58_encode(sk, ORDO__ED25519_SECRET_BYTES, sk58, sizeof(sk58));
  if (rc != ORDO_OK)
    return rc;
  json_t *value = json_pack("{s:s}", "sk", sk58);
  json_t *tags = json_pack("{s:s}", "verkey", verkey);
  sodium_memzero(sk58, sizeof(sk58));
  return ordo__keys_add_secret(op, c, &c->batch[i], TYPE_KEY, verkey, value, "sk", tags,
                               value != NULL && tags != NULL);
}

/* A new ed25519 key pair from c->seed (random without one): its record as
 * batch[0], its verkey in c->new_verkey, the DID it makes in did. */
static int new_key(ordo_op *op, key_cmd *c, char did[ORDO__DID_SIZE]) {
  unsigned char sk[ORDO__ED25519_SECRET_BYTES];
  int rc = ordo__crypto_did_create(c->seed, sk, did, c->new_verkey);
  if (rc != ORDO_OK)
    ordo_op_set_message(op, "seed must be 32 characters, 64 hex characters or "
                            "base64 of 32 bytes");
  else
    rc = add_key_record(op, c, 0, sk, c->new_verkey);
  sodium_memzero(sk, sizeof(sk));
  return rc;
}

/* Submit batch[0] (the new key) and batch[1] (rc: how filling it went) as
 * one BATCH, then next. */
static int submit_pair(ordo_op *op, key_cmd *c, int rc, ordo_stage_fn next) {
  c->nbatch = 2;
  if (rc != ORDO_OK)
    return rc;
  return ordo__wallet_rec_submit_batch(op, c->w, &c->req, c->batch, c->nbatch, next);
}

/* The first failing sub-request's status, as the op's. */
static int batch_status(ordo_op *op, key_cmd *c, const char *dup_what) {
  for (size_t i = 0; i < c->nbatch; i++) {
    if (c->batch[i].status == ORDO_E_RECORD_DUPLICATE) {
      ordo_op_set_message(op, "%s already exists in wallet '%s'", dup_what, c->wallet_id);
      return ORDO_E_RECORD_DUPLICATE;
    }
  }
  return ordo__wallet_req_status(op, &c->req);
}

/* ---- DIDs ---------------------------------------------------------------------- */

static json_t *did_value(const char *verkey, const char *metadata,
                         const char *next_verkey) {
  json_t *o = json_pack("{s:s}", "verkey", verkey);
  if (o == NULL)
    return NULL;
  json_object_set_new(o, "metadata", metadata ? json_string(metadata) : json_null());
  if (next_verkey != NULL)
    json_object_set_new(o, "next_verkey", json_string(next_verkey));
  return o;
}

static int stage_did_created(ordo_op *op, void *st) {
  key_cmd *c = st;
  int rc = batch_status(op, c, "the DID");
  if (rc != ORDO_OK)
    return rc;
  return ordo__op_set_result_json(op, json_pack("{s:s, s:s}", "did", c->did, "verkey", c->new_verkey));
}

static int stage_did_create(ordo_op *op, void *st) {
  key_cmd *c = st;
  int rc = ordo__keys_wallet(op, c);
  if (rc != ORDO_OK || (rc = new_key(op, c, c->did)) != ORDO_OK)
    return rc;
  json_t *v = did_value(c->new_verkey, c->has_metadata ? c->metadata : NULL, NULL);
  rc = v != NULL ? ordo__wallet_rec_add(op, c->w, &c->batch[1], TYPE_DID, c->did, v, NULL)
                 : ORDO_E_NOMEM;
  json_decref(v);
  return submit_pair(op, c, rc, stage_did_created);
}

static int did_got(ordo_op *op, key_cmd *c) {
  json_t *o = json_deep_copy(c->record);
  if (o == NULL)
    return ORDO_E_NOMEM;
  json_object_set_new(o, "did", json_string(c->name));
  return ordo__op_set_result_json(op, o);
}

static int stage_did_listed(ordo_op *op, void *st) {
  key_cmd *c = st;
  int rc = ordo__wallet_req_status(op, &c->req);
  if (rc != ORDO_OK)
    return rc;
  json_t *arr = json_array();
  for (size_t i = 0; arr != NULL && i < c->req.nresults; i++) {
    char *did = NULL;
    json_t *v = ordo__wallet_rec_value(c->w, &c->req.results[i], &did);
    if (v == NULL) {
      json_decref(arr);
      ordo_op_set_message(op, "a DID record is corrupt");
      return ORDO_E_STORAGE;
    }
    json_object_set_new(v, "did", did != NULL ? json_string(did) : NULL);
    free(did);
    json_array_append_new(arr, v);
  }
  return ordo__op_set_result_json(op, json_pack("{s:o}", "dids", arr));
}

static int stage_did_list(ordo_op *op, void *st) {
  key_cmd *c = st;
  int rc = ordo__keys_wallet(op, c);
  if (rc != ORDO_OK)
    return rc;
  if ((rc = ordo__wallet_rec_search(op, c->w, &c->req, TYPE_DID, NULL, 0, &c->query)) != ORDO_OK)
    return rc;
  return ordo__keys_submit(op, c, stage_did_listed);
}

static int stage_updated(ordo_op *op, void *st) {
  key_cmd *c = st;
  int rc = ordo__wallet_req_status(op, &c->req);
  if (rc != ORDO_OK)
    return rc;
  const char *vk = json_string_value(json_object_get(c->record, "verkey"));
  return ordo__op_set_result_json(op, vk != NULL ? json_pack("{s:s}", "verkey", vk) : json_object());
}

/* Write c->record back as the DID's value. */
static int update_did(ordo_op *op, key_cmd *c) {
  int rc = ordo__wallet_rec_update(op, c->w, &c->req, TYPE_DID, c->name, c->record);
  return rc != ORDO_OK ? rc : ordo__keys_submit(op, c, stage_updated);
}

static int metadata_got(ordo_op *op, key_cmd *c) {
  json_object_set_new(c->record, "metadata",
                      c->metadata != NULL ? json_string(c->metadata) : json_null());
  return update_did(op, c);
}

static int stage_rotate_started(ordo_op *op, void *st) {
  key_cmd *c = st;
  int rc = batch_status(op, c, "the new key");
  if (rc != ORDO_OK)
    return rc;
  return ordo__op_set_result_json(op, json_pack("{s:s}", "verkey", c->new_verkey));
}

static int rotate_start_got(ordo_op *op, key_cmd *c) {
  char did[ORDO__DID_SIZE];
  int rc = new_key(op, c, did);
  if (rc != ORDO_OK)
    return rc;
  json_object_set_new(c->record, "next_verkey", json_string(c->new_verkey));
  rc = ordo__wallet_rec_update(op, c->w, &c->batch[1], TYPE_DID, c->name, c->record);
  return submit_pair(op, c, rc, stage_rotate_started);
}

static int rotate_apply_got(ordo_op *op, key_cmd *c) {
  json_t *next = json_object_get(c->record, "next_verkey");
  if (!json_is_string(next)) {
    ordo_op_set_message(op, "DID '%s' has no key rotation started", c->name);
    return ORDO_E_STATE;
  }
  json_object_set(c->record, "verkey", next);
  json_object_del(c->record, "next_verkey");
  return update_did(op, c);
}

/* ---- sign / verify ------------------------------------------------------------- */

static int sign_got(ordo_op *op, key_cmd *c) {
  unsigned char sk[ORDO__ED25519_SECRET_BYTES], sig[ORDO__ED25519_SIG_BYTES];
  int rc = record_ed25519_sk(op, c, sk);
  if (rc != ORDO_OK)
    return rc;
  rc = ordo__crypto_ed25519_sign(sk, c->msg, c->msg_len, sig);
  sodium_memzero(sk, sizeof(sk));
  if (rc != ORDO_OK)
    return rc;
  char *b64 = NULL;
  if ((rc = ordo__crypto_b64url_encode(sig, sizeof(sig), &b64)) != ORDO_OK)
    return rc;
  rc = ordo_op_set_result_bytes(op, sig, sizeof(sig));
  if (rc == ORDO_OK)
    rc = ordo__op_set_result_json(op, json_pack("{s:s}", "signature", b64));
  free(b64);
  return rc;
}

static int stage_verify(ordo_op *op, void *st) {
  key_cmd *c = st;
  unsigned char pk[ORDO__ED25519_PUBLIC_BYTES];
  int rc = ordo__crypto_verkey_decode(c->name, pk);
  if (rc != ORDO_OK) {
    ordo_op_set_message(op, "'%s' is not a verkey (base58 of 32 bytes)", c->name);
    return rc;
  }
  int valid = 0;
  if (c->sig_len == ORDO__ED25519_SIG_BYTES &&
      (rc = ordo__crypto_ed25519_verify(pk, c->msg, c->msg_len, c->sig, &valid)) != ORDO_OK)
    return rc;
  return ordo__op_set_result_json(op, json_pack("{s:b}", "valid", valid));
}

/* ---- pack / unpack --------------------------------------------------------------- */

static int do_pack(ordo_op *op, key_cmd *c, const unsigned char *sender_sk) {
  size_t n = json_array_size(c->args);
  const char **kids = calloc(n ? n : 1, sizeof(*kids));
  if (kids == NULL)
    return ORDO_E_NOMEM;
  for (size_t i = 0; i < n; i++)
    kids[i] = json_string_value(json_array_get(c->args, i));
  char *env = NULL;
  int rc = ordo__crypto_pack(c->msg, c->msg_len, kids, n, sender_sk, &env);
  free(kids);
  if (rc != ORDO_OK) {
    ordo_op_set_message(op, "cannot pack: %s (recipients must be verkeys)",
                        ordo_strerror(rc));
    return rc;
  }
  rc = ordo_op_set_result(op, env);
  free(env);
  return rc;
}

static int pack_got(ordo_op *op, key_cmd *c) {
  unsigned char sk[ORDO__ED25519_SECRET_BYTES];
  int rc = record_ed25519_sk(op, c, sk);
  if (rc != ORDO_OK)
    return rc;
  rc = do_pack(op, c, sk);
  sodium_memzero(sk, sizeof(sk));
  return rc;
}

static int stage_pack(ordo_op *op, void *st) {
  key_cmd *c = st;
  if (c->name == NULL)
    return do_pack(op, c, NULL); /* anoncrypt needs no key of ours */
  return ordo__keys_get(op, c, TYPE_KEY, "sender key", pack_got);
}

static int stage_unpack_got(ordo_op *op, void *st) {
  key_cmd *c = st;
  int rc = ordo__wallet_req_status(op, &c->req);
  if (rc != ORDO_OK)
    return rc;
  if (c->req.nresults == 0) {
    ordo_op_set_message(op, "no recipient key of this message is in wallet '%s'",
                        c->wallet_id);
    return ORDO_E_UNPACK;
  }
  json_decref(c->record);
  free(c->name);
  c->record = ordo__wallet_rec_value(c->w, &c->req.results[0], &c->name);
  if (c->name == NULL || c->record == NULL) {
    ordo_op_set_message(op, "a key record is corrupt");
    return ORDO_E_STORAGE;
  }
  unsigned char sk[ORDO__ED25519_SECRET_BYTES];
  if ((rc = record_ed25519_sk(op, c, sk)) != ORDO_OK)
    return rc;
  unsigned char *msg = NULL;
  size_t len = 0;
  char *sender = NULL;
  rc = ordo__crypto_unpack(c->envelope, c->name, sk, &msg, &len, &sender);
  sodium_memzero(sk, sizeof(sk));
  if (rc != ORDO_OK) {
    ordo_op_set_message(op, "message does not unpack with key %s: tampered, or "
                            "malformed", c->name);
    return rc;
  }
  rc = ordo_op_set_result_bytes(op, msg, len);
  json_t *o = json_pack("{s:s%, s:s, s:o}", "message", (const char *)msg, len,
                        "recipient_verkey", c->name, "sender_verkey",
                        sender ? json_string(sender) : json_null());
  if (o == NULL) /* not UTF-8: the bytes result still has it */
    o = json_pack("{s:n, s:s, s:o}", "message", "recipient_verkey", c->name,
                  "sender_verkey", sender ? json_string(sender) : json_null());
  ordo__free_wiped(msg, len);
  free(sender);
  return rc != ORDO_OK ? rc : ordo__op_set_result_json(op, o);
}

static int stage_unpack(ordo_op *op, void *st) {
  key_cmd *c = st;
  char **kids = NULL;
  size_t n = 0;
  int rc = ordo__crypto_unpack_kids(c->envelope, &kids, &n);
  if (rc != ORDO_OK) {
    ordo_op_set_message(op, "not a packed message envelope");
    return rc;
  }
  /* Which of the recipients' keys do we hold? One search: verkey $in kids. */
  json_t *in = json_array();
  for (size_t i = 0; in != NULL && i < n; i++)
    json_array_append_new(in, json_string(kids[i]));
  ordo__crypto_free_kids(kids, n);
  json_t *q = json_pack("{s:{s:o}}", "verkey", "$in", in);
  char *wql = q != NULL ? json_dumps(q, JSON_COMPACT) : NULL;
  json_decref(q);
  if (wql == NULL)
    return ORDO_E_NOMEM;
  if ((rc = ordo__keys_wallet(op, c)) == ORDO_OK)
    rc = ordo__wallet_rec_search(op, c->w, &c->req, TYPE_KEY, wql, 1, &c->query);
  free(wql);
  return rc != ORDO_OK ? rc : ordo__keys_submit(op, c, stage_unpack_got);
}

/* ---- building commands ------------------------------------------------------------ */

static int need(ordo_op *op, const char *what, const char *s, char **out) {
  if (s == NULL) {
    ordo_op_set_message(op, "%s is required", what);
    return ORDO_E_INVAL;
  }
  return (*out = strdup(s)) != NULL ? ORDO_OK : ORDO_E_NOMEM;
}

static int copy_bytes(const void *p, size_t len, unsigned char **out) {
  *out = malloc(len ? len : 1);
  if (*out == NULL)
    return ORDO_E_NOMEM;
  if (len > 0)
    memcpy(*out, p, len);
  return ORDO_OK;
}

/* A command on wallet_id (NULL: none) and, when what is given, about name,
 * which must be given then (what names it in the message); its op in *op.
 * *rc is ORDO_OK, or an error for key_cmd_start to reject the op with (the
 * state is then not to be used). */
key_cmd *ordo__keys_cmd_new(ordo_ctx *ctx, const char *wallet_id, const char *what,
                            const char *name, ordo_op **op, int *rc) {
  key_cmd *c = ordo__wallet_cmd_new(ctx, sizeof(*c), key_cmd_free, op);
  *rc = c != NULL ? ORDO_OK : ORDO_E_NOMEM;
  if (c == NULL)
    return NULL;
  if (wallet_id != NULL && (c->wallet_id = strdup(wallet_id)) == NULL)
    *rc = ORDO_E_NOMEM;
  if (*rc == ORDO_OK && what != NULL)
    *rc = need(*op, what, name, &c->name);
  return c;
}

ordo_op *ordo__keys_cmd_start(ordo_op *op, int rc, ordo_stage_fn first) {
  if (op == NULL)
    return NULL;
  if (rc == ORDO_OK)
    rc = ordo__op_add_stage(op, ORDO_CLASS_CHEAP, first);
  return rc != ORDO_OK ? ordo__op_reject(op, rc) : ordo__op_start(op);
}

ordo_op *ordo__keys_cmd_start_get(ordo_op *op, key_cmd *c, int rc, const char *type,
                                  const char *what, ordo__keys_got_fn got) {
  if (rc == ORDO_OK) {
    c->get_type = type;
    c->get_what = what;
    c->got = got;
  }
  return ordo__keys_cmd_start(op, rc, stage_get);
}

ordo_op *ordo__keys_cmd_simple(ordo_ctx *ctx, const char *wallet_id,
                               ordo_stage_fn first) {
  ordo_op *op;
  int rc;
  ordo__keys_cmd_new(ctx, wallet_id, NULL, NULL, &op, &rc);
  return ordo__keys_cmd_start(op, rc, first);
}

/* A command on a DID of the wallet that starts by reading it. */
static ordo_op *did_cmd(ordo_ctx *ctx, const char *wallet_id, const char *did,
                        ordo__keys_got_fn got) {
  ordo_op *op;
  int rc;
  key_cmd *c = ordo__keys_cmd_new(ctx, wallet_id, "did", did, &op, &rc);
  return ordo__keys_cmd_start_get(op, c, rc, TYPE_DID, "DID", got);
}

/* options_json of create/rotate: {"seed":…, "metadata":…}. */
static int parse_did_options(ordo_op *op, key_cmd *c, const char *options) {
  if (options == NULL)
    return ORDO_OK;
  json_error_t jerr;
  json_t *o = json_loads(options, 0, &jerr);
  const char *seed = NULL, *metadata = NULL;
  int rc = ORDO_OK;
  if (o == NULL) {
    /* Never jerr.text: it would quote the seed. */
    ordo_op_set_message(op, "options: not JSON (line %d, column %d)",
                        jerr.line, jerr.column);
    return ORDO_E_JSON;
  }
  if (json_unpack(o, "{s?s, s?s !}", "seed", &seed, "metadata", &metadata) != 0) {
    ordo_op_set_message(op, "options: only \"seed\" and \"metadata\" (strings)");
    rc = ORDO_E_INVAL;
  } else if ((seed != NULL && (c->seed = strdup(seed)) == NULL) ||
             (metadata != NULL && (c->metadata = strdup(metadata)) == NULL)) {
    rc = ORDO_E_NOMEM;
  }
  c->has_metadata = metadata != NULL;
  wipe_member(o, "seed");
  json_decref(o);
  return rc;
}

ordo_op *ordo_did_create(ordo_ctx *ctx, const char *wallet_id, const char *options_json) {
  ordo_op *op;
  int rc;
  key_cmd *c = ordo__keys_cmd_new(ctx, wallet_id, NULL, NULL, &op, &rc);
  if (rc == ORDO_OK)
    rc = parse_did_options(op, c, options_json);
  return ordo__keys_cmd_start(op, rc, stage_did_create);
}

ordo_op *ordo_did_get(ordo_ctx *ctx, const char *wallet_id, const char *did) {
  return did_cmd(ctx, wallet_id, did, did_got);
}

ordo_op *ordo_did_list(ordo_ctx *ctx, const char *wallet_id) {
  return ordo__keys_cmd_simple(ctx, wallet_id, stage_did_list);
}

ordo_op *ordo_did_set_metadata(ordo_ctx *ctx, const char *wallet_id, const char *did,
                               const char *metadata) {
  ordo_op *op;
  int rc;
  key_cmd *c = ordo__keys_cmd_new(ctx, wallet_id, "did", did, &op, &rc);
  if (rc == ORDO_OK && metadata != NULL && (c->metadata = strdup(metadata)) == NULL)
    rc = ORDO_E_NOMEM;
  return ordo__keys_cmd_start_get(op, c, rc, TYPE_DID, "DID", metadata_got);
}

ordo_op *ordo_did_rotate_start(ordo_ctx *ctx, const char *wallet_id, const char *did,
                               const char *options_json) {
  ordo_op *op;
  int rc;
  key_cmd *c = ordo__keys_cmd_new(ctx, wallet_id, "did", did, &op, &rc);
  if (rc == ORDO_OK)
    rc = parse_did_options(op, c, options_json);
  return ordo__keys_cmd_start_get(op, c, rc, TYPE_DID, "DID", rotate_start_got);
}

ordo_op *ordo_did_rotate_apply(ordo_ctx *ctx, const char *wallet_id, const char *did) {
  return did_cmd(ctx, wallet_id, did, rotate_apply_got);
}

ordo_op *ordo_sign(ordo_ctx *ctx, const char *wallet_id, const char *verkey,
                   const void *msg, size_t len) {
  ordo_op *op;
  int rc;
  key_cmd *c = ordo__keys_cmd_new(ctx, wallet_id, "verkey", verkey, &op, &rc);
  if (rc == ORDO_OK && msg == NULL && len > 0)
    rc = ORDO_E_INVAL;
  if (rc == ORDO_OK && (rc = copy_bytes(msg, len, &c->msg)) == ORDO_OK)
    c->msg_len = len;
  return ordo__keys_cmd_start_get(op, c, rc, TYPE_KEY, "key", sign_got);
}

ordo_op *ordo_verify(ordo_ctx *ctx, const char *verkey, const void *msg, size_t len,
                     const void *sig, size_t sig_len) {
  ordo_op *op;
  int rc;
  key_cmd *c = ordo__keys_cmd_new(ctx, NULL, "verkey", verkey, &op, &rc);
  if (rc == ORDO_OK && ((msg == NULL && len > 0) || sig == NULL))
    rc = ORDO_E_INVAL;
  if (rc == ORDO_OK && (rc = copy_bytes(msg, len, &c->msg)) == ORDO_OK)
    c->msg_len = len;
  if (rc == ORDO_OK && (rc = copy_bytes(sig, sig_len, &c->sig)) == ORDO_OK)
    c->sig_len = sig_len;
  return ordo__keys_cmd_start(op, rc, stage_verify);
}

ordo_op *ordo_pack(ordo_ctx *ctx, const char *wallet_id, const void *msg, size_t len,
                   const char *recipients_json, const char *sender_verkey) {
  ordo_op *op;
  int rc;
  key_cmd *c = ordo__keys_cmd_new(ctx, wallet_id, NULL, NULL, &op, &rc);
  json_error_t jerr;
  if (rc == ORDO_OK && (msg == NULL && len > 0))
    rc = ORDO_E_INVAL;
  if (rc == ORDO_OK && (rc = copy_bytes(msg, len, &c->msg)) == ORDO_OK)
    c->msg_len = len;
  if (rc == ORDO_OK) {
    c->args = recipients_json ? json_loads(recipients_json, 0, &jerr) : NULL;
    if (!json_is_array(c->args) || json_array_size(c->args) == 0) {
      ordo_op_set_message(op, "recipients must be a non-empty JSON array of verkeys");
      rc = c->args == NULL && recipients_json != NULL ? ORDO_E_JSON : ORDO_E_INVAL;
    }
    for (size_t i = 0; rc == ORDO_OK && i < json_array_size(c->args); i++)
      if (!json_is_string(json_array_get(c->args, i))) {
        ordo_op_set_message(op, "recipients must be verkey strings");
        rc = ORDO_E_INVAL;
      }
  }
  if (rc == ORDO_OK && sender_verkey != NULL && (c->name = strdup(sender_verkey)) == NULL)
    rc = ORDO_E_NOMEM;
  return ordo__keys_cmd_start(op, rc, stage_pack);
}

ordo_op *ordo_unpack(ordo_ctx *ctx, const char *wallet_id, const char *envelope_json) {
  ordo_op *op;
  int rc;
  key_cmd *c = ordo__keys_cmd_new(ctx, wallet_id, NULL, NULL, &op, &rc);
  if (rc == ORDO_OK)
    rc = need(op, "envelope", envelope_json, &c->envelope);
  return ordo__keys_cmd_start(op, rc, stage_unpack);
}

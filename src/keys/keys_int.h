/*
 * keys_int.h — what the key commands' files share (internal to src/keys):
 *
 *   keys.c       the command state and the plumbing below; DIDs, ed25519
 *                sign/verify, message pack/unpack;
 *   secp256k1.c  secp256k1 keys: create, sign, verify;
 *   cred_def.c   CL credential definitions.
 *
 * Keys are wallet records, so their secrets are encrypted at rest like any
 * value (wallet.h's record API):
 *   "ordo:key"        name verkey,   value {"sk":"<base58 64 bytes>"},
 *                     tag verkey (so unpack can find a key by WQL $in)
 *   "ordo:did"        name DID,      value {"verkey","metadata","next_verkey"}
 *   "ordo:secp256k1"  name pub hex,  value {"sk":"<hex>"}
 *   "ordo:cred_def"   name id,       value {"public","private","proof"}
 *
 * Every command is one key_cmd and a chain of stages on the cheap class
 * (the CL keygen on heavy); a stage that submits a request returns what
 * ordo__keys_submit returns, and the next stage reads the answer.
 */
#ifndef ORDO_KEYS_INT_H
#define ORDO_KEYS_INT_H

#include "crypto/crypto.h"
#include "runtime/runtime.h"
#include "wallet/wallet.h"

#include <jansson.h>
#include <stddef.h>

#define TYPE_KEY "ordo:key"
#define TYPE_DID "ordo:did"
#define TYPE_SECP "ordo:secp256k1"
#define TYPE_CRED_DEF "ordo:cred_def"

/* One key command's state, freed when its op ends. */
typedef struct key_cmd key_cmd;

/* What a command does with the record it read (ordo__keys_get): its value
 * is in c->record. Returns what a stage returns. */
typedef int (*ordo__keys_got_fn)(ordo_op *op, key_cmd *c);

struct key_cmd {
  ordo_ctx *ctx;
  char *wallet_id;
  ordo__wallet *w;
  ordo_storage_req req;       /* the request in flight */
  ordo_storage_req batch[2];  /* sub-requests of a BATCH */
  size_t nbatch;              /* how many of batch were submitted */
  char *name;                 /* DID, verkey or public key the command is about */
  char *seed;                 /* secret */
  char *metadata;
  int has_metadata;
  json_t *args;               /* parsed options / recipients */
  unsigned char *msg;         /* message to sign/pack, or signature to verify */
  size_t msg_len;
  unsigned char *sig;
  size_t sig_len;
  unsigned char digest[32];
  char *envelope;
  json_t *record;             /* decrypted value of the record read */
  char new_verkey[ORDO__VERKEY_SIZE];
  char did[ORDO__DID_SIZE];
  char *public_json, *private_json, *proof_json; /* cred def */
  int bits;
  char *cred_def_id;
  const char *get_type;       /* the record a command starts by reading, */
  const char *get_what;       /* what it is called in messages ("DID"), */
  ordo__keys_got_fn got;      /* and what the command does with it */
  ordo_storage_query *query;  /* what a search's request borrows */
};


/* ---- building commands ------------------------------------------------------ */

/* A command on wallet_id (NULL: none) and, when what is given, about name,
 * which must be given then (what names it in the message); its op in *op.
 * *rc is ORDO_OK, or an error for ordo__keys_cmd_start to reject the op
 * with (the state is then not to be used). */
key_cmd *ordo__keys_cmd_new(ordo_ctx *ctx, const char *wallet_id, const char *what,
                            const char *name, ordo_op **op, int *rc);
/* Start op at the cheap stage first, or reject it with rc; op NULL: NULL. */
ordo_op *ordo__keys_cmd_start(ordo_op *op, int rc, ordo_stage_fn first);
/* A command that needs nothing but the wallet: it starts with first. */
ordo_op *ordo__keys_cmd_simple(ordo_ctx *ctx, const char *wallet_id,
                               ordo_stage_fn first);
/* ordo__keys_cmd_start of a command that starts by reading the record
 * (type, c->name), called what in messages, and then goes on with got. */
ordo_op *ordo__keys_cmd_start_get(ordo_op *op, key_cmd *c, int rc, const char *type,
                                  const char *what, ordo__keys_got_fn got);

/* ---- in a stage ---------------------------------------------------------------- */

/* c->w, looked up (and retained) the first time; "wallet '…' is not open". */
int ordo__keys_wallet(ordo_op *op, key_cmd *c);
/* Submit c->req; next runs when it completes. What the stage returns. */
int ordo__keys_submit(ordo_op *op, key_cmd *c, ordo_stage_fn next);
/* Read the record (type, c->name) of the wallet, called what in messages
 * ("DID", "key"): the next stage puts its value in c->record and calls got,
 * or fails the op (a missing record is ORDO_E_KEY_NOT_FOUND). */
int ordo__keys_get(ordo_op *op, key_cmd *c, const char *type, const char *what,
                   ordo__keys_got_fn got);
/* Fill req as the ADD of (type, name) with value and tags, whose references
 * it takes; value's member secret is wiped once sealed. built: whether
 * value and the tags wanted were made (ORDO_E_NOMEM if not). */
int ordo__keys_add_secret(ordo_op *op, key_cmd *c, ordo_storage_req *req,
                          const char *type, const char *name, json_t *value,
                          const char *secret, json_t *tags, int built);

#endif /* ORDO_KEYS_INT_H */

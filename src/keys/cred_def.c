/*
 * cred_def.c — CL credential definitions: the key pair is made on the heavy
 * class (a prime search of seconds, which cancellation stops), then stored
 * as an "ordo:cred_def" record whose value holds the private key.
 */
#include "keys/keys_int.h"
#include "base/base.h"

#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- credential definitions ------------------------------------------------------- */

static int stage_cred_def_stored(ordo_op *op, void *st) {
  key_cmd *c = st;
  int rc = ordo__wallet_req_status(op, &c->req);
  if (rc == ORDO_E_RECORD_DUPLICATE)
    ordo_op_set_message(op, "credential definition '%s' already exists", c->cred_def_id);
  if (rc != ORDO_OK)
    return rc;
  return ordo__op_set_result_json(op, json_pack("{s:s, s:o, s:o}", "id", c->cred_def_id, "public_key",
                                  json_loads(c->public_json, 0, NULL), "proof",
                                  json_loads(c->proof_json, 0, NULL)));
}

static int stage_cred_def_store(ordo_op *op, void *st) {
  key_cmd *c = st;
  json_t *pub = json_loads(c->public_json, 0, NULL);
  const char *n = json_string_value(json_object_get(pub, "n"));
  const char *issuer = json_string_value(json_object_get(c->args, "issuer_did"));
  const char *tag = json_string_value(json_object_get(c->args, "tag"));
  json_int_t seq = json_integer_value(json_object_get(c->args, "schema_seq_no"));
  unsigned char h[ORDO__SHA256_BYTES];
  char hex[ORDO__HEX_ENCODED_SIZE(8)];
  int rc = ORDO_E_CRYPTO;
  if (n != NULL && ordo__crypto_sha256(n, strlen(n), h) == ORDO_OK &&
      ordo__crypto_hex_encode(h, 8, hex, sizeof(hex)) == ORDO_OK) {
    /* Indy's shape, {issuer}:3:CL:{schema}:{tag}; without an issuer or
     * schema, a hash of the modulus keeps ids unique. */
    if (asprintf(&c->cred_def_id, "%s:3:CL:%s%lld:%s", issuer ? issuer : hex,
                 seq > 0 ? "" : "x", seq > 0 ? (long long)seq : 0LL,
                 tag ? tag : "default") < 0)
      c->cred_def_id = NULL;
    rc = c->cred_def_id != NULL ? ORDO_OK : ORDO_E_NOMEM;
  }
  json_decref(pub);
  if (rc != ORDO_OK)
    return rc;
  json_t *v = json_pack("{s:s, s:s, s:s}", "public", c->public_json, "private",
                        c->private_json, "proof", c->proof_json);
  json_t *tags = json_pack("{s:s}", "~tag", tag ? tag : "default");
  rc = ordo__keys_add_secret(op, c, &c->req, TYPE_CRED_DEF, c->cred_def_id, v, "private", tags,
                  v != NULL && tags != NULL);
  return rc != ORDO_OK ? rc : ordo__keys_submit(op, c, stage_cred_def_stored);
}

/* Heavy: the seconds-long part. Cancellation stops the prime search inside. */
static int stage_cred_def_keygen(ordo_op *op, void *st) {
  key_cmd *c = st;
  json_t *attrs = json_object_get(c->args, "attributes");
  size_t n = json_array_size(attrs);
  const char **names = calloc(n ? n : 1, sizeof(*names));
  if (names == NULL)
    return ORDO_E_NOMEM;
  for (size_t i = 0; i < n; i++)
    names[i] = json_string_value(json_array_get(attrs, i));
  int rc = ordo__crypto_cl_keygen(c->bits, names, n, &c->public_json, &c->private_json,
                                  &c->proof_json);
  free(names);
  if (rc == ORDO_E_INVAL)
    ordo_op_set_message(op, "attributes must be distinct non-empty names "
                            "(compared lower-case, without spaces)");
  if (rc != ORDO_OK)
    return rc;
  return ordo__op_add_stage(op, ORDO_CLASS_CHEAP, stage_cred_def_store);
}

static int stage_cred_def(ordo_op *op, void *st) {
  key_cmd *c = st;
  int rc = ordo__keys_wallet(op, c);
  if (rc != ORDO_OK)
    return rc;
  return ordo__op_add_stage(op, ORDO_CLASS_HEAVY, stage_cred_def_keygen);
}

ordo_op *ordo_cred_def_create(ordo_ctx *ctx, const char *wallet_id,
                              const char *options_json) {
  ordo_op *op;
  int rc;
  key_cmd *c = ordo__keys_cmd_new(ctx, wallet_id, NULL, NULL, &op, &rc);
  json_error_t jerr;
  if (rc == ORDO_OK) {
    c->args = options_json ? json_loads(options_json, 0, &jerr) : NULL;
    json_t *attrs = json_object_get(c->args, "attributes");
    json_t *bits = json_object_get(c->args, "bits");
    c->bits = bits != NULL ? (int)json_integer_value(bits) : 1025;
    if (c->args == NULL && options_json != NULL) {
      ordo_op_set_message(op, "options: not JSON (line %d, column %d)",
                          jerr.line, jerr.column);
      rc = ORDO_E_JSON;
    } else if (!json_is_array(attrs) || json_array_size(attrs) == 0) {
      ordo_op_set_message(op, "options: \"attributes\" must be a non-empty array");
      rc = ORDO_E_INVAL;
    } else if ((bits != NULL && !json_is_integer(bits)) || c->bits < ORDO__CL_MIN_BITS ||
               c->bits > ORDO__CL_MAX_BITS) {
      ordo_op_set_message(op, "options: \"bits\" must be %d..%d", ORDO__CL_MIN_BITS,
                          ORDO__CL_MAX_BITS);
      rc = ORDO_E_INVAL;
    }
    for (size_t i = 0; rc == ORDO_OK && i < json_array_size(attrs); i++)
      if (!json_is_string(json_array_get(attrs, i))) {
        ordo_op_set_message(op, "options: attributes must be strings");
        rc = ORDO_E_INVAL;
      }
  }
  return ordo__keys_cmd_start(op, rc, stage_cred_def);
}

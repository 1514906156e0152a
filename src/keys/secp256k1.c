/*
 * secp256k1.c — secp256k1 keys in a wallet: create (the secret stored as
 * an "ordo:secp256k1" record named by the compressed public key), sign a
 * 32-byte digest, verify (no wallet).
 */
#include "keys/keys_int.h"
#include "base/base.h"

#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- secp256k1 -------------------------------------------------------------------- */

static int stage_secp_created(ordo_op *op, void *st) {
  key_cmd *c = st;
  int rc = ordo__wallet_req_status(op, &c->req);
  return rc != ORDO_OK ? rc : ordo__op_set_result_json(op, json_pack("{s:s}", "public_key", c->name));
}

static int stage_secp_create(ordo_op *op, void *st) {
  key_cmd *c = st;
  unsigned char sk[ORDO__SECP256K1_SECRET_BYTES], pub[ORDO__SECP256K1_PUBLIC_BYTES];
  char pubhex[ORDO__SECP256K1_PUBLIC_HEX_SIZE];
  char skhex[ORDO__HEX_ENCODED_SIZE(ORDO__SECP256K1_SECRET_BYTES)];
  int rc = ordo__keys_wallet(op, c);
  if (rc != ORDO_OK)
    return rc;
  if ((rc = ordo__crypto_secp256k1_keypair(sk, pub)) != ORDO_OK ||
      (rc = ordo__crypto_secp256k1_pubkey_hex(pub, pubhex)) != ORDO_OK ||
      (rc = ordo__crypto_hex_encode(sk, sizeof(sk), skhex, sizeof(skhex))) != ORDO_OK) {
    sodium_memzero(sk, sizeof(sk));
    return rc;
  }
  sodium_memzero(sk, sizeof(sk));
  if ((c->name = strdup(pubhex)) == NULL) {
    sodium_memzero(skhex, sizeof(skhex));
    return ORDO_E_NOMEM;
  }
  json_t *v = json_pack("{s:s}", "sk", skhex);
  sodium_memzero(skhex, sizeof(skhex));
  rc = ordo__keys_add_secret(op, c, &c->req, TYPE_SECP, pubhex, v, "sk", NULL, v != NULL);
  return rc != ORDO_OK ? rc : ordo__keys_submit(op, c, stage_secp_created);
}

static int secp_sign_got(ordo_op *op, key_cmd *c) {
  unsigned char sk[ORDO__SECP256K1_SECRET_BYTES], sig[ORDO__SECP256K1_SIG_BYTES];
  const char *skhex = json_string_value(json_object_get(c->record, "sk"));
  if (skhex == NULL || ordo__crypto_secp256k1_seckey_from_hex(skhex, sk) != ORDO_OK) {
    ordo_op_set_message(op, "secp256k1 key '%s': stored secret is corrupt", c->name);
    return ORDO_E_STORAGE;
  }
  int rc = ordo__crypto_secp256k1_sign(sk, c->digest, sig);
  sodium_memzero(sk, sizeof(sk));
  if (rc != ORDO_OK)
    return rc;
  char hex[ORDO__HEX_ENCODED_SIZE(ORDO__SECP256K1_SIG_BYTES)];
  if ((rc = ordo__crypto_hex_encode(sig, sizeof(sig), hex, sizeof(hex))) != ORDO_OK)
    return rc;
  rc = ordo_op_set_result_bytes(op, sig, sizeof(sig));
  return rc != ORDO_OK ? rc : ordo__op_set_result_json(op, json_pack("{s:s}", "signature", hex));
}

static int stage_secp_sign(ordo_op *op, void *st) {
  key_cmd *c = st;
  unsigned char pub[ORDO__SECP256K1_PUBLIC_BYTES];
  if (ordo__crypto_secp256k1_pubkey_from_hex(c->name, pub) != ORDO_OK) {
    ordo_op_set_message(op, "'%s' is not a compressed secp256k1 public key (66 hex)",
                        c->name);
    return ORDO_E_BAD_KEY;
  }
  return ordo__keys_get(op, c, TYPE_SECP, "secp256k1 key", secp_sign_got);
}

static int stage_secp_verify(ordo_op *op, void *st) {
  key_cmd *c = st;
  unsigned char pub[ORDO__SECP256K1_PUBLIC_BYTES];
  int valid = 0, rc;
  if (ordo__crypto_secp256k1_pubkey_from_hex(c->name, pub) != ORDO_OK) {
    ordo_op_set_message(op, "'%s' is not a compressed secp256k1 public key (66 hex)",
                        c->name);
    return ORDO_E_BAD_KEY;
  }
  if (c->sig_len == ORDO__SECP256K1_SIG_BYTES &&
      (rc = ordo__crypto_secp256k1_verify(pub, c->digest, c->sig, &valid)) != ORDO_OK)
    return rc;
  return ordo__op_set_result_json(op, json_pack("{s:b}", "valid", valid));
}

ordo_op *ordo_secp256k1_create(ordo_ctx *ctx, const char *wallet_id) {
  return ordo__keys_cmd_simple(ctx, wallet_id, stage_secp_create);
}

ordo_op *ordo_secp256k1_sign(ordo_ctx *ctx, const char *wallet_id,
                             const char *public_key_hex, const unsigned char digest[32]) {
  ordo_op *op;
  int rc;
  key_cmd *c = ordo__keys_cmd_new(ctx, wallet_id, "public key", public_key_hex, &op, &rc);
  if (rc == ORDO_OK && digest == NULL)
    rc = ORDO_E_INVAL;
  if (rc == ORDO_OK)
    memcpy(c->digest, digest, sizeof(c->digest));
  return ordo__keys_cmd_start(op, rc, stage_secp_sign);
}

ordo_op *ordo_secp256k1_verify(ordo_ctx *ctx, const char *public_key_hex,
                               const unsigned char digest[32], const char *signature_hex) {
  ordo_op *op;
  int rc;
  key_cmd *c = ordo__keys_cmd_new(ctx, NULL, "public key", public_key_hex, &op, &rc);
  if (rc == ORDO_OK && (digest == NULL || signature_hex == NULL))
    rc = ORDO_E_INVAL;
  if (rc == ORDO_OK) {
    memcpy(c->digest, digest, sizeof(c->digest));
    c->sig = malloc(ORDO__SECP256K1_SIG_BYTES);
    size_t n = ORDO__SECP256K1_SIG_BYTES;
    if (c->sig == NULL)
      rc = ORDO_E_NOMEM;
    else if (ordo__crypto_hex_decode(signature_hex, c->sig, &n) != ORDO_OK)
      n = 0; /* malformed: verifies as false */
    c->sig_len = n;
  }
  return ordo__keys_cmd_start(op, rc, stage_secp_verify);
}

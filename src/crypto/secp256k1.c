/*
 * secp256k1.c — Sawtooth signing keys and signatures over libsecp256k1.
 *
 * libsecp256k1 wants one context, made once: creating one builds tables, and
 * a context may be used from many threads at once as long as nothing
 * modifies it. The only call that modifies it is secp256k1_context_randomize
 * (blinding for signing and key generation against timing and power side
 * channels), so it runs once, inside the same pthread_once that creates the
 * context, before any thread can see it. The context lives as long as the
 * process.
 */
#include "crypto/crypto.h"

#include <pthread.h>
#include <secp256k1.h>
#include <sodium.h>
#include <string.h>

/* Uncompressed keys in hex: 04 || x || y. */
#define SECP_UNCOMPRESSED_BYTES 65

/* Written once inside pthread_once, which orders the writes before every
 * reader that returns from it; read-only afterwards. */
static pthread_once_t secp_once = PTHREAD_ONCE_INIT;
static secp256k1_context *secp_ctx;

static void secp_setup(void) {
  unsigned char seed[32];
  secp256k1_context *ctx;

  if (ordo__crypto_init() != ORDO_OK)
    return; /* no random source: no blinding, and no keys either */
  if ((ctx = secp256k1_context_create(SECP256K1_CONTEXT_NONE)) == NULL)
    return;
  randombytes_buf(seed, sizeof seed);
  if (!secp256k1_context_randomize(ctx, seed)) {
    secp256k1_context_destroy(ctx);
    ctx = NULL;
  }
  sodium_memzero(seed, sizeof seed);
  secp_ctx = ctx;
}

/* The shared context, or NULL when it could not be made (ORDO_E_CRYPTO). */
static const secp256k1_context *secp_context(void) {
  if (pthread_once(&secp_once, secp_setup) != 0)
    return NULL;
  return secp_ctx;
}

/* Serialize a parsed key compressed into pub. */
static int secp_serialize(const secp256k1_context *ctx,
                          const secp256k1_pubkey *key,
                          unsigned char pub[ORDO__SECP256K1_PUBLIC_BYTES]) {
  size_t len = ORDO__SECP256K1_PUBLIC_BYTES;

  if (!secp256k1_ec_pubkey_serialize(ctx, pub, &len, key,
                                     SECP256K1_EC_COMPRESSED) ||
      len != ORDO__SECP256K1_PUBLIC_BYTES)
    return ORDO_E_CRYPTO;
  return ORDO_OK;
}

int ordo__crypto_secp256k1_keypair(
    unsigned char sk[ORDO__SECP256K1_SECRET_BYTES],
    unsigned char pub[ORDO__SECP256K1_PUBLIC_BYTES]) {
  const secp256k1_context *ctx;
  int rc;

  if (sk == NULL || pub == NULL)
    return ORDO_E_INVAL;
  if ((ctx = secp_context()) == NULL)
    return ORDO_E_CRYPTO;
  /* A uniform 32-byte string is a valid key unless it is 0 or at least the
   * group order: a chance below 2^-127 per draw, so the loop is a formality
   * that keeps the distribution uniform over valid keys. */
  do
    randombytes_buf(sk, ORDO__SECP256K1_SECRET_BYTES);
  while (!secp256k1_ec_seckey_verify(ctx, sk));
  if ((rc = ordo__crypto_secp256k1_pubkey_from_secret(sk, pub)) != ORDO_OK) {
    sodium_memzero(sk, ORDO__SECP256K1_SECRET_BYTES);
    return rc == ORDO_E_BAD_KEY ? ORDO_E_CRYPTO : rc;
  }
  return ORDO_OK;
}

int ordo__crypto_secp256k1_pubkey_from_secret(
    const unsigned char sk[ORDO__SECP256K1_SECRET_BYTES],
    unsigned char pub[ORDO__SECP256K1_PUBLIC_BYTES]) {
  const secp256k1_context *ctx;
  secp256k1_pubkey key;

  if (sk == NULL || pub == NULL)
    return ORDO_E_INVAL;
  if ((ctx = secp_context()) == NULL)
    return ORDO_E_CRYPTO;
  if (!secp256k1_ec_seckey_verify(ctx, sk))
    return ORDO_E_BAD_KEY;
  if (!secp256k1_ec_pubkey_create(ctx, &key, sk))
    return ORDO_E_CRYPTO;
  return secp_serialize(ctx, &key, pub);
}

int ordo__crypto_secp256k1_pubkey_hex(
    const unsigned char pub[ORDO__SECP256K1_PUBLIC_BYTES],
    char out[ORDO__SECP256K1_PUBLIC_HEX_SIZE]) {
  if (pub == NULL || out == NULL)
    return ORDO_E_INVAL;
  return ordo__crypto_hex_encode(pub, ORDO__SECP256K1_PUBLIC_BYTES, out,
                                 ORDO__SECP256K1_PUBLIC_HEX_SIZE);
}

int ordo__crypto_secp256k1_pubkey_from_hex(
    const char *hex, unsigned char pub[ORDO__SECP256K1_PUBLIC_BYTES]) {
  unsigned char raw[SECP_UNCOMPRESSED_BYTES];
  size_t n = sizeof raw;
  const secp256k1_context *ctx;
  secp256k1_pubkey key;
  size_t len;

  if (hex == NULL || pub == NULL)
    return ORDO_E_INVAL;
  if ((ctx = secp_context()) == NULL)
    return ORDO_E_CRYPTO;
  len = strlen(hex);
  if ((len != 2 * ORDO__SECP256K1_PUBLIC_BYTES &&
       len != 2 * SECP_UNCOMPRESSED_BYTES) ||
      ordo__crypto_hex_decode(hex, raw, &n) != ORDO_OK)
    return ORDO_E_BAD_KEY;
  /* The parse checks the prefix byte and that the point is on the curve. */
  if (!secp256k1_ec_pubkey_parse(ctx, &key, raw, n))
    return ORDO_E_BAD_KEY;
  return secp_serialize(ctx, &key, pub);
}

int ordo__crypto_secp256k1_seckey_from_hex(
    const char *hex, unsigned char sk[ORDO__SECP256K1_SECRET_BYTES]) {
  const secp256k1_context *ctx;
  size_t n = ORDO__SECP256K1_SECRET_BYTES;

  if (hex == NULL || sk == NULL)
    return ORDO_E_INVAL;
  if ((ctx = secp_context()) == NULL)
    return ORDO_E_CRYPTO;
  if (strlen(hex) != 2 * ORDO__SECP256K1_SECRET_BYTES ||
      ordo__crypto_hex_decode(hex, sk, &n) != ORDO_OK ||
      !secp256k1_ec_seckey_verify(ctx, sk)) {
    sodium_memzero(sk, ORDO__SECP256K1_SECRET_BYTES);
    return ORDO_E_BAD_KEY;
  }
  return ORDO_OK;
}

int ordo__crypto_secp256k1_sign(
    const unsigned char sk[ORDO__SECP256K1_SECRET_BYTES],
    const unsigned char digest[ORDO__SECP256K1_DIGEST_BYTES],
    unsigned char sig[ORDO__SECP256K1_SIG_BYTES]) {
  const secp256k1_context *ctx;
  secp256k1_ecdsa_signature s;

  if (sk == NULL || digest == NULL || sig == NULL)
    return ORDO_E_INVAL;
  if ((ctx = secp_context()) == NULL)
    return ORDO_E_CRYPTO;
  if (!secp256k1_ec_seckey_verify(ctx, sk))
    return ORDO_E_BAD_KEY;
  /* NULL nonce function: RFC 6979, so the same key and digest always give
   * the same signature and no random source can leak the key. The result is
   * already low-S. */
  if (!secp256k1_ecdsa_sign(ctx, &s, digest, sk, NULL, NULL) ||
      !secp256k1_ecdsa_signature_serialize_compact(ctx, sig, &s))
    return ORDO_E_CRYPTO;
  return ORDO_OK;
}

int ordo__crypto_secp256k1_sign_sha256(
    const unsigned char sk[ORDO__SECP256K1_SECRET_BYTES], const void *msg,
    size_t len, unsigned char sig[ORDO__SECP256K1_SIG_BYTES]) {
  unsigned char digest[ORDO__SHA256_BYTES];
  int rc;

  if (sk == NULL || sig == NULL)
    return ORDO_E_INVAL;
  if ((rc = ordo__crypto_sha256(msg, len, digest)) != ORDO_OK)
    return rc;
  return ordo__crypto_secp256k1_sign(sk, digest, sig);
}

int ordo__crypto_secp256k1_verify(
    const unsigned char pub[ORDO__SECP256K1_PUBLIC_BYTES],
    const unsigned char digest[ORDO__SECP256K1_DIGEST_BYTES],
    const unsigned char sig[ORDO__SECP256K1_SIG_BYTES], int *valid) {
  const secp256k1_context *ctx;
  secp256k1_ecdsa_signature s;
  secp256k1_pubkey key;

  if (valid != NULL)
    *valid = 0;
  if (pub == NULL || digest == NULL || sig == NULL || valid == NULL)
    return ORDO_E_INVAL;
  if ((ctx = secp_context()) == NULL)
    return ORDO_E_CRYPTO;
  if (!secp256k1_ec_pubkey_parse(ctx, &key, pub, ORDO__SECP256K1_PUBLIC_BYTES))
    return ORDO_E_BAD_KEY;
  /* r or s not below the order: not a signature at all. */
  if (!secp256k1_ecdsa_signature_parse_compact(ctx, &s, sig))
    return ORDO_OK;
  /* secp256k1_ecdsa_verify refuses high S too; asking first states the
   * rule here rather than relying on it. normalize returns 1 when it had
   * to change the signature, i.e. when S was high. */
  if (secp256k1_ecdsa_signature_normalize(ctx, NULL, &s))
    return ORDO_OK;
  *valid = secp256k1_ecdsa_verify(ctx, &s, digest, &key) == 1;
  return ORDO_OK;
}

int ordo__crypto_secp256k1_verify_sha256(
    const unsigned char pub[ORDO__SECP256K1_PUBLIC_BYTES], const void *msg,
    size_t len, const unsigned char sig[ORDO__SECP256K1_SIG_BYTES],
    int *valid) {
  unsigned char digest[ORDO__SHA256_BYTES];
  int rc;

  if (valid != NULL)
    *valid = 0;
  if (valid == NULL)
    return ORDO_E_INVAL;
  if ((rc = ordo__crypto_sha256(msg, len, digest)) != ORDO_OK)
    return rc;
  return ordo__crypto_secp256k1_verify(pub, digest, sig, valid);
}

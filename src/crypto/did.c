/*
 * did.c — Indy identifiers: a DID is base58 of the first 16 bytes of an
 * ed25519 verkey, a verkey string is base58 of all 32, and a seed string
 * becomes the 32-byte ed25519 seed the way libindy reads it.
 */
#include "crypto/crypto.h"

#include <sodium.h>
#include <string.h>

/* The first half of the verkey names the DID (Indy's "unqualified" DID). */
#define DID_KEY_BYTES 16

/* The crypto-type suffix libindy allows after a verkey. */
static const char verkey_suffix[] = ":ed25519";

int ordo__crypto_did_from_verkey(
    const unsigned char pk[ORDO__ED25519_PUBLIC_BYTES],
    char out[ORDO__DID_SIZE]) {
  if (pk == NULL || out == NULL)
    return ORDO_E_INVAL;
  return ordo__crypto_base58_encode(pk, DID_KEY_BYTES, out, ORDO__DID_SIZE);
}

int ordo__crypto_verkey_encode(
    const unsigned char pk[ORDO__ED25519_PUBLIC_BYTES],
    char out[ORDO__VERKEY_SIZE]) {
  if (pk == NULL || out == NULL)
    return ORDO_E_INVAL;
  return ordo__crypto_base58_encode(pk, ORDO__ED25519_PUBLIC_BYTES, out,
                                    ORDO__VERKEY_SIZE);
}

int ordo__crypto_verkey_decode(const char *verkey,
                               unsigned char pk[ORDO__ED25519_PUBLIC_BYTES]) {
  /* One byte more than a key, so base58 of 33 bytes is told apart from 32. */
  unsigned char buf[ORDO__ED25519_PUBLIC_BYTES + 1];
  char text[ORDO__VERKEY_SIZE];
  size_t len, n = sizeof buf;
  const char *colon;

  if (verkey == NULL || pk == NULL)
    return ORDO_E_INVAL;
  colon = strchr(verkey, ':');
  len = colon != NULL ? (size_t)(colon - verkey) : strlen(verkey);
  if ((colon != NULL && strcmp(colon, verkey_suffix) != 0) ||
      len >= sizeof text)
    goto fail;
  memcpy(text, verkey, len);
  text[len] = '\0';
  if (ordo__crypto_base58_decode(text, buf, &n) != ORDO_OK ||
      n != ORDO__ED25519_PUBLIC_BYTES)
    goto fail;
  memcpy(pk, buf, ORDO__ED25519_PUBLIC_BYTES);
  return ORDO_OK;

fail:
  sodium_memzero(pk, ORDO__ED25519_PUBLIC_BYTES);
  return ORDO_E_BAD_KEY;
}

/* base64 of exactly 32 bytes, in any of the four alphabets-and-padding
 * variants libsodium knows; the length has already picked padded or not. */
static int seed_from_base64(const char *seed, size_t len, int padded,
                            unsigned char out[ORDO__ED25519_SEED_BYTES]) {
  static const int padded_variants[] = {sodium_base64_VARIANT_ORIGINAL,
                                        sodium_base64_VARIANT_URLSAFE};
  static const int bare_variants[] = {sodium_base64_VARIANT_ORIGINAL_NO_PADDING,
                                      sodium_base64_VARIANT_URLSAFE_NO_PADDING};
  const int *variants = padded ? padded_variants : bare_variants;
  size_t i, got;

  for (i = 0; i < 2; i++) {
    got = 0;
    if (sodium_base642bin(out, ORDO__ED25519_SEED_BYTES, seed, len, NULL, &got,
                          NULL, variants[i]) == 0 &&
        got == ORDO__ED25519_SEED_BYTES)
      return ORDO_OK;
  }
  return ORDO_E_BAD_KEY;
}

int ordo__crypto_seed_parse(const char *seed,
                            unsigned char out[ORDO__ED25519_SEED_BYTES]) {
  size_t len, n = ORDO__ED25519_SEED_BYTES;
  int rc = ORDO_E_BAD_KEY;

  if (seed == NULL || out == NULL)
    return ORDO_E_INVAL;
  if ((rc = ordo__crypto_init()) != ORDO_OK)
    return rc;
  /* libindy decides by length: a 32-byte string is the seed itself, so a
   * 32-character hex or base64 text is never decoded. The other lengths
   * cannot collide: 32 bytes are 64 hex digits and 43/44 base64 characters. */
  len = strlen(seed);
  if (len == ORDO__ED25519_SEED_BYTES) {
    memcpy(out, seed, ORDO__ED25519_SEED_BYTES);
    return ORDO_OK;
  }
  if (len == 2 * ORDO__ED25519_SEED_BYTES)
    rc = ordo__crypto_hex_decode(seed, out, &n) == ORDO_OK &&
                 n == ORDO__ED25519_SEED_BYTES
             ? ORDO_OK
             : ORDO_E_BAD_KEY;
  else if (len == 44 && seed[43] == '=')
    rc = seed_from_base64(seed, len, 1, out);
  else if (len == 43)
    rc = seed_from_base64(seed, len, 0, out);
  else
    rc = ORDO_E_BAD_KEY;
  if (rc != ORDO_OK)
    sodium_memzero(out, ORDO__ED25519_SEED_BYTES);
  return rc;
}

int ordo__crypto_did_create(const char *seed,
                            unsigned char sk[ORDO__ED25519_SECRET_BYTES],
                            char did[ORDO__DID_SIZE],
                            char verkey[ORDO__VERKEY_SIZE]) {
  unsigned char seed_bytes[ORDO__ED25519_SEED_BYTES];
  unsigned char pk[ORDO__ED25519_PUBLIC_BYTES];
  int rc;

  if (sk == NULL || did == NULL || verkey == NULL)
    return ORDO_E_INVAL;
  did[0] = verkey[0] = '\0';
  if (seed != NULL &&
      (rc = ordo__crypto_seed_parse(seed, seed_bytes)) != ORDO_OK)
    goto fail;
  if ((rc = ordo__crypto_ed25519_keypair(seed != NULL ? seed_bytes : NULL, pk,
                                         sk)) != ORDO_OK ||
      (rc = ordo__crypto_did_from_verkey(pk, did)) != ORDO_OK ||
      (rc = ordo__crypto_verkey_encode(pk, verkey)) != ORDO_OK)
    goto fail;
  sodium_memzero(seed_bytes, sizeof seed_bytes);
  return ORDO_OK;

fail:
  sodium_memzero(seed_bytes, sizeof seed_bytes);
  sodium_memzero(sk, ORDO__ED25519_SECRET_BYTES);
  did[0] = verkey[0] = '\0';
  return rc;
}

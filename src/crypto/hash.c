/*
 * hash.c — SHA-256 and SHA-512 over libsodium: Sawtooth hashes headers with
 * SHA-256 before signing and names payloads and state addresses by SHA-512.
 */
#include "crypto/crypto.h"

#include <sodium.h>

_Static_assert(ORDO__SHA256_BYTES == crypto_hash_sha256_BYTES, "sha256 size");
_Static_assert(ORDO__SHA512_BYTES == crypto_hash_sha512_BYTES, "sha512 size");

/* What SHA-256 and SHA-512 share: the checks, and a valid pointer for an
 * empty message (libsodium wants one). fn is crypto_hash_sha256 or
 * crypto_hash_sha512; out holds its digest. */
static int hash_with(int (*fn)(unsigned char *, const unsigned char *,
                               unsigned long long),
                     const void *msg, size_t len, unsigned char *out) {
  static const unsigned char empty[1];
  int rc;

  if (out == NULL || (msg == NULL && len > 0))
    return ORDO_E_INVAL;
  if ((rc = ordo__crypto_init()) != ORDO_OK)
    return rc;
  if (fn(out, msg != NULL ? msg : empty, len) != 0)
    return ORDO_E_CRYPTO;
  return ORDO_OK;
}

int ordo__crypto_sha256(const void *msg, size_t len,
                        unsigned char out[ORDO__SHA256_BYTES]) {
  return hash_with(crypto_hash_sha256, msg, len, out);
}

int ordo__crypto_sha512(const void *msg, size_t len,
                        unsigned char out[ORDO__SHA512_BYTES]) {
  return hash_with(crypto_hash_sha512, msg, len, out);
}

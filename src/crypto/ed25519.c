/*
 * ed25519.c — Ed25519 keys and signatures over libsodium, and the module's
 * one-time library setup (libsodium is the module's base; OpenSSL 3 sets
 * itself up on first use).
 */
#include "crypto/crypto.h"

#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

/* Written once inside pthread_once; pthread_once orders that write before
 * every reader that returns from it. */
static pthread_once_t sodium_once = PTHREAD_ONCE_INIT;
static int sodium_ok;

static void sodium_setup(void) {
  /* 0: initialised now, 1: already initialised (by the application), -1:
   * failed — no random source, so no key could be generated safely. */
  sodium_ok = sodium_init() >= 0;
}

int ordo__crypto_init(void) {
  if (pthread_once(&sodium_once, sodium_setup) != 0)
    return ORDO_E_CRYPTO;
  return sodium_ok ? ORDO_OK : ORDO_E_CRYPTO;
}

void ordo__crypto_memzero(void *p, size_t len) {
  if (p != NULL && len > 0)
    sodium_memzero(p, len);
}

/* Compile-time check that ordo's sizes are libsodium's, so the fixed-size
 * arrays in crypto.h can never drift from what the calls below write. */
_Static_assert(ORDO__ED25519_SEED_BYTES == crypto_sign_SEEDBYTES, "seed size");
_Static_assert(ORDO__ED25519_PUBLIC_BYTES == crypto_sign_PUBLICKEYBYTES,
               "public key size");
_Static_assert(ORDO__ED25519_SECRET_BYTES == crypto_sign_SECRETKEYBYTES,
               "secret key size");
_Static_assert(ORDO__ED25519_SIG_BYTES == crypto_sign_BYTES, "signature size");

int ordo__crypto_ed25519_keypair(const unsigned char *seed,
                                 unsigned char pk[ORDO__ED25519_PUBLIC_BYTES],
                                 unsigned char sk[ORDO__ED25519_SECRET_BYTES]) {
  int rc;

  if (pk == NULL || sk == NULL)
    return ORDO_E_INVAL;
  if ((rc = ordo__crypto_init()) != ORDO_OK)
    return rc;
  rc = seed != NULL ? crypto_sign_seed_keypair(pk, sk, seed)
                    : crypto_sign_keypair(pk, sk);
  if (rc != 0) {
    /* Leave no half-made secret behind for a caller that ignores the code. */
    sodium_memzero(sk, ORDO__ED25519_SECRET_BYTES);
    return ORDO_E_CRYPTO;
  }
  return ORDO_OK;
}

int ordo__crypto_ed25519_sign(
    const unsigned char sk[ORDO__ED25519_SECRET_BYTES], const void *msg,
    size_t len, unsigned char sig[ORDO__ED25519_SIG_BYTES]) {
  static const unsigned char empty[1];
  int rc;

  if (sk == NULL || sig == NULL || (msg == NULL && len > 0))
    return ORDO_E_INVAL;
  if ((rc = ordo__crypto_init()) != ORDO_OK)
    return rc;
  /* libsodium wants a valid pointer even for an empty message. */
  if (crypto_sign_detached(sig, NULL, msg != NULL ? msg : empty, len, sk) != 0)
    return ORDO_E_CRYPTO;
  return ORDO_OK;
}

int ordo__crypto_ed25519_verify(
    const unsigned char pk[ORDO__ED25519_PUBLIC_BYTES], const void *msg,
    size_t len, const unsigned char sig[ORDO__ED25519_SIG_BYTES], int *valid) {
  static const unsigned char empty[1];
  int rc;

  if (valid != NULL)
    *valid = 0;
  if (pk == NULL || sig == NULL || valid == NULL || (msg == NULL && len > 0))
    return ORDO_E_INVAL;
  if ((rc = ordo__crypto_init()) != ORDO_OK)
    return rc;
  *valid =
      crypto_sign_verify_detached(sig, msg != NULL ? msg : empty, len, pk) == 0;
  return ORDO_OK;
}

/*
 * crypto.h — ordo's cryptography module: the primitives commands are built
 * from. Not installed; other modules reach crypto only through this header.
 *
 * Every function here is synchronous and thread-safe: it runs wherever it is
 * called, normally inside a stage on the cheap class (signatures) or the heavy
 * class (prime search). The long ones poll ordo_op_cancelled() so that
 * ordo_op_cancel() stops them at their next checkpoint.
 *
 * Results are ORDO_OK or a code from ordo_err: ORDO_E_INVAL for arguments the
 * caller got wrong, ORDO_E_CANCELED when the running op was asked to stop,
 * ORDO_E_CRYPTO when the library underneath failed, ORDO_E_NOMEM when an
 * allocation failed.
 *
 * Secrets handed out (private keys, the primes of a key) are the caller's to
 * wipe: ordo__crypto_memzero() for buffers, ordo__crypto_free_secret() for
 * strings, BN_clear_free() for BIGNUMs.
 */
#ifndef ORDO_CRYPTO_H
#define ORDO_CRYPTO_H

#include "ordo.h"

#include <openssl/types.h> /* BIGNUM, without the whole of bn.h */
#include <stddef.h>

/* ------------------------------------------------------------------------ */
/* Module                                                                    */
/* ------------------------------------------------------------------------ */

/*
 * Initialise the libraries underneath (libsodium) once per process. Every
 * entry point below calls it, so callers need not; it is exported for modules
 * that use libsodium directly (the wallet). ORDO_E_CRYPTO if libsodium cannot
 * start (no usable random source). Any thread, any number of times.
 */
int ordo__crypto_init(void);

/* Wipe len bytes at p in a way the compiler may not drop. NULL/0 accepted. */
void ordo__crypto_memzero(void *p, size_t len);

/* Wipe a NUL-terminated secret string, then free() it. NULL accepted. */
void ordo__crypto_free_secret(char *s);

/* ------------------------------------------------------------------------ */
/* Safe primes (OpenSSL BIGNUM)                                              */
/* ------------------------------------------------------------------------ */

/* Accepted sizes. Below 16 bits there are too few safe primes to be useful;
 * above 8192 a search takes hours. */
#define ORDO__CRYPTO_PRIME_MIN_BITS 16
#define ORDO__CRYPTO_PRIME_MAX_BITS 8192

/*
 * A random safe prime p of exactly `bits` bits: p and (p-1)/2 both prime.
 * This is the seconds-long search of CL key generation (1025 bits there), so
 * it belongs on the heavy class. It checks ordo_op_cancelled() after every
 * candidate and every primality round, and returns ORDO_E_CANCELED when asked
 * to stop (outside a stage it never stops early).
 *
 * On ORDO_OK *out is a new BIGNUM the caller frees with BN_clear_free (it is
 * a secret factor when it becomes part of a key); on error *out is NULL.
 * ORDO_E_INVAL for bits outside [MIN_BITS, MAX_BITS] or out == NULL.
 */
int ordo__crypto_safe_prime_bn(int bits, BIGNUM **out);

/*
 * The same, as a decimal string in *out_decimal (malloc'd; free it with
 * ordo__crypto_free_secret). *out_decimal is NULL on error.
 */
int ordo__crypto_safe_prime(int bits, char **out_decimal);

/* ------------------------------------------------------------------------ */
/* Ed25519 (libsodium)                                                       */
/* ------------------------------------------------------------------------ */

#define ORDO__ED25519_SEED_BYTES 32
#define ORDO__ED25519_PUBLIC_BYTES 32
/* The secret key is seed || public key, libsodium's layout. */
#define ORDO__ED25519_SECRET_BYTES 64
#define ORDO__ED25519_SIG_BYTES 64

/*
 * A key pair: derived from the 32-byte seed when seed is non-NULL (the same
 * seed always gives the same keys: Indy's seeded DIDs), random otherwise.
 * sk is secret; wipe it with ordo__crypto_memzero when done.
 * ORDO_E_INVAL for NULL pk/sk, ORDO_E_CRYPTO if libsodium fails.
 */
int ordo__crypto_ed25519_keypair(const unsigned char *seed,
                                 unsigned char pk[ORDO__ED25519_PUBLIC_BYTES],
                                 unsigned char sk[ORDO__ED25519_SECRET_BYTES]);

/*
 * The detached signature of len bytes at msg (msg may be NULL when len is 0).
 * ORDO_E_INVAL for NULL arguments, ORDO_E_CRYPTO if libsodium fails.
 */
int ordo__crypto_ed25519_sign(
    const unsigned char sk[ORDO__ED25519_SECRET_BYTES], const void *msg,
    size_t len, unsigned char sig[ORDO__ED25519_SIG_BYTES]);

/*
 * Check sig over msg with pk. A wrong signature is an answer, not an error:
 * the call returns ORDO_OK and sets *valid to 0 (1 when it verifies), so a
 * caller can tell "forged" from "could not check". ORDO_E_INVAL for NULL
 * arguments, ORDO_E_CRYPTO if libsodium cannot start.
 */
int ordo__crypto_ed25519_verify(
    const unsigned char pk[ORDO__ED25519_PUBLIC_BYTES], const void *msg,
    size_t len, const unsigned char sig[ORDO__ED25519_SIG_BYTES], int *valid);

#endif /* ORDO_CRYPTO_H */

/*
 * prime.c — safe-prime search, the seconds-long computation behind CL key
 * generation and the reason the heavy class exists.
 *
 * OpenSSL does the search; ordo only makes it stoppable. OpenSSL calls a
 * BN_GENCB progress callback after each candidate and each Miller-Rabin
 * round; returning 0 from it makes BN_generate_prime_ex2 give up. The
 * callback returns 0 once the running op has been asked to cancel, so
 * ordo_op_cancel() takes effect within one candidate (milliseconds), not at
 * the end of a search that can take a minute.
 */
#include "crypto/crypto.h"

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <stdlib.h>
#include <string.h>

/* What the progress callback learned, read after the search returns. */
typedef struct prime_search {
  int cancelled; /* the callback stopped the search on a cancel request */
} prime_search;

static int prime_checkpoint(int phase, int n, BN_GENCB *cb) {
  prime_search *search = BN_GENCB_get_arg(cb);

  (void)phase; /* 0: new candidate, 1: primality round, 2/3: found */
  (void)n;
  if (ordo_op_cancelled()) {
    search->cancelled = 1;
    return 0;
  }
  return 1;
}

int ordo__crypto_safe_prime_bn(int bits, BIGNUM **out) {
  prime_search search = {0};
  BN_GENCB *cb = NULL;
  BN_CTX *bnctx = NULL;
  BIGNUM *p = NULL;
  int rc = ORDO_E_CRYPTO;

  if (out == NULL)
    return ORDO_E_INVAL;
  *out = NULL;
  if (bits < ORDO__CRYPTO_PRIME_MIN_BITS || bits > ORDO__CRYPTO_PRIME_MAX_BITS)
    return ORDO_E_INVAL;

  /* Secure-heap variants: the prime becomes a secret factor of a key, and so
   * do the temporaries of the search. Without a secure heap configured they
   * are plain allocations that are still wiped on free. */
  cb = BN_GENCB_new();
  bnctx = BN_CTX_secure_new();
  p = BN_secure_new();
  if (cb == NULL || bnctx == NULL || p == NULL) {
    rc = ORDO_E_NOMEM;
    goto fail;
  }
  BN_GENCB_set(cb, prime_checkpoint, &search);

  if (!BN_generate_prime_ex2(p, bits, 1, NULL, NULL, cb, bnctx)) {
    rc = search.cancelled ? ORDO_E_CANCELED : ORDO_E_CRYPTO;
    goto fail;
  }
  *out = p;
  BN_CTX_free(bnctx);
  BN_GENCB_free(cb);
  return ORDO_OK;

fail:
  /* Runtime threads live long: leave nothing on this thread's OpenSSL error
   * queue for an unrelated later call to misread. */
  ERR_clear_error();
  BN_clear_free(p);
  BN_CTX_free(bnctx);
  BN_GENCB_free(cb);
  return rc;
}

int ordo__crypto_safe_prime(int bits, char **out_decimal) {
  BIGNUM *p = NULL;
  char *dec = NULL;
  char *copy = NULL;
  size_t len;
  int rc;

  if (out_decimal == NULL)
    return ORDO_E_INVAL;
  *out_decimal = NULL;
  if ((rc = ordo__crypto_safe_prime_bn(bits, &p)) != ORDO_OK)
    return rc;

  dec = BN_bn2dec(p);
  BN_clear_free(p);
  if (dec == NULL) {
    ERR_clear_error();
    return ORDO_E_NOMEM;
  }
  /* Hand out a malloc'd copy so callers free with the C library, not with
   * OpenSSL's allocator. */
  len = strlen(dec) + 1;
  copy = malloc(len);
  if (copy != NULL)
    memcpy(copy, dec, len);
  OPENSSL_clear_free(dec, len);
  if (copy == NULL)
    return ORDO_E_NOMEM;
  *out_decimal = copy;
  return ORDO_OK;
}

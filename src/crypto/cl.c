/*
 * cl.c — credential-definition keys for CL signatures and their
 * key-correctness proof, the way Hyperledger Ursa's issuer makes them
 * (crypto.h gives the mathematics and the JSON).
 *
 * This is the seconds-long operation the heavy class exists for. Almost all
 * of the time goes to the two safe-prime searches (prime.c), which stop
 * within one candidate of a cancel request; the steps after them are
 * modular exponentiations of a few milliseconds each, with a checkpoint
 * between every two of them.
 *
 * Secrets: p, q, p', q', p'q', the random r behind S, every x and x~. They
 * live in BN_secure_new BIGNUMs flagged constant-time, exponentiations with
 * a secret exponent go through BN_mod_exp_mont_consttime, and everything is
 * freed with BN_clear_free. The private key JSON is built by hand rather
 * than by jansson, so that no copy of it is left in freed memory unwiped.
 *
 * The proof's masks x~ are drawn 256 + 80 bits longer than p'q' (the
 * challenge's 256 bits plus 80 of statistical slack), so x^ = x~ + c x
 * statistically hides x. Ursa draws x~ from [2, p'q' - 1] like x itself,
 * which leaks the top bits of x; its verifier accepts the longer masks too,
 * since verification only computes S^x^ for whatever x^ is.
 */
#include "crypto/crypto.h"
#include "base/utf8.h"

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Bits the proof masks x~ have beyond p'q': the challenge's 256 plus 80 of
 * statistical slack (see above). */
#define CL_MASK_EXTRA_BITS (256 + 80)

static const char master_secret[] = "master_secret";

/* Decimal digits accepted for any number read back: x^ has at most
 * 2 * MAX_BITS + 258 bits, about 2550 digits. */
#define CL_MAX_DIGITS 2600

/* One attribute of a key: its normalised name and its numbers. At keygen
 * all are filled; at verification x and x_tilde stay NULL. */
typedef struct cl_attr {
  char *name;
  BIGNUM *x;       /* secret exponent */
  BIGNUM *r;       /* R = S^x mod n */
  BIGNUM *x_tilde; /* proof randomness (secret) */
  BIGNUM *r_tilde; /* R~ = S^x~ mod n */
  BIGNUM *x_cap;   /* x^ = x~ + c x */
} cl_attr;

/* Everything one keygen or verification works with. */
typedef struct cl_key {
  BN_CTX *bn;
  BN_MONT_CTX *mont;               /* for n, shared by every exponentiation */
  BIGNUM *p, *q, *p1, *q1, *order; /* p' = (p-1)/2, q', p'q' */
  BIGNUM *n, *s;
  BIGNUM *xz, *z, *xz_tilde, *z_tilde, *xz_cap;
  BIGNUM *c;
  cl_attr *attrs; /* sorted by name */
  size_t nattrs;
} cl_key;

static void cl_key_free(cl_key *k) {
  size_t i;

  for (i = 0; i < k->nattrs && k->attrs != NULL; i++) {
    cl_attr *a = &k->attrs[i];
    free(a->name);
    BN_clear_free(a->x);
    BN_clear_free(a->r);
    BN_clear_free(a->x_tilde);
    BN_clear_free(a->r_tilde);
    BN_clear_free(a->x_cap);
  }
  free(k->attrs);
  BN_clear_free(k->p);
  BN_clear_free(k->q);
  BN_clear_free(k->p1);
  BN_clear_free(k->q1);
  BN_clear_free(k->order);
  BN_clear_free(k->n);
  BN_clear_free(k->s);
  BN_clear_free(k->xz);
  BN_clear_free(k->z);
  BN_clear_free(k->xz_tilde);
  BN_clear_free(k->z_tilde);
  BN_clear_free(k->xz_cap);
  BN_clear_free(k->c);
  BN_MONT_CTX_free(k->mont);
  BN_CTX_free(k->bn);
  /* Runtime threads live long: leave nothing on this thread's OpenSSL error
   * queue for an unrelated later call to misread. */
  ERR_clear_error();
  memset(k, 0, sizeof *k);
}

/* A new BIGNUM for a value that may be secret. */
static BIGNUM *bn_secret(void) {
  BIGNUM *b = BN_secure_new();

  if (b != NULL)
    BN_set_flags(b, BN_FLG_CONSTTIME);
  return b;
}

static int cl_checkpoint(void) {
  return ordo_op_cancelled() ? ORDO_E_CANCELED : ORDO_OK;
}

static int cmp_attr(const void *a, const void *b) {
  return strcmp(((const cl_attr *)a)->name, ((const cl_attr *)b)->name);
}

/* ------------------------------------------------------------------------ */
/* Attribute names                                                           */
/* ------------------------------------------------------------------------ */

/* Indy's attribute "common view": spaces removed, lower case. ASCII only,
 * so the result never depends on the process locale. */
static char *normalise(const char *name) {
  char *out = malloc(strlen(name) + 1), *w = out;

  if (out == NULL)
    return NULL;
  for (; *name != '\0'; name++) {
    char c = *name;
    if (c == ' ')
      continue;
    *w++ = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
  }
  *w = '\0';
  return out;
}

/* k->attrs: the normalised names plus master_secret, sorted, checked. */
static int attrs_prepare(const char *const *attrs, size_t nattrs, cl_key *k) {
  size_t i;

  if (nattrs > ORDO__CL_MAX_ATTRS || (attrs == NULL && nattrs > 0))
    return ORDO_E_INVAL;
  if ((k->attrs = calloc(nattrs + 1, sizeof *k->attrs)) == NULL)
    return ORDO_E_NOMEM;
  k->nattrs = nattrs + 1;
  for (i = 0; i < nattrs; i++) {
    /* jansson refuses anything but UTF-8 as a key */
    if (attrs[i] == NULL || !ordo__utf8_valid(attrs[i]))
      return ORDO_E_INVAL;
    if ((k->attrs[i].name = normalise(attrs[i])) == NULL)
      return ORDO_E_NOMEM;
    if (k->attrs[i].name[0] == '\0')
      return ORDO_E_INVAL;
  }
  if ((k->attrs[nattrs].name = strdup(master_secret)) == NULL)
    return ORDO_E_NOMEM;
  qsort(k->attrs, k->nattrs, sizeof *k->attrs, cmp_attr);
  /* Sorted, so equal names (an attribute given twice, or named like
   * master_secret) are neighbours. */
  for (i = 1; i < k->nattrs; i++)
    if (strcmp(k->attrs[i - 1].name, k->attrs[i].name) == 0)
      return ORDO_E_INVAL;
  return ORDO_OK;
}

/* ------------------------------------------------------------------------ */
/* Key generation                                                            */
/* ------------------------------------------------------------------------ */

/* p, q, p', q', p'q', n and the Montgomery context of n. */
static int key_primes(int bits, cl_key *k) {
  int rc;

  if ((rc = ordo__crypto_safe_prime_bn(bits, &k->p)) != ORDO_OK ||
      (rc = cl_checkpoint()) != ORDO_OK)
    return rc;
  /* Two equal primes would make n a square; at these sizes it never
   * happens, but a wrong key must not be possible. */
  do {
    BN_clear_free(k->q);
    k->q = NULL;
    if ((rc = ordo__crypto_safe_prime_bn(bits, &k->q)) != ORDO_OK ||
        (rc = cl_checkpoint()) != ORDO_OK)
      return rc;
  } while (BN_cmp(k->p, k->q) == 0);

  if ((k->p1 = bn_secret()) == NULL || (k->q1 = bn_secret()) == NULL ||
      (k->order = bn_secret()) == NULL || (k->n = BN_new()) == NULL ||
      (k->mont = BN_MONT_CTX_new()) == NULL)
    return ORDO_E_NOMEM;
  /* p is odd, so (p - 1) / 2 is p shifted right by one. */
  if (!BN_rshift1(k->p1, k->p) || !BN_rshift1(k->q1, k->q) ||
      !BN_mul(k->order, k->p1, k->q1, k->bn) ||
      !BN_mul(k->n, k->p, k->q, k->bn) ||
      !BN_MONT_CTX_set(k->mont, k->n, k->bn))
    return ORDO_E_CRYPTO;
  return ORDO_OK;
}

/* out = base^e mod n for a secret exponent e. */
static int exp_secret(cl_key *k, BIGNUM *out, const BIGNUM *base,
                      const BIGNUM *e) {
  return BN_mod_exp_mont_consttime(out, base, e, k->n, k->bn, k->mont)
             ? ORDO_OK
             : ORDO_E_CRYPTO;
}

/* S: the square of a random unit mod n that generates all of QR_n, i.e.
 * whose order is p'q': S != 1, S^p' != 1 and S^q' != 1. Almost every draw
 * qualifies; the loop is for the rare one that does not. */
static int key_generator(cl_key *k) {
  BIGNUM *r = bn_secret(), *t = bn_secret();
  int rc = ORDO_E_NOMEM;

  if (r == NULL || t == NULL || (k->s = BN_new()) == NULL)
    goto done;
  for (;;) {
    if ((rc = cl_checkpoint()) != ORDO_OK)
      goto done;
    rc = ORDO_E_CRYPTO;
    if (!BN_priv_rand_range(r, k->n) || !BN_gcd(t, r, k->n, k->bn))
      goto done;
    if (BN_is_zero(r) || !BN_is_one(t))
      continue;
    if (!BN_mod_sqr(k->s, r, k->n, k->bn))
      goto done;
    if (BN_is_one(k->s))
      continue;
    if ((rc = exp_secret(k, t, k->s, k->p1)) != ORDO_OK)
      goto done;
    if (BN_is_one(t))
      continue;
    if ((rc = exp_secret(k, t, k->s, k->q1)) != ORDO_OK)
      goto done;
    if (!BN_is_one(t))
      break;
  }
  rc = ORDO_OK;

done:
  BN_clear_free(t);
  BN_clear_free(r);
  return rc;
}

/* A new secret x uniform in [2, p'q' - 1] in *out, and S^x mod n in
 * *power (new). */
static int rand_exponent(cl_key *k, BIGNUM **out, BIGNUM **power) {
  BIGNUM *range = NULL;
  int rc = ORDO_E_NOMEM;

  if ((*out = bn_secret()) == NULL || (*power = BN_new()) == NULL ||
      (range = bn_secret()) == NULL)
    goto done;
  rc = ORDO_E_CRYPTO;
  /* [0, p'q' - 2) shifted up by 2. */
  if (!BN_sub(range, k->order, BN_value_one()) || !BN_sub_word(range, 1) ||
      !BN_priv_rand_range(*out, range) || !BN_add_word(*out, 2))
    goto done;
  rc = exp_secret(k, *power, k->s, *out);

done:
  BN_clear_free(range);
  return rc;
}

/* A proof mask x~ uniform in [0, 2^(|p'q'| + CL_MASK_EXTRA_BITS)) in *out,
 * and S^x~ mod n in *power (new). */
static int rand_mask(cl_key *k, BIGNUM **out, BIGNUM **power) {
  int rc = ORDO_E_NOMEM;
  if ((*out = bn_secret()) == NULL || (*power = BN_new()) == NULL)
    return rc;
  if (!BN_priv_rand(*out, BN_num_bits(k->order) + CL_MASK_EXTRA_BITS,
                    BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY))
    return ORDO_E_CRYPTO;
  return exp_secret(k, *power, k->s, *out);
}

/* x^ = x~ + c x, over the integers. */
static int cap_of(cl_key *k, const BIGNUM *x_tilde, const BIGNUM *x,
                  BIGNUM **cap) {
  BIGNUM *t = bn_secret();
  int rc = ORDO_E_NOMEM;

  if (t == NULL || (*cap = BN_new()) == NULL)
    goto done;
  rc = BN_mul(t, k->c, x, k->bn) && BN_add(*cap, t, x_tilde) ? ORDO_OK
                                                             : ORDO_E_CRYPTO;
done:
  BN_clear_free(t);
  return rc;
}

/* ------------------------------------------------------------------------ */
/* The challenge                                                             */
/* ------------------------------------------------------------------------ */

/* The challenge digest: SHA-256 of "n|S|Z|R_1|...|R_k|Z~|R~_1|...|R~_k",
 * each value in decimal, attributes in k->attrs' (sorted) order. Hashed as
 * it is printed, so no joined string of thousands of digits is built. */
static int challenge(cl_key *k, unsigned char digest[ORDO__SHA256_BYTES]) {
  crypto_hash_sha256_state st;
  size_t count = 2 * k->nattrs + 4, i;
  const BIGNUM **vals;
  int rc = ORDO_OK;

  if ((vals = calloc(count, sizeof *vals)) == NULL)
    return ORDO_E_NOMEM;
  vals[0] = k->n;
  vals[1] = k->s;
  vals[2] = k->z;
  for (i = 0; i < k->nattrs; i++)
    vals[3 + i] = k->attrs[i].r;
  vals[3 + k->nattrs] = k->z_tilde;
  for (i = 0; i < k->nattrs; i++)
    vals[4 + k->nattrs + i] = k->attrs[i].r_tilde;

  crypto_hash_sha256_init(&st);
  for (i = 0; i < count; i++) {
    char *dec = BN_bn2dec(vals[i]);
    if (dec == NULL) {
      rc = ORDO_E_NOMEM;
      break;
    }
    if (i > 0)
      crypto_hash_sha256_update(&st, (const unsigned char *)"|", 1);
    crypto_hash_sha256_update(&st, (const unsigned char *)dec, strlen(dec));
    OPENSSL_free(dec);
  }
  crypto_hash_sha256_final(&st, digest);
  free(vals);
  return rc;
}

/* The proof: x~, Z~, R~, c and x^ for Z and every R. */
static int key_proof(cl_key *k) {
  unsigned char digest[ORDO__SHA256_BYTES];
  size_t i;
  int rc;

  if ((rc = rand_mask(k, &k->xz_tilde, &k->z_tilde)) != ORDO_OK)
    return rc;
  for (i = 0; i < k->nattrs; i++) {
    cl_attr *a = &k->attrs[i];
    if ((rc = cl_checkpoint()) != ORDO_OK ||
        (rc = rand_mask(k, &a->x_tilde, &a->r_tilde)) != ORDO_OK)
      return rc;
  }
  if ((rc = challenge(k, digest)) != ORDO_OK)
    return rc;
  if ((k->c = BN_bin2bn(digest, sizeof digest, NULL)) == NULL)
    return ORDO_E_NOMEM;
  if ((rc = cap_of(k, k->xz_tilde, k->xz, &k->xz_cap)) != ORDO_OK)
    return rc;
  for (i = 0; i < k->nattrs; i++) {
    cl_attr *a = &k->attrs[i];
    if ((rc = cap_of(k, a->x_tilde, a->x, &a->x_cap)) != ORDO_OK)
      return rc;
  }
  return ORDO_OK;
}

/* ------------------------------------------------------------------------ */
/* JSON                                                                      */
/* ------------------------------------------------------------------------ */

/* obj[key] = the decimal string of v. */
static int set_bn(json_t *obj, const char *key, const BIGNUM *v) {
  char *dec = BN_bn2dec(v);
  int rc;

  if (dec == NULL)
    return ORDO_E_NOMEM;
  rc = ordo__crypto_json_set_ascii(obj, key, dec);
  OPENSSL_free(dec);
  return rc;
}

/* {"n","s","z","r":{...}} when proof is 0, {"c","xz_cap","xr_cap":{...}}
 * when it is 1: the same walk over the sorted attributes. */
static int key_json(const cl_key *k, int proof, char **out) {
  json_t *o = json_object(), *r = json_object();
  size_t i;
  int rc = ORDO_E_NOMEM;

  *out = NULL;
  if (o == NULL || r == NULL)
    goto done;
  if (proof) {
    if ((rc = set_bn(o, "c", k->c)) != ORDO_OK ||
        (rc = set_bn(o, "xz_cap", k->xz_cap)) != ORDO_OK)
      goto done;
  } else {
    if ((rc = set_bn(o, "n", k->n)) != ORDO_OK ||
        (rc = set_bn(o, "s", k->s)) != ORDO_OK ||
        (rc = set_bn(o, "z", k->z)) != ORDO_OK)
      goto done;
  }
  for (i = 0; i < k->nattrs; i++) {
    const cl_attr *a = &k->attrs[i];
    if ((rc = set_bn(r, a->name, proof ? a->x_cap : a->r)) != ORDO_OK)
      goto done;
  }
  rc = ORDO_E_NOMEM;
  if (json_object_set_new(o, proof ? "xr_cap" : "r", r) != 0) {
    r = NULL; /* taken even on failure */
    goto done;
  }
  r = NULL;
  if ((*out = json_dumps(o, JSON_COMPACT)) != NULL)
    rc = ORDO_OK;

done:
  json_decref(r);
  json_decref(o);
  return rc;
}

/* {"p":"…","q":"…"} by hand: every copy of the digits is wiped. */
static int key_private_json(const cl_key *k, char **out) {
  static const char fmt[] = "{\"p\":\"%s\",\"q\":\"%s\"}";
  char *p = BN_bn2dec(k->p), *q = NULL, *text = NULL;
  size_t size;
  int rc = ORDO_E_NOMEM;

  *out = NULL;
  if (p == NULL || (q = BN_bn2dec(k->q)) == NULL)
    goto done;
  size = sizeof fmt + strlen(p) + strlen(q);
  if ((text = malloc(size)) == NULL)
    goto done;
  snprintf(text, size, fmt, p, q);
  *out = text;
  rc = ORDO_OK;

done:
  if (p != NULL)
    OPENSSL_clear_free(p, strlen(p));
  if (q != NULL)
    OPENSSL_clear_free(q, strlen(q));
  return rc;
}

int ordo__crypto_cl_keygen(int bits, const char *const *attrs, size_t nattrs,
                           char **public_json, char **private_json,
                           char **proof_json) {
  cl_key k = {0};
  size_t i;
  int rc;

  if (public_json != NULL)
    *public_json = NULL;
  if (private_json != NULL)
    *private_json = NULL;
  if (proof_json != NULL)
    *proof_json = NULL;
  if (public_json == NULL || private_json == NULL || proof_json == NULL ||
      bits < ORDO__CL_MIN_BITS || bits > ORDO__CL_MAX_BITS)
    return ORDO_E_INVAL;
  if ((rc = ordo__crypto_init()) != ORDO_OK)
    return rc;

  if ((rc = attrs_prepare(attrs, nattrs, &k)) != ORDO_OK)
    goto fail;
  rc = ORDO_E_NOMEM;
  if ((k.bn = BN_CTX_secure_new()) == NULL)
    goto fail;
  if ((rc = cl_checkpoint()) != ORDO_OK ||
      (rc = key_primes(bits, &k)) != ORDO_OK ||
      (rc = key_generator(&k)) != ORDO_OK ||
      (rc = cl_checkpoint()) != ORDO_OK ||
      (rc = rand_exponent(&k, &k.xz, &k.z)) != ORDO_OK)
    goto fail;
  for (i = 0; i < k.nattrs; i++) {
    cl_attr *a = &k.attrs[i];
    if ((rc = cl_checkpoint()) != ORDO_OK ||
        (rc = rand_exponent(&k, &a->x, &a->r)) != ORDO_OK)
      goto fail;
  }
  if ((rc = cl_checkpoint()) != ORDO_OK || (rc = key_proof(&k)) != ORDO_OK ||
      (rc = cl_checkpoint()) != ORDO_OK)
    goto fail;
  if ((rc = key_json(&k, 0, public_json)) != ORDO_OK ||
      (rc = key_json(&k, 1, proof_json)) != ORDO_OK ||
      (rc = key_private_json(&k, private_json)) != ORDO_OK)
    goto fail;
  cl_key_free(&k);
  return ORDO_OK;

fail:
  free(*public_json);
  free(*proof_json);
  ordo__free_secret(*private_json);
  *public_json = *proof_json = *private_json = NULL;
  cl_key_free(&k);
  return rc;
}

/* ------------------------------------------------------------------------ */
/* Verification                                                              */
/* ------------------------------------------------------------------------ */

/* A non-negative decimal string to a new BIGNUM: ORDO_E_INVAL for anything
 * else (sign, spaces, empty, more than CL_MAX_DIGITS digits). */
static int dec_to_bn(const json_t *v, BIGNUM **out) {
  const char *s = json_string_value(v);
  size_t len, i;

  *out = NULL;
  if (s == NULL || (len = strlen(s)) == 0 || len > CL_MAX_DIGITS)
    return ORDO_E_INVAL;
  for (i = 0; i < len; i++)
    if (s[i] < '0' || s[i] > '9')
      return ORDO_E_INVAL;
  if (BN_dec2bn(out, s) != (int)len) {
    BN_free(*out);
    *out = NULL;
    return ORDO_E_NOMEM; /* digits only, so only allocation can fail */
  }
  return ORDO_OK;
}

/* out = base^-c * g^cap mod n: the commitment the prover must have made.
 * ORDO_E_PROOF when base has no inverse mod n. */
static int commitment(cl_key *k, const BIGNUM *base, const BIGNUM *cap,
                      BIGNUM **out) {
  BIGNUM *inv = NULL, *a = BN_new(), *b = BN_new();
  int rc = ORDO_E_NOMEM;

  if (a == NULL || b == NULL || (*out = BN_new()) == NULL)
    goto done;
  if ((inv = BN_mod_inverse(NULL, base, k->n, k->bn)) == NULL) {
    rc = ORDO_E_PROOF;
    goto done;
  }
  /* Public exponents: the plain (variable-time) exponentiation is fine. */
  rc = BN_mod_exp_mont(a, inv, k->c, k->n, k->bn, k->mont) &&
               BN_mod_exp_mont(b, k->s, cap, k->n, k->bn, k->mont) &&
               BN_mod_mul(*out, a, b, k->n, k->bn)
           ? ORDO_OK
           : ORDO_E_CRYPTO;

done:
  BN_free(inv);
  BN_free(b);
  BN_free(a);
  return rc;
}

/* 1 when 2 <= v <= n - 1. */
static int in_range(const cl_key *k, const BIGNUM *v) {
  return BN_cmp(v, BN_value_one()) > 0 && BN_cmp(v, k->n) < 0;
}

/* Read the public key and proof into k; numbers and names, no checks on
 * their values yet. */
static int read_key(const json_t *pub, const json_t *proof, cl_key *k) {
  const json_t *r = json_object_get(pub, "r");
  const json_t *xr = json_object_get(proof, "xr_cap");
  const char *name;
  json_t *v;
  size_t i = 0;
  int rc;

  if (!json_is_object(pub) || !json_is_object(proof) || !json_is_object(r) ||
      !json_is_object(xr) || json_object_size(r) == 0 ||
      json_object_size(r) > ORDO__CL_MAX_ATTRS + 1)
    return ORDO_E_INVAL;
  if ((rc = dec_to_bn(json_object_get(pub, "n"), &k->n)) != ORDO_OK ||
      (rc = dec_to_bn(json_object_get(pub, "s"), &k->s)) != ORDO_OK ||
      (rc = dec_to_bn(json_object_get(pub, "z"), &k->z)) != ORDO_OK ||
      (rc = dec_to_bn(json_object_get(proof, "c"), &k->c)) != ORDO_OK ||
      (rc = dec_to_bn(json_object_get(proof, "xz_cap"), &k->xz_cap)) != ORDO_OK)
    return rc;
  if ((k->attrs = calloc(json_object_size(r), sizeof *k->attrs)) == NULL)
    return ORDO_E_NOMEM;
  json_object_foreach((json_t *)r, name, v) {
    cl_attr *a = &k->attrs[i++];
    k->nattrs = i;
    if ((a->name = strdup(name)) == NULL)
      return ORDO_E_NOMEM;
    if ((rc = dec_to_bn(v, &a->r)) != ORDO_OK)
      return rc;
    /* A proof for other attributes than the key's is a wrong proof, but a
     * value that is there must still be a number. */
    if (json_object_get(xr, name) == NULL)
      continue;
    if ((rc = dec_to_bn(json_object_get(xr, name), &a->x_cap)) != ORDO_OK)
      return rc;
  }
  qsort(k->attrs, k->nattrs, sizeof *k->attrs, cmp_attr);
  return ORDO_OK;
}

int ordo__crypto_cl_verify_proof(const char *public_json,
                                 const char *proof_json) {
  unsigned char digest[ORDO__SHA256_BYTES], claimed[ORDO__SHA256_BYTES];
  json_t *pub = NULL, *proof = NULL;
  cl_key k = {0};
  int rc = ORDO_E_INVAL, cap_bits;
  size_t i;

  if (public_json == NULL || proof_json == NULL)
    return ORDO_E_INVAL;
  if ((rc = ordo__crypto_init()) != ORDO_OK)
    return rc;
  rc = ORDO_E_INVAL;
  if ((pub = json_loads(public_json, JSON_REJECT_DUPLICATES, NULL)) == NULL ||
      (proof = json_loads(proof_json, JSON_REJECT_DUPLICATES, NULL)) == NULL)
    goto done;
  if ((rc = read_key(pub, proof, &k)) != ORDO_OK)
    goto done;

  /* Values no honest key or proof has: not a proof of anything. n must be
   * odd for Montgomery arithmetic (and is, as a product of odd primes). */
  rc = ORDO_E_PROOF;
  if (!BN_is_odd(k.n) || BN_num_bits(k.n) > 2 * ORDO__CL_MAX_BITS ||
      BN_num_bits(k.n) < 2 * ORDO__CL_MIN_BITS - 1 ||
      BN_num_bits(k.c) > 8 * ORDO__SHA256_BYTES ||
      json_object_size(json_object_get(proof, "xr_cap")) != k.nattrs)
    goto done;
  /* x^ = x~ + c x: at most one bit over the mask, which is
   * |p'q'| + CL_MASK_EXTRA_BITS < |n| + CL_MASK_EXTRA_BITS bits. */
  cap_bits = BN_num_bits(k.n) + CL_MASK_EXTRA_BITS + 1;
  if (!in_range(&k, k.s) || !in_range(&k, k.z) ||
      BN_num_bits(k.xz_cap) > cap_bits)
    goto done;
  for (i = 0; i < k.nattrs; i++) {
    const cl_attr *a = &k.attrs[i];
    if (a->x_cap == NULL || !in_range(&k, a->r) ||
        BN_num_bits(a->x_cap) > cap_bits)
      goto done;
  }

  rc = ORDO_E_NOMEM;
  if ((k.bn = BN_CTX_new()) == NULL || (k.mont = BN_MONT_CTX_new()) == NULL)
    goto done;
  rc = ORDO_E_CRYPTO;
  if (!BN_MONT_CTX_set(k.mont, k.n, k.bn))
    goto done;
  if ((rc = commitment(&k, k.z, k.xz_cap, &k.z_tilde)) != ORDO_OK)
    goto done;
  for (i = 0; i < k.nattrs; i++) {
    cl_attr *a = &k.attrs[i];
    if ((rc = commitment(&k, a->r, a->x_cap, &a->r_tilde)) != ORDO_OK)
      goto done;
  }
  if ((rc = challenge(&k, digest)) != ORDO_OK)
    goto done;
  rc = ORDO_E_CRYPTO;
  if (BN_bn2binpad(k.c, claimed, sizeof claimed) != (int)sizeof claimed)
    goto done;
  rc = sodium_memcmp(digest, claimed, sizeof digest) == 0 ? ORDO_OK
                                                          : ORDO_E_PROOF;

done:
  cl_key_free(&k);
  json_decref(proof);
  json_decref(pub);
  return rc;
}

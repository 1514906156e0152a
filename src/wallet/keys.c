/*
 * keys.c — wallet key material and field encryption (see wallet.h for the
 * key hierarchy and why each field is encrypted the way it is).
 */
#include "wallet/wallet.h"
#include "crypto/crypto.h"

#include <jansson.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define NONCE_BYTES crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define TAG_BYTES crypto_aead_xchacha20poly1305_ietf_ABYTES

static const unsigned char keys_aad[] = "ordo-wallet-keys-v1";

/* ---- KDF ------------------------------------------------------------------ */

static const struct {
  const char *name;
  ordo__kdf_method method;
} kdf_names[] = {
    {"argon2id_moderate", ORDO__KDF_ARGON2ID_MODERATE},
    {"ARGON2I_MOD", ORDO__KDF_ARGON2ID_MODERATE},
    {"argon2id_interactive", ORDO__KDF_ARGON2ID_INTERACTIVE},
    {"ARGON2I_INT", ORDO__KDF_ARGON2ID_INTERACTIVE},
    {"raw", ORDO__KDF_RAW},
    {"RAW", ORDO__KDF_RAW},
};

static const char *kdf_canonical(ordo__kdf_method m) {
  switch (m) {
  case ORDO__KDF_ARGON2ID_MODERATE:
    return "argon2id_moderate";
  case ORDO__KDF_ARGON2ID_INTERACTIVE:
    return "argon2id_interactive";
  case ORDO__KDF_RAW:
    return "raw";
  }
  return "?";
}

static void kdf_set_limits(ordo__wallet_kdf *kdf) {
  if (kdf->method == ORDO__KDF_ARGON2ID_MODERATE) {
    kdf->opslimit = crypto_pwhash_OPSLIMIT_MODERATE;
    kdf->memlimit = crypto_pwhash_MEMLIMIT_MODERATE;
  } else if (kdf->method == ORDO__KDF_ARGON2ID_INTERACTIVE) {
    kdf->opslimit = crypto_pwhash_OPSLIMIT_INTERACTIVE;
    kdf->memlimit = crypto_pwhash_MEMLIMIT_INTERACTIVE;
  } else {
    kdf->opslimit = 0;
    kdf->memlimit = 0;
  }
}

int ordo__wallet_kdf_new(const char *method_name, ordo__wallet_kdf *kdf) {
  int rc = ordo__crypto_init();
  if (rc != ORDO_OK)
    return rc;
  memset(kdf, 0, sizeof(*kdf));
  if (method_name == NULL)
    method_name = "argon2id_moderate";
  for (size_t i = 0; i < sizeof(kdf_names) / sizeof(kdf_names[0]); i++) {
    if (strcmp(kdf_names[i].name, method_name) == 0) {
      kdf->method = kdf_names[i].method;
      kdf_set_limits(kdf);
      randombytes_buf(kdf->salt, sizeof(kdf->salt));
      return ORDO_OK;
    }
  }
  return ORDO_E_INVAL;
}

/* A raw key: 64 hex characters or base58 of 32 bytes. */
static int raw_key_decode(const char *key, unsigned char mk[ORDO__WALLET_KEY_BYTES]) {
  size_t len = strlen(key), got = 0;
  if (len == 2 * ORDO__WALLET_KEY_BYTES &&
      sodium_hex2bin(mk, ORDO__WALLET_KEY_BYTES, key, len, NULL, &got, NULL) == 0 &&
      got == ORDO__WALLET_KEY_BYTES)
    return ORDO_OK;
  unsigned char buf[ORDO__WALLET_KEY_BYTES + 8];
  size_t n = sizeof(buf);
  if (ordo__crypto_base58_decode(key, buf, &n) == ORDO_OK &&
      n == ORDO__WALLET_KEY_BYTES) {
    memcpy(mk, buf, ORDO__WALLET_KEY_BYTES);
    sodium_memzero(buf, sizeof(buf));
    return ORDO_OK;
  }
  sodium_memzero(buf, sizeof(buf));
  sodium_memzero(mk, ORDO__WALLET_KEY_BYTES);
  return ORDO_E_INVAL;
}

int ordo__wallet_kdf_derive(const ordo__wallet_kdf *kdf, const char *key,
                            unsigned char mk[ORDO__WALLET_KEY_BYTES]) {
  if (key == NULL)
    return ORDO_E_INVAL;
  if (kdf->method == ORDO__KDF_RAW)
    return raw_key_decode(key, mk);
  if (crypto_pwhash(mk, ORDO__WALLET_KEY_BYTES, key, strlen(key), kdf->salt,
                    kdf->opslimit, kdf->memlimit,
                    crypto_pwhash_ALG_ARGON2ID13) != 0)
    return ORDO_E_NOMEM; /* libsodium's only failure here: the memory limit */
  return ORDO_OK;
}

char *ordo__wallet_kdf_to_json(const ordo__wallet_kdf *kdf) {
  char salt[sodium_base64_ENCODED_LEN(ORDO__WALLET_SALT_BYTES,
                                      sodium_base64_VARIANT_ORIGINAL)];
  sodium_bin2base64(salt, sizeof(salt), kdf->salt, sizeof(kdf->salt),
                    sodium_base64_VARIANT_ORIGINAL);
  json_t *o = json_pack("{s:s, s:s, s:I, s:I}", "method",
                        kdf_canonical(kdf->method), "salt", salt, "opslimit",
                        (json_int_t)kdf->opslimit, "memlimit",
                        (json_int_t)kdf->memlimit);
  if (o == NULL)
    return NULL;
  char *s = json_dumps(o, JSON_COMPACT);
  json_decref(o);
  return s;
}

int ordo__wallet_kdf_from_json(const char *json, ordo__wallet_kdf *kdf) {
  json_t *o = json_loads(json, 0, NULL);
  const char *method = NULL, *salt = NULL;
  json_int_t ops = 0, mem = 0;
  int rc = ORDO_E_STORAGE;
  memset(kdf, 0, sizeof(*kdf));
  if (o == NULL || json_unpack(o, "{s:s, s:s, s:I, s:I}", "method", &method,
                               "salt", &salt, "opslimit", &ops, "memlimit",
                               &mem) != 0)
    goto done;
  for (size_t i = 0; i < sizeof(kdf_names) / sizeof(kdf_names[0]); i++)
    if (strcmp(kdf_names[i].name, method) == 0)
      kdf->method = kdf_names[i].method;
  size_t got = 0;
  if (kdf->method == 0 || ops < 0 || mem < 0 ||
      sodium_base642bin(kdf->salt, sizeof(kdf->salt), salt, strlen(salt), NULL,
                        &got, NULL, sodium_base64_VARIANT_ORIGINAL) != 0 ||
      got != sizeof(kdf->salt))
    goto done;
  /* Parameters are stored with the wallet so that a later change of the
   * defaults does not lock old wallets out. */
  kdf->opslimit = (unsigned long long)ops;
  kdf->memlimit = (size_t)mem;
  rc = ORDO_OK;
done:
  json_decref(o);
  return rc;
}

/* ---- wallet keys ---------------------------------------------------------- */

ordo__wallet_keys *ordo__wallet_keys_new(void) {
  if (ordo__crypto_init() != ORDO_OK)
    return NULL;
  ordo__wallet_keys *k = sodium_malloc(sizeof(*k));
  if (k != NULL)
    randombytes_buf(k, sizeof(*k));
  return k;
}

void ordo__wallet_keys_free(ordo__wallet_keys *k) {
  sodium_free(k); /* wipes; NULL accepted */
}

int ordo__wallet_keys_wrap(const ordo__wallet_keys *k, const unsigned char *mk,
                           unsigned char **blob, size_t *len) {
  size_t n = NONCE_BYTES + sizeof(*k) + TAG_BYTES;
  unsigned char *b = malloc(n);
  if (b == NULL)
    return ORDO_E_NOMEM;
  randombytes_buf(b, NONCE_BYTES);
  unsigned long long clen = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt(
      b + NONCE_BYTES, &clen, (const unsigned char *)k, sizeof(*k), keys_aad,
      sizeof(keys_aad) - 1, NULL, b, mk);
  *blob = b;
  *len = NONCE_BYTES + (size_t)clen;
  return ORDO_OK;
}

int ordo__wallet_keys_unwrap(const unsigned char *blob, size_t len,
                             const unsigned char *mk, ordo__wallet_keys **out) {
  *out = NULL;
  if (len != NONCE_BYTES + sizeof(ordo__wallet_keys) + TAG_BYTES)
    return ORDO_E_STORAGE; /* not a key blob of ours: corrupt metadata */
  ordo__wallet_keys *k = sodium_malloc(sizeof(*k));
  if (k == NULL)
    return ORDO_E_NOMEM;
  unsigned long long mlen = 0;
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(
          (unsigned char *)k, &mlen, NULL, blob + NONCE_BYTES, len - NONCE_BYTES,
          keys_aad, sizeof(keys_aad) - 1, blob, mk) != 0) {
    sodium_free(k);
    return ORDO_E_WALLET_ACCESS;
  }
  *out = k;
  return ORDO_OK;
}

/* ---- fields --------------------------------------------------------------- */

static const unsigned char *field_key(const ordo__wallet_keys *k,
                                      ordo__wallet_field f) {
  switch (f) {
  case ORDO__FIELD_TYPE:
    return k->type_key;
  case ORDO__FIELD_NAME:
    return k->name_key;
  case ORDO__FIELD_TAG_NAME:
    return k->tag_name_key;
  case ORDO__FIELD_TAG_VALUE:
    return k->tag_value_key;
  case ORDO__FIELD_VALUE:
    return k->value_key;
  }
  return NULL;
}

/* Seal pt with nonce into out = nonce ‖ ciphertext ‖ tag. */
static int seal(const unsigned char *key, const unsigned char *nonce,
                const void *pt, size_t len, const unsigned char *aad,
                size_t aadlen, ordo_storage_buf *out) {
  size_t n = NONCE_BYTES + len + TAG_BYTES;
  unsigned char *b = malloc(n);
  if (b == NULL)
    return ORDO_E_NOMEM;
  memcpy(b, nonce, NONCE_BYTES);
  unsigned long long clen = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt(b + NONCE_BYTES, &clen, pt, len,
                                             aad, aadlen, NULL, nonce, key);
  out->data = b;
  out->len = NONCE_BYTES + (size_t)clen;
  return ORDO_OK;
}

static int open_sealed(const unsigned char *key, const ordo_storage_buf *ct,
                       const unsigned char *aad, size_t aadlen,
                       ordo_storage_buf *out) {
  out->data = NULL;
  out->len = 0;
  if (ct->len < NONCE_BYTES + TAG_BYTES)
    return ORDO_E_STORAGE;
  size_t mlen_max = ct->len - NONCE_BYTES - TAG_BYTES;
  unsigned char *m = malloc(mlen_max + 1);
  if (m == NULL)
    return ORDO_E_NOMEM;
  unsigned long long mlen = 0;
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(
          m, &mlen, NULL, ct->data + NONCE_BYTES, ct->len - NONCE_BYTES, aad,
          aadlen, ct->data, key) != 0) {
    free(m);
    return ORDO_E_STORAGE;
  }
  m[mlen] = '\0';
  out->data = m;
  out->len = (size_t)mlen;
  return ORDO_OK;
}

int ordo__wallet_seal_det(const ordo__wallet_keys *k, ordo__wallet_field f,
                          const void *pt, size_t len, ordo_storage_buf *out) {
  /* The nonce is a MAC of the field and the plaintext: the same plaintext in
   * the same field always encrypts the same way (searchable), and a nonce is
   * never reused for a different plaintext. */
  unsigned char mac[crypto_auth_hmacsha256_BYTES];
  crypto_auth_hmacsha256_state st;
  unsigned char fb = (unsigned char)f;
  crypto_auth_hmacsha256_init(&st, k->hmac_key, sizeof(k->hmac_key));
  crypto_auth_hmacsha256_update(&st, &fb, 1);
  crypto_auth_hmacsha256_update(&st, pt, len);
  crypto_auth_hmacsha256_final(&st, mac);
  sodium_memzero(&st, sizeof(st));
  int rc = seal(field_key(k, f), mac, pt, len, &fb, 1, out);
  sodium_memzero(mac, sizeof(mac));
  return rc;
}

int ordo__wallet_open_det(const ordo__wallet_keys *k, ordo__wallet_field f,
                          const ordo_storage_buf *ct, ordo_storage_buf *out) {
  unsigned char fb = (unsigned char)f;
  return open_sealed(field_key(k, f), ct, &fb, 1, out);
}

int ordo__wallet_seal_value(const ordo__wallet_keys *k, const void *pt,
                            size_t len, const ordo_storage_buf *aad,
                            ordo_storage_buf *out) {
  unsigned char nonce[NONCE_BYTES];
  randombytes_buf(nonce, sizeof(nonce));
  return seal(k->value_key, nonce, pt, len, aad->data, aad->len, out);
}

int ordo__wallet_open_value(const ordo__wallet_keys *k,
                            const ordo_storage_buf *ct,
                            const ordo_storage_buf *aad, ordo_storage_buf *out) {
  return open_sealed(k->value_key, ct, aad->data, aad->len, out);
}

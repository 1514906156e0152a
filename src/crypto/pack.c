/*
 * pack.c — Aries RFC 0019 message envelopes (Indy's pack_message and
 * unpack_message): authcrypt and anoncrypt over libsodium, JSON by jansson.
 * The format is described in crypto.h.
 *
 * Unpacking reads hostile input, so it is written as one pass of checks
 * where every failure is the same answer, ORDO_E_UNPACK: a caller (and an
 * attacker probing it) learns only "does not open", never which part was
 * wrong. Nothing is handed out until the ciphertext has authenticated.
 * (One exception in the thread's last-error message, not the code: a content
 * iv of the wrong length is named, since its length is public and it is the
 * one mistake another implementation is likely to make.)
 *
 * The payload cipher is what deployed agents (ACA-Py, libindy, askar) use,
 * not what the "enc" label says: the label reads "xchacha20poly1305_ietf",
 * but they seal the payload with ChaCha20-Poly1305-IETF and a 12-byte iv
 * (libsodium's crypto_aead_chacha20poly1305_ietf_*). ordo packs the same
 * way. Unpacking picks the cipher by the iv's length: 12 bytes is
 * ChaCha20-Poly1305-IETF, 24 bytes is XChaCha20-Poly1305-IETF, which earlier
 * ordo versions wrote under the same label (so their stored envelopes stay
 * readable); any other length does not open. tests/vectors/ holds two
 * envelopes packed by a deployed agent.
 */
#include "crypto/crypto.h"
#include "runtime/runtime.h"

#include <jansson.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

/* The payload cipher: ChaCha20-Poly1305-IETF, as deployed agents write it. */
#define CEK_BYTES crypto_aead_chacha20poly1305_ietf_KEYBYTES
#define IV_BYTES crypto_aead_chacha20poly1305_ietf_NPUBBYTES
#define TAG_BYTES crypto_aead_chacha20poly1305_ietf_ABYTES
/* The iv of envelopes from earlier ordo versions: XChaCha20-Poly1305-IETF
 * (same key and tag sizes), read but no longer written. */
#define OLD_IV_BYTES crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define X25519_BYTES crypto_box_PUBLICKEYBYTES

static const char pack_enc[] = "xchacha20poly1305_ietf";
static const char pack_typ[] = "JWM/1.0";
static const char alg_auth[] = "Authcrypt";
static const char alg_anon[] = "Anoncrypt";

_Static_assert(CEK_BYTES == 32, "content key size");
_Static_assert(IV_BYTES == 12 && OLD_IV_BYTES == 24, "iv sizes");
_Static_assert(TAG_BYTES == 16, "tag size");
_Static_assert(crypto_aead_xchacha20poly1305_ietf_KEYBYTES == CEK_BYTES &&
                   crypto_aead_xchacha20poly1305_ietf_ABYTES == TAG_BYTES,
               "the old cipher opens with the same key and tag");
_Static_assert(crypto_box_SECRETKEYBYTES == X25519_BYTES, "x25519 key sizes");

/* ------------------------------------------------------------------------ */
/* Parsing an envelope                                                       */
/* ------------------------------------------------------------------------ */

/* A parsed envelope. Pointers into root and header are borrowed from them. */
typedef struct envelope {
  json_t *root;              /* the outer object */
  json_t *header;            /* the decoded protected header */
  const char *protected_b64; /* the AAD: the protected text as sent */
  json_t *recipients;        /* non-empty array, every entry checked */
  int authcrypt;
} envelope;

static void envelope_free(envelope *env) {
  json_decref(env->header);
  json_decref(env->root);
  memset(env, 0, sizeof *env);
}

/* The string at obj[key], or NULL if absent or not a string. */
static const char *get_string(const json_t *obj, const char *key) {
  return json_string_value(json_object_get(obj, key));
}

/* A recipient entry: {"encrypted_key":s,"header":{"kid":s,...}}, with
 * "sender" and "iv" strings for authcrypt and absent (or null) for
 * anoncrypt, where they would mean nothing. */
static int recipient_ok(const json_t *r, int authcrypt) {
  const json_t *h = json_object_get(r, "header");
  const json_t *sender, *iv;

  if (!json_is_object(r) || !json_is_object(h) ||
      get_string(r, "encrypted_key") == NULL || get_string(h, "kid") == NULL)
    return 0;
  sender = json_object_get(h, "sender");
  iv = json_object_get(h, "iv");
  if (authcrypt)
    return json_is_string(sender) && json_is_string(iv);
  return (sender == NULL || json_is_null(sender)) &&
         (iv == NULL || json_is_null(iv));
}

/* Parse and check the structure of an envelope: ORDO_OK, ORDO_E_UNPACK or
 * ORDO_E_NOMEM. On error env is left empty. */
static int envelope_parse(const char *text, envelope *env) {
  unsigned char *prot = NULL;
  size_t prot_len = 0, i;
  const char *alg;
  int rc = ORDO_E_UNPACK;

  memset(env, 0, sizeof *env);
  env->root = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
  if (!json_is_object(env->root))
    goto fail;
  env->protected_b64 = get_string(env->root, "protected");
  if (env->protected_b64 == NULL || get_string(env->root, "iv") == NULL ||
      get_string(env->root, "ciphertext") == NULL ||
      get_string(env->root, "tag") == NULL)
    goto fail;
  if ((rc = ordo__crypto_b64url_decode(env->protected_b64, &prot, &prot_len)) !=
      ORDO_OK) {
    rc = rc == ORDO_E_NOMEM ? rc : ORDO_E_UNPACK;
    goto fail;
  }
  rc = ORDO_E_UNPACK;
  /* Without JSON_ALLOW_NUL a NUL byte anywhere in the header fails here, so
   * every string taken from it is a proper C string. */
  env->header =
      json_loadb((const char *)prot, prot_len, JSON_REJECT_DUPLICATES, NULL);
  if (!json_is_object(env->header))
    goto fail;
  alg = get_string(env->header, "alg");
  if (get_string(env->header, "enc") == NULL ||
      strcmp(get_string(env->header, "enc"), pack_enc) != 0 || alg == NULL)
    goto fail;
  if (strcmp(alg, alg_auth) == 0)
    env->authcrypt = 1;
  else if (strcmp(alg, alg_anon) != 0)
    goto fail;
  env->recipients = json_object_get(env->header, "recipients");
  if (!json_is_array(env->recipients) || json_array_size(env->recipients) == 0)
    goto fail;
  for (i = 0; i < json_array_size(env->recipients); i++)
    if (!recipient_ok(json_array_get(env->recipients, i), env->authcrypt))
      goto fail;
  free(prot);
  return ORDO_OK;

fail:
  free(prot);
  envelope_free(env);
  return rc;
}

/* Decode the base64url string at obj[key] into a new buffer of exactly
 * `want` bytes (0: any length). ORDO_E_UNPACK or ORDO_E_NOMEM. */
static int get_b64(const json_t *obj, const char *key, size_t want,
                   unsigned char **out, size_t *len) {
  const char *text = get_string(obj, key);
  int rc;

  *out = NULL;
  *len = 0;
  if (text == NULL)
    return ORDO_E_UNPACK;
  if ((rc = ordo__crypto_b64url_decode(text, out, len)) != ORDO_OK)
    return rc == ORDO_E_NOMEM ? rc : ORDO_E_UNPACK;
  if (want != 0 && *len != want) {
    free(*out);
    *out = NULL;
    *len = 0;
    return ORDO_E_UNPACK;
  }
  return ORDO_OK;
}

/* ------------------------------------------------------------------------ */
/* Packing                                                                   */
/* ------------------------------------------------------------------------ */

/* Set obj[key] to the base64url text of len bytes at data. */
static int set_b64(json_t *obj, const char *key, const void *data, size_t len) {
  char *text = NULL;
  int rc;

  if ((rc = ordo__crypto_b64url_encode(data, len, &text)) != ORDO_OK)
    return rc;
  rc = ordo__crypto_json_set_ascii(obj, key, text);
  free(text);
  return rc;
}

/* The recipient entry for one verkey: the CEK sealed (anoncrypt) or boxed
 * from the sender (authcrypt), plus the sealed sender verkey and nonce. */
static int pack_recipient(const char *kid,
                          const unsigned char x_pk[X25519_BYTES],
                          const unsigned char cek[CEK_BYTES],
                          const unsigned char *x_sender_sk,
                          const char *sender_verkey, json_t *recipients) {
  unsigned char ek[CEK_BYTES + crypto_box_SEALBYTES];
  unsigned char nonce[crypto_box_NONCEBYTES];
  unsigned char *sealed_sender = NULL;
  size_t sender_len = 0, ek_len;
  json_t *entry = json_object(), *header = json_object();
  int rc = ORDO_E_NOMEM;

  _Static_assert(crypto_box_SEALBYTES >= crypto_box_MACBYTES, "ek buffer");
  if (entry == NULL || header == NULL)
    goto fail;
  if (json_object_set_new(header, "kid", json_string(kid)) != 0)
    goto fail;
  if (x_sender_sk == NULL) {
    ek_len = CEK_BYTES + crypto_box_SEALBYTES;
    if (crypto_box_seal(ek, cek, CEK_BYTES, x_pk) != 0) {
      rc = ORDO_E_CRYPTO;
      goto fail;
    }
  } else {
    ek_len = CEK_BYTES + crypto_box_MACBYTES;
    sender_len = strlen(sender_verkey) + crypto_box_SEALBYTES;
    if ((sealed_sender = malloc(sender_len)) == NULL)
      goto fail;
    randombytes_buf(nonce, sizeof nonce);
    if (crypto_box_easy(ek, cek, CEK_BYTES, nonce, x_pk, x_sender_sk) != 0 ||
        crypto_box_seal(sealed_sender, (const unsigned char *)sender_verkey,
                        strlen(sender_verkey), x_pk) != 0) {
      rc = ORDO_E_CRYPTO;
      goto fail;
    }
    if ((rc = set_b64(header, "sender", sealed_sender, sender_len)) !=
            ORDO_OK ||
        (rc = set_b64(header, "iv", nonce, sizeof nonce)) != ORDO_OK)
      goto fail;
  }
  if ((rc = set_b64(entry, "encrypted_key", ek, ek_len)) != ORDO_OK)
    goto fail;
  rc = ORDO_E_NOMEM;
  if (json_object_set_new(entry, "header", header) != 0) {
    header = NULL; /* taken even on failure */
    goto fail;
  }
  header = NULL;
  if (json_array_append_new(recipients, entry) != 0) {
    entry = NULL;
    goto fail;
  }
  free(sealed_sender);
  return ORDO_OK;

fail:
  free(sealed_sender);
  json_decref(header);
  json_decref(entry);
  return rc;
}

/* The protected header for the recipients, as base64url text (new). */
static int pack_protected(const char *const *recipient_verkeys, size_t n,
                          const unsigned char cek[CEK_BYTES],
                          const unsigned char *sender_sk64,
                          char **protected_b64) {
  unsigned char x_sender_sk[crypto_box_SECRETKEYBYTES];
  unsigned char pk[ORDO__ED25519_PUBLIC_BYTES], x_pk[X25519_BYTES];
  char kid[ORDO__VERKEY_SIZE], sender_verkey[ORDO__VERKEY_SIZE];
  json_t *header = json_object(), *recipients = json_array();
  char *text = NULL;
  size_t i;
  int rc = ORDO_E_NOMEM;

  *protected_b64 = NULL;
  sender_verkey[0] = '\0';
  if (header == NULL || recipients == NULL)
    goto done;
  if (sender_sk64 != NULL) {
    if ((rc = ordo__crypto_verkey_encode(sender_sk64 + ORDO__ED25519_SEED_BYTES,
                                         sender_verkey)) != ORDO_OK)
      goto done;
    /* Cannot fail: every 64-byte string maps to some X25519 scalar. */
    crypto_sign_ed25519_sk_to_curve25519(x_sender_sk, sender_sk64);
  }
  for (i = 0; i < n; i++) {
    /* The kid is written canonically: a ":ed25519" suffix is dropped. */
    if (recipient_verkeys[i] == NULL) {
      rc = ORDO_E_INVAL;
      goto done;
    }
    if ((rc = ordo__crypto_verkey_decode(recipient_verkeys[i], pk)) !=
            ORDO_OK ||
        (rc = ordo__crypto_verkey_encode(pk, kid)) != ORDO_OK)
      goto done;
    /* Fails for points of small order or off the curve: no key to seal to. */
    if (crypto_sign_ed25519_pk_to_curve25519(x_pk, pk) != 0) {
      rc = ORDO_E_BAD_KEY;
      goto done;
    }
    if ((rc = pack_recipient(kid, x_pk, cek,
                             sender_sk64 != NULL ? x_sender_sk : NULL,
                             sender_verkey, recipients)) != ORDO_OK)
      goto done;
  }
  rc = ORDO_E_NOMEM;
  if (json_object_set_new(header, "enc", json_string(pack_enc)) != 0 ||
      json_object_set_new(header, "typ", json_string(pack_typ)) != 0 ||
      json_object_set_new(
          header, "alg",
          json_string(sender_sk64 != NULL ? alg_auth : alg_anon)) != 0)
    goto done;
  if (json_object_set_new(header, "recipients", recipients) != 0) {
    recipients = NULL;
    goto done;
  }
  recipients = NULL;
  if ((text = json_dumps(header, JSON_COMPACT)) == NULL)
    goto done;
  rc = ordo__crypto_b64url_encode(text, strlen(text), protected_b64);

done:
  sodium_memzero(x_sender_sk, sizeof x_sender_sk);
  free(text);
  json_decref(recipients);
  json_decref(header);
  return rc;
}

int ordo__crypto_pack(const void *msg, size_t len,
                      const char *const *recipient_verkeys, size_t n,
                      const unsigned char *sender_sk64, char **out_json) {
  static const unsigned char empty[1];
  unsigned char cek[CEK_BYTES], iv[IV_BYTES], tag[TAG_BYTES];
  unsigned char *ct = NULL;
  char *protected_b64 = NULL;
  json_t *env = NULL;
  int rc;

  if (out_json == NULL)
    return ORDO_E_INVAL;
  *out_json = NULL;
  if ((msg == NULL && len > 0) || recipient_verkeys == NULL || n == 0 ||
      len > ORDO__PACK_MAX_MESSAGE)
    return ORDO_E_INVAL;
  if ((rc = ordo__crypto_init()) != ORDO_OK)
    return rc;

  crypto_aead_chacha20poly1305_ietf_keygen(cek);
  if ((rc = pack_protected(recipient_verkeys, n, cek, sender_sk64,
                           &protected_b64)) != ORDO_OK)
    goto done;

  rc = ORDO_E_NOMEM;
  if ((ct = malloc(len > 0 ? len : 1)) == NULL)
    goto done;
  /* A random 12-byte iv is safe here: the key is fresh for each message and
   * encrypts nothing else. */
  randombytes_buf(iv, sizeof iv);
  /* The protected text is the AAD: changing any header byte (a kid, an
   * encrypted key, the algorithm) breaks the tag. */
  if (crypto_aead_chacha20poly1305_ietf_encrypt_detached(
          ct, tag, NULL, msg != NULL ? msg : empty, len,
          (const unsigned char *)protected_b64, strlen(protected_b64), NULL, iv,
          cek) != 0) {
    rc = ORDO_E_CRYPTO;
    goto done;
  }
  if ((env = json_object()) == NULL)
    goto done;
  if ((rc = ordo__crypto_json_set_ascii(env, "protected", protected_b64)) !=
          ORDO_OK ||
      (rc = set_b64(env, "iv", iv, sizeof iv)) != ORDO_OK ||
      (rc = set_b64(env, "ciphertext", ct, len)) != ORDO_OK ||
      (rc = set_b64(env, "tag", tag, sizeof tag)) != ORDO_OK)
    goto done;
  rc = ORDO_E_NOMEM;
  if ((*out_json = json_dumps(env, JSON_COMPACT)) == NULL)
    goto done;
  rc = ORDO_OK;

done:
  sodium_memzero(cek, sizeof cek);
  json_decref(env);
  free(ct);
  free(protected_b64);
  return rc;
}

/* ------------------------------------------------------------------------ */
/* Unpacking                                                                 */
/* ------------------------------------------------------------------------ */

void ordo__crypto_free_kids(char **kids, size_t n) {
  size_t i;

  if (kids == NULL)
    return;
  for (i = 0; i < n; i++)
    free(kids[i]);
  free(kids);
}

int ordo__crypto_unpack_kids(const char *envelope_json, char ***kids,
                             size_t *n) {
  envelope env;
  char **list = NULL;
  size_t count = 0, i;
  int rc;

  if (kids != NULL)
    *kids = NULL;
  if (n != NULL)
    *n = 0;
  if (envelope_json == NULL || kids == NULL || n == NULL)
    return ORDO_E_INVAL;
  if ((rc = envelope_parse(envelope_json, &env)) != ORDO_OK)
    return rc;
  count = json_array_size(env.recipients);
  rc = ORDO_E_NOMEM;
  if ((list = calloc(count, sizeof *list)) == NULL)
    goto fail;
  for (i = 0; i < count; i++) {
    const json_t *h =
        json_object_get(json_array_get(env.recipients, i), "header");
    if ((list[i] = strdup(get_string(h, "kid"))) == NULL)
      goto fail;
  }
  envelope_free(&env);
  *kids = list;
  *n = count;
  return ORDO_OK;

fail:
  ordo__crypto_free_kids(list, count);
  envelope_free(&env);
  return rc;
}

/*
 * The payload iv at root["iv"]: 12 bytes (ChaCha20-Poly1305-IETF, what
 * deployed agents and ordo write) or 24 (XChaCha20-Poly1305-IETF, what
 * earlier ordo versions wrote under the same "enc" label; still read so
 * their stored envelopes open). Any other length is ORDO_E_UNPACK, with the
 * thread's last-error message naming the problem (the length is public).
 */
static int get_iv(const json_t *root, unsigned char **iv, size_t *len) {
  int rc = get_b64(root, "iv", 0, iv, len);

  if (rc != ORDO_OK)
    return rc;
  if (*len != IV_BYTES && *len != OLD_IV_BYTES) {
    ordo__set_last_error(ORDO_E_UNPACK,
                         "unpack: iv must be 12 bytes (or 24 in envelopes of "
                         "earlier ordo versions), not %zu",
                         *len);
    free(*iv);
    *iv = NULL;
    *len = 0;
    return ORDO_E_UNPACK;
  }
  return ORDO_OK;
}

/* The recipient entry whose kid is `kid`, or NULL. */
static const json_t *find_recipient(const envelope *env, const char *kid) {
  size_t i;

  for (i = 0; i < json_array_size(env->recipients); i++) {
    const json_t *r = json_array_get(env->recipients, i);
    const char *k = get_string(json_object_get(r, "header"), "kid");
    if (strcmp(k, kid) == 0)
      return r;
  }
  return NULL;
}

/*
 * The authcrypt sender in a recipient header: open the sealed sender verkey
 * with our X25519 pair, check it is a usable key, and return its X25519
 * public key and its canonical verkey string.
 */
static int open_sender(const json_t *header,
                       const unsigned char x_pk[X25519_BYTES],
                       const unsigned char x_sk[X25519_BYTES],
                       unsigned char x_sender_pk[X25519_BYTES],
                       char sender_verkey[ORDO__VERKEY_SIZE]) {
  unsigned char *sealed = NULL, pk[ORDO__ED25519_PUBLIC_BYTES];
  char text[ORDO__VERKEY_SIZE];
  size_t sealed_len = 0;
  int rc;

  if ((rc = get_b64(header, "sender", 0, &sealed, &sealed_len)) != ORDO_OK)
    return rc;
  rc = ORDO_E_UNPACK;
  /* A verkey string is at most VERKEY_SIZE - 1 characters. */
  if (sealed_len <= crypto_box_SEALBYTES ||
      sealed_len - crypto_box_SEALBYTES >= sizeof text)
    goto done;
  if (crypto_box_seal_open((unsigned char *)text, sealed, sealed_len, x_pk,
                           x_sk) != 0)
    goto done;
  text[sealed_len - crypto_box_SEALBYTES] = '\0';
  /* A NUL inside the text would shorten it: decode sees what strlen sees,
   * and base58 of exactly 32 bytes cannot contain one. */
  if (strlen(text) != sealed_len - crypto_box_SEALBYTES ||
      ordo__crypto_verkey_decode(text, pk) != ORDO_OK ||
      crypto_sign_ed25519_pk_to_curve25519(x_sender_pk, pk) != 0 ||
      ordo__crypto_verkey_encode(pk, sender_verkey) != ORDO_OK)
    goto done;
  rc = ORDO_OK;

done:
  free(sealed);
  return rc;
}

/* The content key from our recipient entry r. */
static int open_cek(const json_t *r, int authcrypt,
                    const unsigned char x_pk[X25519_BYTES],
                    const unsigned char x_sk[X25519_BYTES],
                    unsigned char cek[CEK_BYTES],
                    char sender_verkey[ORDO__VERKEY_SIZE]) {
  const json_t *header = json_object_get(r, "header");
  unsigned char x_sender_pk[X25519_BYTES];
  unsigned char *ek = NULL, *nonce = NULL;
  size_t ek_len = 0, nonce_len = 0;
  int rc;

  if (!authcrypt) {
    if ((rc = get_b64(r, "encrypted_key", CEK_BYTES + crypto_box_SEALBYTES, &ek,
                      &ek_len)) != ORDO_OK)
      return rc;
    rc = crypto_box_seal_open(cek, ek, ek_len, x_pk, x_sk) == 0 ? ORDO_OK
                                                                : ORDO_E_UNPACK;
    free(ek);
    return rc;
  }
  if ((rc = open_sender(header, x_pk, x_sk, x_sender_pk, sender_verkey)) !=
          ORDO_OK ||
      (rc = get_b64(header, "iv", crypto_box_NONCEBYTES, &nonce, &nonce_len)) !=
          ORDO_OK ||
      (rc = get_b64(r, "encrypted_key", CEK_BYTES + crypto_box_MACBYTES, &ek,
                    &ek_len)) != ORDO_OK)
    goto done;
  rc = crypto_box_open_easy(cek, ek, ek_len, nonce, x_sender_pk, x_sk) == 0
           ? ORDO_OK
           : ORDO_E_UNPACK;

done:
  free(ek);
  free(nonce);
  return rc;
}

int ordo__crypto_unpack(
    const char *envelope_json, const char *recipient_verkey,
    const unsigned char recipient_sk64[ORDO__ED25519_SECRET_BYTES],
    unsigned char **msg, size_t *len, char **sender_verkey) {
  unsigned char pk[ORDO__ED25519_PUBLIC_BYTES];
  unsigned char x_pk[X25519_BYTES], x_sk[X25519_BYTES], cek[CEK_BYTES];
  unsigned char *iv = NULL, *tag = NULL, *ct = NULL, *plain = NULL;
  size_t iv_len = 0, tag_len = 0, ct_len = 0;
  char kid[ORDO__VERKEY_SIZE], sender[ORDO__VERKEY_SIZE] = "";
  char *sender_copy = NULL;
  const json_t *r;
  envelope env = {0};
  int rc;

  if (msg != NULL)
    *msg = NULL;
  if (len != NULL)
    *len = 0;
  if (sender_verkey != NULL)
    *sender_verkey = NULL;
  if (envelope_json == NULL || recipient_verkey == NULL ||
      recipient_sk64 == NULL || msg == NULL || len == NULL)
    return ORDO_E_INVAL;
  if ((rc = ordo__crypto_init()) != ORDO_OK)
    return rc;
  /* Our own key must be consistent, or "not for us" would hide a caller's
   * mistake. The public half is public: a plain comparison will do. */
  if (ordo__crypto_verkey_decode(recipient_verkey, pk) != ORDO_OK ||
      memcmp(pk, recipient_sk64 + ORDO__ED25519_SEED_BYTES, sizeof pk) != 0 ||
      ordo__crypto_verkey_encode(pk, kid) != ORDO_OK ||
      crypto_sign_ed25519_pk_to_curve25519(x_pk, pk) != 0)
    return ORDO_E_INVAL;
  crypto_sign_ed25519_sk_to_curve25519(x_sk, recipient_sk64);

  if ((rc = envelope_parse(envelope_json, &env)) != ORDO_OK)
    goto done;
  /* The small public fields first: an iv of the wrong length is named even
   * when the envelope is not for us, and costs no key work. */
  if ((rc = get_iv(env.root, &iv, &iv_len)) != ORDO_OK ||
      (rc = get_b64(env.root, "tag", TAG_BYTES, &tag, &tag_len)) != ORDO_OK)
    goto done;
  rc = ORDO_E_UNPACK;
  if ((r = find_recipient(&env, kid)) == NULL)
    goto done;
  if ((rc = open_cek(r, env.authcrypt, x_pk, x_sk, cek, sender)) != ORDO_OK ||
      (rc = get_b64(env.root, "ciphertext", 0, &ct, &ct_len)) != ORDO_OK)
    goto done;
  rc = ORDO_E_NOMEM;
  if ((plain = malloc(ct_len + 1)) == NULL)
    goto done;
  if (env.authcrypt && sender_verkey != NULL &&
      (sender_copy = strdup(sender)) == NULL)
    goto done;
  /* The cipher by the iv's length (get_iv allowed only these two). */
  if ((iv_len == IV_BYTES ? crypto_aead_chacha20poly1305_ietf_decrypt_detached(
                                plain, NULL, ct, ct_len, tag,
                                (const unsigned char *)env.protected_b64,
                                strlen(env.protected_b64), iv, cek)
                          : crypto_aead_xchacha20poly1305_ietf_decrypt_detached(
                                plain, NULL, ct, ct_len, tag,
                                (const unsigned char *)env.protected_b64,
                                strlen(env.protected_b64), iv, cek)) != 0) {
    rc = ORDO_E_UNPACK;
    goto done;
  }
  plain[ct_len] = '\0';
  *msg = plain;
  *len = ct_len;
  if (sender_verkey != NULL)
    *sender_verkey = sender_copy;
  plain = NULL;
  sender_copy = NULL;
  rc = ORDO_OK;

done:
  sodium_memzero(x_sk, sizeof x_sk);
  sodium_memzero(cek, sizeof cek);
  /* libsodium wipes its output on a failed decryption; this covers the
   * other ways here. */
  ordo__free_wiped(plain, ct_len + 1);
  free(sender_copy);
  free(ct);
  free(tag);
  free(iv);
  envelope_free(&env);
  return rc;
}

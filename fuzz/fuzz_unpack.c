/*
 * fuzz_unpack.c — libFuzzer target for envelope parsing:
 * ordo__crypto_unpack_kids and ordo__crypto_unpack with a fixed recipient key
 * (fuzz_unpack_key.h).
 *
 * Every input is tried two ways:
 *   1. as an envelope, as it would arrive;
 *   2. as the protected header's JSON, wrapped into an envelope (base64url
 *      and fixed iv, ciphertext and tag), so that mutations reach the
 *      recipient parsing directly instead of dying in the base64 layer. The
 *      iv is 12 bytes, as deployed agents and ordo write it, or 24 (the
 *      XChaCha20 envelopes of earlier ordo versions, still read) when the
 *      input's length is odd, so both ciphers are reached.
 * Properties checked on every input:
 *   - an error is ORDO_E_UNPACK (or ORDO_E_NOMEM) with every output NULL/0;
 *   - a success gives NUL-terminated output, a sender verkey that parses
 *     (authcrypt), an envelope whose kids include the recipient, and an iv
 *     of 12 or 24 bytes (no other length opens).
 * ASan/UBSan/LeakSanitizer catch memory errors and leaks on the way.
 *
 * Seeds in fuzz/corpus/unpack/ were written by gen_unpack_seeds.c: valid
 * anoncrypt and authcrypt envelopes for the fixed key (12-byte iv), others'
 * envelopes, tampered ones, one with a 16-byte iv, and decoded protected
 * headers for the second way. Beside them: legacy_iv24_*.json, envelopes of
 * an earlier ordo version (24-byte iv, XChaCha20), and didcomm_v1_*.json,
 * the two envelopes a deployed agent packed (copies of tests/vectors/; for
 * a key the fuzzer does not hold, so they exercise parsing, not opening).
 */
#include "crypto/crypto.h"
#include "fuzz_unpack_key.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The recipient key, made on the first input. */
static unsigned char fuzz_sk[ORDO__ED25519_SECRET_BYTES];
static char fuzz_verkey[ORDO__VERKEY_SIZE];
static int fuzz_ready;

static void fuzz_setup(void) {
  char did[ORDO__DID_SIZE];

  if (fuzz_ready)
    return;
  if (ordo__crypto_did_create(FUZZ_UNPACK_RECIPIENT_SEED, fuzz_sk, did,
                              fuzz_verkey) != ORDO_OK)
    abort();
  fuzz_ready = 1;
}

static int kids_contain(const char *envelope, const char *verkey) {
  char **kids = NULL;
  size_t n = 0, i;
  int found = 0;

  if (ordo__crypto_unpack_kids(envelope, &kids, &n) != ORDO_OK)
    return 0;
  for (i = 0; i < n; i++)
    found |= strcmp(kids[i], verkey) == 0;
  ordo__crypto_free_kids(kids, n);
  return found;
}

/* Whether the envelope's top-level iv decodes to 12 or 24 bytes. */
static int iv_length_ok(const char *envelope) {
  json_t *root = json_loads(envelope, 0, NULL);
  unsigned char *iv = NULL;
  size_t len = 0;
  int ok = 0;

  if (ordo__crypto_b64url_decode(json_string_value(json_object_get(root, "iv")),
                                 &iv, &len) == ORDO_OK) {
    ok = len == 12 || len == 24;
    free(iv);
  }
  json_decref(root);
  return ok;
}

static void check_envelope(const char *text) {
  unsigned char *msg = NULL, pk[ORDO__ED25519_PUBLIC_BYTES];
  char **kids = NULL, *sender = NULL;
  size_t n = 0, len = 0, i;
  int rc;

  rc = ordo__crypto_unpack_kids(text, &kids, &n);
  if (rc == ORDO_OK) {
    if (kids == NULL || n == 0)
      abort();
    for (i = 0; i < n; i++)
      if (kids[i] == NULL)
        abort();
    ordo__crypto_free_kids(kids, n);
  } else if ((rc != ORDO_E_UNPACK && rc != ORDO_E_NOMEM) || kids != NULL ||
             n != 0) {
    abort();
  }

  rc = ordo__crypto_unpack(text, fuzz_verkey, fuzz_sk, &msg, &len, &sender);
  if (rc == ORDO_OK) {
    if (msg == NULL || msg[len] != '\0' || !kids_contain(text, fuzz_verkey) ||
        !iv_length_ok(text))
      abort();
    if (sender != NULL && ordo__crypto_verkey_decode(sender, pk) != ORDO_OK)
      abort();
    free(msg);
    free(sender);
  } else if ((rc != ORDO_E_UNPACK && rc != ORDO_E_NOMEM) || msg != NULL ||
             len != 0 || sender != NULL) {
    abort();
  }
}

/* The input as a protected header, in an envelope whose other fields are
 * fixed and well-formed (12-byte iv, or 24 for inputs of odd length;
 * 16-byte tag). */
static void check_as_header(const uint8_t *data, size_t size) {
  static const char fmt[] =
      "{\"protected\":\"%s\",\"iv\":\"%s\","
      "\"ciphertext\":\"aGVsbG8\",\"tag\":\"AAAAAAAAAAAAAAAAAAAAAA\"}";
  static const char iv12[] = "AAAAAAAAAAAAAAAA";
  static const char iv24[] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
  const char *iv = size % 2 == 0 ? iv12 : iv24;
  char *b64 = NULL, *text;
  size_t tlen;

  if (ordo__crypto_b64url_encode(data, size, &b64) != ORDO_OK)
    return;
  tlen = sizeof fmt + strlen(b64) + sizeof iv24;
  if ((text = malloc(tlen)) != NULL) {
    snprintf(text, tlen, fmt, b64, iv);
    check_envelope(text);
    free(text);
  }
  free(b64);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *text;

  fuzz_setup();
  if ((text = malloc(size + 1)) == NULL)
    return 0;
  memcpy(text, data, size);
  text[size] = '\0';
  check_envelope(text);
  free(text);
  check_as_header(data, size);
  return 0;
}

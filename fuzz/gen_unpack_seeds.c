/*
 * gen_unpack_seeds.c — writes the seed envelopes of fuzz_unpack into a
 * directory (fuzz/corpus/unpack/). Not part of the build: envelopes carry
 * random keys and nonces, so the seeds are made once and kept. They are
 * packed as deployed agents pack (ChaCha20-Poly1305-IETF, a 12-byte iv,
 * checked here), plus one with a 16-byte iv that must not open. It leaves
 * alone the seeds it does not write: legacy_iv24_*.json (an earlier ordo's
 * 24-byte-iv XChaCha20 envelopes, which ordo still reads) and
 * didcomm_v1_*.json (copies of tests/vectors/). To remake them, from the
 * repository root with a build in build/:
 *
 *   cc -std=c11 -D_GNU_SOURCE -Iinclude -Isrc -Ifuzz fuzz/gen_unpack_seeds.c \
 *      build/libordo.a $(pkg-config --libs jansson libsodium libcrypto \
 *      libsecp256k1 sqlite3) -lpthread -o /tmp/gen_unpack_seeds
 *   /tmp/gen_unpack_seeds fuzz/corpus/unpack
 */
#include "crypto/crypto.h"
#include "fuzz_unpack_key.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct gen_key {
  unsigned char sk[ORDO__ED25519_SECRET_BYTES];
  char verkey[ORDO__VERKEY_SIZE];
} gen_key;

static const char *dir;

static void die(const char *what) {
  fprintf(stderr, "gen_unpack_seeds: %s\n", what);
  exit(1);
}

static void key(gen_key *k, const char *seed) {
  char did[ORDO__DID_SIZE];
  if (ordo__crypto_did_create(seed, k->sk, did, k->verkey) != ORDO_OK)
    die("did_create");
}

static void put(const char *name, const char *text, size_t len) {
  char path[4096];
  FILE *f;

  snprintf(path, sizeof path, "%s/%s", dir, name);
  if ((f = fopen(path, "wb")) == NULL || fwrite(text, 1, len, f) != len ||
      fclose(f) != 0)
    die(path);
}

/* The number of bytes the base64url string root[key] decodes to. */
static size_t field_len(const char *env, const char *key) {
  json_t *root = json_loads(env, 0, NULL);
  unsigned char *bin;
  size_t len;

  if (root == NULL ||
      ordo__crypto_b64url_decode(json_string_value(json_object_get(root, key)),
                                 &bin, &len) != ORDO_OK)
    die("decode");
  free(bin);
  json_decref(root);
  return len;
}

static char *pack(const char *msg, const gen_key *const *to, size_t n,
                  const gen_key *from) {
  const char *vks[4];
  char *env = NULL;
  for (size_t i = 0; i < n; i++)
    vks[i] = to[i]->verkey;
  if (ordo__crypto_pack(msg, strlen(msg), vks, n, from ? from->sk : NULL,
                        &env) != ORDO_OK)
    die("pack");
  if (field_len(env, "iv") != 12)
    die("pack wrote an iv that is not 12 bytes");
  return env;
}

/* env with its top-level "iv" replaced by len zero bytes. */
static char *with_iv(const char *env, size_t len) {
  json_t *root = json_loads(env, 0, NULL);
  unsigned char zero[64] = {0};
  char *b64, *out;

  if (root == NULL || len > sizeof zero ||
      ordo__crypto_b64url_encode(zero, len, &b64) != ORDO_OK)
    die("iv");
  json_object_set_new(root, "iv", json_string(b64));
  out = json_dumps(root, JSON_COMPACT);
  free(b64);
  json_decref(root);
  return out;
}

/* env with top-level field key re-encoded by edit (flip a byte / pad). */
static char *edit_field(const char *env, const char *key, int pad) {
  json_t *root = json_loads(env, 0, NULL);
  unsigned char *bin;
  size_t len;
  char *b64, *out;

  if (root == NULL ||
      ordo__crypto_b64url_decode(json_string_value(json_object_get(root, key)),
                                 &bin, &len) != ORDO_OK)
    die("decode");
  if (!pad && len > 0)
    bin[0] ^= 1;
  if (ordo__crypto_b64url_encode(bin, len, &b64) != ORDO_OK)
    die("encode");
  if (pad) {
    size_t l = strlen(b64);
    b64 = realloc(b64, l + 4);
    while (l % 4 != 0)
      b64[l++] = '=';
    b64[l] = '\0';
  }
  json_object_set_new(root, key, json_string(b64));
  out = json_dumps(root, JSON_COMPACT);
  free(b64);
  free(bin);
  json_decref(root);
  return out;
}

static void put_header(const char *name, const char *env) {
  json_t *root = json_loads(env, 0, NULL);
  unsigned char *bin;
  size_t len;
  if (root == NULL || ordo__crypto_b64url_decode(
                          json_string_value(json_object_get(root, "protected")),
                          &bin, &len) != ORDO_OK)
    die("header");
  put(name, (const char *)bin, len);
  free(bin);
  json_decref(root);
}

int main(int argc, char **argv) {
  gen_key me, sender, other;
  char *env;

  if (argc != 2)
    die("usage: gen_unpack_seeds DIR");
  dir = argv[1];
  key(&me, FUZZ_UNPACK_RECIPIENT_SEED);
  key(&sender, FUZZ_UNPACK_SENDER_SEED);
  key(&other, FUZZ_UNPACK_OTHER_SEED);
  const gen_key *just_me[] = {&me};
  const gen_key *three[] = {&other, &me, &sender};
  const gen_key *just_other[] = {&other};
  const char *msg =
      "{\"@type\":\"https://didcomm.org/basicmessage/1.0/message\","
      "\"content\":\"hello\"}";

  env = pack(msg, just_me, 1, NULL);
  put("anoncrypt.json", env, strlen(env));
  put_header("header_anoncrypt.json", env);
  char *padded = edit_field(env, "ciphertext", 1);
  put("anoncrypt_padded.json", padded, strlen(padded));
  free(padded);
  free(env);

  env = pack(msg, just_me, 1, &sender);
  put("authcrypt.json", env, strlen(env));
  put_header("header_authcrypt.json", env);
  char *tampered = edit_field(env, "tag", 0);
  put("authcrypt_tampered_tag.json", tampered, strlen(tampered));
  free(tampered);
  char *iv16 = with_iv(env, 16);
  put("authcrypt_iv16.json", iv16, strlen(iv16));
  free(iv16);
  free(env);

  env = pack(msg, three, 3, &sender);
  put("authcrypt_three.json", env, strlen(env));
  free(env);
  env = pack(msg, just_other, 1, NULL);
  put("anoncrypt_not_mine.json", env, strlen(env));
  free(env);
  env = pack("", just_me, 1, &sender);
  put("authcrypt_empty.json", env, strlen(env));
  free(env);
  static const char not_envelope[] =
      "{\"protected\":\"e30\",\"iv\":\"\",\"ciphertext\":\"\",\"tag\":\"\"}";
  put("not_envelope.json", not_envelope, sizeof not_envelope - 1);
  return 0;
}

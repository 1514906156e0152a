/*
 * test_keys.c — DIDs, signing, pack/unpack, secp256k1 and credential
 * definitions through the public API, and the HIPE 0012 acceptance test:
 * DIDs created while a 1025-bit credential-definition keygen runs all finish
 * before it does.
 */
#include "support/support.h"

#include <jansson.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#define RAW_KEY "{\"key\":\"0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20\",\"key_derivation_method\":\"raw\"}"

typedef struct keys_fixture {
  ordo_ctx *ctx;
  char dir[128];
} keys_fixture;


static void open_wallet(keys_fixture *f, const char *id) {
  char cfg[300];
  snprintf(cfg, sizeof(cfg), "{\"id\":\"%s\",\"path\":\"%s\"}", id, f->dir);
  assert_int_equal(support_run(ordo_wallet_create(f->ctx, cfg, RAW_KEY), NULL), ORDO_OK);
  assert_int_equal(support_run(ordo_wallet_open(f->ctx, cfg, RAW_KEY), NULL), ORDO_OK);
}

static int setup(void **state) {
  keys_fixture *f = calloc(1, sizeof(*f));
  snprintf(f->dir, sizeof(f->dir), "/tmp/ordo-test-keys-XXXXXX");
  assert_non_null(mkdtemp(f->dir));
  f->ctx = ordo_ctx_new(NULL);
  assert_non_null(f->ctx);
  open_wallet(f, "w");
  *state = f;
  return 0;
}

static int teardown(void **state) {
  keys_fixture *f = *state;
  ordo_ctx_free(f->ctx);
  char cmd[200];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
  assert_int_equal(system(cmd), 0);
  free(f);
  return 0;
}

static const char *jstr(json_t *o, const char *k) {
  return json_string_value(json_object_get(o, k));
}

static void test_did_lifecycle(void **state) {
  keys_fixture *f = *state;
  /* Indy's test vector: seeded DIDs are reproducible. */
  json_t *d = support_run_json(ordo_did_create(f->ctx, "w",
                                       "{\"seed\":\"000000000000000000000000Trustee1\","
                                       "\"metadata\":\"trustee\"}"));
  assert_string_equal(jstr(d, "did"), "V4SGRU86Z58d6TV7PBUe6f");
  assert_string_equal(jstr(d, "verkey"), "GJ1SzoWzavQYfNL9XkaJdrQejfztN4XqdsiV4ct3LXKL");
  json_decref(d);
  assert_int_equal(support_run(ordo_did_create(f->ctx, "w",
                                       "{\"seed\":\"000000000000000000000000Trustee1\"}"),
                       NULL),
                   ORDO_E_RECORD_DUPLICATE);
  assert_int_equal(support_run(ordo_did_create(f->ctx, "w", "{\"seed\":\"short\"}"), NULL),
                   ORDO_E_BAD_KEY);
  assert_int_equal(support_run(ordo_did_create(f->ctx, "w", "{\"bogus\":1}"), NULL), ORDO_E_INVAL);
  assert_int_equal(support_run(ordo_did_create(f->ctx, "nope", NULL), NULL), ORDO_E_WALLET_NOT_OPEN);
  json_t *r = support_run_json(ordo_did_create(f->ctx, "w", NULL));
  char *did2 = strdup(jstr(r, "did"));
  json_decref(r);

  json_t *g = support_run_json(ordo_did_get(f->ctx, "w", "V4SGRU86Z58d6TV7PBUe6f"));
  assert_string_equal(jstr(g, "metadata"), "trustee");
  json_decref(g);
  assert_int_equal(support_run(ordo_did_set_metadata(f->ctx, "w", "V4SGRU86Z58d6TV7PBUe6f", "x"),
                       NULL), ORDO_OK);
  g = support_run_json(ordo_did_get(f->ctx, "w", "V4SGRU86Z58d6TV7PBUe6f"));
  assert_string_equal(jstr(g, "metadata"), "x");
  json_decref(g);
  assert_int_equal(support_run(ordo_did_get(f->ctx, "w", "NoSuchDid"), NULL), ORDO_E_KEY_NOT_FOUND);

  json_t *l = support_run_json(ordo_did_list(f->ctx, "w"));
  assert_int_equal(json_array_size(json_object_get(l, "dids")), 2);
  json_decref(l);

  /* Rotation: apply without start is refused; start then apply switches. */
  assert_int_equal(support_run(ordo_did_rotate_apply(f->ctx, "w", did2), NULL), ORDO_E_STATE);
  json_t *n = support_run_json(ordo_did_rotate_start(f->ctx, "w", did2, NULL));
  char *next = strdup(jstr(n, "verkey"));
  json_decref(n);
  g = support_run_json(ordo_did_get(f->ctx, "w", did2));
  assert_string_equal(jstr(g, "next_verkey"), next);
  json_decref(g);
  n = support_run_json(ordo_did_rotate_apply(f->ctx, "w", did2));
  assert_string_equal(jstr(n, "verkey"), next);
  json_decref(n);
  g = support_run_json(ordo_did_get(f->ctx, "w", did2));
  assert_string_equal(jstr(g, "verkey"), next);
  assert_null(json_object_get(g, "next_verkey"));
  json_decref(g);
  /* The new key signs. */
  const char msg[] = "rotated";
  assert_int_equal(support_run(ordo_sign(f->ctx, "w", next, msg, sizeof(msg)), NULL), ORDO_OK);
  free(next);
  free(did2);
}

static void test_sign_verify(void **state) {
  keys_fixture *f = *state;
  json_t *d = support_run_json(ordo_did_create(f->ctx, "w", NULL));
  const char *vk = jstr(d, "verkey");
  const char msg[] = "the message";
  ordo_op *op = ordo_sign(f->ctx, "w", vk, msg, sizeof(msg));
  assert_int_equal(ordo_op_wait(op, -1), ORDO_OK);
  const unsigned char *sig;
  size_t len;
  assert_int_equal(ordo_op_result_bytes(op, &sig, &len), ORDO_OK);
  assert_int_equal(len, 64);
  unsigned char bad[64];
  memcpy(bad, sig, 64);
  bad[10] ^= 1;
  json_t *v = support_run_json(ordo_verify(f->ctx, vk, msg, sizeof(msg), sig, len));
  assert_true(json_is_true(json_object_get(v, "valid")));
  json_decref(v);
  v = support_run_json(ordo_verify(f->ctx, vk, msg, sizeof(msg), bad, 64));
  assert_true(json_is_false(json_object_get(v, "valid")));
  json_decref(v);
  v = support_run_json(ordo_verify(f->ctx, vk, "other", 5, sig, len));
  assert_true(json_is_false(json_object_get(v, "valid")));
  json_decref(v);
  ordo_op_release(op);
  assert_int_equal(support_run(ordo_verify(f->ctx, "not-a-key", msg, 3, bad, 64), NULL),
                   ORDO_E_BAD_KEY);
  assert_int_equal(support_run(ordo_sign(f->ctx, "w", "GJ1SzoWzavQYfNL9XkaJdrQejfztN4XqdsiV4ct3LXKL",
                                 msg, 3), NULL),
                   ORDO_E_KEY_NOT_FOUND);
  json_decref(d);
}

static void test_pack_unpack(void **state) {
  keys_fixture *f = *state;
  open_wallet(f, "bob");
  json_t *a = support_run_json(ordo_did_create(f->ctx, "w", NULL));
  json_t *b = support_run_json(ordo_did_create(f->ctx, "bob", NULL));
  json_t *c = support_run_json(ordo_did_create(f->ctx, "bob", NULL));
  char recips[300];
  snprintf(recips, sizeof(recips), "[\"%s\",\"%s\"]", jstr(b, "verkey"), jstr(c, "verkey"));
  const char msg[] = "{\"hello\":\"bob\"}";

  /* authcrypt: bob learns the sender. */
  char *env = NULL;
  assert_int_equal(support_run(ordo_pack(f->ctx, "w", msg, strlen(msg), recips, jstr(a, "verkey")),
                       &env), ORDO_OK);
  json_t *u = support_run_json(ordo_unpack(f->ctx, "bob", env));
  assert_string_equal(jstr(u, "message"), msg);
  assert_string_equal(jstr(u, "sender_verkey"), jstr(a, "verkey"));
  json_decref(u);
  /* The sender's own wallet holds no recipient key. */
  assert_int_equal(support_run(ordo_unpack(f->ctx, "w", env), NULL), ORDO_E_UNPACK);
  /* Tampered ciphertext. */
  json_t *e = json_loads(env, 0, NULL);
  /* The content iv is 12 bytes, as deployed agents write it: 16 base64url
   * characters, unpadded. */
  assert_int_equal(strlen(jstr(e, "iv")), 16);
  char *ct = strdup(jstr(e, "ciphertext"));
  ct[3] = ct[3] == 'A' ? 'B' : 'A';
  json_object_set_new(e, "ciphertext", json_string(ct));
  char *bad = json_dumps(e, JSON_COMPACT);
  assert_int_equal(support_run(ordo_unpack(f->ctx, "bob", bad), NULL), ORDO_E_UNPACK);
  assert_int_equal(support_run(ordo_unpack(f->ctx, "bob", "{not json"), NULL), ORDO_E_UNPACK);
  free(bad);
  free(ct);
  json_decref(e);
  free(env);

  /* anoncrypt: no sender. */
  assert_int_equal(support_run(ordo_pack(f->ctx, "w", msg, strlen(msg), recips, NULL), &env), ORDO_OK);
  u = support_run_json(ordo_unpack(f->ctx, "bob", env));
  assert_string_equal(jstr(u, "message"), msg);
  assert_true(json_is_null(json_object_get(u, "sender_verkey")));
  json_decref(u);
  free(env);
  assert_int_equal(support_run(ordo_pack(f->ctx, "w", msg, 3, "[]", NULL), NULL), ORDO_E_INVAL);
  json_decref(a);
  json_decref(b);
  json_decref(c);
}

/* The two DIDComm v1 envelopes a deployed agent packed (tests/vectors/,
 * verbatim copies of ../shared/vectors/), through the wallet: the recipient
 * key is the seeded Trustee1 DID's. */
#ifndef ORDO_VECTORS_DIR
#error "ORDO_VECTORS_DIR (tests/vectors) comes from tests/CMakeLists.txt"
#endif

static char *read_vector(const char *name) {
  char path[1024];
  snprintf(path, sizeof(path), "%s/%s", ORDO_VECTORS_DIR, name);
  FILE *fp = fopen(path, "rb");
  if (fp == NULL)
    fail_msg("cannot open the vector %s", path);
  char *text = calloc(1, 65536);
  assert_non_null(text);
  size_t n = fread(text, 1, 65535, fp);
  assert_true(n > 0 && feof(fp));
  fclose(fp);
  return text;
}

static void test_unpack_deployed_agent_vectors(void **state) {
  keys_fixture *f = *state;
  open_wallet(f, "bob");
  json_t *d = support_run_json(ordo_did_create(f->ctx, "bob",
                                       "{\"seed\":\"000000000000000000000000Trustee1\"}"));
  assert_string_equal(jstr(d, "verkey"), "GJ1SzoWzavQYfNL9XkaJdrQejfztN4XqdsiV4ct3LXKL");
  json_decref(d);

  char *env = read_vector("didcomm_v1_authcrypt.json");
  json_t *u = support_run_json(ordo_unpack(f->ctx, "bob", env));
  assert_string_equal(jstr(u, "message"),
                      "{\"@type\":\"https://didcomm.org/basicmessage/1.0/message\","
                      "\"content\":\"interop vector, authcrypt\"}");
  assert_string_equal(jstr(u, "recipient_verkey"), "GJ1SzoWzavQYfNL9XkaJdrQejfztN4XqdsiV4ct3LXKL");
  assert_string_equal(jstr(u, "sender_verkey"), "FYmoFw55GeQH7SRFa37dkx1d2dZ3zUF8ckg7wmL7ofN4");
  json_decref(u);
  /* Wallet "w" holds no Trustee1 key. */
  assert_int_equal(support_run(ordo_unpack(f->ctx, "w", env), NULL), ORDO_E_UNPACK);
  /* A 16-byte iv: refused. */
  json_t *e = json_loads(env, 0, NULL);
  json_object_set_new(e, "iv", json_string("AAAAAAAAAAAAAAAAAAAAAA"));
  char *bad = json_dumps(e, JSON_COMPACT);
  assert_int_equal(support_run(ordo_unpack(f->ctx, "bob", bad), NULL), ORDO_E_UNPACK);
  free(bad);
  json_decref(e);
  free(env);

  env = read_vector("didcomm_v1_anoncrypt.json");
  u = support_run_json(ordo_unpack(f->ctx, "bob", env));
  assert_string_equal(jstr(u, "message"),
                      "{\"@type\":\"https://didcomm.org/basicmessage/1.0/message\","
                      "\"content\":\"interop vector, anoncrypt\"}");
  assert_string_equal(jstr(u, "recipient_verkey"), "GJ1SzoWzavQYfNL9XkaJdrQejfztN4XqdsiV4ct3LXKL");
  assert_true(json_is_null(json_object_get(u, "sender_verkey")));
  json_decref(u);
  free(env);
}

static void test_secp256k1(void **state) {
  keys_fixture *f = *state;
  json_t *k = support_run_json(ordo_secp256k1_create(f->ctx, "w"));
  const char *pub = jstr(k, "public_key");
  assert_int_equal(strlen(pub), 66);
  unsigned char digest[32];
  for (int i = 0; i < 32; i++)
    digest[i] = (unsigned char)i;
  json_t *s = support_run_json(ordo_secp256k1_sign(f->ctx, "w", pub, digest));
  const char *sig = jstr(s, "signature");
  assert_int_equal(strlen(sig), 128);
  json_t *v = support_run_json(ordo_secp256k1_verify(f->ctx, pub, digest, sig));
  assert_true(json_is_true(json_object_get(v, "valid")));
  json_decref(v);
  digest[0] ^= 1;
  v = support_run_json(ordo_secp256k1_verify(f->ctx, pub, digest, sig));
  assert_true(json_is_false(json_object_get(v, "valid")));
  json_decref(v);
  assert_int_equal(support_run(ordo_secp256k1_sign(f->ctx, "w", "02zz", digest), NULL), ORDO_E_BAD_KEY);
  /* The secret is in the wallet, encrypted: the record exists, type and all. */
  json_t *cnt = support_run_json(ordo_record_count(f->ctx, "w", "ordo:secp256k1", "{}"));
  assert_int_equal(json_integer_value(json_object_get(cnt, "count")), 1);
  json_decref(cnt);
  json_decref(s);
  json_decref(k);
}

static void test_cred_def_small(void **state) {
  keys_fixture *f = *state;
  json_t *cd = support_run_json(ordo_cred_def_create(
      f->ctx, "w", "{\"attributes\":[\"Name\",\"Age\"],\"bits\":256,\"tag\":\"t1\"}"));
  json_t *pk = json_object_get(cd, "public_key");
  json_t *r = json_object_get(pk, "r");
  assert_non_null(json_object_get(r, "name"));
  assert_non_null(json_object_get(r, "age"));
  assert_non_null(json_object_get(r, "master_secret"));
  json_decref(cd);
  assert_int_equal(support_run(ordo_cred_def_create(f->ctx, "w",
                                            "{\"attributes\":[\"a\",\"A \"],\"bits\":256}"),
                       NULL),
                   ORDO_E_INVAL);
  assert_int_equal(support_run(ordo_cred_def_create(f->ctx, "w", "{\"attributes\":[]}"), NULL),
                   ORDO_E_INVAL);
  assert_int_equal(support_run(ordo_cred_def_create(f->ctx, "w",
                                            "{\"attributes\":[\"a\"],\"bits\":8}"), NULL),
                   ORDO_E_INVAL);
  json_t *cnt = support_run_json(ordo_record_count(f->ctx, "w", "ordo:cred_def", "{}"));
  assert_int_equal(json_integer_value(json_object_get(cnt, "count")), 1);
  json_decref(cnt);
}

/* ---- HIPE 0012 acceptance ----------------------------------------------------- */

#define HIPE_DIDS 100

typedef struct order_log {
  atomic_int seq;           /* completions so far */
  atomic_int keygen_at;     /* position at which the keygen finished */
  atomic_int last_did_at;   /* position of the last DID */
  atomic_int dids_ok;
  support_latch done;
} order_log;

static void did_done(ordo_op *op, void *ud) {
  order_log *l = ud;
  int pos = atomic_fetch_add(&l->seq, 1);
  if (ordo_op_status(op) == ORDO_OK)
    atomic_fetch_add(&l->dids_ok, 1);
  int prev = atomic_load(&l->last_did_at);
  while (pos > prev && !atomic_compare_exchange_weak(&l->last_did_at, &prev, pos))
    ;
  support_latch_count_down(&l->done);
}

static void keygen_done(ordo_op *op, void *ud) {
  order_log *l = ud;
  (void)op;
  atomic_store(&l->keygen_at, atomic_fetch_add(&l->seq, 1));
  support_latch_count_down(&l->done);
}

static void test_hipe_acceptance(void **state) {
  keys_fixture *f = *state;
  order_log l;
  atomic_init(&l.seq, 0);
  atomic_init(&l.keygen_at, -1);
  atomic_init(&l.last_did_at, -1);
  atomic_init(&l.dids_ok, 0);
  support_latch_init(&l.done, HIPE_DIDS + 1);
  ordo_op *kg = ordo_cred_def_create(f->ctx, "w",
                                     "{\"attributes\":[\"name\",\"age\",\"sex\",\"height\"],"
                                     "\"bits\":1025}");
  assert_int_equal(ordo_op_then(kg, keygen_done, &l), ORDO_OK);
  for (int i = 0; i < HIPE_DIDS; i++) {
    ordo_op *op = ordo_did_create(f->ctx, "w", NULL);
    assert_int_equal(ordo_op_then(op, did_done, &l), ORDO_OK);
    ordo_op_release(op);
  }
  support_latch_wait(&l.done);
  assert_int_equal(ordo_op_status(kg), ORDO_OK);
  assert_int_equal(atomic_load(&l.dids_ok), HIPE_DIDS);
  /* The acceptance criterion: every DID finished before the keygen. */
  assert_true(atomic_load(&l.last_did_at) < atomic_load(&l.keygen_at));
  ordo_op_release(kg);
  support_latch_destroy(&l.done);
}

/* Cancel a running 1025-bit keygen: it ends canceled, and nothing is stored. */
static void test_cred_def_cancel(void **state) {
  keys_fixture *f = *state;
  ordo_op *kg = ordo_cred_def_create(f->ctx, "w", "{\"attributes\":[\"a\"],\"bits\":2048}");
  /* Wait until it runs on the heavy class (busy > 0), then cancel. */
  while (support_metric(f->ctx, "heavy", "busy") == 0 && ordo_op_wait(kg, 0) == ORDO_E_TIMEOUT)
    sched_yield();
  int rc = ordo_op_cancel(kg);
  assert_true(rc == ORDO_E_BUSY || rc == ORDO_OK);
  assert_int_equal(ordo_op_wait(kg, -1), ORDO_E_CANCELED);
  ordo_op_release(kg);
  json_t *cnt = support_run_json(ordo_record_count(f->ctx, "w", "ordo:cred_def", "{}"));
  assert_int_equal(json_integer_value(json_object_get(cnt, "count")), 0);
  json_decref(cnt);
}

/* ---- no secret in an error message -------------------------------------- */

/* Every call that takes a seed or options, given JSON that breaks at the
 * secret: refused, and no message quotes it. (A verkey given to sign is
 * public: messages may name it.) */
static void test_no_secret_in_messages(void **state) {
  keys_fixture *f = *state;
  json_t *d;
  assert_int_equal(support_run_no_marker(ordo_did_create(f->ctx, "w", SUPPORT_BAD_WITH_MARKER),
                                 "did create options"), ORDO_E_JSON);
  d = support_run_json(ordo_did_create(f->ctx, "w", NULL));
  assert_int_equal(support_run_no_marker(ordo_did_rotate_start(f->ctx, "w", jstr(d, "did"),
                                                       SUPPORT_BAD_WITH_MARKER),
                                 "rotate options"), ORDO_E_JSON);
  assert_int_equal(support_run_no_marker(ordo_pack(f->ctx, "w", "m", 1, SUPPORT_BAD_WITH_MARKER,
                                           jstr(d, "verkey")),
                                 "pack recipients"), ORDO_E_JSON);
  assert_int_equal(support_run_no_marker(ordo_unpack(f->ctx, "w", SUPPORT_BAD_WITH_MARKER),
                                 "unpack envelope"), ORDO_E_UNPACK);
  assert_int_equal(support_run_no_marker(ordo_cred_def_create(f->ctx, "w", SUPPORT_BAD_WITH_MARKER),
                                 "cred def options"), ORDO_E_JSON);
  json_decref(d);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_did_lifecycle, setup, teardown),
      cmocka_unit_test_setup_teardown(test_sign_verify, setup, teardown),
      cmocka_unit_test_setup_teardown(test_pack_unpack, setup, teardown),
      cmocka_unit_test_setup_teardown(test_unpack_deployed_agent_vectors, setup, teardown),
      cmocka_unit_test_setup_teardown(test_secp256k1, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cred_def_small, setup, teardown),
      cmocka_unit_test_setup_teardown(test_hipe_acceptance, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cred_def_cancel, setup, teardown),
      cmocka_unit_test_setup_teardown(test_no_secret_in_messages, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

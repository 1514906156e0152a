/*
 * test_ledger.c — tests of the ledger module: Sawtooth transactions, batches
 * and BatchLists built, encoded, decoded and validated; the wire format
 * against hand-made protobuf bytes; every kind of tampering; garbage; the
 * intkey and ordo-rw families.
 *
 * The protobuf writer here (pb_*) is written from the protobuf encoding
 * rules and DESIGN.md's field numbers, independent of protoc-c, so a wrong
 * field number in sawtooth.proto shows up as a byte difference. It also lets
 * the tests forge batches a correct builder would never make.
 */
#include "ordo.h"
#include "crypto/crypto.h"
#include "ledger/ledger.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* cmocka.h needs these first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

/* A string literal and its length, without the NUL. */
#define LIT(s) s, sizeof(s) - 1

/* Two fixed test keys (not secret anywhere). */
static const char *const KEY_A =
    "2f1e7b7a130d7ba9da0068b3bb0ba1d79e7e77110302c9f746c3c2a63fe40088";
static const char *const KEY_B =
    "0a6ff3e38c3ca7e1f5bf9d5b0b5b1f4c6b1f13e8bcd6a4d3de8f0f0b9e8a7c61";

/* ------------------------------------------------------------------------ */
/* A tiny protobuf writer                                                    */
/* ------------------------------------------------------------------------ */

typedef struct pb {
  unsigned char b[8192];
  size_t n;
} pb;

static void pb_varint(pb *p, uint64_t v) {
  do {
    assert_true(p->n < sizeof p->b);
    p->b[p->n++] = (unsigned char)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
    v >>= 7;
  } while (v);
}

/* Field `field`, wire type 2 (length-delimited). */
static void pb_bytes(pb *p, unsigned field, const void *d, size_t len) {
  pb_varint(p, (uint64_t)field << 3 | 2);
  pb_varint(p, len);
  assert_true(p->n + len <= sizeof p->b);
  memcpy(p->b + p->n, d, len);
  p->n += len;
}

static void pb_str(pb *p, unsigned field, const char *s) {
  pb_bytes(p, field, s, strlen(s));
}

/* Batch (inside a BatchList, field 1) signed with sk_hex: header lists ids,
 * carries the given transactions (each already a Transaction message). */
static void pb_batch(pb *list, const char *sk_hex, const char *pub,
                     const char *const *ids, size_t nids, const pb *txns,
                     size_t ntxns, const char *bad_sig) {
  unsigned char sk[ORDO__SECP256K1_SECRET_BYTES], sig[64];
  char sighex[129];
  pb hdr = {.n = 0}, batch = {.n = 0};
  size_t i;

  pb_str(&hdr, 1, pub);
  for (i = 0; i < nids; i++)
    pb_str(&hdr, 2, ids[i]);
  assert_int_equal(ordo__crypto_secp256k1_seckey_from_hex(sk_hex, sk), 0);
  assert_int_equal(ordo__crypto_secp256k1_sign_sha256(sk, hdr.b, hdr.n, sig),
                   0);
  ordo__crypto_memzero(sk, sizeof sk);
  assert_int_equal(ordo__crypto_hex_encode(sig, 64, sighex, sizeof sighex), 0);
  pb_bytes(&batch, 1, hdr.b, hdr.n);
  pb_str(&batch, 2, bad_sig ? bad_sig : sighex);
  for (i = 0; i < ntxns; i++)
    pb_bytes(&batch, 3, txns[i].b, txns[i].n);
  pb_bytes(list, 1, batch.b, batch.n);
}

/* A Transaction message from a built txn, optionally with another id or
 * payload. */
static void pb_txn(pb *out, const ordo_ledger_txn *t, const char *id,
                   const void *payload, size_t plen) {
  size_t hlen, len;
  const unsigned char *h = ordo_ledger_txn_header_bytes(t, &hlen);
  const unsigned char *pl = ordo_ledger_txn_payload(t, &len);
  out->n = 0;
  pb_bytes(out, 1, h, hlen);
  pb_str(out, 2, id ? id : ordo_ledger_txn_id(t));
  if (payload == NULL) {
    payload = pl;
    plen = len;
  }
  if (plen > 0)
    pb_bytes(out, 3, payload, plen);
}

/* ------------------------------------------------------------------------ */
/* A map state                                                               */
/* ------------------------------------------------------------------------ */

typedef struct mentry {
  char addr[ORDO_LEDGER_ADDRESS_SIZE];
  unsigned char v[256];
  size_t len;
} mentry;

typedef struct mstate {
  mentry e[32];
  size_t n;
  int sets;
} mstate;

static int m_get(void *ud, const char *addr, const unsigned char **v,
                 size_t *len) {
  mstate *m = ud;
  size_t i;
  for (i = 0; i < m->n; i++)
    if (strcmp(m->e[i].addr, addr) == 0) {
      *v = m->e[i].v;
      *len = m->e[i].len;
      return ORDO_OK;
    }
  return ORDO_E_NOT_FOUND;
}

static int m_set(void *ud, const char *addr, const unsigned char *v,
                 size_t len) {
  mstate *m = ud;
  size_t i;
  assert_true(len <= sizeof m->e[0].v);
  for (i = 0; i < m->n && strcmp(m->e[i].addr, addr) != 0; i++)
    ;
  if (i == m->n) {
    assert_true(m->n < 32);
    m->n++;
    snprintf(m->e[i].addr, sizeof m->e[i].addr, "%s", addr);
  }
  memcpy(m->e[i].v, v, len);
  m->e[i].len = len;
  m->sets++;
  return ORDO_OK;
}

static ordo_ledger_state mstate_iface(mstate *m) {
  ordo_ledger_state s = {m_get, m_set, m};
  return s;
}

/* Same addresses with the same values, in any order? */
static int mstate_equal(const mstate *a, const mstate *b) {
  size_t i, j;
  if (a->n != b->n)
    return 0;
  for (i = 0; i < a->n; i++) {
    for (j = 0; j < b->n && strcmp(a->e[i].addr, b->e[j].addr) != 0; j++)
      ;
    if (j == b->n || a->e[i].len != b->e[j].len ||
        memcmp(a->e[i].v, b->e[j].v, a->e[i].len) != 0)
      return 0;
  }
  return 1;
}

/* ------------------------------------------------------------------------ */
/* Builders                                                                  */
/* ------------------------------------------------------------------------ */

static ordo_ledger_signer *signer(const char *hex) {
  ordo_ledger_signer *s = NULL;
  assert_int_equal(ordo_ledger_signer_new(hex, &s), ORDO_OK);
  return s;
}

/* An intkey txn setting name to value, signed by s for batcher (NULL: s). */
static ordo_ledger_txn *intkey_txn(const ordo_ledger_signer *s,
                                   const char *batcher, const char *name,
                                   unsigned value) {
  char addr[ORDO_LEDGER_ADDRESS_SIZE];
  const char *addrs[1] = {addr};
  unsigned char *pl = NULL;
  size_t plen = 0;
  ordo_ledger_txn *t = NULL;
  ordo_ledger_txn_spec spec = {0};

  assert_int_equal(ordo_ledger_intkey_address(name, addr), ORDO_OK);
  assert_int_equal(ordo_ledger_intkey_encode(ORDO_LEDGER_INTKEY_SET, name,
                                             value, &pl, &plen),
                   ORDO_OK);
  spec.family_name = ORDO_LEDGER_INTKEY_FAMILY;
  spec.family_version = ORDO_LEDGER_INTKEY_VERSION;
  spec.inputs = addrs;
  spec.ninputs = 1;
  spec.outputs = addrs;
  spec.noutputs = 1;
  spec.payload = pl;
  spec.payload_len = plen;
  assert_int_equal(ordo_ledger_txn_build(s, batcher, &spec, &t), ORDO_OK);
  free(pl);
  return t;
}

/* Decode and validate; the code of whichever fails first. */
static int decode_validate(const void *d, size_t n) {
  ordo_ledger_batchlist *bl = NULL;
  int rc = ordo_ledger_batchlist_decode(d, n, &bl);
  if (rc == ORDO_OK) {
    rc = ordo_ledger_batchlist_validate(bl);
    ordo_ledger_batchlist_free(bl);
  } else {
    assert_null(bl);
  }
  return rc;
}

static void assert_message_has(const char *needle) {
  const char *m = ordo_last_error_message();
  if (strstr(m, needle) == NULL)
    fail_msg("message \"%s\" lacks \"%s\"", m, needle);
}

/* ------------------------------------------------------------------------ */
/* Tests                                                                     */
/* ------------------------------------------------------------------------ */

static void test_namespaces_and_addresses(void **st) {
  unsigned char h[ORDO__SHA512_BYTES];
  char ns[ORDO_LEDGER_NAMESPACE_SIZE], addr[ORDO_LEDGER_ADDRESS_SIZE];
  (void)st;

  /* sha512("intkey") really starts with 1c f1 26. */
  assert_int_equal(ordo__crypto_sha512("intkey", 6, h), 0);
  assert_int_equal(h[0], 0x1c);
  assert_int_equal(h[1], 0xf1);
  assert_int_equal(h[2], 0x26);
  assert_int_equal(ordo_ledger_namespace("intkey", ns), ORDO_OK);
  assert_string_equal(ns, ORDO_LEDGER_INTKEY_NAMESPACE);
  /* Golden values from Python's hashlib. */
  assert_int_equal(ordo_ledger_intkey_address("foo", addr), ORDO_OK);
  assert_string_equal(addr, "1cf1266e282c41be5e4254d8820772c5518a2c5a8c0c7f7e"
                            "da19594a7eb539453e1ed7");
  assert_int_equal(strlen(addr), ORDO_LEDGER_ADDRESS_LEN);
  assert_int_equal(ordo_ledger_namespace("ordo-rw", ns), ORDO_OK);
  assert_string_equal(ns, "df8441");
  assert_int_equal(ordo_ledger_rw_address("a", addr), ORDO_OK);
  assert_string_equal(addr, "df844102860c652bf08d560252aa5e74210546f369fbbbce"
                            "8c12cfc7957b2652fe9a75");
  assert_int_equal(ordo_ledger_address("abc", "x", addr), ORDO_E_INVAL);
}

static void test_signer(void **st) {
  ordo_ledger_signer *s = NULL, *r = NULL;
  (void)st;
  assert_int_equal(ordo_ledger_signer_new("zz", &s), ORDO_E_BAD_KEY);
  assert_null(s);
  assert_int_equal(ordo_ledger_signer_new(NULL, NULL), ORDO_E_INVAL);
  s = signer(KEY_A);
  r = signer(NULL);
  assert_int_equal(strlen(ordo_ledger_signer_public_key(s)), 66);
  assert_string_not_equal(ordo_ledger_signer_public_key(s),
                          ordo_ledger_signer_public_key(r));
  ordo_ledger_signer_free(s);
  ordo_ledger_signer_free(r);
  ordo_ledger_signer_free(NULL);
}

static void test_roundtrip(void **st) {
  ordo_ledger_signer *a = signer(KEY_A), *b = signer(KEY_B);
  ordo_ledger_txn *t[3];
  ordo_ledger_batch *batch[2] = {NULL, NULL};
  ordo_ledger_batchlist *bl = NULL;
  ordo_ledger_txn_header h;
  unsigned char *buf = NULL;
  const unsigned char *p1, *p2;
  size_t len = 0, l1, l2, i;
  (void)st;

  t[0] = intkey_txn(a, NULL, "alpha", 1);
  t[1] = intkey_txn(a, NULL, "beta", 2);
  /* Signed by A, batched by B: allowed, and the usual Sawtooth case is
   * signer == batcher. */
  t[2] = intkey_txn(a, ordo_ledger_signer_public_key(b), "gamma", 3);
  assert_int_equal(ordo_ledger_batch_build(a, t, 2, &batch[0]), ORDO_OK);
  assert_int_equal(ordo_ledger_batch_build(b, &t[2], 1, &batch[1]), ORDO_OK);
  assert_int_equal(ordo_ledger_batch_txn_count(batch[0]), 2);
  assert_int_equal(strlen(ordo_ledger_batch_id(batch[0])), 128);
  assert_int_equal(ordo_ledger_batchlist_encode(
                       (const ordo_ledger_batch *const *)batch, 2, &buf, &len),
                   ORDO_OK);
  assert_int_equal(ordo_ledger_batchlist_decode(buf, len, &bl), ORDO_OK);
  assert_int_equal(ordo_ledger_batchlist_validate(bl), ORDO_OK);
  assert_int_equal(ordo_ledger_batchlist_count(bl), 2);
  for (i = 0; i < 2; i++) {
    const ordo_ledger_batch *d = ordo_ledger_batchlist_batch(bl, i);
    assert_string_equal(ordo_ledger_batch_id(d),
                        ordo_ledger_batch_id(batch[i]));
    assert_string_equal(ordo_ledger_batch_signer(d),
                        ordo_ledger_signer_public_key(i ? b : a));
  }
  {
    const ordo_ledger_batch *d = ordo_ledger_batchlist_batch(bl, 0);
    const ordo_ledger_txn *dt = ordo_ledger_batch_txn(d, 1);
    assert_string_equal(ordo_ledger_txn_id(dt), ordo_ledger_txn_id(t[1]));
    p1 = ordo_ledger_txn_payload(dt, &l1);
    p2 = ordo_ledger_txn_payload(t[1], &l2);
    assert_int_equal(l1, l2);
    assert_memory_equal(p1, p2, l1);
    ordo_ledger_txn_header_get(dt, &h);
    assert_string_equal(h.family_name, "intkey");
    assert_string_equal(h.family_version, "1.0");
    assert_string_equal(h.signer_public_key, ordo_ledger_signer_public_key(a));
    assert_string_equal(h.batcher_public_key,
                        ordo_ledger_signer_public_key(a));
    assert_int_equal(h.ninputs, 1);
    assert_int_equal(h.noutputs, 1);
    assert_int_equal(strlen(h.nonce), 32);
    assert_int_equal(strlen(h.payload_sha512), 128);
    assert_null(ordo_ledger_batch_txn(d, 2));
  }
  /* Random nonces: the same txn built twice has two ids. */
  {
    ordo_ledger_txn *again = intkey_txn(a, NULL, "alpha", 1);
    assert_string_not_equal(ordo_ledger_txn_id(again),
                            ordo_ledger_txn_id(t[0]));
    ordo_ledger_txn_free(again);
  }
  ordo_ledger_batchlist_free(bl);
  free(buf);
  /* An empty list encodes (to nothing) and decodes, but is not valid. */
  assert_int_equal(ordo_ledger_batchlist_encode(NULL, 0, &buf, &len), ORDO_OK);
  assert_int_equal(len, 0);
  assert_int_equal(decode_validate(buf, len), ORDO_E_LEDGER_EMPTY);
  free(buf);
  for (i = 0; i < 3; i++)
    ordo_ledger_txn_free(t[i]);
  ordo_ledger_batch_free(batch[0]);
  ordo_ledger_batch_free(batch[1]);
  ordo_ledger_signer_free(a);
  ordo_ledger_signer_free(b);
}

/* The bytes protoc-c writes are the bytes the field numbers say. */
static void test_wire_known_answer(void **st) {
  ordo_ledger_signer *a = signer(KEY_A);
  const char *pub = ordo_ledger_signer_public_key(a);
  const char *in[2] = {"1cf126aa", "1cf126bb"}, *outs[1] = {"1cf126cc"};
  const char *deps[1] = {"00ff"};
  ordo_ledger_txn_spec spec = {0};
  ordo_ledger_txn *t = NULL;
  ordo_ledger_batch *b = NULL;
  unsigned char h[ORDO__SHA512_BYTES], *list = NULL;
  char hash[129];
  pb want = {.n = 0}, tx = {.n = 0}, wl = {.n = 0};
  const unsigned char *got;
  size_t glen, llen;
  (void)st;

  spec.family_name = "intkey";
  spec.family_version = "1.0";
  spec.inputs = in;
  spec.ninputs = 2;
  spec.outputs = outs;
  spec.noutputs = 1;
  spec.dependencies = deps;
  spec.ndependencies = 1;
  spec.payload = "xyz";
  spec.payload_len = 3;
  spec.nonce = "n0";
  assert_int_equal(ordo_ledger_txn_build(a, NULL, &spec, &t), ORDO_OK);

  assert_int_equal(ordo__crypto_sha512("xyz", 3, h), 0);
  assert_int_equal(ordo__crypto_hex_encode(h, 64, hash, sizeof hash), 0);
  pb_str(&want, 1, pub);
  pb_str(&want, 2, "00ff");
  pb_str(&want, 3, "intkey");
  pb_str(&want, 4, "1.0");
  pb_str(&want, 5, "1cf126aa");
  pb_str(&want, 5, "1cf126bb");
  pb_str(&want, 6, "n0");
  pb_str(&want, 7, "1cf126cc");
  pb_str(&want, 9, hash);
  pb_str(&want, 10, pub);
  got = ordo_ledger_txn_header_bytes(t, &glen);
  assert_int_equal(glen, want.n);
  assert_memory_equal(got, want.b, glen);
  /* The first byte is field 1, wire type 2: 0x0a; field 10 is 0x52. */
  assert_int_equal(got[0], 0x0a);

  /* A signature is deterministic (RFC 6979): the same header, the same id. */
  {
    ordo_ledger_txn *t2 = NULL;
    assert_int_equal(ordo_ledger_txn_build(a, NULL, &spec, &t2), ORDO_OK);
    assert_string_equal(ordo_ledger_txn_id(t), ordo_ledger_txn_id(t2));
    ordo_ledger_txn_free(t2);
  }

  /* A whole BatchList of one batch, byte for byte. */
  assert_int_equal(ordo_ledger_batch_build(a, &t, 1, &b), ORDO_OK);
  {
    const char *ids[1] = {ordo_ledger_txn_id(t)};
    pb_txn(&tx, t, NULL, NULL, 0);
    pb_batch(&wl, KEY_A, pub, ids, 1, &tx, 1, NULL);
  }
  assert_int_equal(ordo_ledger_batchlist_encode(
                       (const ordo_ledger_batch *const *)&b, 1, &list, &llen),
                   ORDO_OK);
  assert_int_equal(llen, wl.n);
  assert_memory_equal(list, wl.b, llen);
  assert_int_equal(decode_validate(wl.b, wl.n), ORDO_OK);
  free(list);
  ordo_ledger_batch_free(b);
  ordo_ledger_txn_free(t);
  ordo_ledger_signer_free(a);
}

static void test_tampering(void **st) {
  ordo_ledger_signer *a = signer(KEY_A), *b = signer(KEY_B);
  const char *pa = ordo_ledger_signer_public_key(a);
  ordo_ledger_txn *t1 = intkey_txn(a, NULL, "one", 1);
  ordo_ledger_txn *t2 = intkey_txn(a, NULL, "two", 2);
  ordo_ledger_txn *tb = intkey_txn(a, ordo_ledger_signer_public_key(b),
                                   "three", 3);
  ordo_ledger_batch *batch = NULL;
  const char *ids[2] = {ordo_ledger_txn_id(t1), ordo_ledger_txn_id(t2)};
  const char *rev[2] = {ids[1], ids[0]};
  pb tx[2], list;
  char badid[129], badbatch[129];
  unsigned char payload[64];
  const unsigned char *pl;
  size_t plen;
  (void)st;

  /* Baseline: the forged-by-hand but correct batch validates. */
  pb_txn(&tx[0], t1, NULL, NULL, 0);
  pb_txn(&tx[1], t2, NULL, NULL, 0);
  list.n = 0;
  pb_batch(&list, KEY_A, pa, ids, 2, tx, 2, NULL);
  assert_int_equal(decode_validate(list.b, list.n), ORDO_OK);

  /* Flip a payload byte: the hash no longer matches. */
  pl = ordo_ledger_txn_payload(t2, &plen);
  assert_true(plen <= sizeof payload);
  memcpy(payload, pl, plen);
  payload[plen - 1] ^= 1;
  pb_txn(&tx[1], t2, NULL, payload, plen);
  list.n = 0;
  pb_batch(&list, KEY_A, pa, ids, 2, tx, 2, NULL);
  assert_int_equal(decode_validate(list.b, list.n), ORDO_E_LEDGER_PAYLOAD_HASH);
  assert_message_has("batch 0 txn 1");
  assert_message_has("payload_sha512");

  /* Flip a hex digit of a txn signature (and list that id): bad signature. */
  snprintf(badid, sizeof badid, "%s", ids[1]);
  badid[10] = badid[10] == '0' ? '1' : '0';
  {
    const char *bids[2] = {ids[0], badid};
    pb_txn(&tx[1], t2, badid, NULL, 0);
    list.n = 0;
    pb_batch(&list, KEY_A, pa, bids, 2, tx, 2, NULL);
  }
  assert_int_equal(decode_validate(list.b, list.n), ORDO_E_LEDGER_SIGNATURE);
  assert_message_has("batch 0 txn 1");

  /* Flip a hex digit of the batch signature. */
  pb_txn(&tx[1], t2, NULL, NULL, 0);
  assert_int_equal(ordo_ledger_batch_build(a, (ordo_ledger_txn *[]){t1, t2}, 2,
                                           &batch),
                   ORDO_OK);
  snprintf(badbatch, sizeof badbatch, "%s", ordo_ledger_batch_id(batch));
  badbatch[127] = badbatch[127] == 'a' ? 'b' : 'a';
  list.n = 0;
  pb_batch(&list, KEY_A, pa, ids, 2, tx, 2, badbatch);
  assert_int_equal(decode_validate(list.b, list.n), ORDO_E_LEDGER_SIGNATURE);
  assert_message_has("batch 0 (");
  /* Not hex at all. */
  badbatch[0] = 'x';
  list.n = 0;
  pb_batch(&list, KEY_A, pa, ids, 2, tx, 2, badbatch);
  assert_int_equal(decode_validate(list.b, list.n), ORDO_E_LEDGER_SIGNATURE);
  assert_message_has("128 hex digits");

  /* Reorder the transactions (ids in the header stay in order). */
  {
    pb swapped[2] = {tx[1], tx[0]};
    list.n = 0;
    pb_batch(&list, KEY_A, pa, ids, 2, swapped, 2, NULL);
    assert_int_equal(decode_validate(list.b, list.n), ORDO_E_LEDGER_TXN_IDS);
    assert_message_has("transaction_ids[0]");
  }
  /* Header in the other order: the same. One id too few: too. */
  list.n = 0;
  pb_batch(&list, KEY_A, pa, rev, 2, tx, 2, NULL);
  assert_int_equal(decode_validate(list.b, list.n), ORDO_E_LEDGER_TXN_IDS);
  list.n = 0;
  pb_batch(&list, KEY_A, pa, ids, 1, tx, 2, NULL);
  assert_int_equal(decode_validate(list.b, list.n), ORDO_E_LEDGER_TXN_IDS);
  assert_message_has("lists 1 transaction ids");

  /* A txn whose batcher is B, in a batch signed by A. The builder refuses
   * it; a forged one is caught by validation. */
  {
    ordo_ledger_batch *nb = NULL;
    const char *tids[1] = {ordo_ledger_txn_id(tb)};
    assert_int_equal(ordo_ledger_batch_build(a, &tb, 1, &nb),
                     ORDO_E_LEDGER_BATCHER);
    assert_null(nb);
    pb_txn(&tx[0], tb, NULL, NULL, 0);
    list.n = 0;
    pb_batch(&list, KEY_A, pa, tids, 1, tx, 1, NULL);
    assert_int_equal(decode_validate(list.b, list.n), ORDO_E_LEDGER_BATCHER);
    assert_message_has("batch 0 txn 0");
  }

  /* The batch signed by a key other than the one its header names. */
  pb_txn(&tx[0], t1, NULL, NULL, 0);
  list.n = 0;
  pb_batch(&list, KEY_B, pa, ids, 2, tx, 2, NULL);
  assert_int_equal(decode_validate(list.b, list.n), ORDO_E_LEDGER_SIGNATURE);
  /* A signer key that is no key. */
  list.n = 0;
  pb_batch(&list, KEY_A, "02abcd", ids, 2, tx, 2, NULL);
  assert_int_equal(decode_validate(list.b, list.n), ORDO_E_LEDGER_SIGNATURE);
  assert_message_has("not a compressed secp256k1 key");
  /* A batch without transactions; the second batch named in the message. */
  list.n = 0;
  pb_batch(&list, KEY_A, pa, ids, 2, tx, 2, NULL);
  pb_batch(&list, KEY_A, pa, NULL, 0, NULL, 0, NULL);
  assert_int_equal(decode_validate(list.b, list.n), ORDO_E_LEDGER_EMPTY);
  assert_message_has("batch 1");

  ordo_ledger_batch_free(batch);
  ordo_ledger_txn_free(t1);
  ordo_ledger_txn_free(t2);
  ordo_ledger_txn_free(tb);
  ordo_ledger_signer_free(a);
  ordo_ledger_signer_free(b);
}

static int documented_code(int rc) {
  return rc == ORDO_OK || rc == ORDO_E_LEDGER_DECODE ||
         rc == ORDO_E_LEDGER_SIGNATURE || rc == ORDO_E_LEDGER_PAYLOAD_HASH ||
         rc == ORDO_E_LEDGER_TXN_IDS || rc == ORDO_E_LEDGER_BATCHER ||
         rc == ORDO_E_LEDGER_EMPTY;
}

static void test_garbage(void **st) {
  ordo_ledger_signer *a = signer(KEY_A);
  ordo_ledger_txn *t = intkey_txn(a, NULL, "g", 7);
  ordo_ledger_batch *b = NULL;
  ordo_ledger_batchlist *bl = (ordo_ledger_batchlist *)&bl;
  unsigned char *buf = NULL, junk[512];
  size_t len = 0, i, k;
  uint32_t x = 12345;
  pb list = {.n = 0};
  (void)st;

  assert_int_equal(ordo_ledger_batchlist_decode("\xff\xff\xff", 3, &bl),
                   ORDO_E_LEDGER_DECODE);
  assert_null(bl);
  assert_int_equal(ordo_ledger_batchlist_decode(NULL, 5, &bl), ORDO_E_INVAL);
  /* A batch whose header bytes are not a BatchHeader. */
  {
    pb batch = {.n = 0};
    pb_bytes(&batch, 1, "\x0a\x05zz", 4); /* length 5, only 2 bytes follow */
    pb_str(&batch, 2, "ab");
    pb_bytes(&list, 1, batch.b, batch.n);
    assert_int_equal(decode_validate(list.b, list.n), ORDO_E_LEDGER_DECODE);
    assert_message_has("not a BatchHeader");
  }

  assert_int_equal(ordo_ledger_batch_build(a, &t, 1, &b), ORDO_OK);
  assert_int_equal(ordo_ledger_batchlist_encode(
                       (const ordo_ledger_batch *const *)&b, 1, &buf, &len),
                   ORDO_OK);
  /* Every truncation and every single-byte change: an answer, never a
   * crash, and only a documented code. */
  for (i = 0; i < len; i++)
    assert_true(documented_code(decode_validate(buf, i)));
  for (i = 0; i < len; i++) {
    unsigned char *c = malloc(len);
    memcpy(c, buf, len);
    c[i] ^= 0x41;
    assert_true(documented_code(decode_validate(c, len)));
    free(c);
  }
  /* Random bytes. */
  for (k = 0; k < 2000; k++) {
    size_t n = k % sizeof junk;
    for (i = 0; i < n; i++) {
      x = x * 1103515245u + 12345u;
      junk[i] = (unsigned char)(x >> 16);
    }
    assert_true(documented_code(decode_validate(junk, n)));
  }
  free(buf);
  ordo_ledger_batch_free(b);
  ordo_ledger_txn_free(t);
  ordo_ledger_signer_free(a);
}

static void test_intkey_cbor(void **st) {
  ordo_ledger_intkey_payload p;
  unsigned char *buf = NULL;
  size_t len = 0;
  (void)st;

  assert_int_equal(ordo_ledger_intkey_encode(ORDO_LEDGER_INTKEY_INC, "k1",
                                             4294967295u, &buf, &len),
                   ORDO_OK);
  /* A map of 3 pairs, first key the text "Verb". */
  assert_int_equal(buf[0], 0xa3);
  assert_memory_equal(buf + 1, "\x64Verb", 5);
  /* ... and the value in its shortest form, 4 bytes: 1a ff ff ff ff. */
  assert_int_equal(len, 1 + 5 + 4 + 5 + 3 + 6 + 5);
  assert_memory_equal(buf + len - 5, "\x1a\xff\xff\xff\xff", 5);
  assert_int_equal(ordo_ledger_intkey_decode(buf, len, &p), ORDO_OK);
  assert_int_equal(p.verb, ORDO_LEDGER_INTKEY_INC);
  assert_string_equal(p.name, "k1");
  assert_int_equal(p.value, 4294967295u);
  ordo_ledger_intkey_payload_clear(&p);
  /* Trailing bytes. */
  buf = realloc(buf, len + 1);
  buf[len] = 0;
  assert_int_equal(ordo_ledger_intkey_decode(buf, len + 1, &p),
                   ORDO_E_LEDGER_PAYLOAD);
  assert_null(p.name);
  free(buf);

  /* Hand-made CBOR: negative Value, unknown Verb, extra key, not a map. */
  assert_int_equal(ordo_ledger_intkey_decode(
                       LIT("\xa3\x64Verb\x63set\x64Name\x61x\x65Value\x20"), &p),
                   ORDO_E_LEDGER_PAYLOAD);
  assert_int_equal(ordo_ledger_intkey_decode(
                       LIT("\xa3\x64Verb\x63mul\x64Name\x61x\x65Value\x01"), &p),
                   ORDO_E_LEDGER_PAYLOAD);
  assert_message_has("Verb");
  assert_int_equal(ordo_ledger_intkey_decode(
                       LIT("\xa3\x64Verb\x63set\x64Nome\x61x\x65Value\x01"), &p),
                   ORDO_E_LEDGER_PAYLOAD);
  assert_int_equal(ordo_ledger_intkey_decode(
                       LIT("\xa3\x64Verb\x63set\x64Name\x61x\x65Value\x01"), &p),
                   ORDO_OK);
  ordo_ledger_intkey_payload_clear(&p);
  assert_int_equal(ordo_ledger_intkey_decode(LIT("\x83\x01\x02\x03"), &p),
                   ORDO_E_LEDGER_PAYLOAD);
  assert_int_equal(ordo_ledger_intkey_decode(LIT(""), &p), ORDO_E_LEDGER_PAYLOAD);
  assert_int_equal(ordo_ledger_intkey_decode(LIT("\xff"), &p),
                   ORDO_E_LEDGER_PAYLOAD);
  /* Five bytes declaring 2^32-1 items (or pairs): refused before libcbor
   * would allocate for them. */
  assert_int_equal(ordo_ledger_intkey_decode(LIT("\x9a\xff\xff\xff\xff\x00"),
                                             &p),
                   ORDO_E_LEDGER_PAYLOAD);
  assert_int_equal(ordo_ledger_intkey_decode(LIT("\xba\xff\xff\xff\xff\x00"),
                                             &p),
                   ORDO_E_LEDGER_PAYLOAD);
  ordo_ledger_intkey_payload_clear(NULL);
}

/* Apply a verb; the code. */
static int ik(mstate *m, ordo_ledger_intkey_verb v, const char *name,
              uint64_t value) {
  ordo_ledger_state s = mstate_iface(m);
  unsigned char *buf = NULL;
  size_t len = 0;
  int rc;
  assert_int_equal(ordo_ledger_intkey_encode(v, name, value, &buf, &len),
                   ORDO_OK);
  rc = ordo_ledger_intkey_apply(buf, len, &s);
  free(buf);
  return rc;
}

/* The value of name in state, via the CBOR map at its address. */
static uint64_t ik_value(mstate *m, const char *name) {
  char addr[ORDO_LEDGER_ADDRESS_SIZE];
  const unsigned char *v = NULL;
  size_t len, i;
  assert_int_equal(ordo_ledger_intkey_address(name, addr), ORDO_OK);
  assert_int_equal(m_get(m, addr, &v, &len), ORDO_OK);
  /* {name: uint}: a1, text header, name, then the uint. */
  assert_int_equal(v[0], 0xa1);
  i = 2 + strlen(name);
  if (v[i] < 0x18)
    return v[i];
  assert_int_equal(v[i], 0x1a); /* 4-byte uint */
  return (uint64_t)v[i + 1] << 24 | (uint64_t)v[i + 2] << 16 |
         (uint64_t)v[i + 3] << 8 | v[i + 4];
}

static void test_intkey_rules(void **st) {
  mstate m = {.n = 0};
  ordo_ledger_state s = mstate_iface(&m);
  (void)st;

  assert_int_equal(ik(&m, ORDO_LEDGER_INTKEY_SET, "a", 10), ORDO_OK);
  assert_int_equal(ik_value(&m, "a"), 10);
  assert_int_equal(ik(&m, ORDO_LEDGER_INTKEY_SET, "a", 11),
                   ORDO_E_LEDGER_INVALID_TXN);
  assert_message_has("exists");
  assert_int_equal(ik(&m, ORDO_LEDGER_INTKEY_INC, "a", 5), ORDO_OK);
  assert_int_equal(ik(&m, ORDO_LEDGER_INTKEY_DEC, "a", 3), ORDO_OK);
  assert_int_equal(ik_value(&m, "a"), 12);
  assert_int_equal(ik(&m, ORDO_LEDGER_INTKEY_INC, "missing", 1),
                   ORDO_E_LEDGER_INVALID_TXN);
  assert_int_equal(ik(&m, ORDO_LEDGER_INTKEY_DEC, "missing", 1),
                   ORDO_E_LEDGER_INVALID_TXN);
  assert_message_has("does not exist");
  assert_int_equal(ik(&m, ORDO_LEDGER_INTKEY_DEC, "a", 13),
                   ORDO_E_LEDGER_INVALID_TXN);
  assert_int_equal(ik(&m, ORDO_LEDGER_INTKEY_SET, "max", 4294967295u),
                   ORDO_OK);
  assert_int_equal(ik_value(&m, "max"), 4294967295u);
  assert_int_equal(ik(&m, ORDO_LEDGER_INTKEY_INC, "max", 1),
                   ORDO_E_LEDGER_INVALID_TXN);
  assert_int_equal(ik(&m, ORDO_LEDGER_INTKEY_INC, "max", 0), ORDO_OK);
  assert_int_equal(ik(&m, ORDO_LEDGER_INTKEY_SET, "big", 4294967296ull),
                   ORDO_E_LEDGER_INVALID_TXN);
  assert_int_equal(ik(&m, ORDO_LEDGER_INTKEY_SET, "abcdefghijklmnopqrst", 1),
                   ORDO_OK);
  assert_int_equal(ik(&m, ORDO_LEDGER_INTKEY_SET, "abcdefghijklmnopqrstu", 1),
                   ORDO_E_LEDGER_INVALID_TXN);
  assert_message_has("name of 21");
  /* Invalid transactions wrote nothing: 6 valid ones, 6 writes. */
  assert_int_equal(m.sets, 6);
  /* Garbage payload, garbage state. */
  assert_int_equal(ordo_ledger_intkey_apply("\x01", 1, &s),
                   ORDO_E_LEDGER_PAYLOAD);
  {
    char addr[ORDO_LEDGER_ADDRESS_SIZE];
    assert_int_equal(ordo_ledger_intkey_address("junk", addr), ORDO_OK);
    m_set(&m, addr, (const unsigned char *)"\x01", 1);
    assert_int_equal(ik(&m, ORDO_LEDGER_INTKEY_INC, "junk", 1), ORDO_E_LEDGER);
  }
}

/* sawtooth-sdk-python's intkey handler takes any str of at most 20
 * characters (len() counts code points), the empty one included, and reads
 * only Verb, Name and Value from the payload map. */
static void test_intkey_names_as_python(void **st) {
  mstate m = {.n = 0};
  ordo_ledger_state s = mstate_iface(&m);
  ordo_ledger_intkey_payload p;
  /* 20 two-byte characters (40 bytes), then 21. */
  const char *twenty = "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                       "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                       "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                       "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9";
  char twentyone[64];
  (void)st;

  /* The empty name is a name: set, inc, then a second set is refused. */
  assert_int_equal(ik(&m, ORDO_LEDGER_INTKEY_SET, "", 1), ORDO_OK);
  assert_int_equal(ik_value(&m, ""), 1);
  assert_int_equal(ik(&m, ORDO_LEDGER_INTKEY_INC, "", 2), ORDO_OK);
  assert_int_equal(ik_value(&m, ""), 3);
  assert_int_equal(ik(&m, ORDO_LEDGER_INTKEY_SET, "", 1),
                   ORDO_E_LEDGER_INVALID_TXN);
  assert_message_has("exists");

  assert_int_equal(ik(&m, ORDO_LEDGER_INTKEY_SET, twenty, 1), ORDO_OK);
  snprintf(twentyone, sizeof twentyone, "%sx", twenty);
  assert_int_equal(ik(&m, ORDO_LEDGER_INTKEY_SET, twentyone, 1),
                   ORDO_E_LEDGER_INVALID_TXN);
  assert_message_has("name of 21");
  /* Not UTF-8 (a lone continuation byte; an overlong '/'): Python's CBOR
   * decoder refuses the payload, and so does this one (libcbor, or apply's
   * own check). */
  {
    int rc = ik(&m, ORDO_LEDGER_INTKEY_SET, "a\x80", 1);
    assert_true(rc == ORDO_E_LEDGER_PAYLOAD || rc == ORDO_E_LEDGER_INVALID_TXN);
    rc = ik(&m, ORDO_LEDGER_INTKEY_SET, "\xc0\xaf", 1);
    assert_true(rc == ORDO_E_LEDGER_PAYLOAD || rc == ORDO_E_LEDGER_INVALID_TXN);
  }
  assert_int_equal(m.sets, 3);

  /* An extra key is ignored; a key twice is not a payload. */
  assert_int_equal(
      ordo_ledger_intkey_decode(
          LIT("\xa4\x64Verb\x63set\x64Name\x61x\x65Value\x01\x61z\x02"),
          &p),
      ORDO_OK);
  assert_string_equal(p.name, "x");
  ordo_ledger_intkey_payload_clear(&p);
  assert_int_equal(
      ordo_ledger_intkey_decode(
          LIT("\xa4\x64Verb\x63set\x64Name\x61x\x65Value\x01\x64Name\x61y"),
          &p),
      ORDO_E_LEDGER_PAYLOAD);
  assert_int_equal(ordo_ledger_intkey_apply(
                       "\xa4\x64Verb\x63set\x64Name\x61q\x65Value\x05"
                       "\x63" "Foo\xf5",
                       29, &s),
                   ORDO_OK);
  assert_int_equal(ik_value(&m, "q"), 5);
}

/* Apply ordo-rw payload {reads, writes} as txn id to m. */
static void rw(mstate *m, const char *id, const char *const *r, size_t nr,
               const char *const *w, size_t nw) {
  ordo_ledger_state s = mstate_iface(m);
  char *json = NULL;
  assert_int_equal(ordo_ledger_rw_encode(r, nr, w, nw, &json), ORDO_OK);
  assert_int_equal(ordo_ledger_rw_apply(id, json, strlen(json), &s), ORDO_OK);
  free(json);
}

static void test_rw_family(void **st) {
  const char *A[1] = {"A"}, *B[1] = {"B"}, *C[1] = {"C"}, *D[1] = {"D"};
  ordo_ledger_rw_payload p;
  mstate x = {.n = 0}, y = {.n = 0};
  char *json = NULL;
  (void)st;

  assert_int_equal(ordo_ledger_rw_encode(A, 1, B, 1, &json), ORDO_OK);
  assert_string_equal(json, "{\"reads\":[\"A\"],\"writes\":[\"B\"]}");
  assert_int_equal(ordo_ledger_rw_decode(json, strlen(json), &p), ORDO_OK);
  assert_int_equal(p.nreads, 1);
  assert_string_equal(p.writes[0], "B");
  ordo_ledger_rw_payload_clear(&p);
  free(json);
  assert_int_equal(ordo_ledger_rw_decode(LIT("{\"reads\":[]}"), &p),
                   ORDO_E_LEDGER_PAYLOAD);
  assert_int_equal(ordo_ledger_rw_decode(LIT("{\"reads\":[1],\"writes\":[]}"),
                                         &p),
                   ORDO_E_LEDGER_PAYLOAD);
  assert_message_has("reads");
  assert_int_equal(ordo_ledger_rw_decode(LIT("[]"), &p), ORDO_E_LEDGER_PAYLOAD);
  assert_int_equal(ordo_ledger_rw_decode(
                       LIT("{\"reads\":[],\"writes\":[\"\"]}"), &p),
                   ORDO_E_LEDGER_PAYLOAD);
  assert_int_equal(ordo_ledger_rw_encode(NULL, 0, (const char *[]){""}, 1,
                                         &json),
                   ORDO_E_INVAL);

  /* Conflicting (T1 reads A, writes B; T2 reads B, writes A): the order
   * shows in the state. */
  rw(&x, "T1", A, 1, B, 1);
  rw(&x, "T2", B, 1, A, 1);
  rw(&y, "T2", B, 1, A, 1);
  rw(&y, "T1", A, 1, B, 1);
  assert_int_equal(x.n, 2);
  assert_false(mstate_equal(&x, &y));
  /* Write-write conflict: the last writer wins, and it shows. */
  memset(&x, 0, sizeof x);
  memset(&y, 0, sizeof y);
  rw(&x, "T1", NULL, 0, C, 1);
  rw(&x, "T2", NULL, 0, C, 1);
  rw(&y, "T2", NULL, 0, C, 1);
  rw(&y, "T1", NULL, 0, C, 1);
  assert_false(mstate_equal(&x, &y));
  /* Disjoint (T1: A -> B, T3: C -> D) and read-read (both read A): they
   * commute. */
  memset(&x, 0, sizeof x);
  memset(&y, 0, sizeof y);
  rw(&x, "T1", A, 1, B, 1);
  rw(&x, "T3", C, 1, D, 1);
  rw(&x, "T4", A, 1, C, 0);
  rw(&y, "T4", A, 1, C, 0);
  rw(&y, "T3", C, 1, D, 1);
  rw(&y, "T1", A, 1, B, 1);
  assert_int_equal(x.n, 2);
  assert_true(mstate_equal(&x, &y));
  assert_int_equal(x.e[0].len, 32);
}

/* Workload lines as Sawtooth batches: a valid, signed one-batch BatchList;
 * the queuer's addresses in the family's namespace; "outcome":"invalid"
 * refused by the family; intkey sets a key once and increments it after. */
static void apply_built(const ordo_ledger_built *b, mstate *m, int *refused) {
  ordo_ledger_batchlist *bl = NULL;
  ordo_ledger_state st = mstate_iface(m);
  assert_int_equal(ordo_ledger_batchlist_decode(b->batchlist, b->batchlist_len,
                                                &bl),
                   ORDO_OK);
  assert_int_equal(ordo_ledger_batchlist_validate(bl), ORDO_OK);
  assert_int_equal(ordo_ledger_batchlist_count(bl), 1);
  const ordo_ledger_batch *batch = ordo_ledger_batchlist_batch(bl, 0);
  assert_string_equal(ordo_ledger_batch_id(batch), b->batch_id);
  *refused = 0;
  for (size_t i = 0; i < ordo_ledger_batch_txn_count(batch); i++)
    if (ordo_ledger_txn_apply(ordo_ledger_batch_txn(batch, i), &st) != ORDO_OK)
      *refused = 1;
  ordo_ledger_batchlist_free(bl);
}

static void test_workload_conversion(void **unused) {
  static const char text[] =
      "{\"id\":\"T1\",\"service\":\"s\",\"reads\":[\"B\"],\"writes\":[\"F\"]}\n"
      "{\"id\":\"T2\",\"service\":\"s\",\"reads\":[\"F\"],\"writes\":[\"F\"]}\n"
      "{\"id\":\"T3\",\"service\":\"s\",\"reads\":[\"F\"]}\n"
      "{\"id\":\"T4\",\"service\":\"s\",\"writes\":[\"a key longer than twenty\"],"
      "\"outcome\":\"invalid\"}\n";
  ordo_workload *w = NULL;
  ordo_ledger_signer *signer = NULL;
  (void)unused;
  assert_int_equal(ordo_workload_parse(text, strlen(text), &w), ORDO_OK);
  assert_int_equal(ordo_ledger_signer_new(NULL, &signer), ORDO_OK);
  for (int fam = 0; fam < 2; fam++) {
    ordo_ledger_conv *c = NULL;
    ordo_ledger_family f;
    mstate m;
    char want[ORDO_LEDGER_ADDRESS_SIZE];
    memset(&m, 0, sizeof m);
    assert_int_equal(ordo_ledger_family_parse(fam ? "intkey" : "ordo-rw", &f),
                     ORDO_OK);
    assert_int_equal(ordo_ledger_conv_new(f, signer, &c), ORDO_OK);
    for (size_t i = 0; i < w->nbatches; i++) {
      ordo_ledger_built b;
      int refused;
      assert_int_equal(ordo_ledger_conv_batch(c, &w->batches[i], &b), ORDO_OK);
      assert_int_equal(b.nreads, w->batches[i].nreads);
      assert_int_equal(b.nwrites, w->batches[i].nwrites);
      for (size_t k = 0; k < b.nwrites; k++)
        assert_memory_equal(b.writes[k],
                            fam ? ORDO_LEDGER_INTKEY_NAMESPACE : "df8441", 6);
      if (fam == 0 && b.nwrites > 0) {
        assert_int_equal(ordo_ledger_rw_address(w->batches[i].writes[0], want),
                         ORDO_OK);
        assert_string_equal(b.writes[0], want);
      }
      apply_built(&b, &m, &refused);
      assert_int_equal(refused, w->batches[i].invalid); /* only T4 */
      ordo_ledger_built_clear(&b);
    }
    if (fam == 1) /* F was set (T1) and then incremented (T2): 2. */
      assert_int_equal(ik_value(&m, "F"), 2);
    ordo_ledger_conv_free(c);
  }
  assert_int_equal(ordo_ledger_family_parse("xo", &(ordo_ledger_family){0}),
                   ORDO_E_INVAL);
  ordo_ledger_signer_free(signer);
  ordo_workload_free(w);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_namespaces_and_addresses),
      cmocka_unit_test(test_signer),
      cmocka_unit_test(test_roundtrip),
      cmocka_unit_test(test_wire_known_answer),
      cmocka_unit_test(test_tampering),
      cmocka_unit_test(test_garbage),
      cmocka_unit_test(test_intkey_cbor),
      cmocka_unit_test(test_intkey_rules),
      cmocka_unit_test(test_intkey_names_as_python),
      cmocka_unit_test(test_rw_family),
      cmocka_unit_test(test_workload_conversion),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * gen_ledger_seeds.c — writes the seeds of fuzz_batchlist and fuzz_intkey
 * (fuzz/corpus/batchlist/, fuzz/corpus/intkey/). Not part of the build.
 * Keys and nonces are fixed and signatures deterministic (RFC 6979), so
 * running it again writes the same bytes. From the repository root, with a
 * build in build/:
 *
 *   cc -std=c11 -D_GNU_SOURCE -Iinclude -Isrc fuzz/gen_ledger_seeds.c \
 *      build/libordo.a $(pkg-config --libs jansson libsodium libcrypto \
 *      libsecp256k1 sqlite3 libprotobuf-c libcbor) -lpthread \
 *      -o /tmp/gen_ledger_seeds
 *   /tmp/gen_ledger_seeds fuzz/corpus
 */
#include "ledger/ledger.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *dir;

static void die(const char *what) {
  fprintf(stderr, "gen_ledger_seeds: %s\n", what);
  exit(1);
}

static void put(const char *sub, const char *name, const void *p, size_t n) {
  char path[4096];
  FILE *f;
  snprintf(path, sizeof path, "%s/%s/%s", dir, sub, name);
  if ((f = fopen(path, "wb")) == NULL || fwrite(p, 1, n, f) != n ||
      fclose(f) != 0)
    die(path);
}

static ordo_ledger_txn *txn(const ordo_ledger_signer *s, const char *family,
                            const char *addr, const void *pl, size_t plen,
                            const char *nonce) {
  const char *a[1] = {addr};
  ordo_ledger_txn_spec spec = {0};
  ordo_ledger_txn *t = NULL;
  spec.family_name = family;
  spec.family_version = "1.0";
  spec.inputs = a;
  spec.ninputs = 1;
  spec.outputs = a;
  spec.noutputs = 1;
  spec.payload = pl;
  spec.payload_len = plen;
  spec.nonce = nonce;
  if (ordo_ledger_txn_build(s, NULL, &spec, &t) != ORDO_OK)
    die("txn");
  return t;
}

static void intkey_seed(const char *name, ordo_ledger_intkey_verb v,
                        const char *key, uint64_t value) {
  unsigned char *buf = NULL;
  size_t len = 0;
  if (ordo_ledger_intkey_encode(v, key, value, &buf, &len) != ORDO_OK)
    die("intkey");
  put("intkey", name, buf, len);
  free(buf);
}

int main(int argc, char **argv) {
  ordo_ledger_signer *a = NULL, *b = NULL;
  ordo_ledger_txn *t[3];
  ordo_ledger_batch *batch[2];
  char addr[ORDO_LEDGER_ADDRESS_SIZE], *json = NULL;
  const char *r[1] = {"k1"}, *w[2] = {"k2", "k3"};
  unsigned char *pl = NULL, *buf = NULL, *hit;
  size_t plen = 0, len = 0;

  if (argc != 2)
    die("usage: gen_ledger_seeds DIR");
  dir = argv[1];
  if (ordo_ledger_signer_new("2f1e7b7a130d7ba9da0068b3bb0ba1d79e7e77110302c9f7"
                             "46c3c2a63fe40088", &a) != ORDO_OK ||
      ordo_ledger_signer_new("0a6ff3e38c3ca7e1f5bf9d5b0b5b1f4c6b1f13e8bcd6a4d3"
                             "de8f0f0b9e8a7c61", &b) != ORDO_OK)
    die("signer");

  ordo_ledger_intkey_address("foo", addr);
  ordo_ledger_intkey_encode(ORDO_LEDGER_INTKEY_SET, "foo", 42, &pl, &plen);
  t[0] = txn(a, "intkey", addr, pl, plen, "seed0");
  free(pl);
  ordo_ledger_rw_address("k1", addr);
  ordo_ledger_rw_encode(r, 1, w, 2, &json);
  t[1] = txn(a, "ordo-rw", addr, json, strlen(json), "seed1");
  t[2] = txn(b, "ordo-rw", addr, json, strlen(json), "seed2");

  if (ordo_ledger_batch_build(a, t, 2, &batch[0]) != ORDO_OK ||
      ordo_ledger_batch_build(b, &t[2], 1, &batch[1]) != ORDO_OK)
    die("batch");
  ordo_ledger_batchlist_encode((const ordo_ledger_batch *const *)batch, 1,
                               &buf, &len);
  put("batchlist", "one_batch.bin", buf, len);
  put("batchlist", "truncated.bin", buf, len / 2);
  free(buf);
  ordo_ledger_batchlist_encode((const ordo_ledger_batch *const *)batch, 2,
                               &buf, &len);
  put("batchlist", "two_batches.bin", buf, len);
  /* The ordo-rw payload flipped in its first copy: a payload hash error. */
  if ((hit = memmem(buf, len, json, strlen(json))) == NULL)
    die("payload not found");
  hit[2] ^= 1;
  put("batchlist", "bad_payload.bin", buf, len);
  hit[2] ^= 1;
  /* The first batch's signature, one digit changed. */
  if ((hit = memmem(buf, len, ordo_ledger_batch_id(batch[0]), 128)) == NULL)
    die("batch id not found");
  hit[127] = hit[127] == '0' ? '1' : '0';
  put("batchlist", "bad_signature.bin", buf, len);
  free(buf);
  put("batchlist", "empty.bin", "", 0);

  intkey_seed("set.cbor", ORDO_LEDGER_INTKEY_SET, "foo", 42);
  intkey_seed("inc.cbor", ORDO_LEDGER_INTKEY_INC, "x", 4294967295u);
  intkey_seed("dec.cbor", ORDO_LEDGER_INTKEY_DEC, "bar", 70000);
  intkey_seed("long_name.cbor", ORDO_LEDGER_INTKEY_SET,
              "a-name-longer-than-twenty", 1);
  intkey_seed("big_value.cbor", ORDO_LEDGER_INTKEY_SET, "big",
              4294967296ull);
  /* A stored state map {"x": 5, "y": 7}. */
  put("intkey", "state_map.cbor", "\xa2\x61x\x05\x61y\x07", 7);

  free(json);
  ordo_ledger_batch_free(batch[0]);
  ordo_ledger_batch_free(batch[1]);
  ordo_ledger_txn_free(t[0]);
  ordo_ledger_txn_free(t[1]);
  ordo_ledger_txn_free(t[2]);
  ordo_ledger_signer_free(a);
  ordo_ledger_signer_free(b);
  return 0;
}

/*
 * validate.c — BatchLists off the wire: decode (any bytes), then check every
 * signature, id list, batcher key and payload hash as a validator does.
 *
 * Decoding copies what protobuf-c unpacked into the module's own objects and
 * frees protobuf-c's tree at once, so built and received batches are the
 * same kind of object and free the same way.
 */
#include "ledger/internal.h"
#include "runtime/runtime.h"

#include <stdlib.h>
#include <string.h>

void ordo_ledger_batchlist_free(ordo_ledger_batchlist *bl) {
  size_t i;
  if (bl == NULL)
    return;
  for (i = 0; i < bl->n; i++)
    ordo_ledger_batch_free(bl->batches[i]);
  free(bl->batches);
  free(bl);
}

size_t ordo_ledger_batchlist_count(const ordo_ledger_batchlist *bl) {
  return bl->n;
}

const ordo_ledger_batch *
ordo_ledger_batchlist_batch(const ordo_ledger_batchlist *bl, size_t i) {
  return i < bl->n ? bl->batches[i] : NULL;
}

/* Batch i of the unpacked list into bl->batches[i]. */
static int decode_batch(const Ordo__Sawtooth__Batch *pb, size_t i,
                        ordo_ledger_batch **out) {
  ordo_ledger_batch *b;
  size_t j;
  int rc;

  rc = ordo__ledger_batch_make(pb->header.data, pb->header.len,
                               pb->header_signature, pb->trace,
                               pb->n_transactions, &b);
  if (rc == ORDO_E_LEDGER_DECODE)
    return ordo__set_last_error(rc,
                                "batch %zu (" ORDO__LEDGER_SHORT
                                "): header is not a BatchHeader",
                                i, pb->header_signature);
  if (rc != ORDO_OK)
    return ordo__set_last_error(rc, "batchlist: out of memory");
  for (j = 0; j < pb->n_transactions; j++) {
    const Ordo__Sawtooth__Transaction *pt = pb->transactions[j];
    rc = ordo__ledger_txn_make(pt->header.data, pt->header.len,
                               pt->header_signature, pt->payload.data,
                               pt->payload.len, &b->txns[j]);
    if (rc != ORDO_OK) {
      ordo_ledger_batch_free(b);
      if (rc == ORDO_E_LEDGER_DECODE)
        return ordo__set_last_error(
            rc,
            "batch %zu txn %zu (" ORDO__LEDGER_SHORT
            "): header is not a TransactionHeader",
            i, j, pt->header_signature);
      return ordo__set_last_error(rc, "batchlist: out of memory");
    }
    b->ntxns++;
  }
  *out = b;
  return ORDO_OK;
}

int ordo_ledger_batchlist_decode(const void *data, size_t len,
                                 ordo_ledger_batchlist **out) {
  Ordo__Sawtooth__BatchList *pl;
  ordo_ledger_batchlist *bl;
  size_t i;
  int rc;

  if (out != NULL)
    *out = NULL;
  if (out == NULL || (data == NULL && len > 0))
    return ordo__set_last_error(ORDO_E_INVAL, "batchlist: NULL argument");
  pl = ordo__sawtooth__batch_list__unpack(NULL, len, data);
  if (pl == NULL)
    return ordo__set_last_error(ORDO_E_LEDGER_DECODE,
                                "batchlist: %zu bytes are not a BatchList",
                                len);
  if ((bl = calloc(1, sizeof *bl)) == NULL ||
      (bl->batches = calloc(pl->n_batches ? pl->n_batches : 1,
                            sizeof *bl->batches)) == NULL) {
    free(bl);
    ordo__sawtooth__batch_list__free_unpacked(pl, NULL);
    return ordo__set_last_error(ORDO_E_NOMEM, "batchlist: out of memory");
  }
  for (i = 0; i < pl->n_batches; i++) {
    if ((rc = decode_batch(pl->batches[i], i, &bl->batches[i])) != ORDO_OK) {
      ordo_ledger_batchlist_free(bl);
      ordo__sawtooth__batch_list__free_unpacked(pl, NULL);
      return rc;
    }
    bl->n++;
  }
  ordo__sawtooth__batch_list__free_unpacked(pl, NULL);
  *out = bl;
  return ORDO_OK;
}

/*
 * Does sig_hex verify over SHA-256(msg) with pub_hex? ORDO_OK, or
 * ORDO_E_LEDGER_SIGNATURE with *why saying which part failed.
 */
static int check_signature(const char *pub_hex, const char *sig_hex,
                           const unsigned char *msg, size_t len,
                           const char **why) {
  unsigned char pub[ORDO__SECP256K1_PUBLIC_BYTES];
  unsigned char sig[ORDO__SECP256K1_SIG_BYTES];
  size_t siglen = sizeof sig;
  int valid = 0;

  if (strlen(pub_hex) != 2 * ORDO__SECP256K1_PUBLIC_BYTES ||
      ordo__crypto_secp256k1_pubkey_from_hex(pub_hex, pub) != ORDO_OK) {
    *why = "signer_public_key is not a compressed secp256k1 key";
    return ORDO_E_LEDGER_SIGNATURE;
  }
  if (strlen(sig_hex) != ORDO_LEDGER_ID_LEN ||
      ordo__crypto_hex_decode(sig_hex, sig, &siglen) != ORDO_OK ||
      siglen != sizeof sig) {
    *why = "header_signature is not 128 hex digits";
    return ORDO_E_LEDGER_SIGNATURE;
  }
  if (ordo__crypto_secp256k1_verify_sha256(pub, msg, len, sig, &valid) !=
          ORDO_OK ||
      !valid) {
    *why = "header_signature does not verify with signer_public_key";
    return ORDO_E_LEDGER_SIGNATURE;
  }
  return ORDO_OK;
}

static int validate_txn(const ordo_ledger_batch *b, size_t i, size_t j) {
  const ordo_ledger_txn *t = b->txns[j];
  char hash[ORDO__HEX_ENCODED_SIZE(ORDO__SHA512_BYTES)];
  const char *why;
  int rc;

  rc = check_signature(t->hdr->signer_public_key, t->id, t->header,
                       t->header_len, &why);
  if (rc != ORDO_OK)
    return ordo__set_last_error(rc,
                                "batch %zu txn %zu (" ORDO__LEDGER_SHORT
                                "): %s",
                                i, j, t->id, why);
  if (strcmp(t->hdr->batcher_public_key, b->hdr->signer_public_key) != 0)
    return ordo__set_last_error(ORDO_E_LEDGER_BATCHER,
                                "batch %zu txn %zu (" ORDO__LEDGER_SHORT
                                "): batcher_public_key is not the batch's "
                                "signer_public_key",
                                i, j, t->id);
  if ((rc = ordo__ledger_sha512_hex(t->payload, t->payload_len, hash)) !=
      ORDO_OK)
    return ordo__set_last_error(rc, "batch %zu txn %zu: hash failed", i, j);
  if (strcmp(hash, t->hdr->payload_sha512) != 0)
    return ordo__set_last_error(ORDO_E_LEDGER_PAYLOAD_HASH,
                                "batch %zu txn %zu (" ORDO__LEDGER_SHORT
                                "): payload_sha512 is not the SHA-512 of the "
                                "%zu-byte payload",
                                i, j, t->id, t->payload_len);
  return ORDO_OK;
}

static int validate_batch(const ordo_ledger_batch *b, size_t i) {
  const Ordo__Sawtooth__BatchHeader *h = b->hdr;
  const char *why;
  size_t j;
  int rc;

  if (b->ntxns == 0)
    return ordo__set_last_error(ORDO_E_LEDGER_EMPTY,
                                "batch %zu (" ORDO__LEDGER_SHORT
                                "): no transactions",
                                i, b->id);
  rc = check_signature(h->signer_public_key, b->id, b->header, b->header_len,
                       &why);
  if (rc != ORDO_OK)
    return ordo__set_last_error(rc, "batch %zu (" ORDO__LEDGER_SHORT "): %s",
                                i, b->id, why);
  if (h->n_transaction_ids != b->ntxns)
    return ordo__set_last_error(ORDO_E_LEDGER_TXN_IDS,
                                "batch %zu (" ORDO__LEDGER_SHORT
                                "): header lists %zu transaction ids, the "
                                "batch carries %zu transactions",
                                i, b->id, h->n_transaction_ids, b->ntxns);
  for (j = 0; j < b->ntxns; j++)
    if (strcmp(h->transaction_ids[j], b->txns[j]->id) != 0)
      return ordo__set_last_error(
          ORDO_E_LEDGER_TXN_IDS,
          "batch %zu (" ORDO__LEDGER_SHORT "): transaction_ids[%zu] is "
          ORDO__LEDGER_SHORT ", transaction %zu is " ORDO__LEDGER_SHORT,
          i, b->id, j, h->transaction_ids[j], j, b->txns[j]->id);
  for (j = 0; j < b->ntxns; j++)
    if ((rc = validate_txn(b, i, j)) != ORDO_OK)
      return rc;
  return ORDO_OK;
}

int ordo_ledger_batchlist_validate(const ordo_ledger_batchlist *bl) {
  size_t i;
  int rc;

  if (bl == NULL)
    return ordo__set_last_error(ORDO_E_INVAL, "batchlist: NULL");
  if (bl->n == 0)
    return ordo__set_last_error(ORDO_E_LEDGER_EMPTY, "batchlist: no batches");
  for (i = 0; i < bl->n; i++)
    if ((rc = validate_batch(bl->batches[i], i)) != ORDO_OK)
      return rc;
  return ORDO_OK;
}

/*
 * fuzz_batchlist.c — libFuzzer target for BatchList decoding and validation
 * (src/ledger/validate.c), the bytes a node gets in POST /batches.
 *
 * Properties checked on every input:
 *   - decode fails only with ORDO_E_LEDGER_DECODE (or ORDO_E_NOMEM), leaves
 *     no list, and records a message;
 *   - validate of a decoded list answers ORDO_OK or one of the codes
 *     ledger.h documents, with a message when it fails;
 *   - every accessor of a decoded list gives non-NULL strings, and the list
 *     encodes again into bytes that decode to the same ids and counts.
 * ASan/UBSan catch memory errors, LeakSanitizer anything left behind.
 */
#include "ordo.h"
#include "ledger/ledger.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void walk(const ordo_ledger_batchlist *bl) {
  size_t i, j, k, n;
  for (i = 0; i < ordo_ledger_batchlist_count(bl); i++) {
    const ordo_ledger_batch *b = ordo_ledger_batchlist_batch(bl, i);
    if (b == NULL || ordo_ledger_batch_id(b) == NULL ||
        ordo_ledger_batch_signer(b) == NULL)
      abort();
    for (j = 0; j < ordo_ledger_batch_txn_count(b); j++) {
      const ordo_ledger_txn *t = ordo_ledger_batch_txn(b, j);
      ordo_ledger_txn_header h;
      if (t == NULL || ordo_ledger_txn_id(t) == NULL)
        abort();
      ordo_ledger_txn_header_get(t, &h);
      n = strlen(h.batcher_public_key) + strlen(h.family_name) +
          strlen(h.family_version) + strlen(h.nonce) +
          strlen(h.payload_sha512) + strlen(h.signer_public_key);
      for (k = 0; k < h.ninputs; k++)
        n += strlen(h.inputs[k]);
      for (k = 0; k < h.noutputs; k++)
        n += strlen(h.outputs[k]);
      for (k = 0; k < h.ndependencies; k++)
        n += strlen(h.dependencies[k]);
      (void)ordo_ledger_txn_payload(t, &n);
    }
  }
}

/* Encode the decoded list again and check that it decodes the same. */
static void reencode(const ordo_ledger_batchlist *bl) {
  size_t n = ordo_ledger_batchlist_count(bl), i, len = 0;
  const ordo_ledger_batch **v = calloc(n ? n : 1, sizeof *v);
  ordo_ledger_batchlist *again = NULL;
  unsigned char *buf = NULL;

  if (v == NULL)
    return;
  for (i = 0; i < n; i++)
    v[i] = ordo_ledger_batchlist_batch(bl, i);
  if (ordo_ledger_batchlist_encode(v, n, &buf, &len) != ORDO_OK)
    abort();
  if (ordo_ledger_batchlist_decode(buf, len, &again) != ORDO_OK ||
      ordo_ledger_batchlist_count(again) != n)
    abort();
  for (i = 0; i < n; i++) {
    const ordo_ledger_batch *x = v[i], *y = ordo_ledger_batchlist_batch(again, i);
    if (strcmp(ordo_ledger_batch_id(x), ordo_ledger_batch_id(y)) != 0 ||
        ordo_ledger_batch_txn_count(x) != ordo_ledger_batch_txn_count(y))
      abort();
  }
  ordo_ledger_batchlist_free(again);
  free(buf);
  free(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  ordo_ledger_batchlist *bl = NULL;
  int rc = ordo_ledger_batchlist_decode(data, size, &bl);

  if (rc != ORDO_OK) {
    if ((rc != ORDO_E_LEDGER_DECODE && rc != ORDO_E_NOMEM) || bl != NULL ||
        ordo_last_error() != rc || ordo_last_error_message()[0] == '\0')
      abort();
    return 0;
  }
  walk(bl);
  rc = ordo_ledger_batchlist_validate(bl);
  switch (rc) {
  case ORDO_OK:
    break;
  case ORDO_E_LEDGER_EMPTY:
  case ORDO_E_LEDGER_SIGNATURE:
  case ORDO_E_LEDGER_TXN_IDS:
  case ORDO_E_LEDGER_BATCHER:
  case ORDO_E_LEDGER_PAYLOAD_HASH:
    if (ordo_last_error() != rc || ordo_last_error_message()[0] == '\0')
      abort();
    break;
  default:
    abort();
  }
  reencode(bl);
  ordo_ledger_batchlist_free(bl);
  return 0;
}

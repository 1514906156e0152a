/*
 * fuzz_cluster_body.c — libFuzzer target for the decoder of a batch's body
 * in a shared queue (ordo__cl_body_decode, src/cluster/inbox.c): the pump
 * of `ordo serve --cluster` reads every body from ordo_cluster_batch, a
 * table anyone with the database role can write, and `ordo verify
 * --cluster` reads its payloads.
 *
 * Properties on every input:
 *   - ORDO_OK or ORDO_E_INVAL (ORDO_E_NOMEM when out of memory), never a
 *     crash, and nothing left to free after ordo__cl_body_clear;
 *   - decoded: every address and dep is a string; the payload lies inside
 *     the input, after the JSON and its NUL;
 *   - a decoded body encodes (ordo__cl_body_encode) to one that decodes to
 *     the same spec: the same addresses and deps in order, the same ledger
 *     id, the same payload bytes.
 */
#include "cluster/internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int same_strs(const char *const *a, size_t na, const char *const *b,
                     size_t nb) {
  if (na != nb)
    return 0;
  for (size_t i = 0; i < na; i++)
    if (strcmp(a[i], b[i]) != 0)
      return 0;
  return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  ordo_queue_batch_spec sp, again;
  ordo__cl_body keep, keep2;
  int rc = ordo__cl_body_decode(data, size, "id", "svc", &sp, &keep);
  if (rc != ORDO_OK) {
    if (rc != ORDO_E_INVAL && rc != ORDO_E_NOMEM)
      abort();
    ordo__cl_body_clear(&keep);
    return 0;
  }
  for (size_t i = 0; i < sp.nreads + sp.nwrites + sp.ndeps; i++)
    if (keep.strs[i] == NULL)
      abort();
  if (sp.payload_len > 0 &&
      ((const uint8_t *)sp.payload < data ||
       (const uint8_t *)sp.payload + sp.payload_len != data + size))
    abort();
  size_t len = 0;
  const char *why = NULL;
  unsigned char *b = ordo__cl_body_encode(&sp, &len, &why);
  if (b != NULL) {
    if (ordo__cl_body_decode(b, len, "id", "svc", &again, &keep2) != ORDO_OK ||
        !same_strs(sp.reads, sp.nreads, again.reads, again.nreads) ||
        !same_strs(sp.writes, sp.nwrites, again.writes, again.nwrites) ||
        !same_strs(sp.deps, sp.ndeps, again.deps, again.ndeps) ||
        (sp.ledger_id == NULL) != (again.ledger_id == NULL) ||
        (sp.ledger_id != NULL && strcmp(sp.ledger_id, again.ledger_id)) ||
        sp.payload_len != again.payload_len ||
        (sp.payload_len > 0 &&
         memcmp(sp.payload, again.payload, sp.payload_len) != 0))
      abort();
    ordo__cl_body_clear(&keep2);
    free(b);
  }
  ordo__cl_body_clear(&keep);
  return 0;
}

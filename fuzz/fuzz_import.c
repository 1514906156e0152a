/*
 * fuzz_import.c — the wallet export file reader on arbitrary bytes.
 *
 * The header is parsed, and the stream opened with a fixed raw key whatever
 * the header's KDF says (deriving with Argon2id per input would make the
 * fuzzer crawl); then every record is read until the end or an error. It must
 * never crash, leak or accept a record that is not well-formed.
 */
#include "wallet/exportfile.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const unsigned char key[ORDO__WALLET_KEY_BYTES] = {1, 2, 3, 4, 5, 6, 7, 8};
  if (sodium_init() < 0)
    return 0;
  FILE *f = fmemopen((void *)data, size, "rb");
  if (f == NULL)
    return 0;
  ordo__export_reader rd;
  ordo__wallet_kdf kdf;
  int rc = ordo__export_reader_begin(&rd, f, &kdf);
  if (rc == ORDO_OK)
    rc = ordo__export_reader_keyed(&rd, key);
  while (rc == ORDO_OK) {
    json_t *rec = NULL;
    rc = ordo__export_reader_next(&rd, &rec);
    if (rec == NULL)
      break;
    /* What the reader hands out is always a well-formed record. */
    if (!json_is_string(json_object_get(rec, "type")) ||
        !json_is_string(json_object_get(rec, "name")) ||
        !json_is_string(json_object_get(rec, "value")))
      __builtin_trap();
    json_decref(rec);
  }
  if (rc != ORDO_OK && rc != ORDO_E_WALLET_FILE && rc != ORDO_E_WALLET_ACCESS &&
      rc != ORDO_E_NOMEM)
    __builtin_trap();
  ordo__export_reader_free(&rd);
  fclose(f);
  return 0;
}

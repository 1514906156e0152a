/*
 * fuzz_intkey.c — libFuzzer target for intkey's CBOR (src/ledger/intkey.c):
 * payloads, and the state map a node hands back.
 *
 * Every input is used three ways:
 *   - decoded as a payload: success gives a verb in range and a name, and
 *     encoding that payload again decodes to the same; failure is
 *     ORDO_E_LEDGER_PAYLOAD with every output zeroed;
 *   - applied as a payload to empty state: ORDO_OK (a valid "set") or
 *     ORDO_E_LEDGER_PAYLOAD / ORDO_E_LEDGER_INVALID_TXN;
 *   - read as the stored value at the address a fixed "inc" touches:
 *     ORDO_OK, ORDO_E_LEDGER (not an intkey map) or
 *     ORDO_E_LEDGER_INVALID_TXN.
 */
#include "ordo.h"
#include "ledger/ledger.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct fstate {
  const uint8_t *value; /* what every get returns; NULL: absent */
  size_t len;
  unsigned char *written;
  size_t wlen;
} fstate;

static int f_get(void *ud, const char *addr, const unsigned char **v,
                 size_t *len) {
  fstate *f = ud;
  (void)addr;
  if (f->value == NULL)
    return ORDO_E_NOT_FOUND;
  *v = f->value;
  *len = f->len;
  return ORDO_OK;
}

static int f_set(void *ud, const char *addr, const unsigned char *v,
                 size_t len) {
  fstate *f = ud;
  (void)addr;
  free(f->written);
  if ((f->written = malloc(len ? len : 1)) == NULL)
    return ORDO_E_NOMEM;
  memcpy(f->written, v, len);
  f->wlen = len;
  return ORDO_OK;
}

static void roundtrip(const ordo_ledger_intkey_payload *p) {
  ordo_ledger_intkey_payload q;
  unsigned char *buf = NULL;
  size_t len = 0;
  if (ordo_ledger_intkey_encode(p->verb, p->name, p->value, &buf, &len) !=
      ORDO_OK)
    abort();
  if (ordo_ledger_intkey_decode(buf, len, &q) != ORDO_OK || q.verb != p->verb ||
      q.value != p->value || strcmp(q.name, p->name) != 0)
    abort();
  ordo_ledger_intkey_payload_clear(&q);
  free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  ordo_ledger_intkey_payload p;
  fstate f = {NULL, 0, NULL, 0};
  ordo_ledger_state st = {f_get, f_set, &f};
  unsigned char *inc = NULL;
  size_t inclen = 0;
  int rc;

  rc = ordo_ledger_intkey_decode(data, size, &p);
  if (rc == ORDO_OK) {
    if (p.name == NULL || (unsigned)p.verb > ORDO_LEDGER_INTKEY_DEC)
      abort();
    roundtrip(&p);
    ordo_ledger_intkey_payload_clear(&p);
  } else if (rc != ORDO_E_LEDGER_PAYLOAD || p.name != NULL || p.value != 0) {
    abort();
  }

  rc = ordo_ledger_intkey_apply(data, size, &st);
  if (rc != ORDO_OK && rc != ORDO_E_LEDGER_PAYLOAD &&
      rc != ORDO_E_LEDGER_INVALID_TXN)
    abort();
  if (rc == ORDO_OK && f.written == NULL)
    abort();
  free(f.written);
  f.written = NULL;

  /* The input as the stored map; a valid payload that must read it. */
  f.value = data;
  f.len = size;
  if (ordo_ledger_intkey_encode(ORDO_LEDGER_INTKEY_INC, "x", 1, &inc,
                                &inclen) != ORDO_OK)
    abort();
  rc = ordo_ledger_intkey_apply(inc, inclen, &st);
  if (rc != ORDO_OK && rc != ORDO_E_LEDGER && rc != ORDO_E_LEDGER_INVALID_TXN)
    abort();
  free(inc);
  free(f.written);
  return 0;
}

/*
 * families.c — one transaction applied by the family its header names
 * (ledger.h, ordo_ledger_txn_apply): the one dispatch the node and `ordo
 * verify` share, so that a replay applies exactly what a block applied;
 * and the payload size check the families share.
 */
#include "ledger/internal.h"
#include "runtime/runtime.h"

#include <string.h>

int ordo__ledger_payload_over(const char *family, size_t len, size_t max) {
  if (len <= max)
    return 0;
  ordo__set_last_error(ORDO_E_LEDGER_PAYLOAD,
                       "%s: payload of %zu bytes (at most %zu)", family, len,
                       max);
  return 1;
}

int ordo_ledger_txn_apply(const ordo_ledger_txn *t,
                          const ordo_ledger_state *state) {
  ordo_ledger_txn_header h;
  const unsigned char *payload;
  size_t len;

  if (t == NULL || state == NULL)
    return ordo__set_last_error(ORDO_E_INVAL, "txn apply: NULL argument");
  ordo_ledger_txn_header_get(t, &h);
  payload = ordo_ledger_txn_payload(t, &len);
  if (strcmp(h.family_name, ORDO_LEDGER_INTKEY_FAMILY) == 0 &&
      strcmp(h.family_version, ORDO_LEDGER_INTKEY_VERSION) == 0)
    return ordo_ledger_intkey_apply(payload, len, state);
  if (strcmp(h.family_name, ORDO_LEDGER_RW_FAMILY) == 0 &&
      strcmp(h.family_version, ORDO_LEDGER_RW_VERSION) == 0)
    return ordo_ledger_rw_apply(ordo_ledger_txn_id(t), payload, len, state);
  return ordo__set_last_error(ORDO_E_LEDGER_INVALID_TXN,
                              "unknown transaction family '%.64s' version "
                              "'%.16s'", h.family_name, h.family_version);
}

/*
 * fuzz_journal.c — libFuzzer target for the journal's replay: the parser of
 * the records a queue journal holds on disk (src/queue/journal.c).
 *
 * Arbitrary bytes are split into records at newlines and replayed into a
 * fresh queue, as a reopen would. Properties checked: the replay ends with
 * ORDO_OK, or ORDO_E_QUEUE with a message naming the event ("journal event
 * N: ..."), or ORDO_E_NOMEM; never a crash, a leak or undefined behaviour
 * (ASan/UBSan). Inputs that start with 'C' are a checkpoint's records
 * instead (see ordo__journal_checkpoint_parts), read as a reopen reads
 * the newest one: it loads, or is refused with a message; never a crash.
 * Inputs that start with 'S' are a segment of the forgotten-id sets
 * (queue/idset.h), applied to two sets: it applies or is refused.
 */
#include "ordo.h"
#include "queue/idset.h"
#include "queue/queue.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  int rc;
  /* A first byte 'C': the rest is a checkpoint's records (length-prefixed
   * chunks), read as a reopen reads the newest checkpoint. */
  if (size > 0 && data[0] == 'C') {
    rc = ordo__journal_checkpoint_parts(data + 1, size - 1);
    if (rc == ORDO_OK || rc == ORDO_E_NOMEM)
      return 0;
    if (rc != ORDO_E_QUEUE ||
        strncmp(ordo_last_error_message(), "checkpoint", 10) != 0)
      abort();
    return 0;
  }
  if (size > 0 && data[0] == 'S') {
    ordo__idset a, b;
    ordo__idset_init(&a);
    ordo__idset_init(&b);
    rc = ordo__idseg_apply(data + 1, size - 1, &a, &b);
    if (rc == 0 && (a.n > a.cap || b.n > b.cap))
      abort();
    ordo__idset_clear(&a);
    ordo__idset_clear(&b);
    return 0;
  }
  rc = ordo__journal_replay_lines(data, size);
  if (rc == ORDO_OK || rc == ORDO_E_NOMEM)
    return 0;
  if (rc != ORDO_E_QUEUE)
    abort();
  if (strncmp(ordo_last_error_message(), "journal event ", 14) != 0)
    abort();
  return 0;
}

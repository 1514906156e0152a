/*
 * fuzz_config.c — libFuzzer target for ordo_config_from_json.
 *
 * Arbitrary bytes (copied and NUL-terminated) are applied to a default
 * config. Properties checked on every input:
 *   - success: the result passes ordo_config_validate;
 *   - failure: the code is ORDO_E_JSON or ORDO_E_CONFIG, it is the thread's
 *     last error, there is a message, and cfg is unchanged.
 * ASan/UBSan catch memory and arithmetic errors on the way.
 */
#include "ordo.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int cfg_equal(const ordo_config *a, const ordo_config *b) {
  return a->cheap_threads == b->cheap_threads &&
         a->heavy_threads == b->heavy_threads && a->heavy_nice == b->heavy_nice &&
         a->net_threads == b->net_threads && a->queue_limit == b->queue_limit &&
         a->single_executor == b->single_executor;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *text = malloc(size + 1);
  if (text == NULL)
    return 0;
  memcpy(text, data, size);
  text[size] = '\0';

  ordo_config cfg, before;
  ordo_config_init(&cfg);
  before = cfg;
  int rc = ordo_config_from_json(&cfg, text);
  if (rc == ORDO_OK) {
    if (ordo_config_validate(&cfg) != ORDO_OK)
      abort();
  } else {
    if (rc != ORDO_E_JSON && rc != ORDO_E_CONFIG)
      abort();
    if (ordo_last_error() != rc || ordo_last_error_message() == NULL)
      abort();
    if (!cfg_equal(&cfg, &before))
      abort();
  }
  free(text);
  return 0;
}

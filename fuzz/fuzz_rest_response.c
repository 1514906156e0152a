/*
 * fuzz_rest_response.c — libFuzzer target for what a Sawtooth REST API
 * answers (src/ledger/rest_parse.c): every input is given to each parser
 * the client uses, as the body of an answer.
 *
 * Checked for every input:
 *   - ordo__ledger_parse_error: ORDO_OK or ORDO_E_LEDGER_RESPONSE; the
 *     message is NUL-terminated within its buffer (tried with a roomy and a
 *     tiny one) and has no control characters; no code without an error;
 *   - link, statuses, state, blocks: ORDO_OK with a JSON object that
 *     serializes, or ORDO_E_LEDGER_RESPONSE with a reason and no object
 *     (ORDO_E_NOMEM aside);
 *   - a state page: entries appended are {"address","data"} objects, and a
 *     next query, when there is one, holds only URL query characters and
 *     is NULL whenever the page is refused.
 */
#include "ordo.h"
#include "ledger/ledger.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_message(const char *msg, size_t cap) {
  size_t n = strnlen(msg, cap);
  if (n >= cap)
    abort(); /* not terminated */
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)msg[i] < 0x20 || msg[i] == 0x7f)
      abort();
}

static void check_value(int rc, json_t *out, const char *why) {
  if (rc == ORDO_OK) {
    if (!json_is_object(out))
      abort();
    char *s = json_dumps(out, JSON_COMPACT);
    if (s == NULL)
      abort();
    free(s);
    json_decref(out);
  } else if (rc == ORDO_E_LEDGER_RESPONSE) {
    if (out != NULL || why == NULL)
      abort();
  } else if (rc != ORDO_E_NOMEM) {
    abort();
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char msg[768], tiny[8];
  int code = 0;
  int rc = ordo__ledger_parse_error(400, data, size, msg, sizeof msg, &code);
  if (rc != ORDO_OK && rc != ORDO_E_LEDGER_RESPONSE)
    abort();
  if (rc == ORDO_E_LEDGER_RESPONSE && code != -1)
    abort();
  check_message(msg, sizeof msg);
  ordo__ledger_parse_error(503, data, size, tiny, sizeof tiny, &code);
  check_message(tiny, sizeof tiny);
  ordo__ledger_parse_error(429, data, size, NULL, 0, NULL);

  json_t *out = NULL;
  const char *why = NULL;
  rc = ordo__ledger_parse_link(data, size, &out, &why);
  check_value(rc, out, why);
  out = NULL, why = NULL;
  rc = ordo__ledger_parse_statuses(data, size, &out, &why);
  check_value(rc, out, why);
  out = NULL, why = NULL;
  rc = ordo__ledger_parse_state(data, size, &out, &why);
  check_value(rc, out, why);
  out = NULL, why = NULL;
  rc = ordo__ledger_parse_blocks(data, size, &out, &why);
  check_value(rc, out, why);

  json_t *acc = json_array();
  if (acc == NULL)
    return 0;
  char *next = NULL;
  why = NULL;
  rc = ordo__ledger_parse_state_page(data, size, acc, &next, &why);
  if (rc != ORDO_OK && rc != ORDO_E_LEDGER_RESPONSE && rc != ORDO_E_NOMEM)
    abort();
  if (rc != ORDO_OK && next != NULL)
    abort();
  if (rc == ORDO_E_LEDGER_RESPONSE && why == NULL)
    abort();
  if (next != NULL) {
    if (next[0] == '\0')
      abort();
    for (const char *p = next; *p != '\0'; p++)
      if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
            (*p >= '0' && *p <= '9') || strchr("._~%&=+,:-", *p) != NULL))
        abort();
    free(next);
  }
  size_t i;
  json_t *e;
  json_array_foreach(acc, i, e) {
    if (!json_is_string(json_object_get(e, "address")) ||
        !json_is_string(json_object_get(e, "data")) || json_object_size(e) != 2)
      abort();
  }
  json_decref(acc);
  return 0;
}

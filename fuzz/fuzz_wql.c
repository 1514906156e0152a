/*
 * fuzz_wql.c — libFuzzer target for the WQL parser (src/wallet/wql.c).
 *
 * Arbitrary bytes (copied and NUL-terminated) are parsed as WQL. Properties
 * checked on every input:
 *   - success: there is a tree, its rendering is non-NULL and well formed
 *     (starts with '(', ends with ')'), every leaf walked has a tag name and
 *     at least one value, with data non-NULL (wql.h), and no more leaves
 *     than the node limit;
 *   - failure: the code is ORDO_E_WQL or ORDO_E_NOMEM, there is no tree, and
 *     there is a message.
 * ASan/UBSan catch memory and arithmetic errors on the way; LeakSanitizer
 * catches trees or messages not freed on some path.
 */
#include "ordo.h"
#include "storage/storage.h"
#include "wallet/wql.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int check_leaf(ordo_storage_query *leaf, void *ud) {
  size_t *count = ud;
  (*count)++;
  if (leaf->tag_name.data == NULL || leaf->tag_name.len == 0 ||
      leaf->nvalues == 0 || leaf->values == NULL)
    abort();
  if (leaf->plaintext != (leaf->tag_name.data[0] == '~'))
    abort();
  if (leaf->op != ORDO_SQ_IN && leaf->nvalues != 1)
    abort();
  for (size_t i = 0; i < leaf->nvalues; i++)
    if (leaf->values[i].data == NULL)
      abort();
  /* Range and LIKE only ever on plaintext tags. */
  if (leaf->op >= ORDO_SQ_GT && leaf->op <= ORDO_SQ_LIKE && !leaf->plaintext)
    abort();
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *text = malloc(size + 1);
  if (text == NULL)
    return 0;
  memcpy(text, data, size);
  text[size] = '\0';

  ordo_storage_query *q = NULL;
  char *msg = NULL;
  int rc = ordo__wql_parse(text, &q, &msg);
  if (rc == ORDO_OK) {
    if (q == NULL || msg != NULL)
      abort();
    char *s = ordo__wql_to_string(q);
    if (s == NULL)
      abort(); /* the fuzzer's allocations do not fail */
    size_t n = strlen(s);
    if (n < 2 || s[0] != '(' || s[n - 1] != ')')
      abort();
    free(s);
    size_t leaves = 0;
    if (ordo__wql_walk_leaves(q, check_leaf, &leaves) != 0)
      abort();
    if (leaves > ORDO__WQL_MAX_NODES)
      abort();
    ordo_storage_query_free(q);
  } else {
    if (rc != ORDO_E_WQL && rc != ORDO_E_NOMEM)
      abort();
    if (q != NULL || msg == NULL)
      abort();
    free(msg);
  }
  free(text);
  return 0;
}

/*
 * storage.c — what every storage backend shares: freeing the records,
 * queries and request outputs the interface hands around, and the table of
 * built-in backends.
 *
 * Everything freed here is wiped first. The buffers hold ciphertext only
 * (the wallet encrypts before it stores), apart from '~' tags, which are
 * plaintext by choice; wiping costs next to nothing and keeps the habit
 * uniform with the wallet's own buffers.
 */
#include "storage/storage.h"
#include "base/base.h"

#include <stdlib.h>
#include <string.h>

void ordo_storage_buf_clear(ordo_storage_buf *b) {
  ordo__free_wiped(b->data, b->len);
  b->data = NULL;
  b->len = 0;
}

void ordo_storage_record_clear(ordo_storage_record *r) {
  if (r == NULL)
    return;
  ordo_storage_buf_clear(&r->category);
  ordo_storage_buf_clear(&r->name);
  ordo_storage_buf_clear(&r->value);
  if (r->tags != NULL) {
    for (size_t i = 0; i < r->ntags; i++) {
      ordo_storage_buf_clear(&r->tags[i].name);
      ordo_storage_buf_clear(&r->tags[i].value);
    }
    free(r->tags);
  }
  memset(r, 0, sizeof(*r));
}

void ordo_storage_query_free(ordo_storage_query *q) {
  if (q == NULL)
    return;
  ordo_storage_buf_clear(&q->tag_name);
  if (q->values != NULL) {
    for (size_t i = 0; i < q->nvalues; i++)
      ordo_storage_buf_clear(&q->values[i]);
    free(q->values);
  }
  if (q->children != NULL) {
    for (size_t i = 0; i < q->nchildren; i++)
      ordo_storage_query_free(q->children[i]);
    free(q->children);
  }
  free(q);
}

void ordo_storage_req_clear_output(ordo_storage_req *req) {
  if (req == NULL)
    return;
  free(req->message); /* a diagnostic, never secret */
  req->message = NULL;
  ordo_storage_record_clear(&req->result);
  if (req->results != NULL) {
    for (size_t i = 0; i < req->nresults; i++)
      ordo_storage_record_clear(&req->results[i]);
    free(req->results);
  }
  req->results = NULL;
  req->nresults = 0;
  req->count = 0;
}

const ordo_storage_backend *ordo_storage_backend_find(const char *name) {
  static const ordo_storage_backend *const builtin[] = {&ordo_storage_sqlite};
  if (name == NULL)
    return NULL;
  for (size_t i = 0; i < sizeof(builtin) / sizeof(builtin[0]); i++)
    if (strcmp(builtin[i]->name, name) == 0)
      return builtin[i];
  return NULL;
}

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

#include <stdarg.h>
#include <stdio.h>
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

int ordo__storage_is_write(ordo_storage_opcode op) {
  switch (op) {
  case ORDO_STORAGE_GET:
  case ORDO_STORAGE_SCAN:
  case ORDO_STORAGE_COUNT:
  case ORDO_STORAGE_META_GET:
  case ORDO_STORAGE_CLOSE:
  case ORDO_STORAGE_SHRINK:
    return 0;
  default:
    return 1;
  }
}

/* ---- what every backend checks on submit ---------------------------------- */

/* A buffer the backend reads: data may be NULL only when empty. */
static int buf_ok(const ordo_storage_buf *b) {
  return b->data != NULL || b->len == 0;
}

/* A key (category, name, tag name): must be given, even when empty. */
static int key_ok(const ordo_storage_buf *b) { return b->data != NULL; }

static int tags_ok(const ordo_storage_record *r) {
  if (r->ntags > 0 && r->tags == NULL)
    return 0;
  for (size_t i = 0; i < r->ntags; i++)
    if (!key_ok(&r->tags[i].name) || !buf_ok(&r->tags[i].value))
      return 0;
  return 1;
}

/* Check a query tree and count the SQL parameters it will bind. */
static int query_ok(const ordo_storage_query *q, int depth, int max_depth,
                    size_t *params) {
  if (q == NULL || depth > max_depth)
    return 0;
  switch (q->op) {
  case ORDO_SQ_ALL:
    return 1;
  case ORDO_SQ_AND:
  case ORDO_SQ_OR:
  case ORDO_SQ_NOT:
    if (q->op == ORDO_SQ_NOT && q->nchildren != 1)
      return 0;
    if (q->nchildren > 0 && q->children == NULL)
      return 0;
    for (size_t i = 0; i < q->nchildren; i++)
      if (!query_ok(q->children[i], depth + 1, max_depth, params))
        return 0;
    return 1;
  case ORDO_SQ_NAME_GTE:
  case ORDO_SQ_NAME_LT:
    if (q->nvalues != 1 || q->values == NULL || !buf_ok(&q->values[0]))
      return 0;
    (*params)++;
    return 1;
  case ORDO_SQ_GT:
  case ORDO_SQ_GTE:
  case ORDO_SQ_LT:
  case ORDO_SQ_LTE:
  case ORDO_SQ_LIKE:
    if (!q->plaintext)
      return 0; /* encrypted values have no order and no pattern */
    /* fall through */
  case ORDO_SQ_EQ:
  case ORDO_SQ_NEQ:
    if (q->nvalues != 1)
      return 0;
    /* fall through */
  case ORDO_SQ_IN:
    if (!key_ok(&q->tag_name) || (q->nvalues > 0 && q->values == NULL))
      return 0;
    for (size_t i = 0; i < q->nvalues; i++)
      if (!buf_ok(&q->values[i]))
        return 0;
    *params += 1 + q->nvalues;
    return 1;
  default:
    return 0;
  }
}

static int req_ok(const ordo_storage_req *req, int in_batch, int max_depth,
                  size_t max_params) {
  const ordo_storage_record *r = &req->rec;
  switch (req->opcode) {
  case ORDO_STORAGE_ADD:
  case ORDO_STORAGE_ADD_TAGS:
  case ORDO_STORAGE_REPLACE_TAGS:
  case ORDO_STORAGE_DELETE_TAGS:
    return key_ok(&r->category) && key_ok(&r->name) && buf_ok(&r->value) &&
           tags_ok(r);
  case ORDO_STORAGE_GET:
  case ORDO_STORAGE_UPDATE_VALUE:
  case ORDO_STORAGE_DELETE:
    return key_ok(&r->category) && key_ok(&r->name) && buf_ok(&r->value);
  case ORDO_STORAGE_DELETE_MATCHING:
    if (r->category.data == NULL || req->query == NULL)
      return 0; /* never a whole category, or all of them */
    /* fall through */
  case ORDO_STORAGE_SCAN:
  case ORDO_STORAGE_COUNT: {
    size_t params = 3; /* category, limit, offset */
    if (!buf_ok(&r->category))
      return 0; /* data NULL: every category (storage.h) */
    if (req->query != NULL && !query_ok(req->query, 0, max_depth, &params))
      return 0;
    return params <= max_params;
  }
  case ORDO_STORAGE_META_SET:
  case ORDO_STORAGE_META_GET:
    return key_ok(&r->name) && buf_ok(&r->value);
  case ORDO_STORAGE_BATCH:
    if (in_batch || (req->nbatch > 0 && req->batch == NULL))
      return 0;
    for (size_t i = 0; i < req->nbatch; i++)
      if (!req_ok(&req->batch[i], 1, max_depth, max_params))
        return 0;
    return 1;
  case ORDO_STORAGE_CLOSE:
  case ORDO_STORAGE_SHRINK:
    return !in_batch;
  default:
    return 0;
  }
}

/* The output fields start empty; what a previous use left there is the
 * caller's to have cleared (ordo_storage_req_clear_output). */
void ordo__storage_req_reset_output(ordo_storage_req *req) {
  req->status = ORDO_OK;
  req->message = NULL;
  memset(&req->result, 0, sizeof(req->result));
  req->results = NULL;
  req->nresults = 0;
  req->count = 0;
  req->backend_next = NULL;
  if (req->opcode == ORDO_STORAGE_BATCH)
    for (size_t i = 0; i < req->nbatch; i++)
      ordo__storage_req_reset_output(&req->batch[i]);
}

int ordo__storage_req_valid(const ordo_storage_req *req, int max_depth,
                            size_t max_params) {
  return req_ok(req, 0, max_depth, max_params);
}

const ordo_storage_backend *ordo_storage_backend_find(const char *name) {
  static const ordo_storage_backend *const builtin[] = {
      &ordo_storage_sqlite, &ordo_storage_postgres};
  if (name == NULL)
    return NULL;
  for (size_t i = 0; i < sizeof(builtin) / sizeof(builtin[0]); i++)
    if (strcmp(builtin[i]->name, name) == 0)
      return builtin[i];
  return NULL;
}

int ordo_storage_is_postgres_uri(const char *uri) {
  return uri != NULL && (strncmp(uri, "postgres://", 11) == 0 ||
                         strncmp(uri, "postgresql://", 13) == 0);
}

int ordo__storage_data_path(const char *data, const char *name, char *out,
                            size_t outlen) {
  int pg = ordo_storage_is_postgres_uri(data), n;
  if (pg && strchr(data, '#') != NULL)
    return ordo__set_last_error(ORDO_E_INVAL, "a PostgreSQL data location "
                                "is a database URL, without '#'");
  n = snprintf(out, outlen, pg ? "%s#%s" : "%s/%s.db", data, name);
  if (n < 0 || (size_t)n >= outlen)
    return ordo__set_last_error(ORDO_E_INVAL, "data location too long");
  return ORDO_OK;
}

void ordo__storage_req_msg(ordo_storage_req *req, const char *fmt, ...) {
  free(req->message);
  req->message = NULL;
  va_list ap;
  va_start(ap, fmt);
  char *m;
  if (vasprintf(&m, fmt, ap) >= 0)
    req->message = m;
  va_end(ap);
}

void ordo__storage_req_drop_output(ordo_storage_req *req) {
  char *message = req->message;
  req->message = NULL;
  ordo_storage_req_clear_output(req);
  req->message = message;
}

int ordo__storage_set_err(char **errmsg, int code, const char *fmt, ...) {
  if (errmsg == NULL)
    return code;
  free(*errmsg);
  *errmsg = NULL;
  va_list ap;
  va_start(ap, fmt);
  char *m;
  if (vasprintf(&m, fmt, ap) >= 0)
    *errmsg = m;
  va_end(ap);
  return code;
}

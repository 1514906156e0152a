/*
 * record.c — record commands: add, get, update, tags, delete, search, count.
 *
 * Each is two stages on the cheap class around one storage request:
 *   1. look the wallet up, encrypt what the request carries (type, name,
 *      value, tags, or the WQL query's encrypted leaves), submit, and return
 *      ORDO__STAGE_ASYNC;
 *   2. (when the backend resumes the op) check the status, decrypt what came
 *      back, and build the JSON result.
 * The storage thread does only SQL; all crypto stays on cheap threads.
 */
#include "base/base.h"
#include "wallet/wallet.h"
#include "wallet/wql.h"
#include "runtime/runtime.h"

#include <jansson.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

typedef struct record_cmd {
  ordo_ctx *ctx;
  char *wallet_id;
  ordo__wallet *w;
  ordo_storage_opcode opcode;
  char *type, *name, *value;   /* plaintext arguments (NULL when not given) */
  json_t *tags;                /* object of tags, or array of names to delete */
  char *wql;
  ordo_storage_query *query;
  ordo_storage_req req;
  int retrieve_value, retrieve_tags, retrieve_type, retrieve_total;
} record_cmd;

static void record_cmd_free(void *p) {
  record_cmd *c = p;
  ordo_storage_record_clear(&c->req.rec);
  ordo_storage_req_clear_output(&c->req);
  ordo_storage_query_free(c->query);
  ordo__wallet_release(c->w);
  ordo__free_secret(c->value);
  ORDO__FREE_ALL(c->wallet_id, c->type, c->name, c->wql);
  json_decref(c->tags);
  free(c);
}

/* A stored record as the JSON the caller asked for. */
static json_t *record_json(const record_cmd *c, const ordo__wallet_keys *k,
                           const ordo_storage_record *r) {
  int flags = (c->retrieve_type ? ORDO__OPEN_TYPE : 0) |
              (c->retrieve_value ? ORDO__OPEN_VALUE : 0) |
              (c->retrieve_tags ? ORDO__OPEN_TAGS : 0);
  json_t *o = ordo__wallet_open_record(k, r, flags);
  if (o != NULL && !c->retrieve_type && c->type != NULL)
    json_object_set_new(o, "type", json_string(c->type));
  return o;
}


/* ---- records for other modules (wallet.h) ---------------------------------------- */

/* Encrypt (type, name, value, tags) into req's record for opcode; the rest
 * of req is left as it is. */
static int rec_seal(ordo_op *op, ordo__wallet *w, ordo_storage_req *req,
                    ordo_storage_opcode opcode, const char *type, const char *name,
                    const char *value, json_t *tags, int names_only) {
  char err[160] = "";
  req->opcode = opcode;
  int rc = ordo__wallet_seal_record(ordo__wallet_keys_of(w), type, name, value, tags,
                                    names_only, &req->rec, err, sizeof(err));
  if (rc != ORDO_OK && err[0] != '\0')
    ordo_op_set_message(op, "%s", err);
  return rc;
}

/* rec_seal of a cleared req, with value as its compact JSON text (a
 * secret, maybe: wiped once sealed). */
static int rec_fill(ordo_op *op, ordo__wallet *w, ordo_storage_req *req,
                    ordo_storage_opcode opcode, const char *type, const char *name,
                    json_t *value, json_t *tags) {
  ordo__wallet_rec_clear(req);
  char *v = value != NULL ? json_dumps(value, JSON_COMPACT) : NULL;
  if (value != NULL && v == NULL)
    return ORDO_E_NOMEM;
  int rc = rec_seal(op, w, req, opcode, type, name, v, tags, 0);
  ordo__free_secret(v);
  return rc;
}

int ordo__wallet_rec_add(ordo_op *op, ordo__wallet *w, ordo_storage_req *req,
                         const char *type, const char *name, json_t *value,
                         json_t *tags) {
  return rec_fill(op, w, req, ORDO_STORAGE_ADD, type, name, value, tags);
}

int ordo__wallet_rec_get(ordo_op *op, ordo__wallet *w, ordo_storage_req *req,
                         const char *type, const char *name) {
  return rec_fill(op, w, req, ORDO_STORAGE_GET, type, name, NULL, NULL);
}

int ordo__wallet_rec_update(ordo_op *op, ordo__wallet *w, ordo_storage_req *req,
                            const char *type, const char *name, json_t *value) {
  return rec_fill(op, w, req, ORDO_STORAGE_UPDATE_VALUE, type, name, value, NULL);
}

int ordo__wallet_rec_delete(ordo_op *op, ordo__wallet *w, ordo_storage_req *req,
                            const char *type, const char *name) {
  return rec_fill(op, w, req, ORDO_STORAGE_DELETE, type, name, NULL, NULL);
}

int ordo__wallet_rec_search(ordo_op *op, ordo__wallet *w, ordo_storage_req *req,
                            const char *type, const char *wql,
                            unsigned long long limit, ordo_storage_query **query) {
  *query = NULL;
  int rc = rec_fill(op, w, req, ORDO_STORAGE_SCAN, type, NULL, NULL, NULL);
  if (rc != ORDO_OK || wql == NULL)
    return rc;
  char *err = NULL;
  rc = ordo__wallet_parse_query(ordo__wallet_keys_of(w), wql, query, &err);
  if (rc != ORDO_OK && err != NULL)
    ordo_op_set_message(op, "WQL: %s", err);
  free(err);
  req->query = *query;
  req->limit = limit;
  return rc;
}

int ordo__wallet_rec_submit(ordo_op *op, ordo__wallet *w, ordo_storage_req *req,
                            ordo_stage_fn next) {
  int rc = ordo__op_add_stage(op, ORDO_CLASS_CHEAP, next);
  if (rc != ORDO_OK)
    return rc;
  return ordo__wallet_req_submit(op, ordo__wallet_storage(w), req);
}

int ordo__wallet_rec_submit_batch(ordo_op *op, ordo__wallet *w,
                                  ordo_storage_req *req, ordo_storage_req *sub,
                                  size_t n, ordo_stage_fn next) {
  ordo__wallet_rec_clear(req);
  req->opcode = ORDO_STORAGE_BATCH;
  req->batch = sub;
  req->nbatch = n;
  return ordo__wallet_rec_submit(op, w, req, next);
}

json_t *ordo__wallet_rec_value(ordo__wallet *w, const ordo_storage_record *r,
                               char **name) {
  json_t *o = ordo__wallet_open_record(ordo__wallet_keys_of(w), r, ORDO__OPEN_VALUE);
  const char *v = json_string_value(json_object_get(o, "value"));
  const char *n = json_string_value(json_object_get(o, "name"));
  json_t *value = v != NULL ? json_loads(v, 0, NULL) : NULL;
  if (v != NULL)
    sodium_memzero((void *)v, strlen(v));
  if (name != NULL)
    *name = value != NULL && n != NULL ? strdup(n) : NULL;
  json_decref(o);
  return value;
}

void ordo__wallet_rec_clear(ordo_storage_req *req) {
  ordo_storage_record_clear(&req->rec);
  ordo_storage_req_clear_output(req);
  memset(req, 0, sizeof(*req));
}

/* ---- stages --------------------------------------------------------------------- */

static int stage_record_finish(ordo_op *op, void *st) {
  record_cmd *c = st;
  const ordo__wallet_keys *k = ordo__wallet_keys_of(c->w);
  if (c->req.status != ORDO_OK) {
    if (c->req.status == ORDO_E_RECORD_NOT_FOUND)
      ordo_op_set_message(op, "no record '%s' of type '%s' in wallet '%s'",
                          c->name, c->type, c->wallet_id);
    else if (c->req.status == ORDO_E_RECORD_DUPLICATE)
      ordo_op_set_message(op, "a record '%s' of type '%s' already exists in "
                              "wallet '%s'", c->name, c->type, c->wallet_id);
    else
      ordo_op_set_message(op, "%s", c->req.message ? c->req.message
                                                   : ordo_strerror(c->req.status));
    return c->req.status;
  }
  switch (c->opcode) {
  case ORDO_STORAGE_GET: {
    json_t *o = record_json(c, k, &c->req.result);
    if (o == NULL) {
      ordo_op_set_message(op, "record '%s' does not decrypt: wallet corrupt", c->name);
      return ORDO_E_STORAGE;
    }
    return ordo__op_set_result_json(op, o);
  }
  case ORDO_STORAGE_SCAN: {
    json_t *arr = json_array();
    for (size_t i = 0; arr != NULL && i < c->req.nresults; i++) {
      json_t *o = record_json(c, k, &c->req.results[i]);
      if (o == NULL) {
        json_decref(arr);
        ordo_op_set_message(op, "a record does not decrypt: wallet corrupt");
        return ORDO_E_STORAGE;
      }
      json_array_append_new(arr, o);
    }
    json_t *res = json_pack("{s:o}", "records", arr);
    if (res != NULL && c->retrieve_total)
      json_object_set_new(res, "total", json_integer((json_int_t)c->req.count));
    return ordo__op_set_result_json(op, res);
  }
  case ORDO_STORAGE_COUNT:
    return ordo__op_set_result_json(op, json_pack("{s:I}", "count", (json_int_t)c->req.count));
  default:
    return ordo_op_set_result(op, "{}");
  }
}

static int stage_record_submit(ordo_op *op, void *st) {
  record_cmd *c = st;
  int rc = ordo__wallet_get(c->ctx, c->wallet_id, &c->w);
  if (rc != ORDO_OK) {
    ordo_op_set_message(op, "wallet '%s' is not open", c->wallet_id);
    return rc;
  }
  rc = rec_seal(op, c->w, &c->req, c->opcode, c->type, c->name, c->value, c->tags,
                c->opcode == ORDO_STORAGE_DELETE_TAGS);
  if (rc != ORDO_OK)
    return rc;
  if (c->query != NULL &&
      (rc = ordo__wallet_seal_query(ordo__wallet_keys_of(c->w), c->query)) != ORDO_OK)
    return rc;
  c->req.query = c->query;
  return ordo__wallet_rec_submit(op, c->w, &c->req, stage_record_finish);
}

/* ---- building commands --------------------------------------------------------- */

static int dup_arg(ordo_op *op, const char *what, const char *s, char **out) {
  if (s == NULL) {
    ordo_op_set_message(op, "%s is required", what);
    return ORDO_E_INVAL;
  }
  *out = strdup(s);
  return *out != NULL ? ORDO_OK : ORDO_E_NOMEM;
}

static int parse_json_arg(ordo_op *op, const char *what, const char *s,
                          int want_array, json_t **out) {
  json_error_t jerr;
  *out = json_loads(s, JSON_REJECT_DUPLICATES, &jerr);
  if (*out == NULL) {
    /* Never jerr.text: it quotes the text near the error (a value). */
    ordo_op_set_message(op, "%s: not JSON (line %d, column %d)", what,
                        jerr.line, jerr.column);
    return ORDO_E_JSON;
  }
  if (want_array ? !json_is_array(*out) : !json_is_object(*out)) {
    ordo_op_set_message(op, "%s must be a JSON %s", what,
                        want_array ? "array" : "object");
    return ORDO_E_INVAL;
  }
  return ORDO_OK;
}

static int parse_options(ordo_op *op, record_cmd *c, const char *options) {
  c->retrieve_value = 1;
  c->retrieve_tags = 1;
  if (options == NULL)
    return ORDO_OK;
  json_t *o;
  int rc = parse_json_arg(op, "options", options, 0, &o);
  if (rc != ORDO_OK) {
    json_decref(o);
    return rc;
  }
  const char *key;
  json_t *v;
  json_object_foreach(o, key, v) {
    int *slot = !strcmp(key, "retrieve_value")         ? &c->retrieve_value
                : !strcmp(key, "retrieve_tags")        ? &c->retrieve_tags
                : !strcmp(key, "retrieve_type")        ? &c->retrieve_type
                : !strcmp(key, "retrieve_total_count") ? &c->retrieve_total
                                                       : NULL;
    if (slot == NULL || !json_is_boolean(v)) {
      ordo_op_set_message(op, slot == NULL ? "options: unknown key '%s'"
                                           : "options: '%s' must be true or false",
                          key);
      json_decref(o);
      return ORDO_E_INVAL;
    }
    *slot = json_is_true(v);
  }
  json_decref(o);
  return ORDO_OK;
}

typedef struct record_args {
  ordo_storage_opcode opcode;
  const char *wallet_id, *type, *name, *value, *tags, *options, *wql;
  int tags_are_names;
  unsigned long long offset, limit;
} record_args;

static ordo_op *record_start(ordo_ctx *ctx, const record_args *a) {
  ordo_op *op;
  record_cmd *c = ordo__wallet_cmd_new(ctx, sizeof(*c), record_cmd_free, &op);
  if (c == NULL)
    return NULL;
  c->opcode = a->opcode;
  int rc = dup_arg(op, "wallet id", a->wallet_id, &c->wallet_id);
  if (rc == ORDO_OK)
    rc = dup_arg(op, "record type", a->type, &c->type);
  if (rc == ORDO_OK && a->opcode != ORDO_STORAGE_SCAN && a->opcode != ORDO_STORAGE_COUNT)
    rc = dup_arg(op, "record name", a->name, &c->name);
  if (rc == ORDO_OK && (a->opcode == ORDO_STORAGE_ADD ||
                        a->opcode == ORDO_STORAGE_UPDATE_VALUE))
    rc = dup_arg(op, "record value", a->value, &c->value);
  if (rc == ORDO_OK && a->tags != NULL)
    rc = parse_json_arg(op, a->tags_are_names ? "tag names" : "tags", a->tags,
                        a->tags_are_names, &c->tags);
  if (rc == ORDO_OK && a->opcode == ORDO_STORAGE_REPLACE_TAGS && c->tags == NULL)
    c->tags = json_object(); /* replace with none */
  if (rc == ORDO_OK)
    rc = parse_options(op, c, a->options);
  if (rc == ORDO_OK && (a->opcode == ORDO_STORAGE_SCAN || a->opcode == ORDO_STORAGE_COUNT)) {
    char *err = NULL;
    rc = ordo__wql_parse(a->wql, &c->query, &err);
    if (rc != ORDO_OK)
      ordo_op_set_message(op, "WQL: %s", err != NULL ? err : ordo_strerror(rc));
    free(err);
    c->req.offset = a->offset;
    c->req.limit = a->limit;
    c->req.want_count = c->retrieve_total;
  }
  if (rc == ORDO_OK)
    rc = ordo__op_add_stage(op, ORDO_CLASS_CHEAP, stage_record_submit);
  return rc != ORDO_OK ? ordo__op_reject(op, rc) : ordo__op_start(op);
}

ordo_op *ordo_record_add(ordo_ctx *ctx, const char *wallet_id, const char *type,
                         const char *name, const char *value, const char *tags_json) {
  return record_start(ctx, &(record_args){.opcode = ORDO_STORAGE_ADD,
      .wallet_id = wallet_id, .type = type, .name = name, .value = value,
      .tags = tags_json});
}

ordo_op *ordo_record_get(ordo_ctx *ctx, const char *wallet_id, const char *type,
                         const char *name, const char *options_json) {
  return record_start(ctx, &(record_args){.opcode = ORDO_STORAGE_GET,
      .wallet_id = wallet_id, .type = type, .name = name, .options = options_json});
}

ordo_op *ordo_record_update_value(ordo_ctx *ctx, const char *wallet_id,
                                  const char *type, const char *name,
                                  const char *value) {
  return record_start(ctx, &(record_args){.opcode = ORDO_STORAGE_UPDATE_VALUE,
      .wallet_id = wallet_id, .type = type, .name = name, .value = value});
}

ordo_op *ordo_record_update_tags(ordo_ctx *ctx, const char *wallet_id,
                                 const char *type, const char *name,
                                 const char *tags_json) {
  return record_start(ctx, &(record_args){.opcode = ORDO_STORAGE_REPLACE_TAGS,
      .wallet_id = wallet_id, .type = type, .name = name, .tags = tags_json});
}

ordo_op *ordo_record_add_tags(ordo_ctx *ctx, const char *wallet_id,
                              const char *type, const char *name,
                              const char *tags_json) {
  return record_start(ctx, &(record_args){.opcode = ORDO_STORAGE_ADD_TAGS,
      .wallet_id = wallet_id, .type = type, .name = name,
      .tags = tags_json ? tags_json : "{}"});
}

ordo_op *ordo_record_delete_tags(ordo_ctx *ctx, const char *wallet_id,
                                 const char *type, const char *name,
                                 const char *tag_names_json) {
  return record_start(ctx, &(record_args){.opcode = ORDO_STORAGE_DELETE_TAGS,
      .wallet_id = wallet_id, .type = type, .name = name,
      .tags = tag_names_json ? tag_names_json : "[]", .tags_are_names = 1});
}

ordo_op *ordo_record_delete(ordo_ctx *ctx, const char *wallet_id, const char *type,
                            const char *name) {
  return record_start(ctx, &(record_args){.opcode = ORDO_STORAGE_DELETE,
      .wallet_id = wallet_id, .type = type, .name = name});
}

ordo_op *ordo_record_search(ordo_ctx *ctx, const char *wallet_id, const char *type,
                            const char *wql, const char *options_json,
                            unsigned long long offset, unsigned long long limit) {
  return record_start(ctx, &(record_args){.opcode = ORDO_STORAGE_SCAN,
      .wallet_id = wallet_id, .type = type, .wql = wql, .options = options_json,
      .offset = offset, .limit = limit});
}

ordo_op *ordo_record_count(ordo_ctx *ctx, const char *wallet_id, const char *type,
                           const char *wql) {
  return record_start(ctx, &(record_args){.opcode = ORDO_STORAGE_COUNT,
      .wallet_id = wallet_id, .type = type, .wql = wql});
}

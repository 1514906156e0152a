/*
 * http_batches.c — the node's write side over REST: POST /batches (a
 * BatchList protobuf, checked as a validator would and queued for the next
 * block) and GET|POST /batch_statuses (with wait=, a long poll until every
 * id is final or the wait ends). Shared answers are in http.c (routes.h).
 */
#include "node/routes.h"
#include "http/http.h"
#include "runtime/runtime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Ids in one POST /batch_statuses. */
#define HTTP_MAX_POST_IDS 10000

/* ------------------------------------------------------------------------ */
/* POST /batches                                                             */
/* ------------------------------------------------------------------------ */

int ordo__node_post_batches(ordo_node *node, const ordo_node_request *req,
                            node_answer *a) {
  ordo_ledger_batchlist *bl = NULL;
  char base[300];
  size_t n, i, len;
  char *link;
  json_t *body;
  int rc;

  if (!ordo__http_content_type_is(req->content_type,
                                  "application/octet-stream"))
    return ordo__node_reply_error(
        a, 400, 42, "Wrong Content Type",
        "Batches must be submitted as a BatchList protobuf "
        "binary, with a 'Content-Type' header of "
        "'application/octet-stream'");
  if (req->body_len == 0)
    return ordo__node_reply_error(
        a, 400, 34, "No Batches Submitted",
        "The protobuf BatchList you submitted was empty and "
        "contained no Batches");
  rc = ordo_ledger_batchlist_decode(req->body, req->body_len, &bl);
  if (rc == ORDO_E_NOMEM)
    return ordo__node_reply_nomem(a);
  if (rc != ORDO_OK)
    return ordo__node_reply_error(a, 400, 35, "Protobuf Not Decodable",
                                  ordo_last_error_message());
  if ((n = ordo_ledger_batchlist_count(bl)) == 0) {
    ordo_ledger_batchlist_free(bl);
    return ordo__node_reply_error(
        a, 400, 34, "No Batches Submitted",
        "The protobuf BatchList you submitted was empty and "
        "contained no Batches");
  }
  if ((rc = ordo_ledger_batchlist_validate(bl)) != ORDO_OK) {
    char msg[600];
    ordo_ledger_batchlist_free(bl);
    if (rc == ORDO_E_NOMEM)
      return ordo__node_reply_nomem(a);
    snprintf(msg, sizeof msg, "Submitted batches failed validation: %s",
             ordo_last_error_message());
    return ordo__node_reply_error(a, 400, 30, "Submitted Batches Invalid", msg);
  }
  if (!ordo__node_list_permitted(node, bl)) {
    /* As a permissioned validator's REST API: the whole list, and no word
     * on which batch. */
    ordo_ledger_batchlist_free(bl);
    ordo__node_count(&node->stats.lists_refused, 1);
    return ordo__node_reply_error(
        a, 400, 30, "Submitted Batches Invalid",
        "The submitted BatchList was rejected by the "
        "validator. It was poorly formed, or has an invalid "
        "signature.");
  }
  /* The link names every batch of the list, known before or not. */
  ordo__node_base_url(node, req, base, sizeof base);
  len = strlen(base) +
        sizeof "/batch_statuses?id=" + n * (ORDO_LEDGER_ID_LEN + 1);
  for (i = 0; i < n; i++)
    len += strlen(ordo_ledger_batch_id(ordo_ledger_batchlist_batch(bl, i)));
  if ((link = malloc(len)) == NULL) {
    ordo_ledger_batchlist_free(bl);
    return ordo__node_reply_nomem(a);
  }
  len = (size_t)sprintf(link, "%s/batch_statuses?id=", base);
  for (i = 0; i < n; i++)
    len += (size_t)sprintf(link + len, "%s%s", i > 0 ? "," : "",
                           ordo_ledger_batch_id(ordo_ledger_batchlist_batch(bl, i)));
  body = json_pack("{s:s}", "link", link);
  free(link);
  if (body == NULL) {
    ordo_ledger_batchlist_free(bl);
    return ordo__node_reply_nomem(a);
  }
  rc = ordo__node_submit(node, bl); /* takes bl */
  if (rc == ORDO_OK)
    return ordo__node_reply(a, 202, body);
  json_decref(body);
  switch (rc) {
  case ORDO_E_BUSY:
    return ordo__node_reply_error(
        a, 429, 31, "Unable to Accept Batches",
        "The validator cannot accept more batches at this "
        "time; retry later");
  case ORDO_E_SHUTDOWN:
    return ordo__node_reply_error(a, 503, 18, "Validator Disconnected",
                                  "The validator is shutting down");
  case ORDO_E_NOMEM:
    return ordo__node_reply_nomem(a);
  default:
    return ordo__node_reply_error(a, 500, 10, "Unknown Validator Error",
                                  ordo_last_error_message());
  }
}

/* ------------------------------------------------------------------------ */
/* GET|POST /batch_statuses                                                  */
/* ------------------------------------------------------------------------ */

/* Seconds from wait=: absent 0, a number clipped to 0..max_wait_s,
 * anything else (wait=true) max_wait_s, as Sawtooth's REST API does. */
static double parse_wait(ordo_node *node, const char *v) {
  char *end;
  double w;
  if (v == NULL)
    return 0;
  w = strtod(v, &end);
  if (end == v || *end != '\0' || w != w)
    return node->opts.max_wait_s;
  if (w < 0)
    return 0;
  return w > node->opts.max_wait_s ? node->opts.max_wait_s : w;
}

static void free_ids(char **ids, size_t n) {
  size_t i;
  for (i = 0; i < n; i++)
    free(ids[i]);
  free(ids);
}

/* The ids of "A,B,C": new strings (an empty one among them too: it fails
 * the id check, 400/60, as on Sawtooth). */
static int split_ids(const char *v, char ***out, size_t *n) {
  size_t cap = 1, i = 0;
  const char *p;
  char **ids;
  for (p = v; *p != '\0'; p++)
    cap += *p == ',';
  if ((ids = calloc(cap, sizeof *ids)) == NULL)
    return ORDO_E_NOMEM;
  for (p = v;;) {
    const char *comma = strchr(p, ',');
    size_t len = comma != NULL ? (size_t)(comma - p) : strlen(p);
    if ((ids[i] = strndup(p, len)) == NULL) {
      free_ids(ids, i);
      return ORDO_E_NOMEM;
    }
    i++;
    if (comma == NULL)
      break;
    p = comma + 1;
  }
  *out = ids;
  *n = i;
  return ORDO_OK;
}

int ordo__node_batch_statuses(ordo_node *node, const ordo_node_request *req,
                              int post, node_answer *a) {
  char **ids = NULL, *v = NULL, base[300];
  size_t n = 0, i;
  double wait;
  json_t *data = NULL, *body = NULL;
  int rc;

  if (post) {
    json_t *arr;
    json_error_t jerr;
    if (!ordo__http_content_type_is(req->content_type, "application/json"))
      return ordo__node_reply_error(
          a, 400, 43, "Wrong Content Type",
          "Requests for batch statuses sent as a POST must "
          "have a 'Content-Type' header of 'application/json'");
    arr =
        json_loadb(req->body != NULL ? req->body : "", req->body_len, 0, &jerr);
    if (arr == NULL || !json_is_array(arr) || json_array_size(arr) == 0 ||
        json_array_size(arr) > HTTP_MAX_POST_IDS) {
      json_decref(arr);
      return ordo__node_reply_error(
          a, 400, 46, "Bad Status Request",
          "The body must be a JSON array of 1 to 10000 batch "
          "ids");
    }
    n = json_array_size(arr);
    if ((ids = calloc(n, sizeof *ids)) == NULL) {
      json_decref(arr);
      return ordo__node_reply_nomem(a);
    }
    for (i = 0; i < n; i++) {
      const char *s = json_string_value(json_array_get(arr, i));
      if (s == NULL) {
        free_ids(ids, i);
        json_decref(arr);
        return ordo__node_reply_error(
            a, 400, 46, "Bad Status Request",
            "Requests for batch statuses sent as a POST must "
            "have a JSON formatted body with an array of at "
            "least one id string");
      }
      if ((ids[i] = strdup(s)) == NULL) {
        free_ids(ids, i);
        json_decref(arr);
        return ordo__node_reply_nomem(a);
      }
    }
    json_decref(arr);
  } else {
    if (ordo__node_query_get(req->query, "id", &v) != ORDO_OK)
      return ordo__node_reply_nomem(a);
    rc = v != NULL && v[0] != '\0' ? split_ids(v, &ids, &n) : ORDO_E_INVAL;
    free(v);
    if (rc == ORDO_E_NOMEM)
      return ordo__node_reply_nomem(a);
    if (rc != ORDO_OK)
      return ordo__node_reply_error(
          a, 400, 66, "Id Query Invalid or Missing",
          "Requests for batch statuses need an 'id' query of "
          "comma-separated batch ids");
    if (n > ORDO_NODE_MAX_GET_IDS) {
      free_ids(ids, n);
      return ordo__node_reply_error(
          a, 400, 66, "Id Query Invalid or Missing",
          "At most 15 ids in a GET; use POST /batch_statuses "
          "for more");
    }
  }
  for (i = 0; i < n; i++)
    if (!ordo__node_is_id(ids[i])) {
      rc = ordo__node_reply_bad_id(a, ids[i]);
      free_ids(ids, n);
      return rc;
    }
  if (ordo__node_query_get(req->query, "wait", &v) != ORDO_OK) {
    free_ids(ids, n);
    return ordo__node_reply_nomem(a);
  }
  wait = parse_wait(node, v);
  free(v);
  ordo__node_count(&node->stats.batch_status_ids, n);
  if (wait > 0) {
    ordo__node_count(&node->stats.batch_status_waits, 1);
    ordo__node_wait_final(node, ids, n,
                          ordo__now_ns() + (unsigned long long)(wait * 1e9));
  }
  if ((data = json_array()) == NULL)
    goto nomem;
  for (i = 0; i < n; i++) {
    const char *status;
    char *txn, *msg;
    json_t *inv, *e;
    if ((rc = ordo__node_status(node, ids[i], &status, &txn, &msg)) !=
        ORDO_OK) {
      free_ids(ids, n);
      json_decref(data);
      if (rc == ORDO_E_NOMEM)
        return ordo__node_reply_nomem(a);
      return ordo__node_reply_error(a, 500, 10, "Unknown Validator Error",
                                    ordo_last_error_message());
    }
    inv = txn != NULL ? json_pack("[{s:s,s:s,s:s}]", "id", txn, "message",
                                  msg != NULL ? msg : "", "extended_data", "")
                      : json_array();
    free(txn);
    free(msg);
    if (inv == NULL)
      goto nomem;
    e = json_pack("{s:s,s:s,s:o}", "id", ids[i], "status", status,
                  "invalid_transactions", inv);
    if (e == NULL || json_array_append_new(data, e) != 0)
      goto nomem;
  }
  ordo__node_base_url(node, req, base, sizeof base);
  body = json_pack("{s:o,s:o*}", "data", data, "link",
                   ordo__node_link_json(base, "/batch_statuses", req->query));
  data = NULL;
  free_ids(ids, n);
  return body != NULL ? ordo__node_reply(a, 200, body)
                      : ordo__node_reply_nomem(a);
nomem:
  free_ids(ids, n);
  json_decref(data);
  return ordo__node_reply_nomem(a);
}

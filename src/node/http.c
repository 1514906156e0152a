/*
 * http.c — the node's REST subset: request handlers that take a request
 * (method, path, raw query, content type, body) and give an HTTP status and
 * JSON, with no sockets (ordo_node_handle, what the fuzzer drives), and the
 * libmicrohttpd server around them.
 *
 * The server runs one thread per connection (MHD_USE_THREAD_PER_CONNECTION),
 * so a status request that waits (wait=S) only holds its own connection.
 * libmicrohttpd strips and unescapes the query before the access handler
 * sees the URL; the raw query is taken from the URI log callback instead,
 * which runs first and whose result becomes the request's context.
 *
 * The body limit is the server's, not the handlers': as aiohttp under
 * Sawtooth's REST API, an oversized body gets 413 with a plain-text body,
 * at once when Content-Length declares it (the body is never read: the
 * answer is queued on the access handler's first call, so libmicrohttpd
 * sends it instead of `100 Continue` and closes the connection after), or
 * once the bytes received pass it.
 *
 * Hostile clients (as `ordo serve`, src/server/server.c): the connection
 * guard (src/http/guard.h) lists every open connection with a deadline for
 * its request headers and shuts down the late ones, a client trickling a
 * byte now and then included; libmicrohttpd closes connections idle for
 * idle_timeout_ms and refuses more than connection_limit_per_ip per client
 * address.
 */
#include "node/internal.h"
#include "http/mhd.h"
#include "http/http.h"
#include "runtime/runtime.h"

#include <microhttpd.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Ids in one POST /batch_statuses. */
#define HTTP_MAX_POST_IDS 10000
/* limit= of GET /state and /blocks. */
#define HTTP_MAX_LIMIT 1000

/* ------------------------------------------------------------------------ */
/* Answers                                                                   */
/* ------------------------------------------------------------------------ */

typedef struct answer {
  int status;
  json_t *body; /* owned */
} answer;

static int reply(answer *a, int status, json_t *body) {
  a->status = status;
  a->body = body;
  return body != NULL ? ORDO_OK : ORDO_E_NOMEM;
}

/* {"error": {"code", "title", "message"}}, Sawtooth's error shape. */
static int reply_error(answer *a, int status, int code, const char *title,
                       const char *message) {
  return reply(a, status,
               json_pack("{s:{s:i,s:s,s:s}}", "error", "code", code, "title",
                         title, "message", message));
}

static int reply_nomem(answer *a) { return reply(a, 500, NULL); }

/* 400/60, naming the id (cut short): any batch or block id that is not 128
 * lower-case hex digits fails the whole request, as on Sawtooth. */
static int reply_bad_id(answer *a, const char *id) {
  char msg[400];
  snprintf(msg, sizeof msg,
           "Blockchain items are identified by 128 character hex-strings. A "
           "submitted block, batch, or transaction id was invalid: %.200s%s",
           id, strlen(id) > 200 ? "..." : "");
  return reply_error(a, 400, 60, "Invalid Resource Id", msg);
}

/* 400/53: limit= that is not an integer in 1..1000. */
static int reply_bad_limit(answer *a) {
  return reply_error(a, 400, 53, "Invalid Count Query",
                     "The 'limit' query parameter must be an integer from 1 "
                     "to 1000");
}

/* ------------------------------------------------------------------------ */
/* Query strings                                                             */
/* ------------------------------------------------------------------------ */

/*
 * The value of the first key=value in query whose decoded key is key: a new
 * string in *out (a key without '=' has the value ""), or *out NULL when
 * absent. ORDO_E_NOMEM.
 */
static int query_get(const char *query, const char *key, char **out) {
  const char *p = query;
  *out = NULL;
  if (query == NULL)
    return ORDO_OK;
  while (*p != '\0') {
    const char *end = strchr(p, '&'), *eq;
    size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
    char *k;
    eq = memchr(p, '=', len);
    k = ordo__http_url_decode(p, eq != NULL ? (size_t)(eq - p) : len);
    if (k == NULL)
      return ORDO_E_NOMEM;
    if (strcmp(k, key) == 0) {
      free(k);
      *out = eq != NULL
                 ? ordo__http_url_decode(eq + 1, len - (size_t)(eq + 1 - p))
                 : strdup("");
      return *out != NULL ? ORDO_OK : ORDO_E_NOMEM;
    }
    free(k);
    p += len;
    if (*p == '&')
      p++;
  }
  return ORDO_OK;
}

/* 1 if s is n lower-case hex digits (n == (size_t)-1: any number, >= 0). */
static int is_hex(const char *s, size_t n) {
  size_t i;
  for (i = 0; s[i] != '\0'; i++)
    if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
      return 0;
  return n == (size_t)-1 || i == n;
}

/* A batch, transaction or block id as Sawtooth's: 128 lower-case hex. */
static int is_id(const char *s) { return is_hex(s, ORDO_LEDGER_ID_LEN); }

/* "http://HOST" for links. */
static void base_url(ordo_node *node, const ordo_node_request *req, char *out,
                     size_t size) {
  if (req->host != NULL && req->host[0] != '\0' && strlen(req->host) < 256 &&
      strpbrk(req->host, "\"\\/ \r\n") == NULL)
    snprintf(out, size, "http://%s", req->host);
  else
    snprintf(out, size, "http://127.0.0.1:%d", atomic_load(&node->port));
}

/* base + path [+ "?" + query] as a JSON string. */
static json_t *link_json(const char *base, const char *path,
                         const char *query) {
  int q = query != NULL && query[0] != '\0';
  size_t n = strlen(base) + strlen(path) + (q ? strlen(query) + 1 : 0) + 1;
  char *s = malloc(n);
  json_t *j;
  if (s == NULL)
    return NULL;
  snprintf(s, n, "%s%s%s%s", base, path, q ? "?" : "", q ? query : "");
  j = json_string(s);
  free(s);
  return j;
}

/* 1 when the raw key of the pair at q (len bytes) is key. */
static int pair_is(const char *q, size_t len, const char *key) {
  size_t k = strlen(key);
  return len >= k && strncmp(q, key, k) == 0 && (len == k || q[k] == '=');
}

/*
 * query with its head= pairs (and, when start is not NULL, its start=
 * pairs) left out, then head=HEAD (and start=START) appended: a new
 * string, or NULL when out of memory. How links pin the block they read.
 */
static char *pin_query(const char *query, const char *head,
                       const char *start) {
  size_t n = (query != NULL ? strlen(query) : 0) + strlen(head) +
             (start != NULL ? strlen(start) : 0) + 16;
  char *out = malloc(n);
  size_t len = 0;
  const char *q = query;
  if (out == NULL)
    return NULL;
  while (q != NULL && *q != '\0') {
    const char *end = strchr(q, '&');
    size_t l = end != NULL ? (size_t)(end - q) : strlen(q);
    if (l > 0 && !pair_is(q, l, "head") &&
        !(start != NULL && pair_is(q, l, "start")))
      len += (size_t)snprintf(out + len, n - len, "%.*s&", (int)l, q);
    q += l;
    if (*q == '&')
      q++;
  }
  len += (size_t)snprintf(out + len, n - len, "head=%s", head);
  if (start != NULL)
    snprintf(out + len, n - len, "&start=%s", start);
  return out;
}

/* limit=: default HTTP_MAX_LIMIT, 1..HTTP_MAX_LIMIT; 0 when malformed. */
static size_t parse_limit(const char *v) {
  char *end;
  unsigned long n;
  if (v == NULL)
    return HTTP_MAX_LIMIT;
  if (v[0] < '0' || v[0] > '9')
    return 0;
  n = strtoul(v, &end, 10);
  if (*end != '\0' || n == 0 || n > HTTP_MAX_LIMIT)
    return 0;
  return (size_t)n;
}

/* ------------------------------------------------------------------------ */
/* POST /batches                                                             */
/* ------------------------------------------------------------------------ */

static int post_batches(ordo_node *node, const ordo_node_request *req,
                        answer *a) {
  ordo_ledger_batchlist *bl = NULL;
  char base[300];
  size_t n, i, len;
  char *link;
  json_t *body;
  int rc;

  if (!ordo__http_content_type_is(req->content_type,
                                  "application/octet-stream"))
    return reply_error(a, 400, 42, "Wrong Content Type",
                       "Batches must be submitted as a BatchList protobuf "
                       "binary, with a 'Content-Type' header of "
                       "'application/octet-stream'");
  if (req->body_len == 0)
    return reply_error(a, 400, 34, "No Batches Submitted",
                       "The protobuf BatchList you submitted was empty and "
                       "contained no Batches");
  rc = ordo_ledger_batchlist_decode(req->body, req->body_len, &bl);
  if (rc == ORDO_E_NOMEM)
    return reply_nomem(a);
  if (rc != ORDO_OK)
    return reply_error(a, 400, 35, "Protobuf Not Decodable",
                       ordo_last_error_message());
  if ((n = ordo_ledger_batchlist_count(bl)) == 0) {
    ordo_ledger_batchlist_free(bl);
    return reply_error(a, 400, 34, "No Batches Submitted",
                       "The protobuf BatchList you submitted was empty and "
                       "contained no Batches");
  }
  if ((rc = ordo_ledger_batchlist_validate(bl)) != ORDO_OK) {
    char msg[600];
    ordo_ledger_batchlist_free(bl);
    if (rc == ORDO_E_NOMEM)
      return reply_nomem(a);
    snprintf(msg, sizeof msg, "Submitted batches failed validation: %s",
             ordo_last_error_message());
    return reply_error(a, 400, 30, "Submitted Batches Invalid", msg);
  }
  if (!node_list_permitted(node, bl)) {
    /* As a permissioned validator's REST API: the whole list, and no word
     * on which batch. */
    ordo_ledger_batchlist_free(bl);
    node_count(&node->stats.lists_refused, 1);
    return reply_error(a, 400, 30, "Submitted Batches Invalid",
                       "The submitted BatchList was rejected by the "
                       "validator. It was poorly formed, or has an invalid "
                       "signature.");
  }
  /* The link names every batch of the list, known before or not. */
  base_url(node, req, base, sizeof base);
  len = strlen(base) + sizeof "/batch_statuses?id=" + n * (ORDO_LEDGER_ID_LEN + 1);
  for (i = 0; i < n; i++)
    len += strlen(ordo_ledger_batch_id(ordo_ledger_batchlist_batch(bl, i)));
  if ((link = malloc(len)) == NULL) {
    ordo_ledger_batchlist_free(bl);
    return reply_nomem(a);
  }
  len = (size_t)sprintf(link, "%s/batch_statuses?id=", base);
  for (i = 0; i < n; i++)
    len += (size_t)sprintf(link + len, "%s%s", i > 0 ? "," : "",
                           ordo_ledger_batch_id(ordo_ledger_batchlist_batch(bl, i)));
  body = json_pack("{s:s}", "link", link);
  free(link);
  if (body == NULL) {
    ordo_ledger_batchlist_free(bl);
    return reply_nomem(a);
  }
  rc = node_submit(node, bl); /* takes bl */
  if (rc == ORDO_OK)
    return reply(a, 202, body);
  json_decref(body);
  switch (rc) {
  case ORDO_E_BUSY:
    return reply_error(a, 429, 31, "Unable to Accept Batches",
                       "The validator cannot accept more batches at this "
                       "time; retry later");
  case ORDO_E_SHUTDOWN:
    return reply_error(a, 503, 18, "Validator Disconnected",
                       "The validator is shutting down");
  case ORDO_E_NOMEM:
    return reply_nomem(a);
  default:
    return reply_error(a, 500, 10, "Unknown Validator Error",
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

static int batch_statuses(ordo_node *node, const ordo_node_request *req,
                          int post, answer *a) {
  char **ids = NULL, *v = NULL, base[300];
  size_t n = 0, i;
  double wait;
  json_t *data = NULL, *body = NULL;
  int rc;

  if (post) {
    json_t *arr;
    json_error_t jerr;
    if (!ordo__http_content_type_is(req->content_type, "application/json"))
      return reply_error(a, 400, 43, "Wrong Content Type",
                         "Requests for batch statuses sent as a POST must "
                         "have a 'Content-Type' header of 'application/json'");
    arr = json_loadb(req->body != NULL ? req->body : "", req->body_len, 0,
                     &jerr);
    if (arr == NULL || !json_is_array(arr) || json_array_size(arr) == 0 ||
        json_array_size(arr) > HTTP_MAX_POST_IDS) {
      json_decref(arr);
      return reply_error(a, 400, 46, "Bad Status Request",
                         "The body must be a JSON array of 1 to 10000 batch "
                         "ids");
    }
    n = json_array_size(arr);
    if ((ids = calloc(n, sizeof *ids)) == NULL) {
      json_decref(arr);
      return reply_nomem(a);
    }
    for (i = 0; i < n; i++) {
      const char *s = json_string_value(json_array_get(arr, i));
      if (s == NULL) {
        free_ids(ids, i);
        json_decref(arr);
        return reply_error(a, 400, 46, "Bad Status Request",
                           "Requests for batch statuses sent as a POST must "
                           "have a JSON formatted body with an array of at "
                           "least one id string");
      }
      if ((ids[i] = strdup(s)) == NULL) {
        free_ids(ids, i);
        json_decref(arr);
        return reply_nomem(a);
      }
    }
    json_decref(arr);
  } else {
    if (query_get(req->query, "id", &v) != ORDO_OK)
      return reply_nomem(a);
    rc = v != NULL && v[0] != '\0' ? split_ids(v, &ids, &n) : ORDO_E_INVAL;
    free(v);
    if (rc == ORDO_E_NOMEM)
      return reply_nomem(a);
    if (rc != ORDO_OK)
      return reply_error(a, 400, 66, "Id Query Invalid or Missing",
                         "Requests for batch statuses need an 'id' query of "
                         "comma-separated batch ids");
    if (n > ORDO_NODE_MAX_GET_IDS) {
      free_ids(ids, n);
      return reply_error(a, 400, 66, "Id Query Invalid or Missing",
                         "At most 15 ids in a GET; use POST /batch_statuses "
                         "for more");
    }
  }
  for (i = 0; i < n; i++)
    if (!is_id(ids[i])) {
      rc = reply_bad_id(a, ids[i]);
      free_ids(ids, n);
      return rc;
    }
  if (query_get(req->query, "wait", &v) != ORDO_OK) {
    free_ids(ids, n);
    return reply_nomem(a);
  }
  wait = parse_wait(node, v);
  free(v);
  node_count(&node->stats.batch_status_ids, n);
  if (wait > 0) {
    node_count(&node->stats.batch_status_waits, 1);
    node_wait_final(node, ids, n,
                    ordo__now_ns() + (unsigned long long)(wait * 1e9));
  }
  if ((data = json_array()) == NULL)
    goto nomem;
  for (i = 0; i < n; i++) {
    const char *status;
    char *txn, *msg;
    json_t *inv, *e;
    if ((rc = node_status(node, ids[i], &status, &txn, &msg)) != ORDO_OK) {
      free_ids(ids, n);
      json_decref(data);
      if (rc == ORDO_E_NOMEM)
        return reply_nomem(a);
      return reply_error(a, 500, 10, "Unknown Validator Error",
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
  base_url(node, req, base, sizeof base);
  body = json_pack("{s:o,s:o*}", "data", data, "link",
                   link_json(base, "/batch_statuses", req->query));
  data = NULL;
  free_ids(ids, n);
  return body != NULL ? reply(a, 200, body) : reply_nomem(a);
nomem:
  free_ids(ids, n);
  json_decref(data);
  return reply_nomem(a);
}

/* ------------------------------------------------------------------------ */
/* GET /state, /state/{address}, /blocks, /blocks/{id}                       */
/* ------------------------------------------------------------------------ */

/*
 * The read connection under rd_mu, in one read transaction: what a handler
 * reads and the head it reports agree. read_end follows every read_begin,
 * whatever it returned. read_begin: ORDO_E_STORAGE when BEGIN fails.
 */
static int read_begin(ordo_node *node) {
  sqlite3 *db = node->st.rdb;
  pthread_mutex_lock(&node->rd_mu);
  if (sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
    return ordo__set_last_error(ORDO_E_STORAGE, "node db: %s",
                                sqlite3_errmsg(db));
  return ORDO_OK;
}

static void read_end(ordo_node *node) {
  sqlite3_exec(node->st.rdb, "COMMIT", NULL, NULL, NULL);
  pthread_mutex_unlock(&node->rd_mu);
}

static int storage_answer(answer *a, int rc) {
  if (rc == ORDO_E_NOMEM)
    return reply_nomem(a);
  return reply_error(a, 500, 10, "Unknown Validator Error",
                     ordo_last_error_message());
}

/* The block a read is pinned to. */
typedef struct pinned {
  char *want; /* head= as asked (NULL: the chain's head) */
  uint64_t num;
  char id[ORDO_LEDGER_ID_SIZE];
} pinned;

/* head= of the request into h->want: 0, or 1 when an answer was made
 * (400/60 for an id that is not 128 hex digits, 500 out of memory). */
static int pin_parse(const ordo_node_request *req, pinned *h, answer *a) {
  memset(h, 0, sizeof *h);
  if (query_get(req->query, "head", &h->want) != ORDO_OK) {
    reply_nomem(a);
    return 1;
  }
  if (h->want != NULL && !is_id(h->want)) {
    reply_bad_id(a, h->want);
    return 1;
  }
  return 0;
}

/* Inside read_begin: the pinned block's number and id. ORDO_E_NOT_FOUND
 * for an unknown head=, answered 404/50 by pin_answer. */
static int pin_resolve(sqlite3 *db, pinned *h) {
  if (h->want == NULL)
    return node_store_head(db, &h->num, h->id);
  snprintf(h->id, sizeof h->id, "%s", h->want);
  return node_store_block_find(db, h->want, &h->num);
}

static int pin_answer(answer *a, int rc) {
  if (rc == ORDO_E_NOT_FOUND)
    return reply_error(a, 404, 50, "Head Not Found",
                       "There is no block with the id specified in the "
                       "'head' query parameter.");
  return storage_answer(a, rc);
}

/* base + path + "?" + the request's query pinned to h's block. */
static json_t *pinned_link(const char *base, const char *path,
                           const ordo_node_request *req, const pinned *h) {
  char *q = pin_query(req->query, h->id, NULL);
  json_t *j = q != NULL ? link_json(base, path, q) : NULL;
  free(q);
  return j;
}

static int get_state_one(ordo_node *node, const ordo_node_request *req,
                         const char *address, answer *a) {
  sqlite3 *db = node->st.rdb;
  unsigned char *buf = NULL;
  size_t cap = 0, len = 0, n;
  char *b64, base[300], path[sizeof "/state/" + ORDO_LEDGER_ADDRESS_LEN];
  pinned h;
  json_t *body;
  int rc;

  if (!is_hex(address, ORDO_LEDGER_ADDRESS_LEN))
    return reply_error(a, 400, 62, "Invalid State Address",
                       "A state address is 70 lower-case hex characters");
  if (pin_parse(req, &h, a))
    goto out;
  rc = read_begin(node);
  if (rc == ORDO_OK && (rc = pin_resolve(db, &h)) != ORDO_OK) {
    read_end(node);
    pin_answer(a, rc);
    goto out;
  }
  if (rc == ORDO_OK)
    rc = node_store_state_get(db, address, h.num, &buf, &cap, &len);
  read_end(node);
  if (rc == ORDO_E_NOT_FOUND) {
    reply_error(a, 404, 75, "State Not Found",
                "There is no state data at the address specified");
    goto out;
  }
  if (rc != ORDO_OK) {
    storage_answer(a, rc);
    goto out;
  }
  n = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL);
  if ((b64 = malloc(n)) == NULL) {
    reply_nomem(a);
    goto out;
  }
  sodium_bin2base64(b64, n, buf, len, sodium_base64_VARIANT_ORIGINAL);
  base_url(node, req, base, sizeof base);
  snprintf(path, sizeof path, "/state/%s", address);
  body = json_pack("{s:s,s:s,s:o*}", "data", b64, "head", h.id, "link",
                   pinned_link(base, path, req, &h));
  free(b64);
  if (body != NULL)
    reply(a, 200, body);
  else
    reply_nomem(a);
out:
  free(buf);
  free(h.want);
  return a->body != NULL ? ORDO_OK : ORDO_E_NOMEM;
}

/* "paging": {"limit", "start"?, "next_position"?, "next"?}; next is the
 * same query with start= replaced, pinned to head. */
static json_t *paging_json(size_t limit, const char *start, const char *next,
                           const char *base, const char *path,
                           const char *query, const char *head) {
  json_t *p = json_pack("{s:I}", "limit", (json_int_t)limit);
  if (p == NULL)
    return NULL;
  if (start != NULL && json_object_set_new(p, "start", json_string(start)))
    goto fail;
  if (next != NULL) {
    char *q = pin_query(query, head, next);
    json_t *url = q != NULL ? link_json(base, path, q) : NULL;
    free(q);
    if (url == NULL ||
        json_object_set_new(p, "next_position", json_string(next)) ||
        json_object_set_new(p, "next", url))
      goto fail;
  }
  return p;
fail:
  json_decref(p);
  return NULL;
}

/*
 * The 200 answer of one page of path: {"data", "head", "link", "paging"},
 * link and paging.next pinned to h's block. data is borrowed.
 */
static int reply_page(ordo_node *node, const ordo_node_request *req,
                      const char *path, json_t *data, const pinned *h,
                      size_t limit, const char *start, const char *next,
                      answer *a) {
  char base[300];
  json_t *paging, *body;
  base_url(node, req, base, sizeof base);
  paging = paging_json(limit, start, next, base, path, req->query, h->id);
  body = json_pack("{s:O,s:s,s:o*,s:o*}", "data", data, "head", h->id,
                   "link", pinned_link(base, path, req, h), "paging", paging);
  if (body == NULL || paging == NULL) {
    json_decref(body);
    return reply_nomem(a);
  }
  return reply(a, 200, body);
}

static int get_state_list(ordo_node *node, const ordo_node_request *req,
                          answer *a) {
  sqlite3 *db = node->st.rdb;
  char *prefix = NULL, *start = NULL, *lim = NULL, *next = NULL;
  json_t *data = NULL;
  pinned h = {NULL, 0, {0}};
  size_t limit;
  int rc;

  if (query_get(req->query, "address", &prefix) ||
      query_get(req->query, "start", &start) ||
      query_get(req->query, "limit", &lim))
    goto nomem;
  if (prefix != NULL &&
      (!is_hex(prefix, (size_t)-1) || strlen(prefix) > ORDO_LEDGER_ADDRESS_LEN)) {
    rc = reply_error(a, 400, 62, "Invalid State Address",
                     "An address prefix is at most 70 lower-case hex "
                     "characters");
    goto out;
  }
  if ((limit = parse_limit(lim)) == 0) {
    rc = reply_bad_limit(a);
    goto out;
  }
  if (start != NULL && !is_hex(start, ORDO_LEDGER_ADDRESS_LEN)) {
    rc = reply_error(a, 400, 54, "Invalid Paging Query",
                     "start is a 70-character state address");
    goto out;
  }
  if (pin_parse(req, &h, a)) {
    rc = a->body != NULL ? ORDO_OK : ORDO_E_NOMEM;
    goto out;
  }
  if ((data = json_array()) == NULL)
    goto nomem;
  rc = read_begin(node);
  if (rc == ORDO_OK && (rc = pin_resolve(db, &h)) != ORDO_OK) {
    read_end(node);
    rc = pin_answer(a, rc);
    goto out;
  }
  if (rc == ORDO_OK)
    rc = node_store_state_list(db, prefix != NULL ? prefix : "", start, h.num,
                               limit, data, &next);
  read_end(node);
  if (rc != ORDO_OK) {
    rc = storage_answer(a, rc);
    goto out;
  }
  rc = reply_page(node, req, "/state", data, &h, limit, start, next, a);
  goto out;
nomem:
  rc = reply_nomem(a);
out:
  json_decref(data);
  free(h.want);
  free(prefix);
  free(start);
  free(lim);
  free(next);
  return rc;
}

/*
 * start= of /blocks: Sawtooth's form, "0x" and 16 hex digits of a
 * block_num (what paging.next_position holds); a block id (128 hex); or a
 * decimal block_num (this node's earlier form). *num gets the number, or
 * *id is set for an id (looked up inside the read). 0, or 1 when an answer
 * was made: 400/54 for a bad number, 400/60 for anything else.
 */
static int parse_block_start(const char *v, uint64_t *num, const char **id,
                             answer *a) {
  char *end;
  *id = NULL;
  if (strncmp(v, "0x", 2) == 0) {
    if (strlen(v) < 3 || strlen(v) > 18 || !is_hex(v + 2, (size_t)-1) ||
        (*num = strtoull(v + 2, &end, 16)) > INT64_MAX) {
      reply_error(a, 400, 54, "Invalid Paging Query",
                  "start is a block id or a block number (0x and 16 hex "
                  "digits)");
      return 1;
    }
    return 0;
  }
  if (v[0] >= '0' && v[0] <= '9' && strspn(v, "0123456789") == strlen(v) &&
      strlen(v) <= 19) {
    *num = strtoull(v, &end, 10);
    if (*num <= INT64_MAX)
      return 0;
  }
  if (!is_id(v)) {
    reply_bad_id(a, v);
    return 1;
  }
  *id = v;
  return 0;
}

static int get_blocks(ordo_node *node, const ordo_node_request *req,
                      answer *a) {
  sqlite3 *db = node->st.rdb;
  char *start = NULL, *lim = NULL, nextstr[24];
  const char *start_id = NULL;
  json_t *data = NULL;
  pinned h = {NULL, 0, {0}};
  uint64_t from = UINT64_MAX;
  int64_t next = -1;
  size_t limit;
  int rc;

  if (query_get(req->query, "start", &start) ||
      query_get(req->query, "limit", &lim))
    goto nomem;
  if ((limit = parse_limit(lim)) == 0) {
    rc = reply_bad_limit(a);
    goto out;
  }
  if ((start != NULL && parse_block_start(start, &from, &start_id, a)) ||
      pin_parse(req, &h, a)) {
    rc = a->body != NULL ? ORDO_OK : ORDO_E_NOMEM;
    goto out;
  }
  if ((data = json_array()) == NULL)
    goto nomem;
  rc = read_begin(node);
  if (rc == ORDO_OK && (rc = pin_resolve(db, &h)) != ORDO_OK) {
    read_end(node);
    rc = pin_answer(a, rc);
    goto out;
  }
  if (rc == ORDO_OK && start_id != NULL &&
      (rc = node_store_block_find(db, start_id, &from)) == ORDO_E_NOT_FOUND) {
    read_end(node);
    rc = reply_error(a, 400, 54, "Invalid Paging Query",
                     "start names no block of this chain");
    goto out;
  }
  /* Never past the pinned head: a paged read sees one chain. */
  if (rc == ORDO_OK)
    rc = node_store_block_list(db, from < h.num ? from : h.num, limit, data,
                               &next);
  read_end(node);
  if (rc != ORDO_OK) {
    rc = storage_answer(a, rc);
    goto out;
  }
  snprintf(nextstr, sizeof nextstr, "0x%016llx", (unsigned long long)next);
  rc = reply_page(node, req, "/blocks", data, &h, limit, start,
                  next >= 0 ? nextstr : NULL, a);
  goto out;
nomem:
  rc = reply_nomem(a);
out:
  json_decref(data);
  free(h.want);
  free(start);
  free(lim);
  return rc;
}

static int get_block_one(ordo_node *node, const ordo_node_request *req,
                         const char *id, answer *a) {
  json_t *blk = NULL, *body;
  char base[300], path[sizeof "/blocks/" + ORDO_LEDGER_ID_LEN];
  int rc;

  if (!is_id(id))
    return reply_bad_id(a, id);
  rc = read_begin(node);
  if (rc == ORDO_OK)
    rc = node_store_block_get(node->st.rdb, id, &blk);
  read_end(node);
  if (rc == ORDO_E_NOT_FOUND)
    return reply_error(a, 404, 70, "Block Not Found",
                       "There is no block with the id specified in the "
                       "blockchain.");
  if (rc != ORDO_OK)
    return storage_answer(a, rc);
  base_url(node, req, base, sizeof base);
  snprintf(path, sizeof path, "/blocks/%s", id);
  body = json_pack("{s:o,s:o*}", "data", blk, "link",
                   link_json(base, path, NULL));
  return body != NULL ? reply(a, 200, body) : reply_nomem(a);
}

/* ------------------------------------------------------------------------ */
/* Routing                                                                   */
/* ------------------------------------------------------------------------ */

static int method_not_allowed(answer *a) {
  return reply_error(a, 405, 405, "Method Not Allowed",
                     "This resource does not take that method");
}

/* A 503 for a share fail_rate of requests, drawn before anything else. */
static int fault(ordo_node *node, answer *a) {
  static const struct {
    int code;
    const char *title, *message;
  } kinds[3] = {
      {15, "Validator Not Ready",
       "The validator has no genesis block, and is not ready to be queried"},
      {17, "Validator Timed Out",
       "The request timed out while waiting for a response from the "
       "validator"},
      {18, "Validator Disconnected",
       "The validator disconnected before sending a response"},
  };
  uint64_t r;
  double x;
  if (node->opts.fail_rate <= 0)
    return 0;
  r = node_fault_draw(node);
  x = (double)(r >> 11) * (1.0 / 9007199254740992.0); /* [0, 1) */
  if (x >= node->opts.fail_rate)
    return 0;
  node_count(&node->stats.faults, 1);
  r %= 3;
  reply_error(a, 503, kinds[r].code, kinds[r].title, kinds[r].message);
  return 1;
}

static int route(ordo_node *node, const ordo_node_request *req, answer *a) {
  const char *path = req->path, *m = req->method;
  int get = strcmp(m, "GET") == 0, post = strcmp(m, "POST") == 0;

  node_count_request(node, path);
  if (fault(node, a))
    return a->body != NULL ? ORDO_OK : ORDO_E_NOMEM;
  if (strcmp(path, "/batches") == 0)
    return post ? post_batches(node, req, a) : method_not_allowed(a);
  if (strcmp(path, "/batch_statuses") == 0)
    return get || post ? batch_statuses(node, req, post, a)
                       : method_not_allowed(a);
  if (strcmp(path, "/state") == 0)
    return get ? get_state_list(node, req, a) : method_not_allowed(a);
  if (strncmp(path, "/state/", 7) == 0)
    return get ? get_state_one(node, req, path + 7, a) : method_not_allowed(a);
  if (strcmp(path, "/blocks") == 0)
    return get ? get_blocks(node, req, a) : method_not_allowed(a);
  if (strncmp(path, "/blocks/", 8) == 0)
    return get ? get_block_one(node, req, path + 8, a) : method_not_allowed(a);
  return reply_error(a, 404, 404, "Not Found",
                     "This node serves /batches, /batch_statuses, /state and "
                     "/blocks");
}

int ordo_node_handle(ordo_node *node, const ordo_node_request *req,
                     int *status, char **json) {
  answer a = {500, NULL};
  int rc;

  if (json != NULL)
    *json = NULL;
  if (node == NULL || req == NULL || status == NULL || json == NULL ||
      req->method == NULL || req->path == NULL ||
      (req->body == NULL && req->body_len > 0))
    return ordo__set_last_error(ORDO_E_INVAL, "node: NULL argument");
  rc = route(node, req, &a);
  if (rc == ORDO_OK && a.body != NULL)
    *json = json_dumps(a.body, JSON_COMPACT);
  json_decref(a.body);
  if (*json == NULL) {
    /* Out of memory somewhere: a fixed answer, if even that fits. */
    static const char oom[] =
        "{\"error\":{\"code\":10,\"title\":\"Unknown Validator Error\","
        "\"message\":\"out of memory\"}}";
    *status = 500;
    if ((*json = strdup(oom)) == NULL)
      return ordo__set_last_error(ORDO_E_NOMEM, "node: out of memory");
    return ORDO_OK;
  }
  *status = a.status;
  return ORDO_OK;
}

/* ------------------------------------------------------------------------ */
/* libmicrohttpd                                                             */
/* ------------------------------------------------------------------------ */

/* ---- the options with their defaults ------------------------------------ */

static unsigned header_timeout_ms(const ordo_node *node) {
  return node->opts.header_timeout_ms > 0
             ? node->opts.header_timeout_ms
             : ORDO_NODE_DEFAULT_HEADER_TIMEOUT_MS;
}

static unsigned idle_timeout_ms(const ordo_node *node) {
  return node->opts.idle_timeout_ms > 0 ? node->opts.idle_timeout_ms
                                        : ORDO_NODE_DEFAULT_IDLE_TIMEOUT_MS;
}

/* Queue text (taken: freed here) as the answer, after delay_ms. */
static enum MHD_Result http_send(ordo_node *node, struct MHD_Connection *c,
                                 int status, char *text,
                                 const char *content_type) {
  if (node->opts.delay_ms > 0) {
    struct timespec ts = {(time_t)(node->opts.delay_ms / 1000),
                          (long)(node->opts.delay_ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
      ;
  }
  return ordo__mhd_send(c, (unsigned)status, text, strlen(text), content_type,
                        NULL);
}

/* 413 as aiohttp words it (plain text, not JSON), counted. */
static enum MHD_Result http_too_large(ordo_node *node, struct MHD_Connection *c,
                                      const char *url,
                                      unsigned long long actual) {
  char *text = malloc(128);
  if (text == NULL)
    return MHD_NO;
  snprintf(text, 128, "Maximum request body size %zu exceeded, actual body "
           "size %llu", node->opts.max_body_bytes, actual);
  node_count_request(node, url);
  node_count(&node->stats.too_large, 1);
  return http_send(node, c, 413, text, "text/plain; charset=utf-8");
}

/* Refused before a byte of the body is read (a client that sent
 * Expect: 100-continue gets it instead of 100 and never sends it). */
static enum MHD_Result http_headers(void *cls, const ordo__mhd_request *r,
                                    int *answered) {
  ordo_node *node = cls;
  unsigned long long declared = ordo__mhd_declared_length(r->conn);
  if (declared <= node->opts.max_body_bytes)
    return MHD_YES;
  *answered = 1;
  return http_too_large(node, r->conn, r->url, declared);
}

static enum MHD_Result http_request(void *cls, const ordo__mhd_request *r) {
  ordo_node *node = cls;
  struct MHD_Connection *c = r->conn;
  ordo_node_request req;
  int status = 500;
  char *json = NULL;

  if (r->too_big)
    return http_too_large(node, c, r->url, r->body_seen);
  memset(&req, 0, sizeof req);
  req.method = r->method;
  req.path = r->url;
  req.query = r->query;
  req.content_type =
      MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
  req.host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
  req.body = r->body;
  req.body_len = r->body_len;
  if (ordo_node_handle(node, &req, &status, &json) != ORDO_OK || json == NULL)
    return MHD_NO;
  return http_send(node, c, status, json, "application/json");
}

int node_http_start(ordo_node *node, const char *bind, int port) {
  ordo__mhd_options mo;
  int rc, bound = port;

  memset(&mo, 0, sizeof mo);
  mo.bind = bind;
  mo.port = port;
  mo.connection_limit = node->opts.connection_limit > 0
                            ? node->opts.connection_limit
                            : ORDO_NODE_DEFAULT_CONNECTION_LIMIT;
  mo.connection_limit_per_ip = node->opts.connection_limit_per_ip > 0
                                   ? node->opts.connection_limit_per_ip
                                   : ORDO_NODE_DEFAULT_CONNECTION_LIMIT_PER_IP;
  mo.header_timeout_ms = header_timeout_ms(node);
  mo.idle_timeout_ms = idle_timeout_ms(node);
  mo.linger = 0; /* without lingering close, as the node always was */
  mo.who = "node";
  mo.prefix = "node: ";
  mo.max_body_bytes = node->opts.max_body_bytes;
  mo.headers = http_headers;
  mo.request = http_request;
  mo.cls = node;
  if ((rc = ordo__mhd_start(&mo, &node->http, &bound)) != ORDO_OK)
    return rc;
  atomic_store(&node->port, bound);
  return ORDO_OK;
}

/*
 * Stop accepting, give the requests in flight (a wait= woken by the stop,
 * an answer being delayed) a bounded time to send their answers, then stop
 * the daemon: MHD_stop_daemon shuts every connection's socket, which would
 * cut a long-poll off without its answer.
 */
void node_http_stop(ordo_node *node) {
  ordo__mhd_stop(node->http, 2000ULL + node->opts.delay_ms);
  node->http = NULL;
}

/*
 * http.c — the node's REST subset: what its routes share (answers, query
 * strings, ids, links), the routing itself with ordo_node_handle (a request
 * in, an HTTP status and JSON out, no sockets: what the fuzzer drives), and
 * the libmicrohttpd server around it (src/http/mhd.h). The routes are in
 * http_batches.c (POST /batches, /batch_statuses) and http_reads.c
 * (/state, /blocks).
 *
 * The server runs one thread per connection, so a status request that
 * waits (wait=S) only holds its own connection.
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
#include "node/routes.h"
#include "http/http.h"
#include "http/mhd.h"
#include "runtime/runtime.h"

#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ------------------------------------------------------------------------ */
/* Answers                                                                   */
/* ------------------------------------------------------------------------ */

int ordo__node_reply(node_answer *a, int status, json_t *body) {
  a->status = status;
  a->body = body;
  return body != NULL ? ORDO_OK : ORDO_E_NOMEM;
}

/* {"error": {"code", "title", "message"}}, Sawtooth's error shape. */
int ordo__node_reply_error(node_answer *a, int status, int code,
                           const char *title, const char *message) {
  return ordo__node_reply(a, status,
                          json_pack("{s:{s:i,s:s,s:s}}", "error", "code", code,
                                    "title", title, "message", message));
}

int ordo__node_reply_nomem(node_answer *a) {
  return ordo__node_reply(a, 500, NULL);
}

/* 400/60, naming the id (cut short): any batch or block id that is not 128
 * lower-case hex digits fails the whole request, as on Sawtooth. */
int ordo__node_reply_bad_id(node_answer *a, const char *id) {
  char msg[400];
  snprintf(msg, sizeof msg,
           "Blockchain items are identified by 128 character hex-strings. A "
           "submitted block, batch, or transaction id was invalid: %.200s%s",
           id, strlen(id) > 200 ? "..." : "");
  return ordo__node_reply_error(a, 400, 60, "Invalid Resource Id", msg);
}

/* ------------------------------------------------------------------------ */
/* Query strings                                                             */
/* ------------------------------------------------------------------------ */

/*
 * The value of the first key=value in query whose decoded key is key: a new
 * string in *out (a key without '=' has the value ""), or *out NULL when
 * absent. ORDO_E_NOMEM.
 */
int ordo__node_query_get(const char *query, const char *key, char **out) {
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
int ordo__node_is_hex(const char *s, size_t n) {
  size_t i;
  for (i = 0; s[i] != '\0'; i++)
    if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
      return 0;
  return n == (size_t)-1 || i == n;
}

/* A batch, transaction or block id as Sawtooth's: 128 lower-case hex. */
int ordo__node_is_id(const char *s) {
  return ordo__node_is_hex(s, ORDO_LEDGER_ID_LEN);
}

/* "http://HOST" for links. */
void ordo__node_base_url(ordo_node *node, const ordo_node_request *req,
                         char *out, size_t size) {
  if (req->host != NULL && req->host[0] != '\0' && strlen(req->host) < 256 &&
      strpbrk(req->host, "\"\\/ \r\n") == NULL)
    snprintf(out, size, "http://%s", req->host);
  else
    snprintf(out, size, "http://127.0.0.1:%d", atomic_load(&node->port));
}

/* base + path [+ "?" + query] as a JSON string. */
json_t *ordo__node_link_json(const char *base, const char *path,
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

/* ------------------------------------------------------------------------ */
/* Routing                                                                   */
/* ------------------------------------------------------------------------ */

static int method_not_allowed(node_answer *a) {
  return ordo__node_reply_error(a, 405, 405, "Method Not Allowed",
                                "This resource does not take that method");
}

/* A 503 for a share fail_rate of requests, drawn before anything else. */
static int fault(ordo_node *node, node_answer *a) {
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
  r = ordo__node_fault_draw(node);
  x = (double)(r >> 11) * (1.0 / 9007199254740992.0); /* [0, 1) */
  if (x >= node->opts.fail_rate)
    return 0;
  ordo__node_count(&node->stats.faults, 1);
  r %= 3;
  ordo__node_reply_error(a, 503, kinds[r].code, kinds[r].title,
                         kinds[r].message);
  return 1;
}

static int route(ordo_node *node, const ordo_node_request *req,
                 node_answer *a) {
  const char *path = req->path, *m = req->method;
  int get = strcmp(m, "GET") == 0, post = strcmp(m, "POST") == 0;

  ordo__node_count_request(node, path);
  if (fault(node, a))
    return a->body != NULL ? ORDO_OK : ORDO_E_NOMEM;
  if (strcmp(path, "/batches") == 0)
    return post ? ordo__node_post_batches(node, req, a) : method_not_allowed(a);
  if (strcmp(path, "/batch_statuses") == 0)
    return get || post ? ordo__node_batch_statuses(node, req, post, a)
                       : method_not_allowed(a);
  if (strcmp(path, "/state") == 0)
    return get ? ordo__node_get_state_list(node, req, a)
               : method_not_allowed(a);
  if (strncmp(path, "/state/", 7) == 0)
    return get ? ordo__node_get_state_one(node, req, path + 7, a)
               : method_not_allowed(a);
  if (strcmp(path, "/blocks") == 0)
    return get ? ordo__node_get_blocks(node, req, a) : method_not_allowed(a);
  if (strncmp(path, "/blocks/", 8) == 0)
    return get ? ordo__node_get_block_one(node, req, path + 8, a)
               : method_not_allowed(a);
  return ordo__node_reply_error(
      a, 404, 404, "Not Found",
      "This node serves /batches, /batch_statuses, /state and "
      "/blocks");
}

int ordo_node_handle(ordo_node *node, const ordo_node_request *req,
                     int *status, char **json) {
  node_answer a = {500, NULL};
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
  ordo__node_count_request(node, url);
  ordo__node_count(&node->stats.too_large, 1);
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

int ordo__node_http_start(ordo_node *node, const char *bind, int port) {
  ordo__mhd_options mo = {
      .bind = bind,
      .port = port,
      .connection_limit = node->opts.connection_limit > 0
                              ? node->opts.connection_limit
                              : ORDO_NODE_DEFAULT_CONNECTION_LIMIT,
      .connection_limit_per_ip =
          node->opts.connection_limit_per_ip > 0
              ? node->opts.connection_limit_per_ip
              : ORDO_NODE_DEFAULT_CONNECTION_LIMIT_PER_IP,
      .header_timeout_ms = header_timeout_ms(node),
      .idle_timeout_ms = idle_timeout_ms(node),
      .linger = 0, /* without lingering close, as the node always was */
      .who = "node",
      .prefix = "node: ",
      .max_body_bytes = node->opts.max_body_bytes,
      .headers = http_headers,
      .request = http_request,
      .cls = node};
  int rc, bound = port;

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
void ordo__node_http_stop(ordo_node *node) {
  ordo__mhd_stop(node->http, 2000ULL + node->opts.delay_ms);
  node->http = NULL;
}

/*
 * reply.c — the server's answers (reply.h): JSON bodies, the error shape
 * {"error":{"code","name","message"}}, ordo error codes as HTTP statuses,
 * request bodies parsed as JSON, and the bounded wait for an op.
 */
#include "server/reply.h"
#include "server/internal.h"
#include "http/http.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* Answers                                                                   */
/* ------------------------------------------------------------------------ */

int ordo__srv_reply_text(ordo_server_response *resp, int status, char *text) {
  static const char oom[] = "{\"error\":{\"code\":101,\"name\":\"ORDO_E_NOMEM\","
                            "\"message\":\"out of memory\"}}";
  resp->content_type = "application/json";
  if (text == NULL) {
    resp->status = 500;
    if ((resp->body = strdup(oom)) == NULL)
      return ORDO_E_NOMEM;
    resp->body_len = strlen(resp->body);
    return ORDO_OK;
  }
  resp->status = status;
  resp->body = text;
  resp->body_len = strlen(text);
  return ORDO_OK;
}

int ordo__srv_reply(ordo_server_response *resp, int status, json_t *body) {
  char *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
  json_decref(body);
  return ordo__srv_reply_text(resp, status, text);
}

static json_t *error_json(int code, const char *message) {
  return json_pack("{s:{s:i,s:s,s:s}}", "error", "code", code, "name",
                   ordo_errname(code), "message", message);
}

int ordo__srv_error(ordo_server_response *resp, int status, int code,
                    const char *fmt, ...) {
  char msg[768];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return ordo__srv_reply(resp, status, error_json(code, msg));
}

int ordo__srv_http_status(int code) {
  switch (code) {
  case ORDO_OK:
    return 200;
  case ORDO_E_INVAL:
  case ORDO_E_JSON:
  case ORDO_E_CONFIG:
  case ORDO_E_BAD_KEY:
  case ORDO_E_WQL:
  case ORDO_E_LEDGER_DECODE:
  case ORDO_E_LEDGER_SIGNATURE:
  case ORDO_E_LEDGER_PAYLOAD_HASH:
  case ORDO_E_LEDGER_TXN_IDS:
  case ORDO_E_LEDGER_BATCHER:
  case ORDO_E_LEDGER_EMPTY:
    return 400;
  case ORDO_E_WALLET_ACCESS:
    return 403;
  case ORDO_E_NOT_FOUND:
  case ORDO_E_WALLET_NOT_FOUND:
  case ORDO_E_KEY_NOT_FOUND:
  case ORDO_E_RECORD_NOT_FOUND:
    return 404;
  case ORDO_E_EXISTS:
  case ORDO_E_WALLET_EXISTS:
  case ORDO_E_RECORD_DUPLICATE:
  case ORDO_E_WALLET_NOT_OPEN:
  case ORDO_E_STATE:
    return 409;
  case ORDO_E_BUSY:
  case ORDO_E_SHUTDOWN:
  case ORDO_E_CANCELED:
  case ORDO_E_STORAGE_BUSY:
  case ORDO_E_STORAGE_FENCED: /* a cluster's service moved to another
                                 instance: ask again (there) */
  case ORDO_E_STORAGE: /* the disk failed (full, IO error): the journal or
                          wallet takes writes again once it works */
    return 503;
  case ORDO_E_TIMEOUT:
    return 504;
  default:
    return 500;
  }
}

int ordo__srv_parse_body(const ordo_server_request *req, int any, json_t **out,
                         ordo_server_response *resp) {
  json_error_t err;
  json_t *o;
  *out = NULL;
  o = json_loadb(req->body != NULL ? req->body : "", req->body_len,
                 JSON_REJECT_DUPLICATES, &err);
  if (o == NULL) {
    /* Never err.text: jansson quotes the text near the error, which may
     * be a passphrase. */
    ordo__srv_error(resp, 400, ORDO_E_JSON,
                    req->body_len == 0
                        ? "the request body is empty; JSON expected"
                        : "the request body is not JSON (line %d, "
                          "column %d)",
                    err.line, err.column);
    return 0;
  }
  if (!any && !json_is_object(o)) {
    json_decref(o);
    ordo__srv_error(resp, 400, ORDO_E_JSON,
                    "the request body must be a JSON "
                    "object");
    return 0;
  }
  *out = o;
  return 1;
}

int ordo__srv_wait(ordo_server *srv, ordo_op *op) {
  if (op == NULL)
    return ORDO_E_NOMEM;
  return ordo_op_wait(op, (int)srv->opts.request_timeout_ms);
}

void ordo_server_response_clear(ordo_server_response *resp) {
  if (resp == NULL)
    return;
  free(resp->body);
  memset(resp, 0, sizeof(*resp));
}

char *ordo__srv_query_get(const char *query, const char *key, int *nomem) {
  const char *p = query;
  size_t klen = strlen(key);
  *nomem = 0;
  while (p != NULL && *p != '\0') {
    const char *end = strchr(p, '&');
    size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
    if (len > klen && strncmp(p, key, klen) == 0 && p[klen] == '=') {
      char *out = ordo__http_url_decode(p + klen + 1, len - klen - 1);
      if (out == NULL)
        *nomem = 1;
      return out;
    }
    p += len;
    if (*p == '&')
      p++;
  }
  return NULL;
}

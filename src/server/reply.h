/*
 * reply.h — the server's answers (reply.c), for every file with a route:
 * a JSON body, the error shape {"error":{"code","name","message"}}, ordo
 * error codes as HTTP statuses, JSON request bodies, and the bounded wait
 * for an op. Any connection thread; no state.
 *
 * An answer function fills resp and returns ORDO_OK; out of memory it
 * answers a fixed 500 instead, and returns ORDO_E_NOMEM only when even that
 * fails (resp->body NULL).
 */
#ifndef ORDO_SERVER_REPLY_H
#define ORDO_SERVER_REPLY_H

#include "base/base.h"
#include "server/server.h"

#include <jansson.h>

/* Set resp to status with text (malloc'd, taken) as its JSON body; NULL
 * text: out of memory, the fixed 500. */
int ordo__srv_reply_text(ordo_server_response *resp, int status, char *text);
/* Set resp to status with the JSON of body (taken; NULL: out of memory,
 * the fixed 500). */
int ordo__srv_reply(ordo_server_response *resp, int status, json_t *body);
/* {"error":{"code","name","message"}}; message printf-style. */
int ordo__srv_error(ordo_server_response *resp, int status, int code,
                    const char *fmt, ...) ORDO__PRINTF(4, 5);
/* The HTTP status for an ordo error code (an op's failure). */
int ordo__srv_http_status(int code);
/* Parse a JSON request body (an object unless any): 1 and *out (the
 * caller's), or 0 with a 400 answer made. Syntax errors name the line and
 * column only: the text near them may be a passphrase. */
int ordo__srv_parse_body(const ordo_server_request *req, int any, json_t **out,
                         ordo_server_response *resp);
/* Wait for op (bounded by request_timeout_ms); returns its status
 * (ORDO_E_TIMEOUT when it took too long, ORDO_E_NOMEM for a NULL op). The
 * op stays the caller's to read and release. */
int ordo__srv_wait(ordo_server *srv, ordo_op *op);

/* The decoded value of key in a raw query (new string), or NULL (absent,
 * or out of memory: *nomem). A %00 ends the value. */
char *ordo__srv_query_get(const char *query, const char *key, int *nomem);

#endif /* ORDO_SERVER_REPLY_H */

/*
 * routes.h — what the node's REST routes share: an answer (status and
 * JSON) and its helpers, query strings, ids and links (http.c), and the
 * routes themselves, which http.c's routing calls (http_batches.c:
 * POST /batches, /batch_statuses; http_reads.c: /state, /blocks). Internal
 * to the node module; every function may run on any connection thread.
 *
 * A route makes exactly one answer in *a and returns ORDO_OK, or
 * ORDO_E_NOMEM when even the answer could not be made (a->body NULL: the
 * caller answers a fixed 500).
 */
#ifndef ORDO_NODE_ROUTES_H
#define ORDO_NODE_ROUTES_H

#include "node/internal.h"

#include <jansson.h>
#include <stddef.h>

typedef struct node_answer {
  int status;
  json_t *body; /* owned */
} node_answer;

/* ---- answers (http.c) ---------------------------------------------------- */

/* a gets status and body (taken); ORDO_E_NOMEM for a NULL body. */
int ordo__node_reply(node_answer *a, int status, json_t *body);
/* {"error": {"code", "title", "message"}}, Sawtooth's error shape. */
int ordo__node_reply_error(node_answer *a, int status, int code,
                           const char *title, const char *message);
/* 500 with no body: out of memory. */
int ordo__node_reply_nomem(node_answer *a);
/* 400/60 naming the id (cut short): not 128 lower-case hex digits. */
int ordo__node_reply_bad_id(node_answer *a, const char *id);

/* ---- query strings, ids and links (http.c) -------------------------------- */

/* The decoded value of the first key=value of query whose decoded key is
 * key: a new string in *out ("" for a key without '='), *out NULL when
 * absent. ORDO_E_NOMEM. */
int ordo__node_query_get(const char *query, const char *key, char **out);
/* 1 if s is n lower-case hex digits (n == (size_t)-1: any number). */
int ordo__node_is_hex(const char *s, size_t n);
/* 1 for a batch, transaction or block id as Sawtooth's: 128 lower-case
 * hex. */
int ordo__node_is_id(const char *s);
/* "http://HOST" (the request's Host when it is sane) for links, in out. */
void ordo__node_base_url(ordo_node *node, const ordo_node_request *req,
                         char *out, size_t size);
/* base + path [+ "?" + query] as a new JSON string; NULL out of memory. */
json_t *ordo__node_link_json(const char *base, const char *path,
                             const char *query);

/* ---- the routes ------------------------------------------------------------ */

/* POST /batches (http_batches.c). */
int ordo__node_post_batches(ordo_node *node, const ordo_node_request *req,
                            node_answer *a);
/* GET (post 0) or POST (post 1) /batch_statuses (http_batches.c). */
int ordo__node_batch_statuses(ordo_node *node, const ordo_node_request *req,
                              int post, node_answer *a);
/* GET /state, /state/{address}, /blocks, /blocks/{id} (http_reads.c). */
int ordo__node_get_state_list(ordo_node *node, const ordo_node_request *req,
                              node_answer *a);
int ordo__node_get_state_one(ordo_node *node, const ordo_node_request *req,
                             const char *address, node_answer *a);
int ordo__node_get_blocks(ordo_node *node, const ordo_node_request *req,
                          node_answer *a);
int ordo__node_get_block_one(ordo_node *node, const ordo_node_request *req,
                             const char *id, node_answer *a);

#endif /* ORDO_NODE_ROUTES_H */

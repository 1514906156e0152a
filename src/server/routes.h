/*
 * routes.h — what the server's files call in each other besides the
 * answers (reply.h): the checks and routing of handle.c, the routes the
 * router reaches in batches.c, wallet.c and metrics.c, and the counters.
 * Any connection thread unless said otherwise.
 *
 * A route fills resp and returns as reply.h's answer functions do.
 */
#ifndef ORDO_SERVER_ROUTES_H
#define ORDO_SERVER_ROUTES_H

#include "server/server.h"

#include <stddef.h>

/* ---- handle.c ------------------------------------------------------------ */

/* Rate limit, auth and the declared body size: 1 when resp holds the
 * answer already (429, 401, 413), 0 when the request may go on. Also run
 * by server.c on a request's headers, before its body is read. */
int ordo__srv_precheck(ordo_server *srv, const ordo_server_request *req,
                       size_t declared_len, ordo_server_response *resp);
/* Everything after ordo__srv_precheck: the routing. */
int ordo__srv_dispatch(ordo_server *srv, const ordo_server_request *req,
                       ordo_server_response *resp);
/* DELETE /v1/batches/{id} in journal j: cancel and wait. ORDO_OK, or the
 * error (404, 409, …) answered in resp. */
int ordo__srv_cancel_in(ordo_server *srv, ordo_journal *j, const char *id,
                        ordo_server_response *resp);
/* The submitter's progress and ledger health, as of now. 0 and a zeroed
 * *p when the server has no ledger. */
int ordo__srv_progress(ordo_server *srv, ordo_submitter_progress *p);

/* ---- batches.c ----------------------------------------------------------- */

/* POST /v1/batches. */
int ordo__srv_post_batches(ordo_server *srv, const ordo_server_request *req,
                           ordo_server_response *resp);

/* ---- wallet.c ------------------------------------------------------------ */

/* Route /v1/wallets..., /v1/verify, /v1/jobs/...: 1 when path is theirs
 * (resp then holds the answer), 0 when not. */
int ordo__srv_wallet_route(ordo_server *srv, const ordo_server_request *req,
                           ordo_server_response *resp);
/* Cancel and drop every job (stop; the owner's thread). */
void ordo__srv_jobs_clear(ordo_server *srv);

/* ---- metrics.c ----------------------------------------------------------- */

/* GET /metrics. */
int ordo__srv_metrics(ordo_server *srv, ordo_server_response *resp);
/* Count an answer for ordo_http_requests_total. */
void ordo__srv_count_status(ordo_server *srv, int status);
/* Count n batches journaled through the server, ns from their enqueue to
 * durable, for ordo_journal_enqueue_seconds. */
void ordo__srv_count_enqueued(ordo_server *srv, unsigned long long ns,
                              size_t n);

#endif /* ORDO_SERVER_ROUTES_H */

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

#include <jansson.h>

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
/* POST /v1/services/{svc}/halt (reason: the operator's text) or /resume
 * in journal j: ORDO_OK, or the error (404, 409, …) answered in resp. */
int ordo__srv_halt_resume_in(ordo_journal *j, const char *svc, int halt,
                             const char *reason, ordo_server_response *resp);
/* The ledger's health from p: reachable, since when not, the last error
 * with its time and cause (a new object, NULL on no memory). */
struct ordo_submitter_progress;
json_t *ordo__srv_ledger_health_json(const struct ordo_submitter_progress *p);
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

/* ---- ui.c ---------------------------------------------------------------- */

/* 1 when path is the dashboard's (/ui, /ui/…): served without the token. */
int ordo__srv_is_ui_path(const char *path);
/* GET /ui[/file]: the compiled-in page, with its security headers. */
int ordo__srv_ui(const ordo_server_request *req, ordo_server_response *resp);

/* ---- dashboard.c --------------------------------------------------------- */

/* GET /v1/dashboard: totals, latency, the ledger and the last minutes'
 * samples in one answer (the dashboard's refresh). */
int ordo__srv_dashboard(ordo_server *srv, const ordo_server_request *req,
                        ordo_server_response *resp);
/* GET /v1/services: every service's counters, filtered, sorted, paged. */
int ordo__srv_services(ordo_server *srv, const ordo_server_request *req,
                       ordo_server_response *resp);
/* Start and stop the thread that samples the counters once a second for
 * the dashboard's charts. */
int ordo__srv_sampler_start(ordo_server *srv);
void ordo__srv_sampler_stop(ordo_server *srv);

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

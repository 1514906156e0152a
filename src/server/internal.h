/*
 * internal.h — what the files of the server module share: the server
 * (server.c: start, stop, the loop thread, libmicrohttpd), the request
 * handlers (handle.c: routing, auth, limits, batches and the queue;
 * wallet.c: wallets, DIDs, signing, jobs), /metrics (metrics.c), the
 * options (config.c). `ordo serve` is src/cli/serve.c. Other modules use
 * server.h.
 */
#ifndef ORDO_SERVER_INTERNAL_H
#define ORDO_SERVER_INTERNAL_H

#include "ledger/ledger.h"
#include "server/server.h"

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>

/* The journal enqueue latency histogram: upper bounds in seconds. */
#define SRV_HIST_N 17
extern const double srv_hist_le[SRV_HIST_N]; /* the last is +Inf */

/* Rate limiting: client buckets, open addressing, probes per lookup. */
#define SRV_RATE_SLOTS 1024
#define SRV_RATE_PROBES 16

/* Series of ordo_service_in_flight in one scrape (top by depth). */
#define SRV_METRIC_SERVICES 100

typedef struct srv_rate {
  char key[64]; /* "" when free */
  double tokens;
  unsigned long long last_ns;
} srv_rate;

typedef struct srv_job {
  char id[33];
  ordo_op *op;
  unsigned long long created_ns;
} srv_job;

/* HTTP statuses counted for ordo_http_requests_total. */
#define SRV_NCODES 16
extern const int srv_codes[SRV_NCODES]; /* the last (0) is "other" */

struct ordo_server {
  ordo_server_options opts; /* scalars; every string below is our copy */
  char *data_dir, *wallet_path, *bind;
  ordo_ctx *ctx;
  int own_ctx;
  ordo_journal *j;
  ordo_ledger_client *client;        /* NULL without a ledger */
  ordo_ledger_sawtooth_port *port;   /* NULL without a ledger */
  ordo_submitter *sub;               /* NULL without a ledger; loop only */

  int has_token;
  unsigned char token_hash[32]; /* SHA-256 of the token */

  struct MHD_Daemon *mhd; /* NULL without HTTP */
  atomic_int http_port;   /* -1 without HTTP */
  atomic_int stopping;
  atomic_long in_flight;  /* HTTP requests not yet completed */

  pthread_t loop;
  int has_loop;
  pthread_mutex_t loop_mu; /* guards loop_stop; loop_cv is CLOCK_MONOTONIC */
  pthread_cond_t loop_cv;
  int loop_stop;

  pthread_mutex_t stat_mu; /* guards everything down to enqueued */
  unsigned long long ledger_logged_ns[3]; /* loop thread only: last stderr
                                           line of each ordo_submitter_event
                                           (0: none) */
  unsigned long long steps;
  int step_rc;             /* the last step's error, ORDO_OK when fine */
  char step_err[256];
  unsigned long long hist[SRV_HIST_N]; /* enqueue latency, not cumulative */
  double hist_sum;
  unsigned long long hist_count;
  unsigned long long enqueued; /* batches journaled through the server */

  pthread_mutex_t rate_mu;
  srv_rate rate[SRV_RATE_SLOTS];

  pthread_mutex_t jobs_mu;
  srv_job *jobs;
  size_t njobs;

  atomic_ullong http_count[SRV_NCODES];

  /* Open connections, their header deadlines and the lingering closes
   * (src/http/guard.h): made by the HTTP start, NULL without HTTP; freed
   * after libmicrohttpd is stopped. */
  struct ordo__http_guard *guard;
};

/* ---- answers (handle.c) ------------------------------------------------- */

/* Set resp to status with the JSON of body (taken; NULL: out of memory,
 * a fixed 500). Returns ORDO_OK, or ORDO_E_NOMEM when even that fails. */
int srv_reply(ordo_server_response *resp, int status, json_t *body);
/* {"error":{"code","name","message"}}; message printf-style. */
int srv_error(ordo_server_response *resp, int status, int code,
              const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
/* The HTTP status for an ordo error code (an op's failure). */
int srv_http_status(int code);
/* Parse a JSON request body (an object unless any): 1 and *out, or 0 with
 * a 400 answer made. Syntax errors name the line and column only. */
int srv_parse_body(const ordo_server_request *req, int any, json_t **out,
                   ordo_server_response *resp);
/* Wait for op (bounded by request_timeout_ms); returns its status
 * (ORDO_E_TIMEOUT when it took too long, ORDO_E_NOMEM for a NULL op). The
 * op stays the caller's to read and release. */
int srv_wait(ordo_server *srv, ordo_op *op);

/* ---- wallets, DIDs, jobs (wallet.c) -------------------------------------- */

/* Route /v1/wallets..., /v1/verify, /v1/jobs/...: 1 when path is theirs. */
int srv_wallet_route(ordo_server *srv, const ordo_server_request *req,
                     ordo_server_response *resp);
/* Cancel and drop every job (stop). */
void srv_jobs_clear(ordo_server *srv);

/* ---- metrics (metrics.c) --------------------------------------------------- */

int srv_metrics(ordo_server *srv, ordo_server_response *resp);

/* The submitter's progress and ledger health, as of now (any thread). 0 and
 * a zeroed *p when the server has no ledger. */
int srv_progress(ordo_server *srv, ordo_submitter_progress *p);

/* ---- HTTP (server.c) ------------------------------------------------------ */

/* Rate limit, auth and the declared body size: 1 when resp holds the
 * answer already (429, 401, 413), 0 when the request may go on. */
int srv_precheck(ordo_server *srv, const ordo_server_request *req,
                 size_t declared_len, ordo_server_response *resp);
/* Everything after srv_precheck. */
int srv_dispatch(ordo_server *srv, const ordo_server_request *req,
                 ordo_server_response *resp);
/* Count an answer for ordo_http_requests_total. */
void srv_count_status(ordo_server *srv, int status);

#endif /* ORDO_SERVER_INTERNAL_H */

/*
 * internal.h — the server's state, struct ordo_server, which the files of
 * the server module share: server.c (start, stop, the loop thread,
 * libmicrohttpd), handle.c (rate limits, auth, routing, status endpoints),
 * batches.c (POST /v1/batches), wallet.c (wallets, DIDs, signing, jobs),
 * metrics.c (/metrics), reply.c (answers) and config.c (options). What the
 * files call in each other is in reply.h (answers) and routes.h (the
 * routes and counters). `ordo serve` is src/cli/serve.c. Other modules
 * use server.h.
 */
#ifndef ORDO_SERVER_INTERNAL_H
#define ORDO_SERVER_INTERNAL_H

#include "base/hist.h"
#include "cluster/cluster.h"
#include "ledger/ledger.h"
#include "server/server.h"

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>

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

/* A shard of a cluster driven by a thread of its own (cluster.c): the
 * drive holds a reference to the shard while its submitter lives. */
typedef struct srv_drive {
  struct ordo_server *srv;
  ordo_cluster_shard *shard;
  pthread_t thread; /* steps the submitter (cluster.c's drive_main) */
  int has_thread;
  atomic_int stop;
  ordo_submitter *sub; /* NULL without a ledger */
} srv_drive;

/* The dashboard's samples (dashboard.c): one a second, ten minutes. */
#define SRV_SAMPLES 600

typedef struct srv_sample {
  unsigned long long t_ms; /* Unix ms */
  unsigned long long enqueued, committed, invalid, requests, errors;
  unsigned long long queued, waiting, in_flight; /* gauges */
  unsigned long long p50_ms, p99_ms;
} srv_sample;

/* HTTP statuses counted for ordo_http_requests_total (metrics.c). */
#define SRV_NCODES 16

struct ordo_server {
  ordo_server_options opts; /* scalars; every string below is our copy */
  char *data_dir, *wallet_path, *bind;
  ordo_ctx *ctx;
  int own_ctx;
  ordo_journal *j;
  ordo_ledger_client *client;        /* NULL without a ledger */
  ordo_ledger_sawtooth_port *port;   /* NULL without a ledger */
  ordo_submitter *sub;               /* NULL without a ledger; loop only */
  /* --cluster (cluster.c): j and sub are NULL; every service this
   * instance holds the lease of is a shard with a journal and a
   * submitter of its own. */
  ordo_cluster *cl;
  json_t *policies;                  /* the config's services, or NULL */
  ordo_submitter_options sopt;       /* each shard's submitter's */
  pthread_mutex_t drive_mu;          /* guards drive */
  srv_drive **drive;
  size_t ndrive, capdrive;

  int has_token;
  unsigned char token_hash[32]; /* SHA-256 of the token */

  /* libmicrohttpd, its connection guard and the requests in flight
   * (src/http/mhd.h): NULL without HTTP. */
  struct ordo__mhd *http;
  atomic_int http_port;   /* -1 without HTTP */
  atomic_int stopping;

  pthread_t loop;
  int has_loop;
  pthread_mutex_t loop_mu; /* guards loop_stop; loop_cv is CLOCK_MONOTONIC */
  pthread_cond_t loop_cv;
  int loop_stop;
  int loop_kick;           /* cluster: a shard changed or a batch came */

  pthread_mutex_t stat_mu; /* guards everything down to enqueued */
  unsigned long long ledger_logged_ns[3]; /* loop thread only: last stderr
                                           line of each ordo_submitter_event
                                           (0: none) */
  unsigned long long steps;
  int step_rc;             /* the last step's error, ORDO_OK when fine */
  char step_err[256];
  ordo__hist enqueue_hist; /* enqueue to durable, ordo__hist_seconds */
  unsigned long long enqueued; /* batches journaled through the server */

  pthread_mutex_t rate_mu;
  srv_rate rate[SRV_RATE_SLOTS];

  pthread_mutex_t jobs_mu;
  srv_job *jobs;
  size_t njobs;

  atomic_ullong http_count[SRV_NCODES];

  /* The sampler thread (dashboard.c): a ring of the last SRV_SAMPLES. */
  pthread_t sampler;
  int has_sampler;
  pthread_mutex_t sample_mu; /* guards the ring and sample_stop */
  pthread_cond_t sample_cv;  /* CLOCK_MONOTONIC */
  int sample_stop;
  srv_sample samples[SRV_SAMPLES];
  size_t nsamples, sample_next;
};

/* ---- cluster.c: --cluster -------------------------------------------------- */
int ordo__srv_cluster_open(ordo_server *srv, const ordo_server_options *o,
                           const ordo_journal_options *jopt);
void ordo__srv_cluster_close(ordo_server *srv);
void *ordo__srv_cluster_loop(void *arg);
void ordo__srv_cluster_kick(ordo_server *srv);
int ordo__srv_cluster_progress(ordo_server *srv, ordo_submitter_progress *p);
void ordo__srv_cluster_totals(ordo_server *srv, ordo_journal_totals *t);
int ordo__srv_cluster_get_batch(ordo_server *srv, const char *id,
                                ordo_server_response *resp);
int ordo__srv_cluster_cancel(ordo_server *srv, const char *id,
                             ordo_server_response *resp);
int ordo__srv_cluster_get_service(ordo_server *srv, const char *svc,
                                  ordo_server_response *resp);
int ordo__srv_cluster_halt_resume(ordo_server *srv, const char *svc, int halt,
                                  const char *reason,
                                  ordo_server_response *resp);
json_t *ordo__srv_cluster_json(ordo_server *srv);

#endif /* ORDO_SERVER_INTERNAL_H */

/*
 * server.h — `ordo serve`: the HTTP JSON API over one context, one durable
 * submission queue and (with a ledger URL) the submitter that drains it.
 *
 * Why: services that are not written in C (or not in this process) hand
 * their signed batches to ordo over HTTP, and ask for wallet commands, the
 * same way they would call the C API. The server is a thin layer: every
 * request becomes calls of include/ordo.h or queue.h, and the answer is
 * given only when those calls have finished (a 202 for a batch means the
 * batch is on disk).
 *
 * What it owns:
 *   - an ordo_ctx (made from options.runtime, or the caller's options.ctx);
 *   - the journal DATA_DIR/queue.db (queue.h's journal API);
 *   - with a ledger URL: a REST client, the Sawtooth port and a submitter,
 *     driven by the server's loop thread (a step, then a wait until an
 *     enqueue, a status answer or a resume wakes it; a second at most);
 *   - wallets in DATA_DIR/wallets (the "path" of every wallet config);
 *   - async jobs (credential definitions on the heavy class) by job id.
 *
 * API (JSON; docs/openapi.yaml is the full description, README's
 * "ordo serve" section the summary):
 *   POST /v1/batches                 one item, an array, or a raw BatchList
 *   GET  /v1/batches/{id}            a batch's state
 *   DELETE /v1/batches/{id}          cancel a batch not yet sent
 *   GET  /v1/services/{id}           a service's counters
 *   GET  /v1/services                every service's, filtered, sorted, paged
 *   POST /v1/services/{id}/halt      halt a service by hand
 *   POST /v1/services/{id}/resume    a halted service goes on
 *   GET  /v1/queue                   totals
 *   GET  /v1/dashboard               totals and the last ten minutes
 *   GET  /ui                         the dashboard (no token: static files)
 *   POST /v1/wallets                 create
 *   POST /v1/wallets/{id}/open|close
 *   POST /v1/wallets/{id}/dids       create a DID
 *   POST /v1/wallets/{id}/sign       ed25519 signature
 *   POST /v1/verify
 *   POST /v1/wallets/{id}/cred-defs  202 {"job"}: an async job
 *   GET  /v1/jobs/{id}
 *   GET  /healthz and /readyz (no auth), GET /metrics (Prometheus text
 *   0.0.4)
 * Errors: {"error":{"code":N,"name":"ORDO_E_…","message":…}} with N an
 * ordo_err code; the HTTP status says the class (400, 401, 404, 405, 409,
 * 413, 429 with Retry-After, 500, 503, 504).
 *
 * Security: a bearer token (from a file that must not be world-readable)
 * is required on every path but /healthz, /readyz and /ui when set. Only
 * its SHA-256 is kept; a presented token is hashed and compared in
 * constant time (sodium_memcmp). Binding an address that is not loopback
 * without a token is refused. Tokens, passphrases and keys are never
 * logged nor put in an answer: JSON syntax errors name the line and
 * column, never the text.
 *
 * Threads: ordo_server_start creates libmicrohttpd's threads (a polling
 * thread and one thread per connection, when port >= 0), with HTTP the
 * header reaper (closes connections whose request headers are late) and,
 * with a ledger, the loop thread. Like the embedded node (node.h), the server is an
 * exception to "only the runtime creates threads": it is the process's
 * front door, not a library call. Handlers block their own connection
 * thread on ordo_op_wait (these are not runtime threads), so a slow request
 * holds one connection only.
 *
 * Locks (server.c, none is held while another is taken, nor while a
 * journal or runtime call blocks): srv->rate_mu (per-client buckets),
 * srv->jobs_mu (the job table), srv->stat_mu (submitter progress snapshot,
 * the enqueue histogram, the service names seen), srv->loop_mu (the loop's
 * sleep and stop flag), the HTTP server's mutex (requests in flight,
 * src/http/mhd.c) and the connection guard's (the open connections and
 * their header deadlines, src/http/guard.c): leaves, which libmicrohttpd's
 * callbacks and the reaper take alone.
 *
 * Hostile clients: a connection must send complete request headers within
 * header_timeout_ms of being accepted (or, on a kept-alive connection,
 * within max(idle_timeout_ms, header_timeout_ms) of its previous answer),
 * else the reaper shuts its socket down: a client trickling a byte now and
 * then is closed too. A connection with no bytes for idle_timeout_ms is
 * closed by libmicrohttpd (whole seconds, rounded up). One client address
 * may hold connection_limit_per_ip connections (more are closed as soon as
 * they are accepted), all of them together connection_limit. Rate limit
 * (429), token (401) and a declared Content-Length over max_body_bytes
 * (413) are answered as soon as the headers are in, before any body byte
 * is read (instead of `100 Continue`), and the connection is closed after.
 */
#ifndef ORDO_SERVER_H
#define ORDO_SERVER_H

#include "ordo.h"
#include "queue/queue.h"

#include <stddef.h>

typedef struct ordo_server ordo_server;

/*
 * Start from ordo_server_options_init, then optionally apply a config file
 * (ordo_server_options_from_file / _from_json), then set fields. Strings
 * are borrowed until ordo_server_start returns, except those set by the
 * _from_json/_from_file calls, which the options own (freed by
 * ordo_server_options_clear).
 *
 * Config keys (JSON object; unknown keys are refused):
 *   port                   int, 0..65535 (0: ephemeral)         8080
 *   bind                   string, IPv4/IPv6 literal          127.0.0.1
 *   token_file             string, path (not world-readable)     none
 *   data_dir               string, path (made, mode 0700)     required
 *   ledger_url             string, Sawtooth REST URL             none
 *   strategy               "parallel"|"serial"|"unconstrained" parallel
 *   mode                   "continuous"|"rounds"             continuous
 *   granularity            int, -1 (unlimited) .. 1000000           -1
 *   max_in_flight          int >= 0 (0: no cap)                      0
 *   service_max_in_flight  int >= 0 (0: no cap)                      0
 *   services               {"svc":{"on_invalid":"skip"|"halt",
 *                           "max_in_flight":N}}, per-service policy
 *   max_body_bytes         int, 1 .. 1 GiB                       16 MiB
 *   max_items              int, items per POST /v1/batches        10000
 *   rate_limit_per_s       number >= 0, per client IP (0: off)        0
 *   rate_limit_burst       int >= 0 (0: max(1, rate))                 0
 *   poll_ms                int, 0..60000, shortest pause between   20
 *                          two status requests for one batch (a
 *                          ledger that ignores `wait`)
 *   max_per_submit         int >= 0, batches per POST (0: 100)        0
 *   max_submit_bytes       int, 1 KiB .. 1 GiB, bytes per POST   10 MiB
 *                          to the ledger (its body limit); a batch
 *                          over it alone is INVALID
 *   status_wait_s          int, 0..300, long-poll `wait` of the      10
 *                          status requests (0: poll every poll_ms)
 *   ledger_probe_ms        int, 0..3600000, ask an idle ledger     5000
 *                          whether it answers this often (0: never)
 *   request_timeout_ms     int, 1..3600000, a request's op waits  60000
 *   max_jobs               int, 1..100000, jobs kept                256
 *   connection_limit       int, 1..100000, every client          4096
 *   connection_limit_per_ip int, 1..100000, one client address      64
 *   header_timeout_ms      int, 1..3600000, complete request     10000
 *                          headers due this long after accept
 *   idle_timeout_ms        int, 1..3600000, no bytes this long   30000
 *                          closes a connection (whole seconds,
 *                          rounded up)
 *   shutdown_grace_ms      int, 0..600000, wait for requests       10000
 *   runtime                object of ordo_config keys (cheap_threads, …)
 *   checkpoint_records     int, 1..10^9, journal records between 100000
 *                          checkpoints (also one every 5 min with
 *                          any record, and at a clean stop)
 *   retention_count        int, 1..10^10, finished batches whose 5000000
 *                          status and id the journal keeps
 *   retention_s            int, 1..10^9, and for how long       604800
 *   signing_key_file       string, path: the operator's Sawtooth     none
 *                          key (64 hex digits, as `sawtooth keygen`
 *                          writes it; not world-readable), read
 *                          when the config is applied; the server
 *                          signs "transactions" items with it
 */
typedef struct ordo_server_options {
  const char *bind;       /* NULL: "127.0.0.1" */
  int port;               /* 0: ephemeral; -1: no HTTP (ordo_server_handle) */
  const char *token;      /* the token itself (NULL: token_file or none) */
  const char *token_file; /* read at start when token is NULL */
  const char *data_dir;   /* required */
  const char *ledger_url; /* NULL: no submitter */
  ordo_queue_options queue;
  const char *services_json; /* per-service policies, as the config key */
  long long checkpoint_records; /* 0: the journal's default */
  long long retention_count;    /* 0: the journal's default */
  long long retention_s;        /* 0: the journal's default */
  size_t max_body_bytes;
  size_t max_items;
  double rate_limit_per_s;
  unsigned rate_limit_burst;
  unsigned poll_ms;
  size_t max_per_submit;
  size_t max_submit_bytes;
  int status_wait_s;
  unsigned ledger_probe_ms;
  unsigned request_timeout_ms;
  unsigned max_jobs;
  unsigned connection_limit;
  unsigned shutdown_grace_ms;
  unsigned connection_limit_per_ip; /* connections of one client address */
  unsigned header_timeout_ms; /* request headers due after accept */
  unsigned idle_timeout_ms;   /* no bytes this long closes a connection */
  ordo_config runtime; /* used when ctx is NULL */
  ordo_ctx *ctx;       /* borrowed when not NULL: must outlive the server */
  void *owned_;        /* strings of a config file; ordo_server_options_clear */
  /* The operator's Sawtooth key: POST /v1/batches items with
   * "transactions" (instead of a signed "payload") are built into a batch
   * signed with it; NULL: such items are refused. Borrowed: it must outlive
   * the server. ordo_server_options_signing_key_file (and the config key
   * signing_key_file) set it to a signer the options own (signer_owned_,
   * freed by ordo_server_options_clear). */
  const struct ordo_ledger_signer *signer;
  void *signer_owned_;
  /* (added for clusters) One instance of several on the shared queue in
   * data_dir, which must then be a PostgreSQL URL (src/cluster/cluster.h):
   * any instance accepts batches; each service is run by the instance
   * holding its lease. instance_id NULL: "HOST:PID"; lease_ttl_ms 0:
   * 5000. */
  int cluster;
  const char *cluster_queue; /* NULL: "queue" */
  const char *instance_id;
  unsigned lease_ttl_ms;
} ordo_server_options;

/* The defaults above (runtime: ordo_config_init then the environment). */
void ordo_server_options_init(ordo_server_options *o);

/* Apply a config (JSON text / file) on top of o. ORDO_E_JSON (not JSON,
 * with the line and column), ORDO_E_CONFIG naming the key, ORDO_E_IO for a
 * file that cannot be read; ordo_last_error_message() says why. On failure
 * o keeps what it had. */
int ordo_server_options_from_json(ordo_server_options *o, const char *json);
int ordo_server_options_from_file(ordo_server_options *o, const char *path);

/* Free what the _from_* calls made. The options can be used again after
 * ordo_server_options_init. */
void ordo_server_options_clear(ordo_server_options *o);

/*
 * Read the operator's signing key file (ordo_ledger_signer_from_file: 64
 * hex digits on one line; a world-readable file is refused, as the token
 * file is) into o->signer, owned by the options (one they owned before is
 * freed). `ordo serve --signing-key-file` and the config key call it.
 * ORDO_E_INVAL / ORDO_E_BAD_KEY naming the file, never its content; on
 * failure o keeps what it had.
 */
int ordo_server_options_signing_key_file(ordo_server_options *o,
                                         const char *path);

/*
 * Start: check the options, read the token, make DATA_DIR, open the
 * context (unless given), the journal, the ledger client, port and
 * submitter, then libmicrohttpd. *out is the running server. On failure
 * nothing is left running and ordo_last_error_message() says why:
 * ORDO_E_INVAL (bad options; a non-loopback bind without a token; a token
 * file that is world-readable, empty or unreadable), ORDO_E_IO (the port
 * cannot be bound, DATA_DIR cannot be made), the journal's and client's
 * errors, ORDO_E_NOMEM, ORDO_E_SYSTEM. Not on a runtime thread.
 */
int ordo_server_start(const ordo_server_options *o, ordo_server **out);

/* The TCP port it listens on (the ephemeral one for port 0), -1 without
 * HTTP. */
int ordo_server_port(const ordo_server *srv);

/* The context the server runs on (its own or the borrowed one). */
ordo_ctx *ordo_server_ctx(ordo_server *srv);

/*
 * Graceful stop: stop accepting connections (MHD_quiesce_daemon), wait up
 * to shutdown_grace_ms for requests in flight to be answered, stop
 * libmicrohttpd, stop the loop thread after its current step, cancel the
 * running jobs, close the journal and free the context (if owned). Every
 * 202 given is journaled by then (by construction: it is sent only after).
 * Returns the journal's close status. NULL accepted. Not concurrently with
 * other calls on srv; not on a runtime thread.
 */
int ordo_server_stop(ordo_server *srv);

/* ------------------------------------------------------------------------ */
/* Requests without sockets (tests, fuzzing; the HTTP server uses it too)   */
/* ------------------------------------------------------------------------ */

/*
 * One request. Every pointer is borrowed for the call only. method and path
 * (already percent-decoded, as libmicrohttpd gives it) are required; query
 * is the raw text after '?' (percent-encoded) or NULL; authorization,
 * content_type and service (the X-Ordo-Service header) are header values
 * or NULL; client names the peer for rate limiting (its IP; NULL: "local");
 * body is body_len bytes of anything (NULL when body_len is 0).
 */
typedef struct ordo_server_request {
  const char *method;
  const char *path;
  const char *query;
  const char *authorization;
  const char *content_type;
  const char *service;
  const char *client;
  const void *body;
  size_t body_len;
} ordo_server_request;

/* An answer: body is malloc'd (NUL-terminated, body_len bytes without the
 * NUL); content_type and allow are static strings; retry_after is seconds
 * (0: no Retry-After header); allow is set for 405. */
typedef struct ordo_server_response {
  int status;
  char *body;
  size_t body_len;
  const char *content_type;
  unsigned retry_after;
  const char *allow;
  const char *const *headers; /* more headers: static name/value pairs,
                                 NULL-terminated (the dashboard's
                                 security headers), or NULL */
} ordo_server_response;

/*
 * Handle one request as the HTTP server does: rate limit, auth, size
 * limit, routing, and the call behind the route (blocking this thread for
 * at most request_timeout_ms per op). Returns ORDO_OK whenever an answer
 * was made (error answers included), ORDO_E_INVAL for NULL arguments,
 * ORDO_E_NOMEM (resp->body NULL). Any thread but a runtime thread
 * (ops are waited for: the answer would be 500 ORDO_E_WOULD_DEADLOCK);
 * concurrently.
 */
int ordo_server_handle(ordo_server *srv, const ordo_server_request *req,
                       ordo_server_response *resp);

/* Free resp->body and zero resp. NULL accepted. */
void ordo_server_response_clear(ordo_server_response *resp);

#endif /* ORDO_SERVER_H */

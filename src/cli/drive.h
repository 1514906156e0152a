/*
 * drive.h — a ledger node or `ordo serve` run as a child process of this
 * binary and spoken to over HTTP (drive.c). For `ordo run` and the
 * benchmarks that measure a server from outside; not part of libordo.
 */
#ifndef ORDO_CLI_DRIVE_H
#define ORDO_CLI_DRIVE_H

#include "queue/queue.h"
#include "runtime/runtime.h"

#include <curl/curl.h>
#include <jansson.h>
#include <sys/types.h>

/* Seconds on the monotonic clock, for elapsed times. */
static inline double ordo__cli_now_s(void) {
  return (double)ordo__now_ns() / 1e9;
}

typedef struct ordo__child {
  pid_t pid;
  char url[128]; /* from its first stdout line, "listening on URL" */
} ordo__child;

/* Start this binary (/proc/self/exe) with argv, stderr to log_path; wait up
 * to 10 s for its first stdout line "listening on URL". ORDO_OK, or
 * ORDO_E_SYSTEM (it could not start or said nothing; it is killed). */
int ordo__child_start(char *const *argv, const char *log_path, ordo__child *c);

/* SIGTERM and wait: its exit status (128 + signal when killed); 0 when it
 * was not running. */
int ordo__child_stop(ordo__child *c);

/* A request with a bearer token: POST body (JSON) when body is not NULL,
 * else GET. The status code, -1 when no answer came; the answer's body in
 * *out (the caller frees it; may be NULL). The token is wiped from the
 * header buffer after use. */
long ordo__http(CURL *h, const char *url, const char *token,
                const char *body, char **out);

/* Remove dir and everything under it, depth first, without a shell (paths
 * go as they are). 0, or -1 when something could not be removed. */
int ordo__rmdir_all(const char *dir);

/* The workload as one JSON array of `POST /v1/batches` items, each with
 * its batch signed (intkey and ordo-rw mixed, a key made for the call). */
int ordo__serve_items(const ordo_workload *w, json_t **out);

/* ---- a cluster run (cluster_run.c) -------------------------------------- */

typedef struct ordo__cluster_run_opts {
  const char *pg_url;      /* the database (no '#') */
  int instances;           /* 1..16 `ordo serve --cluster` children */
  size_t services, batches;
  double conflict, invalid, deps; /* the workload's (ordo workload) */
  unsigned long long seed;
  unsigned ttl_ms;         /* --lease-ttl-ms of every instance */
  unsigned block_ms;       /* the embedded ledger's block interval */
  double kill_every_s;     /* SIGKILL a random instance this often (0:
                              never) ... */
  double restart_after_s;  /* ... and start it again this much later */
  int sigstop;             /* instead of SIGKILL: SIGSTOP, and SIGCONT
                              restart_after_s later (a stale owner that
                              comes back) */
  double timeout_s;        /* give up after this long */
  double rate;             /* batches posted per second at most (0: as
                              fast as the instances take them) */
  const char *dir;         /* an existing directory for files and logs */
  int progress;            /* a progress bar on stderr */
} ordo__cluster_run_opts;

typedef struct ordo__cluster_run_result {
  size_t batches;
  int finished;            /* every batch final before timeout_s */
  double seconds, per_s;   /* first POST to the last verdict */
  long long committed, invalid;
  long long lost;          /* acknowledged, then missing or never final */
  long long committed_twice; /* batch ids in the ledger's blocks twice */
  int verify_equal;        /* `ordo verify --queue`: the ledger equals the
                              serial replay */
  long long differences;
  double max_stall_s;      /* longest time a service with work left
                              finished nothing (after all was posted) */
  char max_stall_service[129];
  int kills;
} ordo__cluster_run_result;

/* Run it (cluster_run.c's comment says how). ORDO_OK when everything was
 * posted and finished; ORDO_E_STATE when not (the result says how far it
 * got); ORDO_E_SYSTEM when a child did not start. */
int ordo__cluster_run(const ordo__cluster_run_opts *o,
                      ordo__cluster_run_result *r);

#endif /* ORDO_CLI_DRIVE_H */

/*
 * internal.h — what the files of the cluster module share: cluster.c
 * (open/close, the lease thread, shards), lease.c (the lease round's SQL),
 * inbox.c (enqueue, the inbox's pump into a journal, lookups). The
 * contract is cluster.h.
 */
#ifndef ORDO_CLUSTER_INTERNAL_H
#define ORDO_CLUSTER_INTERNAL_H

#include "base/base.h"
#include "cluster/cluster.h"
#include "runtime/runtime.h"
#include "storage/storage.h"

#include <jansson.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>

#define CL_TTL_DEFAULT_MS 5000u
#define CL_POOL_MAX 8        /* idle enqueue connections kept */
#define CL_PUMP_ROWS 512     /* inbox rows moved per journal enqueue */
#define CL_NOTIFY_CHANNEL "ordo_cluster"
#define CL_ID_MAX 128

struct ordo_cluster_shard {
  ordo_cluster *cl;
  char *service;
  char *lease;         /* its lease's name = its journal store's name */
  uint64_t epoch;
  ordo_journal *j;
  atomic_int live;
  int refs;            /* cl->mu */
  int closed;          /* the journal is closed (cl->mu) */
  int lost;            /* stopped because the lease was lost, not released */
  pthread_mutex_t pump_mu; /* one pump at a time; guards cursor */
  uint64_t cursor;     /* the highest seq moved into the journal */
  atomic_int pump_due; /* the pump thread moves its inbox next */
  void *ud;
};

struct ordo_cluster {
  ordo_ctx *ctx;
  char *url, *queue, *id, *advertise;
  char *prefix;        /* "cluster/QUEUE/": the queue's lease names */
  unsigned ttl_ms, renew_ms;
  ordo_journal_options jopt;
  void (*on_change)(void *ud);
  void *on_change_ud;

  PGconn *lc;          /* the lease thread's connection (LISTEN too) */
  unsigned long long renewed_ms; /* wall ms of the last good renewal */
  int joined;          /* this process's row has its joined_at */
  unsigned long long over_since_ms; /* holding more than the share to keep
                                       since (0: not over) */
  unsigned long long expiry_ms;  /* wall ms when the next lease of another
                                    instance expires (0: none): the next
                                    round goes then, so that a dead
                                    owner's services wait TTL, not TTL
                                    plus a round */

  pthread_mutex_t pool_mu; /* enqueue connections */
  PGconn *idle[CL_POOL_MAX];
  size_t nidle;

  pthread_mutex_t mu;  /* shards, retiring, stats, stop */
  pthread_cond_t cv;   /* a shard's last reference went */
  ordo_cluster_shard **shards; /* live */
  size_t nshards, capshards;
  ordo_cluster_shard **retiring; /* not live; lease still ours */
  size_t nretiring, capretiring;
  int stop;
  int wake_fd;         /* eventfd: stop, or a lease to give back */
  pthread_t thread;
  int has_thread;
  /* Leases taken whose journals are being opened, each on a thread of
   * its own (lease.c): the lease thread never waits for a journal, so
   * that its renewals keep their time however long an open takes. */
  char **adopting;
  size_t nadopting, capadopting;
  /* The pump thread (inbox.c): moves the inboxes of the shards marked
   * due, on a connection of its own, off the lease thread. */
  pthread_t pump_thread;
  int has_pump;
  int pump_kick;       /* mu; pump_cv */
  pthread_cond_t pump_cv;
  ordo_cluster_stats stats;
};

/* ---- cluster.c ----------------------------------------------------------- */
void ordo__cl_changed(ordo_cluster *cl);
/* A shard stops being live (lost: the lease went to another); moves to
 * retiring with the map's reference dropped. cl->mu held. */
void ordo__cl_retire_locked(ordo_cluster *cl, size_t i, int lost);
void ordo__cl_error(ordo_cluster *cl, const char *fmt, ...) ORDO__PRINTF(2, 3);
/* A line on stderr, after the UTC time to the millisecond: when a lease
 * moved is what an operator reads these for. */
void ordo__cl_log(const char *fmt, ...) ORDO__PRINTF(1, 2);

/* ---- lease.c ------------------------------------------------------------- */
/* One lease round on cl->lc; ORDO_OK or ORDO_E_STORAGE (stats say why). */
int ordo__cl_round(ordo_cluster *cl);
/* Give every retiring lease whose journal is closed back (owner NULL). */
void ordo__cl_release_closed(ordo_cluster *cl);
/* The lease and journal store name of service: "cluster/QUEUE/ESC", the
 * service percent-encoded but for [A-Za-z0-9._-]. malloc'd. */
char *ordo__cl_lease_name(const ordo_cluster *cl, const char *service);

/* ---- inbox.c ------------------------------------------------------------- */
/* A batch's body in ordo_cluster_batch (inbox.c's opening comment): the
 * spec's reads, writes, deps and ledger id as JSON, then a NUL and the
 * payload. encode: malloc'd, *len; NULL when out of memory or a string is
 * not UTF-8 (*why says which). decode: sp's strings and arrays point into
 * b and into keep (ordo__cl_body_clear frees keep, also after a failure);
 * id and service are the caller's. ORDO_OK, ORDO_E_INVAL (not a body
 * ordo wrote), ORDO_E_NOMEM. The body comes from the database: anything
 * there is decoded without trusting it (fuzz/fuzz_cluster_body.c). */
typedef struct ordo__cl_body {
  json_t *json;
  const char **strs; /* reads, then writes, then deps */
} ordo__cl_body;
unsigned char *ordo__cl_body_encode(const ordo_queue_batch_spec *sp,
                                    size_t *len, const char **why);
int ordo__cl_body_decode(const unsigned char *b, size_t len, const char *id,
                         const char *service, ordo_queue_batch_spec *sp,
                         ordo__cl_body *keep);
void ordo__cl_body_clear(ordo__cl_body *k);
/* A connection for an enqueue or a lookup (the pool's or a new one). */
int ordo__cl_conn_get(ordo_cluster *cl, PGconn **out);
/* Back to the pool; broken: closed instead. */
void ordo__cl_conn_put(ordo_cluster *cl, PGconn *c, int broken);
/* A statement's result, NULL (message in err) when it failed: *state
 * gets the SQLSTATE ("" when none). */
PGresult *ordo__cl_exec(PGconn *c, const char *sql, int n,
                        const char *const *vals, char *err, size_t errlen,
                        char state[6]);
/* Pump s (s->pump_mu taken inside) on connection c. */
int ordo__cl_pump_on(ordo_cluster *cl, ordo_cluster_shard *s, PGconn *c);
/* The services named by the notifications waiting on cl->lc: mark each
 * held here due for the pump thread. */
void ordo__cl_notifications(ordo_cluster *cl);
/* Mark s due (all: every live shard) and wake the pump thread. */
void ordo__cl_pump_kick(ordo_cluster *cl, ordo_cluster_shard *s, int all);
/* The pump thread's body. */
void *ordo__cl_pump_main(void *arg);

#endif /* ORDO_CLUSTER_INTERNAL_H */

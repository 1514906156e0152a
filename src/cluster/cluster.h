/*
 * cluster.h — several ordo instances on one PostgreSQL queue: any of them
 * accepts batches, each service is run by one of them at a time under a
 * lease, and a service whose owner dies is taken over by another.
 *
 * The shared queue lives in four tables of the storage schema (version 3,
 * docs/postgres.md):
 *
 *   ordo_cluster_batch   every batch enqueued, by id: its service, its seq,
 *                        digest and body, and whether the owner's journal
 *                        holds it yet (moved; those not are the inbox);
 *   ordo_cluster_seq     per service: the counter that gives seq, and the
 *                        name of the service's lease;
 *   ordo_lease           per service: owner, epoch, expires_at;
 *   ordo_cluster_instance the instances alive (seen_at), for the share.
 *
 * Enqueue (any instance, ordo_cluster_enqueue) is one transaction: it
 * bumps the service's counter row by the number of batches, which locks
 * that row until the transaction ends, and inserts the batches with the
 * numbers it got. Two enqueues into one service therefore commit in the
 * order of their numbers: a seq the owner sees is never followed by a
 * smaller one becoming visible later. That is the submission order.
 *
 * Each service has a journal of its own, a store "cluster/QUEUE/SERVICE"
 * of the same database. Its owner opens it fenced at the lease's epoch
 * (ordo__storage_postgres_fence): every transaction it runs checks the
 * epoch under a share lock of the lease row, so once another instance has
 * taken the lease (epoch + 1) nothing the old owner writes gets in, and a
 * takeover waits for a write already under way. The owner moves the
 * service's inbox into its journal in seq order (the pump), and from
 * there it is the single-instance path: the scheduler, the submitter, the
 * verdicts. A new owner opening the journal replays it as a restart does:
 * batches sent by the old owner are UNKNOWN until the ledger settles them.
 *
 * Leases (a thread per cluster, every renew_ms): renew the leases held
 * (one lost is closed at once), count the instances alive and the
 * services, release what is over this instance's share (ceil(services /
 * instances); handed over clean), and take, with FOR UPDATE SKIP LOCKED,
 * free leases up to the share and expired ones (an owner that died)
 * whatever the share. close hands every lease over.
 *
 * Threads: ordo_cluster_enqueue blocks (a SQL transaction): any thread but
 * a runtime one. The lease thread opens and closes journals; the caller
 * drives each service's journal through ordo_cluster_shard (a reference),
 * typically with a submitter of its own, and lets go of it when it is no
 * longer live.
 */
#ifndef ORDO_CLUSTER_H
#define ORDO_CLUSTER_H

#include "ordo.h"
#include "queue/batch_json.h"
#include "queue/queue.h"

#include <stddef.h>
#include <stdint.h>

typedef struct ordo_cluster ordo_cluster;
typedef struct ordo_cluster_shard ordo_cluster_shard;

typedef struct ordo_cluster_options {
  const char *url;         /* the PostgreSQL database (no '#NAME') */
  const char *queue;       /* the shared queue's name; NULL: "queue" */
  const char *instance_id; /* NULL: "HOST:PID"; at most 128 bytes */
  const char *advertise;   /* this instance's HTTP URL for the others, or
                              NULL */
  unsigned ttl_ms;         /* a lease not renewed this long is free to
                              take (0: 5000) */
  unsigned renew_ms;       /* lease round (0: ttl_ms / 3) */
  ordo_journal_options journal; /* each service journal's options
                                   (create is set) */
  /* Called after a service's shard went live or stopped being live
   * (lost, released, closing), on the lease thread, and after batches
   * were moved into a shard's journal, on the thread that moved them:
   * wake whoever drives the shards. Must not block or call into the
   * cluster. */
  void (*on_change)(void *ud);
  void *on_change_ud;
} ordo_cluster_options;

void ordo_cluster_options_init(ordo_cluster_options *opt);

/*
 * Join the shared queue: connect, register the instance, start the lease
 * thread (whose first round runs before this returns, so that the
 * instance starts owning its share at once). ORDO_E_INVAL (bad options),
 * ORDO_E_STORAGE (the server: the message says why), ORDO_E_NOMEM.
 * Blocking; not on a runtime thread.
 */
int ordo_cluster_open(ordo_ctx *ctx, const ordo_cluster_options *opt,
                      ordo_cluster **out);

/*
 * Leave: every shard stops being live (the caller must let go of its
 * references: close waits for that), each journal is closed, its lease
 * released for another instance to take at once, and the instance
 * unregistered. NULL accepted. Blocking.
 */
void ordo_cluster_close(ordo_cluster *cl);

/* This instance's id (the cluster's copy). */
const char *ordo_cluster_instance_id(const ordo_cluster *cl);
unsigned ordo_cluster_ttl_ms(const ordo_cluster *cl);
/* Set (or with NULL clear) the HTTP URL the others name this instance by
 * (a 421, the dashboard's owner link): known to a server only once it
 * listens. Written at the next lease round. ORDO_E_NOMEM. Any thread. */
int ordo_cluster_set_advertise(ordo_cluster *cl, const char *url);

/*
 * Enqueue specs[0..n) into the shared queue in one transaction (module
 * comment). Only id, service, reads, writes, deps, ledger_id and payload
 * of a spec are used. out[i] gets each one's seq in its service, and
 * already = 1 when a batch with that id and the same content was enqueued
 * before (nothing new then). ORDO_OK once it is committed; ORDO_E_EXISTS
 * (*bad = i: an id enqueued before with other content; nothing
 * enqueued), ORDO_E_INVAL (a spec the journal would refuse), ORDO_E_STORAGE
 * (the server: nothing enqueued), ORDO_E_NOMEM. The message says which
 * and why. Blocking.
 */
int ordo_cluster_enqueue(ordo_cluster *cl, const ordo_queue_batch_spec *specs,
                         size_t n, ordo_journal_enqueued *out, size_t *bad);

/*
 * Where the batch id is: *service (malloc'd) and *seq, and *in_inbox = 1
 * while its owner's journal does not hold it yet. ORDO_E_NOT_FOUND,
 * ORDO_E_STORAGE. Blocking.
 */
int ordo_cluster_locate(ordo_cluster *cl, const char *id, char **service,
                        uint64_t *seq, int *in_inbox);

/*
 * A reader of the shared queue that does not join it (no lease, no
 * instance row): `ordo verify --cluster` reads each signed batch as it was
 * enqueued. queue NULL: "queue". Blocking; one thread at a time.
 */
typedef struct ordo_cluster_reader ordo_cluster_reader;
int ordo_cluster_reader_open(const char *url, const char *queue,
                             ordo_cluster_reader **out);
/* The payload of batch id (malloc'd *payload, *len). ORDO_E_NOT_FOUND,
 * ORDO_E_STORAGE, ORDO_E_NOMEM. */
int ordo_cluster_reader_payload(ordo_cluster_reader *r, const char *id,
                                unsigned char **payload, size_t *len);
void ordo_cluster_reader_close(ordo_cluster_reader *r);

/* One service's lease as the database has it. */
typedef struct ordo_cluster_lease {
  char service[ORDO_BATCH_SERVICE_MAX + 1];
  char owner[129];           /* "" when free */
  uint64_t epoch;
  long long expires_in_ms;   /* negative: expired */
  uint64_t inbox;            /* batches not yet in the owner's journal */
  char owner_url[256];       /* the owner's advertised HTTP URL, or "" */
} ordo_cluster_lease;

/*
 * Every service of the queue (service order), malloc'd into *out (the
 * caller frees it), or only `service` when not NULL (ORDO_E_NOT_FOUND
 * when the queue has no such service). Blocking.
 */
int ordo_cluster_leases(ordo_cluster *cl, const char *service,
                        ordo_cluster_lease **out, size_t *n);

/* Counters of this instance, for /metrics. */
typedef struct ordo_cluster_stats {
  unsigned long long held;       /* leases held now */
  unsigned long long taken;      /* leases taken, in all */
  unsigned long long taken_over; /* of which from an owner whose lease had
                                    expired (it died or stopped) */
  unsigned long long lost;       /* leases found taken by another */
  unsigned long long released;   /* handed over (share, close) */
  unsigned long long enqueued;   /* batches enqueued through this instance */
  unsigned long long pumped;     /* batches moved from the inbox into a
                                    journal held here */
  unsigned long long rounds;     /* lease rounds */
  unsigned long long round_errors; /* rounds the server failed */
  unsigned instances;            /* alive at the last round */
  char last_error[256];          /* of the last failed round, or "" */
  unsigned long long last_error_ms; /* when (Unix ms), 0: never */
} ordo_cluster_stats;

void ordo_cluster_get_stats(ordo_cluster *cl, ordo_cluster_stats *st);

/* ---- shards: the services this instance runs --------------------------- */

/*
 * The live shards now, each with a reference (ordo_cluster_shard_put each
 * one): *out malloc'd, the caller frees the array. ORDO_OK or
 * ORDO_E_NOMEM.
 */
int ordo_cluster_shards(ordo_cluster *cl, ordo_cluster_shard ***out,
                        size_t *n);
/* The live shard of service, with a reference, or NULL. */
ordo_cluster_shard *ordo_cluster_shard_get(ordo_cluster *cl,
                                           const char *service);
/* Let go of a reference; the last one of a shard no longer live closes
 * its journal (blocking: not on a runtime thread). */
void ordo_cluster_shard_put(ordo_cluster_shard *s);

/* The shard's journal: valid while the reference is held. */
ordo_journal *ordo_cluster_shard_journal(ordo_cluster_shard *s);
const char *ordo_cluster_shard_service(const ordo_cluster_shard *s);
uint64_t ordo_cluster_shard_epoch(const ordo_cluster_shard *s);
/* 0 once the lease is lost, released or the cluster closes: stop using
 * the journal (nothing it writes would get in) and put the reference. */
int ordo_cluster_shard_live(const ordo_cluster_shard *s);

/* The caller's slot on a shard (e.g. its submitter); NULL at first. */
void *ordo_cluster_shard_userdata(const ordo_cluster_shard *s);
void ordo_cluster_shard_set_userdata(ordo_cluster_shard *s, void *ud);

/* Move the inbox of the shard's service into its journal now (the lease
 * thread does it on a notification and every round): for a caller that
 * just enqueued into a service it owns. Blocking. */
int ordo_cluster_shard_pump(ordo_cluster *cl, ordo_cluster_shard *s);

#endif /* ORDO_CLUSTER_H */

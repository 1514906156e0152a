/*
 * drain.h — the request queue both storage backends drain (internal to
 * src/storage).
 *
 * submit appends a request to the database's pending list and posts the
 * drain task to the database's serial executor unless it is already queued
 * or running; the drain takes every pending request at once and hands them
 * to the backend as one group (group commit), or one at a time when group
 * commit is off, and a CLOSE, always last (nothing is accepted after it),
 * to the backend's run_close. Requests that arrive while a group runs form
 * the next one. At most one drain runs per database, so the backend's
 * connection is used by one thread at a time, and mu orders the hand-over.
 *
 * Lock order: mu, then the executor's lock (submit and the drain post the
 * task while holding mu, which is what makes "scheduled" and "the task is
 * queued or running" the same fact). mu is never held while a group runs
 * or a done callback is called.
 */
#ifndef ORDO_STORAGE_DRAIN_H
#define ORDO_STORAGE_DRAIN_H

#include "runtime/runtime.h"
#include "storage/storage.h"

#include <pthread.h>

typedef struct ordo__storage_drain ordo__storage_drain;
struct ordo__storage_drain {
  ordo__executor *ex; /* the database's serial executor; set once open */
  int group_commit;   /* 0 with ORDO_STORAGE_NO_GROUP_COMMIT */
  /* Run list (linked by backend_next, no CLOSE) and call every done. */
  void (*run_group)(ordo__storage_drain *d, ordo_storage_req *list);
  /* Everything before req has completed: close the database, free the
   * backend's struct (d with it: drain_destroy first) and call req's done,
   * in the order the backend needs (req is the caller's memory). */
  void (*run_close)(ordo__storage_drain *d, ordo_storage_req *req);

  ordo__task task;
  pthread_mutex_t mu; /* guards the fields below */
  ordo_storage_req *head, *tail; /* submitted, not yet taken by a drain */
  int scheduled;      /* the drain task is queued or running */
  int closing;        /* CLOSE was accepted: submit refuses from now on */
  size_t npending;    /* requests in the list (a CLOSE included) */
  int wake_fd;        /* an eventfd the backend polls, or -1 (set once) */
  size_t wake_at;     /* > 0: the submit that brings npending to it
                         writes wake_fd */
};

void ordo__storage_drain_init(ordo__storage_drain *d, int group_commit,
                              void (*run_group)(ordo__storage_drain *,
                                                ordo_storage_req *),
                              void (*run_close)(ordo__storage_drain *,
                                                ordo_storage_req *));
void ordo__storage_drain_destroy(ordo__storage_drain *d);

/* Queue a request the backend has validated and reset: ORDO_OK (its done
 * will be called), ORDO_E_STATE after CLOSE, or the executor's refusal.
 * Any thread. */
int ordo__storage_drain_submit(ordo__storage_drain *d, ordo_storage_req *req);

/* For a backend that sends a group while the one before it is still in
 * flight (PostgreSQL's pipeline), from its run_group: take the requests
 * pending now as the next group (a CLOSE, and nothing after it, stays for
 * the drain) if there are at least min of them (any, once CLOSE came), or
 * NULL; then, with a wake_fd, the submit that brings them to min writes 1
 * to wake_fd, so that the backend can wait for the server and for enough
 * new requests at once. */
ordo_storage_req *ordo__storage_drain_take(ordo__storage_drain *d, size_t min);

#endif /* ORDO_STORAGE_DRAIN_H */

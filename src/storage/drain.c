/*
 * drain.c — the request queue both storage backends drain (drain.h).
 */
#include "storage/drain.h"
#include "base/base.h"

#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

void ordo__storage_drain_init(ordo__storage_drain *d, int group_commit,
                              void (*run_group)(ordo__storage_drain *,
                                                ordo_storage_req *),
                              void (*run_close)(ordo__storage_drain *,
                                                ordo_storage_req *)) {
  if (pthread_mutex_init(&d->mu, NULL) != 0)
    abort(); /* cannot fail on Linux with default attributes */
  d->group_commit = group_commit;
  d->wake_fd = -1;
  d->run_group = run_group;
  d->run_close = run_close;
}

void ordo__storage_drain_destroy(ordo__storage_drain *d) {
  pthread_mutex_destroy(&d->mu);
}

/* The drain task: take every pending request, run them, answer them. */
static void drain(ordo__task *task) {
  ordo__storage_drain *d = ORDO__CONTAINER_OF(task, ordo__storage_drain, task);
  for (;;) {
    pthread_mutex_lock(&d->mu);
    ordo_storage_req *list = d->head;
    d->head = d->tail = NULL;
    d->npending = 0;
    pthread_mutex_unlock(&d->mu);

    /* submit refuses everything after a CLOSE, so one is always last. */
    ordo_storage_req *close = NULL, **pp = &list;
    while (*pp != NULL) {
      if ((*pp)->opcode == ORDO_STORAGE_CLOSE) {
        close = *pp;
        *pp = NULL;
        break;
      }
      pp = &(*pp)->backend_next;
    }
    if (d->group_commit) {
      if (list != NULL)
        d->run_group(d, list);
    } else {
      for (ordo_storage_req *r = list, *next; r != NULL; r = next) {
        next = r->backend_next;
        r->backend_next = NULL;
        d->run_group(d, r);
      }
    }
    if (close != NULL) {
      close->backend_next = NULL;
      d->run_close(d, close);
      return; /* d is gone */
    }

    /* More arrived while this group ran (dones may have submitted some):
     * requeue behind whatever else waits on the executor, or stop. If the
     * executor is stopping and refuses the post, drain here instead. */
    pthread_mutex_lock(&d->mu);
    int again = 0;
    if (d->head == NULL)
      d->scheduled = 0;
    else if (ordo__executor_post(d->ex, &d->task) != ORDO_OK)
      again = 1;
    pthread_mutex_unlock(&d->mu);
    if (!again)
      return; /* a reposted drain may already run elsewhere: touch nothing */
  }
}

int ordo__storage_drain_submit(ordo__storage_drain *d, ordo_storage_req *req) {
  pthread_mutex_lock(&d->mu);
  if (d->closing) {
    pthread_mutex_unlock(&d->mu);
    return ORDO_E_STATE;
  }
  if (d->tail != NULL)
    d->tail->backend_next = req;
  else
    d->head = req;
  d->tail = req;
  d->npending++;
  if (!d->scheduled) {
    /* Nothing scheduled means the list was empty: on failure it is again. */
    d->task.fn = drain;
    int rc = ordo__executor_post(d->ex, &d->task);
    if (rc != ORDO_OK) {
      d->head = d->tail = NULL;
      d->npending = 0;
      pthread_mutex_unlock(&d->mu);
      return rc;
    }
    d->scheduled = 1;
  }
  if (req->opcode == ORDO_STORAGE_CLOSE)
    d->closing = 1;
  if (d->wake_at > 0 && (d->npending >= d->wake_at || d->closing)) {
    d->wake_at = 0;
    uint64_t one = 1;
    /* An eventfd refuses a write only when its counter would overflow,
     * and then it is readable already: the wake-up is there either way. */
    ssize_t n = write(d->wake_fd, &one, sizeof one);
    (void)n;
  }
  pthread_mutex_unlock(&d->mu);
  return ORDO_OK;
}

ordo_storage_req *ordo__storage_drain_take(ordo__storage_drain *d, size_t min) {
  pthread_mutex_lock(&d->mu);
  size_t n = d->npending - (d->closing ? 1 : 0); /* the CLOSE is last */
  if (n == 0 || (n < min && !d->closing)) {
    d->wake_at = d->wake_fd >= 0 ? d->npending + (min > n ? min - n : 1) : 0;
    pthread_mutex_unlock(&d->mu);
    return NULL;
  }
  ordo_storage_req *list = d->head, **pp = &list;
  while (*pp != NULL && (*pp)->opcode != ORDO_STORAGE_CLOSE)
    pp = &(*pp)->backend_next;
  /* *pp: the CLOSE, or NULL. What is from it on stays. */
  d->head = *pp;
  if (d->head == NULL)
    d->tail = NULL;
  *pp = NULL;
  d->npending -= n;
  d->wake_at = 0;
  pthread_mutex_unlock(&d->mu);
  return list;
}

/*
 * services.c — a queue's services: made on first use, their policies
 * (what an INVALID does, an in-flight cap, a dep timeout), halt and
 * resume, their counters, and the idle ones dropped (queue_int.h).
 */
#include "base/base.h"
#include "queue/queue_int.h"
#include "runtime/runtime.h"

qservice *ordo__q_service_get(ordo_queue *q, const char *name) {
  qservice *s = ordo__map_get(&q->services, name);
  if (s != NULL)
    return s;
  if (ordo__map_reserve(&q->services, 1) ||
      ordo__q_reserve((void **)&q->svcs, &q->capsvcs, q->nsvcs + 1,
                      sizeof(*q->svcs)))
    return NULL;
  if ((s = calloc(1, sizeof(*s))) == NULL)
    return NULL;
  if ((s->name = ordo__strdup(name)) == NULL ||
      (s->root = ordo__q_node_alloc(&q->pool, "", 0, 1)) == NULL) {
    free(s->name);
    free(s);
    return NULL;
  }
  s->pool = &q->pool;
  s->flat.table = &ordo__q_table; /* big indexes on huge pages */
  ordo__map_put(&q->services, ordo__hash_str(s->name), s);
  q->svcs[q->nsvcs++] = s;
  return s;
}

/* s is no longer halted by the operator (resumed, or halted by a batch). */
static void operator_halt_clear(qservice *s) {
  free(s->halt_note);
  free(s->halt_text);
  s->halt_note = s->halt_text = NULL;
}

void ordo__q_service_free(qservice *s) {
  operator_halt_clear(s);
  ordo__q_locks_free(s);
  free(s->dt);
  free(s->heap);
  free(s->name);
  free(s);
}

int ordo_queue_get_policy(const ordo_queue *q, const char *service,
                          ordo_queue_service_policy *out) {
  const qservice *s;
  if (q == NULL || service == NULL || out == NULL)
    return ordo__set_last_error(ORDO_E_INVAL, "get_policy: NULL argument");
  if ((s = ordo__map_get(&q->services, service)) == NULL)
    return ordo__set_last_error(ORDO_E_NOT_FOUND, "no service '%s'", service);
  out->on_invalid = s->on_invalid;
  out->max_in_flight = s->max_in_flight;
  out->dep_timeout_ms = s->dep_timeout_ms;
  return ORDO_OK;
}

size_t ordo_queue_service_names(const ordo_queue *q, const char **out,
                                size_t max) {
  size_t i;
  if (q == NULL)
    return 0;
  for (i = 0; i < max && i < q->nsvcs; i++)
    out[i] = q->svcs[i]->name;
  return q->nsvcs;
}

int ordo_queue_service_status(const ordo_queue *q, const char *service,
                              ordo_queue_service_info *info) {
  qservice *s;
  if (q == NULL || service == NULL || info == NULL)
    return ordo__set_last_error(ORDO_E_INVAL, "service status: NULL argument");
  if ((s = ordo__map_get(&q->services, service)) == NULL)
    return ordo__set_last_error(ORDO_E_NOT_FOUND, "no service '%s'", service);
  memset(info, 0, sizeof(*info));
  info->queued = ordo__q_heap_ready(s) + s->held_ready;
  info->waiting = s->waiting;
  info->depth = info->queued + s->waiting;
  info->in_flight = s->in_flight;
  info->committed = s->committed;
  info->invalid = s->invalid;
  info->halted = s->halted;
  if (s->halt_by != NULL) {
    info->halt_batch = s->halt_by->id;
    info->halt_reason = s->halt_by->reason;
  } else if (s->halted) {
    info->halt_reason = s->halt_text;
    info->halt_note = s->halt_note;
  }
  return ORDO_OK;
}

int ordo_queue_set_policy(ordo_queue *q, const char *service,
                          ordo_queue_on_invalid on_invalid,
                          unsigned max_in_flight, uint64_t dep_timeout_ms) {
  qservice *s;
  if (q == NULL || service == NULL || service[0] == '\0' ||
      (on_invalid != ORDO_QUEUE_SKIP && on_invalid != ORDO_QUEUE_HALT))
    return ordo__set_last_error(ORDO_E_INVAL, "set_policy: bad argument");
  if ((s = ordo__q_service_get(q, service)) == NULL)
    return ordo__set_last_error(ORDO_E_NOMEM, NULL);
  if (dep_timeout_ms > 0 && !s->in_timed) {
    if (ordo__q_reserve((void **)&q->timed, &q->captimed, q->ntimed + 1,
                sizeof(*q->timed)))
      return ordo__set_last_error(ORDO_E_NOMEM, NULL);
    q->timed[q->ntimed++] = s;
    s->in_timed = 1;
  }
  s->on_invalid = on_invalid;
  s->max_in_flight = max_in_flight;
  s->dep_timeout_ms = dep_timeout_ms;
  return ORDO_OK;
}

int ordo_queue_resume(ordo_queue *q, const char *service) {
  qservice *s;
  if (q == NULL || service == NULL)
    return ordo__set_last_error(ORDO_E_INVAL, "resume: NULL argument");
  if ((s = ordo__map_get(&q->services, service)) == NULL)
    return ordo__set_last_error(ORDO_E_NOT_FOUND, "no service '%s'", service);
  if (!s->halted)
    return ordo__set_last_error(ORDO_E_STATE, "service '%s' is not halted",
                                service);
  s->halted = 0;
  s->halt_by = NULL;
  operator_halt_clear(s);
  return ORDO_OK;
}

int ordo_queue_halt(ordo_queue *q, const char *service, const char *reason) {
  static const char cause[] = "halted by the operator";
  qservice *s;
  char *note, *text;
  if (q == NULL || service == NULL)
    return ordo__set_last_error(ORDO_E_INVAL, "halt: NULL argument");
  if ((s = ordo__map_get(&q->services, service)) == NULL)
    return ordo__set_last_error(ORDO_E_NOT_FOUND, "no service '%s'", service);
  if (s->halted)
    return ordo__set_last_error(ORDO_E_STATE, "service '%s' is already "
                                "halted", service);
  if (reason == NULL)
    reason = "";
  note = ordo__strdup(reason);
  text = malloc(sizeof cause + 2 + strlen(reason));
  if (note == NULL || text == NULL) {
    free(note);
    free(text);
    return ordo__set_last_error(ORDO_E_NOMEM, NULL);
  }
  if (reason[0] != '\0')
    sprintf(text, "%s: %s", cause, reason);
  else
    memcpy(text, cause, sizeof cause);
  s->halted = 1;
  s->halt_by = NULL;
  s->halt_note = note;
  s->halt_text = text;
  return ORDO_OK;
}

int ordo_queue_halt_by(ordo_queue *q, const char *id) {
  qbatch *b = q != NULL && id != NULL ? ordo__q_batch_find(q, id) : NULL;
  if (b == NULL)
    return ordo__set_last_error(ORDO_E_NOT_FOUND, "halt: no batch '%s'",
                                id != NULL ? id : "(null)");
  if (b->state != ORDO_QUEUE_INVALID)
    return ordo__set_last_error(ORDO_E_STATE, "halt: %s is not INVALID", id);
  b->svc->halted = 1;
  b->svc->halt_by = b;
  operator_halt_clear(b->svc); /* the batch's cause replaces the operator's */
  return ORDO_OK;
}

void ordo_queue_service_touch(ordo_queue *q, const char *service,
                              uint64_t ms) {
  qservice *s = q != NULL && service != NULL
                    ? ordo__map_get(&q->services, service)
                    : NULL;
  if (s != NULL && ms > s->last_ms)
    s->last_ms = ms;
}

uint64_t ordo_queue_service_last(const ordo_queue *q, const char *service) {
  const qservice *s = q != NULL && service != NULL
                          ? ordo__map_get(&q->services, service)
                          : NULL;
  return s != NULL ? s->last_ms : 0;
}

size_t ordo_queue_drop_idle_services(ordo_queue *q, uint64_t before_ms) {
  size_t i, k = 0, dropped = 0;
  if (q == NULL)
    return 0;
  for (i = 0; i < q->nsvcs; i++) {
    qservice *s = q->svcs[i];
    /* Nothing of it in memory, default policy, no state but counters. */
    if (s->nbatches == 0 && s->unfinished == 0 && s->held_ready == 0 &&
        !s->halted && !s->in_ring && s->ndt == 0 && !s->in_timed &&
        s->on_invalid == ORDO_QUEUE_SKIP && s->max_in_flight == 0 &&
        s->dep_timeout_ms == 0 && s->last_ms < before_ms) {
      ordo__map_del(&q->services, ordo__map_slot(&q->services, s->name,
                                     ordo__hash_str(s->name)));
      ordo__q_service_free(s);
      dropped++;
      continue;
    }
    q->svcs[k++] = s;
  }
  q->nsvcs = k;
  if (dropped > 0)
    ordo__map_shrink(&q->services);
  return dropped;
}

int ordo_queue_add_counts(ordo_queue *q, const char *service,
                          size_t committed, size_t invalid) {
  qservice *s;
  if (q == NULL || service == NULL || service[0] == '\0')
    return ordo__set_last_error(ORDO_E_INVAL, "add_counts: bad argument");
  if ((s = ordo__q_service_get(q, service)) == NULL)
    return ordo__set_last_error(ORDO_E_NOMEM, NULL);
  s->committed += committed;
  s->invalid += invalid;
  q->committed += committed;
  q->invalid += invalid;
  return ORDO_OK;
}


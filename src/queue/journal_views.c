/*
 * journal_views.c — what the journal answers without changing anything:
 * items and payloads, UNKNOWN batches, statuses (from memory, or from disk
 * for a finished batch that left it), services and totals as JSON, and the
 * fuzzing entry points over replay and checkpoints (journal.c says how the
 * files divide the journal). Policies and resumes too, being per-service.
 */
#include "queue/journal_int.h"

int ordo_journal_item(ordo_journal *j, const char *id, ordo_queue_item *out) {
  int rc;
  if (j == NULL || id == NULL || out == NULL)
    return ordo__set_last_error(ORDO_E_INVAL, "item: NULL argument");
  pthread_mutex_lock(&j->mu);
  rc = ordo_queue_item_get(j->q, id, out);
  pthread_mutex_unlock(&j->mu);
  return rc;
}

int ordo_journal_item_with(ordo_journal *j, const char *id,
                           int (*fn)(const ordo_queue_item *it, void *ud),
                           void *ud) {
  ordo_queue_item it;
  int rc;
  if (j == NULL || id == NULL || fn == NULL)
    return ordo__set_last_error(ORDO_E_INVAL, "item: NULL argument");
  pthread_mutex_lock(&j->mu);
  rc = ordo_queue_item_get(j->q, id, &it);
  if (rc == ORDO_OK)
    rc = fn(&it, ud);
  pthread_mutex_unlock(&j->mu);
  return rc;
}

int ordo_journal_shrink(ordo_journal *j) {
  ordo_storage_req req;
  int rc;
  if (j == NULL)
    return ordo__set_last_error(ORDO_E_INVAL, "shrink: NULL journal");
  if (ordo__on_runtime_thread())
    return ordo__set_last_error(ORDO_E_WOULD_DEADLOCK, "journal shrink "
                                "blocks; not on a runtime thread");
  memset(&req, 0, sizeof req);
  req.opcode = ORDO_STORAGE_SHRINK;
  rc = ordo__j_storage_call(j->st, &req);
  ordo_storage_req_clear_output(&req);
  return rc;
}

static int payload_copy(const ordo_queue_item *it, void *ud) {
  jdisk *d = ud;
  if (it->payload == NULL || it->payload_len == 0)
    return ORDO_E_NOT_FOUND; /* finished and dropped: read the record */
  if ((d->payload = malloc(it->payload_len)) == NULL)
    return ordo__set_last_error(ORDO_E_NOMEM, NULL);
  memcpy(d->payload, it->payload, it->payload_len);
  d->payload_len = it->payload_len;
  return ORDO_OK;
}

int ordo_journal_payload(ordo_journal *j, const char *id,
                         unsigned char **payload, size_t *len) {
  jdisk d;
  int rc, flags;
  if (payload != NULL)
    *payload = NULL;
  if (len != NULL)
    *len = 0;
  if (j == NULL || id == NULL || payload == NULL || len == NULL)
    return ordo__set_last_error(ORDO_E_INVAL, "payload: NULL argument");
  memset(&d, 0, sizeof d);
  rc = ordo_journal_item_with(j, id, payload_copy, &d);
  if (rc == ORDO_OK) {
    *payload = d.payload;
    *len = d.payload_len;
    return ORDO_OK;
  }
  if (rc == ORDO_E_NOMEM)
    return rc;
  /* Not in memory, or without its payload: its enq record has it. */
  pthread_mutex_lock(&j->mu);
  rc = ordo__j_gone_wait(j);
  flags = ordo__idset_get(&j->gone_ids, id);
  pthread_mutex_unlock(&j->mu);
  if (rc != ORDO_OK)
    return rc;
  d.want_payload = 1;
  if ((rc = ordo__j_disk_lookup(j, id, flags < 0 ? 0 : flags, &d)) != ORDO_OK)
    return rc;
  *payload = d.payload;
  *len = d.payload_len;
  d.payload = NULL;
  ordo__j_jdisk_clear(&d);
  return ORDO_OK;
}

int ordo_journal_unknown(ordo_journal *j, char **out, size_t max, size_t *n,
                         size_t *total) {
  size_t i;
  if (j == NULL || n == NULL || (out == NULL && max > 0))
    return ordo__set_last_error(ORDO_E_INVAL, "unknown: NULL argument");
  size_t k;
  pthread_mutex_lock(&j->mu);
  for (i = 0, k = j->unknown_head; i < max && k < j->unknown_slots; k++) {
    if (!ordo__j_unknown_has(j, j->unknown[k]))
      continue; /* settled */
    if ((out[i] = ordo__strdup(j->unknown[k])) == NULL)
      break;
    i++;
  }
  *n = i;
  if (total != NULL)
    *total = j->nunknown;
  pthread_mutex_unlock(&j->mu);
  return i < max && i < j->nunknown ? ordo__set_last_error(ORDO_E_NOMEM, NULL)
                                    : ORDO_OK;
}

int ordo_journal_set_policy(ordo_journal *j, const char *service,
                            ordo_queue_on_invalid on_invalid,
                            unsigned max_in_flight, uint64_t dep_timeout_ms) {
  ordo_queue_service_policy cur;
  int rc;
  if (j == NULL || service == NULL)
    return ordo__set_last_error(ORDO_E_INVAL, "set_policy: NULL argument");
  pthread_mutex_lock(&j->mu);
  rc = ordo__j_journal_check(j);
  if (rc == ORDO_OK &&
      (ordo_queue_get_policy(j->q, service, &cur) != ORDO_OK ||
       cur.on_invalid != on_invalid || cur.max_in_flight != max_in_flight ||
       cur.dep_timeout_ms != dep_timeout_ms) &&
      (rc = ordo_queue_set_policy(j->q, service, on_invalid, max_in_flight,
                                  dep_timeout_ms)) == ORDO_OK) {
    json_t *ev = json_pack("{s:s, s:s, s:b, s:I}", "e", "policy", "service",
                           service, "halt", on_invalid == ORDO_QUEUE_HALT,
                           "max_in_flight", (json_int_t)max_in_flight);
    /* Only when set: a journal without dep timeouts reads as before. */
    if (ev != NULL && dep_timeout_ms > 0 &&
        json_object_set_new(ev, "dep_timeout_ms",
                            json_integer((json_int_t)dep_timeout_ms)) != 0) {
      json_decref(ev);
      ev = NULL;
    }
    rc = ordo__j_journal_note(j, ev);
  }
  pthread_mutex_unlock(&j->mu);
  return rc;
}

int ordo_journal_resume(ordo_journal *j, const char *service) {
  int rc;
  if (j == NULL || service == NULL)
    return ordo__set_last_error(ORDO_E_INVAL, "resume: NULL argument");
  pthread_mutex_lock(&j->mu);
  if ((rc = ordo__j_journal_check(j)) == ORDO_OK &&
      (rc = ordo_queue_resume(j->q, service)) == ORDO_OK)
    rc = ordo__j_journal_note(
        j, json_pack("{s:s, s:s}", "e", "resume", "service", service));
  pthread_mutex_unlock(&j->mu);
  return rc;
}

int ordo_journal_halt(ordo_journal *j, const char *service,
                      const char *reason) {
  json_t *ev;
  int rc;
  if (j == NULL || service == NULL)
    return ordo__set_last_error(ORDO_E_INVAL, "halt: NULL argument");
  /* The record first: a reason that is not UTF-8 is refused before the
   * halt is applied, not found out by a record that cannot be written. */
  if ((ev = json_pack("{s:s, s:s, s:s}", "e", "halt", "service", service,
                      "reason", reason != NULL ? reason : "")) == NULL)
    return ordo__set_last_error(ORDO_E_INVAL, "halt: the service or the "
                                "reason is not UTF-8 text");
  pthread_mutex_lock(&j->mu);
  if ((rc = ordo__j_journal_check(j)) == ORDO_OK &&
      (rc = ordo_queue_halt(j->q, service, reason)) == ORDO_OK) {
    rc = ordo__j_journal_note(j, ev); /* takes ev */
    ev = NULL;
  }
  pthread_mutex_unlock(&j->mu);
  json_decref(ev);
  return rc;
}

/* Under j->mu. */
int ordo__j_status_locked(ordo_journal *j, const char *id, ordo_queue_state *st,
                          const char **reason) {
  int rc = ordo_queue_batch_status(j->q, id, st, reason);
  if (rc == ORDO_OK && *st == ORDO_QUEUE_SUBMITTED &&
      ordo__j_unknown_has(j, id))
    *st = ORDO_QUEUE_UNKNOWN;
  return rc;
}

int ordo_journal_ledger_find(ordo_journal *j, const char *ledger_id,
                             char **id) {
  const char *qid = NULL;
  int rc;
  if (id != NULL)
    *id = NULL;
  if (j == NULL || ledger_id == NULL || id == NULL)
    return ordo__set_last_error(ORDO_E_INVAL, "ledger find: NULL argument");
  pthread_mutex_lock(&j->mu);
  rc = ordo_queue_ledger_find(j->q, ledger_id, &qid);
  if (rc == ORDO_OK && (*id = ordo__strdup(qid)) == NULL)
    rc = ordo__set_last_error(ORDO_E_NOMEM, NULL);
  pthread_mutex_unlock(&j->mu);
  return rc;
}

int ordo_journal_batch_status(ordo_journal *j, const char *id,
                              ordo_queue_state *state, uint64_t *seq,
                              char **reason) {
  ordo_queue_state st;
  const char *why = NULL;
  int rc;
  if (reason != NULL)
    *reason = NULL;
  if (j == NULL || id == NULL)
    return ordo__set_last_error(ORDO_E_INVAL, "status: NULL argument");
  pthread_mutex_lock(&j->mu);
  rc = ordo__j_status_locked(j, id, &st, &why);
  if (rc == ORDO_OK) {
    if (state != NULL)
      *state = st;
    if (seq != NULL)
      (void)ordo_queue_batch_seq(j->q, id, seq);
    if (reason != NULL && why != NULL && (*reason = ordo__strdup(why)) == NULL)
      rc = ordo__set_last_error(ORDO_E_NOMEM, NULL);
  } else {
    int flags, nf = rc;
    jdisk d = {0};
    if ((rc = ordo__j_gone_wait(j)) != ORDO_OK) {
      pthread_mutex_unlock(&j->mu);
      return rc;
    }
    flags = ordo__idset_get(&j->gone_ids, id);
    pthread_mutex_unlock(&j->mu);
    if (flags < 0)
      return nf; /* its message is set still: ordo__j_gone_wait set none */
    if ((rc = ordo__j_disk_lookup(j, id, flags, &d)) != ORDO_OK)
      return ordo_last_error();
    if (state != NULL)
      *state = d.state;
    if (seq != NULL)
      *seq = d.seq;
    if (reason != NULL) {
      *reason = d.reason;
      d.reason = NULL;
    }
    ordo__j_jdisk_clear(&d);
    return ORDO_OK;
  }
  pthread_mutex_unlock(&j->mu);
  return rc;
}

/* JSON text of o (taken), or NULL with the last error set. */
/* A copy of s, NULL for NULL; *nomem when the copy fails. */
static char *dup_or_null(const char *s, int *nomem) {
  char *c;
  if (s == NULL)
    return NULL;
  if ((c = ordo__strdup(s)) == NULL)
    *nomem = 1;
  return c;
}

void ordo_journal_batch_info_clear(ordo_journal_batch_info *b) {
  free(b->service);
  free(b->reason);
  free(b->ledger_id);
  free(b->explain);
  ordo_queue_blockers_free(b->blockers, b->nblockers);
  memset(b, 0, sizeof(*b));
}

int ordo_journal_get_batch(ordo_journal *j, const char *id,
                           ordo_journal_batch_info *out) {
  const char *why = NULL, *svc = NULL;
  ordo_queue_item it;
  int nomem = 0;
  if (out != NULL)
    memset(out, 0, sizeof(*out));
  if (j == NULL || id == NULL || out == NULL)
    return ordo__set_last_error(ORDO_E_INVAL, "status: NULL argument");
  pthread_mutex_lock(&j->mu);
  if (ordo__j_status_locked(j, id, &out->state, &why) != ORDO_OK) {
    int flags = -1, rc;
    jdisk d = {0};
    /* On ORDO_OK ordo__j_gone_wait sets no error: the status's stays. */
    if ((rc = ordo__j_gone_wait(j)) == ORDO_OK)
      flags = ordo__idset_get(&j->gone_ids, id);
    pthread_mutex_unlock(&j->mu);
    if (rc == ORDO_OK && flags < 0)
      rc = ordo_last_error(); /* ORDO_E_NOT_FOUND, set */
    if (rc != ORDO_OK || (rc = ordo__j_disk_lookup(j, id, flags, &d)) !=
                             ORDO_OK)
      return rc;
    out->state = d.state;
    out->seq = d.seq;
    out->enqueued_ms = d.t_enq;
    out->finished_ms = d.t_fin;
    /* The record's strings become the caller's. */
    out->service = d.service;
    out->reason = d.reason;
    out->ledger_id = d.ledger_id;
    d.service = d.reason = d.ledger_id = NULL;
    ordo__j_jdisk_clear(&d);
    if (out->service == NULL && (out->service = ordo__strdup("")) == NULL)
      return ordo__set_last_error(ORDO_E_NOMEM, NULL);
    return ORDO_OK;
  }
  (void)ordo_queue_batch_seq(j->q, id, &out->seq);
  (void)ordo_queue_batch_service(j->q, id, &svc);
  (void)ordo_queue_batch_times(j->q, id, &out->enqueued_ms, &out->finished_ms);
  out->service = dup_or_null(svc != NULL ? svc : "", &nomem);
  out->reason = dup_or_null(why, &nomem);
  if (ordo_queue_item_get(j->q, id, &it) == ORDO_OK)
    out->ledger_id = dup_or_null(it.ledger_id, &nomem);
  if (out->state == ORDO_QUEUE_WAITING) {
    out->explain = ordo_queue_explain(j->q, id); /* NULL: none, or memory */
    /* Under the same lock: the data says what the text says. */
    if (ordo_queue_blockers(j->q, id, &out->blockers, &out->nblockers) ==
        ORDO_E_NOMEM)
      nomem = 1;
  }
  pthread_mutex_unlock(&j->mu);
  if (nomem) {
    ordo_journal_batch_info_clear(out);
    return ordo__set_last_error(ORDO_E_NOMEM, NULL);
  }
  return ORDO_OK;
}

/* Under j->mu: UNKNOWN batches of one service (or all, svc NULL). */
static size_t unknown_count(const ordo_journal *j, const char *svc) {
  if (svc == NULL)
    return j->nunknown;
  return j->unknown_svc != NULL
             ? (size_t)json_integer_value(json_object_get(j->unknown_svc, svc))
             : 0;
}

void ordo_journal_service_info_clear(ordo_journal_service_info *s) {
  free(s->halt_batch);
  free(s->halt_reason);
  memset(s, 0, sizeof(*s));
}

/* Under j->mu: one service's counters into *out (memset first), as
 * ordo_journal_get_service and ordo_journal_list_services give them.
 * ORDO_E_NOT_FOUND, ORDO_E_NOMEM (then *out holds nothing to free). */
static int service_fill_locked(ordo_journal *j, const char *service,
                               ordo_journal_service_info *out) {
  ordo_queue_service_info in;
  int rc, nomem = 0;
  memset(out, 0, sizeof(*out));
  if ((rc = ordo_queue_service_status(j->q, service, &in)) != ORDO_OK)
    return rc;
  out->unknown = unknown_count(j, service);
  out->depth = in.depth;
  out->queued = in.queued;
  out->waiting = in.waiting;
  out->in_flight = in.in_flight - out->unknown;
  out->committed = in.committed;
  out->invalid = in.invalid;
  out->halted = in.halted;
  if (in.halted) {
    /* A batch's halt names it; the operator's has a reason alone. */
    out->halt_batch = dup_or_null(in.halt_batch, &nomem);
    out->halt_reason =
        dup_or_null(in.halt_reason != NULL ? in.halt_reason : "", &nomem);
  }
  if (nomem) {
    ordo_journal_service_info_clear(out);
    return ordo__set_last_error(ORDO_E_NOMEM, NULL);
  }
  return ORDO_OK;
}

int ordo_journal_get_service(ordo_journal *j, const char *service,
                             ordo_journal_service_info *out) {
  int rc;
  if (out != NULL)
    memset(out, 0, sizeof(*out));
  if (j == NULL || service == NULL || out == NULL)
    return ordo__set_last_error(ORDO_E_INVAL, "service status: NULL "
                                "argument");
  pthread_mutex_lock(&j->mu);
  rc = service_fill_locked(j, service, out);
  pthread_mutex_unlock(&j->mu);
  return rc;
}

void ordo_journal_service_rows_free(ordo_journal_service_row *rows,
                                    size_t n) {
  for (size_t i = 0; rows != NULL && i < n; i++)
    ORDO__FREE_ALL(rows[i].name, rows[i].halt_batch, rows[i].halt_reason);
  free(rows);
}

/* Under j->mu: row i of the list, for service name. */
static int service_row_locked(ordo_journal *j, const char *name,
                              ordo_journal_service_row *row) {
  ordo_journal_service_info in;
  int rc = service_fill_locked(j, name, &in);
  if (rc != ORDO_OK)
    return rc;
  if ((row->name = ordo__strdup(name)) == NULL) {
    ordo_journal_service_info_clear(&in);
    return ordo__set_last_error(ORDO_E_NOMEM, NULL);
  }
  row->depth = in.depth;
  row->queued = in.queued;
  row->waiting = in.waiting;
  row->in_flight = in.in_flight;
  row->unknown = in.unknown;
  row->committed = in.committed;
  row->invalid = in.invalid;
  row->halted = in.halted;
  row->halt_batch = in.halt_batch; /* the row's from here */
  row->halt_reason = in.halt_reason;
  return ORDO_OK;
}

int ordo_journal_get_service_row(ordo_journal *j, const char *service,
                                 ordo_journal_service_row *row) {
  int rc;
  if (row != NULL)
    memset(row, 0, sizeof(*row));
  if (j == NULL || service == NULL || row == NULL)
    return ordo__set_last_error(ORDO_E_INVAL, "service row: NULL argument");
  pthread_mutex_lock(&j->mu);
  rc = service_row_locked(j, service, row);
  pthread_mutex_unlock(&j->mu);
  return rc;
}

int ordo_journal_list_services(ordo_journal *j, ordo_journal_service_row **rows,
                               size_t *n) {
  const char **names = NULL;
  ordo_journal_service_row *v = NULL;
  size_t total, i;
  int rc = ORDO_OK;
  if (rows != NULL)
    *rows = NULL;
  if (n != NULL)
    *n = 0;
  if (j == NULL || rows == NULL || n == NULL)
    return ordo__set_last_error(ORDO_E_INVAL, "list services: NULL "
                                "argument");
  pthread_mutex_lock(&j->mu);
  total = ordo_queue_service_names(j->q, NULL, 0);
  if (total > 0 && ((names = calloc(total, sizeof(*names))) == NULL ||
                    (v = calloc(total, sizeof(*v))) == NULL))
    rc = ordo__set_last_error(ORDO_E_NOMEM, NULL);
  if (rc == ORDO_OK)
    (void)ordo_queue_service_names(j->q, names, total);
  /* Every name is one the queue has: the only failure is memory. */
  for (i = 0; rc == ORDO_OK && i < total; i++)
    rc = service_row_locked(j, names[i], &v[i]);
  pthread_mutex_unlock(&j->mu);
  free(names);
  if (rc != ORDO_OK) {
    ordo_journal_service_rows_free(v, total); /* calloc'd: unset rows NULL */
    return rc;
  }
  *rows = v;
  *n = total;
  return ORDO_OK;
}

size_t ordo_journal_service_names(ordo_journal *j, const char **out,
                                  size_t max) {
  size_t n;
  if (j == NULL)
    return 0;
  pthread_mutex_lock(&j->mu);
  n = ordo_queue_service_names(j->q, out, max);
  pthread_mutex_unlock(&j->mu);
  return n;
}

int ordo_journal_get_totals(ordo_journal *j, ordo_journal_totals *out) {
  ordo_queue_totals t;
  if (out != NULL)
    memset(out, 0, sizeof(*out));
  if (j == NULL || out == NULL)
    return ordo__set_last_error(ORDO_E_INVAL, "totals: NULL journal");
  pthread_mutex_lock(&j->mu);
  /* "retained" counts the sets: whole once read after an open (on a
   * runtime thread, which must not wait, as they are). */
  if (!j->gone_loaded && !ordo__on_runtime_thread())
    (void)ordo__j_gone_wait(j);
  ordo_queue_get_totals(j->q, &t);
  out->queued = t.queued;
  out->waiting = t.waiting;
  out->unknown = j->nunknown;
  out->in_flight = t.in_flight - j->nunknown;
  out->committed = t.committed;
  out->invalid = t.invalid;
  out->services = t.services;
  out->records = j->next_event - 1;
  out->queue_memory_bytes = t.memory_bytes + ordo__idset_bytes(&j->gone_ids) +
                            ordo__idset_bytes(&j->gone_lids);
  out->forgotten = j->forgotten;
  out->retained = j->gone_ids.n;
  out->expired = j->expired;
  out->id_segments = j->nsegs;
  out->checkpoints = j->checkpoints;
  out->taken_ahead = j->taken_ahead;
  out->services_dropped = j->services_dropped;
  out->latency_count = j->nlat;
  out->latency_p50_ms = ordo__j_lat_percentile(j, 0.50);
  out->latency_p99_ms = ordo__j_lat_percentile(j, 0.99);
  if ((out->failed = j->failed != ORDO_OK))
    snprintf(out->failed_message, sizeof out->failed_message, "%s",
             j->failed_message != NULL ? j->failed_message : "");
  pthread_mutex_unlock(&j->mu);
  return ORDO_OK;
}

int ordo__journal_replay_lines(const unsigned char *data, size_t len) {
  ordo_journal j;
  char **subs = NULL;
  size_t nsubs = 0, capsubs = 0, i, start = 0, line = 0;
  int rc;

  memset(&j, 0, sizeof(j));
  if ((rc = ordo_queue_new(NULL, &j.q)) != ORDO_OK)
    return rc;
  for (i = 0; rc == ORDO_OK && i <= len; i++) {
    ordo_storage_record r;
    if (i < len && data[i] != '\n')
      continue;
    line++;
    memset(&r, 0, sizeof(r));
    r.value.data = (unsigned char *)data + start;
    r.value.len = i - start;
    start = i + 1;
    if (r.value.len == 0)
      continue;
    if ((rc = ordo__j_replay_one(&j, &r, &subs, &nsubs, &capsubs)) != ORDO_OK)
      rc = ordo__set_last_error(rc, "journal event %zu: %s", line,
                                ordo_last_error_message());
  }
  ordo__j_strlist_free(&subs, &nsubs, &capsubs);
  ordo_queue_free(j.q);
  free(j.untagged);
  ordo__idlog_clear(&j.ids_log);
  ordo__idlog_clear(&j.lids_log);
  return rc;
}

int ordo__journal_checkpoint_parts(const unsigned char *data, size_t len) {
  ordo_journal j;
  ordo_storage_record *recs = NULL;
  char **subs = NULL;
  size_t nsubs = 0, capsubs = 0, n = 0, cap = 0, off = 0;
  uint64_t E = 0;
  uint32_t parts = 0;
  int rc;

  memset(&j, 0, sizeof(j));
  ordo__idset_init(&j.gone_ids);
  ordo__idset_init(&j.gone_lids);
  if ((rc = ordo_queue_new(NULL, &j.q)) != ORDO_OK)
    return rc;
  while (off + 2 <= len && rc == ORDO_OK) {
    size_t k = (size_t)data[off] << 8 | data[off + 1];
    ordo_storage_record *r;
    off += 2;
    if (k > len - off)
      k = len - off;
    if (n == cap) {
      size_t nc = cap ? cap * 2 : 8;
      ordo_storage_record *p = realloc(recs, nc * sizeof(*p));
      if (p == NULL) {
        rc = ORDO_E_NOMEM;
        break;
      }
      recs = p;
      cap = nc;
    }
    r = &recs[n];
    memset(r, 0, sizeof(*r));
    if ((r->name.data = malloc(JOURNAL_CK_NAME)) == NULL ||
        (r->value.data = malloc(k > 0 ? k : 1)) == NULL) {
      free(r->name.data);
      rc = ORDO_E_NOMEM;
      break;
    }
    ordo__j_ck_name(r->name.data, 1, (uint32_t)n);
    r->name.len = JOURNAL_CK_NAME;
    memcpy(r->value.data, data + off, k);
    r->value.len = k;
    n++;
    off += k;
  }
  if (rc == ORDO_OK)
    rc = ordo__j_ck_load(&j, recs, n, &subs, &nsubs, &capsubs, &E, &parts);
  ordo__j_records_free(recs, n);
  ordo__j_strlist_free(&subs, &nsubs, &capsubs);
  ordo_queue_free(j.q);
  ordo__idset_clear(&j.gone_ids);
  ordo__idset_clear(&j.gone_lids);
  free(j.untagged);
  ordo__idlog_clear(&j.ids_log);
  ordo__idlog_clear(&j.lids_log);
  return rc;
}

ordo_ctx *ordo_journal_ctx(ordo_journal *j) { return j->ctx; }

void ordo_journal_write_stats(ordo_journal *j, unsigned long long *records,
                              unsigned long long *commits) {
  pthread_mutex_lock(&j->mu);
  if (records != NULL)
    *records = j->records;
  pthread_mutex_unlock(&j->mu);
  /* Each count is 0 for the other backend's databases. */
  if (commits != NULL)
    *commits = ordo__storage_sqlite_commits(j->st) +
               ordo__storage_postgres_commits(j->st);
}

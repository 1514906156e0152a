/*
 * journal_replay.c — rebuilding the queue from the log: the replay at
 * open and the recovery from write failures (journal.c says how the files
 * divide the journal).
 */
#include "queue/journal_int.h"

/* ------------------------------------------------------------------------ */
/* Replay                                                                    */
/* ------------------------------------------------------------------------ */


/* Strings of a JSON array into a new char* array (pointers into arr). */
static int strings_of(json_t *arr, const char ***out, size_t *n) {
  size_t i;
  *out = NULL;
  *n = 0;
  if (arr == NULL)
    return ORDO_OK;
  if (!json_is_array(arr))
    return ORDO_E_QUEUE;
  if (json_array_size(arr) == 0)
    return ORDO_OK;
  if ((*out = calloc(json_array_size(arr), sizeof(**out))) == NULL)
    return ORDO_E_NOMEM;
  for (i = 0; i < json_array_size(arr); i++) {
    const char *s = json_string_value(json_array_get(arr, i));
    if (s == NULL) {
      free(*out);
      *out = NULL;
      return ORDO_E_QUEUE;
    }
    (*out)[i] = s;
  }
  *n = i;
  return ORDO_OK;
}

/* The batch of an enq record (its strings borrowed from ev; the reads,
 * writes and deps arrays malloc'd: ordo__j_enq_spec_free, which may be
 * called again; on failure nothing is left to free). */
int ordo__j_enq_spec_parse(json_t *ev, const unsigned char *payload,
                           size_t payload_len, ordo_queue_batch_spec *sp) {
  json_int_t seq = json_integer_value(json_object_get(ev, "seq"));
  int rc;

  memset(sp, 0, sizeof(*sp));
  sp->id = json_string_value(json_object_get(ev, "id"));
  sp->service = json_string_value(json_object_get(ev, "service"));
  if (sp->id == NULL || sp->service == NULL || seq <= 0)
    return ordo__set_last_error(ORDO_E_QUEUE, "enq without id, service or seq");
  sp->seq = (uint64_t)seq;
  if (json_is_integer(json_object_get(ev, "t")))
    sp->time_ms = (uint64_t)json_integer_value(json_object_get(ev, "t"));
  sp->payload = payload;
  sp->payload_len = payload_len;
  /* Absent in journals written before ledger ids: no ledger id. */
  if (json_object_get(ev, "ledger_id") != NULL &&
      (sp->ledger_id = json_string_value(json_object_get(ev, "ledger_id"))) ==
          NULL)
    return ordo__set_last_error(ORDO_E_QUEUE, "enq %s: ledger_id is not a "
                                "string", sp->id);
  if ((rc = strings_of(json_object_get(ev, "reads"), (const char ***)&sp->reads,
                       &sp->nreads)) ||
      (rc = strings_of(json_object_get(ev, "writes"),
                       (const char ***)&sp->writes, &sp->nwrites)) ||
      (rc = strings_of(json_object_get(ev, "deps"), (const char ***)&sp->deps,
                       &sp->ndeps))) {
    /* What was parsed goes: a caller frees nothing of a failed parse. */
    ordo__j_enq_spec_free(sp);
    return ordo__set_last_error(rc, "enq %s: bad reads, writes or deps",
                                sp->id);
  }
  return ORDO_OK;
}

void ordo__j_enq_spec_free(ordo_queue_batch_spec *sp) {
  free((void *)sp->reads);
  free((void *)sp->writes);
  free((void *)sp->deps);
  sp->reads = sp->writes = sp->deps = NULL;
  sp->nreads = sp->nwrites = sp->ndeps = 0;
}

static int replay_enq(ordo_journal *j, json_t *ev, const unsigned char *payload,
                      size_t payload_len) {
  ordo_queue_batch_spec sp;
  int rc = ordo__j_enq_spec_parse(ev, payload, payload_len, &sp);
  if (rc == ORDO_OK) {
    /* The digest from the record itself: it holds the whole content. */
    unsigned char dg[ORDO_QUEUE_DIGEST_BYTES];
    ordo__j_content_digest(&sp, dg);
    sp.digest = dg;
    if ((rc = ordo_queue_enqueue(j->q, &sp, NULL)) != ORDO_OK)
      rc = ordo__set_last_error(ORDO_E_QUEUE, "%s", ordo_last_error_message());
  }
  ordo__j_enq_spec_free(&sp);
  return rc;
}

static int replay_sub(ordo_journal *j, json_t *ev, char ***subs, size_t *nsubs,
                      size_t *capsubs) {
  json_t *ids = json_object_get(ev, "ids");
  char *own;
  size_t i;
  if (!json_is_array(ids))
    return ordo__set_last_error(ORDO_E_QUEUE, "sub without ids");
  for (i = 0; i < json_array_size(ids); i++) {
    const char *id = json_string_value(json_array_get(ids, i));
    if (id == NULL)
      return ordo__set_last_error(ORDO_E_QUEUE, "sub: an id is not a string");
    if (ordo_queue_take_id(j->q, id, NULL) != ORDO_OK)
      return ordo__set_last_error(ORDO_E_QUEUE, "%s",
                                  ordo_last_error_message());
    own = ordo__strdup(id);
    if (own == NULL || ordo__j_strlist_push(subs, nsubs, capsubs, own) != 0) {
      free(own);
      return ordo__set_last_error(ORDO_E_NOMEM, NULL);
    }
  }
  return ORDO_OK;
}

/* The end of batch id replayed, rc the queue's answer: a failure becomes
 * ORDO_E_QUEUE with the queue's message; else the time the record says it
 * ended ("t", when there) is noted for retention. */
static int replay_ended(ordo_journal *j, json_t *ev, const char *id, int rc) {
  json_t *t = json_object_get(ev, "t");
  if (rc != ORDO_OK)
    return ordo__set_last_error(ORDO_E_QUEUE, "%s", ordo_last_error_message());
  if (json_is_integer(t))
    ordo__j_note_finish(j, id, (uint64_t)json_integer_value(t));
  return ORDO_OK;
}

int ordo__j_replay_one(ordo_journal *j, const ordo_storage_record *r,
                       char ***subs, size_t *nsubs, size_t *capsubs) {
  const unsigned char *payload;
  size_t payload_len;
  json_error_t jerr;
  json_t *ev;
  const char *kind;
  int rc;

  ev = ordo__j_record_event(r, JSON_REJECT_DUPLICATES, &jerr, &payload,
                            &payload_len);
  if (!json_is_object(ev)) {
    json_decref(ev);
    return ordo__set_last_error(ORDO_E_QUEUE, "not a JSON object: %s",
                                jerr.text);
  }
  kind = json_string_value(json_object_get(ev, "e"));
  if (kind == NULL) {
    rc = ordo__set_last_error(ORDO_E_QUEUE, "no event kind");
  } else if (strcmp(kind, "enq") == 0) {
    rc = replay_enq(j, ev, payload, payload_len);
  } else if (strcmp(kind, "sub") == 0) {
    rc = replay_sub(j, ev, subs, nsubs, capsubs);
  } else if (strcmp(kind, "fin") == 0) {
    const char *id = json_string_value(json_object_get(ev, "id"));
    const char *st = json_string_value(json_object_get(ev, "state"));
    const char *why = json_string_value(json_object_get(ev, "reason"));
    ordo_queue_state out = st != NULL && strcmp(st, "COMMITTED") == 0
                               ? ORDO_QUEUE_COMMITTED
                               : ORDO_QUEUE_INVALID;
    if (id == NULL || st == NULL ||
        (out == ORDO_QUEUE_INVALID && strcmp(st, "INVALID") != 0))
      rc = ordo__set_last_error(ORDO_E_QUEUE, "fin without id or state");
    else if (json_is_true(json_object_get(ev, "expired")) &&
             out == ORDO_QUEUE_INVALID)
      /* A dep timeout: a WAITING batch ended, never sent. */
      rc = replay_ended(j, ev, id, ordo_queue_expire_id(j->q, id, why));
    else
      rc = replay_ended(j, ev, id, ordo_queue_finish(j->q, id, out, why));
  } else if (strcmp(kind, "cancel") == 0) {
    const char *id = json_string_value(json_object_get(ev, "id"));
    const char *why = json_string_value(json_object_get(ev, "reason"));
    if (id == NULL)
      rc = ordo__set_last_error(ORDO_E_QUEUE, "cancel without id");
    else
      rc = replay_ended(j, ev, id, ordo_queue_cancel(j->q, id, why));
  } else if (strcmp(kind, "cascade") == 0) {
    /* A batch its dep's end (replayed before this) has ended already: the
     * record only keeps its end on disk for when it leaves memory. */
    const char *id = json_string_value(json_object_get(ev, "id"));
    ordo_queue_state st;
    if (id == NULL || ordo_queue_batch_status(j->q, id, &st, NULL) != ORDO_OK ||
        st != ORDO_QUEUE_INVALID)
      rc = ordo__set_last_error(ORDO_E_QUEUE, "cascade of %s, which is not "
                                "INVALID", id != NULL ? id : "(no id)");
    else {
      rc = ORDO_OK;
      if (json_is_integer(json_object_get(ev, "t")))
        (void)ordo_queue_set_finish_time(
            j->q, id, (uint64_t)json_integer_value(json_object_get(ev, "t")));
    }
  } else if (strcmp(kind, "resume") == 0) {
    const char *svc = json_string_value(json_object_get(ev, "service"));
    if (svc == NULL || ordo_queue_resume(j->q, svc) != ORDO_OK)
      rc = ordo__set_last_error(ORDO_E_QUEUE, "resume of %s: %s",
                                svc != NULL ? svc : "(none)",
                                ordo_last_error_message());
    else
      rc = ORDO_OK;
  } else if (strcmp(kind, "halt") == 0) {
    const char *svc = json_string_value(json_object_get(ev, "service"));
    const char *why = json_string_value(json_object_get(ev, "reason"));
    if (svc == NULL || ordo_queue_halt(j->q, svc, why) != ORDO_OK)
      rc = ordo__set_last_error(ORDO_E_QUEUE, "halt of %s: %s",
                                svc != NULL ? svc : "(none)",
                                ordo_last_error_message());
    else
      rc = ORDO_OK;
  } else if (strcmp(kind, "policy") == 0) {
    const char *svc = json_string_value(json_object_get(ev, "service"));
    json_t *halt = json_object_get(ev, "halt");
    json_t *cap = json_object_get(ev, "max_in_flight");
    json_t *dt = json_object_get(ev, "dep_timeout_ms"); /* absent: none */
    if (svc == NULL || !json_is_boolean(halt) || !json_is_integer(cap) ||
        json_integer_value(cap) < 0 ||
        (dt != NULL && (!json_is_integer(dt) || json_integer_value(dt) < 0)) ||
        ordo_queue_set_policy(j->q, svc,
                              json_is_true(halt) ? ORDO_QUEUE_HALT
                                                 : ORDO_QUEUE_SKIP,
                              (unsigned)json_integer_value(cap),
                              dt != NULL ? (uint64_t)json_integer_value(dt)
                                         : 0) != ORDO_OK)
      rc = ordo__set_last_error(ORDO_E_QUEUE, "bad policy event");
    else
      rc = ORDO_OK;
  } else {
    rc = ordo__set_last_error(ORDO_E_QUEUE, "unknown event kind '%s'", kind);
  }
  /* A record of the log (not a redo) that is untagged, as ordo__j_jwrite_tag
   * decides: the prune's to delete. */
  if (rc == ORDO_OK && r->name.len == 8) {
    int fin;
    if (!ordo__j_event_tagged(kind, &fin) || json_object_get(ev, "id") == NULL)
      ordo__j_untagged_note(j, ordo__j_rd64(r->name.data));
  }
  json_decref(ev);
  return rc;
}

/* Batches taken and not finished before the restart: UNKNOWN, by seq. */
typedef struct unknown_ent {
  uint64_t seq;
  char *id;
} unknown_ent;

static int unknown_ent_cmp(const void *a, const void *b) {
  const unknown_ent *x = a, *y = b;
  return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Build the UNKNOWN set from the ids still SUBMITTED after the replay (they
 * are taken from subs[]). */
static int unknown_build(ordo_journal *j, char **subs, size_t nsubs) {
  unknown_ent *v = calloc(nsubs > 0 ? nsubs : 1, sizeof(*v));
  size_t n = 0, i;
  int rc = ORDO_OK;

  if (v == NULL || (j->unknown_set = json_object()) == NULL ||
      (j->unknown_svc = json_object()) == NULL) {
    free(v);
    return ordo__set_last_error(ORDO_E_NOMEM, NULL);
  }
  for (i = 0; i < nsubs; i++) {
    ordo_queue_state st;
    if (subs[i] != NULL &&
        ordo_queue_batch_status(j->q, subs[i], &st, NULL) == ORDO_OK &&
        st == ORDO_QUEUE_SUBMITTED &&
        !json_object_get(j->unknown_set, subs[i])) {
      (void)ordo_queue_batch_seq(j->q, subs[i], &v[n].seq);
      v[n].id = subs[i];
      subs[i] = NULL;
      if (json_object_set_new(j->unknown_set, v[n].id, json_true()) != 0)
        rc = ORDO_E_NOMEM;
      n++;
    }
  }
  qsort(v, n, sizeof(*v), unknown_ent_cmp);
  if (n > 0 && (j->unknown = calloc(n, sizeof(*j->unknown))) == NULL)
    rc = ORDO_E_NOMEM;
  for (i = 0; i < n; i++) {
    if (rc == ORDO_OK)
      rc = ordo__j_unknown_count_add(j, v[i].id, 1);
    if (j->unknown != NULL)
      j->unknown[i] = v[i].id;
    else
      free(v[i].id);
  }
  free(v);
  j->unknown_slots = j->unknown != NULL ? n : 0;
  j->nunknown = j->unknown_slots;
  if (rc != ORDO_OK) {
    ordo__j_unknown_clear(j);
    return ordo__set_last_error(rc, NULL);
  }
  return ORDO_OK;
}

/* Read every record of category (q: which ones, or NULL) in name order
 * into req, at once: ORDO_OK, or the failure ("journal: reading WHAT")
 * with req cleared. */
static int replay_read(ordo_journal *j, ordo_storage_req *req,
                       const char *category, const ordo_storage_query *q,
                       const char *what) {
  int rc;
  ordo__j_scan_req(req, category, q, 0,
                   ORDO_STORAGE_REQ_NO_TAGS | ORDO_STORAGE_REQ_BY_NAME);
  if ((rc = ordo__j_storage_call(j->st, req)) != ORDO_OK) {
    rc = ordo__set_last_error(rc, "journal: reading %s: %s", what,
                              req->message != NULL ? req->message
                                                   : ordo_strerror(rc));
    ordo_storage_req_clear_output(req);
  }
  return rc;
}

int ordo__j_journal_replay(ordo_journal *j) {
  ordo_storage_req req;
  ordo_storage_query tailq;
  ordo_storage_buf from;
  unsigned char fromname[8];
  char **subs = NULL;
  size_t nsubs = 0, capsubs = 0, i;
  uint64_t last = 0, E = 0;
  uint32_t parts = 0;
  int rc;

  /* The newest checkpoint, then the records from its E on. */
  if ((rc = replay_read(j, &req, JOURNAL_CK_CATEGORY, NULL,
                        "the checkpoint")) != ORDO_OK)
    return rc;
  rc = ordo__j_ck_load(j, req.results, req.nresults, &subs, &nsubs, &capsubs,
                       &E, &parts);
  ordo_storage_req_clear_output(&req);
  if (rc != ORDO_OK) {
    ordo__j_strlist_free(&subs, &nsubs, &capsubs);
    return rc;
  }
  j->ck_event = E;
  j->ck_parts = parts;
  last = E > 0 ? E - 1 : 0;
  ordo__j_name_leaf(&tailq, &from, fromname, ORDO_SQ_NAME_GTE, E);
  if ((rc = replay_read(j, &req, JOURNAL_CATEGORY, E > 0 ? &tailq : NULL,
                        "the log")) != ORDO_OK) {
    ordo__j_strlist_free(&subs, &nsubs, &capsubs); /* the checkpoint's */
    return rc;
  }
  /* Records to replay: their enqueues ask the forgotten sets. */
  if (!j->gone_loaded && (req.nresults > 0 || E == 0) &&
      (rc = ordo__j_gone_load_sync(j)) != ORDO_OK) {
    ordo_storage_req_clear_output(&req);
    ordo__j_strlist_free(&subs, &nsubs, &capsubs);
    return rc;
  }
  for (i = 0; i < req.nresults; i++) {
    const ordo_storage_record *r = &req.results[i];
    uint64_t ev;
    if (r->name.len != 8 || (ev = ordo__j_rd64(r->name.data)) <= last) {
      rc = ordo__set_last_error(ORDO_E_QUEUE, "journal record %zu: bad or "
                                "out-of-order event number", i + 1);
      break;
    }
    last = ev;
    if ((rc = ordo__j_replay_one(j, r, &subs, &nsubs, &capsubs)) != ORDO_OK) {
      rc = ordo__set_last_error(rc, "journal event %llu: %s",
                                (unsigned long long)ev,
                                ordo_last_error_message());
      break;
    }
  }
  ordo_storage_req_clear_output(&req);
  j->next_event = last + 1; /* E when only the checkpoint was there */
  j->records = 0;
  /* What is still SUBMITTED after the replay is UNKNOWN until settled. */
  if (rc == ORDO_OK)
    rc = unknown_build(j, subs, nsubs);
  ordo__j_strlist_free(&subs, &nsubs, &capsubs);
  return rc;
}

/* ------------------------------------------------------------------------ */
/* Write failures                                                            */
/* ------------------------------------------------------------------------ */

/*
 * A record that fails (disk full, IO error: the storage answers its write
 * with an error) leaves memory ahead of disk: an enqueue's batch is held,
 * a take's batches are SUBMITTED, a verdict is applied. The rule that
 * brings the two together again, without a restart:
 *   1. The journal fails: every change is refused with ORDO_E_STORAGE
 *      (reads go on). Records are chained writes (storage.h), so none
 *      after the failed one reaches the disk, even if the process dies
 *      now: the log on disk stays a prefix of the events, and everything
 *      acknowledged is in it. (Should one still have, it is refused to
 *      its caller and deleted in 2.)
 *   2. Once no record is out, and neither a record failed nor an enqueue
 *      was refused for quiet_ms (500 ms; ORDO_JOURNAL_QUIET_MS, read at
 *      open, sets it), the next change starts a recovery (and, off the
 *      runtime threads, waits for it). The quiet period keeps a caller's
 *      own order: one that sends enqueues ahead of their answers (ordo
 *      submit keeps 256 in flight) has every one after a failed one
 *      refused too, until it notices and stops, so its order has no hole
 *      that a later run would fill out of place. (A caller that retries
 *      enqueues more often than that keeps it refusing.) The recovery
 *      reads the log back, deletes the
 *      records from the first failed one on, and rebuilds the queue by
 *      replaying the rest, exactly as a reopen does: failed enqueues are
 *      gone, the batches of a failed take are QUEUED again (its durable op
 *      failed, so they were never sent), and event numbers go on after the
 *      last record kept. UNKNOWN batches stay UNKNOWN.
 *   3. Lost notes (verdicts, resumes, policies: facts already applied and
 *      acknowledged) are applied to the rebuilt queue again and written
 *      anew, in their order; one that no longer applies is dropped.
 *   4. The journal takes changes again. If the disk still fails, the next
 *      write fails and this repeats; the recovery itself only reads,
 *      unless it has records to delete.
 * A recovery that fails is tried again by the next change after a pause
 * (50 ms, doubling up to 2 s). A replaced queue is kept until close, since
 * item pointers handed out stay valid until then.
 */

typedef struct jrecovery {
  ordo_storage_req req; /* first: the BATCH of three SCANs (the checkpoint,
                           the log after it, the segments of the forgotten
                           sets), then the BATCH of deletes */
  ordo_journal *j;
  ordo_storage_req scans[3];
  ordo_storage_buf from;
  unsigned char fromname[8];
  ordo_storage_query tailq;
  ordo_storage_record *recs; /* the log after the checkpoint */
  size_t nrecs;
  ordo_storage_record *ckrecs; /* the checkpoint's records */
  size_t nckrecs;
  ordo_storage_record *segrecs; /* the segments */
  size_t nsegrecs;
  ordo_storage_req *dels;
  size_t ndels;
} jrecovery;

static void recovery_free(jrecovery *r) {
  ordo__j_records_free(r->recs, r->nrecs);
  ordo__j_records_free(r->segrecs, r->nsegrecs);
  ordo__j_records_free(r->ckrecs, r->nckrecs);
  for (size_t i = 0; i < 3; i++)
    ordo_storage_req_clear_output(&r->scans[i]);
  for (size_t i = 0; i < r->ndels; i++)
    ordo_storage_req_clear_output(&r->dels[i]);
  free(r->dels);
  ordo_storage_req_clear_output(&r->req);
  free(r);
}

/* Under j->mu: a recovery ended without repairing the journal. */
static void recovery_failed(ordo_journal *j, jrecovery *r) {
  if (r != NULL)
    recovery_free(r);
  j->recovering = 0;
  j->recover_pause_ms =
      j->recover_pause_ms == 0 ? 50 : j->recover_pause_ms * 2;
  if (j->recover_pause_ms > 2000)
    j->recover_pause_ms = 2000;
  j->retry_ms = ordo__wall_ms() + j->recover_pause_ms;
  pthread_cond_broadcast(&j->idle_cv);
}

/* The removals of old applied to s again and logged in log (out of
 * memory: those left stay in s, as ids refused a while longer). */
static void gone_redo_dels(ordo__idset *s, ordo__idlog *log,
                           const ordo__idlog *old) {
  for (size_t i = 0; i < old->n; i++)
    if ((old->v[i] & ORDO__IDLOG_DEL) &&
        (ordo__idlog_append(log, &old->v[i], 1) != 0 ||
         ordo__idset_apply(s, &old->v[i], 1) != 0))
      return;
}

/* Under j->mu: the log is r->recs less what is at or after fail_event
 * (deleted): rebuild memory from it, then redo the lost notes. */
static void recovery_finish(ordo_journal *j, jrecovery *r) {
  ordo__idset gone_ids, gone_lids;
  ordo__idlog ids_log = j->ids_log, lids_log = j->lids_log;
  int was_loaded = j->gone_loaded;
  unsigned long long lat[256], nlat = j->nlat;
  ordo_queue *old = j->q, *nq = NULL, **olds;
  char **subs = NULL, **redo;
  size_t nsubs = 0, capsubs = 0, nredo, i;
  uint64_t last = 0;
  int rc = ORDO_E_NOMEM;

  memcpy(lat, j->lat, sizeof lat);
  olds = realloc(j->old_q, (j->nold_q + 1) * sizeof(*olds));
  if (olds != NULL)
    j->old_q = olds;
  if (olds == NULL || (rc = ordo_queue_new(&j->qopt, &nq)) != ORDO_OK) {
    recovery_failed(j, r);
    return;
  }
  j->q = nq;
  memset(j->lat, 0, sizeof j->lat);
  j->nlat = 0;
  /* The new queue has every batch of the log: nothing is forgotten in it
   * yet, and what the replay finishes is durable. The sets are read
   * again from the segments (as at an open with records to replay); the
   * old ones and their logs are kept aside until the replay has worked. */
  gone_ids = j->gone_ids;
  gone_lids = j->gone_lids;
  ordo__idset_init(&j->gone_ids);
  ordo__idset_init(&j->gone_lids);
  memcpy(j->gone_ids.key, gone_ids.key, sizeof gone_ids.key);
  memcpy(j->gone_lids.key, gone_lids.key, sizeof gone_lids.key);
  memset(&j->ids_log, 0, sizeof j->ids_log);
  memset(&j->lids_log, 0, sizeof j->lids_log);
  j->gone_loaded = 0;
  ordo__j_strlist_free(&j->evict, &j->nevict, &j->capevict);
  ordo__j_strlist_free(&j->fin_pending, &j->nfin_pending, &j->capfin_pending);
  j->replaying = 1;
  {
    uint64_t E = 0;
    uint32_t parts = 0;
    rc = ordo__j_ck_load(j, r->ckrecs, r->nckrecs, &subs, &nsubs, &capsubs, &E,
                         &parts);
    last = E > 0 ? E - 1 : 0;
    if (rc == ORDO_OK && !j->gone_loaded)
      rc = ordo__j_gone_build(j, r->segrecs, r->nsegrecs);
  }
  for (i = 0; i < r->nrecs && rc == ORDO_OK; i++) {
    uint64_t ev = ordo__j_rd64(r->recs[i].name.data);
    if (ev >= j->fail_event)
      continue; /* deleted */
    rc = ordo__j_replay_one(j, &r->recs[i], &subs, &nsubs, &capsubs);
    last = ev;
  }
  ordo__j_strlist_free(&subs, &nsubs, &capsubs);
  j->replaying = 0;
  if (rc != ORDO_OK) {
    /* A log a reopen would refuse too: stay failed. */
    ordo__idset_clear(&j->gone_ids);
    ordo__idset_clear(&j->gone_lids);
    j->gone_ids = gone_ids;
    j->gone_lids = gone_lids;
    ordo__idlog_clear(&j->ids_log);
    ordo__idlog_clear(&j->lids_log);
    j->ids_log = ids_log;
    j->lids_log = lids_log;
    j->gone_loaded = was_loaded;
    ordo__j_strlist_free(&j->evict, &j->nevict, &j->capevict);
    j->q = old;
    ordo_queue_free(nq);
    memcpy(j->lat, lat, sizeof lat);
    j->nlat = nlat;
    recovery_failed(j, r);
    return;
  }
  ordo__idset_clear(&gone_ids);
  ordo__idset_clear(&gone_lids);
  /* What retention removed since the checkpoint is not in the log any
   * more, so the replay brings none of it back; the segments still have
   * it: remove it again (the rest of the old logs the replay made
   * anew). */
  gone_redo_dels(&j->gone_ids, &j->ids_log, &ids_log);
  gone_redo_dels(&j->gone_lids, &j->lids_log, &lids_log);
  ordo__idlog_clear(&ids_log);
  ordo__idlog_clear(&lids_log);
  j->old_q[j->nold_q++] = old;
  ordo__j_ahead_drop(j); /* taken from the old queue: its op failed */
  j->next_event = last + 1;
  /* Some tracked records may be gone with the failed ones: scan. */
  ordo__j_untagged_drop(j);
  j->failed = ORDO_OK;
  free(j->failed_message);
  j->failed_message = NULL;
  j->fail_event = 0;
  j->recovering = 0;
  j->recover_pause_ms = 0;
  j->retry_ms = 0;
  recovery_free(r);

  redo = j->redo;
  nredo = j->nredo;
  j->redo = NULL;
  j->nredo = j->capredo = 0;
  for (i = 0; i < nredo; i++) {
    ordo_storage_record rec;
    memset(&rec, 0, sizeof rec);
    rec.value.data = (unsigned char *)redo[i];
    rec.value.len = strlen(redo[i]);
    subs = NULL;
    nsubs = capsubs = 0;
    if (j->failed != ORDO_OK) {
      /* an earlier redo failed at once: keep the rest for the next time */
      jwrite keep;
      memset(&keep, 0, sizeof keep);
      keep.note = 1;
      keep.value = rec.value.data;
      keep.value_len = rec.value.len;
      ordo__j_redo_add(j, &keep);
    } else if (ordo__j_replay_one(j, &rec, &subs, &nsubs, &capsubs) ==
               ORDO_OK) {
      json_t *ev = json_loads(redo[i], 0, NULL);
      const char *id = json_string_value(json_object_get(ev, "id"));
      char *own = id != NULL ? ordo__strdup(id) : NULL;
      (void)ordo__j_journal_note(j, ev);
      ordo__j_fin_flush(j, (const char *const *)&own, own != NULL ? 1 : 0);
      free(own);
    }
    ordo__j_strlist_free(&subs, &nsubs, &capsubs);
    free(redo[i]);
  }
  free(redo);
  ordo__j_journal_evict(j);
  pthread_cond_broadcast(&j->idle_cv);
}

static void recovery_deleted(ordo_storage_req *req) {
  jrecovery *r = (jrecovery *)req;
  ordo_journal *j = r->j;
  ordo_storage_req_clear_output(req); /* a failure's message */
  pthread_mutex_lock(&j->mu);
  if (req->status == ORDO_OK)
    recovery_finish(j, r);
  else
    recovery_failed(j, r);
  pthread_mutex_unlock(&j->mu);
}

static void recovery_scanned(ordo_storage_req *req) {
  jrecovery *r = (jrecovery *)req;
  ordo_journal *j = r->j;
  size_t i, k;

  pthread_mutex_lock(&j->mu);
  if (req->status != ORDO_OK) {
    recovery_failed(j, r);
    pthread_mutex_unlock(&j->mu);
    return;
  }
  r->ckrecs = ordo__j_take_results(&r->scans[0], &r->nckrecs);
  r->recs = ordo__j_take_results(&r->scans[1], &r->nrecs);
  r->segrecs = ordo__j_take_results(&r->scans[2], &r->nsegrecs);
  ordo_storage_req_clear_output(req);
  for (i = 0; i < r->nrecs; i++) {
    if (r->recs[i].name.len != 8) {
      recovery_failed(j, r); /* a reopen would refuse it too */
      pthread_mutex_unlock(&j->mu);
      return;
    }
    if (ordo__j_rd64(r->recs[i].name.data) >= j->fail_event)
      r->ndels++;
  }
  if (r->ndels == 0) {
    recovery_finish(j, r);
    pthread_mutex_unlock(&j->mu);
    return;
  }
  if ((r->dels = calloc(r->ndels, sizeof(*r->dels))) == NULL) {
    r->ndels = 0;
    recovery_failed(j, r);
    pthread_mutex_unlock(&j->mu);
    return;
  }
  for (i = 0, k = 0; i < r->nrecs; i++)
    if (ordo__j_rd64(r->recs[i].name.data) >= j->fail_event)
      ordo__j_delete_req(&r->dels[k++], &r->recs[i]);
  if (ordo__j_submit_batch(j, &r->req, r->dels, r->ndels, recovery_deleted) !=
      ORDO_OK)
    recovery_failed(j, r);
  pthread_mutex_unlock(&j->mu);
}

/* Under j->mu: read the log back (after every record already out). */
void ordo__j_start_recovery(ordo_journal *j) {
  jrecovery *r = calloc(1, sizeof(*r));
  if (r == NULL) {
    recovery_failed(j, NULL);
    return;
  }
  r->j = j;
  ordo__j_name_leaf(&r->tailq, &r->from, r->fromname, ORDO_SQ_NAME_GTE,
                    j->ck_event);
  ordo__j_scan_req(&r->scans[0], JOURNAL_CK_CATEGORY, NULL, 0,
                   ORDO_STORAGE_REQ_NO_TAGS | ORDO_STORAGE_REQ_BY_NAME);
  ordo__j_scan_req(&r->scans[1], JOURNAL_CATEGORY, &r->tailq, 0,
                   ORDO_STORAGE_REQ_NO_TAGS | ORDO_STORAGE_REQ_BY_NAME);
  ordo__j_scan_req(&r->scans[2], JOURNAL_SEG_CATEGORY, NULL, 0,
                   ORDO_STORAGE_REQ_NO_TAGS | ORDO_STORAGE_REQ_BY_NAME);
  r->req.opcode = ORDO_STORAGE_BATCH;
  r->req.batch = r->scans;
  r->req.nbatch = 3;
  r->req.done = recovery_scanned;
  r->req.flags = ORDO_STORAGE_REQ_CHAIN_RESET; /* every record is back */
  j->recovering = 1;
  if (j->st->backend->submit(j->st, &r->req) != ORDO_OK) {
    free(r);
    recovery_failed(j, NULL);
  }
}

/* Not on a runtime thread, before the storage closes: let the records out
 * complete and, if the journal failed, recover it (if the disk lets it),
 * so that records after the failed one are not left to be replayed. */
void ordo__j_recovery_before_close(ordo_journal *j) {
  pthread_mutex_lock(&j->mu);
  j->closing = 1; /* a prune or an expiry stops at its next page */
  while (j->recovering || j->outstanding > 0 || j->pruning || j->expiring ||
         j->gone_loading)
    pthread_cond_wait(&j->idle_cv, &j->mu);
  if (j->failed != ORDO_OK) {
    ordo__j_start_recovery(j);
    while (j->recovering)
      pthread_cond_wait(&j->idle_cv, &j->mu);
  }
  pthread_mutex_unlock(&j->mu);
}

/*
 * journal.c — the durable queue: the scheduler of queue.c behind one mutex,
 * with every change written as an event record through the storage
 * interface, and replayed on open. The contract is in queue.h ("The durable
 * journal"); this file is its mechanics.
 *
 * Records: category "ev", name the 8-byte big-endian event number (so the
 * unique index only appends), value the event's JSON, then for "enq" a NUL
 * and the raw payload. Every record is submitted under j->mu, so the storage
 * FIFO sees the events in the order they changed the queue; the SQLite
 * backend group-commits whatever queues up while it writes.
 *
 * Ops that wait for a record (enqueue, take) have a join stage that parks
 * until the record's done callback has run. Either may come first: the
 * phase word says who was first (JW_INIT -> JW_PARKED by the stage, or
 * JW_INIT -> JW_STORED by done), and the second one continues the op.
 *
 * The files: journal.c (this one: small helpers, writing records,
 * forgetting finished batches), journal_ck.c (checkpoints, the forgotten-id
 * segments, reading a checkpoint back), journal_gc.c (the prune below a
 * checkpoint, retention), journal_replay.c (replay, recovery from write
 * failures), journal_api.c (open, close) and journal_enqueue.c (the rest of
 * the public calls); journal_int.h has what they share.
 *
 * Lock order: j->mu only. It is never held while an op is resumed or a
 * storage request is completed; the storage backend's submit is called under
 * it (submit only queues).
 */
#include "queue/journal_int.h"

/* ------------------------------------------------------------------------ */
/* Small helpers                                                             */
/* ------------------------------------------------------------------------ */

void ordo__j_jwrite_free(void *p) {
  jwrite *w = p;
  if (w == NULL)
    return;
  ORDO__FREE_ALL(w->value, w->message, w->release_id, w->tag_id, w->subtags,
                 w->ck_names);
  ordo__idlog_clear(&w->ck_ids);
  ordo__idlog_clear(&w->ck_lids);
  for (size_t i = 0; i < w->nsubs; i++) {
    ordo_storage_req_clear_output(&w->subs[i]);
    free(w->values[i]);
  }
  free(w->subs);
  free(w->values);
  free(w->names);
  for (size_t i = 0; i < w->nrelease; i++)
    free(w->release_ids[i]);
  free(w->release_ids);
  json_decref(w->result);
  free(w);
}

void ordo__j_be64(unsigned char out[8], uint64_t v) {
  for (int i = 7; i >= 0; i--, v >>= 8)
    out[i] = (unsigned char)v;
}

uint64_t ordo__j_rd64(const unsigned char in[8]) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++)
    v = v << 8 | in[i];
  return v;
}

static unsigned lat_bucket(uint64_t v) {
  unsigned e = 0;
  if (v < 4)
    return (unsigned)v;
  while ((v >> e) > 1)
    e++;
  return e * 4 + (unsigned)((v >> (e - 2)) & 3);
}

/* The smallest latency of a bucket. */
static uint64_t lat_floor(unsigned b) {
  unsigned e = b / 4;
  if (b < 4)
    return b;
  return ((uint64_t)1 << e) | ((uint64_t)(b & 3) << (e - 2));
}

/* Under j->mu: id finished at t (Unix ms). */
void ordo__j_note_finish(ordo_journal *j, const char *id, uint64_t t) {
  uint64_t enq = 0;
  (void)ordo_queue_set_finish_time(j->q, id, t);
  if (ordo_queue_batch_times(j->q, id, &enq, NULL) == ORDO_OK && enq != 0 &&
      t >= enq) {
    unsigned b = lat_bucket(t - enq);
    j->lat[b < 256 ? b : 255]++;
    j->nlat++;
  }
}

uint64_t ordo__j_lat_percentile(const ordo_journal *j, double p) {
  unsigned long long want =
      (unsigned long long)(p * (double)j->nlat + 0.999999);
  unsigned long long seen = 0;
  if (j->nlat == 0)
    return 0;
  if (want == 0)
    want = 1;
  for (unsigned b = 0; b < 256; b++) {
    seen += j->lat[b];
    if (seen >= want)
      return lat_floor(b);
  }
  return lat_floor(255);
}


/* Under j->mu, before any change that is journaled. A failed journal
 * refuses changes until a recovery has brought memory back to what is on
 * disk (see "Write failures"). One is started here when none is running,
 * no write is still out and the pause after a failed one is over; a
 * caller that may block (not a runtime thread) waits for it, so that a
 * write made after the fault cleared goes through. */
int ordo__j_journal_check_as(ordo_journal *j, int enqueue) {
  int block = !ordo__on_runtime_thread();
  uint64_t now;
  if (j->failed == ORDO_OK)
    return ORDO_OK;
  if (block)
    while (j->failed != ORDO_OK && (j->recovering || j->outstanding > 0))
      pthread_cond_wait(&j->idle_cv, &j->mu);
  now = ordo__wall_ms();
  if (j->failed != ORDO_OK && !j->recovering && j->outstanding == 0 &&
      now >= j->quiet_until && now >= j->retry_ms) {
    ordo__j_start_recovery(j);
    while (block && j->recovering)
      pthread_cond_wait(&j->idle_cv, &j->mu);
  }
  if (j->failed == ORDO_OK)
    return ORDO_OK;
  if (enqueue)
    j->quiet_until = now + j->quiet_ms; /* a pipeline still runs */
  return ordo__set_last_error(
      ORDO_E_STORAGE, "journal failed: %s%s",
      j->failed_message != NULL ? j->failed_message : "write error",
      j->recovering || j->outstanding > 0
          ? " (recovering; try again)"
          : " (it takes writes again once the disk does; retry)");
}

int ordo__j_journal_check(ordo_journal *j) {
  return ordo__j_journal_check_as(j, 0);
}

/* Under j->mu: the first failure sticks (its message); fail_event is the
 * first event number that is not to count, ev or earlier. */
static void journal_fail_at(ordo_journal *j, int status, const char *msg,
                            uint64_t ev) {
  if (j->fail_event == 0 || ev < j->fail_event)
    j->fail_event = ev;
  j->quiet_until = ordo__wall_ms() + j->quiet_ms;
  if (j->failed != ORDO_OK)
    return;
  j->failed = status != ORDO_OK ? status : ORDO_E_STORAGE;
  j->failed_message = ordo__strdup(msg != NULL ? msg : ordo_strerror(status));
}

/* Under j->mu: memory changed, and its record (event next_event) will not
 * be written. */
void ordo__j_journal_fail(ordo_journal *j, int status, const char *msg) {
  journal_fail_at(j, status, msg, j->next_event);
}

int ordo__j_unknown_has(const ordo_journal *j, const char *id) {
  return j->unknown_set != NULL && json_object_get(j->unknown_set, id) != NULL;
}

void ordo__j_unknown_clear(ordo_journal *j) {
  for (size_t i = 0; i < j->unknown_slots; i++)
    free(j->unknown[i]);
  free(j->unknown);
  j->unknown = NULL;
  j->unknown_head = j->unknown_slots = j->nunknown = 0;
  json_decref(j->unknown_set);
  json_decref(j->unknown_svc);
  j->unknown_set = j->unknown_svc = NULL;
}

/* Add delta to the UNKNOWN count of id's service; ORDO_E_NOMEM. */
int ordo__j_unknown_count_add(ordo_journal *j, const char *id, int delta) {
  const char *svc = NULL;
  json_t *c;
  if (ordo_queue_batch_service(j->q, id, &svc) != ORDO_OK)
    return ORDO_OK;
  if ((c = json_object_get(j->unknown_svc, svc)) != NULL)
    return json_integer_set(c, json_integer_value(c) + delta) == 0
               ? ORDO_OK
               : ORDO_E_NOMEM;
  return json_object_set_new(j->unknown_svc, svc, json_integer(delta)) == 0
             ? ORDO_OK
             : ORDO_E_NOMEM;
}

/* Settle id if it is UNKNOWN; returns whether it was. */
int ordo__j_unknown_drop(ordo_journal *j, const char *id) {
  if (!ordo__j_unknown_has(j, id))
    return 0;
  (void)ordo__j_unknown_count_add(j, id,
                                  -1); /* the service counts it: no alloc */
  json_object_del(j->unknown_set, id);
  if (--j->nunknown == 0) {
    ordo__j_unknown_clear(j);
    return 1;
  }
  while (j->unknown_head < j->unknown_slots &&
         !ordo__j_unknown_has(j, j->unknown[j->unknown_head]))
    j->unknown_head++;
  return 1;
}

/* A blocking wait for one storage request, for open and close (which are
 * documented not to run on runtime threads). */
typedef struct jlatch {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int done;
} jlatch;

static void latch_done(ordo_storage_req *req) {
  jlatch *l = req->userdata;
  pthread_mutex_lock(&l->mu);
  l->done = 1;
  pthread_cond_signal(&l->cv);
  pthread_mutex_unlock(&l->mu);
}

int ordo__j_storage_call(ordo_storage *st, ordo_storage_req *req) {
  jlatch l = {.done = 0};
  int rc;
  if (pthread_mutex_init(&l.mu, NULL) != 0 || pthread_cond_init(&l.cv, NULL))
    abort();
  req->done = latch_done;
  req->userdata = &l;
  rc = st->backend->submit(st, req);
  if (rc == ORDO_OK) {
    pthread_mutex_lock(&l.mu);
    while (!l.done)
      pthread_cond_wait(&l.cv, &l.mu);
    pthread_mutex_unlock(&l.mu);
    rc = req->status;
  }
  pthread_cond_destroy(&l.cv);
  pthread_mutex_destroy(&l.mu);
  return rc;
}

/* ---- requests over the records --------------------------------------- */

/* A record's event: the JSON before its NUL (parsed with jansson's flags;
 * NULL if it is not JSON, err may be NULL) and, after the NUL, the
 * payload (*payload NULL and *payload_len 0 when there is none; both may
 * be NULL). */
json_t *ordo__j_record_event(const ordo_storage_record *r, size_t flags,
                             json_error_t *err, const unsigned char **payload,
                             size_t *payload_len) {
  const unsigned char *v = r->value.data, *nul;
  size_t tl = r->value.len;
  nul = v != NULL ? memchr(v, '\0', tl) : NULL;
  if (nul != NULL)
    tl = (size_t)(nul - v);
  if (payload != NULL)
    *payload = nul != NULL ? nul + 1 : NULL;
  if (payload_len != NULL)
    *payload_len = nul != NULL ? r->value.len - tl - 1 : 0;
  return json_loadb((const char *)v, tl, flags, err);
}

/* q: a leaf on the record's name (op ORDO_SQ_NAME_GTE or _LT) against
 * event ev, its value in buf (8 bytes) through v; a later
 * ordo__j_be64(buf, …) moves it. */
void ordo__j_name_leaf(ordo_storage_query *q, ordo_storage_buf *v,
                       unsigned char buf[8], ordo_storage_qop op, uint64_t ev) {
  memset(q, 0, sizeof(*q));
  ordo__j_be64(buf, ev);
  v->data = buf;
  v->len = 8;
  q->op = op;
  q->values = v;
  q->nvalues = 1;
}

/* req becomes a SCAN of category (a string constant) with query q (may be
 * NULL), limit (0: none) and flags; done and userdata are the caller's. */
void ordo__j_scan_req(ordo_storage_req *req, const char *category,
                      const ordo_storage_query *q, unsigned long long limit,
                      unsigned flags) {
  memset(req, 0, sizeof(*req));
  req->opcode = ORDO_STORAGE_SCAN;
  req->rec.category.data = (unsigned char *)category;
  req->rec.category.len = strlen(category);
  req->query = q;
  req->limit = limit;
  req->flags = flags;
}

/* A SCAN's results, taken from req (which is then cleared): the caller's
 * to clear and free. */
ordo_storage_record *ordo__j_take_results(ordo_storage_req *req, size_t *n) {
  ordo_storage_record *r = req->results;
  *n = req->nresults;
  req->results = NULL;
  req->nresults = 0;
  ordo_storage_req_clear_output(req);
  return r;
}

/* Clears the n records of recs, then frees the array (NULL: none). */
void ordo__j_records_free(ordo_storage_record *recs, size_t n) {
  for (size_t i = 0; i < n; i++)
    ordo_storage_record_clear(&recs[i]);
  free(recs);
}

/* d becomes the DELETE of record r (its category and name borrowed). */
void ordo__j_delete_req(ordo_storage_req *d, const ordo_storage_record *r) {
  d->opcode = ORDO_STORAGE_DELETE;
  d->rec.category = r->category;
  d->rec.name = r->name;
}

/* Under j->mu: req becomes one BATCH of subs[0..n) (one transaction) with
 * done, submitted. ORDO_OK, or the backend's refusal. */
int ordo__j_submit_batch(ordo_journal *j, ordo_storage_req *req,
                         ordo_storage_req *subs, size_t n,
                         void (*done)(ordo_storage_req *)) {
  memset(req, 0, sizeof(*req));
  req->opcode = ORDO_STORAGE_BATCH;
  req->batch = subs;
  req->nbatch = n;
  req->done = done;
  return j->st->backend->submit(j->st, req);
}

/* ------------------------------------------------------------------------ */
/* Writing records                                                           */
/* ------------------------------------------------------------------------ */

/* The join: whichever of stage and done comes second continues the op. */
static int join_stage(ordo_op *op, void *state) {
  jwrite *w = state;
  (void)op;
  if (atomic_exchange(&w->phase, JW_PARKED) == JW_INIT)
    return ORDO__STAGE_ASYNC; /* done will resume */
  return ORDO_OK;
}

static int report_stage(ordo_op *op, void *state) {
  jwrite *w = state;
  json_t *o;
  if (w->status != ORDO_OK) {
    ordo_op_set_message(op, "%s", w->message != NULL
                                      ? w->message
                                      : ordo_strerror(w->status));
    return w->status;
  }
  if (w->result != NULL) {
    o = w->result;
    w->result = NULL;
  } else if (w->release_id != NULL)
    o = json_pack("{s:s, s:I}", "id", w->release_id, "seq",
                  (json_int_t)w->seq);
  else
    o = json_pack("{s:I}", "taken", (json_int_t)w->ntaken);
  return ordo__op_set_result_json(op, o);
}

/* Append s (taken: the list owns it from now) to a list of strings. 0, or
 * -1 when out of memory (s is then still the caller's). */
int ordo__j_strlist_push(char ***v, size_t *n, size_t *cap, char *s) {
  if (*n == *cap) {
    size_t nc = *cap ? *cap * 2 : 64;
    char **p = realloc(*v, nc * sizeof(*p));
    if (p == NULL)
      return -1;
    *v = p;
    *cap = nc;
  }
  (*v)[(*n)++] = s;
  return 0;
}

void ordo__j_strlist_free(char ***v, size_t *n, size_t *cap) {
  for (size_t i = 0; i < *n; i++)
    free((*v)[i]);
  free(*v);
  *v = NULL;
  *n = *cap = 0;
}

/* The event kinds whose record names one batch by "id" and is tagged with
 * it, so that the batch's records can be found on disk once it has left
 * memory; and those of them that finish it. */
int ordo__j_event_tagged(const char *kind, int *finishes) {
  *finishes = kind != NULL && (strcmp(kind, "fin") == 0 ||
                               strcmp(kind, "cancel") == 0 ||
                               strcmp(kind, "cascade") == 0);
  return kind != NULL && (*finishes || strcmp(kind, "enq") == 0);
}

/* Tag w's single record with ev's batch id, if its kind is tagged.
 * ORDO_OK or ORDO_E_NOMEM. */
int ordo__j_jwrite_tag(jwrite *w, json_t *ev) {
  const char *id = json_string_value(json_object_get(ev, "id"));
  int fin;
  if (!ordo__j_event_tagged(json_string_value(json_object_get(ev, "e")),
                            &fin) ||
      id == NULL)
    return ORDO_OK;
  if ((w->tag_id = ordo__strdup(id)) == NULL)
    return ORDO_E_NOMEM;
  w->evict = fin;
  w->tag.name.data = (unsigned char *)JOURNAL_ID_TAG;
  w->tag.name.len = strlen(JOURNAL_ID_TAG);
  w->tag.value.data = (unsigned char *)w->tag_id;
  w->tag.value.len = strlen(w->tag_id);
  w->tag.plaintext = 1;
  w->req.rec.tags = &w->tag;
  w->req.rec.ntags = 1;
  return ORDO_OK;
}

/* Settle w: record the outcome and continue its op if its stage parked,
 * else free it (no op), and a take ahead in its transaction with it. The
 * last touch of w. */
void ordo__j_jwrite_settle(jwrite *w, int status, const char *msg) {
  if (w->ahead != NULL) {
    /* The take's record was in this write's transaction: same outcome. */
    ordo__j_jwrite_settle(w->ahead, status, msg);
    w->ahead = NULL;
  }
  w->status = status;
  if (status != ORDO_OK && msg != NULL && w->message == NULL)
    w->message = ordo__strdup(msg);
  if (w->op == NULL) {
    ordo__j_jwrite_free(w);
    return;
  }
  if (atomic_exchange(&w->phase, JW_STORED) == JW_PARKED)
    ordo__op_resume(w->op, ORDO_OK);
}

/* Under j->mu: keep a lost note's JSON to apply and write again after a
 * recovery. Out of memory loses it (the verdict is asked again after a
 * restart: the batch is UNKNOWN then). */
void ordo__j_redo_add(ordo_journal *j, const jwrite *w) {
  char *t;
  if (!w->note || w->value == NULL)
    return;
  if (j->nredo == j->capredo) {
    size_t nc = j->capredo ? j->capredo * 2 : 8;
    char **p = realloc(j->redo, nc * sizeof(*p));
    if (p == NULL)
      return;
    j->redo = p;
    j->capredo = nc;
  }
  if ((t = malloc(w->value_len + 1)) == NULL)
    return;
  memcpy(t, w->value, w->value_len);
  t[w->value_len] = '\0';
  j->redo[j->nredo++] = t;
}

/* Under j->mu, in a record's done: after a failure, the last record out
 * starts the recovery. */
static void write_failure_done(ordo_journal *j, jwrite *w, int *status,
                               char **msg) {
  /* its first event: a BATCH's first ADD's; a barrier writes none */
  /* (a checkpoint: the first event after it, E) */
  uint64_t ev = w->ck_parts > 0 ? w->ck_event
                : w->nsubs > 0  ? ordo__j_rd64(w->names[0])
                                : ordo__j_rd64(w->name);
  j->outstanding--;
  if (w->barrier) {
    if (j->outstanding == 0)
      pthread_cond_broadcast(&j->idle_cv);
    return; /* its failure is not the journal's */
  }
  if (*status != ORDO_OK && j->failed != ORDO_OK) {
    /* Most likely refused because of the first failure (its chain): say
     * what that was. */
    free(*msg);
    *msg = ordo__strdup(j->failed_message != NULL ? j->failed_message
                                             : "an earlier journal write "
                                               "failed");
  }
  if (*status == ORDO_OK && j->failed != ORDO_OK && ev >= j->fail_event) {
    /* Durable, but after a record that is not: not acknowledged, and
     * deleted by the recovery, so that the log stays a prefix. */
    *status = ORDO_E_STORAGE;
    free(*msg);
    *msg = ordo__strdup(j->failed_message != NULL ? j->failed_message
                                             : "an earlier journal write "
                                               "failed");
  }
  if (*status != ORDO_OK) {
    journal_fail_at(j, *status, *msg, ev);
    ordo__j_redo_add(j, w);
  }
  if (j->outstanding == 0) /* ordo__j_journal_check starts the recovery */
    pthread_cond_broadcast(
        &j->idle_cv); /* close and ordo__j_journal_check wait */
}

/* Under j->mu: stop tracking what is written before now; a scan finds
 * those records. */
void ordo__j_untagged_drop(ordo_journal *j) {
  j->nuntagged = 0;
  j->track_from = j->next_event;
  j->unt_gen++;
}

/* Under j->mu: the untagged record ev is durable; the prune deletes it
 * by name (out of memory, or out of order: the list is dropped, and the
 * next prune scans for them instead). */
void ordo__j_untagged_note(ordo_journal *j, uint64_t ev) {
  if (ev < j->track_from)
    return; /* a scan finds it */
  if (j->nuntagged > 0 && ev <= j->untagged[j->nuntagged - 1]) {
    ordo__j_untagged_drop(j);
    return;
  }
  if (j->nuntagged == j->capuntagged) {
    size_t nc = j->capuntagged ? j->capuntagged * 2 : 256;
    uint64_t *v = realloc(j->untagged, nc * sizeof(*v));
    if (v == NULL) {
      ordo__j_untagged_drop(j);
      return;
    }
    j->untagged = v;
    j->capuntagged = nc;
  }
  j->untagged[j->nuntagged++] = ev;
}

void ordo__j_write_done(ordo_storage_req *req) {
  jwrite *w = (jwrite *)req; /* req is the first member */
  ordo_journal *j = w->j;
  int status = req->status;
  char *msg = req->message;

  req->message = NULL;
  ordo_storage_req_clear_output(req);
  pthread_mutex_lock(&j->mu);
  write_failure_done(j, w, &status, &msg);
  if (w->barrier) {
    /* Only an order: what it waited for failed if the journal did. */
    if (status == ORDO_OK && j->failed != ORDO_OK) {
      status = ORDO_E_STORAGE;
      free(msg);
      msg = ordo__strdup(j->failed_message != NULL ? j->failed_message
                                              : "journal failed");
    }
  } else if (status != ORDO_OK)
    ordo__j_journal_fail(j, status, msg);
  else if (w->release_id != NULL &&
           ordo_queue_release(j->q, w->release_id) != ORDO_OK)
    status = ORDO_E_QUEUE; /* impossible: only this write releases it */
  else
    /* A batch cancelled before its record was durable is no longer held
     * back by anything: releasing it changes nothing. */
    for (size_t i = 0; i < w->nrelease; i++)
      (void)ordo_queue_release(j->q, w->release_ids[i]);
  if (status == ORDO_OK && w->evict && w->tag_id != NULL &&
      ordo__j_strlist_push(&j->evict, &j->nevict, &j->capevict, w->tag_id) == 0)
    w->tag_id = NULL; /* the list's now */
  if (status == ORDO_OK && w->ahead != NULL) {
    ordo__j_untagged_note(j, w->ahead_event); /* its "sub" record */
    /* Under j->mu, so that the taker cannot go away meanwhile. */
    if (j->ahead_ready != NULL)
      j->ahead_ready(j->ahead_ud);
  }
  if (status == ORDO_OK && !w->barrier && w->nsubs == 0 &&
      w->ck_parts == 0 && w->req.opcode == ORDO_STORAGE_ADD &&
      w->req.rec.ntags == 0)
    ordo__j_untagged_note(j, ordo__j_rd64(w->name));
  if (w->ck_parts > 0) {
    j->ck_pending = 0;
    ordo__j_seg_written(j, w, status == ORDO_OK);
    if (status == ORDO_OK) {
      j->ck_event = w->ck_event;
      j->ck_parts = w->ck_parts;
      j->checkpoints++;
      ordo__j_prune_start(j);
    }
  }
  pthread_mutex_unlock(&j->mu);
  ordo__j_jwrite_settle(w, status, msg);
  free(msg);
}

/*
 * Under j->mu: write one event record. The value is the JSON of ev, then,
 * when payload_len > 0, a NUL and the payload. On failure w is settled with
 * the error (and freed if it has no op) and the error returned.
 */
/* Under j->mu: a record that finishes a batch (fin, cancel, cascade)
 * names its ledger id, or null when it has none, so that retention can
 * free the ledger id from that record alone (see "retention"). Out of
 * memory: the record goes without, and retention reads the enq record. */
void ordo__j_ev_ledger_id(ordo_journal *j, json_t *ev) {
  const char *id = json_string_value(json_object_get(ev, "id"));
  ordo_queue_item it;
  int fin;
  if (id == NULL || json_object_get(ev, "ledger_id") != NULL ||
      !ordo__j_event_tagged(json_string_value(json_object_get(ev, "e")),
                            &fin) ||
      !fin)
    return;
  (void)json_object_set_new(
      ev, "ledger_id",
      ordo_queue_item_get(j->q, id, &it) == ORDO_OK && it.ledger_id != NULL
          ? json_string(it.ledger_id)
          : json_null());
}

int ordo__j_journal_write(ordo_journal *j, jwrite *w, json_t *ev,
                          const void *payload, size_t payload_len) {
  char *text;
  size_t tl;
  int rc;

  ordo__j_ev_ledger_id(j, ev);
  text = json_dumps(ev, JSON_COMPACT);
  if (text == NULL) {
    ordo__j_jwrite_settle(w, ORDO_E_NOMEM, "journal: out of memory");
    return ORDO_E_NOMEM;
  }
  tl = strlen(text);
  w->value_len = tl + (payload_len > 0 ? 1 + payload_len : 0);
  if ((w->value = malloc(w->value_len + 1)) == NULL) {
    free(text);
    ordo__j_jwrite_settle(w, ORDO_E_NOMEM, "journal: out of memory");
    return ORDO_E_NOMEM;
  }
  memcpy(w->value, text, tl);
  free(text);
  if (payload_len > 0) {
    w->value[tl] = '\0';
    memcpy(w->value + tl + 1, payload, payload_len);
  }
  w->j = j;
  ordo__j_be64(w->name, j->next_event);
  w->req.opcode = ORDO_STORAGE_ADD;
  w->req.rec.category.data = (unsigned char *)JOURNAL_CATEGORY;
  w->req.rec.category.len = strlen(JOURNAL_CATEGORY);
  w->req.rec.name.data = w->name;
  w->req.rec.name.len = sizeof(w->name);
  w->req.rec.value.data = w->value;
  w->req.rec.value.len = w->value_len;
  w->req.done = ordo__j_write_done;
  w->req.flags = ORDO_STORAGE_REQ_CHAINED; /* the log stays a prefix */
  if (ordo__j_jwrite_tag(w, ev) != ORDO_OK) {
    ordo__j_journal_fail(j, ORDO_E_NOMEM, "journal: out of memory");
    ordo__j_redo_add(j, w);
    ordo__j_jwrite_settle(w, ORDO_E_STORAGE, j->failed_message);
    return ORDO_E_STORAGE;
  }
  rc = j->st->backend->submit(j->st, &w->req);
  if (rc != ORDO_OK) {
    ordo__j_journal_fail(j, rc, "the storage backend refused a journal write");
    ordo__j_redo_add(j, w);
    ordo__j_jwrite_settle(w, ORDO_E_STORAGE, j->failed_message);
    return ORDO_E_STORAGE;
  }
  j->outstanding++;
  j->next_event++;
  j->records++;
  return ORDO_OK;
}

/* Under j->mu: a record nobody waits for (fin, resume, policy). */
int ordo__j_journal_note(ordo_journal *j, json_t *ev) {
  jwrite *w = calloc(1, sizeof(*w));
  int rc;
  if (w == NULL || ev == NULL) {
    free(w);
    json_decref(ev);
    ordo__j_journal_fail(j, ORDO_E_NOMEM, "journal: out of memory");
    return ordo__set_last_error(ORDO_E_STORAGE, "journal: out of memory");
  }
  w->note = 1;
  rc = ordo__j_journal_write(j, w, ev, NULL, 0);
  json_decref(ev);
  return rc;
}

/* A new op that joins w (state, freed with the op), admitted now. NULL on
 * allocation failure. The op is returned already finished if admission was
 * refused: check ordo_op_status. */
ordo_op *ordo__j_join_op(ordo_journal *j, jwrite *w) {
  ordo_op *op = ordo__op_new(j->ctx, w, ordo__j_jwrite_free);
  if (op == NULL)
    return NULL;
  w->op = op;
  if (ordo__op_add_stage(op, ORDO_CLASS_CHEAP, join_stage) ||
      ordo__op_add_stage(op, ORDO_CLASS_CHEAP, report_stage))
    return ordo__op_reject(op, ORDO_E_NOMEM);
  return ordo__op_start(op);
}

/* ------------------------------------------------------------------------ */
/* Forgetting finished batches                                               */
/* ------------------------------------------------------------------------ */

/*
 * A finished batch leaves memory once every record that finishes it is
 * durable, so that a service running for months holds its unfinished
 * batches, not its history. Its records stay in the log, tagged with its
 * id: a status asked later (ordo_journal_batch_status, _batch_json), or an
 * enqueue of the same id, reads them back from disk (ordo__j_disk_lookup). What
 * stays in memory is 8 bytes in gone_ids (its id hashed, and whether it
 * ended INVALID: what a later batch's dep on it needs, and what refuses
 * its id again) and, if it had one, in gone_lids.
 *
 * When: the queue's on_finish hook files every batch that finishes,
 * cascades included; ordo__j_fin_flush writes a "cascade" record for those no
 * caller's record names; a finishing record's done moves its batch to the
 * evict list; ordo__j_journal_evict hands the list to ordo_queue_forget. It
 * runs where no item pointer of a finished batch is in use: at open (after the
 * replay, which files every batch it finishes as durable), after a
 * recovery, and at the start of ordo_journal_take (the submitter, which
 * holds the items of a take, is the only caller of take and is done with
 * its earlier items by then). A journal opened with keep_payloads (ordo
 * verify, which reads the payloads of committed batches) forgets nothing.
 * Batches journaled before records were tagged (seq < tagged_seq) stay.
 */

/* Under j->mu: id (and its ledger id, if any) into the forgotten sets,
 * logged for the next segment. ORDO_OK or ORDO_E_NOMEM (the id may be in
 * and its ledger id not: the batch then stays in memory, and a retry puts
 * them again). */
int ordo__j_gone_put(ordo_journal *j, const char *id, const char *ledger_id,
                     int invalid) {
  if (ordo__idset_put_logged(&j->gone_ids, &j->ids_log, id, invalid ? 1 : 0) !=
          0 ||
      (ledger_id != NULL &&
       ordo__idset_put_logged(&j->gone_lids, &j->lids_log, ledger_id, 0) != 0))
    return ORDO_E_NOMEM;
  return ORDO_OK;
}

ordo_queue_state ordo__j_hook_forgotten_state(void *ud, const char *id) {
  ordo_journal *j = ud;
  int f = ordo__idset_get(&j->gone_ids, id);
  return f < 0 ? ORDO_QUEUE_QUEUED
               : (f & 1) ? ORDO_QUEUE_INVALID : ORDO_QUEUE_COMMITTED;
}

int ordo__j_hook_forgotten_ledger_id(void *ud, const char *ledger_id) {
  ordo_journal *j = ud;
  return ordo__idset_get(&j->gone_lids, ledger_id) >= 0;
}

void ordo__j_hook_on_finish(void *ud, const char *id, ordo_queue_state st,
                            const char *reason) {
  ordo_journal *j = ud;
  char *c = ordo__strdup(id);
  (void)st;
  (void)reason;
  /* Out of memory: the batch stays in memory, which is only memory. */
  if (c != NULL &&
      (j->replaying
           ? ordo__j_strlist_push(&j->evict, &j->nevict, &j->capevict, c)
           : ordo__j_strlist_push(&j->fin_pending, &j->nfin_pending,
                                  &j->capfin_pending, c)) != 0)
    free(c);
}

/* Under j->mu, after a queue call that may have finished batches: a
 * "cascade" record for each one it finished that no record of the
 * caller's names (direct[0..n)), so that its end is on disk by its id. */
void ordo__j_fin_flush(ordo_journal *j, const char *const *direct, size_t n) {
  uint64_t t = 0;
  for (size_t i = 0; i < j->nfin_pending; i++) {
    char *id = j->fin_pending[i];
    size_t k;
    for (k = 0; k < n && strcmp(direct[k], id) != 0; k++)
      ;
    if (k == n && j->failed == ORDO_OK) {
      ordo_queue_state st;
      const char *why = NULL;
      if (t == 0)
        t = ordo__wall_ms();
      (void)ordo_queue_batch_status(j->q, id, &st, &why);
      (void)ordo_queue_set_finish_time(j->q, id, t);
      (void)ordo__j_journal_note(
          j, json_pack("{s:s, s:s, s:s, s:I}", "e", "cascade", "id", id,
                       "reason", why != NULL ? why : "a dep is invalid", "t",
                       (json_int_t)t));
    }
    free(id);
  }
  j->nfin_pending = 0;
}

/* Under j->mu: let the batches of the evict list go (see above). */
void ordo__j_journal_evict(ordo_journal *j) {
  const char **ids;
  unsigned char *kept;
  size_t n = j->nevict, i, k = 0, nf = 0;

  if (n == 0)
    return;
  if (j->qopt.keep_payloads) {
    ordo__j_strlist_free(&j->evict, &j->nevict, &j->capevict);
    return;
  }
  ids = malloc(n * sizeof(*ids));
  kept = malloc(n);
  if (ids == NULL || kept == NULL) {
    free(ids);
    free(kept);
    return; /* next time */
  }
  /* The candidates go into the sets first: once forgotten, the queue asks
   * the sets. One that stays in memory after all is found there first. */
  for (i = 0; i < n; i++) {
    char *id = j->evict[i];
    ordo_queue_state st;
    ordo_queue_item it;
    uint64_t seq = 0;
    if (ordo_queue_batch_status(j->q, id, &st, NULL) != ORDO_OK ||
        (st != ORDO_QUEUE_COMMITTED && st != ORDO_QUEUE_INVALID) ||
        ordo_queue_batch_seq(j->q, id, &seq) != ORDO_OK ||
        seq < j->tagged_seq) {
      free(id); /* gone already, or its records cannot be found by id */
      continue;
    }
    if (ordo__j_gone_put(
            j, id,
            ordo_queue_item_get(j->q, id, &it) == ORDO_OK ? it.ledger_id : NULL,
            st == ORDO_QUEUE_INVALID) != ORDO_OK) {
      j->evict[k] = id; /* out of memory: next time */
      ids[k++] = id;
      continue;
    }
    j->evict[k] = id;
    ids[k++] = id;
  }
  ordo_queue_forget(j->q, ids, k, kept, &nf);
  n = k;
  for (i = 0, k = 0; i < n; i++) {
    if (kept[i])
      j->evict[k++] = j->evict[i];
    else
      free(j->evict[i]);
  }
  j->nevict = k;
  j->forgotten += nf;
  free(ids);
  free(kept);
}

void ordo__j_jdisk_clear(jdisk *d) {
  free(d->service);
  free(d->reason);
  free(d->ledger_id);
  free(d->payload);
  memset(d, 0, sizeof(*d));
}


/*
 * Not under j->mu (it waits for the storage, whose dones take j->mu): the
 * records tagged with id, read back. flags: gone_ids' flags for it, the
 * state when no record finishes it (a cascade whose record a crash lost).
 * ORDO_E_NOT_FOUND when the log has no enq record of it (retention
 * dropped it, or a hash shared by two ids said "seen");
 * ORDO_E_WOULD_DEADLOCK on a runtime thread.
 */
int ordo__j_disk_lookup(ordo_journal *j, const char *id, int flags, jdisk *d) {
  ordo_storage_query q;
  ordo_storage_buf val;
  ordo_storage_req req;
  int rc, has_enq = 0, want = d->want_payload;

  memset(d, 0, sizeof(*d));
  d->want_payload = want;
  d->state = (flags & 1) ? ORDO_QUEUE_INVALID : ORDO_QUEUE_COMMITTED;
  if (ordo__on_runtime_thread())
    return ordo__set_last_error(ORDO_E_WOULD_DEADLOCK, "batch %s is read "
                                "from the journal, which blocks; not on a "
                                "runtime thread", id);
  memset(&q, 0, sizeof q);
  q.op = ORDO_SQ_EQ;
  q.tag_name.data = (unsigned char *)JOURNAL_ID_TAG;
  q.tag_name.len = strlen(JOURNAL_ID_TAG);
  q.plaintext = 1;
  val.data = (unsigned char *)id;
  val.len = strlen(id);
  q.values = &val;
  q.nvalues = 1;
  ordo__j_scan_req(&req, JOURNAL_CATEGORY, &q, 0, 0);
  if ((rc = ordo__j_storage_call(j->st, &req)) != ORDO_OK) {
    rc = ordo__set_last_error(rc, "journal: reading batch %s: %s", id,
                              req.message != NULL ? req.message
                                                  : ordo_strerror(rc));
    ordo_storage_req_clear_output(&req);
    return rc;
  }
  for (size_t i = 0; i < req.nresults && rc == ORDO_OK; i++) {
    const unsigned char *payload;
    size_t payload_len;
    json_t *ev, *t;
    const char *kind;
    if ((ev = ordo__j_record_event(&req.results[i], 0, NULL, &payload,
                                   &payload_len)) == NULL)
      continue;
    kind = json_string_value(json_object_get(ev, "e"));
    t = json_object_get(ev, "t");
    if (kind != NULL && strcmp(kind, "enq") == 0) {
      ordo_queue_batch_spec sp;
      if (ordo__j_enq_spec_parse(ev, payload, payload_len, &sp) == ORDO_OK &&
          strcmp(sp.id, id) == 0) {
        ordo__j_content_digest(&sp, d->digest);
        d->seq = sp.seq;
        d->t_enq = sp.time_ms;
        if ((d->service = ordo__strdup(sp.service)) == NULL ||
            (sp.ledger_id != NULL &&
             (d->ledger_id = ordo__strdup(sp.ledger_id)) == NULL))
          rc = ordo__set_last_error(ORDO_E_NOMEM, NULL);
        if (rc == ORDO_OK && want && sp.payload_len > 0) {
          if ((d->payload = malloc(sp.payload_len)) == NULL)
            rc = ordo__set_last_error(ORDO_E_NOMEM, NULL);
          else
            memcpy(d->payload, sp.payload, sp.payload_len);
          d->payload_len = sp.payload_len;
        }
        has_enq = 1;
      }
      ordo__j_enq_spec_free(&sp);
    } else if (kind != NULL) {
      const char *st = json_string_value(json_object_get(ev, "state"));
      const char *why = json_string_value(json_object_get(ev, "reason"));
      d->state = strcmp(kind, "fin") == 0 && st != NULL &&
                         strcmp(st, "COMMITTED") == 0
                     ? ORDO_QUEUE_COMMITTED
                     : ORDO_QUEUE_INVALID;
      free(d->reason);
      d->reason = NULL;
      if (d->state == ORDO_QUEUE_INVALID &&
          (d->reason = ordo__strdup(why != NULL ? why : "invalid")) == NULL)
        rc = ordo__set_last_error(ORDO_E_NOMEM, NULL);
      if (json_is_integer(t))
        d->t_fin = (uint64_t)json_integer_value(t);
    }
    json_decref(ev);
  }
  ordo_storage_req_clear_output(&req);
  if (rc == ORDO_OK && !has_enq)
    rc = ordo__set_last_error(ORDO_E_NOT_FOUND, "no batch '%s'", id);
  if (rc == ORDO_OK && d->state == ORDO_QUEUE_INVALID && d->reason == NULL &&
      (d->reason = ordo__strdup("a dep is invalid")) == NULL)
    rc = ordo__set_last_error(ORDO_E_NOMEM, NULL);
  if (rc != ORDO_OK)
    ordo__j_jdisk_clear(d);
  return rc;
}



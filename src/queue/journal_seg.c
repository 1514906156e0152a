/*
 * journal_seg.c — the forgotten-id sets on disk as segments: written with
 * each checkpoint, read back behind an open (journal.c says how the files
 * divide the journal).
 */
#include "queue/journal_int.h"

/* ------------------------------------------------------------------------ */
/* Forgotten-id segments                                                     */
/* ------------------------------------------------------------------------ */

/*
 * The forgotten sets reach the disk as segments (category "ckid", name
 * ordo__j_be64(E) of the checkpoint each was written with; idset.h has the
 * format): a checkpoint adds the ops on the sets since the one before it
 * (ids_log, lids_log) in its own transaction, so that it costs what
 * changed, not the whole tables (16 MiB at a million ids, copied and
 * written at every checkpoint before). When the segments hold more than
 * twice the members (retention removes as many as are added) plus
 * SEG_BASE_SLACK, or more than SEG_MAX of them, a checkpoint writes one
 * base segment of every member instead and deletes the rest. A reopen
 * applies them in order.
 *
 * When they are read: a reopen after a clean close (nothing to replay
 * after the checkpoint) returns first and reads them on the storage
 * thread; until then the sets hold the ops since the open and the
 * finished deps of the checkpoint's batches ("dc", "di"), which is all
 * that loading those batches, a take and a verdict ask of them. What asks
 * more (an enqueue, a status read from disk, a cancel, retention, the
 * next checkpoint) waits for them (ordo__j_gone_wait). A reopen with records to
 * replay, whose enqueues ask, reads them first, and so does a recovery.
 */

/* Apply the segments recs[0..n) (in name order) to ids and lids; their
 * names into segs (may be NULL) and their ops counted into *ops. */
static int seg_apply(ordo__idset *ids, ordo__idset *lids,
                     const ordo_storage_record *recs, size_t n,
                     uint64_t **segs, size_t *nsegs, size_t *capsegs,
                     size_t *ops) {
  for (size_t i = 0; i < n; i++) {
    const ordo_storage_record *r = &recs[i];
    int rc;
    if (r->name.len != 8)
      return ordo__set_last_error(ORDO_E_QUEUE, "forgotten ids: a segment "
                                  "with a bad name");
    rc = ordo__idseg_apply(r->value.data, r->value.len, ids, lids);
    if (rc == -2)
      return ordo__set_last_error(ORDO_E_NOMEM, NULL);
    if (rc != 0)
      return ordo__set_last_error(
          ORDO_E_QUEUE,
          "forgotten ids: segment "
          "%llu is damaged",
          (unsigned long long)ordo__j_rd64(r->name.data));
    if (r->value.data[5]) { /* a base: the ones before it are void */
      *nsegs = 0;
      *ops = 0;
    }
    *ops += (r->value.len - 16) / 8;
    if (segs != NULL) {
      if (*nsegs == *capsegs) {
        size_t nc = *capsegs ? *capsegs * 2 : 16;
        uint64_t *v = realloc(*segs, nc * sizeof(*v));
        if (v == NULL)
          return ordo__set_last_error(ORDO_E_NOMEM, NULL);
        *segs = v;
        *capsegs = nc;
      }
      (*segs)[(*nsegs)++] = ordo__j_rd64(r->name.data);
    }
  }
  return ORDO_OK;
}

/* Under j->mu (or at open): ids and lids, read from the segments, become
 * the sets, with the ops since the open on top. ORDO_OK, or
 * ORDO_E_NOMEM (nothing changed; ids and lids are the caller's to clear). */
static int gone_adopt(ordo_journal *j, ordo__idset *ids, ordo__idset *lids) {
  if (ordo__idset_apply(ids, j->ids_log.v, j->ids_log.n) != 0 ||
      ordo__idset_apply(lids, j->lids_log.v, j->lids_log.n) != 0)
    return ordo__set_last_error(ORDO_E_NOMEM, NULL);
  ordo__idset_clear(&j->gone_ids);
  ordo__idset_clear(&j->gone_lids);
  j->gone_ids = *ids;
  j->gone_lids = *lids;
  ordo__idset_init(ids);
  ordo__idset_init(lids);
  j->gone_loaded = 1;
  j->gone_gen++; /* a load still out is stale */
  return ORDO_OK;
}

/* Build the sets of the segments recs[0..n) and adopt them (under j->mu,
 * or at open). */
int ordo__j_gone_build(ordo_journal *j, const ordo_storage_record *recs,
                       size_t n) {
  ordo__idset ids, lids;
  uint64_t *segs = NULL;
  size_t nsegs = 0, capsegs = 0, ops = 0;
  int rc;
  ordo__idset_init(&ids);
  ordo__idset_init(&lids);
  memcpy(ids.key, j->gone_ids.key, sizeof ids.key);
  memcpy(lids.key, j->gone_lids.key, sizeof lids.key);
  if ((rc = seg_apply(&ids, &lids, recs, n, &segs, &nsegs, &capsegs,
                      &ops)) == ORDO_OK &&
      (rc = gone_adopt(j, &ids, &lids)) == ORDO_OK) {
    free(j->segs);
    j->segs = segs;
    j->nsegs = nsegs;
    j->capsegs = capsegs;
    j->seg_ops = ops;
    segs = NULL;
  }
  free(segs);
  ordo__idset_clear(&ids);
  ordo__idset_clear(&lids);
  return rc;
}

/* At open, before a replay: read the segments now. */
int ordo__j_gone_load_sync(ordo_journal *j) {
  ordo_storage_req req;
  int rc;
  ordo__j_scan_req(&req, JOURNAL_SEG_CATEGORY, NULL, 0,
                   ORDO_STORAGE_REQ_NO_TAGS | ORDO_STORAGE_REQ_BY_NAME);
  if ((rc = ordo__j_storage_call(j->st, &req)) != ORDO_OK)
    rc = ordo__set_last_error(rc, "journal: reading the forgotten ids: %s",
                              req.message != NULL ? req.message
                                                  : ordo_strerror(rc));
  else
    rc = ordo__j_gone_build(j, req.results, req.nresults);
  ordo_storage_req_clear_output(&req);
  return rc;
}

typedef struct jgload {
  ordo_storage_req req;
  ordo_journal *j;
  unsigned gen;
} jgload;

static void gone_loaded_done(ordo_storage_req *req) {
  jgload *g = (jgload *)req;
  ordo_journal *j = g->j;
  pthread_mutex_lock(&j->mu);
  j->gone_loading = 0;
  if (g->gen == j->gone_gen && !j->gone_loaded) {
    int rc = req->status;
    if (rc != ORDO_OK)
      ordo__set_last_error(rc, "%s", req->message != NULL
                                          ? req->message
                                          : ordo_strerror(rc));
    else
      rc = ordo__j_gone_build(j, req->results, req->nresults);
    /* A journal that cannot read them fails: the recovery reads them
     * again (and refuses nothing it has not refused before). */
    if (rc != ORDO_OK) {
      char msg[512];
      snprintf(msg, sizeof msg, "reading the forgotten ids: %s",
               ordo_last_error_message());
      ordo__j_journal_fail(j, rc == ORDO_E_NOMEM ? rc : ORDO_E_STORAGE, msg);
    }
  }
  ordo_storage_req_clear_output(req);
  free(g);
  pthread_cond_broadcast(&j->idle_cv);
  pthread_mutex_unlock(&j->mu);
}

/* Under j->mu: read the segments behind whatever is out. */
void ordo__j_gone_load_start(ordo_journal *j) {
  jgload *g;
  if (j->gone_loaded || j->gone_loading)
    return;
  if ((g = calloc(1, sizeof(*g))) == NULL) {
    ordo__j_journal_fail(j, ORDO_E_NOMEM,
                         "reading the forgotten ids: out of memory");
    return;
  }
  g->j = j;
  g->gen = j->gone_gen;
  ordo__j_scan_req(&g->req, JOURNAL_SEG_CATEGORY, NULL, 0,
                   ORDO_STORAGE_REQ_NO_TAGS | ORDO_STORAGE_REQ_BY_NAME);
  g->req.done = gone_loaded_done;
  if (j->st->backend->submit(j->st, &g->req) != ORDO_OK) {
    free(g);
    ordo__j_journal_fail(j, ORDO_E_STORAGE,
                         "the storage backend refused to read "
                         "the forgotten ids");
    return;
  }
  j->gone_loading = 1;
}

/* Under j->mu: wait until the sets hold every segment. ORDO_OK, or why
 * they do not: the journal failed reading them (and did not recover), or
 * the caller is on a runtime thread, where waiting could stall the
 * storage thread that reads them. */
int ordo__j_gone_wait(ordo_journal *j) {
  int rc;
  if (j->gone_loaded)
    return ORDO_OK;
  if (ordo__on_runtime_thread())
    return ordo__set_last_error(ORDO_E_STORAGE_BUSY, "journal: the ids of "
                                "finished batches are still being read "
                                "after the open; retry");
  while (!j->gone_loaded && j->gone_loading && j->failed == ORDO_OK)
    pthread_cond_wait(&j->idle_cv, &j->mu);
  if (j->gone_loaded)
    return ORDO_OK;
  if ((rc = ordo__j_journal_check(j)) !=
      ORDO_OK) /* recovers, which reads them */
    return rc;
  return j->gone_loaded
             ? ORDO_OK
             : ordo__set_last_error(ORDO_E_STORAGE, "journal: the "
                                                    "ids of finished batches "
                                                    "could not be read");
}

/* Under j->mu, building checkpoint E: its segment into w (ADD at sub
 * *k, and the DELETEs of the segments a base voids), the logs moved into
 * w. ORDO_OK (nothing added when nothing changed) or ORDO_E_NOMEM. */
int ordo__j_seg_write(ordo_journal *j, jwrite *w, uint64_t E, size_t *k) {
  size_t live = j->gone_ids.n + j->gone_lids.n;
  size_t logged = j->ids_log.n + j->lids_log.n;
  int base = j->seg_base_due || j->nsegs >= SEG_MAX ||
             (j->seg_ops + logged) * 8 > 2 * live * 8 + SEG_BASE_SLACK;
  unsigned char *v;
  uint64_t *a = NULL, *b = NULL;
  size_t len, i;

  if (!base && logged == 0)
    return ORDO_OK;
  if (base) {
    if ((a = malloc((j->gone_ids.n + 1) * sizeof(*a))) == NULL ||
        (b = malloc((j->gone_lids.n + 1) * sizeof(*b))) == NULL) {
      free(a);
      return ORDO_E_NOMEM;
    }
    ordo__idset_members(&j->gone_ids, a);
    ordo__idset_members(&j->gone_lids, b);
    v = ordo__idseg_encode(1, a, j->gone_ids.n, b, j->gone_lids.n, &len);
    free(a);
    free(b);
  } else {
    v = ordo__idseg_encode(0, j->ids_log.v, j->ids_log.n, j->lids_log.v,
                           j->lids_log.n, &len);
  }
  if (v == NULL)
    return ORDO_E_NOMEM;
  for (i = 0; base && i < j->nsegs; i++, (*k)++) {
    ordo_storage_req *d = &w->subs[*k];
    ordo__j_be64(w->ck_names[*k], j->segs[i]);
    d->opcode = ORDO_STORAGE_DELETE;
    d->rec.category.data = (unsigned char *)JOURNAL_SEG_CATEGORY;
    d->rec.category.len = strlen(JOURNAL_SEG_CATEGORY);
    d->rec.name.data = w->ck_names[*k];
    d->rec.name.len = 8;
  }
  ordo__j_be64(w->ck_names[*k], E);
  w->values[*k] = v;
  w->subs[*k].opcode = ORDO_STORAGE_ADD;
  w->subs[*k].rec.category.data = (unsigned char *)JOURNAL_SEG_CATEGORY;
  w->subs[*k].rec.category.len = strlen(JOURNAL_SEG_CATEGORY);
  w->subs[*k].rec.name.data = w->ck_names[*k];
  w->subs[*k].rec.name.len = 8;
  w->subs[*k].rec.value.data = v;
  w->subs[*k].rec.value.len = len;
  (*k)++;
  w->ck_ids = j->ids_log;
  w->ck_lids = j->lids_log;
  memset(&j->ids_log, 0, sizeof j->ids_log);
  memset(&j->lids_log, 0, sizeof j->lids_log);
  w->ck_seg = 1;
  w->ck_base = base;
  return ORDO_OK;
}

/* Under j->mu: checkpoint w is done. Its segment is on disk, or (failed)
 * its ops go back in front of the logs, for the checkpoint after the
 * recovery. */
void ordo__j_seg_written(ordo_journal *j, jwrite *w, int ok) {
  if (!w->ck_seg)
    return;
  if (ok) {
    if (w->ck_base) {
      j->nsegs = 0;
      j->seg_ops = 0;
      j->seg_base_due = 0;
    }
    if (j->nsegs == j->capsegs) {
      size_t nc = j->capsegs ? j->capsegs * 2 : 16;
      uint64_t *v = realloc(j->segs, nc * sizeof(*v));
      if (v == NULL) {
        j->seg_base_due = 1; /* the list is short of one: start over */
        return;
      }
      j->segs = v;
      j->capsegs = nc;
    }
    j->segs[j->nsegs++] = w->ck_event;
    j->seg_ops += w->ck_base ? j->gone_ids.n + j->gone_lids.n
                             : w->ck_ids.n + w->ck_lids.n;
    return;
  }
  if (ordo__idlog_append(&w->ck_ids, j->ids_log.v, j->ids_log.n) != 0 ||
      ordo__idlog_append(&w->ck_lids, j->lids_log.v, j->lids_log.n) != 0) {
    j->seg_base_due = 1; /* ops lost: the next one writes the sets whole */
    return;
  }
  ordo__idlog_clear(&j->ids_log);
  ordo__idlog_clear(&j->lids_log);
  j->ids_log = w->ck_ids;
  j->lids_log = w->ck_lids;
  memset(&w->ck_ids, 0, sizeof w->ck_ids);
  memset(&w->ck_lids, 0, sizeof w->ck_lids);
}


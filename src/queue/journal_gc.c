/*
 * journal_gc.c — what keeps the journal's log bounded: the prune below a
 * checkpoint and retention of finished batches (journal.c says how the
 * files divide the journal).
 */
#include "queue/journal_int.h"

/* ---- pruning the log below the checkpoint ----------------------------- */

typedef struct jprune {
  ordo_storage_req req; /* first: the SCAN, then the BATCH of deletes */
  ordo_journal *j;
  /* Phase 1, for the records written before the journal tracked its
   * untagged ones (track_from): pages of records from `from` (the name
   * after the last one seen) to below `below`, in event order. */
  unsigned char from[8], below[8];
  ordo_storage_buf vfrom, vbelow;
  ordo_storage_query q, qfrom, qbelow, *kids[2];
  ordo_storage_record *recs;
  size_t nrecs;
  ordo_storage_req *dels;
  size_t ndels;
  int more; /* the last page was full */
  /* Phase 2: the tracked ones below upto (a prefix of j->untagged),
   * deleted by name a page of npage at a time, each taken off the list
   * once durable (unless the list was dropped: gen). */
  int tracked;
  size_t npage;
  unsigned gen;
  unsigned char (*names)[8];
  uint64_t upto; /* below: once done, ck_pruned */
} jprune;

static void prune_scan(jprune *p);
static void prune_tracked(jprune *p);

static void prune_free_page(jprune *p) {
  p->npage = 0;
  for (size_t i = 0; i < p->ndels; i++)
    ordo_storage_req_clear_output(&p->dels[i]);
  ordo__j_records_free(p->recs, p->nrecs);
  free(p->dels);
  free(p->names);
  p->recs = NULL;
  p->dels = NULL;
  p->names = NULL;
  p->nrecs = p->ndels = 0;
}

/* Under j->mu: the prune is over (done: all of it). One that stops short
 * leaves its records to a later prune, which scans for the tracked ones
 * it took. */
static void prune_end(jprune *p, int done) {
  ordo_journal *j = p->j;
  if (done)
    j->ck_pruned = p->upto;
  prune_free_page(p);
  free(p);
  j->pruning = 0;
  pthread_cond_broadcast(&j->idle_cv);
}

/* Under j->mu: the next page, of either phase, or the end. */
static void prune_next(jprune *p) {
  if (p->j->closing)
    prune_end(p, 0);
  else if (!p->tracked && p->more)
    prune_scan(p);
  else
    prune_tracked(p);
}

static void prune_deleted(ordo_storage_req *req) {
  jprune *p = (jprune *)req;
  ordo_journal *j = p->j;
  ordo_storage_req_clear_output(req); /* a failure's message */
  pthread_mutex_lock(&j->mu);
  if (req->status != ORDO_OK) {
    /* A failure only leaves records for a later prune, which scans for
     * the tracked ones (one of them may be what failed). */
    if (p->tracked)
      ordo__j_untagged_drop(j);
    prune_end(p, 0);
  } else {
    if (p->tracked && p->gen == j->unt_gen) {
      memmove(j->untagged, j->untagged + p->npage,
              (j->nuntagged - p->npage) * sizeof(*j->untagged));
      j->nuntagged -= p->npage;
    }
    prune_free_page(p);
    prune_next(p);
  }
  pthread_mutex_unlock(&j->mu);
}

static void prune_scanned(ordo_storage_req *req) {
  jprune *p = (jprune *)req;
  ordo_journal *j = p->j;
  size_t i, k = 0;
  pthread_mutex_lock(&j->mu);
  if (req->status != ORDO_OK) {
    ordo_storage_req_clear_output(req);
    prune_end(p, 0);
    pthread_mutex_unlock(&j->mu);
    return;
  }
  p->recs = ordo__j_take_results(req, &p->nrecs);
  p->more = p->nrecs == PRUNE_PAGE;
  for (i = 0; i < p->nrecs; i++)
    if (p->recs[i].ntags == 0)
      k++;
  if (p->nrecs > 0 && p->recs[p->nrecs - 1].name.len == 8)
    ordo__j_be64(p->from, ordo__j_rd64(p->recs[p->nrecs - 1].name.data) + 1);
  if (k == 0 || j->closing) {
    prune_free_page(p);
    prune_next(p);
    pthread_mutex_unlock(&j->mu);
    return;
  }
  if ((p->dels = calloc(k, sizeof(*p->dels))) == NULL) {
    prune_end(p, 0);
    pthread_mutex_unlock(&j->mu);
    return;
  }
  for (i = 0; i < p->nrecs; i++)
    if (p->recs[i].ntags == 0)
      ordo__j_delete_req(&p->dels[p->ndels++], &p->recs[i]);
  if (ordo__j_submit_batch(j, &p->req, p->dels, p->ndels, prune_deleted) !=
      ORDO_OK)
    prune_end(p, 0);
  pthread_mutex_unlock(&j->mu);
}

/* Under j->mu: the next page of records below the checkpoint. */
static void prune_scan(jprune *p) {
  ordo_journal *j = p->j;
  ordo__j_scan_req(&p->req, JOURNAL_CATEGORY, &p->q, PRUNE_PAGE,
                   ORDO_STORAGE_REQ_BY_NAME);
  p->req.done = prune_scanned;
  if (j->st->backend->submit(j->st, &p->req) != ORDO_OK)
    prune_end(p, 0);
}

/* Under j->mu: delete the next page of the tracked records, by name. */
static void prune_tracked(jprune *p) {
  ordo_journal *j = p->j;
  size_t n = 0, i;
  if (p->tracked && p->gen != j->unt_gen) {
    prune_end(p, 0); /* the list was dropped: a later prune scans */
    return;
  }
  p->tracked = 1;
  p->gen = j->unt_gen;
  while (n < j->nuntagged && n < PRUNE_DELETES && j->untagged[n] < p->upto)
    n++;
  if (n == 0) {
    prune_end(p, 1);
    return;
  }
  if (n > PRUNE_PAGE)
    n = PRUNE_PAGE;
  if ((p->dels = calloc(n, sizeof(*p->dels))) == NULL ||
      (p->names = calloc(n, sizeof(*p->names))) == NULL) {
    prune_end(p, 0);
    return;
  }
  for (i = 0; i < n; i++) {
    ordo__j_be64(p->names[i], j->untagged[i]);
    p->dels[i].opcode = ORDO_STORAGE_DELETE;
    p->dels[i].rec.category.data = (unsigned char *)JOURNAL_CATEGORY;
    p->dels[i].rec.category.len = strlen(JOURNAL_CATEGORY);
    p->dels[i].rec.name.data = p->names[i];
    p->dels[i].rec.name.len = 8;
  }
  p->ndels = n;
  p->npage = n;
  if (ordo__j_submit_batch(j, &p->req, p->dels, n, prune_deleted) != ORDO_OK)
    prune_end(p, 0);
}

/*
 * Under j->mu, once a checkpoint is durable. The untagged records below
 * it go: those written since the journal began to track them
 * (track_from, the open) by name, with no scan; those before it (the
 * records of the last run, or all of them when tracking stopped for
 * want of memory or after a failure) found by a scan of the log from
 * where the last prune ended.
 */
void ordo__j_prune_start(ordo_journal *j) {
  jprune *p;
  uint64_t scan_to;
  if (j->pruning || j->closing || (p = calloc(1, sizeof(*p))) == NULL)
    return; /* a later checkpoint prunes what this one would have */
  p->j = j;
  p->upto = j->ck_event;
  j->pruning = 1;
  scan_to = j->track_from < p->upto ? j->track_from : p->upto;
  if (j->ck_pruned >= scan_to) {
    prune_tracked(p);
    return;
  }
  /* Below the checkpoint before this one, the log was pruned already. */
  ordo__j_name_leaf(&p->qfrom, &p->vfrom, p->from, ORDO_SQ_NAME_GTE,
                    j->ck_pruned);
  ordo__j_name_leaf(&p->qbelow, &p->vbelow, p->below, ORDO_SQ_NAME_LT, scan_to);
  p->kids[0] = &p->qfrom;
  p->kids[1] = &p->qbelow;
  p->q.op = ORDO_SQ_AND;
  p->q.children = p->kids;
  p->q.nchildren = 2;
  prune_scan(p);
}

/* ---- retention: finished batches' records past their time -------------- */

/*
 * A finished batch's records stay for its status and its id's duplicate
 * check until it is older than retention_ms or more than retention_count
 * finished batches are kept; then its records go and its id and ledger id
 * are free again. The pass reads the log from a cursor in event order (so
 * in the order batches finished), a page at a time behind the other
 * writes: the batches whose finishing record is past retention have all
 * their records deleted by their tag in one statement (DELETE_MATCHING),
 * and their ledger ids, which the finishing record names, leave the set;
 * the first one that is not past stops it, and the cursor stays there. A
 * finishing record written before it named the ledger id has its batch's
 * records read first (for the enq record's) and deleted one by one. It
 * runs at a take once a minute, or when the count is over.
 */

#define EXPIRE_PAGE 256

typedef struct jexpire {
  ordo_storage_req req; /* the page's SCAN, the lookups' BATCH, the deletes */
  ordo_journal *j;
  unsigned char from[8];
  ordo_storage_buf vfrom;
  ordo_storage_query q;
  uint64_t next_cursor; /* after this page */
  int more;             /* go on after this page */
  size_t nids;
  char **ids;           /* the page's expired batches */
  ordo_storage_buf *idbufs;
  ordo_storage_query idq; /* their records: the tag IN (ids) */
  ordo_storage_record *recs; /* what it found */
  size_t nrecs;
  ordo_storage_req *dels;
  size_t ndels;
  char **lids; /* their ledger ids, from their finishing (or enq) records */
  size_t nlids, caplids;
  int legacy; /* a finishing record did not say its ledger id */
} jexpire;

static void expire_page_free(jexpire *x) {
  for (size_t i = 0; i < x->ndels; i++)
    ordo_storage_req_clear_output(&x->dels[i]);
  for (size_t i = 0; i < x->nids; i++)
    free(x->ids[i]);
  for (size_t i = 0; i < x->nlids; i++)
    free(x->lids[i]);
  ordo__j_records_free(x->recs, x->nrecs);
  free(x->ids);
  free(x->lids);
  free(x->idbufs);
  free(x->dels);
  x->ids = x->lids = NULL;
  x->idbufs = NULL;
  x->recs = NULL;
  x->dels = NULL;
  x->nids = x->ndels = x->nlids = x->caplids = x->nrecs = 0;
  x->legacy = 0;
}

static void expire_end(jexpire *x) {
  ordo_journal *j = x->j;
  expire_page_free(x);
  free(x);
  j->expiring = 0;
  pthread_cond_broadcast(&j->idle_cv);
}

static void expire_scan(jexpire *x);

/* Under j->mu, after a page: the next one from the cursor, or the end
 * (the last page was not full, or the journal closes). */
static void expire_next(jexpire *x) {
  if (!x->more || x->j->closing) {
    expire_end(x);
  } else {
    expire_page_free(x);
    expire_scan(x);
  }
}

/* Under j->mu, first in a callback of the pass: 1 when it ends here (req
 * failed, or the journal closes), with req's output cleared. */
static int expire_stopped(jexpire *x, ordo_storage_req *req) {
  if (req->status == ORDO_OK && !x->j->closing)
    return 0;
  ordo_storage_req_clear_output(req);
  expire_end(x);
  return 1;
}

static void expire_deleted(ordo_storage_req *req) {
  jexpire *x = (jexpire *)req;
  ordo_journal *j = x->j;
  ordo_storage_req_clear_output(req); /* a failure's message */
  pthread_mutex_lock(&j->mu);
  if (req->status == ORDO_OK) {
    /* Out of memory for the log: the id stays in the set (refused until
     * a later pass finds it again), as its records are gone already. */
    for (size_t i = 0; i < x->nids; i++)
      if (ordo__idset_del_logged(&j->gone_ids, &j->ids_log, x->ids[i]) == 1)
        j->expired++;
    for (size_t i = 0; i < x->nlids; i++)
      (void)ordo__idset_del_logged(&j->gone_lids, &j->lids_log, x->lids[i]);
    j->exp_cursor = x->next_cursor;
  }
  if (req->status != ORDO_OK)
    expire_end(x);
  else
    expire_next(x);
  pthread_mutex_unlock(&j->mu);
}

static void expire_looked(ordo_storage_req *req) {
  jexpire *x = (jexpire *)req;
  ordo_journal *j = x->j;
  size_t i, n;
  pthread_mutex_lock(&j->mu);
  if (expire_stopped(x, req)) {
    pthread_mutex_unlock(&j->mu);
    return;
  }
  x->recs = ordo__j_take_results(req, &x->nrecs);
  n = x->nrecs;
  for (i = 0; i < x->nlids; i++)
    free(x->lids[i]);
  free(x->lids);
  x->lids = NULL;
  x->nlids = x->caplids = 0;
  if ((x->dels = calloc(n > 0 ? n : 1, sizeof(*x->dels))) == NULL ||
      (x->lids = calloc(n > 0 ? n : 1, sizeof(*x->lids))) == NULL) {
    expire_end(x);
    pthread_mutex_unlock(&j->mu);
    return;
  }
  for (i = 0; i < n; i++) {
    json_t *ev = ordo__j_record_event(&x->recs[i], 0, NULL, NULL, NULL);
    const char *kind = json_string_value(json_object_get(ev, "e"));
    const char *lid = json_string_value(json_object_get(ev, "ledger_id"));
    if (kind != NULL && strcmp(kind, "enq") == 0 && lid != NULL &&
        (x->lids[x->nlids] = ordo__strdup(lid)) != NULL)
      x->nlids++;
    json_decref(ev);
    ordo__j_delete_req(&x->dels[x->ndels++], &x->recs[i]);
  }
  if (ordo__j_submit_batch(j, &x->req, x->dels, x->ndels, expire_deleted) !=
      ORDO_OK)
    expire_end(x);
  pthread_mutex_unlock(&j->mu);
}

/* Keep a copy of ledger id lid for the page. 0, or -1 (out of memory). */
static int expire_lid_push(jexpire *x, const char *lid) {
  char *c;
  if (x->nlids == x->caplids) {
    size_t nc = x->caplids ? x->caplids * 2 : 32;
    char **p = realloc(x->lids, nc * sizeof(*p));
    if (p == NULL)
      return -1;
    x->lids = p;
    x->caplids = nc;
  }
  if ((c = ordo__strdup(lid)) == NULL)
    return -1;
  x->lids[x->nlids++] = c;
  return 0;
}

/* Under j->mu: whether the batch that finished at t (Unix ms) is past
 * retention, with `going` others of this page going before it. */
static int expire_due(const ordo_journal *j, uint64_t t, size_t going,
                      uint64_t now) {
  return j->gone_ids.n - going > j->ret_count ||
         (t != 0 && t + j->ret_ms < now);
}

static void expire_scanned(ordo_storage_req *req) {
  jexpire *x = (jexpire *)req;
  ordo_journal *j = x->j;
  ordo_storage_record *recs;
  size_t n, i, cap = 0;
  uint64_t now = ordo__wall_ms();
  int stop = 0;

  pthread_mutex_lock(&j->mu);
  if (expire_stopped(x, req)) {
    pthread_mutex_unlock(&j->mu);
    return;
  }
  recs = req->results;
  n = req->nresults;
  x->more = n == EXPIRE_PAGE;
  x->next_cursor = j->exp_cursor;
  for (i = 0; i < n && !stop; i++) {
    const ordo_storage_record *r = &recs[i];
    json_t *ev = ordo__j_record_event(r, 0, NULL, NULL, NULL);
    const char *id = json_string_value(json_object_get(ev, "id"));
    int fin = 0;
    (void)ordo__j_event_tagged(json_string_value(json_object_get(ev, "e")),
                               &fin);
    if (fin && id != NULL && ordo__j_in_memory(j, id)) {
      stop = 1; /* finished, not forgotten yet: later */
    } else if (fin && id != NULL && ordo__idset_get(&j->gone_ids, id) >= 0) {
      uint64_t t = (uint64_t)json_integer_value(json_object_get(ev, "t"));
      if (!expire_due(j, t, x->nids, now)) {
        stop = 1; /* the cursor stays on it */
      } else if (x->nids == cap) {
        size_t nc = cap ? cap * 2 : 32;
        char **p = realloc(x->ids, nc * sizeof(*p));
        if (p == NULL)
          stop = 1;
        else {
          x->ids = p;
          cap = nc;
        }
      }
      if (!stop && (x->ids[x->nids] = ordo__strdup(id)) != NULL)
        x->nids++;
      else
        stop = 1;
      if (!stop) {
        json_t *lid = json_object_get(ev, "ledger_id");
        if (lid == NULL)
          x->legacy = 1;
        else if (json_is_string(lid) &&
                 expire_lid_push(x, json_string_value(lid)) != 0)
          x->legacy = 1; /* out of memory: read it from the enq record */
      }
    }
    json_decref(ev);
    if (!stop && r->name.len == 8)
      x->next_cursor = ordo__j_rd64(r->name.data) + 1;
  }
  if (stop)
    x->more = 0;
  ordo_storage_req_clear_output(req);
  if (x->nids == 0) {
    j->exp_cursor = x->next_cursor;
    expire_next(x); /* a page with none past retention holds nothing */
    pthread_mutex_unlock(&j->mu);
    return;
  }
  /* The expired batches' records, found by their tags in one scan. */
  if ((x->idbufs = calloc(x->nids, sizeof(*x->idbufs))) == NULL) {
    expire_end(x);
    pthread_mutex_unlock(&j->mu);
    return;
  }
  for (i = 0; i < x->nids; i++) {
    x->idbufs[i].data = (unsigned char *)x->ids[i];
    x->idbufs[i].len = strlen(x->ids[i]);
  }
  memset(&x->idq, 0, sizeof x->idq);
  x->idq.op = ORDO_SQ_IN;
  x->idq.tag_name.data = (unsigned char *)JOURNAL_ID_TAG;
  x->idq.tag_name.len = strlen(JOURNAL_ID_TAG);
  x->idq.plaintext = 1;
  x->idq.values = x->idbufs;
  x->idq.nvalues = x->nids;
  ordo__j_scan_req(&x->req, JOURNAL_CATEGORY, &x->idq, 0,
                   ORDO_STORAGE_REQ_NO_TAGS);
  if (x->legacy) {
    x->req.done = expire_looked;
  } else {
    x->req.opcode = ORDO_STORAGE_DELETE_MATCHING;
    x->req.done = expire_deleted;
  }
  if (j->st->backend->submit(j->st, &x->req) != ORDO_OK)
    expire_end(x);
  pthread_mutex_unlock(&j->mu);
}

/* Under j->mu: the next page from the cursor. */
static void expire_scan(jexpire *x) {
  ordo_journal *j = x->j;
  ordo__j_name_leaf(&x->q, &x->vfrom, x->from, ORDO_SQ_NAME_GTE, j->exp_cursor);
  ordo__j_scan_req(&x->req, JOURNAL_CATEGORY, &x->q, EXPIRE_PAGE,
                   ORDO_STORAGE_REQ_NO_TAGS | ORDO_STORAGE_REQ_BY_NAME);
  x->req.done = expire_scanned;
  if (j->st->backend->submit(j->st, &x->req) != ORDO_OK)
    expire_end(x);
}

/* Under j->mu: start a pass if one is due. */
void ordo__j_expire_start(ordo_journal *j) {
  jexpire *x;
  uint64_t now;
  if (j->expiring || j->closing || j->failed != ORDO_OK || j->recovering ||
      j->st == NULL || !j->gone_loaded || j->gone_ids.n == 0)
    return;
  now = ordo__wall_ms();
  if (j->gone_ids.n <= j->ret_count && now - j->exp_wall_ms < EXPIRE_EVERY_MS)
    return;
  j->exp_wall_ms = now;
  if ((x = calloc(1, sizeof(*x))) == NULL)
    return;
  x->j = j;
  j->expiring = 1;
  expire_scan(x);
}

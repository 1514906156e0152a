/*
 * journal_enqueue.c — the journal's public calls after open: enqueue,
 * take, verdicts, cancel, policies and the status views (journal.c says
 * how the files divide the journal).
 */
#include "base/json_array.h"
#include "queue/journal_int.h"

/* ---- enqueue: one request, one transaction ------------------------------ */

static int expire_locked(ordo_journal *j, uint64_t now, size_t *count);

static void digest_bytes(crypto_generichash_state *st, const void *p,
                         size_t n) {
  unsigned char len[8];
  ordo__j_be64(len, (uint64_t)n);
  crypto_generichash_update(st, len, sizeof len);
  if (n > 0)
    crypto_generichash_update(st, p, n);
}

static void digest_strs(crypto_generichash_state *st, const char *const *v,
                        size_t n) {
  unsigned char len[8];
  ordo__j_be64(len, (uint64_t)n);
  crypto_generichash_update(st, len, sizeof len);
  for (size_t i = 0; i < n; i++)
    digest_bytes(st, v[i], strlen(v[i]));
}

/*
 * What a batch's content is for "enqueued again": BLAKE2b-256 of its
 * service, reads, writes, deps (each list in its order), ledger id and
 * payload, every field length-prefixed, so two specs share a digest only
 * when all of these are byte-identical. The id is not in it (it is what
 * batches are compared under). The enq record holds all of it, so a
 * replay computes the same digest from the record: the journal format is
 * unchanged.
 */
void ordo__j_content_digest(const ordo_queue_batch_spec *sp,
                            unsigned char out[ORDO_QUEUE_DIGEST_BYTES]) {
  crypto_generichash_state st;
  crypto_generichash_init(&st, NULL, 0, ORDO_QUEUE_DIGEST_BYTES);
  digest_bytes(&st, "ordo.batch.1", 12);
  digest_bytes(&st, sp->service, strlen(sp->service));
  digest_strs(&st, sp->reads, sp->nreads);
  digest_strs(&st, sp->writes, sp->nwrites);
  digest_strs(&st, sp->deps, sp->ndeps);
  if (sp->ledger_id != NULL) {
    digest_bytes(&st, "L", 1);
    digest_bytes(&st, sp->ledger_id, strlen(sp->ledger_id));
  } else {
    digest_bytes(&st, "-", 1);
  }
  digest_bytes(&st, sp->payload, sp->payload_len);
  crypto_generichash_final(&st, out, ORDO_QUEUE_DIGEST_BYTES);
}

void ordo_journal_content_digest(const ordo_queue_batch_spec *spec,
                                 unsigned char out[ORDO_QUEUE_DIGEST_BYTES]) {
  ordo__j_content_digest(spec, out);
}

/* The enq record's JSON of spec (without seq and t), or NULL: a string
 * that is not UTF-8 (or no memory). */
static json_t *enq_event(const ordo_queue_batch_spec *spec) {
  json_t *ev = json_pack(
      "{s:s, s:s, s:s, s:o*, s:o*, s:o*, s:s*}", "e", "enq", "id", spec->id,
      "service", spec->service, "reads",
      spec->nreads ? ordo__json_str_array(spec->reads, spec->nreads) : NULL,
      "writes",
      spec->nwrites ? ordo__json_str_array(spec->writes, spec->nwrites) : NULL,
      "deps", spec->ndeps ? ordo__json_str_array(spec->deps, spec->ndeps) : NULL,
      "ledger_id", spec->ledger_id);
  if (ev != NULL && ((spec->nreads && !json_object_get(ev, "reads")) ||
                     (spec->nwrites && !json_object_get(ev, "writes")) ||
                     (spec->ndeps && !json_object_get(ev, "deps")))) {
    json_decref(ev);
    ev = NULL;
  }
  return ev;
}

/* The value of a record: ev's JSON, then (payload_len > 0) a NUL and the
 * payload. NULL when out of memory. */
unsigned char *ordo__j_record_value(json_t *ev, const void *payload,
                                    size_t payload_len, size_t *len) {
  char *text = json_dumps(ev, JSON_COMPACT);
  unsigned char *v;
  size_t tl;
  if (text == NULL)
    return NULL;
  tl = strlen(text);
  *len = tl + (payload_len > 0 ? 1 + payload_len : 0);
  if ((v = malloc(*len + 1)) != NULL) {
    memcpy(v, text, tl);
    if (payload_len > 0) {
      v[tl] = '\0';
      memcpy(v + tl + 1, payload, payload_len);
    }
  }
  free(text);
  return v;
}

static void add_req(ordo_storage_req *r, unsigned char name[8],
                    unsigned char *value, size_t len) {
  r->opcode = ORDO_STORAGE_ADD;
  r->rec.category.data = (unsigned char *)JOURNAL_CATEGORY;
  r->rec.category.len = strlen(JOURNAL_CATEGORY);
  r->rec.name.data = name;
  r->rec.name.len = 8;
  r->rec.value.data = value;
  r->rec.value.len = len;
}

/*
 * Under j->mu: make w's ONE storage request for the enq records of the new
 * batches (evs[k] and sp[k]'s payload, k < m): a single ADD, or a BATCH of
 * ADDs (one transaction, all or nothing), so that after a crash a
 * request's batches are all on disk or none is. m == 0 (every batch was
 * there already): a read that completes after every earlier write, so
 * that the answer waits until those batches are durable too. ORDO_OK or
 * ORDO_E_NOMEM (w is freed with its op).
 */
static int enq_prepare(ordo_journal *j, jwrite *w, json_t *const *evs,
                       const ordo_queue_batch_spec *const *sp, size_t m,
                       int reserve) {
  size_t k;
  w->j = j;
  w->req.done = ordo__j_write_done;
  if (m == 0) {
    w->barrier = 1;
    w->req.opcode = ORDO_STORAGE_META_GET;
    w->req.rec.name.data = (unsigned char *)JOURNAL_META_KEY;
    w->req.rec.name.len = strlen(JOURNAL_META_KEY);
  } else if (m == 1 && !reserve) {
    if ((w->value = ordo__j_record_value(evs[0], sp[0]->payload,
                                         sp[0]->payload_len, &w->value_len)) ==
        NULL)
      return ORDO_E_NOMEM;
    ordo__j_be64(w->name, j->next_event);
    add_req(&w->req, w->name, w->value, w->value_len);
    if (ordo__j_jwrite_tag(w, evs[0]) != ORDO_OK)
      return ORDO_E_NOMEM;
  } else {
    /* reserve: one more slot, for a take ahead's record (enq_take_ahead) */
    size_t cap = m + (reserve ? 1 : 0);
    if ((w->subs = calloc(cap, sizeof(*w->subs))) == NULL ||
        (w->values = calloc(cap, sizeof(*w->values))) == NULL ||
        (w->names = calloc(cap, sizeof(*w->names))) == NULL ||
        (w->subtags = calloc(m, sizeof(*w->subtags))) == NULL)
      return ORDO_E_NOMEM;
    w->nsubs = m;
    for (k = 0; k < m; k++) {
      size_t len = 0;
      if ((w->values[k] = ordo__j_record_value(
               evs[k], sp[k]->payload, sp[k]->payload_len, &len)) == NULL)
        return ORDO_E_NOMEM;
      ordo__j_be64(w->names[k], j->next_event + k);
      add_req(&w->subs[k], w->names[k], w->values[k], len);
      /* tagged with the batch's id: release_ids[k] is sp[k]'s */
      w->subtags[k].name.data = (unsigned char *)JOURNAL_ID_TAG;
      w->subtags[k].name.len = strlen(JOURNAL_ID_TAG);
      w->subtags[k].value.data = (unsigned char *)w->release_ids[k];
      w->subtags[k].value.len = strlen(w->release_ids[k]);
      w->subtags[k].plaintext = 1;
      w->subs[k].rec.tags = &w->subtags[k];
      w->subs[k].rec.ntags = 1;
    }
    w->req.opcode = ORDO_STORAGE_BATCH;
    w->req.batch = w->subs;
    w->req.nbatch = m;
  }
  return ORDO_OK;
}

/*
 * Under j->mu, after the queue took the new batches (unheld, see
 * enqueue_many): take what is ready into the stash, the "sub" record as
 * the last of w's BATCH (its reserved slot), so that the take is durable
 * with the enqueue, in one transaction: an idle submitter's batch then
 * waits for one fsync before it is sent, not two in a row. ahead is the
 * take's jwrite (its op the stash's), settled with w. Returns the
 * records w now has. Out of memory after the take: taken in memory, not
 * journaled, so the journal fails (as a take's would).
 */
static size_t enq_take_ahead(ordo_journal *j, jwrite *w, jwrite *ahead,
                             ordo_op *op, size_t m) {
  json_t *ids, *ev = NULL;
  size_t ns = 0, i, len = 0;
  unsigned char *v = NULL;

  if (ordo_queue_take(j->q, j->stash, j->ahead_max, &ns) != ORDO_OK ||
      ns == 0)
    return m;
  if ((ids = json_array()) != NULL) {
    for (i = 0; i < ns; i++)
      if (json_array_append_new(ids, json_string(j->stash[i].id)) != 0)
        break;
    ev = i == ns ? json_pack("{s:s, s:o}", "e", "sub", "ids", ids) : NULL;
    if (ev == NULL && i < ns)
      json_decref(ids);
  }
  if (ev != NULL)
    v = ordo__j_record_value(ev, NULL, 0, &len);
  json_decref(ev);
  if (v == NULL) {
    ordo__j_journal_fail(j, ORDO_E_NOMEM, "journal: out of memory");
    return m; /* enq_send refuses w, and with it the take */
  }
  w->values[m] = v;
  ordo__j_be64(w->names[m], j->next_event + m);
  add_req(&w->subs[m], w->names[m], v, len);
  w->nsubs = m + 1;
  w->req.nbatch = m + 1;
  w->ahead = ahead;
  w->ahead_event = j->next_event + m;
  ahead->ntaken = ns;
  j->nstash = ns;
  j->stash_op = op;
  j->ahead_armed = 0;
  j->taken_ahead += ns;
  return m + 1;
}

/* Under j->mu, after enq_prepare: submit w's request (m records). */
static int enq_send(ordo_journal *j, jwrite *w, size_t m) {
  int rc;
  w->req.flags = ORDO_STORAGE_REQ_CHAINED; /* the log stays a prefix */
  rc = j->st->backend->submit(j->st, &w->req);
  if (rc != ORDO_OK) {
    ordo__j_journal_fail(j, rc, "the storage backend refused a journal write");
    ordo__j_jwrite_settle(w, ORDO_E_STORAGE, j->failed_message);
    return ORDO_E_STORAGE;
  }
  j->outstanding++;
  j->next_event += m;
  j->records += m;
  return ORDO_OK;
}

/* Under j->mu: whether the queue has the batch (not forgotten). */
int ordo__j_in_memory(ordo_journal *j, const char *id) {
  uint64_t seq;
  return ordo_queue_batch_seq(j->q, id, &seq) == ORDO_OK;
}

/* The answer for a batch that is there already, identically. */

static ordo_op *enqueue_many(ordo_journal *j,
                             const ordo_queue_batch_spec *specs, size_t n,
                             size_t *bad, int single,
                             ordo_journal_enqueued *out) {
  jwrite *w;
  ordo_op *op;
  json_t **evs = NULL, **nev = NULL, *items = NULL, *seen = NULL,
         *lseen = NULL;
  unsigned char (*dg)[ORDO_QUEUE_DIGEST_BYTES] = NULL;
  ordo_queue_batch_spec *nsp = NULL;
  const ordo_queue_batch_spec **nsrc = NULL;
  size_t *nidx = NULL, i, k, m = 0, bb = 0;
  uint64_t *seqs = NULL, now;
  int rc = ORDO_OK, ahead = 0;
  jwrite *aw = NULL;    /* a take ahead's write and op (see enq_take_ahead) */
  ordo_op *aop = NULL;
  struct {
    int flags; /* gone_ids' flags, or -1: not forgotten */
    int found; /* d was read */
    jdisk d;
  } *gone = NULL;

  if (bad != NULL)
    *bad = (size_t)-1;
  if (j == NULL || (w = calloc(1, sizeof(*w))) == NULL)
    return NULL;
  if ((op = ordo__j_join_op(j, w)) == NULL)
    return NULL;
  if (ordo_op_status(op) != ORDO_E_PENDING)
    return op; /* refused at admission: nothing enqueued */
  if (specs == NULL || n == 0) {
    ordo__j_jwrite_settle(w, ORDO_E_INVAL, "enqueue: no batches");
    return op;
  }
  if ((evs = calloc(n, sizeof(*evs))) == NULL ||
      (dg = calloc(n, sizeof(*dg))) == NULL ||
      (nsp = calloc(n, sizeof(*nsp))) == NULL ||
      (nsrc = calloc(n, sizeof(*nsrc))) == NULL ||
      (nev = calloc(n, sizeof(*nev))) == NULL ||
      (nidx = calloc(n, sizeof(*nidx))) == NULL ||
      (seqs = calloc(n, sizeof(*seqs))) == NULL ||
      (items = json_array()) == NULL || (seen = json_object()) == NULL ||
      (lseen = json_object()) == NULL) {
    ordo__j_jwrite_settle(w, ORDO_E_NOMEM, "journal: out of memory");
    goto out;
  }
  /* Before the lock: the records' JSON (which also checks that every
   * string is UTF-8, so the scheduler never holds a batch the journal
   * cannot write), the digests, and ids or ledger ids repeated. */
  for (i = 0; i < n && rc == ORDO_OK; i++) {
    const ordo_queue_batch_spec *sp = &specs[i];
    json_t *prev;
    if (sp->id == NULL || sp->service == NULL) {
      rc = ordo__set_last_error(ORDO_E_INVAL, "enqueue: a batch needs an id "
                                "and a service");
    } else if ((sp->nreads && sp->reads == NULL) ||
               (sp->nwrites && sp->writes == NULL) ||
               (sp->ndeps && sp->deps == NULL) ||
               (sp->payload_len && sp->payload == NULL)) {
      rc = ordo__set_last_error(ORDO_E_INVAL, "enqueue %s: NULL array",
                                sp->id);
    } else if ((evs[i] = enq_event(sp)) == NULL) {
      rc = ordo__set_last_error(ORDO_E_INVAL, "enqueue: id, service, "
                                "addresses, deps and ledger id must be UTF-8 "
                                "strings");
    } else if ((prev = json_object_get(seen, sp->id)) != NULL) {
      rc = ordo__set_last_error(ORDO_E_EXISTS, "batch id '%s' repeats item "
                                "%lld", sp->id,
                                (long long)json_integer_value(prev));
    } else if (sp->ledger_id != NULL &&
               (prev = json_object_get(lseen, sp->ledger_id)) != NULL) {
      rc = ordo__set_last_error(
          ORDO_E_EXISTS, "ledger batch %.16s… is item %lld's ('%s') too",
          sp->ledger_id, (long long)json_integer_value(prev),
          specs[(size_t)json_integer_value(prev)].id);
    } else if (json_object_set_new(seen, sp->id, json_integer((json_int_t)i)) ||
               (sp->ledger_id != NULL &&
                json_object_set_new(lseen, sp->ledger_id,
                                    json_integer((json_int_t)i)))) {
      rc = ordo__set_last_error(ORDO_E_NOMEM, NULL);
    } else {
      ordo__j_content_digest(sp, dg[i]);
      continue;
    }
    bb = i;
  }
  if (rc != ORDO_OK) {
    if (bad != NULL)
      *bad = bb;
    ordo__j_jwrite_settle(w, rc, ordo_last_error_message());
    goto out;
  }
  /* Ids of batches that finished and left memory: their records are read
   * now, before the lock (ordo__j_disk_lookup waits on the storage, whose dones
   * take it), so that a retry of one is answered as it stands and another
   * batch under its id is refused, as for a batch in memory. */
  {
    size_t ngone = 0;
    pthread_mutex_lock(&j->mu);
    if ((rc = ordo__j_gone_wait(j)) != ORDO_OK) {
      pthread_mutex_unlock(&j->mu);
      ordo__j_jwrite_settle(w, rc, ordo_last_error_message());
      goto out;
    }
    for (i = 0; i < n; i++)
      if (ordo__idset_get(&j->gone_ids, specs[i].id) >= 0 &&
          !ordo__j_in_memory(j, specs[i].id))
        ngone++;
    ahead = j->ahead_max > 0 && j->ahead_armed && j->nstash == 0;
    if (ngone > 0 && (gone = calloc(n, sizeof(*gone))) != NULL)
      for (i = 0; i < n; i++) {
        gone[i].flags = ordo__idset_get(&j->gone_ids, specs[i].id);
        if (gone[i].flags >= 0 && ordo__j_in_memory(j, specs[i].id))
          gone[i].flags = -1;
      }
    pthread_mutex_unlock(&j->mu);
    if (ngone > 0 && gone == NULL) {
      ordo__j_jwrite_settle(w, ORDO_E_NOMEM, "journal: out of memory");
      goto out;
    }
    for (i = 0; gone != NULL && i < n; i++)
      if (gone[i].flags >= 0 &&
          ordo__j_disk_lookup(j, specs[i].id, gone[i].flags, &gone[i].d) ==
              ORDO_OK)
        gone[i].found = 1;
  }
  /* The take's op before the lock, as ordo_journal_take makes it; if the
   * runtime refuses it, the enqueue just does not take ahead. */
  if (ahead && ((aw = calloc(1, sizeof(*aw))) == NULL ||
                (aop = ordo__j_join_op(j, aw)) == NULL ||
                ordo_op_status(aop) != ORDO_E_PENDING)) {
    ordo_op_release(aop);
    aop = NULL;
    ahead = 0;
  }
  now = ordo__wall_ms();
  pthread_mutex_lock(&j->mu);
  if ((rc = ordo__j_journal_check_as(j, 1)) != ORDO_OK) {
    pthread_mutex_unlock(&j->mu);
    ordo__j_jwrite_settle(w, rc, ordo_last_error_message());
    goto out;
  }
  /* An id the queue has: the same batch again (a client's retry) is
   * answered as it stands; another batch under that id is refused. */
  for (i = 0; i < n; i++) {
    const unsigned char *d = NULL;
    if (gone != NULL && gone[i].found &&
        !ordo__j_in_memory(j, specs[i].id)) {
      if (sodium_memcmp(gone[i].d.digest, dg[i], ORDO_QUEUE_DIGEST_BYTES) !=
          0) {
        rc = ordo__set_last_error(ORDO_E_EXISTS, "batch '%s' was enqueued "
                                  "before with other content (service, "
                                  "reads, writes, deps or payload differ); "
                                  "it is %s", specs[i].id,
                                  ordo_queue_state_name(gone[i].d.state));
        bb = i;
        break;
      }
      continue; /* the same batch: answered from its records */
    }
    if (ordo_queue_batch_digest(j->q, specs[i].id, &d) != ORDO_OK) {
      nsp[m] = specs[i];
      nsp[m].seq = 0;
      nsp[m].held = 1;
      nsp[m].time_ms = now;
      nsp[m].digest = dg[i];
      nsrc[m] = &specs[i];
      nidx[m++] = i;
    } else if (d == NULL ||
               memcmp(d, dg[i], ORDO_QUEUE_DIGEST_BYTES) != 0) {
      rc = ordo__set_last_error(ORDO_E_EXISTS, "batch '%s' is already "
                                "enqueued with other content (service, "
                                "reads, writes, deps or payload differ)",
                                specs[i].id);
      bb = i;
      break;
    }
  }
  if (rc != ORDO_OK) {
    pthread_mutex_unlock(&j->mu);
    if (bad != NULL)
      *bad = bb;
    ordo__j_jwrite_settle(w, rc, ordo_last_error_message());
    goto out;
  }
  /* Everything that can fail for want of memory comes before the queue
   * changes (the answer, the records with the seqs the batches will get,
   * the ids to release): after it, a failure could only stop the journal. */
  {
    uint64_t base = ordo_queue_next_seq(j->q);
    for (k = 0; k < m; k++)
      nsp[k].seq = seqs[k] = base + k;
  }
  /* Taking ahead: the new batches are not held back until durable, as the
   * take that hands them out is in their transaction (and any later take
   * is durable after it: the log is a chain). */
  ahead = ahead && m > 0 && j->ahead_armed && j->nstash == 0 &&
          j->nunknown == 0;
  for (k = 0; ahead && k < m; k++)
    nsp[k].held = 0;
  for (i = 0, k = 0; i < n && rc == ORDO_OK; i++) {
    ordo_journal_enqueued e = {0, 1, ORDO_QUEUE_QUEUED};
    if (k < m && nidx[k] == i) {
      e.seq = seqs[k];
      e.already = 0;
      if (json_object_set_new(evs[i], "seq",
                              json_integer((json_int_t)seqs[k])) ||
          json_object_set_new(evs[i], "t", json_integer((json_int_t)now)))
        rc = ORDO_E_NOMEM;
      nev[k++] = evs[i];
    } else if (gone != NULL && gone[i].found &&
               !ordo__j_in_memory(j, specs[i].id)) {
      e.seq = gone[i].d.seq;
      e.state = gone[i].d.state;
    } else {
      (void)ordo__j_status_locked(j, specs[i].id, &e.state, NULL);
      (void)ordo_queue_batch_seq(j->q, specs[i].id, &e.seq);
    }
    if (out != NULL)
      out[i] = e; /* the caller's answer: no JSON */
    else if (json_array_append_new(
                 items, e.already
                            ? json_pack("{s:s, s:I, s:b, s:s}", "id",
                                        specs[i].id, "seq", (json_int_t)e.seq,
                                        "already_enqueued", 1, "state",
                                        ordo_queue_state_name(e.state))
                            : json_pack("{s:s, s:I}", "id", specs[i].id,
                                        "seq", (json_int_t)e.seq)) != 0)
      rc = ORDO_E_NOMEM;
  }
  if (rc == ORDO_OK && out != NULL) {
    w->result = json_object(); /* the answer is out; the op says durable */
    if (w->result == NULL)
      rc = ORDO_E_NOMEM;
  } else if (rc == ORDO_OK) {
    /* The answer must share no JSON with what this thread drops later:
     * jansson's reference counts are not atomic, and the op's thread
     * frees the answer as soon as the record is durable. */
    if (single) {
      w->result = json_incref(json_array_get(items, 0));
      json_decref(items);
    } else {
      w->result = json_pack("{s:o}", "batches", items); /* takes items */
    }
    items = NULL;
    if (w->result == NULL)
      rc = ORDO_E_NOMEM;
  }
  if (rc == ORDO_OK && m > 0 &&
      (w->release_ids = calloc(m, sizeof(*w->release_ids))) == NULL)
    rc = ORDO_E_NOMEM;
  for (k = 0; rc == ORDO_OK && k < m; k++)
    if ((w->release_ids[w->nrelease++] = ordo__strdup(nsp[k].id)) == NULL)
      rc = ORDO_E_NOMEM;
  if (rc == ORDO_OK)
    rc = enq_prepare(j, w, nev, nsrc, m, ahead);
  if (rc != ORDO_OK) {
    pthread_mutex_unlock(&j->mu);
    ordo__j_jwrite_settle(w, ORDO_E_NOMEM, "journal: out of memory");
    goto out;
  }
  if (m > 0 &&
      (rc = ordo_queue_enqueue_many(j->q, nsp, m, NULL, &k)) != ORDO_OK) {
    if (rc == ORDO_E_NOMEM && k > 0) /* held, never to be journaled */
      ordo__j_journal_fail(j, ORDO_E_NOMEM, "journal: out of memory");
    ordo__j_strlist_free(&j->fin_pending, &j->nfin_pending, &j->capfin_pending);
    pthread_mutex_unlock(&j->mu);
    if (bad != NULL)
      *bad = nidx[k];
    ordo__j_jwrite_settle(w, rc, ordo_last_error_message());
    goto out;
  }
  if (ahead)
    m = enq_take_ahead(j, w, aw, aop, m);
  if (w->ahead != NULL)
    aop = NULL; /* the stash's now; aw is settled with w */
  /* Settles w itself on failure (and fails the journal). */
  if (enq_send(j, w, m) == ORDO_OK) {
    ordo__j_fin_flush(j, NULL, 0); /* batches whose dep had ended INVALID */
    if (ordo__j_ck_due(j))
      (void)ordo__j_journal_checkpoint(j);
  } else
    ordo__j_strlist_free(&j->fin_pending, &j->nfin_pending, &j->capfin_pending);
  pthread_mutex_unlock(&j->mu);
out:
  if (aop != NULL) { /* made, not used: it took nothing */
    ordo__j_jwrite_settle(aw, ORDO_OK, NULL);
    ordo_op_release(aop);
  }
  for (i = 0; evs != NULL && i < n; i++)
    json_decref(evs[i]);
  free(evs);
  free(nev);
  free(dg);
  free(nsp);
  free(nsrc);
  free(nidx);
  free(seqs);
  json_decref(items);
  json_decref(seen);
  json_decref(lseen);
  for (i = 0; gone != NULL && i < n; i++)
    ordo__j_jdisk_clear(&gone[i].d);
  free(gone);
  return op;
}

ordo_op *ordo_journal_enqueue_many(ordo_journal *j,
                                   const ordo_queue_batch_spec *specs,
                                   size_t n, size_t *bad) {
  return enqueue_many(j, specs, n, bad, 0, NULL);
}

ordo_op *ordo_journal_enqueue_typed(ordo_journal *j,
                                    const ordo_queue_batch_spec *specs,
                                    size_t n, ordo_journal_enqueued *out,
                                    size_t *bad) {
  return enqueue_many(j, specs, n, bad, 0, out);
}

ordo_op *ordo_journal_enqueue(ordo_journal *j,
                              const ordo_queue_batch_spec *spec) {
  return enqueue_many(j, spec, spec != NULL ? 1 : 0, NULL, 1, NULL);
}

int ordo_journal_take(ordo_journal *j, ordo_queue_item *out, size_t max,
                      size_t *n, ordo_op **durable) {
  jwrite *w;
  ordo_op *op;
  json_t *ids, *ev;
  size_t i;
  int rc;

  if (n != NULL)
    *n = 0;
  if (durable != NULL)
    *durable = NULL;
  if (j == NULL || n == NULL || durable == NULL || (out == NULL && max > 0))
    return ordo__set_last_error(ORDO_E_INVAL, "take: NULL argument");
  /* Most calls find nothing to take (a submitter asks until it does):
   * answer those without making an op. A stale "something" only costs an
   * op that takes nothing below. */
  {
    ordo_queue_totals t;
    size_t unknown;
    uint64_t due;
    pthread_mutex_lock(&j->mu);
    rc = ordo__j_journal_check(j);
    /* The items of earlier takes are done with (see "Forgetting"). */
    ordo__j_journal_evict(j);
    if (rc == ORDO_OK && ordo__j_ck_due(j))
      (void)ordo__j_journal_checkpoint(
          j); /* if it cannot, the log just grows */
    if (rc == ORDO_OK)
      ordo__j_expire_start(j);
    /* Services empty and idle for svc_idle_ms leave memory (their
     * counters with them), checked once a minute. */
    if (rc == ORDO_OK &&
        ordo__wall_ms() - j->svc_wall_ms >= EXPIRE_EVERY_MS) {
      uint64_t now = ordo__wall_ms();
      j->svc_wall_ms = now;
      if (now > j->svc_idle_ms)
        j->services_dropped +=
            ordo_queue_drop_idle_services(j->q, now - j->svc_idle_ms);
    }
    /* Dep timeouts are due by the wall clock: the submitter's every step
     * passes here (ordo_journal_expire for a caller that has no take). */
    if (rc == ORDO_OK && ordo_queue_next_expiry(j->q, &due)) {
      uint64_t now = ordo__wall_ms();
      if (due <= now)
        rc = expire_locked(j, now, NULL);
    }
    if (rc == ORDO_OK && j->nstash > 0) {
      /* Taken by an enqueue (ordo_journal_set_take_ahead). */
      if (max < j->nstash) {
        size_t ns = j->nstash;
        pthread_mutex_unlock(&j->mu);
        return ordo__set_last_error(ORDO_E_INVAL, "take: max %zu is under "
                                    "the %zu batches taken ahead", max, ns);
      }
      memcpy(out, j->stash, j->nstash * sizeof(*out));
      *n = j->nstash;
      *durable = j->stash_op;
      j->nstash = 0;
      j->stash_op = NULL;
      pthread_mutex_unlock(&j->mu);
      return ORDO_OK;
    }
    ordo_queue_get_totals(j->q, &t);
    unknown = j->nunknown;
    /* Nothing to take: the next enqueue may take for the next call. */
    j->ahead_armed = rc == ORDO_OK && t.queued == 0 && unknown == 0;
    pthread_mutex_unlock(&j->mu);
    if (rc != ORDO_OK || t.queued == 0 || unknown > 0)
      return rc;
  }
  /* The op first: if the runtime refuses it, nothing has been taken. */
  if ((w = calloc(1, sizeof(*w))) == NULL ||
      (op = ordo__j_join_op(j, w)) == NULL)
    return ordo__set_last_error(ORDO_E_NOMEM, NULL);
  if ((rc = ordo_op_status(op)) != ORDO_E_PENDING) {
    ordo_op_release(op);
    return ordo__set_last_error(rc, "take: the runtime refused the op");
  }
  pthread_mutex_lock(&j->mu);
  if ((rc = ordo__j_journal_check(j)) != ORDO_OK || j->nunknown > 0 ||
      (rc = ordo_queue_take(j->q, out, max, n)) != ORDO_OK || *n == 0) {
    j->ahead_armed = rc == ORDO_OK && j->nunknown == 0 && j->nstash == 0;
    pthread_mutex_unlock(&j->mu);
    ordo__j_jwrite_settle(w, ORDO_OK, NULL);
    ordo_op_release(op);
    return rc;
  }
  w->ntaken = *n;
  ids = json_array();
  for (i = 0; ids != NULL && i < *n; i++)
    if (json_array_append_new(ids, json_string(out[i].id)) != 0)
      break;
  ev = ids != NULL && i == *n ? json_pack("{s:s, s:o}", "e", "sub", "ids", ids)
                              : NULL;
  if (ev == NULL) {
    json_decref(ids);
    /* Taken in memory, not journaled: stop the queue (see enqueue). */
    ordo__j_journal_fail(j, ORDO_E_NOMEM, "journal: out of memory");
    pthread_mutex_unlock(&j->mu);
    ordo__j_jwrite_settle(w, ORDO_E_STORAGE, "journal: out of memory");
  } else {
    (void)ordo__j_journal_write(j, w, ev, NULL, 0);
    pthread_mutex_unlock(&j->mu);
    json_decref(ev);
  }
  *durable = op;
  return ORDO_OK;
}

int ordo_journal_set_take_ahead(ordo_journal *j, size_t max,
                                void (*ready)(void *ud), void *ud) {
  ordo_queue_item *stash = NULL;
  if (j == NULL)
    return ordo__set_last_error(ORDO_E_INVAL, "take ahead: NULL journal");
  if (max > 0 && (stash = calloc(max, sizeof(*stash))) == NULL)
    return ordo__set_last_error(ORDO_E_NOMEM, NULL);
  pthread_mutex_lock(&j->mu);
  if (j->nstash > 0 && max < j->nstash) {
    pthread_mutex_unlock(&j->mu);
    free(stash);
    return ordo__set_last_error(ORDO_E_STATE, "take ahead: %zu batches "
                                "taken ahead are not handed out yet",
                                j->nstash);
  }
  if (j->nstash > 0)
    memcpy(stash, j->stash, j->nstash * sizeof(*stash));
  free(j->stash);
  j->stash = stash;
  j->ahead_max = max;
  j->ahead_ready = max > 0 ? ready : NULL;
  j->ahead_ud = max > 0 ? ud : NULL;
  if (max == 0)
    j->ahead_armed = 0;
  pthread_mutex_unlock(&j->mu);
  return ORDO_OK;
}

/* Under j->mu, when a recovery replaces the queue or at close: what was
 * taken ahead and not handed out is void (its op failed with the write,
 * or the journal is going). */
void ordo__j_ahead_drop(ordo_journal *j) {
  ordo_op_release(j->stash_op);
  j->stash_op = NULL;
  j->nstash = 0;
  j->ahead_armed = 0;
}

/* Under j->mu, after the queue finished v: its "fin" record. */
static int fin_note(ordo_journal *j, const ordo_queue_verdict *v,
                    uint64_t t) {
  (void)ordo__j_unknown_drop(j, v->id);
  ordo__j_note_finish(j, v->id, t);
  return ordo__j_journal_note(
      j, v->outcome == ORDO_QUEUE_COMMITTED
             ? json_pack("{s:s, s:s, s:s, s:I}", "e", "fin", "id", v->id,
                         "state", "COMMITTED", "t", (json_int_t)t)
             : json_pack("{s:s, s:s, s:s, s:s, s:I}", "e", "fin", "id",
                         v->id, "state", "INVALID", "reason",
                         v->reason != NULL ? v->reason : "invalid", "t",
                         (json_int_t)t));
}

int ordo_journal_finish_many(ordo_journal *j, const ordo_queue_verdict *v,
                             size_t n, size_t *done) {
  const char **ids = NULL;
  size_t d = 0, i;
  int rc;
  if (done != NULL)
    *done = 0;
  if (j == NULL || (v == NULL && n > 0))
    return ordo__set_last_error(ORDO_E_INVAL, "finish: NULL argument");
  if (n == 0)
    return ORDO_OK;
  for (i = 0; i < n; i++)
    if (v[i].id == NULL)
      return ordo__set_last_error(ORDO_E_INVAL, "finish: NULL id");
  /* The ids the records name, so that no "cascade" record repeats one. */
  if (n > 1 && (ids = malloc(n * sizeof(*ids))) == NULL)
    return ordo__set_last_error(ORDO_E_NOMEM, NULL);
  pthread_mutex_lock(&j->mu);
  if ((rc = ordo__j_journal_check(j)) == ORDO_OK) {
    uint64_t t = ordo__wall_ms();
    int qrc = ordo_queue_finish_many(j->q, v, n, &d);
    /* What the queue applied is journaled, even past a failed verdict. */
    for (i = 0; i < d; i++) {
      int r = fin_note(j, &v[i], t);
      if (ids != NULL)
        ids[i] = v[i].id;
      if (r != ORDO_OK && rc == ORDO_OK)
        rc = r;
    }
    if (rc == ORDO_OK)
      rc = qrc;
    ordo__j_fin_flush(j, ids != NULL ? ids : &v[0].id, d);
  }
  pthread_mutex_unlock(&j->mu);
  free(ids);
  if (done != NULL)
    *done = d;
  return rc;
}

int ordo_journal_finish(ordo_journal *j, const char *id,
                        ordo_queue_state outcome, const char *reason) {
  ordo_queue_verdict v = {id, outcome, reason};
  if (j == NULL || id == NULL)
    return ordo__set_last_error(ORDO_E_INVAL, "finish: NULL argument");
  return ordo_journal_finish_many(j, &v, 1, NULL);
}

/* Under j->mu: expire what is due at now (Unix ms), a "fin" record
 * (INVALID, "expired") for each. *count (may be NULL) gets how many. */
static int expire_locked(ordo_journal *j, uint64_t now, size_t *count) {
  ordo_queue_verdict v[64];
  size_t n, total = 0;
  int rc;
  do {
    size_t i;
    if ((rc = ordo_queue_expire(j->q, now, v, 64, &n)) != ORDO_OK)
      n = 0;
    const char *direct[64];
    for (i = 0; i < n; i++) {
      int r;
      ordo__j_note_finish(j, v[i].id, now);
      r = ordo__j_journal_note(
          j, json_pack("{s:s, s:s, s:s, s:s, s:I, s:b}", "e", "fin", "id",
                       v[i].id, "state", "INVALID", "reason", v[i].reason, "t",
                       (json_int_t)now, "expired", 1));
      if (rc == ORDO_OK)
        rc = r;
      direct[i] = v[i].id;
    }
    ordo__j_fin_flush(j, direct, n);
    total += n;
  } while (rc == ORDO_OK && n == 64);
  if (count != NULL)
    *count = total;
  return rc;
}

int ordo_journal_expire(ordo_journal *j, uint64_t now_ms, size_t *expired) {
  int rc;
  if (expired != NULL)
    *expired = 0;
  if (j == NULL)
    return ordo__set_last_error(ORDO_E_INVAL, "expire: NULL journal");
  pthread_mutex_lock(&j->mu);
  if ((rc = ordo__j_journal_check(j)) == ORDO_OK &&
      (rc = ordo__j_gone_wait(j)) == ORDO_OK)
    rc = expire_locked(j, now_ms != 0 ? now_ms : ordo__wall_ms(), expired);
  pthread_mutex_unlock(&j->mu);
  return rc;
}

ordo_op *ordo_journal_cancel(ordo_journal *j, const char *id) {
  ordo_queue_state st;
  jwrite *w;
  ordo_op *op;
  uint64_t t;
  int rc;

  if (j == NULL || (w = calloc(1, sizeof(*w))) == NULL)
    return NULL;
  if ((op = ordo__j_join_op(j, w)) == NULL)
    return NULL;
  if (ordo_op_status(op) != ORDO_E_PENDING)
    return op; /* refused at admission: nothing cancelled */
  if (id == NULL) {
    ordo__j_jwrite_settle(w, ORDO_E_INVAL, "cancel: NULL id");
    return op;
  }
  pthread_mutex_lock(&j->mu);
  if ((rc = ordo__j_journal_check(j)) == ORDO_OK &&
      (rc = ordo__j_gone_wait(j)) == ORDO_OK &&
      (rc = ordo__j_status_locked(j, id, &st, NULL)) == ORDO_OK &&
      st == ORDO_QUEUE_UNKNOWN)
    rc = ordo__set_last_error(ORDO_E_STATE, "cancel %s: the batch is UNKNOWN: "
                              "it was sent before a restart and its verdict "
                              "will come from the ledger", id);
  t = ordo__wall_ms();
  /* The answer and the record before the queue changes: after it, a
   * failure for want of memory could only stop the journal. The op is
   * answered once the record is durable: a cancel lost in a crash would
   * let the batch go to the ledger after its caller was told it never
   * would. */
  if (rc == ORDO_OK) {
    json_t *ev = json_pack("{s:s, s:s, s:s, s:I}", "e", "cancel", "id", id,
                           "reason", "cancelled", "t", (json_int_t)t);
    if (ev != NULL)
      ordo__j_ev_ledger_id(j, ev);
    w->result = json_pack("{s:s, s:s, s:s}", "id", id, "state", "INVALID",
                          "reason", "cancelled");
    if (ev == NULL || w->result == NULL ||
        (w->value = ordo__j_record_value(ev, NULL, 0, &w->value_len)) == NULL ||
        ordo__j_jwrite_tag(w, ev) != ORDO_OK)
      rc = ordo__set_last_error(ORDO_E_NOMEM, "journal: out of memory");
    json_decref(ev);
  }
  if (rc == ORDO_OK)
    rc = ordo_queue_cancel(j->q, id, "cancelled");
  if (rc != ORDO_OK) {
    pthread_mutex_unlock(&j->mu);
    ordo__j_jwrite_settle(w, rc, ordo_last_error_message());
    return op;
  }
  ordo__j_note_finish(j, id, t);
  w->j = j;
  w->req.done = ordo__j_write_done;
  ordo__j_be64(w->name, j->next_event);
  add_req(&w->req, w->name, w->value, w->value_len);
  if (enq_send(j, w, 1) == ORDO_OK) /* settles w on failure */
    ordo__j_fin_flush(j, &id, 1);
  pthread_mutex_unlock(&j->mu);
  return op;
}

int ordo_journal_confirm_submitted(ordo_journal *j, const char *id) {
  int rc;
  if (j == NULL || id == NULL)
    return ordo__set_last_error(ORDO_E_INVAL, "confirm: NULL argument");
  pthread_mutex_lock(&j->mu);
  if ((rc = ordo__j_journal_check(j)) == ORDO_OK &&
      !ordo__j_unknown_drop(j, id))
    rc = ordo__set_last_error(ORDO_E_STATE, "batch '%s' is not UNKNOWN", id);
  pthread_mutex_unlock(&j->mu);
  return rc;
}

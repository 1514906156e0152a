/*
 * journal_ck.c — the journal's checkpoints: writing one, the forgotten-id
 * segments written with it, and reading one back at open (journal.c says
 * how the files divide the journal).
 */
#include "queue/journal_int.h"

/* ------------------------------------------------------------------------ */
/* Checkpoints                                                               */
/* ------------------------------------------------------------------------ */

/*
 * A reopen must not replay the whole history: a checkpoint writes what a
 * replay needs, as it stands before event E, and a reopen reads it and
 * then only the records from E on. Its records (category "ck", names
 * E|part): part 0 a header (version 2; counters and policies of every
 * service, the latency histogram, the next seq, the forgotten sets' hash
 * keys, where the prune stands), then parts of about CK_CHUNK bytes
 * holding every batch still in memory, in seq order, each as a 4-byte
 * length and a record in the enq record's form plus its state ("st"),
 * digest ("dg"), its finished deps ("dc" COMMITTED, "di" INVALID), and
 * for a finished one kept in memory (the batch that halted its service,
 * or one journaled before records were tagged) its reason and "halts".
 * The text is written with jsonw.h, not jansson: the checkpoint is built
 * under the journal's lock. Finished batches that may go are forgotten by
 * it (their records are on disk before it: it is chained after them).
 * The forgotten sets go in a segment written with it (see "Forgotten-id
 * segments"); version 1 had them whole as parts 1 and 2 and a part per
 * batch, and is still read.
 *
 * One storage transaction deletes the last checkpoint's records and adds
 * the new ones and its segment, so a crash leaves one of the two whole.
 * It is written through the chain like every record: if one before it
 * failed, it fails too, and the journal recovers from the checkpoint
 * before it. Once it is durable, the log below E is pruned of what
 * nothing reads any more (the untagged records: takes, policies, resumes,
 * and records from before tags), PRUNE_DELETES at a time behind the other
 * writes; tagged records stay for the status of finished batches. The
 * journal keeps the events of the untagged records it wrote (and the
 * checkpoint those not pruned yet), so the prune deletes them by name;
 * only records from before that (an older journal, or after a write
 * failure) are found by a scan of the log.
 *
 * When: after checkpoint_records records or checkpoint_ms with any record
 * (at a take or an enqueue), and at a clean close (so that a restart reads
 * the checkpoint alone).
 */

typedef struct ck_build {
  ordo_journal *j;
  ordo_storage_req *subs;
  unsigned char (*names)[JOURNAL_CK_NAME];
  unsigned char **values;
  size_t n, cap;
  uint64_t E;
  size_t nbatches;
  /* the part being filled: each batch's record as a 4-byte big-endian
   * length, then the record */
  ordo__jsonw chunk;
  uint32_t nparts; /* parts of batches put so far */
  /* finished batches it forgot (into the sets, not the checkpoint) that
   * the journal has not counted yet: a reopen counts them as forgotten */
  unsigned long long forgot;
} ck_build;

void ordo__j_ck_name(unsigned char out[JOURNAL_CK_NAME], uint64_t E,
                     uint32_t part) {
  ordo__j_be64(out, E);
  out[8] = (unsigned char)(part >> 24);
  out[9] = (unsigned char)(part >> 16);
  out[10] = (unsigned char)(part >> 8);
  out[11] = (unsigned char)part;
}

/* Room for one more request in c (its name, its value slot). */
static int ck_grow(ck_build *c) {
  if (c->n == c->cap) {
    size_t nc = c->cap ? c->cap * 2 : 64;
    ordo_storage_req *s = realloc(c->subs, nc * sizeof(*s));
    if (s == NULL)
      return ORDO_E_NOMEM;
    c->subs = s;
    unsigned char(*nm)[JOURNAL_CK_NAME] = realloc(c->names, nc * sizeof(*nm));
    if (nm == NULL)
      return ORDO_E_NOMEM;
    c->names = nm;
    unsigned char **v = realloc(c->values, nc * sizeof(*v));
    if (v == NULL)
      return ORDO_E_NOMEM;
    c->values = v;
    c->cap = nc;
  }
  memset(&c->subs[c->n], 0, sizeof(c->subs[c->n]));
  c->values[c->n] = NULL;
  return ORDO_OK;
}

/* Add part `part` of the new checkpoint with value (taken). */
static int ck_put(ck_build *c, uint32_t part, unsigned char *value,
                  size_t len) {
  ordo_storage_req *r;
  if (ck_grow(c) != ORDO_OK) {
    free(value);
    return ORDO_E_NOMEM;
  }
  r = &c->subs[c->n];
  ordo__j_ck_name(c->names[c->n], c->E, part);
  c->values[c->n] = value;
  r->opcode = ORDO_STORAGE_ADD;
  r->rec.category.data = (unsigned char *)JOURNAL_CK_CATEGORY;
  r->rec.category.len = strlen(JOURNAL_CK_CATEGORY);
  r->rec.name.data = c->names[c->n];
  r->rec.name.len = JOURNAL_CK_NAME;
  r->rec.value.data = value;
  r->rec.value.len = len;
  c->n++;
  return ORDO_OK;
}

static void hex_of(const unsigned char *b, size_t n, char *out) {
  static const char h[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = h[b[i] >> 4];
    out[2 * i + 1] = h[b[i] & 15];
  }
  out[2 * n] = '\0';
}

static int unhex(const char *s, unsigned char *out, size_t n) {
  for (size_t i = 0; i < n; i++) {
    int v = 0;
    for (int k = 0; k < 2; k++) {
      char ch = s[2 * i + k];
      v <<= 4;
      if (ch >= '0' && ch <= '9')
        v |= ch - '0';
      else if (ch >= 'a' && ch <= 'f')
        v |= ch - 'a' + 10;
      else
        return -1;
    }
    out[i] = (unsigned char)v;
  }
  return s[2 * n] == '\0' ? 0 : -1;
}

/* Put the part being filled, if it holds anything. */
static int ck_chunk_flush(ck_build *c) {
  int rc;
  if (c->chunk.err != ORDO_OK)
    return c->chunk.err;
  if (c->chunk.len == 0)
    return ORDO_OK;
  rc = ck_put(c, ++c->nparts, c->chunk.buf, c->chunk.len);
  memset(&c->chunk, 0, sizeof c->chunk); /* ck_put took it (or freed it) */
  return rc;
}

/* Write the names as JSON strings, comma-separated, into w. */
static void jsonw_strs(ordo__jsonw *w, const char *const *v, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (i > 0)
      ordo__jsonw_raw(w, ",", 1);
    ordo__jsonw_cstr(w, v[i]);
  }
}

/* A batch of the snapshot: into a part of the checkpoint, or (a finished
 * one that may go) into the forgotten sets. */
static int ck_batch(const ordo_queue_saved *b, void *ud) {
  ck_build *c = ud;
  ordo_journal *j = c->j;
  ordo__jsonw *w = &c->chunk;
  size_t start, i, len;
  int fin = b->state == ORDO_QUEUE_COMMITTED || b->state == ORDO_QUEUE_INVALID;

  if (fin && !b->halts && b->seq >= j->tagged_seq) {
    int rc = ordo__j_gone_put(j, b->id, b->ledger_id,
                              b->state == ORDO_QUEUE_INVALID);
    c->forgot += rc == ORDO_OK;
    return rc;
  }
  /* The enq record's form plus its state: a 4-byte length (set below),
   * the JSON, then a NUL and the payload when it has one. */
  start = w->len;
  ordo__jsonw_raw(w, "\0\0\0\0{\"e\":\"enq\"", 14);
  ordo__jsonw_key(w, 0, "id");
  ordo__jsonw_cstr(w, b->id);
  ordo__jsonw_key(w, 0, "service");
  ordo__jsonw_cstr(w, b->service);
  for (int wr = 0; wr < 2; wr++) {
    int any = 0;
    ordo__jsonw_key(w, 0, wr ? "writes" : "reads");
    ordo__jsonw_raw(w, "[", 1);
    /* An address cut inside a UTF-8 character: ORDO_E_INVAL, no
     * checkpoint. */
    for (i = 0; i < b->naddrs; i++)
      if ((b->writes[i] != 0) == wr) {
        if (any++)
          ordo__jsonw_raw(w, ",", 1);
        ordo__jsonw_str(w, b->addrs[i], b->lens[i]);
      }
    ordo__jsonw_raw(w, "]", 1);
  }
  if (b->ndeps > 0) {
    ordo__jsonw_key(w, 0, "deps");
    ordo__jsonw_raw(w, "[", 1);
    jsonw_strs(w, b->deps, b->ndeps);
    ordo__jsonw_raw(w, "]", 1);
  }
  if (b->ledger_id != NULL) {
    ordo__jsonw_key(w, 0, "ledger_id");
    ordo__jsonw_cstr(w, b->ledger_id);
  }
  ordo__jsonw_key(w, 0, "seq");
  ordo__jsonw_uint(w, b->seq);
  ordo__jsonw_key(w, 0, "t");
  ordo__jsonw_uint(w, b->time_ms);
  ordo__jsonw_key(w, 0, "st");
  ordo__jsonw_cstr(w, ordo_queue_state_name(b->state));
  if (b->digest != NULL) {
    char hx[2 * ORDO_QUEUE_DIGEST_BYTES + 1];
    hex_of(b->digest, ORDO_QUEUE_DIGEST_BYTES, hx);
    ordo__jsonw_key(w, 0, "dg");
    ordo__jsonw_cstr(w, hx);
  }
  if (b->reason != NULL) {
    ordo__jsonw_key(w, 0, "reason");
    ordo__jsonw_cstr(w, b->reason);
  }
  if (b->halts)
    ordo__jsonw_raw(w, ",\"halts\":true", 13);
  if (b->finish_ms != 0) {
    ordo__jsonw_key(w, 0, "tf");
    ordo__jsonw_uint(w, b->finish_ms);
  }
  /* Its deps that have finished, by how: what a reopen that has not read
   * the forgotten sets yet needs to load it (see "Forgotten-id
   * segments"). */
  for (int want = 0; want < 2 && !fin; want++) {
    int any = 0;
    for (i = 0; i < b->ndeps; i++) {
      ordo_queue_state ds;
      int f;
      if (ordo_queue_batch_status(j->q, b->deps[i], &ds, NULL) == ORDO_OK)
        f = ds == ORDO_QUEUE_COMMITTED ? 0 : ds == ORDO_QUEUE_INVALID ? 1 : -1;
      else
        f = ordo__idset_get(&j->gone_ids, b->deps[i]);
      if (f != want)
        continue;
      if (any++ == 0) {
        ordo__jsonw_key(w, 0, want ? "di" : "dc");
        ordo__jsonw_raw(w, "[", 1);
      } else {
        ordo__jsonw_raw(w, ",", 1);
      }
      ordo__jsonw_cstr(w, b->deps[i]);
    }
    if (any)
      ordo__jsonw_raw(w, "]", 1);
  }
  ordo__jsonw_raw(w, "}", 1);
  if (b->payload_len > 0) {
    ordo__jsonw_raw(w, "", 1); /* the NUL */
    ordo__jsonw_raw(w, b->payload, b->payload_len);
  }
  if (w->err != ORDO_OK)
    return w->err;
  len = w->len - start - 4;
  if (len > UINT32_MAX)
    return ORDO_E_INVAL;
  w->buf[start] = (unsigned char)(len >> 24);
  w->buf[start + 1] = (unsigned char)(len >> 16);
  w->buf[start + 2] = (unsigned char)(len >> 8);
  w->buf[start + 3] = (unsigned char)len;
  c->nbatches++;
  return w->len >= CK_CHUNK ? ck_chunk_flush(c) : ORDO_OK;
}

/* A "name":unsigned member. */
static void jsonw_num(ordo__jsonw *w, int first, const char *key, uint64_t v) {
  ordo__jsonw_key(w, first, key);
  ordo__jsonw_uint(w, v);
}

/*
 * The header (part 0): the counters, each service as [name, committed,
 * invalid, halt, max_in_flight, dep_timeout_ms, last_ms, operator_halt?]
 * (the last only for a service halted by the operator: the reason given,
 * "" for none; older checkpoints have none, and readers ignore it), the
 * latency
 * histogram as [bucket, count] pairs, the forgotten sets' hash keys, the
 * prune's place ("pruned", "track_from") and the untagged records it has
 * still to delete, as [first, count] runs of consecutive events, for the
 * reopen that goes on tracking them. malloc'd text in *len bytes, or NULL
 * (out of memory, or a service name that is not UTF-8).
 */
static unsigned char *ck_header(ordo_journal *j, ck_build *c, size_t *len) {
  ordo__jsonw w;
  const char **names;
  size_t n = ordo_queue_service_names(j->q, NULL, 0), i, k;
  char hx[2 * sizeof j->gone_ids.key + 1];

  memset(&w, 0, sizeof w);
  if ((names = calloc(n > 0 ? n : 1, sizeof(*names))) == NULL)
    return NULL;
  (void)ordo_queue_service_names(j->q, names, n);
  ordo__jsonw_raw(&w, "{", 1);
  jsonw_num(&w, 1, "v", 2);
  jsonw_num(&w, 0, "E", c->E);
  jsonw_num(&w, 0, "next_seq", ordo_queue_next_seq(j->q));
  jsonw_num(&w, 0, "tagged_seq", j->tagged_seq);
  jsonw_num(&w, 0, "forgotten", j->forgotten + c->forgot);
  jsonw_num(&w, 0, "nbatches", c->nbatches);
  jsonw_num(&w, 0, "nparts", c->nparts);
  jsonw_num(&w, 0, "nlat", j->nlat);
  jsonw_num(&w, 0, "exp_cursor", j->exp_cursor);
  jsonw_num(&w, 0, "expired", j->expired);
  jsonw_num(&w, 0, "pruned", j->ck_pruned);
  jsonw_num(&w, 0, "track_from", j->track_from);
  ordo__jsonw_key(&w, 0, "services");
  ordo__jsonw_raw(&w, "[", 1);
  for (i = 0; i < n; i++) {
    ordo_queue_service_info si;
    ordo_queue_service_policy pol;
    if (ordo_queue_service_status(j->q, names[i], &si) != ORDO_OK ||
        ordo_queue_get_policy(j->q, names[i], &pol) != ORDO_OK) {
      w.err = ORDO_E_QUEUE;
      break;
    }
    ordo__jsonw_raw(&w, i > 0 ? ",[" : "[", i > 0 ? 2 : 1);
    ordo__jsonw_cstr(&w, names[i]);
    ordo__jsonw_raw(&w, ",", 1);
    ordo__jsonw_uint(&w, si.committed);
    ordo__jsonw_raw(&w, ",", 1);
    ordo__jsonw_uint(&w, si.invalid);
    ordo__jsonw_raw(&w,
                    pol.on_invalid == ORDO_QUEUE_HALT ? ",true," : ",false,",
                    pol.on_invalid == ORDO_QUEUE_HALT ? 6 : 7);
    ordo__jsonw_uint(&w, pol.max_in_flight);
    ordo__jsonw_raw(&w, ",", 1);
    ordo__jsonw_uint(&w, pol.dep_timeout_ms);
    ordo__jsonw_raw(&w, ",", 1);
    ordo__jsonw_uint(&w, ordo_queue_service_last(j->q, names[i]));
    if (si.halt_note != NULL) { /* halted by the operator: the reason */
      ordo__jsonw_raw(&w, ",", 1);
      ordo__jsonw_cstr(&w, si.halt_note);
    }
    ordo__jsonw_raw(&w, "]", 1);
  }
  free(names);
  ordo__jsonw_raw(&w, "]", 1);
  ordo__jsonw_key(&w, 0, "lat");
  ordo__jsonw_raw(&w, "[", 1);
  for (i = 0, k = 0; i < 256; i++)
    if (j->lat[i] != 0) {
      ordo__jsonw_raw(&w, k > 0 ? ",[" : "[", k > 0 ? 2 : 1);
      k++;
      ordo__jsonw_uint(&w, i);
      ordo__jsonw_raw(&w, ",", 1);
      ordo__jsonw_uint(&w, j->lat[i]);
      ordo__jsonw_raw(&w, "]", 1);
    }
  ordo__jsonw_raw(&w, "]", 1);
  ordo__jsonw_key(&w, 0, "keys");
  hex_of(j->gone_ids.key, sizeof j->gone_ids.key, hx);
  ordo__jsonw_raw(&w, "{\"ids\":", 7);
  ordo__jsonw_cstr(&w, hx);
  hex_of(j->gone_lids.key, sizeof j->gone_lids.key, hx);
  ordo__jsonw_raw(&w, ",\"lids\":", 8);
  ordo__jsonw_cstr(&w, hx);
  ordo__jsonw_raw(&w, "}", 1);
  ordo__jsonw_key(&w, 0, "untagged");
  ordo__jsonw_raw(&w, "[", 1);
  for (i = 0; i < j->nuntagged;) {
    for (k = i + 1;
         k < j->nuntagged && j->untagged[k] == j->untagged[k - 1] + 1; k++)
      ;
    ordo__jsonw_raw(&w, i > 0 ? ",[" : "[", i > 0 ? 2 : 1);
    ordo__jsonw_uint(&w, j->untagged[i]);
    ordo__jsonw_raw(&w, ",", 1);
    ordo__jsonw_uint(&w, k - i);
    ordo__jsonw_raw(&w, "]", 1);
    i = k;
  }
  ordo__jsonw_raw(&w, "]}", 2);
  if (w.err != ORDO_OK) {
    free(w.buf);
    return NULL;
  }
  *len = w.len;
  return w.buf;
}

static void ck_build_free(ck_build *c) {
  free(c->chunk.buf);
  for (size_t i = 0; i < c->n; i++)
    free(c->values[i]);
  free(c->subs);
  free(c->names);
  free(c->values);
}

/* Under j->mu: whether a checkpoint is due. */
int ordo__j_ck_due(ordo_journal *j) {
  uint64_t tail;
  if (j->ck_never || j->ck_pending || j->failed != ORDO_OK || j->recovering ||
      j->st == NULL || !j->gone_loaded)
    return 0;
  tail = j->next_event - (j->ck_event > 0 ? j->ck_event : 1);
  return tail >= j->ck_every_records ||
         (tail > 0 && ordo__wall_ms() - j->ck_wall_ms >= j->ck_every_ms);
}

/*
 * Under j->mu: write a checkpoint of the state before event next_event.
 * ORDO_OK when it was submitted (it completes behind the records before
 * it), or the reason none was (nothing changes then but the forgotten
 * sets, which only gain batches that may go).
 */
int ordo__j_journal_checkpoint(ordo_journal *j) {
  ck_build c;
  jwrite *w;
  unsigned char *v;
  size_t len, i, k, total;
  int rc;

  memset(&c, 0, sizeof c);
  c.j = j;
  c.E = j->next_event;
  j->ck_wall_ms = ordo__wall_ms(); /* tried: not again at once if it fails */
  ordo__j_journal_evict(j);
  /* Part 0 is put last (the header needs the count); reserve it. */
  if (ck_grow(&c) != ORDO_OK) {
    ck_build_free(&c);
    return ORDO_E_NOMEM;
  }
  c.n++;
  if ((rc = ordo_queue_snapshot(j->q, ck_batch, &c)) != ORDO_OK ||
      (rc = ck_chunk_flush(&c)) != ORDO_OK) {
    ck_build_free(&c);
    return rc;
  }
  {
    size_t n = c.n;
    c.n = 0;
    if ((v = ck_header(j, &c, &len)) == NULL ||
        ck_put(&c, 0, v, len) != ORDO_OK) {
      c.n = n > c.n ? n : c.n;
      ck_build_free(&c);
      return ORDO_E_NOMEM;
    }
    c.n = n;
  }
  /* The BATCH: the old checkpoint's records deleted, then the new ones,
   * then the segment of the forgotten sets (and the deletes a base
   * voids). */
  total = j->ck_parts + c.n + j->nsegs + 1;
  if ((w = calloc(1, sizeof(*w))) == NULL ||
      (w->subs = calloc(total, sizeof(*w->subs))) == NULL ||
      (w->ck_names = calloc(total, sizeof(*w->ck_names))) == NULL ||
      (w->values = calloc(total, sizeof(*w->values))) == NULL) {
    if (w != NULL) {
      free(w->subs);
      free(w->ck_names);
      free(w);
    }
    ck_build_free(&c);
    return ORDO_E_NOMEM;
  }
  for (k = 0; k < j->ck_parts; k++) {
    ordo_storage_req *d = &w->subs[k];
    ordo__j_ck_name(w->ck_names[k], j->ck_event, (uint32_t)k);
    d->opcode = ORDO_STORAGE_DELETE;
    d->rec.category.data = (unsigned char *)JOURNAL_CK_CATEGORY;
    d->rec.category.len = strlen(JOURNAL_CK_CATEGORY);
    d->rec.name.data = w->ck_names[k];
    d->rec.name.len = JOURNAL_CK_NAME;
  }
  for (i = 0; i < c.n; i++, k++) {
    w->subs[k] = c.subs[i];
    memcpy(w->ck_names[k], c.names[i], JOURNAL_CK_NAME);
    w->subs[k].rec.name.data = w->ck_names[k];
    w->values[k] = c.values[i];
    c.values[i] = NULL;
  }
  if (ordo__j_seg_write(j, w, c.E, &k) != ORDO_OK) {
    w->nsubs = k;
    ordo__j_jwrite_free(w);
    c.n = 0;
    ck_build_free(&c);
    return ORDO_E_NOMEM;
  }
  w->nsubs =
      k; /* ordo__j_jwrite_free frees values[0..k): the deletes' are NULL */
  w->j = j;
  w->ck_event = c.E;
  w->ck_parts = (uint32_t)c.n;
  w->req.opcode = ORDO_STORAGE_BATCH;
  w->req.batch = w->subs;
  w->req.nbatch = k;
  w->req.done = ordo__j_write_done;
  w->req.flags = ORDO_STORAGE_REQ_CHAINED;
  c.n = 0;
  ck_build_free(&c);
  if (j->st->backend->submit(j->st, &w->req) != ORDO_OK) {
    ordo__j_journal_fail(j, ORDO_E_STORAGE,
                         "the storage backend refused a journal "
                         "checkpoint");
    ordo__j_jwrite_settle(w, ORDO_E_STORAGE, j->failed_message);
    return ORDO_E_STORAGE;
  }
  j->outstanding++;
  j->ck_pending = 1;
  return ORDO_OK;
}

/* ---- reading a checkpoint back ----------------------------------------- */

/* A checkpoint of version 1 kept the sets whole, as parts 1 and 2 (the
 * hash key, then the table's slots as they were): s becomes that. */
static int ck_idset_load(ordo__idset *s, const ordo_storage_buf *v) {
  size_t cap;
  if (v->len < sizeof s->key || (v->len - sizeof s->key) % 8 != 0)
    return -1;
  cap = (v->len - sizeof s->key) / 8;
  if (cap & (cap - 1))
    return -1; /* a power of two, or 0 */
  ordo__idset_clear(s);
  memcpy(s->key, v->data, sizeof s->key);
  for (size_t i = 0; i < cap; i++) {
    uint64_t op;
    memcpy(&op, v->data + sizeof s->key + 8 * i, 8);
    if (op != 0 && ordo__idset_apply(s, &op, 1) != 0)
      return -1;
  }
  return s->n * 4 <= cap * 3 ? 0 : -1;
}

/* The sets' hash keys from a checkpoint's header ({"ids","lids"}: hex):
 * the segments hold members hashed under them. 0, or -1 when they are
 * missing or bad, or differ from those of sets that have members (a
 * recovery's sets have them already). */
static int ck_keys(ordo_journal *j, json_t *keys) {
  const char *ik = json_string_value(json_object_get(keys, "ids")),
             *lk = json_string_value(json_object_get(keys, "lids"));
  unsigned char ikb[sizeof j->gone_ids.key], lkb[sizeof j->gone_lids.key];
  if (ik == NULL || lk == NULL || strlen(ik) != 2 * sizeof ikb ||
      strlen(lk) != 2 * sizeof lkb || unhex(ik, ikb, sizeof ikb) != 0 ||
      unhex(lk, lkb, sizeof lkb) != 0 ||
      (j->gone_ids.n > 0 && memcmp(ikb, j->gone_ids.key, sizeof ikb) != 0) ||
      (j->gone_lids.n > 0 && memcmp(lkb, j->gone_lids.key, sizeof lkb) != 0))
    return -1;
  memcpy(j->gone_ids.key, ikb, sizeof ikb);
  memcpy(j->gone_lids.key, lkb, sizeof lkb);
  return 0;
}

/* The untagged records still to prune, as ck_header wrote them before
 * event E, become j's list, tracked from track_from. 0; -1 when the runs
 * are not ascending runs below E or hold more than CK_UNTAGGED_MAX (out
 * of memory: the list is dropped, and the prune scans). */
#define CK_UNTAGGED_MAX (1u << 24)
static int ck_untagged_load(ordo_journal *j, json_t *runs, uint64_t track_from,
                            uint64_t E) {
  json_t *r;
  size_t i;
  uint64_t last = 0;
  j->nuntagged = 0;
  j->track_from = track_from;
  if (!json_is_array(runs) || track_from > E)
    return -1;
  json_array_foreach(runs, i, r) {
    json_int_t a = json_integer_value(json_array_get(r, 0)),
               n = json_integer_value(json_array_get(r, 1));
    if (json_array_size(r) != 2 || a < 0 || n < 1 || (uint64_t)a < last ||
        (uint64_t)a < track_from || (uint64_t)n > E - (uint64_t)a ||
        (uint64_t)n > CK_UNTAGGED_MAX - j->nuntagged)
      return -1;
    for (json_int_t k = 0; k < n; k++)
      ordo__j_untagged_note(j, (uint64_t)(a + k));
    if (j->track_from != track_from)
      return 0; /* dropped: out of memory */
    last = (uint64_t)(a + n);
  }
  return 0;
}

static int part_cmp(const void *a, const void *b) {
  const ordo_storage_record *x = *(const ordo_storage_record *const *)a,
                            *y = *(const ordo_storage_record *const *)b;
  return memcmp(x->name.data, y->name.data, JOURNAL_CK_NAME);
}

/* A batch of the checkpoint back into the queue; a SUBMITTED one taken
 * (into subs), a halting one's id kept for after. */
static int ck_load_batch(ordo_journal *j, const ordo_storage_record *r,
                         char ***subs, size_t *nsubs, size_t *capsubs,
                         char ***halts, size_t *nhalts, size_t *caphalts) {
  const unsigned char *payload;
  size_t payload_len;
  ordo_queue_batch_spec sp;
  unsigned char dg[ORDO_QUEUE_DIGEST_BYTES];
  const char *st, *hx;
  json_t *ev;
  int rc;

  if ((ev = ordo__j_record_event(r, 0, NULL, &payload, &payload_len)) == NULL)
    return ordo__set_last_error(ORDO_E_QUEUE, "checkpoint: a batch record is "
                                "not JSON");
  if ((rc = ordo__j_enq_spec_parse(ev, payload, payload_len, &sp)) != ORDO_OK) {
    json_decref(ev);
    return rc == ORDO_E_NOMEM
               ? rc
               : ordo__set_last_error(ORDO_E_QUEUE, "checkpoint: a batch: %s",
                                      ordo_last_error_message());
  }
  st = json_string_value(json_object_get(ev, "st"));
  hx = json_string_value(json_object_get(ev, "dg"));
  if (hx != NULL) {
    if (strlen(hx) != 2 * ORDO_QUEUE_DIGEST_BYTES ||
        unhex(hx, dg, ORDO_QUEUE_DIGEST_BYTES) != 0)
      rc = ordo__set_last_error(ORDO_E_QUEUE, "checkpoint: %s: bad digest",
                                sp.id);
    sp.digest = dg;
  }
  if (rc == ORDO_OK && st == NULL)
    rc = ordo__set_last_error(ORDO_E_QUEUE, "checkpoint: %s: no state", sp.id);
  /* Its finished deps, until the sets hold every segment (they are in
   * them): not logged, as they are on disk already. */
  for (int f = 0; f < 2 && rc == ORDO_OK && !j->gone_loaded; f++) {
    json_t *a = json_object_get(ev, f ? "di" : "dc"), *d;
    size_t k;
    json_array_foreach(a, k, d) {
      if (!json_is_string(d))
        rc = ordo__set_last_error(ORDO_E_QUEUE, "checkpoint: %s: a bad "
                                  "finished dep", sp.id);
      else if (ordo__idset_put(&j->gone_ids, json_string_value(d),
                               (unsigned)f) != 0)
        rc = ORDO_E_NOMEM;
      if (rc != ORDO_OK)
        break;
    }
  }
  if (rc == ORDO_OK && (strcmp(st, "COMMITTED") == 0 ||
                        strcmp(st, "INVALID") == 0)) {
    ordo_queue_state fs = st[0] == 'C' ? ORDO_QUEUE_COMMITTED
                                       : ORDO_QUEUE_INVALID;
    rc = ordo_queue_enqueue_finished(
        j->q, &sp, fs, json_string_value(json_object_get(ev, "reason")), 0);
    if (rc == ORDO_E_EXISTS) {
      /* A later batch named it as a dep before it was enqueued: known by
       * its hash, as any batch that went. */
      rc = ordo__j_gone_put(j, sp.id, NULL, fs == ORDO_QUEUE_INVALID);
    } else if (rc == ORDO_OK &&
               (json_is_integer(json_object_get(ev, "tf")) &&
                (rc = ordo_queue_set_finish_time(
                     j->q, sp.id,
                     (uint64_t)json_integer_value(
                         json_object_get(ev, "tf")))) != ORDO_OK)) {
      /* rc set */
    } else if (rc == ORDO_OK && json_is_true(json_object_get(ev, "halts"))) {
      char *c = ordo__strdup(sp.id);
      if (c == NULL || ordo__j_strlist_push(halts, nhalts, caphalts, c) != 0) {
        free(c);
        rc = ORDO_E_NOMEM;
      }
    }
  } else if (rc == ORDO_OK) {
    if ((rc = ordo_queue_enqueue(j->q, &sp, NULL)) == ORDO_OK &&
        strcmp(st, "SUBMITTED") == 0) {
      char *c = ordo__strdup(sp.id);
      if ((rc = ordo_queue_take_id(j->q, sp.id, NULL)) == ORDO_OK &&
          (c == NULL || ordo__j_strlist_push(subs, nsubs, capsubs, c) != 0))
        rc = ORDO_E_NOMEM;
      if (rc != ORDO_OK)
        free(c);
    }
  }
  if (rc != ORDO_OK && rc != ORDO_E_NOMEM)
    rc = ordo__set_last_error(ORDO_E_QUEUE, "checkpoint: batch %s: %s", sp.id,
                              ordo_last_error_message());
  ordo__j_enq_spec_free(&sp);
  json_decref(ev);
  return rc;
}

/*
 * Replay the newest checkpoint in recs[0..n) (category "ck") into j->q;
 * *E gets its event (0: none) and *parts its records. The batches it
 * finds SUBMITTED are taken and added to subs.
 */
int ordo__j_ck_load(ordo_journal *j, ordo_storage_record *recs, size_t n,
                    char ***subs, size_t *nsubs, size_t *capsubs, uint64_t *E,
                    uint32_t *parts) {
  ordo_storage_record **v = NULL;
  char **halts = NULL;
  size_t nv = 0, i, nhalts = 0, caphalts = 0, first;
  uint64_t best = 0;
  json_t *h = NULL, *a;
  int rc = ORDO_OK, version = 0;

  *E = 0;
  *parts = 0;
  for (i = 0; i < n; i++) {
    if (recs[i].name.len != JOURNAL_CK_NAME)
      return ordo__set_last_error(ORDO_E_QUEUE, "checkpoint: a record with a "
                                  "bad name");
    if (ordo__j_rd64(recs[i].name.data) > best)
      best = ordo__j_rd64(recs[i].name.data);
  }
  if (best == 0)
    return ORDO_OK;
  if ((v = calloc(n, sizeof(*v))) == NULL)
    return ordo__set_last_error(ORDO_E_NOMEM, NULL);
  for (i = 0; i < n; i++)
    if (ordo__j_rd64(recs[i].name.data) == best)
      v[nv++] = &recs[i];
  qsort(v, nv, sizeof(*v), part_cmp);
  for (i = 0; i < nv; i++)
    if (((uint32_t)v[i]->name.data[8] << 24 |
         (uint32_t)v[i]->name.data[9] << 16 |
         (uint32_t)v[i]->name.data[10] << 8 | v[i]->name.data[11]) != i) {
      rc = ordo__set_last_error(ORDO_E_QUEUE,
                                "checkpoint %llu: part %zu is "
                                "missing",
                                (unsigned long long)best, i);
      goto out;
    }
  /* Version 1 had the forgotten sets whole in parts 1 and 2; version 2
   * has them in segments, its batches from part 1 on. */
  if (nv >= 1 && (h = json_loadb((const char *)v[0]->value.data,
                                 v[0]->value.len, 0, NULL)) != NULL)
    version = (int)json_integer_value(json_object_get(h, "v"));
  /* Version 1 had one part per batch; version 2 has parts of several. */
  first = version == 1 ? 3 : 1;
  if (h == NULL || (version != 1 && version != 2) || nv < first ||
      (uint64_t)json_integer_value(json_object_get(h, "E")) != best ||
      (size_t)json_integer_value(
          json_object_get(h, version == 1 ? "nbatches" : "nparts")) +
              first !=
          nv) {
    rc = ordo__set_last_error(ORDO_E_QUEUE, "checkpoint %llu: a bad header or "
                              "a part too many or too few",
                              (unsigned long long)best);
    goto out;
  }
  if (version == 1) {
    if (ck_idset_load(&j->gone_ids, &v[1]->value) != 0 ||
        ck_idset_load(&j->gone_lids, &v[2]->value) != 0) {
      rc = ordo__set_last_error(ORDO_E_QUEUE, "checkpoint %llu: a bad id "
                                "table", (unsigned long long)best);
      goto out;
    }
    /* Whole now, and no segment on disk yet: the next checkpoint writes
     * a base. */
    j->gone_loaded = 1;
    j->seg_base_due = 1;
  } else if (ck_keys(j, json_object_get(h, "keys")) != 0) {
    rc = ordo__set_last_error(ORDO_E_QUEUE, "checkpoint %llu: bad or missing "
                              "hash keys", (unsigned long long)best);
    goto out;
  }
  json_array_foreach(json_object_get(h, "services"), i, a) {
    /* [name, committed, invalid, halt, max_in_flight, dep_timeout_ms,
     * last_ms, operator_halt?]; an object with those keys before. */
    static const char *const keys[] = {"name", "committed", "invalid", "halt",
                                       "max_in_flight", "dep_timeout_ms",
                                       "last_ms", "operator_halt"};
    json_t *f[8];
    for (size_t k = 0; k < 8; k++)
      f[k] = json_is_array(a) ? json_array_get(a, k)
                              : json_object_get(a, keys[k]);
    const char *name = json_string_value(f[0]);
    if (name == NULL ||
        ordo_queue_set_policy(
            j->q, name, json_is_true(f[3]) ? ORDO_QUEUE_HALT : ORDO_QUEUE_SKIP,
            (unsigned)json_integer_value(f[4]),
            (uint64_t)json_integer_value(f[5])) != ORDO_OK ||
        ordo_queue_add_counts(j->q, name, (size_t)json_integer_value(f[1]),
                              (size_t)json_integer_value(f[2])) != ORDO_OK ||
        (f[7] != NULL && (!json_is_string(f[7]) ||
                          ordo_queue_halt(j->q, name,
                                          json_string_value(f[7])) !=
                              ORDO_OK))) {
      rc = ordo__set_last_error(ORDO_E_QUEUE, "checkpoint %llu: a bad service",
                                (unsigned long long)best);
      goto out;
    }
    ordo_queue_service_touch(j->q, name, (uint64_t)json_integer_value(f[6]));
  }
  json_array_foreach(json_object_get(h, "lat"), i, a) {
    json_int_t b = json_integer_value(json_array_get(a, 0));
    if (b >= 0 && b < 256)
      j->lat[b] = (unsigned long long)json_integer_value(json_array_get(a, 1));
  }
  j->nlat = (unsigned long long)json_integer_value(json_object_get(h, "nlat"));
  j->forgotten =
      (unsigned long long)json_integer_value(json_object_get(h, "forgotten"));
  j->exp_cursor =
      (uint64_t)json_integer_value(json_object_get(h, "exp_cursor"));
  j->expired =
      (unsigned long long)json_integer_value(json_object_get(h, "expired"));
  j->ck_pruned = (uint64_t)json_integer_value(json_object_get(h, "pruned"));
  /* Where the prune stands is only a shortcut: a list that does not make
   * sense is dropped, and the first prune after the open scans instead. */
  if (json_is_integer(json_object_get(h, "track_from")) &&
      ck_untagged_load(j, json_object_get(h, "untagged"),
                       (uint64_t)json_integer_value(
                           json_object_get(h, "track_from")),
                       best) != 0) {
    j->nuntagged = 0;
    j->track_from = UINT64_MAX; /* set after the replay */
  }
  {
    size_t loaded = 0;
    for (i = first; i < nv && rc == ORDO_OK; i++) {
      if (version == 1) {
        rc = ck_load_batch(j, v[i], subs, nsubs, capsubs, &halts, &nhalts,
                           &caphalts);
        loaded++;
        continue;
      }
      /* A part of batches: each a 4-byte length, then its record. */
      for (size_t off = 0; off < v[i]->value.len && rc == ORDO_OK;) {
        const unsigned char *p = v[i]->value.data + off;
        ordo_storage_record one;
        size_t len;
        if (v[i]->value.len - off < 4 ||
            (len = (size_t)p[0] << 24 | (size_t)p[1] << 16 |
                   (size_t)p[2] << 8 | p[3]) > v[i]->value.len - off - 4) {
          rc = ordo__set_last_error(ORDO_E_QUEUE, "checkpoint %llu: part %zu "
                                    "is cut short",
                                    (unsigned long long)best, i);
          break;
        }
        memset(&one, 0, sizeof one);
        one.value.data = (unsigned char *)p + 4;
        one.value.len = len;
        rc = ck_load_batch(j, &one, subs, nsubs, capsubs, &halts, &nhalts,
                           &caphalts);
        loaded++;
        off += 4 + len;
      }
    }
    if (rc == ORDO_OK &&
        loaded != (size_t)json_integer_value(json_object_get(h, "nbatches")))
      rc = ordo__set_last_error(ORDO_E_QUEUE, "checkpoint %llu: %zu batches, "
                                "not the %lld it says",
                                (unsigned long long)best, loaded,
                                (long long)json_integer_value(
                                    json_object_get(h, "nbatches")));
  }
  for (i = 0; i < nhalts && rc == ORDO_OK; i++)
    if (ordo_queue_halt_by(j->q, halts[i]) != ORDO_OK)
      rc = ordo__set_last_error(ORDO_E_QUEUE, "checkpoint: %s",
                                ordo_last_error_message());
  if (rc == ORDO_OK) {
    ordo_queue_set_next_seq(
        j->q, (uint64_t)json_integer_value(json_object_get(h, "next_seq")));
    *E = best;
    *parts = (uint32_t)nv;
  }
out:
  ordo__j_strlist_free(&halts, &nhalts, &caphalts);
  json_decref(h);
  free(v);
  return rc;
}

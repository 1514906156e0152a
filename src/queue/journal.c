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
 * Lock order: j->mu only. It is never held while an op is resumed or a
 * storage request is completed; the storage backend's submit is called under
 * it (submit only queues).
 */
#include "base/base.h"
#include "queue/queue.h"
#include "queue/idset.h"
#include "queue/jsonw.h"
#include "runtime/runtime.h"
#include "storage/storage.h"

#include <jansson.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define JOURNAL_CATEGORY "ev"
#define JOURNAL_META_KEY "ordo.journal"
#define JOURNAL_FORMAT "1"
/* The first seq whose records carry the "id" tag: batches from it on may
 * leave memory once finished (their records can be found by id). */
#define JOURNAL_TAGGED_KEY "ordo.journal.tagged_seq"
#define JOURNAL_ID_TAG "id"
/* Checkpoint records: category "ck", name the 8-byte big-endian event
 * number E the checkpoint is the state before, then a 4-byte part. */
#define JOURNAL_CK_CATEGORY "ck"
#define JOURNAL_CK_NAME 12
/* Segments of the forgotten sets: category "ckid", name be64(E) of the
 * checkpoint written with each (see "Forgotten-id segments"). */
#define JOURNAL_SEG_CATEGORY "ckid"
#define SEG_MAX 64
#define SEG_BASE_SLACK (1u << 20)
#define CK_DEFAULT_RECORDS 100000
#define CK_DEFAULT_MS 300000
#define RETAIN_DEFAULT_COUNT 5000000ull
#define RETAIN_DEFAULT_MS (7ull * 24 * 3600 * 1000)
#define SERVICE_IDLE_DEFAULT_MS (3600ull * 1000)
#define PRUNE_PAGE 512
/* Deletes by name a prune sends at once: each transaction of them holds
 * up the records behind it on the storage thread, so a few hundred
 * microseconds' worth. */
#define PRUNE_DELETES 64
/* A checkpoint's batches go in parts of about this many bytes: few rows
 * to write and delete (a row per batch made the checkpoint's transaction
 * the longest wait on the storage thread), none too long to hold. */
#define CK_CHUNK (256u << 10)
/* The longest journal path taken: PATH.lock must fit PATH_MAX (4096). */
#define JOURNAL_PATH_MAX (4096 - (int)sizeof ".lock")

enum { JW_INIT = 0, JW_STORED, JW_PARKED };

typedef struct jwrite jwrite;

struct ordo_journal {
  ordo_ctx *ctx;
  ordo_storage *st;
  pthread_mutex_t mu; /* guards everything below */
  ordo_queue *q;
  uint64_t next_event;
  /* Batches SUBMITTED before the last restart, not settled yet: the ids in
   * seq order (unknown[unknown_head..unknown_slots); an id no longer in
   * unknown_set is settled, its slot freed once all are), the set (id ->
   * true), and how many each service has (name -> integer). Lookups and
   * settling are O(1): with 100k in flight at a crash, a linear search per
   * status call made recovery quadratic. */
  char **unknown;
  size_t unknown_head, unknown_slots;
  size_t nunknown; /* the live ones */
  json_t *unknown_set, *unknown_svc;
  /* enqueue -> verdict latency of the batches finished, in ms: a log
   * histogram with 4 sub-buckets per power of two (25 % resolution) */
  unsigned long long lat[256], nlat;
  int failed;           /* first write failure, or ORDO_OK */
  char *failed_message; /* its detail */
  /* Recovery from a failed write (see "Write failures" below). */
  uint64_t fail_event;  /* failed: the first event not on disk */
  size_t outstanding;   /* records submitted whose done has not run */
  int recovering;       /* a recovery's storage request is out */
  uint64_t retry_ms;    /* no new recovery before this (wall ms) */
  unsigned recover_pause_ms; /* after a failed recovery, doubling */
  pthread_cond_t idle_cv; /* broadcast when outstanding reaches 0 and when
                             a recovery ends */
  char **redo;          /* JSON of note events (fin, resume, policy) that
                           did not reach the disk, in event order */
  size_t nredo, capredo;
  ordo_queue **old_q;   /* queues replaced by a recovery: item pointers
                           handed out stay valid until close */
  size_t nold_q;
  ordo_queue_options qopt; /* the queue's options, for a rebuild */
  uint64_t quiet_ms;    /* a recovery waits for this long without a
                           failure or a refused enqueue (see below) */
  uint64_t quiet_until; /* wall ms */
  unsigned long long records;
  int lock_fd; /* flock on PATH.lock: one process per journal (-1: none) */
  /* Forgetting finished batches (see "Forgetting" below). */
  ordo__idset gone_ids;  /* forgotten ids; flag 1: INVALID, 0: COMMITTED */
  ordo__idset gone_lids; /* their ledger ids */
  /* How the sets reach the disk (see "Forgotten-id segments"). */
  ordo__idlog ids_log, lids_log; /* ops since the last checkpoint's */
  int gone_loaded;       /* the sets hold every segment */
  int gone_loading;      /* the SCAN of the segments is out */
  unsigned gone_gen;     /* a load of another generation is stale */
  uint64_t *segs;        /* the segments on disk: their E, in order */
  size_t nsegs, capsegs;
  size_t seg_ops;        /* the ops they hold */
  int seg_base_due;      /* the next checkpoint writes the sets whole */
  char **evict;          /* finished, every record of it durable: may go */
  size_t nevict, capevict;
  char **fin_pending;    /* finished by the queue call under way (hook) */
  size_t nfin_pending, capfin_pending;
  int replaying;         /* the hook files what finishes as durable */
  uint64_t tagged_seq;   /* JOURNAL_TAGGED_KEY */
  unsigned long long forgotten;
  /* Checkpoints (see "Checkpoints" below). */
  uint64_t ck_event;     /* the durable checkpoint's E (0: none) */
  uint32_t ck_parts;     /* its records */
  unsigned long long ck_every_records;
  uint64_t ck_every_ms;
  int ck_never;
  uint64_t ck_wall_ms;   /* when the last one was made (or the open) */
  int ck_pending;        /* one is being written */
  int pruning;           /* the log below ck_event is being pruned */
  uint64_t ck_pruned;    /* below this event the log is pruned */
  /* The untagged records at or after track_from, durable and not pruned
   * yet, in event order: the prune deletes them by name. Those before
   * track_from it finds by a scan. unt_gen changes when the list is
   * dropped (a prune's page of it is then void). */
  uint64_t *untagged;
  size_t nuntagged, capuntagged;
  uint64_t track_from;
  unsigned unt_gen;
  /* Retention (see "retention" below). */
  unsigned long long ret_count;
  uint64_t ret_ms;
  uint64_t exp_cursor;   /* the event the next pass starts at */
  uint64_t exp_wall_ms;  /* when the last pass started */
  int expiring;
  unsigned long long expired;
  uint64_t svc_idle_ms;  /* a service empty this long leaves memory */
  uint64_t svc_wall_ms;  /* when the queue was last asked to drop some */
  unsigned long long services_dropped;
  int closing;           /* close has begun: no new prune step */
  unsigned long long checkpoints;
  /* Attached to the context while open: ordo_ctx_free closes the database
   * (and drops the lock) of a journal still open, st becomes NULL and
   * ctx_closed_rc keeps what its close would have returned. */
  ordo__ctx_closer closer;
  int ctx_closed_rc;
};

struct jwrite {
  ordo_storage_req req;
  ordo_journal *j;
  unsigned char name[8];
  unsigned char *value;
  size_t value_len;
  ordo_op *op;        /* the op that waits for it, or NULL */
  atomic_int phase;   /* JW_* */
  int status;         /* the write's outcome, set before phase moves */
  char *message;
  char *release_id;   /* enq: the batch to let go once durable */
  uint64_t seq;       /* enq: for the result */
  size_t ntaken;      /* sub: for the result */
  /* An enqueue of several batches (enqueue_many): one BATCH request of
   * nsubs ADDs, one transaction; every batch of release_ids let go once it
   * is durable; result the op's answer, made under j->mu. barrier: the
   * request is a read that only orders (its failure is not the
   * journal's). */
  ordo_storage_req *subs;
  unsigned char (*names)[8];
  unsigned char **values;
  size_t nsubs;
  char **release_ids;
  size_t nrelease;
  /* The "id" tag of a single record (tag_id owned), and of each record of
   * a BATCH (values borrowed from release_ids); evict: a finishing record
   * (fin, cancel, cascade), whose batch may leave memory once durable. */
  ordo_storage_tag tag;
  char *tag_id;
  int evict;
  ordo_storage_tag *subtags;
  /* A checkpoint: its E and parts, and the names of its BATCH's records
   * (the old checkpoint's deleted, the new one's added). */
  uint64_t ck_event;
  uint32_t ck_parts;
  unsigned char (*ck_names)[JOURNAL_CK_NAME];
  /* and the segment it writes: the ops (given back to the logs if it
   * fails), whether it is a base (which deletes the segments before it) */
  ordo__idlog ck_ids, ck_lids;
  int ck_seg, ck_base;
  json_t *result;
  int barrier;
  int note;           /* a fact already applied (fin, resume, policy):
                         written again after a recovery if it is lost */
};

/* ------------------------------------------------------------------------ */
/* Small helpers                                                             */
/* ------------------------------------------------------------------------ */

static void jwrite_free(void *p) {
  jwrite *w = p;
  if (w == NULL)
    return;
  free(w->value);
  free(w->message);
  free(w->release_id);
  free(w->tag_id);
  free(w->subtags);
  free(w->ck_names);
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

static void be64(unsigned char out[8], uint64_t v) {
  for (int i = 7; i >= 0; i--, v >>= 8)
    out[i] = (unsigned char)v;
}

static uint64_t rd64(const unsigned char in[8]) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++)
    v = v << 8 | in[i];
  return v;
}

static uint64_t wall_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_REALTIME, &t);
  return (uint64_t)t.tv_sec * 1000u + (uint64_t)t.tv_nsec / 1000000u;
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
static void note_finish(ordo_journal *j, const char *id, uint64_t t) {
  uint64_t enq = 0;
  (void)ordo_queue_set_finish_time(j->q, id, t);
  if (ordo_queue_batch_times(j->q, id, &enq, NULL) == ORDO_OK && enq != 0 &&
      t >= enq) {
    unsigned b = lat_bucket(t - enq);
    j->lat[b < 256 ? b : 255]++;
    j->nlat++;
  }
}

static uint64_t lat_percentile(const ordo_journal *j, double p) {
  unsigned long long want = (unsigned long long)(p * (double)j->nlat + 0.999999);
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

static void start_recovery(ordo_journal *j);

/* Under j->mu, before any change that is journaled. A failed journal
 * refuses changes until a recovery has brought memory back to what is on
 * disk (see "Write failures"). One is started here when none is running,
 * no write is still out and the pause after a failed one is over; a
 * caller that may block (not a runtime thread) waits for it, so that a
 * write made after the fault cleared goes through. */
static int journal_check_as(ordo_journal *j, int enqueue) {
  int block = !ordo__on_runtime_thread();
  uint64_t now;
  if (j->failed == ORDO_OK)
    return ORDO_OK;
  if (block)
    while (j->failed != ORDO_OK && (j->recovering || j->outstanding > 0))
      pthread_cond_wait(&j->idle_cv, &j->mu);
  now = wall_ms();
  if (j->failed != ORDO_OK && !j->recovering && j->outstanding == 0 &&
      now >= j->quiet_until && now >= j->retry_ms) {
    start_recovery(j);
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

static int journal_check(ordo_journal *j) { return journal_check_as(j, 0); }

/* Under j->mu: the first failure sticks (its message); fail_event is the
 * first event number that is not to count, ev or earlier. */
static void journal_fail_at(ordo_journal *j, int status, const char *msg,
                            uint64_t ev) {
  if (j->fail_event == 0 || ev < j->fail_event)
    j->fail_event = ev;
  j->quiet_until = wall_ms() + j->quiet_ms;
  if (j->failed != ORDO_OK)
    return;
  j->failed = status != ORDO_OK ? status : ORDO_E_STORAGE;
  j->failed_message = ordo__strdup(msg != NULL ? msg : ordo_strerror(status));
}

/* Under j->mu: memory changed, and its record (event next_event) will not
 * be written. */
static void journal_fail(ordo_journal *j, int status, const char *msg) {
  journal_fail_at(j, status, msg, j->next_event);
}

static int unknown_has(const ordo_journal *j, const char *id) {
  return j->unknown_set != NULL && json_object_get(j->unknown_set, id) != NULL;
}

static void unknown_clear(ordo_journal *j) {
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
static int unknown_count_add(ordo_journal *j, const char *id, int delta) {
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
static int unknown_drop(ordo_journal *j, const char *id) {
  if (!unknown_has(j, id))
    return 0;
  (void)unknown_count_add(j, id, -1); /* the service counts it: no alloc */
  json_object_del(j->unknown_set, id);
  if (--j->nunknown == 0) {
    unknown_clear(j);
    return 1;
  }
  while (j->unknown_head < j->unknown_slots &&
         !unknown_has(j, j->unknown[j->unknown_head]))
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

static int storage_call(ordo_storage *st, ordo_storage_req *req) {
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
static json_t *record_event(const ordo_storage_record *r, size_t flags,
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
 * event ev, its value in buf (8 bytes) through v; a later be64(buf, …)
 * moves it. */
static void name_leaf(ordo_storage_query *q, ordo_storage_buf *v,
                      unsigned char buf[8], ordo_storage_qop op, uint64_t ev) {
  memset(q, 0, sizeof(*q));
  be64(buf, ev);
  v->data = buf;
  v->len = 8;
  q->op = op;
  q->values = v;
  q->nvalues = 1;
}

/* req becomes a SCAN of category (a string constant) with query q (may be
 * NULL), limit (0: none) and flags; done and userdata are the caller's. */
static void scan_req(ordo_storage_req *req, const char *category,
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
static ordo_storage_record *take_results(ordo_storage_req *req, size_t *n) {
  ordo_storage_record *r = req->results;
  *n = req->nresults;
  req->results = NULL;
  req->nresults = 0;
  ordo_storage_req_clear_output(req);
  return r;
}

/* d becomes the DELETE of record r (its category and name borrowed). */
static void delete_req(ordo_storage_req *d, const ordo_storage_record *r) {
  d->opcode = ORDO_STORAGE_DELETE;
  d->rec.category = r->category;
  d->rec.name = r->name;
}

/* Under j->mu: req becomes one BATCH of subs[0..n) (one transaction) with
 * done, submitted. ORDO_OK, or the backend's refusal. */
static int submit_batch(ordo_journal *j, ordo_storage_req *req,
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

/* Settle w: record the outcome and continue its op if its stage parked,
 * else free it (no op). The last touch of w. */
/* Append s (taken: the list owns it from now) to a list of strings. 0, or
 * -1 when out of memory (s is then still the caller's). */
static int strlist_push(char ***v, size_t *n, size_t *cap, char *s) {
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

static void strlist_free(char ***v, size_t *n, size_t *cap) {
  for (size_t i = 0; i < *n; i++)
    free((*v)[i]);
  free(*v);
  *v = NULL;
  *n = *cap = 0;
}

/* The event kinds whose record names one batch by "id" and is tagged with
 * it, so that the batch's records can be found on disk once it has left
 * memory; and those of them that finish it. */
static int event_tagged(const char *kind, int *finishes) {
  *finishes = kind != NULL && (strcmp(kind, "fin") == 0 ||
                               strcmp(kind, "cancel") == 0 ||
                               strcmp(kind, "cascade") == 0);
  return kind != NULL && (*finishes || strcmp(kind, "enq") == 0);
}

/* Tag w's single record with ev's batch id, if its kind is tagged.
 * ORDO_OK or ORDO_E_NOMEM. */
static int jwrite_tag(jwrite *w, json_t *ev) {
  const char *id = json_string_value(json_object_get(ev, "id"));
  int fin;
  if (!event_tagged(json_string_value(json_object_get(ev, "e")), &fin) ||
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

static void jwrite_settle(jwrite *w, int status, const char *msg) {
  w->status = status;
  if (status != ORDO_OK && msg != NULL && w->message == NULL)
    w->message = ordo__strdup(msg);
  if (w->op == NULL) {
    jwrite_free(w);
    return;
  }
  if (atomic_exchange(&w->phase, JW_STORED) == JW_PARKED)
    ordo__op_resume(w->op, ORDO_OK);
}

/* Under j->mu: keep a lost note's JSON to apply and write again after a
 * recovery. Out of memory loses it (the verdict is asked again after a
 * restart: the batch is UNKNOWN then). */
static void redo_add(ordo_journal *j, const jwrite *w) {
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
                : w->nsubs > 0  ? rd64(w->names[0])
                                : rd64(w->name);
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
    redo_add(j, w);
  }
  if (j->outstanding == 0) /* journal_check starts the recovery */
    pthread_cond_broadcast(&j->idle_cv); /* close and journal_check wait */
}

static void prune_start(ordo_journal *j);
static void seg_written(ordo_journal *j, jwrite *w, int ok);

/* Under j->mu: stop tracking what is written before now; a scan finds
 * those records. */
static void untagged_drop(ordo_journal *j) {
  j->nuntagged = 0;
  j->track_from = j->next_event;
  j->unt_gen++;
}

/* Under j->mu: the untagged record ev is durable; the prune deletes it
 * by name (out of memory, or out of order: the list is dropped, and the
 * next prune scans for them instead). */
static void untagged_note(ordo_journal *j, uint64_t ev) {
  if (ev < j->track_from)
    return; /* a scan finds it */
  if (j->nuntagged > 0 && ev <= j->untagged[j->nuntagged - 1]) {
    untagged_drop(j);
    return;
  }
  if (j->nuntagged == j->capuntagged) {
    size_t nc = j->capuntagged ? j->capuntagged * 2 : 256;
    uint64_t *v = realloc(j->untagged, nc * sizeof(*v));
    if (v == NULL) {
      untagged_drop(j);
      return;
    }
    j->untagged = v;
    j->capuntagged = nc;
  }
  j->untagged[j->nuntagged++] = ev;
}

static void write_done(ordo_storage_req *req) {
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
    journal_fail(j, status, msg);
  else if (w->release_id != NULL &&
           ordo_queue_release(j->q, w->release_id) != ORDO_OK)
    status = ORDO_E_QUEUE; /* impossible: only this write releases it */
  else
    /* A batch cancelled before its record was durable is no longer held
     * back by anything: releasing it changes nothing. */
    for (size_t i = 0; i < w->nrelease; i++)
      (void)ordo_queue_release(j->q, w->release_ids[i]);
  if (status == ORDO_OK && w->evict && w->tag_id != NULL &&
      strlist_push(&j->evict, &j->nevict, &j->capevict, w->tag_id) == 0)
    w->tag_id = NULL; /* the list's now */
  if (status == ORDO_OK && !w->barrier && w->nsubs == 0 &&
      w->ck_parts == 0 && w->req.opcode == ORDO_STORAGE_ADD &&
      w->req.rec.ntags == 0)
    untagged_note(j, rd64(w->name));
  if (w->ck_parts > 0) {
    j->ck_pending = 0;
    seg_written(j, w, status == ORDO_OK);
    if (status == ORDO_OK) {
      j->ck_event = w->ck_event;
      j->ck_parts = w->ck_parts;
      j->checkpoints++;
      prune_start(j);
    }
  }
  pthread_mutex_unlock(&j->mu);
  jwrite_settle(w, status, msg);
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
static void ev_ledger_id(ordo_journal *j, json_t *ev) {
  const char *id = json_string_value(json_object_get(ev, "id"));
  ordo_queue_item it;
  int fin;
  if (id == NULL || json_object_get(ev, "ledger_id") != NULL ||
      !event_tagged(json_string_value(json_object_get(ev, "e")), &fin) ||
      !fin)
    return;
  (void)json_object_set_new(
      ev, "ledger_id",
      ordo_queue_item_get(j->q, id, &it) == ORDO_OK && it.ledger_id != NULL
          ? json_string(it.ledger_id)
          : json_null());
}

static int journal_write(ordo_journal *j, jwrite *w, json_t *ev,
                         const void *payload, size_t payload_len) {
  char *text;
  size_t tl;
  int rc;

  ev_ledger_id(j, ev);
  text = json_dumps(ev, JSON_COMPACT);
  if (text == NULL) {
    jwrite_settle(w, ORDO_E_NOMEM, "journal: out of memory");
    return ORDO_E_NOMEM;
  }
  tl = strlen(text);
  w->value_len = tl + (payload_len > 0 ? 1 + payload_len : 0);
  if ((w->value = malloc(w->value_len + 1)) == NULL) {
    free(text);
    jwrite_settle(w, ORDO_E_NOMEM, "journal: out of memory");
    return ORDO_E_NOMEM;
  }
  memcpy(w->value, text, tl);
  free(text);
  if (payload_len > 0) {
    w->value[tl] = '\0';
    memcpy(w->value + tl + 1, payload, payload_len);
  }
  w->j = j;
  be64(w->name, j->next_event);
  w->req.opcode = ORDO_STORAGE_ADD;
  w->req.rec.category.data = (unsigned char *)JOURNAL_CATEGORY;
  w->req.rec.category.len = strlen(JOURNAL_CATEGORY);
  w->req.rec.name.data = w->name;
  w->req.rec.name.len = sizeof(w->name);
  w->req.rec.value.data = w->value;
  w->req.rec.value.len = w->value_len;
  w->req.done = write_done;
  w->req.flags = ORDO_STORAGE_REQ_CHAINED; /* the log stays a prefix */
  if (jwrite_tag(w, ev) != ORDO_OK) {
    journal_fail(j, ORDO_E_NOMEM, "journal: out of memory");
    redo_add(j, w);
    jwrite_settle(w, ORDO_E_STORAGE, j->failed_message);
    return ORDO_E_STORAGE;
  }
  rc = j->st->backend->submit(j->st, &w->req);
  if (rc != ORDO_OK) {
    journal_fail(j, rc, "the storage backend refused a journal write");
    redo_add(j, w);
    jwrite_settle(w, ORDO_E_STORAGE, j->failed_message);
    return ORDO_E_STORAGE;
  }
  j->outstanding++;
  j->next_event++;
  j->records++;
  return ORDO_OK;
}

/* Under j->mu: a record nobody waits for (fin, resume, policy). */
static int journal_note(ordo_journal *j, json_t *ev) {
  jwrite *w = calloc(1, sizeof(*w));
  int rc;
  if (w == NULL || ev == NULL) {
    free(w);
    json_decref(ev);
    journal_fail(j, ORDO_E_NOMEM, "journal: out of memory");
    return ordo__set_last_error(ORDO_E_STORAGE, "journal: out of memory");
  }
  w->note = 1;
  rc = journal_write(j, w, ev, NULL, 0);
  json_decref(ev);
  return rc;
}

/* A new op that joins w (state, freed with the op), admitted now. NULL on
 * allocation failure. The op is returned already finished if admission was
 * refused: check ordo_op_status. */
static ordo_op *join_op(ordo_journal *j, jwrite *w) {
  ordo_op *op = ordo__op_new(j->ctx, w, jwrite_free);
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
 * enqueue of the same id, reads them back from disk (disk_lookup). What
 * stays in memory is 8 bytes in gone_ids (its id hashed, and whether it
 * ended INVALID: what a later batch's dep on it needs, and what refuses
 * its id again) and, if it had one, in gone_lids.
 *
 * When: the queue's on_finish hook files every batch that finishes,
 * cascades included; fin_flush writes a "cascade" record for those no
 * caller's record names; a finishing record's done moves its batch to the
 * evict list; journal_evict hands the list to ordo_queue_forget. It runs
 * where no item pointer of a finished batch is in use: at open (after the
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
static int gone_put(ordo_journal *j, const char *id, const char *ledger_id,
                    int invalid) {
  if (ordo__idset_put_logged(&j->gone_ids, &j->ids_log, id, invalid ? 1 : 0) !=
          0 ||
      (ledger_id != NULL &&
       ordo__idset_put_logged(&j->gone_lids, &j->lids_log, ledger_id, 0) != 0))
    return ORDO_E_NOMEM;
  return ORDO_OK;
}

static ordo_queue_state hook_forgotten_state(void *ud, const char *id) {
  ordo_journal *j = ud;
  int f = ordo__idset_get(&j->gone_ids, id);
  return f < 0 ? ORDO_QUEUE_QUEUED
               : (f & 1) ? ORDO_QUEUE_INVALID : ORDO_QUEUE_COMMITTED;
}

static int hook_forgotten_ledger_id(void *ud, const char *ledger_id) {
  ordo_journal *j = ud;
  return ordo__idset_get(&j->gone_lids, ledger_id) >= 0;
}

static void hook_on_finish(void *ud, const char *id, ordo_queue_state st,
                           const char *reason) {
  ordo_journal *j = ud;
  char *c = ordo__strdup(id);
  (void)st;
  (void)reason;
  /* Out of memory: the batch stays in memory, which is only memory. */
  if (c != NULL &&
      (j->replaying ? strlist_push(&j->evict, &j->nevict, &j->capevict, c)
                    : strlist_push(&j->fin_pending, &j->nfin_pending,
                                   &j->capfin_pending, c)) != 0)
    free(c);
}

static int journal_note(ordo_journal *j, json_t *ev);

/* Under j->mu, after a queue call that may have finished batches: a
 * "cascade" record for each one it finished that no record of the
 * caller's names (direct[0..n)), so that its end is on disk by its id. */
static void fin_flush(ordo_journal *j, const char *const *direct, size_t n) {
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
        t = wall_ms();
      (void)ordo_queue_batch_status(j->q, id, &st, &why);
      (void)ordo_queue_set_finish_time(j->q, id, t);
      (void)journal_note(j, json_pack("{s:s, s:s, s:s, s:I}", "e", "cascade",
                                      "id", id, "reason",
                                      why != NULL ? why : "a dep is invalid",
                                      "t", (json_int_t)t));
    }
    free(id);
  }
  j->nfin_pending = 0;
}

/* Under j->mu: let the batches of the evict list go (see above). */
static void journal_evict(ordo_journal *j) {
  const char **ids;
  unsigned char *kept;
  size_t n = j->nevict, i, k = 0, nf = 0;

  if (n == 0)
    return;
  if (j->qopt.keep_payloads) {
    strlist_free(&j->evict, &j->nevict, &j->capevict);
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
    if (gone_put(j, id,
                 ordo_queue_item_get(j->q, id, &it) == ORDO_OK ? it.ledger_id
                                                               : NULL,
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

/* What the log says of a batch no longer in memory. */
typedef struct jdisk {
  ordo_queue_state state;
  char *service, *reason, *ledger_id;
  uint64_t seq, t_enq, t_fin;
  unsigned char digest[ORDO_QUEUE_DIGEST_BYTES];
  int want_payload;       /* in: copy the payload too */
  unsigned char *payload; /* malloc'd (NULL when empty) */
  size_t payload_len;
} jdisk;

static void jdisk_clear(jdisk *d) {
  free(d->service);
  free(d->reason);
  free(d->ledger_id);
  free(d->payload);
  memset(d, 0, sizeof(*d));
}

static int enq_spec_parse(json_t *ev, const unsigned char *payload,
                          size_t payload_len, ordo_queue_batch_spec *sp);
static void enq_spec_free(ordo_queue_batch_spec *sp);
static void content_digest(const ordo_queue_batch_spec *sp,
                           unsigned char out[ORDO_QUEUE_DIGEST_BYTES]);

/*
 * Not under j->mu (it waits for the storage, whose dones take j->mu): the
 * records tagged with id, read back. flags: gone_ids' flags for it, the
 * state when no record finishes it (a cascade whose record a crash lost).
 * ORDO_E_NOT_FOUND when the log has no enq record of it (retention
 * dropped it, or a hash shared by two ids said "seen");
 * ORDO_E_WOULD_DEADLOCK on a runtime thread.
 */
static int disk_lookup(ordo_journal *j, const char *id, int flags, jdisk *d) {
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
  scan_req(&req, JOURNAL_CATEGORY, &q, 0, 0);
  if ((rc = storage_call(j->st, &req)) != ORDO_OK) {
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
    if ((ev = record_event(&req.results[i], 0, NULL, &payload,
                           &payload_len)) == NULL)
      continue;
    kind = json_string_value(json_object_get(ev, "e"));
    t = json_object_get(ev, "t");
    if (kind != NULL && strcmp(kind, "enq") == 0) {
      ordo_queue_batch_spec sp;
      if (enq_spec_parse(ev, payload, payload_len, &sp) == ORDO_OK &&
          strcmp(sp.id, id) == 0) {
        content_digest(&sp, d->digest);
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
      enq_spec_free(&sp);
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
    jdisk_clear(d);
  return rc;
}

static json_t *str_array(const char *const *v, size_t n) {
  json_t *a = json_array();
  for (size_t i = 0; a != NULL && i < n; i++)
    if (json_array_append_new(a, json_string(v[i])) != 0) {
      json_decref(a);
      return NULL;
    }
  return a;
}

static unsigned char *record_value(json_t *ev, const void *payload,
                                   size_t payload_len, size_t *len);

/* ------------------------------------------------------------------------ */
/* Forgotten-id segments                                                     */
/* ------------------------------------------------------------------------ */

/*
 * The forgotten sets reach the disk as segments (category "ckid", name
 * be64(E) of the checkpoint each was written with; idset.h has the
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
 * next checkpoint) waits for them (gone_wait). A reopen with records to
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
      return ordo__set_last_error(ORDO_E_QUEUE, "forgotten ids: segment "
                                  "%llu is damaged",
                                  (unsigned long long)rd64(r->name.data));
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
      (*segs)[(*nsegs)++] = rd64(r->name.data);
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
static int gone_build(ordo_journal *j, const ordo_storage_record *recs,
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
static int gone_load_sync(ordo_journal *j) {
  ordo_storage_req req;
  int rc;
  scan_req(&req, JOURNAL_SEG_CATEGORY, NULL, 0,
           ORDO_STORAGE_REQ_NO_TAGS | ORDO_STORAGE_REQ_BY_NAME);
  if ((rc = storage_call(j->st, &req)) != ORDO_OK)
    rc = ordo__set_last_error(rc, "journal: reading the forgotten ids: %s",
                              req.message != NULL ? req.message
                                                  : ordo_strerror(rc));
  else
    rc = gone_build(j, req.results, req.nresults);
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
      rc = gone_build(j, req->results, req->nresults);
    /* A journal that cannot read them fails: the recovery reads them
     * again (and refuses nothing it has not refused before). */
    if (rc != ORDO_OK) {
      char msg[512];
      snprintf(msg, sizeof msg, "reading the forgotten ids: %s",
               ordo_last_error_message());
      journal_fail(j, rc == ORDO_E_NOMEM ? rc : ORDO_E_STORAGE, msg);
    }
  }
  ordo_storage_req_clear_output(req);
  free(g);
  pthread_cond_broadcast(&j->idle_cv);
  pthread_mutex_unlock(&j->mu);
}

/* Under j->mu: read the segments behind whatever is out. */
static void gone_load_start(ordo_journal *j) {
  jgload *g;
  if (j->gone_loaded || j->gone_loading)
    return;
  if ((g = calloc(1, sizeof(*g))) == NULL) {
    journal_fail(j, ORDO_E_NOMEM, "reading the forgotten ids: out of memory");
    return;
  }
  g->j = j;
  g->gen = j->gone_gen;
  scan_req(&g->req, JOURNAL_SEG_CATEGORY, NULL, 0,
           ORDO_STORAGE_REQ_NO_TAGS | ORDO_STORAGE_REQ_BY_NAME);
  g->req.done = gone_loaded_done;
  if (j->st->backend->submit(j->st, &g->req) != ORDO_OK) {
    free(g);
    journal_fail(j, ORDO_E_STORAGE, "the storage backend refused to read "
                 "the forgotten ids");
    return;
  }
  j->gone_loading = 1;
}

/* Under j->mu: wait until the sets hold every segment. ORDO_OK, or why
 * they do not: the journal failed reading them (and did not recover), or
 * the caller is on a runtime thread, where waiting could stall the
 * storage thread that reads them. */
static int gone_wait(ordo_journal *j) {
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
  if ((rc = journal_check(j)) != ORDO_OK) /* recovers, which reads them */
    return rc;
  return j->gone_loaded ? ORDO_OK
                        : ordo__set_last_error(ORDO_E_STORAGE, "journal: the "
                                               "ids of finished batches "
                                               "could not be read");
}

/* Under j->mu, building checkpoint E: its segment into w (ADD at sub
 * *k, and the DELETEs of the segments a base voids), the logs moved into
 * w. ORDO_OK (nothing added when nothing changed) or ORDO_E_NOMEM. */
static int seg_write(ordo_journal *j, jwrite *w, uint64_t E, size_t *k) {
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
    be64(w->ck_names[*k], j->segs[i]);
    d->opcode = ORDO_STORAGE_DELETE;
    d->rec.category.data = (unsigned char *)JOURNAL_SEG_CATEGORY;
    d->rec.category.len = strlen(JOURNAL_SEG_CATEGORY);
    d->rec.name.data = w->ck_names[*k];
    d->rec.name.len = 8;
  }
  be64(w->ck_names[*k], E);
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
static void seg_written(ordo_journal *j, jwrite *w, int ok) {
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

static void ck_name(unsigned char out[JOURNAL_CK_NAME], uint64_t E,
                    uint32_t part) {
  be64(out, E);
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
  ck_name(c->names[c->n], c->E, part);
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
    int rc = gone_put(j, b->id, b->ledger_id, b->state == ORDO_QUEUE_INVALID);
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
 * invalid, halt, max_in_flight, dep_timeout_ms, last_ms], the latency
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
    ordo__jsonw_raw(&w, pol.on_invalid == ORDO_QUEUE_HALT ? ",true," : ",false,",
                    pol.on_invalid == ORDO_QUEUE_HALT ? 6 : 7);
    ordo__jsonw_uint(&w, pol.max_in_flight);
    ordo__jsonw_raw(&w, ",", 1);
    ordo__jsonw_uint(&w, pol.dep_timeout_ms);
    ordo__jsonw_raw(&w, ",", 1);
    ordo__jsonw_uint(&w, ordo_queue_service_last(j->q, names[i]));
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
static int ck_due(ordo_journal *j) {
  uint64_t tail;
  if (j->ck_never || j->ck_pending || j->failed != ORDO_OK || j->recovering ||
      j->st == NULL || !j->gone_loaded)
    return 0;
  tail = j->next_event - (j->ck_event > 0 ? j->ck_event : 1);
  return tail >= j->ck_every_records ||
         (tail > 0 && wall_ms() - j->ck_wall_ms >= j->ck_every_ms);
}

/*
 * Under j->mu: write a checkpoint of the state before event next_event.
 * ORDO_OK when it was submitted (it completes behind the records before
 * it), or the reason none was (nothing changes then but the forgotten
 * sets, which only gain batches that may go).
 */
static int journal_checkpoint(ordo_journal *j) {
  ck_build c;
  jwrite *w;
  unsigned char *v;
  size_t len, i, k, total;
  int rc;

  memset(&c, 0, sizeof c);
  c.j = j;
  c.E = j->next_event;
  j->ck_wall_ms = wall_ms(); /* tried: not again at once if it fails */
  journal_evict(j);
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
    ck_name(w->ck_names[k], j->ck_event, (uint32_t)k);
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
  if (seg_write(j, w, c.E, &k) != ORDO_OK) {
    w->nsubs = k;
    jwrite_free(w);
    c.n = 0;
    ck_build_free(&c);
    return ORDO_E_NOMEM;
  }
  w->nsubs = k; /* jwrite_free frees values[0..k): the deletes' are NULL */
  w->j = j;
  w->ck_event = c.E;
  w->ck_parts = (uint32_t)c.n;
  w->req.opcode = ORDO_STORAGE_BATCH;
  w->req.batch = w->subs;
  w->req.nbatch = k;
  w->req.done = write_done;
  w->req.flags = ORDO_STORAGE_REQ_CHAINED;
  c.n = 0;
  ck_build_free(&c);
  if (j->st->backend->submit(j->st, &w->req) != ORDO_OK) {
    journal_fail(j, ORDO_E_STORAGE, "the storage backend refused a journal "
                 "checkpoint");
    jwrite_settle(w, ORDO_E_STORAGE, j->failed_message);
    return ORDO_E_STORAGE;
  }
  j->outstanding++;
  j->ck_pending = 1;
  return ORDO_OK;
}

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
  for (size_t i = 0; i < p->nrecs; i++)
    ordo_storage_record_clear(&p->recs[i]);
  free(p->recs);
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
      untagged_drop(j);
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
  p->recs = take_results(req, &p->nrecs);
  p->more = p->nrecs == PRUNE_PAGE;
  for (i = 0; i < p->nrecs; i++)
    if (p->recs[i].ntags == 0)
      k++;
  if (p->nrecs > 0 && p->recs[p->nrecs - 1].name.len == 8)
    be64(p->from, rd64(p->recs[p->nrecs - 1].name.data) + 1);
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
      delete_req(&p->dels[p->ndels++], &p->recs[i]);
  if (submit_batch(j, &p->req, p->dels, p->ndels, prune_deleted) != ORDO_OK)
    prune_end(p, 0);
  pthread_mutex_unlock(&j->mu);
}

/* Under j->mu: the next page of records below the checkpoint. */
static void prune_scan(jprune *p) {
  ordo_journal *j = p->j;
  scan_req(&p->req, JOURNAL_CATEGORY, &p->q, PRUNE_PAGE,
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
    be64(p->names[i], j->untagged[i]);
    p->dels[i].opcode = ORDO_STORAGE_DELETE;
    p->dels[i].rec.category.data = (unsigned char *)JOURNAL_CATEGORY;
    p->dels[i].rec.category.len = strlen(JOURNAL_CATEGORY);
    p->dels[i].rec.name.data = p->names[i];
    p->dels[i].rec.name.len = 8;
  }
  p->ndels = n;
  p->npage = n;
  if (submit_batch(j, &p->req, p->dels, n, prune_deleted) != ORDO_OK)
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
static void prune_start(ordo_journal *j) {
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
  name_leaf(&p->qfrom, &p->vfrom, p->from, ORDO_SQ_NAME_GTE, j->ck_pruned);
  name_leaf(&p->qbelow, &p->vbelow, p->below, ORDO_SQ_NAME_LT, scan_to);
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
static int in_memory(ordo_journal *j, const char *id);
#define EXPIRE_EVERY_MS 60000

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
  for (size_t i = 0; i < x->nrecs; i++)
    ordo_storage_record_clear(&x->recs[i]);
  free(x->ids);
  free(x->lids);
  free(x->idbufs);
  free(x->recs);
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
  if (req->status != ORDO_OK || !x->more || j->closing) {
    expire_end(x);
  } else {
    expire_page_free(x);
    expire_scan(x);
  }
  pthread_mutex_unlock(&j->mu);
}

static void expire_looked(ordo_storage_req *req) {
  jexpire *x = (jexpire *)req;
  ordo_journal *j = x->j;
  size_t i, n;
  pthread_mutex_lock(&j->mu);
  if (req->status != ORDO_OK || j->closing) {
    ordo_storage_req_clear_output(req);
    expire_end(x);
    pthread_mutex_unlock(&j->mu);
    return;
  }
  x->recs = take_results(req, &x->nrecs);
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
    json_t *ev = record_event(&x->recs[i], 0, NULL, NULL, NULL);
    const char *kind = json_string_value(json_object_get(ev, "e"));
    const char *lid = json_string_value(json_object_get(ev, "ledger_id"));
    if (kind != NULL && strcmp(kind, "enq") == 0 && lid != NULL &&
        (x->lids[x->nlids] = ordo__strdup(lid)) != NULL)
      x->nlids++;
    json_decref(ev);
    delete_req(&x->dels[x->ndels++], &x->recs[i]);
  }
  if (submit_batch(j, &x->req, x->dels, x->ndels, expire_deleted) != ORDO_OK)
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
  uint64_t now = wall_ms();
  int stop = 0;

  pthread_mutex_lock(&j->mu);
  if (req->status != ORDO_OK || j->closing) {
    ordo_storage_req_clear_output(req);
    expire_end(x);
    pthread_mutex_unlock(&j->mu);
    return;
  }
  recs = req->results;
  n = req->nresults;
  x->more = n == EXPIRE_PAGE;
  x->next_cursor = j->exp_cursor;
  for (i = 0; i < n && !stop; i++) {
    const ordo_storage_record *r = &recs[i];
    json_t *ev = record_event(r, 0, NULL, NULL, NULL);
    const char *id = json_string_value(json_object_get(ev, "id"));
    int fin = 0;
    (void)event_tagged(json_string_value(json_object_get(ev, "e")), &fin);
    if (fin && id != NULL && in_memory(j, id)) {
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
      x->next_cursor = rd64(r->name.data) + 1;
  }
  if (stop)
    x->more = 0;
  ordo_storage_req_clear_output(req);
  if (x->nids == 0) {
    j->exp_cursor = x->next_cursor;
    if (x->more && !j->closing) {
      expire_scan(x);
    } else {
      expire_end(x);
    }
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
  scan_req(&x->req, JOURNAL_CATEGORY, &x->idq, 0, ORDO_STORAGE_REQ_NO_TAGS);
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
  name_leaf(&x->q, &x->vfrom, x->from, ORDO_SQ_NAME_GTE, j->exp_cursor);
  scan_req(&x->req, JOURNAL_CATEGORY, &x->q, EXPIRE_PAGE,
           ORDO_STORAGE_REQ_NO_TAGS | ORDO_STORAGE_REQ_BY_NAME);
  x->req.done = expire_scanned;
  if (j->st->backend->submit(j->st, &x->req) != ORDO_OK)
    expire_end(x);
}

/* Under j->mu: start a pass if one is due. */
static void expire_start(ordo_journal *j) {
  jexpire *x;
  uint64_t now;
  if (j->expiring || j->closing || j->failed != ORDO_OK || j->recovering ||
      j->st == NULL || !j->gone_loaded || j->gone_ids.n == 0)
    return;
  now = wall_ms();
  if (j->gone_ids.n <= j->ret_count && now - j->exp_wall_ms < EXPIRE_EVERY_MS)
    return;
  j->exp_wall_ms = now;
  if ((x = calloc(1, sizeof(*x))) == NULL)
    return;
  x->j = j;
  j->expiring = 1;
  expire_scan(x);
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

/* The untagged records still to prune, as ck_untagged wrote them before
 * event E, become j's list, tracked from track_from. 0; -1 when the runs
 * are not ascending runs below E (or out of memory: the list is then
 * dropped, and the prune scans). */
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
        (uint64_t)a < track_from || (uint64_t)n > E - (uint64_t)a)
      return -1;
    for (json_int_t k = 0; k < n; k++)
      untagged_note(j, (uint64_t)(a + k));
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

  if ((ev = record_event(r, 0, NULL, &payload, &payload_len)) == NULL)
    return ordo__set_last_error(ORDO_E_QUEUE, "checkpoint: a batch record is "
                                "not JSON");
  if ((rc = enq_spec_parse(ev, payload, payload_len, &sp)) != ORDO_OK) {
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
      rc = gone_put(j, sp.id, NULL, fs == ORDO_QUEUE_INVALID);
    } else if (rc == ORDO_OK &&
               (json_is_integer(json_object_get(ev, "tf")) &&
                (rc = ordo_queue_set_finish_time(
                     j->q, sp.id,
                     (uint64_t)json_integer_value(json_object_get(ev, "tf")))) !=
                    ORDO_OK)) {
      /* rc set */
    } else if (rc == ORDO_OK && json_is_true(json_object_get(ev, "halts"))) {
      char *c = ordo__strdup(sp.id);
      if (c == NULL || strlist_push(halts, nhalts, caphalts, c) != 0) {
        free(c);
        rc = ORDO_E_NOMEM;
      }
    }
  } else if (rc == ORDO_OK) {
    if ((rc = ordo_queue_enqueue(j->q, &sp, NULL)) == ORDO_OK &&
        strcmp(st, "SUBMITTED") == 0) {
      char *c = ordo__strdup(sp.id);
      if ((rc = ordo_queue_take_id(j->q, sp.id, NULL)) == ORDO_OK &&
          (c == NULL || strlist_push(subs, nsubs, capsubs, c) != 0))
        rc = ORDO_E_NOMEM;
      if (rc != ORDO_OK)
        free(c);
    }
  }
  if (rc != ORDO_OK && rc != ORDO_E_NOMEM)
    rc = ordo__set_last_error(ORDO_E_QUEUE, "checkpoint: batch %s: %s", sp.id,
                              ordo_last_error_message());
  enq_spec_free(&sp);
  json_decref(ev);
  return rc;
}

/*
 * Replay the newest checkpoint in recs[0..n) (category "ck") into j->q;
 * *E gets its event (0: none) and *parts its records. The batches it
 * finds SUBMITTED are taken and added to subs.
 */
static int ck_load(ordo_journal *j, ordo_storage_record *recs, size_t n,
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
    if (rd64(recs[i].name.data) > best)
      best = rd64(recs[i].name.data);
  }
  if (best == 0)
    return ORDO_OK;
  if ((v = calloc(n, sizeof(*v))) == NULL)
    return ordo__set_last_error(ORDO_E_NOMEM, NULL);
  for (i = 0; i < n; i++)
    if (rd64(recs[i].name.data) == best)
      v[nv++] = &recs[i];
  qsort(v, nv, sizeof(*v), part_cmp);
  for (i = 0; i < nv; i++)
    if (((uint32_t)v[i]->name.data[8] << 24 | (uint32_t)v[i]->name.data[9] << 16 |
         (uint32_t)v[i]->name.data[10] << 8 | v[i]->name.data[11]) != i) {
      rc = ordo__set_last_error(ORDO_E_QUEUE, "checkpoint %llu: part %zu is "
                                "missing", (unsigned long long)best, i);
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
     * last_ms]; an object with those keys before. */
    static const char *const keys[] = {"name", "committed", "invalid", "halt",
                                       "max_in_flight", "dep_timeout_ms",
                                       "last_ms"};
    json_t *f[7];
    for (size_t k = 0; k < 7; k++)
      f[k] = json_is_array(a) ? json_array_get(a, k)
                              : json_object_get(a, keys[k]);
    const char *name = json_string_value(f[0]);
    if (name == NULL ||
        ordo_queue_set_policy(
            j->q, name, json_is_true(f[3]) ? ORDO_QUEUE_HALT : ORDO_QUEUE_SKIP,
            (unsigned)json_integer_value(f[4]),
            (uint64_t)json_integer_value(f[5])) != ORDO_OK ||
        ordo_queue_add_counts(j->q, name, (size_t)json_integer_value(f[1]),
                              (size_t)json_integer_value(f[2])) != ORDO_OK) {
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
  if (json_is_integer(json_object_get(h, "track_from")) &&
      ck_untagged_load(j, json_object_get(h, "untagged"),
                       (uint64_t)json_integer_value(
                           json_object_get(h, "track_from")),
                       best) != 0) {
    rc = ordo__set_last_error(ORDO_E_QUEUE, "checkpoint %llu: a bad list of "
                              "untagged records", (unsigned long long)best);
    goto out;
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
  strlist_free(&halts, &nhalts, &caphalts);
  json_decref(h);
  free(v);
  return rc;
}


/* ------------------------------------------------------------------------ */
/* Replay                                                                    */
/* ------------------------------------------------------------------------ */

static void content_digest(const ordo_queue_batch_spec *sp,
                           unsigned char out[ORDO_QUEUE_DIGEST_BYTES]);

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
 * writes and deps arrays malloc'd: enq_spec_free). */
static int enq_spec_parse(json_t *ev, const unsigned char *payload,
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
                       &sp->ndeps)))
    return ordo__set_last_error(rc, "enq %s: bad reads, writes or deps",
                                sp->id);
  return ORDO_OK;
}

static void enq_spec_free(ordo_queue_batch_spec *sp) {
  free((void *)sp->reads);
  free((void *)sp->writes);
  free((void *)sp->deps);
}

static int replay_enq(ordo_journal *j, json_t *ev, const unsigned char *payload,
                      size_t payload_len) {
  ordo_queue_batch_spec sp;
  int rc = enq_spec_parse(ev, payload, payload_len, &sp);
  if (rc == ORDO_OK) {
    /* The digest from the record itself: it holds the whole content. */
    unsigned char dg[ORDO_QUEUE_DIGEST_BYTES];
    content_digest(&sp, dg);
    sp.digest = dg;
    if ((rc = ordo_queue_enqueue(j->q, &sp, NULL)) != ORDO_OK)
      rc = ordo__set_last_error(ORDO_E_QUEUE, "%s", ordo_last_error_message());
  }
  enq_spec_free(&sp);
  return rc;
}

static int replay_sub(ordo_journal *j, json_t *ev, char ***subs, size_t *nsubs,
                      size_t *capsubs) {
  json_t *ids = json_object_get(ev, "ids");
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
    if (*nsubs == *capsubs) {
      size_t nc = *capsubs ? *capsubs * 2 : 64;
      char **p = realloc(*subs, nc * sizeof(*p));
      if (p == NULL)
        return ordo__set_last_error(ORDO_E_NOMEM, NULL);
      *subs = p;
      *capsubs = nc;
    }
    if (((*subs)[*nsubs] = ordo__strdup(id)) == NULL)
      return ordo__set_last_error(ORDO_E_NOMEM, NULL);
    (*nsubs)++;
  }
  return ORDO_OK;
}

static int replay_one(ordo_journal *j, const ordo_storage_record *r,
                      char ***subs, size_t *nsubs, size_t *capsubs) {
  const unsigned char *payload;
  size_t payload_len;
  json_error_t jerr;
  json_t *ev;
  const char *kind;
  int rc;

  ev = record_event(r, JSON_REJECT_DUPLICATES, &jerr, &payload, &payload_len);
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
             out == ORDO_QUEUE_INVALID) {
      /* A dep timeout: a WAITING batch ended, never sent. */
      if ((rc = ordo_queue_expire_id(j->q, id, why)) != ORDO_OK)
        rc = ordo__set_last_error(ORDO_E_QUEUE, "%s",
                                  ordo_last_error_message());
      else if (json_is_integer(json_object_get(ev, "t")))
        note_finish(j, id,
                    (uint64_t)json_integer_value(json_object_get(ev, "t")));
    } else if ((rc = ordo_queue_finish(j->q, id, out, why)) != ORDO_OK)
      rc = ordo__set_last_error(ORDO_E_QUEUE, "%s", ordo_last_error_message());
    else if (json_is_integer(json_object_get(ev, "t")))
      note_finish(j, id, (uint64_t)json_integer_value(json_object_get(ev, "t")));
  } else if (strcmp(kind, "cancel") == 0) {
    const char *id = json_string_value(json_object_get(ev, "id"));
    const char *why = json_string_value(json_object_get(ev, "reason"));
    if (id == NULL)
      rc = ordo__set_last_error(ORDO_E_QUEUE, "cancel without id");
    else if ((rc = ordo_queue_cancel(j->q, id, why)) != ORDO_OK)
      rc = ordo__set_last_error(ORDO_E_QUEUE, "%s", ordo_last_error_message());
    else if (json_is_integer(json_object_get(ev, "t")))
      note_finish(j, id, (uint64_t)json_integer_value(json_object_get(ev, "t")));
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
  /* A record of the log (not a redo) that is untagged, as jwrite_tag
   * decides: the prune's to delete. */
  if (rc == ORDO_OK && r->name.len == 8) {
    int fin;
    if (!event_tagged(kind, &fin) || json_object_get(ev, "id") == NULL)
      untagged_note(j, rd64(r->name.data));
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
        st == ORDO_QUEUE_SUBMITTED && !json_object_get(j->unknown_set, subs[i])) {
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
      rc = unknown_count_add(j, v[i].id, 1);
    if (j->unknown != NULL)
      j->unknown[i] = v[i].id;
    else
      free(v[i].id);
  }
  free(v);
  j->unknown_slots = j->unknown != NULL ? n : 0;
  j->nunknown = j->unknown_slots;
  if (rc != ORDO_OK) {
    unknown_clear(j);
    return ordo__set_last_error(rc, NULL);
  }
  return ORDO_OK;
}

static int journal_replay(ordo_journal *j) {
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
  scan_req(&req, JOURNAL_CK_CATEGORY, NULL, 0,
           ORDO_STORAGE_REQ_NO_TAGS | ORDO_STORAGE_REQ_BY_NAME);
  if ((rc = storage_call(j->st, &req)) != ORDO_OK) {
    rc = ordo__set_last_error(rc, "journal: reading the checkpoint: %s",
                              req.message != NULL ? req.message
                                                  : ordo_strerror(rc));
    ordo_storage_req_clear_output(&req);
    return rc;
  }
  rc = ck_load(j, req.results, req.nresults, &subs, &nsubs, &capsubs, &E,
               &parts);
  ordo_storage_req_clear_output(&req);
  if (rc != ORDO_OK) {
    for (i = 0; i < nsubs; i++)
      free(subs[i]);
    free(subs);
    return rc;
  }
  j->ck_event = E;
  j->ck_parts = parts;
  last = E > 0 ? E - 1 : 0;
  name_leaf(&tailq, &from, fromname, ORDO_SQ_NAME_GTE, E);
  scan_req(&req, JOURNAL_CATEGORY, E > 0 ? &tailq : NULL, 0,
           ORDO_STORAGE_REQ_NO_TAGS | ORDO_STORAGE_REQ_BY_NAME);
  if ((rc = storage_call(j->st, &req)) != ORDO_OK) {
    rc = ordo__set_last_error(rc, "journal: reading the log: %s",
                              req.message != NULL ? req.message
                                                  : ordo_strerror(rc));
    ordo_storage_req_clear_output(&req);
    return rc;
  }
  /* Records to replay: their enqueues ask the forgotten sets. */
  if (!j->gone_loaded && (req.nresults > 0 || E == 0) &&
      (rc = gone_load_sync(j)) != ORDO_OK) {
    ordo_storage_req_clear_output(&req);
    for (i = 0; i < nsubs; i++)
      free(subs[i]);
    free(subs);
    return rc;
  }
  for (i = 0; i < req.nresults; i++) {
    const ordo_storage_record *r = &req.results[i];
    uint64_t ev;
    if (r->name.len != 8 || (ev = rd64(r->name.data)) <= last) {
      rc = ordo__set_last_error(ORDO_E_QUEUE, "journal record %zu: bad or "
                                "out-of-order event number", i + 1);
      break;
    }
    last = ev;
    if ((rc = replay_one(j, r, &subs, &nsubs, &capsubs)) != ORDO_OK) {
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
  for (i = 0; i < nsubs; i++)
    free(subs[i]);
  free(subs);
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
  for (size_t i = 0; i < r->nrecs; i++)
    ordo_storage_record_clear(&r->recs[i]);
  free(r->recs);
  for (size_t i = 0; i < r->nsegrecs; i++)
    ordo_storage_record_clear(&r->segrecs[i]);
  free(r->segrecs);
  for (size_t i = 0; i < r->nckrecs; i++)
    ordo_storage_record_clear(&r->ckrecs[i]);
  free(r->ckrecs);
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
  j->retry_ms = wall_ms() + j->recover_pause_ms;
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
  strlist_free(&j->evict, &j->nevict, &j->capevict);
  strlist_free(&j->fin_pending, &j->nfin_pending, &j->capfin_pending);
  j->replaying = 1;
  {
    uint64_t E = 0;
    uint32_t parts = 0;
    rc = ck_load(j, r->ckrecs, r->nckrecs, &subs, &nsubs, &capsubs, &E,
                 &parts);
    last = E > 0 ? E - 1 : 0;
    if (rc == ORDO_OK && !j->gone_loaded)
      rc = gone_build(j, r->segrecs, r->nsegrecs);
  }
  for (i = 0; i < r->nrecs && rc == ORDO_OK; i++) {
    uint64_t ev = rd64(r->recs[i].name.data);
    if (ev >= j->fail_event)
      continue; /* deleted */
    rc = replay_one(j, &r->recs[i], &subs, &nsubs, &capsubs);
    last = ev;
  }
  for (i = 0; i < nsubs; i++)
    free(subs[i]);
  free(subs);
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
    strlist_free(&j->evict, &j->nevict, &j->capevict);
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
  j->next_event = last + 1;
  /* Some tracked records may be gone with the failed ones: scan. */
  untagged_drop(j);
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
      redo_add(j, &keep);
    } else if (replay_one(j, &rec, &subs, &nsubs, &capsubs) == ORDO_OK) {
      json_t *ev = json_loads(redo[i], 0, NULL);
      const char *id = json_string_value(json_object_get(ev, "id"));
      char *own = id != NULL ? ordo__strdup(id) : NULL;
      (void)journal_note(j, ev);
      fin_flush(j, (const char *const *)&own, own != NULL ? 1 : 0);
      free(own);
    }
    for (size_t k = 0; k < nsubs; k++)
      free(subs[k]);
    free(subs);
    free(redo[i]);
  }
  free(redo);
  journal_evict(j);
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
  r->ckrecs = take_results(&r->scans[0], &r->nckrecs);
  r->recs = take_results(&r->scans[1], &r->nrecs);
  r->segrecs = take_results(&r->scans[2], &r->nsegrecs);
  ordo_storage_req_clear_output(req);
  for (i = 0; i < r->nrecs; i++) {
    if (r->recs[i].name.len != 8) {
      recovery_failed(j, r); /* a reopen would refuse it too */
      pthread_mutex_unlock(&j->mu);
      return;
    }
    if (rd64(r->recs[i].name.data) >= j->fail_event)
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
    if (rd64(r->recs[i].name.data) >= j->fail_event)
      delete_req(&r->dels[k++], &r->recs[i]);
  if (submit_batch(j, &r->req, r->dels, r->ndels, recovery_deleted) !=
      ORDO_OK)
    recovery_failed(j, r);
  pthread_mutex_unlock(&j->mu);
}

/* Under j->mu: read the log back (after every record already out). */
static void start_recovery(ordo_journal *j) {
  jrecovery *r = calloc(1, sizeof(*r));
  if (r == NULL) {
    recovery_failed(j, NULL);
    return;
  }
  r->j = j;
  name_leaf(&r->tailq, &r->from, r->fromname, ORDO_SQ_NAME_GTE, j->ck_event);
  scan_req(&r->scans[0], JOURNAL_CK_CATEGORY, NULL, 0,
           ORDO_STORAGE_REQ_NO_TAGS | ORDO_STORAGE_REQ_BY_NAME);
  scan_req(&r->scans[1], JOURNAL_CATEGORY, &r->tailq, 0,
           ORDO_STORAGE_REQ_NO_TAGS | ORDO_STORAGE_REQ_BY_NAME);
  scan_req(&r->scans[2], JOURNAL_SEG_CATEGORY, NULL, 0,
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
static void recovery_before_close(ordo_journal *j) {
  pthread_mutex_lock(&j->mu);
  j->closing = 1; /* a prune or an expiry stops at its next page */
  while (j->recovering || j->outstanding > 0 || j->pruning || j->expiring ||
         j->gone_loading)
    pthread_cond_wait(&j->idle_cv, &j->mu);
  if (j->failed != ORDO_OK) {
    start_recovery(j);
    while (j->recovering)
      pthread_cond_wait(&j->idle_cv, &j->mu);
  }
  pthread_mutex_unlock(&j->mu);
}

/* ------------------------------------------------------------------------ */
/* Public API                                                                */
/* ------------------------------------------------------------------------ */

void ordo_journal_options_init(ordo_journal_options *opt) {
  memset(opt, 0, sizeof(*opt));
  ordo_queue_options_init(&opt->queue);
}

static void journal_free(ordo_journal *j) {
  if (j->lock_fd >= 0)
    close(j->lock_fd); /* releases the flock */
  unknown_clear(j);
  ordo_queue_free(j->q);
  ordo__idset_clear(&j->gone_ids);
  ordo__idset_clear(&j->gone_lids);
  ordo__idlog_clear(&j->ids_log);
  ordo__idlog_clear(&j->lids_log);
  free(j->segs);
  free(j->untagged);
  strlist_free(&j->evict, &j->nevict, &j->capevict);
  strlist_free(&j->fin_pending, &j->nfin_pending, &j->capfin_pending);
  for (size_t i = 0; i < j->nold_q; i++)
    ordo_queue_free(j->old_q[i]);
  free(j->old_q);
  for (size_t i = 0; i < j->nredo; i++)
    free(j->redo[i]);
  free(j->redo);
  free(j->failed_message);
  pthread_cond_destroy(&j->idle_cv);
  pthread_mutex_destroy(&j->mu);
  free(j);
}

static int storage_close(ordo_storage *st) {
  ordo_storage_req req;
  memset(&req, 0, sizeof(req));
  req.opcode = ORDO_STORAGE_CLOSE;
  int rc = storage_call(st, &req);
  ordo_storage_req_clear_output(&req);
  return rc;
}

/* The format marker: set on create, checked on open. */
static int journal_meta(ordo_journal *j, int created) {
  ordo_storage_req req;
  int rc;
  memset(&req, 0, sizeof(req));
  req.opcode = created ? ORDO_STORAGE_META_SET : ORDO_STORAGE_META_GET;
  req.rec.name.data = (unsigned char *)JOURNAL_META_KEY;
  req.rec.name.len = strlen(JOURNAL_META_KEY);
  if (created) {
    req.rec.value.data = (unsigned char *)JOURNAL_FORMAT;
    req.rec.value.len = strlen(JOURNAL_FORMAT);
  }
  rc = storage_call(j->st, &req);
  if (rc == ORDO_OK && !created &&
      (req.result.value.len != strlen(JOURNAL_FORMAT) ||
       memcmp(req.result.value.data, JOURNAL_FORMAT, req.result.value.len)))
    rc = ordo__set_last_error(ORDO_E_STORAGE, "journal: unsupported format "
                              "version");
  else if (rc == ORDO_E_NOT_FOUND)
    rc = ordo__set_last_error(ORDO_E_STORAGE, "journal: the file is not an "
                              "ordo journal");
  else if (rc != ORDO_OK)
    rc = ordo__set_last_error(rc, "journal: %s",
                              req.message ? req.message : ordo_strerror(rc));
  ordo_storage_req_clear_output(&req);
  return rc;
}

/*
 * The locking rule a journal was made with: strategy and granularity decide
 * which batches are ready, so a replay under another rule could not repeat
 * the takes it recorded. Written at create; read back at every open, where
 * it overrides the caller's (mode and caps are the caller's to change).
 */
#define JOURNAL_LOCKING_KEY "ordo.journal.locking"

static int journal_locking(ordo_journal *j, int created,
                           ordo_queue_options *q) {
  ordo_storage_req req;
  char buf[64];
  int rc, st = 0, g = 0;
  memset(&req, 0, sizeof(req));
  req.opcode = created ? ORDO_STORAGE_META_SET : ORDO_STORAGE_META_GET;
  req.rec.name.data = (unsigned char *)JOURNAL_LOCKING_KEY;
  req.rec.name.len = strlen(JOURNAL_LOCKING_KEY);
  if (created) {
    snprintf(buf, sizeof buf, "%d %d", (int)q->strategy,
             q->granularity < 0 ? -1 : q->granularity);
    req.rec.value.data = (unsigned char *)buf;
    req.rec.value.len = strlen(buf);
  }
  rc = storage_call(j->st, &req);
  if (rc == ORDO_OK && !created) {
    size_t n = req.result.value.len < sizeof buf - 1 ? req.result.value.len
                                                     : sizeof buf - 1;
    memcpy(buf, req.result.value.data, n);
    buf[n] = '\0';
    if (sscanf(buf, "%d %d", &st, &g) != 2 || st < ORDO_QUEUE_PARALLEL ||
        st > ORDO_QUEUE_UNCONSTRAINED || g < -1)
      rc = ordo__set_last_error(ORDO_E_STORAGE, "journal: bad locking record");
    else {
      q->strategy = (ordo_queue_strategy)st;
      q->granularity = g;
    }
  } else if (rc == ORDO_E_NOT_FOUND && !created) {
    rc = ORDO_OK; /* made before the record existed: the caller's rule */
  } else if (rc != ORDO_OK) {
    rc = ordo__set_last_error(rc, "journal: reading the locking record");
  }
  ordo_storage_req_clear_output(&req);
  return rc;
}

/* The first seq whose records are tagged (JOURNAL_TAGGED_KEY): 1 for a
 * journal made now; for one made before tags, the next seq, written now,
 * so that only the batches enqueued from here on may leave memory. */
static int journal_tagged(ordo_journal *j, int created) {
  ordo_storage_req req;
  char buf[32];
  int rc;
  memset(&req, 0, sizeof(req));
  req.opcode = ORDO_STORAGE_META_GET;
  req.rec.name.data = (unsigned char *)JOURNAL_TAGGED_KEY;
  req.rec.name.len = strlen(JOURNAL_TAGGED_KEY);
  rc = created ? ORDO_E_NOT_FOUND : storage_call(j->st, &req);
  if (rc == ORDO_OK) {
    size_t n = req.result.value.len < sizeof buf - 1 ? req.result.value.len
                                                     : sizeof buf - 1;
    memcpy(buf, req.result.value.data, n);
    buf[n] = '\0';
    j->tagged_seq = strtoull(buf, NULL, 10);
    ordo_storage_req_clear_output(&req);
    return j->tagged_seq > 0 ? ORDO_OK
                             : ordo__set_last_error(ORDO_E_STORAGE, "journal: "
                                                    "bad tagged_seq record");
  }
  ordo_storage_req_clear_output(&req);
  if (rc != ORDO_E_NOT_FOUND)
    return ordo__set_last_error(rc, "journal: reading the tagged_seq record");
  j->tagged_seq = created ? 1 : ordo_queue_next_seq(j->q);
  snprintf(buf, sizeof buf, "%llu", (unsigned long long)j->tagged_seq);
  memset(&req, 0, sizeof(req));
  req.opcode = ORDO_STORAGE_META_SET;
  req.rec.name.data = (unsigned char *)JOURNAL_TAGGED_KEY;
  req.rec.name.len = strlen(JOURNAL_TAGGED_KEY);
  req.rec.value.data = (unsigned char *)buf;
  req.rec.value.len = strlen(buf);
  rc = storage_call(j->st, &req);
  ordo_storage_req_clear_output(&req);
  return rc == ORDO_OK ? ORDO_OK
                       : ordo__set_last_error(rc, "journal: writing the "
                                              "tagged_seq record");
}

#define ORDO__JOURNAL_OF(c)                                                    \
  ((ordo_journal *)((char *)(c)-offsetof(ordo_journal, closer)))

/* ordo_ctx_free's close of a journal its caller left open. */
static void journal_ctx_close(ordo__ctx_closer *c) {
  ordo_journal *j = ORDO__JOURNAL_OF(c);
  int rc;
  recovery_before_close(j);
  rc = storage_close(j->st);
  j->st = NULL;
  j->ctx_closed_rc = rc == ORDO_OK ? j->failed : rc;
  if (j->lock_fd >= 0)
    close(j->lock_fd);
  j->lock_fd = -1;
}

int ordo_journal_open(ordo_ctx *ctx, const char *path,
                      const ordo_journal_options *opt, ordo_journal **out) {
  ordo_queue_options qopt;
  ordo_journal_options defaults;
  const ordo_storage_backend *be;
  ordo_journal *j;
  char *errmsg = NULL;
  int rc, created = 0, flags;

  if (out != NULL)
    *out = NULL;
  if (ctx == NULL || path == NULL || out == NULL)
    return ordo__set_last_error(ORDO_E_INVAL, "journal open: NULL argument");
  if (ordo__on_runtime_thread())
    return ordo__set_last_error(ORDO_E_WOULD_DEADLOCK,
                                "journal open blocks; not on a runtime thread");
  /* The lock file is PATH.lock: a path cut to fit would lock another
   * file, so one that does not fit is refused. */
  if (strlen(path) > JOURNAL_PATH_MAX)
    return ordo__set_last_error(ORDO_E_INVAL, "journal path is too long "
                                "(%zu bytes; at most %d)", strlen(path),
                                JOURNAL_PATH_MAX);
  if (opt == NULL) {
    ordo_journal_options_init(&defaults);
    opt = &defaults;
  }
  be = ordo_storage_backend_find(opt->backend != NULL ? opt->backend
                                                      : "sqlite");
  if (be == NULL)
    return ordo__set_last_error(ORDO_E_INVAL, "journal: unknown storage "
                                "backend '%s'", opt->backend);
  if ((j = calloc(1, sizeof(*j))) == NULL)
    return ordo__set_last_error(ORDO_E_NOMEM, NULL);
  if (pthread_mutex_init(&j->mu, NULL) != 0 ||
      pthread_cond_init(&j->idle_cv, NULL) != 0)
    abort();
  j->ctx = ctx;
  j->next_event = 1;
  j->track_from = UINT64_MAX; /* a checkpoint may say; else after replay */
  {
    const char *q = getenv("ORDO_JOURNAL_QUIET_MS"); /* tests: 0 */
    j->quiet_ms = q != NULL && *q != '\0' ? strtoull(q, NULL, 10) : 500;
  }
  j->lock_fd = -1;
  j->ck_never = opt->checkpoint_records < 0 || opt->checkpoint_ms < 0;
  j->ck_every_records = opt->checkpoint_records > 0
                            ? (unsigned long long)opt->checkpoint_records
                            : CK_DEFAULT_RECORDS;
  {
    /* Tests: checkpoints every few records in a process that has no
     * option for it (ordo submit killed in a loop). */
    const char *e = getenv("ORDO_JOURNAL_CHECKPOINT_RECORDS");
    if (opt->checkpoint_records == 0 && e != NULL && strtoull(e, NULL, 10) > 0)
      j->ck_every_records = strtoull(e, NULL, 10);
  }
  j->ck_every_ms = opt->checkpoint_ms > 0 ? (uint64_t)opt->checkpoint_ms
                                          : CK_DEFAULT_MS;
  j->ck_wall_ms = wall_ms();
  j->ret_count = opt->retention_count > 0
                     ? (unsigned long long)opt->retention_count
                     : RETAIN_DEFAULT_COUNT;
  j->ret_ms = opt->retention_ms > 0 ? (uint64_t)opt->retention_ms
                                    : RETAIN_DEFAULT_MS;
  j->exp_wall_ms = wall_ms();
  j->svc_idle_ms = opt->service_idle_ms > 0 ? (uint64_t)opt->service_idle_ms
                                            : SERVICE_IDLE_DEFAULT_MS;
  j->svc_wall_ms = wall_ms();
  ordo__idset_init(&j->gone_ids);
  ordo__idset_init(&j->gone_lids);
  qopt = opt->queue;
  qopt.forgotten_state = hook_forgotten_state;
  qopt.forgotten_ledger_id = hook_forgotten_ledger_id;
  qopt.on_finish = hook_on_finish;
  qopt.hook_ud = j;
  /* One process at a time: the journal's memory is the truth between its
   * records, so a second writer would replay a different queue (and reuse
   * event numbers). flock is dropped by the kernel when the holder dies,
   * even by SIGKILL, so a crash never leaves it stale. */
  if (!opt->create && access(path, F_OK) != 0) {
    journal_free(j);
    return ordo__set_last_error(ORDO_E_NOT_FOUND, "journal %s: no such "
                                "file", path);
  }
  {
    char lpath[JOURNAL_PATH_MAX + sizeof ".lock"];
    snprintf(lpath, sizeof lpath, "%s.lock", path); /* fits: checked above */
    j->lock_fd = open(lpath, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (j->lock_fd < 0) {
      rc = ordo__set_last_error(errno == ENOENT ? ORDO_E_NOT_FOUND
                                                : ORDO_E_STORAGE,
                                "journal %s: cannot open its lock file: %s",
                                path, strerror(errno));
      journal_free(j);
      return rc;
    }
    if (flock(j->lock_fd, LOCK_EX | LOCK_NB) != 0) {
      rc = ordo__set_last_error(ORDO_E_STORAGE_BUSY, "journal %s is open in "
                                "another process (or another open)", path);
      journal_free(j);
      return rc;
    }
  }
  /* A restart reads the WAL instead of waiting for its copy at close. */
  flags = ORDO_STORAGE_KEEP_WAL |
          (opt->no_group_commit ? ORDO_STORAGE_NO_GROUP_COMMIT : 0);
  rc = be->open(be, ctx, path, flags, &j->st, &errmsg);
  if (rc == ORDO_E_WALLET_NOT_FOUND && opt->create) {
    free(errmsg);
    errmsg = NULL;
    rc = be->open(be, ctx, path, flags | ORDO_STORAGE_CREATE, &j->st, &errmsg);
    created = rc == ORDO_OK;
  }
  if (rc == ORDO_E_WALLET_NOT_FOUND)
    rc = ORDO_E_NOT_FOUND; /* the storage says it as for a wallet */
  if (rc != ORDO_OK) {
    ordo__set_last_error(rc, "journal %s: %s", path,
                         errmsg != NULL ? errmsg : ordo_strerror(rc));
    free(errmsg);
    journal_free(j);
    return rc;
  }
  free(errmsg);
  j->replaying = 1;
  if ((rc = journal_meta(j, created)) != ORDO_OK ||
      (rc = journal_locking(j, created, &qopt)) != ORDO_OK ||
      (j->qopt = qopt, rc = ordo_queue_new(&qopt, &j->q)) != ORDO_OK ||
      (rc = journal_replay(j)) != ORDO_OK ||
      (rc = journal_tagged(j, created)) != ORDO_OK) {
    char *keep = ordo__strdup(ordo_last_error_message());
    (void)storage_close(j->st);
    journal_free(j);
    ordo__set_last_error(rc, "%s", keep != NULL ? keep : ordo_strerror(rc));
    free(keep);
    return rc;
  }
  j->replaying = 0;
  if (j->track_from == UINT64_MAX) /* no checkpoint said: from here on */
    j->track_from = j->next_event;
  journal_evict(j);
  j->closer.close = journal_ctx_close;
  if ((rc = ordo__ctx_closer_attach(ctx, &j->closer)) != ORDO_OK) {
    (void)storage_close(j->st);
    journal_free(j);
    return ordo__set_last_error(rc, "journal %s: the context is shutting "
                                "down", path);
  }
  pthread_mutex_lock(&j->mu);
  gone_load_start(j); /* after a clean close: read behind the open */
  pthread_mutex_unlock(&j->mu);
  *out = j;
  return ORDO_OK;
}

int ordo_journal_close(ordo_journal *j) {
  int rc;
  if (j == NULL)
    return ORDO_OK;
  if (ordo__on_runtime_thread())
    return ordo__set_last_error(ORDO_E_WOULD_DEADLOCK,
                                "journal close blocks; not on a runtime thread");
  if (ordo__ctx_closer_detach(j->ctx, &j->closer)) {
    /* A clean close leaves a checkpoint of everything: the next open
     * reads it alone. */
    pthread_mutex_lock(&j->mu);
    while (j->recovering || j->outstanding > 0 || j->gone_loading)
      pthread_cond_wait(&j->idle_cv, &j->mu);
    if (!j->ck_never && j->failed == ORDO_OK && !j->ck_pending &&
        j->gone_loaded &&
        j->next_event > (j->ck_event > 0 ? j->ck_event : 1))
      (void)journal_checkpoint(j);
    j->closing = 1;
    pthread_mutex_unlock(&j->mu);
    recovery_before_close(j);
    /* CLOSE runs after every record submitted before it: their dones (and
     * so the ops waiting on them) have all been called when it returns. */
    rc = storage_close(j->st);
    if (rc == ORDO_OK)
      rc = j->failed;
  } else {
    rc = j->ctx_closed_rc; /* ordo_ctx_free closed it */
  }
  journal_free(j);
  return rc;
}

/* ---- enqueue: one request, one transaction ------------------------------ */

static int status_locked(ordo_journal *j, const char *id, ordo_queue_state *st,
                         const char **reason);
static int expire_locked(ordo_journal *j, uint64_t now, size_t *count);

static void digest_bytes(crypto_generichash_state *st, const void *p,
                         size_t n) {
  unsigned char len[8];
  be64(len, (uint64_t)n);
  crypto_generichash_update(st, len, sizeof len);
  if (n > 0)
    crypto_generichash_update(st, p, n);
}

static void digest_strs(crypto_generichash_state *st, const char *const *v,
                        size_t n) {
  unsigned char len[8];
  be64(len, (uint64_t)n);
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
static void content_digest(const ordo_queue_batch_spec *sp,
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

/* The enq record's JSON of spec (without seq and t), or NULL: a string
 * that is not UTF-8 (or no memory). */
static json_t *enq_event(const ordo_queue_batch_spec *spec) {
  json_t *ev = json_pack(
      "{s:s, s:s, s:s, s:o*, s:o*, s:o*, s:s*}", "e", "enq", "id", spec->id,
      "service", spec->service, "reads",
      spec->nreads ? str_array(spec->reads, spec->nreads) : NULL, "writes",
      spec->nwrites ? str_array(spec->writes, spec->nwrites) : NULL, "deps",
      spec->ndeps ? str_array(spec->deps, spec->ndeps) : NULL, "ledger_id",
      spec->ledger_id);
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
static unsigned char *record_value(json_t *ev, const void *payload,
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
                       const ordo_queue_batch_spec *const *sp, size_t m) {
  size_t k;
  w->j = j;
  w->req.done = write_done;
  if (m == 0) {
    w->barrier = 1;
    w->req.opcode = ORDO_STORAGE_META_GET;
    w->req.rec.name.data = (unsigned char *)JOURNAL_META_KEY;
    w->req.rec.name.len = strlen(JOURNAL_META_KEY);
  } else if (m == 1) {
    if ((w->value = record_value(evs[0], sp[0]->payload, sp[0]->payload_len,
                                 &w->value_len)) == NULL)
      return ORDO_E_NOMEM;
    be64(w->name, j->next_event);
    add_req(&w->req, w->name, w->value, w->value_len);
    if (jwrite_tag(w, evs[0]) != ORDO_OK)
      return ORDO_E_NOMEM;
  } else {
    if ((w->subs = calloc(m, sizeof(*w->subs))) == NULL ||
        (w->values = calloc(m, sizeof(*w->values))) == NULL ||
        (w->names = calloc(m, sizeof(*w->names))) == NULL ||
        (w->subtags = calloc(m, sizeof(*w->subtags))) == NULL)
      return ORDO_E_NOMEM;
    w->nsubs = m;
    for (k = 0; k < m; k++) {
      size_t len = 0;
      if ((w->values[k] = record_value(evs[k], sp[k]->payload,
                                       sp[k]->payload_len, &len)) == NULL)
        return ORDO_E_NOMEM;
      be64(w->names[k], j->next_event + k);
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

/* Under j->mu, after enq_prepare: submit w's request (m records). */
static int enq_send(ordo_journal *j, jwrite *w, size_t m) {
  int rc;
  w->req.flags = ORDO_STORAGE_REQ_CHAINED; /* the log stays a prefix */
  rc = j->st->backend->submit(j->st, &w->req);
  if (rc != ORDO_OK) {
    journal_fail(j, rc, "the storage backend refused a journal write");
    jwrite_settle(w, ORDO_E_STORAGE, j->failed_message);
    return ORDO_E_STORAGE;
  }
  j->outstanding++;
  j->next_event += m;
  j->records += m;
  return ORDO_OK;
}

/* Under j->mu: whether the queue has the batch (not forgotten). */
static int in_memory(ordo_journal *j, const char *id) {
  uint64_t seq;
  return ordo_queue_batch_seq(j->q, id, &seq) == ORDO_OK;
}

/* The answer for a batch that is there already, identically. */
static json_t *already_json(ordo_journal *j, const char *id) {
  ordo_queue_state st = ORDO_QUEUE_QUEUED;
  uint64_t seq = 0;
  (void)status_locked(j, id, &st, NULL);
  (void)ordo_queue_batch_seq(j->q, id, &seq);
  return json_pack("{s:s, s:I, s:b, s:s}", "id", id, "seq", (json_int_t)seq,
                   "already_enqueued", 1, "state", ordo_queue_state_name(st));
}

static ordo_op *enqueue_many(ordo_journal *j, const ordo_queue_batch_spec *specs,
                             size_t n, size_t *bad, int single) {
  jwrite *w;
  ordo_op *op;
  json_t **evs = NULL, **nev = NULL, *items = NULL, *seen = NULL,
         *lseen = NULL;
  unsigned char (*dg)[ORDO_QUEUE_DIGEST_BYTES] = NULL;
  ordo_queue_batch_spec *nsp = NULL;
  const ordo_queue_batch_spec **nsrc = NULL;
  size_t *nidx = NULL, i, k, m = 0, bb = 0;
  uint64_t *seqs = NULL, now;
  int rc = ORDO_OK;
  struct {
    int flags; /* gone_ids' flags, or -1: not forgotten */
    int found; /* d was read */
    jdisk d;
  } *gone = NULL;

  if (bad != NULL)
    *bad = (size_t)-1;
  if (j == NULL || (w = calloc(1, sizeof(*w))) == NULL)
    return NULL;
  if ((op = join_op(j, w)) == NULL)
    return NULL;
  if (ordo_op_status(op) != ORDO_E_PENDING)
    return op; /* refused at admission: nothing enqueued */
  if (specs == NULL || n == 0) {
    jwrite_settle(w, ORDO_E_INVAL, "enqueue: no batches");
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
    jwrite_settle(w, ORDO_E_NOMEM, "journal: out of memory");
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
      content_digest(sp, dg[i]);
      continue;
    }
    bb = i;
  }
  if (rc != ORDO_OK) {
    if (bad != NULL)
      *bad = bb;
    jwrite_settle(w, rc, ordo_last_error_message());
    goto out;
  }
  /* Ids of batches that finished and left memory: their records are read
   * now, before the lock (disk_lookup waits on the storage, whose dones
   * take it), so that a retry of one is answered as it stands and another
   * batch under its id is refused, as for a batch in memory. */
  {
    size_t ngone = 0;
    pthread_mutex_lock(&j->mu);
    if ((rc = gone_wait(j)) != ORDO_OK) {
      pthread_mutex_unlock(&j->mu);
      jwrite_settle(w, rc, ordo_last_error_message());
      goto out;
    }
    for (i = 0; i < n; i++)
      if (ordo__idset_get(&j->gone_ids, specs[i].id) >= 0 &&
          !in_memory(j, specs[i].id))
        ngone++;
    if (ngone > 0 && (gone = calloc(n, sizeof(*gone))) != NULL)
      for (i = 0; i < n; i++) {
        gone[i].flags = ordo__idset_get(&j->gone_ids, specs[i].id);
        if (gone[i].flags >= 0 && in_memory(j, specs[i].id))
          gone[i].flags = -1;
      }
    pthread_mutex_unlock(&j->mu);
    if (ngone > 0 && gone == NULL) {
      jwrite_settle(w, ORDO_E_NOMEM, "journal: out of memory");
      goto out;
    }
    for (i = 0; gone != NULL && i < n; i++)
      if (gone[i].flags >= 0 &&
          disk_lookup(j, specs[i].id, gone[i].flags, &gone[i].d) == ORDO_OK)
        gone[i].found = 1;
  }
  now = wall_ms();
  pthread_mutex_lock(&j->mu);
  if ((rc = journal_check_as(j, 1)) != ORDO_OK) {
    pthread_mutex_unlock(&j->mu);
    jwrite_settle(w, rc, ordo_last_error_message());
    goto out;
  }
  /* An id the queue has: the same batch again (a client's retry) is
   * answered as it stands; another batch under that id is refused. */
  for (i = 0; i < n; i++) {
    const unsigned char *d = NULL;
    if (gone != NULL && gone[i].found &&
        !in_memory(j, specs[i].id)) {
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
    jwrite_settle(w, rc, ordo_last_error_message());
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
  for (i = 0, k = 0; i < n && rc == ORDO_OK; i++) {
    json_t *it;
    if (k < m && nidx[k] == i) {
      it = json_pack("{s:s, s:I}", "id", specs[i].id, "seq",
                     (json_int_t)seqs[k]);
      if (json_object_set_new(evs[i], "seq", json_integer((json_int_t)seqs[k])) ||
          json_object_set_new(evs[i], "t", json_integer((json_int_t)now)))
        rc = ORDO_E_NOMEM;
      nev[k++] = evs[i];
    } else if (gone != NULL && gone[i].found &&
               !in_memory(j, specs[i].id)) {
      it = json_pack("{s:s, s:I, s:b, s:s}", "id", specs[i].id, "seq",
                     (json_int_t)gone[i].d.seq, "already_enqueued", 1, "state",
                     ordo_queue_state_name(gone[i].d.state));
    } else {
      it = already_json(j, specs[i].id);
    }
    if (json_array_append_new(items, it) != 0)
      rc = ORDO_E_NOMEM;
  }
  if (rc == ORDO_OK) {
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
    rc = enq_prepare(j, w, nev, nsrc, m);
  if (rc != ORDO_OK) {
    pthread_mutex_unlock(&j->mu);
    jwrite_settle(w, ORDO_E_NOMEM, "journal: out of memory");
    goto out;
  }
  if (m > 0 &&
      (rc = ordo_queue_enqueue_many(j->q, nsp, m, NULL, &k)) != ORDO_OK) {
    if (rc == ORDO_E_NOMEM && k > 0) /* held, never to be journaled */
      journal_fail(j, ORDO_E_NOMEM, "journal: out of memory");
    strlist_free(&j->fin_pending, &j->nfin_pending, &j->capfin_pending);
    pthread_mutex_unlock(&j->mu);
    if (bad != NULL)
      *bad = nidx[k];
    jwrite_settle(w, rc, ordo_last_error_message());
    goto out;
  }
  /* Settles w itself on failure (and fails the journal). */
  if (enq_send(j, w, m) == ORDO_OK) {
    fin_flush(j, NULL, 0); /* batches whose dep had ended INVALID */
    if (ck_due(j))
      (void)journal_checkpoint(j);
  } else
    strlist_free(&j->fin_pending, &j->nfin_pending, &j->capfin_pending);
  pthread_mutex_unlock(&j->mu);
out:
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
    jdisk_clear(&gone[i].d);
  free(gone);
  return op;
}

ordo_op *ordo_journal_enqueue_many(ordo_journal *j,
                                   const ordo_queue_batch_spec *specs,
                                   size_t n, size_t *bad) {
  return enqueue_many(j, specs, n, bad, 0);
}

ordo_op *ordo_journal_enqueue(ordo_journal *j, const ordo_queue_batch_spec *spec) {
  return enqueue_many(j, spec, spec != NULL ? 1 : 0, NULL, 1);
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
    rc = journal_check(j);
    /* The items of earlier takes are done with (see "Forgetting"). */
    journal_evict(j);
    if (rc == ORDO_OK && ck_due(j))
      (void)journal_checkpoint(j); /* if it cannot, the log just grows */
    if (rc == ORDO_OK)
      expire_start(j);
    /* Services empty and idle for svc_idle_ms leave memory (their
     * counters with them), checked once a minute. */
    if (rc == ORDO_OK && wall_ms() - j->svc_wall_ms >= EXPIRE_EVERY_MS) {
      uint64_t now = wall_ms();
      j->svc_wall_ms = now;
      if (now > j->svc_idle_ms)
        j->services_dropped +=
            ordo_queue_drop_idle_services(j->q, now - j->svc_idle_ms);
    }
    /* Dep timeouts are due by the wall clock: the submitter's every step
     * passes here (ordo_journal_expire for a caller that has no take). */
    if (rc == ORDO_OK && ordo_queue_next_expiry(j->q, &due)) {
      uint64_t now = wall_ms();
      if (due <= now)
        rc = expire_locked(j, now, NULL);
    }
    ordo_queue_get_totals(j->q, &t);
    unknown = j->nunknown;
    pthread_mutex_unlock(&j->mu);
    if (rc != ORDO_OK || t.queued == 0 || unknown > 0)
      return rc;
  }
  /* The op first: if the runtime refuses it, nothing has been taken. */
  if ((w = calloc(1, sizeof(*w))) == NULL || (op = join_op(j, w)) == NULL)
    return ordo__set_last_error(ORDO_E_NOMEM, NULL);
  if ((rc = ordo_op_status(op)) != ORDO_E_PENDING) {
    ordo_op_release(op);
    return ordo__set_last_error(rc, "take: the runtime refused the op");
  }
  pthread_mutex_lock(&j->mu);
  if ((rc = journal_check(j)) != ORDO_OK || j->nunknown > 0 ||
      (rc = ordo_queue_take(j->q, out, max, n)) != ORDO_OK || *n == 0) {
    pthread_mutex_unlock(&j->mu);
    jwrite_settle(w, ORDO_OK, NULL);
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
    journal_fail(j, ORDO_E_NOMEM, "journal: out of memory");
    pthread_mutex_unlock(&j->mu);
    jwrite_settle(w, ORDO_E_STORAGE, "journal: out of memory");
  } else {
    (void)journal_write(j, w, ev, NULL, 0);
    pthread_mutex_unlock(&j->mu);
    json_decref(ev);
  }
  *durable = op;
  return ORDO_OK;
}

int ordo_journal_finish(ordo_journal *j, const char *id,
                        ordo_queue_state outcome, const char *reason) {
  int rc;
  if (j == NULL || id == NULL)
    return ordo__set_last_error(ORDO_E_INVAL, "finish: NULL argument");
  pthread_mutex_lock(&j->mu);
  if ((rc = journal_check(j)) == ORDO_OK &&
      (rc = ordo_queue_finish(j->q, id, outcome, reason)) == ORDO_OK) {
    uint64_t t = wall_ms();
    (void)unknown_drop(j, id);
    note_finish(j, id, t);
    rc = journal_note(
        j, outcome == ORDO_QUEUE_COMMITTED
               ? json_pack("{s:s, s:s, s:s, s:I}", "e", "fin", "id", id,
                           "state", "COMMITTED", "t", (json_int_t)t)
               : json_pack("{s:s, s:s, s:s, s:s, s:I}", "e", "fin", "id", id,
                           "state", "INVALID", "reason",
                           reason != NULL ? reason : "invalid", "t",
                           (json_int_t)t));
    fin_flush(j, &id, 1);
  }
  pthread_mutex_unlock(&j->mu);
  return rc;
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
      note_finish(j, v[i].id, now);
      r = journal_note(j, json_pack("{s:s, s:s, s:s, s:s, s:I, s:b}", "e",
                                    "fin", "id", v[i].id, "state", "INVALID",
                                    "reason", v[i].reason, "t",
                                    (json_int_t)now, "expired", 1));
      if (rc == ORDO_OK)
        rc = r;
      direct[i] = v[i].id;
    }
    fin_flush(j, direct, n);
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
  if ((rc = journal_check(j)) == ORDO_OK && (rc = gone_wait(j)) == ORDO_OK)
    rc = expire_locked(j, now_ms != 0 ? now_ms : wall_ms(), expired);
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
  if ((op = join_op(j, w)) == NULL)
    return NULL;
  if (ordo_op_status(op) != ORDO_E_PENDING)
    return op; /* refused at admission: nothing cancelled */
  if (id == NULL) {
    jwrite_settle(w, ORDO_E_INVAL, "cancel: NULL id");
    return op;
  }
  pthread_mutex_lock(&j->mu);
  if ((rc = journal_check(j)) == ORDO_OK && (rc = gone_wait(j)) == ORDO_OK &&
      (rc = status_locked(j, id, &st, NULL)) == ORDO_OK &&
      st == ORDO_QUEUE_UNKNOWN)
    rc = ordo__set_last_error(ORDO_E_STATE, "cancel %s: the batch is UNKNOWN: "
                              "it was sent before a restart and its verdict "
                              "will come from the ledger", id);
  t = wall_ms();
  /* The answer and the record before the queue changes: after it, a
   * failure for want of memory could only stop the journal. The op is
   * answered once the record is durable: a cancel lost in a crash would
   * let the batch go to the ledger after its caller was told it never
   * would. */
  if (rc == ORDO_OK) {
    json_t *ev = json_pack("{s:s, s:s, s:s, s:I}", "e", "cancel", "id", id,
                           "reason", "cancelled", "t", (json_int_t)t);
    if (ev != NULL)
      ev_ledger_id(j, ev);
    w->result = json_pack("{s:s, s:s, s:s}", "id", id, "state", "INVALID",
                          "reason", "cancelled");
    if (ev == NULL || w->result == NULL ||
        (w->value = record_value(ev, NULL, 0, &w->value_len)) == NULL ||
        jwrite_tag(w, ev) != ORDO_OK)
      rc = ordo__set_last_error(ORDO_E_NOMEM, "journal: out of memory");
    json_decref(ev);
  }
  if (rc == ORDO_OK)
    rc = ordo_queue_cancel(j->q, id, "cancelled");
  if (rc != ORDO_OK) {
    pthread_mutex_unlock(&j->mu);
    jwrite_settle(w, rc, ordo_last_error_message());
    return op;
  }
  note_finish(j, id, t);
  w->j = j;
  w->req.done = write_done;
  be64(w->name, j->next_event);
  add_req(&w->req, w->name, w->value, w->value_len);
  if (enq_send(j, w, 1) == ORDO_OK) /* settles w on failure */
    fin_flush(j, &id, 1);
  pthread_mutex_unlock(&j->mu);
  return op;
}

int ordo_journal_confirm_submitted(ordo_journal *j, const char *id) {
  int rc;
  if (j == NULL || id == NULL)
    return ordo__set_last_error(ORDO_E_INVAL, "confirm: NULL argument");
  pthread_mutex_lock(&j->mu);
  if ((rc = journal_check(j)) == ORDO_OK && !unknown_drop(j, id))
    rc = ordo__set_last_error(ORDO_E_STATE, "batch '%s' is not UNKNOWN", id);
  pthread_mutex_unlock(&j->mu);
  return rc;
}

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
  rc = storage_call(j->st, &req);
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
  rc = gone_wait(j);
  flags = ordo__idset_get(&j->gone_ids, id);
  pthread_mutex_unlock(&j->mu);
  if (rc != ORDO_OK)
    return rc;
  d.want_payload = 1;
  if ((rc = disk_lookup(j, id, flags < 0 ? 0 : flags, &d)) != ORDO_OK)
    return rc;
  *payload = d.payload;
  *len = d.payload_len;
  d.payload = NULL;
  jdisk_clear(&d);
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
    if (!unknown_has(j, j->unknown[k]))
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
  rc = journal_check(j);
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
    rc = journal_note(j, ev);
  }
  pthread_mutex_unlock(&j->mu);
  return rc;
}

int ordo_journal_resume(ordo_journal *j, const char *service) {
  int rc;
  if (j == NULL || service == NULL)
    return ordo__set_last_error(ORDO_E_INVAL, "resume: NULL argument");
  pthread_mutex_lock(&j->mu);
  if ((rc = journal_check(j)) == ORDO_OK &&
      (rc = ordo_queue_resume(j->q, service)) == ORDO_OK)
    rc = journal_note(j, json_pack("{s:s, s:s}", "e", "resume", "service",
                                   service));
  pthread_mutex_unlock(&j->mu);
  return rc;
}

/* Under j->mu. */
static int status_locked(ordo_journal *j, const char *id, ordo_queue_state *st,
                         const char **reason) {
  int rc = ordo_queue_batch_status(j->q, id, st, reason);
  if (rc == ORDO_OK && *st == ORDO_QUEUE_SUBMITTED && unknown_has(j, id))
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
  rc = status_locked(j, id, &st, &why);
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
    if ((rc = gone_wait(j)) != ORDO_OK) {
      pthread_mutex_unlock(&j->mu);
      return rc;
    }
    flags = ordo__idset_get(&j->gone_ids, id);
    pthread_mutex_unlock(&j->mu);
    if (flags < 0)
      return nf; /* its message is set still: gone_wait set none */
    if ((rc = disk_lookup(j, id, flags, &d)) != ORDO_OK)
      return ordo_last_error();
    if (state != NULL)
      *state = d.state;
    if (seq != NULL)
      *seq = d.seq;
    if (reason != NULL) {
      *reason = d.reason;
      d.reason = NULL;
    }
    jdisk_clear(&d);
    return ORDO_OK;
  }
  pthread_mutex_unlock(&j->mu);
  return rc;
}

/* JSON text of o (taken), or NULL with the last error set. */
static char *dump_or_null(json_t *o) {
  char *s = o != NULL ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
  json_decref(o);
  if (s == NULL)
    ordo__set_last_error(ORDO_E_NOMEM, NULL);
  return s;
}

char *ordo_journal_batch_json(ordo_journal *j, const char *id) {
  ordo_queue_state st;
  const char *why = NULL, *svc = NULL;
  uint64_t seq = 0;
  json_t *o = NULL;
  if (j == NULL || id == NULL) {
    ordo__set_last_error(ORDO_E_INVAL, "status: NULL argument");
    return NULL;
  }
  pthread_mutex_lock(&j->mu);
  if (status_locked(j, id, &st, &why) != ORDO_OK) {
    int flags = -1, rc;
    jdisk d = {0};
    /* On ORDO_OK gone_wait sets no error: the status's stays. */
    if ((rc = gone_wait(j)) == ORDO_OK)
      flags = ordo__idset_get(&j->gone_ids, id);
    pthread_mutex_unlock(&j->mu);
    if (rc != ORDO_OK || flags < 0 ||
        (rc = disk_lookup(j, id, flags, &d)) != ORDO_OK)
      return NULL; /* ORDO_E_NOT_FOUND, set */
    o = json_pack("{s:s, s:s, s:I, s:s}", "id", id, "service", d.service,
                  "seq", (json_int_t)d.seq, "state",
                  ordo_queue_state_name(d.state));
    if (o != NULL && d.reason != NULL)
      json_object_set_new(o, "reason", json_string(d.reason));
    if (o != NULL && d.t_enq != 0)
      json_object_set_new(o, "enqueued_ms", json_integer((json_int_t)d.t_enq));
    if (o != NULL && d.t_fin != 0)
      json_object_set_new(o, "finished_ms", json_integer((json_int_t)d.t_fin));
    if (o != NULL && d.ledger_id != NULL)
      json_object_set_new(o, "ledger_id", json_string(d.ledger_id));
    jdisk_clear(&d);
    return dump_or_null(o);
  }
  (void)ordo_queue_batch_seq(j->q, id, &seq);
  (void)ordo_queue_batch_service(j->q, id, &svc);
  o = json_pack("{s:s, s:s, s:I, s:s}", "id", id, "service", svc, "seq",
                (json_int_t)seq, "state", ordo_queue_state_name(st));
  if (o != NULL && why != NULL)
    json_object_set_new(o, "reason", json_string(why));
  {
    uint64_t te = 0, tf = 0;
    (void)ordo_queue_batch_times(j->q, id, &te, &tf);
    if (o != NULL && te != 0)
      json_object_set_new(o, "enqueued_ms", json_integer((json_int_t)te));
    if (o != NULL && tf != 0)
      json_object_set_new(o, "finished_ms", json_integer((json_int_t)tf));
  }
  {
    ordo_queue_item it;
    if (o != NULL && ordo_queue_item_get(j->q, id, &it) == ORDO_OK &&
        it.ledger_id != NULL)
      json_object_set_new(o, "ledger_id", json_string(it.ledger_id));
  }
  if (o != NULL && st == ORDO_QUEUE_WAITING) {
    char *ex = ordo_queue_explain(j->q, id);
    if (ex != NULL)
      json_object_set_new(o, "explain", json_string(ex));
    free(ex);
  }
  pthread_mutex_unlock(&j->mu);
  return dump_or_null(o);
}

/* Under j->mu: UNKNOWN batches of one service (or all, svc NULL). */
static size_t unknown_count(const ordo_journal *j, const char *svc) {
  if (svc == NULL)
    return j->nunknown;
  return j->unknown_svc != NULL
             ? (size_t)json_integer_value(json_object_get(j->unknown_svc, svc))
             : 0;
}

char *ordo_journal_service_json(ordo_journal *j, const char *service) {
  ordo_queue_service_info in;
  json_t *o;
  size_t unk;
  if (j == NULL || service == NULL) {
    ordo__set_last_error(ORDO_E_INVAL, "service status: NULL argument");
    return NULL;
  }
  pthread_mutex_lock(&j->mu);
  if (ordo_queue_service_status(j->q, service, &in) != ORDO_OK) {
    pthread_mutex_unlock(&j->mu);
    return NULL;
  }
  unk = unknown_count(j, service);
  o = json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:b}", "service",
                service, "depth", (json_int_t)in.depth, "queued",
                (json_int_t)in.queued, "waiting", (json_int_t)in.waiting,
                "in_flight", (json_int_t)(in.in_flight - unk), "unknown",
                (json_int_t)unk, "committed", (json_int_t)in.committed,
                "invalid", (json_int_t)in.invalid, "halted", in.halted);
  if (o != NULL && in.halted && in.halt_batch != NULL) {
    json_object_set_new(o, "halt_batch", json_string(in.halt_batch));
    json_object_set_new(o, "halt_reason",
                        json_string(in.halt_reason ? in.halt_reason : ""));
  }
  pthread_mutex_unlock(&j->mu);
  return dump_or_null(o);
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

char *ordo_journal_totals_json(ordo_journal *j) {
  ordo_queue_totals t;
  json_t *o;
  if (j == NULL) {
    ordo__set_last_error(ORDO_E_INVAL, "totals: NULL journal");
    return NULL;
  }
  pthread_mutex_lock(&j->mu);
  /* "retained" counts the sets: whole once read after an open (on a
   * runtime thread, which must not wait, as they are). */
  if (!j->gone_loaded && !ordo__on_runtime_thread())
    (void)gone_wait(j);
  ordo_queue_get_totals(j->q, &t);
  o = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "queued",
                (json_int_t)t.queued, "waiting", (json_int_t)t.waiting,
                "in_flight", (json_int_t)(t.in_flight - j->nunknown),
                "unknown", (json_int_t)j->nunknown, "committed",
                (json_int_t)t.committed, "invalid", (json_int_t)t.invalid,
                "services", (json_int_t)t.services, "journal_records",
                (json_int_t)(j->next_event - 1));
  if (o != NULL)
    json_object_set_new(
        o, "queue_memory_bytes",
        json_integer((json_int_t)(t.memory_bytes +
                                  ordo__idset_bytes(&j->gone_ids) +
                                  ordo__idset_bytes(&j->gone_lids))));
  if (o != NULL)
    json_object_set_new(o, "forgotten",
                        json_integer((json_int_t)j->forgotten));
  if (o != NULL)
    json_object_set_new(o, "retained",
                        json_integer((json_int_t)j->gone_ids.n));
  if (o != NULL)
    json_object_set_new(o, "expired", json_integer((json_int_t)j->expired));
  if (o != NULL)
    json_object_set_new(o, "id_segments",
                        json_integer((json_int_t)j->nsegs));
  if (o != NULL)
    json_object_set_new(o, "checkpoints",
                        json_integer((json_int_t)j->checkpoints));
  if (o != NULL)
    json_object_set_new(o, "services_dropped",
                        json_integer((json_int_t)j->services_dropped));
  if (o != NULL)
    json_object_set_new(
        o, "latency_ms",
        json_pack("{s:I, s:I, s:I}", "count", (json_int_t)j->nlat, "p50",
                  (json_int_t)lat_percentile(j, 0.50), "p99",
                  (json_int_t)lat_percentile(j, 0.99)));
  if (o != NULL && j->failed != ORDO_OK)
    json_object_set_new(o, "failed", json_string(j->failed_message));
  pthread_mutex_unlock(&j->mu);
  return dump_or_null(o);
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
    if ((rc = replay_one(&j, &r, &subs, &nsubs, &capsubs)) != ORDO_OK)
      rc = ordo__set_last_error(rc, "journal event %zu: %s", line,
                                ordo_last_error_message());
  }
  for (i = 0; i < nsubs; i++)
    free(subs[i]);
  free(subs);
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
  size_t nsubs = 0, capsubs = 0, n = 0, cap = 0, off = 0, i;
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
    ck_name(r->name.data, 1, (uint32_t)n);
    r->name.len = JOURNAL_CK_NAME;
    memcpy(r->value.data, data + off, k);
    r->value.len = k;
    n++;
    off += k;
  }
  if (rc == ORDO_OK)
    rc = ck_load(&j, recs, n, &subs, &nsubs, &capsubs, &E, &parts);
  for (i = 0; i < n; i++)
    ordo_storage_record_clear(&recs[i]);
  free(recs);
  for (i = 0; i < nsubs; i++)
    free(subs[i]);
  free(subs);
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
  if (commits != NULL)
    *commits = ordo__storage_sqlite_commits(j->st);
}

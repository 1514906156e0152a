/*
 * journal_int.h — what the files of the journal share (journal.c and
 * journal_*.c), internal to src/queue: the journal's struct, a write's
 * struct, the record format's constants, and the functions one file
 * calls in another (ordo__j_*). The journal's contract is in queue.h ("The
 * durable journal"); journal.c's opening comment says how the files
 * divide it.
 */
#ifndef ORDO_QUEUE_JOURNAL_INT_H
#define ORDO_QUEUE_JOURNAL_INT_H

#include "base/base.h"
#include "queue/queue.h"
#include "queue/idset.h"
#include "base/jsonw.h"
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
/* Segments of the forgotten sets: category "ckid", name ordo__j_be64(E) of the
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
/* A retention pass runs at a take at most this often (or at once when
 * over the count). */
#define EXPIRE_EVERY_MS 60000
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
  /* Take ahead (ordo_journal_set_take_ahead): the batches an enqueue took
   * for the next ordo_journal_take, and the op that completes when their
   * "sub" record (in that enqueue's transaction) is durable. */
  size_t ahead_max;      /* 0: off */
  int ahead_armed;       /* the last take found nothing */
  ordo_queue_item *stash;
  size_t nstash;
  ordo_op *stash_op;
  void (*ahead_ready)(void *ud); /* a take ahead is durable */
  void *ahead_ud;
  unsigned long long taken_ahead; /* batches taken so, in all */
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
  /* An enqueue that took ahead: the take's jwrite (settled with this one,
   * as its record is in this one's transaction) and its record's event. */
  struct jwrite *ahead;
  uint64_t ahead_event;
};

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

/* The functions one file of the journal calls in another, by the file that
 * defines them; each is described where it is defined. */

/* ---- journal.c ---- */

void ordo__j_be64(unsigned char out[8], uint64_t v);
void ordo__j_delete_req(ordo_storage_req *d, const ordo_storage_record *r);
int ordo__j_disk_lookup(ordo_journal *j, const char *id, int flags, jdisk *d);
void ordo__j_ev_ledger_id(ordo_journal *j, json_t *ev);
int ordo__j_event_tagged(const char *kind, int *finishes);
void ordo__j_fin_flush(ordo_journal *j, const char *const *direct, size_t n);
int ordo__j_gone_put(ordo_journal *j, const char *id, const char *ledger_id,
                     int invalid);
int ordo__j_hook_forgotten_ledger_id(void *ud, const char *ledger_id);
ordo_queue_state ordo__j_hook_forgotten_state(void *ud, const char *id);
void ordo__j_hook_on_finish(void *ud, const char *id, ordo_queue_state st,
                            const char *reason);
void ordo__j_jdisk_clear(jdisk *d);
ordo_op *ordo__j_join_op(ordo_journal *j, jwrite *w);
int ordo__j_journal_check(ordo_journal *j);
int ordo__j_journal_check_as(ordo_journal *j, int enqueue);
void ordo__j_journal_evict(ordo_journal *j);
void ordo__j_journal_fail(ordo_journal *j, int status, const char *msg);
int ordo__j_journal_note(ordo_journal *j, json_t *ev);
int ordo__j_journal_write(ordo_journal *j, jwrite *w, json_t *ev,
                          const void *payload, size_t payload_len);
void ordo__j_jwrite_free(void *p);
void ordo__j_jwrite_settle(jwrite *w, int status, const char *msg);
int ordo__j_jwrite_tag(jwrite *w, json_t *ev);
uint64_t ordo__j_lat_percentile(const ordo_journal *j, double p);
void ordo__j_name_leaf(ordo_storage_query *q, ordo_storage_buf *v,
                       unsigned char buf[8], ordo_storage_qop op, uint64_t ev);
void ordo__j_note_finish(ordo_journal *j, const char *id, uint64_t t);
uint64_t ordo__j_rd64(const unsigned char in[8]);
json_t *ordo__j_record_event(const ordo_storage_record *r, size_t flags,
                             json_error_t *err, const unsigned char **payload,
                             size_t *payload_len);
void ordo__j_redo_add(ordo_journal *j, const jwrite *w);
void ordo__j_scan_req(ordo_storage_req *req, const char *category,
                      const ordo_storage_query *q, unsigned long long limit,
                      unsigned flags);
int ordo__j_storage_call(ordo_storage *st, ordo_storage_req *req);
void ordo__j_strlist_free(char ***v, size_t *n, size_t *cap);
int ordo__j_strlist_push(char ***v, size_t *n, size_t *cap, char *s);
int ordo__j_submit_batch(ordo_journal *j, ordo_storage_req *req,
                         ordo_storage_req *subs, size_t n,
                         void (*done)(ordo_storage_req *));
ordo_storage_record *ordo__j_take_results(ordo_storage_req *req, size_t *n);
void ordo__j_records_free(ordo_storage_record *recs, size_t n);
void ordo__j_unknown_clear(ordo_journal *j);
int ordo__j_unknown_count_add(ordo_journal *j, const char *id, int delta);
int ordo__j_unknown_drop(ordo_journal *j, const char *id);
int ordo__j_unknown_has(const ordo_journal *j, const char *id);
void ordo__j_untagged_drop(ordo_journal *j);
void ordo__j_untagged_note(ordo_journal *j, uint64_t ev);
void ordo__j_write_done(ordo_storage_req *req);

/* ---- journal_seg.c ---- */

int ordo__j_gone_build(ordo_journal *j, const ordo_storage_record *recs,
                       size_t n);
void ordo__j_gone_load_start(ordo_journal *j);
int ordo__j_gone_load_sync(ordo_journal *j);
int ordo__j_gone_wait(ordo_journal *j);
void ordo__j_seg_written(ordo_journal *j, jwrite *w, int ok);
int ordo__j_seg_write(ordo_journal *j, jwrite *w, uint64_t E, size_t *k);

/* ---- journal_ck.c ---- */

int ordo__j_ck_due(ordo_journal *j);
int ordo__j_ck_load(ordo_journal *j, ordo_storage_record *recs, size_t n,
                    char ***subs, size_t *nsubs, size_t *capsubs, uint64_t *E,
                    uint32_t *parts);
void ordo__j_ck_name(unsigned char out[JOURNAL_CK_NAME], uint64_t E,
                     uint32_t part);
int ordo__j_journal_checkpoint(ordo_journal *j);

/* ---- journal_gc.c ---- */

void ordo__j_expire_start(ordo_journal *j);
void ordo__j_prune_start(ordo_journal *j);

/* ---- journal_replay.c ---- */

void ordo__j_enq_spec_free(ordo_queue_batch_spec *sp);
int ordo__j_enq_spec_parse(json_t *ev, const unsigned char *payload,
                           size_t payload_len, ordo_queue_batch_spec *sp);
int ordo__j_journal_replay(ordo_journal *j);
void ordo__j_recovery_before_close(ordo_journal *j);
int ordo__j_replay_one(ordo_journal *j, const ordo_storage_record *r,
                       char ***subs, size_t *nsubs, size_t *capsubs);
void ordo__j_start_recovery(ordo_journal *j);

/* ---- journal_enqueue.c ---- */

void ordo__j_ahead_drop(ordo_journal *j);
void ordo__j_content_digest(const ordo_queue_batch_spec *sp,
                            unsigned char out[ORDO_QUEUE_DIGEST_BYTES]);
int ordo__j_in_memory(ordo_journal *j, const char *id);
unsigned char *ordo__j_record_value(json_t *ev, const void *payload,
                                    size_t payload_len, size_t *len);

/* ---- journal_views.c ---- */

int ordo__j_status_locked(ordo_journal *j, const char *id, ordo_queue_state *st,
                          const char **reason);

#endif

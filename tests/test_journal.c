/*
 * test_journal.c — tests of the queue module's durable journal
 * (src/queue/journal.c): acknowledged means on disk, replay restores the
 * queue exactly (order, states, halts, policies), batches in flight at a
 * restart are UNKNOWN and hold back new submissions, bad files and bad
 * records are refused with clear errors, group commit gathers records, and
 * a process SIGKILLed while it enqueues loses nothing it acknowledged.
 *
 * The crash test re-executes this binary as the child ("crash-child PATH
 * FIRST"), so the child is a fresh process with its own runtime.
 *
 * test_journal_pg.c runs these tests again with the journals in a
 * PostgreSQL server (it #includes this file with JOURNAL_TESTS_NO_MAIN and
 * sets journal_location): the tests reach the journal's records through
 * the storage interface, never through SQLite itself, except those its
 * list names as SQLite's own.
 */
#include "ordo.h"
#include "queue/idset.h"
#include "base/jsonw.h"
#include "queue/queue.h"
#include "runtime/runtime.h"
#include "storage/storage.h"
#include "support/support.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <sqlite3.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* cmocka.h needs these first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

/* ------------------------------------------------------------------------ */
/* Helpers                                                                   */
/* ------------------------------------------------------------------------ */

static char tmpdir[256];
static char jpath[512];

/* Where the journal called `name` of the running test lives. NULL: the
 * file NAME.db in the test's directory; test_journal_pg.c sets a store of
 * its server. */
static void (*journal_location)(char *out, size_t cap, const char *name);

static void journal_path(char *out, size_t cap, const char *name) {
  if (journal_location != NULL)
    journal_location(out, cap, name);
  else
    snprintf(out, cap, "%s/%s.db", tmpdir, name);
}

static int journal_on_postgres(void) {
  return ordo_storage_is_postgres_uri(jpath);
}

/* The backend that holds jpath's records. */
static const ordo_storage_backend *journal_backend(void) {
  return journal_on_postgres() ? &ordo_storage_postgres
                               : ordo_storage_backend_find("sqlite");
}

static int setup_dir(void **unused) {
  (void)unused;
  snprintf(tmpdir, sizeof tmpdir, "/tmp/ordo-journal-XXXXXX");
  assert_non_null(mkdtemp(tmpdir));
  journal_path(jpath, sizeof jpath, "queue");
  return 0;
}

static int teardown_dir(void **unused) {
  char cmd[320];
  (void)unused;
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  return system(cmd) == 0 ? 0 : -1;
}

/* A small context: the journal needs the cheap class and a storage thread. */
static ordo_ctx *ctx_small(void) {
  ordo_config cfg;
  ordo_config_init(&cfg);
  cfg.cheap_threads = 2;
  cfg.heavy_threads = 1;
  return ordo_ctx_new(&cfg);
}

static ordo_ctx *ctx_new(void) {
  ordo_ctx *ctx = ctx_small();
  if (ctx == NULL)
    fail_msg("ordo_ctx_new: %s", ordo_last_error_message());
  return ctx;
}

/* checkpoint_records for jopen (0: the default). */
static long long jopen_ck_records;

static ordo_journal *jopen(ordo_ctx *ctx, ordo_queue_mode mode) {
  ordo_journal_options opt;
  ordo_journal *j = NULL;
  ordo_journal_options_init(&opt);
  opt.create = 1;
  opt.checkpoint_records = jopen_ck_records;
  opt.queue.mode = mode;
  int rc = ordo_journal_open(ctx, jpath, &opt, &j);
  if (rc != ORDO_OK)
    fail_msg("journal open: %s", ordo_last_error_message());
  return j;
}

/* Enqueue one batch (reads/writes as "A,B" lists) and wait for it. */
static int enq_wait(ordo_journal *j, const char *id, const char *svc,
                    const char *reads, const char *writes, const char *dep) {
  const char *rd[8], *wr[8], *dp[1];
  char rb[64], wb[64];
  ordo_queue_batch_spec sp = {0};
  char *p, *save = NULL;
  ordo_op *op;
  int rc;

  sp.id = id;
  sp.service = svc;
  sp.reads = rd;
  sp.writes = wr;
  snprintf(rb, sizeof rb, "%s", reads != NULL ? reads : "");
  snprintf(wb, sizeof wb, "%s", writes != NULL ? writes : "");
  for (p = strtok_r(rb, ",", &save); p != NULL; p = strtok_r(NULL, ",", &save))
    rd[sp.nreads++] = p;
  save = NULL;
  for (p = strtok_r(wb, ",", &save); p != NULL; p = strtok_r(NULL, ",", &save))
    wr[sp.nwrites++] = p;
  if (dep != NULL) {
    dp[0] = dep;
    sp.deps = dp;
    sp.ndeps = 1;
  }
  sp.payload = id;
  sp.payload_len = strlen(id);
  op = ordo_journal_enqueue(j, &sp);
  assert_non_null(op);
  rc = ordo_op_wait(op, -1);
  if (rc == ORDO_OK) {
    json_t *r = json_loads(ordo_op_result(op), 0, NULL);
    assert_non_null(r);
    assert_string_equal(json_string_value(json_object_get(r, "id")), id);
    assert_true(json_integer_value(json_object_get(r, "seq")) > 0);
    json_decref(r);
  }
  ordo_op_release(op);
  return rc;
}

/* Take everything ready, wait until the take is durable; ids into buf as
 * "T1 T3" (submission order). */
static size_t take_wait(ordo_journal *j, char *buf, size_t bufsz) {
  ordo_queue_item items[256];
  ordo_op *durable = NULL;
  size_t n = 0, i, off = 0;
  assert_int_equal(ordo_journal_take(j, items, 256, &n, &durable), ORDO_OK);
  buf[0] = '\0';
  if (n == 0) {
    assert_null(durable);
    return 0;
  }
  assert_non_null(durable);
  assert_int_equal(ordo_op_wait(durable, -1), ORDO_OK);
  ordo_op_release(durable);
  for (i = 0; i < n; i++)
    off += (size_t)snprintf(buf + off, bufsz - off, "%s%s", i ? " " : "",
                            items[i].id);
  return n;
}

static ordo_queue_state jstate(ordo_journal *j, const char *id) {
  ordo_queue_state st;
  assert_int_equal(ordo_journal_batch_status(j, id, &st, NULL, NULL), ORDO_OK);
  return st;
}

static uint64_t jseq(ordo_journal *j, const char *id) {
  uint64_t seq = 0;
  assert_int_equal(ordo_journal_batch_status(j, id, NULL, &seq, NULL), ORDO_OK);
  return seq;
}

/* A storage request run to completion (the test thread is no runtime
 * thread, so it may block). */
static void st_done(ordo_storage_req *req) {
  support_latch_count_down(req->userdata);
}

/* Its output is the caller's to clear. */
static int st_run(ordo_storage *st, ordo_storage_req *req) {
  support_latch l;
  int rc;
  support_latch_init(&l, 1);
  req->done = st_done;
  req->userdata = &l;
  rc = st->backend->submit(st, req);
  if (rc == ORDO_OK) {
    support_latch_wait(&l);
    rc = req->status;
  }
  support_latch_destroy(&l);
  return rc;
}

static int st_call(ordo_storage *st, ordo_storage_req *req) {
  int rc = st_run(st, req);
  ordo_storage_req_clear_output(req);
  return rc;
}

/* The (closed) journal's records, opened behind its back: not exclusive,
 * so the journal's lock is not needed. */
static ordo_storage *st_open_journal(ordo_ctx *ctx) {
  const ordo_storage_backend *be = journal_backend();
  ordo_storage *st = NULL;
  char *err = NULL;
  if (be->open(be, ctx, jpath, 0, &st, &err) != ORDO_OK)
    fail_msg("open %s: %s", jpath, err != NULL ? err : "?");
  free(err);
  return st;
}

/* Write a raw record into a journal file, behind the journal's back. */
static int st_put(ordo_storage *st, const char *cat, const unsigned char *name,
                  size_t name_len, const char *value) {
  ordo_storage_req req;
  memset(&req, 0, sizeof req);
  req.opcode = ORDO_STORAGE_ADD;
  req.rec.category.data = (unsigned char *)cat;
  req.rec.category.len = strlen(cat);
  req.rec.name.data = (unsigned char *)name;
  req.rec.name.len = name_len;
  req.rec.value.data = (unsigned char *)value;
  req.rec.value.len = strlen(value);
  return st_call(st, &req);
}

static int st_close(ordo_storage *st) {
  ordo_storage_req req;
  memset(&req, 0, sizeof req);
  req.opcode = ORDO_STORAGE_CLOSE;
  return st_call(st, &req);
}

/* ------------------------------------------------------------------------ */
/* Tests                                                                     */
/* ------------------------------------------------------------------------ */

/* Acknowledged batches, takes and verdicts survive a close and reopen; what
 * was in flight comes back UNKNOWN and holds back new takes until settled. */
static void test_reopen_restores(void **unused) {
  ordo_ctx *ctx = ctx_new();
  ordo_journal *j = jopen(ctx, ORDO_QUEUE_CONTINUOUS);
  char took[256], *reason = NULL, *ids[8];
  size_t n, total;
  (void)unused;

  assert_int_equal(enq_wait(j, "T1", "s1", "B", "F", NULL), ORDO_OK);
  assert_int_equal(enq_wait(j, "T2", "s1", "F", NULL, NULL), ORDO_OK);
  assert_int_equal(enq_wait(j, "T3", "s1", NULL, "Z", NULL), ORDO_OK);
  assert_int_equal(enq_wait(j, "T4", "s2", NULL, "Z", "T3"), ORDO_OK);
  assert_int_equal(take_wait(j, took, sizeof took), 2);
  assert_string_equal(took, "T1 T3");
  assert_int_equal(ordo_journal_finish(j, "T1", ORDO_QUEUE_INVALID, "bad nonce"),
                   ORDO_OK);
  assert_int_equal(take_wait(j, took, sizeof took), 1);
  assert_string_equal(took, "T2");
  assert_int_equal(ordo_journal_close(j), ORDO_OK);

  j = jopen(ctx, ORDO_QUEUE_CONTINUOUS);
  assert_int_equal(jseq(j, "T1"), 1);
  assert_int_equal(jseq(j, "T4"), 4);
  assert_int_equal(ordo_journal_batch_status(j, "T1", NULL, NULL, &reason),
                   ORDO_OK);
  assert_string_equal(reason, "bad nonce");
  free(reason);
  assert_int_equal(jstate(j, "T2"), ORDO_QUEUE_UNKNOWN);
  assert_int_equal(jstate(j, "T3"), ORDO_QUEUE_UNKNOWN);
  assert_int_equal(jstate(j, "T4"), ORDO_QUEUE_WAITING);
  assert_int_equal(ordo_journal_unknown(j, ids, 8, &n, &total), ORDO_OK);
  assert_int_equal(n, 2);
  assert_int_equal(total, 2);
  assert_string_equal(ids[0], "T2"); /* submission order */
  assert_string_equal(ids[1], "T3");
  free(ids[0]);
  free(ids[1]);
  /* Nothing new while any batch is UNKNOWN. */
  assert_int_equal(enq_wait(j, "T5", "s3", NULL, "Q", NULL), ORDO_OK);
  assert_int_equal(take_wait(j, took, sizeof took), 0);
  assert_int_equal(ordo_journal_finish(j, "T3", ORDO_QUEUE_COMMITTED, NULL),
                   ORDO_OK);
  assert_int_equal(take_wait(j, took, sizeof took), 0); /* T2 still unknown */
  assert_int_equal(ordo_journal_confirm_submitted(j, "T3"), ORDO_E_STATE);
  assert_int_equal(ordo_journal_confirm_submitted(j, "T2"), ORDO_OK);
  assert_int_equal(jstate(j, "T2"), ORDO_QUEUE_SUBMITTED);
  assert_int_equal(take_wait(j, took, sizeof took), 2);
  assert_string_equal(took, "T4 T5");
  {
    char *js = ordo_journal_totals_json(j);
    json_t *t = json_loads(js, 0, NULL);
    assert_non_null(t);
    assert_int_equal(json_integer_value(json_object_get(t, "committed")), 1);
    assert_int_equal(json_integer_value(json_object_get(t, "invalid")), 1);
    assert_int_equal(json_integer_value(json_object_get(t, "in_flight")), 3);
    assert_int_equal(json_integer_value(json_object_get(t, "unknown")), 0);
    /* Latency of the finished ones, T1 replayed from its journaled times. */
    assert_int_equal(json_integer_value(json_object_get(
                         json_object_get(t, "latency_ms"), "count")),
                     2);
    json_decref(t);
    free(js);
  }
  assert_int_equal(ordo_journal_close(j), ORDO_OK);
  ordo_ctx_free(ctx);
}

/* Thousands in flight at a restart: all UNKNOWN, listed in submission
 * order, settled one by one in another order (finish or confirm), with the
 * per-service counts and the listing right at every point checked. */
static long svc_unknown(ordo_journal *j, const char *svc) {
  char *js = ordo_journal_service_json(j, svc);
  json_t *o = json_loads(js, 0, NULL);
  long v;
  assert_non_null(o);
  v = (long)json_integer_value(json_object_get(o, "unknown"));
  json_decref(o);
  free(js);
  return v;
}

static void test_many_unknown(void **unused) {
  enum { N = 1200 };
  ordo_ctx *ctx = ctx_new();
  ordo_journal *j = jopen(ctx, ORDO_QUEUE_CONTINUOUS);
  static const char *const svcs[] = {"a", "b", "c"};
  static char took[256 * 8]; /* a take of 256 "U1234" ids */
  char id[32], addr[32], *ids[4];
  size_t n, total, i, taken = 0, left = N;
  long per[3] = {0, 0, 0};
  (void)unused;

  for (i = 0; i < N; i++) {
    snprintf(id, sizeof id, "U%zu", i);
    snprintf(addr, sizeof addr, "addr%05zu", i); /* none a prefix of another */
    assert_int_equal(enq_wait(j, id, svcs[i % 3], NULL, addr, NULL), ORDO_OK);
    per[i % 3]++;
  }
  while (taken < N) {
    size_t got = take_wait(j, took, sizeof took);
    assert_true(got > 0);
    taken += got;
  }
  assert_int_equal(ordo_journal_close(j), ORDO_OK);

  j = jopen(ctx, ORDO_QUEUE_CONTINUOUS);
  assert_int_equal(svc_unknown(j, "a"), per[0]);
  assert_int_equal(svc_unknown(j, "c"), per[2]);
  /* Settle from the back, every third one by confirmation: the listing
   * always starts at the lowest unsettled seq. */
  for (i = N; i-- > 0;) {
    snprintf(id, sizeof id, "U%zu", i);
    assert_int_equal(jstate(j, id), ORDO_QUEUE_UNKNOWN);
    if (i % 3 == 1) {
      assert_int_equal(ordo_journal_confirm_submitted(j, id), ORDO_OK);
      assert_int_equal(ordo_journal_finish(j, id, ORDO_QUEUE_COMMITTED, NULL),
                       ORDO_OK);
    } else {
      assert_int_equal(ordo_journal_finish(j, id, ORDO_QUEUE_COMMITTED, NULL),
                       ORDO_OK);
    }
    assert_int_equal(ordo_journal_confirm_submitted(j, id), ORDO_E_STATE);
    per[i % 3]--;
    left--;
    if (i % 200 == 0 || i < 3) {
      assert_int_equal(svc_unknown(j, svcs[i % 3]), per[i % 3]);
      assert_int_equal(ordo_journal_unknown(j, ids, 2, &n, &total), ORDO_OK);
      assert_int_equal(total, left);
      assert_int_equal(n, left < 2 ? left : 2);
      if (n > 0) {
        assert_string_equal(ids[0], "U0");
        free(ids[0]);
      }
      if (n > 1) {
        assert_string_equal(ids[1], "U1");
        free(ids[1]);
      }
    }
  }
  assert_int_equal(ordo_journal_unknown(j, ids, 2, &n, &total), ORDO_OK);
  assert_int_equal(n, 0);
  assert_int_equal(total, 0);
  assert_int_equal(svc_unknown(j, "b"), 0);
  /* Settling the front first moves the listing's start. */
  assert_int_equal(enq_wait(j, "V1", "a", NULL, "v", NULL), ORDO_OK);
  assert_int_equal(enq_wait(j, "V2", "a", NULL, "w", NULL), ORDO_OK);
  assert_int_equal(take_wait(j, took, sizeof took), 2);
  assert_int_equal(ordo_journal_close(j), ORDO_OK);
  j = jopen(ctx, ORDO_QUEUE_CONTINUOUS);
  assert_int_equal(ordo_journal_finish(j, "V1", ORDO_QUEUE_COMMITTED, NULL),
                   ORDO_OK);
  assert_int_equal(ordo_journal_unknown(j, ids, 4, &n, &total), ORDO_OK);
  assert_int_equal(n, 1);
  assert_string_equal(ids[0], "V2");
  free(ids[0]);
  assert_int_equal(ordo_journal_close(j), ORDO_OK);
  ordo_ctx_free(ctx);
}

/* The locking rule is the journal's: a journal made unconstrained replays
 * as unconstrained even when reopened with the defaults (parallel), since
 * its recorded takes were only ready under its own rule. */
static void test_locking_rule_kept(void **unused) {
  ordo_ctx *ctx = ctx_new();
  ordo_journal_options opt;
  ordo_journal *j = NULL;
  char took[256];
  (void)unused;
  ordo_journal_options_init(&opt);
  opt.create = 1;
  opt.queue.strategy = ORDO_QUEUE_UNCONSTRAINED;
  assert_int_equal(ordo_journal_open(ctx, jpath, &opt, &j), ORDO_OK);
  assert_int_equal(enq_wait(j, "U1", "s", NULL, "A", NULL), ORDO_OK);
  assert_int_equal(enq_wait(j, "U2", "s", "A", "A", NULL), ORDO_OK);
  assert_int_equal(take_wait(j, took, sizeof took), 2); /* no locks */
  assert_int_equal(ordo_journal_close(j), ORDO_OK);
  j = jopen(ctx, ORDO_QUEUE_CONTINUOUS); /* defaults: parallel */
  assert_int_equal(jstate(j, "U2"), ORDO_QUEUE_UNKNOWN);
  assert_int_equal(enq_wait(j, "U3", "s", NULL, "A", NULL), ORDO_OK);
  assert_int_equal(ordo_journal_finish(j, "U1", ORDO_QUEUE_COMMITTED, NULL),
                   ORDO_OK);
  assert_int_equal(ordo_journal_finish(j, "U2", ORDO_QUEUE_COMMITTED, NULL),
                   ORDO_OK);
  assert_int_equal(take_wait(j, took, sizeof took), 1);
  assert_int_equal(ordo_journal_close(j), ORDO_OK);
  ordo_ctx_free(ctx);
}

/* The public JSON API (ordo.h): options checked by name, batches as JSON
 * with a base64 payload, clear errors for bad input. */
static void test_public_json_api(void **unused) {
  ordo_ctx *ctx = ctx_new();
  ordo_journal *j = NULL;
  ordo_queue_item it;
  ordo_op *op;
  char *js;
  (void)unused;
  assert_int_equal(ordo_journal_open_json(ctx, jpath, "{\"strategy\":\"best\"}",
                                          &j), ORDO_E_CONFIG);
  assert_non_null(strstr(ordo_last_error_message(), "strategy"));
  assert_int_equal(ordo_journal_open_json(ctx, jpath, "{\"frob\":1}", &j),
                   ORDO_E_CONFIG);
  assert_int_equal(ordo_journal_open_json(ctx, jpath, "{", &j), ORDO_E_JSON);
  assert_int_equal(ordo_journal_open_json(ctx, jpath,
                                          "{\"strategy\":\"serial\","
                                          "\"max_in_flight\":4}", &j),
                   ORDO_OK);
  op = ordo_journal_enqueue_json(j, "{\"id\":\"J1\",\"service\":\"s\","
                                    "\"writes\":[\"A\"],\"payload\":\"aGVsbG8=\"}");
  assert_int_equal(ordo_op_wait(op, -1), ORDO_OK);
  assert_string_equal(ordo_op_result(op), "{\"id\":\"J1\",\"seq\":1}");
  ordo_op_release(op);
  js = ordo_journal_batch_json(j, "J1");
  assert_non_null(strstr(js, "\"enqueued_ms\":"));
  assert_null(strstr(js, "\"finished_ms\":"));
  ordo_free(js);
  assert_int_equal(ordo_journal_item(j, "J1", &it), ORDO_OK);
  assert_int_equal(it.payload_len, 5);
  assert_memory_equal(it.payload, "hello", 5);
  static const char *const bad[] = {
      "not json", "[1]", "{\"id\":\"J2\"}", "{\"id\":\"J2\",\"service\":\"s\","
      "\"reads\":\"A\"}", "{\"id\":\"J2\",\"service\":\"s\",\"color\":1}",
      "{\"id\":\"J2\",\"service\":\"s\",\"payload\":\"***\"}",
      "{\"id\":\"J1\",\"service\":\"s\"}"};
  static const int want[] = {ORDO_E_JSON, ORDO_E_JSON, ORDO_E_INVAL,
                             ORDO_E_INVAL, ORDO_E_INVAL, ORDO_E_INVAL,
                             ORDO_E_EXISTS};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    op = ordo_journal_enqueue_json(j, bad[i]);
    assert_int_equal(ordo_op_wait(op, -1), want[i]);
    assert_non_null(ordo_op_message(op));
    ordo_op_release(op);
  }
  assert_int_equal(ordo_journal_set_policy_json(j, "s", "{\"on_invalid\":\"halt\"}"),
                   ORDO_OK);
  assert_int_equal(ordo_journal_set_policy_json(j, "s", "{\"on_invalid\":\"x\"}"),
                   ORDO_E_CONFIG);
  js = ordo_journal_totals_json(j);
  assert_non_null(strstr(js, "\"queued\":1"));
  ordo_free(js);
  assert_int_equal(ordo_journal_close(j), ORDO_OK);
  ordo_ctx_free(ctx);
}

/* A ledger id is journaled with its batch: it survives a reopen (status
 * JSON, items), a second batch with it is refused before and after the
 * reopen, naming the first, and a record without one (older journals)
 * replays as a batch without one. */
/* A number from the journal's totals JSON. */
static long long totals_field(ordo_journal *j, const char *key) {
  char *js = ordo_journal_totals_json(j);
  json_t *o = json_loads(js, 0, NULL);
  long long v;
  assert_non_null(o);
  v = json_integer_value(json_object_get(o, key));
  json_decref(o);
  ordo_free(js);
  return v;
}

/* The op's result (or message) for enqueueing spec, and its status. */
static int enq_spec_result(ordo_journal *j, const ordo_queue_batch_spec *sp,
                           char *out, size_t cap) {
  ordo_op *op = ordo_journal_enqueue(j, sp);
  int rc;
  assert_non_null(op);
  rc = ordo_op_wait(op, -1);
  snprintf(out, cap, "%s", rc == ORDO_OK ? ordo_op_result(op)
                                         : ordo_op_message(op));
  ordo_op_release(op);
  return rc;
}

/* The 43 batches of test_forget_finished (F0..F39, G1, G2, L1) answer
 * with the JSON in before[] (freed when done). */
static void expect_forgotten_json(ordo_journal *j, char **before, int done) {
  for (int i = 0; i < 43; i++) {
    char id[16], *js;
    if (i < 40)
      snprintf(id, sizeof id, "F%d", i);
    else
      snprintf(id, sizeof id, "%s", i == 40 ? "G1" : i == 41 ? "G2" : "L1");
    assert_non_null(js = ordo_journal_batch_json(j, id));
    assert_string_equal(js, before[i]);
    ordo_free(js);
    if (done)
      free(before[i]);
  }
}

/*
 * Finished batches leave memory (issue 15's retention, issue 13's memory):
 * once their records are durable, the next take drops them; their status,
 * reason, times and ledger id are read back from the log; their ids and
 * ledger ids stay refused; a retry of the same batch is answered as it
 * stands; deps on them are met (COMMITTED) or fail (INVALID) as before.
 */
static void test_forget_finished(void **unused) {
  (void)unused;
  ordo_ctx *ctx = ctx_new();
  ordo_journal *j = jopen(ctx, ORDO_QUEUE_CONTINUOUS);
  char took[4096], res[512], *before[64], *js;
  const char *w[1] = {"A"};
  ordo_queue_batch_spec sp = {0};
  int i;

  for (i = 0; i < 40; i++) {
    char id[16], wr[8];
    snprintf(id, sizeof id, "F%d", i);
    snprintf(wr, sizeof wr, "w%d", i % 7);
    assert_int_equal(enq_wait(j, id, "s", NULL, wr, NULL), ORDO_OK);
  }
  /* G1 waits on F1 (a dep); G2 on F2, which will be rejected. */
  assert_int_equal(enq_wait(j, "G1", "t", NULL, "x", "F1"), ORDO_OK);
  assert_int_equal(enq_wait(j, "G2", "t", NULL, "y", "F2"), ORDO_OK);
  sp.id = "L1";
  sp.service = "u";
  sp.writes = w;
  sp.nwrites = 1;
  sp.ledger_id = "00112233445566778899aabbccddeeff";
  sp.payload = "p";
  sp.payload_len = 1;
  assert_int_equal(enq_spec_result(j, &sp, res, sizeof res), ORDO_OK);
  while (take_wait(j, took, sizeof took) > 0) {
    char *save = NULL;
    for (char *id = strtok_r(took, " ", &save); id != NULL;
         id = strtok_r(NULL, " ", &save))
      assert_int_equal(ordo_journal_finish(j, id,
                                           strcmp(id, "F2") == 0
                                               ? ORDO_QUEUE_INVALID
                                               : ORDO_QUEUE_COMMITTED,
                                           strcmp(id, "F2") == 0 ? "rejected"
                                                                 : NULL),
                       ORDO_OK);
  }
  /* G2 was cascaded; the rest committed. Snapshot, then let them go. */
  for (i = 0; i < 40; i++) {
    char id[16];
    snprintf(id, sizeof id, "F%d", i);
    assert_non_null(before[i] = ordo_journal_batch_json(j, id));
  }
  assert_non_null(before[40] = ordo_journal_batch_json(j, "G1"));
  assert_non_null(before[41] = ordo_journal_batch_json(j, "G2"));
  assert_non_null(before[42] = ordo_journal_batch_json(j, "L1"));
  assert_non_null(strstr(before[41], "dep F2 is invalid"));
  assert_non_null(strstr(before[42], "00112233445566778899aabbccddeeff"));
  assert_int_equal(take_wait(j, took, sizeof took), 0); /* forgets */
  assert_int_equal(totals_field(j, "forgotten"), 43);
  assert_int_equal(totals_field(j, "committed"), 41);
  assert_int_equal(totals_field(j, "invalid"), 2);
  {
    ordo_queue_item it;
    assert_int_equal(ordo_journal_item(j, "F0", &it), ORDO_E_NOT_FOUND);
  }
  /* Read back from the log: the same JSON as when they were in memory. */
  expect_forgotten_json(j, before, 0);
  {
    ordo_queue_state st;
    char *why = NULL;
    uint64_t seq = 0;
    assert_int_equal(ordo_journal_batch_status(j, "F2", &st, &seq, &why),
                     ORDO_OK);
    assert_int_equal(st, ORDO_QUEUE_INVALID);
    assert_int_equal(seq, 3);
    assert_string_equal(why, "rejected");
    ordo_free(why);
  }
  assert_int_equal(ordo_journal_batch_status(j, "NOPE", NULL, NULL, NULL),
                   ORDO_E_NOT_FOUND);
  /* The same batch again: answered as it stands, nothing journaled. */
  assert_int_equal(enq_spec_result(j, &sp, res, sizeof res), ORDO_OK);
  assert_non_null(strstr(res, "\"already_enqueued\":true"));
  assert_non_null(strstr(res, "\"state\":\"COMMITTED\""));
  /* Another batch under a forgotten id, or with its ledger id: refused. */
  sp.payload = "q";
  assert_int_equal(enq_spec_result(j, &sp, res, sizeof res), ORDO_E_EXISTS);
  assert_non_null(strstr(res, "before with other content"));
  sp.payload = "p";
  sp.id = "L2";
  assert_int_equal(enq_spec_result(j, &sp, res, sizeof res), ORDO_E_EXISTS);
  assert_non_null(strstr(res, "a finished batch has it"));
  assert_int_equal(enq_wait(j, "F3", "s", NULL, "zz", NULL), ORDO_E_EXISTS);
  /* Deps on forgotten batches: met, or invalid at once. */
  assert_int_equal(enq_wait(j, "H1", "v", NULL, "a", "F5"), ORDO_OK);
  assert_int_equal(jstate(j, "H1"), ORDO_QUEUE_QUEUED);
  assert_int_equal(enq_wait(j, "H2", "v", NULL, "b", "F2"), ORDO_OK);
  assert_int_equal(jstate(j, "H2"), ORDO_QUEUE_INVALID);
  assert_non_null(js = ordo_journal_batch_json(j, "H2"));
  assert_non_null(strstr(js, "dep F2 is invalid"));
  ordo_free(js);
  assert_int_equal(take_wait(j, took, sizeof took), 1);
  assert_string_equal(took, "H1");
  assert_int_equal(ordo_journal_close(j), ORDO_OK);

  /* Reopened: the replay forgets what finished; statuses read the same. */
  j = jopen(ctx, ORDO_QUEUE_CONTINUOUS);
  assert_int_equal(totals_field(j, "forgotten"), 44); /* H2 too */
  expect_forgotten_json(j, before, 1);
  assert_int_equal(jstate(j, "H1"), ORDO_QUEUE_UNKNOWN);
  assert_int_equal(enq_wait(j, "F7", "s", NULL, "zz", NULL), ORDO_E_EXISTS);
  assert_int_equal(ordo_journal_close(j), ORDO_OK);
  ordo_ctx_free(ctx);
}

/* Records of a category in the (closed) journal. */
static long long count_records(const char *category) {
  ordo_ctx *ctx = ctx_new();
  ordo_storage *st = st_open_journal(ctx);
  ordo_storage_req req;
  long long n;
  memset(&req, 0, sizeof req);
  req.opcode = ORDO_STORAGE_COUNT;
  req.rec.category.data = (unsigned char *)category;
  req.rec.category.len = strlen(category);
  assert_int_equal(st_run(st, &req), ORDO_OK);
  n = (long long)req.count;
  ordo_storage_req_clear_output(&req);
  assert_int_equal(st_close(st), ORDO_OK);
  ordo_ctx_free(ctx);
  return n;
}

/*
 * Checkpoints: taken every 50 records while 300 batches go through (and
 * at close), they let the log below them go but for the records of
 * batches (tagged by id); a reopen reads the last one and the records
 * after it, and the queue it rebuilds answers as the one that was closed:
 * unfinished batches in their order, halts, counters, statuses.
 */
static void test_checkpoint_prunes(void **unused) {
  (void)unused;
  ordo_ctx *ctx = ctx_new();
  ordo_journal *j;
  char took[8192], *svc_before, *svc_after, *tot_before, *js;
  long long events;
  int i;

  jopen_ck_records = 50;
  j = jopen(ctx, ORDO_QUEUE_CONTINUOUS);
  assert_int_equal(ordo_journal_set_policy(j, "h", ORDO_QUEUE_HALT, 3, 0),
                   ORDO_OK);
  for (i = 0; i < 300; i++) {
    char id[16], wr[8];
    snprintf(id, sizeof id, "P%d", i);
    snprintf(wr, sizeof wr, "w%d", i % 13);
    assert_int_equal(enq_wait(j, id, i % 2 ? "h" : "s", NULL, wr, NULL),
                     ORDO_OK);
    if (i % 10 == 9) {
      char *save = NULL;
      (void)take_wait(j, took, sizeof took);
      for (char *id2 = strtok_r(took, " ", &save); id2 != NULL;
           id2 = strtok_r(NULL, " ", &save))
        if (strcmp(id2, "P101") != 0) /* stays SUBMITTED */
          assert_int_equal(ordo_journal_finish(
                               j, id2,
                               strcmp(id2, "P151") == 0 ? ORDO_QUEUE_INVALID
                                                        : ORDO_QUEUE_COMMITTED,
                               "no"),
                           ORDO_OK);
    }
  }
  /* P151 halted "h": its batches after it wait; "s" went on. */
  assert_non_null(svc_before = ordo_journal_service_json(j, "h"));
  assert_non_null(strstr(svc_before, "\"halted\":true"));
  assert_non_null(tot_before = ordo_journal_totals_json(j));
  events = totals_field(j, "journal_records");
  assert_int_equal(ordo_journal_close(j), ORDO_OK);
  /* Below the last checkpoint only tagged records stay (an enq, and for a
   * finished batch its fin): no take record. */
  /* The checkpoint: a header and a part holding its batches. */
  assert_int_equal(count_records("ck"), 2);
  assert_true(count_records("ev") < events);
  assert_true(count_records("ev") <= 2 * 300);

  jopen_ck_records = 0;
  j = jopen(ctx, ORDO_QUEUE_CONTINUOUS);
  assert_non_null(svc_after = ordo_journal_service_json(j, "h"));
  {
    /* P101 was in flight: after a reopen it is UNKNOWN until settled. */
    json_t *b = json_loads(svc_before, 0, NULL), *a = json_loads(svc_after, 0, NULL);
    assert_int_equal(json_integer_value(json_object_get(b, "in_flight")), 1);
    assert_int_equal(json_integer_value(json_object_get(a, "unknown")), 1);
    json_object_del(b, "in_flight");
    json_object_del(b, "unknown");
    json_object_del(a, "in_flight");
    json_object_del(a, "unknown");
    assert_true(json_equal(a, b));
    json_decref(a);
    json_decref(b);
  }
  assert_int_equal(totals_field(j, "journal_records"), events);
  {
    json_t *t = json_loads(tot_before, 0, NULL);
    assert_int_equal(totals_field(j, "committed"),
                     json_integer_value(json_object_get(t, "committed")));
    assert_int_equal(totals_field(j, "invalid"),
                     json_integer_value(json_object_get(t, "invalid")));
    json_decref(t);
  }
  assert_int_equal(jstate(j, "P101"), ORDO_QUEUE_UNKNOWN);
  assert_int_equal(jstate(j, "P151"), ORDO_QUEUE_INVALID);
  assert_int_equal(jstate(j, "P0"), ORDO_QUEUE_COMMITTED);
  assert_non_null(js = ordo_journal_batch_json(j, "P151"));
  assert_non_null(strstr(js, "\"reason\":\"no\""));
  ordo_free(js);
  /* Ids stay refused, seqs go on. */
  assert_int_equal(enq_wait(j, "P7", "s", NULL, "zz", NULL), ORDO_E_EXISTS);
  assert_int_equal(enq_wait(j, "Q0", "s", NULL, "zz", NULL), ORDO_OK);
  assert_int_equal(jseq(j, "Q0"), 301);
  assert_int_equal(ordo_journal_resume(j, "h"), ORDO_OK);
  assert_int_equal(ordo_journal_confirm_submitted(j, "P101"), ORDO_OK);
  assert_int_equal(ordo_journal_close(j), ORDO_OK);
  free(svc_before);
  free(svc_after);
  free(tot_before);
  ordo_ctx_free(ctx);
}

/*
 * Retention by count: with room for 10 finished batches, the oldest go
 * (their records deleted, their status 404, their ids free again) while
 * the newest stay readable, and a reopen agrees.
 */
static void test_retention_count(void **unused) {
  (void)unused;
  ordo_ctx *ctx = ctx_new();
  ordo_journal_options opt;
  ordo_journal *j = NULL;
  char took[8192];
  int i, tries;

  ordo_journal_options_init(&opt);
  opt.create = 1;
  opt.retention_count = 10;
  assert_int_equal(ordo_journal_open(ctx, jpath, &opt, &j), ORDO_OK);
  for (i = 0; i < 50; i++) {
    char id[16], wr[8];
    snprintf(id, sizeof id, "E%d", i);
    snprintf(wr, sizeof wr, "w%d", i % 5);
    assert_int_equal(enq_wait(j, id, "s", NULL, wr, NULL), ORDO_OK);
  }
  while (take_wait(j, took, sizeof took) > 0) {
    char *save = NULL;
    for (char *id = strtok_r(took, " ", &save); id != NULL;
         id = strtok_r(NULL, " ", &save))
      assert_int_equal(ordo_journal_finish(j, id, ORDO_QUEUE_COMMITTED, NULL),
                       ORDO_OK);
  }
  /* Each take forgets what finished and starts a pass when over. */
  for (tries = 0; tries < 500 && totals_field(j, "expired") < 40; tries++) {
    (void)take_wait(j, took, sizeof took);
    usleep(10000);
  }
  assert_int_equal(totals_field(j, "expired"), 40);
  assert_int_equal(totals_field(j, "retained"), 10);
  assert_int_equal(totals_field(j, "committed"), 50);
  assert_int_equal(ordo_journal_batch_status(j, "E0", NULL, NULL, NULL),
                   ORDO_E_NOT_FOUND);
  assert_int_equal(ordo_journal_batch_status(j, "E39", NULL, NULL, NULL),
                   ORDO_E_NOT_FOUND);
  assert_int_equal(jstate(j, "E40"), ORDO_QUEUE_COMMITTED);
  assert_int_equal(jstate(j, "E49"), ORDO_QUEUE_COMMITTED);
  /* Past retention an id is free again. */
  assert_int_equal(enq_wait(j, "E3", "s", NULL, "again", NULL), ORDO_OK);
  assert_int_equal(enq_wait(j, "E45", "s", NULL, "again", NULL),
                   ORDO_E_EXISTS);
  assert_int_equal(ordo_journal_close(j), ORDO_OK);
  j = NULL;
  assert_int_equal(ordo_journal_open(ctx, jpath, &opt, &j), ORDO_OK);
  assert_int_equal(totals_field(j, "expired"), 40);
  assert_int_equal(ordo_journal_batch_status(j, "E1", NULL, NULL, NULL),
                   ORDO_E_NOT_FOUND);
  assert_int_equal(jstate(j, "E3"), ORDO_QUEUE_QUEUED);
  assert_int_equal(jstate(j, "E41"), ORDO_QUEUE_COMMITTED);
  assert_int_equal(ordo_journal_close(j), ORDO_OK);
  ordo_ctx_free(ctx);
}

/*
 * The forgotten sets on disk as segments: with a checkpoint every 8
 * records and room for 30 finished batches, 200 batches go through;
 * the segments stay at most 64 (a base segment replaces them), and a
 * reopen after a clean close, which reads them behind the open, answers
 * as the journal did: a take at once finds the batch whose dep finished
 * long ago (its checkpoint says so), retained ids stay refused, expired
 * ones are free, and the retained count is the same.
 */
static void test_id_segments(void **unused) {
  (void)unused;
  ordo_ctx *ctx = ctx_new();
  ordo_journal_options opt;
  ordo_journal *j = NULL;
  char took[8192];
  long long retained, segs;
  int i, tries;

  ordo_journal_options_init(&opt);
  opt.create = 1;
  opt.checkpoint_records = 8;
  opt.retention_count = 30;
  assert_int_equal(ordo_journal_open(ctx, jpath, &opt, &j), ORDO_OK);
  for (i = 0; i < 200; i++) {
    char id[16], wr[8];
    snprintf(id, sizeof id, "S%d", i);
    snprintf(wr, sizeof wr, "w%d", i % 5);
    assert_int_equal(enq_wait(j, id, "s", NULL, wr, NULL), ORDO_OK);
    while (take_wait(j, took, sizeof took) > 0) {
      char *save = NULL;
      for (char *t = strtok_r(took, " ", &save); t != NULL;
           t = strtok_r(NULL, " ", &save))
        assert_int_equal(ordo_journal_finish(j, t,
                                             i % 17 == 3 ? ORDO_QUEUE_INVALID
                                                         : ORDO_QUEUE_COMMITTED,
                                             "no"),
                         ORDO_OK);
    }
  }
  for (tries = 0; tries < 500 && totals_field(j, "expired") < 170; tries++) {
    (void)take_wait(j, took, sizeof took);
    usleep(10000);
  }
  assert_int_equal(totals_field(j, "expired"), 170);
  /* D1's dep finished and left memory; D2's was never enqueued. */
  assert_int_equal(enq_wait(j, "D1", "d", NULL, "x", "S191"), ORDO_OK);
  assert_int_equal(enq_wait(j, "D2", "d", NULL, "y", "NEVER"), ORDO_OK);
  assert_int_equal(jstate(j, "D1"), ORDO_QUEUE_QUEUED);
  assert_int_equal(jstate(j, "D2"), ORDO_QUEUE_WAITING);
  retained = totals_field(j, "retained");
  assert_int_equal(retained, 30);
  segs = totals_field(j, "id_segments");
  assert_true(totals_field(j, "checkpoints") > 64);
  assert_true(segs >= 1 && segs <= 64);
  assert_int_equal(ordo_journal_close(j), ORDO_OK);
  /* What the close left: the checkpoint, no record after it, segments. */
  assert_true(count_records("ckid") >= 1 && count_records("ckid") <= 65);

  opt.create = 0;
  j = NULL;
  assert_int_equal(ordo_journal_open(ctx, jpath, &opt, &j), ORDO_OK);
  assert_int_equal(take_wait(j, took, sizeof took), 1);
  assert_string_equal(took, "D1");
  assert_int_equal(jstate(j, "D2"), ORDO_QUEUE_WAITING);
  assert_int_equal(totals_field(j, "retained"), retained);
  assert_int_equal(jstate(j, "S199"), ORDO_QUEUE_COMMITTED);
  assert_int_equal(jstate(j, "S191"), ORDO_QUEUE_COMMITTED);
  assert_int_equal(jstate(j, "S173"), ORDO_QUEUE_INVALID);
  assert_int_equal(ordo_journal_batch_status(j, "S5", NULL, NULL, NULL),
                   ORDO_E_NOT_FOUND);
  assert_int_equal(enq_wait(j, "S180", "s", NULL, "other", NULL),
                   ORDO_E_EXISTS);
  assert_int_equal(enq_wait(j, "S5", "s", NULL, "again", NULL), ORDO_OK);
  assert_int_equal(enq_wait(j, "E1", "e", NULL, "a", "S199"), ORDO_OK);
  assert_int_equal(jstate(j, "E1"), ORDO_QUEUE_QUEUED);
  assert_int_equal(enq_wait(j, "E2", "e", NULL, "b", "S173"), ORDO_OK);
  assert_int_equal(jstate(j, "E2"), ORDO_QUEUE_INVALID);
  assert_int_equal(ordo_journal_finish(j, "D1", ORDO_QUEUE_COMMITTED, NULL),
                   ORDO_OK);
  assert_int_equal(ordo_journal_close(j), ORDO_OK);
  ordo_ctx_free(ctx);
}

/* The records of a version-1 checkpoint (header, then the two tables of
 * tsize bytes each) as ordo__journal_checkpoint_parts reads them. */
static size_t ck_v1_parts(unsigned char *buf, const unsigned char *table,
                          size_t tsize) {
  static const char hdr[] =
      "{\"v\":1,\"E\":1,\"next_seq\":5,\"tagged_seq\":1,\"forgotten\":2,"
      "\"nbatches\":0,\"nlat\":0,\"exp_cursor\":0,\"expired\":0,\"lat\":[],"
      "\"services\":[]}";
  size_t n = 0;
  buf[n++] = 0;
  buf[n++] = (unsigned char)strlen(hdr);
  memcpy(buf + n, hdr, strlen(hdr));
  n += strlen(hdr);
  for (int k = 0; k < 2; k++) {
    buf[n++] = (unsigned char)(tsize >> 8);
    buf[n++] = (unsigned char)(tsize & 255);
    memcpy(buf + n, table, tsize);
    n += tsize;
  }
  return n;
}

/* A checkpoint of version 1 (the forgotten sets whole, as parts 1 and 2)
 * still loads; a table that is not one is refused with a message. */
static void test_checkpoint_v1(void **unused) {
  (void)unused;
  unsigned char buf[2048], table[16 + 64 * 8];
  uint64_t slot;

  memset(table, 0, sizeof table);
  slot = 0x1234567800000000ull; /* a member, COMMITTED */
  memcpy(table + 16 + 8 * 3, &slot, 8);
  slot = 0x2234567800000001ull; /* a member, INVALID */
  memcpy(table + 16 + 8 * 9, &slot, 8);
  assert_int_equal(ordo__journal_checkpoint_parts(
                       buf, ck_v1_parts(buf, table, sizeof table)),
                   ORDO_OK);
  /* 63 slots: not a table. */
  assert_int_equal(ordo__journal_checkpoint_parts(
                       buf, ck_v1_parts(buf, table, sizeof table - 8)),
                   ORDO_E_QUEUE);
  assert_non_null(strstr(ordo_last_error_message(), "id table"));
  /* Version 2: a list of untagged records that makes no sense is only
   * dropped (the prune scans instead); bad hash keys are refused. */
  {
    static const char v2[] =
        "{\"v\":2,\"E\":1,\"next_seq\":1,\"tagged_seq\":1,"
        "\"forgotten\":0,\"nbatches\":0,\"nparts\":0,\"nlat\":0,"
        "\"exp_cursor\":0,\"expired\":0,\"pruned\":0,\"track_from\":1,"
        "\"services\":[],\"lat\":[],\"untagged\":[[5,3]],\"keys\":{"
        "\"ids\":\"000102030405060708090a0b0c0d0e0f\","
        "\"lids\":\"000102030405060708090a0b0c0d0e0f\"}}";
    size_t n = strlen(v2);
    buf[0] = (unsigned char)(n >> 8);
    buf[1] = (unsigned char)(n & 255);
    memcpy(buf + 2, v2, n);
    assert_int_equal(ordo__journal_checkpoint_parts(buf, n + 2), ORDO_OK);
    buf[2 + n - 5] = 'x'; /* a key that is not hex */
    assert_int_equal(ordo__journal_checkpoint_parts(buf, n + 2), ORDO_E_QUEUE);
    assert_non_null(strstr(ordo_last_error_message(), "hash keys"));
  }
}

/* The checkpoint's JSON writer: what it writes jansson reads back as the
 * same strings (quotes, backslashes, control characters, NUL, UTF-8 of
 * every length), and a string that is not UTF-8 is refused. */
static void test_jsonw(void **unused) {
  (void)unused;
  static const char *const good[] = {
      "", "plain", "q\"uo\\te", "tab\tnl\ncr\r", "\x01\x1f\x7f",
      "caf\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xf4\x8f\xbf\xbf"};
  static const char *const bad[] = {
      "\x80", "\xc0\x80", "\xc3", "\xe2\x82", "\xed\xa0\x80", "\xf4\x90\x80\x80",
      "\xf5\x80\x80\x80", "ok\xff"};
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
    ordo__jsonw w = {0};
    json_error_t err;
    json_t *v;
    ordo__jsonw_raw(&w, "[", 1);
    ordo__jsonw_cstr(&w, good[i]);
    ordo__jsonw_raw(&w, ",", 1);
    ordo__jsonw_str(&w, "a\0b", 3); /* a NUL inside */
    ordo__jsonw_raw(&w, ",", 1);
    ordo__jsonw_uint(&w, UINT64_C(9223372036854775807));
    ordo__jsonw_raw(&w, "]", 1);
    assert_int_equal(w.err, ORDO_OK);
    v = json_loadb((const char *)w.buf, w.len, JSON_ALLOW_NUL, &err);
    assert_non_null(v);
    assert_string_equal(json_string_value(json_array_get(v, 0)), good[i]);
    assert_int_equal(json_string_length(json_array_get(v, 1)), 3);
    assert_memory_equal(json_string_value(json_array_get(v, 1)), "a\0b", 3);
    assert_true(json_integer_value(json_array_get(v, 2)) ==
                INT64_C(9223372036854775807));
    json_decref(v);
    free(w.buf);
  }
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    ordo__jsonw w = {0};
    ordo__jsonw_cstr(&w, bad[i]);
    assert_int_equal(w.err, ORDO_E_INVAL);
    ordo__jsonw_cstr(&w, "later calls do nothing");
    assert_int_equal(w.err, ORDO_E_INVAL);
    free(w.buf);
  }
}

/* The forgotten sets' segments: ops logged as they happen and applied in
 * order give the same set (a removal, a re-add, a flag that changes), a
 * base segment replaces what came before, and a damaged one is refused
 * whole. */
static void test_idset_segments(void **unused) {
  (void)unused;
  ordo__idset a, b, ra, rb;
  ordo__idlog la = {0}, lb = {0};
  unsigned char *v;
  uint64_t *m;
  size_t len;
  char id[32];

  ordo__idset_init(&a);
  ordo__idset_init(&b);
  for (int i = 0; i < 5000; i++) {
    snprintf(id, sizeof id, "id-%d", i);
    assert_int_equal(ordo__idset_put_logged(&a, &la, id, i % 7 == 0), 0);
    if (i % 3 == 0) {
      snprintf(id, sizeof id, "lid-%d", i);
      assert_int_equal(ordo__idset_put_logged(&b, &lb, id, 0), 0);
    }
  }
  for (int i = 0; i < 5000; i += 5) {
    snprintf(id, sizeof id, "id-%d", i);
    assert_int_equal(ordo__idset_del_logged(&a, &la, id), 1);
  }
  assert_int_equal(ordo__idset_del_logged(&a, &la, "never"), 0);
  assert_int_equal(ordo__idset_put_logged(&a, &la, "id-10", 1), 0);
  assert_int_equal(ordo__idset_put_logged(&a, &la, "id-11", 1), 0);

  ordo__idset_init(&ra);
  ordo__idset_init(&rb);
  memcpy(ra.key, a.key, sizeof a.key);
  memcpy(rb.key, b.key, sizeof b.key);
  assert_non_null(v = ordo__idseg_encode(0, la.v, la.n, lb.v, lb.n, &len));
  assert_int_equal(ordo__idseg_apply(v, len, &ra, &rb), 0);
  assert_int_equal(ra.n, a.n);
  assert_int_equal(rb.n, b.n);
  for (int i = 0; i < 5000; i++) {
    snprintf(id, sizeof id, "id-%d", i);
    assert_int_equal(ordo__idset_get(&ra, id), ordo__idset_get(&a, id));
  }
  assert_int_equal(ordo__idset_get(&ra, "id-10"), 1);
  assert_int_equal(ordo__idset_get(&ra, "id-11"), 1);
  /* Damaged: cut short, or counts that do not add up. */
  assert_int_equal(ordo__idseg_apply(v, len - 1, &ra, &rb), -1);
  v[8] ^= 1;
  assert_int_equal(ordo__idseg_apply(v, len, &ra, &rb), -1);
  free(v);
  /* A base of the members alone replaces what was there. */
  assert_int_equal(ordo__idset_put(&ra, "stale", 0), 0);
  assert_non_null(m = malloc((a.n + b.n + 1) * sizeof *m));
  ordo__idset_members(&a, m);
  ordo__idset_members(&b, m + a.n);
  assert_non_null(v = ordo__idseg_encode(1, m, a.n, m + a.n, b.n, &len));
  assert_int_equal(ordo__idseg_apply(v, len, &ra, &rb), 0);
  assert_int_equal(ordo__idset_get(&ra, "stale"), -1);
  assert_int_equal(ra.n, a.n);
  assert_int_equal(ordo__idset_get(&ra, "id-7"), 1);
  free(v);
  free(m);
  ordo__idlog_clear(&la);
  ordo__idlog_clear(&lb);
  ordo__idset_clear(&a);
  ordo__idset_clear(&b);
  ordo__idset_clear(&ra);
  ordo__idset_clear(&rb);
}

/* Enqueue id with ledger id lid (service "s", its own address); the op's
 * status. */
static int enq_lid(ordo_journal *j, const char *id, const char *lid) {
  ordo_queue_batch_spec sp = {0};
  const char *w[1];
  ordo_op *op;
  int rc;
  w[0] = id;
  sp.id = id;
  sp.service = "s";
  sp.writes = w;
  sp.nwrites = 1;
  sp.ledger_id = lid;
  op = ordo_journal_enqueue(j, &sp);
  assert_non_null(op);
  rc = ordo_op_wait(op, -1);
  ordo_op_release(op);
  return rc;
}

/* 20 batches G0..G19 with ledger ids 0..19 (32 digits), taken and
 * COMMITTED, then let go by a take. */
static void g_batches_committed(ordo_journal *j) {
  char took[8192], id[16], lid[40];
  for (int i = 0; i < 20; i++) {
    snprintf(id, sizeof id, "G%d", i);
    snprintf(lid, sizeof lid, "%032d", i);
    assert_int_equal(enq_lid(j, id, lid), ORDO_OK);
  }
  while (take_wait(j, took, sizeof took) > 0) {
    char *save = NULL;
    for (char *t = strtok_r(took, " ", &save); t != NULL;
         t = strtok_r(NULL, " ", &save))
      assert_int_equal(ordo_journal_finish(j, t, ORDO_QUEUE_COMMITTED, NULL),
                       ORDO_OK);
  }
  (void)take_wait(j, took, sizeof took); /* forgets them */
}

/* With room for 5, G0..G14 go with their ledger ids (3 is taken again)
 * and G15..G19 stay (17 is refused). */
static void g_ledger_ids_expired(ordo_journal *j) {
  char took[8192];
  for (int tries = 0; tries < 500 && totals_field(j, "expired") < 15;
       tries++) {
    (void)take_wait(j, took, sizeof took);
    usleep(10000);
  }
  assert_int_equal(totals_field(j, "expired"), 15);
  assert_int_equal(enq_lid(j, "H0", "00000000000000000000000000000003"),
                   ORDO_OK);
  assert_int_equal(enq_lid(j, "H1", "00000000000000000000000000000017"),
                   ORDO_E_EXISTS);
}

/* Cut ',"ledger_id":…' out of every finishing record of the (closed)
 * journal, as journals wrote them before the field existed there (the
 * field comes last); how many records were changed. */
static size_t strip_fin_ledger_ids(void) {
  static const char fin[] = "{\"e\":\"fin\"", field[] = ",\"ledger_id\"";
  ordo_ctx *ctx = ctx_new();
  ordo_storage *st = st_open_journal(ctx);
  ordo_storage_req scan;
  size_t changed = 0;
  memset(&scan, 0, sizeof scan);
  scan.opcode = ORDO_STORAGE_SCAN;
  scan.rec.category.data = (unsigned char *)"ev";
  scan.rec.category.len = 2;
  assert_int_equal(st_run(st, &scan), ORDO_OK);
  for (size_t i = 0; i < scan.nresults; i++) {
    ordo_storage_record *r = &scan.results[i];
    const unsigned char *at;
    ordo_storage_req up;
    if (r->value.len < sizeof fin - 1 ||
        memcmp(r->value.data, fin, sizeof fin - 1) != 0 ||
        (at = memmem(r->value.data, r->value.len, field,
                     sizeof field - 1)) == NULL)
      continue;
    memset(&up, 0, sizeof up);
    up.opcode = ORDO_STORAGE_UPDATE_VALUE;
    up.rec.category = r->category;
    up.rec.name = r->name;
    up.rec.value.len = (size_t)(at - r->value.data) + 1;
    assert_non_null(up.rec.value.data = malloc(up.rec.value.len));
    memcpy(up.rec.value.data, r->value.data, up.rec.value.len - 1);
    up.rec.value.data[up.rec.value.len - 1] = '}';
    assert_int_equal(st_call(st, &up), ORDO_OK);
    free(up.rec.value.data);
    changed++;
  }
  ordo_storage_req_clear_output(&scan);
  assert_int_equal(st_close(st), ORDO_OK);
  ordo_ctx_free(ctx);
  return changed;
}

/*
 * Retention frees ledger ids too: from the finishing record, which names
 * the batch's ledger id, or — for a record written before it did (made
 * here by cutting the field out of the file) — from the enq record, read
 * by tag. Past retention a ledger id is taken again; within, refused.
 */
static void test_retention_ledger_ids(void **unused) {
  (void)unused;
  ordo_ctx *ctx = ctx_new();
  ordo_journal_options opt;
  ordo_journal *j = NULL;

  /* Finishing records that name their ledger ids. */
  ordo_journal_options_init(&opt);
  opt.create = 1;
  opt.retention_count = 5;
  assert_int_equal(ordo_journal_open(ctx, jpath, &opt, &j), ORDO_OK);
  g_batches_committed(j);
  g_ledger_ids_expired(j);
  assert_int_equal(ordo_journal_close(j), ORDO_OK);

  /* Older ones: the same batches in a new journal, "ledger_id" then cut
   * out of every finishing record on disk, reopened with room for 5. */
  journal_path(jpath, sizeof jpath, "older");
  opt.retention_count = 1000;
  assert_int_equal(ordo_journal_open(ctx, jpath, &opt, &j), ORDO_OK);
  g_batches_committed(j);
  assert_int_equal(ordo_journal_close(j), ORDO_OK);
  assert_true(strip_fin_ledger_ids() >= 20);
  opt.create = 0;
  opt.retention_count = 5;
  assert_int_equal(ordo_journal_open(ctx, jpath, &opt, &j), ORDO_OK);
  g_ledger_ids_expired(j);
  assert_int_equal(ordo_journal_close(j), ORDO_OK);
  ordo_ctx_free(ctx);
}

/* ordo_journal_shrink gives SQLite's idle memory back (its page cache),
 * and the journal goes on as before; NULL is refused. */
static void test_journal_shrink(void **unused) {
  (void)unused;
  ordo_ctx *ctx = ctx_new();
  ordo_journal *j = jopen(ctx, ORDO_QUEUE_CONTINUOUS);
  char id[16], wr[16];
  sqlite3_int64 before, after;

  for (int i = 0; i < 2000; i++) {
    snprintf(id, sizeof id, "M%d", i);
    snprintf(wr, sizeof wr, "w%d", i);
    assert_int_equal(enq_wait(j, id, "s", NULL, wr, NULL), ORDO_OK);
  }
  before = sqlite3_memory_used();
  assert_int_equal(ordo_journal_shrink(j), ORDO_OK);
  after = sqlite3_memory_used();
  assert_true(after < before);
  assert_int_equal(ordo_journal_shrink(NULL), ORDO_E_INVAL);
  /* Still a journal: reads and writes as before. */
  assert_int_equal(jseq(j, "M1999"), 2000);
  assert_int_equal(enq_wait(j, "M2000", "s", NULL, "w", NULL), ORDO_OK);
  assert_int_equal(jseq(j, "M2000"), 2001);
  assert_int_equal(ordo_journal_close(j), ORDO_OK);
  ordo_ctx_free(ctx);
}

static void test_ledger_id_replay(void **unused) {
  static const char lid[] = "abcdef0123456789abcdef0123456789";
  ordo_ctx *ctx = ctx_new();
  ordo_journal *j = jopen(ctx, ORDO_QUEUE_CONTINUOUS);
  ordo_queue_batch_spec sp = {0};
  ordo_queue_item it;
  const char *w[1] = {"A"};
  char took[256], *js, *first = NULL;
  ordo_op *op;
  (void)unused;

  sp.id = "L1";
  sp.service = "s";
  sp.writes = w;
  sp.nwrites = 1;
  sp.ledger_id = lid;
  op = ordo_journal_enqueue(j, &sp);
  assert_int_equal(ordo_op_wait(op, -1), ORDO_OK);
  ordo_op_release(op);
  assert_int_equal(enq_wait(j, "N1", "s", "A", NULL, NULL), ORDO_OK);
  sp.id = "L2";
  op = ordo_journal_enqueue(j, &sp);
  assert_int_equal(ordo_op_wait(op, -1), ORDO_E_EXISTS);
  assert_non_null(strstr(ordo_op_message(op), "already queued as L1"));
  ordo_op_release(op);
  assert_int_equal(ordo_journal_batch_status(j, "L2", NULL, NULL, NULL),
                   ORDO_E_NOT_FOUND);
  assert_int_equal(take_wait(j, took, sizeof took), 1);
  assert_string_equal(took, "L1");
  assert_int_equal(ordo_journal_finish(j, "L1", ORDO_QUEUE_COMMITTED, NULL),
                   ORDO_OK);
  assert_int_equal(ordo_journal_close(j), ORDO_OK);

  j = jopen(ctx, ORDO_QUEUE_CONTINUOUS);
  js = ordo_journal_batch_json(j, "L1");
  assert_non_null(js);
  assert_non_null(strstr(js, "\"ledger_id\":\"abcdef0123456789abcdef0123456789\""));
  ordo_free(js);
  js = ordo_journal_batch_json(j, "N1");
  assert_null(strstr(js, "ledger_id"));
  ordo_free(js);
  /* L1 finished: after the reopen it is no longer in memory (its status
   * came from its records above), yet its ledger id is still refused. */
  assert_int_equal(ordo_journal_item(j, "L1", &it), ORDO_E_NOT_FOUND);
  assert_int_equal(ordo_journal_item(j, "N1", &it), ORDO_OK);
  assert_null(it.ledger_id);
  sp.id = "L3";
  op = ordo_journal_enqueue(j, &sp);
  assert_int_equal(ordo_op_wait(op, -1), ORDO_E_EXISTS);
  assert_non_null(strstr(ordo_op_message(op), "ledger batch abcdef0123456789"));
  assert_non_null(strstr(ordo_op_message(op), "a finished batch has it"));
  ordo_op_release(op);
  assert_int_equal(ordo_journal_ledger_find(j, "00", &first),
                   ORDO_E_NOT_FOUND);
  assert_null(first);
  assert_int_equal(ordo_journal_close(j), ORDO_OK);
  ordo_ctx_free(ctx);

  /* Records as older journals wrote them (no ledger_id) replay; a
   * ledger_id that is not a string does not; a duplicate one does not. */
  static const char old_rec[] =
      "{\"e\":\"enq\",\"seq\":1,\"id\":\"X\",\"service\":\"s\"}\n"
      "{\"e\":\"enq\",\"seq\":2,\"id\":\"Y\",\"service\":\"s\","
      "\"ledger_id\":\"ab\"}\n";
  static const char bad_type[] =
      "{\"e\":\"enq\",\"seq\":1,\"id\":\"X\",\"service\":\"s\","
      "\"ledger_id\":7}\n";
  static const char dup[] =
      "{\"e\":\"enq\",\"seq\":1,\"id\":\"X\",\"service\":\"s\","
      "\"ledger_id\":\"ab\"}\n"
      "{\"e\":\"enq\",\"seq\":2,\"id\":\"Y\",\"service\":\"s\","
      "\"ledger_id\":\"ab\"}\n";
  assert_int_equal(ordo__journal_replay_lines((const unsigned char *)old_rec,
                                              sizeof old_rec - 1),
                   ORDO_OK);
  assert_int_equal(ordo__journal_replay_lines((const unsigned char *)bad_type,
                                              sizeof bad_type - 1),
                   ORDO_E_QUEUE);
  assert_int_equal(ordo__journal_replay_lines((const unsigned char *)dup,
                                              sizeof dup - 1),
                   ORDO_E_QUEUE);
}

/* Halts, resumes and policies replay exactly; status JSON says why. */
static void test_halt_policy_replay(void **unused) {
  ordo_ctx *ctx = ctx_new();
  ordo_journal *j = jopen(ctx, ORDO_QUEUE_CONTINUOUS);
  char took[256], *js;
  json_t *o;
  (void)unused;

  assert_int_equal(ordo_journal_set_policy(j, "h", ORDO_QUEUE_HALT, 0, 0), ORDO_OK);
  assert_int_equal(enq_wait(j, "H1", "h", NULL, "A", NULL), ORDO_OK);
  assert_int_equal(enq_wait(j, "H2", "h", NULL, "B", NULL), ORDO_OK);
  assert_int_equal(take_wait(j, took, sizeof took), 2);
  assert_int_equal(ordo_journal_finish(j, "H1", ORDO_QUEUE_INVALID, "no funds"),
                   ORDO_OK);
  assert_int_equal(ordo_journal_finish(j, "H2", ORDO_QUEUE_COMMITTED, NULL),
                   ORDO_OK);
  assert_int_equal(enq_wait(j, "H3", "h", NULL, "C", NULL), ORDO_OK);
  assert_int_equal(take_wait(j, took, sizeof took), 0); /* halted */
  assert_int_equal(ordo_journal_close(j), ORDO_OK);

  j = jopen(ctx, ORDO_QUEUE_CONTINUOUS);
  js = ordo_journal_service_json(j, "h");
  o = json_loads(js, 0, NULL);
  assert_non_null(o);
  assert_true(json_is_true(json_object_get(o, "halted")));
  assert_string_equal(json_string_value(json_object_get(o, "halt_batch")), "H1");
  assert_string_equal(json_string_value(json_object_get(o, "halt_reason")),
                      "no funds");
  assert_int_equal(json_integer_value(json_object_get(o, "depth")), 1);
  json_decref(o);
  free(js);
  assert_int_equal(take_wait(j, took, sizeof took), 0);
  assert_int_equal(ordo_journal_resume(j, "h"), ORDO_OK);
  assert_int_equal(ordo_journal_close(j), ORDO_OK);

  /* The resume was journaled too. */
  j = jopen(ctx, ORDO_QUEUE_CONTINUOUS);
  assert_int_equal(take_wait(j, took, sizeof took), 1);
  assert_string_equal(took, "H3");
  js = ordo_journal_batch_json(j, "H3");
  o = json_loads(js, 0, NULL);
  assert_string_equal(json_string_value(json_object_get(o, "state")),
                      "SUBMITTED");
  assert_string_equal(json_string_value(json_object_get(o, "service")), "h");
  json_decref(o);
  free(js);
  assert_int_equal(ordo_journal_close(j), ORDO_OK);
  ordo_ctx_free(ctx);
}

/* service JSON's "halted", "halt_batch" and "halt_reason" ("-" absent). */
static void expect_halt_json(ordo_journal *j, const char *svc, int halted,
                             const char *batch, const char *reason) {
  char *js = ordo_journal_service_json(j, svc);
  json_t *o = json_loads(js, 0, NULL);
  const char *b, *r;
  assert_non_null(o);
  assert_int_equal(json_is_true(json_object_get(o, "halted")), halted);
  b = json_string_value(json_object_get(o, "halt_batch"));
  r = json_string_value(json_object_get(o, "halt_reason"));
  assert_string_equal(b != NULL ? b : "-", batch);
  assert_string_equal(r != NULL ? r : "-", reason);
  json_decref(o);
  free(js);
}

/* A halt by hand is journaled: a reopen replays its record, a checkpoint
 * keeps it, a resume ends it. */
static void test_operator_halt_durable(void **unused) {
  ordo_ctx *ctx = ctx_new();
  ordo_journal *j;
  ordo_journal_service_info si;
  char took[256];
  (void)unused;

  jopen_ck_records = -1; /* no checkpoint: the reopen replays the record */
  j = jopen(ctx, ORDO_QUEUE_CONTINUOUS);
  assert_int_equal(enq_wait(j, "H1", "h", NULL, "A", NULL), ORDO_OK);
  assert_int_equal(enq_wait(j, "U1", "u", NULL, "A", NULL), ORDO_OK);
  assert_int_equal(ordo_journal_halt(j, "zz", "x"), ORDO_E_NOT_FOUND);
  assert_int_equal(ordo_journal_halt(j, "h", "disk swap"), ORDO_OK);
  assert_int_equal(ordo_journal_halt(j, "h", "again"), ORDO_E_STATE);
  assert_int_equal(ordo_journal_halt(j, "h", "\xff"), ORDO_E_INVAL);
  assert_int_equal(take_wait(j, took, sizeof took), 1);
  assert_string_equal(took, "U1");
  assert_int_equal(ordo_journal_get_service(j, "h", &si), ORDO_OK);
  assert_true(si.halted);
  assert_null(si.halt_batch);
  assert_string_equal(si.halt_reason, "halted by the operator: disk swap");
  ordo_journal_service_info_clear(&si);
  expect_halt_json(j, "h", 1, "-", "halted by the operator: disk swap");
  assert_int_equal(ordo_journal_close(j), ORDO_OK);
  assert_int_equal(count_records("ck"), 0);

  j = jopen(ctx, ORDO_QUEUE_CONTINUOUS);
  expect_halt_json(j, "h", 1, "-", "halted by the operator: disk swap");
  assert_int_equal(take_wait(j, took, sizeof took), 0);
  assert_int_equal(ordo_journal_close(j), ORDO_OK);

  /* With checkpoints: the close writes one, the reopen reads it. */
  jopen_ck_records = 0;
  j = jopen(ctx, ORDO_QUEUE_CONTINUOUS);
  assert_int_equal(ordo_journal_confirm_submitted(j, "U1"), ORDO_OK);
  assert_int_equal(ordo_journal_finish(j, "U1", ORDO_QUEUE_COMMITTED, NULL),
                   ORDO_OK);
  assert_int_equal(ordo_journal_halt(j, "u", NULL), ORDO_OK);
  assert_int_equal(ordo_journal_close(j), ORDO_OK);
  assert_true(count_records("ck") > 0);
  j = jopen(ctx, ORDO_QUEUE_CONTINUOUS);
  assert_true(totals_field(j, "checkpoints") == 0); /* none since the open */
  expect_halt_json(j, "h", 1, "-", "halted by the operator: disk swap");
  expect_halt_json(j, "u", 1, "-", "halted by the operator");
  assert_int_equal(take_wait(j, took, sizeof took), 0);
  assert_int_equal(ordo_journal_resume(j, "h"), ORDO_OK);
  assert_int_equal(ordo_journal_resume(j, "h"), ORDO_E_STATE);
  expect_halt_json(j, "h", 0, "-", "-");
  assert_int_equal(take_wait(j, took, sizeof took), 1);
  assert_string_equal(took, "H1");
  assert_int_equal(ordo_journal_close(j), ORDO_OK);
  j = jopen(ctx, ORDO_QUEUE_CONTINUOUS);
  expect_halt_json(j, "h", 0, "-", "-");
  expect_halt_json(j, "u", 1, "-", "halted by the operator");
  assert_int_equal(ordo_journal_close(j), ORDO_OK);
  ordo_ctx_free(ctx);
}

/* Whether a list row says what ordo_journal_get_service says. */
static void expect_row_is_service(ordo_journal *j,
                                  const ordo_journal_service_row *r) {
  ordo_journal_service_info si;
  assert_int_equal(ordo_journal_get_service(j, r->name, &si), ORDO_OK);
  assert_int_equal(r->depth, si.depth);
  assert_int_equal(r->queued, si.queued);
  assert_int_equal(r->waiting, si.waiting);
  assert_int_equal(r->in_flight, si.in_flight);
  assert_int_equal(r->unknown, si.unknown);
  assert_int_equal(r->committed, si.committed);
  assert_int_equal(r->invalid, si.invalid);
  assert_int_equal(r->halted, si.halted);
  assert_string_equal(r->halt_batch != NULL ? r->halt_batch : "-",
                      si.halt_batch != NULL ? si.halt_batch : "-");
  assert_string_equal(r->halt_reason != NULL ? r->halt_reason : "-",
                      si.halt_reason != NULL ? si.halt_reason : "-");
  ordo_journal_service_info_clear(&si);
}

/* Every service's counters in one call equal the per-service answers:
 * queued, waiting, in flight, UNKNOWN, finished, halted either way. */
static void test_list_services(void **unused) {
  ordo_ctx *ctx = ctx_new();
  ordo_journal *j = jopen(ctx, ORDO_QUEUE_CONTINUOUS);
  ordo_journal_service_row *rows;
  const char *names[8];
  char took[256];
  size_t n, i;
  (void)unused;

  assert_int_equal(ordo_journal_list_services(j, &rows, &n), ORDO_OK);
  assert_int_equal(n, 0);
  assert_null(rows);
  assert_int_equal(ordo_journal_set_policy(j, "h", ORDO_QUEUE_HALT, 0, 0),
                   ORDO_OK);
  assert_int_equal(enq_wait(j, "H1", "h", NULL, "A", NULL), ORDO_OK);
  assert_int_equal(enq_wait(j, "H2", "h", NULL, "A", NULL), ORDO_OK);
  assert_int_equal(enq_wait(j, "A1", "a", NULL, "A", NULL), ORDO_OK);
  assert_int_equal(enq_wait(j, "A2", "a", NULL, "B", NULL), ORDO_OK);
  assert_int_equal(enq_wait(j, "O1", "o", NULL, "A", NULL), ORDO_OK);
  assert_int_equal(take_wait(j, took, sizeof took), 4); /* H1 A1 A2 O1 */
  assert_int_equal(ordo_journal_finish(j, "H1", ORDO_QUEUE_INVALID, "no"),
                   ORDO_OK);
  assert_int_equal(ordo_journal_finish(j, "A2", ORDO_QUEUE_COMMITTED, NULL),
                   ORDO_OK);
  assert_int_equal(ordo_journal_close(j), ORDO_OK);
  j = jopen(ctx, ORDO_QUEUE_CONTINUOUS); /* A1, O1: UNKNOWN now */
  assert_int_equal(enq_wait(j, "A3", "a", NULL, "A", NULL), ORDO_OK);
  assert_int_equal(enq_wait(j, "A4", "a", NULL, "C", NULL), ORDO_OK);
  assert_int_equal(enq_wait(j, "O2", "o", NULL, "Z", NULL), ORDO_OK);
  assert_int_equal(ordo_journal_halt(j, "o", "maintenance"), ORDO_OK);

  assert_int_equal(ordo_journal_list_services(j, &rows, &n), ORDO_OK);
  assert_int_equal(n, ordo_journal_service_names(j, names, 8));
  assert_int_equal(n, 3);
  for (i = 0; i < n; i++) {
    assert_string_equal(rows[i].name, names[i]);
    expect_row_is_service(j, &rows[i]);
  }
  /* Spot checks of what the rows say. */
  for (i = 0; i < n; i++)
    if (strcmp(rows[i].name, "o") == 0) {
      assert_true(rows[i].halted);
      assert_null(rows[i].halt_batch);
      assert_string_equal(rows[i].halt_reason,
                          "halted by the operator: maintenance");
      assert_int_equal(rows[i].unknown, 1);
      assert_int_equal(rows[i].queued, 1);
    } else if (strcmp(rows[i].name, "h") == 0) {
      assert_string_equal(rows[i].halt_batch, "H1");
      assert_string_equal(rows[i].halt_reason, "no");
    } else {
      assert_false(rows[i].halted);
      assert_int_equal(rows[i].unknown, 1);
      assert_int_equal(rows[i].waiting, 1); /* A3 after A1's A */
      assert_int_equal(rows[i].committed, 1);
    }
  ordo_journal_service_rows_free(rows, n);
  ordo_journal_service_rows_free(NULL, 0);
  assert_int_equal(ordo_journal_list_services(NULL, &rows, &n), ORDO_E_INVAL);
  assert_int_equal(ordo_journal_close(j), ORDO_OK);
  ordo_ctx_free(ctx);
}

/* A WAITING batch's status JSON explains what it waits on. */
static void test_status_json_explains(void **unused) {
  ordo_ctx *ctx = ctx_new();
  ordo_journal *j = jopen(ctx, ORDO_QUEUE_CONTINUOUS);
  char *js;
  json_t *o;
  (void)unused;
  assert_int_equal(enq_wait(j, "W1", "s", NULL, "A", NULL), ORDO_OK);
  assert_int_equal(enq_wait(j, "W2", "s", "A", NULL, NULL), ORDO_OK);
  js = ordo_journal_batch_json(j, "W2");
  o = json_loads(js, 0, NULL);
  assert_string_equal(json_string_value(json_object_get(o, "state")), "WAITING");
  assert_string_equal(json_string_value(json_object_get(o, "explain")),
                      "W2 waits on A (W1 writes)");
  json_decref(o);
  free(js);
  /* The same as data: "waits_on", one object per blocker. */
  {
    json_t *want = json_loads(
        "[{\"kind\":\"address\",\"what\":\"A\",\"mode\":\"read\","
        "\"holders\":[{\"id\":\"W1\",\"mode\":\"write\"}],\"more\":0}]",
        0, NULL);
    o = json_loads(js = ordo_journal_batch_json(j, "W2"), 0, NULL);
    assert_true(json_equal(json_object_get(o, "waits_on"), want));
    json_decref(o);
    free(js);
    json_decref(want);
  }
  assert_int_equal(enq_wait(j, "W3", "s", NULL, "B", "later"), ORDO_OK);
  {
    ordo_journal_batch_info b;
    json_t *want = json_loads("[{\"kind\":\"dep\",\"what\":\"later\","
                              "\"state\":\"never enqueued\"}]",
                              0, NULL);
    o = json_loads(js = ordo_journal_batch_json(j, "W3"), 0, NULL);
    assert_true(json_equal(json_object_get(o, "waits_on"), want));
    json_decref(o);
    free(js);
    json_decref(want);
    assert_int_equal(ordo_journal_get_batch(j, "W3", &b), ORDO_OK);
    assert_int_equal(b.nblockers, 1);
    assert_string_equal(b.blockers[0].kind, "dep");
    ordo_journal_batch_info_clear(&b);
    assert_null(b.blockers);
  }
  /* Not WAITING: no "waits_on". */
  o = json_loads(js = ordo_journal_batch_json(j, "W1"), 0, NULL);
  assert_null(json_object_get(o, "waits_on"));
  assert_null(json_object_get(o, "explain"));
  json_decref(o);
  free(js);
  assert_null(ordo_journal_batch_json(j, "nope"));
  assert_int_equal(ordo_last_error(), ORDO_E_NOT_FOUND);
  assert_int_equal(ordo_journal_close(j), ORDO_OK);
  ordo_ctx_free(ctx);
}

/* Bad input: duplicates, bad strings, missing and foreign files, a record
 * the replay cannot apply, and a blocking open on a runtime thread. */
static int open_in_stage(ordo_op *op, void *arg) {
  ordo_journal *j = NULL;
  *(int *)arg = ordo_journal_open(ordo__op_ctx(op), jpath, NULL, &j);
  return ORDO_OK;
}

static void test_bad_input(void **unused) {
  ordo_ctx *ctx = ctx_new();
  ordo_journal *j = jopen(ctx, ORDO_QUEUE_CONTINUOUS);
  ordo_journal_options opt;
  ordo_queue_batch_spec sp = {0};
  char other[512];
  ordo_op *op;
  int rc, fd;
  (void)unused;

  assert_int_equal(enq_wait(j, "D1", "s", NULL, "A", NULL), ORDO_OK);
  assert_int_equal(enq_wait(j, "D1", "s", NULL, "B", NULL), ORDO_E_EXISTS);
  sp.id = "bad\xff";
  sp.service = "s";
  op = ordo_journal_enqueue(j, &sp);
  assert_int_equal(ordo_op_wait(op, -1), ORDO_E_INVAL);
  assert_non_null(strstr(ordo_op_message(op), "UTF-8"));
  ordo_op_release(op);
  sp.id = NULL;
  op = ordo_journal_enqueue(j, &sp);
  assert_int_equal(ordo_op_wait(op, -1), ORDO_E_INVAL);
  ordo_op_release(op);
  assert_int_equal(ordo_journal_finish(j, "nope", ORDO_QUEUE_COMMITTED, NULL),
                   ORDO_E_NOT_FOUND);
  assert_int_equal(ordo_journal_finish(j, "D1", ORDO_QUEUE_COMMITTED, NULL),
                   ORDO_E_STATE);
  assert_int_equal(ordo_journal_close(j), ORDO_OK);

  /* One open at a time: a second one is refused while the first holds it
   * (another process gets the same answer: flock, or PostgreSQL's advisory
   * lock), and works after close. */
  j = jopen(ctx, ORDO_QUEUE_CONTINUOUS);
  {
    ordo_journal *j2 = NULL;
    assert_int_equal(ordo_journal_open(ctx, jpath, NULL, &j2),
                     ORDO_E_STORAGE_BUSY);
    assert_non_null(strstr(ordo_last_error_message(), "another process"));
    assert_null(j2);
  }
  assert_int_equal(ordo_journal_close(j), ORDO_OK);

  /* Missing file (or store) without create. */
  ordo_journal_options_init(&opt);
  journal_path(other, sizeof other, "missing");
  j = NULL;
  assert_int_equal(ordo_journal_open(ctx, other, &opt, &j), ORDO_E_NOT_FOUND);
  assert_null(j);
  /* A file that is not SQLite (a PostgreSQL store has no such thing). */
  if (!journal_on_postgres()) {
    snprintf(other, sizeof other, "%s/garbage.db", tmpdir);
    fd = open(other, O_CREAT | O_WRONLY | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "not a database, not at all, no....", 34), 34);
    close(fd);
    rc = ordo_journal_open(ctx, other, &opt, &j);
    assert_int_equal(rc, ORDO_E_STORAGE);
    assert_null(j);
  }
  /* A database (a store) of the backend that is no journal. */
  {
    const ordo_storage_backend *be = journal_backend();
    ordo_storage *st = NULL;
    journal_path(other, sizeof other, "not-a-journal");
    assert_int_equal(be->open(be, ctx, other, ORDO_STORAGE_CREATE, &st, NULL),
                     ORDO_OK);
    assert_int_equal(st_close(st), ORDO_OK);
    rc = ordo_journal_open(ctx, other, &opt, &j);
    assert_int_equal(rc, ORDO_E_STORAGE);
    assert_non_null(strstr(ordo_last_error_message(), "not an ordo journal"));
    assert_null(j);
  }

  /* A record the replay cannot apply: the error names the event. */
  {
    ordo_storage *st = NULL;
    char *err = NULL;
    const ordo_storage_backend *be = journal_backend();
    assert_int_equal(be->open(be, ctx, jpath, 0, &st, &err), ORDO_OK);
    assert_int_equal(st_put(st, "ev",
                                         (const unsigned char *)
                                         "\x00\x00\x00\x00\x00\x00\x10\x00",
                                         8, "{\"e\":\"fin\",\"id\":\"ghost\","
                                         "\"state\":\"COMMITTED\"}"),
                     ORDO_OK);
    assert_int_equal(st_close(st), ORDO_OK);
    rc = ordo_journal_open(ctx, jpath, &opt, &j);
    assert_int_equal(rc, ORDO_E_QUEUE);
    assert_non_null(strstr(ordo_last_error_message(), "journal event 4096"));
    assert_non_null(strstr(ordo_last_error_message(), "ghost"));
    assert_null(j);
  }

  /* Blocking open from a runtime thread is refused, not deadlocked. */
  op = ordo_submit(ctx, ORDO_CLASS_CHEAP, open_in_stage, &rc);
  assert_int_equal(ordo_op_wait(op, -1), ORDO_OK);
  ordo_op_release(op);
  assert_int_equal(rc, ORDO_E_WOULD_DEADLOCK);
  ordo_ctx_free(ctx);
}

/* Many enqueues in flight at once share transactions (group commit); every
 * one is acknowledged, in seq order of submission. */
static void test_group_commit(void **unused) {
  enum { N = 400 };
  ordo_ctx *ctx = ctx_new();
  ordo_journal *j = jopen(ctx, ORDO_QUEUE_CONTINUOUS);
  ordo_op *ops[N];
  char ids[N][16];
  unsigned long long records = 0, commits = 0;
  uint64_t last = 0;
  int i;
  (void)unused;

  for (i = 0; i < N; i++) {
    ordo_queue_batch_spec sp = {0};
    const char *w[1];
    char addr[16];
    snprintf(ids[i], sizeof ids[i], "G%d", i);
    snprintf(addr, sizeof addr, "a%d", i % 7);
    w[0] = addr;
    sp.id = ids[i];
    sp.service = i % 2 ? "odd" : "even";
    sp.writes = w;
    sp.nwrites = 1;
    ops[i] = ordo_journal_enqueue(j, &sp);
    assert_non_null(ops[i]);
  }
  for (i = 0; i < N; i++) {
    json_t *r;
    assert_int_equal(ordo_op_wait(ops[i], -1), ORDO_OK);
    r = json_loads(ordo_op_result(ops[i]), 0, NULL);
    assert_true((uint64_t)json_integer_value(json_object_get(r, "seq")) > last);
    last = (uint64_t)json_integer_value(json_object_get(r, "seq"));
    json_decref(r);
    ordo_op_release(ops[i]);
  }
  ordo_journal_write_stats(j, &records, &commits);
  assert_int_equal(records, N);
  print_message("group commit: %llu records in %llu transactions\n", records,
                commits);
  assert_true(commits < records);
  assert_int_equal(ordo_journal_close(j), ORDO_OK);
  ordo_ctx_free(ctx);
}

/* ------------------------------------------------------------------------ */
/* Replay is exact: random histories, reopened                              */
/* ------------------------------------------------------------------------ */

/* Every batch's status JSON, one per line; SUBMITTED shows as UNKNOWN, the
 * state it must have after a reopen. */
static char *snapshot(ordo_journal *j, int nids) {
  size_t cap = 1 << 16, len = 0;
  char *out = malloc(cap);
  assert_non_null(out);
  out[0] = '\0';
  for (int i = 0; i < nids; i++) {
    char id[16], *js;
    json_t *o;
    snprintf(id, sizeof id, "R%d", i);
    if ((js = ordo_journal_batch_json(j, id)) == NULL)
      continue;
    o = json_loads(js, 0, NULL);
    free(js);
    if (strcmp(json_string_value(json_object_get(o, "state")), "SUBMITTED") == 0)
      json_object_set_new(o, "state", json_string("UNKNOWN"));
    js = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(o);
    while (len + strlen(js) + 2 > cap)
      assert_non_null(out = realloc(out, cap *= 2));
    len += (size_t)sprintf(out + len, "%s\n", js);
    free(js);
  }
  for (int s = 0; s < 3; s++) {
    char svc[8], *js;
    snprintf(svc, sizeof svc, "s%d", s);
    if ((js = ordo_journal_service_json(j, svc)) == NULL)
      continue;
    /* in_flight and unknown trade places at the reopen: drop both. */
    json_t *o = json_loads(js, 0, NULL);
    free(js);
    json_object_del(o, "in_flight");
    json_object_del(o, "unknown");
    js = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(o);
    while (len + strlen(js) + 2 > cap)
      assert_non_null(out = realloc(out, cap *= 2));
    len += (size_t)sprintf(out + len, "%s\n", js);
    free(js);
  }
  return out;
}

static void test_replay_random_histories(void **unused) {
  ordo_ctx *ctx = ctx_new();
  unsigned seed = 777;
  (void)unused;
  for (int run = 0; run < 40; run++) {
    ordo_journal *j;
    int nids = 0, step;
    char *before, *after;
    char path_run[32];

    snprintf(path_run, sizeof path_run, "random-%d", run); /* a new one */
    journal_path(jpath, sizeof jpath, path_run);
    /* Two runs in three checkpoint every few records, so that replays
     * start from checkpoints taken anywhere in a history. */
    jopen_ck_records = run % 3 == 0 ? 0 : 3 + run % 7;
    j = jopen(ctx, run % 2 ? ORDO_QUEUE_ROUNDS : ORDO_QUEUE_CONTINUOUS);
    if (run % 3 == 0)
      assert_int_equal(ordo_journal_set_policy(j, "s1", ORDO_QUEUE_HALT, 0, 0),
                       ORDO_OK);
    for (step = 0; step < 60; step++) {
      unsigned r = (unsigned)rand_r(&seed) % 10;
      if (r < 5) {
        char id[16], svc[8], rd[8], wr[8], dep[16];
        snprintf(id, sizeof id, "R%d", nids);
        snprintf(svc, sizeof svc, "s%u", (unsigned)rand_r(&seed) % 3);
        snprintf(rd, sizeof rd, "%c", 'a' + rand_r(&seed) % 4);
        snprintf(wr, sizeof wr, "%c", 'a' + rand_r(&seed) % 4);
        snprintf(dep, sizeof dep, "R%d",
                 nids > 0 ? (int)((unsigned)rand_r(&seed) % (unsigned)nids) : 0);
        assert_int_equal(enq_wait(j, id, svc, rd, rand_r(&seed) % 2 ? wr : NULL,
                                  nids > 0 && rand_r(&seed) % 4 == 0 ? dep
                                                                     : NULL),
                         ORDO_OK);
        nids++;
      } else if (r < 7) {
        char took[2048];
        (void)take_wait(j, took, sizeof took);
      } else if (r < 9) {
        /* Finish a random in-flight batch. */
        int start = nids > 0 ? (int)((unsigned)rand_r(&seed) % (unsigned)nids) : 0;
        for (int k = 0; k < nids; k++) {
          char id[16];
          snprintf(id, sizeof id, "R%d", (start + k) % nids);
          if (jstate(j, id) == ORDO_QUEUE_SUBMITTED) {
            int ok = rand_r(&seed) % 4 != 0;
            assert_int_equal(ordo_journal_finish(j, id,
                                                 ok ? ORDO_QUEUE_COMMITTED
                                                    : ORDO_QUEUE_INVALID,
                                                 ok ? NULL : "rejected"),
                             ORDO_OK);
            break;
          }
        }
      } else {
        (void)ordo_journal_resume(j, "s1"); /* ORDO_E_STATE if not halted */
      }
    }
    before = snapshot(j, nids);
    assert_int_equal(ordo_journal_close(j), ORDO_OK);
    j = jopen(ctx, run % 2 ? ORDO_QUEUE_ROUNDS : ORDO_QUEUE_CONTINUOUS);
    after = snapshot(j, nids);
    if (strcmp(before, after) != 0) {
      fprintf(stderr, "before:\n%s\nafter:\n%s", before, after);
      fail_msg("run %d: replay differs (above)", run);
    }
    free(before);
    free(after);
    assert_int_equal(ordo_journal_close(j), ORDO_OK);
  }
  jopen_ck_records = 0;
  ordo_ctx_free(ctx);
}

/* ------------------------------------------------------------------------ */
/* Crash safety                                                              */
/* ------------------------------------------------------------------------ */

/*
 * The child: enqueue C<first>, C<first+1>, ... with up to 8 in flight, and
 * after each one is acknowledged write its id and seq to stdout (fd 1, one
 * write per line, so a SIGKILL cannot tear a line). Also takes and
 * finishes now and then, so the log holds every kind of event.
 */
static int crash_child(const char *path, long first) {
  ordo_ctx *ctx = ctx_small();
  ordo_journal_options opt;
  ordo_journal *j = NULL;
  ordo_op *ring[8] = {0};
  char ids[8][32];
  long k;

  if (ctx == NULL)
    return 3;
  ordo_journal_options_init(&opt);
  opt.create = 1;
  opt.checkpoint_records = 150; /* kills land across checkpoints too */
  if (ordo_journal_open(ctx, path, &opt, &j) != ORDO_OK) {
    fprintf(stderr, "child open: %s\n", ordo_last_error_message());
    return 4;
  }
  /* Settle what the last run left in flight, as the ledger client will. */
  for (;;) {
    char *unk[64];
    size_t n = 0, i;
    if (ordo_journal_unknown(j, unk, 64, &n, NULL) != ORDO_OK || n == 0)
      break;
    for (i = 0; i < n; i++) {
      (void)ordo_journal_finish(j, unk[i], ORDO_QUEUE_COMMITTED, NULL);
      free(unk[i]);
    }
  }
  for (k = first;; k++) {
    int slot = (int)(k % 8);
    if (ring[slot] != NULL) {
      char line[80];
      json_t *r;
      int len;
      if (ordo_op_wait(ring[slot], -1) != ORDO_OK) {
        fprintf(stderr, "child enqueue: %s\n", ordo_op_message(ring[slot]));
        return 5;
      }
      r = json_loads(ordo_op_result(ring[slot]), 0, NULL);
      len = snprintf(line, sizeof line, "%s %lld\n", ids[slot],
                     (long long)json_integer_value(json_object_get(r, "seq")));
      json_decref(r);
      if (write(1, line, (size_t)len) != len)
        return 6;
      ordo_op_release(ring[slot]);
    }
    {
      ordo_queue_batch_spec sp = {0};
      const char *w[1];
      char addr[16];
      snprintf(ids[slot], sizeof ids[slot], "C%ld", k);
      snprintf(addr, sizeof addr, "k%ld", k % 5);
      w[0] = addr;
      sp.id = ids[slot];
      sp.service = k % 3 ? "a" : "b";
      sp.writes = w;
      sp.nwrites = 1;
      sp.payload = ids[slot];
      sp.payload_len = strlen(ids[slot]);
      ring[slot] = ordo_journal_enqueue(j, &sp);
      if (ring[slot] == NULL)
        return 7;
    }
    if (k % 16 == 0) {
      ordo_queue_item items[64];
      ordo_op *durable = NULL;
      size_t n = 0, i;
      if (ordo_journal_take(j, items, 64, &n, &durable) != ORDO_OK)
        return 8;
      if (durable != NULL) {
        if (ordo_op_wait(durable, -1) != ORDO_OK)
          return 9;
        ordo_op_release(durable);
      }
      for (i = 0; i < n; i++)
        (void)ordo_journal_finish(j, items[i].id, i % 5 ? ORDO_QUEUE_COMMITTED
                                                        : ORDO_QUEUE_INVALID,
                                  "model ledger says no");
    }
  }
}

static char self_exe[4096];

/*
 * jopen right after the journal's holder was SIGKILLed and reaped. The
 * kernel dropped SQLite's flock with the process; PostgreSQL drops its
 * advisory lock once the server has seen the dead connection close, soon
 * after but not at the same moment: so, on PostgreSQL, ORDO_E_STORAGE_BUSY
 * is asked again until a deadline.
 */
static ordo_journal *jopen_after_kill(ordo_ctx *ctx, ordo_queue_mode mode) {
  ordo_journal_options opt;
  ordo_journal *j = NULL;
  struct timespec t0, now;
  int rc;
  ordo_journal_options_init(&opt);
  opt.create = 1;
  opt.queue.mode = mode;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  while ((rc = ordo_journal_open(ctx, jpath, &opt, &j)) ==
             ORDO_E_STORAGE_BUSY &&
         journal_on_postgres()) {
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (now.tv_sec - t0.tv_sec > 30)
      break;
    usleep(5000);
  }
  if (rc != ORDO_OK)
    fail_msg("journal open after the kill: %s", ordo_last_error_message());
  return j;
}

static void test_crash_sigkill(void **unused) {
  /* Under valgrind (make memcheck sets ORDO_MEMCHECK) the parent's checks
   * read every finished batch back from disk at valgrind's pace: 5 short
   * rounds there, 25 elsewhere. */
  const int ROUNDS = getenv("ORDO_MEMCHECK") != NULL ? 5 : 25;
  char (*acked)[32] = calloc(200000, 32);
  uint64_t *acked_seq = calloc(200000, sizeof(uint64_t));
  size_t nacked = 0, checked = 0;
  long next = 0;
  unsigned seed = 12345;
  int round;
  (void)unused;
  assert_non_null(acked);
  assert_non_null(acked_seq);

  for (round = 0; round < ROUNDS; round++) {
    int pfd[2], status;
    pid_t pid;
    char first[32], buf[8192], line[64];
    size_t ll = 0;
    struct timespec t0, now;
    long wait_ms = ROUNDS == 25 ? 20 + (long)(rand_r(&seed) % 250)
                                : 5 + (long)(rand_r(&seed) % 40);

    assert_int_equal(pipe(pfd), 0);
    snprintf(first, sizeof first, "%ld", next);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
      dup2(pfd[1], 1);
      close(pfd[0]);
      close(pfd[1]);
      execl(self_exe, self_exe, "crash-child", jpath, first, (char *)NULL);
      _exit(127);
    }
    close(pfd[1]);
    fcntl(pfd[0], F_SETFL, O_NONBLOCK);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    /* Read acknowledgements until the chosen moment after the child's
     * first one (its start, a new journal's first fsyncs, are not what is
     * tested, and take longer than the moment on a slow disk), then
     * SIGKILL. */
    size_t acked_before = nacked;
    int first_seen = 0;
    for (;;) {
      ssize_t r = read(pfd[0], buf, sizeof buf);
      long ms;
      if (r > 0) {
        for (ssize_t i = 0; i < r; i++) {
          if (buf[i] != '\n') {
            if (ll < sizeof line - 1)
              line[ll++] = buf[i];
            continue;
          }
          line[ll] = '\0';
          ll = 0;
          {
            unsigned long long sq = 0;
            char id[32];
            assert_int_equal(sscanf(line, "%31s %llu", id, &sq), 2);
            assert_true(nacked < 200000);
            snprintf(acked[nacked], 32, "%s", id);
            acked_seq[nacked++] = sq;
          }
        }
      } else if (r == 0) {
        break; /* the child died by itself */
      } else {
        usleep(1000);
      }
      clock_gettime(CLOCK_MONOTONIC, &now);
      if (!first_seen && nacked > acked_before) {
        first_seen = 1;
        t0 = now;
      }
      ms = (now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000;
      if (!first_seen && ms >= 30000) {
        kill(pid, SIGKILL);
        fail_msg("round %d: the child acknowledged nothing in 30 s", round);
      }
      if (first_seen && ms >= wait_ms) {
        kill(pid, SIGKILL);
        break;
      }
    }
    /* Lines written before the kill are still in the pipe. */
    fcntl(pfd[0], F_SETFL, 0);
    for (;;) {
      ssize_t r = read(pfd[0], buf, sizeof buf);
      if (r <= 0)
        break;
      for (ssize_t i = 0; i < r; i++) {
        if (buf[i] != '\n') {
          if (ll < sizeof line - 1)
            line[ll++] = buf[i];
          continue;
        }
        line[ll] = '\0';
        ll = 0;
        unsigned long long sq = 0;
        char id[32];
        assert_int_equal(sscanf(line, "%31s %llu", id, &sq), 2);
        snprintf(acked[nacked], 32, "%s", id);
        acked_seq[nacked++] = sq;
      }
    }
    close(pfd[0]);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL))
      fail_msg("child ended with status %d before the kill", status);

    /* Reopen: every acknowledged batch is there with the seq it was told,
     * in acknowledgement order; the journal replays cleanly. */
    {
      ordo_ctx *ctx = ctx_new();
      ordo_journal *j = jopen_after_kill(ctx, ORDO_QUEUE_CONTINUOUS);
      char *js = ordo_journal_totals_json(j);
      json_t *t = json_loads(js, 0, NULL);
      size_t i, total;
      uint64_t prev;
      free(js);
      /* On PostgreSQL, where reading a finished batch back is a query (a
       * slow one until the server has analyzed the new tables), a round
       * checks what was acknowledged since the last one, and the last
       * round everything: a batch once lost stays lost. */
      if (!journal_on_postgres() || round == ROUNDS - 1)
        checked = 0;
      prev = checked > 0 ? acked_seq[checked - 1] : 0;
      for (i = checked; i < nacked; i++) {
        uint64_t sq = 0;
        if (ordo_journal_batch_status(j, acked[i], NULL, &sq, NULL) != ORDO_OK)
          fail_msg("round %d: acknowledged %s is missing", round, acked[i]);
        assert_int_equal(sq, acked_seq[i]);
        assert_true(sq > prev);
        prev = sq;
      }
      checked = nacked;
      total = (size_t)(json_integer_value(json_object_get(t, "queued")) +
                       json_integer_value(json_object_get(t, "waiting")) +
                       json_integer_value(json_object_get(t, "in_flight")) +
                       json_integer_value(json_object_get(t, "unknown")) +
                       json_integer_value(json_object_get(t, "committed")) +
                       json_integer_value(json_object_get(t, "invalid")));
      json_decref(t);
      /* No duplicates and nothing invented: beyond the acknowledged ones,
       * at most the 8 each run had in flight unacknowledged. */
      if (total < nacked || total > nacked + 8 * (size_t)(round + 1))
        fail_msg("round %d: %zu batches journaled, %zu acknowledged", round,
                 total, nacked);
      /* The next child continues after the last journaled id (those
       * below the last round's were there, and were checked above if
       * acknowledged: a read each is what PostgreSQL pays most for). */
      for (i = (size_t)next; i < total + 16; i++) {
        char id[32];
        snprintf(id, sizeof id, "C%zu", i);
        if (ordo_journal_batch_status(j, id, NULL, NULL, NULL) == ORDO_OK)
          next = (long)i + 1;
      }
      assert_int_equal(ordo_journal_close(j), ORDO_OK);
      ordo_ctx_free(ctx);
    }
  }
  print_message("crash: %d SIGKILLs, %zu acknowledged batches all present\n",
                ROUNDS, nacked);
  assert_true(nacked > 0);
  free(acked);
  free(acked_seq);
}

/* ordo_ctx_free closes a journal still open on it (its database's executor
 * is about to go); the caller's later close only frees the handle. Written
 * batches stay, and the file can be opened again at once (the lock went). */
static void test_close_after_ctx_free(void **unused) {
  ordo_ctx *ctx = ctx_new();
  ordo_journal *j = jopen(ctx, ORDO_QUEUE_CONTINUOUS);
  (void)unused;
  assert_int_equal(enq_wait(j, "a", "s", NULL, "A", NULL), ORDO_OK);
  ordo_ctx_free(ctx);
  assert_int_equal(ordo_journal_close(j), ORDO_OK);

  ctx = ctx_new();
  j = jopen(ctx, ORDO_QUEUE_CONTINUOUS);
  assert_int_equal(ordo_journal_batch_status(j, "a", NULL, NULL, NULL),
                   ORDO_OK);
  /* Left open this time too, then freed: still clean. */
  ordo_ctx_free(ctx);
  assert_int_equal(ordo_journal_close(j), ORDO_OK);
}

/* A path whose PATH.lock does not fit is refused, not cut: a cut path
 * would lock another file. Nothing is made. */
static void test_path_too_long(void **unused) {
  ordo_ctx *ctx = ctx_new();
  ordo_journal_options opt;
  ordo_journal *j = (ordo_journal *)&opt; /* set to NULL by the call */
  char *path = malloc(5001);
  size_t n;
  (void)unused;
  assert_non_null(path);
  /* tmpdir/a/a/a/...: every component short, the whole 5000 bytes. */
  n = (size_t)snprintf(path, 5001, "%s", tmpdir);
  while (n < 5000) {
    path[n++] = '/';
    if (n < 5000)
      path[n++] = 'a';
  }
  path[5000] = '\0';
  ordo_journal_options_init(&opt);
  opt.create = 1;
  assert_int_equal(ordo_journal_open(ctx, path, &opt, &j), ORDO_E_INVAL);
  assert_null(j);
  assert_non_null(strstr(ordo_last_error_message(), "too long"));
  free(path);
  ordo_ctx_free(ctx);
}

/* ------------------------------------------------------------------------ */
/* Atomic, idempotent enqueue; cancel; dep timeouts                          */
/* ------------------------------------------------------------------------ */

static uint64_t wall_now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_REALTIME, &t);
  return (uint64_t)t.tv_sec * 1000u + (uint64_t)t.tv_nsec / 1000000u;
}

static ordo_queue_batch_spec mspec(const char *id, const char *svc,
                                   const char *const *w, const char *payload) {
  ordo_queue_batch_spec sp = {0};
  sp.id = id;
  sp.service = svc;
  sp.writes = w;
  sp.nwrites = 1;
  sp.payload = payload;
  sp.payload_len = strlen(payload);
  return sp;
}

/* enqueue_many: ten batches are one storage transaction; a request with
 * one refused item (another batch under its id, an id repeated) enqueues
 * nothing and names the item; the same request again is answered "already
 * enqueued" (before and after a reopen, where the digests come from the
 * records); a request mixing new and identical items adds the new ones. */
static void test_enqueue_many_atomic(void **unused) {
  static const char *const wa[] = {"A"}, *const wb[] = {"B"};
  ordo_ctx *ctx = ctx_new();
  ordo_journal *j = jopen(ctx, ORDO_QUEUE_CONTINUOUS);
  ordo_queue_batch_spec sp[10];
  unsigned long long r0, c0, r1, c1;
  char ids[10][8];
  size_t bad = 0;
  json_t *res, *arr;
  ordo_op *op;
  (void)unused;

  for (int i = 0; i < 10; i++) {
    snprintf(ids[i], sizeof ids[i], "M%d", i);
    sp[i] = mspec(ids[i], "s", i % 2 ? wa : wb, ids[i]);
  }
  ordo_journal_write_stats(j, &r0, &c0);
  op = ordo_journal_enqueue_many(j, sp, 10, &bad);
  assert_int_equal(ordo_op_wait(op, -1), ORDO_OK);
  assert_int_equal(bad, (size_t)-1);
  res = json_loads(ordo_op_result(op), 0, NULL);
  arr = json_object_get(res, "batches");
  assert_int_equal(json_array_size(arr), 10);
  assert_string_equal(json_string_value(json_object_get(json_array_get(arr, 9),
                                                        "id")), "M9");
  assert_int_equal(json_integer_value(json_object_get(json_array_get(arr, 9),
                                                      "seq")), 10);
  assert_null(json_object_get(json_array_get(arr, 0), "already_enqueued"));
  json_decref(res);
  ordo_op_release(op);
  ordo_journal_write_stats(j, &r1, &c1);
  assert_int_equal(r1 - r0, 10);
  assert_int_equal(c1 - c0, 1); /* one transaction */

  /* Item 2 is M1 under other content: nothing of the request goes in. */
  {
    ordo_queue_batch_spec b[3];
    b[0] = mspec("N0", "s", wa, "x");
    b[1] = mspec("N1", "s", wa, "x");
    b[2] = mspec("M1", "s", wa, "other");
    op = ordo_journal_enqueue_many(j, b, 3, &bad);
    assert_int_equal(ordo_op_wait(op, -1), ORDO_E_EXISTS);
    assert_int_equal(bad, 2);
    assert_non_null(strstr(ordo_op_message(op), "other content"));
    ordo_op_release(op);
    b[2] = mspec("N0", "s", wa, "x"); /* repeated in the request */
    op = ordo_journal_enqueue_many(j, b, 3, &bad);
    assert_int_equal(ordo_op_wait(op, -1), ORDO_E_EXISTS);
    assert_int_equal(bad, 2);
    assert_non_null(strstr(ordo_op_message(op), "repeats item 0"));
    ordo_op_release(op);
    b[2] = mspec("N2", "", wa, "x"); /* refused by the scheduler's checks */
    op = ordo_journal_enqueue_many(j, b, 3, &bad);
    assert_int_equal(ordo_op_wait(op, -1), ORDO_E_INVAL);
    assert_int_equal(bad, 2);
    ordo_op_release(op);
    assert_int_equal(ordo_journal_batch_status(j, "N0", NULL, NULL, NULL),
                     ORDO_E_NOT_FOUND);
    assert_int_equal(ordo_journal_batch_status(j, "N1", NULL, NULL, NULL),
                     ORDO_E_NOT_FOUND);
    /* Mixed: N0 new, M1 and M2 there already, identical. */
    b[0] = mspec("N0", "s", wa, "x");
    b[1] = sp[1];
    b[2] = sp[2];
    ordo_journal_write_stats(j, &r0, &c0);
    op = ordo_journal_enqueue_many(j, b, 3, &bad);
    assert_int_equal(ordo_op_wait(op, -1), ORDO_OK);
    res = json_loads(ordo_op_result(op), 0, NULL);
    arr = json_object_get(res, "batches");
    assert_null(json_object_get(json_array_get(arr, 0), "already_enqueued"));
    assert_true(json_is_true(json_object_get(json_array_get(arr, 1),
                                             "already_enqueued")));
    assert_int_equal(json_integer_value(json_object_get(json_array_get(arr, 1),
                                                        "seq")), 2);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(arr, 1), "state")), "QUEUED");
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(arr, 2), "state")), "WAITING");
    json_decref(res);
    ordo_op_release(op);
    ordo_journal_write_stats(j, &r1, &c1);
    assert_int_equal(r1 - r0, 1); /* only N0's record */
  }
  assert_int_equal(ordo_journal_close(j), ORDO_OK);

  /* Reopened: the whole request again is all "already enqueued", and
   * nothing is written; other content is still refused. */
  j = jopen(ctx, ORDO_QUEUE_CONTINUOUS);
  ordo_journal_write_stats(j, &r0, &c0);
  op = ordo_journal_enqueue_many(j, sp, 10, &bad);
  assert_int_equal(ordo_op_wait(op, -1), ORDO_OK);
  res = json_loads(ordo_op_result(op), 0, NULL);
  arr = json_object_get(res, "batches");
  for (size_t i = 0; i < 10; i++)
    assert_true(json_is_true(json_object_get(json_array_get(arr, i),
                                             "already_enqueued")));
  json_decref(res);
  ordo_op_release(op);
  ordo_journal_write_stats(j, &r1, &c1);
  assert_int_equal(r1 - r0, 0);
  {
    ordo_queue_batch_spec b = sp[3];
    b.payload = "M3 but changed";
    b.payload_len = strlen(b.payload);
    op = ordo_journal_enqueue(j, &b);
    assert_int_equal(ordo_op_wait(op, -1), ORDO_E_EXISTS);
    ordo_op_release(op);
    b = sp[3];
    b.service = "t";
    op = ordo_journal_enqueue(j, &b);
    assert_int_equal(ordo_op_wait(op, -1), ORDO_E_EXISTS);
    ordo_op_release(op);
    op = ordo_journal_enqueue(j, &sp[3]); /* the single call: the same */
    assert_int_equal(ordo_op_wait(op, -1), ORDO_OK);
    assert_non_null(strstr(ordo_op_result(op), "\"already_enqueued\":true"));
    ordo_op_release(op);
  }
  assert_int_equal(ordo_journal_close(j), ORDO_OK);
  ordo_ctx_free(ctx);
}

/* The state (and reason) of a batch in the journal. */
static ordo_queue_state jstate_why(ordo_journal *j, const char *id, char *why,
                               size_t whylen) {
  ordo_queue_state st;
  char *r = NULL;
  assert_int_equal(ordo_journal_batch_status(j, id, &st, NULL, &r), ORDO_OK);
  if (why != NULL)
    snprintf(why, whylen, "%s", r != NULL ? r : "");
  free(r);
  return st;
}

/* Cancel (durable, replayed) and dep timeouts (by explicit clocks,
 * journaled as INVALID verdicts, replayed); the policy's dep timeout is
 * journaled too; an UNKNOWN batch cannot be cancelled. */
static void test_cancel_expire_replay(void **unused) {
  ordo_ctx *ctx = ctx_new();
  ordo_journal *j = jopen(ctx, ORDO_QUEUE_CONTINUOUS);
  char took[256], why[128];
  uint64_t t0;
  size_t n = 9;
  ordo_op *op;
  char *js;
  (void)unused;

  assert_int_equal(ordo_journal_set_policy(j, "s", ORDO_QUEUE_SKIP, 0, 30000),
                   ORDO_OK);
  assert_int_equal(ordo_journal_set_policy_json(j, "v", "{\"dep_timeout_s\":"
                                                "1.5}"), ORDO_OK);
  assert_int_equal(ordo_journal_set_policy_json(j, "v", "{\"dep_timeout_s\":"
                                                "-1}"), ORDO_E_CONFIG);
  assert_int_equal(ordo_journal_set_policy_json(j, "v", "{\"dep_timeout\":"
                                                "1}"), ORDO_E_CONFIG);
  assert_int_equal(enq_wait(j, "X1", "s", NULL, "A", NULL), ORDO_OK);
  assert_int_equal(enq_wait(j, "X2", "s", NULL, "A", NULL), ORDO_OK);
  assert_int_equal(enq_wait(j, "X3", "t", NULL, "Z", "X2"), ORDO_OK);
  assert_int_equal(enq_wait(j, "W1", "s", NULL, "K", "T9"), ORDO_OK);
  assert_int_equal(enq_wait(j, "W2", "s", NULL, "K", NULL), ORDO_OK);
  assert_int_equal(enq_wait(j, "W3", "u", NULL, "Q", "W1"), ORDO_OK);
  assert_int_equal(take_wait(j, took, sizeof took), 1);
  assert_string_equal(took, "X1");
  /* Cancel X2 (WAITING on X1's lock): X3 cascades. */
  op = ordo_journal_cancel(j, "X2");
  assert_int_equal(ordo_op_wait(op, -1), ORDO_OK);
  assert_non_null(strstr(ordo_op_result(op), "\"reason\":\"cancelled\""));
  ordo_op_release(op);
  assert_int_equal(jstate_why(j, "X2", why, sizeof why), ORDO_QUEUE_INVALID);
  assert_string_equal(why, "cancelled");
  assert_int_equal(jstate_why(j, "X3", NULL, 0), ORDO_QUEUE_INVALID);
  op = ordo_journal_cancel(j, "X1"); /* SUBMITTED */
  assert_int_equal(ordo_op_wait(op, -1), ORDO_E_STATE);
  assert_non_null(strstr(ordo_op_message(op), "verdict will come"));
  ordo_op_release(op);
  op = ordo_journal_cancel(j, "nope");
  assert_int_equal(ordo_op_wait(op, -1), ORDO_E_NOT_FOUND);
  ordo_op_release(op);
  /* The dep timeout, from W1's enqueue time. */
  js = ordo_journal_batch_json(j, "W1");
  {
    json_t *o = json_loads(js, 0, NULL);
    t0 = (uint64_t)json_integer_value(json_object_get(o, "enqueued_ms"));
    json_decref(o);
  }
  ordo_free(js);
  assert_true(t0 > 0);
  assert_int_equal(ordo_journal_expire(j, t0 + 29999, &n), ORDO_OK);
  assert_int_equal(n, 0);
  assert_int_equal(jstate_why(j, "W1", NULL, 0), ORDO_QUEUE_WAITING);
  assert_int_equal(ordo_journal_expire(j, t0 + 30000, &n), ORDO_OK);
  assert_int_equal(n, 1);
  assert_int_equal(jstate_why(j, "W1", why, sizeof why), ORDO_QUEUE_INVALID);
  assert_string_equal(why, "dep T9 was not enqueued within 30 s");
  assert_int_equal(jstate_why(j, "W3", NULL, 0), ORDO_QUEUE_INVALID);
  assert_int_equal(jstate_why(j, "W2", NULL, 0), ORDO_QUEUE_QUEUED);
  assert_int_equal(ordo_journal_close(j), ORDO_OK);

  /* Replayed: the same states; X1 is UNKNOWN and cannot be cancelled. */
  j = jopen(ctx, ORDO_QUEUE_CONTINUOUS);
  assert_int_equal(jstate_why(j, "X2", why, sizeof why), ORDO_QUEUE_INVALID);
  assert_string_equal(why, "cancelled");
  assert_int_equal(jstate_why(j, "X3", NULL, 0), ORDO_QUEUE_INVALID);
  assert_int_equal(jstate_why(j, "W1", why, sizeof why), ORDO_QUEUE_INVALID);
  assert_string_equal(why, "dep T9 was not enqueued within 30 s");
  assert_int_equal(jstate_why(j, "W3", NULL, 0), ORDO_QUEUE_INVALID);
  assert_int_equal(jstate_why(j, "W2", NULL, 0), ORDO_QUEUE_QUEUED);
  assert_int_equal(jstate_why(j, "X1", NULL, 0), ORDO_QUEUE_UNKNOWN);
  op = ordo_journal_cancel(j, "X1");
  assert_int_equal(ordo_op_wait(op, -1), ORDO_E_STATE);
  assert_non_null(strstr(ordo_op_message(op), "UNKNOWN"));
  ordo_op_release(op);
  /* The timeout came back with the policy record: a new batch on a
   * missing dep expires without setting it again. */
  assert_int_equal(enq_wait(j, "W4", "s", NULL, "R", "T8"), ORDO_OK);
  assert_int_equal(ordo_journal_expire(j, wall_now_ms() + 3600000, &n),
                   ORDO_OK);
  assert_int_equal(n, 1);
  assert_int_equal(jstate_why(j, "W4", NULL, 0), ORDO_QUEUE_INVALID);
  assert_int_equal(ordo_journal_close(j), ORDO_OK);
  ordo_ctx_free(ctx);
}

/* Fault injection (storage.h): a journal whose writes fail answers each
 * caller with ORDO_E_STORAGE, keeps answering reads, acknowledges nothing
 * that is not on disk, and takes writes again, with no reopen, once the
 * fault clears: failed enqueues are gone, a failed take's batches are
 * QUEUED again, a verdict whose record was lost is written again. */
static void test_write_faults_recover(void **unused) {
  /* No quiet period: this caller never has enqueues in flight when it
   * retries (the pipeline case is ordo submit's, in test_e2e.sh). */
  ordo_ctx *ctx = (setenv("ORDO_JOURNAL_QUIET_MS", "0", 1), ctx_new());
  ordo_journal *j = jopen(ctx, ORDO_QUEUE_CONTINUOUS);
  ordo_queue_item items[16];
  ordo_op *ops[5], *durable = NULL;
  ordo_queue_batch_spec sp = {0};
  char took[256], spec[600], *js;
  size_t n = 0;
  (void)unused;

  assert_int_equal(enq_wait(j, "A1", "s", NULL, "a", NULL), ORDO_OK);
  snprintf(spec, sizeof spec, "sync:eio:path=%s", jpath);
  assert_int_equal(ordo_storage_fault_set_spec(spec), ORDO_OK);

  /* Every enqueue fails, each with the reason. */
  static const char *const ids[5] = {"F1", "F2", "F3", "F4", "F5"};
  for (int i = 0; i < 5; i++) {
    sp.id = ids[i];
    sp.service = "s";
    ops[i] = ordo_journal_enqueue(j, &sp);
    assert_non_null(ops[i]);
  }
  for (int i = 0; i < 5; i++) {
    assert_int_equal(ordo_op_wait(ops[i], -1), ORDO_E_STORAGE);
    assert_non_null(strstr(ordo_op_message(ops[i]), "I/O"));
    ordo_op_release(ops[i]);
  }
  /* Reads go on while the disk fails. */
  assert_int_equal(jstate(j, "A1"), ORDO_QUEUE_QUEUED);
  js = ordo_journal_totals_json(j);
  assert_non_null(js);
  free(js);
  /* The journal recovers (memory = disk), tries the next write, which
   * fails as long as the fault lasts. */
  assert_int_equal(enq_wait(j, "F6", "s", NULL, "f", NULL), ORDO_E_STORAGE);
  for (int i = 0; i < 5; i++)
    assert_int_equal(ordo_journal_batch_status(j, ids[i], NULL, NULL, NULL),
                     ORDO_E_NOT_FOUND);
  /* A take that cannot be journaled: its durable op fails. */
  assert_int_equal(ordo_journal_take(j, items, 16, &n, &durable), ORDO_OK);
  assert_int_equal(n, 1);
  assert_int_equal(ordo_op_wait(durable, -1), ORDO_E_STORAGE);
  ordo_op_release(durable);

  /* The fault clears: no reopen needed. */
  ordo_storage_fault_clear();
  assert_int_equal(enq_wait(j, "B1", "s", NULL, "b", NULL), ORDO_OK);
  assert_int_equal(jstate(j, "A1"), ORDO_QUEUE_QUEUED); /* take undone */
  assert_int_equal(take_wait(j, took, sizeof took), 2);
  assert_string_equal(took, "A1 B1");

  /* A verdict whose record is lost: applied, written again after. */
  assert_int_equal(ordo_storage_fault_set_spec(spec), ORDO_OK);
  assert_int_equal(ordo_journal_finish(j, "A1", ORDO_QUEUE_COMMITTED, NULL),
                   ORDO_OK);
  assert_int_equal(jstate(j, "A1"), ORDO_QUEUE_COMMITTED);
  /* Its record fails later; an enqueue behind it fails too (chained). */
  assert_int_equal(enq_wait(j, "F7", "s", NULL, "f", NULL), ORDO_E_STORAGE);
  ordo_storage_fault_clear();
  assert_int_equal(enq_wait(j, "C1", "s", NULL, "c", NULL), ORDO_OK);
  assert_int_equal(jstate(j, "A1"), ORDO_QUEUE_COMMITTED);
  assert_int_equal(ordo_journal_close(j), ORDO_OK);

  /* On disk: exactly what was acknowledged. */
  j = jopen(ctx, ORDO_QUEUE_CONTINUOUS);
  assert_int_equal(jstate(j, "A1"), ORDO_QUEUE_COMMITTED);
  assert_int_equal(jstate(j, "B1"), ORDO_QUEUE_UNKNOWN);
  assert_int_equal(jstate(j, "C1"), ORDO_QUEUE_QUEUED);
  assert_true(jseq(j, "B1") < jseq(j, "C1"));
  for (int i = 0; i < 5; i++)
    assert_int_equal(ordo_journal_batch_status(j, ids[i], NULL, NULL, NULL),
                     ORDO_E_NOT_FOUND);
  assert_int_equal(ordo_journal_batch_status(j, "F6", NULL, NULL, NULL),
                   ORDO_E_NOT_FOUND);
  assert_int_equal(ordo_journal_batch_status(j, "F7", NULL, NULL, NULL),
                   ORDO_E_NOT_FOUND);
  assert_int_equal(ordo_journal_close(j), ORDO_OK);
  ordo_ctx_free(ctx);
}

/* The journal_records and taken_ahead counters of the totals. */
static void jcounts(ordo_journal *j, long long *records, long long *ahead) {
  char *js = ordo_journal_totals_json(j);
  json_t *o = js != NULL ? json_loads(js, 0, NULL) : NULL;
  assert_non_null(o);
  *records = json_integer_value(json_object_get(o, "journal_records"));
  *ahead = json_integer_value(json_object_get(o, "taken_ahead"));
  json_decref(o);
  free(js);
}

/* Take ahead: after a take found nothing, an enqueue takes its ready
 * batch in its own transaction; the next take hands it out, durable with
 * the enqueue. A batch that is not ready is left QUEUED, nothing is
 * taken ahead twice before a take, the records replay as UNKNOWN, and a
 * failed write fails the take ahead with it. */
static void ahead_ready(void *ud) { ++*(int *)ud; }

static void test_take_ahead(void **unused) {
  ordo_ctx *ctx = (setenv("ORDO_JOURNAL_QUIET_MS", "0", 1), ctx_new());
  ordo_journal *j = jopen(ctx, ORDO_QUEUE_CONTINUOUS);
  ordo_queue_item items[16];
  ordo_op *durable = NULL;
  char took[256], spec[600];
  size_t n = 0;
  long long rec0, rec1, ahead;
  int nready = 0;
  (void)unused;

  assert_int_equal(ordo_journal_set_take_ahead(j, 16, ahead_ready, &nready),
                   ORDO_OK);
  /* Not armed yet: no take has found nothing. */
  assert_int_equal(enq_wait(j, "A1", "s", NULL, "a", NULL), ORDO_OK);
  assert_int_equal(jstate(j, "A1"), ORDO_QUEUE_QUEUED);
  assert_int_equal(take_wait(j, took, sizeof took), 1);
  assert_int_equal(take_wait(j, took, sizeof took), 0); /* arms it */

  jcounts(j, &rec0, &ahead);
  assert_int_equal(ahead, 0);
  assert_int_equal(enq_wait(j, "B1", "s", NULL, "b", NULL), ORDO_OK);
  /* Taken with the enqueue: SUBMITTED as soon as it is durable, two
   * records (enq, sub) written as one request. */
  assert_int_equal(jstate(j, "B1"), ORDO_QUEUE_SUBMITTED);
  jcounts(j, &rec1, &ahead);
  assert_int_equal(rec1 - rec0, 2);
  assert_int_equal(ahead, 1);
  assert_int_equal(nready, 1); /* the taker was told */
  /* A second enqueue before the take: not taken ahead (one stash). */
  assert_int_equal(enq_wait(j, "C1", "s", NULL, "c", NULL), ORDO_OK);
  assert_int_equal(jstate(j, "C1"), ORDO_QUEUE_QUEUED);
  /* A take asking for fewer than were taken ahead is refused. */
  assert_int_equal(ordo_journal_take(j, items, 0, &n, &durable),
                   ORDO_E_INVAL);
  assert_null(durable);
  assert_int_equal(take_wait(j, took, sizeof took), 1);
  assert_string_equal(took, "B1");
  assert_int_equal(take_wait(j, took, sizeof took), 1);
  assert_string_equal(took, "C1");
  assert_int_equal(take_wait(j, took, sizeof took), 0);

  /* Not ready (A1 holds "a"): enqueued, left WAITING, not taken. */
  assert_int_equal(enq_wait(j, "A2", "s", "a", "a", NULL), ORDO_OK);
  assert_int_equal(jstate(j, "A2"), ORDO_QUEUE_WAITING);
  assert_int_equal(take_wait(j, took, sizeof took), 0);
  assert_int_equal(ordo_journal_finish(j, "A1", ORDO_QUEUE_COMMITTED, NULL),
                   ORDO_OK);
  assert_int_equal(take_wait(j, took, sizeof took), 1);
  assert_string_equal(took, "A2");
  assert_int_equal(take_wait(j, took, sizeof took), 0);

  /* A failed write: the enqueue fails, and the take ahead with it. The
   * faults (ORDO_STORAGE_FAULT) are SQLite's files' alone. */
  if (!journal_on_postgres()) {
    snprintf(spec, sizeof spec, "sync:eio:path=%s", jpath);
    assert_int_equal(ordo_storage_fault_set_spec(spec), ORDO_OK);
    assert_int_equal(enq_wait(j, "F1", "s", NULL, "f", NULL), ORDO_E_STORAGE);
    n = 0;
    assert_int_equal(ordo_journal_take(j, items, 16, &n, &durable), ORDO_OK);
    if (n > 0) {
      assert_int_equal(ordo_op_wait(durable, -1), ORDO_E_STORAGE);
      ordo_op_release(durable);
    }
    ordo_storage_fault_clear();
  }
  assert_int_equal(enq_wait(j, "D1", "s", NULL, "d", NULL), ORDO_OK);
  assert_int_equal(ordo_journal_batch_status(j, "F1", NULL, NULL, NULL),
                   ORDO_E_NOT_FOUND);
  while (take_wait(j, took, sizeof took) > 0)
    ;
  assert_int_equal(jstate(j, "D1"), ORDO_QUEUE_SUBMITTED);
  assert_int_equal(ordo_journal_close(j), ORDO_OK);

  /* On disk: what was taken ahead is SUBMITTED, so UNKNOWN after a
   * reopen, like any take. */
  j = jopen(ctx, ORDO_QUEUE_CONTINUOUS);
  assert_int_equal(jstate(j, "B1"), ORDO_QUEUE_UNKNOWN);
  assert_int_equal(jstate(j, "C1"), ORDO_QUEUE_UNKNOWN);
  assert_int_equal(jstate(j, "A1"), ORDO_QUEUE_COMMITTED);
  assert_int_equal(jstate(j, "D1"), ORDO_QUEUE_UNKNOWN);
  assert_int_equal(ordo_journal_close(j), ORDO_OK);
  ordo_ctx_free(ctx);
}

/* The reason the journal has for id (the caller's copy checked here). */
static void jreason_is(ordo_journal *j, const char *id, const char *want) {
  char *why = NULL;
  assert_int_equal(ordo_journal_batch_status(j, id, NULL, NULL, &why),
                   ORDO_OK);
  assert_non_null(why);
  assert_string_equal(why, want);
  free(why);
}

/* ordo_journal_finish_many: a poll's verdicts in one call, each journaled
 * as ordo_journal_finish would; it stops at the first that fails (its
 * error, *done the ones before), and a reopen finds what it recorded. */
static void test_finish_many(void **unused) {
  ordo_ctx *ctx = ctx_new();
  ordo_journal *j = jopen(ctx, ORDO_QUEUE_CONTINUOUS);
  char took[256];
  size_t done = 99;
  (void)unused;

  assert_int_equal(enq_wait(j, "A", "s", NULL, "a", NULL), ORDO_OK);
  assert_int_equal(enq_wait(j, "B", "s", NULL, "b", NULL), ORDO_OK);
  assert_int_equal(enq_wait(j, "C", "s", NULL, "c", NULL), ORDO_OK);
  assert_int_equal(enq_wait(j, "D", "s", "a", NULL, "C"), ORDO_OK);
  assert_int_equal(take_wait(j, took, sizeof took), 3);
  {
    ordo_queue_verdict v[4] = {{"A", ORDO_QUEUE_COMMITTED, NULL},
                               {"C", ORDO_QUEUE_INVALID, "bad nonce"},
                               {"nope", ORDO_QUEUE_COMMITTED, NULL},
                               {"B", ORDO_QUEUE_COMMITTED, NULL}};
    assert_int_equal(ordo_journal_finish_many(j, v, 4, &done),
                     ORDO_E_NOT_FOUND);
    assert_int_equal(done, 2);
  }
  assert_int_equal(jstate(j, "A"), ORDO_QUEUE_COMMITTED);
  assert_int_equal(jstate(j, "C"), ORDO_QUEUE_INVALID);
  jreason_is(j, "C", "bad nonce");
  assert_int_equal(jstate(j, "B"), ORDO_QUEUE_SUBMITTED); /* not reached */
  assert_int_equal(jstate(j, "D"), ORDO_QUEUE_INVALID);   /* its dep's end */
  assert_int_equal(ordo_journal_finish_many(j, NULL, 0, &done), ORDO_OK);
  assert_int_equal(done, 0);
  assert_int_equal(ordo_journal_close(j), ORDO_OK);

  j = jopen(ctx, ORDO_QUEUE_CONTINUOUS);
  assert_int_equal(jstate(j, "A"), ORDO_QUEUE_COMMITTED);
  assert_int_equal(jstate(j, "C"), ORDO_QUEUE_INVALID);
  jreason_is(j, "C", "bad nonce");
  assert_int_equal(jstate(j, "B"), ORDO_QUEUE_UNKNOWN);
  assert_int_equal(jstate(j, "D"), ORDO_QUEUE_INVALID);
  assert_int_equal(ordo_journal_close(j), ORDO_OK);
  ordo_ctx_free(ctx);
}

/* Random write faults (ENOSPC and EIO on every kind of call) under a
 * stream of enqueues: each acknowledged batch is there after a reopen, in
 * order, and no refused one is. */
/* The state word of a batch's status JSON ("" when there is none). */
static void state_of(const char *js, char *out, size_t cap) {
  json_t *o = js != NULL ? json_loads(js, 0, NULL) : NULL;
  snprintf(out, cap, "%s",
           o != NULL && json_string_value(json_object_get(o, "state"))
               ? json_string_value(json_object_get(o, "state"))
               : "");
  json_decref(o);
}

/*
 * Write faults across checkpoints, forgotten-id segments and prunes (a
 * checkpoint every 10 records): batches go through enqueue, take and
 * verdict while 3 % of writes fail with ENOSPC and 5 % of syncs with EIO,
 * so that checkpoints, segments and prune pages fail too and the journal
 * recovers again and again. Once the faults stop, every acknowledged
 * enqueue is there and every acknowledged verdict holds, before and after
 * a reopen, nothing unacknowledged is, and the ids stay refused.
 */
static void test_faults_across_checkpoints(void **unused) {
  enum { N = 400 };
  ordo_ctx *ctx = (setenv("ORDO_JOURNAL_QUIET_MS", "0", 1), ctx_new());
  ordo_journal *j;
  static int enq_ok[N], fin_ok[N];
  static char before[N][16];
  char id[16], svc[8], wr[8], spec[1200], st[16];
  int i, tries, rc;
  (void)unused;

  memset(enq_ok, 0, sizeof enq_ok);
  memset(fin_ok, 0, sizeof fin_ok);
  jopen_ck_records = 10;
  j = jopen(ctx, ORDO_QUEUE_CONTINUOUS);
  snprintf(spec, sizeof spec,
           "write:enospc:p=0.03:seed=11:path=%s,sync+truncate:eio:p=0.05:"
           "seed=13:path=%s", jpath, jpath);
  assert_int_equal(ordo_storage_fault_set_spec(spec), ORDO_OK);
  for (i = 0; i < N; i++) {
    snprintf(id, sizeof id, "K%d", i);
    snprintf(svc, sizeof svc, "s%d", i % 4);
    snprintf(wr, sizeof wr, "w%d", i % 9);
    rc = enq_wait(j, id, svc, NULL, wr, NULL);
    assert_true(rc == ORDO_OK || rc == ORDO_E_STORAGE);
    enq_ok[i] = rc == ORDO_OK;
    if (i % 5 == 4) {
      ordo_queue_item items[64];
      ordo_op *durable = NULL;
      size_t n = 0;
      if (ordo_journal_take(j, items, 64, &n, &durable) != ORDO_OK || n == 0)
        continue;
      rc = ordo_op_wait(durable, -1);
      ordo_op_release(durable);
      if (rc != ORDO_OK)
        continue; /* QUEUED again once the journal recovers */
      for (size_t k = 0; k < n; k++) {
        int x = atoi(items[k].id + 1);
        if (ordo_journal_finish(j, items[k].id,
                                x % 11 == 0 ? ORDO_QUEUE_INVALID
                                            : ORDO_QUEUE_COMMITTED,
                                "no") == ORDO_OK)
          fin_ok[x] = 1;
      }
    }
  }
  ordo_storage_fault_clear();
  assert_true(totals_field(j, "checkpoints") > 0);
  /* The journal takes writes again once it has recovered. */
  for (tries = 0; tries < 200; tries++) {
    if (enq_wait(j, "LAST", "t", NULL, "z", NULL) == ORDO_OK)
      break;
    usleep(20000);
  }
  assert_true(tries < 200);
  for (i = 0; i < N; i++) {
    char *js;
    snprintf(id, sizeof id, "K%d", i);
    js = ordo_journal_batch_json(j, id);
    state_of(js, before[i], sizeof before[i]);
    ordo_free(js);
    if (!enq_ok[i])
      assert_string_equal(before[i], "");
    else if (fin_ok[i])
      assert_string_equal(before[i], i % 11 == 0 ? "INVALID" : "COMMITTED");
    else
      assert_true(before[i][0] != '\0');
  }
  assert_int_equal(ordo_journal_close(j), ORDO_OK);

  jopen_ck_records = 0;
  j = jopen(ctx, ORDO_QUEUE_CONTINUOUS);
  for (i = 0; i < N; i++) {
    char *js;
    snprintf(id, sizeof id, "K%d", i);
    js = ordo_journal_batch_json(j, id);
    state_of(js, st, sizeof st);
    ordo_free(js);
    if (strcmp(before[i], "SUBMITTED") == 0)
      assert_string_equal(st, "UNKNOWN");
    else
      assert_string_equal(st, before[i]);
    if (fin_ok[i])
      assert_int_equal(enq_wait(j, id, "s", NULL, "other", NULL),
                       ORDO_E_EXISTS);
  }
  assert_int_equal(ordo_journal_close(j), ORDO_OK);
  ordo_ctx_free(ctx);
}

static void test_random_faults_acked_durable(void **unused) {
  enum { N = 300 };
  ordo_ctx *ctx = (setenv("ORDO_JOURNAL_QUIET_MS", "0", 1), ctx_new());
  ordo_journal *j = jopen(ctx, ORDO_QUEUE_CONTINUOUS);
  char id[16], spec[1200];
  int ok[N], nok = 0;
  (void)unused;

  snprintf(spec, sizeof spec,
           "write:enospc:p=0.05:seed=3:path=%s,sync+truncate:eio:p=0.1:"
           "seed=5:path=%s", jpath, jpath);
  assert_int_equal(ordo_storage_fault_set_spec(spec), ORDO_OK);
  for (int i = 0; i < N; i++) {
    snprintf(id, sizeof id, "R%d", i);
    int rc = enq_wait(j, id, "s", NULL, id, NULL);
    assert_true(rc == ORDO_OK || rc == ORDO_E_STORAGE);
    ok[i] = rc == ORDO_OK;
    nok += ok[i];
  }
  ordo_storage_fault_clear();
  assert_true(nok > N / 2 && nok < N);
  assert_int_equal(ordo_journal_close(j), ORDO_OK);

  j = jopen(ctx, ORDO_QUEUE_CONTINUOUS);
  uint64_t last = 0;
  for (int i = 0; i < N; i++) {
    snprintf(id, sizeof id, "R%d", i);
    uint64_t seq = 0;
    int rc = ordo_journal_batch_status(j, id, NULL, &seq, NULL);
    assert_int_equal(rc, ok[i] ? ORDO_OK : ORDO_E_NOT_FOUND);
    if (ok[i]) {
      assert_true(seq > last);
      last = seq;
    }
  }
  assert_int_equal(ordo_journal_close(j), ORDO_OK);
  ordo_ctx_free(ctx);
}

#ifndef JOURNAL_TESTS_NO_MAIN
int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_close_after_ctx_free, setup_dir,
                                      teardown_dir),
      cmocka_unit_test_setup_teardown(test_path_too_long, setup_dir,
                                      teardown_dir),
      cmocka_unit_test_setup_teardown(test_many_unknown, setup_dir,
                                      teardown_dir),
      cmocka_unit_test_setup_teardown(test_reopen_restores, setup_dir,
                                      teardown_dir),
      cmocka_unit_test_setup_teardown(test_locking_rule_kept, setup_dir,
                                      teardown_dir),
      cmocka_unit_test_setup_teardown(test_public_json_api, setup_dir,
                                      teardown_dir),
      cmocka_unit_test_setup_teardown(test_forget_finished, setup_dir,
                                      teardown_dir),
      cmocka_unit_test_setup_teardown(test_checkpoint_prunes, setup_dir,
                                      teardown_dir),
      cmocka_unit_test_setup_teardown(test_retention_count, setup_dir,
                                      teardown_dir),
      cmocka_unit_test_setup_teardown(test_id_segments, setup_dir,
                                      teardown_dir),
      cmocka_unit_test_setup_teardown(test_retention_ledger_ids, setup_dir,
                                      teardown_dir),
      cmocka_unit_test_setup_teardown(test_checkpoint_v1, setup_dir,
                                      teardown_dir),
      cmocka_unit_test_setup_teardown(test_journal_shrink, setup_dir,
                                      teardown_dir),
      cmocka_unit_test(test_jsonw),
      cmocka_unit_test(test_idset_segments),
      cmocka_unit_test_setup_teardown(test_ledger_id_replay, setup_dir,
                                      teardown_dir),
      cmocka_unit_test_setup_teardown(test_halt_policy_replay, setup_dir,
                                      teardown_dir),
      cmocka_unit_test_setup_teardown(test_status_json_explains, setup_dir,
                                      teardown_dir),
      cmocka_unit_test_setup_teardown(test_operator_halt_durable, setup_dir,
                                      teardown_dir),
      cmocka_unit_test_setup_teardown(test_list_services, setup_dir,
                                      teardown_dir),
      cmocka_unit_test_setup_teardown(test_bad_input, setup_dir, teardown_dir),
      cmocka_unit_test_setup_teardown(test_group_commit, setup_dir,
                                      teardown_dir),
      cmocka_unit_test_setup_teardown(test_replay_random_histories, setup_dir,
                                      teardown_dir),
      cmocka_unit_test_setup_teardown(test_crash_sigkill, setup_dir,
                                      teardown_dir),
      cmocka_unit_test_setup_teardown(test_enqueue_many_atomic, setup_dir,
                                      teardown_dir),
      cmocka_unit_test_setup_teardown(test_cancel_expire_replay, setup_dir,
                                      teardown_dir),
      cmocka_unit_test_setup_teardown(test_finish_many, setup_dir,
                                      teardown_dir),
      cmocka_unit_test_setup_teardown(test_take_ahead, setup_dir,
                                      teardown_dir),
      cmocka_unit_test_setup_teardown(test_write_faults_recover, setup_dir,
                                      teardown_dir),
      cmocka_unit_test_setup_teardown(test_random_faults_acked_durable,
                                      setup_dir, teardown_dir),
      cmocka_unit_test_setup_teardown(test_faults_across_checkpoints,
                                      setup_dir, teardown_dir),
  };
  if (argc == 4 && strcmp(argv[1], "crash-child") == 0)
    return crash_child(argv[2], strtol(argv[3], NULL, 10));
  {
    ssize_t n = readlink("/proc/self/exe", self_exe, sizeof self_exe - 1);
    if (n <= 0)
      return 1;
    self_exe[n] = '\0';
  }
  return cmocka_run_group_tests(tests, NULL, NULL);
}
#endif /* JOURNAL_TESTS_NO_MAIN */

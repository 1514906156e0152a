/*
 * test_queue.c — tests of the queue module: the scheduler's conflict rule,
 * deps and the invalid cascade, policies, fairness, modes, the workload
 * parser, `ordo plan`, and a property test of thousands of random workloads
 * against a brute-force checker.
 *
 * The checker (chk_*) is written from the plain definition in DESIGN.md —
 * pairwise over submission order, no trie — so that it shares no code and
 * no shortcut with queue.c.
 */
#include "cli/cli.h" /* ordo__plan_cli */
#include "ordo.h"
#include "queue/queue.h"
#include "queue/batch_json.h"
#include "support/support.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

static ordo_queue *qmake(ordo_queue_strategy st, ordo_queue_mode mode, int g,
                         unsigned cap, unsigned scap) {
  ordo_queue_options opt;
  ordo_queue *q = NULL;
  ordo_queue_options_init(&opt);
  opt.strategy = st;
  opt.mode = mode;
  opt.granularity = g;
  opt.max_in_flight = cap;
  opt.service_max_in_flight = scap;
  assert_int_equal(ordo_queue_new(&opt, &q), ORDO_OK);
  return q;
}

static ordo_queue *qdefault(void) {
  return qmake(ORDO_QUEUE_PARALLEL, ORDO_QUEUE_CONTINUOUS, -1, 0, 0);
}

/* Split "A,B,C" (NULL or "" is none) into v (pointers into buf). */
static size_t split(const char *csv, char *buf, size_t bufsz, const char **v,
                    size_t max) {
  size_t n = 0;
  char *p, *save = NULL;
  if (csv == NULL || csv[0] == '\0')
    return 0;
  snprintf(buf, bufsz, "%s", csv);
  for (p = strtok_r(buf, ",", &save); p != NULL && n < max;
       p = strtok_r(NULL, ",", &save))
    v[n++] = p;
  return n;
}

static int enq(ordo_queue *q, const char *id, const char *svc,
               const char *reads, const char *writes, const char *deps) {
  char rb[256], wb[256], db[256];
  const char *r[16], *w[16], *d[16];
  ordo_queue_batch_spec sp = {0};
  sp.id = id;
  sp.service = svc;
  sp.reads = r;
  sp.nreads = split(reads, rb, sizeof rb, r, 16);
  sp.writes = w;
  sp.nwrites = split(writes, wb, sizeof wb, w, 16);
  sp.deps = d;
  sp.ndeps = split(deps, db, sizeof db, d, 16);
  return ordo_queue_enqueue(q, &sp, NULL);
}

#define ENQ(q, id, svc, r, w, d)                                               \
  assert_int_equal(enq((q), (id), (svc), (r), (w), (d)), ORDO_OK)

/* Take up to max and return the ids, space-separated (static buffer). */
static const char *take(ordo_queue *q, size_t max) {
  static char out[4096];
  ordo_queue_item items[64];
  size_t n, i, len = 0;
  assert_true(max <= 64);
  assert_int_equal(ordo_queue_take(q, items, max, &n), ORDO_OK);
  out[0] = '\0';
  for (i = 0; i < n; i++)
    len += (size_t)snprintf(out + len, sizeof out - len, "%s%s", i ? " " : "",
                            items[i].id);
  return out;
}

#define TAKE(q, expect) assert_string_equal(take((q), 64), (expect))

static void fin(ordo_queue *q, const char *id, int ok) {
  assert_int_equal(ordo_queue_finish(q, id,
                                     ok ? ORDO_QUEUE_COMMITTED
                                        : ORDO_QUEUE_INVALID,
                                     ok ? NULL : "rejected"),
                   ORDO_OK);
}

static ordo_queue_state state(ordo_queue *q, const char *id) {
  ordo_queue_state st;
  assert_int_equal(ordo_queue_batch_status(q, id, &st, NULL), ORDO_OK);
  return st;
}

/* Two batches of one service: is the second held while the first runs? */
static int second_waits(int g, const char *r1, const char *w1, const char *r2,
                        const char *w2) {
  ordo_queue *q = qmake(ORDO_QUEUE_PARALLEL, ORDO_QUEUE_CONTINUOUS, g, 0, 0);
  const char *got;
  int waits;
  ENQ(q, "T1", "s", r1, w1, NULL);
  ENQ(q, "T2", "s", r2, w2, NULL);
  got = take(q, 64);
  waits = strcmp(got, "T1") == 0;
  if (!waits)
    assert_string_equal(got, "T1 T2");
  else {
    assert_int_equal(state(q, "T2"), ORDO_QUEUE_WAITING);
    fin(q, "T1", 1);
    TAKE(q, "T2");
  }
  ordo_queue_free(q);
  return waits;
}

/* ------------------------------------------------------------------------ */
/* Conflicts                                                                 */
/* ------------------------------------------------------------------------ */

static void test_conflict_kinds(void **unused) {
  (void)unused;
  assert_true(second_waits(-1, "A", NULL, NULL, "A"));  /* W after R */
  assert_true(second_waits(-1, NULL, "A", NULL, "A"));  /* W after W */
  assert_true(second_waits(-1, NULL, "A", "A", NULL));  /* R after W */
  assert_false(second_waits(-1, "A", NULL, "A", NULL)); /* R after R */
  assert_false(second_waits(-1, "A", "B", "C", "D"));   /* disjoint */
  assert_true(second_waits(-1, "A,X", NULL, "Y", "X,Z")); /* one of many */
}

static void test_prefixes(void **unused) {
  (void)unused;
  assert_true(second_waits(-1, NULL, "AB", "ABC", NULL));  /* prefix held */
  assert_true(second_waits(-1, NULL, "ABC", "AB", NULL));  /* prefix asked */
  assert_true(second_waits(-1, "AB", NULL, NULL, "ABCD"));
  assert_false(second_waits(-1, NULL, "AB", "AC", NULL));  /* siblings */
  assert_false(second_waits(-1, "AB", NULL, "A", NULL));   /* R/R prefix */
  {
    /* The empty address is a prefix of every address. */
    ordo_queue *q = qdefault();
    const char *empty[] = {""}, *any[] = {"anything"};
    ordo_queue_batch_spec a = {.id = "T1", .service = "s", .writes = empty,
                               .nwrites = 1};
    ordo_queue_batch_spec b = {.id = "T2", .service = "s", .reads = any,
                               .nreads = 1};
    assert_int_equal(ordo_queue_enqueue(q, &a, NULL), ORDO_OK);
    assert_int_equal(ordo_queue_enqueue(q, &b, NULL), ORDO_OK);
    TAKE(q, "T1");
    fin(q, "T1", 1);
    TAKE(q, "T2");
    ordo_queue_free(q);
  }
}

static void test_granularity(void **unused) {
  (void)unused;
  /* Unlimited: by contents. */
  assert_false(second_waits(-1, NULL, "abcdef01", NULL, "abcdef02"));
  /* 6: by namespace, so two contracts of one type conflict. */
  assert_true(second_waits(6, NULL, "abcdef01", NULL, "abcdef02"));
  assert_false(second_waits(6, NULL, "abcdef01", NULL, "abcdff01"));
  assert_false(second_waits(6, "abcdef01", NULL, "abcdef02", NULL));
  /* 0: everything conflicts, reads too, as in the serial strategy. */
  assert_true(second_waits(0, NULL, "X", NULL, "Y"));
  assert_true(second_waits(0, "X", NULL, "Y", NULL));
}

static void test_explain_text(void **unused) {
  ordo_queue *q = qdefault();
  char *e;
  (void)unused;
  ENQ(q, "T1", "s", "B", NULL, NULL);
  ENQ(q, "T2", "s", NULL, "Z", NULL);
  ENQ(q, "T3", "s", "B", "A", NULL);
  ENQ(q, "T4", "s", "A", "B", NULL);
  e = ordo_queue_explain(q, "T4");
  assert_non_null(e);
  assert_string_equal(e, "T4 waits on A (T3 writes), B (T1, T3 read)");
  free(e);
  TAKE(q, "T1 T2 T3");
  e = ordo_queue_explain(q, "T1");
  assert_string_equal(e, "T1 is submitted");
  free(e);
  assert_null(ordo_queue_explain(q, "T9"));
  assert_int_equal(ordo_last_error(), ORDO_E_NOT_FOUND);
  ordo_queue_free(q);
}

/* "kind what [state|w|r] holders(mode) more/earlier" of v[i], for short
 * asserts (static buffer). */
static const char *blocker_str(const ordo_queue_blocker *k) {
  static char out[512];
  size_t len, i;
  len = (size_t)snprintf(out, sizeof out, "%s %s", k->kind, k->what);
  if (k->state != NULL)
    len += (size_t)snprintf(out + len, sizeof out - len, " %s", k->state);
  if (strcmp(k->kind, "address") == 0)
    len += (size_t)snprintf(out + len, sizeof out - len, " %s",
                            k->write ? "w" : "r");
  for (i = 0; i < k->nholders; i++)
    len += (size_t)snprintf(out + len, sizeof out - len, "%s%s:%s",
                            i ? "," : " [", k->holders[i].id,
                            k->holders[i].write ? "w" : "r");
  if (k->nholders)
    len += (size_t)snprintf(out + len, sizeof out - len, "]");
  if (k->more)
    len += (size_t)snprintf(out + len, sizeof out - len, " more %zu", k->more);
  if (k->earlier)
    (void)snprintf(out + len, sizeof out - len, " earlier %zu", k->earlier);
  return out;
}

/* What explain says, as data: deps, addresses with their holders and this
 * batch's mode, the serial strategy's first batch. */
static void test_blockers(void **unused) {
  ordo_queue *q = qdefault();
  ordo_queue_blocker *v;
  size_t n;
  char *e;
  (void)unused;
  ENQ(q, "T1", "s", "B", NULL, NULL);
  ENQ(q, "T2", "s", NULL, "Z", NULL);
  ENQ(q, "T3", "s", "B", "A", NULL);
  ENQ(q, "T4", "s", "A", "B", NULL);
  assert_int_equal(ordo_queue_blockers(q, "T4", &v, &n), ORDO_OK);
  assert_int_equal(n, 2);
  assert_string_equal(blocker_str(&v[0]), "address A r [T3:w]");
  assert_string_equal(blocker_str(&v[1]), "address B w [T1:r,T3:r]");
  assert_null(v[0].state);
  ordo_queue_blockers_free(v, n);
  /* Writers first, then readers, with this batch's own mode. */
  ENQ(q, "X1", "s", NULL, "X", NULL);
  ENQ(q, "X2", "s", "X", NULL, NULL);
  ENQ(q, "X3", "s", "X", NULL, NULL);
  ENQ(q, "X4", "s", NULL, "X", NULL);
  assert_int_equal(ordo_queue_blockers(q, "X4", &v, &n), ORDO_OK);
  assert_int_equal(n, 1);
  assert_string_equal(blocker_str(&v[0]), "address X w [X1:w,X2:r,X3:r]");
  ordo_queue_blockers_free(v, n);
  e = ordo_queue_explain(q, "X4");
  assert_string_equal(e, "X4 waits on X (X1 writes; X2, X3 read)");
  free(e);
  /* Deps: one enqueued (its state), one never enqueued. */
  ENQ(q, "D1", "s2", NULL, "C", "T1,later");
  assert_int_equal(ordo_queue_blockers(q, "D1", &v, &n), ORDO_OK);
  assert_int_equal(n, 2);
  assert_string_equal(blocker_str(&v[0]), "dep T1 QUEUED");
  assert_string_equal(blocker_str(&v[1]), "dep later never enqueued");
  assert_int_equal(v[0].nholders, 0);
  ordo_queue_blockers_free(v, n);
  e = ordo_queue_explain(q, "D1");
  assert_string_equal(e, "D1 waits on dep T1 (QUEUED), dep later (never "
                         "enqueued)");
  free(e);
  /* Not WAITING: nothing; unknown: not found. */
  v = (ordo_queue_blocker *)&n; /* set to NULL by the call */
  assert_int_equal(ordo_queue_blockers(q, "T1", &v, &n), ORDO_OK);
  assert_null(v);
  assert_int_equal(n, 0);
  assert_int_equal(ordo_queue_blockers(q, "nope", &v, &n), ORDO_E_NOT_FOUND);
  assert_int_equal(ordo_queue_blockers(q, NULL, &v, &n), ORDO_E_INVAL);
  ordo_queue_blockers_free(NULL, 0);
  ordo_queue_free(q);

  /* Serial: the service's first unfinished batch, and how many before. */
  q = qmake(ORDO_QUEUE_SERIAL, ORDO_QUEUE_CONTINUOUS, -1, 0, 0);
  ENQ(q, "S1", "s1", NULL, "A", NULL);
  ENQ(q, "S2", "s1", NULL, "B", NULL);
  ENQ(q, "S3", "s1", NULL, "C", "S2");
  TAKE(q, "S1");
  assert_int_equal(ordo_queue_blockers(q, "S3", &v, &n), ORDO_OK);
  assert_int_equal(n, 2);
  assert_string_equal(blocker_str(&v[0]), "dep S2 WAITING");
  assert_string_equal(blocker_str(&v[1]), "serial S1 [S1:w] earlier 2");
  ordo_queue_blockers_free(v, n);
  e = ordo_queue_explain(q, "S3");
  assert_string_equal(e, "S3 waits on dep S2 (WAITING), S1 (serial: 2 "
                         "earlier unfinished in s1)");
  free(e);
  ordo_queue_free(q);
}

/* ------------------------------------------------------------------------ */
/* Deps, cascade, policies                                                   */
/* ------------------------------------------------------------------------ */

static void test_deps(void **unused) {
  ordo_queue *q = qdefault();
  char *e;
  (void)unused;
  ENQ(q, "T1", "s1", NULL, "A", NULL);
  ENQ(q, "T2", "s2", NULL, "B", "T1"); /* deps cross services */
  ENQ(q, "T3", "s2", NULL, "C", "later");
  TAKE(q, "T1");
  e = ordo_queue_explain(q, "T3");
  assert_string_equal(e, "T3 waits on dep later (never enqueued)");
  free(e);
  fin(q, "T1", 1);
  TAKE(q, "T2");
  /* The missing dep shows up later and commits. */
  ENQ(q, "later", "s3", NULL, NULL, NULL);
  TAKE(q, "later");
  assert_int_equal(state(q, "T3"), ORDO_QUEUE_WAITING);
  fin(q, "later", 1);
  TAKE(q, "T3");
  /* A dep already committed counts as met. */
  ENQ(q, "T4", "s1", NULL, NULL, "T1,T1");
  TAKE(q, "T4");
  /* Bad deps. */
  assert_int_equal(enq(q, "T5", "s1", NULL, NULL, "T5"), ORDO_E_INVAL);
  ordo_queue_free(q);
}

static void test_invalid_cascade(void **unused) {
  ordo_queue *q = qdefault();
  const char *why;
  ordo_queue_state st;
  ordo_queue_totals t;
  (void)unused;
  ENQ(q, "T1", "s", NULL, "A", NULL);
  ENQ(q, "T2", "s", NULL, "B", "T1");
  ENQ(q, "T3", "s", NULL, "C", "T2");
  ENQ(q, "T4", "s", NULL, "B", NULL); /* waits on T2's lock only */
  ENQ(q, "T5", "s", NULL, "D", "T3,T4");
  TAKE(q, "T1");
  fin(q, "T1", 0);
  assert_int_equal(ordo_queue_batch_status(q, "T1", &st, &why), ORDO_OK);
  assert_int_equal(st, ORDO_QUEUE_INVALID);
  assert_string_equal(why, "rejected");
  assert_int_equal(ordo_queue_batch_status(q, "T2", &st, &why), ORDO_OK);
  assert_int_equal(st, ORDO_QUEUE_INVALID);
  assert_string_equal(why, "dep T1 is invalid");
  assert_int_equal(state(q, "T3"), ORDO_QUEUE_INVALID);
  assert_int_equal(state(q, "T5"), ORDO_QUEUE_INVALID);
  /* T2's lock on B went with it, so T4 runs; none of the others ever do. */
  TAKE(q, "T4");
  fin(q, "T4", 1);
  TAKE(q, "");
  /* A dep that is already invalid: invalid at enqueue. */
  ENQ(q, "T6", "s", NULL, "E", "T3");
  assert_int_equal(state(q, "T6"), ORDO_QUEUE_INVALID);
  ordo_queue_get_totals(q, &t);
  assert_int_equal(t.invalid, 5);
  assert_int_equal(t.committed, 1);
  assert_int_equal(t.in_flight + t.queued + t.waiting, 0);
  /* A finished batch cannot finish again. */
  assert_int_equal(ordo_queue_finish(q, "T4", ORDO_QUEUE_COMMITTED, NULL),
                   ORDO_E_STATE);
  assert_int_equal(ordo_queue_finish(q, "nope", ORDO_QUEUE_COMMITTED, NULL),
                   ORDO_E_NOT_FOUND);
  ordo_queue_free(q);
}

static void test_halt_and_resume(void **unused) {
  ordo_queue *q = qdefault();
  ordo_queue_service_info info;
  char *e;
  (void)unused;
  assert_int_equal(ordo_queue_set_policy(q, "s1", ORDO_QUEUE_HALT, 0, 0),
                   ORDO_OK);
  ENQ(q, "T1", "s1", NULL, "A", NULL);
  ENQ(q, "T2", "s1", NULL, "A", NULL);
  ENQ(q, "T3", "s1", NULL, "B", NULL);
  ENQ(q, "U1", "s2", NULL, "A", NULL);
  TAKE(q, "T1 T3 U1");
  fin(q, "T1", 0);
  assert_int_equal(ordo_queue_service_status(q, "s1", &info), ORDO_OK);
  assert_true(info.halted);
  assert_string_equal(info.halt_batch, "T1");
  assert_string_equal(info.halt_reason, "rejected");
  assert_int_equal(info.queued, 1); /* T2: ready, held by the halt */
  assert_int_equal(info.in_flight, 1);
  ENQ(q, "U2", "s2", NULL, "A", NULL); /* other services go on */
  fin(q, "U1", 1);
  TAKE(q, "U2");
  e = ordo_queue_explain(q, "T2");
  assert_string_equal(e, "T2 is ready; service s1 is halted (T1 invalid: "
                         "rejected)");
  free(e);
  assert_int_equal(ordo_queue_resume(q, "s1"), ORDO_OK);
  assert_int_equal(ordo_queue_resume(q, "s1"), ORDO_E_STATE);
  assert_int_equal(ordo_queue_resume(q, "zz"), ORDO_E_NOT_FOUND);
  TAKE(q, "T2");
  ordo_queue_free(q);
}

/* A halt by hand: take gives the service nothing until resume; status
 * and explain name the operator as the cause. */
static void test_operator_halt(void **unused) {
  ordo_queue *q = qdefault();
  ordo_queue_service_info info;
  char *e;
  (void)unused;
  ENQ(q, "T1", "s1", NULL, "A", NULL);
  ENQ(q, "U1", "s2", NULL, "A", NULL);
  assert_int_equal(ordo_queue_halt(q, "zz", "x"), ORDO_E_NOT_FOUND);
  assert_int_equal(ordo_queue_halt(q, NULL, "x"), ORDO_E_INVAL);
  assert_int_equal(ordo_queue_halt(q, "s1", "disk swap"), ORDO_OK);
  assert_int_equal(ordo_queue_halt(q, "s1", "again"), ORDO_E_STATE);
  TAKE(q, "U1");
  assert_int_equal(ordo_queue_take_id(q, "T1", NULL), ORDO_E_STATE);
  assert_int_equal(ordo_queue_service_status(q, "s1", &info), ORDO_OK);
  assert_true(info.halted);
  assert_null(info.halt_batch);
  assert_string_equal(info.halt_reason, "halted by the operator: disk swap");
  assert_string_equal(info.halt_note, "disk swap");
  assert_int_equal(info.queued, 1);
  e = ordo_queue_explain(q, "T1");
  assert_string_equal(e, "T1 is ready; service s1 is halted (halted by the "
                         "operator: disk swap)");
  free(e);
  assert_int_equal(ordo_queue_resume(q, "s1"), ORDO_OK);
  assert_int_equal(ordo_queue_service_status(q, "s1", &info), ORDO_OK);
  assert_false(info.halted);
  assert_null(info.halt_reason);
  assert_null(info.halt_note);
  TAKE(q, "T1");
  assert_int_equal(ordo_queue_resume(q, "s1"), ORDO_E_STATE);
  /* No reason: the cause alone. */
  assert_int_equal(ordo_queue_halt(q, "s2", NULL), ORDO_OK);
  assert_int_equal(ordo_queue_service_status(q, "s2", &info), ORDO_OK);
  assert_string_equal(info.halt_reason, "halted by the operator");
  assert_string_equal(info.halt_note, "");
  /* A service a batch halted is halted already. */
  assert_int_equal(ordo_queue_set_policy(q, "s3", ORDO_QUEUE_HALT, 0, 0),
                   ORDO_OK);
  ENQ(q, "V1", "s3", NULL, "A", NULL);
  TAKE(q, "V1");
  fin(q, "V1", 0);
  assert_int_equal(ordo_queue_halt(q, "s3", "x"), ORDO_E_STATE);
  assert_int_equal(ordo_queue_service_status(q, "s3", &info), ORDO_OK);
  assert_string_equal(info.halt_batch, "V1");
  assert_null(info.halt_note);
  ordo_queue_free(q); /* s2 still halted: its texts are freed with it */
}

static void test_skip(void **unused) {
  ordo_queue *q = qdefault();
  ordo_queue_service_info info;
  (void)unused;
  ENQ(q, "T1", "s1", NULL, "A", NULL);
  ENQ(q, "T2", "s1", "A", NULL, NULL);
  TAKE(q, "T1");
  fin(q, "T1", 0);
  TAKE(q, "T2"); /* its lock was released; the service goes on */
  assert_int_equal(ordo_queue_service_status(q, "s1", &info), ORDO_OK);
  assert_false(info.halted);
  assert_int_equal(info.invalid, 1);
  ordo_queue_free(q);
}

static void test_duplicate_and_bad_args(void **unused) {
  ordo_queue *q = qdefault();
  (void)unused;
  ordo_queue_totals tot;
  ordo_queue_service_info info;
  ENQ(q, "T1", "s1", NULL, "A", NULL);
  ENQ(q, "T0", "s1", "A", NULL, NULL); /* waits on T1's write */
  assert_int_equal(enq(q, "T1", "s2", NULL, NULL, NULL), ORDO_E_EXISTS);
  assert_non_null(strstr(ordo_last_error_message(), "T1"));
  /* Refused before anything shows: no service s2, T1 and T0 as they were,
   * and a duplicate in the same service (the late check) leaves its locks
   * and footprint nowhere. */
  ordo_queue_get_totals(q, &tot);
  assert_int_equal(tot.services, 1);
  assert_int_equal(enq(q, "T1", "s1", "A", "A,B", "T0"), ORDO_E_EXISTS);
  assert_non_null(strstr(ordo_last_error_message(), "exists"));
  assert_int_equal(ordo_queue_service_status(q, "s1", &info), ORDO_OK);
  assert_int_equal(info.depth, 2);
  assert_int_equal(state(q, "T0"), ORDO_QUEUE_WAITING);
  assert_int_equal(enq(q, "", "s2", NULL, NULL, NULL), ORDO_E_INVAL);
  assert_int_equal(enq(q, "T2", "", NULL, NULL, NULL), ORDO_E_INVAL);
  assert_int_equal(ordo_queue_batch_status(q, "T2", NULL, NULL),
                   ORDO_E_NOT_FOUND);
  TAKE(q, "T1");
  fin(q, "T1", 1);
  TAKE(q, "T0"); /* the refused duplicate's write of A holds nothing */
  ordo_queue_free(q);
}

/* A ledger id is unique: a second batch with it is refused while the
 * first is queued and after it finished, naming the first; batches
 * without one are never checked; the id is on the items. */
static void test_ledger_id_unique(void **unused) {
  static const char lid[] = "3f2a00112233445566778899aabbccddeeff";
  ordo_queue *q = qdefault();
  ordo_queue_batch_spec sp = {0};
  ordo_queue_item items[8], it;
  ordo_queue_totals tot;
  const char *w[1] = {"A"}, *id = NULL;
  size_t n, i;
  (void)unused;
  sp.service = "s1";
  sp.writes = w;
  sp.nwrites = 1;
  sp.id = "T1";
  sp.ledger_id = lid;
  assert_int_equal(ordo_queue_enqueue(q, &sp, NULL), ORDO_OK);
  assert_int_equal(ordo_queue_ledger_find(q, lid, &id), ORDO_OK);
  assert_string_equal(id, "T1");
  assert_int_equal(ordo_queue_ledger_find(q, "ffff", &id), ORDO_E_NOT_FOUND);
  /* Queued: refused, in another service too (made for nothing: none). */
  sp.id = "T2";
  sp.service = "s2";
  assert_int_equal(ordo_queue_enqueue(q, &sp, NULL), ORDO_E_EXISTS);
  assert_non_null(strstr(ordo_last_error_message(),
                         "ledger batch 3f2a001122334455\xe2\x80\xa6 is "
                         "already queued as T1"));
  ordo_queue_get_totals(q, &tot);
  assert_int_equal(tot.services, 1);
  assert_int_equal(ordo_queue_batch_status(q, "T2", NULL, NULL),
                   ORDO_E_NOT_FOUND);
  sp.ledger_id = "";
  assert_int_equal(ordo_queue_enqueue(q, &sp, NULL), ORDO_E_INVAL);
  /* No ledger id: never checked, any number of them. */
  sp.service = "s1";
  sp.ledger_id = NULL;
  for (i = 0; i < 3; i++) {
    char bid[8];
    snprintf(bid, sizeof bid, "N%zu", i);
    sp.id = bid;
    assert_int_equal(ordo_queue_enqueue(q, &sp, NULL), ORDO_OK);
  }
  assert_int_equal(ordo_queue_take(q, items, 8, &n), ORDO_OK);
  assert_int_equal(n, 1);
  assert_string_equal(items[0].id, "T1");
  assert_string_equal(items[0].ledger_id, lid);
  fin(q, "T1", 1);
  assert_int_equal(ordo_queue_take(q, items, 8, &n), ORDO_OK);
  assert_int_equal(n, 1);
  assert_string_equal(items[0].id, "N0");
  assert_null(items[0].ledger_id);
  /* Finished: still refused. */
  sp.id = "T3";
  sp.ledger_id = lid;
  assert_int_equal(ordo_queue_enqueue(q, &sp, NULL), ORDO_E_EXISTS);
  assert_non_null(strstr(ordo_last_error_message(), "queued as T1"));
  assert_int_equal(ordo_queue_item_get(q, "T1", &it), ORDO_OK);
  assert_string_equal(it.ledger_id, lid);
  /* An id and a ledger id both new: fine, and found. */
  sp.ledger_id = "77";
  assert_int_equal(ordo_queue_enqueue(q, &sp, NULL), ORDO_OK);
  assert_int_equal(ordo_queue_ledger_find(q, "77", &id), ORDO_OK);
  assert_string_equal(id, "T3");
  /* A duplicate queue id with a new ledger id leaves that ledger id free. */
  sp.ledger_id = "88";
  assert_int_equal(ordo_queue_enqueue(q, &sp, NULL), ORDO_E_EXISTS);
  assert_int_equal(ordo_queue_ledger_find(q, "88", &id), ORDO_E_NOT_FOUND);
  ordo_queue_free(q);
}

static void test_services_independent(void **unused) {
  ordo_queue *q = qdefault();
  (void)unused;
  ENQ(q, "T1", "s1", NULL, "A", NULL);
  ENQ(q, "T2", "s2", NULL, "A", NULL);
  ENQ(q, "T3", "s1", "A", NULL, NULL);
  ENQ(q, "T4", "s3", "A", "A", NULL);
  TAKE(q, "T1 T2 T4");
  ordo_queue_free(q);
}

static void test_strategies(void **unused) {
  ordo_queue *q;
  char *e;
  (void)unused;
  /* serial: one in flight per service, even for disjoint batches. */
  q = qmake(ORDO_QUEUE_SERIAL, ORDO_QUEUE_CONTINUOUS, -1, 0, 0);
  ENQ(q, "T1", "s1", NULL, "A", NULL);
  ENQ(q, "T2", "s1", NULL, "B", NULL);
  ENQ(q, "U1", "s2", NULL, "C", NULL);
  TAKE(q, "T1 U1");
  e = ordo_queue_explain(q, "T2");
  assert_string_equal(e, "T2 waits on T1 (serial: 1 earlier unfinished in s1)");
  free(e);
  fin(q, "T1", 1);
  TAKE(q, "T2");
  ordo_queue_free(q);
  /* unconstrained: conflicting batches go together; deps still count. */
  q = qmake(ORDO_QUEUE_UNCONSTRAINED, ORDO_QUEUE_CONTINUOUS, -1, 0, 0);
  ENQ(q, "T1", "s1", NULL, "A", NULL);
  ENQ(q, "T2", "s1", NULL, "A", NULL);
  ENQ(q, "T3", "s1", NULL, "A", "T1");
  TAKE(q, "T1 T2");
  ordo_queue_free(q);
}

static void test_rounds_vs_continuous(void **unused) {
  ordo_queue *q;
  (void)unused;
  q = qmake(ORDO_QUEUE_PARALLEL, ORDO_QUEUE_CONTINUOUS, -1, 0, 0);
  ENQ(q, "T1", "s", NULL, "A", NULL);
  ENQ(q, "T2", "s", NULL, "B", NULL);
  ENQ(q, "T3", "s", NULL, "A", NULL);
  TAKE(q, "T1 T2");
  fin(q, "T1", 1);
  TAKE(q, "T3"); /* at once, T2 still in flight */
  ordo_queue_free(q);

  q = qmake(ORDO_QUEUE_PARALLEL, ORDO_QUEUE_ROUNDS, -1, 0, 0);
  ENQ(q, "T1", "s", NULL, "A", NULL);
  ENQ(q, "T2", "s", NULL, "B", NULL);
  ENQ(q, "T3", "s", NULL, "A", NULL);
  TAKE(q, "T1 T2");
  fin(q, "T1", 1);
  TAKE(q, ""); /* the round is not over */
  ENQ(q, "T4", "s", NULL, "C", NULL);
  TAKE(q, "");
  fin(q, "T2", 1);
  TAKE(q, "T3 T4");
  ordo_queue_free(q);
}

/* One service with 10k batches, 50 with one each; a global cap of 8. */
static void test_fairness(void **unused) {
  ordo_queue *q = qmake(ORDO_QUEUE_PARALLEL, ORDO_QUEUE_CONTINUOUS, -1, 8, 0);
  ordo_queue_item items[8];
  char id[32], addr[32];
  size_t light = 0, calls = 0, n, i;
  (void)unused;
  for (i = 0; i < 10000; i++) {
    snprintf(id, sizeof id, "H%zu", i);
    snprintf(addr, sizeof addr, "h%zu", i % 64);
    ENQ(q, id, "heavy", NULL, addr, NULL);
  }
  for (i = 0; i < 50; i++) {
    snprintf(id, sizeof id, "L%zu", i);
    snprintf(addr, sizeof addr, "l%zu", i);
    snprintf(addr + 16, 16, "svc%zu", i);
    ENQ(q, id, addr + 16, NULL, addr, NULL);
  }
  while (light < 50) {
    assert_int_equal(ordo_queue_take(q, items, 8, &n), ORDO_OK);
    assert_true(n <= 8);
    calls++;
    for (i = 0; i < n; i++) {
      if (items[i].id[0] == 'L')
        light++;
      fin(q, items[i].id, 1);
    }
    assert_true(calls <= 8); /* 51 services, 8 a call: 7 calls suffice */
  }
  ordo_queue_free(q);

  /* A per-service cap alone also leaves room for the light ones. */
  q = qmake(ORDO_QUEUE_PARALLEL, ORDO_QUEUE_CONTINUOUS, -1, 0, 2);
  for (i = 0; i < 100; i++) {
    snprintf(id, sizeof id, "H%zu", i);
    ENQ(q, id, "heavy", NULL, NULL, NULL);
  }
  ENQ(q, "L", "light", NULL, NULL, NULL);
  assert_string_equal(take(q, 64), "H0 H1 L");
  ordo_queue_free(q);
}

/* The round-robin order itself: one batch a service a turn, halted and
 * capped services passed over without losing their place, a service whose
 * first batch becomes ready joining at the end of the round, and one whose
 * last batch went by take_id leaving it. */
static void test_round_robin_ring(void **unused) {
  ordo_queue *q = qdefault();
  (void)unused;
  ENQ(q, "A1", "a", NULL, NULL, NULL);
  ENQ(q, "A2", "a", NULL, NULL, NULL);
  ENQ(q, "A3", "a", NULL, NULL, NULL);
  ENQ(q, "B1", "b", NULL, NULL, NULL);
  ENQ(q, "B2", "b", NULL, NULL, NULL);
  ENQ(q, "C1", "c", NULL, "X", NULL);
  ENQ(q, "C2", "c", NULL, "X", NULL); /* waits on C1 */
  assert_int_equal(ordo_queue_set_policy(q, "b", ORDO_QUEUE_SKIP, 1, 0), ORDO_OK);
  /* b at its cap stays in the ring, passed over, until B1 finishes. */
  TAKE(q, "A1 A2 A3 B1 C1");
  TAKE(q, "");
  fin(q, "B1", 1);
  TAKE(q, "B2");
  ordo_queue_free(q);

  q = qdefault();
  ENQ(q, "A1", "a", NULL, NULL, NULL);
  ENQ(q, "A2", "a", NULL, NULL, NULL);
  ENQ(q, "B1", "b", NULL, NULL, NULL);
  ENQ(q, "B2", "b", NULL, NULL, NULL);
  ENQ(q, "C1", "c", NULL, "X", NULL);
  ENQ(q, "C2", "c", NULL, "X", NULL);
  /* One at a time: the ring's order. */
  assert_string_equal(take(q, 1), "A1");
  assert_string_equal(take(q, 1), "B1");
  assert_string_equal(take(q, 1), "C1");
  fin(q, "C1", 1); /* C2 ready: c is back, at the end of the round */
  ENQ(q, "D1", "d", NULL, NULL, NULL); /* d joins after c */
  assert_string_equal(take(q, 1), "A2");
  assert_string_equal(take(q, 1), "B2");
  assert_string_equal(take(q, 1), "C2");
  assert_string_equal(take(q, 1), "D1");
  assert_string_equal(take(q, 1), "");
  /* take_id of a service's last ready batch takes it out of the ring. */
  ENQ(q, "E1", "e", NULL, NULL, NULL);
  ENQ(q, "F1", "f", NULL, NULL, NULL);
  assert_int_equal(ordo_queue_take_id(q, "E1", NULL), ORDO_OK);
  assert_string_equal(take(q, 64), "F1");
  ENQ(q, "E2", "e", NULL, NULL, NULL);
  assert_string_equal(take(q, 64), "E2");
  ordo_queue_free(q);
}

/* ------------------------------------------------------------------------ */
/* Workload files and `ordo plan`                                            */
/* ------------------------------------------------------------------------ */

static int parse(const char *text, ordo_workload **w) {
  return ordo_workload_parse(text, strlen(text), w);
}

static void expect_parse_error(const char *text, int code, const char *msg) {
  ordo_workload *w = (ordo_workload *)1;
  assert_int_equal(parse(text, &w), code);
  assert_null(w);
  if (strstr(ordo_last_error_message(), msg) == NULL)
    fail_msg("message '%s' lacks '%s'", ordo_last_error_message(), msg);
}

/* held batches keep their place and locks but are not taken until
 * released; take_id takes one ready batch out of the middle of the heap;
 * explicit seqs must increase. (The journal is built on these.) */
static void test_held_take_id_seq(void **unused) {
  ordo_queue *q = qdefault();
  ordo_queue_batch_spec sp = {0};
  ordo_queue_service_info info;
  ordo_queue_item it;
  const char *w[1] = {"A"};
  uint64_t seq = 0;
  char *ex;
  (void)unused;

  sp.id = "H1";
  sp.service = "s";
  sp.writes = w;
  sp.nwrites = 1;
  sp.held = 1;
  assert_int_equal(ordo_queue_enqueue(q, &sp, &seq), ORDO_OK);
  assert_int_equal(seq, 1);
  ENQ(q, "H2", "s", "A", NULL, NULL); /* waits on the held H1 */
  ENQ(q, "H3", "s", NULL, "B", NULL);
  ENQ(q, "H4", "s", NULL, "C", NULL);
  TAKE(q, "H3 H4");
  assert_int_equal(state(q, "H1"), ORDO_QUEUE_QUEUED);
  assert_int_equal(state(q, "H2"), ORDO_QUEUE_WAITING);
  assert_int_equal(ordo_queue_service_status(q, "s", &info), ORDO_OK);
  assert_int_equal(info.queued, 1); /* the held one counts as queued */
  ex = ordo_queue_explain(q, "H1");
  assert_non_null(strstr(ex, "held"));
  free(ex);
  assert_int_equal(ordo_queue_take_id(q, "H1", NULL), ORDO_E_STATE);
  assert_int_equal(ordo_queue_release(q, "H1"), ORDO_OK);
  assert_int_equal(ordo_queue_release(q, "H1"), ORDO_E_STATE);
  assert_int_equal(ordo_queue_release(q, "nope"), ORDO_E_NOT_FOUND);
  TAKE(q, "H1");
  fin(q, "H1", 1);
  /* take_id: H6 out of the middle of three ready ones; the heap stays a
   * heap (H5, H7 come out in order). */
  ENQ(q, "H5", "t", NULL, "x", NULL);
  ENQ(q, "H6", "t", NULL, "y", NULL);
  ENQ(q, "H7", "t", NULL, "z", NULL);
  assert_int_equal(ordo_queue_take_id(q, "H6", &it), ORDO_OK);
  assert_string_equal(it.id, "H6");
  assert_string_equal(it.service, "t");
  assert_int_equal(ordo_queue_take_id(q, "H6", NULL), ORDO_E_STATE);
  TAKE(q, "H2 H5 H7");
  /* Explicit seqs: later ones only. */
  memset(&sp, 0, sizeof sp);
  sp.id = "S1";
  sp.service = "u";
  sp.seq = 100;
  assert_int_equal(ordo_queue_enqueue(q, &sp, &seq), ORDO_OK);
  assert_int_equal(seq, 100);
  sp.id = "S2";
  sp.seq = 50;
  assert_int_equal(ordo_queue_enqueue(q, &sp, &seq), ORDO_E_INVAL);
  sp.seq = 0;
  assert_int_equal(ordo_queue_enqueue(q, &sp, &seq), ORDO_OK);
  assert_int_equal(seq, 101);
  ordo_queue_free(q);
}

/* A big take (the radix sort path) hands out every ready batch exactly
 * once, in submission order, across services; seqs past 2^11 and 2^22
 * need more than one pass. */
/* A hot address: each writer waits for the one before, each reader for
 * the writer before it; readers between two writers go together. The
 * grants follow the node's queue, whatever order the ledger commits in. */
static void test_hot_address_grants(void **unused) {
  ordo_queue *q = qdefault();
  (void)unused;
  ENQ(q, "W1", "s", NULL, "H", NULL);
  ENQ(q, "R1", "s", "H", NULL, NULL);
  ENQ(q, "R2", "s", "H", NULL, NULL);
  ENQ(q, "W2", "s", NULL, "H", NULL);
  ENQ(q, "W3", "s", NULL, "H", NULL);
  ENQ(q, "R3", "s", "H", NULL, NULL);
  TAKE(q, "W1");
  fin(q, "W1", 1);
  TAKE(q, "R1 R2");
  fin(q, "R2", 1); /* out of order: W2 still waits on R1 */
  TAKE(q, "");
  fin(q, "R1", 1);
  TAKE(q, "W2");
  fin(q, "W2", 1);
  TAKE(q, "W3");
  fin(q, "W3", 1);
  TAKE(q, "R3");
  fin(q, "R3", 1);
  ordo_queue_free(q);
}

/* A waiting batch invalidated by the cascade leaves the middle of a node's
 * queue: the batches behind it wait only on what is still before them. */
static void test_cascade_from_middle(void **unused) {
  ordo_queue *q = qdefault();
  (void)unused;
  ENQ(q, "D", "t", NULL, "X", NULL);      /* another service's dep */
  ENQ(q, "A", "s", NULL, "H", NULL);      /* first writer of H */
  ENQ(q, "B", "s", NULL, "H", "D");       /* waits on A and on dep D */
  ENQ(q, "C", "s", "H", NULL, NULL);      /* reader behind A and B */
  ENQ(q, "E", "s", NULL, "H", NULL);      /* writer behind C */
  TAKE(q, "D A");
  fin(q, "D", 0); /* B becomes invalid while A still runs */
  assert_int_equal(state(q, "B"), ORDO_QUEUE_INVALID);
  assert_int_equal(state(q, "C"), ORDO_QUEUE_WAITING); /* A writes H */
  TAKE(q, "");
  fin(q, "A", 1);
  TAKE(q, "C");
  assert_int_equal(state(q, "E"), ORDO_QUEUE_WAITING);
  fin(q, "C", 1);
  TAKE(q, "E");
  fin(q, "E", 1);
  ordo_queue_free(q);
}

static void test_finish_many(void **unused) {
  ordo_queue *q = qdefault();
  ordo_queue_verdict v[4];
  size_t done = 99;
  (void)unused;
  ENQ(q, "A", "s", NULL, "X", NULL);
  ENQ(q, "B", "s", NULL, "Y", NULL);
  ENQ(q, "C", "s", "X", NULL, NULL);
  TAKE(q, "A B");
  v[0] = (ordo_queue_verdict){"A", ORDO_QUEUE_COMMITTED, NULL};
  v[1] = (ordo_queue_verdict){"B", ORDO_QUEUE_INVALID, "bad signature"};
  v[2] = (ordo_queue_verdict){"C", ORDO_QUEUE_COMMITTED, NULL}; /* QUEUED */
  v[3] = (ordo_queue_verdict){"A", ORDO_QUEUE_COMMITTED, NULL};
  /* Stops at C (not SUBMITTED) with that error; A and B are applied. */
  assert_int_equal(ordo_queue_finish_many(q, v, 4, &done), ORDO_E_STATE);
  assert_int_equal(done, 2);
  assert_int_equal(state(q, "A"), ORDO_QUEUE_COMMITTED);
  assert_int_equal(state(q, "B"), ORDO_QUEUE_INVALID);
  TAKE(q, "C");
  v[0] = (ordo_queue_verdict){"nope", ORDO_QUEUE_COMMITTED, NULL};
  assert_int_equal(ordo_queue_finish_many(q, v, 1, &done), ORDO_E_NOT_FOUND);
  assert_int_equal(done, 0);
  v[0] = (ordo_queue_verdict){NULL, ORDO_QUEUE_COMMITTED, NULL};
  assert_int_equal(ordo_queue_finish_many(q, v, 1, &done), ORDO_E_NOT_FOUND);
  v[0] = (ordo_queue_verdict){"C", ORDO_QUEUE_WAITING, NULL};
  assert_int_equal(ordo_queue_finish_many(q, v, 1, &done), ORDO_E_INVAL);
  assert_int_equal(ordo_queue_finish_many(q, NULL, 0, &done), ORDO_OK);
  assert_int_equal(ordo_queue_finish_many(q, NULL, 1, &done), ORDO_E_INVAL);
  v[0] = (ordo_queue_verdict){"C", ORDO_QUEUE_COMMITTED, NULL};
  assert_int_equal(ordo_queue_finish_many(q, v, 1, NULL), ORDO_OK);
  assert_int_equal(state(q, "C"), ORDO_QUEUE_COMMITTED);
  ordo_queue_free(q);
}

/* Batch blocks of every size class and beyond it (payloads up to 8 KiB,
 * past the pool's largest class), addresses long enough to need big
 * nodes, and a service that turns from flat into a trie mid-way: under
 * ASan this checks the pool's blocks never overlap or outlive the queue. */
static void test_pool_sizes(void **unused) {
  ordo_queue *q = qdefault();
  ordo_queue_item it;
  static char payload[8192], addr[3000], id[32];
  ordo_queue_batch_spec sp = {0};
  const char *w[1];
  size_t i;
  (void)unused;
  for (i = 0; i < sizeof payload; i++)
    payload[i] = (char)(i * 7);
  for (i = 0; i < 400; i++) {
    size_t alen = 1 + (i * 37) % (i % 50 == 49 ? sizeof addr - 1 : 90);
    memset(addr, 'a' + (int)(i % 26), alen);
    addr[alen] = '\0';
    snprintf(id, sizeof id, "P%zu", i);
    w[0] = addr;
    sp.id = id;
    sp.service = i % 2 ? "flat" : "mixed";
    sp.writes = w;
    sp.nwrites = 1;
    if (i % 2) { /* "flat" keeps one length throughout */
      memset(addr, 'f', 70);
      snprintf(addr + 62, 9, "%08zu", i);
    }
    sp.payload = payload;
    sp.payload_len = (i * 41) % sizeof payload;
    assert_int_equal(ordo_queue_enqueue(q, &sp, NULL), ORDO_OK);
  }
  for (i = 0; i < 400; i++) {
    snprintf(id, sizeof id, "P%zu", i);
    assert_int_equal(ordo_queue_item_get(q, id, &it), ORDO_OK);
    assert_int_equal(it.payload_len, (i * 41) % sizeof payload);
    assert_memory_equal(it.payload, payload, it.payload_len);
  }
  /* Drain: nodes go back to the pool and come out again for new ones. */
  for (;;) {
    ordo_queue_item items[64];
    size_t n, k;
    assert_int_equal(ordo_queue_take(q, items, 64, &n), ORDO_OK);
    if (n == 0)
      break;
    for (k = 0; k < n; k++)
      fin(q, items[k].id, 1);
  }
  /* A finished batch gives its payload back; its status stays. */
  assert_int_equal(ordo_queue_item_get(q, "P41", &it), ORDO_OK);
  assert_null(it.payload);
  assert_int_equal(it.payload_len, 0);
  assert_int_equal(state(q, "P41"), ORDO_QUEUE_COMMITTED);
  ordo_queue_free(q);
}

/* keep_payloads: finished batches keep theirs (ordo verify replays them),
 * committed or invalid, the cascade's included. */
static void test_keep_payloads(void **unused) {
  ordo_queue_options opt;
  ordo_queue *q = NULL;
  ordo_queue_item it;
  ordo_queue_batch_spec sp = {0};
  const char *deps[1] = {"K1"};
  (void)unused;
  ordo_queue_options_init(&opt);
  opt.keep_payloads = 1;
  assert_int_equal(ordo_queue_new(&opt, &q), ORDO_OK);
  sp.service = "s";
  sp.id = "K1";
  sp.payload = "one";
  sp.payload_len = 3;
  assert_int_equal(ordo_queue_enqueue(q, &sp, NULL), ORDO_OK);
  sp.id = "K2";
  sp.payload = "two!";
  sp.payload_len = 4;
  sp.deps = deps;
  sp.ndeps = 1;
  assert_int_equal(ordo_queue_enqueue(q, &sp, NULL), ORDO_OK);
  TAKE(q, "K1");
  fin(q, "K1", 0); /* K2 goes with it */
  assert_int_equal(state(q, "K2"), ORDO_QUEUE_INVALID);
  assert_int_equal(ordo_queue_item_get(q, "K1", &it), ORDO_OK);
  assert_int_equal(it.payload_len, 3);
  assert_memory_equal(it.payload, "one", 3);
  assert_int_equal(ordo_queue_item_get(q, "K2", &it), ORDO_OK);
  assert_int_equal(it.payload_len, 4);
  assert_memory_equal(it.payload, "two!", 4);
  ordo_queue_free(q);
}

static void test_big_take_in_order(void **unused) {
  enum { N = 5000 };
  ordo_queue *q = qdefault();
  ordo_queue_item *items = calloc(N, sizeof(*items));
  ordo_queue_batch_spec sp = {0};
  char id[32], svc[16];
  size_t n, i;
  (void)unused;
  assert_non_null(items);
  for (i = 0; i < N; i++) {
    snprintf(id, sizeof id, "B%zu", i);
    snprintf(svc, sizeof svc, "s%zu", i % 7);
    sp.id = id;
    sp.service = svc;
    sp.seq = i == N - 1 ? (uint64_t)1 << 23 : 0; /* one large seq */
    assert_int_equal(ordo_queue_enqueue(q, &sp, NULL), ORDO_OK);
  }
  assert_int_equal(ordo_queue_take(q, items, N, &n), ORDO_OK);
  assert_int_equal(n, N);
  for (i = 1; i < n; i++)
    assert_true(items[i - 1].seq < items[i].seq);
  assert_int_equal(items[N - 1].seq, (uint64_t)1 << 23);
  free(items);
  ordo_queue_free(q);
}

/* One batch JSON's rules (queue/batch_json.h), as every front end applies
 * them: each refusal names the field and the rule. */
static void expect_batch_json(const char *text, const char *const *extra,
                              size_t nextra, const char *dflt, int want,
                              const char *why_has) {
  json_t *o = json_loads(text, JSON_ALLOW_NUL, NULL);
  ordo_batch_json b;
  char why[300] = "";
  assert_non_null(o);
  assert_int_equal(
      ordo_batch_json_parse(o, extra, nextra, dflt, &b, why, sizeof why),
      want);
  if (want != ORDO_OK)
    assert_non_null(strstr(why, why_has));
  else
    ordo_batch_json_clear(&b);
  json_decref(o);
}

static void test_batch_json(void **unused) {
  static const char *const extra[] = {"payload", "txns"};
  char big[600], *t;
  json_t *o;
  ordo_batch_json b;
  ordo_queue_batch_spec sp = {0};
  char why[300];
  (void)unused;

  o = json_loads("{\"id\":\"T2\",\"service\":\"s\",\"reads\":[\"a\",\"b\"],"
                 "\"writes\":[\"c\"],\"deps\":[\"T1\"],\"payload\":7}",
                 0, NULL);
  assert_int_equal(ordo_batch_json_parse(o, extra, 2, NULL, &b, why,
                                         sizeof why),
                   ORDO_OK);
  ordo_batch_json_spec(&b, &sp);
  assert_string_equal(sp.id, "T2");
  assert_string_equal(sp.service, "s");
  assert_int_equal(sp.nreads, 2);
  assert_string_equal(sp.reads[1], "b");
  assert_int_equal(sp.nwrites, 1);
  assert_int_equal(sp.ndeps, 1);
  assert_int_equal(json_integer_value(b.extra[0]), 7); /* handed back */
  assert_null(b.extra[1]);
  ordo_batch_json_clear(&b);
  assert_null(b.reads);
  json_decref(o);

  expect_batch_json("{\"id\":\"T\"}", NULL, 0, "dflt", ORDO_OK, NULL);
  expect_batch_json("{\"id\":\"T\"}", NULL, 0, NULL, ORDO_E_INVAL,
                    "missing 'service'");
  expect_batch_json("[1]", NULL, 0, NULL, ORDO_E_INVAL, "JSON object");
  expect_batch_json("{\"id\":\"T\",\"service\":\"s\",\"payload\":\"x\"}", NULL,
                    0, NULL, ORDO_E_INVAL, "unknown key 'payload'");
  expect_batch_json("{\"id\":\"\",\"service\":\"s\"}", NULL, 0, NULL,
                    ORDO_E_INVAL, "'id' must be a non-empty string of at "
                    "most 256 bytes");
  expect_batch_json("{\"id\":\"a\\u0000b\",\"service\":\"s\"}", NULL, 0,
                    NULL, ORDO_E_INVAL, "'id' must be");
  expect_batch_json("{\"id\":\"T\",\"service\":\"s\",\"reads\":[\"\"]}", NULL,
                    0, NULL, ORDO_E_INVAL, "'reads'[0] must be a non-empty");
  expect_batch_json("{\"id\":\"T\",\"service\":\"s\",\"writes\":[\"a\",2]}",
                    NULL, 0, NULL, ORDO_E_INVAL,
                    "'writes' must be an array of strings");
  expect_batch_json("{\"id\":\"T\",\"service\":\"s\",\"deps\":[\"T\"]}", NULL,
                    0, NULL, ORDO_E_INVAL, "'deps' names the batch itself");
  /* Limits: a 257-byte id, a 129-byte service. */
  memset(big, 'x', sizeof big);
  t = malloc(1024);
  assert_non_null(t);
  snprintf(t, 1024, "{\"id\":\"%.257s\",\"service\":\"s\"}", big);
  expect_batch_json(t, NULL, 0, NULL, ORDO_E_INVAL, "at most 256 bytes");
  snprintf(t, 1024, "{\"id\":\"%.256s\",\"service\":\"%.129s\"}", big, big);
  expect_batch_json(t, NULL, 0, NULL, ORDO_E_INVAL, "at most 128 bytes");
  snprintf(t, 1024, "{\"id\":\"%.256s\",\"service\":\"%.128s\"}", big, big);
  expect_batch_json(t, NULL, 0, NULL, ORDO_OK, NULL);
  free(t);
}

static void test_workload_parse(void **unused) {
  ordo_workload *w = NULL;
  (void)unused;
  assert_int_equal(
      parse("{\"id\":\"T1\",\"service\":\"s1\",\"reads\":[\"B\",\"E\"],"
            "\"writes\":[\"F\"]}\n"
            "\r\n   \n"
            "{\"id\":\"T2\",\"service\":\"s1\",\"txns\":[{\"reads\":[\"D\"]},"
            "{\"writes\":[\"E\"],\"reads\":[\"X\"]}],\"deps\":[\"T1\"],"
            "\"outcome\":\"invalid\"}",
            &w),
      ORDO_OK);
  assert_int_equal(w->nbatches, 2);
  assert_string_equal(w->batches[1].id, "T2");
  assert_int_equal(w->batches[1].line, 4);
  assert_int_equal(w->batches[1].nreads, 2);
  assert_int_equal(w->batches[1].nwrites, 1);
  assert_int_equal(w->batches[1].ndeps, 1);
  assert_true(w->batches[1].invalid);
  assert_false(w->batches[0].invalid);
  ordo_workload_free(w);
  assert_int_equal(parse("", &w), ORDO_OK);
  assert_int_equal(w->nbatches, 0);
  ordo_workload_free(w);

  expect_parse_error("{\"id\":\"T1\",\"service\":\"s\"}\n{\"id\":",
                     ORDO_E_JSON, "line 2: malformed JSON");
  expect_parse_error("\n\n[1]", ORDO_E_INVAL, "line 3: a batch must be");
  expect_parse_error("{\"id\":\"T1\",\"service\":\"s\",\"writes\":[1]}",
                     ORDO_E_INVAL,
                     "line 1: 'writes' must be an array of strings");
  expect_parse_error("{\"id\":\"T1\",\"service\":\"s\",\"reads\":\"A\"}",
                     ORDO_E_INVAL, "line 1: 'reads' must be an array");
  expect_parse_error("{\"service\":\"s\"}", ORDO_E_INVAL,
                     "line 1: missing 'id'");
  expect_parse_error("{\"id\":\"T1\"}", ORDO_E_INVAL,
                     "line 1: missing 'service'");
  expect_parse_error("{\"id\":5,\"service\":\"s\"}", ORDO_E_INVAL,
                     "line 1: 'id' must be a non-empty string");
  expect_parse_error("{\"id\":\"T1\",\"service\":\"s\",\"wrtes\":[]}",
                     ORDO_E_INVAL, "line 1: unknown key 'wrtes'");
  expect_parse_error("{\"id\":\"T1\",\"service\":\"s\",\"txns\":[1]}",
                     ORDO_E_INVAL, "line 1: 'txns' must be an array of");
  expect_parse_error("{\"id\":\"T1\",\"service\":\"s\",\"outcome\":\"x\"}",
                     ORDO_E_INVAL, "line 1: 'outcome' must be");
  expect_parse_error("{\"id\":\"T1\",\"service\":\"s\"}\n"
                     "{\"id\":\"T2\",\"service\":\"s\"}\n"
                     "{\"id\":\"T1\",\"service\":\"s\"}",
                     ORDO_E_INVAL,
                     "line 3: duplicate id 'T1' (first on line 1)");
  expect_parse_error("{\"id\":\"T1\",\"service\":\"s\",\"deps\":[\"T2\"]}\n"
                     "{\"id\":\"T2\",\"service\":\"s\"}",
                     ORDO_E_INVAL, "line 1: dep 'T2' does not name");
  expect_parse_error("{\"id\":\"T1\",\"service\":\"s\",\"id\":\"T2\"}",
                     ORDO_E_JSON, "line 1: malformed JSON");
}

/* Run ordo__plan_cli on a file holding text; returns the exit code and the
 * output in *out (malloc'd). */
static int run_plan(const char *text, const char *const *args, size_t nargs,
                    char **out) {
  char path[] = "/tmp/ordo-test-plan-XXXXXX";
  char *argv[16], *errtext = NULL;
  size_t outlen = 0, errlen = 0, i;
  FILE *fo, *fe;
  int fd = mkstemp(path), rc;

  assert_true(fd >= 0);
  assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
  close(fd);
  argv[0] = "plan";
  argv[1] = path;
  for (i = 0; i < nargs; i++)
    argv[2 + i] = (char *)args[i];
  argv[2 + nargs] = NULL;
  fo = open_memstream(out, &outlen);
  fe = open_memstream(&errtext, &errlen);
  assert_non_null(fo);
  assert_non_null(fe);
  rc = ordo__plan_cli((int)(2 + nargs), argv, fo, fe);
  fclose(fo);
  fclose(fe);
  if (rc != 0 && errtext != NULL) {
    /* Errors go to err; append them so callers can look at them. */
    size_t n = strlen(*out) + strlen(errtext) + 1;
    char *both = malloc(n);
    assert_non_null(both);
    snprintf(both, n, "%s%s", *out, errtext);
    free(*out);
    *out = both;
  }
  free(errtext);
  unlink(path);
  return rc;
}

static const char plan_file[] =
    "{\"id\":\"T1\",\"service\":\"s1\",\"reads\":[\"B\",\"E\"],\"writes\":[\"F\"]}\n"
    "{\"id\":\"T2\",\"service\":\"s1\",\"reads\":[\"D\"],\"writes\":[\"E\"],"
    "\"deps\":[\"T1\"]}\n"
    "{\"id\":\"T3\",\"service\":\"s1\",\"reads\":[\"B\"],\"writes\":[\"A\"]}\n"
    "\n"
    "{\"id\":\"T4\",\"service\":\"s1\",\"reads\":[\"A\"],\"writes\":[\"B\"],"
    "\"outcome\":\"invalid\"}\n"
    "{\"id\":\"T5\",\"service\":\"s1\",\"writes\":[\"Q\"],\"deps\":[\"T4\"]}\n";

static void test_plan_cli(void **unused) {
  char *out = NULL;
  (void)unused;
  assert_int_equal(run_plan(plan_file, NULL, 0, &out), 0);
  assert_string_equal(out, "round 1: T1 T3\n"
                           "round 2: T2 T4\n"
                           "2 rounds, 3 committed, 2 invalid\n");
  free(out);
  assert_int_equal(
      run_plan(plan_file,
               (const char *const[]){"--json", "--strategy", "serial"}, 3,
               &out),
      0);
  assert_string_equal(out, "{\"rounds\":[[\"T1\"],[\"T2\"],[\"T3\"],[\"T4\"]],"
                           "\"invalid\":[\"T4\",\"T5\"]}\n");
  free(out);
  assert_int_equal(run_plan(plan_file,
                            (const char *const[]){"--explain", "--mode",
                                                  "rounds"},
                            3, &out),
                   0);
  assert_non_null(strstr(out, "round 1: T1 T3\n"
                              "  T2 waits on dep T1 (SUBMITTED), E (T1 reads)\n"
                              "  T4 waits on A (T3 writes), B (T1, T3 read)\n"));
  free(out);
  assert_int_equal(run_plan(plan_file,
                            (const char *const[]){"--strategy",
                                                  "unconstrained", "--json"},
                            3, &out),
                   0);
  assert_string_equal(out, "{\"rounds\":[[\"T1\",\"T3\",\"T4\"],[\"T2\"]],"
                           "\"invalid\":[\"T4\",\"T5\"]}\n");
  free(out);
  assert_int_equal(run_plan(plan_file,
                            (const char *const[]){"--granularity", "0",
                                                  "--json"},
                            3, &out),
                   0);
  assert_string_equal(out, "{\"rounds\":[[\"T1\"],[\"T2\"],[\"T3\"],[\"T4\"]],"
                           "\"invalid\":[\"T4\",\"T5\"]}\n");
  free(out);
  /* Bad usage and bad files: 2, with the line named. */
  assert_int_equal(run_plan(plan_file, (const char *const[]){"--mode", "x"}, 2,
                            &out),
                   2);
  free(out);
  assert_int_equal(run_plan(plan_file, (const char *const[]){"--frob"}, 1,
                            &out),
                   2);
  free(out);
  assert_int_equal(run_plan("{\"id\":\"T1\",\"service\":\"s\"}\n"
                            "{\"id\":\"T2\",\"service\":\"s\",\"writes\":[1]}\n",
                            NULL, 0, &out),
                   2);
  assert_non_null(strstr(out, "line 2: 'writes' must be an array of strings"));
  free(out);
}

/* ------------------------------------------------------------------------ */
/* Property test: random workloads against a brute-force checker             */
/* ------------------------------------------------------------------------ */

#define P_MAXB 30
#define P_MAXA 4

typedef struct chk_batch {
  char id[16];
  char svc[16];
  char addr[P_MAXA * 2][4];
  int write[P_MAXA * 2];
  int naddr;
  int deps[3];
  int ndeps;
  int invalid;
  /* 0 not taken (or not enqueued), 1 submitted, 2 committed, 3 invalid */
  int st;
} chk_batch;

typedef struct chk_run {
  chk_batch b[P_MAXB];
  int n, nenq;
  int strategy, g, rounds, caps;
} chk_run;

static uint64_t rng_state;

static uint32_t rnd(uint32_t n) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return (uint32_t)(rng_state % n);
}

/* Plain definition: cut to g, conflict if one is a prefix of the other. */
static int chk_addr_conflict(int g, const char *x, const char *y) {
  size_t lx = strlen(x), ly = strlen(y);
  if (g > 0) {
    if (lx > (size_t)g)
      lx = (size_t)g;
    if (ly > (size_t)g)
      ly = (size_t)g;
  }
  return memcmp(x, y, lx < ly ? lx : ly) == 0;
}

static int chk_conflict(const chk_run *r, const chk_batch *e,
                        const chk_batch *x) {
  int i, j;
  if (strcmp(e->svc, x->svc) != 0)
    return 0;
  if (r->strategy == ORDO_QUEUE_UNCONSTRAINED)
    return 0;
  if (r->strategy == ORDO_QUEUE_SERIAL || r->g == 0)
    return 1;
  for (i = 0; i < e->naddr; i++)
    for (j = 0; j < x->naddr; j++)
      if ((e->write[i] || x->write[j]) &&
          chk_addr_conflict(r->g, e->addr[i], x->addr[j]))
        return 1;
  return 0;
}

static int chk_unfinished(const chk_batch *b) { return b->st <= 1; }

/* Nothing earlier and unfinished conflicts, and every dep committed. */
static int chk_ready(const chk_run *r, int x) {
  int e, k;
  for (k = 0; k < r->b[x].ndeps; k++)
    if (r->b[r->b[x].deps[k]].st != 2)
      return 0;
  for (e = 0; e < x; e++)
    if (chk_unfinished(&r->b[e]) && chk_conflict(r, &r->b[e], &r->b[x]))
      return 0;
  return 1;
}

/* The checker's own cascade: deps always point earlier, so one pass. */
static void chk_cascade(chk_run *r) {
  int i, k;
  for (i = 0; i < r->nenq; i++)
    if (r->b[i].st == 0)
      for (k = 0; k < r->b[i].ndeps; k++)
        if (r->b[r->b[i].deps[k]].st == 3)
          r->b[i].st = 3;
}

static void chk_gen(chk_run *r) {
  static const char alpha[] = "abc";
  int i, k, nsvc = 1 + (int)rnd(4);
  memset(r, 0, sizeof(*r));
  /* A third of the runs use one address length throughout, or until a
   * late batch, so that the lock table's flat form (one length: exact
   * matches only) runs and then turns into the trie with holders in it. */
  int fixed = rnd(3) == 0 ? 1 + (int)rnd(3) : 0;
  int switch_at = fixed && rnd(2) ? (int)rnd(P_MAXB) : P_MAXB + 1;
  r->n = 1 + (int)rnd(P_MAXB);
  for (i = 0; i < r->n; i++) {
    chk_batch *b = &r->b[i];
    int nr = (int)rnd(P_MAXA), nw = (int)rnd(3);
    snprintf(b->id, sizeof b->id, "T%d", i);
    snprintf(b->svc, sizeof b->svc, "s%u", rnd((uint32_t)nsvc));
    for (k = 0; k < nr + nw; k++) {
      int len = (int)rnd(4), c; /* 0..3 chars; "" locks everything */
      if (len == 0 && rnd(4) != 0)
        len = 1;
      if (fixed && i < switch_at)
        len = fixed;
      for (c = 0; c < len; c++)
        b->addr[b->naddr][c] = alpha[rnd(3)];
      b->addr[b->naddr][len] = '\0';
      b->write[b->naddr] = k >= nr;
      b->naddr++;
    }
    if (i > 0 && rnd(10) < 3) {
      b->ndeps = 1 + (int)rnd(3);
      for (k = 0; k < b->ndeps; k++)
        b->deps[k] = (int)rnd((uint32_t)i);
    }
    b->invalid = rnd(10) == 0;
  }
  r->strategy = rnd(10) < 7 ? ORDO_QUEUE_PARALLEL
                            : (rnd(2) ? ORDO_QUEUE_SERIAL
                                      : ORDO_QUEUE_UNCONSTRAINED);
  r->g = (int)rnd(5) - 1; /* -1 unlimited, 0, 1, 2, 3 */
  if (r->g < 0 && rnd(2))
    r->g = -1;
  r->rounds = (int)rnd(2);
  r->caps = rnd(4) == 0;
}

static void chk_enqueue(ordo_queue *q, chk_run *r, int i) {
  chk_batch *b = &r->b[i];
  const char *rd[P_MAXA * 2], *wr[P_MAXA * 2], *dp[3];
  ordo_queue_batch_spec sp = {0};
  int k;
  sp.id = b->id;
  sp.service = b->svc;
  sp.reads = rd;
  sp.writes = wr;
  sp.deps = dp;
  for (k = 0; k < b->naddr; k++) {
    if (b->write[k])
      wr[sp.nwrites++] = b->addr[k];
    else
      rd[sp.nreads++] = b->addr[k];
  }
  for (k = 0; k < b->ndeps; k++)
    dp[sp.ndeps++] = r->b[b->deps[k]].id;
  sp.payload = &i;
  sp.payload_len = sizeof(i);
  assert_int_equal(ordo_queue_enqueue(q, &sp, NULL), ORDO_OK);
  r->nenq = i + 1;
  chk_cascade(r); /* an already invalid dep: invalid at once */
}

/* The queue's states agree with the checker's. */
static void chk_states(ordo_queue *q, const chk_run *r) {
  static const int want[] = {-1, ORDO_QUEUE_SUBMITTED, ORDO_QUEUE_COMMITTED,
                             ORDO_QUEUE_INVALID};
  int i;
  for (i = 0; i < r->nenq; i++) {
    ordo_queue_state st = state(q, r->b[i].id);
    if (r->b[i].st == 0) {
      if (st != ORDO_QUEUE_QUEUED && st != ORDO_QUEUE_WAITING)
        fail_msg("seed %llu: %s is %s, want QUEUED or WAITING",
                 (unsigned long long)rng_state, r->b[i].id,
                 ordo_queue_state_name(st));
    } else if ((int)st != want[r->b[i].st]) {
      fail_msg("%s is %s, checker says %d", r->b[i].id,
               ordo_queue_state_name(st), r->b[i].st);
    }
  }
}

/* Plan one random workload to its end, checking every step. */
static void chk_one(uint64_t seed) {
  chk_run r;
  ordo_queue *q;
  ordo_queue_item items[P_MAXB];
  int i, guard = 0;

  rng_state = seed * 0x9E3779B97F4A7C15ull + 1;
  chk_gen(&r);
  q = qmake((ordo_queue_strategy)r.strategy,
            r.rounds ? ORDO_QUEUE_ROUNDS : ORDO_QUEUE_CONTINUOUS, r.g,
            r.caps ? 1 + rnd(3) : 0, r.caps ? 1 + rnd(2) : 0);
  for (;;) {
    size_t n, k;
    int inflight = 0, fins = 0, more, start;

    assert_true(++guard < 10 * P_MAXB + 10);
    for (i = 0; i < r.nenq; i++)
      inflight += r.b[i].st == 1;
    /* Batches arrive while others run: 0..3 more each step (at least one
     * when nothing runs, so every step makes progress). */
    more = (int)rnd(4);
    if (inflight == 0 && more == 0)
      more = 1;
    for (; more > 0 && r.nenq < r.n; more--)
      chk_enqueue(q, &r, r.nenq);
    assert_int_equal(ordo_queue_take(q, items, P_MAXB, &n), ORDO_OK);
    /* Rounds: nothing new while any batch of the round is in flight. */
    if (r.rounds && inflight > 0 && n > 0)
      fail_msg("seed %llu: rounds mode took %zu while %d in flight",
               (unsigned long long)seed, n, inflight);
    for (k = 0; k < n; k++) {
      int x;
      assert_int_equal(items[k].payload_len, sizeof(int));
      memcpy(&x, items[k].payload, sizeof x);
      if (k > 0)
        assert_true(items[k].seq > items[k - 1].seq);
      /* (b) never taken twice, never with an invalid or pending dep;
       * (a) nothing earlier, unfinished and conflicting. */
      if (r.b[x].st != 0 || !chk_ready(&r, x))
        fail_msg("seed %llu: %s taken but not ready (st %d)",
                 (unsigned long long)seed, r.b[x].id, r.b[x].st);
      r.b[x].st = 1;
    }
    /* (c) maximal: whatever was ready is taken (no caps; in rounds mode
     * only when a round starts). */
    if (!r.caps && (!r.rounds || inflight == 0))
      for (i = 0; i < r.nenq; i++)
        if (r.b[i].st == 0 && chk_ready(&r, i))
          fail_msg("seed %llu: %s ready but not taken",
                   (unsigned long long)seed, r.b[i].id);
    inflight += (int)n;
    if (inflight == 0 && r.nenq == r.n)
      break;
    /* The model ledger finishes a random part of what is in flight, in
     * random order (a ledger applies a block in any order). */
    start = (int)rnd((uint32_t)r.nenq);
    if (rnd(2)) {
      /* Half the steps hand their verdicts over in one finish_many call:
       * it must end where the same finishes one by one would. */
      ordo_queue_verdict v[P_MAXB];
      size_t nv = 0, done;
      for (k = 0; k < (size_t)r.nenq; k++) {
        i = (start + (int)k) % r.nenq;
        if (r.b[i].st != 1 || (nv > 0 && rnd(2)))
          continue;
        v[nv].id = r.b[i].id;
        v[nv].outcome =
            r.b[i].invalid ? ORDO_QUEUE_INVALID : ORDO_QUEUE_COMMITTED;
        v[nv].reason = r.b[i].invalid ? "rejected" : NULL;
        nv++;
        r.b[i].st = r.b[i].invalid ? 3 : 2;
      }
      assert_int_equal(ordo_queue_finish_many(q, v, nv, &done), ORDO_OK);
      assert_int_equal(done, nv);
      fins += (int)nv;
      chk_cascade(&r);
    } else {
      for (k = 0; k < (size_t)r.nenq; k++) {
        i = (start + (int)k) % r.nenq;
        if (r.b[i].st != 1 || (fins > 0 && rnd(2)))
          continue;
        fin(q, r.b[i].id, !r.b[i].invalid);
        r.b[i].st = r.b[i].invalid ? 3 : 2;
        fins++;
        chk_cascade(&r);
      }
    }
    chk_states(q, &r);
  }
  /* (b) everything finished, and the cascade is exactly the checker's. */
  for (i = 0; i < r.n; i++)
    assert_true(r.b[i].st == 2 || r.b[i].st == 3);
  chk_states(q, &r);
  ordo_queue_free(q);
}

/* ORDO_PROPERTY_RUNS and ORDO_PROPERTY_FIRST (seeds) run more or other
 * workloads than the 20 000 of `make test`, for a longer search by hand. */
static void test_property_random_workloads(void **unused) {
  struct timespec t0, t1;
  const char *env_runs = getenv("ORDO_PROPERTY_RUNS");
  const char *env_first = getenv("ORDO_PROPERTY_FIRST");
  const uint64_t runs = env_runs != NULL ? strtoull(env_runs, NULL, 10) : 20000;
  const uint64_t first =
      env_first != NULL ? strtoull(env_first, NULL, 10) : 1;
  uint64_t s;
  (void)unused;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (s = first; s < first + runs; s++)
    chk_one(s);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  print_message("property: %llu random workloads checked in %.2f s\n",
                (unsigned long long)runs,
                (double)(t1.tv_sec - t0.tv_sec) +
                    (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
}

/* ------------------------------------------------------------------------ */
/* Cancel, dep timeouts, enqueue of many                                     */
/* ------------------------------------------------------------------------ */

/* A batch with a time (and deps), for the dep timeout heap. */
static int enq_at(ordo_queue *q, const char *id, const char *svc,
                  const char *writes, const char *deps, uint64_t t) {
  char wb[256], db[256];
  const char *w[16], *d[16];
  ordo_queue_batch_spec sp = {0};
  sp.id = id;
  sp.service = svc;
  sp.writes = w;
  sp.nwrites = split(writes, wb, sizeof wb, w, 16);
  sp.deps = d;
  sp.ndeps = split(deps, db, sizeof db, d, 16);
  sp.time_ms = t;
  return ordo_queue_enqueue(q, &sp, NULL);
}

/* ordo_queue_forget: finished batches go, unless something still names
 * them (an unfinished batch's waiters or dependants, a halt); their heap
 * entries go with them; a queue that held many and forgot them gives the
 * memory back. Under ASan a dangling pointer left anywhere is a failure. */
static void test_forget(void **unused) {
  (void)unused;
  /* A trie (addresses of two lengths): blocker edges are kept in waiters. */
  ordo_queue *q = qdefault();
  const char *ids[8];
  unsigned char kept[8];
  size_t nf;
  ordo_queue_totals t;

  ENQ(q, "A", "s", NULL, "ab", NULL);
  ENQ(q, "B", "s", NULL, "abc", NULL); /* waits on A (an edge) */
  ENQ(q, "C", "s", NULL, "x", "A");    /* a dependant of A */
  ENQ(q, "D", "s", NULL, "y", NULL);
  assert_int_equal(ordo_queue_cancel(q, "B", NULL), ORDO_OK);
  assert_int_equal(ordo_queue_cancel(q, "C", NULL), ORDO_OK);
  ids[0] = "B";
  ids[1] = "C";
  ids[2] = "A"; /* unfinished */
  ids[3] = "nope";
  ordo_queue_forget(q, ids, 4, kept, &nf);
  assert_int_equal(nf, 0);
  assert_int_equal(kept[0], 1); /* A's waiters name it */
  assert_int_equal(kept[1], 1); /* A's dependants name it */
  assert_int_equal(kept[2], 1);
  assert_int_equal(kept[3], 0);
  TAKE(q, "A D");
  fin(q, "A", 1);
  fin(q, "D", 1);
  ids[2] = "D";
  ordo_queue_forget(q, ids, 3, kept, &nf);
  assert_int_equal(nf, 3);
  assert_int_equal(ordo_queue_batch_status(q, "B", NULL, NULL),
                   ORDO_E_NOT_FOUND);
  assert_int_equal(ordo_queue_batch_status(q, "A", NULL, NULL), ORDO_OK);
  ordo_queue_get_totals(q, &t);
  assert_int_equal(t.committed, 2);
  assert_int_equal(t.invalid, 2);
  /* A QUEUED batch cancelled keeps a stale heap entry; take_id too. */
  ENQ(q, "E", "s", NULL, "e", NULL);
  ENQ(q, "F", "s", NULL, "f", NULL);
  assert_int_equal(ordo_queue_cancel(q, "E", NULL), ORDO_OK);
  assert_int_equal(ordo_queue_take_id(q, "F", NULL), ORDO_OK);
  fin(q, "F", 0);
  ids[0] = "E";
  ids[1] = "F";
  ids[2] = "A";
  ordo_queue_forget(q, ids, 3, kept, &nf);
  assert_int_equal(nf, 3); /* A too: nothing names it any more */
  ENQ(q, "G", "s", NULL, "g", NULL);
  TAKE(q, "G");
  /* The batch that halted its service stays until the resume. */
  assert_int_equal(ordo_queue_set_policy(q, "h", ORDO_QUEUE_HALT, 0, 0),
                   ORDO_OK);
  ENQ(q, "H", "h", NULL, "h", NULL);
  TAKE(q, "H");
  fin(q, "H", 0);
  ids[0] = "H";
  ordo_queue_forget(q, ids, 1, kept, &nf);
  assert_int_equal(nf, 0);
  assert_int_equal(ordo_queue_resume(q, "h"), ORDO_OK);
  ordo_queue_forget(q, ids, 1, kept, &nf);
  assert_int_equal(nf, 1);
  ordo_queue_free(q);

  /* 100k batches in, finished, forgotten: the tables and the pool shrink. */
  q = qdefault();
  {
    enum { N = 100000 };
    char (*names)[16] = malloc(N * sizeof(*names));
    const char **all = malloc(N * sizeof(*all));
    size_t full, i;
    assert_non_null(names);
    assert_non_null(all);
    for (i = 0; i < N; i++) {
      snprintf(names[i], sizeof names[i], "b%zu", i);
      all[i] = names[i];
      ENQ(q, names[i], i % 2 ? "s1" : "s2", NULL, names[i], NULL);
    }
    ordo_queue_get_totals(q, &t);
    full = t.memory_bytes;
    for (;;) {
      ordo_queue_item items[64];
      size_t n;
      assert_int_equal(ordo_queue_take(q, items, 64, &n), ORDO_OK);
      if (n == 0)
        break;
      for (i = 0; i < n; i++)
        assert_int_equal(ordo_queue_finish(q, items[i].id,
                                           ORDO_QUEUE_COMMITTED, NULL),
                         ORDO_OK);
    }
    ordo_queue_forget(q, all, N, NULL, &nf);
    assert_int_equal(nf, N);
    ordo_queue_get_totals(q, &t);
    assert_int_equal(t.committed, N);
    assert_true(t.memory_bytes * 8 < full);
    /* And it works on: a new batch, taken and finished. */
    ENQ(q, "again", "s1", NULL, "b7", NULL);
    TAKE(q, "again");
    fin(q, "again", 1);
    free(names);
    free(all);
  }
  ordo_queue_free(q);
}

/* Idle services leave memory: only those with nothing in memory, the
 * default policy and no enqueue since the time given; the totals stay. */
static void test_drop_idle_services(void **unused) {
  (void)unused;
  ordo_queue *q = qdefault();
  const char *ids[2] = {"A", "B"};
  ordo_queue_service_info si;
  ordo_queue_totals t;
  size_t nf;

  assert_int_equal(enq_at(q, "A", "a", "x", NULL, 100), ORDO_OK);
  assert_int_equal(enq_at(q, "B", "b", "y", NULL, 200), ORDO_OK);
  assert_int_equal(enq_at(q, "C", "c", "z", NULL, 100), ORDO_OK);
  assert_int_equal(ordo_queue_set_policy(q, "p", ORDO_QUEUE_HALT, 0, 0),
                   ORDO_OK);
  TAKE(q, "A B C");
  fin(q, "A", 1);
  fin(q, "B", 1);
  /* A is finished but still in memory: its service stays. */
  assert_int_equal(ordo_queue_drop_idle_services(q, 1000), 0);
  ordo_queue_forget(q, ids, 2, NULL, &nf);
  assert_int_equal(nf, 2);
  /* a: empty, idle since 100; b: empty, idle since 200; c: C in flight;
   * p: a policy. Before 150: a goes. */
  assert_int_equal(ordo_queue_drop_idle_services(q, 150), 1);
  assert_int_equal(ordo_queue_service_status(q, "a", &si), ORDO_E_NOT_FOUND);
  assert_int_equal(ordo_queue_service_status(q, "b", &si), ORDO_OK);
  ordo_queue_service_touch(q, "b", 5000);
  assert_int_equal(ordo_queue_drop_idle_services(q, 1000), 0);
  assert_int_equal(ordo_queue_drop_idle_services(q, 6000), 1);
  assert_int_equal(ordo_queue_service_status(q, "c", &si), ORDO_OK);
  assert_int_equal(ordo_queue_service_status(q, "p", &si), ORDO_OK);
  ordo_queue_get_totals(q, &t);
  assert_int_equal(t.committed, 2);
  assert_int_equal(t.services, 2);
  /* A service comes back anew. */
  assert_int_equal(enq_at(q, "D", "a", "x", NULL, 7000), ORDO_OK);
  TAKE(q, "D");
  assert_int_equal(ordo_queue_service_status(q, "a", &si), ORDO_OK);
  assert_int_equal(si.committed, 0);
  ordo_queue_free(q);
}

/* Cancel a WAITING batch: INVALID "cancelled", its locks gone (the batch
 * behind it is ready), its dependant cascades; a QUEUED one leaves the
 * ready set (take never hands it out); SUBMITTED and finished ones are
 * refused; a halt policy is not applied; every mode of the lock table. */
static void test_cancel(void **unused) {
  for (int serial = 0; serial < 2; serial++) {
    ordo_queue *q = qmake(serial ? ORDO_QUEUE_SERIAL : ORDO_QUEUE_PARALLEL,
                          ORDO_QUEUE_CONTINUOUS, -1, 0, 0);
    ordo_queue_service_info in;
    const char *why = NULL;
    ordo_queue_state st;
    (void)unused;
    assert_int_equal(ordo_queue_set_policy(q, "s", ORDO_QUEUE_HALT, 0, 0),
                     ORDO_OK);
    ENQ(q, "T1", "s", NULL, "A", NULL);
    ENQ(q, "T2", "s", NULL, "A", NULL);   /* waits on T1's lock */
    ENQ(q, "T3", "s", NULL, "A", NULL);   /* waits on T2's */
    ENQ(q, "T4", "t", NULL, "Z", "T2");   /* dependant of T2 */
    ENQ(q, "T5", "t", NULL, "Y", NULL);   /* QUEUED */
    assert_int_equal(state(q, "T2"), ORDO_QUEUE_WAITING);
    assert_int_equal(ordo_queue_cancel(q, "T2", NULL), ORDO_OK);
    assert_int_equal(ordo_queue_batch_status(q, "T2", &st, &why), ORDO_OK);
    assert_int_equal(st, ORDO_QUEUE_INVALID);
    assert_string_equal(why, "cancelled");
    assert_int_equal(state(q, "T4"), ORDO_QUEUE_INVALID);
    assert_int_equal(ordo_queue_cancel(q, "T5", "operator"), ORDO_OK);
    assert_int_equal(ordo_queue_batch_status(q, "T5", &st, &why), ORDO_OK);
    assert_string_equal(why, "operator");
    assert_int_equal(ordo_queue_service_status(q, "s", &in), ORDO_OK);
    assert_false(in.halted);
    assert_int_equal(in.invalid, 1);
    assert_int_equal(in.waiting, 1);
    TAKE(q, "T1");
    assert_int_equal(ordo_queue_cancel(q, "T1", NULL), ORDO_E_STATE);
    assert_non_null(strstr(ordo_last_error_message(), "SUBMITTED"));
    fin(q, "T1", 1);
    TAKE(q, "T3"); /* T2's lock went with it */
    assert_int_equal(ordo_queue_cancel(q, "T1", NULL), ORDO_E_STATE);
    assert_non_null(strstr(ordo_last_error_message(), "already COMMITTED"));
    assert_int_equal(ordo_queue_cancel(q, "T2", NULL), ORDO_E_STATE);
    assert_int_equal(ordo_queue_cancel(q, "T9", NULL), ORDO_E_NOT_FOUND);
    fin(q, "T3", 1);
    TAKE(q, "");
    assert_int_equal(ordo_queue_service_status(q, "t", &in), ORDO_OK);
    assert_int_equal(in.depth, 0);
    assert_int_equal(in.invalid, 2);
    ordo_queue_free(q);
  }
  {
    /* A held QUEUED batch (the journal's, not yet durable). */
    ordo_queue *q = qdefault();
    ordo_queue_batch_spec sp = {.id = "H", .service = "s", .held = 1};
    ordo_queue_totals t;
    assert_int_equal(ordo_queue_enqueue(q, &sp, NULL), ORDO_OK);
    assert_int_equal(ordo_queue_cancel(q, "H", NULL), ORDO_OK);
    ordo_queue_get_totals(q, &t);
    assert_int_equal(t.queued, 0);
    assert_int_equal(t.invalid, 1);
    assert_int_equal(ordo_queue_release(q, "H"), ORDO_OK); /* a no-op now */
    TAKE(q, "");
    ordo_queue_free(q);
  }
}

/* A dep never enqueued: with the service's dep_timeout_ms, the batch ends
 * INVALID naming the dep at enqueue time + timeout (explicit clocks), its
 * dependant cascades and its lock goes; a dep enqueued in time saves it; a
 * timeout set after the enqueue still covers it; no time, no expiry. */
static void test_dep_timeout(void **unused) {
  ordo_queue *q = qdefault();
  ordo_queue_verdict v[8];
  const char *why = NULL;
  ordo_queue_state st;
  uint64_t due = 0;
  size_t n;
  (void)unused;
  assert_int_equal(ordo_queue_set_policy(q, "s", ORDO_QUEUE_SKIP, 0, 30000),
                   ORDO_OK);
  assert_int_equal(enq_at(q, "A", "s", "K", "T9", 1000), ORDO_OK);
  assert_int_equal(enq_at(q, "B", "s", NULL, "A", 2000), ORDO_OK);
  assert_int_equal(enq_at(q, "C", "s", "K", NULL, 2000), ORDO_OK);
  assert_int_equal(enq_at(q, "D", "s", NULL, "E", 3000), ORDO_OK);
  assert_int_equal(enq_at(q, "E", "s", NULL, NULL, 5000), ORDO_OK);
  assert_int_equal(enq_at(q, "F", "u", NULL, "T8", 1000), ORDO_OK);
  assert_int_equal(enq_at(q, "G", "s", NULL, "T7", 0), ORDO_OK); /* no time */
  assert_int_equal(ordo_queue_next_expiry(q, &due), 1);
  assert_int_equal(due, 31000);
  assert_int_equal(ordo_queue_expire(q, 30999, v, 8, &n), ORDO_OK);
  assert_int_equal(n, 0);
  assert_int_equal(state(q, "C"), ORDO_QUEUE_WAITING);
  assert_int_equal(ordo_queue_expire(q, 31000, v, 8, &n), ORDO_OK);
  assert_int_equal(n, 1);
  assert_string_equal(v[0].id, "A");
  assert_string_equal(v[0].reason, "dep T9 was not enqueued within 30 s");
  assert_int_equal(ordo_queue_batch_status(q, "A", &st, &why), ORDO_OK);
  assert_int_equal(st, ORDO_QUEUE_INVALID);
  assert_string_equal(why, "dep T9 was not enqueued within 30 s");
  assert_int_equal(state(q, "B"), ORDO_QUEUE_INVALID); /* cascade */
  assert_int_equal(state(q, "C"), ORDO_QUEUE_QUEUED);  /* A's lock went */
  /* D's dep E came in time: never expired; E itself is ready. */
  assert_int_equal(ordo_queue_expire(q, 100000, v, 8, &n), ORDO_OK);
  assert_int_equal(n, 0);
  assert_int_equal(state(q, "D"), ORDO_QUEUE_WAITING);
  /* u had no timeout; setting one now covers F, enqueued before. */
  assert_int_equal(state(q, "F"), ORDO_QUEUE_WAITING);
  assert_int_equal(ordo_queue_set_policy(q, "u", ORDO_QUEUE_SKIP, 0, 1500),
                   ORDO_OK);
  assert_int_equal(ordo_queue_expire(q, 100000, v, 8, &n), ORDO_OK);
  assert_int_equal(n, 1);
  assert_string_equal(v[0].id, "F");
  assert_string_equal(v[0].reason, "dep T8 was not enqueued within 1.5 s");
  assert_int_equal(state(q, "G"), ORDO_QUEUE_WAITING);
  assert_int_equal(ordo_queue_next_expiry(q, NULL), 0);
  /* The replay's call: the same end for one batch, by id. */
  assert_int_equal(enq_at(q, "H", "s", NULL, "T6", 200000), ORDO_OK);
  assert_int_equal(ordo_queue_expire_id(q, "H", "dep T6 was not enqueued "
                                        "within 30 s"), ORDO_OK);
  assert_int_equal(state(q, "H"), ORDO_QUEUE_INVALID);
  assert_int_equal(ordo_queue_expire_id(q, "H", "x"), ORDO_E_STATE);
  {
    ordo_queue_service_policy pol;
    assert_int_equal(ordo_queue_get_policy(q, "s", &pol), ORDO_OK);
    assert_int_equal(pol.dep_timeout_ms, 30000);
  }
  ordo_queue_free(q);

  /* Many waiting on missing deps whose deps then come: the heap's dead
   * entries are dropped as it grows, and none expires. */
  q = qdefault();
  for (int i = 0; i < 500; i++) {
    char id[32], dep[32];
    snprintf(id, sizeof id, "W%d", i);
    snprintf(dep, sizeof dep, "P%d", i);
    assert_int_equal(enq_at(q, id, "s", NULL, dep, 1000 + (uint64_t)i),
                     ORDO_OK);
    assert_int_equal(enq_at(q, dep, "s", NULL, NULL, 1000), ORDO_OK);
    TAKE(q, dep);
    fin(q, dep, 1);
    TAKE(q, id);
    fin(q, id, 1);
  }
  assert_int_equal(ordo_queue_set_policy(q, "s", ORDO_QUEUE_SKIP, 0, 1), ORDO_OK);
  assert_int_equal(ordo_queue_expire(q, 1u << 30, v, 8, &n), ORDO_OK);
  assert_int_equal(n, 0);
  ordo_queue_free(q);
}

/* All or nothing: a refused spec (an id repeated in the list, an id or a
 * ledger id the queue has, a bad spec) leaves the queue as it was and
 * names the spec; else every spec is in, in order. Digests are kept. */
static void test_enqueue_many(void **unused) {
  ordo_queue *q = qdefault();
  static const unsigned char dg[ORDO_QUEUE_DIGEST_BYTES] = {1, 2, 3};
  const char *wa[] = {"A"}, *deps[] = {"M3"};
  ordo_queue_batch_spec sp[4];
  const unsigned char *d = NULL;
  ordo_queue_totals t;
  uint64_t seqs[4];
  size_t bad = 99;
  (void)unused;
  memset(sp, 0, sizeof sp);
  for (int i = 0; i < 4; i++) {
    static const char *ids[] = {"M1", "M2", "M3", "M4"};
    sp[i].id = ids[i];
    sp[i].service = "s";
    sp[i].writes = wa;
    sp[i].nwrites = 1;
  }
  sp[0].deps = deps; /* a dep on a later one of the list */
  sp[0].ndeps = 1;
  sp[1].digest = dg;
  ENQ(q, "OLD", "s", NULL, "B", NULL);
  sp[2].id = "M1";
  assert_int_equal(ordo_queue_enqueue_many(q, sp, 4, seqs, &bad),
                   ORDO_E_EXISTS);
  assert_int_equal(bad, 2);
  assert_non_null(strstr(ordo_last_error_message(), "repeats item 0"));
  sp[2].id = "OLD";
  assert_int_equal(ordo_queue_enqueue_many(q, sp, 4, seqs, &bad),
                   ORDO_E_EXISTS);
  assert_int_equal(bad, 2);
  sp[2].id = "M3";
  sp[1].ledger_id = "L1";
  sp[3].ledger_id = "L1";
  assert_int_equal(ordo_queue_enqueue_many(q, sp, 4, seqs, &bad),
                   ORDO_E_EXISTS);
  assert_int_equal(bad, 3);
  sp[3].ledger_id = NULL;
  sp[3].service = "";
  assert_int_equal(ordo_queue_enqueue_many(q, sp, 4, seqs, &bad),
                   ORDO_E_INVAL);
  assert_int_equal(bad, 3);
  ordo_queue_get_totals(q, &t);
  assert_int_equal(t.queued + t.waiting, 1); /* OLD alone */
  assert_int_equal(ordo_queue_batch_status(q, "M1", NULL, NULL),
                   ORDO_E_NOT_FOUND);
  sp[3].service = "s";
  assert_int_equal(ordo_queue_enqueue_many(q, sp, 4, seqs, &bad), ORDO_OK);
  assert_int_equal(seqs[0], 2);
  assert_int_equal(seqs[3], 5);
  assert_int_equal(state(q, "M1"), ORDO_QUEUE_WAITING);
  assert_int_equal(ordo_queue_batch_digest(q, "M2", &d), ORDO_OK);
  assert_memory_equal(d, dg, sizeof dg);
  assert_int_equal(ordo_queue_batch_digest(q, "M3", &d), ORDO_OK);
  assert_null(d);
  assert_int_equal(ordo_queue_batch_digest(q, "T9", &d), ORDO_E_NOT_FOUND);
  TAKE(q, "OLD"); /* M1 waits on M3 (its dep), M2.. on M1's lock */
  ordo_queue_free(q);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_conflict_kinds),
      cmocka_unit_test(test_prefixes),
      cmocka_unit_test(test_hot_address_grants),
      cmocka_unit_test(test_cascade_from_middle),
      cmocka_unit_test(test_finish_many),
      cmocka_unit_test(test_pool_sizes),
      cmocka_unit_test(test_round_robin_ring),
      cmocka_unit_test(test_keep_payloads),
      cmocka_unit_test(test_forget),
      cmocka_unit_test(test_drop_idle_services),
      cmocka_unit_test(test_granularity),
      cmocka_unit_test(test_explain_text),
      cmocka_unit_test(test_blockers),
      cmocka_unit_test(test_deps),
      cmocka_unit_test(test_invalid_cascade),
      cmocka_unit_test(test_halt_and_resume),
      cmocka_unit_test(test_operator_halt),
      cmocka_unit_test(test_skip),
      cmocka_unit_test(test_duplicate_and_bad_args),
      cmocka_unit_test(test_ledger_id_unique),
      cmocka_unit_test(test_services_independent),
      cmocka_unit_test(test_strategies),
      cmocka_unit_test(test_rounds_vs_continuous),
      cmocka_unit_test(test_fairness),
      cmocka_unit_test(test_held_take_id_seq),
      cmocka_unit_test(test_big_take_in_order),
      cmocka_unit_test(test_batch_json),
      cmocka_unit_test(test_workload_parse),
      cmocka_unit_test(test_plan_cli),
      cmocka_unit_test(test_property_random_workloads),
      cmocka_unit_test(test_cancel),
      cmocka_unit_test(test_dep_timeout),
      cmocka_unit_test(test_enqueue_many),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

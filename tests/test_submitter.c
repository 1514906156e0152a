/*
 * test_submitter.c — the queue module's submitter (src/queue/submitter.c)
 * against a model ledger behind the ledger port: the ledger applies each
 * block's batches in a random order, loses its pending queue now and then,
 * and fails calls; a restart of the client in the middle. The model checks
 * what the design promises: every conflicting pair of a service committed
 * in submission order, every batch finished, none lost, and an INVALID
 * batch never sent again.
 */
#include "ordo.h"
#include "queue/queue.h"
#include "runtime/runtime.h"
#include "support/support.h"

#include <jansson.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* cmocka.h needs these first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#define W_MAX 400

/* A workload batch, and what the model ledger knows of it. */
typedef struct wb {
  char id[16], svc[8];
  char rd[2][4], wr[2][4];
  int nrd, nwr;
  int dep; /* index of a dep, or -1 */
  int invalid;
  /* ledger side: 0 never seen, 1 pending, 2 committed, 3 invalid */
  int ls;
  int block; /* block it was applied in */
  int sends, sends_after_invalid;
} wb;

typedef struct model {
  ordo_ctx *ctx;
  pthread_mutex_t mu;
  wb b[W_MAX];
  int n;
  int blocks;
  unsigned seed;
  int lose_every;   /* lose the pending queue every k-th block (0: never) */
  int fail_percent; /* share of port calls that fail */
  int violations;
  int strategy_unconstrained;
} model;

static int conflict(const wb *x, const wb *y) {
  if (strcmp(x->svc, y->svc) != 0)
    return 0;
  for (int i = 0; i < x->nwr; i++) {
    for (int j = 0; j < y->nrd; j++)
      if (strcmp(x->wr[i], y->rd[j]) == 0)
        return 1;
    for (int j = 0; j < y->nwr; j++)
      if (strcmp(x->wr[i], y->wr[j]) == 0)
        return 1;
  }
  for (int i = 0; i < x->nrd; i++)
    for (int j = 0; j < y->nwr; j++)
      if (strcmp(x->rd[i], y->wr[j]) == 0)
        return 1;
  return 0;
}

/* Finished for good without a commit: invalid, or a dep of it is (the
 * client's cascade never sends such a batch). */
static int dead(const model *m, int e) {
  for (; e >= 0; e = m->b[e].dep)
    if (m->b[e].ls == 3)
      return 1;
  return 0;
}

/* Cut a block: apply every pending batch in a random order. A batch
 * applied while an earlier conflicting batch of its service is not yet
 * committed in an EARLIER block is an order violation. Under m->mu. */
static void model_block(model *m) {
  int order[W_MAX], k = 0;
  m->blocks++;
  if (m->lose_every > 0 && m->blocks % m->lose_every == 0) {
    for (int i = 0; i < m->n; i++)
      if (m->b[i].ls == 1)
        m->b[i].ls = 0; /* the node restarted: pending is gone */
    return;
  }
  for (int i = 0; i < m->n; i++)
    if (m->b[i].ls == 1)
      order[k++] = i;
  for (int i = k - 1; i > 0; i--) {
    int j = (int)((unsigned)rand_r(&m->seed) % (unsigned)(i + 1)), t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  for (int t = 0; t < k; t++) {
    wb *x = &m->b[order[t]];
    /* Sent before its dep committed: the client broke the dep rule. */
    if (x->dep >= 0 && m->b[x->dep].ls != 2)
      m->violations++;
    if (!x->invalid)
      for (int e = 0; e < order[t]; e++)
        if (conflict(&m->b[e], x) && !dead(m, e) &&
            !(m->b[e].ls == 2 && m->b[e].block < m->blocks))
          m->violations++;
    x->ls = x->invalid ? 3 : 2;
    x->block = m->blocks;
  }
}

static int stage_result(ordo_op *op, void *arg) {
  int rc = ordo_op_set_result(op, arg);
  free(arg);
  return rc;
}

static int stage_fail(ordo_op *op, void *arg) {
  (void)arg;
  ordo_op_set_message(op, "503 code 15: validator not ready");
  return ORDO_E_LEDGER;
}

static int fails(model *m) {
  return m->fail_percent > 0 &&
         (int)((unsigned)rand_r(&m->seed) % 100u) < m->fail_percent;
}

static ordo_op *model_submit(void *self, const ordo_queue_item *items,
                             size_t n) {
  model *m = self;
  pthread_mutex_lock(&m->mu);
  if (fails(m)) {
    pthread_mutex_unlock(&m->mu);
    return ordo_submit(m->ctx, ORDO_CLASS_CHEAP, stage_fail, NULL);
  }
  for (size_t i = 0; i < n; i++) {
    int x = atoi((const char *)items[i].payload);
    assert_true(x >= 0 && x < m->n);
    m->b[x].sends++;
    if (m->b[x].ls == 3)
      m->b[x].sends_after_invalid++;
    if (m->b[x].ls == 0)
      m->b[x].ls = 1; /* a known batch is not added twice (as Sawtooth) */
  }
  pthread_mutex_unlock(&m->mu);
  return ordo_submit(m->ctx, ORDO_CLASS_CHEAP, stage_result,
                     strdup("{\"link\":\"model\"}"));
}

static ordo_op *model_statuses(void *self, const char *const *ids, size_t n) {
  static const char *names[] = {"UNKNOWN", "PENDING", "COMMITTED", "INVALID"};
  model *m = self;
  json_t *data = json_array();
  char *text;
  pthread_mutex_lock(&m->mu);
  if (fails(m)) {
    pthread_mutex_unlock(&m->mu);
    json_decref(data);
    return ordo_submit(m->ctx, ORDO_CLASS_CHEAP, stage_fail, NULL);
  }
  model_block(m); /* time passes between polls */
  for (size_t i = 0; i < n; i++) {
    int x = atoi(ids[i] + 1);
    json_t *e = json_pack("{s:s, s:s}", "id", ids[i], "status",
                          names[m->b[x].ls]);
    if (m->b[x].ls == 3)
      json_object_set_new(e, "invalid_transactions",
                          json_pack("[{s:s}]", "message", "model says no"));
    json_array_append_new(data, e);
  }
  pthread_mutex_unlock(&m->mu);
  {
    json_t *o = json_pack("{s:o}", "data", data);
    text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
  }
  return ordo_submit(m->ctx, ORDO_CLASS_CHEAP, stage_result, text);
}

static void model_init(model *m, ordo_ctx *ctx, int n, unsigned seed) {
  static const char keys[] = "abcdef";
  memset(m, 0, sizeof(*m));
  m->ctx = ctx;
  m->n = n;
  m->seed = seed;
  pthread_mutex_init(&m->mu, NULL);
  for (int i = 0; i < n; i++) {
    wb *b = &m->b[i];
    snprintf(b->id, sizeof b->id, "B%d", i);
    snprintf(b->svc, sizeof b->svc, "s%u", (unsigned)rand_r(&seed) % 4);
    b->nrd = (int)((unsigned)rand_r(&seed) % 3);
    b->nwr = (int)((unsigned)rand_r(&seed) % 2) + (b->nrd == 0);
    for (int k = 0; k < b->nrd; k++)
      snprintf(b->rd[k], 4, "%c", keys[rand_r(&seed) % 6]);
    for (int k = 0; k < b->nwr; k++)
      snprintf(b->wr[k], 4, "%c", keys[rand_r(&seed) % 6]);
    b->dep = i > 0 && rand_r(&seed) % 8 == 0 ? (int)((unsigned)rand_r(&seed) %
                                                     (unsigned)i)
                                             : -1;
    b->invalid = rand_r(&seed) % 15 == 0;
  }
}

static void enqueue_all(ordo_journal *j, model *m, int from, int to) {
  for (int i = from; i < to; i++) {
    wb *b = &m->b[i];
    const char *rd[2] = {b->rd[0], b->rd[1]}, *wr[2] = {b->wr[0], b->wr[1]};
    const char *dp[1];
    char payload[16];
    ordo_queue_batch_spec sp = {0};
    ordo_op *op;
    snprintf(payload, sizeof payload, "%d", i);
    sp.id = b->id;
    sp.service = b->svc;
    sp.reads = rd;
    sp.nreads = (size_t)b->nrd;
    sp.writes = wr;
    sp.nwrites = (size_t)b->nwr;
    if (b->dep >= 0) {
      dp[0] = m->b[b->dep].id;
      sp.deps = dp;
      sp.ndeps = 1;
    }
    sp.payload = payload;
    sp.payload_len = strlen(payload) + 1;
    op = ordo_journal_enqueue(j, &sp);
    assert_int_equal(ordo_op_wait(op, -1), ORDO_OK);
    ordo_op_release(op);
  }
}

static char dir[64], path[128];

static ordo_journal *jopen(ordo_ctx *ctx, ordo_queue_strategy st) {
  ordo_journal_options opt;
  ordo_journal *j = NULL;
  ordo_journal_options_init(&opt);
  opt.create = 1;
  opt.queue.strategy = st;
  if (ordo_journal_open(ctx, path, &opt, &j) != ORDO_OK)
    fail_msg("open: %s", ordo_last_error_message());
  return j;
}

static ordo_ctx *ctx_new(void) {
  ordo_config cfg;
  ordo_config_init(&cfg);
  cfg.cheap_threads = 2;
  cfg.heavy_threads = 1;
  ordo_ctx *ctx = ordo_ctx_new(&cfg);
  assert_non_null(ctx);
  return ctx;
}

static int setup(void **unused) {
  (void)unused;
  snprintf(dir, sizeof dir, "/tmp/ordo-submitter-XXXXXX");
  assert_non_null(mkdtemp(dir));
  snprintf(path, sizeof path, "%s/queue.db", dir);
  return 0;
}

static int teardown(void **unused) {
  char cmd[128];
  (void)unused;
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  return system(cmd) == 0 ? 0 : -1;
}

/* Steps until idle (bounded). Returns the steps taken. */
static int run_until_idle(ordo_submitter *s, int max_steps) {
  int idle = 0, steps = 0;
  while (!idle && steps < max_steps) {
    assert_int_equal(ordo_submitter_step(s, &idle), ORDO_OK);
    steps++;
  }
  return steps;
}

static void check_model(model *m, ordo_journal *j) {
  for (int i = 0; i < m->n; i++) {
    ordo_queue_state st;
    assert_int_equal(ordo_journal_batch_status(j, m->b[i].id, &st, NULL, NULL),
                     ORDO_OK);
    if (st != ORDO_QUEUE_COMMITTED && st != ORDO_QUEUE_INVALID)
      fail_msg("%s ends %s", m->b[i].id, ordo_queue_state_name(st));
    /* The client's verdict is the ledger's (or the cascade's, unsent). */
    if (st == ORDO_QUEUE_COMMITTED)
      assert_int_equal(m->b[i].ls, 2);
    assert_int_equal(m->b[i].sends_after_invalid, 0);
  }
}

/* Faults, no restart: random block order, lost pending queues, failing
 * calls. Everything finishes, in order, invalid never resent. */
static void test_faults_in_order(void **unused) {
  ordo_ctx *ctx = ctx_new();
  ordo_journal *j = jopen(ctx, ORDO_QUEUE_PARALLEL);
  static model m;
  ordo_ledger_port port = {1, &m, model_submit, model_statuses};
  ordo_submitter *s = NULL;
  ordo_submitter_progress p;
  (void)unused;

  model_init(&m, ctx, W_MAX, 42);
  m.lose_every = 5;
  m.fail_percent = 20;
  enqueue_all(j, &m, 0, m.n);
  assert_int_equal(ordo_submitter_new(j, &port, NULL, &s), ORDO_OK);
  run_until_idle(s, 5000);
  ordo_submitter_get_progress(s, &p);
  print_message("faults: %llu sent (%llu again), %llu committed, %llu invalid, "
                "%llu/%llu failed calls, %d blocks\n",
                p.submitted, p.resubmitted, p.committed, p.invalid,
                p.submit_errors, p.status_errors, m.blocks);
  assert_int_equal(m.violations, 0);
  assert_true(p.resubmitted > 0); /* lost pending queues were resent */
  assert_true(p.submit_errors + p.status_errors > 0);
  check_model(&m, j);
  ordo_submitter_free(s);
  assert_int_equal(ordo_journal_close(j), ORDO_OK);
  ordo_ctx_free(ctx);
  pthread_mutex_destroy(&m.mu);
}

/* The client restarts mid-run (journal closed with batches in flight and
 * some not yet enqueued); the new submitter settles the UNKNOWN ones first. */
static void test_restart_recovers(void **unused) {
  ordo_ctx *ctx = ctx_new();
  ordo_journal *j = jopen(ctx, ORDO_QUEUE_PARALLEL);
  static model m;
  ordo_ledger_port port = {1, &m, model_submit, model_statuses};
  ordo_submitter *s = NULL;
  size_t nunk = 0, total = 0;
  char *unk[1];
  int idle;
  (void)unused;

  model_init(&m, ctx, 300, 7);
  m.lose_every = 4;
  enqueue_all(j, &m, 0, 200);
  assert_int_equal(ordo_submitter_new(j, &port, NULL, &s), ORDO_OK);
  for (int k = 0; k < 6; k++)
    assert_int_equal(ordo_submitter_step(s, &idle), ORDO_OK);
  ordo_submitter_free(s);
  assert_int_equal(ordo_journal_close(j), ORDO_OK);

  j = jopen(ctx, ORDO_QUEUE_PARALLEL);
  assert_int_equal(ordo_journal_unknown(j, unk, 0, &nunk, &total), ORDO_OK);
  print_message("restart: %zu batches UNKNOWN after reopen\n", total);
  assert_true(total > 0);
  enqueue_all(j, &m, 200, 300);
  assert_int_equal(ordo_submitter_new(j, &port, NULL, &s), ORDO_OK);
  run_until_idle(s, 5000);
  assert_int_equal(m.violations, 0);
  check_model(&m, j);
  ordo_submitter_free(s);
  assert_int_equal(ordo_journal_close(j), ORDO_OK);
  ordo_ctx_free(ctx);
  pthread_mutex_destroy(&m.mu);
}

/* The oracle bites: without locks the random block order breaks order. */
static void test_unconstrained_violates(void **unused) {
  ordo_ctx *ctx = ctx_new();
  ordo_journal *j = jopen(ctx, ORDO_QUEUE_UNCONSTRAINED);
  static model m;
  ordo_ledger_port port = {1, &m, model_submit, model_statuses};
  ordo_submitter *s = NULL;
  (void)unused;
  model_init(&m, ctx, 200, 3);
  enqueue_all(j, &m, 0, m.n);
  assert_int_equal(ordo_submitter_new(j, &port, NULL, &s), ORDO_OK);
  run_until_idle(s, 5000);
  print_message("unconstrained: %d order violations\n", m.violations);
  assert_true(m.violations > 0);
  ordo_submitter_free(s);
  assert_int_equal(ordo_journal_close(j), ORDO_OK);
  ordo_ctx_free(ctx);
  pthread_mutex_destroy(&m.mu);
}

static int step_in_stage(ordo_op *op, void *arg) {
  int idle;
  (void)op;
  *(int *)arg = ordo_submitter_step(NULL, &idle) == ORDO_E_INVAL
                    ? ORDO_OK
                    : -1;
  return ORDO_OK;
}

/* Bad arguments: a clear code, no crash. */
static void test_bad_arguments(void **unused) {
  ordo_ctx *ctx = ctx_new();
  ordo_journal *j = jopen(ctx, ORDO_QUEUE_PARALLEL);
  ordo_ledger_port none = {1, NULL, NULL, NULL};
  ordo_submitter *s = NULL;
  ordo_op *op;
  int rc = -1;
  (void)unused;
  assert_int_equal(ordo_submitter_new(j, &none, NULL, &s), ORDO_E_INVAL);
  assert_null(s);
  assert_int_equal(ordo_submitter_new(NULL, &none, NULL, &s), ORDO_E_INVAL);
  op = ordo_submit(ctx, ORDO_CLASS_CHEAP, step_in_stage, &rc);
  assert_int_equal(ordo_op_wait(op, -1), ORDO_OK);
  ordo_op_release(op);
  assert_int_equal(rc, ORDO_OK);
  assert_int_equal(ordo_journal_close(j), ORDO_OK);
  ordo_ctx_free(ctx);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_faults_in_order, setup, teardown),
      cmocka_unit_test_setup_teardown(test_restart_recovers, setup, teardown),
      cmocka_unit_test_setup_teardown(test_unconstrained_violates, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_bad_arguments, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

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
#include <stdatomic.h>
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
  int refused; /* the ledger refuses any list holding it (400 code 30) */
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
  size_t max_body;   /* a list over this many payload bytes: 413 (0: none) */
  int submit_calls, refused_calls, too_large_calls;
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

static int stage_result(ordo_op *op, void *text) {
  return ordo_op_set_result(op, text);
}

/* An op whose result is text (taken: freed with the op, even when the op
 * is cancelled before its stage runs). */
static ordo_op *op_result(ordo_ctx *ctx, char *text) {
  ordo_op *op = ordo__op_new(ctx, text, free);
  assert_non_null(op);
  assert_int_equal(ordo__op_add_stage(op, ORDO_CLASS_CHEAP, stage_result),
                   ORDO_OK);
  return ordo__op_start(op);
}

static int stage_fail(ordo_op *op, void *arg) {
  (void)arg;
  ordo_op_set_message(op, "503 code 15: validator not ready");
  return ORDO_E_LEDGER;
}

static int stage_refused(ordo_op *op, void *arg) {
  (void)arg;
  ordo_op_set_message(op, "400 code 30: Submitted Batches Invalid: a batch "
                      "failed the permission check (POST /batches, 1 "
                      "attempt)");
  return ORDO_E_LEDGER_BATCH_REFUSED;
}

static int stage_too_large(ordo_op *op, void *arg) {
  (void)arg;
  ordo_op_set_message(op, "413 (no Sawtooth error in the body: Maximum "
                      "request body size exceeded)");
  return ORDO_E_LEDGER_TOO_LARGE;
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
  m->submit_calls++;
  {
    /* A permissioned REST API refuses the whole list for one bad batch,
     * and a body over its limit whole too: nothing of it is taken. */
    size_t body = 0;
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
      int x = atoi((const char *)items[i].payload);
      body += items[i].payload_len;
      if (m->b[x].ls == 3)
        m->b[x].sends_after_invalid++;
      bad |= m->b[x].refused;
    }
    if (m->max_body > 0 && body > m->max_body) {
      m->too_large_calls++;
      pthread_mutex_unlock(&m->mu);
      return ordo_submit(m->ctx, ORDO_CLASS_CHEAP, stage_too_large, NULL);
    }
    if (bad) {
      m->refused_calls++;
      if (n == 1) /* alone: the client must now call it INVALID */
        m->b[atoi((const char *)items[0].payload)].ls = 3;
      pthread_mutex_unlock(&m->mu);
      return ordo_submit(m->ctx, ORDO_CLASS_CHEAP, stage_refused, NULL);
    }
  }
  for (size_t i = 0; i < n; i++) {
    int x = atoi((const char *)items[i].payload);
    assert_true(x >= 0 && x < m->n);
    m->b[x].sends++;
    if (m->b[x].ls == 0)
      m->b[x].ls = 1; /* a known batch is not added twice (as Sawtooth) */
  }
  pthread_mutex_unlock(&m->mu);
  return op_result(m->ctx, strdup("{\"link\":\"model\"}"));
}

/* The model ledger's view of items[0..n): its states 0..3 are UNKNOWN,
 * PENDING (SUBMITTED), COMMITTED, INVALID. */
static ordo_op *model_statuses(void *self, const ordo_queue_item *items,
                               size_t n, int wait_s,
                               ordo_ledger_status *out) {
  static const ordo_queue_state states[] = {
      ORDO_QUEUE_UNKNOWN, ORDO_QUEUE_SUBMITTED, ORDO_QUEUE_COMMITTED,
      ORDO_QUEUE_INVALID};
  model *m = self;
  (void)wait_s;
  pthread_mutex_lock(&m->mu);
  if (fails(m)) {
    pthread_mutex_unlock(&m->mu);
    return ordo_submit(m->ctx, ORDO_CLASS_CHEAP, stage_fail, NULL);
  }
  model_block(m); /* time passes between polls */
  for (size_t i = 0; i < n; i++) {
    int x = atoi(items[i].id + 1);
    out[i].state = states[m->b[x].ls];
    out[i].reason = m->b[x].ls == 3 ? strdup("model says no") : NULL;
  }
  pthread_mutex_unlock(&m->mu);
  return op_result(m->ctx, strdup("{}"));
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

/* Steps until idle (bounded), waiting between steps for a status answer
 * as a driving loop does. Returns the steps taken. */
static int run_until_idle(ordo_submitter *s, int max_steps) {
  int idle = 0, steps = 0;
  while (!idle && steps < max_steps) {
    assert_int_equal(ordo_submitter_step(s, &idle), ORDO_OK);
    steps++;
    if (!idle)
      assert_int_equal(ordo_submitter_wait(s, 1000), ORDO_OK);
  }
  assert_true(idle);
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
  ordo_ledger_port port = {&m, model_submit, model_statuses};
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
  ordo_ledger_port port = {&m, model_submit, model_statuses};
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
  ordo_ledger_port port = {&m, model_submit, model_statuses};
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

/* A refused list is split until each refused batch stands alone: exactly
 * those end INVALID (with the ledger's message), their dependants cascade,
 * nothing refused is sent again, and the splits cost O(k log n) calls. */
static void test_refusals_split(void **unused) {
  ordo_ctx *ctx = ctx_new();
  ordo_journal *j = jopen(ctx, ORDO_QUEUE_PARALLEL);
  static model m;
  ordo_ledger_port port = {&m, model_submit, model_statuses, NULL};
  ordo_submitter *s = NULL;
  ordo_submitter_progress p;
  static const int bad[] = {3, 41, 42, 97, 150};
  const int k = (int)(sizeof bad / sizeof bad[0]);
  (void)unused;

  model_init(&m, ctx, 200, 11);
  for (int i = 0; i < m.n; i++)
    m.b[i].invalid = 0;
  for (int i = 0; i < k; i++)
    m.b[bad[i]].refused = 1;
  enqueue_all(j, &m, 0, m.n);
  assert_int_equal(ordo_submitter_new(j, &port, NULL, &s), ORDO_OK);
  run_until_idle(s, 5000);
  ordo_submitter_get_progress(s, &p);
  print_message("refusals: %d submit calls, %d refused, %llu batches refused\n",
                m.submit_calls, m.refused_calls, p.refused);
  assert_int_equal(m.violations, 0);
  check_model(&m, j);
  for (int i = 0; i < m.n; i++) {
    ordo_queue_state st;
    char *why = NULL;
    int refused = m.b[i].refused, cascaded = 0;
    for (int e = m.b[i].dep; e >= 0; e = m.b[e].dep)
      cascaded |= m.b[e].refused;
    assert_int_equal(ordo_journal_batch_status(j, m.b[i].id, &st, NULL, &why),
                     ORDO_OK);
    if (refused) {
      assert_int_equal(st, ORDO_QUEUE_INVALID);
      assert_non_null(why);
      assert_non_null(strstr(why, "400 code 30"));
      assert_int_equal(m.b[i].sends, 0); /* never taken by the ledger */
    } else if (cascaded) {
      assert_int_equal(st, ORDO_QUEUE_INVALID);
    } else {
      assert_int_equal(st, ORDO_QUEUE_COMMITTED);
    }
    free(why);
  }
  assert_true(p.refused == (unsigned long long)k);
  /* Each bad batch costs at most 2 log2(100) + 1 refused calls. */
  assert_true(m.refused_calls <= k * (2 * 7 + 1));
  ordo_submitter_free(s);
  assert_int_equal(ordo_journal_close(j), ORDO_OK);
  ordo_ctx_free(ctx);
  pthread_mutex_destroy(&m.mu);
}

/* Body limits: the ledger's 413 halves the list; a batch over the
 * submitter's own cap is INVALID unsent. */
static void test_body_cap(void **unused) {
  ordo_ctx *ctx = ctx_new();
  ordo_journal *j = jopen(ctx, ORDO_QUEUE_PARALLEL);
  static model m;
  ordo_ledger_port port = {&m, model_submit, model_statuses, NULL};
  ordo_submitter_options opt;
  ordo_submitter *s = NULL;
  ordo_submitter_progress p;
  (void)unused;

  model_init(&m, ctx, 120, 5);
  for (int i = 0; i < m.n; i++)
    m.b[i].invalid = 0;
  m.max_body = 12; /* payloads are "N\0": 3 to 6 batches a list */
  enqueue_all(j, &m, 0, m.n);
  {
    /* One batch with a payload over the submitter's cap. */
    ordo_queue_batch_spec sp = {0};
    static char big[600];
    const char *wr[1] = {"z"};
    memset(big, '7', sizeof big - 1);
    sp.id = "BIG";
    sp.service = "s0";
    sp.writes = wr;
    sp.nwrites = 1;
    sp.payload = big;
    sp.payload_len = sizeof big;
    ordo_op *op = ordo_journal_enqueue(j, &sp);
    assert_int_equal(ordo_op_wait(op, -1), ORDO_OK);
    ordo_op_release(op);
  }
  ordo_submitter_options_init(&opt);
  opt.max_submit_bytes = 512;
  assert_int_equal(ordo_submitter_new(j, &port, &opt, &s), ORDO_OK);
  run_until_idle(s, 5000);
  ordo_submitter_get_progress(s, &p);
  print_message("body cap: %d submit calls, %d answered 413\n", m.submit_calls,
                m.too_large_calls);
  assert_true(m.too_large_calls > 0);
  assert_int_equal(m.violations, 0);
  check_model(&m, j);
  for (int i = 0; i < m.n; i++) {
    ordo_queue_state st;
    assert_int_equal(ordo_journal_batch_status(j, m.b[i].id, &st, NULL, NULL),
                     ORDO_OK);
    assert_int_equal(st, ORDO_QUEUE_COMMITTED);
  }
  {
    ordo_queue_state st;
    char *why = NULL;
    assert_int_equal(ordo_journal_batch_status(j, "BIG", &st, NULL, &why),
                     ORDO_OK);
    assert_int_equal(st, ORDO_QUEUE_INVALID);
    assert_non_null(strstr(why, "larger than the ledger accepts"));
    free(why);
  }
  assert_int_equal(p.refused, 1);
  ordo_submitter_free(s);
  assert_int_equal(ordo_journal_close(j), ORDO_OK);
  ordo_ctx_free(ctx);
  pthread_mutex_destroy(&m.mu);
}

/* A ledger that cannot be reached: reported at once with its cause, the
 * health says since when, it is reported again when it answers, and with
 * give_up_ms the step fails instead of retrying for ever. */
typedef struct down_port {
  ordo_ctx *ctx;
  atomic_int down;
  int reports, reports_down, reports_up;
  char last[480];
} down_port;

static int stage_refused_conn(ordo_op *op, void *arg) {
  (void)arg;
  ordo_op_set_message(op, "POST /batches: Failed to connect to 127.0.0.1 "
                      "port 1: Connection refused (4 attempts)");
  return ORDO_E_LEDGER_CONNECT;
}

static int stage_ok_link(ordo_op *op, void *arg) {
  (void)arg;
  return ordo_op_set_result(op, "{\"link\":\"x\"}");
}

static ordo_op *down_submit(void *self, const ordo_queue_item *items,
                            size_t n) {
  down_port *d = self;
  (void)items;
  (void)n;
  return ordo_submit(d->ctx, ORDO_CLASS_CHEAP,
                     atomic_load(&d->down) ? stage_refused_conn : stage_ok_link,
                     NULL);
}

static ordo_op *down_statuses(void *self, const ordo_queue_item *items,
                              size_t n, int wait_s, ordo_ledger_status *out) {
  down_port *d = self;
  (void)items;
  (void)wait_s;
  if (atomic_load(&d->down))
    return ordo_submit(d->ctx, ORDO_CLASS_CHEAP, stage_refused_conn, NULL);
  for (size_t i = 0; i < n; i++) {
    out[i].state = ORDO_QUEUE_COMMITTED;
    out[i].reason = NULL;
  }
  return op_result(d->ctx, strdup("{}"));
}

static void on_ledger_error(void *ud, ordo_submitter_event ev,
                            const ordo_submitter_progress *p) {
  down_port *d = ud;
  d->reports++;
  if (ev == ORDO_SUBMITTER_EVENT_DOWN) {
    assert_int_equal(p->ledger_down, 1);
    d->reports_down++;
  } else if (ev == ORDO_SUBMITTER_EVENT_UP) {
    assert_int_equal(p->ledger_down, 0);
    d->reports_up++;
  }
  snprintf(d->last, sizeof d->last, "%s", p->last_error);
}

static void test_ledger_down_reported(void **unused) {
  ordo_ctx *ctx = ctx_new();
  ordo_journal *j = jopen(ctx, ORDO_QUEUE_PARALLEL);
  down_port d;
  ordo_ledger_port port = {&d, down_submit, down_statuses, NULL};
  ordo_submitter_options opt;
  ordo_submitter *s = NULL;
  ordo_submitter_progress p;
  int idle = 0;
  (void)unused;

  memset(&d, 0, sizeof d);
  d.ctx = ctx;
  atomic_init(&d.down, 1);
  {
    model m;
    model_init(&m, ctx, 10, 1);
    for (int i = 0; i < 10; i++)
      m.b[i].dep = -1;
    enqueue_all(j, &m, 0, 10);
    pthread_mutex_destroy(&m.mu);
  }
  ordo_submitter_options_init(&opt);
  opt.on_ledger_error = on_ledger_error;
  opt.on_ledger_error_ud = &d;
  assert_int_equal(ordo_submitter_new(j, &port, &opt, &s), ORDO_OK);
  assert_int_equal(ordo_submitter_step(s, &idle), ORDO_OK);
  /* Told at once, with the cause. */
  assert_true(d.reports_down >= 1);
  assert_non_null(strstr(d.last, "Connection refused"));
  ordo_submitter_get_progress(s, &p);
  assert_int_equal(p.ledger_down, 1);
  assert_true(p.down_since_ms > 0);
  assert_int_equal(p.last_error_code, ORDO_E_LEDGER_CONNECT);
  assert_int_equal(p.last_error_cause, ORDO_SUBMITTER_CAUSE_CONNECT);
  assert_string_equal(ordo_submitter_cause_name(p.last_error_cause), "connect");
  assert_true(p.errors_by_cause[ORDO_SUBMITTER_CAUSE_CONNECT] >= 1);
  /* The ledger comes back: said once, and everything finishes. */
  atomic_store(&d.down, 0);
  run_until_idle(s, 1000);
  ordo_submitter_get_progress(s, &p);
  assert_int_equal(p.ledger_down, 0);
  assert_int_equal(p.down_since_ms, 0);
  assert_int_equal(d.reports_up, 1);
  assert_int_equal(p.committed, 10);
  ordo_submitter_free(s);

  /* give_up_ms: down that long, the step fails with the cause. */
  atomic_store(&d.down, 1);
  {
    model m;
    model_init(&m, ctx, 12, 2);
    for (int i = 10; i < 12; i++)
      m.b[i].dep = -1;
    enqueue_all(j, &m, 10, 12);
    pthread_mutex_destroy(&m.mu);
  }
  opt.give_up_ms = 1;
  assert_int_equal(ordo_submitter_new(j, &port, &opt, &s), ORDO_OK);
  int rc = ORDO_OK;
  for (int i = 0; i < 100 && rc == ORDO_OK; i++) {
    rc = ordo_submitter_step(s, &idle);
    if (rc == ORDO_OK)
      assert_int_equal(ordo_submitter_wait(s, 10), ORDO_OK);
  }
  assert_int_equal(rc, ORDO_E_LEDGER_CONNECT);
  assert_non_null(strstr(ordo_last_error_message(), "unreachable for"));
  assert_non_null(strstr(ordo_last_error_message(), "Connection refused"));
  ordo_submitter_free(s);
  assert_int_equal(ordo_journal_close(j), ORDO_OK);
  ordo_ctx_free(ctx);
}

/* A call that never answers is reported after stall_ms, not silently
 * waited on: the report comes while the call is still out (the report
 * itself lets the test's parked call finish). */
typedef struct stall_port {
  ordo_ctx *ctx;
  _Atomic(ordo_op *) parked; /* published by the parked stage itself */
  int stalls;
  char last[480];
} stall_port;

/* Park the op: it has no answer until the test resumes it. The stage
 * publishes the op as its last act, so whoever resumes it does so after
 * the stage has run (release here, acquire there). */
static int stage_park(ordo_op *op, void *arg) {
  atomic_store_explicit(&((stall_port *)arg)->parked, op,
                        memory_order_release);
  return ORDO__STAGE_ASYNC;
}

static ordo_op *stall_submit(void *self, const ordo_queue_item *items,
                             size_t n) {
  stall_port *sp = self;
  (void)items;
  (void)n;
  ordo_op *op = ordo__op_new(sp->ctx, sp, NULL);
  assert_non_null(op);
  assert_int_equal(ordo__op_add_stage(op, ORDO_CLASS_CHEAP, stage_park),
                   ORDO_OK);
  assert_int_equal(ordo__op_add_stage(op, ORDO_CLASS_CHEAP, stage_ok_link),
                   ORDO_OK);
  return ordo__op_start(op);
}

static ordo_op *stall_statuses(void *self, const ordo_queue_item *items,
                               size_t n, int wait_s, ordo_ledger_status *out) {
  stall_port *sp = self;
  down_port d = {0};
  d.ctx = sp->ctx;
  atomic_init(&d.down, 0);
  return down_statuses(&d, items, n, wait_s, out);
}

static void on_stall(void *ud, ordo_submitter_event ev,
                     const ordo_submitter_progress *p) {
  stall_port *sp = ud;
  ordo_op *op = NULL;
  if (ev != ORDO_SUBMITTER_EVENT_DOWN || !p->ledger_down)
    return;
  sp->stalls++;
  snprintf(sp->last, sizeof sp->last, "%s", p->last_error);
  /* The stall is reported after 50 ms; the park stage has run long
   * before, but wait for its word rather than assume it. */
  for (int i = 0; i < 5000000 && op == NULL; i++)
    op = atomic_exchange_explicit(&sp->parked, NULL, memory_order_acquire);
  assert_non_null(op);
  ordo__op_resume(op, ORDO_OK); /* the answer comes after all */
}

static void test_stall_reported(void **unused) {
  ordo_ctx *ctx = ctx_new();
  ordo_journal *j = jopen(ctx, ORDO_QUEUE_PARALLEL);
  stall_port sp;
  ordo_ledger_port port = {&sp, stall_submit, stall_statuses, NULL};
  ordo_submitter_options opt;
  ordo_submitter *s = NULL;
  ordo_submitter_progress p;
  (void)unused;

  memset(&sp, 0, sizeof sp);
  sp.ctx = ctx;
  atomic_init(&sp.parked, NULL);
  {
    model m;
    model_init(&m, ctx, 1, 1);
    m.b[0].dep = -1;
    enqueue_all(j, &m, 0, 1);
    pthread_mutex_destroy(&m.mu);
  }
  ordo_submitter_options_init(&opt);
  opt.stall_ms = 50;
  opt.on_ledger_error = on_stall;
  opt.on_ledger_error_ud = &sp;
  assert_int_equal(ordo_submitter_new(j, &port, &opt, &s), ORDO_OK);
  run_until_idle(s, 100);
  assert_int_equal(sp.stalls, 1);
  assert_non_null(strstr(sp.last, "no answer from the ledger for"));
  ordo_submitter_get_progress(s, &p);
  assert_int_equal(p.committed, 1);
  assert_int_equal(p.ledger_down, 0); /* it answered */
  ordo_submitter_free(s);
  assert_int_equal(ordo_journal_close(j), ORDO_OK);
  ordo_ctx_free(ctx);
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
  ordo_ledger_port none = {NULL, NULL, NULL, NULL, 0};
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
      cmocka_unit_test_setup_teardown(test_refusals_split, setup, teardown),
      cmocka_unit_test_setup_teardown(test_body_cap, setup, teardown),
      cmocka_unit_test_setup_teardown(test_ledger_down_reported, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_stall_reported, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bad_arguments, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

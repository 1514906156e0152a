/*
 * test_runtime.c — tests of the runtime module: ops (futures) through each
 * completion path, cancellation, shutdown, executors, configuration, metrics,
 * errors.
 *
 * Every wait here is on an event (op wait, latch, gate, eventfd). Stages and
 * callbacks run on runtime threads and check with SUPPORT_CHECK; each test
 * ends with assert_int_equal(support_take_failures(), 0).
 */
#include "ordo.h"
#include "runtime/runtime.h"
#include "support/support.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

/* cmocka.h needs these first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

/* ------------------------------------------------------------------------ */
/* Helpers                                                                   */
/* ------------------------------------------------------------------------ */

/* A context with small, explicit executors; queue_limit 0 keeps the default. */
static ordo_ctx *ctx_make(unsigned cheap, unsigned heavy, unsigned queue_limit) {
  ordo_config cfg;
  ordo_config_init(&cfg);
  cfg.cheap_threads = cheap;
  cfg.heavy_threads = heavy;
  if (queue_limit != 0)
    cfg.queue_limit = queue_limit;
  ordo_ctx *ctx = ordo_ctx_new(&cfg);
  if (ctx == NULL)
    fail_msg("ordo_ctx_new: %s", ordo_last_error_message());
  return ctx;
}

/* A then-callback's record: how often it ran, where, and the status it saw. */
typedef struct cb_rec {
  atomic_int calls;
  atomic_int on_runtime; /* all calls were on a runtime thread */
  atomic_int status;
  ordo_op *expect; /* the op the callback must be given (compared, not used) */
  support_latch *latch; /* counted down after each call, if set */
} cb_rec;

static void cb_rec_init(cb_rec *r, ordo_op *expect, support_latch *latch) {
  atomic_init(&r->calls, 0);
  atomic_init(&r->on_runtime, 1);
  atomic_init(&r->status, -1);
  r->expect = expect;
  r->latch = latch;
}

static void record_cb(ordo_op *op, void *userdata) {
  cb_rec *r = userdata;
  SUPPORT_CHECK(r->expect == NULL || op == r->expect);
  if (!ordo__on_runtime_thread())
    atomic_store(&r->on_runtime, 0);
  /* The op is finished and valid during the callback. */
  atomic_store(&r->status, ordo_op_status(op));
  atomic_fetch_add(&r->calls, 1);
  if (r->latch != NULL)
    support_latch_count_down(r->latch);
}

static int stage_ok(ordo_op *op, void *arg) {
  (void)op;
  (void)arg;
  return ORDO_OK;
}

/* arg = atomic_int *: counts runs. */
static int stage_sleep_20ms(ordo_op *op, void *arg) {
  struct timespec ts = {0, 20 * 1000 * 1000};
  (void)op;
  (void)arg;
  while (nanosleep(&ts, &ts) != 0)
    ;
  return ORDO_OK;
}

static int stage_count(ordo_op *op, void *arg) {
  (void)op;
  atomic_fetch_add((atomic_int *)arg, 1);
  return ORDO_OK;
}

/* arg = pthread_t *: records the thread it ran on. */
static int stage_record_thread(ordo_op *op, void *arg) {
  (void)op;
  *(pthread_t *)arg = pthread_self();
  return ORDO_OK;
}

/* Poll op's eventfd until it is readable. */
static void poll_until_readable(int fd) {
  struct pollfd p = {.fd = fd, .events = POLLIN};
  for (;;) {
    int n = poll(&p, 1, -1);
    if (n > 0 && (p.revents & POLLIN))
      return;
    assert_true(n > 0 || errno == EINTR);
  }
}

static int fd_readable_now(int fd) {
  struct pollfd p = {.fd = fd, .events = POLLIN};
  return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

/* Wait until classes.<cls>.queue_depth reaches depth while op (whose next
 * stage is to join that queue) is still pending; fail if op finished. */
static void wait_queued(ordo_ctx *ctx, const char *cls, long long depth,
                        ordo_op *op) {
  while (support_metric(ctx, cls, "queue_depth") != depth &&
         ordo_op_status(op) == ORDO_E_PENDING)
    sched_yield();
  if (ordo_op_status(op) != ORDO_E_PENDING)
    fail_msg("op finished with %s instead of queueing its next stage",
             ordo_errname(ordo_op_status(op)));
}

/* ------------------------------------------------------------------------ */
/* Op lifecycle: wait, then, fd, release before done                        */
/* ------------------------------------------------------------------------ */

static int stage_set_result(ordo_op *op, void *arg) {
  (void)arg;
  SUPPORT_CHECK(ordo__on_runtime_thread());
  SUPPORT_CHECK(ordo__op_current() == op);
  SUPPORT_CHECK(ordo_op_cancelled() == 0);
  SUPPORT_CHECK(ordo_op_status(op) == ORDO_E_PENDING);
  SUPPORT_CHECK(ordo_op_result(op) == NULL);
  SUPPORT_CHECK(ordo_op_set_result(op, "{\"first\":1}") == ORDO_OK);
  SUPPORT_CHECK(ordo_op_set_result(op, "{\"answer\":42}") == ORDO_OK);
  return ORDO_OK;
}

static int stage_fail_io(ordo_op *op, void *arg) {
  (void)arg;
  SUPPORT_CHECK(ordo_op_set_message(op, "disk %d is %s", 3, "gone") == ORDO_OK);
  return ORDO_E_IO;
}

static void test_op_wait(void **state) {
  (void)state;
  ordo_ctx *ctx = ctx_make(2, 1, 0);

  /* Outside a stage. */
  assert_int_equal(ordo__on_runtime_thread(), 0);
  assert_null(ordo__op_current());
  assert_int_equal(ordo_op_cancelled(), 0);

  ordo_op *op = ordo_submit(ctx, ORDO_CLASS_CHEAP, stage_set_result, NULL);
  assert_non_null(op);
  assert_int_equal(ordo_op_wait(op, -1), ORDO_OK);
  assert_int_equal(ordo_op_status(op), ORDO_OK);
  assert_int_equal(ordo_op_wait(op, -1), ORDO_OK); /* again: same answer */
  assert_int_equal(ordo_op_wait(op, 0), ORDO_OK);
  assert_string_equal(ordo_op_result(op), "{\"answer\":42}");
  assert_string_equal(ordo_op_message(op), "");
  const unsigned char *data = NULL;
  size_t len = 1;
  assert_int_equal(ordo_op_result_bytes(op, &data, &len), ORDO_E_NOT_FOUND);
  /* Setting a result on a finished op is refused. */
  assert_int_equal(ordo_op_set_result(op, "{}"), ORDO_E_STATE);
  assert_int_equal(ordo_op_set_result_bytes(op, "x", 1), ORDO_E_STATE);
  assert_int_equal(ordo_op_set_message(op, "late"), ORDO_E_STATE);
  assert_string_equal(ordo_op_result(op), "{\"answer\":42}");

  /* retain/release pairs. */
  assert_ptr_equal(ordo_op_retain(op), op);
  ordo_op_release(op);
  ordo_op_release(op);
  ordo_op_release(NULL);

  /* A stage's error becomes the op's status, with its message. */
  op = ordo_submit(ctx, ORDO_CLASS_HEAVY, stage_fail_io, NULL);
  assert_int_equal(ordo_op_wait(op, -1), ORDO_E_IO);
  assert_int_equal(ordo_op_status(op), ORDO_E_IO);
  assert_string_equal(ordo_op_message(op), "disk 3 is gone");
  assert_null(ordo_op_result(op));
  ordo_op_release(op);

  ordo_ctx_free(ctx);
  ordo_ctx_free(NULL);
  assert_int_equal(support_take_failures(), 0);
}

static void test_op_then(void **state) {
  (void)state;
  ordo_ctx *ctx = ctx_make(2, 1, 0);
  support_blocker b;
  support_latch done;
  cb_rec rec;
  support_blocker_init(&b, 0);
  support_latch_init(&done, 1);

  ordo_op *op = ordo_submit(ctx, ORDO_CLASS_HEAVY, support_blocker_stage, &b);
  cb_rec_init(&rec, op, &done);
  assert_int_equal(ordo_op_then(op, record_cb, &rec), ORDO_OK);
  /* At most one callback per op. */
  assert_int_equal(ordo_op_then(op, record_cb, &rec), ORDO_E_STATE);
  support_latch_wait(&b.started);
  assert_int_equal(ordo_op_status(op), ORDO_E_PENDING);
  assert_int_equal(atomic_load(&rec.calls), 0);
  support_gate_open(&b.gate);

  support_latch_wait(&done);
  assert_int_equal(ordo_op_wait(op, -1), ORDO_OK);
  ordo_op_release(op);
  ordo_ctx_free(ctx); /* delivers anything pending, joins the threads */

  assert_int_equal(atomic_load(&rec.calls), 1);
  assert_int_equal(atomic_load(&rec.on_runtime), 1);
  assert_int_equal(atomic_load(&rec.status), ORDO_OK);
  support_latch_destroy(&done);
  support_blocker_destroy(&b);
  assert_int_equal(support_take_failures(), 0);
}

static void test_op_then_after_completion(void **state) {
  (void)state;
  ordo_ctx *ctx = ctx_make(2, 1, 0);
  support_latch done;
  cb_rec rec;
  support_latch_init(&done, 1);

  ordo_op *op = ordo_submit(ctx, ORDO_CLASS_CHEAP, stage_fail_io, NULL);
  assert_int_equal(ordo_op_wait(op, -1), ORDO_E_IO);
  cb_rec_init(&rec, op, &done);
  assert_int_equal(ordo_op_then(op, record_cb, &rec), ORDO_OK);
  assert_int_equal(ordo_op_then(op, record_cb, &rec), ORDO_E_STATE);
  support_latch_wait(&done);
  ordo_op_release(op);
  ordo_ctx_free(ctx);

  assert_int_equal(atomic_load(&rec.calls), 1);
  assert_int_equal(atomic_load(&rec.on_runtime), 1);
  assert_int_equal(atomic_load(&rec.status), ORDO_E_IO);
  support_latch_destroy(&done);
  assert_int_equal(support_take_failures(), 0);
}

static void test_op_fd(void **state) {
  (void)state;
  ordo_ctx *ctx = ctx_make(2, 1, 0);
  support_blocker b;
  support_blocker_init(&b, 0);

  ordo_op *op = ordo_submit(ctx, ORDO_CLASS_HEAVY, support_blocker_stage, &b);
  int fd = ordo_op_fd(op);
  assert_true(fd >= 0);
  assert_int_equal(ordo_op_fd(op), fd); /* one fd per op */
  assert_true(fcntl(fd, F_GETFL) & O_NONBLOCK);
  assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
  support_latch_wait(&b.started);
  assert_false(fd_readable_now(fd)); /* the stage is held at the gate */
  assert_int_equal(ordo_op_status(op), ORDO_E_PENDING);

  support_gate_open(&b.gate);
  poll_until_readable(fd);
  assert_int_equal(ordo_op_status(op), ORDO_OK);
  assert_true(fd_readable_now(fd)); /* stays readable */
  ordo_op_release(op);

  /* The fd of an op that has already finished is readable at once. */
  op = ordo_submit(ctx, ORDO_CLASS_CHEAP, stage_ok, NULL);
  assert_int_equal(ordo_op_wait(op, -1), ORDO_OK);
  fd = ordo_op_fd(op);
  assert_true(fd >= 0);
  assert_true(fd_readable_now(fd));
  ordo_op_release(op);

  ordo_ctx_free(ctx);
  support_blocker_destroy(&b);
  assert_int_equal(support_take_failures(), 0);
}

/* Release the only reference while the stage is blocked; the op still
 * finishes, its callback fires, and it is freed then (ASan: no leak, no
 * use after free; the fd is closed by that last release). */
static void test_release_before_done(void **state) {
  (void)state;
  ordo_ctx *ctx = ctx_make(2, 1, 0);
  support_blocker b;
  support_latch done;
  cb_rec rec;
  support_blocker_init(&b, 0);
  support_latch_init(&done, 1);

  ordo_op *op = ordo_submit(ctx, ORDO_CLASS_HEAVY, support_blocker_stage, &b);
  cb_rec_init(&rec, op, &done);
  assert_int_equal(ordo_op_then(op, record_cb, &rec), ORDO_OK);
  int fd = ordo_op_fd(op);
  assert_true(fd >= 0);
  support_latch_wait(&b.started);
  ordo_op_release(op);
  op = NULL;
  support_gate_open(&b.gate);
  support_latch_wait(&done);

  /* A second op released right after submit, with no callback: it still
   * runs (ordo_ctx_free would cancel it if it were still queued). */
  support_blocker ran;
  support_blocker_init(&ran, 0);
  support_gate_open(&ran.gate);
  ordo_op_release(ordo_submit(ctx, ORDO_CLASS_CHEAP, support_blocker_stage, &ran));
  support_latch_wait(&ran.started);

  ordo_ctx_free(ctx);
  support_blocker_destroy(&ran);
  assert_int_equal(atomic_load(&rec.calls), 1);
  assert_int_equal(atomic_load(&rec.on_runtime), 1);
  assert_int_equal(atomic_load(&rec.status), ORDO_OK);
  /* Freed after the context joined its threads: the eventfd is closed. */
  errno = 0;
  assert_int_equal(fcntl(fd, F_GETFD), -1);
  assert_int_equal(errno, EBADF);
  support_latch_destroy(&done);
  support_blocker_destroy(&b);
  assert_int_equal(support_take_failures(), 0);
}

/* ------------------------------------------------------------------------ */
/* Many submitters                                                           */
/* ------------------------------------------------------------------------ */

#define SUBMITTERS 8
#define OPS_PER_SUBMITTER 10000

typedef struct many_shared {
  ordo_ctx *ctx;
  atomic_int stage_runs;
  support_latch all_done;
} many_shared;

typedef struct many_slot {
  many_shared *shared;
  atomic_int ran;
  atomic_int done;
} many_slot;

typedef struct many_submitter {
  many_shared *shared;
  many_slot *slots; /* OPS_PER_SUBMITTER of them */
  int refused;      /* ops that did not start; read after the join */
} many_submitter;

static int many_stage(ordo_op *op, void *arg) {
  many_slot *s = arg;
  (void)op;
  atomic_fetch_add(&s->ran, 1);
  atomic_fetch_add(&s->shared->stage_runs, 1);
  return ORDO_OK;
}

static void many_cb(ordo_op *op, void *userdata) {
  many_slot *s = userdata;
  SUPPORT_CHECK(ordo__on_runtime_thread());
  SUPPORT_CHECK(ordo_op_status(op) == ORDO_OK);
  atomic_fetch_add(&s->done, 1);
  support_latch_count_down(&s->shared->all_done);
}

static void *many_submit_thread(void *arg) {
  many_submitter *m = arg;
  for (int i = 0; i < OPS_PER_SUBMITTER; i++) {
    ordo_op *op = ordo_submit(m->shared->ctx, ORDO_CLASS_CHEAP, many_stage,
                              &m->slots[i]);
    int st = ordo_op_status(op);
    if (st != ORDO_E_PENDING && st != ORDO_OK)
      m->refused++;
    SUPPORT_CHECK(ordo_op_then(op, many_cb, &m->slots[i]) == ORDO_OK);
    ordo_op_release(op); /* released before done, mostly */
  }
  return NULL;
}

static void test_many_submitters(void **state) {
  (void)state;
  const int total = SUBMITTERS * OPS_PER_SUBMITTER;
  many_shared shared;
  many_submitter subs[SUBMITTERS];
  many_slot *slots = calloc((size_t)total, sizeof *slots);
  assert_non_null(slots);

  shared.ctx = ctx_make(2, 1, 1u << 20);
  atomic_init(&shared.stage_runs, 0);
  support_latch_init(&shared.all_done, total);
  for (int i = 0; i < total; i++) {
    slots[i].shared = &shared;
    atomic_init(&slots[i].ran, 0);
    atomic_init(&slots[i].done, 0);
  }
  for (int t = 0; t < SUBMITTERS; t++) {
    subs[t].shared = &shared;
    subs[t].slots = &slots[t * OPS_PER_SUBMITTER];
    subs[t].refused = 0;
  }

  support_run_threads(SUBMITTERS, many_submit_thread, subs, sizeof subs[0]);
  for (int t = 0; t < SUBMITTERS; t++)
    assert_int_equal(subs[t].refused, 0);
  support_latch_wait(&shared.all_done);
  ordo_ctx_free(shared.ctx);

  int bad = 0;
  for (int i = 0; i < total; i++) {
    if (atomic_load(&slots[i].ran) != 1 || atomic_load(&slots[i].done) != 1) {
      print_error("op %d: stage ran %d times, completed %d times\n", i,
                  atomic_load(&slots[i].ran), atomic_load(&slots[i].done));
      bad++;
    }
  }
  int stage_runs = atomic_load(&shared.stage_runs);
  support_latch_destroy(&shared.all_done);
  free(slots);
  assert_int_equal(bad, 0);
  assert_int_equal(stage_runs, total);
  assert_int_equal(support_take_failures(), 0);
}

/* ------------------------------------------------------------------------ */
/* Internal API: multi-stage ops, executors, ASYNC                          */
/* ------------------------------------------------------------------------ */

/* What the stages of a multi-stage op saw; owned by the test, outlives the
 * op. The op's state is a small wrapper pointing here, freed by the op. */
typedef struct chain_log {
  ordo_ctx *ctx;
  int n;              /* stages run so far */
  int order[8];       /* stage ids in run order */
  pthread_t thread[8];
  atomic_int freed;   /* state_free calls */
  support_latch *async_handoff; /* ASYNC: counted down before returning */
  ordo_op *async_op;
  int resume_status;
  support_blocker *blocker; /* for a stage that blocks */
} chain_log;

typedef struct chain_state {
  chain_log *log;
} chain_state;

static void chain_state_free(void *p) {
  chain_state *st = p;
  atomic_fetch_add(&st->log->freed, 1);
  free(st);
}

static ordo_op *chain_new(ordo_ctx *ctx, chain_log *log) {
  chain_state *st = malloc(sizeof *st);
  assert_non_null(st);
  st->log = log;
  ordo_op *op = ordo__op_new(ctx, st, chain_state_free);
  assert_non_null(op);
  assert_ptr_equal(ordo__op_state(op), st);
  assert_ptr_equal(ordo__op_ctx(op), ctx);
  return op;
}

/* Stages run one after another, so the log needs no lock: each stage's
 * writes happen before the next stage is queued. */
static chain_log *chain_enter(ordo_op *op, int id) {
  chain_state *st = ordo__op_state(op);
  chain_log *log = st->log;
  SUPPORT_CHECK(ordo__op_current() == op);
  SUPPORT_CHECK(ordo__op_ctx(op) == log->ctx);
  SUPPORT_CHECK(ordo__on_runtime_thread());
  if (log->n < 8) {
    log->order[log->n] = id;
    log->thread[log->n] = pthread_self();
    log->n++;
  }
  return log;
}

static int chain_stage1(ordo_op *op, void *arg) {
  (void)arg;
  chain_enter(op, 1);
  return ORDO_OK;
}

static int chain_stage2(ordo_op *op, void *arg) {
  (void)arg;
  chain_enter(op, 2);
  return ORDO_OK;
}

static int chain_stage3(ordo_op *op, void *arg) {
  (void)arg;
  chain_log *log = chain_enter(op, 3);
  char buf[64];
  snprintf(buf, sizeof buf, "{\"stages\":%d}", log->n);
  return ordo_op_set_result(op, buf);
}

/* A plain task posted to an executor; records the thread it ran on. */
typedef struct probe_task {
  ordo__task task;
  pthread_t thread;
  support_latch ran;
} probe_task;

static void probe_task_fn(ordo__task *task) {
  probe_task *p = (probe_task *)task; /* task is the first member */
  SUPPORT_CHECK(ordo__on_runtime_thread());
  p->thread = pthread_self();
  support_latch_count_down(&p->ran);
}

static void probe_init(probe_task *p) {
  memset(p, 0, sizeof *p);
  p->task.fn = probe_task_fn;
  support_latch_init(&p->ran, 1);
}

static void test_chain_cheap_storage_cheap(void **state) {
  (void)state;
  ordo_ctx *ctx = ctx_make(2, 1, 0);
  chain_log log = {.ctx = ctx};
  ordo__executor *db = NULL, *db2 = NULL;
  atomic_init(&log.freed, 0);

  assert_int_equal(ordo__executor_open(ctx, "test.db", &db), ORDO_OK);
  assert_non_null(db);
  ordo_op *op = chain_new(ctx, &log);
  assert_int_equal(ordo__op_add_stage(op, ORDO_CLASS_CHEAP, chain_stage1), ORDO_OK);
  assert_int_equal(ordo__op_add_stage_on(op, db, chain_stage2), ORDO_OK);
  assert_int_equal(ordo__op_add_stage(op, ORDO_CLASS_CHEAP, chain_stage3), ORDO_OK);
  assert_ptr_equal(ordo__op_start(op), op);
  assert_int_equal(ordo_op_wait(op, -1), ORDO_OK);

  assert_int_equal(log.n, 3);
  assert_int_equal(log.order[0], 1);
  assert_int_equal(log.order[1], 2);
  assert_int_equal(log.order[2], 3);
  /* The storage stage ran on the database's own thread, not a cheap one. */
  assert_false(pthread_equal(log.thread[1], log.thread[0]));
  assert_false(pthread_equal(log.thread[1], log.thread[2]));
  assert_string_equal(ordo_op_result(op), "{\"stages\":3}");
  ordo_op_release(op);

  /* A plain task on the database executor runs on that same thread. */
  probe_task p;
  probe_init(&p);
  assert_int_equal(ordo__executor_post(db, &p.task), ORDO_OK);
  support_latch_wait(&p.ran);
  assert_true(pthread_equal(p.thread, log.thread[1]));
  support_latch_destroy(&p.ran);

  /* A second database gets a thread of its own. */
  assert_int_equal(ordo__executor_open(ctx, "other.db", &db2), ORDO_OK);
  assert_true(db2 != db);
  probe_init(&p);
  assert_int_equal(ordo__executor_post(db2, &p.task), ORDO_OK);
  support_latch_wait(&p.ran);
  assert_false(pthread_equal(p.thread, log.thread[1]));
  support_latch_destroy(&p.ran);

  /* A task posted to a class executor. */
  probe_init(&p);
  assert_int_equal(
      ordo__executor_post(ordo__executor_of_class(ctx, ORDO_CLASS_HEAVY), &p.task),
      ORDO_OK);
  support_latch_wait(&p.ran);
  assert_false(pthread_equal(p.thread, log.thread[1]));
  support_latch_destroy(&p.ran);

  /* Posting after close is refused. */
  ordo__executor_close(db2);
  probe_init(&p);
  assert_int_equal(ordo__executor_post(db2, &p.task), ORDO_E_STATE);
  support_latch_destroy(&p.ran);

  ordo__executor_close(db);
  ordo_ctx_free(ctx);
  assert_int_equal(atomic_load(&log.freed), 1);
  assert_int_equal(support_take_failures(), 0);
}

/* arg = ordo__executor *: closes the executor it runs on. */
static int stage_close_own(ordo_op *op, void *arg) {
  (void)op;
  ordo__executor_close(arg);
  return ORDO_OK;
}

/* Closing a serial executor: queued work still runs, later posts are
 * refused, and a later open gets a working executor. */
static void test_executor_close(void **state) {
  (void)state;
  ordo_ctx *ctx = ctx_make(1, 1, 0);
  support_blocker b;
  ordo__executor *db = NULL, *again = NULL;
  atomic_int runs;
  atomic_init(&runs, 0);
  support_blocker_init(&b, 0);
  assert_int_equal(ordo__executor_open(ctx, "close.db", &db), ORDO_OK);

  ordo_op *first = ordo__op_new(ctx, &b, NULL);
  assert_int_equal(ordo__op_add_stage_on(first, db, support_blocker_stage), ORDO_OK);
  ordo__op_start(first);
  support_latch_wait(&b.started);
  ordo_op *second = ordo__op_new(ctx, &runs, NULL);
  assert_int_equal(ordo__op_add_stage_on(second, db, stage_count), ORDO_OK);
  ordo__op_start(second);
  assert_int_equal(ordo_op_status(second), ORDO_E_PENDING);

  ordo__executor_close(db);
  probe_task p;
  probe_init(&p);
  assert_int_equal(ordo__executor_post(db, &p.task), ORDO_E_STATE);
  support_latch_destroy(&p.ran);
  support_gate_open(&b.gate);
  assert_int_equal(ordo_op_wait(first, -1), ORDO_OK);
  assert_int_equal(ordo_op_wait(second, -1), ORDO_OK);
  assert_int_equal(atomic_load(&runs), 1);
  ordo_op_release(first);
  ordo_op_release(second);

  /* Open again (the parked executor may be reused); close from its own
   * thread. */
  assert_int_equal(ordo__executor_open(ctx, "again.db", &again), ORDO_OK);
  ordo_op *op = ordo__op_new(ctx, again, NULL);
  assert_int_equal(ordo__op_add_stage_on(op, again, stage_close_own), ORDO_OK);
  ordo__op_start(op);
  assert_int_equal(ordo_op_wait(op, -1), ORDO_OK);
  ordo_op_release(op);
  probe_init(&p);
  assert_int_equal(ordo__executor_post(again, &p.task), ORDO_E_STATE);
  support_latch_destroy(&p.ran);

  ordo_ctx_free(ctx);
  support_blocker_destroy(&b);
  assert_int_equal(support_take_failures(), 0);
}

/* A stage that appends the next stage while it runs. */
static int grow_stage(ordo_op *op, void *arg) {
  (void)arg;
  chain_enter(op, 1);
  SUPPORT_CHECK(ordo__op_add_stage(op, ORDO_CLASS_HEAVY, chain_stage3) == ORDO_OK);
  return ORDO_OK;
}

static void test_chain_grow_and_invalid(void **state) {
  (void)state;
  ordo_ctx *ctx = ctx_make(1, 1, 0);
  chain_log log = {.ctx = ctx};
  atomic_init(&log.freed, 0);

  ordo_op *op = chain_new(ctx, &log);
  assert_int_equal(ordo__op_add_stage(op, ORDO_CLASS_CHEAP, grow_stage), ORDO_OK);
  assert_int_equal(ordo__op_add_stage(op, ORDO_CLASS_COUNT, chain_stage2),
                   ORDO_E_INVAL);
  ordo__op_start(op);
  assert_int_equal(ordo_op_wait(op, -1), ORDO_OK);
  assert_int_equal(log.n, 2);
  assert_int_equal(log.order[1], 3);
  assert_string_equal(ordo_op_result(op), "{\"stages\":2}");
  ordo_op_release(op);

  /* No stages: finished at once with ORDO_E_INVAL; its state is freed. */
  op = chain_new(ctx, &log);
  assert_ptr_equal(ordo__op_start(op), op);
  assert_int_equal(ordo_op_status(op), ORDO_E_INVAL);
  ordo_op_release(op);

  /* ordo_submit with a bad class: a finished op, never NULL. */
  op = ordo_submit(ctx, ORDO_CLASS_COUNT, stage_ok, NULL);
  assert_non_null(op);
  assert_int_equal(ordo_op_status(op), ORDO_E_INVAL);
  ordo_op_release(op);
  op = ordo_submit(ctx, (ordo_class)-1, stage_ok, NULL);
  assert_non_null(op);
  assert_int_equal(ordo_op_status(op), ORDO_E_INVAL);
  ordo_op_release(op);

  ordo_ctx_free(ctx);
  assert_int_equal(atomic_load(&log.freed), 2);
  assert_int_equal(support_take_failures(), 0);
}

/* ASYNC: stage 1 hands the op to a thread outside the runtime, which
 * resumes it (or fails it); stage 2 runs only after a successful resume. */
static int async_stage(ordo_op *op, void *arg) {
  (void)arg;
  chain_log *log = chain_enter(op, 1);
  log->async_op = op;
  support_latch_count_down(log->async_handoff);
  return ORDO__STAGE_ASYNC;
}

static void *resumer_thread(void *arg) {
  chain_log *log = arg;
  support_latch_wait(log->async_handoff);
  SUPPORT_CHECK(!ordo__on_runtime_thread());
  if (log->resume_status == ORDO_E_STORAGE)
    ordo__op_fail(log->async_op, ORDO_E_STORAGE, "backend said %s", "no");
  else
    ordo__op_resume(log->async_op, log->resume_status);
  return NULL;
}

/* log must outlive the context: the op frees its state (which points at
 * log) when it finishes, possibly after ordo_op_wait has returned. */
static void run_async(ordo_ctx *ctx, chain_log *log, support_latch *handoff,
                      int resume_status, ordo_stage_fn second, int want_status,
                      int want_stages) {
  pthread_t resumer;
  memset(log, 0, sizeof *log);
  log->ctx = ctx;
  log->resume_status = resume_status;
  atomic_init(&log->freed, 0);
  support_latch_init(handoff, 1);
  log->async_handoff = handoff;

  assert_int_equal(pthread_create(&resumer, NULL, resumer_thread, log), 0);
  ordo_op *op = chain_new(ctx, log);
  assert_int_equal(ordo__op_add_stage(op, ORDO_CLASS_CHEAP, async_stage), ORDO_OK);
  assert_int_equal(ordo__op_add_stage(op, ORDO_CLASS_HEAVY, second), ORDO_OK);
  ordo__op_start(op);
  assert_int_equal(ordo_op_wait(op, -1), want_status);
  assert_int_equal(pthread_join(resumer, NULL), 0);
  assert_int_equal(log->n, want_stages);
  if (want_status == ORDO_OK)
    assert_string_equal(ordo_op_result(op), "{\"stages\":2}");
  if (want_stages == 2 && want_status == ORDO_E_IO)
    assert_string_equal(ordo_op_message(op), "stage 2 failed");
  if (resume_status == ORDO_E_STORAGE)
    assert_string_equal(ordo_op_message(op), "backend said no");
  ordo_op_release(op);
}

/* A second stage that finishes its op itself with ordo__op_fail. */
static int chain_stage_fail(ordo_op *op, void *arg) {
  (void)arg;
  chain_enter(op, 4);
  ordo__op_fail(op, ORDO_E_IO, "stage %d failed", 2);
  return ORDO_E_IO;
}

#define ASYNC_RUNS 40

static void test_async_resume(void **state) {
  (void)state;
  ordo_ctx *ctx = ctx_make(1, 1, 0);
  chain_log logs[ASYNC_RUNS];
  support_latch handoffs[ASYNC_RUNS];
  run_async(ctx, &logs[0], &handoffs[0], ORDO_OK, chain_stage3, ORDO_OK, 2);
  run_async(ctx, &logs[1], &handoffs[1], ORDO_E_IO, chain_stage3, ORDO_E_IO, 1);
  run_async(ctx, &logs[2], &handoffs[2], ORDO_E_STORAGE, chain_stage3,
            ORDO_E_STORAGE, 1);
  /* Resumed (maybe before the ASYNC stage has returned) into a stage that
   * fails the op from inside: its state must be freed exactly once. */
  for (int i = 3; i < ASYNC_RUNS; i++)
    run_async(ctx, &logs[i], &handoffs[i], ORDO_OK, chain_stage_fail, ORDO_E_IO,
              2);
  ordo_ctx_free(ctx);
  for (int i = 0; i < ASYNC_RUNS; i++) {
    assert_int_equal(atomic_load(&logs[i].freed), 1);
    support_latch_destroy(&handoffs[i]);
  }
  assert_int_equal(support_take_failures(), 0);
}

/* ordo__op_fail from inside a stage: the op finishes with that status and
 * message whatever the stage then returns. */
static int stage_op_fail(ordo_op *op, void *arg) {
  (void)arg;
  ordo__op_fail(op, ORDO_E_STORAGE, "row %d missing", 7);
  return ORDO_E_STORAGE;
}

static int stage_op_fail_null(ordo_op *op, void *arg) {
  (void)arg;
  ordo__op_fail(op, ORDO_E_CRYPTO, NULL);
  return ORDO_E_CRYPTO;
}

static void test_op_fail_message(void **state) {
  (void)state;
  ordo_ctx *ctx = ctx_make(1, 1, 0);
  ordo_op *op = ordo_submit(ctx, ORDO_CLASS_CHEAP, stage_op_fail, NULL);
  assert_int_equal(ordo_op_wait(op, -1), ORDO_E_STORAGE);
  assert_string_equal(ordo_op_message(op), "row 7 missing");
  ordo_op_release(op);

  op = ordo_submit(ctx, ORDO_CLASS_HEAVY, stage_op_fail_null, NULL);
  assert_int_equal(ordo_op_wait(op, -1), ORDO_E_CRYPTO);
  assert_string_equal(ordo_op_message(op), "");
  ordo_op_release(op);
  ordo_ctx_free(ctx);
  assert_int_equal(support_take_failures(), 0);
}

/* ------------------------------------------------------------------------ */
/* Cancellation                                                              */
/* ------------------------------------------------------------------------ */

static void test_cancel_queued(void **state) {
  (void)state;
  ordo_ctx *ctx = ctx_make(1, 1, 0);
  support_blocker b;
  support_latch done;
  cb_rec rec;
  atomic_int runs;
  atomic_init(&runs, 0);
  support_blocker_init(&b, 0);
  support_latch_init(&done, 1);

  ordo_op *first = ordo_submit(ctx, ORDO_CLASS_HEAVY, support_blocker_stage, &b);
  support_latch_wait(&b.started); /* the only heavy thread is now busy */
  ordo_op *second = ordo_submit(ctx, ORDO_CLASS_HEAVY, stage_count, &runs);
  cb_rec_init(&rec, second, &done);
  assert_int_equal(ordo_op_then(second, record_cb, &rec), ORDO_OK);
  assert_int_equal(ordo_op_status(second), ORDO_E_PENDING);

  assert_int_equal(ordo_op_cancel(second), ORDO_OK);
  /* Finished before ordo_op_cancel returned. */
  assert_int_equal(ordo_op_status(second), ORDO_E_CANCELED);
  assert_int_equal(ordo_op_wait(second, 0), ORDO_E_CANCELED);
  assert_int_equal(ordo_op_cancel(second), ORDO_E_STATE);
  support_latch_wait(&done);

  support_gate_open(&b.gate);
  assert_int_equal(ordo_op_wait(first, -1), ORDO_OK);
  ordo_op_release(first);
  ordo_op_release(second);
  ordo_ctx_free(ctx);

  assert_int_equal(atomic_load(&runs), 0);
  assert_int_equal(atomic_load(&rec.calls), 1);
  assert_int_equal(atomic_load(&rec.status), ORDO_E_CANCELED);
  assert_int_equal(atomic_load(&rec.on_runtime), 1);
  support_latch_destroy(&done);
  support_blocker_destroy(&b);
  assert_int_equal(support_take_failures(), 0);
}

static void test_cancel_running(void **state) {
  (void)state;
  ordo_ctx *ctx = ctx_make(1, 1, 0);
  support_blocker b;
  support_blocker_init(&b, 1);

  ordo_op *op = ordo_submit(ctx, ORDO_CLASS_HEAVY, support_blocker_stage, &b);
  support_latch_wait(&b.started);
  assert_int_equal(ordo_op_cancel(op), ORDO_E_BUSY);
  support_gate_poke(&b.gate); /* the stage re-checks ordo_op_cancelled() */
  assert_int_equal(ordo_op_wait(op, -1), ORDO_E_CANCELED);
  assert_int_equal(ordo_op_status(op), ORDO_E_CANCELED);
  assert_int_equal(ordo_op_cancel(op), ORDO_E_STATE);
  ordo_op_release(op);

  /* The heavy thread is free again. */
  op = ordo_submit(ctx, ORDO_CLASS_HEAVY, stage_ok, NULL);
  assert_int_equal(ordo_op_wait(op, -1), ORDO_OK);
  ordo_op_release(op);

  ordo_ctx_free(ctx);
  support_blocker_destroy(&b);
  assert_int_equal(support_take_failures(), 0);
}

static void test_cancel_finished(void **state) {
  (void)state;
  ordo_ctx *ctx = ctx_make(1, 1, 0);
  ordo_op *op = ordo_submit(ctx, ORDO_CLASS_CHEAP, stage_ok, NULL);
  assert_int_equal(ordo_op_wait(op, -1), ORDO_OK);
  assert_int_equal(ordo_op_cancel(op), ORDO_E_STATE);
  assert_int_equal(ordo_op_status(op), ORDO_OK);
  ordo_op_release(op);

  /* Refused at admission (bad class): also already finished. */
  op = ordo_submit(ctx, ORDO_CLASS_COUNT, stage_ok, NULL);
  assert_int_equal(ordo_op_cancel(op), ORDO_E_STATE);
  ordo_op_release(op);
  ordo_ctx_free(ctx);
  assert_int_equal(support_take_failures(), 0);
}

/* Cancel racing with the runtime picking the op up and finishing it: every
 * answer must agree with what happened, and every op completes once. */
#define RACE_OPS 5000

typedef struct race_slot {
  atomic_int ran;
  atomic_int done;
  atomic_int cb_status;
  support_latch *all_done;
} race_slot;

static int race_stage(ordo_op *op, void *arg) {
  race_slot *s = arg;
  (void)op;
  atomic_fetch_add(&s->ran, 1);
  return ORDO_OK;
}

static void race_cb(ordo_op *op, void *userdata) {
  race_slot *s = userdata;
  SUPPORT_CHECK(ordo__on_runtime_thread());
  atomic_store(&s->cb_status, ordo_op_status(op));
  atomic_fetch_add(&s->done, 1);
  support_latch_count_down(s->all_done);
}

static void test_cancel_race(void **state) {
  (void)state;
  ordo_ctx *ctx = ctx_make(2, 1, 1u << 20);
  race_slot *slots = calloc(RACE_OPS, sizeof *slots);
  int *cancel_rc = calloc(RACE_OPS, sizeof *cancel_rc);
  support_latch all_done;
  int seen[3] = {0, 0, 0}; /* OK, BUSY, STATE */
  assert_non_null(slots);
  assert_non_null(cancel_rc);
  support_latch_init(&all_done, RACE_OPS);

  for (int i = 0; i < RACE_OPS; i++) {
    race_slot *s = &slots[i];
    atomic_init(&s->ran, 0);
    atomic_init(&s->done, 0);
    atomic_init(&s->cb_status, -1);
    s->all_done = &all_done;
    ordo_op *op = ordo_submit(ctx, ORDO_CLASS_CHEAP, race_stage, s);
    if (i % 2 == 0)
      assert_int_equal(ordo_op_then(op, race_cb, s), ORDO_OK);
    if (i % 4 == 1)
      sched_yield(); /* let the workers catch up now and then */
    cancel_rc[i] = ordo_op_cancel(op);
    if (cancel_rc[i] == ORDO_OK)
      assert_int_equal(ordo_op_status(op), ORDO_E_CANCELED);
    if (i % 2 == 1)
      assert_int_equal(ordo_op_then(op, race_cb, s), ORDO_OK);
    ordo_op_release(op);
  }
  support_latch_wait(&all_done);
  ordo_ctx_free(ctx);

  int bad = 0;
  for (int i = 0; i < RACE_OPS; i++) {
    int ran = atomic_load(&slots[i].ran);
    int st = atomic_load(&slots[i].cb_status);
    int rc = cancel_rc[i];
    if (atomic_load(&slots[i].done) != 1 || ran > 1 ||
        (rc != ORDO_OK && rc != ORDO_E_BUSY && rc != ORDO_E_STATE) ||
        (rc == ORDO_OK && (ran != 0 || st != ORDO_E_CANCELED)) ||
        (rc == ORDO_E_STATE && st != ORDO_OK) ||
        (st == ORDO_OK) != (ran == 1) ||
        (st != ORDO_OK && st != ORDO_E_CANCELED)) {
      print_error("op %d: cancel %s, stage ran %d, %d callbacks, final %s\n", i,
                  ordo_errname(rc), ran, atomic_load(&slots[i].done),
                  ordo_errname(st));
      bad++;
    }
    seen[rc == ORDO_OK ? 0 : rc == ORDO_E_BUSY ? 1 : 2]++;
  }
  print_message("cancel answers: %d OK, %d BUSY, %d STATE\n", seen[0], seen[1],
                seen[2]);
  support_latch_destroy(&all_done);
  free(cancel_rc);
  free(slots);
  assert_int_equal(bad, 0);
  assert_int_equal(support_take_failures(), 0);
}

/* A stage that ignores the cancel request and returns ORDO_OK: the op stops
 * at the stage boundary, its next stage never runs. */
static int stage_blocker_then_ok(ordo_op *op, void *arg) {
  (void)arg;
  chain_log *log = chain_enter(op, 1);
  support_latch_count_down(&log->blocker->started);
  support_gate_wait(&log->blocker->gate);
  return ORDO_OK;
}

static void test_cancel_at_stage_boundary(void **state) {
  (void)state;
  ordo_ctx *ctx = ctx_make(1, 1, 0);
  support_blocker b;
  chain_log log = {.ctx = ctx};
  atomic_init(&log.freed, 0);
  support_blocker_init(&b, 0);
  log.blocker = &b;

  ordo_op *op = chain_new(ctx, &log);
  assert_int_equal(ordo__op_add_stage(op, ORDO_CLASS_HEAVY, stage_blocker_then_ok),
                   ORDO_OK);
  assert_int_equal(ordo__op_add_stage(op, ORDO_CLASS_CHEAP, chain_stage2), ORDO_OK);
  ordo__op_start(op);
  support_latch_wait(&b.started);
  assert_int_equal(ordo_op_cancel(op), ORDO_E_BUSY);
  support_gate_open(&b.gate);
  assert_int_equal(ordo_op_wait(op, -1), ORDO_E_CANCELED);
  ordo_op_release(op);
  ordo_ctx_free(ctx);

  assert_int_equal(log.n, 1); /* stage 2 never ran */
  assert_int_equal(atomic_load(&log.freed), 1);
  support_blocker_destroy(&b);
  assert_int_equal(support_take_failures(), 0);
}

/* An op whose first stage is done and whose second is queued behind a busy
 * heavy thread: cancel removes the queued stage. */
static void test_cancel_queued_later_stage(void **state) {
  (void)state;
  ordo_ctx *ctx = ctx_make(1, 1, 0);
  support_blocker b;
  chain_log log = {.ctx = ctx};
  atomic_init(&log.freed, 0);
  support_blocker_init(&b, 0);

  ordo_op *blocked = ordo_submit(ctx, ORDO_CLASS_HEAVY, support_blocker_stage, &b);
  support_latch_wait(&b.started);
  ordo_op *op = chain_new(ctx, &log);
  assert_int_equal(ordo__op_add_stage(op, ORDO_CLASS_CHEAP, chain_stage1), ORDO_OK);
  assert_int_equal(ordo__op_add_stage(op, ORDO_CLASS_HEAVY, chain_stage2), ORDO_OK);
  ordo__op_start(op);
  wait_queued(ctx, "heavy", 1, op);

  assert_int_equal(ordo_op_cancel(op), ORDO_OK);
  assert_int_equal(ordo_op_status(op), ORDO_E_CANCELED);
  support_gate_open(&b.gate);
  assert_int_equal(ordo_op_wait(blocked, -1), ORDO_OK);
  ordo_op_release(blocked);
  ordo_op_release(op);
  ordo_ctx_free(ctx);

  assert_int_equal(log.n, 1);
  assert_int_equal(atomic_load(&log.freed), 1);
  support_blocker_destroy(&b);
  assert_int_equal(support_take_failures(), 0);
}

/* ------------------------------------------------------------------------ */
/* Shutdown and several contexts                                             */
/* ------------------------------------------------------------------------ */

#define SHUTDOWN_QUEUED 1000

/* The blocked first op of the shutdown test. Once it sees the cancel request
 * it tries to start new work, which the shutting-down context refuses. */
typedef struct shutdown_probe {
  support_blocker blocker;
  ordo_ctx *ctx;
  int submit_status;
  int open_status;
} shutdown_probe;

static int stage_block_then_submit(ordo_op *op, void *arg) {
  shutdown_probe *p = arg;
  int rc = support_blocker_stage(op, &p->blocker);
  ordo_op *late = ordo_submit(p->ctx, ORDO_CLASS_CHEAP, stage_ok, NULL);
  p->submit_status = ordo_op_status(late);
  ordo_op_release(late);
  ordo__executor *ex = NULL;
  p->open_status = ordo__executor_open(p->ctx, "late.db", &ex);
  return rc;
}

static void test_shutdown_with_pending(void **state) {
  (void)state;
  ordo_ctx *ctx = ctx_make(1, 1, 0);
  shutdown_probe probe = {.ctx = ctx, .submit_status = -1, .open_status = -1};
  cb_rec rec0;
  cb_rec *recs = calloc(SHUTDOWN_QUEUED, sizeof *recs);
  ordo_op **ops = calloc(SHUTDOWN_QUEUED, sizeof *ops);
  atomic_int runs;
  assert_non_null(recs);
  assert_non_null(ops);
  atomic_init(&runs, 0);
  support_blocker_init(&probe.blocker, 1);

  ordo_op *first =
      ordo_submit(ctx, ORDO_CLASS_HEAVY, stage_block_then_submit, &probe);
  cb_rec_init(&rec0, first, NULL);
  assert_int_equal(ordo_op_then(first, record_cb, &rec0), ORDO_OK);
  support_latch_wait(&probe.blocker.started);
  for (int i = 0; i < SHUTDOWN_QUEUED; i++) {
    ops[i] = ordo_submit(ctx, ORDO_CLASS_HEAVY, stage_count, &runs);
    assert_int_equal(ordo_op_status(ops[i]), ORDO_E_PENDING);
    cb_rec_init(&recs[i], ops[i], NULL);
    assert_int_equal(ordo_op_then(ops[i], record_cb, &recs[i]), ORDO_OK);
  }

  /* The blocked stage never sees its gate open: it must notice the cancel
   * request that shutdown makes. */
  ordo_ctx_free(ctx);

  assert_int_equal(ordo_op_status(first), ORDO_E_CANCELED);
  assert_int_equal(atomic_load(&rec0.calls), 1);
  assert_int_equal(atomic_load(&runs), 0);
  assert_int_equal(probe.submit_status, ORDO_E_SHUTDOWN);
  assert_int_equal(probe.open_status, ORDO_E_SHUTDOWN);
  for (int i = 0; i < SHUTDOWN_QUEUED; i++) {
    if (ordo_op_status(ops[i]) != ORDO_E_CANCELED ||
        atomic_load(&recs[i].calls) != 1 ||
        atomic_load(&recs[i].status) != ORDO_E_CANCELED ||
        atomic_load(&recs[i].on_runtime) != 1)
      fail_msg("queued op %d: status %s, %d callbacks (saw %s, on runtime %d)",
               i, ordo_errname(ordo_op_status(ops[i])),
               atomic_load(&recs[i].calls),
               ordo_errname(atomic_load(&recs[i].status)),
               atomic_load(&recs[i].on_runtime));
    /* Still readable after the context is gone. */
    assert_int_equal(ordo_op_wait(ops[i], 0), ORDO_E_CANCELED);
    assert_null(ordo_op_result(ops[i]));
    assert_non_null(ordo_op_message(ops[i]));
    ordo_op_release(ops[i]);
  }
  ordo_op_release(first);
  support_blocker_destroy(&probe.blocker);
  free(ops);
  free(recs);
  assert_int_equal(support_take_failures(), 0);
}

/* arg = the context the stage must be running for. */
static int stage_check_ctx(ordo_op *op, void *arg) {
  SUPPORT_CHECK(ordo__op_ctx(op) == (ordo_ctx *)arg);
  return ORDO_OK;
}

static void run_two_contexts(int free_a_first) {
  ordo_ctx *a = ctx_make(1, 1, 0);
  ordo_ctx *b = ctx_make(1, 1, 0);
  ordo_op *ops[2][50];
  pthread_t ta, tb;

  for (int i = 0; i < 50; i++) {
    ops[0][i] = ordo_submit(a, (ordo_class)(i % 2), stage_check_ctx, a);
    ops[1][i] = ordo_submit(b, (ordo_class)(i % 2), stage_check_ctx, b);
  }
  for (int i = 0; i < 50; i++) {
    assert_int_equal(ordo_op_wait(ops[0][i], -1), ORDO_OK);
    assert_int_equal(ordo_op_wait(ops[1][i], -1), ORDO_OK);
    ordo_op_release(ops[0][i]);
    ordo_op_release(ops[1][i]);
  }
  /* Each context has its own threads. */
  ordo_op *oa = ordo_submit(a, ORDO_CLASS_CHEAP, stage_record_thread, &ta);
  ordo_op *ob = ordo_submit(b, ORDO_CLASS_CHEAP, stage_record_thread, &tb);
  assert_int_equal(ordo_op_wait(oa, -1), ORDO_OK);
  assert_int_equal(ordo_op_wait(ob, -1), ORDO_OK);
  assert_false(pthread_equal(ta, tb));
  ordo_op_release(oa);
  ordo_op_release(ob);

  ordo_ctx *gone = free_a_first ? a : b;
  ordo_ctx *left = free_a_first ? b : a;
  ordo_ctx_free(gone);
  for (int c = 0; c < ORDO_CLASS_COUNT; c++) {
    ordo_op *op = ordo_submit(left, (ordo_class)c, stage_check_ctx, left);
    assert_int_equal(ordo_op_wait(op, -1), ORDO_OK);
    ordo_op_release(op);
  }
  ordo_ctx_free(left);
}

static void test_two_contexts(void **state) {
  (void)state;
  run_two_contexts(1);
  run_two_contexts(0);
  assert_int_equal(support_take_failures(), 0);
}

/* ------------------------------------------------------------------------ */
/* Back-pressure and metrics                                                 */
/* ------------------------------------------------------------------------ */

static void test_back_pressure(void **state) {
  (void)state;
  ordo_ctx *ctx = ctx_make(1, 1, 4);
  support_blocker b;
  support_latch done;
  cb_rec rec;
  ordo_op *queued[4];
  atomic_int runs;
  atomic_init(&runs, 0);
  support_blocker_init(&b, 0);
  support_latch_init(&done, 1);

  ordo_op *first = ordo_submit(ctx, ORDO_CLASS_HEAVY, support_blocker_stage, &b);
  support_latch_wait(&b.started);
  assert_int_equal(support_metric(ctx, "heavy", "busy"), 1);
  for (int i = 0; i < 4; i++) {
    queued[i] = ordo_submit(ctx, ORDO_CLASS_HEAVY, stage_count, &runs);
    assert_int_equal(ordo_op_status(queued[i]), ORDO_E_PENDING);
  }
  assert_int_equal(support_metric(ctx, "heavy", "queue_depth"), 4);

  /* The 6th: 1 running + 4 queued, the queue is full. */
  ordo_op *refused = ordo_submit(ctx, ORDO_CLASS_HEAVY, stage_count, &runs);
  assert_non_null(refused);
  assert_int_equal(ordo_op_status(refused), ORDO_E_BUSY);
  assert_int_equal(ordo_op_wait(refused, 0), ORDO_E_BUSY);
  cb_rec_init(&rec, refused, &done);
  assert_int_equal(ordo_op_then(refused, record_cb, &rec), ORDO_OK);
  support_latch_wait(&done);
  assert_true(support_metric(ctx, "heavy", "rejected") >= 1);

  /* Another class has its own queue. */
  ordo_op *cheap = ordo_submit(ctx, ORDO_CLASS_CHEAP, stage_ok, NULL);
  assert_int_equal(ordo_op_wait(cheap, -1), ORDO_OK);
  ordo_op_release(cheap);

  support_gate_open(&b.gate);
  assert_int_equal(ordo_op_wait(first, -1), ORDO_OK);
  for (int i = 0; i < 4; i++) {
    assert_int_equal(ordo_op_wait(queued[i], -1), ORDO_OK);
    ordo_op_release(queued[i]);
  }
  ordo_op_release(first);
  ordo_op_release(refused);
  ordo_ctx_free(ctx);

  assert_int_equal(atomic_load(&runs), 4);
  assert_int_equal(atomic_load(&rec.calls), 1);
  assert_int_equal(atomic_load(&rec.status), ORDO_E_BUSY);
  support_latch_destroy(&done);
  support_blocker_destroy(&b);
  assert_int_equal(support_take_failures(), 0);
}

/* queue_limit applies to an op's first stage only. */
static void test_later_stage_not_refused(void **state) {
  (void)state;
  ordo_ctx *ctx = ctx_make(1, 1, 1);
  support_blocker b;
  chain_log log = {.ctx = ctx};
  atomic_int runs;
  atomic_init(&runs, 0);
  atomic_init(&log.freed, 0);
  support_blocker_init(&b, 0);

  ordo_op *first = ordo_submit(ctx, ORDO_CLASS_HEAVY, support_blocker_stage, &b);
  support_latch_wait(&b.started);
  ordo_op *queued = ordo_submit(ctx, ORDO_CLASS_HEAVY, stage_count, &runs);
  assert_int_equal(ordo_op_status(queued), ORDO_E_PENDING);
  ordo_op *refused = ordo_submit(ctx, ORDO_CLASS_HEAVY, stage_count, &runs);
  assert_int_equal(ordo_op_status(refused), ORDO_E_BUSY);

  /* Admitted on cheap; its heavy stage joins the full heavy queue. */
  ordo_op *op = chain_new(ctx, &log);
  assert_int_equal(ordo__op_add_stage(op, ORDO_CLASS_CHEAP, chain_stage1), ORDO_OK);
  assert_int_equal(ordo__op_add_stage(op, ORDO_CLASS_HEAVY, chain_stage3), ORDO_OK);
  ordo__op_start(op);
  wait_queued(ctx, "heavy", 2, op);

  support_gate_open(&b.gate);
  assert_int_equal(ordo_op_wait(op, -1), ORDO_OK);
  assert_int_equal(ordo_op_wait(queued, -1), ORDO_OK);
  assert_int_equal(ordo_op_wait(first, -1), ORDO_OK);
  assert_string_equal(ordo_op_result(op), "{\"stages\":2}");
  ordo_op_release(op);
  ordo_op_release(queued);
  ordo_op_release(refused);
  ordo_op_release(first);
  ordo_ctx_free(ctx);
  assert_int_equal(atomic_load(&runs), 1);
  assert_int_equal(atomic_load(&log.freed), 1);
  support_blocker_destroy(&b);
  assert_int_equal(support_take_failures(), 0);
}

static void check_hist(json_t *h, const char *cls, const char *name) {
  if (!json_is_object(h))
    fail_msg("classes.%s.%s is not an object", cls, name);
  static const char *keys[] = {"p50", "p99", "count", "sum_us"};
  for (size_t i = 0; i < 4; i++)
    if (!json_is_integer(json_object_get(h, keys[i])))
      fail_msg("classes.%s.%s.%s missing or not an integer", cls, name, keys[i]);
  json_t *buckets = json_object_get(h, "buckets");
  if (!json_is_array(buckets))
    fail_msg("classes.%s.%s.buckets is not an array", cls, name);
  json_int_t sum = 0;
  size_t i;
  json_t *v;
  json_array_foreach(buckets, i, v) {
    assert_true(json_is_integer(v));
    sum += json_integer_value(v);
  }
  /* Read while the context is idle: the buckets add up to the count. */
  assert_int_equal(sum, json_integer_value(json_object_get(h, "count")));
  assert_true(json_integer_value(json_object_get(h, "p50")) <=
              json_integer_value(json_object_get(h, "p99")));
  assert_true(json_integer_value(json_object_get(h, "sum_us")) >= 0);
}

/* classes.<cls> of a metrics snapshot, checked for every documented key. */
static json_t *check_class(json_t *root, const char *cls) {
  json_t *c = json_object_get(json_object_get(root, "classes"), cls);
  if (!json_is_object(c))
    fail_msg("classes.%s missing", cls);
  static const char *keys[] = {"threads", "queue_depth", "busy", "submitted",
                               "completed", "rejected"};
  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
    json_t *v = json_object_get(c, keys[i]);
    if (!json_is_integer(v) || json_integer_value(v) < 0)
      fail_msg("classes.%s.%s missing or not a count", cls, keys[i]);
  }
  check_hist(json_object_get(c, "wait_us"), cls, "wait_us");
  check_hist(json_object_get(c, "run_us"), cls, "run_us");
  return c;
}

static json_t *metrics_parse(ordo_ctx *ctx) {
  char *text = ordo_ctx_metrics_json(ctx);
  assert_non_null(text);
  json_error_t err;
  json_t *root = json_loads(text, 0, &err);
  if (root == NULL)
    fail_msg("metrics JSON does not parse: %s\n%s", err.text, text);
  free(text);
  return root;
}

static json_int_t jint(json_t *obj, const char *key) {
  return json_integer_value(json_object_get(obj, key));
}

static void test_metrics_json(void **state) {
  (void)state;
  const int n = 20;
  ordo_ctx *ctx = ctx_make(2, 1, 0);
  ordo_op *ops[20];

  json_t *root = metrics_parse(ctx);
  for (int c = 0; c < ORDO_CLASS_COUNT; c++)
    check_class(root, ordo_class_name((ordo_class)c));
  json_t *cheap = check_class(root, "cheap");
  assert_int_equal(jint(cheap, "threads"), 2);
  assert_int_equal(jint(check_class(root, "heavy"), "threads"), 1);
  assert_int_equal(jint(check_class(root, "net"), "threads"),
                   ordo_ctx_config(ctx)->net_threads);
  json_int_t completed0 = jint(cheap, "completed");
  json_int_t submitted0 = jint(cheap, "submitted");
  json_int_t runs0 = jint(json_object_get(cheap, "run_us"), "count");
  json_decref(root);

  for (int i = 0; i < n; i++)
    ops[i] = ordo_submit(ctx, ORDO_CLASS_CHEAP, stage_ok, NULL);
  for (int i = 0; i < n; i++) {
    assert_int_equal(ordo_op_wait(ops[i], -1), ORDO_OK);
    ordo_op_release(ops[i]);
  }
  /* The counters may be bumped just after the op is seen finished. */
  support_metric_wait_eq(ctx, "cheap", "busy", 0);
  while (support_metric(ctx, "cheap", "completed") < completed0 + n)
    sched_yield();

  root = metrics_parse(ctx);
  cheap = check_class(root, "cheap");
  assert_true(jint(cheap, "submitted") >= submitted0 + n);
  assert_true(jint(cheap, "completed") >= completed0 + n);
  assert_true(jint(json_object_get(cheap, "run_us"), "count") >= runs0 + n);
  {
    /* The sum of run times grows by at least what a stage sleeps. */
    json_int_t sum0 = jint(json_object_get(cheap, "run_us"), "sum_us");
    ordo_op *slow = ordo_submit(ctx, ORDO_CLASS_CHEAP, stage_sleep_20ms, NULL);
    assert_non_null(slow);
    assert_int_equal(ordo_op_wait(slow, -1), ORDO_OK);
    ordo_op_release(slow);
    json_decref(root);
    while (support_metric(ctx, "cheap", "completed") < completed0 + n + 1)
      sched_yield();
    root = metrics_parse(ctx);
    cheap = check_class(root, "cheap");
    assert_true(jint(json_object_get(cheap, "run_us"), "sum_us") >=
                sum0 + 20000);
  }
  assert_true(jint(json_object_get(cheap, "wait_us"), "count") >= n);
  assert_int_equal(jint(cheap, "queue_depth"), 0);
  assert_int_equal(jint(cheap, "rejected"), 0);
  json_decref(root);
  ordo_ctx_free(ctx);
  assert_int_equal(support_take_failures(), 0);
}

/* ------------------------------------------------------------------------ */
/* Blocking waits on runtime threads                                         */
/* ------------------------------------------------------------------------ */

typedef struct waiter {
  ordo_op *pending;  /* held at a gate */
  ordo_op *finished; /* finished ORDO_OK */
  int rc_block, rc_timed, rc_poll, rc_self, rc_finished;
  atomic_int rc_in_cb;
  support_latch *cb_done;
} waiter;

static int stage_waiter(ordo_op *op, void *arg) {
  waiter *w = arg;
  w->rc_block = ordo_op_wait(w->pending, -1);
  w->rc_timed = ordo_op_wait(w->pending, 50);
  w->rc_poll = ordo_op_wait(w->pending, 0);
  w->rc_self = ordo_op_wait(op, -1);
  w->rc_finished = ordo_op_wait(w->finished, -1);
  return ORDO_OK;
}

static void waiter_cb(ordo_op *op, void *userdata) {
  waiter *w = userdata;
  (void)op;
  atomic_store(&w->rc_in_cb, ordo_op_wait(w->pending, -1));
  support_latch_count_down(w->cb_done);
}

static void test_wait_on_runtime_thread(void **state) {
  (void)state;
  ordo_ctx *ctx = ctx_make(2, 1, 0);
  support_blocker b;
  support_latch cb_done;
  waiter w;
  memset(&w, 0, sizeof w);
  support_blocker_init(&b, 0);
  support_latch_init(&cb_done, 1);
  atomic_init(&w.rc_in_cb, -1);
  w.cb_done = &cb_done;

  w.pending = ordo_submit(ctx, ORDO_CLASS_HEAVY, support_blocker_stage, &b);
  support_latch_wait(&b.started);
  w.finished = ordo_submit(ctx, ORDO_CLASS_CHEAP, stage_ok, NULL);
  assert_int_equal(ordo_op_wait(w.finished, -1), ORDO_OK);

  /* From the test thread: a poll and a short wait time out. */
  assert_int_equal(ordo_op_wait(w.pending, 0), ORDO_E_TIMEOUT);
  assert_int_equal(ordo_op_wait(w.pending, 1), ORDO_E_TIMEOUT);

  ordo_op *op = ordo_submit(ctx, ORDO_CLASS_CHEAP, stage_waiter, &w);
  assert_int_equal(ordo_op_wait(op, -1), ORDO_OK);
  assert_int_equal(w.rc_block, ORDO_E_WOULD_DEADLOCK);
  assert_int_equal(w.rc_timed, ORDO_E_WOULD_DEADLOCK);
  assert_int_equal(w.rc_poll, ORDO_E_TIMEOUT);
  assert_int_equal(w.rc_self, ORDO_E_WOULD_DEADLOCK);
  assert_int_equal(w.rc_finished, ORDO_OK);
  ordo_op_release(op);

  /* Inside a callback too. */
  assert_int_equal(ordo_op_then(w.finished, waiter_cb, &w), ORDO_OK);
  support_latch_wait(&cb_done);
  assert_int_equal(atomic_load(&w.rc_in_cb), ORDO_E_WOULD_DEADLOCK);

  support_gate_open(&b.gate);
  assert_int_equal(ordo_op_wait(w.pending, -1), ORDO_OK);
  ordo_op_release(w.pending);
  ordo_op_release(w.finished);
  ordo_ctx_free(ctx);
  support_latch_destroy(&cb_done);
  support_blocker_destroy(&b);
  assert_int_equal(support_take_failures(), 0);
}

/* ------------------------------------------------------------------------ */
/* Results, errors, class names                                              */
/* ------------------------------------------------------------------------ */

static int stage_bytes(ordo_op *op, void *arg) {
  (void)arg;
  unsigned char buf[256];
  for (int i = 0; i < 256; i++)
    buf[i] = (unsigned char)(255 - i);
  SUPPORT_CHECK(ordo_op_set_result_bytes(op, "first", 5) == ORDO_OK);
  SUPPORT_CHECK(ordo_op_set_result_bytes(op, buf, sizeof buf) == ORDO_OK);
  SUPPORT_CHECK(ordo_op_set_result(op, "[\"also json\"]") == ORDO_OK);
  return ORDO_OK;
}

static void test_result_bytes(void **state) {
  (void)state;
  ordo_ctx *ctx = ctx_make(1, 1, 0);
  support_blocker b;
  support_blocker_init(&b, 0);
  const unsigned char *data = NULL;
  size_t len = 0;

  /* Pending: no result yet. */
  ordo_op *op = ordo_submit(ctx, ORDO_CLASS_HEAVY, support_blocker_stage, &b);
  support_latch_wait(&b.started);
  assert_int_equal(ordo_op_result_bytes(op, &data, &len), ORDO_E_PENDING);
  assert_null(ordo_op_result(op));
  assert_string_equal(ordo_op_message(op), "");
  support_gate_open(&b.gate);
  assert_int_equal(ordo_op_wait(op, -1), ORDO_OK);
  assert_int_equal(ordo_op_result_bytes(op, &data, &len), ORDO_E_NOT_FOUND);
  ordo_op_release(op);

  op = ordo_submit(ctx, ORDO_CLASS_CHEAP, stage_bytes, NULL);
  assert_int_equal(ordo_op_wait(op, -1), ORDO_OK);
  assert_int_equal(ordo_op_result_bytes(op, &data, &len), ORDO_OK);
  assert_int_equal(len, 256);
  for (int i = 0; i < 256; i++)
    assert_int_equal(data[i], 255 - i);
  assert_string_equal(ordo_op_result(op), "[\"also json\"]");
  ordo_op_release(op);
  ordo_ctx_free(ctx);
  support_blocker_destroy(&b);
  assert_int_equal(support_take_failures(), 0);
}

static void test_errors_and_names(void **state) {
  (void)state;
#define CHECK_ERR(name, value, text)                                          \
  assert_string_equal(ordo_strerror(value), text);                            \
  assert_string_equal(ordo_errname(value), "ORDO_" #name);
  ORDO_ERR_MAP(CHECK_ERR)
#undef CHECK_ERR
  assert_int_equal(ORDO_OK, 0);
  assert_string_equal(ordo_errname(ORDO_E_BUSY), "ORDO_E_BUSY");
  static const int unknown[] = {1, -1, 99, 199, 299, 399, 999, -ORDO_E_SYSTEM,
                                2147483647, -2147483647 - 1};
  for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
    assert_string_equal(ordo_strerror(unknown[i]), "unknown error");
    assert_string_equal(ordo_errname(unknown[i]), "ORDO_E_UNKNOWN");
  }

  assert_string_equal(ordo_class_name(ORDO_CLASS_CHEAP), "cheap");
  assert_string_equal(ordo_class_name(ORDO_CLASS_HEAVY), "heavy");
  assert_string_equal(ordo_class_name(ORDO_CLASS_STORAGE), "storage");
  assert_string_equal(ordo_class_name(ORDO_CLASS_NET), "net");
  assert_null(ordo_class_name(ORDO_CLASS_COUNT));
  assert_null(ordo_class_name((ordo_class)-1));
}

/* ------------------------------------------------------------------------ */
/* Configuration                                                             */
/* ------------------------------------------------------------------------ */

static int cfg_equal(const ordo_config *a, const ordo_config *b) {
  return a->cheap_threads == b->cheap_threads &&
         a->heavy_threads == b->heavy_threads && a->heavy_nice == b->heavy_nice &&
         a->net_threads == b->net_threads && a->queue_limit == b->queue_limit &&
         a->single_executor == b->single_executor;
}

/* A config that differs from the defaults in every field. */
static void cfg_marked(ordo_config *cfg) {
  ordo_config_init(cfg);
  cfg->cheap_threads = 3;
  cfg->heavy_threads = 5;
  cfg->heavy_nice = 4;
  cfg->net_threads = 2;
  cfg->queue_limit = 77;
  cfg->single_executor = 0;
}

static void expect_last_error(int code, const char *name, const char *what) {
  const char *msg = ordo_last_error_message();
  if (ordo_last_error() != code)
    fail_msg("%s: ordo_last_error() is %s, want %s", what,
             ordo_errname(ordo_last_error()), ordo_errname(code));
  if (msg == NULL || (name != NULL && strstr(msg, name) == NULL))
    fail_msg("%s: message \"%s\" does not name %s", what, msg ? msg : "(null)",
             name);
}

/* ordo_config_from_json(json) fails with code, naming name; cfg unchanged. */
static void expect_json_error(const char *json, int code, const char *name) {
  ordo_config cfg, before;
  cfg_marked(&cfg);
  before = cfg;
  int rc = ordo_config_from_json(&cfg, json);
  if (rc != code)
    fail_msg("from_json(%s) returned %s, want %s", json, ordo_errname(rc),
             ordo_errname(code));
  expect_last_error(code, name, json);
  if (!cfg_equal(&cfg, &before))
    fail_msg("from_json(%s) changed cfg although it failed", json);
}

static void test_config_json_errors(void **state) {
  (void)state;
  /* Not JSON. */
  expect_json_error("", ORDO_E_JSON, NULL);
  expect_json_error("{", ORDO_E_JSON, NULL);
  expect_json_error("not json", ORDO_E_JSON, NULL);
  expect_json_error("{\"cheap_threads\": }", ORDO_E_JSON, NULL);
  expect_json_error("{\"cheap_threads\": 2,}", ORDO_E_JSON, NULL);
  expect_json_error("{\"cheap_threads\": 2} {}", ORDO_E_JSON, NULL);
  expect_json_error("{\"cheap_threads\": 2", ORDO_E_JSON, NULL);

  /* JSON, but not an object. */
  expect_json_error("[1, 2]", ORDO_E_CONFIG, NULL);
  expect_json_error("[]", ORDO_E_CONFIG, NULL);

  /* Unknown keys. */
  expect_json_error("{\"cheap_thread\": 2}", ORDO_E_CONFIG, "cheap_thread");
  expect_json_error("{\"heavy_threads\": 2, \"threads\": 1}", ORDO_E_CONFIG,
                    "threads");
  expect_json_error("{\"CHEAP_THREADS\": 2}", ORDO_E_CONFIG, "CHEAP_THREADS");

  /* Wrong types. */
  expect_json_error("{\"cheap_threads\": \"4\"}", ORDO_E_CONFIG, "cheap_threads");
  expect_json_error("{\"heavy_threads\": 2.5}", ORDO_E_CONFIG, "heavy_threads");
  expect_json_error("{\"net_threads\": true}", ORDO_E_CONFIG, "net_threads");
  expect_json_error("{\"queue_limit\": null}", ORDO_E_CONFIG, "queue_limit");
  expect_json_error("{\"heavy_nice\": [1]}", ORDO_E_CONFIG, "heavy_nice");
  expect_json_error("{\"single_executor\": \"yes\"}", ORDO_E_CONFIG,
                    "single_executor");
  expect_json_error("{\"single_executor\": {}}", ORDO_E_CONFIG, "single_executor");

  /* Out of range. */
  expect_json_error("{\"cheap_threads\": 0}", ORDO_E_CONFIG, "cheap_threads");
  expect_json_error("{\"cheap_threads\": 1025}", ORDO_E_CONFIG, "cheap_threads");
  expect_json_error("{\"cheap_threads\": 2000}", ORDO_E_CONFIG, "cheap_threads");
  expect_json_error("{\"cheap_threads\": -1}", ORDO_E_CONFIG, "cheap_threads");
  expect_json_error("{\"cheap_threads\": 4294967297}", ORDO_E_CONFIG,
                    "cheap_threads"); /* 2^32 + 1 must not wrap to 1 */
  expect_json_error("{\"heavy_threads\": 0}", ORDO_E_CONFIG, "heavy_threads");
  expect_json_error("{\"heavy_threads\": 1025}", ORDO_E_CONFIG, "heavy_threads");
  expect_json_error("{\"net_threads\": 0}", ORDO_E_CONFIG, "net_threads");
  expect_json_error("{\"heavy_nice\": -1}", ORDO_E_CONFIG, "heavy_nice");
  expect_json_error("{\"heavy_nice\": 20}", ORDO_E_CONFIG, "heavy_nice");
  expect_json_error("{\"queue_limit\": 0}", ORDO_E_CONFIG, "queue_limit");
  expect_json_error("{\"queue_limit\": 16777217}", ORDO_E_CONFIG, "queue_limit");

  /* A good key before a bad one is not applied either. */
  expect_json_error("{\"cheap_threads\": 7, \"heavy_nice\": 99}", ORDO_E_CONFIG,
                    "heavy_nice");
  expect_json_error("{\"queue_limit\": 9, \"bogus\": 1}", ORDO_E_CONFIG, "bogus");
}

static void test_config_json_scalar_text(void **state) {
  (void)state;
  /* A bare scalar is JSON text (RFC 8259) but not an object. Accept either
   * code; both leave cfg unchanged. */
  static const char *texts[] = {"42", "null", "true", "\"cheap_threads\""};
  for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
    ordo_config cfg, before;
    cfg_marked(&cfg);
    before = cfg;
    int rc = ordo_config_from_json(&cfg, texts[i]);
    if (rc != ORDO_E_CONFIG && rc != ORDO_E_JSON)
      fail_msg("from_json(%s) returned %s", texts[i], ordo_errname(rc));
    assert_int_equal(ordo_last_error(), rc);
    assert_true(cfg_equal(&cfg, &before));
  }
}

static void test_config_json_valid(void **state) {
  (void)state;
  ordo_config cfg, want;

  cfg_marked(&cfg);
  want = cfg;
  assert_int_equal(ordo_config_from_json(&cfg, "{}"), ORDO_OK);
  assert_true(cfg_equal(&cfg, &want));

  /* Upper bounds. */
  assert_int_equal(ordo_config_from_json(&cfg,
                                         "{\"cheap_threads\": 1024, "
                                         "\"heavy_threads\": 1024, "
                                         "\"heavy_nice\": 19, "
                                         "\"net_threads\": 1024, "
                                         "\"queue_limit\": 16777216, "
                                         "\"single_executor\": true}"),
                   ORDO_OK);
  assert_int_equal(cfg.cheap_threads, 1024);
  assert_int_equal(cfg.heavy_threads, 1024);
  assert_int_equal(cfg.heavy_nice, 19);
  assert_int_equal(cfg.net_threads, 1024);
  assert_int_equal(cfg.queue_limit, 16777216);
  assert_true(cfg.single_executor);
  assert_int_equal(ordo_config_validate(&cfg), ORDO_OK);

  /* Lower bounds; keys not named keep their value. */
  assert_int_equal(ordo_config_from_json(&cfg,
                                         "  {\"cheap_threads\": 1, \"heavy_nice\": 0,"
                                         " \"queue_limit\": 1,"
                                         " \"single_executor\": false}\n"),
                   ORDO_OK);
  assert_int_equal(cfg.cheap_threads, 1);
  assert_int_equal(cfg.heavy_threads, 1024);
  assert_int_equal(cfg.heavy_nice, 0);
  assert_int_equal(cfg.net_threads, 1024);
  assert_int_equal(cfg.queue_limit, 1);
  assert_false(cfg.single_executor);
  assert_int_equal(ordo_config_validate(&cfg), ORDO_OK);

  /* A successful call does not clear the thread's last error. */
  assert_int_equal(ordo_config_from_json(&cfg, "{\"nope\": 1}"), ORDO_E_CONFIG);
  assert_int_equal(ordo_config_from_json(&cfg, "{\"heavy_threads\": 2}"), ORDO_OK);
  assert_int_equal(ordo_last_error(), ORDO_E_CONFIG);
  assert_non_null(strstr(ordo_last_error_message(), "nope"));
}

static void test_config_defaults(void **state) {
  (void)state;
  ordo_config cfg;
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  if (cores < 1)
    cores = 1;
  if (cores > 1024)
    cores = 1024;
  ordo_config_init(&cfg);
  assert_int_equal(cfg.cheap_threads, cores);
  assert_int_equal(cfg.heavy_threads, cores / 2 > 1 ? cores / 2 : 1);
  assert_int_equal(cfg.heavy_nice, 10);
  assert_int_equal(cfg.net_threads, 1);
  assert_int_equal(cfg.queue_limit, 65536);
  assert_false(cfg.single_executor);
  assert_int_equal(ordo_config_validate(&cfg), ORDO_OK);
}

/* validate and ordo_ctx_new refuse a bad struct, naming the field. */
static void test_config_validate(void **state) {
  (void)state;
  static const struct {
    const char *field;
    size_t offset;
    long long value;
  } bad[] = {
      {"cheap_threads", offsetof(ordo_config, cheap_threads), 0},
      {"cheap_threads", offsetof(ordo_config, cheap_threads), 1025},
      {"heavy_threads", offsetof(ordo_config, heavy_threads), 0},
      {"heavy_threads", offsetof(ordo_config, heavy_threads), 1025},
      {"heavy_nice", offsetof(ordo_config, heavy_nice), -1},
      {"heavy_nice", offsetof(ordo_config, heavy_nice), 20},
      {"net_threads", offsetof(ordo_config, net_threads), 0},
      {"net_threads", offsetof(ordo_config, net_threads), 1025},
      {"queue_limit", offsetof(ordo_config, queue_limit), 0},
      {"queue_limit", offsetof(ordo_config, queue_limit), 16777217},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    ordo_config cfg;
    ordo_config_init(&cfg);
    cfg.cheap_threads = 1;
    cfg.heavy_threads = 1;
    if (strcmp(bad[i].field, "heavy_nice") == 0) {
      int v = (int)bad[i].value;
      memcpy((char *)&cfg + bad[i].offset, &v, sizeof v);
    } else {
      unsigned v = (unsigned)bad[i].value;
      memcpy((char *)&cfg + bad[i].offset, &v, sizeof v);
    }
    assert_int_equal(ordo_config_validate(&cfg), ORDO_E_CONFIG);
    expect_last_error(ORDO_E_CONFIG, bad[i].field, "ordo_config_validate");
    assert_null(ordo_ctx_new(&cfg));
    expect_last_error(ORDO_E_CONFIG, bad[i].field, "ordo_ctx_new");
  }
}

static const char *const env_names[] = {
    "ORDO_CHEAP_THREADS", "ORDO_HEAVY_THREADS", "ORDO_HEAVY_NICE",
    "ORDO_NET_THREADS",   "ORDO_QUEUE_LIMIT",   "ORDO_SINGLE_EXECUTOR"};

static void env_clear(void) {
  for (size_t i = 0; i < sizeof env_names / sizeof env_names[0]; i++)
    unsetenv(env_names[i]);
}

/* With name=value set (and whatever else is set), from_env fails naming
 * blame; cfg unchanged. */
static void expect_env_error(const char *name, const char *value,
                             const char *blame) {
  ordo_config cfg, before;
  char what[128];
  snprintf(what, sizeof what, "%s='%s'", name, value);
  assert_int_equal(setenv(name, value, 1), 0);
  cfg_marked(&cfg);
  before = cfg;
  int rc = ordo_config_from_env(&cfg);
  if (rc != ORDO_E_CONFIG)
    fail_msg("from_env with %s returned %s", what, ordo_errname(rc));
  expect_last_error(ORDO_E_CONFIG, blame, what);
  if (!cfg_equal(&cfg, &before))
    fail_msg("from_env with %s changed cfg although it failed", what);
  unsetenv(name);
}

static void test_config_env(void **state) {
  (void)state;
  ordo_config cfg, before;
  env_clear();

  /* Nothing set: nothing changes. */
  cfg_marked(&cfg);
  before = cfg;
  assert_int_equal(ordo_config_from_env(&cfg), ORDO_OK);
  assert_true(cfg_equal(&cfg, &before));

  static const char *bad_counts[] = {"abc", "0", "", "4abc", "-1", "1025",
                                     "99999999999999999999", "2.5"};
  for (size_t i = 0; i < sizeof bad_counts / sizeof bad_counts[0]; i++)
    expect_env_error("ORDO_CHEAP_THREADS", bad_counts[i], "ORDO_CHEAP_THREADS");
  expect_env_error("ORDO_HEAVY_THREADS", "0", "ORDO_HEAVY_THREADS");
  expect_env_error("ORDO_HEAVY_NICE", "20", "ORDO_HEAVY_NICE");
  expect_env_error("ORDO_HEAVY_NICE", "-1", "ORDO_HEAVY_NICE");
  expect_env_error("ORDO_NET_THREADS", "x", "ORDO_NET_THREADS");
  expect_env_error("ORDO_QUEUE_LIMIT", "0", "ORDO_QUEUE_LIMIT");
  expect_env_error("ORDO_QUEUE_LIMIT", "16777217", "ORDO_QUEUE_LIMIT");
  expect_env_error("ORDO_SINGLE_EXECUTOR", "maybe", "ORDO_SINGLE_EXECUTOR");

  /* A valid variable is not applied when another one is bad. */
  assert_int_equal(setenv("ORDO_HEAVY_THREADS", "9", 1), 0);
  expect_env_error("ORDO_CHEAP_THREADS", "abc", "ORDO_CHEAP_THREADS");
  env_clear();

  /* Valid values are applied. */
  setenv("ORDO_CHEAP_THREADS", "6", 1);
  setenv("ORDO_HEAVY_THREADS", "1024", 1);
  setenv("ORDO_HEAVY_NICE", "0", 1);
  setenv("ORDO_NET_THREADS", "3", 1);
  setenv("ORDO_QUEUE_LIMIT", "1", 1);
  setenv("ORDO_SINGLE_EXECUTOR", "1", 1);
  cfg_marked(&cfg);
  assert_int_equal(ordo_config_from_env(&cfg), ORDO_OK);
  assert_int_equal(cfg.cheap_threads, 6);
  assert_int_equal(cfg.heavy_threads, 1024);
  assert_int_equal(cfg.heavy_nice, 0);
  assert_int_equal(cfg.net_threads, 3);
  assert_int_equal(cfg.queue_limit, 1);
  assert_true(cfg.single_executor);
  setenv("ORDO_SINGLE_EXECUTOR", "0", 1);
  assert_int_equal(ordo_config_from_env(&cfg), ORDO_OK);
  assert_false(cfg.single_executor);
  setenv("ORDO_SINGLE_EXECUTOR", "true", 1);
  assert_int_equal(ordo_config_from_env(&cfg), ORDO_OK);
  assert_true(cfg.single_executor);
  setenv("ORDO_SINGLE_EXECUTOR", "false", 1);
  assert_int_equal(ordo_config_from_env(&cfg), ORDO_OK);
  assert_false(cfg.single_executor);
  env_clear();

  /* ordo_ctx_new(NULL) reads the environment. */
  setenv("ORDO_CHEAP_THREADS", "abc", 1);
  assert_null(ordo_ctx_new(NULL));
  expect_last_error(ORDO_E_CONFIG, "ORDO_CHEAP_THREADS", "ordo_ctx_new(NULL)");
  setenv("ORDO_CHEAP_THREADS", "2", 1);
  setenv("ORDO_HEAVY_THREADS", "1", 1);
  setenv("ORDO_QUEUE_LIMIT", "123", 1);
  ordo_ctx *ctx = ordo_ctx_new(NULL);
  env_clear();
  assert_non_null(ctx);
  assert_int_equal(ordo_ctx_config(ctx)->cheap_threads, 2);
  assert_int_equal(ordo_ctx_config(ctx)->heavy_threads, 1);
  assert_int_equal(ordo_ctx_config(ctx)->queue_limit, 123);
  assert_int_equal(ordo_ctx_config(ctx)->heavy_nice, 10);
  ordo_ctx_free(ctx);
}

static void test_ctx_config(void **state) {
  (void)state;
  ordo_config cfg;
  cfg_marked(&cfg);
  ordo_ctx *ctx = ordo_ctx_new(&cfg);
  assert_non_null(ctx);
  cfg.cheap_threads = 9; /* the context keeps its own copy */
  const ordo_config *in_force = ordo_ctx_config(ctx);
  assert_int_equal(in_force->cheap_threads, 3);
  assert_int_equal(in_force->heavy_threads, 5);
  assert_int_equal(in_force->heavy_nice, 4);
  assert_int_equal(in_force->net_threads, 2);
  assert_int_equal(in_force->queue_limit, 77);
  assert_false(in_force->single_executor);
  ordo_ctx_free(ctx);
}

typedef struct last_error_probe {
  int code;
  int had_key;
} last_error_probe;

static void *last_error_thread(void *arg) {
  last_error_probe *p = arg;
  ordo_config cfg;
  ordo_config_init(&cfg);
  ordo_config_from_json(&cfg, "{\"other_thread\": 1}");
  p->code = ordo_last_error();
  p->had_key = strstr(ordo_last_error_message(), "other_thread") != NULL;
  return NULL;
}

/* The last error belongs to the thread that made it. */
static void test_last_error_per_thread(void **state) {
  (void)state;
  ordo_config cfg;
  last_error_probe probe = {0, 0};
  ordo_config_init(&cfg);
  assert_int_equal(ordo_config_from_json(&cfg, "{"), ORDO_E_JSON);
  support_run_threads(1, last_error_thread, &probe, sizeof probe);
  assert_int_equal(probe.code, ORDO_E_CONFIG);
  assert_true(probe.had_key);
  assert_int_equal(ordo_last_error(), ORDO_E_JSON);
  assert_null(strstr(ordo_last_error_message(), "other_thread"));
}

/* ------------------------------------------------------------------------ */
/* Executor modes and priorities                                             */
/* ------------------------------------------------------------------------ */

static void test_single_executor(void **state) {
  (void)state;
  ordo_config cfg;
  ordo_config_init(&cfg);
  cfg.single_executor = 1;
  cfg.cheap_threads = 1;
  cfg.heavy_threads = 2;
  ordo_ctx *ctx = ordo_ctx_new(&cfg);
  assert_non_null(ctx);

  ordo__executor *shared = ordo__executor_of_class(ctx, ORDO_CLASS_CHEAP);
  assert_non_null(shared);
  for (int c = 0; c < ORDO_CLASS_COUNT; c++)
    assert_ptr_equal(ordo__executor_of_class(ctx, (ordo_class)c), shared);
  ordo__executor *db = NULL;
  assert_int_equal(ordo__executor_open(ctx, "single.db", &db), ORDO_OK);
  assert_ptr_equal(db, shared);

  pthread_t t[ORDO_CLASS_COUNT];
  for (int c = 0; c < ORDO_CLASS_COUNT; c++) {
    ordo_op *op = ordo_submit(ctx, (ordo_class)c, stage_record_thread, &t[c]);
    assert_int_equal(ordo_op_wait(op, -1), ORDO_OK);
    ordo_op_release(op);
  }
  for (int c = 1; c < ORDO_CLASS_COUNT; c++)
    assert_true(pthread_equal(t[0], t[c]));

  /* A module closing "its database" leaves the shared executor working. */
  ordo__executor_close(db);
  pthread_t after;
  ordo_op *op = ordo_submit(ctx, ORDO_CLASS_CHEAP, stage_record_thread, &after);
  assert_int_equal(ordo_op_wait(op, -1), ORDO_OK);
  assert_true(pthread_equal(after, t[0]));
  ordo_op_release(op);
  ordo_ctx_free(ctx);
}

/* arg = int *: the nice value of the thread the stage ran on. */
static int stage_nice(ordo_op *op, void *arg) {
  (void)op;
  errno = 0;
  *(int *)arg = getpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid));
  SUPPORT_CHECK(errno == 0);
  return ORDO_OK;
}

static void test_heavy_nice(void **state) {
  (void)state;
  ordo_config cfg;
  int base, heavy = -100, cheap = -100;
  errno = 0;
  base = getpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid));
  assert_int_equal(errno, 0);
  ordo_config_init(&cfg);
  cfg.cheap_threads = 1;
  cfg.heavy_threads = 1;
  cfg.heavy_nice = 7;
  ordo_ctx *ctx = ordo_ctx_new(&cfg);
  assert_non_null(ctx);
  ordo_op *op = ordo_submit(ctx, ORDO_CLASS_HEAVY, stage_nice, &heavy);
  assert_int_equal(ordo_op_wait(op, -1), ORDO_OK);
  ordo_op_release(op);
  op = ordo_submit(ctx, ORDO_CLASS_CHEAP, stage_nice, &cheap);
  assert_int_equal(ordo_op_wait(op, -1), ORDO_OK);
  ordo_op_release(op);
  ordo_ctx_free(ctx);

  assert_int_equal(cheap, base);
  /* Heavy threads run heavy_nice lower than the process (capped at 19). */
  assert_int_equal(heavy, base + 7 > 19 ? 19 : base + 7);
  assert_int_equal(support_take_failures(), 0);
}

/* ordo_ctx_metrics_json when jansson's allocations fail: at every point,
 * once or from there on, NULL and no crash (ASan: no double free). */
static void test_metrics_json_out_of_memory(void **state) {
  (void)state;
  ordo_ctx *ctx = ctx_make(1, 1, 0);
  support_jansson_fail_after(-1);
  char *text = ordo_ctx_metrics_json(ctx);
  long total = support_jansson_restore();
  assert_non_null(text);
  free(text);
  assert_true(total > 0);
  for (long n = 0; n <= total; n++) {
    for (int sticky = 0; sticky < 2; sticky++) {
      if (sticky)
        support_jansson_fail_after(n);
      else
        support_jansson_fail_at(n, -1);
      text = ordo_ctx_metrics_json(ctx);
      long failed = support_jansson_failures();
      support_jansson_restore();
      if (failed == 0 && text == NULL)
        fail_msg("no allocation failed, yet no metrics (n %ld)", n);
      /* Metrics that came back with nothing failed are whole. (With one
       * failure inside json_dumps, jansson 2.14 may drop an object key's
       * quote and still return text: its bug, not asserted here.) */
      if (text != NULL && failed > 0) {
        free(text);
      } else if (text != NULL) {
        json_t *root = json_loads(text, 0, NULL);
        free(text);
        assert_non_null(json_object_get(json_object_get(root, "classes"),
                                        "cheap"));
        json_decref(root);
      }
    }
  }
  ordo_ctx_free(ctx);
}

/*
 * A stage publishes its op (release) and returns ORDO__STAGE_ASYNC; another
 * thread takes it (acquire) and resumes it at once, while the test thread
 * asks the op to cancel. The resumer writes the op's task (the next stage)
 * while the canceller looks at it: whether the task is a queued stage must
 * be read under the executor's lock (TSan: no race on task.kind), and a
 * cancel that comes too late must not take a queued callback.
 */
typedef struct resume_race {
  atomic_uintptr_t parked; /* the op a stage handed over, or 0 */
  atomic_int stages;       /* publishing stages run */
  atomic_int stop;
  atomic_int callbacks;
} resume_race;

static int race_publish_stage(ordo_op *op, void *arg) {
  resume_race *r = arg;
  atomic_fetch_add(&r->stages, 1);
  atomic_store_explicit(&r->parked, (uintptr_t)op, memory_order_release);
  return ORDO__STAGE_ASYNC; /* op may be running its next stage already */
}

static int race_last_stage(ordo_op *op, void *arg) {
  (void)op;
  (void)arg;
  return ORDO_OK;
}

static void resume_race_cb(ordo_op *op, void *ud) {
  (void)op;
  atomic_fetch_add(&((resume_race *)ud)->callbacks, 1);
}

static void *race_resumer(void *arg) {
  resume_race *r = arg;
  while (!atomic_load(&r->stop)) {
    uintptr_t p = atomic_exchange_explicit(&r->parked, 0, memory_order_acquire);
    if (p != 0)
      ordo__op_resume((ordo_op *)p, ORDO_OK);
    else
      sched_yield();
  }
  return NULL;
}

static void test_resume_while_cancel(void **state) {
  (void)state;
  enum { ROUNDS = 3000 };
  ordo_ctx *ctx = ctx_make(2, 1, 0);
  resume_race r;
  pthread_t t;
  int canceled = 0;
  atomic_init(&r.parked, 0);
  atomic_init(&r.stages, 0);
  atomic_init(&r.stop, 0);
  atomic_init(&r.callbacks, 0);
  assert_int_equal(pthread_create(&t, NULL, race_resumer, &r), 0);
  for (int i = 0; i < ROUNDS; i++) {
    ordo_op *op = ordo__op_new(ctx, &r, NULL);
    assert_non_null(op);
    assert_int_equal(ordo__op_add_stage(op, ORDO_CLASS_CHEAP, race_publish_stage),
                     ORDO_OK);
    assert_int_equal(ordo__op_add_stage(op, ORDO_CLASS_CHEAP, race_last_stage),
                     ORDO_OK);
    assert_int_equal(ordo_op_then(op, resume_race_cb, &r), ORDO_OK);
    op = ordo__op_start(op);
    /* From the moment its stage runs: parked, resumed, next stage queued,
     * running, its callback queued, done. */
    while (atomic_load(&r.stages) == i)
      sched_yield();
    while (ordo_op_status(op) == ORDO_E_PENDING && ordo_op_cancel(op) == ORDO_E_BUSY)
      sched_yield();
    int rc = ordo_op_wait(op, -1);
    assert_true(rc == ORDO_OK || rc == ORDO_E_CANCELED);
    canceled += rc == ORDO_E_CANCELED;
    ordo_op_release(op);
  }
  atomic_store(&r.stop, 1);
  pthread_join(t, NULL);
  /* Every callback delivered, none taken off its queue by a late cancel
   * (ordo_ctx_free would wait for it forever). */
  ordo_ctx_free(ctx);
  assert_int_equal(atomic_load(&r.callbacks), ROUNDS);
  print_message("resume while cancel: %d of %d canceled\n", canceled, ROUNDS);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_metrics_json_out_of_memory),
      cmocka_unit_test(test_resume_while_cancel),
      cmocka_unit_test(test_op_wait),
      cmocka_unit_test(test_op_then),
      cmocka_unit_test(test_op_then_after_completion),
      cmocka_unit_test(test_op_fd),
      cmocka_unit_test(test_release_before_done),
      cmocka_unit_test(test_many_submitters),
      cmocka_unit_test(test_chain_cheap_storage_cheap),
      cmocka_unit_test(test_executor_close),
      cmocka_unit_test(test_chain_grow_and_invalid),
      cmocka_unit_test(test_async_resume),
      cmocka_unit_test(test_op_fail_message),
      cmocka_unit_test(test_cancel_queued),
      cmocka_unit_test(test_cancel_running),
      cmocka_unit_test(test_cancel_finished),
      cmocka_unit_test(test_cancel_race),
      cmocka_unit_test(test_cancel_at_stage_boundary),
      cmocka_unit_test(test_cancel_queued_later_stage),
      cmocka_unit_test(test_shutdown_with_pending),
      cmocka_unit_test(test_two_contexts),
      cmocka_unit_test(test_back_pressure),
      cmocka_unit_test(test_later_stage_not_refused),
      cmocka_unit_test(test_metrics_json),
      cmocka_unit_test(test_wait_on_runtime_thread),
      cmocka_unit_test(test_result_bytes),
      cmocka_unit_test(test_errors_and_names),
      cmocka_unit_test(test_config_json_errors),
      cmocka_unit_test(test_config_json_scalar_text),
      cmocka_unit_test(test_config_json_valid),
      cmocka_unit_test(test_config_defaults),
      cmocka_unit_test(test_config_validate),
      cmocka_unit_test(test_config_env),
      cmocka_unit_test(test_ctx_config),
      cmocka_unit_test(test_last_error_per_thread),
      cmocka_unit_test(test_single_executor),
      cmocka_unit_test(test_heavy_nice),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

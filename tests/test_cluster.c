/*
 * test_cluster.c — several instances on one PostgreSQL queue (src/cluster)
 * against a real server this test starts (tests/support/support_pg.h):
 * submission order under concurrent enqueues from three instances, the
 * share of leases, handover at close, fencing of a stale owner, and
 * failover when an instance is killed (a child process: this binary run
 * again as "hold-child").
 *
 * Each test has a queue of its own ("tq-PID-N"); leases are short (TTL
 * 1200 ms, a round every 300 ms) so that failover is seen in seconds.
 */
#include "cluster/cluster.h"
#include "support/support.h"
#include "support/support_pg.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <stddef.h>
#include <cmocka.h>

#define TTL_MS 1200u
#define RENEW_MS 300u

static support_pg g_pg;
static int g_test_no;
static char g_queue[64];
static char self_exe[4096];

static ordo_ctx *ctx_make(void) {
  ordo_config cfg;
  ordo_config_init(&cfg);
  cfg.cheap_threads = 2;
  cfg.heavy_threads = 1;
  ordo_ctx *ctx = ordo_ctx_new(&cfg);
  if (ctx == NULL)
    fail_msg("ordo_ctx_new: %s", ordo_last_error_message());
  return ctx;
}

static unsigned long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (unsigned long long)ts.tv_sec * 1000u +
         (unsigned long long)ts.tv_nsec / 1000000u;
}

static void sleep_ms(unsigned ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

typedef struct inst {
  ordo_ctx *ctx;
  ordo_cluster *cl;
} inst;

static int inst_open(inst *in, const char *url, const char *queue,
                     const char *id) {
  ordo_cluster_options o;
  in->ctx = ctx_make();
  ordo_cluster_options_init(&o);
  o.url = url;
  o.queue = queue;
  o.instance_id = id;
  o.ttl_ms = TTL_MS;
  o.renew_ms = RENEW_MS;
  o.journal.checkpoint_ms = -1;
  return ordo_cluster_open(in->ctx, &o, &in->cl);
}

static void inst_close(inst *in) {
  ordo_cluster_close(in->cl);
  ordo_ctx_free(in->ctx);
  in->cl = NULL;
  in->ctx = NULL;
}

static void inst_open_ok(inst *in, const char *id) {
  if (inst_open(in, g_pg.url, g_queue, id) != ORDO_OK)
    fail_msg("cluster open %s: %s", id, ordo_last_error_message());
}

static PGconn *db(void) {
  PGconn *c = PQconnectdb(g_pg.url);
  if (PQstatus(c) != CONNECTION_OK)
    fail_msg("connect: %s", PQerrorMessage(c));
  return c;
}

/* One integer from sql with $1 = the test's queue. */
static long long q_count(PGconn *c, const char *sql) {
  const char *v[1] = {g_queue};
  PGresult *r = PQexecParams(c, sql, 1, NULL, v, NULL, NULL, 0);
  if (PQresultStatus(r) != PGRES_TUPLES_OK)
    fail_msg("%s: %s", sql, PQerrorMessage(c));
  long long n = atoll(PQgetvalue(r, 0, 0));
  PQclear(r);
  return n;
}

static void enqueue_one(ordo_cluster *cl, const char *id, const char *svc,
                        const char *addr) {
  const char *w[1] = {addr};
  ordo_queue_batch_spec sp = {.id = id, .service = svc, .writes = w,
                              .nwrites = 1, .payload = "p", .payload_len = 1};
  ordo_journal_enqueued got;
  size_t bad;
  if (ordo_cluster_enqueue(cl, &sp, 1, &got, &bad) != ORDO_OK)
    fail_msg("enqueue %s: %s", id, ordo_last_error_message());
}

static size_t held(ordo_cluster *cl) {
  ordo_cluster_stats st;
  ordo_cluster_get_stats(cl, &st);
  return (size_t)st.held;
}

/* Wait (at most ms) until cond(ud) holds; whether it did. */
static int wait_for(int (*cond)(void *), void *ud, unsigned ms) {
  unsigned long long end = now_ms() + ms;
  while (!cond(ud)) {
    if (now_ms() > end)
      return 0;
    sleep_ms(20);
  }
  return 1;
}

static int fx_setup(void **state) {
  (void)state;
  g_test_no++;
  snprintf(g_queue, sizeof g_queue, "tq-%ld-%d", (long)getpid(), g_test_no);
  return 0;
}

/* ---- submission order --------------------------------------------------------- */

#define ORDER_WRITERS 3
#define ORDER_CALLS 60

typedef struct writer {
  inst *in;
  int no;
  int rc;
} writer;

static void *writer_main(void *arg) {
  writer *w = arg;
  char ids[3][64];
  for (int k = 0; k < ORDER_CALLS && w->rc == ORDO_OK; k++) {
    /* 1..3 batches a call: a call's batches take consecutive numbers. */
    size_t n = (size_t)(k % 3) + 1;
    ordo_queue_batch_spec sp[3];
    const char *wr[1] = {"addr"};
    ordo_journal_enqueued got[3];
    size_t bad;
    for (size_t i = 0; i < n; i++) {
      snprintf(ids[i], sizeof ids[i], "w%d-%d-%zu", w->no, k, i);
      sp[i] = (ordo_queue_batch_spec){.id = ids[i], .service = "s1",
                                      .writes = wr, .nwrites = 1};
    }
    w->rc = ordo_cluster_enqueue(w->in->cl, sp, n, got, &bad);
    for (size_t i = 1; i < n && w->rc == ORDO_OK; i++)
      if (got[i].seq != got[0].seq + i)
        w->rc = ORDO_E_STATE;
  }
  return NULL;
}

typedef struct observer {
  atomic_int stop;
  int polls, gaps;
  long long max_seen;
  char first_gap[160];
} observer;

/* What an owner would see: every poll must show the seqs 1..max with
 * none missing, or a batch would become visible behind a later one. */
static void *observer_main(void *arg) {
  observer *o = arg;
  PGconn *c = db();
  const char *v[1] = {g_queue};
  while (!atomic_load(&o->stop)) {
    PGresult *r = PQexecParams(c, "SELECT seq FROM ordo_cluster_batch WHERE"
                               " queue = $1 AND service = 's1' ORDER BY seq",
                               1, NULL, v, NULL, NULL, 0);
    if (PQresultStatus(r) == PGRES_TUPLES_OK) {
      for (int k = 0; k < PQntuples(r); k++) {
        long long s = atoll(PQgetvalue(r, k, 0));
        if (s != k + 1 && o->gaps++ == 0)
          snprintf(o->first_gap, sizeof o->first_gap, "poll %d: row %d has "
                   "seq %lld", o->polls, k, s);
        if (s > o->max_seen)
          o->max_seen = s;
      }
      o->polls++;
    }
    PQclear(r);
  }
  PQfinish(c);
  return NULL;
}

static int s1_owned_somewhere(void *ud) {
  inst *in = ud;
  size_t h = 0;
  for (int i = 0; i < ORDER_WRITERS; i++)
    h += held(in[i].cl);
  return h == 1;
}

static void test_cluster_order(void **state) {
  (void)state;
  inst in[ORDER_WRITERS];
  writer w[ORDER_WRITERS];
  pthread_t t[ORDER_WRITERS], ot;
  observer ob = {0};
  char id[8];
  for (int i = 0; i < ORDER_WRITERS; i++) {
    snprintf(id, sizeof id, "i%d", i);
    inst_open_ok(&in[i], id);
  }
  assert_int_equal(pthread_create(&ot, NULL, observer_main, &ob), 0);
  for (int i = 0; i < ORDER_WRITERS; i++) {
    w[i] = (writer){.in = &in[i], .no = i, .rc = ORDO_OK};
    assert_int_equal(pthread_create(&t[i], NULL, writer_main, &w[i]), 0);
  }
  for (int i = 0; i < ORDER_WRITERS; i++) {
    pthread_join(t[i], NULL);
    if (w[i].rc != ORDO_OK)
      fail_msg("writer %d: %s", i, ordo_strerror(w[i].rc));
  }
  atomic_store(&ob.stop, 1);
  pthread_join(ot, NULL);
  if (ob.gaps != 0)
    fail_msg("%d polls saw a batch before an earlier one: %s", ob.gaps,
             ob.first_gap);
  assert_true(ob.polls > 0);
  long long total = ORDER_WRITERS * (ORDER_CALLS / 3) * (1 + 2 + 3);
  PGconn *c = db();
  assert_int_equal(q_count(c, "SELECT count(*) FROM ordo_cluster_batch WHERE"
                              " queue = $1"), total);
  assert_int_equal(q_count(c, "SELECT max(seq) FROM ordo_cluster_batch WHERE"
                              " queue = $1"), total);
  /* One instance owns s1; its journal holds every batch, in seq order. */
  assert_true(wait_for(s1_owned_somewhere, in, 5000));
  ordo_cluster_shard *s = NULL;
  int owner = -1;
  for (int i = 0; i < ORDER_WRITERS && s == NULL; i++)
    if ((s = ordo_cluster_shard_get(in[i].cl, "s1")) != NULL)
      owner = i;
  assert_non_null(s);
  assert_int_equal(ordo_cluster_shard_pump(in[owner].cl, s), ORDO_OK);
  const char *v[1] = {g_queue};
  PGresult *r = PQexecParams(c, "SELECT id FROM ordo_cluster_batch WHERE"
                             " queue = $1 ORDER BY seq", 1, NULL, v, NULL,
                             NULL, 0);
  assert_int_equal(PQntuples(r), total);
  uint64_t prev = 0;
  for (int k = 0; k < PQntuples(r); k++) {
    ordo_queue_state st;
    uint64_t jseq = 0;
    if (ordo_journal_batch_status(ordo_cluster_shard_journal(s),
                                  PQgetvalue(r, k, 0), &st, &jseq,
                                  NULL) != ORDO_OK)
      fail_msg("batch %s not in the owner's journal", PQgetvalue(r, k, 0));
    if (jseq <= prev)
      fail_msg("batch %s has journal seq %llu after %llu", PQgetvalue(r, k, 0),
               (unsigned long long)jseq, (unsigned long long)prev);
    prev = jseq;
  }
  PQclear(r);
  assert_int_equal(q_count(c, "SELECT count(*) FROM ordo_cluster_batch WHERE"
                              " queue = $1 AND NOT moved"), 0);
  PQfinish(c);
  ordo_cluster_shard_put(s);
  for (int i = 0; i < ORDER_WRITERS; i++)
    inst_close(&in[i]);
}

/* ---- share and handover -------------------------------------------------------- */

typedef struct share_want {
  inst *in;
  int n;
  size_t each_max, total;
} share_want;

static int share_reached(void *ud) {
  share_want *sw = ud;
  size_t sum = 0;
  for (int i = 0; i < sw->n; i++) {
    size_t h = held(sw->in[i].cl);
    if (h > sw->each_max)
      return 0;
    sum += h;
  }
  return sum == sw->total;
}

static void test_cluster_share_and_handover(void **state) {
  (void)state;
  inst in[3];
  char svc[16], id[16];
  inst_open_ok(&in[0], "a");
  for (int k = 0; k < 9; k++) {
    snprintf(svc, sizeof svc, "svc%d", k);
    snprintf(id, sizeof id, "b%d", k);
    enqueue_one(in[0].cl, id, svc, "x");
  }
  share_want one = {in, 1, 9, 9};
  assert_true(wait_for(share_reached, &one, 5000));
  inst_open_ok(&in[1], "b");
  inst_open_ok(&in[2], "c");
  /* Three alive: 3 each, the first handing six over. */
  share_want three = {in, 3, 3, 9};
  if (!wait_for(share_reached, &three, 8000))
    fail_msg("share not reached: %zu %zu %zu", held(in[0].cl),
             held(in[1].cl), held(in[2].cl));
  /* A clean stop hands over at once: no TTL to wait out. */
  unsigned long long t0 = now_ms();
  inst_close(&in[0]);
  share_want two = {in + 1, 2, 5, 9};
  assert_true(wait_for(share_reached, &two, 5000));
  unsigned long long took = now_ms() - t0;
  ordo_cluster_stats st;
  ordo_cluster_get_stats(in[1].cl, &st);
  ordo_cluster_stats st2;
  ordo_cluster_get_stats(in[2].cl, &st2);
  /* Handed over, not taken over from an expired lease. */
  assert_int_equal(st.taken_over + st2.taken_over, 0);
  print_message("handover of 3 services after a clean stop: %llu ms\n", took);
  inst_close(&in[1]);
  inst_close(&in[2]);
}

/* ---- fencing ---------------------------------------------------------------------- */

static int lost_one(void *ud) {
  ordo_cluster_stats st;
  ordo_cluster_get_stats(ud, &st);
  return st.lost == 1 && st.held == 0;
}

static void test_cluster_fence(void **state) {
  (void)state;
  inst a;
  inst_open_ok(&a, "a");
  enqueue_one(a.cl, "F1", "fs", "x");
  share_want one = {&a, 1, 1, 1};
  assert_true(wait_for(share_reached, &one, 5000));
  ordo_cluster_shard *s = ordo_cluster_shard_get(a.cl, "fs");
  assert_non_null(s);
  uint64_t epoch = ordo_cluster_shard_epoch(s);
  ordo_journal *j = ordo_cluster_shard_journal(s);
  /* Another instance takes the lease over (as after a stall past TTL). */
  PGconn *c = db();
  const char *v[1] = {g_queue};
  PGresult *r = PQexecParams(c, "UPDATE ordo_lease SET owner = 'intruder',"
                             " epoch = epoch + 1 WHERE name = (SELECT lease"
                             " FROM ordo_cluster_seq WHERE queue = $1 AND"
                             " service = 'fs')", 1, NULL, v, NULL, NULL, 0);
  assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
  assert_string_equal(PQcmdTuples(r), "1");
  PQclear(r);
  /* The stale owner's write is refused by the database. */
  ordo_queue_batch_spec sp = {.id = "STALE", .service = "fs"};
  ordo_op *op = ordo_journal_enqueue(j, &sp);
  assert_non_null(op);
  int rc = ordo_op_wait(op, -1);
  assert_int_not_equal(rc, ORDO_OK);
  const char *msg = ordo_op_message(op);
  print_message("stale write (epoch %llu): %s: %s\n",
                (unsigned long long)epoch, ordo_strerror(rc),
                msg != NULL ? msg : "");
  assert_non_null(msg);
  assert_non_null(strstr(msg, "epoch"));
  ordo_op_release(op);
  /* And the owner stops the service at its next round. */
  assert_true(wait_for(lost_one, a.cl, 3000));
  assert_false(ordo_cluster_shard_live(s));
  ordo_cluster_shard_put(s);
  assert_int_equal(q_count(c, "SELECT count(*) FROM ordo_item i JOIN"
                              " ordo_store s ON s.id = i.store WHERE"
                              " s.name = 'cluster/' || $1 || '/fs' AND"
                              " i.value LIKE '%STALE%'::bytea"), 0);
  PQfinish(c);
  inst_close(&a);
}

/* ---- failover after kill -9 ----------------------------------------------------- */

/* The child: join as "victim", enqueue K batches into each of 4 services,
 * print "ready", and hold the leases until killed. */
static int hold_child(const char *url, const char *queue) {
  inst in;
  char id[32], svc[16];
  if (inst_open(&in, url, queue, "victim") != ORDO_OK) {
    fprintf(stderr, "child open: %s\n", ordo_last_error_message());
    return 3;
  }
  for (int k = 0; k < 4; k++)
    for (int b = 0; b < 5; b++) {
      snprintf(svc, sizeof svc, "k%d", k);
      snprintf(id, sizeof id, "K%d-%d", k, b);
      const char *w[1] = {"x"};
      ordo_queue_batch_spec sp = {.id = id, .service = svc, .writes = w,
                                  .nwrites = 1};
      ordo_journal_enqueued got;
      size_t bad;
      if (ordo_cluster_enqueue(in.cl, &sp, 1, &got, &bad) != ORDO_OK)
        return 4;
    }
  /* Own them all before saying so. */
  for (int t = 0; t < 250 && held(in.cl) < 4; t++)
    sleep_ms(20);
  printf("ready %zu\n", held(in.cl));
  fflush(stdout);
  for (;;)
    pause();
}

static void test_cluster_failover_kill(void **state) {
  (void)state;
  int fd[2];
  assert_int_equal(pipe(fd), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    dup2(fd[1], 1);
    close(fd[0]);
    execl(self_exe, self_exe, "hold-child", g_pg.url, g_queue, (char *)NULL);
    _exit(127);
  }
  close(fd[1]);
  char line[64] = "";
  FILE *f = fdopen(fd[0], "r");
  assert_non_null(fgets(line, sizeof line, f));
  fclose(f);
  assert_string_equal(line, "ready 4\n");
  inst b;
  inst_open_ok(&b, "survivor");
  assert_int_equal(held(b.cl), 0); /* all four are the victim's, alive */
  unsigned long long t0 = now_ms();
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
  share_want all = {&b, 1, 4, 4};
  assert_true(wait_for(share_reached, &all, TTL_MS + 5 * RENEW_MS + 3000));
  unsigned long long took = now_ms() - t0;
  print_message("4 services taken over %llu ms after kill -9 (TTL %u ms, "
                "round %u ms)\n", took, TTL_MS, RENEW_MS);
  assert_true(took <= TTL_MS + 2 * RENEW_MS + 1000);
  ordo_cluster_stats st;
  ordo_cluster_get_stats(b.cl, &st);
  assert_int_equal(st.taken_over, 4);
  /* Every acknowledged batch is in the new owner's journals. */
  char id[32], svc[16];
  for (int k = 0; k < 4; k++) {
    snprintf(svc, sizeof svc, "k%d", k);
    ordo_cluster_shard *s = ordo_cluster_shard_get(b.cl, svc);
    assert_non_null(s);
    assert_int_equal(ordo_cluster_shard_pump(b.cl, s), ORDO_OK);
    for (int i = 0; i < 5; i++) {
      ordo_queue_state qs;
      snprintf(id, sizeof id, "K%d-%d", k, i);
      if (ordo_journal_batch_status(ordo_cluster_shard_journal(s), id, &qs,
                                    NULL, NULL) != ORDO_OK)
        fail_msg("%s lost in the failover", id);
    }
    ordo_cluster_shard_put(s);
  }
  inst_close(&b);
}

int main(int argc, char **argv) {
#define T_(fn) cmocka_unit_test_setup(fn, fx_setup)
  const struct CMUnitTest tests[] = {
      T_(test_cluster_order),
      T_(test_cluster_share_and_handover),
      T_(test_cluster_fence),
      T_(test_cluster_failover_kill),
  };
#undef T_
  int rc;
  if (argc == 4 && strcmp(argv[1], "hold-child") == 0)
    return hold_child(argv[2], argv[3]);
  ssize_t n = readlink("/proc/self/exe", self_exe, sizeof self_exe - 1);
  if (n <= 0)
    return 1;
  self_exe[n] = '\0';
  if ((rc = support_pg_start_for_main(&g_pg)) != 0)
    return rc;
  rc = cmocka_run_group_tests_name("cluster", tests, NULL, NULL);
  support_pg_destroy(&g_pg);
  return support_pg_main_result(rc);
}

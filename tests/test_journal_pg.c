/*
 * test_journal_pg.c — the queue journal on PostgreSQL: test_journal.c's
 * tests again, each journal a store of a real server this test starts
 * (tests/support/support_pg.c) instead of a SQLite file, and what only
 * PostgreSQL has: the one-writer rule held by an advisory lock, which the
 * server drops when the holder dies.
 *
 * Each test's journals are stores "journal-test/PID/N/NAME" of the
 * server's database (N counts the tests): apart from every other test's,
 * and deleted by the teardown. The crash test re-executes this binary as
 * its child, as test_journal does, with the store's URL as the path.
 *
 * When the server programs are not installed the test exits 77, which
 * ctest reports as skipped (ORDO_REQUIRE_POSTGRES=1 makes it a failure).
 */
#define JOURNAL_TESTS_NO_MAIN
/* The tests of the file that are SQLite's own are not run here. */
#pragma GCC diagnostic ignored "-Wunused-function"
#include "test_journal.c"

#include "support/support_pg.h"

#include <libpq-fe.h>

static support_pg g_pg;
static int g_test_no;      /* the running test's N */
static pid_t g_holder = 0; /* a hold-child still alive: the teardown's */

static void pg_location(char *out, size_t cap, const char *name) {
  int n = snprintf(out, cap, "%s#journal-test/%ld/%d/%s", g_pg.url,
                   (long)getpid(), g_test_no, name);
  assert_true(n > 0 && (size_t)n < cap);
}

static int pg_setup(void **state) {
  g_test_no++;
  return setup_dir(state);
}

static int pg_teardown(void **state) {
  char prefix[64];
  if (g_holder > 0) { /* a failed test left it */
    kill(g_holder, SIGKILL);
    waitpid(g_holder, NULL, 0);
    g_holder = 0;
  }
  snprintf(prefix, sizeof prefix, "journal-test/%ld/%d/", (long)getpid(),
           g_test_no);
  support_pg_exec(&g_pg, "DELETE FROM ordo_store WHERE starts_with(name, $1)",
                  prefix);
  return teardown_dir(state);
}

/*
 * The child of test_pg_second_process: open the journal at path, enqueue
 * HELD, say "ready" on stdout once it is acknowledged, and hold the
 * journal until killed.
 */
static int hold_child(const char *path) {
  ordo_ctx *ctx = ctx_small();
  ordo_journal_options opt;
  ordo_journal *j = NULL;
  ordo_queue_batch_spec sp = {0};
  ordo_op *op;
  if (ctx == NULL)
    return 3;
  ordo_journal_options_init(&opt);
  opt.create = 1;
  if (ordo_journal_open(ctx, path, &opt, &j) != ORDO_OK) {
    fprintf(stderr, "hold-child open: %s\n", ordo_last_error_message());
    return 4;
  }
  sp.id = "HELD";
  sp.service = "s";
  if ((op = ordo_journal_enqueue(j, &sp)) == NULL ||
      ordo_op_wait(op, -1) != ORDO_OK) {
    fprintf(stderr, "hold-child enqueue failed\n");
    return 5;
  }
  ordo_op_release(op);
  if (write(1, "ready\n", 6) != 6)
    return 6;
  for (;;)
    pause();
}

/*
 * One process at a time, across processes: while a child holds the queue,
 * this process's open is refused with ORDO_E_STORAGE_BUSY and a message
 * naming the holder (its connection's "ordo pid N"); once the child is
 * SIGKILLed the server drops the lock with the dead connection and the
 * open succeeds, with what the child acknowledged in it.
 */
static void test_pg_second_process(void **unused) {
  ordo_ctx *ctx = ctx_new();
  ordo_journal *j = NULL;
  char line[16] = "", want[64];
  size_t got = 0;
  int pfd[2], status;
  (void)unused;

  assert_int_equal(pipe(pfd), 0);
  g_holder = fork();
  assert_true(g_holder >= 0);
  if (g_holder == 0) {
    dup2(pfd[1], 1);
    close(pfd[0]);
    close(pfd[1]);
    execl(self_exe, self_exe, "hold-child", jpath, (char *)NULL);
    _exit(127);
  }
  close(pfd[1]);
  while (got < sizeof line - 1) {
    ssize_t r = read(pfd[0], line + got, sizeof line - 1 - got);
    if (r <= 0)
      break;
    got += (size_t)r;
    if (memchr(line, '\n', got) != NULL)
      break;
  }
  close(pfd[0]);
  if (strncmp(line, "ready\n", 6) != 0)
    fail_msg("the holder did not get the journal (it said \"%s\")", line);

  assert_int_equal(ordo_journal_open(ctx, jpath, NULL, &j),
                   ORDO_E_STORAGE_BUSY);
  assert_null(j);
  snprintf(want, sizeof want, "\"ordo pid %ld\"", (long)g_holder);
  if (strstr(ordo_last_error_message(), "another process") == NULL ||
      strstr(ordo_last_error_message(), want) == NULL)
    fail_msg("the refusal does not name the holder (%s): %s", want,
             ordo_last_error_message());

  assert_int_equal(kill(g_holder, SIGKILL), 0);
  assert_int_equal(waitpid(g_holder, &status, 0), g_holder);
  g_holder = 0;
  assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  j = jopen_after_kill(ctx, ORDO_QUEUE_CONTINUOUS);
  assert_int_equal(jstate(j, "HELD"), ORDO_QUEUE_QUEUED);
  assert_int_equal(ordo_journal_close(j), ORDO_OK);
  ordo_ctx_free(ctx);
}

int main(int argc, char **argv) {
#define T_(fn) cmocka_unit_test_setup_teardown(fn, pg_setup, pg_teardown)
  /*
   * Not run here, being SQLite's own:
   *   test_path_too_long   the limit is for PATH.lock, SQLite's lock file;
   *   test_journal_shrink  measures SQLite's page cache
   *                        (sqlite3_memory_used); PostgreSQL's backend
   *                        keeps no cache to give back;
   *   test_write_faults_recover, test_random_faults_acked_durable,
   *   test_faults_across_checkpoints
   *                        ORDO_STORAGE_FAULT fails SQLite's file writes
   *                        and syncs, and reaches no server (test_postgres
   *                        kills the server in the middle of writes);
   *   test_jsonw, test_idset_segments, test_checkpoint_v1
   *                        no storage at all (test_journal runs them).
   * test_take_ahead runs without its fault part, test_bad_input without
   * its file that is not SQLite.
   */
  const struct CMUnitTest tests[] = {
      T_(test_close_after_ctx_free),
      T_(test_many_unknown),
      T_(test_reopen_restores),
      T_(test_locking_rule_kept),
      T_(test_public_json_api),
      T_(test_forget_finished),
      T_(test_checkpoint_prunes),
      T_(test_retention_count),
      T_(test_id_segments),
      T_(test_retention_ledger_ids),
      T_(test_ledger_id_replay),
      T_(test_halt_policy_replay),
      T_(test_operator_halt_durable),
      T_(test_list_services),
      T_(test_status_json_explains),
      T_(test_bad_input),
      T_(test_group_commit),
      T_(test_replay_random_histories),
      T_(test_crash_sigkill),
      T_(test_enqueue_many_atomic),
      T_(test_cancel_expire_replay),
      T_(test_finish_many),
      T_(test_take_ahead),
      T_(test_pg_second_process),
  };
#undef T_
  int rc;
  if (argc == 4 && strcmp(argv[1], "crash-child") == 0)
    return crash_child(argv[2], strtol(argv[3], NULL, 10));
  if (argc == 3 && strcmp(argv[1], "hold-child") == 0)
    return hold_child(argv[2]);
  {
    ssize_t n = readlink("/proc/self/exe", self_exe, sizeof self_exe - 1);
    if (n <= 0)
      return 1;
    self_exe[n] = '\0';
  }
  if ((rc = support_pg_start_for_main(&g_pg)) != 0)
    return rc;
  journal_location = pg_location;
  rc = cmocka_run_group_tests_name("journal_pg", tests, NULL, NULL);
  support_pg_destroy(&g_pg);
  return rc;
}

/*
 * support_pg.h — a real PostgreSQL server for the tests, private to one test.
 *
 * support_pg_start makes a cluster of its own: initdb into a new temporary
 * directory, then pg_ctl start on 127.0.0.1 at a free port, with its unix
 * socket directory and its log inside that directory, trust authentication
 * for the user postgres, and fsync on (the crash tests depend on it). No
 * mock: the tests talk to the server the backend will meet in production.
 *
 * PostgreSQL refuses to run as root, so when the test runs as root initdb
 * and pg_ctl run as the postgres system user (runuser -u postgres --); the
 * directory is theirs. Otherwise they run as the test's own user.
 *
 * Environment:
 *   ORDO_TEST_POSTGRES_URL  use this server instead: nothing is started or
 *                           stopped, and stop/restart answer 1 (skipped).
 *   ORDO_REQUIRE_POSTGRES=1 missing server binaries are an error (-1), not a
 *                           skip (1): CI sets it, so it cannot pass by
 *                           skipping.
 *
 * Nothing is registered globally: a test owns its support_pg and must call
 * support_pg_destroy (a teardown does it even when an assert failed), or
 * the server outlives the test. One thread at a time per support_pg.
 */
#ifndef ORDO_TEST_SUPPORT_PG_H
#define ORDO_TEST_SUPPORT_PG_H

typedef struct support_pg {
  char url[256];  /* "postgresql://postgres@127.0.0.1:PORT/postgres" */
  char dir[256];  /* the cluster's directory: data/, sock/, server.log,
                     commands.log; "" when external or not made */
  int port;       /* 0 when external */
  /* Why start skipped (it returned 1), or what failed when a call returned
   * -1, with the tail of the server's log and of initdb/pg_ctl's output. */
  char why_skipped[4096];

  /* private */
  char bindir[256];   /* where initdb and pg_ctl are */
  char runuser[256];  /* runuser's path when as_postgres */
  int as_postgres;    /* root: run the server as the postgres user */
  unsigned postgres_uid, postgres_gid;
  int external;       /* ORDO_TEST_POSTGRES_URL: not ours to stop */
  int running;        /* started by us and not stopped since */
} support_pg;

/*
 * Start a private server (or take ORDO_TEST_POSTGRES_URL). Overwrites all of
 * *pg first. Returns 0: running, pg->url says where; 1: skipped, the server
 * binaries are not installed (pg->why_skipped says so and that `make deps`
 * installs them); -1: error, pg->why_skipped says what failed. Call
 * support_pg_destroy afterwards whatever it returned.
 */
int support_pg_start(support_pg *pg);

/*
 * Stop the server: pg_ctl stop -m fast, or -m immediate when immediate is
 * non-zero (the postmaster and its backends quit without a checkpoint, as in
 * a crash; committed work is recovered from the WAL on restart). Waits until
 * the server is gone. 0: stopped (or was not running); 1: external server,
 * not ours to stop; -1: error (why_skipped).
 */
int support_pg_stop(support_pg *pg, int immediate);

/* Start the stopped server again: same directory, same port, same url.
 * 0: running (also when it already was); 1: external; -1: error. */
int support_pg_restart(support_pg *pg);

/* Stop the server if it runs (immediately: nothing is kept) and remove its
 * directory. Safe after any start result, and twice. */
void support_pg_destroy(support_pg *pg);

/* For cmocka tests, on the test's thread: support_pg_start, and when it
 * skipped, print "support_pg: skipped: <why>" and skip the test; when it
 * failed, print why and fail the test (at the caller's line). Returns only
 * when the server runs. */
#define support_pg_start_or_skip(pg)                                          \
  support__pg_start_or_skip((pg), __FILE__, __LINE__)
void support__pg_start_or_skip(support_pg *pg, const char *file, int line);

/* For a test file's main, before its cmocka group: start the server.
 * 0 when it runs; otherwise the status main returns, after saying why and
 * destroying pg: 77 when skipped (ctest's SKIP_RETURN_CODE), 1 when it
 * failed. */
int support_pg_start_for_main(support_pg *pg);

/* Run sql (trusted text; with param non-NULL, one text parameter $1) on
 * pg's database postgres; the test fails (cmocka, on the test's thread)
 * when it does not succeed. */
void support_pg_exec(support_pg *pg, const char *sql, const char *param);

/* main's exit status from cmocka_run_group_tests' result (the failures):
 * 77 when support_pg_start_or_skip skipped a test in this process and none
 * failed, so that ctest (SKIP_RETURN_CODE 77) reports the file skipped
 * rather than passed; a failure is never hidden. */
int support_pg_main_result(int failed);

#endif /* ORDO_TEST_SUPPORT_PG_H */

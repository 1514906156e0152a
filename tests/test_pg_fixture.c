/*
 * test_pg_fixture.c — the private PostgreSQL server of tests/support/
 * (support_pg.h) that the PostgreSQL backend's tests run against.
 *
 *   - A crash: a row committed, the server stopped with -m immediate while a
 *     connection is open; nothing answers; after a restart on the same port
 *     the row is there and the log shows crash recovery.
 *   - Stop and restart are idempotent, destroy removes the directory and
 *     may be called twice or on a server never started.
 *   - Missing server programs are a skip that says `make deps`, or an error
 *     under ORDO_REQUIRE_POSTGRES=1; ORDO_TEST_POSTGRES_URL is used as
 *     given and is never stopped.
 *
 * Without the server programs installed, the first two print why and skip,
 * and the file exits 77: ctest reports it skipped.
 */
#include "support/support_pg.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

/* A test's server and its connections, closed by the teardown whatever
 * assert failed. */
typedef struct fixture {
  support_pg pg;
  PGconn *conn;
} fixture;

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  if (f == NULL)
    return -1;
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  if (f->conn != NULL)
    PQfinish(f->conn);
  support_pg_destroy(&f->pg);
  free(f);
  return 0;
}

/* Connect to url, or fail with libpq's message. */
static PGconn *connect_ok(fixture *f, const char *url) {
  assert_null(f->conn);
  f->conn = PQconnectdb(url);
  assert_non_null(f->conn);
  if (PQstatus(f->conn) != CONNECTION_OK)
    fail_msg("connect to %s: %s", url, PQerrorMessage(f->conn));
  return f->conn;
}

static void disconnect(fixture *f) {
  PQfinish(f->conn);
  f->conn = NULL;
}

/* Run sql, which must give want; a one-value result is copied to value. */
static void exec_ok(PGconn *c, const char *sql, ExecStatusType want,
                    char *value, size_t n) {
  PGresult *r = PQexec(c, sql);
  if (PQresultStatus(r) != want) {
    char msg[512];
    snprintf(msg, sizeof msg, "%s", PQerrorMessage(c));
    PQclear(r);
    fail_msg("%s: %s", sql, msg);
  }
  if (value != NULL) {
    int one = PQntuples(r) == 1 && PQnfields(r) == 1;
    snprintf(value, n, "%s", one ? PQgetvalue(r, 0, 0) : "(not one value)");
  }
  PQclear(r);
}

/* The server log contains text. */
static int log_has(const support_pg *pg, const char *text) {
  char path[512];
  snprintf(path, sizeof path, "%s/server.log", pg->dir);
  FILE *fp = fopen(path, "r");
  assert_non_null(fp);
  static char buf[1 << 20];
  size_t n = fread(buf, 1, sizeof buf - 1, fp);
  fclose(fp);
  buf[n] = '\0';
  return strstr(buf, text) != NULL;
}

static void test_crash_keeps_committed_rows(void **state) {
  fixture *f = *state;
  support_pg_start_or_skip(&f->pg);
  char value[128], sql[256], table[64];
  /* Its own table: ORDO_TEST_POSTGRES_URL may be shared by several runs. */
  snprintf(table, sizeof table, "ordo_fixture_%ld", (long)getpid());

  PGconn *c = connect_ok(f, f->pg.url);
  exec_ok(c, "SELECT 1", PGRES_TUPLES_OK, value, sizeof value);
  assert_string_equal(value, "1");
  exec_ok(c, "SHOW fsync", PGRES_TUPLES_OK, value, sizeof value);
  assert_string_equal(value, "on");
  snprintf(sql, sizeof sql,
           "CREATE TABLE %s (id int PRIMARY KEY, note text NOT NULL)", table);
  exec_ok(c, sql, PGRES_COMMAND_OK, NULL, 0);
  snprintf(sql, sizeof sql, "INSERT INTO %s VALUES (1, 'committed')", table);
  exec_ok(c, sql, PGRES_COMMAND_OK, NULL, 0);

  int rc = support_pg_stop(&f->pg, 1);
  if (rc == 1) {
    snprintf(sql, sizeof sql, "DROP TABLE %s", table);
    exec_ok(c, sql, PGRES_COMMAND_OK, NULL, 0);
    print_message("support_pg: skipped the crash: %s\n", f->pg.why_skipped);
    skip();
  }
  if (rc != 0)
    fail_msg("support_pg_stop: %s", f->pg.why_skipped);

  /* The open connection is dead, and nothing accepts a new one. */
  PGresult *r = PQexec(c, "SELECT 1");
  assert_int_not_equal(PQresultStatus(r), PGRES_TUPLES_OK);
  PQclear(r);
  disconnect(f);
  PGconn *refused = PQconnectdb(f->pg.url);
  assert_non_null(refused);
  assert_int_equal(PQstatus(refused), CONNECTION_BAD);
  PQfinish(refused);

  if (support_pg_restart(&f->pg) != 0)
    fail_msg("support_pg_restart: %s", f->pg.why_skipped);
  /* -m immediate is a crash: the restart replayed the WAL. */
  assert_true(log_has(&f->pg, "automatic recovery in progress"));
  c = connect_ok(f, f->pg.url);
  snprintf(sql, sizeof sql, "SELECT note FROM %s WHERE id = 1", table);
  exec_ok(c, sql, PGRES_TUPLES_OK, value, sizeof value);
  assert_string_equal(value, "committed");
  disconnect(f);
}

static void test_stop_restart_destroy_idempotent(void **state) {
  fixture *f = *state;
  support_pg_start_or_skip(&f->pg);
  if (f->pg.external) {
    print_message("support_pg: this test needs a server of its own; "
                  "ORDO_TEST_POSTGRES_URL is set\n");
    skip();
  }
  char dir[sizeof f->pg.dir], url[sizeof f->pg.url], value[16];
  snprintf(dir, sizeof dir, "%s", f->pg.dir);
  snprintf(url, sizeof url, "%s", f->pg.url);
  assert_int_equal(access(dir, F_OK), 0);

  assert_int_equal(support_pg_restart(&f->pg), 0); /* already running */
  assert_int_equal(support_pg_stop(&f->pg, 0), 0);
  assert_int_equal(support_pg_stop(&f->pg, 0), 0);
  assert_int_equal(support_pg_stop(&f->pg, 1), 0);
  assert_int_equal(support_pg_restart(&f->pg), 0);
  assert_int_equal(support_pg_restart(&f->pg), 0);
  assert_string_equal(f->pg.url, url); /* same port */
  exec_ok(connect_ok(f, url), "SELECT 2", PGRES_TUPLES_OK, value,
          sizeof value);
  assert_string_equal(value, "2");
  disconnect(f);

  support_pg_destroy(&f->pg);
  assert_int_not_equal(access(dir, F_OK), 0);
  support_pg_destroy(&f->pg);
  PGconn *refused = PQconnectdb(url);
  assert_int_equal(PQstatus(refused), CONNECTION_BAD);
  PQfinish(refused);

  support_pg never = {0};
  support_pg_destroy(&never);
}

/* setenv(name, value), or unsetenv when value is NULL. */
static void set_env(const char *name, const char *value) {
  if (value != NULL)
    assert_int_equal(setenv(name, value, 1), 0);
  else
    assert_int_equal(unsetenv(name), 0);
}

/* The environment this test changes, saved and put back. */
static const char *const env_names[] = {"ORDO_TEST_POSTGRES_BINDIR",
                                        "ORDO_REQUIRE_POSTGRES",
                                        "ORDO_TEST_POSTGRES_URL"};
#define ENV_COUNT (sizeof env_names / sizeof env_names[0])

static void env_save(char *saved[ENV_COUNT]) {
  for (size_t i = 0; i < ENV_COUNT; i++) {
    const char *v = getenv(env_names[i]);
    saved[i] = v != NULL ? strdup(v) : NULL;
  }
}

static void env_restore(char *saved[ENV_COUNT]) {
  for (size_t i = 0; i < ENV_COUNT; i++) {
    set_env(env_names[i], saved[i]);
    free(saved[i]);
  }
}

static void test_missing_server_and_external_url(void **state) {
  (void)state;
  char *saved[ENV_COUNT];
  env_save(saved);
  support_pg pg;

  set_env("ORDO_TEST_POSTGRES_URL", NULL);
  set_env("ORDO_TEST_POSTGRES_BINDIR", "/nonexistent/ordo/bin");
  set_env("ORDO_REQUIRE_POSTGRES", NULL);
  int skipped = support_pg_start(&pg);
  int skip_says_how = strstr(pg.why_skipped, "make deps") != NULL;
  support_pg_destroy(&pg);

  set_env("ORDO_REQUIRE_POSTGRES", "1");
  int required = support_pg_start(&pg);
  int error_says_why =
      strstr(pg.why_skipped, "ORDO_REQUIRE_POSTGRES=1") != NULL;
  support_pg_destroy(&pg);

  /* An external server: taken as given, never stopped (it need not run:
   * start does not connect). */
  set_env("ORDO_TEST_POSTGRES_URL", "postgresql://someone@192.0.2.1:1/x");
  int external = support_pg_start(&pg);
  int same_url =
      strcmp(pg.url, "postgresql://someone@192.0.2.1:1/x") == 0;
  int stop = support_pg_stop(&pg, 1), restart = support_pg_restart(&pg);
  support_pg_destroy(&pg);

  env_restore(saved);
  assert_int_equal(skipped, 1);
  assert_true(skip_says_how);
  assert_int_equal(required, -1);
  assert_true(error_says_why);
  assert_int_equal(external, 0);
  assert_true(same_url);
  assert_int_equal(stop, 1);
  assert_int_equal(restart, 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_crash_keeps_committed_rows, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_stop_restart_destroy_idempotent,
                                      setup, teardown),
      cmocka_unit_test(test_missing_server_and_external_url),
  };
  return support_pg_main_result(cmocka_run_group_tests(tests, NULL, NULL));
}

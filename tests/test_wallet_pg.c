/*
 * test_wallet_pg.c — wallets on PostgreSQL, against a real server that
 * this test starts (tests/support/support_pg.c) and stops.
 *
 * Every test of test_wallet.c that is not about SQLite's files runs again
 * with its wallets in a database of its own on the server (CREATE DATABASE
 * in setup, DROP DATABASE in teardown: a test sees no other test's
 * wallets, and the drop fails if the test's context left a connection
 * open). The wallet config's "path" is the database's URL; export files
 * and logs stay in the test's directory. Encryption at rest has its own
 * version here: what the server stores, read back column by column, by
 * pg_dump and from the cluster's files, holds none of a record's
 * plaintext.
 *
 * Skipped (exit 77) when the server programs are not installed, as
 * test_postgres is.
 */
#define WALLET_TESTS_NO_MAIN
/* test_encrypted_at_rest and test_storage_faults are SQLite's. */
#pragma GCC diagnostic ignored "-Wunused-function"
#include "test_wallet.c"

#include "support/support_pg.h"

#include <libpq-fe.h>

static support_pg g_pg;
static int g_databases; /* made so far, for the next one's name */

/* base with its database replaced by db: the path after host[:port],
 * up to '?' or the end. */
static void url_with_db(char *out, size_t n, const char *base, const char *db) {
  const char *host = strstr(base, "://");
  assert_non_null(host);
  const char *slash = strchr(host + 3, '/');
  const char *query = strchr(host + 3, '?');
  size_t head = slash != NULL && (query == NULL || slash < query)
                    ? (size_t)(slash - base)
                    : query != NULL ? (size_t)(query - base) : strlen(base);
  int len = snprintf(out, n, "%.*s/%s%s", (int)head, base, db, query != NULL ? query : "");
  assert_true(len > 0 && (size_t)len < n);
}

/* The database a test's wallets go in: t_<pid>_<n>, new. */
static void pg_root_make(wallet_fixture *f) {
  char sql[128], db[64];
  snprintf(db, sizeof db, "t_%ld_%d", (long)getpid(), g_databases++);
  snprintf(sql, sizeof sql, "CREATE DATABASE %s", db);
  support_pg_exec(&g_pg, sql, NULL);
  url_with_db(f->root, sizeof f->root, g_pg.url, db);
}

static void pg_root_drop(wallet_fixture *f) {
  char sql[128];
  const char *db = strrchr(f->root, '/') + 1;
  snprintf(sql, sizeof sql, "DROP DATABASE %.*s", (int)strcspn(db, "?"), db);
  support_pg_exec(&g_pg, sql, NULL);
}

/* ---- encryption at rest, on the server --------------------------------------- */

static const char *const markers[] = {
    "MARKERTYPE", "MARKERNAME", "MARKERVALUE", "MARKERTAGNAME", "MARKERTAGVALUE",
    /* The raw key, as text; as bytes it is the hex below. */
    "0102030405060708090a0b0c0d0e0f10",
};
static const unsigned char raw_key_bytes[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

/* Lowercase hex of s, as pg_dump writes bytea. */
static void hex_of(char *out, size_t n, const char *s) {
  size_t o = 0;
  for (; *s != 0 && o + 3 <= n; s++)
    o += (size_t)snprintf(out + o, n - o, "%02x", (unsigned char)*s);
  out[o] = 0;
}

/* Every bytea and text column of every ordo_* table of the wallet's
 * database, read in binary: how many values hold needle. */
static int occurrences_in_tables(PGconn *c, const void *needle, size_t len) {
  PGresult *cols = PQexec(c, "SELECT table_name, column_name FROM information_schema.columns"
                             " WHERE table_schema = current_schema()"
                             " AND table_name LIKE 'ordo\\_%'"
                             " AND data_type IN ('bytea', 'text')");
  assert_int_equal(PQresultStatus(cols), PGRES_TUPLES_OK);
  assert_true(PQntuples(cols) >= 8); /* the schema's tables are there */
  int found = 0;
  for (int i = 0; i < PQntuples(cols); i++) {
    char sql[300];
    snprintf(sql, sizeof sql, "SELECT \"%s\" FROM \"%s\"", PQgetvalue(cols, i, 1),
             PQgetvalue(cols, i, 0));
    PGresult *r = PQexecParams(c, sql, 0, NULL, NULL, NULL, NULL, 1);
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    for (int row = 0; row < PQntuples(r); row++)
      if (memmem(PQgetvalue(r, row, 0), (size_t)PQgetlength(r, row, 0), needle, len) != NULL)
        found++;
    PQclear(r);
  }
  PQclear(cols);
  return found;
}

static void test_pg_encrypted_at_rest(void **state) {
  wallet_fixture *f = *state;
  create_open(f);
  assert_int_equal(support_run(ordo_record_add(f->ctx, "w1", "MARKERTYPE", "MARKERNAME",
                                               "MARKERVALUE",
                                               "{\"MARKERTAGNAME\":\"MARKERTAGVALUE\","
                                               "\"~PLAINNAME\":\"PLAINVALUE\"}"), NULL),
                   ORDO_OK);
  json_t *c = support_run_json(ordo_record_count(f->ctx, "w1", "MARKERTYPE",
                                                 "{\"MARKERTAGNAME\":\"MARKERTAGVALUE\"}"));
  assert_int_equal(json_integer_value(json_object_get(c, "count")), 1);
  json_decref(c);
  assert_int_equal(support_run(ordo_wallet_close(f->ctx, "w1"), NULL), ORDO_OK);
  ordo_ctx_free(f->ctx);
  f->ctx = ordo_ctx_new(NULL);
  assert_non_null(f->ctx);

  /* What the server gives back, every column of ordo's tables. */
  PGconn *pc = PQconnectdb(f->root);
  assert_int_equal(PQstatus(pc), CONNECTION_OK);
  assert_int_equal(occurrences_in_tables(pc, "PLAINVALUE", 10), 1); /* the search works */
  for (size_t i = 0; i < sizeof markers / sizeof markers[0]; i++)
    if (occurrences_in_tables(pc, markers[i], strlen(markers[i])) != 0)
      fail_msg("%s is in the database", markers[i]);
  assert_int_equal(occurrences_in_tables(pc, raw_key_bytes, sizeof raw_key_bytes), 0);
  /* On disk, once checkpointed (the cluster's files, WAL included): only
   * when the server is ours. */
  PGresult *r = PQexec(pc, "CHECKPOINT");
  assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
  PQclear(r);
  PQfinish(pc);
  if (g_pg.dir[0] != 0) {
    char data[300];
    snprintf(data, sizeof data, "%s/data", g_pg.dir);
    assert_true(marker_on_disk(data, "PLAINVALUE"));
    for (size_t i = 0; i < sizeof markers / sizeof markers[0]; i++)
      if (marker_on_disk(data, markers[i]))
        fail_msg("%s is in the cluster's files", markers[i]);
  }

  /* pg_dump of the database: bytea comes out as hex, so look for both. */
  char dump[600], cmd[1600], hex[64];
  snprintf(dump, sizeof dump, "%s/pg_dump", g_pg.bindir);
  if (g_pg.bindir[0] == 0 || access(dump, X_OK) != 0) {
    print_message("no pg_dump in '%s': the dump is not checked\n", g_pg.bindir);
    return;
  }
  snprintf(cmd, sizeof cmd, "'%s' --no-password -f '%s/dump.sql' '%s'", dump, f->dir, f->root);
  assert_int_equal(system(cmd), 0);
  snprintf(dump, sizeof dump, "%s/dump.sql", f->dir);
  hex_of(hex, sizeof hex, "PLAINVALUE");
  assert_true(marker_on_disk(dump, hex)); /* the grep works */
  for (size_t i = 0; i < sizeof markers / sizeof markers[0]; i++) {
    hex_of(hex, sizeof hex, markers[i]);
    if (marker_on_disk(dump, markers[i]) || marker_on_disk(dump, hex))
      fail_msg("%s is in pg_dump's output", markers[i]);
  }
}

int main(int argc, char **argv) {
  int child = wallet_child_main(argc, argv);
  if (child >= 0)
    return child; /* its root is a URL: it needs no server of its own */
  self_path = argv[0];
  int rc = support_pg_start_for_main(&g_pg);
  if (rc != 0)
    return rc;
  g_root_make = pg_root_make;
  g_root_drop = pg_root_drop;
#define T_(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
  const struct CMUnitTest tests[] = {
      T_(test_lifecycle_passphrase),
      T_(test_reopen_keeps_records),
      T_(test_bad_input),
      T_(test_record_crud_and_tags),
      T_(test_search),
      T_(test_pg_encrypted_at_rest),
      T_(test_export_import),
      T_(test_import_bad_files),
      T_(test_export_cancel),
      T_(test_many_threads),
      T_(test_two_processes),
      T_(test_processes_replay),
      T_(test_no_secret_in_messages),
  };
#undef T_
  rc = cmocka_run_group_tests_name("wallet_pg", tests, NULL, NULL);
  support_pg_destroy(&g_pg);
  return rc;
}

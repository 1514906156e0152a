/*
 * test_postgres.c — the PostgreSQL storage backend against a real server
 * that this test starts (tests/support/support_pg.c: initdb and pg_ctl in a
 * temporary directory) and stops.
 *
 * First every backend-neutral test of test_storage.c again, with stores on
 * the server instead of files; then what only PostgreSQL has: stores named
 * by URL, the exclusive lock, the bounded pool, and the promises when the
 * server restarts or dies in the middle of a transaction.
 *
 * When the server binaries are not installed the test exits 77, which
 * ctest reports as skipped, after saying why (ORDO_REQUIRE_POSTGRES=1, as
 * CI sets, makes that a failure instead).
 */
#define STORAGE_TESTS_NO_MAIN
/* The SQLite-only tests of the file are not run here. */
#pragma GCC diagnostic ignored "-Wunused-function"
#include "test_storage.c"

#include "support/support_pg.h"

#include <libpq-fe.h>

static support_pg g_pg;

/* A store URL of its own for a test: base#test/<pid>/<tag>. */
static void store_url(char *out, size_t n, const char *base, const char *tag) {
  snprintf(out, n, "%s#test/%ld/%s", base, (long)getpid(), tag);
}

/* The number sql (a count) answers on the database at url. */
static long long sql_count_at(const char *url, const char *sql) {
  PGconn *c = PQconnectdb(url);
  assert_int_equal(PQstatus(c), CONNECTION_OK);
  PGresult *r = PQexec(c, sql);
  if (PQresultStatus(r) != PGRES_TUPLES_OK)
    fail_msg("%s: %s", sql, PQerrorMessage(c));
  long long n = atoll(PQgetvalue(r, 0, 0));
  PQclear(r);
  PQfinish(c);
  return n;
}

/* The number sql (a count) answers. */
static long long sql_count(const char *sql) {
  return sql_count_at(g_pg.url, sql);
}

/* Run sql (trusted text, statements without results) on the database at
 * url; the test fails if it does not succeed. */
static void sql_exec_at(const char *url, const char *sql) {
  PGconn *c = PQconnectdb(url);
  assert_int_equal(PQstatus(c), CONNECTION_OK);
  PGresult *r = PQexec(c, sql);
  if (PQresultStatus(r) != PGRES_COMMAND_OK)
    fail_msg("%s: %s", sql, PQerrorMessage(c));
  PQclear(r);
  PQfinish(c);
}

/* Connections the server has from this process's pools. */
static int server_connections(void) {
  char sql[200];
  snprintf(sql, sizeof sql, "SELECT count(*) FROM pg_stat_activity WHERE"
           " application_name = 'ordo pid %ld'", (long)getpid());
  return (int)sql_count(sql);
}

static void test_pg_stores(void **state) {
  fx *f = *state;
  ordo_storage *st = NULL;
  char *err = NULL;
  const ordo_storage_backend *be = &ordo_storage_postgres;
  assert_ptr_equal(ordo_storage_backend_find("postgres"), be);
  assert_true(ordo_storage_is_postgres_uri("postgres://h/db#x"));
  assert_true(ordo_storage_is_postgres_uri("postgresql://h/db#x"));
  assert_false(ordo_storage_is_postgres_uri("/var/lib/ordo/wallet.db"));

  /* Missing without CREATE; the message names the store. */
  assert_int_equal(be->open(be, f->ctx, f->path, 0, &st, &err),
                   ORDO_E_WALLET_NOT_FOUND);
  assert_null(st);
  assert_non_null(strstr(err, "#test/"));
  free(err);
  err = NULL;

  /* No store name, an unknown ordo parameter: refused, and the message
   * does not repeat the URL's password. */
  char url[512];
  assert_int_equal(be->open(be, f->ctx, g_pg.url, ORDO_STORAGE_CREATE, &st,
                            &err), ORDO_E_INVAL);
  assert_non_null(strstr(err, "#NAME"));
  free(err);
  err = NULL;
  snprintf(url, sizeof url, "postgresql://postgres:s3cret-pw@127.0.0.1:%d/"
           "postgres?ordo_bogus=1#x", g_pg.port);
  assert_int_equal(be->open(be, f->ctx, url, ORDO_STORAGE_CREATE, &st, &err),
                   ORDO_E_INVAL);
  assert_null(strstr(err, "s3cret-pw"));
  free(err);
  err = NULL;

  /* Create, create again, reopen, destroy, destroy again. */
  st = db_open(f, f->ctx, ORDO_STORAGE_CREATE);
  assert_int_equal(add(f, st, "c", "n", "v", NULL, 0), ORDO_OK);
  db_close(f, st);
  assert_int_equal(be->open(be, f->ctx, f->path, ORDO_STORAGE_CREATE, &st,
                            &err), ORDO_E_WALLET_EXISTS);
  free(err);
  err = NULL;
  st = db_open(f, f->ctx, 0);
  assert_int_equal(count_where(f, st, "c", NULL), 1);
  db_close(f, st);
  assert_int_equal(be->destroy(be, f->path, &err), ORDO_OK);
  assert_null(err);
  assert_int_equal(be->destroy(be, f->path, &err), ORDO_E_WALLET_NOT_FOUND);
  free(err);
  err = NULL;

  /* Stores in one database are apart: the same key in two of them. */
  char a[512], b[512];
  store_url(a, sizeof a, g_pg.url, "apart-a");
  store_url(b, sizeof b, g_pg.url, "apart-b");
  ordo_storage *sa = NULL, *sb = NULL;
  assert_int_equal(be->open(be, f->ctx, a, ORDO_STORAGE_CREATE, &sa, NULL), 0);
  assert_int_equal(be->open(be, f->ctx, b, ORDO_STORAGE_CREATE, &sb, NULL), 0);
  assert_int_equal(add(f, sa, "c", "same", "in a", NULL, 0), ORDO_OK);
  assert_int_equal(add(f, sb, "c", "same", "in b", NULL, 0), ORDO_OK);
  ordo_storage_record rec;
  assert_int_equal(get(f, sb, "c", "same", &rec), ORDO_OK);
  assert_true(buf_is(&rec.value, "in b"));
  ordo_storage_record_clear(&rec);
  db_close(f, sa);
  assert_int_equal(be->destroy(be, a, NULL), ORDO_OK);
  assert_int_equal(count_where(f, sb, "c", NULL), 1);
  db_close(f, sb);
  assert_int_equal(be->destroy(be, b, NULL), ORDO_OK);
}

/* One ADD of a group fails inside the server (a trigger refuses a tag
 * after the record and two tags went in): the transaction is lost, the
 * others go again and succeed, the failed one leaves nothing. */
static void test_pg_add_undone_alone(void **state) {
  fx *f = *state;
  support_pg_exec(&g_pg, "CREATE FUNCTION test_boom() RETURNS trigger LANGUAGE plpgsql"
              " AS $$ BEGIN IF NEW.name = 'boom'::bytea THEN"
              " RAISE EXCEPTION 'boom'; END IF; RETURN NEW; END $$", NULL);
  support_pg_exec(&g_pg, "CREATE TRIGGER test_boom BEFORE INSERT ON ordo_tag_enc"
              " FOR EACH ROW EXECUTE FUNCTION test_boom()", NULL);
  add_undone_alone(f, db_open(f, f->ctx, ORDO_STORAGE_CREATE));
  support_pg_exec(&g_pg, "DROP TRIGGER test_boom ON ordo_tag_enc", NULL);
  support_pg_exec(&g_pg, "DROP FUNCTION test_boom()", NULL);
}

/*
 * Pipelined groups (postgres.c): a group sent while the one before it is
 * in flight must not commit unless that one did. The group before is made
 * slow inside the server (a trigger sleeps 300 ms on one record), so that
 * the requests submitted meanwhile go as groups behind it (two of them);
 * then it fails, at COMMIT (a deferred constraint trigger) or in a
 * statement (a chained UPDATE of a missing record). The groups behind hold
 * chained writes, which must fail unsent by the chain rule ("not
 * written"), and writes of no chain, which must succeed once, in order.
 */
static void pipeline_behind_failure(fx *f, int at_commit) {
  /* Left behind by a failed run of the other: not this one's failure. */
  support_pg_exec(&g_pg, "DO $$ BEGIN DROP TRIGGER test_slow ON ordo_item;"
                  " EXCEPTION WHEN undefined_object THEN NULL; END $$", NULL);
  support_pg_exec(&g_pg, "CREATE OR REPLACE FUNCTION test_slow() RETURNS trigger LANGUAGE"
              " plpgsql AS $$ BEGIN IF NEW.name = 'slow'::bytea THEN"
              " PERFORM pg_sleep(0.3); END IF;"
              " IF TG_WHEN = 'AFTER' AND NEW.name = 'slow'::bytea THEN"
              " RAISE EXCEPTION 'refused at commit'; END IF;"
              " RETURN NEW; END $$", NULL);
  support_pg_exec(&g_pg, at_commit
                  ? "CREATE CONSTRAINT TRIGGER test_slow AFTER INSERT ON"
                    " ordo_item DEFERRABLE INITIALLY DEFERRED FOR EACH ROW"
                    " EXECUTE FUNCTION test_slow()"
                  : "CREATE TRIGGER test_slow BEFORE INSERT ON ordo_item"
                    " FOR EACH ROW EXECUTE FUNCTION test_slow()", NULL);
  ordo_storage *st = db_open(f, f->ctx, ORDO_STORAGE_CREATE);
  unsigned long long piped = ordo__storage_postgres_pipelined(st);
  enum { WAVES = 2, PER = 3 };
  ordo_storage_req first[2], behind[WAVES * PER];
  unsigned long target = fx_done(f) + 2 + WAVES * PER;
  /* The group before: the slow record, chained, and (in a statement) a
   * chained UPDATE of a record that is not there. */
  req_init(&first[0], f, ORDO_STORAGE_ADD, "c", "slow", "v");
  first[0].flags = ORDO_STORAGE_REQ_CHAINED;
  req_init(&first[1], f, at_commit ? ORDO_STORAGE_ADD : ORDO_STORAGE_UPDATE_VALUE,
           "c", at_commit ? "fine" : "missing", "v");
  first[1].flags = ORDO_STORAGE_REQ_CHAINED;
  assert_int_equal(st->backend->submit(st, &first[0]), ORDO_OK);
  assert_int_equal(st->backend->submit(st, &first[1]), ORDO_OK);
  /* Two groups behind it, while it is in flight (well inside the 300 ms):
   * a chained write, a free one, a chained one each. */
  char names[WAVES * PER][32];
  for (int w = 0; w < WAVES; w++) {
    usleep(60 * 1000);
    for (int i = w * PER; i < (w + 1) * PER; i++) {
      int chained = i % PER != 1;
      snprintf(names[i], sizeof names[i], "%s-%d", chained ? "chained" : "free", i);
      req_init(&behind[i], f, ORDO_STORAGE_ADD, "c", names[i], "v");
      behind[i].flags = chained ? ORDO_STORAGE_REQ_CHAINED : 0;
      assert_int_equal(st->backend->submit(st, &behind[i]), ORDO_OK);
    }
  }
  fx_wait(f, target);
  /* They did go behind the slow group, each wave as a group. */
  assert_true(ordo__storage_postgres_pipelined(st) >= piped + WAVES);

  if (at_commit) {
    /* Both of the first group fail with its COMMIT. */
    for (int i = 0; i < 2; i++) {
      assert_int_equal(first[i].status, ORDO_E_STORAGE);
      if (strstr(first[i].message, "COMMIT") == NULL)
        fail_msg("first[%d]: %s", i, first[i].message);
    }
  } else {
    /* The slow record goes in on the second pass; the UPDATE fails. */
    assert_int_equal(first[0].status, ORDO_OK);
    assert_int_equal(first[1].status, ORDO_E_RECORD_NOT_FOUND);
  }
  /* Each chained write fails unsent, by the chain rule; each free one is
   * there once. */
  ordo_storage_record rec;
  for (int i = 0; i < WAVES * PER; i++) {
    if (i % PER != 1) {
      assert_int_equal(behind[i].status, ORDO_E_STORAGE);
      if (strstr(behind[i].message, "earlier write of its chain") == NULL)
        fail_msg("%s: %s", names[i], behind[i].message);
      assert_int_equal(get(f, st, "c", names[i], &rec), ORDO_E_RECORD_NOT_FOUND);
    } else {
      assert_int_equal(behind[i].status, ORDO_OK);
      assert_int_equal(get(f, st, "c", names[i], &rec), ORDO_OK);
      ordo_storage_record_clear(&rec);
    }
  }
  assert_int_equal(count_where(f, st, "c", NULL), (at_commit ? 0 : 1) + WAVES);
  for (int i = 0; i < 2; i++)
    ordo_storage_req_clear_output(&first[i]);
  for (int i = 0; i < WAVES * PER; i++)
    ordo_storage_req_clear_output(&behind[i]);
  db_close(f, st);
  support_pg_exec(&g_pg, "DROP TRIGGER test_slow ON ordo_item", NULL);
  support_pg_exec(&g_pg, "DROP FUNCTION test_slow()", NULL);
}

static void test_pg_pipeline_behind_failed_commit(void **state) {
  pipeline_behind_failure(*state, 1);
}

static void test_pg_pipeline_behind_failed_statement(void **state) {
  pipeline_behind_failure(*state, 0);
}

/* Rows of the item and tag tables whose store or record is not there: the
 * foreign keys' work, done by triggers and row locks since schema 2. */
static long long orphans(void) {
  return sql_count("SELECT (SELECT count(*) FROM ordo_item i WHERE NOT"
                   " EXISTS (SELECT 1 FROM ordo_store s WHERE s.id ="
                   " i.store)) + (SELECT count(*) FROM ordo_tag_enc t"
                   " WHERE NOT EXISTS (SELECT 1 FROM ordo_item i WHERE"
                   " i.id = t.item)) + (SELECT count(*) FROM"
                   " ordo_tag_plain t WHERE NOT EXISTS (SELECT 1 FROM"
                   " ordo_item i WHERE i.id = t.item))");
}

/* A record's delete takes its tags with it, a store's destroy its records
 * and theirs; and nothing any test before this one did left a row behind
 * (this runs last). */
static void test_pg_no_orphans(void **state) {
  fx *f = *state;
  const ordo_storage_backend *be = &ordo_storage_postgres;
  ordo_storage_tag tags[2] = {T("a", "1", 0), T("~b", "2", 1)};
  ordo_storage *st = db_open(f, f->ctx, ORDO_STORAGE_CREATE);
  static const char kept_tags[] =
      "SELECT (SELECT count(*) FROM ordo_tag_enc t JOIN ordo_item i ON i.id ="
      " t.item WHERE i.name = 'orphan-kept'::bytea) + (SELECT count(*) FROM"
      " ordo_tag_plain t JOIN ordo_item i ON i.id = t.item WHERE i.name ="
      " 'orphan-kept'::bytea)";
  assert_int_equal(add(f, st, "c", "orphan-gone", "v", tags, 2), ORDO_OK);
  assert_int_equal(add(f, st, "c", "orphan-kept", "v", tags, 2), ORDO_OK);
  long long before = sql_count("SELECT count(*) FROM ordo_tag_enc") +
                     sql_count("SELECT count(*) FROM ordo_tag_plain");
  ordo_storage_req r;
  req_init(&r, f, ORDO_STORAGE_DELETE, "c", "orphan-gone", NULL);
  assert_int_equal(run(f, st, &r), ORDO_OK);
  ordo_storage_req_clear_output(&r);
  assert_int_equal(sql_count("SELECT count(*) FROM ordo_tag_enc") +
                       sql_count("SELECT count(*) FROM ordo_tag_plain"),
                   before - 2);
  assert_int_equal(sql_count(kept_tags), 2);
  assert_int_equal(orphans(), 0);
  db_close(f, st);
  assert_int_equal(be->destroy(be, f->path, NULL), ORDO_OK);
  assert_int_equal(sql_count(kept_tags), 0);
  assert_int_equal(orphans(), 0);
}

/* EXCLUSIVE: a second opener is refused, and told who holds it, until the
 * first closes. */
static void test_pg_exclusive(void **state) {
  fx *f = *state;
  const ordo_storage_backend *be = &ordo_storage_postgres;
  ordo_storage *st = db_open(f, f->ctx, ORDO_STORAGE_CREATE | ORDO_STORAGE_EXCLUSIVE);
  ordo_ctx *ctx2 = ctx_make(0, 1);
  ordo_storage *other = NULL;
  char *err = NULL;
  assert_int_equal(be->open(be, ctx2, f->path, ORDO_STORAGE_EXCLUSIVE, &other,
                            &err), ORDO_E_STORAGE_BUSY);
  assert_null(other);
  assert_non_null(strstr(err, "another process"));
  assert_non_null(strstr(err, "ordo pid"));
  free(err);
  /* Not exclusive: shares it (a reader). */
  assert_int_equal(be->open(be, ctx2, f->path, 0, &other, NULL), ORDO_OK);
  db_close(f, other);
  db_close(f, st);
  assert_int_equal(be->open(be, ctx2, f->path, ORDO_STORAGE_EXCLUSIVE, &other,
                            NULL), ORDO_OK);
  db_close(f, other);
  ordo_ctx_free(ctx2);
}

/* Advisory locks held by this process's sessions, on the server. */
static int advisory_locks_held(void) {
  char sql[300];
  snprintf(sql, sizeof sql, "SELECT count(*) FROM pg_locks l JOIN"
           " pg_stat_activity a ON a.pid = l.pid WHERE l.locktype ="
           " 'advisory' AND a.application_name = 'ordo pid %ld'",
           (long)getpid());
  return (int)sql_count(sql);
}

typedef struct close_seen {
  support_latch done;
  int held; /* advisory locks still held when CLOSE's done ran */
} close_seen;

static void close_done_locks(ordo_storage_req *req) {
  close_seen *cs = req->userdata;
  cs->held = advisory_locks_held(); /* blocks its executor: a test only */
  support_latch_count_down(&cs->done);
}

/* When CLOSE's done runs an EXCLUSIVE store's lock is already released
 * (the journal opens it again right after its close returns). */
static void test_pg_close_unlocks_first(void **state) {
  fx *f = *state;
  ordo_storage *st = db_open(f, f->ctx,
                             ORDO_STORAGE_CREATE | ORDO_STORAGE_EXCLUSIVE);
  ordo_storage_req r;
  close_seen cs;
  assert_int_equal(advisory_locks_held(), 1);
  support_latch_init(&cs.done, 1);
  cs.held = -1;
  memset(&r, 0, sizeof r);
  r.opcode = ORDO_STORAGE_CLOSE;
  r.done = close_done_locks;
  r.userdata = &cs;
  assert_int_equal(st->backend->submit(st, &r), ORDO_OK);
  support_latch_wait(&cs.done);
  support_latch_destroy(&cs.done);
  assert_int_equal(r.status, ORDO_OK);
  assert_int_equal(cs.held, 0);
}

/* Twenty stores of one context on a pool of 2 hold no more than 2
 * connections, however many requests they have in flight. */
static void test_pg_pool_bound(void **state) {
  fx *f = *state;
  const ordo_storage_backend *be = &ordo_storage_postgres;
  enum { N = 20 };
  ordo_storage *st[N];
  ordo_storage_req reqs[N];
  char url[512], base[400], tag[32];
  snprintf(base, sizeof base, "%s?ordo_pool=2", g_pg.url);
  for (int i = 0; i < N; i++) {
    snprintf(tag, sizeof tag, "pool-%d", i);
    store_url(url, sizeof url, base, tag);
    char *err = NULL;
    int rc = be->open(be, f->ctx, url, ORDO_STORAGE_CREATE, &st[i], &err);
    if (rc != ORDO_OK)
      fail_msg("open: %s", err);
  }
  unsigned long target = fx_done(f) + N;
  for (int i = 0; i < N; i++) {
    req_init(&reqs[i], f, ORDO_STORAGE_ADD, "c", "k", "v");
    assert_int_equal(be->submit(st[i], &reqs[i]), ORDO_OK);
  }
  fx_wait(f, target);
  for (int i = 0; i < N; i++)
    assert_int_equal(reqs[i].status, ORDO_OK);
  assert_true(server_connections() <= 2);
  for (int i = 0; i < N; i++)
    db_close(f, st[i]);
  assert_int_equal(server_connections(), 0); /* the last close ends it */
}

/* The server restarts between two requests: the second reconnects. While
 * it is down a request fails after the wait, saying since when and why. */
static void test_pg_server_restart(void **state) {
  fx *f = *state;
  const ordo_storage_backend *be = &ordo_storage_postgres;
  char url[512], base[400];
  snprintf(base, sizeof base, "%s?ordo_wait=1", g_pg.url);
  store_url(url, sizeof url, base, "restart");
  ordo_storage *st = NULL;
  assert_int_equal(be->open(be, f->ctx, url, ORDO_STORAGE_CREATE, &st, NULL),
                   ORDO_OK);
  assert_int_equal(add(f, st, "c", "before", "v", NULL, 0), ORDO_OK);
  assert_int_equal(support_pg_stop(&g_pg, 0), 0);

  ordo_storage_req r;
  req_init(&r, f, ORDO_STORAGE_ADD, "c", "while-down", "v");
  assert_int_equal(run(f, st, &r), ORDO_E_STORAGE);
  assert_non_null(r.message);
  if (strstr(r.message, "unreachable since") == NULL)
    fail_msg("message: %s", r.message);
  ordo_storage_req_clear_output(&r);

  assert_int_equal(support_pg_restart(&g_pg), 0);
  assert_int_equal(add(f, st, "c", "after", "v", NULL, 0), ORDO_OK);
  assert_int_equal(count_where(f, st, "c", NULL), 2);
  db_close(f, st);
}

/* The server dies (immediate shutdown: no checkpoint, connections cut)
 * while writers keep groups in flight. Every request is answered; every
 * write answered OK is there after the restart; a failed one says why. */
typedef struct writer {
  fx *f;
  ordo_storage *st;
  int id;
  int n;               /* submitted and answered */
  int ok[400];         /* status per write */
  char msg[200];       /* the first failure's message */
} writer;

static void writer_done(ordo_storage_req *req) {
  support_latch_count_down(req->userdata);
}

static void *writer_main(void *arg) {
  writer *w = arg;
  for (int i = 0; i < 400; i++) {
    char name[32];
    snprintf(name, sizeof name, "w%d-%d", w->id, i);
    ordo_storage_req r;
    support_latch l;
    support_latch_init(&l, 1);
    memset(&r, 0, sizeof r);
    r.opcode = ORDO_STORAGE_ADD;
    r.rec.category = B("c");
    r.rec.name = B(name);
    r.rec.value = B("v");
    r.done = writer_done;
    r.userdata = &l;
    if (w->st->backend->submit(w->st, &r) != ORDO_OK) {
      support_latch_destroy(&l);
      break;
    }
    support_latch_wait(&l);
    support_latch_destroy(&l);
    w->ok[i] = r.status;
    if (r.status != ORDO_OK && w->msg[0] == 0)
      snprintf(w->msg, sizeof w->msg, "%s", r.message ? r.message : "");
    ordo_storage_req_clear_output(&r);
    w->n = i + 1;
  }
  return NULL;
}

static void test_pg_kill_mid_transaction(void **state) {
  fx *f = *state;
  const ordo_storage_backend *be = &ordo_storage_postgres;
  char url[512], base[400];
  snprintf(base, sizeof base, "%s?ordo_wait=2", g_pg.url);
  store_url(url, sizeof url, base, "kill");
  ordo_storage *st = NULL;
  assert_int_equal(be->open(be, f->ctx, url, ORDO_STORAGE_CREATE, &st, NULL),
                   ORDO_OK);
  enum { W = 8 };
  writer w[W];
  pthread_t th[W];
  for (int i = 0; i < W; i++) {
    memset(&w[i], 0, sizeof w[i]);
    w[i].f = f;
    w[i].st = st;
    w[i].id = i;
    assert_int_equal(pthread_create(&th[i], NULL, writer_main, &w[i]), 0);
  }
  /* Kill once the writers are well under way. */
  ordo_storage_req r;
  do {
    req_init(&r, f, ORDO_STORAGE_COUNT, "c", NULL, NULL);
    assert_int_equal(run(f, st, &r), ORDO_OK);
  } while (r.count < 200);
  assert_int_equal(support_pg_stop(&g_pg, 1), 0);
  assert_int_equal(support_pg_restart(&g_pg), 0);
  for (int i = 0; i < W; i++)
    assert_int_equal(pthread_join(th[i], NULL), 0);

  int failed = 0;
  for (int i = 0; i < W; i++) {
    assert_int_equal(w[i].n, 400); /* every request answered */
    for (int k = 0; k < 400; k++) {
      char name[32];
      snprintf(name, sizeof name, "w%d-%d", i, k);
      ordo_storage_record rec;
      int rc = get(f, st, "c", name, &rec);
      if (w[i].ok[k] == ORDO_OK) {
        if (rc != ORDO_OK)
          fail_msg("%s was answered as written but is not there", name);
        ordo_storage_record_clear(&rec);
      } else {
        assert_int_equal(w[i].ok[k], ORDO_E_STORAGE);
        failed++;
        if (rc == ORDO_OK)
          ordo_storage_record_clear(&rec);
      }
    }
    if (w[i].msg[0] != 0 && strstr(w[i].msg, "may or may not") == NULL &&
        strstr(w[i].msg, "unreachable since") == NULL)
      fail_msg("a failure that does not say why: %s", w[i].msg);
  }
  print_message("kill: %d of %d writes failed (outcome unknown or refused)\n",
                failed, W * 400);
  db_close(f, st);
}

/* ---- lease fencing (clusters, schema 3) ----------------------------------- */

/* How many records named `name` the store named `store` holds (both
 * trusted text). */
static long long records_named(const char *store, const char *name) {
  char sql[600];
  snprintf(sql, sizeof sql, "SELECT count(*) FROM ordo_item i JOIN ordo_store"
           " s ON s.id = i.store WHERE s.name = '%s' AND i.name = '%s'::bytea",
           store, name);
  return sql_count(sql);
}

/* r was refused by the fence: its code, and the server's words, which name
 * the lease and where it is now (`now`, e.g. "at epoch 2 (owner b)"). */
static void expect_fenced(const ordo_storage_req *r, const char *lease,
                          const char *now) {
  assert_int_equal(r->status, ORDO_E_STORAGE_FENCED);
  assert_non_null(r->message);
  if (strstr(r->message, lease) == NULL || strstr(r->message, now) == NULL)
    fail_msg("not the fence's message: %s", r->message);
}

/* One request on st that the fence refuses (the lease is `now`). */
static void add_fenced(fx *f, ordo_storage *st, const char *name,
                       const char *lease, const char *now) {
  ordo_storage_req r;
  req_init(&r, f, ORDO_STORAGE_ADD, "c", name, "v");
  assert_int_equal(run(f, st, &r), ORDO_E_STORAGE_FENCED);
  expect_fenced(&r, lease, now);
  ordo_storage_req_clear_output(&r);
  assert_int_equal(records_named(lease, name), 0);
}

/* What ordo__storage_postgres_fence refuses. */
static void fence_refusals(fx *f, ordo_storage *st) {
  char path[300];
  ordo_storage *lite = NULL;
  snprintf(path, sizeof path, "%s/wallet.db", f->dir);
  assert_int_equal(ordo_storage_sqlite.open(&ordo_storage_sqlite, f->ctx, path,
                                            ORDO_STORAGE_CREATE, &lite, NULL),
                   ORDO_OK);
  assert_int_equal(ordo__storage_postgres_fence(lite, 1), ORDO_E_INVAL);
  db_close(f, lite);
  assert_int_equal(ordo__storage_postgres_fence(NULL, 1), ORDO_E_INVAL);
  /* No bigint holds it: refused, and st stays unfenced. */
  assert_int_equal(ordo__storage_postgres_fence(st, ULLONG_MAX), ORDO_E_INVAL);
}

/* After a takeover every request of a fenced transaction fails with the
 * fence's code and message: held back behind a done so that they go as
 * one group, a write, a read and a BATCH (each of its requests too). */
static void fenced_group(fx *f, ordo_storage *st, const char *lease) {
  holder h;
  ordo_storage_req first, r[3], sub[2];
  holder_start(&h, f, st, &first, "held");
  req_init(&r[0], f, ORDO_STORAGE_ADD, "c", "g-add", "v");
  req_init(&r[1], f, ORDO_STORAGE_GET, "c", "one", NULL);
  req_init(&sub[0], f, ORDO_STORAGE_ADD, "c", "g-batch", "v");
  req_init(&sub[1], f, ORDO_STORAGE_UPDATE_VALUE, "c", "one", "w");
  req_init(&r[2], f, ORDO_STORAGE_BATCH, NULL, NULL, NULL);
  r[2].batch = sub;
  r[2].nbatch = 2;
  unsigned long target = fx_done(f) + 4;
  for (int i = 0; i < 3; i++)
    assert_int_equal(st->backend->submit(st, &r[i]), ORDO_OK);
  support_gate_open(&h.gate);
  fx_wait(f, target);
  expect_fenced(&first, lease, "at epoch 2 (owner b)");
  for (int i = 0; i < 3; i++)
    expect_fenced(&r[i], lease, "at epoch 2 (owner b)");
  assert_null(r[1].result.value.data);
  assert_int_equal(sub[0].status, ORDO_E_STORAGE_FENCED);
  assert_int_equal(sub[1].status, ORDO_E_STORAGE_FENCED);
  assert_int_equal(records_named(lease, "held") + records_named(lease, "g-add") +
                       records_named(lease, "g-batch"), 0);
  ordo_storage_req_clear_output(&first);
  for (int i = 0; i < 3; i++)
    ordo_storage_req_clear_output(&r[i]);
  for (int i = 0; i < 2; i++)
    ordo_storage_req_clear_output(&sub[i]);
  holder_destroy(&h);
}

/*
 * A fenced store's transactions run while the lease named after it is at
 * the epoch it was fenced at. Once another owner took the lease over (or
 * there is no lease), every one fails with ORDO_E_STORAGE_FENCED and the
 * server's message; what it would have written is not there, and the
 * chained writes behind a fenced one fail by the chain rule. Another
 * handle fenced at the new epoch writes; so does one of one request per
 * transaction (NO_GROUP_COMMIT, no guard), until it is fenced out too.
 */
static void test_pg_fence(void **state) {
  fx *f = *state;
  const char *lease = strchr(f->path, '#') + 1;
  ordo_storage *st = db_open(f, f->ctx, ORDO_STORAGE_CREATE);
  fence_refusals(f, st);
  support_pg_exec(&g_pg, "INSERT INTO ordo_lease(name, owner, epoch)"
                  " VALUES ($1, 'a', 1)", lease);
  assert_int_equal(ordo__storage_postgres_fence(st, 1), ORDO_OK);
  ordo_storage_req r;
  req_init(&r, f, ORDO_STORAGE_ADD, "c", "one", "v");
  r.flags = ORDO_STORAGE_REQ_CHAINED;
  assert_int_equal(run(f, st, &r), ORDO_OK);
  ordo_storage_req_clear_output(&r);

  /* b takes the lease over: a's chained write is refused, not applied. */
  support_pg_exec(&g_pg, "UPDATE ordo_lease SET owner = 'b', epoch = 2"
                  " WHERE name = $1", lease);
  req_init(&r, f, ORDO_STORAGE_ADD, "c", "two", "v");
  r.flags = ORDO_STORAGE_REQ_CHAINED;
  assert_int_equal(run(f, st, &r), ORDO_E_STORAGE_FENCED);
  expect_fenced(&r, lease, "at epoch 2 (owner b)");
  if (strstr(r.message, "opened at epoch 1") == NULL)
    fail_msg("message: %s", r.message);
  ordo_storage_req_clear_output(&r);
  assert_int_equal(records_named(lease, "two"), 0);
  /* The next chained write fails unsent, by the chain rule. */
  req_init(&r, f, ORDO_STORAGE_ADD, "c", "three", "v");
  r.flags = ORDO_STORAGE_REQ_CHAINED;
  assert_int_equal(run(f, st, &r), ORDO_E_STORAGE);
  if (strstr(r.message, "earlier write of its chain") == NULL)
    fail_msg("message: %s", r.message);
  ordo_storage_req_clear_output(&r);
  assert_int_equal(records_named(lease, "three"), 0);
  fenced_group(f, st, lease);

  /* b's handle, fenced at 2, writes and reads what a wrote before. */
  ordo_storage *b = db_open(f, f->ctx, 0);
  assert_int_equal(ordo__storage_postgres_fence(b, 2), ORDO_OK);
  assert_int_equal(add(f, b, "c", "four", "v", NULL, 0), ORDO_OK);
  ordo_storage_record rec;
  assert_int_equal(get(f, b, "c", "one", &rec), ORDO_OK);
  ordo_storage_record_clear(&rec);
  add_fenced(f, st, "five", lease, "at epoch 2 (owner b)");

  /* One request per transaction goes through the fence too. */
  ordo_storage *c = db_open(f, f->ctx, ORDO_STORAGE_NO_GROUP_COMMIT);
  assert_int_equal(ordo__storage_postgres_fence(c, 2), ORDO_OK);
  assert_int_equal(add(f, c, "c", "six", "v", NULL, 0), ORDO_OK);
  support_pg_exec(&g_pg, "UPDATE ordo_lease SET owner = 'c', epoch = 3"
                  " WHERE name = $1", lease);
  add_fenced(f, c, "seven", lease, "at epoch 3 (owner c)");
  add_fenced(f, b, "seven", lease, "at epoch 3 (owner c)");

  /* No lease at all: refused too. */
  support_pg_exec(&g_pg, "DELETE FROM ordo_lease WHERE name = $1", lease);
  add_fenced(f, b, "eight", lease, "at epoch none (owner none)");
  db_close(f, c);
  db_close(f, b);
  db_close(f, st);
  assert_int_equal(records_named(lease, "one") + records_named(lease, "four") +
                       records_named(lease, "six"), 3);
}

/* Poll the server until the count sql answers is want (at most 30 s): a
 * state another session reaches, not a guess at how long it takes. */
static void wait_for_count(const char *sql, long long want) {
  for (int i = 0; i < 30000; i++) {
    if (sql_count(sql) == want)
      return;
    usleep(1000);
  }
  fail_msg("never came to %lld: %s", want, sql);
}

/* Whether the statement sent on c waits for a lock (1) rather than having
 * finished (0); the test fails if it does neither within 30 s. */
static int waits_for_lock(PGconn *c) {
  char sql[200];
  snprintf(sql, sizeof sql, "SELECT count(*) FROM pg_stat_activity WHERE"
           " pid = %d AND wait_event_type = 'Lock'", PQbackendPID(c));
  for (int i = 0; i < 30000; i++) {
    if (sql_count(sql) == 1)
      return 1;
    assert_int_equal(PQconsumeInput(c), 1);
    if (!PQisBusy(c))
      return 0;
    usleep(1000);
  }
  fail_msg("neither waiting nor done: %s", sql);
  return 0;
}

/* The advisory lock test_pg_fence_waits holds the fenced write on. */
#define FENCE_HOLD_KEY "4242"

/* The hold: a trigger makes the insert of a record named 'held' wait, in
 * the server, for the advisory lock that `hold` takes here. */
static PGconn *hold_start(void) {
  support_pg_exec(&g_pg, "CREATE FUNCTION test_hold() RETURNS trigger"
                  " LANGUAGE plpgsql AS $$ BEGIN IF NEW.name = 'held'::bytea"
                  " THEN PERFORM pg_advisory_xact_lock(" FENCE_HOLD_KEY ");"
                  " END IF; RETURN NEW; END $$", NULL);
  support_pg_exec(&g_pg, "CREATE TRIGGER test_hold BEFORE INSERT ON ordo_item"
                  " FOR EACH ROW EXECUTE FUNCTION test_hold()", NULL);
  PGconn *hold = PQconnectdb(g_pg.url);
  assert_int_equal(PQstatus(hold), CONNECTION_OK);
  PGresult *res = PQexec(hold, "SELECT pg_advisory_lock(" FENCE_HOLD_KEY ")");
  assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
  PQclear(res);
  return hold;
}

static void hold_end(PGconn *hold) {
  PQfinish(hold); /* the lock goes with the session */
  support_pg_exec(&g_pg, "DROP TRIGGER test_hold ON ordo_item", NULL);
  support_pg_exec(&g_pg, "DROP FUNCTION test_hold()", NULL);
}

/*
 * A fenced transaction holds the lease row's share lock until it ends: a
 * claim that skips locked rows skips the lease, and a takeover waits for
 * the fenced write to commit (which it may: the lease was still its own
 * when it began); only the next transaction is refused. The write is held
 * inside the server, after its fence, by a trigger waiting for an advisory
 * lock this test holds; each step waits for a state the server shows
 * (pg_locks, pg_stat_activity), and what is seen is checked once the write
 * is let go (a failed check must not leave it held).
 */
static void test_pg_fence_waits(void **state) {
  fx *f = *state;
  const char *lease = strchr(f->path, '#') + 1;
  ordo_storage *st = db_open(f, f->ctx, ORDO_STORAGE_CREATE);
  support_pg_exec(&g_pg, "INSERT INTO ordo_lease(name, owner, epoch)"
                  " VALUES ($1, 'a', 1)", lease);
  assert_int_equal(ordo__storage_postgres_fence(st, 1), ORDO_OK);
  PGconn *hold = hold_start(), *taker = PQconnectdb(g_pg.url);
  assert_int_equal(PQstatus(taker), CONNECTION_OK);

  ordo_storage_req w;
  unsigned long target = fx_done(f) + 1;
  req_init(&w, f, ORDO_STORAGE_ADD, "c", "held", "v");
  assert_int_equal(st->backend->submit(st, &w), ORDO_OK);
  wait_for_count("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
                 " AND objid = " FENCE_HOLD_KEY " AND NOT granted", 1);
  char sql[600];
  snprintf(sql, sizeof sql, "SELECT count(*) FROM (SELECT 1 FROM ordo_lease"
           " WHERE name = '%s' FOR UPDATE SKIP LOCKED) l", lease);
  long long unlocked = sql_count(sql);
  const char *vals[] = {lease};
  assert_int_equal(PQsendQueryParams(taker, "UPDATE ordo_lease SET owner ="
                                     " 'b', epoch = epoch + 1 WHERE name = $1",
                                     1, NULL, vals, NULL, NULL, 0), 1);
  int waited = waits_for_lock(taker);
  unsigned long answered = fx_done(f) - (target - 1);
  PGresult *res = PQexec(hold, "SELECT pg_advisory_unlock(" FENCE_HOLD_KEY ")");
  assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
  PQclear(res);
  fx_wait(f, target);
  res = PQgetResult(taker);
  assert_int_equal(PQresultStatus(res), PGRES_COMMAND_OK);
  assert_string_equal(PQcmdTuples(res), "1");
  PQclear(res);
  assert_null(PQgetResult(taker));
  PQfinish(taker);
  hold_end(hold);

  assert_int_equal(unlocked, 0); /* skipped: share-locked by the write */
  assert_true(waited);           /* the takeover waited for it */
  assert_int_equal(answered, 0); /* which was not answered meanwhile */
  assert_int_equal(w.status, ORDO_OK);
  ordo_storage_req_clear_output(&w);
  assert_int_equal(records_named(lease, "held"), 1);
  /* Now the lease is b's: the next transaction is refused. */
  add_fenced(f, st, "after", lease, "at epoch 2 (owner b)");
  db_close(f, st);
  support_pg_exec(&g_pg, "DELETE FROM ordo_lease WHERE name = $1", lease);
}

/* pg's URL with another database name (`db`). */
static void url_with_db(char *out, size_t n, const char *db) {
  const char *slash = strrchr(g_pg.url, '/');
  const char *query = strchr(slash, '?');
  assert_true((size_t)snprintf(out, n, "%.*s/%s%s", (int)(slash - g_pg.url),
                               g_pg.url, db, query != NULL ? query : "") < n);
}

/* A context of its own opens url (a new pool: the schema is checked
 * again); the open's status, *st when it worked, *err when not. */
static int open_fresh(ordo_ctx **ctx, const char *url, int flags,
                      ordo_storage **st, char **err) {
  *ctx = ctx_make(0, 1);
  return ordo_storage_postgres.open(&ordo_storage_postgres, *ctx, url, flags,
                                    st, err);
}

/*
 * Schema 2 -> 3, in a database of its own: a schema-3 database is taken
 * back to exactly what schema 2 had (migration 3 only adds), and the next
 * process to open a store there migrates it again, keeping its records; a
 * database newer than this ordo knows is refused ("upgrade ordo").
 */
static void test_pg_schema_3(void **state) {
  fx *f = *state;
  char url[400], store[450];
  char *err = NULL;
  ordo_ctx *ctx;
  ordo_storage *st = NULL;
  support_pg_exec(&g_pg, "CREATE DATABASE ordo_migrate", NULL);
  url_with_db(url, sizeof url, "ordo_migrate");
  /* ordo_wait=1: a refused schema is retried as long as a server that is
   * down would be. */
  snprintf(store, sizeof store, "%s%cordo_wait=1#m", url,
           strchr(url, '?') != NULL ? '&' : '?');
  assert_int_equal(open_fresh(&ctx, store, ORDO_STORAGE_CREATE, &st, NULL),
                   ORDO_OK);
  assert_int_equal(add(f, st, "c", "kept", "v", NULL, 0), ORDO_OK);
  db_close(f, st);
  ordo_ctx_free(ctx);
  sql_exec_at(url, "DROP TABLE ordo_lease, ordo_cluster_seq,"
              " ordo_cluster_batch, ordo_cluster_instance;"
              " DROP FUNCTION ordo_fence(text, bigint);"
              " DELETE FROM ordo_schema WHERE version = 3");
  assert_int_equal(sql_count_at(url, "SELECT max(version) FROM ordo_schema"), 2);

  assert_int_equal(open_fresh(&ctx, store, 0, &st, NULL), ORDO_OK);
  assert_int_equal(sql_count_at(url, "SELECT max(version) FROM ordo_schema"), 3);
  assert_int_equal(sql_count_at(url, "SELECT count(*) FROM ordo_schema"), 3);
  assert_int_equal(sql_count_at(url, "SELECT count(*) FROM unnest(ARRAY["
                                "'ordo_lease', 'ordo_cluster_seq',"
                                " 'ordo_cluster_batch', 'ordo_cluster_instance',"
                                " 'ordo_cluster_inbox']) t"
                                " WHERE to_regclass(t) IS NOT NULL"), 5);
  assert_int_equal(count_where(f, st, "c", NULL), 1);
  sql_exec_at(url, "INSERT INTO ordo_lease(name, epoch) VALUES ('m', 7)");
  assert_int_equal(ordo__storage_postgres_fence(st, 7), ORDO_OK);
  assert_int_equal(add(f, st, "c", "fenced", "v", NULL, 0), ORDO_OK);
  db_close(f, st);
  ordo_ctx_free(ctx);

  sql_exec_at(url, "INSERT INTO ordo_schema(version) VALUES (4)");
  assert_int_equal(open_fresh(&ctx, store, 0, &st, &err), ORDO_E_STORAGE);
  assert_null(st);
  if (strstr(err, "version 4") == NULL || strstr(err, "upgrade ordo") == NULL)
    fail_msg("message: %s", err);
  free(err);
  ordo_ctx_free(ctx);
  support_pg_exec(&g_pg, "DROP DATABASE ordo_migrate WITH (FORCE)", NULL);
}

int main(void) {
  int rc = support_pg_start_for_main(&g_pg);
  if (rc != 0)
    return rc;
  g_be = &ordo_storage_postgres;
  g_pg_url = g_pg.url;
#define T_(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
  const struct CMUnitTest tests[] = {
      T_(test_record_crud),
      T_(test_meta),
      T_(test_query_operators),
      T_(test_delete_matching),
      T_(test_invalid_requests),
      T_(test_batch),
      T_(test_group_duplicate_fails_alone),
      T_(test_group_reads_see_writes),
      T_(test_pg_add_undone_alone),
      T_(test_pg_pipeline_behind_failed_commit),
      T_(test_pg_pipeline_behind_failed_statement),
      T_(test_group_commit_many_threads),
      T_(test_no_group_commit),
      T_(test_done_submits),
      T_(test_single_executor),
      T_(test_close_after_pending),
      T_(test_durability),
      T_(test_two_connections),
      T_(test_pg_stores),
      T_(test_pg_exclusive),
      T_(test_pg_close_unlocks_first),
      T_(test_pg_pool_bound),
      T_(test_pg_server_restart),
      T_(test_pg_kill_mid_transaction),
      T_(test_pg_fence),
      T_(test_pg_fence_waits),
      T_(test_pg_schema_3),
      T_(test_pg_no_orphans), /* last: it checks what the others left */
  };
#undef T_
  rc = cmocka_run_group_tests_name("postgres", tests, NULL, NULL);
  support_pg_destroy(&g_pg);
  return rc;
}

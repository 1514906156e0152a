/*
 * test_storage.c — tests of the storage module: the SQLite backend through
 * its asynchronous interface (open, requests, group commit, close, destroy)
 * and the shared helpers of storage.c.
 *
 * Every wait is on an event: requests count a fixture's completion counter
 * up in their done callbacks and the test waits on its condition variable;
 * a done callback that must hold the database thread waits on a gate. Done
 * callbacks run on runtime threads and check with SUPPORT_CHECK.
 */
#include "ordo.h"
#include "runtime/runtime.h"
#include "storage/storage.h"
#include "support/support.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* cmocka.h needs these first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

/* The backend under test: SQLite here; test_postgres.c includes this file
 * and runs the backend-neutral tests again on PostgreSQL, where f->path is
 * a store URL (g_pg_url#NAME) instead of a file. */
static const ordo_storage_backend *g_be = &ordo_storage_sqlite;
static const char *g_pg_url;
#define BE g_be

/* Write transactions st has committed, whichever backend it is on. */
static unsigned long long commits_of(ordo_storage *st) {
  return ordo__storage_sqlite_commits(st) + ordo__storage_postgres_commits(st);
}

/* ------------------------------------------------------------------------ */
/* Fixture                                                                   */
/* ------------------------------------------------------------------------ */

/* A temporary directory, a context, and a counter of completed requests. */
typedef struct fx {
  char dir[256];
  char path[300];
  ordo_ctx *ctx;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  unsigned long done; /* requests whose done has run; under mu */
} fx;

static ordo_ctx *ctx_make(int single, unsigned cheap) {
  ordo_config cfg;
  ordo_config_init(&cfg);
  cfg.cheap_threads = cheap;
  cfg.heavy_threads = 1;
  cfg.single_executor = single;
  ordo_ctx *ctx = ordo_ctx_new(&cfg);
  if (ctx == NULL)
    fail_msg("ordo_ctx_new: %s", ordo_last_error_message());
  return ctx;
}

static int fx_setup(void **state) {
  fx *f = calloc(1, sizeof(*f));
  assert_non_null(f);
  const char *tmp = getenv("TMPDIR");
  snprintf(f->dir, sizeof(f->dir), "%s/ordo-storage-XXXXXX",
           tmp != NULL && tmp[0] != 0 ? tmp : "/tmp");
  assert_non_null(mkdtemp(f->dir));
  snprintf(f->path, sizeof(f->path), "%s/wallet.db", f->dir);
  if (g_pg_url != NULL) {
    /* A store of its own per test: they outlive the test on the server. */
    static int seq;
    snprintf(f->path, sizeof(f->path), "%s#test/%ld/%d", g_pg_url,
             (long)getpid(), ++seq);
  }
  f->ctx = ctx_make(0, 2);
  assert_int_equal(pthread_mutex_init(&f->mu, NULL), 0);
  assert_int_equal(pthread_cond_init(&f->cv, NULL), 0);
  *state = f;
  return 0;
}

/* Removes whatever a test left in its directory (tests make a few files). */
static int fx_teardown(void **state) {
  fx *f = *state;
  ordo_ctx_free(f->ctx);
  static const char *const names[] = {
      "wallet.db", "wallet.db-wal", "wallet.db-shm", "wallet.db-journal",
      "foreign.db", "foreign.db-journal", "garbage.db", "sub"};
  for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
    char p[400];
    snprintf(p, sizeof(p), "%s/%s", f->dir, names[i]);
    if (unlink(p) != 0 && (errno == EISDIR || errno == EPERM))
      (void)rmdir(p); /* "sub" is a directory; absent files are fine */
  }
  assert_int_equal(rmdir(f->dir), 0);
  pthread_cond_destroy(&f->cv);
  pthread_mutex_destroy(&f->mu);
  free(f);
  assert_int_equal(support_take_failures(), 0);
  return 0;
}

static void on_done(ordo_storage_req *req) {
  fx *f = req->userdata;
  SUPPORT_CHECK(ordo__on_runtime_thread());
  pthread_mutex_lock(&f->mu);
  f->done++;
  pthread_cond_broadcast(&f->cv);
  pthread_mutex_unlock(&f->mu);
}

static unsigned long fx_done(fx *f) {
  pthread_mutex_lock(&f->mu);
  unsigned long n = f->done;
  pthread_mutex_unlock(&f->mu);
  return n;
}

static void fx_wait(fx *f, unsigned long n) {
  pthread_mutex_lock(&f->mu);
  while (f->done < n)
    pthread_cond_wait(&f->cv, &f->mu);
  pthread_mutex_unlock(&f->mu);
}

/* ------------------------------------------------------------------------ */
/* Requests                                                                  */
/* ------------------------------------------------------------------------ */

/* A borrowed buffer over a C string (requests only read their inputs). */
static ordo_storage_buf B(const char *s) {
  ordo_storage_buf b = {(unsigned char *)s, strlen(s)};
  return b;
}

static void req_init(ordo_storage_req *r, fx *f, ordo_storage_opcode op,
                     const char *cat, const char *name, const char *value) {
  memset(r, 0, sizeof(*r));
  r->opcode = op;
  if (cat != NULL)
    r->rec.category = B(cat);
  if (name != NULL)
    r->rec.name = B(name);
  if (value != NULL)
    r->rec.value = B(value);
  r->done = on_done;
  r->userdata = f;
}

/* Submit and wait for done (no other request of f may be outstanding).
 * Returns submit's error, or the request's status. */
static int run(fx *f, ordo_storage *st, ordo_storage_req *r) {
  unsigned long target = fx_done(f) + 1;
  int rc = st->backend->submit(st, r);
  if (rc != ORDO_OK)
    return rc;
  fx_wait(f, target);
  return r->status;
}

static ordo_storage *db_open(fx *f, ordo_ctx *ctx, int flags) {
  ordo_storage *st = NULL;
  char *err = NULL;
  int rc = BE->open(BE, ctx, f->path, flags, &st, &err);
  if (rc != ORDO_OK)
    fail_msg("open %s: %s: %s", f->path, ordo_errname(rc), err ? err : "");
  assert_null(err);
  assert_non_null(st);
  assert_ptr_equal(st->backend, BE);
  return st;
}

static void db_close(fx *f, ordo_storage *st) {
  ordo_storage_req r;
  req_init(&r, f, ORDO_STORAGE_CLOSE, NULL, NULL, NULL);
  assert_int_equal(run(f, st, &r), ORDO_OK);
  assert_null(r.message);
}

static int add(fx *f, ordo_storage *st, const char *cat, const char *name,
               const char *value, ordo_storage_tag *tags, size_t ntags) {
  ordo_storage_req r;
  req_init(&r, f, ORDO_STORAGE_ADD, cat, name, value);
  r.rec.tags = tags;
  r.rec.ntags = ntags;
  int rc = run(f, st, &r);
  ordo_storage_req_clear_output(&r);
  return rc;
}

/* GET into *out (cleared by the caller with ordo_storage_record_clear). */
static int get(fx *f, ordo_storage *st, const char *cat, const char *name,
               ordo_storage_record *out) {
  ordo_storage_req r;
  req_init(&r, f, ORDO_STORAGE_GET, cat, name, NULL);
  int rc = run(f, st, &r);
  if (rc == ORDO_OK) {
    *out = r.result;
    memset(&r.result, 0, sizeof(r.result));
  } else {
    assert_null(r.result.value.data);
    assert_non_null(r.message);
  }
  ordo_storage_req_clear_output(&r);
  return rc;
}

static ordo_storage_tag T(const char *name, const char *value, int plaintext) {
  ordo_storage_tag t = {B(name), B(value), plaintext};
  return t;
}

/* The value of tag name in rec as a C string (returned buffers carry a NUL
 * after len), or NULL when absent. */
static const char *tag_of(const ordo_storage_record *rec, const char *name,
                          int plaintext) {
  for (size_t i = 0; i < rec->ntags; i++) {
    const ordo_storage_tag *t = &rec->tags[i];
    if (t->plaintext == plaintext && t->name.len == strlen(name) &&
        memcmp(t->name.data, name, t->name.len) == 0)
      return (const char *)t->value.data;
  }
  return NULL;
}

static int buf_is(const ordo_storage_buf *b, const char *s) {
  return b->len == strlen(s) && memcmp(b->data, s, b->len) == 0;
}

static unsigned long long count_where(fx *f, ordo_storage *st, const char *cat,
                                      ordo_storage_query *q) {
  ordo_storage_req r;
  req_init(&r, f, ORDO_STORAGE_COUNT, cat, NULL, NULL);
  r.query = q;
  int rc = run(f, st, &r);
  if (rc != ORDO_OK)
    fail_msg("count: %s: %s", ordo_errname(rc), r.message ? r.message : "");
  unsigned long long n = r.count;
  ordo_storage_req_clear_output(&r);
  return n;
}

/* ------------------------------------------------------------------------ */
/* Query trees (malloc'd, freed by ordo_storage_query_free)                  */
/* ------------------------------------------------------------------------ */

static ordo_storage_buf dup_buf(const char *s) {
  ordo_storage_buf b = {malloc(strlen(s) + 1), strlen(s)};
  assert_non_null(b.data);
  memcpy(b.data, s, b.len + 1);
  return b;
}

static ordo_storage_query *q_new(ordo_storage_qop op) {
  ordo_storage_query *q = calloc(1, sizeof(*q));
  assert_non_null(q);
  q->op = op;
  return q;
}

static ordo_storage_query *q_leaf(ordo_storage_qop op, int plaintext,
                                  const char *tag, const char *value) {
  ordo_storage_query *q = q_new(op);
  q->plaintext = plaintext;
  q->tag_name = dup_buf(tag);
  q->values = calloc(1, sizeof(*q->values));
  assert_non_null(q->values);
  q->values[0] = dup_buf(value);
  q->nvalues = 1;
  return q;
}

/* IN over n values (n may be 0). */
static ordo_storage_query *q_in(int plaintext, const char *tag, int n, ...) {
  ordo_storage_query *q = q_new(ORDO_SQ_IN);
  q->plaintext = plaintext;
  q->tag_name = dup_buf(tag);
  if (n > 0) {
    q->values = calloc((size_t)n, sizeof(*q->values));
    assert_non_null(q->values);
  }
  va_list ap;
  va_start(ap, n);
  for (int i = 0; i < n; i++)
    q->values[i] = dup_buf(va_arg(ap, const char *));
  va_end(ap);
  q->nvalues = (size_t)n;
  return q;
}

/* AND / OR / NOT over n children (taken over). */
static ordo_storage_query *q_node(ordo_storage_qop op, int n, ...) {
  ordo_storage_query *q = q_new(op);
  if (n > 0) {
    q->children = calloc((size_t)n, sizeof(*q->children));
    assert_non_null(q->children);
  }
  va_list ap;
  va_start(ap, n);
  for (int i = 0; i < n; i++)
    q->children[i] = va_arg(ap, ordo_storage_query *);
  va_end(ap);
  q->nchildren = (size_t)n;
  return q;
}

/* ------------------------------------------------------------------------ */
/* Open, create, destroy                                                     */
/* ------------------------------------------------------------------------ */

static int exists(const char *path) {
  struct stat sb;
  return stat(path, &sb) == 0;
}

static int exists_suffix(const char *path, const char *suffix) {
  char p[400];
  /* A path that does not fit is a test bug: fail, do not look at a cut
   * one (and an optimizing compiler sees the check). */
  if ((size_t)snprintf(p, sizeof(p), "%s%s", path, suffix) >= sizeof(p))
    fail_msg("path too long: %s%s", path, suffix);
  return exists(p);
}

static void test_backend_find(void **state) {
  (void)state;
  assert_ptr_equal(ordo_storage_backend_find("sqlite"), BE);
  assert_null(ordo_storage_backend_find("postgres-someday"));
  assert_null(ordo_storage_backend_find(NULL));
  assert_int_equal(BE->version, 1);
  assert_string_equal(BE->name, "sqlite");
  /* NULLs are accepted by the freeing helpers. */
  ordo_storage_record_clear(NULL);
  ordo_storage_query_free(NULL);
  ordo_storage_req_clear_output(NULL);
}

static void test_create_open_destroy(void **state) {
  fx *f = *state;
  ordo_storage *st = NULL;
  char *err = NULL;

  /* Missing, without CREATE. */
  assert_int_equal(BE->open(BE, f->ctx, f->path, 0, &st, &err),
                   ORDO_E_WALLET_NOT_FOUND);
  assert_null(st);
  assert_non_null(err);
  assert_non_null(strstr(err, f->path));
  free(err);
  assert_false(exists(f->path));

  /* Create, then create again. */
  st = db_open(f, f->ctx, ORDO_STORAGE_CREATE);
  assert_true(exists(f->path));
  assert_int_equal(commits_of(st), 0);
  db_close(f, st);
  assert_int_equal(BE->open(BE, f->ctx, f->path, ORDO_STORAGE_CREATE, &st, &err),
                   ORDO_E_WALLET_EXISTS);
  assert_null(st);
  assert_non_null(err);
  free(err);
  err = NULL;

  /* Open the existing one; the file is private to its owner. */
  struct stat sb;
  assert_int_equal(stat(f->path, &sb), 0);
  assert_int_equal(sb.st_mode & 077, 0);
  st = db_open(f, f->ctx, 0);
  assert_int_equal(add(f, st, "c", "n", "v", NULL, 0), ORDO_OK);
  db_close(f, st);

  /* Bad arguments. */
  assert_int_equal(BE->open(BE, f->ctx, f->path, 8, &st, &err), ORDO_E_INVAL);
  free(err);
  err = NULL;
  assert_int_equal(BE->open(BE, f->ctx, NULL, 0, &st, NULL), ORDO_E_INVAL);
  assert_int_equal(BE->open(BE, NULL, f->path, 0, &st, NULL), ORDO_E_INVAL);
  assert_int_equal(BE->destroy(BE, NULL, NULL), ORDO_E_INVAL);

  /* Destroy removes the file and its WAL companions. */
  assert_int_equal(BE->destroy(BE, f->path, &err), ORDO_OK);
  assert_null(err);
  assert_false(exists(f->path));
  assert_false(exists_suffix(f->path, "-wal"));
  assert_false(exists_suffix(f->path, "-shm"));
  assert_int_equal(BE->destroy(BE, f->path, &err), ORDO_E_WALLET_NOT_FOUND);
  assert_non_null(err);
  free(err);
  err = NULL;
  assert_int_equal(BE->open(BE, f->ctx, f->path, 0, &st, NULL),
                   ORDO_E_WALLET_NOT_FOUND);

  /* A fresh create after destroy starts empty. */
  st = db_open(f, f->ctx, ORDO_STORAGE_CREATE);
  assert_int_equal(count_where(f, st, "c", NULL), 0);
  db_close(f, st);
  assert_int_equal(BE->destroy(BE, f->path, NULL), ORDO_OK);

  /* A directory that does not exist: create fails, nothing is left. */
  char bad[400];
  snprintf(bad, sizeof(bad), "%s/missing/wallet.db", f->dir);
  assert_int_equal(BE->open(BE, f->ctx, bad, ORDO_STORAGE_CREATE, &st, &err),
                   ORDO_E_STORAGE);
  assert_non_null(err);
  free(err);
}

/* ------------------------------------------------------------------------ */
/* Records and tags                                                          */
/* ------------------------------------------------------------------------ */

static void test_record_crud(void **state) {
  fx *f = *state;
  ordo_storage *st = db_open(f, f->ctx, ORDO_STORAGE_CREATE);
  ordo_storage_record rec;

  /* A value with a zero byte inside, an empty-valued tag (data NULL). */
  static unsigned char bin[] = {'v', 0, '1', 0xff};
  ordo_storage_tag tags[4] = {T("a", "1", 0), T("b", "2", 0), T("~c", "3", 1),
                              {B("e"), {NULL, 0}, 0}};
  ordo_storage_req r;
  req_init(&r, f, ORDO_STORAGE_ADD, "cat", "rec1", NULL);
  r.rec.value.data = bin;
  r.rec.value.len = sizeof(bin);
  r.rec.tags = tags;
  r.rec.ntags = 4;
  assert_int_equal(run(f, st, &r), ORDO_OK);
  assert_null(r.message);

  assert_int_equal(get(f, st, "cat", "rec1", &rec), ORDO_OK);
  assert_true(buf_is(&rec.category, "cat"));
  assert_true(buf_is(&rec.name, "rec1"));
  assert_int_equal(rec.value.len, sizeof(bin));
  assert_memory_equal(rec.value.data, bin, sizeof(bin));
  assert_int_equal(rec.ntags, 4);
  assert_string_equal(tag_of(&rec, "a", 0), "1");
  assert_string_equal(tag_of(&rec, "b", 0), "2");
  assert_string_equal(tag_of(&rec, "~c", 1), "3");
  assert_string_equal(tag_of(&rec, "e", 0), "");
  assert_null(tag_of(&rec, "~c", 0)); /* the tables are separate */
  ordo_storage_record_clear(&rec);
  assert_null(rec.tags);

  /* Same name, other category: a different record. */
  assert_int_equal(add(f, st, "cat2", "rec1", "other", NULL, 0), ORDO_OK);
  assert_int_equal(get(f, st, "cat", "nope", &rec), ORDO_E_RECORD_NOT_FOUND);

  /* Update the value. */
  req_init(&r, f, ORDO_STORAGE_UPDATE_VALUE, "cat", "rec1", "v2");
  assert_int_equal(run(f, st, &r), ORDO_OK);
  assert_int_equal(get(f, st, "cat", "rec1", &rec), ORDO_OK);
  assert_true(buf_is(&rec.value, "v2"));
  assert_int_equal(rec.ntags, 4);
  ordo_storage_record_clear(&rec);
  req_init(&r, f, ORDO_STORAGE_UPDATE_VALUE, "cat", "nope", "v2");
  assert_int_equal(run(f, st, &r), ORDO_E_RECORD_NOT_FOUND);
  assert_non_null(r.message);
  ordo_storage_req_clear_output(&r);
  assert_null(r.message);
  assert_int_equal(r.status, ORDO_E_RECORD_NOT_FOUND); /* status kept */

  /* Add tags: "a" is overwritten, "d" is new, "a" in plaintext is another
   * tag altogether. */
  ordo_storage_tag more[3] = {T("a", "1b", 0), T("d", "4", 0), T("a", "p", 1)};
  req_init(&r, f, ORDO_STORAGE_ADD_TAGS, "cat", "rec1", NULL);
  r.rec.tags = more;
  r.rec.ntags = 3;
  assert_int_equal(run(f, st, &r), ORDO_OK);
  assert_int_equal(get(f, st, "cat", "rec1", &rec), ORDO_OK);
  assert_int_equal(rec.ntags, 6);
  assert_string_equal(tag_of(&rec, "a", 0), "1b");
  assert_string_equal(tag_of(&rec, "a", 1), "p");
  assert_string_equal(tag_of(&rec, "b", 0), "2");
  assert_string_equal(tag_of(&rec, "d", 0), "4");
  ordo_storage_record_clear(&rec);

  /* Delete tags: names not present are ignored; values are ignored. */
  ordo_storage_tag del[4] = {T("b", "ignored", 0), T("zz", "", 0),
                             T("~c", "", 1), T("a", "", 1)};
  req_init(&r, f, ORDO_STORAGE_DELETE_TAGS, "cat", "rec1", NULL);
  r.rec.tags = del;
  r.rec.ntags = 4;
  assert_int_equal(run(f, st, &r), ORDO_OK);
  assert_int_equal(get(f, st, "cat", "rec1", &rec), ORDO_OK);
  assert_int_equal(rec.ntags, 3);
  assert_null(tag_of(&rec, "b", 0));
  assert_null(tag_of(&rec, "~c", 1));
  assert_null(tag_of(&rec, "a", 1));
  assert_string_equal(tag_of(&rec, "a", 0), "1b");
  ordo_storage_record_clear(&rec);

  /* Replace tags: exactly the new set; then with none. */
  ordo_storage_tag repl[2] = {T("z", "26", 0), T("~y", "25", 1)};
  req_init(&r, f, ORDO_STORAGE_REPLACE_TAGS, "cat", "rec1", NULL);
  r.rec.tags = repl;
  r.rec.ntags = 2;
  assert_int_equal(run(f, st, &r), ORDO_OK);
  assert_int_equal(get(f, st, "cat", "rec1", &rec), ORDO_OK);
  assert_int_equal(rec.ntags, 2);
  assert_string_equal(tag_of(&rec, "z", 0), "26");
  assert_string_equal(tag_of(&rec, "~y", 1), "25");
  ordo_storage_record_clear(&rec);
  req_init(&r, f, ORDO_STORAGE_REPLACE_TAGS, "cat2", "rec1", NULL);
  assert_int_equal(run(f, st, &r), ORDO_OK);

  /* Tag operations on a missing record. */
  static const ordo_storage_opcode tag_ops[] = {
      ORDO_STORAGE_ADD_TAGS, ORDO_STORAGE_REPLACE_TAGS,
      ORDO_STORAGE_DELETE_TAGS};
  for (size_t i = 0; i < 3; i++) {
    req_init(&r, f, tag_ops[i], "cat", "nope", NULL);
    r.rec.tags = repl;
    r.rec.ntags = 2;
    assert_int_equal(run(f, st, &r), ORDO_E_RECORD_NOT_FOUND);
    ordo_storage_req_clear_output(&r);
  }

  /* Delete; its tags go with it (a re-added record starts bare). */
  req_init(&r, f, ORDO_STORAGE_DELETE, "cat", "rec1", NULL);
  assert_int_equal(run(f, st, &r), ORDO_OK);
  assert_int_equal(get(f, st, "cat", "rec1", &rec), ORDO_E_RECORD_NOT_FOUND);
  req_init(&r, f, ORDO_STORAGE_DELETE, "cat", "rec1", NULL);
  assert_int_equal(run(f, st, &r), ORDO_E_RECORD_NOT_FOUND);
  ordo_storage_req_clear_output(&r);
  assert_int_equal(add(f, st, "cat", "rec1", "", NULL, 0), ORDO_OK);
  assert_int_equal(get(f, st, "cat", "rec1", &rec), ORDO_OK);
  assert_int_equal(rec.ntags, 0);
  assert_int_equal(rec.value.len, 0);
  assert_non_null(rec.value.data);
  ordo_storage_record_clear(&rec);
  ordo_storage_query *z = q_leaf(ORDO_SQ_EQ, 0, "z", "26");
  assert_int_equal(count_where(f, st, "cat", z), 0);
  ordo_storage_query_free(z);

  /* The other category's record is untouched. */
  assert_int_equal(get(f, st, "cat2", "rec1", &rec), ORDO_OK);
  assert_true(buf_is(&rec.value, "other"));
  ordo_storage_record_clear(&rec);

  /* A duplicate, alone. */
  assert_int_equal(add(f, st, "cat", "rec1", "again", NULL, 0),
                   ORDO_E_RECORD_DUPLICATE);
  db_close(f, st);
}

static void test_meta(void **state) {
  fx *f = *state;
  ordo_storage *st = db_open(f, f->ctx, ORDO_STORAGE_CREATE);
  ordo_storage_req r;
  req_init(&r, f, ORDO_STORAGE_META_GET, NULL, "keys", NULL);
  assert_int_equal(run(f, st, &r), ORDO_E_NOT_FOUND);
  ordo_storage_req_clear_output(&r);

  req_init(&r, f, ORDO_STORAGE_META_SET, NULL, "keys", "wrapped-1");
  assert_int_equal(run(f, st, &r), ORDO_OK);
  req_init(&r, f, ORDO_STORAGE_META_GET, NULL, "keys", NULL);
  assert_int_equal(run(f, st, &r), ORDO_OK);
  assert_true(buf_is(&r.result.value, "wrapped-1"));
  ordo_storage_req_clear_output(&r);

  req_init(&r, f, ORDO_STORAGE_META_SET, NULL, "keys", "wrapped-2");
  assert_int_equal(run(f, st, &r), ORDO_OK);
  req_init(&r, f, ORDO_STORAGE_META_SET, NULL, "kdf", "{}");
  assert_int_equal(run(f, st, &r), ORDO_OK);
  req_init(&r, f, ORDO_STORAGE_META_GET, NULL, "keys", NULL);
  assert_int_equal(run(f, st, &r), ORDO_OK);
  assert_true(buf_is(&r.result.value, "wrapped-2"));
  ordo_storage_req_clear_output(&r);
  req_init(&r, f, ORDO_STORAGE_META_GET, NULL, "kdf", NULL);
  assert_int_equal(run(f, st, &r), ORDO_OK);
  assert_true(buf_is(&r.result.value, "{}"));
  ordo_storage_req_clear_output(&r);

  /* Metadata is not records. */
  assert_int_equal(count_where(f, st, "", NULL), 0);
  db_close(f, st);
}

/* ------------------------------------------------------------------------ */
/* Queries                                                                   */
/* ------------------------------------------------------------------------ */

/* The names a SCAN returns, comma-separated, into out. */
static void scan_names(fx *f, ordo_storage *st, ordo_storage_query *q,
                       unsigned long long offset, unsigned long long limit,
                       unsigned long long *count, char *out, size_t outlen) {
  ordo_storage_req r;
  req_init(&r, f, ORDO_STORAGE_SCAN, "people", NULL, NULL);
  r.query = q;
  r.offset = offset;
  r.limit = limit;
  r.want_count = count != NULL;
  assert_int_equal(run(f, st, &r), ORDO_OK);
  out[0] = 0;
  for (size_t i = 0; i < r.nresults; i++) {
    const ordo_storage_record *rec = &r.results[i];
    assert_true(buf_is(&rec->category, "people"));
    /* Every result carries its value and all its tags. */
    assert_int_equal(rec->value.len, rec->name.len + 2);
    assert_non_null(tag_of(rec, "~name", 1));
    size_t len = strlen(out);
    snprintf(out + len, outlen - len, "%s%.*s", i ? "," : "",
             (int)rec->name.len, (const char *)rec->name.data);
  }
  if (count != NULL)
    *count = r.count;
  ordo_storage_req_clear_output(&r);
}

/* SCAN and COUNT agree with the expected names; q is freed. */
static void expect_query(fx *f, ordo_storage *st, ordo_storage_query *q,
                         const char *names, unsigned long long n) {
  char got[512];
  unsigned long long total = 0;
  scan_names(f, st, q, 0, 0, &total, got, sizeof(got));
  assert_string_equal(got, names);
  assert_int_equal(total, n);
  assert_int_equal(count_where(f, st, "people", q), n);
  ordo_storage_query_free(q);
}

static int submit_query(fx *f, ordo_storage *st, ordo_storage_opcode op,
                        ordo_storage_query *q) {
  ordo_storage_req r;
  req_init(&r, f, op, "people", NULL, NULL);
  r.query = q;
  int rc = run(f, st, &r);
  ordo_storage_req_clear_output(&r);
  ordo_storage_query_free(q);
  return rc;
}

static void people(fx *f, ordo_storage *st) {
  struct {
    const char *name, *color, *size, *age, *pname;
  } p[] = {
      {"r1", "red", NULL, "030", "alice"},
      {"r2", "blue", NULL, "045", "bob"},
      {"r3", "red", "big", "070", "carol"},
      {"r4", NULL, NULL, NULL, "dave"},
      {"r5", "green", NULL, "045", "\xc3\x89ric"}, /* "Éric" */
  };
  for (size_t i = 0; i < sizeof(p) / sizeof(p[0]); i++) {
    ordo_storage_tag tags[4];
    size_t n = 0;
    if (p[i].color)
      tags[n++] = T("color", p[i].color, 0);
    if (p[i].size)
      tags[n++] = T("size", p[i].size, 0);
    if (p[i].age)
      tags[n++] = T("~age", p[i].age, 1);
    tags[n++] = T("~name", p[i].pname, 1);
    char value[16];
    snprintf(value, sizeof(value), "v-%s", p[i].name);
    assert_int_equal(add(f, st, "people", p[i].name, value, tags, n), ORDO_OK);
  }
  /* Another category with matching tags must never show up. */
  ordo_storage_tag other[2] = {T("color", "red", 0), T("~name", "alice", 1)};
  assert_int_equal(add(f, st, "robots", "x1", "v-x1", other, 2), ORDO_OK);
}

static void test_query_operators(void **state) {
  fx *f = *state;
  ordo_storage *st = db_open(f, f->ctx, ORDO_STORAGE_CREATE);
  people(f, st);

  expect_query(f, st, NULL, "r1,r2,r3,r4,r5", 5);
  expect_query(f, st, q_new(ORDO_SQ_ALL), "r1,r2,r3,r4,r5", 5);
  expect_query(f, st, q_leaf(ORDO_SQ_EQ, 0, "color", "red"), "r1,r3", 2);
  /* NEQ needs the tag; NOT of EQ does not. */
  expect_query(f, st, q_leaf(ORDO_SQ_NEQ, 0, "color", "red"), "r2,r5", 2);
  expect_query(f, st, q_node(ORDO_SQ_NOT, 1, q_leaf(ORDO_SQ_EQ, 0, "color", "red")),
               "r2,r4,r5", 3);
  /* The plaintext flag picks the table. */
  expect_query(f, st, q_leaf(ORDO_SQ_EQ, 1, "~name", "alice"), "r1", 1);
  expect_query(f, st, q_leaf(ORDO_SQ_EQ, 0, "~name", "alice"), "", 0);
  expect_query(f, st, q_leaf(ORDO_SQ_EQ, 1, "color", "red"), "", 0);

  expect_query(f, st, q_in(0, "color", 2, "blue", "green"), "r2,r5", 2);
  expect_query(f, st, q_in(1, "~age", 1, "045"), "r2,r5", 2);
  expect_query(f, st, q_in(0, "color", 0), "", 0);
  expect_query(f, st, q_node(ORDO_SQ_NOT, 1, q_in(0, "color", 0)),
               "r1,r2,r3,r4,r5", 5);

  /* Ranges, bytewise. */
  expect_query(f, st, q_leaf(ORDO_SQ_GT, 1, "~age", "045"), "r3", 1);
  expect_query(f, st, q_leaf(ORDO_SQ_GTE, 1, "~age", "045"), "r2,r3,r5", 3);
  expect_query(f, st, q_leaf(ORDO_SQ_LT, 1, "~age", "045"), "r1", 1);
  expect_query(f, st, q_leaf(ORDO_SQ_LTE, 1, "~age", "045"), "r1,r2,r5", 3);
  expect_query(f, st, q_leaf(ORDO_SQ_GT, 1, "~name", "c"), "r3,r4,r5", 3);
  expect_query(f, st, q_leaf(ORDO_SQ_LT, 1, "~name", "b"), "r1", 1);
  expect_query(f, st, q_leaf(ORDO_SQ_GT, 1, "~name", "\xc3"), "r5", 1);

  /* LIKE: % any run, _ one character (É is two bytes), case-sensitive. */
  expect_query(f, st, q_leaf(ORDO_SQ_LIKE, 1, "~name", "%a%"), "r1,r3,r4", 3);
  expect_query(f, st, q_leaf(ORDO_SQ_LIKE, 1, "~name", "%A%"), "", 0);
  expect_query(f, st, q_leaf(ORDO_SQ_LIKE, 1, "~name", "_ric"), "r5", 1);
  expect_query(f, st, q_leaf(ORDO_SQ_LIKE, 1, "~name", "b_b"), "r2", 1);
  expect_query(f, st, q_leaf(ORDO_SQ_LIKE, 1, "~name", "%"), "r1,r2,r3,r4,r5", 5);
  expect_query(f, st, q_leaf(ORDO_SQ_LIKE, 1, "~name", "a%e"), "r1", 1);
  expect_query(f, st, q_leaf(ORDO_SQ_LIKE, 1, "~name", "%o%o%"), "", 0);
  expect_query(f, st, q_leaf(ORDO_SQ_LIKE, 1, "~name", "%c"), "r5", 1);
  expect_query(f, st, q_leaf(ORDO_SQ_LIKE, 1, "~name", "___"), "r2", 1);
  expect_query(f, st, q_leaf(ORDO_SQ_LIKE, 1, "~name", "____"), "r4,r5", 2);
  expect_query(f, st, q_leaf(ORDO_SQ_LIKE, 1, "~age", ""), "", 0);

  /* AND, OR, NOT and their empty forms. */
  expect_query(f, st,
               q_node(ORDO_SQ_AND, 2, q_leaf(ORDO_SQ_EQ, 0, "color", "red"),
                      q_leaf(ORDO_SQ_GT, 1, "~age", "040")),
               "r3", 1);
  expect_query(f, st,
               q_node(ORDO_SQ_OR, 2, q_leaf(ORDO_SQ_EQ, 0, "color", "blue"),
                      q_leaf(ORDO_SQ_LIKE, 1, "~name", "d%")),
               "r2,r4", 2);
  expect_query(f, st, q_node(ORDO_SQ_AND, 0), "r1,r2,r3,r4,r5", 5);
  expect_query(f, st, q_node(ORDO_SQ_OR, 0), "", 0);
  expect_query(f, st, q_node(ORDO_SQ_NOT, 1, q_node(ORDO_SQ_OR, 0)),
               "r1,r2,r3,r4,r5", 5);
  expect_query(f, st, q_node(ORDO_SQ_NOT, 1, q_node(ORDO_SQ_AND, 0)), "", 0);
  expect_query(f, st,
               q_node(ORDO_SQ_AND, 2, q_new(ORDO_SQ_ALL),
                      q_leaf(ORDO_SQ_EQ, 0, "size", "big")),
               "r3", 1);
  /* (red AND NOT big) OR (age in {045} AND NOT green) */
  expect_query(
      f, st,
      q_node(ORDO_SQ_OR, 2,
             q_node(ORDO_SQ_AND, 2, q_leaf(ORDO_SQ_EQ, 0, "color", "red"),
                    q_node(ORDO_SQ_NOT, 1, q_leaf(ORDO_SQ_EQ, 0, "size", "big"))),
             q_node(ORDO_SQ_AND, 2, q_in(1, "~age", 1, "045"),
                    q_node(ORDO_SQ_NOT, 1,
                           q_leaf(ORDO_SQ_EQ, 0, "color", "green")))),
      "r1,r2", 2);
  /* NOT (red OR (age >= 045 AND NOT name LIKE 'b%')) */
  expect_query(
      f, st,
      q_node(ORDO_SQ_NOT, 1,
             q_node(ORDO_SQ_OR, 2, q_leaf(ORDO_SQ_EQ, 0, "color", "red"),
                    q_node(ORDO_SQ_AND, 2, q_leaf(ORDO_SQ_GTE, 1, "~age", "045"),
                           q_node(ORDO_SQ_NOT, 1,
                                  q_leaf(ORDO_SQ_LIKE, 1, "~name", "b%"))))),
      "r2,r4", 2);

  /* A wide OR (5000 children) stays within SQLite's expression depth. */
  ordo_storage_query *wide = q_new(ORDO_SQ_OR);
  wide->nchildren = 5000;
  wide->children = calloc(wide->nchildren, sizeof(*wide->children));
  assert_non_null(wide->children);
  for (size_t i = 0; i < wide->nchildren; i++) {
    char v[32];
    snprintf(v, sizeof(v), "%03u", (unsigned)i);
    wide->children[i] = q_leaf(ORDO_SQ_EQ, 1, "~age", v);
  }
  expect_query(f, st, wide, "r1,r2,r3,r5", 4);

  /* Deeper than SQLite's parser can nest (it overflows at about 35 levels
   * of parentheses): 256 NOTs, the most accepted, cancel out. */
  ordo_storage_query *deep = q_leaf(ORDO_SQ_EQ, 0, "color", "red");
  for (int i = 0; i < 256; i++)
    deep = q_node(ORDO_SQ_NOT, 1, deep);
  expect_query(f, st, deep, "r1,r3", 2);
  deep = q_node(ORDO_SQ_NOT, 1, q_leaf(ORDO_SQ_EQ, 0, "color", "red"));
  for (int i = 0; i < 254; i++)
    deep = q_node(ORDO_SQ_NOT, 1, deep);
  expect_query(f, st, deep, "r2,r4,r5", 3);
  /* 128 levels of alternating AND/OR (WQL's 64 levels make at most 2 * 64
   * tree levels): red, AND NOT big at level 4, OR blue at the top; the
   * other levels are neutral (AND ALL, OR an impossible EQ). */
  deep = q_leaf(ORDO_SQ_EQ, 0, "color", "red");
  for (int i = 0; i < 128; i++) {
    ordo_storage_query *other;
    if (i == 4)
      other = q_node(ORDO_SQ_NOT, 1, q_leaf(ORDO_SQ_EQ, 0, "size", "big"));
    else if (i == 127)
      other = q_leaf(ORDO_SQ_EQ, 0, "color", "blue");
    else if (i % 2)
      other = q_leaf(ORDO_SQ_EQ, 0, "color", "none");
    else
      other = q_new(ORDO_SQ_ALL);
    deep = i % 2 ? q_node(ORDO_SQ_OR, 2, other, deep)
                 : q_node(ORDO_SQ_AND, 2, deep, other);
  }
  expect_query(f, st, deep, "r1,r2", 2);
  /* Deep and wide: 40 levels, each an OR of 30 children, one of which
   * goes on down; at the bottom, LIKE 'c%'. */
  deep = q_leaf(ORDO_SQ_LIKE, 1, "~name", "c%");
  for (int i = 0; i < 40; i++) {
    ordo_storage_query *or = q_new(ORDO_SQ_OR);
    or->nchildren = 30;
    or->children = calloc(30, sizeof(*or->children));
    assert_non_null(or->children);
    for (int j = 0; j < 30; j++)
      or->children[j] = j == 17 ? deep : q_in(0, "color", 2, "x", "y");
    deep = or;
  }
  expect_query(f, st, deep, "r3", 1);

  /* Paging: offset, limit, total count. */
  char got[256];
  unsigned long long total = 0;
  scan_names(f, st, NULL, 1, 2, &total, got, sizeof(got));
  assert_string_equal(got, "r2,r3");
  assert_int_equal(total, 5);
  scan_names(f, st, NULL, 4, 10, &total, got, sizeof(got));
  assert_string_equal(got, "r5");
  scan_names(f, st, NULL, 10, 0, &total, got, sizeof(got));
  assert_string_equal(got, "");
  assert_int_equal(total, 5);
  scan_names(f, st, NULL, 0, 1, NULL, got, sizeof(got));
  assert_string_equal(got, "r1");
  ordo_storage_query *red = q_leaf(ORDO_SQ_EQ, 0, "color", "red");
  scan_names(f, st, red, 1, 0, &total, got, sizeof(got));
  assert_string_equal(got, "r3");
  assert_int_equal(total, 2);
  scan_names(f, st, red, ULLONG_MAX, ULLONG_MAX, &total, got, sizeof(got));
  assert_string_equal(got, "");
  ordo_storage_query_free(red);

  /* Insertion order survives deletes and re-adds. */
  ordo_storage_req r;
  req_init(&r, f, ORDO_STORAGE_DELETE, "people", "r2", NULL);
  assert_int_equal(run(f, st, &r), ORDO_OK);
  ordo_storage_tag t = T("~name", "bob", 1);
  assert_int_equal(add(f, st, "people", "r2", "v-r2", &t, 1), ORDO_OK);
  scan_names(f, st, NULL, 0, 0, NULL, got, sizeof(got));
  assert_string_equal(got, "r1,r3,r4,r5,r2");

  /* No category (export): every record, each with its own category. */
  ordo_storage_query *alice = q_leaf(ORDO_SQ_EQ, 1, "~name", "alice");
  req_init(&r, f, ORDO_STORAGE_SCAN, NULL, NULL, NULL);
  r.query = alice;
  r.want_count = 1;
  assert_int_equal(run(f, st, &r), ORDO_OK);
  assert_int_equal(r.nresults, 2);
  assert_int_equal(r.count, 2);
  assert_true(buf_is(&r.results[0].category, "people"));
  assert_true(buf_is(&r.results[0].name, "r1"));
  assert_true(buf_is(&r.results[1].category, "robots"));
  assert_true(buf_is(&r.results[1].name, "x1"));
  assert_string_equal(tag_of(&r.results[1], "color", 0), "red");
  ordo_storage_req_clear_output(&r);
  ordo_storage_query_free(alice);
  req_init(&r, f, ORDO_STORAGE_SCAN, NULL, NULL, NULL);
  r.offset = 4;
  r.limit = 1;
  assert_int_equal(run(f, st, &r), ORDO_OK);
  assert_int_equal(r.nresults, 1);
  assert_true(buf_is(&r.results[0].name, "x1"));
  ordo_storage_req_clear_output(&r);
  assert_int_equal(count_where(f, st, NULL, NULL), 6);
  /* An empty category is a category, not "all". */
  assert_int_equal(count_where(f, st, "", NULL), 0);
  db_close(f, st);
}

/* DELETE_MATCHING removes exactly what a SCAN with the query finds, in
 * its category only, tags and all, and says how many; it refuses to run
 * without a query or a category. */
static void test_delete_matching(void **state) {
  fx *f = *state;
  ordo_storage *st = db_open(f, f->ctx, ORDO_STORAGE_CREATE);
  ordo_storage_req r;
  people(f, st);

  req_init(&r, f, ORDO_STORAGE_DELETE_MATCHING, "people", NULL, NULL);
  r.query = q_in(0, "color", 2, "red", "green");
  assert_int_equal(run(f, st, &r), ORDO_OK);
  assert_int_equal(r.count, 3);
  ordo_storage_req_clear_output(&r);
  ordo_storage_query_free((ordo_storage_query *)r.query);
  expect_query(f, st, NULL, "r2,r4", 2);
  expect_query(f, st, q_leaf(ORDO_SQ_EQ, 1, "~name", "alice"), "", 0);
  /* The other category's red robot stays. */
  assert_int_equal(count_where(f, st, "robots", NULL), 1);
  /* Nothing matches: 0. */
  req_init(&r, f, ORDO_STORAGE_DELETE_MATCHING, "people", NULL, NULL);
  r.query = q_leaf(ORDO_SQ_EQ, 0, "color", "red");
  assert_int_equal(run(f, st, &r), ORDO_OK);
  assert_int_equal(r.count, 0);
  ordo_storage_req_clear_output(&r);
  ordo_storage_query_free((ordo_storage_query *)r.query);
  /* Never a whole category by accident. */
  assert_int_equal(submit_query(f, st, ORDO_STORAGE_DELETE_MATCHING, NULL),
                   ORDO_E_INVAL);
  req_init(&r, f, ORDO_STORAGE_DELETE_MATCHING, NULL, NULL, NULL);
  r.query = q_new(ORDO_SQ_ALL);
  assert_int_equal(run(f, st, &r), ORDO_E_INVAL);
  ordo_storage_req_clear_output(&r);
  ordo_storage_query_free((ordo_storage_query *)r.query);
  expect_query(f, st, NULL, "r2,r4", 2);
  db_close(f, st);
}

static void test_invalid_requests(void **state) {
  fx *f = *state;
  ordo_storage *st = db_open(f, f->ctx, ORDO_STORAGE_CREATE);
  const ordo_storage_backend *be = st->backend;

  /* Range and LIKE on an encrypted leaf. */
  static const ordo_storage_qop ordered[] = {ORDO_SQ_GT, ORDO_SQ_GTE,
                                             ORDO_SQ_LT, ORDO_SQ_LTE,
                                             ORDO_SQ_LIKE};
  for (size_t i = 0; i < 5; i++) {
    assert_int_equal(
        submit_query(f, st, ORDO_STORAGE_SCAN, q_leaf(ordered[i], 0, "a", "1")),
        ORDO_E_INVAL);
    assert_int_equal(
        submit_query(f, st, ORDO_STORAGE_COUNT,
                     q_node(ORDO_SQ_AND, 2, q_new(ORDO_SQ_ALL),
                            q_node(ORDO_SQ_NOT, 1, q_leaf(ordered[i], 0, "a", "1")))),
        ORDO_E_INVAL);
  }
  /* Malformed trees. */
  assert_int_equal(submit_query(f, st, ORDO_STORAGE_SCAN, q_node(ORDO_SQ_NOT, 0)),
                   ORDO_E_INVAL);
  assert_int_equal(submit_query(f, st, ORDO_STORAGE_SCAN,
                                q_node(ORDO_SQ_NOT, 2, q_new(ORDO_SQ_ALL),
                                       q_new(ORDO_SQ_ALL))),
                   ORDO_E_INVAL);
  ordo_storage_query *two = q_in(0, "a", 2, "1", "2");
  two->op = ORDO_SQ_EQ;
  assert_int_equal(submit_query(f, st, ORDO_STORAGE_SCAN, two), ORDO_E_INVAL);
  ordo_storage_query *bad = q_new(ORDO_SQ_ALL);
  bad->op = (ordo_storage_qop)77;
  assert_int_equal(submit_query(f, st, ORDO_STORAGE_SCAN, bad), ORDO_E_INVAL);
  ordo_storage_query *deep = q_new(ORDO_SQ_ALL);
  for (int i = 0; i < 300; i++)
    deep = q_node(ORDO_SQ_NOT, 1, deep);
  assert_int_equal(submit_query(f, st, ORDO_STORAGE_SCAN, deep), ORDO_E_INVAL);

  /* Malformed requests. */
  ordo_storage_req r;
  req_init(&r, f, ORDO_STORAGE_ADD, NULL, "n", "v");
  assert_int_equal(be->submit(st, &r), ORDO_E_INVAL);
  req_init(&r, f, ORDO_STORAGE_GET, "c", NULL, NULL);
  assert_int_equal(be->submit(st, &r), ORDO_E_INVAL);
  req_init(&r, f, ORDO_STORAGE_ADD, "c", "n", "v");
  r.rec.ntags = 1; /* tags NULL */
  assert_int_equal(be->submit(st, &r), ORDO_E_INVAL);
  req_init(&r, f, ORDO_STORAGE_ADD, "c", "n", "v");
  r.done = NULL;
  assert_int_equal(be->submit(st, &r), ORDO_E_INVAL);
  req_init(&r, f, (ordo_storage_opcode)99, "c", "n", "v");
  assert_int_equal(be->submit(st, &r), ORDO_E_INVAL);
  req_init(&r, f, ORDO_STORAGE_META_SET, NULL, NULL, "v");
  assert_int_equal(be->submit(st, &r), ORDO_E_INVAL);
  assert_int_equal(be->submit(NULL, &r), ORDO_E_INVAL);
  assert_int_equal(be->submit(st, NULL), ORDO_E_INVAL);

  /* A batch may not hold CLOSE or another batch. */
  ordo_storage_req sub[2];
  req_init(&sub[0], f, ORDO_STORAGE_ADD, "c", "n", "v");
  req_init(&sub[1], f, ORDO_STORAGE_CLOSE, NULL, NULL, NULL);
  req_init(&r, f, ORDO_STORAGE_BATCH, NULL, NULL, NULL);
  r.batch = sub;
  r.nbatch = 2;
  assert_int_equal(be->submit(st, &r), ORDO_E_INVAL);
  sub[1].opcode = ORDO_STORAGE_BATCH;
  assert_int_equal(be->submit(st, &r), ORDO_E_INVAL);
  sub[1].opcode = ORDO_STORAGE_ADD;
  sub[1].rec.category.data = NULL;
  assert_int_equal(be->submit(st, &r), ORDO_E_INVAL);

  /* Nothing was queued by any of that. */
  assert_int_equal(count_where(f, st, "c", NULL), 0);
  assert_int_equal(commits_of(st), 0);
  db_close(f, st);
}

/* ------------------------------------------------------------------------ */
/* Batches                                                                   */
/* ------------------------------------------------------------------------ */

static void test_batch(void **state) {
  fx *f = *state;
  ordo_storage *st = db_open(f, f->ctx, ORDO_STORAGE_CREATE);
  ordo_storage_tag tags[1] = {T("t", "1", 0)};
  ordo_storage_req sub[5], r;
  ordo_storage_record rec;

  /* Writes and a read, applied together. */
  req_init(&sub[0], f, ORDO_STORAGE_ADD, "c", "b1", "v1");
  req_init(&sub[1], f, ORDO_STORAGE_ADD, "c", "b2", "v2");
  sub[1].rec.tags = tags;
  sub[1].rec.ntags = 1;
  req_init(&sub[2], f, ORDO_STORAGE_META_SET, NULL, "k", "mv");
  req_init(&sub[3], f, ORDO_STORAGE_GET, "c", "b1", NULL);
  req_init(&r, f, ORDO_STORAGE_BATCH, NULL, NULL, NULL);
  r.batch = sub;
  r.nbatch = 4;
  unsigned long long commits = commits_of(st);
  assert_int_equal(run(f, st, &r), ORDO_OK);
  for (int i = 0; i < 4; i++)
    assert_int_equal(sub[i].status, ORDO_OK);
  assert_true(buf_is(&sub[3].result.value, "v1"));
  ordo_storage_req_clear_output(&sub[3]);
  assert_int_equal(commits_of(st), commits + 1);
  assert_int_equal(count_where(f, st, "c", NULL), 2);

  /* One duplicate: nothing of the batch remains. */
  ordo_storage_tag xt[1] = {T("x", "1", 0)};
  req_init(&sub[0], f, ORDO_STORAGE_ADD, "c", "b3", "v3");
  req_init(&sub[1], f, ORDO_STORAGE_ADD_TAGS, "c", "b1", NULL);
  sub[1].rec.tags = xt;
  sub[1].rec.ntags = 1;
  req_init(&sub[2], f, ORDO_STORAGE_GET, "c", "b3", NULL);
  req_init(&sub[3], f, ORDO_STORAGE_ADD, "c", "b2", "dup");
  req_init(&sub[4], f, ORDO_STORAGE_ADD, "c", "b4", "v4");
  req_init(&r, f, ORDO_STORAGE_BATCH, NULL, NULL, NULL);
  r.batch = sub;
  r.nbatch = 5;
  assert_int_equal(run(f, st, &r), ORDO_E_RECORD_DUPLICATE);
  assert_non_null(r.message);
  assert_non_null(strstr(r.message, "batch request 4 of 5"));
  assert_int_equal(sub[3].status, ORDO_E_RECORD_DUPLICATE);
  for (int i = 0; i < 5; i++)
    if (i != 3)
      assert_int_equal(sub[i].status, ORDO_E_CANCELED);
  assert_null(sub[2].result.value.data); /* its read was rolled back too */
  for (int i = 0; i < 5; i++)
    ordo_storage_req_clear_output(&sub[i]);
  ordo_storage_req_clear_output(&r);
  assert_int_equal(count_where(f, st, "c", NULL), 2);
  assert_int_equal(get(f, st, "c", "b3", &rec), ORDO_E_RECORD_NOT_FOUND);
  assert_int_equal(get(f, st, "c", "b4", &rec), ORDO_E_RECORD_NOT_FOUND);
  assert_int_equal(get(f, st, "c", "b1", &rec), ORDO_OK);
  assert_int_equal(rec.ntags, 0);
  ordo_storage_record_clear(&rec);

  /* An empty batch is a no-op that succeeds. */
  req_init(&r, f, ORDO_STORAGE_BATCH, NULL, NULL, NULL);
  assert_int_equal(run(f, st, &r), ORDO_OK);
  db_close(f, st);
}

/* ------------------------------------------------------------------------ */
/* Group commit                                                              */
/* ------------------------------------------------------------------------ */

/* A done that holds the database thread until the test opens the gate, so
 * that requests pile up behind it deterministically. */
typedef struct holder {
  fx *f;
  support_latch entered;
  support_gate gate;
} holder;

static void hold_done(ordo_storage_req *req) {
  holder *h = req->userdata;
  support_latch_count_down(&h->entered);
  support_gate_wait(&h->gate);
  req->userdata = h->f;
  on_done(req);
}

static void holder_start(holder *h, fx *f, ordo_storage *st,
                         ordo_storage_req *r, const char *name) {
  h->f = f;
  support_latch_init(&h->entered, 1);
  support_gate_init(&h->gate);
  req_init(r, f, ORDO_STORAGE_ADD, "c", name, "v");
  r->done = hold_done;
  r->userdata = h;
  assert_int_equal(st->backend->submit(st, r), ORDO_OK);
  support_latch_wait(&h->entered);
}

static void holder_destroy(holder *h) {
  support_gate_destroy(&h->gate);
  support_latch_destroy(&h->entered);
}

#define PILE 100

static void test_group_duplicate_fails_alone(void **state) {
  fx *f = *state;
  ordo_storage *st = db_open(f, f->ctx, ORDO_STORAGE_CREATE);
  holder h;
  ordo_storage_req first, *reqs = calloc(PILE, sizeof(*reqs));
  char (*names)[16] = calloc(PILE, sizeof(*names));
  assert_non_null(reqs);
  assert_non_null(names);
  ordo_storage_tag dup_tag[1] = {T("dup", "yes", 0)};

  holder_start(&h, f, st, &first, "held");
  /* The held request's group has committed: done comes after COMMIT. */
  assert_int_equal(commits_of(st), 1);

  for (int i = 0; i < PILE; i++) {
    snprintf(names[i], sizeof(names[i]), "n%d", i);
    if (i == 50)
      snprintf(names[i], sizeof(names[i]), "n10"); /* same group, earlier */
    if (i == 70)
      snprintf(names[i], sizeof(names[i]), "held"); /* earlier group */
    req_init(&reqs[i], f, ORDO_STORAGE_ADD, "c", names[i], "v");
    if (i == 50 || i == 70) {
      reqs[i].rec.tags = dup_tag;
      reqs[i].rec.ntags = 1;
    }
    assert_int_equal(st->backend->submit(st, &reqs[i]), ORDO_OK);
  }
  support_gate_open(&h.gate);
  fx_wait(f, 1 + PILE);

  /* Every queued request went into one transaction; only the two
   * duplicates failed, each with its own status. */
  assert_int_equal(commits_of(st), 2);
  assert_int_equal(first.status, ORDO_OK);
  for (int i = 0; i < PILE; i++) {
    if (i == 50 || i == 70) {
      assert_int_equal(reqs[i].status, ORDO_E_RECORD_DUPLICATE);
      assert_non_null(reqs[i].message);
    } else {
      assert_int_equal(reqs[i].status, ORDO_OK);
      assert_null(reqs[i].message);
    }
    ordo_storage_req_clear_output(&reqs[i]);
  }
  assert_int_equal(count_where(f, st, "c", NULL), 1 + PILE - 2);
  ordo_storage_query *q = q_leaf(ORDO_SQ_EQ, 0, "dup", "yes");
  assert_int_equal(count_where(f, st, "c", q), 0);
  ordo_storage_query_free(q);

  db_close(f, st);
  holder_destroy(&h);
  free(names);
  free(reqs);
}

/* Reads queued behind writes run in the same transaction and see them. */
static void test_group_reads_see_writes(void **state) {
  fx *f = *state;
  ordo_storage *st = db_open(f, f->ctx, ORDO_STORAGE_CREATE);
  holder h;
  ordo_storage_req first, r[4];
  holder_start(&h, f, st, &first, "held");
  req_init(&r[0], f, ORDO_STORAGE_ADD, "c", "a", "va");
  req_init(&r[1], f, ORDO_STORAGE_GET, "c", "a", NULL);
  req_init(&r[2], f, ORDO_STORAGE_UPDATE_VALUE, "c", "a", "vb");
  req_init(&r[3], f, ORDO_STORAGE_COUNT, "c", NULL, NULL);
  for (int i = 0; i < 4; i++)
    assert_int_equal(st->backend->submit(st, &r[i]), ORDO_OK);
  support_gate_open(&h.gate);
  fx_wait(f, 5);
  for (int i = 0; i < 4; i++)
    assert_int_equal(r[i].status, ORDO_OK);
  assert_true(buf_is(&r[1].result.value, "va")); /* before the update */
  assert_int_equal(r[3].count, 2);
  assert_int_equal(commits_of(st), 2);
  ordo_storage_req_clear_output(&r[1]);
  db_close(f, st);
  holder_destroy(&h);
}

#define THREADS 8
#define PER_THREAD 125

typedef struct submitter {
  fx *f;
  ordo_storage *st;
  int index;
  ordo_storage_req reqs[PER_THREAD];
  char names[PER_THREAD][24];
  ordo_storage_tag tags[PER_THREAD][1];
  int refused;
} submitter;

static void *submit_thread(void *arg) {
  submitter *s = arg;
  for (int i = 0; i < PER_THREAD; i++) {
    snprintf(s->names[i], sizeof(s->names[i]), "t%d-%d", s->index, i);
    req_init(&s->reqs[i], s->f, ORDO_STORAGE_ADD, "c", s->names[i], "value");
    s->tags[i][0] = T("~thread", s->index % 2 ? "odd" : "even", 1);
    s->reqs[i].rec.tags = s->tags[i];
    s->reqs[i].rec.ntags = 1;
    if (s->st->backend->submit(s->st, &s->reqs[i]) != ORDO_OK)
      s->refused++;
  }
  return NULL;
}

/* Many writers at once; returns the transactions committed for them. */
static unsigned long long hammer(fx *f, ordo_storage *st) {
  submitter *subs = calloc(THREADS, sizeof(*subs));
  assert_non_null(subs);
  unsigned long base = fx_done(f);
  unsigned long long c0 = commits_of(st);
  for (int t = 0; t < THREADS; t++) {
    subs[t].f = f;
    subs[t].st = st;
    subs[t].index = t;
  }
  support_run_threads(THREADS, submit_thread, subs, sizeof(*subs));
  for (int t = 0; t < THREADS; t++)
    assert_int_equal(subs[t].refused, 0);
  fx_wait(f, base + THREADS * PER_THREAD);
  for (int t = 0; t < THREADS; t++)
    for (int i = 0; i < PER_THREAD; i++) {
      assert_int_equal(subs[t].reqs[i].status, ORDO_OK);
      ordo_storage_req_clear_output(&subs[t].reqs[i]);
    }
  free(subs);
  return commits_of(st) - c0;
}

static void test_group_commit_many_threads(void **state) {
  fx *f = *state;
  ordo_storage *st = db_open(f, f->ctx, ORDO_STORAGE_CREATE);
  unsigned long long commits = hammer(f, st);
  print_message("group commit: %d writes in %llu transactions\n",
                THREADS * PER_THREAD, commits);
  assert_true(commits >= 1);
  assert_true(commits < THREADS * PER_THREAD);
  assert_int_equal(count_where(f, st, "c", NULL), THREADS * PER_THREAD);
  ordo_storage_query *odd = q_leaf(ORDO_SQ_EQ, 1, "~thread", "odd");
  assert_int_equal(count_where(f, st, "c", odd), THREADS * PER_THREAD / 2);
  ordo_storage_query_free(odd);
  db_close(f, st);
}

static void test_no_group_commit(void **state) {
  fx *f = *state;
  ordo_storage *st =
      db_open(f, f->ctx, ORDO_STORAGE_CREATE | ORDO_STORAGE_NO_GROUP_COMMIT);
  holder h;
  ordo_storage_req first, r[40];
  char names[40][8];
  holder_start(&h, f, st, &first, "held");
  /* 30 writes and 10 reads queued together: one transaction per write. */
  for (int i = 0; i < 40; i++) {
    snprintf(names[i], sizeof(names[i]), "n%d", i);
    if (i % 4 == 3)
      req_init(&r[i], f, ORDO_STORAGE_COUNT, "c", NULL, NULL);
    else
      req_init(&r[i], f, ORDO_STORAGE_ADD, "c", names[i], "v");
    assert_int_equal(st->backend->submit(st, &r[i]), ORDO_OK);
  }
  support_gate_open(&h.gate);
  fx_wait(f, 41);
  for (int i = 0; i < 40; i++)
    assert_int_equal(r[i].status, ORDO_OK);
  /* Each read saw exactly the writes before it: they ran one by one. */
  assert_int_equal(r[3].count, 1 + 3);
  assert_int_equal(r[39].count, 1 + 30);
  assert_int_equal(commits_of(st), 1 + 30);

  unsigned long long c = hammer(f, st);
  assert_int_equal(c, THREADS * PER_THREAD);
  db_close(f, st);
  holder_destroy(&h);
}

static void sql_exec(const char *path, const char *sql);

/* An ADD in a group runs without a savepoint of its own; when a tag fails
 * after the item went in, the ADD undoes itself and fails alone. A trigger
 * added to the file makes one tag fail on demand. */
static void add_undone_alone(fx *f, ordo_storage *st);

static void test_group_add_undone_alone(void **state) {
  fx *f = *state;
  ordo_storage *st = db_open(f, f->ctx, ORDO_STORAGE_CREATE);
  db_close(f, st);
  sql_exec(f->path, "CREATE TRIGGER boom BEFORE INSERT ON tags_encrypted"
                    " WHEN NEW.name = X'626F6F6D' /* 'boom' as a blob */"
                    " BEGIN SELECT RAISE(ABORT, 'boom');"
                    " END;");
  add_undone_alone(f, db_open(f, f->ctx, 0));
}

/* The body, once a tag named "boom" fails to insert (each backend's test
 * arranges that its own way): st is closed at the end. */
static void add_undone_alone(fx *f, ordo_storage *st) {
  holder h;
  ordo_storage_req first, r[3];
  ordo_storage_tag ok_tags[2] = {T("k", "v", 0), T("~p", "q", 1)};
  ordo_storage_tag bad_tags[3] = {T("k", "v", 0), T("~p", "q", 1),
                                  T("boom", "x", 0)};
  unsigned long base = fx_done(f);
  holder_start(&h, f, st, &first, "held");
  req_init(&r[0], f, ORDO_STORAGE_ADD, "c", "before", "v");
  req_init(&r[1], f, ORDO_STORAGE_ADD, "c", "bad", "v");
  req_init(&r[2], f, ORDO_STORAGE_ADD, "c", "after", "v");
  r[0].rec.tags = r[2].rec.tags = ok_tags;
  r[0].rec.ntags = r[2].rec.ntags = 2;
  r[1].rec.tags = bad_tags;
  r[1].rec.ntags = 3;
  for (int i = 0; i < 3; i++)
    assert_int_equal(st->backend->submit(st, &r[i]), ORDO_OK);
  unsigned long long c0 = commits_of(st);
  support_gate_open(&h.gate);
  fx_wait(f, base + 4);
  assert_int_equal(commits_of(st), c0 + 1); /* one group */
  assert_int_equal(r[0].status, ORDO_OK);
  assert_int_equal(r[1].status, ORDO_E_STORAGE);
  assert_non_null(r[1].message);
  assert_non_null(strstr(r[1].message, "boom"));
  assert_int_equal(r[2].status, ORDO_OK);
  for (int i = 0; i < 3; i++)
    ordo_storage_req_clear_output(&r[i]);

  ordo_storage_record rec;
  assert_int_equal(get(f, st, "c", "bad", &rec), ORDO_E_RECORD_NOT_FOUND);
  assert_int_equal(get(f, st, "c", "after", &rec), ORDO_OK);
  assert_string_equal(tag_of(&rec, "k", 0), "v");
  assert_string_equal(tag_of(&rec, "~p", 1), "q");
  ordo_storage_record_clear(&rec);
  assert_int_equal(count_where(f, st, "c", NULL), 3);
  /* The failed add's first two tags went with its item. */
  ordo_storage_query *q = q_leaf(ORDO_SQ_EQ, 1, "~p", "q");
  assert_int_equal(count_where(f, st, "c", q), 2);
  ordo_storage_query_free(q);
  /* The name is free again. */
  assert_int_equal(add(f, st, "c", "bad", "v", ok_tags, 2), ORDO_OK);
  db_close(f, st);
  holder_destroy(&h);
}

/* A done that submits the next request, from the database's own thread. */
typedef struct chain {
  fx *f;
  ordo_storage *st;
  int left;
  char name[16];
  ordo_storage_req req;
  atomic_int failures;
} chain;

static void chain_done(ordo_storage_req *req) {
  chain *c = req->userdata;
  if (req->status != ORDO_OK)
    atomic_fetch_add(&c->failures, 1);
  if (--c->left == 0) {
    req->userdata = c->f;
    on_done(req);
    return;
  }
  /* req is done with: reuse it for the next one. */
  snprintf(c->name, sizeof(c->name), "k%d", c->left);
  req_init(req, c->f, ORDO_STORAGE_ADD, "chain", c->name, "v");
  req->done = chain_done;
  req->userdata = c;
  SUPPORT_CHECK(c->st->backend->submit(c->st, req) == ORDO_OK);
}

static void test_done_submits(void **state) {
  fx *f = *state;
  ordo_storage *st = db_open(f, f->ctx, ORDO_STORAGE_CREATE);
  chain c = {.f = f, .st = st, .left = 50};
  atomic_init(&c.failures, 0);
  snprintf(c.name, sizeof(c.name), "k%d", c.left);
  req_init(&c.req, f, ORDO_STORAGE_ADD, "chain", c.name, "v");
  c.req.done = chain_done;
  c.req.userdata = &c;
  assert_int_equal(st->backend->submit(st, &c.req), ORDO_OK);
  fx_wait(f, 1);
  assert_int_equal(atomic_load(&c.failures), 0);
  assert_int_equal(count_where(f, st, "chain", NULL), 50);
  db_close(f, st);
}

/* The libindy model: the database's tasks on a shared multi-thread
 * executor. The drain is still never run twice at once. */
static void test_single_executor(void **state) {
  fx *f = *state;
  ordo_ctx *ctx = ctx_make(1, 4);
  ordo_storage *st = db_open(f, ctx, ORDO_STORAGE_CREATE);
  unsigned long long commits = hammer(f, st);
  assert_true(commits < THREADS * PER_THREAD);
  assert_int_equal(count_where(f, st, "c", NULL), THREADS * PER_THREAD);
  db_close(f, st);
  ordo_ctx_free(ctx);
}

/* ------------------------------------------------------------------------ */
/* Close, durability, sharing                                                */
/* ------------------------------------------------------------------------ */

typedef struct close_probe {
  fx *f;
  unsigned long done_before; /* requests completed when CLOSE's done ran */
  support_latch closed;
} close_probe;

static void close_done(ordo_storage_req *req) {
  close_probe *p = req->userdata;
  SUPPORT_CHECK(req->status == ORDO_OK);
  p->done_before = fx_done(p->f);
  support_latch_count_down(&p->closed);
}

static void test_close_after_pending(void **state) {
  fx *f = *state;
  ordo_storage *st = db_open(f, f->ctx, ORDO_STORAGE_CREATE);
  holder h;
  ordo_storage_req first, *reqs = calloc(PILE, sizeof(*reqs)), close, late;
  char (*names)[16] = calloc(PILE, sizeof(*names));
  assert_non_null(reqs);
  assert_non_null(names);
  close_probe probe = {.f = f};
  support_latch_init(&probe.closed, 1);

  holder_start(&h, f, st, &first, "held");
  for (int i = 0; i < PILE; i++) {
    snprintf(names[i], sizeof(names[i]), "p%d", i);
    req_init(&reqs[i], f, ORDO_STORAGE_ADD, "c", names[i], "v");
    assert_int_equal(st->backend->submit(st, &reqs[i]), ORDO_OK);
  }
  req_init(&close, f, ORDO_STORAGE_CLOSE, NULL, NULL, NULL);
  close.done = close_done;
  close.userdata = &probe;
  assert_int_equal(st->backend->submit(st, &close), ORDO_OK);
  /* The database thread is held, so st is certainly still alive here. */
  req_init(&late, f, ORDO_STORAGE_GET, "c", "p1", NULL);
  assert_int_equal(st->backend->submit(st, &late), ORDO_E_STATE);
  req_init(&late, f, ORDO_STORAGE_CLOSE, NULL, NULL, NULL);
  assert_int_equal(st->backend->submit(st, &late), ORDO_E_STATE);

  support_gate_open(&h.gate);
  support_latch_wait(&probe.closed);
  assert_int_equal(probe.done_before, 1 + PILE);
  for (int i = 0; i < PILE; i++)
    assert_int_equal(reqs[i].status, ORDO_OK);

  /* What was acknowledged is on disk. */
  st = db_open(f, f->ctx, 0);
  assert_int_equal(count_where(f, st, "c", NULL), 1 + PILE);
  db_close(f, st);
  holder_destroy(&h);
  support_latch_destroy(&probe.closed);
  free(names);
  free(reqs);
}

static void test_durability(void **state) {
  fx *f = *state;
  ordo_storage *st = db_open(f, f->ctx, ORDO_STORAGE_CREATE);
  ordo_storage_tag tags[2] = {T("k", "v", 0), T("~p", "q", 1)};
  assert_int_equal(add(f, st, "c", "kept", "value", tags, 2), ORDO_OK);
  ordo_storage_req r;
  req_init(&r, f, ORDO_STORAGE_META_SET, NULL, "keys", "wrapped");
  assert_int_equal(run(f, st, &r), ORDO_OK);
  db_close(f, st);

  /* Reopened from another context, as another process would. */
  ordo_ctx *ctx2 = ctx_make(0, 1);
  st = db_open(f, ctx2, 0);
  ordo_storage_record rec;
  assert_int_equal(get(f, st, "c", "kept", &rec), ORDO_OK);
  assert_true(buf_is(&rec.value, "value"));
  assert_string_equal(tag_of(&rec, "k", 0), "v");
  assert_string_equal(tag_of(&rec, "~p", 1), "q");
  ordo_storage_record_clear(&rec);
  req_init(&r, f, ORDO_STORAGE_META_GET, NULL, "keys", NULL);
  assert_int_equal(run(f, st, &r), ORDO_OK);
  assert_true(buf_is(&r.result.value, "wrapped"));
  ordo_storage_req_clear_output(&r);
  db_close(f, st);
  ordo_ctx_free(ctx2);
}

#define BURST 200

static void test_two_connections(void **state) {
  fx *f = *state;
  ordo_ctx *ctx2 = ctx_make(0, 1);
  ordo_storage *a = db_open(f, f->ctx, ORDO_STORAGE_CREATE);
  ordo_storage *b = db_open(f, ctx2, 0);
  char name[32];

  /* Alternately: each sees the other's writes. */
  for (int i = 0; i < 20; i++) {
    snprintf(name, sizeof(name), "a%d", i);
    assert_int_equal(add(f, a, "c", name, "va", NULL, 0), ORDO_OK);
    snprintf(name, sizeof(name), "b%d", i);
    assert_int_equal(add(f, b, "c", name, "vb", NULL, 0), ORDO_OK);
    assert_int_equal(count_where(f, a, "c", NULL), 2 * (unsigned)i + 2);
  }
  assert_int_equal(add(f, b, "c", "a3", "dup", NULL, 0), ORDO_E_RECORD_DUPLICATE);

  /* At once: the busy timeout serialises the two writers. */
  ordo_storage_req *reqs = calloc(2 * BURST, sizeof(*reqs));
  char (*names)[16] = calloc(2 * BURST, sizeof(*names));
  assert_non_null(reqs);
  assert_non_null(names);
  unsigned long base = fx_done(f);
  for (int i = 0; i < 2 * BURST; i++) {
    ordo_storage *st = i % 2 ? b : a;
    snprintf(names[i], sizeof(names[i]), "x%d", i);
    req_init(&reqs[i], f, ORDO_STORAGE_ADD, "c", names[i], "v");
    assert_int_equal(st->backend->submit(st, &reqs[i]), ORDO_OK);
  }
  fx_wait(f, base + 2 * BURST);
  for (int i = 0; i < 2 * BURST; i++) {
    if (reqs[i].status != ORDO_OK)
      fail_msg("request %d: %s: %s", i, ordo_errname(reqs[i].status),
               reqs[i].message ? reqs[i].message : "");
    ordo_storage_req_clear_output(&reqs[i]);
  }
  assert_int_equal(count_where(f, a, "c", NULL), 40 + 2 * BURST);
  assert_int_equal(count_where(f, b, "c", NULL), 40 + 2 * BURST);
  db_close(f, a);
  db_close(f, b);
  ordo_ctx_free(ctx2);
  free(names);
  free(reqs);
}

/* Sound and complete, as SQLite itself reads the file (default VFS). */
static void check_file(const char *path, unsigned long long items) {
  sqlite3 *db = NULL;
  sqlite3_stmt *s = NULL;
  assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL),
                   SQLITE_OK);
  assert_int_equal(
      sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &s, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_step(s), SQLITE_ROW);
  assert_string_equal((const char *)sqlite3_column_text(s, 0), "ok");
  assert_int_equal(sqlite3_finalize(s), SQLITE_OK);
  assert_int_equal(
      sqlite3_prepare_v2(db, "SELECT count(*) FROM items", -1, &s, NULL),
      SQLITE_OK);
  assert_int_equal(sqlite3_step(s), SQLITE_ROW);
  assert_int_equal(sqlite3_column_int64(s, 0), items);
  assert_int_equal(sqlite3_finalize(s), SQLITE_OK);
  assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

#define BIG_N 1500
#define BIG_VALUE 4000

/* The WAL goes through sqlite_wal.c, which holds a transaction's frames
 * back until SQLite syncs the log. A transaction far bigger than the page
 * cache (6 MB against 2 MB) spills frames while it runs and reads some
 * back; one that fails is rolled back to its savepoint, leaving frames the
 * next transaction writes over; another connection writes in between. The
 * file must come out sound, with exactly what was acknowledged. */
static void test_wal_big_transactions_shared(void **state) {
  fx *f = *state;
  ordo_ctx *ctx2 = ctx_make(0, 1);
  ordo_storage *a = db_open(f, f->ctx, ORDO_STORAGE_CREATE);
  ordo_storage *b = db_open(f, ctx2, 0);
  ordo_storage_req *sub = calloc(BIG_N, sizeof(*sub)), r;
  char (*names)[16] = calloc(BIG_N, sizeof(*names));
  char *value = malloc(BIG_VALUE + 1);
  assert_non_null(sub);
  assert_non_null(names);
  assert_non_null(value);
  memset(value, 'x', BIG_VALUE);
  value[BIG_VALUE] = 0;
  char name[32];

  for (int round = 0; round < 2; round++) {
    /* Round 0 ends in a duplicate of its first record: all rolled back. */
    for (int i = 0; i < BIG_N; i++) {
      int n = round == 0 && i == BIG_N - 1 ? 0 : i;
      snprintf(names[i], sizeof(names[i]), "s%d", n);
      req_init(&sub[i], f, ORDO_STORAGE_ADD, "big", names[i], value);
    }
    req_init(&r, f, ORDO_STORAGE_BATCH, NULL, NULL, NULL);
    r.batch = sub;
    r.nbatch = BIG_N;
    assert_int_equal(run(f, a, &r),
                     round == 0 ? ORDO_E_RECORD_DUPLICATE : ORDO_OK);
    for (int i = 0; i < BIG_N; i++)
      ordo_storage_req_clear_output(&sub[i]);
    ordo_storage_req_clear_output(&r);
    /* The other connection writes between a's transactions. */
    for (int i = 0; i < 20; i++) {
      snprintf(name, sizeof(name), "b%d-%d", round, i);
      assert_int_equal(add(f, b, "small", name, "v", NULL, 0), ORDO_OK);
    }
    assert_int_equal(count_where(f, a, "small", NULL), 20 * (round + 1));
    assert_int_equal(count_where(f, b, "big", NULL), round == 0 ? 0 : BIG_N);
  }
  ordo_storage_record rec;
  assert_int_equal(get(f, b, "big", "s1234", &rec), ORDO_OK);
  assert_true(buf_is(&rec.value, value));
  ordo_storage_record_clear(&rec);
  db_close(f, a);
  db_close(f, b);
  check_file(f->path, BIG_N + 40);
  ordo_ctx_free(ctx2);
  free(value);
  free(names);
  free(sub);
}

static void write_file(const char *path, const char *text, int times) {
  FILE *fp = fopen(path, "wb");
  assert_non_null(fp);
  for (int i = 0; i < times; i++)
    assert_int_equal(fputs(text, fp) >= 0, 1);
  assert_int_equal(fclose(fp), 0);
}

static void sql_exec(const char *path, const char *sql) {
  sqlite3 *db = NULL;
  assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
  assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

static void expect_refused(fx *f, const char *path, const char *why) {
  ordo_storage *st = NULL;
  char *err = NULL;
  assert_int_equal(BE->open(BE, f->ctx, path, 0, &st, &err), ORDO_E_STORAGE);
  assert_null(st);
  assert_non_null(err);
  if (strstr(err, why) == NULL)
    fail_msg("expected \"%s\" in: %s", why, err);
  free(err);
}

static void test_foreign_files(void **state) {
  fx *f = *state;
  char path[400];

  /* Another application's SQLite database: refused, and left untouched
   * (still in rollback-journal mode, its table intact, no WAL made). */
  snprintf(path, sizeof(path), "%s/foreign.db", f->dir);
  sql_exec(path, "CREATE TABLE items(x); INSERT INTO items VALUES (42);");
  expect_refused(f, path, "not an ordo database");
  assert_false(exists_suffix(path, "-wal"));
  sqlite3 *db = NULL;
  sqlite3_stmt *s = NULL;
  assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
  assert_int_equal(
      sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &s, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_step(s), SQLITE_ROW);
  assert_string_equal((const char *)sqlite3_column_text(s, 0), "delete");
  assert_int_equal(sqlite3_finalize(s), SQLITE_OK);
  assert_int_equal(sqlite3_close(db), SQLITE_OK);
  /* CREATE over it is "exists", and does not clobber it. */
  ordo_storage *st = NULL;
  assert_int_equal(BE->open(BE, f->ctx, path, ORDO_STORAGE_CREATE, &st, NULL),
                   ORDO_E_WALLET_EXISTS);

  /* Not SQLite at all. */
  snprintf(path, sizeof(path), "%s/garbage.db", f->dir);
  write_file(path, "this is not a database, just some text\n", 200);
  expect_refused(f, path, "not an ordo database");
  /* An empty file is an empty SQLite database, but not ordo's. */
  write_file(path, "", 0);
  expect_refused(f, path, "not an ordo database");

  /* A directory. */
  snprintf(path, sizeof(path), "%s/sub", f->dir);
  assert_int_equal(mkdir(path, 0700), 0);
  expect_refused(f, path, "not a regular file");

  /* An ordo database of a schema version this build does not read. */
  st = db_open(f, f->ctx, ORDO_STORAGE_CREATE);
  db_close(f, st);
  sql_exec(f->path, "PRAGMA user_version = 99;");
  expect_refused(f, f->path, "schema version 99");
  /* An ordo database with a table gone. */
  sql_exec(f->path, "PRAGMA user_version = 1; DROP TABLE meta;");
  expect_refused(f, f->path, "damaged ordo schema");
}

/* ------------------------------------------------------------------------ */
/* Fault injection                                                           */
/* ------------------------------------------------------------------------ */

static void test_fault_spec(void **state) {
  (void)state;
  static const char *const good[] = {
      "write:enospc:next=3", "sync:eio:p=0.01:seed=7:path=queue.db",
      "write+truncate:eio", "all:enospc:p=1", "sync:eio:path=a:b,write:eio"};
  static const char *const bad[] = {
      "", "write", "write:eagain", "flush:eio", "write:eio:next=0",
      "write:eio:p=0", "write:eio:p=2", "write:eio:next=x", "write:eio:bogus=1",
      "write:eio,"};
  for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
    assert_int_equal(ordo_storage_fault_set_spec(good[i]), ORDO_OK);
  ordo_storage_fault_clear();
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    assert_int_equal(ordo_storage_fault_set_spec(bad[i]), ORDO_E_INVAL);
    assert_non_null(strstr(ordo_last_error_message(), "storage fault"));
  }
  ordo_storage_fault f = {.ops = 8, .error = EIO, .next = 1};
  assert_int_equal(ordo_storage_fault_set(&f), ORDO_E_INVAL);
  f.ops = ORDO_STORAGE_FAULT_WRITE;
  f.error = EAGAIN;
  assert_int_equal(ordo_storage_fault_set(&f), ORDO_E_INVAL);
  ordo_storage_fault_clear();
}

/* A fault on the commit's sync fails the whole group: every write of it
 * is answered with an error, a read in it is answered (run again on its
 * own), nothing failed is there after a reopen and everything
 * acknowledged is; once the fault is spent, writes work again on the
 * same connection. */
static void test_fault_group_fails_whole(void **state) {
  fx *f = *state;
  ordo_storage *st = db_open(f, f->ctx, ORDO_STORAGE_CREATE);
  holder h;
  ordo_storage_req first, rd, *reqs = calloc(PILE, sizeof(*reqs));
  char (*names)[16] = calloc(PILE, sizeof(*names));
  ordo_storage_record rec;
  assert_non_null(reqs);
  assert_non_null(names);
  assert_int_equal(add(f, st, "c", "before", "v", NULL, 0), ORDO_OK);
  /* Done callbacks so far (the add above counted one). */
  unsigned long base = fx_done(f);

  holder_start(&h, f, st, &first, "held");
  unsigned long long commits = commits_of(st);
  unsigned long long injected = ordo_storage_fault_injected();
  ordo_storage_fault fault = {.ops = ORDO_STORAGE_FAULT_SYNC,
                              .error = EIO,
                              .next = 1,
                              .path = f->path};
  assert_int_equal(ordo_storage_fault_set(&fault), ORDO_OK);
  for (int i = 0; i < PILE; i++) {
    snprintf(names[i], sizeof(names[i]), "f%d", i);
    req_init(&reqs[i], f, ORDO_STORAGE_ADD, "c", names[i], "v");
    assert_int_equal(st->backend->submit(st, &reqs[i]), ORDO_OK);
    if (i == PILE / 2) {
      req_init(&rd, f, ORDO_STORAGE_GET, "c", "before", NULL);
      assert_int_equal(st->backend->submit(st, &rd), ORDO_OK);
    }
  }
  support_gate_open(&h.gate);
  fx_wait(f, base + 2 + PILE); /* held, the pile and the read (last) */
  assert_int_equal(ordo_storage_fault_injected(), injected + 1);
  assert_int_equal(commits_of(st), commits);
  for (int i = 0; i < PILE; i++) {
    assert_int_equal(reqs[i].status, ORDO_E_STORAGE);
    assert_non_null(reqs[i].message);
    ordo_storage_req_clear_output(&reqs[i]);
  }
  assert_int_equal(rd.status, ORDO_OK); /* the disk still reads */
  assert_true(buf_is(&rd.result.value, "v"));
  ordo_storage_req_clear_output(&rd);

  /* The rule is spent: the same connection writes again. */
  assert_int_equal(add(f, st, "c", "after", "v", NULL, 0), ORDO_OK);
  assert_int_equal(get(f, st, "c", "f0", &rec), ORDO_E_RECORD_NOT_FOUND);
  db_close(f, st);

  st = db_open(f, f->ctx, 0);
  assert_int_equal(count_where(f, st, "c", NULL), 3); /* before held after */
  assert_int_equal(get(f, st, "c", "after", &rec), ORDO_OK);
  ordo_storage_record_clear(&rec);
  for (int i = 0; i < PILE; i++)
    assert_int_equal(get(f, st, "c", names[i], &rec), ORDO_E_RECORD_NOT_FOUND);
  db_close(f, st);
  holder_destroy(&h);
  free(names);
  free(reqs);
}

/* ENOSPC on writes, then a random fault: every write is answered either
 * way, reads keep working, what was acknowledged survives a reopen and
 * nothing that failed does. */
static void test_fault_write_enospc_and_random(void **state) {
  fx *f = *state;
  ordo_storage *st = db_open(f, f->ctx, ORDO_STORAGE_CREATE);
  ordo_storage_record rec;
  char name[32];
  int ok[200];
  assert_int_equal(add(f, st, "c", "base", "v", NULL, 0), ORDO_OK);

  assert_int_equal(ordo_storage_fault_set_spec("write:enospc"), ORDO_OK);
  for (int i = 0; i < 5; i++) {
    snprintf(name, sizeof name, "full%d", i);
    assert_int_equal(add(f, st, "c", name, "v", NULL, 0), ORDO_E_STORAGE);
    assert_int_equal(get(f, st, "c", "base", &rec), ORDO_OK);
    ordo_storage_record_clear(&rec);
  }
  ordo_storage_fault_clear();

  char spec[400];
  snprintf(spec, sizeof spec, "write+sync+truncate:eio:p=0.3:seed=11:path=%s",
           f->path);
  assert_int_equal(ordo_storage_fault_set_spec(spec), ORDO_OK);
  int nok = 0;
  for (int i = 0; i < 200; i++) {
    snprintf(name, sizeof name, "r%d", i);
    int rc = add(f, st, "c", name, "v", NULL, 0);
    assert_true(rc == ORDO_OK || rc == ORDO_E_STORAGE);
    ok[i] = rc == ORDO_OK;
    nok += ok[i];
  }
  ordo_storage_fault_clear();
  assert_true(nok > 0 && nok < 200);
  db_close(f, st);

  st = db_open(f, f->ctx, 0);
  for (int i = 0; i < 200; i++) {
    snprintf(name, sizeof name, "r%d", i);
    int rc = get(f, st, "c", name, &rec);
    if (ok[i]) {
      assert_int_equal(rc, ORDO_OK);
      ordo_storage_record_clear(&rec);
    } else {
      assert_int_equal(rc, ORDO_E_RECORD_NOT_FOUND);
    }
  }
  assert_int_equal(count_where(f, st, "c", NULL), 1 + (unsigned)nok);
  db_close(f, st);
}

#ifndef STORAGE_TESTS_NO_MAIN
int main(void) {
#define T_(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_backend_find),
      T_(test_create_open_destroy),
      T_(test_record_crud),
      T_(test_meta),
      T_(test_query_operators),
      T_(test_delete_matching),
      T_(test_invalid_requests),
      T_(test_batch),
      T_(test_group_duplicate_fails_alone),
      T_(test_group_reads_see_writes),
      T_(test_group_add_undone_alone),
      T_(test_group_commit_many_threads),
      T_(test_no_group_commit),
      T_(test_done_submits),
      T_(test_single_executor),
      T_(test_close_after_pending),
      T_(test_durability),
      T_(test_two_connections),
      T_(test_wal_big_transactions_shared),
      T_(test_foreign_files),
      cmocka_unit_test(test_fault_spec),
      T_(test_fault_group_fails_whole),
      T_(test_fault_write_enospc_and_random),
  };
#undef T_
  return cmocka_run_group_tests(tests, NULL, NULL);
}
#endif

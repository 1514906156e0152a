/*
 * sqlite.c — the SQLite storage backend: ordo's embedded default.
 *
 * One open database is one SQLite connection plus one serial executor. All
 * SQL of a database runs as a plain task on that executor, so the
 * connection is opened with SQLITE_OPEN_NOMUTEX: it is used by one thread at
 * a time (first the opening thread, then the drain task), and the hand-over
 * is ordered by sq->mu, which every drain takes before touching SQLite.
 * In single_executor mode ordo__executor_open hands out the shared executor,
 * which may have several threads; the connection is still used by one
 * thread at a time, because at most one drain task exists per database
 * (sq->scheduled), not because the executor is serial.
 *
 * Group commit. submit() appends the request to sq's pending list and posts
 * the drain task unless one is already queued or running. The drain takes
 * every pending request at once and runs them in one transaction: BEGIN
 * IMMEDIATE (plain BEGIN when the group only reads), each write inside its
 * own SAVEPOINT so that a failing write (a duplicate, a missing record)
 * rolls back alone and fails alone (ADD gets the same without a savepoint,
 * see op_add_unguarded), reads in the same transaction, COMMIT.
 * Only after COMMIT has returned are the done callbacks called, so a write
 * is durable (WAL, synchronous=FULL) before its caller hears of it. Requests
 * that arrive while a group runs form the next group: the more callers wait
 * on fsync, the more writes share one. With ORDO_STORAGE_NO_GROUP_COMMIT
 * each request is a group of its own (the benchmarks' naive baseline).
 *
 * Lock order: sq->mu, then the executor's lock (submit and the drain post
 * the drain task while holding sq->mu, which is what makes "a drain is
 * scheduled" and "the drain task is queued or running" the same fact).
 * sq->mu is never held while SQL or a done callback runs.
 *
 * Choices this file makes where storage.h leaves room (report them upward):
 *   - LIKE is bytewise and case-sensitive: '%' matches any run of bytes,
 *     '_' one UTF-8 character; there is no escape character. SQLite's own
 *     LIKE folds ASCII case, PostgreSQL's does not; the backends should
 *     agree, and "bytewise" is what storage.h promises for comparisons.
 *   - A leaf is written `items.id IN (SELECT item_id FROM tags_x WHERE
 *     name = ? AND value <op> ?)`, which means the same as the EXISTS form
 *     in the header but lets SQLite use the (name, value) index. Deeply
 *     nested trees are split into CTEs to fit SQLite's parser (see
 *     "queries" below).
 *   - If the transaction fails as a whole (BEGIN or COMMIT fails, or SQLite
 *     rolls it back after an IO error), every write of the group that had
 *     succeeded fails with that error. Its reads may have seen writes that
 *     were never committed, so they are run again, in a read transaction
 *     of their own, before they are answered: a disk that fails writes
 *     (full, IO errors) still serves reads. A read that fails then fails
 *     with its own error.
 *   - A failed BATCH: the sub-request that failed keeps its own status and
 *     message, every other sub-request gets ORDO_E_CANCELED (nothing of it
 *     remains), and the outer request carries the failing status.
 *   - Query trees deeper than SQ_QUERY_MAX_DEPTH, or needing more SQL
 *     parameters than the connection allows, are refused with ORDO_E_INVAL.
 *   - submit returns ORDO_E_SHUTDOWN (not in the header's list) when the
 *     context's threads are already gone, i.e. the database was never closed.
 *   - Returned buffers have a NUL byte after their len bytes, so plaintext
 *     tag values can be used as C strings.
 *   - submit zeroes a request's output fields (its BATCH sub-requests'
 *     too): a request reused after a completion must have been cleared with
 *     ordo_storage_req_clear_output first, or what it held leaks. submit
 *     also refuses a request whose done is NULL (ORDO_E_INVAL).
 *   - SCAN and COUNT with rec.category.data == NULL cover every category
 *     (the wallet's export reads all records that way); noted in storage.h.
 *
 * FUTURE OPTIMIZATIONS: SCAN/COUNT statements are prepared per call (a small
 * cache keyed by SQL text would save the parse); a group has no size cap.
 */
#include "base/base.h"
#include "storage/storage.h"
#include "storage/sqlite_wal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* PRAGMA application_id marks the file as ordo's ("ordo" in ASCII); the
 * schema version is PRAGMA user_version. Both live in the database header,
 * so the wallet's own meta namespace stays untouched. */
#define SQ_APPLICATION_ID 0x6F72646F
#define SQ_SCHEMA_VERSION 1
/* How long a write waits for another process's write lock. */
#define SQ_BUSY_TIMEOUT_MS 5000
/* Deepest accepted query tree. The wallet's WQL parser makes trees at most
 * 2 * ORDO__WQL_MAX_DEPTH = 128 nodes deep; this leaves room above that and
 * stays well inside SQLite's expression depth limit (1000), since a level
 * costs one SQL expression level (NOT, or a two-child AND/OR) plus the
 * logarithm of its width (qs_join). */
#define SQ_QUERY_MAX_DEPTH 256

/* ---- schema and cached statements ------------------------------------------ */

static const char schema_sql[] =
    "CREATE TABLE items("
    " id INTEGER PRIMARY KEY,"
    " category BLOB NOT NULL,"
    " name BLOB NOT NULL,"
    " value BLOB NOT NULL,"
    " UNIQUE(category, name));"
    "CREATE TABLE tags_encrypted("
    " item_id INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,"
    " name BLOB NOT NULL,"
    " value BLOB NOT NULL,"
    " PRIMARY KEY(item_id, name));"
    "CREATE INDEX tags_encrypted_name_value ON tags_encrypted(name, value);"
    "CREATE TABLE tags_plaintext("
    " item_id INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,"
    " name BLOB NOT NULL,"
    " value BLOB NOT NULL,"
    " PRIMARY KEY(item_id, name));"
    "CREATE INDEX tags_plaintext_name_value ON tags_plaintext(name, value);"
    "CREATE TABLE meta(key BLOB NOT NULL PRIMARY KEY, value BLOB NOT NULL);";

/* Statements prepared once per connection. The tag statements come in
 * pairs, encrypted then plaintext: ST_X + (plaintext != 0). */
enum {
  ST_BEGIN,
  ST_BEGIN_IMMEDIATE,
  ST_COMMIT,
  ST_ROLLBACK,
  ST_SAVEPOINT,
  ST_RELEASE,
  ST_ROLLBACK_TO,
  ST_ITEM_INSERT,
  ST_ITEM_GET,
  ST_ITEM_ID,
  ST_ITEM_UPDATE,
  ST_ITEM_DELETE,
  ST_ITEM_DELETE_ID,
  ST_TAG_UPSERT,
  ST_TAG_UPSERT_P,
  ST_TAG_DELETE,
  ST_TAG_DELETE_P,
  ST_TAGS_CLEAR,
  ST_TAGS_CLEAR_P,
  ST_TAGS_LIST,
  ST_TAGS_LIST_P,
  ST_META_SET,
  ST_META_GET,
  ST_COUNT
};

#define SQ_TAG_UPSERT(t)                                                       \
  "INSERT INTO " t "(item_id, name, value) VALUES (?1, ?2, ?3)"                \
  " ON CONFLICT(item_id, name) DO UPDATE SET value = excluded.value"
#define SQ_TAG_DELETE(t) "DELETE FROM " t " WHERE item_id = ?1 AND name = ?2"
#define SQ_TAGS_CLEAR(t) "DELETE FROM " t " WHERE item_id = ?1"
#define SQ_TAGS_LIST(t)                                                        \
  "SELECT name, value FROM " t " WHERE item_id = ?1 ORDER BY name"

static const char *const stmt_sql[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN",
    [ST_BEGIN_IMMEDIATE] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_SAVEPOINT] = "SAVEPOINT req",
    [ST_RELEASE] = "RELEASE req",
    [ST_ROLLBACK_TO] = "ROLLBACK TO req",
    [ST_ITEM_INSERT] =
        "INSERT INTO items(category, name, value) VALUES (?1, ?2, ?3)",
    [ST_ITEM_GET] = "SELECT id, value FROM items"
                    " WHERE category = ?1 AND name = ?2",
    [ST_ITEM_ID] = "SELECT id FROM items WHERE category = ?1 AND name = ?2",
    [ST_ITEM_UPDATE] = "UPDATE items SET value = ?3"
                       " WHERE category = ?1 AND name = ?2",
    [ST_ITEM_DELETE] = "DELETE FROM items WHERE category = ?1 AND name = ?2",
    [ST_ITEM_DELETE_ID] = "DELETE FROM items WHERE id = ?1",
    [ST_TAG_UPSERT] = SQ_TAG_UPSERT("tags_encrypted"),
    [ST_TAG_UPSERT_P] = SQ_TAG_UPSERT("tags_plaintext"),
    [ST_TAG_DELETE] = SQ_TAG_DELETE("tags_encrypted"),
    [ST_TAG_DELETE_P] = SQ_TAG_DELETE("tags_plaintext"),
    [ST_TAGS_CLEAR] = SQ_TAGS_CLEAR("tags_encrypted"),
    [ST_TAGS_CLEAR_P] = SQ_TAGS_CLEAR("tags_plaintext"),
    [ST_TAGS_LIST] = SQ_TAGS_LIST("tags_encrypted"),
    [ST_TAGS_LIST_P] = SQ_TAGS_LIST("tags_plaintext"),
    [ST_META_SET] = "INSERT INTO meta(key, value) VALUES (?1, ?2)"
                    " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
    [ST_META_GET] = "SELECT value FROM meta WHERE key = ?1",
};

/* ---- state ------------------------------------------------------------------ */

typedef struct sq_db {
  ordo_storage base; /* first: the interface casts between the two */
  ordo__executor *ex;
  sqlite3 *db;
  sqlite3_stmt *stmt[ST_COUNT];
  int group_commit;  /* 0 with ORDO_STORAGE_NO_GROUP_COMMIT */
  int chain_failed;  /* a chained write failed (storage.h); drain only */
  int max_params;    /* the connection's SQL parameter limit */
  atomic_ullong commits; /* write transactions committed */
  ordo__task drain;  /* queued or running exactly while scheduled != 0 */

  pthread_mutex_t mu; /* guards the fields below */
  ordo_storage_req *head, *tail; /* submitted, not yet taken by a drain */
  int scheduled;      /* the drain task is queued or running */
  int closing;        /* CLOSE was accepted: submit refuses from now on */
} sq_db;

/* ---- small helpers ------------------------------------------------------------ */

#if defined(__GNUC__) || defined(__clang__)
#define SQ_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define SQ_PRINTF(a, b)
#endif

/* Replace req's message. Out of memory leaves it NULL: the status still
 * says what happened. */
static void SQ_PRINTF(2, 3) req_msg(ordo_storage_req *req, const char *fmt, ...) {
  free(req->message);
  req->message = NULL;
  va_list ap;
  va_start(ap, fmt);
  char *m;
  if (vasprintf(&m, fmt, ap) >= 0)
    req->message = m;
  va_end(ap);
}

/* An open/destroy error: *errmsg (when asked for) gets the text. */
static int SQ_PRINTF(3, 4) set_err(char **errmsg, int code, const char *fmt, ...) {
  if (errmsg == NULL)
    return code;
  free(*errmsg);
  *errmsg = NULL;
  va_list ap;
  va_start(ap, fmt);
  char *m;
  if (vasprintf(&m, fmt, ap) >= 0)
    *errmsg = m;
  va_end(ap);
  return code;
}

/* SQLITE_BUSY/LOCKED: another connection holds the lock past the timeout. */
static int sql_code(int rc) {
  int primary = rc & 0xff;
  if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED)
    return ORDO_E_STORAGE_BUSY;
  if (primary == SQLITE_NOMEM)
    return ORDO_E_NOMEM;
  return ORDO_E_STORAGE;
}

/* Fail req with the connection's error for rc; call before the statement is
 * reset, while sqlite3_errmsg still describes rc. */
static int sql_fail(sq_db *sq, ordo_storage_req *req, int rc, const char *what) {
  req_msg(req, "%s: %s", what, sqlite3_errmsg(sq->db));
  return sql_code(rc);
}

/* Done with a cached statement: back to its start, and no binding left
 * pointing into the caller's buffers (they are only borrowed until done).
 * reset's result repeats the last step's error, which the caller has
 * already handled; clear_bindings cannot fail. */
static void stmt_done(sqlite3_stmt *s) {
  (void)sqlite3_reset(s);
  (void)sqlite3_clear_bindings(s);
}

/* Bind a buffer as a BLOB. An empty buffer may have data == NULL, which
 * SQLite would bind as SQL NULL; bind an empty blob instead. */
static int bind_buf(sqlite3_stmt *s, int i, const ordo_storage_buf *b) {
  const void *p = b->data != NULL ? (const void *)b->data : (const void *)"";
  return sqlite3_bind_blob64(s, i, p, b->len, SQLITE_STATIC);
}

static int buf_copy(ordo_storage_buf *dst, const void *src, size_t len) {
  dst->data = malloc(len + 1);
  if (dst->data == NULL)
    return ORDO_E_NOMEM;
  if (len > 0)
    memcpy(dst->data, src, len);
  dst->data[len] = 0; /* see the header comment: usable as a C string */
  dst->len = len;
  return ORDO_OK;
}

/* Copy column col of the current row. column_blob is NULL for an empty
 * value, and also when SQLite ran out of memory converting it. */
static int col_copy(sqlite3_stmt *s, int col, ordo_storage_buf *dst) {
  const void *p = sqlite3_column_blob(s, col);
  size_t n = (size_t)sqlite3_column_bytes(s, col);
  if (p == NULL && n > 0)
    return ORDO_E_NOMEM;
  return buf_copy(dst, p, n);
}

static int nomem(ordo_storage_req *req) {
  req_msg(req, "out of memory");
  return ORDO_E_NOMEM;
}

static int is_write(ordo_storage_opcode op) {
  switch (op) {
  case ORDO_STORAGE_GET:
  case ORDO_STORAGE_SCAN:
  case ORDO_STORAGE_COUNT:
  case ORDO_STORAGE_META_GET:
  case ORDO_STORAGE_CLOSE:
  case ORDO_STORAGE_SHRINK:
    return 0;
  default:
    return 1;
  }
}

/* ---- LIKE --------------------------------------------------------------------- */

/* Index of the character after the one starting at i (UTF-8: skip the
 * continuation bytes). */
static size_t utf8_next(const unsigned char *s, size_t n, size_t i) {
  i++;
  while (i < n && (s[i] & 0xC0) == 0x80)
    i++;
  return i;
}

/* SQL LIKE, bytewise and case-sensitive: '%' any run, '_' one character.
 * The classic one-backtrack-point matcher: on a mismatch after a '%', let
 * that '%' swallow one more character and retry. O(len(p) * len(t)). */
static int like_match(const unsigned char *p, size_t pn, const unsigned char *t,
                      size_t tn) {
  size_t pi = 0, ti = 0, star_p = SIZE_MAX, star_t = 0;
  while (ti < tn) {
    if (pi < pn && p[pi] == '%') {
      star_p = ++pi;
      star_t = ti;
    } else if (pi < pn && p[pi] == '_') {
      pi++;
      ti = utf8_next(t, tn, ti);
    } else if (pi < pn && p[pi] == t[ti]) {
      pi++;
      ti++;
    } else if (star_p != SIZE_MAX) {
      star_t = utf8_next(t, tn, star_t);
      ti = star_t;
      pi = star_p;
    } else {
      return 0;
    }
  }
  while (pi < pn && p[pi] == '%')
    pi++;
  return pi == pn;
}

/* ordo_like(value, pattern) for the queries. */
static void like_fn(sqlite3_context *c, int argc, sqlite3_value **argv) {
  (void)argc; /* registered with exactly 2 */
  const unsigned char *t = sqlite3_value_blob(argv[0]);
  size_t tn = (size_t)sqlite3_value_bytes(argv[0]);
  const unsigned char *p = sqlite3_value_blob(argv[1]);
  size_t pn = (size_t)sqlite3_value_bytes(argv[1]);
  if ((t == NULL && tn > 0) || (p == NULL && pn > 0)) {
    sqlite3_result_error_nomem(c);
    return;
  }
  sqlite3_result_int(c, like_match(p, pn, t, tn));
}

/* ---- request validation (submit, caller's thread) -------------------------------- */

/* A buffer the backend reads: data may be NULL only when empty. */
static int buf_ok(const ordo_storage_buf *b) {
  return b->data != NULL || b->len == 0;
}

/* A key (category, name, tag name): must be given, even when empty. */
static int key_ok(const ordo_storage_buf *b) { return b->data != NULL; }

static int tags_ok(const ordo_storage_record *r) {
  if (r->ntags > 0 && r->tags == NULL)
    return 0;
  for (size_t i = 0; i < r->ntags; i++)
    if (!key_ok(&r->tags[i].name) || !buf_ok(&r->tags[i].value))
      return 0;
  return 1;
}

/* Check a query tree and count the SQL parameters it will bind. */
static int query_ok(const ordo_storage_query *q, int depth, size_t *params) {
  if (q == NULL || depth > SQ_QUERY_MAX_DEPTH)
    return 0;
  switch (q->op) {
  case ORDO_SQ_ALL:
    return 1;
  case ORDO_SQ_AND:
  case ORDO_SQ_OR:
  case ORDO_SQ_NOT:
    if (q->op == ORDO_SQ_NOT && q->nchildren != 1)
      return 0;
    if (q->nchildren > 0 && q->children == NULL)
      return 0;
    for (size_t i = 0; i < q->nchildren; i++)
      if (!query_ok(q->children[i], depth + 1, params))
        return 0;
    return 1;
  case ORDO_SQ_NAME_GTE:
  case ORDO_SQ_NAME_LT:
    if (q->nvalues != 1 || q->values == NULL || !buf_ok(&q->values[0]))
      return 0;
    (*params)++;
    return 1;
  case ORDO_SQ_GT:
  case ORDO_SQ_GTE:
  case ORDO_SQ_LT:
  case ORDO_SQ_LTE:
  case ORDO_SQ_LIKE:
    if (!q->plaintext)
      return 0; /* encrypted values have no order and no pattern */
    /* fall through */
  case ORDO_SQ_EQ:
  case ORDO_SQ_NEQ:
    if (q->nvalues != 1)
      return 0;
    /* fall through */
  case ORDO_SQ_IN:
    if (!key_ok(&q->tag_name) || (q->nvalues > 0 && q->values == NULL))
      return 0;
    for (size_t i = 0; i < q->nvalues; i++)
      if (!buf_ok(&q->values[i]))
        return 0;
    *params += 1 + q->nvalues;
    return 1;
  default:
    return 0;
  }
}

static int req_ok(const sq_db *sq, const ordo_storage_req *req, int in_batch) {
  const ordo_storage_record *r = &req->rec;
  switch (req->opcode) {
  case ORDO_STORAGE_ADD:
  case ORDO_STORAGE_ADD_TAGS:
  case ORDO_STORAGE_REPLACE_TAGS:
  case ORDO_STORAGE_DELETE_TAGS:
    return key_ok(&r->category) && key_ok(&r->name) && buf_ok(&r->value) &&
           tags_ok(r);
  case ORDO_STORAGE_GET:
  case ORDO_STORAGE_UPDATE_VALUE:
  case ORDO_STORAGE_DELETE:
    return key_ok(&r->category) && key_ok(&r->name) && buf_ok(&r->value);
  case ORDO_STORAGE_DELETE_MATCHING:
    if (r->category.data == NULL || req->query == NULL)
      return 0; /* never a whole category, or all of them */
    /* fall through */
  case ORDO_STORAGE_SCAN:
  case ORDO_STORAGE_COUNT: {
    size_t params = 3; /* category, limit, offset */
    if (!buf_ok(&r->category))
      return 0; /* data NULL: every category (storage.h) */
    if (req->query != NULL && !query_ok(req->query, 0, &params))
      return 0;
    return params <= (size_t)sq->max_params;
  }
  case ORDO_STORAGE_META_SET:
  case ORDO_STORAGE_META_GET:
    return key_ok(&r->name) && buf_ok(&r->value);
  case ORDO_STORAGE_BATCH:
    if (in_batch || (req->nbatch > 0 && req->batch == NULL))
      return 0;
    for (size_t i = 0; i < req->nbatch; i++)
      if (!req_ok(sq, &req->batch[i], 1))
        return 0;
    return 1;
  case ORDO_STORAGE_CLOSE:
  case ORDO_STORAGE_SHRINK:
    return !in_batch;
  default:
    return 0;
  }
}

/* The output fields start empty; what a previous use left there is the
 * caller's to have cleared (ordo_storage_req_clear_output). */
static void req_reset_output(ordo_storage_req *req) {
  req->status = ORDO_OK;
  req->message = NULL;
  memset(&req->result, 0, sizeof(req->result));
  req->results = NULL;
  req->nresults = 0;
  req->count = 0;
  req->backend_next = NULL;
  if (req->opcode == ORDO_STORAGE_BATCH)
    for (size_t i = 0; i < req->nbatch; i++)
      req_reset_output(&req->batch[i]);
}

/* Free what a request produced (a read whose transaction then failed). */
static void req_drop_output(ordo_storage_req *req) {
  char *message = req->message;
  req->message = NULL;
  ordo_storage_req_clear_output(req);
  req->message = message;
}

/* ---- record operations (drain thread, inside a transaction) ---------------------- */

/* The row id of (category, name): ORDO_OK, ORDO_E_RECORD_NOT_FOUND, or an
 * SQLite error. */
static int item_id(sq_db *sq, ordo_storage_req *req, sqlite3_int64 *id) {
  sqlite3_stmt *s = sq->stmt[ST_ITEM_ID];
  int rc = bind_buf(s, 1, &req->rec.category);
  if (rc == SQLITE_OK)
    rc = bind_buf(s, 2, &req->rec.name);
  if (rc == SQLITE_OK)
    rc = sqlite3_step(s);
  int st = ORDO_OK;
  if (rc == SQLITE_ROW) {
    *id = sqlite3_column_int64(s, 0);
  } else if (rc == SQLITE_DONE) {
    req_msg(req, "record not found");
    st = ORDO_E_RECORD_NOT_FOUND;
  } else {
    st = sql_fail(sq, req, rc, "find record");
  }
  stmt_done(s);
  return st;
}

/* Insert or overwrite tags of item id. */
static int tags_put(sq_db *sq, ordo_storage_req *req, sqlite3_int64 id,
                    const ordo_storage_tag *tags, size_t n) {
  for (size_t i = 0; i < n; i++) {
    sqlite3_stmt *s = sq->stmt[ST_TAG_UPSERT + (tags[i].plaintext != 0)];
    int rc = sqlite3_bind_int64(s, 1, id);
    if (rc == SQLITE_OK)
      rc = bind_buf(s, 2, &tags[i].name);
    if (rc == SQLITE_OK)
      rc = bind_buf(s, 3, &tags[i].value);
    if (rc == SQLITE_OK)
      rc = sqlite3_step(s);
    if (rc != SQLITE_DONE) {
      int st = sql_fail(sq, req, rc, "store tag");
      stmt_done(s);
      return st;
    }
    stmt_done(s);
  }
  return ORDO_OK;
}

/* Run a cached statement binding item id and, when name is given, a tag
 * name; expects no rows. */
static int tags_exec(sq_db *sq, ordo_storage_req *req, int which,
                     sqlite3_int64 id, const ordo_storage_buf *name,
                     const char *what) {
  sqlite3_stmt *s = sq->stmt[which];
  int rc = sqlite3_bind_int64(s, 1, id);
  if (rc == SQLITE_OK && name != NULL)
    rc = bind_buf(s, 2, name);
  if (rc == SQLITE_OK)
    rc = sqlite3_step(s);
  int st = rc == SQLITE_DONE ? ORDO_OK : sql_fail(sq, req, rc, what);
  stmt_done(s);
  return st;
}

/* Append every tag of item id to rec (encrypted ones first, each table in
 * name order). */
static int tags_load(sq_db *sq, ordo_storage_req *req, sqlite3_int64 id,
                     ordo_storage_record *rec) {
  size_t cap = rec->ntags;
  for (int pt = 0; pt < 2; pt++) {
    sqlite3_stmt *s = sq->stmt[ST_TAGS_LIST + pt];
    int rc = sqlite3_bind_int64(s, 1, id);
    int st = ORDO_OK;
    while (rc == SQLITE_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
      if (rec->ntags == cap) {
        size_t ncap = cap ? cap * 2 : 4;
        ordo_storage_tag *t = realloc(rec->tags, ncap * sizeof(*t));
        if (t == NULL) {
          st = nomem(req);
          break;
        }
        rec->tags = t;
        cap = ncap;
      }
      ordo_storage_tag *tag = &rec->tags[rec->ntags++];
      memset(tag, 0, sizeof(*tag)); /* counted first: clear frees halves */
      tag->plaintext = pt;
      if (col_copy(s, 0, &tag->name) != ORDO_OK ||
          col_copy(s, 1, &tag->value) != ORDO_OK) {
        st = nomem(req);
        break;
      }
      rc = SQLITE_OK;
    }
    if (st == ORDO_OK && rc != SQLITE_DONE)
      st = sql_fail(sq, req, rc, "read tags");
    stmt_done(s);
    if (st != ORDO_OK)
      return st;
  }
  return ORDO_OK;
}

/* Insert the item, then its tags. *id is the new item's rowid once the
 * item row is in, 0 until then (SQLite never gives a row id 0 here). */
static int add_item(sq_db *sq, ordo_storage_req *req, sqlite3_int64 *id) {
  const ordo_storage_record *r = &req->rec;
  sqlite3_stmt *s = sq->stmt[ST_ITEM_INSERT];
  *id = 0;
  int rc = bind_buf(s, 1, &r->category);
  if (rc == SQLITE_OK)
    rc = bind_buf(s, 2, &r->name);
  if (rc == SQLITE_OK)
    rc = bind_buf(s, 3, &r->value);
  if (rc == SQLITE_OK)
    rc = sqlite3_step(s);
  int st = ORDO_OK;
  if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY) {
    req_msg(req, "a record with this category and name already exists");
    st = ORDO_E_RECORD_DUPLICATE;
  } else if (rc != SQLITE_DONE) {
    st = sql_fail(sq, req, rc, "insert record");
  }
  stmt_done(s);
  if (st != ORDO_OK)
    return st;
  /* The insert was the last on this connection, on this thread. */
  *id = sqlite3_last_insert_rowid(sq->db);
  return tags_put(sq, req, *id, r->tags, r->ntags);
}

static int op_add(sq_db *sq, ordo_storage_req *req) {
  sqlite3_int64 id;
  return add_item(sq, req, &id);
}

/*
 * ADD as run_group runs it, without a savepoint of its own: the group's
 * most common write, and its savepoint cost ~15 % of the database thread
 * (SAVEPOINT, RELEASE, and a copy of every page the group had already
 * dirtied; docs/benchmarks.md). It still fails alone. Each statement of an
 * ADD writes one row, and SQLite undoes a failed statement by itself: a
 * duplicate is found before the row is written, and an IO error or out of
 * memory rolls back that statement or the whole transaction (which
 * run_group sees). So only a tag failing after the item went in leaves
 * something behind: the item is deleted again, and its stored tags with it
 * (ON DELETE CASCADE). If even that fails, *lost is set: the group cannot
 * commit.
 */
static int op_add_unguarded(sq_db *sq, ordo_storage_req *req, int *lost) {
  sqlite3_int64 id;
  int st = add_item(sq, req, &id);
  if (st == ORDO_OK || id == 0 || sqlite3_get_autocommit(sq->db))
    return st;
  sqlite3_stmt *s = sq->stmt[ST_ITEM_DELETE_ID];
  int rc = sqlite3_bind_int64(s, 1, id);
  if (rc == SQLITE_OK)
    rc = sqlite3_step(s);
  if (rc != SQLITE_DONE || sqlite3_changes(sq->db) != 1)
    *lost = 1;
  stmt_done(s);
  return st;
}

static int op_get(sq_db *sq, ordo_storage_req *req) {
  const ordo_storage_record *r = &req->rec;
  ordo_storage_record *out = &req->result;
  sqlite3_stmt *s = sq->stmt[ST_ITEM_GET];
  int rc = bind_buf(s, 1, &r->category);
  if (rc == SQLITE_OK)
    rc = bind_buf(s, 2, &r->name);
  if (rc == SQLITE_OK)
    rc = sqlite3_step(s);
  int st = ORDO_OK;
  sqlite3_int64 id = 0;
  if (rc == SQLITE_ROW) {
    id = sqlite3_column_int64(s, 0);
    if (col_copy(s, 1, &out->value) != ORDO_OK ||
        buf_copy(&out->category, r->category.data, r->category.len) != ORDO_OK ||
        buf_copy(&out->name, r->name.data, r->name.len) != ORDO_OK)
      st = nomem(req);
  } else if (rc == SQLITE_DONE) {
    req_msg(req, "record not found");
    st = ORDO_E_RECORD_NOT_FOUND;
  } else {
    st = sql_fail(sq, req, rc, "read record");
  }
  stmt_done(s);
  if (st == ORDO_OK)
    st = tags_load(sq, req, id, out);
  if (st != ORDO_OK)
    ordo_storage_record_clear(out);
  return st;
}

/* UPDATE_VALUE and DELETE: one statement on (category, name); 0 rows
 * changed means there was no such record. */
static int op_keyed(sq_db *sq, ordo_storage_req *req, int which,
                    const char *what) {
  const ordo_storage_record *r = &req->rec;
  sqlite3_stmt *s = sq->stmt[which];
  int rc = bind_buf(s, 1, &r->category);
  if (rc == SQLITE_OK)
    rc = bind_buf(s, 2, &r->name);
  if (rc == SQLITE_OK && which == ST_ITEM_UPDATE)
    rc = bind_buf(s, 3, &r->value);
  if (rc == SQLITE_OK)
    rc = sqlite3_step(s);
  int st = ORDO_OK;
  if (rc != SQLITE_DONE) {
    st = sql_fail(sq, req, rc, what);
  } else if (sqlite3_changes(sq->db) == 0) {
    /* sqlite3_changes counts the statement's own rows, not the cascaded
     * tag deletions, so 0 means exactly "no such record". */
    req_msg(req, "record not found");
    st = ORDO_E_RECORD_NOT_FOUND;
  }
  stmt_done(s);
  return st;
}

static int op_tags(sq_db *sq, ordo_storage_req *req) {
  const ordo_storage_record *r = &req->rec;
  sqlite3_int64 id;
  int st = item_id(sq, req, &id);
  if (st != ORDO_OK)
    return st;
  switch (req->opcode) {
  case ORDO_STORAGE_REPLACE_TAGS:
    st = tags_exec(sq, req, ST_TAGS_CLEAR, id, NULL, "clear tags");
    if (st == ORDO_OK)
      st = tags_exec(sq, req, ST_TAGS_CLEAR_P, id, NULL, "clear tags");
    /* fall through */
  case ORDO_STORAGE_ADD_TAGS:
    if (st == ORDO_OK)
      st = tags_put(sq, req, id, r->tags, r->ntags);
    return st;
  default: /* ORDO_STORAGE_DELETE_TAGS */
    for (size_t i = 0; i < r->ntags && st == ORDO_OK; i++)
      st = tags_exec(sq, req, ST_TAG_DELETE + (r->tags[i].plaintext != 0), id,
                     &r->tags[i].name, "delete tag");
    return st;
  }
}

static int op_meta_set(sq_db *sq, ordo_storage_req *req) {
  sqlite3_stmt *s = sq->stmt[ST_META_SET];
  int rc = bind_buf(s, 1, &req->rec.name);
  if (rc == SQLITE_OK)
    rc = bind_buf(s, 2, &req->rec.value);
  if (rc == SQLITE_OK)
    rc = sqlite3_step(s);
  int st = rc == SQLITE_DONE ? ORDO_OK : sql_fail(sq, req, rc, "set metadata");
  stmt_done(s);
  return st;
}

static int op_meta_get(sq_db *sq, ordo_storage_req *req) {
  sqlite3_stmt *s = sq->stmt[ST_META_GET];
  int rc = bind_buf(s, 1, &req->rec.name);
  if (rc == SQLITE_OK)
    rc = sqlite3_step(s);
  int st = ORDO_OK;
  if (rc == SQLITE_ROW) {
    if (col_copy(s, 0, &req->result.value) != ORDO_OK ||
        buf_copy(&req->result.name, req->rec.name.data, req->rec.name.len) !=
            ORDO_OK) {
      ordo_storage_record_clear(&req->result);
      st = nomem(req);
    }
  } else if (rc == SQLITE_DONE) {
    req_msg(req, "metadata key not set");
    st = ORDO_E_NOT_FOUND;
  } else {
    st = sql_fail(sq, req, rc, "read metadata");
  }
  stmt_done(s);
  return st;
}

/* ---- queries --------------------------------------------------------------------- */

/*
 * A tree becomes one SELECT over `items` whose WHERE clause is the tree as
 * an SQL boolean expression, with every value a numbered parameter (data
 * never goes into the text). Two limits of SQLite shape the text:
 *   - its parser has a fixed stack (about 100 entries in 3.40), which
 *     "parser stack overflow"s at roughly 35 nested parentheses, while WQL
 *     may nest 64 levels. A compound subtree that would sit deeper than
 *     SQ_INLINE_DEPTH parentheses is therefore written as a named CTE,
 *     "cN(id) AS (SELECT id FROM items WHERE <subtree>)", and referenced as
 *     "items.id IN cN"; its own text starts again at depth 0. (A CTE holds
 *     the items of every category; membership is per item, so NOT inside
 *     it means the same, and the outer query applies the category.)
 *   - expression trees may be at most 1000 deep, and "a OR b OR c ..." is a
 *     chain as deep as it is long. Children are joined in flat chains of at
 *     most SQ_CHAIN, grouped in parentheses above that (a 32-ary tree).
 * A shallow query (nearly all of them) is a single SELECT with no CTE.
 */
#define SQ_INLINE_DEPTH 8
#define SQ_CHAIN 32

typedef struct sbuf {
  char *s;
  size_t len, cap;
} sbuf;

/* SQL text being built: the WITH list and the buffers the numbered
 * parameters bind (parameter first + i binds binds[i]). */
typedef struct qsql {
  sbuf with;
  int ncte;
  int first; /* number of the first tree parameter */
  const ordo_storage_buf **binds;
  size_t nbinds, bcap;
  int oom;
} qsql;

static void qs_put(qsql *b, sbuf *d, const char *s) {
  size_t n = strlen(s);
  if (b->oom)
    return;
  if (d->len + n + 1 > d->cap) {
    size_t ncap = d->cap ? d->cap : 256;
    while (ncap < d->len + n + 1)
      ncap *= 2;
    char *t = realloc(d->s, ncap);
    if (t == NULL) {
      b->oom = 1;
      return;
    }
    d->s = t;
    d->cap = ncap;
  }
  memcpy(d->s + d->len, s, n + 1);
  d->len += n;
}

/* "?N" for v; numbered, so that text pieces may be joined in any order. */
static void qs_bind(qsql *b, sbuf *d, const ordo_storage_buf *v) {
  if (b->oom)
    return;
  if (b->nbinds == b->bcap) {
    size_t ncap = b->bcap ? b->bcap * 2 : 16;
    const ordo_storage_buf **t = realloc(b->binds, ncap * sizeof(*t));
    if (t == NULL) {
      b->oom = 1;
      return;
    }
    b->binds = t;
    b->bcap = ncap;
  }
  char num[24];
  snprintf(num, sizeof(num), "?%zu", (size_t)b->first + b->nbinds);
  b->binds[b->nbinds++] = v;
  qs_put(b, d, num);
}

static void qs_free(qsql *b) {
  free(b->with.s);
  free(b->binds);
  memset(b, 0, sizeof(*b));
}

static void qs_expr(qsql *b, sbuf *d, const ordo_storage_query *q, int depth);

/* children[lo, hi) joined by op (" AND ", " OR "), each in parentheses at
 * depth + 1; more than SQ_CHAIN of them are grouped, SQ_CHAIN groups at
 * most per level. */
static void qs_join(qsql *b, sbuf *d, ordo_storage_query *const *c, size_t lo,
                    size_t hi, const char *op, int depth) {
  size_t n = hi - lo;
  size_t step = 1;
  while (n > step * SQ_CHAIN)
    step *= SQ_CHAIN;
  for (size_t i = lo; i < hi; i += step) {
    if (i > lo)
      qs_put(b, d, op);
    qs_put(b, d, "(");
    if (step == 1)
      qs_expr(b, d, c[i], depth + 1);
    else
      qs_join(b, d, c, i, i + step < hi ? i + step : hi, op, depth + 1);
    qs_put(b, d, ")");
  }
}

/* A leaf: the record has the tag, with a value that compares. The tag
 * columns are NOT NULL, so NOT over this never meets SQL NULL. */
static void qs_leaf(qsql *b, sbuf *d, const ordo_storage_query *q) {
  const char *cmp;
  switch (q->op) {
  case ORDO_SQ_EQ: cmp = " = "; break;
  case ORDO_SQ_NEQ: cmp = " != "; break;
  case ORDO_SQ_GT: cmp = " > "; break;
  case ORDO_SQ_GTE: cmp = " >= "; break;
  case ORDO_SQ_LT: cmp = " < "; break;
  case ORDO_SQ_LTE: cmp = " <= "; break;
  default: cmp = NULL; break; /* IN, LIKE */
  }
  if (q->op == ORDO_SQ_IN && q->nvalues == 0) {
    qs_put(b, d, "0"); /* equal to one of nothing */
    return;
  }
  if (q->op == ORDO_SQ_NAME_GTE || q->op == ORDO_SQ_NAME_LT) {
    /* BLOB against BLOB compares with memcmp: the index on (category,
     * name) serves the range. */
    qs_put(b, d, q->op == ORDO_SQ_NAME_GTE ? "items.name >= "
                                           : "items.name < ");
    qs_bind(b, d, &q->values[0]);
    return;
  }
  qs_put(b, d, q->plaintext ? "items.id IN (SELECT item_id FROM tags_plaintext"
                            : "items.id IN (SELECT item_id FROM tags_encrypted");
  qs_put(b, d, " WHERE name = ");
  qs_bind(b, d, &q->tag_name);
  if (q->op == ORDO_SQ_IN) {
    qs_put(b, d, " AND value IN (");
    for (size_t i = 0; i < q->nvalues; i++) {
      if (i > 0)
        qs_put(b, d, ", ");
      qs_bind(b, d, &q->values[i]);
    }
    qs_put(b, d, "))");
  } else if (q->op == ORDO_SQ_LIKE) {
    qs_put(b, d, " AND ordo_like(value, ");
    qs_bind(b, d, &q->values[0]);
    qs_put(b, d, "))");
  } else {
    qs_put(b, d, " AND value");
    qs_put(b, d, cmp);
    qs_bind(b, d, &q->values[0]);
    qs_put(b, d, ")");
  }
}

/* A validated tree (query_ok) as an SQL boolean expression over `items`,
 * appended to d, which is nested depth parentheses deep. */
static void qs_expr(qsql *b, sbuf *d, const ordo_storage_query *q, int depth) {
  int compound = q->op == ORDO_SQ_NOT ||
                 ((q->op == ORDO_SQ_AND || q->op == ORDO_SQ_OR) &&
                  q->nchildren > 0);
  if (compound && depth >= SQ_INLINE_DEPTH) {
    /* Too deep for the parser: this subtree becomes a CTE of its own.
     * Its body is built first, so the CTEs it needs are listed before it. */
    sbuf body = {0};
    qs_expr(b, &body, q, 1); /* inside "AS (" */
    char name[32];
    snprintf(name, sizeof(name), "c%d", ++b->ncte);
    qs_put(b, &b->with, b->ncte == 1 ? "WITH " : ", ");
    qs_put(b, &b->with, name);
    qs_put(b, &b->with, "(id) AS (SELECT id FROM items WHERE ");
    qs_put(b, &b->with, body.s != NULL ? body.s : "1");
    qs_put(b, &b->with, ") ");
    free(body.s);
    qs_put(b, d, "items.id IN ");
    qs_put(b, d, name);
    return;
  }
  switch (q->op) {
  case ORDO_SQ_ALL:
    qs_put(b, d, "1");
    return;
  case ORDO_SQ_AND:
  case ORDO_SQ_OR:
    if (q->nchildren == 0)
      qs_put(b, d, q->op == ORDO_SQ_AND ? "1" : "0");
    else
      qs_join(b, d, q->children, 0, q->nchildren,
              q->op == ORDO_SQ_AND ? " AND " : " OR ", depth);
    return;
  case ORDO_SQ_NOT:
    qs_put(b, d, "NOT (");
    qs_expr(b, d, q->children[0], depth + 1);
    qs_put(b, d, ")");
    return;
  default:
    qs_leaf(b, d, q);
    return;
  }
}

/* Whether q is led by a tag's value: an EQ or IN leaf, or an AND with one
 * among its children. */
static int tag_led(const ordo_storage_query *q) {
  if (q == NULL)
    return 0;
  if (q->op == ORDO_SQ_EQ || (q->op == ORDO_SQ_IN && q->nvalues > 0))
    return 1;
  if (q->op == ORDO_SQ_AND)
    for (size_t i = 0; i < q->nchildren; i++)
      if (q->children[i]->op == ORDO_SQ_EQ ||
          (q->children[i]->op == ORDO_SQ_IN && q->children[i]->nvalues > 0))
        return 1;
  return 0;
}

/* Prepare [WITH ...] head WHERE [category = ?1 AND] (expr) [ORDER BY id
 * LIMIT ?n OFFSET ?n+1] with the category and the tree's values bound;
 * *paging is n (0 without paging). A category with data NULL means every
 * category. */
static int query_prepare(sq_db *sq, ordo_storage_req *req, const char *head,
                         int paging, sqlite3_stmt **out, int *paging_at) {
  int all = req->rec.category.data == NULL;
  qsql b = {.first = all ? 1 : 2};
  sbuf where = {0}, text = {0};
  if (req->query != NULL)
    qs_expr(&b, &where, req->query, 1);
  int next = b.first + (int)b.nbinds;
  char tail[64] = "";
  if (paging)
    snprintf(tail, sizeof(tail), " ORDER BY %s LIMIT ?%d OFFSET ?%d",
             (req->flags & ORDO_STORAGE_REQ_BY_NAME) ? "name" : "id", next,
             next + 1);
  qs_put(&b, &text, b.with.s != NULL ? b.with.s : "");
  qs_put(&b, &text, head);
  /* A query led by a tag's value (EQ or IN, alone or in an AND) finds its
   * few records by the tag index and their rowids: "+category" keeps the
   * planner (which has no statistics) from walking the whole category by
   * the (category, name) index instead, which made a lookup by tag in a
   * journal of a million records a scan of all of them. */
  qs_put(&b, &text, all ? " WHERE ("
                        : tag_led(req->query) ? " WHERE +category = ?1 AND ("
                                              : " WHERE category = ?1 AND (");
  qs_put(&b, &text, where.s != NULL ? where.s : "1");
  qs_put(&b, &text, ")");
  qs_put(&b, &text, tail);
  free(where.s);
  int st = ORDO_OK;
  sqlite3_stmt *s = NULL;
  if (b.oom) {
    st = nomem(req);
    goto done;
  }
  int rc = sqlite3_prepare_v2(sq->db, text.s, (int)(text.len + 1), &s, NULL);
  if (rc != SQLITE_OK) {
    st = sql_fail(sq, req, rc, "prepare query");
    goto done;
  }
  rc = all ? SQLITE_OK : bind_buf(s, 1, &req->rec.category);
  for (size_t i = 0; i < b.nbinds && rc == SQLITE_OK; i++)
    rc = bind_buf(s, b.first + (int)i, b.binds[i]);
  if (rc != SQLITE_OK)
    st = sql_fail(sq, req, rc, "bind query");
done:
  if (st != ORDO_OK) {
    (void)sqlite3_finalize(s); /* NULL accepted; its error is reported */
    s = NULL;
  }
  free(text.s);
  qs_free(&b);
  *out = s;
  *paging_at = paging ? next : 0;
  return st;
}

static int query_count(sq_db *sq, ordo_storage_req *req) {
  sqlite3_stmt *s;
  int unused;
  int st = query_prepare(sq, req, "SELECT count(*) FROM items", 0, &s, &unused);
  if (st != ORDO_OK)
    return st;
  int rc = sqlite3_step(s);
  if (rc == SQLITE_ROW)
    req->count = (unsigned long long)sqlite3_column_int64(s, 0);
  else
    st = sql_fail(sq, req, rc, "count records");
  (void)sqlite3_finalize(s); /* the step's error, if any, is handled */
  return st;
}

static void results_free(ordo_storage_req *req) {
  for (size_t i = 0; i < req->nresults; i++)
    ordo_storage_record_clear(&req->results[i]);
  free(req->results);
  req->results = NULL;
  req->nresults = 0;
}

static int op_scan(sq_db *sq, ordo_storage_req *req) {
  sqlite3_stmt *s;
  int next;
  int st = query_prepare(sq, req, "SELECT id, category, name, value FROM items",
                         1, &s, &next);
  if (st != ORDO_OK)
    return st;
  /* Parameters, not text: LIMIT -1 is "no limit" in SQLite. */
  sqlite3_int64 limit = req->limit == 0 || req->limit > INT64_MAX
                            ? -1
                            : (sqlite3_int64)req->limit;
  sqlite3_int64 offset =
      req->offset > INT64_MAX ? INT64_MAX : (sqlite3_int64)req->offset;
  int rc = sqlite3_bind_int64(s, next, limit);
  if (rc == SQLITE_OK)
    rc = sqlite3_bind_int64(s, next + 1, offset);
  size_t cap = 0;
  while (rc == SQLITE_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
    if (req->nresults == cap) {
      size_t ncap = cap ? cap * 2 : 16;
      ordo_storage_record *t = realloc(req->results, ncap * sizeof(*t));
      if (t == NULL) {
        st = nomem(req);
        break;
      }
      req->results = t;
      cap = ncap;
    }
    ordo_storage_record *rec = &req->results[req->nresults++];
    memset(rec, 0, sizeof(*rec)); /* counted first: results_free frees it */
    if (col_copy(s, 1, &rec->category) != ORDO_OK ||
        col_copy(s, 2, &rec->name) != ORDO_OK ||
        col_copy(s, 3, &rec->value) != ORDO_OK) {
      st = nomem(req);
      break;
    }
    if (!(req->flags & ORDO_STORAGE_REQ_NO_TAGS))
      st = tags_load(sq, req, sqlite3_column_int64(s, 0), rec);
    if (st != ORDO_OK)
      break;
    rc = SQLITE_OK;
  }
  if (st == ORDO_OK && rc != SQLITE_DONE)
    st = sql_fail(sq, req, rc, "scan records");
  (void)sqlite3_finalize(s); /* the step's error, if any, is handled */
  if (st == ORDO_OK && req->want_count)
    st = query_count(sq, req); /* same transaction: consistent with rows */
  if (st != ORDO_OK) {
    results_free(req);
    req->count = 0;
  }
  return st;
}

/* DELETE_MATCHING: the records a SCAN with the same query would return go,
 * their tags with them (ON DELETE CASCADE), in one statement. */
static int op_delete_matching(sq_db *sq, ordo_storage_req *req) {
  sqlite3_stmt *s;
  int unused;
  int st = query_prepare(sq, req, "DELETE FROM items", 0, &s, &unused);
  if (st != ORDO_OK)
    return st;
  int rc = sqlite3_step(s);
  if (rc == SQLITE_DONE)
    req->count = (unsigned long long)sqlite3_changes(sq->db);
  else
    st = sql_fail(sq, req, rc, "delete records");
  (void)sqlite3_finalize(s); /* the step's error, if any, is handled */
  return st;
}

/* ---- executing a request ------------------------------------------------------ */

static int exec_req(sq_db *sq, ordo_storage_req *req);

/* All or nothing: the caller runs the batch inside a savepoint and rolls it
 * back on failure. */
static int op_batch(sq_db *sq, ordo_storage_req *req) {
  for (size_t i = 0; i < req->nbatch; i++) {
    ordo_storage_req *sub = &req->batch[i];
    int st = exec_req(sq, sub);
    sub->status = st;
    if (st == ORDO_OK)
      continue;
    req_msg(req, "batch request %zu of %zu: %s", i + 1, req->nbatch,
            sub->message != NULL ? sub->message : ordo_strerror(st));
    for (size_t j = 0; j < req->nbatch; j++) {
      if (j == i)
        continue;
      req_drop_output(&req->batch[j]);
      req->batch[j].status = ORDO_E_CANCELED; /* rolled back or never run */
    }
    return st;
  }
  return ORDO_OK;
}

static int exec_req(sq_db *sq, ordo_storage_req *req) {
  switch (req->opcode) {
  case ORDO_STORAGE_ADD:
    return op_add(sq, req);
  case ORDO_STORAGE_GET:
    return op_get(sq, req);
  case ORDO_STORAGE_UPDATE_VALUE:
    return op_keyed(sq, req, ST_ITEM_UPDATE, "update record");
  case ORDO_STORAGE_DELETE:
    return op_keyed(sq, req, ST_ITEM_DELETE, "delete record");
  case ORDO_STORAGE_ADD_TAGS:
  case ORDO_STORAGE_REPLACE_TAGS:
  case ORDO_STORAGE_DELETE_TAGS:
    return op_tags(sq, req);
  case ORDO_STORAGE_SCAN:
    return op_scan(sq, req);
  case ORDO_STORAGE_COUNT:
    return query_count(sq, req);
  case ORDO_STORAGE_DELETE_MATCHING:
    return op_delete_matching(sq, req);
  case ORDO_STORAGE_META_SET:
    return op_meta_set(sq, req);
  case ORDO_STORAGE_META_GET:
    return op_meta_get(sq, req);
  case ORDO_STORAGE_BATCH:
    return op_batch(sq, req);
  case ORDO_STORAGE_SHRINK: {
    sqlite3_file *wal = NULL;
    (void)sqlite3_db_release_memory(sq->db);
    if (sqlite3_file_control(sq->db, "main", SQLITE_FCNTL_JOURNAL_POINTER,
                             &wal) == SQLITE_OK)
      ordo__sqlite_wal_shrink(wal);
    return ORDO_OK;
  }
  default: /* CLOSE never gets here; submit refused the rest */
    req_msg(req, "request cannot be executed");
    return ORDO_E_INVAL;
  }
}

/* A transaction-control statement; on failure its message goes to err. */
static int ctl(sq_db *sq, int which, char *err, size_t errlen) {
  sqlite3_stmt *s = sq->stmt[which];
  int rc = sqlite3_step(s);
  if (rc == SQLITE_DONE)
    rc = SQLITE_OK;
  else
    snprintf(err, errlen, "%s: %s", stmt_sql[which], sqlite3_errmsg(sq->db));
  stmt_done(s);
  return rc;
}

/* Set the status of a request whose transaction failed as a whole. */
static void fail_group_req(ordo_storage_req *req, int status, const char *why) {
  req_drop_output(req);
  req->status = status;
  req_msg(req, "%s", why);
  if (req->opcode == ORDO_STORAGE_BATCH)
    for (size_t i = 0; i < req->nbatch; i++)
      if (req->batch[i].status == ORDO_OK) {
        req_drop_output(&req->batch[i]);
        req->batch[i].status = status;
      }
}

/* Run list (linked by backend_next; no CLOSE) as one transaction, then call
 * every done in order. Each write runs in a savepoint (an ADD undoes itself
 * instead), so its failure is its own; a failure of the transaction itself
 * fails everything that had succeeded. */
static void run_group(sq_db *sq, ordo_storage_req *list) {
  char err[512] = "";
  int writes = 0;
  ordo_storage_req *retry = NULL; /* reads to run again */
  for (ordo_storage_req *r = list; r != NULL; r = r->backend_next)
    writes |= is_write(r->opcode);

  int group_status = ORDO_OK; /* set once the transaction is lost */
  int rc = ctl(sq, writes ? ST_BEGIN_IMMEDIATE : ST_BEGIN, err, sizeof(err));
  if (rc != SQLITE_OK)
    group_status = sql_code(rc);

  for (ordo_storage_req *r = list; r != NULL && group_status == ORDO_OK;
       r = r->backend_next) {
    if (r->flags & ORDO_STORAGE_REQ_CHAIN_RESET)
      sq->chain_failed = 0;
    if ((r->flags & ORDO_STORAGE_REQ_CHAINED) && sq->chain_failed) {
      r->status = ORDO_E_STORAGE;
      req_msg(r, "not written: an earlier write of its chain failed");
      continue;
    }
    if (!is_write(r->opcode)) {
      r->status = exec_req(sq, r);
    } else if (r->opcode == ORDO_STORAGE_ADD) {
      int lost = 0;
      r->status = op_add_unguarded(sq, r, &lost);
      if (lost) {
        group_status = ORDO_E_STORAGE;
        snprintf(err, sizeof(err), "cannot undo a failed add: %s",
                 sqlite3_errmsg(sq->db));
      }
    } else if ((rc = ctl(sq, ST_SAVEPOINT, err, sizeof(err))) != SQLITE_OK) {
      r->status = sql_code(rc);
      req_msg(r, "%s", err);
    } else {
      r->status = exec_req(sq, r);
      if (r->status == ORDO_OK) {
        rc = ctl(sq, ST_RELEASE, err, sizeof(err));
      } else if (!sqlite3_get_autocommit(sq->db)) {
        rc = ctl(sq, ST_ROLLBACK_TO, err, sizeof(err));
        if (rc == SQLITE_OK)
          rc = ctl(sq, ST_RELEASE, err, sizeof(err));
      }
      if (rc != SQLITE_OK)
        group_status = sql_code(rc);
    }
    if ((r->flags & ORDO_STORAGE_REQ_CHAINED) && r->status != ORDO_OK)
      sq->chain_failed = 1;
    /* After IO errors, SQLITE_FULL or out of memory SQLite may have rolled
     * the whole transaction back on its own: the group is lost. */
    if (group_status == ORDO_OK && r->status != ORDO_OK &&
        sqlite3_get_autocommit(sq->db)) {
      group_status = r->status == ORDO_E_NOMEM ? ORDO_E_NOMEM : ORDO_E_STORAGE;
      snprintf(err, sizeof(err), "transaction rolled back: %s",
               r->message != NULL ? r->message : ordo_strerror(r->status));
    }
  }

  if (group_status == ORDO_OK) {
    rc = ctl(sq, ST_COMMIT, err, sizeof(err));
    if (rc == SQLITE_OK) {
      if (writes)
        atomic_fetch_add_explicit(&sq->commits, 1, memory_order_relaxed);
    } else {
      group_status = sql_code(rc);
    }
  }
  if (group_status != ORDO_OK) {
    /* A failed COMMIT can leave the transaction open (busy); end it so the
     * next group starts clean. If even ROLLBACK fails, the next BEGIN fails
     * and reports it. */
    char ignored[512];
    if (!sqlite3_get_autocommit(sq->db))
      (void)ctl(sq, ST_ROLLBACK, ignored, sizeof(ignored));
    /* Reads that succeeded go again, alone (see the header comment); a
     * group of reads only is not retried, so this recurses once at most. */
    ordo_storage_req **pp = &list, **rtail = &retry;
    while (*pp != NULL) {
      ordo_storage_req *r = *pp;
      if (r->flags & ORDO_STORAGE_REQ_CHAINED)
        sq->chain_failed = 1; /* its group is lost: so are the later ones */
      if (writes && r->status == ORDO_OK && !is_write(r->opcode)) {
        *pp = r->backend_next;
        req_drop_output(r);
        r->backend_next = NULL;
        *rtail = r;
        rtail = &r->backend_next;
        continue;
      }
      if (r->status == ORDO_OK)
        fail_group_req(r, group_status, err);
      pp = &r->backend_next;
    }
  }

  /* done may free or resubmit r: read next first, touch r no more. */
  for (ordo_storage_req *r = list, *next; r != NULL; r = next) {
    next = r->backend_next;
    r->backend_next = NULL;
    r->done(r);
  }
  if (retry != NULL)
    run_group(sq, retry);
}

/* CLOSE: everything before it has completed. The done is called before sq
 * is freed; the request itself is the caller's memory. */
static void run_close(sq_db *sq, ordo_storage_req *req) {
  for (int i = 0; i < ST_COUNT; i++) {
    /* finalize returns the statement's last error, already reported. */
    (void)sqlite3_finalize(sq->stmt[i]);
    sq->stmt[i] = NULL;
  }
  int rc = sqlite3_close(sq->db);
  if (rc != SQLITE_OK) {
    /* Only unfinalized statements make close fail, and there are none;
     * still, say so and let SQLite free it once it can. */
    req->status = ORDO_E_STORAGE;
    req_msg(req, "close: %s", sqlite3_errmsg(sq->db));
    (void)sqlite3_close_v2(sq->db);
  }
  sq->db = NULL;
  ordo__executor_close(sq->ex);
  req->backend_next = NULL;
  req->done(req);
  pthread_mutex_destroy(&sq->mu);
  free(sq);
}

/* The drain task: take every pending request, run them, answer them. */
static void drain(ordo__task *task) {
  sq_db *sq = ORDO__CONTAINER_OF(task, sq_db, drain);
  for (;;) {
    pthread_mutex_lock(&sq->mu);
    ordo_storage_req *list = sq->head;
    sq->head = sq->tail = NULL;
    pthread_mutex_unlock(&sq->mu);

    /* submit refuses everything after a CLOSE, so one is always last. */
    ordo_storage_req *close = NULL, **pp = &list;
    while (*pp != NULL) {
      if ((*pp)->opcode == ORDO_STORAGE_CLOSE) {
        close = *pp;
        *pp = NULL;
        break;
      }
      pp = &(*pp)->backend_next;
    }

    if (sq->group_commit) {
      if (list != NULL)
        run_group(sq, list);
    } else {
      for (ordo_storage_req *r = list, *next; r != NULL; r = next) {
        next = r->backend_next;
        r->backend_next = NULL;
        run_group(sq, r);
      }
    }
    if (close != NULL) {
      run_close(sq, close);
      return; /* sq is gone */
    }

    /* More arrived while this group ran (dones may have submitted some):
     * requeue behind whatever else waits on the executor, or stop. If the
     * executor is stopping and refuses the post, drain here instead. */
    pthread_mutex_lock(&sq->mu);
    int again = 0;
    if (sq->head == NULL)
      sq->scheduled = 0;
    else if (ordo__executor_post(sq->ex, &sq->drain) != ORDO_OK)
      again = 1;
    pthread_mutex_unlock(&sq->mu);
    if (!again)
      return; /* a reposted drain may already run elsewhere: touch nothing */
  }
}

/* ---- the interface --------------------------------------------------------------- */

static int sq_submit(ordo_storage *st, ordo_storage_req *req) {
  if (st == NULL || req == NULL || st->backend != &ordo_storage_sqlite ||
      req->done == NULL)
    return ORDO_E_INVAL;
  sq_db *sq = (sq_db *)st;
  if (!req_ok(sq, req, 0))
    return ORDO_E_INVAL;
  req_reset_output(req);

  pthread_mutex_lock(&sq->mu);
  if (sq->closing) {
    pthread_mutex_unlock(&sq->mu);
    return ORDO_E_STATE;
  }
  if (sq->tail != NULL)
    sq->tail->backend_next = req;
  else
    sq->head = req;
  sq->tail = req;
  if (!sq->scheduled) {
    /* Nothing scheduled means the list was empty: on failure it is again. */
    int rc = ordo__executor_post(sq->ex, &sq->drain);
    if (rc != ORDO_OK) {
      sq->head = sq->tail = NULL;
      pthread_mutex_unlock(&sq->mu);
      return rc;
    }
    sq->scheduled = 1;
  }
  if (req->opcode == ORDO_STORAGE_CLOSE)
    sq->closing = 1;
  pthread_mutex_unlock(&sq->mu);
  return ORDO_OK;
}

/* Run a statement that returns one integer (a PRAGMA). */
static int pragma_int(sqlite3 *db, const char *sql, int *out) {
  sqlite3_stmt *s = NULL;
  int rc = sqlite3_prepare_v2(db, sql, -1, &s, NULL);
  if (rc == SQLITE_OK) {
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
      *out = sqlite3_column_int(s, 0);
      rc = SQLITE_OK;
    } else if (rc == SQLITE_DONE) {
      rc = SQLITE_ERROR; /* a PRAGMA this build does not know */
    }
  }
  (void)sqlite3_finalize(s); /* errors were taken from prepare/step */
  return rc;
}

/* PRAGMA journal_mode=WAL answers with the mode now in force. */
static int set_wal(sqlite3 *db, const char *uri, char **errmsg) {
  sqlite3_stmt *s = NULL;
  int rc = sqlite3_prepare_v2(db, "PRAGMA journal_mode=WAL", -1, &s, NULL);
  if (rc == SQLITE_OK)
    rc = sqlite3_step(s);
  int st = ORDO_OK;
  if (rc != SQLITE_ROW)
    st = set_err(errmsg, sql_code(rc), "%s: cannot enable WAL: %s", uri,
                 sqlite3_errmsg(db));
  else if (sqlite3_stricmp((const char *)sqlite3_column_text(s, 0), "wal") != 0)
    st = set_err(errmsg, ORDO_E_STORAGE,
                 "%s: the file system does not support WAL mode", uri);
  (void)sqlite3_finalize(s); /* errors were taken from prepare/step */
  return st;
}

/* A new, empty file: WAL first (outside any transaction), then the schema
 * and the ordo markers in one transaction. */
static int schema_create(sqlite3 *db, const char *uri, char **errmsg) {
  int st = set_wal(db, uri, errmsg);
  if (st != ORDO_OK)
    return st;
  char *sql = sqlite3_mprintf("BEGIN IMMEDIATE; %s PRAGMA application_id = %d;"
                              " PRAGMA user_version = %d; COMMIT;",
                              schema_sql, SQ_APPLICATION_ID, SQ_SCHEMA_VERSION);
  if (sql == NULL)
    return set_err(errmsg, ORDO_E_NOMEM, "out of memory");
  char *e = NULL;
  int rc = sqlite3_exec(db, sql, NULL, NULL, &e);
  sqlite3_free(sql);
  if (rc != SQLITE_OK) {
    st = set_err(errmsg, sql_code(rc), "%s: cannot create the schema: %s", uri,
                 e != NULL ? e : sqlite3_errstr(rc));
    /* the caller removes the file; nothing of this transaction matters */
    (void)sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
  }
  sqlite3_free(e);
  return st;
}

/* An existing file: is it ours? Checked before anything is written, so a
 * foreign database is left exactly as it was (not even switched to WAL). */
static int schema_check(sqlite3 *db, const char *uri, char **errmsg) {
  int app = 0, version = 0;
  int rc = pragma_int(db, "PRAGMA application_id", &app);
  if (rc != SQLITE_OK && sql_code(rc) != ORDO_E_STORAGE)
    return set_err(errmsg, sql_code(rc), "%s: %s", uri, sqlite3_errmsg(db));
  if (rc != SQLITE_OK) /* SQLITE_NOTADB: not SQLite at all */
    return set_err(errmsg, ORDO_E_STORAGE, "%s is not an ordo database: %s",
                   uri, sqlite3_errmsg(db));
  if (app != SQ_APPLICATION_ID)
    return set_err(errmsg, ORDO_E_STORAGE,
                   "%s is not an ordo database (SQLite application_id is %d)",
                   uri, app);
  rc = pragma_int(db, "PRAGMA user_version", &version);
  if (rc != SQLITE_OK)
    return set_err(errmsg, sql_code(rc), "%s: %s", uri, sqlite3_errmsg(db));
  if (version != SQ_SCHEMA_VERSION)
    return set_err(errmsg, ORDO_E_STORAGE,
                   "%s has ordo schema version %d; this build reads version %d",
                   uri, version, SQ_SCHEMA_VERSION);
  return set_wal(db, uri, errmsg);
}

/* uri + suffix ("-wal", "-shm", "-journal"), removed if present. */
static int remove_side_file(const char *uri, const char *suffix, char **errmsg) {
  char *p = sqlite3_mprintf("%s%s", uri, suffix);
  if (p == NULL)
    return set_err(errmsg, ORDO_E_NOMEM, "out of memory");
  int st = ORDO_OK;
  if (unlink(p) != 0 && errno != ENOENT)
    st = set_err(errmsg, ORDO_E_STORAGE, "cannot remove %s: %s", p,
                 strerror(errno));
  sqlite3_free(p);
  return st;
}

static int remove_side_files(const char *uri, char **errmsg) {
  static const char *const suffixes[] = {"-wal", "-shm", "-journal"};
  int st = ORDO_OK;
  for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
    int r = remove_side_file(uri, suffixes[i], errmsg);
    if (st == ORDO_OK)
      st = r;
  }
  return st;
}

static int sq_open(const ordo_storage_backend *be, ordo_ctx *ctx,
                   const char *uri, int flags, ordo_storage **out,
                   char **errmsg) {
  if (errmsg != NULL)
    *errmsg = NULL;
  if (out != NULL)
    *out = NULL;
  if (be != &ordo_storage_sqlite || ctx == NULL || uri == NULL ||
      uri[0] == 0 || out == NULL ||
      (flags & ~(ORDO_STORAGE_CREATE | ORDO_STORAGE_NO_GROUP_COMMIT |
                ORDO_STORAGE_KEEP_WAL)) != 0)
    return set_err(errmsg, ORDO_E_INVAL, "invalid arguments to open");
  /* NOMUTEX hands the connection between threads; that needs a SQLite
   * built thread-safe (its global state is still shared). */
  if (!sqlite3_threadsafe())
    return set_err(errmsg, ORDO_E_STORAGE, "SQLite was built without threads");

  int created = 0, st, rc;
  sq_db *sq = NULL;
  if (flags & ORDO_STORAGE_CREATE) {
    /* O_EXCL makes "exists" and "create" one atomic step between processes. */
    int fd = open(uri, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
      st = errno == EEXIST
               ? set_err(errmsg, ORDO_E_WALLET_EXISTS, "%s already exists", uri)
               : set_err(errmsg, ORDO_E_STORAGE, "cannot create %s: %s", uri,
                         strerror(errno));
      goto fail;
    }
    created = 1;
    if (close(fd) != 0) {
      st = set_err(errmsg, ORDO_E_STORAGE, "cannot create %s: %s", uri,
                   strerror(errno));
      goto fail;
    }
    /* A WAL left by a crash between destroy's unlinks would be replayed
     * into the new, empty file: remove leftovers first. */
    st = remove_side_files(uri, errmsg);
    if (st != ORDO_OK)
      goto fail;
  } else {
    struct stat sb;
    if (stat(uri, &sb) != 0) {
      st = errno == ENOENT
               ? set_err(errmsg, ORDO_E_WALLET_NOT_FOUND, "no database at %s",
                         uri)
               : set_err(errmsg, ORDO_E_STORAGE, "cannot open %s: %s", uri,
                         strerror(errno));
      goto fail;
    }
    if (!S_ISREG(sb.st_mode)) {
      st = set_err(errmsg, ORDO_E_STORAGE, "%s is not a regular file", uri);
      goto fail;
    }
  }

  sq = calloc(1, sizeof(*sq));
  if (sq == NULL) {
    st = set_err(errmsg, ORDO_E_NOMEM, "out of memory");
    goto fail;
  }
  if (pthread_mutex_init(&sq->mu, NULL) != 0)
    abort(); /* cannot fail on Linux with default attributes */
  sq->base.backend = be;
  atomic_init(&sq->commits, 0);
  sq->group_commit = !(flags & ORDO_STORAGE_NO_GROUP_COMMIT);

  /* No SQLITE_OPEN_CREATE: the file exists (we just made it, or stat saw it;
   * if it vanished since, this fails rather than making a stray one). */
  rc = sqlite3_open_v2(uri, &sq->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
                       ordo__sqlite_wal_vfs());
  if (rc != SQLITE_OK) {
    st = set_err(errmsg, sql_code(rc), "cannot open %s: %s", uri,
                 sq->db != NULL ? sqlite3_errmsg(sq->db) : sqlite3_errstr(rc));
    goto fail;
  }
  (void)sqlite3_extended_result_codes(sq->db, 1); /* only fails on misuse */
  rc = sqlite3_busy_timeout(sq->db, SQ_BUSY_TIMEOUT_MS);
  if (rc != SQLITE_OK) {
    st = set_err(errmsg, sql_code(rc), "%s: %s", uri, sqlite3_errmsg(sq->db));
    goto fail;
  }

  st = created ? schema_create(sq->db, uri, errmsg)
               : schema_check(sq->db, uri, errmsg);
  if (st != ORDO_OK)
    goto fail;

  /* Per connection: FULL syncs the WAL at every commit, which is what makes
   * "done after commit" mean durable (and what sqlite_wal.c relies on to
   * write a commit's frames before anyone can read them); cascades need
   * foreign_keys. A checkpoint copies every page written since the last one
   * into the database file and syncs it, inside some unlucky COMMIT;
   * letting the WAL grow to 16384 pages (64 MiB) before that, instead of
   * SQLite's 1000, writes a page hit by many groups once per checkpoint,
   * not once per 1000 frames. After a checkpoint the WAL is written again
   * from its start; the size limit, just above what 16384 frames take
   * (67.5 MB), keeps the file that long instead of cutting it to a shorter
   * length it then has to grow back over: writes that extend a file cost
   * the file system a block allocation each and its fsync an inode update
   * (~25 % of group-commit throughput, docs/benchmarks.md). A WAL that did
   * grow past it (a reader held a checkpoint back) is still cut back, and
   * SQLite removes the WAL when the last connection closes. temp_store
   * keeps savepoint journals (every write but ADD, and BATCH) in memory:
   * past 64 KiB SQLite would otherwise move them to a temporary file. */
  rc = sqlite3_exec(sq->db, "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;"
                            " PRAGMA wal_autocheckpoint = 16384;"
                            " PRAGMA journal_size_limit = 75497472;"
                            " PRAGMA temp_store = MEMORY;",
                    NULL, NULL, NULL);
  /* A WAL left at close is read whole by the next open (SQLite rebuilds
   * its index from it: ~1.5 ms per 1,000 pages here): kept to 1024 pages
   * (4 MiB), it costs a restart ~1.5 ms, and the close no copy. Measured
   * with ordo bench soak, more often does not cost the journal batches/s
   * (it appends; few pages are written twice within 1024 frames). */
  if (rc == SQLITE_OK && (flags & ORDO_STORAGE_KEEP_WAL))
    rc = sqlite3_db_config(sq->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
  if (rc == SQLITE_OK && (flags & ORDO_STORAGE_KEEP_WAL))
    rc = sqlite3_exec(sq->db, "PRAGMA wal_autocheckpoint = 1024;", NULL, NULL,
                      NULL);
  int fk = 0;
  if (rc == SQLITE_OK)
    rc = pragma_int(sq->db, "PRAGMA foreign_keys", &fk);
  if (rc != SQLITE_OK || fk != 1) {
    st = set_err(errmsg, ORDO_E_STORAGE, "%s: cannot set up the connection: %s",
                 uri, rc != SQLITE_OK ? sqlite3_errmsg(sq->db)
                                      : "foreign keys unsupported");
    goto fail;
  }
  rc = sqlite3_create_function_v2(
      sq->db, "ordo_like", 2, SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS,
      NULL, like_fn, NULL, NULL, NULL);
  if (rc != SQLITE_OK) {
    st = set_err(errmsg, sql_code(rc), "%s: %s", uri, sqlite3_errmsg(sq->db));
    goto fail;
  }
  for (int i = 0; i < ST_COUNT; i++) {
    rc = sqlite3_prepare_v3(sq->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
                            &sq->stmt[i], NULL);
    if (rc != SQLITE_OK) {
      /* The markers matched but a table is missing or altered. */
      st = set_err(errmsg, sql_code(rc), "%s: damaged ordo schema: %s", uri,
                   sqlite3_errmsg(sq->db));
      goto fail;
    }
  }
  sq->max_params = sqlite3_limit(sq->db, SQLITE_LIMIT_VARIABLE_NUMBER, -1);

  /* Last: nothing can fail after it, so fail never closes an executor. */
  st = ordo__executor_open(ctx, "sqlite", &sq->ex);
  if (st != ORDO_OK) {
    set_err(errmsg, st, "no storage executor for %s: %s", uri,
            ordo_strerror(st));
    goto fail;
  }
  sq->drain.fn = drain;
  *out = &sq->base;
  return ORDO_OK;

fail:
  if (sq != NULL) {
    for (int i = 0; i < ST_COUNT; i++)
      (void)sqlite3_finalize(sq->stmt[i]); /* NULL accepted */
    (void)sqlite3_close_v2(sq->db); /* NULL accepted; nothing is pending */
    pthread_mutex_destroy(&sq->mu);
    free(sq);
  }
  if (created) {
    /* Leave nothing behind, so a retry does not meet "exists". The open
     * error is what the caller needs; a failed unlink is not reported. */
    (void)unlink(uri);
    (void)remove_side_files(uri, NULL);
  }
  return st;
}

static int sq_destroy(const ordo_storage_backend *be, const char *uri,
                      char **errmsg) {
  if (errmsg != NULL)
    *errmsg = NULL;
  if (be != &ordo_storage_sqlite || uri == NULL || uri[0] == 0)
    return set_err(errmsg, ORDO_E_INVAL, "invalid arguments to destroy");
  if (unlink(uri) != 0)
    return errno == ENOENT
               ? set_err(errmsg, ORDO_E_WALLET_NOT_FOUND, "no database at %s",
                         uri)
               : set_err(errmsg, ORDO_E_STORAGE, "cannot remove %s: %s", uri,
                         strerror(errno));
  return remove_side_files(uri, errmsg);
}

unsigned long long ordo__storage_sqlite_commits(ordo_storage *st) {
  if (st == NULL || st->backend != &ordo_storage_sqlite)
    return 0;
  return atomic_load_explicit(&((sq_db *)st)->commits, memory_order_relaxed);
}

const ordo_storage_backend ordo_storage_sqlite = {
    .version = 1,
    .name = "sqlite",
    .open = sq_open,
    .submit = sq_submit,
    .destroy = sq_destroy,
};

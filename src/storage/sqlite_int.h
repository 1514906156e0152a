/*
 * sqlite_int.h — what the two halves of the SQLite backend share: the
 * connection's state, its cached statements, and the small helpers both
 * use to answer a request. Internal to src/storage (sqlite.c, sqlite_exec.c).
 *
 *   sqlite.c       the backend's interface: open/close/destroy, request
 *                  validation on submit, and the drain task that runs a
 *                  group of requests as one transaction (group commit);
 *   sqlite_exec.c  what one request does inside that transaction: the
 *                  record operations, query trees as SQL, LIKE.
 *
 * Threads: everything here but the struct's mu-guarded fields is used by
 * the drain task only (see sqlite.c's header comment for the hand-over).
 */
#ifndef ORDO_STORAGE_SQLITE_INT_H
#define ORDO_STORAGE_SQLITE_INT_H

#include "base/base.h"
#include "storage/drain.h"
#include "storage/storage.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Deepest accepted query tree. The wallet's WQL parser makes trees at most
 * 2 * ORDO__WQL_MAX_DEPTH = 128 nodes deep; this leaves room above that and
 * stays well inside SQLite's expression depth limit (1000), since a level
 * costs one SQL expression level (NOT, or a two-child AND/OR) plus the
 * logarithm of its width (qs_join in sqlite_exec.c). */
#define SQ_QUERY_MAX_DEPTH 256

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

/* ---- state ------------------------------------------------------------------- */

typedef struct sq_db {
  ordo_storage base; /* first: the interface casts between the two */
  ordo__storage_drain q; /* pending requests and the drain (drain.h) */
  sqlite3 *db;
  sqlite3_stmt *stmt[ST_COUNT];
  int chain_failed;  /* a chained write failed (storage.h); drain only */
  int max_params;    /* the connection's SQL parameter limit */
  atomic_ullong commits; /* write transactions committed */
} sq_db;

/* ---- small helpers ------------------------------------------------------------ */

/* SQLITE_BUSY/LOCKED: another connection holds the lock past the timeout. */
static inline int sql_code(int rc) {
  int primary = rc & 0xff;
  if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED)
    return ORDO_E_STORAGE_BUSY;
  if (primary == SQLITE_NOMEM)
    return ORDO_E_NOMEM;
  return ORDO_E_STORAGE;
}

/* Fail req with the connection's error for rc; call before the statement is
 * reset, while sqlite3_errmsg still describes rc. */
static inline int sql_fail(sq_db *sq, ordo_storage_req *req, int rc, const char *what) {
  ordo__storage_req_msg(req, "%s: %s", what, sqlite3_errmsg(sq->db));
  return sql_code(rc);
}

/* Done with a cached statement: back to its start, and no binding left
 * pointing into the caller's buffers (they are only borrowed until done).
 * reset's result repeats the last step's error, which the caller has
 * already handled; clear_bindings cannot fail. */
static inline void stmt_done(sqlite3_stmt *s) {
  (void)sqlite3_reset(s);
  (void)sqlite3_clear_bindings(s);
}

/* Bind a buffer as a BLOB. An empty buffer may have data == NULL, which
 * SQLite would bind as SQL NULL; bind an empty blob instead. */
static inline int bind_buf(sqlite3_stmt *s, int i, const ordo_storage_buf *b) {
  const void *p = b->data != NULL ? (const void *)b->data : (const void *)"";
  return sqlite3_bind_blob64(s, i, p, b->len, SQLITE_STATIC);
}

static inline int buf_copy(ordo_storage_buf *dst, const void *src, size_t len) {
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
static inline int col_copy(sqlite3_stmt *s, int col, ordo_storage_buf *dst) {
  const void *p = sqlite3_column_blob(s, col);
  size_t n = (size_t)sqlite3_column_bytes(s, col);
  if (p == NULL && n > 0)
    return ORDO_E_NOMEM;
  return buf_copy(dst, p, n);
}

static inline int nomem(ordo_storage_req *req) {
  ordo__storage_req_msg(req, "out of memory");
  return ORDO_E_NOMEM;
}

/* ---- sqlite_exec.c ----------------------------------------------------------- */

/* Run one request (BATCH: its sub-requests, all or nothing) inside the
 * drain's open transaction; its status. The caller wraps writes in a
 * savepoint. */
int ordo__sq_exec(sq_db *sq, ordo_storage_req *req);

/* ADD without a savepoint of its own; *lost set when a failure left
 * something behind that could not be undone (the group cannot commit). */
int ordo__sq_add_unguarded(sq_db *sq, ordo_storage_req *req, int *lost);

/* ordo_like(value, pattern): bytewise, case-sensitive LIKE for the queries;
 * registered on each connection by open. */
void ordo__sq_like_fn(sqlite3_context *c, int argc, sqlite3_value **argv);

#endif /* ORDO_STORAGE_SQLITE_INT_H */

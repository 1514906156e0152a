/*
 * sqlite_exec.c — what one request does in SQL, on the drain task, inside
 * the transaction that sqlite.c's run_group opened: the record operations
 * on the cached statements, query trees turned into SQL (SCAN, COUNT,
 * DELETE_MATCHING), BATCH, and the LIKE function the queries call.
 *
 * Nothing here begins or ends a transaction or calls a done callback; a
 * failing request sets its own message and returns its status, and the
 * caller rolls its savepoint back.
 */
#include "storage/sqlite_int.h"
#include "storage/sqlite_wal.h"

#include <stdint.h>

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

void ordo__sq_like_fn(sqlite3_context *c, int argc, sqlite3_value **argv) {
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

/* arr (n of *cap elements of size bytes in use) with room for one more:
 * arr itself while there is room, else reallocated to twice the capacity
 * (first when empty); NULL when out of memory, arr then still valid. */
static void *grow(void *arr, size_t n, size_t *cap, size_t size, size_t first) {
  if (n < *cap)
    return arr;
  size_t ncap = *cap ? *cap * 2 : first;
  void *t = realloc(arr, ncap * size);
  if (t != NULL)
    *cap = ncap;
  return t;
}

/* ---- record operations (drain thread, inside a transaction) ---------------------- */

/* Bind a record's key, its category and name, to ?1 and ?2 of s: SQLITE_OK
 * or the error. */
static int bind_key(sqlite3_stmt *s, const ordo_storage_record *r) {
  int rc = bind_buf(s, 1, &r->category);
  return rc == SQLITE_OK ? bind_buf(s, 2, &r->name) : rc;
}

/* What a lookup's step gave (rc; a bind's error stands for it): ORDO_OK
 * when there is a row to read, missing with the message missing_msg when
 * there is none, else the SQLite error for what. */
static int one_row(sq_db *sq, ordo_storage_req *req, int rc, int missing,
                   const char *missing_msg, const char *what) {
  if (rc == SQLITE_ROW)
    return ORDO_OK;
  if (rc == SQLITE_DONE) {
    ordo__storage_req_msg(req, "%s", missing_msg);
    return missing;
  }
  return sql_fail(sq, req, rc, what);
}

/* The row id of (category, name): ORDO_OK, ORDO_E_RECORD_NOT_FOUND, or an
 * SQLite error. */
static int item_id(sq_db *sq, ordo_storage_req *req, sqlite3_int64 *id) {
  sqlite3_stmt *s = sq->stmt[ST_ITEM_ID];
  int rc = bind_key(s, &req->rec);
  if (rc == SQLITE_OK)
    rc = sqlite3_step(s);
  int st = one_row(sq, req, rc, ORDO_E_RECORD_NOT_FOUND, "record not found",
                   "find record");
  if (st == ORDO_OK)
    *id = sqlite3_column_int64(s, 0);
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
      ordo_storage_tag *t = grow(rec->tags, rec->ntags, &cap, sizeof(*t), 4);
      if (t == NULL) {
        st = nomem(req);
        break;
      }
      rec->tags = t;
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
    ordo__storage_req_msg(req, "a record with this category and name already exists");
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
int ordo__sq_add_unguarded(sq_db *sq, ordo_storage_req *req, int *lost) {
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
  int rc = bind_key(s, r);
  if (rc == SQLITE_OK)
    rc = sqlite3_step(s);
  int st = one_row(sq, req, rc, ORDO_E_RECORD_NOT_FOUND, "record not found",
                   "read record");
  sqlite3_int64 id = 0;
  if (st == ORDO_OK) {
    id = sqlite3_column_int64(s, 0);
    if (col_copy(s, 1, &out->value) != ORDO_OK ||
        buf_copy(&out->category, r->category.data, r->category.len) != ORDO_OK ||
        buf_copy(&out->name, r->name.data, r->name.len) != ORDO_OK)
      st = nomem(req);
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
  int rc = bind_key(s, r);
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
    ordo__storage_req_msg(req, "record not found");
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
  int st = one_row(sq, req, rc, ORDO_E_NOT_FOUND, "metadata key not set",
                   "read metadata");
  if (st == ORDO_OK &&
      (col_copy(s, 0, &req->result.value) != ORDO_OK ||
       buf_copy(&req->result.name, req->rec.name.data, req->rec.name.len) !=
           ORDO_OK)) {
    ordo_storage_record_clear(&req->result);
    st = nomem(req);
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
    char *t = ordo__grow(d->s, &d->cap, d->len + n + 1, 256);
    if (t == NULL) {
      b->oom = 1;
      return;
    }
    d->s = t;
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

/* COUNT, or with del DELETE_MATCHING (the records a SCAN with the same
 * query would return go, their tags with them by ON DELETE CASCADE): one
 * statement, and req->count is the number of records counted or deleted. */
static int query_count(sq_db *sq, ordo_storage_req *req, int del) {
  sqlite3_stmt *s;
  int unused;
  int st = query_prepare(sq, req, del ? "DELETE FROM items" : "SELECT count(*) FROM items",
                         0, &s, &unused);
  if (st != ORDO_OK)
    return st;
  int rc = sqlite3_step(s);
  if (rc == (del ? SQLITE_DONE : SQLITE_ROW))
    req->count = del ? (unsigned long long)sqlite3_changes(sq->db)
                     : (unsigned long long)sqlite3_column_int64(s, 0);
  else
    st = sql_fail(sq, req, rc, del ? "delete records" : "count records");
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
    ordo_storage_record *t = grow(req->results, req->nresults, &cap, sizeof(*t), 16);
    if (t == NULL) {
      st = nomem(req);
      break;
    }
    req->results = t;
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
    st = query_count(sq, req, 0); /* same transaction: consistent with rows */
  if (st != ORDO_OK) {
    results_free(req);
    req->count = 0;
  }
  return st;
}

/* ---- executing a request ------------------------------------------------------ */

/* All or nothing: the caller runs the batch inside a savepoint and rolls it
 * back on failure. */
static int op_batch(sq_db *sq, ordo_storage_req *req) {
  for (size_t i = 0; i < req->nbatch; i++) {
    ordo_storage_req *sub = &req->batch[i];
    int st = ordo__sq_exec(sq, sub);
    sub->status = st;
    if (st == ORDO_OK)
      continue;
    ordo__storage_req_msg(req, "batch request %zu of %zu: %s", i + 1, req->nbatch,
            sub->message != NULL ? sub->message : ordo_strerror(st));
    for (size_t j = 0; j < req->nbatch; j++) {
      if (j == i)
        continue;
      ordo__storage_req_drop_output(&req->batch[j]);
      req->batch[j].status = ORDO_E_CANCELED; /* rolled back or never run */
    }
    return st;
  }
  return ORDO_OK;
}

int ordo__sq_exec(sq_db *sq, ordo_storage_req *req) {
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
    return query_count(sq, req, 0);
  case ORDO_STORAGE_DELETE_MATCHING:
    return query_count(sq, req, 1);
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
    ordo__storage_req_msg(req, "request cannot be executed");
    return ORDO_E_INVAL;
  }
}

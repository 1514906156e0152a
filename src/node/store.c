/*
 * store.c — the node's SQLite database, DIR/node.db:
 *
 *   state_at(address TEXT, num INT, value BLOB, PRIMARY KEY(address, num))
 *   batches(id TEXT PRIMARY KEY, status INT, txn_id TEXT, message TEXT)
 *   txns(id TEXT PRIMARY KEY, status INT)
 *   blocks(num INTEGER PRIMARY KEY, id TEXT UNIQUE, prev TEXT, batch_ids TEXT)
 *   pending(seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE, data BLOB)
 *
 * State keeps every version: a row per address and block that wrote it, so
 * a read "as of" block N (a request's head=, which paging links pin) takes
 * the newest row with num <= N. Nothing is ever deleted (the families have
 * no delete), so history costs one row per committed write. txns holds the
 * id of every transaction that was committed (or was in a batch that ended
 * INVALID), for the duplicate and dependency checks of later blocks.
 *
 * A database made by an earlier node (a state table without versions) is
 * moved into state_at at its head on open; its blocks keep their 64-hex
 * ids, and transactions committed before that are not in txns.
 *
 * WAL with synchronous=FULL: a block reported committed survives a power
 * cut, as on a real validator. DIR/node.lock is flock()ed for the life of
 * the store, so two nodes never share one chain.
 *
 * Statements are prepared per call: the node is a test ledger, and the
 * simplicity is worth the few microseconds.
 */
#include "crypto/crypto.h"
#include "node/internal.h"
#include "runtime/runtime.h"

#include <sodium.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define STORE_BUSY_MS 10000

static int store_fail(sqlite3 *db, const char *what) {
  return ordo__set_last_error(ORDO_E_STORAGE, "node db: %s: %s", what,
                              db != NULL ? sqlite3_errmsg(db) : "no database");
}

static int store_exec(sqlite3 *db, const char *sql) {
  char *msg = NULL;
  if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
    ordo__set_last_error(ORDO_E_STORAGE, "node db: %s: %s", sql,
                         msg != NULL ? msg : sqlite3_errmsg(db));
    sqlite3_free(msg);
    return ORDO_E_STORAGE;
  }
  return ORDO_OK;
}

/* Prepare sql; key (NULL: none), most statements' text key, is bound to
 * its first parameter, borrowed until *s is finalized. */
static int store_prepare(sqlite3 *db, const char *sql, const char *key,
                         sqlite3_stmt **s) {
  if (sqlite3_prepare_v2(db, sql, -1, s, NULL) != SQLITE_OK) {
    *s = NULL;
    return store_fail(db, sql);
  }
  if (key != NULL)
    sqlite3_bind_text(*s, 1, key, -1, SQLITE_STATIC);
  return ORDO_OK;
}

/* Step a statement that returns no rows, then finalize it. */
static int store_done(sqlite3 *db, sqlite3_stmt *s, const char *what) {
  int rc = sqlite3_step(s);
  sqlite3_finalize(s);
  return rc == SQLITE_DONE ? ORDO_OK : store_fail(db, what);
}

/*
 * Step s to the one row a lookup expects: ORDO_OK with s on that row (the
 * caller reads it, then finalizes s); else s is finalized and the result
 * is ORDO_E_NOT_FOUND (no row) or the failure, which what names.
 */
static int store_row(sqlite3 *db, sqlite3_stmt *s, const char *what) {
  int rc = sqlite3_step(s);
  if (rc == SQLITE_ROW)
    return ORDO_OK;
  rc = rc == SQLITE_DONE ? ORDO_E_NOT_FOUND : store_fail(db, what);
  sqlite3_finalize(s);
  return rc;
}

/* A lookup of one row: store_prepare, then store_row. */
static int store_lookup(sqlite3 *db, const char *sql, const char *key,
                        const char *what, sqlite3_stmt **s) {
  int rc = store_prepare(db, sql, key, s);
  return rc ? rc : store_row(db, *s, what);
}

/* store_lookup of a single integer column into *v. */
static int store_lookup_u64(sqlite3 *db, const char *sql, const char *key,
                            const char *what, uint64_t *v) {
  sqlite3_stmt *s;
  int rc = store_lookup(db, sql, key, what, &s);
  if (rc)
    return rc;
  *v = (uint64_t)sqlite3_column_int64(s, 0);
  sqlite3_finalize(s);
  return ORDO_OK;
}

static const char *const SCHEMA =
    "CREATE TABLE IF NOT EXISTS state_at(address TEXT NOT NULL,"
    " num INTEGER NOT NULL, value BLOB NOT NULL, PRIMARY KEY(address, num))"
    " WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS batches(id TEXT PRIMARY KEY,"
    " status INTEGER NOT NULL, txn_id TEXT, message TEXT) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS txns(id TEXT PRIMARY KEY,"
    " status INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS blocks(num INTEGER PRIMARY KEY,"
    " id TEXT NOT NULL, prev TEXT NOT NULL, batch_ids TEXT NOT NULL);"
    "CREATE UNIQUE INDEX IF NOT EXISTS blocks_by_id ON blocks(id);"
    "CREATE TABLE IF NOT EXISTS pending(seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    " id TEXT NOT NULL UNIQUE, data BLOB NOT NULL);";

/* An earlier node's unversioned state: its rows become versions at the
 * head block, in one transaction with dropping the old table. */
static const char *const MIGRATE_STATE =
    "BEGIN IMMEDIATE;"
    "INSERT OR IGNORE INTO state_at(address, num, value)"
    " SELECT address, COALESCE((SELECT MAX(num) FROM blocks), 0), value"
    " FROM state;"
    "DROP TABLE state;"
    "COMMIT;";

/* Sawtooth's previous_block_id of the genesis block. */
static const char *const NULL_BLOCK_ID = "0000000000000000";

static int store_connect(const char *path, sqlite3 **db) {
  int rc = sqlite3_open_v2(path, db,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                               SQLITE_OPEN_FULLMUTEX,
                           NULL);
  if (rc != SQLITE_OK)
    return store_fail(*db, "open");
  sqlite3_busy_timeout(*db, STORE_BUSY_MS);
  rc = store_exec(*db, "PRAGMA journal_mode=WAL");
  if (rc == ORDO_OK)
    rc = store_exec(*db, "PRAGMA synchronous=FULL");
  return rc;
}

/* 1 when db has a table called name. */
static int has_table(sqlite3 *db, const char *name) {
  sqlite3_stmt *s;
  int found;
  if (store_prepare(db,
                    "SELECT 1 FROM sqlite_master WHERE type = 'table'"
                    " AND name = ?",
                    name, &s) != ORDO_OK)
    return 0;
  found = sqlite3_step(s) == SQLITE_ROW;
  sqlite3_finalize(s);
  return found;
}

/* The genesis block: no batches, id = hex SHA-512 of Sawtooth's null
 * previous id (128 hex digits, as every block id). */
static int put_genesis(sqlite3 *db) {
  unsigned char h[ORDO__SHA512_BYTES];
  char hex[ORDO_LEDGER_ID_SIZE];
  int rc;
  if ((rc = ordo__crypto_sha512(NULL_BLOCK_ID, strlen(NULL_BLOCK_ID), h)) ||
      (rc = ordo__crypto_hex_encode(h, sizeof h, hex, sizeof hex)))
    return ordo__set_last_error(rc, "node: cannot hash the genesis block");
  return ordo__node_store_block_put(db, 0, hex, NULL_BLOCK_ID, "");
}

int ordo__node_store_open(const char *dir, node_store *st) {
  char *path = NULL;
  size_t n = strlen(dir) + 16;
  uint64_t num;
  char id[ORDO_LEDGER_ID_SIZE];
  int rc;

  memset(st, 0, sizeof *st);
  st->lock_fd = -1;
  if (mkdir(dir, 0700) != 0 && errno != EEXIST)
    return ordo__set_last_error(ORDO_E_STORAGE, "node: cannot create %s: %s",
                                dir, strerror(errno));
  if ((path = malloc(n)) == NULL)
    return ordo__set_last_error(ORDO_E_NOMEM, "node: out of memory");
  snprintf(path, n, "%s/node.lock", dir);
  st->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (st->lock_fd < 0) {
    rc = ordo__set_last_error(ORDO_E_STORAGE, "node: cannot open %s: %s",
                              path, strerror(errno));
    goto fail;
  }
  if (flock(st->lock_fd, LOCK_EX | LOCK_NB) != 0) {
    rc = ordo__set_last_error(ORDO_E_STORAGE_BUSY,
                              "node: %s is in use by another node", dir);
    goto fail;
  }
  snprintf(path, n, "%s/node.db", dir);
  if ((rc = store_connect(path, &st->wdb)) ||
      (rc = store_exec(st->wdb, SCHEMA)) ||
      (rc = store_connect(path, &st->rdb)))
    goto fail;
  if (has_table(st->wdb, "state") &&
      (rc = store_exec(st->wdb, MIGRATE_STATE)) != ORDO_OK) {
    ordo__node_store_rollback(st->wdb);
    goto fail;
  }
  rc = ordo__node_store_head(st->wdb, &num, id);
  if (rc == ORDO_E_NOT_FOUND)
    rc = put_genesis(st->wdb);
  if (rc)
    goto fail;
  free(path);
  return ORDO_OK;
fail:
  free(path);
  ordo__node_store_close(st);
  return rc;
}

void ordo__node_store_close(node_store *st) {
  sqlite3_close(st->rdb);
  sqlite3_close(st->wdb);
  if (st->lock_fd >= 0)
    close(st->lock_fd);
  st->rdb = st->wdb = NULL;
  st->lock_fd = -1;
}

int ordo__node_store_begin(sqlite3 *db) {
  return store_exec(db, "BEGIN IMMEDIATE");
}
int ordo__node_store_commit(sqlite3 *db) { return store_exec(db, "COMMIT"); }
void ordo__node_store_rollback(sqlite3 *db) {
  if (!sqlite3_get_autocommit(db))
    (void)store_exec(db, "ROLLBACK");
}
int ordo__node_store_savepoint(sqlite3 *db) {
  return store_exec(db, "SAVEPOINT b");
}
int ordo__node_store_release(sqlite3 *db) {
  return store_exec(db, "RELEASE b");
}
void ordo__node_store_rollback_to(sqlite3 *db) {
  (void)store_exec(db, "ROLLBACK TO b");
  (void)store_exec(db, "RELEASE b");
}

/* A block number as SQLite's signed 64-bit integer (UINT64_MAX: "any"). */
static sqlite3_int64 num_arg(uint64_t num) {
  return num > INT64_MAX ? INT64_MAX : (sqlite3_int64)num;
}

/* A statement of one address in state_at: store_prepare keyed by address,
 * and the block number num bound to its second parameter. */
static int state_prepare(sqlite3 *db, const char *sql, const char *address,
                         uint64_t num, sqlite3_stmt **s) {
  int rc = store_prepare(db, sql, address, s);
  if (rc == ORDO_OK)
    sqlite3_bind_int64(*s, 2, num_arg(num));
  return rc;
}

int ordo__node_store_state_get(sqlite3 *db, const char *address, uint64_t asof,
                               unsigned char **buf, size_t *cap, size_t *len) {
  sqlite3_stmt *s;
  const void *v;
  size_t n;
  int rc = state_prepare(db,
                         "SELECT value FROM state_at WHERE address = ?"
                         " AND num <= ? ORDER BY num DESC LIMIT 1",
                         address, asof, &s);
  if (rc || (rc = store_row(db, s, "state get")) != ORDO_OK)
    return rc;
  v = sqlite3_column_blob(s, 0);
  n = (size_t)sqlite3_column_bytes(s, 0);
  if (n + 1 > *cap) {
    unsigned char *p = realloc(*buf, n + 1);
    if (p == NULL) {
      rc = ordo__set_last_error(ORDO_E_NOMEM, "node: out of memory");
    } else {
      *buf = p;
      *cap = n + 1;
    }
  }
  if (rc == ORDO_OK) {
    if (n > 0)
      memcpy(*buf, v, n);
    *len = n;
  }
  sqlite3_finalize(s);
  return rc;
}

int ordo__node_store_state_set(sqlite3 *db, const char *address, uint64_t num,
                               const unsigned char *value, size_t len) {
  sqlite3_stmt *s;
  int rc = state_prepare(db,
                         "INSERT OR REPLACE INTO state_at(address, num, value)"
                         " VALUES (?, ?, ?)",
                         address, num, &s);
  if (rc)
    return rc;
  sqlite3_bind_blob(s, 3, len > 0 ? (const void *)value : "", (int)len,
                    SQLITE_STATIC);
  return store_done(db, s, "state set");
}

int ordo__node_store_status_put(sqlite3 *db, const char *batch_id, int status,
                                const char *txn_id, const char *message) {
  sqlite3_stmt *s;
  int rc = store_prepare(db,
                         "INSERT OR REPLACE INTO batches(id, status, txn_id,"
                         " message) VALUES (?, ?, ?, ?)",
                         batch_id, &s);
  if (rc)
    return rc;
  sqlite3_bind_int(s, 2, status);
  if (txn_id != NULL)
    sqlite3_bind_text(s, 3, txn_id, -1, SQLITE_STATIC);
  if (message != NULL)
    sqlite3_bind_text(s, 4, message, -1, SQLITE_STATIC);
  return store_done(db, s, "status put");
}

static char *column_dup(sqlite3_stmt *s, int col) {
  const unsigned char *t = sqlite3_column_text(s, col);
  return strdup(t != NULL ? (const char *)t : "");
}

int ordo__node_store_status_get(sqlite3 *db, const char *batch_id, int *status,
                                char **txn_id, char **message) {
  sqlite3_stmt *s;
  int rc = store_lookup(
      db, "SELECT status, txn_id, message FROM batches WHERE id = ?", batch_id,
      "status get", &s);
  *txn_id = *message = NULL;
  if (rc)
    return rc;
  *status = sqlite3_column_int(s, 0);
  if (*status == NODE_INVALID) {
    *txn_id = column_dup(s, 1);
    *message = column_dup(s, 2);
    if (*txn_id == NULL || *message == NULL) {
      free(*txn_id);
      free(*message);
      *txn_id = *message = NULL;
      rc = ordo__set_last_error(ORDO_E_NOMEM, "node: out of memory");
    }
  }
  sqlite3_finalize(s);
  return rc;
}

int ordo__node_store_txn_status(sqlite3 *db, const char *txn_id, int *status) {
  uint64_t v;
  int rc = store_lookup_u64(db, "SELECT status FROM txns WHERE id = ?", txn_id,
                            "txn get", &v);
  if (rc == ORDO_OK)
    *status = (int)v;
  return rc;
}

int ordo__node_store_txn_put(sqlite3 *db, const char *txn_id, int status) {
  sqlite3_stmt *s;
  /* COMMITTED wins over an earlier INVALID (the same signed transaction
   * may come back in another batch); INVALID never replaces anything. */
  int rc = store_prepare(db,
                         status == NODE_COMMITTED
                             ? "INSERT OR REPLACE INTO txns(id, status)"
                               " VALUES (?, ?)"
                             : "INSERT OR IGNORE INTO txns(id, status)"
                               " VALUES (?, ?)",
                         txn_id, &s);
  if (rc)
    return rc;
  sqlite3_bind_int(s, 2, status);
  return store_done(db, s, "txn put");
}

int ordo__node_store_block_find(sqlite3 *db, const char *id, uint64_t *num) {
  return store_lookup_u64(db, "SELECT num FROM blocks WHERE id = ?", id,
                          "block find", num);
}

int ordo__node_store_head(sqlite3 *db, uint64_t *num,
                          char id[ORDO_LEDGER_ID_SIZE]) {
  sqlite3_stmt *s;
  const unsigned char *t;
  int rc =
      store_lookup(db, "SELECT num, id FROM blocks ORDER BY num DESC LIMIT 1",
                   NULL, "head", &s);
  if (rc)
    return rc;
  t = sqlite3_column_text(s, 1);
  *num = (uint64_t)sqlite3_column_int64(s, 0);
  snprintf(id, ORDO_LEDGER_ID_SIZE, "%s", t != NULL ? (const char *)t : "");
  sqlite3_finalize(s);
  return ORDO_OK;
}

int ordo__node_store_block_put(sqlite3 *db, uint64_t num, const char *id,
                               const char *prev, const char *batch_ids) {
  sqlite3_stmt *s;
  int rc = store_prepare(
      db, "INSERT INTO blocks(num, id, prev, batch_ids) VALUES (?, ?, ?, ?)",
      NULL, &s);
  if (rc)
    return rc;
  sqlite3_bind_int64(s, 1, (sqlite3_int64)num);
  sqlite3_bind_text(s, 2, id, -1, SQLITE_STATIC);
  sqlite3_bind_text(s, 3, prev, -1, SQLITE_STATIC);
  sqlite3_bind_text(s, 4, batch_ids, -1, SQLITE_STATIC);
  return store_done(db, s, "block put");
}

int ordo__node_store_pending_put(sqlite3 *db, const char *batch_id,
                                 const unsigned char *data, size_t len) {
  sqlite3_stmt *s;
  int rc =
      store_prepare(db, "INSERT OR IGNORE INTO pending(id, data) VALUES (?, ?)",
                    batch_id, &s);
  if (rc)
    return rc;
  sqlite3_bind_blob(s, 2, data, (int)len, SQLITE_STATIC);
  return store_done(db, s, "pending put");
}

int ordo__node_store_pending_del(sqlite3 *db, const char *batch_id) {
  sqlite3_stmt *s;
  int rc = store_prepare(db, "DELETE FROM pending WHERE id = ?", batch_id, &s);
  return rc ? rc : store_done(db, s, "pending delete");
}

int ordo__node_store_pending_clear(sqlite3 *db) {
  return store_exec(db, "DELETE FROM pending");
}

int ordo__node_store_pending_each(sqlite3 *db,
                                  int (*fn)(void *ud, const unsigned char *data,
                                            size_t len),
                                  void *ud) {
  sqlite3_stmt *s;
  int rc = store_prepare(db, "SELECT data FROM pending ORDER BY seq", NULL, &s);
  if (rc)
    return rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    int frc = fn(ud, sqlite3_column_blob(s, 0),
                 (size_t)sqlite3_column_bytes(s, 0));
    if (frc) {
      sqlite3_finalize(s);
      return frc;
    }
  }
  rc = rc == SQLITE_DONE ? ORDO_OK : store_fail(db, "pending read");
  sqlite3_finalize(s);
  return rc;
}

/* Base64 (standard alphabet, padded), as Sawtooth's REST API sends data. */
static json_t *b64_json(const void *data, size_t len) {
  size_t n = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL);
  char *b = malloc(n);
  json_t *j;
  if (b == NULL)
    return NULL;
  sodium_bin2base64(b, n, data, len, sodium_base64_VARIANT_ORIGINAL);
  j = json_string(b);
  free(b);
  return j;
}

/*
 * The rows of s, a query ending in LIMIT limit + 1, as a page: row appends
 * the JSON of each of the first limit rows to data (0; 1: it skipped the
 * row, which does not count; -1: out of memory). ORDO_OK with *more set
 * when a row past them is there, s then on it (where the next page
 * starts), or the failure (what names it). The caller finalizes s.
 */
static int store_page(sqlite3 *db, sqlite3_stmt *s, size_t limit,
                      int (*row)(sqlite3_stmt *s, json_t *data), json_t *data,
                      const char *what, int *more) {
  size_t count = 0;
  int rc, r;
  *more = 0;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    if (count == limit) {
      *more = 1;
      return ORDO_OK;
    }
    if ((r = row(s, data)) < 0)
      return ordo__set_last_error(ORDO_E_NOMEM, "node: out of memory");
    if (r == 0)
      count++;
  }
  return rc == SQLITE_DONE ? ORDO_OK : store_fail(db, what);
}

/* store_page's row of GET /state: {"address", "data"} (a row whose address
 * SQLite cannot give is skipped). */
static int state_row(sqlite3_stmt *s, json_t *data) {
  const char *addr = (const char *)sqlite3_column_text(s, 0);
  json_t *e, *v;
  if (addr == NULL)
    return 1;
  v = b64_json(sqlite3_column_blob(s, 1), (size_t)sqlite3_column_bytes(s, 1));
  if (v == NULL)
    return -1;
  e = json_pack("{s:s,s:o}", "address", addr, "data", v);
  return e != NULL && json_array_append_new(data, e) == 0 ? 0 : -1;
}

int ordo__node_store_state_list(sqlite3 *db, const char *prefix,
                                const char *start, uint64_t asof, size_t limit,
                                json_t *data, char **next) {
  sqlite3_stmt *s;
  size_t plen = strlen(prefix);
  char *upper;
  int rc, more;

  /* Addresses are lower-case hex, so prefix + "~" bounds the range. */
  *next = NULL;
  if ((upper = malloc(plen + 2)) == NULL)
    return ordo__set_last_error(ORDO_E_NOMEM, "node: out of memory");
  memcpy(upper, prefix, plen);
  memcpy(upper + plen, "~", 2);
  /* SQLite gives a bare column of a MAX() aggregate the values of the row
   * holding the maximum: value is each address's newest version <= asof. */
  rc = store_prepare(db,
                     "SELECT address, value, MAX(num) FROM state_at"
                     " WHERE address >= ? AND address < ? AND num <= ?"
                     " GROUP BY address ORDER BY address LIMIT ?",
                     NULL, &s);
  if (rc) {
    free(upper);
    return rc;
  }
  sqlite3_bind_text(s, 1, start != NULL && strcmp(start, prefix) > 0 ? start
                                                                     : prefix,
                    -1, SQLITE_STATIC);
  sqlite3_bind_text(s, 2, upper, -1, free);
  sqlite3_bind_int64(s, 3, num_arg(asof));
  sqlite3_bind_int64(s, 4, (sqlite3_int64)limit + 1);
  rc = store_page(db, s, limit, state_row, data, "state list", &more);
  if (rc == ORDO_OK && more) {
    const char *addr = (const char *)sqlite3_column_text(s, 0);
    if (addr != NULL && (*next = strdup(addr)) == NULL)
      rc = ordo__set_last_error(ORDO_E_NOMEM, "node: out of memory");
  }
  sqlite3_finalize(s);
  return rc;
}

/* What a query of blocks selects: the columns block_json reads. */
#define SELECT_BLOCK_ROW "SELECT num, id, prev, batch_ids FROM blocks"

/* A block row (SELECT_BLOCK_ROW) as Sawtooth's REST API shows a block:
 * {"header": {"block_num" (a string), "previous_block_id", "batch_ids"},
 * "header_signature", "batches": [{"header_signature"}]}. */
static json_t *block_json(sqlite3_stmt *s) {
  sqlite3_int64 num = sqlite3_column_int64(s, 0);
  const char *id = (const char *)sqlite3_column_text(s, 1);
  const char *prev = (const char *)sqlite3_column_text(s, 2);
  const char *ids = (const char *)sqlite3_column_text(s, 3);
  json_t *bids = json_array(), *batches = json_array();
  char numstr[24];

  if (bids == NULL || batches == NULL)
    goto nomem;
  /* batch_ids: ids joined by ','; "" for none. */
  for (const char *p = ids != NULL ? ids : ""; *p != '\0';) {
    const char *comma = strchr(p, ',');
    size_t n = comma != NULL ? (size_t)(comma - p) : strlen(p);
    json_t *one = json_stringn(p, n);
    if (one == NULL || json_array_append(bids, one) != 0 ||
        json_array_append_new(batches,
                              json_pack("{s:O}", "header_signature", one)) !=
            0) {
      json_decref(one);
      goto nomem;
    }
    json_decref(one);
    p += n;
    if (*p == ',')
      p++;
  }
  snprintf(numstr, sizeof numstr, "%lld", (long long)num);
  return json_pack("{s:{s:s,s:s,s:o},s:s,s:o}", "header", "block_num", numstr,
                   "previous_block_id", prev != NULL ? prev : "", "batch_ids",
                   bids, "header_signature", id != NULL ? id : "", "batches",
                   batches);
nomem:
  json_decref(bids);
  json_decref(batches);
  return NULL;
}

int ordo__node_store_block_get(sqlite3 *db, const char *id, json_t **out) {
  sqlite3_stmt *s;
  int rc =
      store_lookup(db, SELECT_BLOCK_ROW " WHERE id = ?", id, "block get", &s);
  *out = NULL;
  if (rc)
    return rc;
  rc = (*out = block_json(s)) != NULL
           ? ORDO_OK
           : ordo__set_last_error(ORDO_E_NOMEM, "node: out of memory");
  sqlite3_finalize(s);
  return rc;
}

/* store_page's row of GET /blocks: block_json. */
static int block_row(sqlite3_stmt *s, json_t *data) {
  json_t *blk = block_json(s);
  return blk != NULL && json_array_append_new(data, blk) == 0 ? 0 : -1;
}

int ordo__node_store_block_list(sqlite3 *db, uint64_t start, size_t limit,
                                json_t *data, int64_t *next) {
  sqlite3_stmt *s;
  int more;
  int rc = store_prepare(
      db, SELECT_BLOCK_ROW " WHERE num <= ? ORDER BY num DESC LIMIT ?", NULL,
      &s);
  *next = -1;
  if (rc)
    return rc;
  sqlite3_bind_int64(s, 1, num_arg(start));
  sqlite3_bind_int64(s, 2, (sqlite3_int64)limit + 1);
  rc = store_page(db, s, limit, block_row, data, "block list", &more);
  if (rc == ORDO_OK && more)
    *next = sqlite3_column_int64(s, 0);
  sqlite3_finalize(s);
  return rc;
}

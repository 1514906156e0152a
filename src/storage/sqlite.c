/*
 * sqlite.c — the SQLite storage backend: ordo's embedded default.
 *
 * One open database is one SQLite connection plus one serial executor. All
 * SQL of a database runs as a plain task on that executor, so the
 * connection is opened with SQLITE_OPEN_NOMUTEX: it is used by one thread at
 * a time (first the opening thread, then the drain task), and the hand-over
 * is ordered by the drain's mutex (drain.h), which every drain takes before
 * touching SQLite. In single_executor mode ordo__executor_open hands out the
 * shared executor, which may have several threads; the connection is still
 * used by one thread at a time, because at most one drain task exists per
 * database, not because the executor is serial.
 *
 * Group commit. submit() queues the request (drain.h); the drain takes
 * every pending request at once and runs them in one transaction: BEGIN
 * IMMEDIATE (plain BEGIN when the group only reads), each write inside its
 * own SAVEPOINT so that a failing write (a duplicate, a missing record)
 * rolls back alone and fails alone (ADD gets the same without a savepoint,
 * see ordo__sq_add_unguarded), reads in the same transaction, COMMIT.
 * Only after COMMIT has returned are the done callbacks called, so a write
 * is durable (WAL, synchronous=FULL) before its caller hears of it. Requests
 * that arrive while a group runs form the next group: the more callers wait
 * on fsync, the more writes share one. With ORDO_STORAGE_NO_GROUP_COMMIT
 * each request is a group of its own (the benchmarks' naive baseline).
 *
 * Lock order: drain.h's. No lock is held while SQL or a done runs.
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
 *     "queries" in sqlite_exec.c).
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
#include "storage/sqlite_int.h"
#include "storage/sqlite_wal.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

/* PRAGMA application_id marks the file as ordo's ("ordo" in ASCII); the
 * schema version is PRAGMA user_version. Both live in the database header,
 * so the wallet's own meta namespace stays untouched. */
#define SQ_APPLICATION_ID 0x6F72646F
#define SQ_SCHEMA_VERSION 1
/* How long a write waits for another process's write lock. */
#define SQ_BUSY_TIMEOUT_MS 5000

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

/* ---- small helpers ------------------------------------------------------------ */

/* An open/destroy error: *errmsg (when asked for) gets the text. */

/* ---- the drain: a group of requests as one transaction ------------------------- */

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
  ordo__storage_req_drop_output(req);
  req->status = status;
  ordo__storage_req_msg(req, "%s", why);
  if (req->opcode == ORDO_STORAGE_BATCH)
    for (size_t i = 0; i < req->nbatch; i++)
      if (req->batch[i].status == ORDO_OK) {
        ordo__storage_req_drop_output(&req->batch[i]);
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
    writes |= ordo__storage_is_write(r->opcode);

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
      ordo__storage_req_msg(r, "not written: an earlier write of its chain failed");
      continue;
    }
    if (!ordo__storage_is_write(r->opcode)) {
      r->status = ordo__sq_exec(sq, r);
    } else if (r->opcode == ORDO_STORAGE_ADD) {
      int lost = 0;
      r->status = ordo__sq_add_unguarded(sq, r, &lost);
      if (lost) {
        group_status = ORDO_E_STORAGE;
        snprintf(err, sizeof(err), "cannot undo a failed add: %s",
                 sqlite3_errmsg(sq->db));
      }
    } else if ((rc = ctl(sq, ST_SAVEPOINT, err, sizeof(err))) != SQLITE_OK) {
      r->status = sql_code(rc);
      ordo__storage_req_msg(r, "%s", err);
    } else {
      r->status = ordo__sq_exec(sq, r);
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
      if (writes && r->status == ORDO_OK && !ordo__storage_is_write(r->opcode)) {
        *pp = r->backend_next;
        ordo__storage_req_drop_output(r);
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

/* The drain's hook: a group of sq's requests. */
static void drain_group(ordo__storage_drain *q, ordo_storage_req *list) {
  run_group(ORDO__CONTAINER_OF(q, sq_db, q), list);
}

/* CLOSE: everything before it has completed. The done is called before sq
 * is freed; the request itself is the caller's memory. */
static void run_close(ordo__storage_drain *q, ordo_storage_req *req) {
  sq_db *sq = ORDO__CONTAINER_OF(q, sq_db, q);
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
    ordo__storage_req_msg(req, "close: %s", sqlite3_errmsg(sq->db));
    (void)sqlite3_close_v2(sq->db);
  }
  sq->db = NULL;
  ordo__executor_close(sq->q.ex);
  req->done(req);
  ordo__storage_drain_destroy(&sq->q);
  free(sq);
}

/* ---- the interface --------------------------------------------------------------- */

static int sq_submit(ordo_storage *st, ordo_storage_req *req) {
  if (st == NULL || req == NULL || st->backend != &ordo_storage_sqlite ||
      req->done == NULL)
    return ORDO_E_INVAL;
  sq_db *sq = (sq_db *)st;
  if (!ordo__storage_req_valid(req, SQ_QUERY_MAX_DEPTH, (size_t)sq->max_params))
    return ORDO_E_INVAL;
  ordo__storage_req_reset_output(req);
  return ordo__storage_drain_submit(&sq->q, req);
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
    st = ordo__storage_set_err(errmsg, sql_code(rc), "%s: cannot enable WAL: %s", uri,
                 sqlite3_errmsg(db));
  else if (sqlite3_stricmp((const char *)sqlite3_column_text(s, 0), "wal") != 0)
    st = ordo__storage_set_err(errmsg, ORDO_E_STORAGE,
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
    return ordo__storage_set_err(errmsg, ORDO_E_NOMEM, "out of memory");
  char *e = NULL;
  int rc = sqlite3_exec(db, sql, NULL, NULL, &e);
  sqlite3_free(sql);
  if (rc != SQLITE_OK) {
    st = ordo__storage_set_err(errmsg, sql_code(rc), "%s: cannot create the schema: %s", uri,
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
    return ordo__storage_set_err(errmsg, sql_code(rc), "%s: %s", uri, sqlite3_errmsg(db));
  if (rc != SQLITE_OK) /* SQLITE_NOTADB: not SQLite at all */
    return ordo__storage_set_err(errmsg, ORDO_E_STORAGE, "%s is not an ordo database: %s",
                   uri, sqlite3_errmsg(db));
  if (app != SQ_APPLICATION_ID)
    return ordo__storage_set_err(errmsg, ORDO_E_STORAGE,
                   "%s is not an ordo database (SQLite application_id is %d)",
                   uri, app);
  rc = pragma_int(db, "PRAGMA user_version", &version);
  if (rc != SQLITE_OK)
    return ordo__storage_set_err(errmsg, sql_code(rc), "%s: %s", uri, sqlite3_errmsg(db));
  if (version != SQ_SCHEMA_VERSION)
    return ordo__storage_set_err(errmsg, ORDO_E_STORAGE,
                   "%s has ordo schema version %d; this build reads version %d",
                   uri, version, SQ_SCHEMA_VERSION);
  return set_wal(db, uri, errmsg);
}

/* uri + suffix ("-wal", "-shm", "-journal"), removed if present. */
static int remove_side_file(const char *uri, const char *suffix, char **errmsg) {
  char *p = sqlite3_mprintf("%s%s", uri, suffix);
  if (p == NULL)
    return ordo__storage_set_err(errmsg, ORDO_E_NOMEM, "out of memory");
  int st = ORDO_OK;
  if (unlink(p) != 0 && errno != ENOENT)
    st = ordo__storage_set_err(errmsg, ORDO_E_STORAGE, "cannot remove %s: %s", p,
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
    return ordo__storage_set_err(errmsg, ORDO_E_INVAL, "invalid arguments to open");
  /* NOMUTEX hands the connection between threads; that needs a SQLite
   * built thread-safe (its global state is still shared). */
  if (!sqlite3_threadsafe())
    return ordo__storage_set_err(errmsg, ORDO_E_STORAGE, "SQLite was built without threads");

  int created = 0, st, rc;
  sq_db *sq = NULL;
  if (flags & ORDO_STORAGE_CREATE) {
    /* O_EXCL makes "exists" and "create" one atomic step between processes. */
    int fd = open(uri, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
      st = errno == EEXIST
               ? ordo__storage_set_err(errmsg, ORDO_E_WALLET_EXISTS, "%s already exists", uri)
               : ordo__storage_set_err(errmsg, ORDO_E_STORAGE, "cannot create %s: %s", uri,
                         strerror(errno));
      goto fail;
    }
    created = 1;
    if (close(fd) != 0) {
      st = ordo__storage_set_err(errmsg, ORDO_E_STORAGE, "cannot create %s: %s", uri,
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
               ? ordo__storage_set_err(errmsg, ORDO_E_WALLET_NOT_FOUND, "no database at %s",
                         uri)
               : ordo__storage_set_err(errmsg, ORDO_E_STORAGE, "cannot open %s: %s", uri,
                         strerror(errno));
      goto fail;
    }
    if (!S_ISREG(sb.st_mode)) {
      st = ordo__storage_set_err(errmsg, ORDO_E_STORAGE, "%s is not a regular file", uri);
      goto fail;
    }
  }

  sq = calloc(1, sizeof(*sq));
  if (sq == NULL) {
    st = ordo__storage_set_err(errmsg, ORDO_E_NOMEM, "out of memory");
    goto fail;
  }
  ordo__storage_drain_init(&sq->q, !(flags & ORDO_STORAGE_NO_GROUP_COMMIT),
                           drain_group, run_close);
  sq->base.backend = be;
  atomic_init(&sq->commits, 0);

  /* No SQLITE_OPEN_CREATE: the file exists (we just made it, or stat saw it;
   * if it vanished since, this fails rather than making a stray one). */
  rc = sqlite3_open_v2(uri, &sq->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
                       ordo__sqlite_wal_vfs());
  if (rc != SQLITE_OK) {
    st = ordo__storage_set_err(errmsg, sql_code(rc), "cannot open %s: %s", uri,
                 sq->db != NULL ? sqlite3_errmsg(sq->db) : sqlite3_errstr(rc));
    goto fail;
  }
  (void)sqlite3_extended_result_codes(sq->db, 1); /* only fails on misuse */
  rc = sqlite3_busy_timeout(sq->db, SQ_BUSY_TIMEOUT_MS);
  if (rc != SQLITE_OK) {
    st = ordo__storage_set_err(errmsg, sql_code(rc), "%s: %s", uri, sqlite3_errmsg(sq->db));
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
    st = ordo__storage_set_err(errmsg, ORDO_E_STORAGE, "%s: cannot set up the connection: %s",
                 uri, rc != SQLITE_OK ? sqlite3_errmsg(sq->db)
                                      : "foreign keys unsupported");
    goto fail;
  }
  rc = sqlite3_create_function_v2(
      sq->db, "ordo_like", 2, SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS,
      NULL, ordo__sq_like_fn, NULL, NULL, NULL);
  if (rc != SQLITE_OK) {
    st = ordo__storage_set_err(errmsg, sql_code(rc), "%s: %s", uri, sqlite3_errmsg(sq->db));
    goto fail;
  }
  for (int i = 0; i < ST_COUNT; i++) {
    rc = sqlite3_prepare_v3(sq->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
                            &sq->stmt[i], NULL);
    if (rc != SQLITE_OK) {
      /* The markers matched but a table is missing or altered. */
      st = ordo__storage_set_err(errmsg, sql_code(rc), "%s: damaged ordo schema: %s", uri,
                   sqlite3_errmsg(sq->db));
      goto fail;
    }
  }
  sq->max_params = sqlite3_limit(sq->db, SQLITE_LIMIT_VARIABLE_NUMBER, -1);

  /* Last: nothing can fail after it, so fail never closes an executor. */
  st = ordo__executor_open(ctx, "sqlite", &sq->q.ex);
  if (st != ORDO_OK) {
    ordo__storage_set_err(errmsg, st, "no storage executor for %s: %s", uri,
            ordo_strerror(st));
    goto fail;
  }
  *out = &sq->base;
  return ORDO_OK;

fail:
  if (sq != NULL) {
    for (int i = 0; i < ST_COUNT; i++)
      (void)sqlite3_finalize(sq->stmt[i]); /* NULL accepted */
    (void)sqlite3_close_v2(sq->db); /* NULL accepted; nothing is pending */
    ordo__storage_drain_destroy(&sq->q);
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
    return ordo__storage_set_err(errmsg, ORDO_E_INVAL, "invalid arguments to destroy");
  if (unlink(uri) != 0)
    return errno == ENOENT
               ? ordo__storage_set_err(errmsg, ORDO_E_WALLET_NOT_FOUND, "no database at %s",
                         uri)
               : ordo__storage_set_err(errmsg, ORDO_E_STORAGE, "cannot remove %s: %s", uri,
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

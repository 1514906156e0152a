/*
 * sqlite_wal.c — a thin VFS over SQLite's default one that gathers the
 * frames of a write-ahead log in memory until SQLite syncs the log.
 *
 * Why: SQLite writes every WAL frame with two write calls (its 24-byte
 * header, then the page), so a group commit of 32 records, ~37 dirty pages,
 * costs ~74 system calls before its fsync; on ordo's benchmark machine
 * those calls were a third of the database thread's time (perf; see
 * docs/benchmarks.md). Here they become one memcpy each, and the commit's
 * sync writes the run in 64 KiB calls. Nothing else changes: the bytes, the
 * offsets, their order, and every sync are SQLite's own.
 *
 * The rule that keeps this correct: bytes are held back only while this
 * connection holds the WAL write lock, and only until SQLite next looks at
 * the file. Every WAL frame is written under the write lock (or in
 * exclusive locking mode, where no other connection exists). The held run
 * is written out, in order and before the call passes through, when SQLite
 *   - syncs the WAL (every commit, as ordo runs synchronous=FULL),
 *   - reads a range that overlaps it, asks for the size, truncates,
 *     sends a file control, or closes,
 *   - writes somewhere not inside or right after the held run, or past
 *     the buffer's capacity,
 *   - issues a shared-memory barrier on the database file (SQLite does
 *     this before it publishes a commit in the WAL index, so even a commit
 *     without a sync reaches the file before any reader can learn of it),
 *   - releases the write lock (what is still held then is a rolled-back
 *     transaction's spill, written as plain SQLite would have written it).
 * So another connection, in this process or another, never reads a frame
 * that is not in the file, and a write never lands after a later one.
 *
 * Linking a WAL to its database: the main database file is opened first;
 * SQLite opens the WAL with the name sqlite3_filename_wal() returns for the
 * database's name, the same pointer. A WAL whose database is not found is
 * not gathered (no risk). Other files (journals, temp files) are not
 * gathered either, but every file is wrapped, as a db_file that only
 * passes calls through, so that fault injection (fault.c) applies to all
 * of them: each write, sync and truncate SQLite makes asks
 * ordo__storage_fault_sqlite first.
 *
 * Threads: SQLite uses a connection, and so its files, from one thread at
 * a time; the list of open databases, searched when a WAL opens, has its
 * own mutex (open_mu), which is taken around nothing else.
 */
#include "storage/sqlite_wal.h"
#include "base/base.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

/* The most bytes held back, and the size of each write out of them (the
 * unix VFS writes at most 128 KiB - 1 per call). */
#define WAL_BUF_MAX (1024 * 1024)
#define WAL_BUF_MIN (64 * 1024)
#define WAL_WRITE_CHUNK (64 * 1024)

typedef struct wal_file wal_file;

/* A main database file: the real one lives right after this struct. */
typedef struct db_file {
  sqlite3_file base; /* first: SQLite's handle */
  sqlite3_file *real;
  sqlite3_filename name; /* as opened (NULL: a temporary file); SQLite
                            keeps it alive while open */
  wal_file *wal;         /* its open, wrapped WAL, or NULL */
  struct db_file *next;  /* open_list, under open_mu */
} db_file;

/* A WAL file, and the run of bytes [off, off + len) not yet written. */
struct wal_file {
  sqlite3_file base; /* first */
  sqlite3_file *real;
  sqlite3_filename name; /* its own name, for fault rules */
  db_file *db; /* the database it belongs to, or NULL once that closed */
  unsigned char *buf;
  size_t len, cap;
  sqlite3_int64 off;
};

static sqlite3_vfs *real_vfs;
static sqlite3_vfs wal_vfs;
static pthread_once_t vfs_once = PTHREAD_ONCE_INIT;
static int vfs_ok;
static pthread_mutex_t open_mu = PTHREAD_MUTEX_INITIALIZER;
static db_file *open_list;

/* ---- the WAL file ------------------------------------------------------------ */

/* Write the held run out. The run is dropped even when a write fails: the
 * error goes to SQLite, which treats the transaction as lost (an IO error
 * on the log rolls it back), so nothing will refer to those bytes. */
static int wal_flush(wal_file *w) {
  int rc = SQLITE_OK;
  for (size_t done = 0; done < w->len && rc == SQLITE_OK;) {
    size_t n = w->len - done;
    if (n > WAL_WRITE_CHUNK)
      n = WAL_WRITE_CHUNK;
    rc = w->real->pMethods->xWrite(w->real, w->buf + done, (int)n,
                                   w->off + (sqlite3_int64)done);
    done += n;
  }
  w->len = 0;
  return rc;
}

/* Room for need bytes in the buffer; 0 if it cannot grow (the caller then
 * writes through). */
static int wal_reserve(wal_file *w, size_t need) {
  if (need <= w->cap)
    return 1;
  if (need > WAL_BUF_MAX)
    return 0;
  unsigned char *b = ordo__grow(w->buf, &w->cap, need, WAL_BUF_MIN);
  if (b == NULL)
    return 0;
  w->buf = b;
  return 1;
}

static int wal_write(sqlite3_file *f, const void *data, int amt,
                     sqlite3_int64 ofst) {
  wal_file *w = (wal_file *)f;
  size_t n = (size_t)amt;
  int frc = ordo__storage_fault_sqlite(ORDO__FAULT_WRITE, w->name);
  if (frc != SQLITE_OK)
    return frc; /* nothing written, nothing held */
  sqlite3_int64 end = w->off + (sqlite3_int64)w->len;
  if (w->len > 0 && ofst >= w->off && ofst + amt <= end) {
    memcpy(w->buf + (ofst - w->off), data, n); /* rewrites a held frame */
    return SQLITE_OK;
  }
  if (w->len > 0 && ofst == end && wal_reserve(w, w->len + n)) {
    memcpy(w->buf + w->len, data, n);
    w->len += n;
    return SQLITE_OK;
  }
  int rc = wal_flush(w);
  if (rc != SQLITE_OK)
    return rc;
  if (wal_reserve(w, n)) {
    memcpy(w->buf, data, n);
    w->off = ofst;
    w->len = n;
    return SQLITE_OK;
  }
  return w->real->pMethods->xWrite(w->real, data, amt, ofst);
}

static int wal_read(sqlite3_file *f, void *data, int amt, sqlite3_int64 ofst) {
  wal_file *w = (wal_file *)f;
  if (w->len > 0 && ofst < w->off + (sqlite3_int64)w->len &&
      ofst + amt > w->off) {
    int rc = wal_flush(w);
    if (rc != SQLITE_OK)
      return rc;
  }
  return w->real->pMethods->xRead(w->real, data, amt, ofst);
}

static int wal_close(sqlite3_file *f) {
  wal_file *w = (wal_file *)f;
  int rc = wal_flush(w);
  int rc2 = w->real->pMethods->xClose(w->real);
  pthread_mutex_lock(&open_mu);
  if (w->db != NULL)
    w->db->wal = NULL;
  pthread_mutex_unlock(&open_mu);
  free(w->buf);
  w->buf = NULL;
  w->cap = 0;
  return rc != SQLITE_OK ? rc : rc2;
}

/* Before a truncate or a sync: the held run goes out, then the fault
 * injection may fail the call. */
static int wal_flush_then(wal_file *w, int fault) {
  int rc = wal_flush(w);
  return rc != SQLITE_OK ? rc : ordo__storage_fault_sqlite(fault, w->name);
}

static int wal_truncate(sqlite3_file *f, sqlite3_int64 size) {
  wal_file *w = (wal_file *)f;
  int rc = wal_flush_then(w, ORDO__FAULT_TRUNCATE);
  return rc != SQLITE_OK ? rc : w->real->pMethods->xTruncate(w->real, size);
}

/* A sync chosen to fail still writes the held run out first, as a real
 * failed fsync leaves the bytes in the page cache: SQLite must treat the
 * transaction as lost either way. */
static int wal_sync(sqlite3_file *f, int flags) {
  wal_file *w = (wal_file *)f;
  int rc = wal_flush_then(w, ORDO__FAULT_SYNC);
  return rc != SQLITE_OK ? rc : w->real->pMethods->xSync(w->real, flags);
}

static int wal_size(sqlite3_file *f, sqlite3_int64 *size) {
  wal_file *w = (wal_file *)f;
  int rc = wal_flush(w);
  return rc != SQLITE_OK ? rc : w->real->pMethods->xFileSize(w->real, size);
}

static int wal_fcntl(sqlite3_file *f, int op, void *arg) {
  wal_file *w = (wal_file *)f;
  int rc = wal_flush(w);
  if (rc != SQLITE_OK)
    return rc;
  return w->real->pMethods->xFileControl(w->real, op, arg);
}

/* ---- pass-through methods, shared by both kinds ---------------------------- */

/* Both structs start with base then real. */
#define REAL(f) (((db_file *)(f))->real)

static int pt_lock(sqlite3_file *f, int l) {
  return REAL(f)->pMethods->xLock(REAL(f), l);
}
static int pt_unlock(sqlite3_file *f, int l) {
  return REAL(f)->pMethods->xUnlock(REAL(f), l);
}
static int pt_check_reserved(sqlite3_file *f, int *out) {
  return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out);
}
static int pt_sector_size(sqlite3_file *f) {
  return REAL(f)->pMethods->xSectorSize(REAL(f));
}
static int pt_device(sqlite3_file *f) {
  return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f));
}

static const sqlite3_io_methods wal_methods = {
    .iVersion = 1, /* a WAL has no shared memory and is never mapped */
    .xClose = wal_close,
    .xRead = wal_read,
    .xWrite = wal_write,
    .xTruncate = wal_truncate,
    .xSync = wal_sync,
    .xFileSize = wal_size,
    .xLock = pt_lock,
    .xUnlock = pt_unlock,
    .xCheckReservedLock = pt_check_reserved,
    .xFileControl = wal_fcntl,
    .xSectorSize = pt_sector_size,
    .xDeviceCharacteristics = pt_device,
};

/* ---- the main database file -------------------------------------------------- */

/* Write out what db's WAL holds, before SQLite lets other connections see
 * the log. Nothing can be reported from here (a barrier returns nothing, an
 * unlock must go ahead), and nothing needs to be: under synchronous=FULL a
 * commit's sync has already written its frames and reported any failure,
 * so at a barrier the buffer is empty, and at the write lock's release
 * what is left is a rolled-back transaction's spill, which nothing will
 * read. (Under synchronous=NORMAL the barrier's write is the one that puts
 * a commit's frames in the file, and its failure would go unreported; the
 * SQLite backend always runs FULL.) */
static void db_flush_wal(db_file *d) {
  if (d->wal != NULL && d->wal->len > 0)
    (void)wal_flush(d->wal);
}

static int db_close(sqlite3_file *f) {
  db_file *d = (db_file *)f;
  pthread_mutex_lock(&open_mu);
  for (db_file **pp = &open_list; *pp != NULL; pp = &(*pp)->next)
    if (*pp == d) {
      *pp = d->next;
      break;
    }
  if (d->wal != NULL)
    d->wal->db = NULL; /* SQLite closes the WAL first; this is a guard */
  d->wal = NULL;
  pthread_mutex_unlock(&open_mu);
  return d->real->pMethods->xClose(d->real);
}

static int db_read(sqlite3_file *f, void *data, int amt, sqlite3_int64 ofst) {
  return REAL(f)->pMethods->xRead(REAL(f), data, amt, ofst);
}
static int db_write(sqlite3_file *f, const void *data, int amt,
                    sqlite3_int64 ofst) {
  int rc = ordo__storage_fault_sqlite(ORDO__FAULT_WRITE,
                                      ((db_file *)f)->name);
  return rc != SQLITE_OK ? rc
                         : REAL(f)->pMethods->xWrite(REAL(f), data, amt, ofst);
}
static int db_truncate(sqlite3_file *f, sqlite3_int64 size) {
  int rc = ordo__storage_fault_sqlite(ORDO__FAULT_TRUNCATE,
                                      ((db_file *)f)->name);
  return rc != SQLITE_OK ? rc : REAL(f)->pMethods->xTruncate(REAL(f), size);
}
static int db_sync(sqlite3_file *f, int flags) {
  int rc = ordo__storage_fault_sqlite(ORDO__FAULT_SYNC, ((db_file *)f)->name);
  return rc != SQLITE_OK ? rc : REAL(f)->pMethods->xSync(REAL(f), flags);
}
static int db_size(sqlite3_file *f, sqlite3_int64 *size) {
  return REAL(f)->pMethods->xFileSize(REAL(f), size);
}
static int db_fcntl(sqlite3_file *f, int op, void *arg) {
  return REAL(f)->pMethods->xFileControl(REAL(f), op, arg);
}
static int db_shm_map(sqlite3_file *f, int pg, int pgsz, int extend,
                      void volatile **out) {
  return REAL(f)->pMethods->xShmMap(REAL(f), pg, pgsz, extend, out);
}

/* Slot 0 of the WAL index's locks is the write lock (WAL_WRITE_LOCK in
 * SQLite's wal.c); an unlock of a range starting there releases it. */
static int db_shm_lock(sqlite3_file *f, int offset, int n, int flags) {
  if ((flags & SQLITE_SHM_UNLOCK) && offset == 0)
    db_flush_wal((db_file *)f);
  return REAL(f)->pMethods->xShmLock(REAL(f), offset, n, flags);
}

static void db_shm_barrier(sqlite3_file *f) {
  db_flush_wal((db_file *)f);
  REAL(f)->pMethods->xShmBarrier(REAL(f));
}

static int db_shm_unmap(sqlite3_file *f, int delete_flag) {
  return REAL(f)->pMethods->xShmUnmap(REAL(f), delete_flag);
}
static int db_fetch(sqlite3_file *f, sqlite3_int64 ofst, int amt, void **pp) {
  return REAL(f)->pMethods->xFetch(REAL(f), ofst, amt, pp);
}
static int db_unfetch(sqlite3_file *f, sqlite3_int64 ofst, void *p) {
  return REAL(f)->pMethods->xUnfetch(REAL(f), ofst, p);
}

/* The version 1 methods, shared by both tables below. */
#define DB_METHODS_V1                                                          \
  .xClose = db_close, .xRead = db_read, .xWrite = db_write,                    \
  .xTruncate = db_truncate, .xSync = db_sync, .xFileSize = db_size,            \
  .xLock = pt_lock, .xUnlock = pt_unlock,                                      \
  .xCheckReservedLock = pt_check_reserved, .xFileControl = db_fcntl,           \
  .xSectorSize = pt_sector_size, .xDeviceCharacteristics = pt_device

/* For a real file with shared memory (io_methods version 3, as the unix
 * VFS's); without it SQLite cannot run WAL on the file at all, and
 * db_methods_v1 below is used. Files other than main databases (rollback
 * journals, temporary files, WALs not gathered) use the same tables: with
 * wal NULL and not in open_list, every method passes through. */
static const sqlite3_io_methods db_methods = {
    .iVersion = 3,
    DB_METHODS_V1,
    .xShmMap = db_shm_map,
    .xShmLock = db_shm_lock,
    .xShmBarrier = db_shm_barrier,
    .xShmUnmap = db_shm_unmap,
    .xFetch = db_fetch,
    .xUnfetch = db_unfetch,
};

static const sqlite3_io_methods db_methods_v1 = {
    .iVersion = 1,
    DB_METHODS_V1,
};

/* ---- the VFS ------------------------------------------------------------------ */

static int vfs_open(sqlite3_vfs *vfs, sqlite3_filename name, sqlite3_file *f,
                    int flags, int *out_flags) {
  (void)vfs;
  /* Only a main database is listed for its WAL to find. */
  int main_db = (flags & SQLITE_OPEN_MAIN_DB) != 0 && name != NULL;
  wal_file *w = NULL;
  if (flags & SQLITE_OPEN_WAL) {
    /* Ours only if its database is ours and open: find it. */
    db_file *d;
    pthread_mutex_lock(&open_mu);
    for (d = open_list; d != NULL; d = d->next)
      if (sqlite3_filename_wal(d->name) == name && d->wal == NULL)
        break;
    pthread_mutex_unlock(&open_mu);
    if (d != NULL) {
      w = (wal_file *)f;
      memset(w, 0, sizeof(*w));
      w->real = (sqlite3_file *)(w + 1);
      w->name = name;
      w->db = d;
    }
  }

  sqlite3_file *real = w == NULL ? (sqlite3_file *)((db_file *)f + 1) : w->real;
  memset(real, 0, (size_t)real_vfs->szOsFile);
  f->pMethods = NULL; /* a failed open must leave nothing to close */
  int rc = real_vfs->xOpen(real_vfs, name, real, flags, out_flags);
  if (rc != SQLITE_OK) {
    if (real->pMethods != NULL)
      (void)real->pMethods->xClose(real);
    return rc;
  }
  if (w != NULL) {
    pthread_mutex_lock(&open_mu);
    w->db->wal = w;
    pthread_mutex_unlock(&open_mu);
    w->base.pMethods = &wal_methods;
    return SQLITE_OK;
  }
  db_file *d = (db_file *)f;
  d->real = real;
  d->name = name;
  d->wal = NULL;
  d->next = NULL;
  if (real->pMethods->iVersion < 3 || !main_db) {
    d->base.pMethods =
        real->pMethods->iVersion < 3 ? &db_methods_v1 : &db_methods;
    return SQLITE_OK; /* no WAL will look for it */
  }
  pthread_mutex_lock(&open_mu);
  d->next = open_list;
  open_list = d;
  pthread_mutex_unlock(&open_mu);
  d->base.pMethods = &db_methods;
  return SQLITE_OK;
}

static int vfs_delete(sqlite3_vfs *v, const char *name, int sync_dir) {
  (void)v;
  return real_vfs->xDelete(real_vfs, name, sync_dir);
}
static int vfs_access(sqlite3_vfs *v, const char *name, int flags, int *out) {
  (void)v;
  return real_vfs->xAccess(real_vfs, name, flags, out);
}
static int vfs_full_pathname(sqlite3_vfs *v, const char *name, int n,
                             char *out) {
  (void)v;
  return real_vfs->xFullPathname(real_vfs, name, n, out);
}
static void *vfs_dlopen(sqlite3_vfs *v, const char *name) {
  (void)v;
  return real_vfs->xDlOpen(real_vfs, name);
}
static void vfs_dlerror(sqlite3_vfs *v, int n, char *out) {
  (void)v;
  real_vfs->xDlError(real_vfs, n, out);
}
static void (*vfs_dlsym(sqlite3_vfs *v, void *h, const char *sym))(void) {
  (void)v;
  return real_vfs->xDlSym(real_vfs, h, sym);
}
static void vfs_dlclose(sqlite3_vfs *v, void *h) {
  (void)v;
  real_vfs->xDlClose(real_vfs, h);
}
static int vfs_randomness(sqlite3_vfs *v, int n, char *out) {
  (void)v;
  return real_vfs->xRandomness(real_vfs, n, out);
}
static int vfs_sleep(sqlite3_vfs *v, int us) {
  (void)v;
  return real_vfs->xSleep(real_vfs, us);
}
static int vfs_current_time(sqlite3_vfs *v, double *out) {
  (void)v;
  return real_vfs->xCurrentTime(real_vfs, out);
}
static int vfs_last_error(sqlite3_vfs *v, int n, char *out) {
  (void)v;
  return real_vfs->xGetLastError != NULL
             ? real_vfs->xGetLastError(real_vfs, n, out)
             : 0;
}
static int vfs_current_time64(sqlite3_vfs *v, sqlite3_int64 *out) {
  (void)v;
  if (real_vfs->iVersion >= 2 && real_vfs->xCurrentTimeInt64 != NULL)
    return real_vfs->xCurrentTimeInt64(real_vfs, out);
  double days;
  int rc = real_vfs->xCurrentTime(real_vfs, &days);
  *out = (sqlite3_int64)(days * 86400000.0);
  return rc;
}

static void vfs_register(void) {
  real_vfs = sqlite3_vfs_find(NULL);
  if (real_vfs == NULL)
    return;
  size_t size = sizeof(db_file) > sizeof(wal_file) ? sizeof(db_file)
                                                   : sizeof(wal_file);
  wal_vfs = (sqlite3_vfs){
      .iVersion = 2,
      .szOsFile = (int)size + real_vfs->szOsFile,
      .mxPathname = real_vfs->mxPathname,
      .zName = "ordo-wal",
      .xOpen = vfs_open,
      .xDelete = vfs_delete,
      .xAccess = vfs_access,
      .xFullPathname = vfs_full_pathname,
      .xDlOpen = vfs_dlopen,
      .xDlError = vfs_dlerror,
      .xDlSym = vfs_dlsym,
      .xDlClose = vfs_dlclose,
      .xRandomness = vfs_randomness,
      .xSleep = vfs_sleep,
      .xCurrentTime = vfs_current_time,
      .xGetLastError = vfs_last_error,
      .xCurrentTimeInt64 = vfs_current_time64,
  };
  vfs_ok = sqlite3_vfs_register(&wal_vfs, 0) == SQLITE_OK;
}

void ordo__sqlite_wal_shrink(sqlite3_file *f) {
  wal_file *w = (wal_file *)f;
  if (f == NULL || f->pMethods != &wal_methods || w->len > 0)
    return;
  free(w->buf);
  w->buf = NULL;
  w->cap = 0;
}

const char *ordo__sqlite_wal_vfs(void) {
  (void)pthread_once(&vfs_once, vfs_register);
  return vfs_ok ? wal_vfs.zName : NULL;
}

/*
 * sqlite_wal.h — the SQLite VFS the SQLite backend opens its databases
 * with: the platform's default VFS, except that a write-ahead log's frames
 * are gathered in memory and reach the file in a few large writes when
 * SQLite syncs the log, instead of two write calls per frame.
 *
 * Internal to the storage module (sqlite.c); see sqlite_wal.c for why and
 * for the rules that keep a shared WAL file correct.
 */
#ifndef ORDO_STORAGE_SQLITE_WAL_H
#define ORDO_STORAGE_SQLITE_WAL_H

#include <sqlite3.h>

/* Register the VFS with SQLite (once per process, any thread) and return
 * its name for sqlite3_open_v2; NULL if SQLite has no default VFS or
 * refused the registration, in which case the caller opens with the
 * default VFS and loses only the write gathering. */
const char *ordo__sqlite_wal_vfs(void);

/* Free the gathering buffer of f, a database's WAL file as
 * SQLITE_FCNTL_JOURNAL_POINTER gives it, if it is one of ours and holds no
 * frame (between transactions); it grows again on the next write. */
void ordo__sqlite_wal_shrink(sqlite3_file *f);

/* fault.c: SQLITE_OK, or the SQLite error the VFS returns for a call of
 * kind 0 (write), 1 (sync) or 2 (truncate) on path (may be NULL: a
 * temporary file) that a fault rule fails. */
#define ORDO__FAULT_WRITE 0
#define ORDO__FAULT_SYNC 1
#define ORDO__FAULT_TRUNCATE 2
int ordo__storage_fault_sqlite(int kind, const char *path);

#endif /* ORDO_STORAGE_SQLITE_WAL_H */

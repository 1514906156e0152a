/*
 * storage.h — the asynchronous storage backend interface, and the SQLite
 * backend that is ordo's embedded default.
 *
 * A backend stores opaque records for the wallet and the queue journal:
 * (category, name) -> value, plus tags. It never sees plaintext of
 * encrypted fields: the wallet encrypts category, name, tag names and values
 * before they get here, deterministically where they must stay searchable.
 *
 * Why asynchronous: the runtime never blocks a cheap thread on IO. A command
 * stage builds an ordo_storage_req, submits it, and returns
 * ORDO__STAGE_ASYNC; the backend runs it on threads it owns (SQLite: one
 * serial executor per database file) and calls req->done, from which the
 * command calls ordo__op_resume(). Threading is the backend's business.
 *
 * Versioned vtable, SQLite-style: `version` first, methods only appended,
 * each marked with the version that added it. The base struct ordo_storage
 * is the first member of a backend's own struct.
 */
#ifndef ORDO_STORAGE_H
#define ORDO_STORAGE_H

#include "ordo.h"
#include "runtime/runtime.h"

#include <stddef.h>

/* A byte string. Who owns data is said wherever the struct is used. */
typedef struct ordo_storage_buf {
  unsigned char *data;
  size_t len;
} ordo_storage_buf;

typedef struct ordo_storage_tag {
  ordo_storage_buf name;
  ordo_storage_buf value;
  int plaintext; /* stored as-is: range ($gt…) and $like work on it */
} ordo_storage_tag;

typedef struct ordo_storage_record {
  ordo_storage_buf category; /* the record's type */
  ordo_storage_buf name;
  ordo_storage_buf value;
  ordo_storage_tag *tags;
  size_t ntags;
} ordo_storage_record;

/* Wipe (sodium-style, not optimisable away) and free b's data; leaves *b
 * zeroed. What the storage and the wallet clear every buffer with. */
void ordo_storage_buf_clear(ordo_storage_buf *b);

/* Wipe (sodium-style, not optimisable away) and free every buffer of a
 * record the backend returned, and the tag array; leaves *r zeroed. */
void ordo_storage_record_clear(ordo_storage_record *r);

/* ---- queries over tags --------------------------------------------------- */

typedef enum ordo_storage_qop {
  ORDO_SQ_ALL = 0, /* every record of the category (an empty WQL query) */
  ORDO_SQ_AND,     /* children: all match (none: true) */
  ORDO_SQ_OR,      /* children: any matches (none: false) */
  ORDO_SQ_NOT,     /* one child: does not match */
  ORDO_SQ_EQ,      /* the record has tag `tag_name` with value == values[0] */
  ORDO_SQ_NEQ,     /* has the tag, with value != values[0] */
  ORDO_SQ_GT,      /* has the tag, value > values[0] (bytewise, memcmp order) */
  ORDO_SQ_GTE,
  ORDO_SQ_LT,
  ORDO_SQ_LTE,
  ORDO_SQ_LIKE,    /* has the tag, value LIKE values[0] (SQL: % and _) */
  ORDO_SQ_IN,      /* has the tag, value equal to one of values[0..n) */
  /* (added for the journal's checkpoints) on the record's name, not a
   * tag (tag_name and plaintext unused): name >= values[0], name <
   * values[0], bytewise (memcmp order; a shorter prefix sorts first) */
  ORDO_SQ_NAME_GTE,
  ORDO_SQ_NAME_LT
} ordo_storage_qop;

/*
 * A query tree. Every node, its children array, its values array and every
 * buffer are malloc'd and owned by the tree; ordo_storage_query_free frees
 * all of it. Leaves name one tag (tag_name, plaintext); GT/GTE/LT/LTE/LIKE
 * are only valid on plaintext tags (a backend refuses others with
 * ORDO_E_INVAL), since encrypted values have no order.
 */
typedef struct ordo_storage_query ordo_storage_query;
struct ordo_storage_query {
  ordo_storage_qop op;
  ordo_storage_buf tag_name; /* leaves */
  int plaintext;             /* leaves: which tag table */
  ordo_storage_buf *values;  /* leaves: 1 value, or n for IN */
  size_t nvalues;
  ordo_storage_query **children; /* AND / OR / NOT */
  size_t nchildren;
};

/* Free a tree (NULL accepted). Buffers are wiped first. */
void ordo_storage_query_free(ordo_storage_query *q);

/* ---- requests ------------------------------------------------------------ */

typedef enum ordo_storage_opcode {
  ORDO_STORAGE_ADD = 1,      /* insert rec; ORDO_E_RECORD_DUPLICATE if
                                (category, name) exists */
  ORDO_STORAGE_GET,          /* rec.category + rec.name -> result; with tags
                                and value; ORDO_E_RECORD_NOT_FOUND */
  ORDO_STORAGE_UPDATE_VALUE, /* set rec.value of (category, name) */
  ORDO_STORAGE_ADD_TAGS,     /* add rec.tags; a tag of the same name (and
                                plaintext flag) gets the new value */
  ORDO_STORAGE_REPLACE_TAGS, /* the record's tags become exactly rec.tags */
  ORDO_STORAGE_DELETE_TAGS,  /* remove the tags named in rec.tags (values
                                ignored); names not present are ignored */
  ORDO_STORAGE_DELETE,       /* remove (category, name) and its tags */
  ORDO_STORAGE_SCAN,         /* records of rec.category (every category
                                when rec.category.data is NULL: export)
                                matching query, in
                                insertion order, skipping offset, at most
                                limit (0: no limit) -> results/nresults;
                                count = total matches when want_count */
  ORDO_STORAGE_COUNT,        /* count of matches -> count */
  ORDO_STORAGE_BATCH,        /* batch[0..nbatch) applied in one transaction,
                                all or nothing (import). Each sub-request's
                                status is set; done is called only on the
                                outer request */
  ORDO_STORAGE_META_SET,     /* the database's own key/value metadata (wallet
                                key material, KDF parameters): rec.name ->
                                rec.value, overwriting */
  ORDO_STORAGE_META_GET,     /* rec.name -> result.value;
                                ORDO_E_NOT_FOUND if unset */
  ORDO_STORAGE_CLOSE,        /* runs after every request submitted before it;
                                after its done returns the ordo_storage is
                                freed and must not be used */
  ORDO_STORAGE_SHRINK,       /* (added for idle servers) give back the
                                memory the database keeps between
                                requests (page cache, write buffers); not
                                a write. A backend without such memory
                                just answers ORDO_OK */
  ORDO_STORAGE_DELETE_MATCHING /* (added for the journal's retention)
                                remove every record of rec.category (not
                                NULL) matching query (not NULL), and its
                                tags, in one statement -> count = how
                                many */
} ordo_storage_opcode;

/* Keys (added with the SQLite backend): a NULL category (data == NULL) means
 * "every category" for SCAN and COUNT only, and each SCAN result carries its
 * own category; an empty one (data != NULL, len 0) is a category like any
 * other. Every other record opcode needs category and name with data !=
 * NULL (META_* need name), and a NULL one is refused with ORDO_E_INVAL. */

typedef struct ordo_storage_req ordo_storage_req;
struct ordo_storage_req {
  /* In: set by the caller; borrowed until done is called. */
  ordo_storage_opcode opcode;
  ordo_storage_record rec;
  const ordo_storage_query *query; /* SCAN / COUNT; NULL means ORDO_SQ_ALL */
  unsigned long long offset;       /* SCAN */
  unsigned long long limit;        /* SCAN; 0 = no limit */
  int want_count;                  /* SCAN: also fill count */
  ordo_storage_req *batch;         /* BATCH: sub-requests (no CLOSE, BATCH) */
  size_t nbatch;
  /* Called exactly once, on a runtime thread, when the request is complete:
   * for a write only after its transaction has committed durably. It may
   * submit further requests; it must not block. Calling done is the
   * backend's last touch of req: done may free req (directly, or by
   * resuming an op whose state owns it). */
  void (*done)(ordo_storage_req *req);
  void *userdata;
  /* (added for the journal's write failures) ORDO_STORAGE_REQ_* bits; 0
   * for a plain request. NO_TAGS and BY_NAME are hints a backend may
   * ignore (the results are the same, in name order for BY_NAME);
   * CHAINED and CHAIN_RESET are not: the journal's crash safety rests on
   * them, so a backend the journal runs on must honour them. */
  unsigned flags;

  /* Out: set by the backend before done. The caller owns what is returned
   * and frees it with ordo_storage_req_clear_output. */
  int status;                  /* ORDO_OK or an ordo_err code */
  char *message;               /* malloc'd detail on error, or NULL */
  ordo_storage_record result;  /* GET, META_GET */
  ordo_storage_record *results;/* SCAN */
  size_t nresults;
  unsigned long long count;    /* COUNT, SCAN with want_count */

  /* Backend's own: do not touch. */
  ordo_storage_req *backend_next;
};

/* A write of a chain: the database's chained writes are a log, and once
 * one fails (alone, or with its whole transaction) every chained write
 * after it fails too, with ORDO_E_STORAGE and without being applied, so
 * that what reaches the disk is always a prefix of them, even if the
 * process dies before it can repair anything. Until a request with
 * ORDO_STORAGE_REQ_CHAIN_RESET runs. */
#define ORDO_STORAGE_REQ_CHAINED 1u
/* Clears the chain's failure before this request (any opcode) runs. */
#define ORDO_STORAGE_REQ_CHAIN_RESET 2u
/* SCAN: results without their tags (cheaper: the journal's replay reads
 * every record of its tail and needs none of them). */
#define ORDO_STORAGE_REQ_NO_TAGS 4u
/* SCAN: in name order instead of insertion order (the same for the
 * journal's log, whose names are its event numbers): with a name range
 * (ORDO_SQ_NAME_*) the records come from the (category, name) index
 * alone, without a walk of the category in insertion order. */
#define ORDO_STORAGE_REQ_BY_NAME 8u

/* Free and zero the output fields of req (status kept). */
void ordo_storage_req_clear_output(ordo_storage_req *req);

/* ---- backends ------------------------------------------------------------ */

typedef struct ordo_storage ordo_storage;
typedef struct ordo_storage_backend ordo_storage_backend;

/* The base of every open database: first member of the backend's struct. */
struct ordo_storage {
  const ordo_storage_backend *backend;
};

/* open flags */
#define ORDO_STORAGE_CREATE 1 /* create; ORDO_E_WALLET_EXISTS if it exists */
/* Added for benchmarks: no group commit. Every write request gets a
 * transaction of its own (BEGIN, the write, COMMIT, then its done), the
 * naive baseline that group commit is measured against. A backend without
 * group commit ignores it. */
#define ORDO_STORAGE_NO_GROUP_COMMIT 2
/* Close leaves the write-ahead log for the next open to read instead of
 * copying it into the database first (SQLite: no checkpoint on close).
 * For a log that is closed and reopened on a restart, where that copy
 * (up to the 64 MiB the WAL may hold, and an fsync) would be most of the
 * restart; the WAL is kept shorter (4 MiB) for the open that reads it,
 * and the database is the file and its -wal together. A backend without
 * a WAL ignores it. */
#define ORDO_STORAGE_KEEP_WAL 4
/* (added with the PostgreSQL backend) One process at a time: the open fails
 * with ORDO_E_STORAGE_BUSY while another holds the database open with this
 * flag, and holds it until close or until the process dies. The journal's
 * one-writer rule. SQLite's journal keeps its flock on PATH.lock instead
 * and ignores the flag; PostgreSQL holds a session advisory lock on a
 * connection of the database's own. */
#define ORDO_STORAGE_EXCLUSIVE 8

struct ordo_storage_backend {
  int version; /* 1 */
  const char *name;

  /* (v1) Open the database named by uri (SQLite: a file path). Blocking
   * (file IO): call it from a storage-class stage or a non-runtime thread.
   * ORDO_E_WALLET_NOT_FOUND when it does not exist and CREATE is not set,
   * ORDO_E_WALLET_EXISTS when it exists and CREATE is set, ORDO_E_STORAGE
   * otherwise; *errmsg (malloc'd, caller frees) then says why. */
  int (*open)(const ordo_storage_backend *be, ordo_ctx *ctx, const char *uri,
              int flags, ordo_storage **out, char **errmsg);

  /* (v1) Queue req and return at once: ORDO_OK, after which req->done will
   * be called exactly once; or an error (ORDO_E_INVAL for a malformed
   * request, ORDO_E_STATE after CLOSE was submitted), and done is not
   * called. Any thread. */
  int (*submit)(ordo_storage *st, ordo_storage_req *req);

  /* (v1) Remove the database at uri, which must not be open. Blocking.
   * ORDO_E_WALLET_NOT_FOUND if absent. */
  int (*destroy)(const ordo_storage_backend *be, const char *uri,
                 char **errmsg);
};

/* The SQLite backend: WAL, synchronous=FULL, one serial executor per open
 * database, cached prepared statements, group commit (every request queued
 * while a transaction runs goes into the next one; each write in its own
 * savepoint, or for ADD an undo of its own, so one failure fails only its
 * own request), busy timeout so two processes can share a file. */
extern const ordo_storage_backend ordo_storage_sqlite;

/*
 * The PostgreSQL backend (storage/postgres.c), on libpq. uri is a libpq
 * connection URL naming the server and database, and after '#' the name of
 * the store in it: "postgresql://user@host:5432/db#wallet/alice". Many
 * stores share one database (one schema, a store id column), and all
 * stores of a context share a bounded pool of connections to a server
 * ("?ordo_pool=N" or $ORDO_PG_POOL, default 4; stripped before libpq sees
 * the URL, as is "ordo_wait=S", how long a request waits for a server that
 * went away: default 30 s). A group of queued requests is one transaction
 * sent in pipeline mode (one round trip) on a non-blocking connection
 * driven by the database's storage executor; each done is called after
 * COMMIT is acknowledged. postgres_group.c's header comment says what it
 * promises when a connection dies.
 */
extern const ordo_storage_backend ordo_storage_postgres;

/* Whether uri names a PostgreSQL database ("postgres://" or
 * "postgresql://"): how the wallet and the journal choose a backend from a
 * path. */
int ordo_storage_is_postgres_uri(const char *uri);

/* Where a store named `name` of a data location lives: a directory gives
 * DATA/NAME.db (SQLite), a PostgreSQL database URL gives URL#NAME. How
 * `ordo serve --data` and `ordo submit --data` place their queue.
 * ORDO_E_INVAL (and the last error) when it does not fit in outlen or the
 * URL already names a store ('#'). */
int ordo__storage_data_path(const char *data, const char *name, char *out,
                            size_t outlen);

/* "user@host:port/db" for a PostgreSQL URL: what messages show of it (the
 * URL may hold a password). malloc'd; NULL when out of memory. */
char *ordo__storage_postgres_where(const char *url);

/* The names of the stores in url's database that start with prefix
 * ("wallet/": the wallets), in name order; *names (malloc'd, each name
 * too) and *n. Blocking. ORDO_E_STORAGE and *errmsg when the server
 * cannot be asked. */
int ordo__storage_postgres_stores(const char *url, const char *prefix,
                                  char ***names, size_t *n, char **errmsg);

/* (added for clusters) A plain, blocking libpq connection (a PGconn *,
 * given as void * so that this header needs no libpq) to url's database,
 * its schema made or migrated: for a module that runs SQL of its own on
 * ordo's tables (src/cluster). The caller PQfinish-es it. ORDO_E_STORAGE
 * and *errmsg (no password in it) when the server cannot be reached or
 * the schema is newer than this ordo. Blocking (at most ~10 s). */
int ordo__storage_postgres_connect(const char *url, void **out,
                                   char **errmsg);

/* Added for tests and benchmarks: how many transactions that held at least
 * one write request (BATCH included, failed writes included) the SQLite
 * database st has committed since it was opened. Group commit shows as a
 * number far below the number of writes; with ORDO_STORAGE_NO_GROUP_COMMIT
 * it equals the number of writes. 0 for a database of another backend. Any
 * thread, until CLOSE's done has been called. */
unsigned long long ordo__storage_sqlite_commits(ordo_storage *st);
/* The same count for a PostgreSQL database. */
unsigned long long ordo__storage_postgres_commits(ordo_storage *st);
/* How many of a PostgreSQL database's groups were sent while the one
 * before them was still in flight (postgres_group.c). */
unsigned long long ordo__storage_postgres_pipelined(ordo_storage *st);

/*
 * (added for clusters) Fence st behind the lease named after its store
 * (ordo_lease.name = the store's name, docs/postgres.md): from now on
 * every transaction the store runs (each pass of a group, and each
 * one-by-one request) first checks, under a share lock on the lease row,
 * that the lease is still at epoch; when it is not (another instance took
 * the lease over, or there is no lease row), the whole transaction fails
 * with ORDO_E_STORAGE_FENCED, and every request of it gets that code and
 * the server's message (which names the lease, both epochs and the owner).
 * Such a transaction is a failed one, not a lost connection: nothing of it
 * was applied, nothing goes again, and the chain rule (ORDO_STORAGE_REQ_
 * CHAINED) fails the chained writes behind a fenced one. The share lock
 * makes a takeover (an UPDATE of the lease row) wait until the fenced
 * transaction is over, so that a new owner never reads the store while a
 * stale owner's write is still on its way in.
 *
 * Call it once, after open and before any request is submitted (the epoch
 * is a plain field the store's drain reads). ORDO_OK; ORDO_E_INVAL for a
 * store of another backend, or an epoch above a bigint's range.
 */
int ordo__storage_postgres_fence(ordo_storage *st, unsigned long long epoch);

/* ---- for backends: what each checks the same way -------------------------- */

/* Whether op writes (reads, CLOSE and SHRINK do not). */
int ordo__storage_is_write(ordo_storage_opcode op);

/* Whether req is well formed (storage.h's rules for each opcode; BATCH
 * recursively, without nested BATCH, CLOSE or SHRINK): query trees at most
 * max_depth deep, SCAN/COUNT/DELETE_MATCHING needing at most max_params
 * parameters (3 plus one per tag name and value). */
int ordo__storage_req_valid(const ordo_storage_req *req, int max_depth,
                            size_t max_params);

/* Zero req's output fields (its BATCH sub-requests' too) before a backend
 * takes it: what a previous use left there is the caller's to have
 * cleared. */
void ordo__storage_req_reset_output(ordo_storage_req *req);

/* Replace req's message (out of memory leaves it NULL: the status still
 * says what happened). */
void ordo__storage_req_msg(ordo_storage_req *req, const char *fmt, ...)
    ORDO__PRINTF(2, 3);

/* Free what a request produced (its transaction then failed), keeping its
 * message. */
void ordo__storage_req_drop_output(ordo_storage_req *req);

/* An open/destroy error: *errmsg (when asked for: not NULL) gets the
 * text; returns code. */
int ordo__storage_set_err(char **errmsg, int code, const char *fmt, ...)
    ORDO__PRINTF(3, 4);

/* ---- fault injection (tests) --------------------------------------------- */

/*
 * Make the SQLite backend's files fail on purpose, to test what callers do
 * when the disk does. Every file the backend opens (database, WAL,
 * rollback journal, temporary files) goes through ordo's VFS
 * (sqlite_wal.c), which asks before each write, sync and truncate SQLite
 * makes; a call chosen to fail returns what SQLite expects of the OS layer:
 * ENOSPC as SQLITE_FULL, EIO as SQLITE_IOERR_WRITE, _FSYNC or _TRUNCATE.
 * A failing write writes nothing; a failing sync of a WAL first writes the
 * bytes ordo held back (as a real failed fsync leaves them in the file or
 * not) and syncs nothing. Reads never fail. Always compiled in; with no
 * rule set a call costs one atomic load.
 *
 * One rule per operation kind: setting a rule for "sync" replaces the
 * previous sync rule and leaves the write rule alone.
 */
#define ORDO_STORAGE_FAULT_WRITE 1u
#define ORDO_STORAGE_FAULT_SYNC 2u
#define ORDO_STORAGE_FAULT_TRUNCATE 4u
#define ORDO_STORAGE_FAULT_ALL 7u

typedef struct ordo_storage_fault {
  unsigned ops;            /* ORDO_STORAGE_FAULT_* bits: the calls it fails */
  int error;               /* EIO or ENOSPC (errno values) */
  unsigned long long next; /* > 0: fail the next `next` matching calls, then
                              the rule is spent */
  double p;                /* next == 0: fail each matching call with
                              probability p, in (0, 1] */
  unsigned long long seed; /* of the generator behind p: a seed repeats */
  const char *path;        /* NULL or "": every file; else only files whose
                              path contains it (copied) */
} ordo_storage_fault;

/* Install f's rule for each kind in f->ops. Any thread; storage threads
 * see it from their next call. ORDO_E_INVAL (message says why),
 * ORDO_E_NOMEM. */
int ordo_storage_fault_set(const ordo_storage_fault *f);

/* Install rules written as the environment variable ORDO_STORAGE_FAULT
 * is (all of them or, on a mistake, none: ORDO_E_INVAL and why):
 *   RULE[,RULE...]   RULE = OPS:ERROR[:next=N|:p=P][:seed=S][:path=SUB]
 *   OPS   write, sync, truncate or all, joined by '+' (write+sync)
 *   ERROR eio or enospc
 *   neither next nor p: every matching call fails; path= comes last and
 *   takes the rest of the rule, colons included.
 * e.g. "write:enospc:next=3", "sync:eio:p=0.01:seed=7:path=queue.db".
 * The variable itself is read once, at the first file operation (or the
 * first call here); a malformed one is reported on stderr
 * ("ordo: ORDO_STORAGE_FAULT='…' ignored: …") and ignored. */
int ordo_storage_fault_set_spec(const char *spec);

/* Remove every rule (the environment's too). Any thread. */
void ordo_storage_fault_clear(void);

/* How many calls have been failed on purpose since the process started. */
unsigned long long ordo_storage_fault_injected(void);

/* Look a built-in backend up by name ("sqlite", "postgres"); NULL if
 * unknown. */
const ordo_storage_backend *ordo_storage_backend_find(const char *name);

#endif /* ORDO_STORAGE_H */

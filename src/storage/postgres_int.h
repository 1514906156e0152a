/*
 * postgres_int.h — what the files of the PostgreSQL backend share.
 * Internal to src/storage (postgres.c, postgres_group.c, postgres_conn.c,
 * postgres_schema.c, postgres_sql.c).
 *
 *   postgres.c      the backend's interface: open/close/destroy, submit;
 *   postgres_group.c a group of requests as one pipelined transaction, its
 *                   answers read back, and the groups sent behind it;
 *   postgres_conn.c URLs, connections, the pools;
 *   postgres_schema.c the schema and its migrations;
 *   postgres_sql.c  what one request is in SQL: the statements it sends
 *                   (parameters in binary), query trees as SQL, and how its
 *                   results become the request's output.
 */
#ifndef ORDO_STORAGE_POSTGRES_INT_H
#define ORDO_STORAGE_POSTGRES_INT_H

#include "base/base.h"
#include "storage/drain.h"
#include "storage/storage.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Deepest accepted query tree: as for SQLite (the WQL parser makes at most
 * 128 levels), and well inside PostgreSQL's max_stack_depth. */
#define PG_QUERY_MAX_DEPTH 256
/* The protocol counts parameters in 16 bits. */
#define PG_MAX_PARAMS 65535

/* SQLSTATEs the schema's ordo_expect() raises: a strict write that found
 * no record, or an ADD that found one. */
#define PG_STATE_NOT_FOUND "OR001"
#define PG_STATE_DUPLICATE "OR002"
/* PS_GUARD's: the pass sent before it on the connection did not commit. */
#define PG_STATE_BEHIND_FAILED "OR003"
/* ordo_fence()'s (PS_FENCE): the store's lease has moved to a newer epoch
 * (another owner) since the store was fenced. */
#define PG_STATE_FENCED "OR004"

/* Statements each connection prepares when it is opened. A strict write raises instead of answering "0 rows", so
 * that its failure rolls back what came before it in the transaction
 * (BATCH's all-or-nothing, a chain's prefix rule): the _S variants. */
enum {
  PS_ADD,
  PS_ADD_S,
  PS_GET,
  PS_UPDATE,
  PS_UPDATE_S,
  PS_DELETE,
  PS_DELETE_S,
  PS_ADD_TAGS,
  PS_ADD_TAGS_S,
  PS_REPLACE_TAGS,
  PS_REPLACE_TAGS_S,
  PS_DELETE_TAGS,
  PS_DELETE_TAGS_S,
  PS_META_SET,
  PS_META_GET,
  PS_ADDS,   /* a run of ADDs as one statement (postgres_sql.c) */
  PS_GUARD,  /* a pass's first statement (postgres_group.c) */
  PS_FENCE,  /* a fenced store's pass: the lease's check, after the guard */
  PS_COUNT
};

/* One server connection. */
typedef struct pg_conn {
  PGconn *c;
  int doomed; /* the server said FATAL: it is closing the connection */
  /* PS_GUARD's tokens (postgres_group.c): the last one made, the one the
   * server holds once everything sent has committed, the one it holds
   * now. */
  unsigned long long tok_next, tok_sent, tok_committed;
  struct pg_conn *next; /* the pool's idle list */
} pg_conn;

/*
 * The connections of one context to one server and database. Stores
 * (wallets, journals) of the context on that database share it; it lives
 * while one of them is open. conninfo may hold a password: it goes to
 * libpq and nowhere else; messages name `where`.
 */
typedef struct pg_pool {
  struct pg_pool *next; /* the registry (postgres.c) */
  ordo_ctx *ctx;
  char *conninfo; /* the URL without ordo's parameters and the store name */
  char *where;    /* "user@host:port/db", for messages */
  int max;        /* connections at most (the exclusive ones apart) */
  unsigned wait_ms; /* how long a request waits for the server */
  int refs;         /* open stores; registry lock */
  int schema_ok;    /* the schema was checked on this server */

  pthread_mutex_t mu; /* guards the fields below */
  pthread_cond_t cv;  /* a connection came back */
  pg_conn *idle;
  int nopen;          /* connections open or being opened, idle or not */
  unsigned long long down_since_ms; /* wall clock; 0 while reachable */
  char last_error[256];
} pg_pool;

typedef struct pg_db {
  ordo_storage base; /* first: the interface casts between the two */
  ordo__storage_drain q; /* pending requests and the drain (drain.h) */
  pg_pool *pool;
  long long store; /* ordo_store.id */
  char *name;      /* the store's name (after '#') */
  pg_conn *own;    /* EXCLUSIVE: the connection holding the advisory lock;
                      every request of the store runs on it */
  char lock_lost[256]; /* set once own died: every request fails so */
  /* ordo__storage_postgres_fence: set before the first request, read by
   * the drain only (the submit's lock orders the two). */
  int fenced;
  unsigned long long fence_epoch;
  int chain_failed; /* a chained write failed (storage.h); drain only */
  atomic_ullong commits;
  atomic_ullong pipelined; /* groups sent behind one in flight */
} pg_db;

/* ---- parameters of one statement, in binary ------------------------------ */

typedef struct pg_params {
  int n, cap;
  const char **values;
  int *lengths;
  int *formats;
  Oid *types;
  char **owned; /* buffers made here (numbers, arrays); freed with the set */
  int nowned, capowned;
  int oom;
} pg_params;

/* A store URL taken apart (postgres_conn.c). */
typedef struct pg_url {
  char *conninfo; /* for libpq: no '#' part, no ordo_ parameters */
  char *name;     /* the store */
  char *where;    /* user@host:port/db, for messages */
  int pool;
  unsigned wait_ms;
} pg_url;

/* ---- small helpers ---------------------------------------------------------- */

/* ---- postgres_group.c ----------------------------------------------------------- */

/* The drain's group: run list (linked by backend_next) as one transaction,
 * and the groups that arrive meanwhile behind it; every done is called.
 * On db's executor only. */
void ordo__pg_run_group(pg_db *db, ordo_storage_req *list);

/* ---- postgres_conn.c ------------------------------------------------------------ */

/* Cut a libpq message at its first line. */
void ordo__pg_one_line(char *s);
/* Split a store URL into what libpq reads and what is ordo's (need_name:
 * the '#NAME' must be there); *err says what is wrong without repeating
 * the URL (it may hold a password). */
int ordo__pg_url_parse(const char *uri, int need_name, pg_url *u, char *err,
                       size_t errlen);
void ordo__pg_url_clear(pg_url *u);
/* poll() c's socket for events, at most ms: >0 ready, 0 timeout, <0 error. */
int ordo__pg_wait_socket(PGconn *c, short events, int ms);
/* A new connection to pool's server (schema checked once per pool, the
 * statements prepared, non-blocking); ORDO_E_STORAGE and *err if not. */
int ordo__pg_conn_open(pg_pool *pool, pg_conn **out, char *err, size_t errlen);
void ordo__pg_conn_close(pg_conn *pc);
/* The pool of ctx for u's server (made on first use; u's conninfo and
 * where move into it then), one reference more; NULL when out of memory. */
pg_pool *ordo__pg_pool_get(ordo_ctx *ctx, pg_url *u);
void ordo__pg_pool_put(pg_pool *p);
/* Record that connecting failed (err) or worked (NULL). */
void ordo__pg_pool_health(pg_pool *p, const char *err);
/* A live connection of the pool: idle, new (below max), or the next one
 * given back; connecting retried with a backoff until the pool's wait has
 * passed (then *err says since when the server is unreachable, and why). */
int ordo__pg_pool_acquire(pg_pool *p, pg_conn **out, char *err, size_t errlen);
/* Give pc back; broken: close it instead. */
void ordo__pg_pool_release(pg_pool *p, pg_conn *pc, int broken);
/* One blocking statement with text parameters; its result, or NULL and
 * *err (the server's primary message). */
PGresult *ordo__pg_exec_text(PGconn *c, const char *sql, int n,
                             const char *const *vals, char *err, size_t errlen);

/* ---- postgres_schema.c -------------------------------------------------------- */

/* Bring the server's schema to this build's version (creating it the first
 * time), under a transaction-scoped advisory lock so that processes racing
 * at their first open do it once. Blocking; on error *err says why. */
int ordo__pg_schema_ensure(PGconn *c, char *err, size_t errlen);

/* ---- postgres_sql.c ---------------------------------------------------------- */

/* Prepare every PS_* statement on c (named "ordo_<i>"). Blocking. */
int ordo__pg_prepare_all(PGconn *c, char *err, size_t errlen);

/* Queue req's statements on c (in pipeline mode): *nsent is how many
 * (prepares included: each answers as one result). strict: see PS_*. On
 * ORDO_E_NOMEM or a send failure req's message says why and *nsent is what
 * was queued before it. */
int ordo__pg_send(pg_db *db, pg_conn *pc, ordo_storage_req *req, int strict,
                  int *nsent);

/* The answer to the part-th statement req queued (prepares included):
 * sets req's output; returns ORDO_OK, or the request's failure (status and
 * message set on req; a BATCH's sub-request gets its own). A result that
 * is not the request's fault (aborted by an earlier failure, connection
 * gone) is for the caller to see first. */
int ordo__pg_take(pg_db *db, ordo_storage_req *req, int part, PGresult *res);

/* A run of n plain ADDs (no BATCH) as one statement, which fails as a
 * whole if one of the records exists; ORDO_E_NOMEM or ORDO_E_STORAGE
 * (libpq could not queue it). */
int ordo__pg_send_adds(pg_db *db, pg_conn *pc, ordo_storage_req *const *reqs,
                       size_t n);
/* Its answer (not an error): the adds it numbers were made. */
void ordo__pg_take_adds(ordo_storage_req *const *reqs, size_t n,
                        const PGresult *res);

/* How an error result maps to an ordo code (SQLSTATE classes). */
int ordo__pg_error_code(const PGresult *res);

/* Whether res reports that the connection or the server went away rather
 * than an error of the statement. */
int ordo__pg_is_conn_error(PGconn *c, const PGresult *res);

#endif /* ORDO_STORAGE_POSTGRES_INT_H */

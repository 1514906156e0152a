/*
 * bench_pg.c — what the benchmarks measure on PostgreSQL beside SQLite
 * (--backend postgres): the raw bound of a server, and many wallets opened
 * by many processes against one server.
 *
 * The raw bound is the server with nothing of ordo in the way: the same
 * number of rows, of the sizes ordo writes, into ordo's own tables, as
 * multi-row INSERTs in one transaction and one commit. Group commit is
 * measured against it as SQLite's group commit is against raw SQLite.
 */
#include "bench.h"
#include "storage/storage.h"

#include <arpa/inet.h>
#include <libpq-fe.h>
#include <signal.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Rows per INSERT statement: big statements, but not one of gigabytes. */
#define RAW_ROWS_PER_STATEMENT 5000

static void put32(unsigned char **p, uint32_t v) {
  v = htonl(v);
  memcpy(*p, &v, 4);
  *p += 4;
}

/* A one-dimensional bytea[] of n elements, in the binary array format, of
 * at most max_len bytes each: its buffer with the header written, *p after
 * it (the elements go there). */
static unsigned char *bytea_array_start(size_t n, size_t max_len,
                                        unsigned char **p) {
  unsigned char *d = malloc(20 + n * (4 + max_len));
  if (d == NULL)
    return NULL;
  *p = d;
  put32(p, 1);
  put32(p, 0);
  put32(p, 17); /* bytea */
  put32(p, (uint32_t)n);
  put32(p, 1);
  return d;
}

/* n random byte strings of len bytes as one bytea[] in the binary array
 * format; *out_len its size. */
static char *random_array(size_t n, size_t len, int *out_len) {
  unsigned char *p, *d = bytea_array_start(n, len, &p);
  if (d == NULL)
    return NULL;
  for (size_t i = 0; i < n; i++) {
    put32(&p, (uint32_t)len);
    randombytes_buf(p, len);
    p += len;
  }
  *out_len = (int)(p - d);
  return (char *)d;
}

static int pg_ok(PGconn *c, PGresult *r, const char *what) {
  ExecStatusType s = PQresultStatus(r);
  int ok = s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK;
  if (!ok)
    bench_error("PostgreSQL, %s: %s", what, PQerrorMessage(c));
  PQclear(r);
  return ok;
}

/* The batch ids "b<first>".."b<first + n - 1>" as one bytea[] in the
 * binary array format; *out_len its size. */
static char *id_array(unsigned long long first, size_t n, int *out_len) {
  unsigned char *p, *d = bytea_array_start(n, 24, &p);
  if (d == NULL)
    return NULL;
  for (size_t i = 0; i < n; i++) {
    char id[24];
    int len = snprintf(id, sizeof id, "b%llu", first + i);
    put32(&p, (uint32_t)len);
    memcpy(p, id, (size_t)len);
    p += len;
  }
  *out_len = (int)(p - d);
  return (char *)d;
}

int bench_pg_raw(const char *url, unsigned long long n, size_t name_len,
                 size_t value_len, bench_pg_tags tags, double *per_s) {
  char store[64];
  int rc = ORDO_E_STORAGE;
  int journal = tags == BENCH_PG_TAGS_JOURNAL;
  snprintf(store, sizeof store, "bench/raw/%ld", (long)getpid());
  PGconn *c = PQconnectdb(url);
  if (PQstatus(c) != CONNECTION_OK) {
    bench_error("PostgreSQL: %s", PQerrorMessage(c));
    PQfinish(c);
    return rc;
  }
  const char *sv[] = {store};
  PGresult *r = PQexecParams(c, "INSERT INTO ordo_store(name) VALUES ($1)"
                             " RETURNING id::text", 1, NULL, sv, NULL, NULL, 0);
  if (PQresultStatus(r) != PGRES_TUPLES_OK) {
    bench_error("PostgreSQL, the raw bound's store (is the ordo schema "
                "there?): %s", PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
    return rc;
  }
  char id[32];
  snprintf(id, sizeof id, "%s", PQgetvalue(r, 0, 0));
  PQclear(r);
  unsigned char cat[44], tname[46], tvalue[42];
  randombytes_buf(cat, sizeof cat);
  randombytes_buf(tname, sizeof tname);
  randombytes_buf(tvalue, sizeof tvalue);
  /* The rows' contents are made before the clock starts: names, values
   * and (journal) tag values per statement. */
  size_t nstmt = (size_t)((n + RAW_ROWS_PER_STATEMENT - 1) / RAW_ROWS_PER_STATEMENT);
  char **names = calloc(nstmt, sizeof *names), **values = calloc(nstmt, sizeof *values);
  char **ids = calloc(nstmt, sizeof *ids);
  int *nl = calloc(nstmt, sizeof *nl), *vl = calloc(nstmt, sizeof *vl);
  int *il = calloc(nstmt, sizeof *il);
  if (names == NULL || values == NULL || ids == NULL || nl == NULL ||
      vl == NULL || il == NULL)
    goto done;
  for (size_t k = 0; k < nstmt; k++) {
    size_t rows = k + 1 < nstmt ? RAW_ROWS_PER_STATEMENT
                                : (size_t)(n - k * RAW_ROWS_PER_STATEMENT);
    names[k] = random_array(rows, name_len, &nl[k]);
    values[k] = random_array(rows, value_len, &vl[k]);
    ids[k] = journal ? id_array(k * RAW_ROWS_PER_STATEMENT, rows, &il[k]) : NULL;
    if (names[k] == NULL || values[k] == NULL || (journal && ids[k] == NULL))
      goto done;
  }
  /* The journal's: each record's own id tag, matched to its record by
   * position as ordo's own multi-row INSERT does. */
  const char *sql =
      journal
          ? "WITH i AS (INSERT INTO ordo_item(store, category, name, value)"
            " SELECT $1::bigint, $2::bytea, t.n, t.v FROM unnest($3::bytea[],"
            " $4::bytea[]) WITH ORDINALITY AS t(n, v, o) ORDER BY o"
            " RETURNING id),"
            " m AS (SELECT id, row_number() OVER (ORDER BY id) AS o FROM i)"
            " INSERT INTO ordo_tag_plain(item, name, value)"
            " SELECT m.id, '\\x6964'::bytea, t.v FROM unnest($5::bytea[])"
            " WITH ORDINALITY AS t(v, o) JOIN m ON m.o = t.o"
          : "WITH i AS (INSERT INTO ordo_item(store, category, name, value)"
            " SELECT $1::bigint, $2::bytea, t.n, t.v FROM unnest($3::bytea[],"
            " $4::bytea[]) AS t(n, v) RETURNING id),"
            " e AS (INSERT INTO ordo_tag_enc(item, name, value)"
            " SELECT id, $5::bytea, $6::bytea FROM i)"
            " INSERT INTO ordo_tag_plain(item, name, value)"
            " SELECT id, '\\x7e697373756564'::bytea, '\\x32303236'::bytea FROM i";
  uint64_t start = bench_now_ns();
  if (!pg_ok(c, PQexec(c, "BEGIN"), "BEGIN"))
    goto done;
  for (size_t k = 0; k < nstmt; k++) {
    const char *v[6] = {id, journal ? "ev" : (const char *)cat, names[k],
                        values[k], journal ? ids[k] : (const char *)tname,
                        (const char *)tvalue};
    int len[6] = {0, journal ? 2 : (int)sizeof cat, nl[k], vl[k],
                  journal ? il[k] : (int)sizeof tname, sizeof tvalue};
    int fmt[6] = {0, 1, 1, 1, 1, 1};
    if (!pg_ok(c, PQexecParams(c, sql, journal ? 5 : 6, NULL, v, len, fmt, 0),
               "the raw bound's INSERT"))
      goto done;
  }
  if (!pg_ok(c, PQexec(c, "COMMIT"), "COMMIT"))
    goto done;
  *per_s = (double)n / ((double)(bench_now_ns() - start) / 1e9);
  rc = ORDO_OK;
done:
  (void)pg_ok(c, PQexecParams(c, "DELETE FROM ordo_store WHERE name = $1", 1,
                              NULL, sv, NULL, NULL, 0), "cleaning up");
  for (size_t k = 0; k < nstmt; k++) {
    if (names != NULL)
      free(names[k]);
    if (values != NULL)
      free(values[k]);
    if (ids != NULL)
      free(ids[k]);
  }
  free(names);
  free(values);
  free(ids);
  free(nl);
  free(vl);
  free(il);
  PQfinish(c);
  return rc;
}

/* Connections the server has to url's database right now; -1 if it cannot
 * say. */
static int pg_connections(const char *url, int *max) {
  PGconn *c = PQconnectdb(url);
  int n = -1;
  if (PQstatus(c) == CONNECTION_OK) {
    PGresult *r = PQexec(c, "SELECT count(*)::int - 1,"
                            " current_setting('max_connections')::int"
                            " FROM pg_stat_activity WHERE backend_type ="
                            " 'client backend'");
    if (PQresultStatus(r) == PGRES_TUPLES_OK) {
      n = atoi(PQgetvalue(r, 0, 0));
      *max = atoi(PQgetvalue(r, 0, 1));
    }
    PQclear(r);
  }
  PQfinish(c);
  return n;
}

/* One child: open `per` wallets of its own, add a record to each, count it
 * back, hold them open until told to stop (stdin closes), then delete them.
 * Its exit status: 0 when every step worked. */
static int child_wallets(const char *url, int child, int per, int hold_fd,
                         int ready_fd) {
  ordo_ctx *ctx = ordo_ctx_new(NULL);
  int fail = ctx == NULL;
  char cfg[1024], id[64];
  static const char creds[] =
      "{\"key\":\"0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e"
      "1f20\",\"key_derivation_method\":\"raw\"}";
  for (int w = 0; w < per && !fail; w++) {
    snprintf(id, sizeof id, "bench-%ld-%d-%d", (long)getppid(), child, w);
    snprintf(cfg, sizeof cfg, "{\"id\":\"%s\",\"path\":\"%s\"}", id, url);
    ordo_op *ops[3] = {ordo_wallet_create(ctx, cfg, creds),
                       NULL, NULL};
    fail |= ordo_op_wait(ops[0], -1) != ORDO_OK;
    ordo_op_release(ops[0]);
    ops[1] = fail ? NULL : ordo_wallet_open(ctx, cfg, creds);
    fail |= ops[1] == NULL || ordo_op_wait(ops[1], -1) != ORDO_OK;
    ordo_op_release(ops[1]);
    ops[2] = fail ? NULL : ordo_record_add(ctx, id, "t", "n", "v", NULL);
    fail |= ops[2] == NULL || ordo_op_wait(ops[2], -1) != ORDO_OK;
    ordo_op_release(ops[2]);
  }
  char b = fail ? '0' : '1';
  if (write(ready_fd, &b, 1) != 1)
    fail = 1;
  while (read(hold_fd, &b, 1) > 0)
    ; /* the parent counts connections while all are open */
  for (int w = 0; w < per && ctx != NULL; w++) {
    snprintf(id, sizeof id, "bench-%ld-%d-%d", (long)getppid(), child, w);
    snprintf(cfg, sizeof cfg, "{\"id\":\"%s\",\"path\":\"%s\"}", id, url);
    ordo_op *op = ordo_wallet_close(ctx, id);
    (void)ordo_op_wait(op, -1);
    ordo_op_release(op);
    op = ordo_wallet_delete(ctx, cfg, creds);
    fail |= ordo_op_wait(op, -1) != ORDO_OK;
    ordo_op_release(op);
  }
  ordo_ctx_free(ctx);
  return fail;
}

int bench_pg_many_wallets(const char *url, int procs, int per,
                          int *opened, int *peak, int *max_conn) {
  int hold[2], ready[2];
  pid_t *pids = calloc((size_t)procs, sizeof *pids);
  *opened = 0;
  *peak = 0;
  if (pids == NULL || pipe(hold) != 0) {
    free(pids);
    return ORDO_E_SYSTEM;
  }
  if (pipe(ready) != 0) {
    close(hold[0]);
    close(hold[1]);
    free(pids);
    return ORDO_E_SYSTEM;
  }
  fflush(NULL);
  for (int i = 0; i < procs; i++) {
    /* Forked before this process has any context (no threads). */
    if ((pids[i] = fork()) == 0) {
      close(hold[1]);
      close(ready[0]);
      _exit(child_wallets(url, i, per, hold[0], ready[1]));
    }
  }
  close(hold[0]);
  close(ready[1]);
  /* Once every child has its wallets open (or gave up), count what the
   * server holds: the children's pools, all at once. */
  char b;
  for (int got = 0; got < procs && read(ready[0], &b, 1) == 1; got++)
    ;
  close(ready[0]);
  for (int k = 0; k < 5; k++) {
    int n = pg_connections(url, max_conn);
    if (n > *peak)
      *peak = n;
  }
  close(hold[1]); /* the children close and delete theirs */
  int rc = ORDO_OK;
  for (int i = 0; i < procs; i++) {
    int status = 0;
    if (pids[i] <= 0 || waitpid(pids[i], &status, 0) != pids[i] ||
        !WIFEXITED(status) || WEXITSTATUS(status) != 0)
      rc = ORDO_E_STORAGE;
    else
      *opened += per;
  }
  free(pids);
  return rc;
}

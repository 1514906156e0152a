/*
 * inbox.c — the shared queue's side of a batch: enqueue (any instance),
 * the pump that moves a service's inbox into the journal of its owner, and
 * the lookups the HTTP API answers from (where a batch is, every lease, a payload).
 *
 * A batch's body is the journal's spec without id and service (columns of
 * their own): a JSON object {"reads","writes","deps","ledger_id"} and,
 * when there is a payload, a NUL and the payload. It stays after the
 * owner's journal has the batch (moved): `ordo verify --cluster` reads the
 * signed batches from it, and a batch's journal may be another instance's
 * by then.
 */
#include "base/json_array.h"
#include "cluster/internal.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- connections ------------------------------------------------------------ */

int ordo__cl_conn_get(ordo_cluster *cl, PGconn **out) {
  void *c = NULL;
  char *err = NULL;
  pthread_mutex_lock(&cl->pool_mu);
  *out = cl->nidle > 0 ? cl->idle[--cl->nidle] : NULL;
  pthread_mutex_unlock(&cl->pool_mu);
  if (*out != NULL)
    return ORDO_OK;
  int rc = ordo__storage_postgres_connect(cl->url, &c, &err);
  if (rc != ORDO_OK) {
    ordo__set_last_error(rc, "shared queue: %s", err != NULL ? err : "?");
    free(err);
    return rc;
  }
  *out = c;
  return ORDO_OK;
}

void ordo__cl_conn_put(ordo_cluster *cl, PGconn *c, int broken) {
  if (c == NULL)
    return;
  if (!broken && PQstatus(c) == CONNECTION_OK &&
      PQtransactionStatus(c) == PQTRANS_IDLE) {
    pthread_mutex_lock(&cl->pool_mu);
    if (cl->nidle < CL_POOL_MAX) {
      cl->idle[cl->nidle++] = c;
      c = NULL;
    }
    pthread_mutex_unlock(&cl->pool_mu);
  }
  if (c != NULL)
    PQfinish(c);
}

static PGresult *exec_bin(PGconn *c, const char *sql, int n,
                          const char *const *vals, const int *lens,
                          const int *fmts, int result_binary, char *err,
                          size_t errlen, char state[6]) {
  state[0] = 0;
  PGresult *r = PQexecParams(c, sql, n, NULL, vals, lens, fmts, result_binary);
  ExecStatusType s = PQresultStatus(r);
  if (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK)
    return r;
  const char *st = r != NULL ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
  const char *msg = r != NULL ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY)
                              : NULL;
  snprintf(state, 6, "%s", st != NULL ? st : "");
  snprintf(err, errlen, "%s", msg != NULL ? msg : PQerrorMessage(c));
  for (char *p = err; *p; p++)
    if (*p == '\n')
      *p = ' ';
  PQclear(r);
  return NULL;
}

PGresult *ordo__cl_exec(PGconn *c, const char *sql, int n,
                        const char *const *vals, char *err, size_t errlen,
                        char state[6]) {
  return exec_bin(c, sql, n, vals, NULL, NULL, 0, err, errlen, state);
}

static int exec_ok(PGconn *c, const char *sql, char *err, size_t errlen) {
  char state[6];
  PGresult *r = ordo__cl_exec(c, sql, 0, NULL, err, errlen, state);
  PQclear(r);
  return r != NULL;
}

/* ---- the body of a batch ---------------------------------------------------- */

unsigned char *ordo__cl_body_encode(const ordo_queue_batch_spec *sp,
                                    size_t *len, const char **why) {
  json_t *o = json_pack("{s:o, s:o, s:o}", "reads",
                        ordo__json_str_array(sp->reads, sp->nreads), "writes",
                        ordo__json_str_array(sp->writes, sp->nwrites), "deps",
                        ordo__json_str_array(sp->deps, sp->ndeps));
  *why = "out of memory";
  if (o != NULL && sp->ledger_id != NULL &&
      json_object_set_new(o, "ledger_id", json_string(sp->ledger_id)) != 0) {
    json_decref(o);
    o = NULL;
  }
  if (o == NULL) {
    *why = "an address, dep or ledger id is not UTF-8";
    return NULL;
  }
  char *text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
  json_decref(o);
  if (text == NULL)
    return NULL;
  size_t tl = strlen(text);
  *len = tl + (sp->payload_len > 0 ? 1 + sp->payload_len : 0);
  unsigned char *b = malloc(*len + 1);
  if (b != NULL) {
    memcpy(b, text, tl);
    if (sp->payload_len > 0) {
      b[tl] = 0;
      memcpy(b + tl + 1, sp->payload, sp->payload_len);
    }
  }
  free(text);
  return b;
}

int ordo__cl_body_decode(const unsigned char *b, size_t len, const char *id,
                         const char *service, ordo_queue_batch_spec *sp,
                         ordo__cl_body *keep) {
  size_t tl = strnlen((const char *)b, len);
  json_error_t je;
  memset(sp, 0, sizeof(*sp));
  keep->json = json_loadb((const char *)b, tl, 0, &je);
  keep->strs = NULL;
  json_t *rd = json_object_get(keep->json, "reads"),
         *wr = json_object_get(keep->json, "writes"),
         *dp = json_object_get(keep->json, "deps"),
         *li = json_object_get(keep->json, "ledger_id");
  if (!json_is_array(rd) || !json_is_array(wr) || !json_is_array(dp) ||
      (li != NULL && !json_is_string(li)))
    return ORDO_E_INVAL;
  size_t n = json_array_size(rd) + json_array_size(wr) + json_array_size(dp);
  keep->strs = calloc(n + 1, sizeof(*keep->strs));
  if (keep->strs == NULL)
    return ORDO_E_NOMEM;
  json_t *arrs[3] = {rd, wr, dp};
  size_t k = 0;
  for (int a = 0; a < 3; a++)
    for (size_t i = 0; i < json_array_size(arrs[a]); i++) {
      keep->strs[k] = json_string_value(json_array_get(arrs[a], i));
      if (keep->strs[k++] == NULL)
        return ORDO_E_INVAL;
    }
  sp->id = id;
  sp->service = service;
  sp->reads = keep->strs;
  sp->nreads = json_array_size(rd);
  sp->writes = keep->strs + sp->nreads;
  sp->nwrites = json_array_size(wr);
  sp->deps = keep->strs + sp->nreads + sp->nwrites;
  sp->ndeps = json_array_size(dp);
  sp->ledger_id = json_string_value(li);
  if (tl < len) {
    sp->payload = b + tl + 1;
    sp->payload_len = len - tl - 1;
  }
  return ORDO_OK;
}

void ordo__cl_body_clear(ordo__cl_body *k) {
  json_decref(k->json);
  free(k->strs);
}

/* ---- enqueue ----------------------------------------------------------------- */

typedef struct svc_count {
  const char *service;
  size_t n;
  uint64_t next; /* the next seq to give in this call */
} svc_count;

static int svc_cmp(const void *a, const void *b) {
  return strcmp(((const svc_count *)a)->service,
                ((const svc_count *)b)->service);
}

/* The services of specs, each once, in name order (the order their
 * counter rows are locked in, so two enqueues never wait on each other
 * in a cycle over them). */
static svc_count *count_services(const ordo_queue_batch_spec *specs, size_t n,
                                 size_t *nsvc) {
  svc_count *v = calloc(n, sizeof(*v));
  size_t m = 0;
  if (v == NULL)
    return NULL;
  for (size_t i = 0; i < n; i++) {
    size_t k = 0;
    while (k < m && strcmp(v[k].service, specs[i].service) != 0)
      k++;
    if (k == m)
      v[m++].service = specs[i].service;
    v[k].n++;
  }
  qsort(v, m, sizeof(*v), svc_cmp);
  *nsvc = m;
  return v;
}

static svc_count *svc_find(svc_count *v, size_t m, const char *service) {
  svc_count key = {.service = service};
  return bsearch(&key, v, m, sizeof(*v), svc_cmp);
}

/* One try of the enqueue's transaction. ORDO_OK; ORDO_E_EXISTS (*bad);
 * ORDO_E_RETRY for a deadlock or serialization failure (try again);
 * ORDO_E_STORAGE (err). */
#define CL_RETRY (-1000)
static int enqueue_try(ordo_cluster *cl, PGconn *c,
                       const ordo_queue_batch_spec *specs, size_t n,
                       unsigned char *const *bodies, const size_t *blens,
                       const unsigned char (*digests)[32],
                       ordo_journal_enqueued *out, size_t *bad, char *err,
                       size_t errlen) {
  char state[6], num[24];
  size_t m = 0;
  svc_count *sv = count_services(specs, n, &m);
  if (sv == NULL)
    return ORDO_E_NOMEM;
  int rc = ORDO_OK;
  if (!exec_ok(c, "BEGIN", err, errlen)) {
    free(sv);
    return ORDO_E_STORAGE;
  }
  for (size_t k = 0; k < m && rc == ORDO_OK; k++) {
    char *lease = ordo__cl_lease_name(cl, sv[k].service);
    if (lease == NULL) {
      rc = ORDO_E_NOMEM;
      break;
    }
    snprintf(num, sizeof num, "%zu", sv[k].n);
    const char *v[4] = {cl->queue, sv[k].service, lease, num};
    PGresult *r = ordo__cl_exec(
        c,
        "INSERT INTO ordo_cluster_seq(queue, service, lease, next)"
        " VALUES ($1, $2, $3, $4::bigint) ON CONFLICT (queue, service) DO"
        " UPDATE SET next = ordo_cluster_seq.next + EXCLUDED.next"
        " RETURNING next, xmax = 0",
        4, v, err, errlen, state);
    if (r == NULL) {
      rc = strcmp(state, "40P01") == 0 || strcmp(state, "40001") == 0
               ? CL_RETRY : ORDO_E_STORAGE;
      free(lease);
      break;
    }
    sv[k].next = strtoull(PQgetvalue(r, 0, 0), NULL, 10) - sv[k].n + 1;
    int fresh = PQgetvalue(r, 0, 1)[0] == 't';
    PQclear(r);
    if (fresh) {
      /* A new service: its lease row, free for whoever takes it. */
      const char *lv[1] = {lease};
      r = ordo__cl_exec(c, "INSERT INTO ordo_lease(name) VALUES ($1)"
                        " ON CONFLICT (name) DO NOTHING", 1, lv, err, errlen,
                        state);
      if (r == NULL)
        rc = ORDO_E_STORAGE;
      PQclear(r);
    }
    free(lease);
  }
  for (size_t i = 0; i < n && rc == ORDO_OK; i++) {
    svc_count *s = svc_find(sv, m, specs[i].service);
    uint64_t seq = s->next++;
    snprintf(num, sizeof num, "%llu", (unsigned long long)seq);
    const char *v[6] = {cl->queue, specs[i].id, specs[i].service, num,
                        (const char *)digests[i], (const char *)bodies[i]};
    int lens[6] = {0, 0, 0, 0, 32, (int)blens[i]};
    int fmts[6] = {0, 0, 0, 0, 1, 1};
    PGresult *r = exec_bin(
        c,
        "INSERT INTO ordo_cluster_batch(queue, id, service, seq, digest, body)"
        " VALUES ($1, $2, $3, $4::bigint, $5, $6) ON CONFLICT (queue, id) DO"
        " NOTHING RETURNING seq",
        6, v, lens, fmts, 0, err, errlen, state);
    if (r == NULL) {
      rc = strcmp(state, "40P01") == 0 || strcmp(state, "40001") == 0
               ? CL_RETRY : ORDO_E_STORAGE;
      break;
    }
    int inserted = PQntuples(r) == 1;
    PQclear(r);
    out[i].seq = seq;
    out[i].already = 0;
    out[i].state = ORDO_QUEUE_QUEUED;
    if (inserted)
      continue;
    /* There already: the same batch (a retry) or another under its id. */
    const char *lv[2] = {cl->queue, specs[i].id};
    r = exec_bin(c, "SELECT service, seq, digest FROM ordo_cluster_batch"
                 " WHERE queue = $1 AND id = $2", 2, lv, NULL, NULL, 1, err,
                 errlen, state);
    if (r == NULL || PQntuples(r) != 1) {
      if (r != NULL)
        snprintf(err, errlen, "batch %s vanished during the enqueue",
                 specs[i].id);
      PQclear(r);
      rc = ORDO_E_STORAGE;
      break;
    }
    int same = PQgetlength(r, 0, 2) == 32 &&
               memcmp(PQgetvalue(r, 0, 2), digests[i], 32) == 0 &&
               (size_t)PQgetlength(r, 0, 0) == strlen(specs[i].service) &&
               memcmp(PQgetvalue(r, 0, 0), specs[i].service,
                      strlen(specs[i].service)) == 0;
    if (same) {
      uint64_t be = 0;
      memcpy(&be, PQgetvalue(r, 0, 1), 8);
      out[i].seq = __builtin_bswap64(be);
      out[i].already = 1;
    } else {
      *bad = i;
      snprintf(err, errlen, "batch %s was enqueued before with other "
               "content", specs[i].id);
      rc = ORDO_E_EXISTS;
    }
    PQclear(r);
  }
  /* The owners of the services hear of it when this commits. */
  for (size_t k = 0; k < m && rc == ORDO_OK; k++) {
    char payload[256];
    snprintf(payload, sizeof payload, "%zu:%s%s", strlen(cl->queue),
             cl->queue, sv[k].service);
    const char *v[1] = {payload};
    PGresult *r = ordo__cl_exec(c, "SELECT pg_notify('" CL_NOTIFY_CHANNEL
                                "', $1)", 1, v, err, errlen, state);
    if (r == NULL)
      rc = ORDO_E_STORAGE;
    PQclear(r);
  }
  free(sv);
  if (rc == ORDO_OK && !exec_ok(c, "COMMIT", err, errlen))
    rc = ORDO_E_STORAGE;
  if (rc != ORDO_OK) {
    char e2[64];
    (void)exec_ok(c, "ROLLBACK", e2, sizeof e2);
  }
  return rc;
}

int ordo_cluster_enqueue(ordo_cluster *cl, const ordo_queue_batch_spec *specs,
                         size_t n, ordo_journal_enqueued *out, size_t *bad) {
  char err[512] = "";
  const char *why = NULL;
  int rc = ORDO_OK;
  *bad = (size_t)-1;
  if (n == 0)
    return ORDO_OK;
  unsigned char **bodies = calloc(n, sizeof(*bodies));
  size_t *blens = calloc(n, sizeof(*blens));
  unsigned char(*digests)[32] = calloc(n, sizeof(*digests));
  if (bodies == NULL || blens == NULL || digests == NULL) {
    rc = ORDO_E_NOMEM;
    goto out;
  }
  for (size_t i = 0; i < n; i++) {
    const ordo_queue_batch_spec *sp = &specs[i];
    if (sp->id == NULL || sp->id[0] == 0 || sp->service == NULL ||
        sp->service[0] == 0 || strlen(sp->service) > ORDO_BATCH_SERVICE_MAX ||
        strlen(sp->id) > ORDO_BATCH_ID_MAX) {
      *bad = i;
      rc = ordo__set_last_error(ORDO_E_INVAL, "batch %zu: id and service "
                                "must be 1..%d and 1..%d bytes", i,
                                ORDO_BATCH_ID_MAX, ORDO_BATCH_SERVICE_MAX);
      goto out;
    }
    for (size_t d = 0; d < sp->ndeps; d++)
      if (strcmp(sp->deps[d], sp->id) == 0) {
        *bad = i;
        rc = ordo__set_last_error(ORDO_E_INVAL, "batch %s depends on "
                                  "itself", sp->id);
        goto out;
      }
    if ((bodies[i] = ordo__cl_body_encode(sp, &blens[i], &why)) == NULL) {
      *bad = i;
      rc = ordo__set_last_error(ORDO_E_INVAL, "batch %s: %s", sp->id, why);
      goto out;
    }
    ordo_journal_content_digest(sp, digests[i]);
  }
  for (int attempt = 0; attempt < 5; attempt++) {
    PGconn *c = NULL;
    if ((rc = ordo__cl_conn_get(cl, &c)) != ORDO_OK)
      goto out;
    rc = enqueue_try(cl, c, specs, n, bodies, blens,
                     (const unsigned char(*)[32])digests, out, bad, err,
                     sizeof err);
    ordo__cl_conn_put(cl, c, rc == ORDO_E_STORAGE);
    if (rc != CL_RETRY)
      break;
  }
  if (rc == CL_RETRY)
    rc = ORDO_E_STORAGE;
  if (rc == ORDO_OK) {
    pthread_mutex_lock(&cl->mu);
    cl->stats.enqueued += n;
    pthread_mutex_unlock(&cl->mu);
  } else if (rc == ORDO_E_STORAGE) {
    ordo__set_last_error(rc, "shared queue: the enqueue did not commit: %s",
                         err);
  } else if (rc == ORDO_E_EXISTS) {
    ordo__set_last_error(rc, "%s", err);
  }
out:
  for (size_t i = 0; bodies != NULL && i < n; i++)
    free(bodies[i]);
  free(bodies);
  free(blens);
  free(digests);
  return rc;
}

/* ---- the pump ------------------------------------------------------------------ */

/*
 * Move what the inbox holds of s's service past s->cursor into s's
 * journal, in seq order, and mark them moved once the journal has them
 * durable. The counter row makes seqs commit in order (cluster.h),
 * so a row past the cursor never appears later below it. A batch the
 * journal refuses (its signed batch queued under another id) is dropped
 * from the inbox with a line on stderr: it never entered this queue.
 */
static int pump_page(ordo_cluster *cl, ordo_cluster_shard *s, PGconn *c,
                     int *more) {
  char err[512], state[6], cur[24], lim[24];
  *more = 0;
  snprintf(cur, sizeof cur, "%llu", (unsigned long long)s->cursor);
  snprintf(lim, sizeof lim, "%d", CL_PUMP_ROWS);
  const char *v[4] = {cl->queue, s->service, cur, lim};
  PGresult *r = exec_bin(c, "SELECT id, seq, body FROM ordo_cluster_batch"
                         " WHERE queue = $1 AND service = $2 AND NOT moved"
                         " AND seq > $3::bigint ORDER BY seq LIMIT"
                         " $4::int", 4, v, NULL, NULL, 1, err, sizeof err,
                         state);
  if (r == NULL) {
    ordo__cl_error(cl, "reading the inbox of %s: %s", s->service, err);
    return ORDO_E_STORAGE;
  }
  int rows = PQntuples(r);
  if (rows == 0) {
    PQclear(r);
    return ORDO_OK;
  }
  ordo_queue_batch_spec *specs = calloc((size_t)rows, sizeof(*specs));
  ordo__cl_body *keep = calloc((size_t)rows, sizeof(*keep));
  char **ids = calloc((size_t)rows, sizeof(*ids));
  ordo_journal_enqueued *got = calloc((size_t)rows, sizeof(*got));
  uint64_t last = s->cursor;
  int rc = specs && keep && ids && got ? ORDO_OK : ORDO_E_NOMEM;
  size_t n = 0;
  for (int k = 0; k < rows && rc == ORDO_OK; k++) {
    uint64_t be;
    memcpy(&be, PQgetvalue(r, k, 1), 8);
    last = __builtin_bswap64(be);
    ids[k] = strndup(PQgetvalue(r, k, 0), (size_t)PQgetlength(r, k, 0));
    if (ids[k] == NULL) {
      rc = ORDO_E_NOMEM;
      break;
    }
    int d = ordo__cl_body_decode((const unsigned char *)PQgetvalue(r, k, 2),
                        (size_t)PQgetlength(r, k, 2), ids[k], s->service,
                        &specs[n], &keep[n]);
    if (d == ORDO_E_NOMEM) {
      rc = d;
      break;
    }
    if (d != ORDO_OK) {
      ordo__cl_log("ordo cluster: batch %s of %s: its inbox body is not "
              "one ordo wrote; dropped\n", ids[k], s->service);
      ordo__cl_body_clear(&keep[n]);
      continue;
    }
    n++;
  }
  /* The journal's one transaction for the page; a spec it refuses goes,
   * and the rest again, until none is refused. */
  size_t from = 0;
  while (rc == ORDO_OK && from < n) {
    size_t badi = (size_t)-1;
    ordo_op *op = ordo_journal_enqueue_typed(s->j, specs + from, n - from,
                                             got + from, &badi);
    if (op == NULL) {
      rc = ORDO_E_NOMEM;
      break;
    }
    int orc = ordo_op_wait(op, -1);
    const char *msg = ordo_op_message(op);
    char keepmsg[300];
    snprintf(keepmsg, sizeof keepmsg, "%s", msg != NULL ? msg : "");
    ordo_op_release(op);
    if (orc == ORDO_OK)
      break;
    if ((orc == ORDO_E_EXISTS || orc == ORDO_E_INVAL) &&
        badi != (size_t)-1 && from + badi < n) {
      size_t b = from + badi;
      ordo__cl_log("ordo cluster: batch %s of %s refused by the queue: "
              "%s; dropped from the inbox\n", specs[b].id, s->service,
              keepmsg);
      /* Enqueue those before it, then go on after it. */
      if (badi > 0) {
        op = ordo_journal_enqueue_typed(s->j, specs + from, badi, got + from,
                                        &badi);
        orc = op != NULL ? ordo_op_wait(op, -1) : ORDO_E_NOMEM;
        ordo_op_release(op);
        if (orc != ORDO_OK) {
          rc = orc;
          break;
        }
      }
      from = b + 1;
      continue;
    }
    ordo__cl_error(cl, "moving the inbox of %s into its journal: %s",
                   s->service, keepmsg);
    rc = orc;
  }
  if (rc == ORDO_OK) {
    char lastv[24];
    snprintf(lastv, sizeof lastv, "%llu", (unsigned long long)last);
    const char *u[3] = {cl->queue, s->service, lastv};
    PGresult *x = ordo__cl_exec(c, "UPDATE ordo_cluster_batch SET moved ="
                                " true WHERE queue = $1 AND service = $2 AND"
                                " NOT moved AND seq <= $3::bigint",
                                3, u, err, sizeof err, state);
    /* Not marked: the journal has them anyway; the next pump finds them
     * there (the same content: nothing new). */
    PQclear(x);
    s->cursor = last;
    pthread_mutex_lock(&cl->mu);
    cl->stats.pumped += n;
    pthread_mutex_unlock(&cl->mu);
    *more = rows == CL_PUMP_ROWS;
    if (n > 0)
      ordo__cl_changed(cl); /* whoever drives the journal: batches came */
  }
  for (size_t k = 0; keep != NULL && k < n; k++)
    ordo__cl_body_clear(&keep[k]);
  for (int k = 0; ids != NULL && k < rows; k++)
    free(ids[k]);
  free(specs);
  free(keep);
  free(ids);
  free(got);
  PQclear(r);
  return rc;
}

int ordo__cl_pump_on(ordo_cluster *cl, ordo_cluster_shard *s, PGconn *c) {
  int rc = ORDO_OK, more = 1;
  if (c == NULL)
    return ORDO_E_STORAGE;
  pthread_mutex_lock(&s->pump_mu);
  while (rc == ORDO_OK && more && ordo_cluster_shard_live(s))
    rc = pump_page(cl, s, c, &more);
  pthread_mutex_unlock(&s->pump_mu);
  return rc;
}

int ordo_cluster_shard_pump(ordo_cluster *cl, ordo_cluster_shard *s) {
  PGconn *c = NULL;
  int rc = ordo__cl_conn_get(cl, &c);
  if (rc != ORDO_OK)
    return rc;
  rc = ordo__cl_pump_on(cl, s, c);
  ordo__cl_conn_put(cl, c, rc == ORDO_E_STORAGE);
  return rc;
}

void ordo__cl_notifications(ordo_cluster *cl) {
  if (cl->lc == NULL || !PQconsumeInput(cl->lc))
    return;
  PGnotify *nf;
  size_t ql = strlen(cl->queue);
  while ((nf = PQnotifies(cl->lc)) != NULL) {
    char *colon = strchr(nf->extra, ':');
    if (colon != NULL && strtoul(nf->extra, NULL, 10) == ql &&
        strncmp(colon + 1, cl->queue, ql) == 0) {
      ordo_cluster_shard *s = ordo_cluster_shard_get(cl, colon + 1 + ql);
      if (s != NULL) {
        ordo__cl_pump_kick(cl, s, 0);
        ordo_cluster_shard_put(s);
      }
    }
    PQfreemem(nf);
  }
}

void ordo__cl_pump_kick(ordo_cluster *cl, ordo_cluster_shard *s, int all) {
  pthread_mutex_lock(&cl->mu);
  if (s != NULL)
    atomic_store(&s->pump_due, 1);
  for (size_t i = 0; all && i < cl->nshards; i++)
    atomic_store(&cl->shards[i]->pump_due, 1);
  cl->pump_kick = 1;
  pthread_cond_signal(&cl->pump_cv);
  pthread_mutex_unlock(&cl->mu);
}

void *ordo__cl_pump_main(void *arg) {
  ordo_cluster *cl = arg;
  PGconn *c = NULL;
  for (;;) {
    pthread_mutex_lock(&cl->mu);
    while (!cl->stop && !cl->pump_kick)
      pthread_cond_wait(&cl->pump_cv, &cl->mu);
    int stop = cl->stop;
    cl->pump_kick = 0;
    pthread_mutex_unlock(&cl->mu);
    if (stop)
      break;
    ordo_cluster_shard **v = NULL;
    size_t n = 0;
    if (ordo_cluster_shards(cl, &v, &n) != ORDO_OK)
      continue;
    for (size_t i = 0; i < n; i++) {
      if (atomic_exchange(&v[i]->pump_due, 0) &&
          (c != NULL || ordo__cl_conn_get(cl, &c) == ORDO_OK) &&
          ordo__cl_pump_on(cl, v[i], c) == ORDO_E_STORAGE &&
          PQstatus(c) != CONNECTION_OK) {
        PQfinish(c); /* a new one next time */
        c = NULL;
      }
      ordo_cluster_shard_put(v[i]);
    }
    free(v);
  }
  if (c != NULL)
    PQfinish(c);
  return NULL;
}

/* ---- lookups ------------------------------------------------------------------ */

int ordo_cluster_locate(ordo_cluster *cl, const char *id, char **service,
                        uint64_t *seq, int *in_inbox) {
  char err[512], state[6];
  PGconn *c = NULL;
  *service = NULL;
  int rc = ordo__cl_conn_get(cl, &c);
  if (rc != ORDO_OK)
    return rc;
  const char *v[2] = {cl->queue, id};
  PGresult *r = ordo__cl_exec(c, "SELECT service, seq, NOT moved FROM"
                              " ordo_cluster_batch WHERE queue = $1 AND"
                              " id = $2", 2, v, err, sizeof err, state);
  ordo__cl_conn_put(cl, c, r == NULL);
  if (r == NULL)
    return ordo__set_last_error(ORDO_E_STORAGE, "shared queue: %s", err);
  if (PQntuples(r) == 0) {
    PQclear(r);
    return ordo__set_last_error(ORDO_E_NOT_FOUND, "no batch %s", id);
  }
  *service = ordo__strdup(PQgetvalue(r, 0, 0));
  *seq = strtoull(PQgetvalue(r, 0, 1), NULL, 10);
  *in_inbox = PQgetvalue(r, 0, 2)[0] == 't';
  PQclear(r);
  return *service != NULL ? ORDO_OK : ORDO_E_NOMEM;
}

int ordo_cluster_leases(ordo_cluster *cl, const char *service,
                        ordo_cluster_lease **out, size_t *n) {
  char err[512], state[6];
  PGconn *c = NULL;
  *out = NULL;
  *n = 0;
  int rc = ordo__cl_conn_get(cl, &c);
  if (rc != ORDO_OK)
    return rc;
  const char *v[2] = {cl->queue, service};
  PGresult *r = ordo__cl_exec(
      c,
      "SELECT s.service, coalesce(l.owner, ''), coalesce(l.epoch, 0),"
      " CASE WHEN l.expires_at = '-infinity' THEN -1 ELSE"
      " (extract(epoch FROM l.expires_at - now()) * 1000)::bigint END,"
      " (SELECT count(*) FROM ordo_cluster_batch b WHERE b.queue = s.queue"
      " AND b.service = s.service AND NOT b.moved), coalesce(i.url, '')"
      " FROM ordo_cluster_seq s LEFT JOIN ordo_lease l ON l.name = s.lease"
      " LEFT JOIN ordo_cluster_instance i ON i.queue = s.queue"
      " AND i.id = l.owner"
      " WHERE s.queue = $1 AND ($2::text IS NULL OR s.service = $2)"
      " ORDER BY s.service",
      2, v, err, sizeof err, state);
  ordo__cl_conn_put(cl, c, r == NULL);
  if (r == NULL)
    return ordo__set_last_error(ORDO_E_STORAGE, "shared queue: %s", err);
  int rows = PQntuples(r);
  if (service != NULL && rows == 0) {
    PQclear(r);
    return ordo__set_last_error(ORDO_E_NOT_FOUND, "no service %s in the "
                                "shared queue", service);
  }
  if (rows > 0 && (*out = calloc((size_t)rows, sizeof(**out))) == NULL) {
    PQclear(r);
    return ORDO_E_NOMEM;
  }
  for (int k = 0; k < rows; k++) {
    ordo_cluster_lease *l = &(*out)[k];
    snprintf(l->service, sizeof l->service, "%s", PQgetvalue(r, k, 0));
    snprintf(l->owner, sizeof l->owner, "%s", PQgetvalue(r, k, 1));
    l->epoch = strtoull(PQgetvalue(r, k, 2), NULL, 10);
    l->expires_in_ms = atoll(PQgetvalue(r, k, 3));
    l->inbox = strtoull(PQgetvalue(r, k, 4), NULL, 10);
    snprintf(l->owner_url, sizeof l->owner_url, "%s", PQgetvalue(r, k, 5));
  }
  *n = (size_t)rows;
  PQclear(r);
  return ORDO_OK;
}

/* ---- a reader that does not join ---------------------------------------------- */

struct ordo_cluster_reader {
  PGconn *c;
  char *queue;
};

int ordo_cluster_reader_open(const char *url, const char *queue,
                             ordo_cluster_reader **out) {
  void *c = NULL;
  char *err = NULL;
  *out = NULL;
  if (url == NULL || !ordo_storage_is_postgres_uri(url))
    return ordo__set_last_error(ORDO_E_INVAL, "a shared queue is in a "
                                "PostgreSQL database (postgres://…)");
  ordo_cluster_reader *r = calloc(1, sizeof(*r));
  if (r == NULL || (r->queue = ordo__strdup(queue != NULL ? queue
                                                          : "queue")) == NULL) {
    free(r);
    return ORDO_E_NOMEM;
  }
  int rc = ordo__storage_postgres_connect(url, &c, &err);
  if (rc != ORDO_OK) {
    ordo__set_last_error(rc, "shared queue: %s", err != NULL ? err : "?");
    free(err);
    free(r->queue);
    free(r);
    return rc;
  }
  r->c = c;
  *out = r;
  return ORDO_OK;
}

int ordo_cluster_reader_payload(ordo_cluster_reader *r, const char *id,
                                unsigned char **payload, size_t *len) {
  char err[512], state[6];
  *payload = NULL;
  *len = 0;
  const char *v[2] = {r->queue, id};
  PGresult *res = exec_bin(r->c, "SELECT body FROM ordo_cluster_batch WHERE"
                           " queue = $1 AND id = $2", 2, v, NULL, NULL, 1,
                           err, sizeof err, state);
  if (res == NULL)
    return ordo__set_last_error(ORDO_E_STORAGE, "shared queue: %s", err);
  if (PQntuples(res) == 0) {
    PQclear(res);
    return ORDO_E_NOT_FOUND;
  }
  const unsigned char *b = (const unsigned char *)PQgetvalue(res, 0, 0);
  size_t bl = (size_t)PQgetlength(res, 0, 0);
  size_t tl = strnlen((const char *)b, bl);
  int rc = ORDO_OK;
  if (tl < bl) {
    *len = bl - tl - 1;
    if ((*payload = malloc(*len + 1)) == NULL)
      rc = ORDO_E_NOMEM;
    else
      memcpy(*payload, b + tl + 1, *len);
  }
  PQclear(res);
  return rc;
}

void ordo_cluster_reader_close(ordo_cluster_reader *r) {
  if (r == NULL)
    return;
  PQfinish(r->c);
  free(r->queue);
  free(r);
}

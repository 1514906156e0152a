/*
 * lease.c — one lease round: say this instance is alive, renew the leases
 * it holds (and stop a service whose lease another instance took), work
 * out its share, hand over what is over it, take what is free up to it
 * and what expired whatever it is, and open the journals of the services
 * taken. cluster.h says why each step is as it is.
 */
#include "cluster/internal.h"
#include "storage/storage.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ordo__cl_shard_add(ordo_cluster *cl, const char *service,
                       const char *lease, uint64_t epoch, ordo_journal *j);

char *ordo__cl_lease_name(const ordo_cluster *cl, const char *service) {
  size_t n = strlen(cl->prefix) + 3 * strlen(service) + 1;
  char *out = malloc(n), *o;
  if (out == NULL)
    return NULL;
  o = out + sprintf(out, "%s", cl->prefix);
  for (const unsigned char *p = (const unsigned char *)service; *p; p++) {
    if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
        (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' || *p == '-')
      *o++ = (char)*p;
    else
      o += sprintf(o, "%%%02X", *p);
  }
  *o = 0;
  return out;
}

static int round_fail(ordo_cluster *cl, const char *what, const char *err) {
  ordo__cl_error(cl, "%s: %s", what, err);
  pthread_mutex_lock(&cl->mu);
  cl->stats.round_errors++;
  pthread_mutex_unlock(&cl->mu);
  /* The connection may be what failed: a fresh one next round. */
  if (cl->lc != NULL && PQstatus(cl->lc) != CONNECTION_OK) {
    PQfinish(cl->lc);
    cl->lc = NULL;
  }
  return ORDO_E_STORAGE;
}

static int reconnect(ordo_cluster *cl) {
  void *c = NULL;
  char *err = NULL;
  if (cl->lc != NULL)
    return ORDO_OK;
  int rc = ordo__storage_postgres_connect(cl->url, &c, &err);
  if (rc != ORDO_OK) {
    round_fail(cl, "connect", err != NULL ? err : ordo_strerror(rc));
    free(err);
    return rc;
  }
  cl->lc = c;
  PGresult *r = PQexec(cl->lc, "LISTEN " CL_NOTIFY_CHANNEL);
  PQclear(r);
  return ORDO_OK;
}

/* Stop every live shard: the leases cannot be vouched for (no renewal
 * for a TTL), so another instance may hold them already. */
static void stop_all(ordo_cluster *cl, const char *why) {
  int any = 0;
  pthread_mutex_lock(&cl->mu);
  while (cl->nshards > 0) {
    ordo__cl_retire_locked(cl, cl->nshards - 1, 1);
    cl->stats.lost++;
    any = 1;
  }
  pthread_mutex_unlock(&cl->mu);
  if (any) {
    ordo__cl_log("ordo cluster %s: stopped every service: %s\n", cl->id,
            why);
    ordo__cl_changed(cl);
  }
}

/* Renew what the database says we own; stop live shards it does not. */
static int renew(ordo_cluster *cl) {
  char err[512], state[6], ttl[24];
  snprintf(ttl, sizeof ttl, "%u", cl->ttl_ms);
  const char *vals[3] = {cl->id, ttl, cl->prefix};
  PGresult *r = ordo__cl_exec(
      cl->lc,
      "UPDATE ordo_lease SET expires_at = now() + $2::int * interval '1 ms',"
      " renewed_at = now() WHERE owner = $1 AND starts_with(name, $3)"
      " RETURNING name, epoch",
      3, vals, err, sizeof err, state);
  if (r == NULL)
    return round_fail(cl, "renewing leases", err);
  int nrows = PQntuples(r), changed = 0;
  cl->renewed_ms = ordo__cl_wall_ms();
  pthread_mutex_lock(&cl->mu);
  for (size_t i = 0; i < cl->nshards;) {
    ordo_cluster_shard *s = cl->shards[i];
    int found = 0;
    for (int k = 0; k < nrows && !found; k++)
      found = strcmp(PQgetvalue(r, k, 0), s->lease) == 0 &&
              strtoull(PQgetvalue(r, k, 1), NULL, 10) == s->epoch;
    if (found) {
      i++;
      continue;
    }
    ordo__cl_log("ordo cluster %s: lost the lease of service %s (epoch "
            "%llu): another instance holds it now; the service stops here\n",
            cl->id, s->service, (unsigned long long)s->epoch);
    cl->stats.lost++;
    ordo__cl_retire_locked(cl, i, 1);
    changed = 1;
  }
  pthread_mutex_unlock(&cl->mu);
  PQclear(r);
  if (changed)
    ordo__cl_changed(cl);
  return ORDO_OK;
}

/* Ours in the database and neither live nor retiring here (a previous
 * life under the same instance id, or a journal that would not open):
 * give it back so that it is taken again under a new epoch. */
static void drop_strays(ordo_cluster *cl) {
  char err[512], state[6];
  const char *vals[2] = {cl->id, cl->prefix};
  PGresult *r = ordo__cl_exec(cl->lc, "SELECT name, epoch FROM ordo_lease"
                              " WHERE owner = $1 AND starts_with(name, $2)",
                              2, vals, err, sizeof err, state);
  if (r == NULL)
    return;
  for (int k = 0; k < PQntuples(r); k++) {
    const char *name = PQgetvalue(r, k, 0);
    int mine = 0;
    pthread_mutex_lock(&cl->mu);
    for (size_t i = 0; i < cl->nshards && !mine; i++)
      mine = strcmp(cl->shards[i]->lease, name) == 0;
    for (size_t i = 0; i < cl->nretiring && !mine; i++)
      mine = strcmp(cl->retiring[i]->lease, name) == 0;
    pthread_mutex_unlock(&cl->mu);
    if (mine)
      continue;
    const char *v[3] = {name, PQgetvalue(r, k, 1), cl->id};
    PGresult *u = ordo__cl_exec(cl->lc, "UPDATE ordo_lease SET owner = NULL,"
                                " expires_at = '-infinity' WHERE name = $1"
                                " AND epoch = $2 AND owner = $3",
                                3, v, err, sizeof err, state);
    PQclear(u);
  }
  PQclear(r);
}

void ordo__cl_release_closed(ordo_cluster *cl) {
  char err[512], state[6];
  for (;;) {
    ordo_cluster_shard *s = NULL;
    pthread_mutex_lock(&cl->mu);
    for (size_t i = 0; i < cl->nretiring && s == NULL; i++)
      if (cl->retiring[i]->closed) {
        s = cl->retiring[i];
        cl->retiring[i] = cl->retiring[--cl->nretiring];
      }
    pthread_mutex_unlock(&cl->mu);
    if (s == NULL)
      return;
    if (!s->lost && cl->lc != NULL) {
      char epoch[24];
      snprintf(epoch, sizeof epoch, "%llu", (unsigned long long)s->epoch);
      const char *v[3] = {s->lease, epoch, cl->id};
      PGresult *u = ordo__cl_exec(cl->lc, "UPDATE ordo_lease SET owner = NULL,"
                                  " expires_at = '-infinity' WHERE name = $1"
                                  " AND epoch = $2 AND owner = $3",
                                  3, v, err, sizeof err, state);
      if (u != NULL) {
        pthread_mutex_lock(&cl->mu);
        cl->stats.released++;
        pthread_mutex_unlock(&cl->mu);
      }
      PQclear(u);
    }
    pthread_mutex_destroy(&s->pump_mu);
    free(s->service);
    free(s->lease);
    free(s);
  }
}

/* A lease just taken, its journal being opened (on a thread of its own:
 * a takeover of seven services opened seven journals one after another,
 * a second of stall for the last of them). */
typedef struct adopt_job {
  ordo_cluster *cl;
  char *service, *lease;
  uint64_t epoch;
  int over; /* taken over from an owner whose lease expired */
  int rc;
  pthread_t thread;
} adopt_job;

#define CL_ADOPT_THREADS 8

static void *adopt_main(void *arg) {
  adopt_job *a = arg;
  ordo_cluster *cl = a->cl;
  char path[8192];
  ordo_journal *j = NULL;
  ordo_journal_options jo = cl->jopt;
  jo.fence_epoch = a->epoch;
  unsigned long long t0 = ordo__cl_wall_ms();
  a->rc = ordo__storage_data_path(cl->url, a->lease, path, sizeof path);
  if (a->rc == ORDO_OK)
    a->rc = ordo_journal_open(cl->ctx, path, &jo, &j);
  if (a->rc == ORDO_OK)
    a->rc = ordo__cl_shard_add(cl, a->service, a->lease, a->epoch, j);
  if (a->rc != ORDO_OK) {
    ordo__cl_log("ordo cluster %s: cannot run service %s (lease epoch "
                 "%llu): %s; giving the lease back\n", cl->id, a->service,
                 (unsigned long long)a->epoch, ordo_last_error_message());
    if (j != NULL)
      (void)ordo_journal_close(j);
    return NULL;
  }
  pthread_mutex_lock(&cl->mu);
  cl->stats.taken++;
  cl->stats.taken_over += a->over != 0;
  pthread_mutex_unlock(&cl->mu);
  ordo_journal_totals t;
  if (ordo_journal_get_totals(j, &t) == ORDO_OK && t.unknown > 0)
    ordo__cl_log("ordo cluster %s: runs service %s from epoch %llu (its "
                 "journal read in %llu ms; %zu batches the last owner sent "
                 "are settled with the ledger first)\n", cl->id, a->service,
                 (unsigned long long)a->epoch, ordo__cl_wall_ms() - t0,
                 t.unknown);
  ordo__cl_changed(cl);
  ordo_cluster_shard *s = ordo_cluster_shard_get(cl, a->service);
  if (s != NULL) {
    (void)ordo_cluster_shard_pump(cl, s);
    ordo_cluster_shard_put(s);
  }
  return NULL;
}

/* Open the journals of jobs[0..n), CL_ADOPT_THREADS at a time; give back
 * the leases of those that would not open. */
static void adopt_all(ordo_cluster *cl, adopt_job *jobs, size_t n) {
  char err[512], state[6];
  for (size_t from = 0; from < n; from += CL_ADOPT_THREADS) {
    size_t to = from + CL_ADOPT_THREADS < n ? from + CL_ADOPT_THREADS : n;
    for (size_t i = from; i < to; i++)
      if (pthread_create(&jobs[i].thread, NULL, adopt_main, &jobs[i]) != 0) {
        jobs[i].thread = 0;
        adopt_main(&jobs[i]); /* no thread: here */
      }
    for (size_t i = from; i < to; i++)
      if (jobs[i].thread != 0)
        pthread_join(jobs[i].thread, NULL);
  }
  for (size_t i = 0; i < n; i++) {
    if (jobs[i].rc == ORDO_OK)
      continue;
    char e[24];
    snprintf(e, sizeof e, "%llu", (unsigned long long)jobs[i].epoch);
    const char *v[3] = {jobs[i].lease, e, cl->id};
    PQclear(ordo__cl_exec(cl->lc, "UPDATE ordo_lease SET owner = NULL,"
                          " expires_at = '-infinity' WHERE name = $1 AND"
                          " epoch = $2 AND owner = $3", 3, v, err, sizeof err,
                          state));
  }
}

/* Take up to limit leases: expired ones (an owner that stopped renewing)
 * when expired, else free ones. Each is adopted. */
static int take(ordo_cluster *cl, int expired, long limit) {
  char err[512], state[6], ttl[24], lim[24];
  if (limit <= 0)
    return ORDO_OK;
  snprintf(ttl, sizeof ttl, "%u", cl->ttl_ms);
  snprintf(lim, sizeof lim, "%ld", limit);
  const char *vals[4] = {cl->queue, cl->id, ttl, lim};
  PGresult *r = ordo__cl_exec(
      cl->lc,
      expired
          ? "WITH c AS (SELECT l.name, s.service, l.owner AS old"
            " FROM ordo_lease l JOIN ordo_cluster_seq s ON s.lease = l.name"
            " WHERE s.queue = $1 AND l.owner IS NOT NULL"
            " AND l.expires_at < now() ORDER BY random() LIMIT $4::int"
            " FOR UPDATE OF l SKIP LOCKED)"
            " UPDATE ordo_lease l SET owner = $2, epoch = l.epoch + 1,"
            " expires_at = now() + $3::int * interval '1 ms',"
            " renewed_at = now() FROM c WHERE l.name = c.name"
            " RETURNING l.name, l.epoch, c.service, c.old"
          : "WITH c AS (SELECT l.name, s.service, l.owner AS old"
            " FROM ordo_lease l JOIN ordo_cluster_seq s ON s.lease = l.name"
            " WHERE s.queue = $1 AND l.owner IS NULL"
            " ORDER BY random() LIMIT $4::int FOR UPDATE OF l SKIP LOCKED)"
            " UPDATE ordo_lease l SET owner = $2, epoch = l.epoch + 1,"
            " expires_at = now() + $3::int * interval '1 ms',"
            " renewed_at = now() FROM c WHERE l.name = c.name"
            " RETURNING l.name, l.epoch, c.service, c.old",
      4, vals, err, sizeof err, state);
  if (r == NULL)
    return round_fail(cl, "taking leases", err);
  size_t n = (size_t)PQntuples(r);
  adopt_job *jobs = n > 0 ? calloc(n, sizeof(*jobs)) : NULL;
  for (size_t k = 0; jobs != NULL && k < n; k++) {
    int over = expired && strcmp(PQgetvalue(r, (int)k, 3), cl->id) != 0;
    if (over)
      ordo__cl_log("ordo cluster %s: took service %s over from %s (its "
                   "lease expired), epoch %s\n", cl->id,
                   PQgetvalue(r, (int)k, 2), PQgetvalue(r, (int)k, 3),
                   PQgetvalue(r, (int)k, 1));
    jobs[k] = (adopt_job){.cl = cl,
                          .service = ordo__strdup(PQgetvalue(r, (int)k, 2)),
                          .lease = ordo__strdup(PQgetvalue(r, (int)k, 0)),
                          .epoch = strtoull(PQgetvalue(r, (int)k, 1), NULL,
                                            10),
                          .over = over,
                          .rc = ORDO_E_NOMEM};
  }
  PQclear(r);
  if (jobs == NULL)
    return n > 0 ? ORDO_E_NOMEM : ORDO_OK; /* unadopted: they expire */
  size_t ok = 0;
  for (size_t k = 0; k < n; k++)
    if (jobs[k].service != NULL && jobs[k].lease != NULL)
      jobs[ok++] = jobs[k];
    else
      ORDO__FREE_ALL(jobs[k].service, jobs[k].lease);
  adopt_all(cl, jobs, ok);
  for (size_t k = 0; k < ok; k++)
    ORDO__FREE_ALL(jobs[k].service, jobs[k].lease);
  free(jobs);
  return ORDO_OK;
}

int ordo__cl_round(ordo_cluster *cl) {
  char err[512], state[6], ttl[24];
  int rc;
  pthread_mutex_lock(&cl->mu);
  cl->stats.rounds++;
  pthread_mutex_unlock(&cl->mu);
  /* Not renewed for a TTL: another instance may own them all by now. */
  if (cl->renewed_ms != 0 &&
      ordo__cl_wall_ms() > cl->renewed_ms + cl->ttl_ms)
    stop_all(cl, "the leases could not be renewed for a whole TTL");
  if ((rc = reconnect(cl)) != ORDO_OK)
    return rc;
  snprintf(ttl, sizeof ttl, "%u", cl->ttl_ms);
  const char *hb[3] = {cl->queue, cl->id, cl->advertise};
  PGresult *r = ordo__cl_exec(cl->lc, "INSERT INTO ordo_cluster_instance"
                              "(queue, id, url, seen_at) VALUES ($1, $2, $3,"
                              " now()) ON CONFLICT (queue, id) DO UPDATE SET"
                              " seen_at = now(), url = EXCLUDED.url",
                              3, hb, err, sizeof err, state);
  if (r == NULL)
    return round_fail(cl, "registering the instance", err);
  PQclear(r);
  if ((rc = renew(cl)) != ORDO_OK)
    return rc;
  ordo__cl_release_closed(cl);
  drop_strays(cl);
  const char *cv[2] = {cl->queue, ttl};
  r = ordo__cl_exec(cl->lc, "SELECT (SELECT count(*) FROM"
                    " ordo_cluster_instance WHERE queue = $1 AND seen_at >"
                    " now() - $2::int * interval '1 ms'), (SELECT count(*)"
                    " FROM ordo_cluster_seq WHERE queue = $1)",
                    2, cv, err, sizeof err, state);
  if (r == NULL)
    return round_fail(cl, "counting instances", err);
  long instances = atol(PQgetvalue(r, 0, 0));
  long services = atol(PQgetvalue(r, 0, 1));
  PQclear(r);
  if (instances < 1)
    instances = 1;
  long share = (services + instances - 1) / instances;
  pthread_mutex_lock(&cl->mu);
  cl->stats.instances = (unsigned)instances;
  long held = (long)cl->nshards;
  /* Over the share (an instance joined): hand the excess over. */
  int released = 0;
  while ((long)cl->nshards > share) {
    ordo__cl_retire_locked(cl, cl->nshards - 1, 0);
    released = 1;
  }
  held = (long)cl->nshards;
  pthread_mutex_unlock(&cl->mu);
  if (released) {
    ordo__cl_changed(cl);
    ordo__cl_release_closed(cl);
  }
  if ((rc = take(cl, 1, services)) != ORDO_OK)
    return rc;
  pthread_mutex_lock(&cl->mu);
  held = (long)cl->nshards;
  pthread_mutex_unlock(&cl->mu);
  if ((rc = take(cl, 0, share - held)) != ORDO_OK)
    return rc;
  /* When the soonest lease of another instance runs out: a round then. */
  const char *ev[2] = {cl->queue, cl->id};
  r = ordo__cl_exec(cl->lc, "SELECT (extract(epoch FROM min(l.expires_at) -"
                    " now()) * 1000)::bigint FROM ordo_lease l JOIN"
                    " ordo_cluster_seq s ON s.lease = l.name WHERE"
                    " s.queue = $1 AND l.owner IS NOT NULL AND l.owner <> $2"
                    " AND l.expires_at > now()", 2, ev, err, sizeof err,
                    state);
  cl->expiry_ms = 0;
  if (r != NULL && !PQgetisnull(r, 0, 0))
    cl->expiry_ms = ordo__cl_wall_ms() + (unsigned long long)atoll(
                                             PQgetvalue(r, 0, 0));
  PQclear(r);
  /* What a lost notification would have left in the inbox. */
  ordo_cluster_shard **v = NULL;
  size_t n = 0;
  if (ordo_cluster_shards(cl, &v, &n) == ORDO_OK) {
    for (size_t i = 0; i < n; i++) {
      (void)ordo__cl_pump_on(cl, v[i], cl->lc);
      ordo_cluster_shard_put(v[i]);
    }
    free(v);
  }
  return ORDO_OK;
}

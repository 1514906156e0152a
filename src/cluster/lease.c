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
  cl->renewed_ms = ordo__wall_ms();
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

/* Give lease name back at epoch (owner NULL, expired at once) if this
 * instance still holds it there; 1 when the statement ran. A failure is
 * harmless: the lease then expires at its time. */
static int lease_give_back(ordo_cluster *cl, PGconn *c, const char *name,
                           const char *epoch) {
  char err[512], state[6];
  const char *v[3] = {name, epoch, cl->id};
  PGresult *u = ordo__cl_exec(c, "UPDATE ordo_lease SET owner = NULL,"
                              " expires_at = '-infinity' WHERE name = $1"
                              " AND epoch = $2 AND owner = $3",
                              3, v, err, sizeof err, state);
  int ok = u != NULL;
  PQclear(u);
  return ok;
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
    for (size_t i = 0; i < cl->nadopting && !mine; i++)
      mine = strcmp(cl->adopting[i], name) == 0;
    pthread_mutex_unlock(&cl->mu);
    if (mine)
      continue;
    (void)lease_give_back(cl, cl->lc, name, PQgetvalue(r, k, 1));
  }
  PQclear(r);
}

void ordo__cl_release_closed(ordo_cluster *cl) {
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
      if (lease_give_back(cl, cl->lc, s->lease, epoch)) {
        pthread_mutex_lock(&cl->mu);
        cl->stats.released++;
        pthread_mutex_unlock(&cl->mu);
      }
    }
    pthread_mutex_destroy(&s->pump_mu);
    free(s->service);
    free(s->lease);
    free(s);
  }
}

/* A lease just taken, its journal being opened on a thread of its own:
 * the lease thread goes on renewing meanwhile (an open that took longer
 * than a TTL under load once cost an instance all its leases), and a
 * takeover of several services opens their journals side by side. */
typedef struct adopt_job {
  ordo_cluster *cl;
  char *service, *lease;
  uint64_t epoch;
  int over; /* taken over from an owner whose lease expired */
} adopt_job;

static void adopt_done(ordo_cluster *cl, adopt_job *a) {
  pthread_mutex_lock(&cl->mu);
  for (size_t i = 0; i < cl->nadopting; i++)
    if (strcmp(cl->adopting[i], a->lease) == 0) {
      free(cl->adopting[i]);
      cl->adopting[i] = cl->adopting[--cl->nadopting];
      break;
    }
  pthread_cond_broadcast(&cl->cv);
  pthread_mutex_unlock(&cl->mu);
  ORDO__FREE_ALL(a->service, a->lease);
  free(a);
}

static void *adopt_main(void *arg) {
  adopt_job *a = arg;
  ordo_cluster *cl = a->cl;
  char path[8192], e[24];
  ordo_journal *j = NULL;
  ordo_journal_options jo = cl->jopt;
  jo.fence_epoch = a->epoch;
  unsigned long long t0 = ordo__wall_ms();
  int rc = ordo__storage_data_path(cl->url, a->lease, path, sizeof path);
  if (rc == ORDO_OK)
    rc = ordo_journal_open(cl->ctx, path, &jo, &j);
  pthread_mutex_lock(&cl->mu);
  int stopping = cl->stop;
  pthread_mutex_unlock(&cl->mu);
  if (rc == ORDO_OK && stopping)
    rc = ORDO_E_SHUTDOWN; /* closing: give it back instead */
  if (rc == ORDO_OK)
    rc = ordo__cl_shard_add(cl, a->service, a->lease, a->epoch, j);
  if (rc != ORDO_OK) {
    if (rc != ORDO_E_SHUTDOWN)
      ordo__cl_log("ordo cluster %s: cannot run service %s (lease epoch "
                   "%llu): %s; giving the lease back\n", cl->id, a->service,
                   (unsigned long long)a->epoch, ordo_last_error_message());
    if (j != NULL)
      (void)ordo_journal_close(j);
    PGconn *c = NULL;
    if (ordo__cl_conn_get(cl, &c) == ORDO_OK) {
      snprintf(e, sizeof e, "%llu", (unsigned long long)a->epoch);
      int ok = lease_give_back(cl, c, a->lease, e);
      ordo__cl_conn_put(cl, c, !ok);
    }
    adopt_done(cl, a);
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
                 (unsigned long long)a->epoch, ordo__wall_ms() - t0,
                 t.unknown);
  ordo__cl_changed(cl);
  ordo_cluster_shard *s = ordo_cluster_shard_get(cl, a->service);
  if (s != NULL) {
    ordo__cl_pump_kick(cl, s, 0);
    ordo_cluster_shard_put(s);
  }
  adopt_done(cl, a);
  return NULL;
}

/* Start adopting (service, lease) at epoch; without a thread its lease
 * is left to expire. */
static void adopt_start(ordo_cluster *cl, const char *service,
                        const char *lease, uint64_t epoch, int over) {
  adopt_job *a = calloc(1, sizeof(*a));
  char *name = ordo__strdup(lease);
  pthread_t t;
  pthread_attr_t at;
  if (a != NULL) {
    a->cl = cl;
    a->service = ordo__strdup(service);
    a->lease = ordo__strdup(lease);
    a->epoch = epoch;
    a->over = over;
  }
  pthread_mutex_lock(&cl->mu);
  int ok = a != NULL && a->service != NULL && a->lease != NULL &&
           name != NULL;
  if (ok && cl->nadopting == cl->capadopting) {
    size_t nc = cl->capadopting ? cl->capadopting * 2 : 16;
    char **nv = realloc(cl->adopting, nc * sizeof(*nv));
    if (nv != NULL) {
      cl->adopting = nv;
      cl->capadopting = nc;
    }
  }
  ok = ok && cl->nadopting < cl->capadopting;
  if (ok)
    cl->adopting[cl->nadopting++] = name;
  pthread_mutex_unlock(&cl->mu);
  if (!ok) {
    free(name);
    if (a != NULL)
      ORDO__FREE_ALL(a->service, a->lease);
    free(a);
    return;
  }
  pthread_attr_init(&at);
  pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
  if (pthread_create(&t, &at, adopt_main, a) != 0)
    adopt_main(a); /* no thread: here, late renewals and all */
  pthread_attr_destroy(&at);
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
  for (int k = 0; k < PQntuples(r); k++) {
    int over = expired && strcmp(PQgetvalue(r, k, 3), cl->id) != 0;
    if (over)
      ordo__cl_log("ordo cluster %s: took service %s over from %s (its "
                   "lease expired), epoch %s\n", cl->id, PQgetvalue(r, k, 2),
                   PQgetvalue(r, k, 3), PQgetvalue(r, k, 1));
    adopt_start(cl, PQgetvalue(r, k, 2), PQgetvalue(r, k, 0),
                strtoull(PQgetvalue(r, k, 1), NULL, 10), over);
  }
  PQclear(r);
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
      ordo__wall_ms() > cl->renewed_ms + cl->ttl_ms)
    stop_all(cl, "the leases could not be renewed for a whole TTL");
  if ((rc = reconnect(cl)) != ORDO_OK)
    return rc;
  snprintf(ttl, sizeof ttl, "%u", cl->ttl_ms);
  /* joined_at is this process's start: an id restarted is a newcomer. */
  char advertise[256];
  pthread_mutex_lock(&cl->mu);
  snprintf(advertise, sizeof advertise, "%s",
           cl->advertise != NULL ? cl->advertise : "");
  pthread_mutex_unlock(&cl->mu);
  const char *hb[4] = {cl->queue, cl->id, advertise[0] ? advertise : NULL,
                       cl->joined ? "f" : "t"};
  PGresult *r = ordo__cl_exec(
      cl->lc,
      "INSERT INTO ordo_cluster_instance(queue, id, url, seen_at, joined_at)"
      " VALUES ($1, $2, $3, now(), now()) ON CONFLICT (queue, id) DO UPDATE"
      " SET seen_at = now(), url = EXCLUDED.url, joined_at = CASE WHEN"
      " $4::boolean THEN now() ELSE ordo_cluster_instance.joined_at END",
      4, hb, err, sizeof err, state);
  if (r == NULL)
    return round_fail(cl, "registering the instance", err);
  PQclear(r);
  cl->joined = 1;
  if ((rc = renew(cl)) != ORDO_OK)
    return rc;
  ordo__cl_release_closed(cl);
  drop_strays(cl);
  /* The share to take up to counts every instance alive; the share to
   * keep, above which services are handed over, only those that joined a
   * TTL ago or more (and this one): an instance that just started (or
   * restarted under its id) takes what is free or expired at once, but is
   * handed nothing for a TTL, so one that comes and goes does not pull
   * services back and forth (each move stalls a service while the new
   * owner settles what the old one had sent). */
  const char *cv[3] = {cl->queue, ttl, cl->id};
  r = ordo__cl_exec(cl->lc, "SELECT count(*), count(*) FILTER (WHERE id = $3"
                    " OR joined_at <= now() - $2::int * interval '1 ms'),"
                    " (SELECT count(*) FROM ordo_cluster_seq WHERE"
                    " queue = $1) FROM ordo_cluster_instance WHERE"
                    " queue = $1 AND seen_at > now() - $2::int *"
                    " interval '1 ms'",
                    3, cv, err, sizeof err, state);
  if (r == NULL)
    return round_fail(cl, "counting instances", err);
  long instances = atol(PQgetvalue(r, 0, 0));
  long settled = atol(PQgetvalue(r, 0, 1));
  long services = atol(PQgetvalue(r, 0, 2));
  PQclear(r);
  if (instances < 1)
    instances = 1;
  if (settled < 1)
    settled = 1;
  long share = (services + instances - 1) / instances;
  long keep = (services + settled - 1) / settled;
  pthread_mutex_lock(&cl->mu);
  cl->stats.instances = (unsigned)instances;
  long held = (long)cl->nshards;
  /* Over the share (an instance joined, or this one took over a dead
   * one's services): hand the excess over, once it has been over for a
   * TTL. Every move stalls the service while its new owner settles what
   * the old one had sent, so a share that holds only for a moment (an
   * instance that comes back and dies again) is not worth one. */
  int released = 0;
  unsigned long long now = ordo__wall_ms();
  if ((long)cl->nshards <= keep)
    cl->over_since_ms = 0;
  else if (cl->over_since_ms == 0)
    cl->over_since_ms = now;
  while ((long)cl->nshards > keep && now - cl->over_since_ms >= cl->ttl_ms) {
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
  held = (long)(cl->nshards + cl->nadopting);
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
    cl->expiry_ms = ordo__wall_ms() + (unsigned long long)atoll(
                                             PQgetvalue(r, 0, 0));
  PQclear(r);
  /* What a lost notification would have left in the inbox. */
  ordo__cl_pump_kick(cl, NULL, 1);
  return ORDO_OK;
}

/*
 * cluster.c — `ordo serve --cluster`: this server is one instance of
 * several on a shared PostgreSQL queue (src/cluster/cluster.h). Every
 * instance accepts batches into the shared queue; the services whose
 * leases it holds (its shards) it runs: the loop thread gives each a
 * submitter of its own and steps them all, and drops one at once when its
 * shard stops being live (lease lost or handed over). Status answers come
 * from the journal of a service run here; for a service run elsewhere the
 * answer names its owner (and its URL), with 421 where only the owner can
 * act (a batch's state, cancel, resume).
 */
#include "cluster/cluster.h"
#include "runtime/runtime.h"
#include "server/internal.h"
#include "server/reply.h"
#include "server/routes.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- the loop: a submitter and a thread per shard ---------------------------- */

/*
 * Each shard is driven as the single-journal server drives its journal
 * (server.c's loop_main): a thread that steps the shard's submitter and
 * waits on it. A thread each, because a step blocks (the take's commit, a
 * submit call): twenty shards stepped in turn on one thread made a round
 * of the loop two seconds long. The loop thread only starts and stops
 * them as shards come and go. The submitters share the server's ledger
 * client (up to 256 connections, server.c): a client per shard would open
 * as many pools as services. An instance holds up to five connections to
 * the ledger per service it runs (a submit, four status polls), as many
 * as a single-journal server holds in all: a ledger that caps connections
 * per client (the embedded one does, at 64) must allow a cluster more.
 */

static void shard_changed(void *ud) {
  ordo_server *srv = ud;
  pthread_mutex_lock(&srv->loop_mu);
  srv->loop_kick = 1;
  pthread_cond_broadcast(&srv->loop_cv);
  pthread_mutex_unlock(&srv->loop_mu);
}

void ordo__srv_cluster_kick(ordo_server *srv) { shard_changed(srv); }

static void *drive_main(void *arg) {
  srv_drive *d = arg;
  ordo_server *srv = d->srv;
  int last_rc = ORDO_OK;
  while (!atomic_load(&d->stop) && ordo_cluster_shard_live(d->shard)) {
    int idle = 0, rc = ordo_submitter_step(d->sub, &idle);
    if (rc != ORDO_OK && ordo_cluster_shard_live(d->shard)) {
      char err[256];
      snprintf(err, sizeof err, "service %s: %s",
               ordo_cluster_shard_service(d->shard),
               ordo_last_error_message());
      pthread_mutex_lock(&srv->stat_mu);
      if (last_rc == ORDO_OK)
        fprintf(stderr, "ordo serve: submitter: %s\n", err);
      srv->step_rc = rc;
      snprintf(srv->step_err, sizeof srv->step_err, "%s", err);
      pthread_mutex_unlock(&srv->stat_mu);
    }
    last_rc = rc;
    pthread_mutex_lock(&srv->stat_mu);
    srv->steps++;
    pthread_mutex_unlock(&srv->stat_mu);
    (void)ordo_submitter_wait(d->sub, rc != ORDO_OK ? 200 : 1000);
  }
  return NULL;
}

static void drive_free(srv_drive *d) {
  if (d->has_thread) {
    atomic_store(&d->stop, 1);
    ordo_submitter_wake(d->sub);
    pthread_join(d->thread, NULL);
  }
  ordo_submitter_free(d->sub);
  ordo_cluster_shard_put(d->shard);
  free(d);
}

/* A submitter and its thread over shard s's journal, or NULL (s's
 * reference is then let go). */
static srv_drive *drive_new(ordo_server *srv, ordo_cluster_shard *s) {
  srv_drive *d = calloc(1, sizeof(*d));
  if (d == NULL) {
    ordo_cluster_shard_put(s);
    return NULL;
  }
  d->srv = srv;
  d->shard = s;
  atomic_init(&d->stop, 0);
  if (srv->port == NULL)
    return d; /* journal only: nothing to drive */
  int rc = ordo_submitter_new(ordo_cluster_shard_journal(s),
                              ordo_ledger_sawtooth_port_get(srv->port),
                              &srv->sopt, &d->sub);
  if (rc == ORDO_OK && pthread_create(&d->thread, NULL, drive_main, d) != 0)
    rc = ordo__set_last_error(ORDO_E_SYSTEM, "no thread");
  d->has_thread = rc == ORDO_OK;
  if (rc != ORDO_OK) {
    fprintf(stderr, "ordo serve: service %s: no submitter: %s\n",
            ordo_cluster_shard_service(s), ordo_last_error_message());
    drive_free(d);
    return NULL;
  }
  return d;
}

/* The policies of the config (services) for a shard just adopted. */
static void shard_policy(ordo_server *srv, ordo_cluster_shard *s) {
  json_t *pol = srv->policies != NULL
                    ? json_object_get(srv->policies,
                                      ordo_cluster_shard_service(s))
                    : NULL;
  if (pol == NULL)
    return;
  char *p = json_dumps(pol, JSON_COMPACT);
  if (p == NULL ||
      ordo_journal_set_policy_json(ordo_cluster_shard_journal(s),
                                   ordo_cluster_shard_service(s), p) != ORDO_OK)
    fprintf(stderr, "ordo serve: service %s: its policy was not applied: %s\n",
            ordo_cluster_shard_service(s), ordo_last_error_message());
  free(p);
}

/* Drive the live shards, and only those; wake them all (a batch may have
 * come). Loop thread. */
static void drive_sync(ordo_server *srv) {
  ordo_cluster_shard **v = NULL;
  size_t n = 0;
  for (;;) { /* stop the shards no longer live, outside the lock */
    srv_drive *gone = NULL;
    pthread_mutex_lock(&srv->drive_mu);
    for (size_t i = 0; i < srv->ndrive && gone == NULL; i++)
      if (!ordo_cluster_shard_live(srv->drive[i]->shard)) {
        gone = srv->drive[i];
        srv->drive[i] = srv->drive[--srv->ndrive];
      }
    pthread_mutex_unlock(&srv->drive_mu);
    if (gone == NULL)
      break;
    drive_free(gone);
  }
  if (ordo_cluster_shards(srv->cl, &v, &n) != ORDO_OK)
    return;
  for (size_t k = 0; k < n; k++) {
    int have = 0;
    pthread_mutex_lock(&srv->drive_mu);
    for (size_t i = 0; i < srv->ndrive && !have; i++)
      if (srv->drive[i]->shard == v[k]) {
        have = 1;
        ordo_submitter_wake(srv->drive[i]->sub);
      }
    pthread_mutex_unlock(&srv->drive_mu);
    if (have) {
      ordo_cluster_shard_put(v[k]);
      continue;
    }
    shard_policy(srv, v[k]);
    srv_drive *d = drive_new(srv, v[k]); /* takes the reference */
    if (d == NULL)
      continue;
    pthread_mutex_lock(&srv->drive_mu);
    if (srv->ndrive == srv->capdrive) {
      size_t nc = srv->capdrive ? srv->capdrive * 2 : 16;
      srv_drive **nd = realloc(srv->drive, nc * sizeof(*nd));
      if (nd != NULL) {
        srv->drive = nd;
        srv->capdrive = nc;
      }
    }
    if (srv->ndrive < srv->capdrive) {
      srv->drive[srv->ndrive++] = d;
      d = NULL;
    }
    pthread_mutex_unlock(&srv->drive_mu);
    if (d != NULL) /* no memory to keep it: let go */
      drive_free(d);
  }
  free(v);
}

void *ordo__srv_cluster_loop(void *arg) {
  ordo_server *srv = arg;
  int stop = 0;
  while (!stop) {
    drive_sync(srv);
    /* Woken by a shard that came or went, or a batch; else a look every
     * second. */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += 1;
    pthread_mutex_lock(&srv->loop_mu);
    while (!srv->loop_stop && !srv->loop_kick &&
           pthread_cond_timedwait(&srv->loop_cv, &srv->loop_mu, &ts) == 0)
      ;
    srv->loop_kick = 0;
    stop = srv->loop_stop;
    pthread_mutex_unlock(&srv->loop_mu);
  }
  pthread_mutex_lock(&srv->drive_mu);
  srv_drive **all = srv->drive;
  size_t n = srv->ndrive;
  srv->drive = NULL;
  srv->ndrive = srv->capdrive = 0;
  pthread_mutex_unlock(&srv->drive_mu);
  for (size_t i = 0; i < n; i++)
    drive_free(all[i]);
  free(all);
  return NULL;
}

int ordo__srv_cluster_open(ordo_server *srv, const ordo_server_options *o,
                           const ordo_journal_options *jopt) {
  ordo_cluster_options co;
  ordo_cluster_options_init(&co);
  co.url = srv->data_dir;
  co.instance_id = o->instance_id;
  co.queue = o->cluster_queue;
  co.ttl_ms = o->lease_ttl_ms;
  co.journal = *jopt;
  co.on_change = shard_changed;
  co.on_change_ud = srv;
  if (o->services_json != NULL &&
      (srv->policies = json_loads(o->services_json, 0, NULL)) == NULL)
    return ordo__set_last_error(ORDO_E_CONFIG, "services: not JSON");

  return ordo_cluster_open(srv->ctx, &co, &srv->cl);
}

void ordo__srv_cluster_close(ordo_server *srv) {
  ordo_cluster_close(srv->cl);
  srv->cl = NULL;

  json_decref(srv->policies);
  srv->policies = NULL;
}

/* Sum of the progress of every submitter driven here. */
int ordo__srv_cluster_progress(ordo_server *srv, ordo_submitter_progress *p) {
  memset(p, 0, sizeof(*p));
  pthread_mutex_lock(&srv->drive_mu);
  for (size_t i = 0; i < srv->ndrive; i++) {
    ordo_submitter_progress q;
    if (srv->drive[i]->sub == NULL)
      continue;
    ordo_submitter_get_progress(srv->drive[i]->sub, &q);
    p->submitted += q.submitted;
    p->resubmitted += q.resubmitted;
    p->committed += q.committed;
    p->invalid += q.invalid;
    p->refused += q.refused;
    p->submit_errors += q.submit_errors;
    p->status_errors += q.status_errors;
    p->submit_calls += q.submit_calls;
    p->status_calls += q.status_calls;
    p->in_flight += q.in_flight;
    for (int c = 0; c < ORDO_SUBMITTER_CAUSES; c++)
      p->errors_by_cause[c] += q.errors_by_cause[c];
    if (q.ledger_down && !p->ledger_down) {
      p->ledger_down = 1;
      p->down_since_ms = q.down_since_ms;
    }
    if (q.last_error_ms > p->last_error_ms) {
      p->last_error_ms = q.last_error_ms;
      p->last_error_code = q.last_error_code;
      p->last_error_cause = q.last_error_cause;
      memcpy(p->last_error, q.last_error, sizeof p->last_error);
    }
  }
  pthread_mutex_unlock(&srv->drive_mu);
  return srv->port != NULL;
}

/* Totals over the journals of the shards run here. */
void ordo__srv_cluster_totals(ordo_server *srv, ordo_journal_totals *t) {
  ordo_cluster_shard **v = NULL;
  size_t n = 0;
  memset(t, 0, sizeof(*t));
  if (ordo_cluster_shards(srv->cl, &v, &n) != ORDO_OK)
    return;
  for (size_t i = 0; i < n; i++) {
    ordo_journal_totals one;
    if (ordo_journal_get_totals(ordo_cluster_shard_journal(v[i]), &one) ==
        ORDO_OK) {
      t->queued += one.queued;
      t->waiting += one.waiting;
      t->in_flight += one.in_flight;
      t->unknown += one.unknown;
      t->committed += one.committed;
      t->invalid += one.invalid;
      t->services += one.services;
      t->records += one.records;
      t->failed |= one.failed;
    }
    ordo_cluster_shard_put(v[i]);
  }
  free(v);
}

/* ---- answers ------------------------------------------------------------------ */

/* The owner of service as the database has it, as JSON members of o. */
static void owner_json(ordo_server *srv, json_t *o, const char *service) {
  ordo_cluster_lease *l = NULL;
  size_t n = 0;
  if (ordo_cluster_leases(srv->cl, service, &l, &n) != ORDO_OK || n == 0) {
    free(l);
    return;
  }
  json_object_set_new(o, "owner", l[0].owner[0] ? json_string(l[0].owner)
                                                : json_null());
  json_object_set_new(o, "epoch", json_integer((json_int_t)l[0].epoch));
  json_object_set_new(o, "lease_expires_in_ms",
                      json_integer(l[0].expires_in_ms));
  json_object_set_new(o, "inbox", json_integer((json_int_t)l[0].inbox));
  if (l[0].owner_url[0] != '\0')
    json_object_set_new(o, "owner_url", json_string(l[0].owner_url));
  free(l);
}

static int not_here(ordo_server *srv, ordo_server_response *resp,
                    const char *service, const char *what) {
  json_t *o = json_pack("{s:s,s:i,s:s,s:s}", "error", "not_owner", "code",
                        ORDO_E_STATE, "message", what, "service", service);
  if (o != NULL)
    owner_json(srv, o, service);
  return ordo__srv_reply(resp, 421, o);
}

/* The shard of batch id's service if it runs here (a reference), else
 * NULL with the answer made (404, or 421 naming the owner; in_inbox: the
 * batch is accepted and waits for its owner). */
static ordo_cluster_shard *batch_shard(ordo_server *srv, const char *id,
                                       ordo_server_response *resp,
                                       int *in_inbox) {
  char *service = NULL;
  uint64_t seq = 0;
  int rc = ordo_cluster_locate(srv->cl, id, &service, &seq, in_inbox);
  if (rc == ORDO_E_NOT_FOUND) {
    ordo__srv_error(resp, 404, rc, "no batch with that id");
    return NULL;
  }
  if (rc != ORDO_OK) {
    ordo__srv_error(resp, ordo__srv_http_status(rc), rc, "%s",
                    ordo_last_error_message());
    return NULL;
  }
  ordo_cluster_shard *s = ordo_cluster_shard_get(srv->cl, service);
  if (s == NULL) {
    char msg[300];
    snprintf(msg, sizeof msg, "batch %s is of service %s, run by another "
             "instance: ask its owner", id, service);
    not_here(srv, resp, service, msg);
    if (resp->body != NULL) {
      /* Say what is known here: accepted, its seq. */
      json_t *o = json_loads(resp->body, 0, NULL);
      if (o != NULL) {
        json_object_set_new(o, "id", json_string(id));
        json_object_set_new(o, "seq", json_integer((json_int_t)seq));
        if (*in_inbox)
          json_object_set_new(o, "state", json_string("QUEUED"));
        ordo__srv_reply(resp, 421, o);
      }
    }
  }
  free(service);
  return s;
}

static int add_owner(ordo_server *srv, ordo_cluster_shard *s, char *text,
                     ordo_server_response *resp) {
  json_t *o = json_loads(text, 0, NULL);
  free(text);
  if (o != NULL) {
    json_object_set_new(o, "owner",
                        json_string(ordo_cluster_instance_id(srv->cl)));
    json_object_set_new(o, "epoch",
                        json_integer((json_int_t)ordo_cluster_shard_epoch(s)));
  }
  return ordo__srv_reply(resp, 200, o);
}

int ordo__srv_cluster_get_batch(ordo_server *srv, const char *id,
                                ordo_server_response *resp) {
  int in_inbox = 0;
  ordo_cluster_shard *s = batch_shard(srv, id, resp, &in_inbox);
  if (s == NULL)
    return ORDO_OK;
  char *text = ordo_journal_batch_json(ordo_cluster_shard_journal(s), id);
  if (text == NULL && in_inbox) {
    /* Accepted; its owner (here) has not moved it in yet. */
    (void)ordo_cluster_shard_pump(srv->cl, s);
    text = ordo_journal_batch_json(ordo_cluster_shard_journal(s), id);
  }
  int rc = text != NULL ? add_owner(srv, s, text, resp)
                        : ordo__srv_error(resp, 404, ORDO_E_NOT_FOUND,
                                          "no batch with that id");
  ordo_cluster_shard_put(s);
  return rc;
}

int ordo__srv_cluster_cancel(ordo_server *srv, const char *id,
                             ordo_server_response *resp) {
  int in_inbox = 0;
  ordo_cluster_shard *s = batch_shard(srv, id, resp, &in_inbox);
  if (s == NULL)
    return ORDO_OK;
  if (in_inbox)
    (void)ordo_cluster_shard_pump(srv->cl, s);
  int rc = ordo__srv_cancel_in(srv, ordo_cluster_shard_journal(s), id, resp);
  ordo_cluster_shard_put(s);
  if (rc != ORDO_OK)
    return ORDO_OK; /* answered */
  shard_changed(srv); /* its locks are free: others may go */
  return ordo__srv_cluster_get_batch(srv, id, resp);
}

int ordo__srv_cluster_get_service(ordo_server *srv, const char *svc,
                                  ordo_server_response *resp) {
  ordo_cluster_shard *s = ordo_cluster_shard_get(srv->cl, svc);
  if (s != NULL) {
    char *text = ordo_journal_service_json(ordo_cluster_shard_journal(s), svc);
    int rc = text != NULL ? add_owner(srv, s, text, resp)
                          : ordo__srv_reply(resp, 500, NULL);
    ordo_cluster_shard_put(s);
    return rc;
  }
  json_t *o = json_pack("{s:s}", "service", svc);
  ordo_cluster_lease *l = NULL;
  size_t n = 0;
  int rc = ordo_cluster_leases(srv->cl, svc, &l, &n);
  free(l);
  if (rc == ORDO_E_NOT_FOUND) {
    json_decref(o);
    return ordo__srv_error(resp, 404, rc, "no service with that name");
  }
  if (rc != ORDO_OK) {
    json_decref(o);
    return ordo__srv_error(resp, ordo__srv_http_status(rc), rc, "%s",
                           ordo_last_error_message());
  }
  if (o != NULL)
    owner_json(srv, o, svc);
  return ordo__srv_reply(resp, 200, o);
}

int ordo__srv_cluster_halt_resume(ordo_server *srv, const char *svc, int halt,
                                  const char *reason,
                                  ordo_server_response *resp) {
  ordo_cluster_shard *s = ordo_cluster_shard_get(srv->cl, svc);
  if (s == NULL)
    return not_here(srv, resp, svc, halt ? "the service is run by another "
                                           "instance: halt it there"
                                         : "the service is run by another "
                                           "instance: resume it there");
  int rc = ordo__srv_halt_resume_in(ordo_cluster_shard_journal(s), svc, halt,
                                    reason, resp);
  ordo_cluster_shard_put(s);
  if (rc != ORDO_OK)
    return ORDO_OK; /* answered */
  shard_changed(srv);
  return ordo__srv_cluster_get_service(srv, svc, resp);
}

/* The "cluster" member of GET /v1/queue: this instance, and every
 * service's lease (the first 1000). */
json_t *ordo__srv_cluster_json(ordo_server *srv) {
  ordo_cluster_stats st;
  ordo_cluster_lease *l = NULL;
  size_t n = 0;
  ordo_cluster_get_stats(srv->cl, &st);
  json_t *o = json_pack(
      "{s:s,s:i,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "instance",
      ordo_cluster_instance_id(srv->cl), "instances", (int)st.instances,
      "ttl_ms", (json_int_t)ordo_cluster_ttl_ms(srv->cl), "leases_held",
      (json_int_t)st.held, "leases_taken", (json_int_t)st.taken,
      "leases_taken_over", (json_int_t)st.taken_over, "leases_lost",
      (json_int_t)st.lost, "leases_released", (json_int_t)st.released,
      "enqueued", (json_int_t)st.enqueued);
  if (o == NULL)
    return NULL;
  if (st.last_error_ms != 0)
    json_object_set_new(o, "last_error", json_string(st.last_error));
  json_t *a = json_array();
  if (ordo_cluster_leases(srv->cl, NULL, &l, &n) == ORDO_OK)
    for (size_t i = 0; i < n && i < 1000 && a != NULL; i++)
      json_array_append_new(
          a, json_pack("{s:s,s:o,s:I,s:I,s:I}", "service", l[i].service,
                       "owner", l[i].owner[0] ? json_string(l[i].owner)
                                              : json_null(),
                       "epoch", (json_int_t)l[i].epoch, "expires_in_ms",
                       (json_int_t)l[i].expires_in_ms, "inbox",
                       (json_int_t)l[i].inbox));
  free(l);
  json_object_set_new(o, "services", a != NULL ? a : json_array());
  /* The services run here, each with its counts: one request shows what
   * this instance does (a watcher asks each instance once). */
  json_t *sh = json_array();
  ordo_cluster_shard **v = NULL;
  size_t ns = 0;
  if (ordo_cluster_shards(srv->cl, &v, &ns) == ORDO_OK)
    for (size_t i = 0; i < ns; i++) {
      ordo_journal_service_info in;
      const char *svc = ordo_cluster_shard_service(v[i]);
      if (sh != NULL &&
          ordo_journal_get_service(ordo_cluster_shard_journal(v[i]), svc,
                                   &in) == ORDO_OK) {
        json_array_append_new(
            sh, json_pack("{s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:b}", "service",
                          svc, "epoch",
                          (json_int_t)ordo_cluster_shard_epoch(v[i]),
                          "queued", (json_int_t)in.queued, "waiting",
                          (json_int_t)in.waiting, "in_flight",
                          (json_int_t)in.in_flight, "unknown",
                          (json_int_t)in.unknown, "committed",
                          (json_int_t)in.committed, "invalid",
                          (json_int_t)in.invalid, "halted", in.halted));
        ordo_journal_service_info_clear(&in);
      } else if (sh != NULL) {
        /* Adopted, nothing of it in memory yet. */
        json_array_append_new(
            sh, json_pack("{s:s,s:I,s:i,s:i}", "service", svc, "epoch",
                          (json_int_t)ordo_cluster_shard_epoch(v[i]),
                          "committed", 0, "invalid", 0));
      }
      ordo_cluster_shard_put(v[i]);
    }
  free(v);
  json_object_set_new(o, "shards", sh != NULL ? sh : json_array());
  return o;
}

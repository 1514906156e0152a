/*
 * cluster.c — joining and leaving a shared queue, the lease thread, and
 * the shards (the services this instance runs) handed to the caller.
 *
 * A shard's life: the lease thread takes a lease (lease.c), opens the
 * service's journal fenced at the lease's epoch and puts the shard in the
 * live list with one reference (the list's). The caller takes references
 * of its own (ordo_cluster_shards) to drive the journal. When the lease is
 * lost, over the share or the cluster closes, the shard stops being live
 * and moves to the retiring list, the list's reference dropped; whoever
 * puts the last reference closes the journal, and the next round gives the
 * lease back (a lost one is not ours to give). Until then the lease is
 * still renewed: the journal may still be writing its last records.
 */
#include "cluster/internal.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

void ordo_cluster_options_init(ordo_cluster_options *opt) {
  memset(opt, 0, sizeof(*opt));
  ordo_journal_options_init(&opt->journal);
}

void ordo__cl_error(ordo_cluster *cl, const char *fmt, ...) {
  va_list ap;
  pthread_mutex_lock(&cl->mu);
  va_start(ap, fmt);
  vsnprintf(cl->stats.last_error, sizeof cl->stats.last_error, fmt, ap);
  va_end(ap);
  cl->stats.last_error_ms = ordo__wall_ms();
  pthread_mutex_unlock(&cl->mu);
}

void ordo__cl_log(const char *fmt, ...) {
  char line[1024], when[40];
  unsigned long long ms = ordo__wall_ms();
  time_t t = (time_t)(ms / 1000);
  struct tm tm;
  va_list ap;
  gmtime_r(&t, &tm);
  size_t n = strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(when + n, sizeof when - n, ".%03uZ", (unsigned)(ms % 1000));
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  fprintf(stderr, "%s %s", when, line);
}

void ordo__cl_changed(ordo_cluster *cl) {
  if (cl->on_change != NULL)
    cl->on_change(cl->on_change_ud);
}

static void wake(ordo_cluster *cl) {
  uint64_t one = 1;
  if (cl->wake_fd >= 0)
    (void)!write(cl->wake_fd, &one, sizeof one);
}

/* ---- shards ------------------------------------------------------------------ */

static void shard_free(ordo_cluster_shard *s) {
  pthread_mutex_destroy(&s->pump_mu);
  free(s->service);
  free(s->lease);
  free(s);
}

static int push(ordo_cluster_shard ***v, size_t *n, size_t *cap,
                ordo_cluster_shard *s) {
  if (*n == *cap) {
    size_t nc = *cap != 0 ? *cap * 2 : 16;
    ordo_cluster_shard **nv = realloc(*v, nc * sizeof(*nv));
    if (nv == NULL)
      return ORDO_E_NOMEM;
    *v = nv;
    *cap = nc;
  }
  (*v)[(*n)++] = s;
  return ORDO_OK;
}

/* Close s's journal once nobody uses it (its last reference). */
static void shard_last_ref(ordo_cluster_shard *s) {
  ordo_cluster *cl = s->cl;
  int rc = ordo_journal_close(s->j);
  if (rc != ORDO_OK && !s->lost)
    ordo__cl_log("ordo cluster: service %s: its journal closed with: %s\n",
            s->service, ordo_strerror(rc));
  pthread_mutex_lock(&cl->mu);
  s->j = NULL;
  s->closed = 1;
  pthread_cond_broadcast(&cl->cv);
  pthread_mutex_unlock(&cl->mu);
  wake(cl); /* the lease goes back at once */
}

void ordo__cl_retire_locked(ordo_cluster *cl, size_t i, int lost) {
  ordo_cluster_shard *s = cl->shards[i];
  cl->shards[i] = cl->shards[--cl->nshards];
  atomic_store(&s->live, 0);
  s->lost = lost;
  if (push(&cl->retiring, &cl->nretiring, &cl->capretiring, s) != ORDO_OK) {
    /* No room to remember it: it stays unreleased and expires. */
    s->lost = 1;
  }
  if (--s->refs == 0) {
    /* Nobody drives it: close it here (journal close does not need mu). */
    pthread_mutex_unlock(&cl->mu);
    shard_last_ref(s);
    pthread_mutex_lock(&cl->mu);
  }
}

int ordo__cl_shard_add(ordo_cluster *cl, const char *service,
                       const char *lease, uint64_t epoch, ordo_journal *j);
int ordo__cl_shard_add(ordo_cluster *cl, const char *service,
                       const char *lease, uint64_t epoch, ordo_journal *j) {
  ordo_cluster_shard *s = calloc(1, sizeof(*s));
  if (s == NULL)
    return ORDO_E_NOMEM;
  s->cl = cl;
  s->service = ordo__strdup(service);
  s->lease = ordo__strdup(lease);
  s->epoch = epoch;
  s->j = j;
  s->refs = 1;
  atomic_init(&s->live, 1);
  pthread_mutex_init(&s->pump_mu, NULL);
  pthread_mutex_lock(&cl->mu);
  int rc = s->service == NULL || s->lease == NULL
               ? ORDO_E_NOMEM
               : push(&cl->shards, &cl->nshards, &cl->capshards, s);
  if (rc == ORDO_OK)
    cl->stats.held = cl->nshards;
  pthread_mutex_unlock(&cl->mu);
  if (rc != ORDO_OK) {
    s->j = NULL;
    shard_free(s);
  }
  return rc;
}

int ordo_cluster_shards(ordo_cluster *cl, ordo_cluster_shard ***out,
                        size_t *n) {
  *out = NULL;
  *n = 0;
  pthread_mutex_lock(&cl->mu);
  if (cl->nshards > 0) {
    *out = malloc(cl->nshards * sizeof(**out));
    if (*out == NULL) {
      pthread_mutex_unlock(&cl->mu);
      return ORDO_E_NOMEM;
    }
    for (size_t i = 0; i < cl->nshards; i++) {
      cl->shards[i]->refs++;
      (*out)[i] = cl->shards[i];
    }
    *n = cl->nshards;
  }
  pthread_mutex_unlock(&cl->mu);
  return ORDO_OK;
}

ordo_cluster_shard *ordo_cluster_shard_get(ordo_cluster *cl,
                                           const char *service) {
  ordo_cluster_shard *s = NULL;
  pthread_mutex_lock(&cl->mu);
  for (size_t i = 0; i < cl->nshards && s == NULL; i++)
    if (strcmp(cl->shards[i]->service, service) == 0) {
      s = cl->shards[i];
      s->refs++;
    }
  pthread_mutex_unlock(&cl->mu);
  return s;
}

void ordo_cluster_shard_put(ordo_cluster_shard *s) {
  if (s == NULL)
    return;
  ordo_cluster *cl = s->cl;
  pthread_mutex_lock(&cl->mu);
  int last = --s->refs == 0;
  pthread_mutex_unlock(&cl->mu);
  if (last)
    shard_last_ref(s);
}

ordo_journal *ordo_cluster_shard_journal(ordo_cluster_shard *s) {
  return s->j;
}
const char *ordo_cluster_shard_service(const ordo_cluster_shard *s) {
  return s->service;
}
uint64_t ordo_cluster_shard_epoch(const ordo_cluster_shard *s) {
  return s->epoch;
}
int ordo_cluster_shard_live(const ordo_cluster_shard *s) {
  return atomic_load(&s->live);
}
void *ordo_cluster_shard_userdata(const ordo_cluster_shard *s) {
  return s->ud;
}
void ordo_cluster_shard_set_userdata(ordo_cluster_shard *s, void *ud) {
  s->ud = ud;
}

const char *ordo_cluster_instance_id(const ordo_cluster *cl) { return cl->id; }
unsigned ordo_cluster_ttl_ms(const ordo_cluster *cl) { return cl->ttl_ms; }

int ordo_cluster_set_advertise(ordo_cluster *cl, const char *url) {
  char *copy = NULL, *old;
  if (url != NULL && (copy = ordo__strdup(url)) == NULL)
    return ordo__set_last_error(ORDO_E_NOMEM, NULL);
  pthread_mutex_lock(&cl->mu);
  old = cl->advertise;
  cl->advertise = copy;
  pthread_mutex_unlock(&cl->mu);
  free(old);
  return ORDO_OK;
}

void ordo_cluster_get_stats(ordo_cluster *cl, ordo_cluster_stats *st) {
  pthread_mutex_lock(&cl->mu);
  *st = cl->stats;
  st->held = cl->nshards;
  pthread_mutex_unlock(&cl->mu);
}

/* ---- the lease thread ------------------------------------------------------- */

/* Wait until the next round is due, pumping on notifications. */
static void wait_round(ordo_cluster *cl, unsigned long long due_ms) {
  for (;;) {
    unsigned long long now = ordo__wall_ms();
    pthread_mutex_lock(&cl->mu);
    int stop = cl->stop;
    pthread_mutex_unlock(&cl->mu);
    if (stop || now >= due_ms)
      return;
    struct pollfd pf[2] = {{.fd = cl->wake_fd, .events = POLLIN},
                           {.fd = cl->lc != NULL ? PQsocket(cl->lc) : -1,
                            .events = POLLIN}};
    int r = poll(pf, 2, (int)(due_ms - now));
    if (r < 0 && errno != EINTR)
      return;
    if (r > 0 && (pf[0].revents & POLLIN)) {
      uint64_t v;
      (void)!read(cl->wake_fd, &v, sizeof v);
      ordo__cl_release_closed(cl);
    }
    if (r > 0 && (pf[1].revents & (POLLIN | POLLERR | POLLHUP)))
      ordo__cl_notifications(cl);
  }
}

static void *lease_main(void *arg) {
  ordo_cluster *cl = arg;
  for (;;) {
    unsigned long long start = ordo__wall_ms();
    pthread_mutex_lock(&cl->mu);
    int stop = cl->stop;
    pthread_mutex_unlock(&cl->mu);
    if (stop)
      break;
    (void)ordo__cl_round(cl);
    unsigned long long due = start + cl->renew_ms;
    /* A lease of another instance that runs out before: take it then
     * (20 ms after, so that it has expired on the server's clock too). */
    if (cl->expiry_ms != 0 && cl->expiry_ms + 20 < due)
      due = cl->expiry_ms + 20;
    wait_round(cl, due);
  }
  return NULL;
}

/* ---- open / close ------------------------------------------------------------ */

static void cluster_free(ordo_cluster *cl) {
  if (cl->lc != NULL)
    PQfinish(cl->lc);
  for (size_t i = 0; i < cl->nidle; i++)
    PQfinish(cl->idle[i]);
  if (cl->wake_fd >= 0)
    close(cl->wake_fd);
  pthread_mutex_destroy(&cl->pool_mu);
  pthread_mutex_destroy(&cl->mu);
  pthread_cond_destroy(&cl->cv);
  pthread_cond_destroy(&cl->pump_cv);
  free(cl->shards);
  free(cl->retiring);
  free(cl->adopting); /* empty: close waited for every adoption */
  ORDO__FREE_ALL(cl->url, cl->queue, cl->id, cl->advertise, cl->prefix);
  free(cl);
}

int ordo_cluster_open(ordo_ctx *ctx, const ordo_cluster_options *opt,
                      ordo_cluster **out) {
  char host[64] = "", idbuf[CL_ID_MAX + 1];
  char *err = NULL;
  *out = NULL;
  if (ordo__on_runtime_thread())
    return ordo__set_last_error(ORDO_E_WOULD_DEADLOCK,
                                "cluster open blocks; not on a runtime thread");
  if (opt->url == NULL || !ordo_storage_is_postgres_uri(opt->url) ||
      strchr(opt->url, '#') != NULL)
    return ordo__set_last_error(ORDO_E_INVAL, "cluster: a shared queue needs "
                                "a PostgreSQL database URL (postgres://…, "
                                "without '#')");
  const char *queue = opt->queue != NULL ? opt->queue : "queue";
  if (queue[0] == 0 || strlen(queue) > 64)
    return ordo__set_last_error(ORDO_E_INVAL, "cluster: queue name must be "
                                "1..64 bytes");
  if (opt->instance_id != NULL) {
    if (opt->instance_id[0] == 0 || strlen(opt->instance_id) > CL_ID_MAX)
      return ordo__set_last_error(ORDO_E_INVAL, "cluster: instance id must "
                                  "be 1..%d bytes", CL_ID_MAX);
    snprintf(idbuf, sizeof idbuf, "%s", opt->instance_id);
  } else {
    (void)gethostname(host, sizeof host - 1);
    snprintf(idbuf, sizeof idbuf, "%s:%ld", host[0] ? host : "host",
             (long)getpid());
  }
  ordo_cluster *cl = calloc(1, sizeof(*cl));
  if (cl == NULL)
    return ORDO_E_NOMEM;
  cl->ctx = ctx;
  cl->wake_fd = -1;
  pthread_mutex_init(&cl->pool_mu, NULL);
  pthread_mutex_init(&cl->mu, NULL);
  pthread_cond_init(&cl->cv, NULL);
  pthread_cond_init(&cl->pump_cv, NULL);
  cl->ttl_ms = opt->ttl_ms != 0 ? opt->ttl_ms : CL_TTL_DEFAULT_MS;
  cl->renew_ms = opt->renew_ms != 0 ? opt->renew_ms : cl->ttl_ms / 3;
  if (cl->renew_ms == 0 || cl->renew_ms >= cl->ttl_ms) {
    cluster_free(cl);
    return ordo__set_last_error(ORDO_E_INVAL, "cluster: the renewal period "
                                "(%u ms) must be shorter than the lease TTL "
                                "(%u ms)", opt->renew_ms, cl->ttl_ms);
  }
  cl->jopt = opt->journal;
  cl->jopt.create = 1;
  cl->on_change = opt->on_change;
  cl->on_change_ud = opt->on_change_ud;
  cl->url = ordo__strdup(opt->url);
  cl->queue = ordo__strdup(queue);
  cl->id = ordo__strdup(idbuf);
  cl->advertise = opt->advertise != NULL ? ordo__strdup(opt->advertise) : NULL;
  size_t plen = strlen(queue) + sizeof "cluster//";
  cl->prefix = malloc(plen);
  if (cl->url == NULL || cl->queue == NULL || cl->id == NULL ||
      cl->prefix == NULL || (opt->advertise != NULL && cl->advertise == NULL)) {
    cluster_free(cl);
    return ORDO_E_NOMEM;
  }
  snprintf(cl->prefix, plen, "cluster/%s/", queue);
  cl->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (cl->wake_fd < 0) {
    cluster_free(cl);
    return ordo__set_last_error(ORDO_E_SYSTEM, "cluster: eventfd: %s",
                                strerror(errno));
  }
  void *c = NULL;
  int rc = ordo__storage_postgres_connect(cl->url, &c, &err);
  if (rc != ORDO_OK) {
    ordo__set_last_error(rc, "cluster: %s", err != NULL ? err : "?");
    free(err);
    cluster_free(cl);
    return rc;
  }
  cl->lc = c;
  char listen[64];
  snprintf(listen, sizeof listen, "LISTEN %s", CL_NOTIFY_CHANNEL);
  PGresult *r = PQexec(cl->lc, listen);
  int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
  PQclear(r);
  if (!ok) {
    rc = ordo__set_last_error(ORDO_E_STORAGE, "cluster: LISTEN: %s",
                              PQerrorMessage(cl->lc));
    cluster_free(cl);
    return rc;
  }
  if (pthread_create(&cl->pump_thread, NULL, ordo__cl_pump_main, cl) != 0) {
    cluster_free(cl);
    return ordo__set_last_error(ORDO_E_SYSTEM, "cluster: no pump thread");
  }
  cl->has_pump = 1;
  /* The first round here: an instance that answers is one that has taken
   * its share (its journals opening) or says why it cannot. */
  if ((rc = ordo__cl_round(cl)) != ORDO_OK) {
    ordo_cluster_stats st;
    ordo_cluster_get_stats(cl, &st);
    ordo__set_last_error(rc, "cluster: %s", st.last_error);
    ordo_cluster_close(cl);
    return rc;
  }
  if (pthread_create(&cl->thread, NULL, lease_main, cl) != 0) {
    ordo_cluster_close(cl);
    return ordo__set_last_error(ORDO_E_SYSTEM, "cluster: no lease thread");
  }
  cl->has_thread = 1;
  *out = cl;
  return ORDO_OK;
}

void ordo_cluster_close(ordo_cluster *cl) {
  if (cl == NULL)
    return;
  pthread_mutex_lock(&cl->mu);
  cl->stop = 1;
  pthread_mutex_unlock(&cl->mu);
  wake(cl);
  if (cl->has_thread)
    pthread_join(cl->thread, NULL);
  /* Journals still opening give their leases back (adopt_main sees stop);
   * the pump thread ends. */
  pthread_mutex_lock(&cl->mu);
  while (cl->nadopting > 0)
    pthread_cond_wait(&cl->cv, &cl->mu);
  pthread_cond_broadcast(&cl->pump_cv);
  pthread_mutex_unlock(&cl->mu);
  if (cl->has_pump)
    pthread_join(cl->pump_thread, NULL);
  cl->has_pump = 0;
  /* Every shard stops; the caller lets go of its references. */
  pthread_mutex_lock(&cl->mu);
  while (cl->nshards > 0)
    ordo__cl_retire_locked(cl, cl->nshards - 1, 0);
  pthread_mutex_unlock(&cl->mu);
  ordo__cl_changed(cl);
  pthread_mutex_lock(&cl->mu);
  for (;;) {
    int open = 0;
    for (size_t i = 0; i < cl->nretiring; i++)
      open |= !cl->retiring[i]->closed;
    if (!open)
      break;
    pthread_cond_wait(&cl->cv, &cl->mu);
  }
  pthread_mutex_unlock(&cl->mu);
  /* Hand every lease over, and leave. */
  ordo__cl_release_closed(cl);
  if (cl->lc != NULL) {
    const char *vals[2] = {cl->queue, cl->id};
    char err[256];
    char state[6];
    PGresult *r = ordo__cl_exec(cl->lc, "DELETE FROM ordo_cluster_instance"
                                " WHERE queue = $1 AND id = $2", 2, vals, err,
                                sizeof err, state);
    PQclear(r);
  }
  for (size_t i = 0; i < cl->nretiring; i++)
    shard_free(cl->retiring[i]);
  cluster_free(cl);
}

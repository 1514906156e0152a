/*
 * cluster_run.c — a cluster of `ordo serve --cluster` instances on one
 * PostgreSQL queue, run end to end and measured: for `ordo bench cluster`
 * and `ordo run --instances N` (drive.h).
 *
 * The embedded ledger and N instances start as children of this binary;
 * one poster posts the signed workload in order (100 items a request) to
 * the instances in turn, sending a request again to another instance when
 * its instance died (a retry is safe: the same batches are "already
 * enqueued"); meanwhile, with kills, a random instance is killed with
 * SIGKILL every kill_every_s and started again restart_after_s later under
 * the same id (or, with sigstop, stopped and continued). Each service's
 * progress is read from its owner every 100 ms (each alive instance lists
 * the services it runs, with their counts, in GET /v1/queue): the longest
 * time a service that had work given to it (acknowledged) finished none
 * of it is its stall, so that a service waiting for the poster is not
 * counted.
 * At the end: every instance stopped, `ordo verify --queue` against the
 * ledger, the ledger's blocks walked for a batch committed twice, and the
 * shared queue counted for a batch lost.
 *
 * ORDO_CLUSTER_TRACE=1 prints each kill and each service's progress as it
 * is seen ("trace TIME SERVICE DONE->DONE gap SECONDS owner iN"), to see
 * where a stall came from beside the instances' logs (--keep DIR).
 */
#include "cli/drive.h"
#include "ledger/ledger.h"

#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CR_MAX_INSTANCES 16
#define CR_CHUNK 100

typedef struct cr_inst {
  ordo__child c;
  int alive;         /* running: posted to and asked (not stopped) */
  int stopped;       /* SIGSTOPped: SIGCONT at restart_at */
  double restart_at; /* dead: when to start it again */
  int starts;
} cr_inst;

/* Each service's batches in the workload, and what it has finished (as
 * its owner said last). */
typedef struct cr_svc {
  const char *name;
  long long total, done;
  long long posted;   /* its batches acknowledged by an instance so far */
  double last_change; /* its last verdict, or when it got work again
                         after it had finished all it had been given */
} cr_svc;

typedef struct cr_state {
  const ordo__cluster_run_opts *o;
  char self[4096], queue[64], token[65], tpath[1100], cfg[1100], wpath[1100];
  ordo__child node;
  pthread_mutex_t mu; /* inst[].c.url and alive, posted */
  cr_inst inst[CR_MAX_INSTANCES];
  json_t *items;
  size_t n;
  cr_svc *sv;          /* mu: posted, done, last_change */
  size_t nsv;
  size_t *item_svc;    /* items[i]'s service in sv */
  atomic_int posted;       /* every chunk acknowledged */
  atomic_int stop_post;
  atomic_int post_failed;
  char post_err[300];
} cr_state;

static int inst_start(cr_state *s, int i) {
  char id[16], ttl[16], log[1200];
  snprintf(id, sizeof id, "i%d", i);
  snprintf(ttl, sizeof ttl, "%u", s->o->ttl_ms);
  snprintf(log, sizeof log, "%s/serve-%s-%d.log", s->o->dir, id,
           s->inst[i].starts);
  char *argv[] = {s->self, "serve", "--cluster", "--queue", s->queue,
                  "--instance-id", id, "--lease-ttl-ms", ttl, "--port", "0",
                  "--config", s->cfg, "--data", (char *)s->o->pg_url,
                  "--ledger", s->node.url, "--token-file", s->tpath, NULL};
  ordo__child c;
  if (ordo__child_start(argv, log, &c) != ORDO_OK) {
    fprintf(stderr, "cluster: instance %s did not start (%s)\n", id, log);
    return ORDO_E_SYSTEM;
  }
  pthread_mutex_lock(&s->mu);
  s->inst[i].c = c;
  s->inst[i].alive = 1;
  s->inst[i].starts++;
  pthread_mutex_unlock(&s->mu);
  return ORDO_OK;
}

/* The URL of the k-th alive instance (k modulo how many are), or "". */
static void alive_url(cr_state *s, size_t k, char *url, size_t cap) {
  int alive[CR_MAX_INSTANCES], na = 0;
  url[0] = 0;
  pthread_mutex_lock(&s->mu);
  for (int i = 0; i < s->o->instances; i++)
    if (s->inst[i].alive)
      alive[na++] = i;
  if (na > 0)
    snprintf(url, cap, "%s", s->inst[alive[k % (size_t)na]].c.url);
  pthread_mutex_unlock(&s->mu);
}

static void *poster_main(void *arg) {
  cr_state *s = arg;
  CURL *h = curl_easy_init();
  char base[160], url[200];
  size_t k = 0;
  double start = ordo__cli_now_s();
  for (size_t off = 0; h != NULL && off < s->n && !atomic_load(&s->stop_post);) {
    /* At most rate batches a second: chunk off is due at off / rate. */
    if (s->o->rate > 0) {
      double due = start + (double)off / s->o->rate, now = ordo__cli_now_s();
      if (due > now)
        usleep((useconds_t)((due - now) * 1e6));
    }
    json_t *chunk = json_array();
    for (size_t i = off; i < s->n && i < off + CR_CHUNK; i++)
      json_array_append(chunk, json_array_get(s->items, i));
    char *body = json_dumps(chunk, JSON_COMPACT), *resp = NULL;
    json_decref(chunk);
    alive_url(s, k++, base, sizeof base);
    snprintf(url, sizeof url, "%s/v1/batches", base);
    long code = body != NULL && base[0] ? ordo__http(h, url, s->token, body,
                                                     &resp)
                                        : -1;
    free(body);
    if (code == 200 || code == 202) {
      /* Work for its services from now: a service that had finished what
       * it had been given waited on this poster, not on a failover. */
      double now = ordo__cli_now_s();
      pthread_mutex_lock(&s->mu);
      for (size_t i = off; i < s->n && i < off + CR_CHUNK; i++) {
        cr_svc *c = &s->sv[s->item_svc[i]];
        if (c->done >= c->posted)
          c->last_change = now;
        c->posted++;
      }
      pthread_mutex_unlock(&s->mu);
      off += CR_CHUNK;
    } else if (code >= 400 && code < 500) {
      /* Refused: no instance will take it (a bug, or bad input). */
      snprintf(s->post_err, sizeof s->post_err, "POST answered %ld: %.200s",
               code, resp != NULL ? resp : "");
      atomic_store(&s->post_failed, 1);
      free(resp);
      break;
    } else {
      usleep(50000); /* that instance died: the next one */
    }
    free(resp);
  }
  if (h != NULL)
    curl_easy_cleanup(h);
  atomic_store(&s->posted, !atomic_load(&s->post_failed) &&
                               !atomic_load(&s->stop_post));
  return NULL;
}

static cr_svc *svc_of(cr_svc *v, size_t n, const char *name) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(v[i].name, name) == 0)
      return &v[i];
  return NULL;
}

/* One look at every service's progress (each alive instance says what
 * it runs, with its counts, in GET /v1/queue); 1 when all are finished.
 * A stall is a gap between two verdicts of a service, or from its last
 * one to now while it has work left: from its first verdict on (before
 * it, the wait is the run's start, not a failover). */
static int progress_poll(cr_state *s, CURL *h, cr_svc *sv, size_t nsv,
                         double now) {
  for (int i = 0; i < s->o->instances; i++) {
    char url[300], *resp = NULL;
    pthread_mutex_lock(&s->mu);
    int alive = s->inst[i].alive;
    snprintf(url, sizeof url, "%s/v1/queue", s->inst[i].c.url);
    pthread_mutex_unlock(&s->mu);
    if (!alive)
      continue;
    json_t *q = NULL, *x;
    size_t k;
    if (ordo__http(h, url, s->token, NULL, &resp) == 200 && resp != NULL)
      q = json_loads(resp, 0, NULL);
    free(resp);
    json_array_foreach(json_object_get(json_object_get(q, "cluster"),
                                       "shards"), k, x) {
      const char *svc = json_string_value(json_object_get(x, "service"));
      cr_svc *c = svc != NULL ? svc_of(sv, nsv, svc) : NULL;
      if (c == NULL)
        continue;
      long long d = json_integer_value(json_object_get(x, "committed")) +
                    json_integer_value(json_object_get(x, "invalid"));
      pthread_mutex_lock(&s->mu);
      if (d > c->done) {
        if (getenv("ORDO_CLUSTER_TRACE") != NULL)
          fprintf(stderr, "trace %.3f %s %lld->%lld gap %.3f owner i%d\n",
                  now, svc, c->done, d, c->done > 0 ? now - c->last_change
                                                    : 0.0, i);
        c->done = d;
        c->last_change = now;
      }
      pthread_mutex_unlock(&s->mu);
    }
    json_decref(q);
  }
  int all = 1;
  pthread_mutex_lock(&s->mu);
  for (size_t i = 0; i < nsv; i++)
    if (sv[i].done < sv[i].total)
      all = 0;
  pthread_mutex_unlock(&s->mu);
  return all;
}

/* Batches the ledger's blocks hold more than once. */
static long long ledger_twice(const char *node_url, long long *batches) {
  CURL *h = curl_easy_init();
  char url[600];
  json_t *seen = json_object();
  long long twice = 0;
  *batches = 0;
  snprintf(url, sizeof url, "%s/blocks?limit=100", node_url);
  while (h != NULL && url[0]) {
    char *resp = NULL;
    json_t *r = NULL, *blk, *b;
    size_t i, k;
    if (ordo__http(h, url, NULL, NULL, &resp) == 200 && resp != NULL)
      r = json_loads(resp, 0, NULL);
    free(resp);
    if (r == NULL) {
      twice = -1;
      break;
    }
    json_array_foreach(json_object_get(r, "data"), i, blk)
      json_array_foreach(json_object_get(blk, "batches"), k, b) {
        const char *id = json_string_value(
            json_object_get(b, "header_signature"));
        if (id == NULL)
          continue;
        (*batches)++;
        if (json_object_get(seen, id) != NULL)
          twice++;
        else
          json_object_set_new(seen, id, json_true());
      }
    const char *next =
        json_string_value(json_object_get(json_object_get(r, "paging"),
                                          "next"));
    snprintf(url, sizeof url, "%s", next != NULL ? next : "");
    json_decref(r);
  }
  json_decref(seen);
  if (h != NULL)
    curl_easy_cleanup(h);
  return twice;
}

/* How many of the workload's ids the shared queue holds. */
static long long queue_count(const char *pg_url, const char *queue) {
  char conninfo[1024];
  /* ordo's own URL parameters are not libpq's. */
  snprintf(conninfo, sizeof conninfo, "%s", pg_url);
  char *q = strstr(conninfo, "ordo_");
  if (q != NULL && (q[-1] == '?' || q[-1] == '&'))
    q[-1] = 0;
  PGconn *c = PQconnectdb(conninfo);
  long long n = -1;
  if (PQstatus(c) == CONNECTION_OK) {
    const char *v[1] = {queue};
    PGresult *r = PQexecParams(c, "SELECT count(*) FROM ordo_cluster_batch"
                               " WHERE queue = $1", 1, NULL, v, NULL, NULL, 0);
    if (PQresultStatus(r) == PGRES_TUPLES_OK)
      n = atoll(PQgetvalue(r, 0, 0));
    PQclear(r);
  }
  PQfinish(c);
  return n;
}

static int write_file(const char *path, const char *text, int mode) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
  if (fd < 0)
    return -1;
  ssize_t w = write(fd, text, strlen(text));
  close(fd);
  return w == (ssize_t)strlen(text) ? 0 : -1;
}

static void bar(const cr_state *s, long long done, double el, int kills) {
  int alive = 0;
  for (int i = 0; i < s->o->instances; i++)
    alive += s->inst[i].alive;
  int w = 30, f = s->n > 0 ? (int)(w * done / (long long)s->n) : 0;
  fprintf(stderr, "\r  [%.*s%*s] %lld/%zu  %.1fs  instances %d/%d  kills %d ",
          f, "==============================", w - f, "", done, s->n, el,
          alive, s->o->instances, kills);
}

int ordo__cluster_run(const ordo__cluster_run_opts *o,
                      ordo__cluster_run_result *r) {
  cr_state *s = calloc(1, sizeof(*s));
  ordo_workload *w = NULL;
  cr_svc *sv = NULL;
  size_t nsv = 0;
  pthread_t poster;
  int has_poster = 0, rc = ORDO_E_SYSTEM;
  unsigned char raw[32];
  CURL *h = NULL;
  FILE *f;

  memset(r, 0, sizeof(*r));
  if (s == NULL)
    return ORDO_E_NOMEM;
  if (o->instances < 1 || o->instances > CR_MAX_INSTANCES) {
    free(s);
    return ORDO_E_INVAL;
  }
  s->o = o;
  pthread_mutex_init(&s->mu, NULL);
  ssize_t sl = readlink("/proc/self/exe", s->self, sizeof s->self - 1);
  if (sl <= 0)
    goto out;
  s->self[sl] = 0;
  snprintf(s->queue, sizeof s->queue, "run-%ld-%llx", (long)getpid(),
           (unsigned long long)ordo__now_ns());
  /* The workload, and each service's share of it. */
  ordo_workload_gen gen;
  ordo_workload_gen_init(&gen);
  gen.services = o->services;
  gen.batches = o->batches;
  gen.conflict = o->conflict;
  gen.invalid = o->invalid;
  gen.deps = o->deps;
  gen.seed = o->seed;
  snprintf(s->wpath, sizeof s->wpath, "%s/workload.jsonl", o->dir);
  if ((f = fopen(s->wpath, "w")) == NULL)
    goto out;
  int gr = ordo_workload_generate(&gen, f);
  fclose(f);
  if (gr != ORDO_OK || ordo_workload_load(s->wpath, &w) != ORDO_OK ||
      ordo__serve_items(w, &s->items) != ORDO_OK) {
    fprintf(stderr, "cluster: %s\n", ordo_last_error_message());
    goto out;
  }
  s->n = json_array_size(s->items);
  sv = calloc(o->services + 1, sizeof(*sv));
  if (sv == NULL)
    goto out;
  if ((s->item_svc = calloc(w->nbatches + 1, sizeof(*s->item_svc))) == NULL)
    goto out;
  for (size_t i = 0; i < w->nbatches; i++) {
    cr_svc *c = svc_of(sv, nsv, w->batches[i].service);
    if (c == NULL) {
      c = &sv[nsv++];
      c->name = w->batches[i].service;
    }
    c->total++;
    s->item_svc[i] = (size_t)(c - sv);
  }
  s->sv = sv;
  s->nsv = nsv;
  /* A token for this run, the instances' config. */
  randombytes_buf(raw, sizeof raw);
  sodium_bin2hex(s->token, sizeof s->token, raw, sizeof raw);
  snprintf(s->tpath, sizeof s->tpath, "%s/token", o->dir);
  snprintf(s->cfg, sizeof s->cfg, "%s/serve.json", o->dir);
  if (write_file(s->tpath, s->token, 0600) != 0 ||
      write_file(s->cfg, "{\"poll_ms\":10}\n", 0600) != 0)
    goto out;
  {
    char block[16], ndir[1100], log[1100];
    snprintf(block, sizeof block, "%u", o->block_ms);
    snprintf(ndir, sizeof ndir, "%s/node", o->dir);
    snprintf(log, sizeof log, "%s/node.log", o->dir);
    /* Every instance talks to it from 127.0.0.1, each with a submit and
     * status polls per service it runs: the node's per-client cap (64,
     * against hostile clients) is one client's, not a cluster's. */
    char *argv[] = {s->self, "ledger", "--port", "0", "--block-ms", block,
                    "--seed", "7", "--data", ndir,
                    "--connection-limit-per-ip", "1024", NULL};
    if (ordo__child_start(argv, log, &s->node) != ORDO_OK) {
      fprintf(stderr, "cluster: the ledger node did not start (%s)\n", log);
      goto out;
    }
  }
  for (int i = 0; i < o->instances; i++)
    if (inst_start(s, i) != ORDO_OK)
      goto out;
  /* Each instance's dashboard, with this run's token (see run.c). */
  for (int i = 0; i < o->instances && o->progress; i++)
    fprintf(stderr, "ordo run: watch instance i%d at %s/ui#token=%s\n", i,
            s->inst[i].c.url, s->token);
  double t0 = ordo__cli_now_s(), next_kill = t0 + o->kill_every_s,
         last_bar = 0;
  if (pthread_create(&poster, NULL, poster_main, s) != 0)
    goto out;
  has_poster = 1;
  for (size_t i = 0; i < nsv; i++)
    sv[i].last_change = t0;
  h = curl_easy_init();
  unsigned seed = (unsigned)o->seed;
  for (;;) {
    double now = ordo__cli_now_s();
    if (now - t0 > o->timeout_s || atomic_load(&s->post_failed))
      break;
    /* Kills and restarts. */
    if (o->kill_every_s > 0 && now >= next_kill && !r->finished) {
      int alive[CR_MAX_INSTANCES], na = 0;
      for (int i = 0; i < o->instances; i++)
        if (s->inst[i].alive)
          alive[na++] = i;
      if (na > 0) {
        int v = alive[rand_r(&seed) % (unsigned)na];
        pthread_mutex_lock(&s->mu);
        s->inst[v].alive = 0;
        s->inst[v].restart_at = now + o->restart_after_s;
        pid_t pid = s->inst[v].c.pid;
        s->inst[v].stopped = o->sigstop;
        pthread_mutex_unlock(&s->mu);
        if (o->sigstop) {
          kill(pid, SIGSTOP);
        } else {
          kill(pid, SIGKILL);
          waitpid(pid, NULL, 0);
        }
        r->kills++;
        if (getenv("ORDO_CLUSTER_TRACE") != NULL)
          {
            struct timespec ws;
            clock_gettime(CLOCK_REALTIME, &ws);
            fprintf(stderr, "trace %.3f kill i%d (wall %ld.%03ld)\n", now,
                    v, (long)ws.tv_sec, ws.tv_nsec / 1000000L);
          }
      }
      next_kill = now + o->kill_every_s;
    }
    for (int i = 0; i < o->instances; i++)
      if (!s->inst[i].alive && s->inst[i].restart_at > 0 &&
          now >= s->inst[i].restart_at) {
        s->inst[i].restart_at = 0;
        if (s->inst[i].stopped) {
          /* Back from a stop: its leases went to others meanwhile. */
          kill(s->inst[i].c.pid, SIGCONT);
          pthread_mutex_lock(&s->mu);
          s->inst[i].stopped = 0;
          s->inst[i].alive = 1;
          pthread_mutex_unlock(&s->mu);
        } else {
          (void)inst_start(s, i);
        }
      }
    int all = progress_poll(s, h, sv, nsv, now);
    long long done = 0;
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < nsv; i++) {
      done += sv[i].done;
      /* A stall: a service with work given to it (acknowledged) and
       * nothing finished since its last verdict, or since it got that
       * work; from its first verdict on (before it, the wait is the run's
       * start). */
      if (sv[i].done > 0 && sv[i].done < sv[i].posted) {
        if (now - sv[i].last_change > r->max_stall_s) {
          r->max_stall_s = now - sv[i].last_change;
          snprintf(r->max_stall_service, sizeof r->max_stall_service, "%s",
                   sv[i].name);
        }
      }
    }
    pthread_mutex_unlock(&s->mu);
    if (o->progress && (now - last_bar > 0.2 || all)) {
      bar(s, done, now - t0, r->kills);
      last_bar = now;
    }
    if (all && atomic_load(&s->posted)) {
      r->finished = 1;
      r->seconds = now - t0;
      break;
    }
    usleep(100000);
  }
  if (o->progress)
    fputc('\n', stderr);
  atomic_store(&s->stop_post, 1);
  if (has_poster)
    pthread_join(poster, NULL);
  has_poster = 0;
  if (atomic_load(&s->post_failed))
    fprintf(stderr, "cluster: %s\n", s->post_err);
  for (size_t i = 0; i < nsv; i++) {
    r->committed += sv[i].done; /* committed + invalid, split below */
  }
  for (int i = 0; i < o->instances; i++) {
    if (s->inst[i].stopped) {
      kill(s->inst[i].c.pid, SIGCONT);
      s->inst[i].stopped = 0;
      s->inst[i].alive = 1;
    }
    if (s->inst[i].alive) {
      (void)ordo__child_stop(&s->inst[i].c);
      s->inst[i].alive = 0;
    }
  }
  /* The ledger against a serial replay of what was enqueued. */
  {
    char vpath[1100];
    snprintf(vpath, sizeof vpath, "%s/verify.json", o->dir);
    char *argv[] = {s->self, "verify", "--workload", s->wpath, "--ledger",
                    s->node.url, "--data", (char *)o->pg_url, "--queue",
                    s->queue, "--family", "mixed", "--json", NULL};
    pid_t pid = fork();
    if (pid == 0) {
      int fd = open(vpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
      if (fd >= 0)
        dup2(fd, 1);
      execv("/proc/self/exe", argv);
      _exit(127);
    }
    int st = 0;
    if (pid > 0)
      waitpid(pid, &st, 0);
    json_t *v = json_load_file(vpath, 0, NULL);
    r->verify_equal = pid > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0 &&
                      json_is_true(json_object_get(v, "equal"));
    r->differences = (long long)json_array_size(json_object_get(v,
                                                                "differences"));
    r->invalid = -json_integer_value(json_object_get(v, "replayed"));
    json_decref(v);
  }
  long long in_ledger = 0;
  r->committed_twice = ledger_twice(s->node.url, &in_ledger);
  /* done = committed + invalid; verify replayed the committed ones. */
  {
    long long done = r->committed;
    r->committed = -r->invalid;
    r->invalid = done - r->committed;
  }
  long long held = queue_count(o->pg_url, s->queue);
  /* Lost: acknowledged (all of them, once posted) but not in the shared
   * queue, or in it and never finished. */
  int posted = atomic_load(&s->posted);
  r->lost = (posted ? (long long)s->n : 0) - (held < 0 ? 0 : held);
  if (r->finished == 0 && posted)
    r->lost += held - (r->committed + r->invalid);
  r->batches = s->n;
  r->per_s = r->seconds > 0 ? (double)s->n / r->seconds : 0;
  rc = posted && r->finished ? ORDO_OK : ORDO_E_STATE;
out:
  atomic_store(&s->stop_post, 1);
  if (has_poster)
    pthread_join(poster, NULL);
  for (int i = 0; i < o->instances; i++) {
    if (s->inst[i].stopped)
      kill(s->inst[i].c.pid, SIGCONT);
    if (s->inst[i].alive || s->inst[i].stopped)
      (void)ordo__child_stop(&s->inst[i].c);
  }
  (void)ordo__child_stop(&s->node);
  if (h != NULL)
    curl_easy_cleanup(h);
  sodium_memzero(s->token, sizeof s->token);
  json_decref(s->items);
  ordo_workload_free(w);
  free(sv);
  free(s->item_svc);
  pthread_mutex_destroy(&s->mu);
  free(s);
  return rc;
}

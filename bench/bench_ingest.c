/*
 * bench_ingest.c — `ordo bench ingest`: what `ordo serve`'s HTTP API costs
 * on the way in, against the journal it writes to.
 *
 * The same batches (--count requests of 100 per caller, 200 services,
 * none conflicting), side by side in one run, twice: as plain queue items
 * (id, service, reads, writes: what a journal-only `ordo serve` takes) and
 * as signed Sawtooth batches (a base64 "payload" each, what a server in
 * front of a ledger takes):
 *   journal  N caller threads, each a loop of ordo_journal_enqueue_many of
 *            100 batches, waiting for each to be durable, into a journal
 *            in this process;
 *   http     N clients, each a kept-alive connection posting the same
 *            100-item arrays to POST /v1/batches of an `ordo serve` in
 *            this process (journal only, no ledger) and waiting for each
 *            202 (sent once the items are durable). The server also parses
 *            the JSON and decodes and checks each signed batch.
 * batches/s is all the batches over the time from the first request to the
 * last answer; the signing is done before either clock starts.
 */
#include "bench.h"
#include "base/base.h"
#include "cli/drive.h"
#include "queue/queue.h"
#include "server/server.h"

#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ING_ITEMS 100
#define ING_DEFAULT_REQUESTS 10
#define ING_TOKEN "bench-ingest-token-0123456789"

static const unsigned ing_default_callers[] = {1, 8, 64};

typedef struct ing_req {
  char *body; /* the JSON array, for http */
  ordo_queue_batch_spec specs[ING_ITEMS];
  unsigned char *payloads[ING_ITEMS];
  const char **addrs[ING_ITEMS]; /* reads, then writes */
} ing_req;

typedef struct ing_run {
  ing_req *reqs;
  size_t nreqs, next; /* next: the requests handed out (under mu) */
  pthread_mutex_t mu;
  ordo_journal *j;
  char url[96];
  int failed;
} ing_run;

/* The next request for a caller, or NULL when all are out. */
static ing_req *ing_next(ing_run *r) {
  ing_req *q = NULL;
  pthread_mutex_lock(&r->mu);
  if (r->next < r->nreqs && !r->failed)
    q = &r->reqs[r->next++];
  pthread_mutex_unlock(&r->mu);
  return q;
}

static void ing_fail(ing_run *r) {
  pthread_mutex_lock(&r->mu);
  r->failed = 1;
  pthread_mutex_unlock(&r->mu);
}

static void *ing_journal_caller(void *arg) {
  ing_run *r = arg;
  ing_req *q;
  while ((q = ing_next(r)) != NULL) {
    ordo_op *op = ordo_journal_enqueue_many(r->j, q->specs, ING_ITEMS, NULL);
    if (op == NULL || ordo_op_wait(op, -1) != ORDO_OK) {
      bench_error("ingest: enqueue: %s",
                  op != NULL ? ordo_op_message(op) : "out of memory");
      ing_fail(r);
    }
    if (op != NULL)
      ordo_op_release(op);
  }
  return NULL;
}

static void *ing_http_caller(void *arg) {
  ing_run *r = arg;
  CURL *h = curl_easy_init();
  ing_req *q;
  if (h == NULL) {
    ing_fail(r);
    return NULL;
  }
  while ((q = ing_next(r)) != NULL) {
    char *answer = NULL;
    long code = ordo__http(h, r->url, ING_TOKEN, q->body, &answer);
    if (code != 202) {
      bench_error("ingest: POST /v1/batches answered %ld: %.200s", code,
                  answer != NULL ? answer : "");
      ing_fail(r);
    }
    free(answer);
  }
  curl_easy_cleanup(h);
  return NULL;
}

/* Run callers threads of fn over r's requests; the seconds it took. */
static double ing_drive(ing_run *r, unsigned callers, void *(*fn)(void *)) {
  pthread_t *t = calloc(callers, sizeof *t);
  uint64_t t0;
  unsigned started = 0;
  if (t == NULL)
    return -1;
  r->next = 0;
  t0 = bench_now_ns();
  for (unsigned i = 0; i < callers; i++)
    if (pthread_create(&t[i], NULL, fn, r) == 0)
      started++;
  for (unsigned i = 0; i < started; i++)
    pthread_join(t[i], NULL);
  free(t);
  return started == callers ? (double)(bench_now_ns() - t0) / 1e9 : -1;
}

/* The requests: n batches (signed, with their payloads when sig), as JSON
 * arrays and as specs. */
static int ing_make(size_t nreqs, int sig, ing_run *r) {
  json_t *items = NULL;
  int rc;

  if ((rc = bench_signed_items(200, nreqs * ING_ITEMS, 21, &items)) !=
      ORDO_OK)
    return rc;
  if ((r->reqs = calloc(nreqs, sizeof *r->reqs)) == NULL) {
    json_decref(items);
    return ORDO_E_NOMEM;
  }
  r->nreqs = nreqs;
  for (size_t q = 0; q < nreqs && rc == ORDO_OK; q++) {
    ing_req *rq = &r->reqs[q];
    json_t *part = json_array();
    for (size_t i = 0; i < ING_ITEMS && rc == ORDO_OK; i++) {
      json_t *it = json_array_get(items, q * ING_ITEMS + i);
      json_t *rd = json_object_get(it, "reads"), *wr = json_object_get(it, "writes");
      const char *b64 = json_string_value(json_object_get(it, "payload"));
      ordo_queue_batch_spec *sp = &rq->specs[i];
      size_t nr = json_array_size(rd), nw = json_array_size(wr), blen = 0;
      if (sig) {
        json_array_append(part, it);
      } else {
        json_t *c = json_copy(it);
        json_object_del(c, "payload");
        json_array_append_new(part, c);
      }
      rq->payloads[i] = malloc(strlen(b64) + 1);
      rq->addrs[i] = calloc(nr + nw + 1, sizeof(char *));
      if (rq->payloads[i] == NULL || rq->addrs[i] == NULL ||
          sodium_base642bin(rq->payloads[i], strlen(b64) + 1, b64,
                            strlen(b64), NULL, &blen, NULL,
                            sodium_base64_VARIANT_ORIGINAL) != 0) {
        rc = ORDO_E_NOMEM;
        break;
      }
      for (size_t k = 0; k < nr + nw; k++)
        rq->addrs[i][k] = ordo__strdup(json_string_value(
            json_array_get(k < nr ? rd : wr, k < nr ? k : k - nr)));
      sp->id = ordo__strdup(json_string_value(json_object_get(it, "id")));
      sp->service =
          ordo__strdup(json_string_value(json_object_get(it, "service")));
      sp->reads = rq->addrs[i];
      sp->nreads = nr;
      sp->writes = rq->addrs[i] + nr;
      sp->nwrites = nw;
      sp->payload = sig ? rq->payloads[i] : NULL;
      sp->payload_len = sig ? blen : 0;
    }
    rq->body = json_dumps(part, JSON_COMPACT);
    json_decref(part);
    if (rq->body == NULL)
      rc = ORDO_E_NOMEM;
  }
  json_decref(items);
  return rc;
}

static void ing_free(ing_run *r) {
  for (size_t q = 0; q < r->nreqs; q++) {
    ing_req *rq = &r->reqs[q];
    free(rq->body);
    for (size_t i = 0; i < ING_ITEMS; i++) {
      free((char *)rq->specs[i].id);
      free((char *)rq->specs[i].service);
      free(rq->payloads[i]);
      if (rq->addrs[i] != NULL)
        for (size_t k = 0; k < rq->specs[i].nreads + rq->specs[i].nwrites; k++)
          free((char *)rq->addrs[i][k]);
      free(rq->addrs[i]);
    }
  }
  free(r->reqs);
}

/* One point: callers on each side, each into a fresh journal or server. */
static int ing_point(const char *dir, unsigned callers, unsigned per_caller,
                     int sig, double *journal_per_s, double *http_per_s) {
  ing_run r;
  char path[256];
  ordo_ctx *ctx = NULL;
  ordo_server *srv = NULL;
  ordo_server_options so;
  ordo_journal_options jo;
  double s;
  int rc;

  memset(&r, 0, sizeof r);
  pthread_mutex_init(&r.mu, NULL);
  if ((rc = ing_make((size_t)callers * per_caller, sig, &r)) != ORDO_OK) {
    bench_error("ingest: making the batches: %s", ordo_last_error_message());
    goto out;
  }
  /* The journal in this process. */
  if ((ctx = bench_ctx_new(NULL)) == NULL) {
    rc = ORDO_E_NOMEM;
    goto out;
  }
  ordo_journal_options_init(&jo);
  jo.create = 1;
  snprintf(path, sizeof path, "%s/j%u-%d.db", dir, callers, sig);
  if ((rc = ordo_journal_open(ctx, path, &jo, &r.j)) != ORDO_OK) {
    bench_error("ingest: journal: %s", ordo_last_error_message());
    goto out;
  }
  s = ing_drive(&r, callers, ing_journal_caller);
  (void)ordo_journal_close(r.j);
  r.j = NULL;
  if (s <= 0 || r.failed) {
    rc = ORDO_E_IO;
    goto out;
  }
  *journal_per_s = (double)r.nreqs * ING_ITEMS / s;
  /* The same batches through ordo serve. */
  ordo_server_options_init(&so);
  snprintf(path, sizeof path, "%s/srv%u-%d", dir, callers, sig);
  so.port = 0;
  so.token = ING_TOKEN;
  so.data_dir = path;
  so.rate_limit_per_s = 0;
  if ((rc = ordo_server_start(&so, &srv)) != ORDO_OK) {
    bench_error("ingest: ordo serve: %s", ordo_last_error_message());
    goto out;
  }
  snprintf(r.url, sizeof r.url, "http://127.0.0.1:%d/v1/batches",
           ordo_server_port(srv));
  s = ing_drive(&r, callers, ing_http_caller);
  if (s <= 0 || r.failed) {
    rc = ORDO_E_IO;
    goto out;
  }
  *http_per_s = (double)r.nreqs * ING_ITEMS / s;
out:
  if (srv != NULL)
    (void)ordo_server_stop(srv);
  if (r.j != NULL)
    (void)ordo_journal_close(r.j);
  if (ctx != NULL)
    ordo_ctx_free(ctx);
  ing_free(&r);
  pthread_mutex_destroy(&r.mu);
  return rc;
}

static int ingest_run(const bench_opts *opts, json_t **out) {
  unsigned per = opts->count > 0 ? opts->count : ING_DEFAULT_REQUESTS;
  const unsigned *callers = opts->nthreads > 0 ? opts->threads
                                               : ing_default_callers;
  size_t np = opts->nthreads > 0 ? opts->nthreads : 3;
  char dir[] = "/tmp/ordo-bench-ingest-XXXXXX";
  json_t *o = json_object(), *pts = json_array();
  int cli = ORDO_CLI_FAIL;

  if (o == NULL || pts == NULL || mkdtemp(dir) == NULL) {
    bench_error("ingest: cannot set up");
    goto out;
  }
  if (!opts->json)
    printf("ordo bench ingest: requests of %d batches, %u per caller, into "
           "the journal in process vs POST /v1/batches of ordo serve "
           "(kept-alive connections); cores: %ld\n\n%-7s %8s %14s %14s "
           "%10s\n",
           ING_ITEMS, per, bench_cores(), "items", "callers", "journal b/s",
           "http b/s", "http/jrnl");
  for (int sig = 0; sig < 2; sig++)
    for (size_t i = 0; i < np; i++) {
      double jr = 0, hr = 0;
      char key[48];
      if (ing_point(dir, callers[i], per, sig, &jr, &hr) != ORDO_OK)
        goto out;
      if (!opts->json)
        printf("%-7s %8u %14.0f %14.0f %10.2f\n", sig ? "signed" : "plain",
               callers[i], jr, hr, jr > 0 ? hr / jr : 0);
      json_array_append_new(
          pts, json_pack("{s:s, s:i, s:f, s:f, s:f}", "items",
                         sig ? "signed" : "plain", "callers", (int)callers[i],
                         "journal_per_s", jr, "http_per_s", hr,
                         "http_vs_journal", jr > 0 ? hr / jr : 0));
      snprintf(key, sizeof key, "http_vs_journal_%s_%u",
               sig ? "signed" : "plain", callers[i]);
      json_object_set_new(o, key, json_real(jr > 0 ? hr / jr : 0));
    }
  json_object_set_new(o, "points", pts);
  pts = NULL;
  json_object_set_new(o, "items_per_request", json_integer(ING_ITEMS));
  json_object_set_new(o, "cores", json_integer(bench_cores()));
  *out = o;
  o = NULL;
  cli = ORDO_CLI_OK;
out:
  json_decref(pts);
  json_decref(o);
  bench_rmdir_all(dir);
  return cli;
}

const bench_def bench_ingest_def = {
    "ingest",
    "batches/s into the journal in process vs through ordo serve's POST "
    "/v1/batches, 100-item requests, 1, 8 and 64 callers",
    "  --count N      ingest: requests of 100 per caller (default 10)\n"
    "  --threads L    ingest: caller counts (default 1,8,64)\n",
    BENCH_FLAG_COUNT | BENCH_FLAG_THREADS,
    ingest_run,
};

/*
 * server.c — start and stop, the token, the loop thread that drives the
 * submitter, and the libmicrohttpd server around ordo_server_handle.
 *
 * libmicrohttpd (src/http/mhd.h) runs one thread per connection (so a
 * request waiting for its journal writes holds only its own connection)
 * with an internal polling thread. A request is checked (rate limit, auth,
 * declared Content-Length) when its headers arrive and a refusal is queued
 * then, on the access handler's first call: libmicrohttpd sends it instead
 * of `100 Continue`, reads no body byte and closes the connection after.
 * An accepted body is gathered up to max_body_bytes, then handled.
 *
 * Hostile clients: the connection guard (src/http/guard.h) lists every
 * open connection with a deadline for its request headers and shuts down
 * the late ones (a client trickling a byte every few seconds included);
 * libmicrohttpd closes a connection idle for idle_timeout_ms and refuses
 * more than connection_limit_per_ip per client address. A connection
 * answered from its headers closes with a lingering close (the guard
 * drains its socket until the client closes), so that a client sending its
 * body at once, without Expect: 100-continue, is not reset before it reads
 * the answer. Request bodies are wiped when freed: they may hold
 * credentials.
 *
 * Stop order: quiesce (no new connections), wait for requests in flight
 * (bounded), stop the daemon (joins its threads), stop the loop (joins it
 * after its step), cancel jobs, free the submitter, port and client, close
 * the journal, free the context.
 */
#include "storage/storage.h"
#include "server/internal.h"
#include "server/reply.h"
#include "server/routes.h"
#include "http/http.h"
#include "http/mhd.h"
#include "runtime/runtime.h"

#include <arpa/inet.h>
#include <errno.h>
#include <malloc.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------------ */
/* Token and addresses                                                       */
/* ------------------------------------------------------------------------ */

/* Read the token file into the token's SHA-256. The file must be a
 * regular file nobody else may read (mode & 0004 == 0). */
static int read_token_file(const char *path, unsigned char hash[32]) {
  char buf[4096];
  size_t len = 0;
  int rc = ordo_ledger_secret_file_read("token file", path, buf, sizeof buf,
                                        &len);
  if (rc != ORDO_OK)
    return rc;
  while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
    len--;
  if (len == 0 || len == sizeof buf || memchr(buf, '\n', len) != NULL ||
      memchr(buf, '\0', len) != NULL) {
    sodium_memzero(buf, sizeof buf);
    return ordo__set_last_error(ORDO_E_INVAL, "token file %s: the token "
                                "must be one line of 1..4095 bytes", path);
  }
  crypto_hash_sha256(hash, (const unsigned char *)buf, len);
  sodium_memzero(buf, sizeof buf);
  return ORDO_OK;
}

/* mkdir -p with mode 0700 for what is made. */
static int make_dirs(const char *path) {
  char tmp[4096];
  size_t i, n = strlen(path);
  if (n == 0 || n >= sizeof tmp)
    return ordo__set_last_error(ORDO_E_INVAL, "data_dir: bad path");
  memcpy(tmp, path, n + 1);
  for (i = 1; i <= n; i++) {
    if (tmp[i] == '/' || tmp[i] == '\0') {
      char c = tmp[i];
      tmp[i] = '\0';
      if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
        return ordo__set_last_error(ORDO_E_IO, "cannot make %s: %s", tmp,
                                    strerror(errno));
      tmp[i] = c;
    }
  }
  if (access(path, W_OK | X_OK) != 0)
    return ordo__set_last_error(ORDO_E_IO, "cannot use %s: %s", path,
                                strerror(errno));
  return ORDO_OK;
}

/* ------------------------------------------------------------------------ */
/* The loop thread                                                           */
/* ------------------------------------------------------------------------ */

/* The submitter says the ledger failed, refused, or answers again: a line
 * on stderr at once, then at most one of a kind every 10 s while it lasts.
 * Loop thread only. */
static void log_ledger_error(void *ud, ordo_submitter_event ev,
                             const ordo_submitter_progress *p) {
  ordo_server *srv = ud;
  unsigned long long now = ordo__now_ns();
  unsigned long long *last = &srv->ledger_logged_ns[ev];
  if (ev == ORDO_SUBMITTER_EVENT_UP) {
    fprintf(stderr, "ordo serve: the ledger answers again\n");
    srv->ledger_logged_ns[ORDO_SUBMITTER_EVENT_DOWN] = 0;
    return;
  }
  if (*last != 0 && now - *last < 10000000000ull)
    return;
  *last = now;
  fprintf(stderr, "ordo serve: ledger %s: %s\n",
          ev == ORDO_SUBMITTER_EVENT_DOWN ? "unreachable" : "refused",
          p->last_error);
}

/* Batches finished since the last trim that make an idle loop trim. */
#define SRV_TRIM_AFTER_VERDICTS 1000

static void *loop_main(void *arg) {
  ordo_server *srv = arg;
  unsigned long long trimmed_at = 0, seen = 0;
  int stop = 0, trim_due = 0;
  while (!stop) {
    int idle = 0, rc = ordo_submitter_step(srv->sub, &idle);
    ordo_submitter_progress p;
    unsigned long long verdicts;

    /* Finished batches give their payloads back; once the queue has
     * drained after many of them, hand the freed pages to the system, or
     * RSS stays at the level of the largest backlog for good. Not at the
     * step that saw the last verdicts but at the next idle one without
     * new verdicts (100 ms later): the journal lets finished batches leave
     * memory at a take after their records are durable, and what they
     * freed after a trim stayed resident (4.8 MiB after ordo bench memory;
     * docs/benchmarks.md). */
    ordo_submitter_get_progress(srv->sub, &p);
    verdicts = p.committed + p.invalid;
    if (verdicts >= trimmed_at + SRV_TRIM_AFTER_VERDICTS)
      trim_due = 1;
    if (trim_due && idle && verdicts == seen) {
      trimmed_at = verdicts;
      trim_due = 0;
      /* The journal's page cache and write buffer go first (~3 MiB; they
       * come back with the next requests), then what malloc holds free. */
      (void)ordo_journal_shrink(srv->j);
      malloc_trim(0);
    }
    seen = verdicts;

    pthread_mutex_lock(&srv->stat_mu);
    srv->steps++;
    if (rc != ORDO_OK && srv->step_rc == ORDO_OK) {
      /* Report a failure once; the step is retried. */
      fprintf(stderr, "ordo serve: submitter: %s\n",
              ordo_last_error_message());
    }
    srv->step_rc = rc;
    if (rc != ORDO_OK)
      snprintf(srv->step_err, sizeof srv->step_err, "%s",
               ordo_last_error_message());
    pthread_mutex_unlock(&srv->stat_mu);
    /* Until a status answer, an enqueue or a resume (each wakes the
     * submitter), or a second as a safety net; after a failed step, 200 ms
     * so that a broken journal does not spin; 100 ms while a trim waits
     * for a quiet step. */
    (void)ordo_submitter_wait(srv->sub,
                              rc != ORDO_OK ? 200 : trim_due ? 100 : 1000);
    pthread_mutex_lock(&srv->loop_mu);
    stop = srv->loop_stop;
    pthread_mutex_unlock(&srv->loop_mu);
  }
  return NULL;
}

/* ------------------------------------------------------------------------ */
/* libmicrohttpd                                                             */
/* ------------------------------------------------------------------------ */

/* A request body at least this large is followed by malloc_trim. */
#define SRV_TRIM_AFTER_BYTES (1u << 20)

static enum MHD_Result http_send(ordo_server *srv, struct MHD_Connection *c,
                                 ordo_server_response *resp) {
  const char *headers[32];
  const char *const *x;
  char retry[16];
  size_t h = 0;

  ordo__srv_count_status(srv, resp->status);
  headers[h++] = "Cache-Control";
  headers[h++] = "no-store";
  headers[h++] = "X-Content-Type-Options";
  headers[h++] = "nosniff";
  if (resp->retry_after > 0) {
    snprintf(retry, sizeof retry, "%u", resp->retry_after);
    headers[h++] = MHD_HTTP_HEADER_RETRY_AFTER;
    headers[h++] = retry;
  }
  if (resp->allow != NULL) {
    headers[h++] = MHD_HTTP_HEADER_ALLOW;
    headers[h++] = resp->allow;
  }
  if (resp->status == 401) {
    headers[h++] = MHD_HTTP_HEADER_WWW_AUTHENTICATE;
    headers[h++] = "Bearer realm=\"ordo\"";
  }
  for (x = resp->headers; x != NULL && x[0] != NULL && h + 2 < 32; x += 2)
    if (strcmp(x[0], "X-Content-Type-Options") != 0) {
      headers[h++] = x[0];
      headers[h++] = x[1];
    }
  headers[h] = NULL;
  return ordo__mhd_send(c, (unsigned)resp->status, resp->body, resp->body_len,
                        resp->content_type != NULL ? resp->content_type
                                                   : "application/json",
                        headers); /* takes the body */
}

/* The peer's IP as text ("local" when unknown). */
static void client_ip(struct MHD_Connection *c, char *out, size_t size) {
  const union MHD_ConnectionInfo *ci =
      MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  const struct sockaddr *sa = ci != NULL ? ci->client_addr : NULL;
  snprintf(out, size, "local");
  if (sa == NULL)
    return;
  if (sa->sa_family == AF_INET)
    inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr,
              out, (socklen_t)size);
  else if (sa->sa_family == AF_INET6)
    inet_ntop(AF_INET6,
              &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, out,
              (socklen_t)size);
}

static void fill_request(const ordo__mhd_request *r, char *ip, size_t iplen,
                         ordo_server_request *req) {
  struct MHD_Connection *c = r->conn;
  memset(req, 0, sizeof *req);
  client_ip(c, ip, iplen);
  req->method = r->method;
  req->path = r->url;
  req->query = r->query;
  req->authorization = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                   MHD_HTTP_HEADER_AUTHORIZATION);
  req->content_type = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                  MHD_HTTP_HEADER_CONTENT_TYPE);
  req->service = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                             "X-Ordo-Service");
  req->client = ip;
  req->body = r->body;
  req->body_len = r->body_len;
}

/* Headers only: refuse now what would be refused after the body. */
static enum MHD_Result http_headers(void *cls, const ordo__mhd_request *r,
                                    int *answered) {
  ordo_server *srv = cls;
  unsigned long long declared = ordo__mhd_declared_length(r->conn);
  ordo_server_request req;
  ordo_server_response resp;
  char ip[INET6_ADDRSTRLEN + 8];

  fill_request(r, ip, sizeof ip, &req);
  memset(&resp, 0, sizeof resp);
  if (!ordo__srv_precheck(
          srv, &req, declared > SIZE_MAX ? SIZE_MAX : (size_t)declared, &resp))
    return MHD_YES;
  /* Answered before a byte of the body is read: libmicrohttpd sends it
   * instead of `100 Continue` and closes the connection after it
   * (lingering: see the top of this file). */
  *answered = 1;
  if (resp.body == NULL)
    return MHD_NO;
  ordo__mhd_linger(r->mhd, r->conn);
  return http_send(srv, r->conn, &resp);
}

static enum MHD_Result http_request(void *cls, const ordo__mhd_request *r) {
  ordo_server *srv = cls;
  ordo_server_request req;
  ordo_server_response resp;
  char ip[INET6_ADDRSTRLEN + 8];

  memset(&resp, 0, sizeof resp);
  if (r->too_big) {
    ordo__srv_error(&resp, 413, ORDO_E_INVAL,
                    "the request body is over %zu bytes",
                    srv->opts.max_body_bytes);
  } else {
    fill_request(r, ip, sizeof ip, &req);
    ordo__srv_dispatch(srv, &req, &resp);
  }
  if (resp.body == NULL)
    return MHD_NO;
  return http_send(srv, r->conn, &resp);
}

static int http_start(ordo_server *srv, const char *bind, int port) {
  ordo__mhd_options mo = {
      .bind = bind,
      .port = port,
      .connection_limit = srv->opts.connection_limit,
      .connection_limit_per_ip = srv->opts.connection_limit_per_ip,
      .header_timeout_ms = srv->opts.header_timeout_ms,
      .idle_timeout_ms = srv->opts.idle_timeout_ms,
      .linger = 1,
      .who = "server",
      .prefix = "",
      .max_body_bytes = srv->opts.max_body_bytes,
      .wipe_bodies = 1, /* may hold credentials */
      .trim_after_bytes = SRV_TRIM_AFTER_BYTES,
      .headers = http_headers,
      .request = http_request,
      .cls = srv};
  int rc, bound = port;

  if ((rc = ordo__mhd_start(&mo, &srv->http, &bound)) != ORDO_OK)
    return rc;
  atomic_store(&srv->http_port, bound);
  return ORDO_OK;
}

/* A cluster instance's URL for the others (a 421 names it, the dashboard
 * links to it): http://BIND:PORT once the port is known. A wildcard bind
 * says nothing of the address others reach, so it advertises none. */
static int advertise(ordo_server *srv) {
  char url[300];
  int port = atomic_load(&srv->http_port);
  const char *b = srv->bind != NULL ? srv->bind : "127.0.0.1";
  if (port <= 0 || strcmp(b, "0.0.0.0") == 0 || strcmp(b, "::") == 0 ||
      b[0] == '\0')
    return ORDO_OK;
  snprintf(url, sizeof url, strchr(b, ':') != NULL ? "http://[%s]:%d"
                                                   : "http://%s:%d",
           b, port);
  return ordo_cluster_set_advertise(srv->cl, url);
}

/* ------------------------------------------------------------------------ */
/* Start and stop                                                            */
/* ------------------------------------------------------------------------ */

/* Per-service policies from services_json. */
static int apply_policies(ordo_server *srv, const char *text) {
  json_error_t err;
  json_t *o = json_loads(text, JSON_REJECT_DUPLICATES, &err), *pol;
  const char *svc;
  int rc = ORDO_OK;
  if (!json_is_object(o)) {
    json_decref(o);
    return ordo__set_last_error(ORDO_E_CONFIG, "services: not a JSON "
                                "object");
  }
  json_object_foreach(o, svc, pol) {
    char *p = json_dumps(pol, JSON_COMPACT);
    rc = p != NULL ? ordo_journal_set_policy_json(srv->j, svc, p)
                   : ordo__set_last_error(ORDO_E_NOMEM, NULL);
    free(p);
    if (rc != ORDO_OK) {
      ordo__set_last_error(rc, "services.%.64s: %s", svc,
                           ordo_last_error_message());
      break;
    }
  }
  json_decref(o);
  return rc;
}

static void server_free(ordo_server *srv) {
  ORDO__FREE_ALL(srv->data_dir, srv->wallet_path, srv->bind, srv->jobs);
  pthread_mutex_destroy(&srv->loop_mu);
  pthread_cond_destroy(&srv->loop_cv);
  pthread_mutex_destroy(&srv->stat_mu);
  pthread_mutex_destroy(&srv->rate_mu);
  pthread_mutex_destroy(&srv->jobs_mu);
  pthread_mutex_destroy(&srv->drive_mu);
  pthread_mutex_destroy(&srv->sample_mu);
  pthread_cond_destroy(&srv->sample_cv);
  free(srv->drive);
  sodium_memzero(srv->token_hash, sizeof srv->token_hash);
  free(srv);
}

/* Stop the loop thread after its current step and join it (if it runs). */
static void loop_join(ordo_server *srv) {
  if (!srv->has_loop)
    return;
  pthread_mutex_lock(&srv->loop_mu);
  srv->loop_stop = 1;
  pthread_cond_broadcast(&srv->loop_cv);
  pthread_mutex_unlock(&srv->loop_mu);
  ordo_submitter_wake(srv->sub);
  pthread_join(srv->loop, NULL);
  srv->has_loop = 0;
}

/* Everything after the HTTP server and the loop are gone. */
static int teardown(ordo_server *srv) {
  int rc = ORDO_OK;
  ordo__srv_jobs_clear(srv);
  /* The loop has let go of every shard: each journal closes, each lease
   * is handed over. */
  if (srv->cl != NULL)
    ordo__srv_cluster_close(srv);
  ordo_submitter_free(srv->sub);
  srv->sub = NULL;
  ordo_ledger_sawtooth_port_free(srv->port);
  srv->port = NULL;
  ordo_ledger_client_free(srv->client);
  srv->client = NULL;
  if (srv->j != NULL)
    rc = ordo_journal_close(srv->j);
  srv->j = NULL;
  if (srv->own_ctx)
    ordo_ctx_free(srv->ctx);
  srv->ctx = NULL;
  return rc;
}

int ordo_server_start(const ordo_server_options *o, ordo_server **out) {
  ordo_server *srv;
  pthread_condattr_t ca;
  ordo_journal_options jopt;
  char path[4200];
  int rc;

  if (out != NULL)
    *out = NULL;
  if (o == NULL || out == NULL)
    return ordo__set_last_error(ORDO_E_INVAL, "server: NULL argument");
  if (ordo__on_runtime_thread())
    return ordo__set_last_error(ORDO_E_WOULD_DEADLOCK, "server: start on a "
                                "runtime thread");
  if (o->data_dir == NULL || o->data_dir[0] == '\0')
    return ordo__set_last_error(ORDO_E_INVAL, "server: data_dir is required");
  if (strlen(o->data_dir) > 4000)
    return ordo__set_last_error(ORDO_E_INVAL, "server: data_dir too long");
  if (o->port < -1 || o->port > 65535 || o->max_body_bytes == 0 ||
      o->max_items == 0 || o->max_jobs == 0 || o->connection_limit == 0 ||
      o->request_timeout_ms == 0 || o->request_timeout_ms > 3600000 ||
      o->request_timeout_ms > (unsigned)INT32_MAX || !(o->rate_limit_per_s >= 0))
    return ordo__set_last_error(ORDO_E_INVAL, "server: an option is out of "
                                "range (port, max_body_bytes, max_items, "
                                "max_jobs, connection_limit, "
                                "connection_limit_per_ip, "
                                "header_timeout_ms, idle_timeout_ms, "
                                "request_timeout_ms, rate_limit_per_s)");
  if ((srv = calloc(1, sizeof *srv)) == NULL)
    return ordo__set_last_error(ORDO_E_NOMEM, NULL);
  srv->opts = *o;
  srv->opts.owned_ = NULL;
  atomic_init(&srv->http_port, -1);
  atomic_init(&srv->stopping, 0);
  pthread_mutex_init(&srv->loop_mu, NULL);
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&srv->loop_cv, &ca);
  pthread_cond_init(&srv->sample_cv, &ca);
  pthread_condattr_destroy(&ca);
  pthread_mutex_init(&srv->sample_mu, NULL);
  pthread_mutex_init(&srv->stat_mu, NULL);
  pthread_mutex_init(&srv->rate_mu, NULL);
  pthread_mutex_init(&srv->jobs_mu, NULL);
  pthread_mutex_init(&srv->drive_mu, NULL);
  srv->bind = strdup(o->bind != NULL ? o->bind : "127.0.0.1");
  srv->data_dir = strdup(o->data_dir);
  /* On PostgreSQL the wallets are stores of the same database. */
  snprintf(path, sizeof path, ordo_storage_is_postgres_uri(o->data_dir)
                                  ? "%s" : "%s/wallets", o->data_dir);
  srv->wallet_path = strdup(path);
  srv->jobs = calloc(o->max_jobs, sizeof *srv->jobs);
  if (srv->bind == NULL || srv->data_dir == NULL || srv->wallet_path == NULL ||
      srv->jobs == NULL) {
    rc = ordo__set_last_error(ORDO_E_NOMEM, NULL);
    goto fail;
  }
  srv->opts.bind = srv->opts.token = srv->opts.token_file = NULL;
  srv->opts.data_dir = srv->opts.ledger_url = srv->opts.services_json = NULL;
  srv->opts.instance_id = srv->opts.cluster_queue = NULL;
  if (o->cluster && !ordo_storage_is_postgres_uri(o->data_dir)) {
    rc = ordo__set_last_error(ORDO_E_INVAL, "--cluster: the shared queue is "
                              "a PostgreSQL database: give --data "
                              "postgres://…");
    goto fail;
  }

  /* The token, and the rule that only loopback may go without one. */
  if (o->token != NULL) {
    if (o->token[0] == '\0') {
      rc = ordo__set_last_error(ORDO_E_INVAL, "server: empty token");
      goto fail;
    }
    crypto_hash_sha256(srv->token_hash, (const unsigned char *)o->token,
                       strlen(o->token));
    srv->has_token = 1;
  } else if (o->token_file != NULL) {
    if ((rc = read_token_file(o->token_file, srv->token_hash)) != ORDO_OK)
      goto fail;
    srv->has_token = 1;
  }
  if (o->port >= 0) {
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, srv->bind, &a4) != 1 &&
        inet_pton(AF_INET6, srv->bind, &a6) != 1) {
      rc = ordo__set_last_error(ORDO_E_INVAL, "bind address '%s' is not an "
                                "IPv4 or IPv6 literal", srv->bind);
      goto fail;
    }
    if (!ordo__http_is_loopback(srv->bind) && !srv->has_token) {
      rc = ordo__set_last_error(ORDO_E_INVAL, "refusing to listen on %s "
                                "without a token: it is not a loopback "
                                "address (give --token-file)", srv->bind);
      goto fail;
    }
  }

  if (!ordo_storage_is_postgres_uri(srv->data_dir) &&
      (rc = make_dirs(srv->data_dir)) != ORDO_OK)
    goto fail;
  if (o->ctx != NULL) {
    srv->ctx = o->ctx;
  } else {
    if ((srv->ctx = ordo_ctx_new(&o->runtime)) == NULL) {
      rc = ordo_last_error();
      goto fail;
    }
    srv->own_ctx = 1;
  }
  ordo_journal_options_init(&jopt);
  jopt.queue = o->queue;
  jopt.create = 1;
  jopt.checkpoint_records = o->checkpoint_records;
  jopt.retention_count = o->retention_count;
  jopt.retention_ms = o->retention_s * 1000;
  if (!o->cluster &&
      ((rc = ordo__storage_data_path(srv->data_dir, "queue", path,
                                     sizeof path)) != ORDO_OK ||
       (rc = ordo_journal_open(srv->ctx, path, &jopt, &srv->j)) != ORDO_OK))
    goto fail;
  if (!o->cluster && o->services_json != NULL &&
      (rc = apply_policies(srv, o->services_json)) != ORDO_OK)
    goto fail;
  if (o->ledger_url != NULL) {
    ordo_ledger_client_options copt;
    ordo_submitter_options sopt;
    ordo_ledger_client_options_init(&copt);
    copt.url = o->ledger_url;
    /* A cluster's shards share the client: a submit and its status polls
     * each at once (cluster.c), so room for tens of services. */
    if (o->cluster)
      copt.max_connections = 256;
    ordo_submitter_options_init(&sopt);
    if (o->max_per_submit > 0)
      sopt.max_per_submit = o->max_per_submit;
    if (o->max_submit_bytes > 0)
      sopt.max_submit_bytes = o->max_submit_bytes;
    sopt.status_wait_s = o->status_wait_s;
    sopt.probe_ms = o->ledger_probe_ms;
    if (o->poll_ms > 0)
      sopt.repoll_ms = o->poll_ms;
    sopt.on_ledger_error = log_ledger_error;
    sopt.on_ledger_error_ud = srv;
    if ((rc = ordo_ledger_client_new(srv->ctx, &copt, &srv->client)) !=
            ORDO_OK ||
        (rc = ordo_ledger_sawtooth_port_new(srv->ctx, srv->client,
                                            &srv->port)) != ORDO_OK)
      goto fail;
    srv->sopt = sopt; /* a cluster's shards' */
    if (!o->cluster &&
        (rc = ordo_submitter_new(srv->j,
                                 ordo_ledger_sawtooth_port_get(srv->port),
                                 &sopt, &srv->sub)) != ORDO_OK)
      goto fail;
  }
  if (o->cluster && (rc = ordo__srv_cluster_open(srv, o, &jopt)) != ORDO_OK)
    goto fail;
  if (o->cluster || o->ledger_url != NULL) {
    if (pthread_create(&srv->loop, NULL,
                       o->cluster ? ordo__srv_cluster_loop : loop_main,
                       srv) != 0) {
      rc = ordo__set_last_error(ORDO_E_SYSTEM, "server: cannot start the "
                                "loop thread");
      goto fail;
    }
    srv->has_loop = 1;
  }
  if ((rc = ordo__srv_sampler_start(srv)) != ORDO_OK)
    goto fail;
  if (o->port >= 0 && (rc = http_start(srv, srv->bind, o->port)) != ORDO_OK)
    goto fail;
  if (srv->cl != NULL && (rc = advertise(srv)) != ORDO_OK)
    goto fail;
  *out = srv;
  return ORDO_OK;
fail:
  {
    /* Keep the message: teardown may overwrite it. */
    char msg[512];
    snprintf(msg, sizeof msg, "%s", ordo_last_error_message());
    ordo__srv_sampler_stop(srv);
    loop_join(srv);
    (void)teardown(srv);
    server_free(srv);
    return ordo__set_last_error(rc != ORDO_OK ? rc : ORDO_E_SYSTEM, "%s",
                                msg);
  }
}

int ordo_server_port(const ordo_server *srv) {
  return srv != NULL ? atomic_load(&((ordo_server *)srv)->http_port) : -1;
}

ordo_ctx *ordo_server_ctx(ordo_server *srv) {
  return srv != NULL ? srv->ctx : NULL;
}

int ordo_server_stop(ordo_server *srv) {
  int rc;
  if (srv == NULL)
    return ORDO_OK;
  atomic_store(&srv->stopping, 1);
  /* Requests already inside finish and are answered. */
  ordo__mhd_stop(srv->http, srv->opts.shutdown_grace_ms);
  srv->http = NULL;
  ordo__srv_sampler_stop(srv);
  loop_join(srv);
  rc = teardown(srv);
  server_free(srv);
  return rc;
}

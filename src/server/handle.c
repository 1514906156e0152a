/*
 * handle.c — the request handlers without sockets: rate limiting and auth
 * (ordo__srv_precheck, also run by server.c on a request's headers), the
 * routing (ordo__srv_dispatch, ordo_server_handle) and the status endpoints
 * (GET|DELETE /v1/batches/{id}, /v1/services/{id}[/resume], /v1/queue,
 * /healthz, /readyz). POST /v1/batches is in batches.c, wallet endpoints in
 * wallet.c, /metrics in metrics.c, the answers in reply.c.
 */
#include "base/strhash.h"
#include "server/internal.h"
#include "server/reply.h"
#include "server/routes.h"
#include "runtime/runtime.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* ------------------------------------------------------------------------ */
/* Rate limit and auth                                                       */
/* ------------------------------------------------------------------------ */

/* ceil() without libm (x >= 0, small). */
static double round_up(double x) {
  double t = (double)(long long)x;
  return t < x ? t + 1 : t;
}

/* A token bucket per client: 1 when the request may go on, else 0 with
 * *retry the seconds until a token is back. */
static int rate_take(ordo_server *srv, const char *client, unsigned *retry) {
  double rate = srv->opts.rate_limit_per_s, burst;
  unsigned long long now = ordo__now_ns();
  srv_rate *slot = NULL, *oldest = NULL, *freeslot = NULL;
  size_t h, k;
  int ok;

  if (!(rate > 0))
    return 1;
  burst = srv->opts.rate_limit_burst > 0 ? (double)srv->opts.rate_limit_burst
                                          : (rate < 1 ? 1 : round_up(rate));
  if (client == NULL || client[0] == '\0')
    client = "local";
  h = ordo__strhash(client);
  pthread_mutex_lock(&srv->rate_mu);
  for (k = 0; k < SRV_RATE_PROBES; k++) {
    srv_rate *s = &srv->rate[(h + k) % SRV_RATE_SLOTS];
    if (s->key[0] == '\0') {
      if (freeslot == NULL)
        freeslot = s;
      continue;
    }
    if (strncmp(s->key, client, sizeof s->key - 1) == 0) {
      slot = s;
      break;
    }
    if (oldest == NULL || s->last_ns < oldest->last_ns)
      oldest = s;
  }
  if (slot == NULL) {
    /* New client: a free slot, else the one idle longest (it loses its
     * history: a full table forgets, it never refuses). */
    slot = freeslot != NULL ? freeslot : oldest;
    snprintf(slot->key, sizeof slot->key, "%s", client);
    slot->tokens = burst;
    slot->last_ns = now;
  }
  slot->tokens += (double)(now - slot->last_ns) / 1e9 * rate;
  if (slot->tokens > burst)
    slot->tokens = burst;
  slot->last_ns = now;
  ok = slot->tokens >= 1.0;
  if (ok)
    slot->tokens -= 1.0;
  else {
    double s = round_up((1.0 - slot->tokens) / rate);
    *retry = s < 1 ? 1 : s > 3600 ? 3600 : (unsigned)s;
  }
  pthread_mutex_unlock(&srv->rate_mu);
  return ok;
}

/* 1 when the Authorization header carries the token. Both sides are
 * hashed, so the comparison is of equal lengths and in constant time. */
static int auth_ok(ordo_server *srv, const char *authz) {
  unsigned char h[crypto_hash_sha256_BYTES];
  const char *t;
  if (!srv->has_token)
    return 1;
  if (authz == NULL || strncasecmp(authz, "Bearer ", 7) != 0)
    return 0;
  for (t = authz + 7; *t == ' '; t++)
    ;
  crypto_hash_sha256(h, (const unsigned char *)t, strlen(t));
  return sodium_memcmp(h, srv->token_hash, sizeof h) == 0;
}

int ordo__srv_precheck(ordo_server *srv, const ordo_server_request *req,
                       size_t declared_len, ordo_server_response *resp) {
  unsigned retry = 0;
  if (strcmp(req->path, "/healthz") == 0 ||
      strcmp(req->path, "/readyz") == 0)
    return 0; /* probes: no auth, no rate limit */
  if (!rate_take(srv, req->client, &retry)) {
    ordo__srv_error(resp, 429, ORDO_E_BUSY,
                    "too many requests from this client; "
                    "retry in %u s",
                    retry);
    resp->retry_after = retry;
    return 1;
  }
  /* The dashboard's files hold no data: the page asks for the token. */
  if (!ordo__srv_is_ui_path(req->path) &&
      !auth_ok(srv, req->authorization)) {
    ordo__srv_error(resp, 401, ORDO_E_INVAL,
                    "missing or wrong bearer token "
                    "(Authorization: Bearer <token>)");
    return 1;
  }
  if (declared_len > srv->opts.max_body_bytes) {
    ordo__srv_error(resp, 413, ORDO_E_INVAL,
                    "the request body is over %zu bytes",
                    srv->opts.max_body_bytes);
    return 1;
  }
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Status endpoints                                                          */
/* ------------------------------------------------------------------------ */

/* Without a ledger no take runs, and takes are what end batches whose dep
 * never came (dep_timeout_s): a status read ends them first, so what it
 * answers is what a server with a ledger would say. */
static void expire_if_no_ledger(ordo_server *srv) {
  if (srv->sub == NULL && srv->j != NULL)
    (void)ordo_journal_expire(srv->j, 0, NULL);
}

static int get_batch(ordo_server *srv, const char *id,
                     ordo_server_response *resp) {
  char *text;
  expire_if_no_ledger(srv);
  text = ordo_journal_batch_json(srv->j, id);
  json_t *o;
  char lid[ORDO_LEDGER_ID_SIZE];
  if (text == NULL)
    return ordo_last_error() == ORDO_E_NOT_FOUND
               ? ordo__srv_error(resp, 404, ORDO_E_NOT_FOUND,
                                 "no batch with that "
                                 "id")
               : ordo__srv_reply(resp, 500, NULL);
  /* The Sawtooth id is the queue's ledger_id (in the journal's JSON). A
   * batch journaled before ledger ids were kept has none there: the port
   * knows it from the payload it sent. */
  o = json_loads(text, 0, NULL);
  free(text);
  if (o != NULL && json_object_get(o, "ledger_id") == NULL &&
      srv->port != NULL &&
      ordo_ledger_sawtooth_id(srv->j, id, lid) == ORDO_OK &&
      json_object_set_new(o, "ledger_id", json_string(lid)) != 0) {
    json_decref(o);
    o = NULL;
  }
  return ordo__srv_reply(resp, 200, o);
}

/* DELETE /v1/batches/{id}: cancel a batch not yet sent (QUEUED or
 * WAITING): 200 with its new status; 404; 409 for one the ledger has
 * (SUBMITTED, UNKNOWN: its verdict will come) or one already finished. */
int ordo__srv_cancel_in(ordo_server *srv, ordo_journal *j, const char *id,
                        ordo_server_response *resp) {
  ordo_op *op = ordo_journal_cancel(j, id);
  int rc = ordo__srv_wait(srv, op);
  if (rc != ORDO_OK) {
    char msg[400];
    snprintf(msg, sizeof msg, "%s",
             op != NULL && rc != ORDO_E_TIMEOUT && ordo_op_message(op)[0]
                 ? ordo_op_message(op)
                 : ordo_strerror(rc));
    ordo_op_release(op);
    if (rc == ORDO_E_NOT_FOUND)
      ordo__srv_error(resp, 404, rc, "no batch with that id");
    else
      ordo__srv_error(resp,
                      rc == ORDO_E_STATE ? 409 : ordo__srv_http_status(rc),
                      rc, "%s", msg);
    return rc;
  }
  ordo_op_release(op);
  return ORDO_OK;
}

static int delete_batch(ordo_server *srv, const char *id,
                        ordo_server_response *resp) {
  if (ordo__srv_cancel_in(srv, srv->j, id, resp) != ORDO_OK)
    return ORDO_OK; /* answered */
  ordo_submitter_wake(srv->sub); /* its locks are free: others may go */
  return get_batch(srv, id, resp);
}

static int get_service(ordo_server *srv, const char *svc,
                       ordo_server_response *resp) {
  char *text;
  expire_if_no_ledger(srv);
  text = ordo_journal_service_json(srv->j, svc);
  if (text == NULL)
    return ordo__srv_error(resp, 404, ORDO_E_NOT_FOUND,
                           "no service with that "
                           "name");
  return ordo__srv_reply_text(resp, 200, text);
}

int ordo__srv_halt_resume_in(ordo_journal *j, const char *svc, int halt,
                             const char *reason, ordo_server_response *resp) {
  int rc = halt ? ordo_journal_halt(j, svc, reason)
                : ordo_journal_resume(j, svc);
  if (rc == ORDO_E_NOT_FOUND)
    ordo__srv_error(resp, 404, rc, "no service with that name");
  else if (rc == ORDO_E_STATE)
    ordo__srv_error(resp, 409, rc, halt ? "the service is halted already"
                                        : "the service is not halted");
  else if (rc != ORDO_OK)
    ordo__srv_error(resp, ordo__srv_http_status(rc), rc, "%s",
                    ordo_last_error_message());
  return rc;
}

/* The reason of POST /v1/services/{id}/halt: an optional body
 * {"reason": "…"} (new string, "" without one), or NULL with the 400
 * answered. */
static char *halt_reason(const ordo_server_request *req,
                         ordo_server_response *resp) {
  json_error_t jerr;
  json_t *o, *r;
  char *out;
  if (req->body_len == 0)
    return strdup("");
  o = json_loadb(req->body, req->body_len, 0, &jerr);
  r = json_object_get(o, "reason");
  if (o == NULL || !json_is_object(o) || (r != NULL && !json_is_string(r)) ||
      json_object_size(o) > (r != NULL ? 1u : 0u)) {
    json_decref(o);
    ordo__srv_error(resp, 400, ORDO_E_JSON,
                    "the body must be {\"reason\": \"text\"} or empty");
    return NULL;
  }
  if (r != NULL && json_string_length(r) > 500) {
    json_decref(o);
    ordo__srv_error(resp, 400, ORDO_E_INVAL,
                    "'reason' is over 500 bytes");
    return NULL;
  }
  out = strdup(r != NULL ? json_string_value(r) : "");
  json_decref(o);
  if (out == NULL)
    ordo__srv_reply(resp, 500, NULL);
  return out;
}

/* POST /v1/services/{svc}/halt|resume: svc is rest's first n bytes. */
static int halt_resume_route(ordo_server *srv, const ordo_server_request *req,
                             const char *rest, size_t n, int halt,
                             ordo_server_response *resp) {
  char *svc = strndup(rest, n), *reason = NULL;
  if (svc == NULL)
    return ordo__srv_reply(resp, 500, NULL);
  if (halt && (reason = halt_reason(req, resp)) == NULL) {
    free(svc);
    return ORDO_OK; /* answered */
  }
  if (srv->cl != NULL)
    ordo__srv_cluster_halt_resume(srv, svc, halt, reason, resp);
  else if (ordo__srv_halt_resume_in(srv->j, svc, halt, reason, resp) ==
           ORDO_OK) {
    if (!halt)
      ordo_submitter_wake(srv->sub);
    get_service(srv, svc, resp);
  }
  free(svc);
  free(reason);
  return ORDO_OK;
}

int ordo__srv_progress(ordo_server *srv, ordo_submitter_progress *p) {
  memset(p, 0, sizeof(*p));
  if (srv->cl != NULL)
    return ordo__srv_cluster_progress(srv, p);
  if (srv->sub == NULL)
    return 0;
  ordo_submitter_get_progress(srv->sub, p);
  return 1;
}

/* Unix ms as RFC 3339 UTC ("2026-12-06T20:41:03.123Z"). */
static json_t *time_json(unsigned long long ms) {
  char buf[40];
  time_t t = (time_t)(ms / 1000);
  struct tm tm;
  if (gmtime_r(&t, &tm) == NULL)
    return json_null();
  size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(buf + n, sizeof buf - n, ".%03uZ", (unsigned)(ms % 1000));
  return json_string(buf);
}

/* The ledger's health from the submitter: reachable, since when not, and
 * the last error with its time and cause. */
json_t *ordo__srv_ledger_health_json(const ordo_submitter_progress *p) {
  json_t *o = json_pack("{s:b}", "reachable", !p->ledger_down);
  if (o == NULL)
    return NULL;
  if (p->ledger_down)
    json_object_set_new(o, "down_since", time_json(p->down_since_ms));
  if (p->last_error_ms != 0)
    json_object_set_new(
        o, "last_error",
        json_pack("{s:o,s:s,s:i,s:s,s:s}", "time",
                  time_json(p->last_error_ms), "cause",
                  ordo_submitter_cause_name(p->last_error_cause), "code",
                  p->last_error_code, "name", ordo_errname(p->last_error_code),
                  "message", p->last_error));
  return o;
}

/* The submitter's counters and the ledger's health, as of now. */
static json_t *submitter_json(ordo_server *srv) {
  ordo_submitter_progress p;
  json_t *o, *causes = json_object();
  (void)ordo__srv_progress(srv, &p);
  for (int c = 0; causes != NULL && c < ORDO_SUBMITTER_CAUSES; c++)
    if (p.errors_by_cause[c] > 0)
      json_object_set_new(causes, ordo_submitter_cause_name(c),
                          json_integer((json_int_t)p.errors_by_cause[c]));
  o = json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:o,s:o}",
                "submitted", (json_int_t)p.submitted, "resubmitted",
                (json_int_t)p.resubmitted, "committed",
                (json_int_t)p.committed, "invalid", (json_int_t)p.invalid,
                "refused", (json_int_t)p.refused, "submit_errors",
                (json_int_t)p.submit_errors, "status_errors",
                (json_int_t)p.status_errors, "submit_calls",
                (json_int_t)p.submit_calls, "status_calls",
                (json_int_t)p.status_calls, "in_flight",
                (json_int_t)p.in_flight, "errors_by_cause",
                causes != NULL ? causes : json_object(), "ledger",
                ordo__srv_ledger_health_json(&p));
  pthread_mutex_lock(&srv->stat_mu);
  if (o != NULL) {
    json_object_set_new(o, "steps", json_integer((json_int_t)srv->steps));
    if (srv->step_rc != ORDO_OK)
      json_object_set_new(o, "step_error", json_string(srv->step_err));
  }
  pthread_mutex_unlock(&srv->stat_mu);
  /* The most recent failure, whichever side it came from. */
  if (o != NULL && json_object_get(json_object_get(o, "ledger"),
                                   "last_error") != NULL)
    json_object_set(o, "last_error",
                    json_object_get(json_object_get(o, "ledger"),
                                    "last_error"));
  return o;
}

static int get_queue(ordo_server *srv, ordo_server_response *resp) {
  char *text;
  json_t *o;
  expire_if_no_ledger(srv);
  if (srv->cl != NULL) {
    ordo_journal_totals t;
    ordo__srv_cluster_totals(srv, &t);
    o = json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:o}", "queued",
                  (json_int_t)t.queued, "waiting", (json_int_t)t.waiting,
                  "in_flight", (json_int_t)t.in_flight, "unknown",
                  (json_int_t)t.unknown, "committed", (json_int_t)t.committed,
                  "invalid", (json_int_t)t.invalid, "services",
                  (json_int_t)t.services, "cluster",
                  ordo__srv_cluster_json(srv));
  } else {
    text = ordo_journal_totals_json(srv->j);
    o = text != NULL ? json_loads(text, 0, NULL) : NULL;
    free(text);
  }
  if (o != NULL &&
      (json_object_set_new(o, "ledger", json_boolean(srv->client != NULL)) ||
       (srv->client != NULL &&
        json_object_set_new(o, "submitter", submitter_json(srv))))) {
    json_decref(o);
    o = NULL;
  }
  /* The key "transactions" items are signed with: allow-list it. */
  if (o != NULL && srv->opts.signer != NULL &&
      json_object_set_new(o, "signer_public_key",
                          json_string(ordo_ledger_signer_public_key(
                              srv->opts.signer))) != 0) {
    json_decref(o);
    o = NULL;
  }
  return ordo__srv_reply(resp, 200, o);
}

/* Ready: the journal takes writes and, with a ledger, the ledger answers.
 * Load balancers and orchestrators route by it; /healthz says only that the
 * process is alive. */
static int readyz(ordo_server *srv, ordo_server_response *resp) {
  ordo_submitter_progress p;
  int journal_failed, has = ordo__srv_progress(srv, &p), ready;
  json_t *o;
  pthread_mutex_lock(&srv->stat_mu);
  journal_failed = srv->step_rc == ORDO_E_STORAGE;
  pthread_mutex_unlock(&srv->stat_mu);
  ready = !journal_failed && !(has && p.ledger_down) &&
          !atomic_load(&srv->stopping);
  o = json_pack("{s:b,s:s,s:b}", "ready", ready, "journal",
                journal_failed ? "failed" : "ok", "stopping",
                atomic_load(&srv->stopping) != 0);
  if (o != NULL)
    json_object_set_new(o, "ledger", has ? ordo__srv_ledger_health_json(&p)
                                         : json_null());
  return ordo__srv_reply(resp, ready ? 200 : 503, o);
}

static int healthz(ordo_server *srv, ordo_server_response *resp) {
  int failed;
  pthread_mutex_lock(&srv->stat_mu);
  failed = srv->step_rc == ORDO_E_STORAGE;
  pthread_mutex_unlock(&srv->stat_mu);
  return ordo__srv_reply(resp, failed ? 503 : 200,
                         json_pack("{s:b,s:s,s:b,s:b}", "ok", !failed,
                                   "version", ORDO_VERSION_STRING, "ledger",
                                   srv->client != NULL, "stopping",
                                   atomic_load(&srv->stopping) != 0));
}

/* ------------------------------------------------------------------------ */
/* Routing                                                                   */
/* ------------------------------------------------------------------------ */

static int method_not_allowed(ordo_server_response *resp, const char *allow) {
  ordo__srv_error(resp, 405, ORDO_E_UNSUPPORTED, "this path takes %s", allow);
  resp->allow = allow;
  return ORDO_OK;
}

int ordo__srv_dispatch(ordo_server *srv, const ordo_server_request *req,
                       ordo_server_response *resp) {
  const char *p = req->path, *m = req->method, *rest;
  int get = strcmp(m, "GET") == 0, post = strcmp(m, "POST") == 0;
  size_t n;

  if (req->body_len > srv->opts.max_body_bytes)
    return ordo__srv_error(resp, 413, ORDO_E_INVAL,
                           "the request body is over %zu "
                           "bytes",
                           srv->opts.max_body_bytes);
  if (strcmp(p, "/healthz") == 0)
    return get ? healthz(srv, resp) : method_not_allowed(resp, "GET");
  if (strcmp(p, "/readyz") == 0)
    return get ? readyz(srv, resp) : method_not_allowed(resp, "GET");
  if (strcmp(p, "/metrics") == 0)
    return get ? ordo__srv_metrics(srv, resp) : method_not_allowed(resp, "GET");
  if (ordo__srv_is_ui_path(p))
    return ordo__srv_ui(req, resp);
  if (strcmp(p, "/v1/dashboard") == 0)
    return get ? ordo__srv_dashboard(srv, req, resp)
               : method_not_allowed(resp, "GET");
  if (strcmp(p, "/v1/services") == 0)
    return get ? ordo__srv_services(srv, req, resp)
               : method_not_allowed(resp, "GET");
  if (strcmp(p, "/v1/batches") == 0)
    return post ? ordo__srv_post_batches(srv, req, resp)
                : method_not_allowed(resp, "POST");
  if (strncmp(p, "/v1/batches/", 12) == 0 && p[12] != '\0') {
    if (strcmp(m, "DELETE") == 0)
      return srv->cl != NULL ? ordo__srv_cluster_cancel(srv, p + 12, resp)
                             : delete_batch(srv, p + 12, resp);
    if (!get)
      return method_not_allowed(resp, "GET, DELETE");
    return srv->cl != NULL ? ordo__srv_cluster_get_batch(srv, p + 12, resp)
                           : get_batch(srv, p + 12, resp);
  }
  if (strcmp(p, "/v1/queue") == 0)
    return get ? get_queue(srv, resp) : method_not_allowed(resp, "GET");
  if (strncmp(p, "/v1/services/", 13) == 0 && p[13] != '\0') {
    rest = p + 13;
    n = strlen(rest);
    if ((n > 7 && strcmp(rest + n - 7, "/resume") == 0) ||
        (n > 5 && strcmp(rest + n - 5, "/halt") == 0)) {
      int halt = rest[n - 5] == '/';
      if (!post)
        return method_not_allowed(resp, "POST");
      return halt_resume_route(srv, req, rest, n - (halt ? 5 : 7), halt,
                               resp);
    }
    if (!get)
      return method_not_allowed(resp, "GET");
    return srv->cl != NULL ? ordo__srv_cluster_get_service(srv, rest, resp)
                           : get_service(srv, rest, resp);
  }
  if (ordo__srv_wallet_route(srv, req, resp))
    return resp->body != NULL ? ORDO_OK : ORDO_E_NOMEM;
  return ordo__srv_error(resp, 404, ORDO_E_NOT_FOUND,
                         "no such path; see "
                         "docs/openapi.yaml");
}

int ordo_server_handle(ordo_server *srv, const ordo_server_request *req,
                       ordo_server_response *resp) {
  int rc;
  if (resp != NULL)
    memset(resp, 0, sizeof(*resp));
  if (srv == NULL || req == NULL || resp == NULL || req->method == NULL ||
      req->path == NULL || (req->body == NULL && req->body_len > 0))
    return ordo__set_last_error(ORDO_E_INVAL, "server: NULL argument");
  if (!ordo__srv_precheck(srv, req, req->body_len, resp))
    ordo__srv_dispatch(srv, req, resp);
  rc = resp->body != NULL ? ORDO_OK : ORDO_E_NOMEM;
  ordo__srv_count_status(srv, resp->status);
  return rc;
}

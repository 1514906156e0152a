/*
 * wallet.c — wallet and DID endpoints over the public C API, and the job
 * table for commands that run for seconds (credential definitions on the
 * heavy class): POST answers 202 {"job"} at once, GET /v1/jobs/{id} tells
 * how it went.
 *
 * Every wallet lives in DATA_DIR/wallets: the server sets the config's
 * "path" and refuses one from the client (a client must not pick files on
 * the server). Credentials are secrets: the JSON text handed to the C API
 * and the parsed strings are wiped once the op has copied them, and no
 * answer repeats them (syntax errors name a line and column only).
 */
#include "base/base.h"
#include "server/internal.h"
#include "server/reply.h"
#include "server/routes.h"
#include "runtime/runtime.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Wipe every string inside v (jansson frees without wiping). */
static void wipe_strings(json_t *v) {
  const char *k;
  json_t *e;
  size_t i;
  if (json_is_string(v))
    sodium_memzero((char *)json_string_value(v), json_string_length(v));
  else if (json_is_object(v))
    json_object_foreach(v, k, e) wipe_strings(e);
  else if (json_is_array(v))
    json_array_foreach(v, i, e) wipe_strings(e);
}

/* Finish a request whose op was started: the answer from its status and
 * result (ok_status on success), the op released. */
static int answer_op(ordo_server *srv, ordo_op *op, int ok_status,
                     ordo_server_response *resp) {
  int rc = ordo__srv_wait(srv, op);
  const char *res;
  if (op == NULL)
    return ordo__srv_reply(resp, 500, NULL);
  if (rc == ORDO_OK) {
    res = ordo_op_result(op);
    rc =
        ordo__srv_reply(resp, ok_status,
                        res != NULL ? json_loads(res, 0, NULL) : json_object());
  } else if (rc == ORDO_E_TIMEOUT) {
    rc = ordo__srv_error(resp, 504, rc,
                         "the command did not finish within %u ms",
                         srv->opts.request_timeout_ms);
  } else {
    rc = ordo__srv_error(resp, ordo__srv_http_status(rc), rc, "%s",
                         ordo_op_message(op)[0] != '\0' ? ordo_op_message(op)
                                                        : ordo_strerror(rc));
  }
  ordo_op_release(op);
  return rc;
}

/* {"id":id,"path":DATA_DIR/wallets} as text. */
static char *wallet_config(ordo_server *srv, const char *id) {
  json_t *o = json_pack("{s:s,s:s}", "id", id, "path", srv->wallet_path);
  char *t = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
  json_decref(o);
  return t;
}

/* An object member (or NULL when absent); 0 with a 400 made when it is
 * there but not an object. */
static int object_member(json_t *body, const char *key, json_t **out,
                         ordo_server_response *resp) {
  *out = json_object_get(body, key);
  if (*out != NULL && !json_is_object(*out)) {
    ordo__srv_error(resp, 400, ORDO_E_INVAL, "'%s' must be a JSON object", key);
    return 0;
  }
  return 1;
}

/* The end of a request whose body may hold secrets: its strings wiped,
 * then freed. ORDO_OK (the answer is made). */
static int body_done(json_t *body) {
  wipe_strings(body);
  json_decref(body);
  return ORDO_OK;
}

/* 400 for such a body, then body_done. */
static int body_refused(json_t *body, const char *message,
                        ordo_server_response *resp) {
  ordo__srv_error(resp, 400, ORDO_E_INVAL, "%s", message);
  return body_done(body);
}

/* The end of a wallet create or open: call on cfg_text (taken) and the
 * credentials cred (of body) as text, answered with ok_status, or 500
 * when either text is NULL (out of memory); the credentials' text is
 * wiped once the op has copied it, then body_done. */
static int wallet_call(ordo_server *srv,
                       ordo_op *(*call)(ordo_ctx *, const char *, const char *),
                       char *cfg_text, json_t *cred, int ok_status,
                       json_t *body, ordo_server_response *resp) {
  char *cred_text = json_dumps(cred, JSON_COMPACT);
  if (cfg_text == NULL || cred_text == NULL) {
    ordo__srv_reply(resp, 500, NULL);
  } else {
    ordo_op *op = call(srv->ctx, cfg_text, cred_text); /* copies */
    ordo__free_secret(cred_text);
    cred_text = NULL;
    answer_op(srv, op, ok_status, resp);
  }
  free(cfg_text);
  ordo__free_secret(cred_text);
  return body_done(body);
}

static int wallet_create(ordo_server *srv, const ordo_server_request *req,
                         ordo_server_response *resp) {
  json_t *body, *cfg, *cred;
  char *cfg_text = NULL;

  if (!ordo__srv_parse_body(req, 0, &body, resp))
    return ORDO_OK;
  if (!object_member(body, "config", &cfg, resp) ||
      !object_member(body, "credentials", &cred, resp))
    return body_done(body);
  if (cfg == NULL || cred == NULL)
    return body_refused(body, "'config' and 'credentials' are required", resp);
  if (json_object_get(cfg, "path") != NULL)
    return body_refused(body,
                        "config: 'path' is the server's "
                        "(DATA_DIR/wallets); leave it out",
                        resp);
  if (json_object_set_new(cfg, "path", json_string(srv->wallet_path)) == 0)
    cfg_text = json_dumps(cfg, JSON_COMPACT);
  return wallet_call(srv, ordo_wallet_create, cfg_text, cred, 201, body, resp);
}

static int wallet_open(ordo_server *srv, const char *id,
                       const ordo_server_request *req,
                       ordo_server_response *resp) {
  json_t *body, *cred;

  if (!ordo__srv_parse_body(req, 0, &body, resp))
    return ORDO_OK;
  if (!object_member(body, "credentials", &cred, resp))
    return body_done(body);
  if (cred == NULL)
    return body_refused(body, "'credentials' is required", resp);
  return wallet_call(srv, ordo_wallet_open, wallet_config(srv, id), cred, 200,
                     body, resp);
}

/* A body that is an options object, or empty (NULL options). */
static int options_body(const ordo_server_request *req, char **text,
                        json_t **body, ordo_server_response *resp) {
  *text = NULL;
  *body = NULL;
  if (req->body_len == 0)
    return 1;
  if (!ordo__srv_parse_body(req, 0, body, resp))
    return 0;
  if ((*text = json_dumps(*body, JSON_COMPACT)) == NULL) {
    ordo__srv_reply(resp, 500, NULL);
    json_decref(*body);
    *body = NULL;
    return 0;
  }
  return 1;
}

static int did_create(ordo_server *srv, const char *id,
                      const ordo_server_request *req,
                      ordo_server_response *resp) {
  json_t *body;
  char *opts;
  if (!options_body(req, &opts, &body, resp))
    return ORDO_OK;
  answer_op(srv, ordo_did_create(srv->ctx, id, opts), 201, resp);
  ordo__free_secret(opts); /* may hold a seed */
  return body_done(body);
}

/* Base64 (standard or URL-safe, padded or not) of a string member into a
 * new buffer. 0 with a 400 made when absent or malformed. */
static int b64_member(json_t *body, const char *key, unsigned char **out,
                      size_t *len, ordo_server_response *resp) {
  static const int variants[] = {sodium_base64_VARIANT_ORIGINAL,
                                 sodium_base64_VARIANT_ORIGINAL_NO_PADDING,
                                 sodium_base64_VARIANT_URLSAFE,
                                 sodium_base64_VARIANT_URLSAFE_NO_PADDING};
  json_t *v = json_object_get(body, key);
  const char *s = json_string_value(v);
  size_t n = json_string_length(v), i;
  *out = NULL;
  *len = 0;
  if (s == NULL) {
    ordo__srv_error(resp, 400, ORDO_E_INVAL, "'%s' must be a base64 string",
                    key);
    return 0;
  }
  if ((*out = malloc(n + 1)) == NULL) {
    ordo__srv_reply(resp, 500, NULL);
    return 0;
  }
  for (i = 0; i < sizeof variants / sizeof variants[0]; i++)
    if (sodium_base642bin(*out, n + 1, s, n, NULL, len, NULL, variants[i]) ==
        0)
      return 1;
  free(*out);
  *out = NULL;
  ordo__srv_error(resp, 400, ORDO_E_INVAL, "'%s' is not base64", key);
  return 0;
}

static int sign(ordo_server *srv, const char *id,
                const ordo_server_request *req, ordo_server_response *resp) {
  json_t *body;
  unsigned char *msg = NULL;
  size_t len;
  const char *verkey;
  ordo_op *op;
  int rc;

  if (!ordo__srv_parse_body(req, 0, &body, resp))
    return ORDO_OK;
  if ((verkey = json_string_value(json_object_get(body, "verkey"))) == NULL) {
    ordo__srv_error(resp, 400, ORDO_E_INVAL, "'verkey' must be a string");
    goto out;
  }
  if (!b64_member(body, "message", &msg, &len, resp))
    goto out;
  op = ordo_sign(srv->ctx, id, verkey, msg, len);
  if ((rc = ordo__srv_wait(srv, op)) == ORDO_OK) {
    const unsigned char *sig;
    size_t slen;
    char *b64;
    if (ordo_op_result_bytes(op, &sig, &slen) != ORDO_OK ||
        (b64 = malloc(sodium_base64_ENCODED_LEN(
             slen, sodium_base64_VARIANT_ORIGINAL))) == NULL) {
      ordo__srv_reply(resp, 500, NULL);
    } else {
      sodium_bin2base64(b64, sodium_base64_ENCODED_LEN(
                                 slen, sodium_base64_VARIANT_ORIGINAL),
                        sig, slen, sodium_base64_VARIANT_ORIGINAL);
      ordo__srv_reply(resp, 200, json_pack("{s:s}", "signature", b64));
      free(b64);
    }
    ordo_op_release(op);
  } else {
    /* The status only: answer_op would wait again. */
    if (op == NULL)
      ordo__srv_reply(resp, 500, NULL);
    else
      ordo__srv_error(resp, ordo__srv_http_status(rc), rc, "%s",
                      rc == ORDO_E_TIMEOUT || ordo_op_message(op)[0] == '\0'
                          ? ordo_strerror(rc)
                          : ordo_op_message(op));
    ordo_op_release(op);
  }
out:
  free(msg);
  json_decref(body);
  return ORDO_OK;
}

static int verify(ordo_server *srv, const ordo_server_request *req,
                  ordo_server_response *resp) {
  json_t *body;
  unsigned char *msg = NULL, *sig = NULL;
  size_t len, slen;
  const char *verkey;

  if (!ordo__srv_parse_body(req, 0, &body, resp))
    return ORDO_OK;
  if ((verkey = json_string_value(json_object_get(body, "verkey"))) == NULL) {
    ordo__srv_error(resp, 400, ORDO_E_INVAL, "'verkey' must be a string");
    goto out;
  }
  if (!b64_member(body, "message", &msg, &len, resp) ||
      !b64_member(body, "signature", &sig, &slen, resp))
    goto out;
  answer_op(srv, ordo_verify(srv->ctx, verkey, msg, len, sig, slen), 200,
            resp);
out:
  free(msg);
  free(sig);
  json_decref(body);
  return ORDO_OK;
}

/* ------------------------------------------------------------------------ */
/* Jobs                                                                      */
/* ------------------------------------------------------------------------ */

static int job_add(ordo_server *srv, ordo_op *op, char id[33]) {
  unsigned char rnd[16];
  size_t i, victim = (size_t)-1;
  ordo_op *evicted = NULL;

  randombytes_buf(rnd, sizeof rnd);
  sodium_bin2hex(id, 33, rnd, sizeof rnd);
  pthread_mutex_lock(&srv->jobs_mu);
  if (srv->njobs == srv->opts.max_jobs) {
    /* Forget the oldest finished job to make room. */
    for (i = 0; i < srv->njobs; i++)
      if (ordo_op_status(srv->jobs[i].op) != ORDO_E_PENDING &&
          (victim == (size_t)-1 ||
           srv->jobs[i].created_ns < srv->jobs[victim].created_ns))
        victim = i;
    if (victim == (size_t)-1) {
      pthread_mutex_unlock(&srv->jobs_mu);
      return ORDO_E_BUSY;
    }
    evicted = srv->jobs[victim].op;
    srv->jobs[victim] = srv->jobs[--srv->njobs];
  }
  memcpy(srv->jobs[srv->njobs].id, id, 33);
  srv->jobs[srv->njobs].op = op;
  srv->jobs[srv->njobs].created_ns = ordo__now_ns();
  srv->njobs++;
  pthread_mutex_unlock(&srv->jobs_mu);
  ordo_op_release(evicted);
  return ORDO_OK;
}

static int cred_def(ordo_server *srv, const char *id,
                    const ordo_server_request *req,
                    ordo_server_response *resp) {
  json_t *body;
  char *opts, job[33];
  ordo_op *op;
  int rc;

  if (!options_body(req, &opts, &body, resp))
    return ORDO_OK;
  op = ordo_cred_def_create(srv->ctx, id, opts);
  free(opts);
  json_decref(body);
  if (op == NULL)
    return ordo__srv_reply(resp, 500, NULL);
  if ((rc = job_add(srv, op, job)) != ORDO_OK) {
    ordo_op_cancel(op);
    ordo_op_release(op);
    return ordo__srv_error(resp, 503, rc, "%u jobs are running; retry later",
                           srv->opts.max_jobs);
  }
  return ordo__srv_reply(resp, 202, json_pack("{s:s}", "job", job));
}

static int job_get(ordo_server *srv, const char *id,
                   ordo_server_response *resp) {
  ordo_op *op = NULL;
  json_t *o;
  size_t i;
  int st;

  pthread_mutex_lock(&srv->jobs_mu);
  for (i = 0; i < srv->njobs; i++)
    if (strcmp(srv->jobs[i].id, id) == 0) {
      op = ordo_op_retain(srv->jobs[i].op);
      break;
    }
  pthread_mutex_unlock(&srv->jobs_mu);
  if (op == NULL)
    return ordo__srv_error(resp, 404, ORDO_E_NOT_FOUND, "no job with that id");
  st = ordo_op_status(op);
  if (st == ORDO_E_PENDING) {
    o = json_pack("{s:s,s:s}", "id", id, "state", "running");
  } else if (st == ORDO_OK) {
    const char *res = ordo_op_result(op);
    o = json_pack("{s:s,s:s,s:o*}", "id", id, "state", "done", "result",
                  res != NULL ? json_loads(res, 0, NULL) : json_null());
  } else {
    o = json_pack("{s:s,s:s,s:{s:i,s:s,s:s}}", "id", id, "state", "failed",
                  "error", "code", st, "name", ordo_errname(st), "message",
                  ordo_op_message(op)[0] != '\0' ? ordo_op_message(op)
                                                 : ordo_strerror(st));
  }
  ordo_op_release(op);
  return ordo__srv_reply(resp, 200, o);
}

void ordo__srv_jobs_clear(ordo_server *srv) {
  size_t i, n;
  srv_job *jobs;
  pthread_mutex_lock(&srv->jobs_mu);
  jobs = srv->jobs;
  n = srv->njobs;
  srv->jobs = NULL;
  srv->njobs = 0;
  pthread_mutex_unlock(&srv->jobs_mu);
  for (i = 0; i < n; i++) {
    (void)ordo_op_cancel(jobs[i].op);
    ordo_op_release(jobs[i].op);
  }
  free(jobs);
}

/* ------------------------------------------------------------------------ */
/* Routing                                                                   */
/* ------------------------------------------------------------------------ */

static int not_allowed(ordo_server_response *resp, const char *allow) {
  ordo__srv_error(resp, 405, ORDO_E_UNSUPPORTED, "this path takes %s", allow);
  resp->allow = allow;
  return 1;
}

int ordo__srv_wallet_route(ordo_server *srv, const ordo_server_request *req,
                           ordo_server_response *resp) {
  const char *p = req->path, *slash;
  int post = strcmp(req->method, "POST") == 0;
  char id[128];
  size_t n;

  if (strcmp(p, "/v1/verify") == 0)
    return post ? (verify(srv, req, resp), 1) : not_allowed(resp, "POST");
  if (strncmp(p, "/v1/jobs/", 9) == 0 && p[9] != '\0' &&
      strchr(p + 9, '/') == NULL)
    return strcmp(req->method, "GET") == 0 ? (job_get(srv, p + 9, resp), 1)
                                           : not_allowed(resp, "GET");
  if (strcmp(p, "/v1/wallets") == 0)
    return post ? (wallet_create(srv, req, resp), 1)
                : not_allowed(resp, "POST");
  if (strncmp(p, "/v1/wallets/", 12) != 0)
    return 0;
  p += 12;
  if ((slash = strchr(p, '/')) == NULL || slash == p ||
      (n = (size_t)(slash - p)) >= sizeof id || strchr(slash + 1, '/'))
    return 0;
  memcpy(id, p, n);
  id[n] = '\0';
  slash++;
  if (strcmp(slash, "open") != 0 && strcmp(slash, "close") != 0 &&
      strcmp(slash, "dids") != 0 && strcmp(slash, "sign") != 0 &&
      strcmp(slash, "cred-defs") != 0)
    return 0;
  if (!post)
    return not_allowed(resp, "POST");
  if (strcmp(slash, "open") == 0)
    wallet_open(srv, id, req, resp);
  else if (strcmp(slash, "close") == 0)
    answer_op(srv, ordo_wallet_close(srv->ctx, id), 200, resp);
  else if (strcmp(slash, "dids") == 0)
    did_create(srv, id, req, resp);
  else if (strcmp(slash, "sign") == 0)
    sign(srv, id, req, resp);
  else
    cred_def(srv, id, req, resp);
  return 1;
}

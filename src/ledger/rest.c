/*
 * rest.c — the Sawtooth REST client's engine: requests as ops, libcurl's
 * multi interface driven by one task per client on the net class (rest.h
 * says why and how). The client itself and the public calls that build
 * requests are in rest_client.c, what both share in rest_int.h, the parsing
 * of the answers in rest_parse.c.
 *
 * Layout: requests (the op's state); the send stage; the driver; the
 * finish stage; starting a request.
 *
 * Ownership and lifetime
 *   - A request (rest_req) is its op's state, freed with the op. Between its
 *     send stage and the driver's resume it belongs to the driver (pending,
 *     then active or delayed lists); after ordo__op_resume the driver never
 *     touches it again.
 *   - The client is refcounted under c->mu: one reference for the handle,
 *     one per request (dropped when its state is freed), one for the driver
 *     while it is posted or running (dropped as the last thing it does).
 *     The last reference frees the client, so the multi handle dies only
 *     when no driver runs and no request holds an easy handle.
 *   - The multi handle, the active and delayed lists and the PRNG are the
 *     driver's: only the one driver run (c->scheduled) touches them. The
 *     pending list, refs, closing, scheduled and the resolve cache are under
 *     c->mu. The header lists, base URL and options are read-only after new.
 *
 * Locks: c->mu is a leaf: nothing is called with it held but list and
 * condition-variable operations (posting the driver happens after unlock).
 */
#include "base/base.h"
#include "ledger/rest_int.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define MAX_PAGES 100000u
/* The longest one driver run holds a net thread in curl_multi_poll; also
 * the bound on how late a cancel is noticed. */
#define POLL_CAP_MS 20
#define RESOLVE_TTL_NS (60ull * 1000000000ull)
#define MSG_MAX 768

enum { RESP_TOO_BIG = 1, RESP_NOMEM };

/* The path of a target, for messages: up to the query. */
static int path_len(const char *target) {
  size_t n = strcspn(target, "?");
  return n > 200 ? 200 : (int)n;
}

static const char *method(const rest_req *r) { return r->post ? "POST" : "GET"; }

/* ---- requests ------------------------------------------------------------- */

static void req_reset_response(rest_req *r) {
  free(r->resp);
  r->resp = NULL;
  r->resp_len = r->resp_cap = 0;
  r->resp_fail = 0;
  r->retry_after_ms = -1;
  r->errbuf[0] = '\0';
}

void ordo__rest_req_free(void *p) {
  rest_req *r = p;
  if (r->eh != NULL)
    curl_easy_cleanup(r->eh);
  curl_slist_free_all(r->resolve);
  free(r->target);
  free(r->body);
  free(r->resp);
  json_decref(r->acc);
  client *c = r->c;
  free(r);
  ordo__rest_client_unref(c);
}

static size_t on_write(char *p, size_t size, size_t n, void *ud) {
  rest_req *r = ud;
  size_t len = size * n;
  if (len > r->c->max_response - r->resp_len) {
    r->resp_fail = RESP_TOO_BIG;
    return 0; /* curl fails the transfer with CURLE_WRITE_ERROR */
  }
  if (r->resp_len + len + 1 > r->resp_cap) {
    char *b = ordo__grow(r->resp, &r->resp_cap, r->resp_len + len + 1, 1024);
    if (b == NULL) {
      r->resp_fail = RESP_NOMEM;
      return 0;
    }
    r->resp = b;
  }
  memcpy(r->resp + r->resp_len, p, len);
  r->resp_len += len;
  r->resp[r->resp_len] = '\0';
  return len;
}

/* Retry-After: N (seconds); the HTTP-date form is ignored. */
static size_t on_header(char *p, size_t size, size_t n, void *ud) {
  rest_req *r = ud;
  size_t len = size * n;
  static const char name[] = "retry-after:";
  if (len > sizeof(name) - 1 && len < 64 &&
      strncasecmp(p, name, sizeof(name) - 1) == 0) {
    char buf[64];
    memcpy(buf, p + sizeof(name) - 1, len - (sizeof(name) - 1));
    buf[len - (sizeof(name) - 1)] = '\0';
    char *end;
    long s = strtol(buf, &end, 10);
    if (end != buf && s >= 0 && s <= 3600)
      r->retry_after_ms = s * 1000;
  }
  return len;
}

rest_req *ordo__rest_req_new(client *c, req_kind kind, int post, char *target) {
  rest_req *r = target != NULL ? calloc(1, sizeof(*r)) : NULL;
  if (r == NULL) {
    free(target);
    return NULL;
  }
  r->c = c;
  r->kind = kind;
  r->post = post;
  r->target = target;
  r->headers = c->hdr_plain;
  r->timeout_ms = c->timeout_ms;
  r->retry_after_ms = -1;
  pthread_mutex_lock(&c->mu);
  c->refs++;
  pthread_mutex_unlock(&c->mu);
  return r;
}

/* ---- the send stage (net) --------------------------------------------------- */

/* The CURLOPT_RESOLVE entry for c's host, cached (getaddrinfo runs here, on
 * the net thread, so libcurl never starts its resolver thread). *out is a
 * new list, or NULL when the host is an IP address. */
static int resolve(client *c, struct curl_slist **out, char *why, size_t cap) {
  *out = NULL;
  if (c->literal)
    return ORDO_OK;
  unsigned long long now = ordo__now_ns();
  char *line = NULL;
  pthread_mutex_lock(&c->mu);
  if (c->resolve_line != NULL && now - c->resolved_ns < RESOLVE_TTL_NS)
    line = ordo__strdup(c->resolve_line);
  pthread_mutex_unlock(&c->mu);
  if (line == NULL) {
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int g = getaddrinfo(c->host, NULL, &hints, &res);
    if (g != 0) {
      snprintf(why, cap, "cannot resolve %.200s: %s", c->host, gai_strerror(g));
      return ORDO_E_LEDGER_CONNECT;
    }
    size_t n = strlen(c->host) + 32, used;
    for (struct addrinfo *a = res; a != NULL; a = a->ai_next)
      n += INET6_ADDRSTRLEN + 3;
    if ((line = malloc(n)) == NULL) {
      freeaddrinfo(res);
      return ORDO_E_NOMEM;
    }
    used = (size_t)snprintf(line, n, "%s:%ld:", c->host, c->port);
    int first = 1;
    for (struct addrinfo *a = res; a != NULL; a = a->ai_next) {
      char ip[INET6_ADDRSTRLEN];
      const void *src = a->ai_family == AF_INET
                            ? (const void *)&((struct sockaddr_in *)a->ai_addr)->sin_addr
                            : (const void *)&((struct sockaddr_in6 *)a->ai_addr)->sin6_addr;
      if ((a->ai_family != AF_INET && a->ai_family != AF_INET6) ||
          inet_ntop(a->ai_family, src, ip, sizeof ip) == NULL || strstr(line, ip))
        continue;
      used += (size_t)snprintf(line + used, n - used, a->ai_family == AF_INET6
                                                          ? "%s[%s]" : "%s%s",
                               first ? "" : ",", ip);
      first = 0;
    }
    freeaddrinfo(res);
    if (first) {
      free(line);
      snprintf(why, cap, "cannot resolve %.200s: no IPv4 or IPv6 address", c->host);
      return ORDO_E_LEDGER_CONNECT;
    }
    pthread_mutex_lock(&c->mu);
    char *old = c->resolve_line;
    c->resolve_line = ordo__strdup(line);
    c->resolved_ns = now;
    pthread_mutex_unlock(&c->mu);
    free(old);
  }
  *out = curl_slist_append(NULL, line);
  free(line);
  return *out != NULL ? ORDO_OK : ORDO_E_NOMEM;
}

static int build_handle(rest_req *r) {
  client *c = r->c;
  size_t n = strlen(c->base) + strlen(r->target) + 1;
  char *url = malloc(n);
  CURL *eh = url != NULL ? curl_easy_init() : NULL;
  if (eh == NULL) {
    free(url);
    return ORDO_E_NOMEM;
  }
  snprintf(url, n, "%s%s", c->base, r->target);
  int bad = 0;
#define SET(opt, val) bad |= curl_easy_setopt(eh, opt, val) != CURLE_OK
  SET(CURLOPT_URL, url);
  SET(CURLOPT_PROTOCOLS_STR, "http,https");
  SET(CURLOPT_NOSIGNAL, 1L);
  SET(CURLOPT_HTTPHEADER, (struct curl_slist *)r->headers);
  SET(CURLOPT_USERAGENT, "ordo/" ORDO_VERSION_STRING);
  SET(CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms);
  SET(CURLOPT_TIMEOUT_MS, r->timeout_ms);
  SET(CURLOPT_WRITEFUNCTION, on_write);
  SET(CURLOPT_WRITEDATA, r);
  SET(CURLOPT_HEADERFUNCTION, on_header);
  SET(CURLOPT_HEADERDATA, r);
  SET(CURLOPT_ERRORBUFFER, r->errbuf);
  SET(CURLOPT_PRIVATE, r);
  SET(CURLOPT_TCP_KEEPALIVE, 1L);
  if (r->resolve != NULL)
    SET(CURLOPT_RESOLVE, r->resolve);
  if (c->ca_file != NULL)
    SET(CURLOPT_CAINFO, c->ca_file);
  if (c->insecure) {
    SET(CURLOPT_SSL_VERIFYPEER, 0L);
    SET(CURLOPT_SSL_VERIFYHOST, 0L);
  }
  if (r->post) {
    SET(CURLOPT_POST, 1L);
    SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
    SET(CURLOPT_POSTFIELDS, r->body_len ? (const char *)r->body : "");
  }
#undef SET
  free(url); /* curl copies the URL */
  if (bad) {
    curl_easy_cleanup(eh);
    return ORDO_E_NOMEM;
  }
  r->eh = eh;
  return ORDO_OK;
}

static void driver_run(ordo__task *task);

/* Post the driver; c->scheduled is already 1. Returns the post's code. */
static int driver_post(client *c) {
  c->task.fn = driver_run;
  return ordo__executor_post(c->net, &c->task);
}

/* The driver could not be posted (the context is being joined, which
 * cannot happen while an op is live): cancel whatever is pending, except
 * `self`, which the caller finishes, and mark the driver stopped. The
 * caller then drops the driver's reference. */
static void pending_abandon(client *c, rest_req *self) {
  rest_req lost;
  ordo__rest_list_init(&lost);
  pthread_mutex_lock(&c->mu);
  while (!ordo__rest_list_empty(&c->pending)) {
    rest_req *r = c->pending.next;
    ordo__rest_list_unlink(r);
    ordo__rest_list_push(&lost, r);
  }
  c->scheduled = 0;
  pthread_mutex_unlock(&c->mu);
  while (!ordo__rest_list_empty(&lost)) {
    rest_req *r = lost.next;
    ordo__rest_list_unlink(r);
    if (r != self)
      ordo__op_fail(r->op, ORDO_E_CANCELED, "canceled: the net executor is "
                                            "shutting down");
  }
}

static int st_send(ordo_op *op, void *arg) {
  rest_req *r = arg;
  client *c = r->c;
  r->op = op;
  char why[256] = "";
  int rc = ORDO_OK;
  if (r->resolve == NULL)
    rc = resolve(c, &r->resolve, why, sizeof why);
  if (rc == ORDO_OK && r->eh == NULL)
    rc = build_handle(r);
  if (rc != ORDO_OK) {
    ordo_op_set_message(op, "%s %.*s: %s", method(r), path_len(r->target),
                        r->target, why[0] ? why : ordo_strerror(rc));
    return rc;
  }
  req_reset_response(r);

  pthread_mutex_lock(&c->mu);
  if (c->closing) {
    pthread_mutex_unlock(&c->mu);
    ordo_op_set_message(op, "canceled: the ledger client is being freed");
    return ORDO_E_CANCELED;
  }
  ordo__rest_list_push(&c->pending, r);
  int post = !c->scheduled;
  if (post) {
    c->scheduled = 1;
    c->refs++; /* the driver's */
  } else {
    /* Under mu: r's reference may be gone as soon as mu is released (the
     * driver can finish r at once), and c dies only after taking mu. */
    curl_multi_wakeup(c->multi);
  }
  pthread_mutex_unlock(&c->mu);
  /* From here the driver may finish the op at any time: touch nothing of r
   * or op. When post is set c lives on through the driver's reference,
   * which only the driver drops. */
  if (post) {
    if ((rc = driver_post(c)) != ORDO_OK) {
      pending_abandon(c, r);
      ordo__rest_client_unref(c); /* the driver's; r still holds one */
      ordo_op_set_message(op, "net executor refused the ledger driver: %s",
                          ordo_strerror(rc));
      return ORDO_E_CANCELED;
    }
  }
  return ORDO__STAGE_ASYNC;
}

/* ---- the driver (net) ----------------------------------------------------- */

static uint64_t rng_next(client *c) {
  uint64_t x = c->rng; /* xorshift64 */
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return c->rng = x;
}

/* Milliseconds to wait before attempt n + 1 (n >= 1 attempts made). */
static unsigned long long backoff_ms(client *c, const rest_req *r) {
  unsigned long long d = c->backoff_base_ms;
  for (unsigned i = 1; i < r->attempts && d < c->backoff_max_ms; i++)
    d *= 2;
  if (d > c->backoff_max_ms)
    d = c->backoff_max_ms;
  d = d / 2 + rng_next(c) % (d / 2 + 1); /* equal jitter */
  if (r->retry_after_ms >= 0 && (unsigned long long)r->retry_after_ms > d)
    d = (unsigned long long)r->retry_after_ms > c->backoff_max_ms
            ? c->backoff_max_ms
            : (unsigned long long)r->retry_after_ms;
  return d;
}

static int retryable(CURLcode cc, long status) {
  switch (cc) {
  case CURLE_OK:
    return status == 429 || status == 503;
  case CURLE_COULDNT_CONNECT:
  case CURLE_OPERATION_TIMEDOUT:
  case CURLE_SEND_ERROR:
  case CURLE_RECV_ERROR:
  case CURLE_GOT_NOTHING:
  case CURLE_PARTIAL_FILE:
    return 1;
  default:
    return 0;
  }
}

/* Finish r's op as canceled; r is off every list, its handle out of multi. */
static void req_cancel(rest_req *r) {
  ordo__op_fail(r->op, ORDO_E_CANCELED, "canceled during %s %.*s", method(r),
                path_len(r->target), r->target);
}

/* A transfer of r ended with cc: retry later, or hand the op back. */
static void attempt_done(client *c, rest_req *r, CURLcode cc) {
  curl_multi_remove_handle(c->multi, r->eh);
  ordo__rest_list_unlink(r);
  long status = 0;
  if (cc == CURLE_OK)
    curl_easy_getinfo(r->eh, CURLINFO_RESPONSE_CODE, &status);
  r->attempts++;
  r->cc = cc;
  r->http_status = status;
  if (retryable(cc, status) && r->attempts < c->max_attempts &&
      !ordo__op_cancel_requested(r->op)) {
    r->due_ns = ordo__now_ns() + backoff_ms(c, r) * 1000000ull;
    ordo__rest_list_push(&c->delayed, r);
    return;
  }
  /* The handle goes with the attempt: the finish stage reads only the
   * outcome, and a next page builds a new one. */
  curl_easy_cleanup(r->eh);
  r->eh = NULL;
  ordo__op_resume(r->op, ORDO_OK);
}

static void driver_run(ordo__task *task) {
  client *c = ORDO__CONTAINER_OF(task, client, task);
  rest_req fresh;
  ordo__rest_list_init(&fresh);

  pthread_mutex_lock(&c->mu);
  int closing = c->closing;
  while (!ordo__rest_list_empty(&c->pending)) {
    rest_req *r = c->pending.next;
    ordo__rest_list_unlink(r);
    ordo__rest_list_push(&fresh, r);
  }
  pthread_mutex_unlock(&c->mu);

  while (!ordo__rest_list_empty(&fresh)) {
    rest_req *r = fresh.next;
    ordo__rest_list_unlink(r);
    if (closing || ordo__op_cancel_requested(r->op)) {
      req_cancel(r);
      continue;
    }
    CURLMcode mc = curl_multi_add_handle(c->multi, r->eh);
    if (mc != CURLM_OK) {
      ordo__op_fail(r->op, mc == CURLM_OUT_OF_MEMORY ? ORDO_E_NOMEM : ORDO_E_LEDGER,
                    "%s %.*s: libcurl refused the transfer: %s", method(r),
                    path_len(r->target), r->target, curl_multi_strerror(mc));
      continue;
    }
    ordo__rest_list_push(&c->active, r);
  }

  /* Cancelled (or closing): abort the transfer, finish the op. */
  for (rest_req *r = c->active.next, *nx; r != &c->active; r = nx) {
    nx = r->next;
    if (closing || ordo__op_cancel_requested(r->op)) {
      curl_multi_remove_handle(c->multi, r->eh);
      ordo__rest_list_unlink(r);
      req_cancel(r);
    }
  }
  unsigned long long now = ordo__now_ns(), next_due = 0;
  for (rest_req *r = c->delayed.next, *nx; r != &c->delayed; r = nx) {
    nx = r->next;
    if (closing || ordo__op_cancel_requested(r->op)) {
      ordo__rest_list_unlink(r);
      req_cancel(r);
    } else if (r->due_ns <= now) {
      ordo__rest_list_unlink(r);
      req_reset_response(r);
      CURLMcode mc = curl_multi_add_handle(c->multi, r->eh);
      if (mc != CURLM_OK) {
        ordo__op_fail(r->op, ORDO_E_LEDGER, "%s %.*s: libcurl refused the "
                      "retry: %s", method(r), path_len(r->target), r->target,
                      curl_multi_strerror(mc));
        continue;
      }
      ordo__rest_list_push(&c->active, r);
    } else if (next_due == 0 || r->due_ns < next_due) {
      next_due = r->due_ns;
    }
  }

  int running = 0;
  CURLMcode pmc = curl_multi_perform(c->multi, &running);
  CURLMsg *m;
  int left;
  while ((m = curl_multi_info_read(c->multi, &left)) != NULL) {
    if (m->msg != CURLMSG_DONE)
      continue;
    char *priv = NULL;
    curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
    attempt_done(c, (rest_req *)(void *)priv, m->data.result);
  }
  if (pmc != CURLM_OK) {
    /* The multi handle is broken (out of memory): fail what it holds. */
    while (!ordo__rest_list_empty(&c->active)) {
      rest_req *r = c->active.next;
      curl_multi_remove_handle(c->multi, r->eh);
      ordo__rest_list_unlink(r);
      ordo__op_fail(r->op, ORDO_E_LEDGER, "%s %.*s: libcurl: %s", method(r),
                    path_len(r->target), r->target, curl_multi_strerror(pmc));
    }
  }

  if (!ordo__rest_list_empty(&c->active) || !ordo__rest_list_empty(&c->delayed)) {
    long wait = POLL_CAP_MS, ct = -1;
    if (curl_multi_timeout(c->multi, &ct) == CURLM_OK && ct >= 0 && ct < wait)
      wait = ct;
    if (next_due != 0) {
      now = ordo__now_ns();
      long due = next_due <= now ? 0 : (long)((next_due - now) / 1000000ull);
      if (due < wait)
        wait = due;
    }
    if (wait > 0)
      curl_multi_poll(c->multi, NULL, 0, (int)wait, NULL);
  }

  pthread_mutex_lock(&c->mu);
  int again = !ordo__rest_list_empty(&c->active) || !ordo__rest_list_empty(&c->delayed) ||
              !ordo__rest_list_empty(&c->pending);
  if (!again)
    c->scheduled = 0;
  pthread_mutex_unlock(&c->mu);
  if (again && driver_post(c) != ORDO_OK) {
    /* Cannot happen while ops are live (see pending_abandon); if it did,
     * finishing everything here beats stranding it. */
    while (!ordo__rest_list_empty(&c->active)) {
      rest_req *r = c->active.next;
      curl_multi_remove_handle(c->multi, r->eh);
      ordo__rest_list_unlink(r);
      req_cancel(r);
    }
    while (!ordo__rest_list_empty(&c->delayed)) {
      rest_req *r = c->delayed.next;
      ordo__rest_list_unlink(r);
      req_cancel(r);
    }
    pending_abandon(c, NULL);
    ordo__rest_client_unref(c); /* the driver's: the last thing done */
    return;
  }
  if (!again)
    ordo__rest_client_unref(c); /* the driver's; may free c: the last thing done */
}

/* ---- the finish stage (cheap) ------------------------------------------- */

static int transport_code(CURLcode cc) {
  switch (cc) {
  case CURLE_OPERATION_TIMEDOUT:
    return ORDO_E_TIMEOUT;
  case CURLE_COULDNT_RESOLVE_HOST:
  case CURLE_COULDNT_RESOLVE_PROXY:
  case CURLE_COULDNT_CONNECT:
  case CURLE_SEND_ERROR:
  case CURLE_RECV_ERROR:
  case CURLE_GOT_NOTHING:
  case CURLE_PARTIAL_FILE:
  case CURLE_WEIRD_SERVER_REPLY:
    return ORDO_E_LEDGER_CONNECT;
  case CURLE_SSL_CONNECT_ERROR:
  case CURLE_PEER_FAILED_VERIFICATION:
  case CURLE_SSL_CERTPROBLEM:
  case CURLE_SSL_CIPHER:
  case CURLE_SSL_CACERT_BADFILE:
  case CURLE_SSL_ISSUER_ERROR:
  case CURLE_SSL_CRL_BADFILE:
  case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
  case CURLE_SSL_INVALIDCERTSTATUS:
  case CURLE_SSL_ENGINE_INITFAILED:
  case CURLE_USE_SSL_FAILED:
    return ORDO_E_LEDGER_TLS;
  case CURLE_OUT_OF_MEMORY:
    return ORDO_E_NOMEM;
  default:
    return ORDO_E_LEDGER;
  }
}

static int status_code(long status) {
  switch (status) {
  case 400:
    return ORDO_E_LEDGER_REJECTED;
  case 401:
  case 403:
    return ORDO_E_LEDGER_AUTH;
  case 404:
    return ORDO_E_NOT_FOUND;
  case 413:
    return ORDO_E_LEDGER_TOO_LARGE;
  case 429:
    return ORDO_E_LEDGER_BUSY;
  case 503:
    return ORDO_E_LEDGER_UNAVAILABLE;
  default:
    return ORDO_E_LEDGER;
  }
}

/* Set up r for the next page (query q, taken) and add its two stages. */
static int next_page(ordo_op *op, rest_req *r, char *q);

static int st_finish(ordo_op *op, void *arg) {
  rest_req *r = arg;
  const char *m = method(r);
  int pl = path_len(r->target);
  unsigned n = r->attempts;
  const char *plural = n == 1 ? "" : "s";

  if (r->cc == CURLE_WRITE_ERROR && r->resp_fail == RESP_TOO_BIG) {
    ordo_op_set_message(op, "%s %.*s: response larger than %zu bytes", m, pl,
                        r->target, r->c->max_response);
    return ORDO_E_LEDGER_RESPONSE;
  }
  if (r->cc == CURLE_WRITE_ERROR && r->resp_fail == RESP_NOMEM) {
    ordo_op_set_message(op, "%s %.*s: no memory for the response", m, pl,
                        r->target);
    return ORDO_E_NOMEM;
  }
  if (r->cc != CURLE_OK) {
    ordo_op_set_message(op, "%s %.*s: %s (%u attempt%s)", m, pl, r->target,
                        r->errbuf[0] ? r->errbuf : curl_easy_strerror(r->cc),
                        n, plural);
    return transport_code(r->cc);
  }
  if (r->http_status < 200 || r->http_status > 299) {
    char msg[MSG_MAX];
    int code = -1;
    ordo__ledger_parse_error(r->http_status, r->resp, r->resp_len, msg,
                             sizeof msg, &code);
    ordo_op_set_message(op, "%s (%s %.*s, %u attempt%s)", msg, m, pl, r->target,
                        n, plural);
    /* 30 (a batch failed the signature or permission check) and 35 (a
     * batch did not decode) refuse the whole list for one batch in it:
     * the caller must split the list to find it. */
    if (r->kind == REQ_SUBMIT && r->http_status == 400 &&
        (code == 30 || code == 35))
      return ORDO_E_LEDGER_BATCH_REFUSED;
    return status_code(r->http_status);
  }

  json_t *out = NULL;
  const char *why = "malformed";
  int rc;
  switch (r->kind) {
  case REQ_SUBMIT:
    rc = ordo__ledger_parse_link(r->resp, r->resp_len, &out, &why);
    break;
  case REQ_STATUSES:
    rc = ordo__ledger_parse_statuses(r->resp, r->resp_len, &out, &why);
    break;
  case REQ_STATE_GET:
    rc = ordo__ledger_parse_state(r->resp, r->resp_len, &out, &why);
    break;
  case REQ_BLOCKS:
    rc = ordo__ledger_parse_blocks(r->resp, r->resp_len, &out, &why);
    break;
  case REQ_STATE_LIST: {
    char *q = NULL;
    rc = ordo__ledger_parse_state_page(r->resp, r->resp_len, r->acc, &q, &why);
    r->pages++;
    if (rc == ORDO_OK && q != NULL)
      return next_page(op, r, q);
    if (rc == ORDO_OK && (out = json_pack("{sO}", "data", r->acc)) == NULL)
      rc = ORDO_E_NOMEM;
    break;
  }
  default:
    rc = ORDO_E_INVAL;
  }
  if (rc == ORDO_E_LEDGER_RESPONSE) {
    ordo_op_set_message(op, "%s %.*s: %ld response is malformed: %s", m, pl,
                        r->target, r->http_status, why);
    return rc;
  }
  if (rc != ORDO_OK) {
    ordo_op_set_message(op, "%s %.*s: %s", m, pl, r->target, ordo_strerror(rc));
    return rc;
  }
  return ordo__op_set_result_json(op, out);
}

static int next_page(ordo_op *op, rest_req *r, char *q) {
  size_t n = strlen(q) + sizeof("/state?");
  char *t = malloc(n);
  if (t == NULL) {
    free(q);
    return ORDO_E_NOMEM;
  }
  snprintf(t, n, "/state?%s", q);
  free(q);
  if (strcmp(t, r->target) == 0 || r->pages >= MAX_PAGES) {
    ordo_op_set_message(op, "GET /state: paging does not advance or passes "
                        "%u pages", MAX_PAGES);
    free(t);
    return ORDO_E_LEDGER_RESPONSE;
  }
  free(r->target);
  r->target = t;
  r->attempts = 0;
  req_reset_response(r);
  int rc = ordo__op_add_stage(op, ORDO_CLASS_NET, st_send);
  if (rc == ORDO_OK)
    rc = ordo__op_add_stage(op, ORDO_CLASS_CHEAP, st_finish);
  return rc;
}

/* ---- starting a request ----------------------------------------------------- */

ordo_op *ordo__rest_req_start(client *c, rest_req *r, const char *msg) {
  if (r == NULL) {
    ordo__set_last_error(ORDO_E_NOMEM, "no memory for a ledger request");
    return NULL;
  }
  ordo_op *op = ordo__op_new(c->ctx, r, ordo__rest_req_free);
  if (op == NULL)
    return NULL; /* r freed by ordo__op_new */
  if (msg != NULL) {
    ordo_op_set_message(op, "%s", msg);
    return ordo__op_reject(op, ORDO_E_INVAL);
  }
  if (ordo__op_add_stage(op, ORDO_CLASS_NET, st_send) != ORDO_OK ||
      ordo__op_add_stage(op, ORDO_CLASS_CHEAP, st_finish) != ORDO_OK) {
    ordo_op_set_message(op, "no memory for the request's stages");
    return ordo__op_reject(op, ORDO_E_NOMEM);
  }
  op = ordo__op_start(op);
  /* With one net thread a driver run may be sitting in curl_multi_poll:
   * wake it, so that the send stage queued behind it runs now. */
  curl_multi_wakeup(c->multi);
  return op;
}

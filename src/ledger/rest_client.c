/*
 * rest_client.c — the Sawtooth REST client (rest.h): its options, the
 * ledger URL, the header lists that carry the auth value, its lifetime
 * (refcounted; see rest.c's comment), and the public calls, each of which
 * checks its arguments and builds a request for the engine in rest.c.
 */
#include "base/base.h"
#include "ledger/rest_int.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_CONNECT_TIMEOUT_MS 5000u
#define DEFAULT_TIMEOUT_MS 30000u
#define DEFAULT_MAX_ATTEMPTS 4u
#define DEFAULT_BACKOFF_BASE_MS 100u
#define DEFAULT_BACKOFF_MAX_MS 5000u
#define DEFAULT_MAX_CONNECTIONS 8u
#define DEFAULT_MAX_RESPONSE ((size_t)64 << 20)
#define MAX_TIMEOUT_MS (24u * 3600u * 1000u)
#define MAX_ATTEMPTS 100u
#define MAX_WAIT_S 3600
#define GET_MAX_IDS 15      /* Sawtooth's limit on ids in one GET */
#define MAX_BLOCK_LIMIT 1000u

/* ---- small helpers ------------------------------------------------------ */

static void wipe_str(char *s) {
  if (s != NULL)
    for (volatile char *p = s; *p != '\0'; p++)
      *p = 0;
}

/* Lowercase hex only: the REST API refuses any other id (400 code 60) or
 * address (code 62), and so must the client before it sends one. */
static int is_hex_n(const char *s, size_t min, size_t max) {
  size_t n = 0;
  for (; s[n] != '\0'; n++) {
    char ch = s[n];
    if (n >= max || !((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f')))
      return 0;
  }
  return n >= min;
}

/* ---- curl, once per process ----------------------------------------------- */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_FAILED_INIT;

static void curl_init(void) { curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

/* ---- the client ----------------------------------------------------------- */

void ordo_ledger_client_options_init(ordo_ledger_client_options *opt) {
  if (opt == NULL)
    return;
  memset(opt, 0, sizeof(*opt));
  opt->connect_timeout_ms = DEFAULT_CONNECT_TIMEOUT_MS;
  opt->timeout_ms = DEFAULT_TIMEOUT_MS;
  opt->max_attempts = DEFAULT_MAX_ATTEMPTS;
  opt->backoff_base_ms = DEFAULT_BACKOFF_BASE_MS;
  opt->backoff_max_ms = DEFAULT_BACKOFF_MAX_MS;
  opt->max_connections = DEFAULT_MAX_CONNECTIONS;
  opt->max_response_bytes = DEFAULT_MAX_RESPONSE;
}

static void free_headers(struct curl_slist *l) {
  for (struct curl_slist *p = l; p != NULL; p = p->next)
    wipe_str(p->data);
  curl_slist_free_all(l);
}

static void client_destroy(client *c) {
  if (c->multi != NULL)
    curl_multi_cleanup(c->multi);
  free_headers(c->hdr_plain);
  free_headers(c->hdr_json);
  free_headers(c->hdr_octet);
  ORDO__FREE_ALL(c->base, c->host, c->ca_file, c->resolve_line);
  pthread_cond_destroy(&c->cv);
  pthread_mutex_destroy(&c->mu);
  free(c);
}

void ordo__rest_client_unref(client *c) {
  pthread_mutex_lock(&c->mu);
  long left = --c->refs;
  if (left <= 1)
    pthread_cond_broadcast(&c->cv);
  pthread_mutex_unlock(&c->mu);
  if (left == 0)
    client_destroy(c);
}

/* One header list: the common headers, then extra (NULL: none). */
static struct curl_slist *make_headers(const char *auth_line, const char *extra) {
  struct curl_slist *l = NULL, *t;
  const char *lines[4] = {"Accept: application/json", "Expect:", auth_line,
                          extra};
  for (size_t i = 0; i < 4; i++) {
    if (lines[i] == NULL)
      continue;
    if ((t = curl_slist_append(l, lines[i])) == NULL) {
      free_headers(l);
      return NULL;
    }
    l = t;
  }
  return l;
}

/* Split and check opt->url into c->base, c->host, c->port, c->literal. */
static int parse_url(client *c, const char *url) {
  int rc = ORDO_E_INVAL;
  char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL, *user = NULL,
       *pass = NULL, *query = NULL, *frag = NULL;
  char **const parts[] = {&scheme, &host, &port, &path,
                          &user,   &pass, &query, &frag}; /* curl's to free */
  CURLU *u = curl_url();
  if (u == NULL)
    return ordo__set_last_error(ORDO_E_NOMEM, "no memory for a URL");
  if (strlen(url) > 2048 ||
      curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK) {
    ordo__set_last_error(rc, "ledger url is not a URL");
    goto done;
  }
  if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
      (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)) {
    ordo__set_last_error(rc, "ledger url: the scheme must be http or https");
    goto done;
  }
  if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK ||
      curl_url_get(u, CURLUPART_PASSWORD, &pass, 0) == CURLUE_OK) {
    ordo__set_last_error(rc, "ledger url: no credentials in the URL (use the "
                             "auth option)");
    goto done;
  }
  if (curl_url_get(u, CURLUPART_QUERY, &query, 0) == CURLUE_OK ||
      curl_url_get(u, CURLUPART_FRAGMENT, &frag, 0) == CURLUE_OK) {
    ordo__set_last_error(rc, "ledger url: no query or fragment allowed");
    goto done;
  }
  if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || host[0] == '\0') {
    ordo__set_last_error(rc, "ledger url: no host");
    goto done;
  }
  if (curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK) {
    ordo__set_last_error(rc, "ledger url: no port");
    goto done;
  }
  if (curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK) {
    ordo__set_last_error(rc, "ledger url: no path");
    goto done;
  }
  size_t plen = strlen(path);
  while (plen > 0 && path[plen - 1] == '/')
    path[--plen] = '\0';
  c->port = strtol(port, NULL, 10);
  c->host = ordo__strdup(host);
  size_t blen = strlen(scheme) + strlen(host) + strlen(port) + plen + 8;
  c->base = malloc(blen);
  if (c->host == NULL || c->base == NULL) {
    rc = ordo__set_last_error(ORDO_E_NOMEM, "no memory for the ledger url");
    goto done;
  }
  snprintf(c->base, blen, "%s://%s:%s%s", scheme, host, port, path);
  unsigned char addr[16];
  c->literal = host[0] == '[' || inet_pton(AF_INET, host, addr) == 1;
  rc = ORDO_OK;
done:
  for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
    curl_free(*parts[i]);
  curl_url_cleanup(u);
  return rc;
}

int ordo_ledger_client_new(ordo_ctx *ctx, const ordo_ledger_client_options *opt,
                           ordo_ledger_client **out) {
  if (out != NULL)
    *out = NULL;
  if (ctx == NULL || opt == NULL || out == NULL || opt->url == NULL)
    return ordo__set_last_error(ORDO_E_INVAL,
                                "ordo_ledger_client_new: NULL argument or url");
  ordo_ledger_client_options o = *opt;
  if (o.connect_timeout_ms == 0)
    o.connect_timeout_ms = DEFAULT_CONNECT_TIMEOUT_MS;
  if (o.timeout_ms == 0)
    o.timeout_ms = DEFAULT_TIMEOUT_MS;
  if (o.max_attempts == 0)
    o.max_attempts = DEFAULT_MAX_ATTEMPTS;
  if (o.backoff_base_ms == 0)
    o.backoff_base_ms = DEFAULT_BACKOFF_BASE_MS;
  if (o.backoff_max_ms == 0)
    o.backoff_max_ms = o.backoff_base_ms > DEFAULT_BACKOFF_MAX_MS
                           ? o.backoff_base_ms
                           : DEFAULT_BACKOFF_MAX_MS;
  if (o.max_connections == 0)
    o.max_connections = DEFAULT_MAX_CONNECTIONS;
  if (o.max_response_bytes == 0)
    o.max_response_bytes = DEFAULT_MAX_RESPONSE;
  if (o.connect_timeout_ms > MAX_TIMEOUT_MS || o.timeout_ms > MAX_TIMEOUT_MS ||
      o.backoff_max_ms > MAX_TIMEOUT_MS)
    return ordo__set_last_error(ORDO_E_INVAL, "ledger client: a timeout or "
                                              "backoff over 24 hours");
  if (o.max_attempts > MAX_ATTEMPTS)
    return ordo__set_last_error(ORDO_E_INVAL, "ledger client: max_attempts "
                                              "over %u", MAX_ATTEMPTS);
  if (o.backoff_base_ms > o.backoff_max_ms)
    return ordo__set_last_error(ORDO_E_INVAL, "ledger client: backoff_base_ms "
                                              "over backoff_max_ms");
  if (o.max_connections > 1024)
    return ordo__set_last_error(ORDO_E_INVAL, "ledger client: max_connections "
                                              "over 1024");
  if (o.auth != NULL && (strpbrk(o.auth, "\r\n") != NULL || strlen(o.auth) > 8192))
    /* The value is secret: say what is wrong, never what it is. */
    return ordo__set_last_error(ORDO_E_INVAL, "ledger client: the auth value "
                                              "has a line break or is too long");
  pthread_once(&curl_once, curl_init);
  if (curl_init_rc != CURLE_OK)
    return ordo__set_last_error(ORDO_E_SYSTEM, "libcurl cannot start: %s",
                                curl_easy_strerror(curl_init_rc));

  client *c = calloc(1, sizeof(*c));
  if (c == NULL)
    return ordo__set_last_error(ORDO_E_NOMEM, "no memory for a ledger client");
  if (pthread_mutex_init(&c->mu, NULL) != 0 || pthread_cond_init(&c->cv, NULL) != 0)
    abort(); /* cannot fail on Linux */
  c->refs = 1;
  ordo__rest_list_init(&c->pending);
  ordo__rest_list_init(&c->active);
  ordo__rest_list_init(&c->delayed);
  c->ctx = ctx;
  c->net = ordo__executor_of_class(ctx, ORDO_CLASS_NET);
  c->connect_timeout_ms = (long)o.connect_timeout_ms;
  c->timeout_ms = (long)o.timeout_ms;
  c->max_attempts = o.max_attempts;
  c->backoff_base_ms = o.backoff_base_ms;
  c->backoff_max_ms = o.backoff_max_ms;
  c->max_response = o.max_response_bytes;
  c->insecure = o.insecure_skip_verify != 0;
  c->rng = ordo__now_ns() ^ (uint64_t)(uintptr_t)c ^ 0x9e3779b97f4a7c15ull;
  c->task.fn = NULL; /* set in driver_post */

  int rc = parse_url(c, o.url);
  if (rc != ORDO_OK)
    goto fail;
  rc = ordo__set_last_error(ORDO_E_NOMEM, "no memory for a ledger client");
  if (o.ca_file != NULL && (c->ca_file = ordo__strdup(o.ca_file)) == NULL)
    goto fail;
  char *auth_line = NULL;
  if (o.auth != NULL) {
    size_t n = strlen(o.auth) + sizeof("Authorization: ");
    if ((auth_line = malloc(n)) == NULL)
      goto fail;
    snprintf(auth_line, n, "Authorization: %s", o.auth);
  }
  c->hdr_plain = make_headers(auth_line, NULL);
  c->hdr_json = make_headers(auth_line, "Content-Type: application/json");
  c->hdr_octet = make_headers(auth_line, "Content-Type: application/octet-stream");
  wipe_str(auth_line);
  free(auth_line);
  if (c->hdr_plain == NULL || c->hdr_json == NULL || c->hdr_octet == NULL)
    goto fail;
  if ((c->multi = curl_multi_init()) == NULL)
    goto fail;
  curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)o.max_connections);
  curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, (long)o.max_connections);
  *out = c;
  return ORDO_OK;
fail:
  client_destroy(c);
  return rc;
}

/* ---- the calls ------------------------------------------------------------ */

static ordo_op *null_client(const char *fn) {
  ordo__set_last_error(ORDO_E_INVAL, "%s: client is NULL", fn);
  return NULL;
}

ordo_op *ordo_ledger_submit(ordo_ledger_client *c, const void *batchlist,
                            size_t len) {
  if (c == NULL)
    return null_client("ordo_ledger_submit");
  rest_req *r = ordo__rest_req_new(c, REQ_SUBMIT, 1, ordo__strdup("/batches"));
  if (r == NULL || (batchlist == NULL && len > 0))
    return ordo__rest_req_start(c, r, "ordo_ledger_submit: batchlist is NULL");
  r->headers = c->hdr_octet;
  if (len > 0) {
    if ((r->body = malloc(len)) == NULL) {
      ordo__rest_req_free(r);
      return ordo__rest_req_start(c, NULL, NULL);
    }
    memcpy(r->body, batchlist, len);
    r->body_len = len;
  }
  return ordo__rest_req_start(c, r, NULL);
}

ordo_op *ordo_ledger_batch_statuses(ordo_ledger_client *c,
                                    const char *const *ids, size_t n,
                                    int wait_s) {
  if (c == NULL)
    return null_client("ordo_ledger_batch_statuses");
  const char *bad = NULL;
  if (ids == NULL || n == 0)
    bad = "ordo_ledger_batch_statuses: no ids";
  else if (n > 100000)
    bad = "ordo_ledger_batch_statuses: more than 100000 ids";
  else if (wait_s < 0 || wait_s > MAX_WAIT_S)
    bad = "ordo_ledger_batch_statuses: wait_s out of 0..3600";
  for (size_t i = 0; bad == NULL && i < n; i++)
    if (ids[i] == NULL ||
        !is_hex_n(ids[i], ORDO_LEDGER_ID_LEN, ORDO_LEDGER_ID_LEN))
      bad = "ordo_ledger_batch_statuses: an id that is not 128 lowercase "
            "hex digits (a batch's header_signature)";
  if (bad != NULL)
    return ordo__rest_req_start(c, ordo__rest_req_new(c, REQ_STATUSES, 0, ordo__strdup("")), bad);

  char wait[32] = "";
  int post = n > GET_MAX_IDS;
  if (wait_s > 0)
    snprintf(wait, sizeof wait, "%swait=%d", post ? "?" : "&", wait_s);
  char *target;
  if (!post) {
    size_t len = sizeof("/batch_statuses?id=") + sizeof wait;
    for (size_t i = 0; i < n; i++)
      len += strlen(ids[i]) + 1;
    if ((target = malloc(len)) != NULL) {
      size_t k = (size_t)snprintf(target, len, "/batch_statuses?id=");
      for (size_t i = 0; i < n; i++)
        k += (size_t)snprintf(target + k, len - k, "%s%s", i ? "," : "", ids[i]);
      snprintf(target + k, len - k, "%s", wait);
    }
  } else {
    size_t len = sizeof("/batch_statuses") + sizeof wait;
    if ((target = malloc(len)) != NULL)
      snprintf(target, len, "/batch_statuses%s", wait);
  }
  rest_req *r = ordo__rest_req_new(c, REQ_STATUSES, post, target);
  if (r == NULL)
    return ordo__rest_req_start(c, NULL, NULL);
  r->timeout_ms += (long)wait_s * 1000;
  if (post) {
    json_t *a = json_array();
    for (size_t i = 0; a != NULL && i < n; i++)
      if (json_array_append_new(a, json_string(ids[i])) != 0) {
        json_decref(a);
        a = NULL;
      }
    char *body = a != NULL ? json_dumps(a, JSON_COMPACT) : NULL;
    json_decref(a);
    if (body == NULL) {
      ordo__rest_req_free(r);
      return ordo__rest_req_start(c, NULL, NULL);
    }
    r->body = (unsigned char *)body;
    r->body_len = strlen(body);
    r->headers = c->hdr_json;
  }
  return ordo__rest_req_start(c, r, NULL);
}

ordo_op *ordo_ledger_state_get(ordo_ledger_client *c, const char *address) {
  if (c == NULL)
    return null_client("ordo_ledger_state_get");
  if (address == NULL ||
      !is_hex_n(address, ORDO_LEDGER_ADDRESS_LEN, ORDO_LEDGER_ADDRESS_LEN))
    return ordo__rest_req_start(c, ordo__rest_req_new(c, REQ_STATE_GET, 0, ordo__strdup("")),
                     "ordo_ledger_state_get: the address is not 70 hex digits");
  char target[sizeof("/state/") + ORDO_LEDGER_ADDRESS_LEN];
  snprintf(target, sizeof target, "/state/%s", address);
  return ordo__rest_req_start(c, ordo__rest_req_new(c, REQ_STATE_GET, 0, ordo__strdup(target)), NULL);
}

ordo_op *ordo_ledger_state_list(ordo_ledger_client *c, const char *prefix) {
  if (c == NULL)
    return null_client("ordo_ledger_state_list");
  if (prefix == NULL)
    prefix = "";
  if (!is_hex_n(prefix, 0, ORDO_LEDGER_ADDRESS_LEN))
    return ordo__rest_req_start(c, ordo__rest_req_new(c, REQ_STATE_LIST, 0, ordo__strdup("")),
                     "ordo_ledger_state_list: the prefix is not 0..70 hex "
                     "digits");
  char target[sizeof("/state?address=") + ORDO_LEDGER_ADDRESS_LEN];
  if (prefix[0] != '\0')
    snprintf(target, sizeof target, "/state?address=%s", prefix);
  else
    snprintf(target, sizeof target, "/state");
  rest_req *r = ordo__rest_req_new(c, REQ_STATE_LIST, 0, ordo__strdup(target));
  if (r != NULL && (r->acc = json_array()) == NULL) {
    ordo__rest_req_free(r);
    r = NULL;
  }
  return ordo__rest_req_start(c, r, NULL);
}

ordo_op *ordo_ledger_blocks(ordo_ledger_client *c, unsigned limit) {
  if (c == NULL)
    return null_client("ordo_ledger_blocks");
  if (limit > MAX_BLOCK_LIMIT)
    return ordo__rest_req_start(c, ordo__rest_req_new(c, REQ_BLOCKS, 0, ordo__strdup("")),
                     "ordo_ledger_blocks: limit over 1000");
  char target[48];
  if (limit > 0)
    snprintf(target, sizeof target, "/blocks?limit=%u", limit);
  else
    snprintf(target, sizeof target, "/blocks");
  return ordo__rest_req_start(c, ordo__rest_req_new(c, REQ_BLOCKS, 0, ordo__strdup(target)), NULL);
}

void ordo_ledger_client_free(ordo_ledger_client *c) {
  if (c == NULL)
    return;
  pthread_mutex_lock(&c->mu);
  c->closing = 1;
  int scheduled = c->scheduled;
  pthread_mutex_unlock(&c->mu);
  if (scheduled)
    curl_multi_wakeup(c->multi); /* the driver cancels what it holds */
  if (!ordo__on_runtime_thread()) {
    pthread_mutex_lock(&c->mu);
    while (c->refs > 1)
      pthread_cond_wait(&c->cv, &c->mu);
    pthread_mutex_unlock(&c->mu);
  }
  ordo__rest_client_unref(c);
}

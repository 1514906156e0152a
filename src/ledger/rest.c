/*
 * rest.c — the Sawtooth REST client: requests as ops, libcurl's multi
 * interface driven by one task per client on the net class (rest.h says
 * why and how). Parsing of the answers is in rest_parse.c.
 *
 * Layout: the client and its header lists; requests (the op's state); the
 * send stage; the driver; the finish stage; the public calls.
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
#include "ledger/ledger.h"
#include "runtime/runtime.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <jansson.h>
#include <netdb.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

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
#define MAX_PAGES 100000u
#define MAX_BLOCK_LIMIT 1000u
/* The longest one driver run holds a net thread in curl_multi_poll; also
 * the bound on how late a cancel is noticed. */
#define POLL_CAP_MS 20
#define RESOLVE_TTL_NS (60ull * 1000000000ull)
#define MSG_MAX 768

typedef enum req_kind {
  REQ_SUBMIT = 0,
  REQ_STATUSES,
  REQ_STATE_GET,
  REQ_STATE_LIST,
  REQ_BLOCKS
} req_kind;

enum { RESP_TOO_BIG = 1, RESP_NOMEM };

typedef struct rest_req rest_req;
typedef struct ordo_ledger_client client;

struct rest_req {
  rest_req *next, *prev; /* on one list at a time (see the file comment) */
  client *c;
  ordo_op *op;           /* set by the send stage */
  req_kind kind;
  int post;              /* 1: POST with body, 0: GET */
  char *target;          /* path and query after the base URL */
  unsigned char *body;
  size_t body_len;
  const struct curl_slist *headers; /* one of the client's lists */
  long timeout_ms;
  /* the transfer (driver's while in flight) */
  CURL *eh;
  struct curl_slist *resolve; /* this request's CURLOPT_RESOLVE entry */
  char errbuf[CURL_ERROR_SIZE];
  char *resp;
  size_t resp_len, resp_cap;
  int resp_fail;         /* the write callback refused: RESP_TOO_BIG, _NOMEM */
  long retry_after_ms;   /* from a Retry-After header, -1: none */
  unsigned long long due_ns; /* delayed: when to try again */
  /* the outcome of the last attempt, read by the finish stage */
  unsigned attempts;
  CURLcode cc;
  long http_status;
  /* state_list: entries of the pages so far */
  json_t *acc;
  unsigned pages;
};

struct ordo_ledger_client {
  ordo_ctx *ctx;
  ordo__executor *net;
  char *base;            /* scheme://host:port[/path], no trailing '/' */
  char *host;            /* as in the URL ("[::1]" for IPv6) */
  long port;
  int literal;           /* host is an IP address: nothing to resolve */
  long connect_timeout_ms, timeout_ms;
  unsigned max_attempts, backoff_base_ms, backoff_max_ms;
  size_t max_response;
  char *ca_file;
  int insecure;
  /* Accept, Expect:, Authorization; then with each Content-Type. The auth
   * value lives in these strings only. */
  struct curl_slist *hdr_plain, *hdr_json, *hdr_octet;

  pthread_mutex_t mu;
  pthread_cond_t cv;     /* refs dropped (ordo_ledger_client_free waits) */
  long refs;             /* under mu */
  int closing;           /* under mu: ordo_ledger_client_free was called */
  int scheduled;         /* under mu: the driver is posted or running */
  rest_req pending;      /* under mu: sent, not yet taken by the driver */
  char *resolve_line;    /* under mu: "host:port:addr,…", NULL: none yet */
  unsigned long long resolved_ns;

  /* the driver's own */
  CURLM *multi;
  ordo__task task;
  rest_req active, delayed; /* list sentinels */
  uint64_t rng;
};

/* ---- small helpers ------------------------------------------------------ */

static void list_init(rest_req *h) { h->next = h->prev = h; }
static int list_empty(const rest_req *h) { return h->next == h; }

static void list_push(rest_req *h, rest_req *r) {
  r->prev = h->prev;
  r->next = h;
  h->prev->next = r;
  h->prev = r;
}

static void list_unlink(rest_req *r) {
  r->prev->next = r->next;
  r->next->prev = r->prev;
  r->next = r->prev = NULL;
}

static char *dupstr(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = malloc(n);
  if (d != NULL)
    memcpy(d, s, n);
  return d;
}

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

/* The path of a target, for messages: up to the query. */
static int path_len(const char *target) {
  size_t n = strcspn(target, "?");
  return n > 200 ? 200 : (int)n;
}

static const char *method(const rest_req *r) { return r->post ? "POST" : "GET"; }

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
  free(c->base);
  free(c->host);
  free(c->ca_file);
  free(c->resolve_line);
  pthread_cond_destroy(&c->cv);
  pthread_mutex_destroy(&c->mu);
  free(c);
}

static void client_unref(client *c) {
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
  c->host = dupstr(host);
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
  curl_free(scheme);
  curl_free(host);
  curl_free(port);
  curl_free(path);
  curl_free(user);
  curl_free(pass);
  curl_free(query);
  curl_free(frag);
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
  list_init(&c->pending);
  list_init(&c->active);
  list_init(&c->delayed);
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
  if (o.ca_file != NULL && (c->ca_file = dupstr(o.ca_file)) == NULL)
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

/* ---- requests ------------------------------------------------------------- */

static void req_reset_response(rest_req *r) {
  free(r->resp);
  r->resp = NULL;
  r->resp_len = r->resp_cap = 0;
  r->resp_fail = 0;
  r->retry_after_ms = -1;
  r->errbuf[0] = '\0';
}

static void req_free(void *p) {
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
  client_unref(c);
}

static size_t on_write(char *p, size_t size, size_t n, void *ud) {
  rest_req *r = ud;
  size_t len = size * n;
  if (len > r->c->max_response - r->resp_len) {
    r->resp_fail = RESP_TOO_BIG;
    return 0; /* curl fails the transfer with CURLE_WRITE_ERROR */
  }
  if (r->resp_len + len + 1 > r->resp_cap) {
    size_t cap = r->resp_cap ? r->resp_cap : 1024;
    while (cap < r->resp_len + len + 1)
      cap *= 2;
    char *b = realloc(r->resp, cap);
    if (b == NULL) {
      r->resp_fail = RESP_NOMEM;
      return 0;
    }
    r->resp = b;
    r->resp_cap = cap;
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

/* A request for c, not yet an op. NULL on allocation failure. */
static rest_req *req_new(client *c, req_kind kind, int post, char *target) {
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
    line = dupstr(c->resolve_line);
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
    c->resolve_line = dupstr(line);
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
  list_init(&lost);
  pthread_mutex_lock(&c->mu);
  while (!list_empty(&c->pending)) {
    rest_req *r = c->pending.next;
    list_unlink(r);
    list_push(&lost, r);
  }
  c->scheduled = 0;
  pthread_mutex_unlock(&c->mu);
  while (!list_empty(&lost)) {
    rest_req *r = lost.next;
    list_unlink(r);
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
  list_push(&c->pending, r);
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
      client_unref(c); /* the driver's; r still holds one */
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
  list_unlink(r);
  long status = 0;
  if (cc == CURLE_OK)
    curl_easy_getinfo(r->eh, CURLINFO_RESPONSE_CODE, &status);
  r->attempts++;
  r->cc = cc;
  r->http_status = status;
  if (retryable(cc, status) && r->attempts < c->max_attempts &&
      !ordo__op_cancel_requested(r->op)) {
    r->due_ns = ordo__now_ns() + backoff_ms(c, r) * 1000000ull;
    list_push(&c->delayed, r);
    return;
  }
  /* The handle goes with the attempt: the finish stage reads only the
   * outcome, and a next page builds a new one. */
  curl_easy_cleanup(r->eh);
  r->eh = NULL;
  ordo__op_resume(r->op, ORDO_OK);
}

static void driver_run(ordo__task *task) {
  client *c = (client *)((char *)task - offsetof(client, task));
  rest_req fresh;
  list_init(&fresh);

  pthread_mutex_lock(&c->mu);
  int closing = c->closing;
  while (!list_empty(&c->pending)) {
    rest_req *r = c->pending.next;
    list_unlink(r);
    list_push(&fresh, r);
  }
  pthread_mutex_unlock(&c->mu);

  while (!list_empty(&fresh)) {
    rest_req *r = fresh.next;
    list_unlink(r);
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
    list_push(&c->active, r);
  }

  /* Cancelled (or closing): abort the transfer, finish the op. */
  for (rest_req *r = c->active.next, *nx; r != &c->active; r = nx) {
    nx = r->next;
    if (closing || ordo__op_cancel_requested(r->op)) {
      curl_multi_remove_handle(c->multi, r->eh);
      list_unlink(r);
      req_cancel(r);
    }
  }
  unsigned long long now = ordo__now_ns(), next_due = 0;
  for (rest_req *r = c->delayed.next, *nx; r != &c->delayed; r = nx) {
    nx = r->next;
    if (closing || ordo__op_cancel_requested(r->op)) {
      list_unlink(r);
      req_cancel(r);
    } else if (r->due_ns <= now) {
      list_unlink(r);
      req_reset_response(r);
      CURLMcode mc = curl_multi_add_handle(c->multi, r->eh);
      if (mc != CURLM_OK) {
        ordo__op_fail(r->op, ORDO_E_LEDGER, "%s %.*s: libcurl refused the "
                      "retry: %s", method(r), path_len(r->target), r->target,
                      curl_multi_strerror(mc));
        continue;
      }
      list_push(&c->active, r);
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
    while (!list_empty(&c->active)) {
      rest_req *r = c->active.next;
      curl_multi_remove_handle(c->multi, r->eh);
      list_unlink(r);
      ordo__op_fail(r->op, ORDO_E_LEDGER, "%s %.*s: libcurl: %s", method(r),
                    path_len(r->target), r->target, curl_multi_strerror(pmc));
    }
  }

  if (!list_empty(&c->active) || !list_empty(&c->delayed)) {
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
  int again = !list_empty(&c->active) || !list_empty(&c->delayed) ||
              !list_empty(&c->pending);
  if (!again)
    c->scheduled = 0;
  pthread_mutex_unlock(&c->mu);
  if (again && driver_post(c) != ORDO_OK) {
    /* Cannot happen while ops are live (see pending_abandon); if it did,
     * finishing everything here beats stranding it. */
    while (!list_empty(&c->active)) {
      rest_req *r = c->active.next;
      curl_multi_remove_handle(c->multi, r->eh);
      list_unlink(r);
      req_cancel(r);
    }
    while (!list_empty(&c->delayed)) {
      rest_req *r = c->delayed.next;
      list_unlink(r);
      req_cancel(r);
    }
    pending_abandon(c, NULL);
    client_unref(c); /* the driver's: the last thing done */
    return;
  }
  if (!again)
    client_unref(c); /* the driver's; may free c: the last thing done */
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

/* ---- the calls ------------------------------------------------------------ */

/* Start r as an op, or finish it at once with ORDO_E_INVAL and msg when msg
 * is not NULL (r then only carries the reference to c). */
static ordo_op *req_start(client *c, rest_req *r, const char *msg) {
  if (r == NULL) {
    ordo__set_last_error(ORDO_E_NOMEM, "no memory for a ledger request");
    return NULL;
  }
  ordo_op *op = ordo__op_new(c->ctx, r, req_free);
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

static ordo_op *null_client(const char *fn) {
  ordo__set_last_error(ORDO_E_INVAL, "%s: client is NULL", fn);
  return NULL;
}

ordo_op *ordo_ledger_submit(ordo_ledger_client *c, const void *batchlist,
                            size_t len) {
  if (c == NULL)
    return null_client("ordo_ledger_submit");
  rest_req *r = req_new(c, REQ_SUBMIT, 1, dupstr("/batches"));
  if (r == NULL || (batchlist == NULL && len > 0))
    return req_start(c, r, "ordo_ledger_submit: batchlist is NULL");
  r->headers = c->hdr_octet;
  if (len > 0) {
    if ((r->body = malloc(len)) == NULL) {
      req_free(r);
      return req_start(c, NULL, NULL);
    }
    memcpy(r->body, batchlist, len);
    r->body_len = len;
  }
  return req_start(c, r, NULL);
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
    return req_start(c, req_new(c, REQ_STATUSES, 0, dupstr("")), bad);

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
  rest_req *r = req_new(c, REQ_STATUSES, post, target);
  if (r == NULL)
    return req_start(c, NULL, NULL);
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
      req_free(r);
      return req_start(c, NULL, NULL);
    }
    r->body = (unsigned char *)body;
    r->body_len = strlen(body);
    r->headers = c->hdr_json;
  }
  return req_start(c, r, NULL);
}

ordo_op *ordo_ledger_state_get(ordo_ledger_client *c, const char *address) {
  if (c == NULL)
    return null_client("ordo_ledger_state_get");
  if (address == NULL ||
      !is_hex_n(address, ORDO_LEDGER_ADDRESS_LEN, ORDO_LEDGER_ADDRESS_LEN))
    return req_start(c, req_new(c, REQ_STATE_GET, 0, dupstr("")),
                     "ordo_ledger_state_get: the address is not 70 hex digits");
  char target[sizeof("/state/") + ORDO_LEDGER_ADDRESS_LEN];
  snprintf(target, sizeof target, "/state/%s", address);
  return req_start(c, req_new(c, REQ_STATE_GET, 0, dupstr(target)), NULL);
}

ordo_op *ordo_ledger_state_list(ordo_ledger_client *c, const char *prefix) {
  if (c == NULL)
    return null_client("ordo_ledger_state_list");
  if (prefix == NULL)
    prefix = "";
  if (!is_hex_n(prefix, 0, ORDO_LEDGER_ADDRESS_LEN))
    return req_start(c, req_new(c, REQ_STATE_LIST, 0, dupstr("")),
                     "ordo_ledger_state_list: the prefix is not 0..70 hex "
                     "digits");
  char target[sizeof("/state?address=") + ORDO_LEDGER_ADDRESS_LEN];
  if (prefix[0] != '\0')
    snprintf(target, sizeof target, "/state?address=%s", prefix);
  else
    snprintf(target, sizeof target, "/state");
  rest_req *r = req_new(c, REQ_STATE_LIST, 0, dupstr(target));
  if (r != NULL && (r->acc = json_array()) == NULL) {
    req_free(r);
    r = NULL;
  }
  return req_start(c, r, NULL);
}

ordo_op *ordo_ledger_blocks(ordo_ledger_client *c, unsigned limit) {
  if (c == NULL)
    return null_client("ordo_ledger_blocks");
  if (limit > MAX_BLOCK_LIMIT)
    return req_start(c, req_new(c, REQ_BLOCKS, 0, dupstr("")),
                     "ordo_ledger_blocks: limit over 1000");
  char target[48];
  if (limit > 0)
    snprintf(target, sizeof target, "/blocks?limit=%u", limit);
  else
    snprintf(target, sizeof target, "/blocks");
  return req_start(c, req_new(c, REQ_BLOCKS, 0, dupstr(target)), NULL);
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
  client_unref(c);
}

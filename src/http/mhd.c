/*
 * mhd.c — the libmicrohttpd server of mhd.h: the URI log callback that
 * makes a request's state, the access handler that reads headers and body
 * and calls the front end, the completion, and start and stop.
 */
#include "http/mhd.h"
#include "http/guard.h"
#include "runtime/runtime.h"

#include <malloc.h>
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct ordo__mhd {
  ordo__mhd_options o; /* bind, who and prefix not kept */
  struct MHD_Daemon *daemon;
  ordo__http_guard *guard;
  pthread_mutex_t mu; /* guards active (a leaf lock) */
  pthread_cond_t idle; /* active fell to 0: CLOCK_MONOTONIC */
  size_t active;       /* requests begun and not yet completed */
};

/* One request's state, from the URI log callback to completion. */
typedef struct mhd_req {
  char *query; /* raw, NULL if none */
  unsigned char *body;
  size_t len, cap;
  unsigned long long seen; /* body bytes received, kept or not */
  size_t peak;             /* the largest cap the body had */
  int headers_seen;
  int too_big;
  int answered; /* answered at the headers: ignore what follows */
} mhd_req;

static void active_add(ordo__mhd *m, int d) {
  pthread_mutex_lock(&m->mu);
  if (d > 0)
    m->active++;
  else if (--m->active == 0)
    pthread_cond_broadcast(&m->idle);
  pthread_mutex_unlock(&m->mu);
}

static void body_free(const ordo__mhd *m, mhd_req *r) {
  if (r->body != NULL && m->o.wipe_bodies)
    sodium_memzero(r->body, r->len);
  free(r->body);
  r->body = NULL;
  r->len = r->cap = 0;
}

static void *uri_log(void *cls, const char *uri, struct MHD_Connection *c) {
  mhd_req *r = calloc(1, sizeof *r);
  const char *q = uri != NULL ? strchr(uri, '?') : NULL;
  (void)c;
  if (r != NULL && q != NULL && (r->query = strdup(q + 1)) == NULL) {
    free(r);
    r = NULL;
  }
  if (r != NULL)
    active_add(cls, 1);
  return r;
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
                      enum MHD_RequestTerminationCode toe) {
  ordo__mhd *m = cls;
  mhd_req *r = *con_cls;
  (void)toe;
  /* A kept-alive connection's next request headers are due within the
   * idle timeout (or the header timeout when longer). */
  ordo__http_guard_completed(m->guard, c, m->o.idle_timeout_ms);
  if (r != NULL) {
    int large = m->o.trim_after_bytes > 0 && r->peak >= m->o.trim_after_bytes;
    body_free(m, r);
    free(r->query);
    free(r);
    active_add(m, -1);
    if (large)
      malloc_trim(0);
  }
  *con_cls = NULL;
}

/* Keep n more body bytes, or only count them once past the limit. */
static int body_take(const ordo__mhd *m, mhd_req *r, const char *data,
                     size_t n) {
  r->seen += n;
  if (r->too_big || r->seen > m->o.max_body_bytes) {
    r->too_big = 1;
    body_free(m, r); /* what was kept is of no use any more */
    return 0;
  }
  if (r->len + n > r->cap) {
    size_t cap = r->cap > 0 ? r->cap : 4096;
    unsigned char *p;
    while (cap < r->len + n)
      cap *= 2;
    if (!m->o.wipe_bodies) {
      if ((p = realloc(r->body, cap)) == NULL)
        return -1;
    } else {
      /* Not realloc: the old block would be freed unwiped. */
      if ((p = malloc(cap)) == NULL)
        return -1;
      if (r->len > 0) {
        memcpy(p, r->body, r->len);
        sodium_memzero(r->body, r->len);
      }
      free(r->body);
    }
    r->body = p;
    r->cap = r->peak = cap;
  }
  memcpy(r->body + r->len, data, n);
  r->len += n;
  return 0;
}

static enum MHD_Result access_handler(void *cls, struct MHD_Connection *c,
                                      const char *url, const char *method,
                                      const char *version, const char *upload,
                                      size_t *upload_size, void **con_cls) {
  ordo__mhd *m = cls;
  mhd_req *r = *con_cls;
  ordo__mhd_request req = {.mhd = m,
                           .conn = c,
                           .url = url,
                           .method = method,
                           .query = r != NULL ? r->query : NULL};
  (void)version;

  if (r == NULL)
    return MHD_NO; /* out of memory in the URI log callback */
  if (r->answered) {
    *upload_size = 0;
    return MHD_YES;
  }
  if (r->headers_seen && *upload_size > 0) {
    if (body_take(m, r, upload, *upload_size) != 0)
      return MHD_NO;
    *upload_size = 0;
    return MHD_YES;
  }
  req.body = r->body;
  req.body_len = r->len;
  req.body_seen = r->seen;
  req.too_big = r->too_big;
  if (!r->headers_seen) {
    r->headers_seen = 1;
    ordo__http_guard_headers_in(m->guard, c); /* the headers are in */
    return m->o.headers(m->o.cls, &req, &r->answered);
  }
  return m->o.request(m->o.cls, &req);
}

enum MHD_Result ordo__mhd_send(struct MHD_Connection *c, unsigned status,
                               char *body, size_t len,
                               const char *content_type,
                               const char *const *headers) {
  struct MHD_Response *resp;
  enum MHD_Result ret;
  resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
  if (resp == NULL) {
    free(body);
    return MHD_NO;
  }
  MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
  for (; headers != NULL && headers[0] != NULL; headers += 2)
    MHD_add_response_header(resp, headers[0], headers[1]);
  ret = MHD_queue_response(c, status, resp);
  MHD_destroy_response(resp);
  return ret;
}

void ordo__mhd_linger(ordo__mhd *m, struct MHD_Connection *c) {
  ordo__http_guard_linger(m->guard, c);
}

unsigned long long ordo__mhd_declared_length(struct MHD_Connection *c) {
  const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                              MHD_HTTP_HEADER_CONTENT_LENGTH);
  char *end;
  unsigned long long n;
  if (v == NULL || v[0] < '0' || v[0] > '9')
    return 0;
  n = strtoull(v, &end, 10);
  return *end == '\0' ? n : 0;
}

static void mhd_free(ordo__mhd *m) {
  ordo__http_guard_free(m->guard);
  pthread_cond_destroy(&m->idle);
  pthread_mutex_destroy(&m->mu);
  free(m);
}

int ordo__mhd_start(const ordo__mhd_options *o, ordo__mhd **out, int *port) {
  ordo__http_listen_options lo = {
      .bind = o->bind,
      .port = o->port,
      .access = access_handler,
      .completed = completed,
      .uri_log = uri_log,
      .connection_limit = o->connection_limit,
      .connection_limit_per_ip = o->connection_limit_per_ip,
      .idle_timeout_ms = o->idle_timeout_ms,
      .who = o->who,
      .prefix = o->prefix};
  pthread_condattr_t ca;
  ordo__mhd *m;
  int rc, bound = o->port;

  *out = NULL;
  if ((m = calloc(1, sizeof *m)) == NULL)
    return ordo__set_last_error(ORDO_E_NOMEM, NULL);
  m->o = *o;
  m->o.bind = m->o.who = m->o.prefix = NULL;
  pthread_mutex_init(&m->mu, NULL);
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&m->idle, &ca);
  pthread_condattr_destroy(&ca);
  if ((m->guard = ordo__http_guard_new(o->header_timeout_ms, o->linger)) ==
      NULL) {
    mhd_free(m);
    return ORDO_E_NOMEM;
  }
  lo.cls = m;
  if ((rc = ordo__http_guard_listen(m->guard, &lo, &m->daemon, &bound)) !=
      ORDO_OK) {
    mhd_free(m);
    return rc;
  }
  *out = m;
  *port = bound;
  return ORDO_OK;
}

void ordo__mhd_stop(ordo__mhd *m, unsigned long long grace_ms) {
  MHD_socket listen_fd;
  unsigned long long deadline;
  struct timespec ts;

  if (m == NULL)
    return;
  listen_fd = MHD_quiesce_daemon(m->daemon);
  deadline = ordo__now_ns() + grace_ms * 1000000ULL;
  ts.tv_sec = (time_t)(deadline / 1000000000ULL);
  ts.tv_nsec = (long)(deadline % 1000000000ULL);
  pthread_mutex_lock(&m->mu);
  while (m->active > 0 &&
         pthread_cond_timedwait(&m->idle, &m->mu, &ts) == 0)
    ;
  pthread_mutex_unlock(&m->mu);
  MHD_stop_daemon(m->daemon);
  if (listen_fd != MHD_INVALID_SOCKET)
    close(listen_fd);
  mhd_free(m);
}

/*
 * support.c — latches, gates, thread, metrics, HTTP and temporary-directory
 * helpers for the tests.
 */
#include "support/support.h"
#include "http/loopback.h"

#include <curl/curl.h>
#include <errno.h>
#include <ftw.h>
#include <jansson.h>
#include <poll.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* How often a cancellable gate wait re-checks ordo_op_cancelled() when
 * nothing pokes it. A polling period, not a timing assertion. */
#define SUPPORT_CANCEL_POLL_NS 2000000L

static atomic_int support_failures;

void support_fail(const char *file, int line, const char *what) {
  fprintf(stderr, "%s:%d: check failed: %s\n", file, line, what);
  atomic_fetch_add(&support_failures, 1);
}

int support_take_failures(void) { return atomic_exchange(&support_failures, 0); }

/* Mutex and condvar set-up cannot fail in a test that can go on. */
static void must(int rc, const char *what) {
  if (rc != 0) {
    fprintf(stderr, "support: %s failed (%d)\n", what, rc);
    abort();
  }
}

/* ---- countdown latch ---------------------------------------------------- */

void support_latch_init(support_latch *l, long count) {
  must(pthread_mutex_init(&l->mu, NULL), "pthread_mutex_init");
  must(pthread_cond_init(&l->cv, NULL), "pthread_cond_init");
  l->count = count;
}

void support_latch_count_down(support_latch *l) {
  pthread_mutex_lock(&l->mu);
  if (l->count > 0 && --l->count == 0)
    pthread_cond_broadcast(&l->cv);
  pthread_mutex_unlock(&l->mu);
}

void support_latch_wait(support_latch *l) {
  pthread_mutex_lock(&l->mu);
  while (l->count > 0)
    pthread_cond_wait(&l->cv, &l->mu);
  pthread_mutex_unlock(&l->mu);
}

void support_latch_destroy(support_latch *l) {
  pthread_cond_destroy(&l->cv);
  pthread_mutex_destroy(&l->mu);
}

/* ---- gate ---------------------------------------------------------------- */

void support_gate_init(support_gate *g) {
  pthread_condattr_t attr;
  must(pthread_mutex_init(&g->mu, NULL), "pthread_mutex_init");
  must(pthread_condattr_init(&attr), "pthread_condattr_init");
  must(pthread_condattr_setclock(&attr, CLOCK_MONOTONIC),
       "pthread_condattr_setclock");
  must(pthread_cond_init(&g->cv, &attr), "pthread_cond_init");
  pthread_condattr_destroy(&attr);
  g->open = 0;
}

void support_gate_open(support_gate *g) {
  pthread_mutex_lock(&g->mu);
  g->open = 1;
  pthread_cond_broadcast(&g->cv);
  pthread_mutex_unlock(&g->mu);
}

void support_gate_wait(support_gate *g) {
  pthread_mutex_lock(&g->mu);
  while (!g->open)
    pthread_cond_wait(&g->cv, &g->mu);
  pthread_mutex_unlock(&g->mu);
}

int support_gate_wait_cancellable(support_gate *g) {
  int opened;
  pthread_mutex_lock(&g->mu);
  /* ordo_op_cancelled() is checked under g->mu: a canceller that pokes after
   * its request was recorded cannot slip between the check and the wait. */
  while (!g->open && !ordo_op_cancelled()) {
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_nsec += SUPPORT_CANCEL_POLL_NS;
    if (until.tv_nsec >= 1000000000L) {
      until.tv_sec += 1;
      until.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&g->cv, &g->mu, &until);
  }
  opened = g->open;
  pthread_mutex_unlock(&g->mu);
  return opened;
}

void support_gate_poke(support_gate *g) {
  pthread_mutex_lock(&g->mu);
  pthread_cond_broadcast(&g->cv);
  pthread_mutex_unlock(&g->mu);
}

void support_gate_destroy(support_gate *g) {
  pthread_cond_destroy(&g->cv);
  pthread_mutex_destroy(&g->mu);
}

void support_blocker_init(support_blocker *b, int cancellable) {
  support_latch_init(&b->started, 1);
  support_gate_init(&b->gate);
  b->cancellable = cancellable;
}

void support_blocker_destroy(support_blocker *b) {
  support_gate_destroy(&b->gate);
  support_latch_destroy(&b->started);
}

int support_blocker_stage(ordo_op *op, void *arg) {
  support_blocker *b = arg;
  (void)op;
  support_latch_count_down(&b->started);
  if (!b->cancellable) {
    support_gate_wait(&b->gate);
    return ORDO_OK;
  }
  return support_gate_wait_cancellable(&b->gate) ? ORDO_OK : ORDO_E_CANCELED;
}

/* ---- threads -------------------------------------------------------------- */

void support_run_threads(int n, void *(*fn)(void *), void *args, size_t stride) {
  pthread_t *tids = calloc((size_t)n, sizeof *tids);
  if (tids == NULL)
    must(-1, "calloc");
  for (int i = 0; i < n; i++)
    must(pthread_create(&tids[i], NULL, fn, (char *)args + (size_t)i * stride),
         "pthread_create");
  for (int i = 0; i < n; i++)
    must(pthread_join(tids[i], NULL), "pthread_join");
  free(tids);
}

/* ---- metrics --------------------------------------------------------------- */

long long support_metric(ordo_ctx *ctx, const char *cls, const char *key) {
  char *text = ordo_ctx_metrics_json(ctx);
  json_t *root, *v;
  long long out = -1;
  if (text == NULL)
    return -1;
  root = json_loads(text, 0, NULL);
  free(text);
  v = json_object_get(json_object_get(json_object_get(root, "classes"), cls),
                      key);
  if (json_is_integer(v))
    out = json_integer_value(v);
  json_decref(root);
  return out;
}

void support_metric_wait_eq(ordo_ctx *ctx, const char *cls, const char *key,
                            long long value) {
  while (support_metric(ctx, cls, key) != value)
    sched_yield();
}

/* ---- HTTP (libcurl's easy API) ------------------------------------------- */

typedef struct http_buf {
  char *p;
  size_t n;
} http_buf;

static size_t http_on_data(char *d, size_t sz, size_t nm, void *ud) {
  http_buf *b = ud;
  char *p = realloc(b->p, b->n + sz * nm + 1);
  if (p == NULL)
    return 0;
  memcpy(p + b->n, d, sz * nm);
  b->p = p;
  b->n += sz * nm;
  b->p[b->n] = '\0';
  return sz * nm;
}

static size_t http_on_header(char *d, size_t sz, size_t nm, void *ud) {
  support_http_answer *a = ud;
  size_t n = sz * nm;
  char line[256];
  if (n >= sizeof line)
    return n;
  memcpy(line, d, n);
  line[n] = '\0';
  line[strcspn(line, "\r\n")] = '\0';
  /* Cut to fit, said with a precision so that an optimizing compiler
   * sees no truncation to warn about. */
  if (strncasecmp(line, "Retry-After: ", 13) == 0)
    snprintf(a->retry_after, sizeof a->retry_after, "%.*s",
             (int)sizeof a->retry_after - 1, line + 13);
  else if (strncasecmp(line, "Content-Type: ", 14) == 0)
    snprintf(a->content_type, sizeof a->content_type, "%.*s",
             (int)sizeof a->content_type - 1, line + 14);
  return n;
}

void support_http(const char *method, const char *url,
                  const char *const *headers, const void *body, size_t len,
                  long timeout_ms, support_http_answer *a) {
  CURL *c = curl_easy_init();
  struct curl_slist *h = NULL;
  http_buf b = {NULL, 0};

  memset(a, 0, sizeof *a);
  a->status = -1;
  if (c != NULL) {
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, http_on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, http_on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, a);
    if (strcmp(method, "POST") == 0) {
      curl_easy_setopt(c, CURLOPT_POST, 1L);
      curl_easy_setopt(c, CURLOPT_POSTFIELDS, body != NULL ? body : "");
      curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)len);
    }
    for (size_t i = 0; headers != NULL && headers[i] != NULL; i++)
      h = curl_slist_append(h, headers[i]);
    h = curl_slist_append(h, "Expect:");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    if (curl_easy_perform(c) == CURLE_OK)
      curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &a->status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
  }
  a->body = b.p != NULL ? b.p : strdup("");
}

/* ---- running a command to its end ----------------------------------------- */

#include <setjmp.h>
#include <stdarg.h>
#include <cmocka.h>

static int rm_one(const char *path, const struct stat *sb, int flag,
                  struct FTW *ftw) {
  (void)sb;
  (void)flag;
  (void)ftw;
  return remove(path);
}

char *support_tmpdir(const char *prefix) {
  size_t n = strlen(prefix) + sizeof "/tmp/-XXXXXX";
  char *d = malloc(n);
  assert_non_null(d);
  snprintf(d, n, "/tmp/%s-XXXXXX", prefix);
  assert_non_null(mkdtemp(d));
  return d;
}

void support_rmdir_all(char *d) {
  if (d != NULL)
    nftw(d, rm_one, 16, FTW_DEPTH | FTW_PHYS);
  free(d);
}

int support_run_no_marker(ordo_op *op, const char *what) {
  assert_non_null(op);
  int rc = ordo_op_wait(op, -1);
  if (strstr(ordo_op_message(op), SUPPORT_MARKER) != NULL)
    fail_msg("%s: the op's message quotes the secret: %s", what,
             ordo_op_message(op));
  if (strstr(ordo_last_error_message(), SUPPORT_MARKER) != NULL)
    fail_msg("%s: the last error quotes the secret: %s", what,
             ordo_last_error_message());
  assert_int_not_equal(rc, ORDO_OK);
  ordo_op_release(op);
  return rc;
}

int support_run(ordo_op *op, char **out) {
  assert_non_null(op);
  int rc = ordo_op_wait(op, -1);
  if (out != NULL) {
    const char *r = ordo_op_result(op);
    *out = r != NULL ? strdup(r) : NULL;
  }
  if (rc != ORDO_OK)
    assert_true(strlen(ordo_op_message(op)) > 0);
  ordo_op_release(op);
  return rc;
}

json_t *support_run_json(ordo_op *op) {
  char *s = NULL;
  assert_int_equal(support_run(op, &s), ORDO_OK);
  json_t *j = json_loads(s, 0, NULL);
  assert_non_null(j);
  free(s);
  return j;
}

/* ---- jansson allocation failures ---------------------------------------- */

static atomic_long jansson_count, jansson_failed;
static long jansson_fail_a = -1, jansson_fail_b = -1;
static int jansson_sticky;

static void *jansson_malloc(size_t n) {
  long i = atomic_fetch_add(&jansson_count, 1);
  if ((jansson_fail_a >= 0 &&
       (i == jansson_fail_a || (jansson_sticky && i > jansson_fail_a))) ||
      (jansson_fail_b >= 0 && i == jansson_fail_b)) {
    atomic_fetch_add(&jansson_failed, 1);
    return NULL;
  }
  return malloc(n);
}

static void jansson_free(void *p) { free(p); }

static void jansson_install(long a, long b, int sticky) {
  atomic_store(&jansson_count, 0);
  atomic_store(&jansson_failed, 0);
  jansson_fail_a = a;
  jansson_fail_b = b;
  jansson_sticky = sticky;
  json_set_alloc_funcs(jansson_malloc, jansson_free);
}

void support_jansson_fail_after(long n) { jansson_install(n, -1, 1); }

void support_jansson_fail_at(long a, long b) { jansson_install(a, b, 0); }

long support_jansson_restore(void) {
  json_set_alloc_funcs(malloc, free);
  return atomic_load(&jansson_count);
}

long support_jansson_failures(void) { return atomic_load(&jansson_failed); }

/* ---- hostile clients: raw sockets ------------------------------------------ */

static unsigned long long hc_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (unsigned long long)ts.tv_sec * 1000 +
         (unsigned long long)ts.tv_nsec / 1000000;
}

/* A TCP connection from the loopback address `from` to 127.0.0.1:port,
 * non-blocking, once connected (bounded: 2 s); -1 on failure. */
static int hc_connect(const char *from, int port) {
  struct pollfd p;
  int fd = ordo__http_loopback_connect(from, port), err = 0;
  socklen_t len = sizeof err;
  if (fd < 0)
    return -1;
  p.fd = fd;
  p.events = POLLOUT;
  if (poll(&p, 1, 2000) != 1 ||
      getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

/* Send all of text (bounded: 2 s). 0 or -1. */
static int hc_send(int fd, const char *text) {
  size_t n = strlen(text), off = 0;
  unsigned long long deadline = hc_now_ms() + 2000;
  while (off < n) {
    struct pollfd p = {fd, POLLOUT, 0};
    ssize_t k;
    if (hc_now_ms() >= deadline || poll(&p, 1, 100) < 0)
      return -1;
    k = send(fd, text + off, n - off, MSG_NOSIGNAL);
    if (k > 0)
      off += (size_t)k;
    else if (k < 0 && errno != EAGAIN && errno != EINTR)
      return -1;
  }
  return 0;
}

/* Read what comes until the peer closes or timeout_ms pass; out gets it
 * (NUL-terminated, cut to size). 1 when the peer closed (end of file or
 * reset), 0 when the time ran out. */
static int hc_read_until_closed(int fd, char *out, size_t size,
                                unsigned timeout_ms) {
  unsigned long long deadline = hc_now_ms() + timeout_ms;
  size_t len = 0;
  out[0] = '\0';
  for (;;) {
    struct pollfd p = {fd, POLLIN, 0};
    unsigned long long now = hc_now_ms();
    char buf[4096];
    ssize_t k;
    if (now >= deadline)
      return 0;
    if (poll(&p, 1, (int)(deadline - now)) <= 0)
      continue;
    k = recv(fd, buf, sizeof buf, 0);
    if (k == 0 || (k < 0 && errno != EAGAIN && errno != EINTR))
      return 1;
    if (k > 0 && len + 1 < size) {
      size_t c = (size_t)k < size - 1 - len ? (size_t)k : size - 1 - len;
      memcpy(out + len, buf, c);
      len += c;
      out[len] = '\0';
    }
  }
}

int support_hc_request(int port, const char *text, unsigned timeout_ms,
                      long long *closed_ms) {
  unsigned long long t0 = hc_now_ms();
  char buf[8192];
  int fd = hc_connect("127.0.0.1", port), st = -1, closed;
  if (closed_ms != NULL)
    *closed_ms = -1;
  if (fd < 0 || hc_send(fd, text) != 0) {
    if (fd >= 0)
      close(fd);
    return -1;
  }
  closed = hc_read_until_closed(fd, buf, sizeof buf, timeout_ms);
  if (closed && closed_ms != NULL)
    *closed_ms = (long long)(hc_now_ms() - t0);
  if (strncmp(buf, "HTTP/1.1 ", 9) == 0)
    st = atoi(buf + 9);
  close(fd);
  return st;
}



void support_hc_run(int port, const char *probe_text, unsigned run_ms,
                    support_hc_result *res) {
  static int fds[SUPPORT_HC_HALF_OPEN];
  static struct pollfd pf[SUPPORT_HC_HALF_OPEN + 1];
  unsigned long long t0, end, next_probe, next_byte, now;
  int i, tfd;
  memset(res, 0, sizeof *res);
  res->first_late_ms = -1;
  res->trickle_closed_ms = -1;
  t0 = hc_now_ms();
  for (i = 0; i < SUPPORT_HC_HALF_OPEN; i++) {
    fds[i] = hc_connect("127.0.0.2", port);
    if (fds[i] >= 0)
      res->half_open++;
  }
  tfd = hc_connect("127.0.0.3", port);
  assert_true(tfd >= 0);
  assert_int_equal(hc_send(tfd, "GET /healthz HTTP/1.1\r\nX-Slow: "), 0);
  end = t0 + run_ms;
  next_probe = next_byte = hc_now_ms();
  while ((now = hc_now_ms()) < end) {
    int n = 0, wait;
    if (now >= next_probe) {
      res->probes++;
      if (support_hc_request(port, probe_text, 2000, NULL) == 200)
        res->probes_ok++;
      next_probe = now + 100;
      continue;
    }
    if (tfd >= 0 && now >= next_byte) {
      (void)send(tfd, "a", 1, MSG_NOSIGNAL); /* never completes the line */
      next_byte = now + 100;
    }
    for (i = 0; i < SUPPORT_HC_HALF_OPEN; i++) {
      if (fds[i] < 0)
        continue;
      pf[n].fd = fds[i];
      pf[n].events = POLLIN;
      pf[n].revents = 0;
      n++;
    }
    if (tfd >= 0) {
      pf[n].fd = tfd;
      pf[n].events = POLLIN;
      pf[n].revents = 0;
      n++;
    }
    wait = (int)((next_probe < next_byte ? next_probe : next_byte) - now);
    if (wait > 100)
      wait = 100;
    if (poll(pf, (nfds_t)n, wait < 1 ? 1 : wait) <= 0)
      continue;
    for (i = 0; i < n; i++) {
      char buf[256];
      ssize_t k;
      int j;
      if (pf[i].revents == 0)
        continue;
      k = recv(pf[i].fd, buf, sizeof buf, 0);
      if (k > 0 || (k < 0 && (errno == EAGAIN || errno == EINTR)))
        continue;
      now = hc_now_ms();
      if (pf[i].fd == tfd) {
        res->trickle_closed_ms = (long long)(now - t0);
        close(tfd);
        tfd = -1;
        continue;
      }
      for (j = 0; j < SUPPORT_HC_HALF_OPEN && fds[j] != pf[i].fd; j++)
        ;
      /* No connection can reach its header timeout (1 s in every caller)
       * before 900 ms: one closed sooner was refused over the cap, however
       * slowly a loaded machine got to it. */
      if (now - t0 < 900) {
        res->closed_early++;
      } else {
        res->closed_late++;
        if (res->first_late_ms < 0)
          res->first_late_ms = (long long)(now - t0);
      }
      close(fds[j]);
      fds[j] = -1;
    }
  }
  for (i = 0; i < SUPPORT_HC_HALF_OPEN; i++)
    if (fds[i] >= 0) {
      res->open_at_end++;
      close(fds[i]);
    }
  if (tfd >= 0)
    close(tfd);
  print_message("hostile: %d half-open, %d closed at once, %d at the header "
                "timeout (first after %lld ms), trickler closed after %lld "
                "ms, %d/%d probes answered\n",
                res->half_open, res->closed_early, res->closed_late,
                res->first_late_ms, res->trickle_closed_ms, res->probes_ok,
                res->probes);
}

/*
 * test_rest.c — the Sawtooth REST client against a fake node: a loopback
 * listener thread in this file that answers each request from a script
 * (503 then 202, 429 twice, a Sawtooth 400, a slow answer, a closed
 * connection, malformed JSON, two pages of state) and records what it got
 * (method, target, Content-Type, Authorization, body), so the tests check
 * what the client sent as well as what it made of the answers.
 *
 * The fake serves one connection at a time and closes each after one
 * answer (Connection: close); curl queues the rest in the listen backlog.
 * Every loop is bounded; nothing waits on the clock except the fake's
 * poll timeouts. No timing assertions.
 */
#include "ordo.h"
#include "ledger/ledger.h"
#include "support/support.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

/* cmocka.h needs these first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

/* ------------------------------------------------------------------------ */
/* The fake node                                                             */
/* ------------------------------------------------------------------------ */

#define FAKE_MAX_REQS 512
#define FAKE_MAX_SCRIPT 8
#define FAKE_MAX_BODY (1 << 20)

typedef struct fake_req {
  char method[8];
  char target[4096];
  char content_type[128];
  char authorization[256];
  char *body;
  size_t body_len;
} fake_req;

enum {
  FAKE_ANSWER = 0, /* status, headers and body */
  FAKE_CLOSE,      /* close the connection without an answer */
  FAKE_SLOW        /* answer only once the client has gone (or 10 s) */
};

typedef struct fake_resp {
  int how;
  int status;
  const char *headers; /* extra header lines, each ending in \r\n */
  char body[2048];
} fake_resp;

typedef struct fake {
  int lfd;
  int port;
  pthread_t thread;
  atomic_int stop;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  fake_req reqs[FAKE_MAX_REQS]; /* under mu */
  size_t nreqs;                 /* under mu: requests received */
  size_t served;                /* under mu: connections handled */
  /* The i-th request gets script[min(i, nscript - 1)]. Set before start. */
  fake_resp script[FAKE_MAX_SCRIPT];
  size_t nscript;
} fake;

static int send_all(int fd, const char *p, size_t n) {
  for (int i = 0; n > 0 && i < 10000; i++) {
    ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
    if (k < 0 && errno == EINTR)
      continue;
    if (k <= 0)
      return -1;
    p += k;
    n -= (size_t)k;
  }
  return n == 0 ? 0 : -1;
}

/* A header's value from the block hdr (lines after the request line). */
static void header_value(const char *hdr, const char *name, char *out,
                         size_t cap) {
  out[0] = '\0';
  size_t nl = strlen(name);
  for (const char *l = hdr; l != NULL && *l != '\0';) {
    const char *e = strstr(l, "\r\n");
    if (e == NULL || e == l)
      return;
    if ((size_t)(e - l) > nl && strncasecmp(l, name, nl) == 0 && l[nl] == ':') {
      const char *v = l + nl + 1;
      while (*v == ' ')
        v++;
      size_t n = (size_t)(e - v) < cap - 1 ? (size_t)(e - v) : cap - 1;
      memcpy(out, v, n);
      out[n] = '\0';
      return;
    }
    l = e + 2;
  }
}

/* Wait up to about 3 s for fd to be readable, in slices that notice stop. */
static int wait_readable(fake *f, int fd) {
  for (int i = 0; i < 300 && !atomic_load(&f->stop); i++) {
    struct pollfd p = {fd, POLLIN, 0};
    int k = poll(&p, 1, 10);
    if (k != 0)
      return k > 0;
  }
  return 0;
}

/* Read one request. 0: got it; 1: TLS ClientHello; -1: gone or garbage. */
static int read_request(fake *f, int fd, fake_req *rq, char *buf, size_t cap) {
  size_t n = 0, hend = 0;
  for (int i = 0; i < 4096 && hend == 0; i++) {
    if (!wait_readable(f, fd))
      return -1;
    ssize_t k = recv(fd, buf + n, cap - 1 - n, 0);
    if (k <= 0)
      return -1;
    if (n == 0 && (unsigned char)buf[0] == 0x16)
      return 1;
    n += (size_t)k;
    buf[n] = '\0';
    char *e = strstr(buf, "\r\n\r\n");
    if (e != NULL)
      hend = (size_t)(e - buf) + 4;
    else if (n == cap - 1)
      return -1;
  }
  if (hend == 0)
    return -1;
  char *sp1 = strchr(buf, ' ');
  char *sp2 = sp1 != NULL ? strchr(sp1 + 1, ' ') : NULL;
  char *eol = strstr(buf, "\r\n");
  if (sp1 == NULL || sp2 == NULL || sp2 > eol)
    return -1;
  snprintf(rq->method, sizeof rq->method, "%.*s", (int)(sp1 - buf), buf);
  snprintf(rq->target, sizeof rq->target, "%.*s", (int)(sp2 - sp1 - 1), sp1 + 1);
  char save = buf[hend];
  buf[hend] = '\0';
  header_value(eol + 2, "Content-Type", rq->content_type, sizeof rq->content_type);
  header_value(eol + 2, "Authorization", rq->authorization,
               sizeof rq->authorization);
  char clen[32];
  header_value(eol + 2, "Content-Length", clen, sizeof clen);
  buf[hend] = save;
  size_t want = clen[0] ? (size_t)strtoul(clen, NULL, 10) : 0;
  if (want > FAKE_MAX_BODY || hend + want > cap - 1)
    return -1;
  for (int i = 0; i < 4096 && n < hend + want; i++) {
    if (!wait_readable(f, fd))
      return -1;
    ssize_t k = recv(fd, buf + n, hend + want - n, 0);
    if (k <= 0)
      return -1;
    n += (size_t)k;
  }
  if (n < hend + want)
    return -1;
  rq->body = malloc(want + 1);
  if (rq->body == NULL)
    return -1;
  memcpy(rq->body, buf + hend, want);
  rq->body[want] = '\0';
  rq->body_len = want;
  return 0;
}

/* FAKE_SLOW: wait (bounded) until the client closes. 1: it did. */
static int wait_client_gone(fake *f, int fd) {
  for (int i = 0; i < 1000 && !atomic_load(&f->stop); i++) {
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, 10) > 0) {
      char b[256];
      if (recv(fd, b, sizeof b, 0) <= 0)
        return 1;
    }
  }
  return 0;
}

static void serve_one(fake *f, int fd, char *buf, size_t cap) {
  fake_req rq;
  memset(&rq, 0, sizeof rq);
  int got = read_request(f, fd, &rq, buf, cap);
  if (got == 1) { /* TLS to a plain server: answer in plain text */
    (void)send_all(fd, "HTTP/1.1 400 Bad Request\r\n\r\n", 28);
    return;
  }
  if (got != 0)
    return;
  pthread_mutex_lock(&f->mu);
  size_t i = f->nreqs;
  if (i < FAKE_MAX_REQS)
    f->reqs[f->nreqs++] = rq;
  else
    free(rq.body);
  fake_resp r = f->script[i < f->nscript ? i : f->nscript - 1];
  pthread_cond_broadcast(&f->cv);
  pthread_mutex_unlock(&f->mu);

  if (r.how == FAKE_CLOSE)
    return;
  if (r.how == FAKE_SLOW && wait_client_gone(f, fd))
    return;
  char head[512];
  int hn = snprintf(head, sizeof head,
                    "HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
                    "Content-Length: %zu\r\nConnection: close\r\n%s\r\n",
                    r.status, strlen(r.body), r.headers ? r.headers : "");
  if (send_all(fd, head, (size_t)hn) == 0)
    (void)send_all(fd, r.body, strlen(r.body));
}

static void *fake_main(void *arg) {
  fake *f = arg;
  size_t cap = FAKE_MAX_BODY + 65536;
  char *buf = malloc(cap);
  if (buf == NULL)
    return NULL;
  /* Bounded: at most this many polls of 10 ms (about 10 minutes). */
  for (long i = 0; i < 60000 && !atomic_load(&f->stop); i++) {
    struct pollfd p = {f->lfd, POLLIN, 0};
    if (poll(&p, 1, 10) <= 0)
      continue;
    int fd = accept(f->lfd, NULL, NULL);
    if (fd < 0)
      continue;
    serve_one(f, fd, buf, cap);
    shutdown(fd, SHUT_WR);
    close(fd);
    pthread_mutex_lock(&f->mu);
    f->served++;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
  }
  free(buf);
  return NULL;
}

/* Bind 127.0.0.1:0 and listen. */
static int listen_loopback(int *port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  assert_true(fd >= 0);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(listen(fd, 512), 0);
  socklen_t len = sizeof a;
  assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
  *port = ntohs(a.sin_port);
  return fd;
}

static void fake_init(fake *f) {
  memset(f, 0, sizeof *f);
  pthread_mutex_init(&f->mu, NULL);
  pthread_cond_init(&f->cv, NULL);
  f->lfd = listen_loopback(&f->port);
}

static void fake_script(fake *f, size_t i, int how, int status,
                        const char *headers, const char *body) {
  assert_true(i < FAKE_MAX_SCRIPT);
  f->script[i].how = how;
  f->script[i].status = status;
  f->script[i].headers = headers;
  snprintf(f->script[i].body, sizeof f->script[i].body, "%s", body);
  if (f->nscript < i + 1)
    f->nscript = i + 1;
}

static void fake_start(fake *f) {
  assert_true(f->nscript > 0);
  assert_int_equal(pthread_create(&f->thread, NULL, fake_main, f), 0);
}

static void fake_stop(fake *f) {
  atomic_store(&f->stop, 1);
  pthread_join(f->thread, NULL);
  close(f->lfd);
  for (size_t i = 0; i < f->nreqs; i++)
    free(f->reqs[i].body);
  pthread_cond_destroy(&f->cv);
  pthread_mutex_destroy(&f->mu);
}

/* Block until the fake has received n requests (bounded by its own life). */
static void fake_wait_reqs(fake *f, size_t n) {
  pthread_mutex_lock(&f->mu);
  while (f->nreqs < n)
    pthread_cond_wait(&f->cv, &f->mu);
  pthread_mutex_unlock(&f->mu);
}

/* Block until the fake has closed n connections. */
static void fake_wait_served(fake *f, size_t n) {
  pthread_mutex_lock(&f->mu);
  while (f->served < n)
    pthread_cond_wait(&f->cv, &f->mu);
  pthread_mutex_unlock(&f->mu);
}

/* Request i, once received: taken under the fake's lock, so what the fake
 * thread wrote is visible (the socket alone is no ordering TSan can see). */
static fake_req *fake_at(fake *f, size_t i) {
  pthread_mutex_lock(&f->mu);
  fake_req *r = i < f->nreqs ? &f->reqs[i] : NULL;
  pthread_mutex_unlock(&f->mu);
  assert_non_null(r);
  return r;
}

static size_t fake_count(fake *f) {
  pthread_mutex_lock(&f->mu);
  size_t n = f->nreqs;
  pthread_mutex_unlock(&f->mu);
  return n;
}

/* ------------------------------------------------------------------------ */
/* Fixture                                                                   */
/* ------------------------------------------------------------------------ */

#define AUTH "Bearer s3cr3t-t0ken"

/* test_many_concurrent's callbacks count down here. */
typedef struct many_ctx {
  support_latch done;
  atomic_int ok;
} many_ctx;

typedef struct env {
  ordo_ctx *ctx;
  many_ctx *many; /* test_many_concurrent's, destroyed after ordo_ctx_free */
  fake f;
  ordo_ledger_client *c;
  ordo_ledger_client_options opt;
  char url[64];
} env;

static int setup_net(void **state, unsigned net_threads) {
  env *e = calloc(1, sizeof *e);
  assert_non_null(e);
  ordo_config cfg;
  ordo_config_init(&cfg);
  cfg.cheap_threads = 2;
  cfg.net_threads = net_threads;
  e->ctx = ordo_ctx_new(&cfg);
  assert_non_null(e->ctx);
  fake_init(&e->f);
  snprintf(e->url, sizeof e->url, "http://127.0.0.1:%d", e->f.port);
  ordo_ledger_client_options_init(&e->opt);
  e->opt.url = e->url;
  e->opt.auth = AUTH;
  e->opt.backoff_base_ms = 1;
  e->opt.backoff_max_ms = 4;
  e->opt.max_attempts = 3;
  *state = e;
  return 0;
}

/* One net thread: the driver and the send stages share it. */
static int setup(void **state) { return setup_net(state, 1); }

/* Four: send stages run beside a driver run, on other threads. */
static int setup_net4(void **state) { return setup_net(state, 4); }

/* Start the fake (its script set) and make the client from e->opt. */
static void start(env *e) {
  fake_start(&e->f);
  assert_int_equal(ordo_ledger_client_new(e->ctx, &e->opt, &e->c), ORDO_OK);
}

static int teardown(void **state) {
  env *e = *state;
  ordo_ledger_client_free(e->c);
  ordo_ctx_free(e->ctx);
  fake_stop(&e->f);
  if (e->many != NULL) {
    support_latch_destroy(&e->many->done);
    free(e->many);
  }
  free(e);
  assert_int_equal(support_take_failures(), 0);
  return 0;
}

/* Run op; return its status, and its message copied into msg. */
static int run_msg(ordo_op *op, char *msg, size_t cap) {
  assert_non_null(op);
  int rc = ordo_op_wait(op, -1);
  snprintf(msg, cap, "%s", ordo_op_message(op));
  if (rc != ORDO_OK)
    assert_true(strlen(msg) > 0);
  ordo_op_release(op);
  return rc;
}

static const char *const ID_A =
    "aaaa1111aaaa1111aaaa1111aaaa1111aaaa1111aaaa1111aaaa1111aaaa1111"
    "aaaa1111aaaa1111aaaa1111aaaa1111aaaa1111aaaa1111aaaa1111aaaa1111";

#define STATUS_OK_BODY                                                        \
  "{\"data\":[{\"id\":\"aaaa\",\"status\":\"COMMITTED\","                      \
  "\"invalid_transactions\":[]}],\"link\":\"x\"}"

/* ------------------------------------------------------------------------ */
/* Tests                                                                     */
/* ------------------------------------------------------------------------ */

static void test_submit_body_and_headers(void **state) {
  env *e = *state;
  fake_script(&e->f, 0, FAKE_ANSWER, 202, NULL,
              "{\"link\":\"http://127.0.0.1/batch_statuses?id=aaaa\"}");
  start(e);
  unsigned char body[3000];
  for (size_t i = 0; i < sizeof body; i++)
    body[i] = (unsigned char)(i * 7 + (i >> 8)); /* with NUL bytes */
  char *out = NULL;
  assert_int_equal(support_run(ordo_ledger_submit(e->c, body, sizeof body), &out),
                   ORDO_OK);
  assert_string_equal(out, "{\"link\":\"http://127.0.0.1/batch_statuses?id=aaaa\"}");
  free(out);
  assert_int_equal(fake_count(&e->f), 1);
  fake_req *r = fake_at(&e->f, 0);
  assert_string_equal(r->method, "POST");
  assert_string_equal(r->target, "/batches");
  assert_string_equal(r->content_type, "application/octet-stream");
  assert_string_equal(r->authorization, AUTH);
  assert_int_equal(r->body_len, sizeof body);
  assert_memory_equal(r->body, body, sizeof body);
}

static void test_statuses_get_and_post(void **state) {
  env *e = *state;
  e->opt.auth = NULL;
  fake_script(&e->f, 0, FAKE_ANSWER, 200, NULL, STATUS_OK_BODY);
  start(e);
  /* 15 ids: one GET, ids joined by commas, wait as a parameter. */
  char ids[16][129];
  const char *pids[16];
  for (int i = 0; i < 16; i++) {
    snprintf(ids[i], sizeof ids[i], "%0128x", i);
    pids[i] = ids[i];
  }
  char *out = NULL;
  assert_int_equal(support_run(ordo_ledger_batch_statuses(e->c, pids, 15, 2), &out),
                   ORDO_OK);
  json_t *o = json_loads(out, 0, NULL);
  assert_non_null(o);
  json_t *d = json_array_get(json_object_get(o, "data"), 0);
  assert_string_equal(json_string_value(json_object_get(d, "status")), "COMMITTED");
  assert_true(json_is_array(json_object_get(d, "invalid_transactions")));
  assert_string_equal(json_string_value(json_object_get(o, "link")), "x");
  json_decref(o);
  free(out);
  fake_req *r = fake_at(&e->f, 0);
  assert_string_equal(r->method, "GET");
  {
    char want[16 * 130 + 64];
    size_t k = (size_t)snprintf(want, sizeof want, "/batch_statuses?id=");
    for (int i = 0; i < 15; i++)
      k += (size_t)snprintf(want + k, sizeof want - k, "%s%s", i ? "," : "",
                            ids[i]);
    snprintf(want + k, sizeof want - k, "&wait=2");
    assert_string_equal(r->target, want);
  }
  assert_string_equal(r->authorization, "");

  /* 16 ids: POST with a JSON array. */
  assert_int_equal(support_run(ordo_ledger_batch_statuses(e->c, pids, 16, 0), NULL),
                   ORDO_OK);
  r = fake_at(&e->f, 1);
  assert_string_equal(r->method, "POST");
  assert_string_equal(r->target, "/batch_statuses");
  assert_string_equal(r->content_type, "application/json");
  json_t *a = json_loadb(r->body, r->body_len, 0, NULL);
  assert_true(json_is_array(a));
  assert_int_equal(json_array_size(a), 16);
  for (size_t i = 0; i < 16; i++)
    assert_string_equal(json_string_value(json_array_get(a, i)), ids[i]);
  json_decref(a);

  /* POST with wait: the parameter in the query. */
  assert_int_equal(support_run(ordo_ledger_batch_statuses(e->c, pids, 16, 5), NULL),
                   ORDO_OK);
  assert_string_equal(fake_at(&e->f, 2)->target, "/batch_statuses?wait=5");

  /* One full-length id. */
  const char *one[1] = {ID_A};
  assert_int_equal(support_run(ordo_ledger_batch_statuses(e->c, one, 1, 0), NULL),
                   ORDO_OK);
  assert_int_equal(strlen(fake_at(&e->f, 3)->target),
                   strlen("/batch_statuses?id=") + 128);
}

/* The Sawtooth port answers typed statuses: each item by its ledger id (or
 * the id in a legacy payload), PENDING as SUBMITTED, the first invalid
 * transaction's message as the reason ("invalid" when there is none), an
 * id not asked about ignored, an item the ledger cannot know UNKNOWN
 * unasked, and an answer that is no batch_statuses list a clear error. */
static void test_port_typed_statuses(void **state) {
  env *e = *state;
  char ids[5][129], body[2048];
  ordo_queue_item items[6];
  ordo_ledger_status out[6];
  ordo_ledger_sawtooth_port *p = NULL;
  const ordo_ledger_port *port;
  for (int i = 0; i < 5; i++)
    snprintf(ids[i], sizeof ids[i], "%0128x", i + 1);
  snprintf(body, sizeof body,
           "{\"data\":["
           "{\"id\":\"%s\",\"status\":\"COMMITTED\"},"
           "{\"id\":\"%s\",\"status\":\"INVALID\",\"invalid_transactions\":"
           "[{\"id\":\"t\",\"message\":\"bad nonce\"}]},"
           "{\"id\":\"%s\",\"status\":\"INVALID\"},"
           "{\"id\":\"%s\",\"status\":\"PENDING\"},"
           "{\"id\":\"%s\",\"status\":\"UNKNOWN\"},"
           "{\"id\":\"%0128x\",\"status\":\"COMMITTED\"}]}",
           ids[3], ids[0], ids[1], ids[2], ids[4], 99);
  fake_script(&e->f, 0, FAKE_ANSWER, 200, NULL, body);
  fake_script(&e->f, 1, FAKE_ANSWER, 200, NULL, "{\"nodata\":1}");
  start(e);
  assert_int_equal(ordo_ledger_sawtooth_port_new(e->ctx, e->c, &p), ORDO_OK);
  port = ordo_ledger_sawtooth_port_get(p);
  assert_true(port->can_wait);
  memset(items, 0, sizeof items);
  static const char *const qids[6] = {"q0", "q1", "q2", "q3", "q4", "q5"};
  for (int i = 0; i < 6; i++) {
    items[i].id = qids[i];
    items[i].ledger_id = i < 5 ? ids[i] : NULL; /* q5: none, no payload */
  }
  assert_int_equal(
      support_run(port->statuses(port->self, items, 6, 0, out), NULL),
      ORDO_OK);
  assert_int_equal(out[0].state, ORDO_QUEUE_INVALID);
  assert_string_equal(out[0].reason, "bad nonce");
  assert_int_equal(out[1].state, ORDO_QUEUE_INVALID);
  assert_string_equal(out[1].reason, "invalid");
  assert_int_equal(out[2].state, ORDO_QUEUE_SUBMITTED);
  assert_null(out[2].reason);
  assert_int_equal(out[3].state, ORDO_QUEUE_COMMITTED);
  assert_int_equal(out[4].state, ORDO_QUEUE_UNKNOWN);
  assert_int_equal(out[5].state, ORDO_QUEUE_UNKNOWN);
  ordo_ledger_status_clear(out, 6);
  assert_null(out[0].reason);
  /* Five asked (q5 could not be known), in one GET. */
  {
    fake_req *r = fake_at(&e->f, 0);
    size_t commas = 0;
    assert_string_equal(r->method, "GET");
    for (const char *c = r->target; *c; c++)
      commas += *c == ',';
    assert_int_equal(commas, 4);
  }
  /* No batch_statuses list: an error that says so. */
  char msg[256];
  assert_int_equal(run_msg(port->statuses(port->self, items, 2, 0, out), msg,
                           sizeof msg),
                   ORDO_E_LEDGER_RESPONSE);
  assert_non_null(strstr(msg, "data")); /* what is missing, named */
  ordo_ledger_status_clear(out, 2);
  ordo_ledger_sawtooth_port_free(p);
}

static void test_bad_arguments(void **state) {
  env *e = *state;
  fake_script(&e->f, 0, FAKE_ANSWER, 200, NULL, STATUS_OK_BODY);
  start(e);
  /* Sawtooth takes exactly 128 lowercase hex (else 400 code 60): the
   * client sends nothing else. */
  const char *bad[2] = {"abc", "not hex&x=1"};
  char upper[129], short_id[128];
  memset(upper, 'A', 128);
  upper[128] = '\0';
  memset(short_id, 'a', 127);
  short_id[127] = '\0';
  const char *bad_one[1] = {upper}, *bad_short[1] = {short_id};
  assert_int_equal(support_run(ordo_ledger_batch_statuses(e->c, bad_one, 1, 0),
                               NULL),
                   ORDO_E_INVAL);
  assert_int_equal(support_run(ordo_ledger_batch_statuses(e->c, bad_short, 1, 0),
                               NULL),
                   ORDO_E_INVAL);
  assert_int_equal(support_run(ordo_ledger_batch_statuses(e->c, bad, 2, 0), NULL),
                   ORDO_E_INVAL);
  assert_int_equal(support_run(ordo_ledger_batch_statuses(e->c, bad, 0, 0), NULL),
                   ORDO_E_INVAL);
  assert_int_equal(support_run(ordo_ledger_batch_statuses(e->c, bad, 1, -1), NULL),
                   ORDO_E_INVAL);
  assert_int_equal(support_run(ordo_ledger_state_get(e->c, "1cf126"), NULL),
                   ORDO_E_INVAL);
  assert_int_equal(support_run(ordo_ledger_state_list(e->c, "xyz"), NULL),
                   ORDO_E_INVAL);
  assert_int_equal(support_run(ordo_ledger_blocks(e->c, 1001), NULL), ORDO_E_INVAL);
  assert_int_equal(support_run(ordo_ledger_submit(e->c, NULL, 5), NULL),
                   ORDO_E_INVAL);
  assert_null(ordo_ledger_submit(NULL, "x", 1));
  assert_int_equal(ordo_last_error(), ORDO_E_INVAL);
  assert_int_equal(fake_count(&e->f), 0); /* nothing was sent */

  /* Client options. */
  ordo_ledger_client *c = NULL;
  ordo_ledger_client_options o;
  ordo_ledger_client_options_init(&o);
  const char *urls[] = {"ftp://127.0.0.1/", "http://user:pw@127.0.0.1/",
                        "http://127.0.0.1/?q=1", "not a url", "http://"};
  for (size_t i = 0; i < sizeof urls / sizeof *urls; i++) {
    o.url = urls[i];
    assert_int_equal(ordo_ledger_client_new(e->ctx, &o, &c), ORDO_E_INVAL);
    assert_null(c);
  }
  o.url = e->url;
  o.auth = "Bearer abc\r\nX-Evil: 1";
  assert_int_equal(ordo_ledger_client_new(e->ctx, &o, &c), ORDO_E_INVAL);
  assert_null(strstr(ordo_last_error_message(), "abc"));
  o.auth = NULL;
  o.backoff_base_ms = 10;
  o.backoff_max_ms = 5;
  assert_int_equal(ordo_ledger_client_new(e->ctx, &o, &c), ORDO_E_INVAL);
  assert_int_equal(ordo_ledger_client_new(e->ctx, NULL, &c), ORDO_E_INVAL);
}

static void test_retry_503_then_202(void **state) {
  env *e = *state;
  fake_script(&e->f, 0, FAKE_ANSWER, 503, NULL,
              "{\"error\":{\"code\":15,\"title\":\"Validator Not Ready\","
              "\"message\":\"not yet\"}}");
  fake_script(&e->f, 1, FAKE_ANSWER, 202, NULL, "{\"link\":\"l\"}");
  start(e);
  assert_int_equal(support_run(ordo_ledger_submit(e->c, "abc", 3), NULL), ORDO_OK);
  assert_int_equal(fake_count(&e->f), 2);
  assert_string_equal(fake_at(&e->f, 1)->body, "abc");
}

static void test_retry_429_twice_then_200(void **state) {
  env *e = *state;
  fake_script(&e->f, 0, FAKE_ANSWER, 429, "Retry-After: 0\r\n",
              "{\"error\":{\"code\":31,\"title\":\"Unable to Accept Batches\","
              "\"message\":\"queue full\"}}");
  fake_script(&e->f, 1, FAKE_ANSWER, 429, NULL, "{}");
  fake_script(&e->f, 2, FAKE_ANSWER, 200, NULL, STATUS_OK_BODY);
  start(e);
  const char *ids[1] = {ID_A};
  assert_int_equal(support_run(ordo_ledger_batch_statuses(e->c, ids, 1, 0), NULL),
                   ORDO_OK);
  assert_int_equal(fake_count(&e->f), 3);
}

static void test_retries_stop_at_the_limit(void **state) {
  env *e = *state;
  fake_script(&e->f, 0, FAKE_ANSWER, 503, NULL,
              "{\"error\":{\"code\":18,\"title\":\"Validator Disconnected\","
              "\"message\":\"gone\"}}");
  start(e);
  char msg[1024];
  assert_int_equal(run_msg(ordo_ledger_submit(e->c, "x", 1), msg, sizeof msg),
                   ORDO_E_LEDGER_UNAVAILABLE);
  assert_int_equal(fake_count(&e->f), 3);
  assert_non_null(strstr(msg, "503 code 18: Validator Disconnected: gone"));
  assert_non_null(strstr(msg, "3 attempts"));
  assert_null(strstr(msg, "s3cr3t"));
}

static void test_busy_after_retries(void **state) {
  env *e = *state;
  e->opt.max_attempts = 2;
  fake_script(&e->f, 0, FAKE_ANSWER, 429, NULL,
              "{\"error\":{\"code\":31,\"title\":\"Unable to Accept Batches\","
              "\"message\":\"queue full\"}}");
  start(e);
  char msg[1024];
  assert_int_equal(run_msg(ordo_ledger_submit(e->c, "x", 1), msg, sizeof msg),
                   ORDO_E_LEDGER_BUSY);
  assert_int_equal(fake_count(&e->f), 2);
  assert_non_null(strstr(msg, "429 code 31"));
}

static void test_400_not_retried(void **state) {
  env *e = *state;
  fake_script(&e->f, 0, FAKE_ANSWER, 400, NULL,
              "{\"error\":{\"code\":30,\"title\":\"Submitted Batches Invalid\","
              "\"message\":\"The submitted BatchList was rejected by the "
              "validator.\\nIt failed signature verification.\"}}");
  start(e);
  char msg[1024];
  /* Code 30 on POST /batches: the whole list refused for one batch in it. */
  assert_int_equal(run_msg(ordo_ledger_submit(e->c, "x", 1), msg, sizeof msg),
                   ORDO_E_LEDGER_BATCH_REFUSED);
  assert_int_equal(fake_count(&e->f), 1);
  assert_non_null(strstr(msg, "400 code 30: Submitted Batches Invalid: The "
                              "submitted BatchList was rejected by the "
                              "validator. It failed")); /* \n made a space */
  assert_non_null(strstr(msg, "POST /batches"));
  assert_null(strstr(msg, "s3cr3t"));
}

/* A 400 that is about the request, not a batch (42: wrong content type),
 * stays REJECTED; the REST API's 413 is aiohttp's plain text, quoted. */
static void test_400_other_and_413(void **state) {
  env *e = *state;
  fake_script(&e->f, 0, FAKE_ANSWER, 400, NULL,
              "{\"error\":{\"code\":42,\"title\":\"Wrong Content Type\"}}");
  fake_script(&e->f, 1, FAKE_ANSWER, 413, NULL,
              "Maximum request body size 10485760 exceeded, actual body size "
              "10485761\nmore");
  start(e);
  char msg[1024];
  assert_int_equal(run_msg(ordo_ledger_submit(e->c, "x", 1), msg, sizeof msg),
                   ORDO_E_LEDGER_REJECTED);
  assert_non_null(strstr(msg, "400 code 42"));
  assert_int_equal(run_msg(ordo_ledger_submit(e->c, "x", 1), msg, sizeof msg),
                   ORDO_E_LEDGER_TOO_LARGE);
  assert_non_null(strstr(msg, "413"));
  assert_non_null(strstr(msg, "Maximum request body size 10485760 exceeded, "
                              "actual body size 10485761"));
  assert_null(strstr(msg, "more"));
  assert_int_equal(fake_count(&e->f), 2); /* neither retried */
}

static void test_auth_refused_and_other_status(void **state) {
  env *e = *state;
  fake_script(&e->f, 0, FAKE_ANSWER, 401, NULL, "not json");
  fake_script(&e->f, 1, FAKE_ANSWER, 500, NULL,
              "{\"error\":{\"code\":10,\"title\":\"Unknown Validator Error\"}}");
  start(e);
  char msg[1024];
  assert_int_equal(run_msg(ordo_ledger_blocks(e->c, 5), msg, sizeof msg),
                   ORDO_E_LEDGER_AUTH);
  assert_non_null(strstr(msg, "401"));
  assert_null(strstr(msg, "s3cr3t"));
  assert_int_equal(run_msg(ordo_ledger_blocks(e->c, 5), msg, sizeof msg),
                   ORDO_E_LEDGER);
  assert_non_null(strstr(msg, "500 code 10: Unknown Validator Error"));
  assert_int_equal(fake_count(&e->f), 2);
  assert_string_equal(fake_at(&e->f, 0)->target, "/blocks?limit=5");
  assert_string_equal(fake_at(&e->f, 0)->authorization, AUTH);
}

static void test_connection_refused(void **state) {
  env *e = *state;
  fake_script(&e->f, 0, FAKE_ANSWER, 200, NULL, "{}");
  /* A port that was just free: bind, note it, close. */
  int port = 0;
  close(listen_loopback(&port));
  snprintf(e->url, sizeof e->url, "http://127.0.0.1:%d/", port);
  start(e);
  char msg[1024];
  assert_int_equal(run_msg(ordo_ledger_blocks(e->c, 1), msg, sizeof msg),
                   ORDO_E_LEDGER_CONNECT);
  assert_non_null(strstr(msg, "3 attempts"));
}

static void test_closed_without_answer_is_retried(void **state) {
  env *e = *state;
  fake_script(&e->f, 0, FAKE_CLOSE, 0, NULL, "");
  fake_script(&e->f, 1, FAKE_ANSWER, 202, NULL, "{\"link\":\"l\"}");
  start(e);
  assert_int_equal(support_run(ordo_ledger_submit(e->c, "x", 1), NULL), ORDO_OK);
  assert_int_equal(fake_count(&e->f), 2);
}

static void test_malformed_bodies(void **state) {
  env *e = *state;
  fake_script(&e->f, 0, FAKE_ANSWER, 200, NULL, "{\"data\":[{\"id\":");
  fake_script(&e->f, 1, FAKE_ANSWER, 200, NULL, "{\"data\":{}}");
  fake_script(&e->f, 2, FAKE_ANSWER, 200, NULL,
              "{\"data\":[{\"id\":\"a\",\"status\":\"WHATEVER\"}]}");
  fake_script(&e->f, 3, FAKE_ANSWER, 202, NULL, "[1,2]");
  start(e);
  const char *ids[1] = {ID_A};
  char msg[1024];
  for (int i = 0; i < 3; i++)
    assert_int_equal(run_msg(ordo_ledger_batch_statuses(e->c, ids, 1, 0), msg,
                             sizeof msg),
                     ORDO_E_LEDGER_RESPONSE);
  assert_non_null(strstr(msg, "COMMITTED"));
  assert_int_equal(run_msg(ordo_ledger_submit(e->c, "x", 1), msg, sizeof msg),
                   ORDO_E_LEDGER_RESPONSE);
  assert_int_equal(fake_count(&e->f), 4); /* malformed is not retried */
}

static void test_response_too_large(void **state) {
  env *e = *state;
  e->opt.max_response_bytes = 16;
  fake_script(&e->f, 0, FAKE_ANSWER, 200, NULL, STATUS_OK_BODY);
  start(e);
  const char *ids[1] = {ID_A};
  char msg[1024];
  assert_int_equal(run_msg(ordo_ledger_batch_statuses(e->c, ids, 1, 0), msg,
                           sizeof msg),
                   ORDO_E_LEDGER_RESPONSE);
  assert_non_null(strstr(msg, "larger than 16"));
}

static void test_state_get(void **state) {
  env *e = *state;
  fake_script(&e->f, 0, FAKE_ANSWER, 200, NULL,
              "{\"data\":\"oWNmb28B\",\"head\":\"h1\",\"link\":\"l\"}");
  fake_script(&e->f, 1, FAKE_ANSWER, 404, NULL,
              "{\"error\":{\"code\":75,\"title\":\"State Not Found\","
              "\"message\":\"no such address\"}}");
  start(e);
  char addr[ORDO_LEDGER_ADDRESS_SIZE];
  assert_int_equal(ordo_ledger_intkey_address("foo", addr), ORDO_OK);
  char *out = NULL;
  assert_int_equal(support_run(ordo_ledger_state_get(e->c, addr), &out), ORDO_OK);
  assert_string_equal(out, "{\"data\":\"oWNmb28B\",\"head\":\"h1\"}");
  free(out);
  char target[128];
  snprintf(target, sizeof target, "/state/%s", addr);
  assert_string_equal(fake_at(&e->f, 0)->target, target);
  char msg[1024];
  assert_int_equal(run_msg(ordo_ledger_state_get(e->c, addr), msg, sizeof msg),
                   ORDO_E_NOT_FOUND);
  assert_non_null(strstr(msg, "404 code 75"));
}

static void test_state_list_pages(void **state) {
  env *e = *state;
  char page1[1024];
  snprintf(page1, sizeof page1,
           "{\"data\":[{\"address\":\"1cf126aa\",\"data\":\"AQ==\"}],"
           "\"head\":\"h\",\"paging\":{\"limit\":1,\"start\":null,"
           "\"next_position\":\"1cf126bb\",\"next\":\"http://127.0.0.1:%d/"
           "state?address=1cf126&start=1cf126bb&limit=1\"}}",
           e->f.port);
  fake_script(&e->f, 0, FAKE_ANSWER, 200, NULL, page1);
  fake_script(&e->f, 1, FAKE_ANSWER, 200, NULL,
              "{\"data\":[{\"address\":\"1cf126bb\",\"data\":\"Ag==\"},"
              "{\"address\":\"1cf126cc\",\"data\":\"\"}],"
              "\"paging\":{\"limit\":1,\"start\":\"1cf126bb\"}}");
  start(e);
  char *out = NULL;
  assert_int_equal(support_run(ordo_ledger_state_list(e->c, "1cf126"), &out),
                   ORDO_OK);
  assert_string_equal(out, "{\"data\":[{\"address\":\"1cf126aa\",\"data\":\"AQ==\"},"
                           "{\"address\":\"1cf126bb\",\"data\":\"Ag==\"},"
                           "{\"address\":\"1cf126cc\",\"data\":\"\"}]}");
  free(out);
  assert_int_equal(fake_count(&e->f), 2);
  assert_string_equal(fake_at(&e->f, 0)->target, "/state?address=1cf126");
  assert_string_equal(fake_at(&e->f, 1)->target,
                      "/state?address=1cf126&start=1cf126bb&limit=1");
  assert_string_equal(fake_at(&e->f, 1)->authorization, AUTH);
}

static void test_state_list_next_elsewhere_refused(void **state) {
  env *e = *state;
  /* A next link that is not /state: not followed. */
  fake_script(&e->f, 0, FAKE_ANSWER, 200, NULL,
              "{\"data\":[],\"paging\":{\"next\":\"http://evil.example/"
              "blocks?start=1\"}}");
  start(e);
  assert_int_equal(support_run(ordo_ledger_state_list(e->c, NULL), NULL),
                   ORDO_E_LEDGER_RESPONSE);
  assert_int_equal(fake_count(&e->f), 1);
  assert_string_equal(fake_at(&e->f, 0)->target, "/state");
}

static void test_blocks(void **state) {
  env *e = *state;
  fake_script(&e->f, 0, FAKE_ANSWER, 200, NULL,
              "{\"data\":[{\"header\":{\"block_num\":\"12\"},"
              "\"header_signature\":\"b\",\"batches\":[]}],\"head\":\"b\"}");
  start(e);
  json_t *o = support_run_json(ordo_ledger_blocks(e->c, 0));
  json_t *b = json_array_get(json_object_get(o, "data"), 0);
  assert_string_equal(
      json_string_value(json_object_get(json_object_get(b, "header"), "block_num")),
      "12");
  json_decref(o);
  assert_string_equal(fake_at(&e->f, 0)->target, "/blocks");
}

static void test_cancel_in_flight(void **state) {
  env *e = *state;
  fake_script(&e->f, 0, FAKE_SLOW, 200, NULL, "{\"link\":\"l\"}");
  start(e);
  ordo_op *op = ordo_ledger_submit(e->c, "x", 1);
  fake_wait_reqs(&e->f, 1); /* the transfer is in flight */
  assert_int_equal(ordo_op_status(op), ORDO_E_PENDING);
  assert_int_equal(ordo_op_cancel(op), ORDO_E_BUSY); /* started: recorded */
  assert_int_equal(ordo_op_wait(op, -1), ORDO_E_CANCELED);
  assert_non_null(strstr(ordo_op_message(op), "canceled"));
  ordo_op_release(op);
  fake_wait_served(&e->f, 1); /* the fake saw the connection go */
  assert_int_equal(fake_count(&e->f), 1);
}

static void test_timeout_is_retried_then_reported(void **state) {
  env *e = *state;
  e->opt.timeout_ms = 100;
  e->opt.max_attempts = 2;
  fake_script(&e->f, 0, FAKE_SLOW, 200, NULL, "{}");
  start(e);
  char msg[1024];
  assert_int_equal(run_msg(ordo_ledger_blocks(e->c, 1), msg, sizeof msg),
                   ORDO_E_TIMEOUT);
  assert_non_null(strstr(msg, "2 attempts"));
  assert_int_equal(fake_count(&e->f), 2);
}

static void test_free_cancels_in_flight(void **state) {
  env *e = *state;
  fake_script(&e->f, 0, FAKE_SLOW, 200, NULL, "{}");
  start(e);
  ordo_op *op = ordo_ledger_blocks(e->c, 1);
  fake_wait_reqs(&e->f, 1);
  ordo_ledger_client_free(e->c); /* cancels, waits for the driver */
  e->c = NULL;
  assert_int_equal(ordo_op_wait(op, -1), ORDO_E_CANCELED);
  ordo_op_release(op);
}

static void test_ctx_free_cancels_in_flight(void **state) {
  env *e = *state;
  fake_script(&e->f, 0, FAKE_SLOW, 200, NULL, "{}");
  start(e);
  ordo_op *op = ordo_ledger_blocks(e->c, 1);
  fake_wait_reqs(&e->f, 1);
  ordo_ctx_free(e->ctx); /* the op is canceled, the driver stops */
  e->ctx = NULL;
  assert_int_equal(ordo_op_wait(op, -1), ORDO_E_CANCELED);
  ordo_op_release(op);
}

static void test_https_to_plain_server(void **state) {
  env *e = *state;
  fake_script(&e->f, 0, FAKE_ANSWER, 200, NULL, "{}");
  snprintf(e->url, sizeof e->url, "https://127.0.0.1:%d", e->f.port);
  start(e);
  char msg[1024];
  assert_int_equal(run_msg(ordo_ledger_blocks(e->c, 1), msg, sizeof msg),
                   ORDO_E_LEDGER_TLS);
  /* A CA file that does not exist is a TLS failure too. */
  ordo_ledger_client *c2 = NULL;
  e->opt.ca_file = "/nonexistent/ca.pem";
  assert_int_equal(ordo_ledger_client_new(e->ctx, &e->opt, &c2), ORDO_OK);
  assert_int_equal(run_msg(ordo_ledger_blocks(c2, 1), msg, sizeof msg),
                   ORDO_E_LEDGER_TLS);
  ordo_ledger_client_free(c2);
}

static void test_host_name_resolved(void **state) {
  env *e = *state;
  fake_script(&e->f, 0, FAKE_ANSWER, 200, NULL, "{\"data\":[]}");
  snprintf(e->url, sizeof e->url, "http://localhost:%d/", e->f.port);
  start(e);
  assert_int_equal(support_run(ordo_ledger_blocks(e->c, 2), NULL), ORDO_OK);
  assert_int_equal(support_run(ordo_ledger_blocks(e->c, 3), NULL), ORDO_OK);
  assert_string_equal(fake_at(&e->f, 1)->target, "/blocks?limit=3");
}

#define MANY 200

static void many_cb(ordo_op *op, void *ud) {
  many_ctx *m = ud;
  if (ordo_op_status(op) == ORDO_OK && ordo_op_result(op) != NULL)
    atomic_fetch_add(&m->ok, 1);
  else
    SUPPORT_CHECK(!"a concurrent request failed");
  support_latch_count_down(&m->done);
}

static void test_many_concurrent(void **state) {
  env *e = *state;
  fake_script(&e->f, 0, FAKE_ANSWER, 200, NULL, STATUS_OK_BODY);
  start(e);
  many_ctx *m = e->many = calloc(1, sizeof *m);
  assert_non_null(m);
  support_latch_init(&m->done, MANY);
  atomic_init(&m->ok, 0);
  ordo_op *ops[MANY];
  char ids[MANY][129];
  for (int i = 0; i < MANY; i++) {
    snprintf(ids[i], sizeof ids[i], "%0128x", i);
    const char *one[1] = {ids[i]};
    ops[i] = ordo_ledger_batch_statuses(e->c, one, 1, 0);
    assert_non_null(ops[i]);
    assert_int_equal(ordo_op_then(ops[i], many_cb, m), ORDO_OK);
  }
  support_latch_wait(&m->done);
  for (int i = 0; i < MANY; i++)
    ordo_op_release(ops[i]);
  assert_int_equal(atomic_load(&m->ok), MANY);
  assert_int_equal(fake_count(&e->f), MANY);
  /* Every id was asked for once. */
  static int seen[MANY];
  memset(seen, 0, sizeof seen);
  for (int i = 0; i < MANY; i++) {
    unsigned v = 0;
    assert_int_equal(sscanf(fake_at(&e->f, i)->target, "/batch_statuses?id=%x", &v), 1);
    assert_true(v < MANY);
    seen[v]++;
  }
  for (int i = 0; i < MANY; i++)
    assert_int_equal(seen[i], 1);
}

/* ------------------------------------------------------------------------ */
/* The parsers, without a network                                            */
/* ------------------------------------------------------------------------ */

#define LIT(s) s, sizeof(s) - 1

static void test_parse_error(void **state) {
  (void)state;
  char msg[64];
  int code = 0;
  assert_int_equal(ordo__ledger_parse_error(
                       400, LIT("{\"error\":{\"code\":42,\"title\":\"Wrong "
                                "Content Type\",\"message\":\"m\"}}"),
                       msg, sizeof msg, &code),
                   ORDO_OK);
  assert_int_equal(code, 42);
  assert_string_equal(msg, "400 code 42: Wrong Content Type: m");
  assert_int_equal(ordo__ledger_parse_error(502, LIT("<html>"), msg, sizeof msg,
                                            &code),
                   ORDO_E_LEDGER_RESPONSE);
  assert_int_equal(code, -1);
  assert_string_equal(msg, "502 (no Sawtooth error in the body)");
  assert_int_equal(ordo__ledger_parse_error(503, NULL, 0, msg, sizeof msg, &code),
                   ORDO_E_LEDGER_RESPONSE);
  /* Truncated to the buffer, NUL-terminated. */
  char small[12];
  ordo__ledger_parse_error(400, LIT("{\"error\":{\"code\":30,\"title\":\"a long "
                                    "title\"}}"),
                           small, sizeof small, &code);
  assert_int_equal(strlen(small), sizeof small - 1);
  /* Long server text is cut, control characters replaced. */
  char big[1024], body[2048];
  memset(big, 'x', 600);
  big[600] = '\0';
  snprintf(body, sizeof body, "{\"error\":{\"code\":1,\"message\":\"\\u0001%s\"}}",
           big);
  char out[1024];
  ordo__ledger_parse_error(400, body, strlen(body), out, sizeof out, &code);
  assert_true(strlen(out) < 300);
  assert_null(strchr(out, '\x01'));
}

static void test_parse_statuses_and_pages(void **state) {
  (void)state;
  json_t *o = NULL;
  const char *why = NULL;
  assert_int_equal(ordo__ledger_parse_statuses(LIT(STATUS_OK_BODY), &o, &why),
                   ORDO_OK);
  json_decref(o);
  assert_int_equal(ordo__ledger_parse_statuses(LIT("{\"data\":[1]}"), &o, &why),
                   ORDO_E_LEDGER_RESPONSE);
  assert_null(o);
  assert_non_null(why);
  assert_int_equal(ordo__ledger_parse_statuses(LIT("{\"data\":[{\"id\":\"a\","
                                                   "\"status\":\"INVALID\","
                                                   "\"invalid_transactions\":"
                                                   "{}}]}"),
                                               &o, &why),
                   ORDO_E_LEDGER_RESPONSE);
  assert_int_equal(ordo__ledger_parse_state(LIT("{\"data\":\"a=b=\"}"), &o, &why),
                   ORDO_E_LEDGER_RESPONSE);
  json_t *acc = json_array();
  char *next = NULL;
  assert_int_equal(ordo__ledger_parse_state_page(
                       LIT("{\"data\":[],\"paging\":{\"next\":\"http://h/state?"
                           "a=1 2\"}}"),
                       acc, &next, &why),
                   ORDO_E_LEDGER_RESPONSE);
  assert_null(next);
  assert_int_equal(ordo__ledger_parse_state_page(
                       LIT("{\"data\":[],\"paging\":{\"next\":\"http://h/p/state?"
                           "address=ab&start=cd\"}}"),
                       acc, &next, &why),
                   ORDO_OK);
  assert_string_equal(next, "address=ab&start=cd");
  free(next);
  assert_int_equal(ordo__ledger_parse_state_page(LIT("{\"data\":[],\"paging\":{}}"),
                                                 acc, &next, &why),
                   ORDO_OK);
  assert_null(next);
  json_decref(acc);
  assert_int_equal(ordo__ledger_parse_link(LIT("{\"link\":5}"), &o, &why),
                   ORDO_E_LEDGER_RESPONSE);
  assert_int_equal(ordo__ledger_parse_blocks(LIT("{\"data\":[[]]}"), &o, &why),
                   ORDO_E_LEDGER_RESPONSE);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_submit_body_and_headers, setup, teardown),
      cmocka_unit_test_setup_teardown(test_port_typed_statuses, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_statuses_get_and_post, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bad_arguments, setup, teardown),
      cmocka_unit_test_setup_teardown(test_retry_503_then_202, setup, teardown),
      cmocka_unit_test_setup_teardown(test_retry_429_twice_then_200, setup, teardown),
      cmocka_unit_test_setup_teardown(test_retries_stop_at_the_limit, setup, teardown),
      cmocka_unit_test_setup_teardown(test_busy_after_retries, setup, teardown),
      cmocka_unit_test_setup_teardown(test_400_other_and_413, setup, teardown),
      cmocka_unit_test_setup_teardown(test_400_not_retried, setup, teardown),
      cmocka_unit_test_setup_teardown(test_auth_refused_and_other_status, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_connection_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(test_closed_without_answer_is_retried, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_malformed_bodies, setup, teardown),
      cmocka_unit_test_setup_teardown(test_response_too_large, setup, teardown),
      cmocka_unit_test_setup_teardown(test_state_get, setup, teardown),
      cmocka_unit_test_setup_teardown(test_state_list_pages, setup, teardown),
      cmocka_unit_test_setup_teardown(test_state_list_next_elsewhere_refused, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_blocks, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cancel_in_flight, setup, teardown),
      cmocka_unit_test_setup_teardown(test_timeout_is_retried_then_reported, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_free_cancels_in_flight, setup, teardown),
      cmocka_unit_test_setup_teardown(test_ctx_free_cancels_in_flight, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_https_to_plain_server, setup, teardown),
      cmocka_unit_test_setup_teardown(test_host_name_resolved, setup, teardown),
      cmocka_unit_test_setup_teardown(test_many_concurrent, setup, teardown),
      cmocka_unit_test_setup_teardown(test_many_concurrent, setup_net4, teardown),
      cmocka_unit_test_setup_teardown(test_cancel_in_flight, setup_net4, teardown),
      cmocka_unit_test_setup_teardown(test_retry_429_twice_then_200, setup_net4,
                                      teardown),
      cmocka_unit_test(test_parse_error),
      cmocka_unit_test(test_parse_statuses_and_pages),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

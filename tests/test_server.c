/*
 * test_server.c — `ordo serve` in-process: the embedded node and the server
 * on ephemeral loopback ports, talked to over real HTTP (libcurl's easy
 * API, in one helper), plus the socket-free handler and the config parser.
 *
 * Covered: auth (401 without or with a wrong token, /healthz open), bad
 * JSON and bad items (400 naming the index, nothing enqueued), duplicates
 * (409), body limit (413), rate limit (429 with Retry-After), unknown
 * batch and path (404), wrong method (405), enqueue of signed ordo-rw
 * batches until COMMITTED through the node, a raw BatchList, services and
 * resume under on_invalid=halt, wallets, DIDs, sign and verify, a
 * credential-definition job, /metrics, the refusal of a non-loopback bind
 * without a token and of a world-readable token file; locks from the signed
 * batch (inputs and outputs, never narrowed by declared reads and writes),
 * one signed batch under two ids refused (409 naming the first),
 * "transactions" items signed with the operator's key file, and hostile
 * clients (half-open and trickling connections closed by the header
 * timeout, the per-address cap, 413 and 401 answered before the body).
 *
 * Every wait is bounded: polls give up after a deadline, so a broken server
 * fails a test instead of hanging it.
 */
#include "ordo.h"
#include "ledger/ledger.h"
#include "node/node.h"
#include "server/server.h"
#include "storage/storage.h"
#include "support/support.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* cmocka.h needs these first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#define TOKEN "test-token-0123456789"
#define RAW_KEY                                                               \
  "{\"key\":\"0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20\"," \
  "\"key_derivation_method\":\"raw\"}"

/* ------------------------------------------------------------------------ */
/* Helpers                                                                   */
/* ------------------------------------------------------------------------ */

static unsigned long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (unsigned long long)ts.tv_sec * 1000 +
         (unsigned long long)ts.tv_nsec / 1000000;
}

static void sleep_ms(unsigned ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static char *tmpdir(void) { return support_tmpdir("ordo-test-server"); }

/* An answer: status, body, Retry-After and Content-Type (support.h). */
typedef support_http_answer answer;

/*
 * One HTTP request to 127.0.0.1:port. token NULL: no Authorization;
 * ctype NULL: application/json; header: one more header line or NULL.
 * Bounded by a 30 s timeout. a->status is -1 when curl fails.
 */
static void http_raw(int port, const char *method, const char *target,
                     const char *token, const char *ctype, const char *header,
                     const void *body, size_t len, answer *a) {
  char url[4096], type[512], auth[512];
  const char *headers[4] = {type, NULL, NULL, NULL};
  size_t n = 1;

  snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, target);
  snprintf(type, sizeof type, "Content-Type: %s",
           ctype != NULL ? ctype : "application/json");
  if (token != NULL) {
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
    headers[n++] = auth;
  }
  if (header != NULL)
    headers[n++] = header;
  support_http(method, url, headers, body, len, 30000L, a);
}

/* A request with the token and a JSON body (or none); the status, and the
 * answer parsed as JSON in *out when out is not NULL. */
static long call(int port, const char *method, const char *target,
                 const char *json, json_t **out) {
  answer a;
  http_raw(port, method, target, TOKEN, NULL, NULL, json,
           json != NULL ? strlen(json) : 0, &a);
  if (a.status < 0)
    fail_msg("%s %s: no answer", method, target);
  if (out != NULL) {
    json_error_t e;
    *out = json_loads(a.body, 0, &e);
    if (*out == NULL)
      fail_msg("%s %s: not JSON: %s", method, target, a.body);
  }
  free(a.body);
  return a.status;
}

/* The error object's name and message of an answer (borrowed from j). */
static const char *err_name(json_t *j) {
  return json_string_value(
      json_object_get(json_object_get(j, "error"), "name"));
}
static const char *err_msg(json_t *j) {
  const char *m = json_string_value(
      json_object_get(json_object_get(j, "error"), "message"));
  return m != NULL ? m : "";
}

/* ---- signed payloads ---------------------------------------------------- */

static ordo_ledger_signer *g_signer;
static ordo_ledger_conv *g_conv;

/* An ordo-rw batch for id reading r and writing w (either may be NULL);
 * invalid: a payload the family refuses. *b is the caller's. */
static void build(const char *id, const char *svc, const char *r,
                  const char *w, int invalid, ordo_ledger_built *b) {
  char *reads[1] = {(char *)r}, *writes[1] = {(char *)w};
  ordo_workload_batch wb;
  memset(&wb, 0, sizeof wb);
  wb.id = (char *)id;
  wb.service = (char *)svc;
  wb.reads = r != NULL ? reads : NULL;
  wb.nreads = r != NULL;
  wb.writes = w != NULL ? writes : NULL;
  wb.nwrites = w != NULL;
  wb.invalid = invalid;
  wb.line = 1;
  if (ordo_ledger_conv_batch(g_conv, &wb, b) != ORDO_OK)
    fail_msg("conv: %s", ordo_last_error_message());
}

static char *b64(const void *p, size_t n) {
  size_t len = sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL);
  char *s = malloc(len);
  assert_non_null(s);
  sodium_bin2base64(s, len, p, n, sodium_base64_VARIANT_ORIGINAL);
  return s;
}

/* A JSON item (a new object) for a built batch. */
static json_t *item(const char *id, const char *svc, const char *r,
                    const char *w, int invalid) {
  ordo_ledger_built b;
  json_t *o, *reads = json_array(), *writes = json_array();
  char *p;
  size_t i;
  build(id, svc, r, w, invalid, &b);
  for (i = 0; i < b.nreads; i++)
    json_array_append_new(reads, json_string(b.reads[i]));
  for (i = 0; i < b.nwrites; i++)
    json_array_append_new(writes, json_string(b.writes[i]));
  p = b64(b.batchlist, b.batchlist_len);
  o = json_pack("{s:s,s:s,s:o,s:o,s:s}", "id", id, "service", svc, "reads",
                reads, "writes", writes, "payload", p);
  free(p);
  ordo_ledger_built_clear(&b);
  assert_non_null(o);
  return o;
}

static char *dump(json_t *j) {
  char *s = json_dumps(j, JSON_COMPACT);
  json_decref(j);
  assert_non_null(s);
  return s;
}

/* ---- the fixture: a node and a server ----------------------------------- */

typedef struct fixture {
  char *node_dir, *srv_dir;
  ordo_node *node;
  ordo_server *srv;
  int port;
} fixture;

static fixture F;

static int group_setup(void **state) {
  ordo_node_options no;
  ordo_server_options so;
  char url[64];
  (void)state;
  if (sodium_init() < 0)
    return -1;
  curl_global_init(CURL_GLOBAL_DEFAULT);
  if (ordo_ledger_signer_new(NULL, &g_signer) != ORDO_OK ||
      ordo_ledger_conv_new(ORDO_LEDGER_FAMILY_RW, g_signer, &g_conv) != ORDO_OK)
    return -1;
  F.node_dir = tmpdir();
  F.srv_dir = tmpdir();
  ordo_node_options_init(&no);
  no.data_dir = F.node_dir;
  no.port = 0;
  no.block_ms = 20;
  if (ordo_node_start(&no, &F.node) != ORDO_OK) {
    fprintf(stderr, "node: %s\n", ordo_last_error_message());
    return -1;
  }
  snprintf(url, sizeof url, "http://127.0.0.1:%d", ordo_node_port(F.node));
  ordo_server_options_init(&so);
  so.port = 0;
  so.data_dir = F.srv_dir;
  so.ledger_url = url;
  so.token = TOKEN;
  so.max_body_bytes = 256 * 1024;
  so.poll_ms = 10;
  so.services_json = "{\"halting\":{\"on_invalid\":\"halt\"}}";
  if (ordo_server_start(&so, &F.srv) != ORDO_OK) {
    fprintf(stderr, "server: %s\n", ordo_last_error_message());
    return -1;
  }
  F.port = ordo_server_port(F.srv);
  return F.port > 0 ? 0 : -1;
}

static int group_teardown(void **state) {
  (void)state;
  if (ordo_server_stop(F.srv) != ORDO_OK)
    fprintf(stderr, "server stop: %s\n", ordo_last_error_message());
  ordo_node_stop(F.node);
  support_rmdir_all(F.srv_dir);
  support_rmdir_all(F.node_dir);
  ordo_ledger_conv_free(g_conv);
  ordo_ledger_signer_free(g_signer);
  curl_global_cleanup();
  return 0;
}

/* Poll GET /v1/batches/{id} until its state is want (or 20 s pass). */
static void wait_state(const char *id, const char *want) {
  char target[512];
  unsigned long long deadline = now_ms() + 20000;
  const char *st = NULL;
  json_t *j = NULL;
  snprintf(target, sizeof target, "/v1/batches/%s", id);
  while (now_ms() < deadline) {
    json_decref(j);
    assert_int_equal(call(F.port, "GET", target, NULL, &j), 200);
    st = json_string_value(json_object_get(j, "state"));
    if (st != NULL && strcmp(st, want) == 0)
      break;
    sleep_ms(20);
  }
  if (st == NULL || strcmp(st, want) != 0)
    fail_msg("batch %s: state %s, want %s", id, st != NULL ? st : "?", want);
  json_decref(j);
}

/* ------------------------------------------------------------------------ */
/* Tests                                                                     */
/* ------------------------------------------------------------------------ */

static void test_auth(void **state) {
  answer a;
  json_t *j;
  (void)state;
  http_raw(F.port, "GET", "/v1/queue", NULL, NULL, NULL, NULL, 0, &a);
  assert_int_equal(a.status, 401);
  assert_non_null(strstr(a.body, "\"name\":\"ORDO_E_INVAL\""));
  assert_null(strstr(a.body, TOKEN));
  free(a.body);
  http_raw(F.port, "GET", "/v1/queue", "wrong-token", NULL, NULL, NULL, 0, &a);
  assert_int_equal(a.status, 401);
  free(a.body);
  /* A prefix of the token is wrong too. */
  http_raw(F.port, "GET", "/v1/queue", "test-token", NULL, NULL, NULL, 0, &a);
  assert_int_equal(a.status, 401);
  free(a.body);
  /* A POST with a body is answered 401 as well (from the headers). */
  http_raw(F.port, "POST", "/v1/batches", NULL, NULL, NULL, "[]", 2, &a);
  assert_int_equal(a.status, 401);
  free(a.body);
  http_raw(F.port, "GET", "/healthz", NULL, NULL, NULL, NULL, 0, &a);
  assert_int_equal(a.status, 200);
  j = json_loads(a.body, 0, NULL);
  assert_true(json_is_true(json_object_get(j, "ok")));
  assert_true(json_is_true(json_object_get(j, "ledger")));
  json_decref(j);
  free(a.body);
  assert_int_equal(call(F.port, "GET", "/v1/queue", NULL, &j), 200);
  assert_true(json_is_integer(json_object_get(j, "committed")));
  json_decref(j);
}

static void test_bad_requests(void **state) {
  json_t *j, *arr;
  char *body;
  (void)state;
  /* Not JSON. */
  assert_int_equal(call(F.port, "POST", "/v1/batches", "{\"id\":", &j), 400);
  assert_string_equal(err_name(j), "ORDO_E_JSON");
  assert_int_equal(json_integer_value(json_object_get(
                       json_object_get(j, "error"), "code")),
                   ORDO_E_JSON);
  json_decref(j);
  /* A good item then a bad one: 400 naming index 1, nothing enqueued. */
  arr = json_pack("[o,{s:s,s:s,s:i}]", item("bad-0", "s1", "k1", "k1", 0),
                  "id", "bad-1", "service", "s1", "reads", 5);
  body = dump(arr);
  assert_int_equal(call(F.port, "POST", "/v1/batches", body, &j), 400);
  assert_non_null(strstr(err_msg(j), "item 1"));
  assert_non_null(strstr(err_msg(j), "reads"));
  json_decref(j);
  free(body);
  assert_int_equal(call(F.port, "GET", "/v1/batches/bad-0", NULL, &j), 404);
  json_decref(j);
  /* Unknown key, payload not base64, payload not a BatchList. */
  assert_int_equal(call(F.port, "POST", "/v1/batches",
                        "{\"id\":\"x\",\"service\":\"s\",\"nope\":1}", &j),
                   400);
  assert_non_null(strstr(err_msg(j), "item 0"));
  json_decref(j);
  assert_int_equal(call(F.port, "POST", "/v1/batches",
                        "{\"id\":\"x\",\"payload\":\"!!!\"}", &j), 400);
  assert_non_null(strstr(err_msg(j), "base64"));
  json_decref(j);
  assert_int_equal(call(F.port, "POST", "/v1/batches",
                        "{\"id\":\"x\",\"payload\":\"AAAA\"}", &j), 400);
  assert_non_null(strstr(err_msg(j), "payload"));
  json_decref(j);
  /* With a ledger a payload is required. */
  assert_int_equal(call(F.port, "POST", "/v1/batches",
                        "{\"id\":\"x\",\"service\":\"s\"}", &j), 400);
  json_decref(j);
  assert_int_equal(call(F.port, "POST", "/v1/batches", "[]", &j), 400);
  json_decref(j);
  assert_int_equal(call(F.port, "GET", "/v1/batches/x", NULL, &j), 404);
  assert_string_equal(err_name(j), "ORDO_E_NOT_FOUND");
  json_decref(j);
  /* Unknown path, wrong method. */
  assert_int_equal(call(F.port, "GET", "/v2/nothing", NULL, &j), 404);
  json_decref(j);
  assert_int_equal(call(F.port, "GET", "/v1/batches", NULL, &j), 405);
  json_decref(j);
  assert_int_equal(call(F.port, "DELETE", "/v1/queue", NULL, &j), 405);
  json_decref(j);
  assert_int_equal(call(F.port, "GET", "/v1/services/never-seen", NULL, &j),
                   404);
  json_decref(j);
}

static void test_duplicate_and_limits(void **state) {
  json_t *j;
  char *body, *big;
  answer a;
  (void)state;
  body = dump(item("dup-1", "s2", NULL, "kd", 0));
  assert_int_equal(call(F.port, "POST", "/v1/batches", body, &j), 202);
  json_decref(j);
  /* The same again (a retry): 200, "already enqueued". */
  assert_int_equal(call(F.port, "POST", "/v1/batches", body, &j), 200);
  assert_string_equal(
      json_string_value(json_object_get(
          json_array_get(json_object_get(j, "batches"), 0), "result")),
      "already enqueued");
  json_decref(j);
  free(body);
  /* Another batch under that id: 409. */
  body = dump(item("dup-1", "s2", NULL, "kx", 0));
  assert_int_equal(call(F.port, "POST", "/v1/batches", body, &j), 409);
  assert_string_equal(err_name(j), "ORDO_E_EXISTS");
  json_decref(j);
  free(body);
  /* Two items with one id in one request. */
  body = dump(json_pack("[o,o]", item("dup-2", "s2", NULL, "ke", 0),
                        item("dup-2", "s2", NULL, "ke", 0)));
  assert_int_equal(call(F.port, "POST", "/v1/batches", body, &j), 409);
  assert_non_null(strstr(err_msg(j), "item 1"));
  json_decref(j);
  free(body);
  assert_int_equal(call(F.port, "GET", "/v1/batches/dup-2", NULL, &j), 404);
  json_decref(j);
  /* Over max_body_bytes (256 KiB): 413 from the Content-Length. */
  big = malloc(300 * 1024);
  assert_non_null(big);
  memset(big, ' ', 300 * 1024);
  http_raw(F.port, "POST", "/v1/batches", TOKEN, NULL, NULL, big, 300 * 1024,
           &a);
  assert_int_equal(a.status, 413);
  free(a.body);
  free(big);
  wait_state("dup-1", "COMMITTED");
}

static void test_enqueue_commit(void **state) {
  json_t *arr = json_array(), *j, *b;
  char *body, id[32];
  size_t i;
  json_int_t last = 0;
  (void)state;
  /* Five batches of one service, each read-modify-writing one key. */
  for (i = 0; i < 5; i++) {
    snprintf(id, sizeof id, "c-%zu", i);
    json_array_append_new(arr, item(id, "chain", "kc", "kc", 0));
  }
  body = dump(arr);
  assert_int_equal(call(F.port, "POST", "/v1/batches", body, &j), 202);
  free(body);
  b = json_object_get(j, "batches");
  assert_int_equal(json_array_size(b), 5);
  for (i = 0; i < 5; i++) {
    json_t *e = json_array_get(b, i);
    snprintf(id, sizeof id, "c-%zu", i);
    assert_string_equal(json_string_value(json_object_get(e, "id")), id);
    assert_true(json_integer_value(json_object_get(e, "seq")) > last);
    last = json_integer_value(json_object_get(e, "seq"));
  }
  json_decref(j);
  for (i = 0; i < 5; i++) {
    snprintf(id, sizeof id, "c-%zu", i);
    wait_state(id, "COMMITTED");
  }
  assert_int_equal(call(F.port, "GET", "/v1/batches/c-0", NULL, &j), 200);
  assert_int_equal(strlen(json_string_value(json_object_get(j, "ledger_id"))),
                   128);
  json_decref(j);
  assert_int_equal(call(F.port, "GET", "/v1/services/chain", NULL, &j), 200);
  assert_int_equal(json_integer_value(json_object_get(j, "committed")), 5);
  assert_int_equal(json_integer_value(json_object_get(j, "depth")), 0);
  json_decref(j);
}

static void test_raw_batchlist(void **state) {
  ordo_ledger_built b[3];
  ordo_ledger_batchlist *bl[3];
  const ordo_ledger_batch *batches[3];
  unsigned char *list;
  size_t len, i;
  char id[32];
  answer a;
  json_t *j, *arr;
  (void)state;
  for (i = 0; i < 3; i++) {
    snprintf(id, sizeof id, "raw-%zu", i);
    build(id, "ignored", "kr", "kr", 0, &b[i]);
    assert_int_equal(ordo_ledger_batchlist_decode(b[i].batchlist,
                                                  b[i].batchlist_len, &bl[i]),
                     ORDO_OK);
    batches[i] = ordo_ledger_batchlist_batch(bl[i], 0);
  }
  assert_int_equal(ordo_ledger_batchlist_encode(batches, 3, &list, &len),
                   ORDO_OK);
  http_raw(F.port, "POST", "/v1/batches", TOKEN, "application/octet-stream",
           "X-Ordo-Service: rawsvc", list, len, &a);
  assert_int_equal(a.status, 202);
  j = json_loads(a.body, 0, NULL);
  free(a.body);
  arr = json_object_get(j, "batches");
  assert_int_equal(json_array_size(arr), 3);
  for (i = 0; i < 3; i++)
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(arr, i), "id")),
        b[i].batch_id);
  json_decref(j);
  /* The same list again: 409, nothing new. */
  http_raw(F.port, "POST", "/v1/batches?service=other", TOKEN,
           "application/octet-stream", NULL, list, len, &a);
  assert_int_equal(a.status, 409);
  free(a.body);
  /* Not a BatchList. */
  http_raw(F.port, "POST", "/v1/batches", TOKEN, "application/octet-stream",
           NULL, "\xff\xff\xff", 3, &a);
  assert_int_equal(a.status, 400);
  assert_non_null(strstr(a.body, "ORDO_E_LEDGER_DECODE"));
  free(a.body);
  for (i = 0; i < 3; i++)
    wait_state(b[i].batch_id, "COMMITTED");
  assert_int_equal(call(F.port, "GET", "/v1/services/rawsvc", NULL, &j), 200);
  assert_int_equal(json_integer_value(json_object_get(j, "committed")), 3);
  json_decref(j);
  free(list);
  for (i = 0; i < 3; i++) {
    ordo_ledger_batchlist_free(bl[i]);
    ordo_ledger_built_clear(&b[i]);
  }
}

static void test_services_resume(void **state) {
  json_t *j;
  char *body;
  unsigned long long deadline;
  int halted = 0;
  (void)state;
  /* "halting" has on_invalid=halt (services_json): an invalid batch stops
   * it, the next one waits until resume. */
  body = dump(json_pack("[o,o]", item("h-0", "halting", NULL, "kh", 1),
                        item("h-1", "halting", NULL, "kh", 0)));
  assert_int_equal(call(F.port, "POST", "/v1/batches", body, &j), 202);
  json_decref(j);
  free(body);
  wait_state("h-0", "INVALID");
  deadline = now_ms() + 10000;
  while (!halted && now_ms() < deadline) {
    assert_int_equal(call(F.port, "GET", "/v1/services/halting", NULL, &j),
                     200);
    halted = json_is_true(json_object_get(j, "halted"));
    json_decref(j);
    if (!halted)
      sleep_ms(20);
  }
  assert_true(halted);
  /* A batch of another service enqueued after the halt commits: the
   * submitter has taken what was ready since, and h-1 was not among it. */
  body = dump(json_pack("[o]", item("h-probe", "halt-probe", NULL, "kp", 0)));
  assert_int_equal(call(F.port, "POST", "/v1/batches", body, &j), 202);
  json_decref(j);
  free(body);
  wait_state("h-probe", "COMMITTED");
  assert_int_equal(call(F.port, "GET", "/v1/batches/h-1", NULL, &j), 200);
  assert_string_equal(json_string_value(json_object_get(j, "state")),
                      "QUEUED");
  json_decref(j);
  assert_int_equal(call(F.port, "POST", "/v1/services/halting/resume", NULL,
                        &j), 200);
  assert_false(json_is_true(json_object_get(j, "halted")));
  json_decref(j);
  assert_int_equal(call(F.port, "POST", "/v1/services/halting/resume", NULL,
                        &j), 409);
  assert_string_equal(err_name(j), "ORDO_E_STATE");
  json_decref(j);
  wait_state("h-1", "COMMITTED");
  assert_int_equal(call(F.port, "POST", "/v1/services/nobody/resume", NULL,
                        &j), 404);
  json_decref(j);
  assert_int_equal(call(F.port, "GET", "/v1/services/halting/resume", NULL,
                        &j), 405);
  json_decref(j);
}

static void test_wallets(void **state) {
  json_t *j;
  char body[1024], *did = NULL, *verkey = NULL, *sig = NULL;
  (void)state;
  snprintf(body, sizeof body,
           "{\"config\":{\"id\":\"alice\"},\"credentials\":%s}", RAW_KEY);
  assert_int_equal(call(F.port, "POST", "/v1/wallets", body, &j), 201);
  json_decref(j);
  assert_int_equal(call(F.port, "POST", "/v1/wallets", body, &j), 409);
  json_decref(j);
  /* A client may not choose where the wallet goes. */
  assert_int_equal(call(F.port, "POST", "/v1/wallets",
                        "{\"config\":{\"id\":\"bob\",\"path\":\"/tmp\"},"
                        "\"credentials\":{\"key\":\"x\"}}", &j), 400);
  json_decref(j);
  /* Wrong key: 403, and the key is not echoed. */
  assert_int_equal(
      call(F.port, "POST", "/v1/wallets/alice/open",
           "{\"credentials\":{\"key\":\"ff02030405060708090a0b0c0d0e0f1011121"
           "31415161718191a1b1c1d1e1f20\",\"key_derivation_method\":\"raw\"}}",
           &j), 403);
  assert_null(strstr(err_msg(j), "ff0203"));
  json_decref(j);
  /* Malformed JSON around a secret: the message names no text. */
  assert_int_equal(call(F.port, "POST", "/v1/wallets/alice/open",
                        "{\"credentials\":{\"key\":\"hunter2\" x}}", &j), 400);
  assert_null(strstr(err_msg(j), "hunter2"));
  json_decref(j);
  snprintf(body, sizeof body, "{\"credentials\":%s}", RAW_KEY);
  assert_int_equal(call(F.port, "POST", "/v1/wallets/alice/open", body, &j),
                   200);
  json_decref(j);
  assert_int_equal(call(F.port, "POST", "/v1/wallets/alice/dids",
                        "{\"seed\":\"000000000000000000000000Steward1\"}", &j),
                   201);
  did = strdup(json_string_value(json_object_get(j, "did")));
  verkey = strdup(json_string_value(json_object_get(j, "verkey")));
  json_decref(j);
  assert_true(strlen(did) > 10);
  snprintf(body, sizeof body, "{\"verkey\":\"%s\",\"message\":\"aGVsbG8=\"}",
           verkey);
  assert_int_equal(call(F.port, "POST", "/v1/wallets/alice/sign", body, &j),
                   200);
  sig = strdup(json_string_value(json_object_get(j, "signature")));
  json_decref(j);
  snprintf(body, sizeof body,
           "{\"verkey\":\"%s\",\"message\":\"aGVsbG8=\",\"signature\":\"%s\"}",
           verkey, sig);
  assert_int_equal(call(F.port, "POST", "/v1/verify", body, &j), 200);
  assert_true(json_is_true(json_object_get(j, "valid")));
  json_decref(j);
  snprintf(body, sizeof body,
           "{\"verkey\":\"%s\",\"message\":\"aGVsbG9v\",\"signature\":\"%s\"}",
           verkey, sig);
  assert_int_equal(call(F.port, "POST", "/v1/verify", body, &j), 200);
  assert_false(json_is_true(json_object_get(j, "valid")));
  json_decref(j);
  /* Sign with a key the wallet does not have; a wallet not open. */
  assert_int_equal(call(F.port, "POST", "/v1/wallets/alice/sign",
                        "{\"verkey\":\"GJ1SzoWzavQYfNL9XkaJdrQejfztN4XqdsiV4ct"
                        "3LXKL\",\"message\":\"aGVsbG8=\"}", &j), 404);
  json_decref(j);
  assert_int_equal(call(F.port, "POST", "/v1/wallets/nobody/dids", "{}", &j),
                   409);
  json_decref(j);
  free(did);
  free(verkey);
  free(sig);
}

static void test_cred_def_job(void **state) {
  json_t *j;
  char target[128], *job;
  const char *st = NULL;
  unsigned long long deadline;
  (void)state;
  /* The wallet from test_wallets is open. */
  assert_int_equal(call(F.port, "POST", "/v1/wallets/alice/cred-defs",
                        "{\"attributes\":[\"name\",\"age\"],\"bits\":256}",
                        &j), 202);
  job = strdup(json_string_value(json_object_get(j, "job")));
  json_decref(j);
  snprintf(target, sizeof target, "/v1/jobs/%s", job);
  deadline = now_ms() + 120000;
  j = NULL;
  while (now_ms() < deadline) {
    json_decref(j);
    assert_int_equal(call(F.port, "GET", target, NULL, &j), 200);
    st = json_string_value(json_object_get(j, "state"));
    if (st != NULL && strcmp(st, "running") != 0)
      break;
    sleep_ms(50);
  }
  assert_non_null(st);
  assert_string_equal(st, "done");
  assert_non_null(json_object_get(json_object_get(json_object_get(j, "result"),
                                                  "public_key"), "n"));
  json_decref(j);
  free(job);
  assert_int_equal(call(F.port, "GET", "/v1/jobs/0123", NULL, &j), 404);
  json_decref(j);
  /* A job on a wallet that is not open fails, as a job. */
  assert_int_equal(call(F.port, "POST", "/v1/wallets/nobody/cred-defs",
                        "{\"attributes\":[\"a\"],\"bits\":256}", &j), 202);
  job = strdup(json_string_value(json_object_get(j, "job")));
  json_decref(j);
  snprintf(target, sizeof target, "/v1/jobs/%s", job);
  deadline = now_ms() + 20000;
  j = NULL;
  while (now_ms() < deadline) {
    json_decref(j);
    assert_int_equal(call(F.port, "GET", target, NULL, &j), 200);
    st = json_string_value(json_object_get(j, "state"));
    if (st != NULL && strcmp(st, "running") != 0)
      break;
    sleep_ms(20);
  }
  assert_string_equal(st, "failed");
  assert_non_null(json_object_get(json_object_get(j, "error"), "name"));
  json_decref(j);
  free(job);
}

/* A metric line: name{labels} value, labels key="value",... */
static int metric_line_ok(const char *l) {
  const char *p = l;
  char *end;
  if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_'))
    return 0;
  while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
         (*p >= '0' && *p <= '9') || *p == '_' || *p == ':')
    p++;
  if (*p == '{') {
    p++;
    while (*p != '}') {
      while ((*p >= 'a' && *p <= 'z') || *p == '_')
        p++;
      if (*p++ != '=' || *p++ != '"')
        return 0;
      while (*p != '"' && *p != '\0')
        p += *p == '\\' ? 2 : 1;
      if (*p++ != '"')
        return 0;
      if (*p == ',')
        p++;
      else if (*p != '}')
        return 0;
    }
    p++;
  }
  if (*p++ != ' ')
    return 0;
  if (strcmp(p, "+Inf") == 0 || strcmp(p, "NaN") == 0)
    return 1;
  strtod(p, &end);
  return end != p && *end == '\0';
}

static void test_metrics(void **state) {
  static const char *const names[] = {
      "ordo_executor_queue_depth{class=\"cheap\"}",
      "ordo_executor_busy_threads{class=\"heavy\"}",
      "ordo_executor_wait_seconds_bucket{class=\"cheap\",le=\"+Inf\"}",
      "ordo_executor_run_seconds_count{class=\"storage\"}",
      "ordo_executor_run_seconds_sum{class=\"storage\"}",
      "ordo_batches{state=\"committed\"}",
      "ordo_batches{state=\"queued\"}",
      "ordo_batches_submitted_total ",
      "ordo_batches_committed_total ",
      "ordo_service_in_flight{service=\"chain\"}",
      "ordo_journal_enqueue_seconds_bucket{le=\"+Inf\"}",
      "ordo_journal_enqueue_seconds_sum ",
      "ordo_journal_enqueue_seconds_count ",
      "ordo_http_requests_total{code=\"202\"}",
      "# TYPE ordo_journal_enqueue_seconds histogram"};
  answer a;
  char *line, *save = NULL;
  size_t i, lines = 0;
  (void)state;
  http_raw(F.port, "GET", "/metrics", NULL, NULL, NULL, NULL, 0, &a);
  assert_int_equal(a.status, 401);
  free(a.body);
  http_raw(F.port, "GET", "/metrics", TOKEN, NULL, NULL, NULL, 0, &a);
  assert_int_equal(a.status, 200);
  assert_non_null(strstr(a.content_type, "text/plain"));
  assert_non_null(strstr(a.content_type, "version=0.0.4"));
  for (i = 0; i < sizeof names / sizeof names[0]; i++)
    if (strstr(a.body, names[i]) == NULL)
      fail_msg("metric %s missing", names[i]);
  for (line = strtok_r(a.body, "\n", &save); line != NULL;
       line = strtok_r(NULL, "\n", &save), lines++) {
    if (strncmp(line, "# HELP ", 7) == 0 || strncmp(line, "# TYPE ", 7) == 0)
      continue;
    if (!metric_line_ok(line))
      fail_msg("bad metric line: '%s'", line);
  }
  assert_true(lines > 50);
  free(a.body);
}

static void test_handler(void **state) {
  ordo_server_request r;
  ordo_server_response resp;
  (void)state;
  memset(&r, 0, sizeof r);
  r.method = "GET";
  r.path = "/healthz";
  assert_int_equal(ordo_server_handle(F.srv, &r, &resp), ORDO_OK);
  assert_int_equal(resp.status, 200);
  assert_non_null(strstr(resp.body, "\"ok\":true"));
  ordo_server_response_clear(&resp);
  r.path = "/v1/queue";
  assert_int_equal(ordo_server_handle(F.srv, &r, &resp), ORDO_OK);
  assert_int_equal(resp.status, 401);
  ordo_server_response_clear(&resp);
  r.authorization = "Bearer " TOKEN;
  assert_int_equal(ordo_server_handle(F.srv, &r, &resp), ORDO_OK);
  assert_int_equal(resp.status, 200);
  ordo_server_response_clear(&resp);
  r.method = "PUT";
  assert_int_equal(ordo_server_handle(F.srv, &r, &resp), ORDO_OK);
  assert_int_equal(resp.status, 405);
  assert_string_equal(resp.allow, "GET");
  ordo_server_response_clear(&resp);
  assert_int_equal(ordo_server_handle(F.srv, NULL, &resp), ORDO_E_INVAL);
}

/* A server with no ledger and a low rate limit. */
static void test_rate_limit(void **state) {
  ordo_server_options o;
  ordo_server *s = NULL;
  ordo_server_request r;
  ordo_server_response resp;
  char *dir = tmpdir();
  answer a;
  int i, port, got429 = 0;
  (void)state;
  ordo_server_options_init(&o);
  o.port = 0;
  o.data_dir = dir;
  o.rate_limit_per_s = 0.5;
  o.rate_limit_burst = 3;
  assert_int_equal(ordo_server_start(&o, &s), ORDO_OK);
  port = ordo_server_port(s);
  for (i = 0; i < 6 && !got429; i++) {
    http_raw(port, "GET", "/v1/queue", NULL, NULL, NULL, NULL, 0, &a);
    if (a.status == 429) {
      got429 = 1;
      assert_true(atoi(a.retry_after) >= 1);
      assert_non_null(strstr(a.body, "ORDO_E_BUSY"));
    } else {
      assert_int_equal(a.status, 200);
    }
    free(a.body);
  }
  assert_true(got429);
  assert_true(i >= 4); /* the burst of 3 went through */
  /* /healthz is never limited; another client has its own bucket. */
  http_raw(port, "GET", "/healthz", NULL, NULL, NULL, NULL, 0, &a);
  assert_int_equal(a.status, 200);
  free(a.body);
  memset(&r, 0, sizeof r);
  r.method = "GET";
  r.path = "/v1/queue";
  r.client = "10.1.2.3";
  assert_int_equal(ordo_server_handle(s, &r, &resp), ORDO_OK);
  assert_int_equal(resp.status, 200);
  ordo_server_response_clear(&resp);
  /* Without a ledger a payload is optional. */
  r.method = "POST";
  r.path = "/v1/batches";
  r.body = "{\"id\":\"p\",\"service\":\"s\",\"writes\":[\"a\"]}";
  r.body_len = strlen(r.body);
  assert_int_equal(ordo_server_handle(s, &r, &resp), ORDO_OK);
  assert_int_equal(resp.status, 202);
  assert_non_null(strstr(resp.body, "\"seq\":1"));
  ordo_server_response_clear(&resp);
  assert_int_equal(ordo_server_stop(s), ORDO_OK);
  support_rmdir_all(dir);
}

/* /metrics names every service the journal has, those only restored from
 * it after a restart included. */
static void test_metrics_restored_services(void **state) {
  ordo_server_options o;
  ordo_server *s = NULL;
  ordo_server_request r;
  ordo_server_response resp;
  char *dir = tmpdir();
  (void)state;
  ordo_server_options_init(&o);
  o.port = -1; /* no HTTP: ordo_server_handle only */
  o.data_dir = dir;
  assert_int_equal(ordo_server_start(&o, &s), ORDO_OK);
  memset(&r, 0, sizeof r);
  r.method = "POST";
  r.path = "/v1/batches";
  r.body = "[{\"id\":\"r1\",\"service\":\"restored\",\"writes\":[\"a\"]},"
           "{\"id\":\"r2\",\"service\":\"restored\",\"writes\":[\"a\"]}]";
  r.body_len = strlen(r.body);
  assert_int_equal(ordo_server_handle(s, &r, &resp), ORDO_OK);
  assert_int_equal(resp.status, 202);
  ordo_server_response_clear(&resp);
  assert_int_equal(ordo_server_stop(s), ORDO_OK);

  s = NULL;
  assert_int_equal(ordo_server_start(&o, &s), ORDO_OK);
  memset(&r, 0, sizeof r);
  r.method = "GET";
  r.path = "/metrics";
  assert_int_equal(ordo_server_handle(s, &r, &resp), ORDO_OK);
  assert_int_equal(resp.status, 200);
  assert_non_null(strstr(resp.body,
                         "ordo_service_depth{service=\"restored\"} 2"));
  ordo_server_response_clear(&resp);
  assert_int_equal(ordo_server_stop(s), ORDO_OK);
  support_rmdir_all(dir);
}

static void test_refusals(void **state) {
  ordo_server_options o;
  ordo_server *s = NULL;
  char *dir = tmpdir(), tok[512];
  FILE *f;
  (void)state;
  ordo_server_options_init(&o);
  o.port = 0;
  o.data_dir = dir;
  o.bind = "0.0.0.0";
  assert_int_equal(ordo_server_start(&o, &s), ORDO_E_INVAL);
  assert_null(s);
  assert_non_null(strstr(ordo_last_error_message(), "token"));
  o.bind = "10.0.0.1";
  assert_int_equal(ordo_server_start(&o, &s), ORDO_E_INVAL);
  o.bind = "localhost"; /* not a literal */
  assert_int_equal(ordo_server_start(&o, &s), ORDO_E_INVAL);
  /* A world-readable token file. */
  snprintf(tok, sizeof tok, "%s/token", dir);
  f = fopen(tok, "w");
  assert_non_null(f);
  fputs("sekrit\n", f);
  fclose(f);
  assert_int_equal(chmod(tok, 0644), 0);
  o.bind = NULL;
  o.token_file = tok;
  assert_int_equal(ordo_server_start(&o, &s), ORDO_E_INVAL);
  assert_non_null(strstr(ordo_last_error_message(), "world-readable"));
  assert_null(strstr(ordo_last_error_message(), "sekrit"));
  /* 0600: it starts, and the file's token (newline stripped) works. */
  assert_int_equal(chmod(tok, 0600), 0);
  o.port = -1;
  assert_int_equal(ordo_server_start(&o, &s), ORDO_OK);
  {
    ordo_server_request r;
    ordo_server_response resp;
    memset(&r, 0, sizeof r);
    r.method = "GET";
    r.path = "/v1/queue";
    r.authorization = "Bearer sekrit";
    assert_int_equal(ordo_server_handle(s, &r, &resp), ORDO_OK);
    assert_int_equal(resp.status, 200);
    ordo_server_response_clear(&resp);
    r.authorization = "Bearer sekrit\n";
    assert_int_equal(ordo_server_handle(s, &r, &resp), ORDO_OK);
    assert_int_equal(resp.status, 401);
    ordo_server_response_clear(&resp);
  }
  assert_int_equal(ordo_server_port(s), -1);
  assert_int_equal(ordo_server_stop(s), ORDO_OK);
  support_rmdir_all(dir);
}

static void test_config(void **state) {
  ordo_server_options o;
  (void)state;
  ordo_server_options_init(&o);
  assert_int_equal(ordo_server_options_from_json(&o, "{\"port\":"),
                   ORDO_E_JSON);
  assert_int_equal(ordo_server_options_from_json(&o, "{\"nope\":1}"),
                   ORDO_E_CONFIG);
  assert_non_null(strstr(ordo_last_error_message(), "nope"));
  assert_int_equal(ordo_server_options_from_json(&o, "{\"port\":70000}"),
                   ORDO_E_CONFIG);
  assert_int_equal(ordo_server_options_from_json(&o, "{\"strategy\":\"x\"}"),
                   ORDO_E_CONFIG);
  assert_int_equal(ordo_server_options_from_json(
                       &o, "{\"services\":{\"a\":{\"on_invalid\":\"stop\"}}}"),
                   ORDO_E_CONFIG);
  assert_int_equal(ordo_server_options_from_json(
                       &o, "{\"runtime\":{\"cheap_threads\":0}}"),
                   ORDO_E_CONFIG);
  assert_int_equal(o.port, 8080); /* unchanged by the failures */
  assert_int_equal(
      ordo_server_options_from_json(
          &o, "{\"port\":0,\"bind\":\"::1\",\"data_dir\":\"/tmp/x\","
              "\"ledger_url\":\"http://127.0.0.1:1\",\"strategy\":\"serial\","
              "\"mode\":\"rounds\",\"granularity\":6,\"max_in_flight\":10,"
              "\"service_max_in_flight\":2,\"max_body_bytes\":1000,"
              "\"max_items\":5,\"rate_limit_per_s\":2.5,"
              "\"rate_limit_burst\":4,\"poll_ms\":5,\"max_per_submit\":50,"
              "\"request_timeout_ms\":1000,\"max_jobs\":3,"
              "\"connection_limit\":9,\"shutdown_grace_ms\":0,"
              "\"token_file\":\"/tmp/t\","
              "\"services\":{\"a\":{\"on_invalid\":\"halt\","
              "\"max_in_flight\":1}},\"runtime\":{\"cheap_threads\":3}}"),
      ORDO_OK);
  assert_int_equal(o.port, 0);
  assert_string_equal(o.bind, "::1");
  assert_string_equal(o.data_dir, "/tmp/x");
  assert_int_equal(o.queue.strategy, ORDO_QUEUE_SERIAL);
  assert_int_equal(o.queue.mode, ORDO_QUEUE_ROUNDS);
  assert_int_equal(o.queue.granularity, 6);
  assert_int_equal(o.max_body_bytes, 1000);
  assert_true(o.rate_limit_per_s == 2.5);
  assert_int_equal(o.runtime.cheap_threads, 3);
  assert_non_null(strstr(o.services_json, "halt"));
  /* A second config on top keeps the first one's strings alive. */
  assert_int_equal(ordo_server_options_from_json(&o, "{\"port\":1}"), ORDO_OK);
  assert_string_equal(o.bind, "::1");
  assert_int_equal(o.port, 1);
  ordo_server_options_clear(&o);
  assert_int_equal(ordo_server_options_from_file(&o, "/nonexistent/x.json"),
                   ORDO_E_IO);
}

/* ---- locks from the signed batch; the operator's signing key ------------ */

/* One request to s without sockets: the status, and the answer parsed as
 * JSON into *out when out is not NULL. */
static int handle(ordo_server *s, const char *method, const char *path,
                  const char *ctype, const void *body, size_t len,
                  json_t **out) {
  ordo_server_request r;
  ordo_server_response resp;
  int status;
  memset(&r, 0, sizeof r);
  r.method = method;
  r.path = path;
  r.content_type = ctype;
  r.body = body;
  r.body_len = len;
  assert_int_equal(ordo_server_handle(s, &r, &resp), ORDO_OK);
  status = resp.status;
  if (out != NULL) {
    *out = json_loadb(resp.body, resp.body_len, 0, NULL);
    if (*out == NULL)
      fail_msg("%s %s: not JSON: %s", method, path, resp.body);
  }
  ordo_server_response_clear(&resp);
  return status;
}

static int handle_json(ordo_server *s, const char *method, const char *path,
                       const char *json, json_t **out) {
  return handle(s, method, path, NULL, json, json != NULL ? strlen(json) : 0,
                out);
}

/* A batch's state and what it waits on (a new string), by GET. */
static const char *batch_state(ordo_server *s, const char *id, char *explain,
                               size_t cap) {
  static char st[32];
  char path[300];
  json_t *j;
  snprintf(path, sizeof path, "/v1/batches/%s", id);
  assert_int_equal(handle_json(s, "GET", path, NULL, &j), 200);
  snprintf(st, sizeof st, "%s", json_string_value(json_object_get(j, "state")));
  if (explain != NULL)
    snprintf(explain, cap, "%s",
             json_string_value(json_object_get(j, "explain")) != NULL
                 ? json_string_value(json_object_get(j, "explain"))
                 : "");
  json_decref(j);
  return st;
}

/* An item of a built batch that declares nothing: {"id","service","payload"}
 * (plus "reads"/"writes" when given, as JSON arrays). */
static char *bare_item(const char *id, const ordo_ledger_built *b,
                       const char *extra) {
  char *p = b64(b->batchlist, b->batchlist_len), *s;
  size_t n = strlen(p) + strlen(id) + 200 + (extra ? strlen(extra) : 0);
  s = malloc(n);
  assert_non_null(s);
  snprintf(s, n, "{\"id\":\"%s\",\"service\":\"fp\",\"payload\":\"%s\"%s%s}",
           id, p, extra != NULL ? "," : "", extra != NULL ? extra : "");
  free(p);
  return s;
}

/* A server without a ledger takes nothing, so what waits on what stays to
 * be seen: items that declare no reads or writes are locked by their signed
 * batches' inputs and outputs; a narrower declaration narrows nothing; one
 * signed batch under a second id is refused, naming the first, on the JSON
 * and the octet-stream paths; "transactions" needs a signing key. */
static void test_locks_from_signed_batch(void **state) {
  ordo_server_options o;
  ordo_server *s = NULL;
  ordo_ledger_built b1, b2, b3, b4;
  char *dir = tmpdir(), *body, *i1, *i2, explain[512];
  json_t *j;
  (void)state;
  ordo_server_options_init(&o);
  o.port = -1;
  o.data_dir = dir;
  assert_int_equal(ordo_server_start(&o, &s), ORDO_OK);
  build("F1", "fp", NULL, "kf", 0, &b1);
  build("F2", "fp", NULL, "kf", 0, &b2);
  build("F3", "fp", NULL, "kf", 0, &b3);
  build("F4", "fp", "other", "elsewhere", 0, &b4);
  /* Two batches writing kf, neither saying so: the second waits. */
  i1 = bare_item("F1", &b1, NULL);
  i2 = bare_item("F2", &b2, NULL);
  body = malloc(strlen(i1) + strlen(i2) + 4);
  assert_non_null(body);
  sprintf(body, "[%s,%s]", i1, i2);
  assert_int_equal(handle_json(s, "POST", "/v1/batches", body, &j), 202);
  json_decref(j);
  free(body);
  free(i1);
  free(i2);
  assert_string_equal(batch_state(s, "F1", NULL, 0), "QUEUED");
  assert_string_equal(batch_state(s, "F2", explain, sizeof explain),
                      "WAITING");
  assert_non_null(strstr(explain, "F1"));
  assert_int_equal(handle_json(s, "GET", "/v1/batches/F1", NULL, &j), 200);
  assert_string_equal(json_string_value(json_object_get(j, "ledger_id")),
                      b1.batch_id);
  json_decref(j);
  /* Declared narrower (reads one unrelated address, writes nothing): the
   * batch still writes kf, so it waits; F4 touches other addresses only. */
  body = bare_item("F3", &b3, "\"reads\":[\"unrelated\"],\"writes\":[]");
  assert_int_equal(handle_json(s, "POST", "/v1/batches", body, &j), 202);
  json_decref(j);
  free(body);
  assert_string_equal(batch_state(s, "F3", explain, sizeof explain),
                      "WAITING");
  assert_non_null(strstr(explain, "F2"));
  body = bare_item("F4", &b4, NULL);
  assert_int_equal(handle_json(s, "POST", "/v1/batches", body, &j), 202);
  json_decref(j);
  free(body);
  assert_string_equal(batch_state(s, "F4", NULL, 0), "QUEUED");
  /* F1's signed batch again as F9: 409 naming F1, nothing enqueued. */
  body = bare_item("F9", &b1, NULL);
  assert_int_equal(handle_json(s, "POST", "/v1/batches", body, &j), 409);
  assert_string_equal(err_name(j), "ORDO_E_EXISTS");
  assert_non_null(strstr(err_msg(j), "already queued as F1"));
  json_decref(j);
  assert_int_equal(handle_json(s, "GET", "/v1/batches/F9", NULL, &j), 404);
  json_decref(j);
  free(body);
  /* Twice in one request under two new ids. */
  ordo_ledger_built_clear(&b4);
  build("F5", "fp", NULL, "k5", 0, &b4);
  i1 = bare_item("F5", &b4, NULL);
  i2 = bare_item("F6", &b4, NULL);
  body = malloc(strlen(i1) + strlen(i2) + 4);
  assert_non_null(body);
  sprintf(body, "[%s,%s]", i1, i2);
  assert_int_equal(handle_json(s, "POST", "/v1/batches", body, &j), 409);
  assert_non_null(strstr(err_msg(j), "item 1"));
  assert_non_null(strstr(err_msg(j), "F5"));
  json_decref(j);
  assert_int_equal(handle_json(s, "GET", "/v1/batches/F5", NULL, &j), 404);
  json_decref(j);
  free(body);
  free(i1);
  free(i2);
  /* The octet-stream path: F2's BatchList, 409 naming F2. */
  assert_int_equal(handle(s, "POST", "/v1/batches", "application/octet-stream",
                          b2.batchlist, b2.batchlist_len, &j),
                   409);
  assert_string_equal(err_name(j), "ORDO_E_EXISTS");
  assert_non_null(strstr(err_msg(j), "already queued as F2"));
  json_decref(j);
  /* Without a signing key, "transactions" is refused. */
  assert_int_equal(
      handle_json(s, "POST", "/v1/batches",
                  "{\"id\":\"T\",\"transactions\":[{\"family_name\":\"f\","
                  "\"family_version\":\"1\",\"inputs\":[],\"outputs\":[],"
                  "\"payload\":\"\"}]}",
                  &j),
      400);
  assert_non_null(strstr(err_msg(j), "signing"));
  json_decref(j);
  assert_int_equal(handle_json(s, "GET", "/v1/queue", NULL, &j), 200);
  assert_null(json_object_get(j, "signer_public_key"));
  json_decref(j);
  ordo_ledger_built_clear(&b1);
  ordo_ledger_built_clear(&b2);
  ordo_ledger_built_clear(&b3);
  ordo_ledger_built_clear(&b4);
  assert_int_equal(ordo_server_stop(s), ORDO_OK);
  support_rmdir_all(dir);
}

/* A "transactions" item for key ks: one ordo-rw txn writing it. */
static char *txns_item(const char *id, const char *key, const char *extra) {
  char addr[ORDO_LEDGER_ADDRESS_SIZE], *payload = NULL, *p, *s;
  const char *w[1] = {key};
  size_t n;
  assert_int_equal(ordo_ledger_rw_address(key, addr), ORDO_OK);
  assert_int_equal(ordo_ledger_rw_encode(NULL, 0, w, 1, &payload), ORDO_OK);
  p = b64(payload, strlen(payload));
  free(payload);
  n = strlen(p) + 600;
  s = malloc(n);
  assert_non_null(s);
  snprintf(s, n,
           "{\"id\":\"%s\",\"service\":\"signed\",\"transactions\":[{"
           "\"family_name\":\"ordo-rw\",\"family_version\":\"1.0\","
           "\"inputs\":[\"%s\"],\"outputs\":[\"%s\"],\"payload\":\"%s\"%s}]}",
           id, addr, addr, p, extra != NULL ? extra : "");
  free(p);
  return s;
}

/* The operator's key file: read at start (a world-readable or malformed
 * one refused without quoting it), its public key in /v1/queue, and
 * "transactions" items built into batches it signs, locked by their
 * outputs. The journaled batch's signer is the key file's. */
static void test_signing_key_file(void **state) {
  static const char hex[] =
      "2f1e7b7a130d7ba9da0068b3bb0ba1d79e7e77110302c9f746c3c2a63fe40088";
  ordo_server_options o;
  ordo_server *s = NULL;
  ordo_ledger_signer *want = NULL;
  ordo_ctx *ctx;
  ordo_journal *jn = NULL;
  ordo_journal_options jo;
  ordo_queue_item qi;
  ordo_ledger_batchlist *bl = NULL;
  const ordo_ledger_batch *batch;
  ordo_ledger_txn_header th;
  char *dir = tmpdir(), key[512], cfg[700], jpath[600], *body, lid[200];
  FILE *f;
  json_t *j;
  (void)state;
  assert_int_equal(ordo_ledger_signer_new(hex, &want), ORDO_OK);
  snprintf(key, sizeof key, "%s/key.priv", dir);
  f = fopen(key, "w");
  assert_non_null(f);
  fprintf(f, "%s\n", hex);
  fclose(f);
  ordo_server_options_init(&o);
  /* World-readable: refused, by the call and by the config key, and the
   * message never quotes the key. */
  assert_int_equal(chmod(key, 0644), 0);
  assert_int_equal(ordo_server_options_signing_key_file(&o, key),
                   ORDO_E_INVAL);
  assert_non_null(strstr(ordo_last_error_message(), "world-readable"));
  assert_null(strstr(ordo_last_error_message(), "2f1e7b7a"));
  snprintf(cfg, sizeof cfg, "{\"signing_key_file\":\"%s\"}", key);
  assert_int_equal(ordo_server_options_from_json(&o, cfg), ORDO_E_CONFIG);
  assert_non_null(strstr(ordo_last_error_message(), "signing_key_file"));
  assert_non_null(strstr(ordo_last_error_message(), "world-readable"));
  assert_null(o.signer);
  /* Not a key: refused, content unquoted. */
  assert_int_equal(chmod(key, 0600), 0);
  f = fopen(key, "w");
  fputs("zzzz-secret-zzzz\n", f);
  fclose(f);
  assert_int_equal(ordo_server_options_signing_key_file(&o, key),
                   ORDO_E_BAD_KEY);
  assert_non_null(strstr(ordo_last_error_message(), key));
  assert_null(strstr(ordo_last_error_message(), "zzzz"));
  f = fopen(key, "w");
  fprintf(f, "%s\nmore\n", hex);
  fclose(f);
  assert_int_equal(ordo_server_options_signing_key_file(&o, key),
                   ORDO_E_BAD_KEY);
  assert_null(strstr(ordo_last_error_message(), "2f1e7b7a"));
  /* The key file as sawtooth keygen writes it (blanks after allowed). */
  f = fopen(key, "w");
  fprintf(f, "%s \n\n", hex);
  fclose(f);
  assert_int_equal(ordo_server_options_from_json(&o, cfg), ORDO_OK);
  assert_non_null(o.signer);
  assert_string_equal(ordo_ledger_signer_public_key(o.signer),
                      ordo_ledger_signer_public_key(want));
  o.port = -1;
  o.data_dir = dir;
  assert_int_equal(ordo_server_start(&o, &s), ORDO_OK);
  assert_int_equal(handle_json(s, "GET", "/v1/queue", NULL, &j), 200);
  assert_string_equal(
      json_string_value(json_object_get(j, "signer_public_key")),
      ordo_ledger_signer_public_key(want));
  json_decref(j);
  /* Signed here; a second one writing the same key waits on the first. */
  body = txns_item("S1", "ks", NULL);
  assert_int_equal(handle_json(s, "POST", "/v1/batches", body, &j), 202);
  json_decref(j);
  free(body);
  body = txns_item("S2", "ks", NULL);
  assert_int_equal(handle_json(s, "POST", "/v1/batches", body, &j), 202);
  json_decref(j);
  free(body);
  assert_string_equal(batch_state(s, "S1", NULL, 0), "QUEUED");
  assert_string_equal(batch_state(s, "S2", NULL, 0), "WAITING");
  assert_int_equal(handle_json(s, "GET", "/v1/batches/S1", NULL, &j), 200);
  snprintf(lid, sizeof lid, "%s",
           json_string_value(json_object_get(j, "ledger_id")));
  assert_int_equal(strlen(lid), 128);
  json_decref(j);
  /* Bad transactions items: 400 naming the problem, nothing enqueued. */
  body = txns_item("S3", "ks", ",\"color\":1");
  assert_int_equal(handle_json(s, "POST", "/v1/batches", body, &j), 400);
  assert_non_null(strstr(err_msg(j), "color"));
  json_decref(j);
  free(body);
  assert_int_equal(
      handle_json(s, "POST", "/v1/batches",
                  "{\"id\":\"S4\",\"transactions\":[{\"family_name\":\"f\","
                  "\"family_version\":\"1\",\"payload\":\"\"}]}",
                  &j),
      400);
  assert_non_null(strstr(err_msg(j), "inputs"));
  json_decref(j);
  assert_int_equal(
      handle_json(s, "POST", "/v1/batches",
                  "{\"id\":\"S5\",\"payload\":\"AAAA\",\"transactions\":[]}",
                  &j),
      400);
  assert_non_null(strstr(err_msg(j), "not both"));
  json_decref(j);
  assert_int_equal(handle_json(s, "POST", "/v1/batches",
                               "{\"id\":\"S6\",\"transactions\":[]}", &j),
                   400);
  json_decref(j);
  assert_int_equal(handle_json(s, "GET", "/v1/batches/S3", NULL, &j), 404);
  json_decref(j);
  assert_int_equal(ordo_server_stop(s), ORDO_OK);
  ordo_server_options_clear(&o);
  assert_null(o.signer);

  /* The journaled batch: signed by the key file's key, batch and txn. */
  ctx = ordo_ctx_new(NULL);
  assert_non_null(ctx);
  ordo_journal_options_init(&jo);
  snprintf(jpath, sizeof jpath, "%s/queue.db", dir);
  assert_int_equal(ordo_journal_open(ctx, jpath, &jo, &jn), ORDO_OK);
  assert_int_equal(ordo_journal_item(jn, "S1", &qi), ORDO_OK);
  assert_string_equal(qi.ledger_id, lid);
  assert_int_equal(ordo_ledger_batchlist_decode(qi.payload, qi.payload_len,
                                                &bl),
                   ORDO_OK);
  assert_int_equal(ordo_ledger_batchlist_validate(bl), ORDO_OK);
  batch = ordo_ledger_batchlist_batch(bl, 0);
  assert_string_equal(ordo_ledger_batch_id(batch), lid);
  assert_string_equal(ordo_ledger_batch_signer(batch),
                      ordo_ledger_signer_public_key(want));
  ordo_ledger_txn_header_get(ordo_ledger_batch_txn(batch, 0), &th);
  assert_string_equal(th.signer_public_key,
                      ordo_ledger_signer_public_key(want));
  assert_string_equal(th.family_name, "ordo-rw");
  ordo_ledger_batchlist_free(bl);
  assert_int_equal(ordo_journal_close(jn), ORDO_OK);
  ordo_ctx_free(ctx);
  ordo_ledger_signer_free(want);
  support_rmdir_all(dir);
}

/* A ledger that cannot be reached: an idle server finds out by its probe;
 * /readyz 503 with the cause and since when, /healthz still 200 (the
 * process is alive), /v1/queue's last_error names the cause of the last
 * failed call (a submit once there is one), /metrics counts them. */
static void test_ledger_down(void **state) {
  ordo_server_options o;
  ordo_server *s = NULL;
  char *dir = tmpdir(), *body;
  json_t *j = NULL, *led, *le;
  answer a;
  int port, ready = 200;
  const char *msg = "";
  (void)state;
  ordo_server_options_init(&o);
  o.port = 0;
  o.data_dir = dir;
  o.token = TOKEN;
  o.ledger_url = "http://127.0.0.1:1"; /* nothing listens there */
  o.ledger_probe_ms = 50;
  assert_int_equal(ordo_server_start(&o, &s), ORDO_OK);
  port = ordo_server_port(s);
  /* Nothing enqueued: the probe finds the ledger down (the client's
   * retries take about a second). */
  for (int i = 0; i < 500 && ready != 503; i++) {
    http_raw(port, "GET", "/readyz", NULL, NULL, NULL, NULL, 0, &a);
    ready = (int)a.status;
    if (ready == 503) {
      j = json_loads(a.body, 0, NULL);
    } else {
      assert_int_equal(a.status, 200);
      sleep_ms(20);
    }
    free(a.body);
  }
  assert_int_equal(ready, 503);
  assert_non_null(j);
  assert_false(json_is_true(json_object_get(j, "ready")));
  led = json_object_get(j, "ledger");
  assert_false(json_is_true(json_object_get(led, "reachable")));
  assert_non_null(json_string_value(json_object_get(led, "down_since")));
  le = json_object_get(led, "last_error");
  assert_string_equal(json_string_value(json_object_get(le, "cause")),
                      "connect");
  assert_string_equal(json_string_value(json_object_get(le, "name")),
                      "ORDO_E_LEDGER_CONNECT");
  assert_non_null(strstr(json_string_value(json_object_get(le, "message")),
                         "GET /blocks"));
  json_decref(j);
  j = NULL;
  /* Alive all the same. */
  http_raw(port, "GET", "/healthz", NULL, NULL, NULL, NULL, 0, &a);
  assert_int_equal(a.status, 200);
  free(a.body);
  /* A batch: its submit fails the same way, and says so. */
  body = dump(json_pack("[o]", item("down-1", "s", NULL, "k1", 0)));
  assert_int_equal(call(port, "POST", "/v1/batches", body, NULL), 202);
  free(body);
  for (int i = 0; i < 500 && strstr(msg, "POST /batches") == NULL; i++) {
    json_decref(j);
    assert_int_equal(call(port, "GET", "/v1/queue", NULL, &j), 200);
    le = json_object_get(json_object_get(j, "submitter"), "last_error");
    msg = json_string_value(json_object_get(le, "message"));
    if (msg == NULL)
      msg = "";
    if (strstr(msg, "POST /batches") == NULL)
      sleep_ms(20);
  }
  assert_non_null(strstr(msg, "POST /batches"));
  assert_string_equal(json_string_value(json_object_get(le, "cause")),
                      "connect");
  assert_non_null(json_string_value(json_object_get(le, "time")));
  json_decref(j);
  http_raw(port, "GET", "/metrics", TOKEN, NULL, NULL, NULL, 0, &a);
  assert_int_equal(a.status, 200);
  assert_non_null(strstr(a.body, "ordo_ledger_up 0\n"));
  assert_null(strstr(a.body, "ordo_ledger_errors_total{cause=\"connect\"} 0\n"));
  assert_non_null(strstr(a.body, "ordo_ledger_errors_total{cause=\"connect\"} "));
  free(a.body);
  assert_int_equal(ordo_server_stop(s), ORDO_OK);
  support_rmdir_all(dir);
}

/* Poll GET /v1/batches/{id} on port until it is final; its state. */
static char *final_state(int port, const char *id, char **reason) {
  char target[512];
  unsigned long long deadline = now_ms() + 30000;
  char *out = NULL;
  snprintf(target, sizeof target, "/v1/batches/%s", id);
  *reason = NULL;
  while (out == NULL && now_ms() < deadline) {
    json_t *j = NULL;
    assert_int_equal(call(port, "GET", target, NULL, &j), 200);
    const char *st = json_string_value(json_object_get(j, "state"));
    if (st != NULL && (strcmp(st, "COMMITTED") == 0 ||
                       strcmp(st, "INVALID") == 0)) {
      out = strdup(st);
      const char *r = json_string_value(json_object_get(j, "reason"));
      *reason = r != NULL ? strdup(r) : NULL;
    } else {
      sleep_ms(20);
    }
    json_decref(j);
  }
  if (out == NULL)
    fail_msg("batch %s never final", id);
  return out;
}

/* A permissioned ledger refuses lists with a bad batch (400 code 30, not
 * saying which) and bodies over its limit (413): the server splits until
 * each refused batch stands alone; exactly those end INVALID and every
 * other batch commits. */
static void run_refusals(double refuse_rate, size_t node_max_body,
                         int nitems) {
  ordo_node_options no;
  ordo_server_options so;
  ordo_node *node = NULL;
  ordo_server *srv = NULL;
  ordo_node_stats st;
  char *ndir = tmpdir(), *sdir = tmpdir(), url[64], *body;
  char ids[64][16], sids[64][ORDO_LEDGER_ID_SIZE];
  json_t *arr = json_array();
  int port, nrefused = 0;

  assert_true(nitems <= 64);
  ordo_node_options_init(&no);
  no.data_dir = ndir;
  no.port = 0;
  no.block_ms = 20;
  no.seed = 5;
  no.refuse_rate = refuse_rate;
  if (node_max_body > 0)
    no.max_body_bytes = node_max_body;
  assert_int_equal(ordo_node_start(&no, &node), ORDO_OK);
  snprintf(url, sizeof url, "http://127.0.0.1:%d", ordo_node_port(node));
  ordo_server_options_init(&so);
  so.port = 0;
  so.data_dir = sdir;
  so.ledger_url = url;
  so.token = TOKEN;
  assert_int_equal(ordo_server_start(&so, &srv), ORDO_OK);
  port = ordo_server_port(srv);

  for (int i = 0; i < nitems; i++) {
    ordo_ledger_built b;
    char key[16], *p;
    snprintf(ids[i], sizeof ids[i], "rf-%d", i);
    snprintf(key, sizeof key, "rk%d", i);
    build(ids[i], "refusals", NULL, key, 0, &b);
    snprintf(sids[i], sizeof sids[i], "%s", b.batch_id);
    p = b64(b.batchlist, b.batchlist_len);
    json_array_append_new(arr, json_pack("{s:s,s:s,s:s}", "id", ids[i],
                                         "service", "refusals", "payload", p));
    free(p);
    ordo_ledger_built_clear(&b);
    nrefused += ordo_node_would_refuse(node, sids[i]);
  }
  body = dump(arr);
  assert_int_equal(call(port, "POST", "/v1/batches", body, NULL), 202);
  free(body);
  for (int i = 0; i < nitems; i++) {
    char *why = NULL, *state = final_state(port, ids[i], &why);
    if (ordo_node_would_refuse(node, sids[i])) {
      assert_string_equal(state, "INVALID");
      assert_non_null(why);
      assert_non_null(strstr(why, "400 code 30"));
    } else {
      assert_string_equal(state, "COMMITTED");
    }
    free(state);
    free(why);
  }
  assert_int_equal(ordo_node_get_stats(node, &st), ORDO_OK);
  print_message("refusals (rate %.2f, node body cap %zu): %d of %d refused, "
                "%llu POST /batches\n", refuse_rate, node_max_body, nrefused,
                nitems, (unsigned long long)st.batches_posts);
  /* A refused batch costs at most 2 log2(n) + 1 calls; a 413 one per
   * halving. Loose bound: the split must not degenerate to a loop. */
  assert_true(st.batches_posts <= (uint64_t)(8 + nrefused * 14 + nitems));
  {
    json_t *j = NULL;
    assert_int_equal(call(port, "GET", "/v1/queue", NULL, &j), 200);
    json_t *sub = json_object_get(j, "submitter");
    assert_int_equal(json_integer_value(json_object_get(sub, "refused")),
                     nrefused);
    json_decref(j);
  }
  assert_int_equal(ordo_server_stop(srv), ORDO_OK);
  ordo_node_stop(node);
  support_rmdir_all(sdir);
  support_rmdir_all(ndir);
}

static void test_refused_batches_split(void **state) {
  (void)state;
  run_refusals(0.2, 0, 40);  /* 400 code 30 for lists with a bad batch */
  run_refusals(0.0, 4096, 30); /* 413: the lists are halved until they fit */
}

/* ------------------------------------------------------------------------ */
/* Hostile clients: raw sockets from chosen loopback addresses               */
/* ------------------------------------------------------------------------ */

/*
 * Hostile clients (issue 13): 300 half-open connections from 127.0.0.2
 * (over the per-address cap of 64) and a client trickling its headers from
 * 127.0.0.3, with a 1 s header timeout: every /healthz probe from
 * 127.0.0.1 is answered, the server closes the connections over the cap
 * at once, the others and the trickler at the header timeout. Then the
 * refusals decided by the headers come before any body byte: 413 for a
 * Content-Length over the limit (also instead of `100 Continue`) and 401
 * without a token, each followed by the server closing the connection.
 */
static void test_hostile_clients(void **state) {
  static const char probe[] = "GET /healthz HTTP/1.1\r\nHost: t\r\n"
                              "Connection: close\r\n\r\n";
  ordo_server_options o;
  ordo_server *s = NULL;
  char *dir = tmpdir();
  support_hc_result res;
  long long closed_ms;
  int port;
  (void)state;
  ordo_server_options_init(&o);
  assert_int_equal(o.connection_limit, 4096);
  assert_int_equal(o.connection_limit_per_ip, 64);
  assert_int_equal(o.header_timeout_ms, 10000);
  assert_int_equal(o.idle_timeout_ms, 30000);
  o.port = 0;
  o.data_dir = dir;
  o.token = TOKEN;
  o.header_timeout_ms = 1000;
  assert_int_equal(ordo_server_start(&o, &s), ORDO_OK);
  port = ordo_server_port(s);

  support_hc_run(port, probe, 3000, &res);
  assert_int_equal(res.half_open, SUPPORT_HC_HALF_OPEN);
  assert_int_equal(res.open_at_end, 0);
  assert_true(res.closed_late >= 1 && res.closed_late <= 64);
  assert_true(res.closed_early >= SUPPORT_HC_HALF_OPEN - 64);
  assert_true(res.first_late_ms >= 950); /* the 1 s timeout, not sooner */
  assert_true(res.trickle_closed_ms >= 900 && res.trickle_closed_ms <= 2500);
  assert_true(res.probes >= 10);
  assert_int_equal(res.probes_ok, res.probes);

  /* Refused from the headers, no body sent: answered at once, closed. */
  assert_int_equal(
      support_hc_request(port,
                 "POST /v1/batches HTTP/1.1\r\nHost: t\r\n"
                 "Authorization: Bearer " TOKEN "\r\n"
                 "Content-Type: application/json\r\n"
                 "Content-Length: 1000000000\r\n\r\n",
                 2000, &closed_ms),
      413);
  assert_true(closed_ms >= 0);
  assert_int_equal(
      support_hc_request(port,
                 "POST /v1/batches HTTP/1.1\r\nHost: t\r\n"
                 "Authorization: Bearer " TOKEN "\r\n"
                 "Content-Type: application/json\r\n"
                 "Expect: 100-continue\r\n"
                 "Content-Length: 1000000000\r\n\r\n",
                 2000, &closed_ms),
      413); /* not 100 */
  assert_true(closed_ms >= 0);
  assert_int_equal(
      support_hc_request(port,
                 "POST /v1/batches HTTP/1.1\r\nHost: t\r\n"
                 "Content-Type: application/json\r\n"
                 "Content-Length: 100\r\n\r\n",
                 2000, &closed_ms),
      401);
  assert_true(closed_ms >= 0);
  assert_int_equal(
      support_hc_request(port,
                 "POST /v1/batches HTTP/1.1\r\nHost: t\r\n"
                 "Authorization: Bearer wrong\r\n"
                 "Expect: 100-continue\r\n"
                 "Content-Type: application/json\r\n"
                 "Content-Length: 100\r\n\r\n",
                 2000, &closed_ms),
      401);
  assert_true(closed_ms >= 0);
  /* The server still answers. */
  assert_int_equal(support_hc_request(port, probe, 2000, NULL), 200);
  assert_int_equal(ordo_server_stop(s), ORDO_OK);
  support_rmdir_all(dir);
}

/* ---- out of memory ------------------------------------------------------ */

/* One request with jansson's allocations failing as set (the caller set
 * them): the status; the answer must be JSON. */
static int oom_request(ordo_server *s, const char *method, const char *path,
                       const char *body, long *failed) {
  ordo_server_request r;
  ordo_server_response resp;
  json_t *j;
  int status;
  memset(&r, 0, sizeof r);
  r.method = method;
  r.path = path;
  r.body = body;
  r.body_len = body != NULL ? strlen(body) : 0;
  assert_int_equal(ordo_server_handle(s, &r, &resp), ORDO_OK);
  *failed = support_jansson_failures();
  support_jansson_restore();
  status = resp.status;
  assert_non_null(resp.body);
  /* Where nothing failed the answer is JSON. (One failure inside
   * json_dumps can make jansson 2.14 drop an object key's quote and still
   * return the text: its bug, not asserted here.) */
  if (strcmp(path, "/metrics") != 0 && *failed == 0) {
    j = json_loadb(resp.body, resp.body_len, 0, NULL);
    if (j == NULL)
      fail_msg("%s %s: not JSON: %s", method, path, resp.body);
    json_decref(j);
  }
  ordo_server_response_clear(&resp);
  return status;
}

/* A new one-item body for POST /v1/batches (a fresh id each time). */
static const char *oom_body(char *body, size_t cap) {
  static long k;
  snprintf(body, cap,
           "[{\"id\":\"oom-%ld\",\"service\":\"oom\",\"writes\":[\"k%ld\"]}]",
           k, k % 7);
  k++;
  return body;
}

/* The handler when jansson runs out of memory at each allocation of a
 * request (and at a second one a few later, where the answer being built
 * for the first failure fails too): no crash, no double free (ASan), and
 * an error answer where the failure mattered. */
static void test_out_of_memory(void **state) {
  static const char *const gets[] = {"/v1/queue", "/readyz", "/healthz",
                                     "/metrics"};
  ordo_server_options o;
  ordo_server *s = NULL;
  char *dir = tmpdir(), body[160];
  long total, failed, a, b;
  int st;
  size_t g;
  (void)state;
  ordo_server_options_init(&o);
  o.port = -1;
  o.data_dir = dir;
  assert_int_equal(ordo_server_start(&o, &s), ORDO_OK);

  support_jansson_fail_after(-1);
  assert_int_equal(oom_request(s, "POST", "/v1/batches",
                               oom_body(body, sizeof body), &failed), 202);
  support_jansson_fail_after(-1);
  assert_int_equal(oom_request(s, "POST", "/v1/batches",
                               oom_body(body, sizeof body), &failed), 202);
  total = support_jansson_restore();
  assert_true(total > 0);
  for (a = 0; a <= total; a++) {
    for (b = a; b <= a + 8; b++) {
      oom_body(body, sizeof body);
      support_jansson_fail_at(a, b > a ? b : -1);
      st = oom_request(s, "POST", "/v1/batches", body, &failed);
      /* (A journal write that failed for memory fails the journal: later
       * requests get 500 too.) */
      if (st != 202 && st != 400 && st != 500 && st != 503)
        fail_msg("allocations %ld and %ld failing: %d", a, b, st);
    }
  }
  for (g = 0; g < sizeof gets / sizeof gets[0]; g++) {
    support_jansson_fail_after(-1);
    assert_int_equal(oom_request(s, "GET", gets[g], NULL, &failed), 200);
    total = support_jansson_restore();
    for (a = 0; a <= total; a++) {
      for (int sticky = 0; sticky < 2; sticky++) {
        if (sticky)
          support_jansson_fail_after(a);
        else
          support_jansson_fail_at(a, -1);
        st = oom_request(s, "GET", gets[g], NULL, &failed);
        if (st != 200 && st != 500 && st != 503)
          fail_msg("GET %s, allocation %ld failing: %d", gets[g], a, st);
      }
    }
  }
  /* The journal's first failure (memory) is what its close reports. */
  st = ordo_server_stop(s);
  assert_true(st == ORDO_OK || st == ORDO_E_NOMEM);
  support_rmdir_all(dir);
}

/* ---- cancel, idempotent enqueue, dep timeouts in the config ------------- */

/* The "result" of item i of a POST /v1/batches answer. */
static const char *item_result(json_t *j, size_t i) {
  return json_string_value(json_object_get(
      json_array_get(json_object_get(j, "batches"), i), "result"));
}

/* A journal-only server: DELETE ends a WAITING batch INVALID "cancelled"
 * and its dependant cascades; DELETE of a finished or unknown batch is
 * 409 / 404. A request sent again is safe: every item there already with
 * the same content -> 200 "already enqueued"; new and old mixed -> 202,
 * each item saying which; an item under an existing id with other
 * content -> 409 naming it, nothing of the request enqueued. The
 * services config takes dep_timeout_s. */
static void test_cancel_and_retry(void **state) {
  ordo_server_options o;
  ordo_server *s = NULL;
  char *dir = tmpdir(), explain[256];
  json_t *j;
  (void)state;
  ordo_server_options_init(&o);
  o.port = -1;
  o.data_dir = dir;
  o.services_json = "{\"c\":{\"dep_timeout_s\":30}}";
  assert_int_equal(ordo_server_start(&o, &s), ORDO_OK);

  assert_int_equal(
      handle_json(s, "POST", "/v1/batches",
                  "[{\"id\":\"W1\",\"service\":\"c\",\"writes\":[\"k\"],"
                  "\"deps\":[\"never\"]},{\"id\":\"W2\",\"service\":\"d\","
                  "\"deps\":[\"W1\"]},{\"id\":\"W3\",\"service\":\"c\","
                  "\"writes\":[\"k\"]}]",
                  &j),
      202);
  assert_string_equal(item_result(j, 0), "enqueued");
  json_decref(j);
  assert_string_equal(batch_state(s, "W1", NULL, 0), "WAITING");
  assert_string_equal(batch_state(s, "W3", explain, sizeof explain),
                      "WAITING");
  assert_int_equal(handle_json(s, "DELETE", "/v1/batches/W1", NULL, &j), 200);
  assert_string_equal(json_string_value(json_object_get(j, "state")),
                      "INVALID");
  assert_string_equal(json_string_value(json_object_get(j, "reason")),
                      "cancelled");
  json_decref(j);
  assert_string_equal(batch_state(s, "W2", NULL, 0), "INVALID");
  assert_string_equal(batch_state(s, "W3", NULL, 0), "QUEUED"); /* k free */
  assert_int_equal(handle_json(s, "DELETE", "/v1/batches/W1", NULL, &j), 409);
  assert_string_equal(err_name(j), "ORDO_E_STATE");
  assert_non_null(strstr(err_msg(j), "already INVALID"));
  json_decref(j);
  assert_int_equal(handle_json(s, "DELETE", "/v1/batches/nope", NULL, &j),
                   404);
  json_decref(j);
  assert_int_equal(handle_json(s, "PUT", "/v1/batches/W3", NULL, &j), 405);
  json_decref(j);

  /* Retries. */
  {
    static const char two[] =
        "[{\"id\":\"R1\",\"service\":\"r\",\"writes\":[\"a\"]},"
        "{\"id\":\"R2\",\"service\":\"r\",\"reads\":[\"a\"],\"deps\":[\"R1\"]}]";
    assert_int_equal(handle_json(s, "POST", "/v1/batches", two, &j), 202);
    json_decref(j);
    assert_int_equal(handle_json(s, "POST", "/v1/batches", two, &j), 200);
    assert_string_equal(item_result(j, 0), "already enqueued");
    assert_string_equal(item_result(j, 1), "already enqueued");
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(j, "batches"), 1),
                            "state")),
                        "WAITING");
    json_decref(j);
    assert_int_equal(
        handle_json(s, "POST", "/v1/batches",
                    "[{\"id\":\"R1\",\"service\":\"r\",\"writes\":[\"a\"]},"
                    "{\"id\":\"R3\",\"service\":\"r\"}]",
                    &j),
        202);
    assert_string_equal(item_result(j, 0), "already enqueued");
    assert_string_equal(item_result(j, 1), "enqueued");
    json_decref(j);
    assert_int_equal(
        handle_json(s, "POST", "/v1/batches",
                    "[{\"id\":\"R4\",\"service\":\"r\"},"
                    "{\"id\":\"R2\",\"service\":\"r\",\"reads\":[\"b\"]}]",
                    &j),
        409);
    assert_string_equal(err_name(j), "ORDO_E_EXISTS");
    assert_non_null(strstr(err_msg(j), "item 1"));
    assert_non_null(strstr(err_msg(j), "other content"));
    json_decref(j);
    assert_int_equal(handle_json(s, "GET", "/v1/batches/R4", NULL, &j), 404);
    json_decref(j);
  }
  assert_int_equal(ordo_server_stop(s), ORDO_OK);
  support_rmdir_all(dir);
  /* The config's services policy: dep_timeout_s, a number of seconds. */
  ordo_server_options_init(&o);
  assert_int_equal(ordo_server_options_from_json(
                       &o, "{\"services\":{\"s\":{\"dep_timeout_s\":2.5}}}"),
                   ORDO_OK);
  assert_int_equal(ordo_server_options_from_json(
                       &o, "{\"services\":{\"s\":{\"dep_timeout_s\":-1}}}"),
                   ORDO_E_CONFIG);
  assert_int_equal(ordo_server_options_from_json(
                       &o, "{\"services\":{\"s\":{\"dep_timeout_s\":\"1\"}}}"),
                   ORDO_E_CONFIG);
  ordo_server_options_clear(&o);
}

/* A batch at the ledger (SUBMITTED: the ledger is down, so no verdict
 * comes) cannot be cancelled: 409 saying why. */
static void test_cancel_submitted(void **state) {
  ordo_server_options o;
  ordo_server *s = NULL;
  char *dir = tmpdir(), *body;
  const char *st = "";
  json_t *j;
  (void)state;
  ordo_server_options_init(&o);
  o.port = -1;
  o.data_dir = dir;
  o.ledger_url = "http://127.0.0.1:1"; /* nothing listens there */
  assert_int_equal(ordo_server_start(&o, &s), ORDO_OK);
  body = dump(item("S1", "s", NULL, "ks", 0));
  assert_int_equal(handle_json(s, "POST", "/v1/batches", body, &j), 202);
  json_decref(j);
  free(body);
  for (int i = 0; i < 1000; i++) {
    st = batch_state(s, "S1", NULL, 0);
    if (strcmp(st, "SUBMITTED") == 0)
      break;
    sleep_ms(10);
  }
  assert_string_equal(st, "SUBMITTED");
  assert_int_equal(handle_json(s, "DELETE", "/v1/batches/S1", NULL, &j), 409);
  assert_string_equal(err_name(j), "ORDO_E_STATE");
  assert_non_null(strstr(err_msg(j), "verdict will come"));
  json_decref(j);
  assert_int_equal(ordo_server_stop(s), ORDO_OK);
  support_rmdir_all(dir);
}

/* The journal's quiet period after a write failure (journal.c) is for
 * callers with enqueues in flight; the test below retries at once. */
__attribute__((constructor)) static void journal_no_quiet(void) {
  setenv("ORDO_JOURNAL_QUIET_MS", "0", 1);
}

/* A journal that cannot write refuses enqueues with 503 and says why;
 * once the disk works again the next POST is taken and committed, with
 * no restart. */
static void test_journal_fault_503(void **state) {
  char spec[600], *body;
  json_t *j, *e;
  (void)state;
  snprintf(spec, sizeof spec, "sync:eio:path=%s", F.srv_dir);
  assert_int_equal(ordo_storage_fault_set_spec(spec), ORDO_OK);
  body = dump(json_pack("[o]", item("fault-1", "faults", "kf", "kf", 0)));
  assert_int_equal(call(F.port, "POST", "/v1/batches", body, &j), 503);
  free(body);
  e = json_object_get(j, "error");
  assert_string_equal(json_string_value(json_object_get(e, "name")),
                      "ORDO_E_STORAGE");
  assert_non_null(strstr(json_string_value(json_object_get(e, "message")),
                         "I/O error"));
  json_decref(j);
  ordo_storage_fault_clear();

  body = dump(json_pack("[o]", item("fault-2", "faults", "kf", "kf", 0)));
  assert_int_equal(call(F.port, "POST", "/v1/batches", body, &j), 202);
  free(body);
  json_decref(j);
  wait_state("fault-2", "COMMITTED");
  assert_int_equal(call(F.port, "GET", "/v1/batches/fault-1", NULL, &j), 404);
  json_decref(j);
}

/* A journal-only server runs no takes, which are what end batches whose
 * dep never came; a status read ends them first, so it answers as a server
 * with a ledger would. */
static void test_dep_timeout_without_ledger(void **state) {
  ordo_server_options o;
  ordo_server *s = NULL;
  char *dir = tmpdir(), explain[256];
  json_t *j;
  const char *st = "";
  (void)state;
  ordo_server_options_init(&o);
  o.port = -1;
  o.data_dir = dir;
  o.services_json = "{\"t\":{\"dep_timeout_s\":0.05}}";
  assert_int_equal(ordo_server_start(&o, &s), ORDO_OK);
  assert_int_equal(handle_json(s, "POST", "/v1/batches",
                               "[{\"id\":\"T1\",\"service\":\"t\","
                               "\"writes\":[\"k\"],\"deps\":[\"never\"]}]",
                               &j),
                   202);
  json_decref(j);
  for (int i = 0; i < 250 && strcmp(st, "INVALID") != 0; i++) {
    st = batch_state(s, "T1", explain, sizeof explain);
    if (strcmp(st, "INVALID") != 0) {
      assert_string_equal(st, "WAITING");
      sleep_ms(20);
    }
  }
  assert_string_equal(st, "INVALID");
  assert_int_equal(handle_json(s, "GET", "/v1/batches/T1", NULL, &j), 200);
  assert_non_null(strstr(json_string_value(json_object_get(j, "reason")),
                         "never"));
  json_decref(j);
  assert_int_equal(ordo_server_stop(s), ORDO_OK);
  support_rmdir_all(dir);
}

/* A request through ordo_server_handle with "path?query" split as the HTTP
 * server does; the answer's status, JSON in *out (when not NULL) and, for
 * the dashboard's files, the headers and content type. */
static int handle_q(ordo_server *s, const char *method, const char *target,
                    const char *token, const char *json, json_t **out,
                    char *ctype, size_t ctype_cap, char *csp, size_t csp_cap) {
  ordo_server_request r;
  ordo_server_response resp;
  char path[512], auth[128];
  const char *q = strchr(target, '?');
  int status;
  memset(&r, 0, sizeof r);
  snprintf(path, sizeof path, "%.*s",
           (int)(q != NULL ? (size_t)(q - target) : strlen(target)), target);
  r.method = method;
  r.path = path;
  r.query = q != NULL ? q + 1 : NULL;
  if (token != NULL) {
    snprintf(auth, sizeof auth, "Bearer %s", token);
    r.authorization = auth;
  }
  r.body = json;
  r.body_len = json != NULL ? strlen(json) : 0;
  assert_int_equal(ordo_server_handle(s, &r, &resp), ORDO_OK);
  status = resp.status;
  if (ctype != NULL)
    snprintf(ctype, ctype_cap, "%s",
             resp.content_type != NULL ? resp.content_type : "");
  if (csp != NULL) {
    csp[0] = '\0';
    for (const char *const *h = resp.headers; h != NULL && h[0]; h += 2)
      if (strcmp(h[0], "Content-Security-Policy") == 0)
        snprintf(csp, csp_cap, "%s", h[1]);
  }
  if (out != NULL) {
    *out = json_loadb(resp.body, resp.body_len, 0, NULL);
    if (*out == NULL)
      fail_msg("%s %s: not JSON: %.200s", method, target, resp.body);
  } else if (strncmp(path, "/ui", 3) == 0 && status == 200) {
    assert_true(resp.body_len > 100);
  }
  ordo_server_response_clear(&resp);
  return status;
}

#define DASH_TOKEN "dash-token-0123456789"

static int dash(ordo_server *s, const char *method, const char *target,
                const char *json, json_t **out) {
  return handle_q(s, method, target, DASH_TOKEN, json, out, NULL, 0, NULL, 0);
}

/* The names of a /v1/services page, comma-separated, into buf. */
static const char *page_names(json_t *j, char *buf, size_t cap) {
  size_t i, len = 0;
  json_t *row;
  buf[0] = '\0';
  json_array_foreach(json_object_get(j, "services"), i, row)
    len += (size_t)snprintf(buf + len, cap - len, "%s%s", i ? "," : "",
                            json_string_value(json_object_get(row, "name")));
  return buf;
}

static ordo_server *dash_server(const char *dir) {
  ordo_server_options o;
  ordo_server *s = NULL;
  ordo_server_options_init(&o);
  o.port = -1;
  o.data_dir = dir;
  o.token = DASH_TOKEN;
  assert_int_equal(ordo_server_start(&o, &s), ORDO_OK);
  return s;
}

/* The dashboard's files, its refresh, the services table (filter, sort,
 * paging), why a batch waits, and a halt by hand that survives a
 * restart: all through the handler, without a ledger. */
static void test_dashboard(void **state) {
  char *dir = tmpdir(), ctype[128], csp[512], names[2048], body[256];
  ordo_server *s = dash_server(dir);
  json_t *j, *w, *h;
  size_t posted = 0;
  (void)state;

  /* The page and its files: no token needed, strict CSP on each. */
  assert_int_equal(handle_q(s, "GET", "/ui", NULL, NULL, NULL, ctype,
                            sizeof ctype, csp, sizeof csp), 200);
  assert_non_null(strstr(ctype, "text/html"));
  assert_non_null(strstr(csp, "default-src 'none'"));
  assert_non_null(strstr(csp, "script-src 'self'"));
  assert_non_null(strstr(csp, "frame-ancestors 'none'"));
  assert_int_equal(handle_q(s, "GET", "/ui/app.js", NULL, NULL, NULL, ctype,
                            sizeof ctype, csp, sizeof csp), 200);
  assert_non_null(strstr(ctype, "javascript"));
  assert_non_null(strstr(csp, "script-src 'self'"));
  assert_int_equal(handle_q(s, "GET", "/ui/app.css", NULL, NULL, NULL, ctype,
                            sizeof ctype, NULL, 0), 200);
  assert_non_null(strstr(ctype, "text/css"));
  assert_int_equal(handle_q(s, "GET", "/ui/../queue.db", NULL, NULL, &j, NULL,
                            0, NULL, 0), 404);
  json_decref(j);
  assert_int_equal(handle_q(s, "POST", "/ui", NULL, "{}", &j, NULL, 0, NULL,
                            0), 405);
  json_decref(j);
  /* The data needs the token. */
  assert_int_equal(handle_q(s, "GET", "/v1/dashboard", NULL, NULL, &j, NULL,
                            0, NULL, 0), 401);
  json_decref(j);
  assert_int_equal(handle_q(s, "GET", "/v1/services", "wrong", NULL, &j,
                            NULL, 0, NULL, 0), 401);
  json_decref(j);

  /* svc-NN with NN % 4 + 1 batches on one key: the first QUEUED, the rest
   * WAITING. In "stuck", W1 waits on a dep never enqueued and W2 on W1. */
  for (int k = 0; k < 12; k++)
    for (int b = 0; b < k % 4 + 1; b++) {
      snprintf(body, sizeof body,
               "[{\"id\":\"b%02d-%d\",\"service\":\"svc-%02d\","
               "\"writes\":[\"key\"]}]", k, b, k);
      assert_int_equal(dash(s, "POST", "/v1/batches", body, &j), 202);
      json_decref(j);
      posted++;
    }
  assert_int_equal(dash(s, "POST", "/v1/batches",
                        "[{\"id\":\"W1\",\"service\":\"stuck\",\"writes\":"
                        "[\"A\"],\"deps\":[\"ghost\"]},{\"id\":\"W2\","
                        "\"service\":\"stuck\",\"reads\":[\"A\"]}]", &j),
                   202);
  json_decref(j);
  posted += 2;

  /* Why W2 waits: on address A, which W1 writes; and W1 on its dep. */
  assert_int_equal(dash(s, "GET", "/v1/batches/W2", NULL, &j), 200);
  assert_string_equal(json_string_value(json_object_get(j, "state")),
                      "WAITING");
  w = json_array_get(json_object_get(j, "waits_on"), 0);
  assert_non_null(w);
  assert_string_equal(json_string_value(json_object_get(w, "kind")),
                      "address");
  assert_string_equal(json_string_value(json_object_get(w, "mode")), "read");
  h = json_array_get(json_object_get(w, "holders"), 0);
  assert_string_equal(json_string_value(json_object_get(h, "id")), "W1");
  assert_string_equal(json_string_value(json_object_get(h, "mode")), "write");
  json_decref(j);
  assert_int_equal(dash(s, "GET", "/v1/batches/W1", NULL, &j), 200);
  w = json_array_get(json_object_get(j, "waits_on"), 0);
  assert_string_equal(json_string_value(json_object_get(w, "kind")), "dep");
  assert_string_equal(json_string_value(json_object_get(w, "what")), "ghost");
  assert_string_equal(json_string_value(json_object_get(w, "state")),
                      "never enqueued");
  json_decref(j);

  /* The table: sorted by depth (ties by name), paged, filtered. */
  assert_int_equal(dash(s, "GET", "/v1/services?sort=depth&order=desc"
                        "&limit=4", NULL, &j), 200);
  assert_int_equal(json_integer_value(json_object_get(j, "total")), 13);
  assert_int_equal(json_integer_value(json_object_get(j, "matched")), 13);
  assert_string_equal(page_names(j, names, sizeof names),
                      "svc-03,svc-07,svc-11,svc-02");
  assert_int_equal(json_integer_value(json_object_get(
                       json_array_get(json_object_get(j, "services"), 0),
                       "waiting")), 3);
  json_decref(j);
  assert_int_equal(dash(s, "GET", "/v1/services?sort=depth&order=desc"
                        "&limit=4&offset=4", NULL, &j), 200);
  assert_string_equal(page_names(j, names, sizeof names),
                      "svc-06,svc-10,stuck,svc-01");
  json_decref(j);
  assert_int_equal(dash(s, "GET", "/v1/services?sort=name&order=asc&q=SVC-1"
                        "&limit=500", NULL, &j), 200);
  assert_string_equal(page_names(j, names, sizeof names),
                      "svc-10,svc-11");
  json_decref(j);
  assert_int_equal(dash(s, "GET", "/v1/services?filter=idle", NULL, &j), 200);
  assert_int_equal(json_integer_value(json_object_get(j, "matched")), 0);
  json_decref(j);
  assert_int_equal(dash(s, "GET", "/v1/services?filter=waiting&sort=name"
                        "&order=asc", NULL, &j), 200);
  assert_string_equal(page_names(j, names, sizeof names),
                      "stuck,svc-01,svc-02,svc-03,svc-05,svc-06,svc-07,"
                      "svc-09,svc-10,svc-11");
  json_decref(j);
  static const char *const bad[] = {
      "/v1/services?sort=bogus", "/v1/services?order=up",
      "/v1/services?limit=0",    "/v1/services?limit=501",
      "/v1/services?offset=-1",  "/v1/services?filter=some",
      "/v1/dashboard?since=x"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    assert_int_equal(dash(s, "GET", bad[i], NULL, &j), 400);
    assert_string_equal(err_name(j), "ORDO_E_INVAL");
    json_decref(j);
  }

  /* A halt by hand: journaled, shown, refused twice, then resumed. */
  assert_int_equal(dash(s, "POST", "/v1/services/svc-03/halt",
                        "{\"reason\":\"maintenance\"}", &j), 200);
  assert_true(json_is_true(json_object_get(j, "halted")));
  assert_non_null(strstr(json_string_value(json_object_get(j, "halt_reason")),
                         "maintenance"));
  assert_null(json_object_get(j, "halt_batch"));
  json_decref(j);
  assert_int_equal(dash(s, "POST", "/v1/services/svc-03/halt", NULL, &j), 409);
  assert_string_equal(err_name(j), "ORDO_E_STATE");
  json_decref(j);
  assert_int_equal(dash(s, "POST", "/v1/services/svc-04/halt", "[1]", &j),
                   400);
  json_decref(j);
  assert_int_equal(dash(s, "POST", "/v1/services/nobody/halt", NULL, &j), 404);
  json_decref(j);
  assert_int_equal(dash(s, "GET", "/v1/services?filter=halted", NULL, &j),
                   200);
  assert_string_equal(page_names(j, names, sizeof names), "svc-03");
  json_decref(j);

  /* The refresh: totals, no ledger, at least the first sample. */
  assert_int_equal(dash(s, "GET", "/v1/dashboard", NULL, &j), 200);
  w = json_object_get(j, "totals");
  assert_int_equal(json_integer_value(json_object_get(w, "enqueued")),
                   (json_int_t)posted);
  assert_int_equal(json_integer_value(json_object_get(w, "waiting")), 20);
  assert_int_equal(json_integer_value(json_object_get(w, "services")), 13);
  assert_true(json_is_null(json_object_get(j, "ledger")));
  assert_true(json_array_size(json_object_get(j, "series")) >= 1);
  assert_true(json_is_number(json_object_get(j, "server_ms")));
  json_decref(j);
  assert_int_equal(dash(s, "GET", "/v1/dashboard?since=9007199254740992",
                        NULL, &j), 200);
  assert_int_equal(json_array_size(json_object_get(j, "series")), 0);
  json_decref(j);

  /* The halt survives a restart; resume lifts it. */
  assert_int_equal(ordo_server_stop(s), ORDO_OK);
  s = dash_server(dir);
  assert_int_equal(dash(s, "GET", "/v1/services/svc-03", NULL, &j), 200);
  assert_true(json_is_true(json_object_get(j, "halted")));
  assert_non_null(strstr(json_string_value(json_object_get(j, "halt_reason")),
                         "maintenance"));
  json_decref(j);
  assert_int_equal(dash(s, "POST", "/v1/services/svc-03/resume", NULL, &j),
                   200);
  assert_false(json_is_true(json_object_get(j, "halted")));
  json_decref(j);
  assert_int_equal(ordo_server_stop(s), ORDO_OK);
  support_rmdir_all(dir);
}

int main(void) {
  const struct CMUnitTest http_tests[] = {
      cmocka_unit_test(test_auth),
      cmocka_unit_test(test_bad_requests),
      cmocka_unit_test(test_duplicate_and_limits),
      cmocka_unit_test(test_enqueue_commit),
      cmocka_unit_test(test_raw_batchlist),
      cmocka_unit_test(test_services_resume),
      cmocka_unit_test(test_wallets),
      cmocka_unit_test(test_cred_def_job),
      cmocka_unit_test(test_metrics),
      cmocka_unit_test(test_metrics_restored_services),
      cmocka_unit_test(test_handler),
      cmocka_unit_test(test_locks_from_signed_batch),
      cmocka_unit_test(test_signing_key_file),
      cmocka_unit_test(test_ledger_down),
      cmocka_unit_test(test_refused_batches_split),
      cmocka_unit_test(test_cancel_and_retry),
      cmocka_unit_test(test_cancel_submitted),
      cmocka_unit_test(test_journal_fault_503),
  };
  const struct CMUnitTest alone[] = {
      cmocka_unit_test(test_rate_limit),
      cmocka_unit_test(test_refusals),
      cmocka_unit_test(test_config),
      cmocka_unit_test(test_dep_timeout_without_ledger),
      cmocka_unit_test(test_dashboard),
      cmocka_unit_test(test_out_of_memory),
      cmocka_unit_test(test_hostile_clients),
  };
  int rc = cmocka_run_group_tests_name("server_http", http_tests, group_setup,
                                       group_teardown);
  return rc + cmocka_run_group_tests_name("server_alone", alone, NULL, NULL);
}

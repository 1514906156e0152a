/*
 * test_node.c — the embedded ledger node: Sawtooth's REST subset over real
 * HTTP on an ephemeral loopback port (libcurl's easy API, in one helper),
 * block cutting, batch atomicity, restart with and without the pending
 * queue, fault injection, and the seeded block order (through
 * ordo_node_handle and ordo_node_cut_block, without sockets), and hostile
 * clients (half-open and trickling connections closed by the header
 * timeout, the per-address cap, 413 before the body).
 *
 * Every wait is bounded: status polls use wait= and give up after a few
 * seconds, so a broken node fails a test instead of hanging it.
 */
#include "ordo.h"
#include "ledger/ledger.h"
#include "node/node.h"
#include "support/support.h"

#include <arpa/inet.h>
#include <cbor.h>
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* cmocka.h needs these first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

/* A fixed test key (not secret anywhere). */
static const char *const KEY =
    "2f1e7b7a130d7ba9da0068b3bb0ba1d79e7e77110302c9f746c3c2a63fe40088";

/* ------------------------------------------------------------------------ */
/* Helpers                                                                   */
/* ------------------------------------------------------------------------ */

static unsigned long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (unsigned long long)ts.tv_sec * 1000 + (unsigned long long)ts.tv_nsec / 1000000;
}

static char *tmpdir(void) { return support_tmpdir("ordo-test-node"); }

/* A node on an ephemeral loopback port (port -1: none). */
static ordo_node *start(const char *dir, int port, unsigned block_ms,
                        uint64_t seed, int keep_pending) {
  ordo_node_options o;
  ordo_node *n = NULL;
  ordo_node_options_init(&o);
  o.data_dir = dir;
  o.port = port;
  o.block_ms = block_ms;
  o.seed = seed;
  o.keep_pending = keep_pending;
  o.max_wait_s = 10;
  if (ordo_node_start(&o, &n) != ORDO_OK)
    fail_msg("node start: %s", ordo_last_error_message());
  return n;
}

/*
 * One HTTP request to 127.0.0.1:port: the status (-1 when curl fails) and,
 * when body_out is not NULL, the body (a new string, "" when empty). ctype
 * NULL: no Content-Type header. Bounded by a 20 s timeout. No cmocka
 * asserts, so client threads may call it.
 */
static long http_raw(int port, const char *method, const char *target,
                     const char *ctype, const void *body, size_t len,
                     char **body_out) {
  char url[4096], hdr[256];
  const char *headers[2] = {hdr, NULL};
  support_http_answer a;

  snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, target);
  snprintf(hdr, sizeof hdr, "Content-Type:%s%s", ctype != NULL ? " " : "",
           ctype != NULL ? ctype : "");
  support_http(method, url, headers, body, len, 20000L, &a);
  if (body_out != NULL)
    *body_out = a.body;
  else
    free(a.body);
  return a.status;
}

/* http_raw on the test thread: the status, asserted to be an answer, and
 * when out is not NULL the body parsed as JSON (asserted to be JSON). */
static long http(int port, const char *method, const char *target,
                 const char *ctype, const void *body, size_t len,
                 json_t **out) {
  char *text = NULL;
  long status = http_raw(port, method, target, ctype, body, len, &text);
  if (status < 0)
    fail_msg("%s %s: no answer", method, target);
  if (out != NULL) {
    json_error_t e;
    *out = json_loads(text, 0, &e);
    if (*out == NULL)
      fail_msg("%s %s: not JSON: %s", method, target, text);
  }
  free(text);
  return status;
}

/* The error code of {"error": {"code": N}} (-1 if absent); frees j. */
static long error_code(json_t *j) {
  long code = (long)json_integer_value(json_object_get(json_object_get(j, "error"), "code"));
  if (json_object_get(j, "error") == NULL)
    code = -1;
  json_decref(j);
  return code;
}

static ordo_ledger_signer *signer(void) {
  ordo_ledger_signer *s = NULL;
  assert_int_equal(ordo_ledger_signer_new(KEY, &s), ORDO_OK);
  return s;
}

static ordo_ledger_txn *txn(const ordo_ledger_signer *s, const char *family,
                            const char *addr, const void *pl, size_t plen) {
  const char *addrs[1] = {addr};
  ordo_ledger_txn_spec spec = {0};
  ordo_ledger_txn *t = NULL;
  spec.family_name = family;
  spec.family_version = "1.0";
  spec.inputs = addrs;
  spec.ninputs = 1;
  spec.outputs = addrs;
  spec.noutputs = 1;
  spec.payload = pl;
  spec.payload_len = plen;
  assert_int_equal(ordo_ledger_txn_build(s, NULL, &spec, &t), ORDO_OK);
  return t;
}

static ordo_ledger_txn *intkey(const ordo_ledger_signer *s,
                               ordo_ledger_intkey_verb verb, const char *name,
                               unsigned value) {
  char addr[ORDO_LEDGER_ADDRESS_SIZE];
  unsigned char *pl = NULL;
  size_t plen = 0;
  ordo_ledger_txn *t;
  assert_int_equal(ordo_ledger_intkey_address(name, addr), ORDO_OK);
  assert_int_equal(ordo_ledger_intkey_encode(verb, name, value, &pl, &plen),
                   ORDO_OK);
  t = txn(s, ORDO_LEDGER_INTKEY_FAMILY, addr, pl, plen);
  free(pl);
  return t;
}

/* ordo-rw: read key, write key. */
static ordo_ledger_txn *rw(const ordo_ledger_signer *s, const char *key) {
  char addr[ORDO_LEDGER_ADDRESS_SIZE], *pl = NULL;
  const char *keys[1] = {key};
  ordo_ledger_txn *t;
  assert_int_equal(ordo_ledger_rw_address(key, addr), ORDO_OK);
  assert_int_equal(ordo_ledger_rw_encode(keys, 1, keys, 1, &pl), ORDO_OK);
  t = txn(s, ORDO_LEDGER_RW_FAMILY, addr, pl, strlen(pl));
  free(pl);
  return t;
}

/* A batch of n txns (consumed). */
static ordo_ledger_batch *batch(const ordo_ledger_signer *s,
                                ordo_ledger_txn **t, size_t n) {
  ordo_ledger_batch *b = NULL;
  size_t i;
  assert_int_equal(ordo_ledger_batch_build(s, t, n, &b), ORDO_OK);
  for (i = 0; i < n; i++)
    ordo_ledger_txn_free(t[i]);
  return b;
}

static unsigned char *encode(ordo_ledger_batch *const *b, size_t n,
                             size_t *len) {
  unsigned char *out = NULL;
  assert_int_equal(ordo_ledger_batchlist_encode(
                       (const ordo_ledger_batch *const *)b, n, &out, len),
                   ORDO_OK);
  return out;
}

static long post_batches(int port, ordo_ledger_batch *const *b, size_t n,
                         json_t **out) {
  size_t len;
  unsigned char *body = encode(b, n, &len);
  long st = http(port, "POST", "/batches", "application/octet-stream", body,
                 len, out);
  free(body);
  return st;
}

/* The status string of one id, via GET with wait=w. *msg, when not NULL,
 * gets a copy of the first invalid transaction's "id:message". */
static char *status_of(int port, const char *id, double w, char **msg) {
  char target[512];
  json_t *j, *e;
  char *s;
  snprintf(target, sizeof target, "/batch_statuses?id=%s&wait=%g", id, w);
  assert_int_equal(http(port, "GET", target, NULL, NULL, 0, &j), 200);
  e = json_array_get(json_object_get(j, "data"), 0);
  assert_non_null(e);
  assert_string_equal(json_string_value(json_object_get(e, "id")), id);
  s = strdup(json_string_value(json_object_get(e, "status")));
  if (msg != NULL) {
    json_t *inv = json_array_get(json_object_get(e, "invalid_transactions"), 0);
    *msg = NULL;
    if (inv != NULL) {
      size_t n = 512;
      *msg = malloc(n);
      snprintf(*msg, n, "%s:%s", json_string_value(json_object_get(inv, "id")),
               json_string_value(json_object_get(inv, "message")));
    }
  }
  json_decref(j);
  return s;
}

/* Poll until id is not PENDING (at most ~10 s); its final status. */
static char *wait_final(int port, const char *id, char **msg) {
  unsigned long long end = now_ms() + 10000;
  for (;;) {
    char *s = status_of(port, id, 1, msg);
    if (strcmp(s, "PENDING") != 0 || now_ms() > end)
      return s;
    free(s);
    if (msg != NULL)
      free(*msg);
  }
}

static void assert_final(int port, const char *id, const char *want) {
  char *s = wait_final(port, id, NULL);
  assert_string_equal(s, want);
  free(s);
}

/* GET /state/ADDRESS: status; *data and *len the decoded bytes when 200. */
static long get_state(int port, const char *addr, unsigned char **data,
                      size_t *len) {
  char target[128];
  json_t *j;
  long st;
  snprintf(target, sizeof target, "/state/%s", addr);
  st = http(port, "GET", target, NULL, NULL, 0, &j);
  if (st == 200) {
    const char *b64 = json_string_value(json_object_get(j, "data"));
    size_t cap;
    assert_non_null(b64);
    assert_non_null(json_string_value(json_object_get(j, "head")));
    cap = strlen(b64) + 1;
    *data = malloc(cap);
    assert_int_equal(sodium_base642bin(*data, cap, b64, strlen(b64), NULL, len,
                                       NULL, sodium_base64_VARIANT_ORIGINAL),
                     0);
  } else {
    assert_int_equal(error_code(j), 75);
    j = NULL;
  }
  json_decref(j);
  return st;
}

/* The intkey value of name at the node (-1 when absent). */
static long long intkey_value(int port, const char *name) {
  char addr[ORDO_LEDGER_ADDRESS_SIZE];
  unsigned char *data = NULL;
  size_t len = 0, i;
  struct cbor_load_result res;
  cbor_item_t *m;
  long long v = -2;

  assert_int_equal(ordo_ledger_intkey_address(name, addr), ORDO_OK);
  if (get_state(port, addr, &data, &len) == 404)
    return -1;
  m = cbor_load(data, len, &res);
  assert_non_null(m);
  assert_true(cbor_isa_map(m));
  for (i = 0; i < cbor_map_size(m); i++) {
    struct cbor_pair p = cbor_map_handle(m)[i];
    if (cbor_isa_string(p.key) &&
        cbor_string_length(p.key) == strlen(name) &&
        memcmp(cbor_string_handle(p.key), name, strlen(name)) == 0)
      v = (long long)cbor_get_int(p.value);
  }
  cbor_decref(&m);
  free(data);
  return v;
}

/* ------------------------------------------------------------------------ */
/* REST, end to end                                                          */
/* ------------------------------------------------------------------------ */

static void test_commit_and_read(void **st) {
  char *dir = tmpdir(), addr[ORDO_LEDGER_ADDRESS_SIZE], target[256];
  ordo_node *n = start(dir, 0, 20, 1, 0);
  int port = ordo_node_port(n);
  ordo_ledger_signer *s = signer();
  ordo_ledger_txn *t[2] = {intkey(s, ORDO_LEDGER_INTKEY_SET, "alpha", 5),
                           intkey(s, ORDO_LEDGER_INTKEY_INC, "alpha", 3)};
  ordo_ledger_batch *b = batch(s, t, 2);
  const char *id = ordo_ledger_batch_id(b);
  json_t *j, *data, *blk;
  size_t i, found = 0;
  (void)st;

  assert_true(port > 0);
  assert_int_equal(post_batches(port, &b, 1, &j), 202);
  snprintf(target, sizeof target, "/batch_statuses?id=%s", id);
  assert_non_null(strstr(json_string_value(json_object_get(j, "link")), target));
  json_decref(j);
  assert_final(port, id, "COMMITTED");
  assert_int_equal(intkey_value(port, "alpha"), 8);
  assert_int_equal(intkey_value(port, "beta"), -1);

  /* GET /state?address=PREFIX lists it, with paging. */
  assert_int_equal(ordo_ledger_intkey_address("alpha", addr), ORDO_OK);
  assert_int_equal(http(port, "GET", "/state?address=1cf126", NULL, NULL, 0, &j),
                   200);
  data = json_object_get(j, "data");
  assert_int_equal(json_array_size(data), 1);
  assert_string_equal(
      json_string_value(json_object_get(json_array_get(data, 0), "address")),
      addr);
  assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "paging"), "limit")),
                   1000);
  assert_non_null(json_string_value(json_object_get(j, "head")));
  json_decref(j);
  assert_int_equal(http(port, "GET", "/state?address=zz", NULL, NULL, 0, &j), 400);
  assert_int_equal(error_code(j), 62);
  assert_int_equal(http(port, "GET", "/state/1cf126", NULL, NULL, 0, &j), 400);
  assert_int_equal(error_code(j), 62);

  /* GET /blocks: newest first, block_num as strings down to genesis "0". */
  assert_int_equal(http(port, "GET", "/blocks", NULL, NULL, 0, &j), 200);
  data = json_object_get(j, "data");
  assert_true(json_array_size(data) >= 2);
  assert_string_equal(
      json_string_value(json_object_get(json_array_get(data, 0), "header_signature")),
      json_string_value(json_object_get(j, "head")));
  for (i = 0; i < json_array_size(data); i++) {
    json_t *h, *ids;
    size_t k;
    blk = json_array_get(data, i);
    h = json_object_get(blk, "header");
    assert_true(json_is_string(json_object_get(h, "block_num")));
    assert_int_equal(atoll(json_string_value(json_object_get(h, "block_num"))),
                     (long long)(json_array_size(data) - 1 - i));
    if (i + 1 < json_array_size(data))
      assert_string_equal(
          json_string_value(json_object_get(h, "previous_block_id")),
          json_string_value(json_object_get(json_array_get(data, i + 1),
                                            "header_signature")));
    ids = json_object_get(h, "batch_ids");
    for (k = 0; k < json_array_size(ids); k++)
      if (strcmp(json_string_value(json_array_get(ids, k)), id) == 0) {
        found++;
        assert_string_equal(
            json_string_value(json_object_get(
                json_array_get(json_object_get(blk, "batches"), k),
                "header_signature")),
            id);
      }
  }
  assert_int_equal(found, 1);
  assert_string_equal(
      json_string_value(json_object_get(
          json_object_get(json_array_get(data, json_array_size(data) - 1), "header"),
          "block_num")),
      "0");
  json_decref(j);
  assert_int_equal(http(port, "GET", "/blocks?limit=1", NULL, NULL, 0, &j), 200);
  assert_int_equal(json_array_size(json_object_get(j, "data")), 1);
  assert_non_null(json_object_get(json_object_get(j, "paging"), "next"));
  json_decref(j);
  assert_int_equal(http(port, "GET", "/blocks?limit=0", NULL, NULL, 0, &j), 400);
  assert_int_equal(error_code(j), 53);

  /* Idempotent: the same batch again is accepted, not applied again (a
   * second "set" would make it INVALID). */
  assert_int_equal(post_batches(port, &b, 1, &j), 202);
  json_decref(j);
  {
    ordo_ledger_txn *t2[1] = {intkey(s, ORDO_LEDGER_INTKEY_SET, "gamma", 1)};
    ordo_ledger_batch *b2 = batch(s, t2, 1);
    assert_int_equal(post_batches(port, &b2, 1, &j), 202);
    json_decref(j);
    assert_final(port, ordo_ledger_batch_id(b2), "COMMITTED");
    ordo_ledger_batch_free(b2);
  }
  assert_final(port, id, "COMMITTED");
  assert_int_equal(intkey_value(port, "alpha"), 8);

  /* Unknown path and wrong method. */
  assert_int_equal(http(port, "GET", "/nope", NULL, NULL, 0, &j), 404);
  assert_true(error_code(j) > 0);
  assert_int_equal(http(port, "GET", "/batches", NULL, NULL, 0, &j), 405);
  assert_true(error_code(j) > 0);

  ordo_ledger_batch_free(b);
  ordo_ledger_signer_free(s);
  assert_int_equal(ordo_node_stop(n), ORDO_OK);
  support_rmdir_all(dir);
}

static void test_post_errors(void **st) {
  char *dir = tmpdir(), addr[ORDO_LEDGER_ADDRESS_SIZE];
  ordo_node *n = start(dir, 0, 0, 1, 0); /* blocks cut by the test */
  int port = ordo_node_port(n);
  ordo_ledger_signer *s = signer();
  ordo_ledger_txn *t[1] = {intkey(s, ORDO_LEDGER_INTKEY_SET, "flip", 1)};
  ordo_ledger_batch *b = batch(s, t, 1);
  const char *id = ordo_ledger_batch_id(b);
  unsigned char *body, *at, *data;
  size_t len, dlen;
  json_t *j;
  char *stt;
  (void)st;

  body = encode(&b, 1, &len);
  assert_int_equal(http(port, "POST", "/batches", "application/json", body, len, &j), 400);
  assert_int_equal(error_code(j), 42);
  assert_int_equal(http(port, "POST", "/batches", NULL, body, len, &j), 400);
  assert_int_equal(error_code(j), 42);
  assert_int_equal(http(port, "POST", "/batches", "application/octet-stream", "", 0, &j), 400);
  assert_int_equal(error_code(j), 34);
  assert_int_equal(http(port, "POST", "/batches", "application/octet-stream",
                        "\xff\xff\xff garbage", 12, &j),
                   400);
  assert_int_equal(error_code(j), 35);
  /* A flipped digit of the batch's header_signature. */
  at = memmem(body, len, id, strlen(id));
  assert_non_null(at);
  at[10] = at[10] == '0' ? '1' : '0';
  assert_int_equal(http(port, "POST", "/batches", "application/octet-stream", body, len, &j), 400);
  {
    const char *m = json_string_value(json_object_get(json_object_get(j, "error"), "message"));
    assert_non_null(m);
    assert_non_null(strstr(m, "signature"));
  }
  assert_int_equal(error_code(j), 30);
  free(body);
  /* A block cut now would commit whatever was accepted: there is none,
   * the chain stays at genesis, the tampered batch was never seen. */
  {
    uint64_t height = 99;
    assert_int_equal(ordo_node_cut_block(n, &height), ORDO_OK);
    assert_int_equal(height, 0);
  }
  stt = status_of(port, id, 0, NULL);
  assert_string_equal(stt, "UNKNOWN");
  free(stt);
  assert_int_equal(ordo_ledger_intkey_address("flip", addr), ORDO_OK);
  assert_int_equal(get_state(port, addr, &data, &dlen), 404);

  ordo_ledger_batch_free(b);
  ordo_ledger_signer_free(s);
  assert_int_equal(ordo_node_stop(n), ORDO_OK);
  support_rmdir_all(dir);
}

static void test_invalid_batch_is_atomic(void **st) {
  char *dir = tmpdir();
  ordo_node *n = start(dir, 0, 20, 1, 0);
  int port = ordo_node_port(n);
  ordo_ledger_signer *s = signer();
  ordo_ledger_txn *t[3] = {intkey(s, ORDO_LEDGER_INTKEY_SET, "kept", 1),
                           intkey(s, ORDO_LEDGER_INTKEY_INC, "missing", 1),
                           intkey(s, ORDO_LEDGER_INTKEY_SET, "after", 1)};
  char bad_id[ORDO_LEDGER_ID_SIZE], *msg, *stt;
  ordo_ledger_batch *b, *u;
  json_t *j;
  (void)st;

  snprintf(bad_id, sizeof bad_id, "%s", ordo_ledger_txn_id(t[1]));
  b = batch(s, t, 3);
  {
    /* An unknown family is an INVALID batch too. */
    char addr[ORDO_LEDGER_ADDRESS_SIZE];
    ordo_ledger_txn *ut[1];
    assert_int_equal(ordo_ledger_intkey_address("other", addr), ORDO_OK);
    ut[0] = txn(s, "no-such-family", addr, "x", 1);
    u = batch(s, ut, 1);
  }
  {
    ordo_ledger_batch *both[2] = {b, u};
    assert_int_equal(post_batches(port, both, 2, &j), 202);
    json_decref(j);
  }
  stt = wait_final(port, ordo_ledger_batch_id(b), &msg);
  assert_string_equal(stt, "INVALID");
  assert_non_null(msg);
  assert_true(strncmp(msg, bad_id, strlen(bad_id)) == 0);
  assert_true(strlen(msg) > strlen(bad_id) + 1); /* a message follows */
  free(stt);
  free(msg);
  stt = wait_final(port, ordo_ledger_batch_id(u), &msg);
  assert_string_equal(stt, "INVALID");
  assert_non_null(strstr(msg, "unknown transaction family"));
  free(stt);
  free(msg);
  /* None of the invalid batch's writes were applied. */
  assert_int_equal(intkey_value(port, "kept"), -1);
  assert_int_equal(intkey_value(port, "after"), -1);

  ordo_ledger_batch_free(b);
  ordo_ledger_batch_free(u);
  ordo_ledger_signer_free(s);
  assert_int_equal(ordo_node_stop(n), ORDO_OK);
  support_rmdir_all(dir);
}

static void test_statuses(void **st) {
  char *dir = tmpdir(), body[2048], target[4096];
  ordo_node *n = start(dir, 0, 20, 1, 0);
  int port = ordo_node_port(n);
  ordo_ledger_signer *s = signer();
  ordo_ledger_txn *t[1] = {intkey(s, ORDO_LEDGER_INTKEY_SET, "st", 1)};
  ordo_ledger_batch *b = batch(s, t, 1);
  const char *id = ordo_ledger_batch_id(b);
  const char *unknown =
      "00000000000000000000000000000000000000000000000000000000000000000000"
      "000000000000000000000000000000000000000000000000000000000000";
  json_t *j, *data;
  size_t len, i;
  (void)st;

  assert_int_equal(post_batches(port, &b, 1, &j), 202);
  json_decref(j);
  /* One wait= call sees the commit (blocks every 20 ms). */
  {
    char *stt = status_of(port, id, 5, NULL);
    assert_string_equal(stt, "COMMITTED");
    free(stt);
  }
  /* POST /batch_statuses with a JSON array. */
  snprintf(body, sizeof body, "[\"%s\",\"%s\"]", id, unknown);
  assert_int_equal(http(port, "POST", "/batch_statuses", "application/json", body,
                        strlen(body), &j),
                   200);
  data = json_object_get(j, "data");
  assert_int_equal(json_array_size(data), 2);
  assert_string_equal(json_string_value(json_object_get(json_array_get(data, 0), "status")),
                      "COMMITTED");
  assert_string_equal(json_string_value(json_object_get(json_array_get(data, 1), "status")),
                      "UNKNOWN");
  assert_string_equal(json_string_value(json_object_get(json_array_get(data, 1), "id")),
                      unknown);
  assert_int_equal(json_array_size(json_object_get(json_array_get(data, 1),
                                                   "invalid_transactions")),
                   0);
  json_decref(j);
  assert_int_equal(http(port, "POST", "/batch_statuses", "text/plain", body,
                        strlen(body), &j),
                   400);
  assert_int_equal(error_code(j), 43);
  assert_int_equal(http(port, "POST", "/batch_statuses", "application/json", "{\"a\":1}",
                        7, &j),
                   400);
  assert_int_equal(error_code(j), 46);
  assert_int_equal(http(port, "POST", "/batch_statuses", "application/json", "[]", 2, &j),
                   400);
  assert_int_equal(error_code(j), 46);
  /* 15 ids in a GET are fine, 16 are not; no id at all is not either. */
  len = (size_t)snprintf(target, sizeof target, "/batch_statuses?id=");
  for (i = 0; i < 16; i++) {
    if (i == 15) {
      assert_int_equal(http(port, "GET", target, NULL, NULL, 0, &j), 200);
      assert_int_equal(json_array_size(json_object_get(j, "data")), 15);
      json_decref(j);
    }
    len += (size_t)snprintf(target + len, sizeof target - len, "%s%0128zx",
                            i ? "," : "", i);
  }
  assert_int_equal(http(port, "GET", target, NULL, NULL, 0, &j), 400);
  assert_int_equal(error_code(j), 66);
  assert_int_equal(http(port, "GET", "/batch_statuses", NULL, NULL, 0, &j), 400);
  assert_int_equal(error_code(j), 66);
  assert_int_equal(http(port, "GET", "/batch_statuses?id=", NULL, NULL, 0, &j), 400);
  assert_int_equal(error_code(j), 66);
  /* An empty id among others is an invalid id, as on Sawtooth. */
  assert_int_equal(http(port, "GET", "/batch_statuses?id=a,,b", NULL, NULL, 0, &j), 400);
  assert_int_equal(error_code(j), 60);

  ordo_ledger_batch_free(b);
  ordo_ledger_signer_free(s);
  assert_int_equal(ordo_node_stop(n), ORDO_OK);
  support_rmdir_all(dir);
}

/* wait= gives up at its deadline when nothing commits (no block thread). */
static void test_wait_times_out(void **st) {
  char *dir = tmpdir(), *stt;
  ordo_node *n = start(dir, 0, 0, 1, 0);
  int port = ordo_node_port(n);
  ordo_ledger_signer *s = signer();
  ordo_ledger_txn *t[1] = {intkey(s, ORDO_LEDGER_INTKEY_SET, "w", 1)};
  ordo_ledger_batch *b = batch(s, t, 1);
  unsigned long long t0;
  json_t *j;
  (void)st;

  assert_int_equal(post_batches(port, &b, 1, &j), 202);
  json_decref(j);
  t0 = now_ms();
  stt = status_of(port, ordo_ledger_batch_id(b), 0.3, NULL);
  assert_string_equal(stt, "PENDING");
  assert_true(now_ms() - t0 >= 250);
  free(stt);
  assert_int_equal(ordo_node_cut_block(n, NULL), ORDO_OK);
  stt = status_of(port, ordo_ledger_batch_id(b), 0, NULL);
  assert_string_equal(stt, "COMMITTED");
  free(stt);

  ordo_ledger_batch_free(b);
  ordo_ledger_signer_free(s);
  assert_int_equal(ordo_node_stop(n), ORDO_OK);
  support_rmdir_all(dir);
}

static void test_restart(void **st) {
  char *dir = tmpdir(), *stt;
  ordo_ledger_signer *s = signer();
  ordo_ledger_txn *ta[1] = {intkey(s, ORDO_LEDGER_INTKEY_SET, "durable", 7)};
  ordo_ledger_txn *tb[1] = {intkey(s, ORDO_LEDGER_INTKEY_SET, "lost", 1)};
  ordo_ledger_txn *tc[1] = {intkey(s, ORDO_LEDGER_INTKEY_SET, "kept", 2)};
  ordo_ledger_batch *a = batch(s, ta, 1), *b = batch(s, tb, 1),
                    *c = batch(s, tc, 1);
  ordo_node *n;
  json_t *j;
  size_t nblocks;
  int port;
  (void)st;

  n = start(dir, 0, 20, 3, 0);
  port = ordo_node_port(n);
  assert_int_equal(post_batches(port, &a, 1, &j), 202);
  json_decref(j);
  assert_final(port, ordo_ledger_batch_id(a), "COMMITTED");
  assert_int_equal(http(port, "GET", "/blocks", NULL, NULL, 0, &j), 200);
  nblocks = json_array_size(json_object_get(j, "data"));
  json_decref(j);
  assert_int_equal(ordo_node_stop(n), ORDO_OK);

  /* Same DIR: state, statuses and blocks are back. No block thread, so
   * the next batch stays pending until the stop. */
  n = start(dir, 0, 0, 3, 0);
  port = ordo_node_port(n);
  assert_int_equal(intkey_value(port, "durable"), 7);
  stt = status_of(port, ordo_ledger_batch_id(a), 0, NULL);
  assert_string_equal(stt, "COMMITTED");
  free(stt);
  assert_int_equal(http(port, "GET", "/blocks", NULL, NULL, 0, &j), 200);
  assert_int_equal(json_array_size(json_object_get(j, "data")), nblocks);
  json_decref(j);
  assert_int_equal(post_batches(port, &b, 1, &j), 202);
  json_decref(j);
  stt = status_of(port, ordo_ledger_batch_id(b), 0, NULL);
  assert_string_equal(stt, "PENDING");
  free(stt);
  assert_int_equal(ordo_node_stop(n), ORDO_OK);

  /* Without keep_pending the pending batch is gone: UNKNOWN, and a block
   * cut now commits nothing of it. */
  n = start(dir, 0, 0, 3, 0);
  port = ordo_node_port(n);
  assert_int_equal(ordo_node_cut_block(n, NULL), ORDO_OK);
  stt = status_of(port, ordo_ledger_batch_id(b), 0, NULL);
  assert_string_equal(stt, "UNKNOWN");
  free(stt);
  assert_int_equal(intkey_value(port, "lost"), -1);
  assert_int_equal(ordo_node_stop(n), ORDO_OK);

  /* With keep_pending it survives, still PENDING, and commits later. */
  n = start(dir, 0, 0, 3, 1);
  port = ordo_node_port(n);
  assert_int_equal(post_batches(port, &c, 1, &j), 202);
  json_decref(j);
  assert_int_equal(ordo_node_stop(n), ORDO_OK);
  n = start(dir, 0, 0, 3, 1);
  port = ordo_node_port(n);
  stt = status_of(port, ordo_ledger_batch_id(c), 0, NULL);
  assert_string_equal(stt, "PENDING");
  free(stt);
  assert_int_equal(ordo_node_stop(n), ORDO_OK);
  n = start(dir, 0, 20, 3, 1);
  port = ordo_node_port(n);
  assert_final(port, ordo_ledger_batch_id(c), "COMMITTED");
  assert_int_equal(intkey_value(port, "kept"), 2);
  assert_int_equal(ordo_node_stop(n), ORDO_OK);

  /* Two nodes never share one DIR. */
  n = start(dir, -1, 0, 3, 0);
  {
    ordo_node_options o;
    ordo_node *m = NULL;
    ordo_node_options_init(&o);
    o.data_dir = dir;
    o.port = -1;
    assert_int_equal(ordo_node_start(&o, &m), ORDO_E_STORAGE_BUSY);
    assert_null(m);
  }
  assert_int_equal(ordo_node_stop(n), ORDO_OK);

  ordo_ledger_batch_free(a);
  ordo_ledger_batch_free(b);
  ordo_ledger_batch_free(c);
  ordo_ledger_signer_free(s);
  support_rmdir_all(dir);
}

static void test_faults(void **st) {
  char *dir = tmpdir(), *stt;
  ordo_ledger_signer *s = signer();
  ordo_ledger_txn *t[1] = {intkey(s, ORDO_LEDGER_INTKEY_SET, "fault", 1)};
  ordo_ledger_batch *b = batch(s, t, 1);
  ordo_node_options o;
  ordo_node *n = NULL;
  unsigned long long t0;
  json_t *j;
  int port, i;
  long code;
  (void)st;

  ordo_node_options_init(&o);
  o.data_dir = dir;
  o.block_ms = 0; /* blocks cut by the test */
  o.fail_rate = 1.0;
  assert_int_equal(ordo_node_start(&o, &n), ORDO_OK);
  port = ordo_node_port(n);
  for (i = 0; i < 3; i++) {
    assert_int_equal(post_batches(port, &b, 1, &j), 503);
    code = error_code(j);
    assert_true(code == 15 || code == 17 || code == 18);
  }
  assert_int_equal(http(port, "GET", "/blocks", NULL, NULL, 0, &j), 503);
  json_decref(j);
  {
    /* Whatever had been accepted would be in the block cut now. */
    uint64_t height = 99;
    assert_int_equal(ordo_node_cut_block(n, &height), ORDO_OK);
    assert_int_equal(height, 0);
  }
  assert_int_equal(ordo_node_stop(n), ORDO_OK);

  /* Nothing was applied or even seen. A delay is felt by every answer. */
  o.fail_rate = 0;
  o.delay_ms = 150;
  assert_int_equal(ordo_node_start(&o, &n), ORDO_OK);
  port = ordo_node_port(n);
  t0 = now_ms();
  stt = status_of(port, ordo_ledger_batch_id(b), 0, NULL);
  assert_true(now_ms() - t0 >= 140);
  assert_string_equal(stt, "UNKNOWN");
  free(stt);
  assert_int_equal(intkey_value(port, "fault"), -1);
  assert_int_equal(ordo_node_stop(n), ORDO_OK);

  /* A full queue refuses the whole list with 429/31. */
  o.delay_ms = 0;
  o.block_ms = 0;
  o.max_pending = 1;
  assert_int_equal(ordo_node_start(&o, &n), ORDO_OK);
  port = ordo_node_port(n);
  {
    ordo_ledger_txn *t2[1] = {intkey(s, ORDO_LEDGER_INTKEY_SET, "full", 1)};
    ordo_ledger_batch *b2 = batch(s, t2, 1), *both[2] = {b, b2};
    assert_int_equal(post_batches(port, both, 2, &j), 429);
    assert_int_equal(error_code(j), 31);
    stt = status_of(port, ordo_ledger_batch_id(b), 0, NULL);
    assert_string_equal(stt, "UNKNOWN");
    free(stt);
    assert_int_equal(post_batches(port, &b, 1, &j), 202);
    json_decref(j);
    assert_int_equal(post_batches(port, &b2, 1, &j), 429);
    assert_int_equal(error_code(j), 31);
    ordo_ledger_batch_free(b2);
  }
  assert_int_equal(ordo_node_stop(n), ORDO_OK);

  ordo_ledger_batch_free(b);
  ordo_ledger_signer_free(s);
  support_rmdir_all(dir);
}

/* Several clients at once: every batch commits exactly once, in one block.
 * The bodies are made on the test thread; client threads only send them
 * (and poll a status), counting what went wrong. */
#define NCLIENTS 4
#define PER_CLIENT 10

typedef struct client {
  int port;
  int failures;
  char ids[PER_CLIENT][ORDO_LEDGER_ID_SIZE];
  unsigned char *body[PER_CLIENT];
  size_t len[PER_CLIENT];
} client;

static void *client_main(void *arg) {
  client *c = arg;
  int i;
  for (i = 0; i < PER_CLIENT; i++) {
    char target[256], *text = NULL;
    if (http_raw(c->port, "POST", "/batches", "application/octet-stream",
                 c->body[i], c->len[i], NULL) != 202)
      c->failures++;
    snprintf(target, sizeof target, "/batch_statuses?id=%s&wait=0.05",
             c->ids[i]);
    if (http_raw(c->port, "GET", target, NULL, NULL, 0, &text) != 200 ||
        strstr(text, c->ids[i]) == NULL)
      c->failures++;
    free(text);
  }
  return NULL;
}

static void test_concurrent_clients(void **st) {
  char *dir = tmpdir();
  ordo_node *n = start(dir, 0, 5, 9, 0);
  ordo_ledger_signer *s = signer();
  client cs[NCLIENTS];
  pthread_t th[NCLIENTS];
  json_t *j, *data;
  size_t i, k, seen = 0;
  int c;
  (void)st;

  for (c = 0; c < NCLIENTS; c++) {
    memset(&cs[c], 0, sizeof cs[c]);
    cs[c].port = ordo_node_port(n);
    for (i = 0; i < PER_CLIENT; i++) {
      char name[16];
      ordo_ledger_txn *t[1];
      ordo_ledger_batch *b;
      snprintf(name, sizeof name, "c%d_%zu", c, i);
      t[0] = intkey(s, ORDO_LEDGER_INTKEY_SET, name, (unsigned)i);
      b = batch(s, t, 1);
      snprintf(cs[c].ids[i], sizeof cs[c].ids[i], "%s", ordo_ledger_batch_id(b));
      cs[c].body[i] = encode(&b, 1, &cs[c].len[i]);
      ordo_ledger_batch_free(b);
    }
  }
  for (c = 0; c < NCLIENTS; c++)
    assert_int_equal(pthread_create(&th[c], NULL, client_main, &cs[c]), 0);
  for (c = 0; c < NCLIENTS; c++) {
    assert_int_equal(pthread_join(th[c], NULL), 0);
    assert_int_equal(cs[c].failures, 0);
  }
  for (c = 0; c < NCLIENTS; c++)
    for (i = 0; i < PER_CLIENT; i++)
      assert_final(cs[c].port, cs[c].ids[i], "COMMITTED");
  /* Each batch id in exactly one block. */
  assert_int_equal(http(cs[0].port, "GET", "/blocks", NULL, NULL, 0, &j), 200);
  data = json_object_get(j, "data");
  for (i = 0; i < json_array_size(data); i++) {
    json_t *ids = json_object_get(json_object_get(json_array_get(data, i), "header"),
                                  "batch_ids");
    for (k = 0; k < json_array_size(ids); k++) {
      const char *id = json_string_value(json_array_get(ids, k));
      int hits = 0;
      for (c = 0; c < NCLIENTS; c++) {
        size_t m;
        for (m = 0; m < PER_CLIENT; m++)
          hits += strcmp(cs[c].ids[m], id) == 0;
      }
      assert_int_equal(hits, 1);
      seen++;
    }
  }
  assert_int_equal(seen, NCLIENTS * PER_CLIENT);
  json_decref(j);
  assert_int_equal(intkey_value(cs[0].port, "c3_9"), 9);
  for (c = 0; c < NCLIENTS; c++)
    for (i = 0; i < PER_CLIENT; i++)
      free(cs[c].body[i]);
  ordo_ledger_signer_free(s);
  assert_int_equal(ordo_node_stop(n), ORDO_OK);
  support_rmdir_all(dir);
}

/* ------------------------------------------------------------------------ */
/* The seeded block order, without sockets                                   */
/* ------------------------------------------------------------------------ */

static void test_block_order_is_a_permutation(void **st) {
  size_t perm[40], again[40], n, i, moved = 0;
  (void)st;
  for (n = 0; n <= 40; n++) {
    unsigned char seen[40] = {0};
    ordo_node_block_order(7, 3, n, perm);
    ordo_node_block_order(7, 3, n, again);
    for (i = 0; i < n; i++) {
      assert_true(perm[i] < n);
      assert_false(seen[perm[i]]);
      seen[perm[i]] = 1;
      assert_int_equal(perm[i], again[i]);
    }
  }
  /* Not submission order, and different across seeds and blocks. */
  ordo_node_block_order(7, 3, 40, perm);
  for (i = 0; i < 40; i++)
    moved += perm[i] != i;
  assert_true(moved > 20);
  ordo_node_block_order(8, 3, 40, again);
  assert_memory_not_equal(perm, again, sizeof perm);
  ordo_node_block_order(7, 4, 40, again);
  assert_memory_not_equal(perm, again, sizeof perm);
}

/* A map state for the families, to predict what the node must hold. */
typedef struct kv {
  char addr[8][ORDO_LEDGER_ADDRESS_SIZE];
  unsigned char val[8][64];
  size_t len[8], n;
} kv;

static int kv_get(void *ud, const char *a, const unsigned char **v, size_t *l) {
  kv *m = ud;
  size_t i;
  for (i = 0; i < m->n; i++)
    if (strcmp(m->addr[i], a) == 0) {
      *v = m->val[i];
      *l = m->len[i];
      return ORDO_OK;
    }
  return ORDO_E_NOT_FOUND;
}

static int kv_set(void *ud, const char *a, const unsigned char *v, size_t l) {
  kv *m = ud;
  size_t i;
  assert_true(l <= sizeof m->val[0]);
  for (i = 0; i < m->n && strcmp(m->addr[i], a) != 0; i++)
    ;
  if (i == m->n) {
    assert_true(m->n < 8);
    snprintf(m->addr[m->n++], ORDO_LEDGER_ADDRESS_SIZE, "%s", a);
  }
  memcpy(m->val[i], v, l);
  m->len[i] = l;
  return ORDO_OK;
}

static void apply_rw(kv *m, const ordo_ledger_batch *b) {
  ordo_ledger_state state = {kv_get, kv_set, m};
  const ordo_ledger_txn *t = ordo_ledger_batch_txn(b, 0);
  size_t plen;
  const unsigned char *pl = ordo_ledger_txn_payload(t, &plen);
  assert_int_equal(ordo_ledger_rw_apply(ordo_ledger_txn_id(t), pl, plen, &state),
                   ORDO_OK);
}

/* One request through ordo_node_handle; the JSON answer parsed. */
static int handle(ordo_node *n, const char *method, const char *path,
                  const char *query, const char *ctype, const void *body,
                  size_t len, json_t **out) {
  ordo_node_request r = {method, path, query, ctype, NULL, body, len};
  int status = 0;
  char *json = NULL;
  assert_int_equal(ordo_node_handle(n, &r, &status, &json), ORDO_OK);
  *out = json_loads(json, 0, NULL);
  assert_non_null(*out);
  free(json);
  return status;
}

static void test_seeded_order(void **st) {
  ordo_ledger_signer *s = signer();
  ordo_ledger_txn *tx[1] = {rw(s, "hot")}, *ty[1] = {rw(s, "hot")};
  ordo_ledger_batch *x = batch(s, tx, 1), *y = batch(s, ty, 1);
  ordo_ledger_batch *both[2] = {x, y};
  char addr[ORDO_LEDGER_ADDRESS_SIZE], path[128];
  int firsts[2] = {0, 0};
  size_t len;
  unsigned char *body = encode(both, 2, &len);
  uint64_t seed;
  (void)st;

  assert_int_equal(ordo_ledger_rw_address("hot", addr), ORDO_OK);
  snprintf(path, sizeof path, "/state/%s", addr);
  for (seed = 0; seed < 16; seed++) {
    char *dir = tmpdir();
    ordo_node *n = start(dir, -1, 0, seed, 0);
    uint64_t height = 0;
    size_t perm[2], dlen;
    kv want = {.n = 0};
    unsigned char got[64];
    json_t *j;
    const char *b64;

    assert_int_equal(handle(n, "POST", "/batches", NULL,
                            "application/octet-stream", body, len, &j),
                     202);
    json_decref(j);
    assert_int_equal(ordo_node_cut_block(n, &height), ORDO_OK);
    assert_int_equal(height, 1);
    /* The node applied them in the order the seed says. */
    ordo_node_block_order(seed, height, 2, perm);
    apply_rw(&want, both[perm[0]]);
    apply_rw(&want, both[perm[1]]);
    firsts[perm[0]]++;
    assert_int_equal(handle(n, "GET", path, NULL, NULL, NULL, 0, &j), 200);
    b64 = json_string_value(json_object_get(j, "data"));
    assert_int_equal(sodium_base642bin(got, sizeof got, b64, strlen(b64), NULL,
                                       &dlen, NULL,
                                       sodium_base64_VARIANT_ORIGINAL),
                     0);
    assert_int_equal(dlen, want.len[0]);
    assert_memory_equal(got, want.val[0], dlen);
    json_decref(j);
    assert_int_equal(ordo_node_stop(n), ORDO_OK);
    support_rmdir_all(dir);
  }
  /* Both orders happen: the order is the seed's, not submission order. */
  assert_true(firsts[0] > 0);
  assert_true(firsts[1] > 0);

  free(body);
  ordo_ledger_batch_free(x);
  ordo_ledger_batch_free(y);
  ordo_ledger_signer_free(s);
}

/* Handler corner cases without sockets: queries, ids, methods. */
static void test_handle_direct(void **st) {
  char *dir = tmpdir();
  ordo_node *n = start(dir, -1, 0, 0, 0);
  ordo_node_request r = {"GET", "/blocks", NULL, NULL, NULL, NULL, 0};
  int status;
  char *json;
  json_t *j;
  (void)st;

  assert_int_equal(ordo_node_cut_block(n, NULL), ORDO_OK); /* nothing: no block */
  assert_int_equal(handle(n, "GET", "/blocks", "limit=5&start=0", NULL, NULL, 0, &j), 200);
  assert_int_equal(json_array_size(json_object_get(j, "data")), 1);
  json_decref(j);
  {
    /* The query is percent-decoded before the id is checked. */
    char q[200], want[ORDO_LEDGER_ID_SIZE];
    memset(want, 'b', ORDO_LEDGER_ID_LEN);
    want[0] = 'a';
    want[ORDO_LEDGER_ID_LEN] = '\0';
    snprintf(q, sizeof q, "id=%%61%s&wait=x%%", want + 1);
    assert_int_equal(handle(n, "GET", "/batch_statuses", q, NULL, NULL, 0, &j),
                     200);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(j, "data"), 0), "id")),
                        want);
    json_decref(j);
  }
  assert_int_equal(handle(n, "GET", "/batch_statuses", "id=%61%62c", NULL, NULL,
                          0, &j),
                   400);
  assert_int_equal(error_code(j), 60);
  assert_int_equal(handle(n, "DELETE", "/state", NULL, NULL, NULL, 0, &j), 405);
  json_decref(j);
  assert_int_equal(handle(n, "GET", "/state", "limit=1001", NULL, NULL, 0, &j), 400);
  json_decref(j);
  assert_int_equal(handle(n, "GET", "/state", "", NULL, NULL, 0, &j), 200);
  assert_int_equal(json_array_size(json_object_get(j, "data")), 0);
  json_decref(j);
  assert_int_equal(ordo_node_handle(NULL, &r, &status, &json), ORDO_E_INVAL);
  assert_int_equal(ordo_node_stop(n), ORDO_OK);
  support_rmdir_all(dir);
}

/* ------------------------------------------------------------------------ */
/* As a validator and its REST API answer                                    */
/* ------------------------------------------------------------------------ */

/* An intkey txn whose header lists ndeps dependencies. */
static ordo_ledger_txn *intkey_deps(const ordo_ledger_signer *s,
                                    ordo_ledger_intkey_verb verb,
                                    const char *name, unsigned value,
                                    const char *const *deps, size_t ndeps) {
  char addr[ORDO_LEDGER_ADDRESS_SIZE];
  const char *addrs[1] = {addr};
  unsigned char *pl = NULL;
  size_t plen = 0;
  ordo_ledger_txn_spec spec = {0};
  ordo_ledger_txn *t = NULL;
  assert_int_equal(ordo_ledger_intkey_address(name, addr), ORDO_OK);
  assert_int_equal(ordo_ledger_intkey_encode(verb, name, value, &pl, &plen),
                   ORDO_OK);
  spec.family_name = ORDO_LEDGER_INTKEY_FAMILY;
  spec.family_version = "1.0";
  spec.inputs = addrs;
  spec.ninputs = 1;
  spec.outputs = addrs;
  spec.noutputs = 1;
  spec.dependencies = deps;
  spec.ndependencies = ndeps;
  spec.payload = pl;
  spec.payload_len = plen;
  assert_int_equal(ordo_ledger_txn_build(s, NULL, &spec, &t), ORDO_OK);
  free(pl);
  return t;
}

/* A batch of the n txns, which the caller keeps (so one txn can go into
 * several batches). */
static ordo_ledger_batch *batch_of(const ordo_ledger_signer *s,
                                   ordo_ledger_txn *const *t, size_t n) {
  ordo_ledger_batch *b = NULL;
  assert_int_equal(ordo_ledger_batch_build(s, t, n, &b), ORDO_OK);
  return b;
}

static int post_direct(ordo_node *n, ordo_ledger_batch *const *b, size_t nb,
                       json_t **out) {
  size_t len;
  unsigned char *body = encode(b, nb, &len);
  int st = handle(n, "POST", "/batches", NULL, "application/octet-stream",
                  body, len, out);
  free(body);
  return st;
}

/* The status of id through ordo_node_handle; *msg (when not NULL) the
 * first invalid transaction's message, or NULL. */
static char *status_direct(ordo_node *n, const char *id, char **msg) {
  char q[256];
  json_t *j, *e, *inv;
  char *s;
  snprintf(q, sizeof q, "id=%s", id);
  assert_int_equal(handle(n, "GET", "/batch_statuses", q, NULL, NULL, 0, &j),
                   200);
  e = json_array_get(json_object_get(j, "data"), 0);
  s = strdup(json_string_value(json_object_get(e, "status")));
  inv = json_array_get(json_object_get(e, "invalid_transactions"), 0);
  if (msg != NULL)
    *msg = inv != NULL
               ? strdup(json_string_value(json_object_get(inv, "message")))
               : NULL;
  json_decref(j);
  return s;
}

static void assert_status(ordo_node *n, const char *id, const char *want) {
  char *s = status_direct(n, id, NULL);
  assert_string_equal(s, want);
  free(s);
}

/* Cut blocks (at most max) until id is not PENDING; its status. */
static char *cut_until_final(ordo_node *n, const char *id, int max,
                             char **msg) {
  int i;
  for (i = 0; i < max; i++) {
    char *s;
    assert_int_equal(ordo_node_cut_block(n, NULL), ORDO_OK);
    s = status_direct(n, id, msg);
    if (strcmp(s, "PENDING") != 0 || i + 1 == max)
      return s;
    free(s);
    if (msg != NULL)
      free(*msg);
  }
  return NULL;
}

/* The block_num holding batch id (and its index there in *pos), or -1. */
static long long block_of(ordo_node *n, const char *id, size_t *pos) {
  json_t *j, *data;
  size_t i, k;
  long long num = -1;
  assert_int_equal(handle(n, "GET", "/blocks", NULL, NULL, NULL, 0, &j), 200);
  data = json_object_get(j, "data");
  for (i = 0; i < json_array_size(data); i++) {
    json_t *h = json_object_get(json_array_get(data, i), "header");
    json_t *ids = json_object_get(h, "batch_ids");
    for (k = 0; k < json_array_size(ids); k++)
      if (strcmp(json_string_value(json_array_get(ids, k)), id) == 0) {
        num = atoll(json_string_value(json_object_get(h, "block_num")));
        if (pos != NULL)
          *pos = k;
      }
  }
  json_decref(j);
  return num;
}

/* {"error": {"code": code, "title": title}} (frees j). */
static void assert_error(json_t *j, long code, const char *title) {
  json_t *e = json_object_get(j, "error");
  assert_non_null(e);
  assert_int_equal(json_integer_value(json_object_get(e, "code")), code);
  assert_string_equal(json_string_value(json_object_get(e, "title")), title);
  json_decref(j);
}

static int is_lower_hex(const char *s, size_t n) {
  size_t i;
  for (i = 0; s[i] != '\0'; i++)
    if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
      return 0;
  return i == n;
}

/* Batch and block ids are 128 lower-case hex digits: anything else in
 * ?id=, the POST array, /blocks/{id}, start= or head= fails the whole
 * request with 400/60, as Sawtooth's REST API. */
static void test_ids_are_128_hex(void **st) {
  char *dir = tmpdir(), good[ORDO_LEDGER_ID_SIZE], upper[ORDO_LEDGER_ID_SIZE];
  char q[600], body[600], head[ORDO_LEDGER_ID_SIZE];
  ordo_node *n = start(dir, -1, 0, 0, 0);
  const char *bad[4];
  json_t *j;
  size_t i;
  (void)st;

  memset(good, 'a', ORDO_LEDGER_ID_LEN);
  good[ORDO_LEDGER_ID_LEN] = '\0';
  memset(upper, 'A', ORDO_LEDGER_ID_LEN);
  upper[ORDO_LEDGER_ID_LEN] = '\0';
  bad[0] = "abc";
  bad[1] = upper;
  bad[2] = good + 1; /* 127 digits */
  bad[3] = "";
  for (i = 0; i < 4; i++) {
    snprintf(q, sizeof q, "id=%s,%s", good, bad[i]);
    assert_int_equal(handle(n, "GET", "/batch_statuses", q, NULL, NULL, 0, &j),
                     400);
    assert_non_null(strstr(json_string_value(json_object_get(
                               json_object_get(j, "error"), "message")),
                           "Blockchain items are identified by 128 character "
                           "hex-strings"));
    assert_error(j, 60, "Invalid Resource Id");
    snprintf(body, sizeof body, "[\"%s\",\"%s\"]", good, bad[i]);
    assert_int_equal(handle(n, "POST", "/batch_statuses", NULL,
                            "application/json", body, strlen(body), &j),
                     400);
    assert_error(j, 60, "Invalid Resource Id");
  }
  snprintf(q, sizeof q, "/blocks/%s", upper);
  assert_int_equal(handle(n, "GET", q, NULL, NULL, NULL, 0, &j), 400);
  assert_error(j, 60, "Invalid Resource Id");
  assert_int_equal(handle(n, "GET", "/blocks", "start=xyz", NULL, NULL, 0, &j),
                   400);
  assert_error(j, 60, "Invalid Resource Id");
  assert_int_equal(handle(n, "GET", "/blocks", "head=abc", NULL, NULL, 0, &j),
                   400);
  assert_error(j, 60, "Invalid Resource Id");
  assert_int_equal(handle(n, "GET", "/state", "head=abc", NULL, NULL, 0, &j),
                   400);
  assert_error(j, 60, "Invalid Resource Id");

  /* The genesis block's id is one of them, and can be fetched by it. */
  assert_int_equal(handle(n, "GET", "/blocks", NULL, NULL, NULL, 0, &j), 200);
  snprintf(head, sizeof head, "%s",
           json_string_value(json_object_get(json_array_get(
                                                 json_object_get(j, "data"), 0),
                                             "header_signature")));
  json_decref(j);
  assert_true(is_lower_hex(head, ORDO_LEDGER_ID_LEN));
  snprintf(q, sizeof q, "/blocks/%s", head);
  assert_int_equal(handle(n, "GET", q, NULL, NULL, NULL, 0, &j), 200);
  assert_string_equal(json_string_value(json_object_get(
                          json_object_get(j, "data"), "header_signature")),
                      head);
  json_decref(j);
  /* Well-formed but unknown: 404, Block Not Found / Head Not Found. */
  snprintf(q, sizeof q, "/blocks/%s", good);
  assert_int_equal(handle(n, "GET", q, NULL, NULL, NULL, 0, &j), 404);
  assert_error(j, 70, "Block Not Found");
  snprintf(q, sizeof q, "head=%s", good);
  assert_int_equal(handle(n, "GET", "/blocks", q, NULL, NULL, 0, &j), 404);
  assert_error(j, 50, "Head Not Found");
  assert_int_equal(handle(n, "GET", "/state", q, NULL, NULL, 0, &j), 404);
  assert_error(j, 50, "Head Not Found");

  assert_int_equal(ordo_node_stop(n), ORDO_OK);
  support_rmdir_all(dir);
}

/* limit= outside 1..1000 (or not a number) is 400/53 on /state and
 * /blocks. */
static void test_limit_out_of_range(void **st) {
  char *dir = tmpdir();
  ordo_node *n = start(dir, -1, 0, 0, 0);
  const char *paths[2] = {"/state", "/blocks"};
  const char *bad[4] = {"limit=0", "limit=1001", "limit=x", "limit=-1"};
  json_t *j;
  size_t p, i;
  (void)st;

  for (p = 0; p < 2; p++) {
    for (i = 0; i < 4; i++) {
      assert_int_equal(handle(n, "GET", paths[p], bad[i], NULL, NULL, 0, &j),
                       400);
      assert_int_equal(error_code(j), 53);
    }
    assert_int_equal(handle(n, "GET", paths[p], "limit=1", NULL, NULL, 0, &j),
                     200);
    json_decref(j);
    assert_int_equal(
        handle(n, "GET", paths[p], "limit=1000", NULL, NULL, 0, &j), 200);
    json_decref(j);
  }
  assert_int_equal(ordo_node_stop(n), ORDO_OK);
  support_rmdir_all(dir);
}

/* The query of a paging.next URL ("http://host/path?QUERY"). */
static const char *next_query(json_t *page) {
  const char *next =
      json_string_value(json_object_get(json_object_get(page, "paging"), "next"));
  const char *q = next != NULL ? strchr(next, '?') : NULL;
  return q != NULL ? q + 1 : NULL;
}

/* The state data (base64) at name's address, as of head (NULL: now). */
static char *state_b64(ordo_node *n, const char *name, const char *head) {
  char addr[ORDO_LEDGER_ADDRESS_SIZE], path[128], q[200];
  json_t *j;
  char *out;
  assert_int_equal(ordo_ledger_intkey_address(name, addr), ORDO_OK);
  snprintf(path, sizeof path, "/state/%s", addr);
  snprintf(q, sizeof q, "head=%s", head != NULL ? head : "");
  assert_int_equal(handle(n, "GET", path, head != NULL ? q : NULL, NULL, NULL,
                          0, &j),
                   200);
  out = strdup(json_string_value(json_object_get(j, "data")));
  json_decref(j);
  return out;
}

/* paging.next (and link) pin head=, and a read with head= sees the state
 * of that block even after later blocks changed it. */
static void test_paging_pins_head(void **st) {
  char *dir = tmpdir(), head1[ORDO_LEDGER_ID_SIZE], head2[ORDO_LEDGER_ID_SIZE];
  char want[200], *old_a, *now_a, *again;
  ordo_node *n = start(dir, -1, 0, 4, 0);
  ordo_ledger_signer *s = signer();
  ordo_ledger_txn *t1[3] = {intkey(s, ORDO_LEDGER_INTKEY_SET, "pa", 1),
                            intkey(s, ORDO_LEDGER_INTKEY_SET, "pb", 2),
                            intkey(s, ORDO_LEDGER_INTKEY_SET, "pc", 3)};
  ordo_ledger_txn *t2[2] = {intkey(s, ORDO_LEDGER_INTKEY_INC, "pa", 10),
                            intkey(s, ORDO_LEDGER_INTKEY_SET, "pd", 4)};
  ordo_ledger_txn *t3[1] = {intkey(s, ORDO_LEDGER_INTKEY_SET, "pe", 5)};
  ordo_ledger_batch *b1 = batch(s, t1, 3), *b2 = batch(s, t2, 2),
                    *b3 = batch(s, t3, 1);
  char addr_d[ORDO_LEDGER_ADDRESS_SIZE], *q;
  json_t *j, *page;
  size_t seen = 0, i;
  uint64_t h;
  (void)st;

  assert_int_equal(post_direct(n, &b1, 1, &j), 202);
  json_decref(j);
  assert_int_equal(ordo_node_cut_block(n, &h), ORDO_OK);
  assert_int_equal(h, 1);
  assert_int_equal(
      handle(n, "GET", "/state", "address=1cf126&limit=1", NULL, NULL, 0, &page),
      200);
  snprintf(head1, sizeof head1, "%s",
           json_string_value(json_object_get(page, "head")));
  assert_true(is_lower_hex(head1, ORDO_LEDGER_ID_LEN));
  snprintf(want, sizeof want, "head=%s", head1);
  assert_non_null(strstr(json_string_value(json_object_get(
                             json_object_get(page, "paging"), "next")),
                         want));
  assert_non_null(strstr(json_string_value(json_object_get(page, "link")), want));
  seen = json_array_size(json_object_get(page, "data"));

  /* A later block changes pa and adds pd. */
  assert_int_equal(post_direct(n, &b2, 1, &j), 202);
  json_decref(j);
  assert_int_equal(ordo_node_cut_block(n, &h), ORDO_OK);
  assert_int_equal(h, 2);
  assert_status(n, ordo_ledger_batch_id(b2), "COMMITTED");

  /* The next pages still read block 1: pa, pb, pc and no pd. */
  assert_int_equal(ordo_ledger_intkey_address("pd", addr_d), ORDO_OK);
  while ((q = (char *)next_query(page)) != NULL) {
    char *copy = strdup(q);
    json_decref(page);
    assert_int_equal(handle(n, "GET", "/state", copy, NULL, NULL, 0, &page),
                     200);
    free(copy);
    assert_string_equal(json_string_value(json_object_get(page, "head")),
                        head1);
    for (i = 0; i < json_array_size(json_object_get(page, "data")); i++)
      assert_string_not_equal(
          json_string_value(json_object_get(
              json_array_get(json_object_get(page, "data"), i), "address")),
          addr_d);
    seen += json_array_size(json_object_get(page, "data"));
  }
  json_decref(page);
  assert_int_equal(seen, 3);
  old_a = state_b64(n, "pa", head1);
  now_a = state_b64(n, "pa", NULL);
  assert_string_not_equal(old_a, now_a);
  again = state_b64(n, "pa", head1);
  assert_string_equal(old_a, again);
  free(old_a);
  free(now_a);
  free(again);

  /* /blocks: next pins head too, in Sawtooth's 0x... start form. */
  assert_int_equal(handle(n, "GET", "/blocks", "limit=1", NULL, NULL, 0, &page),
                   200);
  snprintf(head2, sizeof head2, "%s",
           json_string_value(json_object_get(page, "head")));
  snprintf(want, sizeof want, "head=%s", head2);
  assert_non_null(strstr(json_string_value(json_object_get(
                             json_object_get(page, "paging"), "next")),
                         want));
  assert_non_null(strstr(json_string_value(json_object_get(
                             json_object_get(page, "paging"), "next")),
                         "start=0x0000000000000001"));
  q = strdup(next_query(page));
  json_decref(page);
  assert_int_equal(post_direct(n, &b3, 1, &j), 202);
  json_decref(j);
  assert_int_equal(ordo_node_cut_block(n, &h), ORDO_OK);
  assert_int_equal(h, 3);
  assert_int_equal(handle(n, "GET", "/blocks", q, NULL, NULL, 0, &page), 200);
  free(q);
  assert_string_equal(json_string_value(json_object_get(page, "head")), head2);
  assert_string_equal(
      json_string_value(json_object_get(
          json_object_get(json_array_get(json_object_get(page, "data"), 0),
                          "header"),
          "block_num")),
      "1");
  json_decref(page);
  /* head= alone: the chain as it was at that block. */
  snprintf(want, sizeof want, "head=%s", head1);
  assert_int_equal(handle(n, "GET", "/blocks", want, NULL, NULL, 0, &page), 200);
  assert_int_equal(json_array_size(json_object_get(page, "data")), 2);
  json_decref(page);

  ordo_ledger_batch_free(b1);
  ordo_ledger_batch_free(b2);
  ordo_ledger_batch_free(b3);
  ordo_ledger_signer_free(s);
  assert_int_equal(ordo_node_stop(n), ORDO_OK);
  support_rmdir_all(dir);
}

/* A batch whose transaction depends on one not yet committed stays PENDING
 * across blocks and commits once the dependency has; earlier transactions
 * of its own batch count; a dependency that ends INVALID makes it INVALID. */
static void test_dependencies(void **st) {
  char *dir = tmpdir(), *stt, *msg;
  ordo_node *n = start(dir, -1, 0, 6, 0);
  ordo_ledger_signer *s = signer();
  ordo_ledger_txn *ta = intkey(s, ORDO_LEDGER_INTKEY_SET, "dep_a", 1);
  const char *da[1] = {ordo_ledger_txn_id(ta)};
  ordo_ledger_txn *tb = intkey_deps(s, ORDO_LEDGER_INTKEY_SET, "dep_b", 2, da, 1);
  ordo_ledger_batch *a = batch_of(s, &ta, 1), *b = batch_of(s, &tb, 1);
  ordo_ledger_txn *c1 = intkey(s, ORDO_LEDGER_INTKEY_SET, "dep_c1", 1), *c2;
  ordo_ledger_txn *d1, *d2, *te, *tf;
  ordo_ledger_batch *c, *d, *e, *f;
  long long ba, bb;
  size_t pa = 0, pb = 0;
  json_t *j;
  int i;
  (void)st;

  /* B alone: its dependency is nowhere, so it waits, block after block. */
  assert_int_equal(post_direct(n, &b, 1, &j), 202);
  json_decref(j);
  for (i = 0; i < 3; i++) {
    assert_int_equal(ordo_node_cut_block(n, NULL), ORDO_OK);
    assert_status(n, ordo_ledger_batch_id(b), "PENDING");
  }
  /* Then A: B commits in A's block (after it) or a later one. */
  assert_int_equal(post_direct(n, &a, 1, &j), 202);
  json_decref(j);
  stt = cut_until_final(n, ordo_ledger_batch_id(b), 3, NULL);
  assert_string_equal(stt, "COMMITTED");
  free(stt);
  assert_status(n, ordo_ledger_batch_id(a), "COMMITTED");
  ba = block_of(n, ordo_ledger_batch_id(a), &pa);
  bb = block_of(n, ordo_ledger_batch_id(b), &pb);
  assert_true(ba > 0);
  assert_true(bb > ba || (bb == ba && pb > pa));

  /* An earlier transaction of the same batch counts. */
  {
    const char *dc[1] = {ordo_ledger_txn_id(c1)};
    ordo_ledger_txn *tc[2];
    c2 = intkey_deps(s, ORDO_LEDGER_INTKEY_SET, "dep_c2", 2, dc, 1);
    tc[0] = c1;
    tc[1] = c2;
    c = batch_of(s, tc, 2);
  }
  assert_int_equal(post_direct(n, &c, 1, &j), 202);
  json_decref(j);
  assert_int_equal(ordo_node_cut_block(n, NULL), ORDO_OK);
  assert_status(n, ordo_ledger_batch_id(c), "COMMITTED");

  /* A later one does not: the batch waits, as Sawtooth holds it. */
  {
    ordo_ledger_txn *td[2];
    const char *dd[1];
    d2 = intkey(s, ORDO_LEDGER_INTKEY_SET, "dep_d2", 1);
    dd[0] = ordo_ledger_txn_id(d2);
    d1 = intkey_deps(s, ORDO_LEDGER_INTKEY_SET, "dep_d1", 1, dd, 1);
    td[0] = d1;
    td[1] = d2;
    d = batch_of(s, td, 2);
  }
  assert_int_equal(post_direct(n, &d, 1, &j), 202);
  json_decref(j);
  assert_int_equal(ordo_node_cut_block(n, NULL), ORDO_OK);
  assert_int_equal(ordo_node_cut_block(n, NULL), ORDO_OK);
  assert_status(n, ordo_ledger_batch_id(d), "PENDING");

  /* E is INVALID (inc of a missing name); F depends on it: INVALID too,
   * with a message naming the dependency. */
  te = intkey(s, ORDO_LEDGER_INTKEY_INC, "dep_missing", 1);
  {
    const char *de[1] = {ordo_ledger_txn_id(te)};
    tf = intkey_deps(s, ORDO_LEDGER_INTKEY_SET, "dep_f", 1, de, 1);
  }
  e = batch_of(s, &te, 1);
  f = batch_of(s, &tf, 1);
  {
    ordo_ledger_batch *ef[2] = {e, f};
    assert_int_equal(post_direct(n, ef, 2, &j), 202);
    json_decref(j);
  }
  stt = cut_until_final(n, ordo_ledger_batch_id(f), 3, &msg);
  assert_string_equal(stt, "INVALID");
  assert_non_null(msg);
  assert_non_null(strstr(msg, "dependency"));
  assert_non_null(strstr(msg, ordo_ledger_txn_id(te)));
  free(stt);
  free(msg);
  assert_status(n, ordo_ledger_batch_id(e), "INVALID");
  assert_int_equal(block_of(n, ordo_ledger_batch_id(f), NULL), -1);

  ordo_ledger_txn_free(ta);
  ordo_ledger_txn_free(tb);
  ordo_ledger_txn_free(c1);
  ordo_ledger_txn_free(c2);
  ordo_ledger_txn_free(d1);
  ordo_ledger_txn_free(d2);
  ordo_ledger_txn_free(te);
  ordo_ledger_txn_free(tf);
  ordo_ledger_batch_free(a);
  ordo_ledger_batch_free(b);
  ordo_ledger_batch_free(c);
  ordo_ledger_batch_free(d);
  ordo_ledger_batch_free(e);
  ordo_ledger_batch_free(f);
  ordo_ledger_signer_free(s);
  assert_int_equal(ordo_node_stop(n), ORDO_OK);
  support_rmdir_all(dir);
}

/* The state at name's address over ordo_node_handle: 1 present, 0 not. */
static int state_present(ordo_node *n, const char *name) {
  char addr[ORDO_LEDGER_ADDRESS_SIZE], path[128];
  json_t *j;
  int st;
  assert_int_equal(ordo_ledger_intkey_address(name, addr), ORDO_OK);
  snprintf(path, sizeof path, "/state/%s", addr);
  st = handle(n, "GET", path, NULL, NULL, NULL, 0, &j);
  json_decref(j);
  assert_true(st == 200 || st == 404);
  return st == 200;
}

/* A transaction id already committed (earlier block, earlier in the same
 * block, or twice in one batch) makes the batch holding it again INVALID,
 * and none of that batch's writes stay. */
static void test_duplicate_txn(void **st) {
  char *dir = tmpdir(), *stt, *msg;
  ordo_node *n = start(dir, -1, 0, 8, 0);
  ordo_ledger_signer *s = signer();
  ordo_ledger_txn *t = intkey(s, ORDO_LEDGER_INTKEY_SET, "dup", 1);
  ordo_ledger_txn *u = intkey(s, ORDO_LEDGER_INTKEY_SET, "dup_other", 1);
  ordo_ledger_txn *t3 = intkey(s, ORDO_LEDGER_INTKEY_SET, "dup3", 1);
  ordo_ledger_txn *u3 = intkey(s, ORDO_LEDGER_INTKEY_SET, "dup3_other", 1);
  ordo_ledger_txn *t4 = intkey(s, ORDO_LEDGER_INTKEY_SET, "dup4", 1);
  ordo_ledger_txn *tu[2] = {t, u}, *tu3[2] = {t3, u3}, *tt4[2] = {t4, t4};
  ordo_ledger_batch *x = batch_of(s, &t, 1), *y = batch_of(s, tu, 2);
  ordo_ledger_batch *x3 = batch_of(s, &t3, 1), *y3 = batch_of(s, tu3, 2);
  ordo_ledger_batch *z = batch_of(s, tt4, 2);
  char *s1, *s2;
  json_t *j;
  (void)st;

  /* In a later block. */
  assert_int_equal(post_direct(n, &x, 1, &j), 202);
  json_decref(j);
  assert_int_equal(ordo_node_cut_block(n, NULL), ORDO_OK);
  assert_status(n, ordo_ledger_batch_id(x), "COMMITTED");
  assert_int_equal(post_direct(n, &y, 1, &j), 202);
  json_decref(j);
  assert_int_equal(ordo_node_cut_block(n, NULL), ORDO_OK);
  stt = status_direct(n, ordo_ledger_batch_id(y), &msg);
  assert_string_equal(stt, "INVALID");
  assert_non_null(strstr(msg, "duplicate transaction"));
  free(stt);
  free(msg);
  assert_false(state_present(n, "dup_other"));

  /* Twice in one block: whichever comes first commits. */
  {
    ordo_ledger_batch *both[2] = {x3, y3};
    assert_int_equal(post_direct(n, both, 2, &j), 202);
    json_decref(j);
  }
  assert_int_equal(ordo_node_cut_block(n, NULL), ORDO_OK);
  s1 = status_direct(n, ordo_ledger_batch_id(x3), NULL);
  s2 = status_direct(n, ordo_ledger_batch_id(y3), &msg);
  assert_true((strcmp(s1, "COMMITTED") == 0) != (strcmp(s2, "COMMITTED") == 0));
  assert_true(strcmp(s1, "INVALID") == 0 || strcmp(s2, "INVALID") == 0);
  free(s1);
  free(s2);
  free(msg);

  /* Twice in one batch. */
  assert_int_equal(post_direct(n, &z, 1, &j), 202);
  json_decref(j);
  assert_int_equal(ordo_node_cut_block(n, NULL), ORDO_OK);
  stt = status_direct(n, ordo_ledger_batch_id(z), &msg);
  assert_string_equal(stt, "INVALID");
  assert_non_null(strstr(msg, "duplicate transaction"));
  free(stt);
  free(msg);
  assert_false(state_present(n, "dup4"));

  ordo_ledger_txn_free(t);
  ordo_ledger_txn_free(u);
  ordo_ledger_txn_free(t3);
  ordo_ledger_txn_free(u3);
  ordo_ledger_txn_free(t4);
  ordo_ledger_batch_free(x);
  ordo_ledger_batch_free(y);
  ordo_ledger_batch_free(x3);
  ordo_ledger_batch_free(y3);
  ordo_ledger_batch_free(z);
  ordo_ledger_signer_free(s);
  assert_int_equal(ordo_node_stop(n), ORDO_OK);
  support_rmdir_all(dir);
}

/* sawtooth-sdk-python's intkey takes the empty name. */
static void test_empty_intkey_name_commits(void **st) {
  char *dir = tmpdir();
  ordo_node *n = start(dir, 0, 0, 2, 0);
  int port = ordo_node_port(n);
  ordo_ledger_signer *s = signer();
  ordo_ledger_txn *t[2] = {intkey(s, ORDO_LEDGER_INTKEY_SET, "", 5),
                           intkey(s, ORDO_LEDGER_INTKEY_INC, "", 1)};
  ordo_ledger_batch *b = batch(s, t, 2);
  json_t *j;
  (void)st;

  assert_int_equal(post_batches(port, &b, 1, &j), 202);
  json_decref(j);
  assert_int_equal(ordo_node_cut_block(n, NULL), ORDO_OK);
  assert_status(n, ordo_ledger_batch_id(b), "COMMITTED");
  assert_int_equal(intkey_value(port, ""), 6);

  ordo_ledger_batch_free(b);
  ordo_ledger_signer_free(s);
  assert_int_equal(ordo_node_stop(n), ORDO_OK);
  support_rmdir_all(dir);
}

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  assert_int_equal(fputs(text, f) >= 0, 1);
  assert_int_equal(fclose(f), 0);
}

/* With an allow-list, a BatchList holding one batch of another signer is
 * refused whole (400/30, not naming it) and nothing of it is taken. */
static void test_allow_list(void **st) {
  char *dir = tmpdir(), file[512], text[512], upper[ORDO_LEDGER_PUBKEY_SIZE];
  ordo_ledger_signer *a = signer(), *other = NULL;
  ordo_ledger_txn *t1[1], *t2[1], *t3[1], *t4[1];
  ordo_ledger_batch *good1, *good2, *bad, *good3;
  const char *keys[1] = {ordo_ledger_signer_public_key(a)};
  ordo_node_options o;
  ordo_node_stats stats;
  ordo_node *n = NULL;
  json_t *j;
  size_t i;
  (void)st;

  assert_int_equal(ordo_ledger_signer_new(NULL, &other), ORDO_OK);
  t1[0] = intkey(a, ORDO_LEDGER_INTKEY_SET, "al1", 1);
  t2[0] = intkey(other, ORDO_LEDGER_INTKEY_SET, "al2", 1);
  t3[0] = intkey(a, ORDO_LEDGER_INTKEY_SET, "al3", 1);
  t4[0] = intkey(a, ORDO_LEDGER_INTKEY_SET, "al4", 1);
  good1 = batch(a, t1, 1);
  bad = batch(other, t2, 1);
  good2 = batch(a, t3, 1);
  good3 = batch(a, t4, 1);

  ordo_node_options_init(&o);
  o.data_dir = dir;
  o.port = -1;
  o.block_ms = 0;
  o.allow_signers = keys;
  o.nallow_signers = 1;
  assert_int_equal(ordo_node_start(&o, &n), ORDO_OK);
  {
    ordo_ledger_batch *mixed[3] = {good1, bad, good2};
    const char *m;
    assert_int_equal(post_direct(n, mixed, 3, &j), 400);
    m = json_string_value(json_object_get(json_object_get(j, "error"), "message"));
    assert_null(strstr(m, ordo_ledger_batch_id(bad)));
    assert_error(j, 30, "Submitted Batches Invalid");
  }
  assert_int_equal(ordo_node_cut_block(n, NULL), ORDO_OK);
  assert_status(n, ordo_ledger_batch_id(good1), "UNKNOWN");
  assert_status(n, ordo_ledger_batch_id(good2), "UNKNOWN");
  {
    ordo_ledger_batch *goods[2] = {good1, good2};
    assert_int_equal(post_direct(n, goods, 2, &j), 202);
    json_decref(j);
  }
  assert_int_equal(post_direct(n, &bad, 1, &j), 400);
  assert_int_equal(error_code(j), 30);
  assert_int_equal(ordo_node_cut_block(n, NULL), ORDO_OK);
  assert_status(n, ordo_ledger_batch_id(good1), "COMMITTED");
  assert_status(n, ordo_ledger_batch_id(good2), "COMMITTED");
  assert_status(n, ordo_ledger_batch_id(bad), "UNKNOWN");
  assert_int_equal(ordo_node_get_stats(n, &stats), ORDO_OK);
  assert_int_equal(stats.lists_refused, 2);
  assert_int_equal(ordo_node_stop(n), ORDO_OK);

  /* The same list from a file: comments, blanks, upper case. */
  for (i = 0; i < ORDO_LEDGER_PUBKEY_SIZE - 1; i++)
    upper[i] = (char)toupper((unsigned char)keys[0][i]);
  upper[ORDO_LEDGER_PUBKEY_SIZE - 1] = '\0';
  snprintf(file, sizeof file, "%s/allow.txt", dir);
  snprintf(text, sizeof text, "# transactors\n\n  %s  # the test key\n", upper);
  write_file(file, text);
  o.allow_signers = NULL;
  o.nallow_signers = 0;
  o.allow_signers_file = file;
  assert_int_equal(ordo_node_start(&o, &n), ORDO_OK);
  assert_int_equal(post_direct(n, &bad, 1, &j), 400);
  assert_int_equal(error_code(j), 30);
  assert_int_equal(post_direct(n, &good3, 1, &j), 202);
  json_decref(j);
  assert_int_equal(ordo_node_stop(n), ORDO_OK);

  /* A bad line refuses the start, naming the line; so does a list
   * without keys, and a file that is not there. */
  snprintf(text, sizeof text, "# ok\n%s\nnot-a-key\n", keys[0]);
  write_file(file, text);
  assert_int_equal(ordo_node_start(&o, &n), ORDO_E_INVAL);
  assert_null(n);
  assert_non_null(strstr(ordo_last_error_message(), "allow.txt:3:"));
  write_file(file, "# nobody\n\n");
  assert_int_equal(ordo_node_start(&o, &n), ORDO_E_INVAL);
  assert_non_null(strstr(ordo_last_error_message(), "no keys"));
  snprintf(file, sizeof file, "%s/none.txt", dir);
  assert_int_equal(ordo_node_start(&o, &n), ORDO_E_IO);

  ordo_ledger_batch_free(good1);
  ordo_ledger_batch_free(good2);
  ordo_ledger_batch_free(good3);
  ordo_ledger_batch_free(bad);
  ordo_ledger_signer_free(other);
  ordo_ledger_signer_free(a);
  support_rmdir_all(dir);
}

/* refuse_rate refuses the same batches every time, the ones
 * ordo_node_refuses names; a list holding one is refused whole. */
#define NREFUSE 16

static void test_refuse_rate(void **st) {
  char *dir = tmpdir();
  ordo_ledger_signer *s = signer();
  ordo_ledger_batch *b[NREFUSE];
  int refused[NREFUSE], nref = 0, round;
  ordo_node_options o;
  ordo_node *n = NULL;
  json_t *j;
  size_t i;
  (void)st;

  for (i = 0; i < NREFUSE; i++) {
    char name[16];
    ordo_ledger_txn *t[1];
    snprintf(name, sizeof name, "rr%zu", i);
    t[0] = intkey(s, ORDO_LEDGER_INTKEY_SET, name, 1);
    b[i] = batch(s, t, 1);
    refused[i] = ordo_node_refuses(11, 0.5, ordo_ledger_batch_id(b[i]));
    nref += refused[i];
    assert_int_equal(ordo_node_refuses(11, 0.0, ordo_ledger_batch_id(b[i])), 0);
    assert_int_equal(ordo_node_refuses(11, 1.0, ordo_ledger_batch_id(b[i])), 1);
  }
  assert_true(nref > 0 && nref < NREFUSE);

  ordo_node_options_init(&o);
  o.data_dir = dir;
  o.port = -1;
  o.block_ms = 0;
  o.seed = 11;
  o.refuse_rate = 0.5;
  assert_int_equal(ordo_node_start(&o, &n), ORDO_OK);
  for (round = 0; round < 2; round++)
    for (i = 0; i < NREFUSE; i++) {
      assert_int_equal(ordo_node_would_refuse(n, ordo_ledger_batch_id(b[i])),
                       refused[i]);
      assert_int_equal(post_direct(n, &b[i], 1, &j), refused[i] ? 400 : 202);
      if (refused[i])
        assert_int_equal(error_code(j), 30);
      else
        json_decref(j);
    }
  /* One refused batch sinks a list of accepted ones. */
  {
    ordo_ledger_batch *list[NREFUSE];
    for (i = 0; i < NREFUSE; i++)
      list[i] = b[i];
    assert_int_equal(post_direct(n, list, NREFUSE, &j), 400);
    assert_int_equal(error_code(j), 30);
  }
  assert_int_equal(ordo_node_cut_block(n, NULL), ORDO_OK);
  for (i = 0; i < NREFUSE; i++)
    assert_status(n, ordo_ledger_batch_id(b[i]),
                  refused[i] ? "UNKNOWN" : "COMMITTED");
  assert_int_equal(ordo_node_stop(n), ORDO_OK);

  for (i = 0; i < NREFUSE; i++)
    ordo_ledger_batch_free(b[i]);
  ordo_ledger_signer_free(s);
  support_rmdir_all(dir);
}

/* A POST body sent with Content-Length and "Expect: 100-continue" (the
 * body follows only when the server asks), or chunked (no length known
 * beforehand). The status; *text the body; ctype the Content-Type. */
typedef struct upload {
  const unsigned char *p;
  size_t len, off;
  char *got;
  size_t ngot;
  char ctype[128];
} upload;

static size_t upload_read(char *buf, size_t sz, size_t nm, void *ud) {
  upload *u = ud;
  size_t n = sz * nm;
  if (n > u->len - u->off)
    n = u->len - u->off;
  memcpy(buf, u->p + u->off, n);
  u->off += n;
  return n;
}

static size_t upload_write(char *d, size_t sz, size_t nm, void *ud) {
  upload *u = ud;
  size_t n = sz * nm;
  char *p = realloc(u->got, u->ngot + n + 1);
  if (p == NULL)
    return 0;
  memcpy(p + u->ngot, d, n);
  u->ngot += n;
  p[u->ngot] = '\0';
  u->got = p;
  return n;
}

static size_t upload_header(char *d, size_t sz, size_t nm, void *ud) {
  upload *u = ud;
  size_t n = sz * nm;
  if (n > 14 && strncasecmp(d, "Content-Type: ", 14) == 0)
    snprintf(u->ctype, sizeof u->ctype, "%.*s", (int)strcspn(d + 14, "\r\n"),
             d + 14);
  return n;
}

static long post_upload(int port, const char *path, const void *body,
                        size_t len, int chunked, char **text,
                        char ctype[128]) {
  CURL *c = curl_easy_init();
  struct curl_slist *h = NULL;
  upload u;
  char url[256];
  long status = -1;

  memset(&u, 0, sizeof u);
  u.p = body;
  u.len = len;
  snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
  h = curl_slist_append(h, "Content-Type: application/octet-stream");
  h = curl_slist_append(h, chunked ? "Transfer-Encoding: chunked"
                                   : "Expect: 100-continue");
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_POST, 1L);
  curl_easy_setopt(c, CURLOPT_READFUNCTION, upload_read);
  curl_easy_setopt(c, CURLOPT_READDATA, &u);
  if (!chunked)
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
  curl_easy_setopt(c, CURLOPT_EXPECT_100_TIMEOUT_MS, 10000L);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, upload_write);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &u);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, upload_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &u);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 20000L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  if (curl_easy_perform(c) == CURLE_OK)
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(h);
  curl_easy_cleanup(c);
  *text = u.got != NULL ? u.got : strdup("");
  snprintf(ctype, 128, "%s", u.ctype);
  return status;
}

/* Over max_body_bytes: 413 with aiohttp's plain-text body, refused on
 * Content-Length before the body is sent, or once a chunked one passes
 * it. At the limit: handled as usual. */
static void test_body_cap(void **st) {
  char *dir = tmpdir(), *text, ctype[128];
  unsigned char body[2000];
  ordo_node_options o;
  ordo_node_stats stats;
  ordo_node *n = NULL;
  json_t *j;
  int port, chunked;
  (void)st;

  memset(body, 0xff, sizeof body);
  ordo_node_options_init(&o);
  o.data_dir = dir;
  o.block_ms = 0;
  o.max_body_bytes = 1000;
  assert_int_equal(ordo_node_start(&o, &n), ORDO_OK);
  port = ordo_node_port(n);
  for (chunked = 0; chunked < 2; chunked++) {
    assert_int_equal(post_upload(port, "/batches", body, sizeof body, chunked,
                                 &text, ctype),
                     413);
    assert_string_equal(text, "Maximum request body size 1000 exceeded, "
                              "actual body size 2000");
    assert_true(strncmp(ctype, "text/plain", 10) == 0);
    free(text);
  }
  /* At the limit it is read and answered as ever (garbage: 400/35). */
  assert_int_equal(post_upload(port, "/batches", body, 1000, 1, &text, ctype),
                   400);
  j = json_loads(text, 0, NULL);
  assert_non_null(j);
  assert_int_equal(error_code(j), 35);
  free(text);
  /* The node still answers on a fresh connection. */
  assert_int_equal(http(port, "GET", "/blocks", NULL, NULL, 0, &j), 200);
  json_decref(j);
  assert_int_equal(ordo_node_get_stats(n, &stats), ORDO_OK);
  assert_int_equal(stats.too_large, 2);
  assert_int_equal(stats.batches_posts, 3);
  assert_int_equal(ordo_node_stop(n), ORDO_OK);
  support_rmdir_all(dir);
}

/* A status request on its own thread, timed. */
typedef struct poller {
  int port;
  int post; /* POST /batch_statuses, else GET */
  char id[ORDO_LEDGER_ID_SIZE];
  long status;
  char *text;
  unsigned long long ms;
} poller;

static void *poller_main(void *arg) {
  poller *p = arg;
  char target[512], body[300];
  unsigned long long t0 = now_ms();
  if (p->post) {
    snprintf(body, sizeof body, "[\"%s\"]", p->id);
    p->status = http_raw(p->port, "POST", "/batch_statuses?wait=10",
                         "application/json", body, strlen(body), &p->text);
  } else {
    snprintf(target, sizeof target, "/batch_statuses?id=%s&wait=10", p->id);
    p->status = http_raw(p->port, "GET", target, NULL, NULL, 0, &p->text);
  }
  p->ms = now_ms() - t0;
  return NULL;
}

static const char *poller_status(poller *p, json_t **j) {
  *j = json_loads(p->text, 0, NULL);
  assert_non_null(*j);
  return json_string_value(json_object_get(
      json_array_get(json_object_get(*j, "data"), 0), "status"));
}

/* POST /batch_statuses?wait= long-polls: it returns when the batch
 * commits (not at its deadline), at once when nothing listed is PENDING
 * (UNKNOWN is final), and when the node stops. Counted in the stats. */
static void test_post_long_poll(void **st) {
  char *dir = tmpdir();
  ordo_node *n = start(dir, 0, 0, 3, 0);
  ordo_ledger_signer *s = signer();
  ordo_ledger_txn *t[1] = {intkey(s, ORDO_LEDGER_INTKEY_SET, "lp", 1)};
  ordo_ledger_txn *t2[1] = {intkey(s, ORDO_LEDGER_INTKEY_SET, "lp2", 1)};
  ordo_ledger_batch *b = batch(s, t, 1), *b2 = batch(s, t2, 1);
  ordo_node_stats stats;
  poller p;
  pthread_t th;
  json_t *j;
  (void)st;

  assert_int_equal(post_batches(ordo_node_port(n), &b, 1, &j), 202);
  json_decref(j);
  memset(&p, 0, sizeof p);
  p.port = ordo_node_port(n);
  p.post = 1;
  snprintf(p.id, sizeof p.id, "%s", ordo_ledger_batch_id(b));
  assert_int_equal(pthread_create(&th, NULL, poller_main, &p), 0);
  /* Cut only once the request is waiting inside the node. */
  assert_int_equal(ordo_node_await_waiters(n, 1, 10000), ORDO_OK);
  assert_int_equal(ordo_node_cut_block(n, NULL), ORDO_OK);
  assert_int_equal(pthread_join(th, NULL), 0);
  assert_int_equal(p.status, 200);
  assert_string_equal(poller_status(&p, &j), "COMMITTED");
  assert_true(p.ms < 8000);
  json_decref(j);
  free(p.text);

  /* Nothing PENDING (an id the node never saw): no wait at all. */
  memset(p.id, 'c', ORDO_LEDGER_ID_LEN);
  p.id[ORDO_LEDGER_ID_LEN] = '\0';
  poller_main(&p);
  assert_int_equal(p.status, 200);
  assert_string_equal(poller_status(&p, &j), "UNKNOWN");
  assert_true(p.ms < 5000);
  json_decref(j);
  free(p.text);

  assert_int_equal(ordo_node_get_stats(n, &stats), ORDO_OK);
  assert_int_equal(stats.batch_statuses, 2);
  assert_int_equal(stats.batch_status_waits, 2);
  assert_int_equal(stats.batch_status_ids, 2);
  assert_int_equal(stats.batches_posts, 1);
  assert_int_equal(stats.requests, 3);
  assert_int_equal(stats.waiting, 0);

  /* A long-poll in progress ends when the node stops. */
  assert_int_equal(post_batches(ordo_node_port(n), &b2, 1, &j), 202);
  json_decref(j);
  p.post = 0;
  snprintf(p.id, sizeof p.id, "%s", ordo_ledger_batch_id(b2));
  assert_int_equal(pthread_create(&th, NULL, poller_main, &p), 0);
  assert_int_equal(ordo_node_await_waiters(n, 1, 10000), ORDO_OK);
  assert_int_equal(ordo_node_stop(n), ORDO_OK);
  assert_int_equal(pthread_join(th, NULL), 0);
  assert_int_equal(p.status, 200);
  assert_string_equal(poller_status(&p, &j), "PENDING");
  assert_true(p.ms < 8000);
  json_decref(j);
  free(p.text);

  ordo_ledger_batch_free(b);
  ordo_ledger_batch_free(b2);
  ordo_ledger_signer_free(s);
  support_rmdir_all(dir);
}


/* A database an earlier node made (state without versions, 64-hex block
 * ids) is moved to the versioned layout on open: its state reads back and
 * changes, and new blocks get 128-hex ids. */
static void test_old_database_opens(void **st) {
  char *dir = tmpdir(), path[512], sql[2048], addr[ORDO_LEDGER_ADDRESS_SIZE];
  char g[65], b1[65];
  ordo_ledger_signer *s = signer();
  ordo_ledger_txn *t[1] = {intkey(s, ORDO_LEDGER_INTKEY_INC, "old", 1)};
  ordo_ledger_batch *b = batch(s, t, 1);
  ordo_node *n;
  sqlite3 *db;
  json_t *j, *top;
  int port;
  (void)st;

  memset(g, 'a', 64);
  g[64] = '\0';
  memset(b1, 'b', 64);
  b1[64] = '\0';
  assert_int_equal(ordo_ledger_intkey_address("old", addr), ORDO_OK);
  snprintf(path, sizeof path, "%s/node.db", dir);
  assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
  snprintf(sql, sizeof sql,
           "CREATE TABLE state(address TEXT PRIMARY KEY, value BLOB NOT NULL)"
           " WITHOUT ROWID;"
           "CREATE TABLE batches(id TEXT PRIMARY KEY, status INTEGER NOT NULL,"
           " txn_id TEXT, message TEXT) WITHOUT ROWID;"
           "CREATE TABLE blocks(num INTEGER PRIMARY KEY, id TEXT NOT NULL,"
           " prev TEXT NOT NULL, batch_ids TEXT NOT NULL);"
           "CREATE TABLE pending(seq INTEGER PRIMARY KEY AUTOINCREMENT,"
           " id TEXT NOT NULL UNIQUE, data BLOB NOT NULL);"
           "INSERT INTO blocks VALUES(0, '%s', '0000000000000000', '');"
           "INSERT INTO blocks VALUES(1, '%s', '%s', '');"
           /* {"old": 7} */
           "INSERT INTO state VALUES('%s', X'a1636f6c6407');",
           g, b1, g, addr);
  assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_close(db), SQLITE_OK);

  n = start(dir, 0, 0, 1, 0);
  port = ordo_node_port(n);
  assert_int_equal(intkey_value(port, "old"), 7);
  assert_int_equal(post_batches(port, &b, 1, &j), 202);
  json_decref(j);
  assert_int_equal(ordo_node_cut_block(n, NULL), ORDO_OK);
  assert_status(n, ordo_ledger_batch_id(b), "COMMITTED");
  assert_int_equal(intkey_value(port, "old"), 8);
  assert_int_equal(http(port, "GET", "/blocks?limit=1", NULL, NULL, 0, &j), 200);
  top = json_array_get(json_object_get(j, "data"), 0);
  assert_string_equal(
      json_string_value(json_object_get(json_object_get(top, "header"),
                                        "block_num")),
      "2");
  assert_true(is_lower_hex(
      json_string_value(json_object_get(top, "header_signature")),
      ORDO_LEDGER_ID_LEN));
  json_decref(j);

  ordo_ledger_batch_free(b);
  ordo_ledger_signer_free(s);
  assert_int_equal(ordo_node_stop(n), ORDO_OK);
  support_rmdir_all(dir);
}

/* ------------------------------------------------------------------------ */
/* Hostile clients: raw sockets from chosen loopback addresses               */
/* ------------------------------------------------------------------------ */

/*
 * Hostile clients (issue 13): 300 half-open connections from 127.0.0.2
 * (over the per-address cap of 64) and a client trickling its headers from
 * 127.0.0.3, with a 1 s header timeout: every GET /blocks probe from
 * 127.0.0.1 is answered, the node closes the connections over the cap at
 * once, the others and the trickler at the header timeout. A POST whose
 * Content-Length is over the body cap gets 413 before any body byte (also
 * instead of `100 Continue`) and the connection is closed after.
 */
static void test_hostile_clients(void **st) {
  static const char probe[] = "GET /blocks?limit=1 HTTP/1.1\r\nHost: t\r\n"
                              "Connection: close\r\n\r\n";
  ordo_node_options o;
  ordo_node *n = NULL;
  char *dir = tmpdir();
  support_hc_result res;
  long long closed_ms;
  int port;
  (void)st;
  ordo_node_options_init(&o);
  o.data_dir = dir;
  o.port = 0;
  o.block_ms = 0;
  o.header_timeout_ms = 1000;
  if (ordo_node_start(&o, &n) != ORDO_OK)
    fail_msg("node start: %s", ordo_last_error_message());
  port = ordo_node_port(n);

  support_hc_run(port, probe, 3000, &res);
  assert_int_equal(res.half_open, SUPPORT_HC_HALF_OPEN);
  assert_int_equal(res.open_at_end, 0);
  assert_true(res.closed_late >= 1 &&
              res.closed_late <= (int)ORDO_NODE_DEFAULT_CONNECTION_LIMIT_PER_IP);
  assert_true(res.closed_early >=
              SUPPORT_HC_HALF_OPEN -
                  (int)ORDO_NODE_DEFAULT_CONNECTION_LIMIT_PER_IP);
  assert_true(res.first_late_ms >= 950); /* the 1 s timeout, not sooner */
  assert_true(res.trickle_closed_ms >= 900 && res.trickle_closed_ms <= 2500);
  assert_true(res.probes >= 10);
  assert_int_equal(res.probes_ok, res.probes);

  /* Over the body cap by Content-Length, no body sent: 413 at once. */
  assert_int_equal(
      support_hc_request(port,
                 "POST /batches HTTP/1.1\r\nHost: t\r\n"
                 "Content-Type: application/octet-stream\r\n"
                 "Content-Length: 1000000000\r\n\r\n",
                 2000, &closed_ms),
      413);
  assert_true(closed_ms >= 0);
  assert_int_equal(
      support_hc_request(port,
                 "POST /batches HTTP/1.1\r\nHost: t\r\n"
                 "Content-Type: application/octet-stream\r\n"
                 "Expect: 100-continue\r\n"
                 "Content-Length: 1000000000\r\n\r\n",
                 2000, &closed_ms),
      413); /* not 100 */
  assert_true(closed_ms >= 0);
  assert_int_equal(support_hc_request(port, probe, 2000, NULL), 200);
  assert_int_equal(ordo_node_stop(n), ORDO_OK);
  support_rmdir_all(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_block_order_is_a_permutation),
      cmocka_unit_test(test_handle_direct),
      cmocka_unit_test(test_seeded_order),
      cmocka_unit_test(test_commit_and_read),
      cmocka_unit_test(test_post_errors),
      cmocka_unit_test(test_invalid_batch_is_atomic),
      cmocka_unit_test(test_statuses),
      cmocka_unit_test(test_wait_times_out),
      cmocka_unit_test(test_restart),
      cmocka_unit_test(test_faults),
      cmocka_unit_test(test_concurrent_clients),
      cmocka_unit_test(test_ids_are_128_hex),
      cmocka_unit_test(test_limit_out_of_range),
      cmocka_unit_test(test_paging_pins_head),
      cmocka_unit_test(test_dependencies),
      cmocka_unit_test(test_duplicate_txn),
      cmocka_unit_test(test_empty_intkey_name_commits),
      cmocka_unit_test(test_allow_list),
      cmocka_unit_test(test_refuse_rate),
      cmocka_unit_test(test_body_cap),
      cmocka_unit_test(test_post_long_poll),
      cmocka_unit_test(test_old_database_opens),
      cmocka_unit_test(test_hostile_clients),
  };
  int rc;
  curl_global_init(CURL_GLOBAL_DEFAULT);
  rc = cmocka_run_group_tests(tests, NULL, NULL);
  curl_global_cleanup();
  return rc;
}

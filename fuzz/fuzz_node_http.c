/*
 * fuzz_node_http.c — libFuzzer target for the embedded node's request
 * handlers (src/node/http.c), driven through ordo_node_handle: no sockets,
 * no block thread. The first byte picks the request, the rest is its body,
 * query string or path:
 *
 *   0  POST /batches            body, application/octet-stream
 *   1  POST /batch_statuses     body, application/json
 *   2  GET  /batch_statuses?... query
 *   3  GET  /state?...          query
 *   4  GET  /blocks?...         query (start=, head=, limit=)
 *   5  GET  <path>              the bytes as a path ("/state/...",
 *                               "/blocks/{id}", ...)
 *   6  POST /batches            body, with the content type from the query
 *
 * Properties: every request is answered with a status in 200..599 and a
 * JSON text (one object); a 4xx/5xx answer carries {"error": {"code"}}.
 * One node (in a temporary directory) serves the whole run; every 64 inputs
 * a block is cut, so accepted batches are applied too (and batches whose
 * dependencies are unmet stay pending). max_wait_s is 0, so wait= never
 * blocks. A quarter of batches are refused by refuse_rate, so the 400/30
 * path runs too. The body limit (413, plain text) is the HTTP server's,
 * not ordo_node_handle's, so every answer here is JSON.
 */
#include "ordo.h"
#include "node/node.h"
#include "fuzz_tmpdir.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static ordo_node *node;
static char dir[] = "/tmp/ordo-fuzz-node-XXXXXX";
static unsigned long calls;

static void teardown(void) {
  ordo_node_stop(node);
  node = NULL;
  fuzz_rmdir_all(dir);
}

static void setup(void) {
  ordo_node_options o;
  if (mkdtemp(dir) == NULL)
    abort();
  ordo_node_options_init(&o);
  o.data_dir = dir;
  o.port = -1;
  o.block_ms = 0;
  o.max_wait_s = 0;
  o.refuse_rate = 0.25;
  if (ordo_node_start(&o, &node) != ORDO_OK)
    abort();
  atexit(teardown);
}

static void check(int status, const char *json) {
  json_t *j = json_loads(json, 0, NULL);
  if (status < 200 || status > 599 || j == NULL || !json_is_object(j))
    abort();
  if (status >= 400 &&
      !json_is_integer(json_object_get(json_object_get(j, "error"), "code")))
    abort();
  json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  ordo_node_request r;
  char *text, *json = NULL;
  int status = 0;

  if (node == NULL)
    setup();
  if (size < 1)
    return 0;
  /* The rest as a NUL-terminated string too (queries, paths). */
  if ((text = malloc(size)) == NULL)
    return 0;
  memcpy(text, data + 1, size - 1);
  text[size - 1] = '\0';
  memset(&r, 0, sizeof r);
  switch (data[0] % 7) {
  case 0:
  case 6:
    r.method = "POST";
    r.path = "/batches";
    r.content_type = data[0] % 7 == 0 ? "application/octet-stream" : text;
    r.body = size > 1 ? data + 1 : NULL;
    r.body_len = size - 1;
    break;
  case 1:
    r.method = "POST";
    r.path = "/batch_statuses";
    r.content_type = "application/json";
    r.body = size > 1 ? data + 1 : NULL;
    r.body_len = size - 1;
    break;
  case 2:
    r.method = "GET";
    r.path = "/batch_statuses";
    r.query = text;
    break;
  case 3:
    r.method = "GET";
    r.path = "/state";
    r.query = text;
    break;
  case 4:
    r.method = "GET";
    r.path = "/blocks";
    r.query = text;
    break;
  default:
    r.method = "GET";
    r.path = text;
    break;
  }
  if (ordo_node_handle(node, &r, &status, &json) != ORDO_OK || json == NULL)
    abort();
  check(status, json);
  free(json);
  free(text);
  if (++calls % 64 == 0 && ordo_node_cut_block(node, NULL) != ORDO_OK)
    abort();
  return 0;
}

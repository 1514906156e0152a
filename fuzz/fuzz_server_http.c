/*
 * fuzz_server_http.c — libFuzzer target for `ordo serve`'s request handlers
 * (src/server/), driven through ordo_server_handle: no sockets, no ledger.
 * The input is four lines and a body:
 *
 *   METHOD\nPATH\nQUERY\nFLAGS\nBODY...
 *
 * FLAGS: 'a' the right bearer token, 'w' a wrong one, 'o' Content-Type
 * application/octet-stream, 'j' application/json, 's' an X-Ordo-Service
 * header, 'c' another client address (its own rate bucket). Missing lines
 * are empty.
 *
 * Properties: every request is answered with a status in 200..599; a JSON
 * answer is one JSON value, and a 4xx/5xx one is {"error":{"code","name",
 * "message"}}; /metrics answers text. One server (a temporary data dir, a
 * token, rate limit on, a signing key so that "transactions" items are
 * built and signed) serves the whole run. Wallet create/open without
 * "raw" in the body are skipped: Argon2id would make each such input take
 * a second and 256 MiB. Credential-definition jobs are skipped too: a job
 * keeps generating primes on the heavy class after its input returned, and
 * libFuzzer's leak check between inputs then counts the job's live
 * OpenSSL numbers as leaked (the job's own tests are in test_server).
 */
#include "ordo.h"
#include "ledger/ledger.h"
#include "server/server.h"
#include "fuzz_tmpdir.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static ordo_server *srv;
static ordo_ledger_signer *signer;
static char dir[] = "/tmp/ordo-fuzz-server-XXXXXX";

static void teardown(void) {
  ordo_server_stop(srv);
  srv = NULL;
  ordo_ledger_signer_free(signer);
  signer = NULL;
  fuzz_rmdir_all(dir);
}

static void setup(void) {
  ordo_server_options o;
  if (mkdtemp(dir) == NULL)
    abort();
  ordo_server_options_init(&o);
  o.port = -1;
  o.data_dir = dir;
  o.token = "fuzz-token";
  o.rate_limit_per_s = 1000;
  o.max_jobs = 4;
  o.max_body_bytes = 1 << 20;
  o.request_timeout_ms = 10000;
  o.runtime.cheap_threads = 2;
  o.runtime.heavy_threads = 1;
  if (ordo_ledger_signer_new("2f1e7b7a130d7ba9da0068b3bb0ba1d79e7e77110302c9f7"
                             "46c3c2a63fe40088", &signer) != ORDO_OK)
    abort();
  o.signer = signer;
  if (ordo_server_start(&o, &srv) != ORDO_OK)
    abort();
  atexit(teardown);
}

/* The next line of [*p, end) as a new string; *p moves past it. */
static char *next_line(const uint8_t **p, const uint8_t *end) {
  const uint8_t *nl = memchr(*p, '\n', (size_t)(end - *p));
  size_t n = nl != NULL ? (size_t)(nl - *p) : (size_t)(end - *p);
  char *s = malloc(n + 1);
  if (s == NULL)
    abort();
  memcpy(s, *p, n);
  s[n] = '\0';
  *p += n + (nl != NULL);
  return s;
}

static void check(const ordo_server_response *r) {
  json_t *j;
  if (r->status < 200 || r->status > 599 || r->body == NULL ||
      r->content_type == NULL)
    abort();
  if (strcmp(r->content_type, "application/json") != 0)
    return; /* /metrics */
  j = json_loadb(r->body, r->body_len, JSON_DECODE_ANY, NULL);
  if (j == NULL)
    abort();
  if (r->status >= 400) {
    json_t *e = json_object_get(j, "error");
    if (!json_is_integer(json_object_get(e, "code")) ||
        !json_is_string(json_object_get(e, "name")) ||
        !json_is_string(json_object_get(e, "message")))
      abort();
  }
  json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const uint8_t *p = data, *end = data + size;
  char *method, *path, *query, *flags;
  ordo_server_request r;
  ordo_server_response resp;

  if (srv == NULL)
    setup();
  method = next_line(&p, end);
  path = next_line(&p, end);
  query = next_line(&p, end);
  flags = next_line(&p, end);
  memset(&r, 0, sizeof r);
  r.method = method;
  r.path = path;
  r.query = query[0] != '\0' ? query : NULL;
  r.authorization = strchr(flags, 'a') != NULL   ? "Bearer fuzz-token"
                    : strchr(flags, 'w') != NULL ? "Bearer fuzz-tokem"
                                                 : NULL;
  r.content_type = strchr(flags, 'o') != NULL   ? "application/octet-stream"
                   : strchr(flags, 'j') != NULL ? "application/json"
                                                : NULL;
  r.service = strchr(flags, 's') != NULL ? "fz" : NULL;
  r.client = strchr(flags, 'c') != NULL ? "10.9.8.7" : "127.0.0.1";
  r.body = p < end ? p : NULL;
  r.body_len = (size_t)(end - p);
  if (strncmp(path, "/v1/wallets", 11) == 0 &&
      (strcmp(path, "/v1/wallets") == 0 || strstr(path, "/open") != NULL) &&
      (r.body_len < 3 || memmem(r.body, r.body_len, "raw", 3) == NULL))
    goto out;
  if (strstr(path, "cred-defs") != NULL)
    goto out;
  if (ordo_server_handle(srv, &r, &resp) != ORDO_OK)
    abort();
  check(&resp);
  ordo_server_response_clear(&resp);
out:
  free(method);
  free(path);
  free(query);
  free(flags);
  return 0;
}

/*
 * rest_int.h — what the two files of the Sawtooth REST client share: the
 * request (an op's state) and the client, the request lists, and the calls
 * between the client side (rest_client.c: options, URL, headers, lifetime,
 * the public calls that build requests) and the engine (rest.c: the send
 * stage, the libcurl multi driver, the finish stage). Ownership, lifetime
 * and locks are in rest.c's comment. Internal to the ledger module.
 */
#ifndef ORDO_LEDGER_REST_INT_H
#define ORDO_LEDGER_REST_INT_H

#include "ledger/ledger.h"
#include "runtime/runtime.h"

#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdint.h>

typedef enum req_kind {
  REQ_SUBMIT = 0,
  REQ_STATUSES,
  REQ_STATE_GET,
  REQ_STATE_LIST,
  REQ_BLOCKS
} req_kind;

typedef struct rest_req rest_req;
/* Short, for the two files only. */
typedef struct ordo_ledger_client client;

struct rest_req {
  rest_req *next, *prev; /* on one list at a time (see rest.c's comment) */
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


/* ---- request lists (circular, with a sentinel) --------------------------- */

static inline void ordo__rest_list_init(rest_req *h) { h->next = h->prev = h; }

static inline int ordo__rest_list_empty(const rest_req *h) {
  return h->next == h;
}

static inline void ordo__rest_list_push(rest_req *h, rest_req *r) {
  r->prev = h->prev;
  r->next = h;
  h->prev->next = r;
  h->prev = r;
}

static inline void ordo__rest_list_unlink(rest_req *r) {
  r->prev->next = r->next;
  r->next->prev = r->prev;
  r->next = r->prev = NULL;
}

/* ---- between the client and the engine --------------------------------- */

/* Drop a reference to c (rest_client.c); the last one frees it. */
void ordo__rest_client_unref(client *c);

/* A request for c, not yet an op, taking target (freed here on failure);
 * it holds a reference to c. NULL on allocation failure. (rest.c) */
rest_req *ordo__rest_req_new(client *c, req_kind kind, int post, char *target);

/* Free a request, dropping its reference to c: the op's state destructor,
 * and for a request that never became an op. (rest.c) */
void ordo__rest_req_free(void *r);

/* Start r as an op, or finish it at once with ORDO_E_INVAL and msg when msg
 * is not NULL (r then only carries the reference to c); r NULL: out of
 * memory, NULL returned with the last error set. (rest.c) */
ordo_op *ordo__rest_req_start(client *c, rest_req *r, const char *msg);

#endif /* ORDO_LEDGER_REST_INT_H */

/*
 * rest.h — the Sawtooth REST client (rest_client.c, rest.c): POST
 * /batches, GET|POST /batch_statuses, GET /state/{address}, GET
 * /state?address=, GET /blocks, over libcurl, every call an op. Part of the
 * ledger module; ledger.h includes this header, so modules include
 * "ledger/ledger.h".
 *
 * Why: the queuer submits signed batches and watches their statuses from the
 * ledger, many at a time, and must never block a thread while a validator
 * thinks. Retries, backoff and the mapping of Sawtooth's errors to ordo codes
 * live here once, so the queuer and `ordo verify` see only ordo codes.
 *
 * Design: libcurl's multi interface driven from the runtime's net class.
 *
 *   caller ─ ordo_ledger_submit ─▶ op: [net] send ──ASYNC──▶ [cheap] finish
 *                                        │                    ▲
 *                                        ▼ pending list       │ resume
 *                                  driver task (net) ─────────┘
 *                    curl_multi_perform / curl_multi_poll (≤ 20 ms) / repost
 *
 *   - Each request is an op of two stages. "send" (net class) builds the
 *     curl easy handle, puts the request on the client's pending list and
 *     returns ORDO__STAGE_ASYNC. "finish" (cheap class) maps the outcome to
 *     an ordo code and parses the body into the op's result.
 *   - One driver per client: a plain runtime task (ordo__executor_post) on
 *     the net executor that owns the curl multi handle. One run adds the
 *     pending handles, aborts cancelled requests, restarts retries whose
 *     backoff has passed, calls curl_multi_perform, hands finished transfers
 *     back (ordo__op_resume), then waits in curl_multi_poll for at most
 *     20 ms and posts itself again. It is posted when work arrives and stops
 *     (is not reposted) when nothing is pending, in flight or waiting for a
 *     retry, so an idle client costs no thread and no wakeups. Between two
 *     runs other net tasks get the thread (the queue is FIFO); a new
 *     request wakes the poll at once (curl_multi_wakeup). No thread is
 *     created: not by ordo, and not by libcurl, whose threaded resolver is
 *     bypassed — host names are resolved with getaddrinfo in the send stage
 *     (on the net thread, cached for 60 s) and given to curl as
 *     CURLOPT_RESOLVE entries; IP literals need no resolution.
 *   - Retries happen inside the driver: 429, 503 and transport failures
 *     (connection refused or reset, closed without an answer, timeouts)
 *     are tried again after a backoff of min(max, base * 2^(n-1)) ms with
 *     equal jitter (half fixed, half random), or the server's Retry-After
 *     when that is longer (capped at max), up to max_attempts attempts in
 *     all. Nothing else is retried: a 4xx other than 429 is an answer.
 *     Resubmitting a batch is safe: Sawtooth knows a batch by its id.
 *   - Cancellation: ordo_op_cancel on a request in flight is seen by the
 *     driver's next run (within one poll, ≤ 20 ms), which removes the easy
 *     handle (aborting the transfer) and finishes the op with
 *     ORDO_E_CANCELED. ordo_op_cancel itself returns ORDO_E_BUSY then, as
 *     for any op that has started. A context shutting down cancels the same
 *     way.
 *
 * Results are JSON text (ordo_op_result), compact with sorted keys.
 * Errors (the op's status; its message says what the server said, e.g.
 * "400 code 30: Submitted Batches Invalid: … (POST /batches, 1 attempt)"):
 *
 *   HTTP 400 code 30 or 35 on         ORDO_E_LEDGER_BATCH_REFUSED (the
 *   POST /batches                     whole list refused for one batch in
 *                                     it; the caller splits the list)
 *   any other HTTP 400                ORDO_E_LEDGER_REJECTED
 *   HTTP 413                          ORDO_E_LEDGER_TOO_LARGE
 *   HTTP 401, 403                     ORDO_E_LEDGER_AUTH
 *   HTTP 404 (state: code 75)         ORDO_E_NOT_FOUND
 *   HTTP 429 after the retries        ORDO_E_LEDGER_BUSY
 *   HTTP 503 after the retries        ORDO_E_LEDGER_UNAVAILABLE
 *   any other non-2xx status          ORDO_E_LEDGER
 *   refused, reset, no answer, DNS    ORDO_E_LEDGER_CONNECT (after retries)
 *   timeout (connect or request)      ORDO_E_TIMEOUT (after retries)
 *   TLS handshake / certificate       ORDO_E_LEDGER_TLS
 *   a 2xx body that is not the JSON   ORDO_E_LEDGER_RESPONSE
 *   expected, or over the size limit
 *   ordo_op_cancel, client freed,     ORDO_E_CANCELED
 *   context shutting down
 *   bad arguments                     ORDO_E_INVAL (the op is finished at
 *                                     once, nothing is sent)
 *
 * Secrets: the auth value is sent as the Authorization header of every
 * request and nowhere else: it is never logged, never put in a message or a
 * result, and ordo's copies of it are wiped when the client is freed
 * (libcurl's transient request buffers are freed without wiping). The base URL may not carry
 * credentials (user:password@) for that reason. Messages name the method
 * and path only.
 *
 * Threads: every call may be made from any thread, concurrently, on one
 * client; the ops may be waited for or given callbacks as any op.
 */
#ifndef ORDO_LEDGER_REST_H
#define ORDO_LEDGER_REST_H

#include "ordo.h"

#include <stddef.h>

typedef struct ordo_ledger_client ordo_ledger_client;

/*
 * How to reach the ledger. Start from ordo_ledger_client_options_init (or
 * zero the struct: every 0 is the default). Strings are copied by
 * ordo_ledger_client_new.
 */
typedef struct ordo_ledger_client_options {
  /* "http://127.0.0.1:8008" or "https://ledger.example:443/sawtooth":
   * scheme http or https, a host, an optional port and path prefix; no
   * user:password@, query or fragment. Required. */
  const char *url;
  /* The Authorization header's value ("Bearer …"), or NULL for none. No
   * CR or LF. Secret: never logged, wiped on free. */
  const char *auth;
  /* https: a PEM file of CA certificates to trust instead of the system's
   * store (NULL: the system's). */
  const char *ca_file;
  /* https: 1 turns off verification of the server's certificate and host
   * name. Only for tests against self-signed nodes; never a default. */
  int insecure_skip_verify;
  unsigned connect_timeout_ms; /* per attempt; 0: 5000 */
  unsigned timeout_ms;         /* whole attempt; 0: 30000 (plus wait_s for
                                * batch_statuses) */
  unsigned max_attempts;       /* attempts in all, 1 = no retry; 0: 4 */
  unsigned backoff_base_ms;    /* first retry's backoff; 0: 100 */
  unsigned backoff_max_ms;     /* cap on one backoff; 0: 5000 */
  unsigned max_connections;    /* open connections to the host, more
                                * requests queue inside curl; 0: 8 */
  size_t max_response_bytes;   /* a larger body fails the request with
                                * ORDO_E_LEDGER_RESPONSE; 0: 64 MiB */
} ordo_ledger_client_options;

/* The defaults above (the url and auth NULL). */
void ordo_ledger_client_options_init(ordo_ledger_client_options *opt);

/*
 * A client of the ledger at opt->url in ctx. Nothing is sent yet (the first
 * request connects). ORDO_OK and *out; ORDO_E_INVAL for a NULL argument, a
 * URL that is not as above, an auth value with CR or LF, or out-of-range
 * numbers (max_attempts > 100, backoff_base_ms > backoff_max_ms, timeouts
 * over 24 h); ORDO_E_NOMEM; ORDO_E_SYSTEM when libcurl cannot start.
 * Failures record a message (ordo_last_error_message) that never contains
 * the auth value. Any thread.
 */
int ordo_ledger_client_new(ordo_ctx *ctx, const ordo_ledger_client_options *opt,
                           ordo_ledger_client **out);

/*
 * Free a client: requests still queued or in flight finish with
 * ORDO_E_CANCELED (their transfers aborted), and on a thread that is not a
 * runtime thread this waits until every request of the client has let go
 * of it (an op's state is freed just before its status is published, so
 * ordo_op_wait them for the status) and its driver has stopped: nothing of
 * the client runs after it returns. On a runtime thread (a callback) it cannot wait: the client is
 * then freed by whichever of its requests or driver runs last. The auth
 * value is wiped. Free clients before their context (or after
 * ordo_ctx_free has returned). NULL accepted.
 */
void ordo_ledger_client_free(ordo_ledger_client *c);

/*
 * The calls. Each returns an op at once; NULL only when c is NULL or memory
 * runs out (ordo_last_error says which). Arguments are copied before the
 * call returns. Bad arguments: the op has already finished with
 * ORDO_E_INVAL and a message.
 */

/* POST /batches with the len bytes of a serialized BatchList
 * (ordo_ledger_batchlist_encode), Content-Type application/octet-stream.
 * Result: {"link":"…/batch_statuses?id=…"} (202 Accepted). */
ordo_op *ordo_ledger_submit(ordo_ledger_client *c, const void *batchlist,
                            size_t len);

/*
 * The statuses of n >= 1 batches by id (exactly 128 lowercase hex digits
 * each, as the REST API demands: anything else is ORDO_E_INVAL, unsent). Up to 15
 * ids: GET /batch_statuses?id=A,B[&wait=S]; more: POST /batch_statuses[?wait=
 * S] with a JSON array of the ids. wait_s > 0 asks the node to hold the
 * answer until the batches are committed or wait_s seconds pass (0..3600;
 * 0: answer at once). Result: the node's answer, checked to be an object
 * whose "data" is an array of {"id","status",…} objects, fields passed
 * through unchanged: {"data":[{"id":…,"status":"COMMITTED|INVALID|PENDING|
 * UNKNOWN","invalid_transactions":[…]}],…}.
 */
ordo_op *ordo_ledger_batch_statuses(ordo_ledger_client *c,
                                    const char *const *ids, size_t n,
                                    int wait_s);

/* GET /state/{address} (70 hex digits). Result: {"data":"<base64>",
 * "head":"<block id>"} (head when the node gives it). ORDO_E_NOT_FOUND
 * when the address has no value (404, code 75). */
ordo_op *ordo_ledger_state_get(ordo_ledger_client *c, const char *address);

/*
 * GET /state?address=PREFIX (0..70 hex digits; "" or NULL: all state),
 * following paging.next page after page (its query string, always against
 * this client's URL, never another host) until a page has none. Result:
 * {"data":[{"address":…,"data":"<base64>"},…]}, every page's entries in
 * order. At most 100000 pages.
 */
ordo_op *ordo_ledger_state_list(ordo_ledger_client *c, const char *prefix);

/* GET /blocks?limit=N (1..1000; 0: the node's default page). Result: the
 * node's answer, checked to be an object with a "data" array of objects:
 * {"data":[{"header":{…},"header_signature":…,"batches":[…]}],…}, newest
 * first. */
ordo_op *ordo_ledger_blocks(ordo_ledger_client *c, unsigned limit);

/* ------------------------------------------------------------------------ */
/* Internal: parsing what the server sends, without a network (tests, fuzz) */
/* ------------------------------------------------------------------------ */

/*
 * Every parser takes len untrusted bytes at body (NULL when len is 0), and
 * returns ORDO_OK, ORDO_E_LEDGER_RESPONSE (with *why, a static string,
 * saying what is wrong) or ORDO_E_NOMEM. On success *out is a new jansson
 * value the caller json_decref's; on failure *out is NULL.
 */
struct json_t;

/* A Sawtooth error body ({"error":{"code":N,"title":…,"message":…}}) of an
 * answer with HTTP status http_status: writes "400 code 30: Title: Message"
 * into msg (cap bytes, always NUL-terminated when cap > 0; the server's text
 * truncated and its control characters replaced) and sets *code to N (-1
 * when there is none). A body that is not such an error still gives a
 * message ("502 (no Sawtooth error in the body)") and returns
 * ORDO_E_LEDGER_RESPONSE. */
int ordo__ledger_parse_error(long http_status, const void *body, size_t len,
                             char *msg, size_t cap, int *code);

/* POST /batches: {"link":"…"}. *out: {"link":…}. */
int ordo__ledger_parse_link(const void *body, size_t len, struct json_t **out,
                            const char **why);

/* /batch_statuses: the whole object, checked as described above. */
int ordo__ledger_parse_statuses(const void *body, size_t len,
                                struct json_t **out, const char **why);

/* GET /state/{address}: *out: {"data":…[,"head":…]}; data must be base64. */
int ordo__ledger_parse_state(const void *body, size_t len, struct json_t **out,
                             const char **why);

/*
 * One page of GET /state?address=: appends its entries ({"address","data"},
 * checked) to the array acc, and sets *next_query to a new string (free())
 * holding the query string of paging.next ("address=…&start=…"), or NULL on
 * the last page. A query with characters outside [A-Za-z0-9._~%&=+,:-], or
 * a next link whose path does not end in "/state", is malformed. On failure
 * acc may hold some of the page's entries.
 */
int ordo__ledger_parse_state_page(const void *body, size_t len,
                                  struct json_t *acc, char **next_query,
                                  const char **why);

/* GET /blocks: the whole object, "data" an array of objects. */
int ordo__ledger_parse_blocks(const void *body, size_t len,
                              struct json_t **out, const char **why);

#endif /* ORDO_LEDGER_REST_H */

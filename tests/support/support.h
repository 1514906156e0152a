/*
 * support.h — helpers shared by ordo's cmocka tests.
 *
 * Tests wait on events, never on the clock: a latch counts callbacks down, a
 * gate holds a stage until the test opens it, and the cancellable gate wait is
 * how a blocked stage observes ordo_op_cancelled() at its checkpoint.
 *
 * cmocka's assert_* may only be used on the test's own thread. Code that runs
 * on runtime threads (stages, callbacks) or on helper threads checks with
 * SUPPORT_CHECK, which counts failures; the test then asserts
 * support_take_failures() == 0 once the work is done.
 */
#ifndef ORDO_TEST_SUPPORT_H
#define ORDO_TEST_SUPPORT_H

#include "ordo.h"

#include <pthread.h>
#include <stddef.h>

/* ---- failures seen off the test thread --------------------------------- */

/* Record a failed check (prints where) if cond is false. Any thread. */
#define SUPPORT_CHECK(cond)                                                   \
  ((cond) ? (void)0 : support_fail(__FILE__, __LINE__, #cond))

void support_fail(const char *file, int line, const char *what);

/* The number of failed checks since the last call, and reset it to 0. */
int support_take_failures(void);

/* ---- countdown latch ---------------------------------------------------- */

/* support_latch_wait returns once support_latch_count_down has been called
 * count times. Destroy it only after every counting thread is done with it
 * (in practice: after ordo_ctx_free has joined the runtime threads). */
typedef struct support_latch {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  long count;
} support_latch;

void support_latch_init(support_latch *l, long count);
void support_latch_count_down(support_latch *l);
void support_latch_wait(support_latch *l);
void support_latch_destroy(support_latch *l);

/* ---- gate ---------------------------------------------------------------- */

/* Closed when initialised; support_gate_open lets every waiter through. */
typedef struct support_gate {
  pthread_mutex_t mu;
  pthread_cond_t cv; /* uses CLOCK_MONOTONIC for timed waits */
  int open;
} support_gate;

void support_gate_init(support_gate *g);
void support_gate_open(support_gate *g);
void support_gate_wait(support_gate *g);

/*
 * For a stage: block until the gate opens (returns 1) or the running op is
 * asked to cancel (ordo_op_cancelled(), returns 0). Wakes on support_gate_poke
 * and also re-checks ordo_op_cancelled() every few milliseconds, because a
 * context shutdown asks for cancellation without poking the gate.
 */
int support_gate_wait_cancellable(support_gate *g);

/* Wake the waiters without opening, so they re-check ordo_op_cancelled(). */
void support_gate_poke(support_gate *g);
void support_gate_destroy(support_gate *g);

/* A stage blocked on a gate, with a latch it counts down once it runs. */
typedef struct support_blocker {
  support_latch started;
  support_gate gate;
  int cancellable; /* 1: also return when the op is asked to cancel */
} support_blocker;

void support_blocker_init(support_blocker *b, int cancellable);
void support_blocker_destroy(support_blocker *b);

/* ordo_stage_fn with arg = support_blocker *: counts "started" down, waits on
 * the gate; returns ORDO_OK when it opened, ORDO_E_CANCELED when it saw a
 * cancel request (cancellable blockers only). */
int support_blocker_stage(ordo_op *op, void *arg);

/* ---- threads -------------------------------------------------------------- */

/* Run fn(args + i * stride) on n new threads and join them all. */
void support_run_threads(int n, void *(*fn)(void *), void *args, size_t stride);

/* ---- metrics --------------------------------------------------------------- */

/* classes.<cls>.<key> from ordo_ctx_metrics_json, or -1 if absent. */
long long support_metric(ordo_ctx *ctx, const char *cls, const char *key);

/* Spin (sched_yield) until support_metric(ctx, cls, key) == value: waits for
 * an event the runtime shows only through its metrics. */
void support_metric_wait_eq(ordo_ctx *ctx, const char *cls, const char *key,
                            long long value);

/* ---- HTTP (libcurl's easy API) ------------------------------------------ */

/* What came back from support_http. */
typedef struct support_http_answer {
  long status;            /* the response code; -1 when curl failed */
  char *body;             /* malloc'd, "" when empty; the caller frees it */
  char retry_after[32];   /* the Retry-After header's value, "" when absent */
  char content_type[128]; /* the Content-Type header's value, "" when absent */
} support_http_answer;

/*
 * One request: method to url with the header lines in headers (a
 * NULL-terminated array, or NULL) and "Expect:" (no 100-continue); a POST
 * sends the len bytes at body. Bounded by timeout_ms. No cmocka asserts, so
 * any thread may call it, once the test has called curl_global_init.
 */
void support_http(const char *method, const char *url,
                  const char *const *headers, const void *body, size_t len,
                  long timeout_ms, support_http_answer *a);

/* ---- temporary directories (test thread only) -------------------------- */

/* A new empty directory /tmp/<prefix>-XXXXXX, malloc'd (asserted). */
char *support_tmpdir(const char *prefix);

/* Remove d and everything under it, then free d. NULL: nothing. */
void support_rmdir_all(char *d);

/* ---- running a command to its end (test thread only) ------------------- */

/* Wait for op and release it; return its status and, when out is not NULL,
 * a malloc'd copy of its JSON result (NULL if none). A failure must carry a
 * message (asserted). */
int support_run(ordo_op *op, char **out);

/* A secret marker, and malformed JSON whose token at the error is that
 * marker: jansson's error text would quote it ("':' expected near
 * '"SECRET-MARKER-1"'"), so a message built from it leaks the secret. */
#define SUPPORT_MARKER "SECRET-MARKER-1"
#define SUPPORT_BAD_WITH_MARKER "{\"key\" \"" SUPPORT_MARKER "\"}"

/* Wait for op, which must fail; neither its message nor the thread's last
 * error may carry SUPPORT_MARKER (what names the call in the failure).
 * Releases op; returns its status. */
int support_run_no_marker(ordo_op *op, const char *what);

/* support_run, asserting ORDO_OK, and the result parsed (json_decref it). */
struct json_t;
struct json_t *support_run_json(ordo_op *op);

/* ---- jansson allocation failures (test thread only) -------------------- */

/*
 * Count jansson's allocations (json_set_alloc_funcs, every thread) from
 * now and make some fail: allocation number n (0-based) and every later one
 * with support_jansson_fail_after, or only numbers a and b (b < 0: only a)
 * with support_jansson_fail_at. A negative n or a fails none (counting
 * only). support_jansson_restore puts plain malloc/free back and returns
 * how many allocations were counted. Set and restore while no other thread
 * uses jansson.
 */
void support_jansson_fail_after(long n);
void support_jansson_fail_at(long a, long b);
long support_jansson_restore(void);
/* How many allocations have failed since the last fail_after/fail_at. */
long support_jansson_failures(void);

/* ---- hostile clients: raw sockets (test thread only) -------------------- */

/*
 * Each client address is a loopback address of its own (the client end is
 * bound to it, src/http/loopback.h), so the servers' per-address limits
 * can be met from one process.
 */

/*
 * One request (text, sent as it is: say Connection: close) from 127.0.0.1
 * to 127.0.0.1:port on a new connection: the status of the answer, or -1
 * when none came within timeout_ms. *closed_ms (when not NULL) gets how
 * long until the server closed, or -1.
 */
int support_hc_request(int port, const char *text, unsigned timeout_ms,
                       long long *closed_ms);

/* The half-open connections of support_hc_run. */
#define SUPPORT_HC_HALF_OPEN 300

/* What support_hc_run saw. */
typedef struct support_hc_result {
  int half_open;        /* connected from 127.0.0.2 */
  int closed_early;     /* closed by the server within 900 ms, before any
                           header timeout of 1 s: refused over the cap */
  int closed_late;      /* closed later: by the header timeout */
  int open_at_end;      /* never closed */
  long long first_late_ms; /* the earliest late close, ms after opening */
  long long trickle_closed_ms; /* -1: never */
  int probes, probes_ok;
} support_hc_result;

/*
 * SUPPORT_HC_HALF_OPEN connections from 127.0.0.2 that send nothing, and
 * one from 127.0.0.3 that trickles a request header a byte every 100 ms,
 * for run_ms; meanwhile a probe (probe_text, answered 200) from 127.0.0.1
 * every 100 ms. Every connection is closed on the way out. Asserts that the
 * trickler connects; prints what it saw (a "hostile: ..." line).
 */
void support_hc_run(int port, const char *probe_text, unsigned run_ms,
                    support_hc_result *res);

#endif /* ORDO_TEST_SUPPORT_H */

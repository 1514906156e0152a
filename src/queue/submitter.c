/*
 * submitter.c — the loop between a journal and a ledger port (queue.h,
 * "The ledger port and the submitter").
 *
 * State: the batches in flight (sent, no verdict yet), each with its seq so
 * that anything sent again goes in submission order, and the statuses
 * calls outstanding ("polls"). A flight is covered by at most one poll
 * (flight.poll names it; 0: none). Everything else lives in the journal.
 *
 * A step: settle what the journal has as UNKNOWN (after a restart; blocking,
 * before anything new), then record the verdicts of the polls that have
 * answered, send again what the ledger does not know (before anything new,
 * in submission order), take and send new batches, and start polls for the
 * flights no poll covers. Polls are long (statuses with wait_s): the ledger
 * holds the answer until no batch in it is pending, so there is about one
 * request per group of batches sent, and ordo_submitter_wait wakes the
 * driving thread when one answers. A poll's verdicts reach the journal in
 * one ordo_journal_finish_many call. Submits stay blocking inside the step: they are
 * short, and a refusal must be split before anything else is sent.
 *
 * A refusal of a whole list (BATCH_REFUSED, TOO_LARGE) is split in halves
 * until the refused batch stands alone; it is then INVALID. Nothing is
 * refused "for now": a transport failure keeps the batches in flight and
 * the next poll decides (UNKNOWN: sent again), and every failure is
 * recorded with its cause (progress.last_error) and reported through
 * on_ledger_error.
 *
 * Lock: s->mu guards prog (read by other threads through get_progress).
 * The stepping thread owns everything else. s->mu is a leaf: nothing is
 * called with it held.
 */
#include "queue/queue.h"
#include "runtime/runtime.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define TAKES_PER_STEP 16 /* then look at verdicts again: they free more */
#define FAIL_PAUSE_MAX_MS 5000
#define MAX_POLLS_CAP 64

typedef struct flight {
  char *id;
  uint64_t seq;
  unsigned poll;            /* the poll covering it, 0: none */
  unsigned long long due_ns; /* not polled before this */
} flight;

typedef struct poll_call {
  ordo_op *op;
  unsigned id;
  char **ids;               /* the flights' ids it asks about (borrowed) */
  ordo_ledger_status *out;  /* the answer, filled by the port */
  size_t n;
} poll_call;

struct ordo_submitter {
  ordo_journal *j;
  ordo_ledger_port port;
  ordo_submitter_options opt;
  flight *fl;
  size_t nfl, capfl;
  poll_call polls[MAX_POLLS_CAP];
  size_t npolls;
  unsigned next_poll_id;
  ordo_op *probe;   /* a probe out, or NULL */
  unsigned long long contact_ns; /* the last call's end (answer or not) */
  int recovered;    /* the journal's UNKNOWN batches have been settled */
  unsigned fail_pause_ms; /* pause before polling again after a failure */
  int wake_fd;      /* eventfd: ordo_submitter_wake */
  pthread_mutex_t mu; /* guards prog */
  ordo_submitter_progress prog;
};

static const char *const cause_names[ORDO_SUBMITTER_CAUSES] = {
    "connect", "timeout",  "unavailable", "busy",     "refused", "too_large",
    "rejected", "auth",    "tls",         "response", "other"};

const char *ordo_submitter_cause_name(int cause) {
  return cause >= 0 && cause < ORDO_SUBMITTER_CAUSES ? cause_names[cause]
                                                     : NULL;
}

void ordo_submitter_options_init(ordo_submitter_options *opt) {
  memset(opt, 0, sizeof(*opt));
  opt->max_per_submit = 100;
  opt->max_per_status = 1000;
  opt->max_submit_bytes = 10u << 20;
  opt->status_wait_s = 10;
  opt->max_polls = 4;
  opt->repoll_ms = 20;
  opt->stall_ms = 2000;
  opt->probe_ms = 5000;
}

/* ---- health ---------------------------------------------------------------- */

static int cause_of(int rc) {
  switch (rc) {
  case ORDO_E_LEDGER_CONNECT:
    return ORDO_SUBMITTER_CAUSE_CONNECT;
  case ORDO_E_TIMEOUT:
    return ORDO_SUBMITTER_CAUSE_TIMEOUT;
  case ORDO_E_LEDGER_UNAVAILABLE:
    return ORDO_SUBMITTER_CAUSE_UNAVAILABLE;
  case ORDO_E_LEDGER_BUSY:
    return ORDO_SUBMITTER_CAUSE_BUSY;
  case ORDO_E_LEDGER_BATCH_REFUSED:
    return ORDO_SUBMITTER_CAUSE_REFUSED;
  case ORDO_E_LEDGER_TOO_LARGE:
    return ORDO_SUBMITTER_CAUSE_TOO_LARGE;
  case ORDO_E_LEDGER_REJECTED:
    return ORDO_SUBMITTER_CAUSE_REJECTED;
  case ORDO_E_LEDGER_AUTH:
    return ORDO_SUBMITTER_CAUSE_AUTH;
  case ORDO_E_LEDGER_TLS:
    return ORDO_SUBMITTER_CAUSE_TLS;
  case ORDO_E_LEDGER_RESPONSE:
    return ORDO_SUBMITTER_CAUSE_RESPONSE;
  default:
    return ORDO_SUBMITTER_CAUSE_OTHER;
  }
}

/* A failure that is still an answer from the ledger: it is up. */
static int is_answer(int cause) {
  return cause == ORDO_SUBMITTER_CAUSE_REFUSED ||
         cause == ORDO_SUBMITTER_CAUSE_TOO_LARGE ||
         cause == ORDO_SUBMITTER_CAUSE_BUSY ||
         cause == ORDO_SUBMITTER_CAUSE_REJECTED;
}

static void report(ordo_submitter *s, ordo_submitter_event ev) {
  ordo_submitter_progress p;
  if (s->opt.on_ledger_error == NULL)
    return;
  ordo_submitter_get_progress(s, &p);
  s->opt.on_ledger_error(s->opt.on_ledger_error_ud, ev, &p);
}

/* A ledger call failed with rc; fmt says what and why. counts: count it in
 * errors_by_cause (a stall is counted once its call ends). */
static void note_failure(ordo_submitter *s, int rc, int counts,
                         const char *fmt, ...) {
  int cause = rc == ORDO_E_PENDING ? ORDO_SUBMITTER_CAUSE_TIMEOUT
                                   : cause_of(rc);
  unsigned long long now = ordo__wall_ms();
  va_list ap;
  s->contact_ns = ordo__now_ns();
  pthread_mutex_lock(&s->mu);
  if (counts)
    s->prog.errors_by_cause[cause]++;
  s->prog.last_error_code = rc == ORDO_E_PENDING ? ORDO_E_TIMEOUT : rc;
  s->prog.last_error_cause = cause;
  s->prog.last_error_ms = now;
  va_start(ap, fmt);
  vsnprintf(s->prog.last_error, sizeof s->prog.last_error, fmt, ap);
  va_end(ap);
  if (!is_answer(cause)) {
    if (!s->prog.ledger_down)
      s->prog.down_since_ms = now;
    s->prog.ledger_down = 1;
  } else {
    s->prog.ledger_down = 0;
    s->prog.down_since_ms = 0;
  }
  pthread_mutex_unlock(&s->mu);
  report(s, is_answer(cause) ? ORDO_SUBMITTER_EVENT_REFUSED
                             : ORDO_SUBMITTER_EVENT_DOWN);
}

/* A call answered: the ledger is up (said once, when it was down). */
static void note_answer(ordo_submitter *s) {
  int was;
  s->contact_ns = ordo__now_ns();
  pthread_mutex_lock(&s->mu);
  was = s->prog.ledger_down;
  s->prog.ledger_down = 0;
  s->prog.down_since_ms = 0;
  pthread_mutex_unlock(&s->mu);
  s->fail_pause_ms = 0;
  if (was)
    report(s, ORDO_SUBMITTER_EVENT_UP);
}

/* ---- flights ----------------------------------------------------------------- */

static int flight_add(ordo_submitter *s, const char *id, uint64_t seq) {
  if (s->nfl == s->capfl) {
    size_t nc = s->capfl ? s->capfl * 2 : 64;
    flight *f = realloc(s->fl, nc * sizeof(*f));
    if (f == NULL)
      return ordo__set_last_error(ORDO_E_NOMEM, NULL);
    s->fl = f;
    s->capfl = nc;
  }
  size_t n = strlen(id) + 1;
  if ((s->fl[s->nfl].id = malloc(n)) == NULL)
    return ordo__set_last_error(ORDO_E_NOMEM, NULL);
  memcpy(s->fl[s->nfl].id, id, n);
  s->fl[s->nfl].seq = seq;
  s->fl[s->nfl].poll = 0;
  s->fl[s->nfl].due_ns = 0;
  s->nfl++;
  return ORDO_OK;
}

static int seq_cmp(uint64_t a, uint64_t b) { return a < b ? -1 : a > b; }

static int flight_cmp(const void *a, const void *b) {
  return seq_cmp(((const flight *)a)->seq, ((const flight *)b)->seq);
}

static int item_cmp(const void *a, const void *b) {
  return seq_cmp(((const ordo_queue_item *)a)->seq,
                 ((const ordo_queue_item *)b)->seq);
}

/* Free what poll p holds besides its op. */
static void poll_clear(poll_call *p) {
  ordo_ledger_status_clear(p->out, p->n);
  free(p->out);
  free(p->ids);
  p->out = NULL;
  p->ids = NULL;
  p->n = 0;
}

/* ---- options, new, free ------------------------------------------------------ */

/* An enqueue took batches for us and they are durable: go (see
 * ordo_journal_set_take_ahead). On the storage thread. */
static void wake_on_ahead(void *ud) {
  ordo_submitter *s = ud;
  (void)eventfd_write(s->wake_fd, 1);
}

int ordo_submitter_new(ordo_journal *j, const ordo_ledger_port *port,
                       const ordo_submitter_options *opt,
                       ordo_submitter **out) {
  ordo_submitter *s;
  if (out != NULL)
    *out = NULL;
  if (j == NULL || port == NULL || out == NULL || port->submit == NULL ||
      port->statuses == NULL)
    return ordo__set_last_error(ORDO_E_INVAL, "submitter: bad argument");
  if ((s = calloc(1, sizeof(*s))) == NULL)
    return ordo__set_last_error(ORDO_E_NOMEM, NULL);
  if ((s->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
    free(s);
    return ordo__set_last_error(ORDO_E_SYSTEM, "submitter: eventfd: %s",
                                strerror(errno));
  }
  if (pthread_mutex_init(&s->mu, NULL) != 0)
    abort();
  s->j = j;
  s->port = *port;
  s->contact_ns = ordo__now_ns();
  ordo_submitter_options_init(&s->opt);
  if (opt != NULL) {
    s->opt.on_verdict = opt->on_verdict;
    s->opt.on_verdict_ud = opt->on_verdict_ud;
    s->opt.on_ledger_error = opt->on_ledger_error;
    s->opt.on_ledger_error_ud = opt->on_ledger_error_ud;
    if (opt->max_per_submit > 0)
      s->opt.max_per_submit = opt->max_per_submit;
    if (opt->max_per_status > 0)
      s->opt.max_per_status = opt->max_per_status;
    if (opt->max_submit_bytes > 0)
      s->opt.max_submit_bytes = opt->max_submit_bytes;
    if (opt->status_wait_s >= 0)
      s->opt.status_wait_s = opt->status_wait_s;
    if (opt->max_polls > 0)
      s->opt.max_polls = opt->max_polls < MAX_POLLS_CAP ? opt->max_polls
                                                         : MAX_POLLS_CAP;
    if (opt->repoll_ms > 0)
      s->opt.repoll_ms = opt->repoll_ms;
    if (opt->stall_ms > 0)
      s->opt.stall_ms = opt->stall_ms;
    s->opt.give_up_ms = opt->give_up_ms;
    s->opt.probe_ms = opt->probe_ms;
    s->opt.no_take_ahead = opt->no_take_ahead;
  }
  {
    /* ORDO_TAKE_AHEAD=0: off whatever the options say (for measuring it). */
    const char *e = getenv("ORDO_TAKE_AHEAD");
    if (e != NULL && strcmp(e, "0") == 0)
      s->opt.no_take_ahead = 1;
  }
  if (!s->opt.no_take_ahead &&
      ordo_journal_set_take_ahead(j, s->opt.max_per_submit, wake_on_ahead,
                                  s) != ORDO_OK) {
    close(s->wake_fd);
    pthread_mutex_destroy(&s->mu);
    free(s);
    return ordo_last_error();
  }
  *out = s;
  return ORDO_OK;
}

void ordo_submitter_free(ordo_submitter *s) {
  if (s == NULL)
    return;
  for (size_t i = 0; i < s->npolls; i++) {
    (void)ordo_op_cancel(s->polls[i].op);
    (void)ordo_op_wait(s->polls[i].op, -1); /* then out is ours again */
    ordo_op_release(s->polls[i].op);
    poll_clear(&s->polls[i]);
  }
  if (s->probe != NULL) {
    (void)ordo_op_cancel(s->probe);
    (void)ordo_op_wait(s->probe, -1);
    ordo_op_release(s->probe);
  }
  /* No enqueue takes for a submitter that is gone. */
  if (!s->opt.no_take_ahead)
    (void)ordo_journal_set_take_ahead(s->j, 0, NULL, NULL);
  for (size_t i = 0; i < s->nfl; i++)
    free(s->fl[i].id);
  free(s->fl);
  close(s->wake_fd);
  pthread_mutex_destroy(&s->mu);
  free(s);
}

void ordo_submitter_get_progress(ordo_submitter *s,
                                 ordo_submitter_progress *p) {
  pthread_mutex_lock(&s->mu);
  *p = s->prog;
  pthread_mutex_unlock(&s->mu);
}

static void count(ordo_submitter *s, unsigned long long *field,
                  unsigned long long n) {
  pthread_mutex_lock(&s->mu);
  *field += n;
  pthread_mutex_unlock(&s->mu);
}

static void set_in_flight(ordo_submitter *s) {
  pthread_mutex_lock(&s->mu);
  s->prog.in_flight = s->nfl;
  pthread_mutex_unlock(&s->mu);
}

/* Record v[0..n) (one journal call) and tell whoever asked; *done gets
 * how many were recorded (the first ones), the rest stay in flight. */
static int verdicts(ordo_submitter *s, const ordo_queue_verdict *v, size_t n,
                    size_t *done) {
  size_t i, ncommit = 0;
  int rc = ordo_journal_finish_many(s->j, v, n, done);
  for (i = 0; i < *done; i++) {
    ncommit += v[i].outcome == ORDO_QUEUE_COMMITTED;
    if (s->opt.on_verdict != NULL)
      s->opt.on_verdict(s->opt.on_verdict_ud, v[i].id, v[i].outcome);
  }
  pthread_mutex_lock(&s->mu);
  s->prog.committed += ncommit;
  s->prog.invalid += *done - ncommit;
  pthread_mutex_unlock(&s->mu);
  return rc;
}

/* Record one verdict (see verdicts). */
static int verdict(ordo_submitter *s, const char *id, ordo_queue_state st,
                   const char *why) {
  ordo_queue_verdict v = {id, st, why};
  size_t done = 0;
  return verdicts(s, &v, 1, &done);
}

void ordo_ledger_status_clear(ordo_ledger_status *out, size_t n) {
  for (size_t i = 0; out != NULL && i < n; i++) {
    free(out[i].reason);
    out[i].reason = NULL;
    out[i].state = ORDO_QUEUE_UNKNOWN;
  }
}

/* Ask the port about ids[0..n) into out[0..n) (the caller's until the op
 * completes): each as the journal has it (its ledger id, its payload); one
 * the journal no longer has goes by its id alone (the ledger cannot know
 * it: UNKNOWN). NULL when out of memory. */
static ordo_op *ask_statuses(ordo_submitter *s, const char *const *ids,
                             size_t n, int wait_s, ordo_ledger_status *out) {
  ordo_queue_item *items = calloc(n > 0 ? n : 1, sizeof(*items));
  ordo_op *op;
  if (items == NULL)
    return NULL;
  for (size_t i = 0; i < n; i++) {
    out[i].state = ORDO_QUEUE_UNKNOWN;
    out[i].reason = NULL;
    /* The pointers stay valid during the call: this thread is the one
     * that takes, and a take is what lets finished batches go. */
    if (ordo_journal_item(s->j, ids[i], &items[i]) != ORDO_OK) {
      memset(&items[i], 0, sizeof(items[i]));
      items[i].id = ids[i];
    }
  }
  op = s->port.statuses(s->port.self, items, n,
                        s->port.can_wait ? wait_s : 0, out);
  free(items);
  return op;
}

/* ---- waiting for one port op ----------------------------------------------- */

/*
 * Wait for a blocking port call (submits, and the statuses of recovery),
 * saying so when it has no answer after stall_ms, and giving up on it once
 * the ledger has been down for give_up_ms. Returns the op's status; its
 * message (or the stall's) is copied into msg. The op is released.
 */
static int port_call(ordo_submitter *s, ordo_op *op, const char *what,
                     char *msg, size_t cap) {
  unsigned long long t0 = ordo__now_ns();
  int rc, stalled = 0;
  msg[0] = '\0';
  if (op == NULL) {
    snprintf(msg, cap, "%s: out of memory", what);
    return ORDO_E_NOMEM;
  }
  while (ordo_op_wait(op, 200) == ORDO_E_TIMEOUT &&
         ordo_op_status(op) == ORDO_E_PENDING) {
    unsigned long long waited_ms = (ordo__now_ns() - t0) / 1000000ull;
    if (!stalled && waited_ms >= s->opt.stall_ms) {
      stalled = 1;
      note_failure(s, ORDO_E_PENDING, 0,
                   "%s: no answer from the ledger for %.1f s", what,
                   (double)waited_ms / 1000.0);
    }
    if (stalled && s->opt.give_up_ms > 0) {
      ordo_submitter_progress p;
      ordo_submitter_get_progress(s, &p);
      if (p.ledger_down &&
          ordo__wall_ms() - p.down_since_ms >= s->opt.give_up_ms) {
        (void)ordo_op_cancel(op); /* the transfer is aborted */
        (void)ordo_op_wait(op, -1);
        snprintf(msg, cap, "%s: no answer from the ledger for %.1f s", what,
                 (double)waited_ms / 1000.0);
        ordo_op_release(op);
        return ORDO_E_TIMEOUT;
      }
    }
  }
  rc = ordo_op_status(op);
  if (rc != ORDO_OK) {
    snprintf(msg, cap, "%s", ordo_op_message(op)[0] ? ordo_op_message(op)
                                                     : ordo_strerror(rc));
  }
  ordo_op_release(op);
  return rc;
}

/* ---- sending ------------------------------------------------------------------ */

static int send_chunk(ordo_submitter *s, const ordo_queue_item *items,
                      size_t n, int again);

/* The ledger refused items[0..n) whole with rc: split until the refused
 * batch stands alone, which is then INVALID with the ledger's message. */
static int split_refused(ordo_submitter *s, const ordo_queue_item *items,
                         size_t n, int again, const char *msg) {
  if (n == 1) {
    char why[600];
    snprintf(why, sizeof why, "refused by the ledger: %s", msg);
    count(s, &s->prog.refused, 1);
    return verdict(s, items[0].id, ORDO_QUEUE_INVALID, why);
  }
  int r = send_chunk(s, items, n / 2, again);
  if (r == ORDO_OK)
    r = send_chunk(s, items + n / 2, n - n / 2, again);
  return r;
}

/* One submit call for items[0..n); what it says decides each batch's fate.
 * again: these are resends (counted as such). */
static int send_chunk(ordo_submitter *s, const ordo_queue_item *items,
                      size_t n, int again) {
  char msg[480];
  int rc, r = ORDO_OK;

  count(s, &s->prog.submit_calls, 1);
  rc = port_call(s, s->port.submit(s->port.self, items, n), "POST /batches",
                 msg, sizeof msg);
  count(s, &s->prog.submitted, n);
  if (again)
    count(s, &s->prog.resubmitted, n);
  if (rc == ORDO_E_LEDGER_BATCH_REFUSED || rc == ORDO_E_LEDGER_TOO_LARGE) {
    /* Nothing of the list was taken: an answer, not an outage. */
    note_failure(s, rc, 1, "%s", msg);
    return split_refused(s, items, n, again, msg);
  }
  if (rc == ORDO_OK) {
    note_answer(s);
  } else {
    /* Received or not, nobody knows: keep them in flight and let the next
     * statuses call decide (UNKNOWN: sent again). */
    count(s, &s->prog.submit_errors, 1);
    note_failure(s, rc, 1, "%s", msg);
  }
  for (size_t i = 0; i < n && r == ORDO_OK; i++)
    r = flight_add(s, items[i].id, items[i].seq);
  set_in_flight(s);
  return r;
}

/* Send items[0..n) (in submission order) in chunks of at most
 * max_per_submit batches and max_submit_bytes; a batch over that alone is
 * INVALID, unsent. */
static int send_items(ordo_submitter *s, const ordo_queue_item *items,
                      size_t n, int again) {
  size_t i = 0;
  int rc = ORDO_OK;
  while (i < n && rc == ORDO_OK) {
    if (items[i].payload_len > s->opt.max_submit_bytes) {
      char why[200];
      snprintf(why, sizeof why, "larger than the ledger accepts: %zu bytes, "
               "the limit is %zu", items[i].payload_len,
               s->opt.max_submit_bytes);
      count(s, &s->prog.refused, 1);
      rc = verdict(s, items[i].id, ORDO_QUEUE_INVALID, why);
      i++;
      continue;
    }
    size_t k = 0, bytes = 0;
    while (i + k < n && k < s->opt.max_per_submit &&
           items[i + k].payload_len <= s->opt.max_submit_bytes &&
           bytes + items[i + k].payload_len <= s->opt.max_submit_bytes)
      bytes += items[i + k++].payload_len;
    rc = send_chunk(s, items + i, k, again);
    i += k;
  }
  return rc;
}

/* Send ids (in submission order) again. */
static int resend(ordo_submitter *s, char **ids, size_t n) {
  ordo_queue_item *items;
  size_t i;
  int rc = ORDO_OK;
  if (n == 0)
    return ORDO_OK;
  if ((items = calloc(n, sizeof(*items))) == NULL)
    return ordo__set_last_error(ORDO_E_NOMEM, NULL);
  for (i = 0; i < n && rc == ORDO_OK; i++)
    rc = ordo_journal_item(s->j, ids[i], &items[i]);
  if (rc == ORDO_OK) {
    qsort(items, n, sizeof(*items), item_cmp);
    rc = send_items(s, items, n, 1);
  }
  free(items);
  return rc;
}

/* ---- after a restart -------------------------------------------------------- */

/* The journal's UNKNOWN batches, before anything new. Blocking: nothing
 * else may be sent until they are settled. */
static int recover(ordo_submitter *s) {
  char *ids[256];
  size_t n = 0, total = 0, i;
  int rc;

  for (;;) {
    ordo_ledger_status out[256];
    ordo_queue_verdict v[256];
    char *again[256];
    size_t nagain = 0, nv = 0, done = 0;
    char msg[480];

    if ((rc = ordo_journal_unknown(s->j, ids, 256, &n, &total)) != ORDO_OK)
      return rc;
    if (n == 0) {
      s->recovered = 1;
      return ORDO_OK;
    }
    count(s, &s->prog.status_calls, 1);
    rc = port_call(s,
                   ask_statuses(s, (const char *const *)ids, n, 0, out),
                   "GET /batch_statuses", msg, sizeof msg);
    if (rc != ORDO_OK) {
      count(s, &s->prog.status_errors, 1);
      note_failure(s, rc, 1, "%s", msg[0] ? msg : ordo_strerror(rc));
      ordo_ledger_status_clear(out, n);
      for (i = 0; i < n; i++)
        free(ids[i]);
      return ORDO_OK; /* the ledger did not answer: next round */
    }
    note_answer(s);
    for (i = 0; i < n; i++)
      if (out[i].state == ORDO_QUEUE_COMMITTED ||
          out[i].state == ORDO_QUEUE_INVALID)
        v[nv++] = (ordo_queue_verdict){ids[i], out[i].state, out[i].reason};
    rc = nv > 0 ? verdicts(s, v, nv, &done) : ORDO_OK;
    for (i = 0; i < n && rc == ORDO_OK; i++) {
      uint64_t seq = 0;
      if (out[i].state == ORDO_QUEUE_SUBMITTED) { /* pending: in flight */
        (void)ordo_journal_batch_status(s->j, ids[i], NULL, &seq, NULL);
        rc = flight_add(s, ids[i], seq);
      } else if (out[i].state == ORDO_QUEUE_UNKNOWN) {
        again[nagain++] = ids[i]; /* in submission order already */
      }
    }
    ordo_ledger_status_clear(out, n);
    if (rc == ORDO_OK)
      rc = resend(s, again, nagain);
    for (i = 0; rc == ORDO_OK && i < n; i++) {
      ordo_queue_state st;
      if (ordo_journal_batch_status(s->j, ids[i], &st, NULL, NULL) == ORDO_OK &&
          st == ORDO_QUEUE_UNKNOWN)
        rc = ordo_journal_confirm_submitted(s->j, ids[i]);
    }
    for (i = 0; i < n; i++)
      free(ids[i]);
    if (rc != ORDO_OK)
      return rc;
  }
}

/* ---- polls ---------------------------------------------------------------------- */

/* The index in p->ids of the flight id f (borrowed there): the flights keep
 * the order they were asked in, so the search starts at *cur. */
static size_t poll_index(const poll_call *p, const char *f, size_t *cur) {
  for (size_t t = 0; t < p->n; t++) {
    size_t k = (*cur + t) % p->n;
    if (p->ids[k] == f) {
      *cur = k + 1;
      return k;
    }
  }
  return (size_t)-1; /* cannot happen: every flight it covers is there */
}

/* Record what the answered poll p says about the flights it covers: the
 * verdicts in one journal call, then each flight kept (pending, or a
 * verdict not recorded), dropped (recorded) or, when the ledger does not
 * know it, put into again (ids borrowed from the flights, which are
 * dropped from the list: resend adds them back). */
static int poll_settle(ordo_submitter *s, poll_call *p, char ***again,
                       size_t *nagain, int *failed) {
  int rc = ordo_op_status(p->op), r = ORDO_OK;
  unsigned long long now = ordo__now_ns();
  ordo_queue_verdict *v = NULL;
  unsigned char *fin = NULL; /* per index: its verdict is recorded */
  size_t i, k = 0, nv = 0, done = 0, cur = 0;

  if (rc != ORDO_OK && rc != ORDO_E_CANCELED) {
    const char *m = ordo_op_message(p->op);
    count(s, &s->prog.status_errors, 1);
    note_failure(s, rc, 1, "%s", m[0] ? m : ordo_strerror(rc));
    s->fail_pause_ms = s->fail_pause_ms == 0 ? 200 : s->fail_pause_ms * 2;
    if (s->fail_pause_ms > FAIL_PAUSE_MAX_MS)
      s->fail_pause_ms = FAIL_PAUSE_MAX_MS;
    *failed = 1;
  } else if (rc == ORDO_OK) {
    note_answer(s);
    if ((v = malloc((p->n > 0 ? p->n : 1) * sizeof(*v))) == NULL ||
        (fin = calloc(p->n > 0 ? p->n : 1, 1)) == NULL) {
      free(v);
      return ordo__set_last_error(ORDO_E_NOMEM, NULL);
    }
    for (i = 0; i < p->n; i++)
      if (p->out[i].state == ORDO_QUEUE_COMMITTED ||
          p->out[i].state == ORDO_QUEUE_INVALID)
        v[nv++] = (ordo_queue_verdict){p->ids[i], p->out[i].state,
                                       p->out[i].reason};
    if (nv > 0)
      r = verdicts(s, v, nv, &done);
    /* v is in index order: its first done are recorded. */
    for (i = 0, k = 0; i < p->n && k < done; i++)
      if (p->out[i].state == ORDO_QUEUE_COMMITTED ||
          p->out[i].state == ORDO_QUEUE_INVALID)
        fin[i] = 1, k++;
    free(v);
  }
  for (i = 0, k = 0; i < s->nfl; i++) {
    flight *f = &s->fl[i];
    size_t x;
    if (f->poll != p->id) {
      s->fl[k++] = *f;
      continue;
    }
    f->poll = 0;
    x = fin != NULL ? poll_index(p, f->id, &cur) : (size_t)-1;
    if (x == (size_t)-1) { /* no answer: ask again after a pause */
      f->due_ns = now + (unsigned long long)s->fail_pause_ms * 1000000ull;
      s->fl[k++] = *f;
    } else if (fin[x]) {
      free(f->id); /* recorded */
    } else if (p->out[x].state == ORDO_QUEUE_UNKNOWN && r == ORDO_OK) {
      (*again)[(*nagain)++] = f->id; /* freed by the caller after resend */
    } else {
      /* Pending, or a verdict the journal refused for now (it is asked
       * for and recorded again once it can be; until then nothing is
       * sent again either). */
      f->due_ns = now + (unsigned long long)s->opt.repoll_ms * 1000000ull;
      s->fl[k++] = *f;
    }
  }
  s->nfl = k;
  free(fin);
  return r;
}

/* Settle every poll that has answered; send again what the ledger lost.
 * *hold: something was sent again, or a poll failed — nothing new now. */
static int polls_collect(ordo_submitter *s, int *hold) {
  char **again;
  size_t nagain = 0, i, k = 0;
  int rc = ORDO_OK, failed = 0;

  if (s->npolls == 0)
    return ORDO_OK;
  if ((again = malloc((s->nfl > 0 ? s->nfl : 1) * sizeof(*again))) == NULL)
    return ordo__set_last_error(ORDO_E_NOMEM, NULL);
  for (i = 0; i < s->npolls; i++) {
    poll_call *p = &s->polls[i];
    if (ordo_op_status(p->op) == ORDO_E_PENDING) {
      s->polls[k++] = *p;
      continue;
    }
    if (rc == ORDO_OK)
      rc = poll_settle(s, p, &again, &nagain, &failed);
    ordo_op_release(p->op);
    poll_clear(p);
  }
  s->npolls = k;
  if (rc == ORDO_OK && nagain > 0)
    rc = resend(s, again, nagain);
  for (i = 0; i < nagain; i++)
    free(again[i]);
  free(again);
  set_in_flight(s);
  *hold = failed || nagain > 0;
  return rc;
}

/* Start polls for the flights that no poll covers and that are due, at most
 * max_polls outstanding, each for up to max_per_status of them. */
static int polls_start(ordo_submitter *s) {
  unsigned long long now = ordo__now_ns();
  size_t i = 0;

  while (s->nfl > 0 && s->npolls < s->opt.max_polls && i < s->nfl) {
    poll_call *p = &s->polls[s->npolls];
    size_t n = 0, first = i, cap = s->opt.max_per_status;
    unsigned id = ++s->next_poll_id ? s->next_poll_id : ++s->next_poll_id;
    ordo_op *op;
    for (; i < s->nfl && n < cap; i++)
      n += s->fl[i].poll == 0 && s->fl[i].due_ns <= now;
    if (n == 0)
      break;
    if ((p->ids = malloc(n * sizeof(*p->ids))) == NULL ||
        (p->out = calloc(n, sizeof(*p->out))) == NULL) {
      free(p->ids);
      p->ids = NULL;
      return ordo__set_last_error(ORDO_E_NOMEM, NULL);
    }
    p->n = 0;
    for (size_t f = first; f < i; f++)
      if (s->fl[f].poll == 0 && s->fl[f].due_ns <= now)
        p->ids[p->n++] = s->fl[f].id;
    op = ask_statuses(s, (const char *const *)p->ids, n,
                      s->opt.status_wait_s, p->out);
    if (op == NULL) {
      poll_clear(p);
      return ordo__set_last_error(ORDO_E_NOMEM, NULL);
    }
    count(s, &s->prog.status_calls, 1);
    for (size_t f = first; f < i; f++)
      if (s->fl[f].poll == 0 && s->fl[f].due_ns <= now)
        s->fl[f].poll = id;
    p->op = op;
    p->id = id;
    s->npolls++;
  }
  return ORDO_OK;
}

/* ---- probes ------------------------------------------------------------------------ */

/* Nothing in flight, no poll out, nothing asked of the ledger for
 * probe_ms: time to ask it whether it answers. */
static int probe_due(const ordo_submitter *s, unsigned long long now) {
  return s->port.probe != NULL && s->opt.probe_ms > 0 && s->probe == NULL &&
         s->nfl == 0 && s->npolls == 0 &&
         now - s->contact_ns >= (unsigned long long)s->opt.probe_ms * 1000000ull;
}

/* Record an answered probe; start one when due. */
static void probe_step(ordo_submitter *s) {
  if (s->probe != NULL && ordo_op_status(s->probe) != ORDO_E_PENDING) {
    int rc = ordo_op_status(s->probe);
    if (rc == ORDO_OK)
      note_answer(s);
    else if (rc != ORDO_E_CANCELED)
      note_failure(s, rc, 1, "%s", ordo_op_message(s->probe)[0]
                                       ? ordo_op_message(s->probe)
                                       : ordo_strerror(rc));
    ordo_op_release(s->probe);
    s->probe = NULL;
  }
  if (probe_due(s, ordo__now_ns())) {
    s->probe = s->port.probe(s->port.self);
    s->contact_ns = ordo__now_ns(); /* one probe per probe_ms at most */
  }
}

/* ---- the step --------------------------------------------------------------------- */

static int gave_up(ordo_submitter *s) {
  ordo_submitter_progress p;
  if (s->opt.give_up_ms == 0)
    return 0;
  ordo_submitter_get_progress(s, &p);
  if (!p.ledger_down || ordo__wall_ms() - p.down_since_ms < s->opt.give_up_ms)
    return 0;
  ordo__set_last_error(p.last_error_code, "the ledger has been unreachable "
                       "for %.1f s: %s",
                       (double)(ordo__wall_ms() - p.down_since_ms) / 1000.0,
                       p.last_error);
  return 1;
}

/* Take what is ready and send it, a take at a time, each only once it is
 * journaled. A take may hand out what an enqueue took ahead (see
 * ordo_journal_set_take_ahead): its durable op is the enqueue's write. */
static int take_and_send(ordo_submitter *s, size_t *took) {
  ordo_queue_item *items = calloc(s->opt.max_per_submit, sizeof(*items));
  int rc = ORDO_OK;
  if (items == NULL)
    return ordo__set_last_error(ORDO_E_NOMEM, NULL);
  for (int t = 0; t < TAKES_PER_STEP && rc == ORDO_OK; t++) {
    ordo_op *durable = NULL;
    size_t n = 0;
    rc = ordo_journal_take(s->j, items, s->opt.max_per_submit, &n, &durable);
    if (rc != ORDO_OK || n == 0)
      break;
    if ((rc = ordo_op_wait(durable, -1)) != ORDO_OK) {
      char msg[400];
      snprintf(msg, sizeof msg, "%s", ordo_op_message(durable)[0]
                                          ? ordo_op_message(durable)
                                          : ordo_strerror(rc));
      ordo_op_release(durable);
      rc = ordo__set_last_error(rc, "submitter: journaling a take failed: %s",
                                msg);
      break;
    }
    ordo_op_release(durable);
    rc = send_items(s, items, n, 0);
    *took += n;
    if (gave_up(s))
      rc = ordo_last_error();
  }
  free(items);
  return rc;
}

/* Step and wait block on ops: refused on a runtime thread, which could be
 * the very thread those ops need. */
static int may_block(ordo_submitter *s, const char *what) {
  if (s == NULL)
    return ordo__set_last_error(ORDO_E_INVAL, "submitter: NULL");
  if (ordo__on_runtime_thread())
    return ordo__set_last_error(ORDO_E_WOULD_DEADLOCK, "submitter %s blocks; "
                                "not on a runtime thread", what);
  return ORDO_OK;
}

int ordo_submitter_step(ordo_submitter *s, int *idle) {
  int rc, hold = 0;
  size_t took = 0;

  if (idle != NULL)
    *idle = 0;
  if ((rc = may_block(s, "step")) != ORDO_OK)
    return rc;
  if (gave_up(s))
    return ordo_last_error();
  if (!s->recovered && (rc = recover(s)) != ORDO_OK)
    return rc;
  if (!s->recovered)
    return gave_up(s) ? ordo_last_error() : ORDO_OK; /* no answer yet */
  if ((rc = polls_collect(s, &hold)) != ORDO_OK)
    return rc;
  if (!hold && (rc = take_and_send(s, &took)) != ORDO_OK)
    return rc;
  /* Keep flights in seq order (new ones were appended), so that what is
   * sent again goes in submission order. */
  if (s->nfl > 1)
    qsort(s->fl, s->nfl, sizeof(*s->fl), flight_cmp);
  if ((rc = polls_start(s)) != ORDO_OK)
    return rc;
  probe_step(s);
  if (idle != NULL)
    *idle = s->nfl == 0 && took == 0 && !hold && s->npolls == 0;
  return ORDO_OK;
}

/* ---- waiting ---------------------------------------------------------------------- */

void ordo_submitter_wake(ordo_submitter *s) {
  if (s != NULL)
    (void)eventfd_write(s->wake_fd, 1);
}

int ordo_submitter_wait(ordo_submitter *s, int timeout_ms) {
  struct pollfd pf[MAX_POLLS_CAP + 2];
  nfds_t n = 0;
  unsigned long long now = ordo__now_ns(), due = 0;
  int have_due = 0;
  eventfd_t v;

  int rc = may_block(s, "wait");
  if (rc != ORDO_OK)
    return rc;
  pf[n].fd = s->wake_fd;
  pf[n++].events = POLLIN;
  for (size_t i = 0; i <= s->npolls; i++) {
    ordo_op *op = i < s->npolls ? s->polls[i].op : s->probe;
    int fd;
    if (op == NULL)
      continue;
    if ((fd = ordo_op_fd(op)) < 0)
      return ORDO_OK; /* cannot watch it: let the next step look */
    pf[n].fd = fd;
    pf[n++].events = POLLIN;
  }
  /* Idle: wake when a probe is due. */
  if (s->port.probe != NULL && s->opt.probe_ms > 0 && s->probe == NULL &&
      s->nfl == 0 && s->npolls == 0) {
    due = s->contact_ns + (unsigned long long)s->opt.probe_ms * 1000000ull;
    have_due = 1;
  }
  /* A flight waiting out a pause, with room for a poll: wake when due. */
  if (s->npolls < s->opt.max_polls)
    for (size_t i = 0; i < s->nfl; i++)
      if (s->fl[i].poll == 0 && (!have_due || s->fl[i].due_ns < due)) {
        due = s->fl[i].due_ns;
        have_due = 1;
      }
  if (have_due) {
    long ms = due <= now ? 0 : (long)((due - now) / 1000000ull) + 1;
    if (timeout_ms < 0 || ms < timeout_ms)
      timeout_ms = (int)ms;
  }
  if (poll(pf, n, timeout_ms) > 0 && (pf[0].revents & POLLIN))
    (void)eventfd_read(s->wake_fd, &v);
  return ORDO_OK;
}

/*
 * submitter.c — the loop between a journal and a ledger port (queue.h,
 * "The ledger port and the submitter").
 *
 * State: the batches in flight (sent, no verdict yet), by id with their seq
 * so that anything sent again goes in submission order. Everything else
 * lives in the journal. A round is: settle what the journal has as UNKNOWN
 * (after a restart), poll the ledger for every batch in flight, record the
 * verdicts, send again what the ledger does not know, then take and send
 * new batches — the last only when nothing had to be sent again, so that a
 * resend always goes before anything new.
 */
#include "queue/queue.h"
#include "runtime/runtime.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define TAKES_PER_STEP 16 /* then poll again: verdicts free more batches */

typedef struct flight {
  char *id;
  uint64_t seq;
} flight;

struct ordo_submitter {
  ordo_journal *j;
  ordo_ledger_port port;
  ordo_submitter_options opt;
  flight *fl;
  size_t nfl, capfl;
  int recovered; /* the journal's UNKNOWN batches have been settled */
  ordo_submitter_progress prog;
};

void ordo_submitter_options_init(ordo_submitter_options *opt) {
  memset(opt, 0, sizeof(*opt));
  opt->max_per_submit = 100;
  opt->max_per_status = 1000;
}

/* Record a verdict and tell whoever asked. */
static int verdict(ordo_submitter *s, const char *id, ordo_queue_state st,
                   const char *why) {
  int rc = ordo_journal_finish(s->j, id, st, why);
  if (rc == ORDO_OK) {
    if (st == ORDO_QUEUE_COMMITTED)
      s->prog.committed++;
    else
      s->prog.invalid++;
    if (s->opt.on_verdict != NULL)
      s->opt.on_verdict(s->opt.on_verdict_ud, id, st);
  }
  return rc;
}

int ordo_submitter_new(ordo_journal *j, const ordo_ledger_port *port,
                       const ordo_submitter_options *opt,
                       ordo_submitter **out) {
  ordo_submitter *s;
  if (out != NULL)
    *out = NULL;
  if (j == NULL || port == NULL || out == NULL || port->version < 1 ||
      port->submit == NULL || port->statuses == NULL)
    return ordo__set_last_error(ORDO_E_INVAL, "submitter: bad argument");
  if ((s = calloc(1, sizeof(*s))) == NULL)
    return ordo__set_last_error(ORDO_E_NOMEM, NULL);
  s->j = j;
  s->port = *port;
  ordo_submitter_options_init(&s->opt);
  if (opt != NULL) {
    s->opt.on_verdict = opt->on_verdict;
    s->opt.on_verdict_ud = opt->on_verdict_ud;
    if (opt->max_per_submit > 0)
      s->opt.max_per_submit = opt->max_per_submit;
    if (opt->max_per_status > 0)
      s->opt.max_per_status = opt->max_per_status;
  }
  *out = s;
  return ORDO_OK;
}

void ordo_submitter_free(ordo_submitter *s) {
  if (s == NULL)
    return;
  for (size_t i = 0; i < s->nfl; i++)
    free(s->fl[i].id);
  free(s->fl);
  free(s);
}

void ordo_submitter_get_progress(const ordo_submitter *s,
                                 ordo_submitter_progress *p) {
  *p = s->prog;
  p->in_flight = s->nfl;
}

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
  s->nfl++;
  return ORDO_OK;
}

static int flight_cmp(const void *a, const void *b) {
  const flight *x = a, *y = b;
  return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Wait for a port op; ORDO_OK or its error. The op is released. */
static int port_wait(ordo_op *op, json_t **result) {
  int rc;
  if (result != NULL)
    *result = NULL;
  if (op == NULL)
    return ORDO_E_NOMEM;
  rc = ordo_op_wait(op, -1);
  if (rc == ORDO_OK && result != NULL) {
    const char *r = ordo_op_result(op);
    *result = r != NULL ? json_loads(r, 0, NULL) : NULL;
    if (!json_is_array(json_object_get(*result, "data"))) {
      json_decref(*result);
      *result = NULL;
      rc = ORDO_E_LEDGER;
    }
  }
  ordo_op_release(op);
  return rc;
}

/* Ask the port about ids[0..n) in chunks; verdicts into one object
 * id -> {"status":…,"reason":…}. NULL on a failed call (counted). */
static json_t *port_statuses(ordo_submitter *s, const char *const *ids,
                             size_t n) {
  json_t *all = json_object();
  for (size_t off = 0; all != NULL && off < n; off += s->opt.max_per_status) {
    size_t k = n - off < s->opt.max_per_status ? n - off : s->opt.max_per_status;
    json_t *res, *e;
    size_t i;
    if (port_wait(s->port.statuses(s->port.self, ids + off, k), &res) !=
        ORDO_OK) {
      s->prog.status_errors++;
      json_decref(all);
      return NULL;
    }
    json_array_foreach(json_object_get(res, "data"), i, e) {
      const char *id = json_string_value(json_object_get(e, "id"));
      const char *st = json_string_value(json_object_get(e, "status"));
      json_t *inv = json_object_get(e, "invalid_transactions");
      const char *why =
          json_string_value(json_object_get(json_array_get(inv, 0), "message"));
      if (id != NULL && st != NULL)
        json_object_set_new(all, id,
                            json_pack("{s:s, s:s}", "status", st, "reason",
                                      why != NULL && why[0] ? why
                                                            : "invalid"));
    }
    json_decref(res);
  }
  return all;
}

static const char *verdict_of(json_t *all, const char *id, const char **why) {
  json_t *v = json_object_get(all, id);
  *why = json_string_value(json_object_get(v, "reason"));
  return v != NULL ? json_string_value(json_object_get(v, "status"))
                   : "UNKNOWN";
}

/* Send ids (sorted by the caller) again; they stay in flight either way. */
static int resend(ordo_submitter *s, char **ids, size_t n, int *failed) {
  ordo_queue_item *items;
  size_t off, i;
  int rc = ORDO_OK;
  *failed = 0;
  if (n == 0)
    return ORDO_OK;
  if ((items = calloc(n, sizeof(*items))) == NULL)
    return ordo__set_last_error(ORDO_E_NOMEM, NULL);
  for (i = 0; i < n && rc == ORDO_OK; i++)
    rc = ordo_journal_item(s->j, ids[i], &items[i]);
  for (off = 0; rc == ORDO_OK && off < n; off += s->opt.max_per_submit) {
    size_t k = n - off < s->opt.max_per_submit ? n - off : s->opt.max_per_submit;
    if (port_wait(s->port.submit(s->port.self, items + off, k), NULL) !=
        ORDO_OK) {
      s->prog.submit_errors++;
      *failed = 1;
    }
    s->prog.submitted += k;
    s->prog.resubmitted += k;
  }
  free(items);
  return rc;
}

/* After a restart: the journal's UNKNOWN batches, before anything new. */
static int recover(ordo_submitter *s) {
  char *ids[256];
  size_t n = 0, total = 0, i;
  int rc;

  for (;;) {
    json_t *all;
    char *again[256];
    size_t nagain = 0;
    int failed;

    if ((rc = ordo_journal_unknown(s->j, ids, 256, &n, &total)) != ORDO_OK)
      return rc;
    if (n == 0) {
      s->recovered = 1;
      return ORDO_OK;
    }
    if ((all = port_statuses(s, (const char *const *)ids, n)) == NULL) {
      for (i = 0; i < n; i++)
        free(ids[i]);
      return ORDO_OK; /* the ledger did not answer: next round */
    }
    for (i = 0; i < n && rc == ORDO_OK; i++) {
      const char *why, *st = verdict_of(all, ids[i], &why);
      uint64_t seq = 0;
      (void)ordo_journal_batch_status(s->j, ids[i], NULL, &seq, NULL);
      if (strcmp(st, "COMMITTED") == 0) {
        rc = verdict(s, ids[i], ORDO_QUEUE_COMMITTED, NULL);
      } else if (strcmp(st, "INVALID") == 0) {
        rc = verdict(s, ids[i], ORDO_QUEUE_INVALID, why);
      } else {
        /* PENDING: in flight. UNKNOWN: send again (ids are in submission
         * order already). */
        if (strcmp(st, "PENDING") != 0)
          again[nagain++] = ids[i];
        rc = flight_add(s, ids[i], seq);
      }
    }
    json_decref(all);
    if (rc == ORDO_OK)
      rc = resend(s, again, nagain, &failed);
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

/* Verdicts for everything in flight; what the ledger does not know is sent
 * again. *resend_failed: a resend did not go through (no new batches then). */
static int poll_in_flight(ordo_submitter *s, int *resend_failed) {
  const char **ids;
  char **again;
  size_t i, k = 0, nagain = 0;
  json_t *all;
  int rc = ORDO_OK;

  *resend_failed = 0;
  if (s->nfl == 0)
    return ORDO_OK;
  if ((ids = malloc(s->nfl * sizeof(*ids))) == NULL ||
      (again = malloc(s->nfl * sizeof(*again))) == NULL) {
    free(ids);
    return ordo__set_last_error(ORDO_E_NOMEM, NULL);
  }
  for (i = 0; i < s->nfl; i++)
    ids[i] = s->fl[i].id;
  all = port_statuses(s, ids, s->nfl);
  free(ids);
  if (all == NULL) {
    free(again);
    *resend_failed = 1; /* no answer: send nothing new either */
    return ORDO_OK;
  }
  /* Keep the unfinished ones in seq order, so resends go in order. */
  qsort(s->fl, s->nfl, sizeof(*s->fl), flight_cmp);
  for (i = 0; i < s->nfl; i++) {
    const char *why, *st = verdict_of(all, s->fl[i].id, &why);
    int done = 0;
    if (rc == ORDO_OK && strcmp(st, "COMMITTED") == 0) {
      rc = verdict(s, s->fl[i].id, ORDO_QUEUE_COMMITTED, NULL);
      done = 1;
    } else if (rc == ORDO_OK && strcmp(st, "INVALID") == 0) {
      rc = verdict(s, s->fl[i].id, ORDO_QUEUE_INVALID, why);
      done = 1;
    } else if (strcmp(st, "PENDING") != 0) {
      again[nagain++] = s->fl[i].id;
    }
    if (done)
      free(s->fl[i].id);
    else
      s->fl[k++] = s->fl[i];
  }
  s->nfl = k;
  json_decref(all);
  if (rc == ORDO_OK)
    rc = resend(s, again, nagain, resend_failed);
  if (nagain > 0)
    *resend_failed = 1; /* let the ledger take them before anything new */
  free(again);
  return rc;
}

int ordo_submitter_step(ordo_submitter *s, int *idle) {
  int rc, hold_new = 0;
  size_t took = 0;

  if (idle != NULL)
    *idle = 0;
  if (s == NULL)
    return ordo__set_last_error(ORDO_E_INVAL, "submitter: NULL");
  if (ordo__on_runtime_thread())
    return ordo__set_last_error(ORDO_E_WOULD_DEADLOCK,
                                "submitter step blocks; not on a runtime "
                                "thread");
  if (!s->recovered && (rc = recover(s)) != ORDO_OK)
    return rc;
  if (!s->recovered)
    return ORDO_OK; /* the ledger did not answer yet */
  if ((rc = poll_in_flight(s, &hold_new)) != ORDO_OK)
    return rc;
  for (int t = 0; !hold_new && t < TAKES_PER_STEP; t++) {
    ordo_queue_item *items = calloc(s->opt.max_per_submit, sizeof(*items));
    ordo_op *durable = NULL;
    size_t n = 0, i;
    if (items == NULL)
      return ordo__set_last_error(ORDO_E_NOMEM, NULL);
    rc = ordo_journal_take(s->j, items, s->opt.max_per_submit, &n, &durable);
    if (rc != ORDO_OK || n == 0) {
      free(items);
      if (rc != ORDO_OK)
        return rc;
      break;
    }
    /* Send only once the take is on disk. */
    rc = ordo_op_wait(durable, -1);
    if (rc != ORDO_OK) {
      char msg[400];
      snprintf(msg, sizeof msg, "%s", ordo_op_message(durable) != NULL
                                          ? ordo_op_message(durable)
                                          : ordo_strerror(rc));
      ordo_op_release(durable);
      free(items);
      return ordo__set_last_error(rc, "submitter: journaling a take "
                                  "failed: %s", msg);
    }
    ordo_op_release(durable);
    for (i = 0; i < n && rc == ORDO_OK; i++)
      rc = flight_add(s, items[i].id, items[i].seq);
    if (rc == ORDO_OK &&
        port_wait(s->port.submit(s->port.self, items, n), NULL) != ORDO_OK)
      s->prog.submit_errors++; /* asked about next round all the same */
    s->prog.submitted += n;
    took += n;
    free(items);
    if (rc != ORDO_OK)
      return rc;
  }
  if (idle != NULL)
    *idle = s->nfl == 0 && took == 0 && !hold_new;
  return ORDO_OK;
}

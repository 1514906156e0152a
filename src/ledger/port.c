/*
 * port.c — the queuer's ledger port over the Sawtooth REST client
 * (ledger.h, "The Sawtooth port").
 *
 * The queue knows batches by the ids its users gave them (a workload's
 * "T1"); Sawtooth knows them by header_signature, which the queue keeps as
 * the item's ledger_id. A batch journaled without one (by an older ordo)
 * has its id read from its payload, a one-batch BatchList. The port keeps
 * no map of its own: a statuses call keeps the Sawtooth id -> index
 * translation (sorted, searched) for that call only, so a port that runs
 * for months holds nothing per batch.
 *
 * statuses is an op of two stages: the first hands the REST op a callback
 * and parks (ASYNC); the callback reads Sawtooth's answer into the
 * caller's statuses and resumes the op; the second reports. No stage ever
 * waits for another op.
 */
#include "ledger/ledger.h"
#include "runtime/runtime.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

struct ordo_ledger_sawtooth_port {
  ordo_ledger_port port; /* self = this */
  ordo_ctx *ctx;
  ordo_ledger_client *client;
};

/* The Sawtooth id of an item: its ledger id, or the id in its payload. */
static int item_sawtooth_id(const ordo_queue_item *it,
                            char out[ORDO_LEDGER_ID_SIZE]) {
  ordo_ledger_batchlist *bl = NULL;
  int rc = ORDO_E_NOT_FOUND;
  if (it->ledger_id != NULL) {
    if (strlen(it->ledger_id) != ORDO_LEDGER_ID_LEN)
      return ORDO_E_NOT_FOUND;
    memcpy(out, it->ledger_id, ORDO_LEDGER_ID_SIZE);
    return ORDO_OK;
  }
  if (it->payload != NULL &&
      ordo_ledger_batchlist_decode(it->payload, it->payload_len, &bl) ==
          ORDO_OK &&
      ordo_ledger_batchlist_count(bl) == 1) {
    const char *sid = ordo_ledger_batch_id(ordo_ledger_batchlist_batch(bl, 0));
    if (strlen(sid) == ORDO_LEDGER_ID_LEN) {
      memcpy(out, sid, ORDO_LEDGER_ID_SIZE);
      rc = ORDO_OK;
    }
  }
  ordo_ledger_batchlist_free(bl);
  return rc;
}

static ordo_op *port_submit(void *self, const ordo_queue_item *items,
                            size_t n) {
  ordo_ledger_sawtooth_port *p = self;
  unsigned char *body;
  size_t len = 0, i, off = 0;
  ordo_op *op;

  for (i = 0; i < n; i++)
    len += items[i].payload_len;
  if ((body = malloc(len > 0 ? len : 1)) == NULL)
    return NULL;
  /* Repeated protobuf fields concatenate: n one-batch BatchLists are one
   * BatchList of n batches. */
  for (i = 0; i < n; i++) {
    memcpy(body + off, items[i].payload, items[i].payload_len);
    off += items[i].payload_len;
  }
  op = ordo_ledger_submit(p->client, body, len);
  free(body);
  return op;
}

/* One batch asked about: its Sawtooth id and where its status goes. */
typedef struct asked {
  char sid[ORDO_LEDGER_ID_SIZE];
  size_t index; /* into out */
} asked;

typedef struct status_call {
  ordo_op *rest;
  asked *asked;          /* sorted by sid */
  size_t nasked;
  ordo_ledger_status *out; /* the caller's, until the op completes */
  int status;
  char *message;
} status_call;

static void status_call_free(void *state) {
  status_call *c = state;
  if (c->rest != NULL)
    ordo_op_release(c->rest);
  free(c->asked);
  free(c->message);
  free(c);
}

static int asked_cmp(const void *a, const void *b) {
  return strcmp(((const asked *)a)->sid, ((const asked *)b)->sid);
}

/* Sawtooth's word for a batch's state as the queue's (anything else, as an
 * unknown id, is UNKNOWN: the submitter sends it again). */
static ordo_queue_state state_of(const char *st) {
  if (st == NULL)
    return ORDO_QUEUE_UNKNOWN;
  if (strcmp(st, "COMMITTED") == 0)
    return ORDO_QUEUE_COMMITTED;
  if (strcmp(st, "INVALID") == 0)
    return ORDO_QUEUE_INVALID;
  if (strcmp(st, "PENDING") == 0)
    return ORDO_QUEUE_SUBMITTED;
  return ORDO_QUEUE_UNKNOWN;
}

/* Read a batch_statuses answer ({"data":[{"id","status",
 * "invalid_transactions":[{"message"}]}]}) into c->out. ORDO_OK,
 * ORDO_E_LEDGER_RESPONSE (not that shape) or ORDO_E_NOMEM. */
static int read_answer(status_call *c, const char *answer) {
  json_t *in = answer != NULL ? json_loads(answer, 0, NULL) : NULL;
  json_t *data = json_object_get(in, "data"), *e;
  size_t i;
  int rc = ORDO_OK;
  if (!json_is_array(data)) {
    json_decref(in);
    return ORDO_E_LEDGER_RESPONSE;
  }
  json_array_foreach(data, i, e) {
    const char *sid = json_string_value(json_object_get(e, "id"));
    asked key, *a;
    ordo_ledger_status *o;
    const char *why;
    if (sid == NULL || strlen(sid) != ORDO_LEDGER_ID_LEN)
      continue; /* not one asked about */
    memcpy(key.sid, sid, ORDO_LEDGER_ID_SIZE);
    if ((a = bsearch(&key, c->asked, c->nasked, sizeof(*a), asked_cmp)) ==
        NULL)
      continue;
    o = &c->out[a->index];
    o->state = state_of(json_string_value(json_object_get(e, "status")));
    if (o->state != ORDO_QUEUE_INVALID || o->reason != NULL)
      continue;
    why = json_string_value(json_object_get(
        json_array_get(json_object_get(e, "invalid_transactions"), 0),
        "message"));
    if ((o->reason = strdup(why != NULL && why[0] ? why : "invalid")) ==
        NULL) {
      rc = ORDO_E_NOMEM;
      break;
    }
  }
  json_decref(in);
  return rc;
}

static void on_rest_done(ordo_op *rest, void *ud) {
  ordo_op *op = ud;
  status_call *c = ordo__op_state(op);
  c->status = ordo_op_status(rest);
  if (c->status == ORDO_OK) {
    c->status = read_answer(c, ordo_op_result(rest));
    if (c->status == ORDO_E_LEDGER_RESPONSE)
      c->message = strdup("GET /batch_statuses: the answer is not a "
                          "batch_statuses list");
  } else if (ordo_op_message(rest) != NULL) {
    c->message = strdup(ordo_op_message(rest));
  }
  ordo__op_resume(op, ORDO_OK);
}

static int stage_wait(ordo_op *op, void *state) {
  status_call *c = state;
  if (ordo_op_then(c->rest, on_rest_done, op) != ORDO_OK) {
    ordo_op_set_message(op, "ledger statuses: callback refused");
    return ORDO_E_STATE;
  }
  return ORDO__STAGE_ASYNC;
}

static int stage_report(ordo_op *op, void *state) {
  status_call *c = state;
  if (c->status != ORDO_OK) {
    ordo_op_set_message(op, "%s", c->message != NULL
                                      ? c->message
                                      : ordo_strerror(c->status));
    return c->status;
  }
  return ORDO_OK;
}

static ordo_op *port_statuses(void *self, const ordo_queue_item *items,
                              size_t n, int wait_s, ordo_ledger_status *out) {
  ordo_ledger_sawtooth_port *p = self;
  status_call *c = calloc(1, sizeof(*c));
  const char **sidp = calloc(n > 0 ? n : 1, sizeof(*sidp));
  size_t i;
  ordo_op *op;

  if (c == NULL || sidp == NULL ||
      (c->asked = calloc(n > 0 ? n : 1, sizeof(*c->asked))) == NULL) {
    free(sidp);
    if (c != NULL)
      free(c->asked);
    free(c);
    return NULL;
  }
  c->out = out;
  for (i = 0; i < n; i++) {
    out[i].state = ORDO_QUEUE_UNKNOWN;
    out[i].reason = NULL;
    /* None the ledger could know stays UNKNOWN, unasked. */
    if (item_sawtooth_id(&items[i], c->asked[c->nasked].sid) == ORDO_OK)
      c->asked[c->nasked++].index = i;
  }
  qsort(c->asked, c->nasked, sizeof(*c->asked), asked_cmp);
  for (i = 0; i < c->nasked; i++)
    sidp[i] = c->asked[i].sid;
  if ((op = ordo__op_new(p->ctx, c, status_call_free)) == NULL) {
    free(sidp);
    status_call_free(c);
    return NULL;
  }
  if (c->nasked == 0) {
    free(sidp);
    if (ordo__op_add_stage(op, ORDO_CLASS_CHEAP, stage_report))
      return ordo__op_reject(op, ORDO_E_NOMEM);
    return ordo__op_start(op);
  }
  c->rest = ordo_ledger_batch_statuses(p->client, sidp, c->nasked, wait_s);
  free(sidp); /* the client copied the ids */
  if (c->rest == NULL)
    return ordo__op_reject(op, ORDO_E_NOMEM);
  if (ordo__op_add_stage(op, ORDO_CLASS_CHEAP, stage_wait) ||
      ordo__op_add_stage(op, ORDO_CLASS_CHEAP, stage_report))
    return ordo__op_reject(op, ORDO_E_NOMEM);
  return ordo__op_start(op);
}

/* Does the REST API answer? The newest block is its cheapest question. */
static ordo_op *port_probe(void *self) {
  ordo_ledger_sawtooth_port *p = self;
  return ordo_ledger_blocks(p->client, 1);
}

int ordo_ledger_sawtooth_port_new(ordo_ctx *ctx, ordo_ledger_client *client,
                                  ordo_ledger_sawtooth_port **out) {
  ordo_ledger_sawtooth_port *p;
  if (out != NULL)
    *out = NULL;
  if (ctx == NULL || client == NULL || out == NULL)
    return ordo__set_last_error(ORDO_E_INVAL, "port: NULL argument");
  if ((p = calloc(1, sizeof(*p))) == NULL)
    return ordo__set_last_error(ORDO_E_NOMEM, NULL);
  p->ctx = ctx;
  p->client = client;
  p->port.self = p;
  p->port.submit = port_submit;
  p->port.statuses = port_statuses;
  p->port.probe = port_probe;
  p->port.can_wait = 1;
  *out = p;
  return ORDO_OK;
}

const ordo_ledger_port *
ordo_ledger_sawtooth_port_get(ordo_ledger_sawtooth_port *p) {
  return &p->port;
}

static int item_sawtooth_id_cb(const ordo_queue_item *it, void *out) {
  return item_sawtooth_id(it, out);
}

int ordo_ledger_sawtooth_id(ordo_journal *j, const char *id,
                            char out[ORDO_LEDGER_ID_SIZE]) {
  if (j == NULL || id == NULL || out == NULL)
    return ORDO_E_INVAL;
  /* Any thread may ask (the server's GET): the item is read under the
   * journal's lock, since a finished batch may leave memory meanwhile. */
  return ordo_journal_item_with(j, id, item_sawtooth_id_cb, out);
}

void ordo_ledger_sawtooth_port_free(ordo_ledger_sawtooth_port *p) { free(p); }

/*
 * port.c — the queuer's ledger port over the Sawtooth REST client
 * (ledger.h, "The Sawtooth port").
 *
 * The queue knows batches by the ids its users gave them (a workload's
 * "T1"); Sawtooth knows them by header_signature, which the queue keeps as
 * the item's ledger_id. A batch journaled without one (by an older ordo)
 * has its id read from its payload, a one-batch BatchList. The port keeps
 * no map of its own: a statuses call looks each id up in the journal and
 * keeps the Sawtooth -> queue translation for that call only, so a port
 * that runs for months holds nothing per batch.
 *
 * statuses (and statuses_wait, the same with Sawtooth's long-poll `wait`)
 * is an op of two stages: the first hands the REST op a callback and parks
 * (ASYNC); the callback translates the answer back to queue ids into the
 * op's state and resumes it; the second sets the result. No stage ever
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
  ordo_journal *j;
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

typedef struct status_call {
  ordo_ledger_sawtooth_port *p;
  ordo_op *rest;
  json_t *to_queue; /* Sawtooth id -> queue id, for this call */
  char *text;       /* the translated answer */
  int status;
  char *message;
} status_call;

static void status_call_free(void *state) {
  status_call *c = state;
  if (c->rest != NULL)
    ordo_op_release(c->rest);
  json_decref(c->to_queue);
  free(c->text);
  free(c->message);
  free(c);
}

/* The REST answer with queue ids, or NULL. */
static char *translate(const status_call *c, const char *answer) {
  json_t *in = answer != NULL ? json_loads(answer, 0, NULL) : NULL;
  json_t *data = json_array(), *e, *o;
  char *text = NULL;
  size_t i;
  if (in == NULL || data == NULL) {
    json_decref(in);
    json_decref(data);
    return NULL;
  }
  json_array_foreach(json_object_get(in, "data"), i, e) {
    const char *sid = json_string_value(json_object_get(e, "id"));
    const char *qid =
        sid != NULL ? json_string_value(json_object_get(c->to_queue, sid))
                    : NULL;
    json_t *copy;
    if (qid == NULL)
      continue; /* not asked for: drop it */
    if ((copy = json_deep_copy(e)) == NULL ||
        json_object_set_new(copy, "id", json_string(qid)) != 0 ||
        json_array_append_new(data, copy) != 0) {
      json_decref(in);
      json_decref(data);
      return NULL;
    }
  }
  json_decref(in);
  if ((o = json_pack("{s:o}", "data", data)) != NULL)
    text = json_dumps(o, JSON_COMPACT);
  json_decref(o);
  return text;
}

static void on_rest_done(ordo_op *rest, void *ud) {
  ordo_op *op = ud;
  status_call *c = ordo__op_state(op);
  c->status = ordo_op_status(rest);
  if (c->status == ORDO_OK) {
    if ((c->text = translate(c, ordo_op_result(rest))) == NULL)
      c->status = ORDO_E_LEDGER_RESPONSE;
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
  return ordo_op_set_result(op, c->text);
}

static ordo_op *port_statuses_wait(void *self, const char *const *ids,
                                   size_t n, int wait_s) {
  ordo_ledger_sawtooth_port *p = self;
  char *sids = malloc((n > 0 ? n : 1) * ORDO_LEDGER_ID_SIZE);
  const char **sidp = calloc(n > 0 ? n : 1, sizeof(*sidp));
  status_call *c = calloc(1, sizeof(*c));
  size_t k = 0, i;
  ordo_op *op;

  if (sids == NULL || sidp == NULL || c == NULL ||
      (c->to_queue = json_object()) == NULL) {
    free(sids);
    free(sidp);
    free(c);
    return NULL;
  }
  c->p = p;
  for (i = 0; i < n; i++) {
    ordo_queue_item it;
    char *sid = sids + k * ORDO_LEDGER_ID_SIZE;
    if (ordo_journal_item(p->j, ids[i], &it) != ORDO_OK ||
        item_sawtooth_id(&it, sid) != ORDO_OK)
      continue; /* none the ledger could know: UNKNOWN */
    if (json_object_set_new(c->to_queue, sid, json_string(ids[i])) != 0)
      break;
    sidp[k++] = sid;
  }
  if ((op = ordo__op_new(p->ctx, c, status_call_free)) == NULL) {
    free(sids);
    free(sidp);
    return NULL;
  }
  if (i < n) {
    free(sids);
    free(sidp);
    return ordo__op_reject(op, ORDO_E_NOMEM);
  }
  if (k == 0) {
    /* None the ledger could know: every one is UNKNOWN (absent). */
    free(sids);
    free(sidp);
    if ((c->text = strdup("{\"data\":[]}")) == NULL)
      return ordo__op_reject(op, ORDO_E_NOMEM);
    if (ordo__op_add_stage(op, ORDO_CLASS_CHEAP, stage_report))
      return ordo__op_reject(op, ORDO_E_NOMEM);
    return ordo__op_start(op);
  }
  c->rest = ordo_ledger_batch_statuses(p->client, sidp, k, wait_s);
  free(sids); /* the client copied the ids */
  free(sidp);
  if (c->rest == NULL)
    return ordo__op_reject(op, ORDO_E_NOMEM);
  if (ordo__op_add_stage(op, ORDO_CLASS_CHEAP, stage_wait) ||
      ordo__op_add_stage(op, ORDO_CLASS_CHEAP, stage_report))
    return ordo__op_reject(op, ORDO_E_NOMEM);
  return ordo__op_start(op);
}

static ordo_op *port_statuses(void *self, const char *const *ids, size_t n) {
  return port_statuses_wait(self, ids, n, 0);
}

/* Does the REST API answer? The newest block is its cheapest question. */
static ordo_op *port_probe(void *self) {
  ordo_ledger_sawtooth_port *p = self;
  return ordo_ledger_blocks(p->client, 1);
}

int ordo_ledger_sawtooth_port_new(ordo_ctx *ctx, ordo_ledger_client *client,
                                  ordo_journal *j,
                                  ordo_ledger_sawtooth_port **out) {
  ordo_ledger_sawtooth_port *p;
  if (out != NULL)
    *out = NULL;
  if (ctx == NULL || client == NULL || j == NULL || out == NULL)
    return ordo__set_last_error(ORDO_E_INVAL, "port: NULL argument");
  if ((p = calloc(1, sizeof(*p))) == NULL)
    return ordo__set_last_error(ORDO_E_NOMEM, NULL);
  p->ctx = ctx;
  p->client = client;
  p->j = j;
  p->port.version = 3;
  p->port.self = p;
  p->port.submit = port_submit;
  p->port.statuses = port_statuses;
  p->port.statuses_wait = port_statuses_wait;
  p->port.probe = port_probe;
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

int ordo_ledger_sawtooth_id(ordo_ledger_sawtooth_port *p, const char *id,
                            char out[ORDO_LEDGER_ID_SIZE]) {
  if (p == NULL || id == NULL || out == NULL)
    return ORDO_E_INVAL;
  /* Any thread may ask (the server's GET): the item is read under the
   * journal's lock, since a finished batch may leave memory meanwhile. */
  return ordo_journal_item_with(p->j, id, item_sawtooth_id_cb, out);
}

void ordo_ledger_sawtooth_port_free(ordo_ledger_sawtooth_port *p) { free(p); }

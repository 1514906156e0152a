/*
 * batches.c — POST /v1/batches: JSON items (a signed payload, or
 * transactions the server signs with options.signer) or a raw BatchList.
 *
 * Every item is validated before anything is enqueued (a bad item, a
 * duplicate id or ledger id, a payload that is not one valid signed batch:
 * 4xx and nothing journaled), then they are all enqueued with one
 * ordo_journal_enqueue_many op (one transaction) and waited for: the 202 is
 * sent only once every item is durable, and a crash leaves all of them or
 * none. A Sawtooth batch is locked by what it is signed to touch (its
 * transactions' inputs and outputs, ordo_ledger_batch_footprint): declared
 * reads and writes can add to that, never narrow it.
 */
#include "server/internal.h"
#include "server/reply.h"
#include "server/routes.h"
#include "queue/batch_json.h"
#include "base/jsonw.h"
#include "http/http.h"
#include "runtime/runtime.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Longest service name taken over HTTP (in a query or header). */
#define SRV_MAX_SERVICE 128

/* ------------------------------------------------------------------------ */
/* POST /v1/batches                                                          */
/* ------------------------------------------------------------------------ */

typedef struct item {
  ordo_queue_batch_spec sp;  /* reads/writes: bj's, or fp's */
  ordo_batch_json bj;        /* the declared fields (into the JSON) */
  unsigned char *payload;    /* owned */
  char *id;                  /* owned copy when not pointing into JSON */
  ordo_ledger_batchlist *bl; /* a JSON item's payload, decoded */
  ordo_ledger_batch *built;  /* a "transactions" item's batch, signed here */
  ordo_ledger_footprint fp;  /* with a batch: what the locks are */
} item;

static void items_free(item *it, size_t n) {
  size_t i;
  for (i = 0; i < n && it != NULL; i++) {
    ordo_batch_json_clear(&it[i].bj);
    free(it[i].payload);
    free(it[i].id);
    ordo_ledger_footprint_clear(&it[i].fp);
    ordo_ledger_batchlist_free(it[i].bl);
    ordo_ledger_batch_free(it[i].built);
  }
  free(it);
}

/* The locks of an item with a Sawtooth batch (ledger/ does it as at every
 * door): the declared addresses and the batch's inputs and outputs (never
 * fewer than the batch says), ledger id its header_signature. b: a batch
 * already in hand (signed here, or of a list validated whole); NULL: the
 * client's payload, decoded and checked as a validator would. */
static int item_batch(item *it, const ordo_ledger_batch *b, char *why,
                      size_t whylen) {
  int rc = b != NULL ? ordo_ledger_spec_from_batch(b, &it->sp, &it->fp)
                     : ordo_ledger_spec_from_payload(
                           &it->sp, ORDO_LEDGER_PAYLOAD_VALIDATE, &it->bl,
                           &it->fp);
  if (rc != ORDO_OK && rc != ORDO_E_NOMEM) {
    snprintf(why, whylen, "'payload': %s", ordo_last_error_message());
    rc = ORDO_E_INVAL;
  }
  return rc;
}

/* Transactions per "transactions" item: each costs a signature. */
#define SRV_MAX_TXNS 1000

/* base64 (standard alphabet) into a new buffer *out of *len bytes. */
static int b64_decode(const char *b64, size_t n, unsigned char **out,
                      size_t *len) {
  if ((*out = malloc(n + 1)) == NULL)
    return ORDO_E_NOMEM;
  if (sodium_base642bin(*out, n + 1, b64, n, NULL, len, NULL,
                        sodium_base64_VARIANT_ORIGINAL) != 0) {
    free(*out);
    *out = NULL;
    return ORDO_E_INVAL;
  }
  return ORDO_OK;
}

/* One element of "transactions", built and signed with the server's key. */
static int txn_from_json(const ordo_ledger_signer *signer, json_t *t,
                         size_t i, ordo_ledger_txn **out, char *why,
                         size_t whylen) {
  static const char *const known[] = {"family_name", "family_version",
                                      "inputs",      "outputs",
                                      "payload",     "dependencies"};
  ordo_ledger_txn_spec ts;
  const char *key, **in = NULL, **outs = NULL, **deps = NULL;
  json_t *v;
  unsigned char *payload = NULL;
  size_t plen = 0;
  char sub[400];
  int rc;

  memset(&ts, 0, sizeof ts);
  if (!json_is_object(t)) {
    snprintf(why, whylen, "'transactions'[%zu] must be an object", i);
    return ORDO_E_INVAL;
  }
  if ((key = ordo_batch_json_unknown_key(t, known,
                                         sizeof known / sizeof known[0])) !=
      NULL) {
    snprintf(why, whylen, "'transactions'[%zu]: unknown key '%.64s'", i, key);
    return ORDO_E_INVAL;
  }
  if (!ordo_batch_json_good_str(json_object_get(t, "family_name"), 256) ||
      !ordo_batch_json_good_str(json_object_get(t, "family_version"), 256)) {
    snprintf(why, whylen, "'transactions'[%zu]: 'family_name' and "
             "'family_version' must be non-empty strings of at most 256 "
             "bytes", i);
    return ORDO_E_INVAL;
  }
  ts.family_name = json_string_value(json_object_get(t, "family_name"));
  ts.family_version = json_string_value(json_object_get(t, "family_version"));
  if (!json_is_array(json_object_get(t, "inputs")) ||
      !json_is_array(json_object_get(t, "outputs"))) {
    snprintf(why, whylen, "'transactions'[%zu]: 'inputs' and 'outputs' (the "
             "addresses it may read and write) are required arrays", i);
    return ORDO_E_INVAL;
  }
  if ((rc = ordo_batch_json_strings(t, "inputs", ORDO_BATCH_ADDRESS_MAX,
                                    &in, &ts.ninputs, sub, sizeof sub)) !=
          ORDO_OK ||
      (rc = ordo_batch_json_strings(t, "outputs", ORDO_BATCH_ADDRESS_MAX,
                                    &outs, &ts.noutputs, sub, sizeof sub)) !=
          ORDO_OK ||
      (rc = ordo_batch_json_strings(t, "dependencies", ORDO_BATCH_ADDRESS_MAX,
                                    &deps, &ts.ndependencies, sub,
                                    sizeof sub)) != ORDO_OK) {
    if (rc != ORDO_E_NOMEM)
      snprintf(why, whylen, "'transactions'[%zu]: %s", i, sub);
    goto out;
  }
  v = json_object_get(t, "payload");
  if (!json_is_string(v) ||
      (rc = b64_decode(json_string_value(v), json_string_length(v), &payload,
                       &plen)) == ORDO_E_INVAL) {
    snprintf(why, whylen, "'transactions'[%zu]: 'payload' must be a base64 "
             "string", i);
    rc = ORDO_E_INVAL;
    goto out;
  }
  if (rc != ORDO_OK)
    goto out;
  ts.inputs = in;
  ts.outputs = outs;
  ts.dependencies = deps;
  ts.payload = payload;
  ts.payload_len = plen;
  if ((rc = ordo_ledger_txn_build(signer, NULL, &ts, out)) != ORDO_OK &&
      rc != ORDO_E_NOMEM) {
    snprintf(why, whylen, "'transactions'[%zu]: %s", i,
             ordo_last_error_message());
    rc = ORDO_E_INVAL;
  }
out:
  free(in);
  free(outs);
  free(deps);
  free(payload);
  return rc;
}

/* A "transactions" item: its batch built and signed with the server's key,
 * into it->built and it->payload (a BatchList of it). */
static int item_txns(const ordo_ledger_signer *signer, json_t *arr, item *it,
                     size_t *plen, char *why, size_t whylen) {
  ordo_ledger_txn **txns;
  size_t i, n = json_array_size(arr), made = 0;
  int rc = ORDO_OK;

  if (!json_is_array(arr) || n == 0 || n > SRV_MAX_TXNS) {
    snprintf(why, whylen, "'transactions' must be an array of 1..%d "
             "transactions", SRV_MAX_TXNS);
    return ORDO_E_INVAL;
  }
  if ((txns = calloc(n, sizeof *txns)) == NULL)
    return ORDO_E_NOMEM;
  for (i = 0; i < n && rc == ORDO_OK; i++)
    if ((rc = txn_from_json(signer, json_array_get(arr, i), i, &txns[i], why,
                            whylen)) == ORDO_OK)
      made++;
  if (rc == ORDO_OK &&
      (rc = ordo_ledger_batch_build(signer, txns, n, &it->built)) ==
          ORDO_OK) {
    const ordo_ledger_batch *one[1] = {it->built};
    rc = ordo_ledger_batchlist_encode(one, 1, &it->payload, plen);
  }
  if (rc != ORDO_OK && rc != ORDO_E_INVAL)
    rc = ORDO_E_NOMEM; /* every header here was built by us */
  for (i = 0; i < made; i++)
    ordo_ledger_txn_free(txns[i]);
  free(txns);
  return rc;
}

/* Check one JSON item and fill it (pointers into o). */
static int item_from_json(ordo_server *srv, json_t *o, const char *service,
                          item *it, char *why, size_t whylen) {
  static const char *const extra[] = {"payload", "transactions"};
  json_t *txns, *v;
  int rc;

  /* The shared fields and their rules (queue/batch_json.h). */
  if ((rc = ordo_batch_json_parse(o, extra, 2, service, &it->bj, why,
                                  whylen)) != ORDO_OK)
    return rc;
  ordo_batch_json_spec(&it->bj, &it->sp);
  v = it->bj.extra[0];
  txns = it->bj.extra[1];
  if (v != NULL && txns != NULL) {
    snprintf(why, whylen, "give 'payload' (a batch you signed) or "
             "'transactions' (signed by this server), not both");
    return ORDO_E_INVAL;
  }
  if (v != NULL) {
    const char *b64 = json_string_value(v);
    size_t plen = 0;
    if (b64 == NULL) {
      snprintf(why, whylen, "'payload' must be a base64 string");
      return ORDO_E_INVAL;
    }
    if ((rc = b64_decode(b64, json_string_length(v), &it->payload, &plen)) !=
        ORDO_OK) {
      if (rc == ORDO_E_INVAL)
        snprintf(why, whylen, "'payload' is not base64");
      return rc;
    }
    it->sp.payload = it->payload;
    it->sp.payload_len = plen;
    return item_batch(it, NULL, why, whylen);
  } else if (txns != NULL) {
    size_t plen = 0;
    if (srv->opts.signer == NULL) {
      snprintf(why, whylen, "'transactions' needs a signing key on this "
               "server (signing_key_file); send a signed 'payload' instead");
      return ORDO_E_INVAL;
    }
    if ((rc = item_txns(srv->opts.signer, txns, it, &plen, why, whylen)) !=
        ORDO_OK)
      return rc;
    it->sp.payload = it->payload;
    it->sp.payload_len = plen;
    return item_batch(it, it->built, why, whylen); /* signed here */
  } else if (srv->client != NULL) {
    snprintf(why, whylen, "'payload' (a base64 BatchList of one batch) or "
             "'transactions' is required: this server submits to a ledger");
    return ORDO_E_INVAL;
  }
  return ORDO_OK;
}

/*
 * The answer to a request whose items are checked: enqueue them all in one
 * journal call (one storage transaction: after a crash all of the request
 * is on disk or none of it), wait, and answer. A batch that is there
 * already with the same content (a client's retry) is reported, not
 * enqueued again: every item there already -> 200, else 202, each item
 * saying "enqueued" or "already enqueued". Any item refused (another batch
 * under its id, its signed batch queued under another id) -> 409 naming
 * it, and nothing of the request is enqueued. what: "item" or "batch".
 */
static int enqueue_items(ordo_server *srv, item *it, size_t n,
                         const char *what, ordo_server_response *resp) {
  ordo_queue_batch_spec *specs = calloc(n, sizeof *specs);
  ordo_journal_enqueued *got = calloc(n, sizeof *got);
  ordo__jsonw w = {0};
  unsigned long long t0;
  size_t i, bad = (size_t)-1, fresh = 0;
  ordo_op *op;
  int rc;

  if (specs == NULL || got == NULL) {
    free(specs);
    free(got);
    return ordo__srv_reply(resp, 500, NULL);
  }
  for (i = 0; i < n; i++)
    specs[i] = it[i].sp;
  t0 = ordo__now_ns();
  /* Each item's answer comes back typed, at once; the op says durable. */
  if (srv->cl != NULL) {
    /* The shared queue: durable (committed) when the call returns. */
    op = NULL;
    rc = ordo_cluster_enqueue(srv->cl, specs, n, got, &bad);
    if (rc == ORDO_OK)
      ordo__srv_cluster_kick(srv);
  } else {
    op = ordo_journal_enqueue_typed(srv->j, specs, n, got, &bad); /* copies */
    rc = ordo__srv_wait(srv, op);
  }
  free(specs);
  if (rc != ORDO_OK) {
    char msg[600];
    const char *why = op != NULL && rc != ORDO_E_TIMEOUT ? ordo_op_message(op)
                      : srv->cl != NULL ? ordo_last_error_message()
                                        : ordo_strerror(rc);
    if (why == NULL || why[0] == '\0')
      why = ordo_strerror(rc);
    if (bad != (size_t)-1)
      snprintf(msg, sizeof msg, "%s %zu: %s", what, bad, why);
    else
      snprintf(msg, sizeof msg, "%s", why);
    ordo_op_release(op);
    free(got);
    /* A write failure fails the request whole: none of it was enqueued. */
    return ordo__srv_error(resp, ordo__srv_http_status(rc), rc, "%s", msg);
  }
  ordo_op_release(op);
  /* The answer, written directly (base/jsonw.h): at 100 items a request,
   * a jansson tree per item and its dump were a good part of the
   * server's own time per request. */
  ordo__jsonw_raw(&w, "{\"batches\":[", 12);
  for (i = 0; i < n; i++) {
    ordo__jsonw_raw(&w, i > 0 ? ",{" : "{", i > 0 ? 2 : 1);
    ordo__jsonw_key(&w, 1, "id");
    ordo__jsonw_cstr(&w, it[i].sp.id);
    ordo__jsonw_key(&w, 0, "seq");
    ordo__jsonw_uint(&w, got[i].seq);
    if (got[i].already) {
      ordo__jsonw_key(&w, 0, "state");
      ordo__jsonw_cstr(&w, ordo_queue_state_name(got[i].state));
    }
    ordo__jsonw_key(&w, 0, "result");
    ordo__jsonw_cstr(&w, got[i].already ? "already enqueued" : "enqueued");
    ordo__jsonw_raw(&w, "}", 1);
    fresh += !got[i].already;
  }
  ordo__jsonw_raw(&w, "]}", 3); /* with its NUL: the text */
  free(got);
  if (w.err != ORDO_OK) {
    free(w.buf);
    return ordo__srv_reply(resp, 500, NULL);
  }
  if (fresh > 0) {
    ordo__srv_count_enqueued(srv, ordo__now_ns() - t0, fresh);
    /* New batches may be ready: the submitter sends them now, not at its
     * next status answer. */
    ordo_submitter_wake(srv->sub);
  }
  return ordo__srv_reply_text(resp, fresh > 0 ? 202 : 200, (char *)w.buf);
}

/* The service of a raw BatchList (header, query, "default"); NULL with an
 * answer made. *owned gets what must be freed. */
static const char *raw_service(const ordo_server_request *req, char **owned,
                               ordo_server_response *resp) {
  const char *s = req->service;
  int nomem = 0;
  *owned = NULL;
  if (s == NULL) {
    *owned = ordo__srv_query_get(req->query, "service", &nomem);
    if (nomem) {
      ordo__srv_reply(resp, 500, NULL);
      return NULL;
    }
    s = *owned;
  }
  if (s == NULL)
    return "default";
  if (s[0] == '\0' || strlen(s) > SRV_MAX_SERVICE) {
    ordo__srv_error(resp, 400, ORDO_E_INVAL,
                    "the service (X-Ordo-Service or "
                    "service=) must be 1..%d bytes",
                    SRV_MAX_SERVICE);
    free(*owned);
    *owned = NULL;
    return NULL;
  }
  return s;
}

/* One request until it is answered: its items, and what their pointers
 * point into (the raw BatchList or the JSON body), freed after them. */
typedef struct post {
  const char *svc;
  char *svc_owned;
  item *it;
  size_t n;
  ordo_ledger_batchlist *bl;
  json_t *body;
} post;

/* Room for n items in p: 1, or 0 with the answer made (413: more than
 * max_items; 500) and *rc its code. whats: "batches" or "items". */
static int items_new(ordo_server *srv, post *p, size_t n, const char *whats,
                     ordo_server_response *resp, int *rc) {
  if (n > srv->opts.max_items) {
    *rc = ordo__srv_error(resp, 413, ORDO_E_INVAL,
                          "%zu %s: at most %zu in one "
                          "request",
                          n, whats, srv->opts.max_items);
    return 0;
  }
  if ((p->it = calloc(n, sizeof *p->it)) == NULL) {
    *rc = ordo__srv_reply(resp, 500, NULL);
    return 0;
  }
  p->n = n;
  return 1;
}

/* The two forms of a request, read into p's items, each checked and none
 * twice: 1, or 0 with the answer made (a refusal) and *rc its code. */

static int read_raw(ordo_server *srv, const ordo_server_request *req,
                    post *p, ordo_server_response *resp, int *rc) {
  size_t i;

  if (req->body_len == 0) {
    *rc = ordo__srv_error(resp, 400, ORDO_E_LEDGER_EMPTY,
                          "the BatchList is empty");
    return 0;
  }
  *rc = ordo_ledger_batchlist_decode(req->body, req->body_len, &p->bl);
  if (*rc == ORDO_OK && ordo_ledger_batchlist_count(p->bl) == 0)
    *rc = ordo__set_last_error(ORDO_E_LEDGER_EMPTY, "the BatchList has no "
                               "batches");
  if (*rc == ORDO_OK)
    *rc = ordo_ledger_batchlist_validate(p->bl);
  if (*rc != ORDO_OK) {
    *rc = *rc == ORDO_E_NOMEM
              ? ordo__srv_reply(resp, 500, NULL)
              : ordo__srv_error(resp, 400, *rc, "BatchList: %s",
                                ordo_last_error_message());
    return 0;
  }
  if (!items_new(srv, p, ordo_ledger_batchlist_count(p->bl), "batches", resp,
                 rc))
    return 0;
  for (i = 0; i < p->n; i++) {
    const ordo_ledger_batch *b = ordo_ledger_batchlist_batch(p->bl, i);
    item *it = &p->it[i];
    char why[200];
    size_t k;
    int brc;
    it->sp.id = ordo_ledger_batch_id(b);
    it->sp.service = p->svc;
    /* Each batch is queued as a one-batch BatchList of its own, locked as
     * at every door (the list was validated whole above: b is checked). */
    if (ordo_ledger_batchlist_encode(&b, 1, &it->payload,
                                     &it->sp.payload_len) != ORDO_OK) {
      *rc = ordo__srv_reply(resp, 500, NULL);
      return 0;
    }
    it->sp.payload = it->payload;
    if ((brc = item_batch(it, b, why, sizeof why)) != ORDO_OK) {
      *rc = brc == ORDO_E_INVAL ? ordo__srv_error(resp, 400, ORDO_E_INVAL,
                                                  "batch %zu: %s", i, why)
                                : ordo__srv_reply(resp, 500, NULL);
      return 0;
    }
    for (k = 0; k < i; k++)
      if (strcmp(p->it[k].sp.id, it->sp.id) == 0) {
        *rc = ordo__srv_error(resp, 409, ORDO_E_EXISTS,
                              "batch %zu: the same batch "
                              "as batch %zu",
                              i, k);
        return 0;
      }
  }
  return 1;
}

static int read_json(ordo_server *srv, const ordo_server_request *req,
                     post *p, ordo_server_response *resp, int *rc) {
  char why[600];
  size_t i;

  if (!ordo__srv_parse_body(req, 1, &p->body, resp))
    return 0;
  if (json_is_object(p->body)) {
    json_t *arr = json_array();
    if (arr == NULL || json_array_append(arr, p->body) != 0) {
      json_decref(arr);
      *rc = ordo__srv_reply(resp, 500, NULL);
      return 0;
    }
    json_decref(p->body);
    p->body = arr;
  } else if (!json_is_array(p->body) || json_array_size(p->body) == 0) {
    *rc = ordo__srv_error(resp, 400, ORDO_E_INVAL,
                          "the body must be a batch object "
                          "or a non-empty array of them");
    return 0;
  }
  if (!items_new(srv, p, json_array_size(p->body), "items", resp, rc))
    return 0;
  for (i = 0; i < p->n; i++) {
    item *it = &p->it[i];
    size_t k;
    int irc = item_from_json(srv, json_array_get(p->body, i), p->svc, it, why,
                             sizeof why);
    if (irc != ORDO_OK) {
      *rc = irc == ORDO_E_NOMEM ? ordo__srv_reply(resp, 500, NULL)
                                : ordo__srv_error(resp, 400, ORDO_E_INVAL,
                                                  "item %zu: %s", i, why);
      return 0;
    }
    for (k = 0; k < i; k++) {
      const item *o = &p->it[k];
      if (strcmp(o->sp.id, it->sp.id) == 0) {
        *rc = ordo__srv_error(resp, 409, ORDO_E_EXISTS,
                              "item %zu: id '%s' repeats "
                              "item %zu",
                              i, it->sp.id, k);
        return 0;
      }
      if (it->sp.ledger_id != NULL && o->sp.ledger_id != NULL &&
          strcmp(o->sp.ledger_id, it->sp.ledger_id) == 0) {
        *rc = ordo__srv_error(resp, 409, ORDO_E_EXISTS,
                              "item %zu: ledger batch "
                              "%.16s… is item %zu's ('%s') too",
                              i, it->sp.ledger_id, k, o->sp.id);
        return 0;
      }
    }
  }
  return 1;
}

int ordo__srv_post_batches(ordo_server *srv, const ordo_server_request *req,
                           ordo_server_response *resp) {
  /* Any other Content-Type (or none) is JSON: curl -d sends a form type. */
  int raw = ordo__http_content_type_is(req->content_type,
                                       "application/octet-stream");
  int rc = ORDO_OK;
  post p;

  memset(&p, 0, sizeof p);
  if ((p.svc = raw_service(req, &p.svc_owned, resp)) == NULL)
    return ORDO_OK;
  /* What the journal has already (the same batch: a retry; or its id
   * under another content) is decided there, atomically. */
  if (raw ? read_raw(srv, req, &p, resp, &rc)
          : read_json(srv, req, &p, resp, &rc))
    rc = enqueue_items(srv, p.it, p.n, raw ? "batch" : "item", resp);
  items_free(p.it, p.n);
  ordo_ledger_batchlist_free(p.bl);
  json_decref(p.body);
  free(p.svc_owned);
  return rc;
}

/*
 * api.c — the submission queue's public C API (include/ordo.h, "The
 * submission queue"): JSON in, JSON out, over the journal of journal.c, so
 * that bindings (ctypes) and the HTTP server need no C structs.
 *
 * A payload that is a Sawtooth BatchList of one batch is scheduled by what
 * the signed batch says (its transactions' inputs and outputs, its id as
 * the ledger id), so this file, alone in the queue module, uses the ledger
 * module's header: ordo_ledger_batch_footprint is the one footprint rule
 * for every path that enqueues a Sawtooth batch.
 */
#include "queue/queue.h"
#include "queue/batch_json.h"
#include "ledger/ledger.h" /* Sawtooth payloads: footprint and batch id */
#include "runtime/runtime.h"

#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ordo_free(void *p) { free(p); }

/* A non-negative integer field, if present. */
static int uint_field(json_t *o, const char *key, long long max,
                      long long *out) {
  json_t *v = json_object_get(o, key);
  if (v == NULL)
    return ORDO_OK;
  if (!json_is_integer(v) || json_integer_value(v) < 0 ||
      json_integer_value(v) > max)
    return ordo__set_last_error(ORDO_E_CONFIG, "queue options: '%s' must be "
                                "an integer in 0..%lld", key, max);
  *out = json_integer_value(v);
  return ORDO_OK;
}

int ordo_journal_open_json(ordo_ctx *ctx, const char *path,
                           const char *options_json, ordo_journal **out) {
  static const char *const known[] = {"create", "strategy", "mode",
                                      "granularity", "max_in_flight",
                                      "service_max_in_flight"};
  ordo_journal_options opt;
  json_error_t err;
  json_t *o = NULL, *v;
  const char *key;
  long long n;
  int rc = ORDO_OK;

  ordo_journal_options_init(&opt);
  opt.create = 1;
  if (options_json != NULL) {
    o = json_loads(options_json, JSON_REJECT_DUPLICATES, &err);
    if (!json_is_object(o)) {
      json_decref(o);
      return ordo__set_last_error(ORDO_E_JSON, "queue options: %s",
                                  o == NULL ? err.text : "not an object");
    }
    json_object_foreach(o, key, v) {
      size_t i;
      for (i = 0; i < sizeof known / sizeof known[0] && strcmp(key, known[i]);
           i++)
        ;
      if (i == sizeof known / sizeof known[0]) {
        rc = ordo__set_last_error(ORDO_E_CONFIG, "queue options: unknown key "
                                  "'%s'", key);
        goto done;
      }
    }
    if ((v = json_object_get(o, "create")) != NULL) {
      if (!json_is_boolean(v)) {
        rc = ordo__set_last_error(ORDO_E_CONFIG, "queue options: 'create' "
                                  "must be true or false");
        goto done;
      }
      opt.create = json_is_true(v);
    }
    if ((v = json_object_get(o, "strategy")) != NULL &&
        ordo_queue_strategy_parse(json_string_value(v), &opt.queue.strategy)) {
      rc = ordo__set_last_error(ORDO_E_CONFIG, "queue options: 'strategy' "
                                "must be parallel, serial or unconstrained");
      goto done;
    }
    if ((v = json_object_get(o, "mode")) != NULL &&
        ordo_queue_mode_parse(json_string_value(v), &opt.queue.mode)) {
      rc = ordo__set_last_error(ORDO_E_CONFIG, "queue options: 'mode' must "
                                "be continuous or rounds");
      goto done;
    }
    if ((v = json_object_get(o, "granularity")) != NULL) {
      if (!json_is_integer(v) || json_integer_value(v) < -1 ||
          json_integer_value(v) > 1000000) {
        rc = ordo__set_last_error(ORDO_E_CONFIG, "queue options: "
                                  "'granularity' must be -1 (unlimited) or "
                                  "0..1000000");
        goto done;
      }
      opt.queue.granularity = (int)json_integer_value(v);
    }
    n = 0;
    if ((rc = uint_field(o, "max_in_flight", 1000000000, &n)) != ORDO_OK)
      goto done;
    opt.queue.max_in_flight = (unsigned)n;
    n = 0;
    if ((rc = uint_field(o, "service_max_in_flight", 1000000000, &n)))
      goto done;
    opt.queue.service_max_in_flight = (unsigned)n;
  }
  rc = ordo_journal_open(ctx, path, &opt, out);
done:
  json_decref(o);
  return rc;
}

/* An op that has already failed with rc and the thread's last message. */
static ordo_op *failed_op(ordo_ctx *ctx, int rc) {
  ordo_op *op = ordo__op_new(ctx, NULL, NULL);
  if (op == NULL)
    return NULL;
  ordo_op_set_message(op, "%s", ordo_last_error_message());
  return ordo__op_reject(op, rc);
}

ordo_op *ordo_journal_enqueue_json(ordo_journal *j, const char *batch_json) {
  static const char *const extra[] = {"payload"};
  ordo_queue_batch_spec sp = {0};
  ordo_batch_json bj;
  ordo_ledger_batchlist *bl = NULL;
  ordo_ledger_footprint fp = {0};
  json_error_t err;
  json_t *o;
  const char *b64;
  unsigned char *payload = NULL;
  size_t plen = 0;
  char why[300];
  ordo_op *op = NULL;
  int rc;

  if (j == NULL)
    return NULL;
  o = batch_json != NULL ? json_loads(batch_json, JSON_REJECT_DUPLICATES, &err)
                         : NULL;
  if (!json_is_object(o)) {
    ordo__set_last_error(ORDO_E_JSON, "batch: %s",
                         o == NULL ? (batch_json == NULL ? "NULL" : err.text)
                                   : "not an object");
    json_decref(o);
    return failed_op(ordo_journal_ctx(j), ORDO_E_JSON);
  }
  /* The shared fields and their rules (batch_json.h); the arrays are
   * bj's, whatever sp ends up with. */
  if ((rc = ordo_batch_json_parse(o, extra, 1, NULL, &bj, why, sizeof why)) !=
      ORDO_OK) {
    ordo__set_last_error(rc, "batch: %s", rc == ORDO_E_NOMEM ? "out of memory"
                                                             : why);
    json_decref(o);
    return failed_op(ordo_journal_ctx(j), rc);
  }
  ordo_batch_json_spec(&bj, &sp);
  if (bj.extra[0] != NULL) {
    if ((b64 = json_string_value(bj.extra[0])) == NULL) {
      rc = ordo__set_last_error(ORDO_E_INVAL, "batch: 'payload' must be a "
                                "base64 string");
      goto done;
    }
    if ((payload = malloc(strlen(b64) + 1)) == NULL) {
      rc = ordo__set_last_error(ORDO_E_NOMEM, NULL);
      goto done;
    }
    if (sodium_base642bin(payload, strlen(b64) + 1, b64, strlen(b64), NULL,
                          &plen, NULL, sodium_base64_VARIANT_ORIGINAL) != 0) {
      rc = ordo__set_last_error(ORDO_E_INVAL, "batch: 'payload' is not "
                                "base64");
      goto done;
    }
    sp.payload = payload;
    sp.payload_len = plen;
    /* A Sawtooth batch is locked by what it is signed to touch, as at
     * every door; anything else is opaque: this API is also a plain
     * durable queue. */
    if ((rc = ordo_ledger_spec_from_payload(
             &sp, ORDO_LEDGER_PAYLOAD_OPAQUE_OK, &bl, &fp)) != ORDO_OK) {
      char m[400];
      snprintf(m, sizeof m, "%s", ordo_last_error_message());
      ordo__set_last_error(rc, "batch: 'payload': %s", m);
      goto done;
    }
  }
  op = ordo_journal_enqueue(j, &sp); /* copies everything */
done:
  if (rc != ORDO_OK)
    op = failed_op(ordo_journal_ctx(j), rc);
  ordo_batch_json_clear(&bj);
  ordo_ledger_footprint_clear(&fp);
  ordo_ledger_batchlist_free(bl);
  free(payload);
  json_decref(o);
  return op;
}

int ordo_journal_set_policy_json(ordo_journal *j, const char *service,
                                 const char *policy_json) {
  json_error_t err;
  json_t *o, *v;
  ordo_queue_on_invalid oi = ORDO_QUEUE_SKIP;
  long long cap = 0;
  uint64_t dt_ms = 0;
  int rc;
  if (j == NULL || service == NULL || policy_json == NULL)
    return ordo__set_last_error(ORDO_E_INVAL, "policy: NULL argument");
  o = json_loads(policy_json, JSON_REJECT_DUPLICATES, &err);
  if (!json_is_object(o)) {
    json_decref(o);
    return ordo__set_last_error(ORDO_E_JSON, "policy: %s",
                                o == NULL ? err.text : "not an object");
  }
  if ((v = json_object_get(o, "on_invalid")) != NULL) {
    const char *s = json_string_value(v);
    if (s != NULL && strcmp(s, "halt") == 0)
      oi = ORDO_QUEUE_HALT;
    else if (s == NULL || strcmp(s, "skip") != 0) {
      json_decref(o);
      return ordo__set_last_error(ORDO_E_CONFIG, "policy: 'on_invalid' must "
                                  "be skip or halt");
    }
  }
  rc = uint_field(o, "max_in_flight", 1000000000, &cap);
  if (rc == ORDO_OK && (v = json_object_get(o, "dep_timeout_s")) != NULL) {
    if (!json_is_number(v) || !(json_number_value(v) >= 0) ||
        json_number_value(v) > 1e9)
      rc = ordo__set_last_error(ORDO_E_CONFIG, "policy: 'dep_timeout_s' must "
                                "be a number of seconds in 0..1e9");
    else
      dt_ms = (uint64_t)(json_number_value(v) * 1000.0 + 0.5);
  }
  if (rc == ORDO_OK) {
    const char *key;
    json_object_foreach(o, key, v)
      if (strcmp(key, "on_invalid") != 0 && strcmp(key, "max_in_flight") != 0 &&
          strcmp(key, "dep_timeout_s") != 0) {
        rc = ordo__set_last_error(ORDO_E_CONFIG, "policy: unknown key '%s'",
                                  key);
        break;
      }
  }
  json_decref(o);
  if (rc != ORDO_OK)
    return rc;
  return ordo_journal_set_policy(j, service, oi, (unsigned)cap, dt_ms);
}

/* ------------------------------------------------------------------------ */
/* The JSON views (queue.h): text over the journal's typed answers           */
/* ------------------------------------------------------------------------ */

static char *dump_or_null(json_t *o) {
  char *s = o != NULL ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
  json_decref(o);
  if (s == NULL)
    ordo__set_last_error(ORDO_E_NOMEM, NULL);
  return s;
}

/* o[key] = v (a new reference), unless o is NULL; o is dropped (NULL
 * returned) when it cannot be set. */
static json_t *put(json_t *o, const char *key, json_t *v) {
  if (o != NULL && json_object_set_new(o, key, v) != 0) {
    json_decref(o);
    return NULL;
  }
  if (o == NULL)
    json_decref(v);
  return o;
}

/* [{"id","mode"}, …] of a blocker's holders. */
static json_t *holders_json(const ordo_queue_blocker *k) {
  json_t *a = json_array();
  size_t i;
  for (i = 0; a != NULL && i < k->nholders; i++)
    if (json_array_append_new(
            a, json_pack("{s:s, s:s}", "id", k->holders[i].id, "mode",
                         k->holders[i].write ? "write" : "read")) != 0) {
      json_decref(a);
      a = NULL;
    }
  return a;
}

/* One blocker as /v1/batches/{id}'s "waits_on" has it:
 *   {"kind":"dep","what","state"}
 *   {"kind":"address","what","mode","holders":[…],"more"}
 *   {"kind":"serial","what","holders":[…],"earlier"} */
static json_t *blocker_json(const ordo_queue_blocker *k) {
  json_t *o = json_pack("{s:s, s:s}", "kind", k->kind, "what", k->what);
  if (strcmp(k->kind, "dep") == 0)
    return put(o, "state", json_string(k->state));
  o = put(o, "holders", holders_json(k));
  if (strcmp(k->kind, "serial") == 0)
    return put(o, "earlier", json_integer((json_int_t)k->earlier));
  o = put(o, "mode", json_string(k->write ? "write" : "read"));
  return put(o, "more", json_integer((json_int_t)k->more));
}

static json_t *waits_on_json(const ordo_journal_batch_info *b) {
  json_t *a = json_array();
  size_t i;
  for (i = 0; a != NULL && i < b->nblockers; i++)
    if (json_array_append_new(a, blocker_json(&b->blockers[i])) != 0) {
      json_decref(a);
      a = NULL;
    }
  return a;
}

char *ordo_journal_batch_json(ordo_journal *j, const char *id) {
  ordo_journal_batch_info b;
  json_t *o;
  if (ordo_journal_get_batch(j, id, &b) != ORDO_OK)
    return NULL;
  o = json_pack("{s:s, s:s, s:I, s:s}", "id", id, "service", b.service, "seq",
                (json_int_t)b.seq, "state", ordo_queue_state_name(b.state));
  if (b.reason != NULL)
    o = put(o, "reason", json_string(b.reason));
  if (b.enqueued_ms != 0)
    o = put(o, "enqueued_ms", json_integer((json_int_t)b.enqueued_ms));
  if (b.finished_ms != 0)
    o = put(o, "finished_ms", json_integer((json_int_t)b.finished_ms));
  if (b.ledger_id != NULL)
    o = put(o, "ledger_id", json_string(b.ledger_id));
  if (b.explain != NULL)
    o = put(o, "explain", json_string(b.explain));
  if (b.nblockers > 0)
    o = put(o, "waits_on", waits_on_json(&b));
  ordo_journal_batch_info_clear(&b);
  return dump_or_null(o);
}

char *ordo_journal_service_json(ordo_journal *j, const char *service) {
  ordo_journal_service_info in;
  json_t *o;
  if (ordo_journal_get_service(j, service, &in) != ORDO_OK)
    return NULL;
  o = json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:b}", "service",
                service, "depth", (json_int_t)in.depth, "queued",
                (json_int_t)in.queued, "waiting", (json_int_t)in.waiting,
                "in_flight", (json_int_t)in.in_flight, "unknown",
                (json_int_t)in.unknown, "committed", (json_int_t)in.committed,
                "invalid", (json_int_t)in.invalid, "halted", in.halted);
  if (in.halt_batch != NULL)
    o = put(o, "halt_batch", json_string(in.halt_batch));
  if (in.halt_reason != NULL)
    o = put(o, "halt_reason", json_string(in.halt_reason));
  ordo_journal_service_info_clear(&in);
  return dump_or_null(o);
}

char *ordo_journal_totals_json(ordo_journal *j) {
  ordo_journal_totals t;
  json_t *o;
  if (ordo_journal_get_totals(j, &t) != ORDO_OK)
    return NULL;
  o = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I,"
                " s:I, s:I, s:I, s:I, s:I}",
                "queued", (json_int_t)t.queued, "waiting",
                (json_int_t)t.waiting, "in_flight", (json_int_t)t.in_flight,
                "unknown", (json_int_t)t.unknown, "committed",
                (json_int_t)t.committed, "invalid", (json_int_t)t.invalid,
                "services", (json_int_t)t.services, "journal_records",
                (json_int_t)t.records, "queue_memory_bytes",
                (json_int_t)t.queue_memory_bytes, "forgotten",
                (json_int_t)t.forgotten, "retained", (json_int_t)t.retained,
                "expired", (json_int_t)t.expired, "id_segments",
                (json_int_t)t.id_segments, "checkpoints",
                (json_int_t)t.checkpoints, "taken_ahead",
                (json_int_t)t.taken_ahead, "services_dropped",
                (json_int_t)t.services_dropped);
  o = put(o, "latency_ms",
          json_pack("{s:I, s:I, s:I}", "count", (json_int_t)t.latency_count,
                    "p50", (json_int_t)t.latency_p50_ms, "p99",
                    (json_int_t)t.latency_p99_ms));
  if (t.failed)
    o = put(o, "failed", json_string(t.failed_message));
  return dump_or_null(o);
}

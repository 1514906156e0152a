/*
 * config.c — the server's options: defaults, and a JSON config file on top
 * of them (server.h lists every key). The strings a config sets are copied
 * into one jansson object kept by the options (owned_), so the options stay
 * plain borrowed pointers for callers that set fields by hand. A signing
 * key a config names is read when the config is applied (a bad or
 * world-readable key file fails it) and owned by the options too.
 */
#include "server/server.h"
#include "base/base.h"
#include "ledger/ledger.h"
#include "runtime/runtime.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ordo_server_options_init(ordo_server_options *o) {
  ordo_submitter_options sub;
  memset(o, 0, sizeof(*o));
  o->port = 8080;
  ordo_queue_options_init(&o->queue);
  o->max_body_bytes = 16u << 20;
  o->max_items = 10000;
  o->poll_ms = 20;
  /* What the server hands its submitter defaults to the submitter's own
   * defaults: one place says them. */
  ordo_submitter_options_init(&sub);
  o->max_submit_bytes = sub.max_submit_bytes;
  o->status_wait_s = sub.status_wait_s;
  o->ledger_probe_ms = sub.probe_ms;
  o->request_timeout_ms = 60000;
  o->max_jobs = 256;
  o->connection_limit = 4096;
  o->shutdown_grace_ms = 10000;
  o->connection_limit_per_ip = 64;
  o->header_timeout_ms = 10000;
  o->idle_timeout_ms = 30000;
  ordo_config_init(&o->runtime);
  (void)ordo_config_from_env(&o->runtime); /* a bad variable: start says */
}

void ordo_server_options_clear(ordo_server_options *o) {
  if (o == NULL)
    return;
  json_decref(o->owned_);
  o->owned_ = NULL;
  if (o->signer_owned_ != NULL) {
    if (o->signer == o->signer_owned_)
      o->signer = NULL;
    ordo_ledger_signer_free(o->signer_owned_); /* wipes the key */
    o->signer_owned_ = NULL;
  }
}

int ordo_server_options_signing_key_file(ordo_server_options *o,
                                         const char *path) {
  ordo_ledger_signer *s = NULL;
  int rc;
  if (o == NULL || path == NULL)
    return ordo__set_last_error(ORDO_E_INVAL, "signing key file: NULL "
                                "argument");
  /* The reader refuses a world-readable file and never quotes the key. */
  if ((rc = ordo_ledger_signer_from_file(path, &s)) != ORDO_OK)
    return rc;
  ordo_ledger_signer_free(o->signer_owned_);
  o->signer_owned_ = s;
  o->signer = s;
  return ORDO_OK;
}

static int bad(const char *key, const char *what) {
  return ordo__set_last_error(ORDO_E_CONFIG, "config: '%s' must be %s", key,
                              what);
}

/* An integer key in lo..hi, if present. */
static int int_key(json_t *cfg, const char *key, long long lo, long long hi,
                   long long *out, int *present) {
  json_t *v = json_object_get(cfg, key);
  *present = v != NULL;
  if (v == NULL)
    return ORDO_OK;
  if (!json_is_integer(v) || json_integer_value(v) < lo ||
      json_integer_value(v) > hi) {
    char what[96];
    snprintf(what, sizeof what, "an integer in %lld..%lld", lo, hi);
    return bad(key, what);
  }
  *out = json_integer_value(v);
  return ORDO_OK;
}

/* A string key, if present (pointer into cfg). */
static int str_key(json_t *cfg, const char *key, const char **out) {
  json_t *v = json_object_get(cfg, key);
  if (v == NULL)
    return ORDO_OK;
  if (!json_is_string(v) || json_string_length(v) == 0 ||
      strlen(json_string_value(v)) != json_string_length(v))
    return bad(key, "a non-empty string");
  *out = json_string_value(v);
  return ORDO_OK;
}

int ordo_server_options_from_json(ordo_server_options *o, const char *json) {
  static const char *const known[] = {
      "port", "bind", "token_file", "data_dir", "ledger_url", "strategy",
      "mode", "granularity", "max_in_flight", "service_max_in_flight",
      "services", "max_body_bytes", "max_items", "rate_limit_per_s",
      "rate_limit_burst", "poll_ms", "max_per_submit", "max_submit_bytes",
      "status_wait_s", "ledger_probe_ms", "request_timeout_ms",
      "max_jobs", "connection_limit", "shutdown_grace_ms", "runtime",
      "signing_key_file", "connection_limit_per_ip", "header_timeout_ms",
      "idle_timeout_ms", "checkpoint_records", "retention_count",
      "retention_s"};
  ordo_server_options n;
  ordo_ledger_signer *signer = NULL; /* a new key, until o owns it */
  json_error_t err;
  json_t *cfg, *v, *old;
  const char *key, *s;
  long long x;
  int rc = ORDO_OK, has;

  if (o == NULL || json == NULL)
    return ordo__set_last_error(ORDO_E_INVAL, "config: NULL argument");
  cfg = json_loads(json, JSON_REJECT_DUPLICATES, &err);
  if (cfg == NULL)
    return ordo__set_last_error(ORDO_E_JSON, "config: not JSON (line %d, "
                                "column %d)", err.line, err.column);
  if (!json_is_object(cfg)) {
    json_decref(cfg);
    return ordo__set_last_error(ORDO_E_CONFIG, "config: not a JSON object");
  }
  json_object_foreach(cfg, key, v) {
    size_t i;
    for (i = 0; i < sizeof known / sizeof known[0] && strcmp(key, known[i]);
         i++)
      ;
    if (i == sizeof known / sizeof known[0]) {
      rc = ordo__set_last_error(ORDO_E_CONFIG, "config: unknown key '%.64s'",
                                key);
      goto done;
    }
  }
  n = *o;
  if ((rc = int_key(cfg, "port", 0, 65535, &x, &has)) != ORDO_OK)
    goto done;
  if (has)
    n.port = (int)x;
  if ((rc = str_key(cfg, "bind", &n.bind)) != ORDO_OK ||
      (rc = str_key(cfg, "token_file", &n.token_file)) != ORDO_OK ||
      (rc = str_key(cfg, "data_dir", &n.data_dir)) != ORDO_OK ||
      (rc = str_key(cfg, "ledger_url", &n.ledger_url)) != ORDO_OK)
    goto done;
/* A string key that parse (0: it names one of choices) turns into field. */
#define NAMED_FIELD(name, parse, field, choices)                             \
  do {                                                                       \
    s = NULL;                                                                \
    if ((rc = str_key(cfg, name, &s)) != ORDO_OK)                            \
      goto done;                                                             \
    if (s != NULL && parse(s, &n.field)) {                                   \
      rc = bad(name, choices);                                               \
      goto done;                                                             \
    }                                                                        \
  } while (0)
  NAMED_FIELD("strategy", ordo_queue_strategy_parse, queue.strategy,
              "parallel, serial or unconstrained");
  NAMED_FIELD("mode", ordo_queue_mode_parse, queue.mode,
              "continuous or rounds");
#undef NAMED_FIELD
#define INT_FIELD(name, lo, hi, field, type)                                 \
  do {                                                                       \
    if ((rc = int_key(cfg, name, lo, hi, &x, &has)) != ORDO_OK)              \
      goto done;                                                             \
    if (has)                                                                 \
      n.field = (type)x;                                                     \
  } while (0)
  INT_FIELD("granularity", -1, 1000000, queue.granularity, int);
  INT_FIELD("max_in_flight", 0, 1000000000, queue.max_in_flight, unsigned);
  INT_FIELD("service_max_in_flight", 0, 1000000000,
            queue.service_max_in_flight, unsigned);
  INT_FIELD("max_body_bytes", 1, 1LL << 30, max_body_bytes, size_t);
  INT_FIELD("max_items", 1, 1000000, max_items, size_t);
  INT_FIELD("rate_limit_burst", 0, 1000000, rate_limit_burst, unsigned);
  INT_FIELD("poll_ms", 0, 60000, poll_ms, unsigned);
  INT_FIELD("max_per_submit", 0, 100000, max_per_submit, size_t);
  INT_FIELD("max_submit_bytes", 1024, 1LL << 30, max_submit_bytes, size_t);
  INT_FIELD("status_wait_s", 0, 300, status_wait_s, int);
  INT_FIELD("ledger_probe_ms", 0, 3600000, ledger_probe_ms, unsigned);
  INT_FIELD("request_timeout_ms", 1, 3600000, request_timeout_ms, unsigned);
  INT_FIELD("max_jobs", 1, 100000, max_jobs, unsigned);
  INT_FIELD("connection_limit", 1, 100000, connection_limit, unsigned);
  INT_FIELD("shutdown_grace_ms", 0, 600000, shutdown_grace_ms, unsigned);
  INT_FIELD("connection_limit_per_ip", 1, 100000, connection_limit_per_ip,
            unsigned);
  INT_FIELD("header_timeout_ms", 1, 3600000, header_timeout_ms, unsigned);
  INT_FIELD("idle_timeout_ms", 1, 3600000, idle_timeout_ms, unsigned);
  INT_FIELD("checkpoint_records", 1, 1000000000, checkpoint_records,
            long long);
  INT_FIELD("retention_count", 1, 10000000000LL, retention_count, long long);
  INT_FIELD("retention_s", 1, 1000000000, retention_s, long long);
#undef INT_FIELD
  if ((v = json_object_get(cfg, "rate_limit_per_s")) != NULL) {
    if (!json_is_number(v) || !(json_number_value(v) >= 0) ||
        json_number_value(v) > 1e9) {
      rc = bad("rate_limit_per_s", "a number in 0..1e9");
      goto done;
    }
    n.rate_limit_per_s = json_number_value(v);
  }
  if ((v = json_object_get(cfg, "services")) != NULL) {
    const char *svc;
    json_t *pol;
    char *text;
    if (!json_is_object(v)) {
      rc = bad("services", "an object of per-service policies");
      goto done;
    }
    json_object_foreach(v, svc, pol) {
      json_t *oi = json_object_get(pol, "on_invalid"),
             *cap = json_object_get(pol, "max_in_flight"),
             *dt = json_object_get(pol, "dep_timeout_s");
      if (!json_is_object(pol) ||
          json_object_size(pol) !=
              (size_t)(oi != NULL) + (cap != NULL) + (dt != NULL) ||
          (dt != NULL && (!json_is_number(dt) || !(json_number_value(dt) >= 0) ||
                          json_number_value(dt) > 1e9)) ||
          (oi != NULL && (!json_is_string(oi) ||
                          (strcmp(json_string_value(oi), "skip") != 0 &&
                           strcmp(json_string_value(oi), "halt") != 0))) ||
          (cap != NULL && (!json_is_integer(cap) ||
                           json_integer_value(cap) < 0 ||
                           json_integer_value(cap) > 1000000000)) ||
          svc[0] == '\0') {
        rc = ordo__set_last_error(ORDO_E_CONFIG, "config: services.'%.64s' "
                                  "must be {\"on_invalid\":\"skip\"|\"halt\","
                                  "\"max_in_flight\":N,\"dep_timeout_s\":S}",
                                  svc);
        goto done;
      }
    }
    if ((text = json_dumps(v, JSON_COMPACT)) == NULL ||
        json_object_set_new(cfg, "services", json_string(text)) != 0) {
      free(text);
      rc = ordo__set_last_error(ORDO_E_NOMEM, NULL);
      goto done;
    }
    free(text);
    n.services_json = json_string_value(json_object_get(cfg, "services"));
  }
  if ((v = json_object_get(cfg, "runtime")) != NULL) {
    char *text = json_is_object(v) ? json_dumps(v, JSON_COMPACT) : NULL;
    if (text == NULL) {
      rc = bad("runtime", "an object of runtime keys (cheap_threads, ...)");
      goto done;
    }
    rc = ordo_config_from_json(&n.runtime, text);
    free(text);
    if (rc != ORDO_OK) {
      ordo__set_last_error(rc, "config: runtime: %s",
                           ordo_last_error_message());
      goto done;
    }
  }
  s = NULL;
  if ((rc = str_key(cfg, "signing_key_file", &s)) != ORDO_OK)
    goto done;
  if (s != NULL && (rc = ordo_ledger_signer_from_file(s, &signer)) !=
                       ORDO_OK) {
    rc = ordo__set_last_error(ORDO_E_CONFIG, "config: 'signing_key_file': "
                              "%s", ordo_last_error_message());
    goto done;
  }
  /* Keep the strings: the old config's strings may still be in use. */
  old = o->owned_;
  if (old != NULL) {
    json_t *keep = json_array();
    if (keep == NULL || json_array_append(keep, old) != 0 ||
        json_array_append(keep, cfg) != 0) {
      json_decref(keep);
      rc = ordo__set_last_error(ORDO_E_NOMEM, NULL);
      goto done;
    }
    json_decref(old);
    json_decref(cfg);
    cfg = NULL;
    n.owned_ = keep;
  } else {
    n.owned_ = cfg;
    cfg = NULL;
  }
  if (signer != NULL) {
    ordo_ledger_signer_free(n.signer_owned_); /* a key o owned before */
    n.signer_owned_ = signer;
    n.signer = signer;
    signer = NULL;
  }
  *o = n;
done:
  ordo_ledger_signer_free(signer); /* wipes it */
  json_decref(cfg);
  return rc;
}

int ordo_server_options_from_file(ordo_server_options *o, const char *path) {
  FILE *f;
  char *text;
  size_t len;
  int rc;

  if (o == NULL || path == NULL)
    return ordo__set_last_error(ORDO_E_INVAL, "config: NULL argument");
  if ((f = fopen(path, "rb")) == NULL)
    return ordo__set_last_error(ORDO_E_IO, "config: %s: %s", path,
                                strerror(errno));
  rc = ordo__read_stream(f, 64u << 20, &text, &len);
  fclose(f);
  if (rc == ORDO_E_IO)
    return ordo__set_last_error(ORDO_E_IO, "config: %s: read error", path);
  if (rc != ORDO_OK)
    return ordo__set_last_error(rc == ORDO_E_NOMEM ? ORDO_E_NOMEM : ORDO_E_IO,
                                "config: %s: too large", path);
  rc = ordo_server_options_from_json(o, text);
  free(text);
  if (rc != ORDO_OK)
    ordo__set_last_error(rc, "%s: %s", path, ordo_last_error_message());
  return rc;
}

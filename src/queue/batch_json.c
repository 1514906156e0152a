/*
 * batch_json.c — one batch as JSON, parsed and checked once for every
 * front end (batch_json.h).
 */
#include "queue/batch_json.h"
#include "ordo.h"
#include "queue/queue.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const shared_keys[] = {"id", "service", "reads", "writes",
                                          "deps"};
#define NSHARED (sizeof shared_keys / sizeof shared_keys[0])

int ordo_batch_json_good_str(json_t *v, size_t max) {
  return json_is_string(v) && json_string_length(v) > 0 &&
         json_string_length(v) <= max &&
         strlen(json_string_value(v)) == json_string_length(v);
}

/* The index of key in keys[0..n), or n. */
static size_t key_index(const char *key, const char *const *keys, size_t n) {
  size_t k;
  for (k = 0; k < n && strcmp(key, keys[k]) != 0; k++)
    ;
  return k;
}

int ordo_batch_json_strings(json_t *o, const char *key, size_t max,
                            const char ***v, size_t *n, char *why,
                            size_t whylen) {
  json_t *a = json_object_get(o, key), *e;
  size_t i;
  *v = NULL;
  *n = 0;
  if (a == NULL)
    return ORDO_OK;
  if (!json_is_array(a))
    goto not_strings;
  json_array_foreach(a, i, e) {
    if (!json_is_string(e))
      goto not_strings;
    if (!ordo_batch_json_good_str(e, max)) {
      snprintf(why, whylen, "'%s'[%zu] must be a non-empty string of at most "
               "%zu bytes", key, i, max);
      return ORDO_E_INVAL;
    }
  }
  if (json_array_size(a) == 0)
    return ORDO_OK;
  if ((*v = malloc(json_array_size(a) * sizeof(**v))) == NULL)
    return ORDO_E_NOMEM;
  json_array_foreach(a, i, e) {
    (*v)[i] = json_string_value(e);
  }
  *n = json_array_size(a);
  return ORDO_OK;
not_strings:
  snprintf(why, whylen, "'%s' must be an array of strings", key);
  return ORDO_E_INVAL;
}

int ordo_batch_json_parse(json_t *o, const char *const *extra, size_t nextra,
                          const char *default_service, ordo_batch_json *b,
                          char *why, size_t whylen) {
  const char *key;
  json_t *v;
  int rc;

  memset(b, 0, sizeof(*b));
  if (nextra > ORDO_BATCH_JSON_EXTRA_MAX)
    nextra = ORDO_BATCH_JSON_EXTRA_MAX;
  if (!json_is_object(o)) {
    snprintf(why, whylen, "a batch must be a JSON object");
    return ORDO_E_INVAL;
  }
  json_object_foreach(o, key, v) {
    size_t k = key_index(key, extra, nextra);
    if (k < nextra)
      b->extra[k] = v;
    else if (key_index(key, shared_keys, NSHARED) == NSHARED) {
      snprintf(why, whylen, "unknown key '%.64s'", key);
      return ORDO_E_INVAL;
    }
  }
  if ((v = json_object_get(o, "id")) == NULL) {
    snprintf(why, whylen, "missing 'id'");
    return ORDO_E_INVAL;
  }
  if (!ordo_batch_json_good_str(v, ORDO_BATCH_ID_MAX)) {
    snprintf(why, whylen, "'id' must be a non-empty string of at most %d "
             "bytes", ORDO_BATCH_ID_MAX);
    return ORDO_E_INVAL;
  }
  b->id = json_string_value(v);
  if ((v = json_object_get(o, "service")) != NULL) {
    if (!ordo_batch_json_good_str(v, ORDO_BATCH_SERVICE_MAX)) {
      snprintf(why, whylen, "'service' must be a non-empty string of at most "
               "%d bytes", ORDO_BATCH_SERVICE_MAX);
      return ORDO_E_INVAL;
    }
    b->service = json_string_value(v);
  } else if ((b->service = default_service) == NULL) {
    snprintf(why, whylen, "missing 'service'");
    return ORDO_E_INVAL;
  }
  if ((rc = ordo_batch_json_strings(o, "reads", ORDO_BATCH_ADDRESS_MAX, &b->reads,
                      &b->nreads, why, whylen)) != ORDO_OK ||
      (rc = ordo_batch_json_strings(o, "writes", ORDO_BATCH_ADDRESS_MAX, &b->writes,
                      &b->nwrites, why, whylen)) != ORDO_OK ||
      (rc = ordo_batch_json_strings(o, "deps", ORDO_BATCH_ID_MAX, &b->deps, &b->ndeps, why,
                      whylen)) != ORDO_OK) {
    ordo_batch_json_clear(b);
    return rc;
  }
  for (size_t i = 0; i < b->ndeps; i++)
    if (strcmp(b->deps[i], b->id) == 0) {
      ordo_batch_json_clear(b);
      snprintf(why, whylen, "'deps' names the batch itself");
      return ORDO_E_INVAL;
    }
  return ORDO_OK;
}

void ordo_batch_json_spec(const ordo_batch_json *b,
                          struct ordo_queue_batch_spec *sp) {
  sp->id = b->id;
  sp->service = b->service;
  sp->reads = b->reads;
  sp->nreads = b->nreads;
  sp->writes = b->writes;
  sp->nwrites = b->nwrites;
  sp->deps = b->deps;
  sp->ndeps = b->ndeps;
}

void ordo_batch_json_clear(ordo_batch_json *b) {
  free(b->reads);
  free(b->writes);
  free(b->deps);
  b->reads = b->writes = b->deps = NULL;
  b->nreads = b->nwrites = b->ndeps = 0;
}

const char *ordo_batch_json_unknown_key(json_t *o, const char *const *known,
                                        size_t n) {
  const char *key;
  json_t *v;
  json_object_foreach(o, key, v) {
    (void)v;
    if (key_index(key, known, n) == n)
      return key;
  }
  return NULL;
}

/*
 * workload.c — the workload file (JSON Lines, DESIGN.md "Workload file").
 *
 * Strict on purpose: a wrong type, an unknown key or a dep that names no
 * earlier line is an error naming the line, because a silently ignored field
 * would change the plan without anyone noticing.
 */
#include "base/base.h"
#include "queue/queue.h"
#include "runtime/runtime.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void wbatch_free(ordo_workload_batch *b) {
  ordo__free_strv(b->reads, b->nreads);
  ordo__free_strv(b->writes, b->nwrites);
  ordo__free_strv(b->deps, b->ndeps);
  free(b->id);
  free(b->service);
}

void ordo_workload_free(ordo_workload *w) {
  size_t i;
  if (w == NULL)
    return;
  for (i = 0; i < w->nbatches; i++)
    wbatch_free(&w->batches[i]);
  free(w->batches);
  free(w);
}

/* Append the strings of array v (key `what` on line `line`) to *list. */
static int add_strings(json_t *v, const char *what, size_t line, char ***list,
                       size_t *n) {
  size_t i, k;
  char **p;

  if (!json_is_array(v))
    return ordo__set_last_error(ORDO_E_INVAL,
                                "line %zu: '%s' must be an array of strings",
                                line, what);
  k = json_array_size(v);
  for (i = 0; i < k; i++)
    if (!json_is_string(json_array_get(v, i)))
      return ordo__set_last_error(ORDO_E_INVAL,
                                  "line %zu: '%s' must be an array of strings",
                                  line, what);
  if (k == 0)
    return ORDO_OK;
  if ((p = realloc(*list, (*n + k) * sizeof(*p))) == NULL)
    return ordo__set_last_error(ORDO_E_NOMEM, "line %zu: out of memory", line);
  *list = p;
  for (i = 0; i < k; i++) {
    if ((p[*n] = ordo__strdup(json_string_value(json_array_get(v, i)))) == NULL)
      return ordo__set_last_error(ORDO_E_NOMEM, "line %zu: out of memory",
                                  line);
    (*n)++;
  }
  return ORDO_OK;
}

/* "txns": an array of objects whose "reads" and "writes" are the batch's
 * too (a batch locks what any of its transactions touches). */
static int add_txns(json_t *v, size_t line, ordo_workload_batch *b) {
  const char *tk;
  json_t *t, *tv;
  size_t i;
  int rc;

  if (!json_is_array(v))
    goto not_objects;
  json_array_foreach(v, i, t) {
    if (!json_is_object(t))
      goto not_objects;
    json_object_foreach(t, tk, tv) {
      if (strcmp(tk, "reads") == 0)
        rc = add_strings(tv, "txns[].reads", line, &b->reads, &b->nreads);
      else if (strcmp(tk, "writes") == 0)
        rc = add_strings(tv, "txns[].writes", line, &b->writes, &b->nwrites);
      else
        rc = ordo__set_last_error(ORDO_E_INVAL,
                                  "line %zu: unknown key '%s' in a txn", line,
                                  tk);
      if (rc)
        return rc;
    }
  }
  return ORDO_OK;
not_objects:
  return ordo__set_last_error(ORDO_E_INVAL,
                              "line %zu: 'txns' must be an array of objects",
                              line);
}

/* One line's object into b; ids maps id -> line of the batches before. */
static int parse_batch(json_t *o, size_t line, json_t *ids,
                       ordo_workload_batch *b) {
  const char *key;
  json_t *v, *first;
  int rc;

  b->line = line;
  json_object_foreach(o, key, v) {
    if (strcmp(key, "id") == 0 || strcmp(key, "service") == 0) {
      if (!json_is_string(v) || json_string_length(v) == 0)
        return ordo__set_last_error(ORDO_E_INVAL,
                                    "line %zu: '%s' must be a non-empty string",
                                    line, key);
    } else if (strcmp(key, "reads") == 0) {
      if ((rc = add_strings(v, key, line, &b->reads, &b->nreads)))
        return rc;
    } else if (strcmp(key, "writes") == 0) {
      if ((rc = add_strings(v, key, line, &b->writes, &b->nwrites)))
        return rc;
    } else if (strcmp(key, "deps") == 0) {
      if ((rc = add_strings(v, key, line, &b->deps, &b->ndeps)))
        return rc;
    } else if (strcmp(key, "txns") == 0) {
      if ((rc = add_txns(v, line, b)))
        return rc;
    } else if (strcmp(key, "outcome") == 0) {
      const char *s = json_string_value(v);
      if (s == NULL ||
          (strcmp(s, "invalid") != 0 && strcmp(s, "committed") != 0))
        return ordo__set_last_error(ORDO_E_INVAL,
                                    "line %zu: 'outcome' must be \"invalid\" "
                                    "or \"committed\"", line);
      b->invalid = strcmp(s, "invalid") == 0;
    } else {
      return ordo__set_last_error(ORDO_E_INVAL, "line %zu: unknown key '%s'",
                                  line, key);
    }
  }
  if ((v = json_object_get(o, "id")) == NULL)
    return ordo__set_last_error(ORDO_E_INVAL, "line %zu: missing 'id'", line);
  if (json_object_get(o, "service") == NULL)
    return ordo__set_last_error(ORDO_E_INVAL, "line %zu: missing 'service'",
                                line);
  if ((b->id = ordo__strdup(json_string_value(v))) == NULL ||
      (b->service = ordo__strdup(json_string_value(json_object_get(o, "service")))) ==
          NULL)
    return ordo__set_last_error(ORDO_E_NOMEM, "line %zu: out of memory", line);
  if ((first = json_object_get(ids, b->id)) != NULL)
    return ordo__set_last_error(ORDO_E_INVAL,
                                "line %zu: duplicate id '%s' (first on line "
                                "%lld)", line, b->id,
                                (long long)json_integer_value(first));
  for (size_t i = 0; i < b->ndeps; i++)
    if (json_object_get(ids, b->deps[i]) == NULL)
      return ordo__set_last_error(ORDO_E_INVAL,
                                  "line %zu: dep '%s' does not name a batch "
                                  "on an earlier line", line, b->deps[i]);
  if (json_object_set_new(ids, b->id, json_integer((json_int_t)line)))
    return ordo__set_last_error(ORDO_E_NOMEM, "line %zu: out of memory", line);
  return ORDO_OK;
}

int ordo_workload_parse(const char *text, size_t len, ordo_workload **out) {
  ordo_workload *w;
  json_t *ids;
  size_t pos = 0, line = 0, cap = 0;
  int rc = ORDO_OK;

  if (out == NULL || (text == NULL && len > 0))
    return ordo__set_last_error(ORDO_E_INVAL, "workload: NULL argument");
  *out = NULL;
  if ((w = calloc(1, sizeof(*w))) == NULL || (ids = json_object()) == NULL) {
    free(w);
    return ordo__set_last_error(ORDO_E_NOMEM, NULL);
  }
  while (pos < len && rc == ORDO_OK) {
    const char *start = text + pos, *nl = memchr(start, '\n', len - pos);
    size_t n = nl != NULL ? (size_t)(nl - start) : len - pos, i;
    json_error_t jerr;
    json_t *o;

    pos += n + (nl != NULL);
    line++;
    for (i = 0; i < n && (start[i] == ' ' || start[i] == '\t' ||
                          start[i] == '\r');
         i++)
      ;
    if (i == n)
      continue; /* blank */
    o = json_loadb(start, n, JSON_REJECT_DUPLICATES, &jerr);
    if (o == NULL) {
      rc = ordo__set_last_error(ORDO_E_JSON, "line %zu: malformed JSON: %s",
                                line, jerr.text);
      break;
    }
    if (!json_is_object(o)) {
      json_decref(o);
      rc = ordo__set_last_error(ORDO_E_INVAL,
                                "line %zu: a batch must be a JSON object", line);
      break;
    }
    if (w->nbatches == cap) {
      size_t ncap = cap ? cap * 2 : 16;
      ordo_workload_batch *p = realloc(w->batches, ncap * sizeof(*p));
      if (p == NULL) {
        json_decref(o);
        rc = ordo__set_last_error(ORDO_E_NOMEM, NULL);
        break;
      }
      w->batches = p;
      cap = ncap;
    }
    memset(&w->batches[w->nbatches], 0, sizeof(w->batches[0]));
    rc = parse_batch(o, line, ids, &w->batches[w->nbatches]);
    w->nbatches++; /* freed with w even when half-filled */
    json_decref(o);
  }
  json_decref(ids);
  if (rc != ORDO_OK) {
    ordo_workload_free(w);
    return rc;
  }
  *out = w;
  return ORDO_OK;
}

static int read_file(const char *path, char **text, size_t *len) {
  FILE *f = fopen(path, "rb");
  char *buf = NULL, *p;
  size_t cap = 0, n = 0, got;

  if (f == NULL)
    return ordo__set_last_error(ORDO_E_IO, "%s: %s", path, strerror(errno));
  for (;;) {
    if (n == cap) {
      cap = cap ? cap * 2 : 65536;
      if ((p = realloc(buf, cap)) == NULL) {
        free(buf);
        fclose(f);
        return ordo__set_last_error(ORDO_E_NOMEM, NULL);
      }
      buf = p;
    }
    got = fread(buf + n, 1, cap - n, f);
    n += got;
    if (got == 0)
      break;
  }
  if (ferror(f)) {
    free(buf);
    fclose(f);
    return ordo__set_last_error(ORDO_E_IO, "%s: read error", path);
  }
  fclose(f);
  *text = buf;
  *len = n;
  return ORDO_OK;
}

int ordo_workload_load(const char *path, ordo_workload **out) {
  char *text = NULL, msg[400];
  size_t len = 0;
  int rc;
  if (out != NULL)
    *out = NULL;
  if (path == NULL || out == NULL)
    return ordo__set_last_error(ORDO_E_INVAL, "workload: NULL argument");
  if ((rc = read_file(path, &text, &len)) != ORDO_OK)
    return rc;
  rc = ordo_workload_parse(text, len, out);
  free(text);
  if (rc != ORDO_OK) {
    snprintf(msg, sizeof msg, "%s", ordo_last_error_message());
    ordo__set_last_error(rc, "%s: %s", path, msg);
  }
  return rc;
}

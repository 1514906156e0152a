/*
 * workload.c — the workload file (JSON Lines, DESIGN.md "Workload file").
 *
 * Strict on purpose: a wrong type, an unknown key or a dep that names no
 * earlier line is an error naming the line, because a silently ignored field
 * would change the plan without anyone noticing.
 */
#include "base/base.h"
#include "queue/queue.h"
#include "queue/batch_json.h"
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

/* Append copies of v[0..k) to *list. */
static int add_strings(const char *const *v, size_t k, size_t line,
                       char ***list, size_t *n) {
  char **p;
  if (k == 0)
    return ORDO_OK;
  if ((p = realloc(*list, (*n + k) * sizeof(*p))) == NULL)
    return ordo__set_last_error(ORDO_E_NOMEM, "line %zu: out of memory", line);
  *list = p;
  for (size_t i = 0; i < k; i++) {
    if ((p[*n] = ordo__strdup(v[i])) == NULL)
      return ordo__set_last_error(ORDO_E_NOMEM, "line %zu: out of memory",
                                  line);
    (*n)++;
  }
  return ORDO_OK;
}

/* A batch_json refusal (rc, why) as this file says it: on its line. */
static int line_error(int rc, size_t line, const char *why) {
  if (rc == ORDO_E_NOMEM)
    return ordo__set_last_error(rc, "line %zu: out of memory", line);
  return ordo__set_last_error(rc, "line %zu: %s", line, why);
}

/* "txns": an array of objects whose "reads" and "writes" are the batch's
 * too (a batch locks what any of its transactions touches). */
static int add_txns(json_t *v, size_t line, ordo_workload_batch *b) {
  static const char *const known[] = {"reads", "writes"};
  const char *key;
  json_t *t;
  size_t i;
  char why[300];
  int rc = ORDO_OK;

  if (!json_is_array(v))
    goto not_objects;
  json_array_foreach(v, i, t) {
    const char **rd = NULL, **wr = NULL;
    size_t nrd = 0, nwr = 0;
    if (!json_is_object(t))
      goto not_objects;
    if ((key = ordo_batch_json_unknown_key(t, known, 2)) != NULL)
      return ordo__set_last_error(ORDO_E_INVAL,
                                  "line %zu: unknown key '%s' in a txn", line,
                                  key);
    if ((rc = ordo_batch_json_strings(t, "reads", ORDO_BATCH_ADDRESS_MAX, &rd,
                                      &nrd, why, sizeof why)) != ORDO_OK ||
        (rc = ordo_batch_json_strings(t, "writes", ORDO_BATCH_ADDRESS_MAX,
                                      &wr, &nwr, why, sizeof why)) != ORDO_OK)
      rc = line_error(rc, line, why);
    else if ((rc = add_strings(rd, nrd, line, &b->reads, &b->nreads)) ==
             ORDO_OK)
      rc = add_strings(wr, nwr, line, &b->writes, &b->nwrites);
    free(rd);
    free(wr);
    if (rc != ORDO_OK)
      return rc;
  }
  return ORDO_OK;
not_objects:
  return ordo__set_last_error(ORDO_E_INVAL,
                              "line %zu: 'txns' must be an array of objects",
                              line);
}

/* One line's object into b; ids maps id -> line of the batches before.
 * The shared fields follow queue/batch_json.h's rules, as a batch posted
 * to the server does; "txns" and "outcome" are the workload's own. */
static int parse_batch(json_t *o, size_t line, json_t *ids,
                       ordo_workload_batch *b) {
  static const char *const extra[] = {"txns", "outcome"};
  ordo_batch_json bj;
  json_t *first;
  char why[300];
  int rc;

  b->line = line;
  if ((rc = ordo_batch_json_parse(o, extra, 2, NULL, &bj, why, sizeof why)) !=
      ORDO_OK)
    return line_error(rc, line, why);
  if ((rc = add_strings(bj.reads, bj.nreads, line, &b->reads, &b->nreads)) ||
      (rc = add_strings(bj.writes, bj.nwrites, line, &b->writes,
                        &b->nwrites)) ||
      (rc = add_strings(bj.deps, bj.ndeps, line, &b->deps, &b->ndeps)))
    goto out;
  if (bj.extra[0] != NULL && (rc = add_txns(bj.extra[0], line, b)))
    goto out;
  if (bj.extra[1] != NULL) {
    const char *s = json_string_value(bj.extra[1]);
    if (s == NULL ||
        (strcmp(s, "invalid") != 0 && strcmp(s, "committed") != 0)) {
      rc = ordo__set_last_error(ORDO_E_INVAL,
                                "line %zu: 'outcome' must be \"invalid\" "
                                "or \"committed\"", line);
      goto out;
    }
    b->invalid = strcmp(s, "invalid") == 0;
  }
  if ((b->id = ordo__strdup(bj.id)) == NULL ||
      (b->service = ordo__strdup(bj.service)) == NULL) {
    rc = ordo__set_last_error(ORDO_E_NOMEM, "line %zu: out of memory", line);
    goto out;
  }
  if ((first = json_object_get(ids, b->id)) != NULL) {
    rc = ordo__set_last_error(ORDO_E_INVAL,
                              "line %zu: duplicate id '%s' (first on line "
                              "%lld)", line, b->id,
                              (long long)json_integer_value(first));
    goto out;
  }
  for (size_t i = 0; i < b->ndeps; i++)
    if (json_object_get(ids, b->deps[i]) == NULL) {
      rc = ordo__set_last_error(ORDO_E_INVAL,
                                "line %zu: dep '%s' does not name a batch "
                                "on an earlier line", line, b->deps[i]);
      goto out;
    }
  if (json_object_set_new(ids, b->id, json_integer((json_int_t)line)))
    rc = ordo__set_last_error(ORDO_E_NOMEM, "line %zu: out of memory", line);
out:
  ordo_batch_json_clear(&bj);
  return rc;
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
  int rc;

  if (f == NULL)
    return ordo__set_last_error(ORDO_E_IO, "%s: %s", path, strerror(errno));
  rc = ordo__read_stream(f, 0, text, len);
  fclose(f);
  if (rc == ORDO_E_NOMEM)
    return ordo__set_last_error(ORDO_E_NOMEM, NULL);
  if (rc != ORDO_OK)
    return ordo__set_last_error(ORDO_E_IO, "%s: read error", path);
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

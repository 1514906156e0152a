/*
 * json_array.h — a jansson array of strings from a C array: what the
 * journal's records and the cluster's inbox rows both write for a batch's
 * reads, writes and deps. Header-only; the caller links jansson.
 */
#ifndef ORDO_BASE_JSON_ARRAY_H
#define ORDO_BASE_JSON_ARRAY_H

#include <jansson.h>
#include <stddef.h>

/* A new array of v[0..n) (NULL when out of memory, or a string is not
 * UTF-8: jansson refuses it). */
static inline json_t *ordo__json_str_array(const char *const *v, size_t n) {
  json_t *a = json_array();
  for (size_t i = 0; a != NULL && i < n; i++)
    if (json_array_append_new(a, json_string(v[i])) != 0) {
      json_decref(a);
      return NULL;
    }
  return a;
}

#endif /* ORDO_BASE_JSON_ARRAY_H */

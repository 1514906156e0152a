/*
 * base.c — base.h's functions.
 */
#include "base/base.h"

#include "ordo.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

char *ordo__strdup(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = malloc(n);
  if (d != NULL)
    memcpy(d, s, n);
  return d;
}

void ordo__free_each(void *const *ptrs, size_t n) {
  for (size_t i = 0; i < n; i++)
    free(ptrs[i]);
}

void ordo__free_strv(char **v, size_t n) {
  for (size_t i = 0; i < n; i++)
    free(v[i]);
  free(v);
}

void ordo__free_secret(char *s) {
  if (s != NULL)
    ordo__free_wiped(s, strlen(s));
}

void ordo__free_wiped(void *p, size_t len) {
  if (p == NULL)
    return;
  sodium_memzero(p, len);
  free(p);
}

void *ordo__grow(void *buf, size_t *cap, size_t need, size_t first) {
  size_t ncap = *cap > 0 ? *cap : first;
  void *p;
  while (ncap < need)
    ncap *= 2;
  if ((p = realloc(buf, ncap)) != NULL)
    *cap = ncap;
  return p;
}

int ordo__read_stream(FILE *f, size_t max, char **out, size_t *len) {
  char *buf = NULL, *p;
  size_t cap = 0, n = 0, got;

  *out = NULL;
  *len = 0;
  do {
    if (cap - n < 2) { /* room to read into, and for the NUL */
      if ((p = ordo__grow(buf, &cap, n + 2, 4096)) == NULL) {
        free(buf);
        return ORDO_E_NOMEM;
      }
      buf = p;
    }
    got = fread(buf + n, 1, cap - n - 1, f);
    n += got;
    if (max > 0 && n > max) {
      free(buf);
      return ORDO_E_INVAL;
    }
  } while (got > 0);
  if (ferror(f)) {
    free(buf);
    return ORDO_E_IO;
  }
  buf[n] = '\0';
  *out = buf;
  *len = n;
  return ORDO_OK;
}

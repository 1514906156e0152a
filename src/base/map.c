/*
 * map.c — the parts of the string map (map.h) that change the table's
 * size; the lookups are static inline in map.h.
 */
#include "base/map.h"
#include "ordo.h"

#include <stdlib.h>

static void *table_calloc(const ordo__map *m, size_t n) {
  return m->table != NULL ? m->table->alloc(n) : calloc(1, n > 0 ? n : 1);
}

static void table_free(const ordo__map *m, void *t, size_t n) {
  if (m->table != NULL)
    m->table->release(t, n);
  else
    free(t);
}

/* Move the entries of m into ne (ncap slots, zeroed), by their hashes. */
static void table_rehash(const ordo__map *m, ordo__map_entry *ne,
                         size_t ncap) {
  for (size_t i = 0; i < m->cap; i++)
    if (m->e[i].val != NULL) {
      size_t j = m->e[i].hash & (ncap - 1);
      while (ne[j].val != NULL)
        j = (j + 1) & (ncap - 1);
      ne[j] = m->e[i];
    }
}

/* Replace m's table by one of ncap slots; ORDO_E_NOMEM keeps the old. */
static int table_resize(ordo__map *m, size_t ncap) {
  ordo__map_entry *ne = table_calloc(m, ncap * sizeof(*ne));
  if (ne == NULL)
    return ORDO_E_NOMEM;
  table_rehash(m, ne, ncap);
  table_free(m, m->e, m->cap * sizeof(*m->e));
  m->e = ne;
  m->cap = ncap;
  return ORDO_OK;
}

int ordo__map_reserve(ordo__map *m, size_t extra) {
  size_t ncap;
  if ((m->n + extra) * 2 <= m->cap)
    return ORDO_OK;
  ncap = m->cap ? m->cap : 16;
  while ((m->n + extra) * 2 > ncap)
    ncap *= 2;
  return table_resize(m, ncap);
}

void ordo__map_shrink(ordo__map *m) {
  size_t ncap = m->cap;
  if (m->cap <= 64 || m->n * 8 >= m->cap)
    return;
  while (ncap > 64 && m->n * 4 <= ncap / 2)
    ncap /= 2;
  (void)table_resize(m, ncap);
}

void ordo__map_free(ordo__map *m) {
  table_free(m, m->e, m->cap * sizeof(*m->e));
  m->e = NULL;
  m->cap = m->n = 0;
}

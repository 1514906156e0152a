/*
 * map.h — an open-addressing hash map from a string key to a pointer, for
 * the hot lookups of libordo (the queue's batches by id, services by name,
 * ledger ids). Internal (ordo__ names); not thread-safe: one owner at a time.
 *
 * Keys live in the values: a value's first member is a char * to its key
 * (ordo__map_key), so that an entry is 16 bytes, its hash and the value,
 * and a probe compares keys only where the hashes match; a miss visits no
 * value's memory. The caller computes a key's hash (ordo__hash_str) and
 * passes it, so that a hash computed once serves a prefetch, a lookup and
 * an insert.
 *
 * Ownership: the map owns its table only. It never copies, frees or
 * outlives-checks keys or values: a value (and the key it points to) must
 * stay valid, and its key unchanged, while it is in the map. ordo__map_free
 * gives back the table, not what it points to.
 *
 * Layout: linear probing at load <= 1/2, deletion by backward shift (no
 * tombstones). A caller whose values have another key rule (the queue's
 * lock-table index: nodes with an unterminated key) may find slots itself
 * in e[0..cap) and use ordo__map_set, ordo__map_del, ordo__map_reserve and
 * ordo__map_shrink, which read only the hashes. Iteration: every entry of
 * e[0..cap) whose val is not NULL, in no order; the map must not change
 * during it.
 *
 * A zeroed ordo__map is an empty map whose table comes from calloc; set
 * table before the first insert to place tables elsewhere (the queue maps
 * tables of 2 MiB and more on huge pages).
 */
#ifndef ORDO_BASE_MAP_H
#define ORDO_BASE_MAP_H

#include "base/hash.h"

#include <stddef.h>
#include <string.h>

/* A hint to start loading p's cache line: the scheduler's time at 100k
 * queued batches is cache misses, and a batch's few independent ones (its
 * id's slot, one index slot per address) can overlap. */
#if defined(__GNUC__) || defined(__clang__)
#define ORDO__PREFETCH(p) __builtin_prefetch(p)
#else
#define ORDO__PREFETCH(p) ((void)(p))
#endif

typedef struct ordo__map_entry {
  size_t hash;
  void *val; /* NULL: an empty slot */
} ordo__map_entry;

/* Where a map's table lives: alloc gives a zeroed block of n bytes (NULL
 * when out of memory), release takes it back with the same n. */
typedef struct ordo__map_table {
  void *(*alloc)(size_t n);
  void (*release)(void *t, size_t n);
} ordo__map_table;

/* Small on purpose (40 bytes): the queue keeps one in each service, beside
 * the fields a finish reads. */
typedef struct ordo__map {
  ordo__map_entry *e; /* cap entries (cap a power of two, or 0) */
  size_t cap, n;
  size_t key_at; /* the key's usual offset in a value, or 0: a hint, for a
                    prefetch of the key beside the value's first line */
  const ordo__map_table *table; /* NULL: calloc and free; the map does not
                                   own it */
} ordo__map;

/* The key of a value: the string its first member points to. */
static inline const char *ordo__map_key(const void *val) {
  return *(const char *const *)val;
}

/* The slot of key (hash h): its entry, or the empty one where it would go.
 * Only an entry whose hash matches is compared. cap > 0. */
static inline ordo__map_entry *ordo__map_slot(const ordo__map *m,
                                              const char *key, size_t h) {
  size_t i = h & (m->cap - 1);
  for (;; i = (i + 1) & (m->cap - 1)) {
    const void *v = m->e[i].val;
    if (v == NULL)
      break;
    if (m->e[i].hash != h)
      continue;
    /* Where the key usually is, loading beside the value's first line
     * (which holds the pointer to it) instead of after it. */
    if (m->key_at != 0)
      ORDO__PREFETCH((const char *)v + m->key_at);
    if (strcmp(ordo__map_key(v), key) == 0)
      break;
  }
  return &m->e[i];
}

/* Start loading the slot where a probe for hash h begins. */
static inline void ordo__map_prefetch(const ordo__map *m, size_t h) {
  if (m->cap > 0)
    ORDO__PREFETCH(&m->e[h & (m->cap - 1)]);
}

/* The value of key (hash h), or NULL. */
static inline void *ordo__map_get_h(const ordo__map *m, const char *key,
                                    size_t h) {
  return m->cap > 0 ? ordo__map_slot(m, key, h)->val : NULL;
}

static inline void *ordo__map_get(const ordo__map *m, const char *key) {
  return ordo__map_get_h(m, key, ordo__hash_str(key));
}

/* Fill slot e (empty, or the one of val's key) with val, whose key hashes
 * to h. */
static inline void ordo__map_set(ordo__map *m, ordo__map_entry *e, size_t h,
                                 void *val) {
  if (e->val == NULL)
    m->n++;
  e->hash = h;
  e->val = val;
}

/* Put val (whose key hashes to h) in, replacing the value of an equal key;
 * room reserved (ordo__map_reserve). */
static inline void ordo__map_put(ordo__map *m, size_t h, void *val) {
  ordo__map_set(m, ordo__map_slot(m, ordo__map_key(val), h), h, val);
}

/* Remove the entry e of m: the entries after it in its run move back where
 * a probe would stop short of them. */
static inline void ordo__map_del(ordo__map *m, ordo__map_entry *e) {
  size_t mask = m->cap - 1, i = (size_t)(e - m->e), j = i;
  for (;;) {
    size_t home;
    j = (j + 1) & mask;
    if (m->e[j].val == NULL)
      break;
    home = m->e[j].hash & mask;
    /* The entry at j may fill the hole at i unless its home lies
     * cyclically in (i, j]. */
    if (i <= j ? (home <= i || home > j) : (home <= i && home > j)) {
      m->e[i] = m->e[j];
      i = j;
    }
  }
  m->e[i].val = NULL;
  m->e[i].hash = 0;
  m->n--;
}

/* Room for `extra` more keys at load <= 1/2, so that the inserts after it
 * cannot fail. 0, or ORDO_E_NOMEM with the map as it was. */
int ordo__map_reserve(ordo__map *m, size_t extra);

/* Halve a mostly empty table (under 1/8 full) down to load <= 1/4, so that
 * a map that held a million keys once does not keep their slots. Out of
 * memory keeps the table as it is. */
void ordo__map_shrink(ordo__map *m);

/* Give the table back (not the keys or values); the map is empty after,
 * its allocator kept. */
void ordo__map_free(ordo__map *m);

/* The bytes of the table. */
static inline size_t ordo__map_bytes(const ordo__map *m) {
  return m->cap * sizeof(ordo__map_entry);
}

#endif

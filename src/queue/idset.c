/*
 * idset.c — the set of hashed strings (idset.h). Open addressing with
 * linear probing over 8-byte slots; deletion moves the rest of a run back
 * (no tombstones), so a set that churns for months keeps short probes.
 */
#include "queue/idset.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define IDSET_FLAGS 3ull

static uint64_t idset_hash(const ordo__idset *s, const char *str) {
  unsigned char out[crypto_shorthash_BYTES];
  uint64_t h;
  crypto_shorthash(out, (const unsigned char *)str, strlen(str), s->key);
  memcpy(&h, out, sizeof h);
  h &= ~IDSET_FLAGS;
  return h != 0 ? h : 4; /* 0 marks an empty slot */
}

void ordo__idset_init(ordo__idset *s) {
  memset(s, 0, sizeof(*s));
  randombytes_buf(s->key, sizeof s->key);
}

/* The slot holding key h, or the empty one where it would go. */
static size_t idset_slot(const ordo__idset *s, uint64_t h) {
  size_t i = (size_t)(h >> 2) & (s->cap - 1);
  while (s->slots[i] != 0 && (s->slots[i] & ~IDSET_FLAGS) != h)
    i = (i + 1) & (s->cap - 1);
  return i;
}

static int idset_grow(ordo__idset *s) {
  size_t ncap = s->cap ? s->cap * 2 : 64, i;
  uint64_t *ns = calloc(ncap, sizeof(*ns));
  if (ns == NULL)
    return -1;
  for (i = 0; i < s->cap; i++)
    if (s->slots[i] != 0) {
      size_t k = (size_t)(s->slots[i] >> 2) & (ncap - 1);
      while (ns[k] != 0)
        k = (k + 1) & (ncap - 1);
      ns[k] = s->slots[i];
    }
  free(s->slots);
  s->slots = ns;
  s->cap = ncap;
  return 0;
}

int ordo__idset_put(ordo__idset *s, const char *str, unsigned flags) {
  uint64_t h = idset_hash(s, str);
  size_t i;
  /* At most 3/4 full: a miss (a new id, the usual question) reads a run
   * of ~8 slots on average, one or two cache lines. */
  if ((s->n + 1) * 4 > s->cap * 3 && idset_grow(s) != 0)
    return -1;
  i = idset_slot(s, h);
  if (s->slots[i] == 0)
    s->n++;
  s->slots[i] = h | (flags & IDSET_FLAGS);
  return 0;
}

int ordo__idset_get(const ordo__idset *s, const char *str) {
  size_t i;
  if (s->n == 0)
    return -1;
  i = idset_slot(s, idset_hash(s, str));
  return s->slots[i] != 0 ? (int)(s->slots[i] & IDSET_FLAGS) : -1;
}

int ordo__idset_del(ordo__idset *s, const char *str) {
  size_t mask, i, j;
  if (s->n == 0)
    return 0;
  mask = s->cap - 1;
  i = idset_slot(s, idset_hash(s, str));
  if (s->slots[i] == 0)
    return 0;
  for (j = i;;) {
    size_t home;
    j = (j + 1) & mask;
    if (s->slots[j] == 0)
      break;
    home = (size_t)(s->slots[j] >> 2) & mask;
    /* The slot at j may fill the hole at i unless its home lies
     * cyclically in (i, j]. */
    if (i <= j ? (home <= i || home > j) : (home <= i && home > j)) {
      s->slots[i] = s->slots[j];
      i = j;
    }
  }
  s->slots[i] = 0;
  s->n--;
  return 1;
}

void ordo__idset_clear(ordo__idset *s) {
  free(s->slots);
  s->slots = NULL;
  s->cap = s->n = 0;
}

size_t ordo__idset_bytes(const ordo__idset *s) {
  return s->cap * sizeof(*s->slots);
}

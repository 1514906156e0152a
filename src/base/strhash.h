/*
 * strhash.h — the string hash of the hash tables keyed by a C string (the
 * node's pending batches, the server's rate-limit buckets): 64-bit FNV-1a.
 * Fast on short keys and good enough for open addressing and chaining with
 * a power-of-two table; not for keys an attacker picks to collide where
 * that would hurt more than one bucket's probes. Header-only.
 */
#ifndef ORDO_BASE_STRHASH_H
#define ORDO_BASE_STRHASH_H

#include <stddef.h>
#include <stdint.h>

static inline size_t ordo__strhash(const char *s) {
  uint64_t h = 1469598103934665603ULL;
  for (; *s != '\0'; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211ULL;
  return (size_t)h;
}

#endif /* ORDO_BASE_STRHASH_H */

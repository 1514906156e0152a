/*
 * hash.h — the in-memory string hash of ordo's hash tables (base/map.h, the
 * queue's lock-table index). Internal to libordo (ordo__ names); no state.
 *
 * Not a cryptographic hash and not stable across versions: nothing may
 * write it to disk or send it (queue/idset.c, whose hashes are journaled,
 * uses a keyed SipHash of its own). The tables it indexes only probe
 * longer when keys collide.
 *
 * Why static inline: it is on the scheduler's hot path, once per id and
 * per address of every batch, where a call was measurable.
 */
#ifndef ORDO_BASE_HASH_H
#define ORDO_BASE_HASH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline uint64_t ordo__hash_load8(const char *p) {
  uint64_t w;
  memcpy(&w, p, 8);
  return w;
}

/*
 * A word-at-a-time hash of p[0..n) in two independent lanes (addresses are
 * 70 bytes: a byte-wise FNV was a tenth of the scheduler's time, and one
 * lane's multiply chain still a sixteenth). The tail is the last 8 bytes
 * read again, overlapping, so that every load has a fixed size and no
 * memcpy call is made.
 */
static inline size_t ordo__hash_bytes(const char *p, size_t n) {
  uint64_t a = 0x9e3779b97f4a7c15ull ^ n, b = 0xc2b2ae3d27d4eb4full, w = 0;
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    a = (a ^ ordo__hash_load8(p + i)) * 0xff51afd7ed558ccdull;
    b = (b ^ ordo__hash_load8(p + i + 8)) * 0xc4ceb9fe1a85ec53ull;
    a ^= a >> 32;
    b ^= b >> 29;
  }
  if (n >= 8) {
    if (i + 8 < n) {
      a = (a ^ ordo__hash_load8(p + i)) * 0xff51afd7ed558ccdull;
      a ^= a >> 32;
    }
    if (i < n)
      b = (b ^ ordo__hash_load8(p + n - 8)) * 0xc4ceb9fe1a85ec53ull;
  } else {
    for (; i < n; i++)
      w = (w << 8) | (unsigned char)p[i];
    b = (b ^ w) * 0xc4ceb9fe1a85ec53ull;
  }
  a ^= b * 0x9e3779b97f4a7c15ull;
  a ^= a >> 29;
  a *= 0xbf58476d1ce4e5b9ull;
  a ^= a >> 32;
  return (size_t)a;
}

/* The hash of a NUL-terminated string (its bytes, not the NUL). */
static inline size_t ordo__hash_str(const char *s) {
  return ordo__hash_bytes(s, strlen(s));
}

#endif

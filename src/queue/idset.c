/*
 * idset.c — the set of hashed strings (idset.h). Open addressing with
 * linear probing over 8-byte slots; deletion moves the rest of a run back
 * (no tombstones), so a set that churns for months keeps short probes.
 */
#include "queue/idset.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* Tables from 2 MiB on are mappings of their own: a set of a million
 * members doubles through 16 MiB, and a freed table inside malloc's heap
 * would stay in the process's memory. */
#define IDSET_MAP_BYTES (2u << 20)

static uint64_t *table_alloc(size_t cap) {
  void *p;
  if (cap * sizeof(uint64_t) < IDSET_MAP_BYTES)
    return calloc(cap, sizeof(uint64_t));
  p = mmap(NULL, cap * sizeof(uint64_t), PROT_READ | PROT_WRITE,
           MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? NULL : p; /* zero-filled */
}

static void table_free(uint64_t *t, size_t cap) {
  if (t == NULL)
    return;
  if (cap * sizeof(uint64_t) < IDSET_MAP_BYTES)
    free(t);
  else
    munmap(t, cap * sizeof(uint64_t));
}

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
  uint64_t *ns = table_alloc(ncap);
  if (ns == NULL)
    return -1;
  for (i = 0; i < s->cap; i++)
    if (s->slots[i] != 0) {
      size_t k = (size_t)(s->slots[i] >> 2) & (ncap - 1);
      while (ns[k] != 0)
        k = (k + 1) & (ncap - 1);
      ns[k] = s->slots[i];
    }
  table_free(s->slots, s->cap);
  s->slots = ns;
  s->cap = ncap;
  return 0;
}

/* Add (or re-flag) key h. */
static int idset_put_key(ordo__idset *s, uint64_t h, unsigned flags) {
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

int ordo__idset_put(ordo__idset *s, const char *str, unsigned flags) {
  return idset_put_key(s, idset_hash(s, str), flags);
}

int ordo__idset_get(const ordo__idset *s, const char *str) {
  size_t i;
  if (s->n == 0)
    return -1;
  i = idset_slot(s, idset_hash(s, str));
  return s->slots[i] != 0 ? (int)(s->slots[i] & IDSET_FLAGS) : -1;
}

static int idset_del_key(ordo__idset *s, uint64_t h) {
  size_t mask, i, j;
  if (s->n == 0)
    return 0;
  mask = s->cap - 1;
  i = idset_slot(s, h);
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

int ordo__idset_del(ordo__idset *s, const char *str) {
  return idset_del_key(s, idset_hash(s, str));
}

void ordo__idset_clear(ordo__idset *s) {
  table_free(s->slots, s->cap);
  s->slots = NULL;
  s->cap = s->n = 0;
}

size_t ordo__idset_bytes(const ordo__idset *s) {
  return s->cap * sizeof(*s->slots);
}

int ordo__idlog_append(ordo__idlog *log, const uint64_t *ops, size_t n) {
  if (n > log->cap - log->n) {
    size_t nc = log->cap ? log->cap : 256;
    uint64_t *v;
    while (nc - log->n < n)
      nc *= 2;
    if ((v = realloc(log->v, nc * sizeof(*v))) == NULL)
      return -1;
    log->v = v;
    log->cap = nc;
  }
  if (n > 0)
    memcpy(log->v + log->n, ops, n * sizeof(*ops));
  log->n += n;
  return 0;
}

int ordo__idset_put_logged(ordo__idset *s, ordo__idlog *log, const char *str,
                           unsigned flags) {
  uint64_t op = idset_hash(s, str) | (flags & 1u);
  /* Room in both first, so that a failure changes neither. */
  if (ordo__idlog_append(log, &op, 1) != 0)
    return -1;
  if (idset_put_key(s, op & ~IDSET_FLAGS, flags & 1u) != 0) {
    log->n--;
    return -1;
  }
  return 0;
}

int ordo__idset_del_logged(ordo__idset *s, ordo__idlog *log, const char *str) {
  uint64_t op = idset_hash(s, str) | ORDO__IDLOG_DEL;
  if (ordo__idlog_append(log, &op, 1) != 0)
    return -1;
  if (!idset_del_key(s, op & ~IDSET_FLAGS)) {
    log->n--; /* not there: nothing to write down */
    return 0;
  }
  return 1;
}

int ordo__idset_apply(ordo__idset *s, const uint64_t *ops, size_t n) {
  for (size_t i = 0; i < n; i++) {
    uint64_t h = ops[i] & ~IDSET_FLAGS;
    if (h == 0)
      continue; /* no member has key 0 */
    if (ops[i] & ORDO__IDLOG_DEL)
      (void)idset_del_key(s, h);
    else if (idset_put_key(s, h, (unsigned)(ops[i] & 1u)) != 0)
      return -1;
  }
  return 0;
}

void ordo__idset_members(const ordo__idset *s, uint64_t *out) {
  size_t k = 0;
  for (size_t i = 0; i < s->cap; i++)
    if (s->slots[i] != 0)
      out[k++] = s->slots[i] & ~ORDO__IDLOG_DEL;
}

void ordo__idlog_clear(ordo__idlog *log) {
  free(log->v);
  memset(log, 0, sizeof(*log));
}

#define IDSEG_HEADER 16

static void le32(unsigned char *p, uint32_t v) {
  for (int i = 0; i < 4; i++)
    p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t rdle32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
         (uint32_t)p[3] << 24;
}

static void le64s(unsigned char *p, const uint64_t *v, size_t n) {
  for (size_t k = 0; k < n; k++, p += 8)
    for (int i = 0; i < 8; i++)
      p[i] = (unsigned char)(v[k] >> (8 * i));
}

unsigned char *ordo__idseg_encode(int base, const uint64_t *a, size_t na,
                                  const uint64_t *b, size_t nb, size_t *len) {
  unsigned char *v;
  if (na > UINT32_MAX || nb > UINT32_MAX)
    return NULL;
  *len = IDSEG_HEADER + 8 * (na + nb);
  if ((v = malloc(*len)) == NULL)
    return NULL;
  memcpy(v, "oids", 4);
  v[4] = 1;
  v[5] = base ? 1 : 0;
  v[6] = v[7] = 0;
  le32(v + 8, (uint32_t)na);
  le32(v + 12, (uint32_t)nb);
  le64s(v + IDSEG_HEADER, a, na);
  le64s(v + IDSEG_HEADER + 8 * na, b, nb);
  return v;
}

/* Apply n little-endian ops at p to s, a page at a time. */
static int idseg_apply_ops(ordo__idset *s, const unsigned char *p, size_t n) {
  uint64_t page[512];
  while (n > 0) {
    size_t k = n < 512 ? n : 512;
    for (size_t i = 0; i < k; i++, p += 8) {
      uint64_t v = 0;
      for (int b = 7; b >= 0; b--)
        v = v << 8 | p[b];
      page[i] = v;
    }
    if (ordo__idset_apply(s, page, k) != 0)
      return -2;
    n -= k;
  }
  return 0;
}

int ordo__idseg_apply(const unsigned char *v, size_t len, ordo__idset *a,
                      ordo__idset *b) {
  size_t na, nb;
  if (len < IDSEG_HEADER || memcmp(v, "oids", 4) != 0 || v[4] != 1 ||
      v[5] > 1)
    return -1;
  na = rdle32(v + 8);
  nb = rdle32(v + 12);
  if ((len - IDSEG_HEADER) / 8 != na + nb || (len - IDSEG_HEADER) % 8 != 0)
    return -1;
  if (v[5]) { /* clear keeps the hash keys */
    ordo__idset_clear(a);
    ordo__idset_clear(b);
  }
  if (idseg_apply_ops(a, v + IDSEG_HEADER, na) != 0 ||
      idseg_apply_ops(b, v + IDSEG_HEADER + 8 * na, nb) != 0)
    return -2;
  return 0;
}

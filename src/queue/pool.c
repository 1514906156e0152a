/*
 * pool.c — the queue's block pool (pool.h says why it exists).
 *
 * Chunks start at 64 KiB, so a small queue (a test, `ordo plan` on a few
 * lines) stays small, and double up to 2 MiB, the x86-64 huge page; those
 * are aligned to 2 MiB and madvised, so that with transparent huge pages
 * in "madvise" mode (Debian's default) the kernel can back them with huge
 * pages. A chunk's header takes its first 64 bytes; blocks follow, carved
 * by a bump pointer and recycled through one free list per size class.
 */
#include "queue/pool.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#if defined(__SANITIZE_ADDRESS__)
#define QPOOL_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define QPOOL_ASAN 1
#endif
#endif

#ifdef QPOOL_ASAN
#include <sanitizer/asan_interface.h>
#define QPOOL_POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define QPOOL_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define QPOOL_POISON(p, n) ((void)(p), (void)(n))
#define QPOOL_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define QPOOL_FIRST_CHUNK (64u * 1024)
#define QPOOL_HUGE (2u * 1024 * 1024)

struct qpool_chunk {
  qpool_chunk *next;
  size_t size;
};

/* The class of a block of n bytes (0 < n <= QPOOL_MAX): its size is
 * (class + 1) * 64. */
static size_t qpool_class(size_t n) { return (n - 1) / QPOOL_ALIGN; }

void ordo__qpool_init(qpool *p) {
  memset(p, 0, sizeof(*p));
  p->next_chunk = QPOOL_FIRST_CHUNK;
}

/* Push a free block of (class + 1) * 64 bytes. */
static void qpool_push(qpool *p, void *block, size_t cls) {
  /* The link is written before the block is poisoned: only the pool reads
   * it, with the block unpoisoned for the moment. */
  *(void **)block = p->free[cls];
  p->free[cls] = block;
  QPOOL_POISON(block, (cls + 1) * QPOOL_ALIGN);
}

/* size bytes aligned to align; NULL when out of memory; qpool_big_free
 * gives it back. From 2 MiB up, a mapping of its own, aligned to 2 MiB
 * and madvised for huge pages (a hint: its failure is fine). Not from
 * malloc: madvised memory that malloc got back would keep the flag, and
 * any small block later made there would fault in a whole huge page (6
 * MiB came back that way after ordo bench memory). */
static void *qpool_big_alloc(size_t size, size_t align) {
  void *mem;
  if (size < QPOOL_HUGE)
    return posix_memalign(&mem, align, size) == 0 ? mem : NULL;
  {
    /* Over-map by 2 MiB and cut the misaligned ends off. */
    size_t len = (size + QPOOL_HUGE - 1) & ~(size_t)(QPOOL_HUGE - 1);
    char *raw = mmap(NULL, len + QPOOL_HUGE, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), *at;
    size_t head;
    if (raw == MAP_FAILED)
      return NULL;
    at = (char *)(((uintptr_t)raw + QPOOL_HUGE - 1) &
                  ~(uintptr_t)(QPOOL_HUGE - 1));
    head = (size_t)(at - raw);
    if (head > 0)
      (void)munmap(raw, head);
    (void)munmap(at + len, QPOOL_HUGE - head);
#ifdef MADV_HUGEPAGE
    (void)madvise(at, len, MADV_HUGEPAGE);
#endif
    return at;
  }
}

/* Give back a block of qpool_big_alloc(size, ...). */
static void qpool_big_free(void *mem, size_t size) {
  if (mem == NULL)
    return;
  if (size < QPOOL_HUGE)
    free(mem);
  else
    (void)munmap(mem, (size + QPOOL_HUGE - 1) & ~(size_t)(QPOOL_HUGE - 1));
}

/* A new chunk, the unused end of the old one kept as a free block. */
static int qpool_grow(qpool *p) {
  size_t size = p->next_chunk;
  qpool_chunk *c;
  void *mem;

  if ((mem = qpool_big_alloc(size, QPOOL_ALIGN)) == NULL)
    return -1;
  /* What is left of the old chunk is less than the block asked for (at
   * most QPOOL_MAX) and a multiple of 64: one free block of its class. */
  if (p->cur != NULL && p->end - p->cur >= QPOOL_ALIGN) {
    size_t left = (size_t)(p->end - p->cur);
    QPOOL_UNPOISON(p->cur, left);
    qpool_push(p, p->cur, qpool_class(left));
  }
  c = mem;
  c->next = p->chunks;
  c->size = size;
  p->chunks = c;
  p->cur = (char *)mem + QPOOL_ALIGN; /* the header's line */
  p->end = (char *)mem + size;
  QPOOL_POISON(p->cur, (size_t)(p->end - p->cur));
  if (p->next_chunk < QPOOL_HUGE)
    p->next_chunk *= 2;
  return 0;
}

void *ordo__qpool_alloc(qpool *p, size_t n) {
  size_t cls, size;
  void *b;

  if (n == 0 || n > QPOOL_MAX)
    return malloc(n > 0 ? n : 1);
  cls = qpool_class(n);
  size = (cls + 1) * QPOOL_ALIGN;
  if ((b = p->free[cls]) != NULL) {
    QPOOL_UNPOISON(b, size);
    p->free[cls] = *(void **)b;
    return b;
  }
  if ((size_t)(p->end - p->cur) < size && qpool_grow(p) != 0)
    return NULL;
  b = p->cur;
  p->cur += size;
  QPOOL_UNPOISON(b, size);
  return b;
}

void ordo__qpool_free(qpool *p, void *block, size_t n) {
  if (block == NULL)
    return;
  if (n == 0 || n > QPOOL_MAX) {
    free(block);
    return;
  }
  qpool_push(p, block, qpool_class(n));
}

/* The chunks by address, and how many bytes of each are free. */
typedef struct trim_ent {
  qpool_chunk *c;
  size_t size; /* the chunk's (read before any chunk is freed) */
  size_t free;
} trim_ent;

static int trim_cmp(const void *a, const void *b) {
  uintptr_t x = (uintptr_t)((const trim_ent *)a)->c,
            y = (uintptr_t)((const trim_ent *)b)->c;
  return x < y ? -1 : x > y;
}

/* The entry of the chunk that holds block, or NULL (a block from malloc
 * cannot be on a free list, but a bug should not become a wild write). */
static trim_ent *trim_find(trim_ent *v, size_t n, const void *block) {
  size_t lo = 0, hi = n;
  uintptr_t a = (uintptr_t)block;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    uintptr_t c = (uintptr_t)v[mid].c;
    if (a < c)
      hi = mid;
    else if (a >= c + v[mid].size)
      lo = mid + 1;
    else
      return &v[mid];
  }
  return NULL;
}

/* A free block's link, read with the block unpoisoned for the moment. */
static void *trim_next(void *block) {
  void *next;
  QPOOL_UNPOISON(block, sizeof(void *));
  next = *(void **)block;
  QPOOL_POISON(block, sizeof(void *));
  return next;
}

static void trim_set_next(void *block, void *next) {
  QPOOL_UNPOISON(block, sizeof(void *));
  *(void **)block = next;
  QPOOL_POISON(block, sizeof(void *));
}

void ordo__qpool_trim(qpool *p) {
  trim_ent *v;
  size_t n = 0, i, cls;
  qpool_chunk *c, **link;

  for (c = p->chunks; c != NULL; c = c->next)
    n++;
  if (n == 0 || (v = malloc(n * sizeof(*v))) == NULL)
    return;
  for (i = 0, c = p->chunks; c != NULL; c = c->next, i++) {
    v[i].c = c;
    v[i].size = c->size;
    v[i].free = 0;
  }
  qsort(v, n, sizeof(*v), trim_cmp);
  for (cls = 0; cls < QPOOL_CLASSES; cls++)
    for (void *b = p->free[cls]; b != NULL; b = trim_next(b)) {
      trim_ent *e = trim_find(v, n, b);
      if (e != NULL)
        e->free += (cls + 1) * QPOOL_ALIGN;
    }
  /* A chunk is empty when its free blocks (and, for the newest, its bump
   * tail) cover all but its header line. */
  for (i = 0; i < n; i++) {
    if (v[i].c == p->chunks)
      v[i].free += (size_t)(p->end - p->cur);
    v[i].free = v[i].free == v[i].size - QPOOL_ALIGN;
  }
  for (cls = 0; cls < QPOOL_CLASSES; cls++) {
    void *prev = NULL, *b = p->free[cls];
    while (b != NULL) {
      void *next = trim_next(b);
      trim_ent *e = trim_find(v, n, b);
      if (e != NULL && e->free) { /* unlinked: its chunk goes */
        if (prev == NULL)
          p->free[cls] = next;
        else
          trim_set_next(prev, next);
      } else {
        prev = b;
      }
      b = next;
    }
  }
  for (link = &p->chunks; (c = *link) != NULL;) {
    trim_ent *e = trim_find(v, n, c);
    if (e != NULL && e->free) {
      if (c == p->chunks)
        p->cur = p->end = NULL; /* the next alloc starts a chunk */
      *link = c->next;
      QPOOL_UNPOISON(c, c->size);
      qpool_big_free(c, e->size);
    } else {
      link = &c->next;
    }
  }
  free(v);
}

size_t ordo__qpool_bytes(const qpool *p) {
  size_t n = 0;
  for (const qpool_chunk *c = p->chunks; c != NULL; c = c->next)
    n += c->size;
  return n;
}

void ordo__qpool_destroy(qpool *p) {
  qpool_chunk *c = p->chunks;
  while (c != NULL) {
    qpool_chunk *next = c->next;
    size_t size = c->size;
    QPOOL_UNPOISON(c, size); /* malloc's (or the kernel's) again from here */
    qpool_big_free(c, size);
    c = next;
  }
  ordo__qpool_init(p);
}

void *ordo__qtable_calloc(size_t n) {
  if (n < QPOOL_HUGE)
    return calloc(1, n > 0 ? n : 1);
  return qpool_big_alloc(n, QPOOL_HUGE); /* a fresh mapping: zeroed */
}

void ordo__qtable_free(void *t, size_t n) { qpool_big_free(t, n); }

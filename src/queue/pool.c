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

void qpool_init(qpool *p) {
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

/* size bytes aligned to align; from 2 MiB up, aligned to 2 MiB and
 * madvised for huge pages (a hint: its failure is fine). NULL when out of
 * memory; free() gives it back. */
static void *qpool_big_alloc(size_t size, size_t align) {
  void *mem;
  if (size >= QPOOL_HUGE)
    align = QPOOL_HUGE;
  if (posix_memalign(&mem, align, size) != 0)
    return NULL;
#ifdef MADV_HUGEPAGE
  if (size >= QPOOL_HUGE)
    (void)madvise(mem, size, MADV_HUGEPAGE);
#endif
  return mem;
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

void *qpool_alloc(qpool *p, size_t n) {
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

void qpool_free(qpool *p, void *block, size_t n) {
  if (block == NULL)
    return;
  if (n == 0 || n > QPOOL_MAX) {
    free(block);
    return;
  }
  qpool_push(p, block, qpool_class(n));
}

size_t qpool_bytes(const qpool *p) {
  size_t n = 0;
  for (const qpool_chunk *c = p->chunks; c != NULL; c = c->next)
    n += c->size;
  return n;
}

void qpool_destroy(qpool *p) {
  qpool_chunk *c = p->chunks;
  while (c != NULL) {
    qpool_chunk *next = c->next;
    QPOOL_UNPOISON(c, c->size); /* malloc's again from here */
    free(c);
    c = next;
  }
  qpool_init(p);
}

void *qtable_calloc(size_t n) {
  void *t;
  if (n < QPOOL_HUGE)
    return calloc(1, n > 0 ? n : 1);
  if ((t = qpool_big_alloc(n, QPOOL_HUGE)) != NULL)
    memset(t, 0, n);
  return t;
}

/*
 * pool.h — the queue's block pool: memory for batch blocks and lock-table
 * nodes, internal to src/queue.
 *
 * Why not malloc: at 100k queued batches the scheduler is bound by memory,
 * not logic. malloc spent ~400 instructions per batch on the scheduler's
 * few allocations, gave blocks no cache-line alignment (a batch's first
 * fields straddled two lines), and its 4 KiB pages made nearly every cold
 * visit a TLB miss as well. The pool hands out 64-byte-aligned blocks in
 * size classes of 64 bytes from chunks that grow to 2 MiB (asked to be
 * huge pages), keeps freed blocks on a list per class, and frees every
 * chunk at once when the queue goes.
 *
 * Ownership: a qpool owns its chunks; a block belongs to the pool until
 * ordo__qpool_free or ordo__qpool_destroy. The caller passes the size it asked
 * for to ordo__qpool_free (the pool keeps no headers). Blocks above QPOOL_MAX
 * come from malloc and go back to free. Not thread-safe: one queue, one thread
 * at a time, as the queue itself.
 *
 * Under AddressSanitizer every free block and the unused end of each chunk
 * are poisoned, so a use after ordo__qpool_free is reported as it is for
 * malloc.
 */
#ifndef ORDO_QUEUE_POOL_H
#define ORDO_QUEUE_POOL_H

#include <stddef.h>

#define QPOOL_ALIGN 64
#define QPOOL_MAX 2048 /* larger blocks: malloc */
#define QPOOL_CLASSES (QPOOL_MAX / QPOOL_ALIGN)

typedef struct qpool_chunk qpool_chunk;

typedef struct qpool {
  void *free[QPOOL_CLASSES]; /* free[c]: blocks of (c + 1) * 64 bytes */
  char *cur, *end;           /* the unused part of the newest chunk */
  qpool_chunk *chunks;       /* every chunk, newest first */
  size_t next_chunk;         /* bytes of the next chunk */
} qpool;

void ordo__qpool_init(qpool *p);

/* n bytes (n > 0), aligned to 64 when n <= QPOOL_MAX; NULL when out of
 * memory. The contents are undefined. */
void *ordo__qpool_alloc(qpool *p, size_t n);

/* Give back a block of ordo__qpool_alloc(p, n); NULL is ignored. */
void ordo__qpool_free(qpool *p, void *block, size_t n);

/* Give back every chunk none of whose blocks is in use (all on the free
 * lists, or never carved), the newest too. Cost: O(free blocks x
 * log chunks): for after many blocks were freed at once (the queue
 * forgetting finished batches), not for every free. Out of memory for its
 * index leaves the pool as it was. */
void ordo__qpool_trim(qpool *p);

/* Bytes of the chunks the pool holds (blocks in use or free). */
size_t ordo__qpool_bytes(const qpool *p);

/* Free every chunk (blocks still out become invalid) and reset p. Blocks
 * above QPOOL_MAX are the caller's to ordo__qpool_free first. */
void ordo__qpool_destroy(qpool *p);

/* A zeroed table of n bytes for the queue's hash indexes, given back with
 * ordo__qtable_free(t, n); NULL when out of memory. One of 2 MiB or more is
 * mapped on its own, aligned to 2 MiB and madvised for huge pages, as the
 * pool's chunks: the id map alone is 4 MiB at 100k batches and probed at
 * random, and on 4 KiB pages nearly every probe missed the TLB too. */
void *ordo__qtable_calloc(size_t n);
void ordo__qtable_free(void *t, size_t n);

#endif

/*
 * idset.h — a set of strings kept as 62-bit keyed hashes, with two flag
 * bits each: the journal's memory of the batches it has dropped from the
 * queue (ordo_queue_forget), internal to src/queue.
 *
 * Why hashes: a queue that has finished a million batches must still
 * refuse their ids and ledger ids and know how its deps ended, without
 * keeping a million strings. 8 bytes a member (11-21 with the table's
 * load, 3/4 at most) answer "seen, and how did it end" in one probe; the
 * record itself is on disk. Two different strings share a key with probability 2^-62 per
 * pair (SipHash-2-4 under a key chosen per set): a false "seen" at a
 * million members is about one in 4·10^12 lookups, and the journal looks
 * the record up on disk before it answers anything but the state.
 *
 * Not thread-safe: the journal's mutex guards it.
 */
#ifndef ORDO_QUEUE_IDSET_H
#define ORDO_QUEUE_IDSET_H

#include <stddef.h>
#include <stdint.h>

typedef struct ordo__idset {
  uint64_t *slots; /* 0: empty; else key (bits 2..63) | flags (bits 0..1) */
  size_t cap, n;   /* cap a power of two; n <= 3 cap / 4 */
  unsigned char key[16];
} ordo__idset;

/* An empty set with a fresh random hash key. */
void ordo__idset_init(ordo__idset *s);

/* Add s (or set its flags, 0..3, if it is there). 0, or -1 when out of
 * memory (the set is unchanged). */
int ordo__idset_put(ordo__idset *s, const char *str, unsigned flags);

/* The flags of str (0..3), or -1 when it is not in the set. */
int ordo__idset_get(const ordo__idset *s, const char *str);

/* Remove str; 1 if it was there. */
int ordo__idset_del(ordo__idset *s, const char *str);

/* Drop every member (the table's memory too). */
void ordo__idset_clear(ordo__idset *s);

/* The table's bytes. */
size_t ordo__idset_bytes(const ordo__idset *s);

#endif

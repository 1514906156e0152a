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

/* Drop every member (the table's memory too); the hash key stays. */
void ordo__idset_clear(ordo__idset *s);

/* The table's bytes. */
size_t ordo__idset_bytes(const ordo__idset *s);

/*
 * Changes to a set, in order, as 8-byte ops: a member's key with its
 * flags (bit 0 only: flags of a logged set are 0 or 1) and bit 1 set when
 * the op removes it. Why: the journal writes a set to disk as the ops
 * since its last checkpoint (a segment), not the whole table each time,
 * and reads it back by applying the segments in order. Applying ops that
 * were already applied is harmless, and a later op on a key wins.
 */
typedef struct ordo__idlog {
  uint64_t *v;
  size_t n, cap;
} ordo__idlog;

#define ORDO__IDLOG_DEL 2ull

/* Add str with flags (0 or 1) to s and log it; 0, or -1 when out of
 * memory (both unchanged). */
int ordo__idset_put_logged(ordo__idset *s, ordo__idlog *log, const char *str,
                           unsigned flags);

/* Remove str from s and log it if it was there; 1 if it was, 0 if not, -1
 * when out of memory for the log (s unchanged). */
int ordo__idset_del_logged(ordo__idset *s, ordo__idlog *log, const char *str);

/* Apply n ops (from a log or a segment) to s; 0, or -1 when out of memory
 * (s then holds a prefix of them). */
int ordo__idset_apply(ordo__idset *s, const uint64_t *ops, size_t n);

/* Append n ops to log; 0 or -1 (out of memory, log unchanged). */
int ordo__idlog_append(ordo__idlog *log, const uint64_t *ops, size_t n);

/* Every member of s as an op that adds it, into out[0..s->n). */
void ordo__idset_members(const ordo__idset *s, uint64_t *out);

void ordo__idlog_clear(ordo__idlog *log);

/*
 * A segment: the ops of two sets (a, b) as one value for the disk — a
 * 16-byte header ("oids", version 1, a base flag, the two counts as
 * 32-bit little-endian), then a's ops and b's as 64-bit little-endian. A
 * base segment holds every member, and applying it empties the sets
 * first. Encode: malloc'd, NULL when out of memory.
 */
unsigned char *ordo__idseg_encode(int base, const uint64_t *a, size_t na,
                                  const uint64_t *b, size_t nb, size_t *len);

/* Apply segment v[0..len) to a and b: 0; -1 when it is not a segment
 * (nothing applied); -2 when out of memory (a prefix applied). */
int ordo__idseg_apply(const unsigned char *v, size_t len, ordo__idset *a,
                      ordo__idset *b);

#endif

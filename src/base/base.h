/*
 * base.h — the few small things every module needs, once: a string copy, a
 * secret's wipe-and-free (a string or a buffer), a growing buffer's
 * realloc, reading a whole file, container_of, and the printf-format
 * attribute. Internal to
 * libordo (ordo__ names); no state, no threads.
 *
 * Why a module of its own: each module had grown its own copy of these
 * (three strdup clones, four secret frees, two container_ofs, a doubling
 * loop per growing buffer), and a fix to one — wiping a secret before it is freed — must reach all of them.
 */
#ifndef ORDO_BASE_H
#define ORDO_BASE_H

#include <stddef.h>
#include <stdio.h>

/* The struct of type `type` whose member `member` is at ptr. */
#define ORDO__CONTAINER_OF(ptr, type, member)                                  \
  ((type *)((char *)(ptr)-offsetof(type, member)))

/* Checks a printf-like function's format (argument fmt) against its
 * arguments (from args on). */
#if defined(__GNUC__) || defined(__clang__)
#define ORDO__PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define ORDO__PRINTF(fmt, args)
#endif

/* A malloc'd copy of s (the caller frees it), or NULL when out of memory.
 * s must not be NULL. */
char *ordo__strdup(const char *s);

/* Free the n strings of v, then v (a list of malloc'd strings, as the
 * workload and payload structs hold them); v NULL with n 0 is a no-op. */
void ordo__free_strv(char **v, size_t n);

/* free() each of ptrs[0..n) (NULL ones too). Through ORDO__FREE_ALL: a
 * destructor's plain owned fields in one statement,
 * ORDO__FREE_ALL(c->name, c->type, c->wql). Not for secrets (they are
 * wiped first: ordo__free_secret, ordo__free_wiped). */
void ordo__free_each(void *const *ptrs, size_t n);
#define ORDO__FREE_ALL(...)                                                    \
  ordo__free_each((void *const[]){__VA_ARGS__},                                \
                  sizeof((void *const[]){__VA_ARGS__}) / sizeof(void *))

/* Wipe a NUL-terminated secret (a passphrase, a key in text) and free it;
 * NULL is a no-op. */
void ordo__free_secret(char *s);

/* Wipe the len bytes at p (a key, a decrypted chunk, a sealed message) and
 * free p: the buffer form of ordo__free_secret. NULL is a no-op. */
void ordo__free_wiped(void *p, size_t len);

/* Grow buf, a malloc'd block of *cap bytes (NULL and 0 at first), so that
 * it holds at least need bytes: its capacity doubles from *cap (from first
 * when 0) until need fits. The new block, *cap updated; NULL when out of
 * memory, buf then still valid and *cap unchanged. Callers test "is it
 * full?" themselves, so a buffer with room never calls this. */
void *ordo__grow(void *buf, size_t *cap, size_t need, size_t first);

/* Read f to its end into *out, a malloc'd buffer of *len bytes and a NUL
 * after them (the caller frees it; NULL and 0 on failure). max: the most
 * bytes taken, 0 for no limit. ORDO_OK; ORDO_E_INVAL when f holds more than
 * max bytes; ORDO_E_IO on a read error; ORDO_E_NOMEM. f stays the
 * caller's to close. */
int ordo__read_stream(FILE *f, size_t max, char **out, size_t *len);

#endif

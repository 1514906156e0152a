/*
 * jsonw.h — a JSON text writer into a growing buffer.
 *
 * Why not jansson for these: the journal's checkpoint is built under the
 * journal's lock, and a tree of jansson objects per batch and per service
 * (a hash table each, then a dump) cost most of the time the queue stood
 * still for it; the server's answer to a POST of many batches is the same
 * shape. This writes the text directly; jansson still reads it.
 *
 * Errors stick: the first one (out of memory, a string that is not UTF-8)
 * is kept in err, and later calls do nothing; check err once at the end.
 * The caller writes the punctuation ({ } [ ] , :) with ordo__jsonw_raw.
 * Not thread-safe; the buffer is the caller's (free it).
 */
#ifndef ORDO_BASE_JSONW_H
#define ORDO_BASE_JSONW_H

#include <stddef.h>
#include <stdint.h>

typedef struct ordo__jsonw {
  unsigned char *buf; /* malloc'd; not NUL-terminated */
  size_t len, cap;
  int err; /* ORDO_OK, or the first error: ORDO_E_NOMEM, ORDO_E_INVAL */
} ordo__jsonw;

/* Bytes as they are. */
void ordo__jsonw_raw(ordo__jsonw *w, const void *p, size_t n);

/* A string literal with its quotes; s[0..n) must be UTF-8 (else err is
 * ORDO_E_INVAL). NUL bytes and control characters are escaped. */
void ordo__jsonw_str(ordo__jsonw *w, const char *s, size_t n);

/* ordo__jsonw_str of a NUL-terminated string. */
void ordo__jsonw_cstr(ordo__jsonw *w, const char *s);

void ordo__jsonw_uint(ordo__jsonw *w, uint64_t v);

/* ,"key": (no comma when first) — a member's start inside an object. */
void ordo__jsonw_key(ordo__jsonw *w, int first, const char *key);

#endif

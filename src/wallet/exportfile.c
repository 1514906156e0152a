/*
 * exportfile.c — writer and reader of the wallet export format (see
 * exportfile.h for the layout and why secretstream).
 */
#include "wallet/exportfile.h"
#include "crypto/crypto.h"

#include <stdlib.h>
#include <string.h>

static const char magic[8] = {'O', 'R', 'D', 'O', 'W', 'E', 'X', '1'};
#define HEADER_MAX 4096 /* a header JSON is ~150 bytes; refuse absurd ones */

static void put_u32(unsigned char b[4], uint32_t v) {
  b[0] = (unsigned char)(v >> 24);
  b[1] = (unsigned char)(v >> 16);
  b[2] = (unsigned char)(v >> 8);
  b[3] = (unsigned char)v;
}

static uint32_t get_u32(const unsigned char b[4]) {
  return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 |
         (uint32_t)b[3];
}

/* ---- writer ----------------------------------------------------------------- */

int ordo__export_writer_begin(ordo__export_writer *w, FILE *f,
                              const ordo__wallet_kdf *kdf,
                              const unsigned char key[ORDO__WALLET_KEY_BYTES]) {
  memset(w, 0, sizeof(*w));
  w->f = f;
  char *kdf_json = ordo__wallet_kdf_to_json(kdf);
  json_t *h = kdf_json != NULL
                  ? json_pack("{s:i, s:o}", "version", 1, "kdf",
                              json_loads(kdf_json, 0, NULL))
                  : NULL;
  free(kdf_json);
  w->header_json = h != NULL ? json_dumps(h, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
  json_decref(h);
  w->cap = ORDO__EXPORT_CHUNK;
  w->buf = malloc(w->cap);
  if (w->header_json == NULL || w->buf == NULL)
    return ORDO_E_NOMEM;
  unsigned char len[4], ssh[crypto_secretstream_xchacha20poly1305_HEADERBYTES];
  put_u32(len, (uint32_t)strlen(w->header_json));
  crypto_secretstream_xchacha20poly1305_init_push(&w->ss, ssh, key);
  if (fwrite(magic, 1, sizeof(magic), f) != sizeof(magic) ||
      fwrite(len, 1, 4, f) != 4 ||
      fwrite(w->header_json, 1, strlen(w->header_json), f) != strlen(w->header_json) ||
      fwrite(ssh, 1, sizeof(ssh), f) != sizeof(ssh))
    return ORDO_E_IO;
  return ORDO_OK;
}

static int writer_seal(ordo__export_writer *w, unsigned char tag) {
  size_t clen = w->len + crypto_secretstream_xchacha20poly1305_ABYTES;
  unsigned char *c = malloc(clen + 4);
  if (c == NULL)
    return ORDO_E_NOMEM;
  const unsigned char *ad = NULL;
  size_t adlen = 0;
  if (w->header_json != NULL) { /* the first chunk carries the header */
    ad = (const unsigned char *)w->header_json;
    adlen = strlen(w->header_json);
  }
  put_u32(c, (uint32_t)clen);
  crypto_secretstream_xchacha20poly1305_push(&w->ss, c + 4, NULL,
                                             (const unsigned char *)w->buf, w->len,
                                             ad, adlen, tag);
  free(w->header_json);
  w->header_json = NULL;
  sodium_memzero(w->buf, w->len);
  w->len = 0;
  int ok = fwrite(c, 1, clen + 4, w->f) == clen + 4;
  free(c);
  return ok ? ORDO_OK : ORDO_E_IO;
}

int ordo__export_writer_add(ordo__export_writer *w, json_t *record) {
  char *line = json_dumps(record, JSON_COMPACT | JSON_SORT_KEYS);
  if (line == NULL)
    return ORDO_E_NOMEM;
  size_t n = strlen(line);
  int rc = ORDO_OK;
  if (n + 1 > ORDO__EXPORT_MAX_CHUNK) {
    rc = ORDO_E_INVAL;
    goto done;
  }
  if (w->len > 0 && w->len + n + 1 > ORDO__EXPORT_CHUNK &&
      (rc = writer_seal(w, 0)) != ORDO_OK)
    goto done;
  if (w->len + n + 1 > w->cap) {
    /* One record larger than a chunk: grow to hold it alone. */
    char *b = malloc(w->len + n + 1);
    if (b == NULL) {
      rc = ORDO_E_NOMEM;
      goto done;
    }
    memcpy(b, w->buf, w->len);
    ordo__free_wiped(w->buf, w->cap);
    w->buf = b;
    w->cap = w->len + n + 1;
  }
  memcpy(w->buf + w->len, line, n);
  w->buf[w->len + n] = '\n';
  w->len += n + 1;
  w->records++;
done:
  ordo__free_wiped(line, n);
  return rc;
}

int ordo__export_writer_finish(ordo__export_writer *w) {
  int rc = writer_seal(w, crypto_secretstream_xchacha20poly1305_TAG_FINAL);
  if (rc == ORDO_OK && fflush(w->f) != 0)
    rc = ORDO_E_IO;
  return rc;
}

void ordo__export_writer_free(ordo__export_writer *w) {
  ordo__free_wiped(w->buf, w->cap);
  free(w->header_json);
  sodium_memzero(&w->ss, sizeof(w->ss));
  memset(w, 0, sizeof(*w));
}

/* ---- reader ----------------------------------------------------------------- */

static int reader_fail(ordo__export_reader *r, const char *what) {
  snprintf(r->error, sizeof(r->error), "%s", what);
  return ORDO_E_WALLET_FILE;
}

int ordo__export_reader_begin(ordo__export_reader *r, FILE *f,
                              ordo__wallet_kdf *kdf) {
  memset(r, 0, sizeof(*r));
  r->f = f;
  r->first = 1;
  char m[sizeof(magic)];
  unsigned char len[4];
  if (fread(m, 1, sizeof(m), f) != sizeof(m) || memcmp(m, magic, sizeof(m)) != 0)
    return reader_fail(r, "not an ordo wallet export (bad magic)");
  if (fread(len, 1, 4, f) != 4)
    return reader_fail(r, "truncated header");
  uint32_t n = get_u32(len);
  if (n == 0 || n > HEADER_MAX)
    return reader_fail(r, "header length out of range");
  r->header_json = malloc(n + 1);
  if (r->header_json == NULL)
    return ORDO_E_NOMEM;
  if (fread(r->header_json, 1, n, f) != n)
    return reader_fail(r, "truncated header");
  r->header_json[n] = '\0';
  json_t *h = json_loads(r->header_json, 0, NULL);
  json_t *k = json_object_get(h, "kdf");
  char *ks = json_is_object(k) ? json_dumps(k, JSON_COMPACT) : NULL;
  int ok = h != NULL && json_integer_value(json_object_get(h, "version")) == 1 &&
           ks != NULL && ordo__wallet_kdf_from_json(ks, kdf) == ORDO_OK;
  free(ks);
  json_decref(h);
  return ok ? ORDO_OK : reader_fail(r, "malformed header");
}

int ordo__export_reader_keyed(ordo__export_reader *r,
                              const unsigned char key[ORDO__WALLET_KEY_BYTES]) {
  unsigned char ssh[crypto_secretstream_xchacha20poly1305_HEADERBYTES];
  if (fread(ssh, 1, sizeof(ssh), r->f) != sizeof(ssh))
    return reader_fail(r, "truncated stream header");
  if (crypto_secretstream_xchacha20poly1305_init_pull(&r->ss, ssh, key) != 0)
    return reader_fail(r, "bad stream header");
  return ORDO_OK;
}

static void reader_drop_chunk(ordo__export_reader *r) {
  ordo__free_wiped(r->chunk, r->chunk_len);
  r->chunk = NULL;
  r->chunk_len = 0;
  r->pos = 0;
}

static int reader_pull(ordo__export_reader *r) {
  unsigned char len[4];
  reader_drop_chunk(r);
  if (fread(len, 1, 4, r->f) != 4)
    return reader_fail(r, "file ends before its final chunk (truncated)");
  uint32_t clen = get_u32(len);
  if (clen < crypto_secretstream_xchacha20poly1305_ABYTES ||
      clen > ORDO__EXPORT_MAX_CHUNK + crypto_secretstream_xchacha20poly1305_ABYTES)
    return reader_fail(r, "chunk length out of range");
  unsigned char *c = malloc(clen);
  r->chunk = malloc(clen);
  if (c == NULL || r->chunk == NULL) {
    free(c);
    return ORDO_E_NOMEM;
  }
  if (fread(c, 1, clen, r->f) != clen) {
    free(c);
    return reader_fail(r, "file ends inside a chunk (truncated)");
  }
  unsigned long long mlen = 0;
  unsigned char tag = 0;
  const unsigned char *ad = r->first ? (const unsigned char *)r->header_json : NULL;
  size_t adlen = r->first ? strlen(r->header_json) : 0;
  int bad = crypto_secretstream_xchacha20poly1305_pull(&r->ss, r->chunk, &mlen, &tag,
                                                       c, clen, ad, adlen) != 0;
  free(c);
  if (bad) {
    if (r->first) {
      /* The first chunk fails alike for a wrong key and an altered file. */
      snprintf(r->error, sizeof(r->error),
               "first chunk does not decrypt: wrong key, or the file was altered");
      return ORDO_E_WALLET_ACCESS;
    }
    return reader_fail(r, "a chunk does not decrypt: the file was altered");
  }
  r->first = 0;
  r->chunk_len = (size_t)mlen;
  if (tag == crypto_secretstream_xchacha20poly1305_TAG_FINAL) {
    r->final = 1;
    if (fgetc(r->f) != EOF)
      return reader_fail(r, "data after the final chunk");
  } else if (tag != 0) {
    return reader_fail(r, "unexpected chunk tag");
  }
  return ORDO_OK;
}

static int record_valid(json_t *rec) {
  const char *k;
  json_t *v;
  if (!json_is_object(rec) || !json_is_string(json_object_get(rec, "type")) ||
      !json_is_string(json_object_get(rec, "name")) ||
      !json_is_string(json_object_get(rec, "value")))
    return 0;
  json_t *tags = json_object_get(rec, "tags");
  if (tags == NULL)
    return 1;
  if (!json_is_object(tags))
    return 0;
  json_object_foreach(tags, k, v) {
    if (!json_is_string(v))
      return 0;
  }
  return 1;
}

int ordo__export_reader_next(ordo__export_reader *r, json_t **record) {
  *record = NULL;
  for (;;) {
    if (r->chunk != NULL && r->pos < r->chunk_len) {
      unsigned char *start = r->chunk + r->pos;
      unsigned char *nl = memchr(start, '\n', r->chunk_len - r->pos);
      if (nl == NULL)
        return reader_fail(r, "record line without an end");
      size_t n = (size_t)(nl - start);
      r->pos += n + 1;
      json_t *rec = json_loadb((const char *)start, n, 0, NULL);
      if (!record_valid(rec)) {
        json_decref(rec);
        return reader_fail(r, "malformed record");
      }
      *record = rec;
      return ORDO_OK;
    }
    if (r->final)
      return ORDO_OK; /* complete: *record stays NULL */
    int rc = reader_pull(r);
    if (rc != ORDO_OK)
      return rc;
  }
}

void ordo__export_reader_free(ordo__export_reader *r) {
  reader_drop_chunk(r);
  free(r->header_json);
  sodium_memzero(&r->ss, sizeof(r->ss));
  r->header_json = NULL;
}

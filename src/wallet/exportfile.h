/*
 * exportfile.h — the wallet export file format: writer and reader.
 *
 *   "ORDOWEX1"                 8 bytes, magic and format version
 *   u32 big-endian             length of the header JSON
 *   header JSON                {"version":1,"kdf":{method,salt,opslimit,
 *                               memlimit}} — how to derive the file key
 *   secretstream header        24 bytes (crypto_secretstream_xchacha20poly1305)
 *   chunks, each:  u32 BE length, then that many bytes of one secretstream
 *                  message; the first is bound to the header JSON (AAD); the
 *                  last carries TAG_FINAL
 *
 * A chunk's plaintext is JSON Lines, one record per line:
 *   {"type":…,"name":…,"value":…,"tags":{…}}
 *
 * secretstream gives what the format needs: chunks cannot be reordered,
 * dropped, replayed or altered, and a file cut short lacks TAG_FINAL, so a
 * truncated file is told apart from a complete one. Pure code: no ops, no
 * threads; the wallet's export and import commands drive it.
 */
#ifndef ORDO_WALLET_EXPORTFILE_H
#define ORDO_WALLET_EXPORTFILE_H

#include "wallet/wallet.h"

#include <jansson.h>
#include <sodium.h>
#include <stdio.h>

/* Plaintext bytes gathered before a chunk is sealed; a chunk never exceeds
 * ORDO__EXPORT_MAX_CHUNK (a record larger than that cannot be exported). */
#define ORDO__EXPORT_CHUNK 65536
#define ORDO__EXPORT_MAX_CHUNK (16u * 1024 * 1024)

typedef struct ordo__export_writer {
  FILE *f;
  crypto_secretstream_xchacha20poly1305_state ss;
  char *header_json;    /* AAD of the first chunk, until it is written */
  char *buf;            /* plaintext of the chunk being gathered */
  size_t len, cap;
  unsigned long long records;
} ordo__export_writer;

/* Write magic, header and stream header to f (which stays the caller's). */
int ordo__export_writer_begin(ordo__export_writer *w, FILE *f,
                              const ordo__wallet_kdf *kdf,
                              const unsigned char key[ORDO__WALLET_KEY_BYTES]);
/* Append one record (a JSON object, not consumed); seals a chunk when full. */
int ordo__export_writer_add(ordo__export_writer *w, json_t *record);
/* Seal the rest with TAG_FINAL and flush. */
int ordo__export_writer_finish(ordo__export_writer *w);
/* Wipe and free (after finish, or to abandon). */
void ordo__export_writer_free(ordo__export_writer *w);

typedef struct ordo__export_reader {
  FILE *f;
  crypto_secretstream_xchacha20poly1305_state ss;
  char *header_json;
  unsigned char *chunk; /* last decrypted plaintext */
  size_t chunk_len;
  size_t pos;           /* next line in chunk */
  int first;            /* the next chunk is the first (AAD = header) */
  int final;            /* TAG_FINAL seen */
  char error[160];      /* what is wrong with the file */
} ordo__export_reader;

/* Read magic and header; fills kdf (to derive the key). ORDO_E_WALLET_FILE
 * with r->error on anything malformed. */
int ordo__export_reader_begin(ordo__export_reader *r, FILE *f,
                              ordo__wallet_kdf *kdf);
/* Read the stream header with the derived key. */
int ordo__export_reader_keyed(ordo__export_reader *r,
                              const unsigned char key[ORDO__WALLET_KEY_BYTES]);
/* The next record (a new reference) in *record, or NULL at the end of a
 * complete file. A file cut short, altered, or with a malformed record:
 * ORDO_E_WALLET_FILE (a wrong key shows as ORDO_E_WALLET_ACCESS on the first
 * chunk). Records are {"type","name","value","tags"}, all strings. */
int ordo__export_reader_next(ordo__export_reader *r, json_t **record);
void ordo__export_reader_free(ordo__export_reader *r);

#endif /* ORDO_WALLET_EXPORTFILE_H */

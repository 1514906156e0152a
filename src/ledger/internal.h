/*
 * internal.h — the structures shared by the files of the ledger module only.
 * Other modules use ledger.h, which keeps protobuf-c's types out of sight.
 *
 * One representation for built and decoded objects alike: the exact bytes
 * that were signed (a header is never re-serialized, since protobuf
 * encodings are not unique and a signature covers the bytes sent), plus the
 * header decoded from those bytes by protobuf-c.
 */
#ifndef ORDO_LEDGER_INTERNAL_H
#define ORDO_LEDGER_INTERNAL_H

#include "ledger/ledger.h"
#include "crypto/crypto.h"

#include "sawtooth.pb-c.h" /* generated into the build tree */

struct ordo_ledger_signer {
  unsigned char sk[ORDO__SECP256K1_SECRET_BYTES]; /* secret; sodium_malloc'd */
  char pub[ORDO_LEDGER_PUBKEY_SIZE];
};

struct ordo_ledger_txn {
  unsigned char *header; /* serialized TransactionHeader, as signed */
  size_t header_len;
  char *id;              /* header_signature, as received */
  unsigned char *payload;
  size_t payload_len;
  Ordo__Sawtooth__TransactionHeader *hdr; /* decoded from header */
};

struct ordo_ledger_batch {
  unsigned char *header; /* serialized BatchHeader, as signed */
  size_t header_len;
  char *id;
  int trace;
  Ordo__Sawtooth__BatchHeader *hdr; /* decoded from header */
  ordo_ledger_txn **txns;
  size_t ntxns;
};

struct ordo_ledger_batchlist {
  ordo_ledger_batch **batches;
  size_t n;
};

/*
 * A transaction from its parts, all copied; the header bytes are decoded.
 * ORDO_E_LEDGER_DECODE (no message: the caller knows which txn it is) when
 * they are not a TransactionHeader; ORDO_E_NOMEM.
 */
int ordo__ledger_txn_make(const unsigned char *header, size_t header_len,
                          const char *id, const unsigned char *payload,
                          size_t payload_len, ordo_ledger_txn **out);

/* A batch without transactions from its parts, likewise; room for ntxns
 * transactions is allocated (b->ntxns stays 0 until they are added). */
int ordo__ledger_batch_make(const unsigned char *header, size_t header_len,
                            const char *id, int trace, size_t ntxns,
                            ordo_ledger_batch **out);

/* Hex SHA-512 of len bytes (128 digits and a NUL). */
int ordo__ledger_sha512_hex(const void *data, size_t len,
                            char out[ORDO__HEX_ENCODED_SIZE(ORDO__SHA512_BYTES)]);

/* 1, with ORDO_E_LEDGER_PAYLOAD set ("FAMILY: payload of LEN bytes (at most
 * MAX)"), when a family's payload of len bytes is over its max; else 0.
 * (families.c) */
int ordo__ledger_payload_over(const char *family, size_t len, size_t max);

/* A short form of an id for messages: its first 16 characters. */
#define ORDO__LEDGER_SHORT "%.16s"

#endif /* ORDO_LEDGER_INTERNAL_H */

/*
 * sawtooth.c — signers (and their key files), and transactions, batches and
 * BatchLists built and signed the way Sawtooth's SDKs do it; a batch's
 * footprint for the queuer; addresses.
 *
 * Decoding and validation of what comes off the wire are in validate.c.
 */
#include "base/base.h"
#include "ledger/internal.h"
#include "runtime/runtime.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NONCE_BYTES 16

/* A copy of len bytes (a 1-byte buffer when len is 0, so NULL means only
 * "out of memory"). */
static unsigned char *dupbytes(const unsigned char *p, size_t len) {
  unsigned char *d = malloc(len ? len : 1);
  if (d != NULL && len)
    memcpy(d, p, len);
  return d;
}

int ordo__ledger_sha512_hex(
    const void *data, size_t len,
    char out[ORDO__HEX_ENCODED_SIZE(ORDO__SHA512_BYTES)]) {
  unsigned char h[ORDO__SHA512_BYTES];
  int rc = ordo__crypto_sha512(data, len, h);
  if (rc == ORDO_OK)
    rc = ordo__crypto_hex_encode(h, sizeof h, out,
                                 ORDO__HEX_ENCODED_SIZE(ORDO__SHA512_BYTES));
  return rc;
}

/* ---- signers ------------------------------------------------------------ */

int ordo_ledger_signer_new(const char *secret_hex, ordo_ledger_signer **out) {
  ordo_ledger_signer *s;
  unsigned char pub[ORDO__SECP256K1_PUBLIC_BYTES];
  int rc;

  if (out == NULL)
    return ordo__set_last_error(ORDO_E_INVAL, "signer: out is NULL");
  *out = NULL;
  if ((rc = ordo__crypto_init()) != ORDO_OK)
    return ordo__set_last_error(rc, "signer: libsodium cannot start");
  /* Guarded, locked memory, wiped by sodium_free. */
  if ((s = sodium_malloc(sizeof *s)) == NULL)
    return ordo__set_last_error(ORDO_E_NOMEM, "signer: out of memory");
  if (secret_hex == NULL) {
    rc = ordo__crypto_secp256k1_keypair(s->sk, pub);
  } else {
    rc = ordo__crypto_secp256k1_seckey_from_hex(secret_hex, s->sk);
    if (rc == ORDO_OK)
      rc = ordo__crypto_secp256k1_pubkey_from_secret(s->sk, pub);
  }
  if (rc == ORDO_OK)
    rc = ordo__crypto_secp256k1_pubkey_hex(pub, s->pub);
  if (rc != ORDO_OK) {
    sodium_free(s);
    return ordo__set_last_error(rc, "signer: %s", secret_hex == NULL
                                    ? "key generation failed"
                                    : "not a secp256k1 secret key in hex");
  }
  *out = s;
  return ORDO_OK;
}

void ordo_ledger_signer_free(ordo_ledger_signer *s) {
  if (s != NULL)
    sodium_free(s);
}

const char *ordo_ledger_signer_public_key(const ordo_ledger_signer *s) {
  return s->pub;
}

int ordo_ledger_secret_file_read(const char *what, const char *path,
                                 char *buf, size_t max, size_t *len) {
  struct stat st;
  ssize_t got;
  size_t n = 0;
  int fd;

  if (len != NULL)
    *len = 0;
  if (what == NULL || path == NULL || buf == NULL || max == 0 || len == NULL)
    return ordo__set_last_error(ORDO_E_INVAL, "secret file: NULL argument");
  if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
    return ordo__set_last_error(ORDO_E_INVAL, "%s %s: %s", what, path,
                                strerror(errno));
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return ordo__set_last_error(ORDO_E_INVAL, "%s %s: not a regular file",
                                what, path);
  }
  /* Checked on the open file, so a swap after the check changes nothing. */
  if (st.st_mode & S_IROTH) {
    close(fd);
    return ordo__set_last_error(ORDO_E_INVAL, "%s %s is world-readable "
                                "(mode %03o): chmod o-r it (0600 is usual)",
                                what, path, (unsigned)(st.st_mode & 0777));
  }
  while (n < max && (got = read(fd, buf + n, max - n)) != 0) {
    if (got < 0) {
      int e = errno;
      if (e == EINTR)
        continue;
      close(fd);
      sodium_memzero(buf, max);
      return ordo__set_last_error(ORDO_E_INVAL, "%s %s: %s", what, path,
                                  strerror(e));
    }
    n += (size_t)got;
  }
  close(fd);
  *len = n;
  return ORDO_OK;
}

int ordo_ledger_signer_from_file(const char *path, ordo_ledger_signer **out) {
  /* Room for a key and some trailing blanks; more is not a key file. */
  char buf[256], hex[2 * ORDO__SECP256K1_SECRET_BYTES + 1];
  const size_t hexlen = 2 * ORDO__SECP256K1_SECRET_BYTES;
  size_t len = 0, i;
  int rc;

  if (out != NULL)
    *out = NULL;
  if (path == NULL || out == NULL)
    return ordo__set_last_error(ORDO_E_INVAL, "signing key file: NULL "
                                "argument");
  if ((rc = ordo_ledger_secret_file_read("signing key file", path, buf,
                                         sizeof buf, &len)) != ORDO_OK)
    return rc;
  /* 64 hex digits, then only blanks (a newline, spaces). Messages never
   * say what the file holds, only what is wrong with it. */
  rc = ORDO_OK;
  if (len == sizeof buf || len < hexlen)
    rc = ORDO_E_BAD_KEY;
  for (i = 0; rc == ORDO_OK && i < hexlen; i++)
    if (!((buf[i] >= '0' && buf[i] <= '9') || (buf[i] >= 'a' && buf[i] <= 'f') ||
          (buf[i] >= 'A' && buf[i] <= 'F')))
      rc = ORDO_E_BAD_KEY;
  for (i = hexlen; rc == ORDO_OK && i < len; i++)
    if (buf[i] != '\n' && buf[i] != '\r' && buf[i] != ' ' && buf[i] != '\t')
      rc = ORDO_E_BAD_KEY;
  if (rc != ORDO_OK) {
    sodium_memzero(buf, sizeof buf);
    return ordo__set_last_error(rc, "signing key file %s: not a secp256k1 "
                                "private key (64 hex digits on one line, as "
                                "sawtooth keygen writes it)", path);
  }
  memcpy(hex, buf, hexlen);
  hex[hexlen] = '\0';
  sodium_memzero(buf, sizeof buf);
  rc = ordo_ledger_signer_new(hex, out);
  sodium_memzero(hex, sizeof hex);
  if (rc != ORDO_OK)
    return ordo__set_last_error(rc, "signing key file %s: %s", path,
                                rc == ORDO_E_BAD_KEY
                                    ? "not a valid secp256k1 private key "
                                      "(zero or not below the curve order)"
                                    : ordo_last_error_message());
  return ORDO_OK;
}

/* Sign SHA-256 of len bytes: the 128 hex digits of the compact signature. */
static int sign_hex(const ordo_ledger_signer *s, const unsigned char *msg,
                    size_t len, char out[ORDO_LEDGER_ID_SIZE]) {
  unsigned char sig[ORDO__SECP256K1_SIG_BYTES];
  int rc = ordo__crypto_secp256k1_sign_sha256(s->sk, msg, len, sig);
  if (rc == ORDO_OK)
    rc = ordo__crypto_hex_encode(sig, sizeof sig, out, ORDO_LEDGER_ID_SIZE);
  return rc;
}

/* ---- transactions ------------------------------------------------------- */

int ordo__ledger_txn_make(const unsigned char *header, size_t header_len,
                          const char *id, const unsigned char *payload,
                          size_t payload_len, ordo_ledger_txn **out) {
  ordo_ledger_txn *t;

  *out = NULL;
  if ((t = calloc(1, sizeof *t)) == NULL)
    return ORDO_E_NOMEM;
  t->header = dupbytes(header, header_len);
  t->header_len = header_len;
  t->id = ordo__strdup(id);
  t->payload = dupbytes(payload, payload_len);
  t->payload_len = payload_len;
  if (t->header == NULL || t->id == NULL || t->payload == NULL) {
    ordo_ledger_txn_free(t);
    return ORDO_E_NOMEM;
  }
  /* protobuf-c reports a failed allocation and bad bytes alike; the bytes
   * are the likely cause. */
  t->hdr = ordo__sawtooth__transaction_header__unpack(NULL, header_len,
                                                      t->header);
  if (t->hdr == NULL) {
    ordo_ledger_txn_free(t);
    return ORDO_E_LEDGER_DECODE;
  }
  *out = t;
  return ORDO_OK;
}

void ordo_ledger_txn_free(ordo_ledger_txn *t) {
  if (t == NULL)
    return;
  if (t->hdr != NULL)
    ordo__sawtooth__transaction_header__free_unpacked(t->hdr, NULL);
  free(t->header);
  free(t->id);
  free(t->payload);
  free(t);
}

/* Every one of n strings is non-NULL (arrays may be NULL when n is 0). */
static int strings_ok(const char *const *v, size_t n) {
  size_t i;
  if (n > 0 && v == NULL)
    return 0;
  for (i = 0; i < n; i++)
    if (v[i] == NULL)
      return 0;
  return 1;
}

int ordo_ledger_txn_build(const ordo_ledger_signer *signer,
                          const char *batcher_public_key,
                          const ordo_ledger_txn_spec *spec,
                          ordo_ledger_txn **out) {
  Ordo__Sawtooth__TransactionHeader h = ORDO__SAWTOOTH__TRANSACTION_HEADER__INIT;
  char payload_hash[ORDO__HEX_ENCODED_SIZE(ORDO__SHA512_BYTES)];
  char nonce[ORDO__HEX_ENCODED_SIZE(NONCE_BYTES)];
  char id[ORDO_LEDGER_ID_SIZE];
  unsigned char raw[NONCE_BYTES];
  unsigned char *buf;
  size_t len;
  int rc;

  if (out != NULL)
    *out = NULL;
  if (signer == NULL || spec == NULL || out == NULL ||
      spec->family_name == NULL || spec->family_version == NULL ||
      !strings_ok(spec->inputs, spec->ninputs) ||
      !strings_ok(spec->outputs, spec->noutputs) ||
      !strings_ok(spec->dependencies, spec->ndependencies) ||
      (spec->payload == NULL && spec->payload_len > 0))
    return ordo__set_last_error(ORDO_E_INVAL,
                                "txn: NULL signer, spec, out or spec field");
  if ((rc = ordo__ledger_sha512_hex(spec->payload, spec->payload_len,
                                    payload_hash)) != ORDO_OK)
    return ordo__set_last_error(rc, "txn: payload hash failed");
  if (spec->nonce == NULL) {
    randombytes_buf(raw, sizeof raw); /* signer_new started libsodium */
    ordo__crypto_hex_encode(raw, sizeof raw, nonce, sizeof nonce);
  }

  /* protobuf-c only reads the message while packing, hence the casts. */
  h.batcher_public_key =
      (char *)(batcher_public_key ? batcher_public_key : signer->pub);
  h.n_dependencies = spec->ndependencies;
  h.dependencies = (char **)spec->dependencies;
  h.family_name = (char *)spec->family_name;
  h.family_version = (char *)spec->family_version;
  h.n_inputs = spec->ninputs;
  h.inputs = (char **)spec->inputs;
  h.nonce = spec->nonce ? (char *)spec->nonce : nonce;
  h.n_outputs = spec->noutputs;
  h.outputs = (char **)spec->outputs;
  h.payload_sha512 = payload_hash;
  h.signer_public_key = (char *)signer->pub;

  len = ordo__sawtooth__transaction_header__get_packed_size(&h);
  if ((buf = malloc(len ? len : 1)) == NULL)
    return ordo__set_last_error(ORDO_E_NOMEM, "txn: out of memory");
  ordo__sawtooth__transaction_header__pack(&h, buf);
  rc = sign_hex(signer, buf, len, id);
  if (rc == ORDO_OK)
    rc = ordo__ledger_txn_make(buf, len, id, spec->payload, spec->payload_len,
                               out);
  free(buf);
  if (rc != ORDO_OK)
    return ordo__set_last_error(rc, "txn: %s", rc == ORDO_E_NOMEM
                                                   ? "out of memory"
                                                   : "signing failed");
  return ORDO_OK;
}

const char *ordo_ledger_txn_id(const ordo_ledger_txn *t) { return t->id; }

void ordo_ledger_txn_header_get(const ordo_ledger_txn *t,
                                ordo_ledger_txn_header *out) {
  const Ordo__Sawtooth__TransactionHeader *h = t->hdr;
  out->batcher_public_key = h->batcher_public_key;
  out->dependencies = (const char *const *)h->dependencies;
  out->ndependencies = h->n_dependencies;
  out->family_name = h->family_name;
  out->family_version = h->family_version;
  out->inputs = (const char *const *)h->inputs;
  out->ninputs = h->n_inputs;
  out->nonce = h->nonce;
  out->outputs = (const char *const *)h->outputs;
  out->noutputs = h->n_outputs;
  out->payload_sha512 = h->payload_sha512;
  out->signer_public_key = h->signer_public_key;
}

const unsigned char *ordo_ledger_txn_header_bytes(const ordo_ledger_txn *t,
                                                  size_t *len) {
  *len = t->header_len;
  return t->header;
}

const unsigned char *ordo_ledger_txn_payload(const ordo_ledger_txn *t,
                                             size_t *len) {
  *len = t->payload_len;
  return t->payload_len ? t->payload : NULL;
}

/* ---- batches ------------------------------------------------------------ */

int ordo__ledger_batch_make(const unsigned char *header, size_t header_len,
                            const char *id, int trace, size_t ntxns,
                            ordo_ledger_batch **out) {
  ordo_ledger_batch *b;

  *out = NULL;
  if ((b = calloc(1, sizeof *b)) == NULL)
    return ORDO_E_NOMEM;
  b->header = dupbytes(header, header_len);
  b->header_len = header_len;
  b->id = ordo__strdup(id);
  b->trace = trace;
  b->txns = calloc(ntxns ? ntxns : 1, sizeof *b->txns);
  if (b->header == NULL || b->id == NULL || b->txns == NULL) {
    ordo_ledger_batch_free(b);
    return ORDO_E_NOMEM;
  }
  b->hdr = ordo__sawtooth__batch_header__unpack(NULL, header_len, b->header);
  if (b->hdr == NULL) {
    ordo_ledger_batch_free(b);
    return ORDO_E_LEDGER_DECODE;
  }
  *out = b;
  return ORDO_OK;
}

void ordo_ledger_batch_free(ordo_ledger_batch *b) {
  size_t i;
  if (b == NULL)
    return;
  for (i = 0; i < b->ntxns; i++)
    ordo_ledger_txn_free(b->txns[i]);
  if (b->hdr != NULL)
    ordo__sawtooth__batch_header__free_unpacked(b->hdr, NULL);
  free(b->txns);
  free(b->header);
  free(b->id);
  free(b);
}

int ordo_ledger_batch_build(const ordo_ledger_signer *signer,
                            ordo_ledger_txn *const *txns, size_t n,
                            ordo_ledger_batch **out) {
  Ordo__Sawtooth__BatchHeader h = ORDO__SAWTOOTH__BATCH_HEADER__INIT;
  char id[ORDO_LEDGER_ID_SIZE];
  ordo_ledger_batch *b = NULL;
  unsigned char *buf = NULL;
  char **ids = NULL;
  size_t i, len;
  int rc;

  if (out != NULL)
    *out = NULL;
  if (signer == NULL || txns == NULL || out == NULL || n == 0)
    return ordo__set_last_error(ORDO_E_INVAL,
                                "batch: NULL argument or no transactions");
  for (i = 0; i < n; i++) {
    if (txns[i] == NULL)
      return ordo__set_last_error(ORDO_E_INVAL, "batch: txn %zu is NULL", i);
    if (strcmp(txns[i]->hdr->batcher_public_key, signer->pub) != 0)
      return ordo__set_last_error(
          ORDO_E_LEDGER_BATCHER,
          "batch: txn %zu (" ORDO__LEDGER_SHORT
          "): batcher_public_key is not the batch signer's key",
          i, txns[i]->id);
  }
  if ((ids = malloc(n * sizeof *ids)) == NULL)
    goto nomem;
  for (i = 0; i < n; i++)
    ids[i] = txns[i]->id;
  h.signer_public_key = (char *)signer->pub;
  h.n_transaction_ids = n;
  h.transaction_ids = ids;
  len = ordo__sawtooth__batch_header__get_packed_size(&h);
  if ((buf = malloc(len)) == NULL)
    goto nomem;
  ordo__sawtooth__batch_header__pack(&h, buf);
  if ((rc = sign_hex(signer, buf, len, id)) != ORDO_OK) {
    free(ids);
    free(buf);
    return ordo__set_last_error(rc, "batch: signing failed");
  }
  if (ordo__ledger_batch_make(buf, len, id, 0, n, &b) != ORDO_OK)
    goto nomem;
  for (i = 0; i < n; i++) {
    const ordo_ledger_txn *t = txns[i];
    if (ordo__ledger_txn_make(t->header, t->header_len, t->id, t->payload,
                              t->payload_len, &b->txns[i]) != ORDO_OK)
      goto nomem;
    b->ntxns++;
  }
  free(ids);
  free(buf);
  *out = b;
  return ORDO_OK;

nomem: /* every header here was packed by us, so only memory can fail */
  ordo_ledger_batch_free(b);
  free(ids);
  free(buf);
  return ordo__set_last_error(ORDO_E_NOMEM, "batch: out of memory");
}

const char *ordo_ledger_batch_id(const ordo_ledger_batch *b) { return b->id; }

const char *ordo_ledger_batch_signer(const ordo_ledger_batch *b) {
  return b->hdr->signer_public_key;
}

size_t ordo_ledger_batch_txn_count(const ordo_ledger_batch *b) {
  return b->ntxns;
}

const ordo_ledger_txn *ordo_ledger_batch_txn(const ordo_ledger_batch *b,
                                             size_t i) {
  return i < b->ntxns ? b->txns[i] : NULL;
}

/* ---- footprints --------------------------------------------------------- */

static int str_ptr_cmp(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* v[0..n) sorted, without repeats; returns the new count. */
static size_t sort_unique(const char **v, size_t n) {
  size_t i, k = 0;
  if (n > 1)
    qsort(v, n, sizeof *v, str_ptr_cmp);
  for (i = 0; i < n; i++)
    if (k == 0 || strcmp(v[k - 1], v[i]) != 0)
      v[k++] = v[i];
  return k;
}

/* declared[0..nd) and every txn's inputs (or outputs), without repeats,
 * into a new array. Sorting, not pairwise compares: a hostile batch may
 * list a hundred thousand addresses. */
static int union_of(const ordo_ledger_batch *b, int outputs,
                    const char *const *declared, size_t nd, const char ***v,
                    size_t *n) {
  size_t i, k, total = nd, m = 0;
  const char **p;
  *v = NULL;
  *n = 0;
  for (i = 0; i < b->ntxns; i++)
    total += outputs ? b->txns[i]->hdr->n_outputs : b->txns[i]->hdr->n_inputs;
  if (total == 0)
    return ORDO_OK;
  if (total > SIZE_MAX / sizeof *p || (p = malloc(total * sizeof *p)) == NULL)
    return ORDO_E_NOMEM;
  for (i = 0; i < nd; i++)
    p[m++] = declared[i];
  for (i = 0; i < b->ntxns; i++) {
    const Ordo__Sawtooth__TransactionHeader *h = b->txns[i]->hdr;
    char *const *a = outputs ? h->outputs : h->inputs;
    size_t na = outputs ? h->n_outputs : h->n_inputs;
    for (k = 0; k < na; k++)
      p[m++] = a[k];
  }
  *v = p;
  *n = sort_unique(p, m);
  return ORDO_OK;
}

int ordo_ledger_batch_footprint(const ordo_ledger_batch *b,
                                const char *const *reads, size_t nreads,
                                const char *const *writes, size_t nwrites,
                                ordo_ledger_footprint *out) {
  if (out != NULL)
    memset(out, 0, sizeof *out);
  if (b == NULL || out == NULL || !strings_ok(reads, nreads) ||
      !strings_ok(writes, nwrites))
    return ordo__set_last_error(ORDO_E_INVAL, "footprint: NULL argument");
  if (union_of(b, 0, reads, nreads, &out->reads, &out->nreads) != ORDO_OK ||
      union_of(b, 1, writes, nwrites, &out->writes, &out->nwrites) !=
          ORDO_OK) {
    ordo_ledger_footprint_clear(out);
    return ordo__set_last_error(ORDO_E_NOMEM, "footprint: out of memory");
  }
  return ORDO_OK;
}

void ordo_ledger_footprint_clear(ordo_ledger_footprint *fp) {
  if (fp == NULL)
    return;
  free(fp->reads);
  free(fp->writes);
  memset(fp, 0, sizeof *fp);
}

int ordo_ledger_spec_lock(const ordo_ledger_batch *b, ordo_queue_batch_spec *sp,
                          ordo_ledger_footprint *fp) {
  int rc = ordo_ledger_batch_footprint(b, sp->reads, sp->nreads, sp->writes,
                                       sp->nwrites, fp);
  if (rc != ORDO_OK)
    return rc;
  sp->reads = fp->reads;
  sp->nreads = fp->nreads;
  sp->writes = fp->writes;
  sp->nwrites = fp->nwrites;
  sp->ledger_id = ordo_ledger_batch_id(b);
  return ORDO_OK;
}

/* 1 when every input and output of b is an address the journal can keep:
 * printable ASCII (Sawtooth's are hex), 1..4096 bytes as a declared one. */
static int batch_addresses_ok(const ordo_ledger_batch *b) {
  size_t i, k, nt = ordo_ledger_batch_txn_count(b);
  for (i = 0; i < nt; i++) {
    ordo_ledger_txn_header h;
    ordo_ledger_txn_header_get(ordo_ledger_batch_txn(b, i), &h);
    for (k = 0; k < h.ninputs + h.noutputs; k++) {
      const char *a = k < h.ninputs ? h.inputs[k] : h.outputs[k - h.ninputs];
      size_t j, len = strlen(a);
      if (len == 0 || len > 4096)
        return 0;
      for (j = 0; j < len; j++)
        if ((unsigned char)a[j] < 0x20 || (unsigned char)a[j] > 0x7e)
          return 0;
    }
  }
  return 1;
}

int ordo_ledger_spec_from_batch(const ordo_ledger_batch *b,
                                ordo_queue_batch_spec *sp,
                                ordo_ledger_footprint *fp) {
  if (!batch_addresses_ok(b))
    return ordo__set_last_error(ORDO_E_INVAL, "a transaction's inputs and "
                                "outputs must be addresses of 1..4096 "
                                "printable ASCII characters");
  return ordo_ledger_spec_lock(b, sp, fp);
}

int ordo_ledger_spec_from_payload(ordo_queue_batch_spec *sp, int flags,
                                  ordo_ledger_batchlist **bl,
                                  ordo_ledger_footprint *fp) {
  size_t n;
  int rc;
  *bl = NULL;
  rc = ordo_ledger_batchlist_decode(sp->payload, sp->payload_len, bl);
  n = rc == ORDO_OK ? ordo_ledger_batchlist_count(*bl) : 0;
  if ((flags & ORDO_LEDGER_PAYLOAD_OPAQUE_OK) && rc != ORDO_E_NOMEM &&
      n == 0) {
    ordo_ledger_batchlist_free(*bl);
    *bl = NULL;
    return ORDO_OK; /* not a Sawtooth batch: opaque to the queue */
  }
  if (rc == ORDO_OK && n != 1)
    rc = ordo__set_last_error(ORDO_E_INVAL, "a BatchList of exactly one "
                              "batch is expected, not %zu", n);
  if (rc == ORDO_OK && (flags & ORDO_LEDGER_PAYLOAD_VALIDATE))
    rc = ordo_ledger_batchlist_validate(*bl);
  if (rc == ORDO_OK)
    rc = ordo_ledger_spec_from_batch(ordo_ledger_batchlist_batch(*bl, 0), sp,
                                     fp);
  if (rc != ORDO_OK) {
    ordo_ledger_batchlist_free(*bl);
    *bl = NULL;
  }
  return rc;
}

/* ---- batch lists -------------------------------------------------------- */

int ordo_ledger_batchlist_encode(const ordo_ledger_batch *const *batches,
                                 size_t n, unsigned char **out,
                                 size_t *out_len) {
  Ordo__Sawtooth__BatchList bl = ORDO__SAWTOOTH__BATCH_LIST__INIT;
  Ordo__Sawtooth__Batch *bs = NULL, **bp = NULL;
  Ordo__Sawtooth__Transaction *ts = NULL, **tp = NULL;
  size_t i, j, k, ntx = 0, len;
  unsigned char *buf;

  if (out != NULL)
    *out = NULL;
  if (out_len != NULL)
    *out_len = 0;
  if ((batches == NULL && n > 0) || out == NULL || out_len == NULL)
    return ordo__set_last_error(ORDO_E_INVAL, "batchlist: NULL argument");
  for (i = 0; i < n; i++) {
    if (batches[i] == NULL)
      return ordo__set_last_error(ORDO_E_INVAL, "batchlist: batch %zu is NULL",
                                  i);
    ntx += batches[i]->ntxns;
  }
  /* The messages only point into the batches: nothing is copied. */
  bs = calloc(n ? n : 1, sizeof *bs);
  bp = calloc(n ? n : 1, sizeof *bp);
  ts = calloc(ntx ? ntx : 1, sizeof *ts);
  tp = calloc(ntx ? ntx : 1, sizeof *tp);
  if (bs == NULL || bp == NULL || ts == NULL || tp == NULL)
    goto nomem;
  for (i = 0, k = 0; i < n; i++) {
    const ordo_ledger_batch *b = batches[i];
    ordo__sawtooth__batch__init(&bs[i]);
    bs[i].header.data = b->header;
    bs[i].header.len = b->header_len;
    bs[i].header_signature = b->id;
    bs[i].trace = b->trace != 0;
    bs[i].n_transactions = b->ntxns;
    bs[i].transactions = &tp[k];
    for (j = 0; j < b->ntxns; j++, k++) {
      const ordo_ledger_txn *t = b->txns[j];
      ordo__sawtooth__transaction__init(&ts[k]);
      ts[k].header.data = t->header;
      ts[k].header.len = t->header_len;
      ts[k].header_signature = t->id;
      ts[k].payload.data = t->payload;
      ts[k].payload.len = t->payload_len;
      tp[k] = &ts[k];
    }
    bp[i] = &bs[i];
  }
  bl.n_batches = n;
  bl.batches = bp;
  len = ordo__sawtooth__batch_list__get_packed_size(&bl);
  if ((buf = malloc(len ? len : 1)) == NULL)
    goto nomem;
  ordo__sawtooth__batch_list__pack(&bl, buf);
  free(bs);
  free(bp);
  free(ts);
  free(tp);
  *out = buf;
  *out_len = len;
  return ORDO_OK;

nomem:
  free(bs);
  free(bp);
  free(ts);
  free(tp);
  return ordo__set_last_error(ORDO_E_NOMEM, "batchlist: out of memory");
}

/* ---- addresses ---------------------------------------------------------- */

int ordo_ledger_namespace(const char *family_name,
                          char out[ORDO_LEDGER_NAMESPACE_SIZE]) {
  char hex[ORDO__HEX_ENCODED_SIZE(ORDO__SHA512_BYTES)];
  int rc;

  if (family_name == NULL || out == NULL)
    return ordo__set_last_error(ORDO_E_INVAL, "namespace: NULL argument");
  if ((rc = ordo__ledger_sha512_hex(family_name, strlen(family_name), hex)))
    return ordo__set_last_error(rc, "namespace: hash failed");
  memcpy(out, hex, ORDO_LEDGER_NAMESPACE_LEN);
  out[ORDO_LEDGER_NAMESPACE_LEN] = '\0';
  return ORDO_OK;
}

int ordo_ledger_address(const char *ns, const char *key,
                        char out[ORDO_LEDGER_ADDRESS_SIZE]) {
  char hex[ORDO__HEX_ENCODED_SIZE(ORDO__SHA512_BYTES)];
  int rc;

  if (ns == NULL || key == NULL || out == NULL ||
      strlen(ns) != ORDO_LEDGER_NAMESPACE_LEN)
    return ordo__set_last_error(ORDO_E_INVAL,
                                "address: NULL argument or namespace not 6 "
                                "characters");
  if ((rc = ordo__ledger_sha512_hex(key, strlen(key), hex)) != ORDO_OK)
    return ordo__set_last_error(rc, "address: hash failed");
  memcpy(out, ns, ORDO_LEDGER_NAMESPACE_LEN);
  /* The last 64 of SHA-512's 128 hex digits, NUL included. */
  memcpy(out + ORDO_LEDGER_NAMESPACE_LEN, hex + 64, 65);
  return ORDO_OK;
}

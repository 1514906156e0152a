/*
 * workload.c — a workload file's batch as a signed Sawtooth batch of one of
 * ordo's two families (ledger.h, "Workloads as Sawtooth batches").
 *
 * ordo-rw says exactly what a workload line says: one transaction whose
 * payload lists the keys it reads and writes. intkey has one name per
 * transaction, so a batch becomes one transaction per written key (set the
 * first time the converter sees the key, inc by 1 after), or, for a batch
 * that only reads, a set of a name of its own; the read keys are declared
 * as inputs either way, so the queuer locks on them. A line with
 * "outcome":"invalid" gets a payload its family refuses, so the ledger
 * itself rejects it.
 */
#include "base/base.h"
#include "ledger/ledger.h"
#include "crypto/crypto.h"
#include "runtime/runtime.h"

#include <stdlib.h>
#include <string.h>

/* Names the converter has set (intkey), in a small open-addressing set. */
struct ordo_ledger_conv {
  ordo_ledger_family family;
  const ordo_ledger_signer *signer;
  char **seen;
  size_t cap, n;
};

int ordo_ledger_family_parse(const char *name, ordo_ledger_family *out) {
  if (name != NULL && strcmp(name, ORDO_LEDGER_RW_FAMILY) == 0)
    *out = ORDO_LEDGER_FAMILY_RW;
  else if (name != NULL && strcmp(name, ORDO_LEDGER_INTKEY_FAMILY) == 0)
    *out = ORDO_LEDGER_FAMILY_INTKEY;
  else if (name != NULL && strcmp(name, "mixed") == 0)
    *out = ORDO_LEDGER_FAMILY_MIXED;
  else
    return ordo__set_last_error(ORDO_E_INVAL, "unknown family '%s' (ordo-rw, "
                                "intkey or mixed)", name != NULL ? name : "(null)");
  return ORDO_OK;
}

int ordo_ledger_conv_new(ordo_ledger_family family,
                         const ordo_ledger_signer *signer,
                         ordo_ledger_conv **out) {
  ordo_ledger_conv *c;
  if (out == NULL || signer == NULL ||
      (family != ORDO_LEDGER_FAMILY_RW && family != ORDO_LEDGER_FAMILY_INTKEY &&
       family != ORDO_LEDGER_FAMILY_MIXED))
    return ordo__set_last_error(ORDO_E_INVAL, "conv: bad argument");
  if ((c = calloc(1, sizeof(*c))) == NULL)
    return ordo__set_last_error(ORDO_E_NOMEM, NULL);
  c->family = family;
  c->signer = signer;
  *out = c;
  return ORDO_OK;
}

void ordo_ledger_conv_free(ordo_ledger_conv *c) {
  if (c == NULL)
    return;
  for (size_t i = 0; i < c->cap; i++)
    free(c->seen[i]);
  free(c->seen);
  free(c);
}

static size_t str_hash(const char *s) {
  size_t h = 1469598103934665603ull;
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

/* 1 if name was seen before; else records it and returns 0. -1: no memory. */
static int seen_add(ordo_ledger_conv *c, const char *name) {
  size_t i;
  if ((c->n + 1) * 2 > c->cap) {
    size_t ncap = c->cap ? c->cap * 2 : 64;
    char **ns = calloc(ncap, sizeof(*ns));
    if (ns == NULL)
      return -1;
    for (i = 0; i < c->cap; i++)
      if (c->seen[i] != NULL) {
        size_t j = str_hash(c->seen[i]) & (ncap - 1);
        while (ns[j] != NULL)
          j = (j + 1) & (ncap - 1);
        ns[j] = c->seen[i];
      }
    free(c->seen);
    c->seen = ns;
    c->cap = ncap;
  }
  for (i = str_hash(name) & (c->cap - 1); c->seen[i] != NULL;
       i = (i + 1) & (c->cap - 1))
    if (strcmp(c->seen[i], name) == 0)
      return 1;
  if ((c->seen[i] = strdup(name)) == NULL)
    return -1;
  c->n++;
  return 0;
}

/* intkey names are at most 20 characters: a longer key becomes the first
 * 20 hex digits of its SHA-512. */
static int intkey_name(const char *key, char out[ORDO_LEDGER_INTKEY_MAX_NAME + 1]) {
  unsigned char d[64];
  static const char hex[] = "0123456789abcdef";
  if (strlen(key) <= ORDO_LEDGER_INTKEY_MAX_NAME) {
    strcpy(out, key);
    return ORDO_OK;
  }
  if (ordo__crypto_sha512(key, strlen(key), d) != ORDO_OK)
    return ordo__set_last_error(ORDO_E_CRYPTO, "sha512 failed");
  for (int i = 0; i < ORDO_LEDGER_INTKEY_MAX_NAME / 2; i++) {
    out[2 * i] = hex[d[i] >> 4];
    out[2 * i + 1] = hex[d[i] & 15];
  }
  out[ORDO_LEDGER_INTKEY_MAX_NAME] = '\0';
  return ORDO_OK;
}

void ordo_ledger_built_clear(ordo_ledger_built *b) {
  if (b == NULL)
    return;
  free(b->batchlist);
  ordo__free_strv(b->reads, b->nreads);
  ordo__free_strv(b->writes, b->nwrites);
  memset(b, 0, sizeof(*b));
}

/* A batch's family: the converter's, or for "mixed" one in four intkey,
 * chosen by the batch id so that every run converts a line alike. */
static ordo_ledger_family family_of(const ordo_ledger_conv *c,
                                    const ordo_workload_batch *wb) {
  if (c->family != ORDO_LEDGER_FAMILY_MIXED)
    return c->family;
  return str_hash(wb->id) % 4 == 0 ? ORDO_LEDGER_FAMILY_INTKEY
                                   : ORDO_LEDGER_FAMILY_RW;
}

void ordo_ledger_built_spec(const ordo_workload_batch *wb,
                            const ordo_ledger_built *b,
                            ordo_queue_batch_spec *sp) {
  memset(sp, 0, sizeof(*sp));
  sp->id = wb->id;
  sp->service = wb->service;
  sp->reads = (const char *const *)b->reads;
  sp->nreads = b->nreads;
  sp->writes = (const char *const *)b->writes;
  sp->nwrites = b->nwrites;
  sp->deps = (const char *const *)wb->deps;
  sp->ndeps = wb->ndeps;
  sp->payload = b->batchlist;
  sp->payload_len = b->batchlist_len;
  sp->ledger_id = b->batch_id; /* one signed batch, one queue batch */
}

/* The address of key in a family. */
static int key_address(ordo_ledger_family fam, const char *key,
                       char out[ORDO_LEDGER_ADDRESS_SIZE]) {
  char name[ORDO_LEDGER_INTKEY_MAX_NAME + 1];
  int rc;
  if (fam == ORDO_LEDGER_FAMILY_RW)
    return ordo_ledger_rw_address(key, out);
  if ((rc = intkey_name(key, name)) != ORDO_OK)
    return rc;
  return ordo_ledger_intkey_address(name, out);
}

/* Addresses of keys[0..n) into *out; *count is set as soon as *out exists,
 * so that a failure half-way is freed by ordo_ledger_built_clear. */
static int addr_list(ordo_ledger_family fam, char *const *keys, size_t n,
                     char ***out, size_t *count) {
  *out = NULL;
  *count = 0;
  if (n == 0)
    return ORDO_OK;
  if ((*out = calloc(n, sizeof(**out))) == NULL)
    return ordo__set_last_error(ORDO_E_NOMEM, NULL);
  *count = n;
  for (size_t i = 0; i < n; i++) {
    int rc;
    if (((*out)[i] = malloc(ORDO_LEDGER_ADDRESS_SIZE)) == NULL)
      return ordo__set_last_error(ORDO_E_NOMEM, NULL);
    if ((rc = key_address(fam, keys[i], (*out)[i])) != ORDO_OK)
      return rc;
  }
  return ORDO_OK;
}

/* One transaction: inputs = reads and writes, outputs = writes. */
static int txn_make(const ordo_ledger_conv *c, const ordo_ledger_built *b,
                    const char *family, const char *version,
                    const char *const *outputs, size_t noutputs,
                    const void *payload, size_t len, ordo_ledger_txn **out) {
  const char **inputs = calloc(b->nreads + b->nwrites + 1, sizeof(*inputs));
  ordo_ledger_txn_spec sp;
  size_t k = 0, i;
  int rc;
  if (inputs == NULL)
    return ordo__set_last_error(ORDO_E_NOMEM, NULL);
  for (i = 0; i < b->nreads; i++)
    inputs[k++] = b->reads[i];
  for (i = 0; i < b->nwrites; i++)
    inputs[k++] = b->writes[i];
  for (i = 0; i < noutputs; i++) { /* an intkey read-only name: input too */
    size_t j;
    for (j = 0; j < k && strcmp(inputs[j], outputs[i]) != 0; j++)
      ;
    if (j == k && k < b->nreads + b->nwrites + 1)
      inputs[k++] = outputs[i];
  }
  sp = (ordo_ledger_txn_spec){.family_name = family,
                              .family_version = version,
                              .inputs = inputs,
                              .ninputs = k,
                              .outputs = outputs,
                              .noutputs = noutputs,
                              .payload = payload,
                              .payload_len = len};
  rc = ordo_ledger_txn_build(c->signer, NULL, &sp, out);
  free(inputs);
  return rc;
}

static int txns_rw(const ordo_ledger_conv *c, const ordo_workload_batch *wb,
                   const ordo_ledger_built *b, ordo_ledger_txn **txns,
                   size_t *n) {
  char *payload = NULL;
  int rc;
  if (wb->invalid) {
    /* Not an ordo-rw payload: the family refuses the transaction. */
    if ((payload = strdup("{\"reads\":\"not a list\"}")) == NULL)
      return ordo__set_last_error(ORDO_E_NOMEM, NULL);
  } else if ((rc = ordo_ledger_rw_encode((const char *const *)wb->reads,
                                         wb->nreads,
                                         (const char *const *)wb->writes,
                                         wb->nwrites, &payload)) != ORDO_OK) {
    return rc;
  }
  rc = txn_make(c, b, ORDO_LEDGER_RW_FAMILY, ORDO_LEDGER_RW_VERSION,
                (const char *const *)b->writes, b->nwrites, payload,
                strlen(payload), &txns[0]);
  free(payload);
  *n = rc == ORDO_OK;
  return rc;
}

static int txns_intkey(ordo_ledger_conv *c, const ordo_workload_batch *wb,
                       const ordo_ledger_built *b, ordo_ledger_txn **txns,
                       size_t *n) {
  size_t i, count = wb->nwrites > 0 ? wb->nwrites : 1;
  int rc = ORDO_OK;
  *n = 0;
  for (i = 0; i < count && rc == ORDO_OK; i++) {
    char name[ORDO_LEDGER_INTKEY_MAX_NAME + 1], addr[ORDO_LEDGER_ADDRESS_SIZE];
    const char *out1[1] = {addr};
    unsigned char *payload = NULL;
    size_t len = 0;
    ordo_ledger_intkey_verb verb;
    uint64_t value;
    int seen;
    if (wb->nwrites > 0) {
      rc = intkey_name(wb->writes[i], name);
    } else {
      /* Only reads: a name of the batch's own, so it still writes once. */
      char key[64];
      snprintf(key, sizeof key, "~read:%s", wb->id);
      rc = intkey_name(key, name);
    }
    if (rc != ORDO_OK || (rc = ordo_ledger_intkey_address(name, addr)))
      break;
    if ((seen = seen_add(c, name)) < 0) {
      rc = ordo__set_last_error(ORDO_E_NOMEM, NULL);
      break;
    }
    verb = seen ? ORDO_LEDGER_INTKEY_INC : ORDO_LEDGER_INTKEY_SET;
    value = 1;
    if (wb->invalid)
      value = (uint64_t)ORDO_LEDGER_INTKEY_MAX_VALUE + 1; /* out of range */
    if ((rc = ordo_ledger_intkey_encode(verb, name, value, &payload, &len)))
      break;
    rc = txn_make(c, b, ORDO_LEDGER_INTKEY_FAMILY, ORDO_LEDGER_INTKEY_VERSION,
                  out1, 1, payload, len, &txns[i]);
    free(payload);
    if (rc == ORDO_OK)
      (*n)++;
  }
  return rc;
}

int ordo_ledger_conv_batch(ordo_ledger_conv *c, const ordo_workload_batch *wb,
                           ordo_ledger_built *out) {
  ordo_ledger_txn **txns = NULL;
  ordo_ledger_batch *batch = NULL;
  ordo_ledger_family fam;
  size_t n = 0, i;
  int rc;

  if (c == NULL || wb == NULL || out == NULL)
    return ordo__set_last_error(ORDO_E_INVAL, "conv: NULL argument");
  memset(out, 0, sizeof(*out));
  fam = family_of(c, wb);
  if ((rc = addr_list(fam, wb->reads, wb->nreads, &out->reads,
                      &out->nreads)) ||
      (rc = addr_list(fam, wb->writes, wb->nwrites, &out->writes,
                      &out->nwrites)))
    goto done;
  if ((txns = calloc(wb->nwrites + 1, sizeof(*txns))) == NULL) {
    rc = ordo__set_last_error(ORDO_E_NOMEM, NULL);
    goto done;
  }
  rc = fam == ORDO_LEDGER_FAMILY_RW ? txns_rw(c, wb, out, txns, &n)
                                    : txns_intkey(c, wb, out, txns, &n);
  if (rc == ORDO_OK &&
      (rc = ordo_ledger_batch_build(c->signer, txns, n, &batch)) == ORDO_OK) {
    const ordo_ledger_batch *one[1] = {batch};
    memcpy(out->batch_id, ordo_ledger_batch_id(batch), ORDO_LEDGER_ID_SIZE);
    rc = ordo_ledger_batchlist_encode(one, 1, &out->batchlist,
                                      &out->batchlist_len);
  }
done:
  for (i = 0; i < n; i++)
    ordo_ledger_txn_free(txns[i]);
  free(txns);
  ordo_ledger_batch_free(batch);
  if (rc != ORDO_OK) {
    char msg[512];
    snprintf(msg, sizeof msg, "%s", ordo_last_error_message());
    ordo_ledger_built_clear(out);
    ordo__set_last_error(rc, "line %zu (%s): %s", wb->line, wb->id, msg);
  }
  return rc;
}

/*
 * rw.c — "ordo-rw", ordo's order-sensitive test family.
 *
 * intkey's inc and dec commute, so a ledger that reorders them leaves the
 * same state and an order violation goes unseen. Here every write is a hash
 * of the writer's id and of everything it read, so the final state records
 * the order in which conflicting transactions were applied.
 */
#include "base/base.h"
#include "ledger/internal.h"
#include "runtime/runtime.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static int rw_namespace(char ns[ORDO_LEDGER_NAMESPACE_SIZE]) {
  return ordo_ledger_namespace(ORDO_LEDGER_RW_FAMILY, ns);
}

int ordo_ledger_rw_address(const char *key,
                           char out[ORDO_LEDGER_ADDRESS_SIZE]) {
  char ns[ORDO_LEDGER_NAMESPACE_SIZE];
  int rc;
  if (key == NULL || out == NULL)
    return ordo__set_last_error(ORDO_E_INVAL, "ordo-rw: NULL argument");
  if ((rc = rw_namespace(ns)) != ORDO_OK)
    return rc;
  return ordo_ledger_address(ns, key, out);
}

static json_t *key_array(const char *const *keys, size_t n) {
  json_t *a = json_array();
  size_t i;
  for (i = 0; a != NULL && i < n; i++)
    if (json_array_append_new(a, json_string(keys[i])) != 0) {
      json_decref(a);
      a = NULL;
    }
  return a;
}

static int keys_ok(const char *const *keys, size_t n) {
  size_t i;
  if (n > ORDO_LEDGER_RW_MAX_KEYS || (n > 0 && keys == NULL))
    return 0;
  for (i = 0; i < n; i++)
    if (keys[i] == NULL || keys[i][0] == '\0')
      return 0;
  return 1;
}

int ordo_ledger_rw_encode(const char *const *reads, size_t nreads,
                          const char *const *writes, size_t nwrites,
                          char **out) {
  json_t *o, *r, *w;
  if (out != NULL)
    *out = NULL;
  if (out == NULL || !keys_ok(reads, nreads) || !keys_ok(writes, nwrites))
    return ordo__set_last_error(ORDO_E_INVAL,
                                "ordo-rw: NULL or empty key, or more than %d",
                                ORDO_LEDGER_RW_MAX_KEYS);
  r = key_array(reads, nreads);
  w = key_array(writes, nwrites);
  /* "o" steals the references, also when json_pack fails. */
  o = (r != NULL && w != NULL) ? json_pack("{s:o,s:o}", "reads", r, "writes", w)
                               : (json_decref(r), json_decref(w), NULL);
  if (o == NULL || (*out = json_dumps(o, JSON_COMPACT)) == NULL) {
    json_decref(o);
    return ordo__set_last_error(ORDO_E_NOMEM, "ordo-rw: out of memory");
  }
  json_decref(o);
  return ORDO_OK;
}

void ordo_ledger_rw_payload_clear(ordo_ledger_rw_payload *p) {
  if (p == NULL)
    return;
  ordo__free_strv(p->reads, p->nreads);
  ordo__free_strv(p->writes, p->nwrites);
  memset(p, 0, sizeof *p);
}

/* Copy the strings of array a into *list; a message in *why if it is not
 * an array of at most MAX_KEYS non-empty strings. */
static int take_keys(const json_t *a, char ***list, size_t *n,
                     const char **why) {
  size_t i, k;
  if (!json_is_array(a) || (k = json_array_size(a)) > ORDO_LEDGER_RW_MAX_KEYS) {
    *why = "is not an array of at most 256 keys";
    return ORDO_E_LEDGER_PAYLOAD;
  }
  if ((*list = calloc(k ? k : 1, sizeof **list)) == NULL)
    return ORDO_E_NOMEM;
  for (i = 0; i < k; i++) {
    const json_t *s = json_array_get(a, i);
    if (!json_is_string(s) || json_string_length(s) == 0) {
      *why = "holds something other than a non-empty string";
      return ORDO_E_LEDGER_PAYLOAD;
    }
    if (((*list)[i] = strdup(json_string_value(s))) == NULL)
      return ORDO_E_NOMEM;
    (*n)++;
  }
  return ORDO_OK;
}

int ordo_ledger_rw_decode(const void *data, size_t len,
                          ordo_ledger_rw_payload *out) {
  const char *why = "is missing";
  json_error_t jerr;
  json_t *o;
  int rc;

  if (out == NULL || (data == NULL && len > 0))
    return ordo__set_last_error(ORDO_E_INVAL, "ordo-rw: NULL argument");
  memset(out, 0, sizeof *out);
  if (ordo__ledger_payload_over("ordo-rw", len, ORDO_LEDGER_RW_MAX_PAYLOAD))
    return ORDO_E_LEDGER_PAYLOAD;
  o = json_loadb(data ? data : "", len, JSON_REJECT_DUPLICATES, &jerr);
  if (o == NULL || !json_is_object(o) || json_object_size(o) != 2) {
    json_decref(o);
    return ordo__set_last_error(ORDO_E_LEDGER_PAYLOAD,
                                "ordo-rw: payload is not a JSON object of "
                                "\"reads\" and \"writes\"");
  }
  rc = ORDO_E_LEDGER_PAYLOAD;
  if (json_object_get(o, "reads") != NULL &&
      (rc = take_keys(json_object_get(o, "reads"), &out->reads, &out->nreads,
                      &why)) == ORDO_OK) {
    why = "is missing";
    rc = ORDO_E_LEDGER_PAYLOAD;
    if (json_object_get(o, "writes") != NULL)
      rc = take_keys(json_object_get(o, "writes"), &out->writes,
                     &out->nwrites, &why);
    if (rc != ORDO_OK) {
      json_decref(o);
      ordo_ledger_rw_payload_clear(out);
      return ordo__set_last_error(rc, "ordo-rw: \"writes\" %s",
                                  rc == ORDO_E_NOMEM ? "(out of memory)" : why);
    }
  } else if (rc != ORDO_OK) {
    json_decref(o);
    ordo_ledger_rw_payload_clear(out);
    return ordo__set_last_error(rc, "ordo-rw: \"reads\" %s",
                                rc == ORDO_E_NOMEM ? "(out of memory)" : why);
  }
  json_decref(o);
  return ORDO_OK;
}

/* Append len bytes to the growing buffer *buf (*used of *cap). */
static int append(unsigned char **buf, size_t *used, size_t *cap,
                  const void *p, size_t len) {
  if (*cap - *used < len) {
    unsigned char *nb = ordo__grow(*buf, cap, *used + len, 256);
    if (nb == NULL)
      return ORDO_E_NOMEM;
    *buf = nb;
  }
  if (len)
    memcpy(*buf + *used, p, len);
  *used += len;
  return ORDO_OK;
}

int ordo_ledger_rw_apply(const char *txn_id, const void *payload, size_t len,
                         const ordo_ledger_state *state) {
  char addr[ORDO_LEDGER_ADDRESS_SIZE];
  unsigned char digest[ORDO__SHA256_BYTES];
  ordo_ledger_rw_payload p;
  unsigned char *buf = NULL;
  size_t used = 0, cap = 0, i;
  int rc;

  if (txn_id == NULL || state == NULL || state->get == NULL ||
      state->set == NULL)
    return ordo__set_last_error(ORDO_E_INVAL, "ordo-rw: NULL argument");
  if ((rc = ordo_ledger_rw_decode(payload, len, &p)) != ORDO_OK)
    return rc;
  /* Every read first, so no write can be seen by a read of the same txn. */
  rc = append(&buf, &used, &cap, txn_id, strlen(txn_id));
  for (i = 0; rc == ORDO_OK && i < p.nreads; i++) {
    const unsigned char *v = NULL;
    unsigned char be[4];
    size_t vlen = 0;
    if ((rc = ordo_ledger_rw_address(p.reads[i], addr)) != ORDO_OK)
      break;
    rc = state->get(state->ud, addr, &v, &vlen);
    if (rc == ORDO_E_NOT_FOUND) {
      vlen = 0;
      rc = ORDO_OK;
    } else if (rc != ORDO_OK) {
      rc = ordo__set_last_error(rc, "ordo-rw: state get of %s failed", addr);
      break;
    } else if (vlen > UINT32_MAX) {
      rc = ordo__set_last_error(ORDO_E_LEDGER, "ordo-rw: value at %s too "
                                               "long", addr);
      break;
    }
    be[0] = (unsigned char)(vlen >> 24);
    be[1] = (unsigned char)(vlen >> 16);
    be[2] = (unsigned char)(vlen >> 8);
    be[3] = (unsigned char)vlen;
    if ((rc = append(&buf, &used, &cap, be, 4)) == ORDO_OK)
      rc = append(&buf, &used, &cap, v, vlen);
    if (rc == ORDO_E_NOMEM)
      rc = ordo__set_last_error(rc, "ordo-rw: out of memory");
  }
  if (rc == ORDO_OK && (rc = ordo__crypto_sha256(buf, used, digest)) != ORDO_OK)
    rc = ordo__set_last_error(rc, "ordo-rw: hash failed");
  for (i = 0; rc == ORDO_OK && i < p.nwrites; i++) {
    if ((rc = ordo_ledger_rw_address(p.writes[i], addr)) != ORDO_OK)
      break;
    if ((rc = state->set(state->ud, addr, digest, sizeof digest)) != ORDO_OK)
      rc = ordo__set_last_error(rc, "ordo-rw: state set of %s failed", addr);
  }
  free(buf);
  ordo_ledger_rw_payload_clear(&p);
  return rc;
}

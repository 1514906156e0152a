/*
 * sealrec.c — a whole record between its plaintext (JSON) and its stored,
 * encrypted form. Shared by the record commands and export/import, so the
 * two can never disagree on how a record is encrypted.
 */
#include "wallet/wallet.h"
#include "wallet/wql.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int seal_str(const ordo__wallet_keys *k, ordo__wallet_field f,
                    const char *s, ordo_storage_buf *out) {
  return ordo__wallet_seal_det(k, f, s, strlen(s), out);
}

/* AAD of a record's value: its encrypted type and name, so a value moved to
 * another record (by someone editing the database) no longer opens. */
static int value_aad(const ordo_storage_record *r, ordo_storage_buf *aad) {
  aad->len = r->category.len + r->name.len;
  aad->data = malloc(aad->len ? aad->len : 1);
  if (aad->data == NULL)
    return ORDO_E_NOMEM;
  if (r->category.len > 0)
    memcpy(aad->data, r->category.data, r->category.len);
  if (r->name.len > 0)
    memcpy(aad->data + r->category.len, r->name.data, r->name.len);
  return ORDO_OK;
}

static int plain_copy(const char *s, ordo_storage_buf *out) {
  out->len = strlen(s);
  out->data = malloc(out->len ? out->len : 1);
  if (out->data == NULL)
    return ORDO_E_NOMEM;
  memcpy(out->data, s, out->len);
  return ORDO_OK;
}

static int seal_tag_name(const ordo__wallet_keys *k, const char *name,
                         ordo_storage_tag *t) {
  t->plaintext = name[0] == '~';
  return t->plaintext ? plain_copy(name, &t->name)
                      : seal_str(k, ORDO__FIELD_TAG_NAME, name, &t->name);
}

static int seal_tags(const ordo__wallet_keys *k, json_t *tags, int names_only,
                     ordo_storage_record *r, char *err, size_t errlen) {
  size_t n = names_only ? json_array_size(tags) : json_object_size(tags);
  r->tags = calloc(n ? n : 1, sizeof(*r->tags));
  if (r->tags == NULL)
    return ORDO_E_NOMEM;
  const char *name;
  json_t *v;
  size_t i;
  int rc;
  if (names_only) {
    json_array_foreach(tags, i, v) {
      if (!json_is_string(v)) {
        snprintf(err, errlen, "tag names must be strings");
        return ORDO_E_INVAL;
      }
      if ((rc = seal_tag_name(k, json_string_value(v), &r->tags[r->ntags++])) != ORDO_OK)
        return rc;
    }
    return ORDO_OK;
  }
  json_object_foreach(tags, name, v) {
    if (!json_is_string(v)) {
      snprintf(err, errlen, "tag '%s': values must be strings", name);
      return ORDO_E_INVAL;
    }
    ordo_storage_tag *t = &r->tags[r->ntags++];
    if ((rc = seal_tag_name(k, name, t)) != ORDO_OK)
      return rc;
    rc = t->plaintext ? plain_copy(json_string_value(v), &t->value)
                      : seal_str(k, ORDO__FIELD_TAG_VALUE, json_string_value(v),
                                 &t->value);
    if (rc != ORDO_OK)
      return rc;
  }
  return ORDO_OK;
}

int ordo__wallet_seal_record(const ordo__wallet_keys *k, const char *type,
                             const char *name, const char *value, json_t *tags,
                             int names_only, ordo_storage_record *r, char *err,
                             size_t errlen) {
  int rc;
  if (type != NULL && (rc = seal_str(k, ORDO__FIELD_TYPE, type, &r->category)) != ORDO_OK)
    return rc;
  if (name != NULL && (rc = seal_str(k, ORDO__FIELD_NAME, name, &r->name)) != ORDO_OK)
    return rc;
  if (value != NULL) {
    ordo_storage_buf aad;
    if ((rc = value_aad(r, &aad)) != ORDO_OK)
      return rc;
    rc = ordo__wallet_seal_value(k, value, strlen(value), &aad, &r->value);
    ordo_storage_buf_clear(&aad);
    if (rc != ORDO_OK)
      return rc;
  }
  if (tags != NULL)
    return seal_tags(k, tags, names_only, r, err, errlen);
  return ORDO_OK;
}

static json_t *json_string_buf(const ordo_storage_buf *b) {
  return json_stringn((const char *)b->data, b->len);
}

/* Open one field into o[key]; 0 on success. */
static int open_into(json_t *o, const char *key, const ordo__wallet_keys *k,
                     ordo__wallet_field f, const ordo_storage_buf *ct) {
  ordo_storage_buf pt = {0};
  if (ordo__wallet_open_det(k, f, ct, &pt) != ORDO_OK)
    return -1;
  int rc = json_object_set_new(o, key, json_string_buf(&pt));
  ordo_storage_buf_clear(&pt);
  return rc;
}

json_t *ordo__wallet_open_record(const ordo__wallet_keys *k,
                                 const ordo_storage_record *r, int flags) {
  json_t *o = json_object();
  ordo_storage_buf pt = {0}, aad = {0};
  if (o == NULL)
    return NULL;
  if ((flags & ORDO__OPEN_TYPE) && open_into(o, "type", k, ORDO__FIELD_TYPE, &r->category))
    goto fail;
  if (open_into(o, "name", k, ORDO__FIELD_NAME, &r->name))
    goto fail;
  if ((flags & ORDO__OPEN_VALUE) && r->value.data != NULL) {
    if (value_aad(r, &aad) != ORDO_OK ||
        ordo__wallet_open_value(k, &r->value, &aad, &pt) != ORDO_OK)
      goto fail;
    json_object_set_new(o, "value", json_string_buf(&pt));
    ordo_storage_buf_clear(&pt);
    ordo_storage_buf_clear(&aad);
  }
  if (flags & ORDO__OPEN_TAGS) {
    json_t *tags = json_object();
    if (tags == NULL || json_object_set_new(o, "tags", tags) != 0)
      goto fail;
    for (size_t i = 0; i < r->ntags; i++) {
      const ordo_storage_tag *t = &r->tags[i];
      ordo_storage_buf tn = {0};
      if (t->plaintext) {
        char *n = strndup((const char *)t->name.data, t->name.len);
        if (n == NULL)
          goto fail;
        json_object_set_new(tags, n, json_string_buf(&t->value));
        free(n);
        continue;
      }
      if (ordo__wallet_open_det(k, ORDO__FIELD_TAG_NAME, &t->name, &tn) != ORDO_OK)
        goto fail;
      int bad = open_into(tags, (const char *)tn.data, k, ORDO__FIELD_TAG_VALUE, &t->value);
      ordo_storage_buf_clear(&tn);
      if (bad)
        goto fail;
    }
  }
  return o;
fail:
  ordo_storage_buf_clear(&pt);
  ordo_storage_buf_clear(&aad);
  json_decref(o);
  return NULL;
}

/* WQL leaves on encrypted tags get encrypted names and values, in place. */
static int seal_leaf(ordo_storage_query *leaf, void *ud) {
  const ordo__wallet_keys *k = ud;
  if (leaf->plaintext)
    return ORDO_OK;
  ordo_storage_buf ct;
  int rc = ordo__wallet_seal_det(k, ORDO__FIELD_TAG_NAME, leaf->tag_name.data,
                                 leaf->tag_name.len, &ct);
  if (rc != ORDO_OK)
    return rc;
  ordo_storage_buf_clear(&leaf->tag_name);
  leaf->tag_name = ct;
  for (size_t i = 0; i < leaf->nvalues; i++) {
    rc = ordo__wallet_seal_det(k, ORDO__FIELD_TAG_VALUE, leaf->values[i].data,
                               leaf->values[i].len, &ct);
    if (rc != ORDO_OK)
      return rc;
    ordo_storage_buf_clear(&leaf->values[i]);
    leaf->values[i] = ct;
  }
  return ORDO_OK;
}

int ordo__wallet_seal_query(const ordo__wallet_keys *k, ordo_storage_query *q) {
  return ordo__wql_walk_leaves(q, seal_leaf, (void *)k);
}

int ordo__wallet_parse_query(const ordo__wallet_keys *k, const char *wql,
                             ordo_storage_query **out, char **err) {
  int rc = ordo__wql_parse(wql, out, err);
  if (rc == ORDO_OK && (rc = ordo__wallet_seal_query(k, *out)) != ORDO_OK) {
    ordo_storage_query_free(*out);
    *out = NULL;
  }
  return rc;
}

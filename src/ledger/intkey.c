/*
 * intkey.c — Sawtooth's integer-key family: CBOR payloads (libcbor) and the
 * transaction processor's rules, as a pure function over ordo_ledger_state.
 *
 * The rules follow sawtooth-sdk-python's intkey handler: a name is any text
 * of at most 20 characters (code points, as Python's len(); the empty name
 * is legal), values in 0..2^32-1, "set" only of an absent name, "inc" and
 * "dec" only of a present one and never out of range. Keys of the payload
 * map other than Verb, Name and Value are ignored, as the handler ignores
 * them. State at a name's
 * address is a CBOR map {name: value}, written with its keys sorted (as the
 * Python handler's sort_keys=True) so that equal states are equal bytes.
 */
#include "ledger/internal.h"
#include "base/utf8.h"
#include "runtime/runtime.h"

#include <cbor.h>
#include <stdlib.h>
#include <string.h>

static const char *const verbs[] = {"set", "inc", "dec"};

/* A definite text string equal to s? */
static int text_is(const cbor_item_t *it, const char *s) {
  size_t n = strlen(s);
  return cbor_isa_string(it) && cbor_string_is_definite(it) &&
         cbor_string_length(it) == n &&
         memcmp(cbor_string_handle(it), s, n) == 0;
}

/* A definite text string without NUL bytes, copied into a new C string;
 * NULL if it is not one (or out of memory: *nomem set). */
static char *text_dup(const cbor_item_t *it, int *nomem) {
  size_t n;
  char *s;
  if (!cbor_isa_string(it) || !cbor_string_is_definite(it))
    return NULL;
  n = cbor_string_length(it);
  if (n > 0 && memchr(cbor_string_handle(it), '\0', n) != NULL)
    return NULL;
  if ((s = malloc(n + 1)) == NULL) {
    *nomem = 1;
    return NULL;
  }
  if (n > 0)
    memcpy(s, cbor_string_handle(it), n);
  s[n] = '\0';
  return s;
}

/*
 * libcbor 0.8 allocates what a header declares before it reads the items
 * (5 bytes can declare an array of 2^32 items), so every declared count is
 * checked against the bytes there are before cbor_load sees them: each item
 * takes at least one byte. The streaming decoder reads one header per call
 * and allocates nothing; nested items are just the headers that follow.
 */
typedef struct scan {
  size_t len;
  int bad;
} scan;

static void scan_array(void *ctx, size_t n) {
  scan *s = ctx;
  if (n > s->len)
    s->bad = 1;
}

static void scan_map(void *ctx, size_t n) {
  scan *s = ctx;
  if (n > s->len / 2)
    s->bad = 1;
}

static int sizes_plausible(const unsigned char *d, size_t len) {
  struct cbor_callbacks cb = cbor_empty_callbacks;
  scan s = {len, 0};
  size_t off = 0;

  cb.array_start = scan_array;
  cb.map_start = scan_map;
  while (off < len && !s.bad) {
    struct cbor_decoder_result r =
        cbor_stream_decode(d + off, len - off, &cb, &s);
    if (r.status != CBOR_DECODER_FINISHED || r.read == 0)
      return 0;
    off += r.read;
  }
  return !s.bad;
}

/* One CBOR item filling all len bytes, or NULL. */
static cbor_item_t *load_one(const void *data, size_t len) {
  struct cbor_load_result res;
  cbor_item_t *it;
  if (data == NULL || len == 0 || !sizes_plausible(data, len))
    return NULL;
  it = cbor_load(data, len, &res);
  if (it != NULL && (res.error.code != CBOR_ERR_NONE || res.read != len)) {
    cbor_decref(&it);
    return NULL;
  }
  return it;
}

/* An unsigned integer in its shortest encoding, as Python's cbor writes it
 * (libcbor's cbor_build_uint64 always takes 8 bytes). */
static cbor_item_t *build_uint(uint64_t v) {
  if (v <= UINT8_MAX)
    return cbor_build_uint8((uint8_t)v);
  if (v <= UINT16_MAX)
    return cbor_build_uint16((uint16_t)v);
  if (v <= UINT32_MAX)
    return cbor_build_uint32((uint32_t)v);
  return cbor_build_uint64(v);
}

/* map[key] = value, consuming our references to the items. */
static int map_put(cbor_item_t *map, cbor_item_t *k, cbor_item_t *v) {
  int ok = k != NULL && v != NULL &&
           cbor_map_add(map, (struct cbor_pair){.key = k, .value = v});
  if (k != NULL)
    cbor_decref(&k);
  if (v != NULL)
    cbor_decref(&v);
  return ok;
}

int ordo_ledger_intkey_address(const char *name,
                               char out[ORDO_LEDGER_ADDRESS_SIZE]) {
  return ordo_ledger_address(ORDO_LEDGER_INTKEY_NAMESPACE, name, out);
}

int ordo_ledger_intkey_encode(ordo_ledger_intkey_verb verb, const char *name,
                              uint64_t value, unsigned char **out,
                              size_t *out_len) {
  cbor_item_t *map;
  unsigned char *buf = NULL;
  size_t cap = 0, len = 0;
  int ok;

  if (out != NULL)
    *out = NULL;
  if (out_len != NULL)
    *out_len = 0;
  if (name == NULL || out == NULL || out_len == NULL ||
      (unsigned)verb > ORDO_LEDGER_INTKEY_DEC)
    return ordo__set_last_error(ORDO_E_INVAL,
                                "intkey: NULL argument or unknown verb");
  if ((map = cbor_new_definite_map(3)) == NULL)
    return ordo__set_last_error(ORDO_E_NOMEM, "intkey: out of memory");
  ok = map_put(map, cbor_build_string("Verb"), cbor_build_string(verbs[verb]));
  ok = ok && map_put(map, cbor_build_string("Name"), cbor_build_string(name));
  ok = ok && map_put(map, cbor_build_string("Value"), build_uint(value));
  if (ok)
    len = cbor_serialize_alloc(map, &buf, &cap);
  cbor_decref(&map);
  if (!ok || len == 0) {
    free(buf);
    return ordo__set_last_error(ORDO_E_NOMEM, "intkey: out of memory");
  }
  *out = buf;
  *out_len = len;
  return ORDO_OK;
}

void ordo_ledger_intkey_payload_clear(ordo_ledger_intkey_payload *p) {
  if (p == NULL)
    return;
  free(p->name);
  memset(p, 0, sizeof *p);
}

int ordo_ledger_intkey_decode(const void *data, size_t len,
                              ordo_ledger_intkey_payload *out) {
  const char *why = NULL;
  cbor_item_t *it;
  struct cbor_pair *pairs;
  int seen = 0, nomem = 0;
  size_t i, v;

  if (out == NULL)
    return ordo__set_last_error(ORDO_E_INVAL, "intkey: out is NULL");
  memset(out, 0, sizeof *out);
  if (ordo__ledger_payload_over("intkey", len, ORDO_LEDGER_INTKEY_MAX_PAYLOAD))
    return ORDO_E_LEDGER_PAYLOAD;
  if ((it = load_one(data, len)) == NULL)
    return ordo__set_last_error(ORDO_E_LEDGER_PAYLOAD,
                                "intkey: payload is not one CBOR item");
  if (!cbor_isa_map(it) || cbor_map_size(it) < 3) {
    why = "payload is not a map of Verb, Name and Value";
    goto fail;
  }
  pairs = cbor_map_handle(it);
  for (i = 0; i < cbor_map_size(it) && why == NULL; i++) {
    const cbor_item_t *k = pairs[i].key, *val = pairs[i].value;
    if (text_is(k, "Verb") && !(seen & 1)) {
      seen |= 1;
      for (v = 0; v < 3 && !text_is(val, verbs[v]); v++)
        ;
      if (v == 3)
        why = "Verb is not \"set\", \"inc\" or \"dec\"";
      out->verb = (ordo_ledger_intkey_verb)v;
    } else if (text_is(k, "Name") && !(seen & 2)) {
      seen |= 2;
      if ((out->name = text_dup(val, &nomem)) == NULL)
        why = nomem ? "out of memory" : "Name is not a text string";
    } else if (text_is(k, "Value") && !(seen & 4)) {
      seen |= 4;
      if (!cbor_isa_uint(val))
        why = "Value is not an unsigned integer";
      else
        out->value = cbor_get_int(val);
    } else if (text_is(k, "Verb") || text_is(k, "Name") ||
               text_is(k, "Value")) {
      why = "Verb, Name or Value twice";
    }
    /* Any other key: ignored, as the Python handler reads only these. */
  }
  if (why == NULL && seen != 7)
    why = "payload is not a map of Verb, Name and Value";
  if (why != NULL)
    goto fail;
  cbor_decref(&it);
  return ORDO_OK;

fail:
  cbor_decref(&it);
  ordo_ledger_intkey_payload_clear(out);
  return ordo__set_last_error(nomem ? ORDO_E_NOMEM : ORDO_E_LEDGER_PAYLOAD,
                              "intkey: %s", why);
}

/* ---- apply -------------------------------------------------------------- */

/* The characters of s as Python's len() counts them (code points), or -1
 * when s is not valid UTF-8 (overlong forms and surrogates included), which
 * Python's CBOR decoder would refuse. libcbor already refuses such text
 * when it decodes; the check keeps the count from ever trusting it. */
static long utf8_chars(const char *s) {
  const unsigned char *p = (const unsigned char *)s;
  size_t n = strlen(s), k;
  long count = 0;
  for (size_t i = 0; i < n; i += k, count++)
    if ((k = ordo__utf8_seq(p + i, n - i)) == 0)
      return -1;
  return count;
}

typedef struct entry {
  const unsigned char *name; /* borrowed from the decoded state map */
  size_t len;
  uint64_t value;
} entry;

static int entry_cmp(const void *a, const void *b) {
  const entry *x = a, *y = b;
  size_t n = x->len < y->len ? x->len : y->len;
  int c = n ? memcmp(x->name, y->name, n) : 0;
  return c != 0 ? c : (x->len > y->len) - (x->len < y->len);
}

/*
 * The state at addr, decoded into *state (NULL when absent) and checked to
 * be an intkey map; *cur set to the entry for name, or -1.
 */
static int load_state(const ordo_ledger_state *st, const char *addr,
                      const char *name, cbor_item_t **state, long *cur) {
  const unsigned char *val;
  struct cbor_pair *pairs;
  size_t len, i, n;
  int rc;

  *state = NULL;
  *cur = -1;
  rc = st->get(st->ud, addr, &val, &len);
  if (rc == ORDO_E_NOT_FOUND)
    return ORDO_OK;
  if (rc != ORDO_OK)
    return ordo__set_last_error(rc, "intkey: state get of %s failed", addr);
  if ((*state = load_one(val, len)) == NULL || !cbor_isa_map(*state))
    goto bad;
  pairs = cbor_map_handle(*state);
  n = cbor_map_size(*state);
  for (i = 0; i < n; i++) {
    if (!cbor_isa_string(pairs[i].key) ||
        !cbor_string_is_definite(pairs[i].key) ||
        !cbor_isa_uint(pairs[i].value) ||
        cbor_get_int(pairs[i].value) > ORDO_LEDGER_INTKEY_MAX_VALUE)
      goto bad;
    if (text_is(pairs[i].key, name))
      *cur = (long)i;
  }
  return ORDO_OK;

bad:
  if (*state != NULL)
    cbor_decref(state);
  return ordo__set_last_error(ORDO_E_LEDGER,
                              "intkey: state at %s is not an intkey map", addr);
}

/* Write state with name = value (replacing or adding), keys sorted. */
static int store_state(const ordo_ledger_state *st, const char *addr,
                       const cbor_item_t *state, long cur, const char *name,
                       uint64_t value) {
  size_t n = state ? cbor_map_size(state) : 0, total = n + (cur < 0), i;
  struct cbor_pair *pairs = state ? cbor_map_handle(state) : NULL;
  entry *e = calloc(total, sizeof *e);
  cbor_item_t *map = NULL;
  unsigned char *buf = NULL;
  size_t cap = 0, len = 0;
  int rc, ok = e != NULL;

  for (i = 0; ok && i < n; i++) {
    e[i].name = cbor_string_handle(pairs[i].key);
    e[i].len = cbor_string_length(pairs[i].key);
    e[i].value = (long)i == cur ? value : cbor_get_int(pairs[i].value);
  }
  if (ok && cur < 0) {
    e[n].name = (const unsigned char *)name;
    e[n].len = strlen(name);
    e[n].value = value;
  }
  if (ok) {
    qsort(e, total, sizeof *e, entry_cmp);
    ok = (map = cbor_new_definite_map(total)) != NULL;
  }
  for (i = 0; ok && i < total; i++)
    ok = map_put(map, cbor_build_stringn((const char *)e[i].name, e[i].len),
                 build_uint(e[i].value));
  if (ok)
    ok = (len = cbor_serialize_alloc(map, &buf, &cap)) > 0;
  if (map != NULL)
    cbor_decref(&map);
  free(e);
  if (!ok) {
    free(buf);
    return ordo__set_last_error(ORDO_E_NOMEM, "intkey: out of memory");
  }
  rc = st->set(st->ud, addr, buf, len);
  free(buf);
  if (rc != ORDO_OK)
    return ordo__set_last_error(rc, "intkey: state set of %s failed", addr);
  return ORDO_OK;
}

int ordo_ledger_intkey_apply(const void *payload, size_t len,
                             const ordo_ledger_state *state) {
  ordo_ledger_intkey_payload p;
  char addr[ORDO_LEDGER_ADDRESS_SIZE];
  cbor_item_t *map = NULL;
  uint64_t now = 0, next = 0;
  long cur, nchars;
  int rc;

  if (state == NULL || state->get == NULL || state->set == NULL)
    return ordo__set_last_error(ORDO_E_INVAL, "intkey: NULL state");
  if ((rc = ordo_ledger_intkey_decode(payload, len, &p)) != ORDO_OK)
    return rc;
  if ((nchars = utf8_chars(p.name)) < 0) {
    rc = ordo__set_last_error(ORDO_E_LEDGER_INVALID_TXN,
                              "intkey: Name is not valid UTF-8");
    goto done;
  }
  if (nchars > ORDO_LEDGER_INTKEY_MAX_NAME) {
    rc = ordo__set_last_error(ORDO_E_LEDGER_INVALID_TXN,
                              "intkey: name of %ld characters (at most %d)",
                              nchars, ORDO_LEDGER_INTKEY_MAX_NAME);
    goto done;
  }
  if (p.value > ORDO_LEDGER_INTKEY_MAX_VALUE) {
    rc = ordo__set_last_error(ORDO_E_LEDGER_INVALID_TXN,
                              "intkey: value %llu out of range 0..%lu",
                              (unsigned long long)p.value,
                              (unsigned long)ORDO_LEDGER_INTKEY_MAX_VALUE);
    goto done;
  }
  if ((rc = ordo_ledger_intkey_address(p.name, addr)) != ORDO_OK ||
      (rc = load_state(state, addr, p.name, &map, &cur)) != ORDO_OK)
    goto done;
  if (cur >= 0)
    now = cbor_get_int(cbor_map_handle(map)[cur].value);
  if (p.verb == ORDO_LEDGER_INTKEY_SET && cur >= 0) {
    rc = ordo__set_last_error(ORDO_E_LEDGER_INVALID_TXN,
                              "intkey: set of '%s', which exists", p.name);
  } else if (p.verb != ORDO_LEDGER_INTKEY_SET && cur < 0) {
    rc = ordo__set_last_error(ORDO_E_LEDGER_INVALID_TXN,
                              "intkey: %s of '%s', which does not exist",
                              verbs[p.verb], p.name);
  } else {
    if (p.verb == ORDO_LEDGER_INTKEY_SET)
      next = p.value;
    else if (p.verb == ORDO_LEDGER_INTKEY_INC)
      next = now + p.value; /* both <= 2^32-1: no 64-bit overflow */
    else
      next = now >= p.value ? now - p.value : UINT64_MAX;
    if (next > ORDO_LEDGER_INTKEY_MAX_VALUE)
      rc = ordo__set_last_error(ORDO_E_LEDGER_INVALID_TXN,
                                "intkey: %s of '%s' by %llu leaves the range "
                                "0..2^32-1",
                                verbs[p.verb], p.name,
                                (unsigned long long)p.value);
    else
      rc = store_state(state, addr, map, cur, p.name, next);
  }
done:
  if (map != NULL)
    cbor_decref(&map);
  ordo_ledger_intkey_payload_clear(&p);
  return rc;
}

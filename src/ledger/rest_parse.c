/*
 * rest_parse.c — what a Sawtooth REST API sends back, checked: error bodies,
 * the link of a submit, batch statuses, state (one value, pages of values),
 * blocks. Pure functions over bytes, so the fuzzer and the tests call them
 * without a network; rest.c calls them on the cheap class.
 *
 * Passing through: statuses and blocks keep every field the node sent (the
 * caller may want "link", "head", extended_data); only the shape the callers
 * rely on is checked.
 */
#include "ledger/ledger.h"
#include "base/base.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The longest piece of server text (title, message) put in a message. */
#define TEXT_MAX 240

static int bad(const char **why, const char *what) {
  if (why != NULL)
    *why = what;
  return ORDO_E_LEDGER_RESPONSE;
}

/* An object from the body, or NULL (with *why) for anything else. */
static json_t *load_object(const void *body, size_t len, const char **why) {
  if (body == NULL || len == 0) {
    bad(why, "empty body");
    return NULL;
  }
  json_error_t err;
  json_t *o = json_loadb(body, len, JSON_REJECT_DUPLICATES, &err);
  if (o == NULL) {
    bad(why, "not JSON");
    return NULL;
  }
  if (!json_is_object(o)) {
    json_decref(o);
    bad(why, "not a JSON object");
    return NULL;
  }
  return o;
}

/* The body's object and its "data" array (borrowed from it), or
 * ORDO_E_LEDGER_RESPONSE with *why and nothing to free: the shape of every
 * Sawtooth list response. */
static int load_data_array(const void *body, size_t len, const char **why,
                           json_t **obj, json_t **data) {
  json_t *o = load_object(body, len, why);
  if (o == NULL)
    return ORDO_E_LEDGER_RESPONSE;
  *data = json_object_get(o, "data");
  if (!json_is_array(*data)) {
    json_decref(o);
    return bad(why, "no \"data\" array");
  }
  *obj = o;
  return ORDO_OK;
}

/* Append at most TEXT_MAX bytes of s to buf (used, cap), control characters
 * made spaces, never splitting a UTF-8 sequence. */
static void put_text(char *buf, size_t cap, size_t *used, const char *s) {
  size_t n = strlen(s);
  if (n > TEXT_MAX) {
    n = TEXT_MAX;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
      n--; /* s[n] continues a sequence: cut before its start */
  }
  for (size_t i = 0; i < n && *used + 1 < cap; i++) {
    unsigned char ch = (unsigned char)s[i];
    buf[(*used)++] = ch < 0x20 || ch == 0x7f ? ' ' : (char)ch;
  }
  buf[*used] = '\0';
}

static void put_fmt(char *buf, size_t cap, size_t *used, const char *fmt, ...)
    ORDO__PRINTF(4, 5);

static void put_fmt(char *buf, size_t cap, size_t *used, const char *fmt, ...) {
  if (*used + 1 >= cap)
    return;
  va_list ap;
  va_start(ap, fmt);
  int k = vsnprintf(buf + *used, cap - *used, fmt, ap);
  va_end(ap);
  if (k > 0)
    *used = (size_t)k >= cap - *used ? cap - 1 : *used + (size_t)k;
}

int ordo__ledger_parse_error(long http_status, const void *body, size_t len,
                             char *msg, size_t cap, int *code) {
  size_t used = 0;
  if (code != NULL)
    *code = -1;
  if (msg != NULL && cap > 0)
    msg[0] = '\0';
  else
    cap = 0;

  const char *why = NULL;
  json_t *o = load_object(body, len, &why);
  json_t *e = o != NULL ? json_object_get(o, "error") : NULL;
  json_t *jc = json_object_get(e, "code");
  json_t *jt = json_object_get(e, "title");
  json_t *jm = json_object_get(e, "message");
  int rc = ORDO_OK;
  if (!json_is_object(e) ||
      !(json_is_integer(jc) || json_is_string(jt) || json_is_string(jm))) {
    if (cap > 0)
      put_fmt(msg, cap, &used, "%ld (no Sawtooth error in the body)",
              http_status);
    /* A proxy's or aiohttp's plain text (the REST API's 413 is "Maximum
     * request body size N exceeded, actual body size M") still says what
     * is wrong: quote its first line. */
    if (cap > 0 && o == NULL && body != NULL && len > 0 &&
        ((const char *)body)[0] != '<' && /* an HTML page says nothing */
        memchr(body, '\0', len) == NULL) {
      char line[TEXT_MAX + 1];
      size_t k = 0;
      const char *b = body;
      while (k < len && k < TEXT_MAX && b[k] != '\n' && b[k] != '\r')
        k++;
      memcpy(line, b, k);
      line[k] = '\0';
      if (k > 0) {
        put_text(msg, cap, &used, ": ");
        put_text(msg, cap, &used, line);
      }
    }
    rc = ORDO_E_LEDGER_RESPONSE;
  } else {
    long long c = json_is_integer(jc) ? json_integer_value(jc) : -1;
    int ci = c >= 0 && c <= 1000000 ? (int)c : -1;
    if (code != NULL)
      *code = ci;
    if (cap > 0) {
      if (ci >= 0)
        put_fmt(msg, cap, &used, "%ld code %d", http_status, ci);
      else
        put_fmt(msg, cap, &used, "%ld", http_status);
      if (json_is_string(jt)) {
        put_text(msg, cap, &used, ": ");
        put_text(msg, cap, &used, json_string_value(jt));
      }
      if (json_is_string(jm)) {
        put_text(msg, cap, &used, ": ");
        put_text(msg, cap, &used, json_string_value(jm));
      }
    }
  }
  json_decref(o);
  return rc;
}

int ordo__ledger_parse_link(const void *body, size_t len, json_t **out,
                            const char **why) {
  *out = NULL;
  json_t *o = load_object(body, len, why);
  if (o == NULL)
    return ORDO_E_LEDGER_RESPONSE;
  json_t *link = json_object_get(o, "link");
  if (!json_is_string(link)) {
    json_decref(o);
    return bad(why, "no \"link\" string");
  }
  json_t *r = json_pack("{sO}", "link", link);
  json_decref(o);
  if (r == NULL)
    return ORDO_E_NOMEM;
  *out = r;
  return ORDO_OK;
}

static int known_status(const char *s) {
  return strcmp(s, "COMMITTED") == 0 || strcmp(s, "INVALID") == 0 ||
         strcmp(s, "PENDING") == 0 || strcmp(s, "UNKNOWN") == 0;
}

/* A list response whose every "data" entry passes check (which says with
 * bad() why one does not): the body's whole object into *out (the callers
 * keep every field), or the first failure with *out NULL. Statuses and
 * blocks are read this way. */
static int load_checked_list(const void *body, size_t len, json_t **out,
                             const char **why,
                             int (*check)(json_t *entry, const char **why)) {
  json_t *o, *data, *e;
  size_t i;
  int rc;
  *out = NULL;
  if ((rc = load_data_array(body, len, why, &o, &data)) != ORDO_OK)
    return rc;
  json_array_foreach(data, i, e) {
    if ((rc = check(e, why)) != ORDO_OK) {
      json_decref(o);
      return rc;
    }
  }
  *out = o;
  return ORDO_OK;
}

static int check_status(json_t *st, const char **why) {
  json_t *id = json_object_get(st, "id");
  json_t *s = json_object_get(st, "status");
  json_t *inv = json_object_get(st, "invalid_transactions");
  if (!json_is_object(st) || !json_is_string(id))
    return bad(why, "a status without an \"id\" string");
  if (!json_is_string(s) || !known_status(json_string_value(s)))
    return bad(why, "a status that is not COMMITTED, INVALID, PENDING or "
                    "UNKNOWN");
  if (inv != NULL && !json_is_array(inv))
    return bad(why, "\"invalid_transactions\" is not an array");
  return ORDO_OK;
}

int ordo__ledger_parse_statuses(const void *body, size_t len, json_t **out,
                                const char **why) {
  return load_checked_list(body, len, out, why, check_status);
}

/* Standard base64 with padding (what Sawtooth's REST API sends). */
static int is_base64(const char *s) {
  size_t n = strlen(s), pad = 0;
  if (n % 4 != 0)
    return 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (c == '=') {
      pad++;
      continue;
    }
    if (pad > 0)
      return 0; /* data after padding */
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
          (c >= '0' && c <= '9') || c == '+' || c == '/'))
      return 0;
  }
  return pad <= 2;
}

int ordo__ledger_parse_state(const void *body, size_t len, json_t **out,
                             const char **why) {
  *out = NULL;
  json_t *o = load_object(body, len, why);
  if (o == NULL)
    return ORDO_E_LEDGER_RESPONSE;
  json_t *data = json_object_get(o, "data");
  json_t *head = json_object_get(o, "head");
  int rc = ORDO_OK;
  if (!json_is_string(data) || !is_base64(json_string_value(data)))
    rc = bad(why, "\"data\" is not a base64 string");
  else if (head != NULL && !json_is_string(head))
    rc = bad(why, "\"head\" is not a string");
  json_t *r = NULL;
  if (rc == ORDO_OK) {
    r = head != NULL ? json_pack("{sOsO}", "data", data, "head", head)
                     : json_pack("{sO}", "data", data);
    if (r == NULL)
      rc = ORDO_E_NOMEM;
  }
  json_decref(o);
  *out = r;
  return rc;
}

static int is_hex(const char *s) {
  for (; *s != '\0'; s++)
    if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f') ||
          (*s >= 'A' && *s <= 'F')))
      return 0;
  return 1;
}

static int query_char_ok(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
         (c >= '0' && c <= '9') || strchr("._~%&=+,:-", c) != NULL;
}

/* The query string of a paging.next link (…/state?Q), copied, or NULL with
 * *why for a link this client will not follow. */
static char *next_query(const char *link, const char **why) {
  const char *q = strchr(link, '?');
  if (q == NULL || q[1] == '\0') {
    bad(why, "paging.next has no query string");
    return NULL;
  }
  size_t plen = (size_t)(q - link);
  if (plen < 6 || memcmp(q - 6, "/state", 6) != 0) {
    bad(why, "paging.next is not a /state link");
    return NULL;
  }
  q++;
  size_t n = strlen(q);
  const char *hash = strchr(q, '#');
  if (hash != NULL)
    n = (size_t)(hash - q);
  if (n == 0 || n > 4096) {
    bad(why, "paging.next query is empty or too long");
    return NULL;
  }
  for (size_t i = 0; i < n; i++)
    if (!query_char_ok(q[i])) {
      bad(why, "paging.next query has characters a URL query cannot");
      return NULL;
    }
  char *r = malloc(n + 1);
  if (r == NULL) {
    bad(why, "out of memory");
    return NULL;
  }
  memcpy(r, q, n);
  r[n] = '\0';
  return r;
}

int ordo__ledger_parse_state_page(const void *body, size_t len, json_t *acc,
                                  char **next, const char **why) {
  json_t *o, *data, *e;
  size_t i;
  int rc;
  *next = NULL;
  if (!json_is_array(acc))
    return ORDO_E_INVAL;
  if ((rc = load_data_array(body, len, why, &o, &data)) != ORDO_OK)
    return rc;
  json_array_foreach(data, i, e) {
    json_t *a = json_object_get(e, "address");
    json_t *d = json_object_get(e, "data");
    if (!json_is_string(a) || json_string_length(a) > ORDO_LEDGER_ADDRESS_LEN ||
        !is_hex(json_string_value(a))) {
      rc = bad(why, "an entry without a hex \"address\"");
      break;
    }
    if (!json_is_string(d) || !is_base64(json_string_value(d))) {
      rc = bad(why, "an entry whose \"data\" is not base64");
      break;
    }
    json_t *entry = json_pack("{sOsO}", "address", a, "data", d);
    if (entry == NULL || json_array_append_new(acc, entry) != 0) {
      rc = ORDO_E_NOMEM;
      break;
    }
  }
  json_t *paging = rc == ORDO_OK ? json_object_get(o, "paging") : NULL;
  if (paging != NULL && !json_is_object(paging) && !json_is_null(paging)) {
    rc = bad(why, "\"paging\" is not an object");
  } else if (paging != NULL) {
    json_t *nx = json_object_get(paging, "next");
    if (json_is_string(nx) && json_string_length(nx) > 0) {
      *next = next_query(json_string_value(nx), why);
      if (*next == NULL)
        rc = ORDO_E_LEDGER_RESPONSE;
    } else if (nx != NULL && !json_is_string(nx) && !json_is_null(nx)) {
      rc = bad(why, "paging.next is not a string");
    }
  }
  json_decref(o);
  return rc;
}

static int check_block(json_t *b, const char **why) {
  return json_is_object(b) ? ORDO_OK : bad(why, "a block that is not an object");
}

int ordo__ledger_parse_blocks(const void *body, size_t len, json_t **out,
                              const char **why) {
  return load_checked_list(body, len, out, why, check_block);
}

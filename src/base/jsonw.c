/*
 * jsonw.c — the JSON text writer (jsonw.h).
 */
#include "base/utf8.h"
#include "base/jsonw.h"

#include "ordo.h"

#include <stdlib.h>
#include <string.h>

/* Room for n more bytes; 0, or -1 with err set. */
static int jsonw_room(ordo__jsonw *w, size_t n) {
  size_t nc;
  unsigned char *p;
  if (w->err != ORDO_OK)
    return -1;
  if (n <= w->cap - w->len)
    return 0;
  nc = w->cap ? w->cap : 4096;
  while (nc - w->len < n) {
    if (nc > SIZE_MAX / 2) {
      w->err = ORDO_E_NOMEM;
      return -1;
    }
    nc *= 2;
  }
  if ((p = realloc(w->buf, nc)) == NULL) {
    w->err = ORDO_E_NOMEM;
    return -1;
  }
  w->buf = p;
  w->cap = nc;
  return 0;
}

void ordo__jsonw_raw(ordo__jsonw *w, const void *p, size_t n) {
  if (jsonw_room(w, n) != 0)
    return;
  if (n > 0)
    memcpy(w->buf + w->len, p, n);
  w->len += n;
}


void ordo__jsonw_str(ordo__jsonw *w, const char *str, size_t n) {
  static const char hex[] = "0123456789abcdef";
  const unsigned char *s = (const unsigned char *)str;
  size_t i = 0;
  /* At most 6 bytes out per byte in (\u00XX), and the quotes. */
  if (n > (SIZE_MAX - 2) / 6) {
    if (w->err == ORDO_OK)
      w->err = ORDO_E_NOMEM;
    return;
  }
  if (jsonw_room(w, 6 * n + 2) != 0)
    return;
  w->buf[w->len++] = '"';
  while (i < n) {
    unsigned char c = s[i];
    if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
      w->buf[w->len++] = c;
      i++;
    } else if (c >= 0x80) {
      size_t k = ordo__utf8_seq(s + i, n - i);
      if (k == 0) {
        w->err = ORDO_E_INVAL;
        return;
      }
      memcpy(w->buf + w->len, s + i, k);
      w->len += k;
      i += k;
    } else {
      w->buf[w->len++] = '\\';
      switch (c) {
      case '"':
      case '\\':
        w->buf[w->len++] = c;
        break;
      case '\n':
        w->buf[w->len++] = 'n';
        break;
      case '\t':
        w->buf[w->len++] = 't';
        break;
      case '\r':
        w->buf[w->len++] = 'r';
        break;
      default:
        w->buf[w->len++] = 'u';
        w->buf[w->len++] = '0';
        w->buf[w->len++] = '0';
        w->buf[w->len++] = (unsigned char)hex[c >> 4];
        w->buf[w->len++] = (unsigned char)hex[c & 15];
      }
      i++;
    }
  }
  w->buf[w->len++] = '"';
}

void ordo__jsonw_cstr(ordo__jsonw *w, const char *s) {
  ordo__jsonw_str(w, s, strlen(s));
}

void ordo__jsonw_uint(ordo__jsonw *w, uint64_t v) {
  char tmp[20];
  size_t n = 0;
  do {
    tmp[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v != 0);
  if (jsonw_room(w, n) != 0)
    return;
  while (n > 0)
    w->buf[w->len++] = (unsigned char)tmp[--n];
}

void ordo__jsonw_key(ordo__jsonw *w, int first, const char *key) {
  if (!first)
    ordo__jsonw_raw(w, ",", 1);
  ordo__jsonw_cstr(w, key);
  ordo__jsonw_raw(w, ":", 1);
}

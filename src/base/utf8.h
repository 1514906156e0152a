/*
 * utf8.h — well-formed UTF-8 as RFC 3629 has it: no overlong forms, no
 * surrogates, nothing past U+10FFFF. One decoder for the places that must
 * refuse anything else: crypto/cl.c's attribute names (jansson would refuse
 * them as keys), the CLI's secrets (they go into JSON) and
 * ledger/intkey.c's names (counted as Python counts them). Inline: intkey
 * counts a name on every transaction it applies.
 */
#ifndef ORDO_BASE_UTF8_H
#define ORDO_BASE_UTF8_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* The length (1-4) of the UTF-8 sequence at s[0..n), n >= 1, or 0 when
 * there is none there: a stray continuation byte, an overlong form, a
 * surrogate, a code point past U+10FFFF, or a sequence cut short (by the
 * end, or by a NUL in a NUL-terminated string). */
static inline size_t ordo__utf8_seq(const unsigned char *s, size_t n) {
  /* The smallest code point each length may carry (else it is overlong). */
  static const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
  unsigned c = s[0];
  size_t k, i;
  uint32_t cp;

  if (c < 0x80)
    return 1;
  if (c >= 0xc2 && c <= 0xdf)
    k = 2;
  else if (c >= 0xe0 && c <= 0xef)
    k = 3;
  else if (c >= 0xf0 && c <= 0xf4)
    k = 4;
  else
    return 0;
  if (n < k)
    return 0;
  cp = c & (0x7fu >> k); /* the lead byte keeps 5, 4 or 3 payload bits */
  for (i = 1; i < k; i++) {
    if ((s[i] & 0xc0) != 0x80)
      return 0;
    cp = cp << 6 | (s[i] & 0x3f);
  }
  if (cp < min[k] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
    return 0;
  return k;
}

/* 1 when the NUL-terminated s is well-formed UTF-8 throughout, else 0. */
static inline int ordo__utf8_valid(const char *s) {
  const unsigned char *p = (const unsigned char *)s;
  size_t n = strlen(s), k;

  for (size_t i = 0; i < n; i += k)
    if ((k = ordo__utf8_seq(p + i, n - i)) == 0)
      return 0;
  return 1;
}

#endif

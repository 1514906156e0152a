/*
 * encoding.c — the text forms keys and envelopes travel in: base58 (Indy
 * verkeys and DIDs), hex (Sawtooth keys and signatures) and base64url (Aries
 * envelopes).
 *
 * Hex and base64url are libsodium's constant-time codecs; ordo adds the
 * strictness checks and error messages. Base58 has no library here, so it is
 * the usual schoolbook base conversion, bounded by the caller's capacity so
 * that hostile input costs at most O(length x capacity).
 */
#include "crypto/crypto.h"
#include "runtime/runtime.h"

#include <jansson.h>
#include <limits.h>
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* Base58                                                                    */
/* ------------------------------------------------------------------------ */

static const char b58_alphabet[] =
    "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

/* The digit of c, or -1 for a character outside the alphabet. */
static int b58_digit(unsigned char c) {
  const char *p;

  if (c == '\0')
    return -1;
  p = strchr(b58_alphabet, c);
  return p != NULL ? (int)(p - b58_alphabet) : -1;
}

int ordo__crypto_base58_encode(const void *in, size_t len, char *out,
                               size_t out_size) {
  const unsigned char *bytes = in;
  size_t zeros = 0, ndigits, used = 0, i, j, first;
  unsigned char *digits;

  if (out == NULL || (in == NULL && len > 0))
    return ORDO_E_INVAL;
  if (len > (SIZE_MAX - 2) / 138 || out_size < ORDO__BASE58_ENCODED_SIZE(len))
    return ORDO_E_INVAL;

  while (zeros < len && bytes[zeros] == 0)
    zeros++;
  /* Digits are built in out itself, least significant at the end of the
   * window out[zeros, zeros + ndigits), as values 0..57, then mapped to
   * characters. The size check above guarantees the window and the NUL fit. */
  ndigits = (len - zeros) * 138 / 100 + 1;
  memset(out, 0, zeros + ndigits);
  digits = (unsigned char *)out + zeros;
  for (i = zeros; i < len; i++) {
    unsigned carry = bytes[i];
    /* digits = digits * 256 + byte, over the `used` low digits. */
    for (j = 0; j < used || carry != 0; j++) {
      unsigned char *d;
      if (j == ndigits) /* impossible: ndigits is an upper bound */
        return ORDO_E_CRYPTO;
      d = &digits[ndigits - 1 - j];
      carry += 256u * *d;
      *d = (unsigned char)(carry % 58);
      carry /= 58;
    }
    used = j;
  }
  first = ndigits - used;
  for (i = 0; i < zeros; i++)
    out[i] = '1';
  for (i = 0; i < used; i++)
    out[zeros + i] = b58_alphabet[digits[first + i]];
  out[zeros + used] = '\0';
  return ORDO_OK;
}

int ordo__crypto_base58_decode(const char *in, unsigned char *out,
                               size_t *out_len) {
  size_t cap, zeros = 0, used = 0, room, i, j;

  if (in == NULL || out == NULL || out_len == NULL)
    return ORDO_E_INVAL;
  cap = *out_len;
  *out_len = 0;

  while (in[zeros] == '1')
    zeros++;
  if (zeros > cap)
    goto overflow;
  /* The number is built big-endian in the last `room` bytes of out, `used`
   * of them significant so far; the leading zero bytes go in front at the
   * end. Running out of room is reported at once, so no input can make the
   * loop longer than its length times the capacity. */
  room = cap - zeros;
  for (i = zeros; in[i] != '\0'; i++) {
    int d = b58_digit((unsigned char)in[i]);
    unsigned carry;

    if (d < 0) {
      ordo__set_last_error(ORDO_E_INVAL,
                           "base58: invalid character at offset %zu", i);
      goto fail;
    }
    carry = (unsigned)d;
    for (j = 0; j < used || carry != 0; j++) {
      unsigned char *b;
      if (j == room)
        goto overflow;
      b = &out[cap - 1 - j];
      carry += 58u * (j < used ? *b : 0u);
      *b = (unsigned char)(carry & 0xff);
      carry >>= 8;
    }
    used = j;
  }
  memmove(out + zeros, out + cap - used, used);
  memset(out, 0, zeros);
  *out_len = zeros + used;
  return ORDO_OK;

overflow:
  ordo__set_last_error(ORDO_E_INVAL, "base58: decodes to more than %zu bytes",
                       cap);
fail:
  ordo__crypto_memzero(out, cap);
  return ORDO_E_INVAL;
}

/* ------------------------------------------------------------------------ */
/* Hex                                                                       */
/* ------------------------------------------------------------------------ */

int ordo__crypto_hex_encode(const void *in, size_t len, char *out,
                            size_t out_size) {
  if (out == NULL || (in == NULL && len > 0))
    return ORDO_E_INVAL;
  if (len > (SIZE_MAX - 1) / 2 || out_size < ORDO__HEX_ENCODED_SIZE(len))
    return ORDO_E_INVAL;
  if (len == 0) {
    out[0] = '\0';
    return ORDO_OK;
  }
  sodium_bin2hex(out, out_size, in, len);
  return ORDO_OK;
}

int ordo__crypto_hex_decode(const char *in, unsigned char *out,
                            size_t *out_len) {
  size_t cap, len, got = 0;
  const char *end = NULL;

  if (in == NULL || out == NULL || out_len == NULL)
    return ORDO_E_INVAL;
  cap = *out_len;
  *out_len = 0;
  len = strlen(in);
  if (len % 2 != 0) {
    ordo__set_last_error(ORDO_E_INVAL, "hex: odd number of digits (%zu)", len);
    goto fail;
  }
  if (len / 2 > cap) {
    ordo__set_last_error(ORDO_E_INVAL, "hex: decodes to more than %zu bytes",
                         cap);
    goto fail;
  }
  /* With no ignore set, libsodium stops at the first non-hex character and
   * reports where: the whole string must have been consumed. */
  if (len > 0 && (sodium_hex2bin(out, cap, in, len, NULL, &got, &end) != 0 ||
                  end != in + len || got != len / 2)) {
    ordo__set_last_error(ORDO_E_INVAL, "hex: invalid character at offset %zu",
                         end != NULL ? (size_t)(end - in) : (size_t)0);
    goto fail;
  }
  *out_len = len / 2;
  return ORDO_OK;

fail:
  ordo__crypto_memzero(out, cap);
  return ORDO_E_INVAL;
}

/* ------------------------------------------------------------------------ */
/* Base64url                                                                 */
/* ------------------------------------------------------------------------ */

int ordo__crypto_b64url_encode(const void *in, size_t len, char **out) {
  const int variant = sodium_base64_VARIANT_URLSAFE_NO_PADDING;
  size_t size;
  char *text;
  int rc;

  if (out == NULL)
    return ORDO_E_INVAL;
  *out = NULL;
  if (in == NULL && len > 0)
    return ORDO_E_INVAL;
  if ((rc = ordo__crypto_init()) != ORDO_OK)
    return rc;
  /* sodium_base64_ENCODED_LEN computes about len * 4 / 3 + 1. */
  if (len > SIZE_MAX / 4 - 4)
    return ORDO_E_INVAL;
  size = sodium_base64_ENCODED_LEN(len, variant);
  if ((text = malloc(size)) == NULL)
    return ORDO_E_NOMEM;
  if (len == 0)
    text[0] = '\0';
  else
    sodium_bin2base64(text, size, in, len, variant);
  *out = text;
  return ORDO_OK;
}

int ordo__crypto_b64url_decode(const char *in, unsigned char **out,
                               size_t *out_len) {
  unsigned char *bin = NULL;
  const char *end = NULL;
  size_t len, cap, got = 0;
  int variant, rc;

  if (out != NULL)
    *out = NULL;
  if (out_len != NULL)
    *out_len = 0;
  if (in == NULL || out == NULL || out_len == NULL)
    return ORDO_E_INVAL;
  if ((rc = ordo__crypto_init()) != ORDO_OK)
    return rc;
  len = strlen(in);
  /* libsodium's padded variant insists on the padding and the unpadded one
   * refuses it; other envelope writers differ, so pick by the last byte. */
  variant = len > 0 && in[len - 1] == '='
                ? sodium_base64_VARIANT_URLSAFE
                : sodium_base64_VARIANT_URLSAFE_NO_PADDING;
  /* Every 4 characters carry at most 3 bytes; +1 for the NUL handed out. */
  cap = len / 4 * 3 + 3;
  if ((bin = malloc(cap + 1)) == NULL)
    return ORDO_E_NOMEM;
  if (len > 0 &&
      (sodium_base642bin(bin, cap, in, len, NULL, &got, &end, variant) != 0 ||
       end != in + len)) {
    ordo__set_last_error(ORDO_E_INVAL,
                         "base64url: invalid encoding at offset %zu",
                         end != NULL ? (size_t)(end - in) : (size_t)0);
    ordo__crypto_memzero(bin, cap + 1);
    free(bin);
    return ORDO_E_INVAL;
  }
  bin[got] = '\0';
  *out = bin;
  *out_len = got;
  return ORDO_OK;
}

/* ------------------------------------------------------------------------ */
/* Into JSON                                                                 */
/* ------------------------------------------------------------------------ */

int ordo__crypto_json_set_ascii(json_t *obj, const char *key,
                                const char *text) {
  /* json_object_set_new takes the value even when it fails. */
  return json_object_set_new(obj, key, json_string_nocheck(text)) == 0
             ? ORDO_OK
             : ORDO_E_NOMEM;
}

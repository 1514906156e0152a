/*
 * err.c — the error table, the per-thread last error, and the clock.
 */
#include "runtime/internal.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

const char *ordo_strerror(int code) {
  switch (code) {
#define ORDO__ERR_TEXT(name, value, text)                                      \
  case value:                                                                  \
    return text;
    ORDO_ERR_MAP(ORDO__ERR_TEXT)
#undef ORDO__ERR_TEXT
  default:
    return "unknown error";
  }
}

const char *ordo_errname(int code) {
  switch (code) {
#define ORDO__ERR_NAME(name, value, text)                                      \
  case value:                                                                  \
    return "ORDO_" #name;
    ORDO_ERR_MAP(ORDO__ERR_NAME)
#undef ORDO__ERR_NAME
  default:
    return "ORDO_E_UNKNOWN";
  }
}

/* The last error of calls that have no op to carry it. Thread-local, so
 * concurrent failures on different threads never mix messages. */
static _Thread_local int last_code;
static _Thread_local char last_message[512];

int ordo__set_last_error(int code, const char *fmt, ...) {
  last_code = code;
  if (fmt == NULL) {
    snprintf(last_message, sizeof(last_message), "%s", ordo_strerror(code));
  } else {
    /* Format aside first: callers may wrap the previous message
     * ("context: %s", ordo_last_error_message()), which lives in the very
     * buffer being written. */
    char tmp[sizeof(last_message)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    memcpy(last_message, tmp, sizeof(last_message));
  }
  return code;
}

int ordo_last_error(void) { return last_code; }

const char *ordo_last_error_message(void) { return last_message; }

unsigned long long ordo__now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (unsigned long long)ts.tv_sec * 1000000000ull +
         (unsigned long long)ts.tv_nsec;
}

unsigned long long ordo__wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (unsigned long long)ts.tv_sec * 1000ull +
         (unsigned long long)ts.tv_nsec / 1000000ull;
}

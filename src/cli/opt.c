/*
 * opt.c — the subcommands' command lines: --help, the messages every one of
 * them gives for a bad option or value, integers and shares, and the
 * numeric-option tables of cli.h, so that a subcommand's parser says which
 * options it has and their ranges, not how to read them.
 */
#include "cli/cli.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int ordo__cli_is_help(const char *arg) {
  return strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0;
}

int ordo__cli_help(const char *arg, void (*usage)(FILE *)) {
  if (!ordo__cli_is_help(arg))
    return 0;
  usage(stdout);
  return 1;
}

int ordo__cli_unknown(FILE *err, const char *cmd, const char *arg,
                      void (*usage)(FILE *)) {
  fprintf(err, "%s: unknown option or missing value '%s'\n", cmd, arg);
  usage(err);
  return ORDO_CLI_USAGE;
}

int ordo__cli_bad_value(FILE *err, const char *cmd, const char *value,
                        const char *opt) {
  fprintf(err, "%s: bad value '%s' for %s\n", cmd, value, opt);
  return ORDO_CLI_USAGE;
}

int ordo__cli_parse_u64(const char *v, unsigned long long max,
                        unsigned long long *out) {
  char *end;
  unsigned long long n;
  if (v == NULL || v[0] < '0' || v[0] > '9')
    return -1;
  errno = 0;
  n = strtoull(v, &end, 10);
  if (errno != 0 || *end != '\0' || n > max)
    return -1;
  *out = n;
  return 0;
}

int ordo__cli_parse_rate(const char *v, double *out) {
  char *end;
  double f = strtod(v, &end);
  if (end == v || *end != '\0' || !(f >= 0.0 && f <= 1.0))
    return -1;
  *out = f;
  return 0;
}

const ordo__cli_num *ordo__cli_num_find(const ordo__cli_num *table, size_t n,
                                        const char *name) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(table[i].name, name) == 0)
      return &table[i];
  return NULL;
}

int ordo__cli_num_set(const ordo__cli_num *opt, const char *v, void *base) {
  unsigned long long n;
  char *field = (char *)base + opt->off;
  if (ordo__cli_parse_u64(v, opt->max, &n) != 0 || n < opt->min)
    return -1;
  /* An int field holds a value within its range the same as an unsigned
   * one, so the two share the 4-byte store. */
  if (opt->size == sizeof(unsigned)) {
    unsigned u = (unsigned)n;
    memcpy(field, &u, sizeof u);
  } else if (opt->size == sizeof(uint64_t)) {
    uint64_t u = n;
    memcpy(field, &u, sizeof u);
  } else {
    return -1;
  }
  return 0;
}

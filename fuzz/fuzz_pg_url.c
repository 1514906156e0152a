/*
 * fuzz_pg_url.c — libFuzzer target for the PostgreSQL backend's URL parser
 * (ordo__pg_url_parse in src/storage/postgres_conn.c), which reads every
 * wallet config's and --data's database URL: ordo's own parameters
 * (ordo_pool, ordo_wait) and the store name after '#' are taken out before
 * libpq parses the rest.
 *
 * Properties on every input (copied, NUL-terminated; parsed with and
 * without a required store name):
 *   - success: conninfo, name and where are set; conninfo has no '#' and
 *     no "ordo_" parameter left; the pool size and the wait are in range;
 *     with need_name the name is not empty;
 *   - failure: ORDO_E_INVAL or ORDO_E_NOMEM, a message, and nothing to free;
 *   - the message never repeats the input (it may hold a password).
 * LeakSanitizer catches what a failure path forgot to free.
 */
#include "storage/postgres_int.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *uri = malloc(size + 1);
  if (uri == NULL)
    return 0;
  memcpy(uri, data, size);
  uri[size] = 0;
  for (int need = 0; need < 2; need++) {
    pg_url u;
    char err[256] = "";
    int rc = ordo__pg_url_parse(uri, need, &u, err, sizeof err);
    if (rc == ORDO_OK) {
      const char *q = u.conninfo != NULL ? strchr(u.conninfo, '?') : NULL;
      if (u.conninfo == NULL || u.name == NULL || u.where == NULL ||
          strchr(u.conninfo, '#') != NULL ||
          (q != NULL && (strncmp(q + 1, "ordo_", 5) == 0 ||
                         strstr(q, "&ordo_") != NULL)) ||
          u.pool < 1 || u.pool > 1000 || u.wait_ms > 86400u * 1000u ||
          (need && u.name[0] == 0))
        abort();
      ordo__pg_url_clear(&u);
    } else {
      if ((rc != ORDO_E_INVAL && rc != ORDO_E_NOMEM) || err[0] == 0)
        abort();
      if (strlen(uri) >= 24 && strstr(err, uri) != NULL)
        abort();
    }
  }
  free(uri);
  return 0;
}

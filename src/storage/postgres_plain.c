/*
 * postgres_plain.c — a plain libpq connection to a database of the
 * PostgreSQL backend, for a module that runs SQL of its own on ordo's
 * tables (src/cluster: the shared queue's counters, inbox and leases).
 * The URL is read as for a store (ordo's parameters left out, no '#NAME'
 * needed) and the schema is made or migrated first, so the tables the
 * caller uses are there.
 */
#include "storage/postgres_int.h"

#include <unistd.h>

/* The server's notices ("relation … already exists, skipping") are not
 * the user's business: libpq would print them on stderr. */
static void notice_drop(void *arg, const char *message) {
  (void)arg;
  (void)message;
}

int ordo__storage_postgres_connect(const char *url, void **out,
                                   char **errmsg) {
  char err[512] = "", app[64];
  pg_url u;
  *out = NULL;
  if (errmsg != NULL)
    *errmsg = NULL;
  int st = ordo__pg_url_parse(url, 0, &u, err, sizeof err);
  if (st != ORDO_OK)
    return ordo__storage_set_err(errmsg, st, "%s", err);
  snprintf(app, sizeof app, "ordo pid %ld", (long)getpid());
  /* Blocking, bounded: the callers run it on threads of their own. */
  const char *keys[] = {"dbname", "fallback_application_name",
                        "connect_timeout", NULL};
  const char *vals[] = {u.conninfo, app, "10", NULL};
  PGconn *c = PQconnectdbParams(keys, vals, 1);
  if (c == NULL) {
    ordo__pg_url_clear(&u);
    return ordo__storage_set_err(errmsg, ORDO_E_NOMEM, "out of memory");
  }
  PQsetNoticeProcessor(c, notice_drop, NULL);
  if (PQstatus(c) != CONNECTION_OK) {
    snprintf(err, sizeof err, "%s", PQerrorMessage(c));
    ordo__pg_one_line(err);
    st = ORDO_E_STORAGE;
  } else {
    st = ordo__pg_schema_ensure(c, err, sizeof err);
  }
  if (st != ORDO_OK) {
    st = ordo__storage_set_err(errmsg, st, "PostgreSQL %s: %s", u.where, err);
    PQfinish(c);
    ordo__pg_url_clear(&u);
    return st;
  }
  ordo__pg_url_clear(&u);
  *out = c;
  return ORDO_OK;
}

/*
 * postgres_schema.c — the PostgreSQL backend's schema and its migrations
 * (docs/postgres.md has the tables and the rules).
 *
 * Every store is a row of ordo_store; its records, tags and metadata carry
 * its id, so one database holds many wallets and queues, and removing a
 * store is one DELETE that cascades.
 */
#include "storage/postgres_int.h"

/* ---- the schema -------------------------------------------------------------- */

/* Migrations, in order: migration i brings the schema from version i to
 * i + 1. Only ever append; a released one never changes. */
static const char *const migrations[] = {
    /* 0 -> 1: the tables of records, tags and metadata. */
    "CREATE TABLE ordo_store("
    " id bigserial PRIMARY KEY,"
    " name text NOT NULL UNIQUE,"
    " created_at timestamptz NOT NULL DEFAULT now());"
    "CREATE TABLE ordo_item("
    " id bigserial PRIMARY KEY,"
    " store bigint NOT NULL REFERENCES ordo_store(id) ON DELETE CASCADE,"
    " category bytea NOT NULL,"
    " name bytea NOT NULL,"
    " value bytea NOT NULL,"
    " UNIQUE(store, category, name));"
    "CREATE TABLE ordo_tag_enc("
    " item bigint NOT NULL REFERENCES ordo_item(id) ON DELETE CASCADE,"
    " name bytea NOT NULL,"
    " value bytea NOT NULL,"
    " PRIMARY KEY(item, name));"
    "CREATE INDEX ordo_tag_enc_name_value ON ordo_tag_enc(name, value);"
    "CREATE TABLE ordo_tag_plain("
    " item bigint NOT NULL REFERENCES ordo_item(id) ON DELETE CASCADE,"
    " name bytea NOT NULL,"
    " value bytea NOT NULL,"
    " PRIMARY KEY(item, name));"
    "CREATE INDEX ordo_tag_plain_name_value ON ordo_tag_plain(name, value);"
    "CREATE TABLE ordo_meta("
    " store bigint NOT NULL REFERENCES ordo_store(id) ON DELETE CASCADE,"
    " name bytea NOT NULL,"
    " value bytea NOT NULL,"
    " PRIMARY KEY(store, name));"
    /* n when n > 0, else raise `state` with `msg`: a strict write's check. */
    "CREATE FUNCTION ordo_expect(n bigint, state text, msg text)"
    " RETURNS bigint LANGUAGE plpgsql AS $f$ BEGIN"
    " IF n = 0 THEN RAISE EXCEPTION USING ERRCODE = state, MESSAGE = msg;"
    " END IF; RETURN n; END $f$;"
    /* LIKE where '_' is one UTF-8 character, as in the SQLite backend
     * (bytea's LIKE counts bytes): on the text when both are UTF-8, on the
     * bytes when one is not. Only called for patterns with a '_'. */
    "CREATE FUNCTION ordo_like_chars(v bytea, p bytea)"
    " RETURNS boolean LANGUAGE plpgsql IMMUTABLE STRICT AS $f$ BEGIN"
    " RETURN convert_from(v, 'UTF8') LIKE convert_from(p, 'UTF8')"
    " COLLATE \"C\";"
    " EXCEPTION WHEN character_not_in_repertoire OR"
    " untranslatable_character THEN RETURN v LIKE p; END $f$;",
    /* 1 -> 2: the foreign keys of records and tags go; what they did
     * stays. Each row they checked cost the server a lookup and a row lock
     * in a trigger of its own, a third of what adding a record and its
     * tags costs it (docs/benchmarks.md). Deletes cascade by
     * statement-level triggers instead, over the rows the statement
     * deleted. Inserts lock what they hang from (postgres_sql.c): the store
     * row once per statement that adds records, the record when tags are
     * added to one that is there; a delete of either waits for them, or
     * they find it gone. ordo_meta, written rarely, keeps its key. */
    "ALTER TABLE ordo_tag_enc DROP CONSTRAINT ordo_tag_enc_item_fkey;"
    "ALTER TABLE ordo_tag_plain DROP CONSTRAINT ordo_tag_plain_item_fkey;"
    "ALTER TABLE ordo_item DROP CONSTRAINT ordo_item_store_fkey;"
    "CREATE FUNCTION ordo_item_gone() RETURNS trigger LANGUAGE plpgsql AS $f$"
    " BEGIN DELETE FROM ordo_tag_enc WHERE item IN (SELECT id FROM gone);"
    " DELETE FROM ordo_tag_plain WHERE item IN (SELECT id FROM gone);"
    " RETURN NULL; END $f$;"
    "CREATE TRIGGER ordo_item_gone AFTER DELETE ON ordo_item"
    " REFERENCING OLD TABLE AS gone FOR EACH STATEMENT"
    " EXECUTE FUNCTION ordo_item_gone();"
    "CREATE FUNCTION ordo_store_gone() RETURNS trigger LANGUAGE plpgsql AS $f$"
    " BEGIN DELETE FROM ordo_item WHERE store IN (SELECT id FROM gone);"
    " RETURN NULL; END $f$;"
    "CREATE TRIGGER ordo_store_gone AFTER DELETE ON ordo_store"
    " REFERENCING OLD TABLE AS gone FOR EACH STATEMENT"
    " EXECUTE FUNCTION ordo_store_gone();",
    /* 2 -> 3: clusters, several `ordo serve` sharing one queue. A store
     * (a service's journal) is owned by one instance at a time under a
     * lease; the epoch goes up at every change of owner. A fenced store
     * (ordo__storage_postgres_fence) runs ordo_fence at the start of each
     * of its transactions: it refuses a stale epoch (OR004), and its share lock
     * on the lease row makes a takeover's UPDATE wait until the fenced
     * transaction is over, so a new owner never reads the store while a
     * stale owner's write is still on its way in. The cluster_* tables
     * are the shared queue's: the per-service order counter and registry,
     * every batch by id until its owner's journal holds it, the
     * instances. */
    "CREATE TABLE ordo_lease("
    " name text PRIMARY KEY,"
    " owner text,"
    " epoch bigint NOT NULL DEFAULT 0,"
    " expires_at timestamptz NOT NULL DEFAULT '-infinity',"
    " renewed_at timestamptz);"
    "CREATE FUNCTION ordo_fence(n text, e bigint)"
    " RETURNS bigint LANGUAGE plpgsql AS $f$"
    " DECLARE cur bigint; who text; BEGIN"
    " SELECT epoch, owner INTO cur, who FROM ordo_lease WHERE name = n"
    " FOR SHARE;"
    " IF NOT FOUND OR cur <> e THEN RAISE EXCEPTION USING ERRCODE = '"
    PG_STATE_FENCED "', MESSAGE = format('lease %s is at epoch %s (owner"
    " %s), this store was opened at epoch %s: a newer owner took it over',"
    " n, coalesce(cur::text, 'none'), coalesce(who, 'none'), e);"
    " END IF; RETURN e; END $f$;"
    "CREATE TABLE ordo_cluster_seq("
    " queue text NOT NULL,"
    " service text NOT NULL,"
    " lease text NOT NULL,"
    " next bigint NOT NULL DEFAULT 0,"
    " PRIMARY KEY(queue, service));"
    "CREATE TABLE ordo_cluster_batch("
    " queue text NOT NULL,"
    " id text NOT NULL,"
    " service text NOT NULL,"
    " seq bigint NOT NULL,"
    " digest bytea NOT NULL,"
    " body bytea NOT NULL,"
    " moved boolean NOT NULL DEFAULT false,"
    " enqueued_at timestamptz NOT NULL DEFAULT now(),"
    " PRIMARY KEY(queue, id));"
    "CREATE INDEX ordo_cluster_inbox ON ordo_cluster_batch(queue, service,"
    " seq) WHERE NOT moved;"
    "CREATE TABLE ordo_cluster_instance("
    " queue text NOT NULL,"
    " id text NOT NULL,"
    " url text,"
    " seen_at timestamptz NOT NULL DEFAULT now(),"
    " joined_at timestamptz NOT NULL DEFAULT now(),"
    " PRIMARY KEY(queue, id));",
};
#define PG_SCHEMA_VERSION ((int)(sizeof(migrations) / sizeof(migrations[0])))

/* The advisory lock migrations take (hashed to a bigint key). */
#define PG_SCHEMA_LOCK "ordo schema"

static int exec_ok(PGconn *c, const char *sql, char *err, size_t errlen) {
  PGresult *r = PQexec(c, sql);
  ExecStatusType s = PQresultStatus(r);
  int ok = s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK;
  if (!ok)
    snprintf(err, errlen, "%s", PQerrorMessage(c));
  PQclear(r);
  return ok;
}

int ordo__pg_schema_ensure(PGconn *c, char *err, size_t errlen) {
  int version = -1;
  /* The common case first, without the lock: every process's first
   * connection asks, and under the lock they would queue behind each
   * other (15-50 ms each with 20 processes starting together). */
  PGresult *q = PQexec(c, "SELECT max(version) FROM ordo_schema");
  int current = PQresultStatus(q) == PGRES_TUPLES_OK && !PQgetisnull(q, 0, 0) &&
                atoi(PQgetvalue(q, 0, 0)) == PG_SCHEMA_VERSION;
  PQclear(q);
  if (current)
    return ORDO_OK;
  if (!exec_ok(c, "BEGIN", err, errlen))
    return ORDO_E_STORAGE;
  if (!exec_ok(c, "SELECT pg_advisory_xact_lock(hashtextextended('"
                  PG_SCHEMA_LOCK "', 0))", err, errlen) ||
      !exec_ok(c, "CREATE TABLE IF NOT EXISTS ordo_schema(version int NOT NULL)",
               err, errlen))
    goto fail;
  PGresult *r = PQexec(c, "SELECT max(version) FROM ordo_schema");
  if (PQresultStatus(r) != PGRES_TUPLES_OK) {
    snprintf(err, errlen, "%s", PQerrorMessage(c));
    PQclear(r);
    goto fail;
  }
  version = PQgetisnull(r, 0, 0) ? 0 : atoi(PQgetvalue(r, 0, 0));
  PQclear(r);
  if (version > PG_SCHEMA_VERSION) {
    snprintf(err, errlen, "the database's ordo schema is version %d, newer "
             "than this ordo knows (%d): upgrade ordo", version,
             PG_SCHEMA_VERSION);
    goto fail;
  }
  for (int v = version; v < PG_SCHEMA_VERSION; v++) {
    char sql[96];
    snprintf(sql, sizeof sql, "INSERT INTO ordo_schema(version) VALUES (%d)",
             v + 1);
    if (!exec_ok(c, migrations[v], err, errlen) ||
        !exec_ok(c, sql, err, errlen))
      goto fail;
  }
  if (!exec_ok(c, "COMMIT", err, errlen))
    return ORDO_E_STORAGE;
  return ORDO_OK;
fail: {
  char ignored[8];
  (void)exec_ok(c, "ROLLBACK", ignored, sizeof ignored);
  return ORDO_E_STORAGE;
}
}

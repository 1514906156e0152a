/*
 * postgres_sql.c — the PostgreSQL backend's SQL: the statements each
 * request sends, query trees as SQL, and
 * how answers become a request's output.
 *
 * Every parameter and every result column travels in binary: bytea as its
 * bytes, bigint as 8 bytes big-endian, a list of names or values as a
 * bytea[] in the array wire format. Nothing is quoted into SQL text but
 * numbers this file makes, so no stored byte can change a statement.
 *
 * The tables are postgres_schema.c's: records are found by (store,
 * category, name); tags by (name, value), an index per tag table, which is
 * what WQL's equality and IN use.
 *
 * A write answers with a row count in one statement (data-modifying CTEs),
 * so a record that is missing or already there changes nothing and fails
 * only its own request. A strict write (BATCH, a chained write) raises
 * instead, through ordo_expect(): the error aborts the transaction, which
 * is what undoes the writes before it (postgres.c re-runs the others).
 */
#include "storage/postgres_int.h"

#include <arpa/inet.h>

/* ---- prepared statements ---------------------------------------------------- */

/* $1 store, $2 category, $3 name: the record a statement puts tags on (or
 * takes them off), locked as a foreign key would: a delete of it waits for
 * this transaction, so that it cannot leave the new tags behind. */
#define PG_ITEM "SELECT id FROM ordo_item WHERE store = $1 AND category = $2" \
                " AND name = $3 FOR KEY SHARE"
/* The store $1, locked as a foreign key would, by a statement that adds
 * records to it: a destroy waits, or the statement finds it gone and adds
 * nothing. */
#define PG_STORE "s AS (SELECT id FROM ordo_store WHERE id = $1 FOR KEY SHARE)"
/* Insert or overwrite the tags named in $N (names) / $N+1 (values) of the
 * record in CTE i. Names are unique per list (send dedupes): ON CONFLICT
 * may not touch one row twice. */
#define PG_TAGS_PUT(tbl, n, v)                                                 \
  "INSERT INTO " tbl "(item, name, value) SELECT i.id, t.n, t.v FROM i,"       \
  " unnest(" n "::bytea[], " v "::bytea[]) AS t(n, v)"                         \
  " ON CONFLICT (item, name) DO UPDATE SET value = excluded.value"
/* Both kinds of tags of the record in CTE i, from $ne/$ve (encrypted) and
 * $np/$vp (plaintext). */
#define PG_TAGS_PUT_BOTH(ne, ve, np, vp)                                       \
  " e AS (" PG_TAGS_PUT("ordo_tag_enc", ne, ve) "),"                           \
  " p AS (" PG_TAGS_PUT("ordo_tag_plain", np, vp) ")"
/* Delete the record's tags (CTE i) whose names match `cond` ($ne for the
 * encrypted, $np for the plaintext table). */
#define PG_TAGS_DELETE_BOTH(cond, ne, np)                                      \
  " de AS (DELETE FROM ordo_tag_enc WHERE item IN (SELECT id FROM i)"          \
  " AND name " cond " (" ne "::bytea[])),"                                     \
  " dp AS (DELETE FROM ordo_tag_plain WHERE item IN (SELECT id FROM i)"        \
  " AND name " cond " (" np "::bytea[]))"
#define PG_COUNT_I " SELECT count(*) FROM i"
#define PG_EXPECT_I(state, msg)                                                \
  " SELECT ordo_expect(count(*), '" state "', '" msg "') FROM i"
#define PG_NOT_FOUND_I PG_EXPECT_I(PG_STATE_NOT_FOUND, "record not found")

#define PG_ADD_HEAD                                                            \
  "WITH " PG_STORE ", i AS (INSERT INTO ordo_item(store, category, name,"      \
  " value) SELECT s.id, $2::bytea, $3::bytea, $4::bytea FROM s"                \
  " ON CONFLICT DO NOTHING RETURNING id),"                                     \
  PG_TAGS_PUT_BOTH("$5", "$6", "$7", "$8")
#define PG_KEYED_HEAD(verb, set)                                               \
  "WITH i AS (" verb " ordo_item " set " WHERE store = $1 AND category = $2"   \
  " AND name = $3 RETURNING id)"
#define PG_ADD_TAGS_HEAD                                                       \
  "WITH i AS (" PG_ITEM ")," PG_TAGS_PUT_BOTH("$4", "$5", "$6", "$7")
/* Replace: remove the tags not in the new lists, upsert the rest (one
 * statement must not delete and insert the same row). */
#define PG_REPLACE_TAGS_HEAD                                                   \
  "WITH i AS (" PG_ITEM ")," PG_TAGS_DELETE_BOTH("<> ALL", "$4", "$6") ","     \
  PG_TAGS_PUT_BOTH("$4", "$5", "$6", "$7")
#define PG_DELETE_TAGS_HEAD                                                    \
  "WITH i AS (" PG_ITEM ")," PG_TAGS_DELETE_BOTH("= ANY", "$4", "$5")
/* The record's value (k 0), then its tags (k 1 encrypted, 2 plaintext) in
 * name order, as the SQLite backend lists them. */
#define PG_TAG_ROWS(k, tbl)                                                    \
  " UNION ALL SELECT " k ", t.name, t.value FROM " tbl " t"                    \
  " JOIN ordo_item it ON t.item = it.id WHERE it.store = $1"                   \
  " AND it.category = $2 AND it.name = $3"

/* n records and their tags in one INSERT: the group's adds cost one
 * statement, not one each. v numbers the records (ordinality) and they are
 * inserted in that order, so the ids the sequence gives them rise with it
 * and m numbers them back by id (one INSERT never runs in parallel); the
 * tags follow their record's number. A plain INSERT (no ON CONFLICT,
 * whose speculative insertion costs more per row): a record already there,
 * or twice in the run, fails the statement with unique_violation, and
 * postgres.c runs the group again one statement per request, where each
 * add that finds its record there fails alone. */
#define PG_ADDS_HEAD                                                           \
  "WITH " PG_STORE ", v AS (SELECT c, n, val, o FROM unnest($2::bytea[],"      \
  " $3::bytea[], $4::bytea[]) WITH ORDINALITY AS v(c, n, val, o)),"            \
  " i AS (INSERT INTO ordo_item(store, category, name, value)"                 \
  " SELECT s.id, c, n, val FROM v, s ORDER BY o RETURNING id),"                \
  " m AS (SELECT id, row_number() OVER (ORDER BY id) AS o FROM i),"            \
  " e AS (INSERT INTO ordo_tag_enc(item, name, value) SELECT m.id, t.n, t.v"   \
  " FROM unnest($5::bigint[], $6::bytea[], $7::bytea[]) AS t(o, n, v)"         \
  " JOIN m ON m.o = t.o),"                                                     \
  " p AS (INSERT INTO ordo_tag_plain(item, name, value) SELECT m.id, t.n, t.v" \
  " FROM unnest($8::bigint[], $9::bytea[], $10::bytea[]) AS t(o, n, v)"        \
  " JOIN m ON m.o = t.o)"

static const char *const ps_sql[PS_COUNT] = {
    [PS_ADD] = PG_ADD_HEAD PG_COUNT_I,
    [PS_ADD_S] = PG_ADD_HEAD PG_EXPECT_I(
        PG_STATE_DUPLICATE,
        "a record with this category and name already exists"),
    [PS_GET] = "SELECT 0 AS k, value AS a, NULL::bytea AS b FROM ordo_item"
               " WHERE store = $1 AND category = $2 AND name = $3"
               PG_TAG_ROWS("1", "ordo_tag_enc")
               PG_TAG_ROWS("2", "ordo_tag_plain") " ORDER BY 1, 2",
    [PS_UPDATE] = PG_KEYED_HEAD("UPDATE", "SET value = $4") PG_COUNT_I,
    [PS_UPDATE_S] = PG_KEYED_HEAD("UPDATE", "SET value = $4") PG_NOT_FOUND_I,
    [PS_DELETE] = PG_KEYED_HEAD("DELETE FROM", "") PG_COUNT_I,
    [PS_DELETE_S] = PG_KEYED_HEAD("DELETE FROM", "") PG_NOT_FOUND_I,
    [PS_ADD_TAGS] = PG_ADD_TAGS_HEAD PG_COUNT_I,
    [PS_ADD_TAGS_S] = PG_ADD_TAGS_HEAD PG_NOT_FOUND_I,
    [PS_REPLACE_TAGS] = PG_REPLACE_TAGS_HEAD PG_COUNT_I,
    [PS_REPLACE_TAGS_S] = PG_REPLACE_TAGS_HEAD PG_NOT_FOUND_I,
    [PS_DELETE_TAGS] = PG_DELETE_TAGS_HEAD PG_COUNT_I,
    [PS_DELETE_TAGS_S] = PG_DELETE_TAGS_HEAD PG_NOT_FOUND_I,
    [PS_META_SET] = "INSERT INTO ordo_meta(store, name, value)"
                    " VALUES ($1, $2, $3) ON CONFLICT (store, name)"
                    " DO UPDATE SET value = excluded.value",
    [PS_META_GET] = "SELECT value FROM ordo_meta WHERE store = $1"
                    " AND name = $2",
    [PS_ADDS] = PG_ADDS_HEAD " SELECT o FROM m",
    /* $1: the token the pass before this one on the connection set, which
     * the session still holds only if that pass committed (a setting made
     * in a transaction that aborts reverts); $2 this pass's. The check is
     * the WHERE: the server runs it before set_config. */
    [PS_GUARD] = "SELECT set_config('ordo.pass', $2, false) WHERE ordo_expect("
                 "(coalesce(current_setting('ordo.pass', true), '') = $1)::int,"
                 " '" PG_STATE_BEHIND_FAILED "', 'the transaction sent before"
                 " it on this connection did not commit') > 0",
    /* $1 the store's name, which names its lease; $2 the epoch it was
     * fenced at. Raises PG_STATE_FENCED when the lease is elsewhere now;
     * else holds a share lock on the lease row until the transaction
     * ends (postgres_schema.c, migration 3). */
    [PS_FENCE] = "SELECT ordo_fence($1, $2)",
};

int ordo__pg_prepare_all(PGconn *c, char *err, size_t errlen) {
  for (int i = 0; i < PS_COUNT; i++) {
    char name[16];
    snprintf(name, sizeof name, "ordo_%d", i);
    PGresult *r = PQprepare(c, name, ps_sql[i], 0, NULL);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
      snprintf(err, errlen, "prepare: %s", PQerrorMessage(c));
    PQclear(r);
    if (!ok)
      return ORDO_E_STORAGE;
  }
  return ORDO_OK;
}

/* ---- binary parameters ---------------------------------------------------------- */

#define OID_BYTEA 17
#define OID_INT8 20
#define OID_BYTEA_ARRAY 1001
#define OID_INT8_ARRAY 1016

static void params_free(pg_params *p) {
  for (int i = 0; i < p->nowned; i++)
    free(p->owned[i]);
  free(p->owned);
  free(p->values);
  free(p->lengths);
  free(p->formats);
  free(p->types);
  memset(p, 0, sizeof(*p));
}

/* Room for one more parameter; its number ($N) or 0 after out of memory. */
static int params_slot(pg_params *p) {
  if (p->oom)
    return 0;
  if (p->n == p->cap) {
    int ncap = p->cap ? p->cap * 2 : 8;
    const char **v = realloc(p->values, (size_t)ncap * sizeof(*v));
    if (v != NULL)
      p->values = v;
    int *l = realloc(p->lengths, (size_t)ncap * sizeof(*l));
    if (l != NULL)
      p->lengths = l;
    int *f = realloc(p->formats, (size_t)ncap * sizeof(*f));
    if (f != NULL)
      p->formats = f;
    Oid *t = realloc(p->types, (size_t)ncap * sizeof(*t));
    if (t != NULL)
      p->types = t;
    if (v == NULL || l == NULL || f == NULL || t == NULL) {
      p->oom = 1;
      return 0;
    }
    p->cap = ncap;
  }
  p->formats[p->n] = 1;
  return ++p->n;
}

/* A buffer made here, freed with the set (NULL after out of memory). */
static char *params_own(pg_params *p, size_t len) {
  if (p->oom)
    return NULL;
  if (p->nowned == p->capowned) {
    int ncap = p->capowned ? p->capowned * 2 : 4;
    char **o = realloc(p->owned, (size_t)ncap * sizeof(*o));
    if (o == NULL) {
      p->oom = 1;
      return NULL;
    }
    p->owned = o;
    p->capowned = ncap;
  }
  char *b = malloc(len > 0 ? len : 1);
  if (b == NULL) {
    p->oom = 1;
    return NULL;
  }
  p->owned[p->nowned++] = b;
  return b;
}

/* Borrowed bytes as bytea. An empty value still needs a non-NULL pointer:
 * NULL is SQL NULL. The caller's buffers outlive the statement (storage.h:
 * borrowed until done). */
static int param_buf(pg_params *p, const ordo_storage_buf *b) {
  int i = params_slot(p);
  if (i == 0)
    return 0;
  p->values[i - 1] = b->data != NULL ? (const char *)b->data : "";
  p->lengths[i - 1] = (int)b->len;
  p->types[i - 1] = OID_BYTEA;
  return i;
}

static void put_be32(unsigned char *d, uint32_t v) {
  v = htonl(v);
  memcpy(d, &v, 4);
}

/* v as bigint; null: SQL NULL (LIMIT NULL is no limit). */
static int param_i64(pg_params *p, long long v, int null) {
  int i = params_slot(p);
  unsigned char *d = null ? NULL : (unsigned char *)params_own(p, 8);
  if (i == 0 || (!null && d == NULL))
    return 0;
  if (!null) {
    put_be32(d, (uint32_t)((unsigned long long)v >> 32));
    put_be32(d + 4, (uint32_t)v);
  }
  p->values[i - 1] = (const char *)d;
  p->lengths[i - 1] = null ? 0 : 8;
  p->types[i - 1] = OID_INT8;
  return i;
}

/* bufs[0..n) as one bytea[] (the array wire format: dimensions, then each
 * element's length and bytes). */
static int param_array(pg_params *p, const ordo_storage_buf *const *bufs,
                       size_t n) {
  size_t len = n > 0 ? 20 : 12;
  for (size_t k = 0; k < n; k++)
    len += 4 + bufs[k]->len;
  int i = params_slot(p);
  unsigned char *d = (unsigned char *)params_own(p, len);
  if (i == 0 || d == NULL)
    return 0;
  if (len > INT32_MAX) {
    p->oom = 1; /* past what one parameter can carry */
    return 0;
  }
  put_be32(d, n > 0 ? 1 : 0); /* dimensions */
  put_be32(d + 4, 0);         /* no NULLs */
  put_be32(d + 8, OID_BYTEA);
  size_t o = 12;
  if (n > 0) {
    put_be32(d + 12, (uint32_t)n);
    put_be32(d + 16, 1); /* lower bound */
    o = 20;
  }
  for (size_t k = 0; k < n; k++) {
    put_be32(d + o, (uint32_t)bufs[k]->len);
    if (bufs[k]->len > 0)
      memcpy(d + o + 4, bufs[k]->data, bufs[k]->len);
    o += 4 + bufs[k]->len;
  }
  p->values[i - 1] = (const char *)d;
  p->lengths[i - 1] = (int)len;
  p->types[i - 1] = OID_BYTEA_ARRAY;
  return i;
}

/* v[0..n) as one bigint[] (the array wire format). */
static int param_i64_array(pg_params *p, const long long *v, size_t n) {
  size_t len = (n > 0 ? 20 : 12) + n * 12;
  int i = params_slot(p);
  unsigned char *d = (unsigned char *)params_own(p, len);
  if (i == 0 || d == NULL)
    return 0;
  put_be32(d, n > 0 ? 1 : 0);
  put_be32(d + 4, 0);
  put_be32(d + 8, OID_INT8);
  size_t o = 12;
  if (n > 0) {
    put_be32(d + 12, (uint32_t)n);
    put_be32(d + 16, 1);
    o = 20;
  }
  for (size_t k = 0; k < n; k++) {
    put_be32(d + o, 8);
    put_be32(d + o + 4, (uint32_t)((unsigned long long)v[k] >> 32));
    put_be32(d + o + 8, (uint32_t)v[k]);
    o += 12;
  }
  p->values[i - 1] = (const char *)d;
  p->lengths[i - 1] = (int)len;
  p->types[i - 1] = OID_INT8_ARRAY;
  return i;
}

/* Whether r's tag i is overwritten by a later one of the same name and
 * kind in the same list (the later value is the one that counts). */
static int tag_overwritten(const ordo_storage_record *r, size_t i) {
  const ordo_storage_tag *t = &r->tags[i];
  for (size_t j = i + 1; j < r->ntags; j++)
    if ((r->tags[j].plaintext != 0) == (t->plaintext != 0) &&
        r->tags[j].name.len == t->name.len &&
        (t->name.len == 0 ||
         memcmp(r->tags[j].name.data, t->name.data, t->name.len) == 0))
      return 1;
  return 0;
}

/* The names (and, with values, the values) of r's tags of one kind, as two
 * arrays. A name given twice keeps its last value, as one upsert after
 * another would: PostgreSQL's ON CONFLICT may not touch a row twice. */
static int param_tags(pg_params *p, const ordo_storage_record *r, int plaintext,
                      int values) {
  const ordo_storage_buf **names = malloc((r->ntags + 1) * sizeof(*names));
  const ordo_storage_buf **vals = malloc((r->ntags + 1) * sizeof(*vals));
  size_t n = 0;
  if (names == NULL || vals == NULL) {
    free(names);
    free(vals);
    p->oom = 1;
    return 0;
  }
  for (size_t i = 0; i < r->ntags; i++) {
    const ordo_storage_tag *t = &r->tags[i];
    if ((t->plaintext != 0) != (plaintext != 0) || tag_overwritten(r, i))
      continue;
    names[n] = &t->name;
    vals[n++] = &t->value;
  }
  int a = param_array(p, names, n);
  if (values)
    (void)param_array(p, vals, n);
  free(names);
  free(vals);
  return a;
}

/* ---- query trees as SQL ------------------------------------------------------ */

typedef struct sqlb {
  char *s;
  size_t len, cap;
  int oom;
  /* The leaf that drives the query (tag_driver), or NULL. */
  const ordo_storage_query *driver;
} sqlb;

static void ORDO__PRINTF(2, 3) sql_put(sqlb *b, const char *fmt, ...) {
  if (b->oom)
    return;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0 || b->len + (size_t)n + 1 > b->cap) {
    char *t = n < 0 ? NULL : ordo__grow(b->s, &b->cap, b->len + (size_t)n + 1, 256);
    if (t == NULL) {
      b->oom = 1;
      return;
    }
    b->s = t;
  }
  va_start(ap, fmt);
  vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
}

/* A LIKE pattern for PostgreSQL, whose LIKE takes '\' as an escape where
 * ordo's has none: every backslash doubled. */
static int param_like(pg_params *p, const ordo_storage_buf *pat) {
  size_t extra = 0;
  for (size_t i = 0; i < pat->len; i++)
    extra += pat->data[i] == '\\';
  if (extra == 0)
    return param_buf(p, pat);
  ordo_storage_buf *b = (ordo_storage_buf *)params_own(p, sizeof(*b));
  unsigned char *d = (unsigned char *)params_own(p, pat->len + extra);
  if (b == NULL || d == NULL)
    return 0;
  size_t o = 0;
  for (size_t i = 0; i < pat->len; i++) {
    if (pat->data[i] == '\\')
      d[o++] = '\\';
    d[o++] = pat->data[i];
  }
  b->data = d;
  b->len = o;
  return param_buf(p, b);
}

/*
 * Which leaf drives a query: an EQ or IN on a tag at the top, or the first
 * such child of a top-level AND. It is written it.id = ANY (ARRAY(...)):
 * the tag index gives the ids first and the items are fetched by primary
 * key, whatever the planner knows. Written as IN (subquery) like the other
 * leaves, a table without statistics yet (a new queue, before autovacuum
 * has analyzed it) was read whole to find one batch by its id: 8-16 ms at
 * 10,000 records instead of 0.2.
 */
static const ordo_storage_query *tag_driver(const ordo_storage_query *q) {
  if (q == NULL)
    return NULL;
  if (q->op == ORDO_SQ_EQ || (q->op == ORDO_SQ_IN && q->nvalues > 0))
    return q;
  if (q->op == ORDO_SQ_AND)
    for (size_t i = 0; i < q->nchildren; i++)
      if (q->children[i]->op == ORDO_SQ_EQ ||
          (q->children[i]->op == ORDO_SQ_IN && q->children[i]->nvalues > 0))
        return q->children[i];
  return NULL;
}

/* How a leaf's subquery opens and closes (see tag_driver). */
static const char *in_open(const sqlb *b, const ordo_storage_query *q) {
  return q == b->driver ? "it.id = ANY (ARRAY(SELECT item" : "it.id IN (SELECT item";
}

static const char *in_close(const sqlb *b, const ordo_storage_query *q) {
  return q == b->driver ? "))" : ")";
}

/* A validated tree as a boolean over `it` (ordo_item). */
static void sql_expr(sqlb *b, pg_params *p, const ordo_storage_query *q) {
  static const char *const cmp[] = {
      [ORDO_SQ_EQ] = "=", [ORDO_SQ_NEQ] = "<>", [ORDO_SQ_GT] = ">",
      [ORDO_SQ_GTE] = ">=", [ORDO_SQ_LT] = "<", [ORDO_SQ_LTE] = "<="};
  const char *tbl = q->plaintext ? "ordo_tag_plain" : "ordo_tag_enc";
  switch (q->op) {
  case ORDO_SQ_ALL:
    sql_put(b, "true");
    return;
  case ORDO_SQ_AND:
  case ORDO_SQ_OR:
    if (q->nchildren == 0) {
      sql_put(b, q->op == ORDO_SQ_AND ? "true" : "false");
      return;
    }
    for (size_t i = 0; i < q->nchildren; i++) {
      sql_put(b, i == 0 ? "(" : q->op == ORDO_SQ_AND ? " AND (" : " OR (");
      sql_expr(b, p, q->children[i]);
      sql_put(b, ")");
    }
    return;
  case ORDO_SQ_NOT:
    sql_put(b, "NOT (");
    sql_expr(b, p, q->children[0]);
    sql_put(b, ")");
    return;
  case ORDO_SQ_NAME_GTE:
  case ORDO_SQ_NAME_LT:
    /* bytea compares bytewise: the (store, category, name) index serves. */
    sql_put(b, "it.name %s $%d", q->op == ORDO_SQ_NAME_GTE ? ">=" : "<",
            param_buf(p, &q->values[0]));
    return;
  case ORDO_SQ_IN: {
    if (q->nvalues == 0) {
      sql_put(b, "false"); /* equal to one of nothing */
      return;
    }
    const ordo_storage_buf **vals = malloc(q->nvalues * sizeof(*vals));
    if (vals == NULL) {
      b->oom = 1;
      return;
    }
    for (size_t i = 0; i < q->nvalues; i++)
      vals[i] = &q->values[i];
    int name = param_buf(p, &q->tag_name);
    int arr = param_array(p, vals, q->nvalues);
    free(vals);
    sql_put(b, "%s FROM %s WHERE name = $%d AND value = ANY ($%d::bytea[])%s",
            in_open(b, q), tbl, name, arr, in_close(b, q));
    return;
  }
  case ORDO_SQ_LIKE: {
    int name = param_buf(p, &q->tag_name);
    int pat = param_like(p, &q->values[0]);
    int chars = memchr(q->values[0].data, '_', q->values[0].len) != NULL;
    sql_put(b, chars ? "it.id IN (SELECT item FROM %s WHERE name = $%d AND"
                       " ordo_like_chars(value, $%d))"
                     : "it.id IN (SELECT item FROM %s WHERE name = $%d AND"
                       " value LIKE $%d)",
            tbl, name, pat);
    return;
  }
  default: {
    int name = param_buf(p, &q->tag_name);
    int val = param_buf(p, &q->values[0]);
    sql_put(b, "%s FROM %s WHERE name = $%d AND value %s $%d%s", in_open(b, q),
            tbl, name, cmp[q->op], val, in_close(b, q));
    return;
  }
  }
}

/* "FROM ordo_item it WHERE <store, category and query>". */
static void sql_where(sqlb *b, pg_params *p, pg_db *db,
                      const ordo_storage_req *req) {
  sql_put(b, " FROM ordo_item it WHERE it.store = $%d",
          param_i64(p, db->store, 0));
  if (req->rec.category.data != NULL)
    sql_put(b, " AND it.category = $%d", param_buf(p, &req->rec.category));
  if (req->query != NULL) {
    b->driver = tag_driver(req->query);
    sql_put(b, " AND (");
    sql_expr(b, p, req->query);
    sql_put(b, ")");
  }
}

/* ---- sending ------------------------------------------------------------------- */

static int send_params(PGconn *c, const char *prepared, const char *sql,
                       const pg_params *p) {
  if (prepared != NULL)
    return PQsendQueryPrepared(c, prepared, p->n, p->values, p->lengths,
                               p->formats, 1);
  return PQsendQueryParams(c, sql, p->n, p->types, p->values, p->lengths,
                           p->formats, 1);
}

/* The dynamic statements: SCAN (rows, then with want_count the count),
 * COUNT, DELETE_MATCHING. */
static int send_query(pg_db *db, PGconn *c, ordo_storage_req *req, int *nsent) {
  int rc = ORDO_OK;
  for (int part = 0; part < 2 && rc == ORDO_OK; part++) {
    sqlb b = {0};
    pg_params p = {0};
    int scan = req->opcode == ORDO_STORAGE_SCAN && part == 0;
    if (part == 1 && !(req->opcode == ORDO_STORAGE_SCAN && req->want_count))
      break;
    if (scan) {
      /* The page of records in order (r numbers them), each followed by
       * its tags: one statement, one snapshot. */
      int by_name = (req->flags & ORDO_STORAGE_REQ_BY_NAME) &&
                    req->rec.category.data != NULL;
      const char *order = by_name ? "it.name" : "it.id";
      unsigned long long lim = req->limit, off = req->offset;
      sql_put(&b, "WITH m AS (SELECT row_number() OVER (ORDER BY %s) AS r,"
              " it.id, it.category, it.name, it.value", order);
      sql_where(&b, &p, db, req);
      sql_put(&b, " ORDER BY %s LIMIT $%d OFFSET $%d)", order,
              param_i64(&p, lim > INT64_MAX ? INT64_MAX : (long long)lim,
                        lim == 0),
              param_i64(&p, off > INT64_MAX ? INT64_MAX : (long long)off, 0));
      sql_put(&b, " SELECT m.r, 0 AS k, m.category, m.name, m.value FROM m");
      if (!(req->flags & ORDO_STORAGE_REQ_NO_TAGS))
        sql_put(&b, " UNION ALL SELECT m.r, 1, NULL, t.name, t.value"
                " FROM ordo_tag_enc t JOIN m ON t.item = m.id"
                " UNION ALL SELECT m.r, 2, NULL, t.name, t.value"
                " FROM ordo_tag_plain t JOIN m ON t.item = m.id");
      sql_put(&b, " ORDER BY 1, 2, 4");
    } else if (req->opcode == ORDO_STORAGE_DELETE_MATCHING) {
      sql_put(&b, "WITH d AS (DELETE FROM ordo_item it USING (SELECT it.id");
      sql_where(&b, &p, db, req);
      sql_put(&b, ") AS s WHERE it.id = s.id RETURNING 1)"
              " SELECT count(*) FROM d");
    } else {
      sql_put(&b, "SELECT count(*)");
      sql_where(&b, &p, db, req);
    }
    if (b.oom || p.oom) {
      ordo__storage_req_msg(req, "out of memory");
      rc = ORDO_E_NOMEM;
    } else if (!send_params(c, NULL, b.s, &p)) {
      ordo__storage_req_msg(req, "send: %s", PQerrorMessage(c));
      rc = ORDO_E_STORAGE;
    } else {
      (*nsent)++;
    }
    free(b.s);
    params_free(&p);
  }
  return rc;
}

int ordo__pg_send(pg_db *db, pg_conn *pc, ordo_storage_req *req, int strict,
                  int *nsent) {
  const ordo_storage_record *r = &req->rec;
  pg_params p = {0};
  int ps;
  *nsent = 0;
  switch (req->opcode) {
  case ORDO_STORAGE_SCAN:
  case ORDO_STORAGE_COUNT:
  case ORDO_STORAGE_DELETE_MATCHING:
    return send_query(db, pc->c, req, nsent);
  case ORDO_STORAGE_SHRINK:
    return ORDO_OK; /* the server's memory is the server's */
  case ORDO_STORAGE_META_SET:
  case ORDO_STORAGE_META_GET:
    ps = req->opcode == ORDO_STORAGE_META_SET ? PS_META_SET : PS_META_GET;
    param_i64(&p, db->store, 0);
    param_buf(&p, &r->name);
    if (ps == PS_META_SET)
      param_buf(&p, &r->value);
    break;
  default:
    switch (req->opcode) {
    case ORDO_STORAGE_ADD: ps = PS_ADD; break;
    case ORDO_STORAGE_GET: ps = PS_GET; break;
    case ORDO_STORAGE_UPDATE_VALUE: ps = PS_UPDATE; break;
    case ORDO_STORAGE_DELETE: ps = PS_DELETE; break;
    case ORDO_STORAGE_ADD_TAGS: ps = PS_ADD_TAGS; break;
    case ORDO_STORAGE_REPLACE_TAGS: ps = PS_REPLACE_TAGS; break;
    default: ps = PS_DELETE_TAGS; break;
    }
    if (strict && ps != PS_GET)
      ps++; /* the _S variant follows each */
    param_i64(&p, db->store, 0);
    param_buf(&p, &r->category);
    param_buf(&p, &r->name);
    if (req->opcode == ORDO_STORAGE_ADD || req->opcode == ORDO_STORAGE_UPDATE_VALUE)
      param_buf(&p, &r->value);
    if (req->opcode == ORDO_STORAGE_ADD || req->opcode == ORDO_STORAGE_ADD_TAGS ||
        req->opcode == ORDO_STORAGE_REPLACE_TAGS) {
      param_tags(&p, r, 0, 1);
      param_tags(&p, r, 1, 1);
    } else if (req->opcode == ORDO_STORAGE_DELETE_TAGS) {
      param_tags(&p, r, 0, 0);
      param_tags(&p, r, 1, 0);
    }
    break;
  }
  int rc = ORDO_OK;
  char name[16];
  snprintf(name, sizeof name, "ordo_%d", ps);
  if (p.oom) {
    ordo__storage_req_msg(req, "out of memory");
    rc = ORDO_E_NOMEM;
  } else if (!send_params(pc->c, name, NULL, &p)) {
    ordo__storage_req_msg(req, "send: %s", PQerrorMessage(pc->c));
    rc = ORDO_E_STORAGE;
  } else {
    *nsent = 1;
  }
  params_free(&p);
  return rc;
}

static long long cell_i64(const PGresult *res, int row, int col);

/* ---- a run of ADDs as one statement ------------------------------------------ */

int ordo__pg_send_adds(pg_db *db, pg_conn *pc, ordo_storage_req *const *reqs,
                       size_t n) {
  pg_params p = {0};
  size_t ntags = 0;
  for (size_t k = 0; k < n; k++)
    ntags += reqs[k]->rec.ntags;
  const ordo_storage_buf **cats = malloc((n + 1) * sizeof(*cats));
  const ordo_storage_buf **names = malloc((n + 1) * sizeof(*names));
  const ordo_storage_buf **vals = malloc((n + 1) * sizeof(*vals));
  const ordo_storage_buf **tn[2], **tv[2];
  long long *to[2];
  size_t nt[2] = {0, 0};
  int rc = ORDO_OK;
  for (int k = 0; k < 2; k++) {
    tn[k] = malloc((ntags + 1) * sizeof(*tn[k]));
    tv[k] = malloc((ntags + 1) * sizeof(*tv[k]));
    to[k] = malloc((ntags + 1) * sizeof(*to[k]));
    if (tn[k] == NULL || tv[k] == NULL || to[k] == NULL)
      p.oom = 1;
  }
  if (cats == NULL || names == NULL || vals == NULL)
    p.oom = 1;
  for (size_t k = 0; k < n && !p.oom; k++) {
    const ordo_storage_record *r = &reqs[k]->rec;
    cats[k] = &r->category;
    names[k] = &r->name;
    vals[k] = &r->value;
    for (size_t i = 0; i < r->ntags; i++) {
      int kind = r->tags[i].plaintext != 0;
      if (tag_overwritten(r, i))
        continue;
      tn[kind][nt[kind]] = &r->tags[i].name;
      tv[kind][nt[kind]] = &r->tags[i].value;
      to[kind][nt[kind]++] = (long long)k + 1;
    }
  }
  if (!p.oom) {
    param_i64(&p, db->store, 0);
    param_array(&p, cats, n);
    param_array(&p, names, n);
    param_array(&p, vals, n);
    for (int k = 0; k < 2; k++) {
      param_i64_array(&p, to[k], nt[k]);
      param_array(&p, tn[k], nt[k]);
      param_array(&p, tv[k], nt[k]);
    }
  }
  if (p.oom) {
    rc = ORDO_E_NOMEM;
  } else {
    char name[16];
    snprintf(name, sizeof name, "ordo_%d", PS_ADDS);
    if (!PQsendQueryPrepared(pc->c, name, p.n, p.values, p.lengths, p.formats,
                             1))
      rc = ORDO_E_STORAGE;
  }
  free(cats);
  free(names);
  free(vals);
  for (int k = 0; k < 2; k++) {
    free(tn[k]);
    free(tv[k]);
    free(to[k]);
  }
  params_free(&p);
  return rc;
}

void ordo__pg_take_adds(ordo_storage_req *const *reqs, size_t n,
                        const PGresult *res) {
  unsigned char *in = calloc(n + 1, 1);
  int rows = PQntuples(res);
  for (int i = 0; i < rows && in != NULL; i++) {
    long long o = cell_i64(res, i, 0);
    if (o >= 1 && (size_t)o <= n)
      in[o - 1] = 1;
  }
  for (size_t k = 0; k < n; k++) {
    if (in != NULL && in[k])
      continue;
    reqs[k]->status = in != NULL ? ORDO_E_RECORD_DUPLICATE : ORDO_E_NOMEM;
    ordo__storage_req_msg(reqs[k], in != NULL ? "a record with this category and name "
                                     "already exists"
                                   : "out of memory");
  }
  free(in);
}

/* ---- answers ------------------------------------------------------------------- */

int ordo__pg_is_conn_error(PGconn *c, const PGresult *res) {
  if (PQstatus(c) == CONNECTION_BAD)
    return 1;
  const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
  /* No SQLSTATE: libpq's own (the socket); 08: connection exception; 57:
   * operator intervention (shutdown, admin_shutdown, crash_shutdown). */
  return state == NULL || strncmp(state, "08", 2) == 0 ||
         strncmp(state, "57", 2) == 0;
}

int ordo__pg_error_code(const PGresult *res) {
  const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
  if (state == NULL)
    return ORDO_E_STORAGE;
  if (strcmp(state, PG_STATE_NOT_FOUND) == 0)
    return ORDO_E_RECORD_NOT_FOUND;
  if (strcmp(state, PG_STATE_DUPLICATE) == 0 || strcmp(state, "23505") == 0)
    return ORDO_E_RECORD_DUPLICATE;
  if (strcmp(state, PG_STATE_FENCED) == 0)
    return ORDO_E_STORAGE_FENCED;
  /* serialization failure, deadlock, lock not available */
  if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0 ||
      strcmp(state, "55P03") == 0)
    return ORDO_E_STORAGE_BUSY;
  if (strncmp(state, "53", 2) == 0 && strcmp(state, "53200") == 0)
    return ORDO_E_NOMEM; /* out_of_memory on the server */
  return ORDO_E_STORAGE;
}

static int cell_copy(const PGresult *res, int row, int col,
                     ordo_storage_buf *dst) {
  size_t len = (size_t)PQgetlength(res, row, col);
  dst->data = malloc(len + 1);
  if (dst->data == NULL)
    return ORDO_E_NOMEM;
  if (len > 0)
    memcpy(dst->data, PQgetvalue(res, row, col), len);
  dst->data[len] = 0; /* usable as a C string, as SQLite's are */
  dst->len = len;
  return ORDO_OK;
}

static int buf_dup(ordo_storage_buf *dst, const ordo_storage_buf *src) {
  dst->data = malloc(src->len + 1);
  if (dst->data == NULL)
    return ORDO_E_NOMEM;
  if (src->len > 0)
    memcpy(dst->data, src->data, src->len);
  dst->data[src->len] = 0;
  dst->len = src->len;
  return ORDO_OK;
}

static long long cell_i64(const PGresult *res, int row, int col) {
  const unsigned char *d = (const unsigned char *)PQgetvalue(res, row, col);
  if (PQgetlength(res, row, col) != 8)
    return 0;
  unsigned long long v = 0;
  for (int i = 0; i < 8; i++)
    v = (v << 8) | d[i];
  return (long long)v;
}

static int cell_i32(const PGresult *res, int row, int col) {
  const unsigned char *d = (const unsigned char *)PQgetvalue(res, row, col);
  if (PQgetlength(res, row, col) != 4)
    return -1;
  return (int)(((uint32_t)d[0] << 24) | ((uint32_t)d[1] << 16) |
               ((uint32_t)d[2] << 8) | d[3]);
}

/* Append the tag on row `row` (its name in column ncol, its value in vcol;
 * kind 2 is plaintext) to rec, whose tag array holds *cap bytes. */
static int tag_append(ordo_storage_record *rec, size_t *cap, const PGresult *res,
                      int row, int kind, int ncol, int vcol) {
  if ((rec->ntags + 1) * sizeof(ordo_storage_tag) > *cap) {
    ordo_storage_tag *t = ordo__grow(rec->tags, cap,
                                     (rec->ntags + 1) * sizeof(*t),
                                     4 * sizeof(*t));
    if (t == NULL)
      return ORDO_E_NOMEM;
    rec->tags = t;
  }
  ordo_storage_tag *tag = &rec->tags[rec->ntags++];
  memset(tag, 0, sizeof(*tag)); /* counted first: clear frees halves */
  tag->plaintext = kind == 2;
  if (cell_copy(res, row, ncol, &tag->name) != ORDO_OK ||
      cell_copy(res, row, vcol, &tag->value) != ORDO_OK)
    return ORDO_E_NOMEM;
  return ORDO_OK;
}

static int take_get(ordo_storage_req *req, const PGresult *res) {
  ordo_storage_record *out = &req->result;
  int rows = PQntuples(res);
  size_t cap = 0;
  if (rows == 0 || cell_i32(res, 0, 0) != 0) {
    ordo__storage_req_msg(req, "record not found");
    return ORDO_E_RECORD_NOT_FOUND;
  }
  int st = ORDO_OK;
  if (cell_copy(res, 0, 1, &out->value) != ORDO_OK ||
      buf_dup(&out->category, &req->rec.category) != ORDO_OK ||
      buf_dup(&out->name, &req->rec.name) != ORDO_OK)
    st = ORDO_E_NOMEM;
  for (int i = 1; i < rows && st == ORDO_OK; i++)
    st = tag_append(out, &cap, res, i, cell_i32(res, i, 0), 1, 2);
  if (st != ORDO_OK) {
    ordo_storage_record_clear(out);
    ordo__storage_req_msg(req, "out of memory");
  }
  return st;
}

static int take_scan(ordo_storage_req *req, const PGresult *res) {
  int rows = PQntuples(res);
  size_t cap = 0, tagcap = 0;
  int st = ORDO_OK;
  for (int i = 0; i < rows && st == ORDO_OK; i++) {
    int kind = cell_i32(res, i, 1);
    if (kind != 0) {
      if (req->nresults == 0)
        continue; /* cannot happen: rows come in (r, k) order */
      st = tag_append(&req->results[req->nresults - 1], &tagcap, res, i, kind,
                      3, 4);
      continue;
    }
    if ((req->nresults + 1) * sizeof(ordo_storage_record) > cap) {
      ordo_storage_record *t = ordo__grow(req->results, &cap,
                                          (req->nresults + 1) * sizeof(*t),
                                          16 * sizeof(*t));
      if (t == NULL) {
        st = ORDO_E_NOMEM;
        break;
      }
      req->results = t;
    }
    ordo_storage_record *rec = &req->results[req->nresults++];
    memset(rec, 0, sizeof(*rec)); /* counted first: clear frees it */
    tagcap = 0;
    if (cell_copy(res, i, 2, &rec->category) != ORDO_OK ||
        cell_copy(res, i, 3, &rec->name) != ORDO_OK ||
        cell_copy(res, i, 4, &rec->value) != ORDO_OK)
      st = ORDO_E_NOMEM;
  }
  if (st != ORDO_OK) {
    ordo__storage_req_drop_output(req);
    ordo__storage_req_msg(req, "out of memory");
  }
  return st;
}

int ordo__pg_take(pg_db *db, ordo_storage_req *req, int part, PGresult *res) {
  (void)db;
  ExecStatusType s = PQresultStatus(res);
  if (s == PGRES_FATAL_ERROR) {
    const char *m = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    int code = ordo__pg_error_code(res);
    if (code == ORDO_E_RECORD_NOT_FOUND || code == ORDO_E_RECORD_DUPLICATE)
      ordo__storage_req_msg(req, "%s", m != NULL ? m : ordo_strerror(code));
    else
      ordo__storage_req_msg(req, "PostgreSQL: %s", m != NULL ? m : PQresultErrorMessage(res));
    return code;
  }
  if (s != PGRES_TUPLES_OK && s != PGRES_COMMAND_OK) {
    ordo__storage_req_msg(req, "PostgreSQL: unexpected answer %s", PQresStatus(s));
    return ORDO_E_STORAGE;
  }
  int rows = s == PGRES_TUPLES_OK ? PQntuples(res) : 0;
  switch (req->opcode) {
  case ORDO_STORAGE_GET:
    return take_get(req, res);
  case ORDO_STORAGE_SCAN:
    if (part == 1) {
      req->count = rows > 0 ? (unsigned long long)cell_i64(res, 0, 0) : 0;
      return ORDO_OK;
    }
    return take_scan(req, res);
  case ORDO_STORAGE_COUNT:
  case ORDO_STORAGE_DELETE_MATCHING:
    req->count = rows > 0 ? (unsigned long long)cell_i64(res, 0, 0) : 0;
    return ORDO_OK;
  case ORDO_STORAGE_META_SET:
    return ORDO_OK;
  case ORDO_STORAGE_META_GET:
    if (rows == 0) {
      ordo__storage_req_msg(req, "metadata key not set");
      return ORDO_E_NOT_FOUND;
    }
    if (cell_copy(res, 0, 0, &req->result.value) != ORDO_OK) {
      ordo__storage_req_msg(req, "out of memory");
      return ORDO_E_NOMEM;
    }
    return ORDO_OK;
  default: /* the keyed writes: how many records the statement found */
    if (rows > 0 && cell_i64(res, 0, 0) > 0)
      return ORDO_OK;
    if (req->opcode == ORDO_STORAGE_ADD) {
      ordo__storage_req_msg(req, "a record with this category and name already exists");
      return ORDO_E_RECORD_DUPLICATE;
    }
    ordo__storage_req_msg(req, "record not found");
    return ORDO_E_RECORD_NOT_FOUND;
  }
}

/*
 * test_wql.c — tests of the WQL parser (src/wallet/wql.c): every operator,
 * the shapes of the trees (checked through ordo__wql_to_string), plaintext
 * and encrypted leaves, every refusal with its code and message, the depth
 * and size limits, leaf walking, and allocation failure at every point.
 *
 * Trees are freed with ordo_storage_query_free, as the wallet does; each test
 * must leave nothing behind under ASan's leak checker.
 */
#include "ordo.h"
#include "storage/storage.h"
#include "wallet/wql.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* cmocka.h needs these first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

/* ------------------------------------------------------------------------ */
/* Helpers                                                                   */
/* ------------------------------------------------------------------------ */

/* Parse json, which must succeed, and return the tree. */
static ordo_storage_query *parse_ok(const char *json) {
  ordo_storage_query *q = (ordo_storage_query *)1;
  char *msg = (char *)1;
  int rc = ordo__wql_parse(json, &q, &msg);
  if (rc != ORDO_OK)
    fail_msg("parse of %s: %s (%s)", json ? json : "NULL", ordo_errname(rc),
             msg ? msg : "no message");
  assert_non_null(q);
  assert_null(msg);
  return q;
}

/* Parse json and check the rendering of the tree. */
static void expect_tree(const char *json, const char *want) {
  ordo_storage_query *q = parse_ok(json);
  char *s = ordo__wql_to_string(q);
  assert_non_null(s);
  if (strcmp(s, want) != 0)
    fail_msg("%s\n  gave   %s\n  wanted %s", json, s, want);
  free(s);
  ordo_storage_query_free(q);
}

/* Parse json, which must fail with code and a message containing each of
 * the NULL-terminated fragments. */
static void expect_error(const char *json, int code, ...) {
  ordo_storage_query *q = (ordo_storage_query *)1;
  char *msg = NULL;
  int rc = ordo__wql_parse(json, &q, &msg);
  if (rc != code)
    fail_msg("%s: got %s (%s), wanted %s", json, ordo_errname(rc),
             msg ? msg : "no message", ordo_errname(code));
  assert_null(q);
  assert_non_null(msg);
  va_list ap;
  va_start(ap, code);
  const char *frag;
  while ((frag = va_arg(ap, const char *)) != NULL)
    if (strstr(msg, frag) == NULL)
      fail_msg("%s: message \"%s\" lacks \"%s\"", json, msg, frag);
  va_end(ap);
  free(msg);
}

/* A growable string for building big queries. */
typedef struct sbuf {
  char *s;
  size_t len, cap;
} sbuf;

static void sb_add(sbuf *b, const char *s) {
  size_t n = strlen(s);
  if (b->len + n + 1 > b->cap) {
    b->cap = (b->len + n + 1) * 2;
    b->s = realloc(b->s, b->cap);
    assert_non_null(b->s);
  }
  memcpy(b->s + b->len, s, n + 1);
  b->len += n;
}

/* depth levels of {"$not": ...} around {"a":"1"}: depth + 1 query levels. */
static char *nested_not(int depth) {
  sbuf b = {0};
  for (int i = 0; i < depth; i++)
    sb_add(&b, "{\"$not\":");
  sb_add(&b, "{\"a\":\"1\"}");
  for (int i = 0; i < depth; i++)
    sb_add(&b, "}");
  return b.s;
}

/* ------------------------------------------------------------------------ */
/* Shapes                                                                    */
/* ------------------------------------------------------------------------ */

static void test_match_all(void **state) {
  (void)state;
  const char *inputs[] = {NULL, "", "{}", " { } "};
  for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
    ordo_storage_query *q = parse_ok(inputs[i]);
    assert_int_equal(q->op, ORDO_SQ_ALL);
    assert_int_equal(q->nchildren, 0);
    assert_int_equal(q->nvalues, 0);
    assert_null(q->children);
    assert_null(q->values);
    assert_null(q->tag_name.data);
    ordo_storage_query_free(q);
  }
  expect_tree("{}", "(ALL)");
  char *s = ordo__wql_to_string(NULL);
  assert_string_equal(s, "(ALL)");
  free(s);
}

static void test_implicit_eq_leaf(void **state) {
  (void)state;
  ordo_storage_query *q = parse_ok("{\"name\": \"alice\"}");
  /* One key: the leaf itself, no AND around it. */
  assert_int_equal(q->op, ORDO_SQ_EQ);
  assert_int_equal(q->plaintext, 0);
  assert_int_equal(q->tag_name.len, 4);
  assert_memory_equal(q->tag_name.data, "name", 4);
  assert_int_equal(q->nvalues, 1);
  assert_non_null(q->values);
  assert_int_equal(q->values[0].len, 5);
  assert_memory_equal(q->values[0].data, "alice", 5);
  assert_int_equal(q->nchildren, 0);
  assert_null(q->children);
  ordo_storage_query_free(q);
}

static void test_every_operator(void **state) {
  (void)state;
  static const struct {
    const char *json, *want;
  } cases[] = {
      {"{\"a\":\"1\"}", "(EQ a \"1\")"},
      {"{\"a\":{\"$eq\":\"1\"}}", "(EQ a \"1\")"},
      {"{\"a\":{\"$neq\":\"1\"}}", "(NEQ a \"1\")"},
      {"{\"a\":{\"$in\":[\"1\",\"2\",\"3\"]}}", "(IN a \"1\" \"2\" \"3\")"},
      {"{\"a\":{\"$in\":[\"1\"]}}", "(IN a \"1\")"},
      {"{\"~a\":{\"$eq\":\"1\"}}", "(EQ ~a \"1\")"},
      {"{\"~a\":{\"$neq\":\"1\"}}", "(NEQ ~a \"1\")"},
      {"{\"~a\":{\"$gt\":\"1\"}}", "(GT ~a \"1\")"},
      {"{\"~a\":{\"$gte\":\"1\"}}", "(GTE ~a \"1\")"},
      {"{\"~a\":{\"$lt\":\"1\"}}", "(LT ~a \"1\")"},
      {"{\"~a\":{\"$lte\":\"1\"}}", "(LTE ~a \"1\")"},
      {"{\"~a\":{\"$like\":\"al%_\"}}", "(LIKE ~a \"al%_\")"},
      {"{\"~a\":{\"$in\":[\"x\",\"y\"]}}", "(IN ~a \"x\" \"y\")"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
    expect_tree(cases[i].json, cases[i].want);

  /* The op codes themselves, not only their names. */
  ordo_storage_query *q = parse_ok("{\"~n\":{\"$lte\":\"9\"}}");
  assert_int_equal(q->op, ORDO_SQ_LTE);
  assert_int_equal(q->plaintext, 1);
  ordo_storage_query_free(q);
  q = parse_ok("{\"n\":{\"$in\":[\"a\",\"bb\"]}}");
  assert_int_equal(q->op, ORDO_SQ_IN);
  assert_int_equal(q->nvalues, 2);
  assert_int_equal(q->values[1].len, 2);
  assert_memory_equal(q->values[1].data, "bb", 2);
  ordo_storage_query_free(q);
}

static void test_implicit_and_keeps_order(void **state) {
  (void)state;
  expect_tree("{\"z\":\"1\",\"~b\":{\"$gt\":\"2\"},"
              "\"a\":{\"$in\":[\"x\",\"y\"]}}",
              "(AND (EQ z \"1\") (GT ~b \"2\") (IN a \"x\" \"y\"))");
  ordo_storage_query *q = parse_ok("{\"b\":\"1\",\"a\":\"2\"}");
  assert_int_equal(q->op, ORDO_SQ_AND);
  assert_int_equal(q->nchildren, 2);
  assert_memory_equal(q->children[0]->tag_name.data, "b", 1);
  assert_memory_equal(q->children[1]->tag_name.data, "a", 1);
  ordo_storage_query_free(q);
}

static void test_nested(void **state) {
  (void)state;
  expect_tree("{\"$and\":[{\"a\":\"1\"},{\"b\":\"2\"}]}",
              "(AND (EQ a \"1\") (EQ b \"2\"))");
  expect_tree("{\"$or\":[{\"a\":\"1\"},{\"~b\":{\"$like\":\"x%\"}}]}",
              "(OR (EQ a \"1\") (LIKE ~b \"x%\"))");
  expect_tree("{\"$not\":{\"~age\":{\"$gt\":\"5\"}}}", "(NOT (GT ~age \"5\"))");
  expect_tree("{\"name\":\"x\",\"$not\":{\"~age\":{\"$gt\":\"5\"}}}",
              "(AND (EQ name \"x\") (NOT (GT ~age \"5\")))");
  /* Several keys inside a $not and inside $or elements: AND each. */
  expect_tree("{\"$not\":{\"a\":\"1\",\"b\":\"2\"}}",
              "(NOT (AND (EQ a \"1\") (EQ b \"2\")))");
  expect_tree("{\"$or\":[{\"a\":\"1\",\"b\":\"2\"},{\"$and\":[{\"c\":\"3\"},"
              "{\"$not\":{\"$or\":[{\"d\":\"4\"},"
              "{\"e\":{\"$neq\":\"5\"}}]}}]}]}",
              "(OR (AND (EQ a \"1\") (EQ b \"2\")) (AND (EQ c \"3\") (NOT (OR "
              "(EQ d \"4\") (NEQ e \"5\")))))");
  /* Degenerate lists keep their node: AND of none is true, OR false. */
  expect_tree("{\"$and\":[]}", "(AND)");
  expect_tree("{\"$or\":[]}", "(OR)");
  expect_tree("{\"$and\":[{\"a\":\"1\"}]}", "(AND (EQ a \"1\"))");
  /* An empty object below the top is an empty AND; ALL stays at the root. */
  expect_tree("{\"$not\":{}}", "(NOT (AND))");
  expect_tree("{\"$or\":[{},{\"a\":\"1\"}]}", "(OR (AND) (EQ a \"1\"))");
  /* $in with no values matches nothing: an empty OR, also under $not. */
  expect_tree("{\"a\":{\"$in\":[]}}", "(OR)");
  expect_tree("{\"$not\":{\"~a\":{\"$in\":[]}}}", "(NOT (OR))");

  ordo_storage_query *q = parse_ok("{\"$not\":{\"a\":\"1\"}}");
  assert_int_equal(q->op, ORDO_SQ_NOT);
  assert_int_equal(q->nchildren, 1);
  assert_int_equal(q->children[0]->op, ORDO_SQ_EQ);
  ordo_storage_query_free(q);
}

static void test_plaintext_and_encrypted(void **state) {
  (void)state;
  ordo_storage_query *q =
      parse_ok("{\"~p\":\"1\",\"e\":\"2\",\"x~\":\"3\",\"~~\":\"4\"}");
  assert_int_equal(q->nchildren, 4);
  /* The name keeps its '~'; only a leading '~' makes a tag plaintext. */
  assert_int_equal(q->children[0]->plaintext, 1);
  assert_int_equal(q->children[0]->tag_name.len, 2);
  assert_memory_equal(q->children[0]->tag_name.data, "~p", 2);
  assert_int_equal(q->children[1]->plaintext, 0);
  assert_int_equal(q->children[1]->tag_name.len, 1);
  assert_int_equal(q->children[2]->plaintext, 0);
  assert_int_equal(q->children[3]->plaintext, 1);
  assert_memory_equal(q->children[3]->tag_name.data, "~~", 2);
  ordo_storage_query_free(q);
}

static void test_values_are_bytes(void **state) {
  (void)state;
  /* Empty value: len 0 but data still allocated. UTF-8 kept as bytes. */
  ordo_storage_query *q =
      parse_ok("{\"a\":\"\",\"b\":\"\\u00e9t\\u00e9\","
               "\"c\":\"q\\\"b\\\\n\\n\"}");
  assert_int_equal(q->children[0]->values[0].len, 0);
  assert_non_null(q->children[0]->values[0].data);
  assert_int_equal(q->children[1]->values[0].len, 5);
  assert_memory_equal(q->children[1]->values[0].data, "\xc3\xa9t\xc3\xa9", 5);
  assert_int_equal(q->children[2]->values[0].len, 6);
  assert_memory_equal(q->children[2]->values[0].data, "q\"b\\n\n", 6);
  char *s = ordo__wql_to_string(q);
  assert_string_equal(s, "(AND (EQ a \"\") (EQ b \"\\xc3\\xa9t\\xc3\\xa9\") "
                         "(EQ c \"q\\\"b\\\\n\\x0a\"))");
  free(s);
  ordo_storage_query_free(q);

  /* Tag names that would be ambiguous bare are quoted. */
  expect_tree("{\"a b\":\"1\",\"(x)\":\"2\",\"caf\\u00e9\":\"3\","
              "\"k\\\"\":\"4\"}",
              "(AND (EQ \"a b\" \"1\") (EQ \"(x)\" \"2\") "
              "(EQ \"caf\\xc3\\xa9\" \"3\") (EQ \"k\\\"\" \"4\"))");
}

/* ------------------------------------------------------------------------ */
/* Errors                                                                    */
/* ------------------------------------------------------------------------ */

static void test_bad_json(void **state) {
  (void)state;
  expect_error("{", ORDO_E_WQL, "line 1 column", NULL);
  expect_error("{\"a\":\"1\",}", ORDO_E_WQL, "line 1 column", NULL);
  expect_error("{\"a\": \"1\"} x", ORDO_E_WQL, "line 1", NULL);
  expect_error("{\n\"a\": 1x}", ORDO_E_WQL, "line 2 column", NULL);
  expect_error("{\"a\":\"1\",\"a\":\"2\"}", ORDO_E_WQL, "duplicate", NULL);
  expect_error("{\"a\":\"\\u0000\"}", ORDO_E_WQL, "line 1", NULL);
  expect_error("   ", ORDO_E_WQL, "line 1", NULL);
  expect_error("[]", ORDO_E_WQL, "must be a JSON object, got an array", NULL);
  expect_error("\"a\"", ORDO_E_WQL, "must be a JSON object, got a string",
               NULL);
  expect_error("5", ORDO_E_WQL, "must be a JSON object, got a number", NULL);
  expect_error("null", ORDO_E_WQL, "must be a JSON object, got null", NULL);
}

static void test_range_and_like_need_plaintext(void **state) {
  (void)state;
  const char *ops[] = {"$gt", "$gte", "$lt", "$lte", "$like"};
  for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
    char json[64];
    snprintf(json, sizeof(json), "{\"age\":{\"%s\":\"5\"}}", ops[i]);
    char want[96];
    snprintf(want, sizeof(want),
             "%s on tag 'age' needs a plaintext tag (name starting with '~')",
             ops[i]);
    expect_error(json, ORDO_E_WQL, want, NULL);
  }
  /* Also deep inside, and after good siblings. */
  expect_error("{\"a\":\"1\",\"$or\":[{\"b\":\"2\"},{\"$not\":{\"c\":{\"$lt\":"
               "\"3\"}}}]}",
               ORDO_E_WQL, "$lt on tag 'c' needs a plaintext tag", NULL);
}

static void test_bad_values(void **state) {
  (void)state;
  expect_error("{\"x\":5}", ORDO_E_WQL, "tag 'x'",
               "needs a string value or an operator object, got a number",
               NULL);
  expect_error("{\"x\":null}", ORDO_E_WQL, "tag 'x'", "got null", NULL);
  expect_error("{\"x\":true}", ORDO_E_WQL, "tag 'x'", "got a boolean", NULL);
  expect_error("{\"x\":[\"a\"]}", ORDO_E_WQL, "tag 'x'", "got an array", NULL);
  expect_error("{\"x\":{\"$eq\":5}}", ORDO_E_WQL,
               "$eq on tag 'x' needs a string value, got a number", NULL);
  expect_error("{\"x\":{\"$neq\":1.5}}", ORDO_E_WQL,
               "$neq on tag 'x' needs a string value", NULL);
  expect_error("{\"~x\":{\"$gt\":{}}}", ORDO_E_WQL,
               "$gt on tag '~x' needs a string value, got an object", NULL);
  expect_error("{\"~x\":{\"$like\":[\"a\"]}}", ORDO_E_WQL,
               "$like on tag '~x' needs a string value", NULL);
  expect_error("{\"x\":{\"$in\":\"a\"}}", ORDO_E_WQL,
               "$in on tag 'x' must be an array of strings", "got a string",
               NULL);
  expect_error("{\"x\":{\"$in\":[\"a\",1]}}", ORDO_E_WQL,
               "$in on tag 'x' must be an array of strings", "element 1",
               "a number", NULL);
  expect_error("{\"x\":{\"$in\":[[\"a\"]]}}", ORDO_E_WQL,
               "$in on tag 'x' must be an array of strings", "element 0",
               NULL);
}

static void test_bad_operators(void **state) {
  (void)state;
  expect_error("{\"x\":{\"$foo\":\"a\"}}", ORDO_E_WQL,
               "unknown operator '$foo' on tag 'x'", NULL);
  expect_error("{\"x\":{\"eq\":\"a\"}}", ORDO_E_WQL, "unknown operator 'eq'",
               NULL);
  expect_error("{\"x\":{\"$EQ\":\"a\"}}", ORDO_E_WQL, "unknown operator '$EQ'",
               NULL);
  expect_error("{\"x\":{\"$and\":[]}}", ORDO_E_WQL,
               "unknown operator '$and' on tag 'x'", NULL);
  expect_error("{\"$foo\":\"a\"}", ORDO_E_WQL, "unknown operator '$foo'", NULL);
  expect_error("{\"$AND\":[]}", ORDO_E_WQL, "unknown operator '$AND'", NULL);
  expect_error("{\"$eq\":\"a\"}", ORDO_E_WQL, "operator '$eq' needs a tag",
               NULL);
  expect_error("{\"$in\":[\"a\"]}", ORDO_E_WQL, "operator '$in' needs a tag",
               NULL);
  expect_error("{\"x\":{}}", ORDO_E_WQL,
               "operator object on tag 'x' must have exactly one key, has 0",
               NULL);
  expect_error("{\"x\":{\"$eq\":\"a\",\"$neq\":\"b\"}}", ORDO_E_WQL,
               "operator object on tag 'x' must have exactly one key, has 2",
               NULL);
  expect_error("{\"\":\"a\"}", ORDO_E_WQL, "empty tag name", NULL);
  expect_error("{\"\":{\"$in\":[]}}", ORDO_E_WQL, "empty tag name", NULL);
  expect_error("{\"~\":\"a\"}", ORDO_E_WQL, "empty plaintext tag name '~'",
               NULL);
}

static void test_bad_combinators(void **state) {
  (void)state;
  expect_error("{\"$and\":{}}", ORDO_E_WQL,
               "$and must be an array of query objects, got an object", NULL);
  expect_error("{\"$or\":\"x\"}", ORDO_E_WQL,
               "$or must be an array of query objects, got a string", NULL);
  expect_error("{\"$and\":[{\"a\":\"1\"},\"x\"]}", ORDO_E_WQL,
               "$and element 1 must be a query object, got a string", NULL);
  expect_error("{\"$or\":[[]]}", ORDO_E_WQL,
               "$or element 0 must be a query object, got an array", NULL);
  expect_error("{\"$not\":[]}", ORDO_E_WQL,
               "$not must be a query object, got an array", NULL);
  expect_error("{\"$not\":\"a\"}", ORDO_E_WQL,
               "$not must be a query object, got a string", NULL);
  expect_error("{\"$not\":null}", ORDO_E_WQL, "$not must be a query object",
               NULL);
}

static void test_long_names_are_cut_in_messages(void **state) {
  (void)state;
  char name[201];
  memset(name, 'n', 200);
  name[200] = '\0';
  char json[300];
  snprintf(json, sizeof(json), "{\"%s\":{\"$gt\":\"1\"}}", name);
  char want[80];
  snprintf(want, sizeof(want), "'%.64s...'", name);
  expect_error(json, ORDO_E_WQL, want, NULL);

  /* A cut never splits a UTF-8 sequence: 63 ASCII then "é" (2 bytes). */
  char utf[128];
  memset(utf, 'u', 63);
  memcpy(utf + 63, "\\u00e9zzzz", 11);
  snprintf(json, sizeof(json), "{\"%s\":{\"$lt\":\"1\"}}", utf);
  ordo_storage_query *q = (ordo_storage_query *)1;
  char *msg = NULL;
  assert_int_equal(ordo__wql_parse(json, &q, &msg), ORDO_E_WQL);
  char cut[80];
  snprintf(cut, sizeof(cut), "'%.63s...'", utf);
  assert_non_null(strstr(msg, cut));
  free(msg);
}

static void test_optional_errmsg_and_null_out(void **state) {
  (void)state;
  ordo_storage_query *q = (ordo_storage_query *)1;
  assert_int_equal(ordo__wql_parse("{\"a\":5}", &q, NULL), ORDO_E_WQL);
  assert_null(q);
  assert_int_equal(ordo__wql_parse("{\"a\":\"5\"}", &q, NULL), ORDO_OK);
  ordo_storage_query_free(q);

  char *msg = NULL;
  assert_int_equal(ordo__wql_parse("{}", NULL, &msg), ORDO_E_INVAL);
  assert_non_null(msg);
  free(msg);
}

/* ------------------------------------------------------------------------ */
/* Limits                                                                    */
/* ------------------------------------------------------------------------ */

static void test_depth_limit(void **state) {
  (void)state;
  /* 63 $not around a leaf: 64 query levels, the most allowed. */
  char *ok = nested_not(ORDO__WQL_MAX_DEPTH - 1);
  ordo_storage_query *q = parse_ok(ok);
  int depth = 0;
  for (ordo_storage_query *n = q; n->op == ORDO_SQ_NOT; n = n->children[0])
    depth++;
  assert_int_equal(depth, ORDO__WQL_MAX_DEPTH - 1);
  ordo_storage_query_free(q);
  free(ok);

  char *deep = nested_not(ORDO__WQL_MAX_DEPTH);
  expect_error(deep, ORDO_E_WQL, "query too deep", "64", NULL);
  free(deep);

  /* Far deeper than jansson's own limit: refused by jansson, still WQL. */
  deep = nested_not(5000);
  expect_error(deep, ORDO_E_WQL, NULL);
  free(deep);
  deep = nested_not(1000);
  expect_error(deep, ORDO_E_WQL, "query too deep", NULL);
  free(deep);

  /* Levels through $and/$or lists count the same. */
  sbuf b = {0};
  for (int i = 0; i < ORDO__WQL_MAX_DEPTH; i++)
    sb_add(&b, i % 2 ? "{\"$or\":[{\"x\":\"1\"}," : "{\"$and\":[");
  sb_add(&b, "{\"a\":\"1\"}");
  for (int i = ORDO__WQL_MAX_DEPTH - 1; i >= 0; i--)
    sb_add(&b, "]}");
  expect_error(b.s, ORDO_E_WQL, "query too deep", NULL);
  free(b.s);
}

static void test_size_limit(void **state) {
  (void)state;
  /* An $or of n leaves is n + 1 nodes. */
  for (int n = ORDO__WQL_MAX_NODES - 1; n <= ORDO__WQL_MAX_NODES; n++) {
    sbuf b = {0};
    sb_add(&b, "{\"$or\":[");
    for (int i = 0; i < n; i++)
      sb_add(&b, i ? ",{\"a\":\"1\"}" : "{\"a\":\"1\"}");
    sb_add(&b, "]}");
    if (n < ORDO__WQL_MAX_NODES) {
      ordo_storage_query *q = parse_ok(b.s);
      assert_int_equal(q->nchildren, (size_t)n);
      ordo_storage_query_free(q);
    } else {
      expect_error(b.s, ORDO_E_WQL, "query too large", "10000", NULL);
    }
    free(b.s);
  }

  /* An object of n keys is an AND of n leaves: n + 1 nodes. */
  for (int n = ORDO__WQL_MAX_NODES - 1; n <= ORDO__WQL_MAX_NODES; n++) {
    sbuf b = {0};
    sb_add(&b, "{");
    for (int i = 0; i < n; i++) {
      char kv[32];
      snprintf(kv, sizeof(kv), "%s\"k%d\":\"v\"", i ? "," : "", i);
      sb_add(&b, kv);
    }
    sb_add(&b, "}");
    if (n < ORDO__WQL_MAX_NODES) {
      ordo_storage_query *q = parse_ok(b.s);
      assert_int_equal(q->nchildren, (size_t)n);
      ordo_storage_query_free(q);
    } else {
      expect_error(b.s, ORDO_E_WQL, "query too large", NULL);
    }
    free(b.s);
  }

  /* Every $in value counts: n values fit exactly up to the limit. */
  for (int n = ORDO__WQL_MAX_NODES; n <= ORDO__WQL_MAX_NODES + 1; n++) {
    sbuf b = {0};
    sb_add(&b, "{\"a\":{\"$in\":[");
    for (int i = 0; i < n; i++)
      sb_add(&b, i ? ",\"v\"" : "\"v\"");
    sb_add(&b, "]}}");
    if (n <= ORDO__WQL_MAX_NODES) {
      ordo_storage_query *q = parse_ok(b.s);
      assert_int_equal(q->nvalues, (size_t)n);
      ordo_storage_query_free(q);
    } else {
      expect_error(b.s, ORDO_E_WQL, "query too large", NULL);
    }
    free(b.s);
  }
}

/* ------------------------------------------------------------------------ */
/* Walking leaves                                                            */
/* ------------------------------------------------------------------------ */

typedef struct visit_log {
  char names[16][16];
  int n;
  int stop_at; /* return 7 on this visit (1-based); 0: never */
} visit_log;

static int log_leaf(ordo_storage_query *leaf, void *ud) {
  visit_log *log = ud;
  if (log->n < 16 && leaf->tag_name.len < 16) {
    memcpy(log->names[log->n], leaf->tag_name.data, leaf->tag_name.len);
    log->names[log->n][leaf->tag_name.len] = '\0';
  }
  log->n++;
  return log->n == log->stop_at ? 7 : 0;
}

static const char *walk_query =
    "{\"$or\":[{\"a\":\"1\"},{\"$not\":{\"~b\":{\"$gt\":\"2\"}}},"
    "{\"$and\":[]}],"
    "\"c\":{\"$in\":[\"x\",\"y\"]},\"$not\":{\"d\":\"4\",\"~e\":{\"$like\":"
    "\"%\"}}}";

static void test_walk_order(void **state) {
  (void)state;
  ordo_storage_query *q = parse_ok(walk_query);
  visit_log log = {0};
  assert_int_equal(ordo__wql_walk_leaves(q, log_leaf, &log), 0);
  assert_int_equal(log.n, 5);
  const char *want[] = {"a", "~b", "c", "d", "~e"};
  for (int i = 0; i < 5; i++)
    assert_string_equal(log.names[i], want[i]);
  ordo_storage_query_free(q);

  /* Nothing to visit in ALL, an empty AND, or NULL. */
  visit_log none = {0};
  q = parse_ok("{}");
  assert_int_equal(ordo__wql_walk_leaves(q, log_leaf, &none), 0);
  ordo_storage_query_free(q);
  q = parse_ok("{\"$and\":[],\"x\":{\"$in\":[]}}");
  assert_int_equal(ordo__wql_walk_leaves(q, log_leaf, &none), 0);
  ordo_storage_query_free(q);
  assert_int_equal(ordo__wql_walk_leaves(NULL, log_leaf, &none), 0);
  assert_int_equal(none.n, 0);
  assert_int_equal(ordo__wql_walk_leaves(NULL, NULL, NULL), ORDO_E_INVAL);
}

static void test_walk_stops_early(void **state) {
  (void)state;
  ordo_storage_query *q = parse_ok(walk_query);
  for (int stop = 1; stop <= 5; stop++) {
    visit_log log = {0};
    log.stop_at = stop;
    assert_int_equal(ordo__wql_walk_leaves(q, log_leaf, &log), 7);
    assert_int_equal(log.n, stop);
  }
  ordo_storage_query_free(q);
}

/* What the wallet does: replace encrypted leaves' name and values with new
 * malloc'd buffers ("E(" ... ")" standing in for ciphertext). */
static int fake_encrypt(ordo_storage_query *leaf, void *ud) {
  int *count = ud;
  if (leaf->plaintext)
    return 0;
  ordo_storage_buf *bufs[1 + 8];
  size_t n = 0;
  bufs[n++] = &leaf->tag_name;
  for (size_t i = 0; i < leaf->nvalues && n < 9; i++)
    bufs[n++] = &leaf->values[i];
  for (size_t i = 0; i < n; i++) {
    unsigned char *enc = malloc(bufs[i]->len + 3);
    if (enc == NULL)
      return ORDO_E_NOMEM;
    enc[0] = 'E';
    enc[1] = 0x01; /* a non-printable byte, as ciphertext has */
    memcpy(enc + 2, bufs[i]->data, bufs[i]->len);
    enc[bufs[i]->len + 2] = ')';
    memset(bufs[i]->data, 0, bufs[i]->len);
    free(bufs[i]->data);
    bufs[i]->data = enc;
    bufs[i]->len += 3;
  }
  (*count)++;
  return 0;
}

static void test_walk_replaces_buffers(void **state) {
  (void)state;
  ordo_storage_query *q = parse_ok(
      "{\"a\":\"1\",\"~p\":{\"$gte\":\"2\"},\"$not\":{\"b\":{\"$in\":[\"x\","
      "\"\"]}}}");
  int count = 0;
  assert_int_equal(ordo__wql_walk_leaves(q, fake_encrypt, &count), 0);
  assert_int_equal(count, 2);
  char *s = ordo__wql_to_string(q);
  assert_string_equal(s, "(AND (EQ \"E\\x01a)\" \"E\\x011)\") (GTE ~p \"2\") "
                         "(NOT (IN \"E\\x01b)\" \"E\\x01x)\" \"E\\x01)\")))");
  free(s);
  ordo_storage_query_free(q); /* frees the replacement buffers too */
}

/* ------------------------------------------------------------------------ */
/* Allocation failure                                                        */
/* ------------------------------------------------------------------------ */

static long alloc_countdown; /* fail when it reaches 0; negative: never */
static long alloc_calls;

static void *failing_malloc(size_t size) {
  alloc_calls++;
  if (alloc_countdown >= 0 && alloc_countdown-- == 0)
    return NULL;
  return malloc(size);
}

static void failing_free(void *p) { free(p); }

/* Fail the k-th allocation (the parser's own, or jansson's when
 * jansson_too) for k = 0, 1, ... until a parse no longer reaches it, which
 * must then give final_rc. Every run that had an allocation refused must
 * report ORDO_E_NOMEM, even for a bad query (its message is an allocation
 * too), leave *out NULL and leak nothing. */
static void oom_sweep(const char *json, int final_rc, int jansson_too) {
  for (long k = 0;; k++) {
    alloc_countdown = k;
    alloc_calls = 0;
    if (jansson_too)
      json_set_alloc_funcs(failing_malloc, failing_free);
    else
      ordo__wql_malloc = failing_malloc;
    ordo_storage_query *q = (ordo_storage_query *)1;
    char *msg = NULL;
    int rc = ordo__wql_parse(json, &q, &msg);
    ordo__wql_malloc = malloc;
    json_set_alloc_funcs(malloc, free);
    int hit = alloc_countdown < 0; /* the k-th allocation was refused */
    if (!hit) {
      if (rc != final_rc)
        print_error("%s: k=%ld: %s, wanted %s\n", json, k, ordo_errname(rc),
                    ordo_errname(final_rc));
      assert_int_equal(rc, final_rc);
      if (rc == ORDO_OK) {
        assert_non_null(q);
        ordo_storage_query_free(q);
      } else {
        assert_null(q);
        assert_non_null(msg);
      }
      free(msg);
      return;
    }
    /* jansson turns some failed allocations in its lexer into syntax
     * errors ("string or '}' expected"); the parser cannot tell those from
     * bad text, so with jansson failing ORDO_E_WQL is accepted too. */
    int ok = rc == ORDO_E_NOMEM || (jansson_too && rc == ORDO_E_WQL);
    if (!ok)
      print_error("%s: allocation %ld failed: %s (%s), wanted ORDO_E_NOMEM\n",
                  json, k, ordo_errname(rc), msg ? msg : "no message");
    assert_true(rc != ORDO_E_WQL || msg != NULL);
    free(msg);
    assert_true(ok);
    assert_null(q);
  }
}

static void test_out_of_memory(void **state) {
  (void)state;
  const char *good[] = {
      NULL,
      "{}",
      "{\"a\":\"1\"}",
      "{\"a\":\"\",\"~b\":{\"$gt\":\"2\"},\"c\":{\"$in\":[\"x\",\"y\",\"z\"]}}",
      "{\"$or\":[{\"a\":\"1\"},{\"$not\":{\"$and\":[{\"b\":\"2\"},{}]}}]}",
      "{\"a\":{\"$in\":[]}}",
  };
  for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
    oom_sweep(good[i], ORDO_OK, 0);
    if (good[i] != NULL)
      oom_sweep(good[i], ORDO_OK, 1);
  }
  const char *bad[] = {
      "{\"a\":\"1\",\"b\":{\"$gt\":\"2\"}}",
      "{\"$or\":[{\"a\":\"1\"},{\"$not\":5}]}",
      "{",
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    oom_sweep(bad[i], ORDO_E_WQL, 0);
    oom_sweep(bad[i], ORDO_E_WQL, 1);
  }

  /* Rendering: NULL when its one allocation fails. */
  ordo_storage_query *q = parse_ok("{\"a\":\"1\"}");
  alloc_countdown = 0;
  ordo__wql_malloc = failing_malloc;
  char *s = ordo__wql_to_string(q);
  ordo__wql_malloc = malloc;
  assert_null(s);
  ordo_storage_query_free(q);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_match_all),
      cmocka_unit_test(test_implicit_eq_leaf),
      cmocka_unit_test(test_every_operator),
      cmocka_unit_test(test_implicit_and_keeps_order),
      cmocka_unit_test(test_nested),
      cmocka_unit_test(test_plaintext_and_encrypted),
      cmocka_unit_test(test_values_are_bytes),
      cmocka_unit_test(test_bad_json),
      cmocka_unit_test(test_range_and_like_need_plaintext),
      cmocka_unit_test(test_bad_values),
      cmocka_unit_test(test_bad_operators),
      cmocka_unit_test(test_bad_combinators),
      cmocka_unit_test(test_long_names_are_cut_in_messages),
      cmocka_unit_test(test_optional_errmsg_and_null_out),
      cmocka_unit_test(test_depth_limit),
      cmocka_unit_test(test_size_limit),
      cmocka_unit_test(test_walk_order),
      cmocka_unit_test(test_walk_stops_early),
      cmocka_unit_test(test_walk_replaces_buffers),
      cmocka_unit_test(test_out_of_memory),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

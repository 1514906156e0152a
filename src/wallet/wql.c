/*
 * wql.c — Indy WQL (JSON) to ordo_storage_query trees, by recursive descent
 * over the document jansson has parsed.
 *
 * Every parse function returns the node it built, or NULL after recording
 * the error (code and message) in the parser; callers just pass NULL up.
 * Nothing is kept half-attached: a node's nchildren and nvalues only count
 * entries that are complete, so a partial tree is always one that
 * ordo_storage_query_free can free, and the error path is a single call.
 *
 * Two limits keep hostile input harmless: the depth counter (query levels,
 * checked on entry to each) bounds this file's recursion and that of every
 * walker of the tree; the node budget bounds memory and the statement a
 * backend will build. jansson bounds its own recursion (2048 levels).
 */
#include "wallet/wql.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void *(*ordo__wql_malloc)(size_t size) = malloc;

/* ------------------------------------------------------------------------ */
/* Parser state and errors                                                   */
/* ------------------------------------------------------------------------ */

typedef struct wql_parser {
  size_t nodes; /* nodes and $in values allocated so far (the budget) */
  int rc;       /* the error, once one happened; ORDO_OK before */
  char *msg;    /* its message (malloc'd), or NULL if that failed too */
} wql_parser;

/* Names in messages are cut to this many bytes (then "..."), so a huge key
 * gives a readable message rather than one as large as the query. */
#define SHOW_MAX 64

/* A name as messages show it: at most SHOW_MAX bytes, not cutting a UTF-8
 * sequence in two (jansson has checked the text is UTF-8). */
typedef struct wql_shown {
  char text[SHOW_MAX + 4];
} wql_shown;

static const char *show(wql_shown *s, const char *name) {
  size_t len = strlen(name);
  if (len <= SHOW_MAX)
    return name;
  len = SHOW_MAX;
  while (len > 0 && ((unsigned char)name[len] & 0xC0) == 0x80)
    len--; /* name[len] continues a sequence: cut before its lead byte */
  memcpy(s->text, name, len);
  memcpy(s->text + len, "...", 4);
  return s->text;
}

/* The JSON type of v with its article, for "needs X, got a number". */
static const char *json_kind(const json_t *v) {
  switch (json_typeof(v)) {
  case JSON_OBJECT:
    return "an object";
  case JSON_ARRAY:
    return "an array";
  case JSON_STRING:
    return "a string";
  case JSON_INTEGER:
  case JSON_REAL:
    return "a number";
  case JSON_TRUE:
  case JSON_FALSE:
    return "a boolean";
  case JSON_NULL:
    return "null";
  }
  return "an unknown JSON value";
}

/* Record an error (the first one only) and return NULL, so a parse
 * function can `return fail(...)`. If the message cannot be allocated the
 * code becomes ORDO_E_NOMEM: the caller is promised a message otherwise. */
static ordo_storage_query *fail(wql_parser *p, int code, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static ordo_storage_query *fail(wql_parser *p, int code, const char *fmt, ...) {
  if (p->rc != ORDO_OK)
    return NULL;
  p->rc = code;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0 || (p->msg = ordo__wql_malloc((size_t)n + 1)) == NULL) {
    p->rc = ORDO_E_NOMEM;
    return NULL;
  }
  va_start(ap, fmt);
  vsnprintf(p->msg, (size_t)n + 1, fmt, ap);
  va_end(ap);
  return NULL;
}

static ordo_storage_query *fail_nomem(wql_parser *p) {
  return fail(p, ORDO_E_NOMEM, "out of memory while parsing a WQL query");
}

/* ------------------------------------------------------------------------ */
/* Building the tree                                                         */
/* ------------------------------------------------------------------------ */

static void *wql_calloc(size_t n, size_t size) {
  if (size != 0 && n > (size_t)-1 / size)
    return NULL;
  void *p = ordo__wql_malloc(n * size);
  if (p != NULL)
    memset(p, 0, n * size);
  return p;
}

/* Take n more units of the node budget, or fail with "too large". */
static int budget_take(wql_parser *p, size_t n) {
  if (n > ORDO__WQL_MAX_NODES - p->nodes) {
    fail(p, ORDO_E_WQL, "query too large: more than %d nodes",
         ORDO__WQL_MAX_NODES);
    return -1;
  }
  p->nodes += n;
  return 0;
}

/* A zeroed node of op, with room for nchildren children (none attached
 * yet), counted against the budget. */
static ordo_storage_query *node_new(wql_parser *p, ordo_storage_qop op,
                                    size_t nchildren) {
  if (budget_take(p, 1) != 0)
    return NULL;
  /* Each child will take at least one node: refusing more children than
   * the budget has left means an object with a million keys fails before
   * a million-slot array exists. */
  if (nchildren > ORDO__WQL_MAX_NODES - p->nodes)
    return fail(p, ORDO_E_WQL, "query too large: more than %d nodes",
                ORDO__WQL_MAX_NODES);
  ordo_storage_query *q = wql_calloc(1, sizeof(*q));
  if (q == NULL)
    return fail_nomem(p);
  q->op = op;
  if (nchildren > 0) {
    q->children = wql_calloc(nchildren, sizeof(*q->children));
    if (q->children == NULL) {
      ordo_storage_query_free(q);
      return fail_nomem(p);
    }
  }
  return q;
}

/* Copy len bytes into b. data is never NULL, even for len 0, so consumers
 * need not tell "empty" from "missing". */
static int buf_set(ordo_storage_buf *b, const char *s, size_t len) {
  b->data = ordo__wql_malloc(len > 0 ? len : 1);
  if (b->data == NULL)
    return -1;
  memcpy(b->data, s, len);
  b->len = len;
  return 0;
}

/* A leaf: op on tag `name`, with the strings of `values` (one string, or
 * an array of them for IN, already checked to be strings). */
static ordo_storage_query *leaf_new(wql_parser *p, ordo_storage_qop op,
                                    const char *name, json_t *values) {
  size_t n = json_is_array(values) ? json_array_size(values) : 1;
  /* The leaf counts as 1 below; each further value as one more. */
  if (budget_take(p, n - 1) != 0)
    return NULL;
  ordo_storage_query *q = node_new(p, op, 0);
  if (q == NULL)
    return NULL;
  q->plaintext = name[0] == '~';
  q->values = wql_calloc(n, sizeof(*q->values));
  if (q->values == NULL || buf_set(&q->tag_name, name, strlen(name)) != 0)
    goto nomem;
  for (size_t i = 0; i < n; i++) {
    json_t *v = json_is_array(values) ? json_array_get(values, i) : values;
    if (buf_set(&q->values[i], json_string_value(v),
                json_string_length(v)) != 0)
      goto nomem;
    q->nvalues++;
  }
  return q;
nomem:
  ordo_storage_query_free(q);
  return fail_nomem(p);
}

/* ------------------------------------------------------------------------ */
/* Recursive descent                                                         */
/* ------------------------------------------------------------------------ */

/* The operators of a tag's operator object. */
static const struct {
  const char *name;
  ordo_storage_qop op;
  int plaintext_only; /* ciphertext has no order and no LIKE */
} tag_ops[] = {
    {"$eq", ORDO_SQ_EQ, 0},    {"$neq", ORDO_SQ_NEQ, 0},
    {"$gt", ORDO_SQ_GT, 1},    {"$gte", ORDO_SQ_GTE, 1},
    {"$lt", ORDO_SQ_LT, 1},    {"$lte", ORDO_SQ_LTE, 1},
    {"$like", ORDO_SQ_LIKE, 1}, {"$in", ORDO_SQ_IN, 0},
};
#define NTAG_OPS (sizeof(tag_ops) / sizeof(tag_ops[0]))

static ordo_storage_query *parse_query(wql_parser *p, json_t *obj, int depth,
                                       int top);

/* "<tag>": "<value>" or "<tag>": {"$op": ...}. */
static ordo_storage_query *parse_tag(wql_parser *p, const char *name,
                                     json_t *value) {
  wql_shown sn, so;
  if (name[0] == '\0')
    return fail(p, ORDO_E_WQL, "empty tag name");
  if (strcmp(name, "~") == 0)
    return fail(p, ORDO_E_WQL, "empty plaintext tag name '~'");
  if (json_is_string(value))
    return leaf_new(p, ORDO_SQ_EQ, name, value);
  if (!json_is_object(value))
    return fail(p, ORDO_E_WQL,
                "tag '%s' needs a string value or an operator object, got %s",
                show(&sn, name), json_kind(value));

  size_t nkeys = json_object_size(value);
  if (nkeys != 1)
    return fail(p, ORDO_E_WQL,
                "operator object on tag '%s' must have exactly one key, "
                "has %zu",
                show(&sn, name), nkeys);
  const char *opname = json_object_iter_key(json_object_iter(value));
  json_t *arg = json_object_iter_value(json_object_iter(value));
  size_t i = 0;
  while (i < NTAG_OPS && strcmp(tag_ops[i].name, opname) != 0)
    i++;
  if (i == NTAG_OPS)
    return fail(p, ORDO_E_WQL, "unknown operator '%s' on tag '%s'",
                show(&so, opname), show(&sn, name));
  if (tag_ops[i].plaintext_only && name[0] != '~')
    return fail(p, ORDO_E_WQL,
                "%s on tag '%s' needs a plaintext tag (name starting with '~')",
                opname, show(&sn, name));

  if (tag_ops[i].op != ORDO_SQ_IN) {
    if (!json_is_string(arg))
      return fail(p, ORDO_E_WQL, "%s on tag '%s' needs a string value, got %s",
                  opname, show(&sn, name), json_kind(arg));
    return leaf_new(p, tag_ops[i].op, name, arg);
  }
  if (!json_is_array(arg))
    return fail(p, ORDO_E_WQL,
                "$in on tag '%s' must be an array of strings, got %s",
                show(&sn, name), json_kind(arg));
  size_t n = json_array_size(arg);
  for (size_t k = 0; k < n; k++)
    if (!json_is_string(json_array_get(arg, k)))
      return fail(p, ORDO_E_WQL,
                  "$in on tag '%s' must be an array of strings; element %zu "
                  "is %s",
                  show(&sn, name), k, json_kind(json_array_get(arg, k)));
  /* "Value in the empty set" is false: an OR of nothing says exactly that,
   * and spares backends an IN with no values (see wql.h). */
  if (n == 0)
    return node_new(p, ORDO_SQ_OR, 0);
  return leaf_new(p, ORDO_SQ_IN, name, arg);
}

/* "$and": [...] and "$or": [...]: one child per element. */
static ordo_storage_query *parse_list(wql_parser *p, const char *opname,
                                      ordo_storage_qop op, json_t *value,
                                      int depth) {
  if (!json_is_array(value))
    return fail(p, ORDO_E_WQL, "%s must be an array of query objects, got %s",
                opname, json_kind(value));
  size_t n = json_array_size(value);
  ordo_storage_query *q = node_new(p, op, n);
  if (q == NULL)
    return NULL;
  for (size_t i = 0; i < n; i++) {
    json_t *el = json_array_get(value, i);
    ordo_storage_query *child =
        json_is_object(el)
            ? parse_query(p, el, depth + 1, 0)
            : fail(p, ORDO_E_WQL,
                   "%s element %zu must be a query object, got %s", opname, i,
                   json_kind(el));
    if (child == NULL) {
      ordo_storage_query_free(q);
      return NULL;
    }
    q->children[q->nchildren++] = child;
  }
  return q;
}

/* One key of a query object: a combinator or a tag. */
static ordo_storage_query *parse_subquery(wql_parser *p, const char *key,
                                          json_t *value, int depth) {
  wql_shown sk;
  if (key[0] != '$')
    return parse_tag(p, key, value);
  if (strcmp(key, "$and") == 0)
    return parse_list(p, key, ORDO_SQ_AND, value, depth);
  if (strcmp(key, "$or") == 0)
    return parse_list(p, key, ORDO_SQ_OR, value, depth);
  if (strcmp(key, "$not") == 0) {
    if (!json_is_object(value))
      return fail(p, ORDO_E_WQL, "$not must be a query object, got %s",
                  json_kind(value));
    ordo_storage_query *q = node_new(p, ORDO_SQ_NOT, 1);
    if (q == NULL)
      return NULL;
    ordo_storage_query *child = parse_query(p, value, depth + 1, 0);
    if (child == NULL) {
      ordo_storage_query_free(q);
      return NULL;
    }
    q->children[q->nchildren++] = child;
    return q;
  }
  /* Indy would take "$foo" for a tag name; a typo of "$and" silently
   * matching nothing is worse than an error, and tags never start with '$'
   * in practice. A tag operator here is a common slip: say where it goes. */
  for (size_t i = 0; i < NTAG_OPS; i++)
    if (strcmp(tag_ops[i].name, key) == 0)
      return fail(p, ORDO_E_WQL,
                  "operator '%s' needs a tag: write {\"<tag>\": {\"%s\": ...}}",
                  key, key);
  return fail(p, ORDO_E_WQL, "unknown operator '%s'", show(&sk, key));
}

/* A query object (the caller has checked it is one) at nesting level
 * depth (1 at the top). */
static ordo_storage_query *parse_query(wql_parser *p, json_t *obj, int depth,
                                       int top) {
  if (depth > ORDO__WQL_MAX_DEPTH)
    return fail(p, ORDO_E_WQL,
                "query too deep: more than %d levels of nesting",
                ORDO__WQL_MAX_DEPTH);
  size_t n = json_object_size(obj);
  const char *key;
  json_t *value;
  if (n == 0) /* "match everything"; ALL is kept for the root (wql.h) */
    return node_new(p, top ? ORDO_SQ_ALL : ORDO_SQ_AND, 0);
  if (n == 1) {
    void *it = json_object_iter(obj);
    return parse_subquery(p, json_object_iter_key(it),
                          json_object_iter_value(it), depth);
  }
  ordo_storage_query *q = node_new(p, ORDO_SQ_AND, n);
  if (q == NULL)
    return NULL;
  /* jansson iterates in insertion order, so children follow the text. */
  json_object_foreach(obj, key, value) {
    ordo_storage_query *child = parse_subquery(p, key, value, depth);
    if (child == NULL) {
      ordo_storage_query_free(q);
      return NULL;
    }
    q->children[q->nchildren++] = child;
  }
  return q;
}

/* What went wrong in a JSON text, without jansson's quote of the text
 * near the error (it may be a tag value). */
static const char *json_error_what(const json_error_t *e) {
  switch (json_error_code(e)) {
  case json_error_duplicate_key:
    return "duplicate object key";
  case json_error_null_character:
  case json_error_null_byte_in_key:
    return "NUL character";
  case json_error_invalid_utf8:
    return "invalid UTF-8";
  case json_error_premature_end_of_input:
    return "premature end of input";
  case json_error_end_of_input_expected:
    return "end of input expected";
  case json_error_numeric_overflow:
    return "numeric overflow";
  default:
    return "malformed JSON";
  }
}

int ordo__wql_parse(const char *json, ordo_storage_query **out,
                    char **errmsg) {
  wql_parser p = {0, ORDO_OK, NULL};
  ordo_storage_query *q = NULL;
  if (errmsg != NULL)
    *errmsg = NULL;
  if (out == NULL) {
    fail(&p, ORDO_E_INVAL, "ordo__wql_parse: out is NULL");
    goto done;
  }
  *out = NULL;
  if (json == NULL || json[0] == '\0') {
    q = node_new(&p, ORDO_SQ_ALL, 0);
    goto done;
  }

  json_error_t jerr;
  /* DECODE_ANY so that "5" gets "must be a JSON object" rather than a
   * parse error; duplicate keys are refused because which one wins would
   * be up to the JSON library. */
  json_t *root = json_loads(json, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES,
                            &jerr);
  if (root == NULL) {
    /* jansson reports most allocation failures with their own code, but
     * one in its lexer's setup returns before any error is set: an empty
     * text means it never got to read the input. */
    if (json_error_code(&jerr) == json_error_out_of_memory ||
        jerr.text[0] == '\0')
      fail_nomem(&p);
    else
      /* Never jerr.text: it quotes the query near the error. */
      fail(&p, ORDO_E_WQL, "line %d column %d: %s", jerr.line, jerr.column,
           json_error_what(&jerr));
    goto done;
  }
  if (json_is_object(root))
    q = parse_query(&p, root, 1, 1);
  else
    fail(&p, ORDO_E_WQL, "a WQL query must be a JSON object, got %s",
         json_kind(root));
  json_decref(root);

done:
  if (q != NULL) {
    *out = q;
    return ORDO_OK;
  }
  if (errmsg != NULL)
    *errmsg = p.msg;
  else
    free(p.msg);
  return p.rc;
}

/* ------------------------------------------------------------------------ */
/* Walking and rendering                                                     */
/* ------------------------------------------------------------------------ */

static int is_leaf(const ordo_storage_query *q) {
  return q->op >= ORDO_SQ_EQ && q->op <= ORDO_SQ_IN;
}

int ordo__wql_walk_leaves(ordo_storage_query *q, ordo__wql_leaf_fn fn,
                          void *ud) {
  if (fn == NULL)
    return ORDO_E_INVAL;
  if (q == NULL)
    return 0;
  if (is_leaf(q))
    return fn(q, ud);
  for (size_t i = 0; i < q->nchildren; i++) {
    int rc = ordo__wql_walk_leaves(q->children[i], fn, ud);
    if (rc != 0)
      return rc;
  }
  return 0;
}

/* Rendering runs twice: once with buf NULL to measure, once to write, so
 * the result is one exact allocation. */
typedef struct wql_out {
  char *buf; /* NULL: only count */
  size_t len;
} wql_out;

static void put(wql_out *o, const char *s, size_t n) {
  if (o->buf != NULL)
    memcpy(o->buf + o->len, s, n);
  o->len += n;
}

static void put_str(wql_out *o, const char *s) { put(o, s, strlen(s)); }

static int printable(unsigned char c) { return c >= 0x20 && c < 0x7f; }

static void put_quoted(wql_out *o, const ordo_storage_buf *b) {
  put(o, "\"", 1);
  for (size_t i = 0; i < b->len; i++) {
    unsigned char c = b->data[i];
    char esc[5];
    if (c == '"' || c == '\\') {
      esc[0] = '\\';
      esc[1] = (char)c;
      put(o, esc, 2);
    } else if (printable(c)) {
      put(o, (const char *)&b->data[i], 1);
    } else {
      snprintf(esc, sizeof(esc), "\\x%02x", c);
      put(o, esc, 4);
    }
  }
  put(o, "\"", 1);
}

/* Tag names bare when that cannot be misread, quoted otherwise (wql.h). */
static void put_name(wql_out *o, const ordo_storage_buf *b) {
  int bare = b->len > 0;
  for (size_t i = 0; i < b->len && bare; i++) {
    unsigned char c = b->data[i];
    bare = printable(c) && c != ' ' && c != '(' && c != ')' && c != '"' &&
           c != '\\';
  }
  if (bare)
    put(o, (const char *)b->data, b->len);
  else
    put_quoted(o, b);
}

static const char *const op_names[] = {"ALL", "AND", "OR",  "NOT",
                                       "EQ",  "NEQ", "GT",  "GTE",
                                       "LT",  "LTE", "LIKE", "IN"};

static void render(wql_out *o, const ordo_storage_query *q) {
  if (q == NULL) {
    put_str(o, "(ALL)");
    return;
  }
  put(o, "(", 1);
  put_str(o, (size_t)q->op < sizeof(op_names) / sizeof(op_names[0])
                 ? op_names[q->op]
                 : "?");
  if (is_leaf(q)) {
    put(o, " ", 1);
    put_name(o, &q->tag_name);
    for (size_t i = 0; i < q->nvalues; i++) {
      put(o, " ", 1);
      put_quoted(o, &q->values[i]);
    }
  } else {
    for (size_t i = 0; i < q->nchildren; i++) {
      put(o, " ", 1);
      render(o, q->children[i]);
    }
  }
  put(o, ")", 1);
}

char *ordo__wql_to_string(const ordo_storage_query *q) {
  wql_out o = {NULL, 0};
  render(&o, q);
  o.buf = ordo__wql_malloc(o.len + 1);
  if (o.buf == NULL)
    return NULL;
  o.len = 0;
  render(&o, q);
  o.buf[o.len] = '\0';
  return o.buf;
}

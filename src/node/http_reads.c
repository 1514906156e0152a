/*
 * http_reads.c — the node's reads over REST: GET /state, /state/{address},
 * /blocks and /blocks/{id}. Every read runs in one read transaction on the
 * reading connection and is pinned to one block (head=, or the chain's
 * head when it began): a page, its link and its paging.next all name that
 * block, so a paged read sees one chain. Shared answers are in http.c
 * (routes.h).
 */
#include "node/routes.h"
#include "runtime/runtime.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* limit= of GET /state and /blocks. */
#define HTTP_MAX_LIMIT 1000

/* 400/53: limit= that is not an integer in 1..1000. */
static int reply_bad_limit(node_answer *a) {
  return ordo__node_reply_error(
      a, 400, 53, "Invalid Count Query",
      "The 'limit' query parameter must be an integer from 1 "
      "to 1000");
}

/* 1 when the raw key of the pair at q (len bytes) is key. */
static int pair_is(const char *q, size_t len, const char *key) {
  size_t k = strlen(key);
  return len >= k && strncmp(q, key, k) == 0 && (len == k || q[k] == '=');
}

/*
 * query with its head= pairs (and, when start is not NULL, its start=
 * pairs) left out, then head=HEAD (and start=START) appended: a new
 * string, or NULL when out of memory. How links pin the block they read.
 */
static char *pin_query(const char *query, const char *head,
                       const char *start) {
  size_t n = (query != NULL ? strlen(query) : 0) + strlen(head) +
             (start != NULL ? strlen(start) : 0) + 16;
  char *out = malloc(n);
  size_t len = 0;
  const char *q = query;
  if (out == NULL)
    return NULL;
  while (q != NULL && *q != '\0') {
    const char *end = strchr(q, '&');
    size_t l = end != NULL ? (size_t)(end - q) : strlen(q);
    if (l > 0 && !pair_is(q, l, "head") &&
        !(start != NULL && pair_is(q, l, "start")))
      len += (size_t)snprintf(out + len, n - len, "%.*s&", (int)l, q);
    q += l;
    if (*q == '&')
      q++;
  }
  len += (size_t)snprintf(out + len, n - len, "head=%s", head);
  if (start != NULL)
    snprintf(out + len, n - len, "&start=%s", start);
  return out;
}

/* limit=: default HTTP_MAX_LIMIT, 1..HTTP_MAX_LIMIT; 0 when malformed. */
static size_t parse_limit(const char *v) {
  char *end;
  unsigned long n;
  if (v == NULL)
    return HTTP_MAX_LIMIT;
  if (v[0] < '0' || v[0] > '9')
    return 0;
  n = strtoul(v, &end, 10);
  if (*end != '\0' || n == 0 || n > HTTP_MAX_LIMIT)
    return 0;
  return (size_t)n;
}

/* ------------------------------------------------------------------------ */
/* GET /state, /state/{address}, /blocks, /blocks/{id}                       */
/* ------------------------------------------------------------------------ */

/*
 * The read connection under rd_mu, in one read transaction: what a handler
 * reads and the head it reports agree. read_end follows every read_begin,
 * whatever it returned. read_begin: ORDO_E_STORAGE when BEGIN fails.
 */
static int read_begin(ordo_node *node) {
  sqlite3 *db = node->st.rdb;
  pthread_mutex_lock(&node->rd_mu);
  if (sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
    return ordo__set_last_error(ORDO_E_STORAGE, "node db: %s",
                                sqlite3_errmsg(db));
  return ORDO_OK;
}

static void read_end(ordo_node *node) {
  sqlite3_exec(node->st.rdb, "COMMIT", NULL, NULL, NULL);
  pthread_mutex_unlock(&node->rd_mu);
}

static int storage_answer(node_answer *a, int rc) {
  if (rc == ORDO_E_NOMEM)
    return ordo__node_reply_nomem(a);
  return ordo__node_reply_error(a, 500, 10, "Unknown Validator Error",
                                ordo_last_error_message());
}

/* The block a read is pinned to. */
typedef struct pinned {
  char *want; /* head= as asked (NULL: the chain's head) */
  uint64_t num;
  char id[ORDO_LEDGER_ID_SIZE];
} pinned;

/* head= of the request into h->want: 0, or 1 when an answer was made
 * (400/60 for an id that is not 128 hex digits, 500 out of memory). */
static int pin_parse(const ordo_node_request *req, pinned *h, node_answer *a) {
  memset(h, 0, sizeof *h);
  if (ordo__node_query_get(req->query, "head", &h->want) != ORDO_OK) {
    ordo__node_reply_nomem(a);
    return 1;
  }
  if (h->want != NULL && !ordo__node_is_id(h->want)) {
    ordo__node_reply_bad_id(a, h->want);
    return 1;
  }
  return 0;
}

/* Inside read_begin: the pinned block's number and id. ORDO_E_NOT_FOUND
 * for an unknown head=, answered 404/50 by pin_answer. */
static int pin_resolve(sqlite3 *db, pinned *h) {
  if (h->want == NULL)
    return ordo__node_store_head(db, &h->num, h->id);
  snprintf(h->id, sizeof h->id, "%s", h->want);
  return ordo__node_store_block_find(db, h->want, &h->num);
}

static int pin_answer(node_answer *a, int rc) {
  if (rc == ORDO_E_NOT_FOUND)
    return ordo__node_reply_error(
        a, 404, 50, "Head Not Found",
        "There is no block with the id specified in the "
        "'head' query parameter.");
  return storage_answer(a, rc);
}

/* read_begin, then h resolved inside the read: 0 with the read open
 * (read_end follows), or 1 with it closed again and the answer made
 * (pin_answer). */
static int read_pinned(ordo_node *node, pinned *h, node_answer *a) {
  int rc = read_begin(node);
  if (rc == ORDO_OK && (rc = pin_resolve(node->st.rdb, h)) == ORDO_OK)
    return 0;
  read_end(node);
  pin_answer(a, rc);
  return 1;
}

/*
 * A page (GET /state, /blocks): start= and limit= as the request gives
 * them (NULL when absent), limit parsed, the block it is pinned to and the
 * array of its data. Every member is the page's own: page_clear frees them.
 */
typedef struct page {
  char *start, *lim;
  size_t limit;
  pinned h;
  json_t *data;
} page;

/* start= and limit= of the request into pg (zeroed first): ORDO_OK, or
 * ORDO_E_NOMEM. */
static int page_query(const ordo_node_request *req, page *pg) {
  memset(pg, 0, sizeof *pg);
  if (ordo__node_query_get(req->query, "start", &pg->start) ||
      ordo__node_query_get(req->query, "limit", &pg->lim))
    return ORDO_E_NOMEM;
  return ORDO_OK;
}

static void page_clear(page *pg) {
  json_decref(pg->data);
  free(pg->h.want);
  free(pg->start);
  free(pg->lim);
}

/* What a page does once its query is checked: head= (pin_parse), the
 * array of its data and the read (read_pinned). 0 with the read open, or
 * 1 with the answer made. */
static int page_begin(ordo_node *node, const ordo_node_request *req, page *pg,
                      node_answer *a) {
  if (pin_parse(req, &pg->h, a))
    return 1;
  if ((pg->data = json_array()) == NULL) {
    ordo__node_reply_nomem(a);
    return 1;
  }
  return read_pinned(node, &pg->h, a);
}

/* base + path + "?" + the request's query pinned to h's block. */
static json_t *pinned_link(const char *base, const char *path,
                           const ordo_node_request *req, const pinned *h) {
  char *q = pin_query(req->query, h->id, NULL);
  json_t *j = q != NULL ? ordo__node_link_json(base, path, q) : NULL;
  free(q);
  return j;
}

int ordo__node_get_state_one(ordo_node *node, const ordo_node_request *req,
                             const char *address, node_answer *a) {
  sqlite3 *db = node->st.rdb;
  unsigned char *buf = NULL;
  size_t cap = 0, len = 0, n;
  char *b64, base[300], path[sizeof "/state/" + ORDO_LEDGER_ADDRESS_LEN];
  pinned h;
  json_t *body;
  int rc;

  if (!ordo__node_is_hex(address, ORDO_LEDGER_ADDRESS_LEN))
    return ordo__node_reply_error(
        a, 400, 62, "Invalid State Address",
        "A state address is 70 lower-case hex characters");
  if (pin_parse(req, &h, a) || read_pinned(node, &h, a))
    goto out;
  rc = ordo__node_store_state_get(db, address, h.num, &buf, &cap, &len);
  read_end(node);
  if (rc == ORDO_E_NOT_FOUND) {
    ordo__node_reply_error(a, 404, 75, "State Not Found",
                           "There is no state data at the address specified");
    goto out;
  }
  if (rc != ORDO_OK) {
    storage_answer(a, rc);
    goto out;
  }
  n = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL);
  if ((b64 = malloc(n)) == NULL) {
    ordo__node_reply_nomem(a);
    goto out;
  }
  sodium_bin2base64(b64, n, buf, len, sodium_base64_VARIANT_ORIGINAL);
  ordo__node_base_url(node, req, base, sizeof base);
  snprintf(path, sizeof path, "/state/%s", address);
  body = json_pack("{s:s,s:s,s:o*}", "data", b64, "head", h.id, "link",
                   pinned_link(base, path, req, &h));
  free(b64);
  if (body != NULL)
    ordo__node_reply(a, 200, body);
  else
    ordo__node_reply_nomem(a);
out:
  free(buf);
  free(h.want);
  return a->body != NULL ? ORDO_OK : ORDO_E_NOMEM;
}

/* "paging": {"limit", "start"?, "next_position"?, "next"?}; next is the
 * same query with start= replaced, pinned to head. */
static json_t *paging_json(size_t limit, const char *start, const char *next,
                           const char *base, const char *path,
                           const char *query, const char *head) {
  json_t *p = json_pack("{s:I}", "limit", (json_int_t)limit);
  if (p == NULL)
    return NULL;
  if (start != NULL && json_object_set_new(p, "start", json_string(start)))
    goto fail;
  if (next != NULL) {
    char *q = pin_query(query, head, next);
    json_t *url = q != NULL ? ordo__node_link_json(base, path, q) : NULL;
    free(q);
    if (url == NULL ||
        json_object_set_new(p, "next_position", json_string(next)) ||
        json_object_set_new(p, "next", url))
      goto fail;
  }
  return p;
fail:
  json_decref(p);
  return NULL;
}

/*
 * The 200 answer of one page of path: {"data", "head", "link", "paging"},
 * link and paging.next pinned to the page's block. pg->data is borrowed.
 */
static int reply_page(ordo_node *node, const ordo_node_request *req,
                      const char *path, const page *pg, const char *next,
                      node_answer *a) {
  char base[300];
  json_t *paging, *body;
  ordo__node_base_url(node, req, base, sizeof base);
  paging =
      paging_json(pg->limit, pg->start, next, base, path, req->query, pg->h.id);
  body =
      json_pack("{s:O,s:s,s:o*,s:o*}", "data", pg->data, "head", pg->h.id,
                "link", pinned_link(base, path, req, &pg->h), "paging", paging);
  if (body == NULL || paging == NULL) {
    json_decref(body);
    return ordo__node_reply_nomem(a);
  }
  return ordo__node_reply(a, 200, body);
}

/* After a page's read (rc its result, the read still open): close the
 * read, then its answer: reply_page, or 500 for a failed read. */
static int page_answer(ordo_node *node, int rc, const ordo_node_request *req,
                       const char *path, const page *pg, const char *next,
                       node_answer *a) {
  read_end(node);
  if (rc != ORDO_OK)
    return storage_answer(a, rc);
  return reply_page(node, req, path, pg, next, a);
}

int ordo__node_get_state_list(ordo_node *node, const ordo_node_request *req,
                              node_answer *a) {
  sqlite3 *db = node->st.rdb;
  char *prefix = NULL, *next = NULL;
  page pg;
  int rc;

  if (page_query(req, &pg) ||
      ordo__node_query_get(req->query, "address", &prefix))
    goto nomem;
  if (prefix != NULL && (!ordo__node_is_hex(prefix, (size_t)-1) ||
                         strlen(prefix) > ORDO_LEDGER_ADDRESS_LEN)) {
    rc =
        ordo__node_reply_error(a, 400, 62, "Invalid State Address",
                               "An address prefix is at most 70 lower-case hex "
                               "characters");
    goto out;
  }
  if ((pg.limit = parse_limit(pg.lim)) == 0) {
    rc = reply_bad_limit(a);
    goto out;
  }
  if (pg.start != NULL &&
      !ordo__node_is_hex(pg.start, ORDO_LEDGER_ADDRESS_LEN)) {
    rc = ordo__node_reply_error(a, 400, 54, "Invalid Paging Query",
                                "start is a 70-character state address");
    goto out;
  }
  if (page_begin(node, req, &pg, a)) {
    rc = a->body != NULL ? ORDO_OK : ORDO_E_NOMEM;
    goto out;
  }
  rc = ordo__node_store_state_list(db, prefix != NULL ? prefix : "", pg.start,
                                   pg.h.num, pg.limit, pg.data, &next);
  rc = page_answer(node, rc, req, "/state", &pg, next, a);
  goto out;
nomem:
  rc = ordo__node_reply_nomem(a);
out:
  page_clear(&pg);
  free(prefix);
  free(next);
  return rc;
}

/*
 * start= of /blocks: Sawtooth's form, "0x" and 16 hex digits of a
 * block_num (what paging.next_position holds); a block id (128 hex); or a
 * decimal block_num (this node's earlier form). *num gets the number, or
 * *id is set for an id (looked up inside the read). 0, or 1 when an answer
 * was made: 400/54 for a bad number, 400/60 for anything else.
 */
static int parse_block_start(const char *v, uint64_t *num, const char **id,
                             node_answer *a) {
  char *end;
  *id = NULL;
  if (strncmp(v, "0x", 2) == 0) {
    if (strlen(v) < 3 || strlen(v) > 18 ||
        !ordo__node_is_hex(v + 2, (size_t)-1) ||
        (*num = strtoull(v + 2, &end, 16)) > INT64_MAX) {
      ordo__node_reply_error(
          a, 400, 54, "Invalid Paging Query",
          "start is a block id or a block number (0x and 16 hex "
          "digits)");
      return 1;
    }
    return 0;
  }
  if (v[0] >= '0' && v[0] <= '9' && strspn(v, "0123456789") == strlen(v) &&
      strlen(v) <= 19) {
    *num = strtoull(v, &end, 10);
    if (*num <= INT64_MAX)
      return 0;
  }
  if (!ordo__node_is_id(v)) {
    ordo__node_reply_bad_id(a, v);
    return 1;
  }
  *id = v;
  return 0;
}

int ordo__node_get_blocks(ordo_node *node, const ordo_node_request *req,
                          node_answer *a) {
  sqlite3 *db = node->st.rdb;
  char nextstr[24];
  const char *start_id = NULL;
  page pg;
  uint64_t from = UINT64_MAX;
  int64_t next = -1;
  int rc;

  if (page_query(req, &pg)) {
    rc = ordo__node_reply_nomem(a);
    goto out;
  }
  if ((pg.limit = parse_limit(pg.lim)) == 0) {
    rc = reply_bad_limit(a);
    goto out;
  }
  if ((pg.start != NULL && parse_block_start(pg.start, &from, &start_id, a)) ||
      page_begin(node, req, &pg, a)) {
    rc = a->body != NULL ? ORDO_OK : ORDO_E_NOMEM;
    goto out;
  }
  rc = ORDO_OK;
  if (start_id != NULL && (rc = ordo__node_store_block_find(
                               db, start_id, &from)) == ORDO_E_NOT_FOUND) {
    read_end(node);
    rc = ordo__node_reply_error(a, 400, 54, "Invalid Paging Query",
                                "start names no block of this chain");
    goto out;
  }
  /* Never past the pinned head: a paged read sees one chain. */
  if (rc == ORDO_OK)
    rc = ordo__node_store_block_list(db, from < pg.h.num ? from : pg.h.num,
                                     pg.limit, pg.data, &next);
  snprintf(nextstr, sizeof nextstr, "0x%016llx", (unsigned long long)next);
  rc =
      page_answer(node, rc, req, "/blocks", &pg, next >= 0 ? nextstr : NULL, a);
out:
  page_clear(&pg);
  return rc;
}

int ordo__node_get_block_one(ordo_node *node, const ordo_node_request *req,
                             const char *id, node_answer *a) {
  json_t *blk = NULL, *body;
  char base[300], path[sizeof "/blocks/" + ORDO_LEDGER_ID_LEN];
  int rc;

  if (!ordo__node_is_id(id))
    return ordo__node_reply_bad_id(a, id);
  rc = read_begin(node);
  if (rc == ORDO_OK)
    rc = ordo__node_store_block_get(node->st.rdb, id, &blk);
  read_end(node);
  if (rc == ORDO_E_NOT_FOUND)
    return ordo__node_reply_error(
        a, 404, 70, "Block Not Found",
        "There is no block with the id specified in the "
        "blockchain.");
  if (rc != ORDO_OK)
    return storage_answer(a, rc);
  ordo__node_base_url(node, req, base, sizeof base);
  snprintf(path, sizeof path, "/blocks/%s", id);
  body = json_pack("{s:o,s:o*}", "data", blk, "link",
                   ordo__node_link_json(base, path, NULL));
  return body != NULL ? ordo__node_reply(a, 200, body)
                      : ordo__node_reply_nomem(a);
}

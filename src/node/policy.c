/*
 * policy.c — what the node's REST API takes before anything is queued: the
 * allow-list of batch signers (a permissioned validator's transactor
 * policy), the seeded refusal of chosen batches (a fault for tests, which
 * looks like a permission failure), and the request counters.
 *
 * Both refusals reject a whole BatchList, as Sawtooth's REST API does when
 * the validator's permission check fails for any of its batches; the answer
 * (400, code 30) never says which batch, so a client has to split the list
 * to find it. That is the behaviour ordo's submitter must cope with.
 */
#include "node/internal.h"
#include "runtime/runtime.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* Refusal by hash                                                           */
/* ------------------------------------------------------------------------ */

static uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

int ordo_node_refuses(uint64_t seed, double refuse_rate, const char *batch_id) {
  uint64_t h = 1469598103934665603ULL; /* FNV-1a of the id */
  const char *p;
  double u;

  if (batch_id == NULL || !(refuse_rate > 0.0))
    return 0;
  if (refuse_rate >= 1.0)
    return 1;
  for (p = batch_id; *p != '\0'; p++)
    h = (h ^ (unsigned char)*p) * 1099511628211ULL;
  /* Seeded apart from the block order and the 503 draws ("ordo-ref"). */
  h = mix64(h ^ mix64(seed ^ 0x6f72646f2d726566ULL));
  u = (double)(h >> 11) * (1.0 / 9007199254740992.0); /* [0, 1) */
  return u < refuse_rate;
}

int ordo_node_would_refuse(const ordo_node *node, const char *batch_id) {
  if (node == NULL)
    return 0;
  return ordo_node_refuses(node->opts.seed, node->opts.refuse_rate, batch_id);
}

/* ------------------------------------------------------------------------ */
/* Allow-list                                                                */
/* ------------------------------------------------------------------------ */

#define KEY_LEN (ORDO_LEDGER_PUBKEY_SIZE - 1)

/* A compressed secp256k1 public key in hex (len characters at s): 66 hex
 * digits starting 02 or 03. Its lower-case form goes to out. */
static int key_norm(const char *s, size_t len, char out[ORDO_LEDGER_PUBKEY_SIZE]) {
  size_t i;
  if (len != KEY_LEN)
    return 0;
  for (i = 0; i < len; i++) {
    char c = s[i];
    if (c >= 'A' && c <= 'F')
      c = (char)(c - 'A' + 'a');
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
      return 0;
    out[i] = c;
  }
  out[len] = '\0';
  return out[0] == '0' && (out[1] == '2' || out[1] == '3');
}

/* The keys gathered so far: grown by push, sorted and deduplicated by
 * finish. */
typedef struct keyset {
  char (*k)[ORDO_LEDGER_PUBKEY_SIZE];
  size_t n, cap;
} keyset;

static int keyset_push(keyset *ks, const char key[ORDO_LEDGER_PUBKEY_SIZE]) {
  if (ks->n == ks->cap) {
    size_t cap = ks->cap > 0 ? ks->cap * 2 : 16;
    void *p = realloc(ks->k, cap * sizeof *ks->k);
    if (p == NULL)
      return ordo__set_last_error(ORDO_E_NOMEM, "node: out of memory");
    ks->k = p;
    ks->cap = cap;
  }
  memcpy(ks->k[ks->n++], key, ORDO_LEDGER_PUBKEY_SIZE);
  return ORDO_OK;
}

static int key_cmp(const void *a, const void *b) {
  return strcmp((const char *)a, (const char *)b);
}

static void keyset_finish(keyset *ks) {
  size_t i, j = 0;
  if (ks->n == 0)
    return;
  qsort(ks->k, ks->n, sizeof *ks->k, key_cmp);
  for (i = 1; i < ks->n; i++)
    if (strcmp(ks->k[i], ks->k[j]) != 0)
      memcpy(ks->k[++j], ks->k[i], sizeof *ks->k);
  ks->n = j + 1;
}

/* One line of the file, without its comment and surrounding blanks. */
static void line_trim(char *line, const char **start, size_t *len) {
  char *hash = strchr(line, '#');
  size_t n;
  if (hash != NULL)
    *hash = '\0';
  while (*line == ' ' || *line == '\t')
    line++;
  n = strlen(line);
  while (n > 0 && strchr(" \t\r\n", line[n - 1]) != NULL)
    n--;
  *start = line;
  *len = n;
}

/* The keys of path, one per line. */
static int read_file(const char *path, keyset *ks) {
  FILE *f = fopen(path, "r");
  char line[512];
  unsigned long lineno = 0;
  size_t before = ks->n;
  int rc = ORDO_OK;

  if (f == NULL)
    return ordo__set_last_error(ORDO_E_IO,
                                "node: cannot read the allow-list %s: %s",
                                path, strerror(errno));
  while (rc == ORDO_OK && fgets(line, sizeof line, f) != NULL) {
    char key[ORDO_LEDGER_PUBKEY_SIZE];
    const char *s;
    size_t n;
    lineno++;
    if (strchr(line, '\n') == NULL && !feof(f)) {
      rc = ordo__set_last_error(ORDO_E_INVAL,
                                "node: allow-list %s:%lu: line too long",
                                path, lineno);
      break;
    }
    line_trim(line, &s, &n);
    if (n == 0)
      continue;
    if (!key_norm(s, n, key))
      rc = ordo__set_last_error(
          ORDO_E_INVAL,
          "node: allow-list %s:%lu: '%.*s%s' is not a compressed public key "
          "(66 hex digits starting 02 or 03)",
          path, lineno, (int)(n > 70 ? 70 : n), s, n > 70 ? "..." : "");
    else
      rc = keyset_push(ks, key);
  }
  if (rc == ORDO_OK && ferror(f))
    rc = ordo__set_last_error(ORDO_E_IO, "node: cannot read the allow-list %s",
                              path);
  fclose(f);
  if (rc == ORDO_OK && ks->n == before)
    rc = ordo__set_last_error(ORDO_E_INVAL,
                              "node: allow-list %s has no keys (it would "
                              "refuse every batch)",
                              path);
  return rc;
}

int ordo__node_allow_load(ordo_node *node, const ordo_node_options *opts) {
  keyset ks = {NULL, 0, 0};
  size_t i;
  int rc = ORDO_OK;

  if (opts->nallow_signers > 0 && opts->allow_signers == NULL)
    return ordo__set_last_error(ORDO_E_INVAL,
                                "node: allow_signers is NULL with %zu keys",
                                opts->nallow_signers);
  for (i = 0; rc == ORDO_OK && i < opts->nallow_signers; i++) {
    const char *k = opts->allow_signers[i];
    char key[ORDO_LEDGER_PUBKEY_SIZE];
    if (k == NULL || !key_norm(k, strlen(k), key))
      rc = ordo__set_last_error(ORDO_E_INVAL,
                                "node: allow_signers[%zu] is not a compressed "
                                "public key (66 hex digits starting 02 or 03)",
                                i);
    else
      rc = keyset_push(&ks, key);
  }
  if (rc == ORDO_OK && opts->allow_signers_file != NULL)
    rc = read_file(opts->allow_signers_file, &ks);
  if (rc != ORDO_OK) {
    free(ks.k);
    return rc;
  }
  keyset_finish(&ks);
  node->allow = ks.k;
  node->nallow = ks.n;
  return ORDO_OK;
}

void ordo__node_allow_free(ordo_node *node) {
  free(node->allow);
  node->allow = NULL;
  node->nallow = 0;
}

static int signer_allowed(const ordo_node *node, const char *signer) {
  char key[ORDO_LEDGER_PUBKEY_SIZE];
  if (node->nallow == 0)
    return 1;
  return key_norm(signer, strlen(signer), key) &&
         bsearch(key, node->allow, node->nallow, sizeof *node->allow,
                 key_cmp) != NULL;
}

int ordo__node_list_permitted(const ordo_node *node,
                              const ordo_ledger_batchlist *bl) {
  size_t i, n = ordo_ledger_batchlist_count(bl);
  for (i = 0; i < n; i++) {
    const ordo_ledger_batch *b = ordo_ledger_batchlist_batch(bl, i);
    if (!signer_allowed(node, ordo_ledger_batch_signer(b)) ||
        ordo_node_would_refuse(node, ordo_ledger_batch_id(b)))
      return 0;
  }
  return 1;
}

/* ------------------------------------------------------------------------ */
/* Counters                                                                  */
/* ------------------------------------------------------------------------ */

void ordo__node_count(atomic_uint_fast64_t *c, uint64_t n) {
  atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

void ordo__node_count_request(ordo_node *node, const char *path) {
  node_counters *c = &node->stats;
  ordo__node_count(&c->requests, 1);
  if (strcmp(path, "/batches") == 0)
    ordo__node_count(&c->batches_posts, 1);
  else if (strcmp(path, "/batch_statuses") == 0)
    ordo__node_count(&c->batch_statuses, 1);
  else if (strcmp(path, "/state") == 0 || strncmp(path, "/state/", 7) == 0)
    ordo__node_count(&c->state, 1);
  else if (strcmp(path, "/blocks") == 0 || strncmp(path, "/blocks/", 8) == 0)
    ordo__node_count(&c->blocks, 1);
  else
    ordo__node_count(&c->other, 1);
}

static uint64_t load(atomic_uint_fast64_t *c) {
  return atomic_load_explicit(c, memory_order_relaxed);
}

int ordo_node_get_stats(ordo_node *node, ordo_node_stats *out) {
  node_counters *c;
  if (node == NULL || out == NULL)
    return ordo__set_last_error(ORDO_E_INVAL, "node: NULL argument");
  c = &node->stats;
  out->requests = load(&c->requests);
  out->batches_posts = load(&c->batches_posts);
  out->batch_statuses = load(&c->batch_statuses);
  out->batch_status_ids = load(&c->batch_status_ids);
  out->batch_status_waits = load(&c->batch_status_waits);
  out->state = load(&c->state);
  out->blocks = load(&c->blocks);
  out->other = load(&c->other);
  out->faults = load(&c->faults);
  out->too_large = load(&c->too_large);
  out->lists_refused = load(&c->lists_refused);
  pthread_mutex_lock(&node->mu);
  out->waiting = node->waiting;
  pthread_mutex_unlock(&node->mu);
  return ORDO_OK;
}

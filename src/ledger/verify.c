/*
 * verify.c — the run of `ordo verify` (submit.h; its command line is in
 * src/cli/verify.c): the oracle for order. Replays a workload
 * serially, in submission order, on a fresh in-memory state, and compares
 * the result with the ledger's state.
 *
 * The exact transactions are the ones `ordo submit` journaled in DIR (each
 * batch's signed BatchList): ordo-rw writes depend on the transaction ids,
 * so only the very same transactions replay to the same state. A batch the
 * ledger reports INVALID, or does not know (never sent: the cascade of an
 * invalid dep), is skipped, as the ledger skipped it. Every other batch is
 * applied whole (its transactions in order, all or nothing). If the ledger
 * ever applied two conflicting batches in the other order, some address
 * differs: each is reported with both values and the batches that wrote it.
 */
#include "ledger/submit.h"
#include "runtime/runtime.h"

#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- a small state map: address -> bytes, and who wrote it --------------- */

typedef struct vent {
  char addr[ORDO_LEDGER_ADDRESS_SIZE];
  unsigned char *v;
  size_t len;
  int used;
  json_t *writers; /* array of workload ids */
} vent;

typedef struct vmap {
  vent *e;
  size_t cap, n;
} vmap;

static size_t addr_hash(const char *a) {
  size_t h = 1469598103934665603ull;
  for (; *a; a++)
    h = (h ^ (unsigned char)*a) * 1099511628211ull;
  return h;
}

static vent *vmap_slot(vmap *m, const char *addr) {
  size_t i = addr_hash(addr) & (m->cap - 1);
  while (m->e[i].used && strcmp(m->e[i].addr, addr) != 0)
    i = (i + 1) & (m->cap - 1);
  return &m->e[i];
}

static vent *vmap_find(vmap *m, const char *addr) {
  vent *e;
  if (m->cap == 0)
    return NULL;
  e = vmap_slot(m, addr);
  return e->used ? e : NULL;
}

static int vmap_grow(vmap *m) {
  vmap nm;
  size_t i;
  if ((m->n + 1) * 2 <= m->cap)
    return ORDO_OK;
  nm.cap = m->cap ? m->cap * 2 : 256;
  nm.n = m->n;
  if ((nm.e = calloc(nm.cap, sizeof(*nm.e))) == NULL)
    return ORDO_E_NOMEM;
  for (i = 0; i < m->cap; i++)
    if (m->e[i].used)
      *vmap_slot(&nm, m->e[i].addr) = m->e[i];
  free(m->e);
  *m = nm;
  return ORDO_OK;
}

/* Set addr to a copy of v (owned: takes v). */
static int vmap_put(vmap *m, const char *addr, unsigned char *v, size_t len,
                    const char *writer) {
  vent *e;
  if (vmap_grow(m) != ORDO_OK) {
    free(v);
    return ORDO_E_NOMEM;
  }
  e = vmap_slot(m, addr);
  if (!e->used) {
    e->used = 1;
    snprintf(e->addr, sizeof e->addr, "%s", addr);
    e->writers = json_array();
    m->n++;
  }
  free(e->v);
  e->v = v;
  e->len = len;
  if (writer != NULL && json_array_size(e->writers) < 16)
    json_array_append_new(e->writers, json_string(writer));
  return ORDO_OK;
}

static void vmap_free(vmap *m) {
  for (size_t i = 0; i < m->cap; i++)
    if (m->e[i].used) {
      free(m->e[i].v);
      json_decref(m->e[i].writers);
    }
  free(m->e);
}

/* ---- one batch, all or nothing ------------------------------------------- */

typedef struct overlay {
  vmap *base;
  struct {
    char addr[ORDO_LEDGER_ADDRESS_SIZE];
    unsigned char *v;
    size_t len;
  } w[512];
  size_t n;
  int full;
} overlay;

static int ov_get(void *ud, const char *addr, const unsigned char **v,
                  size_t *len) {
  overlay *o = ud;
  for (size_t i = o->n; i-- > 0;)
    if (strcmp(o->w[i].addr, addr) == 0) {
      *v = o->w[i].v;
      *len = o->w[i].len;
      return ORDO_OK;
    }
  vent *e = vmap_find(o->base, addr);
  if (e == NULL)
    return ORDO_E_NOT_FOUND;
  *v = e->v;
  *len = e->len;
  return ORDO_OK;
}

static int ov_set(void *ud, const char *addr, const unsigned char *v,
                  size_t len) {
  overlay *o = ud;
  if (o->n == sizeof(o->w) / sizeof(o->w[0])) {
    o->full = 1;
    return ORDO_E_NOMEM;
  }
  if ((o->w[o->n].v = malloc(len > 0 ? len : 1)) == NULL)
    return ORDO_E_NOMEM;
  memcpy(o->w[o->n].v, v, len);
  o->w[o->n].len = len;
  snprintf(o->w[o->n].addr, sizeof o->w[o->n].addr, "%s", addr);
  o->n++;
  return ORDO_OK;
}

/* Apply a journaled one-batch BatchList; ORDO_OK and its writes in m, or
 * the first transaction's error and m unchanged. */
static int replay_batch(vmap *m, const ordo_queue_item *it, const char *id) {
  ordo_ledger_batchlist *bl = NULL;
  overlay *o = calloc(1, sizeof(*o));
  ordo_ledger_state st;
  int rc;
  size_t i;

  if (o == NULL)
    return ORDO_E_NOMEM;
  o->base = m;
  st.get = ov_get;
  st.set = ov_set;
  st.ud = o;
  rc = ordo_ledger_batchlist_decode(it->payload, it->payload_len, &bl);
  if (rc == ORDO_OK && ordo_ledger_batchlist_count(bl) != 1)
    rc = ORDO_E_LEDGER_DECODE;
  if (rc == ORDO_OK) {
    const ordo_ledger_batch *b = ordo_ledger_batchlist_batch(bl, 0);
    for (i = 0; rc == ORDO_OK && i < ordo_ledger_batch_txn_count(b); i++)
      rc = ordo_ledger_txn_apply(ordo_ledger_batch_txn(b, i), &st);
  }
  for (i = 0; i < o->n; i++) {
    if (rc == ORDO_OK) {
      if (vmap_put(m, o->w[i].addr, o->w[i].v, o->w[i].len, id) != ORDO_OK)
        rc = ORDO_E_NOMEM;
    } else {
      free(o->w[i].v);
    }
  }
  ordo_ledger_batchlist_free(bl);
  free(o);
  return rc;
}

/* ---- the run -------------------------------------------------------------- */

/* Wait for op; its parsed result, or NULL with a message printed. */
static json_t *op_json(ordo_op *op, const char *what) {
  json_t *r = NULL;
  if (op == NULL) {
    fprintf(stderr, "ordo verify: %s: out of memory\n", what);
    return NULL;
  }
  if (ordo_op_wait(op, -1) == ORDO_OK)
    r = json_loads(ordo_op_result(op), 0, NULL);
  else
    fprintf(stderr, "ordo verify: %s: %s\n", what, ordo_op_message(op));
  ordo_op_release(op);
  return r;
}

static void hex_short(const unsigned char *v, size_t len, char *out,
                      size_t cap) {
  static const char hx[] = "0123456789abcdef";
  size_t k = 0, i;
  for (i = 0; i < len && k + 3 < cap && i < 32; i++) {
    out[k++] = hx[v[i] >> 4];
    out[k++] = hx[v[i] & 15];
  }
  if (i < len && k + 4 < cap) {
    memcpy(out + k, "...", 3);
    k += 3;
  }
  out[k] = '\0';
}

/* A line's signed BatchList, from the journal or the caller's source. */
static int line_payload(const ordo__verify_opts *opts, ordo_journal *j,
                        const char *id, unsigned char **pl, size_t *len) {
  if (opts->payload != NULL)
    return opts->payload(opts->payload_ud, id, pl, len);
  return ordo_journal_payload(j, id, pl, len);
}

int ordo__verify_run(const ordo__verify_opts *opts) {
  const char *file = opts->file, *url = opts->url, *dir = opts->dir,
             *family = opts->family != NULL ? opts->family
                                            : ORDO_LEDGER_RW_FAMILY;
  int json = opts->json, exit_code = ORDO__RUN_FAILED, rc;
  ordo_ledger_family fam;
  ordo_workload *w = NULL;
  ordo__ledger_session ls = {0};
  ordo_journal_options jopt;
  char ns[2][ORDO_LEDGER_NAMESPACE_SIZE];
  size_t nns = 1;
  json_t *sid_of = json_object(), *status_of = json_object(), *ledger = NULL;
  json_t *diffs = json_array();
  vmap m = {0};
  size_t i, replayed = 0, skipped_invalid = 0, skipped_unknown = 0;

  if (ordo_ledger_family_parse(family, &fam) != ORDO_OK ||
      ordo_ledger_namespace(fam == ORDO_LEDGER_FAMILY_INTKEY
                                ? ORDO_LEDGER_INTKEY_FAMILY
                                : ORDO_LEDGER_RW_FAMILY,
                            ns[0]) != ORDO_OK ||
      (fam == ORDO_LEDGER_FAMILY_MIXED &&
       (nns = 2, ordo_ledger_namespace(ORDO_LEDGER_INTKEY_FAMILY, ns[1])) !=
           ORDO_OK) ||
      (rc = ordo_workload_load(file, &w)) != ORDO_OK) {
    fprintf(stderr, "ordo verify: %s\n", ordo_last_error_message());
    exit_code = ORDO__RUN_BAD_INPUT;
    goto out;
  }
  ordo_journal_options_init(&jopt);
  /* The committed batches' payloads come from their records. */
  if (ordo__ledger_session_open(&ls, opts->payload != NULL ? NULL : dir, url,
                                &jopt) != ORDO_OK) {
    fprintf(stderr, "ordo verify: %s\n", ordo_last_error_message());
    exit_code = ORDO__RUN_BAD_INPUT;
    goto out;
  }
  /* The Sawtooth id of every journaled line, then their statuses. */
  {
    const char **sids = calloc(w->nbatches + 1, sizeof(*sids));
    size_t n = 0;
    for (i = 0; sids != NULL && i < w->nbatches; i++) {
      unsigned char *pl = NULL;
      size_t pl_len = 0;
      ordo_ledger_batchlist *bl = NULL;
      if (line_payload(opts, ls.j, w->batches[i].id, &pl, &pl_len) != ORDO_OK)
        continue; /* never journaled: never sent */
      if (ordo_ledger_batchlist_decode(pl, pl_len, &bl) == ORDO_OK &&
          ordo_ledger_batchlist_count(bl) == 1) {
        const char *sid = ordo_ledger_batch_id(ordo_ledger_batchlist_batch(bl, 0));
        json_object_set_new(sid_of, w->batches[i].id, json_string(sid));
        sids[n++] = json_string_value(json_object_get(sid_of, w->batches[i].id));
      }
      ordo_ledger_batchlist_free(bl);
      free(pl);
    }
    for (size_t off = 0; sids != NULL && off < n; off += 500) {
      size_t k = n - off < 500 ? n - off : 500, e;
      json_t *r = op_json(ordo_ledger_batch_statuses(ls.client, sids + off, k, 0),
                          "batch statuses"), *x;
      if (r == NULL) {
        free(sids);
        goto out;
      }
      json_array_foreach(json_object_get(r, "data"), e, x) {
        const char *id = json_string_value(json_object_get(x, "id"));
        if (id != NULL)
          json_object_set(status_of, id, json_object_get(x, "status"));
      }
      json_decref(r);
    }
    free(sids);
  }
  /* Replay in submission order. */
  for (i = 0; i < w->nbatches; i++) {
    const char *id = w->batches[i].id;
    const char *sid = json_string_value(json_object_get(sid_of, id));
    const char *st =
        sid != NULL ? json_string_value(json_object_get(status_of, sid)) : NULL;
    ordo_queue_item it;
    unsigned char *pl = NULL;
    if (st == NULL || strcmp(st, "COMMITTED") != 0) {
      if (st != NULL && strcmp(st, "INVALID") == 0)
        skipped_invalid++;
      else
        skipped_unknown++;
      continue;
    }
    memset(&it, 0, sizeof it);
    if (line_payload(opts, ls.j, id, &pl, &it.payload_len) != ORDO_OK)
      continue;
    it.payload = pl;
    rc = replay_batch(&m, &it, id);
    free(pl);
    pl = NULL;
    if (rc != ORDO_OK) {
      /* Committed by the ledger, invalid when applied in order: the
       * ledger must have seen another order. */
      json_array_append_new(
          diffs, json_pack("{s:s, s:s}", "batch", id, "problem",
                           "committed by the ledger but invalid when "
                           "replayed in submission order"));
      continue;
    }
    replayed++;
  }
  /* The ledger's state in the namespace(s), address by address. */
  if ((ledger = op_json(ordo_ledger_state_list(ls.client, ns[0]), "state")) ==
      NULL)
    goto out;
  if (nns == 2) {
    json_t *more = op_json(ordo_ledger_state_list(ls.client, ns[1]), "state");
    if (more == NULL)
      goto out;
    json_array_extend(json_object_get(ledger, "data"),
                      json_object_get(more, "data"));
    json_decref(more);
  }
  {
    json_t *seen = json_object(), *x;
    size_t e;
    json_array_foreach(json_object_get(ledger, "data"), e, x) {
      const char *addr = json_string_value(json_object_get(x, "address"));
      const char *b64 = json_string_value(json_object_get(x, "data"));
      unsigned char *bin;
      size_t blen = 0, cap;
      vent *want;
      if (addr == NULL || b64 == NULL)
        continue;
      json_object_set_new(seen, addr, json_true());
      cap = strlen(b64) + 1;
      if ((bin = malloc(cap)) == NULL ||
          sodium_base642bin(bin, cap, b64, strlen(b64), NULL, &blen, NULL,
                            sodium_base64_VARIANT_ORIGINAL) != 0) {
        free(bin);
        blen = 0;
        bin = NULL;
      }
      want = vmap_find(&m, addr);
      if (want == NULL || want->len != blen ||
          (blen > 0 && memcmp(want->v, bin, blen) != 0)) {
        char ex[80] = "(absent)", ac[80];
        if (want != NULL)
          hex_short(want->v, want->len, ex, sizeof ex);
        hex_short(bin, blen, ac, sizeof ac);
        json_array_append_new(
            diffs, json_pack("{s:s, s:s, s:s, s:o}", "address", addr,
                             "expected", ex, "actual", ac, "batches",
                             want != NULL ? json_incref(want->writers)
                                          : json_array()));
      }
      free(bin);
    }
    for (i = 0; i < m.cap; i++)
      if (m.e[i].used && json_object_get(seen, m.e[i].addr) == NULL) {
        char ex[80];
        hex_short(m.e[i].v, m.e[i].len, ex, sizeof ex);
        json_array_append_new(
            diffs, json_pack("{s:s, s:s, s:s, s:O}", "address", m.e[i].addr,
                             "expected", ex, "actual", "(absent)", "batches",
                             m.e[i].writers));
      }
    json_decref(seen);
  }
  {
    size_t nd = json_array_size(diffs), e;
    json_t *x;
    if (json) {
      json_t *o = json_pack("{s:b, s:I, s:I, s:I, s:I, s:O}", "equal", nd == 0,
                            "addresses", (json_int_t)m.n, "replayed",
                            (json_int_t)replayed, "skipped_invalid",
                            (json_int_t)skipped_invalid, "skipped_unknown",
                            (json_int_t)skipped_unknown, "differences", diffs);
      char *s = json_dumps(o, JSON_COMPACT);
      printf("%s\n", s);
      free(s);
      json_decref(o);
    } else {
      json_array_foreach(diffs, e, x) {
        if (json_object_get(x, "batch") != NULL) {
          printf("%s: %s\n", json_string_value(json_object_get(x, "batch")),
                 json_string_value(json_object_get(x, "problem")));
          continue;
        }
        char *who = json_dumps(json_object_get(x, "batches"), JSON_COMPACT);
        printf("%s: expected %s, ledger has %s; written by %s\n",
               json_string_value(json_object_get(x, "address")),
               json_string_value(json_object_get(x, "expected")),
               json_string_value(json_object_get(x, "actual")),
               who != NULL ? who : "?");
        free(who);
      }
      printf("%s: %zu batches replayed, %zu invalid and %zu never seen "
             "skipped, %zu addresses, %zu differences\n",
             nd == 0 ? "equal" : "DIFFERENT", replayed, skipped_invalid,
             skipped_unknown, m.n, nd);
    }
    exit_code = nd == 0 ? ORDO__RUN_DONE : ORDO__RUN_FAILED;
  }
out:
  json_decref(ledger);
  json_decref(diffs);
  json_decref(sid_of);
  json_decref(status_of);
  vmap_free(&m);
  (void)ordo__ledger_session_close(&ls);
  ordo_workload_free(w);
  return exit_code;
}

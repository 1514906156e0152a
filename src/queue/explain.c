/*
 * explain.c — ordo_queue_explain: why a batch waits, in words, from the
 * same lock table and deps that decide it (queue_int.h for the design).
 */
#include "base/base.h"
#include "queue/queue_int.h"
#include "runtime/runtime.h"

#include <stdarg.h>
#include <stdio.h>

/* A growable string for explanations. */
typedef struct sbuf {
  char *p;
  size_t len, cap;
  int failed;
} sbuf;

static void sb_printf(sbuf *s, const char *fmt, ...) ORDO__PRINTF(2, 3);

static void sb_printf(sbuf *s, const char *fmt, ...) {
  va_list ap;
  int n;

  if (s->failed)
    return;
  va_start(ap, fmt);
  n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0 ||
      ordo__q_reserve((void **)&s->p, &s->cap, s->len + (size_t)n + 1, 1)) {
    s->failed = 1;
    return;
  }
  va_start(ap, fmt);
  vsnprintf(s->p + s->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  s->len += (size_t)n;
}

/* The earlier holders that conflict with one address of the batch. */
typedef struct explain_acc {
  const qbatch *b;
  int write;
  const qbatch *w[64], *r[64];
  size_t nw, nr, more;
} explain_acc;

/* Add b to v[0..*n) unless it is there; past 64, count it in *more. */
static void explain_add(const qbatch **v, size_t *n, size_t *more,
                        const qbatch *b) {
  size_t i;
  for (i = 0; i < *n && v[i] != b; i++)
    ;
  if (i < *n)
    return;
  if (*n < 64)
    v[(*n)++] = b;
  else
    (*more)++;
}

static void explain_holder(const qholder *h, void *arg) {
  explain_acc *a = arg;
  if (h->b->seq >= a->b->seq || !(h->write || a->write))
    return;
  if (h->write)
    explain_add(a->w, &a->nw, &a->more, h->b);
  else
    explain_add(a->r, &a->nr, &a->more, h->b);
}

/* ------------------------------------------------------------------------ */
/* The blockers: what a WAITING batch waits on, as data                      */
/* ------------------------------------------------------------------------ */

/* The blockers being collected; a failed allocation sets failed and every
 * later step does nothing, so the walk needs no error path of its own. */
typedef struct bvec {
  ordo_queue_blocker *v;
  size_t n, cap;
  int failed;
} bvec;

/* A terminated copy of s[0..len), or NULL. */
static char *copy_n(const char *s, size_t len) {
  char *c = malloc(len + 1);
  if (c != NULL) {
    memcpy(c, s, len);
    c[len] = '\0';
  }
  return c;
}

/* A new blocker of kind with a copy of what[0..len), or NULL (failed). */
static ordo_queue_blocker *bvec_add(bvec *bv, const char *kind,
                                    const char *what, size_t len) {
  ordo_queue_blocker *k;
  if (bv->failed ||
      ordo__q_reserve((void **)&bv->v, &bv->cap, bv->n + 1, sizeof(*bv->v))) {
    bv->failed = 1;
    return NULL;
  }
  k = &bv->v[bv->n];
  memset(k, 0, sizeof(*k));
  k->kind = kind;
  if ((k->what = copy_n(what, len)) == NULL) {
    bv->failed = 1;
    return NULL;
  }
  bv->n++;
  return k;
}

/* Give k the holders v[0..n), each writing or not. */
static void bvec_holders(bvec *bv, ordo_queue_blocker *k,
                         const qbatch *const *v, size_t n, int write) {
  ordo_queue_holder *h;
  size_t i;
  if (bv->failed || n == 0)
    return;
  h = realloc(k->holders, (k->nholders + n) * sizeof(*h));
  if (h == NULL) {
    bv->failed = 1;
    return;
  }
  k->holders = h;
  for (i = 0; i < n; i++) {
    h[k->nholders].write = write;
    if ((h[k->nholders].id = ordo__strdup(v[i]->id)) == NULL) {
      bv->failed = 1;
      return;
    }
    k->nholders++;
  }
}

/* The deps of b not yet COMMITTED. */
static void blockers_deps(const ordo_queue *q, const qbatch *b, bvec *bv) {
  size_t i;
  for (i = 0; i < b->more->ndeps; i++) {
    const char *id = b->more->deps[i];
    const qbatch *d = ordo__map_get(&q->batches, id);
    ordo_queue_blocker *k;
    if (d != NULL ? d->state == ORDO_QUEUE_COMMITTED
                  : ordo__q_forgotten(q, id) == ORDO_QUEUE_COMMITTED)
      continue;
    if ((k = bvec_add(bv, "dep", id, strlen(id))) != NULL)
      k->state = d == NULL || !d->enqueued ? "never enqueued"
                                           : ordo_queue_state_name(d->state);
  }
}

/* Serial: the service's first unfinished batch, unless b is it. */
static void blockers_serial(const qbatch *b, bvec *bv) {
  const qbatch *first = b->svc->first, *e;
  ordo_queue_blocker *k;
  size_t n = 0;
  if (first == b)
    return;
  for (e = first; e != b; e = e->more->snext)
    n++;
  if ((k = bvec_add(bv, "serial", first->id, strlen(first->id))) == NULL)
    return;
  k->earlier = n;
  bvec_holders(bv, k, &first, 1, 1);
}

/* Lock table: each address of b with earlier conflicting holders. */
static void blockers_addresses(const qbatch *b, bvec *bv) {
  size_t i;
  for (i = 0; i < b->nfp && !bv->failed; i++) {
    explain_acc acc;
    ordo_queue_blocker *k;
    memset(&acc, 0, sizeof(acc));
    acc.b = b;
    acc.write = b->fp[i].write;
    ordo__q_locks_overlapping(b->svc, &b->fp[i], !acc.write, explain_holder,
                              &acc);
    if (acc.nw + acc.nr == 0)
      continue;
    if ((k = bvec_add(bv, "address", b->fp[i].node->key, b->fp[i].len)) ==
        NULL)
      return;
    k->write = acc.write;
    k->more = acc.more;
    bvec_holders(bv, k, acc.w, acc.nw, 1);
    bvec_holders(bv, k, acc.r, acc.nr, 0);
  }
}

void ordo_queue_blockers_free(ordo_queue_blocker *v, size_t n) {
  size_t i, k;
  for (i = 0; v != NULL && i < n; i++) {
    for (k = 0; k < v[i].nholders; k++)
      free(v[i].holders[k].id);
    free(v[i].holders);
    free(v[i].what);
  }
  free(v);
}

int ordo_queue_blockers(const ordo_queue *q, const char *id,
                        ordo_queue_blocker **out, size_t *n) {
  const qbatch *b;
  bvec bv = {0};
  if (out != NULL)
    *out = NULL;
  if (n != NULL)
    *n = 0;
  if (q == NULL || id == NULL || out == NULL || n == NULL)
    return ordo__set_last_error(ORDO_E_INVAL, "blockers: NULL argument");
  if ((b = ordo__q_batch_find(q, id)) == NULL)
    return ordo__set_last_error(ORDO_E_NOT_FOUND, "no batch '%s'", id);
  if (b->state != ORDO_QUEUE_WAITING)
    return ORDO_OK;
  blockers_deps(q, b, &bv);
  if (ordo__q_locks_serial(q))
    blockers_serial(b, &bv);
  if (ordo__q_locks_trie(q))
    blockers_addresses(b, &bv);
  if (bv.failed) {
    /* bv.n counts every blocker whose what was copied: all it owns. */
    ordo_queue_blockers_free(bv.v, bv.n);
    return ordo__set_last_error(ORDO_E_NOMEM, NULL);
  }
  *out = bv.v;
  *n = bv.n;
  return ORDO_OK;
}

/* ------------------------------------------------------------------------ */
/* The text                                                                  */
/* ------------------------------------------------------------------------ */

/* The holders of k that write (or read): "T1, T3 read". */
static void explain_list(sbuf *sb, const ordo_queue_blocker *k, int write,
                         const char *one, const char *many) {
  size_t i, n = 0;
  for (i = 0; i < k->nholders; i++)
    if (k->holders[i].write == write)
      sb_printf(sb, "%s%s", n++ ? ", " : "", k->holders[i].id);
  sb_printf(sb, " %s", n == 1 ? one : many);
}

/* "A (T3 writes; T1 reads; 2 more)" for an address blocker. */
static void explain_address(sbuf *sb, const ordo_queue_blocker *k) {
  size_t i, nw = 0;
  for (i = 0; i < k->nholders; i++)
    nw += k->holders[i].write != 0;
  sb_printf(sb, "%s (", k->what);
  if (nw)
    explain_list(sb, k, 1, "writes", "write");
  if (k->nholders > nw) {
    if (nw)
      sb_printf(sb, "; ");
    explain_list(sb, k, 0, "reads", "read");
  }
  if (k->more)
    sb_printf(sb, "; %zu more", k->more);
  sb_printf(sb, ")");
}

/* "T4 waits on dep T1 (QUEUED), T0 (serial: …), A (T3 writes)". */
static int explain_waiting(const ordo_queue *q, const qbatch *b, sbuf *sb) {
  ordo_queue_blocker *v;
  size_t n, i;
  int rc = ordo_queue_blockers(q, b->id, &v, &n);
  if (rc != ORDO_OK)
    return rc;
  sb_printf(sb, "%s waits on ", b->id);
  for (i = 0; i < n; i++) {
    const ordo_queue_blocker *k = &v[i];
    if (i > 0)
      sb_printf(sb, ", ");
    if (strcmp(k->kind, "dep") == 0)
      sb_printf(sb, "dep %s (%s)", k->what, k->state);
    else if (strcmp(k->kind, "serial") == 0)
      sb_printf(sb, "%s (serial: %zu earlier unfinished in %s)", k->what,
                k->earlier, b->svc->name);
    else
      explain_address(sb, k);
  }
  if (n == 0)
    sb_printf(sb, "nothing (ready at the next take)");
  ordo_queue_blockers_free(v, n);
  return ORDO_OK;
}

char *ordo_queue_explain(const ordo_queue *q, const char *id) {
  sbuf sb = {0};
  const qbatch *b;

  if (q == NULL || (b = ordo__q_batch_find(q, id)) == NULL) {
    ordo__set_last_error(ORDO_E_NOT_FOUND, "no batch '%s'",
                         id != NULL ? id : "(null)");
    return NULL;
  }
  switch (b->state) {
  case ORDO_QUEUE_QUEUED:
    sb_printf(&sb, "%s is ready", b->id);
    if (b->held)
      sb_printf(&sb, "; held until its journal record is durable");
    if (b->svc->halt_by != NULL)
      sb_printf(&sb, "; service %s is halted (%s invalid: %s)", b->svc->name,
                b->svc->halt_by->id, b->svc->halt_by->reason);
    else if (b->svc->halted)
      sb_printf(&sb, "; service %s is halted (%s)", b->svc->name,
                b->svc->halt_text);
    break;
  case ORDO_QUEUE_SUBMITTED:
  case ORDO_QUEUE_COMMITTED:
  case ORDO_QUEUE_UNKNOWN: /* not a scheduler state */
    sb_printf(&sb, "%s is %s", b->id,
              b->state == ORDO_QUEUE_SUBMITTED ? "submitted" : "committed");
    break;
  case ORDO_QUEUE_INVALID:
    sb_printf(&sb, "%s is invalid: %s", b->id, b->reason);
    break;
  case ORDO_QUEUE_WAITING:
    if (explain_waiting(q, b, &sb) != ORDO_OK)
      sb.failed = 1;
    break;
  }
  if (sb.failed) {
    free(sb.p);
    ordo__set_last_error(ORDO_E_NOMEM, NULL);
    return NULL;
  }
  return sb.p;
}


/*
 * bench_queue.c — `ordo bench scheduler` and `ordo bench makespan`: the
 * submission queuer (DESIGN.md, "queue") measured.
 *
 * scheduler: what the in-memory ordo_queue costs per batch, with no journal
 *   and no ledger: enqueue all N batches, then take every ready batch and
 *   finish every taken one (COMMITTED) until the queue is empty; ns/batch is
 *   the whole of that over N. The workload is made before the clock starts:
 *   Sawtooth-like addresses (a 6-hex-char family namespace and 64 random hex
 *   characters, as a SHA-512 suffix looks), each batch reading one shared
 *   account of its service and writing its own address, one in ten also
 *   writing a shared account, so that some batches wait and the readiness
 *   and wake-up paths run, not only the lock table.
 *
 * makespan: rounds on the model ledger (ordo_plan_run: every batch taken in
 *   a round finishes at the end of it) for each strategy, next to the
 *   critical path computed here without the scheduler: the longest chain in
 *   the DAG whose edges join every earlier batch to every later batch of the
 *   same service that conflicts with it (one writes an address that is a
 *   prefix of, or has as prefix, one the other reads or writes), plus the
 *   explicit deps. No order-respecting safe schedule can beat it; the lock
 *   table should meet it. The same pairs also check every plan for safety:
 *   a conflicting pair taken in the same round, or the later one first, is
 *   an order violation, which only the unconstrained strategy may have.
 */
#include "bench.h"
#include "queue/queue.h"

#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

/* ------------------------------------------------------------------------ */
/* Synthetic addresses                                                       */
/* ------------------------------------------------------------------------ */

#define QB_SEED 20240605u
#define QB_ADDR_LEN 70 /* Sawtooth: 6 hex namespace + 64 hex */
#define QB_NS_LEN 6
#define QB_ADDR_SIZE (QB_ADDR_LEN + 1)

/* Family namespaces (the first 6 hex chars of SHA-512 of the family name,
 * as Sawtooth derives them): intkey, pike, grid product, xo. */
static const char *const qb_families[] = {"1cf126", "cad11d", "621dee",
                                          "5b7349"};
#define QB_NFAMILIES (sizeof qb_families / sizeof qb_families[0])

/* splitmix64: small, seeded, and the same on every machine. */
typedef struct qb_rng {
  uint64_t s;
} qb_rng;

static uint64_t qb_next(qb_rng *r) {
  uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* Uniform in [0, n); the modulo bias is below 2^-40 for these n. */
static size_t qb_below(qb_rng *r, size_t n) { return (size_t)(qb_next(r) % n); }

static int qb_chance(qb_rng *r, double p) {
  return (double)(qb_next(r) >> 11) * (1.0 / 9007199254740992.0) < p;
}

/* The address named by (kind, a, b) in family ns: the namespace, then 64
 * hex chars that depend on nothing else, so distinct names share no more
 * than a chance prefix (as hashed Sawtooth addresses do). */
static void qb_addr(char out[QB_ADDR_SIZE], const char *ns, uint64_t kind,
                    uint64_t a, uint64_t b) {
  static const char hex[] = "0123456789abcdef";
  qb_rng r = {kind * 0xd1b54a32d192ed03ull ^ a * 0xaef17502108ef2d9ull ^ b};
  size_t i, j;

  memcpy(out, ns, QB_NS_LEN);
  for (i = 0; i < 4; i++) {
    uint64_t v = qb_next(&r);
    for (j = 0; j < 16; j++, v >>= 4)
      out[QB_NS_LEN + 16 * i + j] = hex[v & 15];
  }
  out[QB_ADDR_LEN] = '\0';
}

/* Address kinds, so that no two roles ever draw the same address. */
enum { QB_OWN = 1, QB_SIGNER, QB_POOL, QB_POOL_TAG, QB_IDENTITY, QB_COUNTER };

/* ------------------------------------------------------------------------ */
/* scheduler                                                                 */
/* ------------------------------------------------------------------------ */

/* The share of batches that also write a pool account: they make the
 * waits. The pool is the service's batches / 8, so each account has ~8
 * readers and ~1 writer queued, whatever N: no hot address. */
#define SCHED_WRITE_SHARED 0.10
#define SCHED_POOL_MIN 8
#define SCHED_POOL_DIV 8
#define SCHED_100K 100000u
#define SCHED_100K_SERVICES 100u
#define SCHED_GOAL_NS 1000.0
/* Without --count the 1M point is left out: on a 2-vCPU guest its six runs
 * per point take ~30 s and ~1.1 GiB, too much for `make bench`.
 * --count 1000000 runs it. */
#define SCHED_DEFAULT_MAX_N 100000u

static const size_t sched_default_n[] = {1000, 100000, 1000000};
static const size_t sched_default_svcs[] = {1, 100, 10000};
#define SCHED_NN (sizeof sched_default_n / sizeof sched_default_n[0])
#define SCHED_NS (sizeof sched_default_svcs / sizeof sched_default_svcs[0])

/* One batch of the workload: its service and its addresses, reads first,
 * at refs[ref .. ref + nreads + nwrites). */
typedef struct sched_batch {
  uint32_t svc;
  uint32_t ref;
  uint8_t nreads, nwrites;
} sched_batch;

/* A whole workload, made before the clock starts: the timed loop only
 * points into it. Fixed-size records keep it to a few allocations. */
typedef struct sched_wl {
  size_t n, nsvcs;
  sched_batch *b;
  char (*ids)[24];
  char (*svc_names)[24];
  char (*addrs)[QB_ADDR_SIZE];
  size_t naddrs;
  const char **refs;
} sched_wl;

static void sched_wl_free(sched_wl *w) {
  free(w->b);
  free(w->ids);
  free(w->svc_names);
  free(w->addrs);
  free(w->refs);
  memset(w, 0, sizeof *w);
}

static int sched_wl_make(sched_wl *w, size_t n, size_t nsvcs) {
  qb_rng r = {QB_SEED ^ (uint64_t)n * 31 ^ (uint64_t)nsvcs};
  size_t *count = NULL, *pool_base = NULL, *pool_n = NULL, i, k, naddr = 0;
  int rc = ORDO_E_NOMEM;

  memset(w, 0, sizeof *w);
  w->n = n;
  w->nsvcs = nsvcs;
  if ((w->b = calloc(n, sizeof *w->b)) == NULL ||
      (w->ids = calloc(n, sizeof *w->ids)) == NULL ||
      (w->svc_names = calloc(nsvcs, sizeof *w->svc_names)) == NULL ||
      (w->refs = calloc(3 * n, sizeof *w->refs)) == NULL ||
      (count = calloc(nsvcs, sizeof *count)) == NULL ||
      (pool_base = calloc(nsvcs, sizeof *pool_base)) == NULL ||
      (pool_n = calloc(nsvcs, sizeof *pool_n)) == NULL)
    goto done;
  /* Services first, so that each pool can be sized to its service. */
  for (i = 0; i < n; i++) {
    w->b[i].svc = (uint32_t)qb_below(&r, nsvcs);
    count[w->b[i].svc]++;
  }
  for (k = 0; k < nsvcs; k++) {
    snprintf(w->svc_names[k], sizeof w->svc_names[k], "svc%zu", k);
    pool_n[k] = count[k] / SCHED_POOL_DIV;
    if (pool_n[k] < SCHED_POOL_MIN)
      pool_n[k] = SCHED_POOL_MIN;
    pool_base[k] = naddr;
    naddr += pool_n[k];
  }
  w->naddrs = naddr + n; /* the pools, then one own address per batch */
  if ((w->addrs = calloc(w->naddrs, sizeof *w->addrs)) == NULL)
    goto done;
  for (k = 0; k < nsvcs; k++)
    for (i = 0; i < pool_n[k]; i++)
      qb_addr(w->addrs[pool_base[k] + i], qb_families[k % QB_NFAMILIES],
              QB_POOL, k, i);
  for (i = 0, k = 0; i < n; i++) {
    sched_batch *b = &w->b[i];
    size_t svc = b->svc, own = naddr + i;

    snprintf(w->ids[i], sizeof w->ids[i], "b%zu", i);
    qb_addr(w->addrs[own], qb_families[svc % QB_NFAMILIES], QB_OWN, svc, i);
    b->ref = (uint32_t)k;
    b->nreads = 1;
    w->refs[k++] = w->addrs[pool_base[svc] + qb_below(&r, pool_n[svc])];
    b->nwrites = 1;
    w->refs[k++] = w->addrs[own];
    if (qb_chance(&r, SCHED_WRITE_SHARED)) {
      b->nwrites++;
      w->refs[k++] = w->addrs[pool_base[svc] + qb_below(&r, pool_n[svc])];
    }
  }
  rc = ORDO_OK;
done:
  free(count);
  free(pool_base);
  free(pool_n);
  if (rc != ORDO_OK)
    sched_wl_free(w);
  return rc;
}

typedef struct sched_result {
  double enqueue_ns, drain_ns, total_ns; /* per batch */
  double single_ns; /* total with one ordo_queue_finish call per batch */
  size_t rounds;
  double max_rss_mib; /* the process's peak so far */
} sched_result;

/* Each point runs this many times on a fresh queue and the fastest run is
 * reported, for each way of finishing: the guest's neighbours slow single
 * runs by up to 2x, and the fastest is the one they disturbed least. */
#define SCHED_REPS 3

static double sched_max_rss_mib(void) {
  struct rusage ru;
  /* ru_maxrss is in KiB on Linux; 0 if getrusage fails. */
  if (getrusage(RUSAGE_SELF, &ru) != 0)
    return 0;
  return (double)ru.ru_maxrss / 1024.0;
}

/* One run: a fresh queue, the timed enqueue and drain, a check that every
 * batch committed, and the queue freed outside the clock. many: the drain
 * hands each take's verdicts to ordo_queue_finish_many (as the submitter
 * gets them, a status poll at a time); else one ordo_queue_finish each. */
static int sched_run_once(const sched_wl *w, int many, sched_result *res) {
  ordo_queue_options opt;
  ordo_queue_totals tot;
  ordo_queue *q = NULL;
  ordo_queue_item *items = calloc(w->n, sizeof *items);
  ordo_queue_verdict *verdicts = calloc(w->n, sizeof *verdicts);
  uint64_t t0, t1, t2;
  size_t i, got, rounds = 0, done;
  int rc;

  if (items == NULL || verdicts == NULL) {
    free(items);
    free(verdicts);
    bench_error("scheduler: out of memory");
    return ORDO_E_NOMEM;
  }
  ordo_queue_options_init(&opt);
  if ((rc = ordo_queue_new(&opt, &q)) != ORDO_OK) {
    bench_error("scheduler: queue: %s", ordo_errname(rc));
    free(items);
    free(verdicts);
    return rc;
  }
  t0 = bench_now_ns();
  for (i = 0; i < w->n; i++) {
    const sched_batch *b = &w->b[i];
    ordo_queue_batch_spec sp = {0}; /* fields may be added: zero them all */
    sp.id = w->ids[i];
    sp.service = w->svc_names[b->svc];
    sp.reads = &w->refs[b->ref];
    sp.nreads = b->nreads;
    sp.writes = &w->refs[b->ref + b->nreads];
    sp.nwrites = b->nwrites;
    if ((rc = ordo_queue_enqueue(q, &sp, NULL)) != ORDO_OK) {
      bench_error("scheduler: enqueue %s: %s (%s)", sp.id, ordo_errname(rc),
                  ordo_last_error_message());
      goto done;
    }
  }
  t1 = bench_now_ns();
  for (;;) {
    if ((rc = ordo_queue_take(q, items, w->n, &got)) != ORDO_OK) {
      bench_error("scheduler: take: %s", ordo_errname(rc));
      goto done;
    }
    if (got == 0)
      break;
    rounds++;
    if (many) {
      for (i = 0; i < got; i++) {
        verdicts[i].id = items[i].id;
        verdicts[i].outcome = ORDO_QUEUE_COMMITTED;
        verdicts[i].reason = NULL;
      }
      if ((rc = ordo_queue_finish_many(q, verdicts, got, &done)) != ORDO_OK) {
        bench_error("scheduler: finish %s: %s", items[done].id,
                    ordo_errname(rc));
        goto done;
      }
      continue;
    }
    for (i = 0; i < got; i++)
      if ((rc = ordo_queue_finish(q, items[i].id, ORDO_QUEUE_COMMITTED,
                                  NULL)) != ORDO_OK) {
        bench_error("scheduler: finish %s: %s", items[i].id, ordo_errname(rc));
        goto done;
      }
  }
  t2 = bench_now_ns();
  ordo_queue_get_totals(q, &tot);
  if (tot.committed != w->n) {
    bench_error("scheduler: %zu of %zu batches committed (the rest stuck)",
                tot.committed, w->n);
    rc = ORDO_E_STATE;
    goto done;
  }
  res->enqueue_ns = (double)(t1 - t0) / (double)w->n;
  res->drain_ns = (double)(t2 - t1) / (double)w->n;
  res->total_ns = (double)(t2 - t0) / (double)w->n;
  res->rounds = rounds;
  res->max_rss_mib = sched_max_rss_mib(); /* before the free: the peak */
done:
  ordo_queue_free(q);
  free(items);
  free(verdicts);
  return rc;
}

/* One point: SCHED_REPS runs each way, the fastest of each. Which way goes
 * first alternates, so that neither always meets the memory the other has
 * just given back (or not). */
static int sched_point(const sched_wl *w, sched_result *res) {
  sched_result r;
  int rep, k, rc;

  res->total_ns = res->single_ns = -1;
  for (rep = 0; rep < SCHED_REPS; rep++) {
    for (k = 0; k < 2; k++) {
      int many = (rep + k) % 2 == 0;
      if ((rc = sched_run_once(w, many, &r)) != ORDO_OK)
        return rc;
      if (!many) {
        if (res->single_ns < 0 || r.total_ns < res->single_ns)
          res->single_ns = r.total_ns;
      } else if (res->total_ns < 0 || r.total_ns < res->total_ns) {
        double single = res->single_ns;
        *res = r;
        res->single_ns = single;
      }
    }
  }
  res->max_rss_mib = sched_max_rss_mib();
  return ORDO_OK;
}

static const char *const sched_titles[] = {
    "batches",    "services",         "enqueue ns/b", "drain ns/b",
    "total ns/b", "1 finish/call ns/b", "rounds",     "max RSS MiB"};
static const int sched_widths[] = {8, 8, 12, 10, 10, 18, 6, 11};
static const bench_table sched_table = {sched_titles, sched_widths, 8, 0};

static int sched_json_point(json_t *points, size_t n, size_t nsvcs,
                            const sched_result *r) {
  json_t *pt = json_object();
  if (pt == NULL || json_array_append_new(points, pt) != 0)
    return ORDO_E_NOMEM;
  if (bench_json_num(pt, "batches", (double)n, 0) != ORDO_OK ||
      bench_json_num(pt, "services", (double)nsvcs, 0) != ORDO_OK ||
      bench_json_num(pt, "enqueue_ns_per_batch", r->enqueue_ns, 1) != ORDO_OK ||
      bench_json_num(pt, "drain_ns_per_batch", r->drain_ns, 1) != ORDO_OK ||
      bench_json_num(pt, "ns_per_batch", r->total_ns, 1) != ORDO_OK ||
      bench_json_num(pt, "ns_per_batch_single_finish", r->single_ns, 1) !=
          ORDO_OK ||
      bench_json_num(pt, "rounds", (double)r->rounds, 0) != ORDO_OK ||
      bench_json_num(pt, "max_rss_mib", r->max_rss_mib, 1) != ORDO_OK)
    return ORDO_E_NOMEM;
  return ORDO_OK;
}

static int sched_run(const bench_opts *opts, json_t **out) {
  size_t max_n = opts->count > 0 ? opts->count : SCHED_DEFAULT_MAX_N;
  size_t ns[SCHED_NN], nn = 0, i, j;
  json_t *o = NULL, *points = NULL;
  double at_100k = -1, at_100k_single = -1;
  int rc;

  /* --count caps the queue sizes: "--count 5000" runs 1000 and 5000. */
  for (i = 0; i < SCHED_NN; i++) {
    size_t n = sched_default_n[i];
    if (n > max_n)
      n = max_n;
    if (nn == 0 || ns[nn - 1] != n)
      ns[nn++] = n;
  }
  if ((o = json_object()) == NULL || (points = json_array()) == NULL ||
      bench_json_num(o, "seed", QB_SEED, 0) != ORDO_OK ||
      bench_json_num(o, "goal_ns_per_batch", SCHED_GOAL_NS, 0) != ORDO_OK)
    goto nomem;
  if (!opts->json) {
    printf("ordo bench scheduler: in-memory ordo_queue (parallel strategy, "
           "whole addresses, no journal): enqueue all N, then take every "
           "ready batch and finish every taken one (COMMITTED) until empty\n");
    printf("workload: 70-hex-char Sawtooth-like addresses; each batch reads "
           "1 shared account of its service (pool = its batches / %d, at "
           "least %d) and writes its own address; %.0f%% also write a shared "
           "account; services drawn uniformly; seed %u\n",
           SCHED_POOL_DIV, SCHED_POOL_MIN, SCHED_WRITE_SHARED * 100, QB_SEED);
    if (opts->count == 0)
      printf("the 1000000 point needs --count 1000000 (~30 s and ~1.1 GiB "
             "on a 2-vCPU guest)\n");
    putchar('\n');
    bench_table_header(stdout, &sched_table);
  }
  for (i = 0; i < nn; i++) {
    for (j = 0; j < SCHED_NS; j++) {
      size_t nsvcs = sched_default_svcs[j];
      sched_result res = {0};
      sched_wl w;

      if ((rc = sched_wl_make(&w, ns[i], nsvcs)) != ORDO_OK)
        goto nomem;
      rc = sched_point(&w, &res);
      sched_wl_free(&w);
      if (rc != ORDO_OK) {
        json_decref(points);
        json_decref(o);
        return ORDO_CLI_FAIL;
      }
      if (ns[i] == SCHED_100K && nsvcs == SCHED_100K_SERVICES) {
        at_100k = res.total_ns;
        at_100k_single = res.single_ns;
      }
      if (!opts->json) {
        char c[8][24];
        const char *cells[8] = {c[0], c[1], c[2], c[3],
                                c[4], c[5], c[6], c[7]};
        snprintf(c[0], sizeof c[0], "%zu", ns[i]);
        snprintf(c[1], sizeof c[1], "%zu", nsvcs);
        snprintf(c[2], sizeof c[2], "%.0f", res.enqueue_ns);
        snprintf(c[3], sizeof c[3], "%.0f", res.drain_ns);
        snprintf(c[4], sizeof c[4], "%.0f", res.total_ns);
        snprintf(c[5], sizeof c[5], "%.0f", res.single_ns);
        snprintf(c[6], sizeof c[6], "%zu", res.rounds);
        snprintf(c[7], sizeof c[7], "%.0f", res.max_rss_mib);
        bench_table_row(stdout, &sched_table, cells);
      }
      if (sched_json_point(points, ns[i], nsvcs, &res) != ORDO_OK)
        goto nomem;
    }
  }
  if (!opts->json) {
    printf("\nns/b = wall time of the phase / N on one thread, the fastest of "
           "%d runs on a fresh queue; drain = take + finish until empty, each "
           "take's verdicts given to one ordo_queue_finish_many call; 1 "
           "finish/call = the total with one ordo_queue_finish call per batch "
           "instead; rounds = take calls that returned batches\n"
           "max RSS = the process's peak resident memory so far (the queue "
           "at its fullest plus the workload)\n",
           SCHED_REPS);
    if (at_100k >= 0)
      printf("ns per batch at %u batches, %u services: %.0f (goal <= %.0f); "
             "%.0f with one finish call per batch\n",
             SCHED_100K, SCHED_100K_SERVICES, at_100k, SCHED_GOAL_NS,
             at_100k_single);
    else
      printf("ns per batch at %u batches: not measured (--count %u)\n",
             SCHED_100K, opts->count);
  }
  /* null when --count left the 100k point out: not measured, not zero. */
  if (at_100k >= 0
          ? bench_json_num(o, "ns_per_batch_100k", at_100k, 1) != 0 ||
                bench_json_num(o, "ns_per_batch_100k_single_finish",
                               at_100k_single, 1) != 0
          : json_object_set_new(o, "ns_per_batch_100k", json_null()) != 0 ||
                json_object_set_new(o, "ns_per_batch_100k_single_finish",
                                    json_null()) != 0)
    goto nomem;
  if (json_object_set_new(o, "points", points) != 0) {
    points = NULL; /* taken even on failure */
    goto nomem;
  }
  *out = o;
  return ORDO_CLI_OK;

nomem:
  json_decref(points);
  json_decref(o);
  bench_error("out of memory");
  return ORDO_CLI_FAIL;
}

/* ------------------------------------------------------------------------ */
/* makespan                                                                  */
/* ------------------------------------------------------------------------ */

#define MK_DEFAULT_BATCHES 4000
#define MK_MAX_BATCHES 20000 /* the critical path is O(pairs per service) */
#define MK_SERVICES 20
#define MK_POOL 8         /* shared addresses per service (conflict_X) */
#define MK_POOL_PREFIX 20 /* ... which share this many leading chars */
#define MK_SCAN_SHARE 0.1 /* of the batches touching the pool: range reads */
#define MK_HOT_WRITE_SHARE 0.5
#define MK_CHAIN_LEN 100
#define MK_GOAL_RATIO 1.05

typedef enum mk_kind {
  MK_CONFLICT,
  MK_HOT_READ,
  MK_HOT_WRITE,
  MK_CHAINS
} mk_kind;

typedef struct mk_spec {
  const char *name, *label;
  mk_kind kind;
  double p; /* MK_CONFLICT: share of batches that touch the pool */
} mk_spec;

static const mk_spec mk_specs[] = {
    {"conflict_0", "conflict 0%", MK_CONFLICT, 0.0},
    {"conflict_10", "conflict 10%", MK_CONFLICT, 0.1},
    {"conflict_50", "conflict 50%", MK_CONFLICT, 0.5},
    {"conflict_90", "conflict 90%", MK_CONFLICT, 0.9},
    {"hot_read", "hot read", MK_HOT_READ, 0},
    {"hot_write", "hot write", MK_HOT_WRITE, MK_HOT_WRITE_SHARE},
    {"chains", "dep chains", MK_CHAINS, 0},
};
#define MK_NSPECS (sizeof mk_specs / sizeof mk_specs[0])

/* What the critical path and the safety check need, besides the workload:
 * each batch's service number and its one explicit dep (SIZE_MAX: none). */
typedef struct mk_side {
  size_t *svc;
  size_t *dep;
} mk_side;

static char *qb_strdup(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = malloc(n);
  if (d != NULL)
    memcpy(d, s, n);
  return d;
}

/* Append a copy of s to the list. */
static int mk_push(char ***list, size_t *n, const char *s) {
  char **p = realloc(*list, (*n + 1) * sizeof *p);
  if (p == NULL)
    return ORDO_E_NOMEM;
  *list = p;
  if ((p[*n] = qb_strdup(s)) == NULL)
    return ORDO_E_NOMEM;
  (*n)++;
  return ORDO_OK;
}

/* The workload of spec with n batches over MK_SERVICES services, in memory
 * as the parser would have made it (so ordo_workload_free frees it). */
static int mk_make(const mk_spec *spec, size_t n, ordo_workload **out,
                   mk_side *side) {
  qb_rng r = {QB_SEED ^ ((uint64_t)spec->kind << 32) ^
              (uint64_t)(spec->p * 1000)};
  size_t nchains = n / MK_CHAIN_LEN > 0 ? n / MK_CHAIN_LEN : 1;
  size_t *chain_last = NULL, i;
  char a[QB_ADDR_SIZE], tag[QB_ADDR_SIZE], name[32];
  ordo_workload *w;
  int rc = ORDO_E_NOMEM;

  *out = NULL;
  side->svc = side->dep = NULL;
  if ((w = calloc(1, sizeof *w)) == NULL)
    return ORDO_E_NOMEM;
  if ((w->batches = calloc(n, sizeof *w->batches)) == NULL ||
      (side->svc = calloc(n, sizeof *side->svc)) == NULL ||
      (side->dep = calloc(n, sizeof *side->dep)) == NULL ||
      (chain_last = calloc(nchains, sizeof *chain_last)) == NULL)
    goto fail;
  for (i = 0; i < nchains; i++)
    chain_last[i] = SIZE_MAX;
  for (i = 0; i < n; i++) {
    ordo_workload_batch *b = &w->batches[i];
    size_t svc = qb_below(&r, MK_SERVICES);
    /* Own addresses in one of the families, at random: distinct addresses,
     * but the same namespace as many others of the service. */
    const char *fam = qb_families[qb_below(&r, QB_NFAMILIES)];

    w->nbatches = i + 1; /* so that a failure below frees this one too */
    b->line = i + 1;
    side->svc[i] = svc;
    side->dep[i] = SIZE_MAX;
    snprintf(name, sizeof name, "t%zu", i);
    if ((b->id = qb_strdup(name)) == NULL)
      goto fail;
    snprintf(name, sizeof name, "svc%zu", svc);
    if ((b->service = qb_strdup(name)) == NULL)
      goto fail;
    qb_addr(a, fam, QB_SIGNER, svc, i);
    if (spec->kind != MK_HOT_READ && mk_push(&b->reads, &b->nreads, a))
      goto fail;
    qb_addr(a, fam, QB_OWN, svc, i);
    if (mk_push(&b->writes, &b->nwrites, a))
      goto fail;
    switch (spec->kind) {
    case MK_CONFLICT:
      if (!qb_chance(&r, spec->p))
        break;
      /* The pool: MK_POOL addresses of the service under one prefix. */
      qb_addr(tag, qb_families[0], QB_POOL_TAG, svc, 0);
      if (qb_chance(&r, MK_SCAN_SHARE)) {
        tag[MK_POOL_PREFIX] = '\0'; /* a range read of the whole pool */
        if (mk_push(&b->reads, &b->nreads, tag))
          goto fail;
      } else {
        qb_addr(a, qb_families[0], QB_POOL, svc, qb_below(&r, MK_POOL));
        memcpy(a, tag, MK_POOL_PREFIX);
        /* Read-modify-write, as a transfer does. */
        if (mk_push(&b->reads, &b->nreads, a) ||
            mk_push(&b->writes, &b->nwrites, a))
          goto fail;
      }
      break;
    case MK_HOT_READ:
      /* Every transaction reads the one identity (Grid's Pike agent). */
      qb_addr(a, qb_families[1], QB_IDENTITY, 0, 0);
      if (mk_push(&b->reads, &b->nreads, a))
        goto fail;
      break;
    case MK_HOT_WRITE:
      if (qb_chance(&r, spec->p)) {
        qb_addr(a, qb_families[0], QB_COUNTER, 0, 0);
        if (mk_push(&b->reads, &b->nreads, a) ||
            mk_push(&b->writes, &b->nwrites, a))
          goto fail;
      }
      break;
    case MK_CHAINS: {
      /* Chains interleave, and a chain's links lie in any service. */
      size_t c = i % nchains;
      if (chain_last[c] != SIZE_MAX) {
        if (mk_push(&b->deps, &b->ndeps, w->batches[chain_last[c]].id))
          goto fail;
        side->dep[i] = chain_last[c];
      }
      chain_last[c] = i;
      break;
    }
    }
  }
  free(chain_last);
  *out = w;
  return ORDO_OK;
fail:
  free(chain_last);
  ordo_workload_free(w);
  free(side->svc);
  free(side->dep);
  side->svc = side->dep = NULL;
  return rc;
}

/* One is a prefix of the other: the two addresses overlap. */
static int mk_overlap(const char *x, const char *y) {
  while (*x != '\0' && *x == *y) {
    x++;
    y++;
  }
  return *x == '\0' || *y == '\0';
}

/* Whether x and y conflict: an address of one overlaps an address of the
 * other and at least one of the two is written. An address a batch both
 * reads and writes is in its writes, so reads-vs-reads can be skipped. */
static int mk_conflict(const ordo_workload_batch *x,
                       const ordo_workload_batch *y) {
  size_t i, j;

  for (i = 0; i < x->nwrites; i++) {
    for (j = 0; j < y->nreads; j++)
      if (mk_overlap(x->writes[i], y->reads[j]))
        return 1;
    for (j = 0; j < y->nwrites; j++)
      if (mk_overlap(x->writes[i], y->writes[j]))
        return 1;
  }
  for (i = 0; i < x->nreads; i++)
    for (j = 0; j < y->nwrites; j++)
      if (mk_overlap(x->reads[i], y->writes[j]))
        return 1;
  return 0;
}

/* Every earlier-later pair of a service that conflicts, as the pairs of
 * indices (i < j), service by service; the critical path and the safety
 * check walk the same list. */
typedef struct mk_edges {
  size_t (*e)[2];
  size_t n, cap;
} mk_edges;

static int mk_edges_of(const ordo_workload *w, const mk_side *side,
                       mk_edges *out) {
  size_t *by_svc = NULL, *start = NULL, s, i, j;
  int rc = ORDO_E_NOMEM;

  memset(out, 0, sizeof *out);
  /* The batches of each service in submission order (a counting sort). */
  if ((by_svc = calloc(w->nbatches + 1, sizeof *by_svc)) == NULL ||
      (start = calloc(MK_SERVICES + 1, sizeof *start)) == NULL)
    goto done;
  for (i = 0; i < w->nbatches; i++)
    start[side->svc[i] + 1]++;
  for (s = 0; s < MK_SERVICES; s++)
    start[s + 1] += start[s];
  {
    size_t fill[MK_SERVICES];
    memcpy(fill, start, sizeof fill);
    for (i = 0; i < w->nbatches; i++)
      by_svc[fill[side->svc[i]]++] = i;
  }
  for (s = 0; s < MK_SERVICES; s++)
    for (j = start[s]; j < start[s + 1]; j++)
      for (i = start[s]; i < j; i++) {
        size_t x = by_svc[i], y = by_svc[j];
        if (!mk_conflict(&w->batches[x], &w->batches[y]))
          continue;
        if (out->n == out->cap) {
          size_t ncap = out->cap ? out->cap * 2 : 1024;
          void *p = realloc(out->e, ncap * sizeof *out->e);
          if (p == NULL)
            goto done;
          out->e = p;
          out->cap = ncap;
        }
        out->e[out->n][0] = x;
        out->e[out->n][1] = y;
        out->n++;
      }
  rc = ORDO_OK;
done:
  free(by_svc);
  free(start);
  if (rc != ORDO_OK) {
    free(out->e);
    memset(out, 0, sizeof *out);
  }
  return rc;
}

/* The longest chain, one round per batch. Every edge and every dep runs
 * from an earlier batch to a later one, so a pass in submission order finds
 * each batch's predecessors already final. */
static int mk_critical(const ordo_workload *w, const mk_side *side,
                       const mk_edges *ed, size_t *out) {
  size_t *depth = calloc(w->nbatches + 1, sizeof *depth);
  size_t *first = calloc(w->nbatches + 1, sizeof *first);
  size_t *into = NULL, i, k, best = 0;

  if (depth == NULL || first == NULL ||
      (into = calloc(ed->n + 1, sizeof *into)) == NULL) {
    free(depth);
    free(first);
    return ORDO_E_NOMEM;
  }
  /* The earlier ends of the edges into each batch (a counting sort). */
  for (k = 0; k < ed->n; k++)
    first[ed->e[k][1] + 1]++;
  for (i = 0; i < w->nbatches; i++)
    first[i + 1] += first[i];
  {
    size_t *fill = calloc(w->nbatches + 1, sizeof *fill);
    if (fill == NULL) {
      free(depth);
      free(first);
      free(into);
      return ORDO_E_NOMEM;
    }
    memcpy(fill, first, (w->nbatches + 1) * sizeof *fill);
    for (k = 0; k < ed->n; k++)
      into[fill[ed->e[k][1]]++] = ed->e[k][0];
    free(fill);
  }
  for (i = 0; i < w->nbatches; i++) {
    size_t d = 1;
    for (k = first[i]; k < first[i + 1]; k++)
      if (depth[into[k]] + 1 > d)
        d = depth[into[k]] + 1;
    if (side->dep[i] != SIZE_MAX && depth[side->dep[i]] + 1 > d)
      d = depth[side->dep[i]] + 1;
    depth[i] = d;
    if (d > best)
      best = d;
  }
  free(depth);
  free(first);
  free(into);
  *out = best;
  return ORDO_OK;
}

typedef struct mk_result {
  size_t rounds;
  size_t violations; /* conflicting pairs not run one after the other */
} mk_result;

/* Run the model ledger with opt and check the plan against the pairs. */
static int mk_plan(const ordo_workload *w, const mk_side *side,
                   const mk_edges *ed, const ordo_queue_options *opt,
                   mk_result *res) {
  ordo_plan *p = NULL;
  size_t *round_of = NULL, i, k;
  int rc;

  if ((rc = ordo_plan_run(w, opt, 0, &p)) != ORDO_OK) {
    bench_error("makespan: plan: %s (%s)", ordo_errname(rc),
                ordo_last_error_message());
    return rc;
  }
  if (p->nstuck > 0 || p->ninvalid > 0) {
    bench_error("makespan: %zu batches stuck, %zu invalid (want none)",
                p->nstuck, p->ninvalid);
    ordo_plan_free(p);
    return ORDO_E_STATE;
  }
  if ((round_of = calloc(w->nbatches + 1, sizeof *round_of)) == NULL) {
    ordo_plan_free(p);
    return ORDO_E_NOMEM;
  }
  for (i = 0; i < p->nrounds; i++)
    for (k = p->round_start[i]; k < p->round_start[i + 1]; k++)
      round_of[p->order[k]] = i + 1;
  res->rounds = p->nrounds;
  res->violations = 0;
  for (k = 0; k < ed->n; k++)
    if (round_of[ed->e[k][0]] >= round_of[ed->e[k][1]])
      res->violations++;
  /* A dep broken would be a scheduler bug in every strategy. */
  for (i = 0; i < w->nbatches; i++)
    if (side->dep[i] != SIZE_MAX && round_of[side->dep[i]] >= round_of[i]) {
      bench_error("makespan: %s ran before its dep", w->batches[i].id);
      rc = ORDO_E_STATE;
    }
  free(round_of);
  ordo_plan_free(p);
  return rc;
}

enum { MK_SERIAL, MK_BY_NS, MK_PARALLEL, MK_UNCONSTRAINED, MK_NSTRATS };

static const char *const mk_strat_keys[MK_NSTRATS] = {
    "serial", "by_namespace", "parallel", "unconstrained"};

static void mk_strat_opts(int s, ordo_queue_options *o) {
  ordo_queue_options_init(o);
  switch (s) {
  case MK_SERIAL:
    o->strategy = ORDO_QUEUE_SERIAL;
    break;
  case MK_BY_NS:
    o->granularity = QB_NS_LEN;
    break;
  case MK_UNCONSTRAINED:
    o->strategy = ORDO_QUEUE_UNCONSTRAINED;
    break;
  default:
    break; /* parallel, whole addresses: the defaults */
  }
}

static const char *const mk_titles[] = {"workload", "batches",  "serial",
                                        "by-ns",    "parallel", "unconstr.",
                                        "critical", "par/crit"};
static const int mk_widths[] = {12, 7, 6, 6, 8, 9, 8, 8};
static const bench_table mk_table = {mk_titles, mk_widths, 8, 1};

/* One workload: built, its pairs and critical path, four plans. */
static int mk_workload(const mk_spec *spec, size_t n, json_t *arr,
                       int json_only, double *ratio, size_t *unsafe_pairs) {
  ordo_workload *w = NULL;
  mk_side side = {0};
  mk_edges ed = {0};
  mk_result res[MK_NSTRATS];
  size_t crit = 0;
  json_t *wo;
  int s, rc;

  if ((rc = mk_make(spec, n, &w, &side)) != ORDO_OK ||
      (rc = mk_edges_of(w, &side, &ed)) != ORDO_OK ||
      (rc = mk_critical(w, &side, &ed, &crit)) != ORDO_OK)
    goto done;
  for (s = 0; s < MK_NSTRATS; s++) {
    ordo_queue_options o;
    mk_strat_opts(s, &o);
    if ((rc = mk_plan(w, &side, &ed, &o, &res[s])) != ORDO_OK)
      goto done;
    /* The safe strategies must keep every conflicting pair in order. */
    if (s != MK_UNCONSTRAINED && res[s].violations > 0) {
      bench_error("makespan: %s: %s ran %zu conflicting pairs together",
                  spec->name, mk_strat_keys[s], res[s].violations);
      rc = ORDO_E_STATE;
      goto done;
    }
  }
  *ratio = (double)res[MK_PARALLEL].rounds / (double)crit;
  *unsafe_pairs = res[MK_UNCONSTRAINED].violations;
  if (!json_only) {
    char c[8][24];
    const char *cells[8] = {spec->label, c[1], c[2], c[3],
                            c[4],        c[5], c[6], c[7]};
    snprintf(c[1], sizeof c[1], "%zu", n);
    for (s = 0; s < MK_NSTRATS; s++)
      snprintf(c[2 + s], sizeof c[2 + s], "%zu", res[s].rounds);
    snprintf(c[6], sizeof c[6], "%zu", crit);
    snprintf(c[7], sizeof c[7], "%.3f", *ratio);
    bench_table_row(stdout, &mk_table, cells);
  }
  rc = ORDO_E_NOMEM;
  if ((wo = json_object()) == NULL || json_array_append_new(arr, wo) != 0 ||
      json_object_set_new(wo, "name", json_string(spec->name)) != 0 ||
      bench_json_num(wo, "batches", (double)n, 0) != ORDO_OK ||
      bench_json_num(wo, "conflicting_pairs", (double)ed.n, 0) != ORDO_OK ||
      bench_json_num(wo, "critical_path", (double)crit, 0) != ORDO_OK ||
      bench_json_num(wo, "parallel_vs_critical", *ratio, 4) != ORDO_OK ||
      bench_json_num(wo, "unconstrained_violations",
                     (double)res[MK_UNCONSTRAINED].violations, 0) != ORDO_OK)
    goto done;
  for (s = 0; s < MK_NSTRATS; s++)
    if (bench_json_num(wo, mk_strat_keys[s], (double)res[s].rounds, 0) !=
        ORDO_OK)
      goto done;
  rc = ORDO_OK;
done:
  if (rc == ORDO_E_NOMEM)
    bench_error("makespan: out of memory");
  free(ed.e);
  free(side.svc);
  free(side.dep);
  ordo_workload_free(w);
  return rc;
}

static int mk_run(const bench_opts *opts, json_t **out) {
  size_t n = opts->count > 0 ? opts->count : MK_DEFAULT_BATCHES, i;
  size_t unsafe = 0;
  double worst = 0;
  json_t *o = NULL, *arr = NULL;

  if (n > MK_MAX_BATCHES) {
    bench_error("makespan: --count %zu: at most %d batches per workload", n,
                MK_MAX_BATCHES);
    return ORDO_CLI_USAGE;
  }
  if ((o = json_object()) == NULL || (arr = json_array()) == NULL ||
      json_object_set_new(o, "workloads", arr) != 0) {
    json_decref(o);
    bench_error("out of memory");
    return ORDO_CLI_FAIL;
  }
  if (!opts->json) {
    printf("ordo bench makespan: rounds on the model ledger (every batch "
           "taken in a round finishes at its end), %zu batches over %d "
           "services per workload, seed %u\n",
           n, MK_SERVICES, QB_SEED);
    printf("addresses: 70 hex chars, the first 6 the family namespace; each "
           "batch reads its own signer address and writes its own address "
           "(one of %zu families, at random), plus:\n",
           QB_NFAMILIES);
    printf("  conflict X%%: X%% of the batches read-modify-write one of %d "
           "shared addresses of their service (1 in %.0f instead reads all %d "
           "by their %d-char prefix)\n",
           MK_POOL, 1 / MK_SCAN_SHARE, MK_POOL, MK_POOL_PREFIX);
    printf("  hot read:   every batch reads one identity address (Pike), no "
           "signer read\n");
    printf("  hot write:  %.0f%% read-modify-write one counter address\n",
           MK_HOT_WRITE_SHARE * 100);
    printf("  dep chains: %zu chains of ~%zu batches, each with a dep on the "
           "previous one of its chain (chains span services)\n\n",
           n / MK_CHAIN_LEN > 0 ? n / MK_CHAIN_LEN : 1,
           n / (n / MK_CHAIN_LEN > 0 ? n / MK_CHAIN_LEN : 1));
    bench_table_header(stdout, &mk_table);
  }
  for (i = 0; i < MK_NSPECS; i++) {
    double ratio;
    size_t bad;
    if (mk_workload(&mk_specs[i], n, arr, opts->json, &ratio, &bad) !=
        ORDO_OK) {
      json_decref(o);
      return ORDO_CLI_FAIL;
    }
    if (ratio > worst)
      worst = ratio;
    unsafe += bad;
  }
  if (!opts->json) {
    printf("\nrounds per strategy: serial = one batch in flight per service; "
           "by-ns = lock table at granularity %d (the namespace: false "
           "conflicts); parallel = lock table on whole addresses; unconstr. "
           "= no locks, deps only\n",
           QB_NS_LEN);
    printf("critical = the longest chain of conflicting (same service) or "
           "dependent batches, computed apart from the scheduler: the lower "
           "bound of any safe schedule\n");
    printf("unconstr. is below critical because it is UNSAFE: it ran %zu "
           "conflicting pairs in one round or out of order (the others: 0)\n",
           unsafe);
    printf("max parallel/critical: %.3f (goal <= %.2f)\n", worst,
           MK_GOAL_RATIO);
  }
  if (bench_json_num(o, "services", MK_SERVICES, 0) != ORDO_OK ||
      bench_json_num(o, "batches", (double)n, 0) != ORDO_OK ||
      bench_json_num(o, "seed", QB_SEED, 0) != ORDO_OK ||
      bench_json_num(o, "max_parallel_vs_critical", worst, 4) != ORDO_OK ||
      bench_json_num(o, "goal_parallel_vs_critical", MK_GOAL_RATIO, 2) !=
          ORDO_OK ||
      bench_json_num(o, "unconstrained_violations", (double)unsafe, 0) !=
          ORDO_OK) {
    json_decref(o);
    bench_error("out of memory");
    return ORDO_CLI_FAIL;
  }
  *out = o;
  return ORDO_CLI_OK;
}

const bench_def bench_scheduler_def = {
    "scheduler",
    "ordo_queue ns per batch at 1k/100k (1M: --count) queued, 1/100/10k "
    "services",
    "  --count N      scheduler: the largest queue size (default 100000; the\n"
    "                 points are 1000, 100000, 1000000, each capped at N)\n",
    BENCH_FLAG_COUNT,
    sched_run,
};

const bench_def bench_makespan_def = {
    "makespan",
    "rounds per strategy vs the critical path, 7 synthetic workloads",
    "  --count N      makespan: batches per workload (default 4000, at most "
    "20000)\n",
    BENCH_FLAG_COUNT,
    mk_run,
};

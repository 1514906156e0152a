/*
 * bench_soak.c — `ordo bench soak`: a long run through the queue journal,
 * and what it costs over time: resident memory, the journal's size on disk,
 * batches per second, and the time a restart takes.
 *
 * N batches (--batches, default 1,000,000) of 1,000 services go through one
 * journal, in-process. The bench is the model ledger: each round it
 * enqueues a request of 100 batches (ordo_journal_enqueue_many), finishes
 * the batches it took the round before (COMMITTED; one in 1,000 INVALID, so
 * both verdicts are journaled) and takes what is ready beyond a backlog of
 * 300 QUEUED or WAITING batches, so that a few hundred are unfinished at
 * all times, as on a busy client. A batch writes (and reads) 1 or 2 of its
 * service's 256 Sawtooth-like addresses (70 hex characters) and carries a
 * payload of 100 to 200 bytes; everything about batch k is a function of k,
 * so the unfinished ones can be enqueued again elsewhere.
 *
 * At 20 points (and after the first 10,000 batches) it records the batches
 * enqueued and finished, VmRSS (/proc/self/status), the journal's size (the
 * database and its -wal and -shm files) and the rate over the interval. At
 * 5 of them (the 10,000 point and 25, 50, 75 and 100 %) it restarts: every
 * batch in flight is finished first, so that none is SUBMITTED (after a
 * reopen such a batch is UNKNOWN until the ledger is asked), then
 * ordo_journal_close, ordo_journal_open and ordo_journal_take until a batch
 * comes out. restart_s is the time of those three; the rates leave it out.
 * At the end the unfinished batches of the last point are enqueued into a
 * fresh journal, which is restarted the same way (restart_s_fresh): what a
 * restart would cost if the journal held only what is still to do.
 *
 * --plot FILE.png writes the series as a whitespace table (FILE.dat) and
 * draws it with gnuplot, run as a child with its script on stdin.
 */
#include "bench.h"
#include "queue/queue.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define SOAK_DEFAULT_BATCHES 1000000ull
#define SOAK_SERVICES 1000u
#define SOAK_KEYS 256u      /* addresses per service */
#define SOAK_REQUEST 100u   /* batches per enqueue request */
#define SOAK_BACKLOG 300u   /* QUEUED or WAITING batches kept */
#define SOAK_MAX_TAKE 1000u /* batches per take at most */
#define SOAK_INVALID_EVERY 1000u
#define SOAK_FIRST 10000ull             /* the first point */
#define SOAK_POINTS 20u                 /* then one every N/20 */
#define SOAK_MAX_ROWS (SOAK_POINTS + 1) /* with the first 10,000 */

/* ------------------------------------------------------------------------ */
/* The batches                                                               */
/* ------------------------------------------------------------------------ */

/* splitmix64's finaliser: batch k's every choice is mix(k + something). */
static uint64_t mix(uint64_t z) {
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

typedef struct soak_batch {
  char id[32], service[16], addr[2][71];
  const char *addrs[2];
  unsigned char payload[200];
} soak_batch;

/* Batch k, in b (which spec points into: b must outlive the call that
 * passes spec, and the journal copies it there). */
static void soak_batch_make(unsigned long long k, soak_batch *b,
                            ordo_queue_batch_spec *spec) {
  uint64_t h = mix(k);
  unsigned svc = (unsigned)(h % SOAK_SERVICES);
  size_t naddr = 1 + (size_t)((h >> 32) & 1),
         len = 100 + (size_t)(h >> 40) % 101;

  snprintf(b->id, sizeof b->id, "soak-%llu", k);
  snprintf(b->service, sizeof b->service, "svc-%04u", svc);
  for (size_t a = 0; a < naddr; a++) {
    /* The intkey namespace, then 64 hex characters fixed by (service,
     * key): the same key of a service is the same address, so batches that
     * pick it conflict, as updates of one record do. */
    uint64_t w = mix(((uint64_t)svc << 16) | (mix(h + a + 1) % SOAK_KEYS));
    snprintf(b->addr[a], sizeof b->addr[a],
             "1cf126%016llx%016llx%016llx%016llx", (unsigned long long)w,
             (unsigned long long)mix(w + 1), (unsigned long long)mix(w + 2),
             (unsigned long long)mix(w + 3));
    b->addrs[a] = b->addr[a];
  }
  for (size_t i = 0; i < len; i += 8) {
    uint64_t r = mix(h + 100 + i);
    memcpy(b->payload + i, &r, len - i < 8 ? len - i : 8);
  }
  memset(spec, 0, sizeof *spec);
  spec->id = b->id;
  spec->service = b->service;
  spec->reads = b->addrs;
  spec->nreads = naddr;
  spec->writes = b->addrs;
  spec->nwrites = naddr;
  spec->payload = b->payload;
  spec->payload_len = len;
}

/* ------------------------------------------------------------------------ */
/* Measurements                                                              */
/* ------------------------------------------------------------------------ */

/* The journal's bytes on disk in MiB: the database, -wal and -shm. */
static double soak_journal_mib(const char *path) {
  static const char *const suffix[] = {"", "-wal", "-shm"};
  char p[600];
  double bytes = 0;
  struct stat st;

  for (size_t i = 0; i < 3; i++) {
    snprintf(p, sizeof p, "%s%s", path, suffix[i]);
    if (stat(p, &st) == 0)
      bytes += (double)st.st_size;
  }
  return bytes / (1024.0 * 1024.0);
}

typedef struct soak_row {
  unsigned long long enqueued, done;
  size_t unfinished;
  double elapsed_s, rss_mib, journal_mib, per_s;
  int restarted;
  double close_s, open_s, take_s, restart_s, rss_after_mib;
  double ids_s; /* from the end of the open until the forgotten ids are read */
} soak_row;

/* ------------------------------------------------------------------------ */
/* The run                                                                   */
/* ------------------------------------------------------------------------ */

typedef struct soak {
  ordo_ctx *ctx;
  ordo_journal *j;
  char path[512];
  unsigned long long n, enqueued, taken, done, invalid;
  unsigned char *finished;       /* a bit per batch number */
  unsigned long long low;        /* every batch below it is finished */
  unsigned long long *in_flight; /* taken, finished next round */
  size_t nin_flight;
  ordo_queue_item *items;
  soak_batch *req;
  ordo_queue_batch_spec *specs;
  long long retention; /* the journal's retention_count (0: its default) */
} soak;

static int soak_fail(const char *what, int rc) {
  bench_error("soak: %s: %s (%s)", what, ordo_errname(rc),
              ordo_last_error_message());
  return rc;
}

static int soak_open(soak *s, const char *path, int create) {
  ordo_journal_options opt;
  int rc;

  ordo_journal_options_init(&opt);
  opt.create = create;
  opt.retention_count = s->retention;
  if ((rc = ordo_journal_open(s->ctx, path, &opt, &s->j)) != ORDO_OK) {
    s->j = NULL;
    return soak_fail("journal open", rc);
  }
  return ORDO_OK;
}

/* Wait for op (NULL: nothing) and release it; its status. */
static int soak_wait(ordo_op *op, const char *what) {
  int rc;

  if (op == NULL)
    return ORDO_OK;
  rc = ordo_op_wait(op, -1);
  if (rc != ORDO_OK)
    bench_error("soak: %s: %s (%s)", what, ordo_errname(rc),
                ordo_op_message(op) != NULL ? ordo_op_message(op) : "");
  ordo_op_release(op);
  return rc;
}

/* Enqueue batches first..first+n-1 as one request; the op, or NULL with
 * *rc set. */
static ordo_op *soak_enqueue(soak *s, unsigned long long first, size_t n,
                             const unsigned long long *ks, int *rc) {
  ordo_op *op;

  for (size_t i = 0; i < n; i++)
    soak_batch_make(ks != NULL ? ks[i] : first + i, &s->req[i], &s->specs[i]);
  op = ordo_journal_enqueue_many(s->j, s->specs, n, NULL);
  *rc = op == NULL ? soak_fail("enqueue", ordo_last_error()) : ORDO_OK;
  return op;
}

/* Finish every batch taken before: COMMITTED, one in SOAK_INVALID_EVERY
 * INVALID. */
static int soak_finish_in_flight(soak *s) {
  char id[32];
  int rc;

  for (size_t i = 0; i < s->nin_flight; i++) {
    unsigned long long k = s->in_flight[i];
    int bad = k % SOAK_INVALID_EVERY == SOAK_INVALID_EVERY - 1;
    snprintf(id, sizeof id, "soak-%llu", k);
    rc = ordo_journal_finish(
        s->j, id, bad ? ORDO_QUEUE_INVALID : ORDO_QUEUE_COMMITTED,
        bad ? "soak: the model ledger says invalid" : NULL);
    if (rc != ORDO_OK)
      return soak_fail("finish", rc);
    s->finished[k / 8] |= (unsigned char)(1u << (k % 8));
    s->invalid += (unsigned long long)bad;
  }
  s->done += s->nin_flight;
  s->nin_flight = 0;
  while (s->low < s->enqueued &&
         (s->finished[s->low / 8] & (1u << (s->low % 8))) != 0)
    s->low++;
  return ORDO_OK;
}

/* Take up to max batches into in_flight; *durable the take's op. */
static int soak_take(soak *s, size_t max, ordo_op **durable) {
  size_t n = 0;
  int rc = ordo_journal_take(s->j, s->items, max, &n, durable);

  if (rc != ORDO_OK)
    return soak_fail("take", rc);
  for (size_t i = 0; i < n; i++)
    s->in_flight[s->nin_flight++] = strtoull(s->items[i].id + 5, NULL, 10);
  s->taken += n;
  return ORDO_OK;
}

/* One round: finish last round's batches, take what is ready beyond the
 * backlog, enqueue the next request; wait until both are durable. */
static int soak_round(soak *s) {
  unsigned long long waiting = s->enqueued - s->taken;
  ordo_op *enq = NULL, *durable = NULL;
  int rc, rc2;

  if ((rc = soak_finish_in_flight(s)) != ORDO_OK)
    return rc;
  if (waiting > SOAK_BACKLOG) {
    unsigned long long want = waiting - SOAK_BACKLOG;
    rc = soak_take(s, want < SOAK_MAX_TAKE ? (size_t)want : SOAK_MAX_TAKE,
                   &durable);
  }
  if (rc == ORDO_OK && s->enqueued < s->n) {
    unsigned long long left = s->n - s->enqueued;
    size_t n = left < SOAK_REQUEST ? (size_t)left : SOAK_REQUEST;
    if ((enq = soak_enqueue(s, s->enqueued, n, NULL, &rc)) != NULL)
      s->enqueued += n;
  }
  rc2 = soak_wait(durable, "take");
  rc = rc != ORDO_OK ? rc : rc2;
  rc2 = soak_wait(enq, "enqueue");
  return rc != ORDO_OK ? rc : rc2;
}

/* close, open, take until a batch comes out: the three times in r. The
 * batches taken stay in flight. Nothing may be in flight on entry. */
static int soak_restart(soak *s, const char *path, soak_row *r) {
  ordo_op *durable = NULL;
  uint64_t t0, t1, t2;
  size_t before = s->nin_flight;
  int rc;

  t0 = bench_now_ns();
  rc = ordo_journal_close(s->j);
  s->j = NULL;
  if (rc != ORDO_OK)
    return soak_fail("journal close", rc);
  t1 = bench_now_ns();
  if ((rc = soak_open(s, path, 0)) != ORDO_OK)
    return rc;
  t2 = bench_now_ns();
  /* The unfinished batches are QUEUED or WAITING, and the first of each
   * service is ready: the first take finds some, unless the replay lost
   * them. */
  for (int tries = 0; s->nin_flight == before; tries++) {
    if (tries == 1000) {
      bench_error("soak: nothing to take after the reopen");
      return ORDO_E_QUEUE;
    }
    if ((rc = soak_take(s, SOAK_REQUEST, &durable)) != ORDO_OK)
      return rc;
  }
  r->restart_s = (double)(bench_now_ns() - t0) / 1e9;
  r->close_s = (double)(t1 - t0) / 1e9;
  r->open_s = (double)(t2 - t1) / 1e9;
  r->take_s = r->restart_s - r->close_s - r->open_s;
  r->restarted = 1;
  rc = soak_wait(durable, "take after the reopen");
  /* The ids of finished batches are read behind the open; the totals
   * wait for them (as an enqueue would). */
  {
    char *t = ordo_journal_totals_json(s->j);
    r->ids_s = (double)(bench_now_ns() - t2) / 1e9;
    free(t);
  }
  r->rss_after_mib = bench_rss_mib(0);
  return rc;
}

/* The unfinished batch numbers, in submission order (malloc'd). */
static unsigned long long *soak_unfinished(const soak *s, size_t *n) {
  unsigned long long *ks =
      malloc((size_t)(s->enqueued - s->low + 1) * sizeof *ks);

  *n = 0;
  for (unsigned long long k = s->low; ks != NULL && k < s->enqueued; k++)
    if ((s->finished[k / 8] & (1u << (k % 8))) == 0)
      ks[(*n)++] = k;
  return ks;
}

/* A fresh journal at path holding ks[0..n) (in requests of SOAK_REQUEST),
 * restarted as the long one was. */
static int soak_fresh(soak *s, const char *path, const unsigned long long *ks,
                      size_t n, soak_row *r) {
  int rc;

  if ((rc = soak_open(s, path, 1)) != ORDO_OK)
    return rc;
  for (size_t i = 0; i < n && rc == ORDO_OK; i += SOAK_REQUEST) {
    size_t m = n - i < SOAK_REQUEST ? n - i : SOAK_REQUEST;
    ordo_op *op = soak_enqueue(s, 0, m, ks + i, &rc);
    if (op != NULL)
      rc = soak_wait(op, "enqueue into the fresh journal");
  }
  r->journal_mib = soak_journal_mib(path);
  if (rc == ORDO_OK)
    rc = soak_restart(s, path, r);
  return rc;
}

/* ---- throughput around checkpoints ------------------------------------- */

/* Throughput around checkpoints is compared over windows of
 * SOAK_CK_WINDOW_MS of work (rounds in order, restarts left out), what a
 * monitor sampling batches/s would show: the windows in which a
 * checkpoint became durable against the others. A checkpoint stops the
 * queue for a few ms (its snapshot under the journal's lock, its write
 * ahead of the next records), so over a window as short as the
 * checkpoint itself the ratio is near 0 whatever it costs; the stall of
 * each is reported too. */
#define SOAK_CK_WINDOW_MS 100

typedef struct soak_rounds {
  uint64_t *ns;           /* each round's time */
  unsigned *batches;      /* the batches it finished */
  unsigned long long *ck; /* the journal's checkpoints after it */
  unsigned char *reopened; /* the first round after a reopen */
  size_t n, cap;
  int reopen;             /* the next round is the first after one */
} soak_rounds;

/* The journal's "checkpoints" counter (since it was opened). */
static unsigned long long soak_checkpoints(ordo_journal *j) {
  char *t = ordo_journal_totals_json(j);
  const char *p = t != NULL ? strstr(t, "\"checkpoints\":") : NULL;
  unsigned long long v = p != NULL ? strtoull(p + 14, NULL, 10) : 0;
  free(t);
  return v;
}

static int soak_round_note(soak_rounds *r, uint64_t ns, unsigned long long n,
                           unsigned long long ck) {
  if (r->n == r->cap) {
    size_t nc = r->cap ? r->cap * 2 : 4096;
    uint64_t *a = realloc(r->ns, nc * sizeof *a);
    unsigned *b = a != NULL ? realloc(r->batches, nc * sizeof *b) : NULL;
    unsigned long long *c = b != NULL ? realloc(r->ck, nc * sizeof *c) : NULL;
    unsigned char *d = c != NULL ? realloc(r->reopened, nc) : NULL;
    if (a != NULL)
      r->ns = a;
    if (b != NULL)
      r->batches = b;
    if (c != NULL)
      r->ck = c;
    if (d == NULL) {
      bench_error("soak: out of memory");
      return ORDO_E_NOMEM;
    }
    r->reopened = d;
    r->cap = nc;
  }
  r->ns[r->n] = ns;
  r->batches[r->n] = (unsigned)n;
  r->ck[r->n] = ck;
  r->reopened[r->n] = (unsigned char)r->reopen;
  r->reopen = 0;
  r->n++;
  return ORDO_OK;
}

/* Batches/s over the windows with a checkpoint and over the others (a
 * window with the first round after a reopen, which waits for the
 * forgotten ids, in neither); the number of checkpoints and, in *stall_ms,
 * the longest round that saw one become durable. */
static size_t soak_checkpoint_rates(const soak_rounds *r, double *ck_per_s,
                                    double *between_per_s, double *stall_ms) {
  double t[2] = {0, 0}, b[2] = {0, 0}, wt = 0, wb = 0;
  int wck = 0, wskip = 0;
  size_t nck = 0;

  *ck_per_s = *between_per_s = *stall_ms = 0;
  for (size_t i = 0; i < r->n; i++) {
    if (r->reopened[i]) {
      wskip = 1;
    } else if (i > 0 && r->ck[i] != r->ck[i - 1]) {
      nck += (size_t)(r->ck[i] - r->ck[i - 1]);
      wck = 1;
      if ((double)r->ns[i] / 1e6 > *stall_ms)
        *stall_ms = (double)r->ns[i] / 1e6;
    }
    wt += (double)r->ns[i] / 1e9;
    wb += r->batches[i];
    if (wt * 1000 >= SOAK_CK_WINDOW_MS || i + 1 == r->n) {
      if (!wskip) {
        t[wck] += wt;
        b[wck] += wb;
      }
      wt = wb = 0;
      wck = wskip = 0;
    }
  }
  *ck_per_s = t[1] > 0 ? b[1] / t[1] : 0;
  *between_per_s = t[0] > 0 ? b[0] / t[0] : 0;
  return nck;
}

/* ------------------------------------------------------------------------ */
/* Output                                                                    */
/* ------------------------------------------------------------------------ */

static const char *const soak_titles[] = {
    "enqueued",  "finished",  "elapsed s", "RSS MiB", "journal MiB",
    "batches/s", "restart s", "close s",   "open s",  "take s", "ids s"};
static const int soak_widths[] = {9, 9, 9, 8, 11, 9, 9, 7, 7, 7, 7};
static const bench_table soak_table = {soak_titles, soak_widths, 11, 0};

static void soak_print_row(const soak_row *r) {
  char c[11][32];
  const char *cells[11];

  snprintf(c[0], sizeof c[0], "%llu", r->enqueued);
  snprintf(c[1], sizeof c[1], "%llu", r->done);
  snprintf(c[2], sizeof c[2], "%.1f", r->elapsed_s);
  snprintf(c[3], sizeof c[3], "%.1f", r->rss_mib);
  snprintf(c[4], sizeof c[4], "%.1f", r->journal_mib);
  snprintf(c[5], sizeof c[5], "%.0f", r->per_s);
  if (r->restarted) {
    snprintf(c[6], sizeof c[6], "%.3f", r->restart_s);
    snprintf(c[7], sizeof c[7], "%.3f", r->close_s);
    snprintf(c[8], sizeof c[8], "%.3f", r->open_s);
    snprintf(c[9], sizeof c[9], "%.3f", r->take_s);
    snprintf(c[10], sizeof c[10], "%.3f", r->ids_s);
  } else {
    for (int i = 6; i < 11; i++)
      snprintf(c[i], sizeof c[i], "-");
  }
  for (int i = 0; i < 11; i++)
    cells[i] = c[i];
  bench_table_row(stdout, &soak_table, cells);
}

static json_t *soak_row_json(const soak_row *r) {
  json_t *o = json_object();
  int err = o == NULL;

  err |= bench_json_num(o, "enqueued", (double)r->enqueued, 0);
  err |= bench_json_num(o, "finished", (double)r->done, 0);
  err |= bench_json_num(o, "unfinished", (double)r->unfinished, 0);
  err |= bench_json_num(o, "elapsed_s", r->elapsed_s, 3);
  err |= bench_json_num(o, "rss_mib", r->rss_mib, 2);
  err |= bench_json_num(o, "journal_mib", r->journal_mib, 2);
  err |= bench_json_num(o, "batches_per_s", r->per_s, 1);
  if (r->restarted) {
    err |= bench_json_num(o, "restart_s", r->restart_s, 4);
    err |= bench_json_num(o, "close_s", r->close_s, 4);
    err |= bench_json_num(o, "open_s", r->open_s, 4);
    err |= bench_json_num(o, "take_s", r->take_s, 4);
    err |= bench_json_num(o, "ids_s", r->ids_s, 4);
    err |= bench_json_num(o, "rss_after_restart_mib", r->rss_after_mib, 2);
  } else {
    err |= json_object_set_new(o, "restart_s", json_null());
  }
  if (err) {
    json_decref(o);
    return NULL;
  }
  return o;
}

/* 1 when an executable gnuplot is on PATH. */
static int soak_have_gnuplot(void) {
  const char *path = getenv("PATH");
  char dir[4096];

  while (path != NULL && *path != '\0') {
    size_t len = strcspn(path, ":");
    if (len > 0 && len < sizeof dir - 10) {
      memcpy(dir, path, len);
      snprintf(dir + len, sizeof dir - len, "/gnuplot");
      if (access(dir, X_OK) == 0)
        return 1;
    }
    path += len + (path[len] == ':');
  }
  return 0;
}

static const char soak_no_gnuplot[] =
    "soak: --plot needs gnuplot, which is not on PATH (Debian: apt-get "
    "install gnuplot-nox; `make deps` installs it)";

/* FILE.png -> FILE.dat (FILE.png.dat for another ending), in out. */
static void soak_dat_path(const char *png, char *out, size_t size) {
  size_t len = strlen(png);

  if (len > 4 && strcmp(png + len - 4, ".png") == 0)
    snprintf(out, size, "%.*s.dat", (int)(len - 4), png);
  else
    snprintf(out, size, "%s.dat", png);
}

/* The series as a table gnuplot reads ('?' where no restart was timed),
 * then gnuplot on it, drawing png. ORDO_CLI_*. */
static int soak_plot(const char *png, const soak_row *rows, size_t nrows,
                     unsigned long long n, const soak_row *fresh,
                     size_t nfresh) {
  char dat[4200];
  FILE *f;
  int pfd[2], status = 0;
  pid_t pid;
  struct sigaction ign, old;

  if (strlen(png) > 4000 || strpbrk(png, "'\n") != NULL) {
    bench_error("soak: --plot: the path may not hold a quote or a newline");
    return ORDO_CLI_USAGE;
  }
  soak_dat_path(png, dat, sizeof dat);
  if ((f = fopen(dat, "w")) == NULL) {
    bench_error("soak: cannot write %s: %s", dat, strerror(errno));
    return ORDO_CLI_FAIL;
  }
  fprintf(f,
          "# ordo bench soak --batches %llu: one row per point; '?' where "
          "no restart was timed\n"
          "# enqueued finished elapsed_s rss_mib journal_mib batches_per_s "
          "restart_s close_s open_s take_s\n",
          n);
  for (size_t i = 0; i < nrows; i++) {
    const soak_row *r = &rows[i];
    fprintf(f, "%llu %llu %.3f %.2f %.2f %.1f", r->enqueued, r->done,
            r->elapsed_s, r->rss_mib, r->journal_mib, r->per_s);
    if (r->restarted)
      fprintf(f, " %.4f %.4f %.4f %.4f\n", r->restart_s, r->close_s, r->open_s,
              r->take_s);
    else
      fputs(" ? ? ? ?\n", f);
  }
  if (fclose(f) != 0) {
    bench_error("soak: cannot write %s", dat);
    return ORDO_CLI_FAIL;
  }
  if (pipe(pfd) != 0 || (pid = fork()) < 0) {
    bench_error("soak: cannot start gnuplot: %s", strerror(errno));
    return ORDO_CLI_FAIL;
  }
  if (pid == 0) {
    char *argv[] = {"gnuplot", NULL};
    dup2(pfd[0], 0);
    close(pfd[0]);
    close(pfd[1]);
    execvp("gnuplot", argv);
    _exit(127);
  }
  close(pfd[0]);
  /* A gnuplot that dies early must not kill the bench with SIGPIPE. */
  memset(&ign, 0, sizeof ign);
  ign.sa_handler = SIG_IGN;
  sigaction(SIGPIPE, &ign, &old);
  if ((f = fdopen(pfd[1], "w")) == NULL) {
    close(pfd[1]);
  } else {
    fprintf(f,
            "set terminal pngcairo size 1200,800 font ',10'\n"
            "set output '%s'\n"
            "set datafile missing '?'\n"
            "set grid\n"
            "set key off\n"
            "set xlabel 'batches enqueued (thousands)'\n"
            "set xrange [0:*]\n"
            "set yrange [0:*]\n"
            "set multiplot layout 2,2 title 'ordo bench soak: %llu batches, "
            "%u services, a backlog of %u'\n"
            "set title 'resident memory (MiB)'\n"
            "plot '%s' using ($1/1000):4 with linespoints pt 7 ps 0.6\n"
            "set title 'journal on disk (MiB: database, -wal, -shm)'\n"
            "plot '%s' using ($1/1000):5 with linespoints pt 7 ps 0.6\n"
            "set title 'batches finished per second (last interval)'\n"
            "plot '%s' using ($1/1000):6 with linespoints pt 7 ps 0.6\n"
            "set title 'restart (s): close + open + first take "
            "(a fresh journal of the %zu unfinished: %.3f s)'\n"
            "plot '%s' using ($1/1000):7 with linespoints pt 7 ps 1\n"
            "unset multiplot\n",
            png, n, SOAK_SERVICES, SOAK_BACKLOG, dat, dat, dat, nfresh,
            fresh->restart_s, dat);
    fclose(f);
  }
  sigaction(SIGPIPE, &old, NULL);
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
    ;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
      bench_error("%s", soak_no_gnuplot);
    else
      bench_error("soak: gnuplot failed on %s (the data is in %s)", png, dat);
    return ORDO_CLI_FAIL;
  }
  return ORDO_CLI_OK;
}

/* ------------------------------------------------------------------------ */
/* The benchmark                                                             */
/* ------------------------------------------------------------------------ */

static int soak_run(const bench_opts *opts, json_t **out) {
  unsigned long long n =
      opts->batches > 0 ? opts->batches : SOAK_DEFAULT_BATCHES;
  unsigned long long marks[SOAK_MAX_ROWS];
  size_t nmarks = 0, nrows = 0, nfresh = 0, first = 0;
  int restart_at[SOAK_MAX_ROWS] = {0};
  char dir[] = "/tmp/ordo-bench-soak-XXXXXX", fresh[600];
  soak_row rows[SOAK_MAX_ROWS], fresh_row;
  unsigned long long *fresh_ks = NULL;
  uint64_t t0, paused = 0, last_t, last_paused = 0;
  unsigned long long last_done = 0;
  ordo_config cfg;
  soak s;
  soak_rounds rounds;
  int rc = ORDO_E_SYSTEM, cli = ORDO_CLI_FAIL;

  memset(&rounds, 0, sizeof rounds);

  if (opts->plot != NULL && !soak_have_gnuplot()) {
    bench_error("%s", soak_no_gnuplot);
    return ORDO_CLI_FAIL;
  }
  memset(&s, 0, sizeof s);
  memset(rows, 0, sizeof rows);
  memset(&fresh_row, 0, sizeof fresh_row);
  /* The points: every N/20 and the first 10,000 (or N, if fewer), in
   * order, each rounded up to a whole request (a point is taken between
   * rounds); restarts at 10,000 and at 25, 50, 75 and 100 %. */
  for (unsigned i = 1; i <= SOAK_POINTS; i++) {
    unsigned long long m =
        (n * i / SOAK_POINTS + SOAK_REQUEST - 1) / SOAK_REQUEST * SOAK_REQUEST;
    unsigned long long f = n < SOAK_FIRST ? n : SOAK_FIRST;
    m = m < n ? m : n;
    if (f < m && (nmarks == 0 || marks[nmarks - 1] < f)) {
      first = nmarks;
      restart_at[nmarks] = 1;
      marks[nmarks++] = f;
    }
    if (nmarks == 0 || marks[nmarks - 1] != m)
      marks[nmarks++] = m;
    if (m == f)
      first = nmarks - 1;
    restart_at[nmarks - 1] |= i % 5 == 0 || m == f;
  }

  s.n = n;
  s.finished = calloc((size_t)(n / 8 + 1), 1);
  s.in_flight = malloc((SOAK_MAX_TAKE + SOAK_REQUEST) * sizeof *s.in_flight);
  s.items = malloc(SOAK_MAX_TAKE * sizeof *s.items);
  s.req = malloc(SOAK_REQUEST * sizeof *s.req);
  s.specs = malloc(SOAK_REQUEST * sizeof *s.specs);
  if (s.finished == NULL || s.in_flight == NULL || s.items == NULL ||
      s.req == NULL || s.specs == NULL || mkdtemp(dir) == NULL) {
    bench_error("soak: cannot set up (memory or a scratch directory)");
    goto out;
  }
  snprintf(s.path, sizeof s.path, "%s/queue.db", dir);
  snprintf(fresh, sizeof fresh, "%s/fresh.db", dir);
  s.retention = opts->count;
  ordo_config_init(&cfg);
  if ((s.ctx = bench_ctx_new(&cfg)) == NULL)
    goto out;
  if ((rc = soak_open(&s, s.path, 1)) != ORDO_OK)
    goto out;

  if (!opts->json) {
    printf("ordo bench soak: %llu batches of %u services through the queue "
           "journal (SQLite, WAL, synchronous=FULL), the bench as the model "
           "ledger: requests of %u, a backlog of %u QUEUED or WAITING, "
           "1 in %u INVALID\n"
           "restart = close + open (replay) + the first take that returns a "
           "batch; batches/s leaves restarts out\ncores: %ld\n\n",
           n, SOAK_SERVICES, SOAK_REQUEST, SOAK_BACKLOG, SOAK_INVALID_EVERY,
           bench_cores());
    bench_table_header(stdout, &soak_table);
  }
  t0 = last_t = bench_now_ns();
  while (nrows < nmarks) {
    uint64_t rt = bench_now_ns();
    unsigned long long before = s.done;
    if ((rc = soak_round(&s)) != ORDO_OK)
      goto out;
    if ((rc = soak_round_note(&rounds, bench_now_ns() - rt, s.done - before,
                              soak_checkpoints(s.j))) != ORDO_OK)
      goto out;
    if (s.enqueued < marks[nrows])
      continue;
    /* A point: what the run costs so far, then maybe a restart. */
    {
      soak_row *r = &rows[nrows];
      uint64_t now = bench_now_ns();
      double work = (double)((now - last_t) - (paused - last_paused)) / 1e9;
      r->enqueued = s.enqueued;
      r->done = s.done;
      r->unfinished = (size_t)(s.enqueued - s.done);
      r->elapsed_s = (double)(now - t0) / 1e9;
      r->rss_mib = bench_rss_mib(0);
      r->journal_mib = soak_journal_mib(s.path);
      r->per_s = work > 0 ? (double)(s.done - last_done) / work : 0;
      last_t = now;
      last_done = s.done;
      last_paused = paused;
      if (restart_at[nrows]) {
        uint64_t p0 = bench_now_ns();
        /* Nothing SUBMITTED at a restart: a reopen would make it UNKNOWN,
         * and no take hands anything out until it is settled. */
        if ((rc = soak_finish_in_flight(&s)) != ORDO_OK)
          goto out;
        r->done = s.done;
        r->unfinished = (size_t)(s.enqueued - s.done);
        if (nrows == nmarks - 1 &&
            (fresh_ks = soak_unfinished(&s, &nfresh)) == NULL) {
          bench_error("soak: out of memory");
          rc = ORDO_E_NOMEM;
          goto out;
        }
        if ((rc = soak_restart(&s, s.path, r)) != ORDO_OK)
          goto out;
        paused += bench_now_ns() - p0;
        rounds.reopen = 1;
      }
      if (!opts->json)
        soak_print_row(r);
      nrows++;
    }
  }
  {
    double work = (double)(bench_now_ns() - t0 - paused) / 1e9;
    double per_s = work > 0 ? (double)s.done / work : 0;
    unsigned long long done = s.done, invalid = s.invalid;
    const soak_row *r10k = &rows[first], *last = &rows[nrows - 1];
    double ck_per_s = 0, between_per_s = 0, stall_ms = 0;
    size_t nck = soak_checkpoint_rates(&rounds, &ck_per_s, &between_per_s,
                                       &stall_ms);

    rc = ordo_journal_close(s.j);
    s.j = NULL;
    if (rc != ORDO_OK) {
      soak_fail("journal close", rc);
      goto out;
    }
    s.nin_flight = 0; /* taken after the last restart, left in that file */
    if ((rc = soak_fresh(&s, fresh, fresh_ks, nfresh, &fresh_row)) != ORDO_OK)
      goto out;
    if (!opts->json) {
      printf("\nfresh journal holding the %zu unfinished batches of the last "
             "point (%.2f MiB): restart %.3f s (close %.3f, open %.3f, take "
             "%.3f)\n",
             nfresh, fresh_row.journal_mib, fresh_row.restart_s,
             fresh_row.close_s, fresh_row.open_s, fresh_row.take_s);
      printf("restart_s_final: %.3f   restart_s_fresh: %.3f   "
             "rss_mib_first: %.1f   rss_mib_final: %.1f   journal_mib_final: "
             "%.1f   batches_per_s: %.0f\n",
             last->restart_s, fresh_row.restart_s, r10k->rss_mib, last->rss_mib,
             last->journal_mib, per_s);
      printf("checkpoints: %zu; batches/s over %d ms windows with one: %.0f, "
             "without: %.0f (%.2fx); the longest round with one: %.1f ms\n",
             nck, SOAK_CK_WINDOW_MS, ck_per_s, between_per_s,
             between_per_s > 0 ? ck_per_s / between_per_s : 0, stall_ms);
    }
    json_t *o = json_object(), *series = json_array();
    int err = o == NULL || series == NULL;
    for (size_t i = 0; !err && i < nrows; i++)
      err |= json_array_append_new(series, soak_row_json(&rows[i])) != 0;
    err |= bench_json_num(o, "batches", (double)n, 0);
    err |= bench_json_num(o, "services", SOAK_SERVICES, 0);
    err |= bench_json_num(o, "backlog", SOAK_BACKLOG, 0);
    err |= bench_json_num(o, "finished", (double)done, 0);
    err |= bench_json_num(o, "invalid", (double)invalid, 0);
    err |= bench_json_num(o, "unfinished_final", (double)nfresh, 0);
    err |= bench_json_num(o, "elapsed_s", last->elapsed_s, 3);
    err |= bench_json_num(o, "batches_per_s", per_s, 1);
    err |= bench_json_num(o, "rss_mib_first", r10k->rss_mib, 2);
    err |= bench_json_num(o, "rss_mib_final", last->rss_mib, 2);
    err |= bench_json_num(o, "journal_mib_final", last->journal_mib, 2);
    err |= bench_json_num(o, "restart_s_first", r10k->restart_s, 4);
    err |= bench_json_num(o, "restart_s_final", last->restart_s, 4);
    err |= bench_json_num(o, "open_s_final", last->open_s, 4);
    err |= bench_json_num(o, "restart_s_fresh", fresh_row.restart_s, 4);
    err |= bench_json_num(o, "open_s_fresh", fresh_row.open_s, 4);
    err |= bench_json_num(o, "journal_mib_fresh", fresh_row.journal_mib, 2);
    err |= bench_json_num(o, "cores", (double)bench_cores(), 0);
    err |= bench_json_num(o, "retention_count", (double)s.retention, 0);
    err |= bench_json_num(o, "checkpoints", (double)nck, 0);
    err |= bench_json_num(o, "batches_per_s_checkpoint", ck_per_s, 1);
    err |= bench_json_num(o, "batches_per_s_between", between_per_s, 1);
    err |= bench_json_num(
        o, "checkpoint_ratio",
        between_per_s > 0 ? ck_per_s / between_per_s : 0, 3);
    err |= bench_json_num(o, "checkpoint_window_ms", SOAK_CK_WINDOW_MS, 0);
    err |= bench_json_num(o, "checkpoint_stall_ms_max", stall_ms, 2);
    err |= json_object_set_new(o, "series", series) != 0;
    if (err) {
      json_decref(o);
      bench_error("soak: out of memory");
      rc = ORDO_E_NOMEM;
      goto out;
    }
    *out = o;
  }
  cli = ORDO_CLI_OK;
  if (opts->plot != NULL) {
    cli = soak_plot(opts->plot, rows, nrows, n, &fresh_row, nfresh);
    if (cli == ORDO_CLI_OK && !opts->json)
      printf("plot: %s\n", opts->plot);
  }
out:
  if (s.j != NULL && ordo_journal_close(s.j) != ORDO_OK && rc == ORDO_OK)
    cli = ORDO_CLI_FAIL;
  if (s.ctx != NULL)
    ordo_ctx_free(s.ctx);
  if (rc != ORDO_OK)
    cli = ORDO_CLI_FAIL;
  if (cli != ORDO_CLI_OK && *out != NULL) {
    json_decref(*out);
    *out = NULL;
  }
  free(fresh_ks);
  free(rounds.ns);
  free(rounds.batches);
  free(rounds.ck);
  free(rounds.reopened);
  free(s.finished);
  free(s.in_flight);
  free(s.items);
  free(s.req);
  free(s.specs);
  if (dir[sizeof dir - 7] != 'X') /* made */
    bench_rmdir_all(dir);
  return cli;
}

const bench_def bench_soak_def = {
    "soak",
    "a long run through the journal: RSS, journal size, batches/s and "
    "restart time over time (not in `all`)",
    "  --batches N    soak: batches in all (default 1000000)\n"
    "  --plot F.png   soak: also write the series to F.dat and draw it with "
    "gnuplot\n"
    "  --count N      soak: finished batches the journal retains (its "
    "retention_count; default 5,000,000)\n",
    BENCH_FLAG_BATCHES | BENCH_FLAG_PLOT | BENCH_FLAG_COUNT,
    soak_run,
};

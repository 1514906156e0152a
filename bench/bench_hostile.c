/*
 * bench_hostile.c — `ordo bench hostile`: does `ordo serve` keep answering
 * while one client address holds thousands of half-open connections?
 *
 * An ordo serve runs in this process with its defaults (header timeout
 * 10 s, idle timeout 30 s, 64 connections per client address, 4096 in
 * all) on an ephemeral port of 127.0.0.1. Two phases of S seconds each
 * (default 30): "quiet", then "hostile", in which an attacker thread keeps
 * N connections (default 2000) from 127.0.0.2 open without sending a
 * byte; each connection the server closes is opened again a second later.
 * In both phases the main thread probes GET /healthz from 127.0.0.1 at R
 * per second (default 20), each on a new connection with a 1 s deadline:
 * a probe is answered when a 200 arrived within it. The table gives the
 * probes sent, the share answered and the latency (connect to complete
 * answer) p50/p99/max of the answered ones, and for the hostile phase what
 * the attacker saw: connections opened, closed by the server at once (over
 * the per-address cap) and closed later (by the header timeout).
 *
 * Everything stays on 127.0.0.0/8; the soft RLIMIT_NOFILE is raised to the
 * hard one (N client sockets plus the server's are in this one process).
 */
#include "bench.h"
#include "http/loopback.h"
#include "server/server.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define HOSTILE_DEFAULT_SECONDS 30.0
#define HOSTILE_DEFAULT_COUNT 2000
#define HOSTILE_DEFAULT_RATE 20.0
#define HOSTILE_PROBE_TIMEOUT_MS 1000
#define HOSTILE_REOPEN_NS 1000000000ULL /* a closed connection reopens */
#define HOSTILE_EARLY_NS 500000000ULL   /* closed within: refused at once */

/* ---- the attacker ------------------------------------------------------- */

typedef struct hostile_attack {
  int port;
  unsigned n;
  int *fd;                 /* -1: closed, reopens at reopen_ns */
  uint64_t *opened_ns, *reopen_ns;
  pthread_mutex_t mu;      /* guards stop */
  int stop;
  /* Counts (read after the join). */
  unsigned long long opened, closed_early, closed_late, failed;
  unsigned max_open;
} hostile_attack;

static int attack_stopped(hostile_attack *a) {
  int s;
  pthread_mutex_lock(&a->mu);
  s = a->stop;
  pthread_mutex_unlock(&a->mu);
  return s;
}

static void attack_open(hostile_attack *a, unsigned i, uint64_t now) {
  a->fd[i] = ordo__http_loopback_connect("127.0.0.2", a->port);
  if (a->fd[i] < 0) {
    a->failed++;
    a->reopen_ns[i] = now + HOSTILE_REOPEN_NS;
    return;
  }
  a->opened++;
  a->opened_ns[i] = now;
}

static void *attack_main(void *arg) {
  hostile_attack *a = arg;
  struct pollfd *pf = calloc(a->n, sizeof *pf);
  unsigned *slot = calloc(a->n, sizeof *slot);
  unsigned i;
  if (pf == NULL || slot == NULL) {
    free(pf);
    free(slot);
    return NULL;
  }
  for (i = 0; i < a->n; i++)
    attack_open(a, i, bench_now_ns());
  while (!attack_stopped(a)) {
    uint64_t now = bench_now_ns();
    nfds_t n = 0;
    int k;
    for (i = 0; i < a->n; i++) {
      if (a->fd[i] < 0 && now >= a->reopen_ns[i])
        attack_open(a, i, now);
      if (a->fd[i] >= 0) {
        pf[n].fd = a->fd[i];
        pf[n].events = POLLIN;
        pf[n].revents = 0;
        slot[n++] = i;
      }
    }
    if (n > a->max_open)
      a->max_open = (unsigned)n;
    if ((k = poll(pf, n, 50)) <= 0)
      continue;
    now = bench_now_ns();
    for (i = 0; i < n; i++) {
      char buf[256];
      ssize_t r;
      unsigned s = slot[i];
      if (pf[i].revents == 0)
        continue;
      r = recv(pf[i].fd, buf, sizeof buf, 0);
      if (r > 0 || (r < 0 && (errno == EAGAIN || errno == EINTR)))
        continue;
      /* The server closed it (or refused the connect). */
      if (now - a->opened_ns[s] <= HOSTILE_EARLY_NS)
        a->closed_early++;
      else
        a->closed_late++;
      close(a->fd[s]);
      a->fd[s] = -1;
      a->reopen_ns[s] = now + HOSTILE_REOPEN_NS;
    }
  }
  for (i = 0; i < a->n; i++)
    if (a->fd[i] >= 0)
      close(a->fd[i]);
  free(pf);
  free(slot);
  return NULL;
}

/* ---- the probes --------------------------------------------------------- */

/* GET /healthz on a new connection from 127.0.0.1: 1 and *ns when a 200
 * came within HOSTILE_PROBE_TIMEOUT_MS. */
static int probe_once(int port, uint64_t *ns) {
  static const char req[] = "GET /healthz HTTP/1.1\r\nHost: bench\r\n"
                            "Connection: close\r\n\r\n";
  uint64_t t0 = bench_now_ns(),
           deadline = t0 + HOSTILE_PROBE_TIMEOUT_MS * 1000000ULL;
  char buf[2048];
  size_t len = 0, sent = 0;
  int fd = ordo__http_loopback_connect("127.0.0.1", port), ok = 0;
  if (fd < 0)
    return 0;
  for (;;) {
    struct pollfd p = {fd, (short)(sent < sizeof req - 1 ? POLLOUT : POLLIN),
                       0};
    uint64_t now = bench_now_ns();
    ssize_t r;
    if (now >= deadline || poll(&p, 1, (int)((deadline - now) / 1000000) + 1) < 0)
      break;
    if (p.revents == 0)
      continue;
    if (sent < sizeof req - 1) {
      r = send(fd, req + sent, sizeof req - 1 - sent, MSG_NOSIGNAL);
      if (r > 0)
        sent += (size_t)r;
      else if (r < 0 && errno != EAGAIN && errno != EINTR)
        break;
      continue;
    }
    r = recv(fd, buf + len, sizeof buf - 1 - len, 0);
    if (r > 0) {
      len += (size_t)r;
      if (len < sizeof buf - 1)
        continue;
    } else if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
      continue;
    }
    /* End of the answer (Connection: close), or the buffer is full. */
    buf[len] = '\0';
    ok = strncmp(buf, "HTTP/1.1 200", 12) == 0;
    break;
  }
  close(fd);
  *ns = bench_now_ns() - t0;
  return ok;
}

typedef struct probe_run {
  int port;
  uint64_t *lat_ns;
  size_t answered;
} probe_run;

static int probe_issue(size_t i, uint64_t sched_ns, void *ud) {
  probe_run *p = ud;
  uint64_t ns = 0;
  (void)i;
  (void)sched_ns;
  if (probe_once(p->port, &ns))
    p->lat_ns[p->answered++] = ns;
  return 0;
}

typedef struct phase_result {
  size_t sent, answered;
  bench_stats st;
} phase_result;

static void probe_phase(int port, double seconds, double rate,
                        uint64_t *lat_ns, phase_result *out) {
  probe_run p = {port, lat_ns, 0};
  size_t n = (size_t)(seconds * rate);
  (void)bench_issue_steady(bench_now_ns(), rate, n, probe_issue, &p);
  out->sent = n;
  out->answered = p.answered;
  memset(&out->st, 0, sizeof out->st);
  if (p.answered > 0)
    bench_stats_of(lat_ns, p.answered, &out->st);
}

/* ---- the run ------------------------------------------------------------ */

static const char *const hostile_titles[] = {
    "phase", "half-open", "probes", "answered", "p50 ms", "p99 ms", "max ms"};
static const int hostile_widths[] = {8, 9, 6, 8, 7, 7, 7};
static const bench_table hostile_table = {hostile_titles, hostile_widths, 7,
                                          1};

static void hostile_row(const char *phase, unsigned n, const phase_result *r) {
  char c1[16], c2[16], c3[16], c4[16], c5[16], c6[16];
  const char *cells[7] = {phase, c1, c2, c3, c4, c5, c6};
  snprintf(c1, sizeof c1, "%u", n);
  snprintf(c2, sizeof c2, "%zu", r->sent);
  snprintf(c3, sizeof c3, "%.1f%%",
           r->sent > 0 ? 100.0 * (double)r->answered / (double)r->sent : 0.0);
  snprintf(c4, sizeof c4, "%.2f", r->st.p50_us / 1000.0);
  snprintf(c5, sizeof c5, "%.2f", r->st.p99_us / 1000.0);
  snprintf(c6, sizeof c6, "%.2f", r->st.max_us / 1000.0);
  bench_table_row(stdout, &hostile_table, cells);
}

static json_t *phase_json(unsigned n, const phase_result *r) {
  json_t *o = json_object();
  if (o == NULL || bench_json_num(o, "half_open", n, 0) ||
      bench_json_num(o, "probes", (double)r->sent, 0) ||
      bench_json_num(o, "answered", (double)r->answered, 0) ||
      bench_json_num(o, "answered_pct",
                     r->sent > 0 ? 100.0 * (double)r->answered /
                                       (double)r->sent
                                 : 0.0,
                     2) ||
      bench_json_num(o, "p50_ms", r->st.p50_us / 1000.0, 3) ||
      bench_json_num(o, "p99_ms", r->st.p99_us / 1000.0, 3) ||
      bench_json_num(o, "max_ms", r->st.max_us / 1000.0, 3)) {
    json_decref(o);
    return NULL;
  }
  return o;
}

/* Raise the soft open-files limit to the hard one; 0 when `need` fit. */
static int raise_nofile(rlim_t need) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
    return -1;
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    (void)setrlimit(RLIMIT_NOFILE, &rl);
    (void)getrlimit(RLIMIT_NOFILE, &rl);
  }
  return rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= need ? 0 : -1;
}

static int hostile_run(const bench_opts *opts, json_t **out) {
  double seconds = opts->seconds > 0 ? opts->seconds : HOSTILE_DEFAULT_SECONDS;
  double rate = opts->rate > 0 ? opts->rate : HOSTILE_DEFAULT_RATE;
  unsigned n = opts->count > 0 ? opts->count : HOSTILE_DEFAULT_COUNT;
  ordo_server_options so;
  ordo_server *srv = NULL;
  hostile_attack a;
  pthread_t attacker;
  phase_result quiet, hostile;
  uint64_t *lat = NULL;
  char dir[64];
  json_t *o = NULL, *q = NULL, *h = NULL;
  int rc = ORDO_CLI_FAIL, port, err, made_dir = 0;

  if (raise_nofile((rlim_t)n + 512) != 0) {
    bench_error("hostile: the open files limit is below %u (N connections "
                "+ 512); raise it (ulimit -n) or lower --count",
                n + 512);
    return ORDO_CLI_FAIL;
  }
  memset(&a, 0, sizeof a);
  snprintf(dir, sizeof dir, "/tmp/ordo-bench-hostile-XXXXXX");
  lat = calloc((size_t)(seconds * rate) + 1, sizeof *lat);
  a.fd = malloc(n * sizeof *a.fd);
  a.opened_ns = calloc(n, sizeof *a.opened_ns);
  a.reopen_ns = calloc(n, sizeof *a.reopen_ns);
  if (lat == NULL || a.fd == NULL || a.opened_ns == NULL ||
      a.reopen_ns == NULL) {
    bench_error("out of memory");
    goto done;
  }
  if (mkdtemp(dir) == NULL) {
    bench_error("mkdtemp: cannot make a scratch directory");
    goto done;
  }
  made_dir = 1;
  ordo_server_options_init(&so);
  so.port = 0;
  so.data_dir = dir;
  if (ordo_server_start(&so, &srv) != ORDO_OK) {
    bench_error("hostile: server: %s", ordo_last_error_message());
    goto done;
  }
  port = ordo_server_port(srv);
  if (!opts->json) {
    printf("ordo bench hostile: ordo serve on 127.0.0.1:%d (header timeout "
           "%u ms, idle %u ms, %u connections per address, %u in all); "
           "GET /healthz probes from 127.0.0.1 at %.0f/s, %.0f s per "
           "phase, 1 s deadline; hostile: %u connections from 127.0.0.2 "
           "that send nothing (reopened 1 s after the server closes "
           "one)\n\n",
           port, so.header_timeout_ms, so.idle_timeout_ms,
           so.connection_limit_per_ip, so.connection_limit, rate, seconds,
           n);
    bench_table_header(stdout, &hostile_table);
  }
  probe_phase(port, seconds, rate, lat, &quiet);
  if (!opts->json)
    hostile_row("quiet", 0, &quiet);

  a.port = port;
  a.n = n;
  pthread_mutex_init(&a.mu, NULL);
  if (pthread_create(&attacker, NULL, attack_main, &a) != 0) {
    bench_error("hostile: cannot start the attacker thread");
    pthread_mutex_destroy(&a.mu);
    goto done;
  }
  probe_phase(port, seconds, rate, lat, &hostile);
  pthread_mutex_lock(&a.mu);
  a.stop = 1;
  pthread_mutex_unlock(&a.mu);
  pthread_join(attacker, NULL);
  pthread_mutex_destroy(&a.mu);
  if (!opts->json) {
    hostile_row("hostile", n, &hostile);
    printf("\nattacker: %llu connections opened (%u at most at once), %llu "
           "closed by the server at once (over the per-address cap), %llu "
           "closed later (header timeout), %llu failed to open\n",
           a.opened, a.max_open, a.closed_early, a.closed_late, a.failed);
  }
  q = phase_json(0, &quiet);
  h = phase_json(n, &hostile);
  if ((o = json_object()) == NULL || q == NULL || h == NULL) {
    bench_error("out of memory");
    goto done;
  }
  /* json_object_set_new takes the value, even when it fails. */
  err = json_object_set_new(o, "quiet", q) != 0;
  err |= json_object_set_new(o, "hostile", h) != 0;
  q = h = NULL;
  if (err || bench_json_num(o, "seconds", seconds, 1) ||
      bench_json_num(o, "rate", rate, 1) ||
      bench_json_num(o, "attacker_opened", (double)a.opened, 0) ||
      bench_json_num(o, "attacker_closed_at_once", (double)a.closed_early,
                     0) ||
      bench_json_num(o, "attacker_closed_by_timeout", (double)a.closed_late,
                     0)) {
    bench_error("out of memory");
    goto done;
  }
  *out = o;
  o = NULL;
  rc = ORDO_CLI_OK;
done:
  json_decref(o);
  json_decref(q);
  json_decref(h);
  if (srv != NULL && ordo_server_stop(srv) != ORDO_OK && rc == ORDO_CLI_OK) {
    bench_error("hostile: stop: %s", ordo_last_error_message());
    rc = ORDO_CLI_FAIL;
  }
  if (made_dir) {
    bench_rmdir_all(dir);
  }
  free(lat);
  free(a.fd);
  free(a.opened_ns);
  free(a.reopen_ns);
  return rc;
}

const bench_def bench_hostile_def = {
    "hostile",
    "ordo serve's /healthz with and without 2,000 half-open connections",
    "  --seconds S    hostile: seconds per phase (default 30)\n"
    "  --count N      hostile: half-open connections from 127.0.0.2 (default "
    "2000)\n"
    "  --rate R       hostile: /healthz probes per second (default 20)\n",
    BENCH_FLAG_COUNT | BENCH_FLAG_RATE,
    hostile_run,
};

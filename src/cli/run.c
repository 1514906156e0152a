/*
 * run.c — `ordo run`, the main job (`make run`): ordo doing its work end to
 * end on one machine, the way a team would deploy it.
 *
 * For each strategy (serial, Grid's queuer today; parallel, ordo's lock
 * table), on the same signed workload: start the embedded ledger node and
 * `ordo serve` as child processes on free loopback ports under a temporary
 * directory, POST the batches to the server's HTTP API, follow the queue
 * with a progress bar until every batch is final, check the ledger with
 * `ordo verify`, stop both. Then one table: makespan, batches/s, enqueue ->
 * verdict latency, invalid count and the verify result, side by side.
 *
 * The children are this very binary (/proc/self/exe), so what runs is what
 * a user would run; their first stdout line says where they listen.
 */
#include "cli/cli.h"
#include "cli/drive.h"
#include "ledger/ledger.h"
#include "queue/queue.h"
#include "runtime/runtime.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef struct run_args {
  ordo_workload_gen gen;
  unsigned block_ms;
  const char *keep;
  int json;
  /* --instances N --postgres URL: a cluster instead (cluster_run.c) */
  int instances;
  const char *postgres;
  double kill_every_s;
  int sigstop;
  unsigned ttl_ms;
  double rate;
} run_args;

static void run_usage(FILE *f) {
  fputs("usage: ordo run [--services N] [--batches N] [--conflict P]\n"
        "                [--hot-read P] [--invalid P] [--deps P]\n"
        "                [--block-ms T] [--seed S] [--keep DIR] [--json]\n"
        "\n"
        "The main job: for the serial strategy and then the parallel one,\n"
        "start the embedded ledger and `ordo serve` on free loopback ports,\n"
        "submit the same signed workload (intkey and ordo-rw batches) through\n"
        "the HTTP API, follow it to the end, verify the ledger's state, and\n"
        "print both side by side.\n"
        "\n"
        "  --services N   services (default 50)\n"
        "  --batches N    batches (default 5000)\n"
        "  --conflict P   share of batches updating a shared key of their\n"
        "                 service (default 0.1)\n"
        "  --hot-read P   share reading one identity key (default 0.5)\n"
        "  --invalid P    share the ledger rejects (default 0.02)\n"
        "  --deps P       share depending on an earlier batch (default 0.05)\n"
        "  --block-ms T   the node's block time (default 100)\n"
        "  --seed S       workload seed (default 1)\n"
        "  --keep DIR     work in DIR and keep it (default: a temporary\n"
        "                 directory, removed at the end)\n"
        "  --json         print the results as JSON\n"
        "\n"
        "A cluster instead (README, Cluster): N `ordo serve --cluster`\n"
        "instances on one PostgreSQL queue, the batches posted to them in\n"
        "turn, one of them killed with SIGKILL every few seconds and started\n"
        "again, the progress bar going on through each kill:\n"
        "  --instances N  instances (1..16)\n"
        "  --postgres URL the database (default $ORDO_POSTGRES_URL)\n"
        "  --kill-every S a kill every S seconds (default: the TTL + 3 s;\n"
        "                 0: none)\n"
        "                 (the killed one restarts a lease TTL + 1 s later:\n"
        "                 its services are taken over meanwhile)\n"
        "  --sigstop      SIGSTOP instead, SIGCONT a lease TTL + 1 s later\n"
        "                 (a stale owner that comes back)\n"
        "  --ttl-ms MS    the lease TTL (default 5000)\n"
        "  --rate R       post at most R batches a second (default: as fast\n"
        "                 as the instances take them)\n"
        "\n"
        "Exit status: 0 both runs finished and verified (a cluster: it\n"
        "finished, verified, nothing lost or committed twice), 1 otherwise,\n"
        "2 bad usage.\n",
        f);
}

static int parse_args(int argc, char **argv, run_args *a) {
  memset(a, 0, sizeof(*a));
  ordo_workload_gen_init(&a->gen);
  a->gen.services = 50;
  a->gen.batches = 5000;
  a->gen.conflict = 0.1;
  a->gen.hot_read = 0.5;
  a->gen.invalid = 0.02;
  a->gen.deps = 0.05;
  a->block_ms = 100;
  a->kill_every_s = -1; /* default: a TTL + 3 s */
  a->ttl_ms = 5000;
  for (int i = 1; i < argc; i++) {
    const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    int got;
    if (ordo__cli_help(k, run_usage))
      return -1;
    if (strcmp(k, "--json") == 0) {
      a->json = 1;
      continue;
    }
    if (strcmp(k, "--sigstop") == 0) {
      a->sigstop = 1;
      continue;
    }
    if (v == NULL)
      goto bad;
    if ((got = ordo__cli_workload_flag(&a->gen, k, v)) < 0) {
      goto bad_value;
    } else if (got > 0) {
      ; /* the generator's own: --services, --batches, ... */
    } else if (strcmp(k, "--block-ms") == 0) {
      char *end;
      a->block_ms = (unsigned)strtoul(v, &end, 10);
      if (end == v || *end != '\0' || v[0] == '-')
        goto bad_value;
    } else if (strcmp(k, "--instances") == 0) {
      char *end;
      long n = strtol(v, &end, 10);
      if (end == v || *end != '\0' || n < 1 || n > 16)
        goto bad_value;
      a->instances = (int)n;
    } else if (strcmp(k, "--postgres") == 0) {
      a->postgres = v;
    } else if (strcmp(k, "--kill-every") == 0) {
      char *end;
      a->kill_every_s = strtod(v, &end);
      if (end == v || *end != '\0' || !(a->kill_every_s >= 0) ||
          a->kill_every_s > 3600)
        goto bad_value;
    } else if (strcmp(k, "--rate") == 0) {
      char *end;
      a->rate = strtod(v, &end);
      if (end == v || *end != '\0' || !(a->rate > 0) || a->rate > 1e7)
        goto bad_value;
    } else if (strcmp(k, "--ttl-ms") == 0) {
      char *end;
      unsigned long t = strtoul(v, &end, 10);
      if (end == v || *end != '\0' || v[0] == '-' || t < 300 || t > 3600000)
        goto bad_value;
      a->ttl_ms = (unsigned)t;
    } else if (strcmp(k, "--keep") == 0) {
      if (v[0] == '\0' || v[0] == '-')
        goto bad_value;
      a->keep = v;
    } else {
      goto bad;
    }
    i++;
    continue;
  bad_value:
    return ordo__cli_bad_value(stderr, "ordo run", v, k);
  bad:
    return ordo__cli_unknown(stderr, "ordo run", k, run_usage);
  }
  if (a->gen.batches == 0 || a->gen.batches > 1000000 ||
      a->block_ms == 0 || a->block_ms > 10000) {
    fputs("ordo run: --batches must be 1..1000000, --block-ms 1..10000\n",
          stderr);
    return ORDO_CLI_USAGE;
  }
  return ORDO_OK;
}

/* ---- child processes (see drive.c for starting and stopping them) --------- */

/* Run this binary with argv (no shell: paths go as they are), stdout and
 * stderr to out_path; its exit status, or -1 when it could not run. */
static int run_to_file(char *const *argv, const char *out_path) {
  int st = 0;
  pid_t pid = fork();
  if (pid < 0)
    return -1;
  if (pid == 0) {
    int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
      _exit(127);
    execv("/proc/self/exe", argv);
    _exit(127);
  }
  if (waitpid(pid, &st, 0) != pid)
    return -1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* ---- one strategy --------------------------------------------------------- */

typedef struct run_result {
  const char *strategy;
  double seconds, per_s;
  long long committed, invalid, p50_ms, p99_ms;
  int finished, verified;
  long long differences;
} run_result;

static void progress(const run_result *r, long long done, long long total,
                     long long in_flight, long long waiting, double el,
                     int tty) {
  double rate = el > 0 ? (double)done / el : 0;
  double eta = rate > 0 ? (double)(total - done) / rate : 0;
  if (tty) {
    char bar[41];
    int fill = total > 0 ? (int)(40 * done / total) : 0;
    for (int i = 0; i < 40; i++)
      bar[i] = i < fill ? '#' : '.';
    bar[40] = '\0';
    fprintf(stderr, "\r%-8s [%s] %lld/%lld final  %lld in flight  %lld "
            "waiting  %.0f b/s  ETA %.0fs   ",
            r->strategy, bar, done, total, in_flight, waiting, rate, eta);
  } else {
    fprintf(stderr, "%s: %lld/%lld final, %lld in flight, %lld waiting, "
            "%.0f batches/s\n",
            r->strategy, done, total, in_flight, waiting, rate);
  }
}

static int run_one(const run_args *a, const char *dir, const char *self,
                   const char *workload_path, const json_t *items,
                   const char *token_path, const char *token,
                   const char *strategy, run_result *r) {
  char node_dir[1100], srv_dir[1100], cfg_path[1100], log_path[1100],
      block[16], url[256];
  ordo__child node = {0}, srv = {0};
  CURL *h = curl_easy_init();
  size_t n = json_array_size(items), off;
  double t0, last = 0;
  int rc = ORDO_CLI_FAIL, tty = isatty(2) && !a->json;
  FILE *f;

  memset(r, 0, sizeof(*r));
  r->strategy = strategy;
  if (h == NULL)
    return ORDO_CLI_FAIL;
  snprintf(node_dir, sizeof node_dir, "%s/node-%s", dir, strategy);
  snprintf(srv_dir, sizeof srv_dir, "%s/serve-%s", dir, strategy);
  snprintf(cfg_path, sizeof cfg_path, "%s/serve-%s.json", dir, strategy);
  snprintf(block, sizeof block, "%u", a->block_ms);
  if ((f = fopen(cfg_path, "w")) == NULL)
    goto out;
  fprintf(f, "{\"strategy\":\"%s\",\"poll_ms\":10}\n", strategy);
  fclose(f);
  {
    char *argv[] = {(char *)self, "ledger", "--port", "0", "--block-ms",
                    block, "--seed", "7", "--data", node_dir, NULL};
    snprintf(log_path, sizeof log_path, "%s/node-%s.log", dir, strategy);
    if (ordo__child_start(argv, log_path, &node) != ORDO_OK) {
      fprintf(stderr, "ordo run: the ledger node did not start (%s)\n",
              log_path);
      goto out;
    }
  }
  {
    char *argv[] = {(char *)self, "serve", "--port", "0", "--config",
                    cfg_path, "--data", srv_dir, "--ledger", node.url,
                    "--token-file", (char *)token_path, NULL};
    snprintf(log_path, sizeof log_path, "%s/serve-%s.log", dir, strategy);
    if (ordo__child_start(argv, log_path, &srv) != ORDO_OK) {
      fprintf(stderr, "ordo run: ordo serve did not start (%s)\n", log_path);
      goto out;
    }
  }
  /* The dashboard of this run, with the run's own token (made for this
   * run, gone with it): the fragment never reaches a server or a log. */
  if (!a->json)
    fprintf(stderr, "ordo run: watch the %s run at %s/ui#token=%s\n",
            strategy, srv.url, token);
  t0 = ordo__cli_now_s();
  /* POST the batches, 250 a request; each 202 means they are journaled. */
  snprintf(url, sizeof url, "%s/v1/batches", srv.url);
  for (off = 0; off < n; off += 250) {
    json_t *chunk = json_array();
    char *body, *resp = NULL;
    long code;
    for (size_t i = off; i < n && i < off + 250; i++)
      json_array_append(chunk, json_array_get(items, i));
    body = json_dumps(chunk, JSON_COMPACT);
    json_decref(chunk);
    code = body != NULL ? ordo__http(h, url, token, body, &resp) : -1;
    free(body);
    if (code != 202) {
      fprintf(stderr, "ordo run: POST /v1/batches answered %ld: %s\n", code,
              resp != NULL ? resp : "(nothing)");
      free(resp);
      goto out;
    }
    free(resp);
  }
  /* Follow the queue to the end (bounded: 10 minutes). */
  snprintf(url, sizeof url, "%s/v1/queue", srv.url);
  for (;;) {
    char *resp = NULL;
    json_t *t;
    long code = ordo__http(h, url, token, NULL, &resp);
    double el = ordo__cli_now_s() - t0;
    t = code == 200 && resp != NULL ? json_loads(resp, 0, NULL) : NULL;
    free(resp);
    if (t != NULL) {
      long long c = json_integer_value(json_object_get(t, "committed"));
      long long inv = json_integer_value(json_object_get(t, "invalid"));
      long long fl = json_integer_value(json_object_get(t, "in_flight")) +
                     json_integer_value(json_object_get(t, "unknown"));
      long long wt = json_integer_value(json_object_get(t, "waiting")) +
                     json_integer_value(json_object_get(t, "queued"));
      json_t *lat = json_object_get(t, "latency_ms");
      r->committed = c;
      r->invalid = inv;
      r->p50_ms = json_integer_value(json_object_get(lat, "p50"));
      r->p99_ms = json_integer_value(json_object_get(lat, "p99"));
      json_decref(t);
      if (!a->json && (el - last >= (tty ? 0.2 : 2.0) ||
                       c + inv >= (long long)n)) {
        progress(r, c + inv, (long long)n, fl, wt, el, tty);
        last = el;
      }
      if (c + inv >= (long long)n) {
        r->finished = 1;
        r->seconds = el;
        r->per_s = el > 0 ? (double)n / el : 0;
        break;
      }
    }
    if (el > 600) {
      fprintf(stderr, "\nordo run: %s did not finish in 10 minutes\n",
              strategy);
      break;
    }
    usleep(50000);
  }
  if (tty)
    fputc('\n', stderr);
  /* The ledger checked against a serial replay. The server's journal must
   * be closed first: stop the server, keep the node. */
  if (ordo__child_stop(&srv) != 0)
    fprintf(stderr, "ordo run: ordo serve did not exit cleanly\n");
  {
    char vpath[1100];
    char *vargv[] = {(char *)self,          "verify",   "--workload",
                     (char *)workload_path, "--ledger", node.url,
                     "--data",              srv_dir,    "--family",
                     "mixed",               "--json",   NULL};
    snprintf(vpath, sizeof vpath, "%s/verify-%s.json", dir, strategy);
    int st = run_to_file(vargv, vpath);
    json_t *v = json_load_file(vpath, 0, NULL);
    r->verified = st == 0 && json_is_true(json_object_get(v, "equal"));
    r->differences = (long long)json_array_size(json_object_get(v, "differences"));
    json_decref(v);
  }
  rc = r->finished && r->verified ? ORDO_CLI_OK : ORDO_CLI_FAIL;
out:
  ordo__child_stop(&srv);
  ordo__child_stop(&node);
  curl_easy_cleanup(h);
  return rc;
}

/* --instances: the cluster run, its summary, its exit status. */
static int run_cluster(const run_args *a, const char *dir) {
  const char *url = a->postgres != NULL ? a->postgres
                                        : getenv("ORDO_POSTGRES_URL");
  ordo__cluster_run_result r;
  /* A kill each TTL + 3 s: the last one's services are taken over and
   * settled before the next (a service whose new owner dies too, before
   * its old lease ran out, waits two TTLs). */
  double every = a->kill_every_s >= 0 ? a->kill_every_s : a->ttl_ms / 1e3 + 3;
  if (url == NULL || url[0] == '\0') {
    fputs("ordo run: --instances needs a PostgreSQL database: --postgres "
          "URL or $ORDO_POSTGRES_URL\n", stderr);
    return ORDO_CLI_USAGE;
  }
  ordo__cluster_run_opts o = {
      .pg_url = url,
      .instances = a->instances,
      .services = a->gen.services,
      .batches = a->gen.batches,
      .conflict = a->gen.conflict,
      .invalid = a->gen.invalid,
      .deps = a->gen.deps,
      .seed = a->gen.seed,
      .ttl_ms = a->ttl_ms,
      .block_ms = a->block_ms,
      .kill_every_s = every,
      /* Down longer than a TTL: the others take its services over when
       * their leases expire (a restart sooner takes them back itself). */
      .restart_after_s = a->ttl_ms / 1e3 + 1,
      .sigstop = a->sigstop,
      .timeout_s = 600,
      .rate = a->rate,
      .dir = dir,
      .progress = !a->json,
  };
  if (!a->json)
    fprintf(stderr, "ordo run: %zu batches over %zu services through %d "
            "`ordo serve --cluster` instances on one PostgreSQL queue, "
            "lease TTL %.1f s, %s every %.1f s; working in %s\n",
            a->gen.batches, a->gen.services, a->instances, a->ttl_ms / 1e3,
            a->sigstop ? "a SIGSTOP (SIGCONT a TTL + 1 s later)"
                       : "a SIGKILL (restarted a TTL + 1 s later)",
            every, dir);
  int rc = ordo__cluster_run(&o, &r);
  int ok = rc == ORDO_OK && r.verify_equal && r.lost == 0 &&
           r.committed_twice == 0;
  if (a->json) {
    json_t *j = json_pack(
        "{s:i,s:I,s:b,s:f,s:f,s:I,s:I,s:I,s:I,s:b,s:I,s:f,s:s,s:f,s:i,s:b}",
        "instances", a->instances, "batches", (json_int_t)r.batches,
        "finished", r.finished, "seconds", r.seconds, "batches_per_s",
        r.per_s, "committed", (json_int_t)r.committed, "invalid",
        (json_int_t)r.invalid, "lost", (json_int_t)r.lost, "committed_twice",
        (json_int_t)r.committed_twice, "verify_equal", r.verify_equal,
        "differences", (json_int_t)r.differences, "max_stall_s",
        r.max_stall_s, "max_stall_service", r.max_stall_service, "ttl_s",
        a->ttl_ms / 1e3, "kills", r.kills, "sigstop", a->sigstop);
    char *s = json_dumps(j, JSON_COMPACT);
    printf("%s\n", s != NULL ? s : "{}");
    free(s);
    json_decref(j);
  } else {
    printf("\n%d instances: %zu batches in %.2f s (%.1f batches/s), %lld "
           "committed, %lld invalid\n", a->instances, r.batches, r.seconds,
           r.per_s, r.committed, r.invalid);
    printf("%d %s: %lld lost, %lld committed twice, verify %s; longest "
           "stall of a service %.2f s (%s), lease TTL %.1f s\n", r.kills,
           a->sigstop ? "stops" : "kills", r.lost, r.committed_twice,
           r.verify_equal ? "equal" : "DIFFERENT", r.max_stall_s,
           r.max_stall_service, a->ttl_ms / 1e3);
  }
  return ok ? ORDO_CLI_OK : ORDO_CLI_FAIL;
}

int ordo__run_main(int argc, char **argv) {
  run_args a;
  char dir[1024], self[4096], wpath[1100], tpath[1100], token[65];
  unsigned char raw[32];
  ordo_workload *w = NULL;
  json_t *items = NULL;
  run_result res[2];
  int rc, exit_code = ORDO_CLI_FAIL;
  ssize_t sl;
  FILE *f;

  if ((rc = parse_args(argc, argv, &a)) != ORDO_OK)
    return rc < 0 ? ORDO_CLI_OK : rc;
  if ((sl = readlink("/proc/self/exe", self, sizeof self - 1)) <= 0)
    return ORDO_CLI_FAIL;
  self[sl] = '\0';
  if (sodium_init() < 0 || curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
    return ORDO_CLI_FAIL;
  if (a.keep != NULL) {
    snprintf(dir, sizeof dir, "%s", a.keep);
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
      fprintf(stderr, "ordo run: cannot make %s\n", dir);
      return ORDO_CLI_USAGE;
    }
  } else {
    snprintf(dir, sizeof dir, "/tmp/ordo-run-XXXXXX");
    if (mkdtemp(dir) == NULL)
      return ORDO_CLI_FAIL;
  }
  if (a.instances > 0) {
    exit_code = run_cluster(&a, dir);
    goto out;
  }
  /* The workload, written for verify and kept as the server's items. */
  snprintf(wpath, sizeof wpath, "%s/workload.jsonl", dir);
  if ((f = fopen(wpath, "w")) == NULL ||
      ordo_workload_generate(&a.gen, f) != ORDO_OK) {
    fprintf(stderr, "ordo run: %s\n", ordo_last_error_message());
    if (f != NULL)
      fclose(f);
    goto out;
  }
  fclose(f);
  /* A token for this run only, in a file only we can read. */
  randombytes_buf(raw, sizeof raw);
  sodium_bin2hex(token, sizeof token, raw, sizeof raw);
  sodium_memzero(raw, sizeof raw);
  snprintf(tpath, sizeof tpath, "%s/token", dir);
  {
    int fd = open(tpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || write(fd, token, strlen(token)) != (ssize_t)strlen(token)) {
      if (fd >= 0)
        close(fd);
      goto out;
    }
    close(fd);
  }
  if (!a.json)
    fprintf(stderr, "ordo run: %zu batches over %zu services (%.0f%% "
            "conflicting, %.0f%% reading one identity key, %.0f%% invalid, "
            "%.0f%% with a dep), intkey and ordo-rw, block every %u ms; "
            "working in %s\n",
            a.gen.batches, a.gen.services, a.gen.conflict * 100,
            a.gen.hot_read * 100, a.gen.invalid * 100, a.gen.deps * 100,
            a.block_ms, dir);
  if (ordo_workload_load(wpath, &w) != ORDO_OK ||
      ordo__serve_items(w, &items) != ORDO_OK) {
    fprintf(stderr, "ordo run: %s\n", ordo_last_error_message());
    goto out;
  }
  rc = run_one(&a, dir, self, wpath, items, tpath, token, "serial", &res[0]);
  if (rc == ORDO_CLI_OK || res[0].finished)
    rc |= run_one(&a, dir, self, wpath, items, tpath, token, "parallel",
                  &res[1]);
  else
    memset(&res[1], 0, sizeof res[1]), res[1].strategy = "parallel";
  exit_code = rc == ORDO_CLI_OK ? ORDO_CLI_OK : ORDO_CLI_FAIL;
  if (a.json) {
    json_t *o = json_object(), *arr = json_array();
    for (int i = 0; i < 2; i++)
      json_array_append_new(
          arr, json_pack("{s:s, s:f, s:f, s:I, s:I, s:I, s:I, s:b, s:b, s:I}",
                         "strategy", res[i].strategy, "seconds",
                         res[i].seconds, "batches_per_s", res[i].per_s,
                         "p50_ms", (json_int_t)res[i].p50_ms, "p99_ms",
                         (json_int_t)res[i].p99_ms, "committed",
                         (json_int_t)res[i].committed, "invalid",
                         (json_int_t)res[i].invalid, "finished",
                         res[i].finished, "verified", res[i].verified,
                         "differences", (json_int_t)res[i].differences));
    json_object_set_new(o, "runs", arr);
    json_object_set_new(o, "batches", json_integer((json_int_t)a.gen.batches));
    json_object_set_new(o, "services",
                        json_integer((json_int_t)a.gen.services));
    json_object_set_new(o, "speedup",
                        json_real(res[0].seconds > 0 && res[1].seconds > 0
                                      ? res[0].seconds / res[1].seconds
                                      : 0));
    char *s = json_dumps(o, JSON_COMPACT);
    printf("%s\n", s);
    free(s);
    json_decref(o);
  } else {
    printf("\n%-10s %10s %12s %8s %8s %10s %8s  %s\n", "strategy",
           "makespan", "batches/s", "p50 ms", "p99 ms", "committed",
           "invalid", "verify");
    for (int i = 0; i < 2; i++) {
      char vr[48];
      if (!res[i].finished)
        snprintf(vr, sizeof vr, "not finished");
      else if (res[i].verified)
        snprintf(vr, sizeof vr, "equal");
      else
        snprintf(vr, sizeof vr, "DIFFERENT (%lld addresses)",
                 res[i].differences);
      printf("%-10s %9.2fs %12.1f %8lld %8lld %10lld %8lld  %s\n",
             res[i].strategy, res[i].seconds, res[i].per_s, res[i].p50_ms,
             res[i].p99_ms, res[i].committed, res[i].invalid, vr);
    }
    if (res[0].seconds > 0 && res[1].seconds > 0)
      printf("\nparallel finished the same workload %.1fx faster than "
             "serial; both keep every conflicting pair in submission order "
             "(verify replays it serially).\n",
             res[0].seconds / res[1].seconds);
  }
out:
  sodium_memzero(token, sizeof token);
  json_decref(items);
  ordo_workload_free(w);
  curl_global_cleanup();
  if (a.keep == NULL && ordo__rmdir_all(dir) != 0)
    fprintf(stderr, "ordo run: could not remove %s\n", dir);
  return exit_code;
}

/*
 * bench_cluster.c — `ordo bench cluster`: several `ordo serve --cluster`
 * instances on one PostgreSQL queue (src/cli/cluster_run.c runs them).
 *
 *   1. Scaling: the same signed workload through 1, 2 and 3 instances
 *      (--threads), no kills: batches/s from the first POST to the last
 *      verdict, each beside the single instance's.
 *   2. Failover: 3 instances (the largest count), one of them killed with
 *      SIGKILL every --seconds (default TTL + 3 s: 8) and started again a TTL + 1 s
 *      later (so that its services are taken over by the others when
 *      their leases expire), for the whole run: batches lost, committed
 *      twice, `ordo verify`, and the longest stall of any service, against
 *      the lease TTL (5 s, the default).
 *
 * The server: --postgres URL or $ORDO_POSTGRES_URL (a database the role
 * may create tables in; each run is a queue of its own in it). On one
 * machine the instances share its cores with the ledger and PostgreSQL,
 * so the scaling is flat there: what more instances buy is more machines.
 */
#include "bench.h"
#include "cli/drive.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CLUSTER_TTL_MS 5000u

static int one_run(const char *url, int instances, size_t batches,
                   double kill_every, ordo__cluster_run_result *r) {
  char dir[] = "/tmp/ordo-bench-cluster-XXXXXX";
  if (mkdtemp(dir) == NULL) {
    bench_error("cannot make a temporary directory");
    return ORDO_E_SYSTEM;
  }
  ordo__cluster_run_opts o = {
      .pg_url = url,
      .instances = instances,
      .services = 20,
      .batches = batches,
      .conflict = 0.3,
      .invalid = 0.02,
      .deps = 0.05,
      .seed = 11,
      .ttl_ms = CLUSTER_TTL_MS,
      .block_ms = 100,
      .kill_every_s = kill_every,
      .restart_after_s = CLUSTER_TTL_MS / 1e3 + 1, /* taken over first */
      .timeout_s = 600,
      .dir = dir,
  };
  int rc = ordo__cluster_run(&o, r);
  bench_rmdir_all(dir);
  return rc;
}

static int cluster_run(const bench_opts *opts, json_t **out) {
  const char *url = opts->postgres_url != NULL ? opts->postgres_url
                                               : getenv("ORDO_POSTGRES_URL");
  unsigned counts[BENCH_MAX_POINTS] = {1, 2, 3};
  size_t ncounts = 3;
  size_t batches = opts->batches > 0 ? (size_t)opts->batches : 3000;
  /* A kill each TTL + 3 s: the services of the last one are taken over
   * and settled before the next. */
  double kill_every = opts->seconds > 0 ? opts->seconds
                                        : CLUSTER_TTL_MS / 1e3 + 3;
  ordo__cluster_run_result base = {0}, r;
  json_t *scaling = json_array();

  if (url == NULL || url[0] == 0) {
    bench_error("cluster needs a PostgreSQL database: --postgres URL or "
                "$ORDO_POSTGRES_URL");
    return ORDO_CLI_USAGE;
  }
  if (opts->nthreads > 0) {
    ncounts = opts->nthreads;
    memcpy(counts, opts->threads, ncounts * sizeof counts[0]);
  }
  if (!opts->json)
    printf("cluster: %zu batches over 20 services, lease TTL %.1f s, "
           "%ld cores\n\n%-10s %12s %10s %8s\n", batches,
           CLUSTER_TTL_MS / 1e3, bench_cores(), "instances", "batches/s",
           "vs 1", "verify");
  for (size_t i = 0; i < ncounts; i++) {
    if (counts[i] < 1 || counts[i] > 16) {
      bench_error("cluster: 1..16 instances, not %u", counts[i]);
      json_decref(scaling);
      return ORDO_CLI_USAGE;
    }
    if (one_run(url, (int)counts[i], batches, 0, &r) != ORDO_OK) {
      bench_error("cluster: the run with %u instances did not finish",
                  counts[i]);
      json_decref(scaling);
      return ORDO_CLI_FAIL;
    }
    if (i == 0)
      base = r;
    double ratio = base.per_s > 0 ? r.per_s / base.per_s : 0;
    if (!opts->json)
      printf("%-10u %12.1f %10.2f %8s\n", counts[i], r.per_s, ratio,
             r.verify_equal ? "equal" : "DIFFERENT");
    json_array_append_new(scaling,
                          json_pack("{s:i,s:f,s:f,s:f,s:b}", "instances",
                                    (int)counts[i], "batches_per_s", r.per_s,
                                    "vs_one", ratio, "seconds", r.seconds,
                                    "verify_equal", r.verify_equal));
  }
  unsigned most = counts[ncounts - 1];
  int frc = one_run(url, (int)most, batches, kill_every, &r);
  if (!opts->json) {
    printf("\nfailover: %u instances, one killed (SIGKILL) every %.1f s and "
           "restarted %.1f s later\n", most, kill_every,
           CLUSTER_TTL_MS / 1e3 + 1);
    printf("  kills %d, batches %zu, committed %lld, invalid %lld, lost "
           "%lld, committed twice %lld, verify %s\n", r.kills, r.batches,
           r.committed, r.invalid, r.lost, r.committed_twice,
           r.verify_equal ? "equal" : "DIFFERENT");
    printf("  longest stall of a service: %.2f s (%s); TTL %.1f s, bound "
           "TTL + 2 s = %.1f s\n", r.max_stall_s, r.max_stall_service,
           CLUSTER_TTL_MS / 1e3, CLUSTER_TTL_MS / 1e3 + 2);
  }
  *out = json_pack("{s:o,s:i,s:I,s:I,s:I,s:I,s:I,s:b,s:f,s:s,s:f,s:i,s:b,"
                   "s:f,s:i}",
                   "scaling", scaling, "instances", (int)most, "batches",
                   (json_int_t)r.batches, "committed",
                   (json_int_t)r.committed, "invalid", (json_int_t)r.invalid,
                   "lost", (json_int_t)r.lost, "committed_twice",
                   (json_int_t)r.committed_twice, "verify_equal",
                   r.verify_equal, "max_stall_s", r.max_stall_s,
                   "max_stall_service", r.max_stall_service, "ttl_s",
                   CLUSTER_TTL_MS / 1e3, "kills", r.kills, "finished",
                   r.finished, "kill_every_s", kill_every, "cores",
                   (int)bench_cores());
  return frc == ORDO_OK && *out != NULL ? ORDO_CLI_OK : ORDO_CLI_FAIL;
}

const bench_def bench_cluster_def = {
    "cluster",
    "3 `ordo serve --cluster` instances on one PostgreSQL queue: batches/s "
    "with 1, 2, 3 of them, and failover under kill -9 (not in `all`)",
    "  --postgres URL cluster: the database (or $ORDO_POSTGRES_URL)\n"
    "  --threads N,.. cluster: instance counts to scale over (default "
    "1,2,3; the failover run uses the last)\n"
    "  --batches N    cluster: batches per run (default 3000)\n"
    "  --seconds S    cluster: a kill every S seconds in the failover run "
    "(default 8: the TTL + 3 s)\n",
    BENCH_FLAG_THREADS | BENCH_FLAG_BATCHES | BENCH_FLAG_BACKEND,
    cluster_run,
};

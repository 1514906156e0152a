/*
 * bench_latency.c — `ordo bench latency`: what ordo itself adds to a
 * batch's time from enqueue to COMMITTED, at a low rate, apart from the
 * ledger's wait for its next block.
 *
 * `ordo serve` and the embedded ledger run in this process on loopback
 * ports, the ledger without a block thread: the bench cuts its blocks on
 * a fixed 100 ms schedule (ordo_node_cut_block), so it knows when each
 * block is committed. One batch at a time (a signed one, as POST
 * /v1/batches takes them), one a block at most, so ~10 batches/s, far
 * below what either side can do. For each batch:
 *   t0       the POST /v1/batches is sent (it answers 202 once durable);
 *   t_arr    the ledger has received it (its POST /batches counter moved;
 *            the bench spins on it);
 *   t_cut    the block holding it is committed (the cut returns);
 *   t_seen   GET /v1/batches/{id} says COMMITTED (asked every 0.2 ms
 *            from t_cut: the poll's own granularity is in the figure).
 * overhead = (t_arr - t0) + (t_seen - t_cut): the way to the ledger
 * (journal write, submitter wake-up, encoding, POST) and the way back
 * (the status answer, the verdict journaled), without the wait for the
 * block, which belongs to the ledger.
 */
#include "bench.h"
#include "cli/drive.h"
#include "node/node.h"
#include "server/server.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LAT_DEFAULT_BATCHES 100
#define LAT_BLOCK_MS 100
#define LAT_POLL_NS 200000ull
#define LAT_TIMEOUT_NS 10000000000ull
#define LAT_TOKEN "bench-latency-token-0123456789"

typedef struct lat_env {
  char dir[64];
  ordo_node *node;
  ordo_server *srv;
  CURL *post, *get;
  char base[64];
  json_t *items; /* the signed batches, as POST /v1/batches items */
} lat_env;

static uint64_t node_posts(ordo_node *node) {
  ordo_node_stats st;
  return ordo_node_get_stats(node, &st) == ORDO_OK ? st.batches_posts : 0;
}

/* The state GET /v1/batches/{id} gives ("" when none). */
static void lat_state(lat_env *e, const char *id, char *out, size_t cap) {
  char url[256], *body = NULL;
  json_t *o;
  out[0] = '\0';
  snprintf(url, sizeof url, "%s/v1/batches/%s", e->base, id);
  if (ordo__http(e->get, url, LAT_TOKEN, NULL, &body) == 200 &&
      (o = json_loads(body, 0, NULL)) != NULL) {
    const char *s = json_string_value(json_object_get(o, "state"));
    snprintf(out, cap, "%s", s != NULL ? s : "");
    json_decref(o);
  }
  free(body);
}

/* One batch through: the three parts in ns. ORDO_OK or why not. */
static int lat_one(lat_env *e, size_t i, uint64_t *next_tick,
                   uint64_t *to_ledger, uint64_t *from_block,
                   uint64_t *total) {
  json_t *item = json_array_get(e->items, i), *one = json_array();
  const char *id = json_string_value(json_object_get(item, "id"));
  char url[256], *body, *answer = NULL, st[32];
  uint64_t posts = node_posts(e->node), t0, t_arr, t_cut, t_seen, now;
  long code;

  if (one == NULL || id == NULL || json_array_append(one, item) != 0 ||
      (body = json_dumps(one, JSON_COMPACT)) == NULL) {
    json_decref(one);
    return ORDO_E_NOMEM;
  }
  json_decref(one);
  snprintf(url, sizeof url, "%s/v1/batches", e->base);
  t0 = bench_now_ns();
  code = ordo__http(e->post, url, LAT_TOKEN, body, &answer);
  free(body);
  free(answer);
  if (code != 202) {
    bench_error("latency: POST /v1/batches answered %ld", code);
    return ORDO_E_IO;
  }
  while (node_posts(e->node) == posts) {
    if (bench_now_ns() - t0 > LAT_TIMEOUT_NS) {
      bench_error("latency: batch %s never reached the ledger", id);
      return ORDO_E_TIMEOUT;
    }
  }
  t_arr = bench_now_ns();
  /* The next block on the schedule (a batch that arrived after this
   * tick's cut waits for the next one, as with a block thread). */
  while (*next_tick <= t_arr)
    *next_tick += (uint64_t)LAT_BLOCK_MS * 1000000ull;
  bench_sleep_until(*next_tick);
  if (ordo_node_cut_block(e->node, NULL) != ORDO_OK) {
    bench_error("latency: cutting a block: %s", ordo_last_error_message());
    return ORDO_E_IO;
  }
  t_cut = bench_now_ns();
  for (;;) {
    lat_state(e, id, st, sizeof st);
    now = bench_now_ns();
    if (strcmp(st, "COMMITTED") == 0)
      break;
    if (strcmp(st, "INVALID") == 0 || now - t_cut > LAT_TIMEOUT_NS) {
      bench_error("latency: batch %s is %s after its block", id,
                  st[0] ? st : "unknown");
      return ORDO_E_TIMEOUT;
    }
    bench_sleep_until(now + LAT_POLL_NS);
  }
  t_seen = now;
  *to_ledger = t_arr - t0;
  *from_block = t_seen - t_cut;
  *total = t_seen - t0;
  return ORDO_OK;
}

static int lat_setup(lat_env *e, size_t n) {
  ordo_node_options no;
  ordo_server_options so;
  char path[128], url[64];
  int rc;

  snprintf(e->dir, sizeof e->dir, "/tmp/ordo-bench-latency-XXXXXX");
  if (mkdtemp(e->dir) == NULL)
    return ORDO_E_IO;
  /* n + 1 batches (one to warm up) over 50 services, none conflicting. */
  if ((rc = bench_signed_items(50, n + 1, 9, &e->items)) != ORDO_OK)
    return rc;

  ordo_node_options_init(&no);
  snprintf(path, sizeof path, "%s/node", e->dir);
  no.data_dir = path;
  no.port = 0;
  no.block_ms = 0; /* the bench cuts */
  no.seed = 7;
  if ((rc = ordo_node_start(&no, &e->node)) != ORDO_OK)
    return rc;
  snprintf(url, sizeof url, "http://127.0.0.1:%d", ordo_node_port(e->node));

  ordo_server_options_init(&so);
  snprintf(path, sizeof path, "%s/srv", e->dir);
  so.port = 0;
  so.token = LAT_TOKEN;
  so.data_dir = path;
  so.ledger_url = url;
  if ((rc = ordo_server_start(&so, &e->srv)) != ORDO_OK)
    return rc;
  snprintf(e->base, sizeof e->base, "http://127.0.0.1:%d",
           ordo_server_port(e->srv));
  if ((e->post = curl_easy_init()) == NULL ||
      (e->get = curl_easy_init()) == NULL)
    return ORDO_E_NOMEM;
  return ORDO_OK;
}

static void lat_teardown(lat_env *e) {
  if (e->post != NULL)
    curl_easy_cleanup(e->post);
  if (e->get != NULL)
    curl_easy_cleanup(e->get);
  if (e->srv != NULL)
    (void)ordo_server_stop(e->srv);
  if (e->node != NULL)
    (void)ordo_node_stop(e->node);
  json_decref(e->items);
  if (e->dir[0] != '\0')
    bench_rmdir_all(e->dir);
}

static int latency_run(const bench_opts *opts, json_t **out) {
  size_t n = opts->batches > 0 ? (size_t)opts->batches : LAT_DEFAULT_BATCHES;
  uint64_t *to_ledger = calloc(n, sizeof(uint64_t)),
           *from_block = calloc(n, sizeof(uint64_t)),
           *overhead = calloc(n, sizeof(uint64_t)),
           *total = calloc(n, sizeof(uint64_t)), next_tick, a, b, c;
  lat_env e;
  int rc, cli = ORDO_CLI_FAIL;

  memset(&e, 0, sizeof e);
  if (to_ledger == NULL || from_block == NULL || overhead == NULL ||
      total == NULL) {
    bench_error("latency: out of memory");
    goto out;
  }
  if ((rc = lat_setup(&e, n)) != ORDO_OK) {
    bench_error("latency: cannot start the ledger and ordo serve: %s (%s)",
                ordo_errname(rc), ordo_last_error_message());
    goto out;
  }
  next_tick = bench_now_ns();
  /* One through first, not counted: connections, the first pages. */
  if (lat_one(&e, n, &next_tick, &a, &b, &c) != ORDO_OK)
    goto out;
  for (size_t i = 0; i < n; i++) {
    if (lat_one(&e, i, &next_tick, &to_ledger[i], &from_block[i],
                &total[i]) != ORDO_OK)
      goto out;
    overhead[i] = to_ledger[i] + from_block[i];
  }
  {
    bench_stats so, sl, sb, st;
    json_t *o;
    bench_stats_of(overhead, n, &so);
    bench_stats_of(to_ledger, n, &sl);
    bench_stats_of(from_block, n, &sb);
    bench_stats_of(total, n, &st);
    if (!opts->json) {
      printf("ordo bench latency: %zu batches one at a time through ordo "
             "serve and the embedded ledger (blocks cut every %d ms)\n"
             "overhead = enqueue -> ledger received + block committed -> "
             "COMMITTED seen (polled every %.1f ms)\n\n",
             n, LAT_BLOCK_MS, (double)LAT_POLL_NS / 1e6);
      printf("%-34s %9s %9s %9s\n", "", "p50 ms", "p99 ms", "max ms");
      printf("%-34s %9.2f %9.2f %9.2f\n", "overhead", so.p50_us / 1e3,
             so.p99_us / 1e3, so.max_us / 1e3);
      printf("%-34s %9.2f %9.2f %9.2f\n", "  enqueue -> ledger received",
             sl.p50_us / 1e3, sl.p99_us / 1e3, sl.max_us / 1e3);
      printf("%-34s %9.2f %9.2f %9.2f\n", "  block committed -> COMMITTED",
             sb.p50_us / 1e3, sb.p99_us / 1e3, sb.max_us / 1e3);
      printf("%-34s %9.2f %9.2f %9.2f\n", "enqueue -> COMMITTED (all)",
             st.p50_us / 1e3, st.p99_us / 1e3, st.max_us / 1e3);
    }
    o = json_pack("{s:I, s:i, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, "
                  "s:f}",
                  "batches", (json_int_t)n, "block_ms", LAT_BLOCK_MS,
                  "poll_ms", (double)LAT_POLL_NS / 1e6, "overhead_p50_ms",
                  so.p50_us / 1e3, "overhead_p99_ms", so.p99_us / 1e3,
                  "overhead_max_ms", so.max_us / 1e3, "to_ledger_p50_ms",
                  sl.p50_us / 1e3, "to_ledger_p99_ms", sl.p99_us / 1e3,
                  "from_block_p50_ms", sb.p50_us / 1e3, "from_block_p99_ms",
                  sb.p99_us / 1e3, "total_p50_ms", st.p50_us / 1e3,
                  "total_p99_ms", st.p99_us / 1e3);
    if (o == NULL) {
      bench_error("latency: out of memory");
      goto out;
    }
    *out = o;
    cli = ORDO_CLI_OK;
  }
out:
  lat_teardown(&e);
  free(to_ledger);
  free(from_block);
  free(overhead);
  free(total);
  return cli;
}

const bench_def bench_latency_def = {
    "latency",
    "what ordo adds to enqueue -> COMMITTED at a low rate, apart from the "
    "wait for the block (ordo serve and the embedded ledger)",
    "  --batches N    latency: batches, one at a time (default 100)\n",
    BENCH_FLAG_BATCHES,
    latency_run,
};

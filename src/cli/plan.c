/*
 * plan.c — `ordo plan`: the command line of the model ledger (queue.h,
 * ordo_plan_run) and the printing of its rounds as text or JSON.
 */
#include "cli/cli.h"
#include "queue/queue.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static void plan_usage(FILE *f) {
  fputs("usage: ordo plan FILE [--strategy serial|parallel|unconstrained]\n"
        "                      [--mode rounds|continuous] [--granularity N]\n"
        "                      [--explain] [--json]\n"
        "\n"
        "Run the submission queuer on a model ledger where every submitted\n"
        "batch finishes at the end of its round, and print the rounds.\n"
        "FILE is JSON Lines, one batch per line (see DESIGN.md).\n"
        "\n"
        "  --strategy S     parallel (lock table, default), serial (one in\n"
        "                   flight per service), unconstrained (no locks)\n"
        "  --mode M         continuous (default) or rounds\n"
        "  --granularity N  compare addresses on their first N characters;\n"
        "                   0: everything conflicts; -1 or 'unlimited'\n"
        "                   (default)\n"
        "  --explain        after each round, why each waiting batch waits\n"
        "  --json           {\"rounds\":[[ids],...],\"invalid\":[ids]}\n"
        "  -h, --help       show this help\n",
        f);
}


static int print_json(FILE *out, const ordo_workload *w, const ordo_plan *p) {
  json_t *root = json_object(), *rounds = json_array(), *inv = json_array();
  char *s;
  size_t r, i;
  int rc = ORDO_E_NOMEM;

  if (root == NULL || rounds == NULL || inv == NULL)
    goto done;
  for (r = 0; r < p->nrounds; r++) {
    json_t *a = json_array();
    if (a == NULL || json_array_append_new(rounds, a))
      goto done;
    for (i = p->round_start[r]; i < p->round_start[r + 1]; i++)
      if (json_array_append_new(a, json_string(w->batches[p->order[i]].id)))
        goto done;
  }
  for (i = 0; i < p->ninvalid; i++)
    if (json_array_append_new(inv, json_string(w->batches[p->invalid[i]].id)))
      goto done;
  if (json_object_set(root, "rounds", rounds) ||
      json_object_set(root, "invalid", inv))
    goto done;
  if ((s = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER)) == NULL)
    goto done;
  fprintf(out, "%s\n", s);
  free(s);
  rc = ORDO_OK;
done:
  json_decref(rounds);
  json_decref(inv);
  json_decref(root);
  return rc;
}

static void print_text(FILE *out, const ordo_workload *w, const ordo_plan *p) {
  size_t r, i;
  for (r = 0; r < p->nrounds; r++) {
    fprintf(out, "round %zu:", r + 1);
    for (i = p->round_start[r]; i < p->round_start[r + 1]; i++)
      fprintf(out, " %s", w->batches[p->order[i]].id);
    fputc('\n', out);
    if (p->explain != NULL && p->explain[r] != NULL) {
      const char *line = p->explain[r], *nl;
      while ((nl = strchr(line, '\n')) != NULL) {
        fprintf(out, "  %.*s\n", (int)(nl - line), line);
        line = nl + 1;
      }
    }
  }
  if (p->nstuck > 0) {
    fputs("stuck:", out);
    for (i = 0; i < p->nstuck; i++)
      fprintf(out, " %s", w->batches[p->stuck[i]].id);
    fputc('\n', out);
  }
  fprintf(out, "%zu rounds, %zu committed, %zu invalid\n", p->nrounds,
          w->nbatches - p->ninvalid - p->nstuck, p->ninvalid);
}

int ordo__plan_cli(int argc, char **argv, FILE *out, FILE *err) {
  ordo_queue_options opt;
  const char *path = NULL;
  int explain = 0, json = 0, i, rc;
  ordo_workload *w = NULL;
  ordo_plan *p = NULL;

  ordo_queue_options_init(&opt);
  for (i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (ordo__cli_is_help(a)) {
      plan_usage(out);
      return ORDO_CLI_OK;
    } else if (strcmp(a, "--explain") == 0) {
      explain = 1;
    } else if (strcmp(a, "--json") == 0) {
      json = 1;
    } else if (strcmp(a, "--strategy") == 0 && v != NULL) {
      if (ordo_queue_strategy_parse(v, &opt.strategy) != ORDO_OK)
        goto bad_value;
      i++;
    } else if (strcmp(a, "--mode") == 0 && v != NULL) {
      if (ordo_queue_mode_parse(v, &opt.mode) != ORDO_OK)
        goto bad_value;
      i++;
    } else if (strcmp(a, "--granularity") == 0 && v != NULL) {
      char *end;
      long g;
      if (strcmp(v, "unlimited") == 0) {
        g = -1;
      } else {
        errno = 0;
        g = strtol(v, &end, 10);
        if (errno || end == v || *end != '\0' || g < -1 || g > 1000000)
          goto bad_value;
      }
      opt.granularity = (int)g;
      i++;
    } else if (a[0] == '-' && a[1] != '\0') {
      return ordo__cli_unknown(err, "ordo plan", a, plan_usage);
    } else if (path == NULL) {
      path = a;
    } else {
      fprintf(err, "ordo plan: one FILE only ('%s')\n", a);
      return ORDO_CLI_USAGE;
    }
    continue;
  bad_value:
    return ordo__cli_bad_value(err, "ordo plan", v, a);
  }
  if (path == NULL) {
    fputs("ordo plan: missing FILE\n", err);
    plan_usage(err);
    return ORDO_CLI_USAGE;
  }
  if ((rc = ordo_workload_load(path, &w))) {
    fprintf(err, "ordo plan: %s\n", ordo_last_error_message());
    return rc == ORDO_E_NOMEM ? ORDO_CLI_FAIL : ORDO_CLI_USAGE;
  }
  if ((rc = ordo_plan_run(w, &opt, explain && !json, &p))) {
    fprintf(err, "ordo plan: %s\n", ordo_last_error_message());
    ordo_workload_free(w);
    return ORDO_CLI_FAIL;
  }
  if (json)
    rc = print_json(out, w, p);
  else
    print_text(out, w, p);
  if (rc)
    fprintf(err, "ordo plan: out of memory\n");
  else if (p->nstuck > 0)
    fprintf(err, "ordo plan: %zu batches never finished (dep cycle)\n",
            p->nstuck);
  rc = rc || p->nstuck > 0 ? ORDO_CLI_FAIL : ORDO_CLI_OK;
  ordo_plan_free(p);
  ordo_workload_free(w);
  return rc;
}

int ordo__plan_main(int argc, char **argv) {
  return ordo__plan_cli(argc, argv, stdout, stderr);
}

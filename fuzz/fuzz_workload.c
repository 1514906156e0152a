/*
 * fuzz_workload.c — libFuzzer target for ordo_workload_parse and the planner.
 *
 * Arbitrary bytes are parsed as a workload file. Properties checked:
 *   - failure: ORDO_E_JSON, ORDO_E_INVAL or ORDO_E_NOMEM, with a message
 *     that names the line ("line N: ...") unless out of memory;
 *   - success: the plan runs to its end (it must terminate), every batch is
 *     taken at most once, and none is left unfinished (files cannot hold dep
 *     cycles), in each strategy.
 * ASan/UBSan catch memory and arithmetic errors on the way.
 */
#include "ordo.h"
#include "queue/queue.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  ordo_workload *w = NULL;
  int rc = ordo_workload_parse((const char *)data, size, &w);
  if (rc != ORDO_OK) {
    if (rc != ORDO_E_JSON && rc != ORDO_E_INVAL && rc != ORDO_E_NOMEM)
      abort();
    if (w != NULL)
      abort();
    if (rc != ORDO_E_NOMEM &&
        strncmp(ordo_last_error_message(), "line ", 5) != 0)
      abort();
    return 0;
  }
  for (int st = 0; st < 3; st++) {
    ordo_queue_options opt;
    ordo_plan *p = NULL;
    ordo_queue_options_init(&opt);
    opt.strategy = (ordo_queue_strategy)st;
    opt.mode = size % 2 ? ORDO_QUEUE_ROUNDS : ORDO_QUEUE_CONTINUOUS;
    opt.granularity = (int)(size % 5) - 1;
    if (ordo_plan_run(w, &opt, st == 0, &p) != ORDO_OK)
      continue; /* out of memory only */
    if (p->nstuck != 0 || p->round_start[p->nrounds] + p->ninvalid < w->nbatches)
      abort();
    ordo_plan_free(p);
  }
  ordo_workload_free(w);
  return 0;
}

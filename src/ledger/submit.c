/*
 * submit.c — the run of `ordo submit` (submit.h; its command line is in
 * src/cli/submit.c): a workload file through the durable queuer to a
 * Sawtooth ledger, until every batch is final.
 *
 * Steps: parse the file; open (or create) the journal in DIR; turn every
 * line not journaled yet into a signed batch (with --key-file the
 * operator's key, one a permissioned network allow-lists; else a key made
 * for this run, kept in memory only: the journal holds the signed batches,
 * so a rerun never needs it; either way its public key is printed) and
 * enqueue it, locked by its transactions' inputs and outputs and known by
 * its batch id (ordo_ledger_batch_footprint); then run the submitter
 * against the ledger, showing progress, until nothing is left in flight or
 * waiting.
 * Killed and run again on the same DIR, it skips what is journaled and
 * finishes the job: the journal decides what was sent.
 */
#include "ledger/submit.h"
#include "runtime/runtime.h"
#include "storage/storage.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int ordo__ledger_session_open(ordo__ledger_session *s, const char *dir,
                              const char *url,
                              const ordo_journal_options *jopt) {
  ordo_ledger_client_options copt;
  char path[4096];
  int rc;

  memset(s, 0, sizeof *s);
  if (dir != NULL &&
      (rc = ordo__storage_data_path(dir, "queue", path, sizeof path)) != ORDO_OK)
    return rc;
  if ((s->ctx = ordo_ctx_new(NULL)) == NULL)
    return ordo_last_error();
  ordo_ledger_client_options_init(&copt);
  copt.url = url;
  if ((dir != NULL &&
       (rc = ordo_journal_open(s->ctx, path, jopt, &s->j)) != ORDO_OK) ||
      (rc = ordo_ledger_client_new(s->ctx, &copt, &s->client)) != ORDO_OK)
    return rc;
  return ORDO_OK;
}

int ordo__ledger_session_close(ordo__ledger_session *s) {
  int rc = ORDO_OK;
  ordo_ledger_client_free(s->client);
  if (s->j != NULL)
    rc = ordo_journal_close(s->j);
  ordo_ctx_free(s->ctx);
  memset(s, 0, sizeof *s);
  return rc;
}

static double now_s(void) { return (double)ordo__now_ns() / 1e9; }

/* The queue batch of a converted line, as every Sawtooth batch is queued:
 * locked by what its transactions may read and write (inputs, outputs)
 * besides what the line says, known by its batch id. *bl and *fp keep the
 * strings (the caller frees them). */
static int line_spec(const ordo_workload_batch *wb, const ordo_ledger_built *b,
                     ordo_ledger_batchlist **bl, ordo_ledger_footprint *fp,
                     ordo_queue_batch_spec *sp) {
  ordo_ledger_built_spec(wb, b, sp);
  return ordo_ledger_spec_from_payload(sp, 0, bl, fp);
}

/* Enqueue every line the journal does not have yet, 256 in flight, signed
 * with the key in key_file (NULL: a new random key). The public key is
 * printed before the first batch is signed, so it can be allow-listed. */
static int enqueue_workload(ordo_journal *j, const ordo_workload *w,
                            ordo_ledger_family fam, const char *key_file,
                            size_t *added) {
  ordo_ledger_signer *signer = NULL;
  ordo_ledger_conv *conv = NULL;
  ordo_op *ring[256] = {0};
  size_t i;
  int rc, said = 0;

  *added = 0;
  if (key_file != NULL &&
      (rc = ordo_ledger_signer_from_file(key_file, &signer)) != ORDO_OK) {
    /* A bad key file is bad input (exit 2), whatever is wrong with it. */
    rc = ordo__set_last_error(ORDO_E_INVAL, "%s", ordo_last_error_message());
    goto done;
  }
  if ((signer == NULL &&
       (rc = ordo_ledger_signer_new(NULL, &signer)) != ORDO_OK) ||
      (rc = ordo_ledger_conv_new(fam, signer, &conv)) != ORDO_OK)
    goto done;
  for (i = 0; i <= w->nbatches && rc == ORDO_OK; i++) {
    size_t slot = i % 256;
    if (ring[slot] != NULL) {
      if ((rc = ordo_op_wait(ring[slot], -1)) != ORDO_OK)
        ordo__set_last_error(rc, "enqueue: %s", ordo_op_message(ring[slot]));
      ordo_op_release(ring[slot]);
      ring[slot] = NULL;
    }
    if (i == w->nbatches || rc != ORDO_OK)
      break;
    const ordo_workload_batch *wb = &w->batches[i];
    if (ordo_journal_batch_status(j, wb->id, NULL, NULL, NULL) == ORDO_OK)
      continue; /* journaled by an earlier run */
    if (!said) {
      if (key_file != NULL)
        fprintf(stderr, "ordo submit: signing as %s (from %s)\n",
                ordo_ledger_signer_public_key(signer), key_file);
      else
        fprintf(stderr, "ordo submit: signing with a new random key %s; "
                "pass --key-file to use an allow-listed key\n",
                ordo_ledger_signer_public_key(signer));
      said = 1;
    }
    ordo_ledger_built b;
    if ((rc = ordo_ledger_conv_batch(conv, wb, &b)) != ORDO_OK)
      break;
    ordo_queue_batch_spec sp;
    ordo_ledger_batchlist *bl = NULL;
    ordo_ledger_footprint fp = {0};
    if ((rc = line_spec(wb, &b, &bl, &fp, &sp)) == ORDO_OK)
      ring[slot] = ordo_journal_enqueue(j, &sp); /* copies everything */
    ordo_ledger_footprint_clear(&fp);
    ordo_ledger_batchlist_free(bl);
    ordo_ledger_built_clear(&b);
    if (rc != ORDO_OK)
      break;
    if (ring[slot] == NULL)
      rc = ordo__set_last_error(ORDO_E_NOMEM, NULL);
    else
      (*added)++;
  }
  /* Whatever is still in flight after an error. */
  for (i = 0; i < 256; i++)
    if (ring[i] != NULL) {
      (void)ordo_op_wait(ring[i], -1);
      ordo_op_release(ring[i]);
    }
done:
  ordo_ledger_conv_free(conv);
  ordo_ledger_signer_free(signer);
  return rc;
}

typedef struct counts {
  long long queued, waiting, in_flight, unknown, committed, invalid;
} counts;

static void totals(ordo_journal *j, counts *c) {
  ordo_journal_totals t;
  (void)ordo_journal_get_totals(j, &t); /* zeroed if it cannot */
  c->queued = (long long)t.queued;
  c->waiting = (long long)t.waiting;
  c->in_flight = (long long)t.in_flight;
  c->unknown = (long long)t.unknown;
  c->committed = (long long)t.committed;
  c->invalid = (long long)t.invalid;
}

/* "20:41:03" local time of Unix ms. */
static const char *clock_of(unsigned long long ms, char *buf, size_t cap) {
  time_t tt = (time_t)(ms / 1000);
  struct tm tm;
  if (localtime_r(&tt, &tm) == NULL || strftime(buf, cap, "%H:%M:%S", &tm) == 0)
    snprintf(buf, cap, "?");
  return buf;
}

/* What the user is told about the ledger: the first failure at once with
 * its cause, then at most one line of a kind every 5 s while it lasts, and
 * one line when it answers again. Called on the stepping thread. */
typedef struct ledger_say {
  int tty;
  double last[3]; /* now_s() of the last line of each event, 0: none */
} ledger_say;

static void say_ledger_error(void *ud, ordo_submitter_event ev,
                             const ordo_submitter_progress *p) {
  ledger_say *say = ud;
  double t = now_s();
  char when[16];
  const char *cr = say->tty ? "\r\033[K" : "";
  if (ev == ORDO_SUBMITTER_EVENT_UP) {
    fprintf(stderr, "%sordo submit: the ledger answers again\n", cr);
    say->last[ORDO_SUBMITTER_EVENT_DOWN] = 0;
    return;
  }
  if (say->last[ev] != 0 && t - say->last[ev] < 5.0)
    return;
  say->last[ev] = t;
  if (ev == ORDO_SUBMITTER_EVENT_DOWN)
    fprintf(stderr, "%sordo submit: ledger unreachable since %s: %s\n", cr,
            clock_of(p->down_since_ms, when, sizeof when), p->last_error);
  else
    fprintf(stderr, "%sordo submit: the ledger refused a request: %s\n", cr,
            p->last_error);
}

int ordo__submit_run(const ordo__submit_opts *o) {
  ordo__submit_opts a = *o;
  ordo_ledger_family fam;
  ordo_workload *w = NULL;
  ordo__ledger_session ls = {0};
  ordo_ledger_sawtooth_port *port = NULL;
  ordo_submitter *sub = NULL;
  ordo_journal_options jopt;
  ordo_submitter_options sopt;
  ledger_say say = {0};
  size_t added = 0;
  int rc, exit_code = ORDO__RUN_FAILED, tty = isatty(1);
  double t0, last_print = 0;
  counts c;

  if (ordo_ledger_family_parse(a.family, &fam) != ORDO_OK) {
    fprintf(stderr, "ordo submit: %s\n", ordo_last_error_message());
    return ORDO__RUN_BAD_INPUT;
  }
  if ((rc = ordo_workload_load(a.file, &w)) != ORDO_OK) {
    fprintf(stderr, "ordo submit: %s\n", ordo_last_error_message());
    return rc == ORDO_E_NOMEM ? ORDO__RUN_FAILED : ORDO__RUN_BAD_INPUT;
  }
  if (!ordo_storage_is_postgres_uri(a.dir) && mkdir(a.dir, 0700) != 0 &&
      access(a.dir, W_OK) != 0) {
    fprintf(stderr, "ordo submit: cannot use %s as the data directory\n",
            a.dir);
    ordo_workload_free(w);
    return ORDO__RUN_BAD_INPUT;
  }
  t0 = now_s();
  ordo_journal_options_init(&jopt);
  jopt.queue = a.qopt;
  jopt.create = 1;
  ordo_submitter_options_init(&sopt);
  if (a.poll_ms > 0)
    sopt.repoll_ms = (unsigned)a.poll_ms;
  if (a.max_submit_bytes > 0)
    sopt.max_submit_bytes = (size_t)a.max_submit_bytes;
  sopt.give_up_ms = (unsigned)(a.timeout_s * 1000.0);
  /* A run against a ledger that takes the connection and never answers
   * says so within 2 s: the stall is noticed within 200 ms of this. */
  sopt.stall_ms = 1500;
  sopt.on_ledger_error = say_ledger_error;
  sopt.on_ledger_error_ud = &say;
  /* A context that cannot start is never ORDO_E_INVAL: a failure. */
  if ((rc = ordo__ledger_session_open(&ls, a.dir, a.url, &jopt)) != ORDO_OK ||
      (rc = ordo_ledger_sawtooth_port_new(ls.ctx, ls.client, &port)) !=
          ORDO_OK ||
      (rc = ordo_submitter_new(ls.j, ordo_ledger_sawtooth_port_get(port),
                               &sopt, &sub)) != ORDO_OK ||
      (rc = enqueue_workload(ls.j, w, fam, a.key_file, &added)) != ORDO_OK) {
    fprintf(stderr, "ordo submit: %s\n", ordo_last_error_message());
    exit_code = rc == ORDO_E_INVAL ? ORDO__RUN_BAD_INPUT : ORDO__RUN_FAILED;
    goto out;
  }
  if (!a.json)
    fprintf(stderr, "ordo submit: %zu batches in the file, %zu journaled now, "
            "%zu by an earlier run\n", w->nbatches, added, w->nbatches - added);
  say.tty = tty;
  for (;;) {
    int idle = 0;
    double t;
    if ((rc = ordo_submitter_step(sub, &idle)) != ORDO_OK) {
      if (tty)
        fputc('\n', stderr);
      fprintf(stderr, "ordo submit: %s\n", ordo_last_error_message());
      goto out;
    }
    totals(ls.j, &c);
    t = now_s();
    if (!a.json && (t - last_print >= (tty ? 0.2 : 2.0) || idle)) {
      double el = t - t0;
      ordo_submitter_progress p;
      char down[96] = "";
      ordo_submitter_get_progress(sub, &p);
      if (p.ledger_down)
        snprintf(down, sizeof down, "  ledger unreachable since %s (%.0f s)",
                 clock_of(p.down_since_ms, (char[16]){0}, 16),
                 (double)(ordo__wall_ms() - p.down_since_ms) / 1000.0);
      fprintf(stderr, "%s%lld queued  %lld waiting  %lld in flight  "
              "%lld committed  %lld invalid  %.0f batches/s%s%s",
              tty ? "\r" : "", c.queued, c.waiting, c.in_flight + c.unknown,
              c.committed, c.invalid,
              el > 0 ? (double)(c.committed + c.invalid) / el : 0.0, down,
              tty ? "\033[K" : "\n");
      last_print = t;
    }
    if (idle)
      break;
    /* Until a status answer (or, at most, the next status line). */
    (void)ordo_submitter_wait(sub, tty ? 200 : 2000);
  }
  if (!a.json && tty)
    fputc('\n', stderr);
  {
    double el = now_s() - t0;
    long long total = c.queued + c.waiting + c.in_flight + c.unknown +
                      c.committed + c.invalid;
    int done = c.queued + c.waiting + c.in_flight + c.unknown == 0;
    ordo_submitter_progress p;
    ordo_submitter_get_progress(sub, &p);
    if (a.json)
      printf("{\"batches\":%lld,\"committed\":%lld,\"invalid\":%lld,"
             "\"unfinished\":%lld,\"seconds\":%.3f,\"batches_per_s\":%.1f,"
             "\"sent\":%llu,\"resubmitted\":%llu,\"refused\":%llu,"
             "\"failed_calls\":%llu,\"status_requests\":%llu}\n",
             total, c.committed, c.invalid, total - c.committed - c.invalid,
             el, el > 0 ? (double)(c.committed + c.invalid) / el : 0.0,
             p.submitted, p.resubmitted, p.refused,
             p.submit_errors + p.status_errors, p.status_calls);
    else
      printf("%lld batches, %lld committed, %lld invalid, %.2f s, "
             "%.1f batches/s, %llu sent again, %llu failed calls%s\n",
             total, c.committed, c.invalid, el,
             el > 0 ? (double)(c.committed + c.invalid) / el : 0.0,
             p.resubmitted, p.submit_errors + p.status_errors,
             done ? "" : " (some batches wait: a halted service or a dep)");
    exit_code = done ? ORDO__RUN_DONE : ORDO__RUN_FAILED;
  }
out:
  ordo_submitter_free(sub);
  ordo_ledger_sawtooth_port_free(port);
  if (ordo__ledger_session_close(&ls) != ORDO_OK) {
    fprintf(stderr, "ordo submit: closing the journal: %s\n",
            ordo_last_error_message());
    exit_code = ORDO__RUN_FAILED;
  }
  ordo_workload_free(w);
  return exit_code;
}

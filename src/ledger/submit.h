/*
 * submit.h — the runs behind `ordo submit` and `ordo verify` (submit.c,
 * verify.c), taking typed options; their command lines are read in
 * src/cli/submit.c and src/cli/verify.c. Internal: not in include/.
 *
 * Both print what the user is told (progress and messages on stderr, the
 * summary on stdout, prefixed "ordo submit: " / "ordo verify: ") and return
 * how the run ended, which the command exits with.
 */
#ifndef ORDO_LEDGER_SUBMIT_H
#define ORDO_LEDGER_SUBMIT_H

#include "ledger/ledger.h"

/* How a run ended; the values are the commands' exit statuses. */
enum {
  ORDO__RUN_DONE = 0,     /* submit: every batch final; verify: equal */
  ORDO__RUN_FAILED = 1,   /* the work failed, or verify found differences */
  ORDO__RUN_BAD_INPUT = 2 /* bad options or input; little or nothing ran */
};

/* What both runs open: a context, the journal DIR/queue.db (with jopt) and
 * a REST client of url. */
typedef struct ordo__ledger_session {
  ordo_ctx *ctx;
  ordo_journal *j;
  ordo_ledger_client *client;
} ordo__ledger_session;

/* Open s (zeroed first): ORDO_OK, or the failing call's code with the last
 * error set; what was opened is left for ordo__ledger_session_close. */
int ordo__ledger_session_open(ordo__ledger_session *s, const char *dir,
                              const char *url,
                              const ordo_journal_options *jopt);

/* Free the client, close the journal and free the context: the journal
 * close's code (ORDO_OK when there was none). */
int ordo__ledger_session_close(ordo__ledger_session *s);

/* `ordo submit`: every string is borrowed for the call. */
typedef struct ordo__submit_opts {
  const char *file;     /* the workload (JSON Lines) */
  const char *url;      /* the ledger's REST API */
  const char *dir;      /* the data directory: DIR/queue.db (made if missing) */
  const char *family;   /* ordo-rw, intkey or mixed */
  const char *key_file; /* the signing key; NULL: a new random one */
  ordo_queue_options qopt; /* strategy and mode of the journal's queue */
  long poll_ms;            /* shortest pause between status polls; 0: default */
  double timeout_s;        /* give up after S s of no ledger; 0: never */
  long long max_submit_bytes; /* bytes per POST /batches; 0: default */
  int json;                   /* the summary as JSON */
} ordo__submit_opts;

/* Journal the workload in dir and submit it until every batch is final
 * (see `ordo submit --help`): ORDO__RUN_*. */
int ordo__submit_run(const ordo__submit_opts *o);

/* `ordo verify`: every string is borrowed for the call. */
typedef struct ordo__verify_opts {
  const char *file;   /* the workload that was submitted */
  const char *url;    /* the ledger's REST API */
  const char *dir;    /* the data directory of `ordo submit` */
  const char *family; /* ordo-rw, intkey or mixed, as submitted */
  int json;           /* the report as JSON */
  /* NULL: the payloads come from the journal in dir. Else from this
   * (`ordo verify --cluster`: the shared queue's), and dir is not read:
   * ORDO_OK and a malloc'd *pl, or ORDO_E_NOT_FOUND (never enqueued). */
  int (*payload)(void *ud, const char *id, unsigned char **pl, size_t *len);
  void *payload_ud;
} ordo__verify_opts;

/* Replay the journaled batches serially and compare with the ledger's state
 * (see `ordo verify --help`): ORDO__RUN_DONE when equal. */
int ordo__verify_run(const ordo__verify_opts *o);

#endif /* ORDO_LEDGER_SUBMIT_H */

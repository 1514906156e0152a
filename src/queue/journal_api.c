/*
 * journal_api.c — opening and closing a journal (journal.c says how the
 * files divide the journal).
 */
#include "queue/journal_int.h"

/* ------------------------------------------------------------------------ */
/* Public API                                                                */
/* ------------------------------------------------------------------------ */

void ordo_journal_options_init(ordo_journal_options *opt) {
  memset(opt, 0, sizeof(*opt));
  ordo_queue_options_init(&opt->queue);
}

static void journal_free(ordo_journal *j) {
  if (j->lock_fd >= 0)
    close(j->lock_fd); /* releases the flock */
  ordo__j_unknown_clear(j);
  ordo__j_ahead_drop(j);
  free(j->stash);
  ordo_queue_free(j->q);
  ordo__idset_clear(&j->gone_ids);
  ordo__idset_clear(&j->gone_lids);
  ordo__idlog_clear(&j->ids_log);
  ordo__idlog_clear(&j->lids_log);
  ORDO__FREE_ALL(j->segs, j->untagged);
  ordo__j_strlist_free(&j->evict, &j->nevict, &j->capevict);
  ordo__j_strlist_free(&j->fin_pending, &j->nfin_pending, &j->capfin_pending);
  for (size_t i = 0; i < j->nold_q; i++)
    ordo_queue_free(j->old_q[i]);
  free(j->old_q);
  for (size_t i = 0; i < j->nredo; i++)
    free(j->redo[i]);
  ORDO__FREE_ALL(j->redo, j->failed_message);
  pthread_cond_destroy(&j->idle_cv);
  pthread_mutex_destroy(&j->mu);
  free(j);
}

static int storage_close(ordo_storage *st) {
  ordo_storage_req req;
  memset(&req, 0, sizeof(req));
  req.opcode = ORDO_STORAGE_CLOSE;
  int rc = ordo__j_storage_call(st, &req);
  ordo_storage_req_clear_output(&req);
  return rc;
}

/* The format marker: set on create, checked on open. */
static int journal_meta(ordo_journal *j, int created) {
  ordo_storage_req req;
  int rc;
  memset(&req, 0, sizeof(req));
  req.opcode = created ? ORDO_STORAGE_META_SET : ORDO_STORAGE_META_GET;
  req.rec.name.data = (unsigned char *)JOURNAL_META_KEY;
  req.rec.name.len = strlen(JOURNAL_META_KEY);
  if (created) {
    req.rec.value.data = (unsigned char *)JOURNAL_FORMAT;
    req.rec.value.len = strlen(JOURNAL_FORMAT);
  }
  rc = ordo__j_storage_call(j->st, &req);
  if (rc == ORDO_OK && !created &&
      (req.result.value.len != strlen(JOURNAL_FORMAT) ||
       memcmp(req.result.value.data, JOURNAL_FORMAT, req.result.value.len)))
    rc = ordo__set_last_error(ORDO_E_STORAGE, "journal: unsupported format "
                              "version");
  else if (rc == ORDO_E_NOT_FOUND)
    rc = ordo__set_last_error(ORDO_E_STORAGE, "journal: the file is not an "
                              "ordo journal");
  else if (rc != ORDO_OK)
    rc = ordo__set_last_error(rc, "journal: %s",
                              req.message ? req.message : ordo_strerror(rc));
  ordo_storage_req_clear_output(&req);
  return rc;
}

/*
 * The locking rule a journal was made with: strategy and granularity decide
 * which batches are ready, so a replay under another rule could not repeat
 * the takes it recorded. Written at create; read back at every open, where
 * it overrides the caller's (mode and caps are the caller's to change).
 */
#define JOURNAL_LOCKING_KEY "ordo.journal.locking"

static int journal_locking(ordo_journal *j, int created,
                           ordo_queue_options *q) {
  ordo_storage_req req;
  char buf[64];
  int rc, st = 0, g = 0;
  memset(&req, 0, sizeof(req));
  req.opcode = created ? ORDO_STORAGE_META_SET : ORDO_STORAGE_META_GET;
  req.rec.name.data = (unsigned char *)JOURNAL_LOCKING_KEY;
  req.rec.name.len = strlen(JOURNAL_LOCKING_KEY);
  if (created) {
    snprintf(buf, sizeof buf, "%d %d", (int)q->strategy,
             q->granularity < 0 ? -1 : q->granularity);
    req.rec.value.data = (unsigned char *)buf;
    req.rec.value.len = strlen(buf);
  }
  rc = ordo__j_storage_call(j->st, &req);
  if (rc == ORDO_OK && !created) {
    size_t n = req.result.value.len < sizeof buf - 1 ? req.result.value.len
                                                     : sizeof buf - 1;
    memcpy(buf, req.result.value.data, n);
    buf[n] = '\0';
    if (sscanf(buf, "%d %d", &st, &g) != 2 || st < ORDO_QUEUE_PARALLEL ||
        st > ORDO_QUEUE_UNCONSTRAINED || g < -1)
      rc = ordo__set_last_error(ORDO_E_STORAGE, "journal: bad locking record");
    else {
      q->strategy = (ordo_queue_strategy)st;
      q->granularity = g;
    }
  } else if (rc == ORDO_E_NOT_FOUND && !created) {
    rc = ORDO_OK; /* made before the record existed: the caller's rule */
  } else if (rc != ORDO_OK) {
    rc = ordo__set_last_error(rc, "journal: reading the locking record");
  }
  ordo_storage_req_clear_output(&req);
  return rc;
}

/* The first seq whose records are tagged (JOURNAL_TAGGED_KEY): 1 for a
 * journal made now; for one made before tags, the next seq, written now,
 * so that only the batches enqueued from here on may leave memory. */
static int journal_tagged(ordo_journal *j, int created) {
  ordo_storage_req req;
  char buf[32];
  int rc;
  memset(&req, 0, sizeof(req));
  req.opcode = ORDO_STORAGE_META_GET;
  req.rec.name.data = (unsigned char *)JOURNAL_TAGGED_KEY;
  req.rec.name.len = strlen(JOURNAL_TAGGED_KEY);
  rc = created ? ORDO_E_NOT_FOUND : ordo__j_storage_call(j->st, &req);
  if (rc == ORDO_OK) {
    size_t n = req.result.value.len < sizeof buf - 1 ? req.result.value.len
                                                     : sizeof buf - 1;
    memcpy(buf, req.result.value.data, n);
    buf[n] = '\0';
    j->tagged_seq = strtoull(buf, NULL, 10);
    ordo_storage_req_clear_output(&req);
    return j->tagged_seq > 0 ? ORDO_OK
                             : ordo__set_last_error(ORDO_E_STORAGE, "journal: "
                                                    "bad tagged_seq record");
  }
  ordo_storage_req_clear_output(&req);
  if (rc != ORDO_E_NOT_FOUND)
    return ordo__set_last_error(rc, "journal: reading the tagged_seq record");
  j->tagged_seq = created ? 1 : ordo_queue_next_seq(j->q);
  snprintf(buf, sizeof buf, "%llu", (unsigned long long)j->tagged_seq);
  memset(&req, 0, sizeof(req));
  req.opcode = ORDO_STORAGE_META_SET;
  req.rec.name.data = (unsigned char *)JOURNAL_TAGGED_KEY;
  req.rec.name.len = strlen(JOURNAL_TAGGED_KEY);
  req.rec.value.data = (unsigned char *)buf;
  req.rec.value.len = strlen(buf);
  rc = ordo__j_storage_call(j->st, &req);
  ordo_storage_req_clear_output(&req);
  return rc == ORDO_OK ? ORDO_OK
                       : ordo__set_last_error(rc, "journal: writing the "
                                              "tagged_seq record");
}

#define ORDO__JOURNAL_OF(c)                                                    \
  ((ordo_journal *)((char *)(c)-offsetof(ordo_journal, closer)))

/* ordo_ctx_free's close of a journal its caller left open. */
static void journal_ctx_close(ordo__ctx_closer *c) {
  ordo_journal *j = ORDO__JOURNAL_OF(c);
  int rc;
  ordo__j_recovery_before_close(j);
  rc = storage_close(j->st);
  j->st = NULL;
  j->ctx_closed_rc = rc == ORDO_OK ? j->failed : rc;
  if (j->lock_fd >= 0)
    close(j->lock_fd);
  j->lock_fd = -1;
}

int ordo_journal_open(ordo_ctx *ctx, const char *path,
                      const ordo_journal_options *opt, ordo_journal **out) {
  ordo_queue_options qopt;
  ordo_journal_options defaults;
  const ordo_storage_backend *be;
  ordo_journal *j;
  char *errmsg = NULL, shown[512];
  int rc, created = 0, flags, pg;

  if (out != NULL)
    *out = NULL;
  if (ctx == NULL || path == NULL || out == NULL)
    return ordo__set_last_error(ORDO_E_INVAL, "journal open: NULL argument");
  if (ordo__on_runtime_thread())
    return ordo__set_last_error(ORDO_E_WOULD_DEADLOCK,
                                "journal open blocks; not on a runtime thread");
  /* The lock file is PATH.lock: a path cut to fit would lock another
   * file, so one that does not fit is refused. */
  if (strlen(path) > JOURNAL_PATH_MAX)
    return ordo__set_last_error(ORDO_E_INVAL, "journal path is too long "
                                "(%zu bytes; at most %d)", strlen(path),
                                JOURNAL_PATH_MAX);
  if (opt == NULL) {
    ordo_journal_options_init(&defaults);
    opt = &defaults;
  }
  /* A PostgreSQL store URL (postgres://…#NAME) is a queue in that
   * database; messages name it without the URL's password. */
  pg = ordo_storage_is_postgres_uri(path);
  if (pg) {
    char *where = ordo__storage_postgres_where(path);
    const char *hash = strchr(path, '#');
    snprintf(shown, sizeof shown, "%s%s", where != NULL ? where : "?",
             hash != NULL ? hash : "");
    free(where);
      } else {
    snprintf(shown, sizeof shown, "%s", path);
  }
  be = pg ? &ordo_storage_postgres
          : ordo_storage_backend_find(opt->backend != NULL ? opt->backend
                                                           : "sqlite");
  if (be == NULL)
    return ordo__set_last_error(ORDO_E_INVAL, "journal: unknown storage "
                                "backend '%s'", opt->backend);
  if ((j = calloc(1, sizeof(*j))) == NULL)
    return ordo__set_last_error(ORDO_E_NOMEM, NULL);
  if (pthread_mutex_init(&j->mu, NULL) != 0 ||
      pthread_cond_init(&j->idle_cv, NULL) != 0)
    abort();
  j->ctx = ctx;
  j->next_event = 1;
  j->track_from = UINT64_MAX; /* a checkpoint may say; else after replay */
  {
    const char *q = getenv("ORDO_JOURNAL_QUIET_MS"); /* tests: 0 */
    j->quiet_ms = q != NULL && *q != '\0' ? strtoull(q, NULL, 10) : 500;
  }
  j->lock_fd = -1;
  j->ck_never = opt->checkpoint_records < 0 || opt->checkpoint_ms < 0;
  j->ck_every_records = opt->checkpoint_records > 0
                            ? (unsigned long long)opt->checkpoint_records
                            : CK_DEFAULT_RECORDS;
  {
    /* Tests: checkpoints every few records in a process that has no
     * option for it (ordo submit killed in a loop). */
    const char *e = getenv("ORDO_JOURNAL_CHECKPOINT_RECORDS");
    if (opt->checkpoint_records == 0 && e != NULL && strtoull(e, NULL, 10) > 0)
      j->ck_every_records = strtoull(e, NULL, 10);
  }
  j->ck_every_ms = opt->checkpoint_ms > 0 ? (uint64_t)opt->checkpoint_ms
                                          : CK_DEFAULT_MS;
  j->ck_wall_ms = ordo__wall_ms();
  j->ret_count = opt->retention_count > 0
                     ? (unsigned long long)opt->retention_count
                     : RETAIN_DEFAULT_COUNT;
  j->ret_ms = opt->retention_ms > 0 ? (uint64_t)opt->retention_ms
                                    : RETAIN_DEFAULT_MS;
  j->exp_wall_ms = ordo__wall_ms();
  j->svc_idle_ms = opt->service_idle_ms > 0 ? (uint64_t)opt->service_idle_ms
                                            : SERVICE_IDLE_DEFAULT_MS;
  j->svc_wall_ms = ordo__wall_ms();
  ordo__idset_init(&j->gone_ids);
  ordo__idset_init(&j->gone_lids);
  qopt = opt->queue;
  qopt.forgotten_state = ordo__j_hook_forgotten_state;
  qopt.forgotten_ledger_id = ordo__j_hook_forgotten_ledger_id;
  qopt.on_finish = ordo__j_hook_on_finish;
  qopt.hook_ud = j;
  /* One process at a time: the journal's memory is the truth between its
   * records, so a second writer would replay a different queue (and reuse
   * event numbers). flock is dropped by the kernel when the holder dies,
   * even by SIGKILL, so a crash never leaves it stale. */
  if (!pg && !opt->create && access(path, F_OK) != 0) {
    journal_free(j);
    return ordo__set_last_error(ORDO_E_NOT_FOUND, "journal %s: no such "
                                "file", path);
  }
  if (!pg) {
    char lpath[JOURNAL_PATH_MAX + sizeof ".lock"];
    snprintf(lpath, sizeof lpath, "%s.lock", path); /* fits: checked above */
    j->lock_fd = open(lpath, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (j->lock_fd < 0) {
      rc = ordo__set_last_error(errno == ENOENT ? ORDO_E_NOT_FOUND
                                                : ORDO_E_STORAGE,
                                "journal %s: cannot open its lock file: %s",
                                path, strerror(errno));
      journal_free(j);
      return rc;
    }
    if (flock(j->lock_fd, LOCK_EX | LOCK_NB) != 0) {
      rc = ordo__set_last_error(ORDO_E_STORAGE_BUSY, "journal %s is open in "
                                "another process (or another open)", path);
      journal_free(j);
      return rc;
    }
  }
  /* A restart reads the WAL instead of waiting for its copy at close. */
  /* On PostgreSQL the one-writer rule is the backend's advisory lock
   * (EXCLUSIVE), held by a connection of the journal's own: dropped by the
   * server when this process dies, as the kernel drops the flock. */
  if (opt->fence_epoch != 0 && !pg) {
    journal_free(j);
    return ordo__set_last_error(ORDO_E_INVAL, "journal %s: a fenced journal "
                                "(a cluster's) is a PostgreSQL one", shown);
  }
  /* A cluster's journal is fenced by its lease instead (queue.h): a
   * process that stopped (SIGSTOP) keeps its connections and so would keep
   * an advisory lock for ever. */
  flags = ORDO_STORAGE_KEEP_WAL |
          (pg && opt->fence_epoch == 0 ? ORDO_STORAGE_EXCLUSIVE : 0) |
          (opt->no_group_commit ? ORDO_STORAGE_NO_GROUP_COMMIT : 0);
  rc = be->open(be, ctx, path, flags, &j->st, &errmsg);
  if (rc == ORDO_E_WALLET_NOT_FOUND && opt->create) {
    free(errmsg);
    errmsg = NULL;
    rc = be->open(be, ctx, path, flags | ORDO_STORAGE_CREATE, &j->st, &errmsg);
    created = rc == ORDO_OK;
  }
  if (rc == ORDO_E_WALLET_NOT_FOUND)
    rc = ORDO_E_NOT_FOUND; /* the storage says it as for a wallet */
  if (rc != ORDO_OK) {
    /* PostgreSQL's messages already name the store (without password). */
    if (pg && errmsg != NULL)
      ordo__set_last_error(rc, "journal %s", errmsg);
    else
      ordo__set_last_error(rc, "journal %s: %s", shown,
                           errmsg != NULL ? errmsg : ordo_strerror(rc));
    free(errmsg);
    journal_free(j);
    return rc;
  }
  free(errmsg);
  if (opt->fence_epoch != 0 &&
      (rc = ordo__storage_postgres_fence(j->st, opt->fence_epoch)) != ORDO_OK) {
    (void)storage_close(j->st);
    journal_free(j);
    return ordo__set_last_error(rc, "journal %s: cannot fence it", shown);
  }
  j->replaying = 1;
  if ((rc = journal_meta(j, created)) != ORDO_OK ||
      (rc = journal_locking(j, created, &qopt)) != ORDO_OK ||
      (j->qopt = qopt, rc = ordo_queue_new(&qopt, &j->q)) != ORDO_OK ||
      (rc = ordo__j_journal_replay(j)) != ORDO_OK ||
      (rc = journal_tagged(j, created)) != ORDO_OK) {
    char *keep = ordo__strdup(ordo_last_error_message());
    (void)storage_close(j->st);
    journal_free(j);
    ordo__set_last_error(rc, "%s", keep != NULL ? keep : ordo_strerror(rc));
    free(keep);
    return rc;
  }
  j->replaying = 0;
  if (j->track_from == UINT64_MAX) /* no checkpoint said: from here on */
    j->track_from = j->next_event;
  ordo__j_journal_evict(j);
  j->closer.close = journal_ctx_close;
  if ((rc = ordo__ctx_closer_attach(ctx, &j->closer)) != ORDO_OK) {
    (void)storage_close(j->st);
    journal_free(j);
    return ordo__set_last_error(rc, "journal %s: the context is shutting "
                                "down", shown);
  }
  pthread_mutex_lock(&j->mu);
  ordo__j_gone_load_start(j); /* after a clean close: read behind the open */
  pthread_mutex_unlock(&j->mu);
  *out = j;
  return ORDO_OK;
}

int ordo_journal_close(ordo_journal *j) {
  int rc;
  if (j == NULL)
    return ORDO_OK;
  if (ordo__on_runtime_thread())
    return ordo__set_last_error(
        ORDO_E_WOULD_DEADLOCK, "journal close blocks; not on a runtime thread");
  if (ordo__ctx_closer_detach(j->ctx, &j->closer)) {
    /* A clean close leaves a checkpoint of everything: the next open
     * reads it alone. */
    pthread_mutex_lock(&j->mu);
    while (j->recovering || j->outstanding > 0 || j->gone_loading)
      pthread_cond_wait(&j->idle_cv, &j->mu);
    if (!j->ck_never && j->failed == ORDO_OK && !j->ck_pending &&
        j->gone_loaded &&
        j->next_event > (j->ck_event > 0 ? j->ck_event : 1))
      (void)ordo__j_journal_checkpoint(j);
    j->closing = 1;
    pthread_mutex_unlock(&j->mu);
    ordo__j_recovery_before_close(j);
    /* CLOSE runs after every record submitted before it: their dones (and
     * so the ops waiting on them) have all been called when it returns. */
    rc = storage_close(j->st);
    if (rc == ORDO_OK)
      rc = j->failed;
  } else {
    rc = j->ctx_closed_rc; /* ordo_ctx_free closed it */
  }
  journal_free(j);
  return rc;
}

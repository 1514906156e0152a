/*
 * export.c — wallet export and import commands, streamed, on the heavy class.
 *
 * Export: derive the file key (Argon2id, heavy), write the header to a
 * temporary file, then page through the wallet (SCAN of EXPORT_PAGE records,
 * ORDO__STAGE_ASYNC), decrypting each page and sealing it into the file on
 * the heavy class; at the end fsync and rename into place. Cancelled or
 * failed: the temporary file is removed, nothing is left at the path.
 *
 * Import: read the header, derive the file key and the new wallet's master
 * key, create the wallet, then per chunk of records one BATCH request (all or
 * nothing per chunk). Any failure — a truncated, altered or malformed file,
 * a wrong key, a cancel — closes and destroys the half-made wallet, so no
 * wallet appears unless the whole file was imported.
 */
#include "crypto/crypto.h"
#include "wallet/exportfile.h"
#include "wallet/wallet.h"
#include "runtime/runtime.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <jansson.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define EXPORT_PAGE 256    /* records fetched per SCAN */
#define IMPORT_BATCH 256   /* records per BATCH request */

/* ---- shared --------------------------------------------------------------- */

typedef struct file_key {
  char *path;
  char *key;
  char *method;
} file_key;

static void file_key_clear(file_key *fk) {
  free(fk->path);
  ordo__free_secret(fk->key);
  free(fk->method);
  memset(fk, 0, sizeof(*fk));
}

/* {"path":…, "key":…, "key_derivation_method":…} */
static int parse_file_key(ordo_op *op, const char *what, const char *json,
                          file_key *fk) {
  json_error_t jerr;
  json_t *o = json != NULL ? json_loads(json, 0, &jerr) : NULL;
  const char *path = NULL, *key = NULL, *method = NULL;
  int rc = ORDO_OK;
  if (o == NULL) {
    /* Never jerr.text: it would quote the file's passphrase. */
    if (json == NULL)
      ordo_op_set_message(op, "%s: missing", what);
    else
      ordo_op_set_message(op, "%s: not JSON (line %d, column %d)", what,
                          jerr.line, jerr.column);
    return json == NULL ? ORDO_E_INVAL : ORDO_E_JSON;
  }
  if (json_unpack(o, "{s:s, s:s, s?s}", "path", &path, "key", &key,
                  "key_derivation_method", &method) != 0) {
    ordo_op_set_message(op, "%s: 'path' and 'key' (strings) are required", what);
    rc = ORDO_E_INVAL;
  } else if ((fk->path = strdup(path)) == NULL || (fk->key = strdup(key)) == NULL ||
             (method != NULL && (fk->method = strdup(method)) == NULL)) {
    rc = ORDO_E_NOMEM;
  }
  json_t *k = json_object_get(o, "key");
  if (json_is_string(k))
    sodium_memzero((void *)json_string_value(k), json_string_length(k));
  json_decref(o);
  return rc;
}

/* ---- export ---------------------------------------------------------------- */

typedef struct export_cmd {
  ordo_ctx *ctx;
  char *wallet_id;
  ordo__wallet *w;
  file_key fk;
  ordo__wallet_kdf kdf;
  unsigned char *key;          /* sodium_malloc'd file key */
  char *tmp_path;
  FILE *f;
  ordo__export_writer wr;
  int writer_started;
  ordo_storage_req req;
  unsigned long long offset;
  int done;                    /* renamed into place */
} export_cmd;

static void export_cmd_free(void *p) {
  export_cmd *c = p;
  if (c->writer_started)
    ordo__export_writer_free(&c->wr);
  if (c->f != NULL)
    fclose(c->f);
  if (c->tmp_path != NULL && !c->done)
    unlink(c->tmp_path); /* never leave a partial export behind */
  free(c->tmp_path);
  ordo_storage_req_clear_output(&c->req);
  ordo_storage_buf_clear(&c->req.rec.category);
  sodium_free(c->key);
  file_key_clear(&c->fk);
  ordo__wallet_release(c->w);
  free(c->wallet_id);
  free(c);
}

static int export_fetch(ordo_op *op, export_cmd *c);

static int stage_export_page(ordo_op *op, void *st) {
  export_cmd *c = st;
  int rc = ordo__wallet_req_status(op, &c->req);
  if (rc != ORDO_OK)
    return rc;
  if (ordo_op_cancelled())
    return ORDO_E_CANCELED;
  const ordo__wallet_keys *k = ordo__wallet_keys_of(c->w);
  for (size_t i = 0; i < c->req.nresults; i++) {
    json_t *rec = ordo__wallet_open_record(
        k, &c->req.results[i], ORDO__OPEN_TYPE | ORDO__OPEN_VALUE | ORDO__OPEN_TAGS);
    if (rec == NULL) {
      ordo_op_set_message(op, "a record does not decrypt: wallet corrupt");
      return ORDO_E_STORAGE;
    }
    rc = ordo__export_writer_add(&c->wr, rec);
    json_decref(rec);
    if (rc != ORDO_OK) {
      ordo_op_set_message(op, "cannot write %s: %s", c->tmp_path, strerror(errno));
      return rc;
    }
  }
  size_t got = c->req.nresults;
  ordo_storage_req_clear_output(&c->req);
  c->offset += got;
  if (got == EXPORT_PAGE)
    return export_fetch(op, c);
  /* Last page: seal, make durable, then put in place atomically. */
  if ((rc = ordo__export_writer_finish(&c->wr)) != ORDO_OK ||
      fsync(fileno(c->f)) != 0) {
    ordo_op_set_message(op, "cannot write %s: %s", c->tmp_path, strerror(errno));
    return rc != ORDO_OK ? rc : ORDO_E_IO;
  }
  fclose(c->f);
  c->f = NULL;
  if (link(c->tmp_path, c->fk.path) != 0) {
    /* link, not rename: it refuses to replace a file that appeared since. */
    ordo_op_set_message(op, "cannot create %s: %s", c->fk.path, strerror(errno));
    return errno == EEXIST ? ORDO_E_EXISTS : ORDO_E_IO;
  }
  unlink(c->tmp_path);
  c->done = 1;
  return ordo__op_set_result_json(op, json_pack("{s:s, s:I}", "path", c->fk.path,
                                                "records", (json_int_t)c->wr.records));
}

static int export_fetch(ordo_op *op, export_cmd *c) {
  c->req.opcode = ORDO_STORAGE_SCAN;
  c->req.query = NULL;
  c->req.offset = c->offset;
  c->req.limit = EXPORT_PAGE;
  int rc = ordo__op_add_stage(op, ORDO_CLASS_HEAVY, stage_export_page);
  if (rc != ORDO_OK)
    return rc;
  return ordo__wallet_req_submit(op, ordo__wallet_storage(c->w), &c->req);
}

/* ordo__wallet_kdf_derive; a key it refuses is named by what in the
 * message (the same words for every key these commands take). */
static int derive(ordo_op *op, const ordo__wallet_kdf *kdf, const char *key,
                  unsigned char *out, const char *what) {
  int rc = ordo__wallet_kdf_derive(kdf, key, out);
  if (rc != ORDO_OK)
    ordo_op_set_message(op, "%s: a raw key must be 32 bytes as base58 or 64 hex "
                            "characters", what);
  return rc;
}

/* Derive the file key, create the temporary file, write the header, and
 * fetch the first page. SCAN with no category returns every type. */
static int stage_export_begin(ordo_op *op, void *st) {
  export_cmd *c = st;
  if (ordo_op_cancelled())
    return ORDO_E_CANCELED;
  int rc = derive(op, &c->kdf, c->fk.key, c->key, "export key");
  if (rc != ORDO_OK)
    return rc;
  struct stat sb;
  if (stat(c->fk.path, &sb) == 0) {
    ordo_op_set_message(op, "%s already exists", c->fk.path);
    return ORDO_E_EXISTS;
  }
  if (asprintf(&c->tmp_path, "%s.tmp-XXXXXX", c->fk.path) < 0) {
    c->tmp_path = NULL;
    return ORDO_E_NOMEM;
  }
  int fd = mkstemp(c->tmp_path);
  if (fd < 0 || (c->f = fdopen(fd, "wb")) == NULL) {
    ordo_op_set_message(op, "cannot create %s: %s", c->tmp_path, strerror(errno));
    if (fd >= 0)
      close(fd);
    else {
      free(c->tmp_path);
      c->tmp_path = NULL;
    }
    return ORDO_E_IO;
  }
  c->writer_started = 1;
  rc = ordo__export_writer_begin(&c->wr, c->f, &c->kdf, c->key);
  if (rc != ORDO_OK) {
    ordo_op_set_message(op, "cannot write %s: %s", c->tmp_path, strerror(errno));
    return rc;
  }
  return export_fetch(op, c);
}

/* ordo__wallet_cmd_new for the commands that keep keys in sodium_malloc'd
 * memory, which needs libsodium started. */
static void *secret_cmd_new(ordo_ctx *ctx, size_t size, void (*state_free)(void *),
                            ordo_op **op) {
  *op = NULL;
  if (ctx == NULL || ordo__crypto_init() != ORDO_OK)
    return NULL;
  return ordo__wallet_cmd_new(ctx, size, state_free, op);
}

ordo_op *ordo_wallet_export(ordo_ctx *ctx, const char *wallet_id,
                            const char *export_config_json) {
  ordo_op *op;
  export_cmd *c = secret_cmd_new(ctx, sizeof(*c), export_cmd_free, &op);
  if (c == NULL)
    return NULL;
  int rc = ORDO_OK;
  if (wallet_id == NULL || (c->wallet_id = strdup(wallet_id)) == NULL)
    rc = wallet_id == NULL ? ORDO_E_INVAL : ORDO_E_NOMEM;
  if (rc == ORDO_OK)
    rc = parse_file_key(op, "export config", export_config_json, &c->fk);
  if (rc == ORDO_OK && (rc = ordo__wallet_kdf_new(c->fk.method, &c->kdf)) != ORDO_OK)
    ordo_op_set_message(op, "export config: unknown key_derivation_method '%s'",
                        c->fk.method);
  if (rc == ORDO_OK && (rc = ordo__wallet_get(ctx, wallet_id, &c->w)) != ORDO_OK)
    ordo_op_set_message(op, "wallet '%s' is not open", wallet_id);
  if (rc == ORDO_OK && (c->key = sodium_malloc(ORDO__WALLET_KEY_BYTES)) == NULL)
    rc = ORDO_E_NOMEM;
  if (rc == ORDO_OK)
    rc = ordo__op_add_stage(op, ORDO_CLASS_HEAVY, stage_export_begin);
  return rc != ORDO_OK ? ordo__op_reject(op, rc) : ordo__op_start(op);
}

/* ---- import ---------------------------------------------------------------- */

typedef struct import_cmd {
  ordo_ctx *ctx;
  ordo__wallet_spec spec;     /* the new wallet */
  file_key fk;                /* the file and its key */
  ordo__wallet_kdf wallet_kdf;
  ordo__wallet_kdf file_kdf;
  unsigned char *file_key;    /* sodium_malloc'd */
  unsigned char *mk;          /* sodium_malloc'd */
  ordo__wallet_keys *keys;
  char *meta;
  FILE *f;
  ordo__export_reader rd;
  int reader_started;
  ordo_storage *st;           /* the new wallet's database, while open */
  int created;                /* the database exists: remove it on failure */
  int finished;               /* every record is in: keep it */
  ordo_storage_req req;       /* META_SET, BATCH, CLOSE */
  ordo_storage_req *batch;    /* sub-requests of the BATCH in flight */
  size_t nbatch;
  unsigned long long records;
  int error;                  /* failure being cleaned up after */
  char *error_message;
} import_cmd;

static void import_batch_clear(import_cmd *c) {
  for (size_t i = 0; i < c->nbatch; i++) {
    ordo_storage_record_clear(&c->batch[i].rec);
    ordo_storage_req_clear_output(&c->batch[i]);
  }
  free(c->batch);
  c->batch = NULL;
  c->nbatch = 0;
}

static void import_cmd_free(void *p) {
  import_cmd *c = p;
  import_batch_clear(c);
  ordo_storage_req_clear_output(&c->req);
  if (c->reader_started)
    ordo__export_reader_free(&c->rd);
  if (c->f != NULL)
    fclose(c->f);
  /* Still open here only if the op ended where no stage could clean up
   * (context shutdown): close it. The half-made file then stays, and a later
   * import into the same id reports that it exists. */
  if (c->st != NULL)
    ordo__wallet_close_db_async(c->ctx, c->st);
  ordo__wallet_keys_free(c->keys);
  sodium_free(c->file_key);
  sodium_free(c->mk);
  ORDO__FREE_ALL(c->meta, c->error_message);
  file_key_clear(&c->fk);
  ordo__wallet_spec_clear(&c->spec);
  free(c);
}

/* Fail the import. Before the database exists: fail the op now. After: keep
 * the error, close the database and remove it in a storage stage, which then
 * fails the op — no half-made wallet is left behind. */
static int import_fail(ordo_op *op, import_cmd *c, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int stage_import_cleanup(ordo_op *op, void *st) {
  import_cmd *c = st;
  char *err = NULL;
  if (c->spec.backend->destroy(c->spec.backend, c->spec.db_path, &err) == ORDO_OK)
    if (c->spec.dir != NULL)
      (void)rmdir(c->spec.dir);
  free(err);
  c->created = 0;
  ordo_op_set_message(op, "%s", c->error_message ? c->error_message : "import failed");
  return c->error;
}

static int import_fail(ordo_op *op, import_cmd *c, int rc, const char *fmt, ...) {
  va_list ap;
  char *msg = NULL;
  va_start(ap, fmt);
  if (vasprintf(&msg, fmt, ap) < 0)
    msg = NULL;
  va_end(ap);
  if (!c->created || c->st == NULL) {
    ordo_op_set_message(op, "%s", msg ? msg : ordo_strerror(rc));
    free(msg);
    return rc;
  }
  free(c->error_message);
  c->error_message = msg;
  c->error = rc;
  ordo_storage_req_clear_output(&c->req);
  memset(&c->req, 0, sizeof(c->req));
  c->req.opcode = ORDO_STORAGE_CLOSE;
  ordo_storage *db = c->st;
  c->st = NULL;
  int arc = ordo__op_add_stage(op, ORDO_CLASS_STORAGE, stage_import_cleanup);
  if (arc != ORDO_OK)
    return arc;
  return ordo__wallet_req_submit(op, db, &c->req);
}

static int stage_import_done(ordo_op *op, void *st) {
  import_cmd *c = st;
  int rc = ordo__wallet_req_status(op, &c->req);
  if (rc != ORDO_OK)
    return rc;
  c->finished = 1;
  return ordo__op_set_result_json(op, json_pack("{s:s, s:I}", "id", c->spec.id,
                                                "records", (json_int_t)c->records));
}

/* Read up to IMPORT_BATCH records, encrypt them for the new wallet, and
 * store them in one BATCH; at the end of the file, close the wallet. */
static int stage_import_chunk(ordo_op *op, void *st) {
  import_cmd *c = st;
  if (c->req.status != ORDO_OK)
    return import_fail(op, c, c->req.status, "cannot store records: %s",
                       c->req.message ? c->req.message : ordo_strerror(c->req.status));
  for (size_t i = 0; i < c->nbatch; i++)
    if (c->batch[i].status != ORDO_OK)
      return import_fail(op, c, c->batch[i].status,
                         "cannot store a record: %s (duplicate in the file?)",
                         ordo_strerror(c->batch[i].status));
  c->records += c->nbatch;
  import_batch_clear(c);
  ordo_storage_req_clear_output(&c->req);
  memset(&c->req, 0, sizeof(c->req));
  if (ordo_op_cancelled())
    return import_fail(op, c, ORDO_E_CANCELED, "import canceled");

  c->batch = calloc(IMPORT_BATCH, sizeof(*c->batch));
  if (c->batch == NULL)
    return import_fail(op, c, ORDO_E_NOMEM, "out of memory");
  for (;;) {
    json_t *rec = NULL;
    int rc = ordo__export_reader_next(&c->rd, &rec);
    if (rc != ORDO_OK)
      return import_fail(op, c, rc, "%s: %s", c->fk.path, c->rd.error);
    if (rec == NULL)
      break;
    ordo_storage_req *sub = &c->batch[c->nbatch++];
    char err[160] = "";
    sub->opcode = ORDO_STORAGE_ADD;
    rc = ordo__wallet_seal_record(
        c->keys, json_string_value(json_object_get(rec, "type")),
        json_string_value(json_object_get(rec, "name")),
        json_string_value(json_object_get(rec, "value")),
        json_object_get(rec, "tags"), 0, &sub->rec, err, sizeof(err));
    json_decref(rec);
    if (rc != ORDO_OK)
      return import_fail(op, c, rc == ORDO_E_INVAL ? ORDO_E_WALLET_FILE : rc,
                         "%s: %s", c->fk.path, err[0] ? err : ordo_strerror(rc));
    if (c->nbatch == IMPORT_BATCH)
      break;
  }
  int rc;
  if (c->nbatch == 0) {
    /* End of a complete file: close; the wallet is whole. */
    c->req.opcode = ORDO_STORAGE_CLOSE;
    ordo_storage *db = c->st;
    c->st = NULL;
    if ((rc = ordo__op_add_stage(op, ORDO_CLASS_CHEAP, stage_import_done)) != ORDO_OK)
      return rc;
    return ordo__wallet_req_submit(op, db, &c->req);
  }
  c->req.opcode = ORDO_STORAGE_BATCH;
  c->req.batch = c->batch;
  c->req.nbatch = c->nbatch;
  if ((rc = ordo__op_add_stage(op, ORDO_CLASS_HEAVY, stage_import_chunk)) != ORDO_OK)
    return rc;
  return ordo__wallet_req_submit(op, c->st, &c->req);
}

static int stage_import_create(ordo_op *op, void *st) {
  import_cmd *c = st;
  int rc = ordo__wallet_create_db(op, c->ctx, &c->spec, &c->st);
  if (rc != ORDO_OK)
    return rc;
  c->created = 1;
  ordo__wallet_meta_req(&c->req, c->meta);
  if ((rc = ordo__op_add_stage(op, ORDO_CLASS_HEAVY, stage_import_chunk)) != ORDO_OK)
    return rc;
  return ordo__wallet_req_submit(op, c->st, &c->req);
}

/* Open the file, derive both keys, check the file key on the first chunk
 * (by reading the stream header), make the new wallet's keys. */
static int stage_import_begin(ordo_op *op, void *st) {
  import_cmd *c = st;
  c->f = fopen(c->fk.path, "rb");
  if (c->f == NULL) {
    ordo_op_set_message(op, "cannot open %s: %s", c->fk.path, strerror(errno));
    return errno == ENOENT ? ORDO_E_NOT_FOUND : ORDO_E_IO;
  }
  c->reader_started = 1;
  int rc = ordo__export_reader_begin(&c->rd, c->f, &c->file_kdf);
  if (rc != ORDO_OK) {
    ordo_op_set_message(op, "%s: %s", c->fk.path, c->rd.error);
    return rc;
  }
  if ((rc = derive(op, &c->file_kdf, c->fk.key, c->file_key, "import key")) != ORDO_OK)
    return rc;
  if (ordo_op_cancelled())
    return ORDO_E_CANCELED;
  if ((rc = ordo__export_reader_keyed(&c->rd, c->file_key)) != ORDO_OK) {
    ordo_op_set_message(op, "%s: %s", c->fk.path, c->rd.error);
    return rc;
  }
  if ((rc = derive(op, &c->wallet_kdf, c->spec.key, c->mk, "wallet credentials")) != ORDO_OK)
    return rc;
  if ((rc = ordo__wallet_new_keys(&c->wallet_kdf, c->mk, &c->keys, &c->meta)) != ORDO_OK)
    return rc;
  return ordo__op_add_stage(op, ORDO_CLASS_STORAGE, stage_import_create);
}

ordo_op *ordo_wallet_import(ordo_ctx *ctx, const char *config_json,
                            const char *credentials_json,
                            const char *import_config_json) {
  ordo_op *op;
  import_cmd *c = secret_cmd_new(ctx, sizeof(*c), import_cmd_free, &op);
  if (c == NULL)
    return NULL;
  int rc = ordo__wallet_spec_parse(op, &c->spec, config_json,
                                   credentials_json ? credentials_json : "", 1);
  if (rc == ORDO_OK)
    rc = parse_file_key(op, "import config", import_config_json, &c->fk);
  if (rc == ORDO_OK && (rc = ordo__wallet_kdf_new(c->spec.method, &c->wallet_kdf)) != ORDO_OK)
    ordo_op_set_message(op, "wallet credentials: unknown key_derivation_method '%s'",
                        c->spec.method);
  if (rc == ORDO_OK && ((c->file_key = sodium_malloc(ORDO__WALLET_KEY_BYTES)) == NULL ||
                        (c->mk = sodium_malloc(ORDO__WALLET_KEY_BYTES)) == NULL))
    rc = ORDO_E_NOMEM;
  if (rc == ORDO_OK)
    rc = ordo__op_add_stage(op, ORDO_CLASS_HEAVY, stage_import_begin);
  return rc != ORDO_OK ? ordo__op_reject(op, rc) : ordo__op_start(op);
}

/*
 * wallet.c — wallet lifecycle (create, open, close, delete, list) and the
 * registry of open wallets.
 *
 * Each command is a chain of stages: argument parsing on the cheap class,
 * file work on the storage class, Argon2id on the heavy class, and storage
 * requests handed to the backend (ORDO__STAGE_ASYNC) which resumes the op
 * when they complete. No stage waits for another class.
 *
 * The registry (one per context, a module slot) maps ids to open wallets.
 * A wallet is refcounted: the registry holds one reference while it is open
 * and each running command holds one; the database is closed when the last
 * goes. Lock order: registry->mu only, never held across storage calls.
 */
#include "wallet/wallet.h"
#include "crypto/crypto.h"
#include "runtime/runtime.h"

#include <errno.h>
#include <dirent.h>
#include <jansson.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ID_MAX 64
#define META_KEY "wallet"
#define DB_FILE "wallet.db"

struct ordo__wallet {
  ordo__wallet *next; /* registry list; under registry->mu */
  struct wallet_registry *reg;
  char id[ID_MAX + 1];
  ordo_storage *st;
  ordo__wallet_keys *keys;
  ordo__wallet_kdf kdf;
  unsigned char mk_hash[crypto_generichash_BYTES]; /* to check a second open */
  int opens;        /* under registry->mu */
  atomic_int refs;  /* registry's hold + running commands */
  ordo_storage_req *close_req; /* made with the open: closing never allocates */
};

typedef struct wallet_registry {
  ordo_ctx *ctx;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  ordo__wallet *head;
  int closing;      /* databases being closed; shutdown waits for 0 */
} wallet_registry;

/* ---- registry ------------------------------------------------------------- */

static void *registry_create(ordo_ctx *ctx) {
  /* Every wallet command passes here first: make sure libsodium is up before
   * anything calls sodium_malloc (which aborts without it). */
  if (ordo__crypto_init() != ORDO_OK)
    return NULL;
  wallet_registry *r = calloc(1, sizeof(*r));
  if (r == NULL)
    return NULL;
  r->ctx = ctx;
  if (pthread_mutex_init(&r->mu, NULL) != 0 || pthread_cond_init(&r->cv, NULL) != 0)
    abort();
  return r;
}

static void storage_closed(ordo_storage_req *req) {
  wallet_registry *r = req->userdata;
  free(req);
  pthread_mutex_lock(&r->mu);
  r->closing--;
  pthread_cond_broadcast(&r->cv);
  pthread_mutex_unlock(&r->mu);
}

/* Close a database in the background with req (zeroed, malloc'd by the
 * caller, who made it before opening: closing cannot fail for memory); the
 * registry counts it so that context shutdown waits until the file is
 * really closed. */
static void storage_close_async(wallet_registry *r, ordo_storage *st,
                                ordo_storage_req *req) {
  req->opcode = ORDO_STORAGE_CLOSE;
  req->done = storage_closed;
  req->userdata = r;
  pthread_mutex_lock(&r->mu);
  r->closing++;
  pthread_mutex_unlock(&r->mu);
  if (st->backend->submit(st, req) != ORDO_OK) {
    /* Only after an earlier CLOSE; nothing left to close. */
    storage_closed(req);
  }
}

static void registry_shutdown(void *data) {
  wallet_registry *r = data;
  pthread_mutex_lock(&r->mu);
  ordo__wallet *w = r->head;
  r->head = NULL;
  pthread_mutex_unlock(&r->mu);
  while (w != NULL) {
    ordo__wallet *next = w->next;
    ordo__wallet_release(w); /* the registry's hold: closes the database */
    w = next;
  }
  pthread_mutex_lock(&r->mu);
  while (r->closing > 0)
    pthread_cond_wait(&r->cv, &r->mu);
  pthread_mutex_unlock(&r->mu);
  pthread_cond_destroy(&r->cv);
  pthread_mutex_destroy(&r->mu);
  free(r);
}

static wallet_registry *registry_of(ordo_ctx *ctx) {
  return ordo__ctx_module(ctx, ORDO__MODULE_WALLET, registry_create,
                          registry_shutdown);
}

static void free_close_req(ordo_storage_req *req) { free(req); }

void ordo__wallet_close_db_async(ordo_ctx *ctx, ordo_storage *st) {
  wallet_registry *r = registry_of(ctx);
  ordo_storage_req *req = calloc(1, sizeof(*req));
  if (req == NULL)
    return; /* out of memory: the database stays open until the process ends */
  if (r != NULL) {
    storage_close_async(r, st, req);
    return;
  }
  /* No registry: the context is shutting down past the wallet module. Close
   * without waiting; the request frees itself. */
  req->opcode = ORDO_STORAGE_CLOSE;
  req->done = free_close_req;
  if (st->backend->submit(st, req) != ORDO_OK)
    free(req);
}

/* Under r->mu. */
static ordo__wallet *registry_find(wallet_registry *r, const char *id) {
  for (ordo__wallet *w = r->head; w != NULL; w = w->next)
    if (strcmp(w->id, id) == 0)
      return w;
  return NULL;
}

int ordo__wallet_get(ordo_ctx *ctx, const char *id, ordo__wallet **out) {
  *out = NULL;
  wallet_registry *r = registry_of(ctx);
  if (r == NULL || id == NULL)
    return ORDO_E_WALLET_NOT_OPEN;
  pthread_mutex_lock(&r->mu);
  ordo__wallet *w = registry_find(r, id);
  if (w != NULL)
    atomic_fetch_add(&w->refs, 1);
  pthread_mutex_unlock(&r->mu);
  *out = w;
  return w != NULL ? ORDO_OK : ORDO_E_WALLET_NOT_OPEN;
}

void ordo__wallet_release(ordo__wallet *w) {
  if (w == NULL || atomic_fetch_sub(&w->refs, 1) != 1)
    return;
  storage_close_async(w->reg, w->st, w->close_req);
  ordo__wallet_keys_free(w->keys);
  sodium_memzero(w->mk_hash, sizeof(w->mk_hash));
  free(w);
}

ordo_storage *ordo__wallet_storage(ordo__wallet *w) { return w->st; }
const ordo__wallet_keys *ordo__wallet_keys_of(ordo__wallet *w) { return w->keys; }
const char *ordo__wallet_id(ordo__wallet *w) { return w->id; }

/* ---- command state ------------------------------------------------------ */

typedef enum { CMD_CREATE, CMD_OPEN, CMD_DELETE, CMD_LIST } wallet_cmd_kind;

typedef struct wallet_cmd {
  wallet_cmd_kind kind;
  ordo_ctx *ctx;
  wallet_registry *reg;
  ordo__wallet_spec spec;
  ordo__wallet_kdf kdf;
  unsigned char *mk;           /* sodium_malloc'd */
  ordo__wallet_keys *keys;
  ordo_storage *st;            /* open database not yet owned by a wallet */
  ordo_storage_req *close_req; /* for st, made before it is opened */
  ordo__wallet *shared;        /* OPEN of an already open wallet */
  ordo_storage_req req;
  char *meta;                  /* CREATE: META_SET value; OPEN: wrapped keys */
  size_t wrapped_len;          /* OPEN: bytes of wrapped keys in meta */
} wallet_cmd;

static void wallet_cmd_free(void *p) {
  wallet_cmd *c = p;
  if (c->st != NULL && c->reg != NULL) {
    /* failed half-way: do not leak it */
    storage_close_async(c->reg, c->st, c->close_req);
    c->close_req = NULL;
  }
  free(c->close_req);
  if (c->shared != NULL)
    ordo__wallet_release(c->shared);
  ordo__wallet_keys_free(c->keys);
  sodium_free(c->mk);
  ordo__wallet_spec_clear(&c->spec);
  ordo_storage_req_clear_output(&c->req);
  free(c->meta);
  free(c);
}

static int id_valid(const char *id) {
  size_t n = strlen(id);
  if (n == 0 || n > ID_MAX || id[0] == '.')
    return 0;
  for (size_t i = 0; i < n; i++) {
    char ch = id[i];
    if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
          (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-'))
      return 0;
  }
  return 1;
}

static char *default_root(void) {
  const char *p = getenv("ORDO_WALLET_PATH");
  if (p != NULL && *p != '\0')
    return strdup(p);
  const char *home = getenv("HOME");
  char *s = NULL;
  if (asprintf(&s, "%s/.ordo/wallets", home != NULL ? home : ".") < 0)
    return NULL;
  return s;
}

void ordo__wallet_spec_clear(ordo__wallet_spec *spec) {
  ordo__free_secret(spec->key);
  free(spec->method);
  free(spec->dir);
  ordo__free_secret(spec->db_path); /* a URL may hold a password */
  ordo__free_secret(spec->url);
  free(spec->root);
  memset(spec, 0, sizeof(*spec));
}

/* cfg[key] when it is a string (*out untouched when absent). */
static int string_field(ordo_op *op, json_t *cfg, const char *key, const char **out) {
  json_t *v = json_object_get(cfg, key);
  if (v == NULL)
    return ORDO_OK;
  if (!json_is_string(v)) {
    ordo_op_set_message(op, "wallet config: '%s' must be a string", key);
    return ORDO_E_INVAL;
  }
  *out = json_string_value(v);
  return ORDO_OK;
}

/* Parse config_json (and credentials_json unless NULL) into spec. On error
 * the op carries a message naming the problem. */
int ordo__wallet_spec_parse(ordo_op *op, ordo__wallet_spec *spec,
                            const char *config, const char *creds, int need_id) {
  json_error_t jerr;
  json_t *cfg = config != NULL ? json_loads(config, 0, &jerr) : json_object();
  int rc = ORDO_OK;
  if (cfg == NULL || !json_is_object(cfg)) {
    /* Never jerr.text: jansson quotes the text near the error. */
    if (cfg == NULL)
      ordo_op_set_message(op, "wallet config: not JSON (line %d, column %d)",
                          jerr.line, jerr.column);
    else
      ordo_op_set_message(op, "wallet config: must be a JSON object");
    json_decref(cfg);
    return cfg == NULL ? ORDO_E_JSON : ORDO_E_INVAL;
  }
  const char *id = NULL, *path = NULL, *storage = NULL; /* NULL: "sqlite" */
  json_t *v;
  if ((rc = string_field(op, cfg, "id", &id)) != ORDO_OK ||
      (rc = string_field(op, cfg, "path", &path)) != ORDO_OK ||
      (rc = string_field(op, cfg, "storage", &storage)) != ORDO_OK)
    goto done;
  if ((v = json_object_get(cfg, "group_commit")) != NULL) {
    if (!json_is_boolean(v)) {
      rc = ORDO_E_INVAL;
      ordo_op_set_message(op, "wallet config: 'group_commit' must be true or false");
      goto done;
    }
    /* Off only to measure what group commit buys (ordo bench wallet). */
    spec->open_flags = json_is_false(v) ? ORDO_STORAGE_NO_GROUP_COMMIT : 0;
  }
  /* A PostgreSQL URL, as "storage" or as "path", names the database the
   * wallet is a store of ("#wallet/<id>"); messages show it without its
   * password. */
  if (ordo_storage_is_postgres_uri(storage) || ordo_storage_is_postgres_uri(path)) {
    const char *url = ordo_storage_is_postgres_uri(storage) ? storage : path;
    /* A URL "path" beside a "storage" that names another backend (or
     * none): refused, as that storage would be with a directory. */
    const ordo_storage_backend *named =
        storage != NULL && url == path ? ordo_storage_backend_find(storage) : NULL;
    if (storage != NULL && url == path && named != &ordo_storage_postgres) {
      rc = named == NULL ? ORDO_E_UNSUPPORTED : ORDO_E_INVAL;
      ordo_op_set_message(op, named == NULL ? "wallet config: unknown storage '%s'"
                                            : "wallet config: storage '%s' with a "
                                              "PostgreSQL URL as 'path'",
                          storage);
      goto done;
    }
    if (strchr(url, '#') != NULL) {
      rc = ORDO_E_INVAL;
      ordo_op_set_message(op, "wallet config: a PostgreSQL URL for wallets "
                          "names a database, not a store: no '#'");
      goto done;
    }
    spec->backend = &ordo_storage_postgres;
    spec->url = strdup(url);
    spec->root = ordo__storage_postgres_where(url);
    if (spec->url == NULL || spec->root == NULL) {
      rc = ORDO_E_NOMEM;
      goto done;
    }
  } else {
    spec->backend = ordo_storage_backend_find(storage != NULL ? storage : "sqlite");
    if (spec->backend == NULL) {
      rc = ORDO_E_UNSUPPORTED;
      ordo_op_set_message(op, "wallet config: unknown storage '%s'", storage);
      goto done;
    }
  }
  if (need_id) {
    if (id == NULL || !id_valid(id)) {
      rc = ORDO_E_INVAL;
      ordo_op_set_message(op,
                          "wallet config: 'id' must be 1..%d characters of "
                          "[A-Za-z0-9._-], not starting with '.'",
                          ID_MAX);
      goto done;
    }
    snprintf(spec->id, sizeof(spec->id), "%s", id);
  }
  if (spec->url != NULL) {
    if (need_id && asprintf(&spec->db_path, "%s#wallet/%s", spec->url,
                            spec->id) < 0) {
      spec->db_path = NULL;
      rc = ORDO_E_NOMEM;
      goto done;
    }
  } else {
    spec->root = path != NULL ? strdup(path) : default_root();
    if (spec->root == NULL ||
        (need_id && (asprintf(&spec->dir, "%s/%s", spec->root, spec->id) < 0 ||
                     asprintf(&spec->db_path, "%s/%s/" DB_FILE, spec->root, spec->id) < 0))) {
      rc = ORDO_E_NOMEM;
      goto done;
    }
  }
  if (creds != NULL) {
    json_t *cr = json_loads(creds, 0, &jerr);
    const char *key = NULL, *method = NULL;
    if (cr == NULL || !json_is_object(cr)) {
      rc = cr == NULL ? ORDO_E_JSON : ORDO_E_INVAL;
      /* Never jerr.text: it would quote the passphrase. */
      if (cr == NULL)
        ordo_op_set_message(op, "wallet credentials: not JSON (line %d, "
                            "column %d)", jerr.line, jerr.column);
      else
        ordo_op_set_message(op, "wallet credentials: must be a JSON object");
    } else if (json_unpack(cr, "{s:s, s?s}", "key", &key,
                           "key_derivation_method", &method) != 0) {
      rc = ORDO_E_INVAL;
      ordo_op_set_message(op, "wallet credentials: 'key' (a string) is "
                              "required; 'key_derivation_method' is a string");
    } else if ((spec->key = strdup(key)) == NULL ||
               (method != NULL && (spec->method = strdup(method)) == NULL)) {
      rc = ORDO_E_NOMEM;
    }
    if (cr != NULL) {
      /* The passphrase was in jansson's copy too. */
      json_t *k = json_object_get(cr, "key");
      if (json_is_string(k))
        sodium_memzero((void *)json_string_value(k), json_string_length(k));
      json_decref(cr);
    }
  }
done:
  json_decref(cfg);
  return rc;
}

static wallet_cmd *wallet_cmd_new(ordo_ctx *ctx, wallet_cmd_kind kind) {
  wallet_cmd *c = calloc(1, sizeof(*c));
  if (c == NULL)
    return NULL;
  /* The request that closes the database this command may open: made now,
   * so that no path that closes it has to allocate. */
  c->close_req = calloc(1, sizeof(*c->close_req));
  if (c->close_req == NULL) {
    free(c);
    return NULL;
  }
  c->kind = kind;
  c->ctx = ctx;
  c->reg = registry_of(ctx);
  return c;
}

/* A storage request completed: continue the op in its next stage, which
 * reads req.status. Resume (not fail) here: the backend is still inside its
 * completion path, so the op must not finish on this thread. */
static void cmd_req_done(ordo_storage_req *req) {
  ordo__op_resume((ordo_op *)req->userdata, ORDO_OK);
}

int ordo__wallet_req_submit(ordo_op *op, ordo_storage *st, ordo_storage_req *req) {
  req->done = cmd_req_done;
  req->userdata = op;
  int rc = st->backend->submit(st, req);
  if (rc != ORDO_OK) {
    ordo_op_set_message(op, "storage refused the request: %s", ordo_strerror(rc));
    return rc;
  }
  return ORDO__STAGE_ASYNC;
}

void *ordo__wallet_cmd_new(ordo_ctx *ctx, size_t size, void (*state_free)(void *),
                           ordo_op **op) {
  *op = NULL;
  if (ctx == NULL)
    return NULL;
  void *c = calloc(1, size);
  if (c == NULL)
    return NULL;
  *(ordo_ctx **)c = ctx; /* a struct's address is its first member's */
  *op = ordo__op_new(ctx, c, state_free); /* on failure, it freed c */
  return *op != NULL ? c : NULL;
}

/* The status of the request the previous stage submitted, as the op's. */
int ordo__wallet_req_status(ordo_op *op, ordo_storage_req *req) {
  if (req->status != ORDO_OK)
    ordo_op_set_message(op, "%s", req->message != NULL ? req->message
                                                       : ordo_strerror(req->status));
  return req->status;
}

static int set_id_result(ordo_op *op, const char *id) {
  return ordo__op_set_result_json(op, json_pack("{s:s}", "id", id));
}

/* ---- key derivation stages ----------------------------------------------- */

static int stage_derive(ordo_op *op, void *st) {
  wallet_cmd *c = st;
  c->mk = sodium_malloc(ORDO__WALLET_KEY_BYTES);
  if (c->mk == NULL)
    return ORDO_E_NOMEM;
  int rc = ordo__wallet_kdf_derive(&c->kdf, c->spec.key, c->mk);
  if (rc == ORDO_E_INVAL)
    ordo_op_set_message(op, "wallet credentials: a raw key must be 32 bytes "
                            "as base58 or 64 hex characters");
  return rc;
}

/* Argon2id on the heavy class; a raw key is decoded where we are. */
static int add_derive_stage(ordo_op *op, wallet_cmd *c) {
  return ordo__op_add_stage(op,
                            c->kdf.method == ORDO__KDF_RAW ? ORDO_CLASS_CHEAP
                                                           : ORDO_CLASS_HEAVY,
                            stage_derive);
}

/* ---- create --------------------------------------------------------------- */

static int stage_create_done(ordo_op *op, void *st) {
  wallet_cmd *c = st;
  int rc = ordo__wallet_req_status(op, &c->req);
  return rc != ORDO_OK ? rc : set_id_result(op, c->spec.id);
}

static int stage_create_close(ordo_op *op, void *st) {
  wallet_cmd *c = st;
  int rc = ordo__wallet_req_status(op, &c->req);
  if (rc != ORDO_OK)
    return rc; /* state_free closes the database */
  ordo_storage_req_clear_output(&c->req);
  memset(&c->req, 0, sizeof(c->req));
  c->req.opcode = ORDO_STORAGE_CLOSE;
  ordo_storage *db = c->st;
  c->st = NULL; /* the CLOSE request owns it now */
  ordo__op_add_stage(op, ORDO_CLASS_CHEAP, stage_create_done);
  return ordo__wallet_req_submit(op, db, &c->req);
}

static int mkdir_p(const char *path) {
  char *p = strdup(path);
  if (p == NULL)
    return -1;
  for (char *s = p + 1; *s; s++) {
    if (*s == '/') {
      *s = '\0';
      if (mkdir(p, 0700) != 0 && errno != EEXIST) {
        free(p);
        return -1;
      }
      *s = '/';
    }
  }
  int r = mkdir(p, 0700) != 0 && errno != EEXIST ? -1 : 0;
  free(p);
  return r;
}

int ordo__wallet_create_db(ordo_op *op, ordo_ctx *ctx,
                           const ordo__wallet_spec *spec, ordo_storage **st) {
  struct stat sb;
  if (spec->dir != NULL && stat(spec->db_path, &sb) == 0) {
    ordo_op_set_message(op, "wallet '%s' already exists in %s", spec->id, spec->root);
    return ORDO_E_WALLET_EXISTS;
  }
  if (spec->dir != NULL && mkdir_p(spec->dir) != 0) {
    ordo_op_set_message(op, "cannot create %s: %s", spec->dir, strerror(errno));
    return ORDO_E_IO;
  }
  char *err = NULL;
  int rc = spec->backend->open(spec->backend, ctx, spec->db_path,
                               ORDO_STORAGE_CREATE | spec->open_flags, st, &err);
  if (rc == ORDO_E_WALLET_EXISTS)
    ordo_op_set_message(op, "wallet '%s' already exists in %s", spec->id, spec->root);
  else if (rc != ORDO_OK)
    ordo_op_set_message(op, "cannot create wallet '%s': %s", spec->id,
                        err != NULL ? err : ordo_strerror(rc));
  free(err);
  return rc;
}

void ordo__wallet_meta_req(ordo_storage_req *req, const char *meta) {
  req->opcode = ORDO_STORAGE_META_SET;
  req->rec.name.data = (unsigned char *)META_KEY;
  req->rec.name.len = strlen(META_KEY);
  req->rec.value.data = (unsigned char *)meta;
  req->rec.value.len = strlen(meta);
}

int ordo__wallet_new_keys(const ordo__wallet_kdf *kdf, const unsigned char *mk,
                          ordo__wallet_keys **keys, char **meta) {
  unsigned char *blob = NULL;
  size_t len = 0;
  *meta = NULL;
  *keys = ordo__wallet_keys_new();
  if (*keys == NULL)
    return ORDO_E_NOMEM;
  int rc = ordo__wallet_keys_wrap(*keys, mk, &blob, &len);
  if (rc != ORDO_OK)
    return rc;
  char *kdf_json = ordo__wallet_kdf_to_json(kdf);
  size_t b64len = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL);
  char *b64 = malloc(b64len);
  json_t *o = NULL;
  if (kdf_json != NULL && b64 != NULL) {
    sodium_bin2base64(b64, b64len, blob, len, sodium_base64_VARIANT_ORIGINAL);
    o = json_pack("{s:i, s:o, s:s}", "version", 1, "kdf",
                  json_loads(kdf_json, 0, NULL), "keys", b64);
  }
  *meta = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
  json_decref(o);
  free(kdf_json);
  free(b64);
  free(blob);
  return *meta != NULL ? ORDO_OK : ORDO_E_NOMEM;
}

static int stage_create_store(ordo_op *op, void *st) {
  wallet_cmd *c = st;
  int rc = ordo__wallet_create_db(op, c->ctx, &c->spec, &c->st);
  if (rc != ORDO_OK)
    return rc;
  ordo__wallet_meta_req(&c->req, c->meta);
  ordo__op_add_stage(op, ORDO_CLASS_CHEAP, stage_create_close);
  return ordo__wallet_req_submit(op, c->st, &c->req);
}

static int stage_create_wrap(ordo_op *op, void *st) {
  wallet_cmd *c = st;
  int rc = ordo__wallet_new_keys(&c->kdf, c->mk, &c->keys, &c->meta);
  if (rc != ORDO_OK)
    return rc;
  return ordo__op_add_stage(op, ORDO_CLASS_STORAGE, stage_create_store);
}

static int stage_create_begin(ordo_op *op, void *st) {
  wallet_cmd *c = st;
  int rc = ordo__wallet_kdf_new(c->spec.method, &c->kdf);
  if (rc != ORDO_OK) {
    ordo_op_set_message(op, "wallet credentials: unknown key_derivation_method "
                            "'%s'", c->spec.method);
    return rc;
  }
  if ((rc = add_derive_stage(op, c)) != ORDO_OK)
    return rc;
  return ordo__op_add_stage(op, ORDO_CLASS_CHEAP, stage_create_wrap);
}

/* ---- open / delete --------------------------------------------------------- */

static void hash_mk(const unsigned char *mk, unsigned char out[crypto_generichash_BYTES]) {
  crypto_generichash(out, crypto_generichash_BYTES, mk, ORDO__WALLET_KEY_BYTES,
                     (const unsigned char *)"ordo-mk-check", 13);
}

static int stage_delete_files(ordo_op *op, void *st) {
  wallet_cmd *c = st;
  int rc = ordo__wallet_req_status(op, &c->req);
  if (rc != ORDO_OK)
    return rc;
  char *err = NULL;
  rc = c->spec.backend->destroy(c->spec.backend, c->spec.db_path, &err);
  if (rc != ORDO_OK) {
    ordo_op_set_message(op, "cannot delete wallet '%s': %s", c->spec.id,
                        err != NULL ? err : ordo_strerror(rc));
    free(err);
    return rc;
  }
  if (c->spec.dir != NULL)
    (void)rmdir(c->spec.dir); /* leaves a directory holding files of the user's */
  return ordo_op_set_result(op, "{}");
}

/* After the derive stage of an OPEN: unwrap the wallet keys (blob in
 * c->meta, its length in c->wrapped_len) with the master key. */
static int unwrap_keys(ordo_op *op, wallet_cmd *c) {
  int rc = ordo__wallet_keys_unwrap((unsigned char *)c->meta, c->wrapped_len, c->mk,
                                    &c->keys);
  if (rc == ORDO_E_WALLET_ACCESS)
    ordo_op_set_message(op, "wrong key for wallet '%s'", c->spec.id);
  return rc;
}

/* The key was right (or this was a second open): finish the command. */
static int stage_open_register(ordo_op *op, void *st) {
  wallet_cmd *c = st;
  unsigned char h[crypto_generichash_BYTES];
  if (c->shared == NULL) {
    int rc = unwrap_keys(op, c);
    if (rc != ORDO_OK)
      return rc;
  }
  hash_mk(c->mk, h);
  if (c->shared != NULL) {
    /* Second open in this context: same key, or no access. */
    int same = sodium_memcmp(h, c->shared->mk_hash, sizeof(h)) == 0;
    sodium_memzero(h, sizeof(h));
    if (!same) {
      ordo_op_set_message(op, "wrong key for wallet '%s'", c->spec.id);
      return ORDO_E_WALLET_ACCESS;
    }
    pthread_mutex_lock(&c->reg->mu);
    c->shared->opens++;
    pthread_mutex_unlock(&c->reg->mu);
    return set_id_result(op, c->spec.id);
  }
  if (c->kind == CMD_DELETE) {
    sodium_memzero(h, sizeof(h));
    ordo_storage_req_clear_output(&c->req);
    memset(&c->req, 0, sizeof(c->req));
    c->req.opcode = ORDO_STORAGE_CLOSE;
    ordo_storage *db = c->st;
    c->st = NULL;
    ordo__op_add_stage(op, ORDO_CLASS_STORAGE, stage_delete_files);
    return ordo__wallet_req_submit(op, db, &c->req);
  }
  ordo__wallet *w = calloc(1, sizeof(*w));
  if (w == NULL) {
    sodium_memzero(h, sizeof(h));
    return ORDO_E_NOMEM;
  }
  snprintf(w->id, sizeof(w->id), "%s", c->spec.id);
  memcpy(w->mk_hash, h, sizeof(h));
  sodium_memzero(h, sizeof(h));
  w->reg = c->reg;
  w->st = c->st;
  w->keys = c->keys;
  w->kdf = c->kdf;
  w->opens = 1;
  atomic_init(&w->refs, 1);
  pthread_mutex_lock(&c->reg->mu);
  ordo__wallet *other = registry_find(c->reg, c->spec.id);
  if (other == NULL) {
    w->next = c->reg->head;
    c->reg->head = w;
    w->close_req = c->close_req;
    c->close_req = NULL;
    c->st = NULL;
    c->keys = NULL;
  }
  pthread_mutex_unlock(&c->reg->mu);
  if (other != NULL) {
    /* Another open of the same wallet won the race: this one is redundant
     * (state_free closes our database); count it against theirs. */
    free(w);
    ordo_op_set_message(op, "wallet '%s' was opened concurrently; retry", c->spec.id);
    return ORDO_E_BUSY;
  }
  return set_id_result(op, c->spec.id);
}

static int stage_open_unwrap(ordo_op *op, void *st) {
  wallet_cmd *c = st;
  json_t *meta = json_loadb((const char *)c->req.result.value.data,
                            c->req.result.value.len, 0, NULL);
  json_t *kdf = json_object_get(meta, "kdf");
  const char *keys = json_string_value(json_object_get(meta, "keys"));
  char *kdf_s = kdf != NULL ? json_dumps(kdf, JSON_COMPACT) : NULL;
  unsigned char blob[512];
  size_t blen = 0;
  int rc = ORDO_E_STORAGE;
  if (kdf_s == NULL || keys == NULL ||
      ordo__wallet_kdf_from_json(kdf_s, &c->kdf) != ORDO_OK ||
      sodium_base642bin(blob, sizeof(blob), keys, strlen(keys), NULL, &blen,
                        NULL, sodium_base64_VARIANT_ORIGINAL) != 0) {
    ordo_op_set_message(op, "wallet '%s': key metadata is corrupt", c->spec.id);
  } else {
    rc = ORDO_OK;
  }
  free(kdf_s);
  json_decref(meta);
  if (rc != ORDO_OK)
    return rc;
  /* Derive with the stored parameters, then unwrap. */
  c->meta = malloc(blen ? blen : 1);
  if (c->meta == NULL)
    return ORDO_E_NOMEM;
  memcpy(c->meta, blob, blen);
  c->wrapped_len = blen;
  if ((rc = add_derive_stage(op, c)) != ORDO_OK)
    return rc;
  return ordo__op_add_stage(op, ORDO_CLASS_CHEAP, stage_open_register);
}

static int stage_open_meta(ordo_op *op, void *st) {
  wallet_cmd *c = st;
  int rc = ordo__wallet_req_status(op, &c->req);
  if (rc == ORDO_E_NOT_FOUND) {
    ordo_op_set_message(op, "wallet '%s' in %s is not an ordo wallet (no key "
                        "metadata)", c->spec.id, c->spec.root);
    return ORDO_E_STORAGE;
  }
  if (rc != ORDO_OK)
    return rc;
  return stage_open_unwrap(op, st);
}

static int stage_open_file(ordo_op *op, void *st) {
  wallet_cmd *c = st;
  char *err = NULL;
  int rc = c->spec.backend->open(c->spec.backend, c->ctx, c->spec.db_path,
                                 c->spec.open_flags, &c->st, &err);
  if (rc != ORDO_OK) {
    if (rc == ORDO_E_WALLET_NOT_FOUND)
      ordo_op_set_message(op, "wallet '%s' not found in %s", c->spec.id, c->spec.root);
    else
      ordo_op_set_message(op, "cannot open wallet '%s': %s", c->spec.id,
                          err != NULL ? err : ordo_strerror(rc));
    free(err);
    return rc;
  }
  c->req.opcode = ORDO_STORAGE_META_GET;
  c->req.rec.name.data = (unsigned char *)META_KEY;
  c->req.rec.name.len = strlen(META_KEY);
  ordo__op_add_stage(op, ORDO_CLASS_CHEAP, stage_open_meta);
  return ordo__wallet_req_submit(op, c->st, &c->req);
}

static int stage_open_begin(ordo_op *op, void *st) {
  wallet_cmd *c = st;
  pthread_mutex_lock(&c->reg->mu);
  ordo__wallet *w = registry_find(c->reg, c->spec.id);
  if (w != NULL)
    atomic_fetch_add(&w->refs, 1);
  pthread_mutex_unlock(&c->reg->mu);
  if (w != NULL && c->kind == CMD_DELETE) {
    ordo__wallet_release(w);
    ordo_op_set_message(op, "wallet '%s' is open; close it before deleting", c->spec.id);
    return ORDO_E_STATE;
  }
  if (w != NULL) {
    c->shared = w;
    c->kdf = w->kdf;
    int rc = add_derive_stage(op, c);
    return rc != ORDO_OK ? rc
                         : ordo__op_add_stage(op, ORDO_CLASS_CHEAP, stage_open_register);
  }
  return ordo__op_add_stage(op, ORDO_CLASS_STORAGE, stage_open_file);
}

/* ---- close / list ----------------------------------------------------------- */

typedef struct close_cmd {
  ordo_ctx *ctx;
  char id[ID_MAX + 1];
} close_cmd;

static int stage_close(ordo_op *op, void *st) {
  close_cmd *c = st;
  wallet_registry *r = registry_of(c->ctx);
  if (r == NULL)
    return ORDO_E_NOMEM;
  pthread_mutex_lock(&r->mu);
  ordo__wallet *w = registry_find(r, c->id), **pp;
  int last = 0;
  if (w != NULL && --w->opens == 0) {
    for (pp = &r->head; *pp != w; pp = &(*pp)->next)
      ;
    *pp = w->next;
    last = 1;
  }
  pthread_mutex_unlock(&r->mu);
  if (w == NULL) {
    ordo_op_set_message(op, "wallet '%s' is not open", c->id);
    return ORDO_E_WALLET_NOT_OPEN;
  }
  if (last)
    ordo__wallet_release(w); /* the database closes when commands finish */
  return ordo_op_set_result(op, "{}");
}

/* One listed wallet, open or not in this context. */
static int list_add(wallet_cmd *c, json_t *arr, const char *id) {
  pthread_mutex_lock(&c->reg->mu);
  int open = registry_find(c->reg, id) != NULL;
  pthread_mutex_unlock(&c->reg->mu);
  return json_array_append_new(arr, json_pack("{s:s, s:b}", "id", id, "open",
                                              open)) == 0
             ? ORDO_OK
             : ORDO_E_NOMEM;
}

/* The wallets of a PostgreSQL database: its stores named wallet/<id>. */
static int list_postgres(ordo_op *op, wallet_cmd *c, json_t *arr) {
  char **names = NULL, *err = NULL;
  size_t n = 0;
  int rc = ordo__storage_postgres_stores(c->spec.url, "wallet/", &names, &n,
                                         &err);
  if (rc != ORDO_OK) {
    ordo_op_set_message(op, "cannot list wallets: %s",
                        err != NULL ? err : ordo_strerror(rc));
    free(err);
    return rc;
  }
  for (size_t i = 0; i < n; i++) {
    const char *id = names[i] + strlen("wallet/");
    if (rc == ORDO_OK && id_valid(id))
      rc = list_add(c, arr, id);
    free(names[i]);
  }
  free(names);
  return rc;
}

static int stage_list(ordo_op *op, void *st) {
  wallet_cmd *c = st;
  json_t *arr = json_array();
  if (arr == NULL)
    return ORDO_E_NOMEM;
  if (c->spec.url != NULL) {
    int rc = list_postgres(op, c, arr);
    if (rc != ORDO_OK) {
      json_decref(arr);
      return rc;
    }
    return ordo__op_set_result_json(op, json_pack("{s:o}", "wallets", arr));
  }
  DIR *d = opendir(c->spec.root);
  if (d != NULL) {
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
      if (!id_valid(e->d_name))
        continue;
      char *p = NULL;
      struct stat sb;
      if (asprintf(&p, "%s/%s/" DB_FILE, c->spec.root, e->d_name) < 0)
        continue;
      int present = stat(p, &sb) == 0;
      free(p);
      if (present)
        (void)list_add(c, arr, e->d_name); /* out of memory: one fewer */
    }
    closedir(d);
  }
  return ordo__op_set_result_json(op, json_pack("{s:o}", "wallets", arr));
}

/* ---- public entry points ---------------------------------------------------- */

static ordo_op *wallet_cmd_start(ordo_ctx *ctx, wallet_cmd_kind kind,
                                 const char *config, const char *creds,
                                 ordo_stage_fn first, ordo_class cls) {
  if (ctx == NULL)
    return NULL;
  wallet_cmd *c = wallet_cmd_new(ctx, kind);
  if (c == NULL || c->reg == NULL) {
    if (c != NULL)
      free(c->close_req);
    free(c);
    ordo__set_last_error(ORDO_E_NOMEM, "no memory for a wallet command");
    return NULL;
  }
  ordo_op *op = ordo__op_new(ctx, c, wallet_cmd_free);
  if (op == NULL)
    return NULL;
  int rc = ordo__wallet_spec_parse(op, &c->spec, config, creds, kind != CMD_LIST);
  if (rc == ORDO_OK)
    rc = ordo__op_add_stage(op, cls, first);
  if (rc != ORDO_OK)
    return ordo__op_reject(op, rc);
  return ordo__op_start(op);
}

ordo_op *ordo_wallet_create(ordo_ctx *ctx, const char *config_json,
                            const char *credentials_json) {
  return wallet_cmd_start(ctx, CMD_CREATE, config_json,
                          credentials_json ? credentials_json : "", stage_create_begin,
                          ORDO_CLASS_CHEAP);
}

ordo_op *ordo_wallet_open(ordo_ctx *ctx, const char *config_json,
                          const char *credentials_json) {
  return wallet_cmd_start(ctx, CMD_OPEN, config_json,
                          credentials_json ? credentials_json : "", stage_open_begin,
                          ORDO_CLASS_CHEAP);
}

ordo_op *ordo_wallet_delete(ordo_ctx *ctx, const char *config_json,
                            const char *credentials_json) {
  return wallet_cmd_start(ctx, CMD_DELETE, config_json,
                          credentials_json ? credentials_json : "", stage_open_begin,
                          ORDO_CLASS_CHEAP);
}

ordo_op *ordo_wallet_list(ordo_ctx *ctx, const char *config_json) {
  return wallet_cmd_start(ctx, CMD_LIST, config_json, NULL, stage_list,
                          ORDO_CLASS_STORAGE);
}

ordo_op *ordo_wallet_close(ordo_ctx *ctx, const char *wallet_id) {
  ordo_op *op;
  close_cmd *c = ordo__wallet_cmd_new(ctx, sizeof(*c), free, &op);
  if (c == NULL)
    return NULL;
  if (wallet_id == NULL || strlen(wallet_id) > ID_MAX) {
    ordo_op_set_message(op, "no such wallet id");
    return ordo__op_reject(op, ORDO_E_WALLET_NOT_OPEN);
  }
  snprintf(c->id, sizeof(c->id), "%s", wallet_id);
  int rc = ordo__op_add_stage(op, ORDO_CLASS_CHEAP, stage_close);
  return rc != ORDO_OK ? ordo__op_reject(op, rc) : ordo__op_start(op);
}

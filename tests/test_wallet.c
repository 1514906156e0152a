/*
 * test_wallet.c — wallets and records through the public API: lifecycle,
 * credentials, records and tags, WQL search, encryption at rest, sharing,
 * many threads on one wallet, and many processes on one wallet whose final
 * state is checked against a serial replay of what each did.
 *
 * The wallets are in a temporary directory, or wherever the hooks
 * g_root_make/g_root_drop put them: test_wallet_pg.c includes this file
 * (WALLET_TESTS_NO_MAIN) and runs the same tests with every test's wallets
 * in a fresh PostgreSQL database.
 */
#include "storage/storage.h"
#include "support/support.h"

#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

/* A raw key (64 hex chars) keeps most tests free of Argon2id's cost. */
#define RAW_KEY "{\"key\":\"0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20\",\"key_derivation_method\":\"raw\"}"
#define RAW_KEY_OTHER "{\"key\":\"ff02030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20\",\"key_derivation_method\":\"raw\"}"
#define PASS_KEY "{\"key\":\"correct horse\",\"key_derivation_method\":\"argon2id_interactive\"}"
#define PASS_KEY_WRONG "{\"key\":\"wrong horse\",\"key_derivation_method\":\"argon2id_interactive\"}"

typedef struct wallet_fixture {
  ordo_ctx *ctx;
  char dir[256];     /* a temporary directory: export files, logs */
  char root[512];    /* the wallets' "path": dir, or a database's URL */
  char config[1024]; /* wallet w1 at root */
} wallet_fixture;

/* Where a test's wallets are, when not in f->dir: g_root_make fills
 * f->root (f->dir exists by then); g_root_drop undoes it after the test's
 * context is freed. NULL: root is dir. */
static void (*g_root_make)(wallet_fixture *f);
static void (*g_root_drop)(wallet_fixture *f);

static int setup(void **state) {
  wallet_fixture *f = calloc(1, sizeof(*f));
  snprintf(f->dir, sizeof(f->dir), "/tmp/ordo-test-wallet-XXXXXX");
  assert_non_null(mkdtemp(f->dir));
  if (g_root_make != NULL)
    g_root_make(f);
  else
    snprintf(f->root, sizeof(f->root), "%s", f->dir);
  snprintf(f->config, sizeof(f->config), "{\"id\":\"w1\",\"path\":\"%s\"}", f->root);
  ordo_config cfg;
  ordo_config_init(&cfg);
  f->ctx = ordo_ctx_new(&cfg);
  assert_non_null(f->ctx);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  wallet_fixture *f = *state;
  ordo_ctx_free(f->ctx);
  if (g_root_drop != NULL)
    g_root_drop(f);
  char cmd[300];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
  assert_int_equal(system(cmd), 0);
  free(f);
  return 0;
}

static void create_open(wallet_fixture *f) {
  assert_int_equal(support_run(ordo_wallet_create(f->ctx, f->config, RAW_KEY), NULL), ORDO_OK);
  assert_int_equal(support_run(ordo_wallet_open(f->ctx, f->config, RAW_KEY), NULL), ORDO_OK);
}

/* ---- lifecycle ---------------------------------------------------------- */

static void test_lifecycle_passphrase(void **state) {
  wallet_fixture *f = *state;
  char *res = NULL;
  assert_int_equal(support_run(ordo_wallet_create(f->ctx, f->config, PASS_KEY), NULL), ORDO_OK);
  assert_int_equal(support_run(ordo_wallet_create(f->ctx, f->config, PASS_KEY), NULL),
                   ORDO_E_WALLET_EXISTS);
  assert_int_equal(support_run(ordo_wallet_open(f->ctx, f->config, PASS_KEY_WRONG), NULL),
                   ORDO_E_WALLET_ACCESS);
  assert_int_equal(support_run(ordo_wallet_open(f->ctx, f->config, PASS_KEY), &res), ORDO_OK);
  assert_string_equal(res, "{\"id\":\"w1\"}");
  free(res);
  /* A second open shares the wallet, but only with the right key. */
  assert_int_equal(support_run(ordo_wallet_open(f->ctx, f->config, PASS_KEY_WRONG), NULL),
                   ORDO_E_WALLET_ACCESS);
  assert_int_equal(support_run(ordo_wallet_open(f->ctx, f->config, PASS_KEY), NULL), ORDO_OK);
  assert_int_equal(support_run(ordo_record_add(f->ctx, "w1", "t", "n", "v", NULL), NULL), ORDO_OK);
  assert_int_equal(support_run(ordo_wallet_close(f->ctx, "w1"), NULL), ORDO_OK);
  /* Still open once. */
  assert_int_equal(support_run(ordo_record_get(f->ctx, "w1", "t", "n", NULL), NULL), ORDO_OK);
  assert_int_equal(support_run(ordo_wallet_delete(f->ctx, f->config, PASS_KEY), NULL), ORDO_E_STATE);
  assert_int_equal(support_run(ordo_wallet_close(f->ctx, "w1"), NULL), ORDO_OK);
  assert_int_equal(support_run(ordo_wallet_close(f->ctx, "w1"), NULL), ORDO_E_WALLET_NOT_OPEN);
  assert_int_equal(support_run(ordo_record_get(f->ctx, "w1", "t", "n", NULL), NULL),
                   ORDO_E_WALLET_NOT_OPEN);

  json_t *l = support_run_json(ordo_wallet_list(f->ctx, f->config));
  json_t *ws = json_object_get(l, "wallets");
  assert_int_equal(json_array_size(ws), 1);
  assert_string_equal(json_string_value(json_object_get(json_array_get(ws, 0), "id")), "w1");
  json_decref(l);

  assert_int_equal(support_run(ordo_wallet_delete(f->ctx, f->config, PASS_KEY_WRONG), NULL),
                   ORDO_E_WALLET_ACCESS);
  assert_int_equal(support_run(ordo_wallet_delete(f->ctx, f->config, PASS_KEY), NULL), ORDO_OK);
  assert_int_equal(support_run(ordo_wallet_open(f->ctx, f->config, PASS_KEY), NULL),
                   ORDO_E_WALLET_NOT_FOUND);
  l = support_run_json(ordo_wallet_list(f->ctx, f->config));
  assert_int_equal(json_array_size(json_object_get(l, "wallets")), 0);
  json_decref(l);
}

static void test_reopen_keeps_records(void **state) {
  wallet_fixture *f = *state;
  create_open(f);
  assert_int_equal(support_run(ordo_record_add(f->ctx, "w1", "cred", "c1", "secret-1",
                                       "{\"a\":\"1\",\"~b\":\"2\"}"), NULL), ORDO_OK);
  assert_int_equal(support_run(ordo_wallet_close(f->ctx, "w1"), NULL), ORDO_OK);
  assert_int_equal(support_run(ordo_wallet_open(f->ctx, f->config, RAW_KEY_OTHER), NULL),
                   ORDO_E_WALLET_ACCESS);
  assert_int_equal(support_run(ordo_wallet_open(f->ctx, f->config, RAW_KEY), NULL), ORDO_OK);
  json_t *r = support_run_json(ordo_record_get(f->ctx, "w1", "cred", "c1", NULL));
  assert_string_equal(json_string_value(json_object_get(r, "value")), "secret-1");
  assert_string_equal(json_string_value(json_object_get(json_object_get(r, "tags"), "a")), "1");
  assert_string_equal(json_string_value(json_object_get(json_object_get(r, "tags"), "~b")), "2");
  json_decref(r);
}

static void test_bad_input(void **state) {
  wallet_fixture *f = *state;
  /* Each problem has its own code. */
  assert_int_equal(support_run(ordo_wallet_create(f->ctx, "{\"id\":", RAW_KEY), NULL), ORDO_E_JSON);
  assert_int_equal(support_run(ordo_wallet_create(f->ctx, "[]", RAW_KEY), NULL), ORDO_E_INVAL);
  assert_int_equal(support_run(ordo_wallet_create(f->ctx, "{\"id\":\"../x\"}", RAW_KEY), NULL),
                   ORDO_E_INVAL);
  assert_int_equal(support_run(ordo_wallet_create(f->ctx, f->config, "{\"key\":1}"), NULL),
                   ORDO_E_INVAL);
  assert_int_equal(support_run(ordo_wallet_create(f->ctx, f->config, "{nope"), NULL), ORDO_E_JSON);
  assert_int_equal(support_run(ordo_wallet_create(f->ctx, f->config,
                                          "{\"key\":\"x\",\"key_derivation_method\":\"md5\"}"),
                       NULL),
                   ORDO_E_INVAL);
  assert_int_equal(support_run(ordo_wallet_create(f->ctx, f->config,
                                          "{\"key\":\"tooshort\",\"key_derivation_method\":\"raw\"}"),
                       NULL),
                   ORDO_E_INVAL);
  char cfg[1100];
  snprintf(cfg, sizeof(cfg), "{\"id\":\"w1\",\"path\":\"%s\",\"storage\":\"tape\"}", f->root);
  assert_int_equal(support_run(ordo_wallet_create(f->ctx, cfg, RAW_KEY), NULL), ORDO_E_UNSUPPORTED);
  assert_int_equal(support_run(ordo_wallet_open(f->ctx, f->config, RAW_KEY), NULL),
                   ORDO_E_WALLET_NOT_FOUND);
  assert_int_equal(support_run(ordo_record_add(f->ctx, "nope", "t", "n", "v", NULL), NULL),
                   ORDO_E_WALLET_NOT_OPEN);

  create_open(f);
  assert_int_equal(support_run(ordo_record_add(f->ctx, "w1", "t", "n", "v", NULL), NULL), ORDO_OK);
  assert_int_equal(support_run(ordo_record_add(f->ctx, "w1", "t", "n", "v2", NULL), NULL),
                   ORDO_E_RECORD_DUPLICATE);
  assert_int_equal(support_run(ordo_record_get(f->ctx, "w1", "t", "missing", NULL), NULL),
                   ORDO_E_RECORD_NOT_FOUND);
  assert_int_equal(support_run(ordo_record_add(f->ctx, "w1", "t", "m", "v", "{\"a\":1}"), NULL),
                   ORDO_E_INVAL);
  assert_int_equal(support_run(ordo_record_add(f->ctx, "w1", "t", "m", "v", "{\"a\""), NULL),
                   ORDO_E_JSON);
  assert_int_equal(support_run(ordo_record_add(f->ctx, "w1", "t", NULL, "v", NULL), NULL),
                   ORDO_E_INVAL);
  assert_int_equal(support_run(ordo_record_search(f->ctx, "w1", "t", "{\"a\":{\"$gt\":\"1\"}}",
                                          NULL, 0, 0), NULL),
                   ORDO_E_WQL);
  assert_int_equal(support_run(ordo_record_search(f->ctx, "w1", "t", "{\"a\":", NULL, 0, 0), NULL),
                   ORDO_E_WQL);
  assert_int_equal(support_run(ordo_record_get(f->ctx, "w1", "t", "n", "{\"bogus\":true}"), NULL),
                   ORDO_E_INVAL);
}

/* ---- records ------------------------------------------------------------- */

static void test_record_crud_and_tags(void **state) {
  wallet_fixture *f = *state;
  create_open(f);
  assert_int_equal(support_run(ordo_record_add(f->ctx, "w1", "t", "n", "v1",
                                       "{\"a\":\"1\",\"~b\":\"2\"}"), NULL), ORDO_OK);
  assert_int_equal(support_run(ordo_record_update_value(f->ctx, "w1", "t", "n", "v2"), NULL), ORDO_OK);
  assert_int_equal(support_run(ordo_record_add_tags(f->ctx, "w1", "t", "n",
                                            "{\"a\":\"9\",\"c\":\"3\"}"), NULL), ORDO_OK);
  json_t *r = support_run_json(ordo_record_get(f->ctx, "w1", "t", "n",
                                       "{\"retrieve_type\":true}"));
  assert_string_equal(json_string_value(json_object_get(r, "type")), "t");
  assert_string_equal(json_string_value(json_object_get(r, "value")), "v2");
  json_t *tags = json_object_get(r, "tags");
  assert_int_equal(json_object_size(tags), 3);
  assert_string_equal(json_string_value(json_object_get(tags, "a")), "9");
  assert_string_equal(json_string_value(json_object_get(tags, "c")), "3");
  json_decref(r);

  assert_int_equal(support_run(ordo_record_delete_tags(f->ctx, "w1", "t", "n", "[\"a\",\"~b\"]"),
                       NULL), ORDO_OK);
  r = support_run_json(ordo_record_get(f->ctx, "w1", "t", "n", NULL));
  tags = json_object_get(r, "tags");
  assert_int_equal(json_object_size(tags), 1);
  assert_string_equal(json_string_value(json_object_get(tags, "c")), "3");
  json_decref(r);

  assert_int_equal(support_run(ordo_record_update_tags(f->ctx, "w1", "t", "n", "{\"z\":\"26\"}"),
                       NULL), ORDO_OK);
  r = support_run_json(ordo_record_get(f->ctx, "w1", "t", "n",
                               "{\"retrieve_value\":false}"));
  assert_null(json_object_get(r, "value"));
  assert_int_equal(json_object_size(json_object_get(r, "tags")), 1);
  json_decref(r);

  /* Same name, other type: a different record. */
  assert_int_equal(support_run(ordo_record_add(f->ctx, "w1", "t2", "n", "other", NULL), NULL), ORDO_OK);
  assert_int_equal(support_run(ordo_record_delete(f->ctx, "w1", "t", "n"), NULL), ORDO_OK);
  assert_int_equal(support_run(ordo_record_delete(f->ctx, "w1", "t", "n"), NULL),
                   ORDO_E_RECORD_NOT_FOUND);
  assert_int_equal(support_run(ordo_record_update_value(f->ctx, "w1", "t", "n", "x"), NULL),
                   ORDO_E_RECORD_NOT_FOUND);
  r = support_run_json(ordo_record_get(f->ctx, "w1", "t2", "n", NULL));
  assert_string_equal(json_string_value(json_object_get(r, "value")), "other");
  json_decref(r);
}

static size_t search_count(wallet_fixture *f, const char *wql) {
  json_t *r = support_run_json(ordo_record_search(f->ctx, "w1", "person", wql, NULL, 0, 0));
  size_t n = json_array_size(json_object_get(r, "records"));
  json_decref(r);
  json_t *c = support_run_json(ordo_record_count(f->ctx, "w1", "person", wql));
  assert_int_equal((size_t)json_integer_value(json_object_get(c, "count")), n);
  json_decref(c);
  return n;
}

static void test_search(void **state) {
  wallet_fixture *f = *state;
  create_open(f);
  static const struct {
    const char *name, *tags;
  } people[] = {
      {"alice", "{\"city\":\"paris\",\"~age\":\"31\",\"role\":\"admin\"}"},
      {"bob", "{\"city\":\"rome\",\"~age\":\"25\",\"role\":\"user\"}"},
      {"carol", "{\"city\":\"paris\",\"~age\":\"47\",\"role\":\"user\"}"},
      {"dave", "{\"city\":\"oslo\",\"~age\":\"19\"}"},
  };
  for (size_t i = 0; i < 4; i++)
    assert_int_equal(support_run(ordo_record_add(f->ctx, "w1", "person", people[i].name,
                                         "v", people[i].tags), NULL), ORDO_OK);
  assert_int_equal(support_run(ordo_record_add(f->ctx, "w1", "pet", "rex", "v",
                                       "{\"city\":\"paris\"}"), NULL), ORDO_OK);
  assert_int_equal(search_count(f, "{}"), 4);
  assert_int_equal(search_count(f, NULL), 4);
  assert_int_equal(search_count(f, "{\"city\":\"paris\"}"), 2);
  assert_int_equal(search_count(f, "{\"city\":{\"$neq\":\"paris\"}}"), 2);
  assert_int_equal(search_count(f, "{\"city\":\"paris\",\"role\":\"user\"}"), 1);
  assert_int_equal(search_count(f, "{\"$or\":[{\"city\":\"rome\"},{\"city\":\"oslo\"}]}"), 2);
  assert_int_equal(search_count(f, "{\"$not\":{\"city\":\"paris\"}}"), 2);
  assert_int_equal(search_count(f, "{\"city\":{\"$in\":[\"rome\",\"oslo\",\"x\"]}}"), 2);
  assert_int_equal(search_count(f, "{\"~age\":{\"$gt\":\"30\"}}"), 2);
  assert_int_equal(search_count(f, "{\"~age\":{\"$gte\":\"31\"}}"), 2);
  assert_int_equal(search_count(f, "{\"~age\":{\"$lt\":\"25\"}}"), 1);
  assert_int_equal(search_count(f, "{\"~age\":{\"$lte\":\"25\"}}"), 2);
  assert_int_equal(search_count(f, "{\"~age\":{\"$like\":\"%1\"}}"), 1);
  assert_int_equal(search_count(f, "{\"$and\":[{\"~age\":{\"$gt\":\"20\"}},"
                                   "{\"$not\":{\"role\":\"admin\"}}]}"), 2);
  assert_int_equal(search_count(f, "{\"role\":\"nobody\"}"), 0);

  /* Paging, in insertion order, with the total. */
  json_t *r = support_run_json(ordo_record_search(f->ctx, "w1", "person", "{}",
                                          "{\"retrieve_total_count\":true,"
                                          "\"retrieve_tags\":false}", 1, 2));
  json_t *recs = json_object_get(r, "records");
  assert_int_equal(json_array_size(recs), 2);
  assert_string_equal(json_string_value(json_object_get(json_array_get(recs, 0), "name")), "bob");
  assert_string_equal(json_string_value(json_object_get(json_array_get(recs, 1), "name")), "carol");
  assert_null(json_object_get(json_array_get(recs, 0), "tags"));
  assert_int_equal(json_integer_value(json_object_get(r, "total")), 4);
  json_decref(r);
}

/* ---- encryption at rest --------------------------------------------------- */

/* Non-zero if the marker occurs in any file of the wallet directory. */
static int marker_on_disk(const char *dir, const char *marker) {
  char cmd[700];
  snprintf(cmd, sizeof(cmd), "grep -rqa -- '%s' '%s'", marker, dir);
  return system(cmd) == 0;
}

static void test_encrypted_at_rest(void **state) {
  wallet_fixture *f = *state;
  create_open(f);
  assert_int_equal(support_run(ordo_record_add(f->ctx, "w1", "MARKERTYPE", "MARKERNAME",
                                       "MARKERVALUE",
                                       "{\"MARKERTAGNAME\":\"MARKERTAGVALUE\","
                                       "\"~PLAINNAME\":\"PLAINVALUE\"}"), NULL),
                   ORDO_OK);
  /* Search by the encrypted tag still works. */
  json_t *c = support_run_json(ordo_record_count(f->ctx, "w1", "MARKERTYPE",
                                         "{\"MARKERTAGNAME\":\"MARKERTAGVALUE\"}"));
  assert_int_equal(json_integer_value(json_object_get(c, "count")), 1);
  json_decref(c);
  /* Closed (and checkpointed), the files hold none of it but the '~' tag. */
  assert_int_equal(support_run(ordo_wallet_close(f->ctx, "w1"), NULL), ORDO_OK);
  ordo_ctx_free(f->ctx); /* waits for the database to close */
  ordo_config cfg;
  ordo_config_init(&cfg);
  f->ctx = ordo_ctx_new(&cfg);
  assert_non_null(f->ctx);
  assert_true(marker_on_disk(f->dir, "PLAINVALUE")); /* the grep works */
  assert_false(marker_on_disk(f->dir, "MARKERTYPE"));
  assert_false(marker_on_disk(f->dir, "MARKERNAME"));
  assert_false(marker_on_disk(f->dir, "MARKERVALUE"));
  assert_false(marker_on_disk(f->dir, "MARKERTAGNAME"));
  assert_false(marker_on_disk(f->dir, "MARKERTAGVALUE"));
  /* Nor the raw key. */
  assert_false(marker_on_disk(f->dir, "0102030405060708090a0b0c0d0e0f10"));
}

/* ---- export / import --------------------------------------------------------- */

#define FILE_KEY_FMT "{\"path\":\"%s\",\"key\":\"1111111111111111111111111111111111111111111111111111111111111111\",\"key_derivation_method\":\"raw\"}"
#define WRONG_FILE_KEY_FMT "{\"path\":\"%s\",\"key\":\"2111111111111111111111111111111111111111111111111111111111111111\",\"key_derivation_method\":\"raw\"}"

static void export_fixture(wallet_fixture *f, const char *file, int n) {
  create_open(f);
  char name[32], value[64];
  for (int i = 0; i < n; i++) {
    snprintf(name, sizeof(name), "r%d", i);
    snprintf(value, sizeof(value), "value %d with \"quotes\" and \n", i);
    assert_int_equal(support_run(ordo_record_add(f->ctx, "w1", i % 2 ? "odd" : "even", name,
                                         value, "{\"k\":\"v\",\"~n\":\"1\"}"), NULL),
                     ORDO_OK);
  }
  char cfg[512];
  snprintf(cfg, sizeof(cfg), FILE_KEY_FMT, file);
  json_t *r = support_run_json(ordo_wallet_export(f->ctx, "w1", cfg));
  assert_int_equal(json_integer_value(json_object_get(r, "records")), n);
  json_decref(r);
  /* Never overwrites. */
  assert_int_equal(support_run(ordo_wallet_export(f->ctx, "w1", cfg), NULL), ORDO_E_EXISTS);
}

static int import_into(wallet_fixture *f, const char *id, const char *file,
                       const char *fmt) {
  char cfg[1100], icfg[512];
  snprintf(cfg, sizeof(cfg), "{\"id\":\"%s\",\"path\":\"%s\"}", id, f->root);
  snprintf(icfg, sizeof(icfg), fmt, file);
  return support_run(ordo_wallet_import(f->ctx, cfg, RAW_KEY_OTHER, icfg), NULL);
}

/* Whether wallet id is at f->root, as ordo wallet list sees it (a
 * directory: its wallet.db; a database: its store). */
static int wallet_exists(wallet_fixture *f, const char *id) {
  json_t *l = support_run_json(ordo_wallet_list(f->ctx, f->config));
  json_t *ws = json_object_get(l, "wallets");
  int found = 0;
  for (size_t i = 0; i < json_array_size(ws); i++)
    if (strcmp(json_string_value(json_object_get(json_array_get(ws, i), "id")), id) == 0)
      found = 1;
  json_decref(l);
  return found;
}

static void test_export_import(void **state) {
  wallet_fixture *f = *state;
  char file[300];
  snprintf(file, sizeof(file), "%s/export.bin", f->dir);
  export_fixture(f, file, 600); /* more than one page and one batch */
  assert_false(marker_on_disk(file, "value 1"));

  assert_int_equal(import_into(f, "w2", file, FILE_KEY_FMT), ORDO_OK);
  char cfg[1100];
  snprintf(cfg, sizeof(cfg), "{\"id\":\"w2\",\"path\":\"%s\"}", f->root);
  assert_int_equal(support_run(ordo_wallet_open(f->ctx, cfg, RAW_KEY_OTHER), NULL), ORDO_OK);
  json_t *c = support_run_json(ordo_record_count(f->ctx, "w2", "odd", "{\"~n\":\"1\"}"));
  assert_int_equal(json_integer_value(json_object_get(c, "count")), 300);
  json_decref(c);
  json_t *r = support_run_json(ordo_record_get(f->ctx, "w2", "even", "r42", NULL));
  assert_string_equal(json_string_value(json_object_get(r, "value")),
                      "value 42 with \"quotes\" and \n");
  assert_string_equal(json_string_value(json_object_get(json_object_get(r, "tags"), "k")), "v");
  json_decref(r);
  /* Into an existing wallet id: refused, nothing touched. */
  assert_int_equal(import_into(f, "w2", file, FILE_KEY_FMT), ORDO_E_WALLET_EXISTS);
}

/* Copy the first n bytes of src to dst, optionally flipping byte flip. */
static void copy_file(const char *src, const char *dst, long n, long flip) {
  FILE *in = fopen(src, "rb"), *out = fopen(dst, "wb");
  assert_non_null(in);
  assert_non_null(out);
  int ch;
  long i = 0;
  while ((n < 0 || i < n) && (ch = fgetc(in)) != EOF) {
    fputc(i == flip ? ch ^ 0x20 : ch, out);
    i++;
  }
  fclose(in);
  fclose(out);
}

static void test_import_bad_files(void **state) {
  wallet_fixture *f = *state;
  char file[300], bad[300];
  snprintf(file, sizeof(file), "%s/export.bin", f->dir);
  snprintf(bad, sizeof(bad), "%s/bad.bin", f->dir);
  export_fixture(f, file, 300);
  struct stat sb;
  assert_int_equal(stat(file, &sb), 0);

  /* Wrong key. */
  assert_int_equal(import_into(f, "w3", file, WRONG_FILE_KEY_FMT), ORDO_E_WALLET_ACCESS);
  assert_false(wallet_exists(f, "w3"));
  /* Truncated: at several places, including just before the final chunk. */
  long cuts[] = {4, 20, sb.st_size / 2, sb.st_size - 1};
  for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
    copy_file(file, bad, cuts[i], -1);
    int rc = import_into(f, "w3", bad, FILE_KEY_FMT);
    assert_int_equal(rc, ORDO_E_WALLET_FILE);
    assert_false(wallet_exists(f, "w3"));
  }
  /* Tampered: header, first chunk, a middle byte, the last byte. */
  long flips[] = {10, 200, sb.st_size / 2, sb.st_size - 1};
  for (size_t i = 0; i < sizeof(flips) / sizeof(flips[0]); i++) {
    copy_file(file, bad, -1, flips[i]);
    int rc = import_into(f, "w3", bad, FILE_KEY_FMT);
    assert_true(rc == ORDO_E_WALLET_FILE || rc == ORDO_E_WALLET_ACCESS);
    assert_false(wallet_exists(f, "w3"));
  }
  /* Not an export at all; missing. */
  copy_file("/etc/hostname", bad, -1, -1);
  assert_int_equal(import_into(f, "w3", bad, FILE_KEY_FMT), ORDO_E_WALLET_FILE);
  assert_int_equal(import_into(f, "w3", "/nonexistent/x", FILE_KEY_FMT), ORDO_E_NOT_FOUND);
  assert_false(wallet_exists(f, "w3"));
}

/* A cancelled export leaves nothing behind: its first stage is held in the
 * heavy queue behind a blocker (one heavy thread), cancelled there, and no
 * file (final or temporary) appears. */
static void test_export_cancel(void **state) {
  wallet_fixture *f = *state;
  ordo_ctx_free(f->ctx);
  ordo_config cfg;
  ordo_config_init(&cfg);
  cfg.heavy_threads = 1;
  f->ctx = ordo_ctx_new(&cfg);
  assert_non_null(f->ctx);
  create_open(f);
  assert_int_equal(support_run(ordo_record_add(f->ctx, "w1", "t", "n", "v", NULL), NULL),
                   ORDO_OK);
  support_blocker b;
  support_blocker_init(&b, 0);
  ordo_op *blocker = ordo_submit(f->ctx, ORDO_CLASS_HEAVY, support_blocker_stage, &b);
  support_latch_wait(&b.started);
  char file[300], cfgx[512];
  snprintf(file, sizeof(file), "%s/cancelled.bin", f->dir);
  snprintf(cfgx, sizeof(cfgx), FILE_KEY_FMT, file);
  ordo_op *ex = ordo_wallet_export(f->ctx, "w1", cfgx);
  assert_int_equal(ordo_op_cancel(ex), ORDO_OK);
  assert_int_equal(ordo_op_wait(ex, -1), ORDO_E_CANCELED);
  ordo_op_release(ex);
  support_gate_open(&b.gate);
  assert_int_equal(ordo_op_wait(blocker, -1), ORDO_OK);
  ordo_op_release(blocker);
  support_blocker_destroy(&b);
  char cmd[400];
  snprintf(cmd, sizeof(cmd), "ls '%s' | grep -q cancelled", f->dir);
  assert_int_not_equal(system(cmd), 0); /* neither cancelled.bin nor .tmp-* */
}

/* ---- many threads on one wallet ------------------------------------------- */

#define CONC_THREADS 16
#define CONC_RECORDS 1000

typedef struct conc_arg {
  ordo_ctx *ctx;
  int thread;
  int failures;
} conc_arg;

static void *conc_thread(void *p) {
  conc_arg *a = p;
  char name[64], value[64];
  /* Keep a window of ops in flight: many callers at once is the point. */
  enum { WINDOW = 32 };
  ordo_op *ops[WINDOW] = {0};
  for (int i = 0; i < CONC_RECORDS; i++) {
    ordo_op **slot = &ops[i % WINDOW];
    if (*slot != NULL) {
      if (ordo_op_wait(*slot, -1) != ORDO_OK)
        a->failures++;
      ordo_op_release(*slot);
    }
    snprintf(name, sizeof(name), "r-%d-%d", a->thread, i);
    snprintf(value, sizeof(value), "value-%d-%d", a->thread, i);
    *slot = ordo_record_add(a->ctx, "w1", "conc", name, value, "{\"k\":\"v\"}");
  }
  for (int i = 0; i < WINDOW; i++) {
    if (ops[i] != NULL) {
      if (ordo_op_wait(ops[i], -1) != ORDO_OK)
        a->failures++;
      ordo_op_release(ops[i]);
    }
  }
  /* Read back a sample of this thread's records. */
  for (int i = 0; i < CONC_RECORDS; i += 97) {
    snprintf(name, sizeof(name), "r-%d-%d", a->thread, i);
    snprintf(value, sizeof(value), "\"value\":\"value-%d-%d\"", a->thread, i);
    ordo_op *op = ordo_record_get(a->ctx, "w1", "conc", name, NULL);
    if (ordo_op_wait(op, -1) != ORDO_OK || strstr(ordo_op_result(op), value) == NULL)
      a->failures++;
    ordo_op_release(op);
  }
  return NULL;
}

static void test_many_threads(void **state) {
  wallet_fixture *f = *state;
  create_open(f);
  pthread_t th[CONC_THREADS];
  conc_arg args[CONC_THREADS];
  for (int i = 0; i < CONC_THREADS; i++) {
    args[i] = (conc_arg){f->ctx, i, 0};
    assert_int_equal(pthread_create(&th[i], NULL, conc_thread, &args[i]), 0);
  }
  for (int i = 0; i < CONC_THREADS; i++) {
    pthread_join(th[i], NULL);
    assert_int_equal(args[i].failures, 0);
  }
  json_t *c = support_run_json(ordo_record_count(f->ctx, "w1", "conc", "{}"));
  assert_int_equal(json_integer_value(json_object_get(c, "count")),
                   CONC_THREADS * CONC_RECORDS);
  json_decref(c);
}

/* ---- two processes on one wallet file -------------------------------------- */

#define PROC_RECORDS 200

/* The child: open the wallet in a context of its own and add records. */
static int child_adds(const char *root, const char *tag) {
  char cfg[1100], name[64];
  snprintf(cfg, sizeof(cfg), "{\"id\":\"w1\",\"path\":\"%s\"}", root);
  ordo_ctx *ctx = ordo_ctx_new(NULL);
  if (ctx == NULL)
    return 2;
  int failures = 0;
  ordo_op *op = ordo_wallet_open(ctx, cfg, RAW_KEY);
  if (ordo_op_wait(op, -1) != ORDO_OK)
    failures++;
  ordo_op_release(op);
  for (int i = 0; i < PROC_RECORDS && failures == 0; i++) {
    snprintf(name, sizeof(name), "%s-%d", tag, i);
    op = ordo_record_add(ctx, "w1", "proc", name, "v", NULL);
    if (ordo_op_wait(op, -1) != ORDO_OK) {
      fprintf(stderr, "child %s: %s\n", tag, ordo_op_message(op));
      failures++;
    }
    ordo_op_release(op);
  }
  ordo_ctx_free(ctx);
  return failures == 0 ? 0 : 1;
}

static const char *self_path;

static void test_two_processes(void **state) {
  wallet_fixture *f = *state;
  create_open(f);
  pid_t pids[2];
  for (int i = 0; i < 2; i++) {
    pids[i] = fork();
    assert_true(pids[i] >= 0);
    if (pids[i] == 0) {
      /* A fresh process image: no threads or locks inherited from ours. */
      execl(self_path, self_path, "--child-adds", f->root, i == 0 ? "a" : "b", (char *)NULL);
      _exit(3);
    }
  }
  /* This process writes too, at the same time. */
  char name[32];
  for (int i = 0; i < PROC_RECORDS; i++) {
    snprintf(name, sizeof(name), "p-%d", i);
    assert_int_equal(support_run(ordo_record_add(f->ctx, "w1", "proc", name, "v", NULL), NULL),
                     ORDO_OK);
  }
  for (int i = 0; i < 2; i++) {
    int status = 0;
    assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
    if (!WIFEXITED(status))
      fprintf(stderr, "child %d: signal %d\n", i, WTERMSIG(status));
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
  }
  json_t *c = support_run_json(ordo_record_count(f->ctx, "w1", "proc", "{}"));
  assert_int_equal(json_integer_value(json_object_get(c, "count")), 3 * PROC_RECORDS);
  json_decref(c);
}

/* ---- many processes on one wallet, replayed --------------------------------- */

/*
 * RP_PROCS processes update and search one wallet at once. Each logs every
 * write it was told succeeded (JSON lines in f->dir/log.<i>), and when all
 * are done the wallet must hold exactly what replaying the logs one after
 * the other gives.
 *
 * The logs may be replayed in any order because the processes' writes
 * commute. A process writes only
 *   - records of its own (type "own", named o<i>_<m>): adds them, replaces
 *     their value and their tags, deletes them; no other process names
 *     them;
 *   - tags on the RP_SHARED shared records (type "shared"), which every
 *     process writes and none adds, deletes or changes otherwise: the tags
 *     are named after the process and its step (t<i>_<k>, ~p<i>_<k>),
 *     added with add_tags (a merge) and some deleted again with
 *     delete_tags; two processes never write the same tag name.
 * Writes to disjoint (record, tag name) keys commute, so the serial replay
 * is the one right answer. A backend that made add_tags or delete_tags a
 * read of the tag set, a change and a write back would drop another
 * process's tag written in between, and the comparison would show it; so
 * would a lost or doubled record or value.
 *
 * While they run, each process checks what must hold at every moment,
 * whatever the others are doing: its own live tags on a shared record are
 * there with their values and the ones it deleted are not; a search for a
 * tag of its own finds exactly that record; its own records, searched by
 * their owner tag, are exactly the ones it has, values and tags included;
 * the shared records are all there.
 */
#define RP_PROCS 8
#define RP_STEPS 40
#define RP_SHARED 4

/* Apply one logged write to model, {type: {name: {"value":…,"tags":{…}}}}.
 * 0 when the write could not have succeeded on that state (an add of a
 * record there, a change of one that is not): the logs contradict it. */
static int rp_apply(json_t *model, json_t *e) {
  const char *op = json_string_value(json_object_get(e, "op"));
  const char *type = json_string_value(json_object_get(e, "type"));
  const char *name = json_string_value(json_object_get(e, "name"));
  json_t *value = json_object_get(e, "value"), *tags = json_object_get(e, "tags");
  if (op == NULL || type == NULL || name == NULL)
    return 0;
  json_t *recs = json_object_get(model, type);
  if (recs == NULL) {
    recs = json_object();
    json_object_set_new(model, type, recs);
  }
  json_t *rec = json_object_get(recs, name);
  if (strcmp(op, "add") == 0) {
    if (rec != NULL)
      return 0;
    json_object_set_new(recs, name, json_pack("{s:O,s:o}", "value", value, "tags",
                                              json_deep_copy(tags)));
    return 1;
  }
  if (rec == NULL)
    return 0;
  if (strcmp(op, "value") == 0)
    json_object_set(rec, "value", value);
  else if (strcmp(op, "add_tags") == 0)
    json_object_update(json_object_get(rec, "tags"), tags);
  else if (strcmp(op, "tags") == 0)
    json_object_set_new(rec, "tags", json_deep_copy(tags));
  else if (strcmp(op, "delete_tags") == 0)
    for (size_t i = 0; i < json_array_size(tags); i++)
      json_object_del(json_object_get(rec, "tags"), json_string_value(json_array_get(tags, i)));
  else if (strcmp(op, "delete") == 0)
    json_object_del(recs, name);
  else
    return 0;
  return 1;
}

/* A search's records as the model has them: {name: {"value","tags"}}. */
static json_t *rp_records(json_t *result) {
  json_t *out = json_object(), *recs = json_object_get(result, "records");
  for (size_t i = 0; i < json_array_size(recs); i++) {
    json_t *r = json_array_get(recs, i);
    json_object_set_new(out, json_string_value(json_object_get(r, "name")),
                        json_pack("{s:O,s:O}", "value", json_object_get(r, "value"),
                                  "tags", json_object_get(r, "tags")));
  }
  return out;
}

typedef struct rp_child {
  ordo_ctx *ctx;
  FILE *log;
  int me;
  json_t *mine; /* what this process wrote: rp_apply's model of it */
} rp_child;

static int ORDO__PRINTF(2, 3) rp_fail(rp_child *c, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "process %d: ", c->me);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  return 1;
}

/* Run op to its end; the result parsed into *out unless out is NULL. */
static int rp_call(rp_child *c, ordo_op *op, json_t **out, const char *what) {
  int rc = ordo_op_wait(op, -1);
  if (rc != ORDO_OK)
    rp_fail(c, "%s: %s: %s", what, ordo_strerror(rc), ordo_op_message(op));
  else if (out != NULL && (*out = json_loads(ordo_op_result(op), 0, NULL)) == NULL)
    rc = rp_fail(c, "%s: the result is not JSON", what);
  ordo_op_release(op);
  return rc;
}

/* Do the write e describes; when it succeeded, log it and apply it to
 * c->mine. Takes e. */
static int rp_write(rp_child *c, json_t *e) {
  const char *op = json_string_value(json_object_get(e, "op"));
  const char *type = json_string_value(json_object_get(e, "type"));
  const char *name = json_string_value(json_object_get(e, "name"));
  const char *value = json_string_value(json_object_get(e, "value"));
  char *tags = json_object_get(e, "tags") != NULL
                   ? json_dumps(json_object_get(e, "tags"), JSON_COMPACT)
                   : NULL;
  ordo_op *o = strcmp(op, "add") == 0 ? ordo_record_add(c->ctx, "w1", type, name, value, tags)
               : strcmp(op, "value") == 0 ? ordo_record_update_value(c->ctx, "w1", type, name, value)
               : strcmp(op, "add_tags") == 0 ? ordo_record_add_tags(c->ctx, "w1", type, name, tags)
               : strcmp(op, "tags") == 0 ? ordo_record_update_tags(c->ctx, "w1", type, name, tags)
               : strcmp(op, "delete_tags") == 0
                   ? ordo_record_delete_tags(c->ctx, "w1", type, name, tags)
                   : ordo_record_delete(c->ctx, "w1", type, name);
  free(tags);
  int rc = rp_call(c, o, NULL, op);
  if (rc == ORDO_OK) {
    if (json_dumpf(e, c->log, JSON_COMPACT) != 0 || fputc('\n', c->log) == EOF ||
        fflush(c->log) != 0)
      rc = rp_fail(c, "cannot write the log");
    else if (!rp_apply(c->mine, e))
      rc = rp_fail(c, "%s %s: not valid on its own records", op, name);
  }
  json_decref(e);
  return rc;
}

/* The count of records of type that wql matches, by count and by search;
 * the two must agree when only this process changes what wql matches
 * (stable), else they are two moments. */
static int rp_count(rp_child *c, const char *type, const char *wql, int stable,
                    long long *n) {
  json_t *r = NULL, *s = NULL;
  if (rp_call(c, ordo_record_count(c->ctx, "w1", type, wql), &r, "count") != ORDO_OK ||
      rp_call(c, ordo_record_search(c->ctx, "w1", type, wql, "{\"retrieve_tags\":false}", 0, 0),
              &s, "search") != ORDO_OK) {
    json_decref(r);
    return 1;
  }
  *n = json_integer_value(json_object_get(r, "count"));
  long long found = (long long)json_array_size(json_object_get(s, "records"));
  json_decref(r);
  json_decref(s);
  return !stable || found == *n ? 0
                                 : rp_fail(c, "%s: count %lld, search %lld", wql, *n, found);
}

/* Checks after step k wrote to shared record sj (see the block above). */
static int rp_check(rp_child *c, int k, const char *sj) {
  char mine_t[32], mine_p[32], wql[200];
  long long n;
  snprintf(mine_t, sizeof mine_t, "t%d_", c->me);
  snprintf(mine_p, sizeof mine_p, "~p%d_", c->me);
  /* The shared record: my tags, exactly. */
  json_t *got = NULL;
  if (rp_call(c, ordo_record_get(c->ctx, "w1", "shared", sj, NULL), &got, "get") != ORDO_OK)
    return 1;
  json_t *have = json_object(), *want = json_object_get(
      json_object_get(json_object_get(c->mine, "shared"), sj), "tags");
  const char *key;
  json_t *v;
  json_object_foreach(json_object_get(got, "tags"), key, v) {
    if (strncmp(key, mine_t, strlen(mine_t)) == 0 || strncmp(key, mine_p, strlen(mine_p)) == 0)
      json_object_set(have, key, v);
  }
  int bad = !json_equal(have, want);
  if (bad) {
    char *a = json_dumps(have, JSON_SORT_KEYS), *b = json_dumps(want, JSON_SORT_KEYS);
    rp_fail(c, "step %d: my tags on %s are %s, not %s", k, sj, a, b);
    free(a);
    free(b);
  }
  json_decref(have);
  json_decref(got);
  if (bad)
    return 1;
  /* A tag of mine finds exactly its record; a deleted one finds none. */
  snprintf(wql, sizeof wql, "{\"t%d_%d\":\"%d\"}", c->me, k, k);
  if (rp_count(c, "shared", wql, 1, &n) != 0 || n != 1)
    return rp_fail(c, "step %d: %s found %lld", k, wql, n);
  snprintf(wql, sizeof wql, "{\"$and\":[{\"~p%d_%d\":{\"$like\":\"%d.%%\"}},{\"init\":\"1\"}]}",
           c->me, k, c->me);
  if (rp_count(c, "shared", wql, 1, &n) != 0 || n != 1)
    return rp_fail(c, "step %d: %s found %lld", k, wql, n);
  if (k % 3 == 2) {
    snprintf(wql, sizeof wql, "{\"t%d_%d\":\"%d\"}", c->me, k - 2, k - 2);
    if (rp_count(c, "shared", wql, 1, &n) != 0 || n != 0)
      return rp_fail(c, "step %d: %s (deleted) found %lld", k, wql, n);
  }
  /* My records: exactly those I have. */
  snprintf(wql, sizeof wql, "{\"owner\":\"%d\"}", c->me);
  if (rp_call(c, ordo_record_search(c->ctx, "w1", "own", wql, NULL, 0, 0), &got,
              "search") != ORDO_OK)
    return 1;
  have = rp_records(got);
  want = json_object_get(c->mine, "own");
  bad = !json_equal(have, want != NULL ? want : json_object());
  json_decref(have);
  json_decref(got);
  if (bad)
    return rp_fail(c, "step %d: my own records differ from what I wrote", k);
  /* Nobody adds or deletes a shared record. */
  if (rp_count(c, "shared", "{}", 1, &n) != 0 || n != RP_SHARED)
    return rp_fail(c, "step %d: %lld shared records", k, n);
  /* The others' records: no invariant, but the search must answer. */
  snprintf(wql, sizeof wql, "{\"$not\":{\"owner\":\"%d\"}}", c->me);
  return rp_count(c, "own", wql, 0, &n);
}

/* One process: wait at the gate (EOF on gate_fd), then RP_STEPS steps. */
static int rp_child_main(const char *root, const char *log, int me, int gate_fd) {
  rp_child c = {.me = me};
  char cfg[1100], name[32], tag[32], tag2[32], val[64], kstr[16];
  int rc = 1;
  snprintf(cfg, sizeof cfg, "{\"id\":\"w1\",\"path\":\"%s\"}", root);
  c.ctx = ordo_ctx_new(NULL);
  c.log = fopen(log, "w");
  c.mine = json_object();
  if (c.ctx == NULL || c.log == NULL || c.mine == NULL)
    goto done;
  json_t *shared = json_object();
  json_object_set_new(c.mine, "shared", shared);
  for (int j = 0; j < RP_SHARED; j++) {
    snprintf(name, sizeof name, "s%d", j);
    json_object_set_new(shared, name, json_pack("{s:n,s:{}}", "value", "tags"));
  }
  if (rp_call(&c, ordo_wallet_open(c.ctx, cfg, RAW_KEY), NULL, "open") != ORDO_OK)
    goto done;
  char b;
  while (read(gate_fd, &b, 1) > 0)
    ;
  close(gate_fd);
  for (int k = 0; k < RP_STEPS; k++) {
    char sj[16];
    /* A merge of two new tags into a shared record. */
    snprintf(sj, sizeof sj, "s%d", (k + me) % RP_SHARED);
    snprintf(tag, sizeof tag, "t%d_%d", me, k);
    snprintf(tag2, sizeof tag2, "~p%d_%d", me, k);
    snprintf(val, sizeof val, "%d.%d", me, k);
    snprintf(kstr, sizeof kstr, "%d", k);
    if (rp_write(&c, json_pack("{s:s,s:s,s:s,s:{s:s,s:s}}", "op", "add_tags", "type", "shared",
                               "name", sj, "tags", tag, kstr, tag2, val)) != 0)
      goto done;
    /* Every third step, one of mine from two steps back goes. */
    if (k % 3 == 2) {
      char sk[16];
      snprintf(sk, sizeof sk, "s%d", (k - 2 + me) % RP_SHARED);
      snprintf(tag, sizeof tag, "t%d_%d", me, k - 2);
      if (rp_write(&c, json_pack("{s:s,s:s,s:s,s:[s]}", "op", "delete_tags", "type", "shared",
                                 "name", sk, "tags", tag)) != 0)
        goto done;
    }
    /* A record of mine: added, its value changed, its tags replaced, and
     * every other one deleted again a cycle later. */
    snprintf(name, sizeof name, "o%d_%d", me, k / 4);
    snprintf(tag, sizeof tag, "%d", me);
    snprintf(tag2, sizeof tag2, "%d", k);
    json_t *e = NULL;
    switch (k % 4) {
    case 0:
      snprintf(val, sizeof val, "v %d %d \"q\"\n", me, k);
      e = json_pack("{s:s,s:s,s:s,s:s,s:{s:s,s:s}}", "op", "add", "type", "own", "name", name,
                    "value", val, "tags", "owner", tag, "~gen", tag2);
      break;
    case 1:
      snprintf(val, sizeof val, "w %d %d", me, k);
      e = json_pack("{s:s,s:s,s:s,s:s}", "op", "value", "type", "own", "name", name, "value", val);
      break;
    case 2:
      e = json_pack("{s:s,s:s,s:s,s:{s:s,s:s,s:s}}", "op", "tags", "type", "own", "name", name,
                    "tags", "owner", tag, "~gen", tag2, "x", tag2);
      break;
    default:
      if ((k / 4) % 2 == 1) {
        snprintf(name, sizeof name, "o%d_%d", me, k / 4 - 1);
        e = json_pack("{s:s,s:s,s:s}", "op", "delete", "type", "own", "name", name);
      }
    }
    if (e != NULL && rp_write(&c, e) != 0)
      goto done;
    if (rp_check(&c, k, sj) != 0)
      goto done;
  }
  rc = 0;
done:
  if (c.log != NULL && fclose(c.log) != 0)
    rc = 1;
  json_decref(c.mine);
  ordo_ctx_free(c.ctx);
  return rc;
}

static void test_processes_replay(void **state) {
  wallet_fixture *f = *state;
  create_open(f);
  json_t *model = json_object(), *shared = json_object();
  json_object_set_new(model, "shared", shared);
  json_object_set_new(model, "own", json_object());
  for (int j = 0; j < RP_SHARED; j++) {
    char name[16], value[32];
    snprintf(name, sizeof name, "s%d", j);
    snprintf(value, sizeof value, "shared %d", j);
    assert_int_equal(support_run(ordo_record_add(f->ctx, "w1", "shared", name, value,
                                                 "{\"init\":\"1\"}"), NULL), ORDO_OK);
    json_object_set_new(shared, name, json_pack("{s:s,s:{s:s}}", "value", value, "tags",
                                                 "init", "1"));
  }
  /* The gate: every process opens the wallet, then waits for EOF on the
   * pipe, which comes when this process closes the write end (the
   * children never have it: close-on-exec), so they start together. */
  int gate[2];
  assert_int_equal(pipe(gate), 0);
  assert_int_equal(fcntl(gate[1], F_SETFD, FD_CLOEXEC), 0);
  pid_t pids[RP_PROCS];
  char logs[RP_PROCS][300];
  for (int i = 0; i < RP_PROCS; i++) {
    char me[16], fd[16];
    snprintf(logs[i], sizeof logs[i], "%s/log.%d", f->dir, i);
    snprintf(me, sizeof me, "%d", i);
    snprintf(fd, sizeof fd, "%d", gate[0]);
    pids[i] = fork();
    assert_true(pids[i] >= 0);
    if (pids[i] == 0) {
      execl(self_path, self_path, "--child-replay", f->root, logs[i], me, fd, (char *)NULL);
      _exit(3);
    }
  }
  close(gate[0]);
  close(gate[1]);
  int failed = 0;
  for (int i = 0; i < RP_PROCS; i++) {
    int status = 0;
    assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      fprintf(stderr, "process %d: %s %d\n", i, WIFEXITED(status) ? "exit" : "signal",
              WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
      failed++;
    }
  }
  assert_int_equal(failed, 0);

  /* Replay the logs, one process after the other. */
  size_t writes = 0;
  for (int i = 0; i < RP_PROCS; i++) {
    FILE *in = fopen(logs[i], "r");
    assert_non_null(in);
    char line[4096];
    while (fgets(line, sizeof line, in) != NULL) {
      json_t *e = json_loads(line, 0, NULL);
      assert_non_null(e);
      if (!rp_apply(model, e))
        fail_msg("log %d: %s does not apply", i, line);
      json_decref(e);
      writes++;
    }
    fclose(in);
  }
  assert_true(writes > RP_PROCS * RP_STEPS);

  /* The wallet, every record with its value and tags. */
  json_t *actual = json_object();
  const char *types[] = {"shared", "own"};
  for (size_t t = 0; t < 2; t++) {
    json_t *r = support_run_json(ordo_record_search(f->ctx, "w1", types[t], "{}",
                                                    "{\"retrieve_tags\":true}", 0, 0));
    json_object_set_new(actual, types[t], rp_records(r));
    json_decref(r);
  }
  if (!json_equal(model, actual)) {
    const char *type, *name;
    json_t *recs, *rec;
    json_object_foreach(model, type, recs) {
      json_t *arecs = json_object_get(actual, type);
      json_object_foreach(recs, name, rec) {
        json_t *a = json_object_get(arecs, name);
        if (a == NULL || !json_equal(a, rec)) {
          char *x = json_dumps(rec, JSON_SORT_KEYS), *y = a ? json_dumps(a, JSON_SORT_KEYS) : NULL;
          fprintf(stderr, "%s %s: replayed %s\n  in the wallet %s\n", type, name, x,
                  y ? y : "(none)");
          free(x);
          free(y);
        }
      }
      json_object_foreach(arecs, name, rec) {
        if (json_object_get(recs, name) == NULL)
          fprintf(stderr, "%s %s: in the wallet, not replayed\n", type, name);
      }
    }
    fail_msg("the wallet differs from the serial replay of the logs");
  }
  json_decref(actual);
  json_decref(model);
}

/* ---- no secret in an error message -------------------------------------- */

/* Every call that takes credentials, configs, keys or values, given JSON
 * that breaks at the secret: refused, and no message quotes it. */
static void test_no_secret_in_messages(void **state) {
  wallet_fixture *f = *state;
  char imp[1100];
  ordo_config cfg;
  assert_int_equal(support_run_no_marker(ordo_wallet_create(f->ctx, SUPPORT_BAD_WITH_MARKER, RAW_KEY),
                                 "create config"), ORDO_E_JSON);
  assert_int_equal(support_run_no_marker(ordo_wallet_create(f->ctx, f->config, SUPPORT_BAD_WITH_MARKER),
                                 "create credentials"), ORDO_E_JSON);
  create_open(f);
  assert_int_equal(support_run_no_marker(ordo_wallet_open(f->ctx, f->config, SUPPORT_BAD_WITH_MARKER),
                                 "open credentials"), ORDO_E_JSON);
  assert_int_equal(support_run_no_marker(ordo_wallet_delete(f->ctx, f->config, SUPPORT_BAD_WITH_MARKER),
                                 "delete credentials"), ORDO_E_JSON);
  assert_int_equal(support_run_no_marker(ordo_wallet_list(f->ctx, SUPPORT_BAD_WITH_MARKER), "list config"),
                   ORDO_E_JSON);
  assert_int_equal(support_run_no_marker(ordo_wallet_export(f->ctx, "w1", SUPPORT_BAD_WITH_MARKER),
                                 "export config"), ORDO_E_JSON);
  snprintf(imp, sizeof imp, "{\"id\":\"w2\",\"path\":\"%s\"}", f->root);
  assert_int_equal(support_run_no_marker(ordo_wallet_import(f->ctx, imp, RAW_KEY, SUPPORT_BAD_WITH_MARKER),
                                 "import config"), ORDO_E_JSON);
  assert_int_equal(support_run_no_marker(ordo_wallet_import(f->ctx, imp, SUPPORT_BAD_WITH_MARKER,
                                                    "{\"path\":\"/nonexistent\",\"key\":\"k\"}"),
                                 "import credentials"), ORDO_E_JSON);
  assert_int_equal(support_run_no_marker(ordo_record_add(f->ctx, "w1", "t", "n", "v", SUPPORT_BAD_WITH_MARKER),
                                 "record tags"), ORDO_E_JSON);
  assert_int_equal(support_run_no_marker(ordo_record_search(f->ctx, "w1", "t", SUPPORT_BAD_WITH_MARKER, NULL,
                                                    0, 0), "search query"), ORDO_E_WQL);
  assert_int_equal(support_run_no_marker(ordo_record_count(f->ctx, "w1", "t", SUPPORT_BAD_WITH_MARKER),
                                 "count query"), ORDO_E_WQL);
  /* The runtime's own config. */
  ordo_config_init(&cfg);
  assert_int_equal(ordo_config_from_json(&cfg, SUPPORT_BAD_WITH_MARKER), ORDO_E_JSON);
  assert_null(strstr(ordo_last_error_message(), SUPPORT_MARKER));
}

/* ---- storage faults -------------------------------------------------------- */

/* A disk that fails writes (full, then IO errors on sync): each write is
 * refused with ORDO_E_STORAGE, reads (also those queued with the failing
 * writes) go on, and writes work again, without a reopen, once it clears;
 * nothing refused is there after a reopen. */
static void test_storage_faults(void **state) {
  wallet_fixture *f = *state;
  char spec[400];
  create_open(f);
  assert_int_equal(support_run(ordo_record_add(f->ctx, "w1", "t", "c1", "v1",
                                               "{\"a\":\"1\"}"), NULL), ORDO_OK);
  snprintf(spec, sizeof spec, "write:enospc:path=%s", f->dir);
  assert_int_equal(ordo_storage_fault_set_spec(spec), ORDO_OK);
  assert_int_equal(support_run(ordo_record_add(f->ctx, "w1", "t", "c2", "v2", NULL),
                               NULL), ORDO_E_STORAGE);
  snprintf(spec, sizeof spec, "sync:eio:path=%s", f->dir);
  assert_int_equal(ordo_storage_fault_set_spec(spec), ORDO_OK);
  assert_int_equal(support_run(ordo_record_update_value(f->ctx, "w1", "t", "c1", "v9"),
                               NULL), ORDO_E_STORAGE);
  /* Writes and reads at once: every write fails, every read answers. */
  ordo_op *w[8], *r[8];
  for (int i = 0; i < 8; i++) {
    char name[16];
    snprintf(name, sizeof name, "x%d", i);
    w[i] = ordo_record_add(f->ctx, "w1", "t", name, "v", NULL);
    r[i] = ordo_record_get(f->ctx, "w1", "t", "c1", NULL);
  }
  for (int i = 0; i < 8; i++) {
    assert_int_equal(support_run(w[i], NULL), ORDO_E_STORAGE);
    json_t *got = support_run_json(r[i]);
    assert_string_equal(json_string_value(json_object_get(got, "value")), "v1");
    json_decref(got);
  }
  json_t *c = support_run_json(ordo_record_count(f->ctx, "w1", "t", "{\"a\":\"1\"}"));
  assert_int_equal(json_integer_value(json_object_get(c, "count")), 1);
  json_decref(c);
  ordo_storage_fault_clear();

  assert_int_equal(support_run(ordo_record_add(f->ctx, "w1", "t", "c3", "v3", NULL),
                               NULL), ORDO_OK);
  assert_int_equal(support_run(ordo_wallet_close(f->ctx, "w1"), NULL), ORDO_OK);
  assert_int_equal(support_run(ordo_wallet_open(f->ctx, f->config, RAW_KEY), NULL), ORDO_OK);
  json_t *got = support_run_json(ordo_record_get(f->ctx, "w1", "t", "c1", NULL));
  assert_string_equal(json_string_value(json_object_get(got, "value")), "v1");
  json_decref(got);
  assert_int_equal(support_run(ordo_record_get(f->ctx, "w1", "t", "c3", NULL), NULL),
                   ORDO_OK);
  assert_int_equal(support_run(ordo_record_get(f->ctx, "w1", "t", "c2", NULL), NULL),
                   ORDO_E_RECORD_NOT_FOUND);
  assert_int_equal(support_run(ordo_record_get(f->ctx, "w1", "t", "x0", NULL), NULL),
                   ORDO_E_RECORD_NOT_FOUND);
}

/* The processes the tests start (the test binary again): their exit
 * status, or -1 when argv is not one of them. */
static int wallet_child_main(int argc, char **argv) {
  if (argc == 4 && strcmp(argv[1], "--child-adds") == 0)
    return child_adds(argv[2], argv[3]);
  if (argc == 6 && strcmp(argv[1], "--child-replay") == 0)
    return rp_child_main(argv[2], argv[3], atoi(argv[4]), atoi(argv[5]));
  return -1;
}

#ifndef WALLET_TESTS_NO_MAIN
int main(int argc, char **argv) {
  int child = wallet_child_main(argc, argv);
  if (child >= 0)
    return child;
  self_path = argv[0];
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_lifecycle_passphrase, setup, teardown),
      cmocka_unit_test_setup_teardown(test_reopen_keeps_records, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bad_input, setup, teardown),
      cmocka_unit_test_setup_teardown(test_record_crud_and_tags, setup, teardown),
      cmocka_unit_test_setup_teardown(test_search, setup, teardown),
      cmocka_unit_test_setup_teardown(test_encrypted_at_rest, setup, teardown),
      cmocka_unit_test_setup_teardown(test_export_import, setup, teardown),
      cmocka_unit_test_setup_teardown(test_import_bad_files, setup, teardown),
      cmocka_unit_test_setup_teardown(test_export_cancel, setup, teardown),
      cmocka_unit_test_setup_teardown(test_many_threads, setup, teardown),
      cmocka_unit_test_setup_teardown(test_two_processes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_processes_replay, setup, teardown),
      cmocka_unit_test_setup_teardown(test_no_secret_in_messages, setup, teardown),
      cmocka_unit_test_setup_teardown(test_storage_faults, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
#endif /* WALLET_TESTS_NO_MAIN */

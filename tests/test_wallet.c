/*
 * test_wallet.c — wallets and records through the public API: lifecycle,
 * credentials, records and tags, WQL search, encryption at rest, sharing,
 * and many threads on one wallet.
 */
#include "storage/storage.h"
#include "support/support.h"

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
  char dir[256];
  char config[512];
} wallet_fixture;


static int setup(void **state) {
  wallet_fixture *f = calloc(1, sizeof(*f));
  snprintf(f->dir, sizeof(f->dir), "/tmp/ordo-test-wallet-XXXXXX");
  assert_non_null(mkdtemp(f->dir));
  snprintf(f->config, sizeof(f->config), "{\"id\":\"w1\",\"path\":\"%s\"}", f->dir);
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
  char cfg[600];
  snprintf(cfg, sizeof(cfg), "{\"id\":\"w1\",\"path\":\"%s\",\"storage\":\"tape\"}", f->dir);
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
  char cfg[512], icfg[512];
  snprintf(cfg, sizeof(cfg), "{\"id\":\"%s\",\"path\":\"%s\"}", id, f->dir);
  snprintf(icfg, sizeof(icfg), fmt, file);
  return support_run(ordo_wallet_import(f->ctx, cfg, RAW_KEY_OTHER, icfg), NULL);
}

static int wallet_dir_exists(wallet_fixture *f, const char *id) {
  char p[400];
  struct stat sb;
  snprintf(p, sizeof(p), "%s/%s/wallet.db", f->dir, id);
  return stat(p, &sb) == 0;
}

static void test_export_import(void **state) {
  wallet_fixture *f = *state;
  char file[300];
  snprintf(file, sizeof(file), "%s/export.bin", f->dir);
  export_fixture(f, file, 600); /* more than one page and one batch */
  assert_false(marker_on_disk(file, "value 1"));

  assert_int_equal(import_into(f, "w2", file, FILE_KEY_FMT), ORDO_OK);
  char cfg[512];
  snprintf(cfg, sizeof(cfg), "{\"id\":\"w2\",\"path\":\"%s\"}", f->dir);
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
  assert_false(wallet_dir_exists(f, "w3"));
  /* Truncated: at several places, including just before the final chunk. */
  long cuts[] = {4, 20, sb.st_size / 2, sb.st_size - 1};
  for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
    copy_file(file, bad, cuts[i], -1);
    int rc = import_into(f, "w3", bad, FILE_KEY_FMT);
    assert_int_equal(rc, ORDO_E_WALLET_FILE);
    assert_false(wallet_dir_exists(f, "w3"));
  }
  /* Tampered: header, first chunk, a middle byte, the last byte. */
  long flips[] = {10, 200, sb.st_size / 2, sb.st_size - 1};
  for (size_t i = 0; i < sizeof(flips) / sizeof(flips[0]); i++) {
    copy_file(file, bad, -1, flips[i]);
    int rc = import_into(f, "w3", bad, FILE_KEY_FMT);
    assert_true(rc == ORDO_E_WALLET_FILE || rc == ORDO_E_WALLET_ACCESS);
    assert_false(wallet_dir_exists(f, "w3"));
  }
  /* Not an export at all; missing. */
  copy_file("/etc/hostname", bad, -1, -1);
  assert_int_equal(import_into(f, "w3", bad, FILE_KEY_FMT), ORDO_E_WALLET_FILE);
  assert_int_equal(import_into(f, "w3", "/nonexistent/x", FILE_KEY_FMT), ORDO_E_NOT_FOUND);
  assert_false(wallet_dir_exists(f, "w3"));
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
static int child_adds(const char *dir, const char *tag) {
  char cfg[400], name[64];
  snprintf(cfg, sizeof(cfg), "{\"id\":\"w1\",\"path\":\"%s\"}", dir);
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
      execl(self_path, self_path, "--child-adds", f->dir, i == 0 ? "a" : "b", (char *)NULL);
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

/* ---- no secret in an error message -------------------------------------- */

/* Every call that takes credentials, configs, keys or values, given JSON
 * that breaks at the secret: refused, and no message quotes it. */
static void test_no_secret_in_messages(void **state) {
  wallet_fixture *f = *state;
  char imp[600];
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
  snprintf(imp, sizeof imp, "{\"id\":\"w2\",\"path\":\"%s\"}", f->dir);
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

int main(int argc, char **argv) {
  if (argc == 4 && strcmp(argv[1], "--child-adds") == 0)
    return child_adds(argv[2], argv[3]);
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
      cmocka_unit_test_setup_teardown(test_no_secret_in_messages, setup, teardown),
      cmocka_unit_test_setup_teardown(test_storage_faults, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

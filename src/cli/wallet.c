/*
 * wallet.c — `ordo wallet …`: the wallet and record commands of the C API
 * (include/ordo.h) on the command line, one row of wallet_cmds each; the
 * common path that runs a row is group.c's.
 */
#include "cli/wallet_int.h"

#include <errno.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A strict unsigned decimal. */
static int parse_count(const char *s, unsigned long long *out) {
  char *end;
  if (s == NULL) {
    *out = 0;
    return 0;
  }
  if (*s < '0' || *s > '9')
    return -1;
  errno = 0;
  *out = strtoull(s, &end, 10);
  return errno != 0 || *end != '\0' ? -1 : 0;
}

/* The export file's config: {"path", "key", "key_derivation_method"}. */
static int export_file_json(cli_env *e, const cli_args *a, const char *path,
                            char **out) {
  char *fkey = NULL;
  int rc = cli_read_secret(e, "export key", "ORDO_EXPORT_KEY",
                           a->export_key_file, NULL, 0, 0, &fkey);
  if (rc != ORDO_CLI_OK)
    return rc;
  rc = cli_kv_json(out, "path", path, "key", fkey != NULL ? fkey : e->key,
                   "key_derivation_method", a->export_kdf, (const char *)NULL);
  sodium_free(fkey);
  if (rc == ORDO_E_INVAL)
    return cli_usage_error(e, "%s is not UTF-8", path);
  return rc != ORDO_OK ? cli_report(e, rc, NULL) : ORDO_CLI_OK;
}

static int w_create(cli_env *e, const cli_args *a) {
  return cli_say(e, a, ordo_wallet_create(e->ctx, e->config, e->creds),
                 "created wallet '%s'\n", a->id);
}

/* The wallet was opened by cli_exec: nothing left but to say so. */
static int w_open_check(cli_env *e, const cli_args *a) {
  (void)e;
  if (a->json)
    printf("{\"id\":\"%s\",\"open\":true}\n", a->id);
  else
    printf("wallet '%s' opens with this key\n", a->id);
  return ORDO_CLI_OK;
}

static int w_delete(cli_env *e, const cli_args *a) {
  return cli_say(e, a, ordo_wallet_delete(e->ctx, e->config, e->creds),
                 "deleted wallet '%s'\n", a->id);
}

static void print_wallets(json_t *r, const cli_args *a) {
  json_t *w;
  size_t i;
  (void)a;
  json_array_foreach(json_object_get(r, "wallets"), i, w)
      printf("%s\n", cli_str_or(w, "id", "?"));
}

static int w_list(cli_env *e, const cli_args *a) {
  return cli_show(e, a, ordo_wallet_list(e->ctx, e->config), print_wallets);
}

static void print_exported(json_t *r, const cli_args *a) {
  printf("exported %lld records to %s\n",
         (long long)json_integer_value(json_object_get(r, "records")), a->to);
}

static void print_imported(json_t *r, const cli_args *a) {
  printf("imported %lld records into wallet '%s'\n",
         (long long)json_integer_value(json_object_get(r, "records")), a->id);
}

/* export --to FILE, or import --from FILE: the same but for the op. */
static int w_transfer(cli_env *e, const cli_args *a, int import) {
  char *cfg;
  int rc = export_file_json(e, a, import ? a->from : a->to, &cfg);
  if (rc != ORDO_CLI_OK)
    return rc;
  rc = import ? cli_show(e, a,
                         ordo_wallet_import(e->ctx, e->config, e->creds, cfg),
                         print_imported)
              : cli_show(e, a, ordo_wallet_export(e->ctx, a->id, cfg),
                         print_exported);
  sodium_free(cfg);
  return rc;
}

static int w_export(cli_env *e, const cli_args *a) {
  return w_transfer(e, a, 0);
}

static int w_import(cli_env *e, const cli_args *a) {
  return w_transfer(e, a, 1);
}

/* --value V or --value-file FILE, at most one; *buf malloc'd or NULL. */
static int value_of(const cli_env *e, const cli_args *a, const char **value,
                    char **buf) {
  size_t len;
  int rc;
  *buf = NULL;
  *value = a->value;
  if (a->value_file == NULL)
    return ORDO_CLI_OK;
  if (a->value != NULL)
    return cli_usage_error(e, "give --value or --value-file, not both");
  if ((rc = cli_read_input(e, a->value_file, buf, &len)) != ORDO_CLI_OK)
    return rc;
  if (strlen(*buf) != len) {
    free(*buf);
    *buf = NULL;
    return cli_usage_error(e, "%s: a value cannot hold NUL bytes",
                           a->value_file);
  }
  *value = *buf;
  return ORDO_CLI_OK;
}

static void print_record(json_t *rec, const cli_args *a) {
  const char *k;
  json_t *v;
  (void)a;
  printf("type:  %s\n", cli_str_or(rec, "type", "?"));
  printf("name:  %s\n", cli_str_or(rec, "name", "?"));
  printf("value: %s\n", cli_str_or(rec, "value", ""));
  printf("tags: ");
  json_object_foreach(json_object_get(rec, "tags"), k, v)
      printf(" %s=%s", k, json_string_value(v) ? json_string_value(v) : "");
  putchar('\n');
}

static const char record_opts[] =
    "{\"retrieve_value\":true,\"retrieve_tags\":true,\"retrieve_type\":true}";

/* Print a record with --json as get returns it, or readably. */
static int show_record(cli_env *e, const cli_args *a) {
  return cli_show(e, a,
                  ordo_record_get(e->ctx, a->id, a->type, a->name, record_opts),
                  print_record);
}

static int r_add(cli_env *e, const cli_args *a) {
  const char *value;
  char *buf;
  int rc = value_of(e, a, &value, &buf);
  if (rc != ORDO_CLI_OK)
    return rc;
  rc = cli_say(e, a,
               ordo_record_add(e->ctx, a->id, a->type, a->name,
                               value != NULL ? value : "", a->tags),
               "added %s/%s\n", a->type, a->name);
  free(buf);
  return rc;
}

static int r_get(cli_env *e, const cli_args *a) { return show_record(e, a); }

/* Value, then tags (replaced, added, deleted): one op each, in that order;
 * then the record as it is now. */
static int r_update(cli_env *e, const cli_args *a) {
  const char *value;
  char *buf;
  int rc;

  if (a->value == NULL && a->value_file == NULL && a->tags == NULL &&
      a->add_tags == NULL && a->delete_tags == NULL)
    return cli_usage_error(e,
                           "record update: give --value, --value-file, --tags, "
                           "--add-tags or --delete-tags");
  if ((rc = value_of(e, a, &value, &buf)) != ORDO_CLI_OK)
    return rc;
  if (value != NULL)
    rc = cli_run_op_only(
        e, ordo_record_update_value(e->ctx, a->id, a->type, a->name, value));
  free(buf);
  if (rc == ORDO_CLI_OK && a->tags != NULL)
    rc = cli_run_op_only(
        e, ordo_record_update_tags(e->ctx, a->id, a->type, a->name, a->tags));
  if (rc == ORDO_CLI_OK && a->add_tags != NULL)
    rc = cli_run_op_only(
        e, ordo_record_add_tags(e->ctx, a->id, a->type, a->name, a->add_tags));
  if (rc == ORDO_CLI_OK && a->delete_tags != NULL)
    rc = cli_run_op_only(e, ordo_record_delete_tags(e->ctx, a->id, a->type,
                                                    a->name, a->delete_tags));
  return rc != ORDO_CLI_OK ? rc : show_record(e, a);
}

static int r_delete(cli_env *e, const cli_args *a) {
  return cli_say(e, a, ordo_record_delete(e->ctx, a->id, a->type, a->name),
                 "deleted %s/%s\n", a->type, a->name);
}

static void print_records(json_t *r, const cli_args *a) {
  json_t *rec, *recs = json_object_get(r, "records");
  size_t i;
  (void)a;
  json_array_foreach(recs, i, rec) {
    char *tags =
        json_dumps(json_object_get(rec, "tags"), JSON_COMPACT | JSON_SORT_KEYS);
    printf("%s\t%s\t%s\n", cli_str_or(rec, "name", "?"),
           cli_str_or(rec, "value", ""), tags != NULL ? tags : "{}");
    free(tags);
  }
  printf("%zu of %lld records\n", json_array_size(recs),
         (long long)json_integer_value(json_object_get(r, "total")));
}

static int r_search(cli_env *e, const cli_args *a) {
  unsigned long long offset, limit;
  if (parse_count(a->offset, &offset) != 0)
    return cli_usage_error(e, "bad value '%s' for --offset", a->offset);
  if (parse_count(a->limit, &limit) != 0)
    return cli_usage_error(e, "bad value '%s' for --limit", a->limit);
  return cli_show(e, a,
                  ordo_record_search(e->ctx, a->id, a->type,
                                     a->query != NULL ? a->query : "{}",
                                     "{\"retrieve_value\":true,"
                                     "\"retrieve_tags\":true,"
                                     "\"retrieve_type\":true,"
                                     "\"retrieve_total_count\":true}",
                                     offset, limit),
                  print_records);
}

static void print_count(json_t *r, const cli_args *a) {
  (void)a;
  printf("%lld\n", (long long)json_integer_value(json_object_get(r, "count")));
}

static int r_count(cli_env *e, const cli_args *a) {
  return cli_show(e, a,
                  ordo_record_count(e->ctx, a->id, a->type,
                                    a->query != NULL ? a->query : "{}"),
                  print_count);
}

static const cli_cmd wallet_cmds[] = {
    {"create", "create a wallet",
     "--id ID [--path DIR] [--kdf M] [--key-file FILE] [--json]",
     "Create a wallet whose key is the wallet key, through the KDF M.\n"
     "JSON: {\"id\":ID}.",
     F_WALLET | F_KDF, F_ID, NEED_KEY | NEED_CONFIRM, w_create},
    {"open-check", "check that a wallet opens with the key",
     "--id ID [--path DIR] [--key-file FILE] [--json]",
     "Open the wallet and close it again: exit 0 if the key is right,\n"
     "1 with ORDO_E_WALLET_ACCESS if not. JSON: {\"id\":ID,\"open\":true}.",
     F_WALLET, F_ID, NEED_KEY | NEED_OPEN, w_open_check},
    {"delete", "delete a wallet (checks the key first)",
     "--id ID [--path DIR] [--key-file FILE] [--json]",
     "Check the key, then remove the wallet and its files. JSON: {}.", F_WALLET,
     F_ID, NEED_KEY, w_delete},
    {"list", "list the wallets in a directory or database", "[--path DIR] [--json]",
     "One wallet id a line.\n"
     "JSON: {\"wallets\":[{\"id\":ID,\"open\":false},...]}.",
     F_PATH | F_JSON, 0, 0, w_list},
    {"export", "export a wallet to an encrypted file",
     "--id ID --to FILE [--path DIR] [--key-file FILE] [--export-key-file "
     "FILE] [--export-kdf M] [--json]",
     "Write every record to FILE, encrypted with the export key (the\n"
     "wallet key unless $ORDO_EXPORT_KEY or --export-key-file says\n"
     "otherwise). FILE appears only when complete.\n"
     "JSON: {\"path\":FILE,\"records\":N}.",
     F_WALLET | F_TO | F_EXPORT_KEY_FILE | F_EXPORT_KDF, F_ID | F_TO,
     NEED_KEY | NEED_OPEN, w_export},
    {"import", "create a wallet from an export file",
     "--id ID --from FILE [--path DIR] [--kdf M] [--key-file FILE] "
     "[--export-key-file FILE] [--json]",
     "Create the wallet ID (key: the wallet key, through --kdf) from the\n"
     "export FILE (key: $ORDO_EXPORT_KEY, --export-key-file, else the\n"
     "wallet key). A truncated or altered file fails with\n"
     "ORDO_E_WALLET_FILE and leaves no wallet.\n"
     "JSON: {\"id\":ID,\"records\":N}.",
     F_WALLET | F_KDF | F_FROM | F_EXPORT_KEY_FILE, F_ID | F_FROM,
     NEED_KEY | NEED_CONFIRM, w_import},
    {"record add", "add a record",
     "--id ID --type T --name N [--value V | --value-file FILE] [--tags "
     "JSON] [--path DIR] [--key-file FILE] [--json]",
     "Add a record (the value defaults to empty). ORDO_E_RECORD_DUPLICATE\n"
     "if TYPE/NAME exists. JSON: {}.",
     F_WALLET | F_TYPE | F_NAME | F_VALUE | F_VALUE_FILE | F_TAGS,
     F_ID | F_TYPE | F_NAME, NEED_KEY | NEED_OPEN, r_add},
    {"record get", "show a record",
     "--id ID --type T --name N [--path DIR] [--key-file FILE] [--json]",
     "JSON: {\"type\":T,\"name\":N,\"value\":V,\"tags\":{...}}.",
     F_WALLET | F_TYPE | F_NAME, F_ID | F_TYPE | F_NAME, NEED_KEY | NEED_OPEN,
     r_get},
    {"record update", "change a record's value or tags",
     "--id ID --type T --name N [--value V | --value-file FILE] [--tags "
     "JSON] [--add-tags JSON] [--delete-tags JSON] [--path DIR] [--key-file "
     "FILE] [--json]",
     "Set the value, replace the tags, add tags, delete tags: each given\n"
     "one in that order, one op each. Then print the record as get does.",
     F_WALLET | F_TYPE | F_NAME | F_VALUE | F_VALUE_FILE | F_TAGS | F_ADD_TAGS |
         F_DELETE_TAGS,
     F_ID | F_TYPE | F_NAME, NEED_KEY | NEED_OPEN, r_update},
    {"record delete", "delete a record",
     "--id ID --type T --name N [--path DIR] [--key-file FILE] [--json]",
     "ORDO_E_RECORD_NOT_FOUND if absent. JSON: {}.", F_WALLET | F_TYPE | F_NAME,
     F_ID | F_TYPE | F_NAME, NEED_KEY | NEED_OPEN, r_delete},
    {"record search", "search records of a type with WQL",
     "--id ID --type T [--query WQL] [--offset N] [--limit N] [--path DIR] "
     "[--key-file FILE] [--json]",
     "One record a line: name, value and tags, tab-separated; then a\n"
     "count. Bad WQL: ORDO_E_WQL, exit 2.\n"
     "JSON: {\"records\":[{\"type\",\"name\",\"value\",\"tags\"},...],\n"
     "       \"total\":N}.",
     F_WALLET | F_TYPE | F_QUERY | F_OFFSET | F_LIMIT, F_ID | F_TYPE,
     NEED_KEY | NEED_OPEN, r_search},
    {"record count", "count records of a type matching WQL",
     "--id ID --type T [--query WQL] [--path DIR] [--key-file FILE] [--json]",
     "JSON: {\"count\":N}.", F_WALLET | F_TYPE | F_QUERY, F_ID | F_TYPE,
     NEED_KEY | NEED_OPEN, r_count},
};

int ordo__wallet_main(int argc, char **argv) {
  if (sodium_init() < 0) {
    fputs("ordo wallet: libsodium failed to start\n", stderr);
    return ORDO_CLI_FAIL;
  }
  return cli_group_main(
      "ordo wallet", wallet_cmds, sizeof wallet_cmds / sizeof wallet_cmds[0],
      "Wallets and their records. Each command opens the\n"
      "wallet, does one thing and closes it. The wallet key is\n"
      "never taken on the command line: $ORDO_WALLET_KEY, else\n"
      "--key-file FILE (not world-readable), else the terminal\n"
      "with echo off.",
      argc, argv);
}

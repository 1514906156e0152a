/*
 * did.c — `ordo did …`: DIDs and ed25519 keys in a wallet (create, rotate,
 * sign, verify, pack, unpack), one row of did_cmds each; the common path
 * that runs a row is group.c's. A seed is a secret like the wallet key
 * (secret.c), never taken on the command line.
 */
#include "cli/wallet_int.h"

#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* {"seed":…,"metadata":…} for create and rotate; *out sodium_malloc'd. */
static int did_options(cli_env *e, const cli_args *a, char **out) {
  char *seed = NULL;
  int rc = cli_read_secret(e, "seed", "ORDO_DID_SEED", a->seed_file, NULL, 0, 0,
                           &seed);
  if (rc != ORDO_CLI_OK)
    return rc;
  rc = cli_kv_json(out, "seed", seed, "metadata", a->metadata,
                   (const char *)NULL);
  sodium_free(seed);
  if (rc == ORDO_E_INVAL)
    return cli_usage_error(e, "--metadata is not UTF-8");
  return rc != ORDO_OK ? cli_report(e, rc, NULL) : ORDO_CLI_OK;
}

static void print_did(json_t *d, const cli_args *a) {
  json_t *next = json_object_get(d, "next_verkey");
  (void)a;
  printf("did:      %s\n", cli_str_or(d, "did", "?"));
  printf("verkey:   %s\n", cli_str_or(d, "verkey", "?"));
  if (json_is_string(next))
    printf("next:     %s\n", json_string_value(next));
  printf("metadata: %s\n", cli_str_or(d, "metadata", ""));
}

static void print_created(json_t *r, const cli_args *a) {
  (void)a;
  printf("did:      %s\nverkey:   %s\n", cli_str_or(r, "did", "?"),
         cli_str_or(r, "verkey", "?"));
}

static int d_create(cli_env *e, const cli_args *a) {
  char *opts;
  int rc = did_options(e, a, &opts);
  if (rc != ORDO_CLI_OK)
    return rc;
  rc = cli_show(e, a, ordo_did_create(e->ctx, a->id, opts), print_created);
  sodium_free(opts);
  return rc;
}

static void print_dids(json_t *r, const cli_args *a) {
  json_t *d;
  size_t i;
  (void)a;
  json_array_foreach(json_object_get(r, "dids"), i, d)
      printf("%s\t%s\t%s\n", cli_str_or(d, "did", "?"),
             cli_str_or(d, "verkey", "?"), cli_str_or(d, "metadata", ""));
}

static int d_list(cli_env *e, const cli_args *a) {
  return cli_show(e, a, ordo_did_list(e->ctx, a->id), print_dids);
}

static int d_get(cli_env *e, const cli_args *a) {
  return cli_show(e, a, ordo_did_get(e->ctx, a->id, a->did), print_did);
}

static int d_set_metadata(cli_env *e, const cli_args *a) {
  return cli_say(e, a,
                 ordo_did_set_metadata(e->ctx, a->id, a->did, a->metadata),
                 "metadata of %s set\n", a->did);
}

static void print_next(json_t *r, const cli_args *a) {
  printf("next verkey: %s\n(ordo did apply --did %s makes it current)\n",
         cli_str_or(r, "verkey", "?"), a->did);
}

static int d_rotate(cli_env *e, const cli_args *a) {
  char *opts;
  int rc;
  if (a->metadata != NULL)
    return cli_usage_error(e, "did rotate takes no --metadata");
  if ((rc = did_options(e, a, &opts)) != ORDO_CLI_OK)
    return rc;
  rc = cli_show(e, a, ordo_did_rotate_start(e->ctx, a->id, a->did, opts),
                print_next);
  sodium_free(opts);
  return rc;
}

static void print_verkey(json_t *r, const cli_args *a) {
  (void)a;
  printf("verkey: %s\n", cli_str_or(r, "verkey", "?"));
}

static int d_apply(cli_env *e, const cli_args *a) {
  return cli_show(e, a, ordo_did_rotate_apply(e->ctx, a->id, a->did),
                  print_verkey);
}

/* --verkey K, or --did DID's current verkey; *out malloc'd. */
static int verkey_of(cli_env *e, const cli_args *a, char **out) {
  ordo_op *op = NULL;
  json_t *r;
  int rc;
  *out = NULL;
  if ((a->verkey != NULL) == (a->did != NULL))
    return cli_usage_error(e, "give one of --verkey K and --did DID");
  if (a->verkey != NULL) {
    *out = strdup(a->verkey);
    return *out != NULL ? ORDO_CLI_OK : cli_report(e, ORDO_E_NOMEM, NULL);
  }
  if ((rc = cli_run_op(e, ordo_did_get(e->ctx, a->id, a->did), &op)) !=
      ORDO_CLI_OK)
    return rc;
  r = cli_result_of(op);
  *out = strdup(cli_str_or(r, "verkey", ""));
  json_decref(r);
  ordo_op_release(op);
  return *out != NULL ? ORDO_CLI_OK : cli_report(e, ORDO_E_NOMEM, NULL);
}

static void print_signature(json_t *r, const cli_args *a) {
  (void)a;
  printf("%s\n", cli_str_or(r, "signature", "?"));
}

static int d_sign(cli_env *e, const cli_args *a) {
  const char *msg;
  char *buf, *vk;
  size_t len;
  int rc = cli_message_of(e, a, &msg, &len, &buf);
  if (rc != ORDO_CLI_OK)
    return rc;
  if ((rc = verkey_of(e, a, &vk)) == ORDO_CLI_OK)
    rc =
        cli_show(e, a, ordo_sign(e->ctx, a->id, vk, msg, len), print_signature);
  free(buf);
  free(vk);
  return rc;
}

/* A signature as base64, url-safe or standard, padded or not. */
static int decode_signature(const char *b64, unsigned char *sig, size_t cap,
                            size_t *len) {
  static const int variants[] = {sodium_base64_VARIANT_URLSAFE_NO_PADDING,
                                 sodium_base64_VARIANT_URLSAFE,
                                 sodium_base64_VARIANT_ORIGINAL_NO_PADDING,
                                 sodium_base64_VARIANT_ORIGINAL};
  for (size_t i = 0; i < sizeof variants / sizeof variants[0]; i++) {
    const char *end;
    if (sodium_base642bin(sig, cap, b64, strlen(b64), NULL, len, &end,
                          variants[i]) == 0 &&
        *end == '\0')
      return 0;
  }
  return -1;
}

static int d_verify(cli_env *e, const cli_args *a) {
  unsigned char sig[128];
  const char *msg;
  char *buf;
  size_t len, slen;
  ordo_op *op = NULL;
  json_t *r;
  int rc, valid;

  if (decode_signature(a->signature, sig, sizeof sig, &slen) != 0)
    return cli_usage_error(e, "--signature is not base64");
  if ((rc = cli_message_of(e, a, &msg, &len, &buf)) != ORDO_CLI_OK)
    return rc;
  rc = cli_run_op(e, ordo_verify(e->ctx, a->verkey, msg, len, sig, slen), &op);
  free(buf);
  if (rc != ORDO_CLI_OK)
    return rc;
  r = cli_result_of(op);
  valid = json_is_true(json_object_get(r, "valid"));
  json_decref(r);
  if (a->json)
    cli_print_json(op);
  else
    printf("%s\n", valid ? "valid" : "invalid");
  ordo_op_release(op);
  if (!valid)
    fprintf(stderr, "%s: the signature does not verify\n", e->prog);
  return valid ? ORDO_CLI_OK : ORDO_CLI_FAIL;
}

static int d_pack(cli_env *e, const cli_args *a) {
  json_t *rcpt = json_array();
  const char *msg, *p = a->recipients;
  char *buf = NULL, *rjson = NULL;
  size_t len;
  ordo_op *op = NULL;
  int rc;

  while (rcpt != NULL && *p != '\0') {
    const char *comma = strchr(p, ',');
    size_t n = comma != NULL ? (size_t)(comma - p) : strlen(p);
    if (n > 0 && json_array_append_new(rcpt, json_stringn(p, n)) != 0)
      break;
    p += n + (comma != NULL);
  }
  if (rcpt == NULL || *p != '\0' ||
      (rjson = json_dumps(rcpt, JSON_COMPACT)) == NULL) {
    json_decref(rcpt);
    return cli_report(e, ORDO_E_NOMEM, NULL);
  }
  if (json_array_size(rcpt) == 0) {
    json_decref(rcpt);
    free(rjson);
    return cli_usage_error(e, "--recipients names no verkey");
  }
  json_decref(rcpt);
  if ((rc = cli_message_of(e, a, &msg, &len, &buf)) == ORDO_CLI_OK)
    rc = cli_run_op(e, ordo_pack(e->ctx, a->id, msg, len, rjson, a->sender),
                    &op);
  free(buf);
  free(rjson);
  if (rc != ORDO_CLI_OK)
    return rc;
  cli_print_json(op); /* the envelope is the output either way */
  ordo_op_release(op);
  return ORDO_CLI_OK;
}

static int d_unpack(cli_env *e, const cli_args *a) {
  const unsigned char *data;
  char *env;
  size_t len;
  ordo_op *op = NULL;
  int rc = cli_read_input(e, a->in, &env, &len);
  if (rc != ORDO_CLI_OK)
    return rc;
  rc = cli_run_op(e, ordo_unpack(e->ctx, a->id, env), &op);
  free(env);
  if (rc != ORDO_CLI_OK)
    return rc;
  if (a->json)
    cli_print_json(op);
  else if (ordo_op_result_bytes(op, &data, &len) == ORDO_OK)
    fwrite(data, 1, len, stdout);
  ordo_op_release(op);
  return ORDO_CLI_OK;
}

static const cli_cmd did_cmds[] = {
    {"create", "create a DID and its ed25519 key in a wallet",
     "--id ID [--seed-file FILE] [--metadata M] [--path DIR] [--key-file "
     "FILE] [--json]",
     "A random key unless a seed is given ($ORDO_DID_SEED or --seed-file;\n"
     "never on the command line). JSON: {\"did\":DID,\"verkey\":K}.",
     F_WALLET | F_SEED_FILE | F_METADATA, F_ID, NEED_KEY | NEED_OPEN, d_create},
    {"list", "list a wallet's DIDs",
     "--id ID [--path DIR] [--key-file FILE] [--json]",
     "One DID a line: did, verkey, metadata, tab-separated.\n"
     "JSON: {\"dids\":[{\"did\",\"verkey\",\"metadata\"},...]}.",
     F_WALLET, F_ID, NEED_KEY | NEED_OPEN, d_list},
    {"get", "show a DID",
     "--id ID --did DID [--path DIR] [--key-file FILE] [--json]",
     "JSON: {\"did\",\"verkey\",\"metadata\"} (metadata null when unset;\n"
     "\"next_verkey\" during a rotation). ORDO_E_KEY_NOT_FOUND if unknown.",
     F_WALLET | F_DID, F_ID | F_DID, NEED_KEY | NEED_OPEN, d_get},
    {"set-metadata", "set a DID's metadata",
     "--id ID --did DID --metadata M [--path DIR] [--key-file FILE] [--json]",
     "JSON: {}.", F_WALLET | F_DID | F_METADATA, F_ID | F_DID | F_METADATA,
     NEED_KEY | NEED_OPEN, d_set_metadata},
    {"rotate", "start a key rotation: make the DID's next key",
     "--id ID --did DID [--seed-file FILE] [--path DIR] [--key-file FILE] "
     "[--json]",
     "Make a new key (seeded as for create) and record it as the DID's\n"
     "next verkey; 'ordo did apply' makes it current.\n"
     "JSON: {\"verkey\":NEXT}.",
     F_WALLET | F_DID | F_SEED_FILE, F_ID | F_DID, NEED_KEY | NEED_OPEN,
     d_rotate},
    {"apply", "finish a key rotation: the next key becomes current",
     "--id ID --did DID [--path DIR] [--key-file FILE] [--json]",
     "ORDO_E_STATE without a started rotation. The old key stays in the\n"
     "wallet. JSON: {\"verkey\":K}.",
     F_WALLET | F_DID, F_ID | F_DID, NEED_KEY | NEED_OPEN, d_apply},
    {"sign", "sign a message with a key of the wallet",
     "--id ID (--verkey K | --did DID) (--message TEXT | --in FILE) [--path "
     "DIR] [--key-file FILE] [--json]",
     "Print the ed25519 signature, base64url.\n"
     "JSON: {\"signature\":B64}.",
     F_WALLET | F_VERKEY | F_DID | F_MESSAGE | F_IN, F_ID, NEED_KEY | NEED_OPEN,
     d_sign},
    {"verify", "verify a signature (no wallet)",
     "--verkey K --signature B64 (--message TEXT | --in FILE) [--json]",
     "Print valid or invalid; exit 0 if valid, 1 if not. A malformed\n"
     "verkey is ORDO_E_BAD_KEY, exit 2. JSON: {\"valid\":true|false}.",
     F_VERKEY | F_SIGNATURE | F_MESSAGE | F_IN | F_JSON, F_VERKEY | F_SIGNATURE,
     0, d_verify},
    {"pack", "pack a message for recipients (Aries RFC 0019)",
     "--id ID --recipients K,K [--sender K] (--message TEXT | --in FILE) "
     "[--path DIR] [--key-file FILE] [--json]",
     "Print the envelope JSON (the same with or without --json):\n"
     "authcrypt from --sender, a verkey of the wallet, else anoncrypt.",
     F_WALLET | F_RECIPIENTS | F_SENDER | F_MESSAGE | F_IN, F_ID | F_RECIPIENTS,
     NEED_KEY | NEED_OPEN, d_pack},
    {"unpack", "unpack an envelope with a key of the wallet",
     "--id ID --in FILE [--path DIR] [--key-file FILE] [--json]",
     "Print the message's bytes. ORDO_E_UNPACK if tampered or for no key\n"
     "of the wallet. JSON: {\"message\",\"recipient_verkey\","
     "\"sender_verkey\"}.",
     F_WALLET | F_IN, F_ID | F_IN, NEED_KEY | NEED_OPEN, d_unpack},
};

int ordo__did_main(int argc, char **argv) {
  if (sodium_init() < 0) {
    fputs("ordo did: libsodium failed to start\n", stderr);
    return ORDO_CLI_FAIL;
  }
  return cli_group_main("ordo did", did_cmds,
                        sizeof did_cmds / sizeof did_cmds[0],
                        "DIDs and ed25519 keys in a wallet: create, rotate,\n"
                        "sign, verify, pack and unpack. The wallet key as for\n"
                        "'ordo wallet'; a seed from $ORDO_DID_SEED or\n"
                        "--seed-file, never from the command line.",
                        argc, argv);
}

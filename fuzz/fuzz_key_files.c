/*
 * fuzz_key_files.c — libFuzzer target for the two key-file parsers an
 * operator hands ordo: the secp256k1 key file `sawtooth keygen` writes
 * (ordo_ledger_signer_from_file: `ordo submit --key-file`, serve's
 * signing_key_file) and the embedded node's allow-list of batch signers
 * (--allow-signers, read by ordo_node_start). The first byte picks the
 * parser, the rest is the file's content, written 0600 into a temporary
 * directory.
 *
 * Properties: no crash or leak; a key file is taken only when it is 64 hex
 * digits and then blanks; a refusal's message never quotes the file (a
 * secret) — checked for any run of 8 hex digits of it; a node that starts with an
 * allow-list is stopped cleanly.
 */
#include "ordo.h"
#include "ledger/ledger.h"
#include "node/node.h"
#include "fuzz_tmpdir.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[] = "/tmp/ordo-fuzz-keys-XXXXXX";
static char file[64], node_dir[64];

static void teardown(void) { fuzz_rmdir_all(dir); }

static void setup(void) {
  if (mkdtemp(dir) == NULL)
    abort();
  snprintf(file, sizeof file, "%s/key", dir);
  snprintf(node_dir, sizeof node_dir, "%s/node", dir);
  atexit(teardown);
}

static void write_file(const uint8_t *p, size_t n) {
  int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0)
    abort();
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w <= 0)
      abort();
    p += w;
    n -= (size_t)w;
  }
  close(fd);
}

static int is_hex(uint8_t c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
         (c >= 'A' && c <= 'F');
}

/* No run of 8 hex digits of the content (what a key is made of) in the
 * message: the templates and the path have none of their own. */
static void check_not_quoted(const uint8_t *p, size_t n) {
  const char *m = ordo_last_error_message();
  for (size_t i = 0; m != NULL && i + 8 <= n; i++) {
    char run[9];
    size_t k;
    for (k = 0; k < 8 && is_hex(p[i + k]); k++)
      run[k] = (char)p[i + k];
    run[k] = '\0';
    if (k == 8 && strstr(m, run) != NULL)
      abort();
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (file[0] == '\0')
    setup();
  if (size < 1)
    return 0;
  write_file(data + 1, size - 1);
  if (data[0] % 2 == 0) {
    ordo_ledger_signer *s = NULL;
    int rc = ordo_ledger_signer_from_file(file, &s);
    if (rc == ORDO_OK) {
      if (size - 1 < 64)
        abort();
      for (size_t i = 1; i <= 64; i++)
        if (!is_hex(data[i]))
          abort();
      if (strlen(ordo_ledger_signer_public_key(s)) != 66)
        abort();
    } else {
      check_not_quoted(data + 1, size - 1);
    }
    ordo_ledger_signer_free(s);
  } else {
    ordo_node_options o;
    ordo_node *node = NULL;
    ordo_node_options_init(&o);
    o.data_dir = node_dir;
    o.port = -1;
    o.block_ms = 0;
    o.allow_signers_file = file;
    if (ordo_node_start(&o, &node) == ORDO_OK)
      ordo_node_stop(node);
  }
  return 0;
}

/*
 * drive.c — driving the embedded ledger and `ordo serve` from outside, as
 * a user would: this binary started as a child process that says where it
 * listens, HTTP requests to it, and a workload as the server's signed JSON
 * items. `ordo run` and the benchmarks that measure a server from outside
 * (`ordo bench memory`) share it (drive.h).
 */
#include "cli/drive.h"
#include "ledger/ledger.h"
#include "runtime/runtime.h"

#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>


/* Start this binary with argv; wait (up to 10 s) for its first stdout line
 * "listening on URL". */
int ordo__child_start(char *const *argv, const char *log_path,
                      ordo__child *c) {
  int pfd[2];
  char line[256];
  size_t n = 0;
  double t0 = ordo__cli_now_s();

  memset(c, 0, sizeof(*c));
  if (pipe(pfd) != 0)
    return ORDO_E_SYSTEM;
  c->pid = fork();
  if (c->pid < 0) {
    close(pfd[0]);
    close(pfd[1]);
    return ORDO_E_SYSTEM;
  }
  if (c->pid == 0) {
    int log = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(pfd[1], 1);
    if (log >= 0)
      dup2(log, 2);
    close(pfd[0]);
    close(pfd[1]);
    execv("/proc/self/exe", argv);
    _exit(127);
  }
  close(pfd[1]);
  fcntl(pfd[0], F_SETFL, O_NONBLOCK);
  while (ordo__cli_now_s() - t0 < 10) {
    ssize_t r = read(pfd[0], line + n, 1);
    if (r == 1) {
      if (line[n] == '\n' || n + 2 >= sizeof line) {
        line[n] = '\0';
        break;
      }
      n++;
    } else if (r == 0) {
      break;
    } else {
      usleep(2000);
    }
  }
  close(pfd[0]); /* the child's later stdout lines go nowhere: fine */
  if (sscanf(line, "listening on %127s", c->url) != 1) {
    kill(c->pid, SIGKILL);
    waitpid(c->pid, NULL, 0);
    c->pid = 0;
    return ORDO_E_SYSTEM;
  }
  return ORDO_OK;
}

int ordo__child_stop(ordo__child *c) {
  int st = 0;
  if (c->pid <= 0)
    return 0;
  kill(c->pid, SIGTERM);
  waitpid(c->pid, &st, 0);
  c->pid = 0;
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* ---- HTTP ----------------------------------------------------------------- */

typedef struct buf {
  char *p;
  size_t n;
} buf;

static size_t on_body(char *d, size_t sz, size_t nm, void *ud) {
  buf *b = ud;
  char *p = realloc(b->p, b->n + sz * nm + 1);
  if (p == NULL)
    return 0;
  memcpy(p + b->n, d, sz * nm);
  b->n += sz * nm;
  p[b->n] = '\0';
  b->p = p;
  return sz * nm;
}

/* A request to the server; the status code, the body in *out (caller
 * frees). -1 when no answer came. */
long ordo__http(CURL *h, const char *url, const char *token,
                const char *body, char **out) {
  struct curl_slist *hd = NULL;
  char auth[160];
  buf b = {0};
  long code = -1;
  snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
  hd = curl_slist_append(hd, auth);
  hd = curl_slist_append(hd, "Content-Type: application/json");
  curl_easy_reset(h);
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
  curl_easy_setopt(h, CURLOPT_TIMEOUT, 120L);
  if (body != NULL)
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
  if (curl_easy_perform(h) == CURLE_OK)
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
  curl_slist_free_all(hd);
  sodium_memzero(auth, sizeof auth);
  *out = b.p;
  return code;
}

/* ---- the workload as the server's JSON items ------------------------------ */

/* One JSON array per chunk of lines, each item with its signed batch. */
int ordo__serve_items(const ordo_workload *w, json_t **out) {
  ordo_ledger_signer *signer = NULL;
  ordo_ledger_conv *conv = NULL;
  json_t *all = json_array();
  int rc;
  if (all == NULL)
    return ORDO_E_NOMEM;
  if ((rc = ordo_ledger_signer_new(NULL, &signer)) != ORDO_OK ||
      (rc = ordo_ledger_conv_new(ORDO_LEDGER_FAMILY_MIXED, signer, &conv)))
    goto done;
  for (size_t i = 0; i < w->nbatches && rc == ORDO_OK; i++) {
    const ordo_workload_batch *wb = &w->batches[i];
    ordo_ledger_built b;
    json_t *it, *a;
    size_t k, blen;
    char *b64;
    if ((rc = ordo_ledger_conv_batch(conv, wb, &b)) != ORDO_OK)
      break;
    blen = sodium_base64_encoded_len(b.batchlist_len,
                                     sodium_base64_VARIANT_ORIGINAL);
    if ((b64 = malloc(blen)) == NULL) {
      ordo_ledger_built_clear(&b);
      rc = ORDO_E_NOMEM;
      break;
    }
    sodium_bin2base64(b64, blen, b.batchlist, b.batchlist_len,
                      sodium_base64_VARIANT_ORIGINAL);
    it = json_pack("{s:s, s:s, s:s}", "id", wb->id, "service", wb->service,
                   "payload", b64);
    free(b64);
    a = json_array();
    for (k = 0; k < b.nreads; k++)
      json_array_append_new(a, json_string(b.reads[k]));
    json_object_set_new(it, "reads", a);
    a = json_array();
    for (k = 0; k < b.nwrites; k++)
      json_array_append_new(a, json_string(b.writes[k]));
    json_object_set_new(it, "writes", a);
    if (wb->ndeps > 0) {
      a = json_array();
      for (k = 0; k < wb->ndeps; k++)
        json_array_append_new(a, json_string(wb->deps[k]));
      json_object_set_new(it, "deps", a);
    }
    json_array_append_new(all, it);
    ordo_ledger_built_clear(&b);
  }
done:
  ordo_ledger_conv_free(conv);
  ordo_ledger_signer_free(signer);
  if (rc != ORDO_OK) {
    json_decref(all);
    return rc;
  }
  *out = all;
  return ORDO_OK;
}

static int remove_entry(const char *path, const struct stat *sb, int type,
                        struct FTW *ftw) {
  (void)sb;
  (void)type;
  (void)ftw;
  return remove(path) != 0 ? -1 : 0;
}

int ordo__rmdir_all(const char *dir) {
  return nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0 ? -1 : 0;
}

/*
 * http.c — the helpers of http.h: Content-Type matching and percent-decoding
 * for the node's and the server's request handlers, loopback addresses, and
 * the process set-up of a server with a thread per connection.
 */
#include "http/http.h"

#include <arpa/inet.h>
#include <malloc.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>

int ordo__http_content_type_is(const char *ct, const char *want) {
  size_t n = strlen(want);
  if (ct == NULL)
    return 0;
  while (*ct == ' ' || *ct == '\t')
    ct++;
  if (strncasecmp(ct, want, n) != 0)
    return 0;
  ct += n;
  while (*ct == ' ' || *ct == '\t')
    ct++;
  return *ct == '\0' || *ct == ';';
}

static int hexval(int c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

char *ordo__http_url_decode(const char *s, size_t n) {
  char *out = malloc(n + 1);
  size_t i, j = 0;
  if (out == NULL)
    return NULL;
  for (i = 0; i < n; i++) {
    int hi, lo;
    if (s[i] == '+') {
      out[j++] = ' ';
    } else if (s[i] == '%' && i + 2 < n &&
               (hi = hexval((unsigned char)s[i + 1])) >= 0 &&
               (lo = hexval((unsigned char)s[i + 2])) >= 0) {
      out[j++] = (char)(hi << 4 | lo);
      i += 2;
    } else {
      out[j++] = s[i];
    }
  }
  out[j] = '\0';
  return out;
}

int ordo__http_is_loopback(const char *addr) {
  struct in_addr a4;
  struct in6_addr a6;
  if (inet_pton(AF_INET, addr, &a4) == 1)
    return (ntohl(a4.s_addr) >> 24) == 127;
  if (inet_pton(AF_INET6, addr, &a6) == 1)
    return memcmp(&a6, &in6addr_loopback, sizeof a6) == 0;
  return 0;
}

void ordo__http_server_process_setup(const char *who,
                                     unsigned connection_limit) {
  struct rlimit rl;
  rlim_t need = (rlim_t)connection_limit + 64; /* + databases, listener */
  const char *tun = getenv("GLIBC_TUNABLES");
  if (getenv("MALLOC_ARENA_MAX") == NULL)
    (void)mallopt(M_ARENA_MAX, 2);
  /* glibc's thresholds start at 128 KiB and follow the largest mmapped
   * block freed: after one 8.6 MB request body, blocks that size came from
   * an arena (mmap threshold ~8.6 MB), and what they left free at a
   * thread arena's top was kept, as that top shrinks only once larger than
   * the trim threshold (twice that, ~17 MB) and malloc_trim does not touch
   * it: 8 MiB stayed resident after ordo bench memory (a walk of the
   * arenas; docs/benchmarks.md). Fixed at their starting values, large
   * blocks are mmapped and unmapped when freed, and a top past 128 KiB is
   * cut back. */
  if (getenv("MALLOC_MMAP_THRESHOLD_") == NULL &&
      (tun == NULL || strstr(tun, "malloc.mmap_threshold") == NULL))
    (void)mallopt(M_MMAP_THRESHOLD, 128 * 1024);
  if (getenv("MALLOC_TRIM_THRESHOLD_") == NULL &&
      (tun == NULL || strstr(tun, "malloc.trim_threshold") == NULL))
    (void)mallopt(M_TRIM_THRESHOLD, 128 * 1024);
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
    return;
  if (rl.rlim_cur < rl.rlim_max) {
    struct rlimit up = rl;
    up.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &up) == 0)
      rl = up;
  }
  if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need)
    fprintf(stderr, "%s: warning: the open files limit (%llu) is below the "
            "connection limit + 64 (%llu); connections past it wait to be "
            "accepted\n", who, (unsigned long long)rl.rlim_cur,
            (unsigned long long)need);
}


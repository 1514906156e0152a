/*
 * http.h — small helpers both HTTP front ends use (the embedded node,
 * src/node/http.c, and `ordo serve`, src/server/): reading a request's
 * Content-Type and percent-decoding its query, knowing a loopback address,
 * and the process limits of a server. Not installed; no sockets
 * and no libmicrohttpd here, so the socket-free handlers (and the fuzzers)
 * use them as they are.
 *
 * Every function is synchronous, thread-safe and keeps no state.
 */
#ifndef ORDO_HTTP_H
#define ORDO_HTTP_H

#include <stddef.h>

/*
 * 1 if the media type ct, without its parameters (";charset=..."), is want,
 * compared case-insensitively and with blanks around it ignored; 0 if not or
 * if ct is NULL (no Content-Type header).
 */
int ordo__http_content_type_is(const char *ct, const char *want);

/*
 * Percent-decode the n bytes at s (and '+' to a space) into a new
 * NUL-terminated string, the caller's to free; a '%' not followed by two hex
 * digits stays as it is, and a decoded NUL byte (%00) ends the string. NULL
 * when out of memory.
 */
char *ordo__http_url_decode(const char *s, size_t n);

/* 1 when addr is a loopback literal (127.0.0.0/8 or ::1), 0 for any other
 * address and for what is not an IPv4 or IPv6 literal. Why a server may
 * listen there without a token. */
int ordo__http_is_loopback(const char *addr);

/*
 * For the process of a server with a thread per connection (`ordo serve`,
 * `ordo ledger`), called once before it starts; not for a library user's
 * process, whose settings are its own. Raises the soft open-files limit to
 * the hard one, and says on stderr ("<who>: warning: ...") when that stays
 * below connection_limit + 64. Caps malloc's arenas at 2 unless the
 * environment sets MALLOC_ARENA_MAX: glibc gives each connection thread an
 * arena of its own, whose freed pages a large request leaves scattered and
 * malloc_trim cannot all return (after eight 8.6 MB requests ordo serve
 * kept 14 MiB more with the default arenas than with 2; docs/benchmarks.md).
 * Fixes malloc's mmap and trim thresholds at 128 KiB (glibc's starting
 * values) unless MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_ or
 * GLIBC_TUNABLES set them: glibc otherwise raises both after the first
 * large request, and a thread arena then keeps up to the new trim
 * threshold (~17 MB after an 8.6 MB body) free but resident at its top.
 */
void ordo__http_server_process_setup(const char *who,
                                     unsigned connection_limit);

#endif /* ORDO_HTTP_H */

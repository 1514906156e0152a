/*
 * mhd.h — the libmicrohttpd server both HTTP front ends run (the embedded
 * node, src/node/http.c, and `ordo serve`, src/server/server.c), with their
 * routes left to them: the daemon and its connection guard (guard.h), one
 * request's state from the URI log callback to completion (the raw query,
 * the body gathered up to a limit), the access handler that reads the
 * headers, gathers the body and then calls the front end, the requests in
 * flight that a stop lets finish, and the answer helper. Not installed.
 *
 * Why one: the two front ends had grown the same glue twice (the start
 * options, the URI log callback, the body buffer, the completion, the
 * graceful stop), and a fix to one (a hostile client, a body limit) must
 * reach both.
 *
 * A request, seen by the front end:
 *   1. headers(cls, r, &answered) once the headers are in (r->body NULL):
 *      return MHD_YES to read the body; or answer at once (ordo__mhd_send,
 *      after ordo__mhd_linger where the body may follow unread), set
 *      answered and return the send's result: libmicrohttpd sends it
 *      instead of `100 Continue`, reads no body byte and closes the
 *      connection after it.
 *   2. request(cls, r) once the body is in, or once more than
 *      max_body_bytes arrived (r->too_big; the body is dropped but its
 *      bytes are still counted in r->body_seen): answer with ordo__mhd_send
 *      and return its result (MHD_NO closes the connection unanswered).
 * libmicrohttpd unescapes the path but strips the query; the raw query is
 * taken from the URI log callback, which runs first and whose result
 * becomes the request's context.
 *
 * Threads: a thread per connection (a request that waits holds only its
 * own connection) with an internal polling thread; the two callbacks run
 * on the connection threads, and must not call ordo__mhd_stop. The
 * in-flight count has one mutex, a leaf.
 */
#ifndef ORDO_HTTP_MHD_H
#define ORDO_HTTP_MHD_H

#include <microhttpd.h>
#include <stddef.h>

typedef struct ordo__mhd ordo__mhd;

/* One request as the front end sees it; valid during the callback. */
typedef struct ordo__mhd_request {
  ordo__mhd *mhd;               /* the server it came to */
  struct MHD_Connection *conn;
  const char *url;              /* the path, unescaped by libmicrohttpd */
  const char *method;
  const char *query;            /* raw, NULL if none */
  const unsigned char *body;    /* NULL when empty or too big */
  size_t body_len;
  unsigned long long body_seen; /* bytes received, kept or not */
  int too_big;                  /* body_seen > max_body_bytes */
} ordo__mhd_request;

/* What ordo__mhd_start starts. Strings are read during the call. */
typedef struct ordo__mhd_options {
  const char *bind; /* an IPv4 or IPv6 literal */
  int port;         /* 0: an ephemeral one */
  unsigned connection_limit, connection_limit_per_ip;
  unsigned header_timeout_ms; /* the guard's (guard.h) */
  unsigned idle_timeout_ms;   /* MHD_OPTION_CONNECTION_TIMEOUT, rounded up */
  int linger;                 /* the guard's lingering close: 1 on */
  const char *who;            /* "server", for the guard's messages */
  const char *prefix;         /* before the other messages ("" or "node: ") */
  size_t max_body_bytes;      /* more is r->too_big */
  /* 1: a request body may hold credentials: wiped when it grows and when
   * the request ends. */
  int wipe_bodies;
  /* A request whose body buffer reached this many bytes is followed by
   * malloc_trim(0): it was parsed into many small values on the
   * connection's thread, whose malloc arena keeps the freed pages. 0:
   * never. */
  size_t trim_after_bytes;
  enum MHD_Result (*headers)(void *cls, const ordo__mhd_request *r,
                             int *answered);
  enum MHD_Result (*request)(void *cls, const ordo__mhd_request *r);
  void *cls; /* the callbacks' */
} ordo__mhd_options;

/*
 * Start the guard's reaper, then libmicrohttpd on o->bind:o->port. ORDO_OK
 * with *out (the caller's, stopped with ordo__mhd_stop) and *port (the
 * bound one); else nothing is left running and ORDO_E_NOMEM, ORDO_E_INVAL
 * (bind is not a literal), ORDO_E_SYSTEM (no reaper thread) or ORDO_E_IO
 * (cannot listen), the last error set. Owner's thread.
 */
int ordo__mhd_start(const ordo__mhd_options *o, ordo__mhd **out, int *port);

/*
 * Stop accepting, give the requests in flight (a long poll woken by the
 * owner's stop, an answer being delayed) up to grace_ms to finish, then
 * stop libmicrohttpd (it shuts every connection's socket, which would cut
 * an answer off), the guard, and free m. NULL is fine. Owner's thread.
 */
void ordo__mhd_stop(ordo__mhd *m, unsigned long long grace_ms);

/*
 * Queue an answer on c: status, len bytes of body (malloc'd, taken: freed
 * here whatever happens), Content-Type content_type, and the extra
 * headers in headers (name, value, name, value, ..., NULL; NULL for none).
 * Returns libmicrohttpd's result; MHD_NO closes the connection.
 */
enum MHD_Result ordo__mhd_send(struct MHD_Connection *c, unsigned status,
                               char *body, size_t len,
                               const char *content_type,
                               const char *const *headers);

/* For an answer from the headers whose body may still come: c is closed
 * with a lingering close (guard.h), if m's guard has it on. */
void ordo__mhd_linger(ordo__mhd *m, struct MHD_Connection *c);

/* The request's Content-Length: its value when it is all digits, else 0
 * (none, or not a number). */
unsigned long long ordo__mhd_declared_length(struct MHD_Connection *c);

#endif /* ORDO_HTTP_MHD_H */

/*
 * guard.h — the connection guard of the libmicrohttpd server (mhd.h) both
 * front ends run (the embedded node, src/node/http.c, and `ordo serve`,
 * src/server/server.c): what keeps a hostile client from holding
 * connections, and their threads, for ever. Not installed. Unlike http.h
 * this part has sockets and libmicrohttpd; only mhd.c calls it.
 *
 * Why: libmicrohttpd closes a connection idle for the idle timeout
 * (MHD_OPTION_CONNECTION_TIMEOUT, whole seconds) and refuses more than the
 * per-address limit, but its timeout counts from the last byte, so a client
 * trickling a byte every few seconds would keep a connection (and, with a
 * thread per connection, a thread) for ever.
 *
 * Design: every open connection is listed (MHD_OPTION_NOTIFY_CONNECTION,
 * ordo__http_guard_notify) with a deadline for its request headers, cleared
 * when the access handler first sees a request (ordo__http_guard_headers_in)
 * and set again when a request completes (ordo__http_guard_completed). The
 * reaper thread shuts down (shutdown(2), under the guard's lock, so the
 * socket is still open: libmicrohttpd takes it off the list before closing
 * it) every connection past its deadline; the connection's thread then sees
 * end-of-file and closes it.
 *
 * Lingering close (only for a guard made with linger on): a connection
 * answered from its headers is closed with its body unread, and closing a
 * socket with unread bytes resets it, which can destroy the answer before
 * the client reads it. A connection marked with ordo__http_guard_linger
 * therefore leaves, when libmicrohttpd closes it, a dup of its socket with
 * the reaper (the answer and FIN are sent already), which reads and drops
 * what arrives until the client closes, for at most 2 s and 8 MiB, with at
 * most 256 such sockets at once.
 *
 * Threads and locks: the guard has one mutex, a leaf (nothing else is taken
 * under it, no user code runs under it). ordo__http_guard_notify, _headers_in,
 * _completed and _linger run on libmicrohttpd's threads; _new, _listen, _stop
 * and _free on the owner's thread, _stop and _free only once libmicrohttpd
 * is stopped (MHD_stop_daemon returned) or never started.
 */
#ifndef ORDO_HTTP_GUARD_H
#define ORDO_HTTP_GUARD_H

#include <microhttpd.h>

typedef struct ordo__http_guard ordo__http_guard;

/*
 * A guard, its reaper not started: header_timeout_ms is how long a new
 * connection (and a kept-alive one after its idle time) has to send its
 * request headers; linger 1 keeps the lingering sockets (see above). The
 * caller owns it and frees it with ordo__http_guard_free. NULL without
 * memory (the last error is set).
 */
ordo__http_guard *ordo__http_guard_new(unsigned header_timeout_ms,
                                       int linger);

/* What ordo__http_guard_listen starts. Strings are read during the call. */
typedef struct ordo__http_listen_options {
  const char *bind; /* an IPv4 or IPv6 literal */
  int port;         /* 0: an ephemeral one */
  MHD_AccessHandlerCallback access;
  MHD_RequestCompletedCallback completed;
  void *(*uri_log)(void *cls, const char *uri, struct MHD_Connection *c);
  void *cls; /* the three callbacks' */
  unsigned connection_limit, connection_limit_per_ip;
  unsigned idle_timeout_ms; /* MHD_OPTION_CONNECTION_TIMEOUT, rounded up */
  const char *who;    /* "server: cannot start the header reaper thread" */
  const char *prefix; /* before the other messages ("" or "node: ") */
} ordo__http_listen_options;

/*
 * Start the reaper, then libmicrohttpd (a thread per connection, internal
 * polling thread, ITC for MHD_quiesce_daemon) on o->bind:o->port with g's
 * connection notices and o's limits. ORDO_OK with *mhd and *port (the bound
 * one); else the reaper is stopped again and ORDO_E_INVAL (bind is not a
 * literal), ORDO_E_SYSTEM (no reaper thread) or ORDO_E_IO (cannot listen),
 * the last error set. The caller stops *mhd (MHD_stop_daemon) before it
 * stops g.
 */
int ordo__http_guard_listen(ordo__http_guard *g,
                            const ordo__http_listen_options *o,
                            struct MHD_Daemon **mhd, int *port);

/* Stop and join the reaper and close the lingering sockets. Idempotent; g
 * may be NULL. */
void ordo__http_guard_stop(ordo__http_guard *g);

/* ordo__http_guard_stop, then free g (NULL is fine). */
void ordo__http_guard_free(ordo__http_guard *g);

/* MHD_OPTION_NOTIFY_CONNECTION's callback; cls is the guard. */
void ordo__http_guard_notify(void *cls, struct MHD_Connection *c,
                             void **socket_context,
                             enum MHD_ConnectionNotificationCode toe);

/* From the access handler's first call for a request: the headers are in,
 * c has no deadline while the request is handled. */
void ordo__http_guard_headers_in(ordo__http_guard *g,
                                 struct MHD_Connection *c);

/* From the request-completed callback: a kept-alive connection's next
 * request headers are due within idle_timeout_ms, or the header timeout
 * when that is longer. */
void ordo__http_guard_completed(ordo__http_guard *g, struct MHD_Connection *c,
                                unsigned idle_timeout_ms);

/* Drain c's socket when libmicrohttpd closes it (it was answered from its
 * headers, the body unread). Nothing for a guard made without linger. */
void ordo__http_guard_linger(ordo__http_guard *g, struct MHD_Connection *c);

#endif /* ORDO_HTTP_GUARD_H */

/*
 * guard.c — the connection guard of guard.h: the list of open connections
 * and their header deadlines, the lingering sockets, the reaper thread that
 * shuts down the late and drains the lingering, and the libmicrohttpd start
 * both front ends share.
 */
#include "http/guard.h"
#include "runtime/runtime.h"
#include "base/list.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Lingering close: sockets kept, drained until the client closes. */
#define GUARD_LINGER_MAX 256
#define GUARD_LINGER_MS 2000u
#define GUARD_LINGER_BYTES (8u << 20)

/* One open connection, from libmicrohttpd's STARTED notice to CLOSED (its
 * socket context). Fields under the guard's mu. */
typedef struct guard_conn {
  struct guard_conn *prev, *next;
  MHD_socket fd;
  unsigned long long deadline_ns; /* request headers due; 0: a request is
                                     being handled */
  int shut;                       /* shut down by the reaper */
  int linger;                     /* answered early: drain on close */
} guard_conn;

typedef struct guard_linger {
  int fd; /* a dup of the connection's socket */
  unsigned long long until_ns;
  size_t bytes;
} guard_linger;

struct ordo__http_guard {
  unsigned header_timeout_ms; /* read-only after new */
  pthread_mutex_t mu; /* guards everything below but reaper (a leaf) */
  pthread_cond_t cv;  /* wakes the reaper to stop: CLOCK_MONOTONIC */
  guard_conn *conns;
  int stop;
  guard_linger *lingers; /* NULL without linger: none are kept */
  size_t nlingers;
  pthread_t reaper;   /* owner's thread only */
  int has_reaper;
};

static unsigned long long ms_ns(unsigned ms) {
  return (unsigned long long)ms * 1000000ULL;
}

/* ---- connection notices and deadlines ----------------------------------- */

void ordo__http_guard_notify(void *cls, struct MHD_Connection *c,
                             void **socket_context,
                             enum MHD_ConnectionNotificationCode toe) {
  ordo__http_guard *g = cls;
  guard_conn *e = *socket_context;
  if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (ci == NULL || (e = calloc(1, sizeof *e)) == NULL)
      return; /* not guarded; the idle timeout still applies */
    e->fd = ci->connect_fd;
    e->deadline_ns = ordo__now_ns() + ms_ns(g->header_timeout_ms);
    pthread_mutex_lock(&g->mu);
    ORDO__LIST_PUSH(g->conns, e);
    pthread_mutex_unlock(&g->mu);
    *socket_context = e;
  } else if (toe == MHD_CONNECTION_NOTIFY_CLOSED && e != NULL) {
    pthread_mutex_lock(&g->mu);
    ORDO__LIST_UNLINK(g->conns, e);
    /* libmicrohttpd has sent the answer and shut down writing; it closes
     * its descriptor after this call, ours keeps the socket. */
    if (e->linger && !g->stop && g->lingers != NULL &&
        g->nlingers < GUARD_LINGER_MAX) {
      int d = fcntl(e->fd, F_DUPFD_CLOEXEC, 0);
      if (d >= 0) {
        (void)fcntl(d, F_SETFL, fcntl(d, F_GETFL) | O_NONBLOCK);
        g->lingers[g->nlingers].fd = d;
        g->lingers[g->nlingers].until_ns =
            ordo__now_ns() + ms_ns(GUARD_LINGER_MS);
        g->lingers[g->nlingers].bytes = 0;
        g->nlingers++;
        pthread_cond_broadcast(&g->cv);
      }
    }
    pthread_mutex_unlock(&g->mu);
    free(e);
    *socket_context = NULL;
  }
}

/* c's entry in the list, or NULL when it is not guarded. */
static guard_conn *conn_of(struct MHD_Connection *c) {
  const union MHD_ConnectionInfo *ci =
      MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
  return ci != NULL ? ci->socket_context : NULL;
}

/* Set the header deadline of c's connection (0: none while handled). */
static void conn_deadline(ordo__http_guard *g, struct MHD_Connection *c,
                          unsigned long long deadline_ns) {
  guard_conn *e = g != NULL ? conn_of(c) : NULL;
  if (e == NULL)
    return;
  pthread_mutex_lock(&g->mu);
  e->deadline_ns = deadline_ns;
  pthread_mutex_unlock(&g->mu);
}

void ordo__http_guard_headers_in(ordo__http_guard *g,
                                 struct MHD_Connection *c) {
  conn_deadline(g, c, 0);
}

void ordo__http_guard_completed(ordo__http_guard *g, struct MHD_Connection *c,
                                unsigned idle_timeout_ms) {
  unsigned wait_ms;
  if (g == NULL)
    return;
  wait_ms = idle_timeout_ms > g->header_timeout_ms ? idle_timeout_ms
                                                   : g->header_timeout_ms;
  conn_deadline(g, c, ordo__now_ns() + ms_ns(wait_ms));
}

void ordo__http_guard_linger(ordo__http_guard *g, struct MHD_Connection *c) {
  guard_conn *e = g != NULL ? conn_of(c) : NULL;
  if (e == NULL)
    return;
  pthread_mutex_lock(&g->mu);
  e->linger = 1;
  pthread_mutex_unlock(&g->mu);
}

/* ---- the reaper ----------------------------------------------------------- */

/* Read and drop what lingering socket l has (mu held); 1 when it is done
 * with: the client closed, failed, or used up its time or bytes. */
static int linger_drain(guard_linger *l, unsigned long long now) {
  char buf[16384];
  for (;;) {
    ssize_t k = recv(l->fd, buf, sizeof buf, MSG_DONTWAIT);
    if (k > 0) {
      l->bytes += (size_t)k;
      if (l->bytes > GUARD_LINGER_BYTES)
        return 1;
      continue;
    }
    if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
      return now >= l->until_ns;
    return 1;
  }
}

/* Every tick: shut down the connections past their header deadline, and
 * drain the lingering sockets (waiting in poll on them when there are). */
static void *reaper_main(void *arg) {
  ordo__http_guard *g = arg;
  struct pollfd pf[GUARD_LINGER_MAX];
  unsigned tick_ms = g->header_timeout_ms / 10;
  size_t i;
  if (tick_ms < 10)
    tick_ms = 10;
  if (tick_ms > 200)
    tick_ms = 200;
  pthread_mutex_lock(&g->mu);
  while (!g->stop) {
    unsigned long long now = ordo__now_ns(), next = now + ms_ns(tick_ms);
    struct timespec ts;
    guard_conn *e;
    size_t n;
    for (e = g->conns; e != NULL; e = e->next) {
      if (!e->shut && e->deadline_ns != 0 && now >= e->deadline_ns) {
        /* The socket stays open (its thread closes it): no descriptor
         * can be reused under us while mu is held. */
        (void)shutdown(e->fd, SHUT_RDWR);
        e->shut = 1;
      }
    }
    /* Lingering sockets: drain; drop those done with. */
    for (i = 0; i < g->nlingers;) {
      if (linger_drain(&g->lingers[i], now)) {
        close(g->lingers[i].fd);
        g->lingers[i] = g->lingers[--g->nlingers];
      } else {
        i++;
      }
    }
    if ((n = g->nlingers) == 0) {
      ts.tv_sec = (time_t)(next / 1000000000ULL);
      ts.tv_nsec = (long)(next % 1000000000ULL);
      (void)pthread_cond_timedwait(&g->cv, &g->mu, &ts);
      continue;
    }
    /* Only this thread removes lingering sockets: the first n stay. */
    for (i = 0; i < n; i++) {
      pf[i].fd = g->lingers[i].fd;
      pf[i].events = POLLIN;
      pf[i].revents = 0;
    }
    pthread_mutex_unlock(&g->mu);
    (void)poll(pf, (nfds_t)n, (int)tick_ms);
    pthread_mutex_lock(&g->mu);
  }
  for (i = 0; i < g->nlingers; i++)
    close(g->lingers[i].fd);
  g->nlingers = 0;
  pthread_mutex_unlock(&g->mu);
  return NULL;
}

/* ---- lifetime --------------------------------------------------------------- */

ordo__http_guard *ordo__http_guard_new(unsigned header_timeout_ms,
                                       int linger) {
  ordo__http_guard *g = calloc(1, sizeof *g);
  pthread_condattr_t ca;
  if (g == NULL || (linger && (g->lingers = calloc(GUARD_LINGER_MAX,
                                                   sizeof *g->lingers)) ==
                                  NULL)) {
    free(g);
    ordo__set_last_error(ORDO_E_NOMEM, NULL);
    return NULL;
  }
  g->header_timeout_ms = header_timeout_ms;
  if (pthread_mutex_init(&g->mu, NULL) != 0 ||
      pthread_condattr_init(&ca) != 0)
    abort(); /* only fails without memory */
  if (pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) != 0 ||
      pthread_cond_init(&g->cv, &ca) != 0)
    abort();
  pthread_condattr_destroy(&ca);
  return g;
}

int ordo__http_guard_listen(ordo__http_guard *g,
                            const ordo__http_listen_options *o,
                            struct MHD_Daemon **mhd, int *port) {
  struct sockaddr_in v4;
  struct sockaddr_in6 v6;
  const struct sockaddr *sa;
  unsigned flags = MHD_USE_THREAD_PER_CONNECTION |
                   MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
                   MHD_USE_ITC;
  const union MHD_DaemonInfo *info;

  *mhd = NULL;
  memset(&v4, 0, sizeof v4);
  memset(&v6, 0, sizeof v6);
  if (inet_pton(AF_INET, o->bind, &v4.sin_addr) == 1) {
    v4.sin_family = AF_INET;
    v4.sin_port = htons((uint16_t)o->port);
    sa = (const struct sockaddr *)&v4;
  } else if (inet_pton(AF_INET6, o->bind, &v6.sin6_addr) == 1) {
    v6.sin6_family = AF_INET6;
    v6.sin6_port = htons((uint16_t)o->port);
    sa = (const struct sockaddr *)&v6;
    flags |= MHD_USE_IPv6;
  } else {
    return ordo__set_last_error(ORDO_E_INVAL, "%sbind address '%s' is not "
                                "an IPv4 or IPv6 literal", o->prefix,
                                o->bind);
  }
  /* The reaper first: connections are listed from the first one on. */
  pthread_mutex_lock(&g->mu);
  g->stop = 0;
  pthread_mutex_unlock(&g->mu);
  if (pthread_create(&g->reaper, NULL, reaper_main, g) != 0)
    return ordo__set_last_error(ORDO_E_SYSTEM, "%s: cannot start the header "
                                "reaper thread", o->who);
  g->has_reaper = 1;
  *mhd = MHD_start_daemon(
      flags, (uint16_t)o->port, NULL, NULL, o->access, o->cls,
      MHD_OPTION_SOCK_ADDR, sa, MHD_OPTION_URI_LOG_CALLBACK, o->uri_log,
      o->cls, MHD_OPTION_NOTIFY_COMPLETED, o->completed, o->cls,
      MHD_OPTION_NOTIFY_CONNECTION, ordo__http_guard_notify, g,
      MHD_OPTION_CONNECTION_LIMIT, o->connection_limit,
      MHD_OPTION_PER_IP_CONNECTION_LIMIT, o->connection_limit_per_ip,
      MHD_OPTION_CONNECTION_TIMEOUT,
      (unsigned)((o->idle_timeout_ms + 999) / 1000), MHD_OPTION_END);
  if (*mhd == NULL) {
    ordo__http_guard_stop(g);
    return ordo__set_last_error(ORDO_E_IO, "%scannot listen on %s:%d",
                                o->prefix, o->bind, o->port);
  }
  info = MHD_get_daemon_info(*mhd, MHD_DAEMON_INFO_BIND_PORT);
  *port = info != NULL ? (int)info->port : o->port;
  return ORDO_OK;
}

void ordo__http_guard_stop(ordo__http_guard *g) {
  if (g == NULL || !g->has_reaper)
    return;
  pthread_mutex_lock(&g->mu);
  g->stop = 1;
  pthread_cond_broadcast(&g->cv);
  pthread_mutex_unlock(&g->mu);
  pthread_join(g->reaper, NULL);
  g->has_reaper = 0;
}

void ordo__http_guard_free(ordo__http_guard *g) {
  if (g == NULL)
    return;
  ordo__http_guard_stop(g);
  pthread_cond_destroy(&g->cv);
  pthread_mutex_destroy(&g->mu);
  free(g->lingers);
  free(g);
}

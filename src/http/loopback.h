/*
 * loopback.h — client sockets from a chosen loopback address, for what
 * plays hostile clients against the HTTP front ends: `ordo bench hostile`
 * (bench/bench_hostile.c) and the tests (tests/support/). Binding the
 * client end to 127.0.0.2, 127.0.0.3, ... makes each a client address of
 * its own, so the per-address connection limit can be exercised from one
 * process. Not installed; not used by the servers themselves.
 */
#ifndef ORDO_HTTP_LOOPBACK_H
#define ORDO_HTTP_LOOPBACK_H

/*
 * A non-blocking, close-on-exec TCP socket bound to the IPv4 address from
 * (any port) with a connect to 127.0.0.1:port started (it may still be in
 * progress: poll for POLLOUT and read SO_ERROR to know). The caller owns
 * and closes it. -1 on failure (errno set). Any thread; keeps no state.
 */
int ordo__http_loopback_connect(const char *from, int port);

#endif /* ORDO_HTTP_LOOPBACK_H */

/*
 * loopback.c — loopback.h's client socket from a chosen loopback address.
 */
#include "http/loopback.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int ordo__http_loopback_connect(const char *from, int port) {
  struct sockaddr_in src, dst;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -1;
  memset(&src, 0, sizeof src);
  src.sin_family = AF_INET;
  inet_pton(AF_INET, from, &src.sin_addr);
  memset(&dst, 0, sizeof dst);
  dst.sin_family = AF_INET;
  dst.sin_port = htons((uint16_t)port);
  inet_pton(AF_INET, "127.0.0.1", &dst.sin_addr);
  if (bind(fd, (struct sockaddr *)&src, sizeof src) != 0 ||
      (connect(fd, (struct sockaddr *)&dst, sizeof dst) != 0 &&
       errno != EINPROGRESS)) {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  return fd;
}

/*
 * support_pg.c — a private PostgreSQL cluster per test (support_pg.h).
 *
 * Layout of pg->dir: data/ (the cluster), sock/ (its unix socket),
 * server.log (the postmaster's output, pg_ctl -l) and commands.log (what
 * initdb and pg_ctl printed). Every program runs through spawn_wait: fork,
 * then in the child stdin from /dev/null, stdout and stderr to a log, every
 * other descriptor closed — the postmaster outlives pg_ctl and must not keep
 * the test's sockets or ctest's pipes open — the signal mask cleared, and
 * exec with an argument vector, never a shell command line of ours. As root
 * the vector starts with runuser -u postgres --.
 */
#include "support/support_pg.h"

#include <libpq-fe.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <glob.h>
#include <limits.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* Starts tried, each on a new free port: another process may bind the port
 * between our probe and the postmaster's bind. */
#define PG_START_TRIES 5
/* pg_ctl's wait for a start or a stop, in seconds: a bound on a wait for an
 * event (pg_ctl polls the server), generous for sanitizer builds on busy CI
 * machines, not a timing assertion. */
#define PG_CTL_WAIT "120"
/* Bytes of each log quoted in an error. */
#define PG_LOG_TAIL 1200
/* A TMPDIR longer than this is not used: the socket's path,
 * <base>/ordo-pg-XXXXXX/sock/.s.PGSQL.NNNNN, must fit in sun_path (108). */
#define PG_BASE_MAX 64

#define PG_PATH_MAX 512

/* ---- messages ------------------------------------------------------------ */

__attribute__((format(printf, 2, 3)))
static int pg_fail(support_pg *pg, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(pg->why_skipped, sizeof pg->why_skipped, fmt, ap);
  va_end(ap);
  return -1;
}

static void pg_path(const support_pg *pg, char *out, const char *name) {
  snprintf(out, PG_PATH_MAX, "%s/%s", pg->dir, name);
}

/* Append the last PG_LOG_TAIL bytes of pg->dir/name to the message. */
static void pg_append_tail(support_pg *pg, const char *name) {
  char path[PG_PATH_MAX], buf[PG_LOG_TAIL + 1];
  pg_path(pg, path, name);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return;
  off_t size = lseek(fd, 0, SEEK_END);
  off_t from = size > PG_LOG_TAIL ? size - PG_LOG_TAIL : 0;
  ssize_t n = size > 0 ? pread(fd, buf, PG_LOG_TAIL, from) : 0;
  close(fd);
  if (n <= 0)
    return;
  buf[n] = '\0';
  size_t used = strlen(pg->why_skipped);
  snprintf(pg->why_skipped + used, sizeof pg->why_skipped - used,
           "\n--- %s%s ---\n%s", path, from > 0 ? " (its end)" : "", buf);
}

/* Missing server programs: a skip, or an error under ORDO_REQUIRE_POSTGRES. */
static int pg_missing(support_pg *pg, const char *what) {
  const char *req = getenv("ORDO_REQUIRE_POSTGRES");
  int required = req != NULL && strcmp(req, "1") == 0;
  snprintf(pg->why_skipped, sizeof pg->why_skipped,
           "%s%s; `make deps` installs the PostgreSQL server (Debian package "
           "postgresql), or set ORDO_TEST_POSTGRES_URL to use a running one",
           required ? "ORDO_REQUIRE_POSTGRES=1 and " : "", what);
  return required ? -1 : 1;
}

/* ---- running programs ------------------------------------------------------ */

/* Close every descriptor from 3 up, in a forked child. */
static void close_from_3(long max_fd) {
#ifdef SYS_close_range
  if (syscall(SYS_close_range, 3u, ~0u, 0u) == 0)
    return;
#endif
  for (long fd = 3; fd < max_fd; fd++)
    close((int)fd);
}

/*
 * Run argv (argv[0] a path) to its end with stdout and stderr on out, in
 * cwd (NULL: the test's). 0 and *status its wait status, or -1 and errno
 * when it could not be started (an exec failure is status 127).
 */
static int spawn_wait(const char *const *argv, int out, const char *cwd,
                      int *status) {
  long max_fd = sysconf(_SC_OPEN_MAX);
  if (max_fd < 0 || max_fd > 65536)
    max_fd = 65536;
  int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (in < 0)
    return -1;
  pid_t pid = fork();
  if (pid == 0) {
    /* Only async-signal-safe calls from here to exec. */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGCHLD, SIG_DFL);
    if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
      _exit(126);
    close_from_3(max_fd);
    if (cwd != NULL && chdir(cwd) != 0)
      _exit(126);
    execv(argv[0], (char *const *)argv);
    static const char msg[] = "support_pg: cannot execute ";
    ssize_t ignored = write(2, msg, sizeof msg - 1);
    ignored = write(2, argv[0], strlen(argv[0]));
    ignored = write(2, "\n", 1);
    (void)ignored;
    _exit(127);
  }
  int err = errno;
  close(in);
  if (pid < 0) {
    errno = err;
    return -1;
  }
  while (waitpid(pid, status, 0) < 0) {
    if (errno != EINTR)
      return -1;
  }
  return 0;
}

static void describe_status(int status, char *out, size_t n) {
  if (WIFEXITED(status))
    snprintf(out, n, "exited with status %d", WEXITSTATUS(status));
  else if (WIFSIGNALED(status))
    snprintf(out, n, "was killed by signal %d", WTERMSIG(status));
  else
    snprintf(out, n, "ended with wait status %#x", (unsigned)status);
}

/*
 * Run a server program (args: NULL-terminated, args[0] a path) as the
 * server's user in pg->dir, its output appended to commands.log. 0 when it
 * exited 0; otherwise -1 and the message says what, with the logs' tails.
 */
static int pg_run(support_pg *pg, const char *what, const char *const *args) {
  const char *argv[24];
  size_t n = 0;
  if (pg->as_postgres) {
    argv[n++] = pg->runuser;
    argv[n++] = "-u";
    argv[n++] = "postgres";
    argv[n++] = "--";
  }
  while (*args != NULL && n < sizeof argv / sizeof argv[0] - 1)
    argv[n++] = *args++;
  argv[n] = NULL;

  char log[PG_PATH_MAX];
  pg_path(pg, log, "commands.log");
  int out = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (out < 0)
    return pg_fail(pg, "%s: cannot open %s: %s", what, log, strerror(errno));
  int status = 0;
  int rc = spawn_wait(argv, out, pg->dir, &status);
  int err = errno;
  close(out);
  if (rc != 0)
    return pg_fail(pg, "%s: cannot run %s: %s", what, argv[0], strerror(err));
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
    return 0;
  char how[64];
  describe_status(status, how, sizeof how);
  pg_fail(pg, "%s %s", what, how);
  pg_append_tail(pg, "commands.log");
  pg_append_tail(pg, "server.log");
  return -1;
}

/* ---- finding things -------------------------------------------------------- */

static int is_exec(const char *dir, const char *name) {
  char path[PG_PATH_MAX];
  int n = snprintf(path, sizeof path, "%s/%s", dir, name);
  return n > 0 && (size_t)n < sizeof path && access(path, X_OK) == 0;
}

static int has_server(const char *bindir) {
  return is_exec(bindir, "initdb") && is_exec(bindir, "pg_ctl") &&
         is_exec(bindir, "postgres");
}

/* name's path through PATH, then the dirs in extra (':'-separated). */
static int find_exec(const char *name, const char *extra, char *out,
                     size_t n) {
  const char *path = getenv("PATH");
  char dirs[4096];
  snprintf(dirs, sizeof dirs, "%s:%s",
           path != NULL ? path : "/usr/local/bin:/usr/bin:/bin", extra);
  char *save = NULL;
  for (char *d = strtok_r(dirs, ":", &save); d != NULL;
       d = strtok_r(NULL, ":", &save)) {
    if (d[0] == '/' && is_exec(d, name)) {
      int m = snprintf(out, n, "%s/%s", d, name);
      if (m > 0 && (size_t)m < n)
        return 1;
    }
  }
  return 0;
}

/* The directory pg_config --bindir names, into out. */
static int pg_config_bindir(char *out, size_t n) {
  char exe[PG_PATH_MAX];
  if (!find_exec("pg_config", "", exe, sizeof exe))
    return 0;
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0)
    return 0;
  const char *argv[] = {exe, "--bindir", NULL};
  int status = 0;
  int rc = spawn_wait(argv, p[1], NULL, &status);
  close(p[1]);
  /* One short line: it fitted in the pipe before we read it. */
  char buf[PG_PATH_MAX];
  ssize_t got = read(p[0], buf, sizeof buf - 1);
  close(p[0]);
  if (rc != 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0 || got <= 0)
    return 0;
  buf[got] = '\0';
  buf[strcspn(buf, "\r\n")] = '\0';
  return snprintf(out, n, "%s", buf) < (int)n;
}

/* The server's programs: ORDO_TEST_POSTGRES_BINDIR when set, else
 * pg_config --bindir when it has them, else the highest
 * /usr/lib/postgresql/<version>/bin (Debian's layout). */
static int pg_find_bindir(support_pg *pg) {
  char dir[sizeof pg->bindir];
  const char *env = getenv("ORDO_TEST_POSTGRES_BINDIR");
  if (env != NULL && env[0] != '\0') {
    if (strlen(env) >= sizeof pg->bindir || !has_server(env))
      return 0;
    snprintf(pg->bindir, sizeof pg->bindir, "%s", env);
    return 1;
  }
  if (pg_config_bindir(dir, sizeof dir) && has_server(dir)) {
    memcpy(pg->bindir, dir, sizeof dir);
    return 1;
  }
  glob_t g;
  long best = -1;
  if (glob("/usr/lib/postgresql/*/bin", GLOB_ONLYDIR, NULL, &g) == 0) {
    for (size_t i = 0; i < g.gl_pathc; i++) {
      const char *v = g.gl_pathv[i] + strlen("/usr/lib/postgresql/");
      long version = strtol(v, NULL, 10);
      if (version > best && strlen(g.gl_pathv[i]) < sizeof pg->bindir &&
          has_server(g.gl_pathv[i])) {
        best = version;
        snprintf(pg->bindir, sizeof pg->bindir, "%s", g.gl_pathv[i]);
      }
    }
    globfree(&g);
  }
  return best >= 0;
}

/* Every directory on the way to path may be searched by other users (the
 * postgres user, when we are root). */
static int searchable_by_others(const char *path) {
  char real[PATH_MAX];
  if (realpath(path, real) == NULL)
    return 0;
  for (char *p = real;; p++) {
    if (*p == '/' || *p == '\0') {
      char c = *p;
      *p = '\0';
      struct stat st;
      int ok = stat(real[0] != '\0' ? real : "/", &st) == 0 &&
               S_ISDIR(st.st_mode) && (st.st_mode & S_IXOTH) != 0;
      *p = c;
      if (!ok)
        return 0;
      if (c == '\0')
        return 1;
    }
  }
}

/* Where the cluster's directory goes: TMPDIR when it is short, made of
 * characters that need no quoting in postgresql.conf and in pg_ctl's shell
 * command line, and (as root) reachable by the postgres user; else /tmp. */
static const char *pg_base(const support_pg *pg) {
  const char *t = getenv("TMPDIR");
  if (t == NULL || t[0] != '/' || strlen(t) > PG_BASE_MAX ||
      strspn(t, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                "0123456789/._-") != strlen(t) ||
      (pg->as_postgres && !searchable_by_others(t)))
    return "/tmp";
  return t;
}

/* A free TCP port on 127.0.0.1 (free now: the kernel's choice for port 0). */
static int pg_free_port(void) {
  int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0)
    return -1;
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  int port = -1;
  if (bind(s, (struct sockaddr *)&a, sizeof a) == 0 &&
      getsockname(s, (struct sockaddr *)&a, &len) == 0)
    port = ntohs(a.sin_port);
  close(s);
  return port;
}

/* ---- the cluster --------------------------------------------------------- */

static int rm_one(const char *path, const struct stat *sb, int flag,
                  struct FTW *ftw) {
  (void)sb;
  (void)flag;
  (void)ftw;
  remove(path);
  return 0;
}

/* Make a directory for the server: owned by postgres when we are root. */
static int pg_own(support_pg *pg, const char *path) {
  if (pg->as_postgres &&
      chown(path, (uid_t)pg->postgres_uid, (gid_t)pg->postgres_gid) != 0)
    return pg_fail(pg, "chown %s to postgres: %s", path, strerror(errno));
  return 0;
}

static int pg_initdb(support_pg *pg) {
  char initdb[PG_PATH_MAX], data[PG_PATH_MAX], sock[PG_PATH_MAX];
  snprintf(initdb, sizeof initdb, "%s/initdb", pg->bindir);
  pg_path(pg, data, "data");
  pg_path(pg, sock, "sock");
  if (mkdir(sock, 0700) != 0)
    return pg_fail(pg, "mkdir %s: %s", sock, strerror(errno));
  if (pg_own(pg, sock) != 0)
    return -1;
  /* --no-sync only skips initdb's own flush of the new files; the server
   * runs with fsync on. */
  const char *args[] = {initdb, "-D", data, "--no-sync", "-A", "trust",
                        "-U", "postgres", "-E", "UTF8", "--no-locale", NULL};
  if (pg_run(pg, "initdb", args) != 0)
    return -1;

  char conf[PG_PATH_MAX];
  pg_path(pg, conf, "data/postgresql.conf");
  FILE *f = fopen(conf, "ae");
  if (f == NULL)
    return pg_fail(pg, "open %s: %s", conf, strerror(errno));
  /* The port comes on pg_ctl's command line, so that a retry on another
   * port needs no edit here. */
  fprintf(f,
          "\n# tests/support/support_pg.c: a private server for one test.\n"
          "listen_addresses = '127.0.0.1'\n"
          "unix_socket_directories = '%s'\n"
          "max_connections = 300\n"
          "shared_buffers = 16MB\n"
          "fsync = on\n"
          "synchronous_commit = on\n"
          "full_page_writes = on\n",
          sock);
  if (fclose(f) != 0)
    return pg_fail(pg, "write %s: %s", conf, strerror(errno));
  return 0;
}

static off_t pg_log_size(const support_pg *pg) {
  char path[PG_PATH_MAX];
  struct stat st;
  pg_path(pg, path, "server.log");
  return stat(path, &st) == 0 ? st.st_size : 0;
}

/* The server log, from byte from on, says the port was taken. */
static int pg_port_taken(const support_pg *pg, off_t from) {
  char path[PG_PATH_MAX], buf[8192];
  pg_path(pg, path, "server.log");
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return 0;
  ssize_t n = pread(fd, buf, sizeof buf - 1, from);
  close(fd);
  if (n <= 0)
    return 0;
  buf[n] = '\0';
  return strstr(buf, "Address already in use") != NULL;
}

/* pg_ctl start -w on pg->port. */
static int pg_ctl_start(support_pg *pg) {
  char pg_ctl[PG_PATH_MAX], data[PG_PATH_MAX], log[PG_PATH_MAX], opts[32];
  snprintf(pg_ctl, sizeof pg_ctl, "%s/pg_ctl", pg->bindir);
  pg_path(pg, data, "data");
  pg_path(pg, log, "server.log");
  /* pg_ctl passes -o through a shell: digits only. */
  snprintf(opts, sizeof opts, "-p %d", pg->port);
  char what[64];
  snprintf(what, sizeof what, "pg_ctl start (port %d)", pg->port);
  const char *args[] = {pg_ctl, "start", "-w", "-t", PG_CTL_WAIT, "-D", data,
                        "-l", log, "-o", opts, NULL};
  if (pg_run(pg, what, args) != 0)
    return -1;
  pg->running = 1;
  return 0;
}

static int pg_ctl_stop(support_pg *pg, const char *mode) {
  char pg_ctl[PG_PATH_MAX], data[PG_PATH_MAX], what[64];
  snprintf(pg_ctl, sizeof pg_ctl, "%s/pg_ctl", pg->bindir);
  pg_path(pg, data, "data");
  snprintf(what, sizeof what, "pg_ctl stop -m %s", mode);
  const char *args[] = {pg_ctl, "stop", "-w", "-t", PG_CTL_WAIT, "-D", data,
                        "-m", mode, NULL};
  if (pg_run(pg, what, args) != 0)
    return -1;
  pg->running = 0;
  return 0;
}

/* The postmaster's lock file is there: a server may run on the cluster. */
static int pg_pid_file(const support_pg *pg) {
  char path[PG_PATH_MAX];
  pg_path(pg, path, "data/postmaster.pid");
  return access(path, F_OK) == 0;
}

/* ---- public ---------------------------------------------------------------- */

int support_pg_start(support_pg *pg) {
  memset(pg, 0, sizeof *pg);
  const char *url = getenv("ORDO_TEST_POSTGRES_URL");
  if (url != NULL && url[0] != '\0') {
    if (strlen(url) >= sizeof pg->url)
      return pg_fail(pg, "ORDO_TEST_POSTGRES_URL is longer than %zu bytes",
                     sizeof pg->url - 1);
    snprintf(pg->url, sizeof pg->url, "%s", url);
    pg->external = 1;
    return 0;
  }

  if (!pg_find_bindir(pg))
    return pg_missing(pg, "the PostgreSQL server programs (initdb, pg_ctl, "
                          "postgres) are not installed: neither "
                          "ORDO_TEST_POSTGRES_BINDIR, `pg_config --bindir` "
                          "nor /usr/lib/postgresql/*/bin has them");
  if (geteuid() == 0) {
    /* PostgreSQL refuses to run as root. */
    struct passwd pw, *found = NULL;
    char buf[4096];
    if (getpwnam_r("postgres", &pw, buf, sizeof buf, &found) != 0 ||
        found == NULL)
      return pg_missing(pg, "running as root, with no postgres system user "
                            "to run the server as");
    if (!find_exec("runuser", "/usr/sbin:/sbin", pg->runuser,
                   sizeof pg->runuser))
      return pg_missing(pg, "running as root, without runuser (util-linux) "
                            "to run the server as postgres");
    pg->as_postgres = 1;
    pg->postgres_uid = (unsigned)pw.pw_uid;
    pg->postgres_gid = (unsigned)pw.pw_gid;
  }

  snprintf(pg->dir, sizeof pg->dir, "%s/ordo-pg-XXXXXX", pg_base(pg));
  if (mkdtemp(pg->dir) == NULL) {
    int err = errno;
    char tried[sizeof pg->dir];
    snprintf(tried, sizeof tried, "%s", pg->dir);
    pg->dir[0] = '\0'; /* nothing for destroy to remove */
    return pg_fail(pg, "mkdtemp %s: %s", tried, strerror(err));
  }
  if (pg_own(pg, pg->dir) != 0 || pg_initdb(pg) != 0)
    return -1;

  for (int attempt = 1;; attempt++) {
    pg->port = pg_free_port();
    if (pg->port < 0)
      return pg_fail(pg, "no free port on 127.0.0.1: %s", strerror(errno));
    off_t from = pg_log_size(pg);
    if (pg_ctl_start(pg) == 0)
      break;
    if (attempt == PG_START_TRIES || !pg_port_taken(pg, from))
      return -1;
  }
  snprintf(pg->url, sizeof pg->url, "postgresql://postgres@127.0.0.1:%d/postgres",
           pg->port);
  pg->why_skipped[0] = '\0';
  return 0;
}

int support_pg_stop(support_pg *pg, int immediate) {
  if (pg->external) {
    snprintf(pg->why_skipped, sizeof pg->why_skipped,
             "the server at ORDO_TEST_POSTGRES_URL is not ours to stop");
    return 1;
  }
  if (pg->dir[0] == '\0' || !pg_pid_file(pg)) {
    pg->running = 0;
    return 0;
  }
  return pg_ctl_stop(pg, immediate ? "immediate" : "fast");
}

int support_pg_restart(support_pg *pg) {
  if (pg->external) {
    snprintf(pg->why_skipped, sizeof pg->why_skipped,
             "the server at ORDO_TEST_POSTGRES_URL is not ours to restart");
    return 1;
  }
  if (pg->dir[0] == '\0' || pg->port <= 0)
    return pg_fail(pg, "support_pg_restart: no cluster (start failed or "
                       "was not called)");
  if (pg->running && pg_pid_file(pg))
    return 0;
  return pg_ctl_start(pg);
}

void support_pg_destroy(support_pg *pg) {
  if (pg->external || pg->dir[0] == '\0')
    return;
  /* Also after a start that failed half-way (pg_ctl's wait ran out). */
  if (pg_pid_file(pg) && pg_ctl_stop(pg, "immediate") != 0)
    fprintf(stderr, "support_pg_destroy: %s\n", pg->why_skipped);
  nftw(pg->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
  pg->dir[0] = '\0';
  pg->running = 0;
}

/* cmocka after the system headers, as it asks. */
#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdatomic.h>

static atomic_int support_pg_skipped;

int support_pg_start_for_main(support_pg *pg) {
  int rc = support_pg_start(pg);
  if (rc == 0)
    return 0;
  if (rc == 1)
    printf("SKIPPED: %s\n", pg->why_skipped);
  else
    fprintf(stderr, "cannot start PostgreSQL: %s\n", pg->why_skipped);
  support_pg_destroy(pg);
  return rc == 1 ? 77 : 1;
}

void support_pg_exec(support_pg *pg, const char *sql, const char *param) {
  PGconn *c = PQconnectdb(pg->url);
  assert_int_equal(PQstatus(c), CONNECTION_OK);
  PGresult *r = PQexecParams(c, sql, param != NULL ? 1 : 0, NULL,
                             param != NULL ? &param : NULL, NULL, NULL, 0);
  if (PQresultStatus(r) != PGRES_COMMAND_OK)
    fail_msg("%s: %s", sql, PQerrorMessage(c));
  PQclear(r);
  PQfinish(c);
}

int support_pg_main_result(int failed) {
  return failed == 0 && atomic_load(&support_pg_skipped) > 0 ? 77 : failed;
}

void support__pg_start_or_skip(support_pg *pg, const char *file, int line) {
  int rc = support_pg_start(pg);
  if (rc == 1) {
    atomic_fetch_add(&support_pg_skipped, 1);
    print_message("support_pg: skipped: %s\n", pg->why_skipped);
    _skip(file, line);
  }
  if (rc != 0) {
    print_error("support_pg_start: %s\n", pg->why_skipped);
    _fail(file, line);
  }
}

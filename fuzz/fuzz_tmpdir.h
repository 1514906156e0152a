/*
 * fuzz_tmpdir.h — removing a target's temporary data directory at exit
 * (fuzz_node_http, fuzz_server_http): the whole tree, files first.
 */
#ifndef ORDO_FUZZ_TMPDIR_H
#define ORDO_FUZZ_TMPDIR_H

#include <ftw.h>
#include <stdio.h>

static inline int fuzz_rm_one(const char *path, const struct stat *sb,
                              int flag, struct FTW *ftw) {
  (void)sb;
  (void)flag;
  (void)ftw;
  return remove(path);
}

/* Remove dir and everything under it (errors ignored). */
static inline void fuzz_rmdir_all(const char *dir) {
  nftw(dir, fuzz_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

#endif /* ORDO_FUZZ_TMPDIR_H */

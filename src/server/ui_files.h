/*
 * ui_files.h — the dashboard's static files (src/server/ui/), compiled into
 * the binary by cmake/embed_ui.cmake as ui_files.c in the build tree.
 * Read-only, static: nothing to free.
 */
#ifndef ORDO_SERVER_UI_FILES_H
#define ORDO_SERVER_UI_FILES_H

#include <stddef.h>

typedef struct ordo__ui_file {
  const char *name;          /* "index.html", "app.js", …; NULL ends */
  const unsigned char *data; /* len bytes (then a NUL) */
  size_t len;
} ordo__ui_file;

extern const ordo__ui_file ordo__ui_files[];

#endif /* ORDO_SERVER_UI_FILES_H */

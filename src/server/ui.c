/*
 * ui.c — GET /ui: the dashboard's page, stylesheet and script, compiled in
 * (ui_files.h). They hold no data, so they are served without the token;
 * the page asks for it and sends it with every API call. Every answer
 * carries a strict Content-Security-Policy: the page runs only its own
 * script, loads nothing from elsewhere and cannot be framed, so an id or a
 * service name that smuggles markup stays text.
 */
#include "server/reply.h"
#include "server/routes.h"
#include "server/ui_files.h"

#include <stdlib.h>
#include <string.h>

/* Name/value pairs, NULL-terminated (ordo_server_response.headers). */
static const char *const ui_headers[] = {
    "Content-Security-Policy",
    "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options", "nosniff",
    "X-Frame-Options", "DENY",
    "Referrer-Policy", "no-referrer",
    "Cross-Origin-Opener-Policy", "same-origin",
    "Cross-Origin-Resource-Policy", "same-origin",
    NULL};

static const char *ui_type(const char *name) {
  const char *dot = strrchr(name, '.');
  if (dot != NULL && strcmp(dot, ".js") == 0)
    return "text/javascript; charset=utf-8";
  if (dot != NULL && strcmp(dot, ".css") == 0)
    return "text/css; charset=utf-8";
  return "text/html; charset=utf-8";
}

int ordo__srv_is_ui_path(const char *path) {
  return strcmp(path, "/ui") == 0 || strncmp(path, "/ui/", 4) == 0;
}

int ordo__srv_ui(const ordo_server_request *req, ordo_server_response *resp) {
  const char *name = req->path[3] == '/' && req->path[4] != '\0'
                         ? req->path + 4
                         : "index.html";
  const ordo__ui_file *f;
  int get = strcmp(req->method, "GET") == 0;

  resp->headers = ui_headers;
  if (!get && strcmp(req->method, "HEAD") != 0) {
    resp->allow = "GET";
    return ordo__srv_error(resp, 405, ORDO_E_UNSUPPORTED,
                           "this path takes GET");
  }
  for (f = ordo__ui_files; f->name != NULL; f++)
    if (strcmp(f->name, name) == 0)
      break;
  if (f->name == NULL)
    return ordo__srv_error(resp, 404, ORDO_E_NOT_FOUND,
                           "no such file of the dashboard (/ui, "
                           "/ui/app.js, /ui/app.css)");
  if ((resp->body = malloc(f->len + 1)) == NULL)
    return ordo__srv_reply(resp, 500, NULL);
  memcpy(resp->body, f->data, f->len + 1);
  resp->body_len = f->len;
  resp->status = 200;
  resp->content_type = ui_type(f->name);
  return ORDO_OK;
}

/* A program built against an installed ordo, through pkg-config or
 * find_package(ordo): checks the installed header and library work. */
#include <ordo.h>
#include <stdio.h>
#include <string.h>

static int answer(ordo_op *op, void *arg) {
  (void)arg;
  return ordo_op_set_result(op, "{\"answer\":42}");
}

int main(void) {
  ordo_ctx *ctx = ordo_ctx_new(NULL);
  if (ctx == NULL) {
    fprintf(stderr, "ordo_ctx_new: %s\n", ordo_last_error_message());
    return 1;
  }
  ordo_op *op = ordo_submit(ctx, ORDO_CLASS_CHEAP, answer, NULL);
  int rc = ordo_op_wait(op, -1);
  int ok = rc == ORDO_OK && strcmp(ordo_op_result(op), "{\"answer\":42}") == 0;
  printf("consumer: %s %s\n", ordo_errname(rc), ok ? ordo_op_result(op) : "(wrong)");
  ordo_op_release(op);
  ordo_ctx_free(ctx);
  return ok ? 0 : 1;
}

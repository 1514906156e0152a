/*
 * list.h — an intrusive doubly linked list: NULL-terminated, reached through
 * a head pointer, its elements any struct with `next` and `prev` pointers
 * to its own type (BSD <sys/queue.h>'s LIST). runtime/ctx.c keeps its
 * closers this way, http/guard.c its connections.
 *
 * Macros, so that one pair serves every element type; they evaluate their
 * arguments more than once, so pass plain lvalues. The list owns nothing:
 * elements are the caller's, and so is the lock that guards the list.
 */
#ifndef ORDO_BASE_LIST_H
#define ORDO_BASE_LIST_H

#include <stddef.h>

/* Put e first in the list at head. */
#define ORDO__LIST_PUSH(head, e)                                               \
  do {                                                                         \
    (e)->prev = NULL;                                                          \
    (e)->next = (head);                                                        \
    if ((head) != NULL)                                                        \
      (head)->prev = (e);                                                      \
    (head) = (e);                                                              \
  } while (0)

/* Take e, which is in the list at head, out of it; e's own next and prev
 * are left as they were (the caller may mark e with them). */
#define ORDO__LIST_UNLINK(head, e)                                             \
  do {                                                                         \
    if ((e)->prev != NULL)                                                     \
      (e)->prev->next = (e)->next;                                             \
    else                                                                       \
      (head) = (e)->next;                                                      \
    if ((e)->next != NULL)                                                     \
      (e)->next->prev = (e)->prev;                                             \
  } while (0)

#endif

/*
 * batch_json.h — one batch as JSON: the one parser and validator of the
 * fields every front end shares, so that a batch is held to the same rules
 * whether it comes through the C JSON API (ordo_journal_enqueue_json),
 * `POST /v1/batches` or a workload file:
 *
 *   {"id":"T1","service":"s1","reads":["a"],"writes":["b"],"deps":["T0"],
 *    ...the caller's own keys}
 *
 *   id        1..ORDO_BATCH_ID_MAX bytes                 (required)
 *   service   1..ORDO_BATCH_SERVICE_MAX bytes            (required unless
 *             the caller has a default, e.g. ?service= on the server)
 *   reads, writes   arrays of addresses, each 1..ORDO_BATCH_ADDRESS_MAX
 *   deps      array of batch ids, each 1..ORDO_BATCH_ID_MAX, not the id
 *
 * Any other key is refused ("unknown key"), since a typo would silently
 * change what is enqueued, unless the caller names it as one of its own
 * (payload, transactions; txns, outcome): their values are handed back
 * unread. The messages name the field and the rule, with no prefix: the
 * caller adds where ("line 3: ", "item 2: ", "batch: ").
 *
 * Ownership: the strings are borrowed from the JSON object, which must
 * outlive the result; the arrays are the result's
 * (ordo_batch_json_clear frees them). No state; any thread.
 */
#ifndef ORDO_QUEUE_BATCH_JSON_H
#define ORDO_QUEUE_BATCH_JSON_H

#include <jansson.h>
#include <stddef.h>

#define ORDO_BATCH_ID_MAX 256
#define ORDO_BATCH_SERVICE_MAX 128
#define ORDO_BATCH_ADDRESS_MAX 4096
#define ORDO_BATCH_JSON_EXTRA_MAX 4

typedef struct ordo_batch_json {
  const char *id, *service;
  const char **reads, **writes, **deps; /* NULL when empty */
  size_t nreads, nwrites, ndeps;
  json_t *extra[ORDO_BATCH_JSON_EXTRA_MAX]; /* the caller's keys' values,
                                               by index; NULL: absent */
} ordo_batch_json;

/*
 * Parse and check o into *b (zeroed first). extra[0..nextra) are the keys
 * the caller takes besides the shared ones (at most
 * ORDO_BATCH_JSON_EXTRA_MAX); default_service (may be NULL) stands in for
 * a missing "service". ORDO_OK; ORDO_E_INVAL with the reason in
 * why[0..whylen) (nothing to clear); ORDO_E_NOMEM.
 */
int ordo_batch_json_parse(json_t *o, const char *const *extra, size_t nextra,
                          const char *default_service, ordo_batch_json *b,
                          char *why, size_t whylen);

/* sp's id, service, reads, writes and deps: b's (borrowed). */
struct ordo_queue_batch_spec;
void ordo_batch_json_spec(const ordo_batch_json *b,
                          struct ordo_queue_batch_spec *sp);

/* Free b's arrays (not the strings: the JSON's). */
void ordo_batch_json_clear(ordo_batch_json *b);

/* The rules above as pieces, for nested objects of the same request (a
 * server-signed transaction's inputs and outputs): */
/* 1 when v is a string of 1..max bytes with no NUL byte inside. */
int ordo_batch_json_good_str(json_t *v, size_t max);
/* o[key] (absent: none) as an array of strings of 1..max bytes into *v
 * (malloc'd, NULL when empty; strings borrowed). ORDO_OK, ORDO_E_INVAL with
 * why ("'inputs' must be an array of strings", "'inputs'[2] must be a
 * non-empty string of at most 4096 bytes"), ORDO_E_NOMEM. */
int ordo_batch_json_strings(json_t *o, const char *key, size_t max,
                            const char ***v, size_t *n, char *why,
                            size_t whylen);
/* The first key of o not in known[0..n), or NULL. */
const char *ordo_batch_json_unknown_key(json_t *o, const char *const *known,
                                        size_t n);

#endif

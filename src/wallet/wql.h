/*
 * wql.h — the wallet query language: Indy WQL (JSON) parsed into the
 * storage layer's query tree (storage/storage.h: ordo_storage_query).
 *
 * Why a tree and not SQL: the wallet must encrypt every non-'~' tag name and
 * value before a backend sees them, so the parser produces plaintext leaves,
 * the wallet rewrites the encrypted ones in place (ordo__wql_walk_leaves),
 * and the backend turns the result into its own query language.
 *
 * Grammar (Indy WQL):
 *
 *   query    = {} | { subquery, ... }    several keys in one object: AND
 *   subquery = "$and": [query, ...] | "$or": [query, ...] | "$not": query
 *            | "<tag>": "<value>"                               ($eq)
 *            | "<tag>": {"$eq"|"$neq"|"$gt"|"$gte"|"$lt"|"$lte"|"$like":
 *                        "<value>"}
 *            | "<tag>": {"$in": ["<value>", ...]}
 *
 * Shape of the tree produced:
 *   - NULL, "" and "{}" at the top: one ORDO_SQ_ALL node.
 *   - An object with one key: that subquery's node (no AND wrapper). With
 *     several keys: an AND of them, in the order the keys appear in the text.
 *     An empty object below the top ({"$not":{}}): an AND with no children
 *     (true), so ALL only ever appears as a root.
 *   - "$and"/"$or": an AND/OR node with one child per element, even for zero
 *     or one element ("$or": [] is an OR with no children: false).
 *   - "$not": a NOT node with exactly one child.
 *   - A leaf (EQ..IN) has tag_name = the key as given, '~' included, and
 *     plaintext = 1 exactly when it starts with '~'; values[0] (values[0..n)
 *     for IN) are the strings' bytes. Buffers hold no terminating NUL
 *     (len = strlen), and data is never NULL, even for an empty value.
 *   - "$in": [] (no values) becomes an OR with no children, which matches
 *     nothing, exactly what "value in the empty set" means. Backends thus
 *     never see an IN leaf without values (SQL has no portable "IN ()").
 *
 * What is refused (ORDO_E_WQL, with a message naming the tag or operator):
 * text that is not JSON (the message gives jansson's line and column),
 * duplicate keys in one object, a query that is not an object, an unknown
 * "$..." key (at query level, where Indy would read it as a tag named
 * "$foo", and inside an operator object), an empty tag name ("" or "~"),
 * an operator object without exactly one key, values that are not strings
 * (Indy tags are strings; 5 and "5" must not silently differ), "$in" that
 * is not an array of strings, $gt/$gte/$lt/$lte/$like on an encrypted tag
 * (ciphertext has no order), nesting deeper than ORDO__WQL_MAX_DEPTH
 * queries, and more than ORDO__WQL_MAX_NODES nodes. The two limits exist so
 * that hostile input cannot exhaust the stack (the parser and every walker
 * recurse once per level) or make a backend build an enormous statement.
 *
 * Threads: every function is reentrant and may run on any thread; the
 * parser keeps no state between calls (the fault-injection hook below
 * aside, which only tests set).
 */
#ifndef ORDO_WQL_H
#define ORDO_WQL_H

#include "ordo.h"
#include "storage/storage.h"

#include <stddef.h>

/* Queries nest at most this deep: the top-level object is level 1, and each
 * "$and"/"$or" element and "$not" operand is one level below its parent. */
#define ORDO__WQL_MAX_DEPTH 64

/* At most this many tree nodes; every value of an "$in" counts as one too,
 * since a backend binds each one as a statement parameter. */
#define ORDO__WQL_MAX_NODES 10000

/*
 * Parse the WQL text json (NUL-terminated; NULL and "" mean "match all")
 * into a fresh tree in *out, which the caller frees with
 * ordo_storage_query_free. Every node, children array, values array and
 * buffer is malloc'd.
 *
 * Returns ORDO_OK; ORDO_E_WQL for a bad query; ORDO_E_NOMEM when an
 * allocation failed (jansson reports a few of its own failed allocations as
 * syntax errors, which then come back as ORDO_E_WQL: it gives no way to tell
 * them apart); ORDO_E_INVAL when out is NULL. On any error *out is
 * NULL, and if errmsg is not NULL *errmsg is a malloc'd message (the
 * caller frees it) naming the problem and where, e.g.
 *   "$gt on tag 'age' needs a plaintext tag (name starting with '~')".
 * *errmsg is NULL only with ORDO_E_NOMEM, when even the message could not
 * be allocated. On success *errmsg is set to NULL.
 */
int ordo__wql_parse(const char *json, ordo_storage_query **out, char **errmsg);

/*
 * Called once per leaf (EQ, NEQ, GT, GTE, LT, LTE, LIKE, IN). The callback
 * may replace the leaf's buffers in place: free leaf->tag_name.data and
 * leaf->values[i].data and store malloc'd buffers (with their len) instead,
 * which is how the wallet swaps plaintext for ciphertext. It may also wipe
 * the old bytes first. It must not change op, plaintext, nvalues, the values
 * array itself, or anything of other nodes. Return 0 to go on, anything
 * else to stop.
 */
typedef int (*ordo__wql_leaf_fn)(ordo_storage_query *leaf, void *ud);

/*
 * Call fn(leaf, ud) on every leaf of q, depth first, children in order (the
 * order the query text gives them). Stops at the first non-zero result and
 * returns it; 0 when every call returned 0. NULL q: no calls, 0; NULL fn:
 * ORDO_E_INVAL. Recurses once per level of the tree: trees from
 * ordo__wql_parse are at most 2 * ORDO__WQL_MAX_DEPTH nodes deep.
 */
int ordo__wql_walk_leaves(ordo_storage_query *q, ordo__wql_leaf_fn fn,
                          void *ud);

/*
 * A one-line rendering of q for tests and debug logs, e.g.
 *   (AND (EQ name "x") (NOT (GT ~age "5")) (IN id "a" "b"))
 * ALL (and a NULL q) render as (ALL). Tag names are bare when they consist
 * only of printable ASCII other than space, '(', ')', '"' and '\'; otherwise
 * they are quoted like values. In quoted text '"' and '\' are escaped with
 * '\', and bytes outside printable ASCII are written \xHH, so ciphertext
 * renders safely. Malloc'd (the caller frees it); NULL if out of memory.
 * Contains plaintext tag values: do not log it where secrets must not go.
 */
char *ordo__wql_to_string(const ordo_storage_query *q);

/*
 * Fault injection, for tests only (SQLite-style): every allocation of this
 * module goes through this pointer, which is malloc by default. A test may
 * point it at a wrapper that fails on chosen calls and otherwise returns
 * malloc's result (the memory must be what free() accepts), and must put it
 * back before anything else runs. Not thread-safe: set it only while no
 * other thread is using this module.
 */
extern void *(*ordo__wql_malloc)(size_t size);

#endif /* ORDO_WQL_H */

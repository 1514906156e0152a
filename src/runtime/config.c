/*
 * config.c — executor sizes from defaults, JSON and the environment.
 *
 * Every entry point works on a copy and writes the caller's struct only when
 * everything parsed and validated, so a failed call leaves cfg unchanged.
 */
#include "runtime/internal.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_THREADS 1024u
#define MAX_QUEUE_LIMIT (1u << 24)

typedef enum { KEY_UINT, KEY_INT, KEY_BOOL } key_type;

/* One row per key: its JSON name, environment variable, type, bounds and
 * place in the struct. Adding a key is adding a row. */
typedef struct {
  const char *json;
  const char *env;
  key_type type;
  long long min, max;
  size_t offset;
} config_key;

static const config_key keys[] = {
    {"cheap_threads", "ORDO_CHEAP_THREADS", KEY_UINT, 1, MAX_THREADS,
     offsetof(ordo_config, cheap_threads)},
    {"heavy_threads", "ORDO_HEAVY_THREADS", KEY_UINT, 1, MAX_THREADS,
     offsetof(ordo_config, heavy_threads)},
    {"heavy_nice", "ORDO_HEAVY_NICE", KEY_INT, 0, 19,
     offsetof(ordo_config, heavy_nice)},
    {"net_threads", "ORDO_NET_THREADS", KEY_UINT, 1, MAX_THREADS,
     offsetof(ordo_config, net_threads)},
    {"queue_limit", "ORDO_QUEUE_LIMIT", KEY_UINT, 1, MAX_QUEUE_LIMIT,
     offsetof(ordo_config, queue_limit)},
    {"single_executor", "ORDO_SINGLE_EXECUTOR", KEY_BOOL, 0, 1,
     offsetof(ordo_config, single_executor)},
};
#define NKEYS (sizeof(keys) / sizeof(keys[0]))

static long long key_get(const ordo_config *cfg, const config_key *k) {
  const char *p = (const char *)cfg + k->offset;
  if (k->type == KEY_UINT) {
    unsigned v = 0;
    memcpy(&v, p, sizeof(v));
    return v;
  }
  int v = 0;
  memcpy(&v, p, sizeof(v));
  return v;
}

static void key_set(ordo_config *cfg, const config_key *k, long long value) {
  char *p = (char *)cfg + k->offset;
  if (k->type == KEY_UINT) {
    unsigned v = (unsigned)value;
    memcpy(p, &v, sizeof(v));
  } else {
    int v = (int)value;
    memcpy(p, &v, sizeof(v));
  }
}

void ordo_config_init(ordo_config *cfg) {
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  if (cores < 1)
    cores = 1;
  if (cores > (long)MAX_THREADS)
    cores = MAX_THREADS;
  memset(cfg, 0, sizeof(*cfg));
  cfg->cheap_threads = (unsigned)cores;
  cfg->heavy_threads = cores / 2 > 1 ? (unsigned)(cores / 2) : 1u;
  cfg->heavy_nice = 10;
  cfg->net_threads = 1;
  cfg->queue_limit = 65536;
  cfg->single_executor = 0;
}

int ordo_config_validate(const ordo_config *cfg) {
  if (cfg == NULL)
    return ordo__set_last_error(ORDO_E_INVAL, "config is NULL");
  for (size_t i = 0; i < NKEYS; i++) {
    long long v = key_get(cfg, &keys[i]);
    if (v < keys[i].min || v > keys[i].max)
      return ordo__set_last_error(ORDO_E_CONFIG,
                                  "config key '%s' is %lld; it must be %lld..%lld",
                                  keys[i].json, v, keys[i].min, keys[i].max);
  }
  return ORDO_OK;
}

static const config_key *key_by_json(const char *name) {
  for (size_t i = 0; i < NKEYS; i++)
    if (strcmp(keys[i].json, name) == 0)
      return &keys[i];
  return NULL;
}

int ordo_config_from_json(ordo_config *cfg, const char *json) {
  if (cfg == NULL || json == NULL)
    return ordo__set_last_error(ORDO_E_INVAL, "config or JSON text is NULL");
  json_error_t jerr;
  json_t *root = json_loads(json, JSON_REJECT_DUPLICATES, &jerr);
  if (root == NULL)
    /* Never jerr.text: jansson quotes the text near the error. */
    return ordo__set_last_error(ORDO_E_JSON, "config JSON: not JSON (line %d, "
                                "column %d)", jerr.line, jerr.column);
  int rc = ORDO_OK;
  ordo_config next = *cfg;
  if (!json_is_object(root)) {
    rc = ordo__set_last_error(ORDO_E_CONFIG, "config JSON must be an object");
    goto done;
  }
  const char *name;
  json_t *value;
  json_object_foreach(root, name, value) {
    const config_key *k = key_by_json(name);
    if (k == NULL) {
      rc = ordo__set_last_error(ORDO_E_CONFIG, "unknown config key '%s'", name);
      goto done;
    }
    long long v = 0;
    if (k->type == KEY_BOOL) {
      if (!json_is_boolean(value)) {
        rc = ordo__set_last_error(ORDO_E_CONFIG,
                                  "config key '%s' must be true or false", name);
        goto done;
      }
      v = json_is_true(value);
    } else {
      if (!json_is_integer(value)) {
        rc = ordo__set_last_error(ORDO_E_CONFIG,
                                  "config key '%s' must be an integer", name);
        goto done;
      }
      v = json_integer_value(value);
    }
    if (v < k->min || v > k->max) {
      rc = ordo__set_last_error(ORDO_E_CONFIG,
                                "config key '%s' is %lld; it must be %lld..%lld",
                                name, v, k->min, k->max);
      goto done;
    }
    key_set(&next, k, v);
  }
  rc = ordo_config_validate(&next);
  if (rc == ORDO_OK)
    *cfg = next;
done:
  json_decref(root);
  return rc;
}

/* Parse an environment value as a whole decimal integer or boolean word. */
static int parse_env_value(const config_key *k, const char *s, long long *out) {
  if (k->type == KEY_BOOL) {
    if (!strcmp(s, "1") || !strcmp(s, "true") || !strcmp(s, "yes") ||
        !strcmp(s, "on")) {
      *out = 1;
      return ORDO_OK;
    }
    if (!strcmp(s, "0") || !strcmp(s, "false") || !strcmp(s, "no") ||
        !strcmp(s, "off")) {
      *out = 0;
      return ORDO_OK;
    }
    return ordo__set_last_error(ORDO_E_CONFIG,
                                "environment variable %s='%s' must be true or false",
                                k->env, s);
  }
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (*s == '\0' || *end != '\0' || errno == ERANGE)
    return ordo__set_last_error(ORDO_E_CONFIG,
                                "environment variable %s='%s' is not an integer",
                                k->env, s);
  if (v < k->min || v > k->max)
    return ordo__set_last_error(ORDO_E_CONFIG,
                                "environment variable %s is %lld; it must be %lld..%lld",
                                k->env, v, k->min, k->max);
  *out = v;
  return ORDO_OK;
}

int ordo_config_from_env(ordo_config *cfg) {
  if (cfg == NULL)
    return ordo__set_last_error(ORDO_E_INVAL, "config is NULL");
  ordo_config next = *cfg;
  for (size_t i = 0; i < NKEYS; i++) {
    const char *s = getenv(keys[i].env);
    if (s == NULL)
      continue;
    long long v = 0;
    int rc = parse_env_value(&keys[i], s, &v);
    if (rc != ORDO_OK)
      return rc;
    key_set(&next, &keys[i], v);
  }
  int rc = ordo_config_validate(&next);
  if (rc == ORDO_OK)
    *cfg = next;
  return rc;
}

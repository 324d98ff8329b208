/* gw_json.h -- a tiny streaming JSON writer into a growable buffer or a FILE*. */
#ifndef GW_JSON_H
#define GW_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Deepest nesting of objects and arrays a writer accepts. */
#define GW_JSON_MAX_DEPTH 32

enum gw_json_flags {
	GW_JSON_COMPACT = 0, /* {"a":1,"b":[true,null]} */
	GW_JSON_PRETTY = 1,  /* two-space indent, one member per line, "key": value */
};

/*
 * Writer state. Calls append one token each and check their place in the document
 * (a key only inside an object, a value after a key or inside an array, matching
 * end calls); the first misuse or I/O error is kept in err and makes every later
 * call a no-op, so callers check once, at gw_json_finish().
 */
struct gw_json {
	FILE *fp;  /* output stream, or NULL when writing to buf */
	char *buf; /* NUL-terminated output when fp is NULL */
	size_t len;
	size_t cap;
	int flags;
	int err;   /* first error (-errno), sticky */
	int depth; /* open containers */
	bool after_key;
	bool done; /* a complete top-level value was written */
	bool in_obj[GW_JSON_MAX_DEPTH];
	bool empty[GW_JSON_MAX_DEPTH];
};

/* Start a writer into a growable memory buffer (release it with gw_json_free). */
void gw_json_init_buf(struct gw_json *j, int flags);
/* Start a writer onto a stream; nothing is allocated. */
void gw_json_init_file(struct gw_json *j, FILE *fp, int flags);
/* Release the memory buffer (no-op for a stream writer). */
void gw_json_free(struct gw_json *j);
/*
 * Check the document is complete (one top-level value, every container closed) and,
 * for a stream, that it was written. Returns 0, -EINVAL on misuse, -ENOMEM, -EIO.
 * Adds no trailing newline.
 */
int gw_json_finish(struct gw_json *j);
/* The text written so far to a buffer writer ("" for a stream writer); *len optional. */
const char *gw_json_text(const struct gw_json *j, size_t *len);

void gw_json_obj_begin(struct gw_json *j);
void gw_json_obj_end(struct gw_json *j);
void gw_json_arr_begin(struct gw_json *j);
void gw_json_arr_end(struct gw_json *j);
/* Member name inside an object; the next call writes its value. */
void gw_json_key(struct gw_json *j, const char *key);

/*
 * A string value. Quote, backslash and control characters are escaped; bytes that are
 * not valid UTF-8 (overlong forms, surrogates, truncated sequences) become U+FFFD,
 * so the output is always valid UTF-8 JSON. NULL writes null.
 */
void gw_json_str(struct gw_json *j, const char *s);
/* Same with an explicit length; embedded NULs are written as \u0000. */
void gw_json_strn(struct gw_json *j, const char *s, size_t n);
void gw_json_int(struct gw_json *j, int64_t v);
void gw_json_uint(struct gw_json *j, uint64_t v);
/* A finite double with at most 3 decimals (NaN/inf: null). */
void gw_json_double(struct gw_json *j, double v);
void gw_json_bool(struct gw_json *j, bool v);
void gw_json_null(struct gw_json *j);

/* Object member shorthands: key then value. */
void gw_json_kv_str(struct gw_json *j, const char *key, const char *s);
void gw_json_kv_int(struct gw_json *j, const char *key, int64_t v);
void gw_json_kv_uint(struct gw_json *j, const char *key, uint64_t v);
void gw_json_kv_bool(struct gw_json *j, const char *key, bool v);
void gw_json_kv_null(struct gw_json *j, const char *key);

#endif

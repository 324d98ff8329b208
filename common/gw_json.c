/* gw_json.c -- streaming JSON writer: structure checks, string escaping, pretty printing. */
#include "gw_json.h"

#include <errno.h>
#include <math.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

void gw_json_init_buf(struct gw_json *j, int flags)
{
	memset(j, 0, sizeof(*j));
	j->flags = flags;
}

void gw_json_init_file(struct gw_json *j, FILE *fp, int flags)
{
	memset(j, 0, sizeof(*j));
	j->fp = fp;
	j->flags = flags;
}

void gw_json_free(struct gw_json *j)
{
	free(j->buf);
	j->buf = NULL;
	j->len = j->cap = 0;
}

const char *gw_json_text(const struct gw_json *j, size_t *len)
{
	if (len)
		*len = j->buf ? j->len : 0;
	return j->buf ? j->buf : "";
}

static void fail(struct gw_json *j, int err)
{
	if (!j->err)
		j->err = err;
}

/* Append raw bytes to the output; every write goes through here. */
static void put(struct gw_json *j, const char *s, size_t n)
{
	if (j->err || n == 0)
		return;
	if (j->fp) {
		if (fwrite(s, 1, n, j->fp) != n)
			fail(j, -EIO);
		return;
	}
	if (j->len + n + 1 > j->cap) {
		size_t cap = j->cap ? j->cap : 256;
		while (cap < j->len + n + 1)
			cap *= 2;
		char *nb = realloc(j->buf, cap);
		if (!nb) {
			fail(j, -ENOMEM);
			return;
		}
		j->buf = nb;
		j->cap = cap;
	}
	memcpy(j->buf + j->len, s, n);
	j->len += n;
	j->buf[j->len] = '\0';
}

static void putc_(struct gw_json *j, char c)
{
	put(j, &c, 1);
}

static void newline_indent(struct gw_json *j, int depth)
{
	static const char spaces[] = "                                ";
	if (!(j->flags & GW_JSON_PRETTY))
		return;
	putc_(j, '\n');
	for (int i = 0; i < depth; i++)
		put(j, spaces, 2);
}

/* Position for a new element of the current array or the top level; 0 when allowed. */
static int begin_element(struct gw_json *j)
{
	if (j->err)
		return j->err;
	if (j->after_key) {
		j->after_key = false;
		return 0;
	}
	if (j->depth == 0) {
		if (j->done) {
			fail(j, -EINVAL); /* a second top-level value */
			return j->err;
		}
		return 0;
	}
	if (j->in_obj[j->depth - 1]) {
		fail(j, -EINVAL); /* object member without a key */
		return j->err;
	}
	if (!j->empty[j->depth - 1])
		putc_(j, ',');
	j->empty[j->depth - 1] = false;
	newline_indent(j, j->depth);
	return 0;
}

static void end_value(struct gw_json *j)
{
	if (j->depth == 0)
		j->done = true;
}

static void container_begin(struct gw_json *j, bool obj)
{
	if (begin_element(j))
		return;
	if (j->depth >= GW_JSON_MAX_DEPTH) {
		fail(j, -EOVERFLOW);
		return;
	}
	putc_(j, obj ? '{' : '[');
	j->in_obj[j->depth] = obj;
	j->empty[j->depth] = true;
	j->depth++;
}

static void container_end(struct gw_json *j, bool obj)
{
	if (j->err)
		return;
	if (j->depth == 0 || j->in_obj[j->depth - 1] != obj || j->after_key) {
		fail(j, -EINVAL);
		return;
	}
	j->depth--;
	if (!j->empty[j->depth])
		newline_indent(j, j->depth);
	putc_(j, obj ? '}' : ']');
	end_value(j);
}

void gw_json_obj_begin(struct gw_json *j)
{
	container_begin(j, true);
}
void gw_json_obj_end(struct gw_json *j)
{
	container_end(j, true);
}
void gw_json_arr_begin(struct gw_json *j)
{
	container_begin(j, false);
}
void gw_json_arr_end(struct gw_json *j)
{
	container_end(j, false);
}

/*
 * Length of the well-formed UTF-8 sequence at s (RFC 3629, table 3-7 of Unicode), or
 * 0 when the bytes there are not one: stray continuation bytes, overlong forms,
 * UTF-16 surrogates, code points above U+10FFFF and truncated sequences.
 */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	size_t len;
	unsigned char lo = 0x80, hi = 0xbf;

	if (c >= 0xc2 && c <= 0xdf)
		len = 2;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4;
	else
		return 0;
	if (n < len)
		return 0;
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return len;
}

/* Write s[0..n) as a quoted JSON string; runs of plain bytes are copied in one put. */
static void put_string(struct gw_json *j, const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t run = 0, i = 0;
	char esc[8];

	putc_(j, '"');
	while (i < n) {
		unsigned char c = s[i];
		size_t ulen;
		const char *rep = NULL;

		if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
			i++;
			continue;
		}
		if (c >= 0x80 && (ulen = utf8_len(s + i, n - i)) > 0) {
			i += ulen;
			continue;
		}
		put(j, str + run, i - run);
		switch (c) {
		case '"':
			rep = "\\\"";
			break;
		case '\\':
			rep = "\\\\";
			break;
		case '\b':
			rep = "\\b";
			break;
		case '\f':
			rep = "\\f";
			break;
		case '\n':
			rep = "\\n";
			break;
		case '\r':
			rep = "\\r";
			break;
		case '\t':
			rep = "\\t";
			break;
		default:
			if (c >= 0x80) {
				rep = "\\ufffd"; /* not UTF-8: replaced, one per bad byte */
			} else {
				snprintf(esc, sizeof(esc), "\\u%04x", c);
				rep = esc;
			}
		}
		put(j, rep, strlen(rep));
		i++;
		run = i;
	}
	put(j, str + run, i - run);
	putc_(j, '"');
}

void gw_json_key(struct gw_json *j, const char *key)
{
	if (j->err)
		return;
	if (!key || j->depth == 0 || !j->in_obj[j->depth - 1] || j->after_key) {
		fail(j, -EINVAL);
		return;
	}
	if (!j->empty[j->depth - 1])
		putc_(j, ',');
	j->empty[j->depth - 1] = false;
	newline_indent(j, j->depth);
	put_string(j, key, strlen(key));
	if (j->flags & GW_JSON_PRETTY)
		put(j, ": ", 2);
	else
		putc_(j, ':');
	j->after_key = true;
}

/* Write one scalar token already formatted as JSON. */
static void scalar(struct gw_json *j, const char *tok, size_t n)
{
	if (begin_element(j))
		return;
	put(j, tok, n);
	end_value(j);
}

void gw_json_strn(struct gw_json *j, const char *s, size_t n)
{
	if (!s) {
		gw_json_null(j);
		return;
	}
	if (begin_element(j))
		return;
	put_string(j, s, n);
	end_value(j);
}

void gw_json_str(struct gw_json *j, const char *s)
{
	gw_json_strn(j, s, s ? strlen(s) : 0);
}

void gw_json_int(struct gw_json *j, int64_t v)
{
	char b[24];
	int n = snprintf(b, sizeof(b), "%" PRId64, v);
	scalar(j, b, (size_t)n);
}

void gw_json_uint(struct gw_json *j, uint64_t v)
{
	char b[24];
	int n = snprintf(b, sizeof(b), "%" PRIu64, v);
	scalar(j, b, (size_t)n);
}

void gw_json_double(struct gw_json *j, double v)
{
	char b[48];
	if (!isfinite(v)) {
		gw_json_null(j);
		return;
	}
	/* at most 3 decimals, trailing zeros dropped: 4.2, 15.09, 3 */
	int n = snprintf(b, sizeof(b), "%.3f", v);
	while (n > 0 && b[n - 1] == '0')
		n--;
	if (n > 0 && b[n - 1] == '.')
		n--;
	scalar(j, b, (size_t)n);
}

void gw_json_bool(struct gw_json *j, bool v)
{
	if (v)
		scalar(j, "true", 4);
	else
		scalar(j, "false", 5);
}

void gw_json_null(struct gw_json *j)
{
	scalar(j, "null", 4);
}

void gw_json_kv_str(struct gw_json *j, const char *key, const char *s)
{
	gw_json_key(j, key);
	gw_json_str(j, s);
}

void gw_json_kv_int(struct gw_json *j, const char *key, int64_t v)
{
	gw_json_key(j, key);
	gw_json_int(j, v);
}

void gw_json_kv_uint(struct gw_json *j, const char *key, uint64_t v)
{
	gw_json_key(j, key);
	gw_json_uint(j, v);
}

void gw_json_kv_bool(struct gw_json *j, const char *key, bool v)
{
	gw_json_key(j, key);
	gw_json_bool(j, v);
}

void gw_json_kv_null(struct gw_json *j, const char *key)
{
	gw_json_key(j, key);
	gw_json_null(j);
}

int gw_json_finish(struct gw_json *j)
{
	if (j->err)
		return j->err;
	if (j->depth != 0 || j->after_key || !j->done)
		return -EINVAL;
	if (j->fp && (fflush(j->fp) != 0 || ferror(j->fp)))
		return -EIO;
	return 0;
}

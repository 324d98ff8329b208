/* gw_domxml.c -- a minimal scanner for libvirt domain XML: the root's <name>, <memory>,
 * <currentMemory> and <vcpu> (godwitctl and the coordinator place libvirt VMs by them). */
#include "gw_domxml.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define MAX_DEPTH 64

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (err && errlen)
		vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

int gw_domxml_scale(uint64_t value, const char *unit, uint64_t *bytes)
{
	uint64_t base, scale = 1;
	int power;
	if (!unit || !*unit)
		unit = "KiB";
	if (!strcasecmp(unit, "b") || !strcasecmp(unit, "byte") || !strcasecmp(unit, "bytes")) {
		*bytes = value;
		return 0;
	}
	if (!unit[1] || !strcasecmp(unit + 1, "iB"))
		base = 1024;
	else if ((unit[1] == 'b' || unit[1] == 'B') && !unit[2])
		base = 1000;
	else
		return -EINVAL;
	const char *p = strchr("kmgtpe", unit[0] | 0x20);
	if (!p)
		return -EINVAL;
	power = (int)(p - "kmgtpe") + 1;
	for (int i = 0; i < power; i++)
		scale *= base;
	if (value > UINT64_MAX / scale)
		return -ERANGE;
	*bytes = value * scale;
	return 0;
}

uint64_t gw_domxml_memory_mib(const struct gw_domxml_info *d)
{
	uint64_t kib = d->memory_kib ? d->memory_kib : d->cur_memory_kib;
	return (kib + 1023) / 1024;
}

/* The scanner: pos in [0, len). */
struct scan {
	const char *s;
	size_t len, pos;
};

/* Skip past the next occurrence of end; false if there is none. */
static bool skip_past(struct scan *sc, const char *end)
{
	size_t n = strlen(end);
	for (; sc->pos + n <= sc->len; sc->pos++)
		if (memcmp(sc->s + sc->pos, end, n) == 0) {
			sc->pos += n;
			return true;
		}
	return false;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static bool name_char(char c)
{
	return !is_space(c) && c != '>' && c != '/' && c != '=' && c != '<' && c != '\'' &&
	       c != '"';
}

/* One element of interest: its text and two attributes it may carry. */
struct elem {
	const char *text;
	size_t text_len;
	char unit[16];
	char current[24];
	bool seen;
};

enum { E_NAME, E_MEMORY, E_CURMEM, E_VCPU, E_COUNT };
static const char *const elem_names[E_COUNT] = {"name", "memory", "currentMemory", "vcpu"};

/* Parse "<tag attr='v' ...>" from sc->pos (just after '<'). */
static int parse_tag(struct scan *sc, const char **name, size_t *name_len, bool *self_close,
		     struct elem *want, char *err, size_t errlen)
{
	*name = sc->s + sc->pos;
	while (sc->pos < sc->len && name_char(sc->s[sc->pos]))
		sc->pos++;
	*name_len = (size_t)(sc->s + sc->pos - *name);
	if (!*name_len)
		return fail(err, errlen, "malformed tag at byte %zu", sc->pos);
	for (;;) {
		while (sc->pos < sc->len && is_space(sc->s[sc->pos]))
			sc->pos++;
		if (sc->pos >= sc->len)
			return fail(err, errlen, "unterminated tag <%.*s>", (int)*name_len, *name);
		char c = sc->s[sc->pos];
		if (c == '>') {
			sc->pos++;
			*self_close = false;
			return 0;
		}
		if (c == '/') {
			if (sc->pos + 1 >= sc->len || sc->s[sc->pos + 1] != '>')
				return fail(err, errlen, "malformed tag <%.*s>", (int)*name_len,
					    *name);
			sc->pos += 2;
			*self_close = true;
			return 0;
		}
		const char *an = sc->s + sc->pos;
		while (sc->pos < sc->len && name_char(sc->s[sc->pos]))
			sc->pos++;
		size_t an_len = (size_t)(sc->s + sc->pos - an);
		while (sc->pos < sc->len && is_space(sc->s[sc->pos]))
			sc->pos++;
		if (!an_len || sc->pos + 1 >= sc->len || sc->s[sc->pos] != '=')
			return fail(err, errlen, "malformed attribute in <%.*s>", (int)*name_len,
				    *name);
		sc->pos++;
		while (sc->pos < sc->len && is_space(sc->s[sc->pos]))
			sc->pos++;
		char q = sc->pos < sc->len ? sc->s[sc->pos] : 0;
		if (q != '\'' && q != '"')
			return fail(err, errlen, "unquoted attribute value in <%.*s>",
				    (int)*name_len, *name);
		const char *v = sc->s + ++sc->pos;
		while (sc->pos < sc->len && sc->s[sc->pos] != q)
			sc->pos++;
		if (sc->pos >= sc->len)
			return fail(err, errlen, "unterminated attribute value in <%.*s>",
				    (int)*name_len, *name);
		size_t v_len = (size_t)(sc->s + sc->pos - v);
		sc->pos++;
		if (!want)
			continue;
		char *dst = NULL;
		size_t cap = 0;
		if (an_len == 4 && !memcmp(an, "unit", 4)) {
			dst = want->unit;
			cap = sizeof(want->unit);
		} else if (an_len == 7 && !memcmp(an, "current", 7)) {
			dst = want->current;
			cap = sizeof(want->current);
		}
		if (dst) {
			if (v_len >= cap)
				return fail(err, errlen, "attribute %.*s of <%.*s> too long",
					    (int)an_len, an, (int)*name_len, *name);
			memcpy(dst, v, v_len);
			dst[v_len] = 0;
		}
	}
}

/* Strict decimal, surrounding white space allowed. */
static int parse_num(const char *s, size_t n, uint64_t *out)
{
	uint64_t v = 0;
	size_t i = 0, digits = 0;
	while (i < n && is_space(s[i]))
		i++;
	for (; i < n && s[i] >= '0' && s[i] <= '9'; i++, digits++) {
		unsigned d = (unsigned)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	while (i < n && is_space(s[i]))
		i++;
	if (!digits || i != n)
		return -EINVAL;
	*out = v;
	return 0;
}

static int mem_kib(const struct elem *e, uint64_t *kib, char *err, size_t errlen)
{
	uint64_t v, bytes;
	if (parse_num(e->text, e->text_len, &v))
		return fail(err, errlen, "memory: '%.*s' is not a whole number",
			    (int)(e->text_len > 40 ? 40 : e->text_len), e->text);
	int r = gw_domxml_scale(v, e->unit, &bytes);
	if (r == -ERANGE)
		return fail(err, errlen, "memory: %llu %s is too large", (unsigned long long)v,
			    e->unit);
	if (r)
		return fail(err, errlen, "memory: unknown unit '%s'", e->unit);
	*kib = (bytes + 1023) / 1024;
	return 0;
}

/* Fill out from the captured elements. */
static int finish(struct elem *el, struct gw_domxml_info *out, char *err, size_t errlen)
{
	uint64_t v;
	if (el[E_NAME].seen) {
		const char *t = el[E_NAME].text;
		size_t n = el[E_NAME].text_len;
		while (n && is_space(*t))
			t++, n--;
		while (n && is_space(t[n - 1]))
			n--;
		if (n >= sizeof(out->name) || memchr(t, '&', n))
			return fail(err, errlen, "domain name '%.*s' too long or with entities",
				    (int)(n > 64 ? 64 : n), t);
		memcpy(out->name, t, n);
		out->name[n] = 0;
	}
	if (el[E_MEMORY].seen && mem_kib(&el[E_MEMORY], &out->memory_kib, err, errlen))
		return -EINVAL;
	if (el[E_CURMEM].seen && mem_kib(&el[E_CURMEM], &out->cur_memory_kib, err, errlen))
		return -EINVAL;
	if (el[E_VCPU].seen) {
		if (parse_num(el[E_VCPU].text, el[E_VCPU].text_len, &v) || v == 0 || v > 65536)
			return fail(err, errlen, "vcpu: '%.*s' is not a vCPU count",
				    (int)(el[E_VCPU].text_len > 40 ? 40 : el[E_VCPU].text_len),
				    el[E_VCPU].text);
		out->vcpus = (unsigned)v;
		if (el[E_VCPU].current[0]) {
			if (parse_num(el[E_VCPU].current, strlen(el[E_VCPU].current), &v) ||
			    v == 0 || v > out->vcpus)
				return fail(err, errlen, "vcpu: bad current='%s'",
					    el[E_VCPU].current);
			out->vcpus = (unsigned)v;
		}
	}
	return 0;
}

int gw_domxml_parse(const char *xml, size_t len, struct gw_domxml_info *out, char *err,
		    size_t errlen)
{
	struct scan sc = {xml, len, 0};
	struct elem el[E_COUNT];
	int depth = 0, capture = -1;
	bool root_done = false, root_seen = false;
	memset(out, 0, sizeof(*out));
	memset(el, 0, sizeof(el));
	while (sc.pos < sc.len) {
		const char *lt = memchr(sc.s + sc.pos, '<', sc.len - sc.pos);
		if (!lt)
			break;
		sc.pos = (size_t)(lt - sc.s);
		const char *p = sc.s + sc.pos;
		size_t left = sc.len - sc.pos;
		if (left >= 2 && p[1] == '?') {
			if (!skip_past(&sc, "?>"))
				return fail(err, errlen, "unterminated processing instruction");
			continue;
		}
		if (left >= 4 && !memcmp(p, "<!--", 4)) {
			if (!skip_past(&sc, "-->"))
				return fail(err, errlen, "unterminated comment");
			continue;
		}
		if (left >= 9 && !memcmp(p, "<![CDATA[", 9)) {
			if (capture >= 0)
				return fail(err, errlen, "CDATA in <%s> is not supported",
					    elem_names[capture]);
			if (!skip_past(&sc, "]]>"))
				return fail(err, errlen, "unterminated CDATA section");
			continue;
		}
		if (left >= 2 && p[1] == '!') { /* DOCTYPE, possibly with an internal subset */
			const char *gt = memchr(p, '>', left), *br = memchr(p, '[', left);
			if (!skip_past(&sc, br && (!gt || br < gt) ? "]>" : ">"))
				return fail(err, errlen, "unterminated declaration");
			continue;
		}
		if (left >= 2 && p[1] == '/') { /* a closing tag */
			sc.pos += 2;
			const char *n = sc.s + sc.pos;
			while (sc.pos < sc.len && name_char(sc.s[sc.pos]))
				sc.pos++;
			size_t nl = (size_t)(sc.s + sc.pos - n);
			if (!skip_past(&sc, ">"))
				return fail(err, errlen, "unterminated closing tag");
			if (depth == 0)
				return fail(err, errlen,
					    "closing tag </%.*s> without an opening one", (int)nl,
					    n);
			if (capture >= 0 && depth == 2) {
				el[capture].text_len = (size_t)(p - el[capture].text);
				capture = -1;
			}
			if (--depth == 0)
				root_done = true;
			continue;
		}
		if (root_done)
			return fail(err, errlen, "content after the root element");
		if (capture >= 0)
			return fail(err, errlen, "<%s> holds an element", elem_names[capture]);
		sc.pos++;
		const char *name;
		size_t nl;
		bool self_close = false;
		int which = -1;
		if (depth == 1) {
			const char *q = sc.s + sc.pos;
			for (int i = 0; i < E_COUNT; i++) {
				size_t l = strlen(elem_names[i]);
				if (sc.len - sc.pos > l && !memcmp(q, elem_names[i], l) &&
				    !name_char(q[l]))
					which = i;
			}
		}
		if (which >= 0 && el[which].seen)
			return fail(err, errlen, "<%s> given twice", elem_names[which]);
		int r = parse_tag(&sc, &name, &nl, &self_close, which >= 0 ? &el[which] : NULL, err,
				  errlen);
		if (r)
			return r;
		if (depth == 0) {
			if (nl != 6 || memcmp(name, "domain", 6))
				return fail(err, errlen, "the root element is <%.*s>, not <domain>",
					    (int)(nl > 40 ? 40 : nl), name);
			root_seen = true;
		}
		if (which >= 0) {
			el[which].seen = true;
			el[which].text = sc.s + sc.pos;
			el[which].text_len = 0;
		}
		if (self_close) {
			if (depth == 0)
				root_done = true;
			continue;
		}
		if (++depth > MAX_DEPTH)
			return fail(err, errlen, "elements nested deeper than %d", MAX_DEPTH);
		if (which >= 0)
			capture = which;
	}
	if (!root_seen)
		return fail(err, errlen, "no <domain> element");
	if (depth != 0)
		return fail(err, errlen, "unterminated element (XML truncated?)");
	return finish(el, out, err, errlen);
}

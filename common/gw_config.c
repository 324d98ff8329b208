/* gw_config.c -- a small strict INI parser shared by agent and coordinator. */
#include "gw_config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw_fsutil.h"

static char *trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	char *e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = 0;
	return s;
}

static int valid_name(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-' && *s != '.')
			return 0;
	return 1;
}

int gw_config_parse(const char *text, const char *fname, gw_config_cb cb, void *ctx, char *err,
		    size_t errlen)
{
	char section[128] = "";
	char *copy = strdup(text);
	int lineno = 0, r = 0;
	if (!copy)
		return -ENOMEM;
	/* strtok_r would skip empty lines and so miscount: split by hand */
	char *p = copy;
	while (p) {
		char *nl = strchr(p, '\n');
		if (nl)
			*nl = 0;
		lineno++;
		char *line = trim(p);
		p = nl ? nl + 1 : NULL;
		if (!*line || *line == '#' || *line == ';')
			continue;
		if (*line == '[') {
			char *end = strchr(line, ']');
			if (!end || end[1] != 0) {
				snprintf(err, errlen, "%s:%d: malformed section header", fname, lineno);
				r = -EINVAL;
				break;
			}
			*end = 0;
			char *name = trim(line + 1);
			if (!valid_name(name) || strlen(name) >= sizeof(section)) {
				snprintf(err, errlen, "%s:%d: bad section name '%s'", fname, lineno, name);
				r = -EINVAL;
				break;
			}
			snprintf(section, sizeof(section), "%s", name);
			continue;
		}
		char *eq = strchr(line, '=');
		if (!eq) {
			snprintf(err, errlen, "%s:%d: expected 'key = value'", fname, lineno);
			r = -EINVAL;
			break;
		}
		*eq = 0;
		char *key = trim(line), *val = trim(eq + 1);
		if (!valid_name(key)) {
			snprintf(err, errlen, "%s:%d: bad key '%s'", fname, lineno, key);
			r = -EINVAL;
			break;
		}
		size_t vl = strlen(val);
		if (vl >= 2 && val[0] == '"' && val[vl - 1] == '"') {
			val[vl - 1] = 0;
			val++;
		}
		r = cb(ctx, section, key, val, lineno);
		if (r == -ENOENT) {
			snprintf(err, errlen, "%s:%d: unknown key '%s' in section [%s]", fname,
				 lineno, key, section);
			break;
		}
		if (r) {
			snprintf(err, errlen, "%s:%d: bad value for '%s': '%s'", fname, lineno,
				 key, val);
			break;
		}
	}
	free(copy);
	return r;
}

int gw_config_load(const char *path, gw_config_cb cb, void *ctx, char *err, size_t errlen)
{
	char *text;
	size_t len;
	if (errlen)
		err[0] = 0;
	int r = gw_file_read(path, 1 << 20, &text, &len);
	if (r) {
		snprintf(err, errlen, "%s: cannot read config: %s", path, strerror(-r));
		return r;
	}
	if (memchr(text, 0, len)) {
		snprintf(err, errlen, "%s: config contains a NUL byte", path);
		free(text);
		return -EINVAL;
	}
	r = gw_config_parse(text, path, cb, ctx, err, errlen);
	free(text);
	return r;
}

int gw_parse_u64(const char *s, unsigned long long min, unsigned long long max,
		 unsigned long long *out)
{
	char *end;
	if (!s || !*s || *s == '-' || isspace((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 0);
	if (errno == ERANGE)
		return -ERANGE;
	if (*end)
		return -EINVAL;
	if (v < min || v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

int gw_parse_bool(const char *s, int *out)
{
	if (!strcmp(s, "1") || !strcmp(s, "yes") || !strcmp(s, "true") || !strcmp(s, "on"))
		*out = 1;
	else if (!strcmp(s, "0") || !strcmp(s, "no") || !strcmp(s, "false") || !strcmp(s, "off"))
		*out = 0;
	else
		return -EINVAL;
	return 0;
}

/* gw_config.h -- INI-style config files: [section] and key = value lines, # comments. */
#ifndef GW_CONFIG_H
#define GW_CONFIG_H

#include <stddef.h>

/*
 * Called for every key = value line. section is "" before the first [section].
 * Return 0 to go on, or -errno to stop parsing (the error is reported with the line).
 */
typedef int (*gw_config_cb)(void *ctx, const char *section, const char *key, const char *value,
			    int line);

/*
 * Parse text (NUL-terminated). On error returns -EINVAL (syntax) or the callback's
 * error, and writes "FILE:LINE: what" into err (errlen bytes).
 */
int gw_config_parse(const char *text, const char *fname, gw_config_cb cb, void *ctx, char *err,
		    size_t errlen);
/* Read and parse a file; -errno (with text in err) if it cannot be read. */
int gw_config_load(const char *path, gw_config_cb cb, void *ctx, char *err, size_t errlen);

/* Strict number parsers: whole string, range checked. 0 or -EINVAL / -ERANGE. */
int gw_parse_u64(const char *s, unsigned long long min, unsigned long long max,
		 unsigned long long *out);
int gw_parse_bool(const char *s, int *out);

#endif

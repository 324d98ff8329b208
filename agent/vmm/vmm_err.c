/* vmm_err.c -- gw_vmm_set_err: the one way VMM code (core and backends) fills an error
 * message for its caller. A leaf, so that backends need not call back into the core. */
#include "vmm_internal.h"

#include <stdarg.h>
#include <stdio.h>

void gw_vmm_set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* gw_domxml.h -- the few facts of a libvirt domain XML that placement needs (name, memory,
 * vCPUs), read by a minimal XML scanner: no libxml2, no validation beyond what it reads. */
#ifndef GW_DOMXML_H
#define GW_DOMXML_H

#include <stddef.h>
#include <stdint.h>

struct gw_domxml_info {
	char name[64];		 /* <domain><name>, "" if absent */
	uint64_t memory_kib;	 /* <memory> (the boot maximum), 0 if absent */
	uint64_t cur_memory_kib; /* <currentMemory>, 0 if absent */
	unsigned vcpus;		 /* <vcpu current='N'> if given, else <vcpu>N</vcpu>; 0 if absent */
};

/*
 * Read the direct children <name>, <memory unit=U>, <currentMemory unit=U> and <vcpu> of
 * the root <domain> element of xml (len bytes). Units as libvirt takes them, case
 * insensitive: b, bytes; KB, MB, GB, TB, PB, EB (powers of 1000); k, KiB, M, MiB, G, GiB,
 * T, TiB, P, PiB, E, EiB (powers of 1024); none = KiB. Comments, processing instructions,
 * CDATA and a DOCTYPE are skipped. 0, or -EINVAL with the reason in err.
 */
int gw_domxml_parse(const char *xml, size_t len, struct gw_domxml_info *out, char *err,
		    size_t errlen);

/* Scale value by a libvirt unit (NULL or "" = KiB) into bytes. 0 or -EINVAL / -ERANGE. */
int gw_domxml_scale(uint64_t value, const char *unit, uint64_t *bytes);

/* The memory placement counts, in MiB rounded up: <memory>, else <currentMemory>; 0 = none. */
uint64_t gw_domxml_memory_mib(const struct gw_domxml_info *d);

#endif

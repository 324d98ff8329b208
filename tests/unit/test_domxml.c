/* test_domxml.c -- reading name, memory and vCPUs out of libvirt domain XML (common/gw_domxml.c):
 * units, the root's direct children only, comments and friends skipped, bad input refused. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "gw_domxml.h"

static int parse(const char *xml, struct gw_domxml_info *d, char *err)
{
	return gw_domxml_parse(xml, strlen(xml), d, err, 200);
}

static void test_typical(void **state)
{
	struct gw_domxml_info d;
	char err[200];
	const char *xml =
	    "<?xml version='1.0'?>\n<!-- made by virt-install -->\n"
	    "<domain type=\"kvm\" xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>\n"
	    "  <name> web1 </name>\n  <uuid>0e2b6c7f-1111-2222-3333-444455556666</uuid>\n"
	    "  <memory unit='KiB'>2097152</memory>\n"
	    "  <currentMemory unit='KiB'>1048576</currentMemory>\n"
	    "  <vcpu placement='static' current='2'>4</vcpu>\n"
	    "  <vcpus><vcpu id='0' enabled='yes'/><vcpu id='1' enabled='no'/></vcpus>\n"
	    "  <cpu><numa><cell id='0' cpus='0-3' memory='2' unit='GiB'/></numa></cpu>\n"
	    "  <devices><disk type='file'><source file='/shared/web1.qcow2'/></disk>"
	    "<memory model='dimm'><target><size unit='GiB'>1</size></target></memory>"
	    "</devices>\n</domain>\n";
	assert_int_equal(parse(xml, &d, err), 0);
	assert_string_equal(d.name, "web1");
	assert_int_equal(d.memory_kib, 2097152);
	assert_int_equal(d.cur_memory_kib, 1048576);
	assert_int_equal(d.vcpus, 2);
	assert_int_equal(gw_domxml_memory_mib(&d), 2048);
}

static void test_units(void **state)
{
	uint64_t b;
	assert_int_equal(gw_domxml_scale(3, NULL, &b), 0);
	assert_int_equal(b, 3072);
	assert_int_equal(gw_domxml_scale(3, "b", &b), 0);
	assert_int_equal(b, 3);
	assert_int_equal(gw_domxml_scale(3, "bytes", &b), 0);
	assert_int_equal(b, 3);
	assert_int_equal(gw_domxml_scale(1, "KB", &b), 0);
	assert_int_equal(b, 1000);
	assert_int_equal(gw_domxml_scale(1, "k", &b), 0);
	assert_int_equal(b, 1024);
	assert_int_equal(gw_domxml_scale(2, "MiB", &b), 0);
	assert_int_equal(b, 2u << 20);
	assert_int_equal(gw_domxml_scale(2, "M", &b), 0);
	assert_int_equal(b, 2u << 20);
	assert_int_equal(gw_domxml_scale(1, "MB", &b), 0);
	assert_int_equal(b, 1000000);
	assert_int_equal(gw_domxml_scale(1, "GiB", &b), 0);
	assert_int_equal(b, 1ull << 30);
	assert_int_equal(gw_domxml_scale(1, "gib", &b), 0);
	assert_int_equal(b, 1ull << 30);
	assert_int_equal(gw_domxml_scale(1, "TB", &b), 0);
	assert_int_equal(b, 1000000000000ull);
	assert_int_equal(gw_domxml_scale(1, "EiB", &b), 0);
	assert_int_equal(b, 1ull << 60);
	assert_int_equal(gw_domxml_scale(16, "EiB", &b), -ERANGE);
	assert_int_equal(gw_domxml_scale(1, "MiBs", &b), -EINVAL);
	assert_int_equal(gw_domxml_scale(1, "X", &b), -EINVAL);
	assert_int_equal(gw_domxml_scale(1, "iB", &b), -EINVAL);

	struct gw_domxml_info d;
	char err[200];
	assert_int_equal(
	    parse("<domain><name>a</name><memory unit=\"GiB\">4</memory></domain>", &d, err), 0);
	assert_int_equal(gw_domxml_memory_mib(&d), 4096);
	assert_int_equal(parse("<domain><name>a</name><memory>1000</memory></domain>", &d, err), 0);
	assert_int_equal(gw_domxml_memory_mib(&d), 1); /* 1000 KiB, rounded up */
	assert_int_equal(d.vcpus, 0);		       /* none given: the caller says 1 */
	assert_int_equal(
	    parse("<domain><name>a</name><memory unit='MB'>1000</memory></domain>", &d, err), 0);
	assert_int_equal(gw_domxml_memory_mib(&d), 954); /* 10^9 bytes */
	assert_int_equal(
	    parse("<domain><currentMemory unit='MiB'>64</currentMemory><name>a</name></domain>", &d,
		  err),
	    0);
	assert_int_equal(gw_domxml_memory_mib(&d), 64);
	assert_int_equal(
	    parse("<domain><name>a</name><memory unit='parsec'>1</memory></domain>", &d, err),
	    -EINVAL);
	assert_non_null(strstr(err, "unknown unit"));
}

static void test_skips(void **state)
{
	struct gw_domxml_info d;
	char err[200];
	const char *xml =
	    "<!DOCTYPE domain [<!ENTITY x 'y'>]><domain><!-- <name>wrong</name> -->"
	    "<description><![CDATA[<memory>9</memory>]]></description>"
	    "<metadata><app:x xmlns:app='u'><name>deep</name><vcpu>99</vcpu></app:x></metadata>"
	    "<name>right</name><memory>2048</memory><vcpu>3</vcpu><vcpu_other/></domain>";
	assert_int_equal(parse(xml, &d, err), 0);
	assert_string_equal(d.name, "right");
	assert_int_equal(d.memory_kib, 2048);
	assert_int_equal(d.vcpus, 3);
	assert_int_equal(parse("<domain/>", &d, err), 0);
	assert_string_equal(d.name, "");
	assert_int_equal(gw_domxml_memory_mib(&d), 0);
}

static void test_bad(void **state)
{
	struct gw_domxml_info d;
	char err[200];
	const char *bad[] = {
	    "",
	    "not xml",
	    "<vm><name>a</name></vm>",
	    "<domain><name>a</name>",
	    "<domain><name>a</name><memory>12x</memory></domain>",
	    "<domain><memory>-1</memory></domain>",
	    "<domain><memory>1</memory><memory>2</memory></domain>",
	    "<domain><vcpu>0</vcpu></domain>",
	    "<domain><vcpu current='5'>4</vcpu></domain>",
	    "<domain><name>a&amp;b</name></domain>",
	    "<domain><name><b>x</b></name></domain>",
	    "<domain type=kvm></domain>",
	    "<domain type='kvm></domain>",
	    "<domain></domain><domain></domain>",
	    "<domain><!-- open </domain>",
	    "<domain><memory>99999999999999999999999</memory></domain>",
	    "<domain><memory unit='EiB'>100</memory></domain>",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = 0;
		if (parse(bad[i], &d, err) != -EINVAL)
			fail_msg("accepted: %s", bad[i]);
		assert_true(err[0] != 0);
	}
	/* a truncated buffer (no NUL inside len) is read only up to len */
	const char *xml = "<domain><name>a</name></domain>";
	assert_int_equal(gw_domxml_parse(xml, strlen(xml) - 3, &d, err, sizeof(err)), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_typical),
	    cmocka_unit_test(test_units),
	    cmocka_unit_test(test_skips),
	    cmocka_unit_test(test_bad),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_ctl_args.c -- cmocka tests of godwitctl argument parsing (ctl_args.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "cluster.pb-c.h"
#include "control.pb-c.h"
#include "ctl_args.h"
#include "migration.pb-c.h"

#define ARGV(...) ((char *[]){"godwitctl", __VA_ARGS__, NULL})
#define ARGC(...) ((int)(sizeof((char *[]){"godwitctl", __VA_ARGS__}) / sizeof(char *)))
/* Parse a literal argument list with no $GODWIT_AGENT_SOCKET. */
#define PARSE(a, ...) gw_ctl_args_parse(ARGC(__VA_ARGS__), ARGV(__VA_ARGS__), NULL, (a))

/* Expect the argument list to be refused with an error text containing what. */
#define EXPECT_BAD(what, ...)                                                                      \
	do {                                                                                       \
		struct gw_ctl_args a_;                                                             \
		assert_int_equal(PARSE(&a_, __VA_ARGS__), -EINVAL);                                \
		if (!strstr(a_.err, (what)))                                                       \
			fail_msg("error '%s' does not mention '%s'", a_.err, (what));              \
	} while (0)

/* ---- invalid arguments first ---- */

/* No command at all, or only global options. */
static void test_missing_command(void **state)
{
	struct gw_ctl_args a;
	assert_int_equal(gw_ctl_args_parse(1, ARGV(NULL), NULL, &a), -EINVAL);
	assert_string_equal(a.err, "missing command");
	EXPECT_BAD("missing command", "--json");
	EXPECT_BAD("missing command after 'vm'", "vm");
}

/* Unknown commands, in a known group and outside any. */
static void test_unknown_command(void **state)
{
	EXPECT_BAD("unknown command 'frob'", "frob");
	EXPECT_BAD("unknown command 'vm frob'", "vm", "frob", "x");
	EXPECT_BAD("unknown command 'agent list' (expected one of: info)", "agent", "list");
	EXPECT_BAD("unknown command 'VM'", "VM", "list");
}

/* Missing NAME for every command that takes one. */
static void test_missing_name(void **state)
{
	static const char *verbs[] = {"start",	 "stop",	   "pause",
				      "resume",	 "delete",	   "show",
				      "console", "migrate-cancel", "migrate-status"};
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
		struct gw_ctl_args a;
		char *argv[] = {"godwitctl", "vm", (char *)verbs[i], NULL};
		assert_int_equal(gw_ctl_args_parse(3, argv, NULL, &a), -EINVAL);
		assert_non_null(strstr(a.err, "missing NAME"));
		assert_non_null(a.def); /* known command: main prints its usage line */
	}
	EXPECT_BAD("missing NAME", "vm", "create", "--image", "f", "--memory", "1");
	EXPECT_BAD("missing NAME", "vm", "migrate", "--to", "1.2.3.4:7000");
}

/* vm migrate: --to missing or not IPV4:PORT / [IPV6]:PORT with a port in 1..65535. */
static void test_migrate_bad_to(void **state)
{
	static const char *bad[] = {
	    "host:1",	      "1.2.3.4",	"1.2.3.4:0",	  "1.2.3.4:70000",
	    "[::1]:",	      "[::1]",		"::1:7000",	  "[::1]7000",
	    "[::1:7000",      "1.2.3:7000",	"1.2.3.4.5:7000", "256.1.1.1:7000",
	    "1.2.3.4:-1",     "1.2.3.4:+80",	"1.2.3.4:0x50",	  "1.2.3.4: 80",
	    ":7000",	      "[]:7000",	"[1.2.3.4]:7000", "[fe80::1%eth0]:7000",
	    "1.2.3.4:7000:1", "localhost:7000", "01.2.3.4:7000",  "1.2.3.4:65536",
	    "[::1]:7000x",    "[:::]:1",
	};
	EXPECT_BAD("'vm migrate': missing --to ADDR:PORT", "vm", "migrate", "a");
	EXPECT_BAD("'vm migrate': missing --to ADDR:PORT", "vm", "migrate", "a", "--streams", "4");
	EXPECT_BAD("--to needs a value", "vm", "migrate", "a", "--to");
	EXPECT_BAD("invalid value for --to: ''", "vm", "migrate", "a", "--to=");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct gw_ctl_args a;
		char *argv[] = {"godwitctl", "vm", "migrate", "a", "--to", (char *)bad[i], NULL};
		if (gw_ctl_args_parse(6, argv, NULL, &a) != -EINVAL)
			fail_msg("--to '%s' was accepted", bad[i]);
		if (!strstr(a.err, "invalid value for --to"))
			fail_msg("--to '%s': error '%s'", bad[i], a.err);
		assert_int_equal(gw_ctl_addr_check(bad[i]), -EINVAL);
	}
	assert_int_equal(gw_ctl_addr_check(NULL), -EINVAL);
	assert_int_equal(gw_ctl_addr_check(""), -EINVAL);
}

/* vm migrate: numbers out of range or not decimal, options of other commands. */
static void test_migrate_bad_numbers(void **state)
{
#define MIG(...) "vm", "migrate", "a", "--to", "10.0.0.2:7000", __VA_ARGS__
	EXPECT_BAD("invalid value for --streams: '0' (expected an integer in 1..16)",
		   MIG("--streams", "0"));
	EXPECT_BAD("invalid value for --streams: '17'", MIG("--streams", "17"));
	EXPECT_BAD("invalid value for --streams: 'two'", MIG("--streams", "two"));
	EXPECT_BAD("invalid value for --streams: '-1'", MIG("--streams=-1"));
	EXPECT_BAD("invalid value for --downtime-ms: '0'", MIG("--downtime-ms", "0"));
	EXPECT_BAD("invalid value for --downtime-ms: '60001'", MIG("--downtime-ms", "60001"));
	EXPECT_BAD("invalid value for --downtime-ms: '5ms'", MIG("--downtime-ms", "5ms"));
	EXPECT_BAD("invalid value for --bandwidth: '1000001'", MIG("--bandwidth", "1000001"));
	EXPECT_BAD("invalid value for --bandwidth: '1.5'", MIG("--bandwidth", "1.5"));
	EXPECT_BAD("invalid value for --timeout: '0' (expected an integer in 1..86400)",
		   MIG("--timeout", "0"));
	EXPECT_BAD("invalid value for --timeout: '86401'", MIG("--timeout", "86401"));
	EXPECT_BAD("invalid value for --timeout: '5s'", MIG("--timeout=5s"));
	EXPECT_BAD("--streams needs a value", MIG("--streams"));
	EXPECT_BAD("invalid value for --transport: 'udp' (expected tcp|rdma)",
		   MIG("--transport", "udp"));
	EXPECT_BAD("invalid value for --transport: 'RDMA'", MIG("--transport=RDMA"));
	EXPECT_BAD("invalid value for --transport: 'rdm'", MIG("--transport", "rdm"));
	EXPECT_BAD("invalid value for --transport: 'tcpx'", MIG("--transport", "tcpx"));
	EXPECT_BAD("invalid value for --transport: ''", MIG("--transport="));
	EXPECT_BAD("--transport needs a value", MIG("--transport"));
	EXPECT_BAD("--image is not valid for 'vm migrate'", MIG("--image", "f"));
	EXPECT_BAD("--follow is not valid for 'vm migrate'", MIG("--follow"));
	EXPECT_BAD("unexpected argument 'b'", MIG("b"));
#undef MIG
	EXPECT_BAD("--to is not valid for 'vm start'", "vm", "start", "a", "--to", "1.2.3.4:1");
	EXPECT_BAD("--streams is not valid for 'vm migrate-cancel'", "vm", "migrate-cancel", "a",
		   "--streams", "2");
	EXPECT_BAD("--to is not valid for 'vm migrate-status'", "vm", "migrate-status", "a", "--to",
		   "1.2.3.4:1");
	EXPECT_BAD("--transport is not valid for 'vm start'", "vm", "start", "a", "--transport",
		   "tcp");
	/* outside vm migrate, --timeout is still the reply timeout (0 allowed, 86400 max) */
	EXPECT_BAD("invalid value for --timeout: '86401' (expected an integer in 0..86400)", "vm",
		   "migrate-status", "a", "--timeout", "86401");
}

/* Too many positionals. */
static void test_extra_argument(void **state)
{
	EXPECT_BAD("unexpected argument 'b'", "vm", "start", "a", "b");
	EXPECT_BAD("unexpected argument 'x'", "vm", "list", "x");
	EXPECT_BAD("unexpected argument 'x'", "agent", "info", "x");
}

/* Unknown options, single-dash options, options not valid for the command. */
static void test_unknown_option(void **state)
{
	struct gw_ctl_args a;
	EXPECT_BAD("unknown option '--bogus'", "--bogus", "vm", "list");
	EXPECT_BAD("unknown option '--bogus'", "vm", "list", "--bogus=1");
	EXPECT_BAD("unknown option '-x'", "vm", "list", "-x");
	EXPECT_BAD("unknown option '-json'", "-json", "vm", "list");
	EXPECT_BAD("--follow is not valid for 'vm list'", "vm", "list", "--follow");
	EXPECT_BAD("--image is not valid for 'vm start'", "vm", "start", "a", "--image", "f");
	/* --json is known even when a later argument is bad, for JSON error output */
	assert_int_equal(PARSE(&a, "--json", "vm", "list", "--bogus"), -EINVAL);
	assert_true(a.json);
}

/* Options that need a value and have none; flags given a value. */
static void test_option_value(void **state)
{
	EXPECT_BAD("--socket needs a value", "vm", "list", "--socket");
	EXPECT_BAD("--memory needs a value", "vm", "create", "a", "--image", "f", "--memory");
	EXPECT_BAD("--json takes no value", "--json=1", "vm", "list");
	EXPECT_BAD("empty value for --image", "vm", "create", "a", "--image=", "--memory", "1");
}

/* Numbers: not decimal, signed, out of range, overflowing. */
static void test_bad_number(void **state)
{
	static const char *bad_mem[] = {"abc",
					"",
					"-1",
					"+5",
					"0",
					"1048577",
					"0x10",
					"1e3",
					" 5",
					"5 ",
					"18446744073709551616",
					"12MiB"};
	for (size_t i = 0; i < sizeof(bad_mem) / sizeof(bad_mem[0]); i++) {
		struct gw_ctl_args a;
		char *argv[] = {"godwitctl", "vm",	 "create",	     "a", "--image",
				"f",	     "--memory", (char *)bad_mem[i], NULL};
		assert_int_equal(gw_ctl_args_parse(8, argv, NULL, &a), -EINVAL);
		assert_non_null(strstr(a.err, "invalid value for --memory"));
	}
	EXPECT_BAD("invalid value for --vcpus", "vm", "create", "a", "--image", "f", "--memory",
		   "1", "--vcpus", "65");
	EXPECT_BAD("invalid value for --vcpus", "vm", "create", "a", "--image", "f", "--memory",
		   "1", "--vcpus", "0");
	EXPECT_BAD("invalid value for --timeout", "--timeout", "x", "vm", "list");
	EXPECT_BAD("invalid value for --timeout", "--timeout", "86401", "vm", "list");
}

/* Missing required options of vm create. */
static void test_missing_required(void **state)
{
	EXPECT_BAD("missing --image FILE", "vm", "create", "a", "--memory", "1");
	EXPECT_BAD("missing --memory MIB", "vm", "create", "a", "--image", "f");
	/* a libvirt domain comes from its XML, and only from it */
	EXPECT_BAD("missing --xml FILE", "vm", "create", "a", "--driver", "libvirt");
	EXPECT_BAD("no --image, --memory or --cmdline", "vm", "create", "a", "--driver", "libvirt",
		   "--xml", "d.xml", "--memory", "64");
	EXPECT_BAD("--xml goes with --driver libvirt", "vm", "create", "a", "--image", "f",
		   "--memory", "64", "--xml", "d.xml");
	EXPECT_BAD("invalid value for --driver", "vm", "create", "a", "--driver", "xen", "--xml",
		   "d.xml");
}

/* Bad VM name characters and starts. */
static void test_bad_name_chars(void **state)
{
	static const char *bad[] = {"a b", "a/b", "a:b", "é", ".a", "a\n", "a$", "a*"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct gw_ctl_args a;
		char *argv[] = {"godwitctl", "vm", "show", (char *)bad[i], NULL};
		assert_int_equal(gw_ctl_args_parse(4, argv, NULL, &a), -EINVAL);
		assert_non_null(strstr(a.err, "invalid VM name"));
		assert_int_equal(gw_ctl_name_check(bad[i]), -EINVAL);
	}
	/* "-a" is an option, and after "--" it is a name starting with '-' */
	EXPECT_BAD("unknown option '-a'", "vm", "show", "-a");
	EXPECT_BAD("invalid VM name '-a'", "vm", "show", "--", "-a");
	EXPECT_BAD("invalid VM name ''", "vm", "show", "");
}

/* Names of 64 characters are too long; 63 is fine. */
static void test_name_too_long(void **state)
{
	char name[65], *argv[] = {"godwitctl", "vm", "start", name, NULL};
	struct gw_ctl_args a;
	memset(name, 'a', 64);
	name[64] = '\0';
	assert_int_equal(gw_ctl_name_check(name), -ENAMETOOLONG);
	assert_int_equal(gw_ctl_args_parse(4, argv, NULL, &a), -EINVAL);
	assert_non_null(strstr(a.err, "longer than 63"));
	name[63] = '\0';
	assert_int_equal(gw_ctl_name_check(name), 0);
	assert_int_equal(gw_ctl_args_parse(4, argv, NULL, &a), 0);
	assert_string_equal(a.name, name);
}

/* ---- valid forms ---- */

/* Defaults: socket from the environment or the built-in path, 30 s, human output. */
static void test_defaults(void **state)
{
	struct gw_ctl_args a;
	assert_int_equal(PARSE(&a, "vm", "list"), 0);
	assert_int_equal(a.cmd, GW_CTL_CMD_VM_LIST);
	assert_string_equal(a.socket, "/run/godwit/agent.sock");
	assert_int_equal(a.timeout_ms, 30000);
	assert_false(a.json);
	assert_int_equal(a.def->msg_type, GW_MSG_TYPE__GW_MSG_VM_LIST);
	assert_int_equal(gw_ctl_args_parse(3, ARGV("vm", "list"), "/tmp/x.sock", &a), 0);
	assert_string_equal(a.socket, "/tmp/x.sock");
	assert_int_equal(gw_ctl_args_parse(3, ARGV("vm", "list"), "", &a), 0);
	assert_string_equal(a.socket, "/run/godwit/agent.sock");
}

/* vm create with every option, in any order, --opt=value form too. */
static void test_vm_create(void **state)
{
	struct gw_ctl_args a;
	assert_int_equal(
	    PARSE(&a, "vm", "create", "web-1.a_b", "--image", "img.bin", "--memory", "512"), 0);
	assert_int_equal(a.cmd, GW_CTL_CMD_VM_CREATE);
	assert_string_equal(a.name, "web-1.a_b");
	assert_string_equal(a.image, "img.bin");
	assert_int_equal(a.memory_mib, 512);
	assert_int_equal(a.vcpus, 1);
	assert_null(a.cmdline);
	assert_int_equal(PARSE(&a, "vm", "create", "--vcpus=64", "--cmdline", "a b=c", "w",
			       "--memory=1048576", "--image=/x"),
			 0);
	assert_string_equal(a.name, "w");
	assert_int_equal(a.vcpus, 64);
	assert_int_equal(a.memory_mib, 1048576);
	assert_string_equal(a.cmdline, "a b=c");
	assert_string_equal(a.image, "/x");
}

/* Every NAME command maps to its request type. */
static void test_name_commands(void **state)
{
	static const struct {
		const char *verb;
		enum gw_ctl_cmd_id id;
		uint16_t msg;
	} t[] = {
	    {"start", GW_CTL_CMD_VM_START, GW_MSG_TYPE__GW_MSG_VM_START},
	    {"stop", GW_CTL_CMD_VM_STOP, GW_MSG_TYPE__GW_MSG_VM_STOP},
	    {"pause", GW_CTL_CMD_VM_PAUSE, GW_MSG_TYPE__GW_MSG_VM_PAUSE},
	    {"resume", GW_CTL_CMD_VM_RESUME, GW_MSG_TYPE__GW_MSG_VM_RESUME},
	    {"delete", GW_CTL_CMD_VM_DELETE, GW_MSG_TYPE__GW_MSG_VM_DELETE},
	    {"show", GW_CTL_CMD_VM_SHOW, GW_MSG_TYPE__GW_MSG_VM_SHOW},
	    {"console", GW_CTL_CMD_VM_CONSOLE, GW_MSG_TYPE__GW_MSG_VM_CONSOLE},
	    {"migrate-cancel", GW_CTL_CMD_VM_MIGRATE_CANCEL,
	     GW_MIG_MSG_TYPE__GW_MIG_VM_MIGRATE_CANCEL},
	    {"migrate-status", GW_CTL_CMD_VM_MIGRATE_STATUS,
	     GW_MIG_MSG_TYPE__GW_MIG_VM_MIGRATE_STATUS},
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct gw_ctl_args a;
		char *argv[] = {"godwitctl", "vm", (char *)t[i].verb, "x", NULL};
		assert_int_equal(gw_ctl_args_parse(4, argv, NULL, &a), 0);
		assert_int_equal(a.cmd, t[i].id);
		assert_int_equal(a.def->msg_type, t[i].msg);
		assert_string_equal(a.name, "x");
	}
}

/* cluster vm create: --driver microvm (default) needs --image/--memory; libvirt needs --xml and
 * refuses what the XML says; cluster vm import needs --host. */
static void test_cluster_create_driver(void **state)
{
	struct gw_ctl_args a;
	assert_int_equal(
	    PARSE(&a, "cluster", "vm", "create", "w", "--image", "f", "--memory", "64"), 0);
	assert_null(a.driver);
	assert_int_equal(PARSE(&a, "cluster", "vm", "create", "w", "--driver", "microvm", "--image",
			       "f", "--memory", "64", "--ha"),
			 0);
	assert_string_equal(a.driver, "microvm");
	assert_int_equal(PARSE(&a, "cluster", "vm", "create", "lv", "--driver", "libvirt", "--xml",
			       "lv.xml", "--ha", "--priority", "5", "--host", "n2"),
			 0);
	assert_int_equal(a.cmd, GW_CTL_CMD_CLUSTER_VM_CREATE);
	assert_string_equal(a.driver, "libvirt");
	assert_string_equal(a.xml, "lv.xml");
	assert_true(a.ha);
	EXPECT_BAD("missing --image FILE", "cluster", "vm", "create", "w", "--memory", "1");
	EXPECT_BAD("missing --memory MIB", "cluster", "vm", "create", "w", "--image", "f");
	EXPECT_BAD("--xml is for --driver libvirt", "cluster", "vm", "create", "w", "--image", "f",
		   "--memory", "1", "--xml", "x");
	EXPECT_BAD("missing --xml FILE", "cluster", "vm", "create", "lv", "--driver", "libvirt");
	EXPECT_BAD("--memory is not for --driver libvirt", "cluster", "vm", "create", "lv",
		   "--driver", "libvirt", "--xml", "x", "--memory", "64");
	EXPECT_BAD("--image is not for --driver libvirt", "cluster", "vm", "create", "lv",
		   "--driver", "libvirt", "--xml", "x", "--image", "f");
	EXPECT_BAD("expected microvm|libvirt", "cluster", "vm", "create", "lv", "--driver", "xen",
		   "--xml", "x");
	/* the agent-level vm create takes the same driver choice */
	EXPECT_BAD("the domain XML gives the VM's shape", "vm", "create", "w", "--image", "f",
		   "--memory", "1", "--driver", "libvirt", "--xml", "x");

	assert_int_equal(PARSE(&a, "cluster", "vm", "import", "lv", "--host", "n2", "--ha",
			       "--anti-affinity", "db"),
			 0);
	assert_int_equal(a.cmd, GW_CTL_CMD_CLUSTER_VM_IMPORT);
	assert_string_equal(a.host, "n2");
	assert_string_equal(a.anti_affinity, "db");
	EXPECT_BAD("missing --host HOST", "cluster", "vm", "import", "lv");
	EXPECT_BAD("--xml is not valid", "cluster", "vm", "import", "lv", "--host", "n2", "--xml",
		   "x");
	EXPECT_BAD("missing NAME", "cluster", "vm", "import", "--host", "n2");
}

/* cluster vm migrate-cancel NAME [--json]: the coordinator's request, a name, no other option. */
static void test_cluster_migrate_cancel(void **state)
{
	struct gw_ctl_args a;
	char buf[256];
	assert_int_equal(PARSE(&a, "cluster", "vm", "migrate-cancel", "web1", "--json"), 0);
	assert_int_equal(a.cmd, GW_CTL_CMD_CLUSTER_VM_MIGRATE_CANCEL);
	assert_int_equal(a.def->msg_type, GW_CL_MSG_TYPE__GW_CL_API_VM_MIGRATE_CANCEL);
	assert_string_equal(a.name, "web1");
	assert_true(a.json);
	EXPECT_BAD("NAME", "cluster", "vm", "migrate-cancel");
	EXPECT_BAD("--to-host", "cluster", "vm", "migrate-cancel", "web1", "--to-host", "n2");
	EXPECT_BAD("unexpected", "cluster", "vm", "migrate-cancel", "web1", "extra");
	gw_ctl_usage_line(gw_ctl_command(GW_CTL_CMD_CLUSTER_VM_MIGRATE_CANCEL), buf, sizeof(buf));
	assert_string_equal(buf, "cluster vm migrate-cancel NAME");
}

/* vm migrate: defaults, every option, IPv6, and --timeout meaning the migration's. */
static void test_migrate(void **state)
{
	static const char *good[] = {"10.0.0.2:7000", "0.0.0.0:1",	"255.255.255.255:65535",
				     "[::1]:7000",    "[fe80::1:2]:80", "[::ffff:1.2.3.4]:443",
				     "1.2.3.4:007"};
	struct gw_ctl_args a;

	assert_int_equal(PARSE(&a, "vm", "migrate", "web", "--to", "10.0.0.2:7000"), 0);
	assert_int_equal(a.cmd, GW_CTL_CMD_VM_MIGRATE);
	assert_int_equal(a.def->msg_type, GW_MIG_MSG_TYPE__GW_MIG_VM_MIGRATE);
	assert_string_equal(a.name, "web");
	assert_string_equal(a.to, "10.0.0.2:7000");
	assert_int_equal(a.streams, 2);
	assert_int_equal(a.downtime_ms, 50);
	assert_int_equal(a.bandwidth_mibps, 0);
	assert_int_equal(a.mig_timeout_s, 300);
	assert_int_equal(a.timeout_ms, 30000);
	assert_null(a.transport); /* the agent decides */

	/* --transport: tcp or rdma, last one wins */
	assert_int_equal(
	    PARSE(&a, "vm", "migrate", "w", "--to", "1.2.3.4:1", "--transport", "rdma"), 0);
	assert_string_equal(a.transport, "rdma");
	assert_int_equal(PARSE(&a, "vm", "migrate", "w", "--transport=rdma", "--to", "1.2.3.4:1",
			       "--transport=tcp"),
			 0);
	assert_string_equal(a.transport, "tcp");

	assert_int_equal(PARSE(&a, "--json", "vm", "migrate", "--to=[::1]:7001", "--streams", "16",
			       "--downtime-ms=60000", "--bandwidth", "1000000", "--timeout",
			       "86400", "w"),
			 0);
	assert_true(a.json);
	assert_string_equal(a.name, "w");
	assert_string_equal(a.to, "[::1]:7001");
	assert_int_equal(a.streams, 16);
	assert_int_equal(a.downtime_ms, 60000);
	assert_int_equal(a.bandwidth_mibps, 1000000);
	assert_int_equal(a.mig_timeout_s, 86400);
	assert_int_equal(a.timeout_ms, 30000); /* the reply timeout stays the default */

	/* --timeout before the command words is the same option: the command's wins */
	assert_int_equal(PARSE(&a, "--timeout", "5", "vm", "migrate", "w", "--to", "1.2.3.4:1",
			       "--streams", "1", "--downtime-ms", "1", "--bandwidth", "0"),
			 0);
	assert_int_equal(a.mig_timeout_s, 5);
	assert_int_equal(a.timeout_ms, 30000);
	assert_int_equal(a.streams, 1);
	assert_int_equal(a.downtime_ms, 1);
	assert_int_equal(a.bandwidth_mibps, 0);
	/* last --to wins, like every option */
	assert_int_equal(PARSE(&a, "vm", "migrate", "w", "--to", "1.2.3.4:1", "--to", "[::]:2"), 0);
	assert_string_equal(a.to, "[::]:2");

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		char *argv[] = {"godwitctl", "vm", "migrate", "a", "--to", (char *)good[i], NULL};
		if (gw_ctl_args_parse(6, argv, NULL, &a))
			fail_msg("--to '%s' refused: %s", good[i], a.err);
		assert_int_equal(gw_ctl_addr_check(good[i]), 0);
	}
	/* other commands keep the reply-timeout meaning of --timeout */
	assert_int_equal(PARSE(&a, "vm", "migrate-status", "a", "--timeout", "0"), 0);
	assert_int_equal(a.timeout_ms, 0);
	assert_int_equal(a.mig_timeout_s, 300);
	assert_int_equal(PARSE(&a, "vm", "migrate", "--help"), 0);
	assert_int_equal(a.cmd, GW_CTL_CMD_HELP);
	assert_int_equal(a.help_for->id, GW_CTL_CMD_VM_MIGRATE);
}

/* Global options before and after the command words; last one wins. */
static void test_global_options(void **state)
{
	struct gw_ctl_args a;
	assert_int_equal(PARSE(&a, "--socket", "/a", "--json", "--timeout", "5", "agent", "info"),
			 0);
	assert_int_equal(a.cmd, GW_CTL_CMD_AGENT_INFO);
	assert_string_equal(a.socket, "/a");
	assert_true(a.json);
	assert_int_equal(a.timeout_ms, 5000);
	assert_int_equal(PARSE(&a, "vm", "show", "x", "--json", "--socket=/b", "--timeout=0"), 0);
	assert_true(a.json);
	assert_string_equal(a.socket, "/b");
	assert_int_equal(a.timeout_ms, 0);
	assert_int_equal(PARSE(&a, "--socket", "/a", "vm", "list", "--socket", "/c"), 0);
	assert_string_equal(a.socket, "/c");
}

/* vm console with and without --follow. */
static void test_console_follow(void **state)
{
	struct gw_ctl_args a;
	assert_int_equal(PARSE(&a, "vm", "console", "x"), 0);
	assert_false(a.follow);
	assert_int_equal(PARSE(&a, "vm", "console", "--follow", "x"), 0);
	assert_true(a.follow);
}

/* help, --help, -h, CMD --help, --version. */
static void test_help_version(void **state)
{
	struct gw_ctl_args a;
	assert_int_equal(PARSE(&a, "help"), 0);
	assert_int_equal(a.cmd, GW_CTL_CMD_HELP);
	assert_null(a.help_for);
	assert_int_equal(PARSE(&a, "--help"), 0);
	assert_int_equal(a.cmd, GW_CTL_CMD_HELP);
	assert_int_equal(PARSE(&a, "-h"), 0);
	assert_int_equal(a.cmd, GW_CTL_CMD_HELP);
	assert_int_equal(PARSE(&a, "vm", "create", "--help"), 0);
	assert_int_equal(a.cmd, GW_CTL_CMD_HELP);
	assert_non_null(a.help_for);
	assert_int_equal(a.help_for->id, GW_CTL_CMD_VM_CREATE);
	assert_int_equal(PARSE(&a, "--version"), 0);
	assert_int_equal(a.cmd, GW_CTL_CMD_VERSION);
}

/* Usage lines and help text come from the tables. */
/* cluster rules add|list|remove, and cluster vm create --rule / --failback (options past
 * bit 31 of the option masks). */
static void test_cluster_rules(void **state)
{
	struct gw_ctl_args a;
	assert_int_equal(PARSE(&a, "cluster", "rules", "add", "web-spread", "--kind",
			       "anti-affinity", "--must", "--vms", "web1,web2,web3"),
			 0);
	assert_int_equal(a.cmd, GW_CTL_CMD_CLUSTER_RULES_ADD);
	assert_string_equal(a.pos[0], "web-spread");
	assert_string_equal(a.kind, "anti-affinity");
	assert_true(a.must);
	assert_false(a.should);
	assert_string_equal(a.vms, "web1,web2,web3");
	assert_int_equal(PARSE(&a, "cluster", "rules", "add", "db-home", "--kind", "vm-host",
			       "--should", "--vms", "db", "--hosts", "n1,n2"),
			 0);
	assert_true(a.should);
	assert_string_equal(a.hosts, "n1,n2");
	assert_int_equal(PARSE(&a, "cluster", "rules", "list", "--json"), 0);
	assert_int_equal(a.cmd, GW_CTL_CMD_CLUSTER_RULES_LIST);
	assert_int_equal(PARSE(&a, "cluster", "rules", "remove", "db-home"), 0);
	assert_int_equal(a.cmd, GW_CTL_CMD_CLUSTER_RULES_REMOVE);
	EXPECT_BAD("give one of --must", "cluster", "rules", "add", "r", "--kind", "affinity",
		   "--vms", "a,b");
	EXPECT_BAD("give one of --must", "cluster", "rules", "add", "r", "--kind", "affinity",
		   "--must", "--should", "--vms", "a,b");
	EXPECT_BAD("expected affinity|anti-affinity|vm-host|vm-not-host", "cluster", "rules", "add",
		   "r", "--kind", "near", "--must", "--vms", "a,b");
	EXPECT_BAD("missing --vms", "cluster", "rules", "add", "r", "--kind", "affinity", "--must");
	EXPECT_BAD("invalid rule name 'group:x'", "cluster", "rules", "remove", "group:x");
	EXPECT_BAD("missing RULE", "cluster", "rules", "remove");
	EXPECT_BAD("option --must is not valid for 'cluster vm create'", "cluster", "vm", "create",
		   "w", "--image", "f", "--memory", "1", "--must");
	assert_int_equal(PARSE(&a, "cluster", "vm", "create", "w", "--image", "f", "--memory", "64",
			       "--rule", "web-spread,db-home", "--failback"),
			 0);
	assert_string_equal(a.rules, "web-spread,db-home");
	assert_true(a.failback);
	assert_int_equal(PARSE(&a, "cluster", "vm", "import", "lv", "--host", "n1", "--rule", "r"),
			 0);
	assert_string_equal(a.rules, "r");
	assert_false(a.failback);
}

/* The comma-separated name lists of --vms, --hosts and --rule. */
static void test_split_names(void **state)
{
	char buf[4][GW_CTL_NAME_MAX + 1], *out[4], err[256];
	assert_int_equal(gw_ctl_split_names("a", "--vms", 4, buf, out, err, sizeof(err)), 1);
	assert_string_equal(out[0], "a");
	assert_int_equal(gw_ctl_split_names("a,b.c,d-1", "--vms", 4, buf, out, err, sizeof(err)),
			 3);
	assert_string_equal(out[1], "b.c");
	assert_string_equal(out[2], "d-1");
	assert_int_equal(gw_ctl_split_names("a,b,c,d,e", "--vms", 4, buf, out, err, sizeof(err)),
			 -E2BIG);
	assert_non_null(strstr(err, "more than 4 names"));
	assert_int_equal(gw_ctl_split_names("a,,b", "--vms", 4, buf, out, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "an empty name"));
	assert_int_equal(gw_ctl_split_names("a,", "--hosts", 4, buf, out, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "--hosts"));
	assert_int_equal(gw_ctl_split_names("a,a", "--vms", 4, buf, out, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "named twice"));
	assert_int_equal(gw_ctl_split_names("a,-b", "--rule", 4, buf, out, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "invalid name '-b'"));
	char longname[GW_CTL_NAME_MAX + 2];
	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	assert_int_equal(gw_ctl_split_names(longname, "--vms", 4, buf, out, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "too long"));
}

static void test_usage_text(void **state)
{
	char buf[8192];
	gw_ctl_usage_line(gw_ctl_command(GW_CTL_CMD_VM_CREATE), buf, sizeof(buf));
	assert_string_equal(buf,
			    "vm create NAME --image FILE --memory MIB [--vcpus N] [--cmdline STR] "
			    "[--driver microvm|libvirt] [--xml FILE]");
	gw_ctl_usage_line(gw_ctl_command(GW_CTL_CMD_VM_CONSOLE), buf, sizeof(buf));
	assert_string_equal(buf, "vm console NAME [--follow]");
	gw_ctl_usage_line(gw_ctl_command(GW_CTL_CMD_VM_MIGRATE), buf, sizeof(buf));
	assert_string_equal(buf,
			    "vm migrate NAME --to ADDR:PORT [--streams N] [--downtime-ms N] "
			    "[--bandwidth MIBPS] [--timeout S] [--transport tcp|rdma] [--postcopy] "
			    "[--copy-storage]");
	gw_ctl_usage_line(gw_ctl_command(GW_CTL_CMD_VM_MIGRATE_CANCEL), buf, sizeof(buf));
	assert_string_equal(buf, "vm migrate-cancel NAME");
	gw_ctl_help_text(buf, sizeof(buf));
	for (const struct gw_ctl_cmd *c = gw_ctl_commands(); c->id != GW_CTL_CMD_NONE; c++)
		assert_non_null(strstr(buf, c->summary));
	assert_non_null(strstr(buf, "--socket PATH"));
}

/* The strict number parser on its own. */
static void test_parse_uint(void **state)
{
	uint64_t v;
	assert_int_equal(gw_ctl_parse_uint("", 0, 10, &v), -EINVAL);
	assert_int_equal(gw_ctl_parse_uint("1x", 0, 10, &v), -EINVAL);
	assert_int_equal(gw_ctl_parse_uint("11", 0, 10, &v), -ERANGE);
	assert_int_equal(gw_ctl_parse_uint("18446744073709551616", 0, UINT64_MAX, &v), -ERANGE);
	assert_int_equal(gw_ctl_parse_uint("18446744073709551615", 0, UINT64_MAX, &v), 0);
	assert_true(v == UINT64_MAX);
	assert_int_equal(gw_ctl_parse_uint("007", 0, 10, &v), 0);
	assert_int_equal(v, 7);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_missing_command),
	    cmocka_unit_test(test_unknown_command),
	    cmocka_unit_test(test_missing_name),
	    cmocka_unit_test(test_migrate_bad_to),
	    cmocka_unit_test(test_migrate_bad_numbers),
	    cmocka_unit_test(test_extra_argument),
	    cmocka_unit_test(test_unknown_option),
	    cmocka_unit_test(test_option_value),
	    cmocka_unit_test(test_bad_number),
	    cmocka_unit_test(test_missing_required),
	    cmocka_unit_test(test_bad_name_chars),
	    cmocka_unit_test(test_name_too_long),
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_vm_create),
	    cmocka_unit_test(test_name_commands),
	    cmocka_unit_test(test_migrate),
	    cmocka_unit_test(test_cluster_migrate_cancel),
	    cmocka_unit_test(test_cluster_create_driver),
	    cmocka_unit_test(test_global_options),
	    cmocka_unit_test(test_console_follow),
	    cmocka_unit_test(test_help_version),
	    cmocka_unit_test(test_usage_text),
	    cmocka_unit_test(test_cluster_rules),
	    cmocka_unit_test(test_split_names),
	    cmocka_unit_test(test_parse_uint),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

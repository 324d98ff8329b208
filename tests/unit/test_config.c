/* test_config.c -- INI parsing, number parsing and godwit-agent flags over config. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent_config.h"
#include "gw_config.h"
#include "gw_transport.h"
#include "gw_fsutil.h"

struct seen {
	int n;
	char last[3][64];
};

static int record(void *ctx, const char *section, const char *key, const char *value, int line)
{
	struct seen *s = ctx;
	if (!strcmp(value, "reject"))
		return -EINVAL;
	snprintf(s->last[0], 64, "%s", section);
	snprintf(s->last[1], 64, "%s", key);
	snprintf(s->last[2], 64, "%s", value);
	s->n++;
	return 0;
}

/* Syntax errors name the file and line. */
static void test_parse_errors(void **state)
{
	char err[256];
	struct seen s = {0};
	assert_int_equal(gw_config_parse("[agent\n", "f", record, &s, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "f:1: malformed section header");
	assert_int_equal(gw_config_parse("# c\n\nnovalue\n", "f", record, &s, err, sizeof(err)),
			 -EINVAL);
	assert_string_equal(err, "f:3: expected 'key = value'");
	assert_int_equal(gw_config_parse("[a b]\n", "f", record, &s, err, sizeof(err)), -EINVAL);
	assert_int_equal(gw_config_parse("bad key = 1\n", "f", record, &s, err, sizeof(err)),
			 -EINVAL);
	assert_int_equal(gw_config_parse("[x]\nk = reject\n", "f", record, &s, err, sizeof(err)),
			 -EINVAL);
	assert_string_equal(err, "f:2: bad value for 'k': 'reject'");
}

/* Sections, comments, blank lines, quotes and whitespace. */
static void test_parse_ok(void **state)
{
	char err[256];
	struct seen s = {0};
	assert_int_equal(gw_config_parse("top = 1\n; c\n[agent]\n  node =  \"n 1\"  \n", "f",
					 record, &s, err, sizeof(err)),
			 0);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.last[0], "agent");
	assert_string_equal(s.last[1], "node");
	assert_string_equal(s.last[2], "n 1");
}

/* Numbers: whole string, in range, no sign. */
static void test_parse_u64(void **state)
{
	unsigned long long v;
	assert_int_equal(gw_parse_u64("", 0, 10, &v), -EINVAL);
	assert_int_equal(gw_parse_u64("-1", 0, 10, &v), -EINVAL);
	assert_int_equal(gw_parse_u64("5x", 0, 10, &v), -EINVAL);
	assert_int_equal(gw_parse_u64("11", 0, 10, &v), -ERANGE);
	assert_int_equal(gw_parse_u64("99999999999999999999999", 0, ~0ull, &v), -ERANGE);
	assert_int_equal(gw_parse_u64("0x10", 0, 100, &v), 0);
	assert_int_equal(v, 16);
	int b;
	assert_int_equal(gw_parse_bool("maybe", &b), -EINVAL);
	assert_int_equal(gw_parse_bool("yes", &b), 0);
	assert_int_equal(b, 1);
}

static void test_hostport(void **state)
{
	char host[64];
	unsigned port;
	assert_int_equal(gw_parse_hostport("1.2.3.4", host, sizeof(host), &port), -EINVAL);
	assert_int_equal(gw_parse_hostport("1.2.3.4:", host, sizeof(host), &port), -EINVAL);
	assert_int_equal(gw_parse_hostport("1.2.3.4:65536", host, sizeof(host), &port), -EINVAL);
	assert_int_equal(gw_parse_hostport("host:80", host, sizeof(host), &port), -EINVAL);
	assert_int_equal(gw_parse_hostport("[::1:80", host, sizeof(host), &port), -EINVAL);
	assert_int_equal(gw_parse_hostport("198.18.0.2:7420", host, sizeof(host), &port), 0);
	assert_string_equal(host, "198.18.0.2");
	assert_int_equal(port, 7420);
	assert_int_equal(gw_parse_hostport("[::1]:9", host, sizeof(host), &port), 0);
	assert_string_equal(host, "::1");
}

static char tmpdir[64];

static int setup_tmp(void **state)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/gw-test-config-XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_tmp(void **state)
{
	return gw_rm_rf(tmpdir);
}

static int parse(struct gw_agent_config *cfg, char *err, int argc, char **argv)
{
	gw_agent_config_defaults(cfg);
	return gw_agent_args_parse(cfg, argc, argv, err, 256);
}

/* Bad flags, bad values, a missing or broken --config file: -EINVAL with a reason. */
static void test_agent_args_invalid(void **state)
{
	struct gw_agent_config cfg;
	char err[256], conf[128];
	char *a1[] = {"godwit-agent", "--bogus", NULL};
	assert_int_equal(parse(&cfg, err, 2, a1), -EINVAL);
	char *a2[] = {"godwit-agent", "--listen", "nonsense", NULL};
	assert_int_equal(parse(&cfg, err, 3, a2), -EINVAL);
	assert_non_null(strstr(err, "--listen"));
	char *a3[] = {"godwit-agent", "--state-dir", "relative/dir", NULL};
	assert_int_equal(parse(&cfg, err, 3, a3), -EINVAL);
	char *a4[] = {"godwit-agent", "--config", "/nonexistent/godwit.conf", NULL};
	assert_int_equal(parse(&cfg, err, 3, a4), -EINVAL);
	assert_non_null(strstr(err, "cannot read config"));
	snprintf(conf, sizeof(conf), "%s/bad.conf", tmpdir);
	const char *text = "[agent]\nmemory_reserve_mib = lots\n";
	assert_int_equal(gw_file_write_atomic(conf, text, strlen(text), 0600), 0);
	char *a5[] = {"godwit-agent", "--config", conf, NULL};
	assert_int_equal(parse(&cfg, err, 3, a5), -EINVAL);
	assert_non_null(strstr(err, ":2: bad value for 'memory_reserve_mib'"));
	text = "[agent]\nfrobnicate = 1\n";
	assert_int_equal(gw_file_write_atomic(conf, text, strlen(text), 0600), 0);
	assert_int_equal(parse(&cfg, err, 3, a5), -EINVAL);
	assert_non_null(strstr(err, "unknown key 'frobnicate'"));
	text = "[agent]\nincoming_ram_pool_mib = 1023\n"; /* guest RAM comes in 2 MiB steps */
	assert_int_equal(gw_file_write_atomic(conf, text, strlen(text), 0600), 0);
	assert_int_equal(parse(&cfg, err, 3, a5), -EINVAL);
	assert_non_null(strstr(err, "incoming_ram_pool_mib"));
	text = "[agent]\nmigration_transport = udp\n";
	assert_int_equal(gw_file_write_atomic(conf, text, strlen(text), 0600), 0);
	assert_int_equal(parse(&cfg, err, 3, a5), -EINVAL);
	assert_non_null(strstr(err, ":2: bad value for 'migration_transport': 'udp'"));
	/* rdma is a known value, but only usable when this build has the transport */
	text = "[agent]\nmigration_transport = rdma\n";
	assert_int_equal(gw_file_write_atomic(conf, text, strlen(text), 0600), 0);
	if (gw_transport_get("rdma")) {
		assert_int_equal(parse(&cfg, err, 3, a5), 0);
		assert_string_equal(cfg.migration_transport, "rdma");
	} else {
		assert_int_equal(parse(&cfg, err, 3, a5), -EINVAL);
		assert_non_null(strstr(err, "'migration_transport'"));
		assert_non_null(strstr(err, "RDMA transport not built into this agent"));
		assert_string_equal(cfg.migration_transport, "tcp");
	}
	text = "[agent]\nvm_backend = qemu\n";
	assert_int_equal(gw_file_write_atomic(conf, text, strlen(text), 0600), 0);
	assert_int_equal(parse(&cfg, err, 3, a5), -EINVAL);
	assert_non_null(strstr(err, ":2: bad value for 'vm_backend': 'qemu'"));
	text = "[agent]\nconsole_max_kib = -1\n";
	assert_int_equal(gw_file_write_atomic(conf, text, strlen(text), 0600), 0);
	assert_int_equal(parse(&cfg, err, 3, a5), -EINVAL);
	assert_non_null(strstr(err, "console_max_kib"));
	char *a6[] = {"godwit-agent", "extra", NULL};
	assert_int_equal(parse(&cfg, err, 2, a6), -EINVAL);
	char *a7[] = {"godwit-agent", "--vm-backend", "xen", NULL};
	assert_int_equal(parse(&cfg, err, 3, a7), -EINVAL);
	assert_non_null(strstr(err, "bad value for --vm-backend: 'xen'"));
}

/* The config file sets values; flags override them whatever their order. */
static void test_agent_args_override(void **state)
{
	struct gw_agent_config cfg;
	char err[256], conf[128];
	snprintf(conf, sizeof(conf), "%s/godwit.conf", tmpdir);
	const char *text = "[coordinator]\nwhatever = 1\n[agent]\nstate_dir = /srv/gw\n"
			   "node = n7\nlisten = 198.18.0.7:7420\nmemory_reserve_mib = 512\n"
			   "incoming_ram_pool_mib = 2048\n";
	assert_int_equal(gw_file_write_atomic(conf, text, strlen(text), 0600), 0);
	char *a[] = {"godwit-agent", "--node", "override", "--config", conf, NULL};
	assert_int_equal(parse(&cfg, err, 5, a), 0);
	assert_string_equal(cfg.state_dir, "/srv/gw");
	assert_string_equal(cfg.node, "override");
	assert_string_equal(cfg.listen, "198.18.0.7:7420");
	assert_int_equal(cfg.memory_reserve_mib, 512);
	assert_int_equal(cfg.incoming_ram_pool_mib, 2048);
	assert_string_equal(cfg.config_path, conf);
	assert_string_equal(cfg.socket_path, GW_DEFAULT_AGENT_SOCKET);
	assert_string_equal(cfg.migration_transport, "tcp"); /* the default */
	assert_string_equal(cfg.vm_backend, "auto");	     /* the default */
	assert_int_equal(cfg.console_max_kib, 1024);	     /* the default */
	text = "[agent]\nmigration_transport = tcp\nvm_backend = kvm\nconsole_max_kib = 64\n";
	assert_int_equal(gw_file_write_atomic(conf, text, strlen(text), 0600), 0);
	assert_int_equal(parse(&cfg, err, 5, a), 0);
	assert_string_equal(cfg.migration_transport, "tcp");
	assert_string_equal(cfg.vm_backend, "kvm");
	assert_int_equal(cfg.console_max_kib, 64);
	char *b[] = {"godwit-agent", "--vm-backend", "process", "--console-max-kib", "0",
		     "--config",     conf,	     NULL};
	assert_int_equal(parse(&cfg, err, 7, b), 0);
	assert_string_equal(cfg.vm_backend, "process");
	assert_int_equal(cfg.console_max_kib, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_errors),
	    cmocka_unit_test(test_parse_ok),
	    cmocka_unit_test(test_parse_u64),
	    cmocka_unit_test(test_hostport),
	    cmocka_unit_test_setup_teardown(test_agent_args_invalid, setup_tmp, teardown_tmp),
	    cmocka_unit_test_setup_teardown(test_agent_args_override, setup_tmp, teardown_tmp),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

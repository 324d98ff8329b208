/* fuzz_config.c -- libFuzzer: config files. The input is the text of a godwit.conf, given to
 * the INI parser (gw_config_parse) with a callback that checks what it hands out, to the
 * agent's loader (gw_agent_config_load, through a memfd) and to the coordinator's callback
 * (fuzz_config_coord.c). Checks: sections and keys are non-empty names of [A-Za-z0-9_.-],
 * values carry no newline, line numbers grow, errors name the file
 * and line; whatever the agent accepted is well-formed (terminated strings, addresses that
 * parse, values in range). Also the ADDR:PORT parsers on the first line. */
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "agent_config.h"
#include "fuzz_common.h"
#include "gw_config.h"
#include "gw_metrics.h"

int fuzz_coord_config(const char *text, char *err, size_t errlen);

static bool name_chars(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '_' || *s == '-' || *s == '.'))
			return false;
	return true;
}

static bool blank(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

struct rec {
	int last_line, calls;
};

static int record(void *ctx, const char *section, const char *key, const char *value, int line)
{
	struct rec *r = ctx;
	FUZZ_CHECK(!section[0] || name_chars(section));
	FUZZ_CHECK(strlen(section) < 128);
	FUZZ_CHECK(name_chars(key));
	FUZZ_CHECK(!strchr(value, '\n'));
	/* blanks around keys are trimmed */
	FUZZ_CHECK(!blank(key[0]) && !blank(key[strlen(key) - 1]));
	FUZZ_CHECK(line > r->last_line);
	r->last_line = line;
	r->calls++;
	/* a key named "stop" stops the parse with a callback error, like a bad value */
	return strcmp(key, "stop") ? 0 : -EINVAL;
}

static struct gw_agent_config agent_defaults;
static int memfd = -1;

static void fuzz_agent(const char *text, size_t len)
{
	static struct gw_agent_config cfg;
	char err[512] = "", path[64];
	FUZZ_CHECK(ftruncate(memfd, 0) == 0);
	FUZZ_CHECK(pwrite(memfd, text, len, 0) == (ssize_t)len);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", memfd);
	cfg = agent_defaults;
	int r = gw_agent_config_load(&cfg, path, err, sizeof(err));
	if (r) {
		FUZZ_CHECK(err[0] && memchr(err, 0, sizeof(err)));
		return;
	}
	FUZZ_CHECK(FUZZ_TERMINATED(cfg.state_dir) && FUZZ_TERMINATED(cfg.socket_path));
	FUZZ_CHECK(FUZZ_TERMINATED(cfg.listen) && FUZZ_TERMINATED(cfg.metrics_listen));
	FUZZ_CHECK(FUZZ_TERMINATED(cfg.node) && FUZZ_TERMINATED(cfg.cluster_key));
	FUZZ_CHECK(FUZZ_TERMINATED(cfg.vmm_path) && FUZZ_TERMINATED(cfg.vm_backend));
	FUZZ_CHECK(FUZZ_TERMINATED(cfg.migration_transport));
	FUZZ_CHECK(cfg.state_dir[0] == '/');
	FUZZ_CHECK(cfg.incoming_ram_pool_mib % 2 == 0 && cfg.incoming_ram_pool_mib <= 1ull << 30);
	FUZZ_CHECK(cfg.memory_reserve_mib <= 1ull << 30 && cfg.console_max_kib <= 1024 * 1024);
	char host[128];
	unsigned port = 70000;
	FUZZ_CHECK(gw_parse_hostport(cfg.listen, host, sizeof(host), &port) == 0 && port <= 65535);
	FUZZ_CHECK(FUZZ_TERMINATED(host));
	if (cfg.metrics_listen[0])
		FUZZ_CHECK(gw_parse_hostport(cfg.metrics_listen, NULL, 0, NULL) == 0);
	FUZZ_CHECK(!strcmp(cfg.migration_transport, "tcp") ||
		   !strcmp(cfg.migration_transport, "rdma"));
}

/* The first line as an ADDR:PORT, through both parsers. */
static void fuzz_addr(const char *text)
{
	char line[300], host[64];
	unsigned port = 70000;
	snprintf(line, sizeof(line), "%.*s", (int)strcspn(text, "\n"), text);
	int r = gw_parse_hostport(line, host, sizeof(host), &port);
	if (!r) {
		FUZZ_CHECK(port <= 65535 && FUZZ_TERMINATED(host));
		FUZZ_CHECK(strlen(host) < strlen(line));
	}
	r = gw_metrics_addr_check(line);
	FUZZ_CHECK(r == 0 || r == -EINVAL);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_quiet();
	gw_agent_config_defaults(&agent_defaults);
	memfd = memfd_create("fuzz-config", MFD_CLOEXEC);
	if (memfd < 0)
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 65536)
		return 0; /* the loader reads up to 1 MiB; long texts only slow the fuzzer */
	char *text = malloc(size + 1), err[512] = "";
	FUZZ_CHECK(text);
	memcpy(text, data, size);
	text[size] = 0;

	struct rec rec = {0, 0};
	int r = gw_config_parse(text, "fuzz.conf", record, &rec, err, sizeof(err));
	FUZZ_CHECK(r == 0 || r == -EINVAL || r == -ENOENT || r == -ENOMEM);
	if (r && r != -ENOMEM)
		FUZZ_CHECK(!strncmp(err, "fuzz.conf:", 10) && memchr(err, 0, sizeof(err)));

	fuzz_agent(text, size);
	fuzz_coord_config(text, err, sizeof(err));
	fuzz_quiet(); /* log_level keys change the level */
	fuzz_addr(text);
	free(text);
	return 0;
}

/* agent_config.c -- godwit-agent configuration: defaults, [agent] section, flags. */
#include "agent_config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gw_config.h"
#include "gw_log.h"
#include "gw_tls.h"
#include "gw_transport.h"

/* the last migration_transport value refused was "rdma" in a build without it (for the
 * error message of gw_agent_config_load) */
static int rdma_missing;

void gw_agent_config_defaults(struct gw_agent_config *cfg)
{
	char exe[PATH_MAX];
	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->state_dir, sizeof(cfg->state_dir), "%s", GW_DEFAULT_STATE_DIR);
	snprintf(cfg->socket_path, sizeof(cfg->socket_path), "%s", GW_DEFAULT_AGENT_SOCKET);
	snprintf(cfg->listen, sizeof(cfg->listen), "%s", GW_DEFAULT_LISTEN);
	snprintf(cfg->cluster_key, sizeof(cfg->cluster_key), "%s", GW_DEFAULT_CLUSTER_KEY);
	if (gethostname(cfg->node, sizeof(cfg->node)) < 0 || !cfg->node[0])
		snprintf(cfg->node, sizeof(cfg->node), "localhost");
	cfg->node[sizeof(cfg->node) - 1] = 0;
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = 0;
		snprintf(cfg->vmm_path, sizeof(cfg->vmm_path), "%s/godwit-vmm", dirname(exe));
	} else {
		snprintf(cfg->vmm_path, sizeof(cfg->vmm_path), "godwit-vmm");
	}
	snprintf(cfg->migration_transport, sizeof(cfg->migration_transport), "tcp");
	snprintf(cfg->tls_mode, sizeof(cfg->tls_mode), "off");
	snprintf(cfg->vm_backend, sizeof(cfg->vm_backend), "auto");
	cfg->console_max_kib = 1024;
	snprintf(cfg->libvirt_uri, sizeof(cfg->libvirt_uri), "qemu:///system");
	cfg->memory_reserve_mib = 256;
	cfg->log_level = GW_LOG_INFO;
}

int gw_parse_hostport(const char *s, char *host, size_t hostlen, unsigned *port)
{
	char buf[128];
	const char *colon;
	unsigned long long p;
	unsigned char addr[16];

	if (!s || strlen(s) >= sizeof(buf))
		return -EINVAL;
	if (s[0] == '[') {
		const char *end = strchr(s, ']');
		if (!end || end[1] != ':')
			return -EINVAL;
		snprintf(buf, sizeof(buf), "%.*s", (int)(end - s - 1), s + 1);
		if (inet_pton(AF_INET6, buf, addr) != 1)
			return -EINVAL;
		colon = end + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return -EINVAL;
		snprintf(buf, sizeof(buf), "%.*s", (int)(colon - s), s);
		if (inet_pton(AF_INET, buf, addr) != 1)
			return -EINVAL;
	}
	if (gw_parse_u64(colon + 1, 0, 65535, &p))
		return -EINVAL;
	if (host) {
		if (strlen(buf) >= hostlen)
			return -EINVAL;
		snprintf(host, hostlen, "%s", buf);
	}
	if (port)
		*port = (unsigned)p;
	return 0;
}

static int set_str(char *dst, size_t len, const char *v)
{
	if (!*v || strlen(v) >= len)
		return -EINVAL;
	snprintf(dst, len, "%s", v);
	return 0;
}

static int valid_node(const char *v)
{
	if (!*v || strlen(v) >= GW_NAME_MAX)
		return 0;
	for (const char *p = v; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.'))
			return 0;
	return 1;
}

/* One setting by name, from the config file or a flag. */
static int apply(struct gw_agent_config *cfg, const char *key, const char *v)
{
	unsigned long long n;
	enum gw_log_level lvl;

	if (!strcmp(key, "state_dir"))
		return v[0] == '/' ? set_str(cfg->state_dir, sizeof(cfg->state_dir), v) : -EINVAL;
	if (!strcmp(key, "socket"))
		return v[0] == '/' && strlen(v) < 108
			   ? set_str(cfg->socket_path, sizeof(cfg->socket_path), v)
			   : -EINVAL;
	if (!strcmp(key, "listen"))
		return gw_parse_hostport(v, NULL, 0, NULL)
			   ? -EINVAL
			   : set_str(cfg->listen, sizeof(cfg->listen), v);
	if (!strcmp(key, "metrics_listen")) {
		if (!*v) {
			cfg->metrics_listen[0] = 0; /* empty: no endpoint */
			return 0;
		}
		return gw_parse_hostport(v, NULL, 0, NULL)
			   ? -EINVAL
			   : set_str(cfg->metrics_listen, sizeof(cfg->metrics_listen), v);
	}
	if (!strcmp(key, "node"))
		return valid_node(v) ? set_str(cfg->node, sizeof(cfg->node), v) : -EINVAL;
	if (!strcmp(key, "cluster_key"))
		return set_str(cfg->cluster_key, sizeof(cfg->cluster_key), v);
	if (!strcmp(key, "vmm_path"))
		return set_str(cfg->vmm_path, sizeof(cfg->vmm_path), v);
	if (!strcmp(key, "incoming_ram_pool_mib")) {
		if (gw_parse_u64(v, 0, 1ull << 30, &n) || n % 2)
			return -EINVAL;
		cfg->incoming_ram_pool_mib = n;
		return 0;
	}
	if (!strcmp(key, "memory_reserve_mib")) {
		if (gw_parse_u64(v, 0, 1ull << 30, &n))
			return -EINVAL;
		cfg->memory_reserve_mib = n;
		return 0;
	}
	if (!strcmp(key, "migration_transport")) {
		if (strcmp(v, "tcp") && strcmp(v, "rdma"))
			return -EINVAL;
		if (!gw_transport_get(v)) {
			rdma_missing = 1;
			return -EINVAL;
		}
		snprintf(cfg->migration_transport, sizeof(cfg->migration_transport), "%s", v);
		return 0;
	}
	if (!strcmp(key, "vm_backend")) {
		if (strcmp(v, "auto") && strcmp(v, "kvm") && strcmp(v, "process"))
			return -EINVAL;
		return set_str(cfg->vm_backend, sizeof(cfg->vm_backend), v);
	}
	if (!strcmp(key, "console_max_kib")) {
		if (gw_parse_u64(v, 0, 1024 * 1024, &n))
			return -EINVAL;
		cfg->console_max_kib = (unsigned)n;
		return 0;
	}
	if (!strcmp(key, "tls.mode")) {
		enum gw_tls_mode m;
		return gw_tls_parse_mode(v, &m) ? -EINVAL
						: set_str(cfg->tls_mode, sizeof(cfg->tls_mode), v);
	}
	if (!strcmp(key, "tls.ca"))
		return set_str(cfg->tls_ca, sizeof(cfg->tls_ca), v);
	if (!strcmp(key, "tls.cert"))
		return set_str(cfg->tls_cert, sizeof(cfg->tls_cert), v);
	if (!strcmp(key, "tls.key"))
		return set_str(cfg->tls_key, sizeof(cfg->tls_key), v);
	if (!strcmp(key, "libvirt.enabled"))
		return gw_parse_bool(v, &cfg->libvirt_enabled);
	if (!strcmp(key, "libvirt.uri")) {
		cfg->libvirt_enabled = 1;
		return set_str(cfg->libvirt_uri, sizeof(cfg->libvirt_uri), v);
	}
	if (!strcmp(key, "libvirt.migrate_unsafe"))
		return gw_parse_bool(v, &cfg->libvirt_migrate_unsafe);
	if (!strcmp(key, "libvirt.migrate_uri"))
		return set_str(cfg->libvirt_migrate_uri, sizeof(cfg->libvirt_migrate_uri), v);
	if (!strcmp(key, "log_level")) {
		if (gw_log_level_parse(v, &lvl))
			return -EINVAL;
		cfg->log_level = lvl;
		return 0;
	}
	return -ENOENT;
}

static int config_cb(void *ctx, const char *section, const char *key, const char *value, int line)
{
	(void)line;
	if (!strcmp(section, "libvirt") || !strcmp(section, "tls")) {
		char k[64];
		snprintf(k, sizeof(k), "%s.%s", section, key);
		return apply(ctx, k, value);
	}
	/* other sections belong to the coordinator and are not ours to judge */
	if (strcmp(section, "agent") != 0)
		return 0;
	return apply(ctx, key, value);
}

int gw_agent_config_load(struct gw_agent_config *cfg, const char *path, char *err, size_t errlen)
{
	rdma_missing = 0;
	int r = gw_config_load(path, config_cb, cfg, err, errlen);
	if (r && rdma_missing) {
		size_t n = strlen(err);
		snprintf(err + n, errlen - n, " (RDMA transport not built into this agent)");
	}
	if (r == 0)
		snprintf(cfg->config_path, sizeof(cfg->config_path), "%s", path);
	return r;
}

static const struct option long_opts[] = {
    {"config", required_argument, NULL, 'c'},
    {"state-dir", required_argument, NULL, 'd'},
    {"socket", required_argument, NULL, 's'},
    {"listen", required_argument, NULL, 'l'},
    {"metrics-listen", required_argument, NULL, 'M'},
    {"node", required_argument, NULL, 'n'},
    {"cluster-key", required_argument, NULL, 'k'},
    {"vmm-path", required_argument, NULL, 'V'},
    {"log-level", required_argument, NULL, 'L'},
    {"vm-backend", required_argument, NULL, 'B'},
    {"console-max-kib", required_argument, NULL, 'C'},
    {"libvirt-uri", required_argument, NULL, 'U'},
    {"libvirt-migrate-uri", required_argument, NULL, 'm'},
    {"tls-mode", required_argument, NULL, 'T'},
    {"tls-ca", required_argument, NULL, 'A'},
    {"tls-cert", required_argument, NULL, 'E'},
    {"tls-key", required_argument, NULL, 'K'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'v'},
    {NULL, 0, NULL, 0},
};

static const char *opt_key(int c)
{
	switch (c) {
	case 'd':
		return "state_dir";
	case 's':
		return "socket";
	case 'l':
		return "listen";
	case 'M':
		return "metrics_listen";
	case 'n':
		return "node";
	case 'k':
		return "cluster_key";
	case 'V':
		return "vmm_path";
	case 'L':
		return "log_level";
	case 'B':
		return "vm_backend";
	case 'C':
		return "console_max_kib";
	case 'U':
		return "libvirt.uri";
	case 'm':
		return "libvirt.migrate_uri";
	case 'T':
		return "tls.mode";
	case 'A':
		return "tls.ca";
	case 'E':
		return "tls.cert";
	case 'K':
		return "tls.key";
	}
	return NULL;
}

int gw_agent_args_parse(struct gw_agent_config *cfg, int argc, char **argv, char *err,
			size_t errlen)
{
	const char *config = NULL;
	int c, explicit_config = 0;

	err[0] = 0;
	/* pass 1: find --config (flags override the file whatever their order) */
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "c:h", long_opts, NULL)) != -1) {
		if (c == 'c') {
			config = optarg;
			explicit_config = 1;
		} else if (c == 'h') {
			printf(
			    "usage: godwit-agent [--config FILE] [--state-dir DIR] [--socket "
			    "PATH]\n"
			    "                    [--listen ADDR:PORT] [--node NAME] [--cluster-key "
			    "FILE]\n"
			    "                    [--vmm-path PATH] [--metrics-listen ADDR:PORT]\n"
			    "                    [--log-level debug|info|warn|error]\n"
			    "                    [--vm-backend auto|kvm|process] "
			    "[--console-max-kib N]\n"
			    "                    [--libvirt-uri URI] [--libvirt-migrate-uri "
			    "URI]\n"
			    "                    [--tls-mode off|on|required] [--tls-ca FILE] "
			    "[--tls-cert FILE] [--tls-key FILE]\n");
			return 1;
		} else if (c == 'v') {
			printf("godwit-agent %s\n", GW_VERSION);
			return 1;
		} else if (c == '?') {
			snprintf(err, errlen, "unknown option or missing argument: %s",
				 argv[optind - 1]);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		snprintf(err, errlen, "unexpected argument: %s", argv[optind]);
		return -EINVAL;
	}
	if (!config && access(GW_DEFAULT_CONFIG, F_OK) == 0)
		config = GW_DEFAULT_CONFIG;
	if (config) {
		int r = gw_agent_config_load(cfg, config, err, errlen);
		if (r) {
			if (r == -ENOENT && !explicit_config)
				err[0] = 0;
			else
				return -EINVAL;
		}
	}
	/* pass 2: flags */
	optind = 1;
	while ((c = getopt_long(argc, argv, "c:h", long_opts, NULL)) != -1) {
		const char *key = opt_key(c);
		if (!key)
			continue;
		if (apply(cfg, key, optarg)) {
			const char *flag = "?";
			for (const struct option *o = long_opts; o->name; o++)
				if (o->val == c)
					flag = o->name;
			snprintf(err, errlen, "bad value for --%s: '%s'", flag, optarg);
			return -EINVAL;
		}
	}
	return 0;
}

/* ctl_args.c -- godwitctl argument parsing: table-driven, pure, no I/O. */
#include "ctl_args.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <stdio.h>
#include <string.h>

#include "cluster.pb-c.h"
#include "control.pb-c.h"
#include "migration.pb-c.h"

#define GLOBAL_OPTS                                                                                \
	(GW_CTL_OPT(SOCKET) | GW_CTL_OPT(JSON) | GW_CTL_OPT(TIMEOUT) | GW_CTL_OPT(HELP) |          \
	 GW_CTL_OPT(VERSION) | GW_CTL_OPT(COORD_SOCKET))

enum opt_kind {
	OPT_FLAG,    /* bool, no value */
	OPT_STR,     /* const char *, any non-empty value */
	OPT_U32,     /* uint32_t, decimal in [min, max] */
	OPT_SECONDS, /* int milliseconds, given as whole seconds in [min, max] */
	OPT_ADDR,    /* const char *, ADDR:PORT checked by gw_ctl_addr_check() */
	OPT_CHOICE,  /* const char *, one of the '|'-separated words of the metavar */
};

/*
 * Every option godwitctl knows. A command-specific option may reuse a global
 * option's name (a later `vm migrate --timeout S`): the entry the command allows is
 * preferred, the global one is the fallback. Adding an option = one enum value in
 * ctl_args.h, one field in struct gw_ctl_args and one line here.
 */
struct opt_def {
	const char *name;
	enum gw_ctl_opt_id id;
	enum opt_kind kind;
	uint32_t min, max;
	size_t off; /* field in struct gw_ctl_args */
	const char *metavar;
	const char *help;
};

/* clang-format off */
#define F(field) offsetof(struct gw_ctl_args, field)
static const struct opt_def opt_table[] = {
	{"--socket", GW_CTL_OPT_SOCKET, OPT_STR, 0, 0, F(socket), "PATH",
	 "agent control socket (default: $GODWIT_AGENT_SOCKET, else " GW_CTL_DEFAULT_SOCKET ")"},
	{"--json", GW_CTL_OPT_JSON, OPT_FLAG, 0, 0, F(json), NULL,
	 "print one JSON document on stdout"},
	{"--timeout", GW_CTL_OPT_TIMEOUT, OPT_SECONDS, 0, 86400, F(timeout_ms), "S",
	 "seconds to wait for each reply, 0 = forever (default 30)"},
	{"--help", GW_CTL_OPT_HELP, OPT_FLAG, 0, 0, 0, NULL, "show this help"},
	{"--version", GW_CTL_OPT_VERSION, OPT_FLAG, 0, 0, 0, NULL, "show the version"},
	{"--image", GW_CTL_OPT_IMAGE, OPT_STR, 0, 0, F(image), "FILE", NULL},
	{"--memory", GW_CTL_OPT_MEMORY, OPT_U32, 1, 1048576, F(memory_mib), "MIB", NULL},
	{"--vcpus", GW_CTL_OPT_VCPUS, OPT_U32, 1, 64, F(vcpus), "N", NULL},
	{"--cmdline", GW_CTL_OPT_CMDLINE, OPT_STR, 0, 0, F(cmdline), "STR", NULL},
	{"--follow", GW_CTL_OPT_FOLLOW, OPT_FLAG, 0, 0, F(follow), NULL, NULL},
	{"--to", GW_CTL_OPT_TO, OPT_ADDR, 0, 0, F(to), "ADDR:PORT", NULL},
	{"--streams", GW_CTL_OPT_STREAMS, OPT_U32, 1, 16, F(streams), "N", NULL},
	{"--downtime-ms", GW_CTL_OPT_DOWNTIME, OPT_U32, 1, 60000, F(downtime_ms), "N", NULL},
	{"--bandwidth", GW_CTL_OPT_BANDWIDTH, OPT_U32, 0, 1000000, F(bandwidth_mibps), "MIBPS",
	 NULL},
	{"--timeout", GW_CTL_OPT_MIG_TIMEOUT, OPT_U32, 1, 86400, F(mig_timeout_s), "S", NULL},
	{"--transport", GW_CTL_OPT_TRANSPORT, OPT_CHOICE, 0, 0, F(transport), "tcp|rdma", NULL},
	{"--coordinator-socket", GW_CTL_OPT_COORD_SOCKET, OPT_STR, 0, 0, F(coord_socket), "PATH",
	 "coordinator socket ($GODWIT_COORDINATOR_SOCKET, else " GW_CTL_DEFAULT_COORD_SOCKET ")"},
	{"--ha", GW_CTL_OPT_HA, OPT_FLAG, 0, 0, F(ha), NULL, NULL},
	{"--priority", GW_CTL_OPT_PRIORITY, OPT_U32, 0, 1000000, F(priority), "N", NULL},
	{"--anti-affinity", GW_CTL_OPT_ANTI_AFFINITY, OPT_STR, 0, 0, F(anti_affinity), "GROUP", NULL},
	{"--host", GW_CTL_OPT_HOST, OPT_STR, 0, 0, F(host), "HOST", NULL},
	{"--to-host", GW_CTL_OPT_TO_HOST, OPT_STR, 0, 0, F(to_host), "HOST", NULL},
	{"--no-wait", GW_CTL_OPT_NO_WAIT, OPT_FLAG, 0, 0, F(no_wait), NULL, NULL},
	{"--dry-run", GW_CTL_OPT_DRY_RUN, OPT_FLAG, 0, 0, F(dry_run), NULL, NULL},
	{"--max-moves", GW_CTL_OPT_MAX_MOVES, OPT_U32, 1, 64, F(max_moves), "N", NULL},
	{"--threshold", GW_CTL_OPT_THRESHOLD, OPT_U32, 0, 100, F(threshold_pct), "PCT", NULL},
	{"--aggressiveness", GW_CTL_OPT_AGGRESSIVENESS, OPT_U32, 1, 5, F(aggressiveness), "1-5", NULL},
	{"--driver", GW_CTL_OPT_DRIVER, OPT_CHOICE, 0, 0, F(driver), "microvm|libvirt", NULL},
	{"--xml", GW_CTL_OPT_XML, OPT_STR, 0, 0, F(xml), "FILE", NULL},
	{"--postcopy", GW_CTL_OPT_POSTCOPY, OPT_FLAG, 0, 0, F(postcopy), NULL, NULL},
	{"--copy-storage", GW_CTL_OPT_COPY_STORAGE, OPT_FLAG, 0, 0, F(copy_storage), NULL, NULL},
	{"--kind", GW_CTL_OPT_KIND, OPT_CHOICE, 0, 0, F(kind),
	 "affinity|anti-affinity|vm-host|vm-not-host", NULL},
	{"--must", GW_CTL_OPT_MUST, OPT_FLAG, 0, 0, F(must), NULL, NULL},
	{"--should", GW_CTL_OPT_SHOULD, OPT_FLAG, 0, 0, F(should), NULL, NULL},
	{"--vms", GW_CTL_OPT_VMS, OPT_STR, 0, 0, F(vms), "VM,VM...", NULL},
	{"--hosts", GW_CTL_OPT_HOSTS, OPT_STR, 0, 0, F(hosts), "HOST,...", NULL},
	{"--rule", GW_CTL_OPT_RULE, OPT_STR, 0, 0, F(rules), "RULE,...", NULL},
	{"--failback", GW_CTL_OPT_FAILBACK, OPT_FLAG, 0, 0, F(failback), NULL, NULL},
};
#undef F
/* clang-format on */
#define N_OPTS (sizeof(opt_table) / sizeof(opt_table[0]))

/* clang-format off */
#define NAME1 1, {"NAME"}, {GW_CTL_POS_VM_NAME}
#define NOPOS 0, {NULL}, {GW_CTL_POS_WORD}
#define HOST1 1, {"HOST"}, {GW_CTL_POS_WORD}
#define RULE1 1, {"RULE"}, {GW_CTL_POS_VM_NAME}

/*
 * Every command. Adding one = an id in ctl_args.h, a line here and a handler in
 * ctl_main.c. The order here is the order of the help text.
 */
static const struct gw_ctl_cmd cmd_table[] = {
	{GW_CTL_CMD_VM_CREATE, {"vm", "create"}, GW_MSG_TYPE__GW_MSG_VM_CREATE, NAME1,
	 GW_CTL_OPT(IMAGE) | GW_CTL_OPT(MEMORY) | GW_CTL_OPT(VCPUS) | GW_CTL_OPT(CMDLINE) |
	 GW_CTL_OPT(DRIVER) | GW_CTL_OPT(XML), GW_CTL_OPT(IMAGE) | GW_CTL_OPT(MEMORY),
	 "define a VM: a micro-VM from a guest image (--image, --memory), or a libvirt domain "
	 "from its XML (--driver libvirt --xml FILE)"},
	{GW_CTL_CMD_VM_IMPORT, {"vm", "import"}, GW_MSG_TYPE__GW_MSG_VM_CREATE, NAME1, 0, 0,
	 "take over the existing libvirt domain NAME (its definition stays libvirt's)"},
	{GW_CTL_CMD_VM_START, {"vm", "start"}, GW_MSG_TYPE__GW_MSG_VM_START, NAME1, 0, 0,
	 "start a VM"},
	{GW_CTL_CMD_VM_STOP, {"vm", "stop"}, GW_MSG_TYPE__GW_MSG_VM_STOP, NAME1, 0, 0,
	 "stop a VM"},
	{GW_CTL_CMD_VM_PAUSE, {"vm", "pause"}, GW_MSG_TYPE__GW_MSG_VM_PAUSE, NAME1, 0, 0,
	 "pause a running VM"},
	{GW_CTL_CMD_VM_RESUME, {"vm", "resume"}, GW_MSG_TYPE__GW_MSG_VM_RESUME, NAME1, 0, 0,
	 "resume a paused VM"},
	{GW_CTL_CMD_VM_DELETE, {"vm", "delete"}, GW_MSG_TYPE__GW_MSG_VM_DELETE, NAME1, 0, 0,
	 "delete a VM that is not running"},
	{GW_CTL_CMD_VM_SHOW, {"vm", "show"}, GW_MSG_TYPE__GW_MSG_VM_SHOW, NAME1, 0, 0,
	 "show one VM"},
	{GW_CTL_CMD_VM_LIST, {"vm", "list"}, GW_MSG_TYPE__GW_MSG_VM_LIST, NOPOS, 0, 0,
	 "list VMs"},
	{GW_CTL_CMD_VM_CONSOLE, {"vm", "console"}, GW_MSG_TYPE__GW_MSG_VM_CONSOLE, NAME1,
	 GW_CTL_OPT(FOLLOW), 0, "print a VM's console output (--follow: until it stops)"},
	{GW_CTL_CMD_VM_MIGRATE, {"vm", "migrate"}, GW_MIG_MSG_TYPE__GW_MIG_VM_MIGRATE, NAME1,
	 GW_CTL_OPT(TO) | GW_CTL_OPT(STREAMS) | GW_CTL_OPT(DOWNTIME) | GW_CTL_OPT(BANDWIDTH) |
	 GW_CTL_OPT(MIG_TIMEOUT) | GW_CTL_OPT(TRANSPORT) | GW_CTL_OPT(POSTCOPY) |
	 GW_CTL_OPT(COPY_STORAGE), GW_CTL_OPT(TO),
	 "live-migrate a VM to the agent at ADDR:PORT, wait for the result (--timeout: "
	 "of the migration; --transport: of its data streams, default: the agent's)"},
	{GW_CTL_CMD_VM_MIGRATE_CANCEL, {"vm", "migrate-cancel"},
	 GW_MIG_MSG_TYPE__GW_MIG_VM_MIGRATE_CANCEL, NAME1, 0, 0,
	 "cancel a VM's running migration"},
	{GW_CTL_CMD_VM_MIGRATE_STATUS, {"vm", "migrate-status"},
	 GW_MIG_MSG_TYPE__GW_MIG_VM_MIGRATE_STATUS, NAME1, 0, 0,
	 "show a VM's current or last migration"},
	{GW_CTL_CMD_AGENT_INFO, {"agent", "info"}, GW_MSG_TYPE__GW_MSG_AGENT_INFO, NOPOS, 0, 0,
	 "show the agent's host"},
	{GW_CTL_CMD_CLUSTER_STATUS, {"cluster", "status"}, GW_CL_MSG_TYPE__GW_CL_API_STATUS, NOPOS,
	 0, 0, "quorum, members, acting member (coordinator)"},
	{GW_CTL_CMD_HOST_LIST, {"host", "list"}, GW_CL_MSG_TYPE__GW_CL_API_HOST_LIST, NOPOS, 0, 0,
	 "list the cluster's hosts (coordinator)"},
	{GW_CTL_CMD_CLUSTER_VM_CREATE, {"cluster", "vm", "create"},
	 GW_CL_MSG_TYPE__GW_CL_API_VM_CREATE, NAME1,
	 GW_CTL_OPT(DRIVER) | GW_CTL_OPT(IMAGE) | GW_CTL_OPT(MEMORY) | GW_CTL_OPT(VCPUS) |
	 GW_CTL_OPT(CMDLINE) | GW_CTL_OPT(XML) | GW_CTL_OPT(HA) | GW_CTL_OPT(PRIORITY) |
	 GW_CTL_OPT(ANTI_AFFINITY) | GW_CTL_OPT(HOST) | GW_CTL_OPT(RULE) | GW_CTL_OPT(FAILBACK), 0,
	 "define and start a cluster VM, placed by the coordinator (microvm: --image and "
	 "--memory; --driver libvirt: --xml, memory and vCPUs from the XML; --rule: it joins "
	 "these affinity rules; --failback: back to its first host when that host returns)"},
	{GW_CTL_CMD_CLUSTER_VM_IMPORT, {"cluster", "vm", "import"},
	 GW_CL_MSG_TYPE__GW_CL_API_VM_CREATE, NAME1,
	 GW_CTL_OPT(HOST) | GW_CTL_OPT(HA) | GW_CTL_OPT(PRIORITY) | GW_CTL_OPT(ANTI_AFFINITY) |
	 GW_CTL_OPT(RULE) | GW_CTL_OPT(FAILBACK), GW_CTL_OPT(HOST),
	 "make the existing libvirt domain NAME on HOST a cluster VM (its XML is kept), wait "
	 "until it runs"},
	{GW_CTL_CMD_CLUSTER_VM_LIST, {"cluster", "vm", "list"}, GW_CL_MSG_TYPE__GW_CL_API_VM_LIST,
	 NOPOS, 0, 0, "list the cluster's VMs with host and state"},
	{GW_CTL_CMD_CLUSTER_VM_MIGRATE, {"cluster", "vm", "migrate"},
	 GW_CL_MSG_TYPE__GW_CL_API_VM_MIGRATE, NAME1, GW_CTL_OPT(TO_HOST), GW_CTL_OPT(TO_HOST),
	 "live-migrate a cluster VM to another host, wait for the result"},
	{GW_CTL_CMD_CLUSTER_VM_MIGRATE_CANCEL, {"cluster", "vm", "migrate-cancel"},
	 GW_CL_MSG_TYPE__GW_CL_API_VM_MIGRATE_CANCEL, NAME1, 0, 0,
	 "cancel a cluster VM's running migration (from any host), wait until it ended"},
	{GW_CTL_CMD_CLUSTER_VM_STOP, {"cluster", "vm", "stop"}, GW_CL_MSG_TYPE__GW_CL_API_VM_ADMIN,
	 NAME1, 0, 0, "stop a cluster VM (never restarted by failover), wait until stopped"},
	{GW_CTL_CMD_CLUSTER_VM_START, {"cluster", "vm", "start"},
	 GW_CL_MSG_TYPE__GW_CL_API_VM_ADMIN, NAME1, 0, 0,
	 "start a stopped, failed or lost cluster VM (its host, else placed), wait for it"},
	{GW_CTL_CMD_CLUSTER_VM_DELETE, {"cluster", "vm", "delete"},
	 GW_CL_MSG_TYPE__GW_CL_API_VM_ADMIN, NAME1, 0, 0,
	 "delete a cluster VM that is not running, from the cluster and its host's agent"},
	{GW_CTL_CMD_HOST_MAINT_ENTER, {"host", "maintenance", "enter"},
	 GW_CL_MSG_TYPE__GW_CL_API_HOST_MAINT, HOST1, GW_CTL_OPT(NO_WAIT), 0,
	 "put a host in maintenance and migrate its VMs away (wait unless --no-wait)"},
	{GW_CTL_CMD_HOST_MAINT_EXIT, {"host", "maintenance", "exit"},
	 GW_CL_MSG_TYPE__GW_CL_API_HOST_MAINT, HOST1, 0, 0,
	 "take a host out of maintenance: VMs may be placed there again"},
	{GW_CTL_CMD_CLUSTER_BALANCE, {"cluster", "balance"}, GW_CL_MSG_TYPE__GW_CL_API_BALANCE, NOPOS,
	 GW_CTL_OPT(DRY_RUN) | GW_CTL_OPT(MAX_MOVES) | GW_CTL_OPT(THRESHOLD) |
	 GW_CTL_OPT(AGGRESSIVENESS), 0,
	 "balance CPU and memory load by live migrations worth their cost, one run at a time "
	 "cluster-wide (--aggressiveness 1-5, default the [balance] one; --threshold PCT: the "
	 "memory-only planner of earlier versions)"},
	{GW_CTL_CMD_CLUSTER_RULES_ADD, {"cluster", "rules", "add"}, GW_CL_MSG_TYPE__GW_CL_API_RULE,
	 RULE1, GW_CTL_OPT(KIND) | GW_CTL_OPT(MUST) | GW_CTL_OPT(SHOULD) | GW_CTL_OPT(VMS) |
	 GW_CTL_OPT(HOSTS), GW_CTL_OPT(KIND) | GW_CTL_OPT(VMS),
	 "add or replace an affinity rule: --must or --should; affinity and anti-affinity "
	 "name 2..16 VMs, vm-host and vm-not-host 1..16 VMs and 1..8 --hosts"},
	{GW_CTL_CMD_CLUSTER_RULES_LIST, {"cluster", "rules", "list"},
	 GW_CL_MSG_TYPE__GW_CL_API_RULE, NOPOS, 0, 0, "list the affinity rules"},
	{GW_CTL_CMD_CLUSTER_RULES_REMOVE, {"cluster", "rules", "remove"},
	 GW_CL_MSG_TYPE__GW_CL_API_RULE, RULE1, 0, 0, "remove an affinity rule"},
	{GW_CTL_CMD_EVENTS, {"events"}, GW_CL_MSG_TYPE__GW_CL_API_EVENTS, NOPOS, GW_CTL_OPT(FOLLOW),
	 0, "the cluster's event log (--follow: keep printing)"},
	{GW_CTL_CMD_HELP, {"help"}, 0, NOPOS, 0, 0, "show this help"},
	{GW_CTL_CMD_NONE, {NULL}, 0, NOPOS, 0, 0, NULL},
};
/* clang-format on */

const struct gw_ctl_cmd *gw_ctl_commands(void)
{
	return cmd_table;
}

const struct gw_ctl_cmd *gw_ctl_command(enum gw_ctl_cmd_id id)
{
	for (const struct gw_ctl_cmd *c = cmd_table; c->id != GW_CTL_CMD_NONE; c++)
		if (c->id == id)
			return c;
	return NULL;
}

static unsigned cmd_nwords(const struct gw_ctl_cmd *c)
{
	unsigned n = 0;
	while (n < GW_CTL_MAX_WORDS && c->words[n])
		n++;
	return n;
}

/* "vm create" into buf. */
static void cmd_words(const struct gw_ctl_cmd *c, char *buf, size_t len)
{
	size_t off = 0;
	buf[0] = '\0';
	for (unsigned i = 0; i < cmd_nwords(c) && off < len; i++)
		off += (size_t)snprintf(buf + off, len - off, "%s%s", i ? " " : "", c->words[i]);
}

static int seterr(struct gw_ctl_args *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int seterr(struct gw_ctl_args *a, const char *fmt, ...)
{
	va_list ap;
	if (a->err[0])
		return -EINVAL; /* keep the first error */
	va_start(ap, fmt);
	vsnprintf(a->err, sizeof(a->err), fmt, ap);
	va_end(ap);
	return -EINVAL;
}

int gw_ctl_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;
	if (!s || !*s)
		return -EINVAL;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return -EINVAL;
		unsigned d = (unsigned)(*p - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	if (v < min || v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

int gw_ctl_addr_check(const char *s)
{
	char host[INET6_ADDRSTRLEN + 1];
	unsigned char bin[sizeof(struct in6_addr)];
	const char *colon, *port;
	uint64_t v;
	size_t n;
	int af = AF_INET;

	if (!s || !*s)
		return -EINVAL;
	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (!close || close[1] != ':')
			return -EINVAL;
		s++;
		n = (size_t)(close - s);
		port = close + 2;
		af = AF_INET6;
	} else {
		colon = strchr(s, ':');
		if (!colon || strchr(colon + 1, ':'))
			return -EINVAL; /* bare IPv6 needs brackets */
		n = (size_t)(colon - s);
		port = colon + 1;
	}
	if (n == 0 || n >= sizeof(host))
		return -EINVAL;
	memcpy(host, s, n);
	host[n] = '\0';
	/* inet_pton: four decimal parts for IPv4 (no "1.2.3", no hex), no zone for IPv6 */
	if (inet_pton(af, host, bin) != 1)
		return -EINVAL;
	return gw_ctl_parse_uint(port, 1, 65535, &v) ? -EINVAL : 0;
}

int gw_ctl_name_check(const char *name)
{
	size_t n = name ? strlen(name) : 0;
	if (n == 0)
		return -EINVAL;
	if (n > GW_CTL_NAME_MAX)
		return -ENAMETOOLONG;
	if (name[0] == '.' || name[0] == '-')
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '.' || c == '-'))
			return -EINVAL;
	}
	return 0;
}

int gw_ctl_split_names(const char *list, const char *what, size_t max,
		       char (*buf)[GW_CTL_NAME_MAX + 1], char **out, char *err, size_t errlen)
{
	size_t n = 0;
	for (const char *p = list;; p++) {
		size_t len = strcspn(p, ",");
		if (n == max) {
			snprintf(err, errlen, "%s: more than %zu names in '%s'", what, max, list);
			return -E2BIG;
		}
		if (len == 0 || len > GW_CTL_NAME_MAX) {
			snprintf(err, errlen, "%s: %s name in '%s'", what,
				 len ? "too long a" : "an empty", list);
			return -EINVAL;
		}
		memcpy(buf[n], p, len);
		buf[n][len] = '\0';
		if (gw_ctl_name_check(buf[n])) {
			snprintf(err, errlen,
				 "%s: invalid name '%s' (use A-Z a-z 0-9 _ . -, not starting with "
				 "'.' or '-')",
				 what, buf[n]);
			return -EINVAL;
		}
		for (size_t i = 0; i < n; i++)
			if (strcmp(buf[i], buf[n]) == 0) {
				snprintf(err, errlen, "%s: '%s' is named twice", what, buf[n]);
				return -EINVAL;
			}
		out[n] = buf[n];
		n++;
		p += len;
		if (!*p)
			return (int)n;
	}
}

static const struct opt_def *opt_by_name(const char *name, size_t len, uint64_t allowed)
{
	for (size_t i = 0; i < N_OPTS; i++) {
		const struct opt_def *o = &opt_table[i];
		if (strlen(o->name) == len && strncmp(o->name, name, len) == 0 &&
		    (allowed & (1ull << o->id)))
			return o;
	}
	return NULL;
}

/* Store one option's value into the args struct according to its kind. */
static int opt_store(struct gw_ctl_args *a, const struct opt_def *o, const char *val)
{
	char *field = (char *)a + o->off;
	uint64_t v;
	int r;

	a->given |= 1ull << o->id;
	switch (o->kind) {
	case OPT_FLAG:
		if (o->off)
			*(bool *)field = true;
		return 0;
	case OPT_STR:
		if (!*val)
			return seterr(a, "empty value for %s", o->name);
		*(const char **)field = val;
		return 0;
	case OPT_ADDR:
		if (gw_ctl_addr_check(val))
			return seterr(a,
				      "invalid value for %s: '%s' (expected IPV4:PORT or "
				      "[IPV6]:PORT, port 1..65535)",
				      o->name, val);
		*(const char **)field = val;
		return 0;
	case OPT_CHOICE:
		for (const char *w = o->metavar; *w;) {
			size_t n = strcspn(w, "|");
			if (n == strlen(val) && strncmp(w, val, n) == 0) {
				*(const char **)field = val;
				return 0;
			}
			w += n + (w[n] == '|');
		}
		return seterr(a, "invalid value for %s: '%s' (expected %s)", o->name, val,
			      o->metavar);
	case OPT_U32:
	case OPT_SECONDS:
		r = gw_ctl_parse_uint(val, o->min, o->max, &v);
		if (r)
			return seterr(a,
				      "invalid value for %s: '%s' (expected an integer in %u..%u)",
				      o->name, val, o->min, o->max);
		if (o->kind == OPT_U32)
			*(uint32_t *)field = (uint32_t)v;
		else
			*(int *)field = (int)(v * 1000);
		return 0;
	}
	return -EINVAL;
}

/* The longest table command whose words start the positional list, or NULL. */
static const struct gw_ctl_cmd *match_cmd(char **pos, unsigned npos)
{
	const struct gw_ctl_cmd *best = NULL;
	unsigned best_n = 0;
	for (const struct gw_ctl_cmd *c = cmd_table; c->id != GW_CTL_CMD_NONE; c++) {
		unsigned n = cmd_nwords(c), i;
		if (n > npos || n <= best_n)
			continue;
		for (i = 0; i < n && strcmp(c->words[i], pos[i]) == 0; i++)
			;
		if (i == n) {
			best = c;
			best_n = n;
		}
	}
	return best;
}

/* Explain why pos[] names no command: a known group with a bad verb, or nothing known. */
static int unknown_cmd(struct gw_ctl_args *a, char **pos, unsigned npos)
{
	char subs[160] = "";
	size_t off = 0;
	for (const struct gw_ctl_cmd *c = cmd_table; c->id != GW_CTL_CMD_NONE; c++) {
		if (cmd_nwords(c) > 1 && strcmp(c->words[0], pos[0]) == 0 && off < sizeof(subs))
			off += (size_t)snprintf(subs + off, sizeof(subs) - off, "%s%s",
						off ? ", " : "", c->words[1]);
	}
	if (!off)
		return seterr(a, "unknown command '%s'", pos[0]);
	if (npos < 2)
		return seterr(a, "missing command after '%s' (one of: %s)", pos[0], subs);
	return seterr(a, "unknown command '%s %s' (expected one of: %s)", pos[0], pos[1], subs);
}

/* Check the positionals left after the command words against the command's list. */
static int check_positionals(struct gw_ctl_args *a, char **pos, unsigned n)
{
	const struct gw_ctl_cmd *c = a->def;
	char w[64];
	cmd_words(c, w, sizeof(w));
	if (n < c->npos)
		return seterr(a, "'%s': missing %s", w, c->pos_name[n]);
	if (n > c->npos)
		return seterr(a, "'%s': unexpected argument '%s'", w, pos[c->npos]);
	for (unsigned i = 0; i < n; i++) {
		a->pos[i] = pos[i];
		if (c->pos_kind[i] == GW_CTL_POS_VM_NAME) {
			int r = gw_ctl_name_check(pos[i]);
			const char *what =
			    strcmp(c->pos_name[i], "RULE") == 0 ? "rule name" : "VM name";
			if (r == -ENAMETOOLONG)
				return seterr(a, "invalid %s '%.*s...': longer than %d characters",
					      what, 20, pos[i], GW_CTL_NAME_MAX);
			if (r)
				return seterr(a,
					      "invalid %s '%s': use 1-%d of A-Z a-z 0-9 _ . -, "
					      "not starting with '.' or '-'",
					      what, pos[i], GW_CTL_NAME_MAX);
			if (i == 0)
				a->name = pos[i];
		} else if (!*pos[i]) {
			return seterr(a, "'%s': empty %s", w, c->pos_name[i]);
		}
	}
	return 0;
}

/*
 * cluster vm create: a micro-VM needs --image and --memory; a libvirt VM (--driver libvirt)
 * needs --xml and takes memory and vCPUs from it, so --image, --memory, --vcpus and
 * --cmdline are refused rather than silently ignored.
 */
static int check_driver_opts(struct gw_ctl_args *a, const char *w)
{
	bool libvirt = a->driver && strcmp(a->driver, "libvirt") == 0;
	const uint64_t not_libvirt =
	    GW_CTL_OPT(IMAGE) | GW_CTL_OPT(MEMORY) | GW_CTL_OPT(VCPUS) | GW_CTL_OPT(CMDLINE);
	if (!libvirt && (a->given & GW_CTL_OPT(XML)))
		return seterr(a, "'%s': --xml is for --driver libvirt", w);
	if (!libvirt && !(a->given & GW_CTL_OPT(IMAGE)))
		return seterr(a, "'%s': missing --image FILE", w);
	if (!libvirt && !(a->given & GW_CTL_OPT(MEMORY)))
		return seterr(a, "'%s': missing --memory MIB", w);
	if (libvirt && !(a->given & GW_CTL_OPT(XML)))
		return seterr(a, "'%s': missing --xml FILE (the domain XML)", w);
	for (size_t i = 0; libvirt && i < N_OPTS; i++)
		if (a->given & not_libvirt & (1ull << opt_table[i].id))
			return seterr(a,
				      "'%s': %s is not for --driver libvirt (the domain XML "
				      "says it)",
				      w, opt_table[i].name);
	return 0;
}

int gw_ctl_args_parse(int argc, char **argv, const char *env_socket, struct gw_ctl_args *a)
{
	struct {
		const char *name;
		size_t len;
		const char *val;
	} seen[argc > 0 ? argc : 1];
	char *pos[argc > 0 ? argc : 1];
	unsigned nseen = 0, npos = 0;
	bool opts_done = false;

	memset(a, 0, sizeof(*a));
	a->socket = env_socket && *env_socket ? env_socket : GW_CTL_DEFAULT_SOCKET;
	a->coord_socket = GW_CTL_DEFAULT_COORD_SOCKET;
	a->timeout_ms = GW_CTL_DEFAULT_TIMEOUT_S * 1000;
	a->vcpus = 1;
	a->streams = GW_CTL_MIG_STREAMS;
	a->downtime_ms = GW_CTL_MIG_DOWNTIME_MS;
	a->bandwidth_mibps = GW_CTL_MIG_BANDWIDTH_MIBPS;
	a->mig_timeout_s = GW_CTL_MIG_TIMEOUT_S;
	a->max_moves = GW_CTL_BALANCE_MAX_MOVES;
	a->threshold_pct = GW_CTL_BALANCE_THRESHOLD;

	/* Pass 1: split options from words; arity only, meaning once the command is known. */
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];
		if (opts_done || arg[0] != '-' || arg[1] == '\0') {
			pos[npos++] = argv[i];
			continue;
		}
		if (strcmp(arg, "--") == 0) {
			opts_done = true;
			continue;
		}
		if (strcmp(arg, "-h") == 0)
			arg = "--help";
		const char *eq = strchr(arg, '=');
		size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
		const struct opt_def *o = opt_by_name(arg, len, ~0ull);
		if (!o || arg[1] != '-') {
			seterr(a, "unknown option '%.*s'", (int)len, arg);
			continue;
		}
		const char *val = NULL;
		if (o->kind == OPT_FLAG) {
			if (eq) {
				seterr(a, "option %s takes no value", o->name);
				continue;
			}
		} else if (eq) {
			val = eq + 1;
		} else if (i + 1 < argc) {
			val = argv[++i];
		} else {
			seterr(a, "option %s needs a value (%s)", o->name, o->metavar);
			continue;
		}
		if (o->id == GW_CTL_OPT_JSON)
			a->json = true; /* known early so that errors come out as JSON too */
		seen[nseen].name = o->name;
		seen[nseen].len = len;
		seen[nseen].val = val;
		nseen++;
	}
	if (a->err[0])
		return -EINVAL;

	/* Pass 2: the command, then each option against what it allows. */
	bool help = false, version = false;
	for (unsigned i = 0; i < nseen; i++) {
		help |= strcmp(seen[i].name, "--help") == 0;
		version |= strcmp(seen[i].name, "--version") == 0;
	}
	a->def = npos ? match_cmd(pos, npos) : NULL;
	if (help || (a->def && a->def->id == GW_CTL_CMD_HELP)) {
		a->cmd = GW_CTL_CMD_HELP;
		a->help_for = a->def && a->def->id != GW_CTL_CMD_HELP ? a->def : NULL;
		a->def = NULL;
		return 0;
	}
	if (version) {
		a->cmd = GW_CTL_CMD_VERSION;
		a->def = NULL;
		return 0;
	}
	if (npos == 0)
		return seterr(a, "missing command");
	if (!a->def)
		return unknown_cmd(a, pos, npos);
	a->cmd = a->def->id;

	char w[64];
	cmd_words(a->def, w, sizeof(w));
	for (unsigned i = 0; i < nseen; i++) {
		const struct opt_def *o = opt_by_name(seen[i].name, seen[i].len, a->def->opts);
		if (!o)
			o = opt_by_name(seen[i].name, seen[i].len, GLOBAL_OPTS);
		if (!o)
			return seterr(a, "option %s is not valid for '%s'", seen[i].name, w);
		if (opt_store(a, o, seen[i].val))
			return -EINVAL;
	}
	unsigned nw = cmd_nwords(a->def);
	if (check_positionals(a, pos + nw, npos - nw))
		return -EINVAL;
	uint64_t required = a->def->required;
	/* a libvirt domain is defined by its XML: no image, no memory of its own */
	if (a->cmd == GW_CTL_CMD_VM_CREATE && a->driver && !strcmp(a->driver, "libvirt")) {
		if (a->given & (GW_CTL_OPT(IMAGE) | GW_CTL_OPT(MEMORY) | GW_CTL_OPT(CMDLINE)))
			return seterr(a,
				      "'%s --driver libvirt': the domain XML gives the VM's "
				      "shape (no --image, --memory or --cmdline)",
				      w);
		required = GW_CTL_OPT(XML);
	} else if (a->cmd == GW_CTL_CMD_VM_CREATE && (a->given & GW_CTL_OPT(XML))) {
		return seterr(a, "'%s': --xml goes with --driver libvirt", w);
	}
	uint64_t missing = required & ~a->given;
	for (size_t i = 0; i < N_OPTS; i++)
		if (missing & (1ull << opt_table[i].id))
			return seterr(a, "'%s': missing %s %s", w, opt_table[i].name,
				      opt_table[i].metavar);
	if (a->cmd == GW_CTL_CMD_CLUSTER_RULES_ADD && a->must == a->should)
		return seterr(a, "'%s': give one of --must (a hard rule) or --should (a soft one)",
			      w);
	return a->cmd == GW_CTL_CMD_CLUSTER_VM_CREATE ? check_driver_opts(a, w) : 0;
}

void gw_ctl_usage_line(const struct gw_ctl_cmd *c, char *buf, size_t len)
{
	size_t off;
	cmd_words(c, buf, len);
	off = strlen(buf);
	for (unsigned i = 0; i < c->npos && off < len; i++)
		off += (size_t)snprintf(buf + off, len - off, " %s", c->pos_name[i]);
	for (size_t i = 0; i < N_OPTS && off < len; i++) {
		const struct opt_def *o = &opt_table[i];
		uint64_t bit = 1ull << o->id;
		if (!(c->opts & bit))
			continue;
		bool req = c->required & bit;
		off += (size_t)snprintf(buf + off, len - off, " %s%s%s%s%s", req ? "" : "[",
					o->name, o->metavar ? " " : "",
					o->metavar ? o->metavar : "", req ? "" : "]");
	}
}

void gw_ctl_help_text(char *buf, size_t len)
{
	size_t off = 0;
	char line[200];

#define ADD(...)                                                                                   \
	do {                                                                                       \
		if (off < len)                                                                     \
			off += (size_t)snprintf(buf + off, len - off, __VA_ARGS__);                \
	} while (0)
	ADD("usage: godwitctl [--socket PATH] [--json] [--timeout S] COMMAND ...\n\n"
	    "commands:\n");
	for (const struct gw_ctl_cmd *c = cmd_table; c->id != GW_CTL_CMD_NONE; c++) {
		gw_ctl_usage_line(c, line, sizeof(line));
		if (strlen(line) > 40)
			ADD("  %s\n  %-40s %s\n", line, "", c->summary);
		else
			ADD("  %-40s %s\n", line, c->summary);
	}
	ADD("\nglobal options (before or after the command):\n");
	for (size_t i = 0; i < N_OPTS; i++) {
		const struct opt_def *o = &opt_table[i];
		if (!(GLOBAL_OPTS & (1ull << o->id)))
			continue;
		snprintf(line, sizeof(line), "%s%s%s", o->name, o->metavar ? " " : "",
			 o->metavar ? o->metavar : "");
		ADD("  %-16s %s\n", line, o->help);
	}
	ADD("\nexit status: 0 ok, 1 error from the agent or connection failure, 2 bad usage\n");
#undef ADD
}

int gw_ctl_image_resolve(const char *path, char **abs, char *err, size_t errlen)
{
	struct stat st;
	int r;
	char *p = realpath(path, NULL);

	*abs = NULL;
	if (!p) {
		r = -errno;
		goto fail;
	}
	if (stat(p, &st) < 0) {
		r = -errno;
		free(p);
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		r = S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
		free(p);
		goto fail;
	}
	*abs = p;
	return 0;
fail:
	snprintf(err, errlen, "image not found: %s: %s", path, strerror(-r));
	return r;
}

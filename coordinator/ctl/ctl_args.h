/* ctl_args.h -- godwitctl command line: command and option tables, parsed into one struct. */
#ifndef CTL_ARGS_H
#define CTL_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GW_CTL_DEFAULT_SOCKET	    "/run/godwit/agent.sock"
#define GW_CTL_DEFAULT_COORD_SOCKET "/run/godwit/coordinator.sock"
#define GW_CTL_DEFAULT_TIMEOUT_S    30
#define GW_CTL_NAME_MAX		    63
#define GW_CTL_MAX_WORDS	    4 /* command words, e.g. "host maintenance enter" */
#define GW_CTL_MAX_POS		    2 /* positional arguments after the command words */

/* vm migrate defaults (GwVmMigrateReq) */
#define GW_CTL_MIG_STREAMS	   2
#define GW_CTL_MIG_DOWNTIME_MS	   50
#define GW_CTL_MIG_BANDWIDTH_MIBPS 0 /* unlimited */
#define GW_CTL_MIG_TIMEOUT_S	   300

/* cluster balance defaults (GwClBalanceReq) */
#define GW_CTL_BALANCE_MAX_MOVES 3
#define GW_CTL_BALANCE_THRESHOLD 10 /* percentage points */

/* What the user asked for; one per entry of the command table (ctl_args.c). */
enum gw_ctl_cmd_id {
	GW_CTL_CMD_NONE = 0,
	GW_CTL_CMD_HELP,
	GW_CTL_CMD_VERSION,
	GW_CTL_CMD_VM_CREATE,
	GW_CTL_CMD_VM_START,
	GW_CTL_CMD_VM_STOP,
	GW_CTL_CMD_VM_PAUSE,
	GW_CTL_CMD_VM_RESUME,
	GW_CTL_CMD_VM_DELETE,
	GW_CTL_CMD_VM_SHOW,
	GW_CTL_CMD_VM_LIST,
	GW_CTL_CMD_VM_CONSOLE,
	GW_CTL_CMD_AGENT_INFO,
	GW_CTL_CMD_VM_MIGRATE,
	GW_CTL_CMD_VM_MIGRATE_CANCEL,
	GW_CTL_CMD_VM_MIGRATE_STATUS,
	GW_CTL_CMD_VM_IMPORT,
	GW_CTL_CMD_CLUSTER_STATUS, /* the rest talk to the coordinator */
	GW_CTL_CMD_HOST_LIST,
	GW_CTL_CMD_CLUSTER_VM_CREATE,
	GW_CTL_CMD_CLUSTER_VM_LIST,
	GW_CTL_CMD_EVENTS,
	GW_CTL_CMD_CLUSTER_VM_MIGRATE,
	GW_CTL_CMD_HOST_MAINT_ENTER,
	GW_CTL_CMD_HOST_MAINT_EXIT,
	GW_CTL_CMD_CLUSTER_BALANCE,
	GW_CTL_CMD_CLUSTER_VM_STOP,
	GW_CTL_CMD_CLUSTER_VM_START,
	GW_CTL_CMD_CLUSTER_VM_DELETE,
	GW_CTL_CMD_CLUSTER_VM_MIGRATE_CANCEL,
	GW_CTL_CMD_CLUSTER_VM_IMPORT,
	GW_CTL_CMD_CLUSTER_RULES_ADD,
	GW_CTL_CMD_CLUSTER_RULES_LIST,
	GW_CTL_CMD_CLUSTER_RULES_REMOVE,
	GW_CTL_CMD_COUNT
};

/* Options; a command allows a set of them (bit 1 << id). Global ones work everywhere. */
enum gw_ctl_opt_id {
	GW_CTL_OPT_SOCKET = 0,
	GW_CTL_OPT_JSON,
	GW_CTL_OPT_TIMEOUT,
	GW_CTL_OPT_HELP,
	GW_CTL_OPT_VERSION,
	GW_CTL_OPT_IMAGE,
	GW_CTL_OPT_MEMORY,
	GW_CTL_OPT_VCPUS,
	GW_CTL_OPT_CMDLINE,
	GW_CTL_OPT_FOLLOW,
	GW_CTL_OPT_TO,
	GW_CTL_OPT_STREAMS,
	GW_CTL_OPT_DOWNTIME,
	GW_CTL_OPT_BANDWIDTH,
	GW_CTL_OPT_MIG_TIMEOUT, /* `vm migrate --timeout S`: the migration's, not the reply's */
	GW_CTL_OPT_COORD_SOCKET,
	GW_CTL_OPT_HA,
	GW_CTL_OPT_PRIORITY,
	GW_CTL_OPT_ANTI_AFFINITY,
	GW_CTL_OPT_HOST,
	GW_CTL_OPT_TO_HOST,
	GW_CTL_OPT_NO_WAIT,
	GW_CTL_OPT_DRY_RUN,
	GW_CTL_OPT_MAX_MOVES,
	GW_CTL_OPT_THRESHOLD,
	GW_CTL_OPT_TRANSPORT,	   /* vm migrate: the data streams' transport */
	GW_CTL_OPT_DRIVER,	   /* vm create, cluster vm create: microvm|libvirt */
	GW_CTL_OPT_XML,		   /* vm create --driver libvirt: the domain XML file */
	GW_CTL_OPT_POSTCOPY,	   /* vm migrate (libvirt): allow post-copy */
	GW_CTL_OPT_COPY_STORAGE,   /* vm migrate (libvirt): copy non-shared disks */
	GW_CTL_OPT_AGGRESSIVENESS, /* cluster balance: 1..5 */
	GW_CTL_OPT_KIND,     /* cluster rules add: affinity|anti-affinity|vm-host|vm-not-host */
	GW_CTL_OPT_MUST,     /* cluster rules add: a hard rule */
	GW_CTL_OPT_SHOULD,   /* cluster rules add: a soft rule */
	GW_CTL_OPT_VMS,	     /* cluster rules add: VM1,VM2,... */
	GW_CTL_OPT_HOSTS,    /* cluster rules add: HOST1,... (vm-host kinds) */
	GW_CTL_OPT_RULE,     /* cluster vm create: join these rules, RULE1,... */
	GW_CTL_OPT_FAILBACK, /* cluster vm create: back to its preferred host */
	GW_CTL_OPT_COUNT
};
#define GW_CTL_OPT(id) (1ull << (GW_CTL_OPT_##id))
_Static_assert(GW_CTL_OPT_COUNT <= 64, "option sets are 64-bit masks");

/* How a positional argument is checked. */
enum gw_ctl_pos_kind {
	GW_CTL_POS_VM_NAME, /* 1..63 of [A-Za-z0-9_.-], not starting with '.' or '-' */
	GW_CTL_POS_WORD,    /* any non-empty string */
};

/* One command: its words, what it needs, and the request it maps to. */
struct gw_ctl_cmd {
	enum gw_ctl_cmd_id id;
	const char *words[GW_CTL_MAX_WORDS]; /* NULL-terminated if shorter */
	uint16_t msg_type;		     /* request GwMsgType, 0 when local */
	unsigned npos;
	const char *pos_name[GW_CTL_MAX_POS]; /* "NAME" in usage and errors */
	enum gw_ctl_pos_kind pos_kind[GW_CTL_MAX_POS];
	uint64_t opts;	   /* GW_CTL_OPT() bits allowed besides the global ones */
	uint64_t required; /* subset of opts that must be given */
	const char *summary;
};

/* The parsed command line. Strings point into argv. */
struct gw_ctl_args {
	const char *socket;
	const char *coord_socket; /* cluster commands; set by --coordinator-socket */
	bool json;
	int timeout_ms; /* 0 = wait forever */
	enum gw_ctl_cmd_id cmd;
	const struct gw_ctl_cmd *def;	   /* table entry of cmd, NULL for help/version */
	const struct gw_ctl_cmd *help_for; /* `CMD --help`: usage of that command */
	const char *pos[GW_CTL_MAX_POS];
	const char *name; /* pos[0] when it is a VM name */
	uint64_t given;	  /* GW_CTL_OPT() bits seen */
	/* option values */
	const char *image;
	uint32_t memory_mib;
	uint32_t vcpus;
	const char *cmdline;
	bool follow;
	const char *to; /* vm migrate: checked ADDR:PORT */
	uint32_t streams;
	uint32_t downtime_ms;
	uint32_t bandwidth_mibps;
	uint32_t mig_timeout_s;
	const char *transport; /* vm migrate: "tcp" or "rdma", NULL = the agent decides */
	const char *driver;    /* (cluster) vm create: "microvm" (NULL) or "libvirt" */
	const char *xml;       /* (cluster) vm create: path of the domain XML */
	bool postcopy, copy_storage;
	bool ha; /* cluster vm create */
	uint32_t priority;
	const char *anti_affinity;
	const char *host;
	const char *to_host; /* cluster vm migrate */
	bool no_wait;	     /* host maintenance enter */
	bool dry_run;	     /* cluster balance */
	uint32_t max_moves;
	uint32_t threshold_pct;
	uint32_t aggressiveness; /* cluster balance: 0 = the coordinator's [balance] level */
	const char *kind;	 /* cluster rules add */
	bool must, should;
	const char *vms;   /* cluster rules add: comma-separated */
	const char *hosts; /* cluster rules add: comma-separated */
	const char *rules; /* cluster vm create --rule: comma-separated */
	bool failback;	   /* cluster vm create / import */
	char err[256];	   /* usage error text, when parsing fails */
};

/*
 * Parse argv (argv[0] is the program). env_socket is $GODWIT_AGENT_SOCKET or NULL.
 * Pure: reads nothing but its arguments. Returns 0, or -EINVAL with the reason in
 * out->err; out->json is still set if --json was given, so errors can be reported in
 * the right format.
 */
int gw_ctl_args_parse(int argc, char **argv, const char *env_socket, struct gw_ctl_args *out);

/* 0 when name is a valid VM name, else -EINVAL (-ENAMETOOLONG when too long). */
int gw_ctl_name_check(const char *name);

/*
 * 0 when s is ADDR:PORT with ADDR an IPv4 dotted quad or a bracketed IPv6 address
 * ("[::1]:7000") and PORT in 1..65535; else -EINVAL. No host names.
 */
int gw_ctl_addr_check(const char *s);

/* Strict decimal unsigned parse (no sign, no spaces, no hex), range checked. 0/-EINVAL/-ERANGE. */
int gw_ctl_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out);

/*
 * Split a comma-separated list of names ("a,b,c") into up to max names, each checked with
 * gw_ctl_name_check(). Writes NUL-terminated copies into buf (each GW_CTL_NAME_MAX + 1
 * bytes) and pointers to them into out. Returns the count, or -EINVAL / -E2BIG with the
 * reason in err ("--vms: empty name in 'a,,b'"). what names the option in errors.
 */
int gw_ctl_split_names(const char *list, const char *what, size_t max,
		       char (*buf)[GW_CTL_NAME_MAX + 1], char **out, char *err, size_t errlen);

/* The command table, ended by an entry with id GW_CTL_CMD_NONE. */
const struct gw_ctl_cmd *gw_ctl_commands(void);
const struct gw_ctl_cmd *gw_ctl_command(enum gw_ctl_cmd_id id);

/* One usage line for cmd ("vm create NAME --image FILE --memory MIB [--vcpus N] ..."). */
void gw_ctl_usage_line(const struct gw_ctl_cmd *cmd, char *buf, size_t len);
/* Full help text, built from the tables. */
void gw_ctl_help_text(char *buf, size_t len);

/*
 * Make an image path absolute for GwVmCreateReq: realpath(3), and it must be a
 * regular file. Returns 0 with a malloc'd *abs, or -errno with err set to
 * "image not found: FILE: <strerror>".
 */
int gw_ctl_image_resolve(const char *path, char **abs, char *err, size_t errlen);

#endif

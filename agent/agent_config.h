/* agent_config.h -- godwit-agent configuration: defaults, config file, command-line flags. */
#ifndef GW_AGENT_CONFIG_H
#define GW_AGENT_CONFIG_H

#include <stddef.h>

#include "agent.h"

#define GW_DEFAULT_CONFIG	"/etc/godwit/godwit.conf"
#define GW_DEFAULT_STATE_DIR	"/var/lib/godwit"
#define GW_DEFAULT_AGENT_SOCKET "/run/godwit/agent.sock"
#define GW_DEFAULT_LISTEN	"0.0.0.0:7420"
#define GW_DEFAULT_CLUSTER_KEY	"/etc/godwit/cluster.key"

/* Fill cfg with built-in defaults (node = host name, vmm next to this executable). */
void gw_agent_config_defaults(struct gw_agent_config *cfg);
/* Apply the [agent] section of a config file. 0 or -errno with the reason in err. */
int gw_agent_config_load(struct gw_agent_config *cfg, const char *path, char *err, size_t errlen);
/*
 * Parse argv: --config FILE is read first (the default file only if it exists), then
 * every flag overrides it. Returns 0, 1 when --help/--version was handled (caller exits
 * 0), or -EINVAL with a message in err.
 */
int gw_agent_args_parse(struct gw_agent_config *cfg, int argc, char **argv, char *err,
			size_t errlen);
/* Check an "ADDR:PORT" string (IPv4 dotted quad or [IPv6]; port 0 = any); 0 or -EINVAL. */
int gw_parse_hostport(const char *s, char *host, size_t hostlen, unsigned *port);

#endif

/* fuzz_config_coord.c -- for fuzz_config: the coordinator's config callback. It is static in
 * coord_main.c, so this file includes that file (its main() renamed) and hands the callback
 * to the harness: the fuzzer runs the daemon's own code, not a copy. */
#define main gw_coord_main_not_used
#include "../../coordinator/coord_main.c"
#undef main

#include "fuzz_common.h"

int fuzz_coord_config(const char *text, char *err, size_t errlen);

/* Parse text as the coordinator's config file; check what it kept. */
int fuzz_coord_config(const char *text, char *err, size_t errlen)
{
	static struct gw_coord_config cfg;
	memset(&cfg, 0, sizeof(cfg));
	int r = gw_config_parse(text, "fuzz.conf", config_cb, &cfg, err, errlen);
	FUZZ_CHECK(FUZZ_TERMINATED(cfg.node) && FUZZ_TERMINATED(cfg.agent_socket));
	FUZZ_CHECK(FUZZ_TERMINATED(cfg.socket) && FUZZ_TERMINATED(cfg.state_dir));
	FUZZ_CHECK(FUZZ_TERMINATED(cfg.watchdog) && FUZZ_TERMINATED(cfg.metrics_listen));
	FUZZ_CHECK(cfg.n_fence <= GW_COORD_MAX_HOSTS);
	for (size_t i = 0; i < cfg.n_fence; i++) {
		const struct gw_coord_fence_dev *d = &cfg.fence[i];
		FUZZ_CHECK(FUZZ_TERMINATED(d->host) && FUZZ_TERMINATED(d->agent));
		FUZZ_CHECK(FUZZ_TERMINATED(d->params) && d->host[0]);
		for (size_t j = 0; j < i; j++) /* one device per host */
			FUZZ_CHECK(strcmp(cfg.fence[j].host, d->host) != 0);
		/* the fence agent's stdin: whole "key=value" lines, never "action" */
		size_t pl = strlen(d->params);
		FUZZ_CHECK(pl == 0 || d->params[pl - 1] == '\n' || r);
		FUZZ_CHECK(strncmp(d->params, "action=", 7) && !strstr(d->params, "\naction="));
	}
	if (!r && cfg.metrics_listen[0])
		FUZZ_CHECK(gw_metrics_addr_check(cfg.metrics_listen) == 0);
	if (!r && cfg.watchdog[0])
		FUZZ_CHECK(cfg.watchdog[0] == '/');
	return r;
}

/* migrate_dst.h -- what the destination engine's files share (migrate_dst.c, the engine;
 * migrate_dst_accept.c, its own listener for data streams over RDMA). */
#ifndef GW_MIGRATE_DST_H
#define GW_MIGRATE_DST_H

#include <stdbool.h>

#include "migrate.h"

/* How the data-stream listener (migrate_dst_accept.c) hands a joined stream to the engine
 * (migrate_dst.c), which passes it in: the listener calls nothing of the engine's directly. */
struct gw_mig_data_sink {
	/* Stream `stream` has joined already (called with conn_lock held). */
	bool (*taken_locked)(unsigned stream);
	/* Start receiving on data stream `stream` over c (the engine owns c from then on).
	 * placement: the source was told it may write guest RAM directly (PLACED batches). */
	int (*attach)(struct gw_migration *m, unsigned stream, struct gw_conn *c, bool placement);
};

/* For a transport other than TCP: listen for the data streams and accept them in a thread
 * of our own, handing each to sink; the port goes into rep. 0 (nothing to do for TCP), or
 * -errno with the reason in err. */
int gw_mig_data_listen(struct gw_migration *m, const struct gw_mig_data_sink *sink,
		       GwMigBeginReply *rep, char *err, size_t errlen);
/* Accept no more data connections: the listener's accept and a half-joined connection
 * return -ECANCELED. Any thread; idempotent. Call with conn_lock held. */
void gw_mig_data_stop_locked(struct gw_migration *m);
/* After the engine thread ended: join the accept thread, close the listener. */
void gw_mig_data_accept_join(struct gw_migration *m);

#endif

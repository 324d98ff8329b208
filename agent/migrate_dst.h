/* migrate_dst.h -- what the destination engine's files share (migrate_dst.c, the engine;
 * migrate_dst_accept.c, its own listener for data streams over RDMA). */
#ifndef GW_MIGRATE_DST_H
#define GW_MIGRATE_DST_H

#include <stdbool.h>

#include "migrate.h"

/* Start receiving on data stream `stream` over c (the engine owns c from then on).
 * placement: the source was told it may write guest RAM directly (PLACED batches). */
int gw_mig_dest_attach(struct gw_migration *m, unsigned stream, struct gw_conn *c, bool placement);
/* Stream `stream` has joined already (call with conn_lock held). */
bool gw_mig_dest_stream_taken(unsigned stream);

/* For a transport other than TCP: listen for the data streams and accept them in a thread
 * of our own; the port goes into rep. 0 (nothing to do for TCP), or -errno with the reason
 * in err. */
int gw_mig_data_listen(struct gw_migration *m, GwMigBeginReply *rep, char *err, size_t errlen);
/* Accept no more data connections: the listener's accept and a half-joined connection
 * return -ECANCELED. Any thread; idempotent. Call with conn_lock held. */
void gw_mig_data_stop_locked(struct gw_migration *m);
/* After the engine thread ended: join the accept thread, close the listener. */
void gw_mig_data_accept_join(struct gw_migration *m);

#endif

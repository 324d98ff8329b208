/* libvirt_int.h -- what the libvirt driver's files share. The driver runs Godwit VMs as
 * libvirt domains of the same name, through libvirt's C API on one connection
 * ([libvirt] uri):
 *   libvirt_conn.c     the connection, its event thread and reconnects with backoff;
 *   libvirt_vm.c       lifecycle, state mapping, stats, the domain XML;
 *   libvirt_migrate.c  live migration (virDomainMigrateToURI3, peer to peer), progress, cancel;
 *   libvirt_events.c   lifecycle events and the periodic tick, applied to the VM records;
 *   libvirt.c          the ops table.
 * Everything but the event thread and the migration threads runs in the agent's loop. */
#ifndef GW_LIBVIRT_INT_H
#define GW_LIBVIRT_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "driver.h"

#define GW_LV_BACKOFF_MIN_MS 500
#define GW_LV_BACKOFF_MAX_MS 10000
#define GW_LV_XML_MAX	     (256 * 1024)

/* One lifecycle event (or a connection-closed notice), as the event thread passes it on.
 * Small enough for an atomic pipe write. */
struct gw_lv_event {
	char name[GW_NAME_MAX]; /* "" for a connection event */
	int event;		/* virDomainEventType, or GW_LV_EV_* */
	int detail;
	unsigned long long mono_ms;
};

#define GW_LV_EV_CLOSED	  -1 /* the connection closed */
#define GW_LV_EV_MIG_DONE -2 /* a migration thread ended: wake the loop to settle it */

/* A live migration out of this host, driven by a thread of its own. */
struct gw_lv_mig {
	char name[GW_NAME_MAX];
	uint64_t id;
	char to[128]; /* the destination agent */
	struct gw_lv *lv;
	virDomainPtr dom;
	pthread_t thread;  /* virDomainMigrateToURI3 */
	pthread_t sampler; /* job statistics, post-copy, abort (libvirt_migrate.c) */
	bool sampler_up;
	unsigned long long started_ms, started_wall_ms;
	bool postcopy_allowed, postcopy_started;
	unsigned streams;
	/* written by the thread, read by the loop, under lock */
	pthread_mutex_t lock;
	pthread_cond_t wake; /* the sampler: the migration ended, or a cancel came */
	bool done, cancelled, abort_req, abort_req_new;
	int rc; /* of virDomainMigrateToURI3 */
	char error[256];
	unsigned long long ended_ms;
	/* what the loop saw */
	GwMigProgress last; /* last job stats sample (strings point to static text) */
	bool have_last;
	unsigned long long suspended_ms; /* SUSPENDED_MIGRATED event on the source */
	unsigned long long stopped_ms;	 /* STOPPED_MIGRATED */
	struct gw_lv_mig *next;
};

/* The last migration result per VM name, kept after the record is gone. */
struct gw_lv_result {
	char name[GW_NAME_MAX];
	GwMigProgress *pr;
	struct gw_lv_result *next;
};

struct gw_lv {
	struct gw_agent *ag;
	char uri[256];
	virConnectPtr conn; /* NULL while disconnected */
	int cb_id;	    /* lifecycle callback, -1 = none */
	int pipe_rd, pipe_wr;
	pthread_t ev_thread;
	bool ev_thread_up;
	atomic_bool closed; /* the close callback fired */
	unsigned long long next_try_ms, backoff_ms, down_since_ms;
	bool reattach; /* connected again: refresh every record */
	char why_down[256];
	struct gw_lv_mig *migs;
	struct gw_lv_result *results;
};

/* ---- libvirt_conn.c ---- */
int gw_lv_init(struct gw_agent *ag, struct gw_driver *d, char *err, size_t errlen);
void gw_lv_fini(struct gw_agent *ag, struct gw_driver *d);
bool gw_lv_available(struct gw_driver *d, char *err, size_t errlen);
int gw_lv_event_fd(struct gw_driver *d);
/* Queue an event for the agent's loop (any thread): it wakes and applies it. */
void gw_lv_push(struct gw_lv *lv, const char *name, int event, int detail);
/* Connect if disconnected and the backoff allows; returns true when it just connected. */
bool gw_lv_reconnect(struct gw_lv *lv);
/* The connection failed under us (an API call said so): drop it, reconnect later. */
void gw_lv_drop(struct gw_lv *lv, const char *why);
/* The driver of an agent (NULL when libvirt is not registered). */
struct gw_lv *gw_lv_of(struct gw_agent *ag);
/* vm's domain (virDomainFree it), or NULL with err set ("libvirtd not connected", "no
 * domain"). -ENOTCONN / -ENOENT through *rc when rc is not NULL. */
virDomainPtr gw_lv_domain(struct gw_lv *lv, const struct gw_vm *vm, int *rc, char *err,
			  size_t errlen);
/* libvirt's last error as one line. */
const char *gw_lv_errmsg(void);

/* ---- libvirt_vm.c ---- */
int gw_lv_validate(struct gw_agent *ag, struct gw_vm *vm, char *err, size_t errlen);
int gw_lv_define(struct gw_agent *ag, struct gw_vm *vm, char *err, size_t errlen);
int gw_lv_start(struct gw_agent *ag, struct gw_vm *vm, char *err, size_t errlen);
int gw_lv_stop(struct gw_agent *ag, struct gw_vm *vm, char *err, size_t errlen);
int gw_lv_pause(struct gw_agent *ag, struct gw_vm *vm, char *err, size_t errlen);
int gw_lv_resume(struct gw_agent *ag, struct gw_vm *vm, char *err, size_t errlen);
int gw_lv_undefine(struct gw_agent *ag, struct gw_vm *vm, char *err, size_t errlen);
int gw_lv_attach(struct gw_agent *ag, struct gw_vm *vm);
int gw_lv_watch_fd(struct gw_vm *vm);
void gw_lv_reap(struct gw_agent *ag, struct gw_vm *vm);
void gw_lv_console_path(const struct gw_vm *vm, char *buf, size_t len);
int gw_lv_stats(struct gw_agent *ag, struct gw_vm *vm, struct gw_vm_stats *out, char *err,
		size_t errlen);
/* Apply a domain's libvirt state to its record (a migrating record stays migrating). */
void gw_lv_apply_state(struct gw_agent *ag, struct gw_vm *vm, int state, int reason);
/* Memory (MiB) and vCPUs of a domain XML; 0 or -EINVAL with err set. name must match. */
int gw_lv_xml_shape(const char *xml, const char *name, unsigned *mem_mib, unsigned *vcpus,
		    char *err, size_t errlen);

/* ---- libvirt_migrate.c ---- */
int gw_lv_migrate_out(struct gw_agent *ag, struct gw_vm *vm, const GwVmMigrateReq *req, uint64_t id,
		      GwMigProgress **out, char *err, size_t errlen);
int gw_lv_migrate_in(struct gw_agent *ag, struct gw_vm *vm, struct gw_conn *c,
		     const GwMigBegin *begin, const uint8_t *raw, uint32_t rawlen, char *err,
		     size_t errlen);
int gw_lv_progress(struct gw_agent *ag, struct gw_vm *vm, GwMigProgress **out, char *err,
		   size_t errlen);
int gw_lv_cancel(struct gw_agent *ag, struct gw_vm *vm, GwMigProgress **out, char *err,
		 size_t errlen);
/* A migrating record: sample the job, switch to post-copy when due, settle the end. */
void gw_lv_poll(struct gw_agent *ag, struct gw_vm *vm);
/* The outgoing migration of name, or NULL. */
struct gw_lv_mig *gw_lv_mig_find(struct gw_lv *lv, const char *name);

/* ---- libvirt_events.c ---- */
void gw_lv_on_event(struct gw_agent *ag, struct gw_driver *d);
void gw_lv_tick(struct gw_agent *ag, struct gw_driver *d);

extern const struct gw_driver_ops gw_driver_libvirt;

#endif

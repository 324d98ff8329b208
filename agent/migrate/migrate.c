/* migrate.c -- migration engine pieces shared by both roles: phases, progress, messages,
 * and the convergence model. */
#include "migrate.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

#include "gw_frame.h"
#include "gw_fsutil.h"
#include "gw_log.h"

#define SUBSYS "migrate"

static const char *phase_names[] = {
    [GW_MIG_SETUP] = "setup",	[GW_MIG_ITERATE] = "iterate", [GW_MIG_SWITCHOVER] = "switchover",
    [GW_MIG_COMMIT] = "commit", [GW_MIG_DONE] = "done",	      [GW_MIG_ABORTED] = "aborted",
};

const char *gw_mig_phase_name(enum gw_mig_phase p)
{
	return (unsigned)p <= GW_MIG_ABORTED ? phase_names[p] : "?";
}

const char *gw_mig_result_name(int result)
{
	switch (result) {
	case 0:
		return "running";
	case 1:
		return "completed";
	case -2:
		return "cancelled";
	default:
		return "failed";
	}
}

/* CPU time of this process so far, user + system, in microseconds. */
static uint64_t cpu_now_us(void)
{
	struct rusage ru;
	if (getrusage(RUSAGE_SELF, &ru))
		return 0;
	return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000u +
	       (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

void gw_mig_init(struct gw_migration *m, enum gw_mig_role role)
{
	memset(m, 0, sizeof(*m));
	m->role = role;
	pthread_mutex_init(&m->lock, NULL);
	pthread_mutex_init(&m->conn_lock, NULL);
	pthread_cond_init(&m->conn_cond, NULL);
	m->done_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	m->st.phase = GW_MIG_SETUP;
	m->st.started_ms = gw_now_mono_ms();
	m->cpu_start_us = cpu_now_us();
}

/* The one place phases change; refuses transitions the table above does not have. */
int gw_mig_set_phase(struct gw_migration *m, enum gw_mig_phase to)
{
	static const unsigned char allowed[6][6] = {
	    /* to:           SETUP ITER SWITCH COMMIT DONE ABORT */
	    [GW_MIG_SETUP] = {0, 1, 0, 0, 0, 1},
	    [GW_MIG_ITERATE] = {0, 0, 1, 0, 0, 1},
	    [GW_MIG_SWITCHOVER] = {0, 0, 0, 1, 0, 1},
	    [GW_MIG_COMMIT] = {0, 0, 0, 0, 1, 0},
	    [GW_MIG_DONE] = {0},
	    [GW_MIG_ABORTED] = {0},
	};
	pthread_mutex_lock(&m->lock);
	enum gw_mig_phase from = m->st.phase;
	int ok = allowed[from][to];
	if (ok) {
		m->st.phase = to;
		if (to == GW_MIG_DONE) {
			m->st.result = 1;
			m->st.ended_ms = gw_now_mono_ms();
		}
		if (to == GW_MIG_ABORTED && m->st.result == 0)
			m->st.result = -1;
		if (to == GW_MIG_ABORTED)
			m->st.ended_ms = gw_now_mono_ms();
		if (to == GW_MIG_DONE || to == GW_MIG_ABORTED)
			m->st.cpu_ms = (cpu_now_us() - m->cpu_start_us) / 1000;
	}
	pthread_mutex_unlock(&m->lock);
	if (!ok) {
		gw_err(SUBSYS, "%s: refused phase change %s -> %s", m->name,
		       gw_mig_phase_name(from), gw_mig_phase_name(to));
		return -EINVAL;
	}
	gw_debug(SUBSYS, "%s: phase %s -> %s", m->name, gw_mig_phase_name(from),
		 gw_mig_phase_name(to));
	return 0;
}

/* Record why the migration ends (first reason wins) and the result. */
void gw_mig_fail(struct gw_migration *m, int result, const char *fmt, ...)
{
	va_list ap;
	pthread_mutex_lock(&m->lock);
	if (!m->st.error[0]) {
		va_start(ap, fmt);
		vsnprintf(m->st.error, sizeof(m->st.error), fmt, ap);
		va_end(ap);
		m->st.result = result;
	}
	pthread_mutex_unlock(&m->lock);
}

const char *gw_mig_transport(const struct gw_migration *m)
{
	return m->params.transport[0] ? m->params.transport : "tcp";
}

void gw_mig_get_stats(struct gw_migration *m, struct gw_mig_stats *out)
{
	pthread_mutex_lock(&m->lock);
	*out = m->st;
	pthread_mutex_unlock(&m->lock);
}

void gw_mig_to_progress(const struct gw_migration *m, const struct gw_mig_stats *st,
			GwMigProgress *p)
{
	gw_mig_progress__init(p);
	p->name = (char *)m->name;
	/* the result is only final once the phase is: the error may still be refined (e.g.
	 * the destination's own reason read after a broken link) until then */
	p->result = (char *)(st->phase == GW_MIG_DONE || st->phase == GW_MIG_ABORTED
				 ? gw_mig_result_name(st->result)
				 : "running");
	p->phase = (char *)gw_mig_phase_name(st->phase);
	p->error = st->error[0] ? (char *)st->error : NULL;
	p->peer = (char *)m->peer;
	p->role = m->role == GW_MIG_SOURCE ? "source" : "destination";
	uint64_t end = st->ended_ms ? st->ended_ms : gw_now_mono_ms();
	uint64_t total = end - st->started_ms;
#define SET(f, v)                                                                                  \
	do {                                                                                       \
		p->has_##f = 1;                                                                    \
		p->f = (v);                                                                        \
	} while (0)
	SET(round, st->round);
	SET(total_ms, total);
	SET(downtime_ms, st->downtime_ms);
	SET(bytes_transferred, st->bytes);
	SET(pages_sent, st->pages_sent);
	SET(pages_zero, st->pages_zero);
	if (m->role == GW_MIG_SOURCE)
		SET(pages_resent, st->pages_resent);
	SET(pages_remaining, st->pages_remaining);
	SET(pages_total, st->pages_total);
	SET(dirty_rate_pps, st->dirty_rate_pps);
	SET(throughput_mbps, total ? (double)st->bytes * 8.0 / 1e6 / ((double)total / 1000.0) : 0);
	SET(throttle_pct, st->throttle_pct);
	SET(expected_downtime_ms, st->expected_downtime_ms);
	SET(migration_id, m->id);
#undef SET
	p->transport = (char *)gw_mig_transport(m);
}

int gw_mig_send(struct gw_conn *c, uint16_t type, const ProtobufCMessage *msg)
{
	uint8_t hdr[GW_FRAME_HDR_LEN], stackbuf[1024];
	size_t len = protobuf_c_message_get_packed_size(msg);
	if (len > GW_FRAME_MAX_PAYLOAD)
		return -EMSGSIZE;
	uint8_t *buf = len <= sizeof(stackbuf) ? stackbuf : malloc(len);
	if (!buf)
		return -ENOMEM;
	protobuf_c_message_pack(msg, buf);
	gw_frame_hdr_encode(hdr, type, (uint32_t)len);
	struct iovec iov[2] = {{hdr, sizeof(hdr)}, {buf, len}};
	int r = gw_conn_sendv(c, iov, len ? 2 : 1);
	if (buf != stackbuf)
		free(buf);
	return r;
}

int gw_mig_recv(struct gw_conn *c, uint16_t *type, uint8_t **payload, uint32_t *len)
{
	uint8_t hdr[GW_FRAME_HDR_LEN];
	struct gw_frame f;
	int r = gw_conn_recv(c, hdr, sizeof(hdr));
	if (r)
		return r;
	/* parse the header alone: a complete frame needs the payload, so ask for 0 bytes */
	uint32_t plen =
	    ((uint32_t)hdr[0] << 24) | ((uint32_t)hdr[1] << 16) | ((uint32_t)hdr[2] << 8) | hdr[3];
	(void)f;
	if (plen > GW_FRAME_MAX_PAYLOAD)
		return -EMSGSIZE;
	*type = (uint16_t)((hdr[4] << 8) | hdr[5]);
	*len = plen;
	*payload = NULL;
	if (!plen)
		return 0;
	uint8_t *buf = malloc(plen);
	if (!buf)
		return -ENOMEM;
	r = gw_conn_recv(c, buf, plen);
	if (r) {
		free(buf);
		return r;
	}
	*payload = buf;
	return 0;
}

double gw_mig_predict_downtime_ms(uint64_t dirty_pages, double bandwidth_bps)
{
	/* pages left + a fixed cost for vCPU state, the acknowledgement and the resume */
	const double fixed_ms = 1.0;
	if (bandwidth_bps <= 0)
		return dirty_pages ? 1e12 : fixed_ms;
	return (double)dirty_pages * 4096.0 * 1000.0 / bandwidth_bps + fixed_ms;
}

unsigned gw_mig_next_throttle(unsigned cur, uint64_t prev_remaining, uint64_t remaining,
			      double predicted_ms, unsigned limit_ms)
{
	static const unsigned steps[] = {20, 40, 60, 80, 90, 95, 99};
	if (predicted_ms <= (double)limit_ms)
		return cur;
	/* still shrinking by a tenth a round: pre-copy is getting there by itself */
	if (prev_remaining && remaining * 10 < prev_remaining * 9)
		return cur;
	for (unsigned i = 0; i < sizeof(steps) / sizeof(steps[0]); i++)
		if (steps[i] > cur)
			return steps[i];
	return cur;
}

void gw_mig_boot_id(char *buf, size_t len)
{
	buf[0] = 0;
	int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	ssize_t n = read(fd, buf, len - 1);
	close(fd);
	if (n <= 0) {
		buf[0] = 0;
		return;
	}
	buf[n] = 0;
	char *nl = strchr(buf, '\n');
	if (nl)
		*nl = 0;
}

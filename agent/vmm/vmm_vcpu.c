/* vmm_vcpu.c -- vCPU threads: the run loop over the backend (vmm_backend.h), the port
 * handlers of the guest ABI, the console, pause/resume/stop. */
#include "vmm_internal.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <time.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gw_fsutil.h"
#include "gw_log.h"

#define SUBSYS "vcpu"

/* What the run loop does after an exit was handled. */
enum vcpu_action {
	VCPU_CONTINUE, /* run guest code again */
	VCPU_STOP,     /* this vCPU stopped (vCPU exit port) */
	VCPU_END,      /* the VM reached STOPPED or CRASHED */
};

/* The vCPU this thread runs: a kick (or throttle timer) signal makes its backend leave guest
 * code, even when it lands just before the next run. */
static __thread struct gw_vcpu *kick_vcpu;

static void kick_handler(int sig)
{
	(void)sig;
	if (kick_vcpu)
		kick_vcpu->vmm->be->vcpu_kick_async(kick_vcpu);
}

static void install_kick_handler(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = kick_handler;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0; /* no SA_RESTART: KVM_RUN and waitpid must return -EINTR */
	sigaction(GW_VCPU_KICK_SIGNAL, &sa, NULL);
}

static void notify(struct gw_vmm *vmm)
{
	uint64_t one = 1;
	ssize_t n = write(vmm->event_fd, &one, sizeof(one));

	(void)n; /* EAGAIN only when the counter is saturated: already readable */
}

/* ---- console ---- */

/* The console log passed its cap: keep its newest half (a ring of the last bytes). Needs a
 * regular file opened read-write; otherwise the cap only counts. */
static void console_cut_locked(struct gw_vmm *vmm)
{
	size_t keep = vmm->console_max / 2;
	char *buf = malloc(keep ? keep : 1);
	struct stat sb;
	ssize_t n;

	if (!buf || fstat(vmm->console_fd, &sb) < 0 || !S_ISREG(sb.st_mode))
		goto out;
	if ((size_t)sb.st_size < keep)
		keep = (size_t)sb.st_size;
	n = pread(vmm->console_fd, buf, keep, sb.st_size - (off_t)keep);
	if (n != (ssize_t)keep || ftruncate(vmm->console_fd, 0) < 0)
		goto out;
	vmm->console_dropped += (uint64_t)sb.st_size - keep;
	vmm->console_written = 0;
	if (keep && write(vmm->console_fd, buf, keep) == (ssize_t)keep)
		vmm->console_written = keep;
	gw_warn(SUBSYS,
		"%s: console log over its cap of %zu bytes: kept the newest %zu "
		"(%llu bytes dropped so far)",
		vmm->name, vmm->console_max, keep, (unsigned long long)vmm->console_dropped);
out:
	free(buf);
}

static void console_write_locked(struct gw_vmm *vmm)
{
	size_t off = 0;

	if (vmm->console_max && vmm->console_fd >= 0 &&
	    vmm->console_written + vmm->console_len > vmm->console_max)
		console_cut_locked(vmm);
	while (off < vmm->console_len && vmm->console_fd >= 0) {
		ssize_t n = write(vmm->console_fd, vmm->console_buf + off, vmm->console_len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			gw_warn(SUBSYS, "%s: console write: %s; %zu bytes dropped", vmm->name,
				n < 0 ? strerror(errno) : "short write", vmm->console_len - off);
			break;
		}
		off += (size_t)n;
		vmm->console_written += (size_t)n;
	}
	vmm->console_len = 0;
}

uint64_t gw_vmm_console_dropped(struct gw_vmm *vmm)
{
	uint64_t n;

	pthread_mutex_lock(&vmm->console_lock);
	n = vmm->console_dropped;
	pthread_mutex_unlock(&vmm->console_lock);
	return n;
}

void gw_vmm_console_flush(struct gw_vmm *vmm)
{
	pthread_mutex_lock(&vmm->console_lock);
	console_write_locked(vmm);
	pthread_mutex_unlock(&vmm->console_lock);
}

/* Append guest console bytes; written out on newline or when the buffer fills. */
static void console_put(struct gw_vmm *vmm, const uint8_t *data, size_t len)
{
	bool newline = false;

	pthread_mutex_lock(&vmm->console_lock);
	for (size_t i = 0; i < len; i++) {
		if (vmm->console_len == sizeof(vmm->console_buf))
			console_write_locked(vmm);
		vmm->console_buf[vmm->console_len++] = (char)data[i];
		newline |= data[i] == '\n';
	}
	if (newline)
		console_write_locked(vmm);
	pthread_mutex_unlock(&vmm->console_lock);
}

/* ---- state transitions (vmm->lock held) ---- */

static void set_state_locked(struct gw_vmm *vmm, enum gw_vmm_state s)
{
	uint64_t now = gw_now_mono_ns();

	if (vmm->state == GW_VMM_RUNNING && s != GW_VMM_RUNNING)
		vmm->runtime_ns += now - vmm->run_since_ns;
	if (s == GW_VMM_RUNNING && vmm->state != GW_VMM_RUNNING)
		vmm->run_since_ns = now;
	vmm->state = s;
}

static bool state_is_final(enum gw_vmm_state s)
{
	return s == GW_VMM_STOPPED || s == GW_VMM_CRASHED;
}

/* Make every vCPU thread leave guest code soon (the backend's kick), and wake the ones
 * sleeping in a throttle slice or port 0x503 (the broadcast). */
void gw_vcpu_kick_all_locked(struct gw_vmm *vmm)
{
	for (unsigned i = 0; i < vmm->nr_vcpus; i++) {
		struct gw_vcpu *vcpu = &vmm->vcpus[i];

		if (!vcpu->thread_started || vcpu->exited)
			continue;
		vmm->be->vcpu_kick(vcpu);
	}
	pthread_cond_broadcast(&vmm->cond);
}

/* Enter STOPPED or CRASHED (once) and make every vCPU thread leave its loop. */
static bool finish_locked(struct gw_vmm *vmm, enum gw_vmm_state s, int status, const char *reason)
{
	if (state_is_final(vmm->state))
		return false;
	set_state_locked(vmm, s);
	vmm->exit_status = status;
	snprintf(vmm->reason, sizeof(vmm->reason), "%s", reason);
	vmm->exit_req = true;
	gw_vcpu_kick_all_locked(vmm);
	pthread_cond_broadcast(&vmm->cond);
	if (s == GW_VMM_CRASHED)
		gw_err(SUBSYS, "%s: VM crashed: %s", vmm->name, reason);
	else
		gw_info(SUBSYS, "%s: VM stopped (status %d): %s", vmm->name, status, reason);
	return true;
}

/* A guest-caused end of the VM, from a vCPU thread. */
static enum vcpu_action guest_finish(struct gw_vcpu *vcpu, enum gw_vmm_state s, int status,
				     const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static enum vcpu_action guest_finish(struct gw_vcpu *vcpu, enum gw_vmm_state s, int status,
				     const char *fmt, ...)
{
	struct gw_vmm *vmm = vcpu->vmm;
	char reason[GW_VMM_REASON_MAX];
	bool changed;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&vmm->lock);
	changed = finish_locked(vmm, s, status, reason);
	pthread_mutex_unlock(&vmm->lock);
	if (changed) {
		gw_vmm_console_flush(vmm);
		notify(vmm);
	}
	return VCPU_END;
}

/* ---- exits ---- */

static unsigned long long exit_rip(struct gw_vcpu *vcpu, const struct gw_vcpu_exit *ex)
{
	if (ex->rip == ~0ull && vcpu->vmm->be->vcpu_rip)
		return vcpu->vmm->be->vcpu_rip(vcpu);
	return ex->rip;
}

/* An idle guest sleeps instead of spinning (port 0x503): off the CPU for ms milliseconds,
 * cut short by a pause or stop request (the cond is broadcast on those) so that pausing
 * never waits for a sleeper. */
static void vcpu_sleep(struct gw_vcpu *vcpu, unsigned ms)
{
	struct gw_vmm *vmm = vcpu->vmm;
	struct timespec dl;
	clock_gettime(CLOCK_MONOTONIC, &dl);
	dl.tv_nsec += (long)(ms % 1000) * 1000000L;
	dl.tv_sec += ms / 1000 + dl.tv_nsec / 1000000000L;
	dl.tv_nsec %= 1000000000L;
	pthread_mutex_lock(&vmm->lock);
	while (!vmm->pause_req && !vmm->exit_req &&
	       pthread_cond_timedwait(&vmm->cond, &vmm->lock, &dl) != ETIMEDOUT)
		;
	pthread_mutex_unlock(&vmm->lock);
}

/* The ports of the guest ABI (vmm.h). */
static enum vcpu_action handle_io(struct gw_vcpu *vcpu, struct gw_vcpu_exit *ex)
{
	uint8_t *data = ex->data;
	size_t len = (size_t)ex->size * ex->count;

	if (ex->in) {
		if (ex->port == GW_PORT_CONSOLE_LSR) {
			memset(data, 0x60, len); /* transmitter empty and idle */
			return VCPU_CONTINUE;
		}
		return guest_finish(vcpu, GW_VMM_CRASHED, 0,
				    "vcpu %u: read from unknown port 0x%x at rip 0x%llx",
				    vcpu->index, ex->port, exit_rip(vcpu, ex));
	}
	switch (ex->port) {
	case GW_PORT_CONSOLE:
		if (ex->size != 1)
			break;
		console_put(vcpu->vmm, data, len);
		return VCPU_CONTINUE;
	case GW_PORT_EXIT_VM:
		return guest_finish(vcpu, GW_VMM_STOPPED, data[0], "vcpu %u wrote exit status %u",
				    vcpu->index, data[0]);
	case GW_PORT_EXIT_VCPU:
		return VCPU_STOP;
	case GW_PORT_SLEEP:
		vcpu_sleep(vcpu, data[0]);
		return VCPU_CONTINUE;
	}
	return guest_finish(vcpu, GW_VMM_CRASHED, 0,
			    "vcpu %u: write to unknown port 0x%x at rip 0x%llx", vcpu->index,
			    ex->port, exit_rip(vcpu, ex));
}

/* The one place where exits are dispatched. */
static enum vcpu_action handle_exit(struct gw_vcpu *vcpu, struct gw_vcpu_exit *ex)
{
	switch (ex->kind) {
	case GW_EXIT_IO:
		return handle_io(vcpu, ex);
	case GW_EXIT_CRASH:
		return guest_finish(vcpu, GW_VMM_CRASHED, 0, "vcpu %u: %s at rip 0x%llx",
				    vcpu->index, ex->reason, exit_rip(vcpu, ex));
	case GW_EXIT_INTR:
		break;
	}
	return VCPU_CONTINUE;
}

/* ---- the run loop ---- */

/* Called with vmm->lock held; returns with it held. The backend first makes the vCPU's
 * state readable by gw_vmm_vcpu_save from another thread. */
static void vcpu_park_locked(struct gw_vcpu *vcpu)
{
	struct gw_vmm *vmm = vcpu->vmm;

	if (vmm->be->vcpu_park && vmm->be->vcpu_park(vcpu) < 0)
		gw_err(SUBSYS, "%s: vcpu %u: cannot read its state while parking", vmm->name,
		       vcpu->index);
	vcpu->parked = true;
	vmm->nr_parked++;
	pthread_cond_broadcast(&vmm->cond);
	while (vmm->pause_req && !vmm->exit_req)
		pthread_cond_wait(&vmm->cond, &vmm->lock);
	vcpu->parked = false;
	vmm->nr_parked--;
}

/* This vCPU wrote the vCPU exit port (vmm->lock held): the VM stops when it was the last. */
static void vcpu_stopped_locked(struct gw_vcpu *vcpu)
{
	struct gw_vmm *vmm = vcpu->vmm;

	if (vmm->be->vcpu_park && vmm->be->vcpu_park(vcpu) < 0)
		gw_err(SUBSYS, "%s: vcpu %u: cannot read its state after it stopped", vmm->name,
		       vcpu->index);
	vcpu->stopped = true;
	vmm->nr_stopped++;
	gw_info(SUBSYS, "%s: vcpu %u stopped itself (%u of %u stopped)", vmm->name, vcpu->index,
		vmm->nr_stopped, vmm->nr_vcpus);
	if (vmm->nr_stopped == vmm->nr_vcpus &&
	    finish_locked(vmm, GW_VMM_STOPPED, 0, "all vCPUs stopped")) {
		pthread_mutex_unlock(&vmm->lock);
		gw_vmm_console_flush(vmm);
		notify(vmm);
		pthread_mutex_lock(&vmm->lock);
	}
}

/* Run guest code once (lock dropped) and handle the exit; the action for the loop. */
static enum vcpu_action vcpu_step(struct gw_vcpu *vcpu, bool *io_pending)
{
	const struct gw_vmm_backend *be = vcpu->vmm->be;
	struct gw_vcpu_exit ex;
	enum vcpu_action act;
	int r;

	memset(&ex, 0, sizeof(ex));
	r = be->vcpu_run(vcpu, &ex);
	if (r < 0)
		return guest_finish(vcpu, GW_VMM_CRASHED, 0, "vcpu %u: running guest code (%s): %s",
				    vcpu->index, be->name, strerror(-r));
	act = handle_exit(vcpu, &ex);
	if (ex.kind == GW_EXIT_IO && act != VCPU_END)
		*io_pending = be->vcpu_io_done(vcpu, &ex);
	return act;
}

static void *vcpu_thread(void *arg)
{
	struct gw_vcpu *vcpu = arg;
	struct gw_vmm *vmm = vcpu->vmm;
	const struct gw_vmm_backend *be = vmm->be;
	bool io_pending = false; /* last I/O exit completes on the next run (KVM) */
	bool vm_over = true;
	char tname[16], err[200];
	sigset_t set;

	snprintf(tname, sizeof(tname), "vcpu%u", vcpu->index);
	pthread_setname_np(pthread_self(), tname);
	kick_vcpu = vcpu;
	if (be->vcpu_thread_init && be->vcpu_thread_init(vcpu, err, sizeof(err)) < 0)
		guest_finish(vcpu, GW_VMM_CRASHED, 0, "vcpu %u: %s", vcpu->index, err);
	sigemptyset(&set);
	sigaddset(&set, GW_VCPU_KICK_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);

	pthread_mutex_lock(&vmm->lock);
	for (;;) {
		enum vcpu_action act;

		if (vmm->exit_req)
			break;
		if (vmm->pause_req && io_pending) {
			pthread_mutex_unlock(&vmm->lock);
			be->vcpu_flush_io(vcpu);
			pthread_mutex_lock(&vmm->lock);
			io_pending = false;
			continue;
		}
		if (vmm->pause_req) {
			vcpu_park_locked(vcpu);
			continue;
		}
		if (be->vcpu_arm)
			be->vcpu_arm(vcpu);
		if (gw_throttle_vcpu_locked(vcpu))
			continue;
		pthread_mutex_unlock(&vmm->lock);
		act = vcpu_step(vcpu, &io_pending);
		pthread_mutex_lock(&vmm->lock);
		if (act == VCPU_END)
			break;
		if (act == VCPU_STOP) {
			vcpu_stopped_locked(vcpu);
			vm_over = vmm->exit_req;
			break;
		}
	}
	vcpu->exited = true;
	vmm->nr_live--;
	pthread_cond_broadcast(&vmm->cond);
	pthread_mutex_unlock(&vmm->lock);
	gw_throttle_vcpu_exit(vcpu);
	if (be->vcpu_thread_exit)
		be->vcpu_thread_exit(vcpu, vm_over);
	kick_vcpu = NULL;
	return NULL;
}

int gw_vmm_start(struct gw_vmm *vmm)
{
	sigset_t set, old;
	int r = 0;

	pthread_mutex_lock(&vmm->lock);
	if (vmm->state != GW_VMM_CREATED || vmm->nr_stopped >= vmm->nr_vcpus) {
		pthread_mutex_unlock(&vmm->lock);
		return -EINVAL;
	}
	for (unsigned i = 0; i < vmm->nr_vcpus && vmm->incoming; i++) {
		if (!vmm->vcpus[i].restored) {
			gw_err(SUBSYS, "%s: incoming VM started before vcpu %u was restored",
			       vmm->name, i);
			pthread_mutex_unlock(&vmm->lock);
			return -EINVAL;
		}
	}
	install_kick_handler();
	/* threads start with the kick signal blocked and unblock it themselves */
	sigemptyset(&set);
	sigaddset(&set, GW_VCPU_KICK_SIGNAL);
	pthread_sigmask(SIG_BLOCK, &set, &old);
	set_state_locked(vmm, GW_VMM_RUNNING);
	for (unsigned i = 0; i < vmm->nr_vcpus; i++) {
		struct gw_vcpu *vcpu = &vmm->vcpus[i];

		if (vcpu->stopped) /* stopped on the migration source: stays stopped */
			continue;
		r = -pthread_create(&vcpu->thread, NULL, vcpu_thread, vcpu);
		if (r) {
			char reason[GW_VMM_REASON_MAX];

			snprintf(reason, sizeof(reason), "cannot start thread of vcpu %u: %s", i,
				 strerror(-r));
			finish_locked(vmm, GW_VMM_CRASHED, 0, reason);
			break;
		}
		vcpu->thread_started = true;
		vmm->nr_live++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_mutex_unlock(&vmm->lock);
	if (!r)
		gw_info(SUBSYS, "%s: %u vCPU thread(s) started", vmm->name,
			vmm->nr_vcpus - vmm->nr_stopped);
	return r;
}

int gw_vmm_pause(struct gw_vmm *vmm)
{
	int r = 0;

	pthread_mutex_lock(&vmm->lock);
	if (vmm->state == GW_VMM_PAUSED)
		goto out;
	if (vmm->state != GW_VMM_RUNNING) {
		r = -EINVAL;
		goto out;
	}
	vmm->pause_req = true;
	gw_vcpu_kick_all_locked(vmm);
	while (!vmm->exit_req && vmm->nr_parked < vmm->nr_live)
		pthread_cond_wait(&vmm->cond, &vmm->lock);
	if (vmm->exit_req) {
		r = -EINVAL; /* the guest stopped or crashed meanwhile */
		goto out;
	}
	set_state_locked(vmm, GW_VMM_PAUSED);
	gw_info(SUBSYS, "%s: paused (%u vCPU(s) parked)", vmm->name, vmm->nr_parked);
out:
	pthread_mutex_unlock(&vmm->lock);
	gw_vmm_console_flush(vmm);
	return r;
}

int gw_vmm_resume(struct gw_vmm *vmm)
{
	int r = 0;

	pthread_mutex_lock(&vmm->lock);
	if (vmm->state == GW_VMM_PAUSED) {
		vmm->pause_req = false;
		set_state_locked(vmm, GW_VMM_RUNNING);
		pthread_cond_broadcast(&vmm->cond);
		gw_info(SUBSYS, "%s: resumed", vmm->name);
	} else if (vmm->state != GW_VMM_RUNNING) {
		r = -EINVAL;
	}
	pthread_mutex_unlock(&vmm->lock);
	return r;
}

/* Stop from outside; returns once no vCPU thread runs guest code any more. */
int gw_vmm_stop(struct gw_vmm *vmm, const char *reason)
{
	pthread_mutex_lock(&vmm->lock);
	finish_locked(vmm, GW_VMM_STOPPED, 0, reason ? reason : "stopped");
	while (vmm->nr_live > 0)
		pthread_cond_wait(&vmm->cond, &vmm->lock);
	pthread_mutex_unlock(&vmm->lock);
	gw_vmm_console_flush(vmm);
	return 0;
}

void gw_vcpu_threads_join(struct gw_vmm *vmm)
{
	if (!vmm->vcpus)
		return;
	pthread_mutex_lock(&vmm->lock);
	bool any = vmm->nr_live > 0;
	pthread_mutex_unlock(&vmm->lock);
	if (any)
		gw_vmm_stop(vmm, "VMM shutting down");
	for (unsigned i = 0; i < vmm->nr_vcpus; i++) {
		if (vmm->vcpus[i].thread_started) {
			pthread_join(vmm->vcpus[i].thread, NULL);
			vmm->vcpus[i].thread_started = false;
		}
	}
}

/* ---- auto-converge throttle: the knob (the slicing is vmm_throttle.c's) ---- */

int gw_vmm_set_throttle(struct gw_vmm *vmm, unsigned pct)
{
	unsigned old;

	if (pct > 99)
		return -EINVAL;
	pthread_mutex_lock(&vmm->lock);
	old = vmm->throttle_pct;
	vmm->throttle_pct = pct;
	if (pct && !old && vmm->state == GW_VMM_RUNNING)
		gw_vcpu_kick_all_locked(vmm); /* out of KVM_RUN to start slicing */
	else
		pthread_cond_broadcast(&vmm->cond); /* sleepers re-evaluate */
	pthread_mutex_unlock(&vmm->lock);
	if (pct != old)
		gw_info(SUBSYS, "%s: vCPU throttle %u%% -> %u%%", vmm->name, old, pct);
	return 0;
}

unsigned gw_vmm_get_throttle(struct gw_vmm *vmm)
{
	unsigned pct;

	pthread_mutex_lock(&vmm->lock);
	pct = vmm->throttle_pct;
	pthread_mutex_unlock(&vmm->lock);
	return pct;
}

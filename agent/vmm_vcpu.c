/* vmm_vcpu.c -- vCPU threads: the KVM_RUN loop, port I/O, console, pause/resume/stop. */
#include "vmm_internal.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <time.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "gw_fsutil.h"
#include "gw_log.h"

#define SUBSYS "vcpu"

/* What the run loop does after an exit was handled. */
enum vcpu_action {
	VCPU_CONTINUE, /* re-enter KVM_RUN */
	VCPU_STOP,     /* this vCPU stopped (vCPU exit port) */
	VCPU_END,      /* the VM reached STOPPED or CRASHED */
};

/* The vCPU thread's own kvm_run: a kick (or throttle timer) that lands just before KVM_RUN
 * still makes it return at once. */
static __thread struct kvm_run *kick_run;

static void kick_handler(int sig)
{
	(void)sig;
	if (kick_run)
		kick_run->immediate_exit = 1;
}

static void install_kick_handler(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = kick_handler;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0; /* no SA_RESTART: KVM_RUN must return -EINTR */
	sigaction(GW_VCPU_KICK_SIGNAL, &sa, NULL);
}

static void notify(struct gw_vmm *vmm)
{
	uint64_t one = 1;
	ssize_t n = write(vmm->event_fd, &one, sizeof(one));

	(void)n; /* EAGAIN only when the counter is saturated: already readable */
}

/* ---- console ---- */

static void console_write_locked(struct gw_vmm *vmm)
{
	size_t off = 0;

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
	}
	vmm->console_len = 0;
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

/* Make every vCPU thread leave KVM_RUN soon: immediate_exit covers a thread about to enter,
 * the signal one already inside, the broadcast one sleeping in a throttle slice. */
void gw_vcpu_kick_all_locked(struct gw_vmm *vmm)
{
	for (unsigned i = 0; i < vmm->nr_vcpus; i++) {
		struct gw_vcpu *vcpu = &vmm->vcpus[i];

		if (!vcpu->thread_started || vcpu->exited)
			continue;
		vcpu->run->immediate_exit = 1;
		pthread_kill(vcpu->thread, GW_VCPU_KICK_SIGNAL);
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

static unsigned long long vcpu_rip(struct gw_vcpu *vcpu)
{
	struct kvm_regs regs;

	if (ioctl(vcpu->fd, KVM_GET_REGS, &regs) < 0)
		return ~0ull;
	return regs.rip;
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

static enum vcpu_action handle_io(struct gw_vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	size_t len = (size_t)run->io.size * run->io.count;

	if (run->io.direction == KVM_EXIT_IO_IN) {
		if (run->io.port == GW_PORT_CONSOLE_LSR) {
			memset(data, 0x60, len); /* transmitter empty and idle */
			return VCPU_CONTINUE;
		}
		return guest_finish(vcpu, GW_VMM_CRASHED, 0,
				    "vcpu %u: read from unknown port 0x%x at rip 0x%llx",
				    vcpu->index, run->io.port, vcpu_rip(vcpu));
	}
	switch (run->io.port) {
	case GW_PORT_CONSOLE:
		if (run->io.size != 1)
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
			    run->io.port, vcpu_rip(vcpu));
}

/* The one place where KVM exits are dispatched. */
static enum vcpu_action handle_exit(struct gw_vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	unsigned idx = vcpu->index;

	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		return handle_io(vcpu);
	case KVM_EXIT_MMIO:
		return guest_finish(
		    vcpu, GW_VMM_CRASHED, 0,
		    "vcpu %u: MMIO %s of %u bytes at 0x%llx (no device there), rip 0x%llx", idx,
		    run->mmio.is_write ? "write" : "read", run->mmio.len,
		    (unsigned long long)run->mmio.phys_addr, vcpu_rip(vcpu));
	case KVM_EXIT_SHUTDOWN:
		return guest_finish(vcpu, GW_VMM_CRASHED, 0,
				    "vcpu %u: triple fault (shutdown) at rip 0x%llx", idx,
				    vcpu_rip(vcpu));
	case KVM_EXIT_HLT:
		return guest_finish(vcpu, GW_VMM_CRASHED, 0,
				    "vcpu %u: hlt at rip 0x%llx (no interrupts ever arrive)", idx,
				    vcpu_rip(vcpu));
	case KVM_EXIT_FAIL_ENTRY:
		return guest_finish(
		    vcpu, GW_VMM_CRASHED, 0,
		    "vcpu %u: VM entry failed, hardware reason 0x%llx, rip 0x%llx", idx,
		    (unsigned long long)run->fail_entry.hardware_entry_failure_reason,
		    vcpu_rip(vcpu));
	case KVM_EXIT_INTERNAL_ERROR:
		return guest_finish(vcpu, GW_VMM_CRASHED, 0,
				    "vcpu %u: KVM internal error, suberror %u, rip 0x%llx", idx,
				    run->internal.suberror, vcpu_rip(vcpu));
	case KVM_EXIT_INTR:
		return VCPU_CONTINUE;
	case KVM_EXIT_DIRTY_RING_FULL:
		gw_dirty_ring_full(vcpu);
		return VCPU_CONTINUE;
	default:
		return guest_finish(vcpu, GW_VMM_CRASHED, 0,
				    "vcpu %u: unhandled KVM exit reason %u at rip 0x%llx", idx,
				    run->exit_reason, vcpu_rip(vcpu));
	}
}

/* ---- the run loop ---- */

/* Called with vmm->lock held; returns with it held. */
static void vcpu_park_locked(struct gw_vcpu *vcpu)
{
	struct gw_vmm *vmm = vcpu->vmm;

	vcpu->parked = true;
	vmm->nr_parked++;
	pthread_cond_broadcast(&vmm->cond);
	while (vmm->pause_req && !vmm->exit_req)
		pthread_cond_wait(&vmm->cond, &vmm->lock);
	vcpu->parked = false;
	vmm->nr_parked--;
}

static void *vcpu_thread(void *arg)
{
	struct gw_vcpu *vcpu = arg;
	struct gw_vmm *vmm = vcpu->vmm;
	bool io_pending = false; /* last exit was I/O: KVM completes it on the next KVM_RUN */
	char tname[16];
	sigset_t set;

	snprintf(tname, sizeof(tname), "vcpu%u", vcpu->index);
	pthread_setname_np(pthread_self(), tname);
	sigemptyset(&set);
	sigaddset(&set, GW_VCPU_KICK_SIGNAL);
	kick_run = vcpu->run;
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);

	pthread_mutex_lock(&vmm->lock);
	for (;;) {
		enum vcpu_action act;
		int r;

		if (vmm->exit_req)
			break;
		if (vmm->pause_req && io_pending) {
			/* finish the pending I/O instruction so that the parked state is
			 * consistent (KVM_RUN returns -EINTR right after completing it) */
			vcpu->run->immediate_exit = 1;
			pthread_mutex_unlock(&vmm->lock);
			ioctl(vcpu->fd, KVM_RUN, 0);
			pthread_mutex_lock(&vmm->lock);
			io_pending = false;
			continue;
		}
		if (vmm->pause_req) {
			vcpu_park_locked(vcpu);
			continue;
		}
		/* any kick from now on sets immediate_exit again after this */
		vcpu->run->immediate_exit = 0;
		if (gw_throttle_vcpu_locked(vcpu))
			continue;
		pthread_mutex_unlock(&vmm->lock);

		r = ioctl(vcpu->fd, KVM_RUN, 0);
		if (r < 0 && (errno == EINTR || errno == EAGAIN)) {
			pthread_mutex_lock(&vmm->lock);
			continue;
		}
		if (r < 0) {
			act = guest_finish(vcpu, GW_VMM_CRASHED, 0, "vcpu %u: KVM_RUN failed: %s",
					   vcpu->index, strerror(errno));
		} else {
			act = handle_exit(vcpu);
			io_pending = vcpu->run->exit_reason == KVM_EXIT_IO;
		}

		pthread_mutex_lock(&vmm->lock);
		if (act == VCPU_END)
			break;
		if (act == VCPU_STOP) {
			vcpu->stopped = true;
			vmm->nr_stopped++;
			gw_info(SUBSYS, "%s: vcpu %u stopped itself (%u of %u stopped)", vmm->name,
				vcpu->index, vmm->nr_stopped, vmm->nr_vcpus);
			if (vmm->nr_stopped == vmm->nr_vcpus &&
			    finish_locked(vmm, GW_VMM_STOPPED, 0, "all vCPUs stopped")) {
				pthread_mutex_unlock(&vmm->lock);
				gw_vmm_console_flush(vmm);
				notify(vmm);
				pthread_mutex_lock(&vmm->lock);
			}
			break;
		}
	}
	vcpu->exited = true;
	vmm->nr_live--;
	pthread_cond_broadcast(&vmm->cond);
	pthread_mutex_unlock(&vmm->lock);
	gw_throttle_vcpu_exit(vcpu);
	kick_run = NULL;
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

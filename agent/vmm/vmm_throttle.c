/* vmm_throttle.c -- the auto-converge vCPU throttle, on each vCPU's own thread.
 *
 * Each vCPU thread, while a throttle is set, runs for (100 - pct) % of a 10 ms
 * slice and sleeps the rest in a timed wait on vmm->cond (so pause and stop wake it); a
 * per-thread one-shot POSIX timer sends the kick signal at the end of the run part, and the
 * kick handler makes the backend leave guest code (kvm: immediate_exit; process: a signal
 * to the traced thread), so a timer that fires just before the next run is not lost.
 */
#include "vmm_internal.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "gw_fsutil.h"
#include "gw_log.h"

#define SUBSYS		  "throttle"
#define THROTTLE_SLICE_NS 10000000ull

static void ns_to_ts(uint64_t ns, struct timespec *ts)
{
	ts->tv_sec = (time_t)(ns / 1000000000ull);
	ts->tv_nsec = (long)(ns % 1000000000ull);
}

/* Arm this thread's one-shot kick timer for the end of the run slice (created lazily). */
static void throttle_arm(struct gw_vcpu *vcpu, uint64_t at_ns)
{
	struct itimerspec its;

	if (!vcpu->throttle_timer_ok) {
		struct sigevent sev;

		memset(&sev, 0, sizeof(sev));
		sev.sigev_notify = SIGEV_THREAD_ID;
		sev.sigev_signo = GW_VCPU_KICK_SIGNAL;
		sev._sigev_un._tid = gettid();
		if (timer_create(CLOCK_MONOTONIC, &sev, &vcpu->throttle_timer) < 0) {
			gw_warn(SUBSYS, "%s: vcpu %u: timer_create: %s; throttle only on exits",
				vcpu->vmm->name, vcpu->index, strerror(errno));
			return;
		}
		vcpu->throttle_timer_ok = true;
	}
	memset(&its, 0, sizeof(its));
	ns_to_ts(at_ns, &its.it_value);
	timer_settime(vcpu->throttle_timer, TIMER_ABSTIME, &its, NULL);
}

bool gw_throttle_vcpu_locked(struct gw_vcpu *vcpu)
{
	struct gw_vmm *vmm = vcpu->vmm;
	unsigned pct = vmm->throttle_pct;
	uint64_t now, until;

	if (!pct) {
		vcpu->run_until_ns = 0;
		return false;
	}
	now = gw_now_mono_ns();
	if (now < vcpu->run_until_ns)
		return false; /* in the run part of the slice; the timer ends it */
	until = now + THROTTLE_SLICE_NS * pct / 100;
	while (vmm->throttle_pct && !vmm->pause_req && !vmm->exit_req) {
		struct timespec ts;

		ns_to_ts(until, &ts);
		if (pthread_cond_timedwait(&vmm->cond, &vmm->lock, &ts) == ETIMEDOUT)
			break;
		if (gw_now_mono_ns() >= until)
			break;
	}
	now = gw_now_mono_ns();
	vcpu->run_until_ns = now + THROTTLE_SLICE_NS * (100 - pct) / 100;
	throttle_arm(vcpu, vcpu->run_until_ns);
	return true;
}

void gw_throttle_vcpu_exit(struct gw_vcpu *vcpu)
{
	if (vcpu->throttle_timer_ok) {
		timer_delete(vcpu->throttle_timer);
		vcpu->throttle_timer_ok = false;
	}
}

/* test_host_info.c -- agent/host_info.c: a process's CPU time counts its direct children's,
 * whichever of its threads created them (the process backend's VMM clones its sandbox, which
 * runs the guest code, from a thread of its own: the balancer's load model must see it). */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "host_info.h"

#define CHILD_CPU_NS 300000000ull /* the child burns this much CPU, then waits */

struct forker {
	int ready[2]; /* the child writes a byte once it has burnt CHILD_CPU_NS */
	int done[2];  /* the main thread closes its end when it has measured */
	pid_t child;
};

static unsigned long long cpu_ns_self(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (unsigned long long)ts.tv_sec * 1000000000ull + (unsigned long long)ts.tv_nsec;
}

/* A second thread forks the child and stays alive (the child stays its child) until the
 * main thread has measured. */
static void *fork_from_thread(void *arg)
{
	struct forker *f = arg;
	f->child = fork();
	if (f->child == 0) {
		close(f->done[1]); /* or the thread would never see the end of the pipe */
		volatile unsigned long long x = 0;
		while (cpu_ns_self() < CHILD_CPU_NS)
			x++;
		char c = 1;
		(void)!write(f->ready[1], &c, 1);
		for (;;)
			pause();
	}
	char c;
	(void)!read(f->done[0], &c, 1); /* until the main thread closes its end */
	return NULL;
}

static void test_cpu_of_children_of_any_thread(void **state)
{
	(void)state;
	struct forker f;
	pthread_t t;
	assert_int_equal(pipe(f.ready), 0);
	assert_int_equal(pipe(f.done), 0);
	unsigned long long before = gw_proc_cpu_ns(getpid());
	assert_int_equal(pthread_create(&t, NULL, fork_from_thread, &f), 0);
	char c;
	assert_int_equal(read(f.ready[0], &c, 1), 1);
	unsigned long long after = gw_proc_cpu_ns(getpid());
	close(f.done[1]);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_true(f.child > 0);
	kill(f.child, SIGKILL);
	waitpid(f.child, NULL, 0);
	/* the child's CPU time (at least CHILD_CPU_NS, less one clock tick of rounding) */
	unsigned long long tick = 1000000000ull / (unsigned long long)sysconf(_SC_CLK_TCK);
	if (after < before + CHILD_CPU_NS - tick)
		fail_msg("CPU time %llu ns -> %llu ns: the child's %llu ns not counted", before,
			 after, CHILD_CPU_NS);
	close(f.ready[0]);
	close(f.ready[1]);
	close(f.done[0]);
}

static void test_gone(void **state)
{
	(void)state;
	assert_int_equal(gw_proc_cpu_ns(0), 0);
	assert_int_equal(gw_proc_cpu_ns(-1), 0);
	pid_t p = fork();
	if (p == 0)
		_exit(0);
	waitpid(p, NULL, 0);
	assert_int_equal(gw_proc_cpu_ns(p), 0); /* reaped: gone (pid reuse aside) */
	assert_int_equal(gw_proc_start_ticks(p), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cpu_of_children_of_any_thread),
	    cmocka_unit_test(test_gone),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

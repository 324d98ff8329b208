/* bench_refs.h -- the in-run references of bench_process (bench_refs.c): what a system call,
 * a fault handled in-process, a ptrace round trip, a pipe round trip between two processes
 * and a fork+exec cost on this host, plus the timing helpers both files use. */
#ifndef GW_BENCH_REFS_H
#define GW_BENCH_REFS_H

#include <stdint.h>
#include <time.h>

#define NULL_CALLS 200000 /* getppid() per null-syscall sample */
#define SIG_FAULTS 100000 /* faults per in-process signal sample */
#define LSR_PORT   0x3fd
#define LSR_VALUE  0x60

static inline uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;

	__asm__ volatile("lfence; rdtsc" : "=a"(lo), "=d"(hi)::"memory");
	return ((uint64_t)hi << 32) | lo;
}

static inline void sleep_us(unsigned us)
{
	struct timespec ts = {.tv_sec = us / 1000000, .tv_nsec = (long)(us % 1000000) * 1000};

	nanosleep(&ts, NULL);
}

/* Microseconds per getppid() (the null system call). */
double null_syscall_us(void);
/* Microseconds per IN from LSR_PORT completed by a SIGSEGV handler in this thread. */
double signal_fault_us(void);
/* Microseconds per IN in a traced child, completed by this process over ptrace (n times). */
double ptrace_fault_us(unsigned n);
/* Microseconds per round trip of one byte between two processes over two pipes. */
double pipe_rtt_us(unsigned n);
/* Milliseconds for fork+exec of /bin/true and its wait. */
double spawn_ms(void);

#endif

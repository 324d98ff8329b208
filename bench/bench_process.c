/* bench_process.c -- the process backend (guest code native in a ptrace-supervised sandbox)
 * next to KVM and to a plain process, each figure beside a reference measured in the same run:
 *   - guest compute: tests/guests/compute.elf runs compute_loop() (compute_loop.h) in 50
 *     slices, timed by rdtsc in the guest; the bench runs the same code natively, timed the
 *     same way, and checks that both got the same result;
 *   - port-I/O exit: N reads of the console LSR (port 0x3fd) timed in the guest, next to a
 *     null system call, a fault caught by an in-process signal handler, a pipe round trip
 *     between two processes and a fault caught by a ptrace tracer (the floor of the process
 *     backend's exit path); with the threads placed by the scheduler, then all on one CPU;
 *   - create + start -> first console byte (hello.elf) next to fork+exec of /bin/true;
 *   - memory per VM beyond guest RAM: the sandbox child's RSS split and this process's growth.
 * Medians (and ranges) over the runs; each run interleaves the references and the backends.
 * Run by hand, as root: bench/bench_process [-i ITERS] [-n EXITS] [runs] (default 5). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "bench_refs.h"
#include "compute_loop.h"
#include "gw_log.h"
#include "process_int.h"
#include "vmm.h"
#include "vmm_internal.h"

#define MIB	     (1ull << 20)
#define MAX_RUNS     50
#define BOOT_MEM     (64 * MIB)
#define MEM_VMS	     4		  /* VMs alive at once for the memory figures */
#define GUEST_WAIT_S 60		  /* longest a guest may take to stop */
#define TARGET_NS    600000000ull /* compute loop length, natively, when -i is not given */

static const char *backends[2];
static int nbackends;

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Median, min and max of v[0..n) (v is left sorted). */
struct stat3 {
	double med, lo, hi;
};

static struct stat3 stats(double *v, int n)
{
	struct stat3 s = {0, 0, 0};

	if (n <= 0)
		return s;
	qsort(v, (size_t)n, sizeof(*v), cmp_d);
	s.med = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
	s.lo = v[0];
	s.hi = v[n - 1];
	return s;
}

/* ---- one VM with its console in a temp file ---- */

struct vm {
	struct gw_vmm *vmm;
	int fd;
	char path[64];
};

static int vm_create(struct vm *v, const char *backend, const char *image, uint64_t mem,
		     const char *cmdline)
{
	struct gw_vmm_config cfg = {.name = "bench",
				    .image_path = image,
				    .mem_bytes = mem,
				    .vcpus = 1,
				    .cmdline = cmdline,
				    .backend = backend};
	char err[300] = "";
	int r;

	v->vmm = NULL;
	snprintf(v->path, sizeof(v->path), "/tmp/gw-bench-process-XXXXXX");
	v->fd = mkstemp(v->path);
	if (v->fd < 0)
		return -errno;
	unlink(v->path);
	cfg.console_fd = v->fd;
	r = gw_vmm_create(&cfg, &v->vmm, err, sizeof(err));
	if (r) {
		fprintf(stderr, "bench_process: %s: create: %s\n", backend, err);
		close(v->fd);
		v->fd = -1;
	}
	return r;
}

static void vm_destroy(struct vm *v)
{
	if (v->vmm) {
		gw_vmm_stop(v->vmm, "bench over");
		gw_vmm_destroy(v->vmm);
	}
	if (v->fd >= 0)
		close(v->fd);
	v->vmm = NULL;
	v->fd = -1;
}

static off_t vm_console_size(struct vm *v)
{
	struct stat st;

	return fstat(v->fd, &st) < 0 ? 0 : st.st_size;
}

/* Wait until the VM stopped or crashed (GUEST_WAIT_S at most): its exit status, or -1. */
static int vm_wait_end(struct vm *v)
{
	uint64_t deadline = now_ns() + GUEST_WAIT_S * 1000000000ull;
	char reason[256] = "";
	int status = -1;

	for (;;) {
		struct pollfd p = {.fd = gw_vmm_event_fd(v->vmm), .events = POLLIN};
		enum gw_vmm_state s = gw_vmm_get_state(v->vmm, &status, reason, sizeof(reason));
		uint64_t one;

		if (s == GW_VMM_STOPPED)
			return status;
		if (s == GW_VMM_CRASHED) {
			fprintf(stderr, "bench_process: %s guest crashed: %s\n",
				gw_vmm_backend_name(v->vmm), reason);
			return -1;
		}
		if (now_ns() > deadline) {
			fprintf(stderr, "bench_process: %s guest still running after %d s\n",
				gw_vmm_backend_name(v->vmm), GUEST_WAIT_S);
			return -1;
		}
		if (poll(&p, 1, 100) > 0 && read(p.fd, &one, sizeof(one)) < 0)
			sleep_us(1000);
	}
}

/* Run a guest to its end and copy its console into buf: 0, or -1 (message printed). */
static int run_guest(const char *backend, const char *image, uint64_t mem, const char *cmdline,
		     char *buf, size_t len)
{
	struct vm v;
	ssize_t n;
	int st;

	if (vm_create(&v, backend, image, mem, cmdline))
		return -1;
	if (gw_vmm_start(v.vmm)) {
		fprintf(stderr, "bench_process: %s: start failed\n", backend);
		vm_destroy(&v);
		return -1;
	}
	st = vm_wait_end(&v);
	gw_vmm_console_flush(v.vmm);
	n = pread(v.fd, buf, len - 1, 0);
	buf[n > 0 ? n : 0] = 0;
	vm_destroy(&v);
	if (st != 0) {
		fprintf(stderr, "bench_process: %s: %s ended with status %d; console:\n%s\n",
			backend, cmdline, st, buf);
		return -1;
	}
	return 0;
}

/* The value after "key=" on the console, as a number (base 10, or 16 for result=). */
static int console_u64(const char *buf, const char *key, int base, uint64_t *out)
{
	const char *p = strstr(buf, key);
	char *end;

	if (!p)
		return -1;
	*out = strtoull(p + strlen(key), &end, base);
	return end == p + strlen(key) ? -1 : 0;
}

/* ---- 1. compute: the same loop in the guest and here ---- */

struct compute_res {
	/* per run: whole-loop ms, and native/guest ratios of the median slice (the steady speed)
	 * and of the whole loop (everything the guest lost, preemption included) */
	double native_ms[MAX_RUNS], guest_ms[2][MAX_RUNS];
	double ratio_med[2][MAX_RUNS], ratio_all[2][MAX_RUNS];
	int n[2], nn;
};

static void bench_compute(int runs, uint64_t iters, unsigned slices, struct compute_res *res)
{
	static uint64_t cycles[COMPUTE_MAX_SLICES];
	char cmdline[128], buf[4096];

	snprintf(cmdline, sizeof(cmdline), "mode=compute iters=%llu seed=1 slices=%u",
		 (unsigned long long)iters, slices);
	for (int r = 0; r < runs; r++) {
		uint64_t c0 = rdtsc(), t0 = now_ns(), want, c1, t1, med;

		want = compute_slices(iters, 1, slices, cycles);
		c1 = rdtsc();
		t1 = now_ns();
		med = compute_median(cycles, slices);
		res->native_ms[res->nn++] = (double)(t1 - t0) / 1e6;
		for (int b = 0; b < nbackends; b++) {
			uint64_t all, ns, gmed, got;

			if (run_guest(backends[b], GW_GUEST_DIR "/compute.elf", BOOT_MEM, cmdline,
				      buf, sizeof(buf)) ||
			    console_u64(buf, "compute cycles=", 10, &all) ||
			    console_u64(buf, " ns=", 10, &ns) ||
			    console_u64(buf, "slice_med=", 10, &gmed) ||
			    console_u64(buf, "result=", 16, &got)) {
				fprintf(stderr, "bench_process: %s: no compute result\n",
					backends[b]);
				continue;
			}
			if (got != want) {
				fprintf(
				    stderr,
				    "bench_process: %s: guest result %016llx != native %016llx\n",
				    backends[b], (unsigned long long)got, (unsigned long long)want);
				exit(1);
			}
			res->guest_ms[b][res->n[b]] = (double)ns / 1e6;
			res->ratio_med[b][res->n[b]] = (double)med / (double)gmed;
			res->ratio_all[b][res->n[b]++] = (double)(c1 - c0) / (double)all;
		}
	}
}

/* ---- 2. exits: port I/O in the guest; null syscall, signal and ptrace round trips here ---- */

/* Exit figures, each measured twice per run: [0] as the scheduler places the threads, [1]
 * with this process (and so every thread and child it starts: the VMM's vCPU thread, the
 * sandbox, the pipe and ptrace children) confined to one CPU. On this host an idle vCPU halts
 * (haltpoll with guest_halt_poll_ns=0), so waking a thread on the other, idle CPU costs a
 * halt exit and an IPI through the hypervisor, and that dominates every round trip between
 * two threads: [1] shows what is left without it. */
struct exit_res {
	double sys_us[MAX_RUNS], sig_us[MAX_RUNS];
	double ptr_us[2][MAX_RUNS], pipe_us[2][MAX_RUNS], pio_us[2][2][MAX_RUNS];
	int nsys, nsig, nptr[2], npipe[2], n[2][2];
};

/* Confine this thread (and what it starts from now on) to its first allowed CPU, or give it
 * back the set in *saved. */
static void pin_one_cpu(bool pin, cpu_set_t *saved)
{
	if (pin) {
		cpu_set_t one;

		sched_getaffinity(0, sizeof(*saved), saved);
		CPU_ZERO(&one);
		for (int c = 0; c < CPU_SETSIZE; c++)
			if (CPU_ISSET(c, saved)) {
				CPU_SET(c, &one);
				break;
			}
		sched_setaffinity(0, sizeof(one), &one);
	} else {
		sched_setaffinity(0, sizeof(*saved), saved);
	}
}

static void bench_exits(int runs, unsigned nexits, struct exit_res *res)
{
	char cmdline[64], buf[4096];
	cpu_set_t saved;

	snprintf(cmdline, sizeof(cmdline), "mode=pio n=%u", nexits);
	for (int r = 0; r < runs; r++) {
		res->sys_us[res->nsys++] = null_syscall_us();
		res->sig_us[res->nsig++] = signal_fault_us();
		for (int pin = 0; pin < 2; pin++) {
			double p;

			if (pin)
				pin_one_cpu(true, &saved);
			p = pipe_rtt_us(nexits / 2);
			if (p > 0)
				res->pipe_us[pin][res->npipe[pin]++] = p;
			p = ptrace_fault_us(nexits);
			if (p > 0)
				res->ptr_us[pin][res->nptr[pin]++] = p;
			else
				fprintf(stderr, "bench_process: ptrace floor failed\n");
			for (int b = 0; b < nbackends; b++) {
				uint64_t ns, bad;

				if (run_guest(backends[b], GW_GUEST_DIR "/compute.elf", BOOT_MEM,
					      cmdline, buf, sizeof(buf)) ||
				    console_u64(buf, " ns=", 10, &ns) ||
				    console_u64(buf, "bad=", 10, &bad)) {
					fprintf(stderr, "bench_process: %s: no pio result\n",
						backends[b]);
					continue;
				}
				if (bad)
					fprintf(stderr,
						"bench_process: %s: %llu INs did not read 0x60\n",
						backends[b], (unsigned long long)bad);
				res->pio_us[pin][b][res->n[pin][b]++] = (double)ns / nexits / 1e3;
			}
			if (pin)
				pin_one_cpu(false, &saved);
		}
	}
}

/* ---- 3. create + start -> first console byte ---- */

struct boot_res {
	double spawn[MAX_RUNS], create[2][MAX_RUNS], first[2][MAX_RUNS], setup[MAX_RUNS];
	int nspawn, n[2], nsetup;
};

static void bench_boot(int runs, struct boot_res *res)
{
	for (int r = 0; r < runs; r++) {
		res->spawn[res->nspawn++] = spawn_ms();
		for (int b = 0; b < nbackends; b++) {
			uint64_t t0 = now_ns(), t1, deadline;
			struct vm v;

			if (vm_create(&v, backends[b], GW_GUEST_DIR "/hello.elf", BOOT_MEM,
				      "exit=0"))
				continue;
			t1 = now_ns();
			if (gw_vmm_start(v.vmm)) {
				vm_destroy(&v);
				continue;
			}
			deadline = t0 + 10000000000ull;
			while (vm_console_size(&v) == 0 && now_ns() < deadline)
				sleep_us(20);
			if (vm_console_size(&v) > 0) {
				res->create[b][res->n[b]] = (double)(t1 - t0) / 1e6;
				res->first[b][res->n[b]++] = (double)(now_ns() - t0) / 1e6;
				if (!strcmp(backends[b], "process"))
					res->setup[res->nsetup++] =
					    (double)v.vmm->proc->setup_ns / 1e6;
			} else {
				fprintf(stderr, "bench_process: %s: no console byte in 10 s\n",
					backends[b]);
			}
			vm_destroy(&v);
		}
	}
}

/* ---- 4. memory per VM ---- */

/* "Key:   N kB" of /proc/PID/status (pid 0 = self), in KiB; -1 when absent. */
static long status_kib(pid_t pid, const char *key)
{
	char path[64], line[256];
	long v = -1;
	FILE *f;

	if (pid)
		snprintf(path, sizeof(path), "/proc/%d/status", pid);
	else
		snprintf(path, sizeof(path), "/proc/self/status");
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, strlen(key)) && line[strlen(key)] == ':') {
			v = strtol(line + strlen(key) + 1, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

/* Bytes of guest RAM that exist in its memfd (pages written by the VMM or the guest). */
static uint64_t guest_populated(struct gw_vmm *vmm)
{
	uint64_t from = 0, s, e, total = 0;

	while (gw_vmm_ram_extent(vmm, from, &s, &e) == 0 && e > s) {
		total += e - s;
		from = e;
	}
	return total;
}

struct mem_res {
	bool ok;
	double vmm_anon, vmm_file, vmm_shmem;	   /* KiB per VM, this process */
	double anon, file, shmem, pte, rss, guest; /* KiB, sandbox child, mean over VMs */
};

static void bench_memory(const char *backend, struct mem_res *m)
{
	long anon0 = status_kib(0, "RssAnon"), shm0 = status_kib(0, "RssShmem");
	long file0 = status_kib(0, "RssFile");
	struct vm v[MEM_VMS];
	int nv = 0;

	memset(m, 0, sizeof(*m));
	for (int i = 0; i < MEM_VMS; i++) {
		uint64_t deadline = now_ns() + 10000000000ull;

		if (vm_create(&v[nv], backend, GW_GUEST_DIR "/dirtier.elf", BOOT_MEM,
			      "idle=1 report=0"))
			break;
		if (gw_vmm_start(v[nv].vmm)) {
			vm_destroy(&v[nv]);
			break;
		}
		while (vm_console_size(&v[nv]) == 0 && now_ns() < deadline)
			sleep_us(100);
		nv++;
	}
	if (nv == MEM_VMS) {
		sleep_us(200000); /* the guests sleep in port 0x503 by now */
		m->ok = true;
		m->vmm_anon = (double)(status_kib(0, "RssAnon") - anon0) / nv;
		m->vmm_shmem = (double)(status_kib(0, "RssShmem") - shm0) / nv;
		m->vmm_file = (double)(status_kib(0, "RssFile") - file0) / nv;
		for (int i = 0; i < nv && !strcmp(backend, "process"); i++) {
			pid_t pid = v[i].vmm->proc->pid;

			m->anon += (double)status_kib(pid, "RssAnon") / nv;
			m->file += (double)status_kib(pid, "RssFile") / nv;
			m->shmem += (double)status_kib(pid, "RssShmem") / nv;
			m->pte += (double)status_kib(pid, "VmPTE") / nv;
			m->rss += (double)status_kib(pid, "VmRSS") / nv;
			m->guest += (double)guest_populated(v[i].vmm) / 1024 / nv;
		}
	}
	for (int i = 0; i < nv; i++)
		vm_destroy(&v[i]);
}

/* bench_memory in a child forked before this process ran any VM: its RSS growth is then
 * not hidden by memory that earlier VMs left free in this process's heap. */
static void bench_memory_fresh(const char *backend, struct mem_res *m)
{
	int fds[2];
	pid_t pid;

	memset(m, 0, sizeof(*m));
	if (pipe(fds))
		return;
	pid = fork();
	if (pid == 0) {
		close(fds[0]);
		bench_memory(backend, m);
		_exit(write(fds[1], m, sizeof(*m)) == (ssize_t)sizeof(*m) ? 0 : 1);
	}
	close(fds[1]);
	if (pid > 0 && read(fds[0], m, sizeof(*m)) != (ssize_t)sizeof(*m))
		memset(m, 0, sizeof(*m));
	close(fds[0]);
	if (pid > 0)
		waitpid(pid, NULL, 0);
}

/* ---- report ---- */

static void print_stat(const char *what, double *v, int n, const char *unit)
{
	struct stat3 s = stats(v, n);

	if (!n) {
		printf("  %-40s (no result)\n", what);
		return;
	}
	printf("  %-40s %9.3f %-3s [%.3f .. %.3f] n=%d\n", what, s.med, unit, s.lo, s.hi, n);
}

static void usage(void)
{
	fprintf(stderr,
		"usage: bench_process [-i ITERS] [-n EXITS] [runs]\n"
		"  runs   1..%d (default 5)\n"
		"  -i     compute_loop iterations, a multiple of 50 (default: ~0.6 s natively)\n"
		"  -n     port-I/O exits per guest run (default 50000)\n",
		MAX_RUNS);
	exit(2);
}

int main(int argc, char **argv)
{
	static struct compute_res cres;
	static struct exit_res eres;
	static struct boot_res bres;
	struct mem_res mres[2];
	uint64_t iters = 0;
	unsigned nexits = 50000, slices = 50;
	const char *chosen;
	char why[256], label[96];
	struct utsname un;
	int runs = 5, o;

	while ((o = getopt(argc, argv, "i:n:h")) != -1) {
		switch (o) {
		case 'i':
			iters = strtoull(optarg, NULL, 0);
			break;
		case 'n':
			nexits = (unsigned)strtoul(optarg, NULL, 0);
			break;
		default:
			usage();
		}
	}
	if (optind < argc)
		runs = atoi(argv[optind]);
	if (runs < 1 || runs > MAX_RUNS || nexits < 1 || nexits > 10000000 || iters % slices)
		usage();
	if (geteuid() != 0) {
		fprintf(stderr, "bench_process: run as root (the sandbox, /dev/kvm)\n");
		return 1;
	}
	gw_log_set_level(GW_LOG_WARN);
	if (gw_vmm_probe_backend("process", &chosen, why, sizeof(why)) == 0)
		backends[nbackends++] = "process";
	else
		printf("process backend not usable here: %s\n", why);
	if (gw_vmm_probe_backend("kvm", &chosen, why, sizeof(why)) == 0)
		backends[nbackends++] = "kvm";
	else
		printf("kvm backend not usable here: %s\n", why);
	if (!nbackends)
		return 1;
	if (!iters) { /* calibrate: ~TARGET_NS natively, the fastest of 5 probes */
		uint64_t probe = 20000000, best = ~0ull;

		for (int i = 0; i < 5; i++) {
			uint64_t t0 = now_ns();
			volatile uint64_t sink = compute_loop(probe, 1);

			(void)sink;
			if (now_ns() - t0 < best)
				best = now_ns() - t0;
		}
		iters = probe * TARGET_NS / (best + 1);
		iters = (iters / 1000000 + 1) * 1000000; /* a multiple of slices */
	}
	uname(&un);
	printf("godwit bench_process: %d runs, %ld CPUs, kernel %s, backends:", runs,
	       sysconf(_SC_NPROCESSORS_ONLN), un.release);
	for (int b = 0; b < nbackends; b++)
		printf(" %s", backends[b]);
	printf("\nmedian [min .. max] over the runs; each run measures the references and every "
	       "backend in turn\n\n");

	for (int b = 0; b < nbackends; b++)
		bench_memory_fresh(backends[b], &mres[b]);
	bench_compute(runs, iters, slices, &cres);
	printf("guest compute: compute_loop, %llu iterations in %u slices, rdtsc in the guest and "
	       "natively here\n",
	       (unsigned long long)iters, slices);
	print_stat("native (this process) ms", cres.native_ms, cres.nn, "ms");
	for (int b = 0; b < nbackends; b++) {
		snprintf(label, sizeof(label), "%s guest ms", backends[b]);
		print_stat(label, cres.guest_ms[b], cres.n[b], "ms");
		snprintf(label, sizeof(label), "%s native/guest, median slice", backends[b]);
		print_stat(label, cres.ratio_med[b], cres.n[b], "x");
		snprintf(label, sizeof(label), "%s native/guest, whole loop", backends[b]);
		print_stat(label, cres.ratio_all[b], cres.n[b], "x");
	}

	bench_exits(runs, nexits, &eres);
	printf("\nexit cost: %u x IN from port 0x3fd (console LSR, answered 0x60) timed in the "
	       "guest, per exit\n",
	       nexits);
	print_stat("null syscall (getppid)", eres.sys_us, eres.nsys, "us");
	print_stat("IN #GP -> in-process SIGSEGV handler", eres.sig_us, eres.nsig, "us");
	for (int pin = 0; pin < 2; pin++) {
		struct stat3 sys = stats(eres.sys_us, eres.nsys);
		struct stat3 ptr = stats(eres.ptr_us[pin], eres.nptr[pin]);

		printf("  %s\n", pin ? "-- everything confined to one CPU (sched_setaffinity):"
				     : "-- threads placed by the scheduler (the default):");
		print_stat("pipe round trip between 2 processes", eres.pipe_us[pin],
			   eres.npipe[pin], "us");
		print_stat("IN #GP -> ptrace tracer round trip", eres.ptr_us[pin], eres.nptr[pin],
			   "us");
		for (int b = 0; b < nbackends; b++) {
			struct stat3 s = stats(eres.pio_us[pin][b], eres.n[pin][b]);

			snprintf(label, sizeof(label), "%s port-I/O exit", backends[b]);
			print_stat(label, eres.pio_us[pin][b], eres.n[pin][b], "us");
			if (eres.n[pin][b] && sys.med > 0)
				printf("  %-40s = %.0fx the null syscall, %.2fx the ptrace round "
				       "trip\n",
				       "", s.med / sys.med, ptr.med > 0 ? s.med / ptr.med : 0);
		}
	}

	bench_boot(runs, &bres);
	printf("\ncreate + start -> first console byte (hello.elf exit=0, %llu MiB, 1 vCPU)\n",
	       (unsigned long long)(BOOT_MEM / MIB));
	print_stat("fork + exec /bin/true", bres.spawn, bres.nspawn, "ms");
	for (int b = 0; b < nbackends; b++) {
		struct stat3 sp = stats(bres.spawn, bres.nspawn), s;

		snprintf(label, sizeof(label), "%s gw_vmm_create", backends[b]);
		print_stat(label, bres.create[b], bres.n[b], "ms");
		if (!strcmp(backends[b], "process"))
			print_stat("  of which sandbox spawn -> ready", bres.setup, bres.nsetup,
				   "ms");
		snprintf(label, sizeof(label), "%s create+start -> first byte", backends[b]);
		print_stat(label, bres.first[b], bres.n[b], "ms");
		s = stats(bres.first[b], bres.n[b]);
		if (bres.n[b] && sp.med > 0)
			printf("  %-40s = %.1fx fork+exec\n", "", s.med / sp.med);
	}

	printf("\nmemory per VM beyond guest RAM (%d VMs of %llu MiB at once, dirtier idle=1), "
	       "KiB\n",
	       MEM_VMS, (unsigned long long)(BOOT_MEM / MIB));
	for (int b = 0; b < nbackends; b++) {
		struct mem_res *m = &mres[b];

		if (!m->ok) {
			printf("  %s: could not start %d VMs\n", backends[b], MEM_VMS);
			continue;
		}
		printf("  %-8s VMM process per VM: RssAnon %+.0f, RssFile %+.0f, RssShmem %+.0f "
		       "(guest pages the VMM wrote)\n",
		       backends[b], m->vmm_anon, m->vmm_file, m->vmm_shmem);
		if (strcmp(backends[b], "process"))
			continue;
		printf("  %-8s sandbox child: VmRSS %.0f = RssAnon %.0f + RssFile %.0f + RssShmem "
		       "%.0f; VmPTE %.0f\n",
		       "", m->rss, m->anon, m->file, m->shmem, m->pte);
		printf("  %-8s guest RAM populated in the memfd %.0f; child RssShmem beyond it "
		       "%.0f\n",
		       "", m->guest, m->shmem - m->guest > 0 ? m->shmem - m->guest : 0);
		printf("  %-8s beyond guest RAM: child anon+file+shmem-guest+PTE + VMM anon = "
		       "%.0f KiB per VM\n",
		       "",
		       m->anon + m->file + (m->shmem > m->guest ? m->shmem - m->guest : 0) +
			   m->pte + m->vmm_anon);
	}
	return 0;
}

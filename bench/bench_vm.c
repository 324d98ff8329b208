/* bench_vm.c -- VM create-to-first-console-byte and pause/resume latency through the real
 * agent, with references measured in the same run (process spawn floor) and Firecracker's
 * published boot figure as an anchor. Run by hand: bench/bench_vm [iterations]. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "control.pb-c.h"
#include "gw_frame.h"
#include "gw_fsutil.h"

/* Firecracker's published specification: InstanceStart to guest /sbin/init <= 125 ms. */
#define FIRECRACKER_BOOT_MS 125.0

static char dir[64], sock[128];

static int connect_agent(void)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
		return fd;
	if (fd >= 0)
		close(fd);
	return -1;
}

/* One request, one reply; exits the bench on an error reply. */
static void call(int fd, uint16_t type, const ProtobufCMessage *msg)
{
	uint16_t rt;
	uint8_t *p;
	uint32_t len;
	if (gw_msg_send(fd, type, msg) || gw_frame_recv(fd, GW_FRAME_MAX_PAYLOAD, 30000, &rt, &p, &len)) {
		fprintf(stderr, "bench: agent request %u failed\n", type);
		exit(1);
	}
	if (rt == GW_MSG_TYPE__GW_MSG_ERROR) {
		GwError *e = gw_error__unpack(NULL, len, p);
		fprintf(stderr, "bench: agent error: %s\n", e ? e->message : "?");
		exit(1);
	}
	free(p);
}

static void name_call(int fd, uint16_t type, const char *name)
{
	GwVmNameReq r = GW_VM_NAME_REQ__INIT;
	r.name = (char *)name;
	call(fd, type, &r.base);
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void report(const char *what, double *v, int n, double ref, const char *refname)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_d);
	double med = v[n / 2], p90 = v[(n * 9) / 10 < n ? (n * 9) / 10 : n - 1];
	printf("%-36s median %8.3f ms  p90 %8.3f ms  min %8.3f ms", what, med, p90, v[0]);
	if (ref > 0)
		printf("  = %.2fx %s", med / ref, refname);
	printf("\n");
}

static double spawn_floor_ms(void)
{
	double v[20];
	for (int i = 0; i < 20; i++) {
		unsigned long long t0 = gw_now_mono_ns();
		pid_t p = fork();
		if (p == 0) {
			execl("/bin/true", "true", (char *)NULL);
			_exit(127);
		}
		waitpid(p, NULL, 0);
		v[i] = (double)(gw_now_mono_ns() - t0) / 1e6;
	}
	qsort(v, 20, sizeof(v[0]), cmp_d);
	return v[10];
}

int main(int argc, char **argv)
{
	int iters = argc > 1 ? atoi(argv[1]) : 20;
	char statedir[128], image[512], cpath[256], name[32];
	if (iters < 3 || iters > 1000)
		iters = 20;
	snprintf(dir, sizeof(dir), "/tmp/gw-bench-vm-XXXXXX");
	if (!mkdtemp(dir))
		return 1;
	snprintf(sock, sizeof(sock), "%s/agent.sock", dir);
	snprintf(statedir, sizeof(statedir), "%s/state", dir);
	snprintf(image, sizeof(image), "%s/hello.elf", GW_GUEST_DIR);
	pid_t agent = fork();
	if (agent == 0) {
		FILE *f = freopen("/dev/null", "w", stderr);
		(void)f;
		execl(GW_AGENT_BIN, GW_AGENT_BIN, "--state-dir", statedir, "--socket", sock,
		      "--listen", "127.0.0.1:0", "--vmm-path", GW_VMM_BIN, (char *)NULL);
		_exit(127);
	}
	int fd = -1;
	for (int i = 0; i < 200 && fd < 0; i++) {
		fd = connect_agent();
		if (fd < 0)
			usleep(20000);
	}
	if (fd < 0) {
		fprintf(stderr, "bench: agent did not come up\n");
		return 1;
	}
	double floor_ms = spawn_floor_ms();
	double *boot = calloc((size_t)iters, sizeof(double));
	double *pause = calloc((size_t)iters * 5, sizeof(double));
	double *resume = calloc((size_t)iters * 5, sizeof(double));

	printf("godwit bench_vm: %d iterations, guest hello.elf (64 MiB, 1 vCPU)\n", iters);
	for (int i = 0; i < iters; i++) {
		GwVmCreateReq c = GW_VM_CREATE_REQ__INIT;
		snprintf(name, sizeof(name), "b%d", i);
		c.name = name;
		c.image = image;
		c.memory_mib = 64;
		c.has_vcpus = 1;
		c.vcpus = 1;
		c.cmdline = "spin=1";
		snprintf(cpath, sizeof(cpath), "%s/vms/%s/console.log", statedir, name);
		unsigned long long t0 = gw_now_mono_ns();
		call(fd, GW_MSG_TYPE__GW_MSG_VM_CREATE, &c.base);
		name_call(fd, GW_MSG_TYPE__GW_MSG_VM_START, name);
		struct stat st;
		unsigned long long deadline = t0 + 10000000000ull;
		while ((stat(cpath, &st) < 0 || st.st_size == 0) && gw_now_mono_ns() < deadline)
			usleep(100);
		boot[i] = (double)(gw_now_mono_ns() - t0) / 1e6;
		for (int k = 0; k < 5; k++) {
			t0 = gw_now_mono_ns();
			name_call(fd, GW_MSG_TYPE__GW_MSG_VM_PAUSE, name);
			pause[i * 5 + k] = (double)(gw_now_mono_ns() - t0) / 1e6;
			t0 = gw_now_mono_ns();
			name_call(fd, GW_MSG_TYPE__GW_MSG_VM_RESUME, name);
			resume[i * 5 + k] = (double)(gw_now_mono_ns() - t0) / 1e6;
		}
		name_call(fd, GW_MSG_TYPE__GW_MSG_VM_STOP, name);
		name_call(fd, GW_MSG_TYPE__GW_MSG_VM_DELETE, name);
	}
	printf("reference: fork+exec /bin/true       median %8.3f ms (same run)\n", floor_ms);
	report("create+start -> first console byte", boot, iters, FIRECRACKER_BOOT_MS,
	       "Firecracker's published 125 ms boot-to-init");
	printf("%-36s %.1fx the fork+exec floor\n", "", boot[iters / 2] / floor_ms);
	report("pause (agent round trip)", pause, iters * 5, floor_ms, "fork+exec");
	report("resume (agent round trip)", resume, iters * 5, floor_ms, "fork+exec");
	close(fd);
	kill(agent, SIGTERM);
	waitpid(agent, NULL, 0);
	gw_rm_rf(dir);
	return 0;
}

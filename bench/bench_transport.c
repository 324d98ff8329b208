/*
 * bench_transport.c -- page batches over a Godwit transport (TCP by default, or RDMA with
 * -T rdma) on one local IP (127.0.0.1 by default, -a), next to iperf3 over TCP on the same
 * IP; CRC32C. -S DIR: every run once more over TLS 1.3 (transport/tls.c; certificates from
 * deploy/gen-certs.sh DIR bench=IP), interleaved, medians of -R runs.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gw_crc32c.h"
#include "gw_fsutil.h"
#include "gw_pagebatch.h"
#include "gw_tls.h"
#include "gw_transport.h"

#define MIB	     (1024.0 * 1024.0)
#define BUF_BYTES    (256ull << 20) /* source and destination "guest RAM" */
#define BUF_PAGES    (BUF_BYTES / GW_PAGE_SIZE)
#define BATCH_PAGES  64u /* 256 KiB per batch */
#define BUF_BATCHES  (BUF_PAGES / BATCH_PAGES)
#define MAX_STREAMS  8
#define CONN_TIMEOUT 10000 /* ms: a stuck run fails, never hangs */

struct bench {
	const struct gw_transport_ops *tp; /* the transport under test (-T) */
	const char *ip;			   /* the IP to listen and connect on (-a), no brackets */
	uint8_t *src, *dst;
	uint64_t total_batches;
	int nstreams;
	pthread_barrier_t start;
	struct gw_tls_ctx *tls; /* this run over TLS (NULL: plain) */
};

struct stream {
	struct bench *b;
	struct gw_conn *tx, *rx;
	int idx;
	int ret;
	uint64_t batches, crc_errors;
	bool placed; /* direct placement (RDMA): pages written straight into dst, as the engine */
	struct gw_remote_mem place;
};

/*
 * Sender: batches idx, idx + N, idx + 2N, ... of the global sequence, cycling over
 * the source buffer. Each batch is sent as the migration will: CRC32C of the pages,
 * a header, and one sendv of the header plus one iovec per page (65 iovecs).
 */
static void *sender_main(void *arg)
{
	struct stream *s = arg;
	struct bench *b = s->b;
	struct iovec iov[1 + BATCH_PAGES];
	struct gw_pagebatch_hdr hdr;

	iov[0].iov_base = &hdr;
	iov[0].iov_len = sizeof(hdr);
	pthread_barrier_wait(&b->start);
	for (uint64_t g = (uint64_t)s->idx; g < b->total_batches; g += (uint64_t)b->nstreams) {
		uint64_t first = (g % BUF_BATCHES) * BATCH_PAGES;
		uint16_t flags =
		    g + (uint64_t)b->nstreams >= b->total_batches ? GW_PAGEBATCH_F_LAST : 0;
		for (unsigned i = 0; i < BATCH_PAGES; i++) {
			iov[1 + i].iov_base = b->src + (first + i) * GW_PAGE_SIZE;
			iov[1 + i].iov_len = GW_PAGE_SIZE;
		}
		uint32_t crc = gw_crc32c_iov(0, iov + 1, BATCH_PAGES);
		if (s->placed) {
			/* the engine's RDMA path: pages straight into place, then the header */
			s->ret = gw_conn_write_placed(s->tx, iov + 1, BATCH_PAGES, &s->place,
						      first * GW_PAGE_SIZE);
			if (s->ret < 0)
				return NULL;
			gw_pagebatch_encode(&hdr, first, BATCH_PAGES, flags | GW_PAGEBATCH_F_PLACED,
					    crc);
			s->ret = gw_conn_sendv(s->tx, iov, 1);
		} else {
			gw_pagebatch_encode(&hdr, first, BATCH_PAGES, flags, crc);
			s->ret = gw_conn_sendv(s->tx, iov, 1 + BATCH_PAGES);
		}
		if (s->ret < 0)
			return NULL;
	}
	return NULL;
}

/* Receiver: header, validate, scatter the pages straight into place, check the CRC. */
static void *receiver_main(void *arg)
{
	struct stream *s = arg;
	struct bench *b = s->b;
	struct iovec iov[BATCH_PAGES];
	struct gw_pagebatch_hdr hdr;
	struct gw_pagebatch_info info;
	char err[128];

	pthread_barrier_wait(&b->start);
	for (;;) {
		s->ret = gw_conn_recv(s->rx, &hdr, sizeof(hdr));
		if (s->ret < 0)
			return NULL;
		s->ret =
		    gw_pagebatch_validate(&hdr, BUF_PAGES, BATCH_PAGES, &info, err, sizeof(err));
		if (s->ret < 0) {
			fprintf(stderr, "bench: stream %d: %s\n", s->idx, err);
			return NULL;
		}
		for (unsigned i = 0; i < info.page_count; i++) {
			iov[i].iov_base = b->dst + (info.first_page + i) * GW_PAGE_SIZE;
			iov[i].iov_len = GW_PAGE_SIZE;
		}
		if (!(info.flags & GW_PAGEBATCH_F_PLACED)) {
			s->ret = gw_conn_recvv(s->rx, iov, (int)info.page_count);
			if (s->ret < 0)
				return NULL;
		} /* else: already in place; checked below like the engine does */
		if (gw_crc32c_iov(0, iov, (int)info.page_count) != info.crc32c)
			s->crc_errors++;
		s->batches++;
		if (info.flags & GW_PAGEBATCH_F_LAST)
			return NULL;
	}
}

/* "A.B.C.D:PORT" or "[v6]:PORT", as the transports take it. */
static void format_addr(char *out, size_t len, const char *ip, int port)
{
	snprintf(out, len, strchr(ip, ':') ? "[%s]:%d" : "%s:%d", ip, port);
}

struct acceptor {
	struct gw_tls_ctx *tls;
	struct gw_conn *lst, *conn;
	int ret;
};

static void *accept_main(void *arg)
{
	struct acceptor *a = arg;
	a->ret = gw_conn_accept(a->lst, &a->conn);
	if (!a->ret && a->tls)
		a->ret = gw_tls_server(a->tls, &a->conn);
	return NULL;
}

/*
 * One stream: connect to addr while another thread accepts on lst. RDMA's connect only
 * returns once the server has accepted, so the two cannot run one after the other in a
 * single thread (TCP's connect completes against the backlog, but pairs the same way).
 */
static int connect_pair(struct gw_conn *lst, const char *addr, const struct gw_transport_opts *o,
			const struct gw_transport_ops *tp, struct gw_tls_ctx *tls,
			struct gw_conn **tx, struct gw_conn **rx)
{
	struct acceptor a = {.lst = lst, .tls = tls};
	pthread_t th;
	int r = pthread_create(&th, NULL, accept_main, &a);
	if (r)
		return -r;
	r = tp->connect(addr, o, tx);
	if (r == 0 && tls)
		r = gw_tls_client(tls, tx);
	if (r < 0)
		gw_conn_shutdown(lst); /* the accept gives up now rather than at its timeout */
	pthread_join(th, NULL);
	if (r == 0 && a.ret < 0) {
		gw_conn_close(*tx);
		*tx = NULL;
		r = a.ret;
	}
	if (r < 0) {
		gw_conn_close(a.conn);
		return r;
	}
	*rx = a.conn;
	return 0;
}

/* One run with n streams; returns MiB/s, < 0 on failure, SETUP_FAILED when the
 * transport could not listen, connect or register memory (the message is printed). */
#define SETUP_FAILED (-2.0)
static double run_godwit(struct bench *b, int n, int sockbuf)
{
	const struct gw_transport_ops *tp = b->tp;
	struct gw_transport_opts o = {.timeout_ms = CONN_TIMEOUT, .sockbuf = sockbuf};
	struct stream st[MAX_STREAMS];
	pthread_t tx[MAX_STREAMS], rx[MAX_STREAMS];
	struct gw_conn *lst = NULL;
	char addr[GW_TRANSPORT_NAME_MAX];
	double mibs = -1;
	int r, i;

	memset(st, 0, sizeof(st));
	b->nstreams = n;
	format_addr(addr, sizeof(addr), b->ip, 0);
	r = tp->listen(addr, &o, &lst);
	if (r < 0) {
		fprintf(stderr, "bench: %s: cannot listen on %s: %s\n", tp->name, b->ip,
			strerror(-r));
		return SETUP_FAILED;
	}
	format_addr(addr, sizeof(addr), b->ip, gw_conn_local_port(lst));
	for (i = 0; i < n; i++) {
		st[i] = (struct stream){.b = b, .idx = i};
		r = connect_pair(lst, addr, &o, tp, b->tls, &st[i].tx, &st[i].rx);
		if (r < 0) {
			fprintf(stderr, "bench: %s: cannot connect to %s: %s %s\n", tp->name, addr,
				strerror(-r), gw_tls_last_error());
			mibs = SETUP_FAILED;
			goto out;
		}
		/*
		 * Zero copy: every page a sender sends lies in src, so RDMA posts it straight
		 * from there (only the 32-byte headers go through the bounce buffer); dst on
		 * the receiving end costs nothing. TCP: no-ops.
		 */
		r = gw_conn_register_mem(st[i].tx, b->src, BUF_BYTES);
		if (r == 0)
			r = gw_conn_register_mem(st[i].rx, b->dst, BUF_BYTES);
		if (r == 0 && gw_conn_can_place(st[i].rx)) {
			r = gw_conn_expose_mem(st[i].rx, b->dst, BUF_BYTES, &st[i].place);
			st[i].placed = r == 0;
		}
		if (r < 0) {
			fprintf(stderr, "bench: %s on %s: cannot register the buffers: %s\n",
				tp->name, b->ip, strerror(-r));
			mibs = SETUP_FAILED;
			goto out;
		}
	}
	pthread_barrier_init(&b->start, NULL, (unsigned)(2 * n + 1));
	for (i = 0; i < n; i++) {
		pthread_create(&rx[i], NULL, receiver_main, &st[i]);
		pthread_create(&tx[i], NULL, sender_main, &st[i]);
	}
	unsigned long long t0 = gw_now_mono_ns();
	pthread_barrier_wait(&b->start);
	for (i = 0; i < n; i++) {
		pthread_join(tx[i], NULL);
		pthread_join(rx[i], NULL);
	}
	unsigned long long t1 = gw_now_mono_ns();
	pthread_barrier_destroy(&b->start);

	uint64_t batches = 0, bad = 0;
	r = 0;
	for (i = 0; i < n; i++) {
		batches += st[i].batches;
		bad += st[i].crc_errors;
		if (st[i].ret < 0 && r == 0)
			r = st[i].ret;
	}
	if (r < 0 || batches != b->total_batches || bad) {
		fprintf(stderr, "bench: %d streams: %s, %llu/%llu batches, %llu CRC errors\n", n,
			r < 0 ? strerror(-r) : "ok", (unsigned long long)batches,
			(unsigned long long)b->total_batches, (unsigned long long)bad);
		goto out;
	}
	mibs = (double)batches * BATCH_PAGES * GW_PAGE_SIZE / MIB / ((double)(t1 - t0) / 1e9);
out:
	for (i = 0; i < n; i++) {
		gw_conn_close(st[i].tx);
		gw_conn_close(st[i].rx);
	}
	gw_conn_close(lst);
	return mibs;
}

/* A free TCP port on ip for iperf3 (taken by listening on port 0, then released). */
static int free_port(const char *ip)
{
	struct gw_conn *lst;
	char addr[GW_TRANSPORT_NAME_MAX];
	format_addr(addr, sizeof(addr), ip, 0);
	if (gw_transport_get("tcp")->listen(addr, NULL, &lst) < 0)
		return -1;
	int port = gw_conn_local_port(lst);
	gw_conn_close(lst);
	return port;
}

/* end.sum_received.bits_per_second from iperf3 -J output; < 0 when absent. */
static double parse_iperf_bps(const char *json)
{
	const char *p = strstr(json, "\"sum_received\"");
	if (!p)
		return -1;
	p = strstr(p, "\"bits_per_second\"");
	if (!p)
		return -1;
	p = strchr(p, ':');
	return p ? strtod(p + 1, NULL) : -1;
}

/*
 * iperf3 (always TCP) on ip with n parallel streams for secs seconds; MiB/s or < 0. ip has
 * passed inet_pton in main, so it is safe in the shell command below.
 */
static double run_iperf3(const char *ip, int n, int secs)
{
	static char out[1 << 20];
	char cmd[256], portstr[16];
	double mibs = -1;
	int port = free_port(ip);
	pid_t srv;

	if (port < 0)
		return -1;
	snprintf(portstr, sizeof(portstr), "%d", port);
	fflush(NULL); /* the child must not flush our buffered output a second time */
	srv = fork();
	if (srv < 0)
		return -1;
	if (srv == 0) {
		int devnull = open("/dev/null", O_WRONLY);
		if (devnull < 0 || dup2(devnull, 1) < 0 || dup2(devnull, 2) < 0)
			_exit(127);
		execlp("iperf3", "iperf3", "-s", "-1", "-B", ip, "-p", portstr, (char *)NULL);
		_exit(127);
	}
	snprintf(cmd, sizeof(cmd), "iperf3 -c %s -p %d -t %d -P %d -J 2>/dev/null", ip, port, secs,
		 n);
	for (int attempt = 0; attempt < 30 && mibs < 0; attempt++) {
		usleep(100 * 1000); /* let the server start listening */
		FILE *f = popen(cmd, "r");
		if (!f)
			break;
		size_t len = fread(out, 1, sizeof(out) - 1, f);
		out[len] = '\0';
		int st = pclose(f);
		if (WIFEXITED(st) && WEXITSTATUS(st) == 127) {
			fprintf(stderr,
				"bench: iperf3 not found (deploy/install-deps.sh installs it)\n");
			break;
		}
		double bps = parse_iperf_bps(out);
		if (bps > 0)
			mibs = bps / 8 / MIB;
	}
	kill(srv, SIGTERM); /* already gone after one test (-1); else stop it */
	waitpid(srv, NULL, 0);
	return mibs;
}

/*
 * GiB/s of one CRC function, best of three passes of `reps` runs over buf[0..len):
 * the whole 256 MiB buffer (memory bound), or one 256 KiB batch again and again (in cache).
 */
static double crc_speed(uint32_t (*fn)(uint32_t, const void *, size_t), const uint8_t *buf,
			size_t len, int reps, uint32_t *sink)
{
	double best = 0;
	for (int pass = 0; pass < 3; pass++) {
		unsigned long long t0 = gw_now_mono_ns();
		for (int r = 0; r < reps; r++)
			*sink ^= fn(0, buf, len);
		double s = (double)(gw_now_mono_ns() - t0) / 1e9;
		double gibs = (double)len * reps / (MIB * 1024.0) / s;
		if (gibs > best)
			best = gibs;
	}
	return best;
}

/* The median of v[0..n) (sorted in place); any failure (< 0) wins. */
static double median(double *v, int n)
{
	for (int i = 0; i < n; i++) {
		if (v[i] < 0)
			return v[i];
		for (int j = i; j > 0 && v[j - 1] > v[j]; j--) {
			double x = v[j];
			v[j] = v[j - 1];
			v[j - 1] = x;
		}
	}
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void usage(void)
{
	fprintf(
	    stderr,
	    "usage: bench_transport [-T tcp|rdma (tcp)] [-a IP (127.0.0.1; IPv4 or IPv6)]\n"
	    "                       [-S CERTDIR (also over TLS: ca.pem, bench.pem, bench.key)]\n"
	    "                       [-R runs per figure, median (1)]\n"
	    "                       [-g GiB total (2)] [-t iperf3 seconds (5)]\n"
	    "                       [-b sockbuf bytes, -1 = autotune; tcp] [-I (no iperf3)]\n"
	    "  -T rdma needs the RDMA transport built in and -a the IP of an RDMA-capable\n"
	    "  interface (RoCE, iWARP or IPoIB); the source buffer is registered on every\n"
	    "  sending connection (zero copy). The iperf3 column is always TCP on the same IP:\n"
	    "  for RDMA the meaningful reference is perftest's ib_write_bw on that device\n"
	    "  (run it by hand; this benchmark does not use it).\n");
}

static void on_alarm(int sig)
{
	static const char msg[] = "bench: took longer than its bound, stopping\n";
	(void)!write(2, msg, sizeof(msg) - 1);
	_exit(2);
}

int main(int argc, char **argv)
{
	static const int streams[] = {1, 2, 4};
	struct bench b = {0};
	int gib = 2, secs = 5, sockbuf = 0, skip_iperf = 0, runs = 1, opt;
	const char *certdir = NULL;
	const char *tname = "tcp", *ip_arg = "127.0.0.1";
	char ip[INET6_ADDRSTRLEN];
	uint32_t sink = 0;

	while ((opt = getopt(argc, argv, "T:a:g:t:b:IS:R:h")) != -1) {
		switch (opt) {
		case 'T':
			tname = optarg;
			break;
		case 'a':
			ip_arg = optarg;
			break;
		case 'g':
			gib = atoi(optarg);
			break;
		case 't':
			secs = atoi(optarg);
			break;
		case 'b':
			sockbuf = atoi(optarg);
			break;
		case 'I':
			skip_iperf = 1;
			break;
		case 'S':
			certdir = optarg;
			break;
		case 'R':
			runs = atoi(optarg);
			break;
		default:
			usage();
			return opt == 'h' ? 0 : 2;
		}
	}
	if (gib < 1 || gib > 16 || secs < 1 || secs > 10 || runs < 1 || runs > 15) {
		usage();
		return 2;
	}
	/* the IP: an IPv4 or IPv6 literal ("[v6]" accepted too), kept without brackets */
	const char *ip_in = ip_arg;
	size_t iplen = strlen(ip_in);
	if (ip_in[0] == '[' && iplen > 2 && ip_in[iplen - 1] == ']') {
		ip_in++;
		iplen -= 2;
	}
	struct in6_addr a6;
	int ip_ok = iplen < sizeof(ip);
	if (ip_ok) {
		memcpy(ip, ip_in, iplen);
		ip[iplen] = '\0';
		ip_ok = inet_pton(AF_INET, ip, &a6) == 1 || inet_pton(AF_INET6, ip, &a6) == 1;
	}
	if (!ip_ok) {
		fprintf(stderr, "bench: -a %s: not an IPv4 or IPv6 address\n", ip_arg);
		usage();
		return 2;
	}
	if (strcmp(tname, "tcp") != 0 && strcmp(tname, "rdma") != 0) {
		fprintf(stderr, "bench: -T %s: tcp or rdma\n", tname);
		usage();
		return 2;
	}
	b.tp = gw_transport_get(tname);
	if (!b.tp) {
		fprintf(stderr, "bench: RDMA transport not built in\n");
		return 2;
	}
	b.ip = ip;
	int is_tcp = strcmp(b.tp->name, "tcp") == 0;
	/* fail before allocating and filling 512 MiB when the transport cannot listen here */
	{
		struct gw_conn *probe = NULL;
		char addr[GW_TRANSPORT_NAME_MAX];
		format_addr(addr, sizeof(addr), ip, 0);
		int r = b.tp->listen(addr, NULL, &probe);
		gw_conn_close(probe);
		if (r < 0) {
			fprintf(stderr, "bench: %s: cannot listen on %s: %s\n", b.tp->name, ip,
				strerror(-r));
			return 1;
		}
	}
	struct gw_tls_ctx *tls = NULL;
	if (certdir) {
		char ca[512], crt[512], key[512], err[1024];
		snprintf(ca, sizeof(ca), "%s/ca.pem", certdir);
		snprintf(crt, sizeof(crt), "%s/bench.pem", certdir);
		snprintf(key, sizeof(key), "%s/bench.key", certdir);
		if (!is_tcp ||
		    gw_tls_ctx_new(GW_TLS_REQUIRED, ca, crt, key, &tls, err, sizeof(err))) {
			fprintf(stderr, "bench: -S %s: %s\n", certdir,
				is_tcp ? err : "TLS is for the TCP transport only");
			return 2;
		}
	}
	signal(SIGALRM, on_alarm);
	alarm(120 * runs * (tls ? 2 : 1));

	b.src = mmap(NULL, BUF_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	b.dst = mmap(NULL, BUF_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (b.src == MAP_FAILED || b.dst == MAP_FAILED) {
		perror("bench: mmap");
		return 1;
	}
	uint64_t x = 0x9E3779B97F4A7C15ull;
	for (size_t i = 0; i < BUF_BYTES / 8; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		memcpy(b.src + i * 8, &x, 8);
	}
	memset(b.dst, 0,
	       BUF_BYTES); /* fault the destination in: measure the transport, not page faults */
	b.total_batches = ((uint64_t)gib << 30) / (BATCH_PAGES * GW_PAGE_SIZE);

	size_t batch = BATCH_PAGES * GW_PAGE_SIZE;
	double hw = crc_speed(gw_crc32c, b.src, BUF_BYTES, 1, &sink);
	double hw_hot = crc_speed(gw_crc32c, b.src, batch, 2048, &sink);
	double sw_hot = crc_speed(gw_crc32c_sw, b.src, batch, 512, &sink);
	printf("CRC32C alone (%s): %.2f GiB/s over 256 MiB, %.2f GiB/s on a cached 256 KiB batch;"
	       " table fallback %.2f GiB/s\n",
	       gw_crc32c_hw_available() ? "SSE4.2" : "no SSE4.2: tables", hw, hw_hot, sw_hot);
	if (is_tcp && strcmp(ip, "127.0.0.1") == 0) /* the default: the line it always was */
		printf("loopback 127.0.0.1");
	else
		printf("transport %s on %s (iperf3 column: TCP on the same IP%s)", b.tp->name, ip,
		       is_tcp ? "" : ", not an RDMA reference: see ib_write_bw from perftest");
	printf(", %d GiB per run from a 256 MiB buffer, batches of %u x 4 KiB "
	       "pages (65 iovecs) with header + CRC32C both ends, %s %s\n",
	       gib, BATCH_PAGES,
	       is_tcp ? "sockbuf"
		      : "pages RDMA-written straight into the destination buffer (direct "
			"placement, as the engine), zero copy from the registered source,",
	       !is_tcp	      ? "sockbuf n/a"
	       : sockbuf < 0  ? "autotuned"
	       : sockbuf == 0 ? "4 MiB (default)"
			      : "custom");
	if (tls)
		printf("%-8s %14s %14s %8s %14s %8s   (medians of %d runs, TLS 1.3 %s)\n",
		       "streams", "godwit MiB/s", "TLS MiB/s", "TLS/tcp", "iperf3 MiB/s", "ratio",
		       runs, "TLS_AES_128_GCM_SHA256, no kTLS unless the kernel has CONFIG_TLS");
	else
		printf("%-8s %14s %14s %8s\n", "streams", "godwit MiB/s", "iperf3 MiB/s", "ratio");
	int failed = 0;
	for (size_t k = 0; k < sizeof(streams) / sizeof(streams[0]); k++) {
		int n = streams[k];
		double g_runs[16], t_runs[16], g = 0, t = 0;
		for (int rep = 0; rep < 16; rep++)
			g_runs[rep] = t_runs[rep] = SETUP_FAILED; /* a run that never happened */
		for (int rep = 0; rep < runs; rep++) {
			b.tls = NULL;
			g_runs[rep] = run_godwit(&b, n, sockbuf);
			if (g_runs[rep] == SETUP_FAILED)
				break;
			b.tls = tls;
			t_runs[rep] = tls ? run_godwit(&b, n, sockbuf) : 0;
			if (t_runs[rep] == SETUP_FAILED) {
				g_runs[rep] = SETUP_FAILED;
				break;
			}
		}
		g = median(g_runs, runs);
		t = median(t_runs, runs);
		if (g == SETUP_FAILED || g_runs[0] == SETUP_FAILED) { /* said why on one line */
			munmap(b.src, BUF_BYTES);
			munmap(b.dst, BUF_BYTES);
			return 1;
		}
		double ref = skip_iperf ? -1 : run_iperf3(ip, n, secs);
		if (g < 0 || (tls && t < 0))
			failed = 1;
		printf("%-8d %14.0f ", n, g);
		if (tls)
			printf("%14.0f %8.2f ", t, t / g);
		if (ref > 0)
			printf("%14.0f %8.2f\n", ref, g / ref);
		else
			printf("%14s %8s\n", "n/a", "n/a");
		fflush(stdout);
	}
	gw_tls_ctx_free(tls);
	if (memcmp(b.src, b.dst, BUF_BYTES) != 0) {
		fprintf(stderr, "bench: destination differs from source\n");
		failed = 1;
	}
	munmap(b.src, BUF_BYTES);
	munmap(b.dst, BUF_BYTES);
	return failed ? 1
		      : (int)(sink & 0); /* sink keeps the CRC passes from being optimised away */
}

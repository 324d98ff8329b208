/* vmm_main.c -- godwit-vmm: one VM per process, controlled over VMDIR/vmm.sock. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "control.pb-c.h"
#include "gw_frame.h"
#include "gw_fsutil.h"
#include "gw_log.h"
#include "vmm.h"
#include "vmm_mig_control.h"

#define SUBSYS	    "main"
#define MAX_CLIENTS 16
#define CLIENT_BUF  4096 /* requests are tiny (GwVmmReq is empty) */

struct client {
	int fd;
	int passed_fd; /* an fd that came with the pending frame (SCM_RIGHTS), or -1 */
	size_t len;
	uint8_t buf[CLIENT_BUF];
};

struct vmm_main {
	const char *name;
	const char *dir;
	struct gw_vmm *vmm;
	char sock_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char status_path[PATH_MAX];
	int listen_fd;
	int sig_fd;
	int ready_fd;
	bool quit;
	struct client clients[MAX_CLIENTS];
	struct gw_vmm_mig_ctx mig;
	struct gw_vmm_dirtyrate dr; /* the balancer's dirty-rate samples */
};

static void usage(FILE *f)
{
	fprintf(f, "usage: godwit-vmm --name NAME --dir VMDIR --image PATH --memory-mib N\n"
		   "                  [--vcpus N] [--cmdline STR] [--ready-fd FD] [--incoming]\n"
		   "                  [--ram-fd FD] [--vm-backend auto|kvm|process]\n"
		   "                  [--console-max-kib N]\n"
		   "       godwit-vmm --probe-backend auto|kvm|process\n"
		   "                  (prints the backend that would run; exit 77 when none)\n");
}

/* ---- status file ---- */

static int status_write_raw(struct vmm_main *m, const char *state, const int *exit_status,
			    const char *reason, uint64_t runtime_ns)
{
	GwVmmStatus st = GW_VMM_STATUS__INIT;
	uint8_t buf[1024];
	size_t len;
	int r;

	st.state = (char *)state;
	if (exit_status) {
		st.has_exit_status = 1;
		st.exit_status = *exit_status;
	}
	if (reason && reason[0])
		st.reason = (char *)reason;
	st.has_pid = 1;
	st.pid = (int32_t)getpid();
	st.has_guest_runtime_ns = 1;
	st.guest_runtime_ns = runtime_ns;
	len = gw_vmm_status__get_packed_size(&st);
	if (len > sizeof(buf))
		return -EMSGSIZE;
	gw_vmm_status__pack(&st, buf);
	/* final states are durable; running/paused flips need not be */
	r = (!strcmp(state, "running") || !strcmp(state, "paused") || !strcmp(state, "migrating"))
		? gw_file_replace(m->status_path, buf, len, 0600)
		: gw_file_write_atomic(m->status_path, buf, len, 0600);
	if (r)
		gw_err(SUBSYS, "%s: cannot write %s: %s", m->name, m->status_path, strerror(-r));
	return r;
}

/* Fill st from the VM (reason/state point into the given buffers). */
static void status_fill(struct vmm_main *m, GwVmmStatus *st, char *reason, size_t reason_len)
{
	int status = 0;
	enum gw_vmm_state s = gw_vmm_get_state(m->vmm, &status, reason, reason_len);

	gw_vmm_status__init(st);
	st->state = (char *)gw_vmm_state_name(s);
	/* a migration in either direction, or an incoming VM waiting for its pages */
	if ((gw_vmm_mig_active() && (s == GW_VMM_RUNNING || s == GW_VMM_PAUSED)) ||
	    s == GW_VMM_CREATED)
		st->state = "migrating";
	if (s == GW_VMM_STOPPED || s == GW_VMM_CRASHED) {
		st->has_exit_status = 1;
		st->exit_status = status;
		if (reason[0])
			st->reason = reason;
	}
	st->has_pid = 1;
	st->pid = (int32_t)getpid();
	st->has_guest_runtime_ns = 1;
	st->guest_runtime_ns = gw_vmm_guest_runtime_ns(m->vmm);
	st->backend = (char *)gw_vmm_backend_name(m->vmm);
}

static void status_write(struct vmm_main *m)
{
	char reason[256];
	GwVmmStatus st;

	status_fill(m, &st, reason, sizeof(reason));
	status_write_raw(m, st.state, st.has_exit_status ? &st.exit_status : NULL, st.reason,
			 st.guest_runtime_ns);
}

/* ---- start-up ---- */

static void ready_reply(struct vmm_main *m, const char *fmt, const char *arg)
{
	char line[600];
	int n;

	if (m->ready_fd < 0)
		return;
	n = snprintf(line, sizeof(line), fmt, arg);
	if (n > (int)sizeof(line) - 1)
		n = (int)sizeof(line) - 1;
	if (write(m->ready_fd, line, (size_t)n) < 0)
		gw_warn(SUBSYS, "%s: write to ready fd: %s", m->name, strerror(errno));
	close(m->ready_fd);
	m->ready_fd = -1;
}

/* Start-up failed: tell the agent through the ready fd and the status file, then exit 2. */
static void __attribute__((noreturn)) fail_startup(struct vmm_main *m, const char *msg)
{
	gw_err(SUBSYS, "%s: start-up failed: %s", m->name, msg);
	ready_reply(m, "ERR %s\n", msg);
	if (m->status_path[0])
		status_write_raw(m, "crashed", NULL, msg, 0);
	if (m->listen_fd >= 0)
		unlink(m->sock_path);
	exit(2);
}

static int listen_socket(struct vmm_main *m, char *err, size_t errlen)
{
	struct sockaddr_un sa;
	int fd, r;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, m->sock_path, sizeof(sa.sun_path));
	unlink(m->sock_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		r = -errno;
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return r;
	}
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(m->sock_path, 0600) < 0 ||
	    listen(fd, MAX_CLIENTS) < 0) {
		r = -errno;
		snprintf(err, errlen, "cannot listen on %s: %s", m->sock_path, strerror(errno));
		close(fd);
		return r;
	}
	return fd;
}

/* SIGTERM/SIGINT arrive through a signalfd; SIGPIPE and SIGHUP are ignored so that the VM
 * outlives its agent and its terminal. */
static int signals_setup(void)
{
	sigset_t set;

	signal(SIGPIPE, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGCHLD, SIG_DFL); /* the process backend waits for its sandbox (an inherited
				     SIG_IGN would have the kernel reap it unseen) */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return -errno;
	return signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
}

static int parse_uint(const char *s, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v > max || s[0] == '-')
		return -EINVAL;
	*out = v;
	return 0;
}

/* --probe-backend: which backend would run a VM here (scripts and tests ask this). */
static int probe_backend(const char *name)
{
	const char *chosen = NULL;
	char why[512];

	if (gw_vmm_probe_backend(name, &chosen, why, sizeof(why)) < 0) {
		fprintf(stderr, "no usable VM backend: %s\n", why);
		return 77;
	}
	printf("%s\n", chosen);
	return 0;
}

static void parse_args(int argc, char **argv, struct vmm_main *m, struct gw_vmm_config *cfg)
{
	static const struct option opts[] = {
	    {"name", required_argument, NULL, 'n'},
	    {"dir", required_argument, NULL, 'd'},
	    {"image", required_argument, NULL, 'i'},
	    {"memory-mib", required_argument, NULL, 'm'},
	    {"vcpus", required_argument, NULL, 'c'},
	    {"cmdline", required_argument, NULL, 'l'},
	    {"ready-fd", required_argument, NULL, 'r'},
	    {"incoming", no_argument, NULL, 'I'},
	    {"ram-fd", required_argument, NULL, 'R'},
	    {"vm-backend", required_argument, NULL, 'B'},
	    {"console-max-kib", required_argument, NULL, 'C'},
	    {"probe-backend", required_argument, NULL, 'P'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	unsigned long v, mib = 0;
	bool bad = false;
	int c;

	cfg->vcpus = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'n':
			m->name = optarg;
			break;
		case 'd':
			m->dir = optarg;
			break;
		case 'i':
			cfg->image_path = optarg;
			break;
		case 'm':
			bad |= parse_uint(optarg, GW_VMM_MAX_MEM_MIB, &mib) < 0;
			break;
		case 'c':
			bad |= parse_uint(optarg, GW_VMM_MAX_VCPUS, &v) < 0;
			cfg->vcpus = (unsigned)v;
			break;
		case 'l':
			cfg->cmdline = optarg;
			break;
		case 'r':
			if (parse_uint(optarg, INT_MAX, &v) < 0 || fcntl((int)v, F_GETFD) < 0)
				bad = true;
			else
				m->ready_fd = (int)v;
			break;
		case 'I':
			cfg->incoming = true;
			break;
		case 'R':
			if (parse_uint(optarg, INT_MAX, &v) < 0 || v == 0 ||
			    fcntl((int)v, F_GETFD) < 0)
				bad = true;
			else
				cfg->ram_fd = (int)v;
			break;
		case 'B':
			cfg->backend = optarg;
			break;
		case 'C':
			bad |= parse_uint(optarg, 1024 * 1024, &v) < 0;
			cfg->console_max_bytes = (size_t)v << 10;
			break;
		case 'P':
			exit(probe_backend(optarg));
		case 'h':
			usage(stdout);
			exit(0);
		default:
			bad = true;
		}
	}
	if (m->name) {
		char ident[96];

		snprintf(ident, sizeof(ident), "vmm[%s]", m->name);
		gw_log_set_ident(ident);
	}
	if (bad || optind != argc || !m->name || !m->dir || !cfg->image_path || !mib) {
		usage(stderr);
		ready_reply(m, "ERR %s\n", "invalid arguments");
		exit(2);
	}
	cfg->name = m->name;
	cfg->mem_bytes = (uint64_t)mib << 20;
}

/* ---- control socket ---- */

static void client_close(struct client *c)
{
	close(c->fd);
	c->fd = -1;
	c->len = 0;
	if (c->passed_fd >= 0)
		close(c->passed_fd);
	c->passed_fd = -1;
}

static void accept_clients(struct vmm_main *m)
{
	for (;;) {
		int fd = accept4(m->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		int slot = -1;

		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR)
				gw_warn(SUBSYS, "%s: accept: %s", m->name, strerror(errno));
			return;
		}
		for (int i = 0; i < MAX_CLIENTS; i++) {
			if (m->clients[i].fd < 0) {
				slot = i;
				break;
			}
		}
		if (slot < 0) {
			gw_warn(SUBSYS, "%s: more than %d control clients, refusing one", m->name,
				MAX_CLIENTS);
			gw_msg_send_error(fd, -EBUSY, "too many clients");
			close(fd);
			continue;
		}
		m->clients[slot].fd = fd;
		m->clients[slot].passed_fd = -1;
		m->clients[slot].len = 0;
	}
}

static int reply_status(struct vmm_main *m, int fd)
{
	char reason[256];
	GwVmmStatus st;

	status_fill(m, &st, reason, sizeof(reason));
	gw_vmm_dirtyrate_poll(m->vmm, &m->dr, strcmp(st.state, "running") == 0);
	if (m->dr.has) {
		st.has_dirty_rate_pps = 1;
		st.dirty_rate_pps = m->dr.rate_pps;
	}
	return gw_msg_send(fd, GW_MSG_TYPE__GW_MSG_VMM_STATUS_REPLY, &st.base);
}

/* Final state reached (guest, request or signal): persist it, remove the socket, and leave
 * the event loop. */
static void finish(struct vmm_main *m)
{
	gw_vmm_mig_cancel_and_wait();
	gw_vmm_console_flush(m->vmm);
	status_write(m);
	unlink(m->sock_path);
	m->quit = true;
}

/* One request frame: act, then answer with the status after the action or an error. */
static int handle_request(struct vmm_main *m, int fd, const struct gw_frame *f)
{
	GwVmmReq *req;
	int r = 0;

	if (gw_vmm_mig_is_request(f->type)) {
		struct client *c = NULL;
		gw_vmm_dirtyrate_stop(m->vmm, &m->dr); /* the migration owns the dirty log */
		for (int i = 0; i < MAX_CLIENTS; i++)
			if (m->clients[i].fd == fd)
				c = &m->clients[i];
		int pfd = c ? c->passed_fd : -1;
		if (c)
			c->passed_fd = -1;
		r = gw_vmm_mig_handle(&m->mig, fd, f->type, f->payload, f->len, pfd);
		status_write(m);
		return r;
	}
	req = gw_vmm_req__unpack(NULL, f->len, f->payload);
	if (!req)
		return gw_msg_send_error(fd, -EBADMSG, "malformed GwVmmReq");
	gw_vmm_req__free_unpacked(req, NULL);

	switch (f->type) {
	case GW_MSG_TYPE__GW_MSG_VMM_STATUS:
		break;
	case GW_MSG_TYPE__GW_MSG_VMM_PAUSE:
		gw_vmm_dirtyrate_stop(m->vmm, &m->dr);
		r = gw_vmm_pause(m->vmm);
		if (!r)
			status_write(m);
		break;
	case GW_MSG_TYPE__GW_MSG_VMM_RESUME:
		r = gw_vmm_resume(m->vmm);
		if (!r)
			status_write(m);
		break;
	case GW_MSG_TYPE__GW_MSG_VMM_STOP:
		gw_info(SUBSYS, "%s: stop requested", m->name);
		gw_vmm_mig_cancel_and_wait();
		gw_vmm_stop(m->vmm, "stopped by request");
		finish(m);
		break;
	default:
		return gw_msg_send_error(fd, -EOPNOTSUPP, "unknown request type %u", f->type);
	}
	if (r) {
		enum gw_vmm_state s = gw_vmm_get_state(m->vmm, NULL, NULL, 0);

		return gw_msg_send_error(fd, r, "cannot %s a %s VM",
					 f->type == GW_MSG_TYPE__GW_MSG_VMM_PAUSE ? "pause"
										  : "resume",
					 gw_vmm_state_name(s));
	}
	return reply_status(m, fd);
}

/* Read what the client sent and answer every complete frame; drop it on EOF or garbage. */
static void client_input(struct vmm_main *m, struct client *c)
{
	for (;;) {
		/* recvmsg, not read: the agent hands migration sockets over with SCM_RIGHTS */
		struct iovec iov = {c->buf + c->len, sizeof(c->buf) - c->len};
		union {
			struct cmsghdr h;
			char b[CMSG_SPACE(sizeof(int))];
		} cbuf;
		struct msghdr mh = {.msg_iov = &iov,
				    .msg_iovlen = 1,
				    .msg_control = cbuf.b,
				    .msg_controllen = sizeof(cbuf.b)};
		ssize_t n = recvmsg(c->fd, &mh, MSG_CMSG_CLOEXEC);
		for (struct cmsghdr *ch = CMSG_FIRSTHDR(&mh); n > 0 && ch;
		     ch = CMSG_NXTHDR(&mh, ch)) {
			if (ch->cmsg_level != SOL_SOCKET || ch->cmsg_type != SCM_RIGHTS)
				continue;
			int pfd;
			memcpy(&pfd, CMSG_DATA(ch), sizeof(pfd));
			if (c->passed_fd >= 0)
				close(c->passed_fd);
			c->passed_fd = pfd;
		}

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n <= 0) {
			client_close(c);
			return;
		}
		c->len += (size_t)n;
		if (c->len == sizeof(c->buf))
			break;
	}
	while (c->fd >= 0 && !m->quit) {
		struct gw_frame f;
		long used = gw_frame_parse(c->buf, c->len, CLIENT_BUF - GW_FRAME_HDR_LEN, &f);

		if (used == 0)
			return;
		if (used < 0) {
			gw_warn(SUBSYS, "%s: oversized control frame, dropping client", m->name);
			gw_msg_send_error(c->fd, -EMSGSIZE, "frame too large");
			client_close(c);
			return;
		}
		if (handle_request(m, c->fd, &f) < 0) {
			client_close(c);
			return;
		}
		memmove(c->buf, c->buf + used, c->len - (size_t)used);
		c->len -= (size_t)used;
	}
}

static void on_signal(struct vmm_main *m)
{
	struct signalfd_siginfo si;

	while (read(m->sig_fd, &si, sizeof(si)) == sizeof(si)) {
		gw_info(SUBSYS, "%s: signal %u received, stopping the VM", m->name, si.ssi_signo);
		gw_vmm_mig_cancel_and_wait();
		gw_vmm_stop(m->vmm, "terminated by signal");
		finish(m);
	}
}

static void on_vmm_event(struct vmm_main *m)
{
	uint64_t v;
	enum gw_vmm_state s;

	if (read(gw_vmm_event_fd(m->vmm), &v, sizeof(v)) < 0 && errno != EAGAIN)
		gw_warn(SUBSYS, "%s: read of VMM event fd: %s", m->name, strerror(errno));
	s = gw_vmm_get_state(m->vmm, NULL, NULL, 0);
	if (s == GW_VMM_STOPPED || s == GW_VMM_CRASHED)
		finish(m);
	else
		status_write(m);
}

/* A migration ended: keep running, or stop here for good (handed over / discarded). */
static void on_migration_end(struct vmm_main *m)
{
	char reason[300], to[160];
	uint64_t id = 0;

	if (gw_vmm_mig_finish(&m->mig, reason, sizeof(reason), to, sizeof(to), &id) ==
	    GW_VMM_MIG_KEEP_RUNNING) {
		if (gw_vmm_mig_event_fd() < 0) /* the migration has ended */
			gw_vmm_ram_trim(m->vmm);
		status_write(m);
		return;
	}
	gw_vmm_stop(m->vmm, reason);
	gw_vmm_console_flush(m->vmm);
	if (to[0]) {
		GwVmmStatus st = GW_VMM_STATUS__INIT;
		uint8_t buf[1024];
		st.state = "stopped";
		st.has_exit_status = 1;
		st.reason = reason;
		st.has_pid = 1;
		st.pid = (int32_t)getpid();
		st.migrated_to = to;
		st.has_migration_id = 1;
		st.migration_id = id;
		size_t len = gw_vmm_status__get_packed_size(&st);
		if (len <= sizeof(buf)) {
			gw_vmm_status__pack(&st, buf);
			gw_file_write_atomic(m->status_path, buf, len, 0600);
		}
	} else {
		status_write(m);
	}
	unlink(m->sock_path);
	m->quit = true;
}

static void event_loop(struct vmm_main *m)
{
	while (!m->quit) {
		struct pollfd pfd[4 + MAX_CLIENTS];
		int map[4 + MAX_CLIENTS];
		nfds_t n = 0;

		pfd[n++] = (struct pollfd){.fd = m->listen_fd, .events = POLLIN};
		pfd[n++] = (struct pollfd){.fd = m->sig_fd, .events = POLLIN};
		pfd[n++] = (struct pollfd){.fd = gw_vmm_event_fd(m->vmm), .events = POLLIN};
		pfd[n++] = (struct pollfd){.fd = gw_vmm_mig_event_fd(), .events = POLLIN};
		for (int i = 0; i < MAX_CLIENTS; i++) {
			if (m->clients[i].fd < 0)
				continue;
			map[n] = i;
			pfd[n++] = (struct pollfd){.fd = m->clients[i].fd, .events = POLLIN};
		}
		if (poll(pfd, n, -1) < 0) {
			if (errno == EINTR)
				continue;
			gw_err(SUBSYS, "%s: poll: %s; stopping the VM", m->name, strerror(errno));
			gw_vmm_stop(m->vmm, "VMM event loop failed");
			finish(m);
			break;
		}
		if (pfd[2].revents)
			on_vmm_event(m);
		if (!m->quit && pfd[3].fd >= 0 && pfd[3].revents)
			on_migration_end(m);
		if (!m->quit && pfd[1].revents)
			on_signal(m);
		if (!m->quit && pfd[0].revents)
			accept_clients(m);
		for (nfds_t i = 4; i < n && !m->quit; i++) {
			struct client *c = &m->clients[map[i]];

			if (pfd[i].revents && c->fd == pfd[i].fd)
				client_input(m, c);
		}
	}
}

int main(int argc, char **argv)
{
	struct vmm_main m = {.listen_fd = -1, .sig_fd = -1, .ready_fd = -1};
	struct gw_vmm_config cfg = {.console_fd = -1};
	char err[512], path[PATH_MAX];
	int r;

	for (int i = 0; i < MAX_CLIENTS; i++)
		m.clients[i].fd = -1;
	gw_log_set_ident("vmm");
	parse_args(argc, argv, &m, &cfg);
	setsid(); /* own session: no terminal or process-group signals from the agent's side */

	if (snprintf(m.status_path, sizeof(m.status_path), "%s/status", m.dir) >=
		(int)sizeof(m.status_path) ||
	    snprintf(m.sock_path, sizeof(m.sock_path), "%s/vmm.sock", m.dir) >=
		(int)sizeof(m.sock_path)) {
		m.status_path[0] = '\0';
		fail_startup(&m, "VM directory path too long for vmm.sock");
	}
	m.sig_fd = signals_setup();
	if (m.sig_fd < 0) {
		snprintf(err, sizeof(err), "signalfd: %s", strerror(errno));
		fail_startup(&m, err);
	}
	snprintf(path, sizeof(path), "%s/console.log", m.dir);
	/* read-write: the console cap keeps the newest half of the file (vmm_vcpu.c) */
	cfg.console_fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (cfg.console_fd < 0) {
		snprintf(err, sizeof(err), "open %s: %s", path, strerror(errno));
		fail_startup(&m, err);
	}

	r = gw_vmm_create(&cfg, &m.vmm, err, sizeof(err));
	if (r)
		fail_startup(&m, err);
	m.listen_fd = listen_socket(&m, err, sizeof(err));
	if (m.listen_fd < 0)
		fail_startup(&m, err);
	m.mig = (struct gw_vmm_mig_ctx){.vmm = m.vmm, .name = m.name, .dir = m.dir};
	r = cfg.incoming ? 0 : gw_vmm_start(m.vmm);
	if (r) {
		snprintf(err, sizeof(err), "cannot start vCPUs: %s", strerror(-r));
		gw_vmm_destroy(m.vmm);
		fail_startup(&m, err);
	}
	status_write(&m);
	snprintf(err, sizeof(err), "%d", (int)getpid());
	ready_reply(&m, "OK %s\n", err);
	gw_info(SUBSYS, "%s: running, control socket %s", m.name, m.sock_path);

	event_loop(&m);

	for (int i = 0; i < MAX_CLIENTS; i++)
		if (m.clients[i].fd >= 0)
			client_close(&m.clients[i]);
	close(m.listen_fd);
	close(m.sig_fd);
	gw_vmm_destroy(m.vmm);
	close(cfg.console_fd);
	gw_info(SUBSYS, "%s: VMM exiting", m.name);
	return 0;
}

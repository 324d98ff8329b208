/* gw-subreaper.c -- run a command as the child of a subreaper that reaps every orphan below it.
 *
 *   gw-subreaper CMD [ARGS...]
 *
 * libvirtd double-forks QEMU, so a QEMU is an orphan from the start, and libvirt reports a
 * crashed QEMU only once its zombie is reaped: under a slow PID 1 that takes seconds. Here the
 * orphans are re-parented to this process (PR_SET_CHILD_SUBREAPER), which reaps them at once.
 * SIGTERM, SIGINT and SIGHUP are passed on to CMD. When CMD exits, this process stays while
 * orphans (QEMUs) are left and keeps reaping them, then exits with CMD's status (128 + signal
 * if it was killed); so libvirtd can be stopped and started again while its guests run on.
 * Used by deploy/testcluster.sh --libvirt. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile pid_t main_pid;

static void forward(int sig)
{
	pid_t p = main_pid;
	if (p > 0)
		kill(p, sig);
}

int main(int argc, char **argv)
{
	static const int sigs[] = {SIGTERM, SIGINT, SIGHUP};
	struct sigaction sa;
	sigset_t block, old;
	int status = 0, rc = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: gw-subreaper CMD [ARGS...]\n");
		return 2;
	}
	if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0) {
		fprintf(stderr, "gw-subreaper: PR_SET_CHILD_SUBREAPER: %s\n", strerror(errno));
		return 1;
	}
	/* no signal is lost between fork and recording the child's pid */
	sigemptyset(&block);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaddset(&block, sigs[i]);
	sigprocmask(SIG_BLOCK, &block, &old);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = forward;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaction(sigs[i], &sa, NULL);

	pid_t pid = fork();
	if (pid < 0) {
		fprintf(stderr, "gw-subreaper: fork: %s\n", strerror(errno));
		return 1;
	}
	if (pid == 0) {
		signal(SIGTERM, SIG_DFL);
		signal(SIGINT, SIG_DFL);
		signal(SIGHUP, SIG_DFL);
		sigprocmask(SIG_SETMASK, &old, NULL);
		execvp(argv[1], argv + 1);
		fprintf(stderr, "gw-subreaper: %s: %s\n", argv[1], strerror(errno));
		_exit(127);
	}
	main_pid = pid;
	sigprocmask(SIG_SETMASK, &old, NULL);

	for (;;) {
		pid_t w = waitpid(-1, &status, 0);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			break; /* ECHILD: nothing left to reap */
		}
		if (w == pid) {
			main_pid = 0;
			rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		}
	}
	return rc;
}

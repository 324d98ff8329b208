/* ram_pool.c -- pre-populated guest RAM for incoming migrations: a memfd filled by a child
 * process, handed to the incoming VM's godwit-vmm (see ram_pool.h). */
#include "ram_pool.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gw_fsutil.h"
#include "gw_log.h"

#define SUBSYS "pool"

void gw_ram_pool_init(struct gw_ram_pool *p, uint64_t mib)
{
	memset(p, 0, sizeof(*p));
	p->fd = -1;
	p->size = mib << 20;
}

static void fill_start(struct gw_ram_pool *p)
{
	int fd = memfd_create("godwit-ram-pool", MFD_CLOEXEC);
	if (fd < 0) {
		gw_err(SUBSYS, "memfd_create: %s", strerror(errno));
		return;
	}
	if (ftruncate(fd, (off_t)p->size) < 0) {
		gw_err(SUBSYS, "ftruncate to %llu MiB: %s", (unsigned long long)(p->size >> 20),
		       strerror(errno));
		close(fd);
		return;
	}
	pid_t pid = fork();
	if (pid < 0) {
		gw_err(SUBSYS, "fork: %s", strerror(errno));
		close(fd);
		return;
	}
	if (pid == 0) { /* allocate every page once; they stay in the memfd after we exit */
		void *a = mmap(NULL, p->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (a == MAP_FAILED || madvise(a, p->size, MADV_POPULATE_WRITE) < 0)
			_exit(1);
		_exit(0);
	}
	p->fd = fd;
	p->filler = pid;
	p->ready = false;
	p->fill_started_ms = gw_now_mono_ms();
}

void gw_ram_pool_tick(struct gw_ram_pool *p, bool busy)
{
	if (!p->size)
		return;
	if (p->filler) {
		int st;
		pid_t r = waitpid(p->filler, &st, WNOHANG);
		if (r == 0)
			return;
		p->filler = 0;
		if (r > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0) {
			p->ready = true;
			gw_info(SUBSYS,
				"%llu MiB of guest RAM ready for incoming migrations (filled in "
				"%llu ms)",
				(unsigned long long)(p->size >> 20),
				gw_now_mono_ms() - p->fill_started_ms);
		} else {
			gw_err(SUBSYS,
			       "filling %llu MiB failed (not enough memory?); retrying later",
			       (unsigned long long)(p->size >> 20));
			close(p->fd);
			p->fd = -1;
			p->taken_ms = gw_now_mono_ms();
		}
		return;
	}
	if (p->fd < 0 && !busy && gw_now_mono_ms() - p->taken_ms >= GW_RAM_POOL_REFILL_DELAY_MS)
		fill_start(p);
}

int gw_ram_pool_take(struct gw_ram_pool *p, uint64_t bytes)
{
	if (!p->ready || p->fd < 0 || bytes > p->size)
		return -1;
	int fd = p->fd;
	p->fd = -1;
	p->ready = false;
	p->taken_ms = gw_now_mono_ms();
	return fd;
}

uint64_t gw_ram_pool_covers_mib(const struct gw_ram_pool *p, uint64_t bytes)
{
	return p->ready && p->fd >= 0 && bytes <= p->size ? bytes >> 20 : 0;
}

void gw_ram_pool_close(struct gw_ram_pool *p)
{
	if (p->filler) {
		kill(p->filler, SIGKILL);
		waitpid(p->filler, NULL, 0);
		p->filler = 0;
	}
	if (p->fd >= 0)
		close(p->fd);
	p->fd = -1;
	p->ready = false;
}

/* vmm_core.c -- the micro-VMM's shared core: checks the configuration, makes guest RAM (a
 * fresh memfd or the agent's pool), loads the image, picks the backend (kvm or process, see
 * vmm_backend.h) and hands over to it; accessors and RAM helpers used by the migration glue.
 */
#include "vmm_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gw_fsutil.h"
#include "gw_log.h"

#define SUBSYS "vmm"

const char *gw_vmm_state_name(enum gw_vmm_state s)
{
	switch (s) {
	case GW_VMM_CREATED:
		return "created";
	case GW_VMM_RUNNING:
		return "running";
	case GW_VMM_PAUSED:
		return "paused";
	case GW_VMM_STOPPED:
		return "stopped";
	case GW_VMM_CRASHED:
		return "crashed";
	}
	return "unknown";
}

static int check_config(const struct gw_vmm_config *cfg, char *err, size_t errlen)
{
	if (!cfg->name || (!cfg->image_path && !cfg->incoming)) {
		gw_vmm_set_err(err, errlen, "name and image are required");
		return -EINVAL;
	}
	if (cfg->mem_bytes % (2ull << 20) || cfg->mem_bytes < (uint64_t)GW_VMM_MIN_MEM_MIB << 20 ||
	    cfg->mem_bytes > (uint64_t)GW_VMM_MAX_MEM_MIB << 20) {
		gw_vmm_set_err(err, errlen, "memory must be a multiple of 2 MiB in [%d, %d] MiB",
			       GW_VMM_MIN_MEM_MIB, GW_VMM_MAX_MEM_MIB);
		return -EINVAL;
	}
	if (cfg->vcpus < 1 || cfg->vcpus > GW_VMM_MAX_VCPUS) {
		gw_vmm_set_err(err, errlen, "vCPU count must be in [1, %d]", GW_VMM_MAX_VCPUS);
		return -EINVAL;
	}
	return 0;
}

/* Read the image file and place it, the boot tables and the command line in RAM. */
static int load_guest(struct gw_vmm *vmm, const struct gw_vmm_config *cfg, char *err, size_t errlen)
{
	char *image = NULL;
	size_t len = 0;
	int r;

	r = gw_file_read(cfg->image_path, (size_t)vmm->ram_size, &image, &len);
	if (r) {
		gw_vmm_set_err(err, errlen, "read image %s: %s", cfg->image_path, strerror(-r));
		return r;
	}
	r = gw_loader_load(vmm->ram, vmm->ram_size, vmm->nr_vcpus, (const uint8_t *)image, len,
			   &vmm->entry, err, errlen);
	free(image);
	if (r)
		return r;
	gw_loader_setup_tables(vmm->ram, vmm->ram_size);
	r = gw_loader_put_cmdline(vmm->ram, vmm->ram_size, cfg->cmdline);
	if (r) {
		gw_vmm_set_err(err, errlen, "command line longer than %d bytes",
			       GW_VMM_CMDLINE_MAX - 1);
		return r;
	}
	return 0;
}

uint8_t *gw_vmm_ram(struct gw_vmm *vmm, uint64_t *size)
{
	if (size)
		*size = vmm->ram_size;
	return vmm->ram;
}

unsigned gw_vmm_vcpu_count(struct gw_vmm *vmm)
{
	return vmm->nr_vcpus;
}

int gw_vmm_event_fd(struct gw_vmm *vmm)
{
	return vmm->event_fd;
}

enum gw_vmm_state gw_vmm_get_state(struct gw_vmm *vmm, int *exit_status, char *reason,
				   size_t reason_len)
{
	enum gw_vmm_state s;

	pthread_mutex_lock(&vmm->lock);
	s = vmm->state;
	if (exit_status)
		*exit_status = vmm->exit_status;
	if (reason && reason_len)
		snprintf(reason, reason_len, "%s", vmm->reason);
	pthread_mutex_unlock(&vmm->lock);
	return s;
}

uint64_t gw_vmm_guest_runtime_ns(struct gw_vmm *vmm)
{
	uint64_t ns;

	pthread_mutex_lock(&vmm->lock);
	ns = vmm->runtime_ns;
	if (vmm->state == GW_VMM_RUNNING)
		ns += gw_now_mono_ns() - vmm->run_since_ns;
	pthread_mutex_unlock(&vmm->lock);
	return ns;
}

int gw_vmm_ram_extent(struct gw_vmm *vmm, uint64_t from, uint64_t *start, uint64_t *end)
{
	if (from >= vmm->ram_size)
		return -ENXIO;
	off_t d = lseek(vmm->mem_fd, (off_t)from, SEEK_DATA);
	if (d < 0)
		return -errno;
	if ((uint64_t)d >= vmm->ram_size) /* data only in an untrimmed pool tail */
		return -ENXIO;
	off_t h = lseek(vmm->mem_fd, d, SEEK_HOLE);
	if (h < 0)
		return -errno;
	*start = (uint64_t)d;
	*end = (uint64_t)h < vmm->ram_size ? (uint64_t)h : vmm->ram_size;
	return 0;
}

void gw_vmm_ram_trim(struct gw_vmm *vmm)
{
	struct stat sb;
	if (!vmm->ram_tail)
		return;
	vmm->ram_tail = false;
	if (fstat(vmm->mem_fd, &sb) < 0 || ftruncate(vmm->mem_fd, (off_t)vmm->ram_size) < 0) {
		gw_warn(SUBSYS, "%s: cannot give back pool RAM beyond the guest's: %s", vmm->name,
			strerror(errno));
		return;
	}
	gw_info(SUBSYS, "%s: gave back %llu MiB of pool RAM beyond the guest's", vmm->name,
		(unsigned long long)(((uint64_t)sb.st_size - vmm->ram_size) >> 20));
}

/* ---- guest RAM: the memfd every backend maps ---- */

/* Make or take over the memfd and map it here (the engine reads and writes RAM through this
 * mapping; the backend maps the same memfd into the guest). */
static int ram_create(struct gw_vmm *vmm, const struct gw_vmm_config *cfg, char *err, size_t errlen)
{
	int r;

	if (cfg->ram_fd > 0) { /* pre-populated by the agent: resident, zero */
		struct stat sb;
		if (fstat(cfg->ram_fd, &sb) < 0 || (uint64_t)sb.st_size < vmm->ram_size) {
			gw_vmm_set_err(err, errlen, "pool RAM fd %d: too small or unusable",
				       cfg->ram_fd);
			return -EINVAL;
		}
		fcntl(cfg->ram_fd, F_SETFD, FD_CLOEXEC);
		/* a pool larger than this VM: the tail goes back once the migration has ended
		 * (gw_vmm_ram_trim), not now, while the source waits */
		vmm->ram_tail = (uint64_t)sb.st_size > vmm->ram_size;
		vmm->mem_fd = cfg->ram_fd;
		gw_info(SUBSYS, "%s: guest RAM from the agent's pre-populated pool (%llu MiB)",
			cfg->name, (unsigned long long)(sb.st_size >> 20));
	} else {
		vmm->mem_fd = memfd_create("godwit-ram", MFD_CLOEXEC);
	}
	if (vmm->mem_fd < 0) {
		r = -errno;
		gw_vmm_set_err(err, errlen, "memfd_create: %s", strerror(errno));
		return r;
	}
	if (!vmm->ram_tail && ftruncate(vmm->mem_fd, (off_t)vmm->ram_size) < 0) {
		r = -errno;
		gw_vmm_set_err(err, errlen, "ftruncate of guest RAM to %llu bytes: %s",
			       (unsigned long long)vmm->ram_size, strerror(errno));
		return r;
	}
	vmm->ram = mmap(NULL, vmm->ram_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE,
			vmm->mem_fd, 0);
	if (vmm->ram == MAP_FAILED) {
		r = -errno;
		vmm->ram = NULL;
		gw_vmm_set_err(err, errlen, "mmap of guest RAM: %s", strerror(errno));
		return r;
	}
	return 0;
}

/* ---- backends ---- */

const struct gw_vmm_backend *gw_vmm_backend_pick(const char *name, char *why, size_t len)
{
	const struct gw_vmm_backend *order[] = {&gw_vmm_backend_kvm, &gw_vmm_backend_process};
	char one[160];
	size_t off = 0;

	if (why && len)
		why[0] = 0;
	if (!name || !*name)
		name = "auto";
	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		const struct gw_vmm_backend *be = order[i];

		if (strcmp(name, "auto") && strcmp(name, be->name))
			continue;
		if (be->probe(one, sizeof(one)) == 0)
			return be;
		if (why && off < len)
			off += (size_t)snprintf(why + off, len - off, "%s%s: %s", off ? "; " : "",
						be->name, one);
	}
	if (why && !off)
		snprintf(why, len, "unknown VM backend '%s' (auto, kvm or process)", name);
	return NULL;
}

const char *gw_vmm_backend_name(struct gw_vmm *vmm)
{
	return vmm->be->name;
}

int gw_vmm_create(const struct gw_vmm_config *cfg, struct gw_vmm **out, char *err, size_t errlen)
{
	const struct gw_vmm_backend *be;
	pthread_condattr_t cattr;
	struct gw_vmm *vmm;
	char why[400];
	int r;

	r = check_config(cfg, err, errlen);
	if (r)
		return r;
	be = gw_vmm_backend_pick(cfg->backend, why, sizeof(why));
	if (!be) {
		gw_vmm_set_err(err, errlen, "no usable VM backend: %s", why);
		return -ENODEV;
	}
	vmm = calloc(1, sizeof(*vmm));
	if (!vmm) {
		gw_vmm_set_err(err, errlen, "out of memory");
		return -ENOMEM;
	}
	vmm->be = be;
	snprintf(vmm->name, sizeof(vmm->name), "%s", cfg->name);
	vmm->console_fd = cfg->console_fd;
	vmm->console_max = cfg->console_max_bytes;
	vmm->kvm_fd = vmm->vm_fd = vmm->mem_fd = vmm->event_fd = -1;
	vmm->ram_size = cfg->mem_bytes;
	vmm->nr_vcpus = cfg->vcpus;
	vmm->incoming = cfg->incoming;
	vmm->dirty_ring_req = cfg->dirty_ring_entries;
	vmm->state = GW_VMM_CREATED;
	pthread_mutex_init(&vmm->lock, NULL);
	/* monotonic: the throttle sleeps with timed waits on it */
	pthread_condattr_init(&cattr);
	pthread_condattr_setclock(&cattr, CLOCK_MONOTONIC);
	pthread_cond_init(&vmm->cond, &cattr);
	pthread_condattr_destroy(&cattr);
	pthread_mutex_init(&vmm->console_lock, NULL);
	pthread_rwlock_init(&vmm->dirty_lock, NULL);
	vmm->vcpus = calloc(vmm->nr_vcpus, sizeof(*vmm->vcpus));
	if (!vmm->vcpus) {
		r = -ENOMEM;
		gw_vmm_set_err(err, errlen, "out of memory");
		goto fail;
	}
	for (unsigned i = 0; i < vmm->nr_vcpus; i++) {
		vmm->vcpus[i].fd = -1;
		vmm->vcpus[i].vmm = vmm;
		vmm->vcpus[i].index = i;
	}
	vmm->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vmm->event_fd < 0) {
		r = -errno;
		gw_vmm_set_err(err, errlen, "eventfd: %s", strerror(errno));
		goto fail;
	}
	r = ram_create(vmm, cfg, err, errlen);
	if (!r && !vmm->incoming)
		r = load_guest(vmm, cfg, err, errlen);
	if (r)
		goto fail;
	vmm->be_created = true;
	r = be->vm_create(vmm, cfg->cmdline != NULL, err, errlen);
	if (r)
		goto fail;
	gw_info(SUBSYS,
		"%s: VM created%s on the %s backend: %llu MiB, %u vCPU(s), entry 0x%llx, TSC %u "
		"kHz, dirty log %s",
		vmm->name, vmm->incoming ? " (incoming)" : "", be->name,
		(unsigned long long)(vmm->ram_size >> 20), vmm->nr_vcpus,
		(unsigned long long)vmm->entry, vmm->tsc_khz, gw_vmm_dirty_mode(vmm));
	*out = vmm;
	return 0;
fail:
	gw_vmm_destroy(vmm);
	return r;
}

void gw_vmm_destroy(struct gw_vmm *vmm)
{
	if (!vmm)
		return;
	gw_vcpu_threads_join(vmm);
	gw_vmm_console_flush(vmm);
	if (vmm->be_created) {
		vmm->be->dirty_destroy(vmm);
		vmm->be->vm_destroy(vmm);
	}
	gw_dirty_free(vmm);
	free(vmm->vcpus);
	if (vmm->ram)
		munmap(vmm->ram, vmm->ram_size);
	if (vmm->mem_fd >= 0)
		close(vmm->mem_fd);
	if (vmm->event_fd >= 0)
		close(vmm->event_fd);
	pthread_rwlock_destroy(&vmm->dirty_lock);
	pthread_mutex_destroy(&vmm->console_lock);
	pthread_cond_destroy(&vmm->cond);
	pthread_mutex_destroy(&vmm->lock);
	free(vmm);
}

int gw_vmm_probe_backend(const char *name, const char **chosen, char *why, size_t len)
{
	const struct gw_vmm_backend *be = gw_vmm_backend_pick(name, why, len);

	if (!be)
		return -ENODEV;
	if (chosen)
		*chosen = be->name;
	return 0;
}

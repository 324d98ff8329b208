/* vmtable.c -- the agent's VM table and its durable copy under STATE/vms/NAME/vm.pb. */
#include "vmtable.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gw_fsutil.h"
#include "gw_log.h"

static const char *state_names[] = {
    [GW_VM_DEFINED] = "defined", [GW_VM_RUNNING] = "running", [GW_VM_PAUSED] = "paused",
    [GW_VM_STOPPED] = "stopped", [GW_VM_CRASHED] = "crashed", [GW_VM_MIGRATING] = "migrating",
};

const char *gw_vm_state_name(enum gw_vm_state s)
{
	return (unsigned)s < sizeof(state_names) / sizeof(state_names[0]) ? state_names[s] : "?";
}

int gw_vm_state_parse(const char *s, enum gw_vm_state *out)
{
	for (unsigned i = 0; i < sizeof(state_names) / sizeof(state_names[0]); i++) {
		if (!strcmp(s, state_names[i])) {
			*out = (enum gw_vm_state)i;
			return 0;
		}
	}
	return -EINVAL;
}

int gw_vm_state_active(enum gw_vm_state s)
{
	return s == GW_VM_RUNNING || s == GW_VM_PAUSED || s == GW_VM_MIGRATING;
}

int gw_vm_name_valid(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n >= GW_NAME_MAX || name[0] == '.' || name[0] == '-')
		return 0;
	for (const char *p = name; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.'))
			return 0;
	return 1;
}

void gw_vm_to_info(const struct gw_vm *vm, const char *node, GwVmInfo *info)
{
	gw_vm_info__init(info);
	info->name = (char *)vm->name;
	info->state = (char *)gw_vm_state_name(vm->state);
	info->has_exit_status = vm->has_exit_status;
	info->exit_status = vm->exit_status;
	info->memory_mib = vm->memory_mib;
	info->vcpus = vm->vcpus;
	info->node = (char *)node;
	info->image = (char *)vm->image;
	info->cmdline = vm->cmdline;
	info->reason = vm->reason[0] ? (char *)vm->reason : NULL;
	info->has_pid = vm->pid > 0;
	info->pid = vm->pid;
	info->has_started_at_ms = vm->started_at_ms != 0;
	info->started_at_ms = vm->started_at_ms;
	info->has_pid_start_ticks = vm->pid_start != 0;
	info->pid_start_ticks = vm->pid_start;
	info->backend = vm->backend[0] ? (char *)vm->backend : NULL;
	info->driver = vm->driver[0] ? (char *)vm->driver : NULL;
	info->xml = vm->xml;
}

int gw_vm_from_info(struct gw_vm *vm, const GwVmInfo *info)
{
	if (!gw_vm_name_valid(info->name) || strlen(info->image) >= sizeof(vm->image) ||
	    (info->driver && strlen(info->driver) >= sizeof(vm->driver)) || info->memory_mib == 0 ||
	    info->vcpus == 0 || info->vcpus > 64)
		return -EINVAL;
	if (gw_vm_state_parse(info->state, &vm->state))
		return -EINVAL;
	snprintf(vm->name, sizeof(vm->name), "%s", info->name);
	snprintf(vm->image, sizeof(vm->image), "%s", info->image);
	free(vm->cmdline);
	vm->cmdline = info->cmdline ? strdup(info->cmdline) : NULL;
	if (info->cmdline && !vm->cmdline)
		return -ENOMEM;
	vm->memory_mib = info->memory_mib;
	vm->vcpus = info->vcpus;
	vm->has_exit_status = info->has_exit_status;
	vm->exit_status = info->exit_status;
	snprintf(vm->reason, sizeof(vm->reason), "%s", info->reason ? info->reason : "");
	vm->pid = info->has_pid && info->pid > 0 ? info->pid : 0; /* never a process group */
	vm->pid_start = info->has_pid_start_ticks ? info->pid_start_ticks : 0;
	vm->started_at_ms = info->has_started_at_ms ? info->started_at_ms : 0;
	snprintf(vm->backend, sizeof(vm->backend), "%s",
		 info->backend &&
			 (!strcmp(info->backend, "kvm") || !strcmp(info->backend, "process") ||
			  !strcmp(info->backend, "qemu"))
		     ? info->backend
		     : "");
	snprintf(vm->driver, sizeof(vm->driver), "%s",
		 info->driver && *info->driver ? info->driver : "microvm");
	free(vm->xml);
	vm->xml = info->xml ? strdup(info->xml) : NULL;
	if (info->xml && !vm->xml)
		return -ENOMEM;
	return 0;
}

static struct gw_vm *vm_alloc(const struct gw_vmtable *t, const char *name)
{
	struct gw_vm *vm = calloc(1, sizeof(*vm));
	if (!vm)
		return NULL;
	vm->vmm_fd = -1;
	snprintf(vm->driver, sizeof(vm->driver), "microvm");
	snprintf(vm->dir, sizeof(vm->dir), "%s/vms/%s", t->state_dir, name);
	return vm;
}

void gw_vm_clear(struct gw_vm *vm)
{
	free(vm->cmdline);
	free(vm->xml);
	vm->cmdline = vm->xml = NULL;
}

static void vm_free(struct gw_vm *vm)
{
	if (!vm)
		return;
	gw_vm_clear(vm);
	free(vm);
}

static int table_push(struct gw_vmtable *t, struct gw_vm *vm)
{
	if (t->count == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 16;
		struct gw_vm **n = realloc(t->vms, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		t->vms = n;
		t->cap = cap;
	}
	t->vms[t->count++] = vm;
	return 0;
}

static int save(const struct gw_vm *vm, int durable);

int gw_vmtable_save(struct gw_vmtable *t, const struct gw_vm *vm)
{
	return save(vm, 1);
}

int gw_vmtable_save_state(struct gw_vmtable *t, const struct gw_vm *vm)
{
	return save(vm, 0);
}

static int save(const struct gw_vm *vm, int durable)
{
	char path[PATH_MAX + 16];
	GwVmInfo info;
	uint8_t buf[8192];

	gw_vm_to_info(vm, NULL, &info);
	size_t len = gw_vm_info__get_packed_size(&info);
	if (len > sizeof(buf))
		return -E2BIG;
	gw_vm_info__pack(&info, buf);
	snprintf(path, sizeof(path), "%s/vm.pb", vm->dir);
	int r = durable ? gw_file_write_atomic(path, buf, len, 0600)
			: gw_file_replace(path, buf, len, 0600);
	if (r)
		gw_err("vmtable", "vm '%s': cannot persist %s: %s", vm->name, path, strerror(-r));
	return r;
}

static int load_one(struct gw_vmtable *t, const char *name)
{
	char path[PATH_MAX + 16];
	char *data;
	size_t len;
	struct gw_vm *vm = vm_alloc(t, name);
	if (!vm)
		return -ENOMEM;
	snprintf(path, sizeof(path), "%s/vm.pb", vm->dir);
	int r = gw_file_read(path, 65536, &data, &len);
	if (r) {
		gw_warn("vmtable", "skipping %s: %s", path, strerror(-r));
		vm_free(vm);
		return 0;
	}
	GwVmInfo *info = gw_vm_info__unpack(NULL, len, (uint8_t *)data);
	free(data);
	if (!info || gw_vm_from_info(vm, info) || strcmp(vm->name, name) != 0) {
		gw_warn("vmtable", "skipping %s: corrupt VM record", path);
		if (info)
			gw_vm_info__free_unpacked(info, NULL);
		vm_free(vm);
		return 0;
	}
	gw_vm_info__free_unpacked(info, NULL);
	r = table_push(t, vm);
	if (r)
		vm_free(vm);
	return r;
}

int gw_vmtable_open(struct gw_vmtable *t, const char *state_dir)
{
	char dir[PATH_MAX + 8];
	memset(t, 0, sizeof(*t));
	snprintf(t->state_dir, sizeof(t->state_dir), "%s", state_dir);
	snprintf(dir, sizeof(dir), "%s/vms", state_dir);
	int r = gw_mkdir_p(dir, 0700);
	if (r)
		return r;
	chmod(state_dir, 0700);
	DIR *d = opendir(dir);
	if (!d)
		return -errno;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (!gw_vm_name_valid(de->d_name))
			continue;
		r = load_one(t, de->d_name);
		if (r)
			break;
	}
	closedir(d);
	return r;
}

void gw_vmtable_close(struct gw_vmtable *t)
{
	for (size_t i = 0; i < t->count; i++)
		vm_free(t->vms[i]);
	free(t->vms);
	t->vms = NULL;
	t->count = t->cap = 0;
}

struct gw_vm *gw_vmtable_find(struct gw_vmtable *t, const char *name)
{
	for (size_t i = 0; i < t->count; i++)
		if (!strcmp(t->vms[i]->name, name))
			return t->vms[i];
	return NULL;
}

int gw_vmtable_add(struct gw_vmtable *t, const char *name, const char *image, unsigned memory_mib,
		   unsigned vcpus, const char *cmdline, struct gw_vm **out)
{
	if (!gw_vm_name_valid(name) || !image || strlen(image) >= PATH_MAX || !memory_mib || !vcpus)
		return -EINVAL;
	if (gw_vmtable_find(t, name))
		return -EEXIST;
	struct gw_vm *vm = vm_alloc(t, name);
	if (!vm)
		return -ENOMEM;
	snprintf(vm->name, sizeof(vm->name), "%s", name);
	snprintf(vm->image, sizeof(vm->image), "%s", image);
	vm->cmdline = cmdline && *cmdline ? strdup(cmdline) : NULL;
	vm->memory_mib = memory_mib;
	vm->vcpus = vcpus;
	vm->state = GW_VM_DEFINED;
	int r = gw_mkdir_p(vm->dir, 0700);
	if (!r)
		r = gw_vmtable_save(t, vm);
	if (!r)
		r = table_push(t, vm);
	if (r) {
		gw_rm_rf(vm->dir);
		vm_free(vm);
		return r;
	}
	*out = vm;
	return 0;
}

int gw_vmtable_set_driver(struct gw_vmtable *t, struct gw_vm *vm, const char *driver,
			  const char *xml)
{
	if (!driver || !*driver || strlen(driver) >= sizeof(vm->driver))
		return -EINVAL;
	if (xml) {
		char *x = strdup(xml);
		if (!x)
			return -ENOMEM;
		free(vm->xml);
		vm->xml = x;
	}
	snprintf(vm->driver, sizeof(vm->driver), "%s", driver);
	return gw_vmtable_save(t, vm);
}

int gw_vmtable_remove(struct gw_vmtable *t, struct gw_vm *vm)
{
	for (size_t i = 0; i < t->count; i++) {
		if (t->vms[i] != vm)
			continue;
		int r = gw_rm_rf(vm->dir);
		if (r)
			return r;
		t->vms[i] = t->vms[--t->count];
		vm_free(vm);
		return 0;
	}
	return -ENOENT;
}

int gw_vmtable_retire(struct gw_vmtable *t, struct gw_vm *vm)
{
	char dir[PATH_MAX + 16], dst[PATH_MAX + 80];
	snprintf(dir, sizeof(dir), "%s/departed", t->state_dir);
	snprintf(dst, sizeof(dst), "%s/%s", dir, vm->name);
	if (gw_mkdir_p(dir, 0700) == 0) {
		gw_rm_rf(dst);
		char rec[PATH_MAX + 16];
		snprintf(rec, sizeof(rec), "%s/vm.pb", vm->dir);
		unlink(rec); /* a departed VM must never be loaded as one of ours */
		if (rename(vm->dir, dst) == 0) {
			for (size_t i = 0; i < t->count; i++) {
				if (t->vms[i] == vm) {
					t->vms[i] = t->vms[--t->count];
					vm_free(vm);
					return 0;
				}
			}
			return -ENOENT;
		}
	}
	return gw_vmtable_remove(t, vm);
}

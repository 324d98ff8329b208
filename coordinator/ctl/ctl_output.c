/* ctl_output.c -- godwitctl output formats: human tables and lines, JSON via gw_json. */
#include "ctl_output.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <time.h>

#include "ctl_progress.h"

/* Check a stream after a command's output: 0, or -EIO when anything failed to write. */
static int out_done(FILE *out)
{
	if (fflush(out) != 0 || ferror(out))
		return -EIO;
	return 0;
}

/* Print s with control bytes as '?', so agent-supplied text cannot drive the terminal. */
static void put_safe(FILE *out, const char *s)
{
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;
		fputc(c < 0x20 || c == 0x7f ? '?' : c, out);
	}
}

/* Left-aligned table cell of the given width followed by two spaces (none after the last). */
static void cell(FILE *out, const char *s, int width, bool last)
{
	int n = (int)strlen(s);
	put_safe(out, s);
	if (!last)
		fprintf(out, "%*s", width - n + 2, "");
}

static int json_close(FILE *out, struct gw_json *j)
{
	int r = gw_json_finish(j);
	fputc('\n', out);
	int r2 = out_done(out);
	return r ? r : r2;
}

/* The members of a VM object, without the braces. */
static void json_vm_members(struct gw_json *j, const GwVmInfo *vm)
{
	gw_json_kv_str(j, "name", vm->name);
	gw_json_kv_str(j, "state", vm->state);
	if (vm->has_exit_status)
		gw_json_kv_int(j, "exit_status", vm->exit_status);
	else
		gw_json_kv_null(j, "exit_status");
	gw_json_kv_uint(j, "memory_mib", vm->memory_mib);
	gw_json_kv_uint(j, "vcpus", vm->vcpus);
	gw_json_kv_str(j, "node", vm->node);
	gw_json_kv_str(j, "backend", vm->backend);
	gw_json_kv_str(j, "driver", vm->driver ? vm->driver : "microvm");
	gw_json_kv_str(j, "image", vm->image);
	gw_json_kv_str(j, "cmdline", vm->cmdline);
	gw_json_kv_str(j, "reason", vm->reason);
	if (vm->has_pid)
		gw_json_kv_int(j, "pid", vm->pid);
	else
		gw_json_kv_null(j, "pid");
}

void gw_ctl_json_vm(struct gw_json *j, const GwVmInfo *vm)
{
	gw_json_obj_begin(j);
	json_vm_members(j, vm);
	gw_json_obj_end(j);
}

static bool vm_migrating(const GwVmInfo *vm)
{
	return vm->state && strcmp(vm->state, "migrating") == 0;
}

/* The VM object; for `vm show` of a migrating VM also "migration": object or null. */
static int print_vm_json(FILE *out, const GwVmInfo *vm, bool show, const GwMigProgress *mig)
{
	struct gw_json j;
	gw_json_init_file(&j, out, GW_JSON_PRETTY);
	gw_json_obj_begin(&j);
	json_vm_members(&j, vm);
	if (show && vm_migrating(vm)) {
		gw_json_key(&j, "migration");
		if (mig)
			gw_ctl_json_migration(&j, mig, true);
		else
			gw_json_null(&j);
	}
	gw_json_obj_end(&j);
	return json_close(out, &j);
}

static void kv_line(FILE *out, const char *key, const char *val)
{
	fprintf(out, "%-13s", key);
	put_safe(out, val);
	fputc('\n', out);
}

int gw_ctl_print_vm(FILE *out, const GwVmInfo *vm, const GwMigProgress *mig, bool json)
{
	char num[64], line[256];

	if (json)
		return print_vm_json(out, vm, true, mig);
	kv_line(out, "name:", vm->name);
	kv_line(out, "state:", vm->state);
	if (mig && vm_migrating(vm)) {
		gw_ctl_progress_show_line(mig, line, sizeof(line));
		kv_line(out, "migration:", line);
	}
	if (vm->has_exit_status) {
		snprintf(num, sizeof(num), "%d", vm->exit_status);
		kv_line(out, "exit status:", num);
	}
	if (vm->reason)
		kv_line(out, "reason:", vm->reason);
	snprintf(num, sizeof(num), "%u MiB", vm->memory_mib);
	kv_line(out, "memory:", num);
	snprintf(num, sizeof(num), "%u", vm->vcpus);
	kv_line(out, "vcpus:", num);
	if (vm->node)
		kv_line(out, "node:", vm->node);
	if (vm->backend)
		kv_line(out, "backend:", vm->backend);
	kv_line(out, "driver:", vm->driver ? vm->driver : "microvm");
	if (vm->image[0])
		kv_line(out, "image:", vm->image);
	if (vm->cmdline)
		kv_line(out, "cmdline:", vm->cmdline);
	if (vm->has_pid) {
		snprintf(num, sizeof(num), "%d", vm->pid);
		kv_line(out, "pid:", num);
	}
	if (vm->has_started_at_ms && vm->started_at_ms) {
		time_t t = (time_t)(vm->started_at_ms / 1000);
		struct tm tm;
		gmtime_r(&t, &tm);
		strftime(num, sizeof(num), "%Y-%m-%dT%H:%M:%SZ", &tm);
		kv_line(out, "started:", num);
	}
	return out_done(out);
}

int gw_ctl_print_vm_state(FILE *out, const GwVmInfo *vm, bool json)
{
	if (json)
		return print_vm_json(out, vm, false, NULL);
	fputs("vm ", out);
	put_safe(out, vm->name);
	fputs(": ", out);
	put_safe(out, vm->state);
	fputc('\n', out);
	return out_done(out);
}

/* The EXIT column: the exit status of a stopped or crashed VM, else "-". */
static void exit_cell(const GwVmInfo *vm, char *buf, size_t len)
{
	bool ended = vm->state && (!strcmp(vm->state, "stopped") || !strcmp(vm->state, "crashed"));
	if (ended && vm->has_exit_status)
		snprintf(buf, len, "%d", vm->exit_status);
	else
		snprintf(buf, len, "-");
}

enum { COL_NAME, COL_STATE, COL_VCPUS, COL_MEM, COL_NODE, COL_BACKEND, COL_EXIT, NCOLS };

static void vm_row(const GwVmInfo *vm, char cells[NCOLS][64], const char *txt[NCOLS])
{
	snprintf(cells[COL_VCPUS], 64, "%u", vm->vcpus);
	snprintf(cells[COL_MEM], 64, "%u", vm->memory_mib);
	exit_cell(vm, cells[COL_EXIT], 64);
	txt[COL_NAME] = vm->name ? vm->name : "";
	txt[COL_STATE] = vm->state ? vm->state : "";
	txt[COL_VCPUS] = cells[COL_VCPUS];
	txt[COL_MEM] = cells[COL_MEM];
	txt[COL_NODE] = vm->node ? vm->node : "-";
	txt[COL_BACKEND] = vm->backend ? vm->backend : "-";
	txt[COL_EXIT] = cells[COL_EXIT];
}

int gw_ctl_print_vm_list(FILE *out, const GwVmList *list, bool json)
{
	static const char *hdr[NCOLS] = {"NAME", "STATE",   "VCPUS", "MEMORY(MiB)",
					 "NODE", "BACKEND", "EXIT"};
	int width[NCOLS];
	char cells[NCOLS][64];
	const char *txt[NCOLS];

	if (json) {
		struct gw_json j;
		gw_json_init_file(&j, out, GW_JSON_PRETTY);
		gw_json_arr_begin(&j);
		for (size_t i = 0; i < list->n_vms; i++)
			gw_ctl_json_vm(&j, list->vms[i]);
		gw_json_arr_end(&j);
		return json_close(out, &j);
	}
	for (int c = 0; c < NCOLS; c++)
		width[c] = (int)strlen(hdr[c]);
	for (size_t i = 0; i < list->n_vms; i++) {
		vm_row(list->vms[i], cells, txt);
		for (int c = 0; c < NCOLS; c++)
			if ((int)strlen(txt[c]) > width[c])
				width[c] = (int)strlen(txt[c]);
	}
	for (int c = 0; c < NCOLS; c++)
		cell(out, hdr[c], width[c], c == NCOLS - 1);
	fputc('\n', out);
	for (size_t i = 0; i < list->n_vms; i++) {
		vm_row(list->vms[i], cells, txt);
		for (int c = 0; c < NCOLS; c++)
			cell(out, txt[c], width[c], c == NCOLS - 1);
		fputc('\n', out);
	}
	return out_done(out);
}

int gw_ctl_print_deleted(FILE *out, const char *name, bool json)
{
	if (json) {
		struct gw_json j;
		gw_json_init_file(&j, out, GW_JSON_PRETTY);
		gw_json_obj_begin(&j);
		gw_json_kv_str(&j, "name", name);
		gw_json_kv_bool(&j, "deleted", true);
		gw_json_obj_end(&j);
		return json_close(out, &j);
	}
	fputs("vm ", out);
	put_safe(out, name);
	fputs(": deleted\n", out);
	return out_done(out);
}

int gw_ctl_print_agent_info(FILE *out, const GwAgentInfo *ai, bool json)
{
	char num[96];

	if (json) {
		struct gw_json j;
		gw_json_init_file(&j, out, GW_JSON_PRETTY);
		gw_json_obj_begin(&j);
		gw_json_kv_str(&j, "node", ai->node);
		gw_json_kv_str(&j, "version", ai->version);
		gw_json_kv_uint(&j, "mem_total_mib", ai->mem_total_mib);
		gw_json_kv_uint(&j, "mem_available_mib", ai->mem_available_mib);
		gw_json_kv_uint(&j, "vm_count", ai->vm_count);
		gw_json_kv_str(&j, "listen", ai->listen);
		gw_json_kv_str(&j, "vm_backend", ai->vm_backend);
		gw_json_key(&j, "drivers");
		gw_json_arr_begin(&j);
		for (size_t i = 0; i < ai->n_drivers; i++) {
			gw_json_obj_begin(&j);
			gw_json_kv_str(&j, "name", ai->drivers[i]->name);
			gw_json_kv_bool(&j, "available", ai->drivers[i]->available);
			gw_json_kv_str(&j, "status", ai->drivers[i]->status);
			gw_json_obj_end(&j);
		}
		gw_json_arr_end(&j);
		gw_json_obj_end(&j);
		return json_close(out, &j);
	}
	kv_line(out, "node:", ai->node);
	kv_line(out, "version:", ai->version);
	snprintf(num, sizeof(num), "%" PRIu64 " MiB", ai->mem_total_mib);
	kv_line(out, "memory:", num);
	snprintf(num, sizeof(num), "%" PRIu64 " MiB", ai->mem_available_mib);
	kv_line(out, "available:", num);
	snprintf(num, sizeof(num), "%u", ai->vm_count);
	kv_line(out, "vms:", num);
	if (ai->listen)
		kv_line(out, "listen:", ai->listen);
	kv_line(out, "vm backend:", ai->vm_backend ? ai->vm_backend : "none usable");
	for (size_t i = 0; i < ai->n_drivers; i++) {
		const GwDriverInfo *d = ai->drivers[i];
		snprintf(num, sizeof(num), "%s%s%s", d->available ? "available" : "unavailable",
			 d->status ? ": " : "", d->status ? d->status : "");
		char key[48];
		snprintf(key, sizeof(key), "driver %s:", d->name);
		kv_line(out, key, num);
	}
	return out_done(out);
}

void gw_ctl_print_error(FILE *out, FILE *err, const char *msg, int code, bool json)
{
	fputs("godwitctl: ", err);
	put_safe(err, msg);
	fputc('\n', err);
	fflush(err);
	if (json) {
		struct gw_json j;
		gw_json_init_file(&j, out, GW_JSON_PRETTY);
		gw_json_obj_begin(&j);
		gw_json_kv_str(&j, "error", msg);
		gw_json_kv_int(&j, "code", code < 0 ? -code : code);
		gw_json_obj_end(&j);
		json_close(out, &j);
	}
}

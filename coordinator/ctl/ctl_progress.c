/* ctl_progress.c -- godwitctl migration progress formatting: bar, lines, JSON; no I/O but FILE. */
#include "ctl_progress.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A bounded string builder: never overflows, always NUL-terminated when len > 0. */
struct sbuf {
	char *b;
	size_t len, off;
};

static void sb_init(struct sbuf *s, char *buf, size_t len)
{
	s->b = buf;
	s->len = len;
	s->off = 0;
	if (len)
		buf[0] = '\0';
}

static void sb_add(struct sbuf *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_add(struct sbuf *s, const char *fmt, ...)
{
	va_list ap;
	if (s->off + 1 >= s->len)
		return;
	va_start(ap, fmt);
	int n = vsnprintf(s->b + s->off, s->len - s->off, fmt, ap);
	va_end(ap);
	if (n > 0)
		s->off += (size_t)n < s->len - s->off ? (size_t)n : s->len - s->off - 1;
}

/* Agent-supplied text, control bytes as '?' so it cannot drive the terminal. */
static void sb_safe(struct sbuf *s, const char *str)
{
	for (; str && *str && s->off + 1 < s->len; str++) {
		unsigned char c = (unsigned char)*str;
		s->b[s->off++] = c < 0x20 || c == 0x7f ? '?' : (char)c;
	}
	if (s->len)
		s->b[s->off] = '\0';
}

enum gw_ctl_mig_result gw_ctl_mig_result(const GwMigProgress *p)
{
	const char *r = p->result ? p->result : "";
	if (!strcmp(r, "running"))
		return GW_CTL_MIG_RUNNING;
	if (!strcmp(r, "completed"))
		return GW_CTL_MIG_COMPLETED;
	if (!strcmp(r, "failed"))
		return GW_CTL_MIG_FAILED;
	if (!strcmp(r, "cancelled"))
		return GW_CTL_MIG_CANCELLED;
	return GW_CTL_MIG_OTHER;
}

unsigned gw_ctl_progress_percent(const GwMigProgress *p)
{
	double sent = p->has_pages_sent ? (double)p->pages_sent : 0;
	double rem = p->has_pages_remaining ? (double)p->pages_remaining : 0;
	if (gw_ctl_mig_result(p) == GW_CTL_MIG_COMPLETED)
		return 100;
	if (sent + rem <= 0)
		return 0;
	double pct = 100.0 * sent / (sent + rem);
	return pct >= 100 ? 100 : (unsigned)pct;
}

static double mib(uint64_t bytes)
{
	return (double)bytes / (1024.0 * 1024.0);
}

/* 950, 12.3k, 4.5M: a rate in little room. */
static void short_count(char *buf, size_t len, uint64_t v)
{
	if (v < 1000)
		snprintf(buf, len, "%" PRIu64, v);
	else if (v < 1000000)
		snprintf(buf, len, "%.1fk", (double)v / 1e3);
	else if (v < 1000000000)
		snprintf(buf, len, "%.1fM", (double)v / 1e6);
	else
		snprintf(buf, len, "%.1fG", (double)v / 1e9);
}

/*
 * Seconds left: pages remaining over what the link sends beyond what the guest dirties,
 * both in pages per second. -1 when that cannot be estimated.
 */
static long eta_seconds(const GwMigProgress *p)
{
	if (!p->has_pages_remaining || !p->has_throughput_mbps || !isfinite(p->throughput_mbps) ||
	    p->throughput_mbps <= 0)
		return -1;
	double send_pps = p->throughput_mbps * 1e6 / 8.0 / GW_CTL_PAGE_SIZE;
	double net = send_pps - (p->has_dirty_rate_pps ? (double)p->dirty_rate_pps : 0);
	if (net <= 0)
		return -1;
	double s = (double)p->pages_remaining / net;
	if (s > 359999)
		return 359999;
	return (long)s + ((double)(long)s < s); /* rounded up, without libm */
}

static void eta_text(char *buf, size_t len, long s)
{
	if (s < 60)
		snprintf(buf, len, "%lds", s);
	else if (s < 3600)
		snprintf(buf, len, "%ldm%02lds", s / 60, s % 60);
	else
		snprintf(buf, len, "%ldh%02ldm", s / 3600, (s / 60) % 60);
}

void gw_ctl_progress_format(const GwMigProgress *p, char *buf, size_t len)
{
	struct sbuf s;
	char num[32];
	unsigned pct = gw_ctl_progress_percent(p);
	unsigned fill = (pct * GW_CTL_BAR_WIDTH + 50) / 100;

	if (pct < 100 && fill >= GW_CTL_BAR_WIDTH)
		fill = GW_CTL_BAR_WIDTH - 1; /* a full bar means done */
	sb_init(&s, buf, len);
	sb_add(&s, "[");
	for (unsigned i = 0; i < GW_CTL_BAR_WIDTH; i++)
		sb_add(&s, "%c", i < fill ? '#' : '-');
	sb_add(&s, "] %u%%", pct);
	if (p->phase && *p->phase && strcmp(p->phase, "iterate") != 0) {
		sb_add(&s, " ");
		sb_safe(&s, p->phase);
	}
	if (p->has_round)
		sb_add(&s, " round %u", p->round);
	if (p->has_bytes_transferred) {
		sb_add(&s, " sent %.1f", mib(p->bytes_transferred));
		if (p->has_pages_total && p->pages_total)
			sb_add(&s, "/%.1f", mib(p->pages_total * GW_CTL_PAGE_SIZE));
		sb_add(&s, " MiB");
	}
	if (p->has_dirty_rate_pps) {
		short_count(num, sizeof(num), p->dirty_rate_pps);
		sb_add(&s, " dirty %s p/s", num);
	}
	if (p->has_throughput_mbps && isfinite(p->throughput_mbps) && p->throughput_mbps > 0)
		sb_add(&s, " %.0f Mb/s", p->throughput_mbps);
	long eta = gw_ctl_mig_result(p) == GW_CTL_MIG_RUNNING ? eta_seconds(p) : -1;
	if (eta >= 0) {
		eta_text(num, sizeof(num), eta);
		sb_add(&s, " ETA %s", num);
	}
	if (p->has_throttle_pct && p->throttle_pct)
		sb_add(&s, " throttle %u%%", p->throttle_pct);
}

void gw_ctl_progress_round_line(const GwMigProgress *p, char *buf, size_t len)
{
	struct sbuf s;
	const char *sep = ": ";

	sb_init(&s, buf, len);
	if (p->has_round)
		sb_add(&s, "round %u", p->round);
	else
		sb_add(&s, "progress");
#define PART(...)                                                                                  \
	do {                                                                                       \
		sb_add(&s, "%s", sep);                                                             \
		sb_add(&s, __VA_ARGS__);                                                           \
		sep = ", ";                                                                        \
	} while (0)
	if (p->has_bytes_transferred)
		PART("sent %.1f MiB", mib(p->bytes_transferred));
	if (p->has_pages_remaining)
		PART("remaining %" PRIu64 " pages", p->pages_remaining);
	if (p->has_dirty_rate_pps)
		PART("dirty %" PRIu64 " pages/s", p->dirty_rate_pps);
	if (p->has_throughput_mbps && isfinite(p->throughput_mbps))
		PART("%.0f Mb/s", p->throughput_mbps);
	if (p->has_throttle_pct && p->throttle_pct)
		PART("throttle %u%%", p->throttle_pct);
#undef PART
}

void gw_ctl_progress_result_line(const GwMigProgress *p, char *buf, size_t len)
{
	struct sbuf s;
	const char *sep = " (";

	sb_init(&s, buf, len);
	switch (gw_ctl_mig_result(p)) {
	case GW_CTL_MIG_COMPLETED:
		sb_add(&s, "vm ");
		sb_safe(&s, p->name);
		sb_add(&s, ": migration completed");
		if (p->has_total_ms)
			sb_add(&s, " in %" PRIu64 " ms", p->total_ms);
		if (p->has_downtime_ms && isfinite(p->downtime_ms)) {
			sb_add(&s, "%sdowntime %.1f ms", sep, p->downtime_ms);
			sep = ", ";
		}
		if (p->has_round) {
			sb_add(&s, "%s%u round%s", sep, p->round, p->round == 1 ? "" : "s");
			sep = ", ";
		}
		if (p->has_bytes_transferred) {
			sb_add(&s, "%s%.1f MiB", sep, mib(p->bytes_transferred));
			sep = ", ";
		}
		if (p->has_throughput_mbps && isfinite(p->throughput_mbps)) {
			sb_add(&s, "%s%.0f Mb/s", sep, p->throughput_mbps);
			sep = ", ";
		}
		if (p->transport && !strcmp(p->transport, "rdma")) {
			sb_add(&s, "%sover rdma", sep);
			sep = ", ";
		}
		if (sep[0] == ',')
			sb_add(&s, ")");
		return;
	case GW_CTL_MIG_RUNNING:
		sb_add(&s, "vm ");
		sb_safe(&s, p->name);
		sb_add(&s, ": migration running (phase ");
		sb_safe(&s, p->phase && *p->phase ? p->phase : "?");
		if (p->has_round)
			sb_add(&s, ", round %u", p->round);
		sb_add(&s, ")");
		return;
	default:
		break;
	}
	sb_add(&s, "vm '");
	sb_safe(&s, p->name);
	sb_add(&s, "': migration ");
	switch (gw_ctl_mig_result(p)) {
	case GW_CTL_MIG_FAILED:
		sb_add(&s, "failed");
		if (p->error && *p->error) {
			sb_add(&s, ": ");
			sb_safe(&s, p->error);
		}
		break;
	case GW_CTL_MIG_CANCELLED:
		sb_add(&s, "cancelled");
		break;
	default:
		sb_add(&s, "ended: ");
		sb_safe(&s, p->result && *p->result ? p->result : "(no result)");
		if (p->error && *p->error) {
			sb_add(&s, ": ");
			sb_safe(&s, p->error);
		}
	}
}

void gw_ctl_progress_show_line(const GwMigProgress *p, char *buf, size_t len)
{
	struct sbuf s;
	const char *sep = "";

	sb_init(&s, buf, len);
	if (p->has_round) {
		sb_add(&s, "round %u", p->round);
		sep = ", ";
	}
	if (p->phase && *p->phase) {
		sb_add(&s, "%sphase ", sep);
		sb_safe(&s, p->phase);
		sep = ", ";
	}
	if (p->has_pages_remaining) {
		sb_add(&s, "%s%" PRIu64 " pages remaining", sep, p->pages_remaining);
		sep = ", ";
	}
	if (p->has_dirty_rate_pps)
		sb_add(&s, "%sdirty %" PRIu64 " p/s", sep, p->dirty_rate_pps);
}

/* Migration figures as JSON numbers: up to 3 decimals; negative or huge values (never for
 * these fields) are rounded to integers so the output stays valid. */
void gw_ctl_json_double(struct gw_json *j, double v)
{
	if (isfinite(v) && (v < 0 || v >= 1e15)) {
		gw_json_int(j, v <= -9.2e18  ? INT64_MIN
			       : v >= 9.2e18 ? INT64_MAX
					     : (int64_t)(v < 0 ? v - 0.5 : v + 0.5));
		return;
	}
	gw_json_double(j, v);
}

static void kv_opt_uint(struct gw_json *j, const char *key, bool has, uint64_t v)
{
	if (has)
		gw_json_kv_uint(j, key, v);
	else
		gw_json_kv_null(j, key);
}

static void kv_opt_double(struct gw_json *j, const char *key, bool has, double v)
{
	gw_json_key(j, key);
	if (has)
		gw_ctl_json_double(j, v);
	else
		gw_json_null(j);
}

void gw_ctl_json_migration(struct gw_json *j, const GwMigProgress *p, bool status)
{
	gw_json_obj_begin(j);
	gw_json_kv_str(j, "name", p->name);
	gw_json_kv_str(j, "result", p->result);
	gw_json_kv_str(j, "error", p->error && *p->error ? p->error : NULL);
	gw_json_kv_str(j, "peer", p->peer && *p->peer ? p->peer : NULL);
	kv_opt_uint(j, "total_ms", p->has_total_ms, p->total_ms);
	kv_opt_double(j, "downtime_ms", p->has_downtime_ms, p->downtime_ms);
	kv_opt_uint(j, "rounds", p->has_round, p->round);
	kv_opt_uint(j, "bytes_transferred", p->has_bytes_transferred, p->bytes_transferred);
	kv_opt_uint(j, "pages_sent", p->has_pages_sent, p->pages_sent);
	kv_opt_uint(j, "pages_zero", p->has_pages_zero, p->pages_zero);
	kv_opt_double(j, "throughput_mbps", p->has_throughput_mbps, p->throughput_mbps);
	kv_opt_uint(j, "throttle_pct", p->has_throttle_pct, p->throttle_pct);
	kv_opt_uint(j, "migration_id", p->has_migration_id, p->migration_id);
	gw_json_kv_str(j, "transport", p->transport && *p->transport ? p->transport : NULL);
	kv_opt_uint(j, "pages_resent", p->has_pages_resent, p->pages_resent);
	if (status) {
		gw_json_kv_str(j, "phase", p->phase);
		kv_opt_uint(j, "round", p->has_round, p->round);
		kv_opt_uint(j, "pages_remaining", p->has_pages_remaining, p->pages_remaining);
		kv_opt_uint(j, "dirty_rate_pps", p->has_dirty_rate_pps, p->dirty_rate_pps);
		kv_opt_double(j, "expected_downtime_ms", p->has_expected_downtime_ms,
			      p->expected_downtime_ms);
	}
	gw_json_obj_end(j);
}

/* "key:" padded, then the value made printable. */
static void kv(FILE *out, const char *key, const char *val)
{
	struct sbuf s;
	char line[640];
	sb_init(&s, line, sizeof(line));
	sb_add(&s, "%-19s", key);
	sb_safe(&s, val);
	fprintf(out, "%s\n", line);
}

int gw_ctl_print_migration_status(FILE *out, const GwMigProgress *p)
{
	char v[160];

	kv(out, "name:", p->name);
	kv(out, "result:", p->result);
	kv(out, "phase:", p->phase);
	if (p->role && *p->role)
		kv(out, "role:", p->role);
	if (p->peer && *p->peer)
		kv(out, "peer:", p->peer);
	if (p->transport && *p->transport)
		kv(out, "transport:", p->transport);
	if (p->error && *p->error)
		kv(out, "error:", p->error);
	if (p->has_round) {
		snprintf(v, sizeof(v), "%u", p->round);
		kv(out, "round:", v);
	}
	if (p->has_total_ms) {
		snprintf(v, sizeof(v), "%" PRIu64 " ms", p->total_ms);
		kv(out, "elapsed:", v);
	}
	if (p->has_bytes_transferred || p->has_pages_sent) {
		int n = snprintf(v, sizeof(v), "%.1f MiB",
				 mib(p->has_bytes_transferred ? p->bytes_transferred : 0));
		if (p->has_pages_sent && n > 0 && (size_t)n < sizeof(v))
			snprintf(v + n, sizeof(v) - (size_t)n,
				 " (%" PRIu64 " pages, %" PRIu64 " zero)", p->pages_sent,
				 p->has_pages_zero ? p->pages_zero : 0);
		kv(out, "sent:", v);
	}
	if (p->has_pages_remaining) {
		snprintf(v, sizeof(v), "%" PRIu64 " pages", p->pages_remaining);
		kv(out, "remaining:", v);
	}
	if (p->has_pages_total) {
		snprintf(v, sizeof(v), "%" PRIu64 " pages (%.1f MiB)", p->pages_total,
			 mib(p->pages_total * GW_CTL_PAGE_SIZE));
		kv(out, "memory:", v);
	}
	if (p->has_dirty_rate_pps) {
		snprintf(v, sizeof(v), "%" PRIu64 " pages/s", p->dirty_rate_pps);
		kv(out, "dirty rate:", v);
	}
	if (p->has_throughput_mbps) {
		snprintf(v, sizeof(v), "%.0f Mb/s", p->throughput_mbps);
		kv(out, "throughput:", v);
	}
	if (p->has_throttle_pct) {
		snprintf(v, sizeof(v), "%u%%", p->throttle_pct);
		kv(out, "throttle:", v);
	}
	if (p->has_expected_downtime_ms) {
		snprintf(v, sizeof(v), "%.1f ms", p->expected_downtime_ms);
		kv(out, "expected downtime:", v);
	}
	if (p->has_downtime_ms) {
		snprintf(v, sizeof(v), "%.1f ms", p->downtime_ms);
		kv(out, "downtime:", v);
	}
	if (p->has_migration_id) {
		snprintf(v, sizeof(v), "%" PRIu64, p->migration_id);
		kv(out, "migration id:", v);
	}
	if (p->has_started_at_ms && p->started_at_ms) {
		time_t t = (time_t)(p->started_at_ms / 1000);
		struct tm tm;
		gmtime_r(&t, &tm);
		strftime(v, sizeof(v), "%Y-%m-%dT%H:%M:%SZ", &tm);
		kv(out, "started:", v);
	}
	if (fflush(out) != 0 || ferror(out))
		return -EIO;
	return 0;
}

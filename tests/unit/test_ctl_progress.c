/* test_ctl_progress.c -- cmocka tests of godwitctl migration progress formatting (ctl_progress). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl_output.h"
#include "ctl_progress.h"
#include "migration.pb-c.h"

/* A migration in round 3: 45% by pages, 512 of 1024 MiB, ETA 3 s at 2345 Mb/s. */
static GwMigProgress running(void)
{
	GwMigProgress p = GW_MIG_PROGRESS__INIT;
	p.name = "web";
	p.result = "running";
	p.phase = "iterate";
	p.has_round = 1, p.round = 3;
	p.has_bytes_transferred = 1, p.bytes_transferred = 512ull << 20;
	p.has_pages_total = 1, p.pages_total = 262144;
	p.has_pages_sent = 1, p.pages_sent = 122730;
	p.has_pages_remaining = 1, p.pages_remaining = 150000;
	p.has_dirty_rate_pps = 1, p.dirty_rate_pps = 12300;
	p.has_throughput_mbps = 1, p.throughput_mbps = 2345.0;
	p.has_throttle_pct = 1, p.throttle_pct = 20;
	return p;
}

/* The same migration once completed. */
static GwMigProgress completed(void)
{
	GwMigProgress p = running();
	p.result = "completed";
	p.phase = "done";
	p.peer = "10.0.0.2:7000";
	p.has_pages_remaining = 1, p.pages_remaining = 0;
	p.has_total_ms = 1, p.total_ms = 1234;
	p.has_downtime_ms = 1, p.downtime_ms = 4.2;
	p.has_bytes_transferred = 1, p.bytes_transferred = 1024ull << 20;
	p.has_pages_zero = 1, p.pages_zero = 77;
	p.has_pages_resent = 1, p.pages_resent = 512;
	p.has_migration_id = 1, p.migration_id = 42;
	p.transport = "tcp";
	p.has_expected_downtime_ms = 1, p.expected_downtime_ms = 3.5;
	return p;
}

/* gw_ctl_json_migration into a compact buffer, returned malloc'd. */
static char *json_of(const GwMigProgress *p, bool status)
{
	struct gw_json j;
	gw_json_init_buf(&j, GW_JSON_COMPACT);
	gw_ctl_json_migration(&j, p, status);
	assert_int_equal(gw_json_finish(&j), 0);
	char *s = strdup(gw_json_text(&j, NULL));
	gw_json_free(&j);
	return s;
}

#define ASSERT_JSON(p, status, want)                                                               \
	do {                                                                                       \
		char *got_ = json_of((p), (status));                                               \
		assert_string_equal(got_, (want));                                                 \
		free(got_);                                                                        \
	} while (0)

/* ---- edge cases first ---- */

/* Nothing but the required fields: no numbers invented, 0%, the phase named. */
static void test_bar_empty(void **state)
{
	GwMigProgress p = GW_MIG_PROGRESS__INIT;
	char buf[256];
	p.name = "a";
	p.result = "running";
	p.phase = "setup";
	gw_ctl_progress_format(&p, buf, sizeof(buf));
	assert_string_equal(buf, "[----------] 0% setup");
	p.phase = "";
	gw_ctl_progress_format(&p, buf, sizeof(buf));
	assert_string_equal(buf, "[----------] 0%");
	p.phase = NULL;
	gw_ctl_progress_format(&p, buf, sizeof(buf));
	assert_string_equal(buf, "[----------] 0%");
	/* zero fields present: shown as such, but no ETA and no 0 Mb/s */
	p.phase = "iterate";
	p.has_round = p.has_pages_sent = p.has_pages_remaining = p.has_dirty_rate_pps = 1;
	p.has_throughput_mbps = p.has_throttle_pct = p.has_bytes_transferred = 1;
	p.has_pages_total = 1;
	gw_ctl_progress_format(&p, buf, sizeof(buf));
	assert_string_equal(buf, "[----------] 0% round 0 sent 0.0 MiB dirty 0 p/s");
	assert_int_equal(gw_ctl_progress_percent(&p), 0);
}

/* Tiny buffers truncate and stay terminated; a zero-length buffer is not touched. */
static void test_bar_truncation(void **state)
{
	GwMigProgress p = running();
	char buf[8] = "xxxxxxx";
	gw_ctl_progress_format(&p, buf, sizeof(buf));
	assert_string_equal(buf, "[#####-");
	gw_ctl_progress_format(&p, buf, 1);
	assert_string_equal(buf, "");
	buf[0] = 'z';
	gw_ctl_progress_format(&p, buf, 0);
	assert_int_equal(buf[0], 'z');
	gw_ctl_progress_round_line(&p, buf, sizeof(buf));
	assert_string_equal(buf, "round 3");
	gw_ctl_progress_result_line(&p, buf, sizeof(buf));
	assert_int_equal(strlen(buf), 7);
}

/* Agent text cannot put escape sequences on the terminal. */
static void test_bar_sanitized(void **state)
{
	GwMigProgress p = running();
	char buf[256];
	p.phase = "x\033[2J\n";
	gw_ctl_progress_format(&p, buf, sizeof(buf));
	assert_non_null(strstr(buf, "] 45% x?[2J? round 3"));
	p = completed();
	p.result = "failed";
	p.name = "w\r";
	p.error = "peer said \033]0;pwned\007";
	gw_ctl_progress_result_line(&p, buf, sizeof(buf));
	assert_string_equal(buf, "vm 'w?': migration failed: peer said ?]0;pwned?");
}

/* Percentages: 0 with nothing known, never 100 while running, 100 once completed. */
static void test_percent(void **state)
{
	GwMigProgress p = running();
	char buf[256];
	assert_int_equal(gw_ctl_progress_percent(&p), 45);
	p.pages_sent = 999, p.pages_remaining = 1;
	assert_int_equal(gw_ctl_progress_percent(&p), 99);
	gw_ctl_progress_format(&p, buf, sizeof(buf));
	assert_true(strncmp(buf, "[#########-] 99%", 16) == 0);
	p.pages_remaining = 0;
	assert_int_equal(gw_ctl_progress_percent(&p), 100);
	p.has_pages_remaining = 0, p.pages_sent = 5;
	assert_int_equal(gw_ctl_progress_percent(&p), 100);
	p.has_pages_sent = 0;
	assert_int_equal(gw_ctl_progress_percent(&p), 0);
	p = completed();
	p.has_pages_sent = p.has_pages_remaining = 0;
	assert_int_equal(gw_ctl_progress_percent(&p), 100);
	p.pages_sent = UINT64_MAX, p.has_pages_sent = 1;
	p.pages_remaining = UINT64_MAX, p.has_pages_remaining = 1;
	p.result = "running";
	assert_int_equal(gw_ctl_progress_percent(&p), 50);
}

/* ETA: minutes and hours; none when the guest dirties faster than the link sends. */
static void test_eta(void **state)
{
	GwMigProgress p = running();
	char buf[256];
	p.has_throttle_pct = 0;
	p.pages_remaining = 59263ull * 90; /* ~59263 pages/s net */
	gw_ctl_progress_format(&p, buf, sizeof(buf));
	assert_non_null(strstr(buf, " ETA 1m30s"));
	p.pages_remaining = 59263ull * 7300;
	gw_ctl_progress_format(&p, buf, sizeof(buf));
	assert_non_null(strstr(buf, " ETA 2h01m"));
	assert_null(strstr(buf, "throttle"));
	p.dirty_rate_pps = 80000;
	gw_ctl_progress_format(&p, buf, sizeof(buf));
	assert_null(strstr(buf, "ETA"));
	assert_non_null(strstr(buf, " dirty 80.0k p/s 2345 Mb/s"));
	p.dirty_rate_pps = 4500000;
	p.throughput_mbps = NAN;
	gw_ctl_progress_format(&p, buf, sizeof(buf));
	assert_true(strlen(buf) > 10);
	assert_non_null(strstr(buf, " dirty 4.5M p/s"));
	assert_null(strstr(buf, "Mb/s"));
	assert_null(strstr(buf, "ETA"));
}

/* Doubles in JSON: up to 3 decimals, trailing zeros dropped, non-finite as null. */
static void test_json_double(void **state)
{
	static const struct {
		double v;
		const char *want;
	} t[] = {
	    {0, "[0]"},	      {4.2, "[4.2]"},
	    {2345, "[2345]"}, {0.001, "[0.001]"},
	    {0.0004, "[0]"},  {1.9999, "[2]"},
	    {12.5, "[12.5]"}, {1e14 + 0.25, "[100000000000000.25]"},
	    {NAN, "[null]"},  {INFINITY, "[null]"},
	    {-2.6, "[-3]"},   {1e300, "[9223372036854775807]"},
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct gw_json j;
		gw_json_init_buf(&j, GW_JSON_COMPACT);
		gw_json_arr_begin(&j);
		gw_ctl_json_double(&j, t[i].v);
		gw_json_arr_end(&j);
		assert_int_equal(gw_json_finish(&j), 0);
		assert_string_equal(gw_json_text(&j, NULL), t[i].want);
		gw_json_free(&j);
	}
	/* misuse is caught by gw_json, and nothing is appended after it */
	struct gw_json j;
	gw_json_init_buf(&j, GW_JSON_COMPACT);
	gw_json_obj_begin(&j);
	gw_ctl_json_double(&j, 1.5); /* a value without a key */
	assert_int_not_equal(gw_json_finish(&j), 0);
	assert_string_equal(gw_json_text(&j, NULL), "{");
	gw_json_free(&j);
}

/* Absent fields are null, an empty error is null. */
static void test_json_absent(void **state)
{
	GwMigProgress p = GW_MIG_PROGRESS__INIT;
	p.name = "a";
	p.result = "failed";
	p.phase = "aborted";
	p.error = "";
	ASSERT_JSON(&p, false,
		    "{\"name\":\"a\",\"result\":\"failed\",\"error\":null,\"peer\":null,"
		    "\"total_ms\":null,\"downtime_ms\":null,\"rounds\":null,"
		    "\"bytes_transferred\":null,\"pages_sent\":null,\"pages_zero\":null,"
		    "\"throughput_mbps\":null,\"throttle_pct\":null,\"migration_id\":null,"
		    "\"transport\":null,\"pages_resent\":null}");
	ASSERT_JSON(&p, true,
		    "{\"name\":\"a\",\"result\":\"failed\",\"error\":null,\"peer\":null,"
		    "\"total_ms\":null,\"downtime_ms\":null,\"rounds\":null,"
		    "\"bytes_transferred\":null,\"pages_sent\":null,\"pages_zero\":null,"
		    "\"throughput_mbps\":null,\"throttle_pct\":null,\"migration_id\":null,"
		    "\"transport\":null,\"pages_resent\":null,\"phase\":\"aborted\",\"round\":null,"
		    "\"pages_remaining\":null,"
		    "\"dirty_rate_pps\":null,\"expected_downtime_ms\":null}");
}

/* ---- normal output ---- */

/* The example line of the design, exactly. */
static void test_bar_example(void **state)
{
	GwMigProgress p = running();
	char buf[256];
	gw_ctl_progress_format(&p, buf, sizeof(buf));
	assert_string_equal(buf, "[#####-----] 45% round 3 sent 512.0/1024.0 MiB dirty 12.3k p/s "
				 "2345 Mb/s ETA 3s throttle 20%");
	p.phase = "switchover";
	p.has_pages_total = 0;
	p.has_throttle_pct = 0;
	p.dirty_rate_pps = 999;
	gw_ctl_progress_format(&p, buf, sizeof(buf));
	assert_string_equal(buf, "[#####-----] 45% switchover round 3 sent 512.0 MiB dirty 999 "
				 "p/s 2345 Mb/s ETA 3s");
	p = completed();
	gw_ctl_progress_format(&p, buf, sizeof(buf));
	assert_string_equal(buf, "[##########] 100% done round 3 sent 1024.0/1024.0 MiB dirty "
				 "12.3k p/s 2345 Mb/s throttle 20%");
}

/* The plain line printed per round when stdout is not a terminal. */
static void test_round_line(void **state)
{
	GwMigProgress p = running();
	char buf[256];
	p.pages_remaining = 1200;
	p.has_throttle_pct = 0;
	gw_ctl_progress_round_line(&p, buf, sizeof(buf));
	assert_string_equal(buf, "round 3: sent 512.0 MiB, remaining 1200 pages, dirty 12300 "
				 "pages/s, 2345 Mb/s");
	p.has_throttle_pct = 1;
	p.has_dirty_rate_pps = 0;
	gw_ctl_progress_round_line(&p, buf, sizeof(buf));
	assert_string_equal(buf, "round 3: sent 512.0 MiB, remaining 1200 pages, 2345 Mb/s, "
				 "throttle 20%");
	GwMigProgress e = GW_MIG_PROGRESS__INIT;
	gw_ctl_progress_round_line(&e, buf, sizeof(buf));
	assert_string_equal(buf, "progress");
}

/* Result lines for every outcome. */
static void test_result_lines(void **state)
{
	GwMigProgress p = completed();
	char buf[512];
	gw_ctl_progress_result_line(&p, buf, sizeof(buf));
	assert_string_equal(buf, "vm web: migration completed in 1234 ms (downtime 4.2 ms, "
				 "3 rounds, 1024.0 MiB, 2345 Mb/s)");
	p.round = 1;
	p.has_downtime_ms = 0;
	gw_ctl_progress_result_line(&p, buf, sizeof(buf));
	assert_string_equal(
	    buf, "vm web: migration completed in 1234 ms (1 round, 1024.0 MiB, 2345 Mb/s)");
	p.transport = "rdma"; /* tcp, the default, goes unsaid */
	gw_ctl_progress_result_line(&p, buf, sizeof(buf));
	assert_string_equal(buf, "vm web: migration completed in 1234 ms (1 round, 1024.0 MiB, "
				 "2345 Mb/s, over rdma)");
	p.transport = "tcp";
	GwMigProgress m = GW_MIG_PROGRESS__INIT;
	m.name = "web";
	m.result = "completed";
	m.phase = "done";
	gw_ctl_progress_result_line(&m, buf, sizeof(buf));
	assert_string_equal(buf, "vm web: migration completed");
	m.result = "failed";
	gw_ctl_progress_result_line(&m, buf, sizeof(buf));
	assert_string_equal(buf, "vm 'web': migration failed");
	m.error = "destination refused: out of memory";
	gw_ctl_progress_result_line(&m, buf, sizeof(buf));
	assert_string_equal(buf, "vm 'web': migration failed: destination refused: out of memory");
	m.result = "cancelled";
	gw_ctl_progress_result_line(&m, buf, sizeof(buf));
	assert_string_equal(buf, "vm 'web': migration cancelled");
	m.result = "exploded";
	gw_ctl_progress_result_line(&m, buf, sizeof(buf));
	assert_string_equal(
	    buf, "vm 'web': migration ended: exploded: destination refused: out of memory");
	m.result = "running";
	m.phase = "iterate";
	m.has_round = 1, m.round = 2;
	gw_ctl_progress_result_line(&m, buf, sizeof(buf));
	assert_string_equal(buf, "vm web: migration running (phase iterate, round 2)");
	assert_int_equal(gw_ctl_mig_result(&m), GW_CTL_MIG_RUNNING);
	m.result = NULL;
	assert_int_equal(gw_ctl_mig_result(&m), GW_CTL_MIG_OTHER);
}

/* vm show's summary line. */
static void test_show_line(void **state)
{
	GwMigProgress p = running();
	char buf[256];
	gw_ctl_progress_show_line(&p, buf, sizeof(buf));
	assert_string_equal(buf, "round 3, phase iterate, 150000 pages remaining, dirty 12300 p/s");
	GwMigProgress e = GW_MIG_PROGRESS__INIT;
	e.phase = "setup";
	gw_ctl_progress_show_line(&e, buf, sizeof(buf));
	assert_string_equal(buf, "phase setup");
}

/* The final JSON object of vm migrate and the status object: keys and their order. */
static void test_json_object(void **state)
{
	GwMigProgress p = completed();
	ASSERT_JSON(&p, false,
		    "{\"name\":\"web\",\"result\":\"completed\",\"error\":null,"
		    "\"peer\":\"10.0.0.2:7000\",\"total_ms\":1234,\"downtime_ms\":4.2,"
		    "\"rounds\":3,\"bytes_transferred\":1073741824,\"pages_sent\":122730,"
		    "\"pages_zero\":77,\"throughput_mbps\":2345,\"throttle_pct\":20,"
		    "\"migration_id\":42,\"transport\":\"tcp\",\"pages_resent\":512}");
	p.result = "failed";
	p.error = "link \"down\"";
	p.throughput_mbps = 812.25;
	p.transport = "rdma";
	ASSERT_JSON(&p, true,
		    "{\"name\":\"web\",\"result\":\"failed\",\"error\":\"link \\\"down\\\"\","
		    "\"peer\":\"10.0.0.2:7000\",\"total_ms\":1234,\"downtime_ms\":4.2,"
		    "\"rounds\":3,\"bytes_transferred\":1073741824,\"pages_sent\":122730,"
		    "\"pages_zero\":77,\"throughput_mbps\":812.25,\"throttle_pct\":20,"
		    "\"migration_id\":42,\"transport\":\"rdma\",\"pages_resent\":512,"
		    "\"phase\":\"done\",\"round\":3,"
		    "\"pages_remaining\":0,"
		    "\"dirty_rate_pps\":12300,\"expected_downtime_ms\":3.5}");
}

/* The same object written pretty to a stream (the path vm migrate --json takes). */
static void test_json_stream(void **state)
{
	GwMigProgress p = completed();
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	struct gw_json j;
	gw_json_init_file(&j, f, GW_JSON_PRETTY);
	gw_ctl_json_migration(&j, &p, false);
	assert_int_equal(gw_json_finish(&j), 0);
	fclose(f);
	assert_non_null(strstr(text, "{\n  \"name\": \"web\",\n  \"result\": \"completed\",\n"));
	assert_non_null(strstr(text, "\n  \"downtime_ms\": 4.2,\n  \"rounds\": 3,\n"));
	assert_non_null(strstr(
	    text,
	    "\n  \"migration_id\": 42,\n  \"transport\": \"tcp\",\n  \"pages_resent\": 512\n}"));
	free(text);
}

/* migrate-status human output. */
static void test_status_lines(void **state)
{
	GwMigProgress p = completed();
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	p.role = "source";
	assert_int_equal(gw_ctl_print_migration_status(f, &p), 0);
	fclose(f);
	assert_non_null(strstr(text, "name:              web\nresult:            completed\n"
				     "phase:             done\nrole:              source\n"
				     "peer:              10.0.0.2:7000\ntransport:         tcp\n"
				     "round:             3\n"
				     "elapsed:           1234 ms\n"));
	assert_non_null(strstr(text, "sent:              1024.0 MiB (122730 pages, 77 zero)\n"));
	assert_non_null(strstr(text, "expected downtime: 3.5 ms\ndowntime:          4.2 ms\n"));
	assert_non_null(strstr(text, "migration id:      42\n"));
	assert_null(strstr(text, "error:"));
	free(text);
}

/* vm show: the migration line and key only for a migrating VM; other keys unchanged. */
static void test_vm_show(void **state)
{
	GwVmInfo vm = GW_VM_INFO__INIT;
	GwMigProgress p = running();
	char *text = NULL;
	size_t len = 0;
	FILE *f;

	vm.name = "web";
	vm.state = "migrating";
	vm.memory_mib = 1024;
	vm.vcpus = 2;
	vm.image = "/img";
	f = open_memstream(&text, &len);
	assert_int_equal(gw_ctl_print_vm(f, &vm, &p, false), 0);
	fclose(f);
	assert_non_null(strstr(text, "state:       migrating\nmigration:   round 3, phase iterate, "
				     "150000 pages remaining, dirty 12300 p/s\n"));
	free(text);

	f = open_memstream(&text, &len);
	assert_int_equal(gw_ctl_print_vm(f, &vm, &p, true), 0);
	fclose(f);
	assert_non_null(
	    strstr(text, "  \"pid\": null,\n  \"migration\": {\n    \"name\": \"web\",\n"));
	assert_non_null(strstr(text, "\"expected_downtime_ms\": null\n  }\n}\n"));
	free(text);

	f = open_memstream(&text, &len);
	assert_int_equal(gw_ctl_print_vm(f, &vm, NULL, true), 0);
	fclose(f);
	assert_non_null(strstr(text, "  \"pid\": null,\n  \"migration\": null\n}\n"));
	free(text);

	vm.state = "running";
	f = open_memstream(&text, &len);
	assert_int_equal(gw_ctl_print_vm(f, &vm, &p, true), 0);
	fclose(f);
	assert_null(strstr(text, "migration"));
	assert_non_null(strstr(text, "  \"pid\": null\n}\n"));
	free(text);
	f = open_memstream(&text, &len);
	assert_int_equal(gw_ctl_print_vm(f, &vm, &p, false), 0);
	fclose(f);
	assert_null(strstr(text, "migration"));
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_bar_empty),	  cmocka_unit_test(test_bar_truncation),
	    cmocka_unit_test(test_bar_sanitized), cmocka_unit_test(test_percent),
	    cmocka_unit_test(test_eta),		  cmocka_unit_test(test_json_double),
	    cmocka_unit_test(test_json_absent),	  cmocka_unit_test(test_bar_example),
	    cmocka_unit_test(test_round_line),	  cmocka_unit_test(test_result_lines),
	    cmocka_unit_test(test_show_line),	  cmocka_unit_test(test_json_object),
	    cmocka_unit_test(test_json_stream),	  cmocka_unit_test(test_status_lines),
	    cmocka_unit_test(test_vm_show),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

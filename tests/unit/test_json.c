/* test_json.c -- cmocka tests of the gw_json writer: misuse, escaping, nesting, formats. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>

#include "gw_json.h"

/* Finish j, expect success and exactly want as its text, then free it. */
static void expect_doc(struct gw_json *j, const char *want)
{
	size_t len;
	assert_int_equal(gw_json_finish(j), 0);
	const char *got = gw_json_text(j, &len);
	assert_string_equal(got, want);
	assert_int_equal(len, strlen(want));
	gw_json_free(j);
}

/* Encode one string value compactly and compare. */
static void expect_str(const char *in, size_t n, const char *want)
{
	struct gw_json j;
	gw_json_init_buf(&j, GW_JSON_COMPACT);
	gw_json_strn(&j, in, n);
	expect_doc(&j, want);
}

/* ---- invalid use first ---- */

/* A value inside an object without a key is refused. */
static void test_value_without_key(void **state)
{
	struct gw_json j;
	gw_json_init_buf(&j, 0);
	gw_json_obj_begin(&j);
	gw_json_int(&j, 1);
	gw_json_obj_end(&j);
	assert_int_equal(gw_json_finish(&j), -EINVAL);
	gw_json_free(&j);
}

/* A key inside an array, or at top level, is refused. */
static void test_key_outside_object(void **state)
{
	struct gw_json j;
	gw_json_init_buf(&j, 0);
	gw_json_arr_begin(&j);
	gw_json_key(&j, "a");
	gw_json_arr_end(&j);
	assert_int_equal(gw_json_finish(&j), -EINVAL);
	gw_json_free(&j);
	gw_json_init_buf(&j, 0);
	gw_json_key(&j, "a");
	assert_int_equal(gw_json_finish(&j), -EINVAL);
	gw_json_free(&j);
}

/* Two keys in a row, and a key left without value, are refused. */
static void test_dangling_key(void **state)
{
	struct gw_json j;
	gw_json_init_buf(&j, 0);
	gw_json_obj_begin(&j);
	gw_json_key(&j, "a");
	gw_json_key(&j, "b");
	assert_int_equal(gw_json_finish(&j), -EINVAL);
	gw_json_free(&j);
	gw_json_init_buf(&j, 0);
	gw_json_obj_begin(&j);
	gw_json_key(&j, "a");
	gw_json_obj_end(&j);
	assert_int_equal(gw_json_finish(&j), -EINVAL);
	gw_json_free(&j);
}

/* Mismatched and unbalanced ends are refused; so is an unfinished or empty document. */
static void test_unbalanced(void **state)
{
	struct gw_json j;
	gw_json_init_buf(&j, 0);
	gw_json_obj_begin(&j);
	gw_json_arr_end(&j);
	assert_int_equal(gw_json_finish(&j), -EINVAL);
	gw_json_free(&j);
	gw_json_init_buf(&j, 0);
	gw_json_arr_end(&j);
	assert_int_equal(gw_json_finish(&j), -EINVAL);
	gw_json_free(&j);
	gw_json_init_buf(&j, 0);
	gw_json_arr_begin(&j);
	assert_int_equal(gw_json_finish(&j), -EINVAL);
	gw_json_free(&j);
	gw_json_init_buf(&j, 0);
	assert_int_equal(gw_json_finish(&j), -EINVAL);
	gw_json_free(&j);
}

/* Only one top-level value per document. */
static void test_two_top_level_values(void **state)
{
	struct gw_json j;
	gw_json_init_buf(&j, 0);
	gw_json_int(&j, 1);
	gw_json_int(&j, 2);
	assert_int_equal(gw_json_finish(&j), -EINVAL);
	assert_string_equal(gw_json_text(&j, NULL), "1");
	gw_json_free(&j);
}

/* Nesting deeper than GW_JSON_MAX_DEPTH fails with -EOVERFLOW; the limit itself works. */
static void test_depth_limit(void **state)
{
	struct gw_json j;
	gw_json_init_buf(&j, 0);
	for (int i = 0; i < GW_JSON_MAX_DEPTH; i++)
		gw_json_arr_begin(&j);
	for (int i = 0; i < GW_JSON_MAX_DEPTH; i++)
		gw_json_arr_end(&j);
	assert_int_equal(gw_json_finish(&j), 0);
	gw_json_free(&j);
	gw_json_init_buf(&j, 0);
	for (int i = 0; i <= GW_JSON_MAX_DEPTH; i++)
		gw_json_arr_begin(&j);
	assert_int_equal(gw_json_finish(&j), -EOVERFLOW);
	gw_json_free(&j);
}

/* ---- strings ---- */

/* Quote and backslash are escaped; '/' and plain ASCII pass through. */
static void test_escape_quote_backslash(void **state)
{
	expect_str("a\"b\\c/d", 7, "\"a\\\"b\\\\c/d\"");
	expect_str("", 0, "\"\"");
}

/* Control characters: short forms where JSON has them, \u00XX otherwise, DEL too. */
static void test_escape_control(void **state)
{
	expect_str("\b\f\n\r\t", 5, "\"\\b\\f\\n\\r\\t\"");
	expect_str("\x01\x1f\x7f", 3, "\"\\u0001\\u001f\\u007f\"");
	expect_str("a\0b", 3, "\"a\\u0000b\"");
}

/* Valid UTF-8 (2, 3 and 4 bytes) is kept as is. */
static void test_utf8_valid(void **state)
{
	const char *s = "\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\xa6";
	struct gw_json j;
	char want[64];
	snprintf(want, sizeof(want), "\"%s\"", s);
	gw_json_init_buf(&j, 0);
	gw_json_str(&j, s);
	expect_doc(&j, want);
}

/* Invalid UTF-8 becomes U+FFFD per bad byte: stray, overlong, surrogate, too big, cut. */
static void test_utf8_invalid(void **state)
{
	expect_str("a\x80z", 3, "\"a\\ufffdz\"");
	expect_str("\xc0\xaf", 2, "\"\\ufffd\\ufffd\"");
	expect_str("\xe0\x80\xaf", 3, "\"\\ufffd\\ufffd\\ufffd\"");
	expect_str("\xed\xa0\x80", 3, "\"\\ufffd\\ufffd\\ufffd\"");
	expect_str("\xf4\x90\x80\x80", 4, "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");
	expect_str("x\xe2\x82", 3, "\"x\\ufffd\\ufffd\"");
	expect_str("\xff", 1, "\"\\ufffd\"");
}

/* Keys are escaped like values; a NULL string is null. */
static void test_key_escape_and_null(void **state)
{
	struct gw_json j;
	gw_json_init_buf(&j, 0);
	gw_json_obj_begin(&j);
	gw_json_kv_str(&j, "a\"\n", NULL);
	gw_json_obj_end(&j);
	expect_doc(&j, "{\"a\\\"\\n\":null}");
}

/* ---- numbers and literals ---- */

/* Integer extremes, uint64 max, booleans and null. */
static void test_scalars(void **state)
{
	struct gw_json j;
	gw_json_init_buf(&j, 0);
	gw_json_arr_begin(&j);
	gw_json_int(&j, INT64_MIN);
	gw_json_int(&j, INT64_MAX);
	gw_json_int(&j, -1);
	gw_json_uint(&j, UINT64_MAX);
	gw_json_uint(&j, 0);
	gw_json_bool(&j, true);
	gw_json_bool(&j, false);
	gw_json_null(&j);
	gw_json_arr_end(&j);
	expect_doc(&j, "[-9223372036854775808,9223372036854775807,-1,18446744073709551615,0,"
		       "true,false,null]");
}

/* Doubles: at most 3 decimals, trailing zeros and a bare point dropped, NaN/inf as null. */
static void test_double(void **state)
{
	struct gw_json j;
	gw_json_init_buf(&j, 0);
	gw_json_arr_begin(&j);
	gw_json_double(&j, 4.2);
	gw_json_double(&j, 15.09);
	gw_json_double(&j, 3.0);
	gw_json_double(&j, 0.0004);
	gw_json_double(&j, -2.5);
	gw_json_double(&j, NAN);
	gw_json_double(&j, INFINITY);
	gw_json_arr_end(&j);
	expect_doc(&j, "[4.2,15.09,3,0,-2.5,null,null]");
}

/* ---- structure and formats ---- */

static void build_nested(struct gw_json *j)
{
	gw_json_obj_begin(j);
	gw_json_kv_str(j, "name", "web1");
	gw_json_key(j, "list");
	gw_json_arr_begin(j);
	gw_json_int(j, 1);
	gw_json_obj_begin(j);
	gw_json_kv_bool(j, "ok", true);
	gw_json_obj_end(j);
	gw_json_arr_begin(j);
	gw_json_arr_end(j);
	gw_json_arr_end(j);
	gw_json_key(j, "empty");
	gw_json_obj_begin(j);
	gw_json_obj_end(j);
	gw_json_kv_uint(j, "n", 7);
	gw_json_obj_end(j);
}

/* Compact output has no whitespace at all. */
static void test_nested_compact(void **state)
{
	struct gw_json j;
	gw_json_init_buf(&j, GW_JSON_COMPACT);
	build_nested(&j);
	expect_doc(&j, "{\"name\":\"web1\",\"list\":[1,{\"ok\":true},[]],\"empty\":{},\"n\":7}");
}

/* Pretty output: two-space indent, "key": value, empty containers stay on one line. */
static void test_nested_pretty(void **state)
{
	struct gw_json j;
	gw_json_init_buf(&j, GW_JSON_PRETTY);
	build_nested(&j);
	expect_doc(&j, "{\n"
		       "  \"name\": \"web1\",\n"
		       "  \"list\": [\n"
		       "    1,\n"
		       "    {\n"
		       "      \"ok\": true\n"
		       "    },\n"
		       "    []\n"
		       "  ],\n"
		       "  \"empty\": {},\n"
		       "  \"n\": 7\n"
		       "}");
}

/* A stream writer produces the same text as a buffer writer. */
static void test_file_writer(void **state)
{
	char *mem = NULL;
	size_t memlen = 0;
	FILE *fp = open_memstream(&mem, &memlen);
	struct gw_json j;
	assert_non_null(fp);
	gw_json_init_file(&j, fp, GW_JSON_COMPACT);
	build_nested(&j);
	assert_int_equal(gw_json_finish(&j), 0);
	assert_string_equal(gw_json_text(&j, NULL), "");
	fclose(fp);
	assert_string_equal(
	    mem, "{\"name\":\"web1\",\"list\":[1,{\"ok\":true},[]],\"empty\":{},\"n\":7}");
	free(mem);
}

/* A long string grows the buffer correctly. */
static void test_long_string(void **state)
{
	size_t n = 100000;
	char *s = malloc(n + 1), *want = malloc(n + 3);
	struct gw_json j;
	memset(s, 'x', n);
	s[n] = '\0';
	want[0] = '"';
	memcpy(want + 1, s, n);
	strcpy(want + 1 + n, "\"");
	gw_json_init_buf(&j, 0);
	gw_json_str(&j, s);
	expect_doc(&j, want);
	free(s);
	free(want);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_value_without_key),
	    cmocka_unit_test(test_key_outside_object),
	    cmocka_unit_test(test_dangling_key),
	    cmocka_unit_test(test_unbalanced),
	    cmocka_unit_test(test_two_top_level_values),
	    cmocka_unit_test(test_depth_limit),
	    cmocka_unit_test(test_escape_quote_backslash),
	    cmocka_unit_test(test_escape_control),
	    cmocka_unit_test(test_utf8_valid),
	    cmocka_unit_test(test_utf8_invalid),
	    cmocka_unit_test(test_key_escape_and_null),
	    cmocka_unit_test(test_scalars),
	    cmocka_unit_test(test_double),
	    cmocka_unit_test(test_nested_compact),
	    cmocka_unit_test(test_nested_pretty),
	    cmocka_unit_test(test_file_writer),
	    cmocka_unit_test(test_long_string),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* fuzz_metrics.c -- libFuzzer: the metrics endpoint's HTTP request parser
 * (gw_metrics_parse_request), fed the bytes a scraper sends, as they arrive: every prefix
 * of the input in turn, as the server re-parses its buffer after each read. Checks: only the
 * documented answers (0 = need more, 200, 400, 404, 405); 0 only below the size limit; once
 * an answer is given, more bytes do not change it (the server answers at once); 200 only
 * for a GET of /metrics in HTTP/1.x. Also the label-value escaping of the text builder: the
 * escaped text never holds a raw newline or an unescaped quote. */
#include <errno.h>

#include "fuzz_common.h"
#include "gw_metrics.h"

static void check_request(const char *buf, size_t len)
{
	size_t max = GW_METRICS_REQ_MAX;
	int first = 0;
	size_t first_at = 0;
	/* every length the server could see, up to the whole input */
	for (size_t n = 0; n <= len; n++) {
		int s = gw_metrics_parse_request(buf, n, max);
		FUZZ_CHECK(s == 0 || s == 200 || s == 400 || s == 404 || s == 405);
		if (s == 0)
			FUZZ_CHECK(n < max);
		if (first) {
			FUZZ_CHECK(s == first); /* more bytes do not change an answer */
		} else if (s) {
			first = s;
			first_at = n;
		}
	}
	if (first == 200)
		FUZZ_CHECK(first_at >= 18 && !memcmp(buf, "GET /metrics", 12));
}

static void check_escape(const char *s)
{
	struct gw_mtext t;
	gw_mtext_init(&t, 1 << 20);
	gw_mtext_label_value(&t, s);
	FUZZ_CHECK(!t.overflow);
	for (size_t i = 0; i < t.len; i++) {
		FUZZ_CHECK(t.buf[i] != '\n');
		if (t.buf[i] == '\\') {
			FUZZ_CHECK(i + 1 < t.len);
			FUZZ_CHECK(t.buf[i + 1] == '\\' || t.buf[i + 1] == 'n' ||
				   t.buf[i + 1] == '"');
			i++;
		} else {
			FUZZ_CHECK(t.buf[i] != '"');
		}
	}
	gw_mtext_free(&t);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_quiet();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 2 * GW_METRICS_REQ_MAX)
		return 0;
	/* exactly the bytes received, no terminator: ASan sees any read past them */
	char *buf = malloc(size ? size : 1);
	FUZZ_CHECK(buf);
	memcpy(buf, data, size);
	check_request(buf, size);
	free(buf);

	char *s = malloc(size + 1);
	FUZZ_CHECK(s);
	memcpy(s, data, size);
	s[size] = 0;
	check_escape(s);
	free(s);
	return 0;
}

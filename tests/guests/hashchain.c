/* hashchain.c -- test guest: deterministic hash chain over memory, proves exact migration. */
#include "guest_rt.h"

#include <emmintrin.h>

/* Dependent SSE2 multiply-add steps per 16 bytes of memory: sets the cost of a round
 * (about 30 ms per 16 MiB natively, see README.md). Changing it changes every result. */
#define MIX_STEPS 16

static uint64_t results[GR_MAX_VCPUS];
static uint64_t published[GR_MAX_VCPUS];

static inline uint64_t mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	x ^= x >> 33;
	return x;
}

static inline uint64_t rotl64(uint64_t x, unsigned r)
{
	return (x << r) | (x >> (64 - r));
}

static inline uint64_t lane0(__m128i v)
{
	return (uint64_t)_mm_cvtsi128_si64(v);
}

static inline uint64_t lane1(__m128i v)
{
	return (uint64_t)_mm_cvtsi128_si64(_mm_unpackhi_epi64(v, v));
}

/* Report a cmdline/layout error and stop the VM with status. Errors every vCPU sees alike
 * (global) are reported by vCPU 0 alone; the other vCPUs just stop. */
static __attribute__((noreturn)) void fail(uint64_t vcpu, bool global, uint8_t status,
					   const char *what, uint64_t v)
{
	if (global && vcpu != 0)
		vcpu_stop();
	gprintf("hashchain error: %s (%lu)\n", what, v);
	vm_exit(status);
}

/* Fill the region from a PRNG seeded by (seed, vcpu). */
static void fill(uint64_t *w, uint64_t words, uint64_t seed, uint64_t vcpu)
{
	uint64_t st = mix64(seed ^ 0x6a09e667f3bcc908ull) ^ mix64(vcpu + 0xbb67ae8584caa73bull);
	for (uint64_t i = 0; i < words; i++)
		w[i] = splitmix64(&st);
}

/* One round: walk the region page by page, mix every 16 bytes into the XMM accumulator
 * (kept in a register across pages, so lost XMM state changes the result), fold it into
 * the 64-bit running hash and write the hash back into the page. Depends only on the
 * contents, never on addresses. */
static uint64_t round_pass(uint64_t *region, uint64_t pages, uint64_t round, uint64_t h,
			   __m128i *accp)
{
	const __m128i k = _mm_set_epi32(0, (int)0x9e3779b1u, 0, (int)0x85ebca77u);
	__m128i acc = *accp;
	for (uint64_t p = 0; p < pages; p++) {
		uint64_t *pg = region + p * (GR_PAGE / 8);
		const __m128i *v = (const __m128i *)pg;
		__m128i x = _mm_xor_si128(acc, _mm_set_epi64x((long long)round, (long long)h));
		for (unsigned j = 0; j < GR_PAGE / 16; j++) {
			x = _mm_xor_si128(x, _mm_load_si128(v + j));
			for (unsigned s = 0; s < MIX_STEPS; s++)
				x = _mm_add_epi64(_mm_mul_epu32(x, k), _mm_shuffle_epi32(x, 0xb1));
			x = _mm_xor_si128(x, _mm_srli_si128(x, 8));
		}
		acc = x;
		h = mix64(h ^ lane0(x)) + rotl64(lane1(x), 23) + p;
		pg[h & 511] = h ^ round;
	}
	*accp = acc;
	return h;
}

void guest_main(uint64_t ram, uint64_t vcpu, const char *cmdline, uint64_t khz)
{
	bool ok_mem, ok_rounds, ok_seed, ok_vc;
	uint64_t mem = cmdline_get_u64_ok(cmdline, "mem", 16, &ok_mem);
	uint64_t rounds = cmdline_get_u64_ok(cmdline, "rounds", 50, &ok_rounds);
	uint64_t seed = cmdline_get_u64_ok(cmdline, "seed", 1, &ok_seed);
	uint64_t nvcpus = cmdline_get_u64_ok(cmdline, "vcpus", 1, &ok_vc);
	if (!ok_mem || !ok_rounds || !ok_seed || !ok_vc)
		fail(vcpu, true, GR_EXIT_BADARG, "malformed number in cmdline", 0);
	if (nvcpus == 0 || nvcpus > GR_MAX_VCPUS)
		fail(vcpu, true, GR_EXIT_BADARG, "vcpus= out of range", nvcpus);
	if (vcpu >= nvcpus)
		fail(vcpu, false, GR_EXIT_BADARG,
		     "vcpu index >= vcpus=, pass vcpus=<n> matching the VM", vcpu);
	if (mem == 0)
		fail(vcpu, true, GR_EXIT_BADARG, "mem= must be at least 1", mem);

	/* Regions: vCPU i owns [base + i*mem MiB, base + (i+1)*mem MiB), below the stacks. */
	uint64_t base = align_up((uint64_t)(uintptr_t)_image_end, GR_MIB);
	uint64_t stacks = nvcpus * GR_STACK_STRIDE;
	if (mem > (UINT64_MAX / GR_MIB) / nvcpus || ram < stacks ||
	    ram - stacks < base + nvcpus * mem * GR_MIB) {
		if (vcpu != 0)
			vcpu_stop();
		gprintf("hashchain error: RAM too small: %lu MiB for %lu vCPUs x %lu MiB "
			"(need about %lu MiB)\n",
			ram / GR_MIB, nvcpus, mem, base / GR_MIB + nvcpus * mem + 1);
		vm_exit(GR_EXIT_NOMEM);
	}
	uint64_t bytes = mem * GR_MIB, pages = bytes / GR_PAGE;
	uint64_t *region = (uint64_t *)(uintptr_t)(base + vcpu * bytes);

	if (vcpu == 0)
		gprintf("hashchain start vcpus=%lu mem=%lu rounds=%lu seed=%lu\n", nvcpus, mem,
			rounds, seed);
	fill(region, bytes / 8, seed, vcpu);

	uint64_t h = mix64(seed) ^ mix64(vcpu + 1);
	__m128i acc = _mm_set_epi64x((long long)mix64(h + 1), (long long)mix64(h + 2));
	uint64_t step = rounds / 10 ? rounds / 10 : 1;
	for (uint64_t r = 1; r <= rounds; r++) {
		h = round_pass(region, pages, r, h, &acc);
		if (r % step == 0 || r == rounds)
			gprintf("hashchain vcpu=%lu round=%lu/%lu\n", vcpu, r, rounds);
	}
	h = mix64(h ^ lane0(acc) ^ rotl64(lane1(acc), 32));

	results[vcpu] = h;
	atomic_store_u64(&published[vcpu], 1);
	if (vcpu != 0)
		vcpu_stop();

	uint64_t warn_at = rdtsc() + ns_to_tsc(10 * (uint64_t)1000000000);
	bool warned = false;
	for (uint64_t i = 0; i < nvcpus; i++) {
		while (!atomic_load_u64(&published[i])) {
			if (!warned && (int64_t)(rdtsc() - warn_at) >= 0) {
				gprintf("hashchain waiting for vcpu %lu (vcpus=%lu must match the "
					"VM)\n",
					i, nvcpus);
				warned = true;
			}
			cpu_relax();
		}
	}
	uint64_t res = mix64(nvcpus ^ 0x3c6ef372fe94f82bull);
	for (uint64_t i = 0; i < nvcpus; i++)
		res = mix64(res ^ atomic_load_u64(&results[i])) + i;
	gprintf("hashchain result=%016lx\n", res);
	vm_exit(GR_EXIT_OK);
}

/* ram_pool.h -- pre-populated guest RAM for incoming migrations (agent side). */
#ifndef RAM_POOL_H
#define RAM_POOL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * A memfd of `size` bytes whose pages a short-lived child process has already allocated
 * (MADV_POPULATE_WRITE, zero-filled): an incoming VM whose RAM fits takes it instead of a
 * fresh memfd, so the migration's pages land in resident memory (no allocation, zeroing or
 * host page faults on the receive path). After a take, the next one is filled once no
 * migration has run for GW_RAM_POOL_REFILL_DELAY_MS (the fill costs CPU).
 */
#define GW_RAM_POOL_REFILL_DELAY_MS 5000

struct gw_ram_pool {
	uint64_t size; /* bytes; 0 = no pool configured */
	int fd;	       /* the memfd (O_CLOEXEC), -1 = none */
	pid_t filler;  /* child populating fd, 0 = none */
	bool ready;    /* fd is populated */
	unsigned long long fill_started_ms, taken_ms;
};

/* Configure a pool of mib MiB (0 = none); the first fill starts at the first tick. */
void gw_ram_pool_init(struct gw_ram_pool *p, uint64_t mib);
/* Every agent loop turn: reap a finished fill, start one when due (busy = a migration runs). */
void gw_ram_pool_tick(struct gw_ram_pool *p, bool busy);
/* A populated memfd of at least bytes, handed over (the caller closes it), or -1. */
int gw_ram_pool_take(struct gw_ram_pool *p, uint64_t bytes);
/* MiB that a take of bytes would not need from the host's free memory (0 if none). */
uint64_t gw_ram_pool_covers_mib(const struct gw_ram_pool *p, uint64_t bytes);
void gw_ram_pool_close(struct gw_ram_pool *p);

#endif

#include "kqe/breaker.h"

#include "kqe/util.h"

void
breaker_init(struct breaker *b, long cooldown_ms)
{
	atomic_store(&b->open_until_ns, 0);
	atomic_store(&b->trips, 0);
	b->cooldown_ns = (uint64_t)cooldown_ms * 1000000u;
}

bool
breaker_allow(struct breaker *b)
{
	if (b == NULL)
		return true;
	uint64_t until = atomic_load(&b->open_until_ns);
	if (until == 0)
		return true;
	uint64_t now = now_ns();
	if (now < until)
		return false;
	/* The cooldown is over: the one caller that moves the mark on is the probe. */
	return atomic_compare_exchange_strong(&b->open_until_ns, &until, now + b->cooldown_ns);
}

void
breaker_ok(struct breaker *b)
{
	if (b != NULL && atomic_load(&b->open_until_ns) != 0)
		atomic_store(&b->open_until_ns, 0);
}

void
breaker_fail(struct breaker *b)
{
	if (b == NULL)
		return;
	if (atomic_exchange(&b->open_until_ns, now_ns() + b->cooldown_ns) == 0)
		atomic_fetch_add(&b->trips, 1);
}

bool
breaker_is_open(struct breaker *b)
{
	return b != NULL && atomic_load(&b->open_until_ns) > now_ns();
}

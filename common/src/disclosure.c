/* disclosure — the rules for comparison values; see the header and docs/disclosure.md. */
#include "kqe/disclosure.h"

void
sdc_rules_default(struct sdc_rules *rules)
{
	rules->min_count = SDC_DEFAULT_MIN_COUNT;
	rules->dominance = SDC_DEFAULT_DOMINANCE;
	rules->min_offices = SDC_DEFAULT_MIN_OFFICES;
}

bool
sdc_comparison_allowed(const struct sdc_rules *rules, int offices)
{
	return offices >= rules->min_offices;
}

const char *
sdc_median_blocked(const struct sdc_rules *rules, int offices, long long cases, long long top)
{
	if (!sdc_comparison_allowed(rules, offices))
		return "min_offices";
	if (cases < rules->min_count)
		return "min_count";
	if ((double)top > rules->dominance * (double)cases)
		return "dominance";
	return NULL;
}

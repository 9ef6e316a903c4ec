/* libcap-ng wrappers. Runs in children between clone and exec only. */
#include "config.h"
#include <cap-ng.h>
#include <ctype.h>
#include <errno.h>
#include <linux/capability.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>

#include "caps.h"
#include "util.h"

uint64_t sbx_caps_default(void)
{
	static const int set[] = { CAP_CHOWN,	   CAP_DAC_OVERRIDE, CAP_FOWNER, CAP_FSETID,
				   CAP_KILL,	   CAP_SETGID,	     CAP_SETUID, CAP_SETPCAP,
				   CAP_NET_BIND_SERVICE, CAP_SYS_CHROOT, CAP_SETFCAP };
	uint64_t m = 0;
	for (size_t i = 0; i < SBX_ARRAY_SIZE(set); i++)
		m |= 1ULL << set[i];
	return m;
}

int sbx_caps_from_name(const char *name)
{
	char buf[64];
	size_t n = 0;
	if (!strncasecmp(name, "CAP_", 4))
		name += 4;
	for (; *name && n < sizeof(buf) - 1; name++)
		buf[n++] = (char)tolower((unsigned char)*name);
	buf[n] = '\0';
	int cap = capng_name_to_capability(buf);
	return cap >= 0 && cap < 64 ? cap : -1;
}

const char *sbx_caps_name(int cap)
{
	static char names[64][40];
	if (cap < 0 || cap >= 64)
		return NULL;
	const char *n = capng_capability_to_name((unsigned int)cap);
	if (!n)
		return NULL;
	if (!names[cap][0]) {
		snprintf(names[cap], sizeof(names[cap]), "CAP_%s", n);
		for (char *p = names[cap]; *p; p++)
			*p = (char)toupper((unsigned char)*p);
	}
	return names[cap];
}

/* Add the caps of mask to the given sets, except those the process does
 * not have itself (have is read before clearing): "ALL" on a host whose
 * root lacks some capability means all the rest. */
static void fill(uint64_t mask, uint64_t have, capng_type_t type)
{
	for (int c = 0; c <= CAP_LAST_CAP && c < 64; c++)
		if (mask & have & (1ULL << c))
			capng_update(CAPNG_ADD, type, (unsigned int)c);
}

static uint64_t current(capng_type_t type)
{
	uint64_t m = 0;
	capng_get_caps_process();
	for (int c = 0; c <= CAP_LAST_CAP && c < 64; c++)
		if (capng_have_capability(type, (unsigned int)c))
			m |= 1ULL << c;
	return m;
}

int sbx_caps_limit_bounding(uint64_t mask, sbx_error **err)
{
	uint64_t have = current(CAPNG_BOUNDING_SET);
	capng_clear(CAPNG_SELECT_BOUNDS);
	fill(mask, have, CAPNG_BOUNDING_SET);
	if (capng_apply(CAPNG_SELECT_BOUNDS) < 0)
		return sbx_error_errno(err, errno ? errno : EPERM, "limit capability bounding set");
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		return sbx_error_errno(err, errno, "clear ambient capabilities");
	return 0;
}

int sbx_caps_apply(uint64_t mask, bool root, sbx_error **err)
{
	uint64_t have = current(CAPNG_PERMITTED);
	capng_clear(CAPNG_SELECT_CAPS);
	if (root)
		fill(mask, have, CAPNG_EFFECTIVE | CAPNG_PERMITTED | CAPNG_INHERITABLE);
	if (capng_apply(CAPNG_SELECT_CAPS) < 0)
		return sbx_error_errno(err, errno ? errno : EPERM, "set capabilities");
	return 0;
}

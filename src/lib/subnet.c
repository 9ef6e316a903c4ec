/* Subnet pools and overlaps. Addresses are kept in network order, as the
 * kernel gives them; arithmetic is done in host order. */
#include "config.h"
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netlink.h"
#include "subnet.h"
#include "util.h"

static uint32_t mask_of(int prefix)
{
	return prefix ? ~0U << (32 - prefix) : 0;
}

bool sbx_cidr_overlaps(struct sbx_cidr a, struct sbx_cidr b)
{
	/* Two prefixes overlap when the shorter one contains the other. */
	uint32_t m = mask_of(a.prefix < b.prefix ? a.prefix : b.prefix);
	return (ntohl(a.net.s_addr) & m) == (ntohl(b.net.s_addr) & m);
}

void sbx_cidr_format(struct sbx_cidr c, char out[SBX_CIDR_STRLEN])
{
	char ip[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &c.net, ip, sizeof(ip));
	snprintf(out, SBX_CIDR_STRLEN, "%s/%d", ip, c.prefix);
}

int sbx_subnet_pool_parse(const char *key, const char *s, struct sbx_subnet_pool **out, size_t *n, sbx_error **err)
{
	*out = NULL;
	*n = 0;
	_cleanup_free_ char *copy = strdup(s ? s : "");
	_cleanup_free_ struct sbx_subnet_pool *v = NULL;
	size_t count = 0;
	if (!copy)
		return sbx_error_errno(err, ENOMEM, "%s", key);
	for (char *save = NULL, *tok = strtok_r(copy, ", \t", &save); tok; tok = strtok_r(NULL, ", \t", &save)) {
		struct sbx_subnet_pool p;
		char *colon = strchr(tok, ':');
		if (colon)
			*colon = '\0';
		int64_t size = 0;
		if (sbx_cidr_parse(tok, &p.base.net, &p.base.prefix) < 0 ||
		    (colon && sbx_parse_int64(colon + 1, 0, 32, &size) < 0))
			return sbx_error_set(err, SBX_ERR_INVALID_PARAMS, "%s: '%s%s%s' is not BASE/PREFIX[:SIZE]", key,
					     tok, colon ? ":" : "", colon ? colon + 1 : "");
		p.size = colon ? (int)size : p.base.prefix;
		if (p.size < p.base.prefix || p.size < 8 || p.size > 30)
			return sbx_error_set(err, SBX_ERR_INVALID_PARAMS,
					     "%s: in '%s', the subnets' size must be from /8 to /30 and no larger than "
					     "the pool (/%d)", key, tok, p.base.prefix);
		struct sbx_subnet_pool *grown = realloc(v, (count + 1) * sizeof(*v));
		if (!grown)
			return sbx_error_errno(err, ENOMEM, "%s", key);
		v = grown;
		v[count++] = p;
	}
	if (!count)
		return sbx_error_set(err, SBX_ERR_INVALID_PARAMS, "%s: no pool given", key);
	*out = v;
	v = NULL;
	*n = count;
	return 0;
}

int sbx_subnet_pick(const struct sbx_subnet_pool *pools, size_t n, const struct sbx_cidr *taken, size_t n_taken,
		    struct sbx_cidr *out)
{
	for (size_t i = 0; i < n; i++) {
		const struct sbx_subnet_pool *p = &pools[i];
		uint64_t first = ntohl(p->base.net.s_addr) & mask_of(p->base.prefix);
		uint64_t end = first + (1ULL << (32 - p->base.prefix));
		uint64_t step = 1ULL << (32 - p->size);
		for (uint64_t at = first; at < end;) {
			struct sbx_cidr c = { { htonl((uint32_t)at) }, p->size };
			uint64_t next = at + step;
			bool free_ = true;
			for (size_t k = 0; k < n_taken; k++) {
				if (!sbx_cidr_overlaps(c, taken[k]))
					continue;
				free_ = false;
				/* A taken range wider than a candidate rules out every
				 * candidate it covers: go on past its end. */
				if (taken[k].prefix < p->size) {
					uint64_t t = ntohl(taken[k].net.s_addr) & mask_of(taken[k].prefix);
					uint64_t past = t + (1ULL << (32 - taken[k].prefix));
					if (past > next)
						next = past;
				}
			}
			if (free_) {
				*out = c;
				return 0;
			}
			at = next;
		}
	}
	return -1;
}

bool sbx_subnet_foreign(const struct sbx_nl_prefix *p, const char *bridge, uint32_t group)
{
	if (p->prefix < 8)
		return false;
	if (p->ifindex && bridge && !strcmp(p->ifname, bridge))
		return false;
	if (p->ifindex && group && p->group == group)
		return false;
	return true;
}

const struct sbx_nl_prefix *sbx_subnet_conflict(const struct sbx_nl_prefix *p, size_t n, struct sbx_cidr subnet,
						const char *bridge, uint32_t group)
{
	/* An address names the link that holds the range best; a route
	 * without one (a VPN's, a blackhole) comes next. */
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < n; i++) {
			struct sbx_cidr c = { p[i].net, p[i].prefix };
			if ((p[i].kind == SBX_NL_ADDRESS) == (pass == 0) && sbx_subnet_foreign(&p[i], bridge, group) &&
			    sbx_cidr_overlaps(c, subnet))
				return &p[i];
		}
	}
	return NULL;
}

void sbx_subnet_describe(const struct sbx_nl_prefix *p, char *out, size_t n)
{
	char net[SBX_CIDR_STRLEN];
	if (p->kind == SBX_NL_ADDRESS) {
		char ip[INET_ADDRSTRLEN];
		inet_ntop(AF_INET, &p->addr, ip, sizeof(ip));
		snprintf(out, n, "address %s/%d of %s", ip, p->prefix, p->ifname[0] ? p->ifname : "a link");
		return;
	}
	sbx_cidr_format((struct sbx_cidr){ p->net, p->prefix }, net);
	if (p->kind == SBX_NL_ROUTE_DEAD || !p->ifindex)
		snprintf(out, n, "route %s (no link: blackhole or unreachable)", net);
	else
		snprintf(out, n, "route %s dev %s", net, p->ifname[0] ? p->ifname : "?");
}

/* The sandboxes' packet filter and NAT: one nftables table of our own,
 * written through libnftnl and replaced as a whole in one atomic batch.
 * Never lists, flushes or changes any other table. IPv4 only; everything
 * else a sandbox sends is dropped. */
#ifndef SBX_NFT_H
#define SBX_NFT_H

#include <netinet/in.h>
#include <stddef.h>

#include "error.h"

struct sbx_cidr {
	struct in_addr net;
	int prefix;
};

struct sbx_nft_sandbox {
	struct in_addr ip;
	/* allow_out is checked first, then deny_out, then the defaults. */
	const struct sbx_cidr *allow;
	size_t n_allow;
	const struct sbx_cidr *deny;
	size_t n_deny;
};

struct sbx_nft_config {
	const char *table; /* family inet */
	uint32_t group;    /* device group of every sandbox's host link */
	struct sbx_cidr subnet;
	/* Resolvers the sandboxes were given: port 53 reaches them even when
	 * they are host addresses or in a forbidden range. */
	const struct in_addr *dns;
	size_t n_dns;
	const struct sbx_cidr *forbidden; /* besides 169.254.0.0/16, the subnet and the host */
	size_t n_forbidden;
	const struct sbx_nft_sandbox *sandboxes;
	size_t n_sandboxes;
};

/* Creates or replaces the table. */
int sbx_nft_apply(const struct sbx_nft_config *cfg, sbx_error **err);
/* Removes the table; a missing one is fine. */
int sbx_nft_remove(const char *table, sbx_error **err);

#endif

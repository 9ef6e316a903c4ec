/* The bridge's subnet: the pools it is chosen from, and what on the host
 * already holds an address range. Pure functions over lists the caller
 * reads (sbx_nl_prefixes); nothing here touches the host. */
#ifndef SBX_SUBNET_H
#define SBX_SUBNET_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

struct sbx_nl_prefix;

struct sbx_cidr {
	struct in_addr net;
	int prefix;
};

/* sandboxd's default subnet_pool: away from podman's default network
 * (10.88/16) and the /24s it hands out next, Kubernetes' service range
 * (10.96/12), Docker's default pools (172.17-172.27 and 192.168/16) and
 * home networks. */
#define SBX_DEFAULT_SUBNET_POOL "10.200.0.0/13:16, 10.208.0.0/12:16, 172.28.0.0/14:16"

/* "a.b.c.d/nn" and its terminating NUL. */
#define SBX_CIDR_STRLEN (INET_ADDRSTRLEN + 3)

/* Subnets of `size` bits cut from base, lowest first (Docker's
 * default-address-pools). */
struct sbx_subnet_pool {
	struct sbx_cidr base;
	int size;
};

bool sbx_cidr_overlaps(struct sbx_cidr a, struct sbx_cidr b);
void sbx_cidr_format(struct sbx_cidr c, char out[SBX_CIDR_STRLEN]);

/* "BASE/PREFIX[:SIZE], ..." (SIZE defaults to PREFIX; subnets are /8 to
 * /30). Errors name key. */
int sbx_subnet_pool_parse(const char *key, const char *s, struct sbx_subnet_pool **out, size_t *n, sbx_error **err);
/* The first subnet of the pools, in their order, that overlaps none of
 * taken; -1 when every one does. */
int sbx_subnet_pick(const struct sbx_subnet_pool *pools, size_t n, const struct sbx_cidr *taken, size_t n_taken,
		    struct sbx_cidr *out);

/* Whether a prefix of the host belongs to another network than the one of
 * bridge and group (0: no group): not on the bridge, not on a link of the
 * group, and not a default-like route shorter than /8 (a VPN's 0.0.0.0/1
 * covers every subnet but hides none). */
bool sbx_subnet_foreign(const struct sbx_nl_prefix *p, const char *bridge, uint32_t group);
/* The first foreign prefix of the host that overlaps subnet; NULL if none. */
const struct sbx_nl_prefix *sbx_subnet_conflict(const struct sbx_nl_prefix *p, size_t n, struct sbx_cidr subnet,
						const char *bridge, uint32_t group);
/* "route 10.88.0.0/16 dev podman0", "address 10.88.0.1/16 of podman0" */
void sbx_subnet_describe(const struct sbx_nl_prefix *p, char *out, size_t n);

#endif

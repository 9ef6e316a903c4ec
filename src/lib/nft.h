/* The sandboxes' packet filter and NAT: one nftables table of our own,
 * written through libnftnl and replaced as a whole in one atomic batch.
 * Never lists, flushes or changes any other table (firewalls.c reads
 * them, through the batch and dump helpers at the end). IPv4 only;
 * everything else a sandbox sends is dropped. */
#ifndef SBX_NFT_H
#define SBX_NFT_H

#include <netinet/in.h>
#include <stddef.h>

#include "error.h"
#include "subnet.h"

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

/* For the lib modules that read the whole ruleset and change single rules
 * of other tables (firewalls.c): a batch of messages committed atomically,
 * each one acknowledged, and dumps. */
struct nlmsghdr;
struct sbx_nft_batch;
struct sbx_nft_batch *sbx_nft_batch_new(void);
/* The header of the next message, for the caller's payload; then
 * sbx_nft_batch_add. NULL when out of memory (the run then fails). */
struct nlmsghdr *sbx_nft_batch_msg(struct sbx_nft_batch *b, uint16_t type, uint16_t family, uint16_t flags);
void sbx_nft_batch_add(struct sbx_nft_batch *b, struct nlmsghdr *nlh);
void sbx_nft_batch_oom(struct sbx_nft_batch *b);
int sbx_nft_batch_run(struct sbx_nft_batch *b, const char *what, sbx_error **err);
void sbx_nft_batch_free(struct sbx_nft_batch *b);
/* One NLM_F_DUMP request (build_cb may add attributes, such as a table to
 * filter by); fn receives each message. When the ruleset changes while a
 * dump spans several reads (NLM_F_DUMP_INTR), it fails with the error's
 * errnum EINTR: what fn received may be torn, and the caller reads
 * again. */
int sbx_nft_dump(uint16_t type, uint16_t family, void (*build_cb)(struct nlmsghdr *nlh, void *data), void *build_data,
		 int (*fn)(const struct nlmsghdr *nlh, void *data), void *data, sbx_error **err);
/* The ruleset's generation id, which every committed change moves on:
 * equal before and after several dumps, they read one ruleset. */
int sbx_nft_genid(uint32_t *gen, sbx_error **err);

#endif

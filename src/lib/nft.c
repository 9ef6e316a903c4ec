/* nftables through libnftnl. The whole table is rebuilt in one batch
 * ("add table; delete table; add table; chains; rules"), which the kernel
 * commits atomically: there is never a moment without the rules, and no
 * rule handles to track. Connection tracking state lives outside the
 * table, so established connections survive a rebuild. */
#include "config.h"
#include <arpa/inet.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/table.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nft.h"
#include "util.h"

/* Room for one request, or one read of replies (the kernel sends at most
 * a page or 8 KiB per message). */
#define NL_BUF 32768

struct batch {
	struct sbx_buf buf;
	uint32_t seq;
	uint32_t first_seq;
	size_t acks; /* messages that ask for an ACK */
	bool oom;
};

static char *batch_slot(struct batch *b)
{
	if (sbx_buf_reserve(&b->buf, MNL_SOCKET_BUFFER_SIZE) < 0) {
		b->oom = true;
		return NULL;
	}
	memset(b->buf.data + b->buf.len, 0, MNL_SOCKET_BUFFER_SIZE);
	return b->buf.data + b->buf.len;
}

static void batch_commit(struct batch *b, struct nlmsghdr *nlh)
{
	b->buf.len += nlh->nlmsg_len;
}

static struct nlmsghdr *msg_start_family(struct batch *b, uint16_t type, uint16_t family, uint16_t flags)
{
	char *p = batch_slot(b);
	if (!p)
		return NULL;
	b->acks++;
	return nftnl_nlmsg_build_hdr(p, type, family, flags | NLM_F_ACK, b->seq++);
}

static struct nlmsghdr *msg_start(struct batch *b, uint16_t type, uint16_t flags)
{
	return msg_start_family(b, type, NFPROTO_INET, flags);
}

static void add_table(struct batch *b, const char *name, bool delete)
{
	struct nftnl_table *t = nftnl_table_alloc();
	if (!t) {
		b->oom = true;
		return;
	}
	nftnl_table_set_u32(t, NFTNL_TABLE_FAMILY, NFPROTO_INET);
	nftnl_table_set_str(t, NFTNL_TABLE_NAME, name);
	struct nlmsghdr *nlh =
		msg_start(b, delete ? NFT_MSG_DELTABLE : NFT_MSG_NEWTABLE, delete ? 0 : NLM_F_CREATE);
	if (nlh) {
		nftnl_table_nlmsg_build_payload(nlh, t);
		batch_commit(b, nlh);
	}
	nftnl_table_free(t);
}

/* A base chain when hook >= 0, else a regular chain for jumps. */
static void add_chain(struct batch *b, const char *table, const char *name, int hook, int prio, const char *type)
{
	struct nftnl_chain *c = nftnl_chain_alloc();
	if (!c) {
		b->oom = true;
		return;
	}
	nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, table);
	nftnl_chain_set_str(c, NFTNL_CHAIN_NAME, name);
	nftnl_chain_set_u32(c, NFTNL_CHAIN_FAMILY, NFPROTO_INET);
	if (hook >= 0) {
		nftnl_chain_set_u32(c, NFTNL_CHAIN_HOOKNUM, (uint32_t)hook);
		nftnl_chain_set_s32(c, NFTNL_CHAIN_PRIO, prio);
		nftnl_chain_set_str(c, NFTNL_CHAIN_TYPE, type);
		nftnl_chain_set_u32(c, NFTNL_CHAIN_POLICY, NF_ACCEPT);
	}
	struct nlmsghdr *nlh = msg_start(b, NFT_MSG_NEWCHAIN, NLM_F_CREATE);
	if (nlh) {
		nftnl_chain_nlmsg_build_payload(nlh, c);
		batch_commit(b, nlh);
	}
	nftnl_chain_free(c);
}

/* ---- rule building: each helper appends expressions to one rule ---- */

static void expr_add(struct nftnl_rule *r, struct nftnl_expr *e, bool *oom)
{
	if (!e) {
		*oom = true;
		return;
	}
	nftnl_rule_add_expr(r, e);
}

static void m_meta(struct nftnl_rule *r, uint32_t key, bool *oom)
{
	struct nftnl_expr *e = nftnl_expr_alloc("meta");
	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, key);
		nftnl_expr_set_u32(e, NFTNL_EXPR_META_DREG, NFT_REG_1);
	}
	expr_add(r, e, oom);
}

static void m_cmp(struct nftnl_rule *r, uint32_t op, const void *data, uint32_t len, bool *oom)
{
	struct nftnl_expr *e = nftnl_expr_alloc("cmp");
	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_SREG, NFT_REG_1);
		nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_OP, op);
		nftnl_expr_set(e, NFTNL_EXPR_CMP_DATA, data, len);
	}
	expr_add(r, e, oom);
}

static void m_bitwise(struct nftnl_rule *r, const void *mask, uint32_t len, bool *oom)
{
	static const uint8_t zero[16];
	struct nftnl_expr *e = nftnl_expr_alloc("bitwise");
	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_SREG, NFT_REG_1);
		nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_DREG, NFT_REG_1);
		nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_LEN, len);
		nftnl_expr_set(e, NFTNL_EXPR_BITWISE_MASK, mask, len);
		nftnl_expr_set(e, NFTNL_EXPR_BITWISE_XOR, zero, len);
	}
	expr_add(r, e, oom);
}

static void m_payload(struct nftnl_rule *r, uint32_t base, uint32_t off, uint32_t len, bool *oom)
{
	struct nftnl_expr *e = nftnl_expr_alloc("payload");
	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_DREG, NFT_REG_1);
		nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_BASE, base);
		nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET, off);
		nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_LEN, len);
	}
	expr_add(r, e, oom);
}

/* iifname/oifname NAME (exact) */
static void m_ifname(struct nftnl_rule *r, uint32_t key, uint32_t op, const char *name, bool *oom)
{
	char buf[16] = { 0 };
	snprintf(buf, sizeof(buf), "%s", name);
	m_meta(r, key, oom);
	m_cmp(r, op, buf, sizeof(buf), oom);
}

/* iifgroup/oifgroup [!=] GROUP */
static void m_group(struct nftnl_rule *r, uint32_t key, uint32_t op, uint32_t group, bool *oom)
{
	m_meta(r, key, oom);
	m_cmp(r, op, &group, sizeof(group), oom);
}

static void m_ipv4(struct nftnl_rule *r, bool *oom)
{
	uint8_t proto = NFPROTO_IPV4;
	m_meta(r, NFT_META_NFPROTO, oom);
	m_cmp(r, NFT_CMP_EQ, &proto, 1, oom);
}

/* ip saddr/daddr [!=] net/prefix */
static void m_ip_addr(struct nftnl_rule *r, bool daddr, uint32_t op, struct sbx_cidr c, bool *oom)
{
	m_ipv4(r, oom); /* also lets `nft list` show "ip saddr" */
	m_payload(r, NFT_PAYLOAD_NETWORK_HEADER, daddr ? 16 : 12, 4, oom);
	if (c.prefix < 32) {
		uint32_t mask = c.prefix ? htonl(~0U << (32 - c.prefix)) : 0;
		m_bitwise(r, &mask, 4, oom);
	}
	m_cmp(r, op, &c.net.s_addr, 4, oom);
}

static void m_ct_established(struct nftnl_rule *r, bool *oom)
{
	uint32_t mask = NF_CT_STATE_BIT(IP_CT_ESTABLISHED) | NF_CT_STATE_BIT(IP_CT_RELATED), zero = 0;
	struct nftnl_expr *e = nftnl_expr_alloc("ct");
	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_CT_KEY, NFT_CT_STATE);
		nftnl_expr_set_u32(e, NFTNL_EXPR_CT_DREG, NFT_REG_1);
	}
	expr_add(r, e, oom);
	m_bitwise(r, &mask, 4, oom);
	m_cmp(r, NFT_CMP_NEQ, &zero, 4, oom);
}

static void m_dport(struct nftnl_rule *r, uint8_t proto, uint16_t port, bool *oom)
{
	uint16_t p = htons(port);
	m_meta(r, NFT_META_L4PROTO, oom);
	m_cmp(r, NFT_CMP_EQ, &proto, 1, oom);
	m_payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, oom);
	m_cmp(r, NFT_CMP_EQ, &p, 2, oom);
}

static void m_verdict(struct nftnl_rule *r, int verdict, const char *chain, bool *oom)
{
	struct nftnl_expr *e = nftnl_expr_alloc("immediate");
	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
		nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_VERDICT, (uint32_t)verdict);
		if (chain)
			nftnl_expr_set_str(e, NFTNL_EXPR_IMM_CHAIN, chain);
	}
	expr_add(r, e, oom);
}

static struct nftnl_rule *rule_new(const char *table, const char *chain)
{
	struct nftnl_rule *r = nftnl_rule_alloc();
	if (!r)
		return NULL;
	nftnl_rule_set_u32(r, NFTNL_RULE_FAMILY, NFPROTO_INET);
	nftnl_rule_set_str(r, NFTNL_RULE_TABLE, table);
	nftnl_rule_set_str(r, NFTNL_RULE_CHAIN, chain);
	return r;
}

static void rule_end(struct batch *b, struct nftnl_rule *r, bool oom)
{
	if (!r || oom) {
		b->oom = true;
	} else {
		struct nlmsghdr *nlh = msg_start(b, NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND);
		if (nlh) {
			nftnl_rule_nlmsg_build_payload(nlh, r);
			batch_commit(b, nlh);
		}
	}
	if (r)
		nftnl_rule_free(r);
}


static void sandbox_chain_name(struct in_addr ip, char out[32])
{
	snprintf(out, 32, "sb-%08x", ntohl(ip.s_addr));
}

static void build(struct batch *b, const struct sbx_nft_config *cfg)
{
	const char *t = cfg->table;
	bool oom = false;
	struct nftnl_rule *r;
	static const struct sbx_cidr linklocal = { { 0x0000fea9 }, 16 }; /* 169.254.0.0/16, network order */

	add_table(b, t, false);
	add_table(b, t, true);
	add_table(b, t, false);
	add_chain(b, t, "input", NF_INET_LOCAL_IN, 0, "filter");
	add_chain(b, t, "forward", NF_INET_FORWARD, 0, "filter");
	add_chain(b, t, "postrouting", NF_INET_POST_ROUTING, 100, "nat");
	add_chain(b, t, "egress", -1, 0, NULL);
	add_chain(b, t, "sandboxes", -1, 0, NULL);

	/* Sandboxes' links are the interfaces of the daemon's group (each has
	 * its own link; no bridge ports). */
	const uint32_t g = cfg->group;

	/* input: a sandbox reaches none of the host's addresses, except the
	 * resolvers it was given, and answers to the host's own connections. */
	r = rule_new(t, "input");
	m_group(r, NFT_META_IIFGROUP, NFT_CMP_EQ, g, &oom);
	m_ct_established(r, &oom);
	m_verdict(r, NF_ACCEPT, NULL, &oom);
	rule_end(b, r, oom);
	for (size_t i = 0; i < cfg->n_dns; i++) {
		for (int p = 0; p < 2; p++) {
			r = rule_new(t, "input");
			m_group(r, NFT_META_IIFGROUP, NFT_CMP_EQ, g, &oom);
			m_ip_addr(r, true, NFT_CMP_EQ, (struct sbx_cidr){ cfg->dns[i], 32 }, &oom);
			m_dport(r, p ? IPPROTO_TCP : IPPROTO_UDP, 53, &oom);
			m_verdict(r, NF_ACCEPT, NULL, &oom);
			rule_end(b, r, oom);
		}
	}
	r = rule_new(t, "input");
	m_group(r, NFT_META_IIFGROUP, NFT_CMP_EQ, g, &oom);
	m_verdict(r, NF_DROP, NULL, &oom);
	rule_end(b, r, oom);
	/* The subnet is this daemon's alone: its addresses arriving on any
	 * other link (one taken out of the group) are dropped, not let by. */
	r = rule_new(t, "input");
	m_ifname(r, NFT_META_IIFNAME, NFT_CMP_NEQ, "lo", &oom);
	m_ip_addr(r, false, NFT_CMP_EQ, cfg->subnet, &oom);
	m_verdict(r, NF_DROP, NULL, &oom);
	rule_end(b, r, oom);

	/* forward: nothing enters a sandbox but answers; what leaves one goes
	 * through egress. */
	r = rule_new(t, "forward");
	m_group(r, NFT_META_OIFGROUP, NFT_CMP_EQ, g, &oom);
	m_ct_established(r, &oom);
	m_verdict(r, NF_ACCEPT, NULL, &oom);
	rule_end(b, r, oom);
	r = rule_new(t, "forward");
	m_group(r, NFT_META_OIFGROUP, NFT_CMP_EQ, g, &oom);
	m_verdict(r, NF_DROP, NULL, &oom);
	rule_end(b, r, oom);
	r = rule_new(t, "forward");
	m_group(r, NFT_META_IIFGROUP, NFT_CMP_EQ, g, &oom);
	m_verdict(r, NFT_JUMP, "egress", &oom);
	rule_end(b, r, oom);
	r = rule_new(t, "forward");
	m_group(r, NFT_META_IIFGROUP, NFT_CMP_NEQ, g, &oom);
	m_ip_addr(r, false, NFT_CMP_EQ, cfg->subnet, &oom);
	m_verdict(r, NF_DROP, NULL, &oom);
	rule_end(b, r, oom);

	/* egress */
	uint8_t v4 = NFPROTO_IPV4;
	r = rule_new(t, "egress");
	m_meta(r, NFT_META_NFPROTO, &oom);
	m_cmp(r, NFT_CMP_NEQ, &v4, 1, &oom);
	m_verdict(r, NF_DROP, NULL, &oom);
	rule_end(b, r, oom);
	r = rule_new(t, "egress"); /* forged source addresses */
	m_ip_addr(r, false, NFT_CMP_NEQ, cfg->subnet, &oom);
	m_verdict(r, NF_DROP, NULL, &oom);
	rule_end(b, r, oom);
	r = rule_new(t, "egress"); /* other sandboxes */
	m_ip_addr(r, true, NFT_CMP_EQ, cfg->subnet, &oom);
	m_verdict(r, NF_DROP, NULL, &oom);
	rule_end(b, r, oom);
	r = rule_new(t, "egress");
	m_verdict(r, NFT_JUMP, "sandboxes", &oom);
	rule_end(b, r, oom);
	for (size_t i = 0; i < cfg->n_dns; i++) {
		for (int p = 0; p < 2; p++) {
			r = rule_new(t, "egress");
			m_ip_addr(r, true, NFT_CMP_EQ, (struct sbx_cidr){ cfg->dns[i], 32 }, &oom);
			m_dport(r, p ? IPPROTO_TCP : IPPROTO_UDP, 53, &oom);
			m_verdict(r, NF_ACCEPT, NULL, &oom);
			rule_end(b, r, oom);
		}
	}
	r = rule_new(t, "egress");
	m_ip_addr(r, true, NFT_CMP_EQ, linklocal, &oom);
	m_verdict(r, NF_DROP, NULL, &oom);
	rule_end(b, r, oom);
	for (size_t i = 0; i < cfg->n_forbidden; i++) {
		r = rule_new(t, "egress");
		m_ip_addr(r, true, NFT_CMP_EQ, cfg->forbidden[i], &oom);
		m_verdict(r, NF_DROP, NULL, &oom);
		rule_end(b, r, oom);
	}

	/* per sandbox: allow_out, then deny_out */
	for (size_t i = 0; i < cfg->n_sandboxes; i++) {
		const struct sbx_nft_sandbox *s = &cfg->sandboxes[i];
		if (!s->n_allow && !s->n_deny)
			continue;
		char chain[32];
		sandbox_chain_name(s->ip, chain);
		add_chain(b, t, chain, -1, 0, NULL);
		r = rule_new(t, "sandboxes");
		m_ip_addr(r, false, NFT_CMP_EQ, (struct sbx_cidr){ s->ip, 32 }, &oom);
		m_verdict(r, NFT_JUMP, chain, &oom);
		rule_end(b, r, oom);
		for (size_t k = 0; k < s->n_allow + s->n_deny; k++) {
			bool allow = k < s->n_allow;
			r = rule_new(t, chain);
			m_ip_addr(r, true, NFT_CMP_EQ, allow ? s->allow[k] : s->deny[k - s->n_allow], &oom);
			m_verdict(r, allow ? NF_ACCEPT : NF_DROP, NULL, &oom);
			rule_end(b, r, oom);
		}
	}

	/* NAT: sandboxes leave with the host's address. */
	r = rule_new(t, "postrouting");
	m_ip_addr(r, false, NFT_CMP_EQ, cfg->subnet, &oom);
	m_group(r, NFT_META_OIFGROUP, NFT_CMP_NEQ, g, &oom);
	expr_add(r, nftnl_expr_alloc("masq"), &oom);
	rule_end(b, r, oom);
}

/* Sends the batch and collects one ACK per message; the first error wins. */
static int batch_send(struct batch *b, const char *what, sbx_error **err)
{
	struct mnl_socket *nl = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC);
	if (!nl)
		return sbx_error_errno(err, errno, "%s: open nfnetlink socket", what);
	int r = -1;
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		sbx_error_errno(err, errno, "%s: bind nfnetlink socket", what);
		goto out;
	}
	int sndbuf = (int)b->buf.len + 65536;
	setsockopt(mnl_socket_get_fd(nl), SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof(sndbuf));
	/* Every message is answered: room for all the answers, or a large
	 * batch fails with ENOBUFS once the default buffer is full. An
	 * answer takes well under 2 KiB of buffer (a successful one carries
	 * only the header of what it answers). */
	int rcvbuf = (int)(b->acks * 2048) + 65536;
	if (rcvbuf > 212992)
		setsockopt(mnl_socket_get_fd(nl), SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf));
	if (mnl_socket_sendto(nl, b->buf.data, b->buf.len) < 0) {
		sbx_error_errno(err, errno, "%s: send to nftables", what);
		goto out;
	}
	size_t seen = 0;
	int first_err = 0;
	char buf[NL_BUF];
	while (seen < b->acks) {
		struct pollfd pfd = { .fd = mnl_socket_get_fd(nl), .events = POLLIN };
		/* After an error the kernel aborts the batch and may not answer
		 * every message; a short quiet period ends the wait then. */
		int pr = poll(&pfd, 1, first_err ? 100 : 5000);
		if (pr <= 0)
			break;
		ssize_t n = mnl_socket_recvfrom(nl, buf, sizeof(buf));
		if (n < 0) {
			if (!first_err)
				first_err = errno;
			break;
		}
		const struct nlmsghdr *nlh = (const struct nlmsghdr *)buf;
		int len = (int)n;
		while (mnl_nlmsg_ok(nlh, len)) {
			if (nlh->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);
				seen++;
				if (e->error && !first_err)
					first_err = -e->error;
			}
			nlh = mnl_nlmsg_next(nlh, &len);
		}
	}
	if (first_err) {
		sbx_error_errno(err, first_err, "%s", what);
		goto out;
	}
	if (seen < b->acks) {
		sbx_error_errno(err, ETIMEDOUT, "%s: nftables did not answer", what);
		goto out;
	}
	r = 0;
out:
	mnl_socket_close(nl);
	return r;
}

static void batch_open(struct batch *b)
{
	b->seq = (uint32_t)time(NULL);
	char *p = batch_slot(b);
	if (p) {
		nftnl_batch_begin(p, b->seq++);
		b->buf.len += ((struct nlmsghdr *)p)->nlmsg_len;
	}
}

static int batch_close_send(struct batch *b, const char *what, sbx_error **err)
{
	char *p = batch_slot(b);
	if (p) {
		nftnl_batch_end(p, b->seq++);
		b->buf.len += ((struct nlmsghdr *)p)->nlmsg_len;
	}
	if (b->oom)
		return sbx_error_errno(err, ENOMEM, "%s", what);
	return batch_send(b, what, err);
}

static int run(const char *table, const struct sbx_nft_config *cfg, sbx_error **err)
{
	struct batch b = { 0 };
	batch_open(&b);
	if (cfg) {
		build(&b, cfg);
	} else {
		/* "add" first makes the delete succeed when the table is absent. */
		struct sbx_nft_config none = { .table = table };
		add_table(&b, none.table, false);
		add_table(&b, none.table, true);
	}
	int r = batch_close_send(&b, cfg ? "write nftables table" : "remove nftables table", err);
	sbx_buf_free(&b.buf);
	if (r < 0)
		return sbx_error_prefix(err, "inet %s", table);
	return 0;
}

int sbx_nft_apply(const struct sbx_nft_config *cfg, sbx_error **err)
{
	return run(cfg->table, cfg, err);
}

int sbx_nft_remove(const char *table, sbx_error **err)
{
	return run(table, NULL, err);
}

/* ---- batches and dumps for the other lib modules ---- */

struct sbx_nft_batch {
	struct batch b;
};

struct sbx_nft_batch *sbx_nft_batch_new(void)
{
	struct sbx_nft_batch *nb = calloc(1, sizeof(*nb));
	if (nb)
		batch_open(&nb->b);
	return nb;
}

struct nlmsghdr *sbx_nft_batch_msg(struct sbx_nft_batch *nb, uint16_t type, uint16_t family, uint16_t flags)
{
	return msg_start_family(&nb->b, type, family, flags);
}

void sbx_nft_batch_add(struct sbx_nft_batch *nb, struct nlmsghdr *nlh)
{
	if (nlh)
		batch_commit(&nb->b, nlh);
}

void sbx_nft_batch_oom(struct sbx_nft_batch *nb)
{
	nb->b.oom = true;
}

int sbx_nft_batch_run(struct sbx_nft_batch *nb, const char *what, sbx_error **err)
{
	return batch_close_send(&nb->b, what, err);
}

void sbx_nft_batch_free(struct sbx_nft_batch *nb)
{
	if (!nb)
		return;
	sbx_buf_free(&nb->b.buf);
	free(nb);
}

/* One request and its replies, up to NLMSG_DONE or the ack. */
static int request(uint16_t type, uint16_t family, uint16_t flags, void (*build_cb)(struct nlmsghdr *nlh, void *data),
		   void *build_data, int (*fn)(const struct nlmsghdr *nlh, void *data), void *data, sbx_error **err)
{
	struct mnl_socket *nl = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC);
	if (!nl)
		return sbx_error_errno(err, errno, "open nfnetlink socket");
	int r = -1;
	char *buf = malloc(NL_BUF);
	if (!buf) {
		sbx_error_errno(err, ENOMEM, "read nftables");
		goto out;
	}
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		sbx_error_errno(err, errno, "bind nfnetlink socket");
		goto out;
	}
	uint32_t seq = (uint32_t)time(NULL), portid = mnl_socket_get_portid(nl);
	struct nlmsghdr *nlh = nftnl_nlmsg_build_hdr(buf, type, family, flags, seq);
	if (build_cb)
		build_cb(nlh, build_data);
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) {
		sbx_error_errno(err, errno, "read nftables");
		goto out;
	}
	for (;;) {
		ssize_t n = mnl_socket_recvfrom(nl, buf, NL_BUF);
		if (n < 0) {
			sbx_error_errno(err, errno, "read nftables");
			goto out;
		}
		int cr = mnl_cb_run(buf, (size_t)n, seq, portid, fn, data);
		if (cr < 0) {
			int e = errno;
			/* A table or set gone between two dumps is not an error. */
			if (e == ENOENT)
				break;
			/* NLM_F_DUMP_INTR: the ruleset changed while it was read,
			 * so what was read may be torn. The caller reads again. */
			if (e == EINTR)
				sbx_error_errno(err, e, "read nftables: the ruleset changed during the read");
			else
				sbx_error_errno(err, e, "read nftables");
			goto out;
		}
		if (cr == MNL_CB_STOP)
			break;
	}
	r = 0;
out:
	free(buf);
	mnl_socket_close(nl);
	return r;
}

int sbx_nft_dump(uint16_t type, uint16_t family, void (*build_cb)(struct nlmsghdr *nlh, void *data), void *build_data,
		 int (*fn)(const struct nlmsghdr *nlh, void *data), void *data, sbx_error **err)
{
	return request(type, family, NLM_F_DUMP, build_cb, build_data, fn, data, err);
}

struct gen_read {
	uint32_t id;
	bool seen;
};

static int gen_attr_cb(const struct nlattr *attr, void *data)
{
	struct gen_read *g = data;
	if (mnl_attr_get_type(attr) == NFTA_GEN_ID && mnl_attr_validate(attr, MNL_TYPE_U32) == 0) {
		g->id = ntohl(mnl_attr_get_u32(attr));
		g->seen = true;
	}
	return MNL_CB_OK;
}

static int gen_cb(const struct nlmsghdr *nlh, void *data)
{
	mnl_attr_parse(nlh, sizeof(struct nfgenmsg), gen_attr_cb, data);
	return MNL_CB_OK;
}

int sbx_nft_genid(uint32_t *gen, sbx_error **err)
{
	struct gen_read g = { 0, false };
	if (request(NFT_MSG_GETGEN, NFPROTO_UNSPEC, NLM_F_ACK, NULL, NULL, gen_cb, &g, err) < 0)
		return -1;
	if (!g.seen)
		return sbx_error_errno(err, EPROTO, "read the nftables generation");
	*gen = g.id;
	return 0;
}

/* Reading other tables' forward chains and judging sandbox traffic with
 * a small evaluator of nftables expressions. The evaluator is
 * three-valued: a match it cannot decide (an expression it does not know,
 * a set of concatenations, a rate limit) makes its rule "maybe"; a rule
 * that only maybe matches is passed over and the judgement is marked
 * uncertain. Registers, payloads and conntrack values follow the kernel's
 * layouts (nf_tables_core, nft_meta, nft_ct, nft_compat). */
#include "config.h"
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/udata.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/x_tables.h>
#include <linux/netfilter/xt_conntrack.h>
#include <linux/netfilter/xt_devgroup.h>
#include <linux/netfilter/xt_state.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "firewalls.h"
#include "nft.h"
#include "syscalls.h"
#include "util.h"

/* Room for one read of a dump or of announcements. */
#define NL_BUF 65536

/* A packet's conntrack state bits as nft_ct and xt_conntrack see them. */
#define CT_BIT(s) (1U << ((s) + 1))

/* ---- the ruleset as read ---- */

struct fw_elem {
	uint8_t key[16];
	uint32_t key_len;
	bool end;    /* the exclusive end of an interval */
	bool has_verdict;
	int verdict;
	char chain[64];
};

struct fw_set {
	uint32_t family;
	char table[64], name[64];
	uint32_t flags, key_len, data_type;
	bool loaded, failed;
	struct fw_elem *elems;
	size_t n;
};

struct fw_chain {
	uint32_t family;
	char table[64], name[64];
	bool base;
	uint32_t hook, policy;
	char type[16];
	struct nftnl_rule **rules;
	size_t n_rules, cap;
};

struct fw_ruleset {
	struct fw_chain *chains;
	size_t n_chains, cap_chains;
	struct fw_set *sets;
	size_t n_sets, cap_sets;
	bool oom;
};

static void ruleset_free(struct fw_ruleset *rs)
{
	for (size_t i = 0; i < rs->n_chains; i++) {
		for (size_t k = 0; k < rs->chains[i].n_rules; k++)
			nftnl_rule_free(rs->chains[i].rules[k]);
		free(rs->chains[i].rules);
	}
	for (size_t i = 0; i < rs->n_sets; i++)
		free(rs->sets[i].elems);
	free(rs->chains);
	free(rs->sets);
	memset(rs, 0, sizeof(*rs));
}

static bool family_wanted(uint32_t f)
{
	return f == NFPROTO_IPV4 || f == NFPROTO_INET;
}

static const char *family_name(uint32_t f)
{
	return f == NFPROTO_IPV4 ? "ip" : f == NFPROTO_INET ? "inet" : "?";
}

static struct fw_chain *chain_find(struct fw_ruleset *rs, uint32_t family, const char *table, const char *name)
{
	for (size_t i = 0; i < rs->n_chains; i++) {
		struct fw_chain *c = &rs->chains[i];
		if (c->family == family && !strcmp(c->table, table) && !strcmp(c->name, name))
			return c;
	}
	return NULL;
}

static int chain_cb(const struct nlmsghdr *nlh, void *data)
{
	struct fw_ruleset *rs = data;
	struct nftnl_chain *c = nftnl_chain_alloc();
	if (!c) {
		rs->oom = true;
		return MNL_CB_OK;
	}
	if (nftnl_chain_nlmsg_parse(nlh, c) < 0 || !family_wanted(nftnl_chain_get_u32(c, NFTNL_CHAIN_FAMILY)))
		goto out;
	if (rs->n_chains == rs->cap_chains) {
		size_t cap = rs->cap_chains ? rs->cap_chains * 2 : 32;
		struct fw_chain *grown = realloc(rs->chains, cap * sizeof(*grown));
		if (!grown) {
			rs->oom = true;
			goto out;
		}
		rs->chains = grown;
		rs->cap_chains = cap;
	}
	struct fw_chain *fc = &rs->chains[rs->n_chains++];
	memset(fc, 0, sizeof(*fc));
	fc->family = nftnl_chain_get_u32(c, NFTNL_CHAIN_FAMILY);
	snprintf(fc->table, sizeof(fc->table), "%s", nftnl_chain_get_str(c, NFTNL_CHAIN_TABLE));
	snprintf(fc->name, sizeof(fc->name), "%s", nftnl_chain_get_str(c, NFTNL_CHAIN_NAME));
	if (nftnl_chain_is_set(c, NFTNL_CHAIN_HOOKNUM)) {
		fc->base = true;
		fc->hook = nftnl_chain_get_u32(c, NFTNL_CHAIN_HOOKNUM);
		fc->policy = nftnl_chain_is_set(c, NFTNL_CHAIN_POLICY) ? nftnl_chain_get_u32(c, NFTNL_CHAIN_POLICY) :
									  NF_ACCEPT;
		if (nftnl_chain_is_set(c, NFTNL_CHAIN_TYPE))
			snprintf(fc->type, sizeof(fc->type), "%s", nftnl_chain_get_str(c, NFTNL_CHAIN_TYPE));
	}
out:
	nftnl_chain_free(c);
	return MNL_CB_OK;
}

static int rule_cb(const struct nlmsghdr *nlh, void *data)
{
	struct fw_ruleset *rs = data;
	struct nftnl_rule *r = nftnl_rule_alloc();
	if (!r) {
		rs->oom = true;
		return MNL_CB_OK;
	}
	struct fw_chain *c = NULL;
	if (nftnl_rule_nlmsg_parse(nlh, r) == 0)
		c = chain_find(rs, nftnl_rule_get_u32(r, NFTNL_RULE_FAMILY), nftnl_rule_get_str(r, NFTNL_RULE_TABLE),
			       nftnl_rule_get_str(r, NFTNL_RULE_CHAIN));
	if (!c) {
		nftnl_rule_free(r);
		return MNL_CB_OK;
	}
	if (c->n_rules == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 16;
		struct nftnl_rule **grown = realloc(c->rules, cap * sizeof(*grown));
		if (!grown) {
			rs->oom = true;
			nftnl_rule_free(r);
			return MNL_CB_OK;
		}
		c->rules = grown;
		c->cap = cap;
	}
	c->rules[c->n_rules++] = r;
	return MNL_CB_OK;
}

static int set_cb(const struct nlmsghdr *nlh, void *data)
{
	struct fw_ruleset *rs = data;
	struct nftnl_set *s = nftnl_set_alloc();
	if (!s) {
		rs->oom = true;
		return MNL_CB_OK;
	}
	if (nftnl_set_nlmsg_parse(nlh, s) < 0 || !family_wanted(nftnl_set_get_u32(s, NFTNL_SET_FAMILY)))
		goto out;
	if (rs->n_sets == rs->cap_sets) {
		size_t cap = rs->cap_sets ? rs->cap_sets * 2 : 16;
		struct fw_set *grown = realloc(rs->sets, cap * sizeof(*grown));
		if (!grown) {
			rs->oom = true;
			goto out;
		}
		rs->sets = grown;
		rs->cap_sets = cap;
	}
	struct fw_set *fs = &rs->sets[rs->n_sets++];
	memset(fs, 0, sizeof(*fs));
	fs->family = nftnl_set_get_u32(s, NFTNL_SET_FAMILY);
	snprintf(fs->table, sizeof(fs->table), "%s", nftnl_set_get_str(s, NFTNL_SET_TABLE));
	snprintf(fs->name, sizeof(fs->name), "%s", nftnl_set_get_str(s, NFTNL_SET_NAME));
	fs->flags = nftnl_set_is_set(s, NFTNL_SET_FLAGS) ? nftnl_set_get_u32(s, NFTNL_SET_FLAGS) : 0;
	fs->key_len = nftnl_set_get_u32(s, NFTNL_SET_KEY_LEN);
	fs->data_type = nftnl_set_is_set(s, NFTNL_SET_DATA_TYPE) ? nftnl_set_get_u32(s, NFTNL_SET_DATA_TYPE) : 0;
out:
	nftnl_set_free(s);
	return MNL_CB_OK;
}

struct elem_load {
	struct fw_set *set;
	bool oom;
};

static int elem_cb(const struct nlmsghdr *nlh, void *data)
{
	struct elem_load *el = data;
	struct nftnl_set *s = nftnl_set_alloc();
	if (!s) {
		el->oom = true;
		return MNL_CB_OK;
	}
	if (nftnl_set_elems_nlmsg_parse(nlh, s) < 0) {
		nftnl_set_free(s);
		return MNL_CB_OK;
	}
	struct nftnl_set_elems_iter *it = nftnl_set_elems_iter_create(s);
	for (struct nftnl_set_elem *e = it ? nftnl_set_elems_iter_next(it) : NULL; e; e = nftnl_set_elems_iter_next(it)) {
		struct fw_set *fs = el->set;
		struct fw_elem *grown = realloc(fs->elems, (fs->n + 1) * sizeof(*grown));
		if (!grown) {
			el->oom = true;
			break;
		}
		fs->elems = grown;
		struct fw_elem *fe = &fs->elems[fs->n++];
		memset(fe, 0, sizeof(*fe));
		uint32_t len = 0;
		const void *key = nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY, &len);
		if (key && len <= sizeof(fe->key)) {
			memcpy(fe->key, key, len);
			fe->key_len = len;
		}
		if (nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_FLAGS))
			fe->end = nftnl_set_elem_get_u32(e, NFTNL_SET_ELEM_FLAGS) & NFT_SET_ELEM_INTERVAL_END;
		if (nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_VERDICT)) {
			fe->has_verdict = true;
			fe->verdict = (int)nftnl_set_elem_get_u32(e, NFTNL_SET_ELEM_VERDICT);
			if (nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_CHAIN))
				snprintf(fe->chain, sizeof(fe->chain), "%s", nftnl_set_elem_get_str(e, NFTNL_SET_ELEM_CHAIN));
		}
	}
	if (it)
		nftnl_set_elems_iter_destroy(it);
	nftnl_set_free(s);
	return MNL_CB_OK;
}

struct table_filter {
	uint32_t family;
	const char *table, *set;
	int what; /* 0 rules, 1 sets, 2 elements */
};

static void table_filter_build(struct nlmsghdr *nlh, void *data)
{
	struct table_filter *tf = data;
	if (tf->what == 0) {
		struct nftnl_rule *r = nftnl_rule_alloc();
		if (!r)
			return;
		nftnl_rule_set_str(r, NFTNL_RULE_TABLE, tf->table);
		nftnl_rule_nlmsg_build_payload(nlh, r);
		nftnl_rule_free(r);
	} else {
		struct nftnl_set *s = nftnl_set_alloc();
		if (!s)
			return;
		nftnl_set_set_str(s, NFTNL_SET_TABLE, tf->table);
		if (tf->what == 2) {
			nftnl_set_set_str(s, NFTNL_SET_NAME, tf->set);
			nftnl_set_elems_nlmsg_build_payload(nlh, s);
		} else {
			nftnl_set_nlmsg_build_payload(nlh, s);
		}
		nftnl_set_free(s);
	}
}

/* How often a read torn by changes to the ruleset is made again. */
#define READ_TRIES 16

static bool torn(const sbx_error *e)
{
	return e && e->errnum == EINTR;
}

static struct fw_set *set_find(struct fw_ruleset *rs, uint32_t family, const char *table, const char *name)
{
	for (size_t i = 0; i < rs->n_sets; i++) {
		struct fw_set *s = &rs->sets[i];
		if (s->family == family && !strcmp(s->table, table) && !strcmp(s->name, name)) {
			if (!s->loaded && !s->failed) {
				struct table_filter tf = { family, table, name, 2 };
				struct elem_load el = { s, false };
				for (int tries = 1;; tries++) {
					sbx_error *e = NULL;
					s->loaded = sbx_nft_dump(NFT_MSG_GETSETELEM, (uint16_t)family, table_filter_build,
								 &tf, elem_cb, &el, &e) == 0 &&
						    !el.oom;
					bool again = !s->loaded && torn(e) && tries < READ_TRIES;
					sbx_error_free(e);
					if (!again)
						break;
					free(s->elems); /* torn: read them all again */
					s->elems = NULL;
					s->n = 0;
				}
				s->failed = !s->loaded;
			}
			return s->loaded ? s : NULL;
		}
	}
	return NULL;
}

static bool judged(const struct fw_chain *c, const char *own_table)
{
	return c->base && c->hook == NF_INET_FORWARD && !strcmp(c->type, "filter") &&
	       !(own_table && !strcmp(c->table, own_table));
}

/* Chains of every table, then the rules and sets of the tables that have
 * a forward chain to judge. */
static int ruleset_load_once(struct fw_ruleset *rs, const char *own_table, sbx_error **err)
{
	memset(rs, 0, sizeof(*rs));
	if (sbx_nft_dump(NFT_MSG_GETCHAIN, NFPROTO_UNSPEC, NULL, NULL, chain_cb, rs, err) < 0) {
		ruleset_free(rs);
		return -1;
	}
	for (size_t i = 0; i < rs->n_chains && !rs->oom; i++) {
		const struct fw_chain *c = &rs->chains[i];
		bool seen = false;
		for (size_t k = 0; k < i; k++)
			seen |= rs->chains[k].family == c->family && !strcmp(rs->chains[k].table, c->table) &&
				judged(&rs->chains[k], own_table);
		bool wanted = judged(c, own_table) ||
			      (c->family == NFPROTO_IPV4 && !strcmp(c->table, "filter") && !strcmp(c->name, "FORWARD"));
		if (!wanted || seen)
			continue;
		struct table_filter rf = { c->family, c->table, NULL, 0 }, sf = { c->family, c->table, NULL, 1 };
		if (sbx_nft_dump(NFT_MSG_GETRULE, (uint16_t)c->family, table_filter_build, &rf, rule_cb, rs, err) < 0 ||
		    sbx_nft_dump(NFT_MSG_GETSET, (uint16_t)c->family, table_filter_build, &sf, set_cb, rs, err) < 0) {
			ruleset_free(rs);
			return -1;
		}
	}
	if (rs->oom) {
		ruleset_free(rs);
		return sbx_error_errno(err, ENOMEM, "read nftables");
	}
	return 0;
}

/* The several dumps of one load read one ruleset when its generation is
 * the same before and after them; a load torn by a change (another
 * firewall writing its rules) is made again. */
static int ruleset_load(struct fw_ruleset *rs, const char *own_table, sbx_error **err)
{
	for (int tries = 1;; tries++) {
		sbx_error *e = NULL;
		uint32_t gen0 = 0, gen1 = 0;
		bool have_gen = sbx_nft_genid(&gen0, NULL) == 0;
		int r = ruleset_load_once(rs, own_table, &e);
		if (r == 0 && (!have_gen || (sbx_nft_genid(&gen1, NULL) == 0 && gen0 == gen1)))
			return 0;
		if (tries < READ_TRIES && (r == 0 || torn(e))) {
			if (r == 0)
				ruleset_free(rs);
			sbx_error_free(e);
			continue;
		}
		if (r == 0)
			return 0; /* still changing: as read, each dump whole */
		if (err && !*err)
			*err = e;
		else
			sbx_error_free(e);
		return -1;
	}
}

/* ---- the sample packets ---- */

struct fw_pkt {
	char iifname[16], oifname[16];
	uint32_t iif, oif, iifgroup, oifgroup;
	uint8_t ip[20], l4[20];
	uint32_t ct_state, ct_status;
	uint8_t ct_dir;
};

/* An address on the internet (TEST-NET-3, which no rule should name). */
#define SAMPLE_REMOTE "203.0.113.1"
/* No link has this index. */
#define SAMPLE_NO_LINK 0x7fffffff

static void sample(const struct sbx_fw_net *net, bool back, struct fw_pkt *p)
{
	memset(p, 0, sizeof(*p));
	char sbx_link[16];
	snprintf(sbx_link, sizeof(sbx_link), "%s000000000000", net->link_prefix ? net->link_prefix : "sv");
	const char *up = net->uplink && *net->uplink ? net->uplink : "eth0";
	struct in_addr sbx = { htonl(ntohl(net->subnet.net.s_addr) + 2) }, remote;
	inet_pton(AF_INET, SAMPLE_REMOTE, &remote);
	uint32_t up_index = net->uplink_index ? (uint32_t)net->uplink_index : SAMPLE_NO_LINK - 1;
	snprintf(back ? p->oifname : p->iifname, 16, "%s", sbx_link);
	snprintf(back ? p->iifname : p->oifname, 16, "%s", up);
	p->iif = back ? up_index : SAMPLE_NO_LINK;
	p->oif = back ? SAMPLE_NO_LINK : up_index;
	p->iifgroup = back ? net->uplink_group : net->group;
	p->oifgroup = back ? net->group : net->uplink_group;
	/* IPv4 header and TCP, port 443 */
	p->ip[0] = 0x45;
	p->ip[8] = 64;
	p->ip[9] = IPPROTO_TCP;
	memcpy(p->ip + 12, back ? &remote : &sbx, 4);
	memcpy(p->ip + 16, back ? &sbx : &remote, 4);
	uint16_t local = htons(40000), https = htons(443);
	memcpy(p->l4, back ? &https : &local, 2);
	memcpy(p->l4 + 2, back ? &local : &https, 2);
	p->l4[12] = 0x50;
	p->l4[13] = back ? 0x10 : 0x02; /* ACK : SYN */
	p->ct_state = back ? CT_BIT(IP_CT_ESTABLISHED) : CT_BIT(IP_CT_NEW);
	p->ct_status = back ? IPS_CONFIRMED | IPS_SEEN_REPLY | IPS_ASSURED | IPS_SRC_NAT | IPS_SRC_NAT_DONE : 0;
	p->ct_dir = back ? IP_CT_DIR_REPLY : IP_CT_DIR_ORIGINAL;
}

/* ---- evaluation ---- */

#define REG_BYTES 80

struct regs {
	uint8_t v[REG_BYTES];
	bool unknown[REG_BYTES];
};

/* Byte offset of a register: the four 16-byte ones and the sixteen 32-bit
 * ones overlay the same storage. */
static int reg_off(uint32_t reg, uint32_t len)
{
	int off;
	if (reg >= NFT_REG_1 && reg <= NFT_REG_4)
		off = (int)(reg - NFT_REG_1) * 16;
	else if (reg >= NFT_REG32_00 && reg <= NFT_REG32_15)
		off = (int)(reg - NFT_REG32_00) * 4;
	else
		return -1;
	return off + (int)len <= 64 ? off : -1;
}

static void reg_store(struct regs *rg, uint32_t reg, const void *data, uint32_t len, bool unknown)
{
	int off = reg_off(reg, len);
	if (off < 0)
		return;
	if (data)
		memcpy(rg->v + off, data, len);
	else
		memset(rg->v + off, 0, len);
	for (uint32_t i = 0; i < len; i++)
		rg->unknown[off + i] = unknown;
}

/* -1: the register holds bytes not known */
static int reg_load(const struct regs *rg, uint32_t reg, uint32_t len, const uint8_t **out)
{
	int off = reg_off(reg, len);
	if (off < 0)
		return -1;
	for (uint32_t i = 0; i < len; i++)
		if (rg->unknown[off + i])
			return -1;
	*out = rg->v + off;
	return 0;
}

enum tri { NO, MAYBE, YES };

struct rule_result {
	enum tri match;
	bool has_verdict;
	bool verdict_unknown; /* a target or queue sandboxd does not follow */
	int verdict;
	char chain[64];
	const char *what; /* a word for the report ("reject") */
};

struct evalctx {
	struct fw_ruleset *rs;
	uint32_t family;
	const char *table;
	const struct fw_pkt *p;
};

static void meta_load(const struct fw_pkt *p, uint32_t key, struct regs *rg, uint32_t dreg, enum tri *m)
{
	uint32_t u32;
	uint16_t u16;
	uint8_t u8;
	switch (key) {
	case NFT_META_IIFNAME:
		reg_store(rg, dreg, p->iifname, 16, false);
		return;
	case NFT_META_OIFNAME:
		reg_store(rg, dreg, p->oifname, 16, false);
		return;
	case NFT_META_IIF:
		reg_store(rg, dreg, &p->iif, 4, false);
		return;
	case NFT_META_OIF:
		reg_store(rg, dreg, &p->oif, 4, false);
		return;
	case NFT_META_IIFGROUP:
		reg_store(rg, dreg, &p->iifgroup, 4, false);
		return;
	case NFT_META_OIFGROUP:
		reg_store(rg, dreg, &p->oifgroup, 4, false);
		return;
	case NFT_META_NFPROTO:
		u8 = NFPROTO_IPV4;
		reg_store(rg, dreg, &u8, 1, false);
		return;
	case NFT_META_L4PROTO:
		reg_store(rg, dreg, &p->ip[9], 1, false);
		return;
	case NFT_META_PROTOCOL:
		u16 = htons(0x0800);
		reg_store(rg, dreg, &u16, 2, false);
		return;
	case NFT_META_MARK:
	case NFT_META_SECMARK:
		u32 = 0;
		reg_store(rg, dreg, &u32, 4, false);
		return;
	case NFT_META_IIFTYPE:
	case NFT_META_OIFTYPE:
		u16 = 1; /* ARPHRD_ETHER */
		reg_store(rg, dreg, &u16, 2, false);
		return;
	case NFT_META_PKTTYPE:
		u8 = 0; /* PACKET_HOST */
		reg_store(rg, dreg, &u8, 1, false);
		return;
	default:
		reg_store(rg, dreg, NULL, 16, true);
		*m = *m == NO ? NO : MAYBE;
		return;
	}
}

static void ct_load(const struct fw_pkt *p, uint32_t key, struct regs *rg, uint32_t dreg, enum tri *m)
{
	uint32_t u32;
	uint8_t u8;
	switch (key) {
	case NFT_CT_STATE:
		reg_store(rg, dreg, &p->ct_state, 4, false);
		return;
	case NFT_CT_STATUS:
		reg_store(rg, dreg, &p->ct_status, 4, false);
		return;
	case NFT_CT_DIRECTION:
		reg_store(rg, dreg, &p->ct_dir, 1, false);
		return;
	case NFT_CT_MARK:
		u32 = 0;
		reg_store(rg, dreg, &u32, 4, false);
		return;
	case NFT_CT_L3PROTOCOL:
		u8 = NFPROTO_IPV4;
		reg_store(rg, dreg, &u8, 1, false);
		return;
	case NFT_CT_PROTOCOL:
		reg_store(rg, dreg, &p->ip[9], 1, false);
		return;
	default:
		reg_store(rg, dreg, NULL, 16, true);
		*m = *m == NO ? NO : MAYBE;
		return;
	}
}

static bool cmp_holds(uint32_t op, int c)
{
	switch (op) {
	case NFT_CMP_EQ:
		return c == 0;
	case NFT_CMP_NEQ:
		return c != 0;
	case NFT_CMP_LT:
		return c < 0;
	case NFT_CMP_LTE:
		return c <= 0;
	case NFT_CMP_GT:
		return c > 0;
	case NFT_CMP_GTE:
		return c >= 0;
	}
	return false;
}

static void and_tri(enum tri *m, enum tri v)
{
	if (*m == NO || v == NO)
		*m = NO;
	else if (v == MAYBE)
		*m = MAYBE;
}

/* Set membership of a key (and the element, for maps). */
static enum tri set_member(struct fw_set *s, const uint8_t *key, uint32_t len, const struct fw_elem **hit)
{
	*hit = NULL;
	if (s->flags & NFT_SET_CONCAT)
		return MAYBE;
	if (!(s->flags & NFT_SET_INTERVAL)) {
		for (size_t i = 0; i < s->n; i++) {
			if (s->elems[i].key_len == len && !memcmp(s->elems[i].key, key, len)) {
				*hit = &s->elems[i];
				return YES;
			}
		}
		return NO;
	}
	/* Intervals: each start (not an end) up to the least end above it. */
	for (size_t i = 0; i < s->n; i++) {
		const struct fw_elem *st = &s->elems[i];
		if (st->end || st->key_len != len || memcmp(st->key, key, len) > 0)
			continue;
		const struct fw_elem *best = NULL;
		for (size_t k = 0; k < s->n; k++) {
			const struct fw_elem *e = &s->elems[k];
			if (!e->end || e->key_len != len || memcmp(e->key, st->key, len) <= 0)
				continue;
			if (!best || memcmp(e->key, best->key, len) < 0)
				best = e;
		}
		/* No end: up to the largest key. */
		if (!best || memcmp(key, best->key, len) < 0) {
			*hit = st;
			return YES;
		}
	}
	return NO;
}

static const struct {
	const char *name;
} continue_targets[] = { { "LOG" },	 { "NFLOG" },	 { "TRACE" }, { "MARK" }, { "CONNMARK" }, { "CT" },
			 { "TCPMSS" }, { "CLASSIFY" }, { "DSCP" },  { "TOS" },  { "AUDIT" },    { "CHECKSUM" } };

static enum tri xt_match(const struct fw_pkt *p, const char *name, uint32_t rev, const void *info, uint32_t len)
{
	if (!strcmp(name, "comment"))
		return YES;
	if (!strcmp(name, "state") && len >= sizeof(struct xt_state_info)) {
		const struct xt_state_info *si = info;
		return (si->statemask & p->ct_state) ? YES : NO;
	}
	if (!strcmp(name, "conntrack") && rev >= 1 && rev <= 3) {
		/* The first fields are the same in revisions 1 to 3, up to
		 * the state mask; revision 1 has u8 flags. */
		uint16_t flags, invert, state_mask;
		if (rev == 1) {
			const struct xt_conntrack_mtinfo1 *ci = info;
			if (len < sizeof(*ci))
				return MAYBE;
			flags = ci->match_flags;
			invert = ci->invert_flags;
			state_mask = ci->state_mask;
		} else if (rev == 2) {
			const struct xt_conntrack_mtinfo2 *ci = info;
			if (len < sizeof(*ci))
				return MAYBE;
			flags = ci->match_flags;
			invert = ci->invert_flags;
			state_mask = ci->state_mask;
		} else {
			const struct xt_conntrack_mtinfo3 *ci = info;
			if (len < sizeof(*ci))
				return MAYBE;
			flags = ci->match_flags;
			invert = ci->invert_flags;
			state_mask = ci->state_mask;
		}
		if (flags & ~(uint16_t)XT_CONNTRACK_STATE)
			return MAYBE;
		if (!(flags & XT_CONNTRACK_STATE))
			return YES;
		bool in = (state_mask & p->ct_state) != 0;
		if (invert & XT_CONNTRACK_STATE)
			in = !in;
		return in ? YES : NO;
	}
	if (!strcmp(name, "devgroup") && len >= sizeof(struct xt_devgroup_info)) {
		const struct xt_devgroup_info *di = info;
		enum tri m = YES;
		if (di->flags & XT_DEVGROUP_MATCH_SRC) {
			bool eq = (p->iifgroup & di->src_mask) == di->src_group;
			and_tri(&m, (eq ^ !!(di->flags & XT_DEVGROUP_INVERT_SRC)) ? YES : NO);
		}
		if (di->flags & XT_DEVGROUP_MATCH_DST) {
			bool eq = (p->oifgroup & di->dst_mask) == di->dst_group;
			and_tri(&m, (eq ^ !!(di->flags & XT_DEVGROUP_INVERT_DST)) ? YES : NO);
		}
		return m;
	}
	return MAYBE;
}

static void eval_rule(struct evalctx *cx, const struct nftnl_rule *r, struct rule_result *res)
{
	memset(res, 0, sizeof(*res));
	res->match = YES;
	struct regs rg;
	memset(&rg, 0, sizeof(rg));
	memset(rg.unknown, 1, sizeof(rg.unknown));
	const struct fw_pkt *p = cx->p;
	struct nftnl_expr_iter *it = nftnl_expr_iter_create(r);
	if (!it) {
		res->match = MAYBE;
		return;
	}
	for (struct nftnl_expr *e = nftnl_expr_iter_next(it); e && res->match != NO && !res->has_verdict;
	     e = nftnl_expr_iter_next(it)) {
		const char *name = nftnl_expr_get_str(e, NFTNL_EXPR_NAME);
		uint32_t len = 0;
		if (!strcmp(name, "meta")) {
			if (nftnl_expr_is_set(e, NFTNL_EXPR_META_SREG))
				continue; /* meta set: a statement */
			meta_load(p, nftnl_expr_get_u32(e, NFTNL_EXPR_META_KEY), &rg,
				  nftnl_expr_get_u32(e, NFTNL_EXPR_META_DREG), &res->match);
		} else if (!strcmp(name, "payload")) {
			if (nftnl_expr_is_set(e, NFTNL_EXPR_PAYLOAD_SREG))
				continue;
			uint32_t base = nftnl_expr_get_u32(e, NFTNL_EXPR_PAYLOAD_BASE);
			uint32_t off = nftnl_expr_get_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET);
			uint32_t plen = nftnl_expr_get_u32(e, NFTNL_EXPR_PAYLOAD_LEN);
			uint32_t dreg = nftnl_expr_get_u32(e, NFTNL_EXPR_PAYLOAD_DREG);
			const uint8_t *src = base == NFT_PAYLOAD_NETWORK_HEADER ? p->ip :
					     base == NFT_PAYLOAD_TRANSPORT_HEADER ? p->l4 :
										    NULL;
			if (src && off + plen <= 20 && plen <= 16) {
				reg_store(&rg, dreg, src + off, plen, false);
			} else {
				reg_store(&rg, dreg, NULL, plen <= 16 ? plen : 16, true);
				and_tri(&res->match, MAYBE);
			}
		} else if (!strcmp(name, "cmp")) {
			const uint8_t *want = nftnl_expr_get(e, NFTNL_EXPR_CMP_DATA, &len);
			const uint8_t *have;
			if (!want || reg_load(&rg, nftnl_expr_get_u32(e, NFTNL_EXPR_CMP_SREG), len, &have) < 0)
				and_tri(&res->match, MAYBE);
			else
				and_tri(&res->match,
					cmp_holds(nftnl_expr_get_u32(e, NFTNL_EXPR_CMP_OP), memcmp(have, want, len)) ? YES : NO);
		} else if (!strcmp(name, "bitwise")) {
			uint32_t blen = nftnl_expr_get_u32(e, NFTNL_EXPR_BITWISE_LEN);
			uint32_t dreg = nftnl_expr_get_u32(e, NFTNL_EXPR_BITWISE_DREG);
			uint32_t op = nftnl_expr_is_set(e, NFTNL_EXPR_BITWISE_OP) ?
					      nftnl_expr_get_u32(e, NFTNL_EXPR_BITWISE_OP) :
					      NFT_BITWISE_BOOL;
			uint32_t mlen = 0, xlen = 0;
			const uint8_t *mask = nftnl_expr_get(e, NFTNL_EXPR_BITWISE_MASK, &mlen);
			const uint8_t *xor = nftnl_expr_get(e, NFTNL_EXPR_BITWISE_XOR, &xlen);
			const uint8_t *src;
			uint8_t out[16];
			if (op != NFT_BITWISE_BOOL || blen > 16 || !mask || !xor || mlen < blen || xlen < blen ||
			    reg_load(&rg, nftnl_expr_get_u32(e, NFTNL_EXPR_BITWISE_SREG), blen, &src) < 0) {
				reg_store(&rg, dreg, NULL, blen <= 16 ? blen : 16, true);
				continue;
			}
			for (uint32_t i = 0; i < blen; i++)
				out[i] = (uint8_t)((src[i] & mask[i]) ^ xor[i]);
			reg_store(&rg, dreg, out, blen, false);
		} else if (!strcmp(name, "range")) {
			uint32_t flen = 0, tlen = 0;
			const uint8_t *from = nftnl_expr_get(e, NFTNL_EXPR_RANGE_FROM_DATA, &flen);
			const uint8_t *to = nftnl_expr_get(e, NFTNL_EXPR_RANGE_TO_DATA, &tlen);
			const uint8_t *have;
			if (!from || !to || flen != tlen ||
			    reg_load(&rg, nftnl_expr_get_u32(e, NFTNL_EXPR_RANGE_SREG), flen, &have) < 0) {
				and_tri(&res->match, MAYBE);
				continue;
			}
			bool in = memcmp(have, from, flen) >= 0 && memcmp(have, to, flen) <= 0;
			if (nftnl_expr_get_u32(e, NFTNL_EXPR_RANGE_OP) == NFT_RANGE_NEQ)
				in = !in;
			and_tri(&res->match, in ? YES : NO);
		} else if (!strcmp(name, "lookup")) {
			const char *sname = nftnl_expr_get_str(e, NFTNL_EXPR_LOOKUP_SET);
			struct fw_set *s = sname ? set_find(cx->rs, cx->family, cx->table, sname) : NULL;
			const uint8_t *key;
			const struct fw_elem *hit = NULL;
			if (!s || s->key_len > 16 ||
			    reg_load(&rg, nftnl_expr_get_u32(e, NFTNL_EXPR_LOOKUP_SREG), s->key_len, &key) < 0) {
				and_tri(&res->match, MAYBE);
				continue;
			}
			enum tri in = set_member(s, key, s->key_len, &hit);
			bool inv = nftnl_expr_is_set(e, NFTNL_EXPR_LOOKUP_FLAGS) &&
				   (nftnl_expr_get_u32(e, NFTNL_EXPR_LOOKUP_FLAGS) & NFT_LOOKUP_F_INV);
			if (nftnl_expr_is_set(e, NFTNL_EXPR_LOOKUP_DREG)) {
				uint32_t dreg = nftnl_expr_get_u32(e, NFTNL_EXPR_LOOKUP_DREG);
				and_tri(&res->match, in);
				if (dreg == NFT_REG_VERDICT && in == YES && hit && hit->has_verdict) {
					res->has_verdict = true; /* a verdict map */
					res->verdict = hit->verdict;
					snprintf(res->chain, sizeof(res->chain), "%s", hit->chain);
				} else if (in != NO) {
					and_tri(&res->match, MAYBE); /* a data map */
				}
				continue;
			}
			if (inv && in != MAYBE)
				in = in == YES ? NO : YES;
			and_tri(&res->match, in);
		} else if (!strcmp(name, "ct")) {
			if (nftnl_expr_is_set(e, NFTNL_EXPR_CT_SREG))
				continue;
			if (nftnl_expr_is_set(e, NFTNL_EXPR_CT_DIR)) { /* original/reply tuple fields */
				reg_store(&rg, nftnl_expr_get_u32(e, NFTNL_EXPR_CT_DREG), NULL, 16, true);
				and_tri(&res->match, MAYBE);
				continue;
			}
			ct_load(p, nftnl_expr_get_u32(e, NFTNL_EXPR_CT_KEY), &rg, nftnl_expr_get_u32(e, NFTNL_EXPR_CT_DREG),
				&res->match);
		} else if (!strcmp(name, "immediate")) {
			uint32_t dreg = nftnl_expr_get_u32(e, NFTNL_EXPR_IMM_DREG);
			if (dreg == NFT_REG_VERDICT) {
				res->has_verdict = true;
				res->verdict = (int)nftnl_expr_get_u32(e, NFTNL_EXPR_IMM_VERDICT);
				if (nftnl_expr_is_set(e, NFTNL_EXPR_IMM_CHAIN))
					snprintf(res->chain, sizeof(res->chain), "%s",
						 nftnl_expr_get_str(e, NFTNL_EXPR_IMM_CHAIN));
			} else {
				const void *d = nftnl_expr_get(e, NFTNL_EXPR_IMM_DATA, &len);
				if (d && len <= 16)
					reg_store(&rg, dreg, d, len, false);
			}
		} else if (!strcmp(name, "reject")) {
			res->has_verdict = true;
			res->verdict = NF_DROP;
			res->what = "reject";
		} else if (!strcmp(name, "match")) {
			const char *mname = nftnl_expr_get_str(e, NFTNL_EXPR_MT_NAME);
			const void *info = nftnl_expr_get(e, NFTNL_EXPR_MT_INFO, &len);
			and_tri(&res->match, mname && info ?
						     xt_match(p, mname, nftnl_expr_get_u32(e, NFTNL_EXPR_MT_REV), info, len) :
						     MAYBE);
		} else if (!strcmp(name, "target")) {
			const char *tname = nftnl_expr_get_str(e, NFTNL_EXPR_TG_NAME);
			bool cont = false;
			for (size_t i = 0; tname && i < SBX_ARRAY_SIZE(continue_targets); i++)
				cont |= !strcmp(tname, continue_targets[i].name);
			if (cont)
				continue;
			res->has_verdict = true;
			if (tname && !strcmp(tname, "REJECT")) {
				res->verdict = NF_DROP;
				res->what = "REJECT";
			} else {
				res->verdict_unknown = true;
			}
		} else if (!strcmp(name, "queue") || !strcmp(name, "fwd") || !strcmp(name, "dup")) {
			res->has_verdict = true;
			res->verdict_unknown = true;
		} else if (!strcmp(name, "counter") || !strcmp(name, "log") || !strcmp(name, "objref") ||
			   !strcmp(name, "dynset") || !strcmp(name, "notrack") || !strcmp(name, "quota") ||
			   !strcmp(name, "last")) {
			/* statements that do not decide */
		} else {
			/* limit, fib, socket, exthdr, rt, hash, numgen... */
			and_tri(&res->match, MAYBE);
		}
	}
	nftnl_expr_iter_destroy(it);
}

/* The rule's comment (nft's "comment", iptables' -m comment written by
 * iptables-nft), "" without one. */
static void rule_comment_get(const struct nftnl_rule *r, char *out, size_t n)
{
	out[0] = '\0';
	uint32_t ulen = 0;
	const char *udata = nftnl_rule_get_data(r, NFTNL_RULE_USERDATA, &ulen);
	if (!udata)
		return;
	const char *end = udata + ulen;
	for (const char *at = udata; at + 2 <= end;) {
		const struct nftnl_udata *u = (const void *)at;
		uint8_t l = nftnl_udata_len(u);
		if (at + 2 + l > end)
			return;
		if (nftnl_udata_type(u) == NFTNL_UDATA_RULE_COMMENT && l > 0) {
			snprintf(out, n, "%.*s", (int)l - 1, (const char *)nftnl_udata_get(u));
			return;
		}
		at += 2 + l;
	}
}

static void rule_words(const struct nftnl_rule *r, const struct fw_chain *c, const char *verb, char *out, size_t n)
{
	char comment[96];
	rule_comment_get(r, comment, sizeof(comment));
	snprintf(out, n, "a %s rule (handle %llu%s%s%s) in chain %s", verb,
		 (unsigned long long)nftnl_rule_get_u64(r, NFTNL_RULE_HANDLE), comment[0] ? ", \"" : "", comment,
		 comment[0] ? "\"" : "", c->name);
}

#define MAX_DEPTH 16
#define MAX_STEPS 100000

static enum sbx_fw_verdict eval_base(struct fw_ruleset *rs, const struct fw_chain *base, const struct fw_pkt *p,
				     bool *uncertain, char *why, size_t why_n)
{
	struct evalctx cx = { rs, base->family, base->table, p };
	struct {
		const struct fw_chain *c;
		size_t i;
	} stack[MAX_DEPTH];
	int sp = 0;
	const struct fw_chain *c = base;
	size_t i = 0;
	for (int steps = 0; steps < MAX_STEPS; steps++) {
		if (i >= c->n_rules) {
			if (sp == 0)
				break;
			sp--;
			c = stack[sp].c;
			i = stack[sp].i;
			continue;
		}
		const struct nftnl_rule *r = c->rules[i++];
		struct rule_result res;
		eval_rule(&cx, r, &res);
		if (res.match == NO || !res.has_verdict)
			continue;
		if (res.match == MAYBE || res.verdict_unknown) {
			*uncertain = true;
			continue;
		}
		switch (res.verdict) {
		case NF_ACCEPT:
			rule_words(r, c, "accept", why, why_n);
			return SBX_FW_ACCEPT;
		case NF_DROP:
			rule_words(r, c, res.what ? res.what : "drop", why, why_n);
			return SBX_FW_DROP;
		case NFT_JUMP:
		case NFT_GOTO: {
			const struct fw_chain *t = chain_find(rs, c->family, c->table, res.chain);
			if (!t) {
				*uncertain = true;
				continue;
			}
			if (res.verdict == NFT_JUMP) {
				if (sp == MAX_DEPTH) {
					*uncertain = true;
					continue;
				}
				stack[sp].c = c;
				stack[sp].i = i;
				sp++;
			}
			c = t;
			i = 0;
			continue;
		}
		case NFT_RETURN:
			if (sp == 0) {
				i = c->n_rules;
				continue;
			}
			sp--;
			c = stack[sp].c;
			i = stack[sp].i;
			continue;
		default: /* continue, break */
			continue;
		}
	}
	snprintf(why, why_n, "the policy %s of chain %s", base->policy == NF_DROP ? "drop" : "accept", base->name);
	return base->policy == NF_DROP ? SBX_FW_DROP : SBX_FW_ACCEPT;
}

static bool rule_tagged(const struct nftnl_rule *r, const char *tag)
{
	char comment[256];
	rule_comment_get(r, comment, sizeof(comment));
	return tag && comment[0] && !strcmp(comment, tag);
}

int sbx_fw_judge(const struct sbx_fw_net *net, struct sbx_fw_report *out, sbx_error **err)
{
	memset(out, 0, sizeof(*out));
	struct fw_ruleset rs;
	if (ruleset_load(&rs, net->own_table, err) < 0)
		return sbx_error_prefix(err, "the host's firewall rules");
	struct fw_pkt pout, pback;
	sample(net, false, &pout);
	sample(net, true, &pback);
	for (size_t i = 0; i < rs.n_chains; i++) {
		const struct fw_chain *c = &rs.chains[i];
		if (c->family == NFPROTO_IPV4 && !strcmp(c->table, "filter")) {
			if (!strcmp(c->name, "DOCKER-USER"))
				out->docker_user = true;
			for (size_t k = 0; k < c->n_rules; k++) {
				if (rule_tagged(c->rules[k], net->tag)) {
					out->ours++;
					snprintf(out->ours_chain, sizeof(out->ours_chain), "%s", c->name);
				}
			}
		}
		if (!judged(c, net->own_table))
			continue;
		struct sbx_fw_judgement *grown = realloc(out->chains, (out->n + 1) * sizeof(*grown));
		if (!grown) {
			ruleset_free(&rs);
			sbx_fw_report_free(out);
			return sbx_error_errno(err, ENOMEM, "the host's firewall rules");
		}
		out->chains = grown;
		struct sbx_fw_judgement *j = &out->chains[out->n++];
		memset(j, 0, sizeof(*j));
		snprintf(j->family, sizeof(j->family), "%s", family_name(c->family));
		snprintf(j->table, sizeof(j->table), "%s", c->table);
		snprintf(j->chain, sizeof(j->chain), "%s", c->name);
		j->owner = c->family == NFPROTO_IPV4 && !strcmp(c->table, "filter") && !strcmp(c->name, "FORWARD") ?
				   SBX_FW_IPTABLES :
			   !strcmp(c->table, "firewalld") ? SBX_FW_FIREWALLD :
							    SBX_FW_OTHER;
		snprintf(j->place, sizeof(j->place), "%s", j->chain);
		j->out = eval_base(&rs, c, &pout, &j->uncertain, j->why_out, sizeof(j->why_out));
		j->back = eval_base(&rs, c, &pback, &j->uncertain, j->why_back, sizeof(j->why_back));
	}
	ruleset_free(&rs);
	for (size_t i = 0; i < out->n; i++)
		if (out->chains[i].owner == SBX_FW_IPTABLES && out->docker_user)
			snprintf(out->chains[i].place, sizeof(out->chains[i].place), "DOCKER-USER");
	/* iptables-legacy keeps its tables out of nftables' sight. */
	_cleanup_free_ char *names = NULL;
	if (sbx_read_file_at(AT_FDCWD, "/proc/net/ip_tables_names", 4096, &names, NULL, NULL) == 0 && names &&
	    strstr(names, "filter"))
		out->legacy_filter = true;
	return 0;
}

void sbx_fw_report_free(struct sbx_fw_report *r)
{
	free(r->chains);
	memset(r, 0, sizeof(*r));
}

/* ---- our rules in iptables-nft's filter table ---- */

static void e_meta_ifname_prefix(struct nftnl_rule *r, uint32_t key, const char *prefix, bool *oom)
{
	struct nftnl_expr *e = nftnl_expr_alloc("meta");
	if (!e) {
		*oom = true;
		return;
	}
	nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, key);
	nftnl_expr_set_u32(e, NFTNL_EXPR_META_DREG, NFT_REG_1);
	nftnl_rule_add_expr(r, e);
	/* iptables' "-i sv+": the name's first bytes, without the NUL */
	e = nftnl_expr_alloc("cmp");
	if (!e) {
		*oom = true;
		return;
	}
	nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_SREG, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_OP, NFT_CMP_EQ);
	nftnl_expr_set(e, NFTNL_EXPR_CMP_DATA, prefix, (uint32_t)strlen(prefix));
	nftnl_rule_add_expr(r, e);
}

/* iptables' "-s/-d NET/PREFIX": whole bytes are compared as they are, a
 * prefix that is not a multiple of 8 through a mask. */
static void e_addr(struct nftnl_rule *r, bool daddr, struct sbx_cidr c, bool *oom)
{
	uint32_t len = c.prefix % 8 ? 4 : (uint32_t)c.prefix / 8;
	struct nftnl_expr *e = nftnl_expr_alloc("payload");
	if (!e) {
		*oom = true;
		return;
	}
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_DREG, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_BASE, NFT_PAYLOAD_NETWORK_HEADER);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET, daddr ? 16 : 12);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_LEN, len);
	nftnl_rule_add_expr(r, e);
	if (c.prefix % 8) {
		uint32_t mask = htonl(~0U << (32 - c.prefix)), zero = 0;
		e = nftnl_expr_alloc("bitwise");
		if (!e) {
			*oom = true;
			return;
		}
		nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_SREG, NFT_REG_1);
		nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_DREG, NFT_REG_1);
		nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_LEN, 4);
		nftnl_expr_set(e, NFTNL_EXPR_BITWISE_MASK, &mask, 4);
		nftnl_expr_set(e, NFTNL_EXPR_BITWISE_XOR, &zero, 4);
		nftnl_rule_add_expr(r, e);
	}
	e = nftnl_expr_alloc("cmp");
	if (!e) {
		*oom = true;
		return;
	}
	nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_SREG, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_OP, NFT_CMP_EQ);
	nftnl_expr_set(e, NFTNL_EXPR_CMP_DATA, &c.net.s_addr, len);
	nftnl_rule_add_expr(r, e);
}

/* "-m conntrack --ctstate RELATED,ESTABLISHED": the xtables match, as
 * iptables-nft writes it (a native ct expression would make the chain
 * unreadable to iptables, and so to Docker). */
static void e_ctstate_established(struct nftnl_rule *r, bool *oom)
{
	struct xt_conntrack_mtinfo3 info;
	memset(&info, 0, sizeof(info));
	info.match_flags = XT_CONNTRACK_STATE;
	info.state_mask = (uint16_t)(CT_BIT(IP_CT_ESTABLISHED) | CT_BIT(IP_CT_RELATED));
	struct nftnl_expr *e = nftnl_expr_alloc("match");
	if (!e) {
		*oom = true;
		return;
	}
	size_t size = XT_ALIGN(sizeof(info));
	void *copy = calloc(1, size);
	if (!copy) {
		nftnl_expr_free(e);
		*oom = true;
		return;
	}
	memcpy(copy, &info, sizeof(info));
	nftnl_expr_set_str(e, NFTNL_EXPR_MT_NAME, "conntrack");
	nftnl_expr_set_u32(e, NFTNL_EXPR_MT_REV, 3);
	/* libnftnl keeps this pointer (and frees it with the expression). */
	nftnl_expr_set(e, NFTNL_EXPR_MT_INFO, copy, (uint32_t)size);
	nftnl_rule_add_expr(r, e);
}

static void e_counter_accept(struct nftnl_rule *r, bool *oom)
{
	struct nftnl_expr *e = nftnl_expr_alloc("counter");
	if (!e) {
		*oom = true;
		return;
	}
	nftnl_rule_add_expr(r, e);
	e = nftnl_expr_alloc("immediate");
	if (!e) {
		*oom = true;
		return;
	}
	nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
	nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_VERDICT, NF_ACCEPT);
	nftnl_rule_add_expr(r, e);
}

static void rule_comment(struct nftnl_rule *r, const char *tag, bool *oom)
{
	struct nftnl_udata_buf *u = nftnl_udata_buf_alloc(256);
	if (!u || !nftnl_udata_put_strz(u, NFTNL_UDATA_RULE_COMMENT, tag)) {
		if (u)
			nftnl_udata_buf_free(u);
		*oom = true;
		return;
	}
	nftnl_rule_set_data(r, NFTNL_RULE_USERDATA, nftnl_udata_buf_data(u), nftnl_udata_buf_len(u));
	nftnl_udata_buf_free(u);
}

static void batch_rule(struct sbx_nft_batch *b, struct nftnl_rule *r, uint16_t type, uint16_t flags, bool oom)
{
	if (!r || oom) {
		sbx_nft_batch_oom(b);
	} else {
		struct nlmsghdr *nlh = sbx_nft_batch_msg(b, type, NFPROTO_IPV4, flags);
		if (nlh) {
			nftnl_rule_nlmsg_build_payload(nlh, r);
			sbx_nft_batch_add(b, nlh);
		}
	}
	if (r)
		nftnl_rule_free(r);
}

static struct nftnl_rule *filter_rule(const char *chain)
{
	struct nftnl_rule *r = nftnl_rule_alloc();
	if (!r)
		return NULL;
	nftnl_rule_set_u32(r, NFTNL_RULE_FAMILY, NFPROTO_IPV4);
	nftnl_rule_set_str(r, NFTNL_RULE_TABLE, "filter");
	nftnl_rule_set_str(r, NFTNL_RULE_CHAIN, chain);
	return r;
}

int sbx_fw_iptables_add(const struct sbx_fw_net *net, const char *chain, sbx_error **err)
{
	const char *prefix = net->link_prefix ? net->link_prefix : "sv";
	struct sbx_nft_batch *b = sbx_nft_batch_new();
	if (!b)
		return sbx_error_errno(err, ENOMEM, "ip filter %s", chain);
	/* Without NLM_F_APPEND a rule goes to the head of the chain: the
	 * answers' rule first, then the sandboxes' own. */
	bool oom = false;
	struct nftnl_rule *r = filter_rule(chain);
	if (r) {
		e_meta_ifname_prefix(r, NFT_META_IIFNAME, prefix, &oom);
		e_addr(r, false, net->subnet, &oom);
		e_counter_accept(r, &oom);
		rule_comment(r, net->tag, &oom);
	}
	batch_rule(b, r, NFT_MSG_NEWRULE, NLM_F_CREATE, oom);
	oom = false;
	r = filter_rule(chain);
	if (r) {
		e_meta_ifname_prefix(r, NFT_META_OIFNAME, prefix, &oom);
		e_addr(r, true, net->subnet, &oom);
		e_ctstate_established(r, &oom);
		e_counter_accept(r, &oom);
		rule_comment(r, net->tag, &oom);
	}
	batch_rule(b, r, NFT_MSG_NEWRULE, NLM_F_CREATE, oom);
	int rc = sbx_nft_batch_run(b, "add rules", err);
	sbx_nft_batch_free(b);
	if (rc < 0)
		return sbx_error_prefix(err, "ip filter %s", chain);
	return 0;
}

struct tagged_scan {
	const char *tag;
	struct nftnl_rule **found;
	size_t n;
	bool oom;
};

static int tagged_cb(const struct nlmsghdr *nlh, void *data)
{
	struct tagged_scan *ts = data;
	struct nftnl_rule *r = nftnl_rule_alloc();
	if (!r) {
		ts->oom = true;
		return MNL_CB_OK;
	}
	if (nftnl_rule_nlmsg_parse(nlh, r) < 0 || !rule_tagged(r, ts->tag)) {
		nftnl_rule_free(r);
		return MNL_CB_OK;
	}
	struct nftnl_rule **grown = realloc(ts->found, (ts->n + 1) * sizeof(*grown));
	if (!grown) {
		ts->oom = true;
		nftnl_rule_free(r);
		return MNL_CB_OK;
	}
	ts->found = grown;
	ts->found[ts->n++] = r;
	return MNL_CB_OK;
}

int sbx_fw_iptables_remove(const char *tag, sbx_error **err)
{
	struct tagged_scan ts = { .tag = tag };
	struct table_filter tf = { NFPROTO_IPV4, "filter", NULL, 0 };
	int r;
	for (int tries = 1;; tries++) {
		sbx_error *e = NULL;
		r = sbx_nft_dump(NFT_MSG_GETRULE, NFPROTO_IPV4, table_filter_build, &tf, tagged_cb, &ts, &e);
		if (r == 0 || !torn(e) || tries == READ_TRIES) {
			if (r < 0 && err && !*err)
				*err = e;
			else
				sbx_error_free(e);
			break;
		}
		sbx_error_free(e); /* torn: scan again from nothing */
		for (size_t i = 0; i < ts.n; i++)
			nftnl_rule_free(ts.found[i]);
		ts.n = 0;
	}
	if (r == 0 && ts.oom)
		r = sbx_error_errno(err, ENOMEM, "read ip filter");
	int removed = 0;
	if (r == 0 && ts.n) {
		struct sbx_nft_batch *b = sbx_nft_batch_new();
		if (!b) {
			r = sbx_error_errno(err, ENOMEM, "ip filter");
		} else {
			for (size_t i = 0; i < ts.n; i++) {
				/* Deleted by handle, which names this rule alone. */
				struct nftnl_rule *d = filter_rule(nftnl_rule_get_str(ts.found[i], NFTNL_RULE_CHAIN));
				if (d)
					nftnl_rule_set_u64(d, NFTNL_RULE_HANDLE,
							   nftnl_rule_get_u64(ts.found[i], NFTNL_RULE_HANDLE));
				batch_rule(b, d, NFT_MSG_DELRULE, 0, false);
			}
			r = sbx_nft_batch_run(b, "remove rules", err);
			sbx_nft_batch_free(b);
			removed = (int)ts.n;
		}
	}
	for (size_t i = 0; i < ts.n; i++)
		nftnl_rule_free(ts.found[i]);
	free(ts.found);
	if (r < 0)
		return sbx_error_prefix(err, "ip filter");
	return removed;
}

/* ---- firewalld ---- */

int sbx_fw_firewalld_bind(const char *zone, const char *pattern, bool add, sbx_error **err)
{
	char zone_arg[128], iface_arg[64];
	snprintf(zone_arg, sizeof(zone_arg), "--zone=%s", zone);
	snprintf(iface_arg, sizeof(iface_arg), "--%s-interface=%s", add ? "add" : "remove", pattern);
	char *argv[] = { "firewall-cmd", "-q", zone_arg, iface_arg, NULL };
	int pipefd[2];
	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return sbx_error_errno(err, errno, "firewall-cmd");
	_cleanup_close_ int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	pid_t pid = fork();
	if (pid < 0) {
		close(pipefd[0]);
		close(pipefd[1]);
		return sbx_error_errno(err, errno, "fork");
	}
	if (pid == 0) {
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_DFL);
		if (devnull < 0 || dup2(devnull, 0) < 0 || dup2(pipefd[1], 1) < 0 || dup2(pipefd[1], 2) < 0)
			_exit(127);
		sbx_close_range(3, ~0U, 0);
		execvp(argv[0], argv);
		fprintf(stderr, "cannot run firewall-cmd: %s\n", strerror(errno));
		_exit(127);
	}
	close(pipefd[1]);
	/* firewalld answers in well under a second; a hung bus must not
	 * hang the daemon. */
	char out[512];
	size_t got = 0;
	int64_t deadline = sbx_monotonic_ms() + 10000;
	bool timed_out = false;
	for (;;) {
		int64_t left = deadline - sbx_monotonic_ms();
		struct pollfd pfd = { .fd = pipefd[0], .events = POLLIN };
		if (left <= 0) {
			timed_out = true;
			break;
		}
		int n = poll(&pfd, 1, (int)left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			continue;
		char buf[256];
		ssize_t r = read(pipefd[0], buf, sizeof(buf));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		size_t take = (size_t)r < sizeof(out) - 1 - got ? (size_t)r : sizeof(out) - 1 - got;
		memcpy(out + got, buf, take);
		got += take;
	}
	close(pipefd[0]);
	out[got] = '\0';
	if (timed_out)
		kill(pid, SIGKILL);
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (timed_out)
		return sbx_error_errno(err, ETIMEDOUT, "firewall-cmd %s %s", zone_arg, iface_arg);
	while (got && (out[got - 1] == '\n' || out[got - 1] == ' '))
		out[--got] = '\0';
	for (char *c = out; *c; c++)
		if (*c == '\n')
			*c = ' ';
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		return sbx_error_set(err, SBX_ERR_INTERNAL, "firewall-cmd %s %s: %s", zone_arg, iface_arg,
				     got ? out : "failed");
	return 0;
}

/* ---- words for people ---- */

void sbx_fw_manual_fix(const struct sbx_fw_net *net, const struct sbx_fw_judgement *j, char *out, size_t n)
{
	char subnet[SBX_CIDR_STRLEN];
	sbx_cidr_format(net->subnet, subnet);
	const char *pfx = net->link_prefix ? net->link_prefix : "sv";
	switch (j->owner) {
	case SBX_FW_IPTABLES:
		snprintf(out, n,
			 "iptables -I %s -i %s+ -s %s -j ACCEPT; iptables -I %s -o %s+ -d %s -m conntrack --ctstate "
			 "RELATED,ESTABLISHED -j ACCEPT (or set iptables_forward = true in sandboxd.conf)",
			 j->place, pfx, subnet, j->place, pfx, subnet);
		break;
	case SBX_FW_FIREWALLD:
		snprintf(out, n,
			 "install the zone file sandboxd.xml into /etc/firewalld/zones, run firewall-cmd --reload and "
			 "set firewalld_zone = sandboxd in sandboxd.conf; or firewall-cmd --zone=trusted "
			 "--add-interface=%s+",
			 pfx);
		break;
	default:
		/* firewalld's own table while it starts or reloads, and in
		 * panic mode: gone by itself, and no rule belongs in it. */
		if (!strcmp(j->table, "firewalld_policy_drop")) {
			snprintf(out, n,
				 "none while firewalld starts or reloads (it drops all forwarded traffic until its "
				 "rules are in); in panic mode, firewall-cmd --panic-off");
			break;
		}
		snprintf(out, n,
			 "nft 'insert rule %s %s %s iifname \"%s*\" ip saddr %s accept'; nft 'insert rule %s %s %s "
			 "oifname \"%s*\" ip daddr %s ct state established,related accept' (and the same in the file "
			 "that loads table %s, such as /etc/nftables.conf)",
			 j->family, j->table, j->chain, pfx, subnet, j->family, j->table, j->chain, pfx, subnet,
			 j->table);
		break;
	}
}

static int probe_cb(const struct nlmsghdr *nlh, void *data)
{
	(void)nlh;
	(void)data;
	return MNL_CB_OK;
}

int sbx_fw_probe(sbx_error **err)
{
	return sbx_nft_dump(NFT_MSG_GETTABLE, NFPROTO_UNSPEC, NULL, NULL, probe_cb, NULL, err);
}

/* ---- announcements ---- */

int sbx_fw_monitor_open(struct sbx_fw_monitor *m, sbx_error **err)
{
	m->sock = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (!m->sock)
		return sbx_error_errno(err, errno, "open nfnetlink socket");
	int group = NFNLGRP_NFTABLES;
	if (mnl_socket_bind(m->sock, 0, MNL_SOCKET_AUTOPID) < 0 ||
	    mnl_socket_setsockopt(m->sock, NETLINK_ADD_MEMBERSHIP, &group, sizeof(group)) < 0) {
		int e = errno;
		sbx_fw_monitor_close(m);
		return sbx_error_errno(err, e, "listen to nftables changes");
	}
	/* A rebuild of sandboxd's own table is one announcement per rule:
	 * room for many, though a loss only costs a needless look. */
	int size = 4 << 20;
	setsockopt(mnl_socket_get_fd(m->sock), SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size));
	return mnl_socket_get_fd(m->sock);
}

bool sbx_fw_monitor_drain(struct sbx_fw_monitor *m, const char *own_table)
{
	bool changed = false;
	char *buf = malloc(NL_BUF);
	if (!buf)
		return true;
	for (;;) {
		ssize_t n = recv(mnl_socket_get_fd(m->sock), buf, NL_BUF, MSG_DONTWAIT);
		if (n < 0) {
			if (errno == ENOBUFS) {
				changed = true;
				continue;
			}
			break;
		}
		if (n == 0)
			break;
		int len = (int)n;
		for (const struct nlmsghdr *nlh = (const void *)buf; mnl_nlmsg_ok(nlh, len); nlh = mnl_nlmsg_next(nlh, &len)) {
			if (NFNL_SUBSYS_ID(nlh->nlmsg_type) != NFNL_SUBSYS_NFTABLES ||
			    NFNL_MSG_TYPE(nlh->nlmsg_type) == NFT_MSG_NEWGEN)
				continue;
			/* Every object's message names its table in its first
			 * attribute type (NFTA_TABLE_NAME, NFTA_CHAIN_TABLE,
			 * NFTA_RULE_TABLE, NFTA_SET_TABLE, ...). */
			const char *table = NULL;
			const struct nlattr *a;
			mnl_attr_for_each(a, nlh, sizeof(struct nfgenmsg))
			{
				if (mnl_attr_get_type(a) == 1 && mnl_attr_validate(a, MNL_TYPE_NUL_STRING) >= 0) {
					table = mnl_attr_get_str(a);
					break;
				}
			}
			if (!table || !own_table || strcmp(table, own_table))
				changed = true;
		}
	}
	free(buf);
	return changed;
}

void sbx_fw_monitor_close(struct sbx_fw_monitor *m)
{
	if (m->sock)
		mnl_socket_close(m->sock);
	m->sock = NULL;
}

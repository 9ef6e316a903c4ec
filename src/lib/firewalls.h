/* The other firewalls of the host, as sandbox traffic meets them. Every
 * forward base chain of another nftables table (iptables-nft's filter
 * table, where Docker sets the FORWARD policy to DROP; firewalld's table;
 * an administrator's own inet filter) is read through libnftnl and run
 * against two sample packets: a sandbox's new connection going out, and
 * an answer coming back. Where an owner documents a place for rules of
 * others, sandboxd's accept rules are added there, tagged with a comment
 * and later removed by that tag alone. Never flushes, rebuilds or changes
 * a rule, chain or table it did not add. */
#ifndef SBX_FIREWALLS_H
#define SBX_FIREWALLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "subnet.h"

struct mnl_socket;

/* The network whose traffic is judged. */
struct sbx_fw_net {
	struct sbx_cidr subnet;
	uint32_t group;          /* device group of the sandboxes' links (0: none yet) */
	const char *link_prefix; /* names of the sandboxes' host links start with it ("sv") */
	const char *uplink;      /* the default route's link ("" or NULL: none) */
	int uplink_index;
	uint32_t uplink_group;
	const char *own_table;   /* sandboxd's own table, never judged (NULL: none) */
	const char *tag;         /* the comment of the rules sandboxd adds */
};

enum sbx_fw_verdict {
	SBX_FW_ACCEPT,
	SBX_FW_DROP,
};

enum sbx_fw_owner {
	SBX_FW_IPTABLES,  /* ip filter FORWARD: iptables-nft (Docker, libvirt, an admin) */
	SBX_FW_FIREWALLD, /* table firewalld */
	SBX_FW_OTHER,
};

/* What one forward base chain does to the two samples. */
struct sbx_fw_judgement {
	char family[8]; /* "ip", "inet" */
	char table[64];
	char chain[64];
	enum sbx_fw_owner owner;
	/* where an owner's documented place for others' rules is: the chain
	 * of iptables' filter table (DOCKER-USER when Docker made it) */
	char place[64];
	enum sbx_fw_verdict out, back;
	/* Rules whose matches sandboxd cannot evaluate (sets of
	 * concatenations, rate limits, sockets...) were taken as not
	 * matching. */
	bool uncertain;
	char why_out[192], why_back[192]; /* what decided, in words */
};

struct sbx_fw_report {
	struct sbx_fw_judgement *chains;
	size_t n;
	bool docker_user;   /* ip filter has Docker's DOCKER-USER chain */
	size_t ours;        /* rules tagged net->tag in ip filter */
	char ours_chain[64];
	bool legacy_filter; /* iptables-legacy's filter table is loaded: out of sight */
};

/* Reads the ruleset and judges every forward base chain of family ip or
 * inet and type filter, but own_table. */
int sbx_fw_judge(const struct sbx_fw_net *net, struct sbx_fw_report *out, sbx_error **err);
void sbx_fw_report_free(struct sbx_fw_report *r);
static inline bool sbx_fw_drops(const struct sbx_fw_judgement *j)
{
	return j->out == SBX_FW_DROP || j->back == SBX_FW_DROP;
}

/* iptables-nft's filter table: two accept rules at the head of chain
 * (DOCKER-USER, which Docker keeps for rules of others and jumps to
 * first, or FORWARD), encoded as iptables itself encodes
 *   -i sv+ -s SUBNET -j ACCEPT
 *   -o sv+ -d SUBNET -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
 * so that iptables (and Docker through it) can still read the chain,
 * each with the comment net->tag. */
int sbx_fw_iptables_add(const struct sbx_fw_net *net, const char *chain, sbx_error **err);
/* Removes the rules commented tag from every chain of ip filter; how many
 * went (0 when there were none, or no such table). */
int sbx_fw_iptables_remove(const char *tag, sbx_error **err);

/* firewalld: puts the links matching pattern ("sv+") in zone for the
 * running firewall (never the permanent one), or takes them out, through
 * firewall-cmd. */
int sbx_fw_firewalld_bind(const char *zone, const char *pattern, bool add, sbx_error **err);

/* The rules an administrator adds by hand to let the traffic through the
 * chain of j, as commands. */
void sbx_fw_manual_fix(const struct sbx_fw_net *net, const struct sbx_fw_judgement *j, char *out, size_t n);

/* Changes to the ruleset, as nftables announces them. */
struct sbx_fw_monitor {
	struct mnl_socket *sock;
};
/* A non-blocking socket to watch; its descriptor (owned by m). */
int sbx_fw_monitor_open(struct sbx_fw_monitor *m, sbx_error **err);
/* Reads what is pending: whether any of it changed a table other than
 * own_table (announcements were lost also counts). */
bool sbx_fw_monitor_drain(struct sbx_fw_monitor *m, const char *own_table);
void sbx_fw_monitor_close(struct sbx_fw_monitor *m);

/* Whether the process can read nftables at all (a kernel with nf_tables
 * and CAP_NET_ADMIN). */
int sbx_fw_probe(sbx_error **err);

#endif

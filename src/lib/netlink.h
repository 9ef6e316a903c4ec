/* rtnetlink through libmnl: the bridge, veth pairs, addresses, routes,
 * neighbours and the host's uplink MTU (all IPv4); and connections made
 * from inside a sandbox's network namespace. Never runs the `ip` command,
 * and never touches a link it was not named (or a group it was given). */
#ifndef SBX_NETLINK_H
#define SBX_NETLINK_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "error.h"

struct mnl_socket;

struct sbx_nl {
	struct mnl_socket *sock;
	uint32_t seq;
	uint32_t portid;
};

/* A NETLINK_ROUTE socket in the caller's network namespace. */
int sbx_nl_open(struct sbx_nl *nl, sbx_error **err);
/* The same in another namespace: the thread enters netns_fd just long
 * enough to create the socket (a socket stays bound to the namespace it was
 * made in), then returns to its own. */
int sbx_nl_open_in(struct sbx_nl *nl, int netns_fd, sbx_error **err);
/* Open, once, the network namespace the process is in: the way back from
 * a sandbox's. Called at start-up so that the descriptor is there before
 * anything counts the daemon's descriptors; later calls do nothing. */
int sbx_netns_remember_own(sbx_error **err);
void sbx_nl_close(struct sbx_nl *nl);

/* A non-blocking TCP connection made from inside the network namespace of
 * ns (a namespace descriptor or a pidfd), to the first of addrs, from
 * *index on, that does not refuse at once (a local address with nothing
 * listening refuses within the call). *index is left at the one used, so
 * that a caller whose pending connection fails later can go on with the
 * next. *pending: still connecting (wait for writability, then SO_ERROR).
 * -1 when every one refused (the errno of the last), or on error. */
int sbx_netns_connect(int ns, const struct sockaddr_storage *addrs, size_t n, size_t *index, bool *pending,
		      sbx_error **err);

/* 0 when there is no such link, else its index. */
int sbx_nl_ifindex(struct sbx_nl *nl, const char *name, sbx_error **err);
/* A bridge; an existing link of that name is fine. */
int sbx_nl_bridge_create(struct sbx_nl *nl, const char *name, sbx_error **err);
/* A veth pair whose peer is created directly in the namespace of
 * peer_netns_fd under the name peer_name. */
struct sbx_nl_veth {
	const char *name, *peer_name;
	int peer_netns_fd;
	uint32_t mtu;             /* both ends; 0: the default */
	uint32_t group;           /* device group of this end; 0: the default */
	const uint8_t *mac;       /* this end's address; NULL: a random one */
	const uint8_t *peer_mac;  /* the peer's */
	bool up;                  /* this end up from the start (the peer cannot be
				   * brought up before the pair is complete) */
};
int sbx_nl_veth_create(struct sbx_nl *nl, const struct sbx_nl_veth *v, sbx_error **err);
/* Missing links are not an error. A deletion waits for the kernel's RCU
 * grace period (some 10 ms): many links go faster together. */
int sbx_nl_link_delete(struct sbx_nl *nl, const char *name, sbx_error **err);
/* Every link of a device group, in one request (one grace period); group
 * 0, every link's default, is refused. */
int sbx_nl_group_delete(struct sbx_nl *nl, uint32_t group, sbx_error **err);
/* Link up, with an MTU (0 keeps it) and a bridge master (0: none). */
int sbx_nl_link_up(struct sbx_nl *nl, int ifindex, uint32_t mtu, int master, sbx_error **err);
/* An address that is already there is fine. */
int sbx_nl_addr_add(struct sbx_nl *nl, int ifindex, struct in_addr addr, int prefix, sbx_error **err);
int sbx_nl_addr_del(struct sbx_nl *nl, int ifindex, struct in_addr addr, int prefix, sbx_error **err);
int sbx_nl_route_default(struct sbx_nl *nl, struct in_addr gateway, sbx_error **err);
/* dst/prefix on link oif (scope link), with a preferred source address
 * (0: none). A route to that destination already there is EEXIST: it is
 * someone else's. It goes with the link. */
int sbx_nl_route_add(struct sbx_nl *nl, struct in_addr dst, int prefix, int oif, struct in_addr prefsrc,
		     sbx_error **err);
/* A permanent neighbour entry (no ARP; never garbage-collected, and not
 * counted against the neighbour table's limits); replaces one there. */
int sbx_nl_neigh_add(struct sbx_nl *nl, int ifindex, struct in_addr addr, const uint8_t mac[6], sbx_error **err);
/* The link of the main table's IPv4 default route: 1 when there is one. */
struct sbx_nl_uplink_info {
	int ifindex;
	uint32_t group, mtu;
	char name[16];
};
int sbx_nl_uplink(struct sbx_nl *nl, struct sbx_nl_uplink_info *out, sbx_error **err);
/* MTU of the device of the main table's IPv4 default route; 0 without one. */
int sbx_nl_uplink_mtu(struct sbx_nl *nl, uint32_t *mtu, sbx_error **err);

/* What holds an IPv4 prefix on the host: a route of the main table (with
 * a destination; default routes are not read) or an address with its
 * prefix length. */
enum sbx_nl_prefix_kind {
	SBX_NL_ROUTE,      /* unicast, through a link */
	SBX_NL_ROUTE_DEAD, /* blackhole, unreachable or prohibit */
	SBX_NL_ADDRESS,
};
struct sbx_nl_prefix {
	enum sbx_nl_prefix_kind kind;
	struct in_addr net; /* host bits cleared */
	struct in_addr addr; /* the address itself (SBX_NL_ADDRESS) */
	int prefix;
	int ifindex;    /* 0: none (a route without a link) */
	uint32_t group; /* the link's device group */
	char ifname[16];
};
/* Every such prefix, each with its link's name and group (caller frees). */
int sbx_nl_prefixes(struct sbx_nl *nl, struct sbx_nl_prefix **out, size_t *n, sbx_error **err);
/* A non-blocking socket told of every change to links, IPv4 addresses
 * and routes; its descriptor (owned by nl), to be watched. */
int sbx_nl_open_monitor(struct sbx_nl *nl, sbx_error **err);
/* Reads every pending notification; how many there were (a lost batch
 * counts as one), leaving out the links of own_group and the /32 routes
 * inside own/own_prefix (a daemon's own sandboxes come and go all the
 * time). */
int sbx_nl_monitor_drain(struct sbx_nl *nl, struct in_addr own, int own_prefix, uint32_t own_group);

/* What a resource errno of a network request means as a kernel limit, in
 * words for the user; NULL when it is not one. */
const char *sbx_nl_errno_limit(int errnum);

/* "a.b.c.d/n" → network address (host bits cleared) and prefix. */
int sbx_cidr_parse(const char *s, struct in_addr *net, int *prefix);
bool sbx_cidr_contains(struct in_addr net, int prefix, struct in_addr addr);

#endif

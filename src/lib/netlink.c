/* rtnetlink requests over libmnl. Every request asks for an ACK and waits
 * for it, so an error comes back as the errno of the request that caused
 * it. Set-up inside a sandbox's network namespace uses a socket created
 * there (sbx_nl_open_in); the thread itself never stays in another
 * namespace. */
#include "config.h"
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <linux/if.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/if_bridge.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "netlink.h"
#include "util.h"

/* Room for one request, or one read of replies (the kernel sends at most
 * a page or 8 KiB per message). */
#define NL_BUF 32768

int sbx_nl_open(struct sbx_nl *nl, sbx_error **err)
{
	nl->sock = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
	if (!nl->sock)
		return sbx_error_errno(err, errno, "open rtnetlink socket");
	if (mnl_socket_bind(nl->sock, 0, MNL_SOCKET_AUTOPID) < 0) {
		int e = errno;
		mnl_socket_close(nl->sock);
		nl->sock = NULL;
		return sbx_error_errno(err, e, "bind rtnetlink socket");
	}
	nl->portid = mnl_socket_get_portid(nl->sock);
	nl->seq = (uint32_t)time(NULL);
	return 0;
}

/* The namespace the process started in, opened once: the way back. */
static int own_netns = -1;

int sbx_netns_remember_own(sbx_error **err)
{
	if (own_netns < 0) {
		own_netns = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
		if (own_netns < 0)
			return sbx_error_errno(err, errno, "open own network namespace");
	}
	return 0;
}

static int netns_enter(int ns, sbx_error **err)
{
	if (sbx_netns_remember_own(err) < 0)
		return -1;
	if (setns(ns, CLONE_NEWNET) < 0)
		return sbx_error_errno(err, errno, "enter the sandbox's network namespace");
	return 0;
}

static void netns_leave(void)
{
	if (setns(own_netns, CLONE_NEWNET) < 0) {
		/* Staying in a sandbox's namespace would put every later host
		 * operation of the daemon there: there is no safe way on. */
		perror("sandboxd: cannot return to its own network namespace");
		abort();
	}
}

int sbx_nl_open_in(struct sbx_nl *nl, int netns_fd, sbx_error **err)
{
	if (netns_enter(netns_fd, err) < 0)
		return -1;
	int r = sbx_nl_open(nl, err);
	netns_leave();
	return r;
}

int sbx_netns_connect(int ns, const struct sockaddr_storage *addrs, size_t n, size_t *index, bool *pending,
		      sbx_error **err)
{
	if (netns_enter(ns, err) < 0)
		return -1;
	int fd = -1, last = ECONNREFUSED;
	for (; *index < n; (*index)++) {
		const struct sockaddr *sa = (const struct sockaddr *)&addrs[*index];
		socklen_t len = sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
		fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			last = errno;
			if (errno != EAFNOSUPPORT)
				break; /* out of descriptors or memory: so is every other try */
			continue;
		}
		if (connect(fd, sa, len) == 0) {
			*pending = false;
			break;
		}
		last = errno;
		if (errno == EINPROGRESS) {
			/* A connection to a local address is settled before
			 * connect returns (the answer is processed as the call
			 * releases the socket): refused, or established. It is
			 * still pending only when the stack deferred it. */
			int soerr = 0;
			socklen_t sl = sizeof(soerr);
			if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr == 0) {
				struct pollfd p = { .fd = fd, .events = POLLOUT };
				*pending = poll(&p, 1, 0) != 1 || (p.revents & (POLLERR | POLLHUP));
				break;
			}
			last = soerr ? soerr : errno;
		}
		sbx_closep(&fd);
	}
	netns_leave();
	if (fd < 0)
		return sbx_error_errno(err, last, "connect");
	return fd;
}

void sbx_nl_close(struct sbx_nl *nl)
{
	if (nl->sock)
		mnl_socket_close(nl->sock);
	nl->sock = NULL;
}

typedef int (*nl_data_cb)(const struct nlmsghdr *nlh, void *data);

static bool nl_holds_end(const char *buf, ssize_t n, uint32_t seq)
{
	int len = (int)n;
	for (const struct nlmsghdr *m = (const struct nlmsghdr *)buf; mnl_nlmsg_ok(m, len); m = mnl_nlmsg_next(m, &len))
		if (m->nlmsg_seq == seq && (m->nlmsg_type == NLMSG_DONE || m->nlmsg_type == NLMSG_ERROR))
			return true;
	return false;
}

/* Reads and drops what is left of the dump with sequence number seq, up
 * to its end (buf holds the last n bytes read), so that the socket can
 * carry the next request. */
static int nl_drain(struct sbx_nl *nl, uint32_t seq, char *buf, size_t size, ssize_t n)
{
	while (!nl_holds_end(buf, n, seq)) {
		n = mnl_socket_recvfrom(nl->sock, buf, size);
		if (n < 0)
			return -errno;
	}
	return 0;
}

/* Sends one request and reads until its ACK (or the end of a dump). A dump
 * that the kernel marks as cut by a concurrent change (links and routes
 * come and go while other containers start) is read again from the start,
 * a few times: the callbacks of dumps must take an entry seen twice. */
static int nl_talk(struct sbx_nl *nl, struct nlmsghdr *nlh, nl_data_cb cb, void *data)
{
	bool dump = (nlh->nlmsg_flags & NLM_F_DUMP) == NLM_F_DUMP;
	nlh->nlmsg_flags |= NLM_F_ACK;
	char buf[NL_BUF];
	for (int attempt = 0;; attempt++) {
		nlh->nlmsg_seq = ++nl->seq;
		if (mnl_socket_sendto(nl->sock, nlh, nlh->nlmsg_len) < 0)
			return -errno;
		for (;;) {
			ssize_t n = mnl_socket_recvfrom(nl->sock, buf, sizeof(buf));
			if (n < 0)
				return -errno;
			int r = mnl_cb_run(buf, (size_t)n, nl->seq, nl->portid, cb, data);
			if (r == MNL_CB_STOP)
				return 0;
			if (r >= 0)
				continue;
			int e = errno;
			if (!dump || e != EINTR || attempt >= 29)
				return -e;
			/* Interrupted: the rest of this dump first, then again,
			 * after a pause that grows up to 10 ms (a burst of
			 * changes passes; on a host where they never stop, a
			 * dump has to fall between two of them). */
			int d = nl_drain(nl, nl->seq, buf, sizeof(buf), n);
			if (d < 0)
				return d;
			usleep((useconds_t)(attempt < 10 ? attempt + 1 : 10) * 1000);
			break;
		}
	}
}

static struct nlmsghdr *link_msg(char *buf, uint16_t type, uint16_t flags, int ifindex)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | flags;
	struct ifinfomsg *ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_index = ifindex;
	return nlh;
}

struct link_info {
	int ifindex;
	uint32_t mtu;
	uint32_t group;
	char name[IFNAMSIZ];
};

static int link_attr_cb(const struct nlattr *attr, void *data)
{
	struct link_info *li = data;
	int type = mnl_attr_get_type(attr);
	if (type == IFLA_MTU && mnl_attr_validate(attr, MNL_TYPE_U32) >= 0)
		li->mtu = mnl_attr_get_u32(attr);
	else if (type == IFLA_GROUP && mnl_attr_validate(attr, MNL_TYPE_U32) >= 0)
		li->group = mnl_attr_get_u32(attr);
	else if (type == IFLA_IFNAME && mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) >= 0)
		snprintf(li->name, sizeof(li->name), "%s", mnl_attr_get_str(attr));
	return MNL_CB_OK;
}

static int link_cb(const struct nlmsghdr *nlh, void *data)
{
	struct link_info *li = data;
	const struct ifinfomsg *ifi = mnl_nlmsg_get_payload(nlh);
	li->ifindex = ifi->ifi_index;
	mnl_attr_parse(nlh, sizeof(*ifi), link_attr_cb, li);
	return MNL_CB_OK;
}

static int link_get(struct sbx_nl *nl, const char *name, int ifindex, struct link_info *li)
{
	char buf[NL_BUF];
	struct nlmsghdr *nlh = link_msg(buf, RTM_GETLINK, 0, ifindex);
	if (name)
		mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
	memset(li, 0, sizeof(*li));
	return nl_talk(nl, nlh, link_cb, li);
}

int sbx_nl_ifindex(struct sbx_nl *nl, const char *name, sbx_error **err)
{
	struct link_info li;
	int r = link_get(nl, name, 0, &li);
	if (r == -ENODEV)
		return 0;
	if (r < 0)
		return sbx_error_errno(err, -r, "look up link %s", name);
	return li.ifindex;
}

int sbx_nl_bridge_create(struct sbx_nl *nl, const char *name, sbx_error **err)
{
	char buf[NL_BUF];
	struct nlmsghdr *nlh = link_msg(buf, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, 0);
	mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
	struct nlattr *linfo = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
	mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "bridge");
	mnl_attr_nest_end(nlh, linfo);
	int r = nl_talk(nl, nlh, NULL, NULL);
	if (r < 0 && r != -EEXIST)
		return sbx_error_errno(err, -r, "create bridge %s", name);
	return 0;
}

int sbx_nl_veth_create(struct sbx_nl *nl, const struct sbx_nl_veth *v, sbx_error **err)
{
	char buf[NL_BUF];
	struct nlmsghdr *nlh = link_msg(buf, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, 0);
	struct ifinfomsg *ifi = mnl_nlmsg_get_payload(nlh);
	if (v->up) {
		ifi->ifi_flags = IFF_UP;
		ifi->ifi_change = IFF_UP;
	}
	mnl_attr_put_strz(nlh, IFLA_IFNAME, v->name);
	if (v->mtu)
		mnl_attr_put_u32(nlh, IFLA_MTU, v->mtu);
	if (v->group)
		mnl_attr_put_u32(nlh, IFLA_GROUP, v->group);
	if (v->mac)
		mnl_attr_put(nlh, IFLA_ADDRESS, 6, v->mac);
	struct nlattr *linfo = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
	mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "veth");
	struct nlattr *idata = mnl_attr_nest_start(nlh, IFLA_INFO_DATA);
	struct nlattr *peer = mnl_attr_nest_start(nlh, VETH_INFO_PEER);
	struct ifinfomsg *pifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*pifi));
	pifi->ifi_family = AF_UNSPEC;
	mnl_attr_put_strz(nlh, IFLA_IFNAME, v->peer_name);
	if (v->mtu)
		mnl_attr_put_u32(nlh, IFLA_MTU, v->mtu);
	if (v->peer_mac)
		mnl_attr_put(nlh, IFLA_ADDRESS, 6, v->peer_mac);
	mnl_attr_put_u32(nlh, IFLA_NET_NS_FD, (uint32_t)v->peer_netns_fd);
	mnl_attr_nest_end(nlh, peer);
	mnl_attr_nest_end(nlh, idata);
	mnl_attr_nest_end(nlh, linfo);
	int r = nl_talk(nl, nlh, NULL, NULL);
	if (r < 0)
		return sbx_error_errno(err, -r, "create veth pair %s", v->name);
	return 0;
}

int sbx_nl_link_delete(struct sbx_nl *nl, const char *name, sbx_error **err)
{
	char buf[NL_BUF];
	struct nlmsghdr *nlh = link_msg(buf, RTM_DELLINK, 0, 0);
	mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
	int r = nl_talk(nl, nlh, NULL, NULL);
	if (r < 0 && r != -ENODEV)
		return sbx_error_errno(err, -r, "delete link %s", name);
	return 0;
}

int sbx_nl_group_delete(struct sbx_nl *nl, uint32_t group, sbx_error **err)
{
	if (!group) /* every link is in group 0 */
		return sbx_error_set(err, SBX_ERR_INVALID_PARAMS, "delete links of group 0");
	char buf[NL_BUF];
	struct nlmsghdr *nlh = link_msg(buf, RTM_DELLINK, 0, 0);
	mnl_attr_put_u32(nlh, IFLA_GROUP, group);
	int r = nl_talk(nl, nlh, NULL, NULL);
	if (r < 0 && r != -ENODEV)
		return sbx_error_errno(err, -r, "delete the links of group %u", group);
	return 0;
}

int sbx_nl_link_up(struct sbx_nl *nl, int ifindex, uint32_t mtu, int master, sbx_error **err)
{
	char buf[NL_BUF];
	struct nlmsghdr *nlh = link_msg(buf, RTM_NEWLINK, 0, ifindex);
	struct ifinfomsg *ifi = mnl_nlmsg_get_payload(nlh);
	ifi->ifi_flags = IFF_UP;
	ifi->ifi_change = IFF_UP;
	if (mtu)
		mnl_attr_put_u32(nlh, IFLA_MTU, mtu);
	if (master)
		mnl_attr_put_u32(nlh, IFLA_MASTER, (uint32_t)master);
	int r = nl_talk(nl, nlh, NULL, NULL);
	if (r < 0)
		return sbx_error_errno(err, -r, "bring up link %d", ifindex);
	return 0;
}

static int addr_change(struct sbx_nl *nl, uint16_t type, uint16_t flags, int ifindex, struct in_addr addr, int prefix)
{
	char buf[NL_BUF];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | flags;
	struct ifaddrmsg *ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
	ifa->ifa_family = AF_INET;
	ifa->ifa_prefixlen = (unsigned char)prefix;
	ifa->ifa_scope = RT_SCOPE_UNIVERSE;
	ifa->ifa_index = (unsigned)ifindex;
	mnl_attr_put(nlh, IFA_LOCAL, sizeof(addr), &addr);
	mnl_attr_put(nlh, IFA_ADDRESS, sizeof(addr), &addr);
	return nl_talk(nl, nlh, NULL, NULL);
}

int sbx_nl_addr_add(struct sbx_nl *nl, int ifindex, struct in_addr addr, int prefix, sbx_error **err)
{
	int r = addr_change(nl, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, ifindex, addr, prefix);
	if (r < 0 && r != -EEXIST) {
		char s[INET_ADDRSTRLEN];
		inet_ntop(AF_INET, &addr, s, sizeof(s));
		return sbx_error_errno(err, -r, "add address %s/%d", s, prefix);
	}
	return 0;
}

int sbx_nl_addr_del(struct sbx_nl *nl, int ifindex, struct in_addr addr, int prefix, sbx_error **err)
{
	int r = addr_change(nl, RTM_DELADDR, 0, ifindex, addr, prefix);
	if (r < 0 && r != -EADDRNOTAVAIL && r != -ENODEV) {
		char s[INET_ADDRSTRLEN];
		inet_ntop(AF_INET, &addr, s, sizeof(s));
		return sbx_error_errno(err, -r, "remove address %s/%d", s, prefix);
	}
	return 0;
}

int sbx_nl_route_default(struct sbx_nl *nl, struct in_addr gateway, sbx_error **err)
{
	char buf[NL_BUF];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = RTM_NEWROUTE;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_CREATE | NLM_F_REPLACE;
	struct rtmsg *rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
	rtm->rtm_family = AF_INET;
	rtm->rtm_dst_len = 0;
	rtm->rtm_table = RT_TABLE_MAIN;
	rtm->rtm_protocol = RTPROT_STATIC;
	rtm->rtm_scope = RT_SCOPE_UNIVERSE;
	rtm->rtm_type = RTN_UNICAST;
	mnl_attr_put(nlh, RTA_GATEWAY, sizeof(gateway), &gateway);
	int r = nl_talk(nl, nlh, NULL, NULL);
	if (r < 0)
		return sbx_error_errno(err, -r, "add default route");
	return 0;
}

int sbx_nl_route_add(struct sbx_nl *nl, struct in_addr dst, int prefix, int oif, struct in_addr prefsrc,
		     sbx_error **err)
{
	char buf[NL_BUF];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = RTM_NEWROUTE;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL;
	struct rtmsg *rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
	rtm->rtm_family = AF_INET;
	rtm->rtm_dst_len = (unsigned char)prefix;
	rtm->rtm_table = RT_TABLE_MAIN;
	rtm->rtm_protocol = RTPROT_STATIC;
	rtm->rtm_scope = RT_SCOPE_LINK;
	rtm->rtm_type = RTN_UNICAST;
	mnl_attr_put(nlh, RTA_DST, sizeof(dst), &dst);
	mnl_attr_put_u32(nlh, RTA_OIF, (uint32_t)oif);
	if (prefsrc.s_addr)
		mnl_attr_put(nlh, RTA_PREFSRC, sizeof(prefsrc), &prefsrc);
	int r = nl_talk(nl, nlh, NULL, NULL);
	if (r < 0) {
		char s[INET_ADDRSTRLEN];
		inet_ntop(AF_INET, &dst, s, sizeof(s));
		if (r == -EEXIST)
			return sbx_error_errno(err, -r, "route %s/%d: the host already routes that address elsewhere", s,
					       prefix);
		return sbx_error_errno(err, -r, "add route %s/%d", s, prefix);
	}
	return 0;
}

int sbx_nl_neigh_add(struct sbx_nl *nl, int ifindex, struct in_addr addr, const uint8_t mac[6], sbx_error **err)
{
	char buf[NL_BUF];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = RTM_NEWNEIGH;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_CREATE | NLM_F_REPLACE;
	struct ndmsg *nd = mnl_nlmsg_put_extra_header(nlh, sizeof(*nd));
	nd->ndm_family = AF_INET;
	nd->ndm_ifindex = ifindex;
	nd->ndm_state = NUD_PERMANENT;
	nd->ndm_type = RTN_UNICAST;
	mnl_attr_put(nlh, NDA_DST, sizeof(addr), &addr);
	mnl_attr_put(nlh, NDA_LLADDR, 6, mac);
	int r = nl_talk(nl, nlh, NULL, NULL);
	if (r < 0) {
		char s[INET_ADDRSTRLEN];
		inet_ntop(AF_INET, &addr, s, sizeof(s));
		return sbx_error_errno(err, -r, "add neighbour %s on link %d", s, ifindex);
	}
	return 0;
}

struct route_scan {
	int oif;
	uint32_t best_metric;
	bool found;
};

static int route_attr_cb(const struct nlattr *attr, void *data)
{
	const struct nlattr **tb = data;
	int type = mnl_attr_get_type(attr);
	if (type <= RTA_MAX)
		tb[type] = attr;
	return MNL_CB_OK;
}

static int route_cb(const struct nlmsghdr *nlh, void *data)
{
	struct route_scan *rs = data;
	const struct rtmsg *rtm = mnl_nlmsg_get_payload(nlh);
	if (rtm->rtm_family != AF_INET || rtm->rtm_dst_len != 0 || rtm->rtm_table != RT_TABLE_MAIN ||
	    rtm->rtm_type != RTN_UNICAST)
		return MNL_CB_OK;
	const struct nlattr *tb[RTA_MAX + 1] = { 0 };
	mnl_attr_parse(nlh, sizeof(*rtm), route_attr_cb, tb);
	if (!tb[RTA_OIF] || mnl_attr_get_payload_len(tb[RTA_OIF]) < 4)
		return MNL_CB_OK;
	uint32_t metric = tb[RTA_PRIORITY] && mnl_attr_get_payload_len(tb[RTA_PRIORITY]) >= 4 ?
				  mnl_attr_get_u32(tb[RTA_PRIORITY]) :
				  0;
	if (!rs->found || metric < rs->best_metric) {
		rs->found = true;
		rs->best_metric = metric;
		rs->oif = (int)mnl_attr_get_u32(tb[RTA_OIF]);
	}
	return MNL_CB_OK;
}

static int uplink_get(struct sbx_nl *nl, struct link_info *li, sbx_error **err)
{
	memset(li, 0, sizeof(*li));
	char buf[NL_BUF];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = RTM_GETROUTE;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	struct rtmsg *rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
	rtm->rtm_family = AF_INET;
	struct route_scan rs = { 0 };
	int r = nl_talk(nl, nlh, route_cb, &rs);
	if (r < 0)
		return sbx_error_errno(err, -r, "read the routing table");
	if (!rs.found)
		return 0;
	r = link_get(nl, NULL, rs.oif, li);
	if (r < 0)
		return sbx_error_errno(err, -r, "look up the default route's link");
	return 1;
}

int sbx_nl_uplink(struct sbx_nl *nl, struct sbx_nl_uplink_info *out, sbx_error **err)
{
	struct link_info li;
	memset(out, 0, sizeof(*out));
	int r = uplink_get(nl, &li, err);
	if (r <= 0)
		return r;
	out->ifindex = li.ifindex;
	out->group = li.group;
	out->mtu = li.mtu;
	snprintf(out->name, sizeof(out->name), "%s", li.name);
	return 1;
}

int sbx_nl_uplink_mtu(struct sbx_nl *nl, uint32_t *mtu, sbx_error **err)
{
	*mtu = 0;
	char buf[NL_BUF];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = RTM_GETROUTE;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	struct rtmsg *rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
	rtm->rtm_family = AF_INET;
	struct route_scan rs = { 0 };
	int r = nl_talk(nl, nlh, route_cb, &rs);
	if (r < 0)
		return sbx_error_errno(err, -r, "read the routing table");
	if (!rs.found)
		return 0;
	struct link_info li;
	r = link_get(nl, NULL, rs.oif, &li);
	if (r < 0)
		return sbx_error_errno(err, -r, "look up the default route's link");
	*mtu = li.mtu;
	return 0;
}

/* ---- what holds IPv4 prefixes on the host ---- */

struct prefix_scan {
	struct sbx_nl_prefix *v;
	size_t n, cap;
	bool oom;
};

static struct sbx_nl_prefix *prefix_new(struct prefix_scan *ps)
{
	if (ps->n == ps->cap) {
		size_t cap = ps->cap ? ps->cap * 2 : 64;
		struct sbx_nl_prefix *grown = realloc(ps->v, cap * sizeof(*grown));
		if (!grown) {
			ps->oom = true;
			return NULL;
		}
		ps->v = grown;
		ps->cap = cap;
	}
	struct sbx_nl_prefix *p = &ps->v[ps->n++];
	memset(p, 0, sizeof(*p));
	return p;
}

static int prefix_route_cb(const struct nlmsghdr *nlh, void *data)
{
	struct prefix_scan *ps = data;
	const struct rtmsg *rtm = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *tb[RTA_MAX + 1] = { 0 };
	if (rtm->rtm_family != AF_INET)
		return MNL_CB_OK;
	mnl_attr_parse(nlh, sizeof(*rtm), route_attr_cb, tb);
	uint32_t table = rtm->rtm_table;
	if (tb[RTA_TABLE] && mnl_attr_get_payload_len(tb[RTA_TABLE]) >= 4)
		table = mnl_attr_get_u32(tb[RTA_TABLE]);
	/* The main table: where a host's networks are routed. Broadcast and
	 * local routes come with addresses, which are read as such. */
	if (table != RT_TABLE_MAIN || rtm->rtm_dst_len == 0 ||
	    (rtm->rtm_type != RTN_UNICAST && rtm->rtm_type != RTN_BLACKHOLE && rtm->rtm_type != RTN_UNREACHABLE &&
	     rtm->rtm_type != RTN_PROHIBIT))
		return MNL_CB_OK;
	if (!tb[RTA_DST] || mnl_attr_get_payload_len(tb[RTA_DST]) < 4)
		return MNL_CB_OK;
	struct sbx_nl_prefix *p = prefix_new(ps);
	if (!p)
		return MNL_CB_OK;
	memcpy(&p->net, mnl_attr_get_payload(tb[RTA_DST]), 4);
	p->prefix = rtm->rtm_dst_len;
	if (tb[RTA_OIF] && mnl_attr_get_payload_len(tb[RTA_OIF]) >= 4)
		p->ifindex = (int)mnl_attr_get_u32(tb[RTA_OIF]);
	p->kind = rtm->rtm_type == RTN_UNICAST ? SBX_NL_ROUTE : SBX_NL_ROUTE_DEAD;
	return MNL_CB_OK;
}

static int addr_attr_cb(const struct nlattr *attr, void *data)
{
	const struct nlattr **tb = data;
	int type = mnl_attr_get_type(attr);
	if (type <= IFA_MAX)
		tb[type] = attr;
	return MNL_CB_OK;
}

static int prefix_addr_cb(const struct nlmsghdr *nlh, void *data)
{
	struct prefix_scan *ps = data;
	const struct ifaddrmsg *ifa = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *tb[IFA_MAX + 1] = { 0 };
	if (ifa->ifa_family != AF_INET || ifa->ifa_scope == RT_SCOPE_HOST) /* loopback */
		return MNL_CB_OK;
	mnl_attr_parse(nlh, sizeof(*ifa), addr_attr_cb, tb);
	const struct nlattr *a = tb[IFA_LOCAL] ? tb[IFA_LOCAL] : tb[IFA_ADDRESS];
	if (!a || mnl_attr_get_payload_len(a) < 4)
		return MNL_CB_OK;
	struct sbx_nl_prefix *p = prefix_new(ps);
	if (!p)
		return MNL_CB_OK;
	memcpy(&p->addr, mnl_attr_get_payload(a), 4);
	p->prefix = ifa->ifa_prefixlen;
	uint32_t mask = p->prefix ? htonl(~0U << (32 - p->prefix)) : 0;
	p->net.s_addr = p->addr.s_addr & mask;
	p->ifindex = (int)ifa->ifa_index;
	p->kind = SBX_NL_ADDRESS;
	return MNL_CB_OK;
}

static int link_table_cb(const struct nlattr *attr, void *data)
{
	const struct nlattr **tb = data;
	int type = mnl_attr_get_type(attr);
	if (type <= IFLA_MAX)
		tb[type] = attr;
	return MNL_CB_OK;
}

struct link_names {
	struct sbx_nl_prefix *v;
	size_t n;
};

static int link_name_cb(const struct nlmsghdr *nlh, void *data)
{
	struct link_names *ln = data;
	const struct ifinfomsg *ifi = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *tb[IFLA_MAX + 1] = { 0 };
	mnl_attr_parse(nlh, sizeof(*ifi), link_table_cb, tb);
	for (size_t i = 0; i < ln->n; i++) {
		if (ln->v[i].ifindex != ifi->ifi_index)
			continue;
		if (tb[IFLA_IFNAME])
			snprintf(ln->v[i].ifname, sizeof(ln->v[i].ifname), "%s", mnl_attr_get_str(tb[IFLA_IFNAME]));
		if (tb[IFLA_GROUP] && mnl_attr_get_payload_len(tb[IFLA_GROUP]) >= 4)
			ln->v[i].group = mnl_attr_get_u32(tb[IFLA_GROUP]);
	}
	return MNL_CB_OK;
}

int sbx_nl_prefixes(struct sbx_nl *nl, struct sbx_nl_prefix **out, size_t *n, sbx_error **err)
{
	*out = NULL;
	*n = 0;
	struct prefix_scan ps = { 0 };
	char buf[NL_BUF];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = RTM_GETROUTE;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	struct rtmsg *rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
	rtm->rtm_family = AF_INET;
	int r = nl_talk(nl, nlh, prefix_route_cb, &ps);
	if (r < 0) {
		free(ps.v);
		return sbx_error_errno(err, -r, "read the routing table");
	}
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = RTM_GETADDR;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	struct ifaddrmsg *ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
	ifa->ifa_family = AF_INET;
	r = nl_talk(nl, nlh, prefix_addr_cb, &ps);
	if (r < 0) {
		free(ps.v);
		return sbx_error_errno(err, -r, "read the host's addresses");
	}
	if (ps.oom) {
		free(ps.v);
		return sbx_error_errno(err, ENOMEM, "read the routing table");
	}
	struct link_names ln = { ps.v, ps.n };
	nlh = link_msg(buf, RTM_GETLINK, NLM_F_DUMP, 0);
	r = nl_talk(nl, nlh, link_name_cb, &ln);
	if (r < 0) {
		free(ps.v);
		return sbx_error_errno(err, -r, "read the host's links");
	}
	*out = ps.v;
	*n = ps.n;
	return 0;
}

int sbx_nl_open_monitor(struct sbx_nl *nl, sbx_error **err)
{
	nl->sock = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (!nl->sock)
		return sbx_error_errno(err, errno, "open rtnetlink socket");
	/* Links too: a link's routes go with it (or when it goes down)
	 * without a route announcement of their own. */
	if (mnl_socket_bind(nl->sock, RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV4_ROUTE, MNL_SOCKET_AUTOPID) < 0) {
		int e = errno;
		mnl_socket_close(nl->sock);
		nl->sock = NULL;
		return sbx_error_errno(err, e, "listen to route changes");
	}
	return mnl_socket_get_fd(nl->sock);
}

static bool own_change(const struct nlmsghdr *nlh, struct in_addr own, int own_prefix, uint32_t own_group)
{
	if (nlh->nlmsg_type == RTM_NEWLINK || nlh->nlmsg_type == RTM_DELLINK) {
		struct link_info li = { 0 };
		link_cb(nlh, &li);
		return own_group && li.group == own_group;
	}
	if (nlh->nlmsg_type != RTM_NEWROUTE && nlh->nlmsg_type != RTM_DELROUTE)
		return false;
	const struct rtmsg *rtm = mnl_nlmsg_get_payload(nlh);
	if (rtm->rtm_family != AF_INET || rtm->rtm_dst_len != 32)
		return false;
	const struct nlattr *tb[RTA_MAX + 1] = { 0 };
	mnl_attr_parse(nlh, sizeof(*rtm), route_attr_cb, tb);
	if (!tb[RTA_DST] || mnl_attr_get_payload_len(tb[RTA_DST]) < 4)
		return false;
	struct in_addr dst;
	memcpy(&dst, mnl_attr_get_payload(tb[RTA_DST]), 4);
	return own.s_addr && sbx_cidr_contains(own, own_prefix, dst);
}

int sbx_nl_monitor_drain(struct sbx_nl *nl, struct in_addr own, int own_prefix, uint32_t own_group)
{
	char buf[NL_BUF];
	int count = 0;
	for (;;) {
		ssize_t n = recv(mnl_socket_get_fd(nl->sock), buf, sizeof(buf), MSG_DONTWAIT);
		if (n < 0 && errno == ENOBUFS) { /* overrun: changes were lost, so something changed */
			count++;
			continue;
		}
		if (n <= 0)
			return count;
		int len = (int)n;
		for (const struct nlmsghdr *nlh = (const void *)buf; mnl_nlmsg_ok(nlh, len); nlh = mnl_nlmsg_next(nlh, &len))
			if (!own_change(nlh, own, own_prefix, own_group))
				count++;
	}
}

const char *sbx_nl_errno_limit(int errnum)
{
	switch (errnum) {
	case ENOMEM:
	case ENOBUFS:
		return "out of kernel memory: the host's, or the memory limit of the daemon's cgroup";
	case EXFULL:
	case ENOSPC:
		return "a kernel table of the host's network is full";
	case EMFILE:
		return "the daemon's open file limit (RLIMIT_NOFILE, LimitNOFILE= in its unit)";
	case ENFILE:
		return "the host's open file limit (fs.file-max)";
	default:
		return NULL;
	}
}

int sbx_cidr_parse(const char *s, struct in_addr *net, int *prefix)
{
	char tmp[INET_ADDRSTRLEN + 4];
	if (strlen(s) >= sizeof(tmp))
		return -1;
	strcpy(tmp, s);
	int p = 32;
	char *slash = strchr(tmp, '/');
	if (slash) {
		*slash = '\0';
		char *end;
		if (!slash[1] || slash[1] == '+' || slash[1] == '-')
			return -1;
		errno = 0;
		long v = strtol(slash + 1, &end, 10);
		if (errno || *end || v < 0 || v > 32)
			return -1;
		p = (int)v;
	}
	struct in_addr a;
	if (inet_pton(AF_INET, tmp, &a) != 1)
		return -1;
	uint32_t mask = p ? htonl(~0U << (32 - p)) : 0;
	net->s_addr = a.s_addr & mask;
	*prefix = p;
	return 0;
}

bool sbx_cidr_contains(struct in_addr net, int prefix, struct in_addr addr)
{
	uint32_t mask = prefix ? htonl(~0U << (32 - prefix)) : 0;
	return (addr.s_addr & mask) == (net.s_addr & mask);
}

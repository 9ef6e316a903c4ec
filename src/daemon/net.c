/* Networking of bridged sandboxes. The bridge and the nftables table
 * belong to this daemon alone (their names come from the configuration),
 * so two daemons on one host never share state; nothing here lists or
 * changes links, addresses or tables it did not create. */
#include "config.h"
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "httphead.h"
#include "net.h"
#include "netlink.h"
#include "netlock.h"
#include "proxy.h"
#include "sandbox.h"
#include "spawn.h"

#define MAX_DNS 3
#define HEAD_MAX 16384
#define HEAD_TIMEOUT_MS 15000
#define COOKIE_NAME "sbx_preview_token"
#define GW_MAX_PENDING 256
#define DIAL_TIMEOUT_MS 10000

struct sbx_publish {
	struct sbx_publish *next;
	struct sbx_sandbox *sb;
	uint16_t port, host_port;
	char host_ip[INET_ADDRSTRLEN];
	int fd;
	struct sbx_watch *w;
};

struct token {
	struct token *next;
	char token[65];
	char sandbox[13];
	uint16_t port;
	int64_t expires_ns;
};

struct gw_conn {
	struct gw_conn *next;
	struct sbx_net *net;
	int fd;
	struct sbx_watch *w, *timer;
	/* Once the head is read and the token checked: the sandbox's port,
	 * and while a connection to it is pending, its socket. */
	char id[13];
	uint16_t port;
	size_t dial_index;
	int backend;
	struct sbx_watch *bw;
	size_t len;
	char buf[HEAD_MAX];
};

struct sbx_net {
	struct sbx_daemon *d;
	bool enabled;
	struct sbx_netlock lock; /* held from start to shutdown */
	char bridge[16];
	char table[64];
	struct sbx_cidr subnet;
	struct in_addr gateway;
	uint32_t group; /* device group of the sandboxes' host links: the bridge's ifindex */
	uint32_t mtu;
	struct in_addr dns[MAX_DNS];
	size_t n_dns;
	struct sbx_cidr *forbidden;
	size_t n_forbidden;
	int gw_fd;
	struct sbx_watch *gw_w;
	char gw_addr[96]; /* host:port */
	struct token *tokens;
	struct gw_conn *conns;
	size_t n_conns;
};

bool sbx_net_available(struct sbx_daemon *d)
{
	return d->net && d->net->enabled;
}

struct in_addr sbx_net_gateway(struct sbx_daemon *d)
{
	struct in_addr none = { 0 };
	return d->net ? d->net->gateway : none;
}

static void ip_str(struct in_addr a, char out[INET_ADDRSTRLEN])
{
	inet_ntop(AF_INET, &a, out, INET_ADDRSTRLEN);
}

static void veth_name(const struct sbx_sandbox *sb, char out[16])
{
	snprintf(out, 16, "sv%s", sb->id);
}

/* "a/b, c/d" → array */
static int parse_cidr_list(const char *key, const char *s, struct sbx_cidr **out, size_t *n, sbx_error **err)
{
	*out = NULL;
	*n = 0;
	if (!s)
		return 0;
	_cleanup_free_ char *copy = strdup(s);
	if (!copy)
		return sbx_error_errno(err, ENOMEM, "%s", key);
	for (char *save = NULL, *tok = strtok_r(copy, ", \t", &save); tok; tok = strtok_r(NULL, ", \t", &save)) {
		struct sbx_cidr c;
		if (sbx_cidr_parse(tok, &c.net, &c.prefix) < 0) {
			free(*out);
			*out = NULL;
			*n = 0;
			return sbx_error_set(err, SBX_ERR_INVALID_PARAMS, "%s: '%s' is not an IPv4 address or CIDR", key, tok);
		}
		struct sbx_cidr *grown = realloc(*out, (*n + 1) * sizeof(**out));
		if (!grown) {
			free(*out);
			*out = NULL;
			*n = 0;
			return sbx_error_errno(err, ENOMEM, "%s", key);
		}
		*out = grown;
		(*out)[(*n)++] = c;
	}
	return 0;
}

/* The host's IPv4 resolvers, without 127.0.0.0/8 stubs (systemd-resolved,
 * dnsmasq): those listen on the host's loopback, which a sandbox cannot
 * reach. */
static void host_resolvers(struct sbx_net *net)
{
	_cleanup_free_ char *text = NULL;
	if (sbx_read_file_at(AT_FDCWD, "/etc/resolv.conf", 65536, &text, NULL, NULL) < 0)
		return;
	for (char *save = NULL, *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char addr[64];
		struct in_addr a;
		if (sscanf(line, " nameserver %63s", addr) != 1 || inet_pton(AF_INET, addr, &a) != 1)
			continue;
		if ((ntohl(a.s_addr) >> 24) == 127 || net->n_dns == MAX_DNS)
			continue;
		net->dns[net->n_dns++] = a;
	}
}

char *sbx_net_resolv(struct sbx_daemon *d)
{
	struct sbx_buf b = { 0 };
	sbx_buf_printf(&b, "# written by sandboxd\n");
	for (size_t i = 0; d->net && i < d->net->n_dns; i++) {
		char s[INET_ADDRSTRLEN];
		ip_str(d->net->dns[i], s);
		sbx_buf_printf(&b, "nameserver %s\n", s);
	}
	if (!b.data)
		return strdup("");
	return b.data;
}

static int write_sysctl(const char *path, const char *value, sbx_error **err)
{
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, value, strlen(value)) < 0)
		return sbx_error_errno(err, errno, "write %s", path);
	return 0;
}

static void gw_accept(struct sbx_watch *w, uint32_t events, void *data);

/* "host:port" → bound listening socket */
static int listen_tcp(const char *ip, uint16_t port, uint16_t *bound, sbx_error **err)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	if (inet_pton(AF_INET, ip, &sa.sin_addr) != 1)
		return sbx_error_param(err, "host_ip", "'%s' is not an IPv4 address", ip);
	_cleanup_close_ int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return sbx_error_errno(err, errno, "socket");
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		sbx_error_errno(err, e, "listen on %s:%u", ip, (unsigned)port);
		if (e == EADDRINUSE)
			(*err)->code = SBX_ERR_EXISTS;
		return -1;
	}
	if (listen(fd, 128) < 0)
		return sbx_error_errno(err, errno, "listen on %s:%u", ip, (unsigned)port);
	socklen_t sl = sizeof(sa);
	getsockname(fd, (struct sockaddr *)&sa, &sl);
	*bound = ntohs(sa.sin_port);
	return sbx_take_fd(&fd);
}

static int gateway_listen(struct sbx_net *net, sbx_error **err)
{
	const char *spec = net->d->cfg.preview_listen;
	if (!spec || !*spec)
		return 0;
	char ip[64];
	const char *colon = strrchr(spec, ':');
	int64_t port;
	if (!colon || (size_t)(colon - spec) >= sizeof(ip) || sbx_parse_int64(colon + 1, 0, 65535, &port) < 0)
		return sbx_error_set(err, SBX_ERR_INVALID_PARAMS, "preview_listen: '%s' is not ADDRESS:PORT", spec);
	memcpy(ip, spec, (size_t)(colon - spec));
	ip[colon - spec] = '\0';
	uint16_t bound;
	net->gw_fd = listen_tcp(ip, (uint16_t)port, &bound, err);
	if (net->gw_fd < 0)
		return sbx_error_prefix(err, "preview gateway");
	net->gw_w = sbx_loop_watch(net->d->loop, net->gw_fd, EPOLLIN, gw_accept, net);
	if (!net->gw_w)
		return sbx_error_errno(err, errno, "preview gateway");
	snprintf(net->gw_addr, sizeof(net->gw_addr), "%s:%u", ip, (unsigned)bound);
	sbx_info("preview gateway on http://%s (domain %s)", net->gw_addr, net->d->cfg.preview_domain);
	return 0;
}

struct others_check {
	struct sbx_net *net;
	struct sbx_nl *nl;
	sbx_error **err;
};

/* Another daemon's subnet that overlaps ours: both would hand out the
 * same addresses. A record whose owner is gone still counts while its
 * bridge is there: its sandboxes may be running with those addresses. */
static int check_other(const struct sbx_netlock_record *r, bool held, void *data)
{
	struct others_check *c = data;
	struct sbx_cidr o;
	if (!r->subnet || sbx_cidr_parse(r->subnet, &o.net, &o.prefix) < 0)
		return 0;
	int shorter = o.prefix < c->net->subnet.prefix ? o.prefix : c->net->subnet.prefix;
	if (!sbx_cidr_contains(o.net, shorter, c->net->subnet.net))
		return 0;
	if (!held && sbx_nl_ifindex(c->nl, r->bridge, NULL) <= 0)
		return 0;
	return sbx_error_set(c->err, SBX_ERR_EXISTS,
			     "subnet %s overlaps subnet %s of bridge %s, %s the sandboxd with pid %d (state dir '%s'); "
			     "give each daemon a subnet of its own (subnet in sandboxd.conf)",
			     c->net->d->cfg.net_subnet, r->subnet, r->bridge, held ? "held by" : "left by", (int)r->pid,
			     r->state_dir ? r->state_dir : "?");
}

/* One daemon per bridge, and per subnet. The bridge, the table and the
 * routes of a network belong to the daemon whose record is in its lock
 * file: a second daemon configured with the same bridge or an overlapping
 * subnet refuses to start, and a daemon never adopts a link of that name
 * that another daemon left behind, or that no daemon made. 1: no lock can
 * be had here, so no bridge networking either. */
static int take_network(struct sbx_net *net, sbx_error **err)
{
	const struct sbx_config *c = &net->d->cfg;
	struct sbx_netlock_record prev;
	sbx_error *e = NULL;
	if (sbx_netlock_take(SBX_NETLOCK_DIR, net->bridge, &net->lock, &prev, &e) < 0) {
		int r = -1;
		if (e->code == SBX_ERR_EXISTS) {
			sbx_error_set(err, e->code, "%s; give this daemon a bridge and subnet of its own (bridge, subnet "
				      "in sandboxd.conf)", e->msg);
		} else if (!e->errnum) { /* another daemon starting, an untrusted directory */
			sbx_error_set(err, e->code, "network lock: %s", e->msg);
		} else {
			/* A host where the lock cannot be had (a read-only /run)
			 * loses bridge networking, not the daemon. */
			sbx_warn("bridge networking is unavailable: network lock: %s", e->msg);
			r = 1;
		}
		sbx_error_free(e);
		return r;
	}
	int r = 0;
	struct sbx_nl nl = { 0 };
	if (sbx_nl_open(&nl, NULL) == 0) {
		int br = sbx_nl_ifindex(&nl, net->bridge, NULL);
		if (br > 0 && prev.pid && (!prev.state_dir || strcmp(prev.state_dir, c->state_dir)))
			r = sbx_error_set(err, SBX_ERR_EXISTS,
					  "bridge %s was left by the sandboxd with state dir '%s' (pid %d, no longer "
					  "running), whose sandboxes may still use it; start that daemon again to take it "
					  "back, or give this one a bridge of its own",
					  net->bridge, prev.state_dir ? prev.state_dir : "?", (int)prev.pid);
		else if (br > 0 && !prev.pid)
			r = sbx_error_set(err, SBX_ERR_EXISTS,
					  "a link named %s exists that no sandboxd owns; give this daemon another bridge "
					  "(bridge in sandboxd.conf) or delete that link",
					  net->bridge);
		struct others_check oc = { net, &nl, err };
		if (r == 0)
			r = sbx_netlock_each_other(&net->lock, check_other, &oc);
		sbx_nl_close(&nl);
	}
	bool had_record = prev.pid != 0;
	sbx_netlock_record_free(&prev);
	char subnet[INET_ADDRSTRLEN + 4];
	ip_str(net->subnet.net, subnet);
	snprintf(subnet + strlen(subnet), 5, "/%d", net->subnet.prefix);
	struct sbx_netlock_record me = { .pid = getpid(), .state_dir = c->state_dir, .socket = c->socket_path,
					 .subnet = subnet };
	if (r < 0 || sbx_netlock_commit(&net->lock, &me, err) < 0) {
		/* Another owner's record stays; a file made just now goes. */
		sbx_netlock_release(&net->lock, !had_record);
		return -1;
	}
	return 0;
}

/* The bridge with the gateway's address (and so the subnet's route),
 * forwarding, and the uplink's MTU for the sandboxes' links. */
static int bridge_up(struct sbx_net *net, struct sbx_nl *nl, int *br, sbx_error **err)
{
	if (sbx_nl_open(nl, err) < 0 || sbx_nl_uplink_mtu(nl, &net->mtu, err) < 0 ||
	    sbx_nl_bridge_create(nl, net->bridge, err) < 0 || (*br = sbx_nl_ifindex(nl, net->bridge, err)) <= 0 ||
	    sbx_nl_addr_add(nl, *br, net->gateway, net->subnet.prefix, err) < 0 ||
	    sbx_nl_link_up(nl, *br, 0, 0, err) < 0 || write_sysctl("/proc/sys/net/ipv4/ip_forward", "1", err) < 0)
		return -1;
	return 0;
}

int sbx_net_init(struct sbx_daemon *d, sbx_error **err)
{
	struct sbx_net *net = calloc(1, sizeof(*net));
	if (!net)
		return sbx_error_errno(err, ENOMEM, "network");
	net->d = d;
	net->gw_fd = -1;
	net->lock = (struct sbx_netlock)SBX_NETLOCK_INIT;
	d->net = net;
	const struct sbx_config *c = &d->cfg;
	if (!sbx_netlock_name_valid(c->net_bridge))
		return sbx_error_set(err, SBX_ERR_INVALID_PARAMS,
				     "bridge: '%s' is not a link name (1 to 15 characters, no '/', ':' or spaces)",
				     c->net_bridge);
	snprintf(net->bridge, sizeof(net->bridge), "%s", c->net_bridge);
	/* The table is named after the bridge: one daemon, one of each. */
	snprintf(net->table, sizeof(net->table), "sandboxd-%s", net->bridge);
	if (sbx_cidr_parse(c->net_subnet, &net->subnet.net, &net->subnet.prefix) < 0 || net->subnet.prefix > 30 ||
	    net->subnet.prefix < 8)
		return sbx_error_set(err, SBX_ERR_INVALID_PARAMS, "subnet: '%s' is not an IPv4 CIDR from /8 to /30",
				     c->net_subnet);
	net->gateway.s_addr = htonl(ntohl(net->subnet.net.s_addr) + 1);
	if (parse_cidr_list("forbidden_out", c->net_forbidden, &net->forbidden, &net->n_forbidden, err) < 0)
		return -1;
	if (c->net_dns && *c->net_dns) {
		_cleanup_free_ struct sbx_cidr *list = NULL;
		size_t n = 0;
		if (parse_cidr_list("dns", c->net_dns, &list, &n, err) < 0)
			return -1;
		for (size_t i = 0; i < n && net->n_dns < MAX_DNS; i++)
			net->dns[net->n_dns++] = list[i].net;
	} else {
		host_resolvers(net);
		if (!net->n_dns)
			sbx_warn("no resolver of /etc/resolv.conf is reachable from sandboxes (loopback stubs are not); "
				 "set dns in sandboxd.conf");
	}
	int taken = take_network(net, err);
	if (taken < 0)
		return -1;

	sbx_error *e = NULL;
	struct sbx_nl nl = { 0 };
	int br = 0;
	if (taken > 0) {
		net->enabled = false;
	} else if (bridge_up(net, &nl, &br, &e) < 0) {
		sbx_warn("bridge networking is unavailable: %s", e ? e->msg : "bridge not found");
		sbx_error_free(e);
		if (nl.sock)
			sbx_nl_link_delete(&nl, net->bridge, NULL); /* nothing half made stays */
		sbx_nl_close(&nl);
		net->enabled = false;
	} else {
		sbx_nl_close(&nl);
		if (!net->mtu)
			net->mtu = 1500;
		net->group = (uint32_t)br;
		net->enabled = true;
		char gw[INET_ADDRSTRLEN];
		ip_str(net->gateway, gw);
		sbx_info("bridge %s %s/%d (the gateway; sandboxes' links are routed, device group %u), mtu %u, "
			 "nftables table inet %s", net->bridge, gw, net->subnet.prefix, net->group, net->mtu, net->table);
	}
	/* A taken port disables previews, not the daemon. */
	sbx_error *ge = NULL;
	if (gateway_listen(net, &ge) < 0) {
		if (ge->code == SBX_ERR_INVALID_PARAMS) {
			*err = ge;
			return -1;
		}
		sbx_warn("%s; net.preview is unavailable", ge->msg);
		sbx_error_free(ge);
	}
	return 0;
}

/* ---- addresses ---- */

static bool ip_used(struct sbx_daemon *d, struct in_addr a)
{
	for (struct sbx_sandbox *sb = d->sandboxes; sb; sb = sb->next)
		if (sb->net.ip.s_addr == a.s_addr)
			return true;
	return false;
}

/* Round robin from a cursor kept in the state dir, so an address is not
 * handed out again soon after its sandbox was deleted (stale conntrack
 * entries, clients that still have it). */
int sbx_net_allocate(struct sbx_daemon *d, struct in_addr *out, sbx_error **err)
{
	struct sbx_net *net = d->net;
	uint32_t base = ntohl(net->subnet.net.s_addr);
	uint32_t size = net->subnet.prefix ? 1U << (32 - net->subnet.prefix) : 0;
	uint32_t cursor = 0;
	_cleanup_free_ char *text = NULL;
	if (sbx_read_file_at(d->state_fd, "net-allocator", 64, &text, NULL, NULL) == 0) {
		struct in_addr a;
		char *nl = strchr(text, '\n');
		if (nl)
			*nl = '\0';
		if (inet_pton(AF_INET, text, &a) == 1 && sbx_cidr_contains(net->subnet.net, net->subnet.prefix, a))
			cursor = ntohl(a.s_addr) - base;
	}
	/* .0 is the network, .1 the bridge, the last the broadcast. */
	for (uint32_t k = 1; k <= size; k++) {
		uint32_t off = (cursor + k) % size;
		if (off < 2 || off == size - 1)
			continue;
		struct in_addr a = { htonl(base + off) };
		if (ip_used(d, a))
			continue;
		char s[INET_ADDRSTRLEN + 1];
		ip_str(a, s);
		strcat(s, "\n");
		if (sbx_write_file_atomic_at(d->state_fd, "net-allocator", s, strlen(s), 0600, err) < 0)
			return sbx_error_prefix(err, "address allocator");
		*out = a;
		return 0;
	}
	return sbx_error_set(err, SBX_ERR_LIMIT, "every address of subnet %s is taken; delete sandboxes or widen it",
			     d->cfg.net_subnet);
}

/* ---- links ---- */

/* The two ends' Ethernet addresses, from the sandbox's IPv4 address: set
 * explicitly, so that udev's MAC policy leaves them alone and the
 * permanent neighbour entries stay right. Locally administered, unicast. */
static void link_macs(struct in_addr ip, uint8_t host[6], uint8_t peer[6])
{
	host[0] = 0x06;
	peer[0] = 0x02;
	host[1] = peer[1] = 0x00;
	memcpy(host + 2, &ip.s_addr, 4);
	memcpy(peer + 2, &ip.s_addr, 4);
}

/* A kernel limit that stopped the network's set-up is a limit error that
 * names it, not an internal one. */
static void name_limit(sbx_error **err)
{
	const char *what = err && *err ? sbx_nl_errno_limit((*err)->errnum) : NULL;
	if (what) {
		_cleanup_free_ char *msg = strdup((*err)->msg);
		if (msg)
			sbx_error_set(err, SBX_ERR_LIMIT, "%s (%s)", msg, what);
	}
}

/* A routed link, no bridge port: the host end sv<id> (in the daemon's
 * device group, no address) has a /32 route to the sandbox and a
 * permanent neighbour entry for it; eth0 inside has the sandbox's address
 * in the subnet, a permanent neighbour entry for the gateway and the
 * default route through it. Nothing is learnt by ARP either way, and a
 * sandbox's link reaches the host alone. */
int sbx_net_attach(struct sbx_sandbox *sb, sbx_error **err)
{
	struct sbx_net *net = sb->d->net;
	if (!sbx_net_available(sb->d))
		return sbx_error_set(err, SBX_ERR_UNSUPPORTED, "bridge networking is unavailable on this host");
	char path[64], name[16];
	snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)sb->init_pid);
	veth_name(sb, name);
	_cleanup_close_ int nsfd = open(path, O_RDONLY | O_CLOEXEC);
	if (nsfd < 0)
		return sbx_error_errno(err, errno, "open network namespace of init %d", (int)sb->init_pid);
	/* The pid could have been reused between our check and the open. */
	if (sbx_proc_starttime(sb->init_pid) != sb->init_starttime)
		return sbx_error_set(err, SBX_ERR_BAD_STATE, "init of sandbox %s is gone", sb->id);
	uint8_t host_mac[6], peer_mac[6];
	link_macs(sb->net.ip, host_mac, peer_mac);
	struct sbx_nl_veth veth = { .name = name, .peer_name = "eth0", .peer_netns_fd = nsfd, .mtu = net->mtu,
				    .group = net->group, .mac = host_mac, .peer_mac = peer_mac, .up = true };
	struct sbx_nl host = { 0 }, in = { 0 };
	int r = -1, hidx, idx;
	if (sbx_nl_open(&host, err) < 0)
		return -1;
	/* A pair left by a daemon that did not shut down cleanly is replaced
	 * (its route and neighbour entry go with it). */
	if (sbx_nl_link_delete(&host, name, err) < 0 || sbx_nl_open_in(&in, nsfd, err) < 0)
		goto out;
	if (sbx_nl_link_delete(&in, "eth0", err) < 0 || sbx_nl_veth_create(&host, &veth, err) < 0)
		goto out;
	if ((hidx = sbx_nl_ifindex(&host, name, err)) <= 0 || (idx = sbx_nl_ifindex(&in, "eth0", err)) <= 0) {
		if (err && !*err)
			sbx_error_errno(err, ENODEV, "link %s or its peer is missing", name);
		goto out;
	}
	if (sbx_nl_route_add(&host, sb->net.ip, 32, hidx, net->gateway, err) < 0 ||
	    sbx_nl_neigh_add(&host, hidx, sb->net.ip, peer_mac, err) < 0)
		goto out;
	if (sbx_nl_addr_add(&in, idx, sb->net.ip, net->subnet.prefix, err) < 0 ||
	    sbx_nl_link_up(&in, idx, 0, 0, err) < 0 || sbx_nl_neigh_add(&in, idx, net->gateway, host_mac, err) < 0 ||
	    sbx_nl_route_default(&in, net->gateway, err) < 0)
		goto out;
	r = 0;
out:
	sbx_nl_close(&in);
	if (r < 0)
		sbx_nl_link_delete(&host, name, NULL);
	sbx_nl_close(&host);
	if (r < 0) {
		name_limit(err);
		return sbx_error_prefix(err, "network of sandbox %s", sb->id);
	}
	return 0;
}

/* ---- preview tokens ----
 * Kept in memory for the gateway and in sandboxes/<id>/preview (0600, in
 * the root-only state dir), one "PORT TOKEN EXPIRES_NS" line each, so that
 * links handed out survive a restart of the daemon. Stop and delete revoke
 * them: the file goes with them. */

static void token_free(struct token *t)
{
	explicit_bzero(t->token, sizeof(t->token));
	free(t);
}

static void forget_tokens(struct sbx_net *net, const char *id)
{
	for (struct token **pp = &net->tokens; *pp;) {
		struct token *t = *pp;
		if (!strcmp(t->sandbox, id)) {
			*pp = t->next;
			token_free(t);
		} else {
			pp = &t->next;
		}
	}
}

static void tokens_rel(const char *id, char *rel, size_t n)
{
	snprintf(rel, n, "sandboxes/%s/preview", id);
}

/* Rewrites the file from memory, leaving out expired tokens; no file
 * when none is left. */
static int save_tokens(struct sbx_net *net, const char *id, sbx_error **err)
{
	char rel[64];
	tokens_rel(id, rel, sizeof(rel));
	struct sbx_buf b = { 0 };
	int64_t now = sbx_now_ns();
	for (struct token *t = net->tokens; t; t = t->next) {
		if (strcmp(t->sandbox, id) || (t->expires_ns && t->expires_ns <= now))
			continue;
		char line[128];
		int n = snprintf(line, sizeof(line), "%u %s %lld\n", (unsigned)t->port, t->token, (long long)t->expires_ns);
		if (sbx_buf_append(&b, line, (size_t)n) < 0) {
			explicit_bzero(line, sizeof(line));
			sbx_buf_free(&b);
			return sbx_error_errno(err, ENOMEM, "preview tokens");
		}
		explicit_bzero(line, sizeof(line));
	}
	int r = 0;
	if (!b.len) {
		if (unlinkat(net->d->state_fd, rel, 0) < 0 && errno != ENOENT)
			r = sbx_error_errno(err, errno, "remove %s", rel);
	} else {
		r = sbx_write_file_atomic_at(net->d->state_fd, rel, b.data, b.len, 0600, err);
	}
	if (b.data)
		explicit_bzero(b.data, b.len);
	sbx_buf_free(&b);
	return r;
}

static void revoke_tokens(struct sbx_net *net, const char *id)
{
	forget_tokens(net, id);
	sbx_error *e = NULL;
	if (save_tokens(net, id, &e) < 0) {
		sbx_warn("sandbox %s: %s", id, e->msg);
		sbx_error_free(e);
	}
}

void sbx_net_drop_previews(struct sbx_daemon *d, const char *id)
{
	char rel[64];
	tokens_rel(id, rel, sizeof(rel));
	unlinkat(d->state_fd, rel, 0);
}

static void load_tokens(struct sbx_net *net, struct sbx_sandbox *sb)
{
	char rel[64], *text = NULL;
	size_t len = 0;
	tokens_rel(sb->id, rel, sizeof(rel));
	if (sbx_read_file_at(net->d->state_fd, rel, 1 << 20, &text, &len, NULL) < 0)
		return;
	int64_t now = sbx_now_ns();
	char *save = NULL;
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		unsigned port = 0;
		char tok[65] = "";
		long long exp = 0;
		if (sscanf(line, "%u %64[0-9a-f] %lld", &port, tok, &exp) != 3 || strlen(tok) != 64 || !port ||
		    port > 65535 || exp < 0 || (exp && exp <= now))
			continue;
		struct token *t = calloc(1, sizeof(*t));
		if (!t)
			break;
		memcpy(t->token, tok, sizeof(t->token));
		explicit_bzero(tok, sizeof(tok));
		memcpy(t->sandbox, sb->id, sizeof(t->sandbox));
		t->port = (uint16_t)port;
		t->expires_ns = exp;
		t->next = net->tokens;
		net->tokens = t;
	}
	explicit_bzero(text, len);
	free(text);
}

void sbx_net_detach(struct sbx_sandbox *sb)
{
	struct sbx_net *net = sb->d->net;
	if (!net)
		return;
	revoke_tokens(net, sb->id);
	/* Its sockets inside the namespace go too, so nothing holds it. */
	sbx_proxy_close_owner(sb->id);
	/* The link, its route and its neighbour entry go with the sandbox's
	 * network namespace, which the kernel tears down (in batches) once
	 * its last process is gone. Deleting the link here instead would
	 * hold the loop for an RCU grace period per sandbox; a start finds
	 * and replaces a link not yet gone. */
}

static void publish_close(struct sbx_publish *p)
{
	if (p->w)
		sbx_loop_unwatch(p->w);
	if (p->fd >= 0)
		close(p->fd);
	p->w = NULL;
	p->fd = -1;
}

void sbx_net_release(struct sbx_sandbox *sb)
{
	sbx_net_detach(sb);
	for (struct sbx_publish *p = sb->net.ports; p; p = p->next)
		publish_close(p);
}

void sbx_net_free(struct sbx_sandbox_net *n)
{
	while (n->ports) {
		struct sbx_publish *p = n->ports;
		n->ports = p->next;
		publish_close(p);
		free(p);
	}
	free(n->allow);
	free(n->deny);
	n->allow = n->deny = NULL;
	n->n_allow = n->n_deny = 0;
}

int sbx_net_apply_rules(struct sbx_daemon *d, sbx_error **err)
{
	struct sbx_net *net = d->net;
	if (!sbx_net_available(d))
		return 0;
	size_t n = 0;
	for (struct sbx_sandbox *sb = d->sandboxes; sb; sb = sb->next)
		n += sb->net.ip.s_addr != 0;
	_cleanup_free_ struct sbx_nft_sandbox *list = calloc(n ? n : 1, sizeof(*list));
	if (!list)
		return sbx_error_errno(err, ENOMEM, "firewall rules");
	n = 0;
	for (struct sbx_sandbox *sb = d->sandboxes; sb; sb = sb->next) {
		if (!sb->net.ip.s_addr || sb->deleted)
			continue;
		list[n++] = (struct sbx_nft_sandbox){ sb->net.ip, sb->net.allow, sb->net.n_allow, sb->net.deny,
						      sb->net.n_deny };
	}
	struct sbx_nft_config cfg = {
		.table = net->table,
		.group = net->group,
		.subnet = net->subnet,
		.dns = net->dns,
		.n_dns = net->n_dns,
		.forbidden = net->forbidden,
		.n_forbidden = net->n_forbidden,
		.sandboxes = list,
		.n_sandboxes = n,
	};
	if (sbx_nft_apply(&cfg, err) < 0) {
		name_limit(err);
		return -1;
	}
	return 0;
}

/* ---- published ports ---- */

/* A sandbox's port is reached from inside its network namespace, on its
 * loopback first: a service bound to 127.0.0.1 (a dev server, a
 * debugger's port, a notebook) answers there as well as one bound to every
 * address; then ::1 (a service bound to "localhost" that resolved to it),
 * then the sandbox's own address (a service bound to eth0 alone). The
 * kernel refuses a local address with nothing listening within the
 * connect call, so trying them costs no round trip. */
#define DIAL_CANDIDATES 3

static int dial_sandbox(struct sbx_sandbox *sb, uint16_t port, size_t *index, bool *pending, sbx_error **err)
{
	if ((sb->state != SBX_STATE_STARTED && sb->state != SBX_STATE_PAUSED) || sb->stopping || !sb->net.ip.s_addr ||
	    sb->init_pidfd < 0)
		return sbx_error_set(err, SBX_ERR_BAD_STATE, "sandbox %s is not running", sb->id);
	struct sockaddr_storage to[DIAL_CANDIDATES];
	memset(to, 0, sizeof(to));
	struct sockaddr_in *lo4 = (struct sockaddr_in *)&to[0], *own = (struct sockaddr_in *)&to[2];
	struct sockaddr_in6 *lo6 = (struct sockaddr_in6 *)&to[1];
	lo4->sin_family = own->sin_family = AF_INET;
	lo4->sin_port = own->sin_port = lo6->sin6_port = htons(port);
	lo4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	own->sin_addr = sb->net.ip;
	lo6->sin6_family = AF_INET6;
	lo6->sin6_addr = in6addr_loopback;
	return sbx_netns_connect(sb->init_pidfd, to, DIAL_CANDIDATES, index, pending, err);
}

static void publish_accept(struct sbx_watch *w, uint32_t events, void *data)
{
	struct sbx_publish *p = data;
	for (int i = 0; i < 64; i++) {
		int c = accept4(p->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (c < 0)
			return;
		/* Raw TCP has no way to say why: nothing listening is a close. */
		size_t index = 0;
		bool pending = false;
		int b = dial_sandbox(p->sb, p->port, &index, &pending, NULL);
		if (b < 0) {
			close(c);
			continue;
		}
		p->sb->activity_ns = sbx_now_ns();
		sbx_proxy_start(p->sb->d->loop, c, b, pending, NULL, 0, p->sb->id);
	}
}

static int publish_open(struct sbx_publish *p, sbx_error **err)
{
	uint16_t bound;
	p->fd = listen_tcp(p->host_ip, p->host_port, &bound, err);
	if (p->fd < 0)
		return -1;
	p->host_port = bound;
	p->w = sbx_loop_watch(p->sb->d->loop, p->fd, EPOLLIN, publish_accept, p);
	if (!p->w) {
		publish_close(p);
		return sbx_error_errno(err, errno, "watch port");
	}
	return 0;
}

int sbx_net_publish(struct sbx_sandbox *sb, uint16_t port, uint16_t host_port, const char *host_ip,
		    uint16_t *bound, sbx_error **err)
{
	if (!sb->net.ip.s_addr)
		return sbx_error_set(err, SBX_ERR_BAD_STATE, "sandbox %s has no network (mode %s); only bridged sandboxes "
				     "can publish ports", sb->name, sb->network_mode);
	for (struct sbx_publish *p = sb->net.ports; p; p = p->next)
		if (p->port == port)
			return sbx_error_set(err, SBX_ERR_EXISTS, "port %u of sandbox %s is already published on %s:%u",
					     (unsigned)port, sb->name, p->host_ip, (unsigned)p->host_port);
	struct sbx_publish *p = calloc(1, sizeof(*p));
	if (!p)
		return sbx_error_errno(err, ENOMEM, "publish");
	p->sb = sb;
	p->port = port;
	p->host_port = host_port;
	p->fd = -1;
	snprintf(p->host_ip, sizeof(p->host_ip), "%s", host_ip);
	if (publish_open(p, err) < 0) {
		free(p);
		return -1;
	}
	struct sbx_publish **pp = &sb->net.ports;
	while (*pp)
		pp = &(*pp)->next;
	*pp = p;
	*bound = p->host_port;
	sbx_info("sandbox %s: port %u published on %s:%u", sb->id, (unsigned)port, p->host_ip, (unsigned)p->host_port);
	return 0;
}

int sbx_net_unpublish(struct sbx_sandbox *sb, uint16_t port, sbx_error **err)
{
	for (struct sbx_publish **pp = &sb->net.ports; *pp; pp = &(*pp)->next) {
		struct sbx_publish *p = *pp;
		if (p->port != port)
			continue;
		*pp = p->next;
		publish_close(p);
		free(p);
		return 0;
	}
	return sbx_error_set(err, SBX_ERR_NOT_FOUND, "port %u of sandbox %s is not published; see 'sandboxctl net ports "
			     "%s'", (unsigned)port, sb->name, sb->name);
}

struct sbx_publish *sbx_net_ports_next(struct sbx_sandbox *sb, struct sbx_publish *prev, uint16_t *port,
				       uint16_t *host_port, const char **host_ip)
{
	struct sbx_publish *p = prev ? prev->next : sb->net.ports;
	if (p) {
		*port = p->port;
		*host_port = p->host_port;
		*host_ip = p->host_ip;
	}
	return p;
}

/* Internal to loading: a saved publication, opened by sbx_net_recover. */
int sbx_net_ports_add_saved(struct sbx_sandbox *sb, uint16_t port, uint16_t host_port, const char *host_ip);
int sbx_net_ports_add_saved(struct sbx_sandbox *sb, uint16_t port, uint16_t host_port, const char *host_ip)
{
	struct sbx_publish *p = calloc(1, sizeof(*p));
	if (!p)
		return -1;
	p->sb = sb;
	p->port = port;
	p->host_port = host_port;
	p->fd = -1;
	snprintf(p->host_ip, sizeof(p->host_ip), "%s", host_ip);
	struct sbx_publish **pp = &sb->net.ports;
	while (*pp)
		pp = &(*pp)->next;
	*pp = p;
	return 0;
}

/* ---- restart and shutdown ---- */

void sbx_net_recover(struct sbx_daemon *d)
{
	/* Links a daemon that did not shut down cleanly left are replaced:
	 * all at once (one grace period), then made again one by one. */
	if (sbx_net_available(d)) {
		struct sbx_nl nl = { 0 };
		sbx_error *e = NULL;
		if (sbx_nl_open(&nl, &e) < 0 || sbx_nl_group_delete(&nl, d->net->group, &e) < 0)
			sbx_warn("network: %s", e->msg);
		sbx_error_free(e);
		sbx_nl_close(&nl);
	}
	for (struct sbx_sandbox *sb = d->sandboxes; sb; sb = sb->next) {
		sbx_error *e = NULL;
		if (sb->net.ip.s_addr && (sb->state == SBX_STATE_STARTED || sb->state == SBX_STATE_PAUSED) &&
		    sbx_net_attach(sb, &e) < 0) {
			sbx_warn("%s", e->msg);
			sbx_error_free(e);
			e = NULL;
		}
		if (d->net && sb->net.ip.s_addr && (sb->state == SBX_STATE_STARTED || sb->state == SBX_STATE_PAUSED))
			load_tokens(d->net, sb);
		for (struct sbx_publish *p = sb->net.ports; p; p = p->next) {
			if (p->fd < 0 && publish_open(p, &e) < 0) {
				sbx_warn("sandbox %s: port %u stays unpublished: %s", sb->id, (unsigned)p->port, e->msg);
				sbx_error_free(e);
				e = NULL;
			}
		}
	}
	sbx_error *e = NULL;
	if (sbx_net_apply_rules(d, &e) < 0) {
		sbx_warn("firewall: %s", e->msg);
		sbx_error_free(e);
	}
}

static void gw_conn_free(struct gw_conn *c);

void sbx_net_shutdown(struct sbx_daemon *d)
{
	struct sbx_net *net = d->net;
	if (!net)
		return;
	sbx_proxy_close_all();
	while (net->conns)
		gw_conn_free(net->conns);
	if (net->gw_w)
		sbx_loop_unwatch(net->gw_w);
	sbx_closep(&net->gw_fd);
	while (net->tokens) { /* kept on disk for the next start */
		struct token *t = net->tokens;
		net->tokens = t->next;
		token_free(t);
	}
	bool clean = true;
	if (net->enabled) {
		struct sbx_nl nl = { 0 };
		sbx_error *e = NULL;
		if (sbx_nl_open(&nl, &e) == 0) {
			if (sbx_nl_group_delete(&nl, net->group, &e) < 0 || sbx_nl_link_delete(&nl, net->bridge, &e) < 0)
				clean = false;
			sbx_nl_close(&nl);
		} else {
			clean = false;
		}
		if (e)
			sbx_warn("%s", e->msg);
		sbx_error_free(e);
		e = NULL;
		if (sbx_nft_remove(net->table, &e) < 0) {
			sbx_warn("%s", e->msg);
			clean = false;
		}
		sbx_error_free(e);
	}
	for (struct sbx_sandbox *sb = d->sandboxes; sb; sb = sb->next)
		for (struct sbx_publish *p = sb->net.ports; p; p = p->next)
			publish_close(p);
	/* With nothing of ours left in the kernel, the next owner of the
	 * bridge's name starts clean; what could not be removed stays ours. */
	sbx_netlock_release(&net->lock, clean);
	free(net->forbidden);
	free(net);
	d->net = NULL;
}

/* ---- preview gateway ---- */

int sbx_net_preview(struct sbx_sandbox *sb, uint16_t port, int64_t expires_ns, char token[65], char *url,
		    size_t urlsz, char *gateway, size_t gwsz, sbx_error **err)
{
	struct sbx_net *net = sb->d->net;
	if (!net || net->gw_fd < 0)
		return sbx_error_set(err, SBX_ERR_UNSUPPORTED, "the preview gateway is disabled (preview_listen is empty)");
	if (!sb->net.ip.s_addr)
		return sbx_error_set(err, SBX_ERR_BAD_STATE, "sandbox %s has no network (mode %s)", sb->name,
				     sb->network_mode);
	if (sb->state != SBX_STATE_STARTED && sb->state != SBX_STATE_PAUSED)
		return sbx_error_set(err, SBX_ERR_BAD_STATE, "sandbox %s is %s; start it first", sb->name,
				     sbx_state_name(sb->state));
	uint8_t raw[32];
	if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
		return sbx_error_errno(err, errno, "random token");
	struct token *t = calloc(1, sizeof(*t));
	if (!t)
		return sbx_error_errno(err, ENOMEM, "preview");
	for (size_t i = 0; i < sizeof(raw); i++)
		snprintf(t->token + 2 * i, 3, "%02x", raw[i]);
	explicit_bzero(raw, sizeof(raw));
	memcpy(t->sandbox, sb->id, sizeof(t->sandbox));
	t->port = port;
	t->expires_ns = expires_ns;
	t->next = net->tokens;
	net->tokens = t;
	if (save_tokens(net, sb->id, err) < 0) {
		net->tokens = t->next;
		token_free(t);
		return -1;
	}
	memcpy(token, t->token, 65);
	const char *colon = strrchr(net->gw_addr, ':');
	snprintf(url, urlsz, "http://%u-%s.%s%s/", (unsigned)port, sb->id, sb->d->cfg.preview_domain,
		 colon && strcmp(colon, ":80") ? colon : "");
	snprintf(gateway, gwsz, "%s", net->gw_addr);
	return 0;
}

/* Constant time, so the gateway's answer times reveal nothing of a token. */
static bool token_equal(const char *a, const char *b, size_t blen)
{
	size_t alen = strlen(a);
	unsigned diff = alen != blen;
	for (size_t i = 0; i < alen; i++)
		diff |= (unsigned char)a[i] ^ (unsigned char)(i < blen ? b[i] : 0);
	return diff == 0;
}

static bool token_valid(struct sbx_net *net, const char *id, uint16_t port, struct sbx_http_str tok)
{
	int64_t now = sbx_now_ns();
	bool ok = false;
	for (struct token **pp = &net->tokens; *pp;) {
		struct token *t = *pp;
		if (t->expires_ns && t->expires_ns <= now) {
			*pp = t->next;
			token_free(t);
			continue;
		}
		if (!strcmp(t->sandbox, id) && t->port == port && token_equal(t->token, tok.p, tok.n))
			ok = true;
		pp = &t->next;
	}
	return ok;
}

static void gw_conn_free(struct gw_conn *c)
{
	for (struct gw_conn **pp = &c->net->conns; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			c->net->n_conns--;
			break;
		}
	}
	if (c->w)
		sbx_loop_unwatch(c->w);
	if (c->timer)
		sbx_loop_unwatch(c->timer);
	if (c->bw)
		sbx_loop_unwatch(c->bw);
	if (c->backend >= 0)
		close(c->backend);
	if (c->fd >= 0)
		close(c->fd);
	free(c);
}

/* A complete answer of the gateway itself; the body is one line of text
 * (the status line's words unless told). */
static void gw_reply_text(struct gw_conn *c, const char *status, const char *extra, const char *text)
{
	char msg[2048];
	if (!text)
		text = status;
	int n = snprintf(msg, sizeof(msg),
			 "HTTP/1.1 %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %zu\r\n"
			 "Connection: close\r\nCache-Control: no-store\r\n%s\r\n%s\n",
			 status, strlen(text) + 1, extra ? extra : "", text);
	if (n > 0)
		send(c->fd, msg, (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
	gw_conn_free(c);
}

static void gw_reply(struct gw_conn *c, const char *status, const char *extra)
{
	gw_reply_text(c, status, extra, NULL);
}

static void forward_head(struct sbx_buf *out, const char *buf, size_t len, const struct sbx_http_head *h)
{
	const char *eol = memchr(buf, '\n', h->len);
	if (!eol || sbx_buf_append(out, buf, (size_t)(eol - buf) + 1) < 0)
		goto fail;
	for (size_t i = 0; i < h->n_headers; i++) {
		const struct sbx_http_header *hd = &h->headers[i];
		if (hd->name.n == 15 && !strncasecmp(hd->name.p, "X-Sandbox-Token", 15))
			continue;
		if (hd->name.n == 6 && !strncasecmp(hd->name.p, "Cookie", 6)) {
			struct sbx_buf ck = { 0 };
			const char *p = hd->value.p, *end = hd->value.p + hd->value.n;
			while (p < end) {
				const char *semi = memchr(p, ';', (size_t)(end - p));
				const char *e = semi ? semi : end;
				while (p < e && (*p == ' ' || *p == '\t'))
					p++;
				size_t n = (size_t)(e - p);
				if (n && !(n > sizeof(COOKIE_NAME) - 1 && !memcmp(p, COOKIE_NAME "=", sizeof(COOKIE_NAME))))
					sbx_buf_printf(&ck, "%s%.*s", ck.len ? "; " : "", (int)n, p);
				p = e + 1;
			}
			if (ck.len)
				sbx_buf_printf(out, "Cookie: %.*s\r\n", (int)ck.len, ck.data);
			sbx_buf_free(&ck);
			continue;
		}
		sbx_buf_printf(out, "%.*s: %.*s\r\n", (int)hd->name.n, hd->name.p, (int)hd->value.n, hd->value.p);
	}
	if (sbx_buf_append(out, "\r\n", 2) < 0 || sbx_buf_append(out, buf + h->len, len - h->len) < 0)
		goto fail;
	return;
fail:
	sbx_buf_free(out);
	*out = (struct sbx_buf){ 0 };
}

static void gw_dial(struct gw_conn *c);

static void gw_route(struct gw_conn *c, const struct sbx_http_head *h)
{
	struct sbx_net *net = c->net;
	const struct sbx_http_header *host = sbx_http_header_find(h, "Host");
	uint16_t port;
	char id[13];
	if (!host || sbx_http_preview_host(host->value, net->d->cfg.preview_domain, &port, id) < 0) {
		gw_reply(c, "404 Not Found", NULL);
		return;
	}
	struct sbx_http_str tok = { 0 };
	const struct sbx_http_header *hdr = sbx_http_header_find(h, "X-Sandbox-Token");
	bool from_query = false;
	if (hdr) {
		tok = hdr->value;
	} else if (sbx_http_query_get(h->target, "token", &tok)) {
		from_query = true;
	} else {
		for (size_t i = 0; i < h->n_headers && !tok.p; i++) {
			const struct sbx_http_header *ck = &h->headers[i];
			if (ck->name.n == 6 && !strncasecmp(ck->name.p, "Cookie", 6))
				sbx_http_cookie_get(ck->value, COOKIE_NAME, &tok);
		}
	}
	if (!tok.p || !token_valid(net, id, port, tok)) {
		gw_reply(c, "401 Unauthorized", NULL);
		return;
	}
	if (from_query) {
		/* The token moves into a cookie for this host only, and leaves
		 * the address bar and the history. */
		char clean[4096], extra[4096 + 256];
		size_t need = sbx_http_query_remove(h->target, "token", clean, sizeof(clean));
		if (need >= sizeof(clean) || !need) {
			gw_reply(c, "414 URI Too Long", NULL);
			return;
		}
		snprintf(extra, sizeof(extra), "Location: %s\r\nSet-Cookie: " COOKIE_NAME "=%.*s; Path=/; HttpOnly; "
			 "SameSite=Lax\r\n", clean, (int)tok.n, tok.p);
		gw_reply(c, "302 Found", extra);
		return;
	}
	memcpy(c->id, id, sizeof(c->id));
	c->port = port;
	c->dial_index = 0;
	/* The client's further bytes wait in its socket until the sandbox
	 * answers; only its hang-up is still noticed. */
	sbx_loop_modify(c->w, 0);
	gw_dial(c);
}

/* The connection to the sandbox is there: the head goes on, without the
 * credentials of the gateway (the app has no use for them), then any body
 * bytes already read, as they came, and the proxy takes both sockets. */
static void gw_forward(struct gw_conn *c, struct sbx_sandbox *sb, int b)
{
	struct sbx_http_head h;
	if (sbx_http_parse_head(c->buf, c->len, &h) <= 0) { /* parsed once already */
		close(b);
		gw_reply(c, "400 Bad Request", NULL);
		return;
	}
	sb->activity_ns = sbx_now_ns();
	int a = c->fd;
	c->fd = -1;
	/* epoll knows an fd once: the proxy's watch replaces ours. */
	sbx_loop_unwatch(c->w);
	c->w = NULL;
	struct sbx_buf fwd = { 0 };
	forward_head(&fwd, c->buf, c->len, &h);
	if (fwd.data)
		sbx_proxy_start(c->net->d->loop, a, b, false, fwd.data, fwd.len, sb->id);
	else
		sbx_proxy_start(c->net->d->loop, a, b, false, c->buf, c->len, sb->id);
	sbx_buf_free(&fwd);
	gw_conn_free(c);
}

static void gw_timeout(struct sbx_watch *t, void *data);

static void gw_connected(struct sbx_watch *w, uint32_t events, void *data)
{
	struct gw_conn *c = data;
	int soerr = 0;
	socklen_t sl = sizeof(soerr);
	if (getsockopt(c->backend, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
		soerr = errno;
	if (soerr || (events & (EPOLLERR | EPOLLHUP))) {
		/* Refused late (the stack had deferred it): the next address. */
		sbx_loop_unwatch(c->bw);
		c->bw = NULL;
		sbx_closep(&c->backend);
		c->dial_index++;
	}
	gw_dial(c);
}

static void gw_dial(struct gw_conn *c)
{
	struct sbx_sandbox *sb = sbx_sandbox_find(c->net->d, c->id);
	char text[160];
	if (c->backend >= 0) { /* the pending connection has been made */
		sbx_loop_unwatch(c->bw);
		c->bw = NULL;
		int b = sbx_take_fd(&c->backend);
		if (!sb) {
			close(b);
		} else {
			gw_forward(c, sb, b);
			return;
		}
	}
	sbx_error *e = NULL;
	bool pending = false;
	int b = sb ? dial_sandbox(sb, c->port, &c->dial_index, &pending, &e) : -1;
	if (b < 0) {
		if (!sb || !e || e->code == SBX_ERR_BAD_STATE)
			snprintf(text, sizeof(text), "sandbox %s is not running", c->id);
		else if (e->errnum == ECONNREFUSED)
			snprintf(text, sizeof(text), "sandbox %s: nothing listens on port %u", c->id, (unsigned)c->port);
		else
			snprintf(text, sizeof(text), "sandbox %s: port %u: %s", c->id, (unsigned)c->port, e->msg);
		sbx_error_free(e);
		gw_reply_text(c, "502 Bad Gateway", NULL, text);
		return;
	}
	if (!pending) {
		gw_forward(c, sb, b);
		return;
	}
	c->backend = b;
	c->bw = sbx_loop_watch(c->net->d->loop, b, EPOLLOUT, gw_connected, c);
	if (c->timer)
		sbx_loop_unwatch(c->timer);
	c->timer = sbx_loop_timer(c->net->d->loop, DIAL_TIMEOUT_MS, gw_timeout, c);
	if (!c->bw || !c->timer) {
		snprintf(text, sizeof(text), "sandbox %s: port %u: %s", c->id, (unsigned)c->port, strerror(errno));
		gw_reply_text(c, "502 Bad Gateway", NULL, text);
	}
}

static void gw_read(struct sbx_watch *w, uint32_t events, void *data)
{
	struct gw_conn *c = data;
	if (c->port) { /* routed: connecting to the sandbox; a hang-up ends it */
		if (events & (EPOLLHUP | EPOLLERR))
			gw_conn_free(c);
		return;
	}
	for (;;) {
		ssize_t n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			gw_conn_free(c);
			return;
		}
		c->len += (size_t)n;
		struct sbx_http_head h;
		int r = sbx_http_parse_head(c->buf, c->len, &h);
		if (r < 0) {
			gw_reply(c, "400 Bad Request", NULL);
			return;
		}
		if (r > 0) {
			gw_route(c, &h);
			return;
		}
		if (c->len == sizeof(c->buf)) {
			gw_reply(c, "431 Request Header Fields Too Large", NULL);
			return;
		}
	}
}

static void gw_timeout(struct sbx_watch *t, void *data)
{
	struct gw_conn *c = data;
	c->timer = NULL;
	if (c->port) {
		char text[160];
		snprintf(text, sizeof(text), "sandbox %s: port %u did not answer within %d s", c->id, (unsigned)c->port,
			 DIAL_TIMEOUT_MS / 1000);
		gw_reply_text(c, "504 Gateway Timeout", NULL, text);
		return;
	}
	gw_reply(c, "408 Request Timeout", NULL);
}

static void gw_accept(struct sbx_watch *w, uint32_t events, void *data)
{
	struct sbx_net *net = data;
	for (int i = 0; i < 64; i++) {
		int fd = accept4(net->gw_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		/* Heads being read hold 16 KiB each: bounded, oldest dropped. */
		if (net->n_conns >= GW_MAX_PENDING) {
			struct gw_conn *oldest = net->conns;
			while (oldest && oldest->next)
				oldest = oldest->next;
			if (oldest)
				gw_conn_free(oldest);
		}
		struct gw_conn *c = malloc(sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		c->net = net;
		c->fd = fd;
		c->len = 0;
		c->port = 0;
		c->backend = -1;
		c->bw = NULL;
		c->next = net->conns;
		net->conns = c;
		net->n_conns++;
		c->w = sbx_loop_watch(net->d->loop, fd, EPOLLIN, gw_read, c);
		c->timer = sbx_loop_timer(net->d->loop, HEAD_TIMEOUT_MS, gw_timeout, c);
		if (!c->w || !c->timer)
			gw_conn_free(c);
	}
}

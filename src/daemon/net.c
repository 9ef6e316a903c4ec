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

#include "firewalls.h"
#include "hostcheck.h"
#include "httphead.h"
#include "net.h"
#include "netlink.h"
#include "netlock.h"
#include "proxy.h"
#include "registry/sandbox.h"
#include "spawn.h"

#define MAX_DNS 3
#define HEAD_MAX 16384
#define HEAD_TIMEOUT_MS 15000
/* The cookie a ?token= moves into: this name followed by _ID_PORT, so that
 * links that share a host (127.0.0.1 on many ports) keep theirs apart;
 * the bare name is what earlier versions set. */
#define COOKIE_NAME "sbx_preview_token"
/* Live tokens with an expiry a link holds at most. */
#define LINK_MAX_TOKENS 256
/* A link's listener that could not be had is tried again this often. */
#define LINK_RETRY_MS 10000
#define GW_MAX_PENDING 256
#define DIAL_TIMEOUT_MS 10000
/* Changes to the host's routes or to other tables are looked at once they
 * settle: a firewall reload or a container start is a burst of them. */
#define SETTLE_MS 300
/* A firewalld zone binding that failed is tried again after this, doubled
 * at each failure up to FW_RETRY_MAX_MS: firewalld answers nobody while it
 * reloads (seconds on a busy host), and after the reload's ruleset is in
 * nothing else changes to wake the check up. */
#define FW_RETRY_MS 2000
#define FW_RETRY_MAX_MS (5 * 60 * 1000)
/* The subnet every bridged daemon took before subnets came from a pool:
 * kept by a daemon that has sandboxes from then, when it is still free. */
#define FORMER_DEFAULT_SUBNET "10.88.0.0/16"
/* Names of the sandboxes' host links start with this (veth_name). */
#define LINK_PREFIX "sv"

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
	int64_t expires_ns; /* 0: the link's persistent token */
};

/* A sandbox port reachable through the gateway, from its first net.preview
 * to the sandbox's delete or net.unpreview: its tokens, and, for URLs of
 * the port form, a listener of its own on the gateway's address. */
struct link {
	struct link *next;
	struct sbx_net *net;
	char sandbox[13];
	uint16_t port;        /* in the sandbox */
	uint16_t listen_port; /* 0: none; the URL is of the host form */
	int fd;               /* -1 while not listening */
	struct sbx_watch *w;
	bool warned;   /* that its port could not be had */
	bool revoking; /* left out of the file being written */
	struct token *tokens;
};

struct gw_conn {
	struct gw_conn *next;
	struct sbx_net *net;
	int fd;
	struct sbx_watch *w, *timer;
	/* The sandbox's port: known from the start on a link's own listener
	 * (fixed), from the Host header on the shared one. Once the head is
	 * read and the token checked (routed), while a connection to it is
	 * pending, its socket. */
	char id[13];
	uint16_t port;
	bool fixed, routed;
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
	char subnet_str[SBX_CIDR_STRLEN];
	const char *subnet_origin; /* where it came from, in words */
	/* The host's other networks: prefixes overlapping the subnet, as
	 * last seen, and the watch on route and address changes. */
	struct sbx_nl_prefix *conflicts;
	size_t n_conflicts;
	char *conflict_said; /* what the log said last */
	struct sbx_nl routes_mon;
	struct sbx_watch *routes_w, *routes_settle;
	/* Other firewalls: the rules and zone binding sandboxd added, the
	 * last judgement, and the watch on ruleset changes. */
	char fw_tag[64];
	struct sbx_nl_uplink_info uplink;
	bool fw_added;        /* our rules are (or were) in iptables' filter table */
	bool fw_bound;        /* LINK_PREFIX+ is in firewalld_zone */
	char *fw_bind_said;   /* why the zone binding failed, as last logged */
	char *fw_said;        /* the warnings the log holds, to say changes only */
	struct sbx_fw_monitor fw_mon;
	struct sbx_watch *fw_w, *fw_settle, *fw_retry;
	int64_t fw_retry_ms; /* the next retry's delay; 0: none failed */
	struct in_addr gateway;
	uint32_t group; /* device group of the sandboxes' host links: the bridge's ifindex */
	uint32_t mtu;
	struct in_addr dns[MAX_DNS];
	size_t n_dns;
	struct sbx_cidr *forbidden;
	size_t n_forbidden;
	bool gw_enabled;  /* preview_listen names an address */
	char gw_ip[64];   /* its address; links of the port form listen there too */
	int gw_fd;        /* the shared listener (URLs of the host form); -1: none */
	struct sbx_watch *gw_w;
	char gw_addr[96]; /* host:port */
	uint16_t gw_port;
	bool port_form;          /* new links get URLs http://URL_HOST:PORT */
	char url_host[256];      /* the host of those URLs */
	uint16_t pool_lo, pool_hi; /* preview_ports; 0: none */
	uint8_t pool_used[65536 / 8];
	struct link *links;
	struct sbx_watch *retry;
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

/* preview_listen, preview_url and preview_ports: a mistake in them stops
 * the daemon, as any configuration error does. */
static int gateway_config(struct sbx_net *net, sbx_error **err)
{
	const struct sbx_config *c = &net->d->cfg;
	const char *spec = c->preview_listen;
	if (!spec || !*spec)
		return 0;
	const char *colon = strrchr(spec, ':');
	int64_t port;
	struct in_addr a;
	if (!colon || (size_t)(colon - spec) >= sizeof(net->gw_ip) || sbx_parse_int64(colon + 1, 0, 65535, &port) < 0)
		return sbx_error_set(err, SBX_ERR_INVALID_PARAMS, "preview_listen: '%s' is not ADDRESS:PORT", spec);
	memcpy(net->gw_ip, spec, (size_t)(colon - spec));
	net->gw_ip[colon - spec] = '\0';
	if (inet_pton(AF_INET, net->gw_ip, &a) != 1)
		return sbx_error_set(err, SBX_ERR_INVALID_PARAMS, "preview_listen: '%s' is not an IPv4 address",
				     net->gw_ip);
	net->gw_port = (uint16_t)port;
	const char *pool = c->preview_ports ? c->preview_ports : "";
	if (*pool) {
		unsigned lo = 0, hi = 0;
		int used = 0;
		if (sscanf(pool, "%u-%u%n", &lo, &hi, &used) != 2 || pool[used] || !lo || lo > hi || hi > 65535)
			return sbx_error_set(err, SBX_ERR_INVALID_PARAMS,
					     "preview_ports: '%s' is not a range LOW-HIGH of ports (1 to 65535)", pool);
		net->pool_lo = (uint16_t)lo;
		net->pool_hi = (uint16_t)hi;
	}
	const char *form = c->preview_url ? c->preview_url : "auto";
	bool local_domain = !strcasecmp(c->preview_domain, "localhost");
	if (!strcmp(form, "port"))
		net->port_form = true;
	else if (!strcmp(form, "auto"))
		/* Names under localhost resolve in browsers and curl but not in
		 * glibc without nss-myhostname (stock Debian): a client such as
		 * Python's urllib needs an address. A real domain is the
		 * operator's, with its wildcard DNS. */
		net->port_form = local_domain && net->pool_lo;
	else if (strcmp(form, "host"))
		return sbx_error_set(err, SBX_ERR_INVALID_PARAMS, "preview_url: '%s' is not auto, port or host", form);
	if (net->port_form && !net->pool_lo)
		return sbx_error_set(err, SBX_ERR_INVALID_PARAMS, "preview_url = port needs a range in preview_ports");
	if (!local_domain)
		snprintf(net->url_host, sizeof(net->url_host), "%s", c->preview_domain);
	else
		snprintf(net->url_host, sizeof(net->url_host), "%s", a.s_addr == INADDR_ANY ? "127.0.0.1" : net->gw_ip);
	net->gw_enabled = true;
	return 0;
}

/* The shared listener, which routes by the Host header. */
static int gateway_listen(struct sbx_net *net, sbx_error **err)
{
	if (!net->gw_enabled)
		return 0;
	uint16_t bound;
	net->gw_fd = listen_tcp(net->gw_ip, net->gw_port, &bound, err);
	if (net->gw_fd < 0)
		return sbx_error_prefix(err, "preview gateway");
	net->gw_w = sbx_loop_watch(net->d->loop, net->gw_fd, EPOLLIN, gw_accept, net);
	if (!net->gw_w) {
		sbx_closep(&net->gw_fd);
		return sbx_error_errno(err, errno, "preview gateway");
	}
	net->gw_port = bound;
	snprintf(net->gw_addr, sizeof(net->gw_addr), "%s:%u", net->gw_ip, (unsigned)bound);
	if (net->port_form)
		sbx_info("preview gateway on http://%s (domain %s); links get URLs http://%s:PORT, PORT from %u-%u",
			 net->gw_addr, net->d->cfg.preview_domain, net->url_host, (unsigned)net->pool_lo,
			 (unsigned)net->pool_hi);
	else
		sbx_info("preview gateway on http://%s; links get URLs http://PORT-ID.%s", net->gw_addr,
			 net->d->cfg.preview_domain);
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
			     c->net->subnet_str, r->subnet, r->bridge, held ? "held by" : "left by", (int)r->pid,
			     r->state_dir ? r->state_dir : "?");
}

/* Another daemon running on this network stack (its bridge is here: a
 * daemon in another network namespace has another firewall). */
static int other_running(const struct sbx_netlock_record *r, bool held, void *data)
{
	(void)data;
	struct sbx_nl nl = { 0 };
	int here = held && sbx_nl_open(&nl, NULL) == 0 && sbx_nl_ifindex(&nl, r->bridge, NULL) > 0;
	sbx_nl_close(&nl);
	return here;
}

/* ---- the subnet ---- */

struct taken {
	struct sbx_cidr *v;
	size_t n, cap;
	struct sbx_nl *nl;
};

static void taken_add(struct taken *t, struct sbx_cidr c)
{
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 32;
		struct sbx_cidr *grown = realloc(t->v, cap * sizeof(*grown));
		if (!grown)
			return;
		t->v = grown;
		t->cap = cap;
	}
	t->v[t->n++] = c;
}

/* Other daemons' subnets count as taken, as check_other counts them. */
static int collect_other(const struct sbx_netlock_record *r, bool held, void *data)
{
	struct taken *t = data;
	struct sbx_cidr o;
	if (!r->subnet || sbx_cidr_parse(r->subnet, &o.net, &o.prefix) < 0)
		return 0;
	if (held || sbx_nl_ifindex(t->nl, r->bridge, NULL) > 0)
		taken_add(t, o);
	return 0;
}

static bool subnet_usable(struct sbx_cidr c)
{
	return c.prefix >= 8 && c.prefix <= 30;
}

/* The first of the host's prefixes that is not ours and overlaps c. Ours
 * are on the bridge and on the links of its device group (its index),
 * where a daemon that did not stop cleanly left them. */
static const struct sbx_nl_prefix *host_conflict(struct sbx_net *net, const struct sbx_nl_prefix *p, size_t n, int br,
						 struct sbx_cidr c)
{
	return sbx_subnet_conflict(p, n, c, net->bridge, br > 0 ? (uint32_t)br : 0);
}

static bool overlaps_any(const struct taken *t, struct sbx_cidr c)
{
	for (size_t i = 0; i < t->n; i++)
		if (sbx_cidr_overlaps(t->v[i], c))
			return true;
	return false;
}

static void set_subnet(struct sbx_net *net, struct sbx_cidr c, const char *origin)
{
	net->subnet = c;
	net->subnet_origin = origin;
	sbx_cidr_format(c, net->subnet_str);
	net->gateway.s_addr = htonl(ntohl(c.net.s_addr) + 1);
}

/* The bridge's subnet. Set in sandboxd.conf, it must overlap nothing on
 * the host (the daemon refuses to start, naming what holds it). Otherwise
 * the one kept in the state dir (net-subnet) while it is still free, so
 * that a restart keeps every sandbox's address; else the first free
 * subnet of subnet_pool, which is then kept. br: the index of a bridge of
 * ours a crash left, 0 when none. 1: no free subnet (no bridge
 * networking). Called with the network directory locked, so that two
 * daemons starting at once do not take the same one. */
static int choose_subnet(struct sbx_net *net, struct sbx_nl *nl, int br, sbx_error **err)
{
	const struct sbx_config *cfg = &net->d->cfg;
	_cleanup_free_ struct sbx_nl_prefix *p = NULL;
	size_t n = 0;
	if (sbx_nl_prefixes(nl, &p, &n, err) < 0)
		return sbx_error_prefix(err, "subnet");
	char what[160];
	if (cfg->net_subnet && *cfg->net_subnet) {
		struct sbx_cidr c;
		if (sbx_cidr_parse(cfg->net_subnet, &c.net, &c.prefix) < 0 || !subnet_usable(c))
			return sbx_error_set(err, SBX_ERR_INVALID_PARAMS, "subnet: '%s' is not an IPv4 CIDR from /8 to /30",
					     cfg->net_subnet);
		set_subnet(net, c, "sandboxd.conf");
		struct others_check oc = { net, nl, err };
		if (sbx_netlock_each_other(&net->lock, check_other, &oc) < 0)
			return -1;
		const struct sbx_nl_prefix *hit = host_conflict(net, p, n, br, c);
		if (hit) {
			sbx_subnet_describe(hit, what, sizeof(what));
			return sbx_error_set(err, SBX_ERR_EXISTS,
					     "subnet %s (sandboxd.conf) overlaps %s, which another network of this host "
					     "uses; set subnet to a range nothing else uses, or remove it so that sandboxd "
					     "picks a free one from subnet_pool",
					     net->subnet_str, what);
		}
	} else {
		_cleanup_free_ struct sbx_subnet_pool *pools = NULL;
		size_t np = 0;
		if (sbx_subnet_pool_parse("subnet_pool", cfg->net_subnet_pool, &pools, &np, err) < 0)
			return -1;
		struct taken t = { .nl = nl };
		for (size_t i = 0; i < n; i++)
			if (sbx_subnet_foreign(&p[i], net->bridge, br > 0 ? (uint32_t)br : 0))
				taken_add(&t, (struct sbx_cidr){ p[i].net, p[i].prefix });
		sbx_netlock_each_other(&net->lock, collect_other, &t);
		/* The kept subnet, or, for a state dir from before subnets were
		 * kept, the former default its sandboxes have addresses in. */
		_cleanup_free_ char *text = NULL;
		struct sbx_cidr c;
		bool found = false;
		const char *kept = NULL;
		if (sbx_read_file_at(net->d->state_fd, "net-subnet", 64, &text, NULL, NULL) == 0) {
			text[strcspn(text, "\n")] = '\0';
			kept = text;
		} else if (faccessat(net->d->state_fd, "net-allocator", F_OK, 0) == 0) {
			kept = FORMER_DEFAULT_SUBNET;
		}
		if (kept && sbx_cidr_parse(kept, &c.net, &c.prefix) == 0 && subnet_usable(c)) {
			const struct sbx_nl_prefix *hit = host_conflict(net, p, n, br, c);
			if (!hit && !overlaps_any(&t, c)) {
				set_subnet(net, c, "kept from an earlier start");
				found = true;
			} else if (hit) {
				sbx_subnet_describe(hit, what, sizeof(what));
				sbx_warn("subnet %s, kept from an earlier start, now overlaps %s: moving to a free subnet of "
					 "subnet_pool; sandboxes get new addresses", kept, what);
			} else {
				sbx_warn("subnet %s, kept from an earlier start, now overlaps another sandboxd's: moving to a "
					 "free subnet of subnet_pool; sandboxes get new addresses", kept);
			}
		}
		if (!found && sbx_subnet_pick(pools, np, t.v, t.n, &c) == 0) {
			set_subnet(net, c, "the first free subnet of subnet_pool");
			found = true;
		}
		free(t.v);
		if (!found) {
			sbx_warn("bridge networking is unavailable: every subnet of subnet_pool (%s) overlaps a route or "
				 "address of the host or another sandboxd's subnet; add a free range to subnet_pool, or set "
				 "subnet, in sandboxd.conf", cfg->net_subnet_pool);
			return 1;
		}
	}
	char line[SBX_CIDR_STRLEN + 1];
	int len = snprintf(line, sizeof(line), "%s\n", net->subnet_str);
	sbx_error *we = NULL;
	if (sbx_write_file_atomic_at(net->d->state_fd, "net-subnet", line, (size_t)len, 0600, &we) < 0) {
		sbx_warn("keep the subnet in the state dir: %s", we->msg);
		sbx_error_free(we);
	}
	return 0;
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
		if (r == 0)
			r = choose_subnet(net, &nl, br, err);
		sbx_nl_close(&nl);
	} else {
		sbx_warn("bridge networking is unavailable: rtnetlink cannot be opened");
		r = 1;
	}
	bool had_record = prev.pid != 0;
	sbx_netlock_record_free(&prev);
	struct sbx_netlock_record me = { .pid = getpid(), .state_dir = c->state_dir, .socket = c->socket_path,
					 .subnet = net->subnet_str };
	if (r != 0 || sbx_netlock_commit(&net->lock, &me, err) < 0) {
		/* Another owner's record stays; a file made just now goes. */
		sbx_netlock_release(&net->lock, !had_record);
		return r > 0 ? 1 : -1;
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

/* ---- living beside other networks and firewalls ---- */

/* What the log says changes only: the same state seen again stays quiet. */
static bool said_before(char **said, const char *now)
{
	if (*said && !strcmp(*said, now))
		return true;
	free(*said);
	*said = strdup(now);
	return false;
}

static size_t sandboxes_in(struct sbx_net *net, struct sbx_cidr c)
{
	size_t k = 0;
	for (struct sbx_sandbox *sb = net->d->sandboxes; sb; sb = sb->next)
		k += sb->net.ip.s_addr && !sb->deleted && sbx_cidr_contains(c.net, c.prefix, sb->net.ip);
	return k;
}

/* Routes and addresses of other networks that overlap the subnet: at
 * start there are none (the subnet was chosen so), but a network started
 * later (podman's, a VPN) can take part of it. Its addresses then collide
 * with the sandboxes' that lie in it: logged, and shown in sandbox.inspect
 * and system.doctor. */
static void conflicts_check(struct sbx_net *net)
{
	struct sbx_nl nl = { 0 };
	struct sbx_nl_prefix *p = NULL;
	size_t n = 0;
	sbx_error *e = NULL;
	if (sbx_nl_open(&nl, &e) < 0 || sbx_nl_prefixes(&nl, &p, &n, &e) < 0) {
		sbx_warn("network: %s", e->msg);
		sbx_error_free(e);
		sbx_nl_close(&nl);
		return;
	}
	sbx_nl_close(&nl);
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		struct sbx_cidr c = { p[i].net, p[i].prefix };
		if (sbx_subnet_foreign(&p[i], net->bridge, net->group) && sbx_cidr_overlaps(c, net->subnet))
			p[k++] = p[i];
	}
	free(net->conflicts);
	net->conflicts = p;
	net->n_conflicts = k;
	struct sbx_buf b = { 0 };
	for (size_t i = 0; i < k; i++) {
		char what[160];
		sbx_subnet_describe(&p[i], what, sizeof(what));
		sbx_buf_printf(&b, "%s%s (%zu sandbox%s in it)", i ? ", " : "", what,
			       sandboxes_in(net, (struct sbx_cidr){ p[i].net, p[i].prefix }),
			       sandboxes_in(net, (struct sbx_cidr){ p[i].net, p[i].prefix }) == 1 ? "" : "es");
	}
	const char *now = b.data ? b.data : "";
	bool had = net->conflict_said && *net->conflict_said;
	if (!said_before(&net->conflict_said, now)) {
		if (k)
			sbx_warn("network: subnet %s of bridge %s now overlaps %s: those sandboxes' addresses collide with "
				 "that network; remove it, or give sandboxd a free range (subnet_pool, or subnet, in "
				 "sandboxd.conf) and restart it: its sandboxes then get new addresses",
				 net->subnet_str, net->bridge, now);
		else if (had)
			sbx_info("network: subnet %s overlaps no other network any more", net->subnet_str);
	}
	sbx_buf_free(&b);
}

static void routes_settled(struct sbx_watch *t, void *data)
{
	(void)t;
	struct sbx_net *net = data;
	net->routes_settle = NULL;
	sbx_debug("network: the host's links, addresses or routes changed; looking for overlaps");
	conflicts_check(net);
}

static void routes_changed(struct sbx_watch *w, uint32_t events, void *data)
{
	(void)w;
	(void)events;
	struct sbx_net *net = data;
	if (sbx_nl_monitor_drain(&net->routes_mon, net->subnet.net, net->subnet.prefix, net->group) &&
	    !net->routes_settle)
		net->routes_settle = sbx_loop_timer(net->d->loop, SETTLE_MS, routes_settled, net);
}

static struct sbx_fw_net fw_net(struct sbx_net *net)
{
	return (struct sbx_fw_net){ .subnet = net->subnet,
				    .group = net->group,
				    .link_prefix = LINK_PREFIX,
				    .uplink = net->uplink.name,
				    .uplink_index = net->uplink.ifindex,
				    .uplink_group = net->uplink.group,
				    .own_table = net->table,
				    .tag = net->fw_tag };
}

static const char *direction(const struct sbx_fw_judgement *j)
{
	return j->out == SBX_FW_DROP ? j->why_out : j->why_back;
}

/* Other tables' forward chains, judged; where one drops sandbox traffic
 * and its owner documents a place for others' rules, sandboxd's go there
 * (iptables' DOCKER-USER or FORWARD; a firewalld zone); what still drops
 * is logged with the fix. Run at start and whenever another table
 * changes: Docker rewrites its chains at each start, firewalld rebuilds
 * its table at each reload (and forgets runtime zone bindings). */
static void firewall_retry(struct sbx_watch *t, void *data);

static void firewall_check(struct sbx_net *net)
{
	const struct sbx_config *cfg = &net->d->cfg;
	struct sbx_fw_net fn = fw_net(net);
	struct sbx_fw_report r;
	sbx_error *e = NULL;
	bool changed = false;
	if (sbx_fw_judge(&fn, &r, &e) < 0) {
		sbx_warn("firewall: %s", e->msg);
		sbx_error_free(e);
		return;
	}
	for (size_t i = 0; i < r.n; i++) {
		const struct sbx_fw_judgement *j = &r.chains[i];
		if (!sbx_fw_drops(j))
			continue;
		if (j->owner == SBX_FW_IPTABLES && cfg->iptables_forward) {
			/* DOCKER-USER is Docker's place for others' rules, jumped
			 * to first; FORWARD when Docker is not there, or when
			 * DOCKER-USER is no longer jumped to. */
			const char *chain = r.docker_user && !r.ours ? "DOCKER-USER" : "FORWARD";
			if (r.ours && !strcmp(r.ours_chain, "FORWARD"))
				continue; /* ours are first in FORWARD: something before them drops */
			if (sbx_fw_iptables_add(&fn, chain, &e) < 0) {
				sbx_warn("firewall: %s", e->msg);
				sbx_error_free(e);
				e = NULL;
				continue;
			}
			net->fw_added = true;
			changed = true;
			sbx_info("firewall: table ip filter chain FORWARD drops %s (%s); accept rules for %s added to "
				 "its chain %s, with the comment \"%s\" (iptables_forward in sandboxd.conf)",
				 j->out == SBX_FW_DROP ? "sandbox traffic" : "answers to sandboxes", direction(j),
				 net->subnet_str, chain, net->fw_tag);
		} else if (j->owner == SBX_FW_FIREWALLD && cfg->firewalld_zone && *cfg->firewalld_zone) {
			if (sbx_fw_firewalld_bind(cfg->firewalld_zone, LINK_PREFIX "+", true, &e) < 0) {
				if (!said_before(&net->fw_bind_said, e->msg))
					sbx_warn("firewall: firewalld drops sandbox traffic (%s), and the sandboxes' links "
						 "cannot join its zone %s: %s; install the zone file sandboxd.xml into "
						 "/etc/firewalld/zones and run firewall-cmd --reload, or set firewalld_zone",
						 direction(j), cfg->firewalld_zone, e->msg);
				sbx_error_free(e);
				e = NULL;
				if (!net->fw_retry) {
					net->fw_retry_ms = net->fw_retry_ms ? net->fw_retry_ms * 2 : FW_RETRY_MS;
					if (net->fw_retry_ms > FW_RETRY_MAX_MS)
						net->fw_retry_ms = FW_RETRY_MAX_MS;
					net->fw_retry = sbx_loop_timer(net->d->loop, net->fw_retry_ms, firewall_retry, net);
				}
				continue;
			}
			net->fw_retry_ms = 0;
			free(net->fw_bind_said);
			net->fw_bind_said = NULL;
			net->fw_bound = true;
			changed = true;
			sbx_info("firewall: firewalld drops sandbox traffic (%s); links %s+ put in its zone %s while "
				 "sandboxd runs (firewalld_zone in sandboxd.conf)",
				 direction(j), LINK_PREFIX, cfg->firewalld_zone);
		}
	}
	if (changed) {
		sbx_fw_report_free(&r);
		if (sbx_fw_judge(&fn, &r, &e) < 0) {
			sbx_warn("firewall: %s", e->msg);
			sbx_error_free(e);
			return;
		}
	}
	struct sbx_buf b = { 0 };
	for (size_t i = 0; i < r.n; i++) {
		const struct sbx_fw_judgement *j = &r.chains[i];
		if (!sbx_fw_drops(j))
			continue;
		char fix[1024];
		sbx_fw_manual_fix(&fn, j, fix, sizeof(fix));
		sbx_buf_printf(&b, "%stable %s %s chain %s drops %s: %s%s; fix: %s", b.len ? "\n" : "", j->family,
			       j->table, j->chain, j->out == SBX_FW_DROP ? "sandbox traffic" : "answers to sandboxes",
			       direction(j), j->uncertain ? " (rules sandboxd cannot evaluate were taken as not matching)" : "",
			       fix);
	}
	if (r.legacy_filter)
		sbx_buf_printf(&b, "%siptables-legacy's filter table is loaded, out of sandboxd's sight: if its FORWARD "
			       "chain drops, sandboxes have no egress (iptables-legacy -S FORWARD)", b.len ? "\n" : "");
	const char *now = b.data ? b.data : "";
	if (!said_before(&net->fw_said, now)) {
		for (char *save = NULL, *line = b.data ? strtok_r(b.data, "\n", &save) : NULL; line;
		     line = strtok_r(NULL, "\n", &save))
			sbx_warn("firewall: %s", line);
		if (!b.data && r.n)
			sbx_info("firewall: the forward chains of other tables let sandbox traffic through");
	}
	sbx_buf_free(&b);
	sbx_fw_report_free(&r);
}

static void firewall_settled(struct sbx_watch *t, void *data)
{
	(void)t;
	struct sbx_net *net = data;
	net->fw_settle = NULL;
	sbx_debug("firewall: another nftables table changed; judging the forward chains again");
	firewall_check(net);
}

static void firewall_retry(struct sbx_watch *t, void *data)
{
	(void)t;
	struct sbx_net *net = data;
	net->fw_retry = NULL;
	sbx_debug("firewall: joining firewalld's zone again (it failed %lld s ago)",
		  (long long)(net->fw_retry_ms / 1000));
	firewall_check(net);
}

static void firewall_changed(struct sbx_watch *w, uint32_t events, void *data)
{
	(void)w;
	(void)events;
	struct sbx_net *net = data;
	if (sbx_fw_monitor_drain(&net->fw_mon, net->table) && !net->fw_settle)
		net->fw_settle = sbx_loop_timer(net->d->loop, SETTLE_MS, firewall_settled, net);
}

/* At start, once the bridge is up: the uplink (the sample packets' way
 * out), rules a crash left (judged again from scratch), the watches, and
 * a first look. Watching costs nothing while nothing changes; a timer
 * would look every few seconds for ever and still be late. */
static void neighbours_init(struct sbx_net *net)
{
	struct sbx_nl nl = { 0 };
	sbx_error *e = NULL;
	if (sbx_nl_open(&nl, &e) < 0 || sbx_nl_uplink(&nl, &net->uplink, &e) < 0) {
		sbx_warn("network: %s", e->msg);
		sbx_error_free(e);
		e = NULL;
	}
	sbx_nl_close(&nl);
	int fd = sbx_nl_open_monitor(&net->routes_mon, &e);
	if (fd < 0 || !(net->routes_w = sbx_loop_watch(net->d->loop, fd, EPOLLIN, routes_changed, net))) {
		sbx_warn("network: routes added later will not be noticed: %s", e ? e->msg : strerror(errno));
		sbx_error_free(e);
		e = NULL;
	}
	conflicts_check(net);
	if (sbx_fw_iptables_remove(net->fw_tag, &e) < 0) {
		sbx_warn("firewall: %s", e->msg);
		sbx_error_free(e);
		e = NULL;
	}
	fd = sbx_fw_monitor_open(&net->fw_mon, &e);
	if (fd < 0 || !(net->fw_w = sbx_loop_watch(net->d->loop, fd, EPOLLIN, firewall_changed, net))) {
		sbx_warn("firewall: changes to other tables will not be noticed: %s", e ? e->msg : strerror(errno));
		sbx_error_free(e);
	}
	firewall_check(net);
}

/* Shutdown: the rules and the zone binding sandboxd added go; nothing
 * else of other tables is touched. */
static void neighbours_fini(struct sbx_net *net)
{
	if (net->routes_w)
		sbx_loop_unwatch(net->routes_w);
	if (net->routes_settle)
		sbx_loop_unwatch(net->routes_settle);
	if (net->fw_w)
		sbx_loop_unwatch(net->fw_w);
	if (net->fw_settle)
		sbx_loop_unwatch(net->fw_settle);
	if (net->fw_retry)
		sbx_loop_unwatch(net->fw_retry);
	net->routes_w = net->routes_settle = net->fw_w = net->fw_settle = net->fw_retry = NULL;
	sbx_nl_close(&net->routes_mon);
	sbx_fw_monitor_close(&net->fw_mon);
	sbx_error *e = NULL;
	int removed = sbx_fw_iptables_remove(net->fw_tag, &e);
	if (removed < 0) {
		sbx_warn("firewall: %s", e->msg);
		sbx_error_free(e);
		e = NULL;
	} else if (removed) {
		sbx_info("firewall: %d accept rule%s with the comment \"%s\" removed from table ip filter", removed,
			 removed == 1 ? "" : "s", net->fw_tag);
	}
	if (net->fw_bound) {
		/* Every sandboxd's links match the pattern: the binding stays
		 * while another daemon runs. */
		if (sbx_netlock_each_other(&net->lock, other_running, NULL)) {
			sbx_info("firewall: links %s+ stay in firewalld's zone %s for the other sandboxd running",
				 LINK_PREFIX, net->d->cfg.firewalld_zone);
		} else if (sbx_fw_firewalld_bind(net->d->cfg.firewalld_zone, LINK_PREFIX "+", false, &e) < 0) {
			sbx_warn("firewall: %s", e->msg);
			sbx_error_free(e);
		} else {
			sbx_info("firewall: links %s+ taken out of firewalld's zone %s", LINK_PREFIX,
				 net->d->cfg.firewalld_zone);
		}
	}
	free(net->fw_said);
	free(net->fw_bind_said);
	free(net->conflict_said);
	free(net->conflicts);
	net->fw_said = net->fw_bind_said = net->conflict_said = NULL;
	net->conflicts = NULL;
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
	if (sbx_netns_remember_own(err) < 0)
		return -1;
	const struct sbx_config *c = &d->cfg;
	if (!sbx_netlock_name_valid(c->net_bridge))
		return sbx_error_set(err, SBX_ERR_INVALID_PARAMS,
				     "bridge: '%s' is not a link name (1 to 15 characters, no '/', ':' or spaces)",
				     c->net_bridge);
	snprintf(net->bridge, sizeof(net->bridge), "%s", c->net_bridge);
	/* The table is named after the bridge: one daemon, one of each. */
	snprintf(net->table, sizeof(net->table), "sandboxd-%s", net->bridge);
	snprintf(net->fw_tag, sizeof(net->fw_tag), "sandboxd %s", net->bridge);
	/* Mistakes in the settings stop the daemon before anything is
	 * looked at; the subnet itself is chosen with the network's lock. */
	struct sbx_cidr explicit_subnet;
	if (c->net_subnet && *c->net_subnet &&
	    (sbx_cidr_parse(c->net_subnet, &explicit_subnet.net, &explicit_subnet.prefix) < 0 ||
	     !subnet_usable(explicit_subnet)))
		return sbx_error_set(err, SBX_ERR_INVALID_PARAMS, "subnet: '%s' is not an IPv4 CIDR from /8 to /30",
				     c->net_subnet);
	_cleanup_free_ struct sbx_subnet_pool *pools = NULL;
	size_t np = 0;
	if (sbx_subnet_pool_parse("subnet_pool", c->net_subnet_pool, &pools, &np, err) < 0)
		return -1;
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
	if (gateway_config(net, err) < 0)
		return -1;
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
		sbx_info("bridge %s %s/%d (the gateway; subnet %s, %s; sandboxes' links are routed, device group %u), "
			 "mtu %u, nftables table inet %s", net->bridge, gw, net->subnet.prefix, net->subnet_str,
			 net->subnet_origin, net->group, net->mtu, net->table);
		neighbours_init(net);
	}
	/* A taken port disables URLs of the host form, not the daemon. */
	sbx_error *ge = NULL;
	if (gateway_listen(net, &ge) < 0) {
		sbx_warn("%s; preview URLs of the host form are unavailable", ge->msg);
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
			     net->subnet_str);
}

/* ---- links ---- */

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

/* A bridged sandbox's link as its box makes it (lib/box.c): a routed veth
 * pair, no bridge port; the host end sv<id> is in the daemon's device
 * group, and the gateway is the bridge's address. */
void sbx_net_link(struct sbx_sandbox *sb, struct sbx_box_net *out)
{
	struct sbx_net *net = sb->d->net;
	memset(out, 0, sizeof(*out));
	out->ip = sb->net.ip;
	veth_name(sb, out->host_name);
	if (!net)
		return;
	out->gateway = net->gateway;
	out->prefix = net->subnet.prefix;
	out->group = net->group;
	out->mtu = net->mtu;
}

/* The link of a started sandbox again (after a crash); idempotent. */
int sbx_net_attach(struct sbx_sandbox *sb, sbx_error **err)
{
	if (!sbx_net_available(sb->d))
		return sbx_error_set(err, SBX_ERR_UNSUPPORTED, "bridge networking is unavailable on this host");
	sbx_net_link(sb, &sb->box->net);
	return sbx_box_net_attach(sb->box, err);
}

/* ---- preview links ----
 * Kept in memory for the gateway and in sandboxes/<id>/preview (0600, in
 * the root-only state dir): a "link PORT LISTEN_PORT" line per link and a
 * "PORT TOKEN EXPIRES_NS" line per token (EXPIRES_NS 0: the persistent
 * one). A link handed out lives as long as its sandbox, across stops and
 * restarts of the daemon: backends store the URL and token at creation
 * and never ask again. Delete and net.unpreview revoke it. */

static void token_free(struct token *t)
{
	explicit_bzero(t->token, sizeof(t->token));
	free(t);
}

static void tokens_free(struct token *t)
{
	while (t) {
		struct token *next = t->next;
		token_free(t);
		t = next;
	}
}

static bool pool_test(struct sbx_net *net, uint16_t port)
{
	return net->pool_used[port / 8] & (1U << (port % 8));
}

static void pool_mark(struct sbx_net *net, uint16_t port, bool used)
{
	if (used)
		net->pool_used[port / 8] |= (uint8_t)(1U << (port % 8));
	else
		net->pool_used[port / 8] &= (uint8_t)~(1U << (port % 8));
}

static struct link *link_find(struct sbx_net *net, const char *id, uint16_t port)
{
	for (struct link *l = net->links; l; l = l->next)
		if (l->port == port && !strcmp(l->sandbox, id))
			return l;
	return NULL;
}

static struct link *link_new(struct sbx_net *net, const char *id, uint16_t port)
{
	struct link *l = calloc(1, sizeof(*l));
	if (!l)
		return NULL;
	l->net = net;
	l->fd = -1;
	memcpy(l->sandbox, id, sizeof(l->sandbox));
	l->port = port;
	l->next = net->links;
	net->links = l;
	return l;
}

static void link_close(struct link *l)
{
	if (l->w)
		sbx_loop_unwatch(l->w);
	l->w = NULL;
	sbx_closep(&l->fd);
}

/* Unlinked, closed and freed; its listen port is free for another link. */
static void link_free(struct link *l)
{
	struct sbx_net *net = l->net;
	for (struct link **pp = &net->links; *pp; pp = &(*pp)->next) {
		if (*pp == l) {
			*pp = l->next;
			break;
		}
	}
	link_close(l);
	if (l->listen_port)
		pool_mark(net, l->listen_port, false);
	tokens_free(l->tokens);
	free(l);
}

static void link_accept(struct sbx_watch *w, uint32_t events, void *data);

static int link_listen(struct link *l, sbx_error **err)
{
	uint16_t bound;
	int fd = listen_tcp(l->net->gw_ip, l->listen_port, &bound, err);
	if (fd < 0)
		return -1;
	l->fd = fd;
	l->w = sbx_loop_watch(l->net->d->loop, fd, EPOLLIN, link_accept, l);
	if (!l->w) {
		link_close(l);
		return sbx_error_errno(err, errno, "preview link listener");
	}
	return 0;
}

/* A port of preview_ports for the link, round robin from a cursor kept in
 * the state dir, so that the URL of a deleted sandbox's link does not soon
 * reach another sandbox. Ports that other programs hold are passed over. */
static int link_allocate(struct sbx_net *net, struct link *l, sbx_error **err)
{
	uint32_t lo = net->pool_lo, size = (uint32_t)net->pool_hi - lo + 1, cursor = size - 1;
	_cleanup_free_ char *text = NULL;
	int64_t v;
	if (sbx_read_file_at(net->d->state_fd, "preview-ports", 64, &text, NULL, NULL) == 0) {
		char *nl = strchr(text, '\n');
		if (nl)
			*nl = '\0';
		if (sbx_parse_int64(text, lo, net->pool_hi, &v) == 0)
			cursor = (uint32_t)v - lo;
	}
	for (uint32_t k = 1; k <= size; k++) {
		uint16_t cand = (uint16_t)(lo + (cursor + k) % size);
		if (pool_test(net, cand))
			continue;
		sbx_error *e = NULL;
		l->listen_port = cand;
		if (link_listen(l, &e) < 0) {
			l->listen_port = 0;
			if (e->code == SBX_ERR_EXISTS) { /* another program's */
				sbx_error_free(e);
				continue;
			}
			*err = e;
			return sbx_error_prefix(err, "preview link");
		}
		pool_mark(net, cand, true);
		char s[16];
		int n = snprintf(s, sizeof(s), "%u\n", (unsigned)cand);
		sbx_error *we = NULL;
		if (sbx_write_file_atomic_at(net->d->state_fd, "preview-ports", s, (size_t)n, 0600, &we) < 0) {
			sbx_warn("preview port allocator: %s", we->msg);
			sbx_error_free(we);
		}
		return 0;
	}
	return sbx_error_set(err, SBX_ERR_LIMIT, "every port of preview_ports (%u-%u) is taken, by links or by other "
			     "programs; revoke links (net.unpreview) or widen preview_ports", (unsigned)net->pool_lo,
			     (unsigned)net->pool_hi);
}

static void links_retry(struct sbx_watch *t, void *data);

/* Listeners of links that have none yet (after a start, or when another
 * program held the port): tried now, and again later for those that
 * still cannot be had. */
static void links_open(struct sbx_net *net)
{
	bool missing = false;
	for (struct link *l = net->links; l; l = l->next) {
		if (!l->listen_port || l->fd >= 0)
			continue;
		sbx_error *e = NULL;
		if (link_listen(l, &e) < 0) {
			if (!l->warned)
				sbx_warn("sandbox %s: the preview link of port %u waits for its address: %s (tried again "
					 "every %d s)", l->sandbox, (unsigned)l->port, e->msg, LINK_RETRY_MS / 1000);
			l->warned = true;
			missing = true;
			sbx_error_free(e);
		} else if (l->warned) {
			sbx_info("sandbox %s: the preview link of port %u listens again on %s:%u", l->sandbox,
				 (unsigned)l->port, net->gw_ip, (unsigned)l->listen_port);
			l->warned = false;
		}
	}
	if (missing && !net->retry)
		net->retry = sbx_loop_timer(net->d->loop, LINK_RETRY_MS, links_retry, net);
}

static void links_retry(struct sbx_watch *t, void *data)
{
	struct sbx_net *net = data;
	net->retry = NULL;
	links_open(net);
}

static void previews_rel(const char *id, char *rel, size_t n)
{
	snprintf(rel, n, "sandboxes/%s/preview", id);
}

/* Rewrites the sandbox's file from memory, leaving out expired tokens and
 * links being revoked; no file when nothing is left. */
static int save_previews(struct sbx_net *net, const char *id, sbx_error **err)
{
	char rel[64];
	previews_rel(id, rel, sizeof(rel));
	struct sbx_buf b = { 0 };
	int64_t now = sbx_now_ns();
	bool oom = false;
	for (struct link *l = net->links; l && !oom; l = l->next) {
		if (strcmp(l->sandbox, id) || l->revoking)
			continue;
		oom |= sbx_buf_printf(&b, "link %u %u\n", (unsigned)l->port, (unsigned)l->listen_port) < 0;
		for (struct token *t = l->tokens; t && !oom; t = t->next) {
			if (t->expires_ns && t->expires_ns <= now)
				continue;
			char line[128];
			int n = snprintf(line, sizeof(line), "%u %s %lld\n", (unsigned)l->port, t->token,
					 (long long)t->expires_ns);
			oom |= sbx_buf_append(&b, line, (size_t)n) < 0;
			explicit_bzero(line, sizeof(line));
		}
	}
	int r = 0;
	if (oom)
		r = sbx_error_errno(err, ENOMEM, "preview links");
	else if (!b.len && unlinkat(net->d->state_fd, rel, 0) < 0 && errno != ENOENT)
		r = sbx_error_errno(err, errno, "remove %s", rel);
	else if (b.len)
		r = sbx_write_file_atomic_at(net->d->state_fd, rel, b.data, b.len, 0600, err);
	if (b.data)
		explicit_bzero(b.data, b.len);
	sbx_buf_free(&b);
	return r;
}

/* The links of a sandbox from its file (the listeners are opened by
 * links_open). Files of earlier versions have token lines alone. */
static void load_previews(struct sbx_net *net, struct sbx_sandbox *sb)
{
	char rel[64], *text = NULL;
	size_t len = 0;
	previews_rel(sb->id, rel, sizeof(rel));
	if (sbx_read_file_at(net->d->state_fd, rel, 1 << 20, &text, &len, NULL) < 0)
		return;
	int64_t now = sbx_now_ns();
	char *save = NULL;
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		unsigned port = 0, lport = 0;
		char tok[65] = "";
		long long exp = 0;
		if (sscanf(line, "link %u %u", &port, &lport) == 2) {
			if (!port || port > 65535 || lport > 65535)
				continue;
			struct link *l = link_find(net, sb->id, (uint16_t)port);
			if (!l && !(l = link_new(net, sb->id, (uint16_t)port)))
				break;
			if (lport && !l->listen_port && !pool_test(net, (uint16_t)lport)) {
				l->listen_port = (uint16_t)lport;
				pool_mark(net, (uint16_t)lport, true);
			}
			continue;
		}
		if (sscanf(line, "%u %64[0-9a-f] %lld", &port, tok, &exp) != 3 || strlen(tok) != 64 || !port ||
		    port > 65535 || exp < 0 || (exp && exp <= now)) {
			explicit_bzero(tok, sizeof(tok));
			continue;
		}
		struct link *l = link_find(net, sb->id, (uint16_t)port);
		struct token *t = calloc(1, sizeof(*t));
		if (!t || (!l && !(l = link_new(net, sb->id, (uint16_t)port)))) {
			free(t);
			explicit_bzero(tok, sizeof(tok));
			break;
		}
		memcpy(t->token, tok, sizeof(t->token));
		explicit_bzero(tok, sizeof(tok));
		t->expires_ns = exp;
		struct token **pp = &l->tokens; /* in the file's order: the persistent one stays the same */
		while (*pp)
			pp = &(*pp)->next;
		*pp = t;
	}
	explicit_bzero(text, len);
	free(text);
}

/* Delete: every link of the sandbox goes, in memory (its file goes with
 * the sandbox's directory). */
static void forget_links(struct sbx_net *net, const char *id)
{
	for (struct link *l = net->links, *next; l; l = next) {
		next = l->next;
		if (!strcmp(l->sandbox, id))
			link_free(l);
	}
}

void sbx_net_detach(struct sbx_sandbox *sb)
{
	struct sbx_net *net = sb->d->net;
	if (!net)
		return;
	/* Its links stay (the gateway answers 503 until the next start); its
	 * sockets inside the namespace go, so nothing holds it. */
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
	if (sb->d->net)
		forget_links(sb->d->net, sb->id);
	sbx_net_free(&sb->net);
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
	    sb->box->init_pidfd < 0)
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
	return sbx_netns_connect(sb->box->init_pidfd, to, DIAL_CANDIDATES, index, pending, err);
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

/* A sandbox whose address lies outside the subnet (which moved off a
 * network that took it, or was changed in sandboxd.conf) gets a new one;
 * the caller saves it before its link is made again. Nothing else of a
 * sandbox depends on its address (ports and previews are reached inside
 * its namespace, its rules are rebuilt from memory). */
bool sbx_net_readdress(struct sbx_sandbox *sb, struct in_addr *was)
{
	struct sbx_net *net = sb->d->net;
	if (!sbx_net_available(sb->d) || !sb->net.ip.s_addr || sb->deleted ||
	    sbx_cidr_contains(net->subnet.net, net->subnet.prefix, sb->net.ip))
		return false;
	char old[INET_ADDRSTRLEN];
	ip_str(sb->net.ip, old);
	struct in_addr a;
	sbx_error *e = NULL;
	if (sbx_net_allocate(sb->d, &a, &e) < 0) {
		sbx_warn("sandbox %s: address %s is outside subnet %s and no new one can be had: %s", sb->id, old,
			 net->subnet_str, e->msg);
		sbx_error_free(e);
		return false;
	}
	*was = sb->net.ip;
	sb->net.ip = a;
	char now[INET_ADDRSTRLEN];
	ip_str(a, now);
	sbx_info("sandbox %s: address %s is outside subnet %s; its address is now %s", sb->id, old, net->subnet_str,
		 now);
	return true;
}

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
		/* Links outlive stops: those of stopped sandboxes come back too. */
		if (d->net && d->net->gw_enabled && sb->net.ip.s_addr && !sb->deleted)
			load_previews(d->net, sb);
		for (struct sbx_publish *p = sb->net.ports; p; p = p->next) {
			if (p->fd < 0 && publish_open(p, &e) < 0) {
				sbx_warn("sandbox %s: port %u stays unpublished: %s", sb->id, (unsigned)p->port, e->msg);
				sbx_error_free(e);
				e = NULL;
			}
		}
	}
	if (d->net)
		links_open(d->net);
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
	if (net->retry)
		sbx_loop_unwatch(net->retry);
	while (net->links) /* kept on disk for the next start */
		link_free(net->links);
	bool clean = true;
	if (net->enabled) {
		neighbours_fini(net);
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

static int new_token(struct token **out, int64_t expires_ns, sbx_error **err)
{
	uint8_t raw[32];
	if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
		return sbx_error_errno(err, errno, "random token");
	struct token *t = calloc(1, sizeof(*t));
	if (!t) {
		explicit_bzero(raw, sizeof(raw));
		return sbx_error_errno(err, ENOMEM, "preview");
	}
	for (size_t i = 0; i < sizeof(raw); i++)
		snprintf(t->token + 2 * i, 3, "%02x", raw[i]);
	explicit_bzero(raw, sizeof(raw));
	t->expires_ns = expires_ns;
	*out = t;
	return 0;
}

static struct token *persistent_token(struct link *l)
{
	for (struct token *t = l->tokens; t; t = t->next)
		if (!t->expires_ns)
			return t;
	return NULL;
}

static void link_describe(struct sbx_net *net, struct link *l, struct sbx_preview *out)
{
	char host_url[sizeof(out->host_url)] = "", gwport[8] = "";
	if (net->gw_port != 80)
		snprintf(gwport, sizeof(gwport), ":%u", (unsigned)net->gw_port);
	if (net->gw_fd >= 0)
		snprintf(host_url, sizeof(host_url), "http://%u-%s.%s%s", (unsigned)l->port, l->sandbox,
			 net->d->cfg.preview_domain, gwport);
	memcpy(out->host_url, host_url, sizeof(host_url));
	if (l->listen_port) {
		snprintf(out->url, sizeof(out->url), "http://%s:%u", net->url_host, (unsigned)l->listen_port);
		snprintf(out->gateway, sizeof(out->gateway), "%s:%u", net->gw_ip, (unsigned)l->listen_port);
	} else {
		snprintf(out->url, sizeof(out->url), "%s", host_url);
		snprintf(out->gateway, sizeof(out->gateway), "%s", net->gw_addr);
	}
}

int sbx_net_preview(struct sbx_sandbox *sb, uint16_t port, int64_t expires_ns, bool rotate, struct sbx_preview *out,
		    sbx_error **err)
{
	struct sbx_net *net = sb->d->net;
	if (!net || !net->gw_enabled)
		return sbx_error_set(err, SBX_ERR_UNSUPPORTED, "the preview gateway is disabled (preview_listen is empty)");
	if (!sb->net.ip.s_addr)
		return sbx_error_set(err, SBX_ERR_BAD_STATE, "sandbox %s has no network (mode %s)", sb->name,
				     sb->network_mode);
	if (!net->port_form && net->gw_fd < 0)
		return sbx_error_set(err, SBX_ERR_UNSUPPORTED, "the preview gateway could not listen on %s:%u (see the "
				     "daemon's log)", net->gw_ip, (unsigned)net->gw_port);
	struct link *l = link_find(net, sb->id, port);
	bool made = false, allocated = false;
	if (!l) {
		if (!(l = link_new(net, sb->id, port)))
			return sbx_error_errno(err, ENOMEM, "preview");
		made = true;
	}
	/* A link of the host form (made before the port form was configured)
	 * gets a port too; its old URL keeps working on the shared listener. */
	if (net->port_form && !l->listen_port) {
		if (link_allocate(net, l, err) < 0)
			goto fail;
		allocated = true;
	}
	struct token *t = expires_ns || rotate ? NULL : persistent_token(l), *old = NULL, **old_tail = &old;
	bool fresh = !t;
	if (t && !allocated)
		goto done;
	if (expires_ns) {
		size_t live = 0;
		int64_t now = sbx_now_ns();
		for (struct token *x = l->tokens; x; x = x->next)
			live += x->expires_ns > now;
		if (live >= LINK_MAX_TOKENS) {
			sbx_error_set(err, SBX_ERR_LIMIT, "port %u of sandbox %s has %d live tokens with an expiry; let "
				      "some expire, or revoke the link (net.unpreview)", (unsigned)port, sb->name,
				      LINK_MAX_TOKENS);
			goto fail;
		}
	}
	if (fresh && new_token(&t, expires_ns, err) < 0)
		goto fail;
	if (rotate) { /* the persistent tokens step aside, in order, until the file is written */
		for (struct token **pp = &l->tokens; *pp;) {
			struct token *x = *pp;
			if (x->expires_ns) {
				pp = &x->next;
				continue;
			}
			*pp = x->next;
			x->next = NULL;
			*old_tail = x;
			old_tail = &x->next;
		}
	}
	if (fresh) {
		t->next = l->tokens;
		l->tokens = t;
	}
	if (save_previews(net, sb->id, err) < 0) {
		if (fresh) {
			l->tokens = t->next;
			token_free(t);
		}
		struct token **tail = &l->tokens;
		while (*tail)
			tail = &(*tail)->next;
		*tail = old;
		goto fail;
	}
	tokens_free(old);
	if (made || allocated || rotate)
		sbx_info("sandbox %s: preview link of port %u%s%s", sb->id, (unsigned)port,
			 rotate ? ": token replaced" : "", allocated ? " on its own listener" : "");
done:
	link_describe(net, l, out);
	memcpy(out->token, t->token, sizeof(out->token));
	out->expires_ns = t->expires_ns;
	return 0;
fail:
	if (made) {
		link_free(l);
	} else if (allocated) {
		link_close(l);
		pool_mark(net, l->listen_port, false);
		l->listen_port = 0;
	}
	return -1;
}

int sbx_net_unpreview(struct sbx_sandbox *sb, uint16_t port, sbx_error **err)
{
	struct sbx_net *net = sb->d->net;
	int n = 0;
	for (struct link *l = net ? net->links : NULL; l; l = l->next) {
		if (!strcmp(l->sandbox, sb->id) && (!port || l->port == port)) {
			l->revoking = true;
			n++;
		}
	}
	if (!n && port)
		return sbx_error_set(err, SBX_ERR_NOT_FOUND, "port %u of sandbox %s has no preview link", (unsigned)port,
				     sb->name);
	if (!n)
		return 0;
	/* On disk first: a revoked link must not come back with a restart. */
	if (save_previews(net, sb->id, err) < 0) {
		for (struct link *l = net->links; l; l = l->next)
			l->revoking = false;
		return sbx_error_prefix(err, "sandbox %s: revoke preview links", sb->name);
	}
	for (struct link *l = net->links, *next; l; l = next) {
		next = l->next;
		if (l->revoking) {
			/* Connections that came through it end too. */
			char owner[32];
			snprintf(owner, sizeof(owner), "%s:%u", l->sandbox, (unsigned)l->port);
			sbx_proxy_close_owner(owner);
			link_free(l);
		}
	}
	sbx_info("sandbox %s: %d preview link%s revoked", sb->id, n, n == 1 ? "" : "s");
	return n;
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

static bool token_valid(struct link *l, struct sbx_http_str tok)
{
	int64_t now = sbx_now_ns();
	bool ok = false;
	for (struct token **pp = &l->tokens; *pp;) {
		struct token *t = *pp;
		if (t->expires_ns && t->expires_ns <= now) {
			*pp = t->next;
			token_free(t);
			continue;
		}
		if (token_equal(t->token, tok.p, tok.n))
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

static bool is_token_header(struct sbx_http_str name)
{
	return (name.n == 15 && !strncasecmp(name.p, "X-Sandbox-Token", 15)) ||
	       (name.n == 23 && !strncasecmp(name.p, "X-Daytona-Preview-Token", 23));
}

/* A cookie of the gateway: the bare name, or the name and _ID_PORT. */
static bool is_gateway_cookie(const char *p, size_t n)
{
	const size_t cl = sizeof(COOKIE_NAME) - 1;
	const char *eq = memchr(p, '=', n);
	size_t name = eq ? (size_t)(eq - p) : n;
	return name >= cl && !memcmp(p, COOKIE_NAME, cl) && (name == cl || p[cl] == '_');
}

static void link_cookie_name(const char *id, uint16_t port, char *out, size_t n)
{
	snprintf(out, n, COOKIE_NAME "_%s_%u", id, (unsigned)port);
}

static void forward_head(struct sbx_buf *out, const char *buf, size_t len, const struct sbx_http_head *h)
{
	const char *eol = memchr(buf, '\n', h->len);
	if (!eol || sbx_buf_append(out, buf, (size_t)(eol - buf) + 1) < 0)
		goto fail;
	for (size_t i = 0; i < h->n_headers; i++) {
		const struct sbx_http_header *hd = &h->headers[i];
		if (is_token_header(hd->name))
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
				if (n && !is_gateway_cookie(p, n))
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

static bool sandbox_running(const struct sbx_sandbox *sb)
{
	return (sb->state == SBX_STATE_STARTED || sb->state == SBX_STATE_PAUSED) && !sb->stopping;
}

/* A link whose sandbox is not running: 503, which clients such as agent
 * backends retry, with the state in words. */
static void gw_unavailable(struct gw_conn *c, const struct sbx_sandbox *sb)
{
	char text[160];
	snprintf(text, sizeof(text), "sandbox %s is %s; port %u is reached again once it is started", c->id,
		 sb->stopping ? "stopping" : sbx_state_name(sb->state), (unsigned)c->port);
	gw_reply_text(c, "503 Service Unavailable", NULL, text);
}

static void gw_dial(struct gw_conn *c);

static void gw_route(struct gw_conn *c, const struct sbx_http_head *h)
{
	struct sbx_net *net = c->net;
	const struct sbx_http_header *host = sbx_http_header_find(h, "Host");
	if (c->fixed) {
		/* A link's own listener knows its sandbox and port. It answers to
		 * the names a local client uses, not to a page that had its own
		 * name resolve here. */
		if (host && !sbx_http_host_local(host->value, net->d->cfg.preview_domain)) {
			gw_reply_text(c, "421 Misdirected Request", NULL,
				      "this preview link answers to an IP address, localhost or the preview domain only");
			return;
		}
	} else if (!host || sbx_http_preview_host(host->value, net->d->cfg.preview_domain, &c->port, c->id) < 0) {
		gw_reply(c, "404 Not Found", NULL);
		return;
	}
	struct sbx_sandbox *sb = sbx_sandbox_find(net->d, c->id);
	struct link *l = link_find(net, c->id, c->port);
	if (!sb || sb->deleted || !sb->net.ip.s_addr || strcmp(sb->id, c->id) || (c->fixed && !l)) {
		gw_reply_text(c, "404 Not Found", NULL, "no such preview link");
		return;
	}
	struct sbx_http_str tok = { 0 };
	const struct sbx_http_header *hdr = sbx_http_header_find(h, "X-Sandbox-Token");
	if (!hdr)
		hdr = sbx_http_header_find(h, "X-Daytona-Preview-Token");
	bool from_query = false;
	char cookie[64];
	link_cookie_name(c->id, c->port, cookie, sizeof(cookie));
	if (hdr) {
		tok = hdr->value;
	} else if (sbx_http_query_get(h->target, "token", &tok)) {
		from_query = true;
	} else {
		for (size_t i = 0; i < h->n_headers && !tok.p; i++) {
			const struct sbx_http_header *ck = &h->headers[i];
			if (ck->name.n == 6 && !strncasecmp(ck->name.p, "Cookie", 6) &&
			    !sbx_http_cookie_get(ck->value, cookie, &tok))
				sbx_http_cookie_get(ck->value, COOKIE_NAME, &tok);
		}
	}
	bool valid = tok.p && l && token_valid(l, tok);
	/* A public sandbox's links need no token: anyone who reaches the
	 * gateway reaches them. A token that is not the gateway's stays in
	 * the query for the app (which may have a "token" of its own). */
	if (!valid && !sb->net.public) {
		gw_reply(c, "401 Unauthorized", NULL);
		return;
	}
	if (from_query && valid) {
		/* The token moves into a cookie for this host only, and leaves
		 * the address bar and the history. */
		char clean[4096], extra[4096 + 256];
		size_t need = sbx_http_query_remove(h->target, "token", clean, sizeof(clean));
		if (need >= sizeof(clean) || !need) {
			gw_reply(c, "414 URI Too Long", NULL);
			return;
		}
		snprintf(extra, sizeof(extra), "Location: %s\r\nSet-Cookie: %s=%.*s; Path=/; HttpOnly; SameSite=Lax\r\n",
			 clean, cookie, (int)tok.n, tok.p);
		gw_reply(c, "302 Found", extra);
		return;
	}
	if (!sandbox_running(sb)) {
		gw_unavailable(c, sb);
		return;
	}
	c->routed = true;
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
	char owner[32];
	snprintf(owner, sizeof(owner), "%s:%u", sb->id, (unsigned)c->port);
	forward_head(&fwd, c->buf, c->len, &h);
	if (fwd.data)
		sbx_proxy_start(c->net->d->loop, a, b, false, fwd.data, fwd.len, owner);
	else
		sbx_proxy_start(c->net->d->loop, a, b, false, c->buf, c->len, owner);
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
	if (!sb) {
		gw_reply_text(c, "404 Not Found", NULL, "no such preview link");
		return;
	}
	sbx_error *e = NULL;
	bool pending = false;
	int b = dial_sandbox(sb, c->port, &c->dial_index, &pending, &e);
	if (b < 0) {
		if (!e || e->code == SBX_ERR_BAD_STATE) {
			sbx_error_free(e);
			gw_unavailable(c, sb);
			return;
		}
		if (e->errnum == ECONNREFUSED)
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
	if (c->routed) { /* connecting to the sandbox; a hang-up ends it */
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
	if (c->routed) {
		char text[160];
		snprintf(text, sizeof(text), "sandbox %s: port %u did not answer within %d s", c->id, (unsigned)c->port,
			 DIAL_TIMEOUT_MS / 1000);
		gw_reply_text(c, "504 Gateway Timeout", NULL, text);
		return;
	}
	gw_reply(c, "408 Request Timeout", NULL);
}

/* Connections on the shared listener (l NULL) or on a link's own. */
static void gw_accept_on(struct sbx_net *net, int lfd, const struct link *l)
{
	for (int i = 0; i < 64; i++) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
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
		c->fixed = l != NULL;
		c->routed = false;
		c->port = l ? l->port : 0;
		memcpy(c->id, l ? l->sandbox : "", l ? sizeof(c->id) : 1);
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

static void gw_accept(struct sbx_watch *w, uint32_t events, void *data)
{
	struct sbx_net *net = data;
	gw_accept_on(net, net->gw_fd, NULL);
}

static void link_accept(struct sbx_watch *w, uint32_t events, void *data)
{
	struct link *l = data;
	gw_accept_on(l->net, l->fd, l);
}

/* ---- what stands in the way ---- */

bool sbx_net_conflict(struct sbx_sandbox *sb, char *out, size_t n)
{
	struct sbx_net *net = sb->d->net;
	if (!net || !sb->net.ip.s_addr)
		return false;
	for (size_t i = 0; i < net->n_conflicts; i++) {
		if (sbx_cidr_contains(net->conflicts[i].net, net->conflicts[i].prefix, sb->net.ip)) {
			char what[160];
			sbx_subnet_describe(&net->conflicts[i], what, sizeof(what));
			snprintf(out, n, "its address is in %s, which another network of the host now uses", what);
			return true;
		}
	}
	return false;
}

void sbx_net_doctor(struct sbx_daemon *d, struct sbx_checks *c)
{
	struct sbx_net *net = d->net;
	const struct sbx_config *cfg = &d->cfg;
	if (!sbx_net_available(d)) {
		sbx_checks_add(c, "network", strcmp(cfg->default_network, "bridge") ? SBX_CHECK_WARN : SBX_CHECK_FAIL,
			       "see sandboxd's log at start for the reason",
			       "bridge networking is unavailable: sandboxes can only be created with network mode none");
	} else {
		sbx_hostcheck_ip_forward(c, true);
		conflicts_check(net);
		if (net->n_conflicts) {
			for (size_t i = 0; i < net->n_conflicts; i++) {
				char what[160];
				struct sbx_cidr pc = { net->conflicts[i].net, net->conflicts[i].prefix };
				sbx_subnet_describe(&net->conflicts[i], what, sizeof(what));
				sbx_checks_add(c, "subnet", SBX_CHECK_FAIL,
					       "remove that network, or give sandboxd a free range (subnet_pool, or subnet, in "
					       "sandboxd.conf) and restart it: its sandboxes then get new addresses",
					       "subnet %s of bridge %s overlaps %s, which another network uses (%zu sandbox%s "
					       "in it)",
					       net->subnet_str, net->bridge, what, sandboxes_in(net, pc),
					       sandboxes_in(net, pc) == 1 ? "" : "es");
			}
		} else {
			sbx_checks_add(c, "subnet", SBX_CHECK_OK, NULL, "%s on bridge %s (%s) overlaps nothing else",
				       net->subnet_str, net->bridge, net->subnet_origin);
		}
		struct sbx_fw_net fn = fw_net(net);
		struct sbx_forward_fixes fx = { cfg->iptables_forward, cfg->firewalld_zone };
		sbx_hostcheck_forward(c, &fn, &fx, true);
	}
	if (!net || !net->gw_enabled) {
		sbx_checks_add(c, "preview", SBX_CHECK_OK, NULL, "the preview gateway is off (preview_listen is empty)");
		return;
	}
	size_t waiting = 0;
	for (struct link *l = net->links; l; l = l->next)
		waiting += l->listen_port && l->fd < 0;
	if (net->gw_fd < 0) {
		char holder[128];
		sbx_port_holder(net->gw_port, holder, sizeof(holder));
		sbx_checks_add(c, "preview", SBX_CHECK_WARN,
			       "stop that program, or give the gateway another port (preview_listen in sandboxd.conf) and "
			       "restart sandboxd",
			       "the preview gateway cannot listen on %s%s%s: URLs of the host form are unavailable",
			       cfg->preview_listen, holder[0] ? ", held by " : "", holder);
	} else {
		sbx_checks_add(c, "preview", SBX_CHECK_OK, NULL, "the preview gateway listens on %s", net->gw_addr);
	}
	if (waiting)
		sbx_checks_add(c, "preview", SBX_CHECK_WARN,
			       "stop the programs holding ports of preview_ports, or move preview_ports",
			       "%zu preview link%s wait%s for %s port%s (another program holds it; tried every %d s)", waiting,
			       waiting == 1 ? "" : "s", waiting == 1 ? "s" : "", waiting == 1 ? "its" : "their",
			       waiting == 1 ? "" : "s", LINK_RETRY_MS / 1000);
}

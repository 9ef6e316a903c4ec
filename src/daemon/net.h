/* Sandbox networking in the daemon: the bridge, one veth pair per bridged
 * sandbox, the address allocator, the nftables table, published ports and
 * the preview gateway. The kernel work is in lib/netlink.c and lib/nft.c. */
#ifndef SBX_NET_H
#define SBX_NET_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

#include "daemon.h"
#include "nft.h"

struct sbx_sandbox;
struct sbx_publish;

/* A sandbox's share: its address (kept from create to delete), its egress
 * lists, its published ports, and whether its preview links are public. */
struct sbx_sandbox_net {
	struct in_addr ip; /* 0.0.0.0: none (mode none) */
	bool public;       /* preview links served without a token */
	struct sbx_cidr *allow, *deny;
	size_t n_allow, n_deny;
	struct sbx_publish *ports;
};

/* Start-up: bridge, forwarding, resolvers, the gateway's listener. A host
 * that cannot have a bridge leaves bridge mode unavailable, not the daemon. */
int sbx_net_init(struct sbx_daemon *d, sbx_error **err);
/* After sandboxes were recovered: links, rules and ports come back. */
/* At start-up, before sbx_net_recover: when sb's address lies outside
 * the subnet it gets a new one (true; *was is the old one). The caller
 * saves the sandbox, or puts *was back if it cannot. */
bool sbx_net_readdress(struct sbx_sandbox *sb, struct in_addr *was);
void sbx_net_recover(struct sbx_daemon *d);
/* Clean shutdown: nothing of ours stays in the kernel. */
void sbx_net_shutdown(struct sbx_daemon *d);
bool sbx_net_available(struct sbx_daemon *d);
/* The bridge's address: every bridged sandbox's default gateway. */
struct in_addr sbx_net_gateway(struct sbx_daemon *d);

/* The resolv.conf a bridged sandbox gets (caller frees). */
char *sbx_net_resolv(struct sbx_daemon *d);
/* A free address for a new bridged sandbox. */
int sbx_net_allocate(struct sbx_daemon *d, struct in_addr *out, sbx_error **err);
/* The link a bridged sandbox's box makes at its start: its address, the
 * gateway, the subnet's prefix, the device group, the MTU, sv<id>. */
void sbx_net_link(struct sbx_sandbox *sb, struct sbx_box_net *out);
/* The veth pair of a started sandbox again, configured inside; idempotent. */
int sbx_net_attach(struct sbx_sandbox *sb, sbx_error **err);
/* Stop: the pair goes, proxied connections end; preview links stay. */
void sbx_net_detach(struct sbx_sandbox *sb);
/* Delete: also its published ports (freed, with its egress lists), rules
 * and preview links. */
void sbx_net_release(struct sbx_sandbox *sb);
void sbx_net_free(struct sbx_sandbox_net *n);
/* Rewrites the nftables table from every sandbox. */
int sbx_net_apply_rules(struct sbx_daemon *d, sbx_error **err);

/* Published ports (net.c). */
int sbx_net_publish(struct sbx_sandbox *sb, uint16_t port, uint16_t host_port, const char *host_ip,
		    uint16_t *bound, sbx_error **err);
int sbx_net_unpublish(struct sbx_sandbox *sb, uint16_t port, sbx_error **err);
/* A publication read from sandbox.json, listening from sbx_net_recover. */
int sbx_net_ports_add_saved(struct sbx_sandbox *sb, uint16_t port, uint16_t host_port, const char *host_ip);
/* Iteration over a sandbox's publications. */
struct sbx_publish *sbx_net_ports_next(struct sbx_sandbox *sb, struct sbx_publish *prev, uint16_t *port,
				       uint16_t *host_port, const char **host_ip);
/* A preview link as net.preview hands it out. */
struct sbx_preview {
	char url[320];      /* a base without a trailing slash */
	char host_url[320]; /* the Host-routed form; "" when the shared listener is down */
	char token[65];
	char gateway[96];   /* host:port to connect to */
	int64_t expires_ns; /* 0: the link's persistent token */
};
/* Preview links (net.c). Without expires_ns: the link's persistent token,
 * made at the first call and the same after, across stops and restarts,
 * until delete, net.unpreview or rotate (a new persistent token). With
 * expires_ns: a new token that ends then. The URL is the link's either
 * way. Kept in the state dir. */
int sbx_net_preview(struct sbx_sandbox *sb, uint16_t port, int64_t expires_ns, bool rotate, struct sbx_preview *out,
		    sbx_error **err);
/* Revokes the link of port (0: every link of the sandbox) and ends its
 * connections; how many links went. */
int sbx_net_unpreview(struct sbx_sandbox *sb, uint16_t port, sbx_error **err);

/* The sandbox's address lies in a network another program of the host
 * took after sandboxd chose the subnet: the reason, in words. */
bool sbx_net_conflict(struct sbx_sandbox *sb, char *out, size_t n);
/* system.doctor's network lines: ip_forward, subnet conflicts, forward
 * chains of other tables, the preview gateway. */
struct sbx_checks;
void sbx_net_doctor(struct sbx_daemon *d, struct sbx_checks *c);

void rpc_net_publish(struct sbx_request *req);
void rpc_net_unpublish(struct sbx_request *req);
void rpc_net_ports(struct sbx_request *req);
void rpc_net_preview(struct sbx_request *req);
void rpc_net_unpreview(struct sbx_request *req);

#endif

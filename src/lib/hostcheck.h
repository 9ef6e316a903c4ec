/* What a host needs for sandboxd, checked one thing at a time, each
 * result a line with the fix when something is wrong: the checks of
 * `sandboxctl doctor` and of system.doctor. The daemon runs them with what
 * it knows (its subnet, group and listeners); sandboxctl runs them with
 * the configuration file alone when the daemon is down. Checks only look
 * (or try something in a child that is thrown away); they never change
 * the host. */
#ifndef SBX_HOSTCHECK_H
#define SBX_HOSTCHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "firewalls.h"
#include "subnet.h"

enum sbx_check_status { SBX_CHECK_OK, SBX_CHECK_WARN, SBX_CHECK_FAIL };

struct sbx_check {
	char name[24];
	enum sbx_check_status status;
	char *message;
	char *fix; /* NULL when ok */
};

struct sbx_checks {
	struct sbx_check *v;
	size_t n;
};

/* fix may be NULL; the message is formatted. */
void sbx_checks_add(struct sbx_checks *c, const char *name, enum sbx_check_status status, const char *fix,
		    const char *fmt, ...) __attribute__((format(printf, 5, 6)));
void sbx_checks_free(struct sbx_checks *c);
const char *sbx_check_status_name(enum sbx_check_status s);
/* Whether any check failed. */
bool sbx_checks_failed(const struct sbx_checks *c);

/* The cgroup hierarchies as the host mounts them: mode and the cpu,
 * memory and pids controllers sandboxd limits with. */
void sbx_hostcheck_cgroup(struct sbx_checks *c);
/* A user namespace can be made, and the state dir's file system takes an
 * idmapped mount (what a sandbox with its own user namespace needs). */
void sbx_hostcheck_userns(struct sbx_checks *c, const char *state_dir, bool userns_enabled);
void sbx_hostcheck_overlay(struct sbx_checks *c);
void sbx_hostcheck_nftables(struct sbx_checks *c);
/* running: sandboxd is up, so it should have turned forwarding on. */
void sbx_hostcheck_ip_forward(struct sbx_checks *c, bool running);

/* What sandboxd does, or would do, about a forward chain that drops. */
struct sbx_forward_fixes {
	bool iptables;          /* iptables_forward */
	const char *firewalld_zone; /* "" or NULL: off */
};
/* One line per forward chain of another table that drops sandbox traffic
 * (else one ok line). running: the daemon is up and has done what it
 * does, so a drop is a failure; otherwise what it will do at start is
 * said. */
void sbx_hostcheck_forward(struct sbx_checks *c, const struct sbx_fw_net *net, const struct sbx_forward_fixes *fx,
			   bool running);

/* The subnet sandboxd has or would take: subnet as set in sandboxd.conf
 * (NULL: none), else the one kept in the state dir (kept, NULL: none),
 * else the first free of pool; against the host's routes and addresses
 * (but those of bridge, which is sandboxd's own). */
/* *out: that subnet, when there is one (true). */
bool sbx_hostcheck_subnet(struct sbx_checks *c, const char *subnet, const char *kept, const char *pool,
			  const char *bridge, struct sbx_cidr *out);

/* The free space and inodes of the file system of dir (or of its
 * closest existing parent). */
void sbx_hostcheck_space(struct sbx_checks *c, const char *dir);
/* The control socket: there, a socket, mode 0660, group sandboxd. */
void sbx_hostcheck_socket(struct sbx_checks *c, const char *path);
/* Whether ADDRESS:PORT can be listened on, or who holds it. */
void sbx_hostcheck_port(struct sbx_checks *c, const char *name, const char *spec);
/* The program listening on a local TCP port, "name (pid N)", or "". */
void sbx_port_holder(uint16_t port, char *out, size_t n);

#endif

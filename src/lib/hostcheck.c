/* Host checks. Anything tried (a user namespace, an idmapped mount, an
 * overlay instance, a listening socket) is made in a throw-away child or
 * closed at once. */
#include "config.h"
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/magic.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hostcheck.h"
#include "netlink.h"
#include "syscalls.h"
#include "userns.h"
#include "util.h"

void sbx_checks_add(struct sbx_checks *c, const char *name, enum sbx_check_status status, const char *fix,
		    const char *fmt, ...)
{
	struct sbx_check *grown = realloc(c->v, (c->n + 1) * sizeof(*grown));
	if (!grown)
		return;
	c->v = grown;
	struct sbx_check *k = &c->v[c->n];
	memset(k, 0, sizeof(*k));
	snprintf(k->name, sizeof(k->name), "%s", name);
	k->status = status;
	va_list ap;
	va_start(ap, fmt);
	if (vasprintf(&k->message, fmt, ap) < 0)
		k->message = NULL;
	va_end(ap);
	k->fix = fix && status != SBX_CHECK_OK ? strdup(fix) : NULL;
	if (!k->message)
		return;
	c->n++;
}

void sbx_checks_free(struct sbx_checks *c)
{
	for (size_t i = 0; i < c->n; i++) {
		free(c->v[i].message);
		free(c->v[i].fix);
	}
	free(c->v);
	c->v = NULL;
	c->n = 0;
}

const char *sbx_check_status_name(enum sbx_check_status s)
{
	return s == SBX_CHECK_OK ? "ok" : s == SBX_CHECK_WARN ? "warn" : "fail";
}

bool sbx_checks_failed(const struct sbx_checks *c)
{
	for (size_t i = 0; i < c->n; i++)
		if (c->v[i].status == SBX_CHECK_FAIL)
			return true;
	return false;
}

/* ---- cgroups ---- */

static bool word_in(const char *list, const char *word)
{
	size_t n = strlen(word);
	for (const char *p = list; (p = strstr(p, word)); p += n)
		if ((p == list || p[-1] == ' ' || p[-1] == '\n') && (!p[n] || p[n] == ' ' || p[n] == '\n'))
			return true;
	return false;
}

void sbx_hostcheck_cgroup(struct sbx_checks *c)
{
	static const char *const want[] = { "cpu", "memory", "pids" };
	struct statfs sf;
	char missing[64] = "";
	if (statfs("/sys/fs/cgroup", &sf) == 0 && sf.f_type == CGROUP2_SUPER_MAGIC) {
		_cleanup_free_ char *ctrl = NULL;
		sbx_read_file_at(AT_FDCWD, "/sys/fs/cgroup/cgroup.controllers", 4096, &ctrl, NULL, NULL);
		for (size_t i = 0; i < SBX_ARRAY_SIZE(want); i++)
			if (!ctrl || !word_in(ctrl, want[i]))
				snprintf(missing + strlen(missing), sizeof(missing) - strlen(missing), " %s", want[i]);
		if (missing[0])
			sbx_checks_add(c, "cgroup", SBX_CHECK_WARN,
				       "enable them in the kernel (CONFIG_MEMCG, CONFIG_CGROUP_PIDS, CONFIG_CGROUP_SCHED) or "
				       "free them from cgroup v1 (cgroup_no_v1=all on the kernel command line)",
				       "v2; controllers missing:%s (limits of those are unavailable)", missing);
		else
			sbx_checks_add(c, "cgroup", SBX_CHECK_OK, NULL, "v2, controllers cpu memory pids");
		return;
	}
	struct stat st;
	if (statfs("/sys/fs/cgroup/unified", &sf) != 0 || sf.f_type != CGROUP2_SUPER_MAGIC) {
		sbx_checks_add(c, "cgroup", SBX_CHECK_FAIL,
			       "mount it: mount -t cgroup2 none /sys/fs/cgroup/unified, or boot with "
			       "systemd.unified_cgroup_hierarchy=1",
			       "no cgroup v2 hierarchy (sandboxd tracks and kills sandboxes there)");
		return;
	}
	for (size_t i = 0; i < SBX_ARRAY_SIZE(want); i++) {
		char path[64];
		snprintf(path, sizeof(path), "/sys/fs/cgroup/%s/cgroup.procs", want[i]);
		if (stat(path, &st) != 0)
			snprintf(missing + strlen(missing), sizeof(missing) - strlen(missing), " %s", want[i]);
	}
	if (missing[0])
		sbx_checks_add(c, "cgroup", SBX_CHECK_WARN,
			       "mount the v1 hierarchies of those controllers under /sys/fs/cgroup, or boot with "
			       "systemd.unified_cgroup_hierarchy=1 for cgroup v2",
			       "hybrid (v1 controllers, v2 hierarchy); v1 controllers missing:%s (limits of those are "
			       "unavailable)",
			       missing);
	else
		sbx_checks_add(c, "cgroup", SBX_CHECK_OK, NULL,
			       "hybrid: limits through the v1 controllers cpu memory pids, tracking in the v2 hierarchy");
}

/* ---- namespaces and file systems ---- */

/* In a child: 0, or the errno of what failed, as its exit status. */
static int in_child(int (*fn)(void *), void *arg)
{
	pid_t pid = fork();
	if (pid < 0)
		return errno;
	if (pid == 0)
		_exit(fn(arg));
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return errno;
	return WIFEXITED(status) ? WEXITSTATUS(status) : EIO;
}

static int try_userns(void *arg)
{
	(void)arg;
	return unshare(CLONE_NEWUSER) < 0 ? errno : 0;
}

struct idmap_try {
	const char *dir;
	int userns;
};

static int try_idmap(void *arg)
{
	struct idmap_try *t = arg;
	int tree = open_tree(AT_FDCWD, t->dir, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
	if (tree < 0)
		return errno;
	struct mount_attr attr = { .attr_set = MOUNT_ATTR_IDMAP, .userns_fd = (uint64_t)t->userns };
	return mount_setattr(tree, "", AT_EMPTY_PATH, &attr, sizeof(attr)) < 0 ? errno : 0;
}

/* The closest existing directory of path. */
static void existing_dir(const char *path, char *out, size_t n)
{
	snprintf(out, n, "%s", path && *path ? path : "/");
	struct stat st;
	while (stat(out, &st) != 0 || !S_ISDIR(st.st_mode)) {
		char *slash = strrchr(out, '/');
		if (!slash || slash == out) {
			snprintf(out, n, "/");
			return;
		}
		*slash = '\0';
	}
}

void sbx_hostcheck_userns(struct sbx_checks *c, const char *state_dir, bool userns_enabled)
{
	if (!userns_enabled) {
		sbx_checks_add(c, "userns", SBX_CHECK_OK, NULL,
			       "off (userns = false): root in a sandbox is root on the host's files it can reach");
		return;
	}
	int e = in_child(try_userns, NULL);
	if (e) {
		_cleanup_free_ char *max = NULL;
		sbx_read_file_at(AT_FDCWD, "/proc/sys/user/max_user_namespaces", 64, &max, NULL, NULL);
		sbx_checks_add(c, "userns", SBX_CHECK_FAIL,
			       "sysctl -w user.max_user_namespaces=15000 (and in /etc/sysctl.d), or set userns = false in "
			       "sandboxd.conf",
			       "a user namespace cannot be made: %s (user.max_user_namespaces = %s)", strerror(e),
			       max ? strtok(max, "\n") : "?");
		return;
	}
	char dir[4096];
	existing_dir(state_dir, dir, sizeof(dir));
	sbx_error *err = NULL;
	int ns = sbx_userns_create(1000000000, SBX_USERNS_SIZE, &err);
	if (ns < 0) {
		sbx_checks_add(c, "userns", SBX_CHECK_FAIL, "set userns = false in sandboxd.conf",
			       "a user namespace with an id map cannot be made: %s", err->msg);
		sbx_error_free(err);
		return;
	}
	struct idmap_try t = { dir, ns };
	e = in_child(try_idmap, &t);
	close(ns);
	struct statfs sf;
	char fstype[32] = "?";
	if (statfs(dir, &sf) == 0)
		snprintf(fstype, sizeof(fstype), "0x%lx", (unsigned long)sf.f_type);
	if (e)
		sbx_checks_add(c, "userns", SBX_CHECK_FAIL,
			       "put the state dir on a file system that supports idmapped mounts (ext4, xfs, btrfs, tmpfs "
			       "on Linux 6.3 or later), or set userns = false in sandboxd.conf",
			       "user namespaces work, but %s (file system type %s) refuses an idmapped mount: %s", dir,
			       fstype, strerror(e));
	else
		sbx_checks_add(c, "userns", SBX_CHECK_OK, NULL, "user namespaces and idmapped mounts on %s", dir);
}

void sbx_hostcheck_overlay(struct sbx_checks *c)
{
	/* fsopen loads the module when it is one. */
	int fd = fsopen("overlay", FSOPEN_CLOEXEC);
	if (fd < 0) {
		sbx_checks_add(c, "overlayfs", SBX_CHECK_FAIL, "modprobe overlay (CONFIG_OVERLAY_FS)",
			       "overlayfs is not available: %s", strerror(errno));
		return;
	}
	close(fd);
	sbx_checks_add(c, "overlayfs", SBX_CHECK_OK, NULL, "available");
}

void sbx_hostcheck_nftables(struct sbx_checks *c)
{
	sbx_error *e = NULL;
	if (sbx_fw_probe(&e) < 0) {
		sbx_checks_add(c, "nftables", SBX_CHECK_FAIL,
			       e->errnum == EPERM ? "run as root (CAP_NET_ADMIN)" : "modprobe nf_tables (CONFIG_NF_TABLES)",
			       "nftables cannot be read: %s", e->msg);
		sbx_error_free(e);
		return;
	}
	sbx_checks_add(c, "nftables", SBX_CHECK_OK, NULL, "available");
}

void sbx_hostcheck_ip_forward(struct sbx_checks *c, bool running)
{
	_cleanup_free_ char *v = NULL;
	if (sbx_read_file_at(AT_FDCWD, "/proc/sys/net/ipv4/ip_forward", 16, &v, NULL, NULL) < 0) {
		sbx_checks_add(c, "ip_forward", SBX_CHECK_WARN, "check that the kernel has IPv4 networking",
			       "/proc/sys/net/ipv4/ip_forward cannot be read: %m");
		return;
	}
	if (v[0] == '1')
		sbx_checks_add(c, "ip_forward", SBX_CHECK_OK, NULL, "net.ipv4.ip_forward = 1");
	else if (running)
		sbx_checks_add(c, "ip_forward", SBX_CHECK_FAIL,
			       "sysctl -w net.ipv4.ip_forward=1, and remove the setting that turns it off (/etc/sysctl.d)",
			       "net.ipv4.ip_forward = 0 although sandboxd turned it on at start: sandboxes have no "
			       "egress");
	else
		sbx_checks_add(c, "ip_forward", SBX_CHECK_OK, NULL, "net.ipv4.ip_forward = 0; sandboxd turns it on at start");
}

/* ---- forwarding through other firewalls ---- */

static bool firewalld_zone_known(const char *zone)
{
	static const char *const dirs[] = { "/etc/firewalld/zones", "/usr/lib/firewalld/zones",
					    "/usr/local/lib/firewalld/zones" };
	for (size_t i = 0; i < SBX_ARRAY_SIZE(dirs); i++) {
		char path[512];
		struct stat st;
		snprintf(path, sizeof(path), "%s/%s.xml", dirs[i], zone);
		if (stat(path, &st) == 0)
			return true;
	}
	return false;
}

void sbx_hostcheck_forward(struct sbx_checks *c, const struct sbx_fw_net *net, const struct sbx_forward_fixes *fx,
			   bool running)
{
	struct sbx_fw_report r;
	sbx_error *e = NULL;
	if (sbx_fw_judge(net, &r, &e) < 0) {
		sbx_checks_add(c, "forward", SBX_CHECK_WARN, "run as root", "%s", e->msg);
		sbx_error_free(e);
		return;
	}
	char subnet[SBX_CIDR_STRLEN];
	sbx_cidr_format(net->subnet, subnet);
	size_t dropping = 0;
	for (size_t i = 0; i < r.n; i++) {
		const struct sbx_fw_judgement *j = &r.chains[i];
		const char *note = j->uncertain ? " (rules sandboxd cannot evaluate were taken as not matching)" : "";
		if (!sbx_fw_drops(j)) {
			if (r.ours && j->owner == SBX_FW_IPTABLES)
				sbx_checks_add(c, "forward", SBX_CHECK_OK, NULL,
					       "table ip filter chain FORWARD lets sandbox traffic through: %s%s", j->why_out,
					       note);
			continue;
		}
		dropping++;
		const char *what = j->out == SBX_FW_DROP ? j->why_out : j->why_back;
		const char *dir = j->out == SBX_FW_DROP ? "sandbox traffic" : "answers to sandboxes";
		char fix[1024];
		sbx_fw_manual_fix(net, j, fix, sizeof(fix));
		bool automatic = (j->owner == SBX_FW_IPTABLES && fx->iptables) ||
				 (j->owner == SBX_FW_FIREWALLD && fx->firewalld_zone && *fx->firewalld_zone &&
				  firewalld_zone_known(fx->firewalld_zone));
		if (!running && automatic) {
			if (j->owner == SBX_FW_IPTABLES)
				sbx_checks_add(c, "forward", SBX_CHECK_OK, NULL,
					       "table ip filter chain FORWARD drops %s (%s); sandboxd adds accept rules for "
					       "%s to chain %s when it starts (iptables_forward)",
					       dir, what, subnet, r.docker_user ? "DOCKER-USER" : "FORWARD");
			else
				sbx_checks_add(c, "forward", SBX_CHECK_OK, NULL,
					       "firewalld (chain %s) drops %s (%s); sandboxd puts its links in zone %s "
					       "when it starts (firewalld_zone)",
					       j->chain, dir, what, fx->firewalld_zone);
			continue;
		}
		sbx_checks_add(c, "forward", running ? SBX_CHECK_FAIL : SBX_CHECK_WARN, fix,
			       "table %s %s chain %s drops %s: %s%s%s", j->family, j->table, j->chain, dir, what, note,
			       running ? "; sandboxes have no egress" : "");
	}
	if (r.legacy_filter)
		sbx_checks_add(c, "forward", SBX_CHECK_WARN,
			       "see iptables-legacy -S FORWARD; if it drops, iptables-legacy -I FORWARD -i sv+ -j ACCEPT and "
			       "iptables-legacy -I FORWARD -o sv+ -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT, or "
			       "move to iptables-nft (update-alternatives --set iptables /usr/sbin/iptables-nft)",
			       "iptables-legacy's filter table is loaded: its FORWARD chain is out of sandboxd's sight");
	if (!dropping && !(r.ours))
		sbx_checks_add(c, "forward", SBX_CHECK_OK, NULL,
			       r.n ? "%zu forward chain%s of other tables let%s sandbox traffic through" :
				     "no other table filters forwarded traffic",
			       r.n, r.n == 1 ? "" : "s", r.n == 1 ? "s" : "");
	sbx_fw_report_free(&r);
}

/* ---- the subnet ---- */

bool sbx_hostcheck_subnet(struct sbx_checks *c, const char *subnet, const char *kept, const char *pool,
			  const char *bridge, struct sbx_cidr *out)
{
	struct sbx_nl nl = { 0 };
	_cleanup_free_ struct sbx_nl_prefix *p = NULL;
	size_t n = 0;
	sbx_error *e = NULL;
	if (sbx_nl_open(&nl, &e) < 0 || sbx_nl_prefixes(&nl, &p, &n, &e) < 0) {
		sbx_checks_add(c, "subnet", SBX_CHECK_WARN, "run as root", "%s", e->msg);
		sbx_error_free(e);
		sbx_nl_close(&nl);
		return false;
	}
	sbx_nl_close(&nl);
	/* A bridge of that name left by a daemon that did not stop cleanly:
	 * its routes are sandboxd's own. */
	uint32_t group = 0;
	for (size_t i = 0; i < n; i++)
		if (bridge && !strcmp(p[i].ifname, bridge))
			group = (uint32_t)p[i].ifindex;
	char what[160];
	struct sbx_cidr want;
	if (subnet && *subnet) {
		if (sbx_cidr_parse(subnet, &want.net, &want.prefix) < 0 || want.prefix < 8 || want.prefix > 30) {
			sbx_checks_add(c, "subnet", SBX_CHECK_FAIL, "give subnet an IPv4 CIDR from /8 to /30 in sandboxd.conf",
				       "subnet '%s' is not an IPv4 CIDR from /8 to /30; sandboxd refuses to start", subnet);
			return false;
		}
		const struct sbx_nl_prefix *hit = sbx_subnet_conflict(p, n, want, bridge, group);
		if (hit) {
			sbx_subnet_describe(hit, what, sizeof(what));
			sbx_checks_add(c, "subnet", SBX_CHECK_FAIL,
				       "set subnet to a range nothing else uses, or remove it so that sandboxd picks a free "
				       "one from subnet_pool",
				       "subnet %s (sandboxd.conf) overlaps %s; sandboxd refuses to start", subnet, what);
		} else {
			sbx_checks_add(c, "subnet", SBX_CHECK_OK, NULL, "%s (sandboxd.conf) overlaps nothing on the host",
				       subnet);
		}
		*out = want;
		return true;
	}
	if (kept && *kept && sbx_cidr_parse(kept, &want.net, &want.prefix) == 0) {
		const struct sbx_nl_prefix *hit = sbx_subnet_conflict(p, n, want, bridge, group);
		if (!hit) {
			sbx_checks_add(c, "subnet", SBX_CHECK_OK, NULL, "%s, kept from an earlier start, overlaps nothing",
				       kept);
			*out = want;
			return true;
		}
		sbx_subnet_describe(hit, what, sizeof(what));
		sbx_checks_add(c, "subnet", SBX_CHECK_WARN,
			       "nothing to do unless the sandboxes' addresses must stay; then remove that network first",
			       "%s, kept from an earlier start, now overlaps %s; at its next start sandboxd moves to a "
			       "free subnet of subnet_pool and gives its sandboxes new addresses",
			       kept, what);
	}
	_cleanup_free_ struct sbx_subnet_pool *pools = NULL;
	size_t np = 0;
	if (sbx_subnet_pool_parse("subnet_pool", pool, &pools, &np, &e) < 0) {
		sbx_checks_add(c, "subnet", SBX_CHECK_FAIL, "fix subnet_pool in sandboxd.conf", "%s", e->msg);
		sbx_error_free(e);
		return false;
	}
	_cleanup_free_ struct sbx_cidr *taken = calloc(n ? n : 1, sizeof(*taken));
	size_t nt = 0;
	for (size_t i = 0; taken && i < n; i++)
		if (sbx_subnet_foreign(&p[i], bridge, group))
			taken[nt++] = (struct sbx_cidr){ p[i].net, p[i].prefix };
	if (!taken || sbx_subnet_pick(pools, np, taken, nt, &want) < 0) {
		sbx_checks_add(c, "subnet", SBX_CHECK_FAIL, "add a free range to subnet_pool, or set subnet, in sandboxd.conf",
			       "every subnet of subnet_pool (%s) overlaps a route or address of the host", pool);
		return false;
	}
	char s[SBX_CIDR_STRLEN];
	sbx_cidr_format(want, s);
	if (!kept || !*kept)
		sbx_checks_add(c, "subnet", SBX_CHECK_OK, NULL, "sandboxd would take %s, the first free subnet of subnet_pool",
			       s);
	*out = want;
	return true;
}

/* ---- space, socket, ports ---- */

void sbx_hostcheck_space(struct sbx_checks *c, const char *dir)
{
	char at[4096];
	existing_dir(dir, at, sizeof(at));
	struct statvfs sv;
	if (statvfs(at, &sv) < 0) {
		sbx_checks_add(c, "space", SBX_CHECK_WARN, "check the state dir", "statvfs %s: %m", at);
		return;
	}
	uint64_t avail = (uint64_t)sv.f_bavail * sv.f_frsize, total = (uint64_t)sv.f_blocks * sv.f_frsize;
	uint64_t mib = avail >> 20;
	bool inodes = sv.f_files > 0;
	if (mib < 256 || (inodes && sv.f_favail < 1000))
		sbx_checks_add(c, "space", SBX_CHECK_FAIL,
			       "free space on that file system (delete unused sandboxes and images), or move state_dir",
			       "%s: %llu MiB and %llu inodes free: sandboxes cannot be created", at,
			       (unsigned long long)mib, (unsigned long long)sv.f_favail);
	else if (mib < 2048 || (total && avail * 20 < total) || (inodes && sv.f_favail < 50000))
		sbx_checks_add(c, "space", SBX_CHECK_WARN,
			       "free space on that file system (delete unused sandboxes and images), or move state_dir",
			       "%s: only %llu MiB (%llu%%) and %llu inodes free", at, (unsigned long long)mib,
			       (unsigned long long)(total ? avail * 100 / total : 0), (unsigned long long)sv.f_favail);
	else
		sbx_checks_add(c, "space", SBX_CHECK_OK, NULL, "%s: %llu MiB free", at, (unsigned long long)mib);
}

void sbx_hostcheck_socket(struct sbx_checks *c, const char *path)
{
	struct stat st;
	if (stat(path, &st) < 0) {
		sbx_checks_add(c, "socket", SBX_CHECK_WARN, "start sandboxd (systemctl start sandboxd)",
			       "%s: %m: sandboxd is not running", path);
		return;
	}
	if (!S_ISSOCK(st.st_mode)) {
		sbx_checks_add(c, "socket", SBX_CHECK_FAIL, "remove it and restart sandboxd", "%s is not a socket", path);
		return;
	}
	struct group *gr = getgrgid(st.st_gid);
	const char *gname = gr ? gr->gr_name : "?";
	unsigned mode = st.st_mode & 07777;
	if (mode & 0006)
		sbx_checks_add(c, "socket", SBX_CHECK_FAIL, "chmod 0660 it (sandboxd sets 0660 at start)",
			       "%s has mode %04o: any user can control sandboxd", path, mode);
	else if (!getgrnam("sandboxd"))
		sbx_checks_add(c, "socket", SBX_CHECK_WARN, "groupadd --system sandboxd, then restart sandboxd",
			       "%s, mode %04o, group %s: the group sandboxd does not exist, so only root can use sandboxd",
			       path, mode, gname);
	else if (strcmp(gname, "sandboxd"))
		sbx_checks_add(c, "socket", SBX_CHECK_WARN, "restart sandboxd (it sets the group at start)",
			       "%s, mode %04o, group %s instead of sandboxd", path, mode, gname);
	else
		sbx_checks_add(c, "socket", SBX_CHECK_OK, NULL, "%s, mode %04o, group sandboxd", path, mode);
}

/* The inode of the socket listening on port (0.0.0.0, 127.0.0.1 or any
 * local address), from /proc/net/tcp. */
static unsigned long listening_inode(uint16_t port)
{
	_cleanup_fclose_ FILE *f = fopen("/proc/net/tcp", "re");
	if (!f)
		return 0;
	char line[512];
	while (fgets(line, sizeof(line), f)) {
		unsigned lport, state;
		unsigned long inode;
		if (sscanf(line, " %*d: %*8x:%4x %*8x:%*4x %2x %*8x:%*8x %*2x:%*8x %*8x %*u %*d %lu", &lport, &state,
			   &inode) == 3 &&
		    lport == port && state == 0x0A)
			return inode;
	}
	return 0;
}

void sbx_port_holder(uint16_t port, char *out, size_t n)
{
	out[0] = '\0';
	unsigned long inode = listening_inode(port);
	if (!inode)
		return;
	char want[64];
	snprintf(want, sizeof(want), "socket:[%lu]", inode);
	_cleanup_closedir_ DIR *proc = opendir("/proc");
	for (struct dirent *de = proc ? readdir(proc) : NULL; de; de = readdir(proc)) {
		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		char fddir[300];
		snprintf(fddir, sizeof(fddir), "/proc/%s/fd", de->d_name);
		_cleanup_closedir_ DIR *fds = opendir(fddir);
		for (struct dirent *fe = fds ? readdir(fds) : NULL; fe; fe = readdir(fds)) {
			char link[600], target[64];
			snprintf(link, sizeof(link), "%s/%s", fddir, fe->d_name);
			ssize_t l = readlink(link, target, sizeof(target) - 1);
			if (l <= 0)
				continue;
			target[l] = '\0';
			if (strcmp(target, want))
				continue;
			char comm_path[300];
			_cleanup_free_ char *comm = NULL;
			snprintf(comm_path, sizeof(comm_path), "/proc/%s/comm", de->d_name);
			sbx_read_file_at(AT_FDCWD, comm_path, 64, &comm, NULL, NULL);
			if (comm)
				comm[strcspn(comm, "\n")] = '\0';
			snprintf(out, n, "%s (pid %s)", comm ? comm : "?", de->d_name);
			return;
		}
	}
}

void sbx_hostcheck_port(struct sbx_checks *c, const char *name, const char *spec)
{
	if (!spec || !*spec) {
		sbx_checks_add(c, name, SBX_CHECK_OK, NULL, "off (preview_listen is empty)");
		return;
	}
	const char *colon = strrchr(spec, ':');
	struct sockaddr_in sa = { .sin_family = AF_INET };
	char ip[64];
	int64_t port;
	if (!colon || (size_t)(colon - spec) >= sizeof(ip) || sbx_parse_int64(colon + 1, 0, 65535, &port) < 0) {
		sbx_checks_add(c, name, SBX_CHECK_FAIL, "set preview_listen = ADDRESS:PORT in sandboxd.conf",
			       "preview_listen '%s' is not ADDRESS:PORT", spec);
		return;
	}
	memcpy(ip, spec, (size_t)(colon - spec));
	ip[colon - spec] = '\0';
	if (inet_pton(AF_INET, ip, &sa.sin_addr) != 1) {
		sbx_checks_add(c, name, SBX_CHECK_FAIL, "set preview_listen = ADDRESS:PORT in sandboxd.conf",
			       "preview_listen '%s': '%s' is not an IPv4 address", spec, ip);
		return;
	}
	sa.sin_port = htons((uint16_t)port);
	_cleanup_close_ int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
		sbx_checks_add(c, name, SBX_CHECK_OK, NULL, "%s is free for the preview gateway", spec);
		return;
	}
	int e = errno;
	char holder[128];
	sbx_port_holder((uint16_t)port, holder, sizeof(holder));
	sbx_checks_add(c, name, SBX_CHECK_WARN,
		       "stop that program, or give the gateway another port (preview_listen in sandboxd.conf)",
		       "%s cannot be listened on: %s%s%s; preview URLs of the host form would be unavailable", spec,
		       strerror(e), holder[0] ? ", held by " : "", holder);
}

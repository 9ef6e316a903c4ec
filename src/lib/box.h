/* The sandbox model: what a sandbox is (its description: image layers,
 * writable layer and disk limit, resources, id mapping, capabilities,
 * seccomp program, hostname, environment, network attachment) and its
 * lifecycle on this host: build, start, join, pause, stop, destroy, and
 * recover from what is on disk after its owner went away.
 *
 * It knows nothing of JSON, sockets, event loops, requests or clients: a
 * daemon, a command line tool or a test drive it alike. Nothing here keeps
 * global state; a box and its host are all there is. Every call that can
 * block for long says so; the others cost a few system calls.
 *
 * On disk, a box keeps its own state file, <state_dir>/sandboxes/<id>/box
 * (key=value lines, rewritten atomically), beside whatever its owner keeps
 * in the same directory: the description, and while it runs its cgroup,
 * init pid and init start time. */
#ifndef SBX_BOX_H
#define SBX_BOX_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "cgroup.h"
#include "error.h"
#include "seccomp_filter.h"
#include "spawn.h"

/* Where sandboxes live on this host. Owned by the caller; it must outlive
 * every box made with it, and its descriptors stay the caller's. */
struct sbx_box_host {
	struct sbx_cgroup_root *cg; /* settled by sbx_cgroup_root_init */
	int state_fd;               /* state_dir: sandboxes/<id>/ holds upper/, work/, disk.img, box */
	const char *state_dir;
	int run_fd;                 /* run_dir: sandboxes/<id>/ holds the mount points of a start */
	const char *run_dir;
	int init_exe_fd;            /* sealed sandbox-init (sbx_init_exe_load) */
	bool prjquota;              /* disk limits by project quota; else an ext4 image on a loop device */
	bool allow_swap;            /* every box's limits.allow_swap */
	/* Loop devices for disk images. NULL: made with sbx_loop_add and left
	 * to autoclear; a caller that tracks and removes the devices it makes
	 * passes its own (owner is the box's id). */
	int (*loop_attach)(void *ctx, const char *owner, const char *image, char devpath[32], sbx_error **err);
	void (*loop_release)(void *ctx, const char *owner);
	void *loop_ctx;
};

/* A bridged sandbox's link: a veth pair whose host end (host_name, in
 * device group group, no address) has a /32 route to ip and a permanent
 * neighbour entry for it, and whose peer, eth0 inside, has ip/prefix, a
 * permanent neighbour entry for the gateway and the default route
 * through it. ip 0.0.0.0: no link, only loopback. */
struct sbx_box_net {
	struct in_addr ip;
	struct in_addr gateway;
	int prefix;
	uint32_t group;
	uint32_t mtu;       /* 0: the kernel's default */
	char host_name[16]; /* at most 15 characters (IFNAMSIZ) */
};

/* The description a box is built from; copied by sbx_box_build. */
struct sbx_box_spec {
	const char *id;                   /* 12 lower-case hex digits */
	const char *const *layers;        /* lower directories, topmost first, NULL-terminated */
	const char *hostname;
	const char *workdir;              /* created at start if missing; commands' default cwd */
	const char *user;                 /* commands' default user (name, uid or uid:gid) */
	const char *const *env;           /* KEY=VALUE, NULL-terminated; may be NULL */
	struct sbx_limits limits;         /* 0 = unlimited; allow_swap comes from the host */
	int64_t disk_mb;                  /* writable layer limit; 0 = none */
	uint32_t projid;                  /* with host->prjquota and disk_mb: its project id, unused by other boxes */
	uint32_t userns_base;             /* host id of root inside; 0 = no user namespace */
	uint64_t caps;                    /* capability set of root inside */
	struct sbx_box_net net;
};

struct sbx_box {
	const struct sbx_box_host *host;
	char id[13];
	/* The description (owned). layers may be replaced before a start
	 * (sbx_box_set_layers): an image's directories can move. */
	char **layers;
	char *hostname, *workdir, *user;
	char **env;
	struct sbx_limits limits;
	int64_t disk_mb;
	uint32_t projid; /* 0: no project quota */
	uint32_t userns_base;
	uint64_t caps;
	struct sbx_box_net net;
	/* Given by the caller for the next start (owned; NULL: /etc/hosts
	 * from the hostname, /etc/resolv.conf the host's). Not saved. */
	char *hosts, *resolv;
	/* The seccomp program of init and of every command: the caller's,
	 * not owned, not saved (compile it again after a restart). NULL:
	 * unconfined. */
	const struct sbx_bpf *seccomp;
	/* What runs. */
	bool starting;   /* between sbx_box_start_begin and its finish or abort */
	bool running;    /* init was started and not yet stopped */
	bool frozen;     /* paused */
	char *cgroup;    /* below the unified mount, e.g. "sandboxd/sbx-<id>" */
	pid_t init_pid;
	uint64_t init_starttime;
	int init_pidfd;  /* -1 when not known (stopped, or not recovered) */
	uint64_t exec_seq; /* the last exec-N group made (saved with the rest, not at each one) */
};

/* ---- build, load, free ---- */

/* Make a new box: its state directory sandboxes/<id>/ with upper/ (owned
 * by the sandbox's root) and work/, the disk limit (a project quota on
 * both, or a sparse copy of the formatted ext4 template of that size in
 * <state_dir>/disk-templates/, made with mkfs.ext4 the first time), and
 * its state file. Nothing runs yet. On failure nothing is left. *out is
 * the caller's (sbx_box_free). Blocks on the disk image copy (and
 * mkfs.ext4 for a new size). */
int sbx_box_build(const struct sbx_box_host *host, const struct sbx_box_spec *spec, struct sbx_box **out,
		  sbx_error **err);
/* A box handle from a description alone, touching nothing on disk: for a
 * caller that migrates a sandbox whose state file is missing (it then
 * sets what runs and calls sbx_box_save). The caller's (sbx_box_free);
 * NULL and err on a bad id or no memory. */
struct sbx_box *sbx_box_new(const struct sbx_box_host *host, const struct sbx_box_spec *spec, sbx_error **err);
/* Read sandboxes/<id>/box into a new handle, the caller's (sbx_box_free).
 * No process or cgroup is touched: see sbx_box_recover. ENOENT (errnum)
 * when there is no state file. */
int sbx_box_load(const struct sbx_box_host *host, const char *id, struct sbx_box **out, sbx_error **err);
/* Write the state file (atomically). */
int sbx_box_save(struct sbx_box *box, sbx_error **err);
/* Forget the handle: closes init's pidfd, frees the description. What
 * runs keeps running; sbx_box_load and sbx_box_recover find it again. */
void sbx_box_free(struct sbx_box *box);
/* Replace the lower directories (topmost first) used by the next start. */
int sbx_box_set_layers(struct sbx_box *box, const char *const *layers, sbx_error **err);

/* ---- start ---- */

/* Start init: the box's cgroup and limits, the run directory's mount
 * points, the disk image's loop device, the user namespace, then clone3
 * of sandbox-init into new namespaces (see spawn.h, rootfs.h), then the
 * network link. On success the box runs and its state is saved; on
 * failure nothing of the start is left. Blocks until init reports its
 * set-up (at most SBX_INIT_SETUP_TIMEOUT_MS) and while the network is set
 * up. */
int sbx_box_start(struct sbx_box *box, sbx_error **err);

/* The same in steps, for a caller that watches init's set-up from its own
 * loop and bounds it as it sees fit: begin does all up to the clone (a
 * few milliseconds, and the disk's loop device) and does not wait; read
 * takes what init's report holds (1 once it has ended: watch
 * st->init.report_fd for reading until then); finish makes the box run
 * (the network link included) or undoes the start; abort kills init and
 * undoes it. Between begin and finish or abort the box is starting: its
 * group exists (sbx_box_set_limits reaches it), and st is the caller's. */
struct sbx_box_starting {
	struct sbx_init_setup init;
	int loopfd; /* the disk's device, held until init has mounted it */
};
int sbx_box_start_begin(struct sbx_box *box, struct sbx_box_starting *st, sbx_error **err);
int sbx_box_start_read(struct sbx_box_starting *st);
int sbx_box_start_finish(struct sbx_box *box, struct sbx_box_starting *st, sbx_error **err);
void sbx_box_start_abort(struct sbx_box *box, struct sbx_box_starting *st);
/* The network link of a running box (again, after a crash of its owner
 * took the host end away); replaces a pair left behind. Blocks on a few
 * netlink round trips (on the host and in the box's namespace). */
int sbx_box_net_attach(struct sbx_box *box, sbx_error **err);

/* ---- join: commands inside ---- */

/* A cgroup for one command below the box's: name NULL makes exec-N with
 * the next unused N (a group left by a command that outlived its owner's
 * restart is never shared); otherwise name, which must not exist yet.
 * Its path (below the unified mount) goes to path. */
int sbx_box_group(struct sbx_box *box, const char *name, char *path, size_t size, sbx_error **err);
/* Fill in what joining the running box takes: init's pidfd, the command
 * group's descriptor (group from sbx_box_group), the v1 groups to join on
 * hybrid hosts, the user namespace, capabilities and seccomp program. The
 * caller fills the command (argv, envp, cwd, user, stdio, tty, extra_fd).
 * The descriptors opened here are the caller's until sbx_box_join_release. */
int sbx_box_join(struct sbx_box *box, const char *group, struct sbx_exec_config *ec, sbx_error **err);
void sbx_box_join_release(struct sbx_exec_config *ec);
/* sbx_box_join, then sbx_spawn_exec_begin: the caller drives the set-up
 * step by step (sbx_spawn_exec_read, _helper_gone, _finish or _abort) from
 * its loop. Does not block. */
int sbx_box_exec_begin(struct sbx_box *box, const char *group, struct sbx_exec_config *ec, struct sbx_exec_setup *st,
		       sbx_error **err);
/* The same, driven to its end here: the command runs (out) or err says why
 * not. Blocks for the set-up, at most timeout_ms (0: SBX_EXEC_SETUP_TIMEOUT_MS). */
int sbx_box_exec(struct sbx_box *box, const char *group, struct sbx_exec_config *ec, struct sbx_spawned *out,
		 int timeout_ms, sbx_error **err);
/* The environment of a command: PATH, HOSTNAME, the box's env, then extra
 * (KEY=VALUE, may be NULL); a later key replaces an earlier one in place.
 * NULL-terminated, the caller frees it (sbx_box_strv_free). */
char **sbx_box_env(const struct sbx_box *box, const char *const *extra);
void sbx_box_strv_free(char **v);
/* A command's working directory: cwd if absolute, else below the box's
 * workdir; the workdir when cwd is NULL. The caller frees it. */
char *sbx_box_cwd(const struct sbx_box *box, const char *cwd);
/* Did a process fail to start (err) because the box is at its pids limit?
 * The set-up's own processes may have left it a pid or two below. */
bool sbx_box_at_pids_limit(struct sbx_box *box, const sbx_error *err);
/* Send sig to every process of the running box but init; how many. */
int sbx_box_signal_all(struct sbx_box *box, int sig, sbx_error **err);
/* Remove the empty child groups whose names start with prefix; how many
 * busy ones are left. */
int sbx_box_prune(struct sbx_box *box, const char *prefix);
/* O_PATH descriptor of the running box's root, through /proc/<init>/root,
 * with init checked to be the same process (a recycled pid would be
 * another root). The descriptor is the caller's. */
int sbx_box_root(struct sbx_box *box, sbx_error **err);

/* ---- a stopped box's files ---- */

/* In a process of the caller's that may change its mount namespace (a
 * worker): unshare it, and mount the stopped box's root there as its
 * start would (disk image attached to loop device loop_index, made by the
 * caller; idmapped layers; overlay) below scratch, an empty directory.
 * Returns an O_PATH descriptor of the root. Blocks on the mounts. */
int sbx_box_mount_root(struct sbx_box *box, const char *scratch, int loop_index, sbx_error **err);
/* Unmount what sbx_box_mount_root mounted below scratch, before the
 * process ends: a start right after must never meet the disk mounted. */
void sbx_box_unmount_root(const char *scratch);
/* The disk image of a box limited by one (not by a project quota), as a
 * path for a loop device; NULL when there is none. The caller frees it. */
char *sbx_box_disk_image(const struct sbx_box *box);

/* ---- resources ---- */

/* New limits: on the running box's groups at once (put back as they were
 * when one cannot be applied), and saved. */
int sbx_box_set_limits(struct sbx_box *box, const struct sbx_limits *limits, sbx_error **err);
/* A new disk limit: only a project quota can change (a disk image has a
 * fixed size), and not to none. Saved. */
int sbx_box_set_disk(struct sbx_box *box, int64_t disk_mb, sbx_error **err);

struct sbx_box_stats {
	struct sbx_cgroup_stats cg; /* zeros when it is not running */
	int64_t disk_bytes;         /* in its writable layer */
	int64_t rx_bytes, tx_bytes; /* on its interfaces but lo */
};
/* Usage; live false leaves out what its processes use (a box being
 * stopped). Reads files; the size of an unlimited writable layer is a
 * walk of its tree. */
void sbx_box_stats(struct sbx_box *box, bool live, struct sbx_box_stats *st);

/* ---- pause, stop ---- */

/* Freeze (or thaw) every process of the running box; saved. Waits for the
 * freeze at most 100 ms. */
int sbx_box_pause(struct sbx_box *box, bool pause, sbx_error **err);

/* A stop, in steps an event loop can drive with its own timers: terminate,
 * watch init's pidfd (and a timer), kill when the time is up, reap init
 * when its pidfd is readable, wait for the group to empty (watch
 * sbx_box_events_open's descriptor, killing again now and then), then
 * sbx_box_stopped. None of them blocks. */

/* Thaw if frozen and send SIGTERM to init; -1 when it could not be sent
 * (kill then). */
int sbx_box_terminate(struct sbx_box *box);
/* cgroup.kill of the box's group, and its CPU limit lifted: killed
 * processes run none of their code any more, but dying takes CPU too, and
 * a small share would make a busy group take seconds to go. The next
 * start applies the limit again. */
void sbx_box_kill(struct sbx_box *box);
/* 1 while a process is in the box's groups, 0 when empty, -1 on error. */
int sbx_box_populated(struct sbx_box *box);
/* For the wait for the group to empty without polling: a descriptor (the
 * caller's) that polls EPOLLPRI when the group's population changes, until
 * sbx_box_events_populated reads it (1, 0 or -1 as above). */
int sbx_box_events_open(struct sbx_box *box, sbx_error **err);
int sbx_box_events_populated(int fd);
/* init has exited: reap it if it is the caller's child, close its pidfd. */
void sbx_box_reap_init(struct sbx_box *box);
/* Give up on an init that does not finish exiting: its pidfd becomes the
 * caller's (-1 if none), to be reaped whenever it exits. */
int sbx_box_abandon_init(struct sbx_box *box);
/* The kernel lets init finish exiting only once every process of its PID
 * namespace is reaped. Reap the zombies of that namespace that are the
 * caller's children, but those owned(pid) says the caller reaps itself;
 * how many. */
int sbx_box_reap_strays(struct sbx_box *box, bool (*owned)(pid_t pid, void *ctx), void *ctx);
/* The last step of a stop: the groups (v1 twins too) and the run
 * directory's mount points are removed, loop devices released, the box
 * is stopped and saved. err tells of a group that could not be removed
 * (processes lingering); the box is stopped all the same. */
int sbx_box_stopped(struct sbx_box *box, sbx_error **err);
/* All of a stop, blocking (off an event loop): terminate, wait for init
 * up to timeout_ms (0: kill at once), kill, wait for the group to empty
 * (5 s at most, killing again now and then), stopped. */
int sbx_box_stop(struct sbx_box *box, int timeout_ms, sbx_error **err);

/* ---- destroy, recover ---- */

/* Remove every trace of a box: stop it if it runs (sbx_box_stop without
 * a grace period), kill what is left in its group (waiting up to 5 s for
 * it to empty), move its state directory to trash (a path
 * relative to state_dir, on the same file system: the removal is atomic,
 * and removing the tree there is the caller's) or, with trash NULL,
 * remove it here; its groups, its run directory, its quota. On failure to
 * move or remove the state directory the box is left whole. Blocks on the
 * wait and the removal; meant for a worker when that matters. The handle
 * is the caller's to free. */
int sbx_box_destroy(struct sbx_box *box, const char *trash, sbx_error **err);
/* A sandbox whose state cannot be read: kill and remove its group (the
 * one its state file names, else <base>/sbx-<id>), its run directory, and
 * its state directory. Blocks like sbx_box_destroy. */
int sbx_box_purge(const struct sbx_box_host *host, const char *id, sbx_error **err);
/* After a restart of its owner. adopt: the owner believes the box runs.
 * Returns 1 when its init is still the process that was started (a pidfd
 * that does not poll readable, the same start time): the box runs again,
 * with its pidfd, and the groups of commands that have ended are pruned.
 * Otherwise 0: what it left (group, mount points) is removed and the box
 * is stopped and saved. Does not block. */
int sbx_box_recover(struct sbx_box *box, bool adopt);

#endif

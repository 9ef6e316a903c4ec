#!/bin/bash
# The distro packages, end to end, on this machine:
#   - build the DEB (dpkg-buildpackage) and the RPM (rpmbuild) from the
#     release tarball, lint them (lintian, rpmlint), and check that both
#     install the same files and do the same things on install, upgrade and
#     removal;
#   - install the DEB with apt-get, start the installed daemon the way
#     sandboxd.socket does (a socket passed in LISTEN_FDS, from
#     systemd-socket-activate, in a delegated cgroup), use it as a non-root
#     member of group sandboxd (sandboxctl and python3-sandboxd), see a user
#     outside the group refused, upgrade with a sandbox running (it is
#     adopted), remove (sandboxes stopped, state kept), purge (nothing left);
#   - and once more with the daemon killed first: removal must clean up
#     what it left by itself.
# Usage: tests/package/run.sh [BUILDDIR]   (a configured build tree; as root)
# Ends with "N passed, N failed, N skipped"; exit 77 when it cannot run here.
# Never leaves the package, its users or its state behind.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
builddir=${1:-$top/build}
passed=0 failed=0 skipped=0

ok() { passed=$((passed + 1)); echo "PASS $*"; }
bad() { failed=$((failed + 1)); echo "FAIL $*"; }
check() { # check NAME COMMAND...
	local name=$1
	shift
	if "$@"; then ok "$name"; else bad "$name"; fi
}
skip_all() {
	echo "packages: skipped: $*"
	exit 77
}
finish() {
	echo
	echo "$passed passed, $failed failed, $skipped skipped"
	[ "$failed" -eq 0 ]
	exit
}

[ "$(id -u)" -eq 0 ] || skip_all "needs root"
[ -f "$builddir/Makefile" ] || skip_all "no configured build tree at $builddir"
# A sandboxd of this machine's own is none of our business.
if dpkg-query -W -f='${Status}' sandboxd 2>/dev/null | grep -q installed || [ -e /var/lib/sandboxd ] ||
	[ -e /run/sandboxd ] || [ -e /etc/sandboxd ]; then
	skip_all "sandboxd is installed here, or its state is: the test would replace it"
fi
need="debhelper dh-python pybuild-plugin-pyproject python3-all python3-setuptools lintian rpm rpmlint systemd
bash-completion busybox-static check libyajl-dev libseccomp-dev libcap-ng-dev libmnl-dev libnftnl-dev libarchive-dev
nettle-dev pkg-config util-linux iproute2 nftables"
missing=
for p in $need; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	# shellcheck disable=SC2086
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null 2>&1 ||
		skip_all "cannot install$missing"
fi
command -v systemd-socket-activate >/dev/null || skip_all "no systemd-socket-activate"

work=$(mktemp -d /tmp/sbx-pkgtest.XXXXXX)
chmod 0755 "$work"
# Package builds must not see a private Python or toolchain on PATH.
sys_path=/usr/sbin:/usr/bin:/sbin:/bin
group_existed=no
getent group sandboxd >/dev/null && group_existed=yes
member=sbxpkgm$$ outsider=sbxpkgo$$
cg_mount=/sys/fs/cgroup
[ -e $cg_mount/cgroup.controllers ] || cg_mount=/sys/fs/cgroup/unified
# Plays the unit's delegated cgroup, as system.slice/sandboxd.service.
unit_cg=$cg_mount/sbxpkgtest$$/sandboxd.service
daemon_pid=
sock=/run/sandboxd/sandboxd.sock

stop_daemon() { # SIGTERM, as systemctl stop does
	[ -n "$daemon_pid" ] || return 0
	kill -TERM "$daemon_pid" 2>/dev/null
	for _ in $(seq 300); do kill -0 "$daemon_pid" 2>/dev/null || break; sleep 0.1; done
	kill -KILL "$daemon_pid" 2>/dev/null
	wait "$daemon_pid" 2>/dev/null
	daemon_pid=
}

cleanup() {
	stop_daemon
	if dpkg-query -W -f='${Status}' sandboxd 2>/dev/null | grep -qv "not-installed"; then
		DEBIAN_FRONTEND=noninteractive dpkg --purge sandboxd python3-sandboxd >/dev/null 2>&1
	fi
	dpkg --purge python3-sandboxd >/dev/null 2>&1
	for u in "$member" "$outsider"; do userdel "$u" >/dev/null 2>&1; done
	[ "$group_existed" = yes ] || groupdel sandboxd >/dev/null 2>&1
	if [ -d "$cg_mount/sbxpkgtest$$" ]; then
		find "$cg_mount/sbxpkgtest$$" -depth -type d -exec rmdir {} + 2>/dev/null
	fi
	rm -rf "$work"
}
trap cleanup EXIT

# ---------------------------------------------------------------- build
echo "=== building the release tarball, the DEB and the RPM"
(cd "$builddir" && make dist >"$work/dist.log" 2>&1) || { tail -20 "$work/dist.log"; skip_all "make dist failed"; }
tarball=$(ls -t "$builddir"/sandboxd-*.tar.gz | head -1)
version=$(basename "$tarball" .tar.gz)
version=${version#sandboxd-}
mkdir -p "$work/deb" "$work/rpm/SOURCES"
tar -xzf "$tarball" -C "$work/deb"
check "deb: dpkg-buildpackage -b builds sandboxd and python3-sandboxd" \
	sh -c "cd '$work/deb/sandboxd-$version' && PATH=$sys_path dpkg-buildpackage -us -uc -b -j$(nproc) >'$work/deb.log' 2>&1"
deb=$(ls "$work"/deb/sandboxd_"$version"_*.deb 2>/dev/null | head -1)
pydeb=$(ls "$work"/deb/python3-sandboxd_"$version"_all.deb 2>/dev/null | head -1)
if [ -z "$deb" ] || [ -z "$pydeb" ]; then
	tail -40 "$work/deb.log"
	finish
fi
check "deb: the unit tests ran in the build" grep -q "^PASS: tests/unit/test_systemd" "$work/deb.log"
# Overrides carry their reasons (debian/*.lintian-overrides).
check "deb: lintian reports no error and no warning" \
	sh -c "cd '$work/deb' && lintian --fail-on error,warning ./*.changes >'$work/lintian.log' 2>&1 || { cat '$work/lintian.log'; false; }"

cp "$tarball" "$top/contrib/systemd/sandboxd.sysusers" "$work/rpm/SOURCES/"
check "rpm: rpmbuild -bb builds sandboxd and python3-sandboxd (with the unit tests in %check)" \
	sh -c "PATH=$sys_path rpmbuild -bb --nodeps --define '_topdir $work/rpm' '$top/contrib/rpm/sandboxd.spec' >'$work/rpm.log' 2>&1 || { tail -40 '$work/rpm.log'; false; }"
rpm=$(ls "$work"/rpm/RPMS/*/sandboxd-"$version"-*.rpm 2>/dev/null | head -1)
pyrpm=$(ls "$work"/rpm/RPMS/noarch/python3-sandboxd-"$version"-*.rpm 2>/dev/null | head -1)
if [ -n "$rpm" ] && [ -n "$pyrpm" ]; then
	check "rpm: rpmlint reports no error" sh -c "rpmlint -r '$top/contrib/rpm/sandboxd.rpmlintrc' '$rpm' '$pyrpm' \
		'$top/contrib/rpm/sandboxd.spec' >'$work/rpmlint.log' 2>&1; grep -q ' 0 errors' '$work/rpmlint.log' || { cat '$work/rpmlint.log'; false; }"

	# Same files: paths with man page compression, documentation (named
	# differently by each) and /lib vs /usr/lib (the same on merged-/usr
	# systems) set aside.
	norm() { sed -E 's#^\./#/#; s#^/lib/#/usr/lib/#; s#\.(gz|bz2|xz)$##' | grep -vE '^/usr/share/(doc|licenses|lintian)/|^/usr/lib/\.build-id' | sort -u; }
	dpkg-deb --fsys-tarfile "$deb" | tar -t | grep -v '/$' | norm >"$work/deb.files"
	rpm -qp --qf '[%{FILEMODES:perms} %{FILENAMES}\n]' "$rpm" | grep -v '^d' | cut -d' ' -f2- | norm >"$work/rpm.files"
	check "rpm and deb: sandboxd installs the same files" \
		sh -c "diff -u '$work/deb.files' '$work/rpm.files'"
	dpkg-deb --fsys-tarfile "$pydeb" | tar -t | grep -E '/sandboxd/.*[^/]$' | sed -E 's#.*-packages/##' | sort >"$work/deb.py"
	rpm -qlp "$pyrpm" | grep -E '/sandboxd/.*\.(py|typed)$' | sed -E 's#.*-packages/##' | sort >"$work/rpm.py"
	check "rpm and deb: python3-sandboxd installs the same modules" \
		sh -c "[ -s '$work/deb.py' ] && diff -u '$work/deb.py' '$work/rpm.py'"
	check "rpm and deb: the configuration file is a conffile in both" \
		sh -c "dpkg-deb -f '$deb' >/dev/null && dpkg-deb -I '$deb' conffiles | grep -qx /etc/sandboxd/sandboxd.conf &&
			rpm -qpc '$rpm' | grep -qx /etc/sandboxd/sandboxd.conf"

	# Same behaviour: the scripts of each, by what they do.
	mkdir -p "$work/ctrl"
	dpkg-deb -e "$deb" "$work/ctrl"
	rpm -qp --scripts "$rpm" >"$work/rpm.scripts"
	d="$work/ctrl"
	r="$work/rpm.scripts"
	scripts_do() { # scripts_do FILE SECTION-START REGEX: REGEX in that scriptlet
		awk -v s="$2" '/scriptlet \(using/ { on = index($0, s) == 1 } on' "$1" | grep -qE "$3"
	}
	check "install: the group sandboxd is created (deb postinst)" grep -q 'systemd-sysusers.*sandboxd.conf' "$d/postinst"
	check "install: the group sandboxd is created (rpm pre)" scripts_do "$r" preinstall 'sandboxd'
	check "install: the run and state directories come from tmpfiles.d (deb)" grep -q 'systemd-tmpfiles.*--create sandboxd.conf' "$d/postinst"
	check "install: the run and state directories come from tmpfiles.d (rpm)" scripts_do "$r" postinstall 'systemd-tmpfiles --create .*sandboxd.conf'
	check "install: socket and service enabled (deb)" sh -c "grep -q \"enable 'sandboxd.socket'\" '$d/postinst' && grep -q \"enable 'sandboxd.service'\" '$d/postinst'"
	check "install: socket and service enabled (rpm)" scripts_do "$r" postinstall 'preset sandboxd.socket sandboxd.service|systemd_post|sandboxd.socket sandboxd.service'
	check "upgrade: only the service is restarted, the socket keeps listening (deb)" \
		sh -c "grep -q \"deb-systemd-invoke \\\$_dh_action 'sandboxd.service' >\" '$d/postinst' && ! grep -q 'restart.*sandboxd.socket\|_dh_action.*sandboxd.socket' '$d/postinst'"
	check "upgrade: only the service is restarted, the socket keeps listening (rpm)" \
		sh -c "awk '/scriptlet \\(using/ { on = index(\$0, \"postuninstall\") == 1 } on' '$r' | grep -q 'try-restart sandboxd.service' &&
			! awk '/scriptlet \\(using/ { on = index(\$0, \"postuninstall\") == 1 } on' '$r' | grep -q 'restart.*sandboxd.socket'"
	check "upgrade: sandboxes are not stopped (deb prerm: only on remove)" grep -q '"$1" = remove.*stop-sandboxes' "$d/prerm"
	check "remove: sandboxes stopped, then socket and service (deb)" \
		sh -c "grep -q stop-sandboxes '$d/prerm' && grep -q \"stop 'sandboxd.socket'\" '$d/prerm' && grep -q \"stop 'sandboxd.service'\" '$d/prerm'"
	check "remove: sandboxes stopped, then socket and service (rpm)" \
		sh -c "awk '/scriptlet \\(using/ { on = index(\$0, \"preuninstall\") == 1 } on' '$r' | grep -q '\\[ \$1 -eq 0 \\].*stop-sandboxes' &&
			awk '/scriptlet \\(using/ { on = index(\$0, \"preuninstall\") == 1 } on' '$r' | grep -q 'sandboxd.socket sandboxd.service'"
else
	bad "rpm: packages missing after the build"
fi

# ---------------------------------------------------------------- install
echo "=== installing the DEB"
loops_before=$(ls /sys/block | grep -c '^loop')
start_daemon() { # as sandboxd.socket and sandboxd.service would
	mkdir -p "$unit_cg/supervisor"
	rm -f "$sock"
	setsid sh -c 'echo $$ >"$1/supervisor/cgroup.procs" && shift && exec "$@"' sh "$unit_cg" \
		systemd-socket-activate -l "$sock" /usr/sbin/sandboxd --foreground >>"$work/daemon.log" 2>&1 &
	daemon_pid=$!
	for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done
	# SocketMode=0660, SocketGroup=sandboxd
	chgrp sandboxd "$sock" && chmod 0660 "$sock"
	timeout 60 sandboxctl info >/dev/null
}
as() { local u=$1; shift; setpriv --reuid="$(id -u "$u")" --regid="$(id -g "$u")" --init-groups env -i PATH=$sys_path HOME=/ "$@"; }
json_field() { /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
init_pids() { pgrep -x sandbox-init 2>/dev/null | sort; }

check "apt-get install ./sandboxd_*.deb ./python3-sandboxd_*.deb" \
	sh -c "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq '$deb' '$pydeb' >'$work/apt.log' 2>&1 || { cat '$work/apt.log'; false; }"
check "installed: the group sandboxd exists" sh -c "getent group sandboxd >/dev/null"
check "installed: /run/sandboxd is 0750 root:sandboxd" sh -c '[ "$(stat -c %a:%U:%G /run/sandboxd)" = 750:root:sandboxd ]'
check "installed: /var/lib/sandboxd is 0700 root:root" sh -c '[ "$(stat -c %a:%U:%G /var/lib/sandboxd)" = 700:root:root ]'
check "installed: socket and service enabled" sh -c '[ -L /etc/systemd/system/sockets.target.wants/sandboxd.socket ] &&
	[ -L /etc/systemd/system/multi-user.target.wants/sandboxd.service ]'
check "installed: bash completion for sandboxctl" sh -c "bash -c '. /usr/share/bash-completion/bash_completion; . /usr/share/bash-completion/completions/sandboxctl; complete -p sandboxctl' | grep -q _sandboxctl"
# A network of its own, so that a daemon of someone else's on sbx0 is
# left alone (the conffile is changed, as an operator would).
cat >>/etc/sandboxd/sandboxd.conf <<CONF
bridge = sbpkg$$
subnet = 10.231.250.0/24
preview_listen = 127.0.0.1:0
CONF
useradd -M -N -g nogroup -G sandboxd -s /usr/sbin/nologin "$member"
useradd -M -N -g nogroup -s /usr/sbin/nologin "$outsider"
member_uid=$(id -u "$member") outsider_uid=$(id -u "$outsider")

check "the installed daemon starts from a socket passed in LISTEN_FDS" start_daemon
check "the daemon serves the passed socket" grep -q "serving on $sock (passed by the service manager)" "$work/daemon.log"
box=$(as "$member" sandboxctl create --name pkgbox 2>"$work/err")
check "member of sandboxd: sandboxctl create" sh -c "[ -n '$box' ] || { cat '$work/err'; false; }"
member_exec() { [ "$(as "$member" sandboxctl exec pkgbox -- sh -c "$1")" = "$2" ]; }
check "member of sandboxd: sandboxctl exec" member_exec 'echo hi from $(hostname)' 'hi from pkgbox'
check "member of sandboxd: the Python client of python3-sandboxd" as "$member" /usr/bin/python3 -I -c 'from sandboxd import Client
with Client() as c:
    r = c.process.exec("pkgbox", "echo py", timeout_s=10)
    assert (r.exit_code, r.stdout) == (0, "py\n"), r'
out=$(as "$outsider" sandboxctl ls 2>&1)
check "outsider: refused by the socket's directory (0750)" sh -c "echo '$out' | grep -q 'Permission denied'"
chmod 0755 /run/sandboxd
chmod 0666 "$sock"
out=$(as "$outsider" sandboxctl ls 2>&1)
check "outsider: refused by the daemon itself with the socket at 0666" \
	sh -c "echo \"\$1\" | grep -q \"permission denied: uid $outsider_uid is neither root nor a member of group 'sandboxd'\"" sh "$out"
check "outsider: the refusal is logged" grep -q "refused a connection from pid .* (uid $outsider_uid" "$work/daemon.log"
chmod 0750 /run/sandboxd
chmod 0660 "$sock"
cmd=$(as "$member" sandboxctl exec -d pkgbox -- sleep 1000)
pid_before=$(sandboxctl --json inspect pkgbox | json_field init_pid)

# ---------------------------------------------------------------- upgrade
echo "=== upgrading to a newer version with a sandbox running"
newv="$version+pkgtest1"
for p in "$deb" "$pydeb"; do
	n=$(basename "$p")
	rm -rf "$work/repack"
	dpkg-deb -R "$p" "$work/repack"
	sed -i "s/^Version: .*/Version: $newv/" "$work/repack/DEBIAN/control"
	dpkg-deb -Zgzip -b "$work/repack" "$work/new-$n" >/dev/null
done
check "apt-get install of the newer version over the running one" \
	sh -c "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq '$work/new-$(basename "$deb")' '$work/new-$(basename "$pydeb")' >'$work/apt.log' 2>&1 || { cat '$work/apt.log'; false; }"
check "upgrade: the new version is installed" sh -c "[ \"\$(dpkg-query -W -f='\${Version}' sandboxd)\" = '$newv' ]"
check "upgrade: the changed configuration file is kept" grep -q "^bridge = sbpkg$$" /etc/sandboxd/sandboxd.conf
# What the postinst asks systemd to do: restart the service.
stop_daemon
check "upgrade: the sandbox kept running while no daemon ran" sh -c "kill -0 $pid_before"
check "the upgraded daemon starts" start_daemon
check "upgrade: the sandbox is adopted (same init)" sh -c "[ \"\$(sandboxctl --json inspect pkgbox | /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); print(d[\"state\"], d[\"init_pid\"])')\" = 'started $pid_before' ]"
check "upgrade: its background command still runs" sh -c "sandboxctl ps pkgbox | grep '$cmd' | grep -q running"
check "upgrade: member exec in the adopted sandbox" member_exec 'echo after' after

# ---------------------------------------------------------------- remove
echo "=== removing"
check "apt-get remove" sh -c "DEBIAN_FRONTEND=noninteractive apt-get remove -y -qq sandboxd python3-sandboxd >'$work/apt.log' 2>&1 || { cat '$work/apt.log'; false; }"
check "remove: the sandbox was stopped" sh -c "! kill -0 $pid_before 2>/dev/null"
stop_daemon # what the prerm asks systemd to do
check "remove: the programs are gone" sh -c '! [ -e /usr/sbin/sandboxd ] && ! [ -e /usr/bin/sandboxctl ]'
check "remove: the sandbox's state and the configuration stay" sh -c "[ -d /var/lib/sandboxd/sandboxes/$box ] && [ -f /etc/sandboxd/sandboxd.conf ]"
leftovers() { # what the daemon left of the given sandboxes on the host
	local found=0 id
	for id in "$@"; do
		if pgrep -f "^sandbox-init $id" >/dev/null; then echo "sandbox-init of $id"; found=1; fi
		if [ -n "$(find /sys/fs/cgroup -maxdepth 7 -type d -name "sbx-$id" 2>/dev/null)" ]; then
			echo "cgroups:"; find /sys/fs/cgroup -maxdepth 7 -type d -name "sbx-$id"; found=1
		fi
		if ip link show "sv$id" >/dev/null 2>&1; then echo "link sv$id"; found=1; fi
		if grep -q "$id" /proc/self/mountinfo; then echo "mounts:"; grep "$id" /proc/self/mountinfo; found=1; fi
	done
	if ip link show "sbpkg$$" >/dev/null 2>&1; then echo "bridge sbpkg$$"; found=1; fi
	if nft list table inet "sandboxd-sbpkg$$" >/dev/null 2>&1; then echo "nftables table"; found=1; fi
	if grep -q ' /run/sandboxd\| /var/lib/sandboxd' /proc/self/mountinfo; then echo "mounts below /run/sandboxd or /var/lib/sandboxd"; found=1; fi
	[ -e "/run/sandboxd-bridges/sbpkg$$" ] && { echo "network lock record"; found=1; }
	return $found
}
check "remove: no process, cgroup, link, nftables table or mount left" leftovers "$box"
check "remove: no loop device left" sh -c "[ \$(ls /sys/block | grep -c '^loop') -eq $loops_before ]"

check "apt-get purge" sh -c "DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq sandboxd python3-sandboxd >'$work/apt.log' 2>&1 || { cat '$work/apt.log'; false; }"
check "purge: state, run and configuration directories are gone" sh -c '! [ -e /var/lib/sandboxd ] && ! [ -e /run/sandboxd ] && ! [ -e /etc/sandboxd ]'
check "purge: no unit is left enabled" sh -c '! [ -e /etc/systemd/system/sockets.target.wants/sandboxd.socket ] && ! [ -e /etc/systemd/system/multi-user.target.wants/sandboxd.service ]'
check "purge: the package is gone from dpkg" sh -c '! dpkg-query -W -f="\${Status}" sandboxd 2>/dev/null | grep -q "installed\|config-files"'
check "purge: the group stays (system groups are never deleted)" sh -c "getent group sandboxd >/dev/null"

# ---------------------------------------------------------------- crash
echo "=== removing after the daemon was killed, with a sandbox running"
check "apt-get install again" sh -c "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq '$deb' >'$work/apt.log' 2>&1 || { cat '$work/apt.log'; false; }"
cat >>/etc/sandboxd/sandboxd.conf <<CONF
bridge = sbpkg$$
subnet = 10.231.250.0/24
preview_listen = 127.0.0.1:0
CONF
check "the daemon starts" start_daemon
box=$(sandboxctl create --name crashbox --disk 0 2>"$work/err")
check "a sandbox runs" sh -c "[ -n '$box' ] && sandboxctl exec crashbox -- true"
kill -KILL "$daemon_pid"
wait "$daemon_pid" 2>/dev/null
daemon_pid=
check "apt-get purge with no daemon" sh -c "DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq sandboxd >'$work/apt.log' 2>&1 || { cat '$work/apt.log'; false; }"
check "crash: the removal killed the sandbox and removed the daemon's leftovers" leftovers "$box"
check "crash: state, run and configuration directories are gone" sh -c '! [ -e /var/lib/sandboxd ] && ! [ -e /run/sandboxd ] && ! [ -e /etc/sandboxd ]'

finish

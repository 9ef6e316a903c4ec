#!/bin/sh
# Install what building and testing sandboxd needs on Debian or Ubuntu.
# Packages already present are not reinstalled, so a warm machine is quick.
set -eu
pkgs="build-essential autoconf automake pkg-config libseccomp-dev libcap-ng-dev libmnl-dev libnftnl-dev
libyajl-dev libarchive-dev nettle-dev check busybox-static python3 procps iproute2 groff-base e2fsprogs nftables tmux
zstd umoci skopeo docker-registry apache2-utils mmdebstrap bash-completion ${SBX_EXTRA_PACKAGES:-}"
missing=
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "install-deps: need root to install:$missing" >&2
		exit 1
	fi
	echo "install-deps: installing$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

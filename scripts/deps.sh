# scripts/deps.sh - sourced by scripts/check and scripts/demo: installs the
# Debian 12 packages revtun needs to build and test, when they are missing.
# Installs only as root; otherwise says what to install and fails.

RT_BUILD_DEPS="autoconf automake pkg-config gcc make libssl-dev libssh2-1-dev
 libssh-dev libconfuse-dev libcunit1-dev"
RT_TEST_DEPS="openssl openssh-client openssh-server mosquitto mosquitto-clients python3-paramiko
 python3 socat iproute2 procps sslscan testssl.sh iputils-ping faketime"

rt_missing_pkgs() {
	for p in "$@"; do
		dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null |
			grep -q '^install ok installed$' || printf '%s ' "$p"
	done
}

rt_install_deps() {
	missing=$(rt_missing_pkgs $RT_BUILD_DEPS "$@")
	[ -z "$missing" ] && return 0
	if [ "$(id -u)" != 0 ]; then
		echo "missing packages: $missing" >&2
		echo "install them as root: apt-get install $missing" >&2
		return 1
	fi
	echo "== installing: $missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq || return 1
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends $missing >/dev/null || return 1
}

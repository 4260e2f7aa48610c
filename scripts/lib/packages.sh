# Distribution package installation shared by scripts/bootstrap.sh and scripts/bench/run.sh: as root, or with
# FERRY_ALLOW_INSTALL=1 through sudo. The sourcing script defines `say`.

can_install() {
    command -v apt-get >/dev/null 2>&1 || return 1
    [ "$(id -u)" = 0 ] && return 0
    [ "${FERRY_ALLOW_INSTALL:-0}" = 1 ] && command -v sudo >/dev/null 2>&1
}

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

APT_UPDATED=0
apt_install() {
    if [ "$APT_UPDATED" = 0 ]; then
        say "apt-get update"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        APT_UPDATED=1
    fi
    say "installing $* (distribution packages)"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

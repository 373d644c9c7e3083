#!/usr/bin/env bash
# A disposable Debian "remote host" for chatmail's end-to-end tests: real systemd as PID 1 in a
# systemd-nspawn container, on its own network namespace, reachable over SSH from the runner.
#
#   bash scripts/testhost.sh up [CACHE_DIR]   idempotent; prints KEY=value lines (also in $STATE/env)
#   bash scripts/testhost.sh ssh CMD...       runs CMD in the guest as root
#   bash scripts/testhost.sh status           exit 0 when the guest is running
#   bash scripts/testhost.sh stop [--purge] [--purge-cache]
#
# Knobs (environment):
#   TESTHOST_NAME=chatmail-th     instance name (also the guest's hostname)
#   TESTHOST_INDEX=0              runner 10.213.N.1, guest 10.213.N.2 (a /30)
#   TESTHOST_DOMAIN=NAME.test     the guest's /etc/hosts maps it to its own address
#   TESTHOST_KEEP=1               keep the previous run's changes (default: every up is pristine)
#   TESTHOST_RUNNER_PORTS="8000:8999 14000 15000"  runner TCP ports the guest may connect to
#   TESTHOST_RUNNER_UDP_PORTS=""  runner UDP ports the guest may send to (e.g. 53: a test's DNS server)
#   TESTHOST_STATE_ROOT=/var/tmp/chatmail-testhost, TESTHOST_CACHE=/var/cache/chatmail-testhost
#   TESTHOST_SUITE=bookworm
#
# The guest may reach only: the Debian mirror (tcp 80/443, NAT), the runner on the ports above,
# and other test hosts in 10.213.0.0/16. The whole 10.213.0.0/16 range is routed "unreachable" on
# the runner, so an address without a test host fails at once and never leaves the machine.
# Needs root, systemd-container, mmdebstrap and iptables (scripts/test-deps.sh installs them).
set -euo pipefail

NAME=${TESTHOST_NAME:-chatmail-th}
INDEX=${TESTHOST_INDEX:-0}
DOMAIN=${TESTHOST_DOMAIN:-$NAME.test}
SUITE=${TESTHOST_SUITE:-bookworm}
STATE_ROOT=${TESTHOST_STATE_ROOT:-/var/tmp/chatmail-testhost}
STATE=$STATE_ROOT/$NAME
RUNNER_PORTS=${TESTHOST_RUNNER_PORTS:-8000:8999 14000 15000}
RUNNER_UDP_PORTS=${TESTHOST_RUNNER_UDP_PORTS:-}
PACKAGES=systemd,systemd-sysv,dbus,openssh-server,ca-certificates,iproute2,procps,netbase,apt-utils

RUNNER_IP=10.213.$INDEX.1
GUEST_IP=10.213.$INDEX.2
RANGE=10.213.0.0/16
NETNS=cmth-$NAME
VETH=cmth$INDEX          # runner side; the guest side is renamed eth0 inside the namespace
VETH_PEER=cmth${INDEX}g
TAG=chatmail-testhost:$NAME
ROOT=$STATE/root

die() { echo "testhost: $*" >&2; exit 1; }
log() { echo "testhost: $*" >&2; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

[[ $NAME =~ ^[a-z0-9][a-z0-9-]{0,30}$ ]] || die "TESTHOST_NAME must be a short lowercase hostname, not '$NAME'"
if ! [[ $INDEX =~ ^[0-9]+$ ]] || ((INDEX >= 250)); then die "TESTHOST_INDEX must be 0..249"; fi

require_root() {
  [ "$(id -u)" = 0 ] || die "must run as root (systemd-nspawn, network namespaces and iptables need it)"
  for cmd in systemd-nspawn mmdebstrap iptables ip ssh ssh-keygen flock; do
    command -v "$cmd" >/dev/null || die "missing '$cmd' on the runner: run 'bash scripts/test-deps.sh'"
  done
}

nspawn_pid() { if [ -f "$STATE/pid" ]; then cat "$STATE/pid"; fi; }
# Alive and really our systemd-nspawn (a recycled PID must not count).
is_running() {
  local pid
  pid=$(nspawn_pid)
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] &&
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "systemd-nspawn.*--directory=$ROOT"
}

ssh_opts() {
  printf '%s\n' -i "$STATE/id_ed25519" -o IdentitiesOnly=yes -o BatchMode=yes \
    -o UserKnownHostsFile="$STATE/known_hosts" -o StrictHostKeyChecking=yes -o LogLevel=ERROR
}
guest_ssh() { # CMD...; SSH_CONNECT_TIMEOUT shortens the connect wait
  local opts
  mapfile -t opts < <(ssh_opts)
  ssh "${opts[@]}" -o ConnectTimeout="${SSH_CONNECT_TIMEOUT:-10}" "root@$GUEST_IP" "$@"
}

# ---------------------------------------------------------------- the Debian mirror

# Hostnames of every enabled apt source on the runner (deb822 "URIs:" and one-line "deb" forms).
mirror_hosts() {
  local files=()
  [ -f /etc/apt/sources.list ] && files+=(/etc/apt/sources.list)
  for f in /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list; do [ -f "$f" ] && files+=("$f"); done
  [ ${#files[@]} -gt 0 ] || { echo deb.debian.org; return; }
  grep -hoE '^[[:space:]]*(URIs:.*|deb(-src)?[[:space:]].*)' "${files[@]}" |
    grep -oE 'https?://[^/[:space:]]+' | sed -E 's#https?://##; s#:[0-9]+$##' | sort -u
}

# "IP HOST" lines for the guest's /etc/hosts; the IPs are also the only NAT destinations.
resolve_mirrors() {
  local host ip
  for host in $(mirror_hosts); do
    ip=$(getent ahostsv4 "$host" | awk '{ print $1; exit }')
    [ -n "$ip" ] || die "cannot resolve the apt mirror '$host' on the runner"
    echo "$ip $host"
  done
}

# ---------------------------------------------------------------- the cached base rootfs

build_cache() {
  local cache=$1 base=$1/rootfs-$SUITE
  mkdir -p "$cache"
  exec 9>"$cache/.lock"
  flock 9
  if [ -f "$base/.complete" ]; then exec 9>&-; return; fi
  log "building the $SUITE base rootfs in $base (once; about 45 s)"
  local t0 tmp=$base.new mirror=()
  t0=$(now)
  rm -rf "$tmp"
  # Use the runner's own apt sources when they are for the same suite.
  if [ -f /etc/apt/sources.list.d/debian.sources ] && grep -qw "$SUITE" /etc/apt/sources.list.d/debian.sources; then
    mirror=(/etc/apt/sources.list.d/debian.sources)
  fi
  mmdebstrap --quiet --variant=minbase --include="$PACKAGES" \
    --aptopt='Acquire::Check-Valid-Until "false"' --aptopt='Acquire::Check-Date "false"' \
    "$SUITE" "$tmp" "${mirror[@]}" >&2 || die "mmdebstrap failed"
  # Nothing instance-specific in the cache: each instance gets its own keys and machine id.
  rm -f "$tmp"/etc/ssh/ssh_host_* "$tmp"/var/cache/apt/*.bin
  rm -rf "$tmp"/var/lib/apt/lists/* "$tmp"/var/cache/apt/archives/*.deb
  : >"$tmp/etc/machine-id"
  rm -f "$tmp/var/lib/dbus/machine-id"
  touch "$tmp/.complete"
  mv "$tmp" "$base"
  log "base rootfs built in $(since "$t0") s ($(du -sh "$base" | cut -f1))"
  exec 9>&-
}

# ---------------------------------------------------------------- the instance filesystem

mount_root() {
  local base=$1
  mkdir -p "$STATE/upper" "$STATE/work" "$ROOT"
  mountpoint -q "$ROOT" && return
  if ! mount -t overlay overlay -o "lowerdir=$base,upperdir=$STATE/upper,workdir=$STATE/work" "$ROOT" 2>/dev/null; then
    log "overlayfs unavailable; copying the base rootfs (slower)"
    [ -f "$ROOT/.complete" ] || cp -a "$base/." "$ROOT/"
  fi
}

configure_guest() {
  # SSH: fresh host keys per instance, a client key, known_hosts for strict checking.
  rm -f "$ROOT"/etc/ssh/ssh_host_*
  ssh-keygen -q -A -f "$ROOT" >&2
  [ -f "$STATE/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C "$TAG" -f "$STATE/id_ed25519"
  install -d -m 0700 "$ROOT/root/.ssh"
  install -m 0600 "$STATE/id_ed25519.pub" "$ROOT/root/.ssh/authorized_keys"
  : >"$STATE/known_hosts"
  for pub in "$ROOT"/etc/ssh/ssh_host_*_key.pub; do
    echo "$GUEST_IP,$DOMAIN $(cut -d' ' -f1,2 "$pub")" >>"$STATE/known_hosts"
  done
  cat >"$ROOT/etc/ssh/sshd_config.d/chatmail-testhost.conf" <<EOF
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
EOF

  # Name resolution without a DNS server: the mirror from /etc/hosts, everything else fails fast.
  echo "$NAME" >"$ROOT/etc/hostname"
  {
    printf '127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n'
    echo "$GUEST_IP $DOMAIN $NAME"
    cat "$STATE/mirrors"
  } >"$ROOT/etc/hosts"
  rm -f "$ROOT/etc/resolv.conf"
  echo 'nameserver 127.0.0.1' >"$ROOT/etc/resolv.conf"

  # apt: the runner's sources (a snapshot mirror, hence no Valid-Until check). Another suite gets
  # the runner's Debian mirror with the suite names swapped (bookworm-security -> trixie-security):
  # the guest reaches no other host (mmdebstrap's default security.debian.org is not in its hosts).
  if [ "$REBOOT" = 1 ]; then
    : # the guest's own sources stay
  elif [ -f /etc/apt/sources.list.d/debian.sources ] && grep -qw "$SUITE" /etc/apt/sources.list.d/debian.sources; then
    rm -f "$ROOT/etc/apt/sources.list" "$ROOT"/etc/apt/sources.list.d/*
    [ -f /etc/apt/sources.list ] && cp /etc/apt/sources.list "$ROOT/etc/apt/"
    for f in /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list; do
      [ -f "$f" ] && cp "$f" "$ROOT/etc/apt/sources.list.d/"
    done
  elif [ -f /etc/apt/sources.list.d/debian.sources ]; then
    local runner_suite
    # shellcheck disable=SC1091
    runner_suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
    [ -n "$runner_suite" ] || die "cannot tell the runner's Debian suite from /etc/os-release"
    rm -f "$ROOT/etc/apt/sources.list" "$ROOT"/etc/apt/sources.list.d/*
    sed -E "s/\b$runner_suite(-[a-z]+)?\b/$SUITE\1/g" /etc/apt/sources.list.d/debian.sources \
      >"$ROOT/etc/apt/sources.list.d/debian.sources"
  fi
  cat >"$ROOT/etc/apt/apt.conf.d/99chatmail-testhost" <<'EOF'
Acquire::Check-Valid-Until "false";
Acquire::Check-Date "false";
Acquire::Languages "none";
EOF
}

# ---------------------------------------------------------------- network

firewall() { # add|del: every rule carries the instance's comment, so removal is exact
  local op=$1 c=(-m comment --comment "$TAG") ip host
  local -a rules=()
  rules+=("filter INPUT -i $VETH -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT")
  rules+=("filter INPUT -i $VETH -p icmp -j ACCEPT")
  for p in $RUNNER_PORTS; do rules+=("filter INPUT -i $VETH -d $RUNNER_IP -p tcp --dport $p -j ACCEPT"); done
  for p in $RUNNER_UDP_PORTS; do rules+=("filter INPUT -i $VETH -d $RUNNER_IP -p udp --dport $p -j ACCEPT"); done
  rules+=("filter INPUT -i $VETH -j DROP")
  rules+=("filter FORWARD -o $VETH -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT")
  while read -r ip host; do
    rules+=("filter FORWARD -i $VETH -d $ip -p tcp -m multiport --dports 80,443 -j ACCEPT")
    rules+=("nat POSTROUTING -s $GUEST_IP -d $ip -j MASQUERADE")
  done <"$STATE/mirrors"
  rules+=("filter FORWARD -i $VETH -d $RANGE -j ACCEPT")
  rules+=("filter FORWARD -i $VETH -j DROP")
  if [ "$op" = add ]; then
    firewall del 2>/dev/null || true
    local r
    # Inserted in reverse at the top, so they keep the order above and precede other rules.
    for ((i = ${#rules[@]} - 1; i >= 0; i--)); do
      read -r -a r <<<"${rules[$i]}"
      iptables -t "${r[0]}" -I "${r[1]}" 1 "${r[@]:2}" "${c[@]}"
    done
  else
    local table line
    for table in filter nat; do
      iptables-save -t "$table" | grep -E -- "--comment \"?$TAG\"?( |\$)" | sed 's/^-A /-D /' | while read -r line; do
        eval "iptables -t $table $line" || true
      done
    done
  fi
}

net_up() {
  sysctl -qw net.ipv4.ip_forward=1
  ip route replace unreachable "$RANGE"
  ip netns del "$NETNS" 2>/dev/null || true
  ip link del "$VETH" 2>/dev/null || true
  ip netns add "$NETNS"
  ip link add "$VETH" type veth peer name "$VETH_PEER"
  ip link set "$VETH_PEER" netns "$NETNS"
  ip -n "$NETNS" link set "$VETH_PEER" name eth0
  ip addr add "$RUNNER_IP/30" dev "$VETH"
  ip link set "$VETH" up
  ip -n "$NETNS" link set lo up
  ip -n "$NETNS" addr add "$GUEST_IP/30" dev eth0
  ip -n "$NETNS" link set eth0 up
  ip -n "$NETNS" route add default via "$RUNNER_IP"
  firewall add
}

net_down() {
  firewall del
  ip link del "$VETH" 2>/dev/null || true
  ip netns del "$NETNS" 2>/dev/null || true
  # The unreachable route for the whole range goes with the last instance.
  if ! ip -o -4 addr show | grep -q ' inet 10\.213\.'; then ip route del unreachable "$RANGE" 2>/dev/null || true; fi
}

# ---------------------------------------------------------------- commands

write_env() {
  cat >"$STATE/env" <<EOF
TESTHOST_NAME=$NAME
TESTHOST_HOST=$GUEST_IP
TESTHOST_PORT=22
TESTHOST_USER=root
TESTHOST_KEY=$STATE/id_ed25519
TESTHOST_KNOWN_HOSTS=$STATE/known_hosts
TESTHOST_DOMAIN=$DOMAIN
TESTHOST_RUNNER_IP=$RUNNER_IP
TESTHOST_PID=$(nspawn_pid)
TESTHOST_SSH='ssh -i $STATE/id_ed25519 -o IdentitiesOnly=yes -o UserKnownHostsFile=$STATE/known_hosts -p 22 root@$GUEST_IP'
EOF
  cat "$STATE/env"
}

cmd_up() {
  require_root
  local cache=${1:-${TESTHOST_CACHE:-/var/cache/chatmail-testhost}} t0
  t0=$(now)
  mkdir -p "$STATE"
  exec 8>"$STATE_ROOT/$NAME.lock"
  flock 8
  if is_running; then
    log "$NAME is already running"
    write_env
    return
  fi
  stop_instance >/dev/null 2>&1 || true # leftovers of a crashed run
  build_cache "$cache"
  resolve_mirrors >"$STATE/mirrors"
  # A reboot (TESTHOST_KEEP=1 over a previous run's system) keeps the guest's apt sources: a
  # release upgrade in place changed them, and the runner's suite would take it back.
  REBOOT=0
  if [ "${TESTHOST_KEEP:-0}" != 1 ]; then
    rm -rf "$STATE/upper" "$STATE/work"
  elif [ -d "$STATE/upper/etc/apt" ]; then
    REBOOT=1
  fi
  mount_root "$cache/rootfs-$SUITE"
  configure_guest
  net_up

  # setsid: the guest outlives this shell. 8>&- 9>&-: nspawn must not inherit our flock fds.
  # --keep-unit with --register=no: no systemd on the runner to ask for a scope.
  # --private-network with --network-namespace-path: CAP_NET_ADMIN and a writable /proc/sys/net.
  SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1 setsid systemd-nspawn --quiet --boot --register=no --keep-unit \
    --private-network --network-namespace-path="/run/netns/$NETNS" \
    --directory="$ROOT" --machine="$NAME" --resolv-conf=off --timezone=off --console=read-only \
    </dev/null >"$STATE/console.log" 2>&1 8>&- 9>&- &
  echo $! >"$STATE/pid"

  local deadline=$((SECONDS + ${TESTHOST_BOOT_TIMEOUT:-60}))
  until SSH_CONNECT_TIMEOUT=1 guest_ssh true 2>/dev/null; do
    if ! is_running; then
      tail -n 30 "$STATE/console.log" >&2 || true
      die "the guest exited during boot (log: $STATE/console.log)"
    fi
    ((SECONDS < deadline)) || die "no SSH on $GUEST_IP after ${TESTHOST_BOOT_TIMEOUT:-60} s (log: $STATE/console.log)"
    sleep 0.2
  done
  local state
  state=$(guest_ssh timeout 30 systemctl is-system-running --wait 2>/dev/null || true)
  [ "$state" = running ] || log "warning: the guest's systemd reports '$state' (systemctl --failed shows why)"
  log "$NAME up in $(since "$t0") s: root@$GUEST_IP ($DOMAIN)"
  write_env
}

stop_instance() {
  local pid
  pid=$(nspawn_pid)
  if is_running; then
    # SIGTERM makes nspawn send SIGRTMIN+3 to the guest's systemd: an orderly poweroff.
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do is_running || break; sleep 0.15; done
    if is_running; then
      log "the guest did not halt in 15 s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.5
    fi
  fi
  rm -f "$STATE/pid"
  if mountpoint -q "$ROOT" 2>/dev/null; then umount "$ROOT" 2>/dev/null || umount -l "$ROOT"; fi
  [ -f "$STATE/mirrors" ] || : >"$STATE/mirrors"
  net_down
  if [ "${TESTHOST_KEEP:-0}" != 1 ]; then rm -rf "$STATE/upper" "$STATE/work"; fi
}

cmd_stop() {
  require_root
  local purge=0 purge_cache=0 t0
  for a in "$@"; do
    case $a in
      --purge) purge=1 ;;
      --purge-cache) purge=1 purge_cache=1 ;;
      *) die "stop: unknown option '$a'" ;;
    esac
  done
  t0=$(now)
  [ -d "$STATE" ] || { log "$NAME is not set up"; [ $purge_cache = 0 ] || rm -rf "${TESTHOST_CACHE:-/var/cache/chatmail-testhost}"; return; }
  exec 8>"$STATE_ROOT/$NAME.lock"
  flock 8
  stop_instance
  if [ $purge = 1 ]; then
    rm -rf "$STATE"
    rm -f "$STATE_ROOT/$NAME.lock"
    rmdir "$STATE_ROOT" 2>/dev/null || true
  fi
  [ $purge_cache = 0 ] || rm -rf "${TESTHOST_CACHE:-/var/cache/chatmail-testhost}"
  log "$NAME stopped in $(since "$t0") s"
}

cmd_status() {
  if is_running; then
    echo "$NAME running (pid $(nspawn_pid), root@$GUEST_IP, $DOMAIN)"
  else
    echo "$NAME not running"
    return 3
  fi
}

cmd_ssh() {
  is_running || die "$NAME is not running (bash scripts/testhost.sh up)"
  guest_ssh "$@"
}

case ${1:-} in
  up) shift; cmd_up "$@" ;;
  stop) shift; cmd_stop "$@" ;;
  status) cmd_status ;;
  ssh) shift; cmd_ssh "$@" ;;
  env) cat "$STATE/env" ;;
  *) echo "usage: $0 up [CACHE_DIR] | ssh CMD... | status | stop [--purge] [--purge-cache] | env" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# Installs the Debian packages the test suite talks to (real servers, no mocks), and shellcheck
# for `npm run lint`.
# Idempotent: installs only what is missing. Needs root (CI is root); otherwise it says what to install.
# Services are installed with start-up blocked: the tests start their own instances on loopback.
set -euo pipefail

PKGS=(coturn dovecot-imapd dovecot-lmtpd dovecot-submissiond prometheus openssl iproute2 iptables util-linux procps shellcheck)
# nft: the coturn relay firewall table (test/integration/coturn-relay.test.ts, coturn-validate.test.ts).
PKGS+=(nftables)
# Python 3 (its email package is the reference MIME parser of test/unit/filter-headers.test.ts).
PKGS+=(python3)
# Debian's restic, which `chatmail backup` runs on the host (test/integration/backup-restic.test.ts).
PKGS+=(restic)
# An authoritative DNS server for `chatmail dns --check` and the federation e2e (test/helpers/authdns.ts).
PKGS+=(knot)
# The end-to-end deploy test also needs a systemd host and an ACME server:
if [ "${CHATMAIL_E2E:-1}" != 0 ]; then
  PKGS+=(systemd-container mmdebstrap pebble openssh-client)
  # The Delta Chat core e2e: a resolver on the fenced core's loopback (test/helpers/deltachat.ts),
  # zip for the webxdc app of the realtime test (test/helpers/realtime.ts), and a real browser on
  # the sign-up page with a QR code reader (test/helpers/browser.ts).
  PKGS+=(dnsmasq-base zip chromium zbar-tools)
fi

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" != 0 ]; then
  echo "test-deps: missing Debian packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})" >&2
  exit 1
fi

echo "test-deps: installing ${missing[*]}" >&2
policy=/usr/sbin/policy-rc.d
cleanup() { [ -f "$policy.chatmail" ] && rm -f "$policy" "$policy.chatmail"; true; }
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && touch "$policy.chatmail"
  trap cleanup EXIT
fi
export DEBIAN_FRONTEND=noninteractive
lists=(/var/lib/apt/lists/*_Packages)
if [ ! -e "${lists[0]}" ] || [ -n "$(find /var/lib/apt/lists -maxdepth 1 -name '*_Packages' -mmin +1440 -print -quit)" ]; then
  apt-get -o DPkg::Lock::Timeout=300 update -qq
fi
apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian starts some of these where it can; the tests run their own instances.
for svc in coturn dovecot; do
  if pgrep -x "$( [ $svc = coturn ] && echo turnserver || echo dovecot)" >/dev/null 2>&1; then
    (command -v systemctl >/dev/null && systemctl stop "$svc" 2>/dev/null) || service "$svc" stop >/dev/null 2>&1 || true
  fi
done
echo "test-deps: done" >&2

# shellcheck shell=sh
# Facts about the host itself, the first part of every facts script: one tab-separated record per
# line, kind first (parsed by parseFacts in src/deploy/facts.ts). Runs as root under `sh`.
export LC_ALL=C
printf 'uid\t%s\n' "$(id -u)"
ID='' VERSION_ID='' VERSION_CODENAME=''
# shellcheck disable=SC1091
if [ -r /etc/os-release ]; then . /etc/os-release; fi
printf 'os\t%s\t%s\t%s\n' "$ID" "$VERSION_ID" "$VERSION_CODENAME"
printf 'arch\t%s\n' "$(uname -m)"
df -Pk / | awk 'NR==2 { printf "disk\t%s\n", $4 }'
ip -o addr show scope global 2>/dev/null | awk '{ sub(/\/.*/, "", $4); printf "addr\t%s\n", $4 }'
ss -Hlntup 2>/dev/null | while IFS= read -r l; do printf 'listen\t%s\n' "$l"; done
# Every package dpkg knows, with its version: services pick per-release templates from these.
# shellcheck disable=SC2016
dpkg-query -W -f='pkg\t${Package}\t${db:Status-Status}\t${Version}\n' 2>/dev/null || true

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
# Listening sockets without ss -p, which prints process names raw (any user names its processes,
# newlines and tabs included, and could forge records): "listen PROTO LOCAL INODE", then for each
# process holding one "holder INODE NAME", the name from /proc/PID/comm in hex.
listen=$(ss -Htuln -e 2>/dev/null | awk '{ ino = 0; for (i = 7; i <= NF && ino == 0; i++) if ($i ~ /^ino:[0-9]+$/) ino = substr($i, 5); printf "listen\t%s\t%s\t%s\n", $1, $5, ino }')
[ -z "$listen" ] || printf '%s\n' "$listen"
inodes=$(printf '%s\n' "$listen" | awk -F '\t' '$4 != "" && $4 != "0" { printf "socket:[%s]\n", $4 }')
if [ -n "$inodes" ]; then
  find /proc/[0-9]*/fd -maxdepth 1 -lname 'socket:*' -printf '%h %l\n' 2>/dev/null | grep -F -e "$inodes" |
    sed -n 's#^/proc/\([0-9]*\)/fd socket:\[\([0-9]*\)\]$#\1 \2#p' | sort -u | while read -r pid ino; do
    printf 'holder\t%s\t%s\n' "$ino" "$(od -An -v -tx1 <"/proc/$pid/comm" 2>/dev/null | tr -d ' \n')"
  done
fi
# Every package dpkg knows, with its version: services pick per-release templates from these.
# shellcheck disable=SC2016
dpkg-query -W -f='pkg\t${Package}\t${db:Status-Status}\t${Version}\n' 2>/dev/null || true

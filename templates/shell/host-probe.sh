# shellcheck shell=sh
# The doctor's host facts (src/doctor/host-probe.ts, parseHostFacts): read-only, one "@section"
# line and that section's lines. Names a process on the host chooses (/proc/PID/comm, which may
# hold a newline) and paths (of a deleted binary) come as hex: no value starts a line of its own.
# That is why the listeners' processes come from /proc/PID/fd, not from ss -p (which prints the
# names raw). Set before it: HOST_UNITS and HOST_DISK_PATHS, space-separated.
hex() { od -An -v -tx1 | tr -d ' \n'; }
echo @clock
date +%s%N
export LC_ALL=C
echo @units
for u in $HOST_UNITS; do
  printf '%s %s %s\n' "$u" "$(systemctl show -p LoadState --value "$u.service" 2>/dev/null)" "$(systemctl show -p ActiveState --value "$u.service" 2>/dev/null)"
done
echo @failed
systemctl list-units --state=failed --no-legend --plain 2>/dev/null | awk '{print $1}'
# "proto address:port inode" of each listening socket.
listening=$(ss -Htuln -e 2>/dev/null | awk '{ ino = ""; for (i = 7; i <= NF && ino == ""; i++) if ($i ~ /^ino:[0-9]+$/) ino = substr($i, 5); print $1, $5, ino }')
echo @listening
printf '%s\n' "$listening"
# "pid inode" of the processes that hold them.
inodes=$(printf '%s\n' "$listening" | awk '$3 != "" && $3 != "0" { printf "socket:[%s]\n", $3 }')
holders=''
if [ -n "$inodes" ]; then
  holders=$(find /proc/[0-9]*/fd -maxdepth 1 -lname 'socket:*' -printf '%h %l\n' 2>/dev/null |
    grep -F -e "$inodes" | sed -n 's#^/proc/\([0-9]*\)/fd socket:\[\([0-9]*\)\]$#\1 \2#p')
fi
echo @sockets
printf '%s\n' "$holders"
# "pid unit name" of each: its systemd unit (hex) and its name (hex).
echo @pids
for pid in $(printf '%s\n' "$holders" | cut -d' ' -f1 | sort -u); do
  unit=$(grep -o '[^/]*\.service' "/proc/$pid/cgroup" 2>/dev/null | tail -n 1)
  printf '%s %s %s\n' "$pid" "$(printf '%s' "$unit" | hex)" "$(hex 2>/dev/null <"/proc/$pid/comm")"
done
echo @disk
for p in $HOST_DISK_PATHS; do [ -e "$p" ] && df -P -k "$p" 2>/dev/null | tail -n +2; done
echo @mem
grep -E '^(MemTotal|MemAvailable):' /proc/meminfo
# "pid name path" (name and path in hex) of each process that runs a deleted binary or library.
echo @stale
for d in /proc/[0-9]*; do
  pid=${d#/proc/}
  exe=$(readlink "$d/exe" 2>/dev/null) || continue
  case "$exe" in
    *' (deleted)') path=${exe% (deleted)} ;;
    *) path=$(grep -m1 -E '\.so[.0-9]* \(deleted\)$' "$d/maps" 2>/dev/null | awk '{print $6}') ;;
  esac
  [ -n "$path" ] && printf '%s %s %s\n' "$pid" "$(hex 2>/dev/null <"$d/comm")" "$(printf '%s' "$path" | hex)"
done
echo @deploy
grep ' result=ok ' /var/log/chatmail-deploy.log 2>/dev/null | tail -n 1
echo @iroh
if [ -x /usr/local/bin/iroh-relay ]; then
  v=$(/usr/local/bin/iroh-relay --version 2>/dev/null | head -n 1)
  printf '%s\n%s\n' "${v:-unknown}" "$(sha256sum /usr/local/bin/iroh-relay | cut -c1-64)"
fi

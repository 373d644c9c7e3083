# shellcheck shell=sh
# Helpers of the facts script; each prints one record (see parseFacts in src/deploy/facts.ts).
# MAX_DIFF_BYTES is set by the builder before this file.
export LC_ALL=C
f() { # PATH READ_CONTENT(0|1): a file's owner, group, mode, size, sha256 and (small, not secret) content
  if [ -f "$1" ]; then
    h=$(sha256sum <"$1" | cut -d' ' -f1); c=
    if [ "$2" = 1 ] && [ "$(stat -c %s "$1")" -le "$MAX_DIFF_BYTES" ]; then c=$(base64 -w0 <"$1"); fi
    printf 'file\t%s\t1\t%s\t%s\t%s\n' "$1" "$(stat --printf '%U\t%G\t%a\t%s' "$1")" "$h" "$c"
  elif [ -e "$1" ]; then printf 'file\t%s\tother\n' "$1"
  else printf 'file\t%s\t0\n' "$1"; fi
}
d() { # PATH: a directory's owner, group, mode
  if [ -d "$1" ]; then printf 'dir\t%s\t1\t%s\n' "$1" "$(stat --printf '%U\t%G\t%a' "$1")"
  else printf 'dir\t%s\t0\n' "$1"; fi
}
u() { # NAME: a user's home, shell and groups
  if e=$(getent passwd "$1"); then
    printf 'user\t%s\t1\t%s\t%s\t%s\n' "$1" "$(echo "$e" | cut -d: -f6)" "$(echo "$e" | cut -d: -f7)" "$(id -nG "$1")"
  else printf 'user\t%s\t0\n' "$1"; fi
}
s() { # UNIT: its state, in the sorted order of the property names
  printf 'unit\t%s\t' "$1"
  systemctl show -p ActiveEnterTimestampMonotonic -p ActiveState -p LoadState -p UnitFileState "$1" 2>/dev/null |
    sort | cut -d= -f2- | tr '\n' '\t'
  echo
}

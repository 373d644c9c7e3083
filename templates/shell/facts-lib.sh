# shellcheck shell=sh
# Helpers of the facts script; each prints one record per thing (see parseFacts in
# src/deploy/facts.ts). Each takes all things of its kind at once and starts a handful of
# processes in all, not a few per thing: on a busy host every process start costs (a no-op
# redeploy is mostly this script). MAX_DIFF_BYTES is set by the builder before this file.
export LC_ALL=C
TAB=$(printf '\t')

f1() { # PATH READ_CONTENT(0|1): one file's owner, group, mode, size, sha256 and (small, not secret) content
  if [ -f "$1" ]; then
    h=$(sha256sum <"$1" | cut -d' ' -f1); c=
    if [ "$2" = 1 ] && [ "$(stat -c %s "$1")" -le "$MAX_DIFF_BYTES" ]; then c=$(base64 -w0 <"$1"); fi
    printf 'file\t%s\t1\t%s\t%s\t%s\n' "$1" "$(stat --printf '%U\t%G\t%a\t%s' "$1")" "$h" "$c"
  elif [ -e "$1" ]; then printf 'file\t%s\tother\n' "$1"
  else printf 'file\t%s\t0\n' "$1"; fi
}
# (PATH READ_CONTENT EXPECTED_SHA256)...: f1 for many files with one stat and one sha256sum; the
# content (for a diff) only of files that differ from what the deploy would write.
f() {
  T=$(mktemp -d) || return 1
  n=$(($# / 3))
  while [ "$n" -gt 0 ]; do
    p=$1 w=$2 e=$3
    shift 3
    n=$((n - 1))
    if [ -f "$p" ]; then
      set -- "$@" "$p"
      printf '%s\t%s\t%s\n' "$p" "$w" "$e" >>"$T/want"
    elif [ -e "$p" ]; then printf 'file\t%s\tother\n' "$p"
    else printf 'file\t%s\t0\n' "$p"; fi
  done
  # "$@" is now the regular files' paths.
  if [ $# -gt 0 ]; then
    if stat --printf '%U\t%G\t%a\t%s\n' -- "$@" >"$T/stat" 2>/dev/null &&
      sha256sum -- "$@" 2>/dev/null | cut -c1-64 >"$T/sha" &&
      [ "$(wc -l <"$T/sha")" -eq $# ]; then
      paste "$T/want" "$T/stat" "$T/sha" | while IFS=$TAB read -r p w e u g m s h; do
        c=
        if [ "$w" = 1 ] && [ "$h" != "$e" ] && [ "$s" -le "$MAX_DIFF_BYTES" ]; then c=$(base64 -w0 <"$p"); fi
        printf 'file\t%s\t1\t%s\t%s\t%s\t%s\t%s\t%s\n' "$p" "$u" "$g" "$m" "$s" "$h" "$c"
      done
    else # a file changed under us: one at a time
      while IFS=$TAB read -r p w e; do f1 "$p" "$w"; done <"$T/want"
    fi
  fi
  rm -rf "$T"
}
d() { # PATH...: directories' owner, group, mode
  for p; do
    if [ -d "$p" ]; then set -- "$@" "$p"; else printf 'dir\t%s\t0\n' "$p"; fi
    shift
  done
  if [ $# -gt 0 ]; then stat --printf 'dir\t%n\t1\t%U\t%G\t%a\n' -- "$@"; fi
}
u() { # NAME...: users' home, shell and groups (the primary group first)
  { getent passwd "$@"; echo; getent group; } 2>/dev/null | awk -F: -v names="$*" '
    BEGIN { phase = 1 }
    phase == 1 && $0 == "" { phase = 2; next }
    phase == 1 { home[$1] = $6; shell[$1] = $7; gid[$1] = $4; next }
    { gname[$3] = $1; n = split($4, m, ","); for (i = 1; i <= n; i++) sup[m[i]] = sup[m[i]] " " $1 }
    END {
      n = split(names, list, " ")
      for (i = 1; i <= n; i++) {
        x = list[i]
        if (!(x in home)) { printf "user\t%s\t0\n", x; continue }
        g = gname[gid[x]]
        k = split(sup[x], s, " ")
        for (j = 1; j <= k; j++) if (s[j] != gname[gid[x]]) g = g " " s[j]
        printf "user\t%s\t1\t%s\t%s\t%s\n", x, home[x], shell[x], g
      }
    }'
}
s() { # UNIT...: their states, in the sorted order of the property names (one systemctl for all)
  systemctl show -p ActiveEnterTimestampMonotonic -p ActiveState -p LoadState -p UnitFileState -- "$@" 2>/dev/null |
    awk -v names="$*" '
      function flush() { if (have) { i++; v[i] = a["ActiveEnterTimestampMonotonic"] "\t" a["ActiveState"] "\t" a["LoadState"] "\t" a["UnitFileState"] "\t" }; have = 0; delete a }
      $0 == "" { flush(); next }
      { k = $0; sub(/=.*/, "", k); val = $0; sub(/^[^=]*=/, "", val); a[k] = val; have = 1 }
      END {
        flush()
        n = split(names, list, " ")
        for (j = 1; j <= n; j++) printf "unit\t%s\t%s\n", list[j], (j in v) ? v[j] : ""
      }'
}

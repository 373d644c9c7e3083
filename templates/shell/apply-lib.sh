# shellcheck shell=sh
# The head of every apply script (built by applyScript in src/deploy/apply.ts): settings and the
# helpers its steps call. BACKUP_ROOT is set by the builder before this file. Result lines start
# with `@@` (say); everything else is log.
set -u
export LC_ALL=C DEBIAN_FRONTEND=noninteractive
umask 022
B=$BACKUP_ROOT/$$
rm -rf "$B"; mkdir -p "$B"
: >"$B/.list"
say() { printf '@@%s' "$1"; shift; for a in "$@"; do printf '\t%s' "$a"; done; printf '\n'; }
ms() { date +%s%3N; }
prc=
fail() { [ -z "$prc" ] || rm -f /usr/sbin/policy-rc.d; say fail "$*"; exit 1; }
oneline() { tail -n "$2" "$1" 2>/dev/null | tr '\n\t' '  ' | cut -c1-1500; }
backup() {
  if [ -e "$1" ]; then mkdir -p "$B$(dirname "$1")" && cp -p "$1" "$B$1" && printf 'r\t%s\n' "$1" >>"$B/.list"
  else printf 'n\t%s\n' "$1" >>"$B/.list"; fi
}
rollback() {
  while IFS="$(printf '\t')" read -r how path; do
    if [ "$how" = r ]; then mv -f "$B$path" "$path"; else rm -f "$path"; fi
  done <"$B/.list"
}
w() { # PATH OWNER GROUP MODE, base64 content on stdin
  dir=$(dirname "$1"); mkdir -p "$dir" || fail "cannot create $dir"
  tmp=$(mktemp "$dir/.chatmail.XXXXXX") || fail "cannot write in $dir"
  if ! { base64 -d >"$tmp" && chown "$2:$3" "$tmp" && chmod "$4" "$tmp"; }; then rm -f "$tmp"; fail "cannot write $1 (owner $2:$3)"; fi
  backup "$1"
  mv -f "$tmp" "$1" || fail "cannot rename into $1"
  say wrote "$1"
}
meta() {
  if ! { chown "$2:$3" "$1" && chmod "$4" "$1"; }; then fail "cannot set owner/mode of $1"; fi
  say meta "$1"
}
bin() { # PATH SHA256 MODE KIND(url|file) SOURCE MEMBER
  dir=$(dirname "$1"); mkdir -p "$dir"
  tmp=$(mktemp "$dir/.chatmail.XXXXXX") || fail "cannot write in $dir"
  if [ "$4" = url ]; then
    if command -v curl >/dev/null; then curl -fsSL --retry 2 -o "$tmp.dl" "$5"
    elif command -v wget >/dev/null; then wget -q -O "$tmp.dl" "$5"
    else rm -f "$tmp"; fail "cannot download $5: neither curl nor wget on the host"; fi || { rm -f "$tmp" "$tmp.dl"; fail "download of $5 failed"; }
  else mv -f "$5" "$tmp.dl" || fail "uploaded file $5 missing"; fi
  if [ -n "$6" ]; then tar -xzf "$tmp.dl" --wildcards -O "$6" >"$tmp" 2>"$tmp.err" || { rm -f "$tmp" "$tmp.dl"; fail "cannot extract $6 from $5: $(oneline "$tmp.err" 2)"; }; rm -f "$tmp.dl"
  else mv -f "$tmp.dl" "$tmp"; fi
  got=$(sha256sum <"$tmp" | cut -d' ' -f1)
  [ "$got" = "$2" ] || { rm -f "$tmp"; fail "checksum mismatch for $1 from $5: expected $2, got $got"; }
  chown root:root "$tmp"; chmod "$3" "$tmp"
  backup "$1"
  mv -f "$tmp" "$1" || fail "cannot rename into $1"
  say wrote "$1"
}
undo() { # PATH...: puts these files back as they were before this run (those it changed)
  for p in "$@"; do
    how=$(awk -F '\t' -v p="$p" '$2 == p { print $1; exit }' "$B/.list")
    case $how in
      r) cp -p "$B$p" "$p.chatmail-undo" && mv -f "$p.chatmail-undo" "$p" ;;
      n) rm -f "$p" ;;
    esac
  done
}
failed=
restart_failed() { # VERB UNIT DAEMON_RELOAD(0|1) PATH...: the unit did not take its new files: back to its old ones
  verb=$1 unit=$2 dr=$3; shift 3
  j=$(journalctl -u "$unit" -n 8 --no-pager -o cat 2>/dev/null | tr '\n\t' '  ' | cut -c1-1500)
  undo "$@"
  if [ "$dr" = 1 ]; then systemctl daemon-reload; fi
  if systemctl restart "$unit"; then back="its previous files were restored and it runs on them again"
  else back="its previous files were restored, but it did not start on them either"; fi
  failed="${failed}${failed:+; }systemctl $verb $unit failed: $j; $back"
  say restart-failed "$unit"
}
turnserver_conf_ok() { # FILE: coturn has no check mode: every directive must be an option of this
  # turnserver (from its --help), and the certificate and key it names must be readable.
  turnserver -h 2>&1 | awk '
    FNR == NR { while (match($0, /--[a-z0-9_-]+/)) { opt[substr($0, RSTART + 2, RLENGTH - 2)] = 1; $0 = substr($0, RSTART + RLENGTH) }; next }
    /^[ \t]*(#|$)/ { next }
    { k = $0; sub(/^[ \t]+/, "", k); v = k; sub(/[ \t]*=.*$/, "", k); sub(/^[^=]*=[ \t]*/, "", v)
      if (!(k in opt)) { printf "%s line %d: turnserver has no option \"%s\"\n", FILENAME, FNR, k; bad = 1 }
      else if ((k == "cert" || k == "pkey") && (getline line < v) < 0) { printf "%s line %d: cannot read %s %s\n", FILENAME, FNR, k, v; bad = 1 } }
    END { exit bad }' - "$1"
}

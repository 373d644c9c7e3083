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
  base64 -d >"$tmp" && chown "$2:$3" "$tmp" && chmod "$4" "$tmp" || { rm -f "$tmp"; fail "cannot write $1 (owner $2:$3)"; }
  backup "$1"
  mv -f "$tmp" "$1" || fail "cannot rename into $1"
  say wrote "$1"
}
meta() { chown "$2:$3" "$1" && chmod "$4" "$1" || fail "cannot set owner/mode of $1"; say meta "$1"; }
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

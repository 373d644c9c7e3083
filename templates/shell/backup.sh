# shellcheck shell=bash
# `chatmail backup` and `chatmail restore` on the host, as root (src/app/backup.ts builds the head:
# the variables below, then this file, then `backup_main` or `restore_main`). restic keeps the
# encrypted repository; its password is read from RESTIC_PASSWORD_FILE, never from argv.
# Set before it: REPO, PASSWORD_FILE, CACHE_DIR, STATE_DIR, STAGE_DIR, OWNERS_FILE, RESTORED_FILE,
# ACCOUNTS_FILE, SNAPSHOT_HOST, FORCE (1: restore over a host with accounts of its own), DATA_PATHS (array), FREEZE_UNITS (array: stopped for the consistent pass),
# ALL_UNITS (array: stopped while a restore moves data into place), KEEP (array: restic forget's
# retention flags), POSTSUPER (1: repair postfix's queue file names after a restore).
# Protocol on stdout: "@result KEY VALUE" lines; "@error MESSAGE" before a non-zero exit.
set -euo pipefail
export LC_ALL=C
export RESTIC_REPOSITORY="$REPO" RESTIC_PASSWORD_FILE="$PASSWORD_FILE" RESTIC_CACHE_DIR="$CACHE_DIR"

fail() {
  printf '@error %s\n' "$2"
  exit "$1"
}

need_restic() {
  command -v restic >/dev/null || fail 3 "restic is not installed on this host: run chatmail deploy host (it installs Debian's restic)"
  [ -s "$PASSWORD_FILE" ] || fail 3 "the backup password file $PASSWORD_FILE is missing or empty"
  restic version | awk '{ print "@result restic " $2 }'
}

# "u NAME ID" and "g NAME ID" of every user and group, so a restore can map ids by name.
write_owners() {
  install -d -m 700 "$(dirname "$OWNERS_FILE")"
  {
    getent passwd | awk -F: '{ print "u " $1 " " $3 }'
    getent group | awk -F: '{ print "g " $1 " " $3 }'
  } >"$OWNERS_FILE.tmp"
  mv -f "$OWNERS_FILE.tmp" "$OWNERS_FILE"
}

# restic backup of the data paths that exist here; its JSON summary on stdout as "@result NAME …".
snapshot() {
  local name=$1 tag=$2 present=() p summary
  for p in "${DATA_PATHS[@]}"; do
    if [ -e "$p" ]; then present+=("$p"); fi
  done
  summary=$(restic backup --json --host "$SNAPSHOT_HOST" --tag "$tag" "${present[@]}" | grep '"message_type":"summary"') ||
    fail 1 "restic backup failed (its messages are above)"
  printf '@result %s %s\n' "$name" "$summary"
}

start_units() {
  local u
  for u in "$@"; do systemctl start "$u" || true; done
}

backup_main() {
  need_restic
  install -d -m 700 "$STATE_DIR" "$CACHE_DIR"
  if [ ! -f "$REPO/config" ]; then
    install -d -m 700 "$REPO"
    restic init --repository-version 2 >&2 || fail 1 "restic init $REPO failed"
  fi
  write_owners
  # A live pass reads everything while the server serves; the consistent pass under the freeze
  # then reads only what changed since.
  snapshot warm chatmail-warm
  local t0 t1 u
  t0=$(date +%s%N)
  # shellcheck disable=SC2064 # expand now: the units to bring back
  trap "start_units ${FREEZE_UNITS[*]}" EXIT
  for u in "${FREEZE_UNITS[@]}"; do systemctl stop "$u"; done
  snapshot final chatmail
  start_units "${FREEZE_UNITS[@]}"
  trap - EXIT
  t1=$(date +%s%N)
  printf '@result freeze_ms %s\n' $(((t1 - t0) / 1000000))
  restic forget --tag chatmail-warm --keep-last 1 >&2
  restic forget --tag chatmail --host "$SNAPSHOT_HOST" "${KEEP[@]}" >&2 || fail 1 "restic forget failed"
  # Pruning rewrites packs and checking reads every index and tree (minutes on a large
  # repository): once a week; a restore checks every byte anyway.
  if [ ! -e "$STATE_DIR/pruned" ] || [ -n "$(find "$STATE_DIR/pruned" -mtime +6)" ]; then
    restic prune >&2 || fail 1 "restic prune failed"
    restic check >&2 || fail 1 "restic check found the repository damaged"
    touch "$STATE_DIR/pruned"
    printf '@result checked 1\n'
  fi
  sync
}

# Numeric owners of the snapshot's files are the old host's: map them by name onto this host's.
map_owners() {
  local owners=$STAGE_DIR$OWNERS_FILE kind name old new lists
  [ -f "$owners" ] || return 0
  lists=$(mktemp -d)
  while read -r kind name old; do
    if [ "$kind" = u ]; then new=$(id -u "$name" 2>/dev/null) || continue; else new=$(getent group "$name" | cut -d: -f3); fi
    if [ -z "$new" ] || [ "$new" = "$old" ]; then continue; fi
    # Every list is made before any owner changes, so one mapping never feeds another.
    if [ "$kind" = u ]; then
      find "$STAGE_DIR" ! -type l -uid "$old" -print0 >"$lists/u-$new"
    else
      find "$STAGE_DIR" ! -type l -gid "$old" -print0 >"$lists/g-$new"
    fi
  done <"$owners"
  for f in "$lists"/*; do
    [ -e "$f" ] || continue
    name=${f##*/}
    if [ "${name%%-*}" = u ]; then xargs -0 -r chown -h "${name#u-}" <"$f"; else xargs -0 -r chgrp -h "${name#g-}" <"$f"; fi
  done
  rm -rf "$lists"
}

# Each data path of the snapshot replaces the host's; an interrupted move is finished by a rerun.
move_into_place() {
  local p old
  for p in "${DATA_PATHS[@]}"; do
    old="$p.chatmail-restore-old"
    if [ ! -e "$STAGE_DIR$p" ]; then
      rm -rf "$old"
      continue
    fi
    rm -rf "$old"
    if [ -e "$p" ]; then mv "$p" "$old"; fi
    install -d "$(dirname "$p")"
    mv "$STAGE_DIR$p" "$p"
    rm -rf "$old"
  done
}

restore_main() {
  need_restic
  [ -f "$REPO/config" ] || fail 1 "there is no restic repository at $REPO"
  install -d -m 700 "$STATE_DIR" "$CACHE_DIR"
  # Every byte is read and checked against its hash before anything on the host changes.
  if ! restic check --read-data >&2; then
    # Set aside, not deleted: a rerun with a sound copy starts from an empty repository.
    rm -rf "$REPO.refused"
    mv "$REPO" "$REPO.refused"
    fail 10 "the backup failed verification (restic check --read-data): it is damaged or was tampered with; nothing was restored (the copy on the host is in $REPO.refused)"
  fi
  local snap
  snap=$(restic snapshots --json --tag chatmail --host "$SNAPSHOT_HOST" --latest 1 | grep -o '"short_id":"[0-9a-f]*"' | tail -n 1 | cut -d'"' -f4)
  [ -n "$snap" ] || fail 11 "the repository holds no snapshot of $SNAPSHOT_HOST"
  printf '@result snapshot %s\n' "$snap"
  if [ "$(cat "$RESTORED_FILE" 2>/dev/null)" = "$snap" ]; then
    printf '@result already %s\n' "$snap"
    start_units "${ALL_UNITS[@]}"
    return 0
  fi
  if [ "$FORCE" != 1 ] && [ ! -e "$RESTORED_FILE" ] && [ -s "$ACCOUNTS_FILE" ]; then
    fail 12 "this host has accounts of its own ($ACCOUNTS_FILE) and was not restored from a backup: a restore would replace them; pass --force to do it anyway"
  fi
  printf 'restoring %s\n' "$snap" >"$RESTORED_FILE.tmp"
  mv -f "$RESTORED_FILE.tmp" "$RESTORED_FILE"
  local u
  for u in "${ALL_UNITS[@]}"; do systemctl stop "$u" || true; done
  rm -rf "$STAGE_DIR"
  install -d -m 700 "$STAGE_DIR"
  restic restore "$snap" --target "$STAGE_DIR" >&2 || fail 1 "restic restore failed"
  map_owners
  move_into_place
  if [ "$POSTSUPER" = 1 ] && command -v postsuper >/dev/null; then postsuper -s >&2 || true; fi
  sync
  printf '%s\n' "$snap" >"$RESTORED_FILE.tmp"
  mv -f "$RESTORED_FILE.tmp" "$RESTORED_FILE"
  sync
  rm -rf "$STAGE_DIR"
  start_units "${ALL_UNITS[@]}"
}

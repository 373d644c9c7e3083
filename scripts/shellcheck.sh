#!/usr/bin/env bash
# Lints the shell of this repository with shellcheck (Debian package `shellcheck`, installed by
# scripts/test-deps.sh): the shell that runs on a deployed host (templates/shell/*.sh, sh; bash
# where a file says `# shellcheck shell=bash`, backup.sh run by `bash -s`), the
# shell templates, and the scripts in scripts/ (bash).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v shellcheck >/dev/null; then
  echo "lint: shellcheck is not installed (apt-get install shellcheck, or npm run test:deps as root)" >&2
  exit 1
fi
mapfile -t bash_files < <(grep -l '^# shellcheck shell=bash' templates/shell/*.sh)
mapfile -t sh_files < <(grep -L '^# shellcheck shell=bash' templates/shell/*.sh)
shellcheck --shell=sh "${sh_files[@]}" templates/tls/*.sh
shellcheck --shell=bash "${bash_files[@]}"
shellcheck scripts/*.sh

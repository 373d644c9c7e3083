#!/usr/bin/env bash
# Lints the shell of this repository with shellcheck (Debian package `shellcheck`, installed by
# scripts/test-deps.sh): the shell that runs on a deployed host (templates/shell/*.sh, sh), the
# shell templates, and the scripts in scripts/ (bash).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v shellcheck >/dev/null; then
  echo "lint: shellcheck is not installed (apt-get install shellcheck, or npm run test:deps as root)" >&2
  exit 1
fi
shellcheck --shell=sh templates/shell/*.sh templates/tls/*.sh
shellcheck scripts/*.sh

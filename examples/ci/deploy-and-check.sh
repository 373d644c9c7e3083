#!/usr/bin/env bash
# Deploy chatmail to a staging host, then gate on the doctor: the one script behind the GitHub
# Actions workflow and the GitLab CI job in this directory (and run by the project's end-to-end
# test against a real host, so it cannot rot).
#
# Environment (put the secret ones in CI secrets / masked variables):
#   STAGING_DESTINATION   user@host[:port] of the staging server                     (required)
#   STAGING_SSH_KEY       the private SSH key that logs in there                     (required, secret)
#   STAGING_KNOWN_HOSTS   the host's known_hosts line(s): ssh-keyscan once, check it (required)
#   CHATMAIL_CONFIG       chatmail.toml of the staging server (holds the TURN secret) (default chatmail.toml)
#   CHATMAIL              how to run the CLI                                        (default: npx --no-install chatmail)
#   REPORT_DIR            where deploy.json, doctor.json and doctor.xml go          (default: reports)
#   DEPLOY_ARGS           extra arguments for `deploy host`, split on spaces        (optional)
#   DOCTOR_ARGS           extra arguments for `doctor`, e.g. --ca FILE for a private CA (optional)
#
# Exit: 0 deployed and every doctor check ok or skipped; 1 the deploy failed or a check failed or
# warned (--strict); 2/3 usage or could not run. Nothing secret is printed: the key and the
# known_hosts lines go to 0600 files in a private temporary directory, removed on exit.
set -euo pipefail
umask 077

: "${STAGING_DESTINATION:?set STAGING_DESTINATION to user@host[:port]}"
: "${STAGING_SSH_KEY:?set STAGING_SSH_KEY (a CI secret) to the private key}"
: "${STAGING_KNOWN_HOSTS:?set STAGING_KNOWN_HOSTS to the host key line(s) from known_hosts}"
config=${CHATMAIL_CONFIG:-chatmail.toml}
reports=${REPORT_DIR:-reports}
read -ra chatmail <<<"${CHATMAIL:-npx --no-install chatmail}"
read -ra extra <<<"${DEPLOY_ARGS:-}"
read -ra doctor_extra <<<"${DOCTOR_ARGS:-}"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
printf '%s\n' "$STAGING_SSH_KEY" >"$work/id"
printf '%s\n' "$STAGING_KNOWN_HOSTS" >"$work/known_hosts"
ssh=(-i "$work/id" --known-hosts "$work/known_hosts")
mkdir -p "$reports"

echo "deploying to $STAGING_DESTINATION" >&2
deploy=0
"${chatmail[@]}" deploy host "$STAGING_DESTINATION" -c "$config" "${ssh[@]}" --yes --json --no-doctor "${extra[@]}" \
  >"$reports/deploy.json" || deploy=$?
if [ "$deploy" != 0 ]; then
  echo "deploy failed (exit $deploy); see $reports/deploy.json" >&2
  exit "$deploy"
fi

echo "checking $STAGING_DESTINATION with chatmail doctor --strict" >&2
doctor=0
"${chatmail[@]}" doctor -c "$config" --ssh "$STAGING_DESTINATION" "${ssh[@]}" --strict \
  --junit "$reports/doctor.xml" --json "${doctor_extra[@]}" >"$reports/doctor.json" || doctor=$?
echo "doctor exit $doctor; JUnit report in $reports/doctor.xml" >&2
exit "$doctor"

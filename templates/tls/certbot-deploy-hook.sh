#!/bin/sh
# {{managed_by}}
# certbot runs this after it issues or renews the certificate of {{domain}}: copy it to the
# paths every service reads, then reload them (coturn has no reload: it restarts). The key is
# root:turnserver 0640, as in self-signed mode: coturn reads it as turnserver.
set -eu
[ "${RENEWED_LINEAGE:-}" ] || exit 0
install -o root -g root -m 0644 "$RENEWED_LINEAGE/fullchain.pem" "{{tls_cert}}.new"
install -o root -g turnserver -m 0640 "$RENEWED_LINEAGE/privkey.pem" "{{tls_key}}.new"
mv -f "{{tls_cert}}.new" "{{tls_cert}}"
mv -f "{{tls_key}}.new" "{{tls_key}}"
systemctl reload dovecot postfix nginx || true
systemctl try-restart coturn || true

/**
 * The host's own view of its DKIM record: `opendkim-testkey` with the deployed opendkim.conf looks
 * the published key up exactly as opendkim does for arriving mail (its libunbound, recursively or
 * as /etc/opendkim/resolver.conf says) and compares it with the private key. `chatmail dns --check`
 * runs it over SSH once the authoritative servers serve the right key: if the host still cannot
 * find it, its opendkim cannot look up other servers' keys either and refuses all arriving mail.
 */

import { DKIM } from '../server/federation.js'
import { shellQuote } from '../ssh/quote.js'

export interface OpendkimProbe {
  status: 'ok' | 'fail' | 'skipped'
  /** One line for the report. */
  detail: string
}

const NO_OPENDKIM = 'chatmail: no opendkim'

/** A shell command (as root on the host): opendkim-testkey for DOMAIN's published key, or a marker without opendkim. */
export function opendkimProbeCommand(domain: string): string {
  return `if [ -r ${DKIM.config} ] && command -v opendkim-testkey >/dev/null 2>&1; then opendkim-testkey -x ${DKIM.config} -d ${shellQuote(domain)} -s ${DKIM.selector} -vvv 2>&1; else echo '${NO_OPENDKIM}'; fi`
}

/** opendkim-testkey's output (-vvv) as a verdict. */
export function parseOpendkimProbe(stdout: string, domain: string): OpendkimProbe {
  const record = `${DKIM.selector}._domainkey.${domain}`
  if (stdout.includes(NO_OPENDKIM)) return { status: 'skipped', detail: 'opendkim is not on the host (deploy first)' }
  if (/^opendkim-testkey: key OK$/m.test(stdout))
    return {
      status: 'ok',
      detail: `the host's opendkim finds ${record} through its own resolver; it matches the private key`,
    }
  if (/keys do not match/.test(stdout))
    return {
      status: 'fail',
      detail: `the host's opendkim finds ${record}, but it is not the key the host signs with (${DKIM.privateKey})`,
    }
  const last =
    stdout
      .trim()
      .split('\n')
      .filter((l) => !/key loaded from|checking key|key not secure/.test(l))
      .pop()
      ?.replace(/^opendkim-testkey: /, '') ?? 'no output'
  return {
    status: 'fail',
    detail: `the host's opendkim cannot look up ${record} (${last}): its own lookups (libunbound, /etc/opendkim/resolver.conf) fail, so it refuses all arriving mail; see docs/guides/dkim-and-mta-sts.md, "How opendkim finds the keys"`,
  }
}

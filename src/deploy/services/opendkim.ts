/**
 * opendkim (Debian's), a milter of postfix: DKIM-signs outgoing mail with a key made on the host
 * once, and refuses arriving mail without a valid signature of the From address's domain (the
 * rule of chatmail relays). Not on an IP-only server: there is no DNS to publish a key in.
 *
 * The key is server data: made by `opendkim-genkey` when /etc/dkimkeys/opendkim.private is
 * absent, never regenerated or read back by a deploy (only its public part, by `chatmail dns`).
 */

import { DKIM, dkimEnabled } from '../../server/federation.js'
import { loadTemplate } from '../../server/template.js'
import { shellQuote as q } from '../../ssh/quote.js'
import { command, dataFile, directory, pkg, service } from '../resources.js'
import type { ServiceModule } from '../service.js'
import { MANAGED_BY, render } from './common.js'

/** Makes the key once; the private part is the opendkim user's alone (0600 in a 0700 directory). */
export function dkimKeyCommand(domain: string) {
  const { keyDir, privateKey, selector, bits } = DKIM
  return command(
    'dkim-key',
    `create the DKIM key for ${domain} (selector ${selector}), kept on the host`,
    `grep -q 'PRIVATE KEY' ${privateKey}`,
    [
      `umask 077`,
      `opendkim-genkey -b ${bits} -D ${keyDir} -d ${q(domain)} -s ${selector}`,
      `chown opendkim:opendkim ${privateKey} ${keyDir}/${selector}.txt`,
      `chmod 0600 ${privateKey} ${keyDir}/${selector}.txt`,
    ].join(' && '),
  )
}

/** Where opendkim's DNS lookups go (unbound.conf syntax): server data, see templates/opendkim/resolver.conf. */
export const RESOLVER_CONF = '/etc/opendkim/resolver.conf'

/** The DNSSEC root trust anchor opendkim validates keys with (Debian's dns-root-data; opendkim depends on it). */
export const TRUST_ANCHOR = '/usr/share/dns/root.key'

export const opendkim: ServiceModule = {
  name: 'opendkim',
  async build(ctx) {
    const c = ctx.config
    if (!dkimEnabled(c)) return {}
    const vars = { managed_by: MANAGED_BY }
    const conf = await render(ctx, DKIM.config, 'opendkim/opendkim.conf', {
      managed_by: MANAGED_BY,
      domain: c.domain,
      socket: DKIM.socket,
      selector: DKIM.selector,
      key_file: DKIM.privateKey,
      resolver_conf: RESOLVER_CONF,
      trust_anchor: TRUST_ANCHOR,
    })
    // Server data: the operator's (or a test's) resolver settings for opendkim survive redeploys.
    const resolver = dataFile(RESOLVER_CONF, await loadTemplate('opendkim/resolver.conf', {}, ctx.templatesDir))
    const screen = await render(ctx, '/etc/opendkim/screen.lua', 'opendkim/screen.lua', vars)
    const final = await render(ctx, '/etc/opendkim/final.lua', 'opendkim/final.lua', vars)
    return {
      packages: [pkg('opendkim'), pkg('opendkim-tools'), pkg('dns-root-data')],
      directories: [
        directory('/etc/opendkim'),
        directory(DKIM.keyDir, { owner: 'opendkim', group: 'opendkim', mode: '0700' }),
        // setgid postfix: the socket opendkim makes here (umask 007) is postfix's group's.
        directory(DKIM.socketDir, { owner: 'opendkim', group: 'postfix', mode: '2750' }),
      ],
      commands: [dkimKeyCommand(c.domain)],
      files: [conf, screen, final, resolver],
      units: [
        service('opendkim.service', {
          restartOn: [conf, screen, final],
          validate: [`opendkim -n -x ${DKIM.config}`],
        }),
      ],
    }
  },
}

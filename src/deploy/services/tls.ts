/**
 * TLS certificates, shared by dovecot, postfix, coturn and nginx: self-signed (made on the host
 * once), ACME (certbot through nginx's webroot, with a self-signed placeholder until then) or
 * manual (files the operator provides; nothing to do here).
 */
import { isIP } from 'node:net'
import type { Config } from '../../config/schema.js'
import { certificateNamesFor } from '../../server/federation.js'
import { PATHS } from '../../server/paths.js'
import { shellQuote as q } from '../../ssh/quote.js'
import { type CommandResource, command, directory, pkg, type Resource, service } from '../resources.js'
import type { ServiceModule } from '../service.js'
import { baseVars, render } from './common.js'

/**
 * Self-signed mode: a certificate for the domain (or IP) made on the host once, kept 10 years, and
 * made again when it is in its last 30 days or no longer names the server (the domain changed, e.g.
 * from an IP address to a name). As the ACME placeholder (`placeholder`), it is made only when
 * there is no certificate at all: an ACME certificate in its last 30 days is certbot's to renew,
 * never replaced by a self-signed one.
 */
function selfSignedCert(domain: string, placeholder: boolean): CommandResource {
  const ip = isIP(domain) !== 0
  const san = ip ? `IP:${domain}` : `DNS:${domain}`
  const { tlsCert: cert, tlsKey: key } = PATHS
  const current = [
    `openssl x509 -in ${cert} -noout -checkend 2592000`,
    `openssl x509 -in ${cert} -noout ${ip ? '-checkip' : '-checkhost'} ${q(domain)} | grep -q 'does match'`,
  ]
  return command(
    'tls-self-signed',
    `create a self-signed certificate for ${domain}${placeholder ? ' (placeholder until ACME issues one)' : ''}`,
    [`test -s ${cert}`, `test -s ${key}`, ...(placeholder ? [] : current)].join(' && '),
    [
      `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 -subj ${q(`/CN=${domain}`)} -addext ${q(`subjectAltName=${san}`)} -keyout ${key}.new -out ${cert}.new`,
      `chown root:turnserver ${key}.new && chmod 0640 ${key}.new && chmod 0644 ${cert}.new`,
      `mv -f ${key}.new ${key} && mv -f ${cert}.new ${cert}`,
    ].join(' && '),
  )
}

/**
 * The resources whose change means a new certificate: the services that read it restart on these.
 * (An ACME certificate arrives after the services started; certbot's deploy hook reloads them.)
 */
export function certificateChanges(c: Config): Resource[] {
  return c.tls.mode === 'manual' ? [] : [selfSignedCert(c.domain, c.tls.mode === 'acme')]
}

export const tls: ServiceModule = {
  name: 'tls',
  async build(ctx) {
    const c = ctx.config
    const dirs = [directory(PATHS.configDir), directory(PATHS.tlsDir)]
    if (c.tls.mode === 'manual') return { directories: dirs }
    if (c.tls.mode === 'self-signed') return { directories: dirs, commands: certificateChanges(c) as CommandResource[] }
    const email = c.tls.acmeEmail ? `--email ${q(c.tls.acmeEmail)}` : '--register-unsafely-without-email'
    const live = `/etc/letsencrypt/live/${c.domain}`
    const names = certificateNamesFor(c)
    // The certificate in use must be certbot's and cover every name (a host deployed before
    // mta-sts. was added gets a new one with all of them).
    const covers = names.map(
      (n) => `openssl x509 -in ${PATHS.tlsCert} -noout -checkhost ${q(n)} | grep -q 'does match'`,
    )
    return {
      packages: [pkg('certbot')],
      directories: [...dirs, directory(PATHS.stateDir), directory(PATHS.acmeWebroot)],
      commands: [
        ...(certificateChanges(c) as CommandResource[]),
        command(
          'acme-certificate',
          `obtain a certificate for ${names.join(', ')} from ${c.tls.acmeDirectory}`,
          [`test -s ${live}/fullchain.pem`, `cmp -s ${live}/fullchain.pem ${PATHS.tlsCert}`, ...covers].join(' && '),
          [
            `certbot certonly --non-interactive --agree-tos ${email} --webroot -w ${PATHS.acmeWebroot} ${names.map((n) => `-d ${q(n)}`).join(' ')} --server ${q(c.tls.acmeDirectory)} --cert-name ${q(c.domain)} --keep-until-expiring --renew-with-new-domains`,
            `RENEWED_LINEAGE=${live} /etc/letsencrypt/renewal-hooks/deploy/chatmail.sh`,
          ].join(' && '),
          'after-services',
        ),
      ],
      files: [
        await render(
          ctx,
          '/etc/letsencrypt/renewal-hooks/deploy/chatmail.sh',
          'tls/certbot-deploy-hook.sh',
          baseVars(c),
          {
            mode: '0755',
          },
        ),
      ],
      // Renewals: Debian's certbot.timer runs `certbot renew`; the package enables it, but its start is
      // held back during the install (policy-rc.d), so the deploy starts it.
      units: [service('certbot.timer')],
    }
  },
}

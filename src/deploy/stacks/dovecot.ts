/**
 * Profile `dovecot`: postfix + dovecot (IMAP METADATA through chatmail-metadata), coturn with
 * TLS, iroh-relay v0.35 behind nginx, TLS certificates, systemd units.
 */
import { isIP } from 'node:net'
import type { Config } from '../../config/schema.js'
import { formatDuration } from '../../protocols/duration.js'
import { shellQuote as q } from '../../ssh/quote.js'
import { POLICY_MARK } from '../apply.js'
import {
  binary,
  command,
  type DeploySpec,
  directory,
  file,
  pkg,
  type Resource,
  service,
  templateFile,
  user,
} from '../resources.js'
import { templateLines } from '../template.js'
import { doctorAddress, type IrohRelaySource, irohRelayVariants, MANAGED_BY, PATHS, ssha512 } from './common.js'

export interface StackInputs {
  config: Config
  /** The bundled chatmail-metadata program (dist/remote/chatmail-metadata.js). */
  metadataProgram: string
  irohRelay: IrohRelaySource
  /** The doctor account's password (kept in the local config). */
  doctorPassword: string
  templatesDir?: string
}

/**
 * Self-signed mode: a certificate for the domain (or IP) made on the host once, kept 10 years.
 * As the ACME placeholder (`placeholder`), it is made only when there is no certificate at all:
 * an ACME certificate in its last 30 days is certbot's to renew, never replaced by a self-signed one.
 */
function selfSignedCert(domain: string, placeholder = false): Resource {
  const san = isIP(domain) ? `IP:${domain}` : `DNS:${domain}`
  const { tlsCert: cert, tlsKey: key } = PATHS
  return command(
    'tls-self-signed',
    `create a self-signed certificate for ${domain}${placeholder ? ' (placeholder until ACME issues one)' : ''}`,
    `test -s ${cert} && test -s ${key}${placeholder ? '' : ` && openssl x509 -in ${cert} -noout -checkend 2592000`}`,
    [
      `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 -subj ${q(`/CN=${domain}`)} -addext ${q(`subjectAltName=${san}`)} -keyout ${key}.new -out ${cert}.new`,
      `chown root:turnserver ${key}.new && chmod 0640 ${key}.new && chmod 0644 ${cert}.new`,
      `mv -f ${key}.new ${key} && mv -f ${cert}.new ${cert}`,
    ].join(' && '),
  )
}

/**
 * ACME mode: a self-signed placeholder lets nginx start on the first deploy; then certbot gets
 * the real certificate through nginx's webroot, and its deploy hook installs it and reloads.
 */
function acmeResources(c: Config): Resource[] {
  const email = c.tls.acmeEmail ? `--email ${q(c.tls.acmeEmail)}` : '--register-unsafely-without-email'
  const live = `/etc/letsencrypt/live/${c.domain}`
  return [
    pkg('certbot'),
    selfSignedCert(c.domain, true),
    command(
      'acme-certificate',
      `obtain a certificate for ${c.domain} from ${c.tls.acmeDirectory}`,
      `test -s ${live}/fullchain.pem && cmp -s ${live}/fullchain.pem ${PATHS.tlsCert}`,
      [
        `certbot certonly --non-interactive --agree-tos ${email} --webroot -w ${PATHS.acmeWebroot} -d ${q(c.domain)} --server ${q(c.tls.acmeDirectory)} --cert-name ${q(c.domain)} --keep-until-expiring`,
        `RENEWED_LINEAGE=${live} /etc/letsencrypt/renewal-hooks/deploy/chatmail.sh`,
      ].join(' && '),
      'after-services',
    ),
    // Renewals: Debian's certbot.timer runs `certbot renew`; the package enables it, but its start is
    // held back during the install (policy-rc.d), so the deploy starts it.
    service('certbot.timer'),
  ]
}

export async function dovecotStack(inputs: StackInputs): Promise<DeploySpec> {
  const c = inputs.config
  const tpl = { templatesDir: inputs.templatesDir }
  const relayPublic = c.iroh.relayUrl.startsWith('http://')
  const vars = {
    managed_by: MANAGED_BY,
    domain: c.domain,
    tls_cert: c.tls.mode === 'manual' ? (c.tls.cert as string) : PATHS.tlsCert,
    tls_key: c.tls.mode === 'manual' ? (c.tls.key as string) : PATHS.tlsKey,
  }
  const doctorUser = doctorAddress(c)
  const resources: Resource[] = [
    // Packages: one apt-get run. nodejs runs chatmail-metadata (Debian's, no npm on the host).
    pkg('postfix', [
      `postfix postfix/mailname string ${c.domain}`,
      "postfix postfix/main_mailer_type select 'Internet Site'",
    ]),
    pkg('postfix-pcre'),
    pkg('dovecot-imapd'),
    pkg('dovecot-lmtpd'),
    pkg('coturn'),
    pkg('nginx'),
    pkg('nodejs'),
    pkg('openssl'),
    pkg('ca-certificates'),
    pkg('curl'),
    // A deploy killed during its package install leaves the policy-rc.d that kept daemons from starting.
    command(
      'policy-rc-leftover',
      'remove the policy-rc.d an interrupted deploy left behind',
      `! grep -qs '${POLICY_MARK}' /usr/sbin/policy-rc.d`,
      'rm -f /usr/sbin/policy-rc.d',
    ),
    user('vmail', { home: '/home/vmail' }),
    user('chatmail-metadata'),
    user('iroh-relay'),
    directory('/etc/chatmail'),
    directory(PATHS.tlsDir),
    directory('/home/vmail/mail', { owner: 'vmail', mode: '0700' }),
    directory(PATHS.metadataDir),
    directory('/var/www/chatmail'),
    directory('/var/lib/chatmail'),
    directory(PATHS.acmeWebroot),
  ]
  if (c.tls.mode === 'self-signed') resources.push(selfSignedCert(c.domain))
  if (c.tls.mode === 'acme') {
    resources.push(
      ...acmeResources(c),
      await templateFile('/etc/letsencrypt/renewal-hooks/deploy/chatmail.sh', 'tls/certbot-deploy-hook.sh', vars, {
        ...tpl,
        mode: '0755',
      }),
    )
  }
  resources.push(
    // Secrets: readable only by the programs that need them.
    file(PATHS.turnSecret, `${c.turn.secret}\n`, {
      owner: 'chatmail-metadata',
      group: 'root',
      mode: '0400',
      secret: true,
    }),
    file('/etc/dovecot/users', `${doctorUser}:${ssha512(inputs.doctorPassword, doctorUser, c.turn.secret)}::::::\n`, {
      owner: 'root',
      group: 'dovecot',
      mode: '0640',
      secret: true,
    }),
    // chatmail-metadata
    file(PATHS.metadataProgram, inputs.metadataProgram, { mode: '0644' }),
    await templateFile(
      PATHS.metadataConfig,
      'chatmail-metadata.conf',
      {
        socket: PATHS.metadataSocket,
        socket_mode: '0660',
        domain: c.domain,
        turn_host: c.turn.host,
        turn_port: c.turn.port,
        turns_port: c.turn.tlsPort,
        turn_ttl: formatDuration(c.turn.ttlSeconds),
        iroh_relay_url: c.iroh.relayUrl,
        secret_file: PATHS.turnSecret,
      },
      { ...tpl, mode: '0644' },
    ),
    await templateFile(
      '/etc/systemd/system/chatmail-metadata.service',
      'chatmail-metadata.service',
      {
        node: '/usr/bin/node',
        program: PATHS.metadataProgram,
        config: PATHS.metadataConfig,
        user: 'chatmail-metadata',
        group: 'vmail',
      },
      tpl,
    ),
    // dovecot
    await templateFile(
      '/etc/dovecot/dovecot.conf',
      'dovecot/dovecot.conf',
      { ...vars, imap_port: c.imap.port, metadata_socket: PATHS.metadataSocket },
      tpl,
    ),
    // postfix
    await templateFile(
      '/etc/postfix/main.cf',
      'postfix/main.cf',
      {
        ...vars,
        max_message_size: c.mail.maxMessageSize,
        // postfix refuses a numeric myhostname: an IP-only server keeps the system's host name.
        hostname_lines: isIP(c.domain)
          ? "# myhostname: the system's host name (an IP-only server; postfix refuses a numeric one)"
          : templateLines(`myhostname = ${c.domain}`, `mydomain = ${c.domain}`),
        virtual_domain: isIP(c.domain) ? `[${c.domain}]` : c.domain,
      },
      tpl,
    ),
    await templateFile('/etc/postfix/master.cf', 'postfix/master.cf', { managed_by: MANAGED_BY }, tpl),
    await templateFile('/etc/postfix/login_map', 'postfix/login_map', { managed_by: MANAGED_BY }, tpl),
    // coturn
    await templateFile(
      '/etc/turnserver.conf',
      'coturn/turnserver.conf',
      {
        ...vars,
        turn_port: c.turn.port,
        turn_tls_port: c.turn.tlsPort,
        turn_secret: c.turn.secret,
        external_ip_line: c.turn.externalIp ? `external-ip=${c.turn.externalIp}` : '# external-ip: not behind NAT',
        own_address_lines: c.turn.externalIp
          ? templateLines(...c.turn.externalIp.split('/').map((ip) => `denied-peer-ip=${ip}`))
          : '# own public address: denied as a peer only when turn.external_ip names it',
      },
      { ...tpl, owner: 'root', group: 'turnserver', mode: '0640', secret: true },
    ),
    // iroh-relay
    binary(PATHS.irohRelay, irohRelayVariants(inputs.irohRelay)),
    await templateFile(
      '/etc/iroh-relay.toml',
      'iroh-relay/iroh-relay.toml',
      { managed_by: MANAGED_BY, iroh_bind: relayPublic ? `[::]:${c.iroh.port}` : `127.0.0.1:${c.iroh.port}` },
      tpl,
    ),
    await templateFile(
      '/etc/systemd/system/iroh-relay.service',
      'iroh-relay/iroh-relay.service',
      { managed_by: MANAGED_BY },
      tpl,
    ),
    // nginx
    await templateFile(
      '/etc/nginx/conf.d/chatmail.conf',
      'nginx/chatmail.conf',
      { ...vars, iroh_port: c.iroh.port, acme_webroot: PATHS.acmeWebroot },
      tpl,
    ),
    await templateFile('/var/www/chatmail/index.html', 'nginx/index.html', { domain: c.domain }, tpl),
  )
  const tlsInputs = c.tls.mode === 'manual' ? [] : ['command:tls-self-signed']
  resources.push(
    service('chatmail-metadata.service', {
      restartOn: [`file:${PATHS.metadataProgram}`, 'file:/etc/systemd/system/chatmail-metadata.service'],
      reloadOn: [`file:${PATHS.metadataConfig}`, `file:${PATHS.turnSecret}`],
      validate: [`/usr/bin/node ${PATHS.metadataProgram} --check ${PATHS.metadataConfig}`],
    }),
    service('dovecot.service', {
      restartOn: ['file:/etc/dovecot/dovecot.conf', ...tlsInputs],
      reloadOn: ['file:/etc/dovecot/users'],
      validate: ['doveconf -n >/dev/null'],
    }),
    service('postfix.service', {
      restartOn: ['file:/etc/postfix/main.cf', 'file:/etc/postfix/master.cf', ...tlsInputs],
      reloadOn: ['file:/etc/postfix/login_map'],
      validate: ['postfix check'],
    }),
    service('coturn.service', { restartOn: ['file:/etc/turnserver.conf', ...tlsInputs] }),
    service('iroh-relay.service', {
      restartOn: [
        `binary:${PATHS.irohRelay}`,
        'file:/etc/iroh-relay.toml',
        'file:/etc/systemd/system/iroh-relay.service',
      ],
    }),
    service('nginx.service', {
      restartOn: ['file:/etc/nginx/conf.d/chatmail.conf', ...tlsInputs],
      validate: ['nginx -t -q'],
    }),
  )
  const tcp = (port: number, owners: string[]) => ({ port, proto: 'tcp' as const, owners })
  return {
    resources,
    ports: [
      tcp(25, ['master', 'smtpd']),
      tcp(465, ['master', 'smtpd']),
      tcp(587, ['master', 'smtpd']),
      tcp(143, ['dovecot', 'imap-login']),
      tcp(c.imap.port, ['dovecot', 'imap-login']),
      tcp(80, ['nginx']),
      tcp(443, ['nginx']),
      tcp(c.turn.port, ['turnserver']),
      { port: c.turn.port, proto: 'udp', owners: ['turnserver'] },
      tcp(c.turn.tlsPort, ['turnserver']),
      tcp(c.iroh.port, ['iroh-relay', 'node']),
    ],
  }
}

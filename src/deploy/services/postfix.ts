/** postfix: SMTP on 25, submission on 465 and 587 (SASL through dovecot), delivery over LMTP. */
import { isIP } from 'node:net'
import type { Config } from '../../config/schema.js'
import { DKIM, dkimEnabled } from '../../server/federation.js'
import { ACCOUNTS, FILTER, QUOTA_STATUS_SOCKET } from '../../server/paths.js'
import { type TemplateLines, templateLines } from '../../server/template.js'
import { deliveryLines, loginMapLines, ownSenderLines } from '../mail-routing.js'
import { pkg, service } from '../resources.js'
import { portClaims, type ServiceModule } from '../service.js'
import { baseVars, doctorAddress, MANAGED_BY, render } from './common.js'
import { certificateChanges } from './tls.js'

/**
 * opendkim as a milter (services/opendkim.ts): every smtpd and postfix's own mail (bounces) go
 * through it. Postfix names every daemon ORIGINATING, which opendkim signs, except the smtpd on
 * port 25 (master.cf: VERIFYING), whose mail it verifies. Without opendkim, mail waits (tempfail).
 */
export function milterLines(c: Pick<Config, 'domain'>): string | TemplateLines {
  const dkim = dkimEnabled(c)
  return templateLines(
    dkim
      ? '# DKIM: opendkim signs what our users send and what postfix makes (bounces), verifies port 25.'
      : '# No DKIM: an IP-only server has no DNS to publish a key in.',
    `smtpd_milters = ${FILTER.postfixSocket}${dkim ? `, ${DKIM.postfixSocket}` : ''}`,
    ...(dkim ? [`non_smtpd_milters = ${DKIM.postfixSocket}`] : []),
    'milter_default_action = tempfail',
    ...(dkim ? ['milter_macro_daemon_name = ORIGINATING'] : []),
    'milter_protocol = 6',
    'milter_connect_timeout = 10s',
    'milter_command_timeout = 30s',
    'milter_content_timeout = 300s',
  )
}

export const postfix: ServiceModule = {
  name: 'postfix',
  async build(ctx) {
    const c = ctx.config
    const main = await render(ctx, '/etc/postfix/main.cf', 'postfix/main.cf', {
      ...baseVars(c),
      max_message_size: c.mail.maxMessageSize,
      quota_policy: `check_policy_service unix:${QUOTA_STATUS_SOCKET.replace('/var/spool/postfix/', '')}`,
      // postfix refuses a numeric myhostname: an IP-only server keeps the system's host name.
      hostname_lines: isIP(c.domain)
        ? "# myhostname: the system's host name (an IP-only server; postfix refuses a numeric one)"
        : templateLines(`myhostname = ${c.domain}`, `mydomain = ${c.domain}`),
      delivery_lines: templateLines(...deliveryLines(c.domain, doctorAddress(c), ACCOUNTS.socketmapSocket).split('\n')),
      milter_lines: milterLines(c),
    })
    const master = await render(ctx, '/etc/postfix/master.cf', 'postfix/master.cf', { managed_by: MANAGED_BY })
    const loginMap = await render(ctx, '/etc/postfix/login_map', 'postfix/login_map', {
      managed_by: MANAGED_BY,
      login_map_lines: loginMapLines(c.domain),
    })
    const ownSenders = await render(ctx, '/etc/postfix/own_senders', 'postfix/own_senders', {
      managed_by: MANAGED_BY,
      own_sender_lines: ownSenderLines(c.domain),
    })
    const headerCleanup = await render(ctx, '/etc/postfix/lmtp_header_cleanup', 'postfix/lmtp_header_cleanup', {
      managed_by: MANAGED_BY,
    })
    return {
      packages: [
        pkg('postfix', [
          `postfix postfix/mailname string ${c.domain}`,
          "postfix postfix/main_mailer_type select 'Internet Site'",
        ]),
        pkg('postfix-pcre'),
      ],
      files: [main, master, loginMap, ownSenders, headerCleanup],
      units: [
        service('postfix.service', {
          restartOn: [main, master, ...certificateChanges(c)],
          reloadOn: [loginMap, ownSenders, headerCleanup],
          validate: ['postfix check'],
        }),
      ],
      ports: portClaims(c, 'postfix'),
    }
  },
}

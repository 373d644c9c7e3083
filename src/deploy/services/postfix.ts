/** postfix: SMTP on 25, submission on 465 and 587 (SASL through dovecot), delivery over LMTP. */
import { isIP } from 'node:net'
import { ACCOUNTS } from '../../signup/remote.js'
import { deliveryLines, loginMapLines, ownSenderLines } from '../mail-routing.js'
import { pkg, service } from '../resources.js'
import { type ServiceModule, tcp } from '../service.js'
import { templateLines } from '../template.js'
import { baseVars, doctorAddress, MANAGED_BY, render } from './common.js'
import { QUOTA_STATUS_SOCKET } from './dovecot.js'
import { certificateChanges } from './tls.js'

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
    const owners = ['master', 'smtpd']
    return {
      packages: [
        pkg('postfix', [
          `postfix postfix/mailname string ${c.domain}`,
          "postfix postfix/main_mailer_type select 'Internet Site'",
        ]),
        pkg('postfix-pcre'),
      ],
      files: [main, master, loginMap, ownSenders],
      units: [
        service('postfix.service', {
          restartOn: [main, master, ...certificateChanges(c)],
          reloadOn: [loginMap, ownSenders],
          validate: ['postfix check'],
        }),
      ],
      ports: [tcp(25, owners), tcp(465, owners), tcp(587, owners)],
    }
  },
}

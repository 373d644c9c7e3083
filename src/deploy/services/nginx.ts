/**
 * nginx: HTTPS for the iroh relay (/relay), the sign-up endpoint /new (chatmail-accounts), the
 * autoconfig XML, the ACME webroot and the sign-up page (its QR code rendered here, at deploy time).
 */

import { signupPage } from '../../signup/page.js'
import { ACCOUNTS } from '../../signup/remote.js'
import { directory, file, pkg, service } from '../resources.js'
import { type ServiceModule, tcp } from '../service.js'
import { baseVars, PATHS, render } from './common.js'
import { certificateChanges } from './tls.js'

export const nginx: ServiceModule = {
  name: 'nginx',
  async build(ctx) {
    const c = ctx.config
    const conf = await render(ctx, '/etc/nginx/conf.d/chatmail.conf', 'nginx/chatmail.conf', {
      ...baseVars(c),
      iroh_port: c.iroh.port,
      acme_webroot: PATHS.acmeWebroot,
      accounts_http_socket: ACCOUNTS.httpSocket,
    })
    const index = file('/var/www/chatmail/index.html', await signupPage(c, ctx.templatesDir), { mode: '0644' })
    const script = await render(ctx, '/var/www/chatmail/signup.js', 'nginx/signup.js', {}, { mode: '0644' })
    const autoconfig = await render(
      ctx,
      '/var/www/chatmail/.well-known/autoconfig/mail/config-v1.1.xml',
      'nginx/autoconfig.xml',
      { managed_by: 'Managed by `chatmail deploy host`.', domain: c.domain, host: c.domain, imap_port: c.imap.port },
      { mode: '0644' },
    )
    return {
      packages: [pkg('nginx')],
      directories: [
        directory('/var/www/chatmail'),
        directory('/var/www/chatmail/.well-known'),
        directory('/var/www/chatmail/.well-known/autoconfig'),
        directory('/var/www/chatmail/.well-known/autoconfig/mail'),
        directory('/var/lib/chatmail'),
        directory(PATHS.acmeWebroot),
      ],
      files: [conf, index, script, autoconfig],
      units: [service('nginx.service', { restartOn: [conf, ...certificateChanges(c)], validate: ['nginx -t -q'] })],
      ports: [tcp(80, ['nginx']), tcp(443, ['nginx'])],
    }
  },
}

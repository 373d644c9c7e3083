/**
 * nginx: HTTPS for the iroh relay (/relay), the sign-up endpoint /new (chatmail-accounts), the
 * autoconfig XML, the ACME webroot, the sign-up page (its QR code rendered here, at deploy time)
 * and the MTA-STS policy on mta-sts.DOMAIN.
 */

import type { Config } from '../../config/schema.js'
import { certificateNamesFor, mtaStsEnabled, mtaStsHost, mtaStsPolicy } from '../../server/federation.js'
import { ACCOUNTS, PATHS } from '../../server/paths.js'
import { type TemplateLines, templateLines } from '../../server/template.js'
import { dcaccountLink, needsDclogin } from '../../signup/links.js'
import { signupPage } from '../../signup/page.js'
import { type DirectoryResource, directory, type FileResource, file, pkg, service } from '../resources.js'
import { portClaims, type ServiceModule, type StackContext } from '../service.js'
import { baseVars, render } from './common.js'

const MTA_STS_ROOT = '/var/www/mta-sts'

/** The MTA-STS policy and the server block for mta-sts.DOMAIN that serves it (none when disabled). */
async function mtaSts(
  ctx: StackContext,
): Promise<{ directories: DirectoryResource[]; files: FileResource[]; restartOn: FileResource[] }> {
  const c = ctx.config
  if (!mtaStsEnabled(c)) return { directories: [], files: [], restartOn: [] }
  const conf = await render(ctx, '/etc/nginx/conf.d/mta-sts.conf', 'nginx/mta-sts.conf', {
    ...baseVars(c),
    mta_sts_host: mtaStsHost(c.domain),
    mta_sts_root: MTA_STS_ROOT,
  })
  const policy = await render(
    ctx,
    `${MTA_STS_ROOT}/.well-known/mta-sts.txt`,
    'nginx/mta-sts.txt',
    { policy: templateLines(...mtaStsPolicy(c.domain).trimEnd().split('\n')) },
    { mode: '0644' },
  )
  return {
    directories: [directory(MTA_STS_ROOT), directory(`${MTA_STS_ROOT}/.well-known`)],
    files: [conf, policy],
    restartOn: [conf],
  }
}

import { certificateChanges } from './tls.js'

/**
 * A browser's GET of the sign-up URL, as chatmail relays answer it where Delta Chat's own sign-up
 * works: a redirect to `dcaccount:https://DOMAIN/new` (the invite token kept), which opens the
 * app, which POSTs. Elsewhere (self-signed, IP-only) the GET gets chatmail-accounts' 405.
 */
function browserSignup(c: Config): TemplateLines | string {
  if (needsDclogin(c)) return ''
  return templateLines(
    '        if ($request_method = GET) {',
    `            return 301 ${dcaccountLink(c.domain)}$is_args$args;`,
    '        }',
  )
}

export const nginx: ServiceModule = {
  name: 'nginx',
  async build(ctx) {
    const c = ctx.config
    const sts = await mtaSts(ctx)
    const conf = await render(ctx, '/etc/nginx/conf.d/chatmail.conf', 'nginx/chatmail.conf', {
      ...baseVars(c),
      // Port 80 answers ACME challenges for every name of the certificate.
      http_names: certificateNamesFor(c).join(' '),
      iroh_port: c.iroh.port,
      acme_webroot: PATHS.acmeWebroot,
      accounts_http_socket: ACCOUNTS.httpSocket,
      browser_signup: browserSignup(c),
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
        directory(PATHS.stateDir),
        directory(PATHS.acmeWebroot),
        ...sts.directories,
      ],
      files: [conf, index, script, autoconfig, ...sts.files],
      units: [
        service('nginx.service', {
          restartOn: [conf, ...sts.restartOn, ...certificateChanges(c)],
          validate: ['nginx -t -q'],
        }),
      ],
      ports: portClaims(c, 'nginx'),
    }
  },
}

/** nginx: HTTPS for the iroh relay (/relay), the ACME webroot and a small index page. */
import { directory, pkg, service } from '../resources.js'
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
    })
    const index = await render(ctx, '/var/www/chatmail/index.html', 'nginx/index.html', { domain: c.domain })
    return {
      packages: [pkg('nginx')],
      directories: [directory('/var/www/chatmail'), directory('/var/lib/chatmail'), directory(PATHS.acmeWebroot)],
      files: [conf, index],
      units: [service('nginx.service', { restartOn: [conf, ...certificateChanges(c)], validate: ['nginx -t -q'] })],
      ports: [tcp(80, ['nginx']), tcp(443, ['nginx'])],
    }
  },
}

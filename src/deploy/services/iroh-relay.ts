/** iroh-relay v0.35 (the release Delta Chat's iroh speaks), pinned by sha256, behind nginx. */
import { PATHS } from '../../server/paths.js'
import { binary, service, user } from '../resources.js'
import { portClaims, type ServiceModule } from '../service.js'
import { irohRelayVariants, MANAGED_BY, render } from './common.js'

export const irohRelay: ServiceModule = {
  name: 'iroh-relay',
  async build(ctx) {
    const c = ctx.config
    const relayPublic = c.iroh.relayUrl.startsWith('http://')
    const bin = binary(PATHS.irohRelay, irohRelayVariants(ctx.irohRelay))
    const conf = await render(ctx, '/etc/iroh-relay.toml', 'iroh-relay/iroh-relay.toml', {
      managed_by: MANAGED_BY,
      iroh_bind: relayPublic ? `[::]:${c.iroh.port}` : `127.0.0.1:${c.iroh.port}`,
    })
    const unit = await render(ctx, '/etc/systemd/system/iroh-relay.service', 'iroh-relay/iroh-relay.service', {
      managed_by: MANAGED_BY,
    })
    return {
      users: [user('iroh-relay')],
      files: [bin, conf, unit],
      units: [
        service('iroh-relay.service', {
          restartOn: [bin, conf, unit],
          // iroh-relay has no check mode either: at least its binary must run on this host.
          validate: [`${PATHS.irohRelay} --help >/dev/null`],
        }),
      ],
      ports: portClaims(c, 'iroh-relay'),
    }
  },
}

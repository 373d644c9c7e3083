/** coturn: TURN over UDP and TCP, and over TLS, with the REST-API shared secret. */

import { templateLines } from '../../server/template.js'
import { pkg, service } from '../resources.js'
import { portClaims, type ServiceModule } from '../service.js'
import { baseVars, render } from './common.js'
import { certificateChanges } from './tls.js'

export const coturn: ServiceModule = {
  name: 'coturn',
  async build(ctx) {
    const c = ctx.config
    const conf = await render(
      ctx,
      '/etc/turnserver.conf',
      'coturn/turnserver.conf',
      {
        ...baseVars(c),
        turn_port: c.turn.port,
        turn_tls_port: c.turn.tlsPort,
        turn_secret: c.turn.secret,
        external_ip_line: c.turn.externalIp ? `external-ip=${c.turn.externalIp}` : '# external-ip: not behind NAT',
        own_address_lines: c.turn.externalIp
          ? templateLines(...c.turn.externalIp.split('/').map((ip) => `denied-peer-ip=${ip}`))
          : '# own public address: denied as a peer only when turn.external_ip names it',
      },
      { owner: 'root', group: 'turnserver', mode: '0640', secret: true },
    )
    return {
      packages: [pkg('coturn')],
      files: [conf],
      units: [
        service('coturn.service', {
          restartOn: [conf, ...certificateChanges(c)],
          // coturn has no check mode: turnserver_conf_ok (templates/shell/apply-lib.sh) parses it strictly.
          validate: ['turnserver_conf_ok /etc/turnserver.conf'],
        }),
      ],
      ports: portClaims(c, 'coturn'),
    }
  },
}

/**
 * coturn: TURN over UDP and TCP, and over TLS, with the REST-API shared secret; relay to relay
 * allowed (this host's own addresses as peers), with a firewall table that lets relayed datagrams
 * reach this host only on the relay ports.
 */
import { isIP } from 'node:net'
import { type TemplateLines, type TemplateVars, templateLines } from '../../server/template.js'
import { directory, pkg, service } from '../resources.js'
import { portClaims, type ServiceModule } from '../service.js'
import { baseVars, MANAGED_BY, render } from './common.js'
import { certificateChanges } from './tls.js'

/** coturn's relay ports (min-port..max-port): the only ports of this host a relayed datagram may reach. */
export const COTURN_RELAY_PORTS = { min: 49152, max: 65535 } as const
/** The nftables table of templates/coturn/relay-firewall.nft, loaded before coturn starts. */
export const COTURN_FIREWALL = '/etc/chatmail/coturn-relay.nft'
export const COTURN_FIREWALL_TABLE = 'chatmail_coturn'
/** coturn.service's drop-in that loads the firewall table (templates/coturn/coturn.service.conf). */
export const COTURN_DROPIN = '/etc/systemd/system/coturn.service.d/chatmail.conf'
/** The user Debian's coturn.service runs turnserver as: its sockets are the relay's. */
export const COTURN_USER = 'turnserver'

/**
 * The addresses coturn hands out as relayed addresses, which it must allow as peers (some lie in
 * the denied ranges: 10/8 on the test hosts, the private side of a 1:1 NAT): the host's own
 * addresses (coturn relays on every one of them), and both sides of turn.external_ip.
 */
export function ownAddresses(externalIp: string | undefined, hostAddresses: readonly string[] = []): string[] {
  const sides = externalIp ? externalIp.split('/') : []
  return [...new Set([...sides, ...hostAddresses])].filter((a) => isIP(a) !== 0)
}

/** turnserver.conf lines: each own address allowed as a peer (allowed-peer-ip wins over denied-peer-ip). */
export function ownPeerLines(addresses: readonly string[]): TemplateLines | string {
  if (addresses.length === 0) return '# no own address known: relay to relay needs allowed-peer-ip lines here'
  return templateLines(...addresses.map((a) => `allowed-peer-ip=${a}`))
}

/** The values of templates/coturn/relay-firewall.nft. `publicAddresses`: turn.external_ip's public side. */
export function firewallVars(o: {
  table: string
  user: string
  relayMin: number
  relayMax: number
  publicAddresses: readonly string[]
}): TemplateVars {
  const ports = `${o.relayMin}-${o.relayMax}`
  const rule = (a: string) =>
    `        meta skuid ${o.user} udp sport ${ports} ${isIP(a) === 6 ? 'ip6' : 'ip'} daddr ${a} udp dport != ${ports} counter drop`
  return {
    managed_by: MANAGED_BY,
    table: o.table,
    user: o.user,
    relay_ports: ports,
    public_address_rules:
      o.publicAddresses.length > 0
        ? templateLines(...o.publicAddresses.map(rule))
        : '        # no turn.external_ip: no public address besides the host addresses',
  }
}

export const coturn: ServiceModule = {
  name: 'coturn',
  async build(ctx) {
    const c = ctx.config
    const publicSide = c.turn.externalIp?.split('/')[0]
    const conf = await render(
      ctx,
      '/etc/turnserver.conf',
      'coturn/turnserver.conf',
      {
        ...baseVars(c),
        turn_port: c.turn.port,
        turn_tls_port: c.turn.tlsPort,
        turn_secret: c.turn.secret,
        relay_min_port: COTURN_RELAY_PORTS.min,
        relay_max_port: COTURN_RELAY_PORTS.max,
        firewall_file: COTURN_FIREWALL,
        external_ip_line: c.turn.externalIp ? `external-ip=${c.turn.externalIp}` : '# external-ip: not behind NAT',
        own_address_lines: ownPeerLines(ownAddresses(c.turn.externalIp, ctx.host.addresses)),
      },
      { owner: 'root', group: 'turnserver', mode: '0640', secret: true },
    )
    const firewall = await render(
      ctx,
      COTURN_FIREWALL,
      'coturn/relay-firewall.nft',
      firewallVars({
        table: COTURN_FIREWALL_TABLE,
        user: COTURN_USER,
        relayMin: COTURN_RELAY_PORTS.min,
        relayMax: COTURN_RELAY_PORTS.max,
        publicAddresses: publicSide ? [publicSide] : [],
      }),
    )
    const dropin = await render(ctx, COTURN_DROPIN, 'coturn/coturn.service.conf', {
      managed_by: MANAGED_BY,
      firewall_file: COTURN_FIREWALL,
    })
    return {
      packages: [pkg('coturn'), pkg('nftables')],
      directories: [directory('/etc/chatmail')],
      files: [conf, firewall, dropin],
      units: [
        service('coturn.service', {
          restartOn: [conf, firewall, dropin, ...certificateChanges(c)],
          // coturn has no check mode: turnserver_conf_ok (templates/shell/apply-lib.sh) parses it strictly.
          validate: ['turnserver_conf_ok /etc/turnserver.conf', `nft -c -f ${COTURN_FIREWALL}`],
        }),
      ],
      ports: portClaims(c, 'coturn'),
    }
  },
}

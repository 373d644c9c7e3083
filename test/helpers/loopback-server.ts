/**
 * A whole chatmail server on loopback, for the doctor: coturn (with TLS), the iroh-relay stand-in,
 * chatmail-metadata minting credentials for them, and dovecot serving METADATA from it.
 */
import { type Coturn, startCoturn } from './coturn.js'
import { type Dovecot, type MetadataService, startDovecot, startMetadataService } from './dovecot.js'
import { type StandInRelay, startStandInRelay } from './relay.js'

export interface LoopbackServer {
  coturn: Coturn
  relay: StandInRelay
  metadata: MetadataService
  dovecot: Dovecot
  /** dovecot's certificate and coturn's: one --ca for IMAP and TURN over TLS. */
  caPem: string
  stop(): Promise<void>
}

export async function startLoopbackServer(o: {
  secret: string
  domain?: string
  /** The name on dovecot's certificate (it also carries IP:127.0.0.1, the address used). */
  imapCertName?: string
}): Promise<LoopbackServer> {
  // coturn's certificate is for 127.0.0.1 (IP SAN): the TURN host the metadata hands out.
  const [coturn, relay] = await Promise.all([
    startCoturn({ secret: o.secret, certName: '127.0.0.1' }),
    startStandInRelay({ pingMs: 0 }),
  ])
  const metadata = await startMetadataService({
    secret: o.secret,
    ...(o.domain ? { domain: o.domain } : {}),
    turnHost: '127.0.0.1',
    turnPort: coturn.port,
    turnsPort: coturn.tlsPort,
    irohRelayUrl: relay.url,
    ttl: '1d',
  })
  const dovecot = await startDovecot({
    metadata: { kind: 'proxy', socket: metadata.socket },
    cert: { name: o.imapCertName ?? 'localhost', altNames: ['IP:127.0.0.1'] },
    // A chatmail server's IMAP (imap.xchatmail); no postfix or nginx here, so no mail group.
    extraConfig: 'imap_capability = +XCHATMAIL',
  })
  return {
    coturn,
    relay,
    metadata,
    dovecot,
    caPem: `${dovecot.certPem}\n${coturn.caPem}`,
    stop: async () => {
      await Promise.allSettled([dovecot.stop(), coturn.stop(), relay.stop()])
      await metadata.stop()
    },
  }
}

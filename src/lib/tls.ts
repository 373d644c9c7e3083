import { createSecureContext, rootCertificates, type SecureContext, type TLSSocket } from 'node:tls'

const contexts = new Map<string, SecureContext>()

/**
 * A TLS context that trusts the public roots plus `extraCa` (PEM), built once per CA: building
 * one parses every root certificate (about 30 ms), which every connection with `ca:` would repeat.
 */
export function contextTrusting(extraCa: string): SecureContext {
  let context = contexts.get(extraCa)
  if (!context) {
    context = createSecureContext({ ca: [...rootCertificates, extraCa] })
    contexts.set(extraCa, context)
  }
  return context
}

/** What a TLS client learnt about the server's certificate. */
export interface PeerTls {
  /** Whether the chain and host name verified (also when the connection did not insist on it). */
  authorized: boolean
  /** Why it did not verify, when it did not. */
  error?: string
  protocol?: string
  /** The certificate's common name. */
  subject?: string
  validTo?: string
}

export function describePeerTls(socket: TLSSocket): PeerTls {
  const raw = socket.authorizationError as unknown
  const error = raw === null || raw === undefined ? undefined : raw instanceof Error ? raw.message : String(raw)
  const cert = socket.getPeerCertificate()
  const cn = cert?.subject?.CN
  const protocol = socket.getProtocol()
  return {
    authorized: socket.authorized,
    ...(error ? { error } : {}),
    ...(protocol ? { protocol } : {}),
    ...(cn ? { subject: Array.isArray(cn) ? cn.join(', ') : cn } : {}),
    ...(cert?.valid_to ? { validTo: cert.valid_to } : {}),
  }
}

import { createSecureContext, rootCertificates, type SecureContext } from 'node:tls'

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

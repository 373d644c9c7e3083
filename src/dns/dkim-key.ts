/**
 * Where the deployed server keeps its DKIM key, and how `chatmail dns` reads the public half over
 * SSH. The DKIM service module (deploy) owns the key; this is the small interface between them:
 * the selector and the private key's path on the host. The private key never leaves the host: the
 * command derives the public key there and prints only that.
 */
import { DKIM } from '../server/federation.js'
import { shellQuote } from '../ssh/quote.js'
import type { DkimPublicKey } from './zone.js'

/** A shell command (run as root on the host) printing the public key as base64 DER, or nothing (exit 1) without a key. */
export function dkimPublicKeyCommand(path: string = DKIM.privateKey): string {
  const p = shellQuote(path)
  return `test -s ${p} || exit 1; openssl pkey -in ${p} -pubout -outform DER | base64 -w0`
}

/** The command's output as a key; undefined when it is not base64 of a plausible DER key. */
export function parseDkimPublicKey(stdout: string, selector: string = DKIM.selector): DkimPublicKey | undefined {
  const b64 = stdout.trim()
  if (!/^[A-Za-z0-9+/]{40,}={0,2}$/.test(b64)) return undefined
  const der = Buffer.from(b64, 'base64')
  // SubjectPublicKeyInfo: a SEQUENCE; Ed25519's is 44 bytes (OID 1.3.101.112), RSA's far longer.
  if (der[0] !== 0x30) return undefined
  const ed25519 = der.length === 44 && der.subarray(4, 9).equals(Buffer.from([0x06, 0x03, 0x2b, 0x65, 0x70]))
  return ed25519
    ? { selector, publicKey: der.subarray(12).toString('base64'), keyType: 'ed25519' }
    : { selector, publicKey: b64, keyType: 'rsa' }
}

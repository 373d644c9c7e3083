/**
 * Messages shaped like what Delta Chat sends, built here for tests and the benchmark: PGP/MIME
 * (RFC 3156) whose armored part holds real OpenPGP packet framing (a PKESK and an SEIPD packet)
 * around random bytes — structurally what the filter checks, without a key. Plaintext and
 * Secure-Join request messages too.
 */
import { randomBytes } from 'node:crypto'

function newLength(n: number): Buffer {
  if (n < 192) return Buffer.from([n])
  if (n < 8384) return Buffer.from([((n - 192) >> 8) + 192, (n - 192) & 0xff])
  const b = Buffer.alloc(5)
  b[0] = 255
  b.writeUInt32BE(n, 1)
  return b
}

/** One new-format packet; with `partial`, the body in chunks of 2^partial bytes (partial lengths). */
export function packet(tag: number, body: Buffer, partial?: number): Buffer {
  const head = Buffer.from([0xc0 | tag])
  if (partial === undefined) return Buffer.concat([head, newLength(body.length), body])
  const parts: Buffer[] = [head]
  const size = 2 ** partial
  let i = 0
  while (body.length - i > size) {
    parts.push(Buffer.from([224 + partial]), body.subarray(i, i + size))
    i += size
  }
  parts.push(newLength(body.length - i), body.subarray(i))
  return Buffer.concat(parts)
}

/** Base64 in lines of `width` characters. */
export function armor(data: Buffer, width = 76, headers: string[] = [], eol = '\r\n'): string {
  const b64 = data.toString('base64')
  const lines: string[] = []
  for (let i = 0; i < b64.length; i += width) lines.push(b64.slice(i, i + width))
  return ['-----BEGIN PGP MESSAGE-----', ...headers, '', ...lines, '-----END PGP MESSAGE-----', ''].join(eol)
}

export interface PgpMimeOptions {
  from: string
  to: string
  /** Approximate size of the encrypted data in bytes (default 2000). */
  size?: number
  /** SEIPD in partial-length chunks of 2^partial bytes. */
  partial?: number
  /** The packets (default: PKESK + SEIPD). */
  packets?: Buffer
  width?: number
  armorHeaders?: string[]
  eol?: string
  /** Subject (default `[...]`, what Delta Chat puts there). */
  subject?: string
}

export function pgpMimeMessage(o: PgpMimeOptions): Buffer {
  const eol = o.eol ?? '\r\n'
  const packets =
    o.packets ?? Buffer.concat([packet(1, randomBytes(94)), packet(18, randomBytes(o.size ?? 2000), o.partial)])
  const boundary = `b${randomBytes(8).toString('hex')}`
  const text = [
    `From: <${o.from}>`,
    `To: <${o.to}>`,
    `Subject: ${o.subject ?? '[...]'}`,
    `Message-ID: <${randomBytes(8).toString('hex')}@test>`,
    'MIME-Version: 1.0',
    `Content-Type: multipart/encrypted; protocol="application/pgp-encrypted";${eol} boundary="${boundary}"`,
    '',
    `--${boundary}`,
    'Content-Type: application/pgp-encrypted; charset="utf-8"',
    'Content-Description: PGP/MIME version identification',
    'Content-Transfer-Encoding: 7bit',
    '',
    'Version: 1',
    '',
    `--${boundary}`,
    'Content-Type: application/octet-stream; name="encrypted.asc"; charset="utf-8"',
    'Content-Description: OpenPGP encrypted message',
    'Content-Disposition: inline; filename="encrypted.asc";',
    'Content-Transfer-Encoding: 7bit',
    '',
    armor(packets, o.width ?? 76, o.armorHeaders ?? [], eol),
    `--${boundary}--`,
    '',
  ].join(eol)
  return Buffer.from(text, 'latin1')
}

export function plainMessage(from: string, to: string, body = 'hello in the clear'): Buffer {
  return Buffer.from(
    `From: <${from}>\r\nTo: <${to}>\r\nSubject: plain\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n${body}\r\n`,
  )
}

/**
 * Looks at the certificate an IMAP server presents: implicit TLS (993), or STARTTLS after the
 * greeting (143). The handshake never rejects the certificate, so the doctor can say what is
 * wrong with it; validation against the trusted CAs and the host name is reported instead.
 */

import { isIP, Socket } from 'node:net'
import {
  checkServerIdentity,
  type PeerCertificate,
  type SecureContext,
  type TLSSocket,
  connect as tlsConnect,
} from 'node:tls'
import { READ_LIMITS, ReadLimitError } from '../lib/read-limits.js'
import { contextTrusting } from '../lib/tls.js'
import { DEFAULT_PORTS } from '../protocols/ports.js'

export interface CertificateReport {
  /** Names the certificate is for (subjectAltName DNS/IP entries, else the CN). */
  names: string[]
  validFrom: Date
  validTo: Date
  /** The chain verifies against the trusted CAs (system roots plus --ca). */
  chainTrusted: boolean
  /** OpenSSL's reason when the chain does not verify, e.g. CERT_HAS_EXPIRED. */
  chainError?: string
  /** Set when the certificate does not name the host. */
  nameError?: string
  protocol: string
}

export interface ProbeOptions {
  starttls: boolean
  ca?: string | undefined
  signal: AbortSignal
}

export const STARTTLS_PORT = DEFAULT_PORTS.imapStarttls

export const usesStarttls = (o: { imapPort: number; imapStarttls?: boolean | undefined }): boolean =>
  o.imapStarttls ?? o.imapPort === STARTTLS_PORT

/** TLS options that also trust `extra` (PEM), with a context built once per CA (see lib/tls.ts). */
export function trustingOptions(extra?: string): { secureContext?: SecureContext } {
  return extra ? { secureContext: contextTrusting(extra) } : {}
}

function certificateNames(cert: PeerCertificate): string[] {
  const alt = (cert.subjectaltname ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.startsWith('DNS:') || s.startsWith('IP Address:'))
    .map((s) => s.replace(/^(DNS|IP Address):/, ''))
  const cn = cert.subject?.CN
  return alt.length > 0 ? alt : cn ? [String(cn)] : []
}

export function describeCertificate(socket: TLSSocket, host: string): CertificateReport {
  const cert = socket.getPeerCertificate()
  const nameError = checkServerIdentity(host, cert)
  // Node reports a name mismatch as a chain error too; it is reported as nameError instead.
  const reason = socket.authorizationError ? String(socket.authorizationError) : undefined
  const chainError = reason === 'ERR_TLS_CERT_ALTNAME_INVALID' ? undefined : reason
  return {
    names: certificateNames(cert),
    validFrom: new Date(cert.valid_from),
    validTo: new Date(cert.valid_to),
    chainTrusted: chainError === undefined,
    ...(chainError ? { chainError } : {}),
    ...(nameError ? { nameError: nameError.message } : {}),
    protocol: socket.getProtocol() ?? 'TLS',
  }
}

/** Waits for the TLS handshake (which does not reject the certificate) and describes the certificate. */
export async function handshakeReport(socket: TLSSocket, host: string): Promise<CertificateReport> {
  await new Promise<void>((resolve, reject) => {
    socket.once('secureConnect', resolve)
    socket.on('error', reject)
    socket.once('close', () => reject(new Error('the connection closed during the TLS handshake')))
  })
  return describeCertificate(socket, host)
}

/**
 * Reads lines until one matches `done`; rejects on `bad`, close or abort, and on a server that
 * sends a line longer than READ_LIMITS.line or more than READ_LIMITS.preamble in all before it.
 */
function expectLine(socket: Socket, done: RegExp, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let partial = ''
    let total = 0
    const cleanup = () => {
      socket.off('data', onData)
      socket.off('close', onClose)
    }
    const stop = (err: Error) => {
      cleanup()
      socket.destroy()
      reject(err)
    }
    const onData = (chunk: Buffer) => {
      total += chunk.length
      // Only the unfinished line is kept; complete lines are looked at once and dropped.
      const lines = (partial + chunk.toString('latin1')).split('\r\n')
      partial = lines.pop() ?? ''
      for (const line of lines) {
        if (done.test(line)) {
          cleanup()
          resolve()
          return
        }
        if (/^(\* BYE|a (NO|BAD))/i.test(line)) {
          cleanup()
          reject(new Error(`${what}: the server said "${line.slice(0, 120)}"`))
          return
        }
        if (line.length > READ_LIMITS.line) return stop(new ReadLimitError(`${what}: one line`, READ_LIMITS.line))
      }
      if (partial.length > READ_LIMITS.line) return stop(new ReadLimitError(`${what}: one line`, READ_LIMITS.line))
      if (total > READ_LIMITS.preamble) return stop(new ReadLimitError(what, READ_LIMITS.preamble))
    }
    const onClose = () => {
      cleanup()
      reject(new Error(`${what}: the server closed the connection`))
    }
    socket.on('data', onData)
    socket.on('close', onClose)
  })
}

async function startTlsSocket(host: string, port: number, sockets: Socket[]): Promise<Socket> {
  const socket = new Socket()
  sockets.push(socket)
  const connected = new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve)
    socket.on('error', reject)
  })
  const greeting = expectLine(socket, /^\* (OK|PREAUTH)/i, 'IMAP greeting')
  greeting.catch(() => undefined) // awaited below, after the connection is up
  socket.connect(port, host)
  await connected
  await greeting
  const answer = expectLine(socket, /^a OK/i, 'STARTTLS')
  socket.write('a STARTTLS\r\n')
  await answer
  return socket
}

/** Connects, completes the TLS handshake without rejecting the certificate, and describes it. */
export async function probeImapTls(host: string, port: number, opts: ProbeOptions): Promise<CertificateReport> {
  const sockets: Socket[] = []
  // Outermost first: destroying the plain socket under a live TLS socket can crash Node.
  const abort = () => {
    for (const s of [...sockets].reverse()) s.destroy()
  }
  opts.signal.addEventListener('abort', abort, { once: true })
  try {
    const plain = opts.starttls ? await startTlsSocket(host, port, sockets) : undefined
    const socket = tlsConnect({
      host,
      port,
      ...(plain ? { socket: plain } : {}),
      ...(isIP(host) ? {} : { servername: host }),
      rejectUnauthorized: false,
      ...trustingOptions(opts.ca),
    })
    sockets.push(socket)
    return await handshakeReport(socket, host)
  } finally {
    opts.signal.removeEventListener('abort', abort)
    abort()
  }
}

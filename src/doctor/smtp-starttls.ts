/**
 * The certificate behind SMTP STARTTLS (submission, port 587): greeting, EHLO, STARTTLS, then a
 * TLS handshake that never rejects the certificate, so the doctor can say what is wrong with it.
 * Reads at most MAX_REPLY_BYTES of plain-text SMTP; never sends credentials.
 */
import { isIP, Socket } from 'node:net'
import { connect as tlsConnect } from 'node:tls'
import { type CertificateReport, handshakeReport, trustingOptions } from './tls-probe.js'

/** Greeting and EHLO answers are a few hundred bytes; more than this is not an SMTP server. */
export const MAX_REPLY_BYTES = 16 * 1024
const EHLO_NAME = 'chatmail-doctor.invalid'

export class SmtpError extends Error {}

/** One complete SMTP reply (all its lines, the last one "NNN text"). */
function reply(socket: Socket, what: string): Promise<{ code: number; lines: string[] }> {
  return new Promise((resolve, reject) => {
    let buffer = ''
    const lines: string[] = []
    const cleanup = () => {
      socket.off('data', onData)
      socket.off('close', onClose)
      socket.off('error', onError)
    }
    let total = 0
    const onData = (chunk: Buffer) => {
      buffer += chunk.toString('latin1')
      total += chunk.length
      // The whole reply counts, not only the unfinished line: "250-" lines can go on without end.
      if (total > MAX_REPLY_BYTES) {
        cleanup()
        reject(new SmtpError(`${what}: more than ${MAX_REPLY_BYTES} bytes without a complete SMTP reply`))
        return
      }
      const parts = buffer.split('\r\n')
      buffer = parts.pop() ?? ''
      for (const line of parts) {
        const m = /^(\d{3})([ -])/.exec(line)
        if (!m) {
          cleanup()
          reject(new SmtpError(`${what}: not an SMTP reply: "${line.slice(0, 80)}"`))
          return
        }
        lines.push(line.slice(4))
        if (m[2] === ' ') {
          cleanup()
          resolve({ code: Number(m[1]), lines })
          return
        }
      }
    }
    const onClose = () => {
      cleanup()
      reject(new SmtpError(`${what}: the server closed the connection`))
    }
    const onError = (err: Error) => {
      cleanup()
      reject(err)
    }
    socket.on('data', onData)
    socket.once('close', onClose)
    socket.once('error', onError)
  })
}

async function expectCode(socket: Socket, code: number, what: string) {
  const r = await reply(socket, what)
  if (r.code !== code) throw new SmtpError(`${what}: the server said ${r.code} ${r.lines.at(-1) ?? ''}`.trim())
  return r
}

/** Connects to host:port, upgrades with STARTTLS and describes the certificate. */
export async function probeSmtpStarttls(
  host: string,
  port: number,
  o: { ca?: string | undefined; signal: AbortSignal },
): Promise<CertificateReport> {
  const plain = new Socket()
  let secure: ReturnType<typeof tlsConnect> | undefined
  // Outermost first: destroying the plain socket under a live TLS socket can crash Node.
  const abort = () => {
    secure?.destroy()
    plain.destroy()
  }
  o.signal.addEventListener('abort', abort, { once: true })
  try {
    const greeting = expectCode(plain, 220, 'SMTP greeting')
    greeting.catch(() => undefined) // awaited below
    plain.connect(port, host)
    await greeting
    plain.write(`EHLO ${EHLO_NAME}\r\n`)
    const ehlo = await expectCode(plain, 250, 'EHLO')
    if (!ehlo.lines.some((l) => /^STARTTLS\b/i.test(l))) {
      throw new SmtpError('the server does not offer STARTTLS after EHLO')
    }
    plain.write('STARTTLS\r\n')
    await expectCode(plain, 220, 'STARTTLS')
    const socket = tlsConnect({
      socket: plain,
      ...(isIP(host) ? {} : { servername: host }),
      rejectUnauthorized: false,
      ...trustingOptions(o.ca),
    })
    secure = socket
    return await handshakeReport(socket, host)
  } finally {
    o.signal.removeEventListener('abort', abort)
    abort()
  }
}

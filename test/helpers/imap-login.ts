/**
 * A bare IMAP LOGIN over plain TCP (test dovecots allow it on loopback), or over implicit TLS
 * (`tls`, the certificate not checked): the tagged reply line.
 */
import { connect } from 'node:net'
import { connect as tlsConnect } from 'node:tls'

function quote(s: string): string {
  return `"${s.replace(/["\\]/g, (c) => `\\${c}`)}"`
}

export function imapLogin(
  port: number,
  user: string,
  password: string,
  host = '127.0.0.1',
  tls = false,
): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls ? tlsConnect({ port, host, rejectUnauthorized: false }) : connect(port, host)
    let buf = ''
    let sent = false
    s.setTimeout(15_000, () => {
      s.destroy()
      reject(new Error(`IMAP: no answer; got ${JSON.stringify(buf)}`))
    })
    s.on('error', reject)
    s.on('data', (d) => {
      buf += d.toString()
      if (!sent && buf.includes('\r\n')) {
        sent = true
        buf = ''
        s.write(`a LOGIN ${quote(user)} ${quote(password)}\r\n`)
        return
      }
      const m = /^a (OK|NO|BAD).*$/m.exec(buf)
      if (m) {
        s.end('b LOGOUT\r\n')
        resolve(m[0].trim())
      }
    })
  })
}

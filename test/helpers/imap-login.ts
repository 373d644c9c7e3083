/**
 * A bare IMAP LOGIN over plain TCP (test dovecots allow it on loopback), or over implicit TLS
 * (`tls`, the certificate not checked): the tagged reply line.
 */
import { connect } from 'node:net'
import { connect as tlsConnect } from 'node:tls'
import { ImapFlow } from 'imapflow'

function quote(s: string): string {
  return `"${s.replace(/["\\]/g, (c) => `\\${c}`)}"`
}

/** An IMAP LOGIN whose session stays open: the tagged reply, and `logout()` to end the session. */
export function imapSession(
  port: number,
  user: string,
  password: string,
  host = '127.0.0.1',
  tls = false,
): Promise<{ reply: string; logout(): void }> {
  return new Promise((resolve, reject) => {
    const s = tls ? tlsConnect({ port, host, rejectUnauthorized: false }) : connect(port, host)
    let buf = ''
    let sent = false
    let done = false
    s.setTimeout(15_000, () => {
      if (done) return
      s.destroy()
      reject(new Error(`IMAP: no answer; got ${JSON.stringify(buf)}`))
    })
    s.on('error', (err) => {
      if (!done) reject(err)
    })
    s.on('data', (d) => {
      if (done) return
      buf += d.toString()
      if (!sent && buf.includes('\r\n')) {
        sent = true
        buf = ''
        s.write(`a LOGIN ${quote(user)} ${quote(password)}\r\n`)
        return
      }
      const m = /^a (OK|NO|BAD).*$/m.exec(buf)
      if (m) {
        done = true
        s.setTimeout(0)
        resolve({ reply: m[0].trim(), logout: () => s.end('b LOGOUT\r\n') })
      }
    })
  })
}

export async function imapLogin(
  port: number,
  user: string,
  password: string,
  host = '127.0.0.1',
  tls = false,
): Promise<string> {
  const session = await imapSession(port, user, password, host, tls)
  session.logout()
  return session.reply
}

/** An imapflow client logged in on 993 (implicit TLS, the certificate not checked). */
export async function imapsClient(host: string, user: string, pass: string): Promise<ImapFlow> {
  const c = new ImapFlow({
    host,
    port: 993,
    secure: true,
    auth: { user, pass },
    tls: { rejectUnauthorized: false },
    logger: false,
  })
  await c.connect()
  return c
}

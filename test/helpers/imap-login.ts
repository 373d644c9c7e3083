/**
 * A bare IMAP LOGIN over plain TCP (test dovecots allow it on loopback), or over implicit TLS
 * (`tls`, the certificate not checked): the tagged reply line.
 */
import { connect } from 'node:net'
import { type SecureContext, connect as tlsConnect } from 'node:tls'
import { ImapFlow } from 'imapflow'

function quote(s: string): string {
  return `"${s.replace(/["\\]/g, (c) => `\\${c}`)}"`
}

/**
 * An IMAP LOGIN whose session stays open: the tagged reply, and `logout()` to end the session.
 * With `idle`, a successful login goes on as Delta Chat's does: SELECT INBOX, then IDLE; it
 * resolves once the server accepted the IDLE (`logout()` ends it first).
 */
export function imapSession(
  port: number,
  user: string,
  password: string,
  host = '127.0.0.1',
  /**
   * Over TLS; with a SecureContext, on that one, as a device makes its context once and reuses it
   * for every connection (node would make a new one for each connection, at a cost no device pays).
   */
  tls: boolean | SecureContext = false,
  idle = false,
  /** The client's own address (127.x.y.z; plain connections): dovecot's auth penalty for failed logins is per client address. */
  localAddress?: string,
): Promise<{ reply: string; logout(): void }> {
  return new Promise((resolve, reject) => {
    const s = tls
      ? tlsConnect({ port, host, rejectUnauthorized: false, ...(tls === true ? {} : { secureContext: tls }) })
      : connect({ port, host, localAddress })
    let buf = ''
    let step: 'greeting' | 'login' | 'select' | 'idle' | 'done' = 'greeting'
    let reply = ''
    const finish = () => {
      step = 'done'
      s.setTimeout(0)
      resolve({
        reply,
        logout: () => s.end(idle && reply.startsWith('a OK') ? 'DONE\r\nb LOGOUT\r\n' : 'b LOGOUT\r\n'),
      })
    }
    s.setTimeout(15_000, () => {
      if (step === 'done') return
      s.destroy()
      reject(new Error(`IMAP: no answer; got ${JSON.stringify(buf)}`))
    })
    s.on('error', (err) => {
      if (step !== 'done') reject(err)
    })
    s.on('data', (d) => {
      if (step === 'done') return
      buf += d.toString()
      if (step === 'greeting' && buf.includes('\r\n')) {
        step = 'login'
        buf = ''
        s.write(`a LOGIN ${quote(user)} ${quote(password)}\r\n`)
        return
      }
      if (step === 'login') {
        const m = /^a (OK|NO|BAD).*$/m.exec(buf)
        if (!m) return
        reply = m[0].trim()
        if (!idle || m[1] !== 'OK') return finish()
        step = 'select'
        buf = ''
        s.write('s SELECT INBOX\r\n')
      } else if (step === 'select') {
        const m = /^s (OK|NO|BAD).*$/m.exec(buf)
        if (!m) return
        if (m[1] !== 'OK') {
          reply = `SELECT: ${m[0].trim()}`
          return finish()
        }
        step = 'idle'
        buf = ''
        s.write('i IDLE\r\n')
      } else if (step === 'idle' && /^\+ /m.test(buf)) finish()
    })
  })
}

export async function imapLogin(
  port: number,
  user: string,
  password: string,
  host = '127.0.0.1',
  tls = false,
  localAddress?: string,
): Promise<string> {
  const session = await imapSession(port, user, password, host, tls, false, localAddress)
  session.logout()
  return session.reply
}

/** An imapflow client logged in over implicit TLS (993 unless given), the certificate not checked. */
export async function imapsClient(host: string, user: string, pass: string, port = 993): Promise<ImapFlow> {
  const c = new ImapFlow({
    host,
    port,
    secure: true,
    auth: { user, pass },
    tls: { rejectUnauthorized: false },
    logger: false,
  })
  await c.connect()
  return c
}

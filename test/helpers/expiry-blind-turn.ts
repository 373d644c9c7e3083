/**
 * TEST DOUBLE: a TURN server that accepts EXPIRED credentials — the one behaviour coturn cannot be
 * made to show (older Madmail TURN servers had it). It is the smallest honest stand-in for that:
 * UDP on 127.0.0.1, TURN REST authentication like coturn's use-auth-secret (401 with REALM and
 * NONCE, then MESSAGE-INTEGRITY with password = base64 HMAC-SHA1(secret, username), so a forged
 * password is refused), but it never looks at the timestamp in the username. It answers Allocate
 * with a relayed address it does not really relay to, and Refresh; nothing else.
 */
import { createSocket } from 'node:dgram'
import { once } from 'node:events'
import {
  Attr,
  attr,
  decodeMessage,
  encodeMessage,
  getString,
  longTermKey,
  Method,
  messageType,
  type StunAttribute,
  type StunMessage,
  splitMessageType,
  verifyMessageIntegrity,
} from '../../src/protocols/stun.js'
import { turnPassword } from '../../src/protocols/turn-rest.js'

export interface ExpiryBlindTurn {
  host: string
  port: number
  /** Allocations it granted (with a correct HMAC, whatever the expiry). */
  granted(): number
  stop(): Promise<void>
}

const HOST = '127.0.0.1'
const REALM = 'expiry-blind.test'
const NONCE = 'expiry-blind-nonce'

export async function startExpiryBlindTurn(secret: string): Promise<ExpiryBlindTurn> {
  const socket = createSocket('udp4')
  let granted = 0
  const answer = (req: StunMessage, cls: 'success' | 'error', attributes: StunAttribute[], key?: Buffer) =>
    encodeMessage(
      { type: messageType(splitMessageType(req.type).method, cls), transactionId: req.transactionId, attributes },
      { ...(key ? { integrityKey: key } : {}), fingerprint: true },
    )
  socket.on('message', (bytes, from) => {
    let req: StunMessage
    try {
      req = decodeMessage(bytes)
    } catch {
      return
    }
    const { method, cls } = splitMessageType(req.type)
    if (cls !== 'request' || (method !== Method.Allocate && method !== Method.Refresh)) return
    const username = getString(req, Attr.USERNAME)
    const challenge = () => answer(req, 'error', [attr.errorCode(401), attr.realm(REALM), attr.nonce(NONCE)])
    let reply: Buffer
    if (username === undefined) reply = challenge()
    else {
      // The whole point: the key comes from the HMAC alone; the expiry in the username is ignored.
      const key = longTermKey(username, REALM, turnPassword(secret, username))
      if (verifyMessageIntegrity(req, key) !== true) reply = challenge()
      else if (method === Method.Refresh) reply = answer(req, 'success', [attr.lifetime(0)], key)
      else {
        granted++
        reply = answer(
          req,
          'success',
          [
            attr.xorAddress(Attr.XOR_RELAYED_ADDRESS, { address: HOST, port: 49_152 }, req.transactionId),
            attr.xorAddress(Attr.XOR_MAPPED_ADDRESS, { address: from.address, port: from.port }, req.transactionId),
            attr.lifetime(600),
          ],
          key,
        )
      }
    }
    socket.send(reply, from.port, from.address)
  })
  socket.bind(0, HOST)
  await once(socket, 'listening')
  return {
    host: HOST,
    port: socket.address().port,
    granted: () => granted,
    stop: () => new Promise((resolve) => socket.close(() => resolve())),
  }
}

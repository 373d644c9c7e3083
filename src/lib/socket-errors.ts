/**
 * The one classifier of socket errors (connect, DNS, reset, TLS). Each client words its own
 * message from the class; the doctor maps classes to hints.
 */

export type SocketFailure = 'refused' | 'reset' | 'unresolved' | 'unreachable' | 'timeout'

const BY_CODE: Readonly<Record<string, SocketFailure>> = {
  ECONNREFUSED: 'refused',
  ECONNRESET: 'reset',
  EPIPE: 'reset',
  ENOTFOUND: 'unresolved',
  EAI_AGAIN: 'unresolved',
  EAI_NODATA: 'unresolved',
  EHOSTUNREACH: 'unreachable',
  ENETUNREACH: 'unreachable',
  EADDRNOTAVAIL: 'unreachable',
  EAFNOSUPPORT: 'unreachable',
  ETIMEDOUT: 'timeout',
}

const CERT_CODE = /CERT|UNABLE_TO|SELF_SIGNED|HOSTNAME|ALTNAME/
const CERT_TEXT = /certificate|self.signed|altnames|CERT_/i
const TLS_CODE = /^ERR_TLS|^ERR_SSL/
const TLS_TEXT = /ssl|tls|handshake/i

export interface SocketErrorClass {
  /** Node's error code (from the message when a wrapper dropped it), '' when there is none. */
  code: string
  message: string
  /** The class of a connection failure, when the code names one. */
  failure: SocketFailure | undefined
  /** The peer's certificate was the problem (untrusted, expired, wrong name). */
  certificate: boolean
  /** A TLS failure of any kind (the certificate's included). */
  tls: boolean
}

export function classifySocketError(err: unknown): SocketErrorClass {
  const e = err as NodeJS.ErrnoException | undefined
  const message = e instanceof Error ? e.message : String(err)
  // Some libraries wrap the error and keep the code only in its message ("connect ECONNREFUSED …").
  const inMessage = /\b(E[A-Z_]{3,})\b/.exec(message)?.[1] ?? ''
  const code = typeof e?.code === 'string' && e.code ? e.code : inMessage
  const certificate = CERT_CODE.test(code) || CERT_TEXT.test(message)
  return {
    code,
    message,
    failure: BY_CODE[code] ?? BY_CODE[inMessage],
    certificate,
    tls: certificate || TLS_CODE.test(code) || TLS_TEXT.test(message),
  }
}

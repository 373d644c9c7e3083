/**
 * The doctor's one IMAP session per run: opened and logged in by imap.login, reused by the
 * capability and metadata checks, closed at the end of the run or as soon as a check using it
 * is aborted. The slot holding it belongs to the run (CheckContext.state), never to the module.
 */
import { isIP } from 'node:net'
import { ImapFlow } from 'imapflow'
import { READ_LIMITS } from '../lib/read-limits.js'
import type { DoctorOptions } from './doctor-options.js'
import { getMetadata, type MetadataValues } from './imap-metadata.js'
import { trustingOptions, usesStarttls } from './tls-probe.js'

export interface ImapSession {
  client: ImapFlow
  /** The certificate did not verify (only with --insecure), and the password went over it anyway. */
  unverifiedTls: boolean
  /** One GETMETADATA "" for every key any check asks for, shared by all callers. */
  metadata(keys: readonly string[], signal: AbortSignal): Promise<MetadataValues>
}

export function imapClientOptions(options: DoctorOptions, user: string, pass: string) {
  const implicitTls = !usesStarttls(options)
  return {
    host: options.imapHost,
    port: options.imapPort,
    secure: implicitTls,
    ...(implicitTls ? {} : { doSTARTTLS: true }),
    auth: { user, pass },
    tls: {
      rejectUnauthorized: !options.insecure,
      ...(isIP(options.imapHost) ? {} : { servername: options.imapHost }),
      ...trustingOptions(options.ca),
    },
    logger: false as const,
    connectionTimeout: options.timeoutMs,
    greetingTimeout: options.timeoutMs,
    socketTimeout: options.timeoutMs * 2,
    disableAutoIdle: true,
    disableCompression: true,
    // imapflow reads lines and literals up to 1 GiB; the doctor's answers are small.
    maxLineLength: READ_LIMITS.imapLine,
    maxLiteralSize: READ_LIMITS.imapLiteral,
    maxResponseSize: READ_LIMITS.imapResponse,
  }
}

/** Runs `work`, closing the client if `signal` aborts first: a stalled session is useless. */
async function closingOnAbort<T>(client: ImapFlow, signal: AbortSignal, work: () => Promise<T>): Promise<T> {
  const close = () => client.close()
  if (signal.aborted) close()
  signal.addEventListener('abort', close, { once: true })
  try {
    return await work()
  } finally {
    signal.removeEventListener('abort', close)
  }
}

/** The run's IMAP session: empty until imap.login opens it. */
export class ImapSessionSlot {
  #session: ImapSession | undefined

  /** The logged-in session, when imap.login opened one. */
  get current(): ImapSession | undefined {
    return this.#session
  }

  async open(
    options: DoctorOptions,
    auth: { user: string; password: string },
    signal: AbortSignal,
  ): Promise<ImapSession> {
    const client = new ImapFlow(imapClientOptions(options, auth.user, auth.password))
    // Failures surface through the pending command, except why imapflow gave up on an oversized
    // answer: the command then only says "Connection not available", so that reason is kept.
    let overLimit: unknown
    client.on('error', (err: unknown) => {
      if (oversizedAnswer(err)) overLimit = err
    })
    await closingOnAbort(client, signal, () => client.connect())
    let pending: Promise<MetadataValues> | undefined
    const tls = (client as unknown as { socket?: { authorized?: boolean } }).socket
    this.#session = {
      client,
      unverifiedTls: tls?.authorized === false,
      metadata: (keys, sig) => {
        pending ??= closingOnAbort(client, sig, () => getMetadata(client, '', keys)).catch((err: unknown) => {
          throw overLimit ?? err
        })
        return pending
      },
    }
    return this.#session
  }

  /** Ends the session, if any: a polite LOGOUT, cut short when the server does not answer. */
  async close(timeoutMs = 1000): Promise<void> {
    const session = this.#session
    this.#session = undefined
    if (!session?.client.usable) {
      session?.client.close()
      return
    }
    const timer = setTimeout(() => session.client.close(), timeoutMs)
    try {
      await session.client.logout()
    } catch {
      session.client.close()
    } finally {
      clearTimeout(timer)
    }
  }
}

/** imapflow's codes for an answer over its limits (set from READ_LIMITS above). */
const OVER_LIMIT: readonly string[] = ['LineTooLarge', 'LiteralTooLarge', 'ResponseTooLarge', 'TooManyTokens']

/** What to say when imapflow stopped reading an oversized answer; undefined for other errors. */
export function oversizedAnswer(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | undefined)?.code
  if (typeof code !== 'string' || !OVER_LIMIT.includes(code)) return undefined
  return `the server sent more than any chatmail server does (${(err as Error).message}); the doctor stopped reading`
}

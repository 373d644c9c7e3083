/**
 * The doctor's one IMAP session per run: opened and logged in by imap.login, reused by the
 * capability and metadata checks, closed at the end of the run or as soon as a check using it
 * is aborted. The slot holding it belongs to the run (CheckContext.state), never to the module.
 */
import { isIP } from 'node:net'
import { ImapFlow } from 'imapflow'
import { getMetadata, type MetadataValues } from './imap-metadata.js'
import type { DoctorOptions } from './model.js'
import { trustingOptions, usesStarttls } from './tls-probe.js'

export interface ImapSession {
  client: ImapFlow
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
    client.on('error', () => undefined) // failures surface through the pending command instead
    await closingOnAbort(client, signal, () => client.connect())
    let pending: Promise<MetadataValues> | undefined
    this.#session = {
      client,
      metadata: (keys, sig) => {
        pending ??= closingOnAbort(client, sig, () => getMetadata(client, '', keys))
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

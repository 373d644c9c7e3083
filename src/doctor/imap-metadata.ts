/**
 * GETMETADATA (RFC 5464) over an ImapFlow connection. imapflow has no METADATA API; its runtime
 * `exec` (not in the shipped .d.ts) sends any command and hands untagged answers to a callback.
 * This file is the one place that casts it.
 */
import type { ImapFlow } from 'imapflow'

/** A token of imapflow's parsed response tree. NIL arrives as null. */
export type ImapToken = { type: string; value: unknown } | null | ImapToken[]

interface ExecResult {
  /** Releases imapflow's parser; the connection stalls until it is called. */
  next(): void
}

interface Executor {
  exec(
    command: string,
    attributes: ImapToken[],
    options?: { untagged?: Record<string, (u: { attributes: ImapToken[] }) => Promise<void>> },
  ): Promise<ExecResult>
}

export type MetadataValues = Record<string, string | null>

/** A value as it arrives: a quoted STRING, a LITERAL (Buffer), or NIL. */
export function decodeMetadataValue(token: ImapToken | undefined): string | null {
  if (token === null || token === undefined || Array.isArray(token)) return null
  const { value } = token
  if (Buffer.isBuffer(value)) return value.toString('utf8')
  if (value instanceof Uint8Array) return Buffer.from(value).toString('utf8')
  return value === null || value === undefined ? null : String(value)
}

/** One untagged `* METADATA mailbox (key value key value …)` into key → value. */
export function parseMetadataResponse(attributes: ImapToken[], into: MetadataValues = {}): MetadataValues {
  const list = attributes[1]
  if (!Array.isArray(list)) return into
  for (let i = 0; i + 1 < list.length; i += 2) {
    const key = decodeMetadataValue(list[i])
    if (key !== null) into[key] = decodeMetadataValue(list[i + 1])
  }
  return into
}

/**
 * One `GETMETADATA mailbox (key …)` for all keys. Keys the server does not answer are null, as
 * are NIL answers. A tagged NO/BAD rejects (imapflow sets `responseText` on the error).
 */
export async function getMetadata(client: ImapFlow, mailbox: string, keys: readonly string[]): Promise<MetadataValues> {
  const values: MetadataValues = Object.fromEntries(keys.map((k) => [k, null]))
  const executor = client as unknown as Executor
  const result = await executor.exec(
    'GETMETADATA',
    [{ type: 'STRING', value: mailbox }, keys.map((k) => ({ type: 'ATOM', value: k }))],
    {
      untagged: {
        METADATA: async (u) => {
          parseMetadataResponse(u.attributes, values)
        },
      },
    },
  )
  result.next()
  return values
}

/**
 * Asks for an SSH key's passphrase on the terminal, never echoing it. Without a terminal on
 * stdin there is nobody to ask: the caller then reports the key as locked with a hint.
 */
import type { AskPassphrase } from './identities.js'
import { tildePath } from './identities.js'

export interface PromptStreams {
  input: NodeJS.ReadStream
  output: NodeJS.WriteStream
}

/** Reads one line in raw mode (no echo); Ctrl-C or Ctrl-D give up (undefined). */
export function readHidden(prompt: string, { input, output }: PromptStreams): Promise<string | undefined> {
  return new Promise((resolve) => {
    // Echo off before the prompt appears: whatever is typed in answer is never shown.
    const wasRaw = input.isRaw
    input.setRawMode(true)
    output.write(prompt)
    input.resume()
    let text = ''
    const done = (value: string | undefined) => {
      input.off('data', onData)
      input.setRawMode(wasRaw)
      input.pause()
      output.write('\n')
      resolve(value)
    }
    const onData = (chunk: Buffer) => {
      for (const ch of chunk.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return done(text)
        if (ch === '\u0003' || ch === '\u0004') return done(undefined)
        if (ch === '\u007f' || ch === '\b') text = text.slice(0, -1)
        else if (ch === '\u0015') text = ''
        else if (ch >= ' ') text += ch
      }
    }
    input.on('data', onData)
  })
}

/** A passphrase prompt on this process's terminal, or undefined when stdin is not one. */
export function terminalPassphrase(
  streams: PromptStreams = { input: process.stdin, output: process.stderr },
): AskPassphrase | undefined {
  if (!streams.input.isTTY || typeof streams.input.setRawMode !== 'function') return undefined
  return (file, attempt) =>
    readHidden(
      `${attempt > 1 ? 'wrong passphrase, try again. ' : ''}Enter passphrase for SSH key ${tildePath(file)}: `,
      streams,
    )
}

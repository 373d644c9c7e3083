/** Colours only on a TTY, never with NO_COLOR (https://no-color.org) or TERM=dumb. */
export function colourOn(stream: NodeJS.WriteStream): boolean {
  return Boolean(stream.isTTY) && !process.env.NO_COLOR && process.env.TERM !== 'dumb'
}

/** Progress and notes go to stderr; stdout carries only data. */
export function note(message: string): void {
  process.stderr.write(`${message}\n`)
}

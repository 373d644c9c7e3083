/**
 * The log of the programs on the host: one line per event on stderr (journald adds time and unit);
 * control characters (a newline in a client's input would forge a line) become a space. Never pass
 * a secret or a password here.
 */
export type Logger = (level: 'info' | 'warn' | 'error' | 'debug', message: string) => void

export function stderrLogger(): Logger {
  return (level, message) => {
    process.stderr.write(`${level}: ${message.replace(/[\0-\x1f\x7f]+/g, ' ')}\n`)
  }
}

/** One line per event on stderr (journald adds time and unit). Never pass a secret or a password here. */
export type Logger = (level: 'info' | 'warn' | 'error' | 'debug', message: string) => void

export function stderrLogger(): Logger {
  return (level, message) => {
    process.stderr.write(`${level}: ${message.replace(/[\r\n]+/g, ' ')}\n`)
  }
}

/** Runs the BUILT CLI (bin/run.js → dist/) as users do, collecting its exit code and output. */
import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'

export const BIN = fileURLToPath(new URL('../../bin/run.js', import.meta.url))

export interface CliRun {
  code: number
  stdout: string
  stderr: string
}

export interface CliOptions {
  cwd: string
  env?: Record<string, string>
  timeoutMs?: number
  /** A command to run the CLI under, e.g. ['unshare', '--mount', …]; node and bin/run.js follow it. */
  wrap?: string[]
}

export function runCli(args: string[], o: CliOptions): Promise<CliRun> {
  const [cmd, ...pre] = o.wrap?.length ? o.wrap : [process.execPath]
  const argv = o.wrap?.length ? [...pre, process.execPath, BIN, ...args] : [BIN, ...args]
  return new Promise((done) => {
    execFile(
      cmd as string,
      argv,
      {
        cwd: o.cwd,
        timeout: o.timeoutMs ?? 120_000,
        maxBuffer: 32 << 20,
        env: { ...process.env, NO_COLOR: '1', ...o.env },
      },
      (err, stdout, stderr) => {
        const code = err ? (err as { code?: unknown }).code : 0
        done({ code: typeof code === 'number' ? code : -1, stdout, stderr })
      },
    )
  })
}

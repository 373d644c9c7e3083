/**
 * Starts the iroh-relay STAND-IN (test/stand-in-relay/iroh-relay-standin.mjs, a test double for the
 * iroh-relay v0.35.0 binary) as a child process on an ephemeral loopback port.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'

export const STANDIN_PATH = fileURLToPath(new URL('../stand-in-relay/iroh-relay-standin.mjs', import.meta.url))

export type StandInFault = '404' | '200' | 'nopong' | 'noforward' | 'v1'

export interface StandInStats {
  connections: number
  registered: number
  packetsForwarded: number
  bytesForwarded: number
  packetsDropped: number
  pings: number
}

export interface StandInRelay {
  /** http://127.0.0.1:PORT */
  url: string
  port: number
  /** Stops the stand-in and returns the counters it printed on exit. */
  stop(): Promise<StandInStats | undefined>
}

export interface StandInOptions {
  fault?: StandInFault
  /** Server Ping interval (the stand-in's default 15 s; 0 = off). */
  pingMs?: number
  verbose?: boolean
}

const STARTUP = /listening on (http:\/\/\S+)/

export function startStandInRelay(o: StandInOptions = {}): Promise<StandInRelay> {
  const child = spawn(process.execPath, [STANDIN_PATH, '--listen', '127.0.0.1:0'], {
    env: {
      ...process.env,
      STANDIN_FAULT: o.fault ?? '',
      STANDIN_PING_MS: String(o.pingMs ?? 15_000),
      STANDIN_VERBOSE: o.verbose ? '1' : '0',
    },
    stdio: ['ignore', 'pipe', o.verbose ? 'inherit' : 'pipe'],
  })
  let out = ''
  let err = ''
  child.stdout?.setEncoding('utf8').on('data', (s: string) => {
    out += s
  })
  child.stderr?.setEncoding('utf8').on('data', (s: string) => {
    err += s
  })
  return new Promise((resolve, reject) => {
    const onExit = (code: number | null) =>
      reject(new Error(`stand-in relay exited (${code}) before start: ${err || out}`))
    child.once('exit', onExit)
    const poll = () => {
      const m = STARTUP.exec(out)
      if (!m) return
      child.stdout?.off('data', poll)
      child.off('exit', onExit)
      const url = m[1]!
      resolve({ url, port: Number(new URL(url).port), stop: () => stop(child, () => out) })
    }
    child.stdout?.on('data', poll)
  })
}

function stop(child: ChildProcess, output: () => string): Promise<StandInStats | undefined> {
  const parse = (): StandInStats | undefined => {
    const m = /stand-in stats (\{.*\})/.exec(output())
    return m ? (JSON.parse(m[1]!) as StandInStats) : undefined
  }
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(parse())
  return new Promise((resolve) => {
    const hard = setTimeout(() => child.kill('SIGKILL'), 5000)
    child.once('exit', () => {
      clearTimeout(hard)
      resolve(parse())
    })
    child.kill('SIGTERM')
  })
}

/** `chatmail probe`: the targets file read, the prober listening. */
import { isIP } from 'node:net'
import { cannotRun, usageError } from '../../lib/errors.js'
import { type Listening, serveProber } from './http.js'
import { Prober, type ProberLimits } from './prober.js'
import { loadTargets } from './targets.js'

export const DEFAULT_LISTEN = '127.0.0.1:9851'

/** `HOST:PORT` or `[V6]:PORT`, the host an IP address (the prober listens where it is told, nowhere else). */
export function parseListen(value: string): { host: string; port: number } {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(value) ?? /^([^:[\]]+):(\d+)$/.exec(value)
  const port = Number(m?.[2])
  if (!m || !isIP(m[1] as string) || !Number.isInteger(port) || port > 65535) {
    throw usageError(`--listen ${value} is not IP:PORT`, `e.g. ${DEFAULT_LISTEN}, or [::1]:9851`)
  }
  return { host: m[1] as string, port }
}

export interface ProberStarted extends Listening {
  targets: string[]
}

export async function startProber(targetsFile: string, listen: string, limits: ProberLimits): Promise<ProberStarted> {
  const { host, port } = parseListen(listen)
  const targets = await loadTargets(targetsFile)
  const prober = new Prober(targets, limits)
  try {
    const listening = await serveProber(prober, host, port)
    return { ...listening, targets: targets.map((t) => t.name) }
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    throw cannotRun(
      `cannot listen on ${listen}: ${code === 'EADDRINUSE' ? 'the port is in use' : (err as Error).message}`,
      'choose another --listen address',
    )
  }
}

/**
 * chatmail-filter: postfix's milter (smtpd_milters) that lets only end-to-end encrypted mail and
 * chatmail's few cleartext exceptions through, at SMTP time, with the reason in the refusal; and
 * limits how fast each logged-in user sends. Runs on the host with Debian's nodejs (18+), node:
 * builtins only.
 *
 *   chatmail-filter CONFIG          serve (SIGHUP re-reads CONFIG, SIGTERM stops)
 *   chatmail-filter --check CONFIG  validate CONFIG and exit (0 valid, 1 not)
 */
import { chmodSync, lstatSync, readFileSync, unlinkSync } from 'node:fs'
import { createServer, type Socket } from 'node:net'
import { type ConfigResult, type FilterConfig, parseConfig } from './config.js'
import { FrameReader, MilterSession } from './milter.js'
import { SendRate } from './rate.js'

const USAGE = 'usage: chatmail-filter [--check] CONFIG'

function log(level: string, msg: string): void {
  process.stderr.write(`${level}: ${msg.replace(/[\0-\x1f\x7f]/g, ' ')}\n`)
}

function loadConfig(path: string): ConfigResult {
  try {
    return parseConfig(readFileSync(path, 'utf8'))
  } catch (err) {
    return { ok: false, errors: [`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`] }
  }
}

function report(path: string, r: ConfigResult): r is Extract<ConfigResult, { ok: true }> {
  if (!r.ok) for (const e of r.errors) log('error', `config ${path}: ${e}`)
  return r.ok
}

function serve(path: string, initial: FilterConfig): void {
  let config = initial
  let rate = new SendRate(config.sendPerMinute, config.sendBurst)
  const counts = { accepted: 0, refused: 0 }
  const connection = (socket: Socket) => {
    const reader = new FrameReader()
    const session = new MilterSession({
      maxMessageSize: config.maxMessageSize,
      onSender(login) {
        const wait = rate.take(login.toLowerCase(), Date.now())
        if (wait === 0) return undefined
        return {
          accept: false,
          code: '450',
          status: '4.7.1',
          reason: `Too much mail from ${login}: at most ${config.sendPerMinute} messages a minute (bursts of ${config.sendBurst}); try again in ${wait} s`,
        }
      },
      onVerdict(env, v, login) {
        if (v.accept) counts.accepted++
        else counts.refused++
        const who = login ? `login=${login}` : `client=${env.clientAddr ?? '?'}`
        if (v.accept) {
          if (config.verbose) log('info', `accept ${env.direction} ${v.kind} from=<${env.mailFrom}> ${who}`)
        } else log('info', `refuse ${env.direction} from=<${env.mailFrom}> ${who}: ${v.code} ${v.reason}`)
      },
    })
    socket.setTimeout(600_000, () => socket.destroy())
    socket.on('error', () => socket.destroy())
    socket.on('data', (chunk: Buffer) => {
      let frames: ReturnType<FrameReader['push']>
      try {
        frames = reader.push(chunk)
      } catch (err) {
        log('warn', `closing a milter connection: ${(err as Error).message}`)
        socket.destroy()
        return
      }
      const out: Buffer[] = []
      for (const f of frames) out.push(...session.handle(f))
      if (out.length > 0) socket.write(out.length === 1 ? (out[0] as Buffer) : Buffer.concat(out))
      if (session.closed) socket.end()
    })
  }
  try {
    if (lstatSync(config.socket).isSocket()) unlinkSync(config.socket)
  } catch {
    // absent
  }
  const server = createServer(connection)
  server.on('error', (err) => {
    log('error', `socket ${config.socket}: ${err.message}`)
    process.exit(1)
  })
  server.listen({ path: config.socket, backlog: 1024 }, () => {
    chmodSync(config.socket, config.socketMode)
    log(
      'info',
      `listening on ${config.socket} (max message ${config.maxMessageSize} bytes, ${config.sendPerMinute}/min burst ${config.sendBurst} per user)`,
    )
  })
  process.on('SIGHUP', () => {
    const r = loadConfig(path)
    if (!report(path, r)) return log('warn', 'config not reloaded')
    config = r.config
    rate = new SendRate(config.sendPerMinute, config.sendBurst)
    log('info', 'config reloaded')
  })
  const stop = () => {
    log('info', `stopping (${counts.accepted} accepted, ${counts.refused} refused)`)
    server.close()
    process.exit(0)
  }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
}

function main(argv: string[]): void {
  const check = argv[0] === '--check'
  const path = check ? argv[1] : argv[0]
  if (!path || argv.length > (check ? 2 : 1)) {
    process.stderr.write(`${USAGE}\n`)
    process.exit(2)
  }
  const r = loadConfig(path)
  if (!report(path, r)) process.exit(1)
  if (check) {
    process.stdout.write(`${path}: ok\n`)
    return
  }
  serve(path, r.config)
}

main(process.argv.slice(2))

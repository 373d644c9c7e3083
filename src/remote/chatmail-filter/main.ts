/**
 * chatmail-filter: postfix's milter (smtpd_milters) that lets only end-to-end encrypted mail and
 * chatmail's few cleartext exceptions through, at SMTP time, with the reason in the refusal; and
 * limits how fast each logged-in user sends. Runs on the host with Debian's nodejs (18+), node:
 * builtins only.
 *
 *   chatmail-filter CONFIG          serve (SIGHUP re-reads CONFIG, SIGTERM stops)
 *   chatmail-filter --check CONFIG  validate CONFIG and exit (0 valid, 1 not)
 */
import { createServer, type Socket } from 'node:net'
import { stderrLogger } from '../lib/log.js'
import { checkOrServeArgs, listenUnix, onSignals, readConfig } from '../lib/service.js'
import { type FilterConfig, parseConfig } from './config.js'
import { FrameReader, MilterSession } from './milter.js'
import { SendRate } from './rate.js'

const USAGE = 'usage: chatmail-filter [--check] CONFIG'

const log = stderrLogger()

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
  const server = createServer(connection)
  listenUnix(server, { path: config.socket, mode: config.socketMode }, { backlog: 1024, log }, () =>
    log(
      'info',
      `listening on ${config.socket} (max message ${config.maxMessageSize} bytes, ${config.sendPerMinute}/min burst ${config.sendBurst} per user)`,
    ),
  )
  const reload = () => {
    const next = readConfig(path, parseConfig, log)
    if (!next) return log('error', 'reload failed: keeping the previous config')
    config = next
    rate = new SendRate(config.sendPerMinute, config.sendBurst)
    log('info', 'config reloaded')
  }
  const stop = (signal: string) => {
    log('info', `${signal}: stopping (${counts.accepted} accepted, ${counts.refused} refused)`)
    server.close()
    process.exit(0)
  }
  onSignals(reload, stop)
}

function main(argv: string[]): void {
  const { check, path } = checkOrServeArgs(argv, USAGE, log)
  const config = readConfig(path, parseConfig, log)
  if (!config) process.exit(1)
  if (check) {
    process.stdout.write(`${path}: ok\n`)
    return
  }
  serve(path, config)
}

main(process.argv.slice(2))

/**
 * chatmail-filter: messages per second and memory, on a chatmail-sized message and on large ones.
 *   npx tsx bench/filter.ts [SECONDS [MESSAGE...]]   (needs `npm run build`: it runs dist/remote/chatmail-filter.js)
 * MESSAGE: 'core message', '100 KB', '10 MB' (default all). FILTER_NODE_ARGS='--cpu-prof
 * --cpu-prof-dir=DIR' passes node options to the two servers (a profile of each).
 * Goal (issue 12): >= 500 messages/s on one core, with flat memory.
 *
 * For each message (a real Delta Chat core message of 3 KB, test/fixtures/mail/core-5-message.eml;
 * PGP/MIME messages of 100 KB and of 10 MB):
 * - the check alone (src/remote/chatmail-filter/mime.ts) in this process, the message held in
 *   memory and fed in 64 KiB chunks as postfix hands over body chunks: what one core does;
 * - the built service over its unix socket, spoken to as postfix does (milter protocol 6: options,
 *   connect, then per message MAIL, RCPT, header fields, end of header, body chunks of 65535 bytes,
 *   end of message, waiting for each answer postfix waits for), by CONNECTIONS clients at once,
 *   each connection carrying MESSAGES_PER_CONNECTION messages: messages/s of wall time, and per
 *   second of the SERVICE's own CPU time (/proc/PID/stat, user + system), and its RSS;
 * - the same conversation against bench/milter-null.ts, a milter that only walks the frames and
 *   answers: the ceiling of a Node milter's socket path on this machine.
 * On the 2-core machine the clients and the service share the cores: the per-service-CPU-second
 * figure is the one-core figure.
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { connect, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CMD, FrameReader, frame } from '../src/remote/chatmail-filter/milter.js'
import { checkMessage, type Envelope } from '../src/remote/chatmail-filter/mime.js'
import { pgpMimeMessage } from '../test/helpers/pgp-mime.js'
import { cpuSeconds } from '../test/helpers/proc.js'

const SECONDS = Number(process.argv[2] ?? 5)
const CONNECTIONS = 4
const MESSAGES_PER_CONNECTION = 10
const TO = 'bob@example.net'
const mb = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MB`
const size = (n: number) => (n >= 1e6 ? mb(n) : `${(n / 1024).toFixed(1)} KB`)

// Stored with LF line ends; postfix hands a milter CRLF.
const core = Buffer.from(
  readFileSync(join(import.meta.dirname, '..', 'test', 'fixtures', 'mail', 'core-5-message.eml'), 'latin1').replace(
    /\r?\n/g,
    '\r\n',
  ),
  'latin1',
)
const coreFrom = /^From:.*?<?([^<>\s]+@[^<>\s]+)>?\s*$/im.exec(core.toString('latin1'))?.[1] as string
const all = [
  { name: 'core message', from: coreFrom, raw: core },
  {
    name: '100 KB',
    from: 'alice@example.org',
    raw: pgpMimeMessage({ from: 'alice@example.org', to: TO, size: 75_000 }),
  },
  {
    name: '10 MB',
    from: 'alice@example.org',
    raw: pgpMimeMessage({ from: 'alice@example.org', to: TO, size: 7_500_000 }),
  },
]

function procStat(pid: number): { cpuS: number; rss: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const rss = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) * 1024
  return { cpuS: cpuSeconds(pid), rss }
}

const only = process.argv.slice(3)
const messages = all.filter((m) => only.length === 0 || only.includes(m.name))

// ---------------------------------------------------------------- the check alone
for (const m of messages) {
  const env: Envelope = { direction: 'outgoing', mailFrom: m.from, rcpts: [TO] }
  const warm = Date.now()
  while (Date.now() - warm < 300) checkMessage(m.raw, env)
  const rss0 = process.memoryUsage().rss
  const t0 = performance.now()
  let n = 0
  while (performance.now() - t0 < SECONDS * 1000) {
    for (let i = 0; i < 10; i++) {
      const v = checkMessage(m.raw, env)
      if (!v.accept) throw new Error(`refused: ${JSON.stringify(v)}`)
    }
    n += 10
  }
  const s = (performance.now() - t0) / 1000
  console.log(
    `check alone, ${m.name} (${size(m.raw.length)}): ${(n / s).toFixed(0)} messages/s (${((n * m.raw.length) / s / 1e9).toFixed(2)} GB/s); RSS ${mb(rss0)} -> ${mb(process.memoryUsage().rss)}`,
  )
}

// ---------------------------------------------------------------- a milter over its socket
const z = (...s: string[]) => Buffer.from(s.map((x) => `${x}\0`).join(''), 'latin1')
const NR = { hdr: 0x80, rcpt: 0x8000, body: 0x80000 }

/** One message's conversation, in the steps after which postfix waits for an answer. */
function conversation(raw: Buffer, from: string, flags: number): Buffer[] {
  const steps: Buffer[] = []
  let step: Buffer[] = []
  const wait = () => {
    steps.push(Buffer.concat(step))
    step = []
  }
  step.push(
    frame(CMD.macro, Buffer.concat([Buffer.from('M'), z('{auth_authen}', from)])),
    frame(CMD.mail, z(`<${from}>`)),
  )
  wait()
  step.push(frame(CMD.rcpt, z(`<${TO}>`)))
  if (!(flags & NR.rcpt)) wait()
  const sep = raw.indexOf('\r\n\r\n')
  for (const field of raw
    .subarray(0, sep)
    .toString('latin1')
    .split(/\r\n(?![ \t])/)) {
    const c = field.indexOf(':')
    step.push(frame(CMD.header, z(field.slice(0, c), field.slice(c + 1).trim())))
    if (!(flags & NR.hdr)) wait()
  }
  step.push(frame(CMD.endOfHeaders))
  wait()
  const body = raw.subarray(sep + 4)
  for (let i = 0; i < body.length; i += 65535) {
    step.push(frame(CMD.body, body.subarray(i, i + 65535)))
    if (!(flags & NR.body)) wait()
  }
  step.push(frame(CMD.endOfBody))
  wait()
  return steps
}

class Client {
  private readonly reader = new FrameReader()
  private waiting: ((f: { cmd: string; data: Buffer }) => void) | undefined
  private queue: { cmd: string; data: Buffer }[] = []
  last = ''
  constructor(readonly sock: Socket) {
    sock.on('data', (d: Buffer) => {
      for (const f of this.reader.push(d)) {
        if (this.waiting) {
          const w = this.waiting
          this.waiting = undefined
          w(f)
        } else this.queue.push(f)
      }
    })
  }
  answer(): Promise<{ cmd: string; data: Buffer }> {
    const f = this.queue.shift()
    if (f) return Promise.resolve(f)
    return new Promise((r) => (this.waiting = r))
  }
  async step(b: Buffer): Promise<string> {
    this.sock.write(b)
    const f = await this.answer()
    this.last = f.data.toString()
    return f.cmd
  }
}

async function openConnection(socket: string): Promise<{ client: Client; flags: number }> {
  const sock = connect(socket)
  await once(sock, 'connect')
  const client = new Client(sock)
  const opt = Buffer.alloc(12)
  opt.writeUInt32BE(6, 0)
  opt.writeUInt32BE(0x1ff, 4)
  opt.writeUInt32BE(0x1fffff, 8) // what postfix 3.7 offers with milter_protocol = 6
  sock.write(frame(CMD.optneg, opt))
  const o = await client.answer()
  const flags = o.data.readUInt32BE(8)
  const connectData = Buffer.concat([z('client.example'), Buffer.from('4'), Buffer.from([0x63, 0xdd]), z('192.0.2.7')])
  if ((await client.step(frame(CMD.connect, connectData))) !== 'c') throw new Error('connect refused')
  return { client, flags }
}

async function measure(label: string, socket: string, pid: number, m: (typeof messages)[number]): Promise<void> {
  let stop = false
  let n = 0
  let maxRss = 0
  const worker = async () => {
    while (!stop) {
      const { client, flags } = await openConnection(socket)
      const steps = conversation(m.raw, m.from, flags)
      for (let k = 0; k < MESSAGES_PER_CONNECTION && !stop; k++) {
        for (let i = 0; i < steps.length; i++) {
          const cmd = await client.step(steps[i] as Buffer)
          const want = i === steps.length - 1 ? 'a' : 'c'
          if (cmd !== want) throw new Error(`${label} answered ${cmd} ${client.last} at step ${i} (expected ${want})`)
        }
        n++
        if (n % 200 === 0) maxRss = Math.max(maxRss, procStat(pid).rss)
      }
      client.sock.write(frame(CMD.quit))
      client.sock.end()
    }
  }
  // Warm up, then measure.
  const warm = Array.from({ length: CONNECTIONS }, worker)
  await new Promise((r) => setTimeout(r, 500))
  stop = true
  await Promise.all(warm)
  stop = false
  n = 0
  const before = procStat(pid)
  maxRss = before.rss
  const t0 = performance.now()
  const running = Array.from({ length: CONNECTIONS }, worker)
  await new Promise((r) => setTimeout(r, SECONDS * 1000))
  stop = true
  await Promise.all(running)
  const s = (performance.now() - t0) / 1000
  const after = procStat(pid)
  const cpu = after.cpuS - before.cpuS
  console.log(
    `${label}, ${m.name} (${size(m.raw.length)}): ${(n / s).toFixed(0)} messages/s wall, ${(n / cpu).toFixed(0)} per service-CPU-second (${n} messages, service CPU ${((cpu / s) * 100).toFixed(0)}%); RSS ${mb(before.rss)} -> ${mb(after.rss)} (max ${mb(Math.max(maxRss, after.rss))})`,
  )
}

async function start(args: string[]): Promise<ReturnType<typeof spawn>> {
  const nodeArgs = (process.env.FILTER_NODE_ARGS ?? '').split(' ').filter(Boolean)
  const child = spawn(process.execPath, [...nodeArgs, ...args], { stdio: ['ignore', 'ignore', 'pipe'] })
  await new Promise<void>((resolve, reject) => {
    child.stderr?.on('data', (d: Buffer) => (d.toString().includes('listening') ? resolve() : undefined))
    child.on('exit', (code) => reject(new Error(`${args.join(' ')} exited ${code}`)))
  })
  return child
}

const dir = mkdtempSync(join(tmpdir(), 'chatmail-filter-bench-'))
const socket = join(dir, 'milter.sock')
writeFileSync(
  join(dir, 'filter.conf'),
  `socket = ${socket}\nmax_message_size = 31457280\nmax_user_send_per_minute = 1000000\nmax_user_send_burst = 1000000\n`,
)
const nullSocket = join(dir, 'null.sock')
const filter = await start(['dist/remote/chatmail-filter.js', join(dir, 'filter.conf')])
const baseline = await start(['--import', 'tsx', join(import.meta.dirname, 'milter-null.ts'), nullSocket])
for (const m of messages) {
  await measure('chatmail-filter', socket, filter.pid as number, m)
  await measure('baseline (reads, discards, answers)', nullSocket, baseline.pid as number, m)
}
filter.kill('SIGTERM')
baseline.kill('SIGTERM')

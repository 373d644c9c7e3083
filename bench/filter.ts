/**
 * chatmail-filter on 10 MB encrypted messages: messages per second and memory.
 *   npx tsx bench/filter.ts [SECONDS]        (needs `npm run build`: it runs dist/remote/chatmail-filter.js)
 * Goal (issue 12): >= 500 messages/s on one core, with flat memory.
 *
 * Two figures:
 * - the check alone (src/remote/chatmail-filter/mime.ts), in this process, on a message held in
 *   memory and fed in 64 KiB chunks (as postfix hands over body chunks): what one core does;
 * - the built service over its unix socket, spoken to as postfix does (milter protocol 6: header
 *   fields, body chunks of 65535 bytes, end of message) by one client here: messages/s of wall time,
 *   and per second of the SERVICE's own CPU time (/proc/PID/stat), and its RSS before and after.
 * On the 2-core machine the client and the service share the cores: the per-service-CPU-second
 * figure is the one-core figure.
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CMD, FrameReader, frame } from '../src/remote/chatmail-filter/milter.js'
import { checkMessage, type Envelope } from '../src/remote/chatmail-filter/mime.js'
import { pgpMimeMessage } from '../test/helpers/pgp-mime.js'

const SECONDS = Number(process.argv[2] ?? 5)
const FROM = 'alice@example.org'
const TO = 'bob@example.net'
const env: Envelope = { direction: 'outgoing', mailFrom: FROM, rcpts: [TO] }
const msg = pgpMimeMessage({ from: FROM, to: TO, size: 7_500_000 }) // 10 MB once armored
const mb = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MB`

function procStat(pid: number): { cpuS: number; rss: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  const tick = 100
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const rss = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) * 1024
  return { cpuS: (Number(f[11]) + Number(f[12])) / tick, rss }
}

// ---------------------------------------------------------------- the check alone
{
  for (let i = 0; i < 20; i++) checkMessage(msg, env) // warm up
  const rss0 = process.memoryUsage().rss
  const t0 = performance.now()
  let n = 0
  while (performance.now() - t0 < SECONDS * 1000) {
    const v = checkMessage(msg, env)
    if (!v.accept) throw new Error(`refused: ${JSON.stringify(v)}`)
    n++
  }
  const s = (performance.now() - t0) / 1000
  console.log(
    `check alone: ${(n / s).toFixed(0)} messages/s of ${mb(msg.length)} (${((n * msg.length) / s / 1e9).toFixed(2)} GB/s), ${n} messages; RSS ${mb(rss0)} -> ${mb(process.memoryUsage().rss)}`,
  )
}

// ---------------------------------------------------------------- the service over its socket
const dir = mkdtempSync(join(tmpdir(), 'chatmail-filter-bench-'))
const socket = join(dir, 'milter.sock')
writeFileSync(
  join(dir, 'filter.conf'),
  `socket = ${socket}\nmax_message_size = 31457280\nmax_user_send_per_minute = 1000000\nmax_user_send_burst = 1000000\n`,
)
const child = spawn(process.execPath, ['dist/remote/chatmail-filter.js', join(dir, 'filter.conf')], {
  stdio: ['ignore', 'ignore', 'pipe'],
})
await new Promise<void>((resolve, reject) => {
  child.stderr.on('data', (d: Buffer) => (d.toString().includes('listening') ? resolve() : undefined))
  child.on('exit', (code) => reject(new Error(`chatmail-filter exited ${code}`)))
})
const z = (...s: string[]) => Buffer.from(s.map((x) => `${x}\0`).join(''), 'latin1')
const opt = Buffer.alloc(12)
opt.writeUInt32BE(6, 0)
opt.writeUInt32BE(0x1ff, 4)
opt.writeUInt32BE(0x1fffff, 8)
const sep = msg.indexOf('\r\n\r\n')
const perMessage: Buffer[] = [
  frame(CMD.macro, Buffer.concat([Buffer.from('M'), z('{auth_authen}', FROM)])),
  frame(CMD.mail, z(`<${FROM}>`)),
  frame(CMD.rcpt, z(`<${TO}>`)),
]
for (const field of msg
  .subarray(0, sep)
  .toString('latin1')
  .split(/\r\n(?![ \t])/)) {
  const c = field.indexOf(':')
  perMessage.push(frame(CMD.header, z(field.slice(0, c), field.slice(c + 1).trim())))
}
perMessage.push(frame(CMD.endOfHeaders))
const body = msg.subarray(sep + 4)
for (let i = 0; i < body.length; i += 65535) perMessage.push(frame(CMD.body, body.subarray(i, i + 65535)))
perMessage.push(frame(CMD.endOfBody))
const oneMessage = Buffer.concat(perMessage)

const sock = connect(socket)
await once(sock, 'connect')
const reader = new FrameReader()
let waiting: ((cmd: string) => void) | undefined
sock.on('data', (d: Buffer) => {
  for (const f of reader.push(d)) if (f.cmd !== 'c') waiting?.(f.cmd)
})
const answer = () => new Promise<string>((r) => (waiting = r))
sock.write(frame(CMD.optneg, opt))
await answer() // 'O'
const send = async () => {
  const end = answer()
  sock.write(oneMessage)
  const cmd = await end
  if (cmd !== 'a') throw new Error(`the service answered ${cmd}`)
}
for (let i = 0; i < 20; i++) await send()
const before = procStat(child.pid as number)
const t0 = performance.now()
let n = 0
let maxRss = before.rss
while (performance.now() - t0 < SECONDS * 1000) {
  await send()
  n++
  if (n % 50 === 0) maxRss = Math.max(maxRss, procStat(child.pid as number).rss)
}
const s = (performance.now() - t0) / 1000
const after = procStat(child.pid as number)
const cpu = after.cpuS - before.cpuS
console.log(
  `service over milter: ${(n / s).toFixed(0)} messages/s wall, ${(n / cpu).toFixed(0)} per service-CPU-second (${n} messages, service CPU ${((cpu / s) * 100).toFixed(0)}%); service RSS ${mb(before.rss)} -> ${mb(after.rss)} (max ${mb(maxRss)})`,
)
sock.destroy()
child.kill('SIGTERM')

/**
 * The baseline of bench/filter.ts: a milter that reads postfix's conversation and does nothing
 * with it (walks the frame lengths, discards the bytes) and answers what the protocol needs
 * (continue, accept at the end of the message), with the same options chatmail-filter negotiates.
 * What it reaches is the ceiling of a Node milter's socket path on the machine.
 *   node --import tsx bench/milter-null.ts SOCKET
 */
import { unlinkSync } from 'node:fs'
import { createServer } from 'node:net'

const path = process.argv[2] as string
const NR_HDR = 0x80
const NR_BODY = 0x80000
const reply = (cmd: string, data: Buffer = Buffer.alloc(0)) => {
  const b = Buffer.alloc(5 + data.length)
  b.writeUInt32BE(1 + data.length, 0)
  b[4] = cmd.charCodeAt(0)
  data.copy(b, 5)
  return b
}
const CONTINUE = reply('c')
const ACCEPT = reply('a')

try {
  unlinkSync(path)
} catch {
  // absent
}
const server = createServer((socket) => {
  const head = Buffer.alloc(5)
  let headLen = 0
  let left = -1
  let cmd = 0
  let opt: number[] = []
  let noReply = 0
  socket.on('data', (chunk: Buffer) => {
    let pos = 0
    const out: Buffer[] = []
    while (pos < chunk.length || left === 0) {
      if (left < 0) {
        const n = Math.min(5 - headLen, chunk.length - pos)
        chunk.copy(head, headLen, pos, pos + n)
        headLen += n
        pos += n
        if (headLen < 5) break
        headLen = 0
        left = head.readUInt32BE(0) - 1
        cmd = head[4] as number
        opt = []
        continue
      }
      const n = Math.min(left, chunk.length - pos)
      if (cmd === 0x4f) for (let i = 0; i < n; i++) opt.push(chunk[pos + i] as number) // 'O': 12 bytes
      pos += n
      left -= n
      if (left > 0) break
      left = -1
      const c = String.fromCharCode(cmd)
      if (c === 'O') {
        const offered = Buffer.from(opt).readUInt32BE(8)
        noReply = offered & (NR_HDR | NR_BODY)
        const o = Buffer.alloc(12)
        o.writeUInt32BE(6, 0)
        o.writeUInt32BE(0, 4)
        o.writeUInt32BE((offered & (0x2 | 0x100 | 0x200)) | noReply, 8)
        out.push(reply('O', o))
      } else if (c === 'E') out.push(ACCEPT)
      else if (c === 'L') {
        if (!(noReply & NR_HDR)) out.push(CONTINUE)
      } else if (c === 'B') {
        if (!(noReply & NR_BODY)) out.push(CONTINUE)
      } else if ('CHMRNTU'.includes(c)) out.push(CONTINUE)
      else if (c === 'Q') socket.end()
    }
    if (out.length > 0) socket.write(out.length === 1 ? (out[0] as Buffer) : Buffer.concat(out))
  })
  socket.on('error', () => socket.destroy())
})
server.listen({ path, backlog: 1024 }, () => process.stderr.write('listening\n'))
process.on('SIGTERM', () => process.exit(0))

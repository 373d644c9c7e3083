// Cold start of `chatmail turn-cred` against a bare `node -e 0`, median of interleaved runs.
// Target: at most 2.5x. Run after `npm run build`: npx tsx bench/cold-start.ts [runs]
import { spawnSync } from 'node:child_process'
import { resolve } from 'node:path'

const runs = Number(process.argv[2] ?? 21)
const bin = resolve('bin/run.js')
const env = { ...process.env, BENCH_SECRET: 'bench-secret-bench-secret', NO_COLOR: '1' }

function time(args: string[]): number {
  const t0 = process.hrtime.bigint()
  const r = spawnSync(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] })
  const ms = Number(process.hrtime.bigint() - t0) / 1e6
  if (r.status !== 0) throw new Error(`${args.join(' ')} exited ${r.status}: ${r.stderr}`)
  return ms
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)] as number
}

const cli = [bin, 'turn-cred', '--secret-env', 'BENCH_SECRET', '--host', 'chat.example.org', '-c', '/nonexistent.toml']
time(['-e', '0'])
time(cli) // warm the file cache
const node: number[] = []
const chatmail: number[] = []
for (let i = 0; i < runs; i++) {
  node.push(time(['-e', '0']))
  chatmail.push(time(cli))
}
const ratio = median(chatmail) / median(node)
console.log(
  `cold start (median of ${runs}): node -e 0 ${median(node).toFixed(1)} ms, chatmail turn-cred ${median(chatmail).toFixed(1)} ms, ratio ${ratio.toFixed(2)}x (target <= 2.5x)`,
)

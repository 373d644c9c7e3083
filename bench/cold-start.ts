// Cold start of the CLI against a bare `node -e 0`, medians of interleaved runs: `chatmail
// turn-cred` (a whole command: config, minting, output) and `chatmail --version` (oclif alone, no
// command's code). Each run loads only the code of its command (dist/commands/, through
// oclif.manifest.json). Target: at most 2x. Run after `npm run build`:
// npx tsx bench/cold-start.ts [runs]
import { spawnSync } from 'node:child_process'
import { resolve } from 'node:path'

const runs = Number(process.argv[2] ?? 21)
const bin = resolve('bin/run.js')
const env = { ...process.env, BENCH_SECRET: 'bench-secret-bench-secret', NO_COLOR: '1' }
const TARGET = 2

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

const cases: Record<string, string[]> = {
  'node -e 0': ['-e', '0'],
  'chatmail turn-cred': [
    bin,
    'turn-cred',
    '--secret-env',
    'BENCH_SECRET',
    '--host',
    'chat.example.org',
    '-c',
    '/nonexistent.toml',
  ],
  'chatmail --version': [bin, '--version'],
}
const times: Record<string, number[]> = {}
for (const [name, args] of Object.entries(cases)) {
  time(args) // warm the file cache
  times[name] = []
}
for (let i = 0; i < runs; i++) {
  for (const [name, args] of Object.entries(cases)) times[name]?.push(time(args))
}
const node = median(times['node -e 0'] ?? [])
console.log(`cold start, median of ${runs} interleaved runs (target <= ${TARGET}x node -e 0):`)
for (const name of Object.keys(cases)) {
  const m = median(times[name] ?? [])
  console.log(`  ${name.padEnd(20)} ${m.toFixed(1).padStart(6)} ms  ${(m / node).toFixed(2)}x`)
}

/**
 * bin/dev.js runs the built dist/ only when no source is newer than the build: a stale dist/ paired
 * with this tree's templates/ once misread every fact of a host and rewrote its files. Run against
 * a copy of bin/dev.js in a scratch package whose dist/cli.js records that it ran.
 */
import { execFile } from 'node:child_process'
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'

const DEV = fileURLToPath(new URL('../../bin/dev.js', import.meta.url))
const dir = mkdtempSync(join(tmpdir(), 'chatmail-dev-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

function layout(): void {
  for (const d of ['bin', 'src/deploy', 'dist', 'scripts']) mkdirSync(join(dir, d), { recursive: true })
  copyFileSync(DEV, join(dir, 'bin', 'dev.js'))
  writeFileSync(join(dir, 'package.json'), '{ "name": "chatmail", "type": "module" }\n')
  writeFileSync(join(dir, 'src', 'deploy', 'facts.ts'), 'export {}\n')
  writeFileSync(
    join(dir, 'dist', 'cli.js'),
    'export async function execute(o) { console.log("ran dist", o.development, globalThis.oclif.enableAutoTranspile) }\n',
  )
}

function setTimes(ageOf: Record<string, number>): void {
  const now = Date.now() / 1000
  for (const [p, age] of Object.entries(ageOf)) utimesSync(join(dir, p), now - age, now - age)
}

function runDev(): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) =>
    execFile(process.execPath, [join(dir, 'bin', 'dev.js'), '--version'], (err, stdout, stderr) => {
      const code = err ? (err as { code?: unknown }).code : 0
      done({ code: typeof code === 'number' ? code : -1, stdout, stderr })
    }),
  )
}

describe('bin/dev.js', () => {
  layout()

  it('runs dist/ in development mode, without oclif mapping it to src/, when the build is newest', async () => {
    setTimes({ 'package.json': 300, 'src/deploy/facts.ts': 200, 'dist/cli.js': 100 })
    const r = await runDev()
    expect(r).toEqual({ code: 0, stdout: 'ran dist true false\n', stderr: '' })
  })

  it('stops with one line naming the newer source when src/ changed after the build', async () => {
    setTimes({ 'package.json': 300, 'dist/cli.js': 200, 'src/deploy/facts.ts': 100 })
    const r = await runDev()
    expect(r.code).toBe(3)
    expect(r.stdout).toBe('')
    expect(r.stderr).toBe(
      'bin/dev.js: src/deploy/facts.ts is newer than dist/: run `npm run build` first (dev runs use the built dist/)\n',
    )
  })

  it('stops when there is no build at all', async () => {
    rmSync(join(dir, 'dist'), { recursive: true })
    const r = await runDev()
    expect(r.code).toBe(3)
    expect(r.stderr).toBe(
      'bin/dev.js: there is no dist/cli.js: run `npm run build` first (dev runs use the built dist/)\n',
    )
  })
})

/** scripts/check-imports.mjs: the layers of docs/ARCHITECTURE.md and no import cycles, on src/ and on small trees. */
import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'

const script = join(import.meta.dirname, '../../scripts/check-imports.mjs')
const dirs: string[] = []

function tree(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'check-imports-'))
  dirs.push(dir)
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true })
    writeFileSync(join(dir, path), text)
  }
  return dir
}

const check = (...args: string[]) => spawnSync(process.execPath, [script, ...args], { encoding: 'utf8' })

afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

describe('check-imports', () => {
  it('passes on src/ (the known violations are on its allow-list, none stale)', () => {
    const r = check()
    expect(r.stdout).toBe('')
    expect(r.status).toBe(0)
  })

  it('passes a tree whose folders import only downward', () => {
    const src = tree({
      'deploy/a.ts': "import { b } from '../server/b.js'\nexport const a = b\n",
      'server/b.ts': "import type { C } from '../config/c.js'\nexport const b: C = 1\n",
      'config/c.ts': 'export type C = number\n',
    })
    const r = check('--src', src)
    expect(r.stdout).toBe('')
    expect(r.status).toBe(0)
  })

  it('fails on an upward import and on a (dynamic) import of a sibling folder, one line each', () => {
    const src = tree({
      'dns/zone.ts': "import { lock } from '../deploy/lock.js'\nexport const zone = lock\n",
      'deploy/lock.ts': "export const lock = 1\nexport const later = () => import('../doctor/run.js')\n",
      'doctor/run.ts': 'export const run = 1\n',
    })
    const r = check('--src', src)
    expect(r.status).toBe(1)
    expect(r.stdout.trim().split('\n')).toEqual([
      'deploy/lock.ts -> doctor/run.ts: dynamic import: doctor is in the same layer, deploy may not import it',
      'dns/zone.ts -> deploy/lock.ts: static import: deploy is above it, dns may not import it',
    ])
  })

  it('fails on a cycle between files of one folder, type imports included', () => {
    const src = tree({
      'doctor/a.ts': "import type { B } from './b.js'\nexport type A = B\n",
      'doctor/b.ts': "import { c } from './c.js'\nexport type B = typeof c\n",
      'doctor/c.ts': "export type { A } from './a.js'\nexport const c = 1\n",
      'doctor/d.ts': "import { c } from './c.js'\nexport const d = c\n",
    })
    const r = check('--src', src)
    expect(r.status).toBe(1)
    expect(r.stdout.trim()).toBe('cycle: doctor/a.ts, doctor/b.ts, doctor/c.ts: 3 files import each other')
  })

  it('fails on a folder that is in no layer', () => {
    const src = tree({
      'misc/x.ts': "import { y } from '../lib/y.js'\nexport const x = y\n",
      'lib/y.ts': 'export const y = 1\n',
    })
    const r = check('--src', src)
    expect(r.status).toBe(1)
    expect(r.stdout.trim()).toBe('misc/x.ts -> lib/y.ts: src/misc is in no layer of LAYERS')
  })
})

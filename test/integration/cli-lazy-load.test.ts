/**
 * The built CLI loads only the code of the command it runs (issue 31: start-up time): each
 * command is its own file in dist/commands/, found through oclif.manifest.json. A module hook
 * (node:module register) records every file the run loads; no timing here (bench/cold-start.ts
 * measures it).
 */
import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { BIN } from '../helpers/cli.js'

const DIST = new URL('../../dist/', import.meta.url).href

let dir: string
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'chatmail-lazy-'))
  await writeFile(
    join(dir, 'hooks.mjs'),
    [
      "import { appendFileSync } from 'node:fs'",
      'export async function load(url, context, next) {',
      "  if (url.startsWith('file:')) appendFileSync(process.env.LOADED_LOG, url + '\\n')",
      '  return next(url, context)',
      '}',
      '',
    ].join('\n'),
  )
  await writeFile(
    join(dir, 'register.mjs'),
    "import { register } from 'node:module'\nregister('./hooks.mjs', import.meta.url)\n",
  )
})
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true })
})

/** The files of dist/ a run of the CLI loads, relative to dist/. */
async function loaded(args: string[], name: string): Promise<string[]> {
  const log = join(dir, `${name}.log`)
  await writeFile(log, '')
  const code = await new Promise<number>((done) =>
    execFile(
      process.execPath,
      ['--import', join(dir, 'register.mjs'), BIN, ...args],
      { cwd: dir, env: { ...process.env, LOADED_LOG: log, BENCH_SECRET: 'lazy-secret-lazy-secret' } },
      (err) => done(err ? Number((err as { code?: unknown }).code) : 0),
    ),
  )
  expect(code).toBe(0)
  return (await readFile(log, 'utf8'))
    .split('\n')
    .filter((u) => u.startsWith(DIST))
    .map((u) => u.slice(DIST.length))
}

describe('a run loads only its own command', () => {
  it('turn-cred loads dist/commands/turn-cred.js and no other command', async () => {
    const files = await loaded(
      ['turn-cred', '--secret-env', 'BENCH_SECRET', '--host', 'h.example', '-c', 'none.toml'],
      'tc',
    )
    expect(files).toContain('cli.js')
    expect(files).toContain('commands/turn-cred.js')
    expect(files.filter((f) => f.startsWith('commands/'))).toEqual(['commands/turn-cred.js'])
  })

  it('--version loads no command at all', async () => {
    const files = await loaded(['--version'], 'version')
    expect(files).toContain('cli.js')
    expect(files.filter((f) => f.startsWith('commands/'))).toEqual([])
  })
})

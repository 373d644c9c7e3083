/**
 * The reference pages name exactly what the code declares: every config key (from the valibot
 * schema), every doctor check id (from the registry) and every command (from oclif's manifest), and
 * nothing that no longer exists. A key, check or command added without its reference line fails
 * here, in `npm test`, before the docs go stale.
 */
import { readFileSync } from 'node:fs'
import { describe, expect, test } from 'vitest'
import { configJsonSchema, SCHEMA_FILE } from '../../scripts/config-schema.js'
import { ConfigSchema } from '../../src/config/schema.js'
import { loadChecks } from '../../src/doctor/registry.js'

const doc = (path: string) => readFileSync(path, 'utf8')

type Schema = { type: string; entries?: Record<string, Schema>; wrapped?: Schema }
const unwrap = (s: Schema): Schema => (s.wrapped ? unwrap(s.wrapped) : s)

/** `section.key` for each key of each section, and `key` for top-level keys. */
function schemaKeys(schema: Schema, prefix = ''): string[] {
  const out: string[] = []
  for (const [name, entry] of Object.entries(unwrap(schema).entries ?? {})) {
    const inner = unwrap(entry)
    if (inner.type === 'strict_object' || inner.type === 'object') out.push(...schemaKeys(inner, `${name}.`))
    else out.push(`${prefix}${name}`)
  }
  return out
}

/** The keys of config.md's annotated file (commented-out keys count: they are documented, off by default). */
function documentedKeys(markdown: string): string[] {
  const block = /```toml\n([\s\S]*?)```/.exec(markdown)?.[1] ?? ''
  const keys: string[] = []
  let section = ''
  for (const line of block.split('\n')) {
    const header = /^\s*\[([a-z_]+)\]/.exec(line)
    if (header) section = `${header[1]}.`
    const key = /^\s*#?\s*([a-z][a-z0-9_]*)\s*=/.exec(line)
    if (key) keys.push(`${section}${key[1]}`)
  }
  return keys
}

describe('reference pages match the code', () => {
  test('docs/reference/config.md documents every chatmail.toml key, and only those', () => {
    const declared = schemaKeys(ConfigSchema as unknown as Schema).sort()
    const documented = [...new Set(documentedKeys(doc('docs/reference/config.md')))].sort()
    expect(declared.length).toBeGreaterThan(30)
    expect(documented, 'config.md: add the missing keys to the annotated file, remove the stale ones').toEqual(declared)
  })

  test('docs/reference/doctor-checks.md names every check id, and only real ones', async () => {
    const ids = (await loadChecks({ host: true, domain: 'chat.example.org' })).map((c) => c.id)
    expect(ids.length).toBeGreaterThan(30)
    const markdown = doc('docs/reference/doctor-checks.md')
    const missing = ids.filter((id) => !markdown.includes(`\`${id}\``))
    expect(missing, 'doctor-checks.md does not name these checks').toEqual([])
    const groups = new Set(ids.map((id) => id.split('.')[0]))
    const named = [...markdown.matchAll(/`([a-z0-9]+(?:\.[a-z0-9-]+)+)`/g)].map((m) => m[1] as string)
    const stale = named.filter(
      (id) => groups.has(id.split('.')[0]) && !ids.includes(id) && !/\.(md|toml|conf)$/.test(id),
    )
    expect(stale, 'doctor-checks.md names checks that do not exist').toEqual([])
  })

  test('docs/reference/cli.md has a section for every command', () => {
    const manifest = JSON.parse(doc('oclif.manifest.json')) as { commands: Record<string, unknown> }
    const commands = Object.keys(manifest.commands).map((id) => id.replaceAll(':', ' '))
    expect(commands.length).toBeGreaterThan(4)
    // Every `chatmail …` named in a heading (one heading may document two commands).
    const headings = doc('docs/reference/cli.md')
      .split('\n')
      .filter((l) => /^#{2,3} /.test(l))
      .flatMap((l) => [...l.matchAll(/`chatmail ([a-z-]+(?: [a-z-]+)*)/g)].map((m) => m[1] as string))
    expect(
      commands.filter((c) => !headings.includes(c)),
      'cli.md has no section for these commands',
    ).toEqual([])
  })
})

test('docs/reference/chatmail.schema.json is the JSON Schema of the config schema (npm run docs:schema)', () => {
  const committed = doc(SCHEMA_FILE)
  expect(JSON.parse(committed).properties.turn.properties.port.maximum).toBe(65535)
  expect(committed, 'stale: run npm run docs:schema').toBe(configJsonSchema())
})

/**
 * chatmail.toml's JSON Schema, made from the valibot schema the loader checks with (so the two
 * cannot disagree): editors such as Taplo / Even Better TOML complete keys and flag wrong types
 * with it. `npm run docs:schema` writes docs/reference/chatmail.schema.json; a unit test
 * (test/unit/reference-docs.test.ts) fails when the committed file is stale.
 * Checks the schema cannot express (control characters, paths, durations, port clashes) stay
 * with `chatmail` itself: the file is a help for editing, not the judge.
 */
import { writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { toJsonSchema } from '@valibot/to-json-schema'
import { ConfigSchema } from '../src/config/schema.js'

export const SCHEMA_FILE = 'docs/reference/chatmail.schema.json'

export function configJsonSchema(): string {
  const schema = toJsonSchema(ConfigSchema, { errorMode: 'ignore' })
  const out = {
    ...schema,
    title: 'chatmail.toml',
    description: 'The configuration of a chatmail server (chatmail init writes it). Reference: config.md',
  }
  return `${JSON.stringify(out, null, 2)}\n`
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  writeFileSync(SCHEMA_FILE, configJsonSchema())
  console.log(`wrote ${SCHEMA_FILE}`)
}

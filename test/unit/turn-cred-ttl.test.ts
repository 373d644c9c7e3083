/** `chatmail turn-cred --ttl` has the config's cap: at most 5d unless --allow-long-ttl (issue 9 item 4). */
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { ExitCode } from '../../src/lib/errors.js'
import { mintForCli } from '../../src/turn/cli.js'

const VAR = 'CHATMAIL_TEST_TTL_SECRET'
const source = { secretEnv: VAR, configPath: '/nonexistent/chatmail.toml' }
const NOW = Date.UTC(2026, 0, 1)
const mint = (ttl: string, allowLongTtl?: boolean) =>
  mintForCli(source, { ttl, format: 'json', nowMs: NOW, allowLongTtl })

beforeEach(() => {
  process.env[VAR] = 'a-test-secret-of-enough-length'
})
afterEach(() => {
  delete process.env[VAR]
})

describe('turn-cred --ttl', () => {
  it('mints up to 5d', async () => {
    const out = JSON.parse((await mint('5d')).text)
    expect(Number(out.username)).toBe(NOW / 1000 + 5 * 86400)
  })
  it('refuses more than 5d with a usage error naming the flag that allows it', async () => {
    await expect(mint('5d1s')).rejects.toMatchObject({
      exitCode: ExitCode.usage,
      message: '--ttl 5d1s is longer than 5d: a leaked credential would stay valid that long',
      hint: 'use a shorter --ttl, or pass --allow-long-ttl to accept it',
    })
    const out = JSON.parse((await mint('30d', true)).text)
    expect(Number(out.username)).toBe(NOW / 1000 + 30 * 86400)
  })
})

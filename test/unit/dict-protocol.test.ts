import { describe, expect, it } from 'vitest'
import { METADATA_KEYS, parseTurnMetadata } from '../../src/protocols/metadata-values.js'
import { verifyTurnCredential } from '../../src/protocols/turn-rest.js'
import { answer } from '../../src/remote/chatmail-metadata/answers.js'
import { parseConfig } from '../../src/remote/chatmail-metadata/config.js'
import { imapServerEntry } from '../../src/remote/chatmail-metadata/keys.js'
import {
  commitReply,
  lookupReply,
  parseCommand,
  replyFor,
  tabEscape,
  tabUnescape,
} from '../../src/remote/lib/dict-protocol.js'

const GUID = '5e3d1c0a9b8f7e6d5c4b3a2918273645'

describe('dict protocol codec', () => {
  it('parses what dovecot 2.3 sends', () => {
    expect(parseCommand('H3\t2\t0\t\tmetadata')).toEqual({
      kind: 'hello',
      major: 3,
      minor: 2,
      valueType: '0',
      user: '',
      dictName: 'metadata',
    })
    expect(parseCommand(`Lshared/${GUID}/x\talice@example.org`)).toEqual({
      kind: 'lookup',
      key: `shared/${GUID}/x`,
      user: 'alice@example.org',
    })
    expect(parseCommand('I0\t0\tshared/\talice')).toEqual({
      kind: 'iterate',
      flags: '0',
      path: 'shared/',
      user: 'alice',
    })
    expect(parseCommand('B7\talice')).toEqual({ kind: 'begin', id: '7', user: 'alice' })
    expect(parseCommand('S7\tpriv/k\tv')).toEqual({ kind: 'change', op: 'set', id: '7', key: 'priv/k' })
    expect(parseCommand('U7\tpriv/k')).toEqual({ kind: 'change', op: 'unset', id: '7', key: 'priv/k' })
    expect(parseCommand('A7\tpriv/k\t-1')).toEqual({ kind: 'change', op: 'atomic-inc', id: '7', key: 'priv/k' })
    expect(parseCommand('T7\t1700000000\t0')).toEqual({ kind: 'change', op: 'timestamp', id: '7', key: '' })
    expect(parseCommand('C7')).toEqual({ kind: 'commit', id: '7', async: false })
    expect(parseCommand('D7')).toEqual({ kind: 'commit', id: '7', async: true })
    expect(parseCommand('R7')).toEqual({ kind: 'rollback', id: '7' })
  })

  it('parses what dovecot 2.4 sends (protocol 4.0)', () => {
    expect(parseCommand('H4\t0\t0\t\tmetadata')).toMatchObject({ kind: 'hello', major: 4, minor: 0 })
    expect(parseCommand('B1\talice@example.org\t0')).toEqual({ kind: 'begin', id: '1', user: 'alice@example.org' })
    expect(parseCommand('V1\tyes')).toEqual({ kind: 'change', op: 'hide-log-values', id: '1', key: '' })
    expect(replyFor(parseCommand('V1\tno'), () => 'v')).toBeUndefined()
  })

  it('never throws on what it does not expect', () => {
    expect(parseCommand('')).toEqual({ kind: 'empty' })
    expect(parseCommand('Z')).toEqual({ kind: 'unknown', command: 'Z' })
    expect(parseCommand('\x00\xff\t\t')).toEqual({ kind: 'unknown', command: '\x00' })
    expect(parseCommand('L')).toEqual({ kind: 'lookup', key: '', user: '' })
    expect(parseCommand('Hx\ty')).toMatchObject({ kind: 'hello', major: 0, minor: 0 })
  })

  it('tab-escapes and unescapes like dovecot str_tabescape', () => {
    expect(tabEscape('a\tb\nc\rd\x01e')).toBe('a\x01tb\x01nc\x01rd\x011e')
    expect(tabUnescape('a\x01tb\x01nc\x01rd\x011e')).toBe('a\tb\nc\rd\x01e')
    expect(tabUnescape('trailing\x01')).toBe('trailing')
    expect(parseCommand('Lkey\x01twith tab\tuser')).toMatchObject({ key: 'key\twith tab', user: 'user' })
  })

  it('writes the replies dovecot 2.3 expects', () => {
    expect(lookupReply('host:3478:1:pw=')).toBe('Ohost:3478:1:pw=\n')
    expect(lookupReply(undefined)).toBe('N\n')
    expect(lookupReply('two\nlines')).toBe('Otwo\x01nlines\n')
    expect(commitReply('7', false)).toBe('O7\n')
    expect(commitReply('7', true)).toBe('AO7\n')
    const lookup = (): string => 'v'
    expect(replyFor(parseCommand('I0\t0\tshared/\t'), lookup)).toBe('\n')
    expect(replyFor(parseCommand('B1\tu'), lookup)).toBeUndefined()
    expect(replyFor(parseCommand('S1\tk\tv'), lookup)).toBeUndefined()
    expect(replyFor(parseCommand('R1'), lookup)).toBeUndefined()
    expect(replyFor(parseCommand('H3\t2\t0\t\tmetadata'), lookup)).toBeUndefined()
  })
})

describe('dict keys', () => {
  it('maps server metadata keys to IMAP entries', () => {
    expect(imapServerEntry(`shared/${GUID}/vendor/vendor.dovecot/pvt/server/vendor/deltachat/turn`)).toBe(
      METADATA_KEYS.turn,
    )
    expect(imapServerEntry(`priv/${GUID}/vendor/vendor.dovecot/pvt/server/vendor/deltachat/turn`)).toBeUndefined()
    expect(imapServerEntry(`shared/${GUID}/vendor/deltachat/turn`)).toBeUndefined()
    expect(imapServerEntry('')).toBeUndefined()
  })
})

const CONFIG = `# a comment
socket = /run/chatmail-metadata/metadata.socket
domain = chat.example.org
turn_ttl = 2d
iroh_relay_url = https://chat.example.org
secret_file = /etc/chatmail/turn-secret
`

describe('config', () => {
  it('parses the documented format with defaults', () => {
    const r = parseConfig(CONFIG)
    expect(r).toMatchObject({
      ok: true,
      warnings: [],
      config: {
        socket: '/run/chatmail-metadata/metadata.socket',
        socketMode: 0o660,
        domain: 'chat.example.org',
        turnHost: 'chat.example.org',
        turnPort: 3478,
        turnsPort: 5349,
        ttlSeconds: 172_800,
        irohRelayUrl: 'https://chat.example.org',
        secretFile: '/etc/chatmail/turn-secret',
        verbose: false,
      },
    })
  })

  it('names every error', () => {
    const r = parseConfig('socket = /s\ndomain = d\nturn_host = 2001:db8::1\nturn_port = 70000\nbogus = 1\nnoequals\n')
    expect(r.ok).toBe(false)
    const errors = r.ok ? [] : r.errors
    expect(errors).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/IPv6/),
        expect.stringMatching(/turn_port "70000"/),
        'line 5: unknown key "bogus"',
        'line 6: expected key = value',
        'secret_file is required',
      ]),
    )
  })

  it('socket and secret_file are absolute paths', () => {
    const r = parseConfig(CONFIG.replace('secret_file = /etc/chatmail/turn-secret', 'secret_file = turn-secret'))
    expect(r).toMatchObject({ ok: false, errors: ['secret_file "turn-secret" is not an absolute path'] })
  })

  it('turns /turns off and warns about short TTLs', () => {
    const r = parseConfig(`${CONFIG}turns_port = off\n`.replace('turn_ttl = 2d', 'turn_ttl = 1h'))
    expect(r).toMatchObject({ ok: true, config: { turnsPort: undefined, ttlSeconds: 3600 } })
    expect(r.ok && r.warnings[0]).toMatch(/12h/)
  })
})

describe('answers', () => {
  const answers = { turnHost: 'chat.example.org', turnPort: 3478, turnsPort: 5349, ttlSeconds: 3600 }
  const now = 1_700_000_000_000

  it('mints credentials that Delta Chat parses and that verify', () => {
    const v = answer(METADATA_KEYS.turn, answers, 's3cret', now) as string
    expect(v).toMatch(/^chat\.example\.org:3478:1700003600:[A-Za-z0-9+/]{27}=$/)
    const p = parseTurnMetadata(v)
    expect(p).toMatchObject({ ok: true, value: { host: 'chat.example.org', port: 3478, expires: 1_700_003_600 } })
    if (p.ok) expect(verifyTurnCredential('s3cret', p.value.username, p.value.password, now).ok).toBe(true)
    expect(answer(METADATA_KEYS.turns, answers, 's3cret', now)).toMatch(/^chat\.example\.org:5349:1700003600:/)
  })

  it('answers not-found without a secret, a relay URL or a TLS port, and for other keys', () => {
    expect(answer(METADATA_KEYS.turn, answers, undefined, now)).toBeUndefined()
    expect(answer(METADATA_KEYS.irohrelay, answers, 's', now)).toBeUndefined()
    expect(answer(METADATA_KEYS.turns, { ...answers, turnsPort: undefined }, 's', now)).toBeUndefined()
    expect(answer('/shared/vendor/deltachat/maxsmtprecipients', answers, 's', now)).toBeUndefined()
    expect(answer(METADATA_KEYS.irohrelay, { ...answers, irohRelayUrl: 'https://r.example' }, 's', now)).toBe(
      'https://r.example',
    )
  })
})

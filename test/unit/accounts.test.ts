import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { canonical, mayCreate } from '../../src/protocols/address.js'
import { DRAWN_PASSWORD_ROUNDS, dcloginUrl } from '../../src/remote/chatmail-accounts/accounts.js'
import { parseAuthKey, splitEscaped } from '../../src/remote/chatmail-accounts/auth-keys.js'
import { parseConfig } from '../../src/remote/chatmail-accounts/config.js'
import { mailboxToDelete } from '../../src/remote/chatmail-accounts/expire.js'
import { InviteStore, parseInvites } from '../../src/remote/chatmail-accounts/invites.js'
import {
  cachedResources,
  clientKey,
  memAvailable,
  RateLimiter,
  resourceProblem,
} from '../../src/remote/chatmail-accounts/limits.js'
import { PasswdOwners, passwdFileAddresses } from '../../src/remote/chatmail-accounts/owners.js'
import { hashPassword, verifyPassword, verifyPasswordSync } from '../../src/remote/chatmail-accounts/password.js'
import { decodeRequest, encodeNetstring } from '../../src/remote/chatmail-accounts/socketmap.js'
import { AccountStore, parseAccounts } from '../../src/remote/chatmail-accounts/store.js'
import { accountsOn } from '../helpers/accounts.js'

const rules = { domain: 'chat.example.org', localMinLength: 9, localMaxLength: 9, passwordMinLength: 9 }

describe('addresses', () => {
  it('canonical: lower case; an IP-only server takes both spellings and keeps the bracketed one', () => {
    expect(canonical('AbCdEfGhI@Chat.Example.org', 'chat.example.org')?.address).toBe('abcdefghi@chat.example.org')
    expect(canonical('x@other.org', 'chat.example.org')).toBeUndefined()
    expect(canonical('abc@203.0.113.5', '203.0.113.5')?.address).toBe('abc@[203.0.113.5]')
    expect(canonical('abc@[203.0.113.5]', '203.0.113.5')?.address).toBe('abc@[203.0.113.5]')
    expect(canonical('abc@[203.0.113.6]', '203.0.113.5')).toBeUndefined()
    expect(canonical('a b@chat.example.org', 'chat.example.org')).toBeUndefined()
  })

  it('rules for a new account', () => {
    expect(mayCreate('abcdefghi@chat.example.org', '123456789', rules).ok).toBe(true)
    expect(mayCreate('abcdefgh@chat.example.org', '123456789', rules)).toMatchObject({ ok: false })
    expect(mayCreate('abcdefghi@chat.example.org', '12345678', rules)).toMatchObject({
      reason: 'the password must be at least 9 characters',
    })
    expect(mayCreate('abcd+fghi@chat.example.org', '123456789', rules)).toMatchObject({ ok: false })
  })

  it('dclogin: URLs as core parses them (address kept bracketed, hosts for an IP, ic=3)', () => {
    expect(dcloginUrl('abc@[203.0.113.5]', 'p&ss w', '203.0.113.5')).toBe(
      'dclogin:abc@[203.0.113.5]?p=p%26ss%20w&v=1&ih=203.0.113.5&sh=203.0.113.5&ic=3',
    )
    expect(dcloginUrl('abc@chat.example.org', 'pw', 'chat.example.org')).toBe(
      'dclogin:abc@chat.example.org?p=pw&v=1&ic=3',
    )
  })
})

describe('dovecot dict keys', () => {
  it('splits %E-escaped fields', () => {
    expect(splitEscaped('a\\"b"c\\\\d"e')).toEqual(['a"b', 'c\\d', 'e'])
    expect(parseAuthKey('shared/passdb/127.0.0.1"abc@chat.example.org')).toEqual({ kind: 'other' })
    expect(parseAuthKey('shared/passdb/127.0.0.1"abc@chat.example.org"pa\\"ss"imap"x')).toEqual({ kind: 'other' })
    // Three fields: a config from before the service was in the key.
    expect(parseAuthKey('shared/passdb/"abc@x"p\\"w\\\\')).toEqual({
      kind: 'passdb',
      client: '',
      user: 'abc@x',
      password: 'p"w\\',
      service: '',
    })
    expect(parseAuthKey('shared/passdb/192.0.2.1"abc@x"p\\"w"smtp')).toEqual({
      kind: 'passdb',
      client: '192.0.2.1',
      user: 'abc@x',
      password: 'p"w',
      service: 'smtp',
    })
    expect(parseAuthKey('shared/userdb/abc@x')).toEqual({ kind: 'userdb', user: 'abc@x' })
    expect(parseAuthKey('shared/other')).toEqual({ kind: 'other' })
  })
})

describe('password hashes (dovecot PBKDF2)', () => {
  it('verifies what it hashed, and a known dovecot value', async () => {
    const h = await hashPassword('secret-password', 1000, 'saltsaltsaltsalt')
    expect(h).toMatch(/^\{PBKDF2\}\$1\$saltsaltsaltsalt\$1000\$[0-9a-f]{40}$/)
    expect(verifyPasswordSync('secret-password', h)).toBe(true)
    expect(verifyPasswordSync('secret-passwore', h)).toBe(false)
    expect(verifyPasswordSync('x', '{PLAIN}x')).toBe(false)
    expect(await verifyPassword('secret-password', h)).toBe(true)
    expect(await verifyPassword('secret-passwore', h)).toBe(false)
    expect(await verifyPassword('x', '{PLAIN}x')).toBe(false)
    expect(await verifyPassword('x', '{SHA512-CRYPT}$6$abc$def')).toBe(false)
  })
})

describe('passdb replies and the hash each account gets', () => {
  const setup = () => {
    const dir = mkdtempSync(join(tmpdir(), 'chatmail-passdb-'))
    const policy = {
      rules,
      registration: 'open' as const,
      minFreeDisk: 0,
      minAvailableMemory: 0,
      pbkdf2Rounds: 10_000,
      mailRoot: '/home/vmail/mail',
      selfSigned: false,
    }
    return accountsOn(new AccountStore(dir), dir, policy, Math.floor(Date.now() / 1000))
  }
  const rounds = (hash: string | undefined) => Number(/^\{PBKDF2\}\$1\$[^$]+\$(\d+)\$/.exec(hash ?? '')?.[1])

  it('a first login stores the configured rounds; /new, whose password it drew itself (131 random bits), one', async () => {
    const { dir, store, accounts } = setup()
    try {
      expect(await accounts.passdb('firstlogi@chat.example.org', 'chosen-pw-1', '192.0.2.1', 'imap')).toEqual({
        password: '{PLAIN}chosen-pw-1',
      })
      expect(rounds(store.get('firstlogi@chat.example.org')?.hash)).toBe(10_000)
      const made = await accounts.signup('192.0.2.1', undefined)
      if (!made.ok) throw new Error(made.reason)
      expect(made.password.length).toBeGreaterThanOrEqual(22)
      expect(rounds(store.get(made.email)?.hash)).toBe(DRAWN_PASSWORD_ROUNDS)
      expect(DRAWN_PASSWORD_ROUNDS).toBe(1)
      expect(await accounts.passdb(made.email, made.password, '192.0.2.1', 'imap')).toEqual({
        password: `{PLAIN}${made.password}`,
      })
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('a wrong password gets a plain value nothing matches, never the stored hash for dovecot to hash again', async () => {
    const { dir, store, accounts } = setup()
    try {
      await accounts.passdb('firstlogi@chat.example.org', 'chosen-pw-1', '192.0.2.1', 'imap')
      const stored = store.get('firstlogi@chat.example.org')?.hash
      const replies = [
        await accounts.passdb('firstlogi@chat.example.org', 'guessed-pw', '192.0.2.1', 'imap'),
        await accounts.passdb('FIRSTLOGI@chat.example.org', 'guessed-pw', '192.0.2.1', 'smtp'),
      ]
      for (const r of replies) {
        expect(r?.password).toMatch(/^\{PLAIN\}[0-9a-f]{48}$/)
        expect(r?.password).not.toBe(stored)
        expect(r?.password).not.toContain('guessed-pw')
      }
      expect(replies[0]?.password).not.toBe(replies[1]?.password)
      expect(replies[1]?.user).toBe('firstlogi@chat.example.org')
      // Two first logins of one new address at once with different passwords: one made it, the other is judged.
      const both = await Promise.all([
        accounts.passdb('racerace1@chat.example.org', 'password-a', '192.0.2.1', 'imap'),
        accounts.passdb('racerace1@chat.example.org', 'password-b', '192.0.2.1', 'imap'),
      ])
      expect(both[0]).toEqual({ password: '{PLAIN}password-a' })
      expect(both[1]?.password).toMatch(/^\{PLAIN\}[0-9a-f]{48}$/)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe('limits', () => {
  it('rate per client in a sliding window', () => {
    const r = new RateLimiter(2, 1000)
    expect([r.take('a', 0), r.take('a', 1), r.take('a', 2), r.take('b', 2), r.take('a', 1001)]).toEqual([
      true,
      true,
      false,
      true,
      true,
    ])
    expect(new RateLimiter(0, 1000).take('a', 0)).toBe(false)
  })

  it('a large limit counts the same as a plain sliding window, across compactions and a clock that went back', () => {
    // The reference: every recorded time of the client filtered against the window on each take.
    const reference = (max: number, windowMs: number) => {
      const hits = new Map<string, number[]>()
      return (client: string, now: number) => {
        const times = (hits.get(client) ?? []).filter((t) => t > now - windowMs)
        const ok = times.length < max
        if (ok) times.push(now)
        hits.set(client, times)
        return ok
      }
    }
    for (const [max, windowMs] of [
      [500, 1000],
      [1500, 5000],
      [1, 10],
      [70, 200],
    ] as const) {
      const r = new RateLimiter(max, windowMs)
      const ref = reference(max, windowMs)
      const got: boolean[] = []
      const want: boolean[] = []
      let now = 0
      for (let i = 0; i < 20_000; i++) {
        // Bursts and gaps, so the window fills, refuses, drains and the front is compacted.
        now += i % 4000 < 2500 ? i % 3 : 7
        const client = i % 5 === 0 ? 'b' : 'a'
        got.push(r.take(client, now))
        want.push(ref(client, now))
      }
      expect(got).toEqual(want)
      expect(got.filter((x) => !x).length).toBeGreaterThan(0)
    }
    // The clock goes back: still never more than max in any window.
    const r = new RateLimiter(2, 1000)
    expect([r.take('a', 5000), r.take('a', 100), r.take('a', 150), r.take('a', 5999), r.take('a', 6001)]).toEqual([
      true,
      true,
      false,
      false,
      true,
    ])
  })

  it('disk and memory', () => {
    expect(memAvailable('MemTotal: 100 kB\nMemAvailable:    2048 kB\n')).toBe(2048 * 1024)
    const M = 1024 * 1024
    expect(resourceProblem({ freeDiskBytes: 10 * M, availableMemoryBytes: 500 * M }, 100 * M, 1)).toMatch(/disk/)
    expect(resourceProblem({ freeDiskBytes: 1000 * M, availableMemoryBytes: 5 * M }, 1, 100 * M)).toMatch(/memory/)
    expect(resourceProblem({ freeDiskBytes: 1000 * M, availableMemoryBytes: 500 * M }, M, M)).toBeUndefined()
  })
})

describe('host resources, read at most once a second', () => {
  it('reuses a reading younger than a second and reads again after it (or when the clock went back)', () => {
    let reads = 0
    let t = 10_000
    const get = cachedResources(
      () => ({ freeDiskBytes: ++reads, availableMemoryBytes: 1 }),
      1000,
      () => t,
    )
    expect(get().freeDiskBytes).toBe(1)
    t += 999
    expect(get().freeDiskBytes).toBe(1)
    t += 1
    expect(get().freeDiskBytes).toBe(2)
    t -= 5000
    expect(get().freeDiskBytes).toBe(3)
    expect(reads).toBe(3)
  })
})

describe('socketmap netstrings', () => {
  it('decodes requests, waits for partial ones, refuses garbage', () => {
    const two = Buffer.concat([encodeNetstring('mailbox a@b'), encodeNetstring('mailbox c@d')])
    const first = decodeRequest(two)
    expect(first).toMatchObject({ kind: 'request', name: 'mailbox', key: 'a@b' })
    expect(decodeRequest(two.subarray(0, 5))).toEqual({ kind: 'partial' })
    expect(decodeRequest(Buffer.from('99999999:x,'))).toMatchObject({ kind: 'bad' })
    expect(decodeRequest(Buffer.from('3:abc;'))).toMatchObject({ kind: 'bad' })
    expect(encodeNetstring('OK x').toString()).toBe('4:OK x,')
  })
})

describe('accounts file and config', () => {
  it('skips torn or broken lines', () => {
    const r = parseAccounts('a@b\t{PBKDF2}x\t1\nbroken\nc@d\t{PBKDF2}y\t2\nc@d\t{PBKDF2}z')
    expect([...r.accounts.keys()]).toEqual(['a@b', 'c@d'])
    expect(r.skipped).toEqual([2, 4])
  })

  it('config errors name the key', () => {
    const r = parseConfig('domain = x.org\ndata_dir = rel\nregistration = maybe\nusername_min_length = 10\n')
    expect(r.ok).toBe(false)
    if (!r.ok) {
      expect(r.errors.join('\n')).toMatch(/data_dir "rel" is not an absolute path/)
      expect(r.errors.join('\n')).toMatch(/registration "maybe"/)
      expect(r.errors.join('\n')).toMatch(/username_min_length 10 is above username_max_length 9/)
    }
  })

  it('the domain: a name (a `_` first label too: a self-signed server), an IPv4 address, nothing else', () => {
    const base =
      'data_dir = /d\nmail_root = /m\ndict_socket = /s1\nsocketmap_socket = /s2\nhttp_socket = /s3\ncontrol_socket = /s4\n'
    const domainError = (domain: string) => {
      const r = parseConfig(`domain = ${domain}\n${base}`)
      return r.ok ? undefined : r.errors.find((e) => e.startsWith('domain '))
    }
    for (const ok of ['chat.example.org', '_chat.example.org', '203.0.113.5'])
      expect(domainError(ok), ok).toBeUndefined()
    for (const bad of ['chat_x.example.org', '_', 'a/b.org', 'x..org', '-x.org']) {
      expect(domainError(bad), bad).toMatch(/is not a domain name or IPv4 address/)
    }
  })
})

describe('issue 23: names, case, clients, invites, owners, the expiry guard', () => {
  const wide = { ...rules, localMinLength: 1, localMaxLength: 32 }

  it('no name that is not one directory (., .., dots at the ends or in a row), none reserved', () => {
    for (const local of ['.', '..', '.x', 'x.', 'a..b']) {
      expect(mayCreate(`${local}@chat.example.org`, '123456789', wide).ok, local).toBe(false)
    }
    expect(canonical('..@chat.example.org', 'chat.example.org')).toBeUndefined()
    expect(canonical('a/b@chat.example.org', 'chat.example.org')).toBeUndefined()
    for (const local of [
      'webmaster',
      'postmaster',
      'abuse',
      'hostmaster',
      'admin',
      'administrator',
      'root',
      'doctor',
    ]) {
      expect(mayCreate(`${local}@chat.example.org`, '123456789', wide)).toEqual({
        ok: false,
        reason: `${local}@ is reserved on this server`,
      })
    }
    expect(mayCreate('a.b-c_d@chat.example.org', '123456789', wide).ok).toBe(true)
  })

  it('case folds in ASCII only, as dovecot and postfix do (no Kelvin sign for k, no dotless i)', () => {
    expect(canonical('\u212Aelvin@chat.example.org', 'chat.example.org')).toBeUndefined()
    expect(canonical('\u0130nfo@chat.example.org', 'chat.example.org')).toBeUndefined()
    expect(canonical('kelvin@chat.\u212Axample.org', 'chat.kxample.org')).toBeUndefined()
    expect(canonical('KELVIN@CHAT.EXAMPLE.ORG', 'chat.example.org')?.address).toBe('kelvin@chat.example.org')
  })

  it('the creation limit counts IPv6 clients by /64, IPv4-mapped ones as IPv4; its memory is bounded', () => {
    expect(clientKey('2001:db8:1:2::5')).toBe('2001:db8:1:2::/64')
    expect(clientKey('2001:0DB8:0001:0002:ffff:ffff:ffff:ffff')).toBe('2001:db8:1:2::/64')
    expect(clientKey('::ffff:192.0.2.7')).toBe('192.0.2.7')
    expect(clientKey('::1')).toBe('0:0:0:0::/64')
    expect(clientKey('192.0.2.7')).toBe('192.0.2.7')
    expect(clientKey('unknown')).toBe('unknown')
    const limiter = new RateLimiter(3, 60_000, 50)
    const allowed = Array.from({ length: 30 }, (_, i) => limiter.take(`2001:db8:0:1::${i + 1}`, 1000)).filter(Boolean)
    expect(allowed).toHaveLength(3)
    for (let i = 0; i < 500; i++) limiter.take(`2001:db8:${i.toString(16)}::1`, 1000)
    expect(limiter.size).toBe(50)
  })

  it('an invite is taken at once: a single-use one serves one request, and comes back when no account came of it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'chatmail-invites-'))
    try {
      const store = new InviteStore(dir)
      const inv = store.create(1, 3600, Date.now())
      expect(store.take(inv.token, Date.now()).ok).toBe(true)
      expect(store.take(inv.token, Date.now())).toEqual({ ok: false, reason: 'this invite has been used up' })
      store.giveBack(inv.token, Date.now())
      // Written through: a restart sees the use given back.
      expect(new InviteStore(dir).take(inv.token, Date.now()).ok).toBe(true)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('a damaged invites file is moved aside with the reason; entries are checked field by field', () => {
    expect(parseInvites('')).toMatchObject({ reason: expect.stringMatching(/^not JSON/) })
    expect(parseInvites('{}')).toEqual({ reason: 'not a list' })
    expect(parseInvites('[{"token":"short","uses":1,"expires":1,"created":1}]')).toEqual({
      reason: 'entry 1 is not an invite',
    })
    const dir = mkdtempSync(join(tmpdir(), 'chatmail-invites-'))
    try {
      writeFileSync(join(dir, 'invites.json'), '[{"token": ')
      const log: string[] = []
      const store = new InviteStore(dir, (_l, m) => log.push(m))
      expect(store.list(Date.now())).toEqual([])
      expect(log.join('\n')).toMatch(/invites\.json is damaged \(not JSON.*\): moved to .*invites\.json\.damaged-\d+/)
      expect(readdirSync(dir).filter((f) => f.startsWith('invites.json.damaged-'))).toHaveLength(1)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('a damaged accounts file or expiring list is read as far as it goes, and kept as it was beside it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'chatmail-store-'))
    try {
      writeFileSync(join(dir, 'accounts'), 'a@x\t{PBKDF2}h\t1\ngarbage\n')
      writeFileSync(join(dir, 'expiring'), 'b@x\nnot an address\n')
      const log: string[] = []
      const store = new AccountStore(dir, (_l, m) => log.push(m))
      expect(store.size).toBe(1)
      expect(store.expiringList()).toEqual(['b@x'])
      expect(
        readdirSync(dir)
          .filter((f) => f.includes('.damaged-'))
          .sort(),
      ).toHaveLength(2)
      expect(log.join('\n')).toMatch(/accounts: skipped unreadable lines 2; the file as it was is kept in/)
      store.close()
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it("another passdb's addresses: read from its file again when it changes; unreadable means unknown", () => {
    expect([
      // A line without uid and gid fields owns its address but is no mailbox to dovecot's userdb.
      ...passwdFileAddresses('# c\nA@[203.0.113.5]:{PLAIN}x\nb@203.0.113.5:x::\nc@other:x::\n', '203.0.113.5'),
    ]).toEqual([
      ['a@[203.0.113.5]', false],
      ['b@[203.0.113.5]', true],
    ])
    const dir = mkdtempSync(join(tmpdir(), 'chatmail-owners-'))
    try {
      const file = join(dir, 'users')
      const errors: string[] = []
      const owners = new PasswdOwners(
        [join(dir, 'missing'), file],
        () => 'chat.example.org',
        (m) => errors.push(m),
      )
      expect(owners.owner('opera1234@chat.example.org')).toBe('ours')
      writeFileSync(file, 'opera1234@chat.example.org:{PLAIN}x::::::\n')
      expect(owners.owner('opera1234@chat.example.org')).toBe('theirs')
      rmSync(file)
      mkdirSync(file)
      expect(owners.owner('opera1234@chat.example.org')).toBe('unknown')
      expect(owners.owner('other0001@chat.example.org')).toBe('unknown')
      expect(errors).toHaveLength(1)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('the expiry deletes only <mail root>/<domain>/<local> itself, compared as real paths', () => {
    const root = mkdtempSync(join(tmpdir(), 'chatmail-guard-'))
    try {
      const domainDir = join(root, 'chat.example.org')
      mkdirSync(join(domainDir, 'alice0001'), { recursive: true })
      mkdirSync(join(root, 'elsewhere'))
      symlinkSync(join(root, 'elsewhere'), join(domainDir, 'linked001'))
      const check = (address: string, home: string) => mailboxToDelete(root, 'chat.example.org', address, home)
      expect(check('alice0001@chat.example.org', `${domainDir}/alice0001`)).toEqual({
        ok: true,
        path: `${domainDir}/alice0001`,
      })
      for (const [address, home] of [
        ['..@chat.example.org', `${domainDir}/..`],
        ['.@chat.example.org', `${domainDir}/.`],
        ['alice0001@chat.example.org', `${domainDir}/bob000001`],
        ['alice0001@chat.example.org', `${root}/alice0001`],
        ['linked001@chat.example.org', `${domainDir}/linked001`],
      ] as const) {
        expect(check(address, home), home).toMatchObject({ ok: false })
      }
      expect(check('gone00001@chat.example.org', `${domainDir}/gone00001`)).toEqual({ gone: true })
    } finally {
      rmSync(root, { recursive: true, force: true })
    }
  })
})
